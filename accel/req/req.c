/*
 * req.c -- the request machine (req.h): the driver, receiving a request,
 * synthetic answers, restarts, the end of a request (access log, release,
 * xport->done()), the per-worker cache of freed requests, requests without
 * a client, and the output calls every state uses.
 */
#include "req_int.h"

#include "admin.h"
#include "http.h"

#include <stdio.h>
#include <stdlib.h>

/* Freed requests a worker keeps for reuse: enough for the requests in
 * flight on a busy worker; beyond that they are freed. */
#define REQ_CACHE_MAX 256

static req_step_f step_recv, step_synth, step_finish;

static req_step_f *const steps[R__MAX] = {
    [R_RECV] = step_recv,
    [R_LOOKUP] = cache_lookup_step,
    [R_WAITOBJ] = cache_waitobj_step,
    [R_DELIVER] = cache_deliver_step,
    [R_FILL] = cache_fill_step,
    [R_CONNECT] = req_connect_step,
    [R_BEREQ] = req_bereq_step,
    [R_REQBODY] = req_reqbody_step,
    [R_BERESP] = req_beresp_step,
    [R_RESPBODY] = req_respbody_step,
    [R_TUNNEL] = req_tunnel_step,
    [R_SYNTH] = step_synth,
    [R_CLWAIT] = peer_wait_step,
    [R_ADMIN] = admin_wait_step,
    [R_FINISH] = step_finish,
};

static void req_end(struct req *req, enum xp_end how);

static void
on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct req *req = AC_CONTAINER_OF(t, struct req, tmr);

    (void)revents;
    AC_CHECK_OBJ(req, REQ_MAGIC);
    ev_timer_stop(loop, t);
    req->timed_out = true;
    req_drive(req);
}

void
req_timer(struct req *req, double seconds)
{
    req->timed_out = false;
    req->tmr.repeat = seconds > 0.001 ? seconds : 0.001;
    ev_timer_again(req->w->loop, &req->tmr);
}

/* The origin exchange has something for us (socket, timer, slot). */
static void
on_fetch_wake(struct fetch *f)
{
    struct req *req = AC_CONTAINER_OF(f, struct req, fetch);

    AC_CHECK_OBJ(req, REQ_MAGIC);
    if (req->in_drive)
        return;
    req_drive(req);
}

/* A request without a transport belongs to its worker directly. */
static void
task_kill(struct wrk_task *t)
{
    struct req *req = AC_CONTAINER_OF(t, struct req, task);

    AC_CHECK_OBJ(req, REQ_MAGIC);
    AC_ASSERT(!req->in_drive);
    req_end(req, XP_END_ABORT);
}

static const struct wrk_task_ops task_ops = {
    .name = "request",
    .drain = NULL,                  /* it finishes: the drain timeout kills it */
    .kill = task_kill,
};

/* ------------------------------------------------------- life cycle */

struct req *
req_alloc(struct wrk *w)
{
    struct req *req = ac_xcalloc(1, sizeof(*req));

    req->magic = REQ_MAGIC;
    req->w = w;
    req->hdrs = ac_xcalloc((size_t)w->cfg->p.max_headers, sizeof(*req->hdrs));
    req->http.hdrs = req->hdrs;
    ac_buf_init(&req->whead, 0, 0);
    ac_buf_init(&req->bereq, 0, 0);
    ac_buf_init(&req->headcopy, 0, 0);
    ev_init(&req->tmr, on_timer);
    req->wake.fn = cache_on_wake;
    req->task.ops = &task_ops;
    req->meta = &req->meta_own;
    req_meta_init(&req->meta_own, NULL, 0, NULL, false);
    fetch_init(&req->fetch, w);
    req->kind = CACHE_REQ_PASS;
    req->bad_off = SIZE_MAX;
    return req;
}

