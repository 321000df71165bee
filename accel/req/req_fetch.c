/*
 * req_fetch.c -- a request's way to the origin and back (the origin
 * exchange itself is origin/fetch.c): the origin request head, the steps
 * CONNECT / BEREQ / REQBODY / BERESP with what their outcomes mean
 * (another server, stale-if-error, vcl_backend_error, 502/503/504), 1xx
 * interim answers, Upgrade and pipe handed to the transport, and the pass
 * relay of a response body to the client.
 */
#include "req_int.h"

#include "http.h"

#include <errno.h>
#include <stdio.h>

/* Request fields a cache fetch must not forward: the cache wants the whole
 * representation, and answers conditionals and ranges itself. */
static bool
cache_fetch_drops(struct ac_slice n)
{
    return ac_slice_caseeq(n, AC_LIT("Range")) || ac_slice_caseeq(n, AC_LIT("If-Range")) ||
           ac_slice_caseeq(n, AC_LIT("If-None-Match")) ||
           ac_slice_caseeq(n, AC_LIT("If-Modified-Since")) ||
           ac_slice_caseeq(n, AC_LIT("If-Match")) ||
           ac_slice_caseeq(n, AC_LIT("If-Unmodified-Since")) ||
           /* accel negotiates codings itself (see req_build_bereq) */
           ac_slice_caseeq(n, AC_LIT("Accept-Encoding"));
}

static bool
is_forwarded_hdr(struct ac_slice n)
{
    return ac_slice_caseeq(n, AC_LIT("X-Forwarded-For")) ||
           ac_slice_caseeq(n, AC_LIT("X-Forwarded-Proto"));
}

/*
 * The request head for the origin: the client's fields minus hop-by-hop
 * ones (RFC 9110 §7.6.1) and Expect (accel answers 100-continue itself),
 * with X-Forwarded-For extended by the client's address (the real client's
 * for an internal request too: it carries the metadata of the request that
 * caused it), X-Forwarded-Proto set, Via appended, and the body framing
 * re-stated.  Built once per request, before the request body is read,
 * while the head slices are valid.
 */
