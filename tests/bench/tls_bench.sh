#!/usr/bin/env bash
# tls_bench.sh - TLS termination: accel beside nginx (issue 9, "Benchmark").
#
# Both terminate TLS with the same certificate and cache in front of the same
# nginx origin (accel: its memory cache; nginx: proxy_cache), so every
# measured request is a cache hit served over TLS.  Three workloads per
# certificate type (ECDSA P-256 and RSA 2048):
#   ka    keep-alive hits: wrk over https, 50 connections (bulk TLS cost)
#   res   a new TLS connection per request: wrk with "Connection: close";
#         wrk keeps its session across reconnects, so these are resumed
#         handshakes (TLS 1.3 tickets)
#   full  new connections with full handshakes: $SCLIENTS parallel
#         `openssl s_time -new -www /1k.bin` (no resumption); the client is
#         the bottleneck here, compare the CPU per connection
# Every (workload, target) pair runs ROUNDS times, target order rotated per
# round; the table gives the median over rounds and the ratio accel/nginx.
#
# Usage:  tests/bench/tls_bench.sh
#         PIN=1 ROUNDS=3 DURATION=5 tests/bench/tls_bench.sh
#
# Environment knobs (all optional):
#   WORKERS     accel -w N and nginx worker_processes N; default 1
#   ROUNDS      default 3;  DURATION  seconds per wrk run, default 5
#   PIN=1       wrk on CPU $CLIENT_CPUS (default 0), servers on CPU $SERVER_CPUS (default 1)
#   PORT_BASE   default 25100 (issue 9's range is 25000-26999); uses base+0 (origin),
#               +1 (nginx), +2 (accel), moving up by 10 until all are free
#   TARGETS     subset of "accel nginx";  CERTS  subset of "ecdsa rsa";  LOADS  subset of "ka res full"
#   SCLIENTS    parallel s_time clients for "full" (default 4)
#   ACCEL       accel binary (default <repo>/build/accel)
#   MAX_SECONDS budget of the measurement loop (default 300); later runs are skipped
#   KEEP=1      keep the run directory
#
# Every process this script starts is recorded by PID and stopped at exit
# (TERM, then KILL). Nothing is stopped by name.
# The shared logic (ports, server start/stop, wrk runs, CPU sampling, medians)
# is in lib.sh.
set -u -o pipefail

WORKERS="${WORKERS:-1}"
PORT_BASE="${PORT_BASE:-25100}"
MAX_SECONDS="${MAX_SECONDS:-300}"
# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CERTS="${CERTS:-ecdsa rsa}"
LOADS="${LOADS:-ka res full}"
SCLIENTS="${SCLIENTS:-4}"
INVOCATION="WORKERS=$WORKERS ROUNDS=$ROUNDS DURATION=$DURATION PIN=$PIN tests/bench/tls_bench.sh"

bench_need wrk curl openssl "$NGINX"
[ -x "$ACCEL" ] || { echo "no accel binary at $ACCEL (make)" >&2; exit 2; }

bench_init accel-tls-bench
mkdir -p "$RUN/out" "$RUN/origin-tmp" "$RUN/proxy-tmp"
bench_ports 3
ORIGIN_PORT=$BASE; PORT[nginx]=$((BASE + 1)); PORT[accel]=$((BASE + 2))

# ---------------------------------------------------------------- certificates, content
bench_docs 1k
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -keyout "$RUN/ecdsa.key" -out "$RUN/ecdsa.pem" 2>/dev/null \
  || die "openssl: ECDSA certificate"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -keyout "$RUN/rsa.key" -out "$RUN/rsa.pem" 2>/dev/null \
  || die "openssl: RSA certificate"
