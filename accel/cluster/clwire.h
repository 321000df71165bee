/*
 * clwire.h -- what the cluster bus writes into Redis and reads back: the
 * invalidation stream's entries and stream entry ids.  Pure functions, no
 * I/O, so the parser can be unit-tested and fuzzed (tests/fuzz/fuzz_clwire.c).
 *
 * An entry of the stream (XADD KEY * field value ...) has these fields:
 *
 *   v     "1"                       format version
 *   op    "key" | "tag" | "ban" | "all"
 *   soft  "0" | "1"                 soft purge (key, tag)
 *   node  the publishing node's id (its cluster_addr)
 *   arg   key: the cache key bytes; tag: the surrogate key; ban: the ban's
 *         canonical text; all: empty (drop every object)
 *
 * Unknown fields are ignored (a later version may add some); an unknown
 * version or op is an error the consumer must treat conservatively.
 */
#ifndef AC_CLWIRE_H
#define AC_CLWIRE_H

#include "ac.h"

#include <stdint.h>

enum clwire_op { CLWIRE_KEY = 1, CLWIRE_TAG = 2, CLWIRE_BAN = 3, CLWIRE_ALL = 4 };

#define CLWIRE_SOFT 0x1u            /* soft purge (STORE_PURGE_SOFT) */
#define CLWIRE_ARG_MAX 65536        /* longest arg accepted (keys, tags, ban text) */
#define CLWIRE_NODE_MAX 255         /* longest node id */
#define CLWIRE_NFIELDS 10           /* encode: argv slots needed (5 pairs) */

/* A decoded entry: slices borrow the input (valid as long as it is). */
struct clwire_entry {
    enum clwire_op op;
    unsigned flags;                 /* CLWIRE_SOFT */
    struct ac_slice node;
    struct ac_slice arg;
};

/* A stream entry id "MS-SEQ" (both unsigned 64-bit decimals). */
struct clwire_id {
    uint64_t ms, seq;
};

#define CLWIRE_ID_STRMAX 44         /* "18446744073709551615-18446744073709551615" + NUL */

/*
 * Fill argv/argvlen[0..CLWIRE_NFIELDS) with the field/value pairs of e
 * (borrowing e's slices and static strings); returns the count (always
 * CLWIRE_NFIELDS).  For hiredis' redisAsyncCommandArgv after "XADD" KEY "*".
 */
int clwire_encode(const struct clwire_entry *e, const char *argv[], size_t argvlen[]);

/*
 * Decode n field/value slices (fv[0] field, fv[1] value, ...; n even).
 * Returns 0 with *e filled, or -1 with a static reason in *why: missing or
 * repeated field, bad version, unknown op, bad soft flag, limits.
 */
int clwire_decode(const struct ac_slice *fv, size_t n, struct clwire_entry *e, const char **why);

/* Parse "MS-SEQ" (or "MS", seq 0) strictly: digits only, no overflow.
 * 0 or -1. */
int clwire_id_parse(struct ac_slice s, struct clwire_id *id);
/* Format id into out (CLWIRE_ID_STRMAX bytes); returns out. */
char *clwire_id_fmt(struct clwire_id id, char *out);
/* <0, 0, >0 as a is older than, equal to, newer than b. */
int clwire_id_cmp(struct clwire_id a, struct clwire_id b);

/* Name of an op ("key", ...), or "?". */
const char *clwire_op_name(enum clwire_op op);

#endif /* AC_CLWIRE_H */
