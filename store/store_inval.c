/*
 * store_inval.c -- invalidation: the in-memory tag index, purge by key and
 * by tag (hard or soft), bans and the housekeeping step (expiry sweep and
 * ban lurker).
 *
 * Bans.  Each ban gets a sequence number; each object remembers the
 * newest ban it has been checked against (its ban_seq, set to the newest
 * ban when it is created).  A lookup evaluates only bans newer than the
 * object, and only when such a ban exists (one atomic compare otherwise).
 * The lurker (store_housekeep) walks every object of both tiers in bounded
 * slices; once a full pass of each tier has checked every object against
 * the bans up to T (and nothing in the write-behind queue is older than T),
 * bans <= T are retired: no object older than them remains unchecked.
 * Sequence numbers are persisted, so records written by an earlier run are
 * still checked against bans added after them.
 */
#include "store.h"
#include "store_int.h"

#include <stdlib.h>

/* ---- tag index (memory) ---------------------------------------------------- */

static inline struct store_tag_stripe *
tstripe(struct store *st, const uint8_t digest[STORE_DIGEST_LEN])
{
    return &st->tags[digest[0] % STORE_TSTRIPES];
}

static inline size_t
tbucket(const struct store_tag_stripe *ts, const uint8_t digest[STORE_DIGEST_LEN])
{
    uint64_t x;

    memcpy(&x, digest + 8, 8);
    return (size_t)(x & ts->mask);
}

void
store_tags_link(struct store *st, struct store_obj *o)
{
    struct store_mblock *m = store_obj_meta(o);
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->ntags; i++) {
        struct store_tag_link *l = &m->links[i];
        struct store_tag_stripe *ts = tstripe(st, l->digest);
        size_t b;

        if (l->linked)
            continue;
        STORE_ZERO(pthread_mutex_lock(&ts->mtx));
        b = tbucket(ts, l->digest);
        l->prev = NULL;
        l->next = ts->buckets[b];
        if (l->next != NULL)
            l->next->prev = l;
        ts->buckets[b] = l;
        l->linked = 1;
        STORE_ZERO(pthread_mutex_unlock(&ts->mtx));
    }
}

void
store_tags_unlink(struct store *st, struct store_obj *o)
{
    struct store_mblock *m = store_obj_meta(o);
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->ntags; i++) {
        struct store_tag_link *l = &m->links[i];
        struct store_tag_stripe *ts = tstripe(st, l->digest);

        if (!l->linked)
            continue;
        STORE_ZERO(pthread_mutex_lock(&ts->mtx));
        if (l->prev != NULL)
            l->prev->next = l->next;
        else
            ts->buckets[tbucket(ts, l->digest)] = l->next;
        if (l->next != NULL)
            l->next->prev = l->prev;
        l->next = l->prev = NULL;
        l->linked = 0;
        STORE_ZERO(pthread_mutex_unlock(&ts->mtx));
    }
}

/* ---- purges ------------------------------------------------------------------ */

static void
soften(struct store_obj *o, double now)
{
    uint64_t bits, cur;

    memcpy(&bits, &now, sizeof(bits));
    if (bits == 0)
        bits = 1; /* 0.0 means "none": use the smallest subnormal */
    cur = atomic_load(&o->soft_at);
    if (cur == 0 || bits < cur)
        atomic_store(&o->soft_at, bits);
}

/* Shard lock held.  Soft: stale from now on; hard: out of the index. */
static void
invalidate_locked(struct store_shard *sh, struct store_obj *o, unsigned flags, double now)
{
    atomic_store(&o->invalid, 1); /* never (re)written to disk */
    if (flags & STORE_PURGE_SOFT) {
        soften(o, now);
        if (atomic_load(&o->state) == STORE_OBJ_COMPLETE)
            o->expires = store_obj_expiry(o);
        return;
    }
    sh->invalidations++;
    store_unlink_locked(sh, o);
}

