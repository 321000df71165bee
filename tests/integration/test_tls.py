"""TLS termination on the client side (issue 9): handshakes, SNI and the
default certificate, the chain, refused protocols and ciphers, ALPN,
resumption across workers, cached answers over TLS, SIGHUP certificate
reload with an open connection kept, plain HTTP and garbage on the TLS port,
hundreds of broken ClientHellos, the handshake timeout, the policy's view of
TLS, and -u.

Certificates are made once per session with the openssl command line
(tlscerts.py): a root, an intermediate, and ECDSA, RSA and wildcard leaves.
"""

import os
import random
import re
import shutil
import signal
import socket
import ssl
import time

import pytest

from client import Conn, free_port, wait_until
from policy_common import run_accel, write_vcl
from tlscerts import TLSConn, client_context, make_leaf, make_pki, s_client

MAXAGE = {"Cache-Control": "max-age=60"}
REQ = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def start_tls(start_accel, pki, *args, origins=(), certs=("a", "b", "w"), workers=2, **kw):
    """accel with its plain listener (a.port) and one TLS listener (a.tls)."""
    for _ in range(3):
        tport = free_port()
        cargs = []
        for c in certs:
            cargs += ["-c", c if "," in c else pki.spec(c)]
        a = start_accel("-a", "127.0.0.1:%d,tls" % tport, *cargs, *args, origins=list(origins),
                        workers=workers, **kw)
        try:
            a.wait_stderr(r"listening on 127\.0\.0\.1:%d,tls|listening on 127\.0\.0\.1:%d\b"
                          % (tport, tport), timeout=10)
        except AssertionError:
            if "Address already in use" in a.stderr():
                continue
            raise
        a.tls = tport
        return a
    raise AssertionError("no free port for the TLS listener")


def hup(a, what, n):
    """SIGHUP (the process stays up) and wait for the n-th `what` line."""
    os.kill(a.pid, signal.SIGHUP)
    wait_until(lambda: len(re.findall(what, a.stderr())) >= n, 10, "%r #%d" % (what, n))


# -- handshakes, certificates, protocols ------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_handshake_and_request_over_tls(origin, start_accel, pki, version):
    origin.on("/v", body=b"over tls")
    a = start_tls(start_accel, pki, origins=[origin])
    ctx = client_context(pki.ca, minv=version, maxv=version)
    with TLSConn(a.tls, "a.test", ctx=ctx) as c:
        # verified against the root only: the intermediate came from accel
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                    ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        name, _, bits = c.sock.cipher()
        if version == ssl.TLSVersion.TLSv1_2:
            assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)
        r = c.request("GET", "/v")
        assert r.status == 200 and r.body == b"over tls"
    assert origin.last("/v").header("X-Forwarded-Proto") == "https"
    r = a.get("/v")                                      # the plain listener still says http
    assert r.status == 200
    assert origin.last("/v").header("X-Forwarded-Proto") == "http"


def test_sni_picks_certificate_exact_wildcard_and_default(origin, start_accel, pki):
    a = start_tls(start_accel, pki, origins=[origin])
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        assert c.peer_names() == ["a.test"]
    with TLSConn(a.tls, "b.test", pki.ca) as c:             # the RSA certificate
        assert c.peer_names() == ["b.test"]
        assert "RSA" in c.sock.cipher()[0] or c.sock.version() == "TLSv1.3"
    with TLSConn(a.tls, "x.w.test", pki.ca) as c:           # wildcard
        assert c.peer_names() == ["*.w.test"]
    with TLSConn(a.tls, None, pki.ca) as c:                 # no SNI: the first -c
        assert c.peer_names() == ["a.test"]
    ctx = client_context(pki.ca)
    ctx.check_hostname = False
    with TLSConn(a.tls, "unknown.test", ctx=ctx) as c:      # unknown name: the default
        assert c.peer_names() == ["a.test"]
    with pytest.raises(ssl.SSLCertVerificationError):       # *.w.test is one label deep
        TLSConn(a.tls, "a.b.w.test", pki.ca)