chmod a+r "$RUN"/*.key

cat > "$RUN/origin.conf" <<EOF
pid $RUN/origin.pid;
error_log $RUN/origin.err warn;
worker_processes 1;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $RUN/origin-tmp/body; proxy_temp_path $RUN/origin-tmp/proxy;
    fastcgi_temp_path $RUN/origin-tmp/fcgi; uwsgi_temp_path $RUN/origin-tmp/uwsgi;
    scgi_temp_path $RUN/origin-tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $RUN/docs;
        add_header Cache-Control "max-age=3600" always;
    }
}
EOF

nginx_conf() {  # nginx_conf CERT -> proxy config: TLS, same protocols/ciphers/groups as accel
  cat <<EOF
pid $RUN/proxy.pid;
error_log $RUN/proxy.err warn;
worker_processes $WORKERS;
worker_rlimit_nofile 65536;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $RUN/proxy-tmp/body; proxy_temp_path $RUN/proxy-tmp/proxy;
    fastcgi_temp_path $RUN/proxy-tmp/fcgi; uwsgi_temp_path $RUN/proxy-tmp/uwsgi;
    scgi_temp_path $RUN/proxy-tmp/scgi;
    proxy_cache_path $RUN/nginx-cache levels=1:2 keys_zone=bench:16m use_temp_path=off;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 16; }
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl reuseport backlog=4096;
        ssl_certificate $RUN/$1.pem;
        ssl_certificate_key $RUN/$1.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_session_tickets on;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
        }
    }
}
EOF
}

bench_private_accel
start_nginx origin

declare -A SPID=()
start_servers() {  # start_servers CERT: (re)start both proxies with that certificate
  local c=$1 t
  for t in $TARGETS; do
    if [ -n "${SPID[$t]:-}" ]; then kill -TERM "${SPID[$t]}" 2>/dev/null; wait "${SPID[$t]}" 2>/dev/null; fi
  done
  while port_busy "${PORT[nginx]}" || port_busy "${PORT[accel]}"; do sleep 0.2; done
  for t in $TARGETS; do
    case $t in
      nginx) nginx_conf "$c" > "$RUN/proxy.conf"; rm -rf "$RUN/nginx-cache"
             start_nginx proxy; SPID[nginx]=${SRVPID[proxy]} ;;
      accel) "${SRV[@]}" "$ACCEL" -a "127.0.0.1:${PORT[accel]},tls" -c "$RUN/$c.pem,$RUN/$c.key" \
                 -b "127.0.0.1:$ORIGIN_PORT" -w "$WORKERS" >"$RUN/accel.stdout" 2>>"$RUN/accel.stderr" &
             PIDS+=($!); SPID[accel]=$! ;;
    esac
  done
  for t in $TARGETS; do
    wait_http "https://127.0.0.1:${PORT[$t]}/1k.bin" 20 || { KEEP=1; tail -n 20 "$RUN/accel.stderr" "$RUN/proxy.err" >&2; die "$t did not come up"; }
    for _ in 1 2 3; do curl -sk -o /dev/null "https://127.0.0.1:${PORT[$t]}/1k.bin"; done   # warm the cache
    curl -sk -o "$RUN/check" "https://127.0.0.1:${PORT[$t]}/1k.bin"
    cmp -s "$RUN/check" "$RUN/docs/1k.bin" || die "$t: /1k.bin differs from the origin's file"
  done
}

read -r -a TL <<< "$TARGETS"
RAW="$RUN/out/raw.tsv"
: > "$RAW"
START=$(date +%s); SKIPPED=0
log "run dir $RUN; PIN=$PIN WORKERS=$WORKERS DURATION=${DURATION}s ROUNDS=$ROUNDS; ports origin $ORIGIN_PORT nginx ${PORT[nginx]} accel ${PORT[accel]}"
wi=0
for c in $CERTS; do
  start_servers "$c"
  log "servers up with the $c certificate"
  for l in $LOADS; do
    w="$c-$l"
    hdr=(); [ "$l" = res ] && hdr=(-H "Connection: close")
    for r in $(seq 1 "$ROUNDS"); do
      for t in $(rotation "$r" "$wi"); do
        budget_spent "$w" "$t" "$r" && continue
        f="$RUN/out/$w.$t.r$r.txt"
        k0=$(tree_ticks "${SPID[$t]}")
        if [ "$l" = full ]; then
          sp=()
          for i in $(seq 1 "$SCLIENTS"); do
            "${CLI[@]}" timeout $((DURATION + 15)) openssl s_time -connect "127.0.0.1:${PORT[$t]}" -new \
                -time "$DURATION" -www /1k.bin > "$f.$i" 2>&1 &
            sp+=($!)
          done
          wait "${sp[@]}"
          k1=$(tree_ticks "${SPID[$t]}")
          nreq=$(cat "$f".* | awk '/connections in .* real seconds/{s+=$1} END{print s+0}')
          rps=$(awk -v n="$nreq" -v d="$DURATION" 'BEGIN{printf "%.0f", n/d}')
          : > "$f"
        else
          run_wrk "$f" -t1 -c50 "${hdr[@]}" "https://127.0.0.1:${PORT[$t]}/1k.bin"
          k1=$(tree_ticks "${SPID[$t]}")
          rps=$(wrk_rps "$f"); nreq=$(wrk_nreq "$f")
        fi
        us=$(us_per_req "$k0" "$k1" "$nreq" %.0f)
        errs=$(wrk_errs "$f" | awk -F'\t' '{print $1+$2+$3+$4+$5}')
        echo -e "$w\t$t\t$r\t${rps:-0}\t$errs\t$us" >> "$RAW"
        log "$w $t r$r: ${rps:-?} req/s, $t CPU ${us} us/req (errors $errs)"
        kill -0 "${SPID[$t]}" 2>/dev/null || die "$t died during $w"
      done
    done
    wi=$((wi + 1))
  done
done
ELAPSED=$(( $(date +%s) - START ))

echo
echo "PIN=$PIN, $(nproc) CPUs, $WORKERS worker(s) each, ${DURATION} s x $ROUNDS round(s), median; $(date -u +%FT%TZ)"
echo
echo "| workload | accel req/s | nginx req/s | accel/nginx | accel CPU µs/req | nginx CPU µs/req | CPU nginx/accel |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in $CERTS; do for l in $LOADS; do
  w="$c-$l"; a=$(col "$w" accel | median); g=$(col "$w" nginx | median)
  ua=$(col "$w" accel 6 | median); ug=$(col "$w" nginx 6 | median)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$(fmt0 "$a")" "$(fmt0 "$g")" "$(ratio "$a" "$g")" \
    "$ua" "$ug" "$(ratio "$ug" "$ua")"
done; done
echo
echo "Command: \`$INVOCATION\` (loop ${ELAPSED} s$([ $SKIPPED -gt 0 ] && echo ", $SKIPPED run(s) skipped"); accel tree $ACCEL_GIT)"
echo "ka: \`wrk -t1 -c50 https://.../1k.bin\` (keep-alive hits); res: the same with \`-H 'Connection: close'\` (a new connection per request, resumed: wrk keeps its session); full: $SCLIENTS x \`openssl s_time -new -time $DURATION -www /1k.bin\` (full handshakes, req/s = connections/s)"
echo "accel: \`-a ADDR,tls -c CERT,KEY -b ORIGIN -w $WORKERS\`; nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'): proxy_cache, same protocols, ciphers, groups, tickets, worker_processes $WORKERS"
echo "CPU µs/req: CPU time (user+system) of the proxy's process tree during the run / requests completed (less sensitive to other load than req/s)"
# Errors make the run fail: a figure measured over failed requests is no figure.
errsum=$(awk -F'\t' '$2=="accel" {s+=$5} END{print s+0}' "$RAW")
othersum=$(awk -F'\t' '$2!="accel" {s+=$5} END{print s+0}' "$RAW")
[ "$othersum" -gt 0 ] && echo "wrk reported $othersum socket errors / non-2xx answers from nginx (see KEEP=1 outputs)"
if [ "$errsum" -gt 0 ]; then
  echo "FAIL: wrk reported $errsum socket errors / non-2xx answers from accel (see KEEP=1 outputs)"
  exit 1
fi
exit 0
