/*
 * h1.c -- the HTTP/1.1 transport (h1.h): one client connection, its own
 * state machine (TLS handshake, head, a request in the request machine,
 * tunnel, lingering close), and the xport ops its requests write through.
 *
 * Callbacks (the socket, the timer) only record what happened and call
 * h1_drive(), or, while a request runs, resume it when what it waits for
 * (output drained, body bytes) has happened.
 */
#include "h1.h"

#include "conn.h"
#include "h1_parse.h"
#include "h2x.h"
#include "http.h"
#include "pool.h"
#include "req.h"
#include "tls.h"
#include "tunnel.h"
#include "xport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define H1_STATES(X) \
    X(H_TLS)        /* TLS handshake (tls listeners) */ \
    X(H_HEAD)       /* waiting for / parsing a request head */ \
    X(H_REQ)        /* a request runs in the request machine */ \
    X(H_TUNNEL)     /* upgraded or piped: bytes both ways */ \
    X(H_CLOSE)      /* lingering close: shut our side, drain the client */ \
    X(H_ABORT)      /* cut short: close now (no close_notify) */

enum h1_state {
#define X(s) s,
    H1_STATES(X)
#undef X
    H__MAX
};

enum h1_step { H_MORE, H_WAIT, H_DONE };

/* Output queue: iovecs over memory that stays put until written (the
 * request's head and body bytes, our own framing). */
#define H1_NIOV 24

struct h1_conn {
    unsigned magic;
#define H1_CONN_MAGIC 0x5e3c7a19
    enum h1_state state;
    struct wrk *w;
    struct wrk_task task;
    struct conn c;
    ev_io io;
    int want;                       /* events the connection waits for */
    ev_timer tmr;                   /* the one timer, re-armed per wait */
    bool timed_out;
    bool in_drive;
    struct req_meta meta;
    struct xport xp;
    struct req *req;                /* the request running, or NULL */

    /* input */
    struct ac_iobuf rbuf;
    bool client_eof;
    double head_start;              /* first byte of the current head arrived */
    struct h1_header *hdrs;         /* max_headers entries: the head being parsed */
    struct h1_request hr;
    size_t head_len;                /* bytes of rbuf the head occupies */
    bool head_copied;               /* the request's slices rebased into headcopy */
    struct ac_buf headcopy;
    bool keepalive;                 /* the connection may carry another request */
    bool http10;                    /* an HTTP/1.0 client: no chunked framing */
    bool shut;                      /* lingering close: our side is shut */
    bool not_h2;                    /* the first bytes were not the h2c preface */
    bool poll_first;                /* wait for readiness before the next read: it
                                     * would find nothing (saves a syscall) */

    /* the request body */
    enum h1_body body;
    uint64_t body_left;             /* H1_BODY_LENGTH: bytes not yet taken */
    struct h1_chunked chunk;
    size_t body_pending;            /* validated bytes at the head of rbuf, not consumed */
    size_t body_scan;               /* chunked: validated bytes after them */
    bool body_checked;              /* chunked: the first chunk-size line was valid */
    double body_window_start;
    uint64_t body_window_bytes;
    int body_err;                   /* sticky body_read() error */
    bool body_wait;                 /* the request waits for body bytes */

    /* output */
    struct iovec iov[H1_NIOV];
    int niov;
    bool out_wait;                  /* the request waits for the queue to drain */
    bool dead;                      /* a write failed: the client is gone */
    bool chunked_out;               /* this response is chunked */
    char status_buf[16];
    char chunkhdr[24];

    /* tunnel */
    struct oconn *toc;
    int owant;
    struct ac_iobuf trelay;         /* origin -> client */
    struct tunnel tun;
};

typedef enum h1_step h1_step_f(struct h1_conn *c);
static h1_step_f step_tls, step_head, step_req, step_tunnel, step_close, step_abort;
static h1_step_f to_h2;

static h1_step_f *const steps[H__MAX] = {
    [H_TLS] = step_tls,
    [H_HEAD] = step_head,
    [H_REQ] = step_req,
    [H_TUNNEL] = step_tunnel,
    [H_CLOSE] = step_close,
    [H_ABORT] = step_abort,
};

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char status_prefix[] = "HTTP/1.1 ";

static void h1_drive(struct h1_conn *c);
static void h1_free(struct h1_conn *c);

/* --------------------------------------------------------- plumbing */

static void
h1_want(struct h1_conn *c, int ev)
{
    if (c->c.fd >= 0)
        wrk_io_want(c->w->loop, &c->io, c->c.fd, &c->want, ev);
}

static void
h1_timer(struct h1_conn *c, double seconds)
{
    c->timed_out = false;
    c->tmr.repeat = seconds > 0.001 ? seconds : 0.001;
    ev_timer_again(c->w->loop, &c->tmr);
}

static void
h1_timer_stop(struct h1_conn *c)
{
    ev_timer_stop(c->w->loop, &c->tmr);
    c->timed_out = false;
}

