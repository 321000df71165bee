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
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORKERS="${WORKERS:-1}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
PIN="${PIN:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-0}"
SERVER_CPUS="${SERVER_CPUS:-1}"
PORT_BASE="${PORT_BASE:-25100}"
TARGETS="${TARGETS:-accel nginx}"
CERTS="${CERTS:-ecdsa rsa}"
LOADS="${LOADS:-ka res full}"
SCLIENTS="${SCLIENTS:-4}"
ACCEL="${ACCEL:-$REPO/build/accel}"
MAX_SECONDS="${MAX_SECONDS:-300}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
INVOCATION="WORKERS=$WORKERS ROUNDS=$ROUNDS DURATION=$DURATION PIN=$PIN tests/bench/tls_bench.sh"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }
for t in wrk curl openssl "$NGINX"; do
  command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t (sh scripts/deps.sh bench)" >&2; exit 2; }
done
[ -x "$ACCEL" ] || { echo "no accel binary at $ACCEL (make)" >&2; exit 2; }

RUN="$(mktemp -d -t accel-tls-bench.XXXXXX)"
chmod 755 "$RUN"
mkdir -p "$RUN/docs" "$RUN/out" "$RUN/origin-tmp" "$RUN/proxy-tmp"
PIDS=()
declare -A PORT=()

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local p alive
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ "${KEEP:-0}" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SRV=(); CLI=()
if [ "$PIN" = 1 ]; then SRV=(taskset -c "$SERVER_CPUS"); CLI=(taskset -c "$CLIENT_CPUS"); fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=$PORT_BASE; found=0
for _ in $(seq 1 20); do
  if ! port_busy "$base" && ! port_busy $((base + 1)) && ! port_busy $((base + 2)); then found=1; break; fi
  base=$((base + 10))
done
[ $found = 1 ] || die "no free ports from $PORT_BASE; set PORT_BASE"
ORIGIN_PORT=$base; PORT[nginx]=$((base + 1)); PORT[accel]=$((base + 2))

