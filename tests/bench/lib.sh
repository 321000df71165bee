# shellcheck shell=bash
# tests/bench/lib.sh - helpers shared by the benchmark scripts; sourced, never run.
#
#   PORT_BASE="${PORT_BASE:-...}"                 # the script's own defaults first
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Part 1 (every script): the common knobs (ROUNDS, DURATION, PIN, CLIENT_CPUS,
# SERVER_CPUS, TARGETS, ACCEL, NGINX), logging, tool checks, the run
# directory with its PID-based cleanup, CPU pinning prefixes, free ports,
# readiness waits, nginx start-up, the private accel copy, wrk output parsing,
# CPU-time sampling, medians and table cells.
# Part 2 (matrix_*): the {SIZES} x {CONNS} wrk matrix of a plain proxy beside
# nginx proxy_pass (proxy_bench.sh, pool_bench.sh): servers, measurement loop,
# tables and the final report.  A script keeps its own servers, configs and
# workloads.
#
# Every process started through these helpers is recorded in PIDS and stopped
# at exit (TERM, then KILL after 5 s). Nothing is stopped by name.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
PIN="${PIN:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-0}"
SERVER_CPUS="${SERVER_CPUS:-1}"
TARGETS="${TARGETS:-accel nginx}"
ACCEL="${ACCEL:-$REPO/build/accel}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"

PIDS=()
SRV=(); CLI=()
declare -A PORT=() SRVPID=() MAINPID=() DEAD=()
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

bench_need() {  # bench_need TOOL...: exit 2 if one is missing (and taskset with PIN=1)
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t (sh scripts/deps.sh bench)" >&2; exit 2; }
  done
  [ "$PIN" = 1 ] && { command -v taskset >/dev/null 2>&1 || { echo "missing tool: taskset" >&2; exit 2; }; }
  return 0
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
bench_cleanup() {
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

bench_init() {  # bench_init NAME: run dir $RUN (with docs/), exit trap, pinning prefixes
  RUN="$(mktemp -d -t "$1.XXXXXX")"
  chmod 755 "$RUN"            # nginx workers drop to 'nobody' when started as root
  mkdir -p "$RUN/docs"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  # Command prefixes as arrays (not functions), so that $! is the server's own PID.
  if [ "$PIN" = 1 ]; then SRV=(taskset -c "$SERVER_CPUS"); CLI=(taskset -c "$CLIENT_CPUS"); fi
}

bench_docs() {  # bench_docs 1k 64k ...: random-byte files $RUN/docs/<size>.bin
  local s
  for s in "$@"; do head -c $(( ${s%k} * 1024 )) /dev/urandom > "$RUN/docs/$s.bin"; done
  chmod -R a+rX "$RUN/docs"
}

# ---------------------------------------------------------------- ports
port_busy() {  # listening (ss) or accepting (connect) on 127.0.0.1:PORT
  if command -v ss >/dev/null 2>&1 && ss -Htln "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
bench_ports() {  # bench_ports N: BASE = first of N free ports from PORT_BASE, moving up by 10
  local i free
  BASE=$PORT_BASE
  for _ in $(seq 1 20); do
    free=1
    for i in $(seq 0 $(($1 - 1))); do port_busy $((BASE + i)) && { free=0; break; }; done
    [ $free = 1 ] && return 0
    BASE=$((BASE + 10))
  done
  die "no $1 free ports from $PORT_BASE to $BASE; set PORT_BASE"
}

wait_http() {  # wait_http URL SECONDS (http or https; certificates are not checked)
  local deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    curl -sk -o /dev/null --max-time 2 "$1" && return 0
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------- servers
start_nginx() {  # start_nginx NAME: nginx with $RUN/NAME.conf, PID in SRVPID[NAME]
  "${SRV[@]}" "$NGINX" -p "$RUN" -c "$RUN/$1.conf" -g 'daemon off;' >"$RUN/$1.stdout" 2>&1 &
  PIDS+=($!)
  SRVPID[$1]=$!
}

nginx_common() {  # main-context settings of an nginx instance NAME
  cat <<EOF
pid $RUN/$1.pid;
error_log $RUN/$1.err warn;
worker_rlimit_nofile 65536;
EOF
}
nginx_http_common() {  # shared http settings of an nginx instance NAME
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
write_origin_conf() {  # write_origin_conf NAME PORT: $RUN/NAME.conf, static files of $RUN/docs
  mkdir -p "$RUN/$1-tmp"
  {
    nginx_common "$1"
    cat <<EOF
worker_processes 1;
events { worker_connections 4096; }
http {
$(nginx_http_common "$1")
    sendfile on;
    tcp_nopush on;
    open_file_cache max=100;
    server {
        listen 127.0.0.1:$2 reuseport backlog=4096;
        root $RUN/docs;
        location / { }
    }
}
EOF
  } > "$RUN/$1.conf"
}
write_proxy_conf() {  # write_proxy_conf ORIGIN_PORT...: $RUN/proxy.conf, proxy_pass on PORT[nginx]
  local p
  mkdir -p "$RUN/proxy-tmp"
  {
    nginx_common proxy
    cat <<EOF
worker_processes $WORKERS;
events { worker_connections 4096; }
http {
$(nginx_http_common proxy)
    upstream origin {
$(for p in "$@"; do echo "        server 127.0.0.1:$p;"; done)
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
}

bench_private_accel() {  # run a private copy of $ACCEL: others may rebuild build/accel meanwhile
  cp "$ACCEL" "$RUN/accel-bin" || die "cannot copy $ACCEL"
  ACCEL_ID="sha256 $(sha256sum "$RUN/accel-bin" | cut -c1-12), built $(date -u -r "$ACCEL" +%FT%TZ)"
  ACCEL_GIT="$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
  [ -n "$(git -C "$REPO" status --porcelain --untracked-files=all -- accel 2>/dev/null)" ] && ACCEL_GIT="$ACCEL_GIT + uncommitted accel/ changes"
  log "accel binary: $ACCEL ($ACCEL_ID; tree $ACCEL_GIT)"
  ACCEL="$RUN/accel-bin"
}

# ---------------------------------------------------------------- measuring
run_wrk() {  # run_wrk OUTFILE WRK-ARGS...: one bounded wrk run on the client CPUs
  local f=$1; shift
  "${CLI[@]}" timeout $((DURATION + 15)) wrk -d"${DURATION}s" --timeout 5s "$@" > "$f" 2>&1
}
wrk_rps()  { awk '/^Requests\/sec/{printf "%.0f", $2}' "$1"; }
wrk_nreq() { awk '/ requests in /{print $1}' "$1"; }
wrk_pct()  { awk -v p="$2%" '$1==p{print $2}' "$1"; }   # wrk_pct FILE 99 -> latency token
wrk_errs() {  # socket errors connect, read, write, timeout and non-2xx answers, tab-separated
  awk '/Socket errors/{gsub(/,/,""); c=$4; r=$6; w=$8; t=$10} /Non-2xx/{n=$5}
       END{printf "%d\t%d\t%d\t%d\t%d", c, r, w, t, n}' "$1"
}
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
us_per_req() {  # us_per_req TICKS0 TICKS1 REQUESTS FORMAT -> CPU µs per request
  awk -v a="$1" -v b="$2" -v n="${3:-0}" -v hz="$CLK_TCK" -v f="$4" 'BEGIN{ if (n>0) printf f, (b-a)/hz*1e6/n; else print "nan" }'
}

rotation() {  # rotation ROUND WORKLOAD_INDEX: the targets of TL, order rotated per round and workload
  local n=${#TL[@]} k
  for k in $(seq 0 $((n - 1))); do echo "${TL[$(( (k + $1 + $2) % n ))]}"; done
}
budget_spent() {  # budget_spent WORKLOAD TARGET ROUND: true (and counted in SKIPPED) once MAX_SECONDS are spent
  [ $(( $(date +%s) - START )) -gt "$MAX_SECONDS" ] || return 1
  log "budget MAX_SECONDS=$MAX_SECONDS spent; skipping $1/$2 r$3"; SKIPPED=$((SKIPPED + 1))
}

# ---------------------------------------------------------------- tables
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "nan"; exit}; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
mmm() {  # mmm FORMAT: "min | median | max" of the values on stdin
  sort -g | awk -v f="$1" '{a[NR]=$1} END{ if (NR==0) {print "- | - | -"; exit}
    printf f " | " f " | " f, a[1], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[NR]}'
}
col() {  # col WORKLOAD TARGET [COLUMN, default 4] -> values of $RAW, one a line
  awk -F'\t' -v w="$1" -v t="$2" -v c="${3:-4}" '$1==w && $2==t {print $c}' "$RAW"
}
fmt() { awk -v f="$1" -v x="$2" 'BEGIN{ if (x=="nan"||x=="") print "-"; else printf f, x }'; }   # fmt FORMAT VALUE
fmt0() { fmt %.0f "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a!="nan" && a!="" && b!="nan" && b+0>0) printf "%.2f", a/b; else printf "-" }'; }

# ================================================================ the wrk matrix
# matrix_setup SCRIPT RUN-NAME: knobs, tool and target checks, run dir, OUT, TL.
matrix_setup() {
  WORKERS="${WORKERS:-2}"
  MAX_SECONDS="${MAX_SECONDS:-270}"
  THREADS="${THREADS:-1}"
  SIZES="${SIZES:-1k 64k}"
  CONNS="${CONNS:-50 200}"
  INVOCATION="WORKERS=$WORKERS ROUNDS=$ROUNDS DURATION=$DURATION PIN=$PIN THREADS=$THREADS TARGETS=\"$TARGETS\""
  [ "$SIZES" != "1k 64k" ] && INVOCATION="$INVOCATION SIZES=\"$SIZES\""
  [ "$CONNS" != "50 200" ] && INVOCATION="$INVOCATION CONNS=\"$CONNS\""
  [ "$ACCEL" != "$REPO/build/accel" ] && INVOCATION="$INVOCATION ACCEL=$ACCEL"
  INVOCATION="$INVOCATION tests/bench/$1"
  bench_need wrk curl "$NGINX"
  local t
  for t in $TARGETS; do
    case $t in
      accel) [ -x "$ACCEL" ] || { echo "no accel binary at $ACCEL (make build/accel)" >&2; exit 2; } ;;
      nginx) ;;
      *) echo "unknown target $t (accel nginx)" >&2; exit 2 ;;
    esac
  done
  bench_init "$2"
  OUT="${OUT:-$RUN/out}"
  mkdir -p "$OUT"
  read -r -a TL <<< "$TARGETS"
  log "run dir $RUN; PIN=$PIN WORKERS=$WORKERS THREADS=$THREADS DURATION=${DURATION}s ROUNDS=$ROUNDS"
}

# matrix_start_targets ORIGINS-LABEL ACCEL-ARGS...: start the targets (accel with
# -a PORT[accel] ACCEL-ARGS -w WORKERS -s none; nginx with $RUN/proxy.conf), wait
# for them and check that every /<size>.bin they return is the origin's file.
matrix_start_targets() {
  local label=$1 t s; shift
  [[ " $TARGETS " == *" accel "* ]] && bench_private_accel
  ACCEL_CMDLINE=("$ACCEL" -a "127.0.0.1:${PORT[accel]}" "$@" -w "$WORKERS" -s none)
  for t in $TARGETS; do
    case $t in
      nginx) start_nginx proxy; MAINPID[nginx]=${SRVPID[proxy]} ;;
      accel)
        log "accel: ${ACCEL_CMDLINE[*]}"
        "${SRV[@]}" "${ACCEL_CMDLINE[@]}" >"$RUN/accel.stdout" 2>"$RUN/accel.stderr" &
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
  log "servers up: $label $(for t in $TARGETS; do printf '%s:%s ' "$t" "${PORT[$t]}"; done)"
}

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

# matrix_measure: every (size-cCONNS workload, target) pair ROUNDS times -> $OUT/raw.tsv
matrix_measure() {
  local w size conns r t wi=0 f c0 c1 s0 s1 k0 k1 ccpu scpu rps nreq pcpu p50 p99 errs
  WORKLOADS=()
  for size in $SIZES; do for conns in $CONNS; do WORKLOADS+=("$size-c$conns"); done; done
  START=$(date +%s)
  RAW="$OUT/raw.tsv"
  echo -e "workload\ttarget\tround\treq_s\tp50_ms\tp99_ms\tconnect\tread\twrite\ttimeout\tnon2xx\tclient_cpu\tserver_cpu\tproxy_cpu_us_per_req" > "$RAW"
  SKIPPED=0
  for w in "${WORKLOADS[@]}"; do
    size=${w%%-c*}; conns=${w##*-c}
    for r in $(seq 1 "$ROUNDS"); do
      for t in $(rotation "$r" "$wi"); do
        check_alive "$t" || continue
        budget_spent "$w" "$t" "$r" && continue
        f="$OUT/$w.$t.r$r.txt"
        c0=$(cpu_jiffies "$CLIENT_CPUS"); s0=$(cpu_jiffies "$SERVER_CPUS"); k0=$(tree_ticks "${MAINPID[$t]}")
        run_wrk "$f" -t"$THREADS" -c"$conns" --latency "http://127.0.0.1:${PORT[$t]}/$size.bin"
        k1=$(tree_ticks "${MAINPID[$t]}"); c1=$(cpu_jiffies "$CLIENT_CPUS"); s1=$(cpu_jiffies "$SERVER_CPUS")
        ccpu=$(busy_pct "$c0" "$c1"); scpu=$(busy_pct "$s0" "$s1")
        rps=$(wrk_rps "$f"); nreq=$(wrk_nreq "$f")
        pcpu=$(us_per_req "$k0" "$k1" "$nreq" %.1f)
        p50=$(wrk_pct "$f" 50); p99=$(wrk_pct "$f" 99)
        errs=$(wrk_errs "$f")
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
}

err_note() {  # summed error counts over rounds, e.g. " (errors: read 3, non-2xx 12)"
  awk -F'\t' -v w="$1" -v t="$2" '$1==w && $2==t {c+=$7; r+=$8; x+=$9; o+=$10; n+=$11; k++}
    END{ s="";
      if (c) s=s sprintf("%sconnect %d", s?", ":"", c); if (r) s=s sprintf("%sread %d", s?", ":"", r);
      if (x) s=s sprintf("%swrite %d", s?", ":"", x); if (o) s=s sprintf("%stimeout %d", s?", ":"", o);
      if (n) s=s sprintf("%snon-2xx %d", s?", ":"", n);
      if (s!="") printf " (errors: %s)", s }' "$RAW"
}

# matrix_table: $OUT/table.md, printed.  The script describes its setup in
# DOC_ACCEL_ARGS (accel's arguments after -a ADDR), DOC_ACCEL (text after the
# accel command), DOC_UPSTREAM (inside nginx's upstream { }) and DOC_ORIGIN.
matrix_table() {
  local w t hdr sep both line note p
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
      for t in "${TL[@]}"; do line="$line $(fmt %.2f "$(col "$w" "$t" 6 | median)") |"; done
      for t in "${TL[@]}"; do line="$line $(fmt %.1f "$(col "$w" "$t" 14 | median)") |"; done
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
        echo "| $w | $t | $(col "$w" "$t" 4 | mmm %.0f) | $(col "$w" "$t" 6 | mmm %.2f) | $(fmt %.0f "$(col "$w" "$t" 12 | median)") | $(fmt %.0f "$(col "$w" "$t" 13 | median)") |"
      done; done
    fi
    echo
    echo "Command: \`$INVOCATION\` (measurement loop ${ELAPSED} s$([ "$SKIPPED" -gt 0 ] && echo ", $SKIPPED run(s) skipped: MAX_SECONDS=$MAX_SECONDS spent"))"
    echo "Each run: \`$([ "$PIN" = 1 ] && echo "taskset -c $CLIENT_CPUS ")wrk -t$THREADS -c{${CONNS// /,}} -d${DURATION}s --timeout 5s --latency http://127.0.0.1:PORT/{${SIZES// /,}}.bin\` (brace lists expand to the runs)"
    [[ " $TARGETS " == *" accel "* ]] && echo "accel: \`$([ "$PIN" = 1 ] && echo "taskset -c $SERVER_CPUS ")build/accel -a 127.0.0.1:PORT $DOC_ACCEL_ARGS -w $WORKERS -s none\`$DOC_ACCEL (no access log; binary $ACCEL_ID, tree $ACCEL_GIT)"
    [[ " $TARGETS " == *" nginx "* ]] && echo "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'): \`proxy_pass\` to an \`upstream { ${DOC_UPSTREAM}keepalive 64; }\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection \"\"\`, \`proxy_max_temp_file_size 0\`, access_log off, worker_processes $WORKERS"
    echo "CPU µs/req: CPU time (user+system, all threads and worker processes) the proxy itself used during the run, divided by the requests wrk completed; it excludes the origin and wrk and is less sensitive to other load on the machine than req/s."
    echo "$DOC_ORIGIN"
  } > "$TABLE"
  cat "$TABLE"
}

# matrix_finish: report targets that died and accel's stderr; returns the exit status
matrix_finish() {
  local t status=0
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
  # socket errors or non-2xx answers from accel fail the run (figures over
  # failed requests mean nothing); the other targets' are only reported
  local aerr
  aerr=$(awk -F'\t' '$2=="accel" {s+=$7+$8+$9+$10+$11} END{print s+0}' "$RAW")
  if [ "$aerr" -gt 0 ]; then
    status=1
    echo
    echo "**FAIL: wrk counted $aerr socket errors / non-2xx answers from accel (the table rows say which workloads).**"
  fi
  if [ -s "$RUN/accel.stderr" ] && [ -z "${DEAD[accel]:-}" ]; then
    log "accel wrote to stderr ($(wc -l < "$RUN/accel.stderr") lines); last lines:"
    tail -n 10 "$RUN/accel.stderr" | sed 's/^/    /' >&2
  fi
  log "raw wrk outputs: $OUT$([ "${KEEP:-0}" = 1 ] || [[ "$OUT" != "$RUN"/* ]] || echo " (removed at exit; KEEP=1 or OUT=DIR to keep)")"
  return $status
}
