/*
 * store_obj.c -- objects: reference counting, metadata, the streamed body
 * and its waiters.
 *
 * Concurrency model of a busy object: exactly one owner (whoever got
 * STORE_MISS_CREATED) writes it; any number of readers read it.  The owner
 * publishes with release stores (meta pointer, body pointer, segment next
 * pointers, body length, state) and readers use acquire loads, so a reader
 * never takes a lock to read.  Segments fill up completely before the next
 * one is made, which lets readers derive each segment's used length from
 * the published body length alone.
 */
#include "store.h"
#include "store_int.h"

#include <stdlib.h>

bool
store_bytes_eq(struct store_bytes a, struct store_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

struct store_obj *
store_obj_new(struct store *st, const uint8_t digest[STORE_DIGEST_LEN], struct store_bytes key)
{
    struct store_obj *o = calloc(1, sizeof(*o) + key.len);

    if (o == NULL)
        return NULL;
    o->magic = STORE_OBJ_MAGIC;
    atomic_init(&o->refcnt, 1);
    o->st = st;
    atomic_init(&o->state, STORE_OBJ_BUSY);
    memcpy(o->digest, digest, STORE_DIGEST_LEN);
    o->keylen = key.len;
    if (key.len > 0)
        memcpy(o->key, key.p, key.len);
    o->charge = sizeof(*o) + key.len;
    store_mem_charge(st, o->charge);
    return o;
}

struct store_obj *
store_obj_ref(struct store_obj *o)
{
    unsigned old;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    old = atomic_fetch_add_explicit(&o->refcnt, 1, memory_order_relaxed);
    STORE_ASSERT(old > 0);
    return o;
}

static void
body_release(struct store_body **bp)
{
    struct store_body *b = *bp;
    struct store_seg *s, *next;

    *bp = NULL;
    if (b == NULL)
        return;
    STORE_CHECK_OBJ(b, STORE_BODY_MAGIC);
    if (atomic_fetch_sub_explicit(&b->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    for (s = atomic_load(&b->first); s != NULL; s = next) {
        next = atomic_load(&s->next);
        free(s);
    }
    store_mem_uncharge(b->st, atomic_load(&b->charge));
    b->magic = 0;
    free(b);
}

void
store_obj_release(struct store_obj **op)
{
    struct store_obj *o;
    struct store_mblock *m;
    struct store_body *b;

    if (op == NULL || *op == NULL)
        return;
    o = *op;
    *op = NULL;
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (atomic_fetch_sub_explicit(&o->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    STORE_ASSERT(o->head == NULL);
    STORE_ASSERT(o->waiters == NULL);
    m = atomic_load(&o->meta);
    if (m != NULL) {
        store_mem_uncharge(o->st, m->charge);
        free(m);
    }
    b = atomic_load(&o->body);
    body_release(&b);
    b = atomic_load(&o->alt);
    body_release(&b);
    body_release(&o->alt_build);
    store_mem_uncharge(o->st, o->charge);
    o->magic = 0;
    free(o);
}

/* ---- metadata ----------------------------------------------------------- */

static char *
put_bytes(char *dst, struct store_bytes *out, struct store_bytes in)
{
    out->p = dst;
    out->len = in.len;
    if (in.len > 0)
        memcpy(dst, in.p, in.len);
    return dst + in.len;
}

/*
 * Copies m into one allocation: the block, the tag slices and links, then
 * the bytes.  Published with one release store, never changed afterwards,
 * so getters need no lock.
 */
int
store_obj_meta_copy(struct store_obj *o, const struct store_meta *m)
{
    size_t n = sizeof(struct store_mblock), i;
    struct store_mblock *mb;
    char *p;

    if (m->ntags > STORE_REC_MAX_TAGS || (m->ntags > 0 && m->tags == NULL))
        return STORE_EINVAL;
    n += m->ntags * (sizeof(struct store_bytes) + sizeof(struct store_tag_link));
    n += m->headers.len + m->etag.len + m->last_modified.len + m->selector.len;
    for (i = 0; i < m->ntags; i++) {
        if (m->tags[i].len > 0xffff)
            return STORE_EINVAL;
        n += m->tags[i].len;
    }
    mb = calloc(1, n);
    if (mb == NULL)
        return STORE_ENOMEM;
    mb->status = m->status;
    mb->encoding = m->encoding;
    mb->flags = m->flags;
    mb->times = m->times;
    mb->size_hint = m->size_hint;
    mb->ntags = m->ntags;
    mb->tags = (struct store_bytes *)(mb + 1);
    mb->links = (struct store_tag_link *)(mb->tags + m->ntags);
    p = (char *)(mb->links + m->ntags);
    p = put_bytes(p, &mb->headers, m->headers);
    p = put_bytes(p, &mb->etag, m->etag);
    p = put_bytes(p, &mb->last_modified, m->last_modified);
    p = put_bytes(p, &mb->selector, m->selector);
    for (i = 0; i < m->ntags; i++) {
        p = put_bytes(p, &mb->tags[i], m->tags[i]);
        store_digest(NULL, m->tags[i].p, m->tags[i].len, mb->links[i].digest);
        mb->links[i].obj = o;
    }
    mb->charge = n;
    store_mem_charge(o->st, n);
    atomic_store_explicit(&o->meta, mb, memory_order_release);
    return STORE_OK;
}

int
store_obj_set_meta(struct store_obj *o, const struct store_meta *m)
{
    int r;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (m == NULL || (m->headers.p == NULL && m->headers.len > 0))
        return STORE_EINVAL;
    if (atomic_load(&o->state) != STORE_OBJ_BUSY || store_obj_meta(o) != NULL)
        return STORE_ESTATE;
    r = store_obj_meta_copy(o, m);
    if (r != 0)
        return r;
    store_index_meta_set(o);
    store_obj_notify(o);
    return STORE_OK;
}

bool
store_obj_has_meta(const struct store_obj *o)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    return store_obj_meta(o) != NULL;
}

struct store_bytes
store_obj_key(const struct store_obj *o)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    return (struct store_bytes){ o->key, o->keylen };
}

static const struct store_bytes no_bytes = { "", 0 };

unsigned
store_obj_status(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->status : 0;
}

struct store_bytes
store_obj_headers(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->headers : no_bytes;
}

struct store_bytes
store_obj_etag(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->etag : no_bytes;
}

struct store_bytes
store_obj_last_modified(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->last_modified : no_bytes;
}

struct store_bytes
store_obj_selector(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->selector : no_bytes;
}

size_t
store_obj_tag_count(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->ntags : 0;
}

unsigned
store_obj_encoding(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->encoding : 0;
}

unsigned
store_obj_hits(const struct store_obj *o)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    return atomic_load_explicit(&((struct store_obj *)o)->hits, memory_order_relaxed);
}

unsigned
store_obj_flags(const struct store_obj *o)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    return m != NULL ? m->flags : 0;
}

struct store_bytes
store_obj_tag(const struct store_obj *o, size_t i)
{
    const struct store_mblock *m;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    if (m == NULL || i >= m->ntags)
        return no_bytes;
    return m->tags[i];
}

static double
bits_to_double(uint64_t b)
{
    double d;

    memcpy(&d, &b, sizeof(d));
    return d;
}

void
store_obj_times(const struct store_obj *o, struct store_times *out)
{
    const struct store_mblock *m;
    uint64_t sb;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    m = store_obj_meta(o);
    if (m == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = m->times;
    sb = atomic_load_explicit(&((struct store_obj *)o)->soft_at, memory_order_relaxed);
    if (sb != 0) {
        double lim = bits_to_double(sb) - out->insert;

        if (lim < 0)
            lim = 0;
        if (lim < out->ttl)
            out->ttl = lim;
    }
}

double
store_obj_expiry(const struct store_obj *o)
{
    struct store_times t;

    store_obj_times(o, &t);
    return t.insert + t.ttl + t.grace + t.keep;
}

enum store_freshness
store_obj_freshness(const struct store_obj *o, double now)
{
    struct store_times t;
    double e;

    store_obj_times(o, &t);
    e = t.insert + t.ttl;
    if (now < e)
        return STORE_FRESH;
    e += t.grace;
    if (now < e)
        return STORE_STALE_IN_GRACE;
    e += t.keep;
    if (now < e)
        return STORE_STALE_IN_KEEP;
    return STORE_EXPIRED;
}

/* ---- body ---------------------------------------------------------------- */

static struct store_body *
body_new(struct store *st)
{
    struct store_body *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->magic = STORE_BODY_MAGIC;
    atomic_init(&b->refcnt, 1);
    b->st = st;
    atomic_init(&b->charge, sizeof(*b));
    store_mem_charge(st, sizeof(*b));
    return b;
}

static struct store_body *
body_get(struct store_obj *o)
{
    struct store_body *b = atomic_load_explicit(&o->body, memory_order_acquire);

    if (b != NULL)
        return b;
    if ((b = body_new(o->st)) == NULL)
        return NULL;
    atomic_store_explicit(&o->body, b, memory_order_release);
    return b;
}

size_t
store_obj_body_len(const struct store_obj *o)
{
    struct store_body *b = atomic_load_explicit(&((struct store_obj *)o)->body,
                                                memory_order_acquire);

    return b != NULL ? atomic_load_explicit(&b->len, memory_order_acquire) : 0;
}

/*
 * Segment size: what the size hint says is still to come, else at least
 * this append and at least the body so far (geometric growth keeps the
 * segment count logarithmic without wasting space on small objects),
 * between 64 bytes and 256 KiB.
 */
static size_t
seg_size(size_t size_hint, size_t have, size_t want)
{
    size_t cap = want;

    if (size_hint > have && size_hint - have > cap)
        cap = size_hint - have;
    else if (size_hint <= have && cap < have)
        cap = have;
    if (cap < 64)
        cap = 64;
    if (cap > STORE_SEG_MAX)
        cap = STORE_SEG_MAX;
    return cap;
}

static int
body_append(struct store_body *b, size_t size_hint, const void *p, size_t len)
{
    const char *src = p;

    while (len > 0) {
        struct store_seg *t = b->tail;
        size_t n, have = atomic_load_explicit(&b->len, memory_order_relaxed);

        if (t == NULL || t->used == t->cap) {
            size_t cap = seg_size(size_hint, have, len);

            t = malloc(sizeof(*t) + cap);
            if (t == NULL)
                return STORE_ENOMEM;
            atomic_init(&t->next, NULL);
            t->cap = cap;
            t->used = 0;
            atomic_fetch_add_explicit(&b->charge, sizeof(*t) + cap, memory_order_relaxed);
            store_mem_charge(b->st, sizeof(*t) + cap);
            if (b->tail != NULL)
                atomic_store_explicit(&b->tail->next, t, memory_order_release);
            else
                atomic_store_explicit(&b->first, t, memory_order_release);
            b->tail = t;
        }
        n = t->cap - t->used;
        if (n > len)
            n = len;
        memcpy(t->data + t->used, src, n);
        t->used += n;
        src += n;
        len -= n;
        atomic_store_explicit(&b->len, have + n, memory_order_release);
    }
    return STORE_OK;
}

int
store_obj_body_append(struct store_obj *o, const void *p, size_t len)
{
    struct store_mblock *m = store_obj_meta(o);
    struct store_body *b = body_get(o);

    if (b == NULL)
        return STORE_ENOMEM;
    return body_append(b, m->size_hint, p, len);
}

int
store_obj_append(struct store_obj *o, const void *p, size_t len)
{
    int r;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (p == NULL && len > 0)
        return STORE_EINVAL;
    if (atomic_load(&o->state) != STORE_OBJ_BUSY || store_obj_meta(o) == NULL)
        return STORE_ESTATE;
    if (len == 0)
        return STORE_OK;
    r = store_obj_body_append(o, p, len);
    store_obj_notify(o);
    if (atomic_load_explicit(&o->st->mem_used, memory_order_relaxed) > o->st->mem_limit)
        store_mem_reclaim(o->st, (unsigned)(store_shard_of(o->st, o->digest) - o->st->shards));
    return r;
}

enum store_obj_state
store_obj_state(const struct store_obj *o, size_t *lenp)
{
    int s;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    s = atomic_load_explicit(&((struct store_obj *)o)->state, memory_order_acquire);
    if (lenp != NULL)
        *lenp = store_obj_body_len(o);
    return (enum store_obj_state)s;
}

static size_t
body_read(const struct store_body *b, size_t off, struct store_bytes *segs, size_t nsegs)
{
    struct store_seg *s;
    size_t len, pos = 0, n = 0;

    if (b == NULL)
        return 0;
    len = atomic_load_explicit(&((struct store_body *)b)->len, memory_order_acquire);
    for (s = atomic_load_explicit(&((struct store_body *)b)->first, memory_order_acquire);
         s != NULL && pos < len && n < nsegs;
         s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        size_t used = len - pos < s->cap ? len - pos : s->cap;

        if (off < pos + used) {
            size_t skip = off > pos ? off - pos : 0;

            segs[n].p = s->data + skip;
            segs[n].len = used - skip;
            n++;
        }
        pos += used;
    }
    return n;
}

size_t
store_obj_read(const struct store_obj *o, size_t off, struct store_bytes *segs, size_t nsegs)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    return body_read(atomic_load_explicit(&((struct store_obj *)o)->body, memory_order_acquire),
                     off, segs, nsegs);
}

/* ---- alternate body ------------------------------------------------------ */

int
store_obj_alt_begin(struct store_obj *o)
{
    int expect = STORE_ALT_NONE;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (atomic_load(&o->state) != STORE_OBJ_COMPLETE || store_obj_meta(o) == NULL)
        return STORE_ESTATE;
    if (!atomic_compare_exchange_strong(&o->alt_state, &expect, STORE_ALT_BUILDING))
        return STORE_ESTATE;
    STORE_ASSERT(o->alt_build == NULL);
    return STORE_OK;
}

int
store_obj_alt_append(struct store_obj *o, const void *p, size_t len)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (atomic_load(&o->alt_state) != STORE_ALT_BUILDING)
        return STORE_ESTATE;
    if (len == 0)
        return STORE_OK;
    if (o->alt_build == NULL && (o->alt_build = body_new(o->st)) == NULL)
        return STORE_ENOMEM;
    return body_append(o->alt_build, 0, p, len);
}

