/*
 * h2x.c -- HTTP/2 as a transport (see h2x.h): the connection's
 * socket and timer around a struct h2_conn (h2.c), and per stream a
 * struct xport that serves the stream's request (req.h).
 *
 * Output is written in one place, run(): ops called by a request (head,
 * write) only hand their bytes to the stream and mark the connection
 * dirty; an ev_prepare watcher then writes what all streams made in that
 * loop iteration with one call, so many small answers share records and
 * packets.  Upcalls from h2.c (a request head, body bytes, a piece sent,
 * a reset) come from run() or the timer, never from inside an op, so they
 * may call req_start(), req_resume() and req_detach().
 *
 * Backpressure per stream: a body piece is handed to h2.c by reference and
 * write() returns AC_AGAIN; when h2.c has framed it (as the client's
 * windows allow) on_writable() calls req_resume() for that request only.
 * Small writes (a cached 1 KiB object) are copied instead and answered
 * AC_OK, so a small hit ends in one pass.
 */
#include "h2x.h"

#include "config.h"
#include "log.h"
#include "stat.h"
#include "tls.h"
#include "wrk.h"
#include "xport.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define H2SESS_MAGIC 0x5ad2c7e9
#define H2X_MAGIC 0x13f8a64b
#define H2W_MAGIC 0x7c41e02d

/* Writes up to this size are copied (AC_OK at once); larger ones are sent
 * from the request's memory (AC_AGAIN, then req_resume()). */
#define COPY_MAX 16384
/* Bytes one connection writes per run before the others get their turn. */
#define WRITE_BUDGET (256 * 1024)
/* Freed stream endpoints a connection keeps. */
#define XPOOL_MAX 16
/* Reads per wake-up, so one connection does not starve the others. */
#define READS_PER_RUN 8
/* After the last frame: how long we read and discard what the client still
 * sends before closing (its RST would destroy our last frames). */
#define LINGER 2.0

struct h2sess;

/* The worker's HTTP/2 state: its connections (SIGHUP GOAWAY) and the
 * async that brings the reload to its thread. */
struct h2w {
    unsigned magic;
    struct wrk *w;
    struct h2sess *list;
    ev_async reload;
};

struct h2sess {
    unsigned magic;
    struct wrk *w;
    struct wrk_task task;
    struct h2sess *next, *prev;     /* the worker's connections */
    struct conn c;
    ev_io io;
    int iowant;
    ev_timer tmr;
    ev_prepare flush;               /* write what ops queued this iteration */
    struct h2_conn *h;
    struct req_meta meta;
    int rwant, wwant;               /* readiness OpenSSL asked for after AC_AGAIN */
    bool read_blocked, write_blocked;
    bool write_more;                /* the write budget ran out with output left */
    double t_blocked;               /* since when the socket takes no output */
    bool in_run;
    bool peer_eof;
    bool lingering;
    double linger_until;
    struct h1_header *fields;       /* response fields of one head (scratch) */
    unsigned nfields;
    struct h2x *xpool;              /* freed stream endpoints for reuse */
    unsigned nxpool;
    char rbuf[16384];
};

/* One stream's transport endpoint for its request. */
struct h2x {
    unsigned magic;
    struct xport x;
    struct h2sess *s;
    struct h2_stream *st;           /* NULL once released */
    struct req *req;                /* NULL after done() or req_detach() */
    bool body_none;                 /* the head said: no body */
    bool want_body;                 /* body_read() said AC_AGAIN */
    bool held;                      /* write() said AC_AGAIN: resume when out */
    bool out_busy;                  /* a piece is with the stream */
    bool last_given;                /* the last piece is with the stream */
    bool expect_100;
    struct iovec iov[XP_MAX_IOV];   /* held by reference */
    int niov, iovi;
    bool iov_end;
    char *copy;                     /* small writes */
    size_t copycap;
    struct h2x *pool_next;          /* the connection's pool of freed ones */
    /* min_body_rate, as HTTP/1.1 checks it: 5 s windows while the request
     * waits for body bytes */
    ev_timer body_tmr;
    double body_window_start;
    uint64_t body_window_bytes;
    int body_err;                   /* sticky: AC_ETIMEDOUT */
};

