"""Issue 15: HTTP/2 on the client side.  h2 over TLS by ALPN and h2c with
prior knowledge on plain listeners, every cache feature the same as over
HTTP/1.1 on the same cache, flow control per stream, and the limits and
attacks (each with its parameter and counter): max concurrent streams,
header list size, CONTINUATION flood (CVE-2024-27316), rapid reset
(CVE-2023-44487), SETTINGS / PING / empty-frame floods, a client that
never reads, idle timeout, graceful GOAWAY on SIGTERM and SIGHUP.

Clients: python3-h2 (H2Conn), raw frames (RawH2) for what no polite client
sends, and curl --http2 / --http2-prior-knowledge.
"""

import gzip
import json
import os
import random
import signal
import socket
import ssl
import threading
import time

import pytest

from client import Conn, free_port, request, wait_until
from h2client import (COMPRESSION_ERROR, ENHANCE_YOUR_CALM, FRAME_SIZE_ERROR, NO_ERROR,
                      PROTOCOL_ERROR, REFUSED_STREAM, H2Conn, RawH2, curl)
from hyperframe.frame import SettingsFrame
from policy_common import write_vcl
from tlscerts import client_context, make_pki

MAXAGE = {"Cache-Control": "max-age=60"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def start_h2(start_accel, origin, *args, tls=False, pki=None, workers=1, log=False,
             with_origin=True):
    """accel with an admin listener (a.admin) for the counters and, with
    tls, a TLS listener (a.tls) with the a/b test certificates."""
    admin = free_port()
    extra = ["-T", "127.0.0.1:%d" % admin]
    tport = None
    if tls:
        tport = free_port()
        extra += ["-a", "127.0.0.1:%d,tls" % tport, "-c", pki.spec("a"), "-c", pki.spec("b")]
    a = start_accel(*extra, *args, origins=[origin] if with_origin else [], workers=workers,
                    log=log)
    if tls:
        a.wait_stderr(r"listening on 127\.0\.0\.1:%d" % tport)
    a.admin = admin
    a.tls = tport
    return a


def counters(a):
    r = request(a.admin, "GET", "/stats")
    return json.loads(r.body.decode())["counters"]


def wait_counter(a, name, at_least=1, timeout=10):
    return wait_until(lambda: counters(a)[name] >= at_least, timeout,
                      "counter %s >= %d" % (name, at_least))


def h2tls(a, pki, host="a.test", **kw):
    return H2Conn(a.tls, tls=client_context(pki.ca, alpn=["h2", "http/1.1"]),
                  server_hostname=host, **kw)


# -- getting to HTTP/2 -----------------------------------------------------------------


def test_h2c_prior_knowledge_miss_then_hit(origin, start_accel):
    origin.on("/a", body=b"hello h2", headers=MAXAGE)
    a = start_h2(start_accel, origin)
    with H2Conn(a.port) as c:
        r1 = c.get("/a")
        r2 = c.get("/a")
    assert (r1.status, r1.body) == (200, b"hello h2")
    assert (r2.status, r2.body) == (200, b"hello h2")
    assert r1.header("x-cache") == "MISS" and r2.header("x-cache") == "HIT"
    assert r2.header("content-length") == "8"
    assert r2.header("age") is not None
    # no HTTP/1.1 connection fields ever reach an HTTP/2 client
    for r in (r1, r2):
        assert r.header("connection") is None and r.header("transfer-encoding") is None
        assert r.header("keep-alive") is None
    assert origin.count("/a") == 1
    # the origin request is HTTP/1.1 with a Host from :authority
    assert origin.last("/a").header("Host") == "test.example"
    c = counters(a)
    # client_req: the two streams, and this GET /stats on the admin listener
    assert c["h2_conn"] == 1 and c["h2_stream"] == 2 and c["client_req"] == 3


def test_curl_prior_knowledge_and_plain_http11_share_the_port(origin, start_accel):
    origin.on("/c", body=b"curl body", headers=MAXAGE)
    a = start_h2(start_accel, origin)
    v, status, h, body = curl(a.port, "/c", "--http2-prior-knowledge", "-H", "Host: test.example")
    assert (v, status, body) == ("2", 200, b"curl body")
    r = a.get("/c")                                  # HTTP/1.1 on the same port, same cache
    assert r.status == 200 and r.header("X-Cache") == "HIT" and r.version == "HTTP/1.1"
    v, status, h, body = curl(a.port, "/c", "-H", "Host: test.example")  # HTTP/1.1
    assert v == "1.1" and h["x-cache"] == "HIT"


def test_h2_over_tls_by_alpn(origin, start_accel, pki):
    origin.on("/t", body=b"tls h2", headers=MAXAGE)
    a = start_h2(start_accel, origin, tls=True, pki=pki)
    with h2tls(a, pki) as c:
        assert c.alpn() == "h2"
        r = c.get("/t")
        assert (r.status, r.body) == (200, b"tls h2")
    # h2 first: a client offering both gets h2; one offering http/1.1 gets it
    ctx = client_context(pki.ca, alpn=["http/1.1", "h2"])
    with socket.create_connection(("127.0.0.1", a.tls)) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            assert s.selected_alpn_protocol() == "h2"
    ctx = client_context(pki.ca, alpn=["http/1.1"])
    with socket.create_connection(("127.0.0.1", a.tls)) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
    v, status, _, body = curl(a.tls, "/t", "--http2", "--cacert", pki.ca, "--resolve",
                              "a.test:%d:127.0.0.1" % a.tls, host="a.test", scheme="https")
    assert (v, status, body) == ("2", 200, b"tls h2")
    assert origin.last("/t").header("X-Forwarded-Proto") == "https"


def test_sni_picks_the_certificate_over_h2(origin, start_accel, pki):
    a = start_h2(start_accel, origin, tls=True, pki=pki)
    for host in ("a.test", "b.test"):
        with h2tls(a, pki, host=host) as c:
            names = [v for k, v in c.sock.getpeercert().get("subjectAltName", ()) if k == "DNS"]
            assert names == [host]
            assert c.get("/sni", authority=host).status == 200


def test_http2_off(origin, start_accel, pki):
    origin.on("/o", body=b"h1 only")
    a = start_h2(start_accel, origin, "-p", "http2=off", tls=True, pki=pki)
    ctx = client_context(pki.ca, alpn=["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", a.tls)) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", a.tls)) as raw:
            client_context(pki.ca, alpn=["h2"]).wrap_socket(raw, server_hostname="a.test")
    # the preface on the plain port is just a bad HTTP/1.1 request
    with Conn(a.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        r = c.read_response()
        assert r.status in (400, 505)
    assert counters(a)["h2_conn"] == 0


def test_upgrade_h2c_is_neither_honoured_nor_forwarded(origin, start_accel):
    origin.on("/u", body=b"plain")
    a = start_h2(start_accel, origin)
    r = a.get("/u", headers={"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c",
                             "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA"})
    assert r.status == 200 and r.body == b"plain" and r.version == "HTTP/1.1"
    seen = origin.last("/u")
    assert seen.header("Upgrade") is None and seen.header("HTTP2-Settings") is None
    assert counters(a)["h2_conn"] == 0


def test_connect_is_405_and_malformed_requests_are_stream_errors(origin, start_accel):
    a = start_h2(start_accel, origin)
    with RawH2(a.port) as r:
        r.headers(1, [(":method", "CONNECT"), (":authority", "example.com:443")],
                  end_stream=True)
        assert r.status(1) == 405
        # RFC 9113 §8.2.2: a connection-specific field makes the request malformed
        r.get(3, "/m", extra=[("connection", "close")])
        assert r.wait_rst(3).error_code == PROTOCOL_ERROR
        # uppercase field names are malformed too (§8.2)
        r.get(5, "/m", extra=[("X-Upper", "1")])
        assert r.wait_rst(5).error_code == PROTOCOL_ERROR
        r.get(7, "/fine")
        assert r.status(7) == 200
    assert origin.count("/m") == 0


# -- the cache over h2, the same cache as HTTP/1.1 -------------------------------------


def test_many_streams_of_many_connections_share_one_fetch(origin, start_accel):
    body = os.urandom(200000)
    release = threading.Event()
    origin.on("/co", body=body, headers=MAXAGE, chunk_size=16384, pause_at=(16384, release))
    a = start_h2(start_accel, origin, workers=2)
    conns = [H2Conn(a.port) for _ in range(4)]
    try:
        first = conns[0].send_request("GET", "/co")
        origin.wait_head("/co")
        sids = [(c, c.send_request("GET", "/co")) for c in conns for _ in range(5)]
        # every waiter streams the first bytes while the origin still waits
        for c, sid in sids + [(conns[0], first)]:
            c.wait(lambda c=c, sid=sid: len(c.streams[sid].body) >= 16384, what="first bytes")
        assert not release.is_set()
        release.set()
        for c, sid in sids + [(conns[0], first)]:
            r = c.response(sid)
            assert r.status == 200 and r.body == body, r
    finally:
        release.set()
        for c in conns:
            c.close()
    assert origin.count("/co") == 1
    assert counters(a)["cache_coalesced"] >= 20


def test_grace_revalidation_and_304(origin, start_accel):
    origin.on("/g", body=b"v1", headers={"Cache-Control": "max-age=1, stale-while-revalidate=30",
                                           "ETag": '"e1"'})
    a = start_h2(start_accel, origin)
    with H2Conn(a.port) as c:
        assert c.get("/g").body == b"v1"
        time.sleep(1.2)
        origin.on("/g", body=b"v2", headers={"Cache-Control": "max-age=60", "ETag": '"e2"'})
        r = c.get("/g")                      # stale within grace: at once, refreshed behind
        assert r.body == b"v1" and r.header("x-cache") == "STALE"
        wait_until(lambda: origin.count("/g") == 2, 10, "background refresh")
        wait_until(lambda: c.get("/g").body == b"v2", 10, "refreshed object")
        r = c.get("/g", headers={"if-none-match": '"e2"'})
        assert r.status == 304 and r.body == b""
    assert origin.last("/g").header("If-None-Match") == '"e1"'   # revalidated with ours


def test_vary_range_head(origin, start_accel):
    origin.on("/v", body=b"0123456789abcdef", headers={"Cache-Control": "max-age=60",
                                                       "Vary": "Accept-Language"})
    a = start_h2(start_accel, origin)
    with H2Conn(a.port) as c:
        assert c.get("/v", headers={"accept-language": "en"}).header("x-cache") == "MISS"
        assert c.get("/v", headers={"accept-language": "de"}).header("x-cache") == "MISS"
        assert c.get("/v", headers={"accept-language": "en"}).header("x-cache") == "HIT"
        r = c.get("/v", headers={"accept-language": "en", "range": "bytes=2-5"})
        assert r.status == 206 and r.body == b"2345"
        assert r.header("content-range") == "bytes 2-5/16"
        r = c.request("HEAD", "/v", headers={"accept-language": "en"})
        assert r.status == 200 and r.body == b"" and r.header("content-length") == "16"
    assert origin.count("/v") == 2


def test_purge_and_ban_over_h2(origin, start_accel):
    origin.on("/p", body=b"p", headers=MAXAGE)
    origin.on("/b/1", body=b"b", headers=MAXAGE)
    a = start_h2(start_accel, origin)
    with H2Conn(a.port) as c:
        c.get("/p")
        c.get("/b/1")
        assert c.get("/p").header("x-cache") == "HIT"
        r = c.request("PURGE", "/p")
        assert r.status == 200
        assert c.get("/p").header("x-cache") == "MISS"
        r = c.request("BAN", "/", headers={"ban": 'req.url ~ "^/b/"'})
        assert r.status == 200
        assert c.get("/b/1").header("x-cache") == "MISS"


def test_compression_variants_over_h2(origin, start_accel):
    page = b"<html>" + b"hello compression " * 2000 + b"</html>"
    origin.on("/z.html", body=page, headers={"Cache-Control": "max-age=60",
                                             "Content-Type": "text/html"})
    a = start_h2(start_accel, origin)
    with H2Conn(a.port) as c:
        r = c.get("/z.html", headers={"accept-encoding": "gzip"})
        assert r.header("content-encoding") == "gzip" and gzip.decompress(r.body) == page
        assert "accept-encoding" in r.header("vary", "").lower()
        r = c.get("/z.html")                 # takes no coding: decoded for it
        assert r.header("content-encoding") is None and r.body == page
    r = a.get("/z.html", headers={"Accept-Encoding": "gzip"})   # the same object over h1
    assert r.header("X-Cache") == "HIT" and gzip.decompress(r.body) == page
    assert origin.count("/z.html") == 1


def test_policy_sees_http2_and_the_log_says_so(origin, start_accel, tmp_path):
    vcl = write_vcl(tmp_path, "sub vcl_deliver { set resp.http.X-Proto = req.proto; }\n",
                    origin=origin)
    origin.on("/pp", body=b"p", headers=MAXAGE)
    a = start_h2(start_accel, origin, "-f", vcl, log=True, with_origin=False)
    with H2Conn(a.port) as c:
        assert c.get("/pp").header("x-proto") == "HTTP/2.0"
    assert a.get("/pp").header("X-Proto") == "HTTP/1.1"
    lines = a.wait_access_log(2)
    assert any('"GET /pp HTTP/2.0" 200' in ln for ln in lines), lines
    assert any('"GET /pp HTTP/1.1" 200' in ln for ln in lines), lines


def test_request_body_passed_to_the_origin(origin, start_accel):
    origin.on("/post", echo=True)
    a = start_h2(start_accel, origin)
    body = os.urandom(300000)                # several windows' worth
    with H2Conn(a.port) as c:
        r = c.request("POST", "/post", body=body)
        assert r.status == 200 and r.body == body
        r = c.request("POST", "/post", headers={"content-length": "5"}, body=b"12345")
        assert r.body == b"12345"
    assert origin.last("/post").header("Content-Length") == "5"


def test_slow_request_body_gets_408(origin, start_accel):
    origin.on("/up", echo=True)
    a = start_h2(start_accel, origin, "-p", "min_body_rate=100k")
    with H2Conn(a.port) as c:
        sid = c.send_request("POST", "/up", headers={"content-length": "100000"},
                             end_stream=False)
        c.send_body(sid, b"x" * 100)            # then nothing: far below 100k/s
        r = c.response(sid, timeout=20)
        assert r.status == 408 or r.reset is not None, r
        assert c.get("/other").status == 200   # the connection goes on


def test_large_object_streams_and_a_stalled_stream_stalls_nothing_else(origin, start_accel):
    big = os.urandom(4 << 20)
    origin.on("/big", body=big, headers=MAXAGE)
    origin.on("/small", body=b"small", headers=MAXAGE)
    a = start_h2(start_accel, origin)
    assert a.get("/big").body == big                 # cached
    with H2Conn(a.port) as c:
        held = c.send_request("GET", "/big")
        c.hold.add(held)                             # never gives this stream window back
        c.wait(lambda: len(c.streams[held].body) >= 65535, what="the first window")
        others = [c.send_request("GET", "/big") for _ in range(2)] + \
                 [c.send_request("GET", "/small")]
        for sid in others:
            r = c.response(sid)
            assert r.status == 200 and r.body in (big, b"small")
        assert not c.streams[held].done and len(c.streams[held].body) == 65535


def test_memory_stays_flat_while_many_streams_wait_on_a_large_object(origin, start_accel):
    big = os.urandom(8 << 20)
    origin.on("/large", body=big, headers=MAXAGE)
    a = start_h2(start_accel, origin)
    assert a.get("/large").body == big               # in the cache
    before = a.rss()
    with H2Conn(a.port) as c:
        c.h2.increment_flow_control_window(2 ** 30)  # the connection's window is open
        c.flush()
        sids = [c.send_request("GET", "/large") for _ in range(40)]
        for sid in sids:
            c.hold.add(sid)                          # ... but no stream's window
        c.wait(lambda: all(len(c.streams[s].body) >= 65535 for s in sids), what="windows")
        grown = a.rss() - before
        # 40 copies would be 320 MiB; the streams read the stored object in place
        assert grown < 32 << 20, "RSS grew by %d MiB" % (grown >> 20)


def test_client_reset_stream_leaves_the_connection_and_the_fill(origin, start_accel):
    body = os.urandom(100000)
    release = threading.Event()
    origin.on("/rs", body=body, headers=MAXAGE, chunk_size=8192, pause_at=(8192, release))
    a = start_h2(start_accel, origin)
    with H2Conn(a.port) as c:
        filler = c.send_request("GET", "/rs")
        origin.wait_head("/rs")
        waiter = c.send_request("GET", "/rs")
        wait_counter(a, "cache_coalesced")
        c.reset(filler)                  # the client that made the fetch goes
        release.set()
        r = c.response(waiter)           # the fill went on for the waiter
        assert r.status == 200 and r.body == body
        assert c.get("/ok").status == 200
        assert c.streams[filler].body != body
    assert a.get("/rs").header("X-Cache") == "HIT"
    assert origin.count("/rs") == 1
    assert counters(a)["h2_client_reset"] >= 1


# -- limits and attacks ------------------------------------------------------------------


def test_max_concurrent_streams_advertised_and_enforced(origin, start_accel):
    release = threading.Event()
    origin.on("/hold", body=b"x", gate=release)
    a = start_h2(start_accel, origin, "-p", "h2_max_concurrent_streams=4")
    try:
        with H2Conn(a.port) as c:
            c.wait(lambda: 3 in c.remote_settings, what="SETTINGS")
            assert c.remote_settings[3] == 4         # SETTINGS_MAX_CONCURRENT_STREAMS
        with RawH2(a.port) as r:
            for sid in range(1, 12, 2):              # 6 streams, ignoring the 4
                r.get(sid, "/hold")
            rst = r.wait_rst(11)
            assert rst.error_code in (REFUSED_STREAM, PROTOCOL_ERROR)
            release.set()
            assert r.status(1) == 200
    finally:
        release.set()
    c = counters(a)
    assert c["h2_refused"] + c["h2_stream_error"] >= 2


def test_header_list_too_large_is_431_and_the_connection_goes_on(origin, start_accel):
    a = start_h2(start_accel, origin, "-p", "h2_max_header_list=4k")
    with H2Conn(a.port) as c:
        r = c.get("/big-head", headers={"x-big": "a" * 5000})
        assert r.status == 431
        assert c.get("/after").status == 200
    assert origin.count("/big-head") == 0
    assert counters(a)["h2_header_too_large"] == 1


def test_hpack_table_over_our_setting_is_compression_error(origin, start_accel):
    a = start_h2(start_accel, origin, "-p", "h2_header_table_size=4k")
    with RawH2(a.port) as r:
        r.settings(ack=True)                         # our SETTINGS are in force now
        r.wait_frame(lambda f: isinstance(f, SettingsFrame), what="SETTINGS")
        # a dynamic table size update to 65536 (RFC 7541 §6.3), then GET /
        upd = bytes([0x3f, 0xe1, 0xff, 0x03])
        r.headers(1, None, end_stream=True, raw_block=upd + r.block(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"),
             (":authority", "test.example")]))
        assert r.wait_goaway().error_code == COMPRESSION_ERROR
    assert counters(a)["h2_protocol_error"] == 1


def test_continuation_flood_gets_goaway(origin, start_accel):
    a = start_h2(start_accel, origin)
    with RawH2(a.port) as r:
        blk = r.block([(":method", "GET"), (":scheme", "http"), (":path", "/"),
                       (":authority", "test.example")])
        r.headers(1, None, end_stream=True, end_headers=False, raw_block=blk)
        junk = r.block([("x-filler", "b" * 100)])
        for _ in range(200):
            r.continuation(1, junk)
        g = r.wait_goaway()
        assert g.error_code == ENHANCE_YOUR_CALM
        r.wait_closed()
    assert counters(a)["h2_continuation_flood"] == 1
    assert origin.count("/") == 0


def test_rapid_reset_gets_goaway(origin, start_accel):
    origin.on("/rr", body=b"x", delay=1)
    a = start_h2(start_accel, origin, "-p", "h2_max_resets=50")
    with RawH2(a.port) as r:
        for sid in range(1, 2 * 200, 2):
            r.get(sid, "/rr")
            r.rst(sid)
        g = r.wait_goaway()
        assert g.error_code == ENHANCE_YOUR_CALM
        r.wait_closed()
    c = counters(a)
    assert c["h2_rapid_reset"] == 1
    assert c["h2_stream"] <= 100                     # stopped long before 200


@pytest.mark.parametrize("kind,counter", [("ping", "h2_ping_flood"),
                                          ("settings", "h2_settings_flood"),
                                          ("empty", "h2_empty_flood"),
                                          ("priority", "h2_empty_flood")])
def test_floods_get_goaway(origin, start_accel, kind, counter):
    a = start_h2(start_accel, origin, "-p", "h2_max_pings=20", "-p", "h2_max_settings=20",
                 "-p", "h2_max_empty_frames=20")
    with RawH2(a.port) as r:
        if kind in ("empty", "priority"):
            r.get(1, "/e", end_stream=False)
        for i in range(100):
            if kind == "ping":
                r.ping(b"%08d" % i)
            elif kind == "settings":
                r.settings({4: 65535 + i})
            elif kind == "empty":
                r.data(1, b"")
            else:
                r.priority(1, depends_on=0, weight=16)
        g = r.wait_goaway()
        assert g.error_code == ENHANCE_YOUR_CALM
    assert counters(a)[counter] == 1


def test_bad_frames_get_the_rfc_error(origin, start_accel):
    a = start_h2(start_accel, origin)
    with RawH2(a.port) as r:
        r.window_update(0, 0)                        # RFC 9113 §6.9: PROTOCOL_ERROR
        assert r.wait_goaway().error_code == PROTOCOL_ERROR
    with RawH2(a.port) as r:
        r.send(b"\x00\x00\x04\x06\x00\x00\x00\x00\x00" + b"1234")   # PING of 4 bytes
        assert r.wait_goaway().error_code == FRAME_SIZE_ERROR
    with RawH2(a.port, preface=False, settings=False) as r:
        r.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")  # a broken preface
        r.wait_closed()
    assert counters(a)["h2_protocol_error"] >= 2
    assert a.get("/still-fine").status == 200


def test_random_frames_never_hurt_the_worker(origin, start_accel):
    a = start_h2(start_accel, origin)
    rnd = random.Random(15)
    for _ in range(60):
        with RawH2(a.port, timeout=2) as r:
            for _ in range(rnd.randint(1, 20)):
                ln = rnd.randint(0, 40)
                r.send(bytes([0, 0, ln, rnd.randint(0, 12), rnd.randint(0, 255), 0, 0, 0,
                              rnd.choice([0, 1, 3, 5])]) + os.urandom(ln))
    assert a.alive()
    with H2Conn(a.port) as c:
        assert c.get("/alive").status == 200


def test_client_that_never_reads_is_dropped(origin, start_accel):
    origin.on("/huge", body=os.urandom(8 << 20), headers=MAXAGE)
    a = start_h2(start_accel, origin, "-p", "send_timeout=1")
    a.get("/huge")
    with H2Conn(a.port, settings={4: 2 ** 31 - 1}) as c:
        c.h2.increment_flow_control_window(2 ** 30)
        c.flush()
        for _ in range(10):
            c.send_request("GET", "/huge")
        # and never reads again: the socket fills, send_timeout later it is closed
        wait_counter(a, "client_timeout", timeout=20)
    assert a.get("/huge").status == 200


def test_idle_connection_gets_goaway(origin, start_accel):
    a = start_h2(start_accel, origin, "-p", "timeout_idle=1")
    with H2Conn(a.port) as c:
        assert c.get("/x").status == 200
        g = c.wait_goaway(timeout=10)
        assert g.error_code == NO_ERROR
        c.wait_closed()
    assert counters(a)["h2_idle"] == 1


def test_unfinished_head_times_out(origin, start_accel):
    a = start_h2(start_accel, origin, "-p", "timeout_req_head=1")
    with RawH2(a.port) as r:
        blk = r.block([(":method", "GET"), (":scheme", "http"), (":path", "/"),
                       (":authority", "test.example")])
        r.headers(1, None, end_stream=True, end_headers=False, raw_block=blk)
        r.wait_goaway(timeout=10)
        r.wait_closed()
    assert counters(a)["h2_head_timeout"] == 1


# -- graceful ends -----------------------------------------------------------------------


def test_sigterm_goaway_lets_streams_finish(origin, start_accel):
    release = threading.Event()
    origin.on("/slow", body=b"finished", gate=release)
    a = start_h2(start_accel, origin, "-p", "drain_timeout=10")
    with RawH2(a.port) as r:
        r.get(1, "/slow")
        origin.wait_head("/slow")
        a.signal(signal.SIGTERM)
        g = r.wait_goaway()
        assert g.error_code == NO_ERROR
        release.set()
        status, _, body = r.response(1)
        assert (status, body) == (200, b"finished")
        r.wait_closed()
        # the notice first (highest id), then the last stream taken
        assert [f.last_stream_id for f in r.goaways()][-1] == 1
    release.set()
    assert a.wait_exit(15) == 0


def test_sighup_sends_goaway_and_streams_finish(origin, start_accel, pki):
    release = threading.Event()
    origin.on("/hup", body=b"after reload", gate=release)
    a = start_h2(start_accel, origin, tls=True, pki=pki)
    try:
        with RawH2(a.tls, tls=client_context(pki.ca, alpn=["h2"])) as r:
            r.get(1, "/hup")
            origin.wait_head("/hup")
            os.kill(a.pid, signal.SIGHUP)
            g = r.wait_goaway()
            assert g.error_code == NO_ERROR and g.last_stream_id >= 1
            release.set()
            assert r.response(1)[2] == b"after reload"
    finally:
        release.set()
    with h2tls(a, pki) as c2:                        # new connections are served
        assert c2.get("/new").status == 200
    assert counters(a)["h2_goaway"] >= 1