int
store_obj_alt_publish(struct store_obj *o, unsigned encoding)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (atomic_load(&o->alt_state) != STORE_ALT_BUILDING)
        return STORE_ESTATE;
    if (o->alt_build == NULL && (o->alt_build = body_new(o->st)) == NULL)
        return STORE_ENOMEM;
    o->alt_enc = encoding;
    atomic_store_explicit(&o->alt, o->alt_build, memory_order_release);
    o->alt_build = NULL;
    atomic_store_explicit(&o->alt_state, STORE_ALT_READY, memory_order_release);
    /* written again, now with its alternate body, if it is still the one
     * in the index (an object replaced meanwhile must not overwrite its
     * successor on disk) */
    if (o->st->disk != NULL)
        (void)store_index_linked(o, true);
    /* the object grew: let eviction see it (it may be over the limit now) */
    store_mem_reclaim(o->st, (unsigned)(store_shard_of(o->st, o->digest) - o->st->shards));
    return STORE_OK;
}

int
store_obj_alt_restore(struct store_obj *o, unsigned encoding, struct store_bytes b)
{
    struct store_body *nb = body_new(o->st);

    if (nb == NULL)
        return STORE_ENOMEM;
    if (b.len > 0 && body_append(nb, b.len, b.p, b.len) != STORE_OK) {
        body_release(&nb);
        return STORE_ENOMEM;
    }
    o->alt_enc = encoding;
    atomic_store_explicit(&o->alt, nb, memory_order_release);
    atomic_store(&o->alt_state, STORE_ALT_READY);
    return STORE_OK;
}

