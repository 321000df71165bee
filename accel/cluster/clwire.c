/*
 * clwire.c -- the cluster stream's entry format and entry ids (clwire.h).
 * Everything here reads bytes that came from Redis, which any client of
 * that Redis may have written: every length is checked, nothing is assumed
 * NUL-terminated, and a bad entry is an error, never an assertion.
 */
#include "clwire.h"

#include <stdio.h>

static const char *const op_names[] = {
    [CLWIRE_KEY] = "key", [CLWIRE_TAG] = "tag", [CLWIRE_BAN] = "ban", [CLWIRE_ALL] = "all",
};

const char *
clwire_op_name(enum clwire_op op)
{
    if ((unsigned)op < AC_ARRAY_LEN(op_names) && op_names[op] != NULL)
        return op_names[op];
    return "?";
}

int
clwire_encode(const struct clwire_entry *e, const char *argv[], size_t argvlen[])
{
    const char *op = clwire_op_name(e->op);
    int n = 0;

#define PAIR(f, vp, vl) do { argv[n] = (f); argvlen[n] = strlen(f); n++; \
                             argv[n] = (vp); argvlen[n] = (vl); n++; } while (0)
    PAIR("v", "1", 1);
    PAIR("op", op, strlen(op));
    PAIR("soft", (e->flags & CLWIRE_SOFT) ? "1" : "0", 1);
    PAIR("node", e->node.p != NULL ? e->node.p : "", e->node.len);
    PAIR("arg", e->arg.p != NULL ? e->arg.p : "", e->arg.len);
#undef PAIR
    return n;
}

int
clwire_decode(const struct ac_slice *fv, size_t n, struct clwire_entry *e, const char **why)
{
    bool have_v = false, have_op = false, have_soft = false, have_node = false, have_arg = false;

    memset(e, 0, sizeof(*e));
    *why = NULL;
    if (n % 2 != 0) {
        *why = "odd number of fields";
        return -1;
    }
    for (size_t i = 0; i < n; i += 2) {
        struct ac_slice f = fv[i], v = fv[i + 1];
        bool *seen = NULL;
        if (ac_slice_eq(f, AC_LIT("v")))
            seen = &have_v;
        else if (ac_slice_eq(f, AC_LIT("op")))
            seen = &have_op;
        else if (ac_slice_eq(f, AC_LIT("soft")))
            seen = &have_soft;
        else if (ac_slice_eq(f, AC_LIT("node")))
            seen = &have_node;
        else if (ac_slice_eq(f, AC_LIT("arg")))
            seen = &have_arg;
        else
            continue;               /* a field of a later version */
        if (*seen) {
            *why = "repeated field";
            return -1;
        }
        *seen = true;
        if (seen == &have_v) {
            if (!ac_slice_eq(v, AC_LIT("1"))) {
                *why = "unknown version";
                return -1;
            }
        } else if (seen == &have_op) {
            e->op = 0;
            for (unsigned k = 1; k < AC_ARRAY_LEN(op_names); k++)
                if (ac_slice_eq(v, AC_SLICE(op_names[k], strlen(op_names[k]))))
                    e->op = (enum clwire_op)k;
            if (e->op == 0) {
                *why = "unknown op";
                return -1;
            }
        } else if (seen == &have_soft) {
            if (v.len != 1 || (v.p[0] != '0' && v.p[0] != '1')) {
                *why = "bad soft flag";
                return -1;
            }
            e->flags = v.p[0] == '1' ? CLWIRE_SOFT : 0;
        } else if (seen == &have_node) {
            if (v.len == 0 || v.len > CLWIRE_NODE_MAX) {
                *why = "bad node id";
                return -1;
            }
            e->node = v;
        } else {
            if (v.len > CLWIRE_ARG_MAX) {
                *why = "arg too long";
                return -1;
            }
            e->arg = v;
        }
    }
    if (!have_v || !have_op || !have_node || !have_arg) {
        *why = "missing field";
        return -1;
    }
    if (e->op != CLWIRE_ALL && e->arg.len == 0) {
        *why = "empty arg";
        return -1;
    }
    return 0;
}

/* Strict unsigned decimal: at least one digit, at most 20, no overflow. */
static int
parse_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;

    if (p == end || end - p > 20)
        return -1;
    for (; p < end; p++) {
        unsigned d;
        if (*p < '0' || *p > '9')
            return -1;
        d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int
clwire_id_parse(struct ac_slice s, struct clwire_id *id)
{
    const char *dash;
    struct clwire_id r = { 0, 0 };

    if (s.p == NULL || s.len == 0)
        return -1;
    dash = memchr(s.p, '-', s.len);
    if (dash == NULL) {
        if (parse_u64(s.p, s.p + s.len, &r.ms) != 0)
            return -1;
    } else if (parse_u64(s.p, dash, &r.ms) != 0 ||
               parse_u64(dash + 1, s.p + s.len, &r.seq) != 0) {
        return -1;
    }
    *id = r;
    return 0;
}

char *
clwire_id_fmt(struct clwire_id id, char *out)
{
    snprintf(out, CLWIRE_ID_STRMAX, "%llu-%llu", (unsigned long long)id.ms,
             (unsigned long long)id.seq);
    return out;
}

int
clwire_id_cmp(struct clwire_id a, struct clwire_id b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}
