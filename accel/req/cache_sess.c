/*
 * cache_sess.c -- the caching states of a request: lookup, waiting on a
 * busy object (request coalescing), delivery from an object, and filling a
 * busy object from the origin while delivering it.  The rules themselves
 * (what to store, for how long) are in cache.c.
 *
 * Who fills: the request whose lookup created the busy object fetches and
 * appends the body to it at the origin's speed, while it delivers the object
 * to its own client at the client's speed; every other request for the key
 * waits on the busy object and streams it as it grows.  If that client goes
 * away, the request keeps filling for the others without a transport
 * (client_dead).  Background refreshes (grace) are internal requests
 * without a client (bg) that carry the metadata of the request that found
 * the object stale.
 */
#include "req_int.h"

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
now_of(const struct req *req)
{
    return ev_now(req->w->loop);
}

static bool
match_cb(void *arg, struct store_bytes sel)
{
    struct req *req = arg;

    return cache_vary_match(AC_SLICE(sel.p, sel.len), &req->http);
}

static void
on_store_change(struct store_waiter *wt)
{
    struct req *req = wt->priv;

    wrk_wake(req->w, &req->wake);   /* any thread: queue for the request's worker */
}

void
cache_on_wake(struct wrk_wakeup *wu)
{
    struct req *req = AC_CONTAINER_OF(wu, struct req, wake);

    AC_CHECK_OBJ(req, REQ_MAGIC);
    if (req->in_drive)
        return;
    if (req->state == R_WAITOBJ || req->state == R_DELIVER)
        req_drive(req);
}

static void
subscribe(struct req *req, struct store_obj *o)
{
    if (req->subscribed)
        return;
    store_waiter_init(&req->waiter, on_store_change, req);
    AC_ZERO(store_waiter_subscribe(o, &req->waiter));
    req->subscribed = true;
}

static void
unsubscribe(struct req *req)
{
    if (!req->subscribed)
        return;
    store_waiter_unsubscribe(&req->waiter);
    req->subscribed = false;
    wrk_wake_cancel(req->w, &req->wake);
}

void
cache_req_reset(struct req *req)
{
    unsubscribe(req);
    if (req->busy != NULL) {
        /* A fill that did not finish: readers must not take it for whole. */
        if (store_obj_state(req->busy, NULL) == STORE_OBJ_BUSY)
            store_obj_abort(req->busy);
        store_obj_release(&req->busy);
    }
    store_obj_release(&req->obj);
    store_obj_release(&req->stale);
    req->lookups = 0;
    req->revalidating = false;
    req->xcache = NULL;
    req->cstatus = NULL;
    req->dlv_started = req->dlv_done = false;
    req->dlv_off = req->dlv_end = 0;
    req->fill_done = req->fill_overflow = false;
    req->fill_len = 0;
    req->pending_run = AC_SLICE(NULL, 0);
    gz_free(&req->fill_gz);
    gz_free(&req->dlv_gz);
    free(req->fill_buf);
    free(req->dlv_buf);
    req->fill_buf = req->dlv_buf = NULL;
    req->fill_gz_check = req->fill_gz_dirty = req->dlv_alt = false;
}

static bool
stale_if_error_ok(const struct req *req)
{
    struct store_times t;
    unsigned f;

    if (req->stale == NULL)
        return false;
    f = store_obj_flags(req->stale);
    if (f & (OBJ_F_MUSTREVAL | STORE_OBJ_F_HFM))
        return false;
    store_obj_times(req->stale, &t);
    return now_of(req) < t.insert + t.ttl + (double)(f >> OBJ_SIE_SHIFT);
}

/* Go to the origin without the cache (pass, hit-for-miss). */
enum step
cache_synth_or_restart(struct req *req, enum vcl_action a, const struct vcl_result *res)
{
    if (a == VCL_ACT_RESTART)
        return req_restart(req);
    req->cache_state = "SYNTH";     /* the policy answered (access log) */
    if (a == VCL_ACT_SYNTH)
        return req_synth(req, (int)res->status,
                          res->reason.p ? pol_cstr(req, res->reason) : NULL, NULL, false);
    return req_synth(req, 503, NULL, "Policy failure\n", false);
}

static enum step
go_pass(struct req *req, const char *xcache, const char *cstatus)
{
    struct vcl_result res;

    req->xcache = xcache;
    req->cstatus = cstatus;
    req->cache_state = xcache;
    req->req_time = now_of(req);
    if (req->prog != NULL) {
        enum vcl_action a = pol_run(req, VCL_SUB_PASS, &res);
        if (a != VCL_ACT_FETCH)
            return cache_synth_or_restart(req, a, &res);
    }
    return req_start_pass(req);
}

static enum step
go_fetch(struct req *req)
{
    struct vcl_result res;

    req->xcache = "MISS";
    req->cstatus = "fwd=uri-miss";
    req->cache_state = "MISS";
    req->req_time = now_of(req);
    if (req->prog != NULL) {
        enum vcl_action a = pol_run(req, VCL_SUB_MISS, &res);
        if (a != VCL_ACT_FETCH) {
            if (req->busy != NULL) {
                store_obj_abort(req->busy);
                store_obj_release(&req->busy);
            }
            if (a == VCL_ACT_PASS)
                return go_pass(req, "PASS", "fwd=uri-miss");
            return cache_synth_or_restart(req, a, &res);
        }
        req->fetch.be = pol_backend(req);
        if (req->fetch.be == NULL)
            return req_no_backend(req);     /* stale-if-error, else 503 */
    }
    req_start_cache_fetch(req, ac_buf_slice(&req->key));
    return STEP_MORE;
}

/*
 * return (pipe): the request goes to the origin with Connection: close and
 * from then on the transport copies bytes both ways, unparsed, until either
 * side closes (Varnish's pipe).  vcl_pipe may still answer with synth.  A
 * transport that cannot tunnel (HTTP/2) gets a pass, as in Varnish.
 */
static enum step
go_pipe(struct req *req)
{
    struct vcl_result res;
    enum vcl_action a;

    if (req->xp == NULL || req->xp->ops->tunnel == NULL) {
        STAT_INC(req->w, cache_pass);
        return go_pass(req, "PASS", "fwd=request");
    }
    a = pol_run(req, VCL_SUB_PIPE, &res);
    if (a != VCL_ACT_PIPE)
        return cache_synth_or_restart(req, a, &res);
    req->fetch.be = pol_backend(req);
    if (req->fetch.be == NULL)
        return req_synth(req, 503, NULL, "No origin server for this request\n", false);
    req->piping = true;
    req->xcache = req->cache_state = "PIPE";
    req_build_bereq(req);
    req->state = R_CONNECT;
    return STEP_MORE;
}

