/*
 * test_h2.c -- the HTTP/2 server connection (h2.c) against a real HTTP/2
 * client: libnghttp2's client session, or raw frames where an attack needs
 * bytes no polite client makes.  The two sides talk through memory; time
 * is a number the test moves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>

#include "h2.h"

/* ------------------------------------------------------------ the server's upper layer */

#define MAXREQ 256

struct req {
    struct h2_stream *st;
    struct h1_request r;            /* copy of the head (slices into the stream) */
    char method[16], path[256], host[128], cookie[256];
    unsigned nhdrs;
    bool closed;
    uint32_t close_code;
    unsigned writable;
    size_t body_seen;
    bool body_end;
    bool keep_body;                 /* do not consume the request body */
    const char *resp_body;          /* answered at once with this body */
    size_t resp_len, resp_piece, resp_off;
    bool respond_later;
    bool hold_closed;               /* keep the stream after on_close (request still runs) */
};

struct srv {
    struct h2_conn *h;
    struct req req[MAXREQ];
    unsigned nreq;
    unsigned events[H2_EV__MAX];
    int rejected_status;
    /* what on_request does */
    const char *resp_body;
    size_t resp_piece;
    bool respond_later;
    bool keep_body;
    bool hold_closed;
};

static void
copy_slice(char *dst, size_t cap, struct ac_slice s)
{
    size_t n = AC_MIN(s.len, cap - 1);
    memcpy(dst, s.p, n);
    dst[n] = 0;
}

static void
send_piece(struct req *q)
{
    size_t n = AC_MIN(q->resp_piece, q->resp_len - q->resp_off);
    bool last = q->resp_off + n == q->resp_len;

    assert_int_equal(h2_stream_write(q->st, q->resp_body + q->resp_off, n, last), 0);
    q->resp_off += n;
}

static void
respond(struct req *q)
{
    struct h1_header f[] = { { AC_LIT("Content-Type"), AC_LIT("text/plain") },
                             { AC_LIT("Connection"), AC_LIT("x-gone") },
                             { AC_LIT("X-Gone"), AC_LIT("1") },
                             { AC_LIT("Transfer-Encoding"), AC_LIT("chunked") } };

    assert_int_equal(h2_stream_respond(q->st, 200, f, 4, true), 0);
    send_piece(q);
}

static void *
on_request(void *ud, struct h2_stream *st, const struct h2_request *rq)
{
    struct srv *s = ud;
    struct req *q;
    const struct h1_header *c;

    assert_true(s->nreq < MAXREQ);
    q = &s->req[s->nreq++];
    memset(q, 0, sizeof(*q));
    q->st = st;
    q->r = rq->req;
    copy_slice(q->method, sizeof(q->method), rq->req.method);
    copy_slice(q->path, sizeof(q->path), rq->req.path);
    copy_slice(q->host, sizeof(q->host), rq->req.host);
    c = h1_header_find(rq->req.hdrs, rq->req.nhdrs, AC_LIT("cookie"));
    if (c != NULL)
        copy_slice(q->cookie, sizeof(q->cookie), c->value);
    q->nhdrs = rq->req.nhdrs;
    q->keep_body = s->keep_body;
    q->hold_closed = s->hold_closed;
    q->resp_body = s->resp_body;
    q->resp_len = s->resp_body ? strlen(s->resp_body) : 0;
    q->resp_piece = s->resp_piece ? s->resp_piece : q->resp_len;
    if (s->resp_body != NULL && !s->respond_later)
        respond(q);
    return q;
}

static void
on_body(void *ud)
{
    struct req *q = ud;
    struct ac_slice b;
    bool end;

    h2_stream_body(q->st, &b, &end);
    if (!q->keep_body) {
        q->body_seen += b.len;
        h2_stream_body_consume(q->st, b.len);
        h2_stream_body(q->st, &b, &end);
    }
    q->body_end = end;
}

static void
on_writable(void *ud)
{
    struct req *q = ud;

    q->writable++;
    if (q->resp_off < q->resp_len)
        send_piece(q);
    else
        h2_stream_release(&q->st);
}

static void
on_close(void *ud, uint32_t code, bool final)
{
    struct req *q = ud;

    q->closed = true;
    q->close_code = code;
    if (final)
        q->st = NULL;
    else if (!q->hold_closed)
        h2_stream_release(&q->st);
}

static void
on_event(void *ud, enum h2_event ev)
{
    struct srv *s = ud;

    s->events[ev]++;
}

static void
on_reject(void *ud, const struct h2_request *rq, int status, const char *why)
{
    struct srv *s = ud;

    (void)rq;
    (void)why;
    s->rejected_status = status;
}

static const struct h2_ops ops = {
    .on_request = on_request,
    .on_body = on_body,
    .on_writable = on_writable,
    .on_close = on_close,
    .on_event = on_event,
    .on_reject = on_reject,
};

