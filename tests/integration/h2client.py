"""HTTP/2 clients for the integration tests: a polite one over Debian's
python3-h2 (streams, flow control, several requests at once), a raw one that
writes frames by hand (hyperframe + hpack) for the attack cases and reads
what the server answers frame by frame, and curl.

    with H2Conn(a.port) as c:                       # h2c, prior knowledge
        r = c.get("/a")                             # H2Response
        sids = [c.send_request("GET", "/b") for _ in range(10)]
        rs = [c.response(s) for s in sids]

    with H2Conn(a.tls, tls=client_context(ca, alpn=["h2"])) as c: ...

    with RawH2(a.port) as r:
        r.headers(1, [(":method", "GET"), ...], end_stream=True)
        r.rst(1)
        f = r.wait_goaway()                          # hyperframe GoAwayFrame

    v, status, headers, body = curl(a.port, "/a", "--http2-prior-knowledge")
"""

import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_TIMEOUT = 10.0

# RFC 9113 §7 error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 6, 7, 8, 9
ENHANCE_YOUR_CALM = 0xB


class H2Response:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []           # [(name, value)] as received (str)
        self.interim = []           # [(status, headers)] 1xx
        self.body = b""
        self.ended = False
        self.reset = None           # RST_STREAM error code
        self.trailers = []

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return "<H2Response %s status=%s len=%d reset=%s>" % (self.sid, self.status,
                                                              len(self.body), self.reset)


