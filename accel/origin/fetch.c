/*
 * fetch.c -- one exchange with an origin (fetch.h): connection (pooled or
 * new, within max_connections), request head and body, response head,
 * response body through one fixed buffer.  The request machine decides
 * what each outcome means (req/req_fetch.c); nothing here knows a request.
 */
#include "fetch.h"

#include "http.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static void
on_origin_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct oconn *oc = AC_CONTAINER_OF(io, struct oconn, io);
    struct fetch *f;

    (void)revents;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    f = oc->owner;
    AC_CHECK_OBJ(f, FETCH_MAGIC);
    if (f->want == 0) {
        ev_io_stop(loop, io);       /* the lazy stop of wrk_io_want() */
        return;
    }
    f->wake(f);
}

static void
on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct fetch *f = AC_CONTAINER_OF(t, struct fetch, tmr);

    (void)revents;
    AC_CHECK_OBJ(f, FETCH_MAGIC);
    ev_timer_stop(loop, t);
    f->timed_out = true;
    f->wake(f);
}

/* A slot given back on any thread went to this waiting exchange. */
static void
on_slot_granted(void *arg)
{
    struct fetch *f = arg;

    wrk_wake(f->w, &f->qwake);      /* its own worker drives it */
}

static void
on_qwake(struct wrk_wakeup *wu)
{
    struct fetch *f = AC_CONTAINER_OF(wu, struct fetch, qwake);

    AC_CHECK_OBJ(f, FETCH_MAGIC);
    if (f->oc == NULL && f->qw.be != NULL && f->wake != NULL)
        f->wake(f);                 /* still waiting for the slot */
}

void
fetch_init(struct fetch *f, struct wrk *w)
{
    memset(f, 0, sizeof(*f));
    f->magic = FETCH_MAGIC;
    f->w = w;
    f->who = "-";
    ev_init(&f->tmr, on_timer);
    f->qwake.fn = on_qwake;
    for (unsigned i = 0; i < AC_ARRAY_LEN(f->bto); i++)
        f->bto[i] = -1;
}

void
fetch_begin(struct fetch *f, fetch_wake_f *wake, const char *who)
{
    AC_CHECK_OBJ(f, FETCH_MAGIC);
    AC_ASSERT(f->oc == NULL);
    f->wake = wake;
    f->who = who;
    f->be = NULL;
    f->oc_reused = false;
    f->may_retry = false;
    f->retries = 0;
    for (unsigned i = 0; i < AC_ARRAY_LEN(f->bto); i++)
        f->bto[i] = -1;
    f->queue_until = 0;
    f->queued = false;
    f->bereq_off = 0;
    memset(&f->resp, 0, sizeof(f->resp));
    f->head_len = 0;
    f->respbody_left = 0;
    f->origin_reusable = false;
    f->origin_eof = false;
    f->resp_bytes_in = 0;
    f->poll_first = false;
    f->want = 0;
    f->timed_out = false;
    f->fail_status = 0;
    f->fail_what = NULL;
    f->fail_err = 0;
}

void
fetch_end(struct fetch *f)
{
    AC_CHECK_OBJ(f, FETCH_MAGIC);
    pool_wait_leave(&f->qw);        /* before the cancel: a grant may wake us */
    if (f->queued) {
        wrk_wake_cancel(f->w, &f->qwake);
        f->queued = false;
    }
    fetch_close(f);
    /* An idle keep-alive client keeps no big buffers: the relay buffer
     * (relay_buffer, 64 KiB) is made again by the next fetch. */
    ac_iobuf_free(&f->relay);
}

void
fetch_fini(struct fetch *f)
{
    fetch_end(f);
    free(f->bhdrs);
    f->bhdrs = NULL;
    f->magic = 0;
}

double
fetch_timeout(const struct fetch *f, enum fetch_tmo t)
{
    const struct config_params *p = &f->w->cfg->p;
    double be_v = -1;

    if (f->bto[t] >= 0)
        return f->bto[t];
    if (f->be != NULL)
        be_v = t == FETCH_TMO_CONNECT      ? f->be->connect_timeout
             : t == FETCH_TMO_FIRST_BYTE   ? f->be->first_byte_timeout
                                           : f->be->between_bytes_timeout;
    if (be_v >= 0)
        return be_v;
    return t == FETCH_TMO_CONNECT      ? p->connect_timeout
         : t == FETCH_TMO_FIRST_BYTE   ? p->first_byte_timeout
                                       : p->between_bytes_timeout;
}

