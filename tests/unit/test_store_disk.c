/*
 * test_store_disk.c -- unit tests of the store's LMDB disk tier through
 * store.h: persistence across close/reopen with absolute times, SIGKILL
 * during heavy writes, a full map, corrupt/torn/foreign records, format
 * versions, durable purges and bans, expiry sweep, concurrency.
 * LMDB is opened directly (lmdb.h) only to damage records on purpose.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"




#include "store_test_util.h"


/* ---- fixtures: a fresh directory per test ------------------------------------ */

struct fx {
    char dir[256];
    char msg[256];
    struct store *st;
};

static void
rm_dir(const char *dir)
{
    char p[512];

    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static int
open_store(struct fx *f, size_t mapsize, unsigned flags, store_ban_match_f *ban)
{
    struct store_config cfg;

    store_config_init(&cfg);
    cfg.shards = 4;
    cfg.mem_limit = 16 << 20;
    cfg.disk_path = f->dir;
    cfg.disk_map_size = mapsize;
    cfg.flags = flags;
    cfg.ban_match = ban;
    cfg.errbuf = f->msg;
    cfg.errbuf_len = sizeof(f->msg);
    f->msg[0] = 0;
    return store_open(&cfg, &f->st);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    snprintf(f->dir, sizeof(f->dir), "%s/store_test_XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    store_close(&f->st);
    rm_dir(f->dir);
    free(f);
    return 0;
}

static bool
ban_by_prefix(void *arg, struct store_bytes spec, const struct store_obj *o)
{
    struct store_bytes k = store_obj_key(o);

    (void)arg;
    return k.len >= spec.len && memcmp(k.p, spec.p, spec.len) == 0;
}

/* Body of object i: recognisable, so a wrong or torn body is caught. */
static void
body_for(char *buf, size_t cap, const char *key, size_t len)
{
    size_t i, kl = strlen(key);

    for (i = 0; i + 1 < cap && i < len; i++)
        buf[i] = key[i % kl];
    buf[i] = 0;
}

/* put_n for a forked child: no cmocka asserts (they would longjmp into the
 * parent's test runner copy); any failure ends the child with status 5 */
static int put_n_rc(struct store *st, const char *prefix, int n, double now, double ttl,
                    size_t blen, const char *tag);

static void
put_n(struct store *st, const char *prefix, int n, double now, double ttl, size_t blen,
      const char *tag)
{
    assert_int_equal(put_n_rc(st, prefix, n, now, ttl, blen, tag), STORE_OK);
}

static void
child_put_n(struct store *st, const char *prefix, int n, double now, double ttl, size_t blen,
            const char *tag)
{
    if (put_n_rc(st, prefix, n, now, ttl, blen, tag) != STORE_OK)
        _exit(5);
}

static int
put_n_rc(struct store *st, const char *prefix, int n, double now, double ttl, size_t blen,
         const char *tag)
{
    static _Thread_local char body[70000];
    struct store_bytes tags[1];
    struct store_meta m;
    char key[64];
    int i, r;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s%d", prefix, i);
        body_for(body, sizeof(body), key, blen);
        test_meta(&m, now, ttl, NULL);
        if (tag != NULL) {
            tags[0] = B(tag);
            m.tags = tags;
            m.ntags = 1;
        }
        if ((r = put_obj_meta(st, key, body, &m, now, NULL)) != STORE_OK)
            return r;
    }
    return STORE_OK;
}

/* HIT with the right body, or MISS; never anything else. */
static int
check_key(struct store *st, const char *key, double now)
{
    static _Thread_local char buf[70000], want[70000];
    struct store_lookup lk = { B(key), now, NULL, NULL, 0 };
    struct store_obj *o = NULL;
    size_t len;
    int r = store_lookup(st, &lk, &o, NULL);

    if (r == STORE_HIT) {
        struct store_bytes segs[64];
        size_t n, i, off = 0;

        assert_int_equal(store_obj_state(o, &len), STORE_OBJ_COMPLETE);
        n = store_obj_read(o, 0, segs, 64);
        for (i = 0; i < n; i++) {
            memcpy(buf + off, segs[i].p, segs[i].len);
            off += segs[i].len;
        }
        assert_int_equal(off, len);
        body_for(want, sizeof(want), key, len);
        assert_memory_equal(buf, want, len);
        assert_memory_equal(store_obj_key(o).p, key, strlen(key));
    } else {
        assert_true(r == STORE_MISS || r == STORE_BUSY); /* busy: another thread's fetch */
    }
    store_obj_release(&o);
    return r;
}

/* ---- persistence ------------------------------------------------------------------ */

static void
objects_survive_reopen_with_remaining_ttl(void **state)
{
    struct fx *f = *state;
    struct store_lookup lk = { B("/p/3"), 1000, NULL, NULL, 0 };
    struct store_bytes tags[2] = { B("a"), B("bb") };
    struct store_obj *o = NULL;
    struct store_stats s;
    struct store_times t;
    struct store_meta m;

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    put_n(f->st, "/p/", 10, 1000, 100, 5000, NULL);
    test_meta(&m, 1000, 100, "gzip");
    m.tags = tags;
    m.ntags = 2;
    m.status = 203;
    m.encoding = STORE_ENC_GZIP;
    assert_int_equal(put_obj_meta(f->st, "/vary", "zz", &m, 1000, "gzip"), STORE_OK);
    assert_int_equal(store_sync(f->st), STORE_OK);
    store_stats(f->st, &s);
    assert_int_equal(s.disk_inserts, 11);
    assert_int_equal(s.disk_objects, 11);
    assert_true(s.disk_commits >= 1);
    store_close(&f->st);

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    lk.now = 1060;
    assert_int_equal(store_lookup(f->st, &lk, &o, NULL), STORE_HIT);
    store_obj_times(o, &t);
    assert_true(t.insert == 1000 && t.ttl == 100); /* absolute: 40 s of life left */
    assert_int_equal(store_obj_freshness(o, 1060), STORE_FRESH);
    assert_int_equal(store_obj_freshness(o, 1101), STORE_STALE_IN_GRACE);
    store_obj_release(&o);
    assert_int_equal(check_key(f->st, "/p/3", 1060), STORE_HIT);
    assert_int_equal(check_key(f->st, "/p/9", 1060), STORE_HIT);
    store_stats(f->st, &s);
    assert_int_equal(s.disk_hits, 2); /* /p/3 was promoted: second lookup from memory */
    {
        struct store_lookup v = { B("/vary"), 1060, match_selector, "gzip", 0 };

        assert_int_equal(store_lookup(f->st, &v, &o, NULL), STORE_HIT);
        assert_int_equal(store_obj_status(o), 203);
        assert_int_equal(store_obj_encoding(o), STORE_ENC_GZIP);
        assert_int_equal(store_obj_tag_count(o), 2);
        assert_memory_equal(store_obj_tag(o, 1).p, "bb", 2);
        store_obj_release(&o);
        v.match_arg = "br";
        assert_int_equal(store_lookup(f->st, &v, &o, NULL), STORE_MISS);
    }
    /* past ttl+grace+keep: not served from disk either */
    assert_int_equal(check_key(f->st, "/p/5", 1121), STORE_MISS);
}

static void
disk_digest_collision_keeps_keys_apart(void **state)
{
    struct fx *f = *state;

    assert_int_equal(open_store(f, 64 << 20, STORE_CFG_TEST_CONST_DIGEST, NULL), STORE_OK);
    put_n(f->st, "/c/", 20, 1000, 100, 300, NULL);
    store_sync(f->st);
    store_close(&f->st);
    assert_int_equal(open_store(f, 64 << 20, STORE_CFG_TEST_CONST_DIGEST, NULL), STORE_OK);
    assert_int_equal(check_key(f->st, "/c/7", 1001), STORE_HIT);
    assert_int_equal(check_key(f->st, "/c/13", 1001), STORE_HIT);
    assert_int_equal(check_key(f->st, "/c/99", 1001), STORE_MISS);
}

/* A child writes hard and is killed; whatever was committed is intact. */
static void
sigkill_during_heavy_writes_serves_nothing_corrupt(void **state)
{
    struct fx *f = *state;
    struct store_stats s;
    int pfd[2], i, hits = 0;
    char c;
    pid_t pid;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int round;

        close(pfd[0]);
        if (open_store(f, 256 << 20, 0, NULL) != STORE_OK)
            _exit(2);
        child_put_n(f->st, "/k/", 200, 1000, 3600, 2000, NULL);
        store_sync(f->st);
        if (write(pfd[1], "x", 1) != 1)
            _exit(3);
        for (round = 0;; round++) /* rewrite the same keys until killed */
            child_put_n(f->st, "/k/", 400, 1000 + round, 3600, 1000 + (round % 7) * 3000, NULL);
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    usleep(200 * 1000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pfd[0]);

    assert_int_equal(open_store(f, 256 << 20, 0, NULL), STORE_OK);
    for (i = 0; i < 400; i++) {
        char key[32];

        snprintf(key, sizeof(key), "/k/%d", i);
        hits += check_key(f->st, key, 1500) == STORE_HIT;
    }
    assert_true(hits >= 200); /* all synced ones at least */
    store_stats(f->st, &s);
    assert_int_equal(s.disk_corrupt, 0);
}

/* ---- bounded map ------------------------------------------------------------------- */

static void
full_map_evicts_then_skips_never_fails(void **state)
{
    struct fx *f = *state;
    static char big[3 << 20];
    struct store_meta m;
    struct store_stats s;

    assert_int_equal(open_store(f, 2 << 20, 0, NULL), STORE_OK);
    put_n(f->st, "/full/", 300, 1000, 3600, 20000, NULL); /* ~6 MB into a 2 MB map */
    store_sync(f->st);
    store_stats(f->st, &s);
    print_message("full map: %llu objects, %llu evicted, %llu skipped, %llu inserts, %llu expiries\n",
                  (unsigned long long)s.disk_objects, (unsigned long long)s.disk_evictions,
                  (unsigned long long)s.disk_skipped_full, (unsigned long long)s.disk_inserts,
                  (unsigned long long)s.disk_expiries);
    assert_true(s.disk_evictions > 0);
    assert_true(s.disk_objects > 0 && s.disk_objects < 300);
    assert_int_equal(check_key(f->st, "/full/299", 1001), STORE_HIT);
    /* one object larger than the whole map: skipped and counted */
    memset(big, 'q', sizeof(big) - 1);
    test_meta(&m, 1000, 3600, NULL);
    assert_int_equal(put_obj_meta(f->st, "/huge", big, &m, 1000, NULL), STORE_OK);
    store_sync(f->st);
    store_stats(f->st, &s);
    assert_int_equal(s.disk_skipped_full, 1);
    /* the writer still works afterwards */
    put_n(f->st, "/after/", 5, 1000, 3600, 100, NULL);
    store_sync(f->st);
    store_close(&f->st);
    assert_int_equal(open_store(f, 2 << 20, 0, NULL), STORE_OK);
    assert_int_equal(check_key(f->st, "/after/4", 1001), STORE_HIT);
}

/* ---- corruption and versions ----------------------------------------------------------- */

/* Rewrites every record in objects whose key starts with the digest of
 * `key`... simpler: walk all records and damage those whose bytes contain key. */
static int
damage_records(const char *dir, const char *key, int how)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    int n = 0, rc;

    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_mapsize(env, 64 << 20);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "objects", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char *copy = malloc(v.mv_size);
        MDB_val nv = v;

        memcpy(copy, v.mv_data, v.mv_size);
        if (memmem(copy, v.mv_size, key, strlen(key)) == NULL) {
            free(copy);
            continue;
        }
        if (how == 0)
            copy[v.mv_size - 1] ^= 0x40;  /* a flipped bit in the body */
        else if (how == 1)
            nv.mv_size = v.mv_size / 2;   /* torn */
        else
            memcpy(copy, "GIF89a", 6);    /* foreign */
        nv.mv_data = copy;
        assert_int_equal(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
        free(copy);
        n++;
    }
    mdb_cursor_close(c);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return n;
}