void
req_destroy(struct req **reqp)
{
    struct req *req = *reqp;

    *reqp = NULL;
    AC_CHECK_OBJ(req, REQ_MAGIC);
    cache_req_reset(req);
    pol_end(req);
    fetch_fini(&req->fetch);
    ev_timer_stop(req->w->loop, &req->tmr);
    free(req->arena.base);
    ac_buf_free(&req->synth_body);
    ac_buf_free(&req->whead);
    ac_buf_free(&req->bereq);
    ac_buf_free(&req->headcopy);
    ac_buf_free(&req->key);
    ac_buf_free(&req->scratch);
    ac_buf_free(&req->scratch2);
    ac_buf_free(&req->tmpbuf);
    ac_buf_free(&req->dlv_tail);
    free(req->hdrs);
    req->magic = 0;
    free(req);
}

void
req_cache_flush(struct wrk *w)
{
    while (w->req_cache != NULL) {
        struct req *req = w->req_cache;
        w->req_cache = req->cache_next;
        req_destroy(&req);
    }
    w->nreq_cache = 0;
}

/* Back to the worker's cache (its buffers stay allocated for the next
 * request), or freed when the cache is full. */
static void
req_free(struct req *req)
{
    struct wrk *w = req->w;

    if (w->nreq_cache >= REQ_CACHE_MAX || w->stopping) {
        req_destroy(&req);
        return;
    }
    req->cache_next = w->req_cache;
    w->req_cache = req;
    w->nreq_cache++;
}

struct req *
req_new(struct wrk *w, struct xport *x, const struct req_meta *meta)
{
    struct req *req = w->req_cache;

    if (req != NULL) {
        w->req_cache = req->cache_next;
        w->nreq_cache--;
        req->cache_next = NULL;
    } else {
        req = req_alloc(w);
    }
    AC_CHECK_OBJ(req, REQ_MAGIC);
    req->xp = x;
    if (meta != NULL && x != NULL) {
        req->meta = meta;
    } else {
        if (meta != NULL)
            req_meta_copy(&req->meta_own, meta);
        else
            req_meta_init(&req->meta_own, NULL, 0, NULL, false);
        req->meta = &req->meta_own;
    }
    req->state = R_RECV;
    req->proto = x != NULL ? x->proto : AC_LIT("HTTP/1.1");
    memset(&req->http, 0, sizeof(req->http));
    req->http.hdrs = req->hdrs;
    fetch_begin(&req->fetch, on_fetch_wake, req->meta->client_ip);
    if (x == NULL)
        wrk_task_add(w, &req->task);
    return req;
}

struct req *
req_new_detached(struct wrk *w, const struct req *parent)
{
    struct req *req = req_new(w, NULL, parent != NULL ? parent->meta : NULL);

    req->bg = true;
    req->client_dead = true;
    req->state = R_CONNECT;
    return req;
}

struct req *
req_new_internal(struct req *parent, struct xport *x, unsigned flags)
{
    struct req *req;

    AC_CHECK_OBJ(parent, REQ_MAGIC);
    req = req_new(parent->w, NULL, parent->meta);
    req->proto = parent->proto;
    if (x != NULL) {
        /* its own transport (ESI); the metadata stays the copy */
        wrk_task_del(req->w, &req->task);
        req->xp = x;
        req->proto = x->proto;
    }
    if (flags & REQ_INT_HEAD)
        req_copy_head(req, parent);
    req->t_start = ev_now(req->w->loop);
    return req;
}

struct h1_request *
req_http(struct req *req)
{
    AC_CHECK_OBJ(req, REQ_MAGIC);
    return &req->http;
}

void
req_start(struct req *req)
{
    AC_CHECK_OBJ(req, REQ_MAGIC);
    req->state = R_RECV;
    req_drive(req);
}

void
req_start_error(struct req *req, int status, const char *body, const char *why, size_t off)
{
    AC_CHECK_OBJ(req, REQ_MAGIC);
    req->bad_reason = why;
    req->bad_off = off;
    /* Nothing of a refused request is trusted, not even its method. */
    memset(&req->http, 0, sizeof(req->http));
    req->http.hdrs = req->hdrs;
    req->t_start = ev_now(req->w->loop);
    if (req_synth(req, status, NULL, body, true) == STEP_DONE)
        req_end(req, XP_END_ABORT);
    else
        req_drive(req);
}

