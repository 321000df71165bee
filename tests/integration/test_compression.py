"""Issue 7: gzip and brotli variants from one cached object.

The origin sends a body (identity or gzip); clients with every kind of
Accept-Encoding ask for it; each answer is decoded here (zlib, Debian's
python3-brotli) and compared byte for byte with what the origin meant.
"""

import gzip
import json
import os
import random
import signal
import socket
import threading
import time
import zlib

import brotli
import pytest

from client import IncompleteResponse, build_request, wait_until
from conftest import SANITIZED
from origin import stream_block
from policy_common import start_policy


def page(n=40000):
    """A compressible HTML page of about n bytes, different per call site."""
    words = [b"accel", b"cache", b"gzip", b"brotli", b"varnish", b"origin", b"vary", b"etag"]
    out, i = [b"<!doctype html><html><body>\n"], 0
    size = 0
    while size < n:
        line = b"<p id=%d>" % i + b" ".join(words[(i * 7 + k) % len(words)] for k in range(12)) \
            + b"</p>\n"
        out.append(line)
        size += len(line)
        i += 1
    out.append(b"</body></html>\n")
    return b"".join(out)


BODY = page()
HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "max-age=60",
        "ETag": '"v1"'}


def decode(r):
    ce = r.header("Content-Encoding")
    if ce is None:
        return r.body
    if ce == "gzip":
        return zlib.decompress(r.body, 16 + 15)
    if ce == "br":
        return brotli.decompress(r.body)
    raise AssertionError("unexpected Content-Encoding %r" % ce)


def ae(value):
    return {} if value is None else {"Accept-Encoding": value}


def wait_brotli(accel, path, timeout=20.0):
    """Hits with Accept-Encoding: br until the background brotli body is in."""
    def ready():
        r = accel.get(path, ae("br"))
        return r.header("Content-Encoding") == "br" and r
    return wait_until(ready, timeout, "brotli body of %s" % path, step=0.05)


# (Accept-Encoding, coding expected once the brotli body exists)
CASES = [
    (None, None),
    ("", None),
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("br", "br"),
    ("br;q=0, gzip", "gzip"),
    ("identity", None),
    ("*", "br"),
    ("gzip;q=0", None),
    ("gzip;q=0, *", "br"),
    ("*;q=0, gzip", "gzip"),
    ("br;q=0.5, gzip", "gzip"),
    ("gzip;q=0.4, br;q=0.41", None),         # identity is q=1 unless listed
    ("gzip;q=0.4, br;q=0.41, identity;q=0.1", "br"),
    ("gzip, deflate, br", "br"),
    ("GZIP ; Q=1.0", "gzip"),
    ("identity;q=0, gzip;q=0", None),
    ("br;q=abc, gzip;q=0.1, identity;q=0", "gzip"),
]


@pytest.mark.parametrize("origin_enc", ["identity", "gzip"])
def test_every_client_gets_the_best_coding_it_accepts(origin, accel, origin_enc):
    headers = dict(HTML)
    body = BODY
    if origin_enc == "gzip":
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(BODY)
    origin.on("/page", body=body, headers=headers)

    # Before the brotli body exists: br clients get gzip.
    r = accel.get("/page", ae("gzip, br"))
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert decode(r) == BODY
    assert origin.last("/page").header("Accept-Encoding") == "gzip"   # as Varnish asks
    wait_brotli(accel, "/page")

    for value, want in CASES:
        r = accel.get("/page", ae(value))
        what = "Accept-Encoding %r (origin %s)" % (value, origin_enc)
        assert r.status == 200, what
        assert r.header("Content-Encoding") == want, what
        assert decode(r) == BODY, what
        assert "accept-encoding" in r.tokens("Vary"), what
        if r.header("Content-Length") is not None:
            assert int(r.header("Content-Length")) == len(r.body), what
        # The origin's ETag belongs to the coding it sent; others are weak.
        strong = (want or "identity") == origin_enc
        assert r.header("ETag") == ('"v1"' if strong else 'W/"v1"'), what
        assert r.header("X-Cache") == "HIT", what
    assert origin.count("/page") == 1, "one fetch serves every coding"


def test_first_client_without_gzip_gets_identity_and_the_object_serves_everybody(origin, accel):
    origin.on("/first", body=BODY, headers=HTML)
    r = accel.get("/first")
    assert r.header("Content-Encoding") is None and r.body == BODY
    assert origin.last("/first").header("Accept-Encoding") is None
    r = accel.get("/first", ae("gzip"))
    assert (r.header("X-Cache"), r.header("Content-Encoding")) == ("HIT", "gzip")
    assert decode(r) == BODY
    assert origin.count("/first") == 1


