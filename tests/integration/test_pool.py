"""Issue 8: origin pools -- directors, health probes, passive health,
retries on another server, max_connections, reload of backends, per-backend
stats.  Several scripted origins on loopback; every policy answers with the
server that served it (X-Be) so a test can see the director's choice."""

import json
import os
import re
import signal
import threading
import time

from client import free_port, request, wait_until
from origin import Origin
from policy_common import start_policy, write_vcl

# vcl_backend_response runs for passes too: tag each answer with its server.
TAG = """
sub vcl_backend_response {
    set beresp.http.X-Be = beresp.backend.name;
}
"""


def be_decl(name, port, extra=""):
    return ('backend %s { .host = "127.0.0.1"; .port = "%d"; %s}\n' % (name, port, extra))


def pool_vcl(origins, director, extra_be="", recv=None, init_extra="", weights=None,
             probe="", names=None):
    """b0..bN-1 (or names) -> origins, `new pool = directors.<director>()` with all."""
    text = "import directors;\nimport std;\n" + probe
    names = names or ["b%d" % i for i in range(len(origins))]
    for i, o in enumerate(origins):
        port = o if isinstance(o, int) else o.port
        text += be_decl(names[i], port, extra_be)
    text += "sub vcl_init {\n    new pool = directors.%s();\n" % director
    for i in range(len(origins)):
        w = ", %s" % weights[i] if weights else ""
        text += "    pool.add_backend(%s%s);\n" % (names[i], w)
    text += init_extra + "}\n"
    text += "sub vcl_recv {\n" + (recv or "    set req.backend_hint = pool.backend();\n"
                                  "    return (pass);\n") + "}\n"
    return text + TAG


def start_pool(start_accel, tmp_path, text, *args, **kw):
    return start_policy(start_accel, tmp_path, text, backends=[], args=args, **kw)


def served_by(a, target, conn=None):
    r = conn.request("GET", target) if conn else a.get(target)
    assert r.status == 200, (target, r.status, r.body[:200])
    return r.header("X-Be")


def admin_stats(port):
    r = request(port, "GET", "/stats")
    assert r.status == 200, r.body
    return {b["name"]: b for b in json.loads(r.body.decode())["backends"]}


def test_round_robin_random_and_least_connections(start_accel, tmp_path):
    os_ = [Origin() for _ in range(3)]
    try:
        text = pool_vcl(os_, "round_robin", recv="""
    if (req.url ~ "^/rnd") {
        set req.backend_hint = rnd.backend();
    } elsif (req.url ~ "^/lc") {
        set req.backend_hint = lc.backend();
    } else {
        set req.backend_hint = pool.backend();
    }
    return (pass);
""", init_extra="""    new rnd = directors.random();
    rnd.add_backend(b0, 1);
    rnd.add_backend(b1, 1);
    rnd.add_backend(b2, 2);
    new lc = directors.least_connections();
    lc.add_backend(b0);
    lc.add_backend(b1);
""")
        a = start_pool(start_accel, tmp_path, text, "-s", "none")
        names = ["127.0.0.1:%d" % o.port for o in os_]
        counts = {n: 0 for n in names}
        with a.conn() as c:
            for i in range(30):
                counts[served_by(a, "/rr/%d" % i, c)] += 1
        assert sorted(counts.values()) == [10, 10, 10], counts
        counts = {n: 0 for n in names}
        with a.conn() as c:
            for i in range(400):
                counts[served_by(a, "/rnd/%d" % i, c)] += 1
        # weights 1:1:2 -> 25% 25% 50%, loose bands (random)
        assert 60 <= counts[names[0]] <= 150, counts
        assert 60 <= counts[names[1]] <= 150, counts
        assert 140 <= counts[names[2]] <= 260, counts
        # least connections: while one request holds a connection to one
        # server, new requests go to the other one
        gate = threading.Event()
        for o in os_[:2]:
            o.on("/lc/slow", gate=gate)
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=a.get("/lc/slow")))
        t.start()
        wait_until(lambda: any(h.path == "/lc/slow" for o in os_[:2] for h in o.heads), 10,
                   "the slow request to arrive")
        busy = names[0] if any(h.path == "/lc/slow" for h in os_[0].heads) else names[1]
        with a.conn() as c:
            for i in range(6):
                assert served_by(a, "/lc/q%d" % i, c) != busy
        gate.set()
        t.join(10)
        assert slow["r"].status == 200 and slow["r"].header("X-Be") == busy
    finally:
        for o in os_:
            o.stop()


