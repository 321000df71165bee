#!/bin/sh
# run-demo.sh BIN -- `make run`: accel on 127.0.0.1:$PORT (8080) in front of the
# bundled demo origin (a slow CMS on 127.0.0.1:$DEMO_PORT, 8081), or in front of
# $ORIGIN=host:port, with the admin listener on 127.0.0.1:$ADMIN_PORT (6082) so
# the hit ratio can be watched.  Extra accel arguments come from $ACCEL_ARGS.
# Ctrl-C stops everything it started.
#
#   make run                          # accel :8080, demo origin :8081, admin :6082
#   make run PORT=9000                # accel on 9000 instead
#   make run ORIGIN=127.0.0.1:3000    # in front of your own server (no demo origin)
set -u

BIN=${1:?usage: run-demo.sh path/to/accel}
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${PORT:-8080}
DEMO_PORT=${DEMO_PORT:-8081}
ADMIN_PORT=${ADMIN_PORT:-6082}
LISTEN=127.0.0.1:$PORT
ADMIN=127.0.0.1:$ADMIN_PORT
ORIGIN=${ORIGIN:-}
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

# Is something already listening on 127.0.0.1:$1?  (A bind test: it also sees
# a server that does not speak HTTP.)
port_busy() {
    /usr/bin/python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}

need_free() {   # PORT WHAT VARIABLE
    if port_busy "$1"; then
        echo "run-demo: port $1 ($2) is in use; stop what listens there or run" \
             "make run $3=another-port" >&2
        exit 1
    fi
}

need_free "$PORT" "accel" PORT
need_free "$ADMIN_PORT" "accel's admin listener" ADMIN_PORT
if [ -z "$ORIGIN" ]; then
    need_free "$DEMO_PORT" "the demo origin" DEMO_PORT
    ORIGIN=127.0.0.1:$DEMO_PORT
    /usr/bin/python3 "$HERE/demo-origin.py" "$DEMO_PORT" 127.0.0.1 &
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
    WHAT="the demo origin on $ORIGIN (a slow CMS, ~200 ms per page)"
else
    WHAT="$ORIGIN"
fi

# accel runs as a child we wait for, so a signal to this shell alone (not
# only Ctrl-C to the whole terminal group) still stops it and the origin.
# shellcheck disable=SC2086  # ACCEL_ARGS is a list of words on purpose
"$BIN" -a "$LISTEN" -T "$ADMIN" -b "$ORIGIN" ${ACCEL_ARGS:-} </dev/null &
ACCEL_PID=$!
i=0
until curl -s -o /dev/null --max-time 1 "http://$ADMIN/stats"; do
    i=$((i + 1))
    if [ "$i" -ge 100 ] || ! kill -0 "$ACCEL_PID" 2>/dev/null; then
        echo "run-demo: accel did not start (its messages are above)" >&2
        exit 1
    fi
    sleep 0.1
done

cat <<EOT

accel on http://$LISTEN in front of $WHAT,
admin listener on http://$ADMIN.  Try, in another terminal:

  curl -i http://$LISTEN/article/1        # first time: a MISS, about 200 ms
  curl -i http://$LISTEN/article/1        # again: a HIT from the cache
  curl -s -o /dev/null -w '%{time_total}s\n' http://$LISTEN/article/2
  curl -i http://$LISTEN/static/site.css  # an asset, cacheable for a day
  curl -i http://$LISTEN/login            # Set-Cookie: never cached

  # some traffic, then the hit ratio from the admin listener's counters:
  for i in \$(seq 30); do curl -s -o /dev/null http://$LISTEN/article/\$((i % 3 + 1)); done
  python3 scripts/hit-ratio.py $ADMIN
  curl -s http://$ADMIN/stats             # every counter, as JSON

  curl -i -X PURGE http://$LISTEN/article/1                          # drop one URL
  curl -i -X PURGE -H 'Surrogate-Key: article-2' http://$LISTEN/     # drop a tag

Ctrl-C stops accel$( [ -n "$ORIGIN_PID" ] && echo " and the demo origin").

EOT

wait "$ACCEL_PID"
rc=$?
ACCEL_PID=
cleanup
exit $rc