void
req_build_bereq(struct req *req)
{
    const struct h1_request *hr = &req->http;
    const struct backend *be = req->fetch.be;
    struct ac_buf *b = &req->bereq;
    bool upgrade = (hr->flags & H1_F_UPGRADE) != 0;
    bool host_done = false;
    bool cachefetch = req->busy != NULL;

    req->abandon = false;
    if (req->prog != NULL) {
        struct vcl_result res;
        if (pol_run(req, VCL_SUB_BACKEND_FETCH, &res) != VCL_ACT_FETCH)
            req->abandon = true;    /* req_connect_step answers 503 */
    }
    ac_buf_reset(b);
    /* A cache fetch for HEAD asks for GET, so the body can be stored. */
    req->bereq_method = cachefetch && ac_slice_eq(hr->method, AC_LIT("HEAD")) ? AC_LIT("GET")
                                                                             : hr->method;
    ac_buf_cats(b, req->bereq_method);
    ac_buf_cat(b, " ", 1);
    ac_buf_cats(b, hr->path);
    ac_buf_catstr(b, " HTTP/1.1\r\n");
    for (unsigned i = 0; i < hr->nhdrs; i++) {
        const struct h1_header *h = &hr->hdrs[i];
        if (http_is_hop_by_hop(h->name) || http_conn_lists(hr->hdrs, hr->nhdrs, h->name))
            continue;
        if (ac_slice_caseeq(h->name, AC_LIT("Content-Length")) ||
            ac_slice_caseeq(h->name, AC_LIT("Expect")))
            continue;
        if (cachefetch && cache_fetch_drops(h->name))
            continue;
        if (req->n_bereq_ops && pol_overlay_has(req->bereq_ops, req->n_bereq_ops, h->name))
            continue;
        if (ac_slice_caseeq(h->name, AC_LIT("X-Forwarded-For"))) {
            /* several: RFC 7239 says combine; keep them in order */
            ac_buf_field(b, h->name, h->value);
            continue;
        }
        if (is_forwarded_hdr(h->name))
            continue;
        if (ac_slice_caseeq(h->name, AC_LIT("Host"))) {
            /* absolute-form: the target's authority wins (RFC 9112 §3.2.2) */
            if (host_done)
                continue;
            host_done = true;
            ac_buf_catstr(b, "Host: ");
            ac_buf_cats(b, hr->host);
            ac_buf_cat(b, "\r\n", 2);
            continue;
        }
        ac_buf_field(b, h->name, h->value);
    }
    if (!host_done && hr->host.len > 0) {
        ac_buf_catstr(b, "Host: ");
        ac_buf_cats(b, hr->host);
        ac_buf_cat(b, "\r\n", 2);
    } else if (!host_done && be != NULL) {
        /* HTTP/1.0 without Host: HTTP/1.1 requires one; name the origin. */
        ac_buf_printf(b, "Host: %s\r\n", be->host_header ? be->host_header : be->name);
    }
    for (unsigned i = 0; i < req->n_bereq_ops; i++) {
        if (req->bereq_ops[i].value.p == NULL)
            continue;
        ac_buf_field(b, req->bereq_ops[i].name, req->bereq_ops[i].value);
    }
    if (cachefetch && !(req->n_bereq_ops && pol_overlay_has(req->bereq_ops, req->n_bereq_ops,
                                                            AC_LIT("Accept-Encoding")))) {
        /* One stored body serves every client, so a cache fetch asks for
         * gzip, not for what this client said (as Varnish does); accel
         * decodes for clients without gzip.  Only when this client takes
         * gzip, though: an answer that turns out uncacheable is relayed as
         * it comes, and must be one this client can read. */
        struct gz_accept acc;
        gz_accept_from_headers(hr->hdrs, hr->nhdrs, &acc);
        if (acc.q_gzip > 0)
            ac_buf_catstr(b, "Accept-Encoding: gzip\r\n");
    }
    req->revalidating = false;
    if (cachefetch && req->stale != NULL) {
        /* RFC 9111 §4.3.1: validate the stored copy. */
        struct store_bytes et = store_obj_etag(req->stale),
                           lm = store_obj_last_modified(req->stale);
        if (et.len) {
            ac_buf_catstr(b, "If-None-Match: ");
            ac_buf_cat(b, et.p, et.len);
            ac_buf_cat(b, "\r\n", 2);
        }
        if (lm.len) {
            ac_buf_catstr(b, "If-Modified-Since: ");
            ac_buf_cat(b, lm.p, lm.len);
            ac_buf_cat(b, "\r\n", 2);
        }
        req->revalidating = et.len || lm.len;
    }
    /* Appended as its own field line: X-Forwarded-For is a list, and field
     * lines of one name combine in order (RFC 9110 §5.3). */
    ac_buf_printf(b, "X-Forwarded-For: %s\r\n", req->meta->client_ip);
    ac_buf_printf(b, "X-Forwarded-Proto: %s\r\n", req->meta->tls ? "https" : "http");
    ac_buf_printf(b, "Via: 1.%d accel\r\n", hr->minor >= 1 ? 1 : 0);
    if (hr->body == H1_BODY_LENGTH)
        ac_buf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)hr->content_length);
    else if (hr->body == H1_BODY_CHUNKED)
        ac_buf_catstr(b, "Transfer-Encoding: chunked\r\n");
    if (req->piping && !upgrade &&
        !pol_overlay_has(req->bereq_ops, req->n_bereq_ops, AC_LIT("Connection")))
        ac_buf_catstr(b, "Connection: close\r\n");   /* one request, then bytes */
    else if (upgrade && !pol_overlay_has(req->bereq_ops, req->n_bereq_ops, AC_LIT("Connection"))) {
        const struct h1_header *u = h1_header_find(hr->hdrs, hr->nhdrs, AC_LIT("Upgrade"));
        if (u != NULL) {
            ac_buf_catstr(b, "Connection: upgrade\r\nUpgrade: ");
            ac_buf_cats(b, u->value);
            ac_buf_cat(b, "\r\n", 2);
        }
    }
    ac_buf_cat(b, "\r\n", 2);
    AC_ASSERT(!ac_buf_error(b));
}

