"""The offline tools: accel -C (compile and list), -x builtin, -x explain,
and migration mode for unknown vmods."""

import os
import re

from policy_common import run_accel

GOOD = r"""vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "8080"; }
backend other { .host = "127.0.0.1"; .port = "8081"; }
sub vcl_recv {
    if (req.url ~ "^/admin") {
        return (pass);
    }
    if (req.url ~ "^/other/") {
        set req.backend_hint = other;
    }
    set req.url = regsub(req.url, "\?utm_source=[^&]*$", "");
    set req.http.X-Seen = "yes";
}
sub vcl_backend_response {
    set beresp.ttl = 5m;
}
"""


def write(tmp_path, name, text):
    p = os.path.join(str(tmp_path), name)
    with open(p, "w") as f:
        f.write(text)
    return p


def test_compile_good_file_lists_program(tmp_path):
    p = write(tmp_path, "good.vcl", GOOD)
    r = run_accel("-C", "-f", p)
    assert r.returncode == 0, r.stderr
    assert "sub vcl_recv" in r.stdout
    assert "sub vcl_backend_response" in r.stdout
    assert "backend default" in r.stdout
    assert "error" not in r.stderr


def check_error(tmp_path, text, line, col, message_rx, name="bad.vcl"):
    p = write(tmp_path, name, text)
    r = run_accel("-C", "-f", p)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    head_rx = re.compile(r"^(?:.*/)?%s:%d:%d: error: (.*)$" % (re.escape(name), line, col))
    idx = [i for i, ln in enumerate(lines) if head_rx.match(ln)]
    assert idx, "no '%s:%d:%d: error:' line in stderr:\n%s" % (name, line, col, r.stderr)
    i = idx[0]
    msg = head_rx.match(lines[i]).group(1)
    assert re.search(message_rx, msg), msg
    src = text.splitlines()[line - 1]
    assert lines[i + 1].rstrip() == src.rstrip(), "source line quoted: %r" % lines[i + 1]
    caret = lines[i + 2]
    assert caret.lstrip(" ").startswith("^"), "caret line: %r" % caret
    assert caret.index("^") == col - 1, "caret under column %d: %r" % (col, caret)
    assert r.stdout == "", "no listing for a bad file"
    return msg


def test_compile_bad_file_context_error(tmp_path):
    text = GOOD.replace('set req.http.X-Seen = "yes";', 'set beresp.ttl = 1h;')
    line = text.splitlines().index("    set beresp.ttl = 1h;") + 1
    check_error(tmp_path, text, line, 9, r"beresp\.ttl is not writable in vcl_recv")


def test_compile_bad_file_syntax_error(tmp_path):
    text = GOOD.replace('set req.http.X-Seen = "yes";', 'set req.http.X-Seen = "yes"\n    return (pass);')
    line = text.splitlines().index("    return (pass);") + 1
    check_error(tmp_path, text, line, 5, r"expected ';'")


def test_compile_unknown_variable_suggests(tmp_path):
    text = GOOD.replace('set req.http.X-Seen = "yes";', 'set req.urll = "/";')
    line = text.splitlines().index('    set req.urll = "/";') + 1
    msg = check_error(tmp_path, text, line, 9, r"req\.urll")
    assert "req.url" in msg.replace("req.urll", "")


def test_compile_missing_file(tmp_path):
    r = run_accel("-C", "-f", os.path.join(str(tmp_path), "nope.vcl"))
    assert r.returncode == 1
    assert "nope.vcl" in r.stderr


def test_builtin_is_printed():
    r = run_accel("-x", "builtin")
    assert r.returncode == 0, r.stderr
    for sub in ("sub vcl_recv", "sub vcl_hash", "sub vcl_backend_response", "sub vcl_synth",
                "sub vcl_deliver"):
        assert sub in r.stdout, sub
    assert "hash_data(req.url)" in r.stdout


def test_explain_lookup_with_key_backend_and_decision(tmp_path):
    p = write(tmp_path, "site.vcl", GOOD)
    r = run_accel("-x", "explain", "-f", p, "GET /other/page?utm_source=mail",
                  "-H", "Host: shop.example",
                  "-R", "HTTP/1.1 200 OK", "-B", "Content-Type: text/html")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "=> hash" in out
    assert 'cache key: "/other/page|shop.example|"' in out, out
    assert "backend: other" in out
    assert "X-Seen: yes" in out
    assert re.search(r"site\.vcl:\d+\s+set req\.http\.X-Seen", out), out
    m = re.search(r"^decision: (.*)$", out, re.M)
    assert m, out
    assert m.group(1).startswith("store; ttl 300s"), m.group(1)


def test_explain_pass_and_uncacheable(tmp_path):
    p = write(tmp_path, "site.vcl", GOOD)
    r = run_accel("-x", "explain", "-f", p, "GET /admin/login", "-H", "Host: shop.example")
    assert r.returncode == 0, r.stderr
    assert "=> pass" in r.stdout
    assert "cache key" not in r.stdout
    assert "backend: default" in r.stdout
    # with a sample response: no-store answers are not stored whatever the ttl
    r = run_accel("-x", "explain", "-f", p, "GET /x", "-H", "Host: shop.example",
                  "-R", "HTTP/1.1 200 OK", "-B", "Cache-Control: no-store")
    assert r.returncode == 0, r.stderr
    m = re.search(r"^decision: (.*)$", r.stdout, re.M)
    assert m and not m.group(1).startswith("store"), r.stdout


def test_explain_bad_policy_fails(tmp_path):
    p = write(tmp_path, "bad.vcl", "vcl 4.1;\nsub vcl_recv { set req.url = ; }\n")
    r = run_accel("-x", "explain", "-f", p, "GET /")
    assert r.returncode != 0
    assert "bad.vcl:2:" in r.stderr


def test_unknown_vmod_is_error_unless_migration_mode(tmp_path):
    text = GOOD.replace('set req.http.X-Seen = "yes";',
                        'set req.http.X-Country = geoip.country(client.ip);')
    text = text.replace("vcl 4.1;\n", "vcl 4.1;\nimport geoip;\n", 1)
    p = write(tmp_path, "mig.vcl", text)
    r = run_accel("-C", "-f", p)
    assert r.returncode == 1
    assert "geoip" in r.stderr and "mig.vcl:2:" in r.stderr, r.stderr
    r = run_accel("-p", "vcl_unknown_vmods=stub", "-C", "-f", p)
    assert r.returncode == 0, r.stderr
    assert re.search(r"mig\.vcl:\d+:\d+: warning: .*geoip\.country", r.stderr), r.stderr


def test_explain_says_why_uncacheable(tmp_path):
    p = write(tmp_path, "site.vcl", GOOD.replace("set beresp.ttl = 5m;", "set beresp.grace = 1h;"))
    r = run_accel("-x", "explain", "-f", p, "GET /x", "-H", "Host: a.example",
                  "-R", "HTTP/1.1 200 OK", "-B", "Cache-Control: max-age=60",
                  "-B", "Set-Cookie: s=1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^RFC 9111: not storable;.*why: Set-Cookie", out, re.M), out
    assert re.search(r"<builtin>:\d+\s+set beresp\.uncacheable = true", out), out
    assert re.search(r"^decision: hit-for-miss; ttl 120s, grace 3600s", out, re.M), out
    # a Cookie on the request: the built-in vcl_recv passes, and says where
    r = run_accel("-x", "explain", "-f", p, "GET /x", "-H", "Cookie: a=1")
    assert re.search(r"<builtin>:\d+\s+return \(pass\)", r.stdout), r.stdout
    assert "=> pass" in r.stdout
