"""Issue 4, RFC 9111 §4.4: a non-error answer to POST, PUT, DELETE or PATCH
invalidates the target URI and same-origin Location / Content-Location;
the unsafe requests themselves pass."""

import pytest


def xc(r):
    return r.header("X-Cache")


def prime(origin, accel, path, body=b"cached"):
    origin.on(path, body=body, headers={"Cache-Control": "max-age=60"})
    accel.get(path)
    r = accel.get(path)
    assert (r.body, xc(r)) == (body, "HIT")


def gets(origin, path):
    return sum(1 for r in origin.requests_for(path) if r.method == "GET")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_unsafe_method_invalidates_target(origin, accel, method):
    prime(origin, accel, "/doc")
    origin.on("/doc", body=b"after", headers={"Cache-Control": "max-age=60"})
    r = accel.request(method, "/doc", body=b"payload")
    assert (r.status, xc(r)) == (200, "PASS")
    assert origin.last("/doc").method == method and origin.last("/doc").body == b"payload"
    r = accel.get("/doc")
    assert (r.body, xc(r)) == (b"after", "MISS")
    assert gets(origin, "/doc") == 2
    assert xc(accel.get("/doc")) == "HIT"


def test_error_answer_does_not_invalidate(origin, accel):
    prime(origin, accel, "/keep")
    origin.on("/keep", status=500, body=b"failed")
    assert accel.request("POST", "/keep", body=b"x").status == 500
    origin.on("/keep", status=404, body=b"no")
    assert accel.request("DELETE", "/keep").status == 404
    r = accel.get("/keep")
    assert (r.body, xc(r)) == (b"cached", "HIT")
    assert gets(origin, "/keep") == 1


def test_location_and_content_location_invalidated_when_same_origin(origin, accel):
    for p in ("/item", "/item2", "/item3", "/item4"):
        prime(origin, accel, p)
    origin.on("/form", status=201, body=b"created",
              headers={"Location": "/item",
                       "Content-Location": "http://test.example/item2"})
    assert accel.request("POST", "/form", body=b"x").status == 201
    origin.on("/form2", status=303, body=b"see",
              headers={"Location": "http://other.example/item3",
                       "Content-Location": "//evil.example/item4"})
    assert accel.request("POST", "/form2", body=b"x").status == 303
    assert xc(accel.get("/item")) == "MISS"
    assert xc(accel.get("/item2")) == "MISS"
    assert xc(accel.get("/item3")) == "HIT"          # another host: left alone
    assert xc(accel.get("/item4")) == "HIT"
    assert [gets(origin, p) for p in ("/item", "/item2", "/item3", "/item4")] == [2, 2, 1, 1]


def test_invalidation_covers_every_variant_and_host_normalisation(origin, accel):
    cc = {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}
    origin.on("/vv", body=b"v", headers=cc)
    for lang in ("en", "fr"):
        accel.get("/vv", headers={"Accept-Language": lang})
    # same key through another spelling of the host
    assert xc(accel.get("/vv", headers={"Accept-Language": "en"}, host="TEST.example:80")) == "HIT"
    accel.request("PUT", "/vv", body=b"x", host="Test.Example")
    for lang in ("en", "fr"):
        assert xc(accel.get("/vv", headers={"Accept-Language": lang})) == "MISS", lang
    assert gets(origin, "/vv") == 4


def test_unsafe_request_does_not_touch_other_keys(origin, accel):
    prime(origin, accel, "/a")
    prime(origin, accel, "/a?x=1")
    accel.request("POST", "/a?x=1", body=b"x")
    assert xc(accel.get("/a")) == "HIT"
    assert xc(accel.get("/a?x=1")) == "MISS"
