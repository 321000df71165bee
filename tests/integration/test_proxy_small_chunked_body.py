"""A chunked request body that arrives whole with its head (or after an
earlier request body grew the read buffer) reaches the origin: the first
chunk check used to decode all of it and leave nothing to forward, so the
request hung until the origin's timeout (found with issue 9's TLS tests)."""

from client import build_request


def test_small_chunked_bodies_with_the_head_reach_the_origin(origin, accel):
    origin.on("/echo", echo=True)
    with accel.conn(timeout=10) as c:
        for body, want in ((b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
                           (b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n", b"hello")):
            c.send(build_request("POST", "/echo", {"Transfer-Encoding": "chunked"}) + body)
            r = c.read_response()
            assert (r.status, r.body) == (200, want)


def test_chunked_body_after_a_large_body_on_the_same_connection(origin, accel):
    origin.on("/echo", echo=True)
    with accel.conn(timeout=10) as c:
        r = c.request("POST", "/echo", body=b"x" * 100000)
        assert (r.status, len(r.body)) == (200, 100000)
        c.send(build_request("POST", "/echo", {"Transfer-Encoding": "chunked"}) +
               b"1388\r\n" + b"y" * 5000 + b"\r\n0\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"y" * 5000)
    assert origin.last("/echo").body == b"y" * 5000
