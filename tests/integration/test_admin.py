"""Issue 6 (part): the admin listener (-T, -S): purge, ban, list bans,
stats, with JSON answers, guarded by a shared secret."""

import json

from client import free_port, request

SECRET = "s3cret-for-tests"


def start(start_accel, origin, tmp_path, secret=True):
    port = free_port()
    args = ["-T", "127.0.0.1:%d" % port]
    if secret:
        f = tmp_path / "secret"
        f.write_text(SECRET + "\n")
        args += ["-S", str(f)]
    a = start_accel(*args, origins=[origin])
    return a, port


def admin(port, method, target, secret=SECRET, headers=None):
    h = dict(headers or {})
    if secret is not None:
        h["X-Admin-Secret"] = secret
    r = request(port, method, target, headers=h)
    return r, json.loads(r.body.decode())


def cached(origin, accel, path, headers=None):
    h = {"Cache-Control": "max-age=60"}
    h.update(headers or {})
    origin.on(path, body=path.encode(), headers=h)
    accel.get(path)
    assert accel.get(path).header("X-Cache") == "HIT"


def test_admin_requires_the_secret(origin, start_accel, tmp_path):
    a, port = start(start_accel, origin, tmp_path)
    cached(origin, a, "/x")
    for secret in (None, "wrong"):
        r, j = admin(port, "POST", "/purge?url=/x&host=127.0.0.1", secret=secret)
        assert r.status == 401 and "error" in j
    assert a.get("/x").header("X-Cache") == "HIT"


def test_admin_purge_by_url_and_tag(origin, start_accel, tmp_path):
    a, port = start(start_accel, origin, tmp_path)
    cached(origin, a, "/u")
    cached(origin, a, "/t1", {"Surrogate-Key": "group"})
    cached(origin, a, "/t2", {"Surrogate-Key": "group other"})
    # the test client sends Host: test.example; the key is host + URL
    r, j = admin(port, "POST", "/purge?url=/u&host=test.example")
    assert r.status == 200 and j == {"purged": 1, "mode": "hard"}, (r.status, j)
    assert r.header("Content-Type") == "application/json"
    assert a.get("/u").header("X-Cache") == "MISS"
    r, j = admin(port, "POST", "/purge?tag=group&soft=1")
    assert j == {"purged": 2, "mode": "soft"}
    assert a.get("/t1").header("X-Cache") == "STALE"
    r, j = admin(port, "POST", "/purge")
    assert r.status == 400


def test_admin_ban_and_list(origin, start_accel, tmp_path):
    a, port = start(start_accel, origin, tmp_path)
    cached(origin, a, "/img/a.png", {"Content-Type": "image/png"})
    cached(origin, a, "/page", {"Content-Type": "text/html"})
    r, j = admin(port, "POST", "/ban?expr=obj.http.content-type%20~%20%22%5Eimage%2F%22")
    assert r.status == 200 and j == {"ban": 'obj.http.content-type ~ "^image/"'}
    r, j = admin(port, "POST", "/ban", headers={"Ban": 'req.url == "/nothing"'})
    assert r.status == 200
    r, j = admin(port, "POST", "/ban?expr=bogus")
    assert r.status == 400 and "col" in j["error"]
    r, bans = admin(port, "GET", "/bans")
    assert [b["ban"] for b in bans] == ['req.url == "/nothing"', 'obj.http.content-type ~ "^image/"']
    assert a.get("/img/a.png").header("X-Cache") == "MISS"
    assert a.get("/page").header("X-Cache") == "HIT"


def test_admin_stats_and_unknown_route(origin, start_accel, tmp_path):
    a, port = start(start_accel, origin, tmp_path, secret=False)
    cached(origin, a, "/s")
    r, j = admin(port, "GET", "/stats", secret=None)
    assert r.status == 200 and j["store"]["mem_objects"] >= 1 and j["store"]["mem_hits"] >= 1
    # the workers' counters, summed over workers
    c = j["counters"]
    assert c["client_req"] >= 2 and c["cache_miss"] >= 1 and c["cache_hit"] >= 1
    assert c["backend_req"] >= 1 and c["resp_502"] == 0
    for _ in range(3):
        a.get("/s")
    r, j2 = admin(port, "GET", "/stats", secret=None)
    assert j2["counters"]["cache_hit"] >= c["cache_hit"] + 3
    r, j = admin(port, "GET", "/nope", secret=None)
    assert r.status == 404 and "routes" in j
    # the admin port never proxies
    assert origin.count("/nope") == 0