static void
iov_add(struct h1_conn *c, const void *p, size_t len)
{
    AC_ASSERT(c->niov < H1_NIOV);
    if (len == 0)
        return;
    if (c->niov > 0) {
        /* a stored status line and its fields are one run of memory */
        struct iovec *last = &c->iov[c->niov - 1];
        if ((const char *)last->iov_base + last->iov_len == (const char *)p) {
            last->iov_len += len;
            return;
        }
    }
    c->iov[c->niov].iov_base = (void *)(uintptr_t)p;
    c->iov[c->niov].iov_len = len;
    c->niov++;
}

/* Write the output queue: AC_OK when empty, AC_AGAIN when the socket is
 * full (watcher and send timer set), AC_ECLOSED when the client is gone. */
static int
flush(struct h1_conn *c)
{
    while (c->niov > 0) {
        ssize_t n = conn_writev(&c->c, c->iov, c->niov);
        if (n == AC_AGAIN) {
            h1_want(c, c->c.want);
            h1_timer(c, c->w->cfg->p.send_timeout);
            return AC_AGAIN;
        }
        if (n < 0) {
            c->dead = true;
            c->niov = 0;
            return AC_ECLOSED;
        }
        size_t left = (size_t)n;
        int i = 0;
        while (i < c->niov && left >= c->iov[i].iov_len)
            left -= c->iov[i++].iov_len;
        if (i < c->niov) {
            c->iov[i].iov_base = (char *)c->iov[i].iov_base + left;
            c->iov[i].iov_len -= left;
        }
        memmove(c->iov, c->iov + i, sizeof(c->iov[0]) * (size_t)(c->niov - i));
        c->niov -= i;
    }
    return AC_OK;
}

/* Is the request body still (partly) unread?  Then the connection cannot be
 * reused: the next bytes would be taken for a request. */
static bool
body_unread(const struct h1_conn *c)
{
    if (c->body == H1_BODY_LENGTH)
        return c->body_left > 0 || c->body_pending > 0;
    if (c->body == H1_BODY_CHUNKED)
        return !h1_chunked_done(&c->chunk) || c->body_pending > 0 || c->body_scan > 0;
    return false;
}

/* The request will read its body (or the connection becomes a tunnel):
 * move the head out of the read buffer so the buffer can carry other
 * bytes, and rebase the request's slices into the copy.  Slices the
 * policy moved into its arena are left alone. */
static void
copy_head(struct h1_conn *c)
{
    struct h1_request *h = req_http(c->req);
    const char *old = ac_iobuf_head(&c->rbuf);
    const char *neu;

    if (c->head_copied)
        return;
#define REBASE(sl) do { if ((sl).p >= old && (sl).p < old + c->head_len) (sl).p = neu + ((sl).p - old); } while (0)
    ac_buf_reset(&c->headcopy);
    ac_buf_cat(&c->headcopy, old, c->head_len);
    neu = c->headcopy.p;
    REBASE(h->method);
    REBASE(h->target);
    REBASE(h->path);
    REBASE(h->host);
    for (unsigned i = 0; i < h->nhdrs; i++) {
        REBASE(h->hdrs[i].name);
        REBASE(h->hdrs[i].value);
    }
#undef REBASE
    ac_iobuf_consume(&c->rbuf, c->head_len);
    c->head_copied = true;
}

/* ------------------------------------------------------ xport ops */

/* The status line: a stored one as it is ("HTTP/1.1 " + "200 OK\r\n"),
 * else made from status and reason. */
static void
queue_status(struct h1_conn *c, const struct xp_head *h)
{
    if (h->line.len > 0) {
        iov_add(c, status_prefix, sizeof(status_prefix) - 1);
        iov_add(c, h->line.p, h->line.len);
        return;
    }
    int n = snprintf(c->status_buf, sizeof(c->status_buf), "HTTP/1.1 %03u ", h->status);
    iov_add(c, c->status_buf, (size_t)n);
    iov_add(c, h->reason.p, h->reason.len);
    iov_add(c, "\r\n", 2);
}

static int
xp_interim(struct xport *x, const struct xp_head *h)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    if (c->dead)
        return AC_ECLOSED;
    queue_status(c, h);
    for (unsigned i = 0; i < h->nblk; i++)
        iov_add(c, h->blk[i].p, h->blk[i].len);
    iov_add(c, "\r\n", 2);
    int r = flush(c);
    if (r == AC_AGAIN)
        c->out_wait = true;
    return r;
}

/*
 * The final head, queued for the first write.  Here the connection
 * decides its framing and its future: chunked for a body of unknown length
 * to an HTTP/1.1 client, the close for 1.0; keep-alive unless the client
 * or the request asked for a close, the body was left unread, or the
 * worker is stopping.
 */
