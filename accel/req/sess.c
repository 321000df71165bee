/*
 * sess.c -- client sessions: the state machine driver, reading and
 * dispatching request heads, synthetic answers, the client response head,
 * keep-alive and (lingering) close.
 */
#include "sess.h"

#include "admin.h"
#include "http.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static sess_step_f step_tls, step_head, step_recv, step_synth, step_finish, step_close;

static sess_step_f *const steps[S__MAX] = {
    [S_TLS] = step_tls,
    [S_HEAD] = step_head,
    [S_RECV] = step_recv,
    [S_LOOKUP] = cache_lookup_step,
    [S_WAITOBJ] = cache_waitobj_step,
    [S_DELIVER] = cache_deliver_step,
    [S_FILL] = cache_fill_step,
    [S_CONNECT] = fetch_connect,
    [S_BEREQ] = fetch_bereq,
    [S_REQBODY] = fetch_reqbody,
    [S_BERESP] = fetch_beresp,
    [S_RESPBODY] = fetch_respbody,
    [S_TUNNEL] = tunnel_step,
    [S_SYNTH] = step_synth,
    [S_ADMIN] = admin_wait_step,
    [S_FINISH] = step_finish,
    [S_CLOSE] = step_close,
};

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void
io_set(struct ev_loop *loop, ev_io *io, int fd, int events)
{
    int cur = ev_is_active(io) ? (io->events & (EV_READ | EV_WRITE)) : 0;

    if (cur == events)
        return;
    ev_io_stop(loop, io);
    if (events) {
        /* ev_io_modify, not ev_io_set: the fd is the same, and ev_io_set
         * would make libev re-register it (a failing epoll_ctl) */
        if (io->fd != fd)
            ev_io_set(io, fd, events);
        else
            ev_io_modify(io, events);
        ev_io_start(loop, io);
    }
}

/*
 * Set the events each side waits for.  A read watcher that is no longer
 * wanted is left running ("lazy stop"): stopping it and starting it again a
 * moment later costs libev's epoll backend a failing epoll_ctl each time.
 * If it fires while unwanted, its callback stops it then.
 */
static void
want_side(struct ev_loop *loop, ev_io *io, int fd, int *wantp, int ev)
{
    *wantp = ev;
    if (ev == 0 && ev_is_active(io) && (io->events & (EV_READ | EV_WRITE)) == EV_READ)
        return;
    io_set(loop, io, fd, ev);
}

void
sess_want(struct sess *s, int cev, int oev)
{
    if (s->c.fd >= 0)
        want_side(s->w->loop, &s->io, s->c.fd, &s->cwant, s->client_dead ? 0 : cev);
    if (s->oc != NULL)
        want_side(s->w->loop, &s->oc->io, s->oc->c.fd, &s->owant, oev);
}

void
sess_timer(struct sess *s, double seconds)
{
    s->timed_out = false;
    s->tmr.repeat = seconds > 0.001 ? seconds : 0.001;
    ev_timer_again(s->w->loop, &s->tmr);
}

static void
on_client_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct sess *s = AC_CONTAINER_OF(io, struct sess, io);

    (void)revents;
    if (s->cwant == 0) {
        ev_io_stop(loop, io);       /* the lazy stop of want_side() */
        return;
    }
    sess_drive(s);
}

static void
on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct sess *s = AC_CONTAINER_OF(t, struct sess, tmr);

    (void)revents;
    ev_timer_stop(loop, t);
    s->timed_out = true;
    sess_drive(s);
}

static void log_request(struct sess *s);

static void
sess_free(struct sess *s)
{
    struct wrk *w = s->w;

    AC_CHECK_OBJ(s, SESS_MAGIC);
    /* A request cut short (client gone, origin truncated) is still logged. */
    if (!s->bg && !s->logged && s->req.method.p != NULL && s->state != S_HEAD)
        log_request(s);
    cache_sess_reset(s);
    admin_sess_end(s);
    pol_end(s);                     /* the program reference */
    free(s->arena.base);
    ac_buf_free(&s->synth_body);
    ev_io_stop(w->loop, &s->io);
    ev_timer_stop(w->loop, &s->tmr);
    if (s->oc != NULL)
        pool_close(&s->oc);
    /* Dropped in the middle of a request (an origin that cut the body, a
     * timeout, the drain): no close_notify, or a client reading a body
     * delimited by the close (HTTP/1.0) would take it for whole. */
    if (s->c.fd >= 0 && s->state != S_HEAD && s->state != S_TLS && s->state != S_CLOSE)
        tls_conn_abort(&s->c);
    if (s->c.fd >= 0)
        conn_close(&s->c);
    ac_iobuf_free(&s->rbuf);
    ac_iobuf_free(&s->relay);
    ac_buf_free(&s->whead);
    ac_buf_free(&s->bereq);
    ac_buf_free(&s->headcopy);
    ac_buf_free(&s->key);
    ac_buf_free(&s->scratch);
    ac_buf_free(&s->scratch2);
    ac_buf_free(&s->tmpbuf);
    ac_buf_free(&s->dlv_tail);
    free(s->hdrs);
    free(s->bhdrs);
    wrk_sess_del(w, s);
    s->magic = 0;
    free(s);
    wrk_maybe_done(w);
}

