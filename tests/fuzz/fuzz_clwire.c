/*
 * fuzz_clwire.c -- libFuzzer target for the cluster stream's entry decoder
 * and id parser (accel/cluster/clwire.c): what another node, or anybody with
 * access to the Redis, wrote into the stream.  The input is split into
 * field/value slices at 0x00 bytes (at most 32); the whole input is also
 * parsed as an id.  A decoded entry must encode and decode to itself, and
 * a parsed id must format and parse to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clwire.h"

#define FUZZ_ASSERT(e) do { if (!(e)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ac_slice fv[32];
    struct clwire_entry e, e2;
    struct clwire_id id, id2;
    const char *why;
    size_t n = 0, start = 0;
    char buf[CLWIRE_ID_STRMAX];

    if (clwire_id_parse(AC_SLICE((const char *)data, size), &id) == 0) {
        clwire_id_fmt(id, buf);
        FUZZ_ASSERT(clwire_id_parse(AC_SLICE(buf, strlen(buf)), &id2) == 0);
        FUZZ_ASSERT(clwire_id_cmp(id, id2) == 0);
    }
    for (size_t i = 0; i <= size && n < 32; i++) {
        if (i == size || data[i] == 0) {
            fv[n++] = AC_SLICE((const char *)data + start, i - start);
            start = i + 1;
        }
    }
    if (clwire_decode(fv, n, &e, &why) != 0) {
        FUZZ_ASSERT(why != NULL);
        return 0;
    }
    const char *argv[CLWIRE_NFIELDS];
    size_t len[CLWIRE_NFIELDS];
    struct ac_slice back[CLWIRE_NFIELDS];
    int k = clwire_encode(&e, argv, len);
    for (int i = 0; i < k; i++)
        back[i] = AC_SLICE(argv[i], len[i]);
    FUZZ_ASSERT(clwire_decode(back, (size_t)k, &e2, &why) == 0);
    FUZZ_ASSERT(e2.op == e.op && e2.flags == e.flags && ac_slice_eq(e2.node, e.node) &&
                ac_slice_eq(e2.arg, e.arg));
    return 0;
}