static int
xp_head(struct xport *x, const struct xp_head *h)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);
    const char *e;

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    if (c->dead)
        return AC_ECLOSED;
    c->chunked_out = h->body == XP_BODY_STREAM && !c->http10 && h->status != 101;
    if (h->close || c->w->stopping || body_unread(c) ||
        (h->body == XP_BODY_STREAM && c->http10))
        c->keepalive = false;
    queue_status(c, h);
    for (unsigned i = 0; i < h->nblk; i++)
        iov_add(c, h->blk[i].p, h->blk[i].len);
    /* framing and connection fields end the head: constant strings */
    if (h->status == 101)
        e = "\r\n";                 /* the connection becomes a tunnel */
    else if (c->chunked_out && c->keepalive)
        e = "Transfer-Encoding: chunked\r\n\r\n";
    else if (c->chunked_out)
        e = "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    else if (!c->keepalive)
        e = "Connection: close\r\n\r\n";
    else if (c->hr.flags & H1_F_HTTP10)
        e = "Connection: keep-alive\r\n\r\n";
    else
        e = "\r\n";
    iov_add(c, e, strlen(e));
    return AC_OK;
}

static int
xp_write(struct xport *x, const struct iovec *iov, int n, unsigned flags)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);
    size_t total = 0;
    int r;

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    AC_ASSERT(n <= XP_MAX_IOV);
    if (c->dead)
        return AC_ECLOSED;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (c->chunked_out && total > 0) {
        int hl = snprintf(c->chunkhdr, sizeof(c->chunkhdr), "%zx\r\n", total);
        iov_add(c, c->chunkhdr, (size_t)hl);
    }
    for (int i = 0; i < n; i++)
        iov_add(c, iov[i].iov_base, iov[i].iov_len);
    if (c->chunked_out && total > 0)
        iov_add(c, "\r\n", 2);
    if ((flags & XP_W_END) && c->chunked_out)
        iov_add(c, "0\r\n\r\n", 5);
    r = flush(c);
    if (r == AC_AGAIN)
        c->out_wait = true;
    return r;
}

static int
xp_body_begin(struct xport *x)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);
    size_t relay = (size_t)c->w->cfg->p.relay_buffer;

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    if (c->dead)
        return AC_ECLOSED;
    copy_head(c);
    if (c->rbuf.cap < relay) {
        ac_iobuf_compact(&c->rbuf);
        ac_iobuf_grow(&c->rbuf, relay);
    }
    /* sent before the first body read (or before an answer that comes
     * first): the client waits for it */
    if (c->hr.flags & H1_F_EXPECT_100)
        iov_add(c, continue_100, sizeof(continue_100) - 1);
    c->body_window_start = ev_now(c->w->loop);
    c->body_window_bytes = 0;
    return AC_OK;
}

/* Wait for body bytes: the first chunk-size line within
 * timeout_req_head, then a window of 5 s for the rate check. */
static ssize_t
body_wait(struct h1_conn *c)
{
    h1_want(c, c->c.want);
    if (!c->body_checked && c->body == H1_BODY_CHUNKED) {
        h1_timer(c, c->w->cfg->p.timeout_req_head);
    } else {
        double left = 5.0 - (ev_now(c->w->loop) - c->body_window_start);
        h1_timer(c, left > 0 ? left : 0.001);
    }
    c->body_wait = true;
    return AC_AGAIN;
}

/*
 * The request body as received, once validated: for chunked, the
 * client's framing goes to the origin as it came (XP_F_RAW_CHUNKED), but
 * only bytes the decoder has accepted; `pending` counts validated bytes at
 * the head of rbuf not consumed yet, `scan` validated bytes after them.
 */
static ssize_t
xp_body_read(struct xport *x, struct ac_slice *out)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);
    struct ac_iobuf *b = &c->rbuf;
    ssize_t n;

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    if (c->niov > 0) {              /* "100 Continue" first: the client waits for it */
        int r = flush(c);
        if (r == AC_AGAIN) {
            c->out_wait = true;
            return AC_AGAIN;
        }
        if (r != AC_OK)
            return AC_ECLOSED;
    }
    if (c->body_err != 0)
        return c->body_err;
    for (;;) {
        if (c->body_pending > 0) {
            *out = AC_SLICE(ac_iobuf_head(b), c->body_pending);
            return (ssize_t)c->body_pending;
        }
        bool done = c->body == H1_BODY_LENGTH ? c->body_left == 0 : h1_chunked_done(&c->chunk);
        if (done && c->body_scan > 0) {
            /* validated but not taken yet (a small body that came with
             * its head, decoded whole by the first check) */
            c->body_pending = c->body_scan;
            c->body_scan = 0;
            continue;
        }
        if (done)
            return 0;
        if (ac_iobuf_len(b) > c->body_scan) {
            if (c->body == H1_BODY_LENGTH) {
                size_t take = (size_t)AC_MIN((uint64_t)ac_iobuf_len(b), c->body_left);
                c->body_left -= take;
                c->body_pending = take;
                continue;
            }
            struct ac_slice data;
            long k = h1_chunked_decode(&c->chunk, ac_iobuf_head(b) + c->body_scan,
                                       ac_iobuf_len(b) - c->body_scan, &data);
            if (k < 0)
                return c->body_err = AC_EPROTO;
            c->body_scan += (size_t)k;
            if (!c->body_checked) {
                if (c->chunk.total > 0 || h1_chunked_done(&c->chunk) ||
                    c->chunk.state >= H1_CS_DATA)
                    c->body_checked = true;
                else if (k > 0)
                    continue;
                else
                    goto read_more;
            }
            if (h1_chunked_done(&c->chunk) || c->body_scan == ac_iobuf_len(b) ||
                c->body_scan >= 16384) {
                c->body_pending = c->body_scan;
                c->body_scan = 0;
            }
            if (k == 0 && c->body_pending == 0)
                goto read_more;
            continue;
        }
read_more:
        if (c->client_eof)
            return AC_ECLOSED;
        if (ac_iobuf_len(b) == 0) {
            b->start = b->end = 0;
        } else if (ac_iobuf_room(b) == 0) {
            ac_iobuf_compact(b);
            if (ac_iobuf_room(b) == 0)
                return c->body_err = AC_EPROTO;     /* a framing line that never ends */
        }
        n = conn_read(&c->c, b->data + b->end, ac_iobuf_room(b));
        if (n > 0) {
            b->end += (size_t)n;
            c->body_window_bytes += (uint64_t)n;
            continue;
        }
        if (n == AC_AGAIN)
            return body_wait(c);
        c->client_eof = true;
        return AC_ECLOSED;
    }
}