void
sess_new(struct wrk *w, int fd, const struct sockaddr *peer, socklen_t peerlen, bool admin,
         bool tls)
{
    const struct config *cfg = w->cfg;
    struct sess *s;

    if (w->nsess >= (unsigned)cfg->p.max_connections) {
        /* Refuse gracefully: a short answer, then close, never a hang. */
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\nRetry-After: 1\r\n\r\n";
        if (!tls)                   /* a TLS client would read garbage: just close */
            (void)!write(fd, busy, sizeof(busy) - 1);
        close(fd);
        STAT_INC(w, client_conn_refused);
        return;
    }
    s = ac_xcalloc(1, sizeof(*s));
    s->magic = SESS_MAGIC;
    s->w = w;
    conn_init(&s->c, fd, &conn_plain_ops);
    memcpy(&s->peer, peer, AC_MIN((size_t)peerlen, sizeof(s->peer)));
    sock_ntop(peer, s->client_ip, sizeof(s->client_ip));
    ac_iobuf_init(&s->rbuf, 4096);
    ac_buf_init(&s->whead, 0, 0);
    ac_buf_init(&s->bereq, 0, 0);
    ac_buf_init(&s->headcopy, 0, 0);
    s->hdrs = ac_xcalloc((size_t)cfg->p.max_headers, sizeof(*s->hdrs));
    ev_io_init(&s->io, on_client_io, fd, 0);
    ev_init(&s->tmr, on_timer);
    s->state = S_HEAD;
    s->admin = admin;
    if (tls) {
        if (tls_server_attach(&s->c) != 0) {
            LOG_W("client %s: cannot start a TLS session", s->client_ip);
            STAT_INC(w, tls_handshake_fail);
        }
        s->tls = true;              /* attach failed: closed by step_tls */
        s->state = S_TLS;
        s->head_start = ev_now(w->loop);
    }
    wrk_sess_add(w, s);
    STAT_INC(w, client_conn);
    if (s->state == S_TLS && conn_is_tls(&s->c)) {
        /* The ClientHello is rarely here yet: wait for it (saves a read). */
        sess_want(s, EV_READ, 0);
        sess_timer(s, cfg->p.tls_handshake_timeout);
        return;
    }
    sess_drive(s);
}

struct sess *
sess_new_detached(struct wrk *w)
{
    struct sess *s = ac_xcalloc(1, sizeof(*s));

    s->magic = SESS_MAGIC;
    s->w = w;
    conn_init(&s->c, -1, &conn_plain_ops);
    snprintf(s->client_ip, sizeof(s->client_ip), "-");
    s->bg = true;
    s->client_dead = true;
    s->hdrs = ac_xcalloc((size_t)w->cfg->p.max_headers, sizeof(*s->hdrs));
    ev_init(&s->io, on_client_io);
    ev_init(&s->tmr, on_timer);
    s->state = S_CONNECT;
    wrk_sess_add(w, s);
    return s;
}

void
sess_copy_request(struct sess *dst, const struct sess *src)
{
    const char *old = src->head_copied ? src->headcopy.p : ac_iobuf_head(&src->rbuf);
    size_t hl = src->head_len, extra = 0;
    char *neu, *tail;

    /* Slices point into the head, or (changed by the policy) into src's
     * arena: everything is copied into dst's own buffer, reserved at once so
     * it does not move while we fill it. */
#define OUTSIDE(sl) ((sl).p != NULL && !((sl).p >= old && (sl).p < old + hl))
#define COUNT(sl) do { if (OUTSIDE(sl)) extra += (sl).len; } while (0)
    COUNT(src->req.method);
    COUNT(src->req.target);
    COUNT(src->req.path);
    COUNT(src->req.host);
    for (unsigned i = 0; i < src->req.nhdrs; i++) {
        COUNT(src->hdrs[i].name);
        COUNT(src->hdrs[i].value);
    }
    ac_buf_reset(&dst->headcopy);
    neu = ac_buf_reserve(&dst->headcopy, hl + extra + 1);
    AC_NOTNULL(neu);
    memcpy(neu, old, hl);
    tail = neu + hl;
    dst->req = src->req;
    dst->req.hdrs = dst->hdrs;
    dst->tls = src->tls;
    dst->head_len = hl;
    dst->head_copied = true;
#define MOVE(sl) do { \
        if (OUTSIDE(sl)) { memcpy(tail, (sl).p, (sl).len); (sl).p = tail; tail += (sl).len; } \
        else if ((sl).p != NULL) (sl).p = neu + ((sl).p - old); \
    } while (0)
    MOVE(dst->req.method);
    MOVE(dst->req.target);
    MOVE(dst->req.path);
    MOVE(dst->req.host);
    for (unsigned i = 0; i < src->req.nhdrs; i++) {
        dst->hdrs[i] = src->hdrs[i];
        MOVE(dst->hdrs[i].name);
        MOVE(dst->hdrs[i].value);
    }
