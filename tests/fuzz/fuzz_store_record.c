/*
 * fuzz_store_record.c -- libFuzzer target for the on-disk record decoder
 * (store/store_record.c).  Includes store_int.h to reach the decoder, which
 * is internal to the store library.
 *
 * Property: any input either fails to decode, or decodes into an object
 * that re-encodes to exactly the same bytes (the format is canonical), and
 * nothing reads out of bounds on the way.  The fuzz build (AC_FUZZ) skips
 * the CRC check so that mutations reach the parser; the CRC field (bytes
 * 12..15) is therefore left out of the comparison.
 * Seeds: tests/fuzz/corpus/fuzz_store_record/ (records written by the store).
 */
#include "store.h"
#include "store_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An invariant for every input; a violation aborts and libFuzzer keeps the input. */
#define FUZZ_ASSERT(e) do { if (!(e)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* one memory-only store for the whole run (objects need one for accounting) */
static struct store *fz_store;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t digest[STORE_DIGEST_LEN];
    struct store_record r;
    struct store_obj *o;
    struct store_times t;
    size_t i, len;
    uint8_t *buf;

    if (fz_store == NULL) {
        struct store_config cfg;

        store_config_init(&cfg);
        cfg.shards = 1;
        if (store_open(&cfg, &fz_store) != STORE_OK)
            abort();
    }
    if (store_record_decode(data, size, &r) != 0)
        return 0;
    for (i = 0; i < r.ntags; i++)
        (void)store_record_tag(&r, i);
    o = store_obj_from_record(fz_store, digest, &r);
    if (o == NULL)
        return 0;
    store_obj_times(o, &t);
    len = store_record_size(o);
    FUZZ_ASSERT(len == size);           /* a decoded record re-encodes to its size */
    buf = malloc(len);
    if (buf == NULL)
        abort();
    store_record_encode(o, r.ban_seq, &t, buf, len);
    /* ... and to the same bytes (the checksum field aside) */
    FUZZ_ASSERT(memcmp(buf, data, 12) == 0 && memcmp(buf + 16, data + 16, size - 16) == 0);
    free(buf);
    store_obj_release(&o);
    return 0;
}