/* Go to the origin for this request, without the cache. */
enum step
req_start_pass(struct req *req)
{
    if (req->prog != NULL)
        req->fetch.be = pol_backend(req);
    if (req->fetch.be == NULL)
        return req_synth(req, 503, NULL, "No origin server for this request\n", false);
    req_build_bereq(req);
    if (req->http.body != H1_BODY_NONE && !req->body_begun) {
        /* the body will be read: HTTP/1.1 sends 100 Continue if asked */
        req->body_begun = true;
        if (req->xp != NULL && req->xp->ops->body_begin(req->xp) != AC_OK)
            return STEP_DONE;
    }
    req->state = R_CONNECT;
    return STEP_MORE;
}

/*
 * vcl_backend_error: the policy may retry, or shape the error answer
 * (beresp.status, beresp.reason, beresp.http.*, synthetic()).
 */
static enum step
backend_error(struct req *req, int status)
{
    struct fetch *f = &req->fetch;
    struct vcl_result res;
    enum vcl_action a;

    if (f->bhdrs == NULL)
        f->bhdrs = ac_xcalloc((size_t)req->w->cfg->p.max_headers, sizeof(*f->bhdrs));
    memset(&f->resp, 0, sizeof(f->resp));
    f->resp.hdrs = f->bhdrs;
    f->resp.status = status;
    f->resp.reason_phrase = AC_SLICE(http_reason(status), strlen(http_reason(status)));
    req->synth_body_set = false;
    ac_buf_reset(&req->synth_body);
    a = pol_run(req, VCL_SUB_BACKEND_ERROR, &res);
    if (a == VCL_ACT_RETRY && f->retries < 4 && req->http.body == H1_BODY_NONE) {
        f->retries++;
        req->state = R_CONNECT;
        return STEP_MORE;
    }
    if (a == VCL_ACT_FAIL || a == VCL_ACT_RETRY)
        return req_synth(req, 503, NULL, "Backend fetch failed\n", false);
    /* Deliver the synthetic backend answer as it is (not through vcl_synth). */
    req->n_resp_ops = 0;
    for (unsigned i = 0; i < f->resp.nhdrs && req->n_resp_ops < POL_MAX_HDROPS; i++) {
        req->resp_ops[req->n_resp_ops].name = f->resp.hdrs[i].name;
        req->resp_ops[req->n_resp_ops].value = f->resp.hdrs[i].value;
        req->n_resp_ops++;
    }
    const char *reason = pol_cstr(req, (struct vcl_str){ f->resp.reason_phrase.p,
                                                         f->resp.reason_phrase.len });
    const char *body = req->synth_body_set ? req->synth_body.p : NULL;
    return req_synth_ex(req, f->resp.status, reason, body,
                        req->synth_body_set ? req->synth_body.len : 0, false, true);
}

/* The origin failed: the answer is a stale copy, the policy's
 * vcl_backend_error, or 502/504. */
static enum step
origin_fail(struct req *req)
{
    struct fetch *f = &req->fetch;
    int status = f->fail_status;

    fetch_failed(f, status, f->fail_what, f->fail_err);
    if (cache_on_origin_fail(req))
        return STEP_MORE;           /* stale-if-error took over */
    if (req->bg)
        return STEP_DONE;
    if (req->prog != NULL)
        return backend_error(req, status);
    req->upstream_status = 0;
    if (status == 504)
        return req_synth(req, 504, NULL, "Origin timed out\n", false);
    return req_synth(req, 502, NULL, "Origin unreachable or invalid answer\n", false);
}