void
req_resume(struct req *req)
{
    AC_CHECK_OBJ(req, REQ_MAGIC);
    req->out_wait = false;
    if (!req->in_drive)
        req_drive(req);
}

void
req_drive(struct req *req)
{
    enum step r;

    AC_CHECK_OBJ(req, REQ_MAGIC);
    AC_ASSERT(!req->in_drive);
    req->in_drive = true;
    do {
        AC_CHECK_OBJ(req, REQ_MAGIC);
        AC_ASSERT(req->state < R__MAX);
        r = steps[req->state](req);
    } while (r == STEP_MORE);
    req->in_drive = false;
    if (r == STEP_DONE)
        req_end(req, req->state == R_FINISH ? XP_END_OK : XP_END_ABORT);
}

/* May the request go on without a client?  Only a fill: others wait on
 * the object it fills. */
static bool
goes_on_alone(const struct req *req)
{
    return req->state == R_FILL && req->busy != NULL;
}

/* The transport is gone or going: what the request still needs of it (its
 * metadata, its head) is copied, and the worker owns the request directly. */
static void
go_alone(struct req *req)
{
    req_meta_copy(&req->meta_own, req->meta);
    req->meta = &req->meta_own;
    req->fetch.who = req->meta_own.client_ip;
    req_own_head(req);
    req->xp = NULL;
    req->client_dead = true;
    req->out_wait = req->head_pending = false;  /* what the transport held is gone */
    wrk_task_add(req->w, &req->task);
}

void
req_detach(struct req *req)
{
    AC_CHECK_OBJ(req, REQ_MAGIC);
    AC_ASSERT(!req->in_drive);
    if (req->xp == NULL)
        return;
    go_alone(req);
    if (!goes_on_alone(req))
        req_end(req, XP_END_ABORT);
}

void
req_drop_xport(struct req *req, enum xp_end how)
{
    struct xport *x = req->xp;

    if (x == NULL)
        return;
    go_alone(req);
    x->ops->done(x, how);
}

/* ------------------------------------------------------------ heads */

/*
 * Copy the head from src into dst's own headcopy: every slice of the
 * method, target, path, host and the fields, wherever it points (the
 * transport's read buffer, the policy's arena), reserved at once so the
 * buffer does not move while it is filled.
 */
static void
copy_head(struct req *dst, const struct req *src)
{
    const struct h1_request *h = &src->http;
    struct ac_buf nb;
    size_t total = 0;
    char *p;

#define COUNT(sl) (total += (sl).p != NULL ? (sl).len : 0)
    COUNT(h->method);
    COUNT(h->target);
    COUNT(h->path);
    COUNT(h->host);
    for (unsigned i = 0; i < h->nhdrs; i++) {
        COUNT(src->hdrs[i].name);
        COUNT(src->hdrs[i].value);
    }
#undef COUNT
    ac_buf_init(&nb, total + 1, 0);
    p = ac_buf_reserve(&nb, total + 1);
    AC_NOTNULL(p);
    /* dst may be src: read every slice before dst->http changes */
    struct h1_request nh = *h;
#define MOVE(sl) do { \
        if ((sl).p != NULL) { memcpy(p, (sl).p, (sl).len); (sl).p = p; p += (sl).len; } \
    } while (0)
    MOVE(nh.method);
    MOVE(nh.target);
    MOVE(nh.path);
    MOVE(nh.host);
    for (unsigned i = 0; i < h->nhdrs; i++) {
        struct h1_header hd = src->hdrs[i];
        MOVE(hd.name);
        MOVE(hd.value);
        dst->hdrs[i] = hd;
    }
#undef MOVE
    ac_buf_commit(&nb, total);
    nh.hdrs = dst->hdrs;
    dst->http = nh;
    ac_buf_free(&dst->headcopy);
    dst->headcopy = nb;
}

void
req_own_head(struct req *req)
{
    copy_head(req, req);
}

void
req_copy_head(struct req *dst, const struct req *src)
{
    AC_ASSERT(dst != src);
    copy_head(dst, src);
}

