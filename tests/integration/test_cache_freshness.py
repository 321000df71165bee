"""Issue 4: what accel stores and for how long -- freshness from each header
(RFC 9111 §4.2.1: s-maxage > max-age > Expires > heuristic), Age arithmetic
(§4.2.3), Date added when missing, storability (§3), the Varnish-like
defaults (Cookie/Authorization pass, Set-Cookie and friends leave a
hit-for-miss marker), RFC 9213 targeted fields, HEAD from a cached GET and
the object size limit."""

import email.utils
import time

import pytest

from client import Conn, build_request, wait_until


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def xc(r):
    return r.header("X-Cache")


def assert_stored(origin, accel, path, n=3):
    """n GETs: the first fetches, the others are hits (one origin request)."""
    rs = [accel.get(path) for _ in range(n)]
    assert [r.status for r in rs[1:]] == [rs[0].status] * (n - 1)
    assert [xc(r) for r in rs[1:]] == ["HIT"] * (n - 1), [r.headers for r in rs]
    assert origin.count(path) == 1, "stored object: one origin request, got %d" % origin.count(path)
    return rs


def assert_not_stored(origin, accel, path, n=3):
    rs = [accel.get(path) for _ in range(n)]
    assert origin.count(path) == n, "not storable: every request goes to the origin (%s)" % (
        [(r.status, xc(r), r.header("Cache-Status")) for r in rs])
    assert "HIT" not in [xc(r) for r in rs]
    return rs


# -- freshness lifetime from each header -------------------------------------------------

@pytest.mark.accel_args("-p", "default_grace=0")
def test_max_age_hit_then_miss_after_expiry(origin, accel):
    origin.on("/ma", body=b"one", headers={"Cache-Control": "max-age=1"})
    r1 = accel.get("/ma")
    assert (r1.status, r1.body, xc(r1)) == (200, b"one", "MISS")
    assert r1.header("Cache-Status", "").startswith("accel; fwd=uri-miss; stored"), r1.headers
    r2 = accel.get("/ma")
    assert (r2.status, r2.body, xc(r2)) == (200, b"one", "HIT")
    assert r2.header("Cache-Status", "").startswith("accel; hit; ttl="), r2.headers
    assert r2.has("Age")
    assert origin.count("/ma") == 1
    origin.on("/ma", body=b"two", headers={"Cache-Control": "max-age=60"})
    # hits until the second is over, then one new fetch (no grace, no validators)
    r = wait_until(lambda: (lambda r: r if xc(r) != "HIT" else None)(accel.get("/ma")),
                   timeout=5, what="the 1 s object to expire")
    assert (r.status, r.body, xc(r)) == (200, b"two", "MISS")
    assert origin.count("/ma") == 2
    assert accel.get("/ma").body == b"two"
    assert origin.count("/ma") == 2


def test_s_maxage_wins_over_max_age(origin, accel):
    origin.on("/s1", headers={"Cache-Control": "max-age=0, s-maxage=60"})
    assert_stored(origin, accel, "/s1")
    origin.on("/s2", headers={"Cache-Control": "s-maxage=0, max-age=60"})
    assert_not_stored(origin, accel, "/s2")


def test_expires_gives_freshness(origin, accel):
    now = time.time()
    origin.on("/e1", headers={"Date": http_date(now), "Expires": http_date(now + 60)})
    assert_stored(origin, accel, "/e1")


@pytest.mark.parametrize("expires", ["past", "0", "garbage"])
def test_expired_or_invalid_expires_not_stored(origin, accel, expires):
    now = time.time()
    val = {"past": http_date(now - 60), "0": "0", "garbage": "next tuesday"}[expires]
    origin.on("/e2", headers={"Date": http_date(now), "Expires": val})
    assert_not_stored(origin, accel, "/e2")


def test_max_age_wins_over_expires(origin, accel):
    now = time.time()
    origin.on("/e3", headers={"Date": http_date(now), "Expires": http_date(now + 60),
                              "Cache-Control": "max-age=0"})
    assert_not_stored(origin, accel, "/e3")
    origin.on("/e4", headers={"Date": http_date(now), "Expires": http_date(now - 60),
                              "Cache-Control": "max-age=60"})
    assert_stored(origin, accel, "/e4")


