"""A scripted HTTP/1.1 origin server for the integration tests.

It runs in the test process (one thread per connection), records every request
that reaches it and answers from a per-path script:

    origin.on("/slow", status=200, body=b"ok", delay=0.3,
              headers={"Cache-Control": "max-age=60"})

Script keys (all optional):
    status, reason       final status (default 200 "OK")
    headers              dict or list of (name, value) pairs, sent as given
    body                 response body bytes (default b"path=<target>")
    echo                 answer with the request body instead of `body`
    delay                seconds to wait before sending anything
    gate                 a threading.Event to wait on before answering
    interim              list of (status, headers) 1xx responses sent first
    chunked              send the body chunked (chunk_size bytes per chunk)
    close_delimited      no Content-Length, no chunked: end the body by closing
    content_length       announce this Content-Length instead of len(body)
    truncate_after       send only this many body bytes, then close
    stall_after          send this many body bytes, then wait until stop()
    pause_at             (n, event): after n body bytes wait for event, then go on
    close                send "Connection: close" and close after the answer
    silent_close         close after the answer without announcing it
    close_notify         TLS: send close_notify before closing after the answer
                         (without it a TLS origin's close is an unclean one)
    raw                  send these bytes verbatim instead of a response, close
    reset                read the request, then close with RST (SO_LINGER 0)
    drop                 read the request, then close without answering
    stream               (chunk_size, total_bytes): a generated large body
    websocket_echo       answer an Upgrade with 101 and echo WebSocket frames
    expect_continue      True (default): send 100 Continue before reading a
                         body when asked; False: read the body without it;
                         "reject": answer at once without reading the body
    read_body            False: answer without reading the request body

Unscripted paths get 200 with body b"path=<target>".  Scripts match the whole
target first, then the path without its query.
"""

import base64
import hashlib
import socket
import struct
import threading
import time

from httpmsg import HeaderAccess

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

REASONS = {100: "Continue", 101: "Switching Protocols", 103: "Early Hints", 200: "OK",
           204: "No Content", 206: "Partial Content", 301: "Moved Permanently",
           304: "Not Modified", 400: "Bad Request", 404: "Not Found",
           413: "Content Too Large", 417: "Expectation Failed", 500: "Internal Server Error",
           503: "Service Unavailable"}


