"""Issue 2: plain proxying through real sockets -- methods, bodies, header
rewriting, hop-by-hop removal, origin connection reuse, round robin."""

import hashlib
import re
import subprocess
import threading

import pytest

from client import Conn, build_request


def test_get_relays_status_headers_and_body(origin, accel):
    origin.on("/hello", status=200, body=b"hello world",
              headers={"Content-Type": "text/plain", "X-Origin": "yes", "ETag": '"v1"'})
    r = accel.get("/hello", headers={"X-Client": "abc", "User-Agent": "itest/1"})
    assert r.status == 200
    assert r.body == b"hello world"
    assert r.header("X-Origin") == "yes"
    assert r.header("ETag") == '"v1"'
    assert r.header("Content-Type") == "text/plain"
    seen = origin.last("/hello")
    assert seen.method == "GET"
    assert seen.header("X-Client") == "abc"
    assert seen.header("User-Agent") == "itest/1"
    assert seen.header("Host") == "test.example"
    assert seen.version == "HTTP/1.1"


def test_status_codes_and_reason_relayed(origin, accel):
    origin.on("/missing", status=404, body=b"nope")
    origin.on("/err", status=500, body=b"boom")
    assert accel.get("/missing").status == 404
    r = accel.get("/err")
    assert (r.status, r.body) == (500, b"boom")


def test_forwarding_headers_added(origin, accel):
    accel.get("/fwd")
    seen = origin.last("/fwd")
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert re.search(r"(^|,\s*)1\.1 \S+", seen.header("Via", "")), seen.headers


def test_forwarding_headers_appended_to_client_values(origin, accel):
    accel.get("/fwd2", headers={"X-Forwarded-For": "192.0.2.7", "Via": "1.0 edge"})
    seen = origin.last("/fwd2")
    xff = [v.strip() for v in seen.header("X-Forwarded-For").split(",")]
    assert xff == ["192.0.2.7", "127.0.0.1"]
    via = [v.strip() for v in seen.header("Via").split(",")]
    assert via[0] == "1.0 edge" and len(via) == 2 and via[1].startswith("1.1 ")


def test_via_added_to_response(origin, accel):
    origin.on("/via", headers={"Via": "1.1 upstream"})
    r = accel.get("/via")
    via = [v.strip() for v in r.header("Via", "").split(",")]
    assert via[0] == "1.1 upstream"
    assert len(via) == 2 and via[1].startswith("1.1 ")


def test_head_has_no_body_and_keeps_connection(origin, accel):
    origin.on("/h", body=b"x" * 1234)
    with accel.conn() as c:
        r = c.request("HEAD", "/h")
        assert r.status == 200
        assert r.header("Content-Length") == "1234"
        r2 = c.request("GET", "/h")           # nothing left over from the HEAD
        assert r2.body == b"x" * 1234
    # a caching proxy may fetch a HEAD as a GET (to fill its cache); either way
    # the GET's body above was the only body on the client connection
    assert all(q.method in ("HEAD", "GET") for q in origin.requests_for("/h"))


def test_post_body_reaches_origin(origin, accel):
    origin.on("/post", echo=True, status=201)
    body = bytes(range(256)) * 40
    r = accel.request("POST", "/post", {"Content-Type": "application/octet-stream"}, body)
    assert r.status == 201
    assert r.body == body
    seen = origin.last("/post")
    assert seen.method == "POST" and seen.body == body
    assert seen.header("Content-Type") == "application/octet-stream"


def test_large_post_body_streamed(origin, accel):
    origin.on("/big", status=200, body=b"ok")
    body = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)   # 20 MiB
    r = accel.request("POST", "/big", None, body, timeout=30)
    assert r.status == 200
    seen = origin.last("/big")
    assert len(seen.body) == len(body)
    assert hashlib.sha256(seen.body).digest() == hashlib.sha256(body).digest()


def test_put_delete_options_and_unknown_token_method(origin, accel):
    for m in ("PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND"):
        body = b"data" if m in ("PUT", "PATCH") else None
        r = accel.request(m, "/m/" + m, None, body)
        assert r.status == 200, m
        assert origin.last("/m/" + m).method == m


def test_query_string_relayed_verbatim(origin, accel):
    target = "/q?a=1&b=%20x&c=%2F&d"
    r = accel.get(target)
    assert r.status == 200
    assert origin.last(target).target == target


