"""Issue 6 (first part): PURGE over HTTP without a policy -- by URL (every
variant), by surrogate key, hard and soft -- and surrogate keys kept out of
client responses."""

import json

from client import wait_until


def xc(r):
    return r.header("X-Cache")


def prime(origin, accel, path, body=b"cached", headers=None, req_headers=None):
    h = {"Cache-Control": "max-age=60"}
    h.update(headers or {})
    origin.on(path, body=body, headers=h)
    accel.get(path, req_headers or {})
    r = accel.get(path, req_headers or {})
    assert (r.body, xc(r)) == (body, "HIT"), r.headers
    return r


def purge(accel, path, headers=None):
    r = accel.request("PURGE", path, headers=headers or {})
    return r, json.loads(r.body.decode()) if r.body.startswith(b"{") else None


def test_purge_url_drops_the_object(origin, accel):
    prime(origin, accel, "/p/a")
    r, j = purge(accel, "/p/a")
    assert r.status == 200 and j == {"purged": 1, "mode": "hard"}
    r = accel.get("/p/a")
    assert xc(r) == "MISS"
    assert origin.count("/p/a") == 2
    assert not any(q.method == "PURGE" for q in origin.requests), "PURGE reached the origin"


def test_purge_of_nothing_is_404(origin, accel):
    r, j = purge(accel, "/never-cached")
    assert r.status == 404 and j == {"purged": 0, "mode": "hard"}


def test_purge_url_drops_every_variant(origin, accel):
    hdrs = {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}
    origin.on("/v", body=b"variant", headers=hdrs)
    for lang in ("en", "fr", "de"):
        accel.get("/v", {"Accept-Language": lang})
        assert xc(accel.get("/v", {"Accept-Language": lang})) == "HIT"
    r, j = purge(accel, "/v")
    assert r.status == 200 and j["purged"] == 3
    for lang in ("en", "fr", "de"):
        assert xc(accel.get("/v", {"Accept-Language": lang})) == "MISS"


def test_purge_by_surrogate_key(origin, accel):
    prime(origin, accel, "/t/1", headers={"Surrogate-Key": "article-1 author-9"})
    prime(origin, accel, "/t/2", headers={"Surrogate-Key": "article-2 author-9"})
    prime(origin, accel, "/t/3", headers={"Surrogate-Key": "article-3"})
    r, j = purge(accel, "/", {"Surrogate-Key": "author-9"})
    assert r.status == 200 and j["purged"] == 2
    assert xc(accel.get("/t/1")) == "MISS"
    assert xc(accel.get("/t/2")) == "MISS"
    assert xc(accel.get("/t/3")) == "HIT"


def test_soft_purge_serves_stale_while_one_refresh_runs(origin, accel):
    prime(origin, accel, "/s", body=b"old")
    origin.on("/s", body=b"new", delay=0.5, headers={"Cache-Control": "max-age=60"})
    r, j = purge(accel, "/s", {"Purge-Mode": "soft"})
    assert r.status == 200 and j == {"purged": 1, "mode": "soft"}
    replies = accel.get_many("/s", clients=10)
    assert all(x.status == 200 for x in replies)
    assert all(x.body == b"old" and xc(x) == "STALE" for x in replies)
    origin.wait_count("/s", 2)                 # exactly one refresh ...
    wait_until(lambda: accel.get("/s").body == b"new", timeout=5, what="the refreshed object")
    assert origin.count("/s") == 2             # ... for all of them


def test_surrogate_keys_are_not_sent_to_clients(origin, accel):
    r = prime(origin, accel, "/k", headers={"Surrogate-Key": "a b", "xkey": "c",
                                             "Cache-Tag": "d"})
    for name in ("Surrogate-Key", "xkey", "Cache-Tag"):
        assert r.header(name) is None, name
    origin.on("/k-pass", body=b"x", headers={"Cache-Control": "no-store",
                                               "Surrogate-Key": "a"})
    assert accel.get("/k-pass").header("Surrogate-Key") is None


