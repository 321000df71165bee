/*
 * store_disk.c -- the LMDB disk tier.
 *
 * One environment, five sub-databases:
 *   objects  key: digest(16) + selector hash(8)  value: record (store_record.c)
 *   expiry   key: expiry ms (u64 BE) + object key  value: empty
 *   tags     key: tag digest(16), DUPSORT values: object keys
 *   bans     key: seq (u64 BE)  value: crc32, time, spec
 *   meta     "format" -> u32 format version, "ban_seq" -> u64 newest ban
 *
 * Writes: completed objects are queued (the caller never waits) and one
 * writer thread drains the queue, many objects per transaction (group
 * commit).  MDB_NOSYNC: a committed transaction survives kill -9 (it is
 * in the page cache); purges and bans are followed by mdb_env_sync so they
 * also survive a power cut.  Reads take a short read-only transaction,
 * copy the record out, and end the transaction before anything else.
 *
 * Lock order: LMDB's writer lock may be taken with no store lock held, and
 * the writer takes the ban rwlock (read) inside its transaction; nobody
 * holds the ban lock while waiting for LMDB.
 */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define OKEY_LEN (STORE_DIGEST_LEN + 8)
#define EKEY_LEN (8 + OKEY_LEN)

struct del_item {
    struct del_item *next;
    uint8_t okey[OKEY_LEN];
};

struct store_disk {
    unsigned magic;
    MDB_env *env;
    MDB_dbi objects, expiry, tags, bans, meta;
    pthread_t writer;
    bool writer_started;
    /* queue (mtx) */
    pthread_mutex_t mtx;
    pthread_cond_t cond, done_cond;
    struct store_obj **items, **batch;
    size_t n, bn, cap;
    struct del_item *dels;
    bool stop;
    uint64_t gen_queued, gen_written;
    /* housekeeping cursors (hk_mtx of the store) */
    uint8_t lurk_key[OKEY_LEN];
    bool lurk_running, lurk_has_key;
    uint64_t lurk_target;
    _Atomic uint64_t last_now_ms; /* latest `now` seen, for "expired" when the map is full */
    /* counters */
    _Atomic uint64_t lookups, hits, misses, inserts, bytes, evictions, expiries, invalidations,
        dropped, skipped_full, commits, commit_us_total, commit_us_max, corrupt;
};

/* ---- keys ---------------------------------------------------------------- */

/* digest + a hash of key and selector: variants of a key sort together
 * (prefix scan by digest), and keys whose digests collide still differ */
static void
okey_make(uint8_t out[OKEY_LEN], const uint8_t digest[STORE_DIGEST_LEN], struct store_bytes key,
          struct store_bytes sel)
{
    uint64_t h = store_hash64(sel.p, sel.len, store_hash64(key.p, key.len, 0x9e3779b97f4a7c15ull));

    memcpy(out, digest, STORE_DIGEST_LEN);
    memcpy(out + STORE_DIGEST_LEN, &h, 8);
}

static void
be64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
rbe64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t
time_ms(double t)
{
    if (!(t > 0))
        return 0;
    if (t > 1e15)
        return UINT64_MAX / 2;
    return (uint64_t)(t * 1000.0);
}

static void
ekey_make(uint8_t out[EKEY_LEN], double expiry, const uint8_t okey[OKEY_LEN])
{
    be64(out, time_ms(expiry));
    memcpy(out + 8, okey, OKEY_LEN);
}

/* Same arithmetic as store_obj_expiry(), so index keys match. */
static double
times_expiry(const struct store_times *t)
{
    return t->insert + t->ttl + t->grace + t->keep;
}

static double
rec_expiry(const struct store_record *r)
{
    return times_expiry(&r->times);
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* commit latency only, never object time */
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- record deletion (write txn) -------------------------------------------- */

/*
 * Deletes the record at okey with its expiry and tag entries.  A corrupt
 * record is deleted alone (its index entries dangle; they are dropped when
 * met).  Returns 0, MDB_NOTFOUND or an LMDB error.
 */
static int
rec_delete(struct store_disk *d, MDB_txn *txn, const uint8_t okey[OKEY_LEN])
{
    MDB_val k = { OKEY_LEN, (void *)okey }, v;
    struct store_record r;
    uint8_t ek[EKEY_LEN];
    size_t i;
    int rc;

    rc = mdb_get(txn, d->objects, &k, &v);
    if (rc != 0)
        return rc;
    if (store_record_decode(v.mv_data, v.mv_size, &r) == 0) {
        MDB_val e = { EKEY_LEN, ek };

        ekey_make(ek, rec_expiry(&r), okey);
        rc = mdb_del(txn, d->expiry, &e, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        for (i = 0; i < r.ntags; i++) {
            struct store_bytes t = store_record_tag(&r, i);
            uint8_t td[STORE_DIGEST_LEN];
            MDB_val tk = { STORE_DIGEST_LEN, td }, tv = { OKEY_LEN, (void *)okey };

            store_digest(NULL, t.p, t.len, td);
            rc = mdb_del(txn, d->tags, &tk, &tv);
            if (rc != 0 && rc != MDB_NOTFOUND)
                return rc;
        }
    }
    return mdb_del(txn, d->objects, &k, NULL);
}

/* ---- map full: make room ----------------------------------------------------- */

/*
 * Frees space: records past their expiry first, then those closest to
 * expiry (the expiry index is the order we have; see docs/store.md).
 * Returns the number of records deleted.
 */
static size_t
make_room(struct store_disk *d, size_t want)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t (*keys)[EKEY_LEN];
    size_t n = 0, i, exp = 0;
    uint64_t nowms = atomic_load(&d->last_now_ms);
    int rc;

    keys = malloc(want * sizeof(*keys));
    if (keys == NULL)
        return 0;
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0) {
        free(keys);
        return 0;
    }
    if (mdb_cursor_open(txn, d->expiry, &c) == 0) {
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < want;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (k.mv_size != EKEY_LEN)
                continue;
            memcpy(keys[n++], k.mv_data, EKEY_LEN);
        }
        mdb_cursor_close(c);
    }
    for (i = 0; i < n; i++) {
        MDB_val e = { EKEY_LEN, keys[i] };

        if (rbe64(keys[i]) <= nowms)
            exp++;
        if (rec_delete(d, txn, keys[i] + 8) == MDB_NOTFOUND)
            mdb_del(txn, d->expiry, &e, NULL); /* dangling entry */
    }
    free(keys);
    if (mdb_txn_commit(txn) != 0)
        return 0;
    atomic_fetch_add(&d->expiries, exp);
    atomic_fetch_add(&d->evictions, n - exp);
    return n;
}