static void
xp_body_consume(struct xport *x, size_t n)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    AC_ASSERT(n <= c->body_pending);
    ac_iobuf_consume(&c->rbuf, n);
    c->body_pending -= n;
}

static void on_origin_io(struct ev_loop *loop, ev_io *io, int revents);

static int
xp_tunnel(struct xport *x, const struct xp_head *h, struct oconn *oc, struct ac_iobuf *relay)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    c->toc = oc;
    oc->owner = c;
    ev_io_stop(c->w->loop, &oc->io);
    ev_set_cb(&oc->io, on_origin_io);
    c->owant = 0;
    c->trelay = *relay;
    memset(relay, 0, sizeof(*relay));
    copy_head(c);                   /* rbuf now carries client -> origin bytes */
    if (h != NULL)
        (void)xp_head(x, h);
    c->tun = (struct tunnel){ .client = &c->c, .origin = &oc->c, .up = &c->rbuf,
                              .down = &c->trelay, .client_eof = c->client_eof };
    c->state = H_TUNNEL;
    if (c->dead)
        return AC_ECLOSED;
    /* Run from the loop, not inside the request's call: writable fires
     * at once (step_tunnel flushes the head and starts pumping). */
    h1_want(c, EV_READ | EV_WRITE);
    return AC_OK;
}

/* The request is over: the next one on this connection, or the end. */
static void
xp_done(struct xport *x, enum xp_end how)
{
    struct h1_conn *c = AC_CONTAINER_OF(x, struct h1_conn, xp);

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    c->req = NULL;
    c->out_wait = c->body_wait = false;
    /* the timer is left running: every wait that follows re-arms it, and
     * it means nothing between requests (on_timer looks at the state) */
    if (how != XP_END_OK || c->dead || c->state == H_TUNNEL) {
        c->state = H_ABORT;
    } else if (!c->keepalive || c->w->stopping || body_unread(c)) {
        c->state = H_CLOSE;
    } else {
        /* the next request: pipelined bytes stay in rbuf */
        if (!c->head_copied && c->head_len > 0)
            ac_iobuf_consume(&c->rbuf, AC_MIN(c->head_len, ac_iobuf_len(&c->rbuf)));
        c->head_len = 0;
        c->head_copied = false;
        c->body = H1_BODY_NONE;
        c->body_left = 0;
        c->body_pending = c->body_scan = 0;
        c->body_checked = false;
        c->body_err = 0;
        c->chunked_out = false;
        /* An idle keep-alive connection keeps no big buffers: a read
         * buffer grown for a request body shrinks back when it is empty.
         * (With TLS, handshakes dirty the heap, so a kept buffer costs its
         * full size in RSS: 57 KiB per idle TLS connection before, nginx
         * 19 KiB.) */
        if (ac_iobuf_len(&c->rbuf) == 0 && c->rbuf.cap > 4096) {
            ac_iobuf_free(&c->rbuf);
            ac_iobuf_init(&c->rbuf, 4096);
        }
        /* TLS may hold decrypted bytes: poll first only when OpenSSL has none */
        c->poll_first = !conn_is_tls(&c->c) || !tls_conn_pending(&c->c);
        c->state = H_HEAD;
    }
    if (!c->in_drive)
        h1_drive(c);
}

static const struct xport_ops h1_xport_ops = {
    .interim = xp_interim,
    .head = xp_head,
    .write = xp_write,
    .body_begin = xp_body_begin,
    .body_read = xp_body_read,
    .body_consume = xp_body_consume,
    .tunnel = xp_tunnel,
    .done = xp_done,
};

/* -------------------------------------------------------- callbacks */