def test_waiting_clients_stream_while_accel_compresses(origin, accel):
    gate = threading.Event()
    body = page(400000)
    origin.on("/slowpage", body=body, headers=HTML, chunked=True, chunk_size=20000,
              pause_at=(200000, gate))
    try:
        with accel.conn(timeout=10) as c:
            c.send(build_request("GET", "/slowpage", {"Accept-Encoding": "gzip"}))
            head = c.read_head()
            assert head.status == 200 and head.header("Content-Encoding") == "gzip"
            # Before the origin sends the rest, the gzip stream already decodes
            # to most of the first half: the encoder is flushed whenever the
            # origin pauses.
            d, parser, got = zlib.decompressobj(16 + 15), Dechunker(), b""
            deadline = time.monotonic() + 10
            while len(got) < 150000 and time.monotonic() < deadline:
                for piece in parser.feed(c.read_some()):
                    got += d.decompress(piece)
            assert not gate.is_set()
            assert len(got) >= 150000 and body.startswith(got)
    finally:
        gate.set()
    r = accel.get("/slowpage", ae("gzip"))
    assert decode(r) == body


@pytest.mark.parametrize("origin_enc", ["identity", "gzip"])
def test_no_transform_is_served_as_the_origin_sent_it(origin, accel, origin_enc):
    headers = dict(HTML, **{"Cache-Control": "max-age=60, no-transform"})
    body = BODY
    if origin_enc == "gzip":
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(BODY)
    origin.on("/nt", body=body, headers=headers)
    for value in ("gzip", None, "br", "gzip"):
        r = accel.get("/nt", ae(value))
        assert r.body == body, value
        assert r.header("Content-Encoding") == (None if origin_enc == "identity" else "gzip")
        assert r.header("ETag") == '"v1"'
        assert "accept-encoding" not in r.tokens("Vary")
    time.sleep(0.3)     # a brotli job would have run by now
    assert accel.get("/nt", ae("br")).header("Content-Encoding") in (None, "gzip")
    assert origin.count("/nt") == 1


def corrupt_gzip():
    good = gzip.compress(BODY)
    mid = len(good) // 2
    return good[:mid] + bytes(b ^ 0x5a for b in good[mid:mid + 64]) + good[mid + 64:]


def bad_crc_gzip():
    good = bytearray(gzip.compress(BODY))
    good[-8] ^= 0xff                        # CRC32 of the trailer
    return bytes(good)


