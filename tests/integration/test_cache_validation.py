"""Issue 4, RFC 9111 §4.3: stale objects with validators are revalidated
with If-None-Match / If-Modified-Since and a 304 freshens them (headers
updated per §3.2, body kept); clients' own conditional requests are answered
304 from the cache (weak comparison for If-None-Match)."""

import email.utils
import threading
import time

import pytest

from client import wait_until


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def xc(r):
    return r.header("X-Cache")


def wait_stale(accel, path):
    """The object was stored by the request just made with max-age=1: wait
    out that second.  Time itself is the event here: a probing request would
    start the revalidation under test."""
    time.sleep(1.1)


# -- revalidation by accel -----------------------------------------------------------------

@pytest.mark.accel_args("-p", "default_grace=0")
def test_stale_object_revalidated_with_etag_and_freshened_by_304(origin, accel):
    origin.on("/r", body=b"the body", headers={"Cache-Control": "max-age=1", "ETag": '"v1"',
                                               "X-Version": "1"})
    r = accel.get("/r")
    assert (r.status, r.body) == (200, b"the body")
    wait_stale(accel, "/r")
    origin.on("/r", status=304, headers={"Cache-Control": "max-age=60", "ETag": '"v1"',
                                         "X-Version": "2"})
    r = accel.get("/r")
    assert origin.count("/r") == 2
    seen = origin.last("/r")
    assert seen.header("If-None-Match") == '"v1"', seen.headers
    assert (r.status, r.body) == (200, b"the body"), r.headers
    assert xc(r) == "REVALIDATED"
    assert r.header("X-Version") == "2"                   # §3.2: fields from the 304
    assert r.header("Cache-Control") == "max-age=60"
    # freshened for 60 s: hits, with the new headers, no more origin requests
    for _ in range(3):
        h = accel.get("/r")
        assert (h.status, h.body, xc(h), h.header("X-Version")) == (200, b"the body", "HIT", "2")
        assert h.header_all("X-Version") == ["2"] and h.header_all("ETag") == ['"v1"']
    assert origin.count("/r") == 2


@pytest.mark.accel_args("-p", "default_grace=0")
def test_revalidation_with_last_modified(origin, accel):
    lm = http_date(time.time() - 3600)
    origin.on("/lm", body=b"lm body", headers={"Cache-Control": "max-age=1", "Last-Modified": lm})
    accel.get("/lm")
    wait_stale(accel, "/lm")
    origin.on("/lm", status=304, headers={"Cache-Control": "max-age=60", "Last-Modified": lm})
    r = accel.get("/lm")
    assert origin.last("/lm").header("If-Modified-Since") == lm
    assert (r.status, r.body, xc(r)) == (200, b"lm body", "REVALIDATED")
    assert xc(accel.get("/lm")) == "HIT"
    assert origin.count("/lm") == 2


@pytest.mark.accel_args("-p", "default_grace=0")
def test_revalidation_answered_200_replaces_the_object(origin, accel):
    origin.on("/rep", body=b"old", headers={"Cache-Control": "max-age=1", "ETag": '"old"'})
    accel.get("/rep")
    wait_stale(accel, "/rep")
    origin.on("/rep", body=b"new", headers={"Cache-Control": "max-age=60", "ETag": '"new"'})
    r = accel.get("/rep")
    assert origin.last("/rep").header("If-None-Match") == '"old"'
    assert (r.status, r.body, r.header("ETag")) == (200, b"new", '"new"')
    h = accel.get("/rep")
    assert (h.body, xc(h), h.header("ETag")) == (b"new", "HIT", '"new"')
    assert origin.count("/rep") == 2


def test_client_validators_not_forwarded_on_cache_fetch(origin, accel):
    origin.on("/cf", body=b"full", headers={"Cache-Control": "max-age=60", "ETag": '"e"'})
    r = accel.get("/cf", headers={"If-None-Match": '"e"'})
    seen = origin.last("/cf")
    assert seen.header("If-None-Match") is None and seen.header("If-Modified-Since") is None
    assert r.status in (200, 304)
    # the stored object is the whole 200 (the client's 304 may go out while
    # the body is still being stored: a request then waits on it, "MISS")
    g = accel.get("/cf")
    assert (g.status, g.body) == (200, b"full")
    wait_until(lambda: xc(accel.get("/cf")) == "HIT", 5, "the object to be complete")
    assert origin.count("/cf") == 1