/*
 * Pages in use: the high-water mark minus the free list (LMDB reuses freed
 * pages but never lowers last_pgno).  Deleting needs free pages too (copy
 * on write), so the writer keeps headroom instead of waiting for
 * MDB_MAP_FULL, after which even a delete can fail.
 */
static void
map_usage(struct store_disk *d, size_t *used, size_t *max)
{
    MDB_envinfo info;
    MDB_stat ms;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    size_t fr = 0;

    mdb_env_info(d->env, &info);
    mdb_env_stat(d->env, &ms);
    *max = info.me_mapsize / ms.ms_psize;
    *used = info.me_last_pgno + 1;
    if (*used < *max / 2)
        return; /* far from full: skip the free-list walk */
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    if (mdb_cursor_open(txn, 0 /* FREE_DBI */, &c) == 0) {
        while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
            if (v.mv_size >= sizeof(size_t))
                fr += *(const size_t *)v.mv_data; /* MDB_IDL: count first */
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    *used = fr < *used ? *used - fr : 0;
}

/* Makes room for need_bytes with 20% of the map kept free (pages freed by
 * the last transactions are not reusable at once, so the estimate is
 * optimistic). */
static void
ensure_room(struct store_disk *d, size_t need_bytes)
{
    MDB_stat ms;
    size_t used, max, need, i;

    mdb_env_stat(d->env, &ms);
    need = need_bytes / ms.ms_psize + 16;
    for (i = 0; i < 64; i++) {
        map_usage(d, &used, &max);
        if (used + need <= max - max / 5)
            return;
        if (make_room(d, 32) == 0)
            return;
    }
}

/* ---- the writer ----------------------------------------------------------------- */

/* Writes one object in txn.  0, a skip (1), or an LMDB error. */
static int
put_obj(struct store *st, struct store_disk *d, MDB_txn *txn, struct store_obj *o,
        uint8_t **buf, size_t *bufcap)
{
    const struct store_mblock *m = store_obj_meta(o);
    uint8_t okey[OKEY_LEN], ek[EKEY_LEN];
    uint64_t obs = atomic_load(&o->ban_seq), checked = obs;
    MDB_val k = { OKEY_LEN, okey }, v, e = { EKEY_LEN, ek }, empty = { 0, NULL };
    struct store_times t;
    size_t len, i;
    int rc;

    if (atomic_load(&o->invalid))
        return 1; /* purged after it was queued */
    if (obs < atomic_load(&st->ban_newest)) {
        if (store_ban_check(st, o, obs, &checked)) {
            atomic_store(&o->invalid, 1);
            return 1;
        }
    }
    len = store_record_size(o);
    if (len == 0)
        return 1;
    if (len > *bufcap) {
        uint8_t *nb = realloc(*buf, len);

        if (nb == NULL)
            return 1;
        *buf = nb;
        *bufcap = len;
    }
    store_obj_times(o, &t); /* once: the record and its expiry key agree */
    store_record_encode(o, checked, &t, *buf, len);
    okey_make(okey, o->digest, (struct store_bytes){ o->key, o->keylen }, m->selector);
    rc = rec_delete(d, txn, okey); /* replacing: drop the old index entries */
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    v.mv_size = len;
    v.mv_data = *buf;
    if ((rc = mdb_put(txn, d->objects, &k, &v, 0)) != 0)
        return rc;
    ekey_make(ek, times_expiry(&t), okey);
    if ((rc = mdb_put(txn, d->expiry, &e, &empty, 0)) != 0)
        return rc;
    for (i = 0; i < m->ntags; i++) {
        MDB_val tk = { STORE_DIGEST_LEN, m->links[i].digest }, tv = { OKEY_LEN, okey };

        rc = mdb_put(txn, d->tags, &tk, &tv, MDB_NODUPDATA);
        if (rc != 0 && rc != MDB_KEYEXIST)
            return rc;
    }
    atomic_fetch_add(&d->bytes, len);
    return 0;
}

/* Queued deletions of corrupt or banned records found by readers. */
static void
apply_dels(struct store_disk *d, MDB_txn *txn, struct del_item *list)
{
    for (; list != NULL; list = list->next) {
        if (rec_delete(d, txn, list->okey) != 0) {
            MDB_val k = { OKEY_LEN, list->okey };

            mdb_del(txn, d->objects, &k, NULL);
        }
    }
}

static void
note_commit(struct store_disk *d, uint64_t t0)
{
    uint64_t dt = now_us() - t0, mx;

    atomic_fetch_add(&d->commits, 1);
    atomic_fetch_add(&d->commit_us_total, dt);
    mx = atomic_load(&d->commit_us_max);
    while (dt > mx && !atomic_compare_exchange_weak(&d->commit_us_max, &mx, dt))
        ;
}

/*
 * Writes items [from, to) in one transaction.  Returns 0, MDB_MAP_FULL
 * (nothing committed) or another error (nothing committed).
 */
static int
write_txn(struct store *st, struct store_disk *d, struct store_obj **v, size_t from, size_t to,
          struct del_item *dels, uint8_t **buf, size_t *bufcap)
{
    uint64_t t0 = now_us();
    size_t i, written = 0;
    MDB_txn *txn;
    int rc;

    rc = mdb_txn_begin(d->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    apply_dels(d, txn, dels);
    for (i = from; i < to; i++) {
        rc = put_obj(st, d, txn, v[i], buf, bufcap);
        if (rc == 1)
            continue;
        if (rc != 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        written++;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&d->inserts, written);
    note_commit(d, t0);
    return 0;
}

static size_t
rec_need(struct store_obj *o)
{
    return store_record_size(o) + 2 * OKEY_LEN + 64;
}

/*
 * Writes v[0..n) in chunks of at most an eighth of the map, keeping
 * headroom before each.  A chunk that still hits MDB_MAP_FULL is retried
 * object by object; an object that cannot fit is skipped and counted.
 */
static void
write_batch(struct store *st, struct store_disk *d, struct store_obj **v, size_t n,
            struct del_item *dels)
{
    MDB_envinfo info;
    uint8_t *buf = NULL;
    size_t bufcap = 0, i, j, k, need, limit;
    int rc;

    mdb_env_info(d->env, &info);
    limit = info.me_mapsize / 8;
    if (n == 0 && dels != NULL)
        write_txn(st, d, v, 0, 0, dels, &buf, &bufcap);
    for (i = 0; i < n; i = j) {
        need = 0;
        for (j = i; j < n && (j == i || need + rec_need(v[j]) <= limit); j++)
            need += rec_need(v[j]);
        ensure_room(d, need);
        rc = write_txn(st, d, v, i, j, i == 0 ? dels : NULL, &buf, &bufcap);
        if (rc != 0 && rc != MDB_MAP_FULL)
            atomic_fetch_add(&d->skipped_full, j - i); /* XXX(#3): counted as skipped */
        if (rc != MDB_MAP_FULL)
            continue;
        for (k = i; k < j; k++) {
            int tries;

            need = rec_need(v[k]);
            rc = MDB_MAP_FULL;
            for (tries = 0; tries < 4 && need < info.me_mapsize / 2; tries++) {
                ensure_room(d, need);
                rc = write_txn(st, d, v, k, k + 1, NULL, &buf, &bufcap);
                if (rc != MDB_MAP_FULL || make_room(d, 16) == 0)
                    break;
            }
            if (rc != 0)
                atomic_fetch_add(&d->skipped_full, 1);
        }
    }
    free(buf);
}

static void *
writer_main(void *arg)
{
    struct store *st = arg;
    struct store_disk *d = st->disk;

    STORE_ZERO(pthread_mutex_lock(&d->mtx));
    for (;;) {
        struct store_obj **tmp;
        struct del_item *dels, *next;
        size_t i, n;
        uint64_t gen;

        while (d->n == 0 && d->dels == NULL && !d->stop)
            STORE_ZERO(pthread_cond_wait(&d->cond, &d->mtx));
        if (d->n == 0 && d->dels == NULL && d->stop)
            break;
        tmp = d->batch;
        d->batch = d->items;
        d->items = tmp;
        d->bn = d->n;
        d->n = 0;
        dels = d->dels;
        d->dels = NULL;
        gen = d->gen_queued;
        n = d->bn;
        STORE_ZERO(pthread_mutex_unlock(&d->mtx));

        write_batch(st, d, d->batch, n, dels);
        for (; dels != NULL; dels = next) {
            next = dels->next;
            free(dels);
        }

        STORE_ZERO(pthread_mutex_lock(&d->mtx));
        d->bn = 0; /* purges stop scanning the batch before we drop it */
        STORE_ZERO(pthread_mutex_unlock(&d->mtx));
        for (i = 0; i < n; i++)
            store_obj_release(&d->batch[i]);
        STORE_ZERO(pthread_mutex_lock(&d->mtx));
        d->gen_written = gen;
        STORE_ZERO(pthread_cond_broadcast(&d->done_cond));
    }
    STORE_ZERO(pthread_mutex_unlock(&d->mtx));
    return NULL;
}

void
store_disk_enqueue(struct store *st, struct store_obj *o)
{
    struct store_disk *d = st->disk;
    const struct store_mblock *m = store_obj_meta(o);
    size_t blen = store_obj_body_len(o);
    struct store_times t;

    STORE_CHECK_OBJ(d, STORE_DISK_MAGIC);
    if (m == NULL || (m->flags & STORE_OBJ_F_HFM) || blen < st->cfg.disk_min_size ||
        blen > st->cfg.disk_max_size)
        return;
    store_obj_times(o, &t);
    if (t.ttl + t.grace + t.keep < st->cfg.disk_min_ttl)
        return;
    STORE_ZERO(pthread_mutex_lock(&d->mtx));
    if (d->n >= d->cap) {
        atomic_fetch_add(&d->dropped, 1); /* the disk is behind: never block the caller */
    } else {
        d->items[d->n++] = store_obj_ref(o);
        d->gen_queued++;
        STORE_ZERO(pthread_cond_signal(&d->cond));
    }
    STORE_ZERO(pthread_mutex_unlock(&d->mtx));
}

static void
queue_delete(struct store_disk *d, const uint8_t okey[OKEY_LEN])
{
    struct del_item *di = malloc(sizeof(*di));

    if (di == NULL)
        return;
    memcpy(di->okey, okey, OKEY_LEN);
    STORE_ZERO(pthread_mutex_lock(&d->mtx));
    di->next = d->dels;
    d->dels = di;
    d->gen_queued++;
    STORE_ZERO(pthread_cond_signal(&d->cond));
    STORE_ZERO(pthread_mutex_unlock(&d->mtx));
}

int
store_sync(struct store *st)
{
    struct store_disk *d;
    uint64_t gen;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    d = st->disk;
    if (d == NULL)
        return STORE_OK;
    STORE_ZERO(pthread_mutex_lock(&d->mtx));
    gen = d->gen_queued;
    while (d->gen_written < gen)
        STORE_ZERO(pthread_cond_wait(&d->done_cond, &d->mtx));
    STORE_ZERO(pthread_mutex_unlock(&d->mtx));
    return STORE_OK;
}

static bool
obj_has_tag(const struct store_obj *o, struct store_bytes tag)
{
    const struct store_mblock *m = store_obj_meta(o);
    size_t i;

    for (i = 0; m != NULL && i < m->ntags; i++)
        if (store_bytes_eq(m->tags[i], tag))
            return true;
    return false;
}

void
store_disk_queue_invalidate(struct store *st, const uint8_t *digest, struct store_bytes key,
                            struct store_bytes tag)
{
    struct store_disk *d = st->disk;
    size_t i;

    STORE_ZERO(pthread_mutex_lock(&d->mtx));
    for (i = 0; i < d->n + d->bn; i++) {
        struct store_obj *o = i < d->n ? d->items[i] : d->batch[i - d->n];

        if (digest != NULL ? (memcmp(o->digest, digest, STORE_DIGEST_LEN) == 0 &&
                              store_bytes_eq((struct store_bytes){ o->key, o->keylen }, key))
                           : obj_has_tag(o, tag))
            atomic_store(&o->invalid, 1);
    }
    STORE_ZERO(pthread_mutex_unlock(&d->mtx));
}

uint64_t
store_disk_queue_min_ban(struct store *st)
{
    struct store_disk *d = st->disk;
    uint64_t mn = UINT64_MAX;
    size_t i;

    STORE_ZERO(pthread_mutex_lock(&d->mtx));
    for (i = 0; i < d->n + d->bn; i++) {
        struct store_obj *o = i < d->n ? d->items[i] : d->batch[i - d->n];
        uint64_t b = atomic_load(&o->ban_seq);

        if (b < mn && !atomic_load(&o->invalid))
            mn = b;
    }
    STORE_ZERO(pthread_mutex_unlock(&d->mtx));
    return mn;
}

/* ---- reads --------------------------------------------------------------------- */

int
store_disk_lookup(struct store *st, const uint8_t digest[STORE_DIGEST_LEN],
                  const struct store_lookup *lk, struct store_obj **op)
{
    struct store_disk *d = st->disk;
    struct store_obj *o = NULL;
    struct store_record r;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k = { STORE_DIGEST_LEN, (void *)digest }, v;
    uint8_t bad[OKEY_LEN];
    bool have_bad = false;
    uint64_t checked;
    int rc;

    *op = NULL;
    atomic_fetch_add(&d->lookups, 1);
    atomic_store(&d->last_now_ms, time_ms(lk->now));
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0)
        return STORE_EDISK;
    if (mdb_cursor_open(txn, d->objects, &c) != 0) {
        mdb_txn_abort(txn);
        return STORE_EDISK;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != OKEY_LEN || memcmp(k.mv_data, digest, STORE_DIGEST_LEN) != 0)
            break;
        if (store_record_decode(v.mv_data, v.mv_size, &r) != 0) {
            atomic_fetch_add(&d->corrupt, 1);
            memcpy(bad, k.mv_data, OKEY_LEN);
            have_bad = true;
            continue;
        }
        if (!store_bytes_eq(r.key, lk->key) || lk->now >= rec_expiry(&r))
            continue;
        if (lk->match != NULL && !lk->match(lk->match_arg, r.selector))
            continue;
        o = store_obj_from_record(st, digest, &r); /* copies out of the map */
        break;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (have_bad)
        queue_delete(d, bad);
    if (o != NULL && atomic_load(&o->ban_seq) < atomic_load(&st->ban_newest)) {
        if (store_ban_check(st, o, atomic_load(&o->ban_seq), &checked)) {
            uint8_t okey[OKEY_LEN];

            okey_make(okey, digest, lk->key, store_obj_selector(o));
            queue_delete(d, okey);
            atomic_fetch_add(&d->invalidations, 1);
            store_obj_release(&o);
        } else {
            atomic_store(&o->ban_seq, checked);
        }
    }
    if (o == NULL) {
        atomic_fetch_add(&d->misses, 1);
        return 0;
    }
    atomic_fetch_add(&d->hits, 1);
    *op = o;
    return 1;
}

/* ---- synchronous invalidation ------------------------------------------------- */

static int
commit_durable(struct store_disk *d, MDB_txn *txn)
{
    uint64_t t0 = now_us();
    int rc = mdb_txn_commit(txn);

    if (rc != 0)
        return STORE_EDISK;
    note_commit(d, t0);
    return mdb_env_sync(d->env, 1) == 0 ? STORE_OK : STORE_EDISK;
}

/* Append one object key to a growing list (purges collect keys under a
 * cursor, then delete them).  false when out of memory: the purge then
 * covers what was collected. */
static bool
keys_push(uint8_t (**keys)[OKEY_LEN], size_t *n, size_t *cap, const void *key)
{
    if (*n == *cap) {
        void *nk = realloc(*keys, (*cap * 2 + 64) * OKEY_LEN);

        if (nk == NULL)
            return false;
        *keys = nk;
        *cap = *cap * 2 + 64;
    }
    memcpy((*keys)[(*n)++], key, OKEY_LEN);
    return true;
}

int
store_disk_purge_key(struct store *st, const uint8_t digest[STORE_DIGEST_LEN],
                     struct store_bytes key, size_t *countp)
{
    struct store_disk *d = st->disk;
    uint8_t (*keys)[OKEY_LEN] = NULL;
    size_t n = 0, cap = 0, i;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k = { STORE_DIGEST_LEN, (void *)digest }, v;
    struct store_record r;
    int rc;

    *countp = 0;
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0)
        return STORE_EDISK;
    if (mdb_cursor_open(txn, d->objects, &c) != 0) {
        mdb_txn_abort(txn);
        return STORE_EDISK;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != OKEY_LEN || memcmp(k.mv_data, digest, STORE_DIGEST_LEN) != 0)
            break;
        if (store_record_decode(v.mv_data, v.mv_size, &r) == 0 && !store_bytes_eq(r.key, key))
            continue; /* digest collision: another key */
        if (!keys_push(&keys, &n, &cap, k.mv_data))
            break;
    }
    mdb_cursor_close(c);
    for (i = 0; i < n; i++)
        rec_delete(d, txn, keys[i]);
    free(keys);
    rc = commit_durable(d, txn);
    if (rc == STORE_OK) {
        *countp = n;
        atomic_fetch_add(&d->invalidations, n);
    }
    return rc;
}

