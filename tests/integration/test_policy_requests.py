"""vcl-lite policies observed through real requests against a real origin:
cache keys, TTLs, pass rules, synth answers, header changes on both sides,
backend choice, restarts, purge and ban (issue 5, "In accel" / "Tests")."""

import time

from policy_common import start_policy

MAXAGE = {"Cache-Control": "max-age=60"}


def get_on(conn, target, headers=None, host="test.example", method="GET"):
    return conn.request(method, target, headers, host=host)


# -- cache key ---------------------------------------------------------------------

KEY_VCL = r"""
sub vcl_recv {
    if (req.url ~ "^/strip") {
        set req.url = regsub(req.url, "\?utm_source=[^&]*$", "");
    }
}
sub vcl_hash {
    if (req.url ~ "^/shared") {
        hash_data(req.url);
        return (lookup);
    }
}
"""


def test_hash_only_url_shares_object_across_hosts(origin, start_accel, tmp_path):
    origin.on("/shared", body=b"one copy", headers=MAXAGE)
    origin.on("/own", body=b"per host", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, KEY_VCL, origin)
    r1 = a.get("/shared", host="a.example")
    r2 = a.get("/shared", host="b.example")
    assert (r1.status, r2.status) == (200, 200)
    assert r1.body == r2.body == b"one copy"
    assert origin.count("/shared") == 1, "vcl_hash with only req.url: one object for both Hosts"
    assert r2.header("X-Cache") == "HIT"
    # control: the built-in vcl_hash (url + host) keeps hosts apart
    a.get("/own", host="a.example")
    r4 = a.get("/own", host="b.example")
    assert origin.count("/own") == 2
    assert r4.header("X-Cache") != "HIT"


def test_regsub_strips_query_parameter_from_key(origin, start_accel, tmp_path):
    origin.on("/strip", body=b"stripped", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, KEY_VCL, origin)
    r1 = a.get("/strip?utm_source=news")
    r2 = a.get("/strip?utm_source=ads")
    r3 = a.get("/strip")
    assert [r.status for r in (r1, r2, r3)] == [200, 200, 200]
    assert origin.count("/strip") == 1
    assert origin.requests_for("/strip")[0].target == "/strip", "the origin sees the rewritten url"
    assert r2.header("X-Cache") == "HIT" and r3.header("X-Cache") == "HIT"


# -- TTLs and cacheability ------------------------------------------------------------

TTL_VCL = r"""
sub vcl_backend_response {
    if (bereq.url ~ "^/ttl") {
        set beresp.ttl = 60s;
    }
    if (bereq.url ~ "^/zero") {
        set beresp.ttl = 0s;
    }
    if (bereq.url ~ "^/uncacheable") {
        set beresp.uncacheable = true;
    }
    if (bereq.url ~ "^/hfp") {
        return (pass(30s));
    }
}
"""


def test_beresp_ttl_makes_response_without_cache_control_cacheable(origin, start_accel,
                                                                    tmp_path):
    origin.on("/ttl", body=b"ttl body")              # no Cache-Control, no Last-Modified
    origin.on("/plain", body=b"plain body")
    a = start_policy(start_accel, tmp_path, TTL_VCL, origin)
    r1 = a.get("/ttl")
    r2 = a.get("/ttl")
    assert (r1.status, r2.status) == (200, 200) and r2.body == b"ttl body"
    assert origin.count("/ttl") == 1, "set beresp.ttl = 60s must store the object"
    assert r2.header("X-Cache") == "HIT"
    cs = r2.header("Cache-Status") or ""
    ttl = [int(p.split("=")[1]) for p in cs.replace(";", " ").split() if p.startswith("ttl=")]
    assert ttl and 50 <= ttl[0] <= 60, "Cache-Status %r" % cs
    # control: the same kind of answer without the policy's ttl is not stored
    a.get("/plain")
    a.get("/plain")
    assert origin.count("/plain") == 2


