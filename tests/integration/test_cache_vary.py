"""Issue 4, RFC 9111 §4.1: Vary variants are stored side by side and
selected by the request's normalised values of the named fields; a '*'
anywhere never matches; Accept-Encoding is not a selecting field (cache
fetches ask for identity)."""

import pytest


def xc(r):
    return r.header("X-Cache")


def test_variants_side_by_side(origin, accel):
    cc = {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}
    origin.on("/v", body=b"english", headers=cc)
    r = accel.get("/v", headers={"Accept-Language": "en"})
    assert (r.body, xc(r)) == (b"english", "MISS")
    origin.on("/v", body=b"french", headers=cc)
    r = accel.get("/v", headers={"Accept-Language": "fr"})
    assert (r.body, xc(r)) == (b"french", "MISS")
    assert origin.last("/v").header("Accept-Language") == "fr"
    origin.on("/v", body=b"none", headers=cc)
    r = accel.get("/v")                                   # absent is a variant of its own
    assert (r.body, xc(r)) == (b"none", "MISS")
    assert origin.count("/v") == 3
    for lang, body in (("en", b"english"), ("fr", b"french"), (None, b"none"),
                       ("fr", b"french"), ("en", b"english")):
        r = accel.get("/v", headers={"Accept-Language": lang} if lang else None)
        assert (r.body, xc(r)) == (body, "HIT"), lang
        assert r.header("Vary") == "Accept-Language"
    assert origin.count("/v") == 3


def test_selector_values_are_normalised(origin, accel):
    origin.on("/n", body=b"x", headers={"Cache-Control": "max-age=60", "Vary": "accept-language"})
    accel.get("/n", headers={"Accept-Language": "en,  fr"})
    r = accel.get("/n", headers={"Accept-Language": " en, fr "})
    assert xc(r) == "HIT", r.headers
    r = accel.get("/n", headers=[("Accept-Language", "en,"), ("Accept-Language", "fr")])
    assert xc(r) == "MISS"                   # "en,, fr" is another value
    assert origin.count("/n") == 2


def test_several_vary_fields(origin, accel):
    origin.on("/m", headers=[("Cache-Control", "max-age=60"), ("Vary", "X-A"), ("Vary", "X-B")])
    accel.get("/m", headers={"X-A": "1", "X-B": "1"})
    assert xc(accel.get("/m", headers={"X-A": "1", "X-B": "1"})) == "HIT"
    assert xc(accel.get("/m", headers={"X-A": "1", "X-B": "2"})) == "MISS"
    assert xc(accel.get("/m", headers={"X-A": "1"})) == "MISS"
    assert origin.count("/m") == 3


def test_accept_encoding_does_not_split_the_cache(origin, accel):
    origin.on("/ae", body=b"identity body",
              headers={"Cache-Control": "max-age=60", "Vary": "Accept-Encoding"})
    r1 = accel.get("/ae", headers={"Accept-Encoding": "gzip"})
    assert r1.body == b"identity body"
    assert origin.last("/ae").header("Accept-Encoding") == "gzip"   # the fetch asks for gzip
    r2 = accel.get("/ae", headers={"Accept-Encoding": "br"})
    r3 = accel.get("/ae")
    assert (xc(r2), xc(r3)) == ("HIT", "HIT")
    assert r3.body == b"identity body"
    assert origin.count("/ae") == 1


@pytest.mark.parametrize("vary", ["*", "Accept-Language, *", "*, Accept-Encoding"])
def test_vary_star_never_matches(origin, accel, vary):
    origin.on("/star", headers={"Cache-Control": "max-age=60", "Vary": vary})
    for _ in range(3):
        assert xc(accel.get("/star")) != "HIT"
    assert origin.count("/star") == 3
