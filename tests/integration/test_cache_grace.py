"""Issue 4: grace and stale-while-revalidate (a stale object served at once
while exactly one background fetch refreshes it), must-revalidate /
proxy-revalidate / s-maxage (never stale), and stale-if-error (a stale copy
instead of an origin failure or a 5xx)."""

import threading
import time

import pytest

from client import wait_until


def xc(r):
    return r.header("X-Cache")


def expire(accel, path, ttl=1.0):
    """The object was stored by the request just made; wait out its lifetime.
    Time passing is the event itself: a probing request would start the very
    refresh under test."""
    time.sleep(ttl + 0.1)


def test_grace_serves_stale_with_exactly_one_background_refresh(origin, accel):
    origin.on("/g", body=b"old", headers={"Cache-Control": "max-age=1"})
    assert accel.get("/g").body == b"old"
    expire(accel, "/g")
    gate = threading.Event()
    origin.on("/g", body=b"new", gate=gate, headers={"Cache-Control": "max-age=60"})
    try:
        # the refresh is held at the origin: every request must still be answered, stale
        stale = [accel.get("/g", timeout=5) for _ in range(5)] + accel.get_many("/g", clients=20)
        assert [(r.status, r.body) for r in stale] == [(200, b"old")] * 25
        assert {xc(r) for r in stale} == {"STALE"}, {xc(r) for r in stale}
        assert all(r.header("Cache-Status", "").startswith("accel; hit; fwd=stale")
                   for r in stale), {r.header("Cache-Status") for r in stale}
        origin.wait_for(lambda: sum(1 for q in origin.heads if q.path == "/g") >= 2,
                        timeout=5, what="the background refresh to reach the origin")
        assert sum(1 for q in origin.heads if q.path == "/g") == 2, \
            "one background refresh for 25 requests in grace"
    finally:
        gate.set()
    r = wait_until(lambda: (lambda r: r if r.body == b"new" else None)(accel.get("/g")),
                   timeout=5, what="the refreshed object")
    assert xc(r) == "HIT"
    assert origin.count("/g") == 2


@pytest.mark.accel_args("-p", "default_grace=0")
def test_stale_while_revalidate_from_origin(origin, accel):
    origin.on("/swr", body=b"old", headers={"Cache-Control": "max-age=1, stale-while-revalidate=30"})
    accel.get("/swr")
    expire(accel, "/swr")
    origin.on("/swr", body=b"new", headers={"Cache-Control": "max-age=60"})
    r = accel.get("/swr")
    assert (r.body, xc(r)) == (b"old", "STALE")
    wait_until(lambda: accel.get("/swr").body == b"new", timeout=5, what="refreshed object")
    assert origin.count("/swr") == 2


@pytest.mark.accel_args("-p", "default_grace=0")
def test_no_grace_means_synchronous_fetch(origin, accel):
    origin.on("/ng", body=b"old", headers={"Cache-Control": "max-age=1"})
    accel.get("/ng")
    expire(accel, "/ng")
    origin.on("/ng", body=b"new", headers={"Cache-Control": "max-age=60"})
    r = accel.get("/ng")
    assert (r.body, xc(r)) == (b"new", "MISS")


@pytest.mark.parametrize("cc", ["max-age=1, must-revalidate", "max-age=1, proxy-revalidate",
                                "s-maxage=1, stale-while-revalidate=30"])
def test_must_revalidate_disables_grace(origin, accel, cc):
    origin.on("/mr", body=b"old", headers={"Cache-Control": cc})     # default grace is 10 s
    accel.get("/mr")
    expire(accel, "/mr")
    origin.on("/mr", body=b"new", headers={"Cache-Control": "max-age=60"})
    r = accel.get("/mr")
    assert (r.body, xc(r)) == (b"new", "MISS"), r.headers


# -- stale-if-error ------------------------------------------------------------------------

@pytest.mark.accel_args("-p", "default_grace=0")
def test_stale_if_error_on_503(origin, accel):
    origin.on("/sie", body=b"good", headers={"Cache-Control": "max-age=1, stale-if-error=60"})
    accel.get("/sie")
    expire(accel, "/sie")
    origin.on("/sie", status=503, body=b"down")
    r = accel.get("/sie")
    assert (r.status, r.body, xc(r)) == (200, b"good", "STALE"), (r.status, r.headers)
    assert "stale-if-error" in r.header("Cache-Status", "")
    assert origin.count("/sie") == 2


@pytest.mark.accel_args("-p", "default_grace=0", "-p", "connect_timeout=1")
def test_stale_if_error_with_origin_down(origin, accel):
    origin.on("/down", body=b"good", headers={"Cache-Control": "max-age=1, stale-if-error=60"})
    origin.on("/plain", body=b"plain", headers={"Cache-Control": "max-age=1"})
    accel.get("/down")
    accel.get("/plain")
    expire(accel, "/down")
    origin.stop()
    r = accel.get("/down")
    assert (r.status, r.body, xc(r)) == (200, b"good", "STALE"), (r.status, r.headers)
    r = accel.get("/plain")                      # no stale-if-error: the failure shows
    assert r.status in (502, 503, 504), r.status


@pytest.mark.accel_args("-p", "default_grace=0")
def test_no_stale_if_error_without_the_directive_or_past_its_window(origin, accel):
    origin.on("/nosie", body=b"good", headers={"Cache-Control": "max-age=1"})
    origin.on("/short", body=b"good", headers={"Cache-Control": "max-age=1, stale-if-error=1"})
    origin.on("/mrsie", body=b"good",
              headers={"Cache-Control": "max-age=1, stale-if-error=60, must-revalidate"})
    for p in ("/nosie", "/short", "/mrsie"):
        accel.get(p)
    expire(accel, "/", ttl=2.2)                  # past max-age + the 1 s window of /short
    for p in ("/nosie", "/short", "/mrsie"):
        origin.on(p, status=503, body=b"down")
        r = accel.get(p)
        assert (r.status, r.body) == (503, b"down"), (p, r.status, r.headers)


@pytest.mark.accel_args("-p", "default_grace=0", "-p", "first_byte_timeout=0.5")
def test_stale_if_error_on_origin_timeout(origin, accel):
    origin.on("/to", body=b"good", headers={"Cache-Control": "max-age=1, stale-if-error=60"})
    accel.get("/to")
    expire(accel, "/to")
    origin.on("/to", body=b"late", delay=3, headers={"Cache-Control": "max-age=60"})
    r = accel.get("/to")
    assert (r.status, r.body, xc(r)) == (200, b"good", "STALE"), (r.status, r.headers)


def test_grace_with_validators_revalidates_in_background(origin, accel):
    origin.on("/gv", body=b"body", headers={"Cache-Control": "max-age=1", "ETag": '"g1"'})
    accel.get("/gv")
    expire(accel, "/gv")
    origin.on("/gv", status=304, headers={"Cache-Control": "max-age=60", "ETag": '"g1"',
                                          "X-Fresh": "yes"})
    r = accel.get("/gv")
    assert (r.body, xc(r)) == (b"body", "STALE")
    origin.wait_count("/gv", 2)
    assert origin.last("/gv").header("If-None-Match") == '"g1"'
    r = wait_until(lambda: (lambda r: r if r.header("X-Fresh") else None)(accel.get("/gv")),
                   timeout=5, what="the 304 to freshen the object")
    assert (r.status, r.body, xc(r)) == (200, b"body", "HIT")
    assert origin.count("/gv") == 2
