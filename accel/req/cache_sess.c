/*
 * cache_sess.c -- the caching states of a session: lookup, waiting on a busy
 * object (request coalescing), delivery from an object, and filling a busy
 * object from the origin while delivering it.  The rules themselves (what
 * to store, for how long) are in cache.c.
 *
 * Who fills: the session whose lookup created the busy object fetches and
 * appends the body to it at the origin's speed, while it delivers the object
 * to its own client at the client's speed; every other request for the key
 * waits on the busy object and streams it as it grows.  If that client goes
 * away, the session keeps filling for the others (client_dead).  Background
 * refreshes (grace) are sessions without a client (bg).
 */
#include "sess.h"

#include "bans.h"
#include "brjob.h"
#include "cache_gz.h"
#include "http.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>



static double
now_of(const struct sess *s)
{
    return ev_now(s->w->loop);
}

static bool
match_cb(void *arg, struct store_bytes sel)
{
    struct sess *s = arg;

    return cache_vary_match(AC_SLICE(sel.p, sel.len), &s->req);
}

static void
on_store_change(struct store_waiter *wt)
{
    struct sess *s = wt->priv;

    wrk_wake(s->w, s);          /* any thread: queue for the session's worker */
}

void
sess_wake(struct sess *s)
{
    AC_CHECK_OBJ(s, SESS_MAGIC);
    if (s->in_drive)
        return;
    if (s->state == S_WAITOBJ || s->state == S_DELIVER || s->state == S_ADMIN ||
        (s->state == S_CONNECT && s->oc == NULL && s->qw.be != NULL))
        sess_drive(s);              /* the last: a max_connections slot came free */
}

static void
subscribe(struct sess *s, struct store_obj *o)
{
    if (s->subscribed)
        return;
    store_waiter_init(&s->waiter, on_store_change, s);
    AC_ZERO(store_waiter_subscribe(o, &s->waiter));
    s->subscribed = true;
}

static void
unsubscribe(struct sess *s)
{
    if (!s->subscribed)
        return;
    store_waiter_unsubscribe(&s->waiter);
    s->subscribed = false;
    wrk_wake_cancel(s->w, s);
}

void
cache_sess_reset(struct sess *s)
{
    pool_wait_leave(&s->qw);        /* before wrk_wake_cancel: a grant may wake us */
    unsubscribe(s);
    wrk_wake_cancel(s->w, s);
    if (s->busy != NULL) {
        /* A fill that did not finish: readers must not take it for whole. */
        if (store_obj_state(s->busy, NULL) == STORE_OBJ_BUSY)
            store_obj_abort(s->busy);
        store_obj_release(&s->busy);
    }
    store_obj_release(&s->obj);
    store_obj_release(&s->stale);
    s->lookups = 0;
    s->revalidating = false;
    s->xcache = NULL;
    s->cstatus = NULL;
    s->dlv_started = s->dlv_done = s->dlv_chunked = s->dlv_last_chunk = false;
    s->dlv_off = s->dlv_end = 0;
    s->fill_done = s->fill_overflow = false;
    s->fill_len = 0;
    s->pending_run = AC_SLICE(NULL, 0);
    gz_free(&s->fill_gz);
    gz_free(&s->dlv_gz);
    free(s->fill_buf);
    free(s->dlv_buf);
    s->fill_buf = s->dlv_buf = NULL;
    s->fill_gz_check = s->fill_gz_dirty = s->dlv_alt = false;
}

static bool
stale_if_error_ok(const struct sess *s)
{
    struct store_times t;
    unsigned f;

    if (s->stale == NULL)
        return false;
    f = store_obj_flags(s->stale);
    if (f & (OBJ_F_MUSTREVAL | STORE_OBJ_F_HFM))
        return false;
    store_obj_times(s->stale, &t);
    return now_of(s) < t.insert + t.ttl + (double)(f >> OBJ_SIE_SHIFT);
}

/* Go to the origin without the cache (pass, hit-for-miss). */
enum step
cache_synth_or_restart(struct sess *s, enum vcl_action a, const struct vcl_result *res)
{
    if (a == VCL_ACT_RESTART)
        return sess_restart(s);
    s->cache_state = "SYNTH";       /* the policy answered (access log) */
    if (a == VCL_ACT_SYNTH)
        return sess_synth(s, (int)res->status,
                          res->reason.p ? pol_cstr(s, res->reason) : NULL, NULL, false);
    return sess_synth(s, 503, NULL, "Policy failure\n", false);
}

static enum step
go_pass(struct sess *s, const char *xcache, const char *cstatus)
{
    struct vcl_result res;

    s->xcache = xcache;
    s->cstatus = cstatus;
    s->cache_state = xcache;
    s->req_time = now_of(s);
    if (s->prog != NULL) {
        enum vcl_action a = pol_run(s, VCL_SUB_PASS, &res);
        if (a != VCL_ACT_FETCH)
            return cache_synth_or_restart(s, a, &res);
    }
    return sess_start_pass(s);
}

static enum step
go_fetch(struct sess *s)
{
    struct vcl_result res;

    s->xcache = "MISS";
    s->cstatus = "fwd=uri-miss";
    s->cache_state = "MISS";
    s->req_time = now_of(s);
    if (s->prog != NULL) {
        enum vcl_action a = pol_run(s, VCL_SUB_MISS, &res);
        if (a != VCL_ACT_FETCH) {
            if (s->busy != NULL) {
                store_obj_abort(s->busy);
                store_obj_release(&s->busy);
            }
            if (a == VCL_ACT_PASS)
                return go_pass(s, "PASS", "fwd=uri-miss");
            return cache_synth_or_restart(s, a, &res);
        }
        s->be = pol_backend(s);
        if (s->be == NULL)
            return fetch_no_backend(s);     /* stale-if-error, else 503 */
    }
    fetch_build_bereq(s);
    s->state = S_CONNECT;
    return STEP_MORE;
}

/*
 * return (pipe): the request goes to the origin with Connection: close and
 * from then on bytes are copied both ways, unparsed, until either side
 * closes (Varnish's pipe).  vcl_pipe may still answer with synth.
 */
static enum step
go_pipe(struct sess *s)
{
    struct vcl_result res;
    enum vcl_action a = pol_run(s, VCL_SUB_PIPE, &res);

    if (a != VCL_ACT_PIPE)
        return cache_synth_or_restart(s, a, &res);
    s->be = pol_backend(s);
    if (s->be == NULL)
        return sess_synth(s, 503, NULL, "No origin server for this request\n", false);
    s->piping = true;
    s->keepalive = false;
    s->xcache = s->cache_state = "PIPE";
    fetch_build_bereq(s);
    if (!s->head_copied)
        sess_copy_head(s);          /* rbuf now carries what follows the head */
    s->state = S_CONNECT;
    return STEP_MORE;
}