static struct h2_settings
settings(void)
{
    return (struct h2_settings){
        .max_concurrent_streams = 100,
        .max_header_list = 16384,
        .max_fields = 100,
        .max_target = 8192,
        .header_table_size = 4096,
        .initial_window = 65535,
        .conn_window = 1 << 20,
        .max_frame_size = 16384,
        .max_continuations = 8,
        .max_resets = 100,
        .max_settings = 50,
        .max_pings = 50,
        .max_empty = 50,
        .out_buffer = 65536,
        .send_timeout = 10,
        .head_timeout = 5,
        .idle_timeout = 30,
    };
}

/* ------------------------------------------------------------ the client */

struct cstream {
    int32_t id;
    int status;
    char hdrs[1024];
    char body[1 << 20];
    size_t blen;
    bool closed;
    uint32_t close_code;
    bool hold;                      /* manual window: never give it back */
};

struct cli {
    nghttp2_session *ng;
    struct cstream s[MAXREQ];
    unsigned ns;
    bool goaway;
    uint32_t goaway_code;
    int32_t goaway_last;
    unsigned ngoaway;
    bool read_stop;                 /* do not take what the server sends */
    bool manual;                    /* no automatic WINDOW_UPDATE */
};

struct world {
    struct srv srv;
    struct cli cli;
    double now;
    bool server_eproto;
    char raw[1 << 16];              /* raw bytes queued to the server */
    size_t rawlen;
};

static struct cstream *
cs_of(struct cli *c, int32_t id)
{
    for (unsigned i = 0; i < c->ns; i++)
        if (c->s[i].id == id)
            return &c->s[i];
    return NULL;
}

static int
c_on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *n, size_t nl,
            const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    struct cstream *cs = cs_of(ud, fr->hd.stream_id);
    size_t l;

    (void)ng;
    (void)flags;
    if (cs == NULL)
        return 0;
    if (nl == 7 && memcmp(n, ":status", 7) == 0) {
        cs->status = atoi((const char *)v);     /* v is NUL-terminated */
        return 0;
    }
    l = strlen(cs->hdrs);
    snprintf(cs->hdrs + l, sizeof(cs->hdrs) - l, "%.*s: %.*s\n", (int)nl, n, (int)vl, v);
    return 0;
}

static int
c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *d, size_t len, void *ud)
{
    struct cstream *cs = cs_of(ud, id);

    struct cli *c = ud;

    (void)flags;
    if (cs != NULL && cs->blen + len <= sizeof(cs->body)) {
        memcpy(cs->body + cs->blen, d, len);
        cs->blen += len;
    }
    if (c->manual && cs != NULL && !cs->hold)
        nghttp2_session_consume(ng, id, len);
    else if (c->manual)
        nghttp2_session_consume_connection(ng, len);
    return 0;
}

static int
c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    struct cstream *cs = cs_of(ud, id);

    (void)ng;
    if (cs != NULL) {
        cs->closed = true;
        cs->close_code = code;
    }
    return 0;
}

static int
c_on_frame(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
    struct cli *c = ud;

    (void)ng;
    if (fr->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        c->ngoaway++;
        c->goaway_code = fr->goaway.error_code;
        c->goaway_last = fr->goaway.last_stream_id;
    }
    return 0;
}

static void
cli_init_opt(struct cli *c, const nghttp2_settings_entry *iv, size_t niv, bool manual)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;

    memset(c, 0, sizeof(*c));
    c->manual = manual;
    assert_int_equal(nghttp2_option_new(&opt), 0);
    nghttp2_option_set_no_auto_window_update(opt, manual);
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
    assert_int_equal(nghttp2_session_client_new2(&c->ng, cb, c, opt), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    assert_int_equal(nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, niv), 0);
}

static void
cli_init(struct cli *c, const nghttp2_settings_entry *iv, size_t niv)
{
    cli_init_opt(c, iv, niv, false);
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0 }

/* Submit a request; returns its client stream. */
static struct cstream *
cli_request(struct cli *c, const nghttp2_nv *nva, size_t n, nghttp2_data_provider *body)
{
    int32_t id = nghttp2_submit_request(c->ng, NULL, nva, n, body, NULL);
    struct cstream *cs;

    assert_true(id > 0);
    assert_true(c->ns < MAXREQ);
    cs = &c->s[c->ns++];
    memset(cs, 0, sizeof(*cs));
    cs->id = id;
    return cs;
}

static struct cstream *
cli_get(struct cli *c, const char *path)
{
    nghttp2_nv nva[] = { NV(":method", "GET"), NV(":scheme", "https"),
                         NV(":authority", "example.com"), NV(":path", "/") };

    nva[3].value = (uint8_t *)(uintptr_t)path;
    nva[3].valuelen = strlen(path);
    return cli_request(c, nva, 4, NULL);
}

static int
setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct h2_settings set = settings();

    assert_non_null(w);
    w->now = 1000;
    w->srv.h = h2_conn_new(&set, &ops, &w->srv, w->now);
    assert_non_null(w->srv.h);
    cli_init(&w->cli, NULL, 0);
    *state = w;
    return 0;
}

static int
teardown(void **state)
{
    struct world *w = *state;

    h2_conn_free(&w->srv.h);
    nghttp2_session_del(w->cli.ng);
    free(w);
    return 0;
}

