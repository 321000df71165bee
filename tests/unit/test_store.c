/*
 * test_store.c -- unit tests of the store memory tier through store.h:
 * lookup, coalescing, streaming and waiters, variants, replace/freshen,
 * invalidation (key, tag, soft, bans), housekeeping, memory limit and
 * eviction, concurrency.  The disk tier is tested in test_store_disk.c.
 * STORE_TEST_SCALE=N multiplies the loop counts (default 1 keeps the file
 * within a few seconds, also under valgrind and TSan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"




#include "store_test_util.h"


/* ---- fixtures ---------------------------------------------------------------- */

static int
setup(void **state)
{
    struct store_config cfg;
    struct store *st = NULL;

    store_config_init(&cfg);
    cfg.shards = 8;
    cfg.mem_limit = 64 << 20;
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    *state = st;
    return 0;
}

static int
teardown(void **state)
{
    struct store *st = *state;

    store_close(&st);
    assert_null(st);
    return 0;
}

/* ---- basics ------------------------------------------------------------------ */

static void
hits_count_every_lookup_that_returns_the_object(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/h"), 100, NULL, NULL, 0 };
    struct store_obj *o = NULL;

    assert_int_equal(put_obj(st, "/h", "x", 100, 60), STORE_OK);
    assert_int_equal(get_obj(st, "/h", 101, NULL, 0, 0), STORE_HIT);
    assert_int_equal(get_obj(st, "/h", 102, NULL, 0, 0), STORE_HIT);
    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
    assert_int_equal(store_obj_hits(o), 3);
    store_obj_release(&o);
}

static void
miss_insert_then_hit_returns_body_and_meta(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/a"), 100, NULL, NULL, 0 };
    struct store_obj *o = NULL;
    struct store_times t;
    char buf[64];

    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_MISS);
    assert_null(o);
    assert_int_equal(put_obj(st, "/a", "hello", 100, 60), STORE_OK);
    assert_int_equal(get_obj(st, "/a", 101, buf, sizeof(buf), 0), STORE_HIT);
    assert_string_equal(buf, "hello");
    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
    assert_int_equal(store_obj_status(o), 200);
    assert_int_equal(store_obj_etag(o).len, 4);
    assert_memory_equal(store_obj_key(o).p, "/a", 2);
    store_obj_times(o, &t);
    assert_true(t.ttl == 60 && t.insert == 100);
    assert_int_equal(store_obj_state(o, NULL), STORE_OBJ_COMPLETE);
    store_obj_release(&o);
    assert_null(o);
}

static void
freshness_is_classified_from_times(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/f"), 100, NULL, NULL, 0 };
    struct store_obj *o = NULL;

    assert_int_equal(put_obj(st, "/f", "x", 100, 5), STORE_OK); /* grace 10, keep 10 */
    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
    assert_int_equal(store_obj_freshness(o, 104), STORE_FRESH);
    assert_int_equal(store_obj_freshness(o, 106), STORE_STALE_IN_GRACE);
    assert_int_equal(store_obj_freshness(o, 116), STORE_STALE_IN_KEEP);
    assert_int_equal(store_obj_freshness(o, 126), STORE_EXPIRED);
    store_obj_release(&o);
    /* past ttl+grace+keep it is gone */
    assert_int_equal(get_obj(st, "/f", 124, NULL, 0, 0), STORE_HIT);
    assert_int_equal(get_obj(st, "/f", 125.5, NULL, 0, 0), STORE_MISS);
}

static void
digest_collision_never_returns_wrong_object(void **state)
{
    struct store_config cfg;
    struct store *st = NULL;
    char buf[64];
    size_t n = 0;

    (void)state;
    store_config_init(&cfg);
    cfg.shards = 4;
    cfg.flags = STORE_CFG_TEST_CONST_DIGEST; /* every key: same digest */
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    assert_int_equal(put_obj(st, "/one", "ONE", 100, 60), STORE_OK);
    assert_int_equal(get_obj(st, "/two", 100, NULL, 0, 0), STORE_MISS);
    assert_int_equal(put_obj(st, "/two", "TWO", 100, 60), STORE_OK);
    assert_int_equal(put_obj(st, "/twO", "TWO2", 100, 60), STORE_OK);
    assert_int_equal(get_obj(st, "/one", 101, buf, sizeof(buf), 0), STORE_HIT);
    assert_string_equal(buf, "ONE");
    assert_int_equal(get_obj(st, "/two", 101, buf, sizeof(buf), 0), STORE_HIT);
    assert_string_equal(buf, "TWO");
    assert_int_equal(store_purge_key(st, B("/one"), 0, 101, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(get_obj(st, "/one", 101, NULL, 0, 0), STORE_MISS);
    assert_int_equal(get_obj(st, "/twO", 101, buf, sizeof(buf), 0), STORE_HIT);
    assert_string_equal(buf, "TWO2");
    store_close(&st);
}

static void
hfm_marker_is_a_hit_with_flag(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/hfm"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *o = NULL;
    struct store_meta m;

    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_MISS_CREATED);
    test_meta(&m, 100, 5, NULL);
    m.flags = STORE_OBJ_F_HFM;
    assert_int_equal(store_obj_set_meta(o, &m), STORE_OK);
    assert_int_equal(store_obj_complete(o), STORE_OK);
    store_obj_release(&o);
    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
    assert_true(store_obj_flags(o) & STORE_OBJ_F_HFM);
    store_obj_release(&o);
}

static void
misuse_is_refused_with_codes(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/m"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *o = NULL;
    struct store_meta m;
    struct store_config cfg;
    struct store *bad = NULL;
    char msg[128] = "";

    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_MISS_CREATED);
    assert_int_equal(store_obj_append(o, "x", 1), STORE_ESTATE); /* no meta yet */
    assert_int_equal(store_obj_complete(o), STORE_ESTATE);
    test_meta(&m, 100, 5, NULL);
    assert_int_equal(store_obj_set_meta(o, &m), STORE_OK);
    assert_int_equal(store_obj_set_meta(o, &m), STORE_ESTATE);
    store_obj_abort(o);
    assert_int_equal(store_obj_append(o, "x", 1), STORE_ESTATE);
    store_obj_release(&o);
    store_config_init(&cfg);
    cfg.shards = 6;
    cfg.errbuf = msg;
    cfg.errbuf_len = sizeof(msg);
    assert_int_equal(store_open(&cfg, &bad), STORE_EINVAL);
    assert_null(bad);
    assert_non_null(strstr(msg, "power of two"));
    assert_string_equal(store_strerror(STORE_ESTATE), "not allowed in this object state");
}

