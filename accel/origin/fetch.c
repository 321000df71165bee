/*
 * fetch.c -- the origin side of a session: connection (pooled or new),
 * request head, request body, response head, response body relay.
 *
 * Flow control: the response body moves through one fixed buffer
 * (relay_buffer bytes).  accel reads from the origin only when everything
 * read before has been written to the client, so a slow client slows the
 * origin read instead of growing memory (a 1 GiB body needs 64 KiB here).
 */
#include "sess.h"

#include "http.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

double
fetch_timeout(const struct sess *s, enum fetch_tmo t)
{
    const struct config_params *p = &s->w->cfg->p;
    double be_v = -1;

    if (s->prog != NULL && s->bto[t] >= 0)
        return s->bto[t];
    if (s->be != NULL)
        be_v = t == FETCH_TMO_CONNECT      ? s->be->connect_timeout
             : t == FETCH_TMO_FIRST_BYTE   ? s->be->first_byte_timeout
                                           : s->be->between_bytes_timeout;
    if (be_v >= 0)
        return be_v;
    return t == FETCH_TMO_CONNECT      ? p->connect_timeout
         : t == FETCH_TMO_FIRST_BYTE   ? p->first_byte_timeout
                                       : p->between_bytes_timeout;
}

void
fetch_on_origin_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct oconn *oc = AC_CONTAINER_OF(io, struct oconn, io);

    (void)revents;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    AC_NOTNULL(oc->owner);
    if (oc->owner->owant == 0) {
        ev_io_stop(loop, io);       /* the lazy stop of sess_want() */
        return;
    }
    sess_drive(oc->owner);
}

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
           /* accel negotiates codings itself (see fetch_build_bereq) */
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
 * with X-Forwarded-For extended, X-Forwarded-Proto set, Via appended, and
 * the body framing re-stated.  Built once per request, before the request
 * body is read, while the head slices are valid.
 */
void
fetch_build_bereq(struct sess *s)
{
    const struct h1_request *req = &s->req;
    struct ac_buf *b = &s->bereq;
    bool upgrade = (req->flags & H1_F_UPGRADE) != 0;
    bool host_done = false;
    const struct h1_header *xff = NULL;

    bool cachefetch = s->busy != NULL;

    s->abandon = false;
    if (s->prog != NULL) {
        struct vcl_result res;
        if (pol_run(s, VCL_SUB_BACKEND_FETCH, &res) != VCL_ACT_FETCH)
            s->abandon = true;      /* fetch_connect answers 503 */
    }
    ac_buf_reset(b);
    /* A cache fetch for HEAD asks for GET, so the body can be stored. */
    s->bereq_method = cachefetch && ac_slice_eq(req->method, AC_LIT("HEAD")) ? AC_LIT("GET")
                                                                            : req->method;
    ac_buf_cats(b, s->bereq_method);
    ac_buf_cat(b, " ", 1);
    ac_buf_cats(b, req->path);
    ac_buf_catstr(b, " HTTP/1.1\r\n");
    for (unsigned i = 0; i < req->nhdrs; i++) {
        const struct h1_header *h = &req->hdrs[i];
        if (http_is_hop_by_hop(h->name) || http_conn_lists(req->hdrs, req->nhdrs, h->name))
            continue;
        if (ac_slice_caseeq(h->name, AC_LIT("Content-Length")) ||
            ac_slice_caseeq(h->name, AC_LIT("Expect")))
            continue;
        if (cachefetch && cache_fetch_drops(h->name))
            continue;
        if (s->n_bereq_ops && pol_overlay_has(s->bereq_ops, s->n_bereq_ops, h->name))
            continue;
        if (ac_slice_caseeq(h->name, AC_LIT("X-Forwarded-For"))) {
            xff = h;            /* several: RFC 7239 says combine; keep them in order */
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
            ac_buf_cats(b, req->host);
            ac_buf_cat(b, "\r\n", 2);
            continue;
        }
        ac_buf_field(b, h->name, h->value);
    }
    if (!host_done && req->host.len > 0) {
        ac_buf_catstr(b, "Host: ");
        ac_buf_cats(b, req->host);
        ac_buf_cat(b, "\r\n", 2);
    } else if (!host_done && s->be != NULL) {
        /* HTTP/1.0 without Host: HTTP/1.1 requires one; name the origin. */
        ac_buf_printf(b, "Host: %s\r\n", s->be->host_header ? s->be->host_header : s->be->name);
    }
    (void)xff;
    for (unsigned i = 0; i < s->n_bereq_ops; i++) {
        if (s->bereq_ops[i].value.p == NULL)
            continue;
        ac_buf_field(b, s->bereq_ops[i].name, s->bereq_ops[i].value);
    }
    if (cachefetch && !(s->n_bereq_ops &&
                        pol_overlay_has(s->bereq_ops, s->n_bereq_ops, AC_LIT("Accept-Encoding")))) {
        /* One stored body serves every client, so a cache fetch asks for
         * gzip, not for what this client said (as Varnish does); accel
         * decodes for clients without gzip.  Only when this client takes
         * gzip, though: an answer that turns out uncacheable is relayed as
         * it comes, and must be one this client can read. */
        struct gz_accept acc;
        gz_accept_from_headers(req->hdrs, req->nhdrs, &acc);
        if (acc.q_gzip > 0)
            ac_buf_catstr(b, "Accept-Encoding: gzip\r\n");
    }
    s->revalidating = false;
    if (cachefetch && s->stale != NULL) {
        /* RFC 9111 §4.3.1: validate the stored copy. */
        struct store_bytes et = store_obj_etag(s->stale), lm = store_obj_last_modified(s->stale);
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
        s->revalidating = et.len || lm.len;
    }
    /* Appended as its own field line: X-Forwarded-For is a list, and field
     * lines of one name combine in order (RFC 9110 §5.3). */
    ac_buf_printf(b, "X-Forwarded-For: %s\r\n", s->client_ip);
    ac_buf_printf(b, "X-Forwarded-Proto: %s\r\n", s->tls ? "https" : "http");
    ac_buf_printf(b, "Via: 1.%d accel\r\n", req->minor >= 1 ? 1 : 0);
    if (req->body == H1_BODY_LENGTH)
        ac_buf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)req->content_length);
    else if (req->body == H1_BODY_CHUNKED)
        ac_buf_catstr(b, "Transfer-Encoding: chunked\r\n");
    if (s->piping && !upgrade &&
        !pol_overlay_has(s->bereq_ops, s->n_bereq_ops, AC_LIT("Connection")))
        ac_buf_catstr(b, "Connection: close\r\n");   /* one request, then bytes */
    else if (upgrade && !pol_overlay_has(s->bereq_ops, s->n_bereq_ops, AC_LIT("Connection"))) {
        const struct h1_header *u = h1_header_find(req->hdrs, req->nhdrs, AC_LIT("Upgrade"));
        if (u != NULL) {
            ac_buf_catstr(b, "Connection: upgrade\r\nUpgrade: ");
            ac_buf_cats(b, u->value);
            ac_buf_cat(b, "\r\n", 2);
        }
    }
    ac_buf_cat(b, "\r\n", 2);
    AC_ASSERT(!ac_buf_error(b));
}