# -- clients' conditional requests ---------------------------------------------------------

LM = time.time() - 7200


@pytest.mark.parametrize("cond,want", [
    ({"If-None-Match": '"abc"'}, 304),
    ({"If-None-Match": 'W/"abc"'}, 304),                       # weak comparison
    ({"If-None-Match": '"x", "abc"'}, 304),
    ({"If-None-Match": "*"}, 304),
    ({"If-None-Match": '"zzz"'}, 200),
    ({"If-Modified-Since": http_date(LM)}, 304),
    ({"If-Modified-Since": http_date(LM + 60)}, 304),
    ({"If-Modified-Since": http_date(LM - 60)}, 200),
    ({"If-None-Match": '"zzz"', "If-Modified-Since": http_date(LM + 60)}, 200),  # INM wins
], ids=["inm", "inm-weak", "inm-list", "inm-star", "inm-other", "ims-equal", "ims-later",
        "ims-earlier", "inm-over-ims"])
def test_client_conditional_answered_from_cache(origin, accel, cond, want):
    origin.on("/cc", body=b"conditional body",
              headers={"Cache-Control": "max-age=60", "ETag": '"abc"',
                       "Last-Modified": http_date(LM)})
    accel.get("/cc")
    r = accel.get("/cc", headers=cond)
    assert r.status == want, r.headers
    assert xc(r) == "HIT"
    assert origin.count("/cc") == 1
    if want == 304:
        assert r.body == b""
        assert r.header("ETag") == '"abc"'
        assert r.has("Cache-Control") and r.has("Date")
    else:
        assert r.body == b"conditional body"


def test_weak_etag_stored_matches_strong_inm(origin, accel):
    origin.on("/w", body=b"weak", headers={"Cache-Control": "max-age=60", "ETag": 'W/"w1"'})
    accel.get("/w")
    assert accel.get("/w", headers={"If-None-Match": '"w1"'}).status == 304
    assert accel.get("/w", headers={"If-None-Match": 'W/"w1"'}).status == 304
    assert origin.count("/w") == 1


@pytest.mark.accel_args("-p", "default_grace=0")
def test_concurrent_requests_for_a_stale_object_make_one_revalidation(origin, accel):
    """Coalescing applies to revalidation too: 10 clients asking for a stale
    object (no grace) while its revalidation is at the origin make one
    conditional request, not ten."""
    origin.on("/rc", body=b"rc body", headers={"Cache-Control": "max-age=1", "ETag": '"rc"'})
    accel.get("/rc")
    wait_stale(accel, "/rc")
    gate = threading.Event()
    origin.on("/rc", status=304, gate=gate, headers={"Cache-Control": "max-age=60", "ETag": '"rc"'})
    out = []
    ts = [threading.Thread(target=lambda: out.append(accel.get("/rc", timeout=20)))
          for _ in range(10)]
    try:
        ts[0].start()
        origin.wait_head("/rc")
        origin.wait_for(lambda: sum(1 for q in origin.heads if q.path == "/rc") >= 2,
                        timeout=5, what="the revalidation to reach the origin")
        for t in ts[1:]:
            t.start()
        # give the other nine the chance to reach the origin if they are going to
        wait_until_quiet(origin, "/rc")
    finally:
        gate.set()
        for t in ts:
            t.join(20)
    later = [q for q in origin.heads if q.path == "/rc"][1:]
    assert len(later) == 1, (
        "%d origin requests for 10 concurrent clients of a stale object, %d of them "
        "unconditional (Cache-Status %s)" % (
            len(later), sum(1 for q in later if not q.has("If-None-Match")),
            sorted({r.header("Cache-Status") for r in out})))
    assert [(r.status, r.body) for r in out] == [(200, b"rc body")] * 10


def wait_until_quiet(origin, path, quiet=0.3, timeout=3.0):
    """Return once no new request head for path has arrived for `quiet` s."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        n = sum(1 for q in origin.heads if q.path == path)
        if n == last:
            return
        last = n
        time.sleep(quiet)
