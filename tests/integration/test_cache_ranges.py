"""Issue 4, RFC 9110 §14: single ranges from a complete cached object (206),
unsatisfiable ranges 416, If-Range honoured, multi-range answered 200 with
the whole body; the origin never sees the client's Range."""

import email.utils
import time

import pytest

BODY = bytes(range(100))
LM = email.utils.formatdate(time.time() - 3600, usegmt=True)


def xc(r):
    return r.header("X-Cache")


@pytest.fixture
def cached(origin, accel):
    origin.on("/r", body=BODY, headers={"Cache-Control": "max-age=60", "ETag": '"strong"',
                                        "Last-Modified": LM})
    assert accel.get("/r").body == BODY
    return accel


@pytest.mark.parametrize("rng,first,last", [
    ("bytes=0-9", 0, 9), ("bytes=90-", 90, 99), ("bytes=-10", 90, 99),
    ("bytes=95-500", 95, 99), ("bytes=-500", 0, 99), ("bytes=50-50", 50, 50)])
def test_single_range_from_cache(origin, cached, rng, first, last):
    r = cached.get("/r", headers={"Range": rng})
    assert r.status == 206, r.headers
    assert r.header("Content-Range") == "bytes %d-%d/100" % (first, last)
    assert r.body == BODY[first:last + 1]
    assert int(r.header("Content-Length")) == last - first + 1
    assert xc(r) == "HIT"
    assert origin.count("/r") == 1


@pytest.mark.parametrize("rng", ["bytes=100-", "bytes=200-300", "bytes=-0"])
def test_unsatisfiable_range_416(origin, cached, rng):
    r = cached.get("/r", headers={"Range": rng})
    assert r.status == 416, r.headers
    assert r.header("Content-Range") == "bytes */100"
    assert r.body == b""
    assert origin.count("/r") == 1


@pytest.mark.parametrize("rng", ["bytes=0-1,5-6", "items=0-1", "bytes=9-2"])
def test_multi_or_unknown_range_gets_the_whole_body(origin, cached, rng):
    r = cached.get("/r", headers={"Range": rng})
    assert (r.status, r.body) == (200, BODY)
    assert not r.has("Content-Range")


@pytest.mark.parametrize("if_range,want", [
    ('"strong"', 206), ('"other"', 200), ('W/"strong"', 200), (LM, 206),
    (email.utils.formatdate(time.time() - 7200, usegmt=True), 200)],
    ids=["etag-match", "etag-other", "weak", "date-match", "date-other"])
def test_if_range(origin, cached, if_range, want):
    r = cached.get("/r", headers={"Range": "bytes=10-19", "If-Range": if_range})
    assert r.status == want, r.headers
    assert r.body == (BODY[10:20] if want == 206 else BODY)


def test_range_on_cold_key_fetches_the_whole_object(origin, accel):
    origin.on("/cold", body=BODY, headers={"Cache-Control": "max-age=60"})
    r = accel.get("/cold", headers={"Range": "bytes=0-4"})
    seen = origin.last("/cold")
    assert seen.header("Range") is None, seen.headers
    assert r.status in (200, 206)
    assert r.body == (BODY if r.status == 200 else BODY[:5])
    r = accel.get("/cold", headers={"Range": "bytes=5-9"})
    assert (r.status, r.body, xc(r)) == (206, BODY[5:10], "HIT")
    assert origin.count("/cold") == 1


def test_origin_206_relayed_not_stored(origin, accel):
    origin.on("/p", status=206, body=b"part",
              headers={"Cache-Control": "max-age=60", "Content-Range": "bytes 0-3/10"})
    for _ in range(2):
        r = accel.get("/p")
        assert (r.status, r.body, r.header("Content-Range")) == (206, b"part", "bytes 0-3/10")
    assert origin.count("/p") == 2