def test_beresp_ttl_zero_and_uncacheable_and_pass_duration(origin, start_accel, tmp_path):
    for p in ("/zero", "/uncacheable", "/hfp"):
        origin.on(p, body=b"b" + p.encode(), headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, TTL_VCL, origin)
    for p in ("/zero", "/uncacheable", "/hfp"):
        for _ in range(3):
            r = a.get(p)
            assert r.status == 200 and r.body == b"b" + p.encode()
            assert r.header("X-Cache") != "HIT", p
        assert origin.count(p) == 3, "%s: every request must reach the origin" % p


# -- pass rules ---------------------------------------------------------------------------

PASS_VCL = r"""
sub vcl_recv {
    if (req.url ~ "^/nocache/") {
        return (pass);
    }
}
"""


def test_pass_rule_sends_every_request_to_origin(origin, start_accel, tmp_path):
    origin.on("/nocache/x", body=b"fresh", headers=MAXAGE)
    origin.on("/cache/x", body=b"cached", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, PASS_VCL, origin)
    with a.conn() as c:
        for _ in range(3):
            r = get_on(c, "/nocache/x")
            assert r.status == 200 and r.body == b"fresh"
            assert r.header("X-Cache") == "PASS"
        for _ in range(3):
            r = get_on(c, "/cache/x")
            assert r.status == 200 and r.body == b"cached"
    assert origin.count("/nocache/x") == 3
    assert origin.count("/cache/x") == 1


HITMISS_VCL = r"""
sub vcl_recv {
    if (req.http.X-Refresh) {
        set req.hash_always_miss = true;
    }
    if (req.url ~ "^/pipe") {
        return (pipe);
    }
}
sub vcl_hit {
    if (req.http.X-Bypass) {
        return (pass);
    }
    if (req.http.X-Hit-Synth) {
        return (synth(299, "From hit"));
    }
}
sub vcl_miss {
    if (req.url ~ "^/nomiss") {
        return (synth(404, "Not cached here"));
    }
}
sub vcl_pass {
    if (req.url ~ "^/nopass") {
        return (synth(403, "No pass"));
    }
}
sub vcl_deliver {
    set resp.http.X-Hit-Var = req.http.X-Bypass;
}
"""


def test_hit_miss_and_pass_subs(origin, start_accel, tmp_path):
    origin.on("/h", body=b"h", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, HITMISS_VCL, origin)
    assert a.get("/h").status == 200
    assert a.get("/h").header("X-Cache") == "HIT"
    r = a.get("/h", {"X-Bypass": "1"})                  # vcl_hit: return (pass)
    assert r.status == 200 and r.header("X-Cache") == "PASS"
    assert origin.count("/h") == 2
    r = a.get("/h", {"X-Hit-Synth": "1"})               # vcl_hit: return (synth)
    assert r.status == 299 and r.reason == "From hit"
    r = a.get("/h", {"X-Refresh": "1"})                 # req.hash_always_miss
    assert r.status == 200 and r.header("X-Cache") != "HIT"
    assert origin.count("/h") == 3
    r = a.get("/nomiss")                                # vcl_miss: return (synth)
    assert r.status == 404 and r.reason == "Not cached here"
    r = a.get("/nopass", {"Authorization": "x"})        # builtin pass, then vcl_pass synth
    assert r.status == 403 and r.reason == "No pass"
    assert origin.count("/nomiss") == 0 and origin.count("/nopass") == 0
    # the object under /nomiss was not left busy: a later request is answered too
    assert a.get("/nomiss").status == 404


def test_pipe_is_served_as_pass(origin, start_accel, tmp_path):
    origin.on("/pipe", body=b"piped", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, HITMISS_VCL, origin)
    for _ in range(2):
        r = a.get("/pipe")
        assert r.status == 200 and r.body == b"piped"
    assert origin.count("/pipe") == 2


# -- synth ----------------------------------------------------------------------------------

