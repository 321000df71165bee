#!/bin/sh
# A short, bounded libFuzzer run of every target, seeded from
# tests/fuzz/corpus/<target>/ when present. Crashes fail the build.
secs=${FUZZ_SECONDS:-8}
rc=0
for f in "$@"; do
    name=$(basename "$f")
    work=build/fuzz/work/$name; mkdir -p "$work"
    seeds=tests/fuzz/corpus/$name
    [ -d "$seeds" ] || seeds=""
    if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work" $seeds >"$work.log" 2>&1; then
        echo "fuzz: ok   $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | tail -1 | awk '{print $2}') runs in ${secs}s)"
    else
        echo "fuzz: FAIL $name"; tail -n 40 "$work.log"; rc=1
    fi
done
exit $rc
