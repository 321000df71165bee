"""Issue 14: internal requests carry the metadata of the request that caused
them.  A background refresh (an object found stale within grace) has no
client of its own; the origin must still see the real client in
X-Forwarded-For (it used to get "-") and the scheme in X-Forwarded-Proto,
and the policy's vcl_backend_fetch must see the real client.ip and
server.ip, as Varnish copies them to the backend side."""

import time

from client import wait_until
from policy_common import start_policy
from test_tls import pki, start_tls  # noqa: F401  (pki is a session fixture)
from tlscerts import TLSConn

MAXAGE = {"Cache-Control": "max-age=60"}


def xff(req):
    return [v.strip() for v in req.header("X-Forwarded-For", "").split(",")]


def refresh_of(origin, accel, path, client_headers=None, get=None):
    """Store path (max-age=1), let it go stale, ask again: the stale copy
    comes back at once and the origin sees the background refresh, which
    is returned."""
    get = get or (lambda h: accel.get(path, headers=h))
    origin.on(path, body=b"old", headers={"Cache-Control": "max-age=1"})
    assert get(client_headers).body == b"old"
    time.sleep(1.1)                 # time passing is the event: no probing request
    origin.on(path, body=b"new", headers=MAXAGE)
    r = get(client_headers)
    assert (r.body, r.header("X-Cache")) == (b"old", "STALE")
    origin.wait_count(path, 2)
    wait_until(lambda: get(None).body == b"new", timeout=5, what="the refreshed object")
    first, refresh = origin.requests_for(path)[:2]
    return first, refresh


def test_background_refresh_sends_the_real_clients_forwarding_fields(origin, accel):
    first, refresh = refresh_of(origin, accel, "/xff", {"X-Forwarded-For": "198.51.100.7"})
    assert xff(first) == ["198.51.100.7", "127.0.0.1"]
    # the refresh goes out for the client that found the object stale
    assert xff(refresh) == ["198.51.100.7", "127.0.0.1"], refresh.headers
    assert refresh.header("X-Forwarded-Proto") == "http"


BG_POLICY = r"""
sub vcl_backend_fetch {
    set bereq.http.X-Client = "" + client.ip;
    set bereq.http.X-Server = "" + server.ip;
    if (bereq.is_bgfetch) {
        set bereq.http.X-Bg = "yes";
    }
}
"""


def test_background_refresh_runs_the_policy_for_the_real_client(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, BG_POLICY, origin)
    first, refresh = refresh_of(origin, a, "/pol")
    assert (first.header("X-Client"), first.header("X-Bg")) == ("127.0.0.1", None)
    assert refresh.header("X-Bg") == "yes"
    assert refresh.header("X-Client") == "127.0.0.1", refresh.headers
    assert refresh.header("X-Server") == first.header("X-Server") == "127.0.0.1"
    assert xff(refresh) == ["127.0.0.1"]


def test_background_refresh_over_tls_keeps_the_scheme(origin, start_accel, pki):  # noqa: F811
    a = start_tls(start_accel, pki, origins=[origin])

    def get(headers):
        with TLSConn(a.tls, "a.test", pki.ca) as c:
            return c.request("GET", "/tls", headers=headers)

    first, refresh = refresh_of(origin, a, "/tls", {"X-Forwarded-For": "192.0.2.44"}, get=get)
    assert first.header("X-Forwarded-Proto") == refresh.header("X-Forwarded-Proto") == "https"
    assert xff(refresh) == ["192.0.2.44", "127.0.0.1"]