SYNTH_VCL = r"""
sub vcl_recv {
    if (req.url == "/teapot") {
        return (synth(418, "I am a teapot"));
    }
    if (req.url ~ "^/gone") {
        return (synth(410));
    }
    if (req.url ~ "^/old") {
        return (synth(750, "Moved"));
    }
}
sub vcl_synth {
    set resp.http.X-Synth = "yes";
    if (resp.status == 418) {
        set resp.http.Content-Type = "text/html";
        synthetic("<h1>" + resp.reason + "</h1>");
        return (deliver);
    }
    if (resp.status == 410) {
        set resp.body = "gone: " + req.url;
        return (deliver);
    }
    if (resp.status == 750) {
        set resp.status = 301;
        set resp.reason = "Moved Permanently";
        set resp.http.Location = "http://" + req.http.Host + regsub(req.url, "^/old", "/new");
        set resp.body = "moved";
        return (deliver);
    }
}
"""


def test_synth_status_reason_body_and_headers(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, SYNTH_VCL, origin)
    with a.conn() as c:
        r = get_on(c, "/teapot")
        assert r.status == 418 and r.reason == "I am a teapot"
        assert r.body == b"<h1>I am a teapot</h1>"
        assert r.header("Content-Type") == "text/html"
        assert r.header("X-Synth") == "yes"
        assert r.header_all("Content-Type") == ["text/html"]

        r = get_on(c, "/gone/page")
        assert r.status == 410
        assert r.body == b"gone: /gone/page"
        assert r.header("X-Synth") == "yes"

        r = get_on(c, "/old/path", host="site.example")
        assert r.status == 301 and r.reason == "Moved Permanently"
        assert r.header("Location") == "http://site.example/new/path"
        assert r.body == b"moved"
    assert origin.requests == [], "synth answers never reach the origin"


def test_synth_without_reason_uses_standard_phrase(origin, start_accel, tmp_path):
    """return (synth(N)) without a reason: the standard reason phrase of N
    (RFC 9110 section 15), as Varnish gives it."""
    body = r"""
sub vcl_recv {
    return (synth(std.integer(regsub(req.url, "^/", ""), 500)));
}
"""
    a = start_policy(start_accel, tmp_path, "import std;\n" + body, origin)
    want = {302: "Found", 307: "Temporary Redirect", 401: "Unauthorized", 404: "Not Found",
            410: "Gone", 429: "Too Many Requests"}
    got = {}
    with a.conn() as c:
        for code in want:
            r = get_on(c, "/%d" % code)
            assert r.status == code
            got[code] = r.reason
    assert got == want


# -- request header changes reaching the origin ---------------------------------------------

REQHDR_VCL = r"""
sub vcl_recv {
    set req.http.X-Recv = "set-in-recv";
    unset req.http.X-Secret;
    if (req.url ~ "^/old/") {
        set req.url = regsub(req.url, "^/old/", "/new/");
    }
    if (req.url ~ "^/p/") {
        return (pass);
    }
}
sub vcl_backend_fetch {
    set bereq.http.X-Fetch = "set-in-fetch " + bereq.url;
    unset bereq.http.X-Drop-In-Fetch;
}
"""


def test_request_header_changes_reach_origin(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, REQHDR_VCL, origin)
    hdrs = {"X-Secret": "s3cret", "X-Drop-In-Fetch": "drop", "X-Keep": "keep"}
    for target in ("/p/pass", "/c/cached", "/old/thing"):
        r = a.get(target, hdrs)
        assert r.status == 200
    for path in ("/p/pass", "/c/cached", "/new/thing"):
        req = origin.last(path)
        assert req is not None, "%s did not reach the origin (as %s)" % (path, origin.requests)
        assert req.header("X-Recv") == "set-in-recv", path
        assert req.header("X-Fetch") == "set-in-fetch " + path, path
        assert not req.has("X-Secret"), path
        assert not req.has("X-Drop-In-Fetch"), path
        assert req.header("X-Keep") == "keep", path
    assert origin.count("/old/thing") == 0


# -- response header changes ----------------------------------------------------------------