static void
corrupt_torn_and_foreign_records_are_dropped_and_counted(void **state)
{
    struct fx *f = *state;
    struct store_stats s;

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    put_n(f->st, "/bad/", 3, 1000, 3600, 4000, NULL);
    put_n(f->st, "/good/", 3, 1000, 3600, 4000, NULL);
    store_sync(f->st);
    store_close(&f->st);
    assert_int_equal(damage_records(f->dir, "/bad/0", 0), 1);
    assert_int_equal(damage_records(f->dir, "/bad/1", 1), 1);
    assert_int_equal(damage_records(f->dir, "/bad/2", 2), 1);
    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    assert_int_equal(check_key(f->st, "/bad/0", 1001), STORE_MISS);
    assert_int_equal(check_key(f->st, "/bad/1", 1001), STORE_MISS);
    assert_int_equal(check_key(f->st, "/bad/2", 1001), STORE_MISS);
    assert_int_equal(check_key(f->st, "/good/1", 1001), STORE_HIT);
    store_sync(f->st); /* the reader queued their deletion */
    store_stats(f->st, &s);
    assert_int_equal(s.disk_corrupt, 3);
    assert_int_equal(s.disk_objects, 3);
}

static void
incompatible_version_is_discarded_with_message(void **state)
{
    struct fx *f = *state;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint32_t v999 = 999;
    MDB_val k = { 6, "format" }, v = { 4, &v999 };
    char p[512];
    FILE *fp;

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    put_n(f->st, "/v/", 3, 1000, 3600, 100, NULL);
    store_sync(f->st);
    store_close(&f->st);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    assert_non_null(strstr(f->msg, "format version 999"));
    assert_int_equal(check_key(f->st, "/v/1", 1001), STORE_MISS);
    store_close(&f->st);

    /* not an LMDB file at all */
    rm_dir(f->dir);
    assert_int_equal(mkdir(f->dir, 0755), 0);
    snprintf(p, sizeof(p), "%s/data.mdb", f->dir);
    fp = fopen(p, "w");
    assert_non_null(fp);
    for (int i = 0; i < 2000; i++)
        fputs("this is not a database ", fp);
    fclose(fp);
    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    assert_non_null(strstr(f->msg, "discarded"));
    put_n(f->st, "/v/", 1, 1000, 3600, 100, NULL);
    assert_int_equal(check_key(f->st, "/v/0", 1001), STORE_HIT);
}

