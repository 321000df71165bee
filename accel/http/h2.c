/*
 * h2.c -- the HTTP/2 server connection over libnghttp2 (see h2.h).
 *
 * libnghttp2 parses and writes frames, keeps HPACK and the stream states
 * and enforces what RFC 9113 makes an error (it answers those with the
 * RST_STREAM or GOAWAY the RFC names).  What it leaves to us and we do
 * here: the budgets that stop abuse the protocol allows (rapid reset,
 * SETTINGS/PING/empty-frame floods, headers past our limits, requests that
 * keep working after their stream was reset), the request head as
 * HTTP/1.1 semantics (cookies joined, Host from :authority), request
 * bodies held within the window we advertise, and response bodies read in
 * place from the caller's memory, with one copy into a bounded output
 * buffer.
 *
 * The library's callbacks only record what happened on a stream (pending
 * event bits, a dispatch queue); dispatch() runs the upcalls once the
 * library returned, so an upcall may call back into the library.
 */
#include "h2.h"

#include "buf.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>

#define H2_CONN_MAGIC 0x2f6c91d4
#define H2_STREAM_MAGIC 0x84b3e07a

/* Pending events of a stream, delivered by dispatch() in this order. */
#define EV_REQUEST 0x1u
#define EV_BODY 0x2u
#define EV_WRITABLE 0x4u
#define EV_CLOSE 0x8u

/* Pseudo-header fields of a request (RFC 9113 §8.3.1). */
enum { PS_METHOD, PS_SCHEME, PS_AUTHORITY, PS_PATH, PS__MAX };

/* The largest DATA frame we make: what every client accepts, and what
 * keeps one frame a small part of the output buffer. */
#define DATA_FRAME_MAX 16384
/* Budgets (max_resets, ...) count events in any 10 s. */
#define BUDGET_PERIOD 10.0
/* Freed streams a connection keeps for its next ones. */
#define SPOOL_MAX 16
/* The second GOAWAY of a graceful end, if the client does not answer our
 * PING sooner. */
#define GOAWAY_GRACE 1.0

/* A token bucket: `burst` tokens, refilled at burst / BUDGET_PERIOD per
 * second; an event takes one. */
struct budget {
    double tokens;
    double t;
};

/* A request field as offsets into the stream's head buffer, which may move
 * while it grows. */
struct fld {
    uint32_t noff, nlen, voff, vlen;
};

struct h2_stream {
    unsigned magic;
    int32_t id;
    struct h2_conn *h;
    void *ud;                       /* the upper layer's handle */
    struct h2_stream *next, *prev;  /* the connection's streams */
    struct h2_stream *qnext;        /* dispatch queue */
    bool queued;
    unsigned pending;               /* EV_* bits */
    bool in_upcall;

    bool head_done;                 /* the request head is complete */
    bool handed;                    /* on_request() took it */
    bool released;                  /* the upper layer let it go (or never had it) */
    bool discard;                   /* request body bytes are dropped (no reader) */
    bool closed;                    /* closed on the wire */
    uint32_t close_code;
    bool body_end;                  /* END_STREAM received */
    bool head_end;                  /* END_STREAM was on the HEADERS: no body.
                                     * Kept apart from body_end: the head is
                                     * built when its event is delivered, and
                                     * a DATA frame with END_STREAM read in
                                     * the same packet may have come by then */
    bool responded;                 /* a final response head was submitted */
    bool has_body;                  /* ... with a body */
    bool complete;                  /* the whole response is handed to the library */
    bool end_sent;                  /* END_STREAM went out */
    bool rst_after_end;             /* RST_STREAM NO_ERROR once END_STREAM is out */
    bool deferred;                  /* the data provider waits for a piece */

    /* request head */
    int reject;                     /* 400, 414 or 431: answered by this layer */
    const char *why;
    double t_head;
    struct ac_buf hb;
    struct fld *fld;
    unsigned nfld, capfld;
    unsigned nreg;                  /* regular fields other than cookie */
    int ps[PS__MAX];                /* index into fld, -1: absent */
    size_t hsize;                   /* RFC 9113 §6.5.2 size of the fields so far */
    struct h2_request rq;
    struct h1_header *hdrs;
    unsigned caphdrs;

    /* request body: bytes received, not consumed */
    struct ac_iobuf body;

    /* response body: one piece by reference */
    const char *out;
    size_t outlen, outoff;
    bool out_last;
    double t_progress;              /* the last time the piece moved */
    uint64_t sent;
    char status[4];
};

struct h2_conn {
    unsigned magic;
    nghttp2_session *ng;
    struct h2_settings set;
    const struct h2_ops *ops;
    void *ud;
    double now;

    struct h2_stream *streams;
    unsigned nstreams;
    struct h2_stream *spool;        /* freed streams kept for reuse */
    unsigned nspool;
    struct h2_stream *qhead, *qtail;
    bool in_dispatch;
    unsigned evcount[H2_EV__MAX];
    unsigned nev;                   /* events in evcount */

    char *obuf;                     /* output: [ostart, oend) to write */
    size_t ostart, oend, ocap;

    bool dead;                      /* connection error: read nothing more */
    bool broken;                    /* the library failed: nothing more to write either */
    bool calm;                      /* a budget ran out (counted; no PROTOCOL_ERROR too) */
    int goaway;                     /* 0, 1: notice sent, 2: final GOAWAY sent */
    double goaway_at;
    double t_idle;                  /* since when no stream is open */
    struct budget b_reset, b_settings, b_ping, b_empty;

    struct ac_buf scratch;          /* response fields, lower-cased */
    nghttp2_nv *nva;
    size_t nvcap;
};

static const char *const event_names[] = {
#define X(e, help) #e,
    H2_EVENTS(X)
#undef X
};

const char *
h2_event_name(enum h2_event ev)
{
    return (unsigned)ev < H2_EV__MAX ? event_names[ev] : "?";
}