int
store_disk_purge_tag(struct store *st, struct store_bytes tag, size_t *countp)
{
    struct store_disk *d = st->disk;
    uint8_t td[STORE_DIGEST_LEN];
    uint8_t (*keys)[OKEY_LEN] = NULL;
    size_t n = 0, cap = 0, i;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k = { STORE_DIGEST_LEN, td }, v;
    int rc;

    *countp = 0;
    store_digest(NULL, tag.p, tag.len, td);
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0)
        return STORE_EDISK;
    if (mdb_cursor_open(txn, d->tags, &c) != 0) {
        mdb_txn_abort(txn);
        return STORE_EDISK;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != OKEY_LEN)
            continue;
        if (!keys_push(&keys, &n, &cap, v.mv_data))
            break;
    }
    mdb_cursor_close(c);
    for (i = 0; i < n; i++)
        rec_delete(d, txn, keys[i]); /* NOTFOUND: a dangling entry, dropped below */
    k.mv_size = STORE_DIGEST_LEN;
    k.mv_data = td;
    mdb_del(txn, d->tags, &k, NULL);
    free(keys);
    rc = commit_durable(d, txn);
    if (rc == STORE_OK) {
        *countp = n;
        atomic_fetch_add(&d->invalidations, n);
    }
    return rc;
}

