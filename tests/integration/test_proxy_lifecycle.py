"""Issue 2: the command line, signals and graceful shutdown, client timeouts
and limits, and the access log."""

import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from client import IncompleteResponse, build_request, free_port, port_refuses, wait_until
from conftest import ACCEL_BIN


def run_cli(*args):
    return subprocess.run([ACCEL_BIN] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=10)


# -- command line ---------------------------------------------------------------------------

def test_usage_exits_0():
    p = run_cli("-h")
    out = (p.stdout + p.stderr).decode("latin-1")
    assert p.returncode == 0, out
    for opt in ("-a", "-b", "-w", "-l", "-p"):
        assert opt in out, "usage does not mention %s:\n%s" % (opt, out)


@pytest.mark.parametrize("args", [
    ["-x"],
    ["-w", "abc"],
    ["-w", "-3"],
    ["-a", "nonsense"],
    ["-a", "127.0.0.1:99999"],
    ["-b", "127.0.0.1:notaport"],
    ["-p", "no_such_parameter=1"],
    ["-p", "timeout_idle=abc"],
    ["-p", "timeout_idle=-1"],
    ["-p", "timeout_idle=5parsecs"],
    ["-p", "max_connections="],
    ["-p", "max_head_bytes"],
    ["-b"],
], ids=lambda a: " ".join(a))
def test_bad_argument_exits_2_with_message(args):
    full = [] if "-b" in args else ["-b", "127.0.0.1:1"]
    full += [] if "-a" in args else ["-a", "127.0.0.1:%d" % free_port()]
    full += list(args)
    p = run_cli(*full)
    assert p.returncode == 2, "rc %s for %r\nstderr: %s" % (p.returncode, full, p.stderr)
    assert p.stderr.strip(), "no message on stderr for %r" % (full,)


def test_durations_accept_units_and_fractions(origin, start_accel):
    a = start_accel("-p", "timeout_idle=500ms", "-p", "first_byte_timeout=2s",
                    "-p", "connect_timeout=0.5", "-p", "between_bytes_timeout=1.5",
                    origins=[origin])
    assert a.get("/units").status == 200


# -- signals and draining -------------------------------------------------------------------

def test_graceful_shutdown_finishes_in_flight_request(origin, start_accel):
    gate = threading.Event()
    origin.on("/inflight", gate=gate, body=b"done")
    a = start_accel("-p", "drain_timeout=20", origins=[origin], defaults=False)
    with a.conn(timeout=20) as c:
        c.send(build_request("GET", "/inflight"))
        origin.wait_head("/inflight")
        a.signal(signal.SIGTERM)
        wait_until(lambda: port_refuses(a.port), 10, "accel to stop accepting")
        gate.set()
        r = c.read_response()
        assert (r.status, r.body) == (200, b"done")
    assert a.wait_exit(20) == 0


def test_sigterm_with_only_idle_connections_exits_promptly(origin, start_accel):
    a = start_accel("-p", "drain_timeout=60", origins=[origin], defaults=False)
    with a.conn(timeout=20) as idle:
        assert idle.request("GET", "/x").status == 200      # now idle in keep-alive
        a.signal(signal.SIGTERM)
        rc = a.wait_exit(15)
        assert rc is not None, "an idle keep-alive connection held the drain (60 s)"
        assert rc == 0
        assert idle.wait_closed(5)


def test_sigint_exits_0(origin, start_accel):
    a = start_accel(origins=[origin])
    assert a.get("/x").status == 200
    a.signal(signal.SIGINT)
    assert a.wait_exit(15) == 0


def test_drain_timeout_bounds_shutdown(origin, start_accel):
    origin.on("/forever", gate=threading.Event())
    a = start_accel("-p", "drain_timeout=1", origins=[origin], defaults=False)
    with a.conn(timeout=20) as c:
        c.send(build_request("GET", "/forever"))
        origin.wait_head("/forever")
        a.signal(signal.SIGTERM)
        rc = a.wait_exit(15)
        assert rc is not None, "accel still running 15 s after SIGTERM with drain_timeout=1"
        assert rc == 0
        try:
            r = c.read_response()
            assert r.status >= 500, "in-flight request answered %d after the drain" % r.status
        except (IncompleteResponse, ConnectionResetError):
            pass


# -- client timeouts and limits -------------------------------------------------------------

@pytest.mark.accel_args("-p", "timeout_idle=2")
def test_idle_keepalive_connection_closed(origin, accel):
    with accel.conn(timeout=10) as c:
        assert c.request("GET", "/a").status == 200
        assert c.request("GET", "/b").status == 200       # keep-alive works first
        assert c.wait_closed(10), "idle connection still open 10 s after timeout_idle=2"