#undef MOVE
#undef COUNT
#undef OUTSIDE
    ac_buf_commit(&dst->headcopy, (size_t)(tail - neu));
}

void
sess_drive(struct sess *s)
{
    enum step r;

    AC_CHECK_OBJ(s, SESS_MAGIC);
    AC_ASSERT(!s->in_drive);
    s->in_drive = true;
    do {
        AC_CHECK_OBJ(s, SESS_MAGIC);
        AC_ASSERT(s->state < S__MAX);
        r = steps[s->state](s);
    } while (r == STEP_MORE);
    s->in_drive = false;
    if (r == STEP_DONE)
        sess_free(s);
}

void
sess_drain(struct sess *s)
{
    AC_CHECK_OBJ(s, SESS_MAGIC);
    if ((s->state == S_HEAD || s->state == S_TLS) && ac_iobuf_len(&s->rbuf) == 0 && !s->in_drive)
        sess_free(s);
}

void
sess_kill(struct sess *s)
{
    AC_CHECK_OBJ(s, SESS_MAGIC);
    AC_ASSERT(!s->in_drive);
    sess_free(s);
}

void
sess_iov_add(struct sess *s, const void *p, size_t len)
{
    AC_ASSERT(s->niov < SESS_NIOV);
    if (len == 0)
        return;
    s->iov[s->niov].iov_base = (void *)(uintptr_t)p;
    s->iov[s->niov].iov_len = len;
    s->niov++;
}

enum step
sess_flush(struct sess *s)
{
    if (s->client_dead) {
        s->niov = 0;                /* nobody to write to (background fetch) */
        s->nchunkhdr = 0;
        return STEP_MORE;
    }
    while (s->niov > 0) {
        ssize_t n = conn_writev(&s->c, s->iov, s->niov);
        if (n == AC_AGAIN) {
            sess_want(s, s->c.want, 0);
            sess_timer(s, s->w->cfg->p.send_timeout);
            return STEP_WAIT;
        }
        if (n < 0)
            return STEP_DONE;       /* client gone */
        size_t left = (size_t)n;
        int i = 0;
        while (i < s->niov && left >= s->iov[i].iov_len)
            left -= s->iov[i++].iov_len;
        if (i < s->niov) {
            s->iov[i].iov_base = (char *)s->iov[i].iov_base + left;
            s->iov[i].iov_len -= left;
        }
        memmove(s->iov, s->iov + i, sizeof(s->iov[0]) * (size_t)(s->niov - i));
        s->niov -= i;
    }
    s->nchunkhdr = 0;               /* the chunk-size lines are free again */
    return STEP_MORE;
}

/* Is the request body still (partly) unread?  Then the connection cannot be
 * reused: the next bytes would be mistaken for a request. */
static bool
reqbody_pending(const struct sess *s)
{
    if (s->state == S_HEAD || s->req.method.p == NULL)
        return false;
    if (s->req.body == H1_BODY_LENGTH)
        return s->reqbody_left > 0;
    if (s->req.body == H1_BODY_CHUNKED)
        return !h1_chunked_done(&s->reqchunk);
    return false;
}

/* Append the policy's resp.http.* fields (the set ones). */
static void
cat_resp_overlay(struct sess *s, struct ac_buf *b)
{
    for (unsigned i = 0; i < s->n_resp_ops; i++) {
        if (s->resp_ops[i].value.p == NULL)
            continue;
        ac_buf_field(b, s->resp_ops[i].name, s->resp_ops[i].value);
    }
}

static enum step synth_build(struct sess *s, int status, struct ac_slice rs, const char *body,
                             size_t blen, bool close, bool policy);

enum step
sess_synth(struct sess *s, int status, const char *reason, const char *body, bool close)
{
    size_t blen = body ? strlen(body) : 0;
    struct ac_slice rs = reason ? AC_SLICE(reason, strlen(reason)) : AC_SLICE(NULL, 0);
    bool policy = false;

    if (s->prog != NULL && s->state != S_SYNTH) {
        /* vcl_synth shapes the answer: status, reason, body, headers. */
        struct vcl_result res;
        s->state = S_SYNTH;
        s->status = status;
        s->resp_reason = rs;
        s->n_resp_ops = 0;
        s->synth_body_set = false;
        ac_buf_reset(&s->synth_body);
        enum vcl_action a = pol_run(s, VCL_SUB_SYNTH, &res);
        if (a == VCL_ACT_RESTART && !reqbody_pending(s))
            return sess_restart(s);
        if (a == VCL_ACT_FAIL) {
            s->n_resp_ops = 0;
            s->synth_body_set = false;
            status = 503;
            rs = AC_SLICE(NULL, 0);
        } else {
            policy = true;
            status = s->status;
            rs = s->resp_reason;
        }
        if (s->synth_body_set) {
            body = s->synth_body.p;
            blen = s->synth_body.len;
        }
    }
    return synth_build(s, status, rs, body, blen, close, policy);
}