int
store_purge_key(struct store *st, struct store_bytes key, unsigned flags, double now,
                size_t *countp)
{
    uint8_t digest[STORE_DIGEST_LEN];
    struct store_shard *sh;
    struct store_head *h;
    size_t n = 0, dn = 0;
    int r = STORE_OK;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (key.p == NULL && key.len > 0)
        return STORE_EINVAL;
    store_digest(st, key.p, key.len, digest);
    sh = store_shard_of(st, digest);
    STORE_ZERO(pthread_mutex_lock(&sh->mtx));
    h = store_head_find(sh, digest, key);
    if (h != NULL) {
        struct store_obj *o, *next;
        bool last = false;

        for (o = h->variants; o != NULL && !last; o = next) {
            next = o->vnext;
            last = next == NULL; /* unlinking the last variant frees h */
            n++;
            invalidate_locked(sh, o, flags, now);
        }
    }
    STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    if (st->disk != NULL) {
        store_disk_queue_invalidate(st, digest, key, (struct store_bytes){ NULL, 0 });
        r = store_disk_purge_key(st, digest, key, &dn);
    }
    if (countp != NULL)
        *countp = n > dn ? n : dn;
    return r;
}

int
store_purge_tag(struct store *st, struct store_bytes tag, unsigned flags, double now,
                size_t *countp)
{
    uint8_t digest[STORE_DIGEST_LEN];
    struct store_tag_stripe *ts;
    struct store_tag_link *l;
    struct store_obj **v = NULL;
    size_t n = 0, cap = 0, i, done = 0, dn = 0;
    int r = STORE_OK;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (tag.p == NULL && tag.len > 0)
        return STORE_EINVAL;
    store_digest(NULL, tag.p, tag.len, digest);
    ts = tstripe(st, digest);
    /* collect references under the stripe lock, invalidate under shard locks
     * (the lock order is shard -> stripe, never the other way) */
    STORE_ZERO(pthread_mutex_lock(&ts->mtx));
    for (l = ts->buckets[tbucket(ts, digest)]; l != NULL; l = l->next) {
        struct store_mblock *m = store_obj_meta(l->obj);
        size_t idx = (size_t)(l - m->links);

        if (memcmp(l->digest, digest, STORE_DIGEST_LEN) != 0 ||
            !store_bytes_eq(m->tags[idx], tag))
            continue;
        if (n == cap) {
            struct store_obj **nv;

            cap = cap != 0 ? cap * 2 : 256;
            nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                r = STORE_ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = store_obj_ref(l->obj);
    }
    STORE_ZERO(pthread_mutex_unlock(&ts->mtx));
    for (i = 0; i < n; i++) {
        struct store_shard *sh = store_shard_of(st, v[i]->digest);

        STORE_ZERO(pthread_mutex_lock(&sh->mtx));
        if (v[i]->head != NULL) {
            done++;
            invalidate_locked(sh, v[i], flags, now);
        }
        STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
        store_obj_release(&v[i]);
    }
    free(v);
    if (r == STORE_OK && st->disk != NULL) {
        store_disk_queue_invalidate(st, NULL, (struct store_bytes){ NULL, 0 }, tag);
        r = store_disk_purge_tag(st, tag, &dn);
    }
    if (countp != NULL)
        *countp = done > dn ? done : dn;
    return r;
}

/* ---- bans --------------------------------------------------------------------- */

int
store_bans_init(struct store *st)
{
    STORE_ZERO(pthread_rwlock_init(&st->ban_lock, NULL));
    STORE_ZERO(pthread_mutex_init(&st->ban_add_mtx, NULL));
    return STORE_OK;
}

void
store_bans_free(struct store *st)
{
    struct store_ban *b, *next;

    for (b = st->bans; b != NULL; b = next) {
        next = b->next;
        b->magic = 0;
        free(b);
    }
    st->bans = NULL;
    STORE_ZERO(pthread_rwlock_destroy(&st->ban_lock));
    STORE_ZERO(pthread_mutex_destroy(&st->ban_add_mtx));
}

bool
store_ban_check(struct store *st, const struct store_obj *o, uint64_t obs, uint64_t *checked)
{
    struct store_ban *b;
    bool hit = false;

    STORE_ZERO(pthread_rwlock_rdlock(&st->ban_lock));
    *checked = atomic_load(&st->ban_newest);
    if (store_obj_meta(o) != NULL) {
        for (b = st->bans; b != NULL && b->seq > obs; b = b->next) {
            struct store_bytes spec = { b->spec, b->len };

            if (b->all || (st->cfg.ban_match != NULL && st->cfg.ban_match(st->cfg.ban_arg, spec, o))) {
                hit = true;
                break;
            }
        }
    }
    STORE_ZERO(pthread_rwlock_unlock(&st->ban_lock));
    return hit;
}

static struct store_ban *
ban_new(uint64_t seq, double time, struct store_bytes spec)
{
    struct store_ban *b = malloc(sizeof(*b) + spec.len);

    if (b == NULL)
        return NULL;
    b->magic = STORE_BAN_MAGIC;
    b->next = NULL;
    b->seq = seq;
    b->time = time;
    b->all = false;
    b->len = spec.len;
    if (spec.len > 0)
        memcpy(b->spec, spec.p, spec.len);
    return b;
}

/* ban_lock held for writing: unlinks an older ban identical to b. */
static struct store_ban *
ban_take_duplicate(struct store *st, const struct store_ban *b)
{
    struct store_ban **pp, *d;

    for (pp = &st->bans; *pp != NULL; pp = &(*pp)->next) {
        d = *pp;
        if (d != b && d->len == b->len && memcmp(d->spec, b->spec, b->len) == 0) {
            *pp = d->next;
            st->ban_count--;
            return d;
        }
    }
    return NULL;
}

int
store_ban_restore(struct store *st, uint64_t seq, double time, struct store_bytes spec, bool all)
{
    struct store_ban *b = ban_new(seq, time, spec), **pp;

    if (b == NULL)
        return STORE_ENOMEM;
    b->all = all;
    STORE_ZERO(pthread_rwlock_wrlock(&st->ban_lock));
    for (pp = &st->bans; *pp != NULL && (*pp)->seq > seq; pp = &(*pp)->next)
        ;
    b->next = *pp;
    *pp = b;
    st->ban_count++;
    if (atomic_load(&st->ban_newest) < seq)
        atomic_store(&st->ban_newest, seq);
    STORE_ZERO(pthread_rwlock_unlock(&st->ban_lock));
    return STORE_OK;
}

/*
 * Persisted first (without the ban lock: the disk writer takes the ban lock
 * for reading inside its transaction), then made visible.
 */
int
store_ban_add(struct store *st, struct store_bytes spec, double now)
{
    struct store_ban *b, *dup;
    uint64_t seq, dupseq = 0;
    int r = STORE_OK;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (spec.p == NULL && spec.len > 0)
        return STORE_EINVAL;
    STORE_ZERO(pthread_mutex_lock(&st->ban_add_mtx));
    seq = atomic_load(&st->ban_newest) + 1;
    b = ban_new(seq, now, spec);
    if (b == NULL) {
        STORE_ZERO(pthread_mutex_unlock(&st->ban_add_mtx));
        return STORE_ENOMEM;
    }
    STORE_ZERO(pthread_rwlock_rdlock(&st->ban_lock));
    for (dup = st->bans; dup != NULL; dup = dup->next)
        if (dup->len == b->len && memcmp(dup->spec, b->spec, b->len) == 0)
            dupseq = dup->seq;
    STORE_ZERO(pthread_rwlock_unlock(&st->ban_lock));
    if (st->disk != NULL)
        r = store_disk_ban_put(st, b, dupseq);
    if (r != STORE_OK) {
        free(b);
        STORE_ZERO(pthread_mutex_unlock(&st->ban_add_mtx));
        return r;
    }
    STORE_ZERO(pthread_rwlock_wrlock(&st->ban_lock));
    b->next = st->bans;
    st->bans = b;
    st->ban_count++;
    st->bans_added++;
    dup = ban_take_duplicate(st, b);
    atomic_store(&st->ban_newest, seq);
    STORE_ZERO(pthread_rwlock_unlock(&st->ban_lock));
    STORE_ZERO(pthread_mutex_unlock(&st->ban_add_mtx));
    free(dup);
    return STORE_OK;
}

int
store_ban_iter(struct store *st, store_ban_iter_f *fn, void *arg)
{
    struct store_ban *b;
    int r = 0;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    STORE_ZERO(pthread_rwlock_rdlock(&st->ban_lock));
    for (b = st->bans; b != NULL && r == 0; b = b->next)
        r = fn(arg, (struct store_bytes){ b->spec, b->len }, b->time);
    STORE_ZERO(pthread_rwlock_unlock(&st->ban_lock));
    return r;
}

/* Removes bans with seq <= limit from the list, then from disk. */
static int
bans_retire(struct store *st, uint64_t limit)
{
    struct store_ban **pp, *b, *gone = NULL;
    int r = STORE_OK;

    STORE_ZERO(pthread_mutex_lock(&st->ban_add_mtx));
    STORE_ZERO(pthread_rwlock_wrlock(&st->ban_lock));
    for (pp = &st->bans; *pp != NULL;) {
        b = *pp;
        if (b->seq <= limit) {
            *pp = b->next;
            b->next = gone;
            gone = b;
            st->ban_count--;
            st->bans_retired++;
        } else {
            pp = &b->next;
        }
    }
    STORE_ZERO(pthread_rwlock_unlock(&st->ban_lock));
    while ((b = gone) != NULL) {
        gone = b->next;
        if (st->disk != NULL && r == STORE_OK)
            r = store_disk_ban_del(st, b->seq);
        b->magic = 0;
        free(b);
    }
    STORE_ZERO(pthread_mutex_unlock(&st->ban_add_mtx));
    return r;
}

/* ---- housekeeping ------------------------------------------------------------- */

/* One object of the memory lurker pass (shard lock held). */
static void
lurk_obj(struct store *st, struct store_shard *sh, struct store_obj *o, double now)
{
    int state = atomic_load_explicit(&o->state, memory_order_acquire);
    uint64_t obs = atomic_load(&o->ban_seq), checked;

    if (state == STORE_OBJ_COMPLETE && now >= o->expires) {
        sh->expiries++;
        store_unlink_locked(sh, o);
        return;
    }
    if (obs >= st->hk_mem_target)
        return;
    if (store_obj_meta(o) == NULL) {
        st->hk_mem_incomplete = true; /* busy without headers: check it next pass */
        return;
    }
    if (store_ban_check(st, o, obs, &checked)) {
        atomic_store(&o->invalid, 1);
        sh->invalidations++;
        store_unlink_locked(sh, o);
        return;
    }
    atomic_store(&o->ban_seq, checked);
}

static void
mem_slice(struct store *st, double now, unsigned budget)
{
    unsigned visited = 0;

    if (!st->hk_mem_running) {
        st->hk_mem_running = true;
        st->hk_mem_incomplete = false;
        st->hk_mem_target = atomic_load(&st->ban_newest);
        st->hk_shard = 0;
        st->hk_bucket = 0;
    }
    while (visited < budget) {
        struct store_shard *sh = &st->shards[st->hk_shard];

        STORE_ZERO(pthread_mutex_lock(&sh->mtx));
        while (visited < budget && st->hk_bucket < sh->nbuckets) {
            struct store_head *h, *hnext;

            for (h = sh->buckets[st->hk_bucket]; h != NULL; h = hnext) {
                struct store_obj *o, *next;

                hnext = h->hnext;
                /* h is freed with its last variant: stop touching it then */
                for (o = h->variants; o != NULL; o = next) {
                    bool last = o->vnext == NULL;

                    next = o->vnext;
                    lurk_obj(st, sh, o, now);
                    visited++;
                    if (last)
                        break;
                }
            }
            st->hk_bucket++;
        }
        if (st->hk_bucket >= sh->nbuckets) {
            st->hk_bucket = 0;
            st->hk_shard++;
        }
        STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
        if (st->hk_shard == st->nshards) {
            if (!st->hk_mem_incomplete)
                st->hk_mem_done = st->hk_mem_target;
            st->hk_mem_running = false;
            break;
        }
    }
}

int
store_housekeep(struct store *st, double now, unsigned budget)
{
    uint64_t limit, qmin;
    bool disk_done = false;
    int r = STORE_OK;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (budget == 0)
        budget = 1000;
    STORE_ZERO(pthread_mutex_lock(&st->hk_mtx));
    mem_slice(st, now, budget);
    limit = st->hk_mem_done;
    if (st->disk != NULL) {
        r = store_disk_housekeep(st, now, budget, atomic_load(&st->ban_newest), &disk_done);
        if (st->hk_disk_done < limit)
            limit = st->hk_disk_done;
        qmin = store_disk_queue_min_ban(st);
        if (qmin < limit)
            limit = qmin; /* a queued object was checked up to qmin only */
    }
    if (limit > 0 && r == STORE_OK)
        r = bans_retire(st, limit);
    STORE_ZERO(pthread_mutex_unlock(&st->hk_mtx));
    return r;
}