def test_shard_is_consistent_and_reload_remaps_one_nth(start_accel, tmp_path):
    os_ = [Origin() for _ in range(4)]
    recv = """
    if (req.http.X-By == "url") {
        set req.backend_hint = pool.backend(by = URL);
    } else {
        set req.backend_hint = pool.backend(req.url);
    }
    return (pass);
"""
    try:
        a = start_pool(start_accel, tmp_path, pool_vcl(os_, "shard", recv=recv), "-s", "none")
        keys = ["/obj/%d" % i for i in range(120)]
        with a.conn() as c:
            before = {k: served_by(a, k, c) for k in keys}
            # the same key always goes to the same server; by = URL is the same key
            for k in keys[:20]:
                assert served_by(a, k, c) == before[k]
                r = c.request("GET", k, {"X-By": "url"})
                assert r.status == 200 and r.header("X-Be") == before[k]
        assert len(set(before.values())) == 4, "every server owns some keys"
        # SIGHUP with b2 removed: the new backend table takes effect
        removed = "127.0.0.1:%d" % os_[2].port
        write_vcl(tmp_path, pool_vcl([os_[0], os_[1], os_[3]], "shard", recv=recv,
                                      names=["b0", "b1", "b3"]), backends=[])
        os.kill(a.pid, signal.SIGHUP)
        wait_until(lambda: re.search(r"reload of \S+ done", a.stderr()), 10, "reload")
        with a.conn() as c:
            after = {k: served_by(a, k, c) for k in keys}
        moved = [k for k in keys if after[k] != before[k]]
        assert removed not in after.values()
        # only the removed server's keys moved (about 1/4 of them)
        assert all(before[k] == removed for k in moved), moved
        assert len(moved) == sum(1 for k in keys if before[k] == removed)
        assert 10 <= len(moved) <= 55, len(moved)
    finally:
        for o in os_:
            o.stop()


PROBE = ('probe hp { .url = "/health"; .interval = 0.2s; .timeout = 0.5s; .window = 3; '
         '.threshold = 2; .initial = 2; }\n')


def test_probes_detect_a_dead_server_skip_it_and_see_it_recover(start_accel, tmp_path):
    os_ = [Origin() for _ in range(3)]
    try:
        text = pool_vcl(os_, "round_robin", extra_be=".probe = hp; ", probe=PROBE) + """
sub vcl_deliver {
    set resp.http.X-B1-Healthy = std.healthy(b1);
    set resp.http.X-Pool-Healthy = std.healthy(pool.backend());
}
"""
        port = free_port()
        a = start_pool(start_accel, tmp_path, text, "-s", "none", "-T", "127.0.0.1:%d" % port)
        names = ["127.0.0.1:%d" % o.port for o in os_]
        wait_until(lambda: all(o.count("/health") >= 2 for o in os_), 10, "probes")
        r = a.get("/x")
        assert r.header("X-B1-Healthy") == "true" and r.header("X-Pool-Healthy") == "true"
        # b1 starts failing its probe: sick within about interval x threshold
        os_[1].on("/health", status=503)
        t0 = time.monotonic()
        a.wait_stderr(r"backend b1 \(\S+\): sick \(probe", timeout=10)
        assert time.monotonic() - t0 < 5.0     # 0.2 s x 2, with a loaded machine's slack
        with a.conn() as c:
            seen = [served_by(a, "/y%d" % i, c) for i in range(12)]
        assert names[1] not in seen and set(seen) == {names[0], names[2]}
        assert a.get("/z").header("X-B1-Healthy") == "false"
        st = admin_stats(port)
        assert st["b1"]["healthy"] is False and st["b1"]["probe_bad"] >= 2
        # recovery
        os_[1].on("/health", status=200)
        a.wait_stderr(r"backend b1 \(\S+\): healthy \(probe", timeout=10)
        with a.conn() as c:
            seen = [served_by(a, "/w%d" % i, c) for i in range(12)]
        assert names[1] in seen
        # a killed server: connect refused, detected and skipped
        os_[2].stop()
        a.wait_stderr(r"backend b2 \(\S+\): sick \(probe", timeout=10)
        with a.conn() as c:
            seen = [served_by(a, "/k%d" % i, c) for i in range(12)]
        assert names[2] not in seen
    finally:
        for o in os_:
            o.stop()