/* vcl_recv's verdict. */
enum step
cache_policy_recv(struct sess *s)
{
    struct vcl_result res;
    enum vcl_action a = pol_run(s, VCL_SUB_RECV, &res);

    s->kind = CACHE_REQ_PASS;
    switch (a) {
    case VCL_ACT_HASH:
        if (s->w->store == NULL || s->req.body != H1_BODY_NONE || (s->req.flags & H1_F_UPGRADE))
            break;                  /* bodies and tunnels always pass */
        s->kind = CACHE_REQ_LOOKUP;
        s->state = S_LOOKUP;
        return STEP_MORE;
    case VCL_ACT_PASS:
        break;
    case VCL_ACT_PIPE:
        return go_pipe(s);
    case VCL_ACT_PURGE:
        return cache_policy_purge(s);
    default:
        return cache_synth_or_restart(s, a, &res);
    }
    if (!ac_slice_eq(s->req.method, AC_LIT("GET")) && !ac_slice_eq(s->req.method, AC_LIT("HEAD")))
        s->kind = CACHE_REQ_UNSAFE;
    STAT_INC(s->w, cache_pass);
    return go_pass(s, "PASS", "fwd=request");
}


/* Run vcl_hash into s->key (with a policy) or compute the default key. */
int
cache_make_key(struct sess *s)
{
    struct vcl_result res;

    if (s->prog == NULL) {
        cache_key(&s->req, &s->key);
        return 0;
    }
    ac_buf_reset(&s->key);
    if (pol_run(s, VCL_SUB_HASH, &res) != VCL_ACT_LOOKUP)
        return -1;
    return 0;
}

/* A background refresh of a stale object (grace): one fetch, no client. */
static void
bgfetch_start(struct sess *s, struct store_obj *busy, struct store_obj *stale)
{
    struct sess *b = sess_new_detached(s->w);

    STAT_INC(s->w, cache_bgfetch);
    sess_copy_request(b, s);
    b->kind = CACHE_REQ_LOOKUP;
    b->busy = busy;
    b->stale = stale;
    if (s->prog != NULL) {
        pol_begin_from(b, s->prog);
        b->backend_hint = s->backend_hint;
        /* hash/shard: the refresh goes where the foreground fetch would */
        b->dir_key = s->dir_key_set ? s->dir_key : dir_hash(s->key.p, s->key.len);
        b->dir_key_set = true;
        b->be = pol_backend(b);
    } else {
        b->be = pool_pick(s->w);
    }
    if (b->be == NULL) {
        sess_kill(b);
        return;
    }
    b->req_time = now_of(s);
    fetch_build_bereq(b);
    b->state = S_CONNECT;
    sess_drive(b);
}

enum step
cache_lookup_step(struct sess *s)
{
    struct store_lookup lk;
    struct store_obj *o = NULL, *busy = NULL;
    int r;

    if (++s->lookups > (unsigned)s->w->cfg->p.max_restarts)
        return sess_synth(s, 503, NULL, "The object could not be fetched\n", false);
    if (s->lookups == 1 && cache_make_key(s) != 0)
        return sess_synth(s, 503, NULL, "Policy failure in vcl_hash\n", false);
    memset(&lk, 0, sizeof(lk));
    lk.key = (struct store_bytes){ s->key.p, s->key.len };
    lk.now = now_of(s);
    lk.match = match_cb;
    lk.match_arg = s;
    lk.flags = STORE_LOOKUP_CREATE | STORE_LOOKUP_REFRESH;
    if (s->hash_always_miss)
        lk.flags |= STORE_LOOKUP_FORCE_MISS;
    r = store_lookup(s->w->store, &lk, &o, &busy);
    if (r == STORE_HIT && s->prog != NULL && !(store_obj_flags(o) & STORE_OBJ_F_HFM) &&
        store_obj_freshness(o, lk.now) != STORE_STALE_IN_KEEP) {
        struct vcl_result res;
        enum vcl_action a;
        s->obj = o;                 /* obj.* for vcl_hit */
        a = pol_run(s, VCL_SUB_HIT, &res);
        s->obj = NULL;
        if (a != VCL_ACT_DELIVER) {
            store_obj_release(&o);
            if (busy != NULL) {
                store_obj_abort(busy);
                store_obj_release(&busy);
            }
            if (a == VCL_ACT_PASS)
                return go_pass(s, "PASS", "fwd=request");
            if (a == VCL_ACT_MISS) {
                s->hash_always_miss = true;     /* look up again, ignoring the object */
                return STEP_MORE;
            }
            return cache_synth_or_restart(s, a, &res);
        }
    }
    switch (r) {
    case STORE_HIT:
        if (store_obj_flags(o) & STORE_OBJ_F_HFM) {
            store_obj_release(&o);
            STAT_INC(s->w, cache_hitmiss);
            return go_pass(s, "PASS", "fwd=uri-miss; detail=hit-for-miss");
        }
        switch (store_obj_freshness(o, lk.now)) {
        case STORE_FRESH:
            s->obj = o;
            STAT_INC(s->w, cache_hit);
            s->xcache = s->cache_state = "HIT";
            s->cstatus = "hit";
            s->state = S_DELIVER;
            return STEP_MORE;
        case STORE_STALE_IN_GRACE:
            s->obj = o;
            STAT_INC(s->w, cache_stale);
            s->xcache = s->cache_state = "STALE";
            s->cstatus = busy != NULL ? "hit; fwd=stale; detail=refreshing" : "hit; fwd=stale";
            if (busy != NULL)
                bgfetch_start(s, busy, store_obj_ref(o));
            s->state = S_DELIVER;
            return STEP_MORE;
        case STORE_STALE_IN_KEEP:
            /* Only good for revalidation (and stale-if-error). */
            s->stale = o;
            if (busy != NULL) {
                s->busy = busy;
                STAT_INC(s->w, cache_miss);
                return go_fetch(s);
            }
            /* Another request is revalidating it: wait on that fetch (the
             * store answers with the stale copy; ask again for the busy one,
             * keeping the stale copy for stale-if-error). */
            {
                struct store_lookup lk2 = lk;
                struct store_obj *b2 = NULL;
                lk2.flags = STORE_LOOKUP_FORCE_MISS | STORE_LOOKUP_MEM_ONLY;
                if (store_lookup(s->w->store, &lk2, &b2, NULL) == STORE_BUSY) {
                    s->obj = b2;
                    STAT_INC(s->w, cache_coalesced);
                    s->state = S_WAITOBJ;
                    return STEP_MORE;
                }
                store_obj_release(&b2);
                store_obj_release(&s->stale);
                return STEP_MORE;   /* the fetch just ended: look up again */
            }
        case STORE_EXPIRED:
            store_obj_release(&o);
            if (busy != NULL)
                store_obj_abort(busy), store_obj_release(&busy);
            return go_pass(s, "MISS", "fwd=uri-miss");
        }
        break;
    case STORE_BUSY:
        s->obj = o;
        STAT_INC(s->w, cache_coalesced);
        s->state = S_WAITOBJ;
        return STEP_MORE;
    case STORE_MISS_CREATED:
        s->busy = o;
        STAT_INC(s->w, cache_miss);
        return go_fetch(s);
    case STORE_MISS:
        return go_pass(s, "MISS", "fwd=uri-miss");
    default:
        break;
    }
    LOG_W("store lookup: %s", store_strerror(r));
    return go_pass(s, "PASS", "fwd=uri-miss; detail=store-error");
}

