"""Cross-feature checks: compression (issue 7), origin pools (issue 8) and
TLS (issue 9) together.  Compressed variants delivered to TLS clients (slow
readers, HEAD, ranges, 304, pipelining), compressible bodies from TLS
origins with waiters on the busy object, TLS origins dying mid-body (a
close-delimited body needs the origin's close_notify to be whole), TLS
handshake failures in directors with max_connections, a sick TLS pool
serving stale variants, reloads under load with directors + .ssl backends +
certificates, purges and bans while a brotli body is made (across a
restart), a storm for the sanitizer builds, bytes left inside OpenSSL after
an origin's response (never pooled), and a cut body to an HTTP/1.0 TLS
client (no close_notify)."""

import os
import signal
import socket
import ssl
import threading
import time

import pytest

from client import IncompleteResponse, build_request, wait_until
from origin import Origin
from policy_common import start_policy
from tlscerts import TLSConn, client_context, make_leaf, make_pki
from test_compression import decode, page


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("cpki"))
    p = make_pki(d)
    make_leaf(d, "ip", ["localhost,IP:127.0.0.1"])
    return p


BIG = page(300000)          # ~300 KB of HTML: many 16 KiB TLS records, gzip ~ tens of KB
HTML = {"Content-Type": "text/html", "Cache-Control": "max-age=60", "ETag": '"c1"'}


def reload_under_load(a, threads, stop, rewrite, gens, pause, settle, timeout):
    """Start the client threads, then for each generation rewrite the policy,
    SIGHUP accel and wait until its certificate reload is logged; stop and
    join the threads at the end."""
    for th in threads:
        th.start()
    try:
        for gen in gens:
            time.sleep(pause)
            rewrite(gen)
            os.kill(a.pid, signal.SIGHUP)
            wait_until(lambda: a.stderr().count("certificate reload done") >= gen - 1, timeout,
                       "reload #%d" % (gen - 1))
        time.sleep(settle)
    finally:
        stop.set()
        for th in threads:
            th.join(30)


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
        a = tls_listen(start_accel, pki, "-b", "https://127.0.0.1:%d" % o.port,
                       "-p", "origin_ca_file=" + pki.ca)
        aes = ["gzip", "identity", "br, gzip", None, "gzip", "identity"]
        out = [None] * len(aes)

        def run(i):
            h = {} if aes[i] is None else {"Accept-Encoding": aes[i]}
            try:
                if i % 2:               # half of the waiters over TLS, slow readers
                    with slow_tls_conn(a.tls, pki) as c:
                        out[i] = c.request("GET", "/w", h)
                else:
                    out[i] = a.get("/w", h, timeout=30)
            except Exception as e:      # reported below
                out[i] = e
        ts = [threading.Thread(target=run, args=(i,)) for i in range(len(aes))]
        for t in ts:
            t.start()
        o.wait_head("/w")
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


# -- SIGHUP under load: directors + .ssl backends + compression + certificates --------