/* ---- coalescing, streaming, waiters --------------------------------------------- */

static void
second_lookup_of_busy_key_gets_busy_not_miss(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/c"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *a = NULL, *b = NULL;
    struct store_meta m;

    assert_int_equal(store_lookup(st, &lk, &a, NULL), STORE_MISS_CREATED);
    assert_int_equal(store_lookup(st, &lk, &b, NULL), STORE_BUSY);
    assert_ptr_equal(a, b);
    assert_int_equal(store_obj_state(b, NULL), STORE_OBJ_BUSY);
    store_obj_release(&b);
    test_meta(&m, 100, 60, NULL);
    assert_int_equal(store_obj_set_meta(a, &m), STORE_OK);
    assert_int_equal(store_obj_complete(a), STORE_OK);
    assert_int_equal(store_lookup(st, &lk, &b, NULL), STORE_HIT);
    assert_ptr_equal(a, b);
    store_obj_release(&a);
    store_obj_release(&b);
}

struct race {
    struct store *st;
    pthread_barrier_t bar;
    atomic_int created, busy, other;
};

static void *
race_thread(void *arg)
{
    struct race *rc = arg;
    struct store_lookup lk = { B("/race"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *o = NULL;
    int r;

    pthread_barrier_wait(&rc->bar);
    r = store_lookup(rc->st, &lk, &o, NULL);
    if (r == STORE_MISS_CREATED)
        atomic_fetch_add(&rc->created, 1);
    else if (r == STORE_BUSY)
        atomic_fetch_add(&rc->busy, 1);
    else
        atomic_fetch_add(&rc->other, 1);
    pthread_barrier_wait(&rc->bar); /* everybody looked up before anyone aborts */
    if (r == STORE_MISS_CREATED)
        store_obj_abort(o);
    store_obj_release(&o);
    return NULL;
}

static void
concurrent_lookups_coalesce_into_one_fetch(void **state)
{
    enum { N = 8 };
    struct race rc;
    pthread_t th[N];
    int i, round;

    memset(&rc, 0, sizeof(rc));
    rc.st = *state;
    for (round = 0; round < 20 * test_scale(); round++) {
        atomic_store(&rc.created, 0);
        atomic_store(&rc.busy, 0);
        pthread_barrier_init(&rc.bar, NULL, N);
        for (i = 0; i < N; i++)
            pthread_create(&th[i], NULL, race_thread, &rc);
        for (i = 0; i < N; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&rc.bar);
        assert_int_equal(atomic_load(&rc.created), 1);
        assert_int_equal(atomic_load(&rc.busy), N - 1);
    }
    assert_int_equal(atomic_load(&rc.other), 0);
}

struct counting_waiter {
    struct store_waiter w;
    atomic_int calls;
};

static void
on_change(struct store_waiter *w)
{
    struct counting_waiter *cw = w->priv;

    atomic_fetch_add(&cw->calls, 1);
}

static size_t
read_all(const struct store_obj *o, char *buf, size_t cap)
{
    struct store_bytes segs[64];
    size_t n, i, off = 0;

    n = store_obj_read(o, 0, segs, 64);
    for (i = 0; i < n && off + segs[i].len <= cap; i++) {
        memcpy(buf + off, segs[i].p, segs[i].len);
        off += segs[i].len;
    }
    return off;
}

static void
streaming_reader_sees_appends_and_is_notified(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/s"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *w = NULL, *r = NULL;
    struct counting_waiter cw;
    struct store_meta m;
    struct store_bytes seg;
    char big[100000], out[100000];
    size_t len, i;

    assert_int_equal(store_lookup(st, &lk, &w, NULL), STORE_MISS_CREATED);
    assert_int_equal(store_lookup(st, &lk, &r, NULL), STORE_BUSY);
    atomic_init(&cw.calls, 0);
    store_waiter_init(&cw.w, on_change, &cw);
    assert_int_equal(store_waiter_subscribe(r, &cw.w), STORE_OK);
    assert_int_equal(store_waiter_subscribe(r, &cw.w), STORE_ESTATE);
    assert_false(store_obj_has_meta(r));
    test_meta(&m, 100, 60, NULL);
    assert_int_equal(store_obj_set_meta(w, &m), STORE_OK);
    assert_int_equal(atomic_load(&cw.calls), 1);
    assert_true(store_obj_has_meta(r));
    assert_int_equal(store_obj_read(r, 0, &seg, 1), 0);
    for (i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    assert_int_equal(store_obj_append(w, big, 10), STORE_OK);
    assert_int_equal(atomic_load(&cw.calls), 2);
    assert_int_equal(store_obj_state(r, &len), STORE_OBJ_BUSY);
    assert_int_equal(len, 10);
    assert_int_equal(store_obj_read(r, 4, &seg, 1), 1);
    assert_int_equal(seg.len, 6);
    assert_memory_equal(seg.p, big + 4, 6);
    for (i = 10; i < sizeof(big); i += 7000)
        assert_int_equal(store_obj_append(w, big + i, i + 7000 < sizeof(big) ? 7000 : sizeof(big) - i),
                         STORE_OK);
    assert_int_equal(store_obj_complete(w), STORE_OK);
    assert_int_equal(store_obj_state(r, &len), STORE_OBJ_COMPLETE);
    assert_int_equal(len, sizeof(big));
    assert_int_equal(read_all(r, out, sizeof(out)), sizeof(big));
    assert_memory_equal(out, big, sizeof(big));
    assert_int_equal(atomic_load(&cw.calls), 2 + 15 + 1);
    store_waiter_unsubscribe(&cw.w);
    store_waiter_unsubscribe(&cw.w); /* no-op */
    store_obj_release(&w);
    store_obj_release(&r);
}

static void
abort_is_seen_by_readers_and_next_lookup_refetches(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/ab"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *w = NULL, *r = NULL, *again = NULL;
    struct counting_waiter cw;
    struct store_meta m;
    size_t len;

    assert_int_equal(store_lookup(st, &lk, &w, NULL), STORE_MISS_CREATED);
    assert_int_equal(store_lookup(st, &lk, &r, NULL), STORE_BUSY);
    atomic_init(&cw.calls, 0);
    store_waiter_init(&cw.w, on_change, &cw);
    assert_int_equal(store_waiter_subscribe(r, &cw.w), STORE_OK);
    test_meta(&m, 100, 60, NULL);
    assert_int_equal(store_obj_set_meta(w, &m), STORE_OK);
    assert_int_equal(store_obj_append(w, "part", 4), STORE_OK);
    store_obj_abort(w);
    assert_int_equal(atomic_load(&cw.calls), 3);
    assert_int_equal(store_obj_state(r, &len), STORE_OBJ_ABORTED);
    assert_int_equal(len, 4);
    store_waiter_unsubscribe(&cw.w);
    assert_int_equal(store_lookup(st, &lk, &again, NULL), STORE_MISS_CREATED);
    assert_ptr_not_equal(again, w);
    store_obj_abort(again);
    store_obj_release(&again);
    store_obj_release(&w);
    store_obj_release(&r);
}

/* unsubscribe from inside the callback: allowed */
static void
on_change_unsub(struct store_waiter *w)
{
    struct counting_waiter *cw = w->priv;

    atomic_fetch_add(&cw->calls, 1);
    store_waiter_unsubscribe(w);
}

static void
waiter_can_unsubscribe_itself_in_callback(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/u"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *w = NULL;
    struct counting_waiter a, b;
    struct store_meta m;

    assert_int_equal(store_lookup(st, &lk, &w, NULL), STORE_MISS_CREATED);
    atomic_init(&a.calls, 0);
    atomic_init(&b.calls, 0);
    store_waiter_init(&a.w, on_change_unsub, &a);
    store_waiter_init(&b.w, on_change, &b);
    assert_int_equal(store_waiter_subscribe(w, &a.w), STORE_OK);
    assert_int_equal(store_waiter_subscribe(w, &b.w), STORE_OK);
    test_meta(&m, 100, 60, NULL);
    assert_int_equal(store_obj_set_meta(w, &m), STORE_OK);
    assert_int_equal(store_obj_append(w, "x", 1), STORE_OK);
    assert_int_equal(atomic_load(&a.calls), 1);
    assert_int_equal(atomic_load(&b.calls), 2);
    store_waiter_unsubscribe(&b.w);
    store_obj_abort(w);
    store_obj_release(&w);
}

/* A waiter freed right after unsubscribe while another thread appends:
 * ASan/TSan prove the callback never touches it afterwards. */
struct appender {
    struct store_obj *o;
    atomic_int stop;
};

static void *
append_loop(void *arg)
{
    struct appender *ap = arg;

    while (!atomic_load(&ap->stop))
        assert_int_equal(store_obj_append(ap->o, "0123456789", 10), STORE_OK);
    return NULL;
}

static void
unsubscribe_is_safe_against_concurrent_notify(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/race-w"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *w = NULL, *r = NULL;
    struct appender ap;
    struct store_meta m;
    pthread_t th;
    int i;

    assert_int_equal(store_lookup(st, &lk, &w, NULL), STORE_MISS_CREATED);
    assert_int_equal(store_lookup(st, &lk, &r, NULL), STORE_BUSY);
    test_meta(&m, 100, 60, NULL);
    assert_int_equal(store_obj_set_meta(w, &m), STORE_OK);
    ap.o = w;
    atomic_init(&ap.stop, 0);
    pthread_create(&th, NULL, append_loop, &ap);
    for (i = 0; i < 2000 * test_scale(); i++) {
        struct counting_waiter *cw = malloc(sizeof(*cw));

        atomic_init(&cw->calls, 0);
        store_waiter_init(&cw->w, on_change, cw);
        assert_int_equal(store_waiter_subscribe(r, &cw->w), STORE_OK);
        store_waiter_unsubscribe(&cw->w);
        free(cw);
    }
    atomic_store(&ap.stop, 1);
    pthread_join(th, NULL);
    store_obj_abort(w);
    store_obj_release(&w);
    store_obj_release(&r);
}

/* A reader on another thread streams the body as it arrives, woken only by
 * its waiter (as a worker would be by ev_async), and sees every byte. */
struct stream_reader {
    struct store_waiter w;
    struct store_obj *o;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    int kicked;
    size_t got;
    int bad;
};

static void
on_stream_kick(struct store_waiter *w)
{
    struct stream_reader *sr = w->priv;

    pthread_mutex_lock(&sr->mtx);
    sr->kicked = 1;
    pthread_cond_signal(&sr->cond);
    pthread_mutex_unlock(&sr->mtx);
}

static void *
stream_reader_main(void *arg)
{
    struct stream_reader *sr = arg;
    struct store_bytes segs[8];
    enum store_obj_state stt;
    size_t len, n, i, j;

    store_waiter_subscribe(sr->o, &sr->w);
    for (;;) {
        stt = store_obj_state(sr->o, &len); /* state first, then the bytes */
        while (sr->got < len && (n = store_obj_read(sr->o, sr->got, segs, 8)) > 0) {
            for (i = 0; i < n; i++) {
                for (j = 0; j < segs[i].len; j++)
                    if (((const unsigned char *)segs[i].p)[j] != (unsigned char)((sr->got + j) * 31))
                        sr->bad++;
                sr->got += segs[i].len;
            }
        }
        if (stt != STORE_OBJ_BUSY)
            break;
        pthread_mutex_lock(&sr->mtx);
        while (!sr->kicked)
            pthread_cond_wait(&sr->cond, &sr->mtx);
        sr->kicked = 0;
        pthread_mutex_unlock(&sr->mtx);
    }
    store_waiter_unsubscribe(&sr->w);
    return NULL;
}

static void
reader_thread_streams_whole_body_woken_by_waiter(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/stream"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct stream_reader sr[3];
    pthread_t th[3];
    struct store_obj *w = NULL;
    struct store_meta m;
    unsigned char chunk[1000];
    size_t total = 0, i, k;

    assert_int_equal(store_lookup(st, &lk, &w, NULL), STORE_MISS_CREATED);
    for (k = 0; k < 3; k++) {
        memset(&sr[k], 0, sizeof(sr[k]));
        assert_int_equal(store_lookup(st, &lk, &sr[k].o, NULL), STORE_BUSY);
        pthread_mutex_init(&sr[k].mtx, NULL);
        pthread_cond_init(&sr[k].cond, NULL);
        store_waiter_init(&sr[k].w, on_stream_kick, &sr[k]);
        pthread_create(&th[k], NULL, stream_reader_main, &sr[k]);
    }
    test_meta(&m, 100, 60, NULL);
    assert_int_equal(store_obj_set_meta(w, &m), STORE_OK);
    for (k = 0; k < 300 * (size_t)test_scale(); k++) {
        size_t n = 1 + (k * 7919) % sizeof(chunk);

        for (i = 0; i < n; i++)
            chunk[i] = (unsigned char)((total + i) * 31);
        assert_int_equal(store_obj_append(w, chunk, n), STORE_OK);
        total += n;
    }
    assert_int_equal(store_obj_complete(w), STORE_OK);
    for (k = 0; k < 3; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(sr[k].got, total);
        assert_int_equal(sr[k].bad, 0);
        store_obj_release(&sr[k].o);
        pthread_mutex_destroy(&sr[k].mtx);
        pthread_cond_destroy(&sr[k].cond);
    }
    store_obj_release(&w);
}

/* ---- variants, replace, freshen, refresh ------------------------------------------ */

static void
vary_busy_without_headers_makes_everyone_wait_then_recheck(void **state)
{
    struct store *st = *state;
    struct store_lookup gz = { B("/v"), 100, match_selector, "gzip", STORE_LOOKUP_CREATE };
    struct store_lookup br = { B("/v"), 100, match_selector, "br", STORE_LOOKUP_CREATE };
    struct store_obj *a = NULL, *b = NULL, *c = NULL;
    struct store_meta m;
    char buf[32];

    assert_int_equal(store_lookup(st, &gz, &a, NULL), STORE_MISS_CREATED);
    /* selector unknown yet: the br request waits on it too */
    assert_int_equal(store_lookup(st, &br, &b, NULL), STORE_BUSY);
    assert_ptr_equal(a, b);
    store_obj_release(&b);
    test_meta(&m, 100, 60, "gzip");
    assert_int_equal(store_obj_set_meta(a, &m), STORE_OK);
    /* headers known: gzip requests stream from it, br gets its own fetch */
    assert_int_equal(store_lookup(st, &gz, &b, NULL), STORE_BUSY);
    store_obj_release(&b);
    assert_int_equal(store_lookup(st, &br, &c, NULL), STORE_MISS_CREATED);
    assert_ptr_not_equal(a, c);
    test_meta(&m, 100, 60, "br");
    assert_int_equal(store_obj_set_meta(c, &m), STORE_OK);
    assert_int_equal(store_obj_append(c, "BR", 2), STORE_OK);
    assert_int_equal(store_obj_complete(c), STORE_OK);
    assert_int_equal(store_obj_append(a, "GZ", 2), STORE_OK);
    assert_int_equal(store_obj_complete(a), STORE_OK);
    store_obj_release(&a);
    store_obj_release(&c);
    assert_int_equal(store_lookup(st, &gz, &a, NULL), STORE_HIT);
    assert_int_equal(read_all(a, buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "GZ", 2);
    store_obj_release(&a);
    assert_int_equal(store_lookup(st, &br, &a, NULL), STORE_HIT);
    assert_int_equal(read_all(a, buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "BR", 2);
    store_obj_release(&a);
}

static void
completing_new_object_replaces_old_but_readers_keep_it(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/r"), 100, NULL, NULL, STORE_LOOKUP_CREATE | STORE_LOOKUP_REFRESH };
    struct store_obj *old = NULL, *busy = NULL, *cur = NULL;
    struct store_meta m;
    struct store_stats s;
    char buf[32];

    assert_int_equal(put_obj(st, "/r", "old", 100, 5), STORE_OK);
    lk.now = 107; /* stale in grace: hit + a refresh busy object */
    assert_int_equal(store_lookup(st, &lk, &old, &busy), STORE_HIT);
    assert_non_null(busy);
    assert_int_equal(store_obj_freshness(old, 107), STORE_STALE_IN_GRACE);
    /* a second stale lookup: refresh already under way */
    assert_int_equal(store_lookup(st, &lk, &cur, NULL), STORE_HIT);
    store_obj_release(&cur);
    {
        struct store_obj *o2 = NULL, *b2 = NULL;

        assert_int_equal(store_lookup(st, &lk, &o2, &b2), STORE_HIT);
        assert_null(b2);
        store_obj_release(&o2);
    }
    test_meta(&m, 107, 60, NULL);
    assert_int_equal(store_obj_set_meta(busy, &m), STORE_OK);
    assert_int_equal(store_obj_append(busy, "new", 3), STORE_OK);
    assert_int_equal(store_obj_complete(busy), STORE_OK);
    assert_int_equal(get_obj(st, "/r", 108, buf, sizeof(buf), 0), STORE_HIT);
    assert_string_equal(buf, "new");
    assert_int_equal(read_all(old, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "old", 3);
    store_stats(st, &s);
    assert_int_equal(s.mem_objects, 1);
    store_obj_release(&old);
    store_obj_release(&busy);
}

static void
freshen_shares_body_with_new_metadata(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/fr"), 120, NULL, NULL, STORE_LOOKUP_CREATE | STORE_LOOKUP_REFRESH };
    struct store_obj *old = NULL, *busy = NULL, *o = NULL;
    struct store_bytes a, b;
    struct store_meta m;
    struct store_times t;

    assert_int_equal(put_obj(st, "/fr", "body-bytes", 100, 5), STORE_OK);
    assert_int_equal(store_lookup(st, &lk, &old, &busy), STORE_HIT);
    assert_int_equal(store_obj_freshness(old, 120), STORE_STALE_IN_KEEP);
    assert_non_null(busy);
    test_meta(&m, 120, 300, NULL);
    m.etag = B("\"e2\"");
    assert_int_equal(store_obj_set_meta(busy, &m), STORE_OK);
    assert_int_equal(store_obj_freshen(busy, old), STORE_OK);
    assert_int_equal(store_obj_freshen(busy, old), STORE_ESTATE);
    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
    assert_ptr_equal(o, busy);
    store_obj_times(o, &t);
    assert_true(t.ttl == 300);
    assert_memory_equal(store_obj_etag(o).p, "\"e2\"", 4);
    assert_int_equal(store_obj_read(o, 0, &a, 1), 1);
    assert_int_equal(store_obj_read(old, 0, &b, 1), 1);
    assert_ptr_equal(a.p, b.p); /* shared, not copied */
    store_obj_release(&old);
    assert_int_equal(a.len, 10);
    assert_memory_equal(a.p, "body-bytes", 10); /* still valid: o holds the body */
    store_obj_release(&o);
    store_obj_release(&busy);
}

/* ---- invalidation ------------------------------------------------------------------ */

static void
purge_key_removes_all_variants_readers_keep_theirs(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/p"), 100, match_selector, "a", 0 };
    struct store_obj *held = NULL;
    struct store_meta m;
    size_t n = 0;
    char buf[8];

    test_meta(&m, 100, 60, "a");
    assert_int_equal(put_obj_meta(st, "/p", "A", &m, 100, "a"), STORE_OK);
    test_meta(&m, 100, 60, "b");
    assert_int_equal(put_obj_meta(st, "/p", "B", &m, 100, "b"), STORE_OK);
    assert_int_equal(store_lookup(st, &lk, &held, NULL), STORE_HIT);
    assert_int_equal(store_purge_key(st, B("/p"), 0, 101, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(get_obj(st, "/p", 101, NULL, 0, 0), STORE_MISS);
    assert_int_equal(read_all(held, buf, sizeof(buf)), 1); /* the reader keeps its copy */
    store_obj_release(&held);
    assert_int_equal(store_lookup(st, &lk, &held, NULL), STORE_MISS);
    assert_int_equal(store_purge_key(st, B("/p"), 0, 101, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void
soft_purge_makes_stale_but_keeps_grace(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/soft"), 150, NULL, NULL, 0 };
    struct store_obj *o = NULL;
    struct store_times t;
    size_t n = 0;

    assert_int_equal(put_obj(st, "/soft", "x", 100, 3600), STORE_OK);
    assert_int_equal(store_purge_key(st, B("/soft"), STORE_PURGE_SOFT, 150, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
    assert_int_equal(store_obj_freshness(o, 150), STORE_STALE_IN_GRACE);
    store_obj_times(o, &t);
    assert_true(t.ttl == 50);
    store_obj_release(&o);
    assert_int_equal(get_obj(st, "/soft", 171, NULL, 0, 0), STORE_MISS); /* grace 10 + keep 10 */
}

static void
purge_tag_hard_and_soft(void **state)
{
    struct store *st = *state;
    struct store_bytes tags2[2] = { B("article-1"), B("section-x") };
    struct store_bytes tags1[1] = { B("section-x") };
    struct store_meta m;
    char key[32];
    size_t n = 0;
    int i;

    for (i = 0; i < 100; i++) {
        test_meta(&m, 100, 60, NULL);
        m.tags = i % 2 ? tags2 : tags1;
        m.ntags = i % 2 ? 2 : 1;
        snprintf(key, sizeof(key), "/t/%d", i);
        assert_int_equal(put_obj_meta(st, key, "b", &m, 100, NULL), STORE_OK);
    }
    assert_int_equal(store_purge_tag(st, B("article-1"), STORE_PURGE_SOFT, 101, &n), STORE_OK);
    assert_int_equal(n, 50);
    {
        struct store_lookup lk = { B("/t/1"), 102, NULL, NULL, 0 };
        struct store_obj *o = NULL;

        assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
        assert_int_equal(store_obj_freshness(o, 102), STORE_STALE_IN_GRACE);
        assert_int_equal(store_obj_tag_count(o), 2);
        assert_memory_equal(store_obj_tag(o, 0).p, "article-1", 9);
        store_obj_release(&o);
        lk.key = B("/t/2");
        assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_HIT);
        assert_int_equal(store_obj_freshness(o, 102), STORE_FRESH);
        store_obj_release(&o);
    }
    assert_int_equal(store_purge_tag(st, B("article-1"), 0, 102, &n), STORE_OK);
    assert_int_equal(n, 50);
    assert_int_equal(get_obj(st, "/t/1", 102, NULL, 0, 0), STORE_MISS);
    assert_int_equal(get_obj(st, "/t/2", 102, NULL, 0, 0), STORE_HIT);
    assert_int_equal(store_purge_tag(st, B("section-x"), 0, 102, &n), STORE_OK);
    assert_int_equal(n, 50);
    assert_int_equal(get_obj(st, "/t/2", 102, NULL, 0, 0), STORE_MISS);
    assert_int_equal(store_purge_tag(st, B("nope"), 0, 102, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void
tag_purge_of_many_objects_is_fast(void **state)
{
    struct store_config cfg;
    struct store *st = NULL;
    struct store_bytes tag[1] = { B("big") };
    struct store_meta m;
    struct timespec t0, t1;
    char key[32];
    size_t n = 0;
    int i, count = 100000;

    (void)state;
    if (getenv("STORE_TEST_QUICK") != NULL)
        count = 10000;
    store_config_init(&cfg);
    cfg.mem_limit = (size_t)1 << 30;
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    test_meta(&m, 100, 600, NULL);
    m.tags = tag;
    m.ntags = 1;
    for (i = 0; i < count; i++) {
        snprintf(key, sizeof(key), "/big/%d", i);
        assert_int_equal(put_obj_meta(st, key, "x", &m, 100, NULL), STORE_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_purge_tag(st, B("big"), 0, 101, &n), STORE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(n, (size_t)count);
    assert_int_equal(get_obj(st, "/big/77", 101, NULL, 0, 0), STORE_MISS);
    print_message("purged %d objects by tag in %.1f ms\n", count,
                  (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    store_close(&st);
}

/* ban spec "status=N" or "prefix=/x" */
static bool
test_ban_match(void *arg, struct store_bytes spec, const struct store_obj *o)
{
    struct store_bytes k = store_obj_key(o);
    atomic_int *calls = arg;

    if (calls != NULL)
        atomic_fetch_add(calls, 1);
    if (spec.len > 7 && memcmp(spec.p, "prefix=", 7) == 0)
        return k.len >= spec.len - 7 && memcmp(k.p, (const char *)spec.p + 7, spec.len - 7) == 0;
    if (spec.len > 7 && memcmp(spec.p, "status=", 7) == 0)
        return (unsigned)atoi((const char *)spec.p + 7) == store_obj_status(o);
    return false;
}

static int
count_bans(void *arg, struct store_bytes spec, double time)
{
    (void)spec;
    (void)time;
    (*(int *)arg)++;
    return 0;
}

static void
bans_apply_lazily_only_to_older_objects_and_retire(void **state)
{
    struct store_config cfg;
    struct store *st = NULL;
    struct store_stats s;
    atomic_int calls;
    char buf[8];
    int nb = 0;

    (void)state;
    atomic_init(&calls, 0);
    store_config_init(&cfg);
    cfg.shards = 4;
    cfg.ban_match = test_ban_match;
    cfg.ban_arg = &calls;
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    assert_int_equal(put_obj(st, "/news/1", "n1", 100, 600), STORE_OK);
    assert_int_equal(put_obj(st, "/news/2", "n2", 100, 600), STORE_OK);
    assert_int_equal(put_obj(st, "/sport/1", "s1", 100, 600), STORE_OK);
    assert_int_equal(get_obj(st, "/news/1", 101, NULL, 0, 0), STORE_HIT);
    assert_int_equal(atomic_load(&calls), 0); /* no ban: no evaluation */
    assert_int_equal(store_ban_add(st, B("prefix=/news/"), 102), STORE_OK);
    assert_int_equal(store_ban_add(st, B("prefix=/news/"), 103), STORE_OK); /* dedup */
    store_ban_iter(st, count_bans, &nb);
    assert_int_equal(nb, 1);
    /* a newer object is not subject to the older ban */
    assert_int_equal(put_obj(st, "/news/3", "n3", 104, 600), STORE_OK);
    assert_int_equal(get_obj(st, "/news/1", 105, NULL, 0, 0), STORE_MISS); /* lazy, at lookup */
    assert_int_equal(get_obj(st, "/news/3", 105, buf, sizeof(buf), 0), STORE_HIT);
    assert_int_equal(get_obj(st, "/sport/1", 105, NULL, 0, 0), STORE_HIT);
    calls = 0;
    assert_int_equal(get_obj(st, "/sport/1", 105, NULL, 0, 0), STORE_HIT);
    assert_int_equal(atomic_load(&calls), 0); /* checked once, remembered */
    /* the lurker gets /news/2 without a lookup, then retires the ban */
    assert_int_equal(store_housekeep(st, 106, 0), STORE_OK);
    store_stats(st, &s);
    assert_int_equal(s.bans, 0);
    assert_int_equal(s.bans_retired, 1);
    assert_int_equal(s.mem_objects, 2);
    assert_int_equal(get_obj(st, "/news/2", 106, NULL, 0, 0), STORE_MISS);
    /* a ban added while an object is being fetched applies to it */
    {
        struct store_lookup lk = { B("/news/4"), 107, NULL, NULL, STORE_LOOKUP_CREATE };
        struct store_obj *o = NULL;
        struct store_meta m;

        assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_MISS_CREATED);
        test_meta(&m, 107, 600, NULL);
        assert_int_equal(store_obj_set_meta(o, &m), STORE_OK);
        assert_int_equal(store_ban_add(st, B("prefix=/news/4"), 108), STORE_OK);
        assert_int_equal(store_obj_complete(o), STORE_OK);
        store_obj_release(&o);
        assert_int_equal(get_obj(st, "/news/4", 109, NULL, 0, 0), STORE_MISS);
    }
    store_close(&st);
}

static void
housekeeping_sweeps_expired_objects(void **state)
{
    struct store *st = *state;
    struct store_stats s;
    char key[32];
    int i;

    for (i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "/e/%d", i);
        assert_int_equal(put_obj(st, key, "x", 100, i % 2 ? 1 : 1000), STORE_OK);
    }
    for (i = 0; i < 10; i++)
        assert_int_equal(store_housekeep(st, 200, 100), STORE_OK);
    store_stats(st, &s);
    assert_int_equal(s.mem_objects, 250);
    assert_int_equal(s.mem_expiries, 250);
}

/* ---- memory limit and eviction ------------------------------------------------------ */

static void
memory_limit_holds_under_random_workload(void **state)
{
    struct store_config cfg;
    struct store *st = NULL;
    struct store_stats s;
    static char body[70000];
    unsigned seed = 12345;
    char key[32];
    int i, hits = 0;

    (void)state;
    store_config_init(&cfg);
    cfg.shards = 4;
    cfg.mem_limit = 2 << 20;
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    memset(body, 'b', sizeof(body) - 1);
    for (i = 0; i < 20000 * test_scale(); i++) {
        unsigned r = rand_r(&seed);
        unsigned k = (r >> 16) % 3000;

        snprintf(key, sizeof(key), "/k/%u", k);
        if (r % 10 < 6) {
            hits += get_obj(st, key, 100, NULL, 0, 0) == STORE_HIT;
        } else if (r % 10 < 9) {
            size_t len = (r >> 8) % 5 == 0 ? (r >> 12) % sizeof(body) : (r >> 12) % 2000;
            struct store_meta m;
            char save = body[len];

            body[len] = 0;
            test_meta(&m, 100, 600, NULL);
            m.size_hint = (r >> 4) % 2 ? len : 0;
            put_obj_meta(st, key, body, &m, 100, NULL);
            body[len] = save;
        } else {
            store_purge_key(st, B(key), 0, 100, NULL);
        }
        store_stats(st, &s);
        assert_true(s.mem_bytes <= s.mem_limit);
    }
    assert_true(s.mem_evictions > 0);
    assert_true(hits > 0);
    store_close(&st);
}

static void
scan_does_not_flush_hot_set(void **state)
{
    struct store_config cfg;
    struct store *st = NULL;
    char key[32];
    int i, round, hot_hits = 0;

    (void)state;
    store_config_init(&cfg);
    cfg.shards = 1;
    cfg.mem_limit = 400 << 10;
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    /* a hot set of 100 objects of ~1 KiB, hit repeatedly */
    for (round = 0; round < 3; round++)
        for (i = 0; i < 100; i++) {
            snprintf(key, sizeof(key), "/hot/%d", i);
            if (get_obj(st, key, 100, NULL, 0, 0) != STORE_HIT)
                put_obj(st, key, "hot", 100, 600);
        }
    /* a one-pass scan of 2000 objects, twice the memory */
    for (i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "/scan/%d", i);
        put_obj(st, key, "scan", 100, 600);
    }
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "/hot/%d", i);
        hot_hits += get_obj(st, key, 100, NULL, 0, 0) == STORE_HIT;
    }
    assert_true(hot_hits >= 90); /* LRU would have 0 */
    store_close(&st);
}

/* ---- concurrency ---------------------------------------------------------------------- */

struct mix {
    struct store *st;
    int id;
    int iters;
};

static void
mix_waiter(struct store_waiter *w)
{
    (void)w;
}

static void *
mix_thread(void *arg)
{
    struct mix *mx = arg;
    unsigned seed = (unsigned)mx->id * 7919u + 1;
    struct store_bytes tags[1] = { B("t") };
    char key[32], body[3000];
    int i;

    memset(body, 'z', sizeof(body));
    for (i = 0; i < mx->iters; i++) {
        unsigned r = rand_r(&seed);
        struct store_lookup lk = { { key, 0 }, 100 + i * 0.001, NULL, NULL, STORE_LOOKUP_CREATE };
        struct store_obj *o = NULL;
        struct store_waiter w;
        struct store_bytes seg[4];
        int res;

        snprintf(key, sizeof(key), "/mix/%u", r % 64);
        lk.key.len = strlen(key);
        switch ((r >> 8) % 10) {
        case 0:
            store_purge_key(mx->st, lk.key, (r >> 12) % 2 ? STORE_PURGE_SOFT : 0, lk.now, NULL);
            continue;
        case 1:
            store_purge_tag(mx->st, B("t"), (r >> 12) % 2 ? STORE_PURGE_SOFT : 0, lk.now, NULL);
            continue;
        case 2:
            if ((r >> 12) % 50 == 0)
                store_ban_add(mx->st, B("prefix=/mix/1"), lk.now);
            else
                store_housekeep(mx->st, lk.now, 50);
            continue;
        default:
            break;
        }
        res = store_lookup(mx->st, &lk, &o, NULL);
        if (res == STORE_MISS_CREATED) {
            struct store_meta m;

            test_meta(&m, lk.now, (r >> 16) % 4, NULL);
            m.tags = tags;
            m.ntags = (r >> 20) % 2;
            assert_int_equal(store_obj_set_meta(o, &m), STORE_OK);
            store_obj_append(o, body, (r >> 3) % sizeof(body));
            store_obj_append(o, body, (r >> 5) % sizeof(body));
            if ((r >> 22) % 8 == 0)
                store_obj_abort(o);
            else
                store_obj_complete(o);
        } else if (res == STORE_BUSY || res == STORE_HIT) {
            store_waiter_init(&w, mix_waiter, NULL);
            store_waiter_subscribe(o, &w);
            store_obj_read(o, 0, seg, 4);
            store_obj_state(o, NULL);
            store_obj_times(o, &(struct store_times){ 0 });
            store_waiter_unsubscribe(&w);
        }
        store_obj_release(&o);
    }
    return NULL;
}

static void
threads_read_write_invalidate_evict_overlapping_keys(void **state)
{
    enum { N = 4 };
    struct store_config cfg;
    struct store *st = NULL;
    struct mix mx[N];
    pthread_t th[N];
    struct store_stats s;
    int i;

    (void)state;
    store_config_init(&cfg);
    cfg.shards = 4;
    cfg.mem_limit = 100 << 10; /* small: constant eviction */
    cfg.ban_match = test_ban_match;
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    for (i = 0; i < N; i++) {
        mx[i].st = st;
        mx[i].id = i;
        mx[i].iters = 20000 * test_scale();
        pthread_create(&th[i], NULL, mix_thread, &mx[i]);
    }
    for (i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    store_stats(st, &s);
    assert_true(s.mem_lookups > 0);
    assert_true(s.mem_evictions > 0);
    /* single-threaded now, no references: the limit holds */
    store_housekeep(st, 1000, 0);
    store_stats(st, &s);
    assert_true(s.mem_bytes <= s.mem_limit);
    store_close(&st);
}

static int
count_objs(void *arg, const struct store_obj *o)
{
    (void)o;
    (*(int *)arg)++;
    return 0;
}

static void
stats_and_iterator_report_contents(void **state)
{
    struct store *st = *state;
    struct store_stats s;
    int n = 0;

    assert_int_equal(put_obj(st, "/x1", "a", 100, 60), STORE_OK);
    assert_int_equal(put_obj(st, "/x2", "b", 100, 60), STORE_OK);
    assert_int_equal(get_obj(st, "/x1", 100, NULL, 0, 0), STORE_HIT);
    assert_int_equal(get_obj(st, "/x3", 100, NULL, 0, 0), STORE_MISS);
    store_stats(st, &s);
    assert_int_equal(s.mem_objects, 2);
    assert_int_equal(s.mem_inserts, 2);
    assert_int_equal(s.mem_hits, 1);
    assert_int_equal(s.mem_misses, 3); /* two creating lookups + one plain */
    assert_true(s.mem_bytes > 0);
    assert_int_equal(store_iter(st, count_objs, &n), 0);
    assert_int_equal(n, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hits_count_every_lookup_that_returns_the_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(miss_insert_then_hit_returns_body_and_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(freshness_is_classified_from_times, setup, teardown),
        cmocka_unit_test(digest_collision_never_returns_wrong_object),
        cmocka_unit_test_setup_teardown(hfm_marker_is_a_hit_with_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(misuse_is_refused_with_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(second_lookup_of_busy_key_gets_busy_not_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_lookups_coalesce_into_one_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(streaming_reader_sees_appends_and_is_notified, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_is_seen_by_readers_and_next_lookup_refetches, setup, teardown),
        cmocka_unit_test_setup_teardown(waiter_can_unsubscribe_itself_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(unsubscribe_is_safe_against_concurrent_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_thread_streams_whole_body_woken_by_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(vary_busy_without_headers_makes_everyone_wait_then_recheck, setup, teardown),
        cmocka_unit_test_setup_teardown(completing_new_object_replaces_old_but_readers_keep_it, setup, teardown),
        cmocka_unit_test_setup_teardown(freshen_shares_body_with_new_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_key_removes_all_variants_readers_keep_theirs, setup, teardown),
        cmocka_unit_test_setup_teardown(soft_purge_makes_stale_but_keeps_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_tag_hard_and_soft, setup, teardown),
        cmocka_unit_test(tag_purge_of_many_objects_is_fast),
        cmocka_unit_test(bans_apply_lazily_only_to_older_objects_and_retire),
        cmocka_unit_test_setup_teardown(housekeeping_sweeps_expired_objects, setup, teardown),
        cmocka_unit_test(memory_limit_holds_under_random_workload),
        cmocka_unit_test(scan_does_not_flush_hot_set),
        cmocka_unit_test(threads_read_write_invalidate_evict_overlapping_keys),
        cmocka_unit_test_setup_teardown(stats_and_iterator_report_contents, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