RESPHDR_VCL = r"""
sub vcl_recv {
    if (req.url ~ "^/p/") {
        return (pass);
    }
}
sub vcl_backend_response {
    set beresp.http.X-Stored = "from-beresp";
    unset beresp.http.X-Origin-Only;
}
sub vcl_deliver {
    set resp.http.X-Deliver = "d:" + req.url;
    unset resp.http.X-Internal;
    if (req.url ~ "status") {
        set resp.status = 203;
    }
}
"""


def test_response_header_changes_on_miss_hit_and_pass(origin, start_accel, tmp_path):
    hdrs = {"Cache-Control": "max-age=60", "X-Internal": "secret", "X-Origin-Only": "o",
            "X-Public": "pub"}
    origin.on("/c/obj", body=b"obj", headers=hdrs)
    origin.on("/p/obj", body=b"pobj", headers=hdrs)
    a = start_policy(start_accel, tmp_path, RESPHDR_VCL, origin)
    with a.conn() as c:
        for target, n in (("/c/obj", 2), ("/p/obj", 2)):
            for i in range(n):
                r = get_on(c, target)
                what = "%s #%d (%s)" % (target, i + 1, r.header("X-Cache"))
                assert r.status == 200, what
                assert r.header("X-Deliver") == "d:" + target, what
                assert not r.has("X-Internal"), what
                assert r.header("X-Public") == "pub", what
                assert r.header("X-Stored") == "from-beresp", what
                assert not r.has("X-Origin-Only"), what
                assert len(r.header_all("X-Deliver")) == 1, what
    assert origin.count("/c/obj") == 1
    assert origin.count("/p/obj") == 2


def test_resp_status_set_in_deliver(origin, start_accel, tmp_path):
    origin.on("/c/status", body=b"s", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, RESPHDR_VCL, origin)
    r1 = a.get("/c/status")
    r2 = a.get("/c/status")
    assert (r1.status, r2.status) == (203, 203)
    assert r2.body == b"s"


OVERRIDE_VCL = r"""
sub vcl_deliver {
    set resp.http.X-Cache = "custom";
    unset resp.http.Via;
}
"""


def test_deliver_can_replace_x_cache_and_unset_via(origin, start_accel, tmp_path):
    """As in Varnish, vcl_deliver sees the response as it will be sent: a set
    replaces the field, an unset removes it (Via included)."""
    origin.on("/v", body=b"v", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, OVERRIDE_VCL, origin)
    for i in range(2):
        r = a.get("/v")
        assert r.status == 200
        assert r.header_all("X-Cache") == ["custom"], "request %d: %r" % (i + 1, r.headers)
        assert not r.has("Via"), "request %d: %r" % (i + 1, r.headers)


# -- backend choice -------------------------------------------------------------------------------

def test_backend_hint_by_path(origin, make_origin, start_accel, tmp_path):
    o2 = make_origin()
    origin.on("/one/x", body=b"from o1")
    o2.on("/two/x", body=b"from o2")
    body = r"""
sub vcl_recv {
    if (req.url ~ "^/two/") {
        set req.backend_hint = b2;
    }
}
"""
    a = start_policy(start_accel, tmp_path, body, backends=[("b1", origin), ("b2", o2)])
    r1 = a.get("/one/x")
    r2 = a.get("/two/x")
    assert r1.body == b"from o1" and r2.body == b"from o2"
    assert origin.count("/one/x") == 1 and origin.count("/two/x") == 0
    assert o2.count("/two/x") == 1 and o2.count("/one/x") == 0


def test_round_robin_director_spreads_requests(origin, make_origin, start_accel, tmp_path):
    o2 = make_origin()
    body = r"""
import directors;
sub vcl_init {
    new rr = directors.round_robin();
    rr.add_backend(b1);
    rr.add_backend(b2);
}
sub vcl_recv {
    set req.backend_hint = rr.backend();
    return (pass);
}
"""
    a = start_policy(start_accel, tmp_path, body, backends=[("b1", origin), ("b2", o2)],
                     workers=1)
    with a.conn() as c:
        for i in range(10):
            r = get_on(c, "/rr/%d" % i)
            assert r.status == 200
    n1, n2 = len(origin.requests), len(o2.requests)
    assert n1 + n2 == 10
    assert n1 == 5 and n2 == 5, "round robin over two backends: %d / %d" % (n1, n2)