def reload_vcl(tmp_path, tls_origins, plain, ca, gen):
    text = "vcl 4.1;\nimport directors;\n"
    for i, o in enumerate(tls_origins):
        text += ('backend t%d { .host = "127.0.0.1"; .port = "%d"; .ssl = true; '
                 '.ssl_ca_file = "%s"; .max_connections = 4; .probe = { .url = "/health"; '
                 '.interval = 0.2s; .timeout = 1s; .window = 2; .threshold = 1; } }\n'
                 % (i, o.port, ca))
    text += 'backend p0 { .host = "127.0.0.1"; .port = "%d"; }\n' % plain.port
    text += "sub vcl_init {\n    new pool = directors.round_robin();\n"
    for i in range(len(tls_origins)):
        text += "    pool.add_backend(t%d);\n" % i
    text += "    new fb = directors.fallback();\n    fb.add_backend(pool);\n" \
            "    fb.add_backend(p0);\n}\n"
    text += """
sub vcl_recv {
    set req.backend_hint = fb.backend();
    if (req.url ~ "^/pass/") { return (pass); }
}
sub vcl_backend_response {
    set beresp.do_gzip = true;
    set beresp.ttl = 0.3s;
    set beresp.grace = 0s;
    set beresp.http.X-Gen = "%d";
}
""" % gen
    path = os.path.join(str(tmp_path), "reload.vcl")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_sighup_under_load_with_tls_everywhere(start_accel, tmp_path, pki):
    small = page(20000)
    origins = [tls_origin(pki) for _ in range(2)]
    plain = Origin()
    try:
        for o in origins + [plain]:
            o.on("/c/x", headers={"Content-Type": "text/html"}, body=small, chunked=True,
                 chunk_size=4000)
            o.on("/pass/y", headers={"Content-Type": "text/html"}, body=small)
        path = reload_vcl(tmp_path, origins, plain, pki.ca, 1)
        a = tls_listen(start_accel, pki, "-f", path, workers=2)
        stop = threading.Event()
        errors, done = [], [0]

        def client(i):
            aes = ["gzip", "identity", "br", None]
            while not stop.is_set():
                try:
                    with TLSConn(a.tls, "a.test", cafile=pki.ca, timeout=20) as c:
                        for k in range(5):
                            ae = aes[(i + k) % len(aes)]
                            t = "/c/x" if k % 2 == 0 else "/pass/y"
                            r = c.request("GET", t, {} if ae is None else {"Accept-Encoding": ae})
                            if r.status != 200 or decode(r) != small:
                                errors.append((t, ae, r.status, r.headers))
                            done[0] += 1
                except Exception as e:      # a failed request is what we look for
                    errors.append(repr(e))
        ts = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        reload_under_load(a, ts, stop, lambda gen: reload_vcl(tmp_path, origins, plain, pki.ca, gen),
                          range(2, 7), 0.4, 0.4, 15)
        assert not errors, errors[:5]
        assert done[0] > 20
        assert all(o.count("/c/x") + o.count("/pass/y") > 0 for o in origins), "TLS origins used"
        assert all(o.count("/health") > 0 for o in origins), "probes over TLS"
        assert "reload of" in a.stderr() and "failed" not in a.stderr()
        r = a.get("/c/x", {"Accept-Encoding": "gzip"})
        assert r.header("X-Gen") == "6" or r.header("X-Gen") is not None
    finally:
        for o in origins + [plain]:
            o.stop()


# -- purge / ban of an object whose brotli body is being made --------------------------


def xc(r):
    return r.header("X-Cache")


def test_purge_and_ban_while_brotli_is_made_survive_restart(origin, start_accel, tmp_path):
    huge = page(250000)          # ~1.5 s of brotli quality 11
    small = page(20000)
    hdr = {"Content-Type": "text/html", "Cache-Control": "max-age=600"}
    for p in ("/big", "/big2"):
        origin.on(p, headers=hdr, body=huge)
    for p in ("/s1", "/s2"):
        origin.on(p, headers=hdr, body=small)
    disk = os.path.join(str(tmp_path), "disk")
    a = start_accel("-s", "disk=%s" % disk, origins=[origin], workers=1)

    def barrier(path):
        # brotli jobs run one after the other: once `path` has its brotli
        # body, every job queued before it has ended
        a.get(path, {"Accept-Encoding": "gzip"})
        wait_until(lambda: a.get(path, {"Accept-Encoding": "br"}).header("Content-Encoding")
                   == "br", 30, "brotli body of %s" % path, step=0.1)

    r = a.get("/big", {"Accept-Encoding": "gzip"}, timeout=30)
    assert r.status == 200 and decode(r) == huge
    assert a.request("PURGE", "/big").status == 200          # while its brotli body is made
    barrier("/s1")
    r = a.get("/big2", {"Accept-Encoding": "gzip"}, timeout=30)
    assert r.status == 200
    r = a.request("BAN", "/", headers={"Ban": 'req.url ~ "^/big2"'})
    assert r.status == 200, r.body
    barrier("/s2")
    # after a restart neither the purged nor the banned object comes back
    # from disk (the brotli thread rewrites an object once its body is made)
    rc = a.stop()
    assert rc == 0
    a.expect_exit = True
    origin.on("/big", headers=hdr, body=small)
    origin.on("/big2", headers=hdr, body=small)
    b = start_accel("-s", "disk=%s" % disk, origins=[origin], workers=1)
    assert xc(b.get("/s1")) == "HIT"            # the disk tier works
    for p in ("/big", "/big2"):
        r = b.get(p, {"Accept-Encoding": "br"}, timeout=30)
        assert decode(r) == small, p
        assert origin.count(p) == 2