static void
event(struct h2_conn *h, enum h2_event ev)
{
    h->evcount[ev]++;
    h->nev++;
}

static bool
budget_take(struct budget *b, uint32_t burst, double now)
{
    if (burst == 0)
        return true;                /* 0: no limit */
    b->tokens += (now - b->t) * (double)burst / BUDGET_PERIOD;
    if (b->tokens > burst)
        b->tokens = burst;
    b->t = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

static void
budget_init(struct budget *b, uint32_t burst, double now)
{
    b->tokens = burst;
    b->t = now;
}

/* A connection error we decided on: GOAWAY with the code, read no more. */
static void
conn_fail(struct h2_conn *h, uint32_t code)
{
    if (!h->dead)
        (void)nghttp2_session_terminate_session(h->ng, code);
    h->dead = true;
}

/* A budget ran out: GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §5.4.1 leaves the
 * code to us; this is the one RFC 9113 §7 names for excessive load). */
static void
conn_calm(struct h2_conn *h, enum h2_event ev)
{
    if (h->dead)
        return;
    event(h, ev);
    h->calm = true;
    conn_fail(h, H2_ENHANCE_YOUR_CALM);
}

static void
queue(struct h2_stream *st, unsigned ev)
{
    struct h2_conn *h = st->h;

    st->pending |= ev;
    if (st->queued)
        return;
    st->queued = true;
    st->qnext = NULL;
    if (h->qtail != NULL)
        h->qtail->qnext = st;
    else
        h->qhead = st;
    h->qtail = st;
}

/* Streams come from the connection's pool of freed ones when it has
 * some, with their head buffers: a busy connection allocates nothing per
 * request once warm. */
static struct h2_stream *
stream_new(struct h2_conn *h, int32_t id)
{
    struct h2_stream *st = h->spool;
    struct ac_buf hb;
    struct fld *fld;
    struct h1_header *hdrs;
    unsigned capfld, caphdrs;

    if (st != NULL) {
        h->spool = st->next;
        h->nspool--;
        hb = st->hb;
        fld = st->fld;
        capfld = st->capfld;
        hdrs = st->hdrs;
        caphdrs = st->caphdrs;
        ac_buf_reset(&hb);
        memset(st, 0, sizeof(*st));
        st->hb = hb;
        st->fld = fld;
        st->capfld = capfld;
        st->hdrs = hdrs;
        st->caphdrs = caphdrs;
    } else {
        st = ac_xcalloc(1, sizeof(*st));
        ac_buf_init(&st->hb, 0, 0);
    }
    st->magic = H2_STREAM_MAGIC;
    st->id = id;
    st->h = h;
    for (int i = 0; i < PS__MAX; i++)
        st->ps[i] = -1;
    st->t_head = h->now;
    st->t_progress = h->now;
    st->next = h->streams;
    if (h->streams != NULL)
        h->streams->prev = st;
    h->streams = st;
    h->nstreams++;
    return st;
}

static void
stream_destroy(struct h2_stream *st)
{
    ac_buf_free(&st->hb);
    free(st->fld);
    free(st->hdrs);
    free(st);
}

static void
stream_free(struct h2_stream *st)
{
    struct h2_conn *h = st->h;

    AC_ASSERT(!st->queued && !st->in_upcall);
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    AC_ASSERT(h->nstreams > 0);
    if (--h->nstreams == 0)
        h->t_idle = h->now;
    if (!st->closed)
        nghttp2_session_set_stream_user_data(h->ng, st->id, NULL);
    ac_iobuf_free(&st->body);
    st->magic = 0;
    if (h->nspool < SPOOL_MAX && st->hb.cap <= 8192) {
        st->next = h->spool;
        h->spool = st;
        h->nspool++;
        return;
    }
    stream_destroy(st);
}

/* Free the stream once nobody needs it: closed on the wire, let go by the
 * upper layer, no event waiting. */
static void
stream_maybe_free(struct h2_stream *st)
{
    if (st->closed && st->released && !st->queued && !st->in_upcall)
        stream_free(st);
}

static struct h2_stream *
stream_of(struct h2_conn *h, int32_t id)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(h->ng, id);

    if (st != NULL)
        AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    return st;
}

static void
submit_rst(struct h2_stream *st, uint32_t code)
{
    if (!st->closed)
        (void)nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, code);
}

/* ------------------------------------------------------------ output */

static void
obuf_compact(struct h2_conn *h)
{
    if (h->ostart == 0)
        return;
    memmove(h->obuf, h->obuf + h->ostart, h->oend - h->ostart);
    h->oend -= h->ostart;
    h->ostart = 0;
}

static ssize_t
on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct h2_conn *h = ud;
    size_t room;

    (void)ng;
    (void)flags;
    if (h->oend + len > h->ocap)
        obuf_compact(h);
    room = h->ocap - h->oend;
    if (room == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    len = AC_MIN(len, room);        /* the library sends the rest next time */
    memcpy(h->obuf + h->oend, data, len);
    h->oend += len;
    return (ssize_t)len;
}

/* A DATA frame whose payload is read in place from the stream's piece
 * (NGHTTP2_DATA_FLAG_NO_COPY): the frame goes into the output buffer
 * whole, or waits. */
static int
on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t len,
             nghttp2_data_source *src, void *ud)
{
    struct h2_conn *h = ud;
    struct h2_stream *st = src->ptr;
    size_t pad = frame->data.padlen, need = 9 + len + pad;
    char *p;

    (void)ng;
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    AC_ASSERT(len <= st->outlen - st->outoff);
    if (h->oend + need > h->ocap)
        obuf_compact(h);
    if (h->oend + need > h->ocap)
        return NGHTTP2_ERR_WOULDBLOCK;
    p = h->obuf + h->oend;
    memcpy(p, framehd, 9);
    p += 9;
    if (pad > 0)
        *p++ = (char)(pad - 1);
    if (len > 0)
        memcpy(p, st->out + st->outoff, len);
    p += len;
    if (pad > 1)
        memset(p, 0, pad - 1);
    h->oend += need;
    st->outoff += len;
    st->sent += len;
    st->t_progress = h->now;
    if (st->outoff == st->outlen) {
        /* the piece is out: the upper layer may give the next (or, after
         * the last, release the stream) */
        st->out = NULL;
        st->outlen = st->outoff = 0;
        if (st->out_last)
            st->complete = true;
        if (!st->released)
            queue(st, EV_WRITABLE);
    }
    return 0;
}