enum step
cache_waitobj_step(struct sess *s)
{
    struct store_obj *o = s->obj;
    enum store_obj_state st;

    if (s->timed_out) {
        unsubscribe(s);
        return sess_synth(s, 504, NULL, "Timed out waiting for the origin\n", false);
    }
    subscribe(s, o);
    st = store_obj_state(o, NULL);
    if (store_obj_has_meta(o)) {
        struct store_bytes sel = store_obj_selector(o);
        if (store_obj_flags(o) & STORE_OBJ_F_HFM) {
            unsubscribe(s);
            store_obj_release(&s->obj);
            STAT_INC(s->w, cache_hitmiss);
            return go_pass(s, "PASS", "fwd=uri-miss; detail=hit-for-miss");
        }
        if (!cache_vary_match(AC_SLICE(sel.p, sel.len), &s->req)) {
            unsubscribe(s);
            store_obj_release(&s->obj);
            s->state = S_LOOKUP;    /* another variant: look up again */
            return STEP_MORE;
        }
        s->xcache = s->cache_state = "MISS";
        s->cstatus = "fwd=uri-miss; collapsed";
        s->state = S_DELIVER;
        return STEP_MORE;
    }
    if (st == STORE_OBJ_ABORTED) {
        unsubscribe(s);
        store_obj_release(&s->obj);
        s->state = S_LOOKUP;        /* the fetch failed: try ourselves */
        return STEP_MORE;
    }
    sess_want(s, 0, 0);
    sess_timer(s, fetch_timeout(s, FETCH_TMO_CONNECT) + fetch_timeout(s, FETCH_TMO_FIRST_BYTE));
    return STEP_WAIT;
}

#define OURS(name) (s->n_resp_ops == 0 || !pol_overlay_has(s->resp_ops, s->n_resp_ops, AC_LIT(name)))

/* Build the response head for delivering s->obj and queue it. */
static void
dlv_begin(struct sess *s, uint64_t expect_len)
{
    struct store_obj *o = s->obj;
    unsigned status = store_obj_status(o);
    unsigned flags = store_obj_flags(o), stored_enc = store_obj_encoding(o);
    struct store_bytes blk = store_obj_headers(o);
    struct store_bytes et = store_obj_etag(o), lm = store_obj_last_modified(o);
    struct ac_slice block = cache_block_visible(AC_SLICE(blk.p, blk.len));
    struct ac_slice etag = AC_SLICE(et.p, et.len), lmod = AC_SLICE(lm.p, lm.len);
    struct ac_buf *t = &s->dlv_tail;
    struct store_times tm;
    size_t len = 0;
    bool complete = store_obj_state(o, &len) == STORE_OBJ_COMPLETE;
    bool head = ac_slice_eq(s->req.method, AC_LIT("HEAD"));
    bool body = !head && status != 204 && status != 304;
    bool negotiate = (flags & OBJ_F_NEGOTIATE) != 0, decode = false;
    unsigned code = status, enc = cache_gz_choose(s, complete, len);
    uint64_t first = 0, last = 0;
    double age;

    s->dlv_started = true;
    s->dlv_off = 0;
    s->dlv_end = UINT64_MAX;
    s->dlv_chunked = false;
    store_obj_times(o, &tm);
    age = now_of(s) - tm.insert;
    ac_buf_reset(t);
    if (s->dlv_alt)
        (void)store_obj_alt(o, NULL, &len);     /* complete, final length */
    else if (enc != stored_enc) {
        decode = true;          /* identity, decoded from the stored body */
        complete = false;       /* its length is not known in advance */
        expect_len = UINT64_MAX;
    }
    if (negotiate && etag.len > 0 && OURS("ETag")) {
        /* The ETag is the origin's, for the coding the origin sent; any
         * other coding is another representation: a weak validator
         * (RFC 9110 §8.8.1), so If-Range never matches it. */
        bool strong = enc == ((flags & OBJ_ORIGENC_MASK) >> OBJ_ORIGENC_SHIFT);
        bool weak_already = etag.len >= 2 && etag.p[0] == 'W' && etag.p[1] == '/';
        ac_buf_catstr(t, "ETag: ");
        size_t at = t->len;
        if (!strong && !weak_already)
            ac_buf_catstr(t, "W/");
        ac_buf_cats(t, etag);
        etag = AC_SLICE(t->p + at, t->len - at);    /* valid until t grows */
        ac_buf_cat(t, "\r\n", 2);
    }
    if (status == 200 && cache_not_modified(&s->req, etag, lmod)) {
        code = 304;
        body = false;
    } else if (status == 200 && complete) {
        int r = cache_range(&s->req, len, etag, lmod, &first, &last);
        if (r == 206) {
            code = 206;
            s->dlv_off = first;
            s->dlv_end = last + 1;
            ac_buf_printf(t, "Content-Range: bytes %llu-%llu/%zu\r\nContent-Length: %llu\r\n",
                          (unsigned long long)first, (unsigned long long)last, len,
                          (unsigned long long)(last - first + 1));
        } else if (r == 416) {
            code = 416;
            body = false;
            ac_buf_printf(t, "Content-Range: bytes */%zu\r\nContent-Length: 0\r\n", len);
        }
    }
    if (code == status && status != 204 && status != 304) {
        if (complete)
            ac_buf_printf(t, "Content-Length: %zu\r\n", len);
        else if (expect_len != UINT64_MAX)
            ac_buf_printf(t, "Content-Length: %llu\r\n", (unsigned long long)expect_len);
        else if (s->req.minor >= 1)
            s->dlv_chunked = !head;
        else
            s->keepalive = false;   /* HTTP/1.0: the close ends the body */
        if (s->dlv_chunked)
            ac_buf_catstr(t, "Transfer-Encoding: chunked\r\n");
    }
    if (negotiate) {
        /* a 304 carries the validators and Vary, not the coding (RFC 9110 §15.4.5) */
        if (enc != GZ_IDENTITY && code != 304 && OURS("Content-Encoding"))
            ac_buf_catstr(t, enc == GZ_BR ? "Content-Encoding: br\r\n" : "Content-Encoding: gzip\r\n");
        if (!(flags & OBJ_F_VARY_AE) && OURS("Vary"))
            ac_buf_catstr(t, "Vary: Accept-Encoding\r\n");
    }
    if (decode && body && code == status) {
        s->dlv_gz = gz_new(stored_enc == GZ_BR ? GZ_K_BR_DEC : GZ_K_GZIP_DEC, 0, 0);
        AC_NOTNULL(s->dlv_gz);      /* zlib/brotli fail only when out of memory */
        s->dlv_buf = ac_xmalloc(GZ_BUFSZ);
        STAT_INC(s->w, gzip_decoded);
    }
    if (s->dlv_alt && body)
        STAT_INC(s->w, brotli_delivered);
    /* accel's own fields, unless the policy set or unset them in vcl_deliver */
    if (OURS("Age"))
        ac_buf_printf(t, "Age: %lld\r\n", (long long)(age > 0 ? floor(age) : 0));
    if (OURS("Via"))
        ac_buf_catstr(t, "Via: 1.1 accel\r\n");
    if (OURS("X-Cache"))
        ac_buf_printf(t, "X-Cache: %s\r\n", s->xcache ? s->xcache : "HIT");
    if (OURS("Cache-Status"))
        ac_buf_printf(t, "Cache-Status: accel; %s; ttl=%lld\r\n", s->cstatus ? s->cstatus : "hit",
                      (long long)floor(tm.insert + tm.ttl - now_of(s)));
    if (s->w->stopping)
        s->keepalive = false;
    if (!s->keepalive)
        ac_buf_catstr(t, "Connection: close\r\n");
    else if (s->req.flags & H1_F_HTTP10)
        ac_buf_catstr(t, "Connection: keep-alive\r\n");
    ac_buf_cat(t, "\r\n", 2);
    AC_ASSERT(!ac_buf_error(t));

    ac_buf_reset(&s->whead);
    if (s->n_resp_ops > 0 || s->resp_status_set || s->resp_reason.p != NULL) {
        /* The policy changed the answer: write the head field by field. */
        size_t pos = 0;
        const char *nl = memchr(block.p, '\n', block.len);
        struct ac_slice rest = nl ? AC_SLICE(nl + 1, block.len - (size_t)(nl + 1 - block.p))
                                  : AC_SLICE(block.p + block.len, 0);
        if (s->resp_status_set)
            code = (unsigned)s->resp_status_set;
        ac_buf_printf(&s->whead, "HTTP/1.1 %u ", code);
        if (s->resp_reason.p != NULL)
            ac_buf_cats(&s->whead, s->resp_reason);
        else if (code == status && nl != NULL) {
            const char *sp = memchr(block.p, ' ', (size_t)(nl - block.p));
            const char *e = nl > block.p && nl[-1] == '\r' ? nl - 1 : nl;
            if (sp != NULL)
                ac_buf_cat(&s->whead, sp + 1, (size_t)(e - sp - 1));
        } else
            ac_buf_catstr(&s->whead, http_reason((int)code));
        ac_buf_cat(&s->whead, "\r\n", 2);
        while (pos < rest.len) {
            const char *e = memchr(rest.p + pos, '\n', rest.len - pos);
            size_t ll = e ? (size_t)(e - rest.p - pos) + 1 : rest.len - pos;
            const char *colon = memchr(rest.p + pos, ':', ll);
            if (colon == NULL ||
                !pol_overlay_has(s->resp_ops, s->n_resp_ops,
                                 AC_SLICE(rest.p + pos, (size_t)(colon - rest.p - pos))))
                ac_buf_cat(&s->whead, rest.p + pos, ll);
            pos += ll;
        }
        for (unsigned i = 0; i < s->n_resp_ops; i++) {
            if (s->resp_ops[i].value.p == NULL)
                continue;
            ac_buf_field(&s->whead, s->resp_ops[i].name, s->resp_ops[i].value);
        }
        sess_iov_add(s, s->whead.p, s->whead.len);
    } else if (code == status) {
        ac_buf_catstr(&s->whead, "HTTP/1.1 ");
        sess_iov_add(s, s->whead.p, s->whead.len);
        sess_iov_add(s, block.p, block.len);
    } else {
        const char *nl = memchr(block.p, '\n', block.len);
        size_t skip = nl ? (size_t)(nl - block.p) + 1 : block.len;
        ac_buf_printf(&s->whead, "HTTP/1.1 %u %s\r\n", code, http_reason((int)code));
        sess_iov_add(s, s->whead.p, s->whead.len);
        sess_iov_add(s, block.p + skip, block.len - skip);
    }
    sess_iov_add(s, t->p, t->len);
    s->status = (int)code;
    if (!body)
        s->dlv_end = s->dlv_off;
}