/* Move bytes both ways until neither side has anything more. */
static void
pump(struct world *w)
{
    for (int round = 0; round < 10000; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;

        if (w->rawlen > 0) {
            if (h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now) != 0)
                w->server_eproto = true;
            w->rawlen = 0;
            moved = true;
        }
        while ((n = nghttp2_session_mem_send(w->cli.ng, &p)) > 0) {
            if (h2_conn_recv(w->srv.h, p, (size_t)n, w->now) != 0)
                w->server_eproto = true;
            moved = true;
        }
        if (!w->cli.read_stop) {
            struct ac_slice out = h2_conn_output(w->srv.h, w->now);
            if (out.len > 0) {
                (void)nghttp2_session_mem_recv(w->cli.ng, (const uint8_t *)out.p, out.len);
                h2_conn_output_done(w->srv.h, out.len, w->now);
                moved = true;
            }
        }
        if (!moved)
            return;
    }
    fail_msg("pump: no quiescence");
}

/* Raw frames (attacks). */
static void
raw_frame(struct world *w, uint8_t type, uint8_t flags, uint32_t id, const void *pl, size_t len)
{
    uint8_t *p = (uint8_t *)w->raw + w->rawlen;

    assert_true(w->rawlen + 9 + len <= sizeof(w->raw));
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(id >> 24);
    p[6] = (uint8_t)(id >> 16);
    p[7] = (uint8_t)(id >> 8);
    p[8] = (uint8_t)id;
    if (len > 0)
        memcpy(p + 9, pl, len);
    w->rawlen += 9 + len;
}

/* A server without a client session: the preface and an empty SETTINGS
 * are the first raw bytes. */
static void
raw_start(struct world *w)
{
    memcpy(w->raw, H2_PREFACE, H2_PREFACE_LEN);
    w->rawlen = H2_PREFACE_LEN;
    raw_frame(w, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
}

/* HPACK, no Huffman: GET https://example.com/ (static table indexes). */
static const uint8_t get_block[] = {
    0x82, 0x87, 0x84, 0x41, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
};

/* The raw-frame tests read the server's answer with a client session that
 * has seen no preface of its own: feed it the server's bytes only. */
static uint32_t
goaway_code_in_output(struct world *w, bool *found)
{
    struct ac_slice out = h2_conn_output(w->srv.h, w->now);
    const uint8_t *p = (const uint8_t *)out.p;
    size_t off = 0;

    *found = false;
    while (off + 9 <= out.len) {
        size_t len = ((size_t)p[off] << 16) | ((size_t)p[off + 1] << 8) | p[off + 2];
        if (p[off + 3] == NGHTTP2_GOAWAY && len >= 8 && off + 9 + len <= out.len) {
            *found = true;
            const uint8_t *e = p + off + 9 + 4;
            return ((uint32_t)e[0] << 24) | ((uint32_t)e[1] << 16) | ((uint32_t)e[2] << 8) | e[3];
        }
        off += 9 + len;
    }
    return 0;
}

/* ------------------------------------------------------------ tests */

static void
request_head_reads_as_http11(void **state)
{
    struct world *w = *state;
    nghttp2_nv nva[] = { NV(":method", "GET"), NV(":scheme", "https"),
                         NV(":authority", "example.com"), NV(":path", "/a?b=1"),
                         NV("cookie", "a=1"), NV("user-agent", "t"), NV("cookie", "b=2") };
    struct cstream *cs;

    w->srv.resp_body = "hello";
    cs = cli_request(&w->cli, nva, AC_ARRAY_LEN(nva), NULL);
    pump(w);
    assert_int_equal(w->srv.nreq, 1);
    assert_string_equal(w->srv.req[0].method, "GET");
    assert_string_equal(w->srv.req[0].path, "/a?b=1");
    assert_string_equal(w->srv.req[0].host, "example.com");
    /* RFC 9113 §8.2.3: the crumbs are one field for HTTP/1.1 */
    assert_string_equal(w->srv.req[0].cookie, "a=1; b=2");
    /* host (from :authority), user-agent, cookie */
    assert_int_equal(w->srv.req[0].nhdrs, 3);
    assert_int_equal(w->srv.req[0].r.body, H1_BODY_NONE);
    assert_int_equal(w->srv.req[0].r.minor, 1);
    assert_int_equal(cs->status, 200);
    assert_int_equal(cs->blen, 5);
    assert_memory_equal(cs->body, "hello", 5);
    /* connection-specific fields never reach an HTTP/2 client */
    assert_null(strstr(cs->hdrs, "connection"));
    assert_null(strstr(cs->hdrs, "x-gone"));
    assert_null(strstr(cs->hdrs, "transfer-encoding"));
    assert_non_null(strstr(cs->hdrs, "content-type: text/plain"));
    assert_true(cs->closed);
    assert_int_equal(cs->close_code, 0);
    assert_int_equal(w->srv.events[H2_EV_STREAM], 1);
    assert_int_equal(h2_conn_nstreams(w->srv.h), 0);
}

static void
bodyless_response(void **state)
{
    struct world *w = *state;
    struct cstream *cs = cli_get(&w->cli, "/");
    static const struct h1_header f[] = { { { "Content-Length", 14 }, { "0", 1 } },
                                          { { "Keep-Alive", 10 }, { "timeout=5", 9 } },
                                          { { "X-Cache", 7 }, { "MISS", 4 } } };

    pump(w);
    assert_int_equal(w->srv.nreq, 1);
    assert_int_equal(h2_stream_respond(w->srv.req[0].st, 404, f, 3, false), 0);
    h2_stream_release(&w->srv.req[0].st);
    pump(w);
    assert_int_equal(cs->status, 404);
    assert_non_null(strstr(cs->hdrs, "x-cache: MISS"));
    assert_non_null(strstr(cs->hdrs, "content-length: 0"));
    assert_null(strstr(cs->hdrs, "keep-alive"));
    assert_true(cs->closed);
    assert_int_equal(cs->close_code, 0);
}

/* A body given in pieces, each by reference: the next piece is asked for
 * only when the previous one is out. */
static void
body_pieces_by_reference(void **state)
{
    struct world *w = *state;
    static char big[200000];
    struct cstream *cs;

    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)('a' + i % 23);
    big[sizeof(big) - 1] = 0;
    w->srv.resp_body = big;
    w->srv.resp_piece = 40000;
    cs = cli_get(&w->cli, "/big");
    pump(w);
    assert_int_equal(cs->status, 200);
    assert_int_equal(cs->blen, sizeof(big) - 1);
    assert_memory_equal(cs->body, big, sizeof(big) - 1);
    /* 5 pieces: 4 asked for more, the last said "complete" */
    assert_int_equal(w->srv.req[0].writable, 5);
    assert_true(cs->closed);
    assert_int_equal(cs->close_code, 0);
    assert_int_equal(h2_conn_nstreams(w->srv.h), 0);
}

