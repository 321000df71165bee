/*
 * bans.c -- bans between the HTTP side, the policy and the store.
 *
 * The store records a ban as opaque bytes: accel gives it the ban's
 * canonical text (ban_text()), so identical bans deduplicate in the store,
 * and parses each distinct text once into a table that lives until exit.
 * The store calls bans_store_match() with its own locks held, for objects
 * older than a ban: at lookup, and from its background pass.  Objects carry
 * the URL and Host they were fetched for (cache_block_seal()), so bans on
 * req.url and req.http.host are evaluated on stored objects too.
 */
#include "bans.h"

#include "ban.h"
#include "cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct bans_entry {
    struct bans_entry *next;
    struct ban *ban;            /* NULL: the text did not parse (never matches) */
    size_t len;
    char text[];
};

/* Process-wide: the parsed bans (see docs/architecture.md, "Globals"). */
static pthread_mutex_t bans_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct bans_entry *bans_head;
/* Who hears of bans accepted here (the cluster bus); set before workers. */
static bans_added_f *added_hook;

void
bans_set_added_hook(bans_added_f *fn)
{
    added_hook = fn;
}

static const struct ban *
lookup(struct store_bytes spec)
{
    struct bans_entry *e;
    const struct ban *b = NULL;

    AC_ZERO(pthread_mutex_lock(&bans_mtx));
    for (e = bans_head; e != NULL; e = e->next)
        if (e->len == spec.len && memcmp(e->text, spec.p, spec.len) == 0)
            break;
    if (e == NULL) {
        char err[256];
        e = ac_xmalloc(sizeof(*e) + spec.len);
        e->len = spec.len;
        memcpy(e->text, spec.p, spec.len);
        e->ban = NULL;
        /* a record from disk that no longer parses matches nothing */
        (void)ban_parse(AC_SLICE(spec.p, spec.len), &e->ban, err, sizeof(err));
        e->next = bans_head;
        bans_head = e;
    }
    b = e->ban;
    AC_ZERO(pthread_mutex_unlock(&bans_mtx));
    return b;                   /* immutable and never freed before bans_fini() */
}

static int
add(struct store *st, struct ac_slice expr, double now, struct ac_buf *canon, char *err,
    size_t errlen, bool publish)
{
    struct ban *b = NULL;
    const char *t;
    int r;

    if (ban_parse(expr, &b, err, errlen) != 0)
        return -1;
    t = ban_text(b);
    r = store_ban_add(st, (struct store_bytes){ t, strlen(t) }, now);
    if (canon != NULL)
        ac_buf_catstr(canon, t);
    /* accepted here: the other members of a cluster get it too */
    if (r == STORE_OK && publish && added_hook != NULL)
        added_hook(AC_SLICE(t, strlen(t)));
    ban_free(&b);
    if (r != STORE_OK) {
        snprintf(err, errlen, "the store could not record the ban: %s", store_strerror(r));
        return -1;
    }
    return 0;
}

int
bans_add(struct store *st, struct ac_slice expr, double now, struct ac_buf *canon, char *err,
         size_t errlen)
{
    return add(st, expr, now, canon, err, errlen, true);
}

int
bans_add_local(struct store *st, struct ac_slice expr, double now, struct ac_buf *canon,
               char *err, size_t errlen)
{
    return add(st, expr, now, canon, err, errlen, false);
}

static bool
obj_header(void *arg, struct ac_slice name, struct ac_slice *value)
{
    return cache_block_find(*(const struct ac_slice *)arg, name, value);
}

bool
bans_store_match(void *arg, struct store_bytes spec, const struct store_obj *obj)
{
    const struct ban *b = lookup(spec);
    struct store_bytes sb = store_obj_headers(obj);
    struct ac_slice block = AC_SLICE(sb.p, sb.len);
    struct ban_obj o;
    struct store_times t;
    struct timespec ts;
    double now;

    (void)arg;
    if (b == NULL || (store_obj_flags(obj) & STORE_OBJ_F_HFM))
        return false;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    store_obj_times(obj, &t);
    memset(&o, 0, sizeof(o));
    cache_block_origin(block, &o.url, &o.host);
    o.status = store_obj_status(obj);
    o.obj_header = obj_header;
    o.req_header = NULL;
    o.arg = &block;
    o.ttl_left = t.insert + t.ttl - now;
    o.age = now - t.insert;
    return ban_match(b, &o);
}

void
bans_fini(void)
{
    struct bans_entry *e;

    AC_ZERO(pthread_mutex_lock(&bans_mtx));
    while ((e = bans_head) != NULL) {
        bans_head = e->next;
        ban_free(&e->ban);
        free(e);
    }
    AC_ZERO(pthread_mutex_unlock(&bans_mtx));
}