/* May this request go to another server after its server failed before
 * answering?  Only under a policy (its pools are health-managed), once,
 * for an idempotent request without a body, before any response byte
 * (so nothing has reached the client). */
static bool
can_move(const struct req *req)
{
    const struct fetch *f = &req->fetch;

    return req->prog != NULL && f->be != NULL && pool_set_managed(f->be->set) && !req->moved &&
           req->http.body == H1_BODY_NONE && f->resp_bytes_in == 0 && !req->piping &&
           http_method_idempotent(req->http.method);
}

/* The server failed before answering (connect, send, closed): another
 * healthy server of the pool once, else the origin failure. */
static enum step
connect_failed(struct req *req)
{
    const struct backend *to;

    if (can_move(req) && (to = pol_backend_avoid(req, req->fetch.be)) != NULL) {
        fetch_move(&req->fetch, to);
        req->moved = true;
        req->state = R_CONNECT;
        return STEP_MORE;
    }
    return origin_fail(req);
}

/* The wait for a max_connections slot ended without one: 503. */
static enum step
queue_full(struct req *req)
{
    if (cache_on_origin_fail(req))
        return STEP_MORE;           /* stale-if-error took over */
    if (req->bg)
        return STEP_DONE;
    return req_synth(req, 503, "Backend busy (max_connections)",
                     "Origin server busy (max_connections reached)\n", false);
}

enum step
req_no_backend(struct req *req)
{
    LOG_W("no healthy origin for %s " AC_SLICE_FMT " (client %s)",
          req->prog ? vcl_program_ref_name(req->prog, req->backend_hint) : "-",
          AC_SLICE_ARG(req->http.path), req->meta->client_ip);
    if (cache_on_origin_fail(req))
        return STEP_MORE;           /* stale-if-error took over */
    if (req->bg)
        return STEP_DONE;
    return req_synth(req, 503, "No healthy backend", "No healthy origin server for this request\n",
                     false);
}

/* What a failed body_read() means: AC_AGAIN waits; bad framing and a
 * too slow client are answered (and end the connection); a client that
 * went away ends the request. */
static enum step
body_error(struct req *req, ssize_t n)
{
    switch (n) {
    case AC_AGAIN:
        return STEP_WAIT;
    case AC_EPROTO:
        STAT_INC(req->w, client_req_bad);
        fetch_close(&req->fetch);
        return req_synth(req, 400, NULL, "Bad chunked request body\n", true);
    case AC_ETIMEDOUT:
        STAT_INC(req->w, client_timeout);
        fetch_close(&req->fetch);
        return req_synth(req, 408, NULL, "Request body too slow\n", true);
    default:
        return STEP_DONE;
    }
}

enum step
req_connect_step(struct req *req)
{
    struct fetch *f = &req->fetch;

    if (req->abandon) {
        req->abandon = false;
        if (req->busy != NULL) {
            store_obj_abort(req->busy);
            store_obj_release(&req->busy);
        }
        if (req->bg)
            return STEP_DONE;
        return req_synth(req, 503, NULL, "Backend fetch abandoned\n", false);
    }
    if (f->oc == NULL && req->http.body == H1_BODY_CHUNKED && !req->body_checked &&
        req->xp != NULL) {
        /* Nothing reaches the origin before the body's framing is known
         * to start well: a request whose body is broken from the start is
         * answered 400 with nothing forwarded.  (Framing that breaks
         * later aborts the origin request mid-body.) */
        struct ac_slice d;
        ssize_t n = req->xp->ops->body_read(req->xp, &d);
        if (n < 0)
            return body_error(req, n);
        req->body_checked = true;
    }
    f->may_retry = req->http.body == H1_BODY_NONE && http_method_idempotent(req->http.method);
    switch (fetch_connect(f)) {
    case FETCH_OK:
        req->state = R_BEREQ;
        return STEP_MORE;
    case AC_AGAIN:
        return STEP_WAIT;
    case FETCH_EQUEUE:
        return queue_full(req);
    default:
        return connect_failed(req);
    }
}

