/*
 * test_buf.c -- the byte buffers (accel/base/buf.c): decimal appends give
 * what printf gives, for the edges too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

static void
decimal_appends_match_printf(void **state)
{
    static const int64_t vals[] = { 0, 1, -1, 9, 10, -10, 1024, 99999, 4294967296LL,
                                    INT64_MAX, INT64_MIN, -3600 };
    struct ac_buf a, b;

    (void)state;
    ac_buf_init(&a, 0, 0);
    ac_buf_init(&b, 0, 0);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        ac_buf_reset(&a);
        ac_buf_reset(&b);
        ac_buf_cati(&a, vals[i]);
        ac_buf_printf(&b, "%" PRId64, vals[i]);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        if (vals[i] >= 0) {
            ac_buf_reset(&a);
            ac_buf_catu(&a, (uint64_t)vals[i]);
            assert_memory_equal(a.p, b.p, b.len);
        }
    }
    ac_buf_reset(&a);
    ac_buf_catu(&a, UINT64_MAX);
    assert_int_equal(a.len, 20);
    assert_memory_equal(a.p, "18446744073709551615", 20);
    assert_false(ac_buf_error(&a));
    ac_buf_free(&a);
    ac_buf_free(&b);
}

/* A buffer at its limit keeps its sticky error, number appends included. */
static void
decimal_appends_respect_the_limit(void **state)
{
    struct ac_buf a;

    (void)state;
    ac_buf_init(&a, 0, 4);
    ac_buf_catu(&a, 123);
    assert_false(ac_buf_error(&a));
    ac_buf_catu(&a, 45);
    assert_true(ac_buf_error(&a));
    ac_buf_free(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decimal_appends_match_printf),
        cmocka_unit_test(decimal_appends_respect_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