void
fetch_want(struct fetch *f, int events, double seconds)
{
    if (f->oc != NULL)
        wrk_io_want(f->w->loop, &f->oc->io, f->oc->c.fd, &f->want, events);
    else
        f->want = events;
    if (seconds >= 0) {
        f->timed_out = false;
        f->tmr.repeat = seconds > 0.001 ? seconds : 0.001;
        ev_timer_again(f->w->loop, &f->tmr);
    }
}

/* A step is through: the socket is wanted no more (lazy stop), the timer
 * is off until the next wait. */
static int
idle(struct fetch *f, int rc)
{
    if (f->oc != NULL)
        wrk_io_want(f->w->loop, &f->oc->io, f->oc->c.fd, &f->want, 0);
    ev_timer_stop(f->w->loop, &f->tmr);
    f->timed_out = false;
    return rc;
}

static int
fail(struct fetch *f, int status, const char *what, int err, int code)
{
    f->fail_status = status;
    f->fail_what = what;
    f->fail_err = err;
    return code;
}

static bool
retryable(const struct fetch *f)
{
    return f->oc_reused && f->retries == 0 && f->may_retry && f->resp_bytes_in == 0;
}

/*
 * A max_connections slot for f->be: FETCH_OK when f holds one.  Otherwise
 * f waits in the backend's queue (first come, first served: a slot given
 * back is handed to the oldest waiter, which is woken) until
 * backend_queue_timeout, then FETCH_EQUEUE.
 */
static int
slot_take(struct fetch *f)
{
    struct backend *be = (struct backend *)f->be;
    const struct config_params *p = &f->w->cfg->p;
    double now = ev_now(f->w->loop);

    if (f->qw.be == NULL) {         /* not waiting yet */
        if (pool_be_acquire(be))
            return FETCH_OK;
        f->qw.be = be;
        f->qw.wake = on_slot_granted;
        f->qw.arg = f;
        if (pool_wait_enter(&f->qw)) {
            f->qw.be = NULL;
            return FETCH_OK;
        }
        f->queued = true;
        f->queue_until = now + p->backend_queue_timeout;
        atomic_fetch_add_explicit(&be->n_queued, 1, memory_order_relaxed);
        fetch_want(f, 0, p->backend_queue_timeout);
        return AC_AGAIN;
    }
    if (pool_wait_granted(&f->qw)) {
        f->queue_until = 0;
        f->timed_out = false;       /* the wait's deadline timer, not a timeout */
        ev_timer_stop(f->w->loop, &f->tmr);
        return FETCH_OK;
    }
    if (now < f->queue_until && !f->timed_out)
        return AC_AGAIN;            /* a wake-up that was not for us */
    pool_wait_leave(&f->qw);        /* hands on a slot granted just now */
    f->queue_until = 0;
    f->timed_out = false;
    atomic_fetch_add_explicit(&be->n_queue_full, 1, memory_order_relaxed);
    LOG_W("origin %s (%s): %u connections in use (max_connections), request refused "
          "(client %s)", be->vname, be->name, be->max_conn, f->who);
    return fail(f, 503, "max_connections", 0, FETCH_EQUEUE);
}