wait_https() {  # wait_https PORT SECONDS
  local deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    curl -sk -o /dev/null --max-time 2 "https://127.0.0.1:$1/1k.bin" && return 0
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------- certificates, content
head -c 1024 /dev/urandom > "$RUN/docs/1k.bin"
chmod -R a+rX "$RUN/docs"
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

cp "$ACCEL" "$RUN/accel-bin" || die "cannot copy $ACCEL"   # others may rebuild build/accel
ACCEL_GIT="$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
"${SRV[@]}" "$NGINX" -p "$RUN" -c "$RUN/origin.conf" -g 'daemon off;' >"$RUN/origin.stdout" 2>&1 &
PIDS+=($!)

declare -A SPID=()
start_servers() {  # start_servers CERT: (re)start both proxies with that certificate
  local c=$1 t p
  for t in $TARGETS; do
    if [ -n "${SPID[$t]:-}" ]; then kill -TERM "${SPID[$t]}" 2>/dev/null; wait "${SPID[$t]}" 2>/dev/null; fi
  done
  while port_busy "${PORT[nginx]}" || port_busy "${PORT[accel]}"; do sleep 0.2; done
  for t in $TARGETS; do
    case $t in
      nginx) nginx_conf "$c" > "$RUN/proxy.conf"; rm -rf "$RUN/nginx-cache"
             "${SRV[@]}" "$NGINX" -p "$RUN" -c "$RUN/proxy.conf" -g 'daemon off;' >"$RUN/proxy.stdout" 2>&1 & ;;
      accel) "${SRV[@]}" "$RUN/accel-bin" -a "127.0.0.1:${PORT[accel]},tls" -c "$RUN/$c.pem,$RUN/$c.key" \
                 -b "127.0.0.1:$ORIGIN_PORT" -w "$WORKERS" >"$RUN/accel.stdout" 2>>"$RUN/accel.stderr" & ;;
    esac
    p=$!; PIDS+=("$p"); SPID[$t]=$p
  done
  for t in $TARGETS; do
    wait_https "${PORT[$t]}" 20 || { KEEP=1; tail -n 20 "$RUN/accel.stderr" "$RUN/proxy.err" >&2; die "$t did not come up"; }
    for _ in 1 2 3; do curl -sk -o /dev/null "https://127.0.0.1:${PORT[$t]}/1k.bin"; done   # warm the cache
    curl -sk -o "$RUN/check" "https://127.0.0.1:${PORT[$t]}/1k.bin"
    cmp -s "$RUN/check" "$RUN/docs/1k.bin" || die "$t: /1k.bin differs from the origin's file"
  done
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
tree_pids() { local c; echo "$1"; for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree_pids "$c"; done; }
tree_ticks() {  # utime+stime of a process tree (all threads, nginx workers), clock ticks
  local p sum=0 v
  for p in $(tree_pids "$1"); do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "nan"; exit}; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
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
      n=${#TL[@]}
      for k in $(seq 0 $((n - 1))); do
        t=${TL[$(( (k + r + wi) % n ))]}
        if [ $(( $(date +%s) - START )) -gt "$MAX_SECONDS" ]; then SKIPPED=$((SKIPPED + 1)); continue; fi
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
          "${CLI[@]}" timeout $((DURATION + 15)) wrk -t1 -c50 -d"${DURATION}s" --timeout 5s "${hdr[@]}" \
              "https://127.0.0.1:${PORT[$t]}/1k.bin" > "$f" 2>&1
          k1=$(tree_ticks "${SPID[$t]}")
          rps=$(awk '/^Requests\/sec/{printf "%.0f", $2}' "$f")
          nreq=$(awk '/ requests in /{print $1}' "$f")
        fi
        us=$(awk -v a="$k0" -v b="$k1" -v n="${nreq:-0}" -v hz="$CLK_TCK" 'BEGIN{ if (n>0) printf "%.0f", (b-a)/hz*1e6/n; else print "nan" }')
        errs=$(awk '/Socket errors/{gsub(/,/,""); s=$4+$6+$8+$10} /Non-2xx/{s+=$5} END{print s+0}' "$f")
        echo -e "$w\t$t\t$r\t${rps:-0}\t$errs\t$us" >> "$RAW"
        log "$w $t r$r: ${rps:-?} req/s, $t CPU ${us} us/req (errors $errs)"
        kill -0 "${SPID[$t]}" 2>/dev/null || die "$t died during $w"
      done
    done
    wi=$((wi + 1))
  done
done
ELAPSED=$(( $(date +%s) - START ))

col() { awk -F'\t' -v w="$1" -v t="$2" -v c="${3:-4}" '$1==w && $2==t {print $c}' "$RAW"; }
echo
echo "PIN=$PIN, $(nproc) CPUs, $WORKERS worker(s) each, ${DURATION} s x $ROUNDS round(s), median; $(date -u +%FT%TZ)"
echo
echo "| workload | accel req/s | nginx req/s | accel/nginx | accel CPU µs/req | nginx CPU µs/req | CPU nginx/accel |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in $CERTS; do for l in $LOADS; do
  w="$c-$l"; a=$(col "$w" accel | median); g=$(col "$w" nginx | median)
  ua=$(col "$w" accel 6 | median); ug=$(col "$w" nginx 6 | median)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$w" \
    "$(awk -v x="$a" 'BEGIN{ if (x=="nan") print "-"; else printf "%.0f", x }')" \
    "$(awk -v x="$g" 'BEGIN{ if (x=="nan") print "-"; else printf "%.0f", x }')" \
    "$(awk -v a="$a" -v b="$g" 'BEGIN{ if (a!="nan" && b!="nan" && b+0>0) printf "%.2f", a/b; else print "-" }')" \
    "$ua" "$ug" "$(awk -v a="$ug" -v b="$ua" 'BEGIN{ if (a!="nan" && b!="nan" && b+0>0) printf "%.2f", a/b; else print "-" }')"
done; done
echo
echo "Command: \`$INVOCATION\` (loop ${ELAPSED} s$([ $SKIPPED -gt 0 ] && echo ", $SKIPPED run(s) skipped"); accel tree $ACCEL_GIT)"
echo "ka: \`wrk -t1 -c50 https://.../1k.bin\` (keep-alive hits); res: the same with \`-H 'Connection: close'\` (a new connection per request, resumed: wrk keeps its session); full: $SCLIENTS x \`openssl s_time -new -time $DURATION -www /1k.bin\` (full handshakes, req/s = connections/s)"
echo "accel: \`-a ADDR,tls -c CERT,KEY -b ORIGIN -w $WORKERS\`; nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'): proxy_cache, same protocols, ciphers, groups, tickets, worker_processes $WORKERS"
echo "CPU µs/req: CPU time (user+system) of the proxy's process tree during the run / requests completed (less sensitive to other load than req/s)"
errsum=$(awk -F'\t' '{s+=$5} END{print s+0}' "$RAW")
[ "$errsum" -gt 0 ] && echo "wrk reported $errsum socket errors / non-2xx answers in total (see KEEP=1 outputs)"
exit 0