static void run(struct h2sess *s);
static void sess_close(struct h2sess *s);
static void on_body_timer(struct ev_loop *loop, ev_timer *t, int revents);

/* ------------------------------------------------------------ settings */

bool
h2x_enabled(const struct config *cfg)
{
    return !cfg->no_http2;
}

int
h2x_preface(const char *p, size_t n)
{
    size_t m = AC_MIN(n, (size_t)H2_PREFACE_LEN);

    if (memcmp(p, H2_PREFACE, m) != 0)
        return 0;
    return n >= H2_PREFACE_LEN ? 1 : AC_AGAIN;
}

void
h2x_settings(const struct config *cfg, struct h2_settings *set)
{
    const struct config_params *p = &cfg->p;

    *set = (struct h2_settings){
        .max_concurrent_streams = (uint32_t)p->h2_max_concurrent_streams,
        .max_header_list = (uint32_t)p->h2_max_header_list,
        .max_fields = (uint32_t)p->max_headers,
        .max_target = (uint32_t)p->max_target,
        .header_table_size = (uint32_t)p->h2_header_table_size,
        .initial_window = (uint32_t)p->h2_initial_window,
        .conn_window = (uint32_t)p->h2_conn_window,
        .max_frame_size = (uint32_t)p->h2_max_frame_size,
        .max_continuations = (uint32_t)p->h2_max_continuations,
        .max_resets = (uint32_t)p->h2_max_resets,
        .max_settings = (uint32_t)p->h2_max_settings,
        .max_pings = (uint32_t)p->h2_max_pings,
        .max_empty = (uint32_t)p->h2_max_empty_frames,
        .out_buffer = (size_t)p->h2_out_buffer,
        .send_timeout = p->send_timeout,
        .head_timeout = p->timeout_req_head,
        .idle_timeout = p->timeout_idle,
    };
}

/* ------------------------------------------------------------ the stream transport */

static struct h2x *
xp_of(struct xport *x)
{
    struct h2x *hx = AC_CONTAINER_OF(x, struct h2x, x);

    AC_CHECK_OBJ(hx, H2X_MAGIC);
    return hx;
}

/* The dirty connection writes in the prepare phase of this iteration. */
static void
kick(struct h2sess *s)
{
    if (!s->in_run && !ev_is_active(&s->flush))
        ev_prepare_start(s->w->loop, &s->flush);
}

static void
hx_destroy(struct h2x *hx)
{
    free(hx->copy);
    free(hx);
}

/* Back to the connection's pool (with its copy buffer), or freed. */
static void
hx_free(struct h2x *hx)
{
    struct h2sess *s = hx->s;

    AC_ASSERT(hx->st == NULL && hx->req == NULL);
    ev_timer_stop(s->w->loop, &hx->body_tmr);
    hx->magic = 0;
    if (s->nxpool < XPOOL_MAX) {
        hx->pool_next = s->xpool;
        s->xpool = hx;
        s->nxpool++;
        return;
    }
    hx_destroy(hx);
}

static struct h2x *
hx_new(struct h2sess *s)
{
    struct h2x *hx = s->xpool;
    char *copy = NULL;
    size_t copycap = 0;

    if (hx != NULL) {
        s->xpool = hx->pool_next;
        s->nxpool--;
        copy = hx->copy;
        copycap = hx->copycap;
        memset(hx, 0, sizeof(*hx));
    } else {
        hx = ac_xcalloc(1, sizeof(*hx));
    }
    hx->magic = H2X_MAGIC;
    hx->s = s;
    hx->copy = copy;
    hx->copycap = copycap;
    ev_init(&hx->body_tmr, on_body_timer);
    return hx;
}

/* Let the stream go (the response is whole, or cut short: h2.c resets it)
 * and free the endpoint. */
static void
hx_end(struct h2x *hx)
{
    if (hx->st != NULL) {
        h2_stream_release(&hx->st);
        kick(hx->s);
    }
    hx_free(hx);
}