/* ---- bans ---------------------------------------------------------------------- */

int
store_disk_ban_put(struct store *st, const struct store_ban *b, uint64_t replaced_seq)
{
    struct store_disk *d = st->disk;
    uint8_t key[8], *val, sk[8];
    MDB_val k = { 8, key }, v, mk = { 7, "ban_seq" }, mv = { 8, sk };
    MDB_txn *txn;
    uint32_t crc;
    int rc;

    val = malloc(12 + b->len);
    if (val == NULL)
        return STORE_ENOMEM;
    memcpy(val + 4, &b->time, 8);
    memcpy(val + 12, b->spec, b->len);
    crc = (uint32_t)crc32(0L, val + 4, (uInt)(8 + b->len));
    memcpy(val, &crc, 4);
    be64(key, b->seq);
    be64(sk, b->seq);
    v.mv_size = 12 + b->len;
    v.mv_data = val;
    rc = mdb_txn_begin(d->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = mdb_put(txn, d->bans, &k, &v, 0);
        if (rc == 0)
            rc = mdb_put(txn, d->meta, &mk, &mv, 0);
        if (rc == 0 && replaced_seq != 0) {
            uint8_t rk[8];
            MDB_val r = { 8, rk };

            be64(rk, replaced_seq);
            mdb_del(txn, d->bans, &r, NULL);
        }
        if (rc == 0)
            rc = commit_durable(d, txn) == STORE_OK ? 0 : -1;
        else
            mdb_txn_abort(txn);
    }
    free(val);
    return rc == 0 ? STORE_OK : STORE_EDISK;
}