def test_failed_connect_is_retried_on_another_server(start_accel, tmp_path):
    good = Origin()
    dead = free_port()              # nothing listens there
    try:
        text = pool_vcl([dead, good.port], "fallback", recv="""
    set req.backend_hint = pool.backend();
    return (pass);
""")
        port = free_port()
        a = start_pool(start_accel, tmp_path, text, "-s", "none", "-T", "127.0.0.1:%d" % port,
                       "-p", "backend_fail_threshold=0")
        # fallback tries the dead one first; the GET moves to the good one
        for i in range(3):
            r = a.get("/g%d" % i)
            assert r.status == 200 and r.header("X-Be") == good.addr, r.status
        # a POST is not idempotent: never sent twice, the error is answered
        r = a.request("POST", "/p", body=b"data")
        assert r.status in (502, 503), r.status
        assert good.count("/p") == 0
        st = admin_stats(port)
        assert st["b1"]["retry_other"] == 3 and st["b0"]["fail"] >= 4
        assert st["b1"]["req"] == 3
        assert a.stderr().count("retrying on b1") == 3
    finally:
        good.stop()


def test_passive_health_marks_a_failing_server_sick(start_accel, tmp_path):
    good = Origin()
    dead = free_port()
    try:
        text = pool_vcl([dead, good.port], "round_robin")
        port = free_port()
        a = start_pool(start_accel, tmp_path, text, "-s", "none", "-T", "127.0.0.1:%d" % port,
                       "-p", "backend_fail_threshold=2", "-p", "backend_sick_time=30")
        with a.conn() as c:
            for i in range(8):
                assert served_by(a, "/p%d" % i, c) == good.addr
        a.wait_stderr(r"backend b0 \(\S+\): sick for 30s after 2 consecutive failures")
        st = admin_stats(port)
        assert st["b0"]["healthy"] is False and st["b0"]["sick_for"] > 0
        # sick: no longer tried, so no more retries are needed
        retries = st["b1"]["retry_other"]
        with a.conn() as c:
            for i in range(4):
                assert served_by(a, "/q%d" % i, c) == good.addr
        assert admin_stats(port)["b1"]["retry_other"] == retries
    finally:
        good.stop()