/* A client that gives one stream no window: that stream waits, the other
 * is served; send_timeout later the stalled one is reset. */
static void
stalled_stream_does_not_stall_others(void **state)
{
    struct world *w = *state;
    static char big[100000];
    struct cstream *a, *b;

    memset(big, 'x', sizeof(big) - 1);
    w->srv.resp_body = big;
    w->srv.resp_piece = 16384;
    /* a fresh client whose streams start with a 1000-byte window */
    nghttp2_session_del(w->cli.ng);
    nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000 } };
    cli_init_opt(&w->cli, iv, 1, true);
    nghttp2_session_set_local_window_size(w->cli.ng, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    /* stream a: the client never gives its window back; b: it does */
    a = cli_get(&w->cli, "/a");
    a->hold = true;
    b = cli_get(&w->cli, "/b");
    pump(w);
    assert_int_equal(b->status, 200);
    assert_int_equal(b->blen, sizeof(big) - 1);
    assert_true(b->closed);
    assert_false(a->closed);
    assert_int_equal(a->blen, 1000); /* what its window let through */
    w->now += 11;
    h2_conn_tick(w->srv.h, w->now);
    pump(w);
    assert_true(a->closed);
    assert_int_equal(a->close_code, NGHTTP2_CANCEL);
    assert_int_equal(w->srv.events[H2_EV_STALLED], 1);
    assert_true(w->srv.req[0].closed);
}