static void
on_client_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct h1_conn *c = AC_CONTAINER_OF(io, struct h1_conn, io);
    struct req *req;

    (void)revents;
    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    if (c->want == 0) {
        ev_io_stop(loop, io);       /* the lazy stop of wrk_io_want() */
        return;
    }
    if (c->state != H_REQ) {
        h1_drive(c);
        return;
    }
    req = c->req;
    AC_NOTNULL(req);
    if (c->niov > 0) {
        int r = flush(c);
        if (r == AC_AGAIN)
            return;
        if (r != AC_OK) {
            /* the client is gone while the request waits on it */
            c->req = NULL;
            c->state = H_ABORT;
            req_detach(req);
            h1_drive(c);
            return;
        }
    }
    /* Wanted no more, but the watcher (and the send timer) stay as they
     * are: a request streaming a body writes again at once, and when it
     * blocks again it wants the same readiness (no epoll_ctl per write);
     * an unwanted event stops the watcher (above), an unwanted timer is
     * ignored (req_timeout). */
    c->want = 0;
    if (c->out_wait) {
        c->out_wait = false;
        req_resume(req);
    } else if (c->body_wait) {
        c->body_wait = false;
        req_resume(req);
    }
}

/*
 * The timer while a request runs: a client that does not take the answer
 * within send_timeout is gone (the request goes on without it only when
 * it fills an object for others); one that sends its body too slowly gets
 * 408 through the request (body_read() says AC_ETIMEDOUT).
 */
static void
req_timeout(struct h1_conn *c)
{
    const struct config_params *p = &c->w->cfg->p;
    struct req *req = c->req;

    if (c->out_wait) {
        STAT_INC(c->w, client_timeout);
        log_msg(LOG_DEBUG, "client %s: not reading its answer for %gs, closing", c->meta.client_ip,
                p->send_timeout);
        c->req = NULL;
        c->state = H_ABORT;
        req_detach(req);
        h1_drive(c);
        return;
    }
    if (!c->body_wait)
        return;
    if (!c->body_checked && c->body == H1_BODY_CHUNKED) {
        c->body_err = AC_ETIMEDOUT;
    } else {
        double now = ev_now(c->w->loop), span = now - c->body_window_start;
        if (span > 0 && (double)c->body_window_bytes < p->min_body_rate * span) {
            LOG_I("client %s: request body slower than %g bytes/s, closing", c->meta.client_ip,
                  p->min_body_rate);
            c->body_err = AC_ETIMEDOUT;
        } else {
            c->body_window_start = now;     /* fast enough: a new window */
            c->body_window_bytes = 0;
            h1_timer(c, 5.0);
            return;
        }
    }
    c->body_wait = false;
    req_resume(req);
}

static void
on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct h1_conn *c = AC_CONTAINER_OF(t, struct h1_conn, tmr);

    (void)revents;
    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    ev_timer_stop(loop, t);
    c->timed_out = true;
    if (c->state == H_REQ) {
        c->timed_out = false;
        req_timeout(c);
        return;
    }
    h1_drive(c);
}

static void
on_origin_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct oconn *oc = AC_CONTAINER_OF(io, struct oconn, io);
    struct h1_conn *c = oc->owner;

    (void)revents;
    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    if (c->owant == 0) {
        ev_io_stop(loop, io);
        return;
    }
    h1_drive(c);
}

/* ------------------------------------------------------------ steps */

static void
h1_drive(struct h1_conn *c)
{
    enum h1_step r;

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    AC_ASSERT(!c->in_drive);
    c->in_drive = true;
    do {
        AC_CHECK_OBJ(c, H1_CONN_MAGIC);
        AC_ASSERT(c->state < H__MAX);
        r = steps[c->state](c);
    } while (r == H_MORE);
    c->in_drive = false;
    if (r == H_DONE)
        h1_free(c);
}

/* Hand a request head (or a refusal) to the request machine. */
static struct req *
new_req(struct h1_conn *c)
{
    static const struct ac_slice proto[2] = { { "HTTP/1.0", 8 }, { "HTTP/1.1", 8 } };

    c->xp.proto = proto[c->hr.minor >= 1 ? 1 : 0];
    c->req = req_new(c->w, &c->xp, &c->meta);
    c->state = H_REQ;
    c->out_wait = c->body_wait = c->dead = false;
    return c->req;
}

/* A request refused before it had a head: the answer, then the close.
 * why/off: the rule and the offending byte, for the access log. */
static enum h1_step
refuse(struct h1_conn *c, int status, const char *body, const char *why, size_t off)
{
    struct req *req;

    c->keepalive = false;
    memset(&c->hr, 0, sizeof(c->hr));
    c->hr.hdrs = c->hdrs;
    req = new_req(c);
    req_start_error(req, status, body, why, off);
    return H_MORE;
}

/* Map a parse failure to the answer RFC 9112 asks for. */
static enum h1_step
reject(struct h1_conn *c)
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
    unsigned e = (unsigned)c->hr.error;
    const char *why = c->hr.reason ? c->hr.reason : "bad request";
    size_t off = c->hr.reason ? c->hr.err_off : SIZE_MAX;
    char body[160];

    if (e >= AC_ARRAY_LEN(map))
        e = H1_ERR_BAD;
    STAT_INC(c->w, client_req_bad);
    /* Say why, to the client (the body), the access log (BAD:<rule>@<off>)
     * and, at -d, the error log with the bytes around the offset. */
    log_bad_request(c->meta.client_ip, map[e].status, c->hr.reason, off, ac_iobuf_head(&c->rbuf),
                    ac_iobuf_len(&c->rbuf));
    http_bad_request_body(body, sizeof(body), map[e].body, c->hr.reason, off);
    /* Nothing of a rejected request is trusted, not even its method. */
    c->head_len = ac_iobuf_len(&c->rbuf);
    return refuse(c, map[e].status, body, why, off);
}

