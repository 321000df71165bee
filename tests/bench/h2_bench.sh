#!/usr/bin/env bash
# h2_bench.sh - HTTP/2 over TLS: accel beside nginx (issue 15, "Benchmark").
#
# Three targets answer the same bytes over TLS with h2 (ALPN), one
# certificate (ECDSA P-256), the same protocol settings:
#   accel        its memory cache in front of an nginx origin (every measured
#                request is a hit)
#   nginx-cache  nginx `listen ... ssl http2` with proxy_cache in front of the
#                same origin (hits)
#   nginx-disk   nginx `listen ... ssl http2` serving the files itself from disk
#                (open_file_cache): no proxying, the ceiling
# Workloads: h2load on /1k.bin, /16k.bin, /1m.bin, each with -c20 -m10 and
# -c100 -m10 (clients x concurrent streams per client).  Every (workload,
# target) pair runs ROUNDS times, the target order rotated per round; the
# table gives the median req/s, p99 latency (from h2load's per-request log),
# the proxy's CPU per request, and the ratios accel/nginx-cache and
# accel/nginx-disk.
#
# Usage:  tests/bench/h2_bench.sh
#         PIN=1 ROUNDS=3 DURATION=5 tests/bench/h2_bench.sh
#
# Environment knobs (all optional):
#   WORKERS     accel -w N and nginx worker_processes N; default 1
#   ROUNDS      default 3;  DURATION  seconds per h2load run, default 5
#   PIN=1       h2load on CPU $CLIENT_CPUS (default 0), servers on CPU $SERVER_CPUS (default 1)
#   PORT_BASE   default 25300; uses base+0 (origin), +1 (nginx-cache), +2 (nginx-disk),
#               +3 (accel), moving up by 10 until all are free
#   TARGETS     subset of "accel nginx-cache nginx-disk"
#   SIZES       subset of "1k 16k 1m";  LOADS  subset of "c20m10 c100m10"
#   ACCEL       accel binary (default <repo>/build/accel)
#   MAX_SECONDS budget of the measurement loop (default 420); later runs are skipped
#   KEEP=1      keep the run directory
#
# Every process this script starts is recorded by PID and stopped at exit
# (TERM, then KILL).  Nothing is stopped by name.  Shared helpers: lib.sh.
set -u -o pipefail

WORKERS="${WORKERS:-1}"
PORT_BASE="${PORT_BASE:-25300}"
MAX_SECONDS="${MAX_SECONDS:-420}"
TARGETS="${TARGETS:-accel nginx-cache nginx-disk}"
# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZES="${SIZES:-1k 16k 1m}"
LOADS="${LOADS:-c20m10 c100m10}"
INVOCATION="WORKERS=$WORKERS ROUNDS=$ROUNDS DURATION=$DURATION PIN=$PIN"
[ "$TARGETS" != "accel nginx-cache nginx-disk" ] && INVOCATION="$INVOCATION TARGETS=\"$TARGETS\""
[ "$SIZES" != "1k 16k 1m" ] && INVOCATION="$INVOCATION SIZES=\"$SIZES\""
[ "$LOADS" != "c20m10 c100m10" ] && INVOCATION="$INVOCATION LOADS=\"$LOADS\""
INVOCATION="$INVOCATION tests/bench/h2_bench.sh"

bench_need h2load curl openssl "$NGINX"
[[ " $TARGETS " != *" accel "* ]] || [ -x "$ACCEL" ] || { echo "no accel binary at $ACCEL (make)" >&2; exit 2; }

bench_init accel-h2-bench
mkdir -p "$RUN/out" "$RUN/origin-tmp" "$RUN/cache-tmp" "$RUN/disk-tmp"
bench_ports 4
ORIGIN_PORT=$BASE; PORT[nginx-cache]=$((BASE + 1)); PORT[nginx-disk]=$((BASE + 2)); PORT[accel]=$((BASE + 3))