# -- restarts ----------------------------------------------------------------------------------------

RESTART_VCL = r"""
sub vcl_recv {
    if (req.url ~ "^/p/") {
        return (pass);
    }
    if (req.url ~ "^/recvloop") {
        return (restart);
    }
}
sub vcl_deliver {
    set resp.http.X-Restarts = req.restarts;
    if (req.restarts == 0 && req.url ~ "/first$") {
        set req.url = regsub(req.url, "/first$", "/second");
        return (restart);
    }
    if (req.url ~ "^/loop") {
        return (restart);
    }
}
"""


def _restart_once(origin, start_accel, tmp_path, prefix, headers):
    origin.on(prefix + "/first", body=b"first", headers=headers)
    origin.on(prefix + "/second", body=b"second", headers=headers)
    a = start_policy(start_accel, tmp_path, RESTART_VCL, origin)
    with a.conn() as c:
        r = get_on(c, prefix + "/first")
        assert r.status == 200
        assert r.body == b"second", "vcl_deliver restart with a new req.url: got %r %r" % (
            r.body, r.headers)
        assert r.header("X-Restarts") == "1"
        r = get_on(c, "/p/after")           # the connection is still good
        assert r.status == 200
    assert origin.count(prefix + "/first") == 1
    assert origin.count(prefix + "/second") == 1


def test_restart_from_deliver_on_pass(origin, start_accel, tmp_path):
    _restart_once(origin, start_accel, tmp_path, "/p", MAXAGE)


def test_restart_from_deliver_on_uncacheable_miss(origin, start_accel, tmp_path):
    _restart_once(origin, start_accel, tmp_path, "/u", {"Cache-Control": "no-store"})


def test_restart_from_deliver_on_cacheable_miss(origin, start_accel, tmp_path):
    """The request that fetches (and stores) the object runs vcl_deliver
    too; its restart must be honoured, as on a pass."""
    _restart_once(origin, start_accel, tmp_path, "/c", MAXAGE)


def test_restart_from_deliver_on_hit(origin, start_accel, tmp_path):
    origin.on("/h/first", body=b"first", headers=MAXAGE)
    origin.on("/h/second", body=b"second", headers=MAXAGE)
    body = r"""
sub vcl_deliver {
    set resp.http.X-Restarts = req.restarts;
    if (req.restarts == 0 && req.url ~ "/first$" && req.http.X-Go) {
        set req.url = "/h/second";
        return (restart);
    }
}
"""
    a = start_policy(start_accel, tmp_path, body, origin)
    assert a.get("/h/first").body == b"first"           # fill the cache, no restart
    r = a.get("/h/first", {"X-Go": "1"})                 # a hit that restarts
    assert r.status == 200 and r.body == b"second"
    assert r.header("X-Restarts") == "1"


def test_restart_limit_ends_in_503(origin, start_accel, tmp_path):
    origin.on("/loop", body=b"loop")
    a = start_policy(start_accel, tmp_path, RESTART_VCL, origin)
    with a.conn() as c:
        r = get_on(c, "/loop")
        assert r.status == 503, (r.status, r.body)
        r2 = get_on(c, "/recvloop")
        assert r2.status == 503, (r2.status, r2.body)
        r3 = get_on(c, "/p/ok")
        assert r3.status == 200
    # the first try plus max_restarts (4) restarts, each fetched once
    assert origin.count("/loop") == 5
    assert origin.count("/recvloop") == 0


# -- purge and ban ----------------------------------------------------------------------------

def purge_vcl(acl):
    return r"""
acl purgers {
%s
}
sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip ~ purgers) {
            return (purge);
        }
        return (synth(405, "Not allowed"));
    }
}
""" % acl