def test_heuristic_freshness_from_last_modified(origin, accel):
    now = time.time()
    origin.on("/h1", headers={"Date": http_date(now), "Last-Modified": http_date(now - 10000)})
    assert_stored(origin, accel, "/h1")


def test_heuristic_only_for_status_codes_cacheable_by_default(origin, accel):
    now = time.time()
    origin.on("/h2", status=302, headers={"Date": http_date(now), "Location": "/x",
                                          "Last-Modified": http_date(now - 10000)})
    assert_not_stored(origin, accel, "/h2")
    origin.on("/h3", status=404, body=b"gone", headers={"Date": http_date(now),
                                                        "Last-Modified": http_date(now - 10000)})
    rs = assert_stored(origin, accel, "/h3")
    assert [r.status for r in rs] == [404] * 3


@pytest.mark.accel_args("-p", "heuristic_max=1", "-p", "default_grace=0")
def test_heuristic_lifetime_is_capped(origin, accel):
    now = time.time()
    origin.on("/h4", headers={"Date": http_date(now), "Last-Modified": http_date(now - 100000)})
    assert_stored(origin, accel, "/h4", n=2)
    wait_until(lambda: xc(accel.get("/h4")) != "HIT", timeout=5,
               what="the heuristic lifetime capped at 1 s to end")
    assert origin.count("/h4") == 2


def test_no_freshness_information_not_stored_and_marked_hit_for_miss(origin, accel):
    origin.on("/nf", body=b"plain")                      # no Cache-Control, Expires, LM
    r1 = accel.get("/nf")
    assert (r1.status, r1.body, xc(r1)) == (200, b"plain", "MISS")
    assert "uncacheable" in r1.header("Cache-Status", ""), r1.headers
    r2 = accel.get("/nf")
    assert (r2.status, r2.body, xc(r2)) == (200, b"plain", "PASS")
    assert "hit-for-miss" in r2.header("Cache-Status", ""), r2.headers
    assert origin.count("/nf") == 2


@pytest.mark.parametrize("status", [404, 301, 500])
def test_any_status_with_explicit_freshness_is_stored(origin, accel, status):
    hdrs = {"Cache-Control": "max-age=60"}
    if status == 301:
        hdrs["Location"] = "/elsewhere"
    origin.on("/st", status=status, body=b"status body", headers=hdrs)
    rs = assert_stored(origin, accel, "/st")
    assert [(r.status, r.body) for r in rs] == [(status, b"status body")] * 3


# -- storability -------------------------------------------------------------------------

@pytest.mark.parametrize("hdrs", [
    {"Cache-Control": "max-age=60", "Set-Cookie": "sid=1"},
    {"Cache-Control": "private, max-age=60"},
    {"Cache-Control": "no-cache, max-age=60"},
    {"Cache-Control": "no-store, max-age=60"},
    {"Cache-Control": "max-age=60", "Vary": "*"},
    {"Cache-Control": "max-age=60", "Vary": "Accept-Language, *"},
    {"Cache-Control": "max-age=60", "Surrogate-Control": "no-store"},
], ids=["set-cookie", "private", "no-cache", "no-store", "vary-star", "vary-list-star",
        "surrogate-no-store"])
def test_uncacheable_responses_not_stored(origin, accel, hdrs):
    origin.on("/u", body=b"personal", headers=hdrs)
    rs = assert_not_stored(origin, accel, "/u")
    assert all(r.body == b"personal" for r in rs)
    assert xc(rs[1]) == "PASS", rs[1].headers          # the hit-for-miss marker


def test_set_cookie_relayed_to_each_client_never_stored(origin, accel):
    origin.on("/sc", headers={"Cache-Control": "max-age=60", "Set-Cookie": "sid=abc"})
    r1, r2 = accel.get("/sc"), accel.get("/sc")
    assert r1.header("Set-Cookie") == "sid=abc" and r2.header("Set-Cookie") == "sid=abc"
    assert origin.count("/sc") == 2
    # a later cookie-less answer is not mixed up with the marked key
    origin.on("/sc2", headers={"Cache-Control": "max-age=60"})
    accel.get("/sc2")
    assert accel.get("/sc2").header("Set-Cookie") is None


