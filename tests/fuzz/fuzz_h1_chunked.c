/*
 * fuzz_h1_chunked.c -- libFuzzer target for h1_chunked_decode().
 *
 * The input is a chunked body, copied into an exactly-sized heap buffer.  It
 * is decoded three ways: whole, split in two at an offset derived from the
 * input, and one byte per call.  All three must yield the same data bytes
 * and the same verdict (done, error, or needs more), and the same number of
 * bytes consumed unless there was an error.  Every returned slice must lie
 * inside the bytes that call consumed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1_parse.h"

#define FUZZ_ASSERT(e) do { if (!(e)) __builtin_trap(); } while (0)

struct out {
    int rc;                 /* AC_AGAIN, 0 (done) or AC_EPROTO */
    char *data;
    size_t dlen, consumed;
};

/* b holds exactly n bytes (a heap block of that size), so ASan sees any
 * read past them. */
static void
feed(struct h1_chunked *c, char *b, const char *src, size_t n, struct out *o)
{
    size_t off = 0;

    memcpy(b, src, n);
    while (o->rc == AC_AGAIN && off < n) {
        struct ac_slice data;
        long r = h1_chunked_decode(c, b + off, n - off, &data);

        if (r == AC_EPROTO) {
            FUZZ_ASSERT(c->reason != NULL);
            o->rc = AC_EPROTO;
            break;
        }
        FUZZ_ASSERT(r > 0 && (size_t)r <= n - off);
        FUZZ_ASSERT(data.len <= (size_t)r);
        FUZZ_ASSERT(data.len == 0 || (data.p >= b + off && data.p + data.len <= b + off + (size_t)r));
        memcpy(o->data + o->dlen, data.p, data.len);
        o->dlen += data.len;
        off += (size_t)r;
        o->consumed += (size_t)r;
        if (h1_chunked_done(c))
            o->rc = 0;
    }
}

static void
run(const char *s, size_t n, size_t split, bool bytewise, struct out *o)
{
    struct h1_chunked c;

    h1_chunked_init(&c);
    c.max_line = 64;
    o->rc = AC_AGAIN;
    o->dlen = o->consumed = 0;
    if (bytewise) {
        char *one = malloc(1);

        for (size_t i = 0; i < n; i++)
            feed(&c, one, s + i, 1, o);
        free(one);
    } else {
        char *first = malloc(split ? split : 1), *rest = malloc(n - split ? n - split : 1);

        feed(&c, first, s, split, o);
        feed(&c, rest, s + split, n - split, o);
        free(first);
        free(rest);
    }
    if (o->rc == 0)
        FUZZ_ASSERT(c.total == o->dlen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *s = (const char *)d;
    struct out a, b, c;
    size_t split = 0;

    for (size_t i = 0; i < n; i++)
        split = split * 31 + d[i];
    split = n ? split % (n + 1) : 0;
    a.data = malloc(n + 1);
    b.data = malloc(n + 1);
    c.data = malloc(n + 1);
    run(s, n, n, false, &a);
    run(s, n, split, false, &b);
    run(s, n, 0, true, &c);
    FUZZ_ASSERT(a.rc == b.rc && a.rc == c.rc);
    FUZZ_ASSERT(a.dlen == b.dlen && a.dlen == c.dlen);
    FUZZ_ASSERT(memcmp(a.data, b.data, a.dlen) == 0 && memcmp(a.data, c.data, a.dlen) == 0);
    if (a.rc != AC_EPROTO)
        FUZZ_ASSERT(a.consumed == b.consumed && a.consumed == c.consumed);
    free(a.data);
    free(b.data);
    free(c.data);
    return 0;
}
