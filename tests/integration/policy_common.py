"""Helpers shared by the test_policy_*.py files (no tests here).

    path = write_vcl(tmp_path, BODY, origin)        # backend default -> origin
    a = start_policy(start_accel, tmp_path, BODY, origin)
    r = a.get("/x")
"""

import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ACCEL_BIN = os.environ.get("ACCEL_BIN") or os.path.join(REPO, "build", "accel")
EXAMPLES = os.path.join(REPO, "docs", "examples")


def backend_decl(name, origin):
    return 'backend %s { .host = "127.0.0.1"; .port = "%d"; }\n' % (name, origin.port)


def write_vcl(tmp_path, body, origin=None, name="site.vcl", backends=None):
    """Write `vcl 4.1;` + backends + body into tmp_path/name; returns the path.
    backends: list of (name, origin); by default one `default` -> origin."""
    text = "vcl 4.1;\n"
    if backends is None and origin is not None:
        backends = [("default", origin)]
    for bname, o in backends or []:
        text += backend_decl(bname, o)
    text += body
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def start_policy(start_accel, tmp_path, body, origin=None, backends=None, name="site.vcl",
                 args=(), **kw):
    """accel -f site.vcl (no -b: backends come from the policy)."""
    path = write_vcl(tmp_path, body, origin, name, backends)
    a = start_accel("-f", path, *args, origins=[], **kw)
    a.vcl_path = path
    return a


def run_accel(*args, timeout=20, cwd=None):
    """Run the accel binary as a command-line tool; CompletedProcess (text)."""
    return subprocess.run([ACCEL_BIN] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          cwd=cwd, universal_newlines=True, errors="replace")


def example_text(name, origin_port):
    """docs/examples/NAME with every backend pointed at 127.0.0.1:origin_port."""
    with open(os.path.join(EXAMPLES, name)) as f:
        text = f.read()
    text, hosts = re.subn(r'\.host\s*=\s*"[^"]*"', '.host = "127.0.0.1"', text)
    text, ports = re.subn(r'\.port\s*=\s*"[^"]*"', '.port = "%d"' % origin_port, text)
    # an example whose backends we could not point at the test origin would
    # silently talk to whatever listens on its port: refuse it
    assert hosts >= 1 and ports >= 1, "%s: no .host/.port to rewrite" % name
    return text


def write_example(tmp_path, name, origin):
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(example_text(name, origin.port))
    return path