@pytest.mark.parametrize("cred", ["Cookie", "Authorization"])
def test_requests_with_credentials_pass(origin, accel, cred):
    origin.on("/c", body=b"public", headers={"Cache-Control": "max-age=60"})
    assert_stored(origin, accel, "/c", n=2)
    val = "sid=1" if cred == "Cookie" else "Basic dTpw"
    origin.on("/c", body=b"personal", headers={"Cache-Control": "max-age=60"})
    r = accel.get("/c", headers={cred: val})
    assert (r.status, r.body, xc(r)) == (200, b"personal", "PASS")
    assert r.header("Cache-Status") == "accel; fwd=bypass", r.headers
    assert origin.count("/c") == 2
    assert origin.last("/c").header(cred) == val
    # the passed answer did not replace the stored one
    r = accel.get("/c")
    assert (r.body, xc(r)) == (b"public", "HIT")
    assert origin.count("/c") == 2


def test_other_methods_pass(origin, accel):
    origin.on("/opt", headers={"Cache-Control": "max-age=60"})
    r1 = accel.request("OPTIONS", "/opt")
    r2 = accel.request("OPTIONS", "/opt")
    assert (r1.status, r2.status) == (200, 200)
    assert xc(r2) == "PASS"
    assert origin.count("/opt") == 2


def test_unknown_request_cache_control_and_pragma_do_not_bypass(origin, accel):
    origin.on("/rq", headers={"Cache-Control": "max-age=60"})
    accel.get("/rq")
    for h in ({"Cache-Control": "no-cache"}, {"Pragma": "no-cache"},
              {"Cache-Control": "x-whatever=1"}):
        assert xc(accel.get("/rq", headers=h)) == "HIT", h
    assert origin.count("/rq") == 1


# -- Age and Date ------------------------------------------------------------------------

def test_age_from_origin_counts_against_max_age(origin, accel):
    origin.on("/age10", headers={"Cache-Control": "max-age=12", "Age": "10"})
    r1 = accel.get("/age10")
    r2 = accel.get("/age10")
    assert xc(r2) == "HIT", r2.headers
    assert origin.count("/age10") == 1
    assert 10 <= int(r1.header("Age")) <= 12, r1.headers
    assert 10 <= int(r2.header("Age")) <= 12, r2.headers
    assert len(r2.header_all("Age")) == 1


def test_age_at_or_over_max_age_not_stored(origin, accel):
    origin.on("/age12", headers={"Cache-Control": "max-age=12", "Age": "12"})
    assert_not_stored(origin, accel, "/age12")
    origin.on("/age99", headers={"Cache-Control": "max-age=12", "Age": "99"})
    assert_not_stored(origin, accel, "/age99")


def test_apparent_age_from_origin_date(origin, accel):
    origin.on("/old", headers={"Cache-Control": "max-age=60", "Date": http_date(time.time() - 20)})
    accel.get("/old")
    r = accel.get("/old")
    assert xc(r) == "HIT"
    assert 19 <= int(r.header("Age")) <= 40, r.headers


def test_age_grows_on_hits(origin, accel):
    origin.on("/grow", headers={"Cache-Control": "max-age=60", "Age": "5"})
    accel.get("/grow")
    a1 = int(accel.get("/grow").header("Age"))
    r = wait_until(lambda: (lambda r: r if int(r.header("Age")) > a1 else None)(
        accel.get("/grow")), timeout=5, what="Age to grow")
    assert xc(r) == "HIT" and origin.count("/grow") == 1


def test_date_added_when_missing_and_kept_when_present(origin, accel):
    origin.on("/nodate", headers={"Cache-Control": "max-age=60"})
    for r in (accel.get("/nodate"), accel.get("/nodate")):
        assert len(r.header_all("Date")) == 1, r.headers
        assert abs(email.utils.parsedate_to_datetime(r.header("Date")).timestamp()
                   - time.time()) < 30
    d = http_date(time.time() - 3)
    origin.on("/date", headers={"Cache-Control": "max-age=60", "Date": d})
    accel.get("/date")
    r = accel.get("/date")
    assert r.header_all("Date") == [d]


# -- RFC 9213 targeted fields ------------------------------------------------------------

