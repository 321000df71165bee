"""The example policies in docs/examples/, run for real: backends rewritten to
the test origin (text substitution), then a few behaviours of each."""

import glob
import os

import pytest

from policy_common import EXAMPLES, run_accel, write_example

MAXAGE = {"Cache-Control": "max-age=60"}
NAMES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.vcl")))


@pytest.mark.parametrize("name", NAMES)
def test_example_compiles_as_shipped(name):
    r = run_accel("-C", "-f", os.path.join(EXAMPLES, name))
    assert r.returncode == 0, r.stderr
    assert "sub vcl_recv" in r.stdout


def start_example(start_accel, tmp_path, name, origin, **kw):
    path = write_example(tmp_path, name, origin)
    return start_accel("-f", path, origins=[], **kw)


# -- wordpress.vcl ----------------------------------------------------------------------------

def test_wordpress_static_cached_and_logged_in_passes(origin, start_accel, tmp_path):
    origin.on("/wp-content/style.css", body=b"css", headers={"Set-Cookie": "x=1"})
    origin.on("/about/", body=b"about page")                # no Cache-Control: 5m from policy
    a = start_example(start_accel, tmp_path, "wordpress.vcl", origin)
    # static: cached for everybody, cookies dropped on the way in and out
    for i in range(3):
        r = a.get("/wp-content/style.css", {"Cookie": "wordpress_logged_in_abc=1"})
        assert r.status == 200 and r.body == b"css"
        assert not r.has("Set-Cookie")
    assert origin.count("/wp-content/style.css") == 1
    assert not origin.last("/wp-content/style.css").has("Cookie")
    # an anonymous page: cached for 5 minutes, tracking cookies ignored
    r1 = a.get("/about/", {"Cookie": "_ga=GA1.2.3"})
    r2 = a.get("/about/")
    assert r1.body == r2.body == b"about page"
    assert origin.count("/about/") == 1
    # marketing parameters do not split the cache
    r3 = a.get("/about/?utm_source=news&utm_medium=mail")
    assert r3.status == 200
    assert origin.count("/about/") == 1
    # a logged-in user goes to WordPress every time
    for i in range(2):
        r = a.get("/about/", {"Cookie": "_ga=1; wordpress_logged_in_abc=admin"})
        assert r.status == 200
    assert origin.count("/about/") == 3
    assert origin.last("/about/").header("Cookie") == "wordpress_logged_in_abc=admin"
    # the admin is never cached
    for i in range(2):
        assert a.get("/wp-admin/index.php").status == 200
    assert origin.count("/wp-admin/index.php") == 2


def test_wordpress_purge_and_host_port(origin, start_accel, tmp_path):
    origin.on("/post/1", body=b"post", headers=MAXAGE)
    a = start_example(start_accel, tmp_path, "wordpress.vcl", origin)
    a.get("/post/1", host="blog.example")
    a.get("/post/1", host="blog.example:80")          # the port is dropped from the key
    assert origin.count("/post/1") == 1
    r = a.request("PURGE", "/post/1", host="blog.example")
    assert r.status == 200
    a.get("/post/1", host="blog.example")
    assert origin.count("/post/1") == 2


def test_wordpress_deliver_reports_hits(origin, start_accel, tmp_path):
    """vcl_deliver sets X-Cache from obj.hits: a second request for a cached
    page is a HIT."""
    origin.on("/page", body=b"p", headers=MAXAGE)
    a = start_example(start_accel, tmp_path, "wordpress.vcl", origin)
    r1 = a.get("/page")
    r2 = a.get("/page")
    assert origin.count("/page") == 1
    assert r1.header_all("X-Cache") == ["MISS"], r1.headers
    assert r2.header_all("X-Cache") == ["HIT"], r2.headers


# -- static.vcl ----------------------------------------------------------------------------------

def test_static_assets(origin, start_accel, tmp_path):
    origin.on("/img/logo.png", body=b"PNG", headers={"Set-Cookie": "tracking=1",
                                                     "Content-Type": "image/png"})
    origin.on("/app.js", body=b"js", headers={"Content-Type": "application/javascript"})
    a = start_example(start_accel, tmp_path, "static.vcl", origin)
    r1 = a.get("/IMG/Logo.PNG?utm_source=x", {"Cookie": "a=b"})
    r2 = a.get("/img/logo.png")
    for r in (r1, r2):
        assert r.status == 200 and r.body == b"PNG"
        assert r.header("Access-Control-Allow-Origin") == "*"
        assert not r.has("Set-Cookie")
        assert r.header("Cache-Control") == "public, max-age=2592000", r.headers
    assert origin.count("/img/logo.png") == 1
    assert origin.last("/img/logo.png").target == "/img/logo.png"
    assert not origin.last("/img/logo.png").has("Cookie")
    # a version parameter is kept, other parameters dropped: one object
    a.get("/app.js?v=3&x=1")
    a.get("/app.js?v=3")
    assert origin.count("/app.js?v=3") == 1
    assert origin.requests_for("/app.js")[0].target == "/app.js?v=3"
    # read-only, private paths refused
    r = a.request("POST", "/img/logo.png", body=b"x")
    assert r.status == 405 and r.reason == "Read-only"
    r = a.get("/private/key.pem")
    assert r.status == 403
    assert origin.count("/private/key.pem") == 0