/*
 * Upgrade after 101, or return (pipe): the transport takes the origin
 * connection and what was read from it, and relays bytes both ways; the
 * request waits in R_TUNNEL until the transport says the tunnel ended.
 */
static enum step
start_tunnel(struct req *req, const struct xp_head *h)
{
    struct xport *x = req->xp;
    struct ac_iobuf relay = req->fetch.relay;
    struct oconn *oc;

    if (x == NULL || x->ops->tunnel == NULL)
        return STEP_DONE;
    memset(&req->fetch.relay, 0, sizeof(req->fetch.relay));
    if (relay.data == NULL)
        ac_iobuf_init(&relay, (size_t)req->w->cfg->p.relay_buffer);
    oc = fetch_take_conn(&req->fetch);
    STAT_INC(req->w, tunnel);
    req->state = R_TUNNEL;
    if (x->ops->tunnel(x, h, oc, &relay) != AC_OK)
        return STEP_DONE;
    return STEP_WAIT;
}

/* The transport resumed us: the tunnel has ended, and so has the
 * connection (XP_END_ABORT). */
enum step
req_tunnel_step(struct req *req)
{
    (void)req;
    return STEP_DONE;
}

/* What a failed origin step means (rc: a FETCH_E* code): a fresh
 * connection for a dead pooled one, another server when nothing was
 * answered yet, else the origin's failure. */
static enum step
step_failed(struct req *req, int rc)
{
    if (rc == FETCH_ERETRY) {
        fetch_retry(&req->fetch);
        req->state = R_CONNECT;
        return STEP_MORE;
    }
    if (rc == FETCH_EMOVE)
        return connect_failed(req);
    return origin_fail(req);
}

enum step
req_bereq_step(struct req *req)
{
    int r = fetch_send_head(&req->fetch, &req->bereq);

    if (r == AC_AGAIN)
        return STEP_WAIT;
    if (r != FETCH_OK)
        return step_failed(req, r);
    if (req->piping)
        return start_tunnel(req, NULL);  /* the body, if any, goes through as raw bytes */
    req->state = req->http.body != H1_BODY_NONE ? R_REQBODY : R_BERESP;
    return STEP_MORE;
}

/* Queue framing bytes of a chunked body (sent before anything else). */
static void
frame_queue(struct req *req, const char *fmt, uint64_t n)
{
    int l = snprintf(req->frame, sizeof(req->frame), fmt, (unsigned long long)n);

    req->frame_len = (size_t)l;
    req->frame_off = 0;
}

/*
 * Stream the request body from the client to the origin at the slower
 * side's speed.  A transport with XP_F_RAW_CHUNKED (HTTP/1.1) gives the
 * client's bytes, chunked framing included, once validated: they go as
 * they are.  Another one (HTTP/2) gives plain bytes for a body of unknown
 * length: each run becomes one chunk of the origin request
 * (Transfer-Encoding: chunked, req_build_bereq()), and the empty last
 * chunk ends it.
 */