/* Walk a head's field blocks into the connection's scratch array. */
static unsigned
head_fields(struct h2sess *s, const struct xp_head *h)
{
    struct xp_field_iter it;
    struct ac_slice n, v;
    unsigned k = 0;

    xp_fields_init(&it, h);
    while (xp_fields_next(&it, &n, &v)) {
        if (k == s->nfields) {
            s->nfields = s->nfields ? s->nfields * 2 : 32;
            s->fields = ac_xrealloc(s->fields, sizeof(*s->fields) * s->nfields);
        }
        s->fields[k++] = (struct h1_header){ n, v };
    }
    return k;
}

static int
op_interim(struct xport *x, const struct xp_head *h)
{
    struct h2x *hx = xp_of(x);
    unsigned n;

    if (hx->st == NULL)
        return AC_ECLOSED;
    n = head_fields(hx->s, h);
    if (h2_stream_respond(hx->st, (int)h->status, hx->s->fields, n, false) != 0)
        return AC_ECLOSED;
    kick(hx->s);
    return AC_OK;
}

static int
op_head(struct xport *x, const struct xp_head *h)
{
    struct h2x *hx = xp_of(x);
    unsigned n;

    if (hx->st == NULL)
        return AC_ECLOSED;
    n = head_fields(hx->s, h);
    hx->body_none = h->body == XP_BODY_NONE;
    if (h2_stream_respond(hx->st, (int)h->status, hx->s->fields, n, !hx->body_none) != 0)
        return AC_ECLOSED;
    kick(hx->s);
    return AC_OK;
}

/* Hand the next held iovec to the stream (or the end of the body, when
 * it came with no bytes while a piece was out). */
static void
feed(struct h2x *hx)
{
    while (hx->iovi < hx->niov) {
        const struct iovec *v = &hx->iov[hx->iovi++];
        bool last = hx->iov_end && hx->iovi == hx->niov;
        if (v->iov_len == 0 && !last)
            continue;
        hx->out_busy = true;
        hx->last_given = last;
        (void)h2_stream_write(hx->st, v->iov_base, v->iov_len, last);
        return;
    }
    if (hx->iov_end && !hx->last_given) {
        hx->out_busy = true;
        hx->last_given = true;
        (void)h2_stream_write(hx->st, NULL, 0, true);
    }
}

/* Is something still to be handed to the stream? */
static bool
feed_pending(const struct h2x *hx)
{
    return hx->iovi < hx->niov || (hx->iov_end && !hx->last_given);
}

static int
op_write(struct xport *x, const struct iovec *iov, int n, unsigned flags)
{
    struct h2x *hx = xp_of(x);
    bool end = (flags & XP_W_END) != 0;
    size_t total = 0;

    AC_ASSERT(n <= XP_MAX_IOV);
    if (hx->st == NULL)
        return AC_ECLOSED;
    if (hx->body_none)
        return AC_OK;               /* HEAD, 304: the head ended the stream */
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total == 0 && !end)
        return AC_OK;
    kick(hx->s);
    if (total == 0 && hx->out_busy) {
        /* the end, no bytes: it follows the piece that is out */
        hx->niov = hx->iovi = 0;
        hx->iov_end = true;
        return AC_OK;
    }
    if (!hx->out_busy && total <= COPY_MAX) {
        char *p;
        if (total > hx->copycap) {
            hx->copycap = AC_MAX(total, (size_t)4096);
            free(hx->copy);
            hx->copy = ac_xmalloc(hx->copycap);
        }
        p = hx->copy;
        for (int i = 0; i < n; i++) {
            if (iov[i].iov_len > 0)
                memcpy(p, iov[i].iov_base, iov[i].iov_len);
            p += iov[i].iov_len;
        }
        hx->out_busy = true;
        hx->last_given = end;
        return h2_stream_write(hx->st, hx->copy, total, end) == 0 ? AC_OK : AC_ECLOSED;
    }
    /* by reference: the request keeps the bytes until req_resume() */
    memcpy(hx->iov, iov, sizeof(*iov) * (size_t)n);
    hx->niov = n;
    hx->iovi = 0;
    hx->iov_end = end;
    hx->held = true;
    if (!hx->out_busy)
        feed(hx);
    return AC_AGAIN;
}