def test_rsa_and_ecdsa_certificates_for_the_same_name(origin, start_accel, pki, tmp_path):
    d = str(tmp_path)
    for f in ("ca.pem", "int.pem", "int.key"):
        shutil.copy(os.path.join(pki.dir, f), d)
    crt, key = make_leaf(d, "ar", ["a.test"], "rsa")
    a = start_tls(start_accel, pki, origins=[origin], certs=("a", "%s,%s" % (crt, key), "b"))
    a.wait_stderr(r"certificate \S*ar\.pem for a\.test \(RSA, beside \S*a\.pem\)")
    # clients that take ECDSA get it; the others get RSA, for the same name
    out = s_client(a.tls, "-servername", "a.test", stdin=REQ)
    assert "Server public key is 256 bit" in out and "HTTP/1.1 200" in out, out[-800:]
    out = s_client(a.tls, "-servername", "a.test", "-sigalgs", "rsa_pss_rsae_sha256", stdin=REQ)
    assert "Server public key is 2048 bit" in out and "HTTP/1.1 200" in out, out[-800:]
    out = s_client(a.tls, "-servername", "a.test", "-tls1_2", "-cipher",
                   "ECDHE-RSA-AES128-GCM-SHA256", stdin=REQ)
    assert "Server public key is 2048 bit" in out and "HTTP/1.1 200" in out, out[-800:]
    with TLSConn(a.tls, "a.test", pki.ca) as c:             # the RSA chain verifies too
        assert c.peer_names() == ["a.test"]
    with TLSConn(a.tls, "b.test", pki.ca) as c:             # other names are untouched
        assert c.peer_names() == ["b.test"]


def test_old_protocols_and_weak_ciphers_are_refused(origin, start_accel, pki):
    a = start_tls(start_accel, pki, origins=[origin])
    for proto in ("-tls1", "-tls1_1"):
        out = s_client(a.tls, proto, "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "a.test")
        assert "Cipher is (NONE)" in out or "no protocols available" in out, out[-800:]
    # RSA key exchange and CBC (against the RSA certificate): no shared cipher
    for cipher in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES256-GCM-SHA384"):
        out = s_client(a.tls, "-tls1_2", "-cipher", cipher, "-servername", "b.test")
        assert "Cipher is (NONE)" in out and "handshake failure" in out, out[-800:]
    out = s_client(a.tls, "-tls1_2", "-servername", "b.test", stdin=REQ)
    assert re.search(r"Cipher is ECDHE-RSA-(AES\d+-GCM|CHACHA20)", out), out[-800:]
    assert "HTTP/1.1 200" in out


def test_alpn_offers_h2_then_http11(origin, start_accel, pki):
    # (HTTP/2 itself: test_h2.py)
    a = start_tls(start_accel, pki, origins=[origin])
    ctx = client_context(pki.ca, alpn=["http/1.1", "h2"])
    with TLSConn(a.tls, "a.test", ctx=ctx) as c:
        assert c.sock.selected_alpn_protocol() == "h2"     # ours is the order that counts
    ctx = client_context(pki.ca, alpn=["http/1.1"])
    with TLSConn(a.tls, "a.test", ctx=ctx) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert c.request("GET", "/").status == 200
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        TLSConn(a.tls, "a.test", ctx=client_context(pki.ca, alpn=["spdy/3"]))
    with TLSConn(a.tls, "a.test", pki.ca) as c:             # no ALPN at all is fine
        assert c.sock.selected_alpn_protocol() is None
        assert c.request("GET", "/").status == 200


@pytest.mark.parametrize("proto", ["-tls1_3", "-tls1_2"])
def test_session_resumption_across_workers(origin, start_accel, pki, tmp_path, proto):
    a = start_tls(start_accel, pki, origins=[origin], workers=2)
    sess = str(tmp_path / "sess.pem")
    out = s_client(a.tls, proto, "-servername", "a.test", "-sess_out", sess,
                   stdin=REQ)
    assert out.count("New, TLS") == 1 and "HTTP/1.1 200" in out, out[-800:]
    # SO_REUSEPORT spreads these over both workers: a ticket sealed by one
    # worker must open on the other, every time.
    for _ in range(8):
        out = s_client(a.tls, proto, "-servername", "a.test", "-sess_in", sess,
                       stdin=REQ)
        assert "Reused, TLS" in out and "HTTP/1.1 200" in out, out[-800:]
    if proto == "-tls1_3":
        # TLS 1.3 tickets are for one use: each resumption hands out a new
        # one, and the chain of resumptions goes on with the new ones
        for i in range(4):
            nxt = str(tmp_path / ("sess%d.pem" % i))
            out = s_client(a.tls, proto, "-servername", "a.test", "-sess_in", sess,
                           "-sess_out", nxt, stdin=REQ)
            assert "Reused, TLS" in out, out[-800:]
            with open(sess, "rb") as f1, open(nxt, "rb") as f2:
                assert f1.read() != f2.read(), "no fresh ticket after a TLS 1.3 resumption"
            sess = nxt


# -- requests over TLS -----------------------------------------------------------------


def test_cached_answer_over_tls_and_pipelined_requests(origin, start_accel, pki):
    origin.on("/c", body=b"cached body", headers=MAXAGE)
    a = start_tls(start_accel, pki, origins=[origin])
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        r1 = c.request("GET", "/c")
        r2 = c.request("GET", "/c")                         # keep-alive, same connection
    assert (r1.status, r1.header("X-Cache")) == (200, "MISS")
    assert (r2.status, r2.header("X-Cache"), r2.body) == (200, "HIT", b"cached body")
    assert origin.count("/c") == 1
    # Eight pipelined requests of exactly 1 KiB in one TLS record: the first
    # read (4 KiB) takes four whole requests, and the other four wait,
    # decrypted, inside OpenSSL with no socket readiness to wake anyone.
    # Every answer must still come.
    head = b"GET /c HTTP/1.1\r\nHost: a.test\r\nX-Pad: \r\n\r\n"
    req = head.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (1024 - len(head)))
    assert len(req) == 1024
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        c.send(req * 8)
        for _ in range(8):
            r = c.read_response()
            assert (r.status, r.body) == (200, b"cached body")


