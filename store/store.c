/*
 * store.c -- the store handle, the sharded memory index, lookup with request
 * coalescing, S3-FIFO eviction, counters and the admin iterator.
 *
 * Index: nshards shards, each a mutex and a chained hash table of heads
 * (one head per key, holding that key's variants, newest first).  The
 * shard is picked by the key digest, so unrelated keys rarely contend.  A
 * hot hit is: hash the key outside the lock, lock, walk one chain, compare
 * digest + full key, ask the caller's match() per variant, bump a counter
 * and the refcount, unlock.  No allocation.
 */
#include "store.h"
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static store_panic_f *panic_hook; /* process-wide; see store_set_panic_hook() */

void
store_set_panic_hook(store_panic_f *fn)
{
    panic_hook = fn;
}

void
store_panic(const char *func, const char *file, int line, const char *expr)
{
    if (panic_hook != NULL)
        panic_hook(func, file, line, expr);
    else
        fprintf(stderr, "store: assertion failed in %s (%s:%d): %s\n", func, file, line, expr);
    abort();
}

void *
store_xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL)
        store_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

void *
store_xcalloc(size_t n, size_t m)
{
    void *p = calloc(n == 0 ? 1 : n, m == 0 ? 1 : m);

    if (p == NULL)
        store_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

void
store_format_msg(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

const char *
store_strerror(int err)
{
    switch (err) {
    case STORE_OK: return "ok";
    case STORE_ENOMEM: return "out of memory";
    case STORE_EINVAL: return "invalid argument";
    case STORE_ESTATE: return "not allowed in this object state";
    case STORE_EDISK: return "disk tier (LMDB) error";
    case STORE_EVERSION: return "disk store has an incompatible format version";
    case STORE_ETOOBIG: return "limit exceeded";
    case STORE_MISS: return "miss";
    case STORE_HIT: return "hit";
    case STORE_BUSY: return "busy";
    case STORE_MISS_CREATED: return "miss, busy object created";
    default: return "unknown store error";
    }
}

/* ---- hashing ---------------------------------------------------------- */

static inline uint64_t
mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t
rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

/*
 * A 64-bit multiply-mix hash (wyhash-like).  Not cryptographic: keys come
 * from clients, so a collision must never serve the wrong object, which is
 * why full keys are always compared; the seed varies per use.
 */
uint64_t
store_hash64(const void *p, size_t len, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = seed ^ mum(len ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull);
    size_t i = 0;

    for (; i + 8 <= len; i += 8)
        h = mum(h ^ rd64(b + i), 0x8ebc6af09c88c6e3ull) + 0x589965cc75374cc3ull;
    if (i < len) {
        uint64_t t = 0;

        memcpy(&t, b + i, len - i);
        h = mum(h ^ t, 0x1d8e4e27c47d124full);
    }
    return mum(h ^ (h >> 29), 0xa0761d6478bd642full);
}

void
store_digest(const struct store *st, const void *p, size_t len, uint8_t out[STORE_DIGEST_LEN])
{
    uint64_t a, b;

    if (st != NULL && (st->cfg.flags & STORE_CFG_TEST_CONST_DIGEST)) {
        memset(out, 0x5a, STORE_DIGEST_LEN);
        return;
    }
    {
        /* two independent lanes in one pass over the key */
        const uint8_t *k = p;
        size_t i = 0;

        a = 0x243f6a8885a308d3ull ^ mum(len ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull);
        b = 0x13198a2e03707344ull ^ mum(len ^ 0x8ebc6af09c88c6e3ull, 0x589965cc75374cc3ull);
        for (; i + 8 <= len; i += 8) {
            uint64_t w = rd64(k + i);

            a = mum(a ^ w, 0x8ebc6af09c88c6e3ull) + 0x589965cc75374cc3ull;
            b = mum(b ^ w, 0xe7037ed1a0b428dbull) + 0xa0761d6478bd642full;
        }
        if (i < len) {
            uint64_t t = 0;

            memcpy(&t, k + i, len - i);
            a = mum(a ^ t, 0x1d8e4e27c47d124full);
            b = mum(b ^ t, 0x9e3779b97f4a7c15ull);
        }
        a = mum(a ^ (a >> 29), 0xa0761d6478bd642full);
        b = mum(b ^ (b >> 31), 0xe7037ed1a0b428dbull);
    }
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

struct store_shard *
store_shard_of(struct store *st, const uint8_t digest[STORE_DIGEST_LEN])
{
    uint32_t x;

    memcpy(&x, digest, 4);
    return &st->shards[x & st->shard_mask];
}

static inline size_t
bucket_of(const struct store_shard *sh, const uint8_t digest[STORE_DIGEST_LEN])
{
    uint64_t x;

    memcpy(&x, digest + 8, 8);
    return (size_t)(x & (sh->nbuckets - 1));
}

/* ---- memory accounting ------------------------------------------------- */

void
store_mem_charge(struct store *st, size_t n)
{
    atomic_fetch_add_explicit(&st->mem_used, n, memory_order_relaxed);
}

void
store_mem_uncharge(struct store *st, size_t n)
{
    size_t old = atomic_fetch_sub_explicit(&st->mem_used, n, memory_order_relaxed);

    STORE_ASSERT(old >= n);
}

static inline bool
over_limit(struct store *st)
{
    return atomic_load_explicit(&st->mem_used, memory_order_relaxed) > st->mem_limit;
}

/* ---- S3-FIFO queues (shard lock) ------------------------------------------ */

static void
q_remove(struct store_shard *sh, struct store_obj *o)
{
    struct store_obj **head, **tail;

    if (o->queue == Q_NONE)
        return;
    if (o->queue == Q_SMALL) {
        head = &sh->small_head;
        tail = &sh->small_tail;
        sh->small_bytes -= o->qcharge;
    } else {
        head = &sh->main_head;
        tail = &sh->main_tail;
        sh->main_bytes -= o->qcharge;
        sh->main_count--;
    }
    if (o->qprev != NULL)
        o->qprev->qnext = o->qnext;
    else
        *head = o->qnext;
    if (o->qnext != NULL)
        o->qnext->qprev = o->qprev;
    else
        *tail = o->qprev;
    o->qnext = o->qprev = NULL;
    o->queue = Q_NONE;
}

static void
q_push(struct store_shard *sh, struct store_obj *o, int q)
{
    struct store_obj **head, **tail;

    STORE_ASSERT(o->queue == Q_NONE);
    if (q == Q_SMALL) {
        head = &sh->small_head;
        tail = &sh->small_tail;
        sh->small_bytes += o->qcharge;
    } else {
        head = &sh->main_head;
        tail = &sh->main_tail;
        sh->main_bytes += o->qcharge;
        sh->main_count++;
    }
    o->qprev = NULL;
    o->qnext = *head;
    if (*head != NULL)
        (*head)->qprev = o;
    else
        *tail = o;
    *head = o;
    o->queue = (uint8_t)q;
}

/*
 * Ghost queue of S3-FIFO: fingerprints of keys recently evicted from the
 * small queue, so that a key coming back soon goes straight to main.
 * Approximate (a direct-mapped table stamped with a clock): an entry
 * counts while fewer than main_count + 64 evictions happened since.
 */
static void
ghost_add(struct store_shard *sh, const uint8_t digest[STORE_DIGEST_LEN])
{
    uint32_t fp;

    memcpy(&fp, digest + 4, 4);
    sh->ghost[fp & sh->ghost_mask] = ((uint64_t)fp << 32) | sh->ghost_clock++;
}

static bool
ghost_has(struct store_shard *sh, const uint8_t digest[STORE_DIGEST_LEN])
{
    uint32_t fp;
    uint64_t e;

    memcpy(&fp, digest + 4, 4);
    e = sh->ghost[fp & sh->ghost_mask];
    return e != 0 && (uint32_t)(e >> 32) == fp &&
           (uint32_t)(sh->ghost_clock - (uint32_t)e) <= sh->main_count + 64;
}

/*
 * Evicts one object from the shard (S3-FIFO), returns false when there is
 * nothing to evict.  Small queue (10% of the shard's bytes): an object hit
 * while there moves to main, others leave (remembered in the ghost).  Main:
 * CLOCK-like, a hit object gets its counter decremented and another round.
 * Busy objects are never queued; objects held by readers are unlinked and
 * freed by their last release.
 */
static bool
evict_one_locked(struct store *st, struct store_shard *sh)
{
    struct store_obj *o;
    int steps;

    (void)st;
    for (steps = 0; steps < 256; steps++) {
        size_t total = sh->small_bytes + sh->main_bytes;

        if (sh->small_tail == NULL && sh->main_tail == NULL)
            return false;
        if (sh->small_tail != NULL && (sh->small_bytes * 10 >= total || sh->main_tail == NULL)) {
            o = sh->small_tail;
            q_remove(sh, o);
            if (o->freq > 0) {
                o->freq = 0;
                q_push(sh, o, Q_MAIN);
                continue;
            }
            ghost_add(sh, o->digest);
        } else {
            o = sh->main_tail;
            q_remove(sh, o);
            if (o->freq > 0) {
                o->freq--;
                q_push(sh, o, Q_MAIN);
                continue;
            }
        }
        sh->evictions++;
        store_unlink_locked(sh, o);
        return true;
    }
    return true; /* made progress (aged counters) */
}

/*
 * Brings memory back under the limit by evicting, starting with the shard
 * that just grew (hint) and moving on to the others if it runs dry.
 */
void
store_mem_reclaim(struct store *st, unsigned hint)
{
    unsigned i;

    for (i = 0; i < st->nshards && over_limit(st); i++) {
        struct store_shard *sh = &st->shards[(hint + i) & st->shard_mask];

        STORE_ZERO(pthread_mutex_lock(&sh->mtx));
        while (over_limit(st) && evict_one_locked(st, sh))
            ;
        STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    }
}

/* ---- index ------------------------------------------------------------- */

struct store_head *
store_head_find(struct store_shard *sh, const uint8_t digest[STORE_DIGEST_LEN], struct store_bytes key)
{
    struct store_head *h;

    for (h = sh->buckets[bucket_of(sh, digest)]; h != NULL; h = h->hnext) {
        if (memcmp(h->digest, digest, STORE_DIGEST_LEN) == 0 && h->keylen == key.len &&
            (key.len == 0 || memcmp(h->key, key.p, key.len) == 0))
            return h;
    }
    return NULL;
}

static void
table_grow(struct store *st, struct store_shard *sh)
{
    size_t n = sh->nbuckets * 2, i;
    struct store_head **nb = calloc(n, sizeof(*nb));
    struct store_head *h, *next;

    if (nb == NULL)
        return; /* keep the longer chains */
    for (i = 0; i < sh->nbuckets; i++) {
        for (h = sh->buckets[i]; h != NULL; h = next) {
            uint64_t x;

            next = h->hnext;
            memcpy(&x, h->digest + 8, 8);
            h->hnext = nb[x & (n - 1)];
            nb[x & (n - 1)] = h;
        }
    }
    free(sh->buckets);
    store_mem_charge(st, sh->nbuckets * sizeof(*nb)); /* n = 2 * nbuckets */
    sh->buckets = nb;
    sh->nbuckets = n;
}

static struct store_head *
head_get(struct store *st, struct store_shard *sh, const uint8_t digest[STORE_DIGEST_LEN],
         struct store_bytes key)
{
    struct store_head *h = store_head_find(sh, digest, key);
    size_t b;

    if (h != NULL)
        return h;
    if (sh->nheads >= sh->nbuckets * 2)
        table_grow(st, sh);
    h = malloc(sizeof(*h) + key.len);
    if (h == NULL)
        return NULL;
    h->magic = STORE_HEAD_MAGIC;
    h->variants = NULL;
    memcpy(h->digest, digest, STORE_DIGEST_LEN);
    h->keylen = key.len;
    if (key.len > 0)
        memcpy(h->key, key.p, key.len);
    h->charge = sizeof(*h) + key.len;
    store_mem_charge(st, h->charge);
    b = bucket_of(sh, digest);
    h->hnext = sh->buckets[b];
    sh->buckets[b] = h;
    sh->nheads++;
    return h;
}

static void
head_free(struct store *st, struct store_shard *sh, struct store_head *h)
{
    struct store_head **pp;

    STORE_ASSERT(h->variants == NULL);
    for (pp = &sh->buckets[bucket_of(sh, h->digest)]; *pp != h; pp = &(*pp)->hnext)
        STORE_NOTNULL(*pp);
    *pp = h->hnext;
    sh->nheads--;
    store_mem_uncharge(st, h->charge);
    h->magic = 0;
    free(h);
}

static void
head_link(struct store_shard *sh, struct store_head *h, struct store_obj *o)
{
    STORE_ASSERT(o->head == NULL);
    o->head = h;
    o->vprev = NULL;
    o->vnext = h->variants;
    if (h->variants != NULL)
        h->variants->vprev = o;
    h->variants = o;
    sh->objects++;
}

void
store_unlink_locked(struct store_shard *sh, struct store_obj *o)
{
    struct store_head *h = o->head;
    struct store_obj *op = o;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (h == NULL)
        return;
    q_remove(sh, o);
    store_tags_unlink(o->st, o);
    if (o->vprev != NULL)
        o->vprev->vnext = o->vnext;
    else
        h->variants = o->vnext;
    if (o->vnext != NULL)
        o->vnext->vprev = o->vprev;
    o->vnext = o->vprev = NULL;
    o->head = NULL;
    sh->objects--;
    if (h->variants == NULL)
        head_free(o->st, sh, h);
    store_obj_release(&op); /* the index reference */
}

/* Bytes an object holds: what the S3-FIFO queues weigh. */
static size_t
obj_weight(const struct store_obj *o)
{
    const struct store_mblock *m = store_obj_meta(o);
    const struct store_body *b = atomic_load_explicit(&((struct store_obj *)o)->body,
                                                      memory_order_acquire);

    return o->charge + (m != NULL ? m->charge : 0) +
           (b != NULL ? atomic_load_explicit(&((struct store_body *)b)->charge,
                                             memory_order_relaxed)
                      : 0);
}

/*
 * A complete object enters the eviction queues (shard lock).  It replaces
 * complete variants with the same selector: those leave the index, their
 * readers keep them.
 */
static void
index_complete_locked(struct store *st, struct store_shard *sh, struct store_obj *o)
{
    const struct store_mblock *m = store_obj_meta(o);
    struct store_obj *v, *next;

    STORE_NOTNULL(o->head);
    for (v = o->head->variants; v != NULL; v = next) {
        const struct store_mblock *vm;

        next = v->vnext;
        if (v == o || atomic_load_explicit(&v->state, memory_order_relaxed) != STORE_OBJ_COMPLETE)
            continue;
        vm = store_obj_meta(v);
        if (store_bytes_eq(vm->selector, m->selector))
            store_unlink_locked(sh, v);
    }
    o->expires = store_obj_expiry(o); /* lookups skip the metadata block */
    o->qcharge = obj_weight(o);
    o->freq = 0;
    q_push(sh, o, ghost_has(sh, o->digest) ? Q_MAIN : Q_SMALL);
    sh->inserts++;
    (void)st;
}

/* ---- lookup ------------------------------------------------------------- */

struct found {
    struct store_head *head;
    struct store_obj *best; /* matching complete object */
    struct store_obj *busy; /* busy object to wait on */
};

static inline bool
variant_matches(const struct store_lookup *lk, const struct store_mblock *m)
{
    return lk->match == NULL || lk->match(lk->match_arg, m->selector);
}

/* Shard lock held.  Drops expired and banned variants on the way. */
static void
lookup_locked(struct store *st, struct store_shard *sh, const uint8_t *digest,
              const struct store_lookup *lk, struct found *f)
{
    struct store_obj *o, *next;
    struct store_obj *busy_unknown = NULL, *busy_match = NULL;
    uint64_t newest_ban = atomic_load_explicit(&st->ban_newest, memory_order_acquire);

    memset(f, 0, sizeof(*f));
    f->head = store_head_find(sh, digest, lk->key);
    if (f->head == NULL)
        return;
    for (o = f->head->variants; o != NULL; o = next) {
        struct store_mblock *m = store_obj_meta(o);
        int state = atomic_load_explicit(&o->state, memory_order_acquire);
        uint64_t obs;
        bool only;

        next = o->vnext;
        if (state == STORE_OBJ_BUSY) {
            if (m == NULL) {
                if (busy_unknown == NULL)
                    busy_unknown = o;
            } else if (busy_match == NULL && variant_matches(lk, m)) {
                busy_match = o;
            }
            continue;
        }
        /* unlinking the only variant frees the head */
        only = f->head->variants == o && o->vnext == NULL;
        if (lk->now >= o->expires) {
            sh->expiries++;
            store_unlink_locked(sh, o);
            if (only)
                f->head = NULL;
            continue;
        }
        obs = atomic_load_explicit(&o->ban_seq, memory_order_relaxed);
        if (obs < newest_ban) {
            uint64_t checked;

            if (store_ban_check(st, o, obs, &checked)) {
                atomic_store(&o->invalid, 1);
                sh->invalidations++;
                store_unlink_locked(sh, o);
                if (only)
                    f->head = NULL;
                continue;
            }
            atomic_store_explicit(&o->ban_seq, checked, memory_order_relaxed);
        }
        if (!(lk->flags & STORE_LOOKUP_FORCE_MISS) && variant_matches(lk, m)) {
            f->best = o;
            break;
        }
    }
    f->busy = busy_match != NULL ? busy_match : busy_unknown;
}

/* Creates a busy object on the key (shard lock held). */
static struct store_obj *
create_busy_locked(struct store *st, struct store_shard *sh, const uint8_t *digest,
                   const struct store_lookup *lk, struct store_head *h)
{
    struct store_obj *o;

    if (h == NULL)
        h = head_get(st, sh, digest, lk->key);
    if (h == NULL)
        return NULL;
    o = store_obj_new(st, digest, lk->key);
    if (o == NULL) {
        if (h->variants == NULL)
            head_free(st, sh, h);
        return NULL;
    }
    atomic_store_explicit(&o->ban_seq, atomic_load(&st->ban_newest), memory_order_relaxed);
    store_obj_ref(o); /* index reference + the caller's */
    head_link(sh, h, o);
    return o;
}

/* Serves what lookup_locked() found, if anything (shard lock held). */
static int
serve_found(struct store *st, struct store_shard *sh, const uint8_t *digest,
            const struct store_lookup *lk, struct found *f, struct store_obj **objp,
            struct store_obj **busyp)
{
    if (f->best != NULL) {
        struct store_obj *o = f->best;

        sh->hits++;
        if (o->freq < 3)
            o->freq++;
        atomic_fetch_add_explicit(&o->hits, 1, memory_order_relaxed);
        *objp = store_obj_ref(o);
        if ((lk->flags & STORE_LOOKUP_REFRESH) && busyp != NULL && f->busy == NULL &&
            !(store_obj_meta(o)->flags & STORE_OBJ_F_HFM) &&
            store_obj_freshness(o, lk->now) != STORE_FRESH)
            *busyp = create_busy_locked(st, sh, digest, lk, f->head);
        return STORE_HIT;
    }
    if (f->busy != NULL) {
        sh->busy++;
        *objp = store_obj_ref(f->busy);
        return STORE_BUSY;
    }
    return 0;
}

static int
miss_locked(struct store *st, struct store_shard *sh, const uint8_t *digest,
            const struct store_lookup *lk, struct found *f, struct store_obj **objp)
{
    sh->misses++;
    if (!(lk->flags & STORE_LOOKUP_CREATE))
        return STORE_MISS;
    *objp = create_busy_locked(st, sh, digest, lk, f->head);
    return *objp != NULL ? STORE_MISS_CREATED : STORE_ENOMEM;
}

int
store_lookup(struct store *st, const struct store_lookup *lk, struct store_obj **objp,
             struct store_obj **busyp)
{
    uint8_t digest[STORE_DIGEST_LEN];
    struct store_shard *sh;
    struct store_obj *dobj = NULL;
    struct found f;
    int r;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (lk == NULL || objp == NULL || (lk->key.p == NULL && lk->key.len > 0))
        return STORE_EINVAL;
    *objp = NULL;
    if (busyp != NULL)
        *busyp = NULL;
    store_digest(st, lk->key.p, lk->key.len, digest);
    sh = store_shard_of(st, digest);

    STORE_ZERO(pthread_mutex_lock(&sh->mtx));
    sh->lookups++;
    lookup_locked(st, sh, digest, lk, &f);
    r = serve_found(st, sh, digest, lk, &f, objp, busyp);
    if (r == 0 &&
        (st->disk == NULL || (lk->flags & (STORE_LOOKUP_MEM_ONLY | STORE_LOOKUP_FORCE_MISS))))
        r = miss_locked(st, sh, digest, lk, &f, objp);
    STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    if (r != 0)
        return r;

    /*
     * Memory miss with a disk tier: read the disk without the shard lock
     * (the read copies the record out and ends its transaction), then
     * re-check memory under the lock, since another thread may have
     * promoted it or started a fetch meanwhile: the busy-object creation
     * stays atomic, so coalescing holds.
     */
    r = store_disk_lookup(st, digest, lk, &dobj);
    if (r < 0)
        dobj = NULL;
    STORE_ZERO(pthread_mutex_lock(&sh->mtx));
    lookup_locked(st, sh, digest, lk, &f);
    r = serve_found(st, sh, digest, lk, &f, objp, busyp);
    if (r == 0 && dobj != NULL) {
        struct store_head *h = f.head != NULL ? f.head : head_get(st, sh, digest, lk->key);

        if (h != NULL) {
            head_link(sh, h, dobj); /* dobj's reference becomes the index's */
            index_complete_locked(st, sh, dobj);
            store_tags_link(st, dobj);
            f.head = h;
            f.best = dobj;
            f.busy = NULL;
            dobj = NULL;
            sh->misses++; /* a memory miss served by the disk tier */
            r = serve_found(st, sh, digest, lk, &f, objp, busyp);
            sh->hits--;
        }
    }
    if (r == 0)
        r = miss_locked(st, sh, digest, lk, &f, objp);
    STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    store_obj_release(&dobj);
    if (r == STORE_HIT)
        store_mem_reclaim(st, (unsigned)(sh - st->shards));
    return r;
}

/* ---- completion (called from store_obj.c) -------------------------------- */

/*
 * Completes o in the index: ban check (a ban added while it was fetched
 * applies to it), replacement of same-selector variants, eviction queue.
 * Returns true when o stays indexed (and may go to disk).
 */
/*
 * Is o (still) in the index?  With enqueue_for_disk, a linked object is
 * queued for the disk tier under the same shard lock, so a newer object
 * that replaces it (which completes, and then queues itself, under this
 * lock too) is always written after it: the disk never ends up with the
 * older one.
 */
bool
store_index_linked(struct store_obj *o, bool enqueue_for_disk)
{
    struct store_shard *sh = store_shard_of(o->st, o->digest);
    bool linked;

    STORE_ZERO(pthread_mutex_lock(&sh->mtx));
    linked = o->head != NULL && !atomic_load(&o->invalid);
    if (linked && enqueue_for_disk && o->st->disk != NULL)
        store_disk_enqueue(o->st, o);
    STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    return linked;
}

bool
store_index_complete(struct store_obj *o)
{
    struct store *st = o->st;
    struct store_shard *sh = store_shard_of(st, o->digest);
    bool linked = false;

    STORE_ZERO(pthread_mutex_lock(&sh->mtx));
    if (o->head != NULL) {
        uint64_t obs = atomic_load(&o->ban_seq), checked;

        if (obs < atomic_load(&st->ban_newest) && store_ban_check(st, o, obs, &checked)) {
            atomic_store(&o->invalid, 1);
            sh->invalidations++;
            atomic_store_explicit(&o->state, STORE_OBJ_COMPLETE, memory_order_release);
            store_unlink_locked(sh, o);
        } else {
            if (obs < atomic_load(&st->ban_newest))
                atomic_store(&o->ban_seq, checked);
            atomic_store_explicit(&o->state, STORE_OBJ_COMPLETE, memory_order_release);
            index_complete_locked(st, sh, o);
            linked = true;
        }
    } else {
        atomic_store_explicit(&o->state, STORE_OBJ_COMPLETE, memory_order_release);
    }
    STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    return linked;
}

/* Unlinks a busy object being aborted. */
void
store_index_abort(struct store_obj *o)
{
    struct store_shard *sh = store_shard_of(o->st, o->digest);

    STORE_ZERO(pthread_mutex_lock(&sh->mtx));
    atomic_store_explicit(&o->state, STORE_OBJ_ABORTED, memory_order_release);
    store_unlink_locked(sh, o);
    STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
}

/* Links the tags of a busy object when its metadata arrives. */
void
store_index_meta_set(struct store_obj *o)
{
    struct store_shard *sh = store_shard_of(o->st, o->digest);

    STORE_ZERO(pthread_mutex_lock(&sh->mtx));
    if (o->head != NULL)
        store_tags_link(o->st, o);
    STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
}

/* ---- open / close --------------------------------------------------------- */

void
store_config_init(struct store_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

static void
shards_free(struct store *st)
{
    unsigned i;

    for (i = 0; i < st->nshards; i++) {
        struct store_shard *sh = &st->shards[i];
        size_t b;

        STORE_ZERO(pthread_mutex_lock(&sh->mtx));
        for (b = 0; sh->buckets != NULL && b < sh->nbuckets; b++) {
            while (sh->buckets[b] != NULL) {
                struct store_head *h = sh->buckets[b];

                while (h->variants != NULL && h->variants->vnext != NULL)
                    store_unlink_locked(sh, h->variants);
                store_unlink_locked(sh, h->variants); /* frees h */
            }
        }
        STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
        store_mem_uncharge(st, sh->nbuckets * sizeof(*sh->buckets) +
                                   (sh->ghost_mask + 1) * sizeof(*sh->ghost));
        free(sh->buckets);
        free(sh->ghost);
        STORE_ZERO(pthread_mutex_destroy(&sh->mtx));
    }
    free(st->shards);
}

int
store_open(const struct store_config *cfg, struct store **stp)
{
    struct store *st;
    pthread_mutexattr_t madapt;
    unsigned i;
    size_t est, gsz, tmask;
    int r;

    if (cfg == NULL || stp == NULL)
        return STORE_EINVAL;
    *stp = NULL;
    if (cfg->shards != 0 && (cfg->shards & (cfg->shards - 1)) != 0) {
        store_format_msg(cfg->errbuf, cfg->errbuf_len, "shards (%u) must be a power of two",
                         cfg->shards);
        return STORE_EINVAL;
    }
    st = store_xcalloc(1, sizeof(*st));
    st->magic = STORE_MAGIC;
    st->cfg = *cfg;
    st->cfg.disk_path = NULL;
    st->cfg.errbuf = NULL;
    st->nshards = cfg->shards != 0 ? cfg->shards : 64;
    st->shard_mask = st->nshards - 1;
    st->mem_limit = cfg->mem_limit != 0 ? cfg->mem_limit : (size_t)256 << 20;
    if (st->cfg.disk_max_size == 0)
        st->cfg.disk_max_size = (size_t)8 << 20;
    if (st->cfg.disk_queue_max == 0)
        st->cfg.disk_queue_max = 8192;
    st->shards = store_xcalloc(st->nshards, sizeof(*st->shards));
    /* critical sections are a few dozen instructions: spin briefly before
     * sleeping in the kernel (glibc adaptive mutex) */
    STORE_ZERO(pthread_mutexattr_init(&madapt));
    STORE_ZERO(pthread_mutexattr_settype(&madapt, PTHREAD_MUTEX_ADAPTIVE_NP));
    /* ghost table: about twice the objects a shard holds at 512 bytes each */
    est = st->mem_limit / 1024 / st->nshards * 2;
    for (gsz = 64; gsz < est && gsz < ((size_t)1 << 16); gsz *= 2)
        ;
    for (i = 0; i < st->nshards; i++) {
        struct store_shard *sh = &st->shards[i];

        STORE_ZERO(pthread_mutex_init(&sh->mtx, &madapt));
        sh->nbuckets = 64;
        sh->buckets = store_xcalloc(sh->nbuckets, sizeof(*sh->buckets));
        sh->ghost = store_xcalloc(gsz, sizeof(*sh->ghost));
        /* the tables count against the limit too */
        store_mem_charge(st, sh->nbuckets * sizeof(*sh->buckets) + gsz * sizeof(*sh->ghost));
        sh->ghost_mask = gsz - 1;
        sh->ghost_clock = 1;
    }
    for (i = 0; i < STORE_WSTRIPES; i++) {
        STORE_ZERO(pthread_mutex_init(&st->wlocks[i], NULL));
        STORE_ZERO(pthread_cond_init(&st->wconds[i], NULL));
    }
    /* tag buckets: about one per 4 KiB of limit, 16..4096 per stripe */
    for (tmask = 16; tmask < st->mem_limit / 4096 / STORE_TSTRIPES && tmask < 4096; tmask *= 2)
        ;
    tmask--;
    for (i = 0; i < STORE_TSTRIPES; i++) {
        STORE_ZERO(pthread_mutex_init(&st->tags[i].mtx, NULL));
        st->tags[i].mask = tmask;
        st->tags[i].buckets = store_xcalloc(st->tags[i].mask + 1, sizeof(*st->tags[i].buckets));
        store_mem_charge(st, (st->tags[i].mask + 1) * sizeof(*st->tags[i].buckets));
    }
    STORE_ZERO(pthread_mutexattr_destroy(&madapt));
    STORE_ZERO(pthread_mutex_init(&st->hk_mtx, NULL));
    r = store_bans_init(st);
    if (r == 0 && cfg->disk_path != NULL)
        r = store_disk_open(st, cfg);
    if (r != 0) {
        struct store *tmp = st;

        store_close(&tmp);
        return r;
    }
    *stp = st;
    return STORE_OK;
}

void
store_close(struct store **stp)
{
    struct store *st;
    unsigned i;

    if (stp == NULL || *stp == NULL)
        return;
    st = *stp;
    *stp = NULL;
    STORE_CHECK_OBJ(st, STORE_MAGIC);
    if (st->disk != NULL)
        store_disk_close(st); /* drains the write-behind queue first */
    shards_free(st);
    for (i = 0; i < STORE_TSTRIPES; i++) {
        STORE_ZERO(pthread_mutex_destroy(&st->tags[i].mtx));
        store_mem_uncharge(st, (st->tags[i].mask + 1) * sizeof(*st->tags[i].buckets));
        free(st->tags[i].buckets);
    }
    /* every object is gone once callers released theirs: only that can
     * bring the accounted bytes back to zero */
    STORE_ASSERT(atomic_load(&st->mem_used) == 0);
    for (i = 0; i < STORE_WSTRIPES; i++) {
        STORE_ZERO(pthread_mutex_destroy(&st->wlocks[i]));
        STORE_ZERO(pthread_cond_destroy(&st->wconds[i]));
    }
    store_bans_free(st);
    STORE_ZERO(pthread_mutex_destroy(&st->hk_mtx));
    st->magic = 0;
    free(st);
}

/* ---- introspection -------------------------------------------------------- */

void
store_stats(struct store *st, struct store_stats *out)
{
    unsigned i;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    memset(out, 0, sizeof(*out));
    for (i = 0; i < st->nshards; i++) {
        struct store_shard *sh = &st->shards[i];

        STORE_ZERO(pthread_mutex_lock(&sh->mtx));
        out->mem_lookups += sh->lookups;
        out->mem_hits += sh->hits;
        out->mem_busy += sh->busy;
        out->mem_misses += sh->misses;
        out->mem_inserts += sh->inserts;
        out->mem_objects += sh->objects;
        out->mem_evictions += sh->evictions;
        out->mem_expiries += sh->expiries;
        out->mem_invalidations += sh->invalidations;
        STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    }
    out->mem_bytes = atomic_load(&st->mem_used);
    out->mem_limit = st->mem_limit;
    STORE_ZERO(pthread_rwlock_rdlock(&st->ban_lock));
    out->bans = st->ban_count;
    out->bans_added = st->bans_added;
    out->bans_retired = st->bans_retired;
    STORE_ZERO(pthread_rwlock_unlock(&st->ban_lock));
    if (st->disk != NULL)
        store_disk_stats(st, out);
}

int
store_iter(struct store *st, store_iter_f *fn, void *arg)
{
    unsigned i;
    int r = 0;

    STORE_CHECK_OBJ(st, STORE_MAGIC);
    for (i = 0; i < st->nshards && r == 0; i++) {
        struct store_shard *sh = &st->shards[i];
        size_t b;

        STORE_ZERO(pthread_mutex_lock(&sh->mtx));
        for (b = 0; b < sh->nbuckets && r == 0; b++) {
            struct store_head *h;

            for (h = sh->buckets[b]; h != NULL && r == 0; h = h->hnext) {
                struct store_obj *o;

                for (o = h->variants; o != NULL && r == 0; o = o->vnext)
                    r = fn(arg, o);
            }
        }
        STORE_ZERO(pthread_mutex_unlock(&sh->mtx));
    }
    return r;
}
