/*
 * director.h -- directors: how a request picks one backend of a pool.
 *
 * Every director skips sick backends (and, for a retry, the server that
 * just failed).  Members may be directors declared earlier (nesting).
 *
 *   round_robin        next healthy member in turn
 *   random             weighted random among healthy members
 *   fallback           first healthy member (sticky: stay on the last pick
 *                      while it is healthy)
 *   least_connections  fewest connections in use per unit of weight
 *   hash, shard        consistent hashing on a stable ring (ketama style:
 *                      each member owns DIR_RING_POINTS x weight points
 *                      placed by hashing its name), so removing one of N
 *                      members, or its going sick, moves only the keys it
 *                      owned (about 1/N); the key is the cache key unless
 *                      .backend(key) names one.
 */
#ifndef AC_DIRECTOR_H
#define AC_DIRECTOR_H

#include "ac.h"

#include <stdatomic.h>

#include "vcl.h"

#define DIR_RING_POINTS 160     /* points per member of weight 1 */

/* A consistent-hash ring: n points sorted by hash, each owned by a member. */
struct dir_ring {
    uint32_t *pt;
    unsigned *member;
    unsigned n;
};

struct director {
    unsigned magic;
#define DIRECTOR_MAGIC 0x3c9a51e7
    char name[64];
    enum vcl_director_type type;
    bool sticky;
    unsigned n;
    struct vcl_ref *ref;        /* members */
    double *weight;
    atomic_uint rr;             /* round robin position */
    atomic_uint last;           /* fallback sticky: the member last chosen */
    struct dir_ring ring;       /* hash, shard */
};

/* What a pick needs besides the director. */
struct dir_pick {
    uint64_t key;               /* dir_hash() of the key, for hash/shard */
    const void *avoid;          /* a backend not to choose (retry), or NULL */
    uint64_t now_ms;            /* pool_now_ms() */
};

/* A 64-bit hash of bytes (FNV-1a, then a mixer so close keys spread). */
uint64_t dir_hash(const void *p, size_t len);

/* Build a ring for n members named names[i] with weights[i] (<= 0: 1).
 * 0, or -1 when n is 0.  Free with dir_ring_free(). */
int dir_ring_build(struct dir_ring *r, const char *const *names, const double *weights,
                   unsigned n);
void dir_ring_free(struct dir_ring *r);
/* The member owning key hash h: the first point clockwise from h whose
 * member is usable (usable NULL: every member).  -1 when none is. */
int dir_ring_lookup(const struct dir_ring *r, uint64_t h, bool (*usable)(unsigned member, void *arg),
                    void *arg);

#endif /* AC_DIRECTOR_H */