static ssize_t
on_read_data(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
             nghttp2_data_source *src, void *ud)
{
    struct h2_stream *st = src->ptr;
    size_t avail;

    (void)ng;
    (void)id;
    (void)buf;
    (void)ud;
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    avail = st->outlen - st->outoff;
    if (avail == 0 && !st->out_last) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    len = AC_MIN(AC_MIN(len, avail), (size_t)DATA_FRAME_MAX);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (st->out_last && len == avail)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)len;
}

/* ------------------------------------------------------------ input */

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_conn *h = ud;
    struct h2_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;                   /* trailers: the stream exists */
    if (h->nstreams >= h->set.max_concurrent_streams) {
        /* Streams the client reset whose requests still run count too:
         * otherwise open-and-reset would start requests without bound
         * (CVE-2023-44487).  REFUSED_STREAM: the client may retry. */
        (void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                        NGHTTP2_REFUSED_STREAM);   /* counted when sent */
        return 0;
    }
    st = stream_new(h, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    event(h, H2_EV_STREAM);
    return 0;
}

static int
pseudo_index(const uint8_t *name, size_t len)
{
    static const struct {
        const char *n;
        size_t len;
    } ps[PS__MAX] = {
        [PS_METHOD] = { ":method", 7 },
        [PS_SCHEME] = { ":scheme", 7 },
        [PS_AUTHORITY] = { ":authority", 10 },
        [PS_PATH] = { ":path", 5 },
    };

    for (int i = 0; i < PS__MAX; i++)
        if (len == ps[i].len && memcmp(name, ps[i].n, len) == 0)
            return i;
    return -1;
}

static void
head_reject(struct h2_stream *st, int status, const char *why)
{
    if (st->reject != 0)
        return;
    st->reject = status;
    st->why = why;
    /* keep what identifies the request (for the log), drop the rest */
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
          const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct h2_conn *h = ud;
    struct h2_stream *st = stream_of(h, frame->hd.stream_id);
    struct fld *f;
    int ps = -1;

    (void)ng;
    (void)flags;
    if (st == NULL || st->head_done)
        return 0;                   /* refused stream, or trailers: not kept */
    /* Count what the client made us decode, kept or not: the HPACK bomb
     * (a few bytes referencing a big table entry, many times) is decoded
     * size, not wire size. */
    st->hsize += namelen + valuelen + 32;
    if (st->hsize > h->set.max_header_list) {
        head_reject(st, 431, "request head over h2_max_header_list");
        return 0;
    }
    if (namelen > 0 && name[0] == ':') {
        ps = pseudo_index(name, namelen);
        if (ps < 0)
            return 0;               /* the library refuses unknown pseudo fields */
    } else if (!(namelen == 6 && memcmp(name, "cookie", 6) == 0) &&
               ++st->nreg > h->set.max_fields) {
        /* cookie crumbs do not count: they become one field */
        head_reject(st, 431, "too many request header fields");
        return 0;
    }
    if (st->reject != 0 && ps < 0)
        return 0;
    if (st->nfld == st->capfld) {
        st->capfld = st->capfld ? st->capfld * 2 : 16;
        st->fld = ac_xrealloc(st->fld, sizeof(*st->fld) * st->capfld);
    }
    f = &st->fld[st->nfld];
    f->noff = (uint32_t)st->hb.len;
    f->nlen = (uint32_t)namelen;
    ac_buf_cat(&st->hb, name, namelen);
    f->voff = (uint32_t)st->hb.len;
    f->vlen = (uint32_t)valuelen;
    ac_buf_cat(&st->hb, value, valuelen);
    if (ps >= 0)
        st->ps[ps] = (int)st->nfld;
    st->nfld++;
    return 0;
}

static int
on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *ud)
{
    struct h2_conn *h = ud;
    struct h2_stream *st = stream_of(h, id);
    struct ac_iobuf *b;
    size_t cap;

    (void)flags;
    if (st == NULL || st->discard || st->released || st->reject) {
        /* nobody reads it: give the window back at once */
        (void)nghttp2_session_consume(ng, id, len);
        return 0;
    }
    b = &st->body;
    /* The window we advertise bounds what can be here (the client may
     * use the RFC's 65535 until it saw our SETTINGS). */
    cap = AC_MAX((size_t)h->set.initial_window, (size_t)65535);
    if (ac_iobuf_room(b) < len) {
        if (b->data == NULL)
            ac_iobuf_init(b, AC_MIN(cap, AC_MAX(len, (size_t)16384)));
        ac_iobuf_compact(b);
        if (ac_iobuf_room(b) < len && ac_iobuf_len(b) + len <= cap)
            ac_iobuf_grow(b, AC_MIN(cap, AC_MAX(b->cap * 2, ac_iobuf_len(b) + len)));
        if (ac_iobuf_room(b) < len) {
            (void)nghttp2_session_consume(ng, id, len);
            (void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id,
                                            NGHTTP2_FLOW_CONTROL_ERROR);
            st->discard = true;
            return 0;
        }
    }
    memcpy(b->data + b->end, data, len);
    b->end += len;
    queue(st, EV_BODY);
    return 0;
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_conn *h = ud;
    struct h2_stream *st;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    (void)ng;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if ((st = stream_of(h, frame->hd.stream_id)) == NULL)
            return 0;
        if (!st->head_done) {
            st->head_done = true;
            st->body_end = end;
            st->head_end = end;
            queue(st, EV_REQUEST);
        } else if (end) {
            st->body_end = true;    /* trailers end the body; they are dropped */
            queue(st, EV_BODY);
        }
        return 0;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !end && !budget_take(&h->b_empty, h->set.max_empty, h->now))
            conn_calm(h, H2_EV_EMPTY_FLOOD);
        if (end && (st = stream_of(h, frame->hd.stream_id)) != NULL) {
            st->body_end = true;
            if (!st->discard && !st->released)
                queue(st, EV_BODY);
        }
        return 0;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
            !budget_take(&h->b_settings, h->set.max_settings, h->now))
            conn_calm(h, H2_EV_SETTINGS_FLOOD);
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            if (h->goaway == 1)     /* the client saw our notice: the final GOAWAY */
                h->goaway_at = 0;
        } else if (!budget_take(&h->b_ping, h->set.max_pings, h->now)) {
            conn_calm(h, H2_EV_PING_FLOOD);
        }
        return 0;
    case NGHTTP2_RST_STREAM:
        event(h, H2_EV_CLIENT_RESET);
        if (!budget_take(&h->b_reset, h->set.max_resets, h->now))
            conn_calm(h, H2_EV_RAPID_RESET);
        return 0;
    default:
        return 0;
    }
}