enum step
sess_synth_ex(struct sess *s, int status, const char *reason, const char *body, size_t blen,
              bool close, bool overlay)
{
    return synth_build(s, status, reason ? AC_SLICE(reason, strlen(reason)) : AC_SLICE(NULL, 0),
                       body, blen, close, overlay);
}

static enum step
synth_build(struct sess *s, int status, struct ac_slice rs, const char *body, size_t blen,
            bool close, bool policy)
{
    bool head = ac_slice_eq(s->req.method, AC_LIT("HEAD"));

    if (reqbody_pending(s) || !s->keepalive || s->w->stopping)
        close = true;
    s->keepalive = !close;
    if (s->cache_state == NULL)
        s->cache_state = "SYNTH";   /* answered before any cache or origin step */
    s->status = status;
    ac_buf_reset(&s->whead);
    ac_buf_printf(&s->whead, "HTTP/1.1 %d ", status);
    if (rs.p != NULL)
        ac_buf_cats(&s->whead, rs);
    else
        ac_buf_catstr(&s->whead, http_reason(status));
    ac_buf_cat(&s->whead, "\r\n", 2);
    if (policy)
        cat_resp_overlay(s, &s->whead);
    if (!policy || !pol_overlay_has(s->resp_ops, s->n_resp_ops, AC_LIT("Content-Type")))
        ac_buf_catstr(&s->whead, "Content-Type: text/plain; charset=utf-8\r\n");
    if (!policy || !pol_overlay_has(s->resp_ops, s->n_resp_ops, AC_LIT("Cache-Control")))
        ac_buf_catstr(&s->whead, "Cache-Control: no-store\r\n");
    ac_buf_printf(&s->whead, "Content-Length: %zu\r\n%s\r\n", blen,
                  close ? "Connection: close\r\n" : "");
    if (!head && blen)
        ac_buf_cat(&s->whead, body, blen);
    AC_ASSERT(!ac_buf_error(&s->whead));
    s->bytes_sent = head ? 0 : blen;
    /* A queued "100 Continue" may still be in the iovecs; keep it first. */
    sess_iov_add(s, s->whead.p, s->whead.len);
    s->state = S_SYNTH;
    return STEP_MORE;
}

enum step
sess_restart(struct sess *s)
{
    if (++s->restarts > (unsigned)s->w->cfg->p.max_restarts) {
        s->state = S_FINISH;        /* keep vcl_synth out of a restart loop */
        s->prog_restart_exhausted = true;
        struct vcl_program *p = s->prog;
        s->prog = NULL;
        enum step r = sess_synth(s, 503, "Too many restarts", "Too many restarts\n", false);
        s->prog = p;
        return r;
    }
    cache_sess_reset(s);
    if (s->oc != NULL)
        pool_close(&s->oc);
    if (s->relay.data != NULL)
        s->relay.start = s->relay.end = 0;  /* the old answer is gone */
    s->resp_bytes_in = 0;
    s->origin_eof = false;
    s->upstream_status = 0;
    s->retries = 0;
    s->n_resp_ops = 0;
    s->n_bereq_ops = 0;
    s->niov = 0;
    s->state = S_RECV;
    return STEP_MORE;
}

static enum step
step_synth(struct sess *s)
{
    enum step r = sess_flush(s);

    if (r != STEP_MORE)
        return r;
    s->state = S_FINISH;
    return STEP_MORE;
}

/* Map a parse failure to the answer RFC 9112 asks for. */
static enum step
reject(struct sess *s)
{
    static const struct {
        int status;
        const char *body;
    } map[] = {
        [H1_ERR_NONE] = { 400, "Bad request\n" },
        [H1_ERR_BAD] = { 400, "Bad request\n" },
        [H1_ERR_TARGET_TOO_LONG] = { 414, "Request-target too long\n" },
        [H1_ERR_HEAD_TOO_LARGE] = { 431, "Request header fields too large\n" },
        [H1_ERR_TE_UNKNOWN] = { 501, "Transfer coding not implemented\n" },
        [H1_ERR_VERSION] = { 505, "HTTP version not supported\n" },
    };
    unsigned e = (unsigned)s->req.error;
    char body[160];

    if (e >= AC_ARRAY_LEN(map))
        e = H1_ERR_BAD;
    STAT_INC(s->w, client_req_bad);
    /* Say why, to the client, the access log and (-d) the error log. */
    s->bad_reason = s->req.reason ? s->req.reason : "bad request";
    s->bad_off = s->req.reason ? s->req.err_off : SIZE_MAX;
    log_bad_request(s->client_ip, map[e].status, s->req.reason, s->bad_off,
                    ac_iobuf_head(&s->rbuf), ac_iobuf_len(&s->rbuf));
    http_bad_request_body(body, sizeof(body), map[e].body, s->req.reason, s->bad_off);
    /* Nothing of a rejected request is trusted, not even its method. */
    memset(&s->req, 0, sizeof(s->req));
    s->req.hdrs = s->hdrs;
    s->t_start = ev_now(s->w->loop);
    s->keepalive = false;
    s->head_len = ac_iobuf_len(&s->rbuf);
    return sess_synth(s, map[e].status, NULL, body, true);
}