# ---------------------------------------------------------------- certificate, content
for s in $SIZES; do
  case $s in
    *k) head -c $(( ${s%k} * 1024 )) /dev/urandom > "$RUN/docs/$s.bin" ;;
    *m) head -c $(( ${s%m} * 1024 * 1024 )) /dev/urandom > "$RUN/docs/$s.bin" ;;
  esac
done
chmod -R a+rX "$RUN/docs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -keyout "$RUN/cert.key" -out "$RUN/cert.pem" 2>/dev/null \
  || die "openssl: certificate"
chmod a+r "$RUN"/cert.*

tmp_paths() {  # tmp_paths DIR
  echo "client_body_temp_path $1/body; proxy_temp_path $1/proxy; fastcgi_temp_path $1/fcgi;"
  echo "uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;"
}
tls_common() {  # the same TLS settings as accel's (tls.c)
  cat <<EOF
        ssl_certificate $RUN/cert.pem;
        ssl_certificate_key $RUN/cert.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_session_tickets on;
EOF
}

cat > "$RUN/origin.conf" <<EOF
pid $RUN/origin.pid;
error_log $RUN/origin.err warn;
worker_processes 1;
events { worker_connections 4096; }
http {
    access_log off;
    $(tmp_paths "$RUN/origin-tmp")
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $RUN/docs;
        add_header Cache-Control "max-age=3600" always;
    }
}
EOF

# nginx 1.22 (Debian 12): "listen ... ssl http2"; its h2 defaults (128
# concurrent streams, 64k preread) are left alone, as accel's are.
cat > "$RUN/nginx-cache.conf" <<EOF
pid $RUN/nginx-cache.pid;
error_log $RUN/nginx-cache.err warn;
worker_processes $WORKERS;
worker_rlimit_nofile 65536;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    http2_max_requests 1000000;
    $(tmp_paths "$RUN/cache-tmp")
    proxy_cache_path $RUN/nginx-cache levels=1:2 keys_zone=bench:16m max_size=1g use_temp_path=off;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 16; }
    server {
        listen 127.0.0.1:${PORT[nginx-cache]} ssl http2 reuseport backlog=4096;
$(tls_common)
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_max_temp_file_size 0;
        }
    }
}
EOF

cat > "$RUN/nginx-disk.conf" <<EOF
pid $RUN/nginx-disk.pid;
error_log $RUN/nginx-disk.err warn;
worker_processes $WORKERS;
worker_rlimit_nofile 65536;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    http2_max_requests 1000000;
    $(tmp_paths "$RUN/disk-tmp")
    default_type application/octet-stream;
    sendfile on;
    open_file_cache max=100;
    server {
        listen 127.0.0.1:${PORT[nginx-disk]} ssl http2 reuseport backlog=4096;
$(tls_common)
        root $RUN/docs;
        add_header Cache-Control "max-age=3600" always;
    }
}
EOF

start_nginx origin
[[ " $TARGETS " == *" accel "* ]] && bench_private_accel
declare -A SPID=()
for t in $TARGETS; do
  case $t in
    nginx-cache|nginx-disk) start_nginx "$t"; SPID[$t]=${SRVPID[$t]} ;;
    accel)
      ACCEL_CMDLINE=("$ACCEL" -a "127.0.0.1:${PORT[accel]},tls" -c "$RUN/cert.pem,$RUN/cert.key"
                     -b "127.0.0.1:$ORIGIN_PORT" -w "$WORKERS" -s mem=2g)
      log "accel: ${ACCEL_CMDLINE[*]}"
      "${SRV[@]}" "${ACCEL_CMDLINE[@]}" >"$RUN/accel.stdout" 2>"$RUN/accel.stderr" &
      PIDS+=($!); SPID[accel]=$! ;;
  esac