/* Frames that carry nothing for us: PRIORITY (ignored once we said
 * SETTINGS_NO_RFC7540_PRIORITIES, so the library does not report them
 * received) and unknown types (RFC 9113 §5.5 says ignore them: a flood
 * of them is work for nothing, CVE-2019-9518). */
static int
on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    struct h2_conn *h = ud;

    (void)ng;
    if ((hd->type == NGHTTP2_PRIORITY || hd->type > NGHTTP2_CONTINUATION) &&
        !budget_take(&h->b_empty, h->set.max_empty, h->now))
        conn_calm(h, H2_EV_EMPTY_FLOOD);
    return 0;
}

static int
on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_conn *h = ud;
    struct h2_stream *st;

    switch (frame->hd.type) {
    case NGHTTP2_DATA:
    case NGHTTP2_HEADERS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            return 0;
        if ((st = stream_of(h, frame->hd.stream_id)) == NULL)
            return 0;
        st->end_sent = true;
        if (st->rst_after_end) {
            st->rst_after_end = false;
            (void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
        }
        return 0;
    case NGHTTP2_RST_STREAM:
        /* Resets we send count against the same budget: a client that
         * makes us reset streams (bad headers, "MadeYouReset") is the same
         * attack as one that resets them itself. */
        if (frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
            event(h, H2_EV_REFUSED);        /* ours, or the library's (over the SETTINGS) */
        else if (frame->rst_stream.error_code != NGHTTP2_NO_ERROR)
            event(h, H2_EV_STREAM_ERROR);
        if (frame->rst_stream.error_code != NGHTTP2_NO_ERROR &&
            !budget_take(&h->b_reset, h->set.max_resets, h->now))
            conn_calm(h, H2_EV_RAPID_RESET);
        return 0;
    case NGHTTP2_GOAWAY:
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR && !h->calm)
            event(h, H2_EV_PROTOCOL_ERROR);
        return 0;
    default:
        return 0;
    }
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    struct h2_conn *h = ud;
    struct h2_stream *st = stream_of(h, id);

    (void)ng;
    if (st == NULL)
        return 0;
    st->closed = true;
    st->close_code = code == NGHTTP2_NO_ERROR && !st->complete ? NGHTTP2_CANCEL : code;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    /* Body bytes nobody will consume now still hold the connection's
     * window: give them back (the library clamps to what it received). */
    if (ac_iobuf_len(&st->body) > 0)
        (void)nghttp2_session_consume_connection(ng, ac_iobuf_len(&st->body));
    queue(st, EV_CLOSE);
    return 0;
}

/* ------------------------------------------------------------ requests */

static struct ac_slice
fld_name(const struct h2_stream *st, unsigned i)
{
    return AC_SLICE(st->hb.p + st->fld[i].noff, st->fld[i].nlen);
}

static struct ac_slice
fld_value(const struct h2_stream *st, unsigned i)
{
    return AC_SLICE(st->hb.p + st->fld[i].voff, st->fld[i].vlen);
}

static bool
is_pseudo(const struct h2_stream *st, unsigned i)
{
    return st->fld[i].nlen > 0 && st->hb.p[st->fld[i].noff] == ':';
}

/* No byte that would let a request line or Host field carry more than one
 * token to the origin (the library checks these too; this is the line we
 * stand on when we turn the request into HTTP/1.1). */