/* The body being delivered: the object's own, or its alternate body. */
static enum store_obj_state
dlv_state(const struct sess *s, size_t *lenp)
{
    if (s->dlv_alt) {
        (void)store_obj_alt(s->obj, NULL, lenp);
        return STORE_OBJ_COMPLETE;
    }
    return store_obj_state(s->obj, lenp);
}

static size_t
dlv_read(const struct sess *s, size_t off, struct store_bytes *segs, size_t n)
{
    return s->dlv_alt ? store_obj_alt_read(s->obj, off, segs, n)
                      : store_obj_read(s->obj, off, segs, n);
}

/* Move object bytes to the client until something blocks.  Body segments
 * are queued behind what is already queued (the head), so a small hit goes
 * out with one writev. */
static enum dlv
deliver_pump(struct sess *s)
{
    if (s->dlv_gz != NULL && !s->dlv_done && s->dlv_end == UINT64_MAX)
        return cache_gz_pump(s);
    for (;;) {
        size_t len = 0;
        enum store_obj_state st = dlv_state(s, &len);
        uint64_t avail = AC_MIN((uint64_t)len, s->dlv_end);

        /* as many runs as fit behind what is queued (a chunk-size line and
         * CRLF need two more): a small hit shares one writev -- and one TLS
         * record -- with its head */
        size_t maxseg = s->niov + 3 <= SESS_NIOV ? AC_MIN(4, (size_t)(SESS_NIOV - s->niov - 2)) : 0;
        if (!s->dlv_done && s->dlv_off < avail && maxseg > 0) {
            struct store_bytes segs[4];
            size_t n = dlv_read(s, (size_t)s->dlv_off, segs, maxseg);
            uint64_t total = 0;
            int first_iov = s->niov;
            for (size_t i = 0; i < n && s->dlv_off + total < avail; i++) {
                size_t take = (size_t)AC_MIN((uint64_t)segs[i].len, avail - s->dlv_off - total);
                sess_iov_add(s, segs[i].p, take);
                total += take;
            }
            if (total > 0) {
                if (s->dlv_chunked) {
                    int hl = snprintf(s->dlv_chunkhdr, sizeof(s->dlv_chunkhdr), "%llx\r\n",
                                      (unsigned long long)total);
                    /* the chunk-size line goes before the data */
                    memmove(&s->iov[first_iov + 1], &s->iov[first_iov],
                            sizeof(s->iov[0]) * (size_t)(s->niov - first_iov));
                    s->iov[first_iov].iov_base = s->dlv_chunkhdr;
                    s->iov[first_iov].iov_len = (size_t)hl;
                    s->niov++;
                    sess_iov_add(s, "\r\n", 2);
                }
                s->dlv_off += total;
                s->bytes_sent += total;
                if (!s->dlv_chunked)
                    continue;       /* maybe the rest fits too */
            }
        }
        if (!s->dlv_done && s->dlv_off >= avail &&
            (st == STORE_OBJ_COMPLETE || s->dlv_off >= s->dlv_end)) {
            if (s->dlv_chunked && !s->dlv_last_chunk && s->niov < SESS_NIOV) {
                s->dlv_last_chunk = true;
                sess_iov_add(s, "0\r\n\r\n", 5);
            }
            if (!s->dlv_chunked || s->dlv_last_chunk)
                s->dlv_done = true;
        }
        if (s->niov > 0) {
            enum dlv d = dlv_flush(s);
            if (d != DLV_DONE)
                return d;
            continue;
        }
        if (s->dlv_done)
            return DLV_DONE;
        if (s->dlv_off < avail)
            continue;
        if (st == STORE_OBJ_ABORTED)
            return s->fill_overflow ? DLV_TAIL : DLV_ABORTED;
        return DLV_WAIT_DATA;
    }
}

