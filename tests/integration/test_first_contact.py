"""First contact: what a new user and an operator hit in the first hour.

Each bug of the issue has a test here that fails on the tree before it
(browser-style request-targets answered 400, SIGUSR1 killing accel, -a
without a port listening on :80, -C accepting policies start-up refuses,
SYNTH and 400 reasons missing from the log, PURGE's JSON as text/plain), and
each message a test that checks its words."""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import pytest

from client import Conn, free_port, request, wait_until
from conftest import ACCEL_BIN, REPO
from policy_common import EXAMPLES, run_accel, start_policy, write_example, write_vcl

MAXAGE = {"Cache-Control": "max-age=60"}
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[[A-Z]+\] "


def raw(port, data, timeout=10.0):
    """Send raw request bytes; the response (client.Response)."""
    with Conn(port, timeout=timeout) as c:
        c.send(data)
        return c.read_response()


def admin_port_args():
    port = free_port()
    return port, ["-T", "127.0.0.1:%d" % port]


# -- request-targets: liberal by default, strict on demand -----------------------------------

BROWSER_TARGETS = [
    "/catalog?filter[color]=red&filter[size][]=m",    # PHP / Magento
    "/search?q=a|b^c",
    '/api?json={"a":1}',
    "/win\\path",
    "/caf\xc3\xa9?p=100%",
    "/q?p=%zz",
]