def stream_block(chunk_size):
    """The repeating block a `stream` body is made of (tests recompute it)."""
    pattern = bytes(range(256))
    return (pattern * (chunk_size // 256 + 1))[:chunk_size]


class Request(HeaderAccess):
    """One request as the origin received it."""

    def __init__(self, conn_id, method, target, version, headers):
        self.conn_id = conn_id
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # list of (name, value) as received
        self.body = b""
        self.complete = False           # the whole body arrived

    @property
    def path(self):
        return self.target.split("?", 1)[0]


    def __repr__(self):
        return "<Request #%d %s %s %d hdrs body=%d>" % (
            self.conn_id, self.method, self.target, len(self.headers), len(self.body))


class _Closed(Exception):
    pass


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock, on_bytes):
        self.sock = sock
        self.buf = b""
        self.on_bytes = on_bytes

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self.on_bytes(len(data))
        self.buf += data

    def until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise _Closed()
            self._fill()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def some(self):
        if not self.buf:
            self._fill()
        out, self.buf = self.buf, b""
        return out


class Origin:
    def __init__(self, host="127.0.0.1", tls=None):
        """tls: an ssl.SSLContext (server side) to speak HTTPS instead."""
        self.tls = tls
        self.sni = []               # TLS: the server name of every handshake (None: no SNI)
        self.tls_resumed = 0        # TLS: handshakes that resumed a session
        self.tls_failed = 0         # TLS: handshakes that failed
        if tls is not None:
            tls.sni_callback = self._on_sni
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._scripts = {}
        self.requests = []          # complete requests, in arrival order
        self.heads = []             # every request head, even if its body never came
        self.connections = 0        # connections accepted
        self.closed = 0             # connections closed (by either side)
        self.bytes_received = 0
        self.bytes_sent = 0
        self._socks = set()
        self._stopping = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(128)
        self.host = host
        self.port = self.lsock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # -- scripting and inspection -------------------------------------------------

    def on(self, path, **script):
        with self._lock:
            self._scripts[path] = script

    def count(self, path):
        """Complete requests received for `path` (whole target or path part)."""
        with self._lock:
            return sum(1 for r in self.requests if r.target == path or r.path == path)

    def requests_for(self, path):
        with self._lock:
            return [r for r in self.requests if r.target == path or r.path == path]

    def last(self, path=None):
        with self._lock:
            rs = [r for r in self.requests if path is None or r.target == path or r.path == path]
        return rs[-1] if rs else None

    def wait_for(self, pred, timeout=10.0, what="condition"):
        """Wait until pred() (called under the origin's lock) is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("origin: timed out waiting for %s" % what)
                self._cond.wait(min(left, 0.1))

    def wait_count(self, path, n=1, timeout=10.0):
        self.wait_for(lambda: sum(1 for r in self.requests
                                  if r.target == path or r.path == path) >= n,
                      timeout, "%d request(s) for %s" % (n, path))

    def wait_head(self, path, timeout=10.0):
        self.wait_for(lambda: any(r.target == path or r.path == path for r in self.heads),
                      timeout, "a request head for %s" % path)

    def stop(self):
        self._stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        with self._cond:
            self._cond.notify_all()
        # release anything waiting on a gate
        with self._lock:
            for sc in self._scripts.values():
                for g in (sc.get("gate"), (sc.get("pause_at") or (0, None))[1]):
                    if g is not None:
                        g.set()

    # -- server -------------------------------------------------------------------

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self._cond:
                self.connections += 1
                cid = self.connections
                self._socks.add(s)
                self._cond.notify_all()
            threading.Thread(target=self._serve, args=(s, cid), daemon=True).start()

    def _count_in(self, n):
        with self._lock:
            self.bytes_received += n

    def _send(self, s, data):
        s.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _script_for(self, target):
        with self._lock:
            sc = self._scripts.get(target)
            if sc is None:
                sc = self._scripts.get(target.split("?", 1)[0])
            return dict(sc) if sc is not None else {}

    def _on_sni(self, sslsock, name, ctx):
        with self._lock:
            self.sni.append(name)

    def _serve(self, s, cid):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            raw = s
            try:
                s.settimeout(10)
                s = self.tls.wrap_socket(s, server_side=True)
                s.settimeout(None)
                with self._lock:
                    self._socks.discard(raw)
                    self._socks.add(s)
                    self.tls_resumed += 1 if s.session_reused else 0
            except OSError:
                with self._cond:
                    self._socks.discard(raw)
                    self.tls_failed += 1
                    self.closed += 1
                    self._cond.notify_all()
                s.close()
                return
        rd = _Reader(s, self._count_in)
        try:
            while not self._stopping.is_set():
                if not self._one(s, rd, cid):
                    break
        except (_Closed, OSError):
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass
            with self._cond:
                self._socks.discard(s)
                self.closed += 1
                self._cond.notify_all()

    def _one(self, s, rd, cid):
        """Serve one request; False when the connection is finished."""
        head = rd.until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        while lines and lines[0] == b"":      # tolerate stray CRLF before a request
            lines.pop(0)
        if not lines:
            return True
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            self._send(s, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        method, target, version = parts
        headers = []
        for ln in lines[1:]:
            name, _, value = ln.decode("latin-1").partition(":")
            headers.append((name, value.strip(" \t")))
        req = Request(cid, method, target, version, headers)
        with self._cond:
            self.heads.append(req)
            self._cond.notify_all()
        sc = self._script_for(target)

        expect = (req.header("Expect") or "").lower() == "100-continue"
        exp_mode = sc.get("expect_continue", True)
        te = (req.header("Transfer-Encoding") or "").lower()
        cl = req.header("Content-Length")
        has_body = "chunked" in te or (cl is not None and cl.strip() not in ("", "0"))
        read_body = sc.get("read_body", True) and exp_mode != "reject"
        if read_body:
            if expect and exp_mode is True and has_body:
                self._send(s, b"HTTP/1.1 100 Continue\r\n\r\n")
            if "chunked" in te:
                req.body = self._read_chunked(rd)
            elif cl is not None:
                req.body = rd.exactly(int(cl.split(",")[0].strip()))
            req.complete = True
        with self._cond:
            if req.complete:
                self.requests.append(req)
            self._cond.notify_all()
        return self._respond(s, rd, req, sc)

    def _read_chunked(self, rd):
        body = b""
        while True:
            line = rd.until(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while rd.until(b"\r\n") != b"\r\n":   # trailers
                    pass
                return body
            body += rd.exactly(size)
            if rd.exactly(2) != b"\r\n":
                raise _Closed()

    def _wait_stop(self):
        self._stopping.wait(120)

    def _respond(self, s, rd, req, sc):
        if sc.get("delay"):
            if self._stopping.wait(sc["delay"]):
                return False
        if sc.get("gate") is not None:
            sc["gate"].wait(120)
            if self._stopping.is_set():
                return False
        if sc.get("drop"):
            return False
        if sc.get("reset"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if sc.get("raw") is not None:
            self._send(s, sc["raw"])
            if sc.get("stall_after") is not None:
                self._wait_stop()
            return False

        for st, hdrs in sc.get("interim", []):
            out = "HTTP/1.1 %d %s\r\n" % (st, REASONS.get(st, "Info"))
            for k, v in _pairs(hdrs):
                out += "%s: %s\r\n" % (k, v)
            self._send(s, (out + "\r\n").encode("latin-1"))

        upgrade = (req.header("Upgrade") or "").lower()
        if sc.get("websocket_echo") and upgrade == "websocket":
            return self._websocket(s, rd, req)

        status = sc.get("status", 200)
        reason = sc.get("reason", REASONS.get(status, "Whatever"))
        if sc.get("echo"):
            body = req.body
        else:
            body = sc.get("body", ("path=%s" % req.target).encode("latin-1"))
        stream = sc.get("stream")
        total = stream[1] if stream else len(body)
        no_body = req.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        chunked = sc.get("chunked", False)
        close = sc.get("close", False) or req.version == "HTTP/1.0" or \
            "close" in (req.header("Connection") or "").lower()
        close_delim = sc.get("close_delimited", False)

        hdrs = list(_pairs(sc.get("headers", {})))
        names = {k.lower() for k, _ in hdrs}
        out = "HTTP/1.1 %d %s\r\n" % (status, reason)
        for k, v in hdrs:
            out += "%s: %s\r\n" % (k, v)
        if "content-length" not in names and "transfer-encoding" not in names and \
                status != 204 and not (100 <= status < 200):
            if chunked:
                out += "Transfer-Encoding: chunked\r\n"
            elif close_delim:
                close = True
            else:
                out += "Content-Length: %d\r\n" % sc.get("content_length", total)
        if close and "connection" not in names:
            out += "Connection: close\r\n"
        self._send(s, (out + "\r\n").encode("latin-1"))
        if no_body:
            return not close

        limit = total
        if sc.get("truncate_after") is not None:
            limit = min(limit, sc["truncate_after"])
        stall = sc.get("stall_after")
        if stall is not None:
            limit = min(limit, stall)
        csize = sc.get("chunk_size", stream[0] if stream else 1000)
        if stream:
            block = stream_block(stream[0])
            sent = 0
            while sent < limit:
                piece = block[:min(len(block), limit - sent)]
                self._send(s, _frame(piece, chunked))
                sent += len(piece)
        else:
            data = body[:limit]
            pause = sc.get("pause_at")
            for i in range(0, len(data), csize):
                if pause is not None and i >= pause[0]:
                    pause[1].wait(60)
                    pause = None
                    if self._stopping.is_set():
                        return False
                self._send(s, _frame(data[i:i + csize], chunked))
        if stall is not None:
            self._wait_stop()
            return False
        if limit < total:                      # truncated: close mid-body
            return False
        if chunked:
            self._send(s, b"0\r\n\r\n")
        if sc.get("silent_close"):
            return False
        if close and self.tls is not None and sc.get("close_notify"):
            s.settimeout(2)
            try:
                s.unwrap()          # close_notify, then the peer's (accel sends one)
            except (OSError, ValueError):
                pass
            return False
        return not close

    def _websocket(self, s, rd, req):
        key = (req.header("Sec-WebSocket-Key") or "").encode("latin-1")
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        self._send(s, ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                       % accept).encode())
        while True:
            op, payload = ws_read_frame(rd.exactly, masked_ok=True)
            self._send(s, ws_frame(op, payload, mask=False))
            if op == 8:
                return False


def _pairs(h):
    return list(h.items()) if isinstance(h, dict) else list(h)


def _frame(piece, chunked):
    if not chunked:
        return piece
    return b"%x\r\n" % len(piece) + piece + b"\r\n"


def ws_frame(opcode, payload, mask=True):
    """One final WebSocket frame (RFC 6455 §5.2)."""
    b0 = 0x80 | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = b"\x11\x22\x33\x44"
    return hdr + key + _xor(payload, key)


def ws_read_frame(exactly, masked_ok=True):
    """Read one frame with `exactly(n)`; returns (opcode, unmasked payload)."""
    b0, b1 = exactly(2)
    op = b0 & 0x0F
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exactly(8))[0]
    key = exactly(4) if b1 & 0x80 else None
    payload = exactly(n)
    if key:
        payload = _xor(payload, key)
    return op, payload


def _xor(data, key):
    if not data:
        return b""
    k = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(len(data), "big")