/*
 * The TLS handshake of a client connection, inside the worker's loop like
 * any other step: OpenSSL says which readiness it waits for (c.want), and
 * the whole handshake must finish within tls_handshake_timeout.  A client
 * that speaks plain HTTP to the TLS port gets a plain 400 (as nginx does);
 * any other failure closes the connection.  Failures are counted and
 * logged at debug level (-d): they are the client's business.
 */
static enum step
step_tls(struct sess *s)
{
    const struct config *cfg = s->w->cfg;
    int r;

    if (!conn_is_tls(&s->c))
        return STEP_DONE;           /* tls_server_attach failed */
    if (s->timed_out) {
        STAT_INC(s->w, tls_handshake_fail);
        log_msg(LOG_DEBUG, "client %s: TLS handshake timed out", s->client_ip);
        return STEP_DONE;
    }
    if (s->w->stopping)
        return STEP_DONE;
    r = tls_handshake(&s->c);
    if (r == AC_AGAIN) {
        sess_want(s, s->c.want, 0);
        sess_timer(s, s->head_start + cfg->p.tls_handshake_timeout - ev_now(s->w->loop));
        return STEP_WAIT;
    }
    if (r != 0) {
        STAT_INC(s->w, tls_handshake_fail);
        log_msg(LOG_DEBUG, "client %s: TLS handshake failed: %s", s->client_ip,
                tls_conn_error(&s->c));
        if (!tls_conn_plain_http(&s->c))
            return STEP_DONE;
        /* The rest of the conversation is plain: answer, then close. */
        conn_close_transport(&s->c);
        s->tls = false;
        memset(&s->req, 0, sizeof(s->req));
        s->req.hdrs = s->hdrs;
        s->t_start = ev_now(s->w->loop);
        s->keepalive = false;
        s->head_len = 0;
        s->bad_reason = "plain HTTP on a TLS port";
        s->bad_off = SIZE_MAX;
        return sess_synth(s, 400, NULL, "The plain HTTP request was sent to HTTPS port\n", true);
    }
    STAT_INC(s->w, tls_handshake);
    if (tls_conn_resumed(&s->c))
        STAT_INC(s->w, tls_resumed);
    s->state = S_HEAD;
    return STEP_MORE;
}

static enum step
step_head(struct sess *s)
{
    const struct config *cfg = s->w->cfg;
    struct ac_iobuf *b = &s->rbuf;
    ssize_t n;

    if (s->timed_out) {
        STAT_INC(s->w, client_timeout);
        if (ac_iobuf_len(b) == 0)
            return STEP_DONE;           /* idle keep-alive connection */
        s->keepalive = false;
        memset(&s->req, 0, sizeof(s->req));
        s->t_start = ev_now(s->w->loop);
        s->bad_reason = "request head not received in time";
        s->bad_off = SIZE_MAX;
        return sess_synth(s, 408, NULL, "Request head not received in time\n", true);
    }
    if (ac_iobuf_len(b) > 0) {
        struct h1_limits lim = {
            .max_head = (size_t)cfg->p.max_head_bytes,
            .max_target = (size_t)cfg->p.max_target,
            .max_header_line = (size_t)cfg->p.max_header_line,
            .max_headers = (unsigned)cfg->p.max_headers,
            .strict_target = cfg->p.uri_strict != 0,
        };
        memset(&s->req, 0, sizeof(s->req));
        s->req.hdrs = s->hdrs;
        int r = h1_parse_request(ac_iobuf_head(b), ac_iobuf_len(b), &lim, &s->req);
        if (r > 0) {
            s->head_len = (size_t)r;
            STAT_INC(s->w, client_req);
            s->state = S_RECV;
            return STEP_MORE;
        }
        if (r != AC_AGAIN)
            return reject(s);
    }
    if (s->client_eof || s->w->stopping)
        return STEP_DONE;
    if (s->poll_first && ac_iobuf_len(b) == 0) {
        /* Just answered: the next request is rarely here yet. */
        s->poll_first = false;
        sess_want(s, EV_READ, 0);
        sess_timer(s, cfg->p.timeout_idle);
        return STEP_WAIT;
    }
    s->poll_first = false;
    if (ac_iobuf_room(b) == 0) {
        ac_iobuf_compact(b);
        if (ac_iobuf_room(b) == 0) {
            size_t max = (size_t)cfg->p.max_head_bytes + 1024;
            if (b->cap >= max) {
                s->req.error = H1_ERR_HEAD_TOO_LARGE;
                s->req.reason = "head too large";
                s->req.err_off = SIZE_MAX;
                return reject(s);
            }
            ac_iobuf_grow(b, AC_MIN(b->cap * 4, max));
        }
    }
    n = conn_read(&s->c, b->data + b->end, ac_iobuf_room(b));
    if (n > 0) {
        if (ac_iobuf_len(b) == 0)
            s->head_start = ev_now(s->w->loop);
        b->end += (size_t)n;
        return STEP_MORE;
    }
    if (n == AC_AGAIN) {
        sess_want(s, s->c.want, 0);
        if (ac_iobuf_len(b) == 0)
            sess_timer(s, cfg->p.timeout_idle);
        else
            sess_timer(s, s->head_start + cfg->p.timeout_req_head - ev_now(s->w->loop));
        return STEP_WAIT;
    }
    s->client_eof = true;
    return STEP_DONE;
}