# -- pools with TLS origins: handshake failures, max_connections, sick pools ---------


def admin_stats(port):
    import json
    from client import request
    r = request(port, "GET", "/stats")
    assert r.status == 200, r.body
    return {b["name"]: b for b in json.loads(r.body.decode())["backends"]}


def test_tls_handshake_failures_move_count_and_free_slots(start_accel, tmp_path, pki):
    from client import free_port
    plain = tls_origin(pki, "b")    # a certificate for b.test: verification fails
    good = tls_origin(pki)
    silent = socket.socket()    # accepts TCP (backlog) and never answers a ClientHello
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        for o, p in ((plain, "/p"), (good, "/p"), (good, "/m/p")):
            o.on(p, headers={"Content-Type": "text/html", "Cache-Control": "no-store"},
                 body=page(30000), delay=0.2)
        ca = pki.ca
        text = ("import directors;\n"
                'backend bad { .host = "127.0.0.1"; .port = "%d"; .ssl = true; '
                '.ssl_ca_file = "%s"; .max_connections = 1; }\n'
                'backend mute { .host = "127.0.0.1"; .port = "%d"; .ssl = true; '
                '.ssl_ca_file = "%s"; .max_connections = 1; .connect_timeout = 0.3s; }\n'
                'backend good { .host = "127.0.0.1"; .port = "%d"; .ssl = true; '
                '.ssl_ca_file = "%s"; .max_connections = 2; }\n'
                "sub vcl_init {\n    new f1 = directors.fallback();\n"
                "    f1.add_backend(bad);\n    f1.add_backend(good);\n"
                "    new f2 = directors.fallback();\n"
                "    f2.add_backend(mute);\n    f2.add_backend(good);\n}\n"
                "sub vcl_recv {\n    if (req.url ~ \"^/m\") { set req.backend_hint = f2.backend(); }\n"
                "    else { set req.backend_hint = f1.backend(); }\n    return (pass);\n}\n"
                % (plain.port, ca, silent.getsockname()[1], ca, good.port, ca))
        admin = free_port()
        a = start_policy(start_accel, tmp_path, text, backends=[],
                         args=("-T", "127.0.0.1:%d" % admin, "-p", "backend_queue_timeout=5"))
        # concurrent requests: 2 slots on good, queueing for the rest
        out = [None] * 6

        def run(i):
            try:
                out[i] = a.get("/p" if i % 2 else "/m/p", {"Accept-Encoding": "gzip"}, timeout=30)
            except Exception as e:  # reported below
                out[i] = e
        ts = [threading.Thread(target=run, args=(i,)) for i in range(len(out))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(40)
        for r in out:
            assert not isinstance(r, Exception), r
            assert r.status == 200, (r.status, r.body[:200])
        st = admin_stats(admin)
        assert st["bad"]["fail"] >= 1 and st["mute"]["fail"] >= 1
        assert st["bad"]["healthy"] is False or st["bad"]["fail"] < 3
        wait_until(lambda: all(b["busy"] == 0 for b in admin_stats(admin).values()), 10,
                   "every slot given back")
        assert good.count("/p") == 3 and good.count("/m/p") == 3
        assert plain.count("/p") == 0 and plain.connections >= 1
        assert "TLS handshake" in a.stderr()
    finally:
        silent.close()
        plain.stop()
        good.stop()


def test_sick_tls_pool_serves_stale_compressed_variants(start_accel, tmp_path, pki):
    o = tls_origin(pki)
    try:
        body = page(50000)
        o.on("/health", body=b"ok")
        o.on("/page", headers={"Content-Type": "text/html", "ETag": '"s1"',
                               "Cache-Control": "max-age=1, stale-if-error=60"},
             body=body, chunked=True)
        text = ('probe hp { .url = "/health"; .interval = 0.2s; .timeout = 1s; .window = 2; '
                '.threshold = 2; .initial = 2; }\n'
                "import directors;\n"
                'backend b0 { .host = "127.0.0.1"; .port = "%d"; .ssl = true; '
                '.ssl_ca_file = "%s"; .probe = hp; }\n'
                "sub vcl_init {\n    new pool = directors.round_robin();\n"
                "    pool.add_backend(b0);\n}\n"
                "sub vcl_recv {\n    set req.backend_hint = pool.backend();\n}\n"
                % (o.port, pki.ca))
        a = start_policy(start_accel, tmp_path, text, backends=[], args=("-p", "default_grace=0"))
        r = a.get("/page", {"Accept-Encoding": "gzip"})
        assert r.status == 200 and decode(r) == body
        wait_until(lambda: a.get("/page", {"Accept-Encoding": "br"}).header("Content-Encoding")
                   == "br", 20, "brotli body")
        o.on("/health", status=500)
        a.wait_stderr(r"backend b0 \(\S+\): sick", timeout=10)
        time.sleep(1.2)             # stale now
        n = o.count("/page")
        for ae, want in (("gzip", "gzip"), ("br", "br"), ("identity", None), (None, None)):
            r = a.get("/page", {} if ae is None else {"Accept-Encoding": ae})
            assert r.status == 200, (ae, r.status)
            assert r.header("Content-Encoding") == want, (ae, r.headers)
            assert decode(r) == body
        r = a.get("/page", {"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
        assert r.status == 206 and len(r.body) == 100
        assert o.count("/page") == n
    finally:
        o.stop()


# -- storm: many clients, misbehaving TLS and plain origins, purges, bans, reloads ---


def storm_vcl(tmp_path, t, p, ca, gen):
    text = ("vcl 4.1;\nimport directors;\n"
            'backend t0 { .host = "127.0.0.1"; .port = "%d"; .ssl = true; .ssl_ca_file = "%s"; '
            '.max_connections = 6; .first_byte_timeout = 2s; .between_bytes_timeout = 1s; }\n'
            'backend p0 { .host = "127.0.0.1"; .port = "%d"; .max_connections = 6; '
            '.first_byte_timeout = 2s; .between_bytes_timeout = 1s; }\n'
            'backend tb { .host = "127.0.0.1"; .port = "%d"; .ssl = true; .ssl_ca_file = "%s"; '
            '.first_byte_timeout = 2s; .between_bytes_timeout = 1s; }\n'
            'backend pb { .host = "127.0.0.1"; .port = "%d"; '
            '.first_byte_timeout = 2s; .between_bytes_timeout = 1s; }\n'
            "sub vcl_init {\n    new rr = directors.round_robin();\n"
            "    rr.add_backend(t0);\n    rr.add_backend(p0);\n"
            "    new bad = directors.round_robin();\n"
            "    bad.add_backend(tb);\n    bad.add_backend(pb);\n}\n"
            "sub vcl_recv {\n    set req.backend_hint = rr.backend();\n"
            '    if (req.url ~ "^/(bad|pass)/") { set req.backend_hint = bad.backend(); }\n'
            '    if (req.method == "PURGE") { return (purge); }\n'
            '    if (req.url ~ "^/pass/") { return (pass); }\n}\n'
            "sub vcl_backend_response {\n    set beresp.grace = 2s;\n"
            '    set beresp.http.X-Gen = "%d";\n}\n' % (t.port, ca, p.port, t.port, ca, p.port, gen))
    path = os.path.join(str(tmp_path), "storm.vcl")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_storm(start_accel, tmp_path, pki):
    t = tls_origin(pki)
    p = Origin()
    bodies = {}
    try:
        for o in (t, p):
            for i in range(6):
                b = page(5000 + 40000 * i)
                bodies["/c/%d" % i] = b
                o.on("/c/%d" % i, headers={"Content-Type": "text/html",
                                           "Cache-Control": "max-age=1"},
                     body=b, chunked=i % 2 == 0, chunk_size=3000)
            o.on("/bad/trunc", headers=HTML, body=BIG, truncate_after=50000, chunked=True)
            o.on("/bad/reset", reset=True)
            o.on("/bad/slow", headers=HTML, body=BIG, stall_after=20000)
            o.on("/bad/gzip", headers={"Content-Type": "text/html", "Content-Encoding": "gzip",
                                       "Cache-Control": "max-age=5"}, body=b"\x1f\x8bnot gzip" * 100)
            o.on("/pass/x", headers={"Content-Type": "text/html"}, body=BIG[:30000])
        path = storm_vcl(tmp_path, t, p, pki.ca, 1)
        a = tls_listen(start_accel, pki, "-f", path, workers=2)
        stop = threading.Event()
        errors, counts = [], {"ok": 0, "bad": 0}

        def good_client(i):
            aes = ["gzip", "br", "identity", None, "gzip, br"]
            k = 0
            while not stop.is_set():
                try:
                    c = TLSConn(a.tls, "a.test", cafile=pki.ca, timeout=20) if i % 2 else \
                        a.conn(timeout=20)
                    with c:
                        for _ in range(4):
                            k += 1
                            path_ = "/c/%d" % (k % 6)
                            ae = aes[k % len(aes)]
                            r = c.request("GET", path_, {} if ae is None else
                                          {"Accept-Encoding": ae})
                            if r.status != 200 or decode(r) != bodies[path_]:
                                errors.append((path_, ae, r.status))
                            counts["ok"] += 1
                            if r.header("Connection") == "close":
                                break
                except Exception as e:      # a failed good request is what we look for
                    errors.append(repr(e))

        def bad_client(i):
            k = 0
            while not stop.is_set():
                k += 1
                target = ["/bad/trunc", "/bad/reset", "/bad/slow", "/bad/gzip", "/pass/x"][k % 5]
                try:
                    c = TLSConn(a.tls, "a.test", cafile=pki.ca, timeout=5) if i % 2 else \
                        a.conn(timeout=5)
                    with c:
                        c.send(build_request("GET", target, {"Accept-Encoding": "gzip"}))
                        if k % 3 == 0:
                            continue            # leave at once
                        c.read_response()
                except Exception:
                    pass                        # these may fail any way they like
                counts["bad"] += 1

        def invalidator():
            k = 0
            while not stop.is_set():
                k += 1
                try:
                    if k % 2:
                        a.request("PURGE", "/c/%d" % (k % 6))
                    else:
                        a.request("BAN", "/", headers={"Ban": 'req.url ~ "^/c/%d"' % (k % 6)})
                except Exception as e:
                    errors.append("invalidation: %r" % e)
                time.sleep(0.05)

        ts = [threading.Thread(target=good_client, args=(i,)) for i in range(4)]
        ts += [threading.Thread(target=bad_client, args=(i,)) for i in range(3)]
        ts.append(threading.Thread(target=invalidator))
        reload_under_load(a, ts, stop, lambda gen: storm_vcl(tmp_path, t, p, pki.ca, gen),
                          range(2, 5), 1.5, 1.0, 20)
        assert not errors, errors[:5]
        assert counts["ok"] > 20 and counts["bad"] > 10
        # still healthy afterwards
        with TLSConn(a.tls, "a.test", cafile=pki.ca) as c:
            r = c.request("GET", "/c/3", {"Accept-Encoding": "br"})
            assert r.status == 200 and decode(r) == bodies["/c/3"]
    finally:
        t.stop()
        p.stop()


# -- a pooled TLS origin connection with bytes left inside OpenSSL ---------------------


def test_bytes_after_a_tls_response_never_answer_the_next_request(start_accel, pki):
    """An origin sends its answer and, in the same TLS record, bytes nobody
    asked for (here: a whole second response).  With relay_buffer = 4096 and
    an answer of exactly 4096 bytes, the extra bytes stay decrypted inside
    OpenSSL: no socket readiness tells the idle pool about them, so the
    connection must not be reused, or they answer the next request (and are
    cached)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert("ip"), pki.key("ip"))
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    socks = []
    head = b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: %d\r\n\r\n"
    n = 4096 - len(head % 1000)
    first = (head % n) + b"a" * n
    evil = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nCache-Control: max-age=60\r\n\r\nEVIL"

    def serve(raw):
        try:
            s = ctx.wrap_socket(raw, server_side=True)
            socks.append(s)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                req, _, buf = buf.partition(b"\r\n\r\n")
                if req.split(b" ")[1] == b"/a":
                    s.sendall(first + evil)         # one TLS record
                else:
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
                              b"Cache-Control: max-age=60\r\n\r\ngood")
        except OSError:
            pass

    def accept():
        while True:
            try:
                raw, _ = ls.accept()
            except OSError:
                return
            socks.append(raw)
            threading.Thread(target=serve, args=(raw,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    try:
        a = start_accel("-b", "https://127.0.0.1:%d" % ls.getsockname()[1],
                        "-p", "origin_ca_file=" + pki.ca, "-p", "relay_buffer=4096", workers=1)
        r = a.get("/a")
        assert r.status == 200 and r.body == b"a" * n
        r = a.get("/b")
        assert r.body == b"good"
        assert a.get("/b").body == b"good"
    finally:
        ls.close()
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


# -- a cut response to an HTTP/1.0 client over TLS ends without close_notify --------


def h10_over_tls(port, pki, target, ae):
    """GET target as HTTP/1.0 (the body ends with the close) over TLS;
    (bytes, "clean" | "unclean" | "reset") -- clean: close_notify came."""
    ctx = client_context(pki.ca)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF       # Python sets it by default
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="a.test", suppress_ragged_eofs=False)
    data = b""
    try:
        s.sendall(b"GET %s HTTP/1.0\r\nAccept-Encoding: %s\r\n\r\n" % (target.encode(), ae))
        while True:
            d = s.recv(65536)
            if not d:
                return data, "clean"
            data += d
    except ssl.SSLError as e:       # SSLEOFError, or UNEXPECTED_EOF_WHILE_READING
        if "EOF" not in str(e):
            raise
        return data, "unclean"
    except ConnectionResetError:
        return data, "reset"
    finally:
        s.close()


def test_cut_body_to_http10_tls_client_is_an_unclean_close(origin, start_accel, pki):
    nostore = {"Content-Type": "text/html", "Cache-Control": "no-store"}
    origin.on("/whole", headers=nostore, body=BIG, chunked=True)
    origin.on("/cut", headers=nostore, body=BIG, chunked=True, truncate_after=50000)
    origin.on("/cut-cached", headers=HTML, body=BIG, chunked=True, truncate_after=50000)
    a = tls_listen(start_accel, pki, origins=[origin])
    for ae in (b"identity", b"gzip"):
        data, how = h10_over_tls(a.tls, pki, "/whole", ae)
        assert how == "clean" and data.endswith(BIG[-1000:]), (ae, how)     # a pass: as sent
        for target in ("/cut", "/cut-cached"):
            data, how = h10_over_tls(a.tls, pki, target, ae)
            assert how != "clean", (target, ae, len(data))
