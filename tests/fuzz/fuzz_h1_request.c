/*
 * fuzz_h1_request.c -- libFuzzer target for h1_parse_request().
 *
 * The input is copied into an exactly-sized heap buffer so ASan catches a
 * one-byte overread.  Invariants checked beyond "does not crash":
 *   - the result is bytes consumed (1..n), AC_AGAIN or AC_EPROTO, and the
 *     error/reason fields agree with it;
 *   - every slice points inside the buffer (path may be the static "/");
 *   - a head that parses also parses alone (the bytes after it do not
 *     matter) and its prefix one byte short is AC_AGAIN;
 *   - tiny limits never crash either;
 *   - err_off names a byte inside the input (or SIZE_MAX);
 *   - the strict target grammar (-p uri_strict=on) only ever refuses more:
 *     a head it takes, the liberal default takes the same way;
 *   - the canonical form of an accepted origin-form target (cache keys,
 *     h1_target_canon) is a target the strict grammar takes, and
 *     canonicalising it again changes nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h1_parse.h"

#define FUZZ_ASSERT(e) do { if (!(e)) __builtin_trap(); } while (0)

static void
check_slice(struct ac_slice s, const char *b, size_t n)
{
    if (s.len > 0)
        FUZZ_ASSERT(s.p >= b && s.p + s.len <= b + n);
}

static int
parse(const char *b, size_t n, const struct h1_limits *lim, struct h1_request *req)
{
    int r = h1_parse_request(b, n, lim, req);

    FUZZ_ASSERT(r == AC_AGAIN || r == AC_EPROTO || (r > 0 && (size_t)r <= n));
    if (r == AC_EPROTO) {
        FUZZ_ASSERT(req->error != H1_ERR_NONE && req->reason != NULL);
        FUZZ_ASSERT(req->err_off == SIZE_MAX || req->err_off <= n);
    } else {
        FUZZ_ASSERT(req->error == H1_ERR_NONE && req->reason == NULL);
    }
    if (r > 0) {
        FUZZ_ASSERT(req->nhdrs <= lim->max_headers);
        check_slice(req->method, b, (size_t)r);
        check_slice(req->target, b, (size_t)r);
        if (!(req->path.len == 1 && req->path.p[0] == '/'))
            check_slice(req->path, b, (size_t)r);
        check_slice(req->host, b, (size_t)r);
        for (unsigned i = 0; i < req->nhdrs; i++) {
            FUZZ_ASSERT(req->hdrs[i].name.len > 0);
            check_slice(req->hdrs[i].name, b, (size_t)r);
            check_slice(req->hdrs[i].value, b, (size_t)r);
        }
        FUZZ_ASSERT(req->method.len > 0 && req->target.len > 0);
        FUZZ_ASSERT(req->body <= H1_BODY_CHUNKED);
        FUZZ_ASSERT(!(req->flags & H1_F_EXPECT_100) || req->minor >= 1);
    }
    return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const struct h1_limits lim = { 8192, 2048, 4096, 64, false };
    static const struct h1_limits strict = { 8192, 2048, 4096, 64, true };
    static const struct h1_limits tiny = { 40, 12, 16, 2, false };
    struct h1_header hdrs[64], shdrs[64];
    struct h1_request req = { .hdrs = hdrs };
    char *b = malloc(n ? n : 1);
    int r;

    memcpy(b, d, n);
    r = parse(b, n, &lim, &req);
    if (r > 0) {
        char *alone = malloc((size_t)r);
        struct h1_request again = { .hdrs = hdrs };
        uint64_t cl = req.content_length;
        unsigned flags = req.flags;

        if (req.path.len > 0 && req.path.p[0] == '/' && req.path.len <= 600) {
            char canon[1800], again2[5400], line[1900];
            struct h1_header ch[2];
            struct h1_request creq = { .hdrs = ch };
            size_t cn = h1_target_canon(req.path.p, req.path.len, canon);
            int ln;

            FUZZ_ASSERT(cn >= req.path.len && cn <= 3 * req.path.len);
            FUZZ_ASSERT(h1_target_canon(canon, cn, again2) == cn && memcmp(canon, again2, cn) == 0);
            ln = snprintf(line, sizeof(line), "GET %.*s HTTP/1.1\r\nHost: a\r\n\r\n", (int)cn,
                          canon);
            FUZZ_ASSERT(h1_parse_request(line, (size_t)ln, &strict, &creq) == ln);
        }
        memcpy(alone, b, (size_t)r);
        FUZZ_ASSERT(parse(alone, (size_t)r, &lim, &again) == r);
        FUZZ_ASSERT(again.flags == flags && again.content_length == cl);
        FUZZ_ASSERT(parse(alone, (size_t)r - 1, &lim, &again) == AC_AGAIN);
        free(alone);
    }
    {
        struct h1_request sreq = { .hdrs = shdrs };
        int sr = parse(b, n, &strict, &sreq);

        if (sr > 0)
            FUZZ_ASSERT(r == sr && req.flags == sreq.flags && req.body == sreq.body);
        else if (sr == AC_AGAIN)
            FUZZ_ASSERT(r == AC_AGAIN);
    }
    parse(b, n, &tiny, &req);
    free(b);
    return 0;
}