def _connect(port, host, tls, server_hostname, timeout):
    raw = socket.create_connection((host, port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is None:
        return raw
    try:
        return tls.wrap_socket(raw, server_hostname=server_hostname)
    except Exception:
        raw.close()
        raise


class H2Conn:
    """A well-behaved HTTP/2 client (python3-h2).  tls: an ssl.SSLContext
    offering h2 by ALPN, or None for h2c with prior knowledge.
    auto_window=False: never give flow-control window back (a client that
    does not read); streams in .hold get no stream window back (the
    connection's still opens)."""

    def __init__(self, port, tls=None, server_hostname="a.test", host="127.0.0.1",
                 timeout=DEFAULT_TIMEOUT, settings=None, auto_window=True):
        self.sock = _connect(port, host, tls, server_hostname, timeout)
        self.timeout = timeout
        self.auto_window = auto_window
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.initiate_connection()
        if settings:
            self.h2.update_settings(settings)
        self.streams = {}
        self.goaway = None          # h2.events.ConnectionTerminated
        self.closed = False
        self.remote_settings = {}
        self.pings = []
        self.hold = set()           # streams whose window is never given back
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def alpn(self):
        return self.sock.selected_alpn_protocol() if hasattr(self.sock, "selected_alpn_protocol") \
            else None

    # -- requests ----------------------------------------------------------------------

    def send_request(self, method="GET", path="/", headers=None, body=None,
                     authority="test.example", scheme=None, end_stream=None):
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme or ("https" if hasattr(
            self.sock, "selected_alpn_protocol") else "http")),
            (":authority", authority), (":path", path)]
        for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
            hdrs.append((k.lower(), v))
        if end_stream is None:
            end_stream = body is None
        self.h2.send_headers(sid, hdrs, end_stream=end_stream)
        self.streams[sid] = H2Response(sid)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end=True)
        return sid

    def send_body(self, sid, data, end=False):
        """Send body bytes as the windows allow (reads while it waits)."""
        deadline = time.monotonic() + self.timeout
        while True:
            room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if room >= len(data) or (room > 0 and data):
                n = min(room, len(data))
                self.h2.send_data(sid, data[:n], end_stream=end and n == len(data))
                self.flush()
                data = data[n:]
                if not data:
                    return
                continue
            if not data:
                self.h2.end_stream(sid)
                self.flush()
                return
            if time.monotonic() > deadline:
                raise AssertionError("send_body: window stayed shut")
            self.read_some(0.2)

    def reset(self, sid, code=CANCEL):
        self.h2.reset_stream(sid, error_code=code)
        self.flush()

    def ping(self, data=b"12345678"):
        self.h2.ping(data)
        self.flush()

    # -- answers -----------------------------------------------------------------------

    def read_some(self, timeout=None):
        """Read once (up to timeout) and process the events; False on EOF."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return True
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        for ev in self.h2.receive_data(data):
            self._event(ev)
        self.flush()
        return True

    def _event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            st.status = int(dict(ev.headers)[":status"])
            st.headers = [(k, v) for k, v in ev.headers if not k.startswith(":")]
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            st.interim.append((int(dict(ev.headers)[":status"]),
                               [(k, v) for k, v in ev.headers if not k.startswith(":")]))
        elif isinstance(ev, h2.events.TrailersReceived):
            st.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if st is not None:
                st.body += ev.data
            n = ev.flow_controlled_length
            if self.auto_window and n and ev.stream_id in self.hold:
                self.h2.increment_flow_control_window(n)    # the connection's only
            elif self.auto_window and n:
                self.h2.acknowledge_received_data(n, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            if st is not None:
                st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None:
                st.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value
        elif isinstance(ev, h2.events.PingAckReceived):
            self.pings.append(ev.ping_data)

    def wait(self, pred, timeout=None, what="condition"):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("h2: timed out waiting for %s" % what)
            if not self.read_some(min(left, 0.5)) and not pred():
                raise AssertionError("h2: connection closed while waiting for %s" % what)
        return True

    def response(self, sid, timeout=None):
        st = self.streams[sid]
        self.wait(lambda: st.done, timeout, "stream %d" % sid)
        return st

    def request(self, method="GET", path="/", headers=None, body=None, **kw):
        return self.response(self.send_request(method, path, headers, body, **kw))

    def get(self, path="/", headers=None, **kw):
        return self.request("GET", path, headers, **kw)

    def wait_goaway(self, timeout=None):
        self.wait(lambda: self.goaway is not None, timeout, "GOAWAY")
        return self.goaway

    def wait_closed(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.closed:
            if time.monotonic() > deadline:
                raise AssertionError("h2: connection not closed")
            try:
                self.read_some(0.5)
            except Exception:
                self.closed = True
        return True


class RawH2:
    """Frames by hand, for clients no library would be.  Everything the
    server sends is parsed into hyperframe frames (self.frames); HEADERS
    blocks are decoded."""

    def __init__(self, port, host="127.0.0.1", tls=None, server_hostname="a.test",
                 timeout=DEFAULT_TIMEOUT, preface=True, settings=True):
        self.sock = _connect(port, host, tls, server_hostname, timeout)
        self.timeout = timeout
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.frames = []
        self.closed = False
        if preface:
            self.send(PREFACE)
        if settings:
            self.frame(SettingsFrame(0))

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def frame(self, f):
        self.send(f.serialize())

    def block(self, headers):
        return self.enc.encode(headers)

    def headers(self, sid, headers, end_stream=False, end_headers=True, raw_block=None):
        f = HeadersFrame(sid)
        f.data = raw_block if raw_block is not None else self.block(headers)
        if end_headers:
            f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        self.frame(f)

    def get(self, sid, path="/", authority="test.example", extra=(), end_stream=True):
        self.headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", authority),
                           (":path", path)] + list(extra), end_stream=end_stream)

    def continuation(self, sid, block, end_headers=False):
        f = ContinuationFrame(sid)
        f.data = block
        if end_headers:
            f.flags.add("END_HEADERS")
        self.frame(f)

    def data(self, sid, data=b"", end_stream=False):
        f = DataFrame(sid)
        f.data = data
        if end_stream:
            f.flags.add("END_STREAM")
        self.frame(f)

    def rst(self, sid, code=CANCEL):
        f = RstStreamFrame(sid)
        f.error_code = code
        self.frame(f)

    def ping(self, opaque=b"12345678", ack=False):
        f = PingFrame(0)
        f.opaque_data = opaque
        if ack:
            f.flags.add("ACK")
        self.frame(f)

    def settings(self, values=None, ack=False):
        f = SettingsFrame(0, settings=values or {})
        if ack:
            f.flags.add("ACK")
        self.frame(f)

    def priority(self, sid, depends_on=0, weight=16):
        f = PriorityFrame(sid)
        f.depends_on = depends_on
        f.stream_weight = weight
        self.frame(f)

    def window_update(self, sid, inc):
        f = WindowUpdateFrame(sid)
        f.window_increment = inc
        self.frame(f)

    # -- reading -----------------------------------------------------------------------

    def _parse(self):
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            if isinstance(f, (HeadersFrame, ContinuationFrame)):
                try:
                    f.decoded = self.dec.decode(bytes(f.data))
                except Exception:
                    f.decoded = None
            self.frames.append(f)

    def read_some(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return True
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        self._parse()
        return True

    def wait_frame(self, pred, timeout=None, what="frame"):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = 0
        while True:
            for f in self.frames[seen:]:
                if pred(f):
                    return f
            seen = len(self.frames)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("raw h2: no %s in %s" % (what, self.frames))
            if not self.read_some(min(left, 0.5)):
                for f in self.frames[seen:]:
                    if pred(f):
                        return f
                raise AssertionError("raw h2: closed without %s; got %s" % (what, self.frames))

    def wait_goaway(self, timeout=None):
        return self.wait_frame(lambda f: isinstance(f, GoAwayFrame), timeout, "GOAWAY")

    def wait_rst(self, sid, timeout=None):
        return self.wait_frame(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == sid,
                               timeout, "RST_STREAM on %d" % sid)

    def wait_headers(self, sid, timeout=None):
        return self.wait_frame(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sid,
                               timeout, "HEADERS on %d" % sid)

    def response(self, sid, timeout=None):
        """(status, headers dict, body) of stream sid, once it ended (small
        bodies: no WINDOW_UPDATE is sent)."""
        self.wait_frame(lambda f: f.stream_id == sid and "END_STREAM" in f.flags
                        and isinstance(f, (HeadersFrame, DataFrame)), timeout,
                        "END_STREAM on %d" % sid)
        hdrs = {}
        body = b""
        for f in self.frames:
            if f.stream_id != sid:
                continue
            if isinstance(f, HeadersFrame) and f.decoded:
                for k, v in f.decoded:
                    k = k.decode() if isinstance(k, bytes) else k
                    v = v.decode() if isinstance(v, bytes) else v
                    hdrs[k] = v
            elif isinstance(f, DataFrame):
                body += bytes(f.data)
        return int(hdrs.get(":status", 0)), hdrs, body

    def goaways(self):
        return [f for f in self.frames if isinstance(f, GoAwayFrame)]

    def status(self, sid, timeout=None):
        f = self.wait_headers(sid, timeout)
        return int(dict(f.decoded)[b":status" if isinstance(f.decoded[0][0], bytes)
                                   else ":status"])

    def wait_closed(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.closed:
            if time.monotonic() > deadline:
                raise AssertionError("raw h2: connection not closed")
            self.read_some(0.5)
        return True


def curl(port, path="/", *args, host="127.0.0.1", scheme="http", timeout=30, body_file=None):
    """curl one URL; (http_version, status, headers dict lowercased, body bytes).
    args: --http2-prior-knowledge, --http2, --cacert X, --resolve ..., -H ..."""
    import os
    import tempfile
    fd, hdr = tempfile.mkstemp(prefix="curlhdr")
    os.close(fd)
    try:
        argv = ["curl", "-s", "-S", "--max-time", str(timeout), "-D", hdr, "-o", "-",
                "-w", "\n%{http_version}", "%s://%s:%d%s" % (scheme, host, port, path)]
        argv += list(args)
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 5)
        out = p.stdout
        body, _, ver = out.rpartition(b"\n")
        with open(hdr, "rb") as f:
            lines = f.read().decode("latin-1").split("\r\n")
    finally:
        os.unlink(hdr)
    if p.returncode != 0:
        raise AssertionError("curl failed (%d): %s" % (p.returncode, p.stderr.decode()))
    status, headers = None, {}
    for line in lines:
        if line.startswith("HTTP/"):
            status = int(line.split()[1])
            headers = {}
        elif ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return ver.decode(), status, headers, body
