/*
 * fuzz_probe_status.c -- libFuzzer target for probe_parse_status(), which
 * reads the status line a health probe gets back from an origin.
 *
 * The input is copied into an exactly-sized heap buffer (ASan sees any read
 * past it).  Invariants: the answer is -1 (not HTTP), 0 (need more) or a
 * status code 100..999; a verdict reached on a prefix never changes when
 * more bytes arrive (the probe decides as soon as it can).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

#define FUZZ_ASSERT(e) do { if (!(e)) __builtin_trap(); } while (0)

static int
parse_copy(const uint8_t *data, size_t n)
{
    char *b = malloc(n ? n : 1);
    int r;

    memcpy(b, data, n);
    r = probe_parse_status(b, n);
    free(b);
    return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int whole = parse_copy(data, size);

    FUZZ_ASSERT(whole == -1 || whole == 0 || (whole >= 100 && whole <= 999));
    for (size_t k = 0; k < size && k < 300; k++) {
        int pre = parse_copy(data, k);
        FUZZ_ASSERT(pre == -1 || pre == 0 || (pre >= 100 && pre <= 999));
        if (pre != 0)
            FUZZ_ASSERT(pre == whole);
    }
    return 0;
}
