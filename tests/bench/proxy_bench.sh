#!/usr/bin/env bash
# proxy_bench.sh - accel as a plain reverse proxy beside nginx proxy_pass
# (keep-alive upstream), both in front of the same nginx origin (issue 2,
# "Benchmark (not a test)").
#
# Workloads: {1k, 64k} x {c50, c200}, wrk -t1 --latency, keep-alive clients.
# Every (workload, target) pair runs ROUNDS times; the target order is rotated
# for every round and workload so that drift on a shared machine does not
# always hit the same proxy. The table gives the median over rounds.
#
# Usage:  tests/bench/proxy_bench.sh
#         PIN=1 ROUNDS=3 DURATION=5 tests/bench/proxy_bench.sh
#
# Environment knobs (all optional):
#   WORKERS     worker count for both proxies (accel -w N, nginx worker_processes N); default 2
#   ROUNDS      repetitions of every (workload, target) pair; default 3
#   DURATION    seconds per wrk run; default 5
#   PIN=1       wrk on CPU $CLIENT_CPUS (default 0), every server on CPU $SERVER_CPUS
#               (default 1), with taskset. PIN=0 (default): unpinned.
#   THREADS     wrk threads; default 1
#   PORT_BASE   first port tried (default 19500); the script uses base+0 (origin),
#               +1 (nginx proxy), +2 (accel) and moves up by 10 until all three are free
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

PORT_BASE="${PORT_BASE:-19500}"
# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
matrix_setup proxy_bench.sh accel-proxy-bench

bench_ports 3
ORIGIN_PORT=$BASE; PORT[nginx]=$((BASE + 1)); PORT[accel]=$((BASE + 2))

bench_docs 1k 64k
write_origin_conf origin "$ORIGIN_PORT"
write_proxy_conf "$ORIGIN_PORT"

start_nginx origin
wait_http "http://127.0.0.1:$ORIGIN_PORT/1k.bin" 15 || {
  cat "$RUN/origin.err" "$RUN/origin.stdout" >&2; die "origin did not come up"; }
matrix_start_targets "origin:$ORIGIN_PORT" -b "127.0.0.1:$ORIGIN_PORT"

matrix_measure
DOC_ACCEL_ARGS="-b 127.0.0.1:ORIGIN"
DOC_ACCEL=""
DOC_UPSTREAM=""
DOC_ORIGIN="origin: nginx, 1 worker, sendfile, static random-byte files /1k.bin and /64k.bin, keep-alive"
matrix_table
matrix_finish; exit $?
