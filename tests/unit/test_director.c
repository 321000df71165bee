/*
 * test_director.c -- the consistent-hash ring, the directors of a pool set
 * built from a policy (accel/origin/director.c, accel/origin/pool.c), passive health, and
 * the probe's status-line parser (accel/origin/probe.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director.h"
#include "pool.h"
#include "probe.h"

#define NKEYS 20000

static uint64_t
key_hash(unsigned i)
{
    char k[32];
    int n = snprintf(k, sizeof(k), "/objects/%u", i);
    return dir_hash(k, (size_t)n);
}

/*--------------------------------------------------------------------
 * The ring.
 */

static void
ring_spreads_keys_evenly(void **state)
{
    const char *names[] = { "s0", "s1", "s2", "s3", "s4" };
    struct dir_ring r;
    unsigned cnt[5] = { 0 };

    (void)state;
    assert_int_equal(dir_ring_build(&r, names, NULL, 5), 0);
    assert_int_equal(r.n, 5 * DIR_RING_POINTS);
    for (unsigned i = 0; i < NKEYS; i++) {
        int m = dir_ring_lookup(&r, key_hash(i), NULL, NULL);
        assert_true(m >= 0 && m < 5);
        cnt[m]++;
    }
    for (unsigned m = 0; m < 5; m++) {
        /* 20% each, within a loose band (the ring is deterministic) */
        assert_true(cnt[m] > NKEYS * 12 / 100);
        assert_true(cnt[m] < NKEYS * 28 / 100);
    }
    dir_ring_free(&r);
}

/* Removing one of N members moves only the keys it owned: about 1/N. */
static void
removing_a_member_remaps_only_its_keys(void **state)
{
    const char *five[] = { "s0", "s1", "s2", "s3", "s4" };
    const char *four[] = { "s0", "s1", "s3", "s4" };    /* s2 removed */
    const unsigned map4[] = { 0, 1, 3, 4 };
    struct dir_ring r5, r4;
    unsigned moved = 0, owned_by_s2 = 0;

    (void)state;
    assert_int_equal(dir_ring_build(&r5, five, NULL, 5), 0);
    assert_int_equal(dir_ring_build(&r4, four, NULL, 4), 0);
    for (unsigned i = 0; i < NKEYS; i++) {
        uint64_t h = key_hash(i);
        int before = dir_ring_lookup(&r5, h, NULL, NULL);
        int after = (int)map4[dir_ring_lookup(&r4, h, NULL, NULL)];
        if (before == 2)
            owned_by_s2++;
        if (before != after) {
            moved++;
            assert_int_equal(before, 2);    /* nobody else's key moved */
        }
    }
    assert_int_equal(moved, owned_by_s2);
    assert_true(moved > NKEYS * 12 / 100 && moved < NKEYS * 28 / 100);
    dir_ring_free(&r5);
    dir_ring_free(&r4);
}

static bool
not_two(unsigned member, void *arg)
{
    (void)arg;
    return member != 2;
}

/* A sick member is skipped exactly as if it had been removed. */
static void
skipping_a_member_equals_removing_it(void **state)
{
    const char *five[] = { "s0", "s1", "s2", "s3", "s4" };
    const char *four[] = { "s0", "s1", "s3", "s4" };
    const unsigned map4[] = { 0, 1, 3, 4 };
    struct dir_ring r5, r4;

    (void)state;
    assert_int_equal(dir_ring_build(&r5, five, NULL, 5), 0);
    assert_int_equal(dir_ring_build(&r4, four, NULL, 4), 0);
    for (unsigned i = 0; i < NKEYS; i++) {
        uint64_t h = key_hash(i);
        assert_int_equal(dir_ring_lookup(&r5, h, not_two, NULL),
                         (int)map4[dir_ring_lookup(&r4, h, NULL, NULL)]);
    }
    dir_ring_free(&r5);
    dir_ring_free(&r4);
}

static void
weights_scale_the_share(void **state)
{
    const char *names[] = { "a", "b" };
    const double w[] = { 1, 3 };
    struct dir_ring r;
    unsigned cnt[2] = { 0 };

    (void)state;
    assert_int_equal(dir_ring_build(&r, names, w, 2), 0);
    for (unsigned i = 0; i < NKEYS; i++)
        cnt[dir_ring_lookup(&r, key_hash(i), NULL, NULL)]++;
    assert_true(cnt[1] > 2 * cnt[0]);       /* about 3x */
    assert_true(cnt[1] < 4 * cnt[0]);
    dir_ring_free(&r);
    assert_int_equal(dir_ring_build(&r, names, w, 0), -1);
    assert_int_equal(dir_ring_lookup(&r, 1, NULL, NULL), -1);
    dir_ring_free(&r);
}