enum step
req_reqbody_step(struct req *req)
{
    struct fetch *f = &req->fetch;
    struct xport *x = req->xp;
    bool frame = req->http.body == H1_BODY_CHUNKED && x != NULL &&
                 !(x->flags & XP_F_RAW_CHUNKED);
    struct ac_slice d;
    ssize_t sent;

    if (x == NULL)
        return STEP_DONE;
    for (;;) {
        if (req->frame_off < req->frame_len) {
            sent = fetch_send_body(f, AC_SLICE(req->frame + req->frame_off,
                                               req->frame_len - req->frame_off));
            if (sent == AC_AGAIN)
                return STEP_WAIT;
            if (sent < 0)
                return origin_fail(req);
            req->frame_off += (size_t)sent;
            continue;
        }
        if (req->frame_end) {
            req->state = R_BERESP;
            return STEP_MORE;
        }
        ssize_t n = x->ops->body_read(x, &d);
        if (n == 0) {
            if (!frame) {
                req->state = R_BERESP;
                return STEP_MORE;
            }
            frame_queue(req, "0\r\n\r\n", 0);
            req->frame_end = true;
            continue;
        }
        if (n < 0) {
            if (n == AC_ECLOSED)
                LOG_I("client %s: closed during the request body", req->meta->client_ip);
            return body_error(req, n);
        }
        if (frame && req->chunk_left == 0) {
            frame_queue(req, "%llx\r\n", (uint64_t)n);
            req->chunk_left = (uint64_t)n;
            continue;
        }
        if (frame)
            n = (ssize_t)AC_MIN((uint64_t)n, req->chunk_left);
        sent = fetch_send_body(f, AC_SLICE(d.p, (size_t)n));
        if (sent == AC_AGAIN)
            return STEP_WAIT;
        if (sent < 0)
            return origin_fail(req);
        x->ops->body_consume(x, (size_t)sent);
        if (frame && (req->chunk_left -= (uint64_t)sent) == 0)
            frame_queue(req, "\r\n", 0);
    }
}

/* A 1xx interim answer (103 Early Hints) to the client, copied out of the
 * relay buffer first (it is consumed before the transport writes it). */
static int
send_interim(struct req *req)
{
    const struct h1_response *r = &req->fetch.resp;
    struct ac_buf *b = &req->whead;
    struct xp_head h;
    size_t rl;
    int rc;

    ac_buf_reset(b);
    ac_buf_cats(b, r->reason_phrase);
    rl = b->len;
    for (unsigned i = 0; i < r->nhdrs; i++) {
        const struct h1_header *hd = &r->hdrs[i];
        if (http_is_hop_by_hop(hd->name))
            continue;
        ac_buf_field(b, hd->name, hd->value);
    }
    AC_ASSERT(!ac_buf_error(b));
    memset(&h, 0, sizeof(h));
    h.status = (unsigned)r->status;
    h.reason = AC_SLICE(b->p, rl);
    h.blk[0] = AC_SLICE(b->p + rl, b->len - rl);
    h.nblk = 1;
    h.body = XP_BODY_NONE;
    if (req->xp == NULL)
        return AC_OK;
    rc = req->xp->ops->interim(req->xp, &h);
    if (rc == AC_AGAIN)
        req->out_wait = true;
    else if (rc != AC_OK)
        req_drop_xport(req, XP_END_ABORT);
    return rc;
}

enum step
req_beresp_step(struct req *req)
{
    struct fetch *f = &req->fetch;
    bool upgrade = (req->http.flags & H1_F_UPGRADE) != 0;
    int r;

    if (req->out_wait)
        return STEP_WAIT;           /* an interim (1xx) answer still going out */
    for (;;) {
        r = fetch_head(f, req->bereq_method.len ? req->bereq_method : req->http.method, upgrade);
        if (r != FETCH_INTERIM)
            break;
        int wr = send_interim(req);
        fetch_head_consume(f);
        if (wr == AC_AGAIN)
            return STEP_WAIT;
        if (wr != AC_OK)
            return STEP_DONE;
    }
    if (r == AC_AGAIN)
        return STEP_WAIT;
    if (r != FETCH_OK)
        return step_failed(req, r);
    if (f->resp.status == 101 && upgrade) {
        struct xp_head h;
        req->upstream_status = 101;
        req_build_resp_head(req, &h);
        fetch_head_consume(f);
        return start_tunnel(req, &h);
    }
    req->upstream_status = f->resp.status;
    if (req->kind == CACHE_REQ_UNSAFE && f->resp.status < 400)
        cache_after_unsafe(req);
    if (req->busy != NULL)
        return cache_on_beresp(req);
    req_start_respbody(req);
    return req->fetch_next;
}