def test_large_bodies_both_ways_over_tls(origin, start_accel, pki):
    body = os.urandom(300000)
    origin.on("/big", body=body, headers=MAXAGE)
    origin.on("/echo", echo=True)
    a = start_tls(start_accel, pki, origins=[origin])
    for _ in range(2):                                      # miss (streamed), then hit
        with TLSConn(a.tls, "a.test", pki.ca) as c:
            r = c.request("GET", "/big")
            assert r.status == 200 and r.body == body
    with TLSConn(a.tls, "a.test", pki.ca) as c:             # request bodies (pass)
        r = c.request("POST", "/echo", body=body[:200000])
        assert r.status == 200 and r.body == body[:200000]
        r = c.request("POST", "/echo", headers={"Transfer-Encoding": "chunked"},
                      body=b"1388\r\n" + body[:5000] + b"\r\n0\r\n\r\n")
        assert r.status == 200 and r.body == body[:5000]


def test_plain_http_and_garbage_on_tls_port(origin, start_accel, pki):
    a = start_tls(start_accel, pki, "-d", origins=[origin])
    with Conn(a.tls) as c:                                  # plain HTTP: a plain 400, as nginx
        r = c.request("GET", "/")
        assert r.status == 400 and b"plain HTTP request was sent to HTTPS port" in r.body
        assert c.wait_closed()
    with Conn(a.tls) as c:
        c.send(b"\x00garbage\xff" * 20)
        assert c.wait_closed()
    a.wait_stderr(r"TLS handshake failed")                 # logged at debug level
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        assert c.request("GET", "/").status == 200
    a.signal(signal.SIGTERM)                                # the counters, summed at exit
    assert a.wait_exit() == 0
    m = re.search(r"tls: (\d+) handshakes \((\d+) resumed\), (\d+) failed", a.stderr())
    assert m and (int(m.group(1)), int(m.group(3))) == (1, 2), a.stderr()[-1500:]


