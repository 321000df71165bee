"""SIGHUP reload of the policy: the new program takes over without dropping
a connection; a bad file keeps the old program; reload under load loses no
request."""

import os
import re
import signal
import threading
import time

from client import Conn, wait_until
from policy_common import start_policy, write_vcl

MAXAGE = {"Cache-Control": "max-age=60"}


def policy(tag):
    return r"""
sub vcl_recv {
    if (req.url ~ "^/p/") {
        return (pass);
    }
}
sub vcl_deliver {
    set resp.http.X-Policy = "%s";
}
""" % tag


def hup(a, n_done):
    """SIGHUP (not Accel.signal: the process must stay up) and wait for the
    n_done-th "reload ... done" or "failed" line."""
    os.kill(a.pid, signal.SIGHUP)
    wait_until(lambda: len(re.findall(r"reload of \S+ (?:done|failed)", a.stderr())) >= n_done,
               10, "reload #%d to finish" % n_done)


def test_reload_changes_response_header_on_open_connection(origin, start_accel, tmp_path):
    origin.on("/c/x", body=b"cached", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, policy("v1"), origin)
    with a.conn() as c:
        for t in ("/c/x", "/p/x"):
            r = c.request("GET", t)
            assert r.status == 200 and r.header("X-Policy") == "v1"
        write_vcl(tmp_path, policy("v2"), origin)
        hup(a, 1)
        assert re.search(r"reload of \S+ done", a.stderr())
        # the same keep-alive connection, now answered by the new program
        for t in ("/c/x", "/p/x"):
            r = c.request("GET", t)
            assert r.status == 200 and r.header("X-Policy") == "v2", (t, r.headers)
        assert r.body == b"path=/p/x"
    assert a.alive()


def test_bad_reload_keeps_old_policy(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, policy("v1"), origin)
    with a.conn() as c:
        assert c.request("GET", "/p/a").header("X-Policy") == "v1"
        path = write_vcl(tmp_path, policy("v2") + "sub vcl_recv {\n    set req.url = ;\n}\n",
                         origin)
        hup(a, 1)
        err = a.stderr()
        assert "reload of %s failed: keeping the running policy" % path in err, err[-2000:]
        assert re.search(r"site\.vcl:\d+:\d+: error", err), err[-2000:]
        r = c.request("GET", "/p/b")
        assert r.status == 200 and r.header("X-Policy") == "v1"
    # a good file afterwards is picked up
    write_vcl(tmp_path, policy("v3"), origin)
    hup(a, 2)
    assert a.get("/p/c").header("X-Policy") == "v3"
    assert a.alive()


def variant(gen):
    """Two alternating valid policies (A: the tag is a constant in
    vcl_deliver; B: vcl_recv puts it in a request header that vcl_deliver
    copies), each tagged with its generation so a response names the
    program that made it."""
    if gen % 2 == 0:
        return policy("g%d" % gen)
    return r"""
sub vcl_recv {
    set req.http.X-Gen = "g%d";
    if (req.url ~ "^/p/") {
        return (pass);
    }
    return (hash);
}
sub vcl_deliver {
    set resp.http.X-Policy = req.http.X-Gen;
}
""" % gen


def test_reload_under_load_loses_no_request(origin, start_accel, tmp_path):
    origin.on("/c/load", body=b"cached", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, variant(0), origin)
    stop = threading.Event()
    results = []        # (conn, status, generation, body ok, closed) or ("error", ...)
    lock = threading.Lock()

    def client(idx):
        conn = None
        n = 0
        while not stop.is_set():
            try:
                if conn is None:
                    conn = Conn(a.port, timeout=10)
                target = "/c/load" if n % 2 else "/p/load%d" % idx
                r = conn.request("GET", target)
                n += 1
                ok_body = b"cached" if target == "/c/load" else b"path=" + target.encode()
                tag = r.header("X-Policy") or ""
                gen = int(tag[1:]) if tag[:1] == "g" and tag[1:].isdigit() else None
                with lock:
                    results.append((idx, r.status, gen, r.body == ok_body,
                                    "close" in r.tokens("Connection")))
            except Exception as e:       # recorded: a failed request
                with lock:
                    results.append((idx, "error: %r" % e, None, False, True))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(results) >= 20, 10, "traffic before the first reload")
        for gen in range(1, 6):
            write_vcl(tmp_path, variant(gen), origin)
            hup(a, gen)
            before = len(results)
            wait_until(lambda: len(results) >= before + 100, 10,
                       "traffic after reload %d" % gen)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    err = a.stderr()
    assert "failed" not in err, err[-2000:]
    assert len(re.findall(r"reload of \S+ done", err)) == 5
    bad = [r for r in results if r[1] != 200 or r[2] is None or not r[3] or r[4]]
    assert not bad, "%d of %d requests failed, e.g. %r" % (len(bad), len(results), bad[:5])
    gens = {r[2] for r in results}
    assert gens == set(range(6)), "every generation answered: %r" % gens
    # one connection never goes back to an older program
    for idx in range(3):
        seq = [r[2] for r in results if r[0] == idx]
        assert seq == sorted(seq), "connection %d: generations %r" % (idx, seq)
    assert origin.count("/c/load") == 1, "the cache survives reloads"
    assert a.alive()