int
fetch_connect(struct fetch *f)
{
    struct oconn *oc = f->oc;
    int err = 0, r;
    socklen_t el = sizeof(err);

    if (oc == NULL) {
        struct backend *be = (struct backend *)f->be;
        if ((r = slot_take(f)) != FETCH_OK)
            return r;
        if (f->retries == 0 && (oc = pool_get_idle(f->w, f->be)) != NULL) {
            f->oc_reused = true;
            STAT_INC(f->w, backend_reuse);
        } else {
            oc = pool_connect(f->w, f->be);
            if (oc == NULL) {
                err = errno;
                pool_be_release(be);
                STAT_INC(f->w, backend_fail);
                return fail(f, 502, "connect", err, FETCH_EMOVE);
            }
        }
        oc->slot = true;
        oc->owner = f;
        ev_io_stop(f->w->loop, &oc->io);
        ev_set_cb(&oc->io, on_origin_io);
        f->oc = oc;
        f->want = 0;
        if (oc->connecting) {
            fetch_want(f, EV_WRITE, fetch_timeout(f, FETCH_TMO_CONNECT));
            return AC_AGAIN;
        }
    }
    if (oc->connecting) {
        if (f->timed_out) {
            STAT_INC(f->w, backend_fail);
            return fail(f, 504, "connect timed out", 0, FETCH_EMOVE);
        }
        if (getsockopt(oc->c.fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err != 0) {
            STAT_INC(f->w, backend_fail);
            return fail(f, 502, "connect", err, FETCH_EMOVE);
        }
        oc->connecting = false;
        /* The TCP connection is up; an `.ssl = true` backend gets its TLS
         * handshake before the request is sent (within the same connect
         * timeout).  This is the one place origin connections are made. */
        if (f->be->ssl) {
            if (pool_be_tls_attach(f->be, &oc->c) != 0)
                return fail(f, 502, "TLS setup", ENOMEM, FETCH_EMOVE);
            oc->handshaking = true;
        }
    }
    if (oc->handshaking) {
        if (f->timed_out) {
            STAT_INC(f->w, backend_fail);
            return fail(f, 504, "TLS handshake timed out", 0, FETCH_EMOVE);
        }
        r = tls_handshake(&oc->c);
        if (r == AC_AGAIN) {
            fetch_want(f, oc->c.want, -1);      /* still the connect timeout */
            return AC_AGAIN;
        }
        if (r != 0) {
            snprintf(f->fail_buf, sizeof(f->fail_buf), "TLS handshake with %s failed: %s",
                     f->be->tls_name ? f->be->tls_name : f->be->name, tls_conn_error(&oc->c));
            STAT_INC(f->w, backend_fail);
            return fail(f, 502, f->fail_buf, 0, FETCH_EMOVE);
        }
        oc->handshaking = false;
    }
    f->bereq_off = 0;
    return idle(f, FETCH_OK);
}

int
fetch_send_head(struct fetch *f, const struct ac_buf *bereq)
{
    struct oconn *oc = f->oc;

    if (f->timed_out)
        return fail(f, 504, "timed out sending the request", 0, FETCH_EFAIL);
    while (f->bereq_off < bereq->len) {
        struct iovec iov = { bereq->p + f->bereq_off, bereq->len - f->bereq_off };
        ssize_t n = conn_writev(&oc->c, &iov, 1);
        if (n == AC_AGAIN) {
            fetch_want(f, oc->c.want, fetch_timeout(f, FETCH_TMO_FIRST_BYTE));
            return AC_AGAIN;
        }
        if (n < 0) {
            if (retryable(f))
                return FETCH_ERETRY;
            return fail(f, 502, "send", oc->c.err, FETCH_EMOVE);
        }
        f->bereq_off += (size_t)n;
    }
    oc->nreq++;
    STAT_INC(f->w, backend_req);
    atomic_fetch_add_explicit(&((struct backend *)f->be)->n_req, 1, memory_order_relaxed);
    f->poll_first = oc->c.ops == &conn_plain_ops;  /* the answer cannot be there yet */
    return idle(f, FETCH_OK);
}

ssize_t
fetch_send_body(struct fetch *f, struct ac_slice data)
{
    struct oconn *oc = f->oc;
    struct iovec iov = { (void *)(uintptr_t)data.p, data.len };
    ssize_t n;

    if (f->timed_out)
        return fail(f, 504, "timed out receiving the request body", 0, FETCH_EFAIL);
    n = conn_writev(&oc->c, &iov, 1);
    if (n == AC_AGAIN) {
        fetch_want(f, oc->c.want, fetch_timeout(f, FETCH_TMO_FIRST_BYTE));
        return AC_AGAIN;
    }
    if (n < 0)
        return fail(f, 502, "send body", oc->c.err, FETCH_EFAIL);
    idle(f, 0);
    return n;
}

int
fetch_head(struct fetch *f, struct ac_slice method, bool upgrade)
{
    const struct config *cfg = f->w->cfg;
    struct ac_iobuf *b = &f->relay;
    struct oconn *oc = f->oc;
    ssize_t n;

    if (f->timed_out)
        return fail(f, 504, "no response within first_byte_timeout", 0, FETCH_EFAIL);
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
            if (f->bhdrs == NULL)
                f->bhdrs = ac_xcalloc((size_t)cfg->p.max_headers, sizeof(*f->bhdrs));
            memset(&f->resp, 0, sizeof(f->resp));
            f->resp.hdrs = f->bhdrs;
            int r = h1_parse_response(ac_iobuf_head(b), ac_iobuf_len(b), &lim, method, &f->resp);
            if (r > 0) {
                int st = f->resp.status;
                f->head_len = (size_t)r;
                if (st == 101 && upgrade)
                    return idle(f, FETCH_OK);
                if (st >= 100 && st < 200) {
                    /* 100: the client's Expect was answered by accel.
                     * 101 without an Upgrade request is a broken origin. */
                    if (st == 101)
                        return fail(f, 502, "101 without an upgrade request", 0, FETCH_EFAIL);
                    if (st != 100)
                        return idle(f, FETCH_INTERIM);
                    ac_iobuf_consume(b, (size_t)r);
                    continue;
                }
                if (st >= 500)
                    atomic_fetch_add_explicit(&((struct backend *)f->be)->n_resp_5xx, 1,
                                              memory_order_relaxed);
                /* 502/503/504 say the server (or what is behind it) is
                 * unavailable; 500 and other 5xx are the application's
                 * answer to this request, not a health signal. */
                pool_be_report((struct backend *)f->be, st < 502 || st > 504, cfg);
                return idle(f, FETCH_OK);
            }
            if (r != AC_AGAIN) {
                LOG_W("origin %s: invalid response: %s", f->be->name,
                      f->resp.reason ? f->resp.reason : "?");
                return fail(f, 502, "invalid response head", 0, FETCH_EFAIL);
            }
        }
        if (ac_iobuf_room(b) == 0) {
            ac_iobuf_compact(b);
            if (ac_iobuf_room(b) == 0)
                return fail(f, 502, "response head too large", 0, FETCH_EFAIL);
        }
        if (f->poll_first) {
            f->poll_first = false;
            fetch_want(f, EV_READ, fetch_timeout(f, FETCH_TMO_FIRST_BYTE));
            return AC_AGAIN;
        }
        n = conn_read(&oc->c, b->data + b->end, ac_iobuf_room(b));
        if (n > 0) {
            b->end += (size_t)n;
            f->resp_bytes_in += (uint64_t)n;
            continue;
        }
        if (n == AC_AGAIN) {
            fetch_want(f, oc->c.want, fetch_timeout(f, FETCH_TMO_FIRST_BYTE));
            return AC_AGAIN;
        }
        if (retryable(f))
            return FETCH_ERETRY;
        return fail(f, 502, n == 0 ? "closed before responding" : "receive", n == 0 ? 0 : oc->c.err,
                    f->resp_bytes_in == 0 ? FETCH_EMOVE : FETCH_EFAIL);
    }
}

