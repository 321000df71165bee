#!/bin/bash
# compress_bench.sh -- hit throughput of accel's gzip, brotli and identity
# (gunzipped on the fly) answers for the 100 KiB page of the shared harness,
# and the sizes of each coding.  Not part of make test.
#
#   KEEP=1 PORT_BASE=21000 TARGETS="varnish accel" WORKLOADS="hit-html-gz-c50" \
#     ACCEL_CMD=... ../shared/bench/compare.sh      # prints "kept <dir>" at the end
#   RUN=<that dir> PORT_BASE=21000 tests/bench/compress_bench.sh
#
# It starts the harness's origin (nginx, origin.conf of RUN, port PORT_BASE)
# and accel (port PORT_BASE+40) pinned to CPU 1, runs wrk pinned to CPU 0,
# and stops both by PID.
set -u
: "${RUN:?RUN=<a compare.sh KEEP=1 run directory>}"
PORT_BASE=${PORT_BASE:-19000}
ACCEL=${ACCEL:-build/accel}
DURATION=${DURATION:-7}
ROUNDS=${ROUNDS:-2}
O=$PORT_BASE
A=$((PORT_BASE + 40))
URL=http://127.0.0.1:$A/page.html
taskset -c 1 nginx -c "$RUN/origin.conf" -g 'daemon off;' >/dev/null 2>&1 &
NG=$!
taskset -c 1 "$ACCEL" -a 127.0.0.1:$A -b 127.0.0.1:$O -w 2 -s mem=1g 2>"$RUN/accel-compress.err" &
AC=$!
trap 'kill $AC $NG 2>/dev/null; wait' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$A/1k.bin" && break; sleep 0.1; done
curl -s -o /dev/null -H 'Accept-Encoding: gzip' "$URL"
sleep 1         # the brotli body is made in the background
# Check before measuring: each coding is what it says and decodes to the
# identity body, else the figures would be of the wrong answers.
fail() { echo "FAIL: $*" >&2; exit 1; }
curl -s -o "$RUN/cb.identity" "$URL" || fail "no identity answer"
for ae in identity gzip br; do
    h=(); [ $ae != identity ] && h=(-H "Accept-Encoding: $ae")
    ce=$(curl -s -o "$RUN/cb.$ae" -D - "${h[@]}" "$URL" | tr -d '\r' |
         awk -F': ' 'tolower($1)=="content-encoding"{print $2}')
    [ "$ae" = identity ] && [ -n "$ce" ] && fail "identity answer has Content-Encoding: $ce"
    [ "$ae" != identity ] && [ "$ce" != "$ae" ] && fail "Accept-Encoding: $ae got Content-Encoding: '$ce'"
    case $ae in
        gzip) gzip -dc < "$RUN/cb.gzip" | cmp -s - "$RUN/cb.identity" || fail "gzip body does not decode to the page" ;;
        br) /usr/bin/python3 -c 'import sys, brotli; sys.stdout.buffer.write(brotli.decompress(sys.stdin.buffer.read()))' < "$RUN/cb.br" | cmp -s - "$RUN/cb.identity" || fail "br body does not decode to the page" ;;
    esac
    echo "size $ae: $(wc -c < "$RUN/cb.$ae") bytes"
done
errs=0
for round in $(seq "$ROUNDS"); do
    for ae in gzip br identity; do
        h=(); [ $ae != identity ] && h=(-H "Accept-Encoding: $ae")
        for c in 50 200; do
            r=$(taskset -c 0 timeout $((DURATION + 15)) wrk -t1 -c$c -d${DURATION}s --latency "${h[@]}" "$URL")
            echo "r$round $ae c$c: $(echo "$r" | awk '/Requests\/sec/{print $2}') req/s" \
                 "p99 $(echo "$r" | awk '$1=="99%"{print $2}') $(echo "$r" | grep -o 'Non-2xx.*')"
            echo "$r" | grep -q 'Non-2xx\|Socket errors' && errs=$((errs + 1))
        done
    done
done
[ "$errs" -gt 0 ] && fail "$errs runs had socket errors or non-2xx answers"
exit 0