static int
op_body_begin(struct xport *x)
{
    struct h2x *hx = xp_of(x);
    static const struct xp_head cont = { .status = 100, .reason = { "Continue", 8 } };

    if (hx->st == NULL)
        return AC_ECLOSED;
    hx->body_window_start = ev_now(hx->s->w->loop);
    hx->body_window_bytes = 0;
    /* RFC 9110 §10.1.1 over HTTP/2: the client may wait for the 100 */
    if (hx->expect_100) {
        hx->expect_100 = false;
        return op_interim(x, &cont);
    }
    return AC_OK;
}

/* Nothing to read yet: wait for DATA (on_body), at most to the end of
 * the current rate window (on_body_timer). */
static ssize_t
body_wait(struct h2x *hx)
{
    double left = 5.0 - (ev_now(hx->s->w->loop) - hx->body_window_start);

    if (h2_stream_closed(hx->st))
        return AC_ECLOSED;
    hx->want_body = true;
    hx->body_tmr.repeat = left > 0.001 ? left : 0.001;
    ev_timer_again(hx->s->w->loop, &hx->body_tmr);
    return AC_AGAIN;
}

/* A client below min_body_rate over a 5 s window gets 408, as over
 * HTTP/1.1 (a slow upload holds an origin connection). */
static void
on_body_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct h2x *hx = AC_CONTAINER_OF(t, struct h2x, body_tmr);
    const struct config_params *p = &hx->s->w->cfg->p;
    double now = ev_now(loop), span = now - hx->body_window_start;

    (void)revents;
    AC_CHECK_OBJ(hx, H2X_MAGIC);
    ev_timer_stop(loop, t);
    if (!hx->want_body || hx->req == NULL)
        return;
    if (span > 0 && (double)hx->body_window_bytes < p->min_body_rate * span) {
        LOG_I("client %s: HTTP/2 request body slower than %g bytes/s", hx->s->meta.client_ip,
              p->min_body_rate);
        hx->body_err = AC_ETIMEDOUT;
        hx->want_body = false;
        req_resume(hx->req);
        return;
    }
    hx->body_window_start = now;    /* fast enough: a new window */
    hx->body_window_bytes = 0;
    hx->body_tmr.repeat = 5.0;
    ev_timer_again(loop, t);
}

static ssize_t
op_body_read(struct xport *x, struct ac_slice *out)
{
    struct h2x *hx = xp_of(x);
    bool end;

    if (hx->st == NULL)
        return AC_ECLOSED;
    if (hx->body_err != 0)
        return hx->body_err;
    /* DATA bytes as they are: the request machine frames a body of unknown
     * length for the origin (no XP_F_RAW_CHUNKED) */
    h2_stream_body(hx->st, out, &end);
    if (out->len > 0)
        return (ssize_t)out->len;
    if (end)
        return 0;
    return body_wait(hx);
}

static void
op_body_consume(struct xport *x, size_t n)
{
    struct h2x *hx = xp_of(x);

    hx->body_window_bytes += n;
    if (hx->st != NULL && n > 0) {
        h2_stream_body_consume(hx->st, n);
        kick(hx->s);                /* a WINDOW_UPDATE may be due */
    }
}

static void
op_done(struct xport *x, enum xp_end how)
{
    struct h2x *hx = xp_of(x);

    hx->req = NULL;
    /* XP_END_ABORT: the response did not end (no XP_W_END), so the release
     * resets the stream and the client never takes it for whole */
    if (how == XP_END_OK && hx->out_busy)
        return;                     /* our copy is still going out: on_writable ends it */
    hx_end(hx);
}

static const struct xport_ops h2x_ops = {
    .interim = op_interim,
    .head = op_head,
    .write = op_write,
    .body_begin = op_body_begin,
    .body_read = op_body_read,
    .body_consume = op_body_consume,
    .tunnel = NULL,                 /* no Upgrade in HTTP/2: pipe becomes pass */
    .done = op_done,
};

/* ------------------------------------------------------------ upcalls from h2.c */