static ssize_t
body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
          nghttp2_data_source *src, void *ud)
{
    size_t *left = src->ptr;
    size_t n = AC_MIN(len, *left);

    (void)ng;
    (void)id;
    (void)ud;
    memset(buf, 'b', n);
    *left -= n;
    if (*left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The request body is held within the window: the client can send no more
 * than the stream window until the request takes some. */
static void
request_body_is_flow_controlled(void **state)
{
    struct world *w = *state;
    size_t left = 300000;
    nghttp2_data_provider prd = { .source.ptr = &left, .read_callback = body_read };
    nghttp2_nv nva[] = { NV(":method", "POST"), NV(":scheme", "https"),
                         NV(":authority", "example.com"), NV(":path", "/up") };
    struct ac_slice b;
    bool end;

    w->srv.keep_body = true;
    (void)cli_request(&w->cli, nva, 4, &prd);
    pump(w);
    assert_int_equal(w->srv.nreq, 1);
    assert_int_equal(w->srv.req[0].r.body, H1_BODY_CHUNKED);
    h2_stream_body(w->srv.req[0].st, &b, &end);
    assert_int_equal(b.len, 65535);     /* the window, not more */
    assert_false(end);
    /* take it all, step by step */
    size_t total = 0;
    for (int i = 0; i < 100 && !end; i++) {
        h2_stream_body(w->srv.req[0].st, &b, &end);
        total += b.len;
        h2_stream_body_consume(w->srv.req[0].st, b.len);
        pump(w);
        h2_stream_body(w->srv.req[0].st, &b, &end);
    }
    assert_true(end);
    assert_int_equal(total, 300000);
}

/* HEADERS and a short DATA with END_STREAM in one read: the head is built
 * when its event is delivered, after the DATA frame was seen, and must
 * still say that a body follows (it once said "no body", and the origin
 * got a POST without its body). */
static void
short_body_in_the_same_read_as_the_head(void **state)
{
    struct world *w = *state;
    size_t left = 5;
    nghttp2_data_provider prd = { .source.ptr = &left, .read_callback = body_read };
    nghttp2_nv nva[] = { NV(":method", "POST"), NV(":scheme", "https"),
                         NV(":authority", "example.com"), NV(":path", "/up"),
                         NV("content-length", "5") };
    struct ac_slice b;
    bool end;

    uint8_t all[4096];
    size_t len = 0;
    const uint8_t *p;
    ssize_t n;

    pump(w);                        /* the prefaces and SETTINGS */
    w->srv.keep_body = true;
    (void)cli_request(&w->cli, nva, 5, &prd);
    /* nghttp2 hands out one frame at a time: one read of all of them */
    while ((n = nghttp2_session_mem_send(w->cli.ng, &p)) > 0) {
        assert_true(len + (size_t)n <= sizeof(all));
        memcpy(all + len, p, (size_t)n);
        len += (size_t)n;
    }
    assert_int_equal(h2_conn_recv(w->srv.h, all, len, w->now), 0);
    pump(w);
    assert_int_equal(w->srv.nreq, 1);
    assert_int_equal(w->srv.req[0].r.body, H1_BODY_LENGTH);
    assert_int_equal(w->srv.req[0].r.content_length, 5);
    h2_stream_body(w->srv.req[0].st, &b, &end);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.p, "bbbbb", 5);
}

/* A stream reset with body bytes unread gives the connection window back:
 * later uploads on the connection still flow. */
static void
reset_stream_returns_connection_window(void **state)
{
    struct world *w = *state;
    nghttp2_nv nva[] = { NV(":method", "POST"), NV(":scheme", "https"),
                         NV(":authority", "example.com"), NV(":path", "/up") };

    /* many uploads of 60000 bytes each, never read, then reset by the
     * client: more than the connection window of 1 MiB in total */
    w->srv.keep_body = true;
    for (int i = 0; i < 40; i++) {
        size_t left = 60000;
        nghttp2_data_provider prd = { .source.ptr = &left, .read_callback = body_read };
        struct cstream *cs = cli_request(&w->cli, nva, 4, &prd);
        pump(w);
        assert_int_equal(left, 0);
        nghttp2_submit_rst_stream(w->cli.ng, NGHTTP2_FLAG_NONE, cs->id, NGHTTP2_CANCEL);
        pump(w);
        assert_true(w->srv.req[i].closed);
    }
    assert_false(w->cli.goaway);
    assert_true(nghttp2_session_get_remote_window_size(w->cli.ng) > 60000);
}

static void
header_list_too_large_is_431(void **state)
{
    struct world *w = *state;
    static char big[20000];
    nghttp2_nv nva[] = { NV(":method", "GET"), NV(":scheme", "https"),
                         NV(":authority", "example.com"), NV(":path", "/"),
                         NV("x-big", "") };
    struct cstream *cs, *ok;

    memset(big, 'a', sizeof(big) - 1);
    nva[4].value = (uint8_t *)big;
    nva[4].valuelen = sizeof(big) - 1;
    cs = cli_request(&w->cli, nva, 5, NULL);
    pump(w);
    assert_int_equal(cs->status, 431);
    assert_true(cs->closed);
    assert_int_equal(w->srv.nreq, 0);
    assert_int_equal(w->srv.rejected_status, 431);
    assert_int_equal(w->srv.events[H2_EV_HEADER_TOO_LARGE], 1);
    /* the connection goes on (the HPACK state is intact) */
    w->srv.resp_body = "ok";
    ok = cli_get(&w->cli, "/next");
    pump(w);
    assert_int_equal(ok->status, 200);
    assert_false(w->cli.goaway);
}

static void
host_and_authority_must_agree(void **state)
{
    struct world *w = *state;
    nghttp2_nv nva[] = { NV(":method", "GET"), NV(":scheme", "https"),
                         NV(":authority", "a.example"), NV(":path", "/"),
                         NV("host", "b.example") };
    struct cstream *cs = cli_request(&w->cli, nva, 5, NULL);

    pump(w);
    assert_int_equal(cs->status, 400);
    assert_int_equal(w->srv.nreq, 0);
    assert_int_equal(w->srv.events[H2_EV_BAD_REQUEST], 1);
}

/* Malformed per RFC 9113 §8.1.1 (a connection-specific field): the
 * library resets the stream with PROTOCOL_ERROR; nothing reaches us. */
static void
connection_field_is_stream_error(void **state)
{
    struct world *w = *state;
    bool found;
    uint8_t block[64];
    size_t n = sizeof(get_block);

    memcpy(block, get_block, n);
    /* literal without indexing: "connection: close" */
    block[n++] = 0x00;
    block[n++] = 10;
    memcpy(block + n, "connection", 10);
    n += 10;
    block[n++] = 5;
    memcpy(block + n, "close", 5);
    n += 5;
    raw_start(w);
    raw_frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, block,
              n);
    assert_int_equal(h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now), 0);
    w->rawlen = 0;
    (void)goaway_code_in_output(w, &found);
    assert_false(found);
    assert_int_equal(w->srv.nreq, 0);
    assert_int_equal(w->srv.events[H2_EV_STREAM_ERROR], 1);
}