static bool
retryable(const struct sess *s)
{
    return s->oc_reused && s->retries == 0 && s->req.body == H1_BODY_NONE &&
           s->resp_bytes_in == 0 && http_method_idempotent(s->req.method);
}

/* A reused idle connection turned out dead before any response byte:
 * the origin closed it while we picked it.  Try once on a fresh one. */
static enum step
retry(struct sess *s)
{
    pool_close(&s->oc);
    s->retries++;
    s->oc_reused = false;
    STAT_INC(s->w, backend_retry);
    s->state = S_CONNECT;
    return STEP_MORE;
}

/*
 * vcl_backend_error: the policy may retry, or shape the error answer
 * (beresp.status, beresp.reason, beresp.http.*, synthetic()).
 */
static enum step
backend_error(struct sess *s, int status)
{
    struct vcl_result res;
    enum vcl_action a;

    if (s->bhdrs == NULL)
        s->bhdrs = ac_xcalloc((size_t)s->w->cfg->p.max_headers, sizeof(*s->bhdrs));
    memset(&s->resp, 0, sizeof(s->resp));
    s->resp.hdrs = s->bhdrs;
    s->resp.status = status;
    s->resp.reason_phrase = AC_SLICE(http_reason(status), strlen(http_reason(status)));
    s->synth_body_set = false;
    ac_buf_reset(&s->synth_body);
    a = pol_run(s, VCL_SUB_BACKEND_ERROR, &res);
    if (a == VCL_ACT_RETRY && s->retries < 4 && s->req.body == H1_BODY_NONE) {
        s->retries++;
        s->state = S_CONNECT;
        return STEP_MORE;
    }
    if (a == VCL_ACT_FAIL || a == VCL_ACT_RETRY)
        return sess_synth(s, 503, NULL, "Backend fetch failed\n", false);
    /* Deliver the synthetic backend answer as it is (not through vcl_synth). */
    struct vcl_program *p = s->prog;
    s->n_resp_ops = 0;
    for (unsigned i = 0; i < s->resp.nhdrs && s->n_resp_ops < POL_MAX_HDROPS; i++) {
        s->resp_ops[s->n_resp_ops].name = s->resp.hdrs[i].name;
        s->resp_ops[s->n_resp_ops].value = s->resp.hdrs[i].value;
        s->n_resp_ops++;
    }
    const char *reason = pol_cstr(s, (struct vcl_str){ s->resp.reason_phrase.p,
                                                       s->resp.reason_phrase.len });
    const char *body = s->synth_body_set ? s->synth_body.p : NULL;
    (void)p;
    return sess_synth_ex(s, s->resp.status, reason, body,
                         s->synth_body_set ? s->synth_body.len : 0, false, true);
}

