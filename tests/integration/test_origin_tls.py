"""TLS to origins (issue 8): `.ssl = true` backends with SNI, certificate
verification against a pinned CA (or the system store), refusal of a bad
certificate, connection reuse and session resumption, and health probes
spoken over TLS.  The origin is the scripted test origin behind Python's
ssl module, with a test PKI made by the openssl command line."""

import re
import ssl
import pytest

from client import request, wait_until
from origin import Origin
from policy_common import start_policy
from tlscerts import make_leaf, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("opki")))


def tls_origin(pki, leaf="a"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert(leaf), pki.key(leaf))
    return Origin(tls=ctx)


def ssl_backend(o, fields):
    return 'backend default { .host = "127.0.0.1"; .port = "%d"; .ssl = true; %s }\n' % (
        o.port, fields)


def start_tls_policy(start_accel, tmp_path, o, fields, body="", **kw):
    return start_policy(start_accel, tmp_path, ssl_backend(o, fields) + body, backends=[], **kw)


def test_https_origin_with_pinned_ca_sni_and_reuse(start_accel, tmp_path, pki):
    o = tls_origin(pki, "a")
    try:
        o.on("/x", status=200, headers={"Cache-Control": "no-store"}, body=b"over tls")
        a = start_tls_policy(start_accel, tmp_path, o,
                             '.host_header = "a.test"; .ssl_ca_file = "%s";' % pki.ca, workers=1)
        for _ in range(3):
            r = a.get("/x")
            assert r.status == 200, r.body
            assert r.body == b"over tls"
        assert o.count("/x") == 3
        assert o.sni[0] == "a.test"                 # .host_header is the SNI name
        assert o.connections == 1, "keep-alive TLS connections are reused"
        assert o.requests_for("/x")[0].header("Host") is not None
    finally:
        o.stop()


def test_sessions_resume_on_new_connections(start_accel, tmp_path, pki):
    o = tls_origin(pki, "a")
    try:
        # The origin closes after every answer: each request needs a new
        # connection, which should resume the previous TLS session.
        o.on("/c", status=200, headers={"Connection": "close", "Cache-Control": "no-store"},
             body=b"c")
        a = start_tls_policy(start_accel, tmp_path, o,
                             '.host_header = "a.test"; .ssl_ca_file = "%s";' % pki.ca, workers=1)
        for _ in range(4):
            r = a.get("/c")
            assert r.status == 200 and r.body == b"c"
        assert o.connections == 4
        wait_until(lambda: o.tls_resumed >= 2, 5, "resumed TLS sessions")
    finally:
        o.stop()


def test_bad_certificates_are_refused_with_502(start_accel, tmp_path, pki):
    o = tls_origin(pki, "b")                        # a certificate for b.test
    try:
        o.on("/x", status=200, body=b"must not be served")
        # the name does not match
        a = start_tls_policy(start_accel, tmp_path, o,
                             '.host_header = "a.test"; .ssl_ca_file = "%s";' % pki.ca)
        r = a.get("/x")
        assert r.status == 502
        assert b"must not" not in r.body
        wait_until(lambda: "certificate verify failed" in a.stderr(), 5, "a logged reason")
        # an unknown CA (the system store does not know the test root)
        b = start_tls_policy(start_accel, tmp_path, o, '.host_header = "b.test";',
                             name="system.vcl")
        r = b.get("/x")
        assert r.status == 502
        assert o.count("/x") == 0
        wait_until(lambda: o.tls_failed >= 2, 5, "both failed handshakes counted by the origin")
    finally:
        o.stop()


def test_verification_can_be_relaxed_per_backend(start_accel, tmp_path, pki):
    o = tls_origin(pki, "b")
    try:
        o.on("/x", status=200, headers={"Cache-Control": "no-store"}, body=b"ok")
        # right CA, wrong name, but .ssl_verify_host = false
        a = start_tls_policy(start_accel, tmp_path, o,
                             '.host_header = "a.test"; .ssl_ca_file = "%s"; '
                             '.ssl_verify_host = false;' % pki.ca)
        assert a.get("/x").status == 200
        # no verification at all, no SNI
        b = start_tls_policy(start_accel, tmp_path, o,
                             '.ssl_verify_peer = false; .ssl_sni = false;', name="nv.vcl")
        assert b.get("/x").status == 200
        assert None in o.sni or len(o.sni) < o.connections    # one handshake had no SNI
    finally:
        o.stop()


def test_a_bad_ca_file_fails_the_policy_load(start_accel, tmp_path, pki):
    o = tls_origin(pki, "a")
    try:
        with pytest.raises(AssertionError) as e:
            start_tls_policy(start_accel, tmp_path, o,
                             '.ssl_ca_file = "%s";' % (str(tmp_path) + "/missing.pem"))
        assert "accel exited (rc 1)" in str(e.value)
        # where in the policy, which field, and the system's words for why
        assert re.search(r"\.vcl:\d+:\d+: error: backend default: \.ssl_ca_file \S+/missing\.pem: "
                         r"No such file or directory", str(e.value)), str(e.value)
    finally:
        o.stop()


def test_probes_speak_tls(start_accel, tmp_path, pki):
    o = tls_origin(pki, "a")
    try:
        o.on("/health", status=200, body=b"ok")
        o.on("/x", status=200, headers={"Cache-Control": "no-store"}, body=b"x")
        a = start_tls_policy(start_accel, tmp_path, o,
                             '.host_header = "a.test"; .ssl_ca_file = "%s"; '
                             '.probe = { .url = "/health"; .interval = 0.2s; .timeout = 1s; '
                             '.window = 2; .threshold = 2; .initial = 2; }' % pki.ca)
        assert a.get("/x").status == 200
        o.wait_count("/health", 2)                  # answered over TLS
        assert o.tls_failed == 0
        o.on("/health", status=500, body=b"down")
        wait_until(lambda: a.get("/x").status == 503, 10, "the probe to mark it sick")
        o.on("/health", status=200, body=b"ok")
        wait_until(lambda: a.get("/x").status == 200, 10, "the probe to mark it healthy")
    finally:
        o.stop()


def test_command_line_https_origin(start_accel, tmp_path, pki):
    # a certificate for the address itself, so -b needs no DNS name
    make_leaf(pki.dir, "ip", ["localhost,IP:127.0.0.1"])
    o = tls_origin(pki, "ip")
    try:
        o.on("/x", status=200, headers={"Cache-Control": "max-age=60"}, body=b"via -b https")
        a = start_accel("-b", "https://127.0.0.1:%d" % o.port, "-p", "origin_ca_file=" + pki.ca,
                        origins=[])
        r = a.get("/x")
        assert r.status == 200 and r.body == b"via -b https"
        assert a.get("/x").header("X-Cache").startswith("HIT")
        assert o.sni == [None]                      # no SNI for an address (RFC 6066)
        # without the CA pin the system store does not know the test root
        b = start_accel("-b", "https://127.0.0.1:%d/" % o.port, origins=[])
        assert b.get("/x").status == 502
        assert o.count("/x") == 1
    finally:
        o.stop()