static bool
clean_token(struct ac_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool
parse_u64(struct ac_slice s, uint64_t *out)
{
    uint64_t v = 0;

    if (s.len == 0 || s.len > 19)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    *out = v;
    return true;
}

/*
 * The request head as HTTP/1.1 semantics (h2.h, struct h2_request).  Cookie
 * fields are joined first (the head buffer may move), then the slices are
 * made.  A problem the library does not see (Host against :authority,
 * limits) sets st->reject.
 */
static void
build_request(struct h2_stream *st)
{
    const struct h2_settings *set = &st->h->set;
    struct h1_request *r = &st->rq.req;
    size_t cookie_off = 0, cookie_len = 0;
    unsigned ncookie = 0, nreg = 0, nhost = 0, j = 0, r_flags = 0;
    int host_i = -1, cl_i = -1;

    for (unsigned i = 0; i < st->nfld; i++) {
        struct ac_slice n = fld_name(st, i);
        if (is_pseudo(st, i))
            continue;
        if (ac_slice_eq(n, AC_LIT("cookie"))) {
            ncookie++;
            continue;
        }
        if (ac_slice_eq(n, AC_LIT("host"))) {
            nhost++;
            host_i = (int)i;
        }
        if (ac_slice_eq(n, AC_LIT("content-length")))
            cl_i = (int)i;
        if (ac_slice_eq(n, AC_LIT("te")))
            r_flags |= H1_F_HAS_TE;
        if (ac_slice_eq(n, AC_LIT("expect")))
            /* RFC 9110 §10.1.1, as the HTTP/1.1 parser says it */
            r_flags |= ac_slice_caseeq(fld_value(st, i), AC_LIT("100-continue"))
                           ? H1_F_EXPECT_100 : H1_F_EXPECT_OTHER;
        nreg++;
    }
    if (ncookie > 0) {
        /* RFC 9113 §8.2.3: one field, the values joined by "; " */
        cookie_off = st->hb.len;
        for (unsigned i = 0; i < st->nfld; i++) {
            if (is_pseudo(st, i) || !ac_slice_eq(fld_name(st, i), AC_LIT("cookie")))
                continue;
            if (st->hb.len > cookie_off)
                ac_buf_cat(&st->hb, "; ", 2);
            ac_buf_cats(&st->hb, fld_value(st, i));
        }
        cookie_len = st->hb.len - cookie_off;
    }
    memset(r, 0, sizeof(*r));
    r->minor = 1;
    r->flags = r_flags;
    if (st->ps[PS_METHOD] >= 0)
        r->method = fld_value(st, (unsigned)st->ps[PS_METHOD]);
    if (st->ps[PS_PATH] >= 0)
        r->target = r->path = fld_value(st, (unsigned)st->ps[PS_PATH]);
    if (st->ps[PS_SCHEME] >= 0)
        st->rq.scheme = fld_value(st, (unsigned)st->ps[PS_SCHEME]);
    if (st->ps[PS_AUTHORITY] >= 0)
        r->host = fld_value(st, (unsigned)st->ps[PS_AUTHORITY]);
    if (st->reject != 0)
        return;
    if (r->method.len == 0 || !clean_token(r->method) || !clean_token(r->target) ||
        !clean_token(r->host)) {
        head_reject(st, 400, "bad method, :path or :authority");
        return;
    }
    if (r->target.len > set->max_target) {
        head_reject(st, 414, ":path over max_target");
        return;
    }
    if (nhost > 1) {
        head_reject(st, 400, "several host fields");
        return;
    }
    if (host_i >= 0) {
        struct ac_slice hv = fld_value(st, (unsigned)host_i);
        if (st->ps[PS_AUTHORITY] >= 0 && !ac_slice_caseeq(hv, r->host)) {
            /* RFC 9113 §8.3.1: a server SHOULD treat it as malformed */
            head_reject(st, 400, "host differs from :authority");
            return;
        }
        if (!clean_token(hv)) {
            head_reject(st, 400, "bad host field");
            return;
        }
        r->host = hv;
    }
    if (nreg + (ncookie > 0) + (host_i < 0) > set->max_fields) {
        head_reject(st, 431, "too many request header fields");
        return;
    }
    if (ac_slice_eq(r->method, AC_LIT("CONNECT")))
        r->flags |= H1_F_AUTHORITY_FORM;
    else if (ac_slice_eq(r->target, AC_LIT("*")))
        r->flags |= H1_F_ASTERISK_FORM;
    if (st->caphdrs < nreg + 2) {
        st->caphdrs = nreg + 2;
        st->hdrs = ac_xrealloc(st->hdrs, sizeof(*st->hdrs) * st->caphdrs);
    }
    if (host_i < 0 && r->host.len > 0)
        st->hdrs[j++] = (struct h1_header){ AC_LIT("host"), r->host };
    for (unsigned i = 0; i < st->nfld; i++) {
        if (is_pseudo(st, i) || ac_slice_eq(fld_name(st, i), AC_LIT("cookie")))
            continue;
        st->hdrs[j++] = (struct h1_header){ fld_name(st, i), fld_value(st, i) };
    }
    if (ncookie > 0)
        st->hdrs[j++] = (struct h1_header){ AC_LIT("cookie"),
                                            AC_SLICE(st->hb.p + cookie_off, cookie_len) };
    r->hdrs = st->hdrs;
    r->nhdrs = j;
    if (st->head_end) {
        r->body = H1_BODY_NONE;
    } else if (cl_i >= 0) {
        if (!parse_u64(fld_value(st, (unsigned)cl_i), &r->content_length)) {
            head_reject(st, 400, "bad content-length");
            return;
        }
        r->body = H1_BODY_LENGTH;
    } else {
        r->body = H1_BODY_CHUNKED;  /* a body of unknown length */
    }
}

/* Our own answer to a request we will not pass on (400, 414, 431): a short
 * text body from static memory, then the stream is ours to end. */
static void
answer_reject(struct h2_stream *st)
{
    static const struct h1_header ct[] = {
        { { "content-type", 12 }, { "text/plain; charset=utf-8", 25 } },
        { { "cache-control", 13 }, { "no-store", 8 } },
    };
    const char *body = st->reject == 431   ? "Request header fields too large\n"
                       : st->reject == 414 ? "Request-target too long\n"
                                           : "Bad request\n";
    struct h2_conn *h = st->h;

    event(h, st->reject == 431 ? H2_EV_HEADER_TOO_LARGE : H2_EV_BAD_REQUEST);
    if (h->ops->on_reject != NULL)
        h->ops->on_reject(h->ud, &st->rq, st->reject, st->why);
    st->discard = true;
    if (h2_stream_respond(st, st->reject, ct, AC_ARRAY_LEN(ct), true) == 0)
        (void)h2_stream_write(st, body, strlen(body), true);
    st->released = true;            /* nobody above holds it */
    if (!st->body_end)
        st->rst_after_end = true;   /* our answer goes first */
}

static void goaway_final(struct h2_conn *h);

static void
flush_events(struct h2_conn *h)
{
    if (h->nev == 0)
        return;
    h->nev = 0;
    for (unsigned e = 0; e < H2_EV__MAX; e++) {
        while (h->evcount[e] > 0) {
            h->evcount[e]--;
            if (h->ops->on_event != NULL)
                h->ops->on_event(h->ud, (enum h2_event)e);
        }
    }
}

static void
deliver(struct h2_stream *st, unsigned ev)
{
    struct h2_conn *h = st->h;

    if (ev & EV_REQUEST) {
        build_request(st);
        if (st->reject != 0) {
            answer_reject(st);
        } else {
            st->handed = true;      /* released from here on only by the upper layer */
            void *ud = h->ops->on_request(h->ud, st, &st->rq);
            if (st->released) {
                /* answered and let go within the call: ud may be gone */
            } else if (ud == NULL) {
                st->handed = false;
                st->released = st->discard = true;
                submit_rst(st, NGHTTP2_REFUSED_STREAM);
            } else {
                st->ud = ud;
            }
        }
    }
    if (st->released || st->ud == NULL)
        return;
    if ((ev & EV_BODY) && !st->discard)
        h->ops->on_body(st->ud);
    if (st->released)
        return;
    if (ev & EV_WRITABLE)
        h->ops->on_writable(st->ud);
    if (st->released)
        return;
    if ((ev & EV_CLOSE) && st->closed && !(st->complete && st->close_code == 0))
        h->ops->on_close(st->ud, st->close_code, false);
}

/* Run the upcalls the library's callbacks recorded.  Not re-entered: an
 * upcall that leads here again (through h2_conn_output()) returns at once
 * and the outer loop takes what it queued. */
static void
dispatch(struct h2_conn *h)
{
    struct h2_stream *st;

    if (h->in_dispatch)
        return;
    h->in_dispatch = true;
    flush_events(h);
    while ((st = h->qhead) != NULL) {
        unsigned ev = st->pending;

        h->qhead = st->qnext;
        if (h->qhead == NULL)
            h->qtail = NULL;
        st->queued = false;
        st->pending = 0;
        st->in_upcall = true;
        deliver(st, ev);
        st->in_upcall = false;
        flush_events(h);
        stream_maybe_free(st);
    }
    h->in_dispatch = false;
}

/* ------------------------------------------------------------ connection */

struct h2_conn *
h2_conn_new(const struct h2_settings *set, const struct h2_ops *ops, void *conn_ud, double now)
{
    struct h2_conn *h = ac_xcalloc(1, sizeof(*h));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[6];
    size_t n = 0;
    int rv;

    h->magic = H2_CONN_MAGIC;
    h->set = *set;
    h->ops = ops;
    h->ud = conn_ud;
    h->now = now;
    h->t_idle = now;
    /* room for at least two whole DATA frames, so a frame always fits once
     * the socket took what was there */
    h->ocap = AC_MAX(set->out_buffer, (size_t)2 * (DATA_FRAME_MAX + 9 + 256));
    h->obuf = ac_xmalloc(h->ocap);
    ac_buf_init(&h->scratch, 0, 0);
    budget_init(&h->b_reset, set->max_resets, now);
    budget_init(&h->b_settings, set->max_settings, now);
    budget_init(&h->b_ping, set->max_pings, now);
    budget_init(&h->b_empty, set->max_empty, now);
    if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    /* Request bodies give their window back as the request takes them. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, set->max_continuations);
    /* Our own reset budget decides (and counts, and reads our clock); the
     * library's (its own clock) only stands far above it. */
    if (set->max_resets > 0)
        nghttp2_option_set_stream_reset_rate_limit(opt, 10ull * set->max_resets + 1000,
                                                   (uint64_t)set->max_resets + 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, set->header_table_size);
    nghttp2_option_set_max_outbound_ack(opt, 256);
    nghttp2_option_set_no_closed_streams(opt, 1);
    rv = nghttp2_session_server_new2(&h->ng, cb, h, opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    cb = NULL;
    opt = NULL;
    if (rv != 0)
        goto fail;
    iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                        set->max_concurrent_streams };
    iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                        set->initial_window };
    iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, set->max_frame_size };
    iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,
                                        set->header_table_size };
    iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                        set->max_header_list };
    iv[n++] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 };
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, n) != 0)
        goto fail;
    if (set->conn_window > 65535 &&
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)set->conn_window) != 0)
        goto fail;
    return h;