def test_cdn_cache_control_wins_over_cache_control_and_is_stripped(origin, accel):
    origin.on("/cdn1", headers={"Cache-Control": "no-store", "CDN-Cache-Control": "max-age=60"})
    rs = assert_stored(origin, accel, "/cdn1")
    for r in rs:
        assert not r.has("CDN-Cache-Control"), r.headers
        assert r.header("Cache-Control") == "no-store"      # for the browsers behind us
    origin.on("/cdn2", headers={"Cache-Control": "max-age=60", "CDN-Cache-Control": "no-store"})
    rs = assert_not_stored(origin, accel, "/cdn2")
    for r in rs:
        assert not r.has("CDN-Cache-Control"), (xc(r), r.headers)


def test_accel_cache_control_wins_over_cdn_cache_control(origin, accel):
    origin.on("/acc1", headers={"Cache-Control": "no-store", "CDN-Cache-Control": "no-store",
                                "Accel-Cache-Control": "max-age=60"})
    rs = assert_stored(origin, accel, "/acc1")
    for r in rs:
        assert not r.has("Accel-Cache-Control") and not r.has("CDN-Cache-Control"), r.headers
    origin.on("/acc2", headers={"Cache-Control": "max-age=60", "CDN-Cache-Control": "max-age=60",
                                "Accel-Cache-Control": "private"})
    rs = assert_not_stored(origin, accel, "/acc2")
    for r in rs:
        assert not r.has("Accel-Cache-Control") and not r.has("CDN-Cache-Control"), (
            xc(r), r.headers)


@pytest.mark.accel_args("-p", "targeted_cache_control=Edge-Cache-Control")
def test_targeted_field_name_is_configurable(origin, accel):
    origin.on("/t1", headers={"Cache-Control": "no-store", "Edge-Cache-Control": "max-age=60",
                              "Accel-Cache-Control": "no-store"})
    rs = assert_stored(origin, accel, "/t1")
    for r in rs:
        assert not r.has("Edge-Cache-Control"), r.headers
        assert r.header("Accel-Cache-Control") == "no-store"   # just another field now


# -- HEAD --------------------------------------------------------------------------------

def test_head_served_from_cached_get(origin, accel):
    origin.on("/hd", body=b"0123456789", headers={"Cache-Control": "max-age=60", "ETag": '"h"'})
    g = accel.get("/hd")
    h = accel.request("HEAD", "/hd")
    assert (h.status, h.body, xc(h)) == (200, b"", "HIT")
    assert h.header("Content-Length") == "10"
    assert h.header("ETag") == '"h"'
    assert origin.count("/hd") == 1 and g.body == b"0123456789"


def test_head_miss_fetches_get_and_stores_it(origin, accel):
    origin.on("/hm", body=b"abcdef", headers={"Cache-Control": "max-age=60"})
    with Conn(accel.port) as c:                # the same connection goes on after the HEAD
        h = c.request("HEAD", "/hm")
        assert (h.status, h.body) == (200, b"")
        g = c.request("GET", "/hm")
    assert [r.method for r in origin.requests_for("/hm")] == ["GET"]
    assert (g.status, g.body, xc(g)) == (200, b"abcdef", "HIT")


def test_head_on_uncacheable_key_keeps_the_connection_usable(origin, accel):
    origin.on("/hu", body=b"x" * 3000, headers={"Set-Cookie": "a=b"})
    with Conn(accel.port, timeout=5) as c:
        h = c.request("HEAD", "/hu")
        assert (h.status, h.body) == (200, b"")
        g = c.request("GET", "/hu")
        assert (g.status, g.body) == (200, b"x" * 3000)


# -- size limit --------------------------------------------------------------------------

@pytest.mark.accel_args("-p", "max_object_size=10000")
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_object_over_max_object_size_delivered_whole_not_stored(origin, accel, chunked):
    big = bytes(range(256)) * 200                       # 51200 bytes
    origin.on("/big", body=big, chunked=chunked, chunk_size=4096,
              headers={"Cache-Control": "max-age=60"})
    origin.on("/small", body=b"s" * 5000, headers={"Cache-Control": "max-age=60"})
    for _ in range(2):
        r = accel.get("/big")
        assert r.status == 200 and len(r.body) == len(big) and r.body == big
        assert xc(r) != "HIT"
    assert origin.count("/big") == 2
    assert_stored(origin, accel, "/small", n=2)