int
store_disk_ban_del(struct store *st, uint64_t seq)
{
    struct store_disk *d = st->disk;
    uint8_t key[8];
    MDB_val k = { 8, key };
    MDB_txn *txn;
    int rc;

    be64(key, seq);
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0)
        return STORE_EDISK;
    rc = mdb_del(txn, d->bans, &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return STORE_EDISK;
    }
    return commit_durable(d, txn);
}

static int
bans_load(struct store *st)
{
    struct store_disk *d = st->disk;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v, mk = { 7, "ban_seq" };
    int rc, r = STORE_OK;

    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0)
        return STORE_EDISK;
    if (mdb_get(txn, d->meta, &mk, &v) == 0 && v.mv_size == 8) {
        uint64_t s = rbe64(v.mv_data);

        if (atomic_load(&st->ban_newest) < s)
            atomic_store(&st->ban_newest, s);
    }
    if (mdb_cursor_open(txn, d->bans, &c) == 0) {
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && r == STORE_OK;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            const uint8_t *p = v.mv_data;
            uint32_t crc;
            double t;

            if (k.mv_size != 8)
                continue;
            crc = 0;
            if (v.mv_size >= 4)
                memcpy(&crc, p, 4);
            if (v.mv_size < 12 || crc != (uint32_t)crc32(0L, p + 4, (uInt)(v.mv_size - 4))) {
                /* a corrupt ban cannot be evaluated, and dropping it could
                 * resurrect banned content: it bans everything older */
                atomic_fetch_add(&d->corrupt, 1);
                r = store_ban_restore(st, rbe64(k.mv_data), 0, (struct store_bytes){ "", 0 },
                                      true);
                continue;
            }
            memcpy(&t, p + 4, 8);
            r = store_ban_restore(st, rbe64(k.mv_data), t,
                                  (struct store_bytes){ p + 12, v.mv_size - 12 }, false);
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return r;
}