def _trickle_until_closed(c, data, step, limit):
    """Send `data` one piece per `step` seconds; True when accel closed (or
    answered and closed) within `limit` seconds."""
    deadline = time.monotonic() + limit
    i = 0
    while time.monotonic() < deadline:
        if i < len(data):
            try:
                c.send(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True
            i += 1
        r, _, _ = select.select([c.sock], [], [], step)
        if r:
            try:
                got = c.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not got:
                return True
            c.buf += got            # e.g. a 408; the close must follow
            return c.wait_closed(max(0.1, deadline - time.monotonic()))
    return False


@pytest.mark.accel_args("-p", "timeout_req_head=1")
def test_request_head_deadline_closes_trickling_client(origin, accel):
    with accel.conn(timeout=10) as c:
        head = build_request("GET", "/trickle", {"X-Pad": "p" * 2000})
        assert _trickle_until_closed(c, head, 0.05, 10), \
            "a client trickling its head was not closed 10 s after timeout_req_head=1"
    assert origin.count("/trickle") == 0


@pytest.mark.accel_args("-p", "min_body_rate=1000")
def test_min_body_rate_closes_slow_uploader(origin, accel):
    origin.on("/upload", echo=True)
    with accel.conn(timeout=20) as c:
        c.send(build_request("POST", "/upload", {"Content-Length": "1000000"}) + b"b" * 100)
        # about 50 bytes/s, far below 1000 bytes/s
        assert _trickle_until_closed(c, b"b" * 2000, 0.2, 16), \
            "a client sending 50 B/s was not closed within 16 s (min_body_rate=1000, 5 s windows)"
    assert origin.count("/upload") == 0


def test_max_connections_refuses_gracefully(origin, start_accel):
    a = start_accel("-p", "max_connections=3", origins=[origin], workers=1)
    held = [a.conn(timeout=10) for _ in range(3)]
    try:
        for i, c in enumerate(held):
            assert c.request("GET", "/held/%d" % i).status == 200
        extra = a.conn(timeout=5)
        try:
            extra.send(build_request("GET", "/extra"))
            try:
                r = extra.read_response()
                assert r.status == 503, "connection over the limit answered %d" % r.status
            except (IncompleteResponse, ConnectionResetError):
                pass                                        # closed: also fine
            except socket.timeout:
                raise AssertionError("connection over max_connections hung (no answer, "
                                     "no close in 5 s)")
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            extra.close()
        held.pop().close()                                   # room again

        def served():
            try:
                with a.conn(timeout=5) as c:
                    return c.request("GET", "/again").status == 200
            except (IncompleteResponse, ConnectionResetError, BrokenPipeError):
                return False
        wait_until(served, 10, "a connection to be served after one was closed", step=0.1)
    finally:
        for c in held:
            c.close()


# -- access log -----------------------------------------------------------------------------

NCSA = re.compile(r'^(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) '
                  r'\[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
                  r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
                  r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)"(?P<rest>.*)$')


def test_access_log_line_format(origin, start_accel):
    a = start_accel(origins=[origin], log=True)
    origin.on("/logged", body=b"0123456789", status=201)
    r = a.get("/logged?x=1", headers={"Referer": "http://ref.example/",
                                      "User-Agent": "itest-agent/1.0"})
    assert r.status == 201
    lines = a.wait_access_log(1)
    assert len(lines) == 1, lines
    m = NCSA.match(lines[0])
    assert m, "not NCSA combined: %r" % lines[0]
    assert m["host"] == "127.0.0.1"
    assert m["request"] == "GET /logged?x=1 HTTP/1.1"
    assert m["status"] == "201"
    assert m["bytes"] == "10"
    assert m["referer"] == "http://ref.example/"
    assert m["agent"] == "itest-agent/1.0"
    rest = m["rest"].split()
    assert len(rest) >= 2, "no duration and upstream status after the combined fields: %r" % (
        lines[0])
    assert any(re.fullmatch(r"\d+(\.\d+)?(ms|s|us)?", t) for t in rest), rest
    assert "201" in rest, "upstream status missing: %r" % rest


def test_access_log_one_line_per_request_with_upstream_error(start_accel):
    a = start_accel(origins=["127.0.0.1:%d" % free_port()], log=True)
    with a.conn() as c:
        assert c.request("GET", "/e1").status == 502
    assert a.get("/e2").status == 502
    lines = a.wait_access_log(2)
    assert len(lines) == 2
    ms = [NCSA.match(line) for line in lines]
    assert all(m and m["status"] == "502" for m in ms), lines
    # workers log independently: two workers' lines need not be in time order
    assert sorted(m["request"] for m in ms) == ["GET /e1 HTTP/1.1", "GET /e2 HTTP/1.1"]


def test_access_log_to_stdout(origin, start_accel):
    a = start_accel("-l", "-", origins=[origin])
    assert a.get("/to-stdout").status == 200
    line = wait_until(lambda: [l for l in a.stdout().split("\n") if "/to-stdout" in l], 10,
                      "the access log line on stdout")[0]
    assert NCSA.match(line), line


def test_bad_request_is_logged(origin, start_accel):
    a = start_accel(origins=[origin], log=True)
    with a.conn(timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n")
        assert c.read_response().status == 400
    lines = a.wait_access_log(1)
    assert NCSA.match(lines[0]) and ' 400 ' in lines[0], lines


def test_access_log_line_for_response_the_client_abandoned(origin, start_accel):
    a = start_accel(origins=[origin], log=True)
    origin.on("/abandoned", stream=(65536, 64 << 20), headers={"Cache-Control": "no-store"})
    with a.conn(timeout=10) as c:
        c.send(build_request("GET", "/abandoned"))
        assert c.read_head().status == 200
    lines = a.wait_access_log(1, timeout=15)
    m = NCSA.match(lines[0])
    assert m and m["request"] == "GET /abandoned HTTP/1.1", lines
    assert m["bytes"] == "-" or int(m["bytes"]) < 64 << 20, lines


def test_stderr_lines_carry_timestamps(start_accel):
    a = start_accel(origins=["127.0.0.1:%d" % free_port()])
    assert a.get("/refused").status == 502          # an origin error worth logging
    a.signal(signal.SIGTERM)
    assert a.wait_exit(15) == 0
    lines = [l for l in a.stderr().split("\n") if l.strip()]
    assert lines
    for l in lines:
        assert re.match(r"^\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}", l), \
            "stderr line without a timestamp: %r" % l