def test_purge_allowed_by_acl(origin, start_accel, tmp_path):
    origin.on("/pg", body=b"page", headers=MAXAGE)
    origin.on("/other", body=b"other", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, purge_vcl('    "127.0.0.1";'), origin)
    a.get("/pg")
    a.get("/other")
    assert a.get("/pg").header("X-Cache") == "HIT"
    r = a.request("PURGE", "/pg")
    assert r.status == 200, (r.status, r.reason, r.body)
    assert origin.count("/pg") == 1, "a PURGE must not reach the origin"
    r = a.get("/pg")
    assert r.status == 200 and r.header("X-Cache") != "HIT"
    assert origin.count("/pg") == 2
    # only that key went
    assert a.get("/other").header("X-Cache") == "HIT"
    assert origin.count("/other") == 1


def test_purge_denied_when_acl_excludes_client(origin, start_accel, tmp_path):
    origin.on("/pg", body=b"page", headers=MAXAGE)
    acl = '    "127.0.0.0"/8;\n    !"127.0.0.1";\n    "10.0.0.0"/8;'
    a = start_policy(start_accel, tmp_path, purge_vcl(acl), origin)
    a.get("/pg")
    r = a.request("PURGE", "/pg")
    assert r.status == 405 and r.reason == "Not allowed"
    r = a.get("/pg")
    assert r.header("X-Cache") == "HIT", "a refused PURGE must purge nothing"
    assert origin.count("/pg") == 1


def test_ban_is_accepted(origin, start_accel, tmp_path):
    body = r"""
sub vcl_recv {
    if (req.method == "BAN") {
        ban("req.url ~ " + req.url);
        return (synth(200, "Ban added"));
    }
    if (req.method == "BADBAN") {
        ban("this is ~~ not (a ban");
        return (synth(200, "Bad ban logged"));
    }
}
"""
    origin.on("/b", body=b"b", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, body, origin)
    assert a.get("/b").status == 200
    with a.conn() as c:
        r = c.request("BAN", "/b")
        assert r.status == 200 and r.reason == "Ban added"
        r = c.request("BADBAN", "/b")
        assert r.status == 200
        r = c.request("GET", "/b")
        assert r.status == 200 and r.body == b"b"
    assert a.alive()


# -- backend side: retry, abandon, vcl_backend_error --------------------------------------------

BACKEND_VCL = r"""
sub vcl_backend_response {
    if (beresp.status == 500 && bereq.retries < 2) {
        return (retry);
    }
    if (bereq.url ~ "^/abandon") {
        return (abandon);
    }
    set beresp.http.X-Retries = bereq.retries;
}
"""


def test_backend_response_retry(origin, start_accel, tmp_path):
    origin.on("/err", status=500, body=b"broken", delay=0.05)
    a = start_policy(start_accel, tmp_path, BACKEND_VCL, origin)
    with a.conn() as c:
        r = c.request("GET", "/err")
        assert r.status == 500 and r.header("X-Retries") == "2", r.headers
        assert r.body == b"broken", "the answer of the last try: got %r" % r.body
        r = c.request("GET", "/after")
        assert r.status == 200 and r.body == b"path=/after", (r.status, r.body)
    assert origin.count("/err") == 3, "first try + 2 retries"


def test_backend_response_abandon(origin, start_accel, tmp_path):
    origin.on("/abandon", body=b"never", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, BACKEND_VCL, origin)
    r = a.get("/abandon")
    assert r.status == 503
    assert origin.count("/abandon") == 1