@pytest.mark.parametrize("kind", ["garbage", "bad-crc", "br-garbage", "truncated"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("client_ae", ["gzip", None])
def test_corrupt_origin_gzip_is_never_served_as_complete(origin, accel, kind, chunked,
                                                         client_ae):
    coding = "gzip"
    if kind == "garbage":
        body = corrupt_gzip()
    elif kind == "bad-crc":
        body = bad_crc_gzip()
    elif kind == "truncated":
        body = gzip.compress(BODY)[:-20]    # whole frames, a stream that never ends
    else:
        good = brotli.compress(BODY)
        body = good[:len(good) // 2] + os.urandom(64) + good[len(good) // 2 + 64:]
        coding = "br"
    origin.on("/bad", body=body, chunked=chunked, chunk_size=4096,
              headers=dict(HTML, **{"Content-Encoding": coding}))
    with pytest.raises(IncompleteResponse):
        accel.get("/bad", ae(client_ae))
    accel.wait_stderr(r"corrupt (gzip|brotli) body; object dropped")
    # not stored: the next request goes to the origin again
    with pytest.raises(IncompleteResponse):
        accel.get("/bad", ae(client_ae))
    assert origin.count("/bad") == 2


def test_http10_client_gets_identity_ended_by_close(origin, accel):
    origin.on("/old", body=BODY, headers=HTML)
    accel.get("/old", ae("gzip"))
    with accel.conn() as c:
        c.send(build_request("GET", "/old", version="HTTP/1.0"))
        head = c.read_head()
        assert head.status == 200 and head.header("Content-Encoding") is None
        assert head.header("Transfer-Encoding") is None
        assert head.header("Content-Length") is None
        assert c.read_until_close() == BODY


def test_head_and_304_carry_the_headers_of_the_chosen_coding(origin, accel):
    origin.on("/h", body=BODY, headers=dict(HTML, **{"Last-Modified":
                                                     "Mon, 02 Nov 2026 10:00:00 GMT"}))
    full = accel.get("/h", ae("gzip"))
    gz_len = len(full.body)
    h = accel.request("HEAD", "/h", headers=ae("gzip"))
    assert h.status == 200 and h.body == b""
    assert h.header("Content-Encoding") == "gzip"
    assert h.header("Content-Length") == str(gz_len)
    assert h.header("ETag") == 'W/"v1"'
    assert "accept-encoding" in h.tokens("Vary")
    h = accel.request("HEAD", "/h")
    assert h.header("Content-Encoding") is None and h.header("ETag") == '"v1"'
    assert "accept-encoding" in h.tokens("Vary")
    # 304: validators and Vary, no coding (RFC 9110 §15.4.5); weak or strong
    # tags match (If-None-Match uses the weak comparison)
    for inm, value, tag in (('W/"v1"', "gzip", 'W/"v1"'), ('"v1"', "gzip", 'W/"v1"'),
                            ('"v1"', None, '"v1"')):
        r = accel.get("/h", {"If-None-Match": inm, **ae(value)})
        assert r.status == 304 and r.body == b""
        assert r.header("ETag") == tag
        assert r.header("Content-Encoding") is None
        assert "accept-encoding" in r.tokens("Vary")
    assert accel.get("/h", {"If-None-Match": '"v2"', **ae("gzip")}).status == 200
    assert origin.count("/h") == 1


def test_ranges_apply_to_the_encoded_representation(origin, accel):
    origin.on("/r", body=BODY, headers=HTML)
    gz = accel.get("/r", ae("gzip")).body
    r = accel.get("/r", {"Range": "bytes=10-109", "Accept-Encoding": "gzip"})
    assert r.status == 206
    assert r.header("Content-Encoding") == "gzip"
    assert r.header("Content-Range") == "bytes 10-109/%d" % len(gz)
    assert r.body == gz[10:110]
    br = wait_brotli(accel, "/r").body
    assert brotli.decompress(br) == BODY
    r = accel.get("/r", {"Range": "bytes=-50", "Accept-Encoding": "br"})
    assert (r.status, r.header("Content-Encoding")) == (206, "br")
    assert r.header("Content-Range") == "bytes %d-%d/%d" % (len(br) - 50, len(br) - 1, len(br))
    assert r.body == br[-50:]
    r = accel.get("/r", {"Range": "bytes=%d-" % (len(gz) + 10), "Accept-Encoding": "gzip"})
    assert r.status == 416 and r.header("Content-Range") == "bytes */%d" % len(gz)
    # If-Range with the strong tag of the identity representation does not
    # match the gzip one (weak): the whole gzip body.
    r = accel.get("/r", {"Range": "bytes=0-9", "If-Range": '"v1"', "Accept-Encoding": "gzip"})
    assert r.status == 200 and r.body == gz
    # identity decoded on the fly: the range is not applied (RFC 9110 §14.2 allows it)
    r = accel.get("/r", {"Range": "bytes=0-9"})
    assert r.status == 200 and r.body == BODY


def test_purge_removes_every_coding(origin, accel):
    origin.on("/pg", body=BODY, headers=HTML)
    accel.get("/pg", ae("gzip"))
    wait_brotli(accel, "/pg")
    r = accel.request("PURGE", "/pg")
    assert r.status == 200 and json.loads(r.body) == {"purged": 1, "mode": "hard"}
    for value in ("br", "gzip", None):
        r = accel.get("/pg", ae(value))
        assert decode(r) == BODY
    assert origin.count("/pg") == 2


def test_brotli_body_is_made_once(origin, accel):
    origin.on("/once", body=BODY, headers=HTML)
    replies = accel.get_many("/once", clients=6, headers={"Accept-Encoding": "br, gzip"})
    assert all(decode(r) == BODY for r in replies)
    wait_brotli(accel, "/once")
    for _ in range(5):
        assert decode(accel.get("/once", ae("br"))) == BODY
    assert origin.count("/once") == 1


def test_small_and_incompressible_responses_are_left_alone(origin, accel):
    origin.on("/small", body=b"<p>tiny</p>", headers=HTML)
    origin.on("/img", body=os.urandom(5000),
              headers={"Content-Type": "image/png", "Cache-Control": "max-age=60"})
    for path in ("/small", "/img"):
        accel.get(path, ae("gzip"))
        r = accel.get(path, ae("gzip, br"))
        assert r.header("X-Cache") == "HIT"
        assert r.header("Content-Encoding") is None and r.header("Vary") is None, path


def test_pass_responses_are_relayed_untouched(origin, accel):
    origin.on("/pass", body=BODY, headers={"Content-Type": "text/html"})
    r = accel.get("/pass", {"Accept-Encoding": "br;q=0.3, gzip", "Cookie": "s=1"})
    assert r.header("X-Cache") == "PASS"
    assert r.body == BODY and r.header("Content-Encoding") is None
    assert origin.last("/pass").header("Accept-Encoding") == "br;q=0.3, gzip"


POLICY = """
sub vcl_backend_response {
    if (bereq.url ~ "^/plain") {
        set beresp.do_gzip = false;
        set beresp.do_brotli = false;
    }
    if (bereq.url ~ "^/gunzip") {
        set beresp.do_gunzip = true;
        set beresp.do_brotli = false;
    }
    if (bereq.url ~ "^/bin") {
        set beresp.do_gzip = true;
    }
    set beresp.http.X-Do = "gzip=" + beresp.do_gzip + " br=" + beresp.do_brotli;
}
"""


def test_policy_turns_compression_on_and_off(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, POLICY, origin)
    origin.on("/plain", body=BODY, headers=HTML)
    origin.on("/gunzip", body=gzip.compress(BODY),
              headers=dict(HTML, **{"Content-Encoding": "gzip"}))
    origin.on("/bin", body=BODY * 2,
              headers={"Content-Type": "application/octet-stream", "Cache-Control": "max-age=60"})
    origin.on("/default", body=BODY, headers=HTML)

    r = a.get("/plain", ae("gzip, br"))
    assert r.header("Content-Encoding") is None and r.body == BODY
    assert r.header("X-Do") == "gzip=false br=false"
    assert r.header("Vary") is None

    for value in ("gzip", None):
        r = a.get("/gunzip", ae(value))
        assert r.header("Content-Encoding") is None and r.body == BODY
        assert r.header("ETag") == 'W/"v1"'     # not the origin's (gzip) representation

    r = a.get("/bin", ae("gzip"))
    assert r.header("Content-Encoding") == "gzip" and decode(r) == BODY * 2
    assert a.get("/bin").body == BODY * 2

    r = a.get("/default", ae("gzip"))
    assert r.header("X-Do") == "gzip=true br=true"
    assert r.header("Content-Encoding") == "gzip"


def test_compression_levels_are_parameters(origin, start_accel):
    a1 = start_accel("-p", "gzip_level=1", origins=[origin])
    a9 = start_accel("-p", "gzip_level=9", "-p", "brotli_max_size=0", origins=[origin])
    rnd = random.Random(7)
    words = [bytes(rnd.choice(b"abcdefghij") for _ in range(rnd.randint(2, 9)))
             for _ in range(300)]
    body = b" ".join(rnd.choice(words) for _ in range(40000))
    origin.on("/lvl", body=body, headers=HTML)
    g1 = a1.get("/lvl", ae("gzip")).body
    g9 = a9.get("/lvl", ae("gzip")).body
    assert zlib.decompress(g1, 31) == zlib.decompress(g9, 31) == body
    assert len(g9) < len(g1) * 0.95, (len(g9), len(g1))
    time.sleep(0.3)
    assert a9.get("/lvl", ae("br, gzip")).header("Content-Encoding") == "gzip"  # no brotli


def test_brotli_body_survives_a_restart(origin, start_accel, tmp_path):
    disk = str(tmp_path / "cache")
    args = ("-s", "disk=%s,size=64m" % disk, "-p", "drain_timeout=3")
    origin.on("/warm", body=BODY, headers=HTML)
    a = start_accel(*args, origins=[origin])
    a.get("/warm", ae("gzip"))
    wait_brotli(a, "/warm")
    a.signal(signal.SIGTERM)
    assert a.wait_exit(15) == 0, a.stderr()[-2000:]
    b = start_accel(*args, origins=[origin])
    r = b.get("/warm", ae("br"))       # written to disk with the object: there at once
    assert (r.header("X-Cache"), r.header("Content-Encoding")) == ("HIT", "br")
    assert decode(r) == BODY
    r = b.get("/warm", ae("gzip"))
    assert (r.header("X-Cache"), r.header("Content-Encoding")) == ("HIT", "gzip")
    assert decode(r) == BODY
    assert decode(b.get("/warm")) == BODY
    assert origin.count("/warm") == 1


MiB = 1 << 20
RSS_LIMIT = 64 * MiB


@pytest.mark.accel_args(workers=1)
def test_100mib_compresses_and_decompresses_with_flat_memory(origin, accel):
    size = (16 if SANITIZED else 100) * MiB
    chunk = 64 * 1024
    origin.on("/big", stream=(chunk, size),
              headers={"Content-Type": "text/plain", "Cache-Control": "max-age=60"})
    block = stream_block(chunk)
    expect = 0
    for _ in range(size // chunk):
        expect = zlib.crc32(block, expect)

    def fetch(value):
        peak = 0
        with accel.conn(timeout=60) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
            c.send(build_request("GET", "/big", ae(value)))
            head = c.read_head()
            assert head.status == 200
            assert head.header("Content-Encoding") == value
            assert head.header("Transfer-Encoding") == "chunked"
            d = zlib.decompressobj(16 + 15) if value == "gzip" else None
            crc, n, raw = 0, 0, c.buf
            c.buf = b""
            parser = Dechunker()
            while not parser.done:
                data = raw or c.read_some()
                raw = b""
                assert data, "connection closed early"
                for piece in parser.feed(data):
                    out = d.decompress(piece) if d else piece
                    crc = zlib.crc32(out, crc)
                    n += len(out)
                if (n >> 24) != ((n - len(data)) >> 24):
                    peak = max(peak, accel.rss() or 0)
            if d:
                rest = d.flush()
                crc = zlib.crc32(rest, crc)
                n += len(rest)
                assert d.eof
        return n, crc, max(peak, accel.rss() or 0)

    n, crc, peak1 = fetch("gzip")          # the miss: compressed while streaming
    assert (n, crc) == (size, expect)
    n, crc, peak2 = fetch(None)            # a hit, decompressed while streaming
    assert (n, crc) == (size, expect)
    peak = max(peak1, peak2, accel.rss_peak() or 0)
    print("accel RSS peak %d MiB" % (peak >> 20))
    assert SANITIZED or peak < RSS_LIMIT, "accel RSS peaked at %d MiB" % (peak >> 20)
    assert origin.count("/big") == 1


class Dechunker:
    """Incremental chunked-body decoder: feed() returns the payload pieces."""

    def __init__(self):
        self.buf = b""
        self.left = 0           # payload bytes still to come in this chunk
        self.crlf = 0           # CRLF bytes to skip after a chunk
        self.done = False

    def feed(self, data):
        self.buf += data
        out = []
        while self.buf and not self.done:
            if self.crlf:
                k = min(self.crlf, len(self.buf))
                self.buf = self.buf[k:]
                self.crlf -= k
                continue
            if self.left:
                piece = self.buf[:self.left]
                self.buf = self.buf[len(piece):]
                self.left -= len(piece)
                out.append(piece)
                if not self.left:
                    self.crlf = 2
                continue
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                break
            size = int(self.buf[:nl].split(b";")[0], 16)
            self.buf = self.buf[nl + 2:]
            if size == 0:
                self.done = True
            self.left = size
        return out


@pytest.mark.accel_args("-p", "default_grace=0")
def test_revalidation_keeps_every_coding_and_the_origin_etag(origin, accel):
    origin.on("/rv", body=BODY, headers=dict(HTML, **{"Cache-Control": "max-age=1"}))
    accel.get("/rv", ae("gzip"))
    time.sleep(1.1)         # stale: the next request revalidates (time is the event)
    origin.on("/rv", status=304, headers={"Cache-Control": "max-age=60", "ETag": '"v1"',
                                          "X-Version": "2"})
    r = accel.get("/rv", ae("br"))
    assert origin.last("/rv").header("If-None-Match") == '"v1"'     # the origin's own tag
    assert r.header("X-Cache") == "REVALIDATED"
    wait_brotli(accel, "/rv")
    for value, want, tag in (("br", "br", 'W/"v1"'), ("gzip", "gzip", 'W/"v1"'),
                             (None, None, '"v1"')):
        r = accel.get("/rv", ae(value))
        assert (r.header("X-Cache"), r.header("Content-Encoding")) == ("HIT", want)
        assert r.header("X-Version") == "2" and r.header("ETag") == tag
        assert decode(r) == BODY
        assert r.header_all("ETag") == [tag] and r.header_all("Content-Encoding") == \
            ([want] if want else [])
    assert origin.count("/rv") == 2
