"""Raw-socket HTTP/1.1 client helpers for the integration tests.

Nothing here is lenient on purpose: a response that breaks framing raises, so
a test sees exactly what accel put on the wire.

    c = Conn(port)
    c.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    r = c.read_response()            # Response: status, headers, body, raw
    assert c.wait_closed()           # EOF or reset within the timeout
"""

import socket
import time

from httpmsg import HeaderAccess

DEFAULT_TIMEOUT = 10.0


class IncompleteResponse(Exception):
    """The connection ended before the response's framing said it would."""

    def __init__(self, msg, partial=None):
        super().__init__(msg)
        self.partial = partial          # the Response read so far (body may be short)


class Response(HeaderAccess):
    def __init__(self, version, status, reason, headers):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.body = b""
        self.raw_body = b""             # body bytes as framed on the wire
        self.chunked = False
        self.close_delimited = False
        self.interim = []               # 1xx responses before this one
        self.head_raw = b""


    def tokens(self, name):
        """Comma-separated, lower-cased tokens of a header (e.g. Connection)."""
        out = []
        for v in self.header_all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def __repr__(self):
        return "<Response %d %r %d hdrs body=%d>" % (self.status, self.reason,
                                                     len(self.headers), len(self.body))


class Conn:
    """A client connection with a read buffer."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, n=65536):
        if self.eof:
            return False
        data = self.sock.recv(n)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise AssertionError("no %r within %d bytes" % (sep, limit))
            if not self._fill():
                raise IncompleteResponse("connection closed before %r (have %r)"
                                         % (sep, self.buf[:200]))

    def read_exactly(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteResponse("connection closed after %d of %d bytes"
                                         % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_some(self):
        if not self.buf:
            self._fill()
        out, self.buf = self.buf, b""
        return out

    def read_until_close(self):
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def read_head(self):
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise AssertionError("bad status line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            name, sep, value = ln.decode("latin-1").partition(":")
            if not sep or name != name.strip() or not name:
                raise AssertionError("bad response header line %r" % ln)
            headers.append((name, value.strip(" \t")))
        r = Response(version, int(code), reason, headers)
        r.head_raw = head
        return r

    def read_response(self, method="GET", keep_interim=True):
        """Read one final response (1xx responses before it go to .interim)."""
        interim = []
        while True:
            r = self.read_head()
            if 100 <= r.status < 200 and r.status != 101:
                interim.append(r)
                continue
            break
        r.interim = interim
        if method == "HEAD" or r.status in (101, 204, 304):
            return r
        te = [t for t in r.tokens("Transfer-Encoding")]
        cls = r.header_all("Content-Length")
        if te:
            if cls:
                raise AssertionError("response has both Transfer-Encoding and Content-Length")
            if te[-1] != "chunked":
                raise AssertionError("response Transfer-Encoding %r" % te)
            r.chunked = True
            self._read_chunked(r)
        elif cls:
            vals = {v.strip() for c in cls for v in c.split(",")}
            if len(vals) != 1:
                raise AssertionError("response Content-Length %r" % cls)
            n = int(vals.pop())
            try:
                r.body = self.read_exactly(n)
            except IncompleteResponse as e:
                r.body = self.buf
                self.buf = b""
                raise IncompleteResponse(str(e), r)
            r.raw_body = r.body
        else:
            r.close_delimited = True
            r.body = self.read_until_close()
            r.raw_body = r.body
        return r

    def _read_chunked(self, r):
        body = []
        raw = []
        try:
            while True:
                line = self.read_until(b"\r\n", limit=4096)
                raw.append(line)
                size_s = line[:-2].split(b";", 1)[0]
                if not size_s or any(c not in b"0123456789abcdefABCDEF" for c in size_s):
                    raise AssertionError("bad chunk size line %r" % line)
                size = int(size_s, 16)
                if size == 0:
                    while True:
                        t = self.read_until(b"\r\n", limit=65536)
                        raw.append(t)
                        if t == b"\r\n":
                            break
                    break
                data = self.read_exactly(size)
                crlf = self.read_exactly(2)
                if crlf != b"\r\n":
                    raise AssertionError("chunk data not followed by CRLF: %r" % crlf)
                body.append(data)
                raw.append(data + crlf)
        except IncompleteResponse as e:
            r.body = b"".join(body)
            r.raw_body = b"".join(raw)
            raise IncompleteResponse(str(e), r)
        r.body = b"".join(body)
        r.raw_body = b"".join(raw)

    def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """True when the peer closes (EOF or reset) within `timeout`; data
        arriving before that is discarded (it is in .discarded)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        self.discarded = self.buf
        self.buf = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    return False
                except (ConnectionResetError, BrokenPipeError):
                    return True
                if not data:
                    self.eof = True
                    return True
                self.discarded += data
            return False
        finally:
            self.sock.settimeout(old)

    def request(self, method="GET", target="/", headers=None, body=None, host="test.example",
                version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, host, version))
        return self.read_response(method)


def build_request(method="GET", target="/", headers=None, body=None, host="test.example",
                  version="HTTP/1.1"):
    """Bytes of a well-formed request; headers is a dict or list of pairs."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if host is not None and "host" not in names:
        hdrs.insert(0, ("Host", host))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    out = "%s %s %s\r\n" % (method, target, version)
    for k, v in hdrs:
        out += "%s: %s\r\n" % (k, v)
    data = (out + "\r\n").encode("latin-1")
    if body:
        data += body
    return data


def chunk_encode(pieces, trailers=b""):
    out = b""
    for p in pieces:
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


def request(port, method="GET", target="/", headers=None, body=None, timeout=DEFAULT_TIMEOUT,
            **kw):
    """One request on a fresh connection."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, target, headers, body, **kw)


def port_refuses(port, host="127.0.0.1"):
    """True when a TCP connect to port is refused."""
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=10.0, what="condition", step=0.02):
    """Poll pred() until true; raise AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)