done
for t in $TARGETS; do
  wait_http "https://127.0.0.1:${PORT[$t]}/1k.bin" 30 || { KEEP=1; tail -n 20 "$RUN"/*.err "$RUN/accel.stderr" >&2; die "$t did not come up"; }
  for s in $SIZES; do
    for _ in 1 2 3; do curl -sk --http2 -o /dev/null "https://127.0.0.1:${PORT[$t]}/$s.bin"; done   # warm
    v=$(curl -sk --http2 -o "$RUN/check" -w '%{http_version}' "https://127.0.0.1:${PORT[$t]}/$s.bin")
    [ "$v" = 2 ] || die "$t: /$s.bin was not served over HTTP/2 (curl says HTTP/$v)"
    cmp -s "$RUN/check" "$RUN/docs/$s.bin" || die "$t: /$s.bin differs from the origin's file"
  done
done
log "servers up: origin $ORIGIN_PORT $(for t in $TARGETS; do printf '%s:%s ' "$t" "${PORT[$t]}"; done)"

p99_ms() {  # p99_ms LOGFILE: 99th percentile of column 3 (microseconds) in ms
  awk -F'\t' '$2 ~ /^2/ {print $3}' "$1" | sort -n |
    awk '{a[NR]=$1} END{ if (NR==0) {print "nan"; exit}; i=int(NR*0.99); if (i<1) i=1; printf "%.2f", a[i]/1000 }'
}

read -r -a TL <<< "$TARGETS"
RAW="$RUN/out/raw.tsv"
: > "$RAW"
START=$(date +%s); SKIPPED=0
log "run dir $RUN; PIN=$PIN WORKERS=$WORKERS DURATION=${DURATION}s ROUNDS=$ROUNDS"
wi=0
for s in $SIZES; do
  for l in $LOADS; do
    w="hit-$s-$l"
    c=${l#c}; c=${c%m*}; m=${l#*m}
    for r in $(seq 1 "$ROUNDS"); do
      for t in $(rotation "$r" "$wi"); do
        budget_spent "$w" "$t" "$r" && continue
        f="$RUN/out/$w.$t.r$r"
        k0=$(tree_ticks "${SPID[$t]}")
        "${CLI[@]}" timeout $((DURATION + 30)) h2load -t1 -c"$c" -m"$m" -D "$DURATION" --warm-up-time=1 \
            --log-file="$f.log" "https://127.0.0.1:${PORT[$t]}/$s.bin" > "$f.txt" 2>&1
        k1=$(tree_ticks "${SPID[$t]}")
        rps=$(awk '/^finished in/{gsub(/,/,""); print $4}' "$f.txt")
        # h2load killed by its timeout (it waits for streams in flight):
        # no figure; accel's counts as a failed run, the others' are left out
        if [ -z "$rps" ]; then
          log "$w $t r$r: h2load gave no result"; sed 's/^/    /' "$f.txt" | tail -5 >&2
          [ "$t" = accel ] && echo -e "$w\t$t\t$r\t0\tnan\tnan\t1" >> "$RAW"
          rm -f "$f.log"; continue
        fi
        nreq=$(awk '/^requests:/{print $8}' "$f.txt")     # succeeded
        bad=$(awk '/^requests:/{print $10+$12}' "$f.txt")  # failed + errored
        st=$(awk '/^status codes:/{gsub(/,/,""); print $5+$7+$9}' "$f.txt")  # 3xx+4xx+5xx
        p99=$(p99_ms "$f.log")
        us=$(us_per_req "$k0" "$k1" "$nreq" %.1f)
        echo -e "$w\t$t\t$r\t${rps:-0}\t${p99}\t$us\t$(( ${bad:-0} + ${st:-0} ))" >> "$RAW"
        log "$w $t r$r: ${rps:-?} req/s p99 $p99 ms, $t CPU $us us/req (failed/non-2xx ${bad:-?}/${st:-?})"
        rm -f "$f.log"
        kill -0 "${SPID[$t]}" 2>/dev/null || { KEEP=1; die "$t died during $w"; }
      done
    done
    wi=$((wi + 1))
  done
done
ELAPSED=$(( $(date +%s) - START ))

col() { awk -F'\t' -v w="$1" -v t="$2" -v c="$3" '$1==w && $2==t {print $c}' "$RAW"; }
echo
echo "PIN=$PIN, $(nproc) CPUs, $WORKERS worker(s) each, h2load -t1, ${DURATION} s (+1 s warm-up) x $ROUNDS round(s), median of rounds; $(date -u +%FT%TZ)"
echo
hdr="| workload |"; sep="|---|"
for t in "${TL[@]}"; do hdr="$hdr $t req/s |"; sep="$sep---:|"; done
[[ " $TARGETS " == *" accel "* && " $TARGETS " == *" nginx-cache "* ]] && { hdr="$hdr accel/nginx-cache |"; sep="$sep---:|"; }
[[ " $TARGETS " == *" accel "* && " $TARGETS " == *" nginx-disk "* ]] && { hdr="$hdr accel/nginx-disk |"; sep="$sep---:|"; }
for t in "${TL[@]}"; do hdr="$hdr $t p99 ms |"; sep="$sep---:|"; done
for t in "${TL[@]}"; do hdr="$hdr $t CPU µs/req |"; sep="$sep---:|"; done
echo "$hdr"; echo "$sep"
fails=0
for s in $SIZES; do for l in $LOADS; do
  w="hit-$s-$l"; line="| $w |"; declare -A R=()
  for t in "${TL[@]}"; do
    R[$t]=$(col "$w" "$t" 4 | median)
    e=$(col "$w" "$t" 7 | awk '{s+=$1} END{print s+0}')
    if [ "$e" -gt 0 ]; then
      line="$line $(fmt0 "${R[$t]}") ($e failed) |"
      [ "$t" = accel ] && fails=$((fails + e))
    else
      line="$line $(fmt0 "${R[$t]}") |"
    fi
  done
  [[ " $TARGETS " == *" accel "* && " $TARGETS " == *" nginx-cache "* ]] && line="$line $(ratio "${R[accel]}" "${R[nginx-cache]}") |"
  [[ " $TARGETS " == *" accel "* && " $TARGETS " == *" nginx-disk "* ]] && line="$line $(ratio "${R[accel]}" "${R[nginx-disk]}") |"
  for t in "${TL[@]}"; do line="$line $(fmt %.2f "$(col "$w" "$t" 5 | median)") |"; done
  for t in "${TL[@]}"; do line="$line $(fmt %.1f "$(col "$w" "$t" 6 | median)") |"; done
  echo "$line"; unset R
done; done
echo
echo "Command: \`$INVOCATION\` (measurement loop ${ELAPSED} s$([ "$SKIPPED" -gt 0 ] && echo ", $SKIPPED run(s) skipped: MAX_SECONDS=$MAX_SECONDS spent"))"
echo "Each run: \`$([ "$PIN" = 1 ] && echo "taskset -c $CLIENT_CPUS ")h2load -t1 -c{20,100} -m10 -D $DURATION --warm-up-time=1 https://127.0.0.1:PORT/{${SIZES// /,}}.bin\`; p99 from --log-file (2xx answers)"
[[ " $TARGETS " == *" accel "* ]] && echo "accel: \`$([ "$PIN" = 1 ] && echo "taskset -c $SERVER_CPUS ")build/accel -a 127.0.0.1:PORT,tls -c cert.pem,cert.key -b ORIGIN -w $WORKERS -s mem=2g\` (no access log; binary $ACCEL_ID, tree $ACCEL_GIT)"
echo "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'): \`listen ... ssl http2\`, worker_processes $WORKERS, access_log off, the same certificate, protocols, ciphers and groups; nginx-cache: proxy_cache (files) + keepalive upstream; nginx-disk: root + sendfile + open_file_cache"
echo "Origin: nginx, 1 worker, static random-byte files with Cache-Control: max-age=3600."
echo "CPU µs/req: CPU time (user+system, all threads/processes) of the proxy during the run, divided by the requests h2load completed."
if [ "$fails" -gt 0 ]; then
  echo
  echo "**FAIL: h2load counted $fails failed or non-2xx requests from accel.**"
  exit 1
fi
exit 0