void
store_obj_alt_cancel(struct store_obj *o, bool retry)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (atomic_load(&o->alt_state) != STORE_ALT_BUILDING)
        return;
    body_release(&o->alt_build);
    atomic_store(&o->alt_state, retry ? STORE_ALT_NONE : STORE_ALT_FAILED);
}

bool
store_obj_alt(const struct store_obj *o, unsigned *encp, size_t *lenp)
{
    struct store_body *b;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    b = atomic_load_explicit(&((struct store_obj *)o)->alt, memory_order_acquire);
    if (b == NULL)
        return false;
    if (encp != NULL)
        *encp = o->alt_enc;
    if (lenp != NULL)
        *lenp = atomic_load_explicit(&b->len, memory_order_acquire);
    return true;
}

size_t
store_obj_alt_read(const struct store_obj *o, size_t off, struct store_bytes *segs, size_t nsegs)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    return body_read(atomic_load_explicit(&((struct store_obj *)o)->alt, memory_order_acquire),
                     off, segs, nsegs);
}

int
store_obj_alt_state(const struct store_obj *o)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    return atomic_load(&((struct store_obj *)o)->alt_state);
}

static int
finish(struct store_obj *o)
{
    bool linked = store_index_complete(o);

    store_obj_notify(o);
    if (linked && o->st->disk != NULL)
        store_disk_enqueue(o->st, o);
    store_mem_reclaim(o->st, (unsigned)(store_shard_of(o->st, o->digest) - o->st->shards));
    return STORE_OK;
}