# -- more of §3 and §4.2.1 -----------------------------------------------------------------

@pytest.mark.parametrize("cc,stored", [
    ("max-age=-1", False), ("max-age=abc", False), ('max-age="60"', True),
    ("max-age=99999999999999999999999", True), ("max-age=60, max-age=0", True),
    ("no-store, must-understand, max-age=60", True), ("public, max-age=60, x-ext=\"a,b\"", True)],
    ids=["negative", "malformed", "quoted", "overflow", "first-wins", "must-understand",
         "extension"])
def test_cache_control_values(origin, accel, cc, stored):
    origin.on("/cv", headers={"Cache-Control": cc})
    if stored:
        assert_stored(origin, accel, "/cv")
    else:
        assert_not_stored(origin, accel, "/cv")


def test_interim_responses_relayed_on_a_cache_fetch(origin, accel):
    origin.on("/eh", body=b"after hints", interim=[(103, {"Link": "</s.css>; rel=preload"})],
              headers={"Cache-Control": "max-age=60"})
    r = accel.get("/eh")
    assert (r.status, r.body) == (200, b"after hints")
    assert all(i.status == 103 for i in r.interim)
    r = accel.get("/eh")
    assert (r.status, r.body, xc(r), r.interim) == (200, b"after hints", "HIT", [])
    assert origin.count("/eh") == 1


@pytest.mark.accel_args("-p", "hfm_ttl=1")
def test_hit_for_miss_marker_expires(origin, accel):
    origin.on("/hx", body=b"personal", headers={"Cache-Control": "private"})
    accel.get("/hx")
    assert xc(accel.get("/hx")) == "PASS"
    origin.on("/hx", body=b"public", headers={"Cache-Control": "max-age=60"})
    wait_until(lambda: xc(accel.get("/hx")) == "HIT", timeout=5,
               what="the 1 s hit-for-miss marker to expire and the object to be stored")
    assert accel.get("/hx").body == b"public"


def test_hits_carry_via(origin, accel):
    origin.on("/via", headers={"Cache-Control": "max-age=60"})
    accel.get("/via")
    r = accel.get("/via")
    assert xc(r) == "HIT" and r.header_all("Via") == ["1.1 accel"], r.headers


def test_cache_key_host_is_case_insensitive_without_default_port(origin, accel):
    origin.on("/key", headers={"Cache-Control": "max-age=60"})
    accel.get("/key", host="Test.Example")
    assert xc(accel.get("/key", host="test.example:80")) == "HIT"
    assert xc(accel.get("/key", host="TEST.EXAMPLE")) == "HIT"
    assert xc(accel.get("/key", host="test.example:8080")) == "MISS"
    assert xc(accel.get("/key", host="other.example")) == "MISS"
    assert xc(accel.get("/key?q=1", host="test.example")) == "MISS"
    assert origin.count("/key") == 4


def test_cache_control_field_lines_accumulate(origin, accel):
    origin.on("/two", headers=[("Cache-Control", "max-age=60"), ("Cache-Control", "private")])
    assert_not_stored(origin, accel, "/two")


def test_age_includes_the_response_delay(origin, accel):
    """§4.2.3: corrected_age_value = age_value + response_delay."""
    origin.on("/slowage", delay=1.0, headers={"Cache-Control": "max-age=60", "Age": "0"})
    accel.get("/slowage")
    r = accel.get("/slowage")
    assert xc(r) == "HIT" and int(r.header("Age")) >= 1, r.headers


def test_expires_is_relative_to_the_origin_date(origin, accel):
    now = time.time()
    # the origin's clock is 100 s behind: Expires - Date is 60 s, the copy is 100 s old
    origin.on("/skew1", headers={"Date": http_date(now - 100), "Expires": http_date(now - 40)})
    assert_not_stored(origin, accel, "/skew1")
    origin.on("/skew2", headers={"Date": http_date(now - 100), "Expires": http_date(now + 60)})
    rs = assert_stored(origin, accel, "/skew2")
    assert int(rs[-1].header("Age")) >= 99