void
req_start_respbody(struct req *req)
{
    struct xp_head h;

    if (req->prog != NULL && !req->bg) {
        struct vcl_result res;
        enum step st;
        enum vcl_action a;
        if (req->busy == NULL && policy_backend_response(req, &st)) {
            req->fetch_next = st;
            return;
        }
        a = pol_run(req, VCL_SUB_DELIVER, &res);
        if (a != VCL_ACT_DELIVER) {
            fetch_close(&req->fetch);
            if (a == VCL_ACT_RESTART) {
                req->fetch_next = req_restart(req);
                return;
            }
            req->fetch_next = req_synth(req, a == VCL_ACT_SYNTH ? (int)res.status : 503,
                                        res.reason.p ? pol_cstr(req, res.reason) : NULL, NULL,
                                        false);
            return;
        }
    }
    req->fetch_next = STEP_MORE;
    req_build_resp_head(req, &h);
    fetch_head_consume(&req->fetch);
    req->end_sent = false;
    req->state = R_RESPBODY;
    if (!req_send_head(req, &h))
        req->fetch_next = STEP_DONE;
}

/*
 * The client's response head for a response relayed from the origin: its
 * end-to-end fields (hop-by-hop ones, the ones the policy overrides, and
 * RFC 9213 fields and surrogate keys addressed to us left out), Via, the
 * cache's fields, the policy's, Content-Length when known.  The reason
 * and the fields are copied into whead: the relay buffer they come from
 * is reused before the transport writes the head.
 */
void
req_build_resp_head(struct req *req, struct xp_head *h)
{
    const struct h1_response *resp = &req->fetch.resp;
    struct ac_buf *b = &req->whead;
    bool head = ac_slice_eq(req->http.method, AC_LIT("HEAD"));
    bool pass_cl = false;
    size_t rl;

    req->status = req->resp_status_set ? req->resp_status_set : resp->status;
    ac_buf_reset(b);
    if (req->resp_reason.p != NULL)
        ac_buf_cats(b, req->resp_reason);
    else if (req->resp_status_set && req->resp_status_set != resp->status)
        ac_buf_catstr(b, http_reason(req->status));
    else
        ac_buf_cats(b, resp->reason_phrase);
    rl = b->len;
    for (unsigned i = 0; i < resp->nhdrs; i++) {
        const struct h1_header *hd = &resp->hdrs[i];
        if (resp->status == 101 && ac_slice_caseeq(hd->name, AC_LIT("Upgrade"))) {
            /* the one connection field in a head: the tunnel's */
            ac_buf_catstr(b, "Connection: upgrade\r\nUpgrade: ");
            ac_buf_cats(b, hd->value);
            ac_buf_cat(b, "\r\n", 2);
            continue;
        }
        if (http_is_hop_by_hop(hd->name) || http_conn_lists(resp->hdrs, resp->nhdrs, hd->name))
            continue;
        if (req->n_resp_ops && pol_overlay_has(req->resp_ops, req->n_resp_ops, hd->name))
            continue;
        /* RFC 9213 fields addressed to us, and surrogate keys (tags), are
         * consumed here, never relayed. */
        if (ac_slice_caseeq(hd->name, AC_LIT("Surrogate-Key")) ||
            ac_slice_caseeq(hd->name, AC_LIT("xkey")) ||
            ac_slice_caseeq(hd->name, AC_LIT("Cache-Tag")) ||
            ac_slice_caseeq(hd->name, AC_LIT("CDN-Cache-Control")) ||
            (req->w->cparams && req->w->cparams->targeted_cc.len &&
             ac_slice_caseeq(hd->name, req->w->cparams->targeted_cc)))
            continue;
        if (ac_slice_caseeq(hd->name, AC_LIT("Content-Length"))) {
            /* Re-emitted once below (duplicates like "5, 5" normalised);
             * a body-less answer (HEAD, 304) keeps the origin's value. */
            if (resp->body == H1_BODY_NONE && !pass_cl) {
                pass_cl = true;
                ac_buf_cat(b, "Content-Length: ", 16);
                ac_buf_cats(b, hd->value);
                ac_buf_cat(b, "\r\n", 2);
            }
            continue;
        }
        ac_buf_field(b, hd->name, hd->value);
    }
    if (req->n_resp_ops == 0 || !pol_overlay_has(req->resp_ops, req->n_resp_ops, AC_LIT("Via")))
        ac_buf_catstr(b, "Via: 1.1 accel\r\n");
    cache_pass_headers(req, b);
    req_cat_resp_overlay(req, b);
    if (resp->body == H1_BODY_LENGTH)
        ac_buf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)resp->content_length);
    AC_ASSERT(!ac_buf_error(b));
    memset(h, 0, sizeof(*h));
    h->status = (unsigned)req->status;
    h->reason = AC_SLICE(b->p, rl);
    h->blk[0] = AC_SLICE(b->p + rl, b->len - rl);
    h->nblk = 1;
    if (head || resp->body == H1_BODY_NONE || resp->status == 101)
        h->body = XP_BODY_NONE;
    else if (resp->body == H1_BODY_LENGTH)
        h->body = XP_BODY_LENGTH;
    else
        h->body = XP_BODY_STREAM;
}