enum step
cache_deliver_step(struct sess *s)
{
    enum dlv d;

    if (s->timed_out) {
        /* no progress from the fetch or the client: give up on this one */
        unsubscribe(s);
        return STEP_DONE;
    }
    if (!s->dlv_started) {
        if (s->prog != NULL) {
            struct vcl_result res;
            enum vcl_action a = pol_run(s, VCL_SUB_DELIVER, &res);
            if (a != VCL_ACT_DELIVER) {
                unsubscribe(s);
                store_obj_release(&s->obj);
                return cache_synth_or_restart(s, a, &res);
            }
        }
        dlv_begin(s, UINT64_MAX);
    }
    for (;;) {
        d = deliver_pump(s);
        switch (d) {
        case DLV_DONE:
            unsubscribe(s);
            s->state = S_FINISH;
            return STEP_MORE;
        case DLV_DEAD:
        case DLV_ABORTED:
        case DLV_TAIL:
            unsubscribe(s);
            return STEP_DONE;       /* a truncated body must end with a close */
        case DLV_WAIT_WRITE:
            return STEP_WAIT;       /* sess_flush set the watcher and timer */
        case DLV_WAIT_DATA:
            if (!s->subscribed) {
                subscribe(s, s->obj);
                continue;           /* re-check: data may have come meanwhile */
            }
            sess_want(s, 0, 0);
            sess_timer(s, fetch_timeout(s, FETCH_TMO_BETWEEN_BYTES) + 1);
            return STEP_WAIT;
        }
    }
}


/* Surrogate keys of a response (Surrogate-Key, xkey, Cache-Tag), split on
 * whitespace and commas, into tags[] (at most max). */
static size_t
collect_tags(const struct h1_response *r, struct store_bytes *tags, size_t max)
{
    size_t n = 0;

    for (unsigned i = 0; i < r->nhdrs; i++) {
        struct ac_slice nm = r->hdrs[i].name;
        if (!ac_slice_caseeq(nm, AC_LIT("Surrogate-Key")) && !ac_slice_caseeq(nm, AC_LIT("xkey")) &&
            !ac_slice_caseeq(nm, AC_LIT("Cache-Tag")))
            continue;
        const char *p = r->hdrs[i].value.p, *end = p + r->hdrs[i].value.len;
        while (p < end && n < max) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *q = p;
            while (q < end && *q != ' ' && *q != '\t' && *q != ',')
                q++;
            if (q > p)
                tags[n++] = (struct store_bytes){ p, (size_t)(q - p) };
            p = q;
        }
    }
    return n;
}

static void
fill_meta(struct sess *s, const struct h1_response *r, struct store_meta *m,
          struct store_bytes *tags, size_t maxtags)
{
    const struct h1_header *h;
    const struct cache_decision *d = &s->dec;

    memset(m, 0, sizeof(*m));
    m->status = (unsigned)r->status;
    m->headers = (struct store_bytes){ s->scratch2.p, s->scratch2.len };
    if ((h = h1_header_find(r->hdrs, r->nhdrs, AC_LIT("ETag"))) != NULL)
        m->etag = (struct store_bytes){ h->value.p, h->value.len };
    if ((h = h1_header_find(r->hdrs, r->nhdrs, AC_LIT("Last-Modified"))) != NULL)
        m->last_modified = (struct store_bytes){ h->value.p, h->value.len };
    m->selector = (struct store_bytes){ s->scratch.p, s->scratch.len };
    m->ntags = collect_tags(r, tags, maxtags);
    m->tags = tags;
    m->times.date = d->date;
    m->times.insert = s->resp_time - d->initial_age;
    m->times.ttl = d->ttl;
    m->times.grace = d->grace;
    m->times.keep = d->keep;
    m->encoding = cache_gz_store_encoding(r);
    double sie = d->stale_if_error > 1e6 ? 1e6 : d->stale_if_error;
    m->flags = (d->must_revalidate ? OBJ_F_MUSTREVAL : 0) | ((unsigned)sie << OBJ_SIE_SHIFT);
    m->size_hint = r->body == H1_BODY_LENGTH ? (size_t)r->content_length : 0;
}

/* Leave a hit-for-miss marker in the busy object and let it go. */
static void
leave_marker(struct sess *s, double ttl)
{
    struct store_meta m;

    memset(&m, 0, sizeof(m));
    m.status = 0;
    m.flags = STORE_OBJ_F_HFM;
    m.times.insert = now_of(s);
    m.times.date = m.times.insert;
    m.times.ttl = ttl;
    if (store_obj_set_meta(s->busy, &m) == STORE_OK && store_obj_complete(s->busy) == STORE_OK) {
        store_obj_release(&s->busy);
        return;
    }
    store_obj_abort(s->busy);
    store_obj_release(&s->busy);
}

/* Serve the stale copy instead of an origin error (stale-if-error). */
static enum step
serve_stale_on_error(struct sess *s, int upstream)
{
    if (s->busy != NULL) {
        store_obj_abort(s->busy);
        store_obj_release(&s->busy);
    }
    if (s->oc != NULL)
        pool_close(&s->oc);
    s->upstream_status = upstream;
    store_obj_release(&s->obj);
    s->obj = s->stale;
    s->stale = NULL;
    STAT_INC(s->w, cache_stale_error);
    s->xcache = s->cache_state = "STALE";
    s->cstatus = "fwd=uri-miss; detail=stale-if-error";
    s->dlv_started = false;
    s->niov = 0;
    s->timed_out = false;           /* an origin timeout brought us here */
    s->state = S_DELIVER;
    return STEP_MORE;
}

bool
cache_on_origin_fail(struct sess *s)
{
    if (s->bg) {
        if (s->busy != NULL) {
            store_obj_abort(s->busy);
            store_obj_release(&s->busy);
        }
        return false;
    }
    if (stale_if_error_ok(s)) {
        (void)serve_stale_on_error(s, 0);
        return true;
    }
    if (s->busy != NULL) {
        store_obj_abort(s->busy);
        store_obj_release(&s->busy);
    }
    return false;
}

