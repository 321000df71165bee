#!/bin/sh
# Run every cmocka unit-test binary given; with VALGRIND=1 under valgrind
# (memcheck, leaks are errors). Prints one summary line and fails if any failed.
pass=0; fail=0; failed=""
for t in "$@"; do
    if [ "${VALGRIND:-0}" = 1 ]; then
        valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --error-exitcode=99 "$t" >"$t.log" 2>&1
    else
        "$t" >"$t.log" 2>&1
    fi
    rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "unit: ok   $(basename "$t") ($(grep -c '\[       OK \]' "$t.log") cases)"
    else
        fail=$((fail + 1)); failed="$failed $(basename "$t")"
        echo "unit: FAIL $(basename "$t") (exit $rc)"; tail -n 40 "$t.log"
    fi
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ]