fail:
    if (cb != NULL)
        nghttp2_session_callbacks_del(cb);
    if (opt != NULL)
        nghttp2_option_del(opt);
    h2_conn_free(&h);
    return NULL;
}

void
h2_conn_free(struct h2_conn **hp)
{
    struct h2_conn *h = *hp;

    *hp = NULL;
    if (h == NULL)
        return;
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    AC_ASSERT(!h->in_dispatch);
    /* Streams the upper layer still holds hear that the connection is
     * gone; after on_close they are released for it. */
    h->in_dispatch = true;
    for (struct h2_stream *st = h->streams; st != NULL; st = st->next) {
        if (st->handed && !st->released) {
            st->in_upcall = true;
            h->ops->on_close(st->ud, NGHTTP2_CANCEL, true);
            st->in_upcall = false;
            st->released = true;
            st->ud = NULL;
        }
    }
    while (h->streams != NULL) {
        struct h2_stream *st = h->streams;
        st->queued = false;
        st->closed = true;
        stream_free(st);
    }
    while (h->spool != NULL) {
        struct h2_stream *st = h->spool;
        h->spool = st->next;
        stream_destroy(st);
    }
    if (h->ng != NULL)
        nghttp2_session_del(h->ng);
    free(h->obuf);
    ac_buf_free(&h->scratch);
    free(h->nva);
    h->magic = 0;
    free(h);
}

int
h2_conn_recv(struct h2_conn *h, const void *p, size_t len, double now)
{
    ssize_t rv;

    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    h->now = now;
    if (h->dead)
        return AC_EPROTO;
    rv = nghttp2_session_mem_recv(h->ng, p, len);
    if (rv < 0) {
        switch (rv) {
        case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
            conn_calm(h, H2_EV_CONTINUATION_FLOOD);
            break;
        case NGHTTP2_ERR_FLOODED:
            conn_calm(h, H2_EV_ACK_FLOOD);
            break;
        default:
            /* a bad preface, or the library cannot go on */
            event(h, H2_EV_PROTOCOL_ERROR);
            h->calm = true;         /* counted: not again when the GOAWAY goes */
            conn_fail(h, H2_PROTOCOL_ERROR);
            break;
        }
    }
    dispatch(h);
    return h->dead ? AC_EPROTO : 0;
}