/*
 * The TLS handshake of a client connection, inside the worker's loop like
 * any other step: OpenSSL says which readiness it waits for (c.want), and
 * the whole handshake must finish within tls_handshake_timeout.  A client
 * that speaks plain HTTP to the TLS port gets a plain 400 (as nginx does);
 * any other failure closes the connection.  Failures are counted and
 * logged at debug level (-d): they are the client's business.
 */
static enum h1_step
step_tls(struct h1_conn *c)
{
    const struct config *cfg = c->w->cfg;
    int r;

    if (!conn_is_tls(&c->c))
        return H_DONE;              /* tls_server_attach failed */
    if (c->timed_out) {
        STAT_INC(c->w, tls_handshake_fail);
        log_msg(LOG_DEBUG, "client %s: TLS handshake timed out", c->meta.client_ip);
        return H_DONE;
    }
    if (c->w->stopping)
        return H_DONE;
    r = tls_handshake(&c->c);
    if (r == AC_AGAIN) {
        h1_want(c, c->c.want);
        h1_timer(c, c->head_start + cfg->p.tls_handshake_timeout - ev_now(c->w->loop));
        return H_WAIT;
    }
    if (r != 0) {
        STAT_INC(c->w, tls_handshake_fail);
        log_msg(LOG_DEBUG, "client %s: TLS handshake failed: %s", c->meta.client_ip,
                tls_conn_error(&c->c));
        if (!tls_conn_plain_http(&c->c))
            return H_DONE;
        /* The rest of the conversation is plain: answer, then close. */
        conn_close_transport(&c->c);
        c->meta.tls = false;
        c->head_len = 0;
        return refuse(c, 400, "The plain HTTP request was sent to HTTPS port\n",
                      "plain HTTP on a TLS port", SIZE_MAX);
    }
    STAT_INC(c->w, tls_handshake);
    if (tls_conn_resumed(&c->c))
        STAT_INC(c->w, tls_resumed);
    h1_timer_stop(c);
    if (tls_conn_alpn_h2(&c->c) && h2x_enabled(cfg) && !c->meta.admin)
        return to_h2(c);
    c->state = H_HEAD;
    return H_MORE;
}

/* HTTP/2 takes the connection over (client/h2x.c), with what was read. */
static enum h1_step
to_h2(struct h1_conn *c)
{
    ev_io_stop(c->w->loop, &c->io);
    ev_timer_stop(c->w->loop, &c->tmr);
    h2x_accept(c->w, &c->c, &c->meta, ac_iobuf_head(&c->rbuf), ac_iobuf_len(&c->rbuf));
    c->rbuf.start = c->rbuf.end = 0;
    return H_DONE;                  /* c->c is closed (fd -1): nothing of it is ours */
}

/* A plain connection whose first bytes are the h2c preface is HTTP/2 with
 * prior knowledge (RFC 9113 §3.3): 1; a prefix of it: AC_AGAIN (read
 * more before parsing); anything else, and every later head: 0. */
static int
h2_preface(struct h1_conn *c)
{
    const struct ac_iobuf *b = &c->rbuf;
    int r = 0;

    if (c->not_h2 || ac_iobuf_len(b) == 0)
        return 0;
    if (!c->meta.tls && !c->meta.admin && h2x_enabled(c->w->cfg))
        r = h2x_preface(ac_iobuf_head(b), ac_iobuf_len(b));
    if (r == 0)
        c->not_h2 = true;
    return r;
}

/* `Upgrade: h2c` (RFC 7540 §3.2, dropped by RFC 9113) is never honoured:
 * HTTP/2 is by ALPN or prior knowledge only, and an origin must not be
 * asked to switch a connection we would then tunnel. */
static bool
upgrade_h2c(const struct h1_request *hr)
{
    for (unsigned i = 0; i < hr->nhdrs; i++)
        if (ac_slice_caseeq(hr->hdrs[i].name, AC_LIT("Upgrade")) &&
            h1_list_has_token(hr->hdrs[i].value, AC_LIT("h2c")))
            return true;
    return false;
}

/* A whole head is parsed into c->hr: the request machine takes it. */
static enum h1_step
start_request(struct h1_conn *c, size_t head_len)
{
    struct req *req;
    struct h1_request *h;
    struct h1_header *hh;

    c->head_len = head_len;
    STAT_INC(c->w, client_req);
    if ((c->hr.flags & H1_F_UPGRADE) && upgrade_h2c(&c->hr))
        c->hr.flags &= ~H1_F_UPGRADE;   /* answered over HTTP/1.1; Upgrade is hop-by-hop */
    c->keepalive = !(c->hr.flags & H1_F_CLOSE) && !c->w->stopping;
    c->http10 = c->hr.minor < 1 || (c->hr.flags & H1_F_HTTP10);
    c->body = H1_BODY_NONE;
    if (c->hr.body == H1_BODY_LENGTH && c->hr.content_length > 0) {
        c->body = H1_BODY_LENGTH;
        c->body_left = c->hr.content_length;
    } else if (c->hr.body == H1_BODY_CHUNKED) {
        c->body = H1_BODY_CHUNKED;
        h1_chunked_init(&c->chunk);
    }
    req = new_req(c);
    h = req_http(req);
    hh = h->hdrs;
    *h = c->hr;
    h->hdrs = hh;
    memcpy(hh, c->hdrs, sizeof(*hh) * c->hr.nhdrs);
    req_start(req);
    return H_MORE;
}

