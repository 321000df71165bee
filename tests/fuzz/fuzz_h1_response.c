/*
 * fuzz_h1_response.c -- libFuzzer target for h1_parse_response().
 *
 * The first input byte picks the request method (low two bits: GET, HEAD,
 * CONNECT, PUT); the rest is the response, copied into an exactly-sized heap
 * buffer.  Checks: result range, error fields, slices inside the buffer,
 * framing rules (no body for HEAD/1xx/204/304, close-delimited implies
 * H1_F_CLOSE), and that a parsed head parses the same alone.
 */
#include <stdint.h>
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
parse(const char *b, size_t n, struct ac_slice m, struct h1_response *resp)
{
    static const struct h1_limits lim = { 8192, 2048, 4096, 64, false };
    int r = h1_parse_response(b, n, &lim, m, resp);

    FUZZ_ASSERT(r == AC_AGAIN || r == AC_EPROTO || (r > 0 && (size_t)r <= n));
    if (r == AC_EPROTO)
        FUZZ_ASSERT(resp->error != H1_ERR_NONE && resp->reason != NULL);
    else
        FUZZ_ASSERT(resp->error == H1_ERR_NONE && resp->reason == NULL);
    if (r > 0) {
        int st = resp->status;

        FUZZ_ASSERT(st >= 100 && st <= 999);
        check_slice(resp->reason_phrase, b, (size_t)r);
        for (unsigned i = 0; i < resp->nhdrs; i++) {
            check_slice(resp->hdrs[i].name, b, (size_t)r);
            check_slice(resp->hdrs[i].value, b, (size_t)r);
        }
        if (st < 200 || st == 204 || st == 304 || ac_slice_eq(m, AC_LIT("HEAD")))
            FUZZ_ASSERT(resp->body == H1_BODY_NONE);
        if (resp->body == H1_BODY_CLOSE)
            FUZZ_ASSERT(resp->flags & H1_F_CLOSE);
    }
    return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const struct ac_slice methods[4] = {
        { "GET", 3 }, { "HEAD", 4 }, { "CONNECT", 7 }, { "PUT", 3 },
    };
    struct h1_header hdrs[64];
    struct h1_response resp = { .hdrs = hdrs };
    struct ac_slice m;
    char *b;
    int r;

    if (n == 0)
        return 0;
    m = methods[d[0] & 3];
    d++;
    n--;
    b = malloc(n ? n : 1);
    memcpy(b, d, n);
    r = parse(b, n, m, &resp);
    if (r > 0) {
        char *alone = malloc((size_t)r);
        struct h1_response again = { .hdrs = hdrs };
        enum h1_body body = resp.body;

        memcpy(alone, b, (size_t)r);
        FUZZ_ASSERT(parse(alone, (size_t)r, m, &again) == r);
        FUZZ_ASSERT(again.body == body);
        FUZZ_ASSERT(parse(alone, (size_t)r - 1, m, &again) == AC_AGAIN);
        free(alone);
    }
    free(b);
    return 0;
}