struct ac_slice
h2_conn_output(struct h2_conn *h, double now)
{
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    h->now = now;
    /* Upcalls (a writable stream giving its next piece) make more to
     * send: go round while there is room, a few times at most. */
    if (h->goaway == 1 && now >= h->goaway_at)
        goaway_final(h);
    for (int i = 0; i < 8; i++) {
        size_t before = h->oend - h->ostart;
        if (h->ocap - before < DATA_FRAME_MAX + 9 + 256)
            break;
        if (!h->broken && nghttp2_session_send(h->ng) != 0)
            h->dead = h->broken = true; /* the library gave up */
        dispatch(h);
        if (h->oend - h->ostart == before && h->qhead == NULL)
            break;
    }
    return AC_SLICE(h->obuf + h->ostart, h->oend - h->ostart);
}

void
h2_conn_output_done(struct h2_conn *h, size_t n, double now)
{
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    AC_ASSERT(n <= h->oend - h->ostart);
    h->now = now;
    h->ostart += n;
    if (h->ostart == h->oend)
        h->ostart = h->oend = 0;
}

bool
h2_conn_want_read(const struct h2_conn *h)
{
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    return !h->dead && nghttp2_session_want_read(h->ng) &&
           h->oend - h->ostart < h->ocap / 2;
}

bool
h2_conn_finished(const struct h2_conn *h)
{
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    if (h->oend > h->ostart)
        return false;
    if (h->broken)
        return true;
    if (nghttp2_session_want_write(h->ng))
        return false;
    return h->dead || !nghttp2_session_want_read(h->ng);
}

unsigned
h2_conn_nstreams(const struct h2_conn *h)
{
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    return h->nstreams;
}

bool
h2_conn_closing(const struct h2_conn *h)
{
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    return h->dead || h->goaway > 0 || !nghttp2_session_want_read(h->ng);
}

static void
goaway_final(struct h2_conn *h)
{
    h->goaway = 2;
    (void)nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                                nghttp2_session_get_last_proc_stream_id(h->ng),
                                NGHTTP2_NO_ERROR, NULL, 0);
}

void
h2_conn_goaway(struct h2_conn *h, double now)
{
    static const uint8_t opaque[8] = "goaway!";

    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    h->now = now;
    if (h->goaway != 0 || h->dead)
        return;
    /* RFC 9113 §6.8: a GOAWAY with the largest stream id first, so streams
     * already on their way are not lost; the real last id after a round
     * trip (our PING's answer, or GOAWAY_GRACE). */
    event(h, H2_EV_GOAWAY);
    h->goaway = 1;
    h->goaway_at = now + GOAWAY_GRACE;
    if (nghttp2_submit_shutdown_notice(h->ng) != 0 ||
        nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, opaque) != 0)
        goaway_final(h);
    flush_events(h);
}

/* Does the stream wait for the client's window with data to send? */
static bool
stalled(const struct h2_conn *h, const struct h2_stream *st)
{
    return !st->closed && st->outoff < st->outlen &&
           (nghttp2_session_get_stream_remote_window_size(h->ng, st->id) <= 0 ||
            nghttp2_session_get_remote_window_size(h->ng) <= 0);
}

double
h2_conn_deadline(const struct h2_conn *h)
{
    double d = 1e300;

    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    if (h->goaway == 1)
        d = AC_MIN(d, h->goaway_at);
    if (h->nstreams == 0 && h->goaway == 0)
        d = AC_MIN(d, h->t_idle + h->set.idle_timeout);
    for (const struct h2_stream *st = h->streams; st != NULL; st = st->next) {
        if (!st->head_done && !st->closed)
            d = AC_MIN(d, st->t_head + h->set.head_timeout);
        if (st->outoff < st->outlen)
            d = AC_MIN(d, st->t_progress + h->set.send_timeout);
    }
    return d;
}

void
h2_conn_tick(struct h2_conn *h, double now)
{
    AC_CHECK_OBJ(h, H2_CONN_MAGIC);
    h->now = now;
    if (h->dead)
        return;
    if (h->goaway == 1 && now >= h->goaway_at)
        goaway_final(h);
    if (h->nstreams == 0 && h->goaway == 0 && now >= h->t_idle + h->set.idle_timeout) {
        event(h, H2_EV_IDLE);
        h->goaway = 2;
        conn_fail(h, H2_NO_ERROR);
    }
    for (struct h2_stream *st = h->streams; st != NULL && !h->dead; st = st->next) {
        if (!st->head_done && !st->closed && now >= st->t_head + h->set.head_timeout) {
            /* a header block cannot be cut short by a stream error: the
             * connection goes (slowloris over CONTINUATION) */
            event(h, H2_EV_HEAD_TIMEOUT);
            h->calm = true;
            conn_fail(h, H2_NO_ERROR);
        } else if (stalled(h, st) && now >= st->t_progress + h->set.send_timeout) {
            event(h, H2_EV_STALLED);
            st->t_progress = now;
            submit_rst(st, NGHTTP2_CANCEL);
        }
    }
    flush_events(h);
}

/* ------------------------------------------------------------ streams */

int32_t
h2_stream_id(const struct h2_stream *st)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    return st->id;
}

/* Is this field connection-specific (RFC 9113 §8.2.2), or named by a
 * Connection field of the same head? */