/* ---- durable invalidation ----------------------------------------------------------------- */

static void
purges_survive_reopen(void **state)
{
    struct fx *f = *state;
    size_t n = 0;

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    put_n(f->st, "/tag/", 50, 1000, 3600, 500, "T1");
    put_n(f->st, "/soft/", 5, 1000, 3600, 500, "T2");
    put_n(f->st, "/key/", 3, 1000, 3600, 500, NULL);
    store_sync(f->st);
    store_close(&f->st);

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    assert_int_equal(check_key(f->st, "/tag/7", 1001), STORE_HIT); /* now in both tiers */
    assert_int_equal(store_purge_tag(f->st, B("T1"), 0, 1002, &n), STORE_OK);
    assert_int_equal(n, 50);
    assert_int_equal(store_purge_tag(f->st, B("T2"), STORE_PURGE_SOFT, 1002, &n), STORE_OK);
    assert_int_equal(n, 5);
    assert_int_equal(store_purge_key(f->st, B("/key/1"), 0, 1002, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(check_key(f->st, "/tag/7", 1003), STORE_MISS);
    assert_int_equal(check_key(f->st, "/tag/8", 1003), STORE_MISS);
    store_close(&f->st);

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    assert_int_equal(check_key(f->st, "/tag/7", 1004), STORE_MISS);
    assert_int_equal(check_key(f->st, "/tag/31", 1004), STORE_MISS);
    assert_int_equal(check_key(f->st, "/soft/2", 1004), STORE_MISS); /* soft on disk: deleted */
    assert_int_equal(check_key(f->st, "/key/1", 1004), STORE_MISS);
    assert_int_equal(check_key(f->st, "/key/2", 1004), STORE_HIT);
}

static void
purge_is_durable_when_it_returns_even_with_kill9(void **state)
{
    struct fx *f = *state;
    int pfd[2];
    pid_t pid;
    char c;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t n;

        close(pfd[0]);
        if (open_store(f, 64 << 20, 0, NULL) != STORE_OK)
            _exit(2);
        child_put_n(f->st, "/d/", 20, 1000, 3600, 500, "gone");
        store_sync(f->st);
        if (store_purge_tag(f->st, B("gone"), 0, 1001, &n) != STORE_OK ||
            store_ban_add(f->st, B("/e/"), 1001) != STORE_OK)
            _exit(3);
        if (write(pfd[1], "x", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pfd[0]);
    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    assert_int_equal(check_key(f->st, "/d/3", 1002), STORE_MISS);
    {
        struct store_stats s;

        store_stats(f->st, &s);
        assert_int_equal(s.bans, 1);
    }
}

static void
bans_survive_reopen_and_are_retired_by_housekeeping(void **state)
{
    struct fx *f = *state;
    struct store_stats s;
    int i;

    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    put_n(f->st, "/news/", 10, 1000, 3600, 200, NULL);
    put_n(f->st, "/sport/", 10, 1000, 3600, 200, NULL);
    store_sync(f->st);
    assert_int_equal(store_ban_add(f->st, B("/news/"), 1001), STORE_OK);
    store_close(&f->st);

    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    store_stats(f->st, &s);
    assert_int_equal(s.bans, 1);
    /* lazily at lookup (disk hit, then ban check) */
    assert_int_equal(check_key(f->st, "/news/1", 1002), STORE_MISS);
    assert_int_equal(check_key(f->st, "/sport/1", 1002), STORE_HIT);
    /* a new object is not older than the ban */
    put_n(f->st, "/news/new", 1, 1003, 3600, 200, NULL);
    store_sync(f->st);
    for (i = 0; i < 5; i++)
        assert_int_equal(store_housekeep(f->st, 1004, 0), STORE_OK);
    store_stats(f->st, &s);
    assert_int_equal(s.bans, 0);
    assert_int_equal(s.bans_retired, 1);
    assert_int_equal(s.disk_objects, 11); /* 9 banned news records lurked away */
    store_close(&f->st);

    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    store_stats(f->st, &s);
    assert_int_equal(s.bans, 0);
    assert_int_equal(check_key(f->st, "/news/5", 1005), STORE_MISS);
    assert_int_equal(check_key(f->st, "/news/new0", 1005), STORE_HIT);
    assert_int_equal(check_key(f->st, "/sport/5", 1005), STORE_HIT);
}

/* A ban record that fails its checksum cannot be evaluated: it must ban
 * everything older rather than be dropped (which could resurrect content). */
static void
corrupt_ban_record_bans_everything_older(void **state)
{
    struct fx *f = *state;
    struct store_stats s;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;

    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    put_n(f->st, "/old/", 5, 1000, 3600, 100, NULL);
    store_sync(f->st);
    assert_int_equal(store_ban_add(f->st, B("/nothing-matches"), 1001), STORE_OK);
    put_n(f->st, "/new/", 5, 1002, 3600, 100, NULL);
    store_sync(f->st);
    store_close(&f->st);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "bans", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    {
        char *copy = malloc(v.mv_size);
        MDB_val nv = { v.mv_size, copy };

        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size - 1] ^= 1;
        assert_int_equal(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
        free(copy);
    }
    mdb_cursor_close(c);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    assert_int_equal(check_key(f->st, "/old/1", 1003), STORE_MISS);
    assert_int_equal(check_key(f->st, "/new/1", 1003), STORE_HIT);
    store_stats(f->st, &s);
    assert_int_equal(s.disk_corrupt, 1);
    assert_int_equal(s.bans, 1);
}

static void
housekeeping_expires_disk_records(void **state)
{
    struct fx *f = *state;
    struct store_stats s;

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    put_n(f->st, "/short/", 30, 1000, 1, 100, NULL);
    put_n(f->st, "/long/", 30, 1000, 3600, 100, NULL);
    store_sync(f->st);
    assert_int_equal(store_housekeep(f->st, 2000, 0), STORE_OK);
    store_stats(f->st, &s);
    assert_int_equal(s.disk_expiries, 30);
    assert_int_equal(s.disk_objects, 30);
    assert_int_equal(s.mem_objects, 30);
}

/* readers and writers on overlapping keys while purges and bans run */
static void *
disk_worker(void *arg)
{
    struct store *st = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    int i;

    for (i = 0; i < 300 * test_scale(); i++) {
        char key[32];
        unsigned r = rand_r(&seed);

        snprintf(key, sizeof(key), "/cc/%u", r % 64);
        if (r % 4 == 0) /* STORE_BUSY when another thread writes it: fine */
            put_n_rc(st, key, 1, 1000, 3600, 300, "cc");
        else
            check_key(st, key, 1001);
    }
    return NULL;
}

static void
concurrent_disk_readers_and_writer(void **state)
{
    struct fx *f = *state;
    struct store_stats s;
    int i;

    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    put_n(f->st, "/cc/", 64, 1000, 3600, 300, "cc");
    store_sync(f->st);
    store_close(&f->st);
    assert_int_equal(open_store(f, 64 << 20, 0, ban_by_prefix), STORE_OK);
    {
        pthread_t th[3];

        for (i = 0; i < 3; i++)
            pthread_create(&th[i], NULL, disk_worker, f->st);
        for (i = 0; i < 200 * test_scale(); i++) {
            if (i % 50 == 0)
                store_purge_tag(f->st, B("cc"), 0, 1001, NULL);
            if (i % 70 == 0)
                store_ban_add(f->st, B("/cc/1"), 1001);
            store_housekeep(f->st, 1001, 20);
        }
        for (i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
    }
    store_sync(f->st);
    store_stats(f->st, &s);
    assert_int_equal(s.disk_corrupt, 0);
}

/* A complete object for key, encoding gzip, body b; returned with a reference. */
static struct store_obj *
put_keep(struct store *st, const char *key, const char *b, double now)
{
    struct store_lookup lk = { B(key), now, NULL, NULL,
                               STORE_LOOKUP_CREATE | STORE_LOOKUP_FORCE_MISS };
    struct store_obj *o = NULL;
    struct store_meta m;

    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_MISS_CREATED);
    test_meta(&m, now, 100, NULL);
    m.encoding = STORE_ENC_GZIP;
    assert_int_equal(store_obj_set_meta(o, &m), STORE_OK);
    assert_int_equal(store_obj_append(o, b, strlen(b)), STORE_OK);
    assert_int_equal(store_obj_complete(o), STORE_OK);
    return o;
}

static void
alt_is(struct store_obj *o, const char *want)
{
    unsigned enc = 0;
    size_t len = 0;
    struct store_bytes seg;

    assert_true(store_obj_alt(o, &enc, &len));
    assert_int_equal(enc, STORE_ENC_BR);
    assert_int_equal(len, strlen(want));
    assert_int_equal(store_obj_alt_read(o, 0, &seg, 1), 1);
    assert_memory_equal(seg.p, want, len);
}

static void
alternate_body_is_written_again_and_survives_reopen(void **state)
{
    struct fx *f = *state;
    struct store_lookup lk = { B("/alt"), 1010, NULL, NULL, 0 };
    struct store_obj *o, *old, *h = NULL;
    struct store_stats s;

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    o = put_keep(f->st, "/alt", "gzip-body", 1000);
    assert_int_equal(store_sync(f->st), STORE_OK);
    assert_int_equal(store_obj_alt_begin(o), STORE_OK);
    assert_int_equal(store_obj_alt_append(o, "brotli-", 7), STORE_OK);
    assert_int_equal(store_obj_alt_append(o, "body", 4), STORE_OK);
    assert_int_equal(store_obj_alt_publish(o, STORE_ENC_BR), STORE_OK);
    store_obj_release(&o);
    /* an object replaced before its alternate body is published is not
     * written again: it would overwrite its successor */
    old = put_keep(f->st, "/old", "v1", 1000);
    o = put_keep(f->st, "/old", "v2", 1001);
    assert_int_equal(store_obj_alt_begin(old), STORE_OK);
    assert_int_equal(store_obj_alt_append(old, "stale", 5), STORE_OK);
    assert_int_equal(store_obj_alt_publish(old, STORE_ENC_BR), STORE_OK);
    store_obj_release(&old);
    store_obj_release(&o);
    assert_int_equal(store_sync(f->st), STORE_OK);
    store_close(&f->st);

    assert_int_equal(open_store(f, 64 << 20, 0, NULL), STORE_OK);
    assert_int_equal(store_lookup(f->st, &lk, &h, NULL), STORE_HIT);
    assert_int_equal(store_obj_encoding(h), STORE_ENC_GZIP);
    alt_is(h, "brotli-body");
    assert_int_equal(store_obj_alt_state(h), STORE_ALT_READY);
    assert_int_equal(store_obj_alt_begin(h), STORE_ESTATE);
    store_obj_release(&h);
    lk.key = B("/old");
    assert_int_equal(store_lookup(f->st, &lk, &h, NULL), STORE_HIT);
    {
        struct store_bytes seg;
        assert_int_equal(store_obj_read(h, 0, &seg, 1), 1);
        assert_memory_equal(seg.p, "v2", 2);
    }
    assert_false(store_obj_alt(h, NULL, NULL));
    store_obj_release(&h);
    store_stats(f->st, &s);
    assert_int_equal(s.disk_corrupt, 0);
}

/* store_meta_*: application records (accel's cluster position) survive a
 * reopen, stay apart from the store's own records, and check their sizes;
 * a memory-only store keeps none. */
static void
meta_records_survive_reopen(void **state)
{
    struct fx *f = *state;
    char buf[64];
    size_t len = 0;
    struct store *mem = NULL;
    struct store_config mc;

    assert_int_equal(open_store(f, 0, 0, NULL), STORE_OK);
    assert_true(store_has_disk(f->st));
    assert_int_equal(store_meta_get(f->st, B("cluster:x"), buf, sizeof(buf), &len), STORE_MISS);
    assert_int_equal(store_meta_put(f->st, B("cluster:x"), B("epoch 1-2")), STORE_OK);
    assert_int_equal(store_meta_put(f->st, B("format"), B("not the store's")), STORE_OK);
    store_close(&f->st);
    assert_int_equal(open_store(f, 0, 0, NULL), STORE_OK);
    assert_string_equal(f->msg, "");        /* the store's own "format" is untouched */
    assert_int_equal(store_meta_get(f->st, B("cluster:x"), buf, sizeof(buf), &len), STORE_OK);
    assert_int_equal(len, 9);
    assert_memory_equal(buf, "epoch 1-2", 9);
    assert_int_equal(store_meta_get(f->st, B("cluster:x"), buf, 3, &len), STORE_EINVAL);
    assert_int_equal(len, 9);
    assert_int_equal(store_meta_put(f->st, B(""), B("v")), STORE_EINVAL);
    {
        static char big[STORE_META_MAX + 1];
        assert_int_equal(store_meta_put(f->st, B("k"), ((struct store_bytes){ big, sizeof(big) })),
                         STORE_EINVAL);
    }
    store_config_init(&mc);
    assert_int_equal(store_open(&mc, &mem), STORE_OK);
    assert_false(store_has_disk(mem));
    assert_int_equal(store_meta_put(mem, B("k"), B("v")), STORE_OK);
    assert_int_equal(store_meta_get(mem, B("k"), buf, sizeof(buf), &len), STORE_MISS);
    store_close(&mem);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(meta_records_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(objects_survive_reopen_with_remaining_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(disk_digest_collision_keeps_keys_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(sigkill_during_heavy_writes_serves_nothing_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(full_map_evicts_then_skips_never_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_torn_and_foreign_records_are_dropped_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(incompatible_version_is_discarded_with_message, setup, teardown),
        cmocka_unit_test_setup_teardown(purges_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_is_durable_when_it_returns_even_with_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(bans_survive_reopen_and_are_retired_by_housekeeping, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_ban_record_bans_everything_older, setup, teardown),
        cmocka_unit_test_setup_teardown(housekeeping_expires_disk_records, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_disk_readers_and_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(alternate_body_is_written_again_and_survives_reopen, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
