/*
 * director.c -- choosing a backend: the directors of a pool set and the
 * consistent-hash ring (see director.h).  Runs on worker threads; reads
 * health and connection counts through atomics, writes only the round
 * robin and sticky positions (relaxed atomics: a lost update costs a
 * slightly uneven turn, never a wrong answer).
 */
#include "director.h"

#include "pool.h"

#include <stdio.h>
#include <stdlib.h>

#define DIR_MAX_DEPTH 8         /* nesting; the compiler allows only earlier directors */

uint64_t
dir_hash(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    /* splitmix64 finalizer: FNV alone leaves similar keys close together */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

struct ring_pt {
    uint32_t h;
    unsigned member;
};

static int
cmp_pt(const void *a, const void *b)
{
    const struct ring_pt *x = a, *y = b;

    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->member < y->member ? -1 : x->member > y->member;
}

int
dir_ring_build(struct dir_ring *r, const char *const *names, const double *weights, unsigned n)
{
    struct ring_pt *pts;
    unsigned total = 0, k = 0;
    char buf[128];

    memset(r, 0, sizeof(*r));
    if (n == 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        double w = weights != NULL && weights[i] > 0 ? weights[i] : 1.0;
        unsigned np = (unsigned)(w * DIR_RING_POINTS + 0.5);
        total += np ? np : 1;
    }
    pts = ac_xcalloc(total, sizeof(*pts));
    for (unsigned i = 0; i < n; i++) {
        double w = weights != NULL && weights[i] > 0 ? weights[i] : 1.0;
        unsigned np = (unsigned)(w * DIR_RING_POINTS + 0.5);
        if (np == 0)
            np = 1;
        /* The points depend on the member's name only: the same server
         * keeps its arcs when others join or leave. */
        for (unsigned j = 0; j < np; j++) {
            int l = snprintf(buf, sizeof(buf), "%s-%u", names[i], j);
            pts[k].h = (uint32_t)(dir_hash(buf, (size_t)l) >> 32);
            pts[k].member = i;
            k++;
        }
    }
    qsort(pts, total, sizeof(*pts), cmp_pt);
    r->pt = ac_xcalloc(total, sizeof(*r->pt));
    r->member = ac_xcalloc(total, sizeof(*r->member));
    for (unsigned i = 0; i < total; i++) {
        r->pt[i] = pts[i].h;
        r->member[i] = pts[i].member;
    }
    r->n = total;
    free(pts);
    return 0;
}

void
dir_ring_free(struct dir_ring *r)
{
    free(r->pt);
    free(r->member);
    memset(r, 0, sizeof(*r));
}

int
dir_ring_lookup(const struct dir_ring *r, uint64_t h, bool (*usable)(unsigned member, void *arg),
                void *arg)
{
    uint32_t x = (uint32_t)(h >> 32);
    unsigned lo = 0, hi = r->n;

    if (r->n == 0)
        return -1;
    while (lo < hi) {                   /* first point >= x */
        unsigned mid = lo + (hi - lo) / 2;
        if (r->pt[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (unsigned i = 0; i < r->n; i++) {
        unsigned m = r->member[(lo + i) % r->n];
        if (usable == NULL || usable(m, arg))
            return (int)m;
    }
    return -1;
}

/* ------------------------------------------------------------ picking */

static bool ref_usable(struct pool_set *ps, struct vcl_ref ref, const struct dir_pick *pk,
                       int depth);
static struct backend *resolve(struct pool_set *ps, struct vcl_ref ref, const struct dir_pick *pk,
                               int depth);

static bool
be_usable(const struct backend *be, const struct dir_pick *pk)
{
    return !be->none && be != pk->avoid && pool_be_healthy(be, pk->now_ms);
}

/* Can ref give a backend (a usable backend, or a director with one)? */
static bool
ref_usable(struct pool_set *ps, struct vcl_ref ref, const struct dir_pick *pk, int depth)
{
    if (depth > DIR_MAX_DEPTH)
        return false;
    if (ref.kind == VCL_REF_BACKEND)
        return ref.idx < ps->nbe && be_usable(&ps->be[ref.idx], pk);
    if (ref.kind != VCL_REF_DIRECTOR || ref.idx >= ps->ndir)
        return false;
    const struct director *d = &ps->dir[ref.idx];
    for (unsigned i = 0; i < d->n; i++)
        if (ref_usable(ps, d->ref[i], pk, depth + 1))
            return true;
    return false;
}

/* Connections in use under ref (least_connections). */
static unsigned
ref_busy(struct pool_set *ps, struct vcl_ref ref, int depth)
{
    unsigned n = 0;

    if (depth > DIR_MAX_DEPTH)
        return 0;
    if (ref.kind == VCL_REF_BACKEND && ref.idx < ps->nbe)
        return atomic_load_explicit(&ps->be[ref.idx].busy, memory_order_relaxed);
    if (ref.kind != VCL_REF_DIRECTOR || ref.idx >= ps->ndir)
        return 0;
    for (unsigned i = 0; i < ps->dir[ref.idx].n; i++)
        n += ref_busy(ps, ps->dir[ref.idx].ref[i], depth + 1);
    return n;
}

/* A small per-thread generator for random directors (xorshift64*). */
static double
rnd01(void)
{
    static _Thread_local uint64_t st;

    if (st == 0)
        st = dir_hash(&st, sizeof(&st)) ^ pool_now_ms() ^ 0x9e3779b97f4a7c15ull;
    st ^= st >> 12;
    st ^= st << 25;
    st ^= st >> 27;
    return (double)((st * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

struct ring_arg {
    struct pool_set *ps;
    const struct director *d;
    const struct dir_pick *pk;
    int depth;
};

static bool
ring_usable(unsigned member, void *arg)
{
    struct ring_arg *a = arg;

    return ref_usable(a->ps, a->d->ref[member], a->pk, a->depth + 1);
}

static int
pick_member(struct pool_set *ps, struct director *d, const struct dir_pick *pk, int depth)
{
    bool ok[64];
    unsigned n = d->n < 64 ? d->n : 64, nok = 0;

    for (unsigned i = 0; i < n; i++) {
        ok[i] = ref_usable(ps, d->ref[i], pk, depth + 1);
        nok += ok[i];
    }
    if (nok == 0)
        return -1;
    switch (d->type) {
    case VCL_DIR_ROUND_ROBIN: {
        unsigned start = atomic_fetch_add_explicit(&d->rr, 1, memory_order_relaxed);
        for (unsigned i = 0; i < n; i++)
            if (ok[(start + i) % n])
                return (int)((start + i) % n);
        return -1;
    }
    case VCL_DIR_RANDOM: {
        double total = 0, r;
        int last = -1;
        for (unsigned i = 0; i < n; i++)
            if (ok[i])
                total += d->weight[i] > 0 ? d->weight[i] : 0;
        if (total <= 0)
            return -1;
        r = rnd01() * total;
        for (unsigned i = 0; i < n; i++) {
            if (!ok[i] || d->weight[i] <= 0)
                continue;
            last = (int)i;
            r -= d->weight[i];
            if (r < 0)
                return (int)i;
        }
        return last;
    }
    case VCL_DIR_FALLBACK: {
        if (d->sticky) {
            unsigned last = atomic_load_explicit(&d->last, memory_order_relaxed);
            if (last < n && ok[last])
                return (int)last;
        }
        for (unsigned i = 0; i < n; i++) {
            if (ok[i]) {
                atomic_store_explicit(&d->last, i, memory_order_relaxed);
                return (int)i;
            }
        }
        return -1;
    }
    case VCL_DIR_LEAST_CONN: {
        int best = -1;
        double bv = 0;
        unsigned start = atomic_fetch_add_explicit(&d->rr, 1, memory_order_relaxed);
        for (unsigned k = 0; k < n; k++) {
            unsigned i = (start + k) % n;   /* ties go round */
            if (!ok[i])
                continue;
            double w = d->weight[i] > 0 ? d->weight[i] : 1;
            double v = (ref_busy(ps, d->ref[i], depth + 1) + 1) / w;
            if (best < 0 || v < bv) {
                best = (int)i;
                bv = v;
            }
        }
        return best;
    }
    case VCL_DIR_HASH:
    case VCL_DIR_SHARD: {
        struct ring_arg a = { ps, d, pk, depth };
        return dir_ring_lookup(&d->ring, pk->key, ring_usable, &a);
    }
    }
    return -1;
}

static struct backend *
resolve(struct pool_set *ps, struct vcl_ref ref, const struct dir_pick *pk, int depth)
{
    if (depth > DIR_MAX_DEPTH)
        return NULL;
    if (ref.kind == VCL_REF_BACKEND) {
        if (ref.idx >= ps->nbe || !be_usable(&ps->be[ref.idx], pk))
            return NULL;
        return &ps->be[ref.idx];
    }
    if (ref.kind != VCL_REF_DIRECTOR || ref.idx >= ps->ndir)
        return NULL;
    struct director *d = &ps->dir[ref.idx];
    int m = pick_member(ps, d, pk, depth);
    if (m < 0)
        return NULL;
    return resolve(ps, d->ref[m], pk, depth + 1);
}

struct backend *
pool_resolve(struct pool_set *ps, struct vcl_ref ref, const struct dir_pick *pk)
{
    AC_CHECK_OBJ(ps, POOL_SET_MAGIC);
    return resolve(ps, ref, pk, 0);
}

bool
pool_ref_healthy(struct pool_set *ps, struct vcl_ref ref, uint64_t now_ms)
{
    struct dir_pick pk = { 0, NULL, now_ms };

    AC_CHECK_OBJ(ps, POOL_SET_MAGIC);
    return ref_usable(ps, ref, &pk, 0);
}
