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
# Usage:  tests/bench/proxy_bench.sh
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
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORKERS="${WORKERS:-2}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
PIN="${PIN:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-0}"
SERVER_CPUS="${SERVER_CPUS:-1}"
THREADS="${THREADS:-1}"
PORT_BASE="${PORT_BASE:-23000}"
TARGETS="${TARGETS:-accel nginx}"
SIZES="${SIZES:-1k 64k}"
CONNS="${CONNS:-50 200}"
ACCEL="${ACCEL:-$REPO/build/accel}"
MAX_SECONDS="${MAX_SECONDS:-270}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
INVOCATION="WORKERS=$WORKERS ROUNDS=$ROUNDS DURATION=$DURATION PIN=$PIN THREADS=$THREADS TARGETS=\"$TARGETS\""
[ "$SIZES" != "1k 64k" ] && INVOCATION="$INVOCATION SIZES=\"$SIZES\""
[ "$CONNS" != "50 200" ] && INVOCATION="$INVOCATION CONNS=\"$CONNS\""
[ "$ACCEL" != "$REPO/build/accel" ] && INVOCATION="$INVOCATION ACCEL=$ACCEL"
INVOCATION="$INVOCATION tests/bench/pool_bench.sh"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

for t in wrk curl "$NGINX"; do
  command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t (sh scripts/deps.sh bench)" >&2; exit 2; }
done
[ "$PIN" = 1 ] && { command -v taskset >/dev/null 2>&1 || { echo "missing tool: taskset" >&2; exit 2; }; }
for t in $TARGETS; do
  case $t in
    accel) [ -x "$ACCEL" ] || { echo "no accel binary at $ACCEL (make build/accel)" >&2; exit 2; } ;;
    nginx) ;;
    *) echo "unknown target $t (accel nginx)" >&2; exit 2 ;;
  esac
done

RUN="$(mktemp -d -t accel-pool-bench.XXXXXX)"
chmod 755 "$RUN"            # nginx workers drop to 'nobody' when started as root
OUT="${OUT:-$RUN/out}"
mkdir -p "$OUT" "$RUN/docs"
PIDS=()
declare -A MAINPID=() SRVPID=()

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

# Command prefixes as arrays (not functions), so that $! is the server's own PID.
SRV=(); CLI=()
if [ "$PIN" = 1 ]; then SRV=(taskset -c "$SERVER_CPUS"); CLI=(taskset -c "$CLIENT_CPUS"); fi

