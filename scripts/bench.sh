#!/bin/sh
# Benchmarks, run by `make bench` after the build (never part of make test).
#   1. tests/bench/proxy_bench.sh: accel beside nginx proxy_pass (issue 2)
#   2. build/bench/store_bench, when it has been built
#   3. tests/bench/h2_bench.sh: HTTP/2 over TLS beside nginx ssl http2 (issue 15)
#   4. tests/bench/cluster_bench.sh: three nodes through Redis (issue 21)
#   5. with ACCEL_COMPARE=1: the workplace comparison harness
#      ../shared/bench/compare.sh (relative to the repository root) with accel
#      as a third target.
# Knobs are passed through the environment (see each script's header), e.g.
#   PIN=1 ROUNDS=3 DURATION=5 make bench
#   ACCEL_COMPARE=1 QUICK=1 make bench
# The two harnesses share some knob names (ROUNDS, DURATION, PIN, TARGETS,
# PORT_BASE, OUT, KEEP); set them per harness by running the scripts directly.
# Paths are derived from this script's location; BUILD (default build) names
# the build directory, as in the Makefile.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) B="$BUILD" ;; *) B="$ROOT/$BUILD" ;; esac
cd "$ROOT" || exit 1
fail=0

echo "== proxy bench: accel vs nginx proxy_pass (tests/bench/proxy_bench.sh)"
if ! ACCEL="${ACCEL:-$B/accel}" bash "$ROOT/tests/bench/proxy_bench.sh"; then
    echo "bench: proxy_bench.sh failed" >&2; fail=1
fi

if [ -x "$B/bench/store_bench" ]; then
    echo
    echo "== store bench ($BUILD/bench/store_bench)"
    "$B/bench/store_bench" || { echo "bench: store_bench failed" >&2; fail=1; }
else
    echo
    echo "== store bench: $BUILD/bench/store_bench not built, skipped"
fi

echo
echo "== HTTP/2 bench: accel vs nginx ssl http2 (tests/bench/h2_bench.sh)"
if ! ACCEL="${ACCEL:-$B/accel}" bash "$ROOT/tests/bench/h2_bench.sh"; then
    echo "bench: h2_bench.sh failed" >&2; fail=1
fi

echo
echo "== cluster bench: owner / non-owner hits, purge fan-out (tests/bench/cluster_bench.sh)"
if ! ACCEL="${ACCEL:-$B/accel}" bash "$ROOT/tests/bench/cluster_bench.sh"; then
    echo "bench: cluster_bench.sh failed" >&2; fail=1
fi

if [ "${ACCEL_COMPARE:-0}" = 1 ]; then
    CMP="$ROOT/../shared/bench/compare.sh"
    echo
    if [ -x "$CMP" ] || [ -f "$CMP" ]; then
        echo "== comparison: ../shared/bench/compare.sh with accel"
        ACCEL_CMD="$B/accel -a 127.0.0.1:{port} -b {backend} -w 2" bash "$CMP" ||
            { echo "bench: compare.sh failed" >&2; fail=1; }
    else
        echo "bench: ACCEL_COMPARE=1 but ../shared/bench/compare.sh is missing" >&2; fail=1
    fi
fi
exit $fail
