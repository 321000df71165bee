#!/usr/bin/python3
"""ab_cpu.py -- CPU time per request of two accel binaries, measured in
turns (A, B, B, A, ...) on the same origin and wrk workloads.

On a shared machine throughput follows whatever else runs; the CPU time
accel itself spends per request (utime + stime of its process over a wrk
run, divided by the requests wrk counted) is much steadier.  Both binaries
run with one worker pinned to one CPU, wrk (one thread) pinned to another.

    tests/bench/ab_cpu.py A_BINARY B_BINARY [--rounds 5] [--duration 5]
        [--workloads hit-1k,hit-16k,hit-256k,miss-1k]

Prints, per workload, the median microseconds of CPU per request of A and
of B, and B/A (below 1: B spends less).  Needs wrk, taskset and nginx (the
origin: static bodies with Cache-Control: max-age=3600, and a 1 KiB answer
for every /miss/ URL; its speed does not enter the figure, only accel's
CPU time does).
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SIZES = {"hit-1k": 1024, "hit-16k": 16384, "hit-256k": 262144, "hit-1m": 1 << 20}
MISS_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/miss/" .. tag .. "-" .. counter)
end
init = function(args) tag = args[1] end
"""


NGINX_CONF = """
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:%(port)d;
        root %(dir)s/docs;
        add_header Cache-Control "max-age=3600";
        location /miss/ { default_type application/octet-stream; try_files /hit-1k =404; }
    }
}
"""


def start_origin(tmp, port):
    docs = os.path.join(tmp, "docs")
    os.makedirs(docs, exist_ok=True)
    for name, n in SIZES.items():
        with open(os.path.join(docs, name), "wb") as f:
            f.write(b"x" * n)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"dir": tmp, "port": port})
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf, "-g", "daemon off;"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/hit-1k" % port, timeout=2).read()
            return p
        except OSError:
            time.sleep(0.1)
    p.terminate()
    p.wait(10)
    raise SystemExit("the nginx origin did not start (%s)" % os.path.join(tmp, "nginx.err"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_accel(binary, port, origin_port, tmp):
    p = subprocess.Popen(["taskset", "-c", "1", binary, "-a", "127.0.0.1:%d" % port,
                          "-b", "127.0.0.1:%d" % origin_port, "-w", "1", "-s", "mem=256m"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "accel.err"), "ab"))
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/hit-1k" % port, timeout=2).read()
            return p
        except OSError:
            time.sleep(0.1)
    p.kill()
    raise SystemExit("accel did not start: %s" % binary)


def run_wrk(port, workload, duration, tmp, tag):
    args = ["taskset", "-c", "0", "wrk", "-t1", "-c50", "-d%ds" % duration]
    if workload.startswith("miss"):
        lua = os.path.join(tmp, "miss.lua")
        with open(lua, "w") as f:
            f.write(MISS_LUA)
        args += ["-s", lua, "http://127.0.0.1:%d/" % port, "--", tag]
    else:
        args.append("http://127.0.0.1:%d/%s" % (port, workload))
    out = subprocess.run(args, stdout=subprocess.PIPE, universal_newlines=True,
                         timeout=duration + 30).stdout
    m = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx|Socket errors", out)
    return int(m.group(1)) if m else 0, bool(errors)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--workloads", default="hit-1k,hit-16k,hit-256k,miss-1k")
    opt = ap.parse_args()
    workloads = opt.workloads.split(",")
    res = {(w, t): [] for w in workloads for t in "ab"}
    tmp = tempfile.mkdtemp(prefix="accel-abcpu.")
    os.chmod(tmp, 0o755)            # nginx workers may run as another user
    origin_port = free_port()
    origin = start_origin(tmp, origin_port)
    try:
        measure(opt, workloads, res, tmp, origin_port)
    finally:
        origin.send_signal(signal.SIGTERM)
        origin.wait(20)
    print("\nCPU per request, median of %d rounds (us): A=%s  B=%s" % (opt.rounds, opt.a, opt.b))
    for w in workloads:
        a = statistics.median(res[(w, "a")]) if res[(w, "a")] else float("nan")
        b = statistics.median(res[(w, "b")]) if res[(w, "b")] else float("nan")
        print("  %-9s A %7.2f  B %7.2f  B/A %.3f" % (w, a, b, b / a if a else float("nan")))
    return 0


def measure(opt, workloads, res, tmp, origin_port):
    for r in range(opt.rounds):
        for t in ("ab" if r % 2 == 0 else "ba"):
            binary = opt.a if t == "a" else opt.b
            port = free_port()
            p = start_accel(binary, port, origin_port, tmp)
            try:
                for w in workloads:
                    if w in SIZES:          # cached before it is measured
                        urllib.request.urlopen("http://127.0.0.1:%d/%s" % (port, w)).read()
                    c0 = cpu_seconds(p.pid)
                    n, bad = run_wrk(port, w, opt.duration, tmp, "%s%d" % (t, r))
                    c1 = cpu_seconds(p.pid)
                    if n and not bad:
                        res[(w, t)].append((c1 - c0) / n * 1e6)
                    print("round %d %s %-9s %9d req  %.2f us/req%s" %
                          (r + 1, t.upper(), w, n, (c1 - c0) / n * 1e6 if n else 0,
                           "  (errors: not counted)" if bad else ""), flush=True)
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait(20)


if __name__ == "__main__":
    sys.exit(main())