def _client_hello():
    """The bytes of a real ClientHello (Python's, with SNI a.test)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(verify=False).wrap_bio(inc, out, server_hostname="a.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_broken_client_hellos_leave_accel_serving(origin, start_accel, pki):
    a = start_tls(start_accel, pki, origins=[origin])
    hello = _client_hello()
    rnd = random.Random(9)
    cases = []
    for i in range(400):
        k = i % 4
        if k == 0:                                           # truncated
            cases.append(hello[:rnd.randrange(1, len(hello))])
        elif k == 1:                                         # a few bytes flipped
            b = bytearray(hello)
            for _ in range(rnd.randrange(1, 8)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            cases.append(bytes(b))
        elif k == 2:                                         # random after a record header
            cases.append(b"\x16\x03\x01" + bytes(rnd.randrange(256) for _ in range(60)))
        else:                                                # random
            cases.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))))
    open_socks = []
    for i, data in enumerate(cases):
        s = socket.create_connection(("127.0.0.1", a.tls), timeout=10)
        try:
            s.sendall(data)
            if i % 3 == 0:                                   # half-close, then wait for ours
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
        except OSError:                                      # accel already gave up on it
            pass
        if i % 3 == 0:
            s.close()
        else:
            open_socks.append(s)                             # some left hanging, closed later
        if len(open_socks) > 50:
            for x in open_socks:
                x.close()
            open_socks = []
    for x in open_socks:
        x.close()
    assert a.alive()
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        assert c.request("GET", "/").status == 200
    assert a.get("/").status == 200


def test_handshake_timeout_closes_silent_client(origin, start_accel, pki):
    a = start_tls(start_accel, pki, "-p", "tls_handshake_timeout=0.5", origins=[origin])
    t0 = time.monotonic()
    with Conn(a.tls) as c:
        c.send(_client_hello()[:20])                         # half a hello, then silence
        assert c.wait_closed(timeout=10)
    assert time.monotonic() - t0 < 8


# -- reload ----------------------------------------------------------------------------


def test_sighup_reloads_certificates_and_keeps_open_connections(origin, start_accel, pki,
                                                                 tmp_path):
    d = str(tmp_path)
    shutil.copy(pki.ca, d)
    for f in ("int.pem", "int.key"):
        shutil.copy(os.path.join(pki.dir, f), d)
    crt, key = make_leaf(d, "r", ["a.test"], "ec", serial=1001)
    a = start_tls(start_accel, pki, origins=[origin], certs=("%s,%s" % (crt, key),))
    old = TLSConn(a.tls, "a.test", pki.ca)
    der1 = old.peer_der()
    assert old.request("GET", "/").status == 200

    make_leaf(d, "r", ["a.test"], "ec", serial=1002)       # same files, new certificate
    hup(a, r"certificate reload done", 1)
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        der2 = c.peer_der()
        assert c.request("GET", "/").status == 200
    assert der2 != der1
    assert old.request("GET", "/").status == 200           # the open connection goes on

    with open(key, "w") as f:                               # a broken key: keep the running set
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    hup(a, r"certificate reload failed", 1)
    assert re.search(r"certificate reload failed.*private key", a.stderr())
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        assert c.peer_der() == der2
        assert c.request("GET", "/").status == 200
    assert old.request("GET", "/").status == 200
    old.close()


# -- the policy and the cache key ---------------------------------------------------------


def test_policy_sees_tls_and_can_key_on_scheme(origin, start_accel, pki, tmp_path):
    origin.on("/k", body=b"k", headers=MAXAGE)
    body = r"""
import tls;
sub vcl_hash {
    hash_data(req.url);
    if (tls.is_tls()) {
        hash_data("https");
    }
    return (lookup);
}
sub vcl_deliver {
    if (tls.is_tls()) {
        set resp.http.X-TLS = tls.version() + " " + tls.authority();
    } else {
        set resp.http.X-TLS = "no";
    }
}
"""
    path = write_vcl(tmp_path, body, origin)
    a = start_tls(start_accel, pki, "-f", path)
    r = a.get("/k")
    assert (r.header("X-Cache"), r.header("X-TLS")) == ("MISS", "no")
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        r = c.request("GET", "/k")                          # another key: its own fetch
        assert r.header("X-Cache") == "MISS"
        assert r.header("X-TLS") == "TLSv1.3 a.test"
        assert c.request("GET", "/k").header("X-Cache") == "HIT"
    assert a.get("/k").header("X-Cache") == "HIT"
    assert origin.count("/k") == 2


# -- configuration and privileges --------------------------------------------------------


def test_configuration_errors(pki, tmp_path):
    r = run_accel("-a", "127.0.0.1:%d,tls" % free_port(), "-b", "127.0.0.1:9")
    assert r.returncode == 2 and "needs a certificate" in r.stderr
    bad = tmp_path / "bad.pem"
    bad.write_text("nothing here\n")
    r = run_accel("-a", "127.0.0.1:%d,tls" % free_port(), "-c", "%s,%s" % (bad, pki.key("a")),
                  "-b", "127.0.0.1:9")
    assert r.returncode == 1 and "certificate" in r.stderr and str(bad) in r.stderr
    r = run_accel("-a", "127.0.0.1:%d,tls" % free_port(), "-c", "%s,%s" % (pki.cert("a"),
                  pki.key("b")), "-b", "127.0.0.1:9")
    assert r.returncode == 1 and "private key" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="-u needs root")
def test_drop_privileges_after_opening_keys(origin, start_accel, pki, tmp_path):
    d = tmp_path / "keys"
    d.mkdir()
    for f in ("a.pem", "a.key"):
        shutil.copy(os.path.join(pki.dir, f), str(d))
    os.chmod(str(d / "a.key"), 0o600)                       # root only
    a = start_tls(start_accel, pki, "-u", "nobody", origins=[origin],
                  certs=("%s,%s" % (d / "a.pem", d / "a.key"),))
    a.wait_stderr(r"running as nobody")
    with open("/proc/%d/status" % a.pid) as f:
        uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
    assert uids[0] != "0" and uids[1] != "0" and uids[2] != "0"
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        assert c.request("GET", "/").status == 200
    # after the drop the key is unreadable: a reload keeps the running certificate
    hup(a, r"certificate reload failed", 1)
    with TLSConn(a.tls, "a.test", pki.ca) as c:
        assert c.request("GET", "/").status == 200
