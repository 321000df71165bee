"""Issue 6: PURGE and BAN from a client that is not on loopback get 405 and
change nothing.  The outsider is a network namespace this test creates
(a veth pair on a private /30); the test is skipped where namespaces cannot
be created (not root, no CAP_NET_ADMIN)."""

import os
import subprocess

import pytest

from client import free_port


def sh(*args):
    try:
        return subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=10)
    except FileNotFoundError as e:          # no iproute2 / curl on this machine
        return subprocess.CompletedProcess(args, 127, b"", str(e).encode())


@pytest.fixture
def outsider():
    ns = "acceltest%d" % os.getpid()
    veth = "ac%d" % (os.getpid() % 100000)
    host_ip, ns_ip = "10.213.%d.1" % (os.getpid() % 200), "10.213.%d.2" % (os.getpid() % 200)
    steps = [
        ("ip", "netns", "add", ns),
        ("ip", "link", "add", veth + "h", "type", "veth", "peer", "name", veth + "n"),
        ("ip", "link", "set", veth + "n", "netns", ns),
        ("ip", "addr", "add", host_ip + "/30", "dev", veth + "h"),
        ("ip", "link", "set", veth + "h", "up"),
        ("ip", "netns", "exec", ns, "ip", "addr", "add", ns_ip + "/30", "dev", veth + "n"),
        ("ip", "netns", "exec", ns, "ip", "link", "set", veth + "n", "up"),
        ("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"),
    ]
    try:
        for st in steps:
            r = sh(*st)
            if r.returncode != 0:
                pytest.skip("cannot create a network namespace here: %s: %s"
                            % (" ".join(st), r.stderr.decode().strip()))
        yield ns, host_ip
    finally:
        sh("ip", "link", "del", veth + "h")
        sh("ip", "netns", "del", ns)


def curl_from(ns, *args):
    r = sh("ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
           "--max-time", "5", *args)
    return r.stdout.decode()


def test_purge_and_ban_from_outside_loopback_are_refused(origin, start_accel, outsider):
    ns, host_ip = outsider
    port = free_port()
    a = start_accel("-a", "%s:%d" % (host_ip, port), origins=[origin])
    origin.on("/acl", body=b"keep me", headers={"Cache-Control": "max-age=60"})
    a.get("/acl")
    assert a.get("/acl").header("X-Cache") == "HIT"
    url = "http://%s:%d/acl" % (host_ip, port)
    # the outsider reaches accel (a GET works) ...
    assert curl_from(ns, "-H", "Host: test.example", url) == "200"
    # ... but may not purge or ban
    assert curl_from(ns, "-X", "PURGE", "-H", "Host: test.example", url) == "405"
    assert curl_from(ns, "-X", "BAN", "-H", "Ban: req.url ~ .", url) == "405"
    assert a.get("/acl").header("X-Cache") == "HIT"
    assert not any(q.method in ("PURGE", "BAN") for q in origin.requests)