static enum step
origin_fail(struct sess *s, int status, const char *what, int err)
{
    if (peer_fallback(s))
        return STEP_MORE;           /* a cluster peer failed: the origin instead */
    if (s->be != NULL) {
        struct backend *be = (struct backend *)s->be;
        atomic_fetch_add_explicit(&be->n_fail, 1, memory_order_relaxed);
        pool_be_report(be, false, s->w->cfg);
    }
    if (status == 504) {
        STAT_INC(s->w, backend_timeout);
        STAT_INC(s->w, resp_504);
    } else {
        STAT_INC(s->w, resp_502);
    }
    LOG_W("origin %s: %s%s%s (client %s)", s->be ? s->be->name : "-", what, err ? ": " : "",
          err ? strerror(err) : "", s->client_ip);
    if (s->oc != NULL)
        pool_close(&s->oc);
    if (cache_on_origin_fail(s))
        return STEP_MORE;           /* stale-if-error took over */
    if (s->bg)
        return STEP_DONE;
    if (s->prog != NULL)
        return backend_error(s, status);
    s->upstream_status = 0;
    if (status == 504)
        return sess_synth(s, 504, NULL, "Origin timed out\n", false);
    return sess_synth(s, 502, NULL, "Origin unreachable or invalid answer\n", false);
}

/*
 * Before anything of a chunked request reaches the origin, read until its
 * first chunk-size line has been validated: a request whose body framing is
 * broken from the start is answered 400 with nothing forwarded.  (Framing
 * that breaks later aborts the origin request mid-body.)
 */
static enum step
check_first_chunk(struct sess *s)
{
    struct ac_iobuf *b = &s->rbuf;
    ssize_t n;

    if (s->niov > 0) {              /* "100 Continue" first: the client waits for it */
        enum step r = sess_flush(s);
        if (r != STEP_MORE)
            return r;
    }
    if (s->timed_out) {
        STAT_INC(s->w, client_timeout);
        s->keepalive = false;
        return sess_synth(s, 408, NULL, "Request body too slow\n", true);
    }
    for (;;) {
        if (ac_iobuf_len(b) > s->reqbody_scan) {
            struct ac_slice data;
            long c = h1_chunked_decode(&s->reqchunk, ac_iobuf_head(b) + s->reqbody_scan,
                                       ac_iobuf_len(b) - s->reqbody_scan, &data);
            if (c < 0) {
                STAT_INC(s->w, client_req_bad);
                s->keepalive = false;
                return sess_synth(s, 400, NULL, "Bad chunked request body\n", true);
            }
            s->reqbody_scan += (size_t)c;
            if (s->reqchunk.total > 0 || h1_chunked_done(&s->reqchunk) ||
                s->reqchunk.state >= H1_CS_DATA) {
                s->body_checked = true;
                return STEP_MORE;
            }
            if (c > 0)
                continue;
        }
        if (s->client_eof)
            return STEP_DONE;
        if (ac_iobuf_room(b) == 0) {
            ac_iobuf_compact(b);
            if (ac_iobuf_room(b) == 0) {
                s->keepalive = false;
                return sess_synth(s, 400, NULL, "Bad chunked request body\n", true);
            }
        }
        n = conn_read(&s->c, b->data + b->end, ac_iobuf_room(b));
        if (n > 0) {
            b->end += (size_t)n;
            s->body_window_bytes += (uint64_t)n;
            continue;
        }
        if (n == AC_AGAIN) {
            sess_want(s, s->c.want, 0);
            sess_timer(s, s->w->cfg->p.timeout_req_head);
            return STEP_WAIT;
        }
        s->client_eof = true;
        return STEP_DONE;
    }
}

/* May this request go to another server after its server failed before
 * answering?  Only under a policy (its pools are health-managed), once,
 * for an idempotent request without a body, before any response byte
 * (so nothing has reached the client). */
static bool
can_move(const struct sess *s)
{
    return s->prog != NULL && s->be != NULL && pool_set_managed(s->be->set) && !s->moved &&
           s->req.body == H1_BODY_NONE && s->resp_bytes_in == 0 && !s->piping &&
           http_method_idempotent(s->req.method);
}

/* Retry on another healthy server of the pool; STEP_MORE, or -1 when there
 * is no other one. */
static int
move_to_other(struct sess *s, const char *what, int err)
{
    struct backend *from = (struct backend *)s->be, *to;

    if (!can_move(s))
        return -1;
    to = (struct backend *)pol_backend_avoid(s, from);
    if (to == NULL)
        return -1;
    atomic_fetch_add_explicit(&from->n_fail, 1, memory_order_relaxed);
    pool_be_report(from, false, s->w->cfg);
    if (s->oc != NULL)
        pool_close(&s->oc);
    LOG_W("origin %s (%s): %s%s%s; retrying on %s (client %s)", from->vname, from->name, what,
          err ? ": " : "", err ? strerror(err) : "", to->vname, s->client_ip);
    atomic_fetch_add_explicit(&to->n_retry_other, 1, memory_order_relaxed);
    STAT_INC(s->w, backend_retry);
    s->be = to;
    s->moved = true;
    s->oc_reused = false;
    s->timed_out = false;           /* a connect timeout was the old server's */
    s->state = S_CONNECT;
    return STEP_MORE;
}