void
fetch_head_consume(struct fetch *f)
{
    ac_iobuf_consume(&f->relay, f->head_len);
    f->head_len = 0;
    if (f->resp.status < 200)
        return;
    f->respbody_left = f->resp.content_length;
    h1_chunked_init(&f->respchunk);
    f->origin_reusable = !(f->resp.flags & H1_F_CLOSE) && f->resp.body != H1_BODY_CLOSE;
}

bool
fetch_body_done(const struct fetch *f)
{
    switch (f->resp.body) {
    case H1_BODY_NONE: return true;
    case H1_BODY_LENGTH: return f->respbody_left == 0;
    case H1_BODY_CHUNKED: return h1_chunked_done(&f->respchunk);
    case H1_BODY_CLOSE: return f->origin_eof;
    }
    return true;
}

int
fetch_body_take(struct fetch *f, struct ac_slice *data)
{
    struct ac_iobuf *b = &f->relay;

    /* b->start moves, not consume(): the bytes must stay put until they
     * are written (consume() would let the next read overwrite them) */
    switch (f->resp.body) {
    case H1_BODY_LENGTH: {
        size_t take = (size_t)AC_MIN((uint64_t)ac_iobuf_len(b), f->respbody_left);
        if (take == 0)
            return 0;
        *data = AC_SLICE(ac_iobuf_head(b), take);
        b->start += take;
        f->respbody_left -= take;
        return 1;
    }
    case H1_BODY_CHUNKED:
        while (ac_iobuf_len(b) > 0 && !h1_chunked_done(&f->respchunk)) {
            long c = h1_chunked_decode(&f->respchunk, ac_iobuf_head(b), ac_iobuf_len(b), data);
            if (c < 0) {
                f->fail_what = f->respchunk.reason ? f->respchunk.reason : "?";
                return FETCH_EFAIL;
            }
            b->start += (size_t)c;
            if (data->len > 0)
                return 1;
            if (c == 0)
                break;
        }
        return 0;
    case H1_BODY_CLOSE:
        if (ac_iobuf_len(b) == 0)
            return 0;
        *data = AC_SLICE(ac_iobuf_head(b), ac_iobuf_len(b));
        b->start = b->end;
        return 1;
    case H1_BODY_NONE:
        break;
    }
    return 0;
}