@pytest.mark.parametrize("target", BROWSER_TARGETS)
def test_browser_style_targets_reach_the_origin_as_sent(origin, accel, target):
    r = raw(accel.port, b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert r.status == 200, r.body
    seen = origin.last()
    assert seen is not None and seen.target == target    # forwarded as received


@pytest.mark.accel_args("-p", "uri_strict=on")
def test_uri_strict_keeps_the_rfc3986_grammar(origin, accel):
    r = raw(accel.port, b"GET /catalog?filter[color]=red HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert r.status == 400
    assert r.body == (b"Bad request: character not allowed in request-target (uri_strict) "
                      b"(byte 19)\n")
    assert raw(accel.port, b"GET /catalog?filter%5Bcolor%5D=red HTTP/1.1\r\n"
                           b"Host: shop\r\n\r\n").status == 200
    assert origin.count("/catalog") == 1


@pytest.mark.parametrize("bad,why,at", [
    (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", "control character in request-target", 6),
    (b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", "control character in request-target", 6),
    (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", "DEL in request-target", 6),
    (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "space in request-target", 6),
    (b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", "NUL in request-target", 6),
])
def test_smuggling_bytes_stay_refused_and_the_answer_says_why(origin, accel, bad, why, at):
    r = raw(accel.port, bad)
    assert r.status == 400
    assert r.body == ("Bad request: %s (byte %d)\n" % (why, at)).encode()
    assert origin.requests == []


def test_a_raw_and_a_percent_encoded_target_are_one_object(origin, accel):
    origin.on("/catalog", body=b"red things", headers=MAXAGE)
    r1 = raw(accel.port, b"GET /catalog?f[color]=red HTTP/1.1\r\nHost: shop\r\n\r\n")
    r2 = raw(accel.port, b"GET /catalog?f%5Bcolor%5D=red HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert (r1.status, r2.status) == (200, 200)
    assert r2.header("X-Cache") == "HIT" and r2.body == b"red things"
    assert origin.count("/catalog") == 1
    # a purge of either spelling drops the one object
    p = raw(accel.port, b"PURGE /catalog?f%5bcolor%5d=red HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert p.status == 404          # lower-case escapes are kept as sent: another key
    p = raw(accel.port, b"PURGE /catalog?f[color]=red HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert p.status == 200 and json.loads(p.body) == {"purged": 1, "mode": "hard"}


def test_under_a_policy_hash_data_uses_the_canonical_form(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, "", origin)
    origin.on("/p", body=b"x", headers=MAXAGE)
    assert raw(a.port, b"GET /p?a[]=1 HTTP/1.1\r\nHost: h\r\n\r\n").status == 200
    r = raw(a.port, b"GET /p?a%5B%5D=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.status == 200 and r.header("X-Cache") == "HIT"
    assert origin.count("/p") == 1


# -- signals ------------------------------------------------------------------------------------

def test_sigusr1_reopens_the_access_and_error_logs(origin, tmp_path):
    """logrotate moves the files, `kill -USR1` (the nginx convention): accel
    lives on and writes to new files of the same names."""
    err = str(tmp_path / "error.log")
    alog = str(tmp_path / "access.log")
    port = free_port()
    p = subprocess.Popen([ACCEL_BIN, "-a", "127.0.0.1:%d" % port, "-b", origin.addr, "-w", "2",
                          "-e", err, "-l", alog, "-p", "drain_timeout=3"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)

    def has(path, what):
        return os.path.exists(path) and what in open(path, errors="replace").read()
    try:
        # the error log has the listening line: start-up went to the file
        wait_until(lambda: has(err, "listening on 127.0.0.1:%d" % port) or p.poll() is not None,
                   10, "accel to start")
        assert p.poll() is None
        assert request(port, "GET", "/before").status == 200
        wait_until(lambda: has(alog, "/before"), 10, "the first access line")
        os.rename(alog, alog + ".1")
        os.rename(err, err + ".1")
        os.kill(p.pid, signal.SIGUSR1)
        wait_until(lambda: has(err, "access log"), 10, "the new error log")
        assert p.poll() is None                             # alive: not "exit 138"
        assert request(port, "GET", "/after").status == 200
        wait_until(lambda: has(alog, "/after"), 10, "the access line in the new file")
        assert not has(alog + ".1", "/after")
        new_err = open(err).read()
        assert re.search(TS + r"SIGUSR1: error log \S+error\.log reopened", new_err), new_err
        assert re.search(TS + r"SIGUSR1: access log \S+access\.log reopened", new_err), new_err
        assert "SIGUSR1" not in open(err + ".1").read()
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGPIPE, signal.SIGALRM,
                                 signal.SIGVTALRM, signal.SIGPROF, signal.SIGIO, signal.SIGPWR,
                                 signal.SIGRTMIN + 3])
def test_stray_signals_do_not_kill_accel(origin, accel, sig):
    os.kill(accel.pid, sig)
    if sig != signal.SIGPIPE:       # SIGPIPE is ignored outright
        accel.wait_stderr(r"\[WARN\] signal %d \(.*\) from pid %d ignored: SIGHUP reloads, "
                          r"SIGUSR1 reopens the logs" % (sig, os.getpid()))
    else:
        time.sleep(0.3)
    assert accel.alive()
    assert accel.get("/").status == 200


def test_sighup_without_a_policy_says_there_is_nothing_to_reload(origin, accel):
    os.kill(accel.pid, signal.SIGHUP)
    accel.wait_stderr(r"nothing to reload \(no policy file -f, no certificates -c\)")
    assert accel.alive()


# -- the command line ---------------------------------------------------------------------------

def test_a_listen_address_without_a_port_is_refused():
    r = run_accel("-a", "127.0.0.1", "-b", "127.0.0.1:9", timeout=10)
    assert r.returncode == 2
    assert ("accel: -a 127.0.0.1: no port (expected ADDR:PORT, e.g. -a 127.0.0.1:8080, or "
            "-a :PORT for every address)") in r.stderr
    r = run_accel("-T", "localhost", "-b", "127.0.0.1:9", timeout=10)
    assert r.returncode == 2 and "accel: -T localhost: no port" in r.stderr


def test_bad_addresses_name_their_flag():
    r = run_accel("-a", "nonsense.invalid:80", "-b", "127.0.0.1:9")
    assert r.returncode == 2
    assert re.search(r"^accel: -a nonsense\.invalid:80: cannot resolve host 'nonsense\.invalid': ",
                     r.stderr, re.M), r.stderr
    r = run_accel("-b", "nonsense.invalid")
    assert r.returncode == 2
    assert re.search(r"^accel: -b nonsense\.invalid: cannot resolve host 'nonsense\.invalid': ",
                     r.stderr, re.M), r.stderr
    r = run_accel("-b", "127.0.0.1:99999")
    assert r.returncode == 2
    assert "accel: -b 127.0.0.1:99999: invalid port '99999' (expected 0-65535)" in r.stderr


def test_missing_and_unusable_files_say_why_and_which_flag(tmp_path):
    missing = str(tmp_path / "missing.vcl")
    r = run_accel("-f", missing, "-a", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1
    assert r.stderr.strip() == "accel: -f %s: No such file or directory" % missing
    r = run_accel("-f", str(tmp_path), "-a", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1 and "accel: -f %s: Is a directory" % tmp_path in r.stderr
    r = run_accel("-C", "-f", str(tmp_path))
    assert r.returncode == 1 and "accel: -f %s: Is a directory" % tmp_path in r.stderr
    # certificates and keys: the system's words, not OpenSSL's "system lib"
    pem = str(tmp_path / "nope.pem")
    r = run_accel("-a", "127.0.0.1:%d,tls" % free_port(), "-c", pem, "-b", "127.0.0.1:9")
    assert r.returncode == 1
    assert "-c %s: certificate %s: No such file or directory" % (pem, pem) in r.stderr
    assert "system lib" not in r.stderr
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate\n")
    r = run_accel("-C", "-b", "127.0.0.1:9", "-c", "%s,%s" % (cert, tmp_path))
    assert r.returncode == 1
    assert "-c %s,%s: private key %s: Is a directory" % (cert, tmp_path, tmp_path) in r.stderr
    r = run_accel("-S", str(tmp_path), "-b", "127.0.0.1:9")
    assert r.returncode == 2 and "accel: -S %s: Is a directory" % tmp_path in r.stderr
    ca = str(tmp_path / "ca.pem")
    r = run_accel("-C", "-b", "https://127.0.0.1:9", "-p", "origin_ca_file=" + ca)
    assert r.returncode == 1
    assert "accel: -p origin_ca_file=%s: No such file or directory" % ca in r.stderr
    r = run_accel("-e", str(tmp_path / "no" / "dir" / "err.log"), "-b", "127.0.0.1:9",
                  "-a", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1
    assert "-e %s: No such file or directory" % (tmp_path / "no" / "dir" / "err.log") in r.stderr


def test_an_unreadable_file_says_permission_denied(tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run accel as another user")
    vcl = tmp_path / "site.vcl"
    vcl.write_text('vcl 4.1;\nbackend default { .host = "127.0.0.1"; .port = "9"; }\n')
    os.chmod(str(vcl), 0o600)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(as_nobody + [ACCEL_BIN, "-h"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        pytest.skip("the accel binary is not reachable for user nobody")
    r = subprocess.run(as_nobody + [ACCEL_BIN, "-C", "-f", str(vcl)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=20)
    assert r.returncode == 1
    assert "accel: -f %s: Permission denied" % vcl in r.stderr


def test_one_worker_is_one_worker_and_the_admin_listener_says_admin(origin, start_accel):
    port, targs = admin_port_args()
    a = start_accel(*targs, origins=[origin], workers=1)
    a.wait_stderr(r"listening on 127\.0\.0\.1:%d \(1 worker\)" % a.port)
    a.wait_stderr(r"admin listening on 127\.0\.0\.1:%d \(purge, ban, stats, reload\)" % port)
    assert "1 workers" not in a.stderr()


def test_an_admin_listener_off_loopback_without_a_secret_is_warned_about(origin, start_accel,
                                                                         tmp_path):
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes
    # before the bind, which then fails, so nothing listens off loopback.
    r = run_accel("-T", "192.0.2.1:6082", "-b", origin.addr, "-a", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1
    assert re.search(r"\[WARN\] -T 192\.0\.2\.1:6082 is not a loopback address and there is "
                     r"no -S secret: anyone who can reach it may purge, ban and reload; give -S "
                     r"FILE or listen on 127\.0\.0\.1", r.stderr), r.stderr
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    r = run_accel("-T", "192.0.2.1:6082", "-S", str(secret), "-b", origin.addr,
                  "-a", "127.0.0.1:%d" % free_port())
    assert "is not a loopback address" not in r.stderr
    b = start_accel("-T", "127.0.0.1:%d" % free_port(), origins=[origin])
    assert "is not a loopback address" not in b.stderr()


def test_pidfile_is_written_locked_and_removed(origin, start_accel, tmp_path):
    pidfile = str(tmp_path / "accel.pid")
    a = start_accel("-P", pidfile, origins=[origin])
    wait_until(lambda: os.path.exists(pidfile), 10, "pidfile")
    assert open(pidfile).read() == "%d\n" % a.pid
    r = run_accel("-P", pidfile, "-b", origin.addr, "-a", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1
    assert "-P %s: another accel is running with it (pid %d)" % (pidfile, a.pid) in r.stderr
    assert open(pidfile).read() == "%d\n" % a.pid       # the loser did not touch it
    a.expect_exit = True
    assert a.stop() == 0
    assert not os.path.exists(pidfile)


def test_explain_without_a_policy_runs_the_builtin_one(origin):
    r = run_accel("-b", origin.addr, "-x", "explain", "GET /a?f[x]=1", "-H", "Host: shop")
    assert r.returncode == 0, r.stderr
    assert "vcl_recv:" in r.stdout and "=> hash" in r.stdout
    assert 'cache key: "/a?f%5Bx%5D=1|shop|"' in r.stdout
    r = run_accel("-b", origin.addr, "-x", "explain", "GET /", "-H", "Cookie: sid=1")
    assert r.returncode == 0 and "=> pass" in r.stdout


def test_unknown_vmod_error_lists_every_vmod(tmp_path):
    path = write_vcl(tmp_path, "import geoip2;\n")
    r = run_accel("-C", "-f", path)
    assert r.returncode == 1
    assert ("vmod 'geoip2' is not provided by accel (known: std, directors, xkey, cookie, var, "
            "tls;") in r.stderr


# -- -C checks what start-up checks --------------------------------------------------------------

def check_and_start(tmp_path, body):
    """(-C result, start-up result) for a policy; start-up must fail too."""
    path = write_vcl(tmp_path, body)
    c = run_accel("-C", "-f", path)
    s = run_accel("-f", path, "-a", "127.0.0.1:%d" % free_port(), timeout=20)
    return path, c, s


def test_check_refuses_an_unresolvable_backend_with_its_place(tmp_path):
    path, c, s = check_and_start(tmp_path, 'backend web {\n    .host = "nosuch.invalid";\n}\n')
    want = ("%s:3:13: error: backend web: cannot resolve host 'nosuch.invalid': " % path)
    assert c.returncode == 1 and want in c.stderr, c.stderr
    assert "accel: -C: 1 problem: accel would not start" in c.stderr
    assert c.stdout == ""
    assert s.returncode == 1 and want in s.stderr


def test_check_refuses_an_unreadable_ca_file_with_its_place(tmp_path):
    ca = str(tmp_path / "ca.pem")
    path, c, s = check_and_start(
        tmp_path, 'backend api { .host = "127.0.0.1"; .ssl = true;\n  .ssl_ca_file = "%s"; }\n' % ca)
    want = "%s:3:18: error: backend api: .ssl_ca_file %s: No such file or directory" % (path, ca)
    assert c.returncode == 1 and want in c.stderr, c.stderr
    assert s.returncode == 1 and want in s.stderr


def test_check_refuses_unix_socket_backends_with_its_place(tmp_path):
    path, c, s = check_and_start(tmp_path, 'backend app { .path = "/run/app.sock"; }\n')
    want = ('%s:2:23: error: backend app: .path "/run/app.sock": unix-socket backends are not '
            'supported yet (give .host and .port)' % path)
    assert c.returncode == 1 and want in c.stderr, c.stderr
    assert s.returncode == 1 and want in s.stderr


def test_check_refuses_bad_certificates_logs_and_users(tmp_path, origin):
    r = run_accel("-C", "-b", origin.addr, "-c", str(tmp_path / "x.pem"),
                  "-l", str(tmp_path / "no" / "access.log"), "-u", "no-such-user-here")
    assert r.returncode == 1
    assert "accel: -c %s: certificate %s: No such file or directory" % (
        tmp_path / "x.pem", tmp_path / "x.pem") in r.stderr
    assert "accel: -l %s: cannot be created: No such file or directory" % (
        tmp_path / "no" / "access.log") in r.stderr
    assert "accel: -u no-such-user-here: no such user" in r.stderr
    assert "accel: -C: 3 problems: accel would not start" in r.stderr
    assert not os.path.exists(str(tmp_path / "no"))     # -C creates nothing


def test_check_passes_a_good_configuration_and_prints_the_listing(tmp_path, origin):
    path = write_vcl(tmp_path, "", origin)
    r = run_accel("-C", "-f", path, "-l", str(tmp_path / "access.log"))
    assert r.returncode == 0, r.stderr
    assert "sub vcl_recv" in r.stdout and r.stderr == ""
    assert not os.path.exists(str(tmp_path / "access.log"))
    r = run_accel("-C", "-b", origin.addr)          # the built-in policy of -b
    assert r.returncode == 0, r.stderr
    assert "backend default: host 127.0.0.1 port %d" % origin.port in r.stdout


# -- the access log: SYNTH and why a request was refused ------------------------------------------

def test_policy_synth_is_logged_as_synth(origin, start_accel, tmp_path):
    a = start_policy(start_accel, tmp_path, 'sub vcl_recv {\n  if (req.url ~ "^/admin") '
                     '{ return (synth(403, "Forbidden")); }\n}\n', origin, log=True)
    assert a.get("/admin").status == 403
    assert a.get("/page").status == 200
    lines = a.wait_access_log(2)
    admin = [l for l in lines if '"GET /admin HTTP/1.1"' in l]
    assert admin, lines
    assert re.search(r'"GET /admin HTTP/1\.1" 403 \d+ .* - SYNTH$', admin[0]), admin[0]
    page = [l for l in lines if '"GET /page HTTP/1.1"' in l]
    assert page and not page[0].endswith("SYNTH")


def test_refused_requests_are_logged_with_the_rule_and_the_byte(origin, start_accel):
    a = start_accel("-d", origins=[origin], log=True)
    assert raw(a.port, b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n").status == 400
    lines = a.wait_access_log(1)
    assert re.search(r'"- - -" 400 \d+ "-" "-" [\d.]+ - BAD:control-character-in-request-target@6$',
                     lines[0]), lines[0]
    a.wait_stderr(r"\[DEBUG\] client 127\.0\.0\.1: 400 bad request: control character in "
                  r"request-target at byte 6: \"GET /a\\x01b HTTP/1\.1\\x0d\\x0aHost: a")
    assert raw(a.port, b"GET / HTTP/1.1\r\n\r\n").status == 400
    lines = a.wait_access_log(2)
    assert lines[1].endswith(" - BAD:missing-Host"), lines[1]


def test_refused_requests_leave_no_debug_line_without_d(origin, start_accel):
    a = start_accel(origins=[origin], log=True)
    assert raw(a.port, b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n").status == 400
    a.wait_access_log(1)
    assert "bad request" not in a.stderr()


# -- PURGE answers JSON as JSON ---------------------------------------------------------------------

def test_purge_and_ban_answers_are_application_json(origin, accel):
    origin.on("/a", body=b"a", headers=MAXAGE)
    accel.get("/a")
    r = accel.request("PURGE", "/a")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    assert json.loads(r.body) == {"purged": 1, "mode": "hard"}
    r = accel.request("PURGE", "/a")
    assert r.status == 404 and r.header("Content-Type") == "application/json"
    r = accel.request("BAN", "/", headers={"Ban": 'req.url ~ "^/x"'})
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    r = accel.request("BAN", "/")
    assert r.status == 400 and r.header("Content-Type") == "application/json"
    json.loads(r.body)


# -- POST /reload answers the compile result -------------------------------------------------------

def start_reloadable(start_accel, tmp_path, origin, **kw):
    port, targs = admin_port_args()
    a = start_policy(start_accel, tmp_path, "", origin, args=targs, **kw)
    return a, port


def test_post_reload_answers_ok(origin, start_accel, tmp_path):
    a, port = start_reloadable(start_accel, tmp_path, origin)
    r = request(port, "POST", "/reload")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    assert json.loads(r.body) == {"status": "ok"}
    r = request(port, "POST", "/reload", headers={"Accept": "text/plain"})
    assert (r.status, r.body) == (200, b"reloaded\n")
    assert r.header("Content-Type").startswith("text/plain")
    a.wait_stderr(r"POST /reload on the admin listener")
    assert request(port, "GET", "/reload").status == 405


def test_post_reload_answers_the_compile_error_and_keeps_the_policy(origin, start_accel,
                                                                     tmp_path):
    a, port = start_reloadable(start_accel, tmp_path, origin)
    with open(a.vcl_path, "a") as f:
        f.write("sub vcl_recv {\n  set beresp.ttl = 1s;\n}\n")
    r = request(port, "POST", "/reload")
    assert r.status == 422
    doc = json.loads(r.body)
    assert doc["status"] == "error"
    assert doc["message"] == ("%s:4:7: error: beresp.ttl is not writable in vcl_recv\n"
                              "  set beresp.ttl = 1s;\n      ^~~~~~~~~~" % a.vcl_path)
    r = request(port, "POST", "/reload", headers={"Accept": "text/plain"})
    assert r.status == 422
    assert r.body.decode().startswith("reload failed, the running policy and certificates "
                                      "stay:\n%s:4:7: error: beresp.ttl" % a.vcl_path)
    assert a.get("/").status == 200         # the old policy still serves
    # every line of the diagnostic in the error log has its timestamp
    a.wait_stderr(r"reload of \S+ failed")
    err = a.stderr()
    assert re.search(TS + re.escape("  set beresp.ttl = 1s;") + r"\n", err), err[-2000:]
    assert re.search(TS + r" +\^~+\n", err), err[-2000:]


def test_post_reload_reports_a_backend_that_does_not_resolve(origin, start_accel, tmp_path):
    a, port = start_reloadable(start_accel, tmp_path, origin)
    with open(a.vcl_path, "a") as f:
        f.write('backend other { .host = "nosuch.invalid"; }\n')
    r = request(port, "POST", "/reload")
    assert r.status == 422
    msg = json.loads(r.body)["message"]
    assert re.match(re.escape(a.vcl_path) + r":3:25: error: backend other: cannot resolve host "
                    r"'nosuch\.invalid'", msg), msg


def test_post_reload_with_nothing_to_reload(origin, start_accel):
    port, targs = admin_port_args()
    start_accel(*targs, origins=[origin])
    r = request(port, "POST", "/reload")
    assert r.status == 409
    assert json.loads(r.body) == {"status": "error", "message": "nothing to reload: no policy "
                                  "file (-f) and no certificates (-c)"}


def test_post_reload_from_a_client_that_leaves_early(origin, start_accel, tmp_path):
    """Clients that hang up while the main thread reloads leave nothing behind."""
    a, port = start_reloadable(start_accel, tmp_path, origin)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
        s.close()
    r = request(port, "POST", "/reload")
    assert r.status == 200 and json.loads(r.body) == {"status": "ok"}
    assert a.alive()


# -- first run: make run and the examples -----------------------------------------------------------

def busy_socket():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def run_demo(env_extra, timeout=30):
    env = dict(os.environ)
    env.update(env_extra)
    return subprocess.Popen(["sh", os.path.join(REPO, "scripts", "run-demo.sh"), ACCEL_BIN],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("which", ["PORT", "DEMO_PORT", "ADMIN_PORT"])
def test_make_run_refuses_a_busy_port(which):
    busy = busy_socket()
    try:
        ports = {"PORT": str(free_port()), "DEMO_PORT": str(free_port()),
                 "ADMIN_PORT": str(free_port())}
        ports[which] = str(busy.getsockname()[1])
        p = run_demo(ports)
        out = p.communicate(timeout=30)[0].decode("latin-1")
        assert p.returncode == 1
        assert ("run-demo: port %s" % ports[which]) in out and ("make run %s=" % which) in out
    finally:
        busy.close()


def test_make_run_serves_and_prints_commands_that_show_a_hit_ratio(make_origin):
    own = make_origin()                 # ORIGIN=: no demo origin is started
    own.on("/article/1", body=b"one", headers=MAXAGE)
    port, admin = free_port(), free_port()
    p = run_demo({"PORT": str(port), "ADMIN_PORT": str(admin), "ORIGIN": own.addr,
                  "DEMO_PORT": str(free_port())})
    out = ""
    try:
        deadline = time.monotonic() + 30
        while "Ctrl-C stops" not in out:
            ready, _, _ = select.select([p.stdout], [], [], 1.0)
            assert time.monotonic() < deadline, "no banner in 30 s: " + out
            if not ready:
                continue
            data = os.read(p.stdout.fileno(), 65536)       # unbuffered: select stays true
            if not data:
                raise AssertionError("run-demo ended (rc %s): %s" % (p.wait(10), out))
            out += data.decode("latin-1")
        assert "accel on http://127.0.0.1:%d in front of %s" % (port, own.addr) in out
        assert "admin listener on http://127.0.0.1:%d" % admin in out
        cmd = "python3 scripts/hit-ratio.py 127.0.0.1:%d" % admin
        assert cmd in out
        for _ in range(4):
            assert request(port, "GET", "/article/1").status == 200
        r = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "scripts", "hit-ratio.py"),
                            "127.0.0.1:%d" % admin], stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=20)
        assert r.returncode == 0
        assert re.match(r"hits 3  misses 1  stale 0  passes 0  -> hit ratio 75\.0% of 4 "
                        r"requests", r.stdout), r.stdout
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
    assert own.count("/article/1") == 1


def test_readme_examples_name_files_that_exist_and_docs_agree_with_the_cli():
    r = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "scripts", "check-docs.py"),
                        ACCEL_BIN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stdout
    readme = open(os.path.join(REPO, "README.md")).read()
    for path in re.findall(r"-f (\S+\.vcl)", readme):
        assert os.path.exists(os.path.join(REPO, path)), path


def test_site_example_caches_pages_and_assets_and_passes_logins(origin, start_accel, tmp_path):
    path = write_example(tmp_path, "site.vcl", origin)
    a = start_accel("-f", path, origins=[])
    origin.on("/static/app.css", body=b"css", headers={"Set-Cookie": "x=1"})
    origin.on("/blog/1", body=b"post")
    origin.on("/login", body=b"form")
    for _ in range(2):
        css = a.get("/static/app.css", headers={"Cookie": "sid=1"})
        page = a.get("/blog/1?utm_source=x")
        login = a.get("/login")
    assert (css.status, css.body, css.header("X-Cache")) == (200, b"css", "HIT")
    assert css.header("Set-Cookie") is None
    assert (page.body, page.header("X-Cache")) == (b"post", "HIT")
    assert origin.last("/blog/1").target == "/blog/1"       # utm_source stripped
    assert login.body == b"form" and origin.count("/login") == 2
    r = a.request("PURGE", "/blog/1")
    assert r.status == 200


def test_site_example_as_shipped_points_at_the_demo_origin():
    text = open(os.path.join(EXAMPLES, "site.vcl")).read()
    assert '.host = "127.0.0.1";' in text and '.port = "8081";' in text
    for name in os.listdir(EXAMPLES):
        assert '.port = "8080"' not in open(os.path.join(EXAMPLES, name)).read(), name