/* ---- housekeeping --------------------------------------------------------------- */

static int
delete_keys(struct store_disk *d, uint8_t (*keys)[OKEY_LEN], size_t n)
{
    MDB_txn *txn;
    size_t i;

    if (n == 0)
        return STORE_OK;
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0)
        return STORE_EDISK;
    for (i = 0; i < n; i++)
        rec_delete(d, txn, keys[i]);
    return mdb_txn_commit(txn) == 0 ? STORE_OK : STORE_EDISK;
}

static int
expire_slice(struct store_disk *d, double now, unsigned budget)
{
    uint8_t (*keys)[EKEY_LEN] = malloc(budget * sizeof(*keys));
    uint64_t nowms = time_ms(now);
    size_t n = 0, i, gone = 0;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    if (keys == NULL)
        return STORE_ENOMEM;
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0) {
        free(keys);
        return STORE_EDISK;
    }
    if (mdb_cursor_open(txn, d->expiry, &c) == 0) {
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < budget;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (k.mv_size == EKEY_LEN && rbe64(k.mv_data) > nowms)
                break;
            if (k.mv_size == EKEY_LEN)
                memcpy(keys[n++], k.mv_data, EKEY_LEN);
        }
        mdb_cursor_close(c);
    }
    for (i = 0; i < n; i++) {
        MDB_val e = { EKEY_LEN, keys[i] };

        if (rec_delete(d, txn, keys[i] + 8) == 0)
            gone++;
        else
            mdb_del(txn, d->expiry, &e, NULL);
    }
    free(keys);
    rc = mdb_txn_commit(txn);
    atomic_fetch_add(&d->expiries, gone);
    return rc == 0 ? STORE_OK : STORE_EDISK;
}

/* Ban lurker over the objects database, budget records per call. */
static int
lurk_slice(struct store *st, struct store_disk *d, unsigned budget, uint64_t newest)
{
    uint8_t (*del)[OKEY_LEN] = malloc(budget * sizeof(*del));
    struct store_record r;
    size_t ndel = 0, seen = 0;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    if (del == NULL)
        return STORE_ENOMEM;
    if (!d->lurk_running) {
        d->lurk_running = true;
        d->lurk_has_key = false;
        d->lurk_target = newest;
    }
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0) {
        free(del);
        return STORE_EDISK;
    }
    rc = mdb_cursor_open(txn, d->objects, &c);
    if (rc == 0) {
        if (d->lurk_has_key) {
            k.mv_size = OKEY_LEN;
            k.mv_data = d->lurk_key;
            rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
            if (rc == 0 && memcmp(k.mv_data, d->lurk_key, OKEY_LEN) == 0)
                rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        } else {
            rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        }
        for (; rc == 0 && seen < budget; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            seen++;
            if (k.mv_size != OKEY_LEN)
                continue;
            memcpy(d->lurk_key, k.mv_data, OKEY_LEN);
            d->lurk_has_key = true;
            if (store_record_decode(v.mv_data, v.mv_size, &r) != 0) {
                atomic_fetch_add(&d->corrupt, 1);
                memcpy(del[ndel++], k.mv_data, OKEY_LEN);
                continue;
            }
            if (r.ban_seq < d->lurk_target) {
                struct store_record meta_only = r;
                struct store_obj *o;
                uint64_t checked;

                meta_only.body.len = 0; /* the ban predicate reads metadata only */
                o = store_obj_from_record(st, k.mv_data, &meta_only);
                if (o != NULL && store_ban_check(st, o, r.ban_seq, &checked)) {
                    memcpy(del[ndel++], k.mv_data, OKEY_LEN);
                    atomic_fetch_add(&d->invalidations, 1);
                }
                store_obj_release(&o);
            }
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND) { /* reached the end: pass complete */
        st->hk_disk_done = d->lurk_target;
        d->lurk_running = false;
    }
    rc = delete_keys(d, del, ndel);
    free(del);
    return rc;
}