int
fetch_body_read(struct fetch *f)
{
    struct ac_iobuf *b = &f->relay;
    ssize_t n;

    /* Everything read so far is taken: the buffer is free again. */
    b->start = b->end = 0;
    n = conn_read(&f->oc->c, b->data, b->cap);
    if (n > 0) {
        b->end = (size_t)n;
        return idle(f, 1);
    }
    if (n == AC_AGAIN) {
        fetch_want(f, f->oc->c.want, fetch_timeout(f, FETCH_TMO_BETWEEN_BYTES));
        return AC_AGAIN;
    }
    if (n == 0 && f->resp.body == H1_BODY_CLOSE) {
        f->origin_eof = true;
        f->origin_reusable = false;
        return idle(f, 1);
    }
    f->fail_what = n == 0 ? "closed" : "error";
    return FETCH_EFAIL;
}

void
fetch_close(struct fetch *f)
{
    if (f->oc != NULL)
        pool_close(&f->oc);
    f->want = 0;
    ev_timer_stop(f->w->loop, &f->tmr);
    f->timed_out = false;
}

void
fetch_release(struct fetch *f, bool reusable)
{
    if (f->oc == NULL)
        return;
    /* Bytes after the response (in the relay buffer, or decrypted and
     * kept inside OpenSSL, where no socket readiness will ever show them
     * to the idle watcher) would be read as the next request's response. */
    if (reusable && ac_iobuf_len(&f->relay) == 0 && !f->w->stopping &&
        !(conn_is_tls(&f->oc->c) && tls_conn_pending(&f->oc->c))) {
        pool_put(&f->oc);
        f->want = 0;
        ev_timer_stop(f->w->loop, &f->tmr);
        f->timed_out = false;
    } else {
        fetch_close(f);
    }
}

void
fetch_retry(struct fetch *f)
{
    fetch_close(f);
    f->retries++;
    f->oc_reused = false;
    STAT_INC(f->w, backend_retry);
}

void
fetch_failed(struct fetch *f, int status, const char *what, int err)
{
    if (f->be != NULL) {
        struct backend *be = (struct backend *)f->be;
        atomic_fetch_add_explicit(&be->n_fail, 1, memory_order_relaxed);
        pool_be_report(be, false, f->w->cfg);
    }
    if (status == 504) {
        STAT_INC(f->w, backend_timeout);
        STAT_INC(f->w, resp_504);
    } else {
        STAT_INC(f->w, resp_502);
    }
    LOG_W("origin %s: %s%s%s (client %s)", f->be ? f->be->name : "-", what, err ? ": " : "",
          err ? strerror(err) : "", f->who);
    fetch_close(f);
}

void
fetch_move(struct fetch *f, const struct backend *to)
{
    struct backend *from = (struct backend *)f->be, *t = (struct backend *)to;

    atomic_fetch_add_explicit(&from->n_fail, 1, memory_order_relaxed);
    pool_be_report(from, false, f->w->cfg);
    fetch_close(f);
    LOG_W("origin %s (%s): %s%s%s; retrying on %s (client %s)", from->vname, from->name,
          f->fail_what, f->fail_err ? ": " : "", f->fail_err ? strerror(f->fail_err) : "",
          t->vname, f->who);
    atomic_fetch_add_explicit(&t->n_retry_other, 1, memory_order_relaxed);
    STAT_INC(f->w, backend_retry);
    f->be = to;
    f->oc_reused = false;
    f->timed_out = false;           /* a connect timeout was the old server's */
}

struct oconn *
fetch_take_conn(struct fetch *f)
{
    struct oconn *oc = f->oc;

    f->oc = NULL;
    f->want = 0;
    ev_timer_stop(f->w->loop, &f->tmr);
    if (oc != NULL) {
        ev_io_stop(f->w->loop, &oc->io);
        oc->owner = NULL;
    }
    return oc;
}

void
fetch_handover(struct fetch *dst, struct fetch *src)
{
    AC_CHECK_OBJ(dst, FETCH_MAGIC);
    AC_ASSERT(dst->oc == NULL);
    dst->be = src->be;
    dst->oc = src->oc;
    src->oc = NULL;
    if (dst->oc != NULL)
        dst->oc->owner = dst;       /* same io callback: on_origin_io */
    dst->want = src->want;
    src->want = 0;
    ev_timer_stop(src->w->loop, &src->tmr);
    src->timed_out = false;
    ac_iobuf_free(&dst->relay);
    dst->relay = src->relay;
    memset(&src->relay, 0, sizeof(src->relay));
    dst->resp = src->resp;
    dst->resp.hdrs = NULL;          /* copied into the object already */
    dst->resp.nhdrs = 0;
    dst->respbody_left = src->respbody_left;
    dst->respchunk = src->respchunk;
    dst->origin_reusable = src->origin_reusable;
    dst->origin_eof = src->origin_eof;
    dst->resp_bytes_in = src->resp_bytes_in;
    dst->retries = src->retries;
}