/* A 304 answered our revalidation: freshen the stored object. */
static enum step
freshen(struct sess *s, size_t r)
{
    const struct cache_params *cp = s->w->cparams;
    struct store_bytes ob = store_obj_headers(s->stale);
    struct h1_response mr;
    struct h1_header *mh;
    struct store_meta m;
    struct store_bytes tags[64];
    size_t nt = 0;
    int pr;

    cache_block_freshen(AC_SLICE(ob.p, ob.len), &s->resp, cp, s->resp_time, &s->scratch2);
    unsigned cflags = store_obj_flags(s->stale) & OBJ_F_COMPRESS_MASK;
    if (cflags & OBJ_F_NEGOTIATE)
        cache_gz_strip(&s->scratch2);   /* a 304's ETag goes to the metadata */
    size_t visible_len = s->scratch2.len;
    {
        struct ac_slice u, h;
        cache_block_origin(AC_SLICE(ob.p, ob.len), &u, &h);
        cache_block_seal(&s->scratch2, u, h);
    }
    sess_release_origin(s, s->origin_reusable && s->resp.body == H1_BODY_NONE);
    (void)r;
    /* Decide on the merged header fields, as the stored response now reads. */
    ac_buf_reset(&s->tmpbuf);
    ac_buf_catstr(&s->tmpbuf, "HTTP/1.1 ");
    ac_buf_cat(&s->tmpbuf, s->scratch2.p, visible_len);
    ac_buf_cat(&s->tmpbuf, "\r\n", 2);
    mh = ac_xcalloc((size_t)s->w->cfg->p.max_headers, sizeof(*mh));
    memset(&mr, 0, sizeof(mr));
    mr.hdrs = mh;
    struct h1_limits lim = { s->tmpbuf.len + 1, 0, s->tmpbuf.len + 1,
                             (unsigned)s->w->cfg->p.max_headers, false };
    pr = h1_parse_response(s->tmpbuf.p, s->tmpbuf.len, &lim, AC_LIT("GET"), &mr);
    if (pr > 0)
        cache_decide(&s->req, &mr, s->req_time, s->resp_time, cp, &s->dec);
    if (pr <= 0 || !s->dec.store) {
        /* Not storable any more: serve the copy the origin just confirmed. */
        free(mh);
        leave_marker(s, s->dec.hfm_ttl);
        store_obj_release(&s->obj);
        s->obj = s->stale;
        s->stale = NULL;
        if (s->bg)
            return STEP_DONE;
        s->xcache = s->cache_state = "REVALIDATED";
        s->cstatus = "fwd=stale; fwd-status=304";
        s->state = S_DELIVER;
        return STEP_MORE;
    }
    struct store_bytes sel = store_obj_selector(s->stale);
    ac_buf_reset(&s->scratch);
    ac_buf_cat(&s->scratch, sel.p, sel.len);
    fill_meta(s, &mr, &m, tags, AC_ARRAY_LEN(tags));
    if (m.ntags == 0) {
        nt = store_obj_tag_count(s->stale);
        for (size_t i = 0; i < nt && i < AC_ARRAY_LEN(tags); i++)
            tags[i] = store_obj_tag(s->stale, i);
        m.tags = tags;
        m.ntags = AC_MIN(nt, AC_ARRAY_LEN(tags));
    }
    m.encoding = store_obj_encoding(s->stale);
    m.flags |= cflags;
    if (m.etag.len == 0 && (cflags & OBJ_F_NEGOTIATE))
        m.etag = store_obj_etag(s->stale);  /* kept out of the block, not dropped */
    if (store_obj_set_meta(s->busy, &m) != STORE_OK ||
        store_obj_freshen(s->busy, s->stale) != STORE_OK) {
        free(mh);
        store_obj_abort(s->busy);
        store_obj_release(&s->busy);
        if (s->bg)
            return STEP_DONE;
        s->obj = s->stale;
        s->stale = NULL;
        s->state = S_DELIVER;
        return STEP_MORE;
    }
    free(mh);
    STAT_INC(s->w, cache_revalidated);
    store_obj_release(&s->stale);
    if (s->bg) {
        store_obj_release(&s->busy);
        return STEP_DONE;
    }
    store_obj_release(&s->obj);
    s->obj = s->busy;               /* complete now; our reference moves */
    s->busy = NULL;
    s->xcache = s->cache_state = "REVALIDATED";
    s->cstatus = "fwd=stale; fwd-status=304";
    s->state = S_DELIVER;
    return STEP_MORE;
}

/*
 * vcl_backend_response: the policy sees beresp.ttl/grace/keep as the RFC
 * computed them and may change them, the fields, or cacheability (as in
 * Varnish, the built-in part marks Set-Cookie, no-store, private, Vary: *
 * and ttl <= 0 answers hit-for-miss).  Returns true with *st set when the
 * policy ends the fetch (abandon, retry).
 */
bool
policy_backend_response(struct sess *s, enum step *st)
{
    struct vcl_result res;
    struct cache_decision *d = &s->dec;
    int code = s->resp.status;
    enum vcl_action a;

    s->vcl_uncacheable = false;
    a = pol_run(s, VCL_SUB_BACKEND_RESPONSE, &res);
    switch (a) {
    case VCL_ACT_DELIVER:
        break;
    case VCL_ACT_PASS:
        s->vcl_uncacheable = true;
        d->ttl = res.duration + d->initial_age;
        break;
    case VCL_ACT_RETRY:
        if (s->retries < 4) {
            pool_close(&s->oc);
            s->relay.start = s->relay.end = 0;  /* drop the answer we refuse */
            s->resp_bytes_in = 0;
            s->retries++;
            s->state = S_CONNECT;
            *st = STEP_MORE;
            return true;
        }
        /* fall through */
    default:
        if (s->busy != NULL) {
            store_obj_abort(s->busy);
            store_obj_release(&s->busy);
        }
        if (s->oc != NULL)
            pool_close(&s->oc);
        *st = s->bg ? STEP_DONE : sess_synth(s, 503, NULL, "Backend fetch abandoned\n", false);
        return true;
    }
    if (s->busy == NULL)
        return false;               /* a pass fetch: nothing to store */
    double remaining = d->ttl - d->initial_age;
    if (code < 200 || code == 206 || code == 304) {
        d->store = false;
        d->hfm = false;
    } else if (s->vcl_uncacheable) {
        d->store = false;
        d->hfm = true;
        d->hfm_ttl = remaining > 0 ? remaining : 0;
        d->why = "policy: uncacheable";
    } else if (remaining > 0) {
        d->store = true;
        d->why = NULL;
    } else {
        d->store = false;
        d->hfm = false;
        d->why = "policy: ttl <= 0";
    }
    return false;
}

/* Hand the fill in progress (origin connection, busy object, buffered
 * bytes, body framing state) to a new session without a client. */
static void
detach_fill(struct sess *s)
{
    struct sess *b = sess_new_detached(s->w);

    b->be = s->be;
    b->oc = s->oc;
    s->oc = NULL;
    b->oc->owner = b;
    b->busy = s->busy;
    s->busy = NULL;
    b->relay = s->relay;
    memset(&s->relay, 0, sizeof(s->relay));
    b->resp = s->resp;
    b->resp.hdrs = NULL;            /* copied into the object already */
    b->resp.nhdrs = 0;
    b->respbody_left = s->respbody_left;
    b->respchunk = s->respchunk;
    b->origin_reusable = s->origin_reusable;
    b->origin_eof = s->origin_eof;
    b->fill_len = s->fill_len;
    b->fill_gz = s->fill_gz;        /* the filter state goes with the fill */
    b->fill_buf = s->fill_buf;
    b->fill_gz_check = s->fill_gz_check;
    b->fill_gz_dirty = s->fill_gz_dirty;
    s->fill_gz = NULL;
    s->fill_buf = NULL;
    b->state = S_FILL;
    store_obj_release(&s->obj);
    sess_drive(b);
}