static bool
conn_specific(struct ac_slice n, const struct h1_header *conn)
{
    switch (n.len) {
    case 7:
        if (ac_slice_caseeq(n, AC_LIT("upgrade")))
            return true;
        break;
    case 10:
        if (ac_slice_caseeq(n, AC_LIT("connection")) || ac_slice_caseeq(n, AC_LIT("keep-alive")))
            return true;
        break;
    case 16:
        if (ac_slice_caseeq(n, AC_LIT("proxy-connection")))
            return true;
        break;
    case 17:
        if (ac_slice_caseeq(n, AC_LIT("transfer-encoding")))
            return true;
        break;
    default:
        break;
    }
    return conn != NULL && h1_list_has_token(conn->value, n);
}

int
h2_stream_respond(struct h2_stream *st, int status, const struct h1_header *fields,
                  unsigned nfields, bool body)
{
    struct h2_conn *h;
    nghttp2_data_provider prd;
    size_t need = 0, nv = 1;
    char *p;
    int rv;

    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    h = st->h;
    if (st->closed)
        return AC_ECLOSED;
    if (st->responded || status < 100 || status > 999)
        return AC_EPROTO;
    const struct h1_header *conn = NULL;    /* a Connection field (rare) */

    for (unsigned i = 0; i < nfields; i++) {
        need += fields[i].name.len;
        if (fields[i].name.len == 10 && ac_slice_caseeq(fields[i].name, AC_LIT("connection")))
            conn = &fields[i];
    }
    if (nfields + 1 > h->nvcap) {
        h->nvcap = nfields + 8;
        h->nva = ac_xrealloc(h->nva, sizeof(*h->nva) * h->nvcap);
    }
    ac_buf_reset(&h->scratch);
    p = ac_buf_reserve(&h->scratch, need + 1);
    AC_NOTNULL(p);
    st->status[0] = (char)('0' + status / 100);
    st->status[1] = (char)('0' + status / 10 % 10);
    st->status[2] = (char)('0' + status % 10);
    h->nva[0] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)st->status, 7, 3,
                              NGHTTP2_NV_FLAG_NONE };
    for (unsigned i = 0; i < nfields; i++) {
        struct ac_slice n = fields[i].name;
        if (n.len == 0 || conn_specific(n, conn))
            continue;
        for (size_t k = 0; k < n.len; k++) {
            char c = n.p[k];
            p[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        h->nva[nv++] = (nghttp2_nv){ (uint8_t *)p, (uint8_t *)(uintptr_t)fields[i].value.p,
                                     n.len, fields[i].value.len, NGHTTP2_NV_FLAG_NONE };
        p += n.len;
    }
    if (status < 200) {
        /* interim (103 Early Hints, 100 Continue): more heads follow */
        rv = nghttp2_submit_headers(h->ng, NGHTTP2_FLAG_NONE, st->id, NULL, h->nva, nv, NULL);
        return rv == 0 ? 0 : AC_EPROTO;
    }
    prd.source.ptr = st;
    prd.read_callback = on_read_data;
    rv = nghttp2_submit_response(h->ng, st->id, h->nva, nv, body ? &prd : NULL);
    if (rv != 0)
        return AC_EPROTO;
    st->responded = true;
    st->has_body = body;
    st->t_progress = h->now;
    if (!body)
        st->complete = true;
    return 0;
}

int
h2_stream_write(struct h2_stream *st, const void *p, size_t len, bool last)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    AC_ASSERT(len > 0 || last);
    if (st->closed)
        return AC_ECLOSED;
    if (!st->responded || !st->has_body || st->out_last)
        return AC_EPROTO;
    if (st->outoff < st->outlen)
        return AC_AGAIN;
    st->out = p;
    st->outlen = len;
    st->outoff = 0;
    st->out_last = last;
    st->t_progress = st->h->now;
    if (st->deferred) {
        st->deferred = false;
        (void)nghttp2_session_resume_data(st->h->ng, st->id);
    }
    return 0;
}

bool
h2_stream_closed(const struct h2_stream *st)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    return st->closed;
}

bool
h2_stream_writable(const struct h2_stream *st)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    return !st->closed && st->responded && !st->out_last && st->outoff >= st->outlen;
}

uint64_t
h2_stream_bytes_sent(const struct h2_stream *st)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    return st->sent;
}

void
h2_stream_body(struct h2_stream *st, struct ac_slice *out, bool *end)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    *out = AC_SLICE(st->body.data ? ac_iobuf_head(&st->body) : NULL, ac_iobuf_len(&st->body));
    *end = st->body_end && ac_iobuf_len(&st->body) == 0;
}

void
h2_stream_body_consume(struct h2_stream *st, size_t n)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    if (n == 0)
        return;
    ac_iobuf_consume(&st->body, n);
    if (!st->closed)
        (void)nghttp2_session_consume(st->h->ng, st->id, n);
}

void
h2_stream_reset(struct h2_stream *st, uint32_t error)
{
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    submit_rst(st, error);
}

void
h2_stream_release(struct h2_stream **stp)
{
    struct h2_stream *st = *stp;

    *stp = NULL;
    if (st == NULL)
        return;
    AC_CHECK_OBJ(st, H2_STREAM_MAGIC);
    if (st->released)
        return;                     /* inside on_close(final) */
    st->released = true;
    st->ud = NULL;
    st->discard = true;
    if (ac_iobuf_len(&st->body) > 0) {
        /* nobody reads the rest: the client may send (and we drop) more */
        if (!st->closed)
            (void)nghttp2_session_consume(st->h->ng, st->id, ac_iobuf_len(&st->body));
        st->body.start = st->body.end = 0;
    }
    if (!st->closed) {
        if (!st->complete) {
            /* the response was cut short: the client must not take it
             * for whole */
            st->out = NULL;
            st->outlen = st->outoff = 0;
            submit_rst(st, NGHTTP2_INTERNAL_ERROR);
        } else if (!st->body_end) {
            /* RFC 9113 §8.1: a complete answer, the request body unread */
            if (st->end_sent)
                submit_rst(st, NGHTTP2_NO_ERROR);
            else
                st->rst_after_end = true;
        }
    }
    stream_maybe_free(st);
}