/* The request body will be read: move the head out of the read buffer so
 * the buffer can be reused, and rebase every slice into the copy. */
void
sess_copy_head(struct sess *s)
{
    const char *old = ac_iobuf_head(&s->rbuf);
    const char *neu;

#define REBASE(sl) do { if ((sl).p >= old && (sl).p < old + s->head_len) (sl).p = neu + ((sl).p - old); } while (0)
    ac_buf_reset(&s->headcopy);
    ac_buf_cat(&s->headcopy, old, s->head_len);
    neu = s->headcopy.p;
    REBASE(s->req.method);
    REBASE(s->req.target);
    REBASE(s->req.path);
    REBASE(s->req.host);
    for (unsigned i = 0; i < s->req.nhdrs; i++) {
        REBASE(s->hdrs[i].name);
        REBASE(s->hdrs[i].value);
    }
#undef REBASE
    ac_iobuf_consume(&s->rbuf, s->head_len);
    s->head_copied = true;
}

/* Go to the origin for this request, without the cache. */
enum step
sess_start_pass(struct sess *s)
{
    struct h1_request *req = &s->req;

    if (s->prog != NULL)
        s->be = pol_backend(s);
    if (s->be == NULL)
        return sess_synth(s, 503, NULL, "No origin server for this request\n", false);
    fetch_build_bereq(s);
    if (req->body != H1_BODY_NONE && !s->head_copied) {
        sess_copy_head(s);
        if (s->rbuf.cap < (size_t)s->w->cfg->p.relay_buffer) {
            ac_iobuf_compact(&s->rbuf);
            ac_iobuf_grow(&s->rbuf, (size_t)s->w->cfg->p.relay_buffer);
        }
        if (req->flags & H1_F_EXPECT_100)
            sess_iov_add(s, continue_100, sizeof(continue_100) - 1);
        s->body_window_start = ev_now(s->w->loop);
        s->body_window_bytes = 0;
    }
    s->state = S_CONNECT;
    return STEP_MORE;
}

static enum step
step_recv(struct sess *s)
{
    struct h1_request *req = &s->req;

    if (s->restarts == 0) {
        s->t_start = ev_now(s->w->loop);
        s->keepalive = !(req->flags & H1_F_CLOSE) && !s->w->stopping;
        if (req->flags & H1_F_EXPECT_OTHER)
            return sess_synth(s, 417, NULL, "Unsupported expectation\n", true);
        if (req->flags & (H1_F_AUTHORITY_FORM))
            return sess_synth(s, 405, NULL, "CONNECT is not supported\n", true);
        if (req->body == H1_BODY_LENGTH && req->content_length > 0) {
            s->reqbody_left = req->content_length;
        } else if (req->body == H1_BODY_CHUNKED) {
            h1_chunked_init(&s->reqchunk);
        } else {
            req->body = H1_BODY_NONE;
        }
    }
    s->cache_state = "PASS";
    if (s->admin)
        return admin_request(s);
    if (s->w->vcl != NULL) {
        pol_begin(s);
        return cache_policy_recv(s);
    }
    s->be = pool_pick(s->w);
    if (s->be == NULL)
        return sess_synth(s, 503, NULL, "No origin server configured\n", false);
    if (s->w->store != NULL && ac_slice_eq(req->method, AC_LIT("PURGE")) &&
        req->body == H1_BODY_NONE)
        return cache_purge_request(s);
    if (s->w->store != NULL && ac_slice_eq(req->method, AC_LIT("BAN")) &&
        req->body == H1_BODY_NONE)
        return cache_ban_request(s);
    s->kind = cache_classify_request(req, &s->pass_why);
    if (s->w->store != NULL && s->kind == CACHE_REQ_LOOKUP && !(req->flags & H1_F_UPGRADE) &&
        req->body == H1_BODY_NONE) {
        s->state = S_LOOKUP;
        return STEP_MORE;
    }
    if (s->w->store != NULL) {
        STAT_INC(s->w, cache_pass);
        s->xcache = "PASS";
        s->cstatus = s->kind == CACHE_REQ_PASS && s->pass_why && s->pass_why[0] != 'm'
                         ? "fwd=bypass" : "fwd=method";
    }
    return sess_start_pass(s);
}