int
store_obj_complete(struct store_obj *o)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (atomic_load(&o->state) != STORE_OBJ_BUSY || store_obj_meta(o) == NULL)
        return STORE_ESTATE;
    return finish(o);
}

int
store_obj_freshen(struct store_obj *o, const struct store_obj *old)
{
    struct store_body *b;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    STORE_CHECK_OBJ(old, STORE_OBJ_MAGIC);
    if (atomic_load(&o->state) != STORE_OBJ_BUSY || store_obj_meta(o) == NULL ||
        atomic_load(&o->body) != NULL ||
        atomic_load(&((struct store_obj *)old)->state) != STORE_OBJ_COMPLETE)
        return STORE_ESTATE;
    b = atomic_load_explicit(&((struct store_obj *)old)->body, memory_order_acquire);
    if (b != NULL) {
        atomic_fetch_add(&b->refcnt, 1);
        atomic_store_explicit(&o->body, b, memory_order_release);
    }
    b = atomic_load_explicit(&((struct store_obj *)old)->alt, memory_order_acquire);
    if (b != NULL) {
        /* the alternate body is the same content in another encoding */
        atomic_fetch_add(&b->refcnt, 1);
        o->alt_enc = old->alt_enc;
        atomic_store_explicit(&o->alt, b, memory_order_release);
        atomic_store(&o->alt_state, STORE_ALT_READY);
    }
    return finish(o);
}