static void *
on_request(void *ud, struct h2_stream *st, const struct h2_request *rq)
{
    struct h2sess *s = ud;
    struct h2x *hx = hx_new(s);
    struct h1_request *hr;
    struct h1_header *hdrs;

    hx->x = (struct xport){ XPORT_MAGIC, &h2x_ops, 0, AC_LIT("HTTP/2.0") };
    hx->st = st;
    STAT_INC(s->w, client_req);
    hx->expect_100 = (rq->req.flags & H1_F_EXPECT_100) != 0;
    hx->req = req_new(s->w, &hx->x, &s->meta);
    hr = req_http(hx->req);
    hdrs = hr->hdrs;
    *hr = rq->req;
    hr->hdrs = hdrs;
    AC_ASSERT(rq->req.nhdrs <= (unsigned)s->w->cfg->p.max_headers);
    memcpy(hdrs, rq->req.hdrs, sizeof(*hdrs) * rq->req.nhdrs);
    /* the request may run to its end right here (a hit): done() may free
     * hx, so it is not touched after this */
    req_start(hx->req);
    return hx;
}

static void
on_body(void *ud)
{
    struct h2x *hx = ud;

    AC_CHECK_OBJ(hx, H2X_MAGIC);
    if (hx->want_body && hx->req != NULL) {
        hx->want_body = false;
        ev_timer_stop(hx->s->w->loop, &hx->body_tmr);
        req_resume(hx->req);
    }
}

static void
on_writable(void *ud)
{
    struct h2x *hx = ud;

    AC_CHECK_OBJ(hx, H2X_MAGIC);
    hx->out_busy = false;
    if (feed_pending(hx)) {
        feed(hx);
        return;
    }
    if (hx->req == NULL) {
        hx_end(hx);                 /* done() came while our copy was going out */
        return;
    }
    if (hx->held) {
        hx->held = false;
        hx->niov = hx->iovi = 0;
        req_resume(hx->req);
    }
}

static void
on_close(void *ud, uint32_t error, bool final)
{
    struct h2x *hx = ud;
    struct req *r;

    AC_CHECK_OBJ(hx, H2X_MAGIC);
    (void)error;
    if ((r = hx->req) != NULL) {
        /* the client reset the stream (or the connection goes): a fill
         * for other waiters goes on, anything else ends */
        hx->req = NULL;
        req_detach(r);
    }
    if (final)
        hx->st = NULL;              /* the connection is being freed */
    hx_end(hx);
}

static void
on_event(void *ud, enum h2_event ev)
{
    struct h2sess *s = ud;
    struct wrk *w = s->w;

    switch (ev) {
#define EV(e, counter) case e: STAT_INC(w, counter); break;
    EV(H2_EV_STREAM, h2_stream)
    EV(H2_EV_REFUSED, h2_refused)
    EV(H2_EV_HEADER_TOO_LARGE, h2_header_too_large)
    EV(H2_EV_BAD_REQUEST, h2_bad_request)
    EV(H2_EV_CONTINUATION_FLOOD, h2_continuation_flood)
    EV(H2_EV_RAPID_RESET, h2_rapid_reset)
    EV(H2_EV_SETTINGS_FLOOD, h2_settings_flood)
    EV(H2_EV_PING_FLOOD, h2_ping_flood)
    EV(H2_EV_EMPTY_FLOOD, h2_empty_flood)
    EV(H2_EV_ACK_FLOOD, h2_ack_flood)
    EV(H2_EV_PROTOCOL_ERROR, h2_protocol_error)
    EV(H2_EV_STREAM_ERROR, h2_stream_error)
    EV(H2_EV_CLIENT_RESET, h2_client_reset)
    EV(H2_EV_STALLED, h2_stalled)
    EV(H2_EV_HEAD_TIMEOUT, h2_head_timeout)
    EV(H2_EV_IDLE, h2_idle)
    EV(H2_EV_GOAWAY, h2_goaway)
#undef EV
    default:
        break;
    }
    if (ev != H2_EV_STREAM && ev != H2_EV_CLIENT_RESET)
        log_msg(LOG_DEBUG, "client %s: HTTP/2 %s", s->meta.client_ip, h2_event_name(ev));
}