/*--------------------------------------------------------------------
 * Directors of a pool set built from a policy.
 */

static const char POLICY[] =
    "vcl 4.1;\n"
    "import directors;\n"
    "import std;\n"
    "probe p { .url = \"/health\"; .interval = 1s; .window = 4; .threshold = 2; }\n"
    "backend b0 { .host = \"127.0.0.1\"; .port = \"1\"; .max_connections = 2; }\n"
    "backend b1 { .host = \"127.0.0.1\"; .port = \"2\"; .connect_timeout = 0.5s; }\n"
    "backend b2 { .host = \"127.0.0.1\"; .port = \"3\"; .probe = p; }\n"
    "sub vcl_init {\n"
    "    new rr = directors.round_robin(); rr.add_backend(b0); rr.add_backend(b1);\n"
    "    rr.add_backend(b2);\n"
    "    new fb = directors.fallback(); fb.add_backend(b0); fb.add_backend(b1);\n"
    "    new rnd = directors.random(); rnd.add_backend(b0, 1); rnd.add_backend(b1, 3);\n"
    "    new lc = directors.least_connections(); lc.add_backend(b0); lc.add_backend(b1);\n"
    "    new sh = directors.shard(); sh.add_backend(b0); sh.add_backend(b1);\n"
    "    new top = directors.fallback(); top.add_backend(sh); top.add_backend(b2);\n"
    "}\n"
    "sub vcl_recv { set req.backend_hint = rr.backend(); }\n";

struct fx {
    struct config cfg;
    struct vcl_program *p;
    struct pool_set *ps;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];

    f->cfg.nworkers = 1;
    f->cfg.p.backend_fail_threshold = 3;
    f->cfg.p.backend_sick_time = 60;
    assert_int_equal(vcl_compile_string("t.vcl", POLICY, sizeof(POLICY) - 1, NULL, &f->p, NULL),
                     0);
    f->ps = pool_set_from_program(&f->cfg, f->p, err, sizeof(err));
    assert_non_null(f->ps);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    pool_set_release(&f->ps);
    vcl_program_release(&f->p);
    free(f);
    return 0;
}

static struct vcl_ref
dref(unsigned i)
{
    return (struct vcl_ref){ .kind = VCL_REF_DIRECTOR, .idx = i };
}

static void
set_mirrors_the_declarations(void **state)
{
    struct fx *f = *state;
    struct pool_set *ps = f->ps;

    assert_int_equal(ps->nbe, 3);
    assert_int_equal(ps->ndir, 6);
    assert_string_equal(ps->be[0].vname, "b0");
    assert_string_equal(ps->be[1].name, "127.0.0.1:2");
    assert_int_equal(ps->be[0].max_conn, 2);
    assert_true(ps->be[1].connect_timeout > 0.49 && ps->be[1].connect_timeout < 0.51);
    assert_true(ps->be[0].connect_timeout < 0);     /* not set: the parameter */
    assert_true(ps->be[2].has_probe);
    assert_int_equal(ps->be[2].probe.window, 4);
    assert_non_null(strstr(ps->be[2].probe.request, "GET /health HTTP/1.1\r\nHost: 127.0.0.1"));
    /* initial = threshold - 1: sick until the first good probe */
    assert_false(pool_be_healthy(&ps->be[2], pool_now_ms()));
    pool_be_probe_result(&ps->be[2], true, NULL);
    assert_true(pool_be_healthy(&ps->be[2], pool_now_ms()));
    pool_be_probe_result(&ps->be[2], false, "x");
    pool_be_probe_result(&ps->be[2], false, "x");
    pool_be_probe_result(&ps->be[2], false, "x");
    assert_false(pool_be_healthy(&ps->be[2], pool_now_ms()));   /* 1 of 4 < 2 */
}

static void
round_robin_skips_sick_and_avoided(void **state)
{
    struct fx *f = *state;
    struct pool_set *ps = f->ps;
    struct dir_pick pk = { 0, NULL, pool_now_ms() };
    unsigned cnt[3] = { 0 };

    pool_be_probe_result(&ps->be[2], true, NULL);
    pool_be_probe_result(&ps->be[2], true, NULL);
    for (int i = 0; i < 30; i++)
        cnt[pool_resolve(ps, dref(0), &pk)->idx]++;
    assert_int_equal(cnt[0], 10);
    assert_int_equal(cnt[1], 10);
    assert_int_equal(cnt[2], 10);
    /* passive: three failures in a row make b1 sick */
    pool_be_report(&ps->be[1], false, &f->cfg);
    pool_be_report(&ps->be[1], false, &f->cfg);
    assert_true(pool_be_healthy(&ps->be[1], pool_now_ms()));
    pool_be_report(&ps->be[1], false, &f->cfg);
    assert_false(pool_be_healthy(&ps->be[1], pool_now_ms()));
    pk.now_ms = pool_now_ms();
    for (int i = 0; i < 10; i++)
        assert_int_not_equal(pool_resolve(ps, dref(0), &pk)->idx, 1);
    /* a retry avoids the server that failed */
    pk.avoid = &ps->be[0];
    for (int i = 0; i < 10; i++)
        assert_int_equal(pool_resolve(ps, dref(0), &pk)->idx, 2);
    /* after the sick period b1 is back */
    pk.avoid = NULL;
    pk.now_ms = pool_now_ms() + 61000;
    memset(cnt, 0, sizeof(cnt));
    for (int i = 0; i < 30; i++)
        cnt[pool_resolve(ps, dref(0), &pk)->idx]++;
    assert_int_equal(cnt[1], 10);
}