def test_ban_by_url_and_by_object_header(origin, accel):
    prime(origin, accel, "/blog/1", headers={"Content-Type": "text/html"})
    prime(origin, accel, "/blog/logo.png", headers={"Content-Type": "image/png"})
    prime(origin, accel, "/shop/logo.png", headers={"Content-Type": "image/png"})
    r = accel.request("BAN", "/", headers={
        "Ban": 'obj.http.content-type ~ "^image/" && req.url ~ "^/blog/"'})
    assert r.status == 200, r.body
    assert json.loads(r.body.decode())["ban"] == \
        'obj.http.content-type ~ "^image/" && req.url ~ "^/blog/"'
    assert xc(accel.get("/blog/logo.png")) == "MISS"
    assert xc(accel.get("/blog/1")) == "HIT"
    assert xc(accel.get("/shop/logo.png")) == "HIT"
    # a ban never applies to objects fetched after it
    assert xc(accel.get("/blog/logo.png")) == "HIT"


def test_bad_ban_is_400_with_the_column(origin, accel):
    prime(origin, accel, "/safe")
    r = accel.request("BAN", "/", headers={"Ban": "req.url =~ x"})
    assert r.status == 400
    assert "col " in json.loads(r.body.decode())["error"]
    r = accel.request("BAN", "/")
    assert r.status == 400
    assert xc(accel.get("/safe")) == "HIT"


def test_purges_and_bans_survive_a_kill_9(origin, start_accel, tmp_path):
    """Invalidations are durable before the answer: after kill -9 and a
    restart on the same directory, purged and banned objects are not served."""
    disk = tmp_path / "cache"
    disk.mkdir()
    for p in ("/d/purged", "/d/banned", "/d/kept"):
        origin.on(p, body=p.encode(), headers={"Cache-Control": "max-age=300"})
    a = start_accel("-s", "disk=%s" % disk, origins=[origin], check_exit=False)
    for p in ("/d/purged", "/d/banned", "/d/kept"):
        a.get(p)
    wait_until(lambda: xc(a.get("/d/kept")) == "HIT", timeout=5, what="a hit")
    import time
    # No counter shows the write-behind commit from outside; give it time.
    # The HIT of /d/kept after the restart proves the objects were on disk,
    # so this test cannot pass without exercising the durable purge and ban.
    time.sleep(1.5)
    assert a.request("PURGE", "/d/purged").status == 200
    assert a.request("BAN", "/", headers={"Ban": 'req.url == "/d/banned"'}).status == 200
    import signal
    a.signal(signal.SIGKILL)
    a.wait_exit(10)
    origin.on("/d/purged", body=b"fresh", headers={"Cache-Control": "max-age=300"})
    origin.on("/d/banned", body=b"fresh", headers={"Cache-Control": "max-age=300"})
    b = start_accel("-s", "disk=%s" % disk, origins=[origin])
    assert b.get("/d/purged").body == b"fresh"
    assert b.get("/d/banned").body == b"fresh"
    r = b.get("/d/kept")
    assert (r.body, xc(r)) == (b"/d/kept", "HIT")


def test_policy_purge_honours_purge_mode_soft(origin, start_accel, tmp_path):
    host, port = origin.addr.split(":")
    vcl = tmp_path / "purge.vcl"
    vcl.write_text("""vcl 4.1;
backend default { .host = "%s"; .port = "%s"; }
acl purgers { "127.0.0.1"; }
sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) { return (synth(405)); }
        return (purge);
    }
}
""" % (host, port))
    a = start_accel("-f", str(vcl))
    origin.on("/soft", body=b"old", headers={"Cache-Control": "max-age=60"})
    a.get("/soft")
    assert xc(a.get("/soft")) == "HIT"
    origin.on("/soft", body=b"new", headers={"Cache-Control": "max-age=60"})
    r = a.request("PURGE", "/soft", headers={"Purge-Mode": "soft"})
    assert r.status == 200
    r = a.get("/soft")
    assert (r.body, xc(r)) == (b"old", "STALE")
    wait_until(lambda: a.get("/soft").body == b"new", timeout=5, what="the refresh")