static void
streams_over_the_limit_are_refused(void **state)
{
    struct world *w = *state;
    struct h2_settings set = settings();
    struct cstream *cs[5];

    h2_conn_free(&w->srv.h);
    set.max_concurrent_streams = 3;
    w->srv.h = h2_conn_new(&set, &ops, &w->srv, w->now);
    w->srv.resp_body = NULL;        /* nobody answers: streams stay open */
    w->srv.hold_closed = true;      /* ... and their requests go on after a reset */
    pump(w);                        /* SETTINGS exchanged: the client knows 3 */
    for (int i = 0; i < 3; i++)
        cs[i] = cli_get(&w->cli, "/");
    pump(w);
    assert_int_equal(w->srv.nreq, 3);
    /* reset by the client, but the requests still run: they count */
    for (int i = 0; i < 3; i++)
        nghttp2_submit_rst_stream(w->cli.ng, NGHTTP2_FLAG_NONE, cs[i]->id, NGHTTP2_CANCEL);
    pump(w);
    for (int i = 0; i < 3; i++)
        assert_true(w->srv.req[i].closed);
    assert_int_equal(h2_conn_nstreams(w->srv.h), 3);
    cs[3] = cli_get(&w->cli, "/");
    pump(w);
    assert_int_equal(w->srv.nreq, 3);
    assert_true(cs[3]->closed);
    assert_int_equal(cs[3]->close_code, NGHTTP2_REFUSED_STREAM);
    assert_int_equal(w->srv.events[H2_EV_REFUSED], 1);
    /* one request ends: a new stream is taken again */
    h2_stream_release(&w->srv.req[0].st);
    assert_int_equal(h2_conn_nstreams(w->srv.h), 2);
    cs[4] = cli_get(&w->cli, "/");
    pump(w);
    assert_int_equal(w->srv.nreq, 4);
    assert_false(cs[4]->closed);
}

/* CVE-2023-44487: open a stream, reset it, again and again. */
static void
rapid_reset_gets_goaway(void **state)
{
    struct world *w = *state;
    bool found;
    uint32_t code;
    uint8_t rst[4] = { 0, 0, 0, NGHTTP2_CANCEL };

    raw_start(w);
    for (uint32_t id = 1; id < 2 * 150; id += 2) {
        raw_frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id,
                  get_block, sizeof(get_block));
        raw_frame(w, NGHTTP2_RST_STREAM, 0, id, rst, 4);
    }
    assert_int_equal(h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now), AC_EPROTO);
    w->rawlen = 0;
    assert_int_equal(w->srv.events[H2_EV_RAPID_RESET], 1);
    assert_true(w->srv.nreq <= 101);
    code = goaway_code_in_output(w, &found);
    assert_true(found);
    assert_int_equal(code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_false(h2_conn_want_read(w->srv.h));
    h2_conn_output_done(w->srv.h, h2_conn_output(w->srv.h, w->now).len, w->now);
    assert_true(h2_conn_finished(w->srv.h));
}

/* Resets spread over time are fine: the budget refills. */
static void
resets_within_budget_are_fine(void **state)
{
    struct world *w = *state;

    for (int i = 0; i < 300; i++) {
        struct cstream *cs = cli_get(&w->cli, "/");
        pump(w);
        nghttp2_submit_rst_stream(w->cli.ng, NGHTTP2_FLAG_NONE, cs->id, NGHTTP2_CANCEL);
        pump(w);
        w->now += 0.2;              /* 5 per second: budget 100 per 10 s */
        w->cli.ns = 0;
        w->srv.nreq = 0;
    }
    assert_false(w->cli.goaway);
    assert_int_equal(w->srv.events[H2_EV_RAPID_RESET], 0);
    assert_int_equal(w->srv.events[H2_EV_CLIENT_RESET], 300);
}

static void
flood(struct world *w, uint8_t type, uint32_t id, const void *pl, size_t len, unsigned n,
      enum h2_event ev)
{
    bool found;

    raw_start(w);
    if (id != 0)
        raw_frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, get_block,
                  sizeof(get_block));
    for (unsigned i = 0; i < n; i++)
        raw_frame(w, type, 0, id, pl, len);
    assert_int_equal(h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now), AC_EPROTO);
    w->rawlen = 0;
    assert_int_equal(w->srv.events[ev], 1);
    assert_int_equal(goaway_code_in_output(w, &found), NGHTTP2_ENHANCE_YOUR_CALM);
    assert_true(found);
    assert_int_equal(w->srv.events[H2_EV_PROTOCOL_ERROR], 0);
}

static void
ping_flood_gets_goaway(void **state)
{
    flood(*state, NGHTTP2_PING, 0, "12345678", 8, 60, H2_EV_PING_FLOOD);
}

static void
settings_flood_gets_goaway(void **state)
{
    flood(*state, NGHTTP2_SETTINGS, 0, NULL, 0, 60, H2_EV_SETTINGS_FLOOD);
}

static void
empty_data_flood_gets_goaway(void **state)
{
    flood(*state, NGHTTP2_DATA, 1, NULL, 0, 60, H2_EV_EMPTY_FLOOD);
}