void
store_obj_abort(struct store_obj *o)
{
    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    if (atomic_load(&o->state) != STORE_OBJ_BUSY)
        return;
    store_index_abort(o);
    store_obj_notify(o);
}

/* ---- waiters --------------------------------------------------------------- */

static inline unsigned
wstripe(const struct store_obj *o)
{
    return (unsigned)(((uintptr_t)o >> 6) % STORE_WSTRIPES);
}

void
store_waiter_init(struct store_waiter *w, store_waiter_f *fn, void *priv)
{
    memset(w, 0, sizeof(*w));
    w->magic = STORE_WAITER_MAGIC;
    w->fn = fn;
    w->priv = priv;
}

int
store_waiter_subscribe(struct store_obj *o, struct store_waiter *w)
{
    pthread_mutex_t *mtx;

    STORE_CHECK_OBJ(o, STORE_OBJ_MAGIC);
    STORE_CHECK_OBJ(w, STORE_WAITER_MAGIC);
    STORE_NOTNULL(w->fn);
    if (w->_obj != NULL)
        return STORE_ESTATE;
    mtx = &o->st->wlocks[wstripe(o)];
    STORE_ZERO(pthread_mutex_lock(mtx));
    w->_prev = NULL;
    w->_next = o->waiters;
    if (o->waiters != NULL)
        o->waiters->_prev = w;
    o->waiters = w;
    w->_obj = o;
    w->_calling = 0;
    STORE_ZERO(pthread_mutex_unlock(mtx));
    return STORE_OK;
}

