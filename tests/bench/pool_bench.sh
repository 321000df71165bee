#!/usr/bin/env bash
# pool_bench.sh - proxy throughput over a pool of 3 origins: accel with a
# 3-backend round_robin director (policy file, -s none) beside nginx
# proxy_pass to an upstream of the same 3 servers (keep-alive), issue 8.
# The origins are 3 nginx processes (1 worker each) serving the same files.
#
# Workloads: {1k, 64k} x {c50, c200}, wrk -t1 --latency, keep-alive clients.
# Every (workload, target) pair runs ROUNDS times; the target order is rotated
# for every round and workload so that drift on a shared machine does not
# always hit the same proxy. The table gives the median over rounds.
#
# Usage:  tests/bench/pool_bench.sh
#         PIN=1 ROUNDS=3 DURATION=5 tests/bench/pool_bench.sh
#
# Environment knobs (all optional):
#   WORKERS     worker count for both proxies (accel -w N, nginx worker_processes N); default 2
#   ROUNDS      repetitions of every (workload, target) pair; default 3
#   DURATION    seconds per wrk run; default 5
#   PIN=1       wrk on CPU $CLIENT_CPUS (default 0), every server on CPU $SERVER_CPUS
#               (default 1), with taskset. PIN=0 (default): unpinned.
#   THREADS     wrk threads; default 1
#   PORT_BASE   first port tried (default 23000); the script uses base+0..+2 (origins),
#               +3 (nginx proxy), +4 (accel) and moves up by 10 until all five are free
#   TARGETS     subset of "accel nginx" (default both)
#   SIZES       subset of "1k 64k"; CONNS subset of "50 200"
#   ACCEL       accel binary (default <repo>/build/accel)
#   MAX_SECONDS budget for the measurement loop (default 270); runs left when it is
#               spent are skipped (and reported), never cut short
#   OUT         directory for raw wrk outputs, raw.tsv and table.md (default: inside the
#               run dir, removed at exit)
#   KEEP=1      keep the run directory (configs, server logs, wrk outputs)
#
# Every process this script starts is recorded by PID and stopped at exit
# (TERM, then KILL after 5 s). Nothing is stopped by name.
# The shared logic (servers, wrk runs, CPU sampling, tables) is in lib.sh.
set -u -o pipefail

PORT_BASE="${PORT_BASE:-23000}"
# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
matrix_setup pool_bench.sh accel-pool-bench

bench_ports 5
ORIGIN_PORTS=("$BASE" $((BASE + 1)) $((BASE + 2)))
PORT[nginx]=$((BASE + 3)); PORT[accel]=$((BASE + 4))

bench_docs 1k 64k
for i in 0 1 2; do write_origin_conf "origin$i" "${ORIGIN_PORTS[$i]}"; done
write_proxy_conf "${ORIGIN_PORTS[@]}"

for i in 0 1 2; do
  start_nginx "origin$i"
  wait_http "http://127.0.0.1:${ORIGIN_PORTS[$i]}/1k.bin" 15 || {
    cat "$RUN/origin$i.err" "$RUN/origin$i.stdout" >&2; die "origin $i did not come up"; }
done
# accel's pool: the same 3 servers behind a round_robin director
cat > "$RUN/pool.vcl" <<EOF
vcl 4.1;
import directors;
backend o0 { .host = "127.0.0.1"; .port = "${ORIGIN_PORTS[0]}"; }
backend o1 { .host = "127.0.0.1"; .port = "${ORIGIN_PORTS[1]}"; }
backend o2 { .host = "127.0.0.1"; .port = "${ORIGIN_PORTS[2]}"; }
sub vcl_init {
    new pool = directors.round_robin();
    pool.add_backend(o0);
    pool.add_backend(o1);
    pool.add_backend(o2);
}
sub vcl_recv {
    set req.backend_hint = pool.backend();
    return (pass);
}
EOF
matrix_start_targets "origins:${ORIGIN_PORTS[*]}" -f "$RUN/pool.vcl"

matrix_measure
DOC_ACCEL_ARGS="-f pool.vcl"
DOC_ACCEL=" with a round_robin director over the 3 origins and \`return (pass)\`"
DOC_UPSTREAM="3 servers (round robin); "
DOC_ORIGIN="origins: 3 nginx processes, 1 worker each, sendfile, the same static random-byte files /1k.bin and /64k.bin, keep-alive"
matrix_table
matrix_finish; exit $?