/* vcl_recv's verdict. */
enum step
cache_policy_recv(struct req *req)
{
    struct vcl_result res;
    enum vcl_action a = pol_run(req, VCL_SUB_RECV, &res);

    req->kind = CACHE_REQ_PASS;
    switch (a) {
    case VCL_ACT_HASH:
        if (req->w->store == NULL || req->http.body != H1_BODY_NONE || (req->http.flags & H1_F_UPGRADE))
            break;                  /* bodies and tunnels always pass */
        req->kind = CACHE_REQ_LOOKUP;
        req->state = R_LOOKUP;
        return STEP_MORE;
    case VCL_ACT_PASS:
        break;
    case VCL_ACT_PIPE:
        return go_pipe(req);
    case VCL_ACT_PURGE:
        return cache_policy_purge(req);
    default:
        return cache_synth_or_restart(req, a, &res);
    }
    if (!ac_slice_eq(req->http.method, AC_LIT("GET")) && !ac_slice_eq(req->http.method, AC_LIT("HEAD")))
        req->kind = CACHE_REQ_UNSAFE;
    STAT_INC(req->w, cache_pass);
    return go_pass(req, "PASS", "fwd=request");
}


/* Run vcl_hash into req->key (with a policy) or compute the default key. */
int
cache_make_key(struct req *req)
{
    struct vcl_result res;

    if (req->prog == NULL) {
        cache_key(&req->http, &req->key);
        return 0;
    }
    ac_buf_reset(&req->key);
    if (pol_run(req, VCL_SUB_HASH, &res) != VCL_ACT_LOOKUP)
        return -1;
    return 0;
}

/*
 * A background refresh of a stale object (grace): an internal request
 * without a client, on this worker, with a copy of this request's head (as
 * the policy left it) and metadata, so the origin sees the real client
 * (X-Forwarded-For) and the policy its client.ip.  One fetch, nothing
 * delivered.
 */
static void
bgfetch_start(struct req *req, struct store_obj *busy, struct store_obj *stale)
{
    struct req *b = req_new_internal(req, NULL, REQ_INT_HEAD);

    b->bg = true;
    b->client_dead = true;
    STAT_INC(req->w, cache_bgfetch);
    b->kind = CACHE_REQ_LOOKUP;
    b->busy = busy;
    b->stale = stale;
    if (req->prog != NULL) {
        pol_begin_from(b, req->prog);
        b->backend_hint = req->backend_hint;
        /* hash/shard: the refresh goes where the foreground fetch would */
        b->dir_key = req->dir_key_set ? req->dir_key : dir_hash(req->key.p, req->key.len);
        b->dir_key_set = true;
        b->fetch.be = pol_backend(b);
    } else {
        b->fetch.be = pool_pick(req->w);
    }
    b->state = R_FINISH;            /* no origin: it ends at once */
    if (b->fetch.be != NULL) {
        b->req_time = now_of(req);
        req_start_cache_fetch(b, ac_buf_slice(&req->key));
    }
    req_drive(b);
}

enum step
cache_lookup_step(struct req *req)
{
    struct store_lookup lk;
    struct store_obj *o = NULL, *busy = NULL;
    int r;

    if (++req->lookups > (unsigned)req->w->cfg->p.max_restarts)
        return req_synth(req, 503, NULL, "The object could not be fetched\n", false);
    if (req->lookups == 1 && cache_make_key(req) != 0)
        return req_synth(req, 503, NULL, "Policy failure in vcl_hash\n", false);
    memset(&lk, 0, sizeof(lk));
    lk.key = (struct store_bytes){ req->key.p, req->key.len };
    lk.now = now_of(req);
    lk.match = match_cb;
    lk.match_arg = req;
    lk.flags = STORE_LOOKUP_CREATE | STORE_LOOKUP_REFRESH | peer_lookup_flags(req);
    if (req->hash_always_miss)
        lk.flags |= STORE_LOOKUP_FORCE_MISS;
    r = store_lookup(req->w->store, &lk, &o, &busy);
    if (r == STORE_HIT && req->prog != NULL && !(store_obj_flags(o) & STORE_OBJ_F_HFM) &&
        store_obj_freshness(o, lk.now) != STORE_STALE_IN_KEEP) {
        struct vcl_result res;
        enum vcl_action a;
        req->obj = o;                 /* obj.* for vcl_hit */
        a = pol_run(req, VCL_SUB_HIT, &res);
        req->obj = NULL;
        if (a != VCL_ACT_DELIVER) {
            store_obj_release(&o);
            if (busy != NULL) {
                store_obj_abort(busy);
                store_obj_release(&busy);
            }
            if (a == VCL_ACT_PASS)
                return go_pass(req, "PASS", "fwd=request");
            if (a == VCL_ACT_MISS) {
                req->hash_always_miss = true;     /* look up again, ignoring the object */
                return STEP_MORE;
            }
            return cache_synth_or_restart(req, a, &res);
        }
    }
    switch (r) {
    case STORE_HIT:
        if (store_obj_flags(o) & STORE_OBJ_F_HFM) {
            store_obj_release(&o);
            STAT_INC(req->w, cache_hitmiss);
            return go_pass(req, "PASS", "fwd=uri-miss; detail=hit-for-miss");
        }
        switch (store_obj_freshness(o, lk.now)) {
        case STORE_FRESH:
            req->obj = o;
            STAT_INC(req->w, cache_hit);
            req->xcache = req->cache_state = "HIT";
            req->cstatus = "hit";
            req->state = R_DELIVER;
            return STEP_MORE;
        case STORE_STALE_IN_GRACE:
            req->obj = o;
            STAT_INC(req->w, cache_stale);
            req->xcache = req->cache_state = "STALE";
            req->cstatus = busy != NULL ? "hit; fwd=stale; detail=refreshing" : "hit; fwd=stale";
            if (busy != NULL)
                bgfetch_start(req, busy, store_obj_ref(o));
            req->state = R_DELIVER;
            return STEP_MORE;
        case STORE_STALE_IN_KEEP:
            /* Only good for revalidation (and stale-if-error). */
            req->stale = o;
            if (busy != NULL) {
                req->busy = busy;
                STAT_INC(req->w, cache_miss);
                return go_fetch(req);
            }
            /* Another request is revalidating it: wait on that fetch (the
             * store answers with the stale copy; ask again for the busy one,
             * keeping the stale copy for stale-if-error). */
            {
                struct store_lookup lk2 = lk;
                struct store_obj *b2 = NULL;
                lk2.flags = STORE_LOOKUP_FORCE_MISS | STORE_LOOKUP_MEM_ONLY;
                if (store_lookup(req->w->store, &lk2, &b2, NULL) == STORE_BUSY) {
                    req->obj = b2;
                    STAT_INC(req->w, cache_coalesced);
                    req->state = R_WAITOBJ;
                    return STEP_MORE;
                }
                store_obj_release(&b2);
                store_obj_release(&req->stale);
                return STEP_MORE;   /* the fetch just ended: look up again */
            }
        case STORE_EXPIRED:
            store_obj_release(&o);
            if (busy != NULL)
                store_obj_abort(busy), store_obj_release(&busy);
            return go_pass(req, "MISS", "fwd=uri-miss");
        }
        break;
    case STORE_BUSY:
        req->obj = o;
        STAT_INC(req->w, cache_coalesced);
        req->state = R_WAITOBJ;
        return STEP_MORE;
    case STORE_MISS_CREATED:
        req->busy = o;
        STAT_INC(req->w, cache_miss);
        return go_fetch(req);
    case STORE_MISS:
        return go_pass(req, "MISS", "fwd=uri-miss");
    default:
        break;
    }
    LOG_W("store lookup: %s", store_strerror(r));
    return go_pass(req, "PASS", "fwd=uri-miss; detail=store-error");
}