/* ----------------------------------------------------------- output */

bool
req_send_head(struct req *req, const struct xp_head *h)
{
    if (req->xp == NULL)
        return true;                /* nobody to write to: taken */
    if (req->xp->ops->head(req->xp, h) == AC_OK) {
        req->head_pending = true;
        return true;
    }
    req_drop_xport(req, XP_END_ABORT);
    return false;
}

int
req_write(struct req *req, const struct iovec *iov, int n, unsigned flags)
{
    int r;

    req->head_pending = false;
    if (req->xp == NULL)
        return AC_OK;               /* nobody to write to (background fetch) */
    AC_ASSERT(n <= XP_MAX_IOV);
    r = req->xp->ops->write(req->xp, iov, n, flags);
    if (r == AC_AGAIN)
        req->out_wait = true;
    else if (r != AC_OK)
        req_drop_xport(req, XP_END_ABORT);
    return r == AC_OK || r == AC_AGAIN ? r : AC_ECLOSED;
}

int
req_flush_head(struct req *req)
{
    return req->head_pending ? req_write(req, NULL, 0, 0) : AC_OK;
}

/* ------------------------------------------------------ synthetic */

void
req_cat_resp_overlay(struct req *req, struct ac_buf *b)
{
    for (unsigned i = 0; i < req->n_resp_ops; i++) {
        if (req->resp_ops[i].value.p == NULL)
            continue;
        ac_buf_field(b, req->resp_ops[i].name, req->resp_ops[i].value);
    }
}

static enum step synth_build(struct req *req, int status, struct ac_slice rs, const char *body,
                             size_t blen, bool close, bool policy);

enum step
req_synth(struct req *req, int status, const char *reason, const char *body, bool close)
{
    size_t blen = body ? strlen(body) : 0;
    struct ac_slice rs = reason ? AC_SLICE(reason, strlen(reason)) : AC_SLICE(NULL, 0);
    bool policy = false;

    if (req->prog != NULL && req->state != R_SYNTH) {
        /* vcl_synth shapes the answer: status, reason, body, headers. */
        struct vcl_result res;
        req->state = R_SYNTH;
        req->status = status;
        req->resp_reason = rs;
        req->n_resp_ops = 0;
        req->synth_body_set = false;
        ac_buf_reset(&req->synth_body);
        enum vcl_action a = pol_run(req, VCL_SUB_SYNTH, &res);
        if (a == VCL_ACT_RESTART && req->http.body == H1_BODY_NONE)
            return req_restart(req);
        if (a == VCL_ACT_FAIL) {
            req->n_resp_ops = 0;
            req->synth_body_set = false;
            status = 503;
            rs = AC_SLICE(NULL, 0);
        } else {
            policy = true;
            status = req->status;
            rs = req->resp_reason;
        }
        if (req->synth_body_set) {
            body = req->synth_body.p;
            blen = req->synth_body.len;
        }
    }
    return synth_build(req, status, rs, body, blen, close, policy);
}

enum step
req_synth_ex(struct req *req, int status, const char *reason, const char *body, size_t blen,
             bool close, bool overlay)
{
    return synth_build(req, status, reason ? AC_SLICE(reason, strlen(reason)) : AC_SLICE(NULL, 0),
                       body, blen, close, overlay);
}

/*
 * The answer's fields and body go into whead (the body after the fields:
 * it may live on the caller's stack), then out as one head and one write.
 */