static void
priority_flood_gets_goaway(void **state)
{
    static const uint8_t prio[5] = { 0, 0, 0, 0, 16 };

    flood(*state, NGHTTP2_PRIORITY, 1, prio, 5, 60, H2_EV_EMPTY_FLOOD);
}

/* CVE-2024-27316: HEADERS without END_HEADERS, then CONTINUATION without
 * end. */
static void
continuation_flood_gets_goaway(void **state)
{
    struct world *w = *state;
    uint8_t lit[40];
    bool found;

    /* each CONTINUATION: a literal field "x-a: aaaa..." */
    lit[0] = 0x00;
    lit[1] = 3;
    memcpy(lit + 2, "x-a", 3);
    lit[5] = 30;
    memset(lit + 6, 'a', 30);
    raw_start(w);
    raw_frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, get_block, sizeof(get_block));
    for (int i = 0; i < 50; i++)
        raw_frame(w, NGHTTP2_CONTINUATION, 0, 1, lit, 36);
    assert_int_equal(h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now), AC_EPROTO);
    w->rawlen = 0;
    assert_int_equal(w->srv.events[H2_EV_CONTINUATION_FLOOD], 1);
    assert_int_equal(goaway_code_in_output(w, &found), NGHTTP2_ENHANCE_YOUR_CALM);
    assert_true(found);
    assert_int_equal(w->srv.nreq, 0);
}

/* A header block that never ends, slowly: the connection goes after
 * head_timeout. */
static void
unfinished_head_times_out(void **state)
{
    struct world *w = *state;
    bool found;

    raw_start(w);
    raw_frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, get_block, sizeof(get_block));
    assert_int_equal(h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now), 0);
    w->rawlen = 0;
    assert_true(h2_conn_deadline(w->srv.h) <= w->now + 5);
    w->now += 6;
    h2_conn_tick(w->srv.h, w->now);
    assert_int_equal(w->srv.events[H2_EV_HEAD_TIMEOUT], 1);
    (void)goaway_code_in_output(w, &found);
    assert_true(found);
    h2_conn_output_done(w->srv.h, h2_conn_output(w->srv.h, w->now).len, w->now);
    assert_true(h2_conn_finished(w->srv.h));
}

static void
bad_frames_get_the_rfc_error(void **state)
{
    struct world *w = *state;
    bool found;
    uint8_t wu[4] = { 0, 0, 0, 0 };

    /* RFC 9113 §6.9: a WINDOW_UPDATE of 0 on the connection is a
     * PROTOCOL_ERROR */
    raw_start(w);
    raw_frame(w, NGHTTP2_WINDOW_UPDATE, 0, 0, wu, 4);
    (void)h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now);
    w->rawlen = 0;
    assert_int_equal(goaway_code_in_output(w, &found), NGHTTP2_PROTOCOL_ERROR);
    assert_true(found);
    assert_int_equal(w->srv.events[H2_EV_PROTOCOL_ERROR], 1);
}

static void
bad_frame_size_is_frame_size_error(void **state)
{
    struct world *w = *state;
    bool found;

    /* RFC 9113 §6.7: a PING of other than 8 bytes: FRAME_SIZE_ERROR */
    raw_start(w);
    raw_frame(w, NGHTTP2_PING, 0, 0, "1234", 4);
    (void)h2_conn_recv(w->srv.h, w->raw, w->rawlen, w->now);
    w->rawlen = 0;
    assert_int_equal(goaway_code_in_output(w, &found), NGHTTP2_FRAME_SIZE_ERROR);
    assert_true(found);
}

static void
bad_preface_ends_the_connection(void **state)
{
    struct world *w = *state;
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    assert_int_equal(h2_conn_recv(w->srv.h, junk, sizeof(junk) - 1, w->now), AC_EPROTO);
    assert_false(h2_conn_want_read(w->srv.h));
    assert_int_equal(w->srv.events[H2_EV_PROTOCOL_ERROR], 1);
    for (int i = 0; i < 3 && !h2_conn_finished(w->srv.h); i++)
        h2_conn_output_done(w->srv.h, h2_conn_output(w->srv.h, w->now).len, w->now);
    assert_true(h2_conn_finished(w->srv.h));
}

/* Graceful end: the stream in flight finishes, then the connection. */
static void
goaway_lets_streams_finish(void **state)
{
    struct world *w = *state;
    struct cstream *cs;
    static const char body[] = "late answer";

    w->srv.resp_body = NULL;
    cs = cli_get(&w->cli, "/slow");
    pump(w);
    assert_int_equal(w->srv.nreq, 1);
    h2_conn_goaway(w->srv.h, w->now);
    pump(w);                        /* notice + PING; the client's PING ack: final GOAWAY */
    assert_true(w->cli.goaway);
    assert_int_equal(w->cli.ngoaway, 2);
    assert_int_equal(w->cli.goaway_code, 0);
    assert_int_equal(w->cli.goaway_last, cs->id);
    assert_false(h2_conn_finished(w->srv.h));
    assert_int_equal(w->srv.events[H2_EV_GOAWAY], 1);
    /* the request in flight gets its answer */
    struct req *q = &w->srv.req[0];
    q->resp_body = body;
    q->resp_len = q->resp_piece = sizeof(body) - 1;
    respond(q);
    pump(w);
    assert_int_equal(cs->status, 200);
    assert_int_equal(cs->blen, sizeof(body) - 1);
    assert_true(h2_conn_finished(w->srv.h));
}

