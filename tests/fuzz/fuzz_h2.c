/*
 * fuzz_h2.c -- libFuzzer target for the HTTP/2 input path (h2.c over
 * libnghttp2): frames, HPACK, the request-head conversion, the budgets and
 * the stream bookkeeping.
 *
 * Input: byte 0 is a control byte (bit 0: do not prepend the client
 * preface; bits 1-3: how the rest is cut into reads; bit 4: the upper
 * layer holds streams after a reset; bit 5: it answers in pieces), the
 * rest is what the client sends.  Between reads the server's output is
 * taken (as a client that reads), time moves and h2_conn_tick() runs.  The
 * fake request layer answers every request, reads every body and releases
 * every stream, so the stream bookkeeping is exercised to the end.
 * Invariants: no crash, no leak (ASan), the head slices lie in bounds, the
 * output buffer stays bounded, and no stream is left once everything was
 * released and the connection freed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2.h"

#define FUZZ_ASSERT(e) do { if (!(e)) __builtin_trap(); } while (0)
#define NREQ 64

struct freq {
    struct h2_stream *st;
    bool used;
    unsigned pieces;
};

struct fsrv {
    struct freq r[NREQ];
    bool hold;
    bool pieces;
};

static const char body[] = "0123456789abcdef0123456789abcdef";

static void
answer(struct freq *q)
{
    static const struct h1_header f[] = { { { "Content-Type", 12 }, { "text/plain", 10 } },
                                          { { "Connection", 10 }, { "close", 5 } } };
    int r = h2_stream_respond(q->st, 200, f, 2, true);

    if (r == 0)
        (void)h2_stream_write(q->st, body, q->pieces > 1 ? 8 : sizeof(body) - 1, q->pieces <= 1);
}

static void *
on_request(void *ud, struct h2_stream *st, const struct h2_request *rq)
{
    struct fsrv *s = ud;

    FUZZ_ASSERT(rq->req.method.len > 0);
    for (unsigned i = 0; i < rq->req.nhdrs; i++)
        FUZZ_ASSERT(rq->req.hdrs[i].name.len > 0 || rq->req.hdrs[i].value.len == 0);
    for (unsigned i = 0; i < NREQ; i++) {
        if (!s->r[i].used) {
            s->r[i] = (struct freq){ .st = st, .used = true, .pieces = s->pieces ? 3 : 1 };
            if ((i & 3) != 3)       /* most answer at once; some after the body */
                answer(&s->r[i]);
            return &s->r[i];
        }
    }
    return NULL;                    /* refused */
}

static void
on_body(void *ud)
{
    struct freq *q = ud;
    struct ac_slice b;
    bool end;

    h2_stream_body(q->st, &b, &end);
    if (b.len > 0) {
        volatile char sink = b.p[0];
        (void)sink;
        volatile char last = b.p[b.len - 1];
        (void)last;
        h2_stream_body_consume(q->st, b.len);
    }
    h2_stream_body(q->st, &b, &end);
    if (end && h2_stream_writable(q->st) == false)
        answer(q);                  /* no-op when already answered */
}

static void
on_writable(void *ud)
{
    struct freq *q = ud;

    if (q->pieces > 1) {
        q->pieces--;
        (void)h2_stream_write(q->st, body, q->pieces > 1 ? 8 : 4, q->pieces == 1);
        return;
    }
    h2_stream_release(&q->st);
    q->used = false;
}

static struct fsrv *cur;

static void
on_close(void *ud, uint32_t code, bool final)
{
    struct freq *q = ud;

    (void)code;
    if (final || !cur->hold) {
        if (!final)
            h2_stream_release(&q->st);
        q->st = NULL;
        q->used = false;
    }
}

static const struct h2_ops ops = {
    .on_request = on_request,
    .on_body = on_body,
    .on_writable = on_writable,
    .on_close = on_close,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct h2_settings set = {
        .max_concurrent_streams = 16,
        .max_header_list = 4096,
        .max_fields = 32,
        .max_target = 1024,
        .header_table_size = 4096,
        .initial_window = 65535,
        .conn_window = 1 << 20,
        .max_frame_size = 16384,
        .max_continuations = 8,
        .max_resets = 20,
        .max_settings = 20,
        .max_pings = 20,
        .max_empty = 20,
        .out_buffer = 32768,
        .send_timeout = 5,
        .head_timeout = 3,
        .idle_timeout = 10,
    };
    static const size_t cuts[8] = { 1, 7, 9, 64, 512, 4096, 65536, 1 << 30 };
    struct fsrv s;
    struct h2_conn *h;
    double now = 1000;
    uint8_t ctl;
    size_t cut;

    if (size < 1)
        return 0;
    ctl = data[0];
    data++;
    size--;
    memset(&s, 0, sizeof(s));
    s.hold = (ctl & 0x10) != 0;
    s.pieces = (ctl & 0x20) != 0;
    cur = &s;
    h = h2_conn_new(&set, &ops, &s, now);
    FUZZ_ASSERT(h != NULL);
    if (!(ctl & 1))
        (void)h2_conn_recv(h, H2_PREFACE, H2_PREFACE_LEN, now);
    cut = cuts[(ctl >> 1) & 7];
    while (size > 0) {
        size_t n = size < cut ? size : cut;
        int r = h2_conn_recv(h, data, n, now);
        struct ac_slice out;

        FUZZ_ASSERT(r == 0 || r == AC_EPROTO);
        data += n;
        size -= n;
        for (int i = 0; i < 4; i++) {
            out = h2_conn_output(h, now);
            FUZZ_ASSERT(out.len <= 2 * 65536);
            if (out.len == 0)
                break;
            h2_conn_output_done(h, out.len, now);
        }
        now += 0.5;
        h2_conn_tick(h, now);
        if (r != 0 && h2_conn_finished(h))
            break;
    }
    /* the layer above lets everything go, then the connection */
    for (unsigned i = 0; i < NREQ; i++)
        if (s.r[i].used && s.r[i].st != NULL)
            h2_stream_release(&s.r[i].st);
    (void)h2_conn_output(h, now);
    h2_conn_free(&h);
    return 0;
}
