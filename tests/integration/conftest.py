"""Fixtures: a scripted origin and a real accel in front of it.

    def test_x(origin, accel):                 # accel -b origin, defaults below
        origin.on("/a", body=b"hi")
        r = accel.get("/a")

    @pytest.mark.accel_args("-p", "first_byte_timeout=0.5", workers=1)
    def test_y(origin, accel): ...             # extra arguments for the fixture

    def test_z(origin, start_accel):           # any number, any arguments
        a = start_accel("-p", "max_connections=2", origins=[origin], workers=1)

    def test_w(origin, make_origin, start_accel):  # several origins: round robin
        a = start_accel(origins=[origin, make_origin()], log=True)

start_accel keywords: origins (Origin objects or "host:port"), workers (-w,
default 2), log (True: -l to a temp file, see access_log()/wait_access_log()),
listen (number of -a addresses, ports in .ports), defaults (False drops the
short drain_timeout the fixture adds), check_exit.  An Accel has .port, .pid,
get()/request()/get_many()/conn() (client.Conn), stderr()/wait_stderr(),
stdout(), rss()/rss_peak(), signal(sig) (a test-intended signal: teardown then
accepts the exit), wait_exit(timeout).

Everything is stopped by PID at teardown (SIGTERM, then SIGKILL).  Teardown
fails the test when accel died on its own, exited non-zero after SIGTERM, or
printed a sanitizer report.  ACCEL_BIN names the binary (default: build/accel).
"""

import os
import re
import signal
import subprocess
import threading

import pytest

from client import Conn, free_port, request, wait_until
from origin import Origin

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ACCEL_BIN = os.environ.get("ACCEL_BIN") or os.path.join(REPO, "build", "accel")



