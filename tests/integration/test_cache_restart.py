"""Issue 4: warm restart -- with -s disk=DIR, objects fetched before a
SIGTERM are served after a restart on the same directory without asking the
origin (the origin is stopped)."""

import os
import signal

from client import wait_until


def xc(r):
    return r.header("X-Cache")


def test_warm_restart_serves_from_disk_with_origin_stopped(origin, start_accel, tmp_path):
    disk = tmp_path / "cache"
    disk.mkdir()
    body = bytes(range(256)) * 40
    origin.on("/persist", body=body, headers={"Cache-Control": "max-age=300", "ETag": '"p1"',
                                              "Content-Type": "application/octet-stream"})
    origin.on("/small", body=b"tiny", headers={"Cache-Control": "max-age=300"})
    a = start_accel("-s", "disk=%s" % disk, origins=[origin])
    for p in ("/persist", "/small"):
        assert a.get(p).status == 200
        assert xc(a.get(p)) == "HIT"
    a.signal(signal.SIGTERM)
    assert a.wait_exit(15) == 0, "first accel exit status\n" + a.stderr()[-2000:]
    assert os.listdir(disk), "nothing written under -s disk=%s" % disk
    origin.stop()

    b = start_accel("-s", "disk=%s" % disk, origins=[origin.addr])
    r = b.get("/persist")
    assert r.status == 200, ("after a restart with the origin stopped, /persist was not served "
                             "from the disk tier: %d %r\n%s" % (r.status, r.headers,
                                                                b.stderr()[-2000:]))
    assert r.body == body
    assert xc(r) == "HIT", r.headers
    assert r.header("ETag") == '"p1"' and r.header("Content-Type") == "application/octet-stream"
    assert int(r.header("Age")) >= 0
    assert b.get("/persist", headers={"If-None-Match": '"p1"'}).status == 304
    assert b.get("/persist", headers={"Range": "bytes=0-9"}).body == body[:10]
    r = b.get("/small")
    assert (r.status, r.body, xc(r)) == (200, b"tiny", "HIT")
    assert origin.count("/persist") == 1 and origin.count("/small") == 1


def test_disk_tier_keeps_objects_after_sigkill_once_written(origin, start_accel, tmp_path):
    """Written behind: after a clean stop everything is there; this checks
    the same directory opens again after an unclean one (no crash, no
    corrupt answers)."""
    disk = tmp_path / "cache2"
    disk.mkdir()
    origin.on("/k", body=b"kill me", headers={"Cache-Control": "max-age=300"})
    a = start_accel("-s", "disk=%s" % disk, origins=[origin], check_exit=False)
    assert a.get("/k").body == b"kill me"
    a.signal(signal.SIGKILL)
    a.wait_exit(10)
    b = start_accel("-s", "disk=%s" % disk, origins=[origin])
    r = b.get("/k")
    assert (r.status, r.body) == (200, b"kill me")
    assert origin.count("/k") in (1, 2)