# ---------------------------------------------------------------- ports
port_busy() {  # listening (ss) or accepting (connect) on 127.0.0.1:PORT
  if command -v ss >/dev/null 2>&1 && ss -Htln "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
base=$PORT_BASE; found=0
for _ in $(seq 1 20); do
  if ! port_busy "$base" && ! port_busy $((base + 1)) && ! port_busy $((base + 2)) &&
     ! port_busy $((base + 3)) && ! port_busy $((base + 4)); then found=1; break; fi
  base=$((base + 10))
done
[ $found = 1 ] || die "no five free ports from $PORT_BASE to $base; set PORT_BASE"
ORIGIN_PORTS=($base $((base + 1)) $((base + 2)))
declare -A PORT=( [nginx]=$((base + 3)) [accel]=$((base + 4)) )

wait_http() {  # wait_http URL SECONDS
  local deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    curl -s -o /dev/null --max-time 2 "$1" && return 0
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------- content
head -c 1024  /dev/urandom > "$RUN/docs/1k.bin"
head -c 65536 /dev/urandom > "$RUN/docs/64k.bin"
chmod -R a+rX "$RUN/docs"

nginx_common() {  # main-context and shared http settings for both nginx instances
  cat <<EOF
pid $RUN/$1.pid;
error_log $RUN/$1.err warn;
worker_rlimit_nofile 65536;
EOF
}
nginx_http_common() {
  cat <<EOF
    access_log off;
    client_body_temp_path $RUN/$1-tmp/body;
    proxy_temp_path       $RUN/$1-tmp/proxy;
    fastcgi_temp_path     $RUN/$1-tmp/fastcgi;
    uwsgi_temp_path       $RUN/$1-tmp/uwsgi;
    scgi_temp_path        $RUN/$1-tmp/scgi;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    default_type application/octet-stream;
EOF
}

mkdir -p "$RUN/proxy-tmp"
for i in 0 1 2; do
mkdir -p "$RUN/origin$i-tmp"
{
  nginx_common origin$i
  cat <<EOF
worker_processes 1;
events { worker_connections 4096; }
http {
$(nginx_http_common origin$i)
    sendfile on;
    tcp_nopush on;
    open_file_cache max=100;
    server {
        listen 127.0.0.1:${ORIGIN_PORTS[$i]} reuseport backlog=4096;
        root $RUN/docs;
        location / { }
    }
}
EOF
} > "$RUN/origin$i.conf"
done

{
  nginx_common proxy
  cat <<EOF
worker_processes $WORKERS;
events { worker_connections 4096; }
http {
$(nginx_http_common proxy)
    upstream origin {
        server 127.0.0.1:${ORIGIN_PORTS[0]};
        server 127.0.0.1:${ORIGIN_PORTS[1]};
        server 127.0.0.1:${ORIGIN_PORTS[2]};
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} reuseport backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # keep the 64 KiB bodies in memory: no spooling to temp files
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
} > "$RUN/proxy.conf"

start_nginx() {  # start_nginx NAME
  "${SRV[@]}" "$NGINX" -p "$RUN" -c "$RUN/$1.conf" -g 'daemon off;' >"$RUN/$1.stdout" 2>&1 &
  PIDS+=($!)
  SRVPID[$1]=$!
}

# ---------------------------------------------------------------- servers
log "run dir $RUN; PIN=$PIN WORKERS=$WORKERS THREADS=$THREADS DURATION=${DURATION}s ROUNDS=$ROUNDS"
for i in 0 1 2; do
  start_nginx origin$i
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

# Run a private copy of the binary: others may rebuild build/accel meanwhile.
if [[ " $TARGETS " == *" accel "* ]]; then
  cp "$ACCEL" "$RUN/accel-bin" || die "cannot copy $ACCEL"
  ACCEL_ID="sha256 $(sha256sum "$RUN/accel-bin" | cut -c1-12), built $(date -u -r "$ACCEL" +%FT%TZ)"
  ACCEL_GIT="$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
  [ -n "$(git -C "$REPO" status --porcelain --untracked-files=all -- accel 2>/dev/null)" ] && ACCEL_GIT="$ACCEL_GIT + uncommitted accel/ changes"
  log "accel binary: $ACCEL ($ACCEL_ID; tree $ACCEL_GIT)"
  ACCEL="$RUN/accel-bin"
fi
ACCEL_CMDLINE="$ACCEL -a 127.0.0.1:${PORT[accel]} -f $RUN/pool.vcl -w $WORKERS -s none"
for t in $TARGETS; do
  case $t in
    nginx) start_nginx proxy; MAINPID[nginx]=${SRVPID[proxy]} ;;
    accel)
      log "accel: $ACCEL_CMDLINE"
      # shellcheck disable=SC2086
      "${SRV[@]}" $ACCEL_CMDLINE >"$RUN/accel.stdout" 2>"$RUN/accel.stderr" &
      PIDS+=($!); MAINPID[accel]=$! ;;
  esac
done
for t in $TARGETS; do
  wait_http "http://127.0.0.1:${PORT[$t]}/1k.bin" 30 || {
    log "$t did not come up; logs kept in $RUN"; KEEP=1
    tail -n 20 "$RUN"/accel.stderr "$RUN"/proxy.err 2>/dev/null >&2; exit 1; }
  # sanity: the proxy must return the origin's bytes exactly
  for s in $SIZES; do
    curl -s --max-time 5 -o "$RUN/check.$t.$s" "http://127.0.0.1:${PORT[$t]}/$s.bin"
    cmp -s "$RUN/check.$t.$s" "$RUN/docs/$s.bin" || { KEEP=1; die "$t: /$s.bin differs from the origin's file; logs kept in $RUN"; }
  done
done
log "servers up: origins:${ORIGIN_PORTS[*]} $(for t in $TARGETS; do printf '%s:%s ' "$t" "${PORT[$t]}"; done)"

# ---------------------------------------------------------------- helpers
to_ms() {  # wrk latency token (812.00us, 1.20ms, 2.01s, 1.00m) -> ms
  awk -v x="$1" 'BEGIN{ v=x+0; if (x ~ /us$/) v/=1000; else if (x ~ /ms$/) v=v; else if (x ~ /m$/) v*=60000; else if (x ~ /s$/) v*=1000; printf "%.2f", v }'
}
cpu_jiffies() {  # "busy total" jiffies over a CPU list such as 0 or 0,1
  awk -v l="$1" 'BEGIN{n=split(l,a,","); for(i=1;i<=n;i++) want["cpu" a[i]]=1}
       ($1 in want){b+=$2+$3+$4+$7+$8; t+=$2+$3+$4+$5+$6+$7+$8} END{print b+0, t+0}' /proc/stat
}
busy_pct() {
  awk -v x="$1" -v y="$2" 'BEGIN{split(x,a," "); split(y,b," "); d=b[2]-a[2]; if (d>0) printf "%.0f", 100*(b[1]-a[1])/d; else printf "nan"}'
}
mmm() {  # mmm FORMAT: "min | median | max" of the values on stdin
  sort -g | awk -v f="$1" '{a[NR]=$1} END{ if (NR==0) {print "- | - | -"; exit}
    printf f " | " f " | " f, a[1], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[NR]}'
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
tree_pids() {  # a PID and all its descendants
  local c
  echo "$1"
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree_pids "$c"; done
}
tree_ticks() {  # utime+stime (all threads) summed over a process tree, in clock ticks
  local p sum=0 v
  for p in $(tree_pids "$1"); do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "nan"; exit}; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

declare -A DEAD=()
check_alive() {  # check_alive TARGET -> 1 if it died (recorded once)
  local t=$1 st
  [ -n "${DEAD[$t]:-}" ] && return 1
  if ! kill -0 "${MAINPID[$t]}" 2>/dev/null; then
    wait "${MAINPID[$t]}" 2>/dev/null; st=$?
    DEAD[$t]="exited with status $st"
    [ "$st" -gt 128 ] && DEAD[$t]="killed by signal $((st - 128)) (status $st)"
    log "!!! $t (pid ${MAINPID[$t]}) is gone: ${DEAD[$t]}"
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------- measurements
WORKLOADS=()
for s in $SIZES; do for c in $CONNS; do WORKLOADS+=("$s-c$c"); done; done
read -r -a TL <<< "$TARGETS"
START=$(date +%s)
RAW="$OUT/raw.tsv"
echo -e "workload\ttarget\tround\treq_s\tp50_ms\tp99_ms\tconnect\tread\twrite\ttimeout\tnon2xx\tclient_cpu\tserver_cpu\tproxy_cpu_us_per_req" > "$RAW"
SKIPPED=0
wi=0
for w in "${WORKLOADS[@]}"; do
  size=${w%%-c*}; conns=${w##*-c}
  for r in $(seq 1 "$ROUNDS"); do
    n=${#TL[@]}
    for k in $(seq 0 $((n - 1))); do
      t=${TL[$(( (k + r + wi) % n ))]}
      check_alive "$t" || continue
      if [ $(( $(date +%s) - START )) -gt "$MAX_SECONDS" ]; then
        log "budget MAX_SECONDS=$MAX_SECONDS spent; skipping $w/$t r$r"; SKIPPED=$((SKIPPED + 1)); continue
      fi
      f="$OUT/$w.$t.r$r.txt"
      c0=$(cpu_jiffies "$CLIENT_CPUS"); s0=$(cpu_jiffies "$SERVER_CPUS"); k0=$(tree_ticks "${MAINPID[$t]}")
      "${CLI[@]}" timeout $((DURATION + 15)) wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" --timeout 5s --latency \
          "http://127.0.0.1:${PORT[$t]}/$size.bin" > "$f" 2>&1
      k1=$(tree_ticks "${MAINPID[$t]}"); c1=$(cpu_jiffies "$CLIENT_CPUS"); s1=$(cpu_jiffies "$SERVER_CPUS")
      ccpu=$(busy_pct "$c0" "$c1"); scpu=$(busy_pct "$s0" "$s1")
      rps=$(awk '/^Requests\/sec/{printf "%.0f", $2}' "$f")
      nreq=$(awk '/ requests in /{print $1}' "$f")
      pcpu=$(awk -v a="$k0" -v b="$k1" -v n="${nreq:-0}" -v hz="$CLK_TCK" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/hz*1e6/n; else print "nan" }')
      p50=$(awk '$1=="50%"{print $2}' "$f"); p99=$(awk '$1=="99%"{print $2}' "$f")
      errs=$(awk '/Socket errors/{gsub(/,/,""); c=$4; r=$6; w=$8; t=$10} /Non-2xx/{n=$5}
                  END{printf "%d\t%d\t%d\t%d\t%d", c, r, w, t, n}' "$f")
      [ -n "$p50" ] && p50=$(to_ms "$p50"); [ -n "$p99" ] && p99=$(to_ms "$p99")
      echo -e "$w\t$t\t$r\t${rps:-0}\t${p50:-nan}\t${p99:-nan}\t$errs\t$ccpu\t$scpu\t$pcpu" >> "$RAW"
      log "$w $t r$r: ${rps:-?} req/s p50 ${p50:-?} ms p99 ${p99:-?} ms errors(c/r/w/t/non2xx) $(echo "$errs" | tr '\t' /) cpu client ${ccpu}% server ${scpu}%, $t ${pcpu} us/req"
      if [ -z "$rps" ]; then log "wrk output for $w/$t r$r:"; sed 's/^/    /' "$f" >&2; fi
      check_alive "$t" || { log "wrk output of the run during which $t died:"; sed 's/^/    /' "$f" >&2; }
    done
  done
  wi=$((wi + 1))
done
ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- table
col() {  # col WORKLOAD TARGET COLUMN -> values, one a line
  awk -F'\t' -v w="$1" -v t="$2" -v c="$3" 'NR>1 && $1==w && $2==t {print $c}' "$RAW"
}
err_note() {  # summed error counts over rounds, e.g. " (errors: read 3, non-2xx 12)"
  awk -F'\t' -v w="$1" -v t="$2" 'NR>1 && $1==w && $2==t {c+=$7; r+=$8; x+=$9; o+=$10; n+=$11; k++}
    END{ s="";
      if (c) s=s sprintf("%sconnect %d", s?", ":"", c); if (r) s=s sprintf("%sread %d", s?", ":"", r);
      if (x) s=s sprintf("%swrite %d", s?", ":"", x); if (o) s=s sprintf("%stimeout %d", s?", ":"", o);
      if (n) s=s sprintf("%snon-2xx %d", s?", ":"", n);
      if (s!="") printf " (errors: %s)", s }' "$RAW"
}
fmt0() { awk -v x="$1" 'BEGIN{ if (x=="nan"||x=="") print "-"; else printf "%.0f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a!="nan" && a!="" && b!="nan" && b+0>0) printf "%.2f", a/b; else printf "-" }'; }

TABLE="$OUT/table.md"
{
  echo "PIN=$PIN, $(nproc) CPUs, $WORKERS workers per proxy, wrk -t$THREADS, ${DURATION} s x $ROUNDS round(s), median of rounds; $(date -u +%FT%TZ)"
  echo
  hdr="| workload |"; sep="|---|"
  for t in "${TL[@]}"; do hdr="$hdr $t req/s |"; sep="$sep---:|"; done
  both=0; [[ " $TARGETS " == *" accel "* && " $TARGETS " == *" nginx "* ]] && both=1
  [ $both = 1 ] && { hdr="$hdr accel/nginx |"; sep="$sep---:|"; }
  for t in "${TL[@]}"; do hdr="$hdr $t p99 ms |"; sep="$sep---:|"; done
  for t in "${TL[@]}"; do hdr="$hdr $t CPU µs/req |"; sep="$sep---:|"; done
  echo "$hdr"; echo "$sep"
  for w in "${WORKLOADS[@]}"; do
    line="| $w |"; declare -A R=()
    for t in "${TL[@]}"; do
      R[$t]=$(col "$w" "$t" 4 | median)
      note=$(err_note "$w" "$t")
      [ -n "${DEAD[$t]:-}" ] && [ "$(col "$w" "$t" 4 | wc -l)" -lt "$ROUNDS" ] && note="$note (died)"
      line="$line $(fmt0 "${R[$t]}")$note |"
    done
    [ $both = 1 ] && line="$line $(ratio "${R[accel]}" "${R[nginx]}") |"
    for t in "${TL[@]}"; do
      p=$(col "$w" "$t" 6 | median | awk '{ if ($1=="nan") print "-"; else printf "%.2f", $1 }')
      line="$line $p |"
    done
    for t in "${TL[@]}"; do
      line="$line $(col "$w" "$t" 14 | median | awk '{ if ($1=="nan") print "-"; else printf "%.1f", $1 }') |"
    done
    echo "$line"; unset R
  done
  if [ "$ROUNDS" -gt 1 ]; then
    echo
    echo "Spread over rounds (min / median / max); CPU busy % is the median over rounds$([ "$PIN" = 1 ] && echo " (client = CPU $CLIENT_CPUS, servers = CPU $SERVER_CPUS)" || echo " (unpinned: both columns are CPU $CLIENT_CPUS / CPU $SERVER_CPUS)")."
    echo
    echo "| workload | target | req/s min | req/s median | req/s max | p99 ms min | p99 ms median | p99 ms max | client CPU % | server CPU % |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do for t in "${TL[@]}"; do
      [ "$(col "$w" "$t" 4 | wc -l)" -gt 0 ] || continue
      echo "| $w | $t | $(col "$w" "$t" 4 | mmm %.0f) | $(col "$w" "$t" 6 | mmm %.2f) | $(col "$w" "$t" 12 | median | awk '{ if ($1=="nan") print "-"; else printf "%.0f", $1 }') | $(col "$w" "$t" 13 | median | awk '{ if ($1=="nan") print "-"; else printf "%.0f", $1 }') |"
    done; done
  fi
  echo
  echo "Command: \`$INVOCATION\` (measurement loop ${ELAPSED} s$([ $SKIPPED -gt 0 ] && echo ", $SKIPPED run(s) skipped: MAX_SECONDS=$MAX_SECONDS spent"))"
  echo "Each run: \`$([ "$PIN" = 1 ] && echo "taskset -c $CLIENT_CPUS ")wrk -t$THREADS -c{${CONNS// /,}} -d${DURATION}s --timeout 5s --latency http://127.0.0.1:PORT/{${SIZES// /,}}.bin\` (brace lists expand to the runs)"
  [[ " $TARGETS " == *" accel "* ]] && echo "accel: \`$([ "$PIN" = 1 ] && echo "taskset -c $SERVER_CPUS ")build/accel -a 127.0.0.1:PORT -f pool.vcl -w $WORKERS -s none\` with a round_robin director over the 3 origins and \`return (pass)\` (no access log; binary $ACCEL_ID, tree $ACCEL_GIT)"
  [[ " $TARGETS " == *" nginx "* ]] && echo "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'): \`proxy_pass\` to an \`upstream { 3 servers (round robin); keepalive 64; }\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection \"\"\`, \`proxy_max_temp_file_size 0\`, access_log off, worker_processes $WORKERS"
  echo "CPU µs/req: CPU time (user+system, all threads and worker processes) the proxy itself used during the run, divided by the requests wrk completed; it excludes the origin and wrk and is less sensitive to other load on the machine than req/s."
  echo "origins: 3 nginx processes, 1 worker each, sendfile, the same static random-byte files /1k.bin and /64k.bin, keep-alive"
} > "$TABLE"
cat "$TABLE"

status=0
for t in "${TL[@]}"; do
  check_alive "$t" >/dev/null 2>&1
  if [ -n "${DEAD[$t]:-}" ]; then
    status=1
    echo
    echo "**$t died during the run: ${DEAD[$t]}.** Last lines of its stderr:"
    echo '```'
    if [ "$t" = accel ]; then tail -n 30 "$RUN/accel.stderr"; else tail -n 30 "$RUN/proxy.err"; fi
    echo '```'
    KEEP=1
  fi
done
if [ -s "$RUN/accel.stderr" ] && [ -z "${DEAD[accel]:-}" ]; then
  log "accel wrote to stderr ($(wc -l < "$RUN/accel.stderr") lines); last lines:"
  tail -n 10 "$RUN/accel.stderr" | sed 's/^/    /' >&2
fi
log "raw wrk outputs: $OUT$([ "${KEEP:-0}" = 1 ] || [[ "$OUT" != "$RUN"/* ]] || echo " (removed at exit; KEEP=1 or OUT=DIR to keep)")"
exit $status