static void
idle_connection_is_closed(void **state)
{
    struct world *w = *state;

    pump(w);
    w->now += 29;
    h2_conn_tick(w->srv.h, w->now);
    pump(w);
    assert_false(w->cli.goaway);
    w->now += 2;
    assert_true(h2_conn_deadline(w->srv.h) <= w->now);
    h2_conn_tick(w->srv.h, w->now);
    pump(w);
    assert_true(w->cli.goaway);
    assert_int_equal(w->cli.goaway_code, 0);
    assert_int_equal(w->srv.events[H2_EV_IDLE], 1);
    assert_true(h2_conn_finished(w->srv.h));
}

/* A client that never reads: the output buffer fills, then the server
 * stops reading it. */
static void
client_that_never_reads_is_not_read(void **state)
{
    struct world *w = *state;
    static char big[1 << 20];
    struct cstream *cs;

    memset(big, 'z', sizeof(big) - 1);
    w->srv.resp_body = big;
    w->srv.resp_piece = 65536;
    pump(w);
    nghttp2_session_set_local_window_size(w->cli.ng, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24 } };
    nghttp2_submit_settings(w->cli.ng, NGHTTP2_FLAG_NONE, iv, 1);
    pump(w);
    cs = cli_get(&w->cli, "/big");
    w->cli.read_stop = true;
    pump(w);
    (void)h2_conn_output(w->srv.h, w->now);
    assert_false(h2_conn_want_read(w->srv.h));
    assert_true(h2_conn_output(w->srv.h, w->now).len <= 65536 + 2 * 16500);
    assert_int_equal(cs->blen, 0);
}

/* Releasing a stream in the middle of its body resets it: the client never
 * takes a partial body for whole. */
static void
release_mid_body_resets(void **state)
{
    struct world *w = *state;
    static char big[100000];
    struct cstream *cs;

    memset(big, 'q', sizeof(big) - 1);
    w->srv.resp_body = NULL;
    cs = cli_get(&w->cli, "/cut");
    pump(w);
    struct req *q = &w->srv.req[0];
    struct h1_header f[] = { { AC_LIT("content-length"), AC_LIT("99999") } };
    assert_int_equal(h2_stream_respond(q->st, 200, f, 1, true), 0);
    assert_int_equal(h2_stream_write(q->st, big, 1000, false), 0);
    pump(w);
    h2_stream_release(&q->st);
    pump(w);
    assert_true(cs->closed);
    assert_int_equal(cs->close_code, NGHTTP2_INTERNAL_ERROR);
    assert_int_equal(h2_conn_nstreams(w->srv.h), 0);
}

/* Interim responses (103) go before the final one. */
static void
interim_response_first(void **state)
{
    struct world *w = *state;
    struct cstream *cs;

    w->srv.resp_body = NULL;
    cs = cli_get(&w->cli, "/hints");
    pump(w);
    struct req *q = &w->srv.req[0];
    struct h1_header link[] = { { AC_LIT("Link"), AC_LIT("</a.css>; rel=preload") } };
    assert_int_equal(h2_stream_respond(q->st, 103, link, 1, false), 0);
    assert_int_equal(h2_stream_respond(q->st, 204, NULL, 0, false), 0);
    h2_stream_release(&q->st);
    pump(w);
    assert_int_equal(cs->status, 204);
    assert_true(cs->closed);
    assert_int_equal(cs->close_code, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(request_head_reads_as_http11, setup, teardown),
        cmocka_unit_test_setup_teardown(bodyless_response, setup, teardown),
        cmocka_unit_test_setup_teardown(body_pieces_by_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(stalled_stream_does_not_stall_others, setup, teardown),
        cmocka_unit_test_setup_teardown(request_body_is_flow_controlled, setup, teardown),
        cmocka_unit_test_setup_teardown(short_body_in_the_same_read_as_the_head, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_stream_returns_connection_window, setup, teardown),
        cmocka_unit_test_setup_teardown(header_list_too_large_is_431, setup, teardown),
        cmocka_unit_test_setup_teardown(host_and_authority_must_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_field_is_stream_error, setup, teardown),
        cmocka_unit_test_setup_teardown(streams_over_the_limit_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(rapid_reset_gets_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(resets_within_budget_are_fine, setup, teardown),
        cmocka_unit_test_setup_teardown(ping_flood_gets_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(settings_flood_gets_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_data_flood_gets_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(priority_flood_gets_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(continuation_flood_gets_goaway, setup, teardown),
        cmocka_unit_test_setup_teardown(unfinished_head_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_frames_get_the_rfc_error, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_frame_size_is_frame_size_error, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_preface_ends_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(goaway_lets_streams_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_connection_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(client_that_never_reads_is_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(release_mid_body_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(interim_response_first, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