void
sess_build_resp_head(struct sess *s)
{
    const struct h1_response *resp = &s->resp;
    struct ac_buf *b = &s->whead;
    bool head = ac_slice_eq(s->req.method, AC_LIT("HEAD"));
    bool pass_cl = false;

    s->resp_chunked_out = s->resp_close_out = false;
    if (resp->body == H1_BODY_CHUNKED || resp->body == H1_BODY_CLOSE) {
        if (s->req.minor >= 1 && !(s->req.flags & H1_F_HTTP10))
            s->resp_chunked_out = true;
        else
            s->resp_close_out = true;
    }
    if (s->resp_close_out || s->w->stopping)
        s->keepalive = false;
    s->status = s->resp_status_set ? s->resp_status_set : resp->status;
    ac_buf_reset(b);
    ac_buf_printf(b, "HTTP/1.1 %03d ", s->status);
    if (s->resp_reason.p != NULL)
        ac_buf_cats(b, s->resp_reason);
    else if (s->resp_status_set && s->resp_status_set != resp->status)
        ac_buf_catstr(b, http_reason(s->status));
    else
        ac_buf_cats(b, resp->reason_phrase);
    ac_buf_cat(b, "\r\n", 2);
    for (unsigned i = 0; i < resp->nhdrs; i++) {
        const struct h1_header *h = &resp->hdrs[i];
        if (resp->status == 101 && ac_slice_caseeq(h->name, AC_LIT("Upgrade"))) {
            ac_buf_catstr(b, "Connection: upgrade\r\nUpgrade: ");
            ac_buf_cats(b, h->value);
            ac_buf_cat(b, "\r\n", 2);
            continue;
        }
        if (http_is_hop_by_hop(h->name) || http_conn_lists(resp->hdrs, resp->nhdrs, h->name))
            continue;
        if (s->n_resp_ops && pol_overlay_has(s->resp_ops, s->n_resp_ops, h->name))
            continue;
        /* RFC 9213 fields addressed to us, and surrogate keys (tags), are
         * consumed here, never relayed. */
        if (ac_slice_caseeq(h->name, AC_LIT("Surrogate-Key")) ||
            ac_slice_caseeq(h->name, AC_LIT("xkey")) ||
            ac_slice_caseeq(h->name, AC_LIT("Cache-Tag")) ||
            ac_slice_caseeq(h->name, AC_LIT("CDN-Cache-Control")) ||
            (s->w->cparams && s->w->cparams->targeted_cc.len &&
             ac_slice_caseeq(h->name, s->w->cparams->targeted_cc)))
            continue;
        if (ac_slice_caseeq(h->name, AC_LIT("Content-Length"))) {
            /* Re-emitted once below (duplicates like "5, 5" normalised);
             * a body-less answer (HEAD, 304) keeps the origin's value. */
            if (resp->body == H1_BODY_NONE && !pass_cl) {
                pass_cl = true;
                ac_buf_cat(b, "Content-Length: ", 16);
                ac_buf_cats(b, h->value);
                ac_buf_cat(b, "\r\n", 2);
            }
            continue;
        }
        ac_buf_field(b, h->name, h->value);
    }
    if (s->n_resp_ops == 0 || !pol_overlay_has(s->resp_ops, s->n_resp_ops, AC_LIT("Via")))
        ac_buf_catstr(b, "Via: 1.1 accel\r\n");
    cache_pass_headers(s, b);
    cat_resp_overlay(s, b);
    if (resp->body == H1_BODY_LENGTH)
        ac_buf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)resp->content_length);
    else if (s->resp_chunked_out && !head)
        ac_buf_catstr(b, "Transfer-Encoding: chunked\r\n");
    if (resp->status == 101)
        ;                           /* the connection becomes a tunnel */
    else if (!s->keepalive)
        ac_buf_catstr(b, "Connection: close\r\n");
    else if (s->req.flags & H1_F_HTTP10)
        ac_buf_catstr(b, "Connection: keep-alive\r\n");
    ac_buf_cat(b, "\r\n", 2);
    AC_ASSERT(!ac_buf_error(b));
    if (head) {
        s->resp_chunked_out = false;
        s->resp_close_out = false;
    }
}

void
sess_release_origin(struct sess *s, bool reusable)
{
    if (s->oc == NULL)
        return;
    /* Bytes after the response (in the relay buffer, or decrypted and
     * kept inside OpenSSL, where no socket readiness will ever show them
     * to the idle watcher) would be read as the next request's response. */
    if (reusable && ac_iobuf_len(&s->relay) == 0 && !s->w->stopping &&
        !(conn_is_tls(&s->oc->c) && tls_conn_pending(&s->oc->c)))
        pool_put(&s->oc);
    else
        pool_close(&s->oc);
}