enum step
cache_on_beresp(struct sess *s, size_t r)
{
    const struct cache_params *cp = s->w->cparams;
    struct h1_response *resp = &s->resp;
    struct store_meta m;
    struct store_bytes tags[64];

    s->resp_time = now_of(s);
    if (s->revalidating && resp->status == 304 && s->stale != NULL)
        return freshen(s, r);
    if (resp->status >= 500 && stale_if_error_ok(s))
        return serve_stale_on_error(s, resp->status);
    cache_decide(&s->req, resp, s->req_time, s->resp_time, cp, &s->dec);
    cache_gz_defaults(s, resp);
    if (s->dec.store && resp->body == H1_BODY_LENGTH &&
        (double)resp->content_length > cp->max_object_size) {
        s->dec.store = false;
        s->dec.hfm = true;
        s->dec.hfm_ttl = cp->hfm_ttl;
        s->dec.why = "too big";
    }
    if (s->prog != NULL) {
        enum step st;
        if (policy_backend_response(s, &st))
            return st;
    }
    if (s->dec.store && !cache_vary_selector(resp, &s->req, &s->scratch)) {
        s->dec.store = false;
        s->dec.why = "Vary: *";
    }
    if (!s->dec.store) {
        STAT_INC(s->w, cache_uncacheable);
        leave_marker(s, s->dec.hfm ? s->dec.hfm_ttl : 0);
        if (s->bg) {
            if (s->oc != NULL)
                pool_close(&s->oc);
            return STEP_DONE;
        }
        s->xcache = s->cache_state = "MISS";
        s->cstatus = "fwd=uri-miss; detail=uncacheable";
        fetch_start_respbody(s, r);
        return s->fetch_next;
    }
    unsigned cflags, senc = cache_gz_setup(s, resp, &cflags);
    cache_block_build(resp, cp, s->resp_time, &s->scratch2);
    if (cflags & OBJ_F_NEGOTIATE)
        cache_gz_strip(&s->scratch2);
    cache_block_seal(&s->scratch2, s->req.path, s->req.host);
    fill_meta(s, resp, &m, tags, AC_ARRAY_LEN(tags));
    m.flags |= cflags;
    if (senc != m.encoding || (s->fill_gz != NULL && !s->fill_gz_check))
        m.size_hint = 0;            /* the stored body is not the origin's length */
    m.encoding = senc;
    if (store_obj_set_meta(s->busy, &m) != STORE_OK) {
        store_obj_abort(s->busy);
        store_obj_release(&s->busy);
        fetch_start_respbody(s, r);
        return s->fetch_next;
    }
    ac_iobuf_consume(&s->relay, r);
    s->respbody_left = resp->content_length;
    h1_chunked_init(&s->respchunk);
    s->origin_reusable = !(resp->flags & H1_F_CLOSE) && resp->body != H1_BODY_CLOSE;
    s->fill_len = 0;
    s->fill_done = false;
    store_obj_release(&s->obj);
    s->obj = store_obj_ref(s->busy);
    store_obj_release(&s->stale);
    s->cstatus = "fwd=uri-miss; stored";
    if (!s->bg) {
        if (s->prog != NULL) {
            struct vcl_result res;
            enum vcl_action a = pol_run(s, VCL_SUB_DELIVER, &res);
            if (a != VCL_ACT_DELIVER) {
                /* This client gets something else: a session without a
                 * client finishes the fill for the others. */
                detach_fill(s);
                return cache_synth_or_restart(s, a, &res);
            }
        }
        /* With a filter (even one that only checks), no Content-Length
         * before the body is through it: a gzip body that turns out
         * truncated must not reach this client as a whole response either
         * (chunked, it ends without its last chunk). */
        dlv_begin(s, resp->body == H1_BODY_LENGTH && s->fill_gz == NULL ? resp->content_length
                                                                        : UINT64_MAX);
    }
    s->state = S_FILL;
    return STEP_MORE;
}

enum fill { FILL_MORE, FILL_WAIT, FILL_DONE, FILL_FAIL, FILL_OVERFLOW };


/* Bytes into the busy object (after the filter, if any). */
static enum fill
store_put(struct sess *s, const char *p, size_t n)
{
    if (n == 0)
        return FILL_MORE;
    if ((double)(s->fill_len + n) > s->w->cparams->max_object_size ||
        store_obj_append(s->busy, p, n) != STORE_OK) {
        /* Too big after all (or no memory): the object is dropped (its
         * waiters see it aborted); our client gets the rest straight from
         * the origin -- unless a filter stands between the two, whose
         * output the client is being sent: then the response is cut. */
        store_obj_abort(s->busy);
        store_obj_release(&s->busy);
        if (s->fill_gz != NULL && !s->fill_gz_check)
            return FILL_FAIL;
        if (s->dlv_gz != NULL || s->dlv_alt)
            return FILL_FAIL;
        gz_free(&s->fill_gz);       /* a check only: the origin bytes go on as they are */
        s->fill_overflow = true;
        s->pending_run = AC_SLICE(p, n);
        return FILL_OVERFLOW;
    }
    s->fill_len += n;
    return FILL_MORE;
}

static enum fill
fill_corrupt(struct sess *s)
{
    STAT_INC(s->w, gzip_corrupt);
    LOG_W("origin %s: " AC_SLICE_FMT ": corrupt %s body; object dropped", s->be->name,
          AC_SLICE_ARG(s->req.path), store_obj_encoding(s->busy) == GZ_BR ? "brotli" : "gzip");
    return FILL_FAIL;
}

/*
 * Run the fill filter over n origin bytes (n == 0 with flush: drain it).
 * A checking decoder's output is dropped and the origin bytes stored as
 * they are, after they decoded: bytes that do not are never stored.
 */
static enum fill
fill_filter(struct sess *s, const char *p, size_t n, enum gz_flush flush)
{
    const char *in = p;
    size_t left = n;
    enum fill f;

    for (;;) {
        size_t w = 0, left0 = left;
        int r = gz_run(s->fill_gz, &in, &left, s->fill_buf, GZ_BUFSZ, &w, flush);
        if (r == GZ_ERR)
            return fill_corrupt(s);
        if (w > 0 && !s->fill_gz_check && (f = store_put(s, s->fill_buf, w)) != FILL_MORE)
            return f;
        if (r == GZ_END && flush == GZ_FINISH)
            break;
        if (left == 0 && w < GZ_BUFSZ)
            break;
        if (w == 0 && left == left0)
            break;
    }
    if (s->fill_gz_check)
        return store_put(s, p, n);
    s->fill_gz_dirty = flush == GZ_NOFLUSH && (s->fill_gz_dirty || n > 0);
    return FILL_MORE;
}

static enum fill
fill_append(struct sess *s, const char *p, size_t n)
{
    if (n == 0)
        return FILL_MORE;
    if (s->fill_gz != NULL)
        return fill_filter(s, p, n, GZ_NOFLUSH);
    return store_put(s, p, n);
}

/* The origin body ended: finish the encoder, or check that the decoder
 * saw a whole stream (a truncated gzip body is corrupt too). */