/* A request h2.c answered itself (400, 414, 431): the access log has it
 * like any other. */
static void
on_reject(void *ud, const struct h2_request *rq, int status, const char *why)
{
    struct h2sess *s = ud;
    struct log_access_rec r;

    STAT_INC(s->w, client_req);
    STAT_INC(s->w, client_req_bad);
    log_msg(LOG_DEBUG, "client %s: HTTP/2 request refused (%d): %s", s->meta.client_ip, status,
            why != NULL ? why : "?");
    if (s->w->alog.fd < 0)
        return;
    memset(&r, 0, sizeof(r));
    r.client_ip = s->meta.client_ip;
    r.t_start = ev_now(s->w->loop);
    r.method = rq->req.method;
    r.target = rq->req.target;
    r.proto = AC_LIT("HTTP/2.0");
    r.status = status;
    log_access_add(&s->w->alog, &r);
}

static const struct h2_ops sess_ops = {
    .on_request = on_request,
    .on_body = on_body,
    .on_writable = on_writable,
    .on_close = on_close,
    .on_event = on_event,
    .on_reject = on_reject,
};

/* ------------------------------------------------------------ the connection */

static void
io_want(struct h2sess *s, int ev)
{
    if (ev == s->iowant && ev_is_active(&s->io))
        return;
    s->iowant = ev;
    ev_io_stop(s->w->loop, &s->io);
    if (ev != 0) {
        ev_io_modify(&s->io, ev);
        ev_io_start(s->w->loop, &s->io);
    }
}

/* Write what the streams made until the socket is full or this run's
 * budget is spent; false when the connection is broken. */
static bool
write_out(struct h2sess *s, double now)
{
    size_t done = 0;

    s->write_more = false;
    for (;;) {
        struct ac_slice out;
        struct iovec v;
        ssize_t n;

        if (done >= WRITE_BUDGET) {
            /* Loopback and LAN sockets take megabytes: one connection of
             * large bodies would fill its whole socket buffer while every
             * other connection waits for the loop.  Go round instead. */
            s->write_more = true;
            return true;
        }
        out = h2_conn_output(s->h, now);
        if (out.len == 0) {
            s->write_blocked = false;
            return true;
        }
        v.iov_base = (void *)(uintptr_t)out.p;
        v.iov_len = out.len;
        n = conn_writev(&s->c, &v, 1);
        if (n == AC_AGAIN) {
            if (!s->write_blocked)
                s->t_blocked = now;
            s->write_blocked = true;
            s->wwant = s->c.want;
            return true;
        }
        if (n < 0)
            return false;
        s->write_blocked = false;
        done += (size_t)n;
        h2_conn_output_done(s->h, (size_t)n, now);
    }
}

/* Read what the client sent (bounded per run); false when it is gone. */
static bool
read_in(struct h2sess *s, double now)
{
    for (int i = 0; i < READS_PER_RUN && h2_conn_want_read(s->h); i++) {
        ssize_t n = conn_read(&s->c, s->rbuf, sizeof(s->rbuf));
        if (n > 0) {
            s->read_blocked = false;
            (void)h2_conn_recv(s->h, s->rbuf, (size_t)n, now);
            continue;
        }
        if (n == AC_AGAIN) {
            s->read_blocked = true;
            s->rwant = s->c.want;
            return true;
        }
        return false;               /* closed or reset by the client */
    }
    s->read_blocked = false;        /* more may be there (or we stopped reading) */
    return true;
}

static void
arm_timer(struct h2sess *s, double now)
{
    double d = s->lingering ? s->linger_until : h2_conn_deadline(s->h);

    if (s->write_blocked)
        d = AC_MIN(d, s->t_blocked + s->w->cfg->p.send_timeout);
    d = AC_MIN(d, now + 3600);
    s->tmr.repeat = AC_MAX(d - now, 0.001);
    ev_timer_again(s->w->loop, &s->tmr);
}

