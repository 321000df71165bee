#!/usr/bin/env bash
# cluster_bench.sh - three accel nodes coordinated through Redis (issue 21,
# docs/cluster.md): cache hits through the key's owner against hits through a
# non-owner, and the fan-out latency of a PURGE (its answer waits until all
# three nodes applied it).
#
# Workloads (wrk -t1 -c50 --latency, keep-alive, Host: bench.example, /1k.bin):
#   owner           wrk against the node that owns the key
#   non-owner       wrk against another node (cluster_local_ttl=5s: local copy,
#                   one peer fetch per 5 s)
#   non-owner-hop   the same with cluster_local_ttl=0: every request is fetched
#                   from the owner (one hop, keep-alive between the nodes)
# Purge fan-out: PURGES sequential PURGE requests on one node, each answered
# once the three nodes applied it; p50 / p99 of the answer time.
#
# Usage:  tests/bench/cluster_bench.sh
#         ROUNDS=3 DURATION=5 PURGES=300 tests/bench/cluster_bench.sh
# Knobs: ROUNDS (3), DURATION (5 s), WORKERS (accel -w, 1), PURGES (300),
#   PORT_BASE (19700; base+0 redis, +1 origin, +2..4 nodes, +5..7 admin),
#   ACCEL, KEEP=1 (keep the run directory).
# Every process this script starts is recorded by PID and stopped at exit.
set -u -o pipefail

PORT_BASE="${PORT_BASE:-19700}"
# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WORKERS="${WORKERS:-1}"
PURGES="${PURGES:-300}"
bench_need wrk nginx redis-server curl python3
bench_init accel-cluster-bench
bench_private_accel
bench_ports 8
REDIS_PORT=$BASE; ORIGIN_PORT=$((BASE + 1))
bench_docs 1k

mkdir -p "$RUN/origin-tmp"
{
  nginx_common origin
  cat <<EOF
worker_processes 1;
events { worker_connections 4096; }
http {
$(nginx_http_common origin)
    server {
        listen 127.0.0.1:$ORIGIN_PORT reuseport backlog=4096;
        root $RUN/docs;
        location / { add_header Cache-Control "max-age=3600"; }
    }
}
EOF
} > "$RUN/origin.conf"
start_nginx origin
wait_http "http://127.0.0.1:$ORIGIN_PORT/1k.bin" 15 || die "origin did not come up"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN" \
  >"$RUN/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done

NODE_PIDS=()
start_nodes() {  # start_nodes LOCAL_TTL: three nodes, wait until each sees a ring of 3
  local i p a
  for i in 0 1 2; do
    p=$((BASE + 2 + i)); a=$((BASE + 5 + i))
    "${SRV[@]}" "$ACCEL" -a "127.0.0.1:$p" -T "127.0.0.1:$a" -b "127.0.0.1:$ORIGIN_PORT" \
      -w "$WORKERS" -p "cluster_bus=redis://127.0.0.1:$REDIS_PORT" -p cluster_name=bench \
      -p "cluster_local_ttl=$1" -p cluster_heartbeat=0.2 >"$RUN/node$i.log" 2>&1 &
    PIDS+=($!); NODE_PIDS+=($!)
  done
  for i in 0 1 2; do
    a=$((BASE + 5 + i))
    for _ in $(seq 1 100); do
      curl -s "http://127.0.0.1:$a/cluster" 2>/dev/null | grep -q '"state": "up"' &&
        [ "$(curl -s "http://127.0.0.1:$a/cluster" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ring"]))')" = 3 ] && break
      sleep 0.1
    done
  done
}
stop_nodes() {
  local p
  for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  NODE_PIDS=()
}
owner_port() {  # the client port of /1k.bin's owner
  curl -s "http://127.0.0.1:$((BASE + 5))/cluster/owner?url=/1k.bin&host=bench.example" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["owner"].rsplit(":",1)[1])'
}