static enum step
synth_build(struct req *req, int status, struct ac_slice rs, const char *body, size_t blen,
            bool close, bool policy)
{
    bool head = ac_slice_eq(req->http.method, AC_LIT("HEAD"));
    struct ac_buf *b = &req->whead;
    struct xp_head h;
    size_t flen;

    if (req->cache_state == NULL)
        req->cache_state = "SYNTH"; /* answered before any cache or origin step */
    req->status = status;
    ac_buf_reset(b);
    if (policy)
        req_cat_resp_overlay(req, b);
    if (!policy || !pol_overlay_has(req->resp_ops, req->n_resp_ops, AC_LIT("Content-Type")))
        ac_buf_catstr(b, "Content-Type: text/plain; charset=utf-8\r\n");
    if (!policy || !pol_overlay_has(req->resp_ops, req->n_resp_ops, AC_LIT("Cache-Control")))
        ac_buf_catstr(b, "Cache-Control: no-store\r\n");
    ac_buf_printf(b, "Content-Length: %zu\r\n", blen);
    flen = b->len;
    if (!head && blen)
        ac_buf_cat(b, body, blen);
    AC_ASSERT(!ac_buf_error(b));
    memset(&h, 0, sizeof(h));
    h.status = (unsigned)status;
    h.reason = rs.p != NULL ? rs : AC_SLICE(http_reason(status), strlen(http_reason(status)));
    h.blk[0] = AC_SLICE(b->p, flen);
    h.nblk = 1;
    h.body = head ? XP_BODY_NONE : XP_BODY_LENGTH;
    h.close = close;
    req->synth_out = AC_SLICE(b->p + flen, b->len - flen);
    req->bytes_sent = head ? 0 : blen;
    req->end_sent = false;
    req->state = R_SYNTH;
    if (!req_send_head(req, &h))
        return STEP_DONE;
    return STEP_MORE;
}

static enum step
step_synth(struct req *req)
{
    if (req->out_wait)
        return STEP_WAIT;
    if (!req->end_sent) {
        struct iovec iov = { (void *)(uintptr_t)req->synth_out.p, req->synth_out.len };
        int r;
        req->end_sent = true;
        r = req_write(req, &iov, iov.iov_len ? 1 : 0, XP_W_END);
        if (r == AC_AGAIN)
            return STEP_WAIT;
        if (r != AC_OK)
            return STEP_DONE;
    }
    req->state = R_FINISH;
    return STEP_MORE;
}

enum step
req_restart(struct req *req)
{
    if (++req->restarts > (unsigned)req->w->cfg->p.max_restarts) {
        req->state = R_FINISH;      /* keep vcl_synth out of a restart loop */
        req->prog_restart_exhausted = true;
        struct vcl_program *p = req->prog;
        req->prog = NULL;
        enum step r = req_synth(req, 503, "Too many restarts", "Too many restarts\n", false);
        req->prog = p;
        return r;
    }
    cache_req_reset(req);
    fetch_close(&req->fetch);
    if (req->fetch.relay.data != NULL)
        req->fetch.relay.start = req->fetch.relay.end = 0;  /* the old answer is gone */
    req->fetch.resp_bytes_in = 0;
    req->fetch.origin_eof = false;
    req->fetch.retries = 0;
    req->upstream_status = 0;
    req->n_resp_ops = 0;
    req->n_bereq_ops = 0;
    req->state = R_RECV;
    return STEP_MORE;
}

/* ----------------------------------------------------------- receive */

static enum step
step_recv(struct req *req)
{
    struct h1_request *hr = &req->http;

    if (req->restarts == 0) {
        req->t_start = ev_now(req->w->loop);
        if (hr->flags & H1_F_EXPECT_OTHER)
            return req_synth(req, 417, NULL, "Unsupported expectation\n", true);
        if (hr->flags & (H1_F_AUTHORITY_FORM))
            return req_synth(req, 405, NULL, "CONNECT is not supported\n", true);
        if (!(hr->body == H1_BODY_LENGTH && hr->content_length > 0) &&
            hr->body != H1_BODY_CHUNKED)
            hr->body = H1_BODY_NONE;
    }
    req->cache_state = "PASS";
    if (req->meta->admin)
        return admin_request(req);
    if (req->w->vcl != NULL) {
        pol_begin(req);
        return cache_policy_recv(req);
    }
    req->fetch.be = pool_pick(req->w);
    if (req->fetch.be == NULL)
        return req_synth(req, 503, NULL, "No origin server configured\n", false);
    if (req->w->store != NULL && ac_slice_eq(hr->method, AC_LIT("PURGE")) &&
        hr->body == H1_BODY_NONE)
        return cache_purge_request(req);
    if (req->w->store != NULL && ac_slice_eq(hr->method, AC_LIT("BAN")) &&
        hr->body == H1_BODY_NONE)
        return cache_ban_request(req);
    req->kind = cache_classify_request(hr, &req->pass_why);
    if (req->w->store != NULL && req->kind == CACHE_REQ_LOOKUP && !(hr->flags & H1_F_UPGRADE) &&
        hr->body == H1_BODY_NONE) {
        req->state = R_LOOKUP;
        return STEP_MORE;
    }
    if (req->w->store != NULL) {
        STAT_INC(req->w, cache_pass);
        req->xcache = "PASS";
        req->cstatus = req->kind == CACHE_REQ_PASS && req->pass_why && req->pass_why[0] != 'm'
                           ? "fwd=bypass" : "fwd=method";
    }
    return req_start_pass(req);
}