/* The last frames are out: shut our side, read and drop for LINGER. */
static void
linger_start(struct h2sess *s, double now)
{
    s->lingering = true;
    s->linger_until = now + LINGER;
    if (conn_shutdown(&s->c) != 0)
        s->peer_eof = true;
}

static void
linger_read(struct h2sess *s)
{
    for (int i = 0; i < 16; i++) {
        ssize_t n = conn_read(&s->c, s->rbuf, sizeof(s->rbuf));
        if (n == AC_AGAIN) {
            s->rwant = s->c.want;
            io_want(s, s->rwant);
            return;
        }
        if (n <= 0) {
            s->peer_eof = true;
            return;
        }
    }
    io_want(s, s->c.want ? s->c.want : EV_READ);
}

/*
 * The one driver: read, let the streams run (upcalls happen inside
 * h2_conn_recv / h2_conn_output), write, and again while reading was held
 * back by output that is now out; then set the watcher and the timer.
 */
static void
run(struct h2sess *s)
{
    double now = ev_now(s->w->loop);
    bool ok = true;

    AC_CHECK_OBJ(s, H2SESS_MAGIC);
    if (ev_is_active(&s->flush))
        ev_prepare_stop(s->w->loop, &s->flush);
    if (s->lingering) {
        linger_read(s);
        if (s->peer_eof || now >= s->linger_until)
            sess_close(s);
        return;
    }
    s->in_run = true;
    for (int round = 0; round < 4; round++) {
        if (!(ok = read_in(s, now)) || !(ok = write_out(s, now)))
            break;
        /* the socket is empty, or the output is full (the client is slow
         * to read): wait; else (the read budget ran out, or the output
         * that held reading back is gone) go round */
        if (s->read_blocked || !h2_conn_want_read(s->h) || s->write_more)
            break;
    }
    s->in_run = false;
    if (!ok) {
        s->peer_eof = true;
        sess_close(s);
        return;
    }
    if (h2_conn_finished(s->h)) {
        linger_start(s, now);
        if (s->peer_eof) {
            sess_close(s);
            return;
        }
        linger_read(s);
        arm_timer(s, now);
        return;
    }
    int ev = 0;
    if (h2_conn_want_read(s->h)) {
        ev |= s->read_blocked && s->rwant ? s->rwant : EV_READ;
        /* not blocked: bytes may wait inside OpenSSL, where no readiness
         * shows them: come back in this loop iteration */
        if (!s->read_blocked)
            ev_prepare_start(s->w->loop, &s->flush);
    }
    if (s->write_blocked)
        ev |= s->wwant ? s->wwant : EV_WRITE;
    else if (s->write_more)
        ev |= EV_WRITE;             /* writable: the next loop iteration goes on */
    io_want(s, ev);
    arm_timer(s, now);
}

static void
on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct h2sess *s = AC_CONTAINER_OF(io, struct h2sess, io);

    (void)loop;
    (void)revents;
    s->read_blocked = false;
    run(s);
}

static void
on_flush(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct h2sess *s = AC_CONTAINER_OF(p, struct h2sess, flush);

    (void)loop;
    (void)revents;
    run(s);
}

static void
on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct h2sess *s = AC_CONTAINER_OF(t, struct h2sess, tmr);
    double now = ev_now(loop);

    (void)revents;
    ev_timer_stop(loop, t);
    if (s->lingering) {
        sess_close(s);
        return;
    }
    if (s->write_blocked && now >= s->t_blocked + s->w->cfg->p.send_timeout) {
        /* the client does not read: nothing more can reach it */
        STAT_INC(s->w, client_timeout);
        log_msg(LOG_DEBUG, "client %s: HTTP/2 connection not read for send_timeout",
                s->meta.client_ip);
        sess_close(s);
        return;
    }
    h2_conn_tick(s->h, now);
    run(s);
}

static struct h2w *
h2w_of(struct wrk *w)
{
    AC_CHECK_OBJ(w->h2, H2W_MAGIC);
    return w->h2;
}

/* End the connection now: requests still on it are detached (h2_conn_free
 * tells every stream), the socket closed. */