/*
 * The pass relay: runs of body bytes from the relay buffer to the client,
 * read from the origin only once everything read before is out (flow
 * control).  A body cut short by the origin ends the request with
 * XP_END_ABORT: the client never takes a truncated body for whole.
 */
enum step
req_respbody_step(struct req *req)
{
    struct fetch *f = &req->fetch;
    bool head = ac_slice_eq(req->http.method, AC_LIT("HEAD"));

    if (req->out_wait)
        return STEP_WAIT;
    for (;;) {
        struct iovec iov[XP_MAX_IOV];
        struct ac_slice d;
        int n = 0, r;

        if (f->timed_out) {
            STAT_INC(req->w, backend_timeout);
            LOG_W("origin %s: body stalled for %gs, closing the client connection",
                  f->be->name, fetch_timeout(f, FETCH_TMO_BETWEEN_BYTES));
            return STEP_DONE;
        }
        while (!head && n < XP_MAX_IOV && (r = fetch_body_take(f, &d)) != 0) {
            if (r < 0) {
                LOG_W("origin %s: bad chunked body (%s), closing the client connection",
                      f->be->name, f->fail_what);
                return STEP_DONE;
            }
            iov[n].iov_base = (void *)(uintptr_t)d.p;
            iov[n].iov_len = d.len;
            n++;
            req->bytes_sent += d.len;
        }
        bool done = head || fetch_body_done(f);
        if (done && f->oc != NULL) {
            /* all read (what is left goes from the buffer): the
             * connection and its max_connections slot are free now */
            if (head && !fetch_body_done(f))
                f->origin_reusable = false;     /* a GET's body we will not read */
            fetch_release(f, f->origin_reusable);
        }
        if (n > 0 || (done && !req->end_sent)) {
            req->end_sent = done;
            r = req_write(req, iov, n, done ? XP_W_END : 0);
            if (r == AC_AGAIN)
                return STEP_WAIT;
            if (r != AC_OK)
                return STEP_DONE;   /* client gone: the origin connection is closed */
            continue;
        }
        if (done) {
            req->state = R_FINISH;
            return STEP_MORE;
        }
        if (req->head_pending) {
            /* nothing of the body yet: the head goes out now */
            r = req_flush_head(req);
            if (r == AC_AGAIN)
                return STEP_WAIT;
            if (r != AC_OK)
                return STEP_DONE;
        }
        r = fetch_body_read(f);
        if (r == AC_AGAIN)
            return STEP_WAIT;
        if (r < 0) {
            /* Truncated: the client must not take a partial body for a
             * whole one. */
            LOG_W("origin %s: %s mid-body, closing the client connection", f->be->name,
                  f->fail_what);
            return STEP_DONE;
        }
    }
}