enum step
cache_waitobj_step(struct req *req)
{
    struct store_obj *o = req->obj;
    enum store_obj_state st;

    if (req->timed_out) {
        unsubscribe(req);
        return req_synth(req, 504, NULL, "Timed out waiting for the origin\n", false);
    }
    ev_timer_stop(req->w->loop, &req->tmr);    /* re-armed when it waits again */
    subscribe(req, o);
    st = store_obj_state(o, NULL);
    if (store_obj_has_meta(o)) {
        struct store_bytes sel = store_obj_selector(o);
        if (store_obj_flags(o) & STORE_OBJ_F_HFM) {
            unsubscribe(req);
            store_obj_release(&req->obj);
            STAT_INC(req->w, cache_hitmiss);
            return go_pass(req, "PASS", "fwd=uri-miss; detail=hit-for-miss");
        }
        if (!cache_vary_match(AC_SLICE(sel.p, sel.len), &req->http)) {
            unsubscribe(req);
            store_obj_release(&req->obj);
            req->state = R_LOOKUP;    /* another variant: look up again */
            return STEP_MORE;
        }
        req->xcache = req->cache_state = "MISS";
        req->cstatus = "fwd=uri-miss; collapsed";
        req->state = R_DELIVER;
        return STEP_MORE;
    }
    if (st == STORE_OBJ_ABORTED) {
        unsubscribe(req);
        store_obj_release(&req->obj);
        req->state = R_LOOKUP;        /* the fetch failed: try ourselves */
        return STEP_MORE;
    }
    req_timer(req, req_fetch_timeout(req, FETCH_TMO_CONNECT) +
                       req_fetch_timeout(req, FETCH_TMO_FIRST_BYTE));
    return STEP_WAIT;
}

#define OURS(name) (req->n_resp_ops == 0 || !pol_overlay_has(req->resp_ops, req->n_resp_ops, AC_LIT(name)))

/*
 * Build the response head for delivering req->obj and hand it to the
 * transport: the stored header block as it was stored (its status line
 * too when the status is the stored one), then a small per-request tail
 * (validators, range, coding, Age, Via, X-Cache, Cache-Status).  Framing
 * and connection fields are the transport's.  false: the client is gone.
 */