def test_max_connections_queues_then_answers_503(start_accel, tmp_path):
    o = Origin()
    try:
        text = pool_vcl([o], "round_robin", extra_be=".max_connections = 1; ")
        port = free_port()
        a = start_pool(start_accel, tmp_path, text, "-s", "none", "-T", "127.0.0.1:%d" % port,
                       "-p", "backend_queue_timeout=3")
        o.on("/short", delay=0.3)
        gate = threading.Event()
        o.on("/long", gate=gate)
        out = [None] * 3

        def get(i, path):
            out[i] = request(a.port, "GET", path, timeout=20)
        # three at once on one connection slot: they queue and all succeed
        ts = [threading.Thread(target=get, args=(i, "/short")) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
        assert [r.status for r in out] == [200, 200, 200]
        assert admin_stats(port)["b0"]["queued"] >= 2
        # a request holding the only slot longer than the queue wait: 503
        t = threading.Thread(target=get, args=(0, "/long"))
        t.start()
        o.wait_head("/long")
        with a.conn(timeout=20) as c:
            r = c.request("GET", "/other")
            assert r.status == 503 and b"Backend busy" in r.body, (r.status, r.body)
            gate.set()
            t.join(20)
            assert out[0].status == 200
            # the client's connection stays usable after the 503
            assert c.request("GET", "/after").status == 200
        st = admin_stats(port)["b0"]
        assert st["queue_full"] == 1 and st["busy"] == 0
        assert o.count("/other") == 0
    finally:
        o.stop()


def test_whole_pool_sick_serves_stale_else_503(start_accel, tmp_path):
    o = Origin()
    try:
        text = ("import directors;\n" + PROBE + be_decl("b0", o.port, ".probe = hp; ") +
                "sub vcl_init {\n    new pool = directors.round_robin();\n"
                "    pool.add_backend(b0);\n}\n"
                "sub vcl_recv {\n    set req.backend_hint = pool.backend();\n}\n")
        a = start_pool(start_accel, tmp_path, text, "-p", "default_grace=0")
        wait_until(lambda: o.count("/health") >= 1, 10, "a probe")
        wait_until(lambda: a.get("/warmup").status == 200, 10, "the pool to be healthy")
        o.on("/page", body=b"old copy",
             headers={"Cache-Control": "max-age=1, stale-if-error=60", "ETag": '"v1"'})
        assert a.get("/page").body == b"old copy"
        o.on("/health", status=500)
        a.wait_stderr(r"backend b0 \(\S+\): sick \(probe", timeout=10)
        time.sleep(1.2)                  # /page is stale now
        n = o.count("/page")
        r = a.get("/page")
        assert r.status == 200 and r.body == b"old copy", (r.status, r.body)
        r = a.get("/never-cached")
        assert r.status == 503 and b"No healthy backend" in r.body, (r.status, r.body)
        assert o.count("/page") == n and o.count("/never-cached") == 0
    finally:
        o.stop()


def test_backend_timeouts_apply_per_backend(start_accel, tmp_path):
    o = Origin()
    try:
        text = (be_decl("fast", o.port, ".first_byte_timeout = 0.3s; ") +
                be_decl("patient", o.port) + """
sub vcl_recv {
    if (req.url ~ "^/p") {
        set req.backend_hint = patient;
    } else {
        set req.backend_hint = fast;
    }
    return (pass);
}
sub vcl_backend_fetch {
    if (bereq.url ~ "^/short") {
        set bereq.first_byte_timeout = 0.2s;
    }
}
""")
        a = start_pool(start_accel, tmp_path, text, "-s", "none",
                       "-p", "first_byte_timeout=5", "-p", "backend_fail_threshold=0")
        o.on("/slow", delay=1.5)
        o.on("/p/slow", delay=0.6)
        o.on("/short/x", delay=0.6)
        assert a.get("/slow").status in (503, 504)        # .first_byte_timeout = 0.3s
        assert a.get("/p/slow").status == 200             # the -p parameter: 5 s
        assert a.get("/short/x").status in (503, 504)    # bereq.first_byte_timeout
    finally:
        o.stop()


def test_passive_503s_make_a_server_sick_for_a_while(start_accel, tmp_path):
    o0, o1 = Origin(), Origin()
    try:
        a = start_pool(start_accel, tmp_path, pool_vcl([o0, o1], "round_robin"), "-s", "none",
                       "-p", "backend_fail_threshold=2", "-p", "backend_sick_time=1")
        o0.on("/x", status=503)
        with a.conn() as c:
            got = [c.request("GET", "/x").status for _ in range(4)]
        assert sorted(got) == [200, 200, 503, 503], got
        a.wait_stderr(r"backend b0 \(\S+\): sick for 1s after 2 consecutive failures")
        with a.conn() as c:
            assert [served_by(a, "/x", c) for _ in range(4)] == [o1.addr] * 4
        o0.on("/x", status=200)
        time.sleep(1.2)                  # the sick period is over: b0 is tried again
        with a.conn() as c:
            seen = {served_by(a, "/x", c) for _ in range(4)}
        assert seen == {o0.addr, o1.addr}
        a.wait_stderr(r"backend b0 \(\S+\): healthy again")
    finally:
        o0.stop()
        o1.stop()


def test_reload_moves_to_new_servers_and_closes_old_idle_connections(start_accel, tmp_path):
    old, new = Origin(), Origin()
    try:
        a = start_pool(start_accel, tmp_path, pool_vcl([old], "round_robin"), "-s", "none")
        with a.conn() as c:
            for i in range(4):
                assert served_by(a, "/a%d" % i, c) == old.addr
        assert old.connections >= 1     # kept alive in accel's idle pool
        write_vcl(tmp_path, pool_vcl([new], "round_robin", names=["fresh"]), backends=[])
        os.kill(a.pid, signal.SIGHUP)
        wait_until(lambda: re.search(r"reload of \S+ done", a.stderr()), 10, "reload")
        # each worker closes its idle connections to the old servers
        old.wait_for(lambda: old.closed >= old.connections, 10, "old connections closed")
        with a.conn() as c:
            for i in range(4):
                assert served_by(a, "/b%d" % i, c) == new.addr
        assert old.count("/b0") == 0
    finally:
        old.stop()
        new.stop()


def _blackhole():
    """A listening socket whose accept queue is full: connects to it hang
    (SYNs dropped) until the connector's timeout.  Returns (port, sockets)."""
    import socket
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fill = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(ls.getsockname())
        fill.append(s)
    time.sleep(0.2)
    return ls.getsockname()[1], [ls] + fill


def test_connect_timeout_moves_to_another_server_even_onto_a_pooled_connection(
        start_accel, tmp_path):
    good = Origin()
    port, socks = _blackhole()
    try:
        text = pool_vcl([port, good.port], "fallback", extra_be=".connect_timeout = 0.3s; ")
        a = start_pool(start_accel, tmp_path, text, "-s", "none", "-p", "backend_fail_threshold=0",
                       workers=1)
        with a.conn(timeout=20) as c:
            # the first one connects afresh to b1, the next ones reuse that
            # connection after b0's connect timed out
            for i in range(3):
                r = c.request("GET", "/t%d" % i)
                assert r.status == 200 and r.header("X-Be") == good.addr, (i, r.status)
        assert good.connections == 1
        assert a.stderr().count("connect timed out; retrying on b1") == 3
    finally:
        good.stop()
        for s in socks:
            s.close()
