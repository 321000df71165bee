#!/usr/bin/env bash
# ab_compare.sh -- two accel binaries side by side in one run of the
# workplace harness (../shared/bench/compare.sh): A is ACCEL_CMD (target
# "accel", port PORT_BASE+40), B is ACCEL_B_CMD (target "accelb", port
# PORT_BASE+50).  Both are measured in the same interleaved loop (the harness
# rotates the order of the targets every round and workload), so a shared,
# noisy machine disturbs both alike; compare them as the ratio B/A per row.
#
#   PIN=1 ROUNDS=3 TARGETS="accel accelb" \
#     ACCEL_CMD='/tmp/old/build/accel -a 127.0.0.1:{port} -b {backend} -w 2 -s mem=1g' \
#     ACCEL_B_CMD="$PWD/build/accel -a 127.0.0.1:{port} -b {backend} -w 2 -s mem=1g" \
#     tests/bench/ab_compare.sh
#
# The harness is not changed: a copy of it goes into a temporary directory
# with the second target added (three edits, checked below), and runs from
# there with every knob of the original (WORKLOADS, ROUNDS, PIN, FILL_N, ...).
# It prints the harness's table plus one line per workload with B/A.
set -eu -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# ../shared/bench next to the checkout (a worktree may sit one level deeper)
if [ -z "${HARNESS:-}" ]; then
    for d in "$REPO/../shared/bench" "$REPO/../../shared/bench"; do
        [ -f "$d/compare.sh" ] && { HARNESS="$d"; break; }
    done
fi
HARNESS="${HARNESS:-$REPO/../shared/bench}"
[ -f "$HARNESS/compare.sh" ] || { echo "no harness at $HARNESS (set HARNESS)" >&2; exit 2; }
: "${ACCEL_CMD:?A: the accel command template}" "${ACCEL_B_CMD:?B: the second command template}"

COPY="$(mktemp -d -t accel-ab.XXXXXX)"
trap 'rm -rf "$COPY"' EXIT
cp "$HARNESS"/* "$COPY/"
f="$COPY/compare.sh"
# 1. a port for accelb; 2. accelb is available when ACCEL_B_CMD is set;
# 3. it starts like accel, from ACCEL_B_CMD
sed -i 's/\[accel\]=\$((PORT_BASE + 40)) )/[accel]=$((PORT_BASE + 40)) [accelb]=$((PORT_BASE + 50)) )/' "$f"
sed -i 's/^\[ -n "\${ACCEL_CMD:-}" \] && AVAILABLE="\$AVAILABLE accel"$/&\n[ -n "${ACCEL_B_CMD:-}" ] \&\& AVAILABLE="$AVAILABLE accelb"/' "$f"
sed -i 's/^    accel)$/    accelb)\n      mkdir -p "$RUN\/accelb"\n      cmd="${ACCEL_B_CMD\/\/\\{port\\}\/${PORT[accelb]}}"\n      cmd="${cmd\/\/\\{backend\\}\/127.0.0.1:$ORIGIN_PORT}"\n      cmd="${cmd\/\/\\{tmp\\}\/$RUN\/accelb}"\n      log "accelb: $cmd"\n      "${SRV[@]}" bash -c "exec $cmd" >"$RUN\/accelb.log" 2>\&1 \&\n      PIDS+=($!); MAINPID[accelb]=$! ;;\n&/' "$f"
for want in '\[accelb\]=\$((PORT_BASE + 50))' 'AVAILABLE accelb' 'ACCEL_B_CMD//'; do
    grep -q "$want" "$f" || { echo "ab_compare.sh: the harness changed; cannot add accelb ($want)" >&2; exit 2; }
done

OUT="${OUT:-$(mktemp -d -t accel-ab-out.XXXXXX)}"
export OUT ACCEL_CMD ACCEL_B_CMD
TARGETS="${TARGETS:-accel accelb}" bash "$f"
echo
echo "B/A (accelb req/s / accel req/s, median of rounds):"
awk -F'\t' 'NR > 1 { v[$1 "\t" $2] = v[$1 "\t" $2] " " $4; w[$1] = 1 }
    function med(s,   a, n, i, j, t) {
        n = split(s, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END { for (k in w) { ra = med(v[k "\taccel"]); rb = med(v[k "\taccelb"])
          printf "  %-20s A %8.0f  B %8.0f  B/A %.3f\n", k, ra, rb, (ra > 0 ? rb / ra : 0) } }' \
    "$OUT/raw.tsv" | sort
echo "raw wrk outputs and the table: $OUT"