int
store_disk_housekeep(struct store *st, double now, unsigned budget, uint64_t target,
                     bool *pass_done)
{
    struct store_disk *d = st->disk;
    uint64_t before = st->hk_disk_done;
    int r;

    atomic_store(&d->last_now_ms, time_ms(now));
    r = expire_slice(d, now, budget);
    if (r == STORE_OK)
        r = lurk_slice(st, d, budget, target);
    *pass_done = st->hk_disk_done != before;
    return r;
}

void
store_disk_stats(struct store *st, struct store_stats *out)
{
    struct store_disk *d = st->disk;
    MDB_txn *txn;
    MDB_stat ms;

    out->disk_lookups = atomic_load(&d->lookups);
    out->disk_hits = atomic_load(&d->hits);
    out->disk_misses = atomic_load(&d->misses);
    out->disk_inserts = atomic_load(&d->inserts);
    out->disk_bytes = atomic_load(&d->bytes);
    out->disk_evictions = atomic_load(&d->evictions);
    out->disk_expiries = atomic_load(&d->expiries);
    out->disk_invalidations = atomic_load(&d->invalidations);
    out->disk_queue_dropped = atomic_load(&d->dropped);
    out->disk_skipped_full = atomic_load(&d->skipped_full);
    out->disk_commits = atomic_load(&d->commits);
    out->disk_commit_us_total = atomic_load(&d->commit_us_total);
    out->disk_commit_us_max = atomic_load(&d->commit_us_max);
    out->disk_corrupt = atomic_load(&d->corrupt);
    STORE_ZERO(pthread_mutex_lock(&d->mtx));
    out->disk_queue_depth = d->n + d->bn;
    STORE_ZERO(pthread_mutex_unlock(&d->mtx));
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_stat(txn, d->objects, &ms) == 0)
            out->disk_objects = ms.ms_entries;
        mdb_txn_abort(txn);
    }
}

/* ---- open / close ---------------------------------------------------------------- */

static int
env_open(struct store_disk *d, const char *path, size_t mapsize)
{
    int rc;

    if ((rc = mdb_env_create(&d->env)) != 0)
        return rc;
    mdb_env_set_maxdbs(d->env, 8);
    mdb_env_set_maxreaders(d->env, 512);
    mdb_env_set_mapsize(d->env, mapsize);
    rc = mdb_env_open(d->env, path, MDB_NOSYNC | MDB_NOTLS, 0644);
    if (rc != 0) {
        mdb_env_close(d->env);
        d->env = NULL;
    }
    return rc;
}

/* Removes a foreign or unreadable environment so a fresh one can be made. */
static void
env_remove(const char *path)
{
    char p[4096];

    snprintf(p, sizeof(p), "%s/data.mdb", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", path);
    unlink(p);
}

/*
 * Opens the sub-databases and checks the format version: a store without
 * a version but with objects, or with another version, is emptied.
 */
static int
dbs_open(struct store *st, struct store_disk *d, const struct store_config *cfg)
{
    MDB_txn *txn;
    MDB_val k = { 6, "format" }, v;
    MDB_stat ms;
    uint32_t ver = STORE_REC_VERSION, have = 0;
    bool known = false;
    int rc;

    (void)st;
    if ((rc = mdb_txn_begin(d->env, NULL, 0, &txn)) != 0)
        return rc;
    if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &d->objects)) != 0 ||
        (rc = mdb_dbi_open(txn, "expiry", MDB_CREATE, &d->expiry)) != 0 ||
        (rc = mdb_dbi_open(txn, "tags", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &d->tags)) != 0 ||
        (rc = mdb_dbi_open(txn, "bans", MDB_CREATE, &d->bans)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &d->meta)) != 0)
        goto fail;
    if (mdb_get(txn, d->meta, &k, &v) == 0 && v.mv_size == 4) {
        memcpy(&have, v.mv_data, 4);
        known = true;
    }
    mdb_stat(txn, d->objects, &ms);
    if ((known && have != ver) || (!known && ms.ms_entries > 0)) {
        if (known)
            store_format_msg(cfg->errbuf, cfg->errbuf_len,
                             "disk store %s has format version %u, this build uses %u: "
                             "discarded its contents",
                             cfg->disk_path, have, ver);
        else
            store_format_msg(cfg->errbuf, cfg->errbuf_len,
                             "disk store %s has no format version: discarded its contents",
                             cfg->disk_path);
        if ((rc = mdb_drop(txn, d->objects, 0)) != 0 || (rc = mdb_drop(txn, d->expiry, 0)) != 0 ||
            (rc = mdb_drop(txn, d->tags, 0)) != 0 || (rc = mdb_drop(txn, d->bans, 0)) != 0 ||
            (rc = mdb_drop(txn, d->meta, 0)) != 0)
            goto fail;
        known = false;
    }
    if (!known) {
        v.mv_size = 4;
        v.mv_data = &ver;
        if ((rc = mdb_put(txn, d->meta, &k, &v, 0)) != 0)
            goto fail;
    }
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int
store_disk_open(struct store *st, const struct store_config *cfg)
{
    struct store_disk *d;
    size_t mapsize = cfg->disk_map_size != 0 ? cfg->disk_map_size : (size_t)1 << 30;
    int rc;

    if (mkdir(cfg->disk_path, 0755) != 0 && errno != EEXIST) {
        store_format_msg(cfg->errbuf, cfg->errbuf_len, "disk store %s: mkdir: %s",
                         cfg->disk_path, strerror(errno));
        return STORE_EDISK;
    }
    d = store_xcalloc(1, sizeof(*d));
    d->magic = STORE_DISK_MAGIC;
    STORE_ZERO(pthread_mutex_init(&d->mtx, NULL));
    STORE_ZERO(pthread_cond_init(&d->cond, NULL));
    STORE_ZERO(pthread_cond_init(&d->done_cond, NULL));
    d->cap = st->cfg.disk_queue_max;
    d->items = store_xcalloc(d->cap, sizeof(*d->items));
    d->batch = store_xcalloc(d->cap, sizeof(*d->batch));
    st->disk = d;
    rc = env_open(d, cfg->disk_path, mapsize);
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        store_format_msg(cfg->errbuf, cfg->errbuf_len,
                         "disk store %s is not an LMDB store of this version (%s): "
                         "discarded it",
                         cfg->disk_path, mdb_strerror(rc));
        env_remove(cfg->disk_path);
        rc = env_open(d, cfg->disk_path, mapsize);
    }
    if (rc == 0)
        rc = dbs_open(st, d, cfg);
    if (rc != 0) {
        store_format_msg(cfg->errbuf, cfg->errbuf_len, "disk store %s: %s", cfg->disk_path,
                         mdb_strerror(rc));
        return STORE_EDISK; /* store_open's failure path calls store_disk_close */
    }
    rc = bans_load(st);
    if (rc != STORE_OK)
        return rc;
    if (pthread_create(&d->writer, NULL, writer_main, st) != 0) {
        store_format_msg(cfg->errbuf, cfg->errbuf_len, "disk store: cannot start writer");
        return STORE_ENOMEM;
    }
    d->writer_started = true;
    return STORE_OK;
}