static void
fallback_random_leastconn_and_nesting(void **state)
{
    struct fx *f = *state;
    struct pool_set *ps = f->ps;
    struct dir_pick pk = { 0, NULL, pool_now_ms() };
    unsigned cnt[2] = { 0 };

    assert_int_equal(pool_resolve(ps, dref(1), &pk)->idx, 0);          /* fallback: first */
    atomic_store(&ps->be[0].sick_until_ms, pool_now_ms() + 60000);
    pk.now_ms = pool_now_ms();
    assert_int_equal(pool_resolve(ps, dref(1), &pk)->idx, 1);          /* ... healthy one */
    assert_true(pool_ref_healthy(ps, dref(1), pk.now_ms));
    atomic_store(&ps->be[1].sick_until_ms, pool_now_ms() + 60000);
    assert_null(pool_resolve(ps, dref(1), &pk));                       /* whole pool sick */
    assert_false(pool_ref_healthy(ps, dref(1), pk.now_ms));
    /* nested: top = fallback(shard(b0, b1), b2); shard all sick -> b2 */
    pool_be_probe_result(&ps->be[2], true, NULL);
    assert_int_equal(pool_resolve(ps, dref(5), &pk)->idx, 2);
    atomic_store(&ps->be[0].sick_until_ms, 0);
    atomic_store(&ps->be[1].sick_until_ms, 0);
    pk.key = dir_hash("/k", 2);
    unsigned first = pool_resolve(ps, dref(5), &pk)->idx;
    assert_true(first <= 1);
    assert_int_equal(pool_resolve(ps, dref(5), &pk)->idx, first);     /* stable */
    /* random 1:3 */
    for (int i = 0; i < 4000; i++)
        cnt[pool_resolve(ps, dref(2), &pk)->idx]++;
    assert_true(cnt[1] > 2 * cnt[0] && cnt[1] < 4 * cnt[0]);
    /* least connections follows the busy counts */
    atomic_store(&ps->be[0].busy, 5);
    atomic_store(&ps->be[1].busy, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pool_resolve(ps, dref(3), &pk)->idx, 1);
    atomic_store(&ps->be[1].busy, 9);
    assert_int_equal(pool_resolve(ps, dref(3), &pk)->idx, 0);
    atomic_store(&ps->be[0].busy, 0);
    atomic_store(&ps->be[1].busy, 0);
}

static void
max_connections_slots(void **state)
{
    struct fx *f = *state;
    struct backend *b0 = &f->ps->be[0], *b1 = &f->ps->be[1];

    assert_true(pool_be_acquire(b0));
    assert_true(pool_be_acquire(b0));
    assert_false(pool_be_acquire(b0));     /* .max_connections = 2 */
    for (int i = 0; i < 100; i++)
        assert_true(pool_be_acquire(b1));  /* no limit */
    atomic_store(&b0->busy, 0);
    atomic_store(&b1->busy, 0);
}

static int wakes[4];

static void
count_wake(void *arg)
{
    wakes[*(int *)arg]++;
}

/* Waiters for a slot are served in order; a slot granted to a waiter that
 * leaves goes on to the next one. */
