/*
 * clview.h -- a view of the cluster: the live members and the
 * consistent-hash ring over them (the shard director's ring, director.h),
 * which names the owner of each cache key.  Pure: built from a list of
 * member ids, no I/O, immutable once built.
 *
 * A member's ring points depend on its id alone, so when one of N members
 * joins or leaves only about 1/N of the keys change owner, and every node
 * that sees the same members names the same owner for a key.
 */
#ifndef AC_CLVIEW_H
#define AC_CLVIEW_H

#include "ac.h"
#include "director.h"

#define CLVIEW_MAX 64               /* members a view holds (more are ignored) */

struct clview {
    unsigned magic;
#define CLVIEW_MAGIC 0x4e1f7a2c
    unsigned n;
    char **id;                      /* member ids, sorted */
    struct dir_ring ring;
};

/*
 * Build v over ids[0..n) (copied; duplicates and ids beyond CLVIEW_MAX
 * dropped; sorted, so the order given does not matter).  n may be 0 (an
 * empty view owns nothing).  Free with clview_free().
 */
void clview_build(struct clview *v, const char *const *ids, unsigned n);
void clview_free(struct clview *v);

/* Index (into v->id) of the member that owns key, skipping members for
 * which usable() says false (NULL: all usable); -1 when none is. */
int clview_owner(const struct clview *v, struct ac_slice key,
                 bool (*usable)(unsigned member, void *arg), void *arg);

/* Index of id in v, or -1. */
int clview_find(const struct clview *v, const char *id);

#endif /* AC_CLVIEW_H */