static enum h1_step
step_head(struct h1_conn *c)
{
    const struct config *cfg = c->w->cfg;
    struct ac_iobuf *b = &c->rbuf;
    ssize_t n;

    if (c->timed_out) {
        STAT_INC(c->w, client_timeout);
        if (ac_iobuf_len(b) == 0)
            return H_DONE;          /* idle keep-alive connection */
        return refuse(c, 408, "Request head not received in time\n",
                      "request head not received in time", SIZE_MAX);
    }
    int pre = h2_preface(c);
    if (pre == 1)
        return to_h2(c);
    if (ac_iobuf_len(b) > 0 && pre == 0) {
        struct h1_limits lim = {
            .max_head = (size_t)cfg->p.max_head_bytes,
            .max_target = (size_t)cfg->p.max_target,
            .max_header_line = (size_t)cfg->p.max_header_line,
            .max_headers = (unsigned)cfg->p.max_headers,
            .strict_target = cfg->p.uri_strict != 0,
        };
        memset(&c->hr, 0, sizeof(c->hr));
        c->hr.hdrs = c->hdrs;
        int r = h1_parse_request(ac_iobuf_head(b), ac_iobuf_len(b), &lim, &c->hr);
        if (r > 0)
            return start_request(c, (size_t)r);
        if (r != AC_AGAIN)
            return reject(c);
    }
    if (c->client_eof || c->w->stopping)
        return H_DONE;
    if (c->poll_first && ac_iobuf_len(b) == 0) {
        /* Just answered: the next request is rarely here yet. */
        c->poll_first = false;
        h1_want(c, EV_READ);
        h1_timer(c, cfg->p.timeout_idle);
        return H_WAIT;
    }
    c->poll_first = false;
    if (ac_iobuf_room(b) == 0) {
        ac_iobuf_compact(b);
        if (ac_iobuf_room(b) == 0) {
            size_t max = (size_t)cfg->p.max_head_bytes + 1024;
            if (b->cap >= max) {
                c->hr.error = H1_ERR_HEAD_TOO_LARGE;
                c->hr.reason = "head too large";
                c->hr.err_off = SIZE_MAX;
                return reject(c);
            }
            ac_iobuf_grow(b, AC_MIN(b->cap * 4, max));
        }
    }
    n = conn_read(&c->c, b->data + b->end, ac_iobuf_room(b));
    if (n > 0) {
        if (ac_iobuf_len(b) == 0)
            c->head_start = ev_now(c->w->loop);
        b->end += (size_t)n;
        return H_MORE;
    }
    if (n == AC_AGAIN) {
        h1_want(c, c->c.want);
        if (ac_iobuf_len(b) == 0)
            h1_timer(c, cfg->p.timeout_idle);
        else
            h1_timer(c, c->head_start + cfg->p.timeout_req_head - ev_now(c->w->loop));
        return H_WAIT;
    }
    c->client_eof = true;
    return H_DONE;
}

/* The request machine has the connection until it calls done(). */
static enum h1_step
step_req(struct h1_conn *c)
{
    (void)c;
    return H_WAIT;
}

static enum h1_step
step_tunnel(struct h1_conn *c)
{
    int cev = 0, oev = 0, r;

    if (c->niov > 0) {              /* the 101 head goes out first */
        r = flush(c);
        if (r == AC_AGAIN)
            return H_WAIT;
        if (r != AC_OK)
            goto over;
    }
    if (c->timed_out)
        goto over;
    r = tunnel_run(&c->tun, &cev, &oev);
    if (r <= 0)
        goto over;
    h1_want(c, cev);
    wrk_io_want(c->w->loop, &c->toc->io, c->toc->c.fd, &c->owant, oev);
    h1_timer(c, c->w->cfg->p.timeout_idle);
    return H_WAIT;
over:
    /* the request ends now (and calls done(): the connection ends) */
    c->client_eof = c->tun.client_eof;
    pool_close(&c->toc);
    c->owant = 0;
    if (c->req != NULL) {
        struct req *req = c->req;
        req_resume(req);
    }
    if (c->state == H_TUNNEL)
        c->state = H_ABORT;
    return H_MORE;
}

/*
 * Close after answering: shut our side, then read and discard what the
 * client still sends for a short while, so our answer is not destroyed by a
 * TCP reset caused by unread request bytes (nginx's lingering close).
 */
