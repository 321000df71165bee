"""A bounded storm: many clients at once on cacheable paths whose origin
misbehaves in every way the origin script knows (truncated, reset, dropped,
bad chunked framing, garbage, slow), mixed with good paths, grace refreshes,
purges and bans.  Whatever each client gets, accel must keep serving and
must not crash or trip a sanitizer (the fixture's teardown checks both), and
a truncated body must never be delivered as a whole one."""

import random
import threading

import pytest

from client import Conn, IncompleteResponse

CC = {"Cache-Control": "max-age=1, stale-while-revalidate=1"}

SCRIPTS = {
    "/ok": dict(body=b"x" * 3000, headers=CC),
    "/ok-chunked": dict(body=b"y" * 9000, chunked=True, chunk_size=1000, headers=CC),
    "/trunc": dict(body=b"z" * 5000, truncate_after=1200, headers=CC),
    "/trunc-chunked": dict(body=b"w" * 5000, chunked=True, chunk_size=700, truncate_after=1500,
                           headers=CC),
    "/reset": dict(reset=True),
    "/drop": dict(drop=True),
    "/garbage": dict(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    "/badchunk": dict(raw=b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nXYZ\r\n"),
    "/slow": dict(body=b"s" * 2000, delay=0.2, headers=CC),
    "/vary": dict(body=b"v" * 100, headers=dict(CC, Vary="Accept-Language")),
    "/uncacheable": dict(body=b"u" * 100, headers={"Set-Cookie": "a=b"}),
}


@pytest.mark.accel_args("-p", "first_byte_timeout=1", "-p", "between_bytes_timeout=1",
                        "-p", "max_object_size=6000")
def test_storm_of_misbehaving_origins_leaves_accel_serving(origin, accel):
    for path, script in SCRIPTS.items():
        origin.on(path, **script)
    paths = list(SCRIPTS)
    problems = []
    lock = threading.Lock()

    def client(seed):
        rnd = random.Random(seed)
        for _ in range(25):
            path = rnd.choice(paths)
            try:
                with Conn(accel.port, timeout=5) as c:
                    method = rnd.choice(["GET", "GET", "GET", "HEAD", "PURGE"])
                    hdrs = {"Accept-Language": rnd.choice(["en", "fr"])}
                    if rnd.random() < 0.2:
                        hdrs["Range"] = "bytes=0-99"
                    r = c.request(method, path, hdrs)
                    if method == "GET" and r.status == 200 and path.startswith("/ok"):
                        want = SCRIPTS[path]["body"]
                        if r.body != want:
                            with lock:
                                problems.append("%s: %d bytes, not the whole body" %
                                                (path, len(r.body)))
            except IncompleteResponse:
                pass                    # a truncated body must end with a close: fine
            except (ConnectionError, OSError):
                pass

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert problems == []
    # still serving
    origin.on("/after", body=b"fine", headers={"Cache-Control": "max-age=60"})
    assert accel.get("/after").body == b"fine"
    assert accel.get("/after").header("X-Cache") == "HIT"