static void
max_connections_queue_is_fifo(void **state)
{
    struct fx *f = *state;
    struct backend *b0 = &f->ps->be[0];
    int id[3] = { 0, 1, 2 };
    struct pool_waiter qw[3];

    memset(qw, 0, sizeof(qw));
    memset(wakes, 0, sizeof(wakes));
    assert_true(pool_be_acquire(b0));
    assert_true(pool_be_acquire(b0));
    for (int i = 0; i < 3; i++) {
        qw[i].be = b0;
        qw[i].wake = count_wake;
        qw[i].arg = &id[i];
        assert_false(pool_wait_enter(&qw[i]));
    }
    assert_false(pool_wait_granted(&qw[0]));
    pool_be_release(b0);                    /* to the oldest waiter */
    assert_int_equal(wakes[0], 1);
    assert_int_equal(wakes[1], 0);
    assert_int_equal(atomic_load(&b0->busy), 2);
    pool_wait_leave(&qw[1]);                /* a waiter gives up: dequeued */
    assert_null(qw[1].be);
    pool_wait_leave(&qw[0]);                /* granted but gone: the slot moves on */
    assert_int_equal(wakes[2], 1);
    assert_int_equal(wakes[1], 0);
    assert_true(pool_wait_granted(&qw[2]));
    assert_null(qw[2].be);
    pool_be_release(b0);
    pool_be_release(b0);
    assert_int_equal(atomic_load(&b0->busy), 0);
    assert_true(pool_wait_enter(&(struct pool_waiter){ .be = b0, .wake = count_wake,
                                                       .arg = &id[0] }));
    pool_be_release(b0);
    assert_null(b0->qhead);
}

static void
stats_name_every_backend(void **state)
{
    struct fx *f = *state;
    struct ac_buf b;

    ac_buf_init(&b, 0, 0);
    pool_stats_json(f->ps, &b);
    ac_buf_cat(&b, "", 1);
    assert_non_null(strstr(b.p, "\"name\": \"b0\""));
    assert_non_null(strstr(b.p, "\"address\": \"127.0.0.1:3\""));
    assert_non_null(strstr(b.p, "\"probe\": \""));
    assert_non_null(strstr(b.p, "\"queue_full\": 0"));
    ac_buf_free(&b);
}

/* A reload builds a new set; unchanged backends keep their health. */
static void
reload_keeps_health_of_unchanged_backends(void **state)
{
    struct fx *f = *state;
    struct pool_set *ps2;
    struct vcl_program *p2;
    char err[256];
    static const char OTHER[] =
        "vcl 4.1;\n"
        "probe p { .url = \"/health\"; .interval = 1s; .window = 4; .threshold = 2; }\n"
        "backend b1 { .host = \"127.0.0.1\"; .port = \"2\"; }\n"
        "backend b2 { .host = \"127.0.0.1\"; .port = \"3\"; .probe = p; }\n"
        "backend b0 { .host = \"127.0.0.1\"; .port = \"9\"; .probe = p; }\n";

    pool_be_probe_result(&f->ps->be[2], true, NULL);            /* b2 healthy */
    atomic_store(&f->ps->be[1].sick_until_ms, pool_now_ms() + 60000);  /* b1 sick */
    assert_int_equal(vcl_compile_string("o.vcl", OTHER, sizeof(OTHER) - 1, NULL, &p2, NULL), 0);
    ps2 = pool_set_from_program(&f->cfg, p2, err, sizeof(err));
    assert_non_null(ps2);
    pool_set_inherit(ps2, f->ps);
    uint64_t now = pool_now_ms();
    assert_false(pool_be_healthy(&ps2->be[0], now));    /* b1: still sick */
    assert_true(pool_be_healthy(&ps2->be[1], now));     /* b2: still healthy */
    assert_false(pool_be_healthy(&ps2->be[2], now));    /* b0 moved: starts over */
    pool_set_release(&ps2);
    vcl_program_release(&p2);
}

static void
probe_status_line(void **state)
{
    (void)state;
    assert_int_equal(probe_parse_status("HTTP/1.1 200 OK\r\n", 17), 200);
    assert_int_equal(probe_parse_status("HTTP/1.0 503\r\n", 14), 503);
    assert_int_equal(probe_parse_status("HTTP/1.1 20", 11), 0);
    assert_int_equal(probe_parse_status("HTT", 3), 0);
    assert_int_equal(probe_parse_status("SSH-2.0-x\r\n", 11), -1);
    assert_int_equal(probe_parse_status("HTTP/1.1 2x0 OK\r\n", 17), -1);
    assert_int_equal(probe_parse_status("HTTP/1.1 2000 OK\r\n", 18), -1);
    assert_int_equal(probe_parse_status("HTTP/1.1\r\n", 10), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ring_spreads_keys_evenly),
        cmocka_unit_test(removing_a_member_remaps_only_its_keys),
        cmocka_unit_test(skipping_a_member_equals_removing_it),
        cmocka_unit_test(weights_scale_the_share),
        cmocka_unit_test_setup_teardown(set_mirrors_the_declarations, setup, teardown),
        cmocka_unit_test_setup_teardown(round_robin_skips_sick_and_avoided, setup, teardown),
        cmocka_unit_test_setup_teardown(fallback_random_leastconn_and_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(max_connections_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(max_connections_queue_is_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(stats_name_every_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(reload_keeps_health_of_unchanged_backends, setup,
                                        teardown),
        cmocka_unit_test(probe_status_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