declare -A RPS=() P99=() VALS=() LATS=()
one_run() {  # one_run NAME PORT ROUND: one wrk run, its figures kept for the medians
  local f="$RUN/wrk-$1-$3.txt"
  run_wrk "$f" -t1 -c50 --latency -H "Host: bench.example" "http://127.0.0.1:$2/1k.bin"
  VALS[$1]="${VALS[$1]:-} $(wrk_rps "$f")"
  LATS[$1]="${LATS[$1]:-} $(to_ms "$(wrk_pct "$f" 99)")"
  log "$1 round $3: $(wrk_rps "$f") req/s, p99 $(wrk_pct "$f" 99), errors $(wrk_errs "$f")"
}
measure_pair() {  # measure_pair NAME1 PORT1 NAME2 PORT2: ROUNDS rounds, order alternating
  local r
  curl -s -o /dev/null -H "Host: bench.example" "http://127.0.0.1:$2/1k.bin"
  curl -s -o /dev/null -H "Host: bench.example" "http://127.0.0.1:$4/1k.bin"
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then one_run "$1" "$2" "$r"; one_run "$3" "$4" "$r"
    else one_run "$3" "$4" "$r"; one_run "$1" "$2" "$r"; fi
  done
  for n in "$1" "$3"; do
    RPS[$n]=$(printf '%s\n' ${VALS[$n]} | median)
    P99[$n]=$(printf '%s\n' ${LATS[$n]} | median)
  done
}

start_nodes 5
OWNER=$(owner_port)
OTHER=$((BASE + 2)); [ "$OTHER" = "$OWNER" ] && OTHER=$((BASE + 3))
log "owner of /1k.bin: port $OWNER; non-owner: port $OTHER"
measure_pair owner "$OWNER" non-owner "$OTHER"

# purge fan-out: every answer waits for all three nodes
python3 - "$OTHER" "$PURGES" > "$RUN/purge.txt" <<'EOF'
import json, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
lat, short = [], 0
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.perf_counter()
    s.sendall(b"PURGE /1k.bin HTTP/1.1\r\nHost: bench.example\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    lat.append((time.perf_counter() - t0) * 1000)
    s.close()
    doc = json.loads(data.split(b"\r\n\r\n", 1)[1])
    if doc["cluster"]["applied"] != doc["cluster"]["members"]:
        short += 1
lat.sort()
print("%.2f %.2f %.2f %d" % (lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1], lat[-1], short))
EOF
read -r PUR_P50 PUR_P99 PUR_MAX PUR_SHORT < "$RUN/purge.txt"
log "purge fan-out: p50 ${PUR_P50} ms, p99 ${PUR_P99} ms, max ${PUR_MAX} ms, not applied by all: $PUR_SHORT"
stop_nodes

start_nodes 0
OWNER=$(owner_port)
OTHER=$((BASE + 2)); [ "$OTHER" = "$OWNER" ] && OTHER=$((BASE + 3))
measure_pair owner-ttl0 "$OWNER" non-owner-hop "$OTHER"
stop_nodes

echo
echo "cluster_bench.sh: 3 nodes (-w $WORKERS each), Redis, nginx origin; wrk -t1 -c50, ${DURATION}s x $ROUNDS rounds (median); $(nproc) CPUs, $(cut -d' ' -f1-3 /proc/loadavg) load"
echo
echo "| workload | req/s | p99 ms | vs owner |"
echo "|---|---|---|---|"
echo "| hits through the owner | ${RPS[owner]} | ${P99[owner]} | 1.00 |"
echo "| hits through a non-owner (cluster_local_ttl=5s) | ${RPS[non-owner]} | ${P99[non-owner]} | $(ratio "${RPS[non-owner]}" "${RPS[owner]}") |"
echo "| hits through a non-owner, every one fetched from the owner (cluster_local_ttl=0) | ${RPS[non-owner-hop]} | ${P99[non-owner-hop]} | $(ratio "${RPS[non-owner-hop]}" "${RPS[owner-ttl0]}") (owner in that run: ${RPS[owner-ttl0]}) |"
echo
echo "purge fan-out (answer after all 3 applied, $PURGES purges): p50 $PUR_P50 ms, p99 $PUR_P99 ms, max $PUR_MAX ms; answers short of 3/3: $PUR_SHORT"