static void
log_request(struct sess *s)
{
    struct log_access_rec r;
    const struct h1_header *h;
    static const struct ac_slice proto[2] = { { "HTTP/1.0", 8 }, { "HTTP/1.1", 8 } };

    s->logged = true;
    if (s->w->alog.fd < 0)
        return;
    memset(&r, 0, sizeof(r));
    r.client_ip = s->client_ip;
    r.t_start = s->t_start;
    r.duration = ev_time() - s->t_start;
    r.method = s->req.method;
    r.target = s->req.target;
    if (s->req.method.p != NULL)
        r.proto = proto[s->req.minor >= 1 ? 1 : 0];
    r.status = s->status;
    r.bytes = s->bytes_sent;
    if ((h = h1_header_find(s->hdrs, s->req.nhdrs, AC_LIT("Referer"))) != NULL)
        r.referer = h->value;
    if ((h = h1_header_find(s->hdrs, s->req.nhdrs, AC_LIT("User-Agent"))) != NULL)
        r.user_agent = h->value;
    r.upstream_status = s->upstream_status;
    r.cache = s->cache_state;
    r.bad_reason = s->bad_reason;
    r.bad_off = s->bad_off;
    log_access_add(&s->w->alog, &r);
}

static enum step
step_finish(struct sess *s)
{
    if (s->bg)
        return STEP_DONE;
    log_request(s);
    cache_sess_reset(s);
    pol_end(s);
    if (s->oc != NULL)
        pool_close(&s->oc);
    if (!s->head_copied && s->head_len > 0)
        ac_iobuf_consume(&s->rbuf, AC_MIN(s->head_len, ac_iobuf_len(&s->rbuf)));
    if (!s->keepalive || s->w->stopping) {
        s->state = S_CLOSE;
        return STEP_MORE;
    }
    /* Reset the per-request state; pipelined bytes stay in rbuf. */
    memset(&s->req, 0, sizeof(s->req));
    s->head_len = 0;
    s->head_copied = false;
    s->reqbody_left = 0;
    s->status = 0;
    s->bytes_sent = 0;
    s->upstream_status = 0;
    s->cache_state = NULL;
    s->be = NULL;
    s->retries = 0;
    s->oc_reused = false;
    s->resp_head_done = false;
    s->resp_bytes_in = 0;
    s->reqbody_pending_fwd = 0;
    s->reqbody_scan = 0;
    s->body_checked = false;
    s->origin_eof = false;
    s->niov = 0;
    s->kind = CACHE_REQ_PASS;
    s->pass_why = NULL;
    s->bereq_method = AC_SLICE(NULL, 0);
    s->client_dead = false;
    s->piping = false;
    s->logged = false;
    s->restarts = 0;
    s->prog_restart_exhausted = false;
    /* An idle keep-alive connection keeps no big buffers: the relay buffer
     * (relay_buffer, 64 KiB) is made again by the next fetch, and a read
     * buffer grown for a request body shrinks back when it is empty.  (With
     * TLS, handshakes dirty the heap, so a kept buffer costs its full size
     * in RSS: 57 KiB per idle TLS connection before, nginx 19 KiB.) */
    ac_iobuf_free(&s->relay);
    if (ac_iobuf_len(&s->rbuf) == 0 && s->rbuf.cap > 4096) {
        ac_iobuf_free(&s->rbuf);
        ac_iobuf_init(&s->rbuf, 4096);
    }
    /* TLS may hold decrypted bytes: poll first only when OpenSSL has none */
    s->poll_first = !conn_is_tls(&s->c) || !tls_conn_pending(&s->c);
    s->state = S_HEAD;
    return STEP_MORE;
}

/*
 * Close after answering: shut our side, then read and discard what the
 * client still sends for a short while, so our answer is not destroyed by a
 * TCP reset caused by unread request bytes (nginx's lingering close).
 */
static enum step
step_close(struct sess *s)
{
    char sink[4096];
    ssize_t n;

    if (s->client_eof || s->c.fd < 0)
        return STEP_DONE;
    if (s->timed_out)
        return STEP_DONE;
    if (!s->client_shut) {
        s->client_shut = true;
        if (conn_shutdown(&s->c) != 0)
            return STEP_DONE;
        if (s->oc != NULL)
            pool_close(&s->oc);
        sess_timer(s, 2.0);
    }
    for (int i = 0; i < 16; i++) {
        n = conn_read(&s->c, sink, sizeof(sink));
        if (n == AC_AGAIN) {
            sess_want(s, s->c.want, 0);
            return STEP_WAIT;
        }
        if (n <= 0)
            return STEP_DONE;
    }
    return STEP_DONE;
}