void
store_waiter_unsubscribe(struct store_waiter *w)
{
    struct store_obj *o;
    unsigned s;

    STORE_CHECK_OBJ(w, STORE_WAITER_MAGIC);
    o = w->_obj;
    if (o == NULL)
        return;
    s = wstripe(o);
    STORE_ZERO(pthread_mutex_lock(&o->st->wlocks[s]));
    if (w->_prev != NULL)
        w->_prev->_next = w->_next;
    else
        o->waiters = w->_next;
    if (w->_next != NULL)
        w->_next->_prev = w->_prev;
    if (o->notify_next == w)
        o->notify_next = w->_next;
    w->_next = w->_prev = NULL;
    /* a call in progress on another thread must end before w may be freed */
    while (w->_calling && !(o->notifying && pthread_equal(o->notifier, pthread_self())))
        STORE_ZERO(pthread_cond_wait(&o->st->wconds[s], &o->st->wlocks[s]));
    w->_obj = NULL;
    STORE_ZERO(pthread_mutex_unlock(&o->st->wlocks[s]));
}

/*
 * Calls every waiter of o, without the stripe lock held during the call.
 * One notifier at a time per object: a change while a round is running
 * makes that round start over (notify_again), so nothing is missed and
 * calls for one waiter never overlap.  notify_next is the round's cursor;
 * unsubscribe moves it past a waiter it removes.
 */
void
store_obj_notify(struct store_obj *o)
{
    unsigned s = wstripe(o);
    pthread_mutex_t *mtx = &o->st->wlocks[s];
    struct store_waiter *w;

    STORE_ZERO(pthread_mutex_lock(mtx));
    if (o->waiters == NULL) {
        STORE_ZERO(pthread_mutex_unlock(mtx));
        return;
    }
    if (o->notifying) {
        o->notify_again = 1;
        STORE_ZERO(pthread_mutex_unlock(mtx));
        return;
    }
    o->notifying = 1;
    o->notifier = pthread_self();
    do {
        o->notify_again = 0;
        for (w = o->waiters; w != NULL; w = o->notify_next) {
            o->notify_next = w->_next;
            w->_calling = 1;
            STORE_ZERO(pthread_mutex_unlock(mtx));
            w->fn(w);
            STORE_ZERO(pthread_mutex_lock(mtx));
            w->_calling = 0;
            STORE_ZERO(pthread_cond_broadcast(&o->st->wconds[s]));
        }
    } while (o->notify_again);
    o->notifying = 0;
    o->notify_next = NULL;
    STORE_ZERO(pthread_mutex_unlock(mtx));
}