def test_backend_error_synthetic_answer(make_origin, start_accel, tmp_path):
    dead = make_origin()
    dead.stop()                                         # connections refused
    body = r"""
sub vcl_backend_error {
    if (bereq.retries < 2) {
        return (retry);
    }
    set beresp.http.X-Retries = bereq.retries;
    set beresp.status = 502;
    set beresp.http.X-Backend-Error = "yes";
    synthetic("origin down: " + bereq.url);
    return (deliver);
}
"""
    a = start_policy(start_accel, tmp_path, body, dead)
    r = a.get("/down")
    assert r.status == 502, (r.status, r.body)
    assert r.header("X-Backend-Error") == "yes"
    assert r.header("X-Retries") == "2"
    assert r.body == b"origin down: /down"


# -- file structure at run time: include, repeated subs, migration mode -------------------------

def test_include_and_repeated_subs_run_in_order(origin, start_accel, tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "common.vcl").write_text(
        'sub vcl_recv {\n    set req.http.X-Order = req.http.X-Order + "b";\n}\n')
    body = r"""
sub vcl_recv {
    set req.http.X-Order = "a";
}
include "inc/common.vcl";
sub vcl_recv {
    set req.http.X-Order = req.http.X-Order + "c";
    return (pass);
}
"""
    a = start_policy(start_accel, tmp_path, body, origin)
    assert a.get("/inc").status == 200
    assert origin.last("/inc").header("X-Order") == "abc"


def test_migration_mode_runs_file_with_unknown_vmod(origin, start_accel, tmp_path):
    body = r"""
import geoip;
sub vcl_recv {
    set req.http.X-Country = "c=" + geoip.country(client.ip);
    return (pass);
}
"""
    a = start_policy(start_accel, tmp_path, body, origin, args=("-p", "vcl_unknown_vmods=stub"))
    assert "geoip.country" in a.stderr()
    r = a.get("/geo")
    assert r.status == 200
    assert origin.last("/geo").header("X-Country") == "c="


# -- more of the state machine ----------------------------------------------------------------

def test_obj_hits_counts_hits(origin, start_accel, tmp_path):
    """obj.hits in vcl_deliver: 0 on the miss, then 1, 2 on the hits."""
    origin.on("/hits", body=b"h", headers=MAXAGE)
    body = r"""
sub vcl_deliver {
    set resp.http.X-Hits = obj.hits;
}
"""
    a = start_policy(start_accel, tmp_path, body, origin)
    got = [a.get("/hits").header("X-Hits") for _ in range(3)]
    assert origin.count("/hits") == 1
    assert got == ["0", "1", "2"]


DELIVER_SYNTH_VCL = r"""
sub vcl_recv {
    if (req.url ~ "^/p/") {
        return (pass);
    }
}
sub vcl_deliver {
    if (req.http.X-Deny) {
        return (synth(451, "Denied in deliver"));
    }
}
"""


def test_synth_from_deliver_on_pass_and_hit(origin, start_accel, tmp_path):
    origin.on("/c/d", body=b"c", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, DELIVER_SYNTH_VCL, origin)
    with a.conn() as c:
        r = c.request("GET", "/p/d", {"X-Deny": "1"})
        assert r.status == 451 and r.reason == "Denied in deliver", (r.status, r.body)
        assert c.request("GET", "/c/d").status == 200          # fill the cache
        r = c.request("GET", "/c/d", {"X-Deny": "1"})           # a hit
        assert r.status == 451 and r.reason == "Denied in deliver"
        r = c.request("GET", "/p/after")
        assert r.status == 200 and r.body == b"path=/p/after"


def test_synth_from_deliver_on_cacheable_miss(origin, start_accel, tmp_path):
    """The request that fills the object runs vcl_deliver too; its synth
    must be honoured (the object is still stored for the others)."""
    origin.on("/c/m", body=b"m", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, DELIVER_SYNTH_VCL, origin)
    r = a.get("/c/m", {"X-Deny": "1"})
    assert r.status == 451, (r.status, r.body)
    r = a.get("/c/m")
    assert r.status == 200 and r.body == b"m"


