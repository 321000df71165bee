/*
 * fuzz_accept_encoding.c -- libFuzzer target for the Accept-Encoding parser
 * (accel/cache/gz.c): any bytes in, split on newlines into field lines, never a
 * crash; every qvalue is within 0..1000; the chosen coding is always one of
 * those available, and an acceptable one whenever one is; a qvalue that
 * parses is 0..1000.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gz.h"

/* An invariant for every input; a violation aborts and libFuzzer keeps the input. */
#define FUZZ_ASSERT(e) do { if (!(e)) abort(); } while (0)

static int
q_of(const struct gz_accept *a, enum gz_enc e)
{
    return e == GZ_BR ? a->q_br : e == GZ_GZIP ? a->q_gzip : a->q_identity;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gz_accept_state st;
    struct gz_accept a;
    const char *p = (const char *)data, *end = p + size;
    /* a copy with no bytes after it, so an over-read is caught by ASan */
    char *copy = malloc(size ? size : 1);

    memcpy(copy, data, size);
    p = copy;
    end = copy + size;
    gz_accept_begin(&st);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        gz_accept_add(&st, AC_SLICE(p, (size_t)(e - p)));
        p = nl ? nl + 1 : end;
    }
    gz_accept_end(&st, &a);
    FUZZ_ASSERT(a.q_br >= 0 && a.q_br <= 1000);
    FUZZ_ASSERT(a.q_gzip >= 0 && a.q_gzip <= 1000);
    FUZZ_ASSERT(a.q_identity >= 0 && a.q_identity <= 1000);
    for (unsigned mask = 1; mask < 8; mask++) {
        enum gz_enc c = gz_choose(&a, mask);
        FUZZ_ASSERT(mask & GZ_MASK(c));
        bool any = false;
        int best = 0;
        for (int e = 0; e < 3; e++) {
            if ((mask & GZ_MASK(e)) && q_of(&a, (enum gz_enc)e) > 0) {
                any = true;
                if (q_of(&a, (enum gz_enc)e) > best)
                    best = q_of(&a, (enum gz_enc)e);
            }
        }
        FUZZ_ASSERT(!any || q_of(&a, c) == best);
    }
    int q = gz_qvalue(AC_SLICE(copy, size));
    FUZZ_ASSERT(q >= -1 && q <= 1000);
    (void)gz_compressible_type(AC_SLICE(copy, size));
    free(copy);
    return 0;
}
