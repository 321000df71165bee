/*
 * fuzz_gz_decode.c -- libFuzzer target for the stream wrappers of accel/cache/gz.c
 * on the decoding side, which take origin and stored bytes: any bytes in,
 * fed in pieces to the gzip and the brotli decoder, never a crash or a
 * leak; a stream reported finished re-encodes and decodes to the same bytes
 * (the first input byte picks the piece size).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gz.h"

#define FUZZ_ASSERT(e) do { if (!(e)) abort(); } while (0)
#define CAP (1 << 20)

/* Decode in[0..n) in pieces; the output (at most CAP) in out, its length in *outn. */
static int
decode(enum gz_kind k, const uint8_t *in, size_t n, size_t step, char *out, size_t *outn)
{
    struct gz_stream *g = gz_new(k, 0, 0);
    int r = GZ_OK;

    *outn = 0;
    for (size_t off = 0; off < n && r != GZ_ERR;) {
        const char *p = (const char *)in + off;
        size_t left = n - off < step ? n - off : step;
        off += left;
        for (;;) {
            size_t w = 0, left0 = left;
            if (*outn == CAP)
                break;
            r = gz_run(g, &p, &left, out + *outn, CAP - *outn, &w, GZ_NOFLUSH);
            *outn += w;
            if (r == GZ_ERR || (w == 0 && left == left0))
                break;
        }
    }
    r = r == GZ_ERR ? GZ_ERR : gz_finished(g) ? GZ_END : GZ_OK;
    gz_free(&g);
    return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[CAP], again[CAP];
    size_t step, n, m, zn;
    static char z[2 * CAP];

    if (size == 0)
        return 0;
    step = 1 + data[0] % 64;
    for (int kind = 0; kind < 2; kind++) {
        enum gz_kind dk = kind ? GZ_K_BR_DEC : GZ_K_GZIP_DEC;
        enum gz_kind ek = kind ? GZ_K_BR_ENC : GZ_K_GZIP_ENC;
        if (decode(dk, data + 1, size - 1, step, out, &n) != GZ_END || n == CAP)
            continue;
        /* round trip what decoded */
        struct gz_stream *e = gz_new(ek, 1, n);
        const char *p = out;
        size_t left = n, w = 0;
        FUZZ_ASSERT(gz_run(e, &p, &left, z, sizeof(z), &w, GZ_FINISH) == GZ_END);
        zn = w;
        gz_free(&e);
        FUZZ_ASSERT(decode(dk, (const uint8_t *)z, zn, 4096, again, &m) == GZ_END);
        FUZZ_ASSERT(m == n && memcmp(out, again, n) == 0);
    }
    return 0;
}