static enum step
connect_failed(struct sess *s, int status, const char *what, int err)
{
    int r = move_to_other(s, what, err);

    if (r >= 0)
        return (enum step)r;
    return origin_fail(s, status, what, err);
}

/* The connection died before any response byte (after the request). */
static enum step
conn_lost(struct sess *s, const char *what, int err)
{
    return connect_failed(s, 502, what, err);
}

static enum step queue_full(struct sess *s);

/* A slot given back on any thread went to this waiting session. */
static void
on_slot_granted(void *arg)
{
    struct sess *s = arg;

    wrk_wake(s->w, s);              /* the session's own worker drives it */
}

/*
 * A max_connections slot for s->be: true when s holds one.  Otherwise s
 * waits in the backend's queue (first come, first served: a slot given back
 * is handed to the oldest waiter, which is woken) until
 * backend_queue_timeout, then *stp is a 503 (or a stale copy).
 */
static bool
slot_take(struct sess *s, enum step *stp)
{
    struct backend *be = (struct backend *)s->be;
    double now = ev_now(s->w->loop);

    if (s->qw.be == NULL) {         /* not waiting yet */
        if (pool_be_acquire(be))
            return true;
        s->qw.be = be;
        s->qw.wake = on_slot_granted;
        s->qw.arg = s;
        if (pool_wait_enter(&s->qw)) {
            s->qw.be = NULL;
            return true;
        }
        s->queue_until = now + s->w->cfg->p.backend_queue_timeout;
        atomic_fetch_add_explicit(&be->n_queued, 1, memory_order_relaxed);
        sess_want(s, 0, 0);
        sess_timer(s, s->w->cfg->p.backend_queue_timeout);
        *stp = STEP_WAIT;
        return false;
    }
    if (pool_wait_granted(&s->qw)) {
        s->queue_until = 0;
        s->timed_out = false;       /* the wait's deadline timer, not a timeout */
        return true;
    }
    if (now < s->queue_until && !s->timed_out) {
        *stp = STEP_WAIT;           /* a wake-up that was not for us */
        return false;
    }
    pool_wait_leave(&s->qw);        /* hands on a slot granted just now */
    s->queue_until = 0;
    s->timed_out = false;
    *stp = queue_full(s);
    return false;
}

/* The wait for a max_connections slot ended without one: 503. */
static enum step
queue_full(struct sess *s)
{
    struct backend *be = (struct backend *)s->be;

    atomic_fetch_add_explicit(&be->n_queue_full, 1, memory_order_relaxed);
    LOG_W("origin %s (%s): %u connections in use (max_connections), request refused "
          "(client %s)", be->vname, be->name, be->max_conn, s->client_ip);
    if (cache_on_origin_fail(s))
        return STEP_MORE;           /* stale-if-error took over */
    if (s->bg)
        return STEP_DONE;
    return sess_synth(s, 503, "Backend busy (max_connections)",
                      "Origin server busy (max_connections reached)\n", false);
}

enum step
fetch_no_backend(struct sess *s)
{
    LOG_W("no healthy origin for %s " AC_SLICE_FMT " (client %s)",
          s->prog ? vcl_program_ref_name(s->prog, s->backend_hint) : "-",
          AC_SLICE_ARG(s->req.path), s->client_ip);
    if (cache_on_origin_fail(s))
        return STEP_MORE;           /* stale-if-error took over */
    if (s->bg)
        return STEP_DONE;
    return sess_synth(s, 503, "No healthy backend", "No healthy origin server for this request\n",
                      false);
}