static enum fill
fill_finish(struct sess *s)
{
    enum fill f;

    if (s->fill_gz == NULL)
        return FILL_MORE;
    if (s->fill_gz_check || store_obj_encoding(s->busy) == GZ_IDENTITY) {
        if (!gz_finished(s->fill_gz))
            return fill_corrupt(s);
        return FILL_MORE;
    }
    if ((f = fill_filter(s, NULL, 0, GZ_FINISH)) != FILL_MORE)
        return f;
    return gz_finished(s->fill_gz) ? FILL_MORE : FILL_FAIL;
}

/* Origin bytes into the busy object, as fast as the origin sends. */
static enum fill
fill_origin(struct sess *s)
{
    struct ac_iobuf *b = &s->relay;
    enum fill f;
    ssize_t n;

    for (int reads = 0; reads < 8;) {
        if (fetch_body_done(s)) {
            if ((f = fill_finish(s)) != FILL_MORE)
                return f;
            int r = store_obj_complete(s->busy);
            const struct config_params *p = &s->w->cfg->p;
            if (r == STORE_OK && (store_obj_flags(s->busy) & OBJ_F_BROTLI) &&
                (double)s->fill_len <= p->brotli_max_size)
                (void)brjob_submit(s->busy, (int)p->brotli_level);
            store_obj_release(&s->busy);
            sess_release_origin(s, s->origin_reusable && ac_iobuf_len(b) == 0);
            s->fill_done = true;
            return r == STORE_OK ? FILL_DONE : FILL_FAIL;
        }
        if (ac_iobuf_len(b) > 0) {
            switch (s->resp.body) {
            case H1_BODY_LENGTH: {
                size_t take = (size_t)AC_MIN((uint64_t)ac_iobuf_len(b), s->respbody_left);
                const char *p = ac_iobuf_head(b);
                if ((f = fill_append(s, p, take)) != FILL_MORE)
                    return f;
                b->start += take;
                s->respbody_left -= take;
                break;
            }
            case H1_BODY_CHUNKED: {
                struct ac_slice data;
                long c = h1_chunked_decode(&s->respchunk, ac_iobuf_head(b), ac_iobuf_len(b), &data);
                if (c < 0) {
                    LOG_W("origin %s: bad chunked body (%s)", s->be->name,
                          s->respchunk.reason ? s->respchunk.reason : "?");
                    return FILL_FAIL;
                }
                b->start += (size_t)c;
                if ((f = fill_append(s, data.p, data.len)) != FILL_MORE)
                    return f;
                break;
            }
            case H1_BODY_CLOSE: {
                size_t take = ac_iobuf_len(b);
                if ((f = fill_append(s, ac_iobuf_head(b), take)) != FILL_MORE)
                    return f;
                b->start += take;
                break;
            }
            case H1_BODY_NONE:
                break;
            }
            continue;
        }
        b->start = b->end = 0;
        n = conn_read(&s->oc->c, b->data, b->cap);
        reads++;
        if (n > 0) {
            b->end = (size_t)n;
            continue;
        }
        if (n == AC_AGAIN) {
            /* Nothing more for now: what the encoder holds goes out, so
             * clients streaming the busy object are not kept waiting. */
            if (s->fill_gz_dirty && (f = fill_filter(s, NULL, 0, GZ_SYNC)) != FILL_MORE)
                return f;
            return FILL_WAIT;
        }
        if (n == 0 && s->resp.body == H1_BODY_CLOSE) {
            s->origin_eof = true;
            s->origin_reusable = false;
            continue;
        }
        LOG_W("origin %s: %s mid-body; object dropped", s->be->name,
              n == 0 ? "closed" : "error");
        return FILL_FAIL;
    }
    return FILL_MORE;               /* yield: let the client side run */
}

enum step
cache_fill_step(struct sess *s)
{
    const struct config *cfg = s->w->cfg;

    for (;;) {
        enum fill f = FILL_DONE;
        enum dlv d = DLV_DONE;

        if (s->timed_out) {
            s->timed_out = false;
            if (!s->fill_done && !s->fill_overflow) {
                LOG_W("origin %s: body stalled for %gs; object dropped", s->be->name,
                      fetch_timeout(s, FETCH_TMO_BETWEEN_BYTES));
                STAT_INC(s->w, backend_timeout);
                store_obj_abort(s->busy);
                store_obj_release(&s->busy);
                return STEP_DONE;
            }
            return STEP_DONE;       /* the client stopped reading */
        }
        if (!s->fill_done && !s->fill_overflow) {
            f = fill_origin(s);
            if (f == FILL_FAIL) {
                if (s->busy != NULL) {
                    store_obj_abort(s->busy);
                    store_obj_release(&s->busy);
                }
                return STEP_DONE;   /* our client (if any) must see a close */
            }
            if (f == FILL_OVERFLOW && (s->bg || s->client_dead))
                return STEP_DONE;
        }
        if (!s->bg && !s->client_dead) {
            d = deliver_pump(s);
            if (d == DLV_DEAD) {
                s->client_dead = true;
                s->niov = 0;
                if (s->fill_overflow)
                    return STEP_DONE;
            } else if (d == DLV_ABORTED) {
                return STEP_DONE;
            } else if (d == DLV_TAIL) {
                /* The object is gone; the rest comes from the origin. */
                s->resp_chunked_out = s->dlv_chunked;
                s->resp_close_out = !s->dlv_chunked;
                s->resp_head_done = false;
                s->keepalive = s->keepalive && s->dlv_chunked;
                s->niov = 0;
                if (s->pending_run.len)
                    fetch_emit(s, s->pending_run.p, s->pending_run.len);
                store_obj_release(&s->obj);
                s->state = S_RESPBODY;
                return STEP_MORE;
            }
        }
        bool client_finished = s->bg || s->client_dead || d == DLV_DONE;
        if (s->fill_done && client_finished) {
            if (s->bg || s->client_dead)
                return STEP_DONE;
            s->state = S_FINISH;
            return STEP_MORE;
        }
        if (f == FILL_MORE || (f == FILL_DONE && !client_finished && d == DLV_WAIT_DATA))
            continue;
        int cev = (!s->bg && !s->client_dead && d == DLV_WAIT_WRITE) ? s->c.want : 0;
        int oev = (!s->fill_done && !s->fill_overflow && s->oc != NULL) ? s->oc->c.want : 0;
        sess_want(s, cev, oev);
        sess_timer(s, oev ? fetch_timeout(s, FETCH_TMO_BETWEEN_BYTES) : cfg->p.send_timeout);
        return STEP_WAIT;
    }
}

void
cache_pass_headers(struct sess *s, struct ac_buf *b)
{
    if (s->xcache == NULL)
        return;
    if (s->n_resp_ops == 0 || !pol_overlay_has(s->resp_ops, s->n_resp_ops, AC_LIT("X-Cache")))
        ac_buf_printf(b, "X-Cache: %s\r\n", s->xcache);
    if (s->n_resp_ops == 0 ||
        !pol_overlay_has(s->resp_ops, s->n_resp_ops, AC_LIT("Cache-Status")))
        ac_buf_printf(b, "Cache-Status: accel; %s\r\n", s->cstatus ? s->cstatus : "fwd=uri-miss");
}