def test_hop_by_hop_request_headers_removed(origin, accel):
    accel.get("/hop", headers=[
        ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Trailer", "X-T"), ("Proxy-Authorization", "Basic eA=="),
        ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2c"), ("X-Keep", "yes")])
    seen = origin.last("/hop")
    for name in ("X-Hop", "Keep-Alive", "TE", "Trailer", "Proxy-Authorization",
                 "Proxy-Connection", "Upgrade"):
        assert not seen.has(name), (name, seen.headers)
    conn_tokens = [t.strip().lower() for t in (seen.header("Connection") or "").split(",")]
    assert "x-hop" not in conn_tokens
    assert seen.header("X-Keep") == "yes"


def test_hop_by_hop_response_headers_removed(origin, accel):
    origin.on("/hopr", headers=[
        ("Connection", "X-Hop-Resp"), ("X-Hop-Resp", "1"), ("Keep-Alive", "timeout=5"),
        ("Proxy-Authenticate", "Basic"), ("Trailer", "X-T"), ("Upgrade", "h2c"),
        ("X-Keep", "yes")])
    r = accel.get("/hopr")
    assert r.status == 200
    for name in ("X-Hop-Resp", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"):
        assert not r.has(name), (name, r.headers)
    assert "x-hop-resp" not in r.tokens("Connection")
    assert r.header("X-Keep") == "yes"


def test_204_and_304_have_no_body(origin, accel):
    origin.on("/204", status=204)
    origin.on("/304", status=304, headers={"ETag": '"e"', "Content-Length": "50"})
    with accel.conn() as c:
        c.send(build_request("GET", "/204") + build_request("GET", "/304") +
               build_request("GET", "/after"))
        assert c.read_response().status == 204
        r = c.read_response()
        assert r.status == 304 and r.body == b""
        r = c.read_response()
        assert (r.status, r.body) == (200, b"path=/after")


def test_interim_103_then_final_response(origin, accel):
    origin.on("/early", interim=[(103, {"Link": "</s.css>; rel=preload"})], body=b"final")
    with accel.conn() as c:
        r = c.request("GET", "/early")
        assert (r.status, r.body) == (200, b"final")
        assert all(i.status == 103 for i in r.interim)
        assert c.request("GET", "/next").status == 200


def test_http10_client(origin, accel):
    origin.on("/ten", chunked=True, body=b"z" * 3000)
    with accel.conn() as c:
        c.send(b"GET /ten HTTP/1.0\r\nHost: test.example\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert not r.chunked, "chunked sent to an HTTP/1.0 client"
        assert r.body == b"z" * 3000
        if not r.close_delimited:
            assert c.wait_closed(), "HTTP/1.0 without keep-alive must be closed"


def test_http10_without_host_is_accepted(origin, accel):
    with accel.conn() as c:
        c.send(b"GET /nohost10 HTTP/1.0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert origin.last("/nohost10").has("Host")


def test_keepalive_reuses_origin_connections(origin, accel):
    n = 10
    with accel.conn() as c:
        for i in range(n):
            assert c.request("GET", "/ka/%d" % i).status == 200
    for i in range(n):                        # fresh client connections too
        assert accel.get("/kb/%d" % i).status == 200
    assert len(origin.requests) == 2 * n
    assert origin.connections < n, "origin saw %d connections for %d requests" % (
        origin.connections, 2 * n)


def test_round_robin_over_two_origins(origin, make_origin, start_accel):
    o2 = make_origin()
    a = start_accel(origins=[origin, o2], workers=1)
    for i in range(6):
        assert a.get("/rr/%d" % i).status == 200
    assert len(origin.requests) + len(o2.requests) == 6
    assert len(origin.requests) >= 1 and len(o2.requests) >= 1


def test_two_listen_addresses(origin, start_accel):
    a = start_accel(origins=[origin], listen=2)
    for p in a.ports:
        with Conn(p) as c:
            assert c.request("GET", "/port/%d" % p).status == 200


def test_curl_through_accel(origin, accel):
    origin.on("/curl", chunked=True, body=b"c" * 70000)
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}",
                          "http://127.0.0.1:%d/curl" % accel.port],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition(b"\n")
    assert code == b"200" and body == b"c" * 70000


@pytest.mark.accel_args(workers=1)
def test_many_concurrent_clients(origin, accel):
    origin.on("/conc", body=b"k" * 5000, delay=0.05)
    replies = accel.get_many("/conc", clients=20)
    assert [r.status for r in replies] == [200] * 20
    assert all(r.body == b"k" * 5000 for r in replies)


def test_client_connection_close_honoured(origin, accel):
    with accel.conn() as c:
        r = c.request("GET", "/bye", headers={"Connection": "close"})
        assert r.status == 200 and r.body == b"path=/bye"
        assert "close" in r.tokens("Connection")
        assert c.wait_closed(5)


def test_origin_connection_close_does_not_close_client(origin, accel):
    origin.on("/oc", close=True, body=b"closing origin side")
    with accel.conn() as c:
        r = c.request("GET", "/oc")
        assert (r.status, r.body) == (200, b"closing origin side")
        assert c.request("GET", "/after-oc").status == 200


@pytest.mark.accel_args("-p", "origin_idle_conns=1", workers=1)
def test_idle_origin_pool_is_bounded(origin, accel):
    gate = threading.Event()
    for i in range(4):
        origin.on("/par/%d" % i, gate=gate)
    conns = [accel.conn(timeout=10) for _ in range(4)]
    try:
        for i, c in enumerate(conns):
            c.send(build_request("GET", "/par/%d" % i))
        origin.wait_for(lambda: len(origin.heads) >= 4, what="4 concurrent origin requests")
        assert origin.connections == 4
        gate.set()
        for c in conns:
            assert c.read_response().status == 200
    finally:
        for c in conns:
            c.close()
    # four origin connections came free; only one may stay in the pool
    origin.wait_for(lambda: origin.closed >= 3, what="accel to close the idle origin "
                    "connections beyond origin_idle_conns=1")
