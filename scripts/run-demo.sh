#!/bin/sh
# run-demo.sh BIN -- `make run`: accel on 127.0.0.1:8080 in front of the bundled
# demo origin (a slow CMS on 127.0.0.1:8081), or in front of $ORIGIN=host:port.
# Extra accel arguments come from $ACCEL_ARGS.  Ctrl-C stops both.
set -u

BIN=${1:?usage: run-demo.sh path/to/accel}
HERE=$(cd "$(dirname "$0")" && pwd)
LISTEN=127.0.0.1:8080
ORIGIN_PID=
ACCEL_PID=

# Both children are stopped by their PIDs, accel first so that it drains.
cleanup() {
    if [ -n "$ACCEL_PID" ]; then
        kill "$ACCEL_PID" 2>/dev/null
        wait "$ACCEL_PID" 2>/dev/null
        ACCEL_PID=
    fi
    if [ -n "$ORIGIN_PID" ]; then
        kill "$ORIGIN_PID" 2>/dev/null
        wait "$ORIGIN_PID" 2>/dev/null
        ORIGIN_PID=
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

if [ ! -x "$BIN" ]; then
    echo "run-demo: $BIN is not an executable (run make first)" >&2
    exit 1
fi

if [ -z "${ORIGIN:-}" ]; then
    ORIGIN=127.0.0.1:8081
    if curl -s -o /dev/null --max-time 1 "http://$ORIGIN/" 2>/dev/null; then
        echo "run-demo: something already answers on $ORIGIN; stop it or set ORIGIN=host:port" >&2
        exit 1
    fi
    /usr/bin/python3 "$HERE/demo-origin.py" 8081 127.0.0.1 &
    ORIGIN_PID=$!
    i=0
    until curl -s -o /dev/null --max-time 1 "http://$ORIGIN/static/site.css"; do
        i=$((i + 1))
        if [ "$i" -ge 100 ] || ! kill -0 "$ORIGIN_PID" 2>/dev/null; then
            echo "run-demo: the demo origin did not start on $ORIGIN" >&2
            exit 1
        fi
        sleep 0.1
    done
    WHAT="the demo origin (a slow CMS, ~200 ms per page)"
else
    WHAT="$ORIGIN"
fi

cat <<EOF

accel on http://$LISTEN in front of $WHAT.  Try, in another terminal:

  curl -i http://$LISTEN/article/1        # first time: a MISS, about 200 ms
  curl -i http://$LISTEN/article/1        # again: a HIT from the cache
  curl -s -o /dev/null -w '%{time_total}s\n' http://$LISTEN/article/2
  curl -i http://$LISTEN/static/site.css  # an asset, cacheable for a day
  curl -i http://$LISTEN/login            # Set-Cookie: never cached
  curl -i -X PURGE http://$LISTEN/article/1                          # drop one URL
  curl -i -X PURGE -H 'Surrogate-Key: article-2' http://$LISTEN/     # drop a tag

Ctrl-C stops accel$( [ -n "$ORIGIN_PID" ] && echo " and the demo origin").

EOF

# accel runs as a child we wait for, so a signal to this shell alone (not
# only Ctrl-C to the whole terminal group) still stops it and the origin.
# shellcheck disable=SC2086  # ACCEL_ARGS is a list of words on purpose
"$BIN" -a "$LISTEN" -b "$ORIGIN" ${ACCEL_ARGS:-} </dev/null &
ACCEL_PID=$!
wait "$ACCEL_PID"
rc=$?
ACCEL_PID=
cleanup
exit $rc