enum step
fetch_connect(struct sess *s)
{
    struct oconn *oc = s->oc;
    int err = 0;
    socklen_t el = sizeof(err);

    if (s->abandon) {
        s->abandon = false;
        if (s->busy != NULL) {
            store_obj_abort(s->busy);
            store_obj_release(&s->busy);
        }
        if (s->bg)
            return STEP_DONE;
        return sess_synth(s, 503, NULL, "Backend fetch abandoned\n", false);
    }
    if (oc == NULL && s->req.body == H1_BODY_CHUNKED && !s->body_checked && !s->bg) {
        enum step r = check_first_chunk(s);
        if (r != STEP_MORE || !s->body_checked)
            return r;
    }
    if (oc == NULL) {
        struct backend *be = (struct backend *)s->be;
        enum step st;
        if (!slot_take(s, &st))
            return st;
        if (s->retries == 0 && (oc = pool_get_idle(s->w, s->be)) != NULL) {
            s->oc_reused = true;
            STAT_INC(s->w, backend_reuse);
        } else {
            oc = pool_connect(s->w, s->be);
            if (oc == NULL) {
                err = errno;
                pool_be_release(be);
                STAT_INC(s->w, backend_fail);
                return connect_failed(s, 502, "connect", err);
            }
        }
        oc->slot = true;
        oc->owner = s;
        ev_io_stop(s->w->loop, &oc->io);
        ev_set_cb(&oc->io, fetch_on_origin_io);
        s->oc = oc;
        if (oc->connecting) {
            sess_want(s, 0, EV_WRITE);
            sess_timer(s, fetch_timeout(s, FETCH_TMO_CONNECT));
            return STEP_WAIT;
        }
    }
    if (oc->connecting) {
        if (s->timed_out) {
            STAT_INC(s->w, backend_fail);
            return connect_failed(s, 504, "connect timed out", 0);
        }
        if (getsockopt(oc->c.fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err != 0) {
            STAT_INC(s->w, backend_fail);
            return connect_failed(s, 502, "connect", err);
        }
        oc->connecting = false;
        /* The TCP connection is up; an `.ssl = true` backend gets its TLS
         * handshake before the request is sent (within the same connect
         * timeout).  This is the one place origin connections are made. */
        if (s->be->ssl) {
            if (pool_be_tls_attach(s->be, &oc->c) != 0)
                return connect_failed(s, 502, "TLS setup", ENOMEM);
            oc->handshaking = true;
        }
    }
    if (oc->handshaking) {
        int r;
        if (s->timed_out) {
            STAT_INC(s->w, backend_fail);
            return connect_failed(s, 504, "TLS handshake timed out", 0);
        }
        r = tls_handshake(&oc->c);
        if (r == AC_AGAIN) {
            sess_want(s, 0, oc->c.want);
            return STEP_WAIT;
        }
        if (r != 0) {
            char what[160];
            snprintf(what, sizeof(what), "TLS handshake with %s failed: %s",
                     s->be->tls_name ? s->be->tls_name : s->be->name, tls_conn_error(&oc->c));
            STAT_INC(s->w, backend_fail);
            return connect_failed(s, 502, what, 0);
        }
        oc->handshaking = false;
    }
    s->bereq_off = 0;
    s->state = S_BEREQ;
    return STEP_MORE;
}

enum step
fetch_bereq(struct sess *s)
{
    struct oconn *oc = s->oc;

    if (s->timed_out)
        return origin_fail(s, 504, "timed out sending the request", 0);
    while (s->bereq_off < s->bereq.len) {
        struct iovec iov = { s->bereq.p + s->bereq_off, s->bereq.len - s->bereq_off };
        ssize_t n = conn_writev(&oc->c, &iov, 1);
        if (n == AC_AGAIN) {
            sess_want(s, 0, oc->c.want);
            sess_timer(s, fetch_timeout(s, FETCH_TMO_FIRST_BYTE));
            return STEP_WAIT;
        }
        if (n < 0) {
            if (retryable(s))
                return retry(s);
            return conn_lost(s, "send", oc->c.err);
        }
        s->bereq_off += (size_t)n;
    }
    oc->nreq++;
    STAT_INC(s->w, backend_req);
    atomic_fetch_add_explicit(&((struct backend *)s->be)->n_req, 1, memory_order_relaxed);
    if (s->piping) {
        if (s->relay.data == NULL)
            ac_iobuf_init(&s->relay, (size_t)s->w->cfg->p.relay_buffer);
        STAT_INC(s->w, tunnel);
        s->state = S_TUNNEL;        /* the body, if any, goes through as raw bytes */
        return STEP_MORE;
    }
    s->state = s->req.body != H1_BODY_NONE ? S_REQBODY : S_BERESP;
    s->poll_first = oc->c.ops == &conn_plain_ops;  /* the answer cannot be there yet */
    return STEP_MORE;
}

/*
 * Stream the request body from the client to the origin.  The bytes are
 * forwarded as received (for chunked, framing included) once the decoder has
 * validated them; `pending` counts validated bytes at the head of rbuf that
 * are not yet written.
 */
enum step
fetch_reqbody(struct sess *s)
{
    const struct config *cfg = s->w->cfg;
    struct ac_iobuf *b = &s->rbuf;
    struct oconn *oc = s->oc;
    ssize_t n;

    if (s->niov > 0) {              /* "100 Continue" first */
        enum step r = sess_flush(s);
        if (r != STEP_MORE) {
            if (r == STEP_DONE)
                return STEP_DONE;
            return r;
        }
    }
    if (s->timed_out) {
        double now = ev_now(s->w->loop), span = now - s->body_window_start;
        if (s->reqbody_pending_fwd > 0)     /* we were waiting for the origin */
            return origin_fail(s, 504, "timed out receiving the request body", 0);
        if (span > 0 && (double)s->body_window_bytes < cfg->p.min_body_rate * span) {
            STAT_INC(s->w, client_timeout);
            LOG_I("client %s: request body slower than %g bytes/s, closing", s->client_ip,
                  cfg->p.min_body_rate);
            pool_close(&s->oc);
            s->keepalive = false;
            return sess_synth(s, 408, NULL, "Request body too slow\n", true);
        }
        s->body_window_start = now;
        s->body_window_bytes = 0;
        s->timed_out = false;
    }
    for (;;) {
        if (s->reqbody_pending_fwd > 0) {
            struct iovec iov = { (void *)(uintptr_t)ac_iobuf_head(b), s->reqbody_pending_fwd };
            n = conn_writev(&oc->c, &iov, 1);
            if (n == AC_AGAIN) {
                sess_want(s, 0, oc->c.want);
                sess_timer(s, fetch_timeout(s, FETCH_TMO_FIRST_BYTE));
                return STEP_WAIT;
            }
            if (n < 0)
                return origin_fail(s, 502, "send body", oc->c.err);
            ac_iobuf_consume(b, (size_t)n);
            s->reqbody_pending_fwd -= (size_t)n;
            continue;
        }
        bool done = s->req.body == H1_BODY_LENGTH ? s->reqbody_left == 0
                                                  : h1_chunked_done(&s->reqchunk);
        if (done && s->reqbody_scan > 0) {
            /* validated but not sent yet: check_first_chunk() may have
             * decoded a whole small body that arrived with the head */
            s->reqbody_pending_fwd = s->reqbody_scan;
            s->reqbody_scan = 0;
            continue;
        }
        if (done) {
            s->state = S_BERESP;
            return STEP_MORE;
        }
        if (ac_iobuf_len(b) > 0) {
            if (s->req.body == H1_BODY_LENGTH) {
                size_t take = (size_t)AC_MIN((uint64_t)ac_iobuf_len(b), s->reqbody_left);
                s->reqbody_left -= take;
                s->reqbody_pending_fwd = take;
            } else {
                struct ac_slice data;
                long c = h1_chunked_decode(&s->reqchunk, ac_iobuf_head(b) + s->reqbody_scan,
                                           ac_iobuf_len(b) - s->reqbody_scan, &data);
                if (c < 0) {
                    STAT_INC(s->w, client_req_bad);
                    pool_close(&s->oc);
                    s->keepalive = false;
                    return sess_synth(s, 400, NULL, "Bad chunked request body\n", true);
                }
                s->reqbody_scan += (size_t)c;
                if (h1_chunked_done(&s->reqchunk) || s->reqbody_scan == ac_iobuf_len(b) ||
                    s->reqbody_scan >= 16384) {
                    s->reqbody_pending_fwd = s->reqbody_scan;
                    s->reqbody_scan = 0;
                }
                if (c == 0 && s->reqbody_pending_fwd == 0)
                    goto read_more;
            }
            continue;
        }
read_more:
        if (s->client_eof) {
            LOG_I("client %s: closed during the request body", s->client_ip);
            return STEP_DONE;
        }
        if (ac_iobuf_len(b) == 0)
            b->start = b->end = 0;
        else if (ac_iobuf_room(b) == 0)
            ac_iobuf_compact(b);
        n = conn_read(&s->c, b->data + b->end, ac_iobuf_room(b));
        if (n > 0) {
            b->end += (size_t)n;
            s->body_window_bytes += (uint64_t)n;
            continue;
        }
        if (n == AC_AGAIN) {
            sess_want(s, s->c.want, 0);
            double left = 5.0 - (ev_now(s->w->loop) - s->body_window_start);
            sess_timer(s, left > 0 ? left : 0.001);
            return STEP_WAIT;
        }
        s->client_eof = true;
        LOG_I("client %s: closed during the request body", s->client_ip);
        return STEP_DONE;
    }
}

enum step
fetch_beresp(struct sess *s)
{
    const struct config *cfg = s->w->cfg;
    struct ac_iobuf *b = &s->relay;
    struct oconn *oc = s->oc;
    ssize_t n;

    if (s->niov > 0) {              /* an interim (1xx) answer still going out */
        enum step r = sess_flush(s);
        if (r != STEP_MORE)
            return r;
    }
    if (s->timed_out)
        return origin_fail(s, 504, "no response within first_byte_timeout", 0);
    if (b->data == NULL)
        ac_iobuf_init(b, (size_t)cfg->p.relay_buffer);
    for (;;) {
        if (ac_iobuf_len(b) > 0) {
            struct h1_limits lim = {
                .max_head = (size_t)cfg->p.max_head_bytes,
                .max_target = 0,
                .max_header_line = (size_t)cfg->p.max_head_bytes,
                .max_headers = (unsigned)cfg->p.max_headers,
            };
            if (s->bhdrs == NULL)
                s->bhdrs = ac_xcalloc((size_t)cfg->p.max_headers, sizeof(*s->bhdrs));
            memset(&s->resp, 0, sizeof(s->resp));
            s->resp.hdrs = s->bhdrs;
            int r = h1_parse_response(ac_iobuf_head(b), ac_iobuf_len(b), &lim,
                                      s->bereq_method.len ? s->bereq_method : s->req.method,
                                      &s->resp);
            if (r > 0) {
                int st = s->resp.status;
                if (st == 101 && (s->req.flags & H1_F_UPGRADE)) {
                    s->upstream_status = 101;
                    if (!s->head_copied)
                        sess_copy_head(s);  /* rbuf now carries client → origin bytes */
                    sess_build_resp_head(s);
                    ac_iobuf_consume(b, (size_t)r);
                    sess_iov_add(s, s->whead.p, s->whead.len);
                    s->state = S_TUNNEL;
                    return STEP_MORE;
                }
                if (st >= 100 && st < 200) {
                    /* 100: we answered the client's Expect ourselves.
                     * 101 without an Upgrade request is a broken origin. */
                    if (st == 101)
                        return origin_fail(s, 502, "101 without an upgrade request", 0);
                    if (st != 100) {
                        ac_buf_reset(&s->whead);
                        ac_buf_printf(&s->whead, "HTTP/1.1 %d ", st);
                        ac_buf_cats(&s->whead, s->resp.reason_phrase);
                        ac_buf_cat(&s->whead, "\r\n", 2);
                        for (unsigned i = 0; i < s->resp.nhdrs; i++) {
                            const struct h1_header *h = &s->resp.hdrs[i];
                            if (http_is_hop_by_hop(h->name))
                                continue;
                            ac_buf_field(&s->whead, h->name, h->value);
                        }
                        ac_buf_cat(&s->whead, "\r\n", 2);
                        sess_iov_add(s, s->whead.p, s->whead.len);
                    }
                    ac_iobuf_consume(b, (size_t)r);
                    if (s->niov > 0) {
                        enum step fr = sess_flush(s);
                        if (fr != STEP_MORE)
                            return fr;
                    }
                    continue;
                }
                s->upstream_status = st;
                if (st >= 500)
                    atomic_fetch_add_explicit(&((struct backend *)s->be)->n_resp_5xx, 1,
                                              memory_order_relaxed);
                /* 502/503/504 say the server (or what is behind it) is
                 * unavailable; 500 and other 5xx are the application's
                 * answer to this request, not a health signal. */
                pool_be_report((struct backend *)s->be, st < 502 || st > 504, cfg);
                if (s->kind == CACHE_REQ_UNSAFE && st < 400)
                    cache_after_unsafe(s);
                if (s->busy != NULL)
                    return cache_on_beresp(s, (size_t)r);
                fetch_start_respbody(s, (size_t)r);
                return s->fetch_next;
            }
            if (r != AC_AGAIN) {
                LOG_W("origin %s: invalid response: %s", s->be->name,
                      s->resp.reason ? s->resp.reason : "?");
                return origin_fail(s, 502, "invalid response head", 0);
            }
        }
        if (ac_iobuf_room(b) == 0) {
            ac_iobuf_compact(b);
            if (ac_iobuf_room(b) == 0)
                return origin_fail(s, 502, "response head too large", 0);
        }
        if (s->poll_first) {
            s->poll_first = false;
            sess_want(s, 0, EV_READ);
            sess_timer(s, fetch_timeout(s, FETCH_TMO_FIRST_BYTE));
            return STEP_WAIT;
        }
        n = conn_read(&oc->c, b->data + b->end, ac_iobuf_room(b));
        if (n > 0) {
            b->end += (size_t)n;
            s->resp_bytes_in += (uint64_t)n;
            continue;
        }
        if (n == AC_AGAIN) {
            sess_want(s, 0, oc->c.want);
            sess_timer(s, fetch_timeout(s, FETCH_TMO_FIRST_BYTE));
            return STEP_WAIT;
        }
        if (retryable(s))
            return retry(s);
        if (s->resp_bytes_in == 0)
            return conn_lost(s, n == 0 ? "closed before responding" : "receive",
                             n == 0 ? 0 : oc->c.err);
        return origin_fail(s, 502, n == 0 ? "closed before responding" : "receive",
                           n == 0 ? 0 : oc->c.err);
    }
}

void
fetch_start_respbody(struct sess *s, size_t r)
{
    if (s->prog != NULL && !s->bg) {
        struct vcl_result res;
        enum step st;
        enum vcl_action a;
        if (s->busy == NULL && policy_backend_response(s, &st)) {
            s->fetch_next = st;
            return;
        }
        a = pol_run(s, VCL_SUB_DELIVER, &res);
        if (a != VCL_ACT_DELIVER) {
            if (s->oc != NULL)
                pool_close(&s->oc);
            if (a == VCL_ACT_RESTART) {
                s->fetch_next = sess_restart(s);
                return;
            }
            s->fetch_next = sess_synth(s, a == VCL_ACT_SYNTH ? (int)res.status : 503,
                                       res.reason.p ? pol_cstr(s, res.reason) : NULL, NULL, false);
            return;
        }
    }
    s->fetch_next = STEP_MORE;
    sess_build_resp_head(s);
    ac_iobuf_consume(&s->relay, r);
    s->respbody_left = s->resp.content_length;
    h1_chunked_init(&s->respchunk);
    s->origin_reusable = !(s->resp.flags & H1_F_CLOSE) && s->resp.body != H1_BODY_CLOSE;
    sess_iov_add(s, s->whead.p, s->whead.len);
    s->state = S_RESPBODY;
}

/* Queue one run of body bytes for the client, framed as the client needs. */
void
fetch_emit(struct sess *s, const char *p, size_t len)
{
    if (len == 0)
        return;
    if (s->resp_chunked_out) {
        AC_ASSERT(s->nchunkhdr < AC_ARRAY_LEN(s->chunkhdr));
        unsigned k = s->nchunkhdr++;
        int hl = snprintf(s->chunkhdr[k], sizeof(s->chunkhdr[k]), "%zx\r\n", len);
        sess_iov_add(s, s->chunkhdr[k], (size_t)hl);
        sess_iov_add(s, p, len);
        sess_iov_add(s, "\r\n", 2);
    } else {
        sess_iov_add(s, p, len);
    }
    s->bytes_sent += len;
}

bool
fetch_body_done(const struct sess *s)
{
    switch (s->resp.body) {
    case H1_BODY_NONE: return true;
    case H1_BODY_LENGTH: return s->respbody_left == 0;
    case H1_BODY_CHUNKED: return h1_chunked_done(&s->respchunk);
    case H1_BODY_CLOSE: return s->origin_eof;
    }
    return true;
}

enum step
fetch_respbody(struct sess *s)
{
    struct ac_iobuf *b = &s->relay;
    bool head = ac_slice_eq(s->req.method, AC_LIT("HEAD"));
    ssize_t n;

    for (;;) {
        if (s->timed_out) {
            STAT_INC(s->w, backend_timeout);
            LOG_W("origin %s: body stalled for %gs, closing the client connection",
                  s->be->name, fetch_timeout(s, FETCH_TMO_BETWEEN_BYTES));
            return STEP_DONE;
        }
        /* Queue what the buffer holds behind what is queued (the head, at
         * first), so a small answer goes out with one writev. */
        if (!head && !fetch_body_done(s) && ac_iobuf_len(b) > 0 && s->niov <= SESS_NIOV - 3) {
            switch (s->resp.body) {
            case H1_BODY_LENGTH: {
                size_t take = (size_t)AC_MIN((uint64_t)ac_iobuf_len(b), s->respbody_left);
                fetch_emit(s, ac_iobuf_head(b), take);
                b->start += take;   /* not consume(): the bytes must stay put until flushed */
                s->respbody_left -= take;
                break;
            }
            case H1_BODY_CHUNKED:
                while (ac_iobuf_len(b) > 0 && s->niov <= SESS_NIOV - 3 &&
                       !h1_chunked_done(&s->respchunk)) {
                    struct ac_slice data;
                    long c = h1_chunked_decode(&s->respchunk, ac_iobuf_head(b), ac_iobuf_len(b),
                                               &data);
                    if (c < 0) {
                        LOG_W("origin %s: bad chunked body (%s), closing the client connection",
                              s->be->name, s->respchunk.reason ? s->respchunk.reason : "?");
                        return STEP_DONE;
                    }
                    b->start += (size_t)c;
                    fetch_emit(s, data.p, data.len);
                    if (c == 0)
                        break;
                }
                break;
            case H1_BODY_CLOSE:
                fetch_emit(s, ac_iobuf_head(b), ac_iobuf_len(b));
                b->start = b->end;
                break;
            case H1_BODY_NONE:
                break;
            }
        }
        bool done = head || fetch_body_done(s);
        if (done && s->resp_chunked_out && !s->resp_head_done && s->niov < SESS_NIOV) {
            s->resp_head_done = true;   /* reused as "last chunk queued" */
            sess_iov_add(s, "0\r\n\r\n", 5);
        }
        if (s->niov > 0) {
            enum step r = sess_flush(s);
            if (r != STEP_MORE)
                return r;           /* STEP_DONE: client gone, origin conn closed by free */
            continue;
        }
        if (done && (!s->resp_chunked_out || s->resp_head_done)) {
            if (head && !fetch_body_done(s))
                s->origin_reusable = false;     /* a GET's body we will not read */
            sess_release_origin(s, s->origin_reusable);
            s->state = S_FINISH;
            return STEP_MORE;
        }
        if (ac_iobuf_len(b) > 0)
            continue;
        /* Everything read so far is written: the buffer is free again. */
        b->start = b->end = 0;
        n = conn_read(&s->oc->c, b->data, b->cap);
        if (n > 0) {
            b->end = (size_t)n;
            continue;
        }
        if (n == AC_AGAIN) {
            sess_want(s, 0, s->oc->c.want);
            sess_timer(s, fetch_timeout(s, FETCH_TMO_BETWEEN_BYTES));
            return STEP_WAIT;
        }
        if (n == 0 && s->resp.body == H1_BODY_CLOSE) {
            s->origin_eof = true;
            s->origin_reusable = false;
            continue;
        }
        /* Truncated: close the client connection so it cannot take a
         * partial body for a whole one. */
        LOG_W("origin %s: %s mid-body, closing the client connection", s->be->name,
              n == 0 ? "closed" : "error");
        return STEP_DONE;
    }
}