def _sanitized(path):
    """True when the binary was built with ASan or TSan (memory figures and
    speeds mean nothing then)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


SANITIZED = _sanitized(ACCEL_BIN)

# Short enough that a teardown with a stuck connection stays quick; tests of
# the drain itself pass their own value.
DEFAULT_ARGS = ["-p", "drain_timeout=3"]
DEFAULT_WORKERS = 2
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")


def pytest_configure(config):
    config.addinivalue_line("markers", "accel_args(*args, workers=N, log=bool): arguments "
                            "for the accel fixture")


class Accel:
    """One running accel process."""

    def __init__(self, args, tmpdir, origins, workers, log, listen=None, check_exit=True):
        self.tmpdir = tmpdir
        self.origins = origins
        self.check_exit = check_exit
        self.expect_exit = False
        self.stderr_path = os.path.join(tmpdir, "accel-%d.stderr" % id(self))
        self.stdout_path = os.path.join(tmpdir, "accel-%d.stdout" % id(self))
        self.log_path = os.path.join(tmpdir, "access-%d.log" % id(self)) if log else None
        last_err = None
        for _attempt in range(3):          # a free port can be taken between bind and exec
            ports = [free_port() for _ in range(listen or 1)]
            argv = [ACCEL_BIN]
            for p in ports:
                argv += ["-a", "127.0.0.1:%d" % p]
            for o in origins:
                argv += ["-b", o if isinstance(o, str) else o.addr]
            if workers is not None:
                argv += ["-w", str(workers)]
            if self.log_path:
                argv += ["-l", self.log_path]
            argv += list(args)
            self.argv = argv
            self.ports = ports
            self.port = ports[0]
            self._err = open(self.stderr_path, "wb")
            self._out = open(self.stdout_path, "wb")
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                         stderr=self._err)
            self.pid = self.proc.pid
            try:
                for p in ports:
                    self.wait_stderr(r"listening on 127\.0\.0\.1:%d\b" % p, timeout=10)
                return
            except AssertionError as e:
                last_err = e
                if self.proc.poll() is None:
                    self._kill()
                if "Address already in use" not in self.stderr():
                    break
        raise AssertionError("accel did not start: %s\nargv: %s\nstderr:\n%s"
                             % (last_err, " ".join(argv), self.stderr()[-3000:]))

    # -- output ----------------------------------------------------------------------

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("latin-1")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("latin-1")

    def wait_stderr(self, regex, timeout=10.0):
        rx = re.compile(regex)

        def seen():
            if rx.search(self.stderr()):
                return True
            if self.proc.poll() is not None:
                raise AssertionError("accel exited (rc %s) before logging /%s/"
                                     % (self.proc.returncode, regex))
            return False
        wait_until(seen, timeout, "accel stderr /%s/" % regex)

    def access_log(self):
        """Lines of the access log file so far (complete lines only)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return []
        with open(self.log_path, "rb") as f:
            data = f.read().decode("latin-1")
        return data.split("\n")[:-1]

    def wait_access_log(self, n=1, timeout=10.0, lines=None):
        get = lines or self.access_log
        return wait_until(lambda: len(get()) >= n and get(), timeout,
                          "%d access log line(s)" % n)

    # -- requests ----------------------------------------------------------------------

    def conn(self, timeout=10.0, port=None):
        return Conn(port or self.port, timeout=timeout)

    def get(self, target="/", headers=None, **kw):
        return request(self.port, "GET", target, headers, **kw)

    def request(self, method="GET", target="/", headers=None, body=None, **kw):
        return request(self.port, method, target, headers, body, **kw)

    def get_many(self, target, clients=8, headers=None):
        """The same GET from `clients` concurrent connections."""
        out = [None] * clients

        def run(i):
            try:
                out[i] = self.get(target, headers)
            except Exception as e:  # reported through the list
                out[i] = e
        ts = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        for r in out:
            if isinstance(r, Exception):
                raise r
        return out

    def stat(self, name):
        pytest.skip("accel has no stats interface yet (comes with a later issue)")

    # -- process -------------------------------------------------------------------------

    def _status(self, field):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def rss(self):
        """Resident set size in bytes (VmRSS), or None when the process is gone."""
        return self._status("VmRSS")

    def rss_peak(self):
        """High-water mark of the resident set size in bytes (VmHWM)."""
        return self._status("VmHWM")

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        """Send a signal the test means to send (teardown then accepts an exit)."""
        self.expect_exit = True
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def wait_exit(self, timeout=15.0):
        """Wait for the process to exit; its return code, or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=15.0):
        """SIGTERM, wait, SIGKILL; the exit status of the SIGTERM, or a string
        saying it hung."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            rc = self.wait_exit(timeout)
            if rc is None:
                self._kill()
                rc = "hung %.0fs after SIGTERM (killed)" % timeout
        else:
            rc = self.proc.returncode
        for f in (self._out, self._err):
            f.close()
        return rc

    def _kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def teardown(self):
        died = self.proc.poll()
        rc = self.stop()
        problems = []
        if died is not None and not self.expect_exit:
            problems.append("accel died during the test (rc %s)" % died)
        elif self.check_exit and rc != 0:
            problems.append("accel exit status after SIGTERM: %s" % rc)
        err = self.stderr()
        if any(m in err for m in SANITIZER_MARKS):
            problems.append("sanitizer report on stderr")
        if problems:
            raise AssertionError("; ".join(problems) + "\nstderr tail:\n" + err[-3000:])


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


@pytest.fixture
def make_origin():
    """Factory for extra origins: o2 = make_origin()."""
    made = []

    def make():
        o = Origin()
        made.append(o)
        return o
    yield make
    for o in made:
        o.stop()


@pytest.fixture
def start_accel(tmp_path):
    """Factory: start_accel(*args, origins=[...], workers=N, log=False, listen=1)."""
    started = []

    def start(*args, origins=(), workers=DEFAULT_WORKERS, log=False, listen=None,
              defaults=True, check_exit=True):
        a = Accel((DEFAULT_ARGS if defaults else []) + list(args), str(tmp_path),
                  list(origins), workers, log, listen, check_exit)
        started.append(a)
        return a
    yield start
    errors = []
    for a in started:
        try:
            a.teardown()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def accel(request, origin, start_accel):
    """accel in front of `origin`; @pytest.mark.accel_args(...) adds arguments."""
    m = request.node.get_closest_marker("accel_args")
    args = list(m.args) if m else []
    kw = dict(m.kwargs) if m else {}
    return start_accel(*args, origins=[origin], **kw)