def test_grace_set_by_policy_serves_stale(origin, start_accel, tmp_path):
    origin.on("/g", body=b"g", headers={"Cache-Control": "max-age=600"})
    body = r"""
sub vcl_backend_response {
    set beresp.ttl = 1s;
    set beresp.grace = 60s;
}
"""
    a = start_policy(start_accel, tmp_path, body, origin)
    assert a.get("/g").status == 200
    time.sleep(1.3)
    r = a.get("/g")
    assert r.status == 200 and r.body == b"g"
    assert r.header("X-Cache") == "STALE", r.headers
    origin.wait_count("/g", 2)                      # the background refresh


def test_bereq_url_and_backend_none(origin, start_accel, tmp_path):
    body = r"""
backend nothing none;
sub vcl_recv {
    if (req.url ~ "^/none") {
        set req.backend_hint = nothing;
    }
    return (pass);
}
sub vcl_backend_fetch {
    if (bereq.url ~ "^/rw/") {
        set bereq.url = regsub(bereq.url, "^/rw/", "/real/");
    }
}
"""
    a = start_policy(start_accel, tmp_path, body, origin)
    r = a.get("/rw/x")
    assert r.status == 200 and r.body == b"path=/real/x"
    r = a.get("/none")
    assert r.status == 503
    assert origin.count("/none") == 0


def test_runtime_failure_answers_503(origin, start_accel, tmp_path):
    body = r"""
import std;
sub vcl_recv {
    if (req.url ~ "^/div") {
        set req.http.X-N = 10 / std.integer(req.http.X-Zero, 0);
    }
    if (req.url ~ "^/fail") {
        return (fail);
    }
    return (pass);
}
"""
    a = start_policy(start_accel, tmp_path, body, origin)
    with a.conn() as c:
        assert c.request("GET", "/div").status == 503
        assert c.request("GET", "/fail").status == 503
        r = c.request("GET", "/ok")
        assert r.status == 200
    assert origin.count("/div") == 0 and origin.count("/fail") == 0


def test_builtin_subs_apply_under_a_policy(origin, start_accel, tmp_path):
    """A policy that only declares a backend behaves like the built-in
    policy: Cookie/Authorization requests pass, Set-Cookie and no-store
    answers are not stored, POST passes, a max-age answer is cached."""
    origin.on("/sc", body=b"sc", headers={"Cache-Control": "max-age=60", "Set-Cookie": "a=1"})
    origin.on("/ns", body=b"ns", headers={"Cache-Control": "no-store"})
    origin.on("/ok", body=b"ok", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, "", origin)
    for _ in range(2):
        a.get("/sc")
        a.get("/ns")
        a.get("/ok")
        a.get("/ok", {"Cookie": "s=1"})
        a.get("/ok", {"Authorization": "Basic eDp5"})
        a.request("POST", "/ok", body=b"x")
    assert origin.count("/sc") == 2 and origin.count("/ns") == 2
    # 1 fill + 2 cookie + 2 authorization + 2 POST, and 1 refill: the first
    # POST's 200 invalidated /ok (RFC 9111 section 4.4)
    assert origin.count("/ok") == 8
    assert a.get("/ok").header("X-Cache") == "MISS"     # the second POST invalidated it too
    assert a.get("/ok").header("X-Cache") == "HIT"


def test_restart_limit_reason(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, RESTART_VCL, origin)
    r = a.get("/recvloop")
    assert r.status == 503 and r.reason == "Too many restarts", (r.status, r.reason)


def test_unsafe_method_invalidates_under_policy(origin, start_accel, tmp_path):
    """RFC 9111 section 4.4: a successful POST to a URI invalidates what is
    stored for it; with a policy too (the key is the one vcl_hash builds)."""
    origin.on("/inv", body=b"inv", headers=MAXAGE)
    a = start_policy(start_accel, tmp_path, "", origin)
    a.get("/inv")
    assert a.get("/inv").header("X-Cache") == "HIT"
    assert a.request("POST", "/inv", body=b"x").status == 200
    r = a.get("/inv")
    assert r.header("X-Cache") != "HIT", "the POST must have invalidated /inv: %r" % r.headers
    assert origin.count("/inv") == 3          # GET, POST, GET again
