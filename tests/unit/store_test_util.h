/*
 * store_test_util.h -- helpers shared by the store's unit tests
 * (test_store.c, test_store_disk.c): key slices, test metadata, putting and
 * reading whole objects.  Header-only, static inline.
 */
#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "store.h"

#define B(s) ((struct store_bytes){ (s), strlen(s) })

/* Iteration scale: STORE_TEST_SCALE=10 for a longer soak, 1 by default. */
static inline int
test_scale(void)
{
    const char *s = getenv("STORE_TEST_SCALE");
    int v = s != NULL ? atoi(s) : 1;

    return v > 0 ? v : 1;
}

static inline bool
match_selector(void *arg, struct store_bytes sel)
{
    const char *want = arg;

    return sel.len == strlen(want) && memcmp(sel.p, want, sel.len) == 0;
}

/* Fills a meta with ttl/grace/keep at `now`, optional selector and tags. */
static inline void
test_meta(struct store_meta *m, double now, double ttl, const char *sel)
{
    memset(m, 0, sizeof(*m));
    m->status = 200;
    m->headers = B("Content-Type: text/plain\r\n");
    m->etag = B("\"e1\"");
    m->last_modified = B("Mon, 23 Nov 2026 09:00:00 GMT");
    m->selector = sel != NULL ? B(sel) : (struct store_bytes){ "", 0 };
    m->times.date = now;
    m->times.insert = now;
    m->times.ttl = ttl;
    m->times.grace = 10;
    m->times.keep = 10;
}

/* Inserts (or replaces) key -> body. */
static inline int
put_obj_meta(struct store *st, const char *key, const char *body, const struct store_meta *m,
             double now, const char *sel)
{
    struct store_lookup lk = { B(key), now, NULL, NULL, STORE_LOOKUP_CREATE | STORE_LOOKUP_FORCE_MISS };
    struct store_obj *o = NULL;
    int r;

    if (sel != NULL) {
        lk.match = match_selector;
        lk.match_arg = (void *)sel;
    }
    r = store_lookup(st, &lk, &o, NULL);
    if (r == STORE_HIT || r == STORE_BUSY) {
        store_obj_release(&o);
        return r;
    }
    if (r != STORE_MISS_CREATED)
        return r;
    r = store_obj_set_meta(o, m);
    if (r == 0)
        r = store_obj_append(o, body, strlen(body));
    if (r == 0)
        r = store_obj_complete(o);
    else
        store_obj_abort(o);
    store_obj_release(&o);
    return r;
}

static inline int
put_obj(struct store *st, const char *key, const char *body, double now, double ttl)
{
    struct store_meta m;

    test_meta(&m, now, ttl, NULL);
    return put_obj_meta(st, key, body, &m, now, NULL);
}

/* Looks key up (no create); returns the result and the body in buf. */
static inline int
get_obj(struct store *st, const char *key, double now, char *buf, size_t bufsz, unsigned flags)
{
    struct store_lookup lk = { B(key), now, NULL, NULL, flags };
    struct store_obj *o = NULL;
    struct store_bytes segs[16];
    size_t n, i, off = 0;
    int r = store_lookup(st, &lk, &o, NULL);

    if (buf != NULL)
        buf[0] = 0;
    if (r == STORE_HIT && buf != NULL) {
        n = store_obj_read(o, 0, segs, 16);
        for (i = 0; i < n && off + segs[i].len < bufsz; i++) {
            memcpy(buf + off, segs[i].p, segs[i].len);
            off += segs[i].len;
        }
        buf[off] = 0;
    }
    store_obj_release(&o);
    return r;
}

#endif /* STORE_TEST_UTIL_H */