void
store_disk_close(struct store *st)
{
    struct store_disk *d = st->disk;
    struct del_item *di;

    if (d == NULL)
        return;
    STORE_CHECK_OBJ(d, STORE_DISK_MAGIC);
    if (d->writer_started) {
        STORE_ZERO(pthread_mutex_lock(&d->mtx));
        d->stop = true;
        STORE_ZERO(pthread_cond_signal(&d->cond));
        STORE_ZERO(pthread_mutex_unlock(&d->mtx));
        STORE_ZERO(pthread_join(d->writer, NULL));
    }
    while (d->n > 0)
        store_obj_release(&d->items[--d->n]);
    while ((di = d->dels) != NULL) {
        d->dels = di->next;
        free(di);
    }
    if (d->env != NULL) {
        mdb_env_sync(d->env, 1);
        mdb_env_close(d->env);
    }
    free(d->items);
    free(d->batch);
    STORE_ZERO(pthread_mutex_destroy(&d->mtx));
    STORE_ZERO(pthread_cond_destroy(&d->cond));
    STORE_ZERO(pthread_cond_destroy(&d->done_cond));
    d->magic = 0;
    free(d);
    st->disk = NULL;
}

/* ---- application records (store_meta_*) ------------------------------------------- */

/* Application names live under "app:" in the meta database, apart from the
 * store's own records ("format", "ban_seq"). */
static int
meta_key(struct store_bytes name, uint8_t out[70], MDB_val *k)
{
    if (name.p == NULL || name.len == 0 || name.len > 64)
        return STORE_EINVAL;
    memcpy(out, "app:", 4);
    memcpy(out + 4, name.p, name.len);
    k->mv_size = 4 + name.len;
    k->mv_data = out;
    return STORE_OK;
}

bool
store_has_disk(const struct store *st)
{
    STORE_CHECK_OBJ(st, STORE_MAGIC);
    return st->disk != NULL;
}

int
store_meta_put(struct store *st, struct store_bytes name, struct store_bytes value)
{
    struct store_disk *d;
    uint8_t kb[70];
    MDB_val k, v = { value.len, (void *)(uintptr_t)value.p };
    MDB_txn *txn;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (meta_key(name, kb, &k) != STORE_OK || value.len > STORE_META_MAX ||
        (value.p == NULL && value.len > 0))
        return STORE_EINVAL;
    d = st->disk;
    if (d == NULL)
        return STORE_OK;
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0)
        return STORE_EDISK;
    if (mdb_put(txn, d->meta, &k, &v, 0) != 0) {
        mdb_txn_abort(txn);
        return STORE_EDISK;
    }
    return commit_durable(d, txn);
}

int
store_meta_get(struct store *st, struct store_bytes name, void *buf, size_t cap, size_t *lenp)
{
    struct store_disk *d;
    uint8_t kb[70];
    MDB_val k, v;
    MDB_txn *txn;
    int rc, r;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (meta_key(name, kb, &k) != STORE_OK)
        return STORE_EINVAL;
    d = st->disk;
    if (d == NULL)
        return STORE_MISS;
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0)
        return STORE_EDISK;
    rc = mdb_get(txn, d->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        r = STORE_MISS;
    } else if (rc != 0) {
        r = STORE_EDISK;
    } else {
        if (lenp != NULL)
            *lenp = v.mv_size;
        r = v.mv_size > cap ? STORE_EINVAL : STORE_OK;
        if (r == STORE_OK && v.mv_size > 0)
            memcpy(buf, v.mv_data, v.mv_size);
    }
    mdb_txn_abort(txn);
    return r;
}