# -- api.vcl -----------------------------------------------------------------------------------------

def test_api_short_ttl_querysort_and_synth(origin, start_accel, tmp_path):
    origin.on("/v1/items", body=b'{"items": []}', headers={"Content-Type": "application/json"})
    a = start_example(start_accel, tmp_path, "api.vcl", origin)
    r1 = a.get("/v1/items?b=2&a=1", {"Accept": "application/json"})
    r2 = a.get("/v1/items?a=1&b=2", {"Accept": "APPLICATION/JSON"})
    for r in (r1, r2):
        assert r.status == 200 and r.body == b'{"items": []}'
        assert r.header("Access-Control-Allow-Origin") == "*"
        assert r.header("X-API-Version") == "v1"
    assert origin.count("/v1/items") == 1, "sorted query, lower-cased Accept: one object"
    assert origin.last("/v1/items").target == "/v1/items?a=1&b=2"
    # credentials pass
    a.get("/v1/items?a=1&b=2", {"Authorization": "Bearer t"})
    assert origin.count("/v1/items") == 2
    # unknown version: a JSON synth from vcl_synth
    r = a.get("/items")
    assert r.status == 404
    assert r.header("Content-Type") == "application/json"
    assert r.body == b'{"error": "Unknown API version", "status": 404}'
    # CORS pre-flight answered without the origin
    r = a.request("OPTIONS", "/v1/items", {"Origin": "https://app.example",
                                           "Access-Control-Request-Headers": "X-Token"})
    assert r.status == 204
    assert r.header("Access-Control-Allow-Headers") == "X-Token"
    assert r.header("Access-Control-Max-Age") == "86400"
    assert origin.count("/items") == 0


# -- magento.vcl --------------------------------------------------------------------------------------

def test_magento_tags_purge_and_pass(origin, start_accel, tmp_path):
    origin.on("/product/42", body=b"product", headers={"Cache-Control": "max-age=600",
                                                        "X-Magento-Tags": "cat_p_42,cat_c_7"})
    origin.on("/product/43", body=b"other", headers={"Cache-Control": "max-age=600",
                                                      "X-Magento-Tags": "cat_p_43"})
    origin.on("/static/app.js", body=b"js", headers=MAXAGE)
    a = start_example(start_accel, tmp_path, "magento.vcl", origin)
    for _ in range(2):
        r = a.get("/product/42")
        assert r.status == 200 and r.body == b"product"
        assert not r.has("X-Magento-Tags") and not r.has("xkey")
        assert r.header("Cache-Control") == "no-store, no-cache, must-revalidate, max-age=0"
        a.get("/product/43")
    assert origin.count("/product/42") == 1 and origin.count("/product/43") == 1
    # xkey purge of one tag drops exactly the pages that carry it
    r = a.request("PURGE", "/", {"xkey-purge": "cat_p_42"})
    assert r.status == 200 and r.reason == "Purged 1 objects", (r.status, r.reason)
    a.get("/product/42")
    a.get("/product/43")
    assert origin.count("/product/42") == 2 and origin.count("/product/43") == 1
    # a PURGE without a header is refused by the policy
    r = a.request("PURGE", "/")
    assert r.status == 400
    # checkout passes; static files are cached even with cookies
    for _ in range(2):
        a.get("/checkout/cart")
        a.get("/static/app.js", {"Cookie": "PHPSESSID=1"})
    assert origin.count("/checkout/cart") == 2
    assert origin.count("/static/app.js") == 1


def test_magento_deliver_unsets_via(origin, start_accel, tmp_path):
    """magento.vcl's vcl_deliver unsets Via and Age; the client must not see them."""
    origin.on("/page", body=b"p", headers=MAXAGE)
    a = start_example(start_accel, tmp_path, "magento.vcl", origin)
    for i in range(2):
        r = a.get("/page")
        assert r.status == 200
        assert not r.has("Via"), "request %d: %r" % (i + 1, r.headers)
        assert not r.has("Age"), "request %d: %r" % (i + 1, r.headers)