static void
sess_close(struct h2sess *s)
{
    struct wrk *w = s->w;
    struct h2w *hw = h2w_of(w);

    AC_CHECK_OBJ(s, H2SESS_MAGIC);
    AC_ASSERT(!s->in_run);
    ev_io_stop(w->loop, &s->io);
    ev_timer_stop(w->loop, &s->tmr);
    ev_prepare_stop(w->loop, &s->flush);
    /* streams cut short see an unclean close, not a complete body */
    if (h2_conn_nstreams(s->h) > 0)
        tls_conn_abort(&s->c);
    h2_conn_free(&s->h);
    conn_close(&s->c);
    free(s->fields);
    while (s->xpool != NULL) {
        struct h2x *hx = s->xpool;
        s->xpool = hx->pool_next;
        hx_destroy(hx);
    }
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        hw->list = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    wrk_task_del(w, &s->task);
    s->magic = 0;
    free(s);
    wrk_maybe_done(w);
}

static void
task_drain(struct wrk_task *t)
{
    struct h2sess *s = AC_CONTAINER_OF(t, struct h2sess, task);

    /* graceful: GOAWAY, streams in flight finish, then the connection */
    if (!s->lingering)
        h2_conn_goaway(s->h, ev_now(s->w->loop));
    kick(s);
}

static void
task_kill(struct wrk_task *t)
{
    sess_close(AC_CONTAINER_OF(t, struct h2sess, task));
}

static const struct wrk_task_ops task_ops = {
    .name = "h2",
    .drain = task_drain,
    .kill = task_kill,
};

void
h2x_accept(struct wrk *w, struct conn *c, const struct req_meta *meta, const char *pre, size_t n)
{
    struct h2w *hw = h2w_of(w);
    struct h2sess *s = ac_xcalloc(1, sizeof(*s));
    struct h2_settings set;
    double now = ev_now(w->loop);

    s->magic = H2SESS_MAGIC;
    s->w = w;
    s->c = *c;
    c->fd = -1;
    c->priv = NULL;
    c->ops = &conn_plain_ops;
    s->meta = *meta;
    s->meta.conn = &s->c;
    h2x_settings(w->cfg, &set);
    s->h = h2_conn_new(&set, &sess_ops, s, now);
    AC_NOTNULL(s->h);               /* only out of memory fails */
    s->task.ops = &task_ops;
    wrk_task_add(w, &s->task);
    s->next = hw->list;
    if (hw->list != NULL)
        hw->list->prev = s;
    hw->list = s;
    ev_io_init(&s->io, on_io, s->c.fd, 0);
    ev_init(&s->tmr, on_timer);
    ev_prepare_init(&s->flush, on_flush);
    STAT_INC(w, h2_conn);
    if (n > 0)
        (void)h2_conn_recv(s->h, pre, n, now);
    if (w->stopping)
        h2_conn_goaway(s->h, now);
    run(s);
}

/* ------------------------------------------------------------ workers */

static void
on_reload(struct ev_loop *loop, ev_async *a, int revents)
{
    struct h2w *hw = AC_CONTAINER_OF(a, struct h2w, reload);

    (void)revents;
    for (struct h2sess *s = hw->list; s != NULL; s = s->next) {
        if (!s->lingering) {
            h2_conn_goaway(s->h, ev_now(loop));
            kick(s);
        }
    }
}

void
h2x_worker_init(struct wrk *w)
{
    struct h2w *hw = ac_xcalloc(1, sizeof(*hw));

    hw->magic = H2W_MAGIC;
    hw->w = w;
    ev_async_init(&hw->reload, on_reload);
    ev_async_start(w->loop, &hw->reload);
    w->h2 = hw;
}

void
h2x_worker_fini(struct wrk *w)
{
    struct h2w *hw = w->h2;

    if (hw == NULL)
        return;
    AC_CHECK_OBJ(hw, H2W_MAGIC);
    AC_ASSERT(hw->list == NULL);
    ev_async_stop(w->loop, &hw->reload);
    hw->magic = 0;
    free(hw);
    w->h2 = NULL;
}

void
h2x_reload_all(struct wrk *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (ws[i].h2 != NULL)
            ev_async_send(ws[i].loop, &ws[i].h2->reload);
}