/* --------------------------------------------------------------- end */

static void
log_request(struct req *req)
{
    struct log_access_rec r;
    const struct h1_header *h;

    req->logged = true;
    if (req->w->alog.fd < 0)
        return;
    memset(&r, 0, sizeof(r));
    r.client_ip = req->meta->client_ip;
    r.t_start = req->t_start;
    r.duration = ev_time() - req->t_start;
    r.method = req->http.method;
    r.target = req->http.target;
    if (req->http.method.p != NULL)
        r.proto = req->proto;
    r.status = req->status;
    r.bytes = req->bytes_sent;
    if ((h = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("Referer"))) != NULL)
        r.referer = h->value;
    if ((h = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("User-Agent"))) != NULL)
        r.user_agent = h->value;
    r.upstream_status = req->upstream_status;
    r.cache = req->cache_state;
    r.bad_reason = req->bad_reason;
    r.bad_off = req->bad_off;
    log_access_add(&req->w->alog, &r);
}

static enum step
step_finish(struct req *req)
{
    (void)req;
    return STEP_DONE;               /* req_drive ends it: XP_END_OK */
}

/*
 * The request is over: the access-log line (a request cut short is logged
 * too, background fetches are not), everything it holds released, the
 * request back to the worker's cache, then the transport told.  After
 * done() the transport may start the next request at once (HTTP/1.1
 * pipelining), so nothing here touches req after it.
 */
static void
req_end(struct req *req, enum xp_end how)
{
    struct wrk *w = req->w;
    struct xport *x = req->xp;
    bool listed = req->task.listed;

    AC_CHECK_OBJ(req, REQ_MAGIC);
    if (!req->bg && !req->logged)
        log_request(req);
    admin_req_end(req);             /* a POST /reload still waiting */
    cache_req_reset(req);
    pol_end(req);
    fetch_end(&req->fetch);
    ev_timer_stop(w->loop, &req->tmr);
    if (listed)
        wrk_task_del(w, &req->task);
    /* the per-request state, as a new request finds it */
    req->xp = NULL;
    req->meta = &req->meta_own;
    memset(&req->http, 0, sizeof(req->http));
    req->http.hdrs = req->hdrs;
    ac_buf_reset(&req->headcopy);
    req->timed_out = false;
    req->body_checked = false;
    req->status = 0;
    req->bytes_sent = 0;
    req->upstream_status = 0;
    req->cache_state = NULL;
    req->bad_reason = NULL;
    req->bad_off = SIZE_MAX;
    req->logged = false;
    req->out_wait = false;
    req->head_pending = false;
    req->end_sent = false;
    req->body_begun = false;
    req->kind = CACHE_REQ_PASS;
    req->pass_why = NULL;
    req->bereq_method = AC_SLICE(NULL, 0);
    req->bg = false;
    req->client_dead = false;
    req->piping = false;
    req->abandon = false;
    req->frame_len = req->frame_off = 0;
    req->chunk_left = 0;
    req->frame_end = false;
    req->moved = false;
    req->dir_key_set = false;
    req->restarts = 0;
    req->prog_restart_exhausted = false;
    req_free(req);
    if (x != NULL)
        x->ops->done(x, how);
    if (listed)
        wrk_maybe_done(w);
}
