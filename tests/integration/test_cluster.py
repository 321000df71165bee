"""Issue 21: a cluster of accel nodes coordinated through Redis.

Each test starts its own redis-server (loopback, a free port, no
persistence, in a temporary directory, stopped by PID) and three accel nodes
with -p cluster_bus=redis://... and an admin listener each (GET /cluster).
Heartbeats are 0.2 s so membership changes show within a second or two;
every wait polls a condition with a generous deadline.
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from client import free_port, request, wait_until

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
HOST = "test.example"

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS),
                                reason="redis-server is not installed (make deps)")


class Redis:
    """A redis-server of our own: start, kill -9, restart on the same port."""

    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        wait_until(lambda: self.cli("PING") == "PONG", 10, "redis-server to answer PING")

    def cli(self, *args):
        try:
            out = subprocess.run(["redis-cli", "-p", str(self.port)] + list(args),
                                 capture_output=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.decode().strip()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port


@pytest.fixture
def redis(tmp_path):
    d = tmp_path / "redis"
    d.mkdir()
    r = Redis(str(d))
    yield r
    r.kill()


class Cluster:
    def __init__(self, start_accel, redis, origin, name):
        self.start_accel = start_accel
        self.redis = redis
        self.origin = origin
        self.name = name
        self.nodes = []

    def add(self, *extra, disk=None, check_exit=True, vcl=None):
        admin = free_port()
        args = ["-p", "cluster_bus=" + self.redis.url, "-p", "cluster_name=" + self.name,
                "-p", "cluster_heartbeat=0.2", "-T", "127.0.0.1:%d" % admin]
        if disk is not None:
            args += ["-s", "disk=%s" % disk]
        if vcl is not None:
            args += ["-f", vcl]
        a = self.start_accel(*(args + list(extra)), origins=[] if vcl else [self.origin],
                             check_exit=check_exit)
        a.admin = admin
        self.nodes.append(a)
        return a


def info(node):
    r = request(node.admin, "GET", "/cluster")
    assert r.status == 200, r
    return json.loads(r.body)


def counters(node):
    return json.loads(request(node.admin, "GET", "/stats").body)["counters"]


def store_stats(node):
    return json.loads(request(node.admin, "GET", "/stats").body)["store"]


def wait_ring(nodes, n, timeout=20):
    def ok():
        for x in nodes:
            i = info(x)
            if i["bus"]["state"] != "up" or len(i["ring"]) != n:
                return False
        return True
    wait_until(ok, timeout, "%d members in every node's ring" % n, step=0.05)


def get(node, path, **kw):
    return request(node.port, "GET", path, host=HOST, **kw)


def last_xcache(r):
    vals = [v for k, v in r.headers if k.lower() == "x-cache"]
    return vals[-1] if vals else None


@pytest.fixture
def cluster(start_accel, redis, origin, request):
    return Cluster(start_accel, redis, origin, "t%d" % (abs(hash(request.node.name)) % 100000))


def three(cluster, *extra, **kw):
    nodes = [cluster.add(*extra, **kw) for _ in range(3)]
    wait_ring(nodes, 3)
    return nodes


def test_one_origin_fetch_serves_every_node(cluster, origin):
    origin.on("/obj", body=b"shared", headers={"Cache-Control": "max-age=60"})
    nodes = three(cluster)
    for _ in range(2):
        for n in nodes:
            r = get(n, "/obj")
            assert (r.status, r.body) == (200, b"shared"), r
            # the cluster's own fields never reach a client ...
            assert r.header("X-Accel-Peer-Pos") is None and r.header("X-Accel-Peer") is None
    assert origin.count("/obj") == 1, "every node fetched from the origin itself"
    # ... nor the origin, which sees the client's address first
    req = origin.requests_for("/obj")[0]
    assert req.header("X-Accel-Peer") is None, req.headers
    assert req.header("X-Forwarded-For").startswith("127.0.0.1"), req.headers
    fetched = sum(counters(n)["cluster_peer_fetch"] for n in nodes)
    served = sum(counters(n)["cluster_peer_request"] for n in nodes)
    assert fetched >= 2 and served == fetched, (fetched, served)
    # every member shows the others live, with their applied position
    def members_ok(n):      # acks are read just after the membership: poll
        ms = info(n)["members"]
        return (sorted(m["state"] for m in ms) == ["live", "live", "self"] and
                all("applied" in m for m in ms))
    for n in nodes:
        wait_until(lambda: members_ok(n), 10, "members with state and position on %d" % n.port)
    # the owner is the same for everybody, and says so
    owners = {json.loads(request(n.admin, "GET", "/cluster/owner?url=/obj&host=" + HOST).body)
              ["owner"] for n in nodes}
    assert len(owners) == 1, owners

    # concurrent misses on all three nodes at once: still one origin fetch
    origin.on("/slow", body=b"slowly", delay=0.5, headers={"Cache-Control": "max-age=60"})
    out = []

    def client(n):
        out.append(get(n, "/slow"))
    ts = [threading.Thread(target=client, args=(n,)) for n in nodes for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert [r.status for r in out] == [200] * 9 and {r.body for r in out} == {b"slowly"}
    assert origin.count("/slow") == 1, "coalescing did not work across nodes"


def warm(nodes, paths):
    for p in paths:
        for n in nodes:
            assert get(n, p).status == 200


def purge_answer(r):
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert doc["cluster"]["members"] == 3 and doc["cluster"]["applied"] == 3, doc
    return doc


def test_purge_tag_purge_and_ban_on_one_node_reach_all(cluster, origin):
    # non-owners keep their copies long here, so every node holds each object
    nodes = three(cluster, "-p", "cluster_local_ttl=300")
    a, b, c = nodes
    cc = {"Cache-Control": "max-age=300"}
    for p in ("/p", "/t1", "/t2", "/b/1", "/s", "/adm"):
        origin.on(p, body=b"v1 " + p.encode(), headers=dict(cc, **{"Surrogate-Key": "grp"}
                                                             if p.startswith("/t") else cc))
    warm(nodes, ("/p", "/t1", "/t2", "/b/1", "/s", "/adm"))
    for p in ("/p", "/t1", "/t2", "/b/1", "/s", "/adm"):
        origin.on(p, body=b"v2 " + p.encode(), headers=cc)
        for n in nodes:
            assert get(n, p).body == b"v1 " + p.encode(), "not cached on every node"

    doc = purge_answer(request(a.port, "PURGE", "/p", host=HOST))
    assert doc["mode"] == "hard"
    purge_answer(request(b.port, "PURGE", "/", host=HOST, headers={"Surrogate-Key": "grp"}))
    r = request(c.port, "BAN", "/", host=HOST, headers={"Ban": "req.url ~ ^/b/"})
    purge_answer(r)
    purge_answer(request(a.admin, "POST", "/purge?url=/adm&host=" + HOST))
    doc = purge_answer(request(b.port, "PURGE", "/s", host=HOST, headers={"Purge-Mode": "soft"}))
    assert doc["mode"] == "soft"
    for p in ("/p", "/t1", "/t2", "/b/1", "/adm"):
        for n in nodes:
            r = get(n, p)
            assert r.body == b"v2 " + p.encode(), "%s still old on %s" % (p, n.port)
    # soft: stale at once, refreshed in the background; new content soon everywhere
    for n in nodes:
        wait_until(lambda: get(n, "/s").body == b"v2 /s", 10, "soft-purged /s refreshed")
    assert any(counters(n)["cluster_peer_request"] for n in nodes)
    bans = [json.loads(request(n.admin, "GET", "/bans").body) for n in nodes]
    assert all(any(x["ban"] == 'req.url ~ "^/b/"' for x in bl) for bl in bans), bans


def test_killed_node_replays_missed_purges_before_serving_from_disk(cluster, origin, tmp_path):
    disk = tmp_path / "cdisk"
    disk.mkdir()
    cc = {"Cache-Control": "max-age=300"}
    origin.on("/k1", body=b"k1 old", headers=cc)
    origin.on("/k2", body=b"k2 kept", headers=cc)
    a = cluster.add("-p", "cluster_local_ttl=300")
    b = cluster.add("-p", "cluster_local_ttl=300")
    c = cluster.add("-p", "cluster_local_ttl=300", disk=str(disk), check_exit=False)
    wait_ring([a, b, c], 3)
    wait_until(lambda: info(c)["replayed"], 10, "node c caught up")
    for p in ("/k1", "/k2"):
        assert get(c, p).status == 200
    wait_until(lambda: store_stats(c)["disk_objects"] >= 2, 10, "objects written to c's disk")
    c.signal(signal.SIGKILL)
    c.wait_exit(10)

    origin.on("/k1", body=b"k1 new", headers=cc)
    r = request(a.port, "PURGE", "/k1", host=HOST)
    assert r.status == 200, r
    # the purge is in the stream; c missed it
    assert int(cluster.redis.cli("XLEN", "accel:{%s}:inval" % cluster.name)) >= 1

    c2 = cluster.add("-p", "cluster_local_ttl=300", disk=str(disk))
    wait_until(lambda: info(c2)["replayed"], 15, "restarted node caught up")
    assert info(c2)["counters"]["replayed"] >= 1
    r = get(c2, "/k1")
    assert r.body == b"k1 new", "a purged object came back from the disk tier: %r" % r.body
    r = get(c2, "/k2")
    assert (r.body, last_xcache(r)) == (b"k2 kept", "HIT"), (r.body, r.headers)
    assert origin.count("/k2") == 1, "the unpurged object was not served from disk"


def test_node_gone_past_the_retention_drops_its_cache_on_return(cluster, origin, tmp_path):
    """Entries a member never applied are trimmed once it has been away for
    cluster_retention; when it comes back it cannot replay them, so it
    drops its whole cache instead of serving something purged."""
    disk = tmp_path / "rdisk"
    disk.mkdir()
    cc = {"Cache-Control": "max-age=300"}
    origin.on("/g1", body=b"g1 old", headers=cc)
    origin.on("/g2", body=b"g2", headers=cc)
    args = ("-p", "cluster_local_ttl=300", "-p", "cluster_retention=1")
    a = cluster.add(*args)
    b = cluster.add(*args)
    c = cluster.add(*args, disk=str(disk), check_exit=False)
    wait_ring([a, b, c], 3)
    wait_until(lambda: info(c)["replayed"], 10, "node c caught up")
    for p in ("/g1", "/g2"):
        assert get(c, p).status == 200
    wait_until(lambda: store_stats(c)["disk_objects"] >= 2, 10, "objects written to c's disk")
    c.signal(signal.SIGKILL)
    c.wait_exit(10)
    origin.on("/g1", body=b"g1 new", headers=cc)
    assert request(a.port, "PURGE", "/g1", host=HOST).status == 200
    mark = "accel:{%s}:trimmed" % cluster.name
    wait_until(lambda: cluster.redis.cli("GET", mark), 30, "the leader trimmed past node c")

    # the members that applied everything keep their caches over a reconnect
    wait_until(lambda: cluster.redis.cli("XLEN", "accel:{%s}:inval" % cluster.name) == "0", 30,
               "the idle stream trimmed by the retention")
    cluster.redis.cli("CLIENT", "KILL", "TYPE", "normal")
    wait_until(lambda: all(info(n)["counters"]["reconnects"] >= 2 for n in (a, b)), 15,
               "a and b reconnected")
    wait_ring([a, b], 2)
    assert all(info(n)["counters"]["cache_dropped"] == 0 for n in (a, b))
    c2 = cluster.add(*args, disk=str(disk))
    wait_until(lambda: info(c2)["replayed"], 15, "restarted node caught up")
    assert info(c2)["counters"]["cache_dropped"] >= 1
    assert get(c2, "/g1").body == b"g1 new"
    n = origin.count("/g2")
    r = get(c2, "/g2")
    assert r.body == b"g2"
    assert origin.count("/g2") + counters(c2)["cluster_peer_fetch"] > n, \
        "the disk copy was served although the node could not know what it missed"


def test_redis_killed_and_restarted_mid_run(cluster, origin, redis):
    cc = {"Cache-Control": "max-age=300"}
    origin.on("/r", body=b"r old", headers=cc)
    nodes = three(cluster, "-p", "cluster_local_ttl=300")
    a = nodes[0]
    warm(nodes, ("/r",))
    redis.kill()
    wait_until(lambda: all(info(n)["bus"]["state"] != "up" for n in nodes), 15, "bus down seen")
    for n in nodes:                 # still serving from cache
        r = get(n, "/r")
        assert (r.status, r.body) == (200, b"r old")
    origin.on("/r", body=b"r new", headers=cc)
    t0 = time.monotonic()
    r = request(a.port, "PURGE", "/r", host=HOST)
    assert r.status == 200 and time.monotonic() - t0 < 5, r
    doc = json.loads(r.body)
    assert doc["cluster"]["bus"] == "down" and doc["cluster"]["queued"], doc
    assert info(a)["bus"]["queued"] >= 1
    assert info(a)["counters"]["bus_errors"] >= 1

    redis.start()                   # same port, empty: a new data set
    wait_ring(nodes, 3, timeout=30)
    wait_until(lambda: info(a)["bus"]["queued"] == 0, 15, "queued purge published")
    for n in nodes:
        wait_until(lambda: get(n, "/r").body == b"r new", 15, "purge applied after the outage")


def test_hung_redis_is_a_bus_down_after_a_deadline(cluster, origin, redis):
    """A Redis that stops answering (SIGSTOP) gives no error: every command
    has a deadline, then the bus counts as down; nothing a client does
    waits for it longer than cluster_purge_wait."""
    cc = {"Cache-Control": "max-age=300"}
    origin.on("/h", body=b"h", headers=cc)
    nodes = three(cluster)
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = request(nodes[0].port, "PURGE", "/h", host=HOST)
        assert r.status == 200 and time.monotonic() - t0 < 5, r
        for n in nodes:
            assert get(n, "/h").status == 200
        wait_until(lambda: all(info(n)["bus"]["state"] != "up" for n in nodes), 20,
                   "the hung bus declared down")
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    wait_ring(nodes, 3, timeout=30)
    wait_until(lambda: info(nodes[0])["bus"]["queued"] == 0, 15, "the purge published")


def test_node_joins_and_leaves_under_load_without_errors(cluster, origin):
    cc = {"Cache-Control": "max-age=300"}
    for i in range(40):
        origin.on("/l/%d" % i, body=b"L%d" % i, headers=cc)
    a = cluster.add()
    b = cluster.add()
    wait_ring([a, b], 2)
    errors, done = [], threading.Event()
    count = [0]

    def load(node):
        i = 0
        while not done.is_set():
            p = "/l/%d" % (i % 40)
            try:
                r = get(node, p, timeout=10)
                if r.status != 200 or r.body != b"L%d" % (i % 40):
                    errors.append((p, r.status, r.body[:40]))
            except Exception as e:  # any client-visible failure counts
                errors.append((p, repr(e)))
            count[0] += 1
            i += 1
    ts = [threading.Thread(target=load, args=(n,)) for n in (a, b, a, b)]
    for t in ts:
        t.start()
    try:
        c = cluster.add()
        wait_ring([a, b, c], 3)
        wait_until(lambda: count[0] > 200, 30, "load running")
        c.signal(signal.SIGTERM)
        assert c.wait_exit(20) == 0
        wait_ring([a, b], 2)
        n0 = count[0]
        wait_until(lambda: count[0] > n0 + 100, 30, "load after the leave")
    finally:
        done.set()
        for t in ts:
            t.join(30)
    assert not errors, errors[:5]


def test_dead_peer_keys_go_to_the_origin_then_move(cluster, origin):
    cc = {"Cache-Control": "max-age=300"}
    a = cluster.add("-p", "cluster_local_ttl=0")
    b = cluster.add("-p", "cluster_local_ttl=0")
    c = cluster.add("-p", "cluster_local_ttl=0", check_exit=False)      # killed below
    wait_ring([a, b, c], 3)
    # a path that c owns
    path = None
    for i in range(200):
        p = "/d/%d" % i
        owner = json.loads(request(a.admin, "GET", "/cluster/owner?url=%s&host=%s"
                                   % (p, HOST)).body)["owner"]
        if owner == "127.0.0.1:%d" % c.port:
            path = p
            break
    assert path is not None
    origin.on(path, body=b"dead peer", headers=cc)
    assert get(a, path).body == b"dead peer"
    c.signal(signal.SIGKILL)
    c.wait_exit(10)
    t0 = time.monotonic()
    r = get(a, path)                # c refuses: a goes to the origin at once
    assert (r.status, r.body) == (200, b"dead peer")
    assert time.monotonic() - t0 < 5
    assert counters(a)["cluster_peer_fallback"] >= 1
    wait_ring([a, b], 2)
    r = get(b, path)
    assert (r.status, r.body) == (200, b"dead peer")


def test_slow_peer_gets_a_deadline_then_the_origin(cluster, origin):
    """A member that stops answering (SIGSTOP: its kernel still accepts
    connections) costs a request cluster_peer_timeout, then the origin
    answers; once its heartbeat is gone its keys move."""
    cc = {"Cache-Control": "max-age=300"}
    a = cluster.add("-p", "cluster_peer_timeout=0.5", "-p", "cluster_local_ttl=0")
    b = cluster.add("-p", "cluster_peer_timeout=0.5", "-p", "cluster_local_ttl=0")
    c = cluster.add("-p", "cluster_peer_timeout=0.5", "-p", "cluster_local_ttl=0")
    wait_ring([a, b, c], 3)
    path = owned_by(a, c, "/slowpeer/")
    origin.on(path, body=b"via origin", headers=cc)
    os.kill(c.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = get(a, path)
        took = time.monotonic() - t0
        assert (r.status, r.body) == (200, b"via origin"), r
        assert took < 5, took       # the deadline, not the 60 s first-byte timeout
        assert counters(a)["cluster_peer_fallback"] >= 1
        wait_until(lambda: len(info(a)["ring"]) == 2, 15, "the stopped member leaves the ring")
        t0 = time.monotonic()
        assert get(a, owned_by(a, b, "/after/")).status == 200
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(c.pid, signal.SIGCONT)
    wait_ring([a, b, c], 3)


def owned_by(via, node, prefix):
    """A path whose cache key `node` owns, as `via` sees the ring."""
    me = "127.0.0.1:%d" % node.port
    for i in range(500):
        p = "%s%d" % (prefix, i)
        doc = json.loads(request(via.admin, "GET", "/cluster/owner?url=%s&host=%s"
                                 % (p, HOST)).body)
        if doc["owner"] == me:
            return p
    raise AssertionError("no path owned by %s" % me)


POLICY = """
sub vcl_recv {
    if (req.method == "PURGE") { return (purge); }
    if (req.method == "BAN") {
        ban("req.url ~ " + req.http.x-ban-prefix);
        return (synth(200, "Banned"));
    }
}
"""


def test_policy_purge_ban_and_unsafe_methods_reach_every_node(cluster, origin, tmp_path):
    from policy_common import write_vcl
    vcl = write_vcl(tmp_path, POLICY, origin)
    nodes = [cluster.add("-p", "cluster_local_ttl=300", vcl=vcl) for _ in range(3)]
    wait_ring(nodes, 3)
    a, b, c = nodes
    cc = {"Cache-Control": "max-age=300"}
    paths = ("/pp", "/pb/1", "/pu")
    for p in paths:
        origin.on(p, body=b"old", headers=cc)
    warm(nodes, paths)
    for p in paths:
        origin.on(p, body=b"new", headers=cc)
    assert request(a.port, "PURGE", "/pp", host=HOST).status == 200     # vcl_purge's answer
    assert request(b.port, "BAN", "/", host=HOST, headers={"X-Ban-Prefix": "^/pb/"}).status == 200
    # RFC 9111 4.4: a POST answered 2xx invalidates the target everywhere
    origin.on("/pu", body=b"new", headers=cc)
    assert request(c.port, "POST", "/pu", host=HOST, body=b"x").status == 200
    for p in paths:
        for n in nodes:
            wait_until(lambda: get(n, p).body == b"new", 10, "%s refreshed on %d" % (p, n.port))
    pubs = sum(info(n)["counters"]["published"] for n in nodes)
    assert pubs >= 3, pubs


def test_bad_cluster_parameters_are_refused(start_accel, origin, tmp_path):
    from conftest import ACCEL_BIN
    for bad, why in (("cluster_bus=http://x", "cluster_bus"),
                     ("cluster_bus=redis://127.0.0.1:99999", "cluster_bus")):
        out = subprocess.run([ACCEL_BIN, "-a", "127.0.0.1:%d" % free_port(), "-b", origin.addr,
                              "-p", bad], capture_output=True, timeout=10)
        assert out.returncode != 0 and why.encode() in out.stderr, out.stderr
    out = subprocess.run([ACCEL_BIN, "-a", "127.0.0.1:%d" % free_port(), "-b", origin.addr,
                          "-s", "none", "-p", "cluster_bus=redis://127.0.0.1:1"],
                         capture_output=True, timeout=10)
    assert out.returncode != 0 and b"needs a cache" in out.stderr, out.stderr
