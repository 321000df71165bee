"""Cross-feature checks: compression (issue 7), origin pools (issue 8) and
TLS (issue 9) together.  Compressed variants delivered to TLS clients (slow
readers, HEAD, ranges, pipelining), compressible bodies from TLS origins
with waiters on the busy object, origins dying mid-body over TLS, reloads
under load with directors + .ssl backends + certificates, purges while a
brotli body is being made."""

import os
import signal
import socket
import ssl
import threading
import time
import zlib

import brotli
import pytest

from client import IncompleteResponse, build_request, wait_until
from origin import Origin
from policy_common import start_policy
from tlscerts import TLSConn, client_context, make_leaf, make_pki
from test_compression import page


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("cpki"))
    p = make_pki(d)
    make_leaf(d, "ip", ["localhost,IP:127.0.0.1"])
    return p


BIG = page(300000)          # ~300 KB of HTML: many 16 KiB TLS records, gzip ~ tens of KB
HTML = {"Content-Type": "text/html", "Cache-Control": "max-age=60", "ETag": '"c1"'}


def decode(r):
    ce = r.header("Content-Encoding")
    if ce is None:
        return r.body
    if ce == "gzip":
        return zlib.decompress(r.body, 16 + 15)
    if ce == "br":
        return brotli.decompress(r.body)
    raise AssertionError("unexpected Content-Encoding %r" % ce)


def tls_listen(start_accel, pki, *args, origins=(), workers=2, **kw):
    from test_tls import start_tls
    return start_tls(start_accel, pki, *args, origins=origins, certs=("a",), workers=workers, **kw)


def slow_tls_conn(port, pki, rcvbuf=4096):
    """A TLS client with a tiny receive buffer (a slow reader)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", port))
    c = TLSConn.__new__(TLSConn)
    c.sock = client_context(pki.ca).wrap_socket(raw, server_hostname="a.test")
    c.buf = b""
    c.eof = False
    return c


def tls_origin(pki, leaf="ip"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert(leaf), pki.key(leaf))
    return Origin(tls=ctx)


# -- compressed variants over a TLS client connection -------------------------------


def test_compressed_variants_to_slow_tls_clients(origin, start_accel, pki):
    origin.on("/big", headers=HTML, body=BIG, chunked=True, chunk_size=7000)
    a = tls_listen(start_accel, pki, origins=[origin])
    # first a fill over TLS (gzip while filling) to a gzip client
    with TLSConn(a.tls, "a.test", cafile=pki.ca) as c:
        r = c.request("GET", "/big", {"Accept-Encoding": "gzip"})
        assert r.status == 200 and r.header("Content-Encoding") == "gzip"
        assert decode(r) == BIG
    wait_until(lambda: a.get("/big", {"Accept-Encoding": "br"}).header("Content-Encoding")
               == "br", 20, "brotli body")
    # slow readers: identity (gunzip on the fly), gzip, br, HEAD, a range, pipelined
    c = slow_tls_conn(a.tls, pki)
    try:
        reqs = [("GET", {"Accept-Encoding": "identity"}), ("GET", {"Accept-Encoding": "gzip"}),
                ("HEAD", {"Accept-Encoding": "gzip"}), ("GET", {"Accept-Encoding": "br"}),
                ("GET", {"Range": "bytes=1000-5000", "Accept-Encoding": "gzip"}), ("GET", {})]
        c.send(b"".join(build_request(m, "/big", h) for m, h in reqs))
        time.sleep(0.5)     # let accel fill the socket and wait for the reader
        out = []
        for m, h in reqs:
            c.sock.settimeout(20)
            out.append(c.read_response(m))
        ident, gz, head, br, rng, plain = out
        assert ident.header("Content-Encoding") is None and ident.body == BIG
        assert decode(gz) == BIG and gz.header("Content-Encoding") == "gzip"
        assert head.status == 200 and head.header("Content-Encoding") == "gzip"
        assert br.header("Content-Encoding") == "br" and decode(br) == BIG
        assert rng.status == 206 and rng.body == gz.body[1000:5001]  # of the gzip bytes
        assert plain.body == BIG
    finally:
        c.close()
    # a conditional GET with the gzip variant's ETag
    with TLSConn(a.tls, "a.test", cafile=pki.ca) as c:
        r = c.request("GET", "/big", {"Accept-Encoding": "gzip"})
        etag = r.header("ETag")
        r = c.request("GET", "/big", {"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert r.status == 304
        r = c.request("GET", "/big", {"Accept-Encoding": "identity"})
        assert r.body == BIG
    assert origin.count("/big") == 1


# -- compressible bodies from a TLS origin ---------------------------------------------


def https_accel(start_accel, pki, o, *args, **kw):
    return start_accel("-b", "https://127.0.0.1:%d" % o.port, "-p", "origin_ca_file=" + pki.ca,
                       *args, **kw)


def test_tls_origin_gzip_fill_with_waiters(start_accel, pki):
    o = tls_origin(pki)
    try:
        gate = threading.Event()
        o.on("/w", headers=HTML, body=BIG, chunked=True, chunk_size=5000, pause_at=(60000, gate))
        a = https_accel(start_accel, pki, o)
        aes = ["gzip", "identity", "br, gzip", None, "gzip", "identity"]
        out = [None] * len(aes)

        def run(i):
            try:
                out[i] = a.get("/w", {} if aes[i] is None else {"Accept-Encoding": aes[i]},
                               timeout=30)
            except Exception as e:      # reported below
                out[i] = e
        ts = [threading.Thread(target=run, args=(i,)) for i in range(len(aes))]
        for t in ts:
            t.start()
        o.wait_count("/w", 1) if False else o.wait_head("/w")
        time.sleep(0.3)             # all clients wait on the busy object
        gate.set()
        for t in ts:
            t.join(30)
        for ae, r in zip(aes, out):
            assert not isinstance(r, Exception), r
            assert r.status == 200
            want = "gzip" if ae and "gzip" in ae else None
            assert r.header("Content-Encoding") == want, (ae, r.headers)
            assert decode(r) == BIG
        assert o.count("/w") == 1
    finally:
        o.stop()


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_tls_origin_dies_mid_body(start_accel, pki, framing):
    o = tls_origin(pki)
    try:
        kw = {"chunked": framing == "chunked", "close_delimited": framing == "close"}
        o.on("/d", headers=HTML, body=BIG, chunk_size=8000, truncate_after=100000, **kw)
        a = https_accel(start_accel, pki, o)
        for ae in ("gzip", "identity", "gzip"):
            c = a.conn(timeout=20)
            try:
                c.send(build_request("GET", "/d", {"Accept-Encoding": ae}))
                try:
                    r = c.read_response()
                except IncompleteResponse:
                    r = None        # cut short: never taken for whole
                if r is not None:
                    # a whole answer is allowed only when it is an error status
                    assert r.status >= 500, (framing, ae, r.status, len(r.body))
            finally:
                c.close()
        assert o.count("/d") == 3, "a cut body is never cached"
        # whole bodies are cached; a close-delimited one needs the origin's
        # close_notify to be whole (RFC 9112 §9.8)
        o.on("/d", headers=HTML, body=BIG, chunk_size=8000, close_notify=True, **kw)
        r = a.get("/d", {"Accept-Encoding": "gzip"}, timeout=20)
        assert r.status == 200 and decode(r) == BIG
        r = a.get("/d", {"Accept-Encoding": "identity"}, timeout=20)
        assert r.status == 200 and r.body == BIG
        assert o.count("/d") == 4
    finally:
        o.stop()