static bool
dlv_begin(struct req *req, uint64_t expect_len)
{
    struct store_obj *o = req->obj;
    unsigned status = store_obj_status(o);
    unsigned flags = store_obj_flags(o), stored_enc = store_obj_encoding(o);
    struct store_bytes blk = store_obj_headers(o);
    struct store_bytes et = store_obj_etag(o), lm = store_obj_last_modified(o);
    struct ac_slice block = cache_block_visible(AC_SLICE(blk.p, blk.len));
    struct ac_slice etag = AC_SLICE(et.p, et.len), lmod = AC_SLICE(lm.p, lm.len);
    struct ac_buf *t = &req->dlv_tail;
    struct store_times tm;
    size_t len = 0;
    bool complete = store_obj_state(o, &len) == STORE_OBJ_COMPLETE;
    bool head = ac_slice_eq(req->http.method, AC_LIT("HEAD"));
    bool body = !head && status != 204 && status != 304;
    bool negotiate = (flags & OBJ_F_NEGOTIATE) != 0, decode = false;
    unsigned code = status, enc = cache_gz_choose(req, complete, len);
    uint64_t first = 0, last = 0;
    enum xp_body xb = XP_BODY_STREAM;
    struct xp_head h;
    double age;

    req->dlv_started = true;
    req->dlv_off = 0;
    req->dlv_end = UINT64_MAX;
    store_obj_times(o, &tm);
    age = now_of(req) - tm.insert;
    ac_buf_reset(t);
    if (req->dlv_alt)
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
    if (status == 200 && cache_not_modified(&req->http, etag, lmod)) {
        code = 304;
        body = false;
    } else if (status == 200 && complete) {
        int r = cache_range(&req->http, len, etag, lmod, &first, &last);
        if (r == 206) {
            code = 206;
            req->dlv_off = first;
            req->dlv_end = last + 1;
            xb = XP_BODY_LENGTH;
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
        if (complete || expect_len != UINT64_MAX) {
            ac_buf_catstr(t, "Content-Length: ");
            ac_buf_catu(t, complete ? (uint64_t)len : expect_len);
            ac_buf_cat(t, "\r\n", 2);
            xb = XP_BODY_LENGTH;
        }
    }
    if (!body)
        xb = XP_BODY_NONE;
    if (negotiate) {
        /* a 304 carries the validators and Vary, not the coding (RFC 9110 §15.4.5) */
        if (enc != GZ_IDENTITY && code != 304 && OURS("Content-Encoding"))
            ac_buf_catstr(t, enc == GZ_BR ? "Content-Encoding: br\r\n" : "Content-Encoding: gzip\r\n");
        if (!(flags & OBJ_F_VARY_AE) && OURS("Vary"))
            ac_buf_catstr(t, "Vary: Accept-Encoding\r\n");
    }
    if (decode && body && code == status) {
        req->dlv_gz = gz_new(stored_enc == GZ_BR ? GZ_K_BR_DEC : GZ_K_GZIP_DEC, 0, 0);
        AC_NOTNULL(req->dlv_gz);      /* zlib/brotli fail only when out of memory */
        req->dlv_buf = ac_xmalloc(GZ_BUFSZ);
        STAT_INC(req->w, gzip_decoded);
    }
    if (req->dlv_alt && body)
        STAT_INC(req->w, brotli_delivered);
    /* accel's own fields, unless the policy set or unset them in vcl_deliver */
    if (OURS("Age")) {
        ac_buf_catstr(t, "Age: ");
        ac_buf_cati(t, (int64_t)(age > 0 ? floor(age) : 0));
        ac_buf_cat(t, "\r\n", 2);
    }
    if (OURS("Via"))
        ac_buf_catstr(t, "Via: 1.1 accel\r\n");
    if (OURS("X-Cache")) {
        ac_buf_catstr(t, "X-Cache: ");
        ac_buf_catstr(t, req->xcache ? req->xcache : "HIT");
        ac_buf_cat(t, "\r\n", 2);
    }
    if (OURS("Cache-Status")) {
        ac_buf_catstr(t, "Cache-Status: accel; ");
        ac_buf_catstr(t, req->cstatus ? req->cstatus : "hit");
        ac_buf_catstr(t, "; ttl=");
        ac_buf_cati(t, (int64_t)floor(tm.insert + tm.ttl - now_of(req)));
        ac_buf_cat(t, "\r\n", 2);
    }
    peer_dlv_fields(req, t);        /* a cluster peer gets the object's tags */
    AC_ASSERT(!ac_buf_error(t));

    /* the stored status line ("200 OK\r\n") and the fields after it */
    const char *nl = memchr(block.p, '\n', block.len);
    size_t l1 = nl ? (size_t)(nl - block.p) + 1 : block.len;
    struct ac_slice line = AC_SLICE(block.p, l1), fields = AC_SLICE(block.p + l1, block.len - l1);
    struct ac_slice reason = AC_SLICE(NULL, 0);
    const char *sp = memchr(block.p, ' ', l1);
    if (sp != NULL) {
        const char *e = l1 >= 2 && line.p[l1 - 2] == '\r' ? line.p + l1 - 2 : line.p + l1 - 1;
        if (nl == NULL)
            e = line.p + l1;
        if (e > sp)
            reason = AC_SLICE(sp + 1, (size_t)(e - sp - 1));
    }
    memset(&h, 0, sizeof(h));
    h.body = xb;
    ac_buf_reset(&req->whead);
    if (req->n_resp_ops > 0 || req->resp_status_set || req->resp_reason.p != NULL) {
        /* The policy changed the answer: write the head field by field. */
        size_t pos = 0, rl;
        if (req->resp_status_set)
            code = (unsigned)req->resp_status_set;
        if (req->resp_reason.p != NULL)
            ac_buf_cats(&req->whead, req->resp_reason);
        else if (code == status)
            ac_buf_cats(&req->whead, reason);
        else
            ac_buf_catstr(&req->whead, http_reason((int)code));
        rl = req->whead.len;
        while (pos < fields.len) {
            const char *e = memchr(fields.p + pos, '\n', fields.len - pos);
            size_t ll = e ? (size_t)(e - fields.p - pos) + 1 : fields.len - pos;
            const char *colon = memchr(fields.p + pos, ':', ll);
            if (colon == NULL ||
                !pol_overlay_has(req->resp_ops, req->n_resp_ops,
                                 AC_SLICE(fields.p + pos, (size_t)(colon - fields.p - pos))))
                ac_buf_cat(&req->whead, fields.p + pos, ll);
            pos += ll;
        }
        req_cat_resp_overlay(req, &req->whead);
        AC_ASSERT(!ac_buf_error(&req->whead));
        h.reason = AC_SLICE(req->whead.p, rl);
        h.blk[h.nblk++] = AC_SLICE(req->whead.p + rl, req->whead.len - rl);
    } else if (code == status) {
        h.line = line;              /* as stored: one iovec with the fields */
        h.reason = reason;
        h.blk[h.nblk++] = fields;
    } else {
        h.reason = AC_SLICE(http_reason((int)code), strlen(http_reason((int)code)));
        h.blk[h.nblk++] = fields;
    }
    h.blk[h.nblk++] = ac_buf_slice(t);
    h.status = code;
    req->status = (int)code;
    if (!body)
        req->dlv_end = req->dlv_off;
    return req_send_head(req, &h);
}

/* The body being delivered: the object's own, or its alternate body. */
static enum store_obj_state
dlv_state(const struct req *req, size_t *lenp)
{
    if (req->dlv_alt) {
        (void)store_obj_alt(req->obj, NULL, lenp);
        return STORE_OBJ_COMPLETE;
    }
    return store_obj_state(req->obj, lenp);
}

static size_t
dlv_read(const struct req *req, size_t off, struct store_bytes *segs, size_t n)
{
    return req->dlv_alt ? store_obj_alt_read(req->obj, off, segs, n)
                      : store_obj_read(req->obj, off, segs, n);
}

/*
 * Move object bytes to the client until something blocks.  Segments go to
 * the transport straight from the store, several per write, the first
 * ones behind the head (HTTP/1.1: a small hit is one writev -- and one TLS
 * record); the last write says XP_W_END.
 */
static enum dlv
deliver_pump(struct req *req)
{
    if (req->out_wait)
        return DLV_WAIT_WRITE;
    if (req->dlv_gz != NULL && !req->dlv_done && req->dlv_end == UINT64_MAX)
        return cache_gz_pump(req);
    for (;;) {
        size_t len = 0;
        enum store_obj_state st = dlv_state(req, &len);
        uint64_t avail = AC_MIN((uint64_t)len, req->dlv_end);
        struct iovec iov[XP_MAX_IOV];
        unsigned fl = 0;
        int n = 0;

        if (!req->dlv_done && req->dlv_off < avail) {
            struct store_bytes segs[XP_MAX_IOV];
            size_t ns = dlv_read(req, (size_t)req->dlv_off, segs, XP_MAX_IOV);
            uint64_t total = 0;
            for (size_t i = 0; i < ns && req->dlv_off + total < avail; i++) {
                size_t take = (size_t)AC_MIN((uint64_t)segs[i].len, avail - req->dlv_off - total);
                iov[n].iov_base = (void *)(uintptr_t)segs[i].p;
                iov[n].iov_len = take;
                n++;
                total += take;
            }
            req->dlv_off += total;
            req->bytes_sent += total;
        }
        if (!req->dlv_done && req->dlv_off >= avail &&
            (st == STORE_OBJ_COMPLETE || req->dlv_off >= req->dlv_end)) {
            req->dlv_done = true;
            fl = XP_W_END;
        }
        if (n > 0 || fl) {
            int r = req_write(req, iov, n, fl);
            if (r == AC_AGAIN)
                return DLV_WAIT_WRITE;
            if (r != AC_OK)
                return DLV_DEAD;
            continue;
        }
        if (req->dlv_done)
            return DLV_DONE;
        if (req->dlv_off < avail)
            continue;
        if (st == STORE_OBJ_ABORTED)
            return req->fill_overflow ? DLV_TAIL : DLV_ABORTED;
        if (req->head_pending) {
            /* the body is still coming: the head goes out now */
            int r = req_flush_head(req);
            if (r == AC_AGAIN)
                return DLV_WAIT_WRITE;
            if (r != AC_OK)
                return DLV_DEAD;
        }
        return DLV_WAIT_DATA;
    }
}

enum step
cache_deliver_step(struct req *req)
{
    enum dlv d;

    if (req->timed_out) {
        /* no progress from the fetch: give up on this one */
        unsubscribe(req);
        return STEP_DONE;
    }
    if (!req->dlv_started) {
        if (req->prog != NULL) {
            struct vcl_result res;
            enum vcl_action a = pol_run(req, VCL_SUB_DELIVER, &res);
            if (a != VCL_ACT_DELIVER) {
                unsubscribe(req);
                store_obj_release(&req->obj);
                return cache_synth_or_restart(req, a, &res);
            }
        }
        if (!dlv_begin(req, UINT64_MAX)) {
            unsubscribe(req);
            return STEP_DONE;
        }
    }
    for (;;) {
        d = deliver_pump(req);
        switch (d) {
        case DLV_DONE:
            unsubscribe(req);
            ev_timer_stop(req->w->loop, &req->tmr);
            req->state = R_FINISH;
            return STEP_MORE;
        case DLV_DEAD:
        case DLV_ABORTED:
        case DLV_TAIL:
            unsubscribe(req);
            return STEP_DONE;       /* a truncated body must end with a close */
        case DLV_WAIT_WRITE:
            /* the transport resumes us (and times a client out itself) */
            ev_timer_stop(req->w->loop, &req->tmr);
            return STEP_WAIT;
        case DLV_WAIT_DATA:
            if (!req->subscribed) {
                subscribe(req, req->obj);
                continue;           /* re-check: data may have come meanwhile */
            }
            req_timer(req, req_fetch_timeout(req, FETCH_TMO_BETWEEN_BYTES) + 1);
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
fill_meta(struct req *req, const struct h1_response *r, struct store_meta *m,
          struct store_bytes *tags, size_t maxtags)
{
    const struct h1_header *h;
    const struct cache_decision *d = &req->dec;

    memset(m, 0, sizeof(*m));
    m->status = (unsigned)r->status;
    m->headers = (struct store_bytes){ req->scratch2.p, req->scratch2.len };
    if ((h = h1_header_find(r->hdrs, r->nhdrs, AC_LIT("ETag"))) != NULL)
        m->etag = (struct store_bytes){ h->value.p, h->value.len };
    if ((h = h1_header_find(r->hdrs, r->nhdrs, AC_LIT("Last-Modified"))) != NULL)
        m->last_modified = (struct store_bytes){ h->value.p, h->value.len };
    m->selector = (struct store_bytes){ req->scratch.p, req->scratch.len };
    m->ntags = collect_tags(r, tags, maxtags);
    m->tags = tags;
    m->times.date = d->date;
    m->times.insert = req->resp_time - d->initial_age;
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
leave_marker(struct req *req, double ttl)
{
    struct store_meta m;

    memset(&m, 0, sizeof(m));
    m.status = 0;
    m.flags = STORE_OBJ_F_HFM;
    m.times.insert = now_of(req);
    m.times.date = m.times.insert;
    m.times.ttl = ttl;
    if (store_obj_set_meta(req->busy, &m) == STORE_OK && store_obj_complete(req->busy) == STORE_OK) {
        store_obj_release(&req->busy);
        return;
    }
    store_obj_abort(req->busy);
    store_obj_release(&req->busy);
}

/* Serve the stale copy instead of an origin error (stale-if-error). */
static enum step
serve_stale_on_error(struct req *req, int upstream)
{
    if (req->busy != NULL) {
        store_obj_abort(req->busy);
        store_obj_release(&req->busy);
    }
    if (req->fetch.oc != NULL)
        fetch_close(&req->fetch);
    req->upstream_status = upstream;
    store_obj_release(&req->obj);
    req->obj = req->stale;
    req->stale = NULL;
    STAT_INC(req->w, cache_stale_error);
    req->xcache = req->cache_state = "STALE";
    req->cstatus = "fwd=uri-miss; detail=stale-if-error";
    req->dlv_started = false;
    req->state = R_DELIVER;
    return STEP_MORE;
}

bool
cache_on_origin_fail(struct req *req)
{
    if (req->bg) {
        if (req->busy != NULL) {
            store_obj_abort(req->busy);
            store_obj_release(&req->busy);
        }
        return false;
    }
    if (stale_if_error_ok(req)) {
        (void)serve_stale_on_error(req, 0);
        return true;
    }
    if (req->busy != NULL) {
        store_obj_abort(req->busy);
        store_obj_release(&req->busy);
    }
    return false;
}

/* A 304 answered our revalidation: freshen the stored object. */
static enum step
freshen(struct req *req)
{
    const struct cache_params *cp = req->w->cparams;
    struct store_bytes ob = store_obj_headers(req->stale);
    struct h1_response mr;
    struct h1_header *mh;
    struct store_meta m;
    struct store_bytes tags[64];
    size_t nt = 0;
    int pr;

    cache_block_freshen(AC_SLICE(ob.p, ob.len), &req->fetch.resp, cp, req->resp_time, &req->scratch2);
    unsigned cflags = store_obj_flags(req->stale) & OBJ_F_COMPRESS_MASK;
    if (cflags & OBJ_F_NEGOTIATE)
        cache_gz_strip(&req->scratch2);   /* a 304's ETag goes to the metadata */
    size_t visible_len = req->scratch2.len;
    {
        struct ac_slice u, h;
        cache_block_origin(AC_SLICE(ob.p, ob.len), &u, &h);
        cache_block_seal(&req->scratch2, u, h);
    }
    fetch_close(&req->fetch);       /* the 304's head is still in its buffer */
    /* Decide on the merged header fields, as the stored response now reads. */
    ac_buf_reset(&req->tmpbuf);
    ac_buf_catstr(&req->tmpbuf, "HTTP/1.1 ");
    ac_buf_cat(&req->tmpbuf, req->scratch2.p, visible_len);
    ac_buf_cat(&req->tmpbuf, "\r\n", 2);
    mh = ac_xcalloc((size_t)req->w->cfg->p.max_headers, sizeof(*mh));
    memset(&mr, 0, sizeof(mr));
    mr.hdrs = mh;
    struct h1_limits lim = { req->tmpbuf.len + 1, 0, req->tmpbuf.len + 1,
                             (unsigned)req->w->cfg->p.max_headers, false };
    pr = h1_parse_response(req->tmpbuf.p, req->tmpbuf.len, &lim, AC_LIT("GET"), &mr);
    if (pr > 0)
        cache_decide(&req->http, &mr, req->req_time, req->resp_time, cp, &req->dec);
    if (pr <= 0 || !req->dec.store) {
        /* Not storable any more: serve the copy the origin just confirmed. */
        free(mh);
        leave_marker(req, req->dec.hfm_ttl);
        store_obj_release(&req->obj);
        req->obj = req->stale;
        req->stale = NULL;
        if (req->bg)
            return STEP_DONE;
        req->xcache = req->cache_state = "REVALIDATED";
        req->cstatus = "fwd=stale; fwd-status=304";
        req->state = R_DELIVER;
        return STEP_MORE;
    }
    struct store_bytes sel = store_obj_selector(req->stale);
    ac_buf_reset(&req->scratch);
    ac_buf_cat(&req->scratch, sel.p, sel.len);
    fill_meta(req, &mr, &m, tags, AC_ARRAY_LEN(tags));
    if (m.ntags == 0) {
        nt = store_obj_tag_count(req->stale);
        for (size_t i = 0; i < nt && i < AC_ARRAY_LEN(tags); i++)
            tags[i] = store_obj_tag(req->stale, i);
        m.tags = tags;
        m.ntags = AC_MIN(nt, AC_ARRAY_LEN(tags));
    }
    m.encoding = store_obj_encoding(req->stale);
    m.flags |= cflags;
    if (m.etag.len == 0 && (cflags & OBJ_F_NEGOTIATE))
        m.etag = store_obj_etag(req->stale);  /* kept out of the block, not dropped */
    if (store_obj_set_meta(req->busy, &m) != STORE_OK ||
        store_obj_freshen(req->busy, req->stale) != STORE_OK) {
        free(mh);
        store_obj_abort(req->busy);
        store_obj_release(&req->busy);
        if (req->bg)
            return STEP_DONE;
        req->obj = req->stale;
        req->stale = NULL;
        req->state = R_DELIVER;
        return STEP_MORE;
    }
    free(mh);
    STAT_INC(req->w, cache_revalidated);
    store_obj_release(&req->stale);
    if (req->bg) {
        store_obj_release(&req->busy);
        return STEP_DONE;
    }
    store_obj_release(&req->obj);
    req->obj = req->busy;               /* complete now; our reference moves */
    req->busy = NULL;
    req->xcache = req->cache_state = "REVALIDATED";
    req->cstatus = "fwd=stale; fwd-status=304";
    req->state = R_DELIVER;
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
policy_backend_response(struct req *req, enum step *st)
{
    struct vcl_result res;
    struct cache_decision *d = &req->dec;
    int code = req->fetch.resp.status;
    enum vcl_action a;

    req->vcl_uncacheable = false;
    a = pol_run(req, VCL_SUB_BACKEND_RESPONSE, &res);
    switch (a) {
    case VCL_ACT_DELIVER:
        break;
    case VCL_ACT_PASS:
        req->vcl_uncacheable = true;
        d->ttl = res.duration + d->initial_age;
        break;
    case VCL_ACT_RETRY:
        if (req->fetch.retries < 4) {
            fetch_close(&req->fetch);
            req->fetch.relay.start = req->fetch.relay.end = 0;  /* drop the answer we refuse */
            req->fetch.resp_bytes_in = 0;
            req->fetch.retries++;
            req->state = R_CONNECT;
            *st = STEP_MORE;
            return true;
        }
        /* fall through */
    default:
        if (req->busy != NULL) {
            store_obj_abort(req->busy);
            store_obj_release(&req->busy);
        }
        if (req->fetch.oc != NULL)
            fetch_close(&req->fetch);
        *st = req->bg ? STEP_DONE : req_synth(req, 503, NULL, "Backend fetch abandoned\n", false);
        return true;
    }
    if (req->busy == NULL)
        return false;               /* a pass fetch: nothing to store */
    double remaining = d->ttl - d->initial_age;
    if (code < 200 || code == 206 || code == 304) {
        d->store = false;
        d->hfm = false;
    } else if (req->vcl_uncacheable) {
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
 * bytes, body framing state, filter) to an internal request without a
 * client, which finishes it for the requests waiting on the object. */
static void
detach_fill(struct req *req)
{
    struct req *b = req_new_detached(req->w, req);

    req_copy_head(b, req);
    b->kind = req->kind;
    fetch_handover(&b->fetch, &req->fetch);
    b->busy = req->busy;
    req->busy = NULL;
    b->fill_len = req->fill_len;
    b->fill_gz = req->fill_gz;        /* the filter state goes with the fill */
    b->fill_buf = req->fill_buf;
    b->fill_gz_check = req->fill_gz_check;
    b->fill_gz_dirty = req->fill_gz_dirty;
    req->fill_gz = NULL;
    req->fill_buf = NULL;
    b->state = R_FILL;
    store_obj_release(&req->obj);
    req_drive(b);
}

enum step
cache_on_beresp(struct req *req)
{
    const struct cache_params *cp = req->w->cparams;
    struct h1_response *resp = &req->fetch.resp;
    struct store_meta m;
    struct store_bytes tags[64];

    req->resp_time = now_of(req);
    peer_beresp(req);               /* a peer's answer: its position field out */
    if (req->revalidating && resp->status == 304 && req->stale != NULL)
        return freshen(req);
    if (resp->status >= 500 && stale_if_error_ok(req))
        return serve_stale_on_error(req, resp->status);
    cache_decide(&req->http, resp, req->req_time, req->resp_time, cp, &req->dec);
    cache_gz_defaults(req, resp);
    if (req->dec.store && resp->body == H1_BODY_LENGTH &&
        (double)resp->content_length > cp->max_object_size) {
        req->dec.store = false;
        req->dec.hfm = true;
        req->dec.hfm_ttl = cp->hfm_ttl;
        req->dec.why = "too big";
    }
    if (req->prog != NULL) {
        enum step st;
        if (policy_backend_response(req, &st))
            return st;
    }
    peer_local_ttl(req);            /* a peer's object: kept briefly */
    if (req->dec.store && !cache_vary_selector(resp, &req->http, &req->scratch)) {
        req->dec.store = false;
        req->dec.why = "Vary: *";
    }
    if (!req->dec.store) {
        STAT_INC(req->w, cache_uncacheable);
        leave_marker(req, req->dec.hfm ? req->dec.hfm_ttl : 0);
        if (req->bg) {
            if (req->fetch.oc != NULL)
                fetch_close(&req->fetch);
            return STEP_DONE;
        }
        req->xcache = req->cache_state = "MISS";
        req->cstatus = "fwd=uri-miss; detail=uncacheable";
        req_start_respbody(req);
        return req->fetch_next;
    }
    unsigned cflags, senc = cache_gz_setup(req, resp, &cflags);
    cache_block_build(resp, cp, req->resp_time, &req->scratch2);
    if (cflags & OBJ_F_NEGOTIATE)
        cache_gz_strip(&req->scratch2);
    cache_block_seal(&req->scratch2, req->http.path, req->http.host);
    fill_meta(req, resp, &m, tags, AC_ARRAY_LEN(tags));
    m.flags |= cflags;
    if (senc != m.encoding || (req->fill_gz != NULL && !req->fill_gz_check))
        m.size_hint = 0;            /* the stored body is not the origin's length */
    m.encoding = senc;
    if (store_obj_set_meta(req->busy, &m) != STORE_OK) {
        store_obj_abort(req->busy);
        store_obj_release(&req->busy);
        req_start_respbody(req);
        return req->fetch_next;
    }
    fetch_head_consume(&req->fetch);
    req->fill_len = 0;
    req->fill_done = false;
    store_obj_release(&req->obj);
    req->obj = store_obj_ref(req->busy);
    store_obj_release(&req->stale);
    req->cstatus = "fwd=uri-miss; stored";
    if (!req->bg) {
        if (req->prog != NULL) {
            struct vcl_result res;
            enum vcl_action a = pol_run(req, VCL_SUB_DELIVER, &res);
            if (a != VCL_ACT_DELIVER) {
                /* This client gets something else: a request without a
                 * client finishes the fill for the others. */
                detach_fill(req);
                return cache_synth_or_restart(req, a, &res);
            }
        }
        /* With a filter (even one that only checks), no Content-Length
         * before the body is through it: a gzip body that turns out
         * truncated must not reach this client as a whole response either
         * (chunked, it ends without its last chunk).  A client gone
         * already leaves the fill to the others. */
        (void)dlv_begin(req, resp->body == H1_BODY_LENGTH && req->fill_gz == NULL
                                 ? resp->content_length : UINT64_MAX);
    }
    req->state = R_FILL;
    return STEP_MORE;
}

enum fill { FILL_MORE, FILL_WAIT, FILL_DONE, FILL_FAIL, FILL_OVERFLOW };


/* Bytes into the busy object (after the filter, if any). */
static enum fill
store_put(struct req *req, const char *p, size_t n)
{
    if (n == 0)
        return FILL_MORE;
    if ((double)(req->fill_len + n) > req->w->cparams->max_object_size ||
        store_obj_append(req->busy, p, n) != STORE_OK) {
        /* Too big after all (or no memory): the object is dropped (its
         * waiters see it aborted); our client gets the rest straight from
         * the origin -- unless a filter stands between the two, whose
         * output the client is being sent: then the response is cut. */
        store_obj_abort(req->busy);
        store_obj_release(&req->busy);
        if (req->fill_gz != NULL && !req->fill_gz_check)
            return FILL_FAIL;
        if (req->dlv_gz != NULL || req->dlv_alt)
            return FILL_FAIL;
        gz_free(&req->fill_gz);       /* a check only: the origin bytes go on as they are */
        req->fill_overflow = true;
        req->pending_run = AC_SLICE(p, n);
        return FILL_OVERFLOW;
    }
    req->fill_len += n;
    return FILL_MORE;
}

static enum fill
fill_corrupt(struct req *req)
{
    STAT_INC(req->w, gzip_corrupt);
    LOG_W("origin %s: " AC_SLICE_FMT ": corrupt %s body; object dropped", req->fetch.be->name,
          AC_SLICE_ARG(req->http.path), store_obj_encoding(req->busy) == GZ_BR ? "brotli" : "gzip");
    return FILL_FAIL;
}

/*
 * Run the fill filter over n origin bytes (n == 0 with flush: drain it).
 * A checking decoder's output is dropped and the origin bytes stored as
 * they are, after they decoded: bytes that do not are never stored.
 */
static enum fill
fill_filter(struct req *req, const char *p, size_t n, enum gz_flush flush)
{
    const char *in = p;
    size_t left = n;
    enum fill f;

    for (;;) {
        size_t w = 0, left0 = left;
        int r = gz_run(req->fill_gz, &in, &left, req->fill_buf, GZ_BUFSZ, &w, flush);
        if (r == GZ_ERR)
            return fill_corrupt(req);
        if (w > 0 && !req->fill_gz_check && (f = store_put(req, req->fill_buf, w)) != FILL_MORE)
            return f;
        if (r == GZ_END && flush == GZ_FINISH)
            break;
        if (left == 0 && w < GZ_BUFSZ)
            break;
        if (w == 0 && left == left0)
            break;
    }
    if (req->fill_gz_check)
        return store_put(req, p, n);
    req->fill_gz_dirty = flush == GZ_NOFLUSH && (req->fill_gz_dirty || n > 0);
    return FILL_MORE;
}

static enum fill
fill_append(struct req *req, const char *p, size_t n)
{
    if (n == 0)
        return FILL_MORE;
    if (req->fill_gz != NULL)
        return fill_filter(req, p, n, GZ_NOFLUSH);
    return store_put(req, p, n);
}

/* The origin body ended: finish the encoder, or check that the decoder
 * saw a whole stream (a truncated gzip body is corrupt too). */
static enum fill
fill_finish(struct req *req)
{
    enum fill f;

    if (req->fill_gz == NULL)
        return FILL_MORE;
    if (req->fill_gz_check || store_obj_encoding(req->busy) == GZ_IDENTITY) {
        if (!gz_finished(req->fill_gz))
            return fill_corrupt(req);
        return FILL_MORE;
    }
    if ((f = fill_filter(req, NULL, 0, GZ_FINISH)) != FILL_MORE)
        return f;
    return gz_finished(req->fill_gz) ? FILL_MORE : FILL_FAIL;
}

/* Origin bytes into the busy object, as fast as the origin sends. */
static enum fill
fill_origin(struct req *req)
{
    struct fetch *ft = &req->fetch;
    struct ac_slice d;
    enum fill f;
    int r;

    for (int reads = 0; reads < 8;) {
        if (fetch_body_done(ft)) {
            if ((f = fill_finish(req)) != FILL_MORE)
                return f;
            r = store_obj_complete(req->busy);
            const struct config_params *p = &req->w->cfg->p;
            if (r == STORE_OK && (store_obj_flags(req->busy) & OBJ_F_BROTLI) &&
                (double)req->fill_len <= p->brotli_max_size)
                (void)brjob_submit(req->busy, (int)p->brotli_level);
            store_obj_release(&req->busy);
            fetch_release(ft, ft->origin_reusable);
            req->fill_done = true;
            return r == STORE_OK ? FILL_DONE : FILL_FAIL;
        }
        r = fetch_body_take(ft, &d);
        if (r < 0) {
            LOG_W("origin %s: bad chunked body (%s)", ft->be->name, ft->fail_what);
            return FILL_FAIL;
        }
        if (r > 0) {
            if ((f = fill_append(req, d.p, d.len)) != FILL_MORE)
                return f;
            continue;
        }
        if (fetch_body_done(ft))
            continue;               /* the last framing came without data */
        r = fetch_body_read(ft);
        reads++;
        if (r > 0)
            continue;
        if (r == AC_AGAIN) {
            /* Nothing more for now: what the encoder holds goes out, so
             * clients streaming the busy object are not kept waiting. */
            if (req->fill_gz_dirty && (f = fill_filter(req, NULL, 0, GZ_SYNC)) != FILL_MORE)
                return f;
            return FILL_WAIT;
        }
        LOG_W("origin %s: %s mid-body; object dropped", ft->be->name, ft->fail_what);
        return FILL_FAIL;
    }
    return FILL_MORE;               /* yield: let the client side run */
}

/*
 * Fill and deliver at once: the origin's body into the object as fast as
 * the origin sends (its socket wakes us), the object to our client as fast
 * as the client takes it (its transport resumes us).  Neither waits for
 * the other; a client that goes away leaves the fill going for the others.
 */
enum step
cache_fill_step(struct req *req)
{
    struct fetch *ft = &req->fetch;

    for (;;) {
        enum fill f = FILL_DONE;
        enum dlv d = DLV_DONE;

        if (ft->timed_out) {
            ft->timed_out = false;
            if (!req->fill_done && !req->fill_overflow) {
                LOG_W("origin %s: body stalled for %gs; object dropped", ft->be->name,
                      req_fetch_timeout(req, FETCH_TMO_BETWEEN_BYTES));
                STAT_INC(req->w, backend_timeout);
                store_obj_abort(req->busy);
                store_obj_release(&req->busy);
                return STEP_DONE;
            }
        }
        if (!req->fill_done && !req->fill_overflow) {
            f = fill_origin(req);
            if (f == FILL_FAIL) {
                if (req->busy != NULL) {
                    store_obj_abort(req->busy);
                    store_obj_release(&req->busy);
                }
                return STEP_DONE;   /* our client (if any) must see a close */
            }
            if (f == FILL_OVERFLOW && (req->bg || req->client_dead))
                return STEP_DONE;
        }
        if (!req->bg && !req->client_dead) {
            d = deliver_pump(req);
            if (d == DLV_DEAD) {
                /* client gone (the transport is dropped): fill for the others */
                if (req->fill_overflow)
                    return STEP_DONE;
            } else if (d == DLV_ABORTED) {
                return STEP_DONE;
            } else if (d == DLV_TAIL) {
                /* The object is gone; the rest comes from the origin. */
                store_obj_release(&req->obj);
                req->end_sent = false;
                req->state = R_RESPBODY;
                if (req->pending_run.len) {
                    struct iovec iov = { (void *)(uintptr_t)req->pending_run.p,
                                         req->pending_run.len };
                    req->bytes_sent += iov.iov_len;
                    req->pending_run = AC_SLICE(NULL, 0);
                    int r = req_write(req, &iov, 1, 0);
                    if (r == AC_AGAIN)
                        return STEP_WAIT;
                    if (r != AC_OK)
                        return STEP_DONE;
                }
                return STEP_MORE;
            }
        }
        bool client_finished = req->bg || req->client_dead || d == DLV_DONE;
        if (req->fill_done && client_finished) {
            if (req->bg || req->client_dead)
                return STEP_DONE;
            req->state = R_FINISH;
            return STEP_MORE;
        }
        if (f == FILL_MORE || (f == FILL_DONE && !client_finished && d == DLV_WAIT_DATA))
            continue;
        /* the origin (fetch_body_read armed its watcher and timer) and/or
         * the transport (it resumes us) */
        return STEP_WAIT;
    }
}

void
cache_pass_headers(struct req *req, struct ac_buf *b)
{
    if (req->xcache == NULL)
        return;
    if (req->n_resp_ops == 0 || !pol_overlay_has(req->resp_ops, req->n_resp_ops, AC_LIT("X-Cache")))
        ac_buf_printf(b, "X-Cache: %s\r\n", req->xcache);
    if (req->n_resp_ops == 0 ||
        !pol_overlay_has(req->resp_ops, req->n_resp_ops, AC_LIT("Cache-Status")))
        ac_buf_printf(b, "Cache-Status: accel; %s\r\n", req->cstatus ? req->cstatus : "fwd=uri-miss");
}