static enum h1_step
step_close(struct h1_conn *c)
{
    char sink[4096];
    ssize_t n;

    if (c->client_eof || c->c.fd < 0)
        return H_DONE;
    if (c->timed_out)
        return H_DONE;
    if (!c->shut) {
        c->shut = true;
        if (conn_shutdown(&c->c) != 0)
            return H_DONE;
        h1_timer(c, 2.0);
    }
    for (int i = 0; i < 16; i++) {
        n = conn_read(&c->c, sink, sizeof(sink));
        if (n == AC_AGAIN) {
            h1_want(c, c->c.want);
            return H_WAIT;
        }
        if (n <= 0)
            return H_DONE;
    }
    return H_DONE;
}

static enum h1_step
step_abort(struct h1_conn *c)
{
    (void)c;
    return H_DONE;
}

/* ------------------------------------------------------ life cycle */

/* Dropped in the middle of a request (an origin that cut the body, a
 * timeout, the drain, a tunnel's end): no close_notify, or a client
 * reading a body delimited by the close (HTTP/1.0) would take it for
 * whole. */
static bool
cut_short(const struct h1_conn *c)
{
    return c->state != H_HEAD && c->state != H_TLS && c->state != H_CLOSE;
}

static void
h1_free(struct h1_conn *c)
{
    struct wrk *w = c->w;

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    AC_ASSERT(c->req == NULL);
    ev_io_stop(w->loop, &c->io);
    ev_timer_stop(w->loop, &c->tmr);
    if (c->toc != NULL)
        pool_close(&c->toc);
    if (c->c.fd >= 0 && cut_short(c))
        tls_conn_abort(&c->c);
    if (c->c.fd >= 0)
        conn_close(&c->c);
    ac_iobuf_free(&c->rbuf);
    ac_iobuf_free(&c->trelay);
    ac_buf_free(&c->headcopy);
    free(c->hdrs);
    wrk_task_del(w, &c->task);
    c->magic = 0;
    free(c);
    wrk_maybe_done(w);
}

static void
task_drain(struct wrk_task *t)
{
    struct h1_conn *c = AC_CONTAINER_OF(t, struct h1_conn, task);

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    if ((c->state == H_HEAD || c->state == H_TLS) && ac_iobuf_len(&c->rbuf) == 0 &&
        !c->in_drive)
        h1_free(c);
}

static void
task_kill(struct wrk_task *t)
{
    struct h1_conn *c = AC_CONTAINER_OF(t, struct h1_conn, task);
    struct req *req = c->req;

    AC_CHECK_OBJ(c, H1_CONN_MAGIC);
    AC_ASSERT(!c->in_drive);
    if (req != NULL) {
        c->req = NULL;
        if (c->state == H_REQ)
            c->state = H_ABORT;
        req_detach(req);
    }
    h1_free(c);
}

static const struct wrk_task_ops task_ops = {
    .name = "HTTP/1.1 connection",
    .drain = task_drain,
    .kill = task_kill,
};

void
h1_accept(struct wrk *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
          const struct config_addr *addr)
{
    const struct config *cfg = w->cfg;
    struct h1_conn *c;

    if (w->ntasks >= (unsigned)cfg->p.max_connections) {
        /* Refuse gracefully: a short answer, then close, never a hang. */
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\nRetry-After: 1\r\n\r\n";
        if (!addr->tls)             /* a TLS client would read garbage: just close */
            (void)!write(fd, busy, sizeof(busy) - 1);
        close(fd);
        STAT_INC(w, client_conn_refused);
        return;
    }
    c = ac_xcalloc(1, sizeof(*c));
    c->magic = H1_CONN_MAGIC;
    c->w = w;
    c->task.ops = &task_ops;
    conn_init(&c->c, fd, &conn_plain_ops);
    req_meta_init(&c->meta, peer, peerlen, &c->c, addr->admin);
    c->xp.magic = XPORT_MAGIC;
    c->xp.ops = &h1_xport_ops;
    c->xp.flags = XP_F_RAW_CHUNKED;
    ac_iobuf_init(&c->rbuf, 4096);
    ac_buf_init(&c->headcopy, 0, 0);
    c->hdrs = ac_xcalloc((size_t)cfg->p.max_headers, sizeof(*c->hdrs));
    c->hr.hdrs = c->hdrs;
    ev_io_init(&c->io, on_client_io, fd, 0);
    ev_init(&c->tmr, on_timer);
    c->state = H_HEAD;
    if (addr->tls) {
        if (tls_server_attach(&c->c) != 0) {
            LOG_W("client %s: cannot start a TLS session", c->meta.client_ip);
            STAT_INC(w, tls_handshake_fail);
        }
        c->meta.tls = true;         /* attach failed: closed by step_tls */
        c->state = H_TLS;
        c->head_start = ev_now(w->loop);
    }
    wrk_task_add(w, &c->task);
    STAT_INC(w, client_conn);
    if (c->state == H_TLS && conn_is_tls(&c->c)) {
        /* The ClientHello is rarely here yet: wait for it (saves a read). */
        h1_want(c, EV_READ);
        h1_timer(c, cfg->p.tls_handshake_timeout);
        return;
    }
    h1_drive(c);
}
