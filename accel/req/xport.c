/*
 * xport.c -- helpers every transport shares: walking the fields of a
 * response head (xport.h).
 */
#include "xport.h"

void
xp_fields_init(struct xp_field_iter *it, const struct xp_head *h)
{
    it->h = h;
    it->blk = 0;
    it->off = 0;
}

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * The blocks are accel's own output (a stored header block, fields it
 * wrote), so every line ends with CRLF; a last line without one still
 * counts, a line without a colon is skipped rather than trusted.
 */
bool
xp_fields_next(struct xp_field_iter *it, struct ac_slice *name, struct ac_slice *value)
{
    const struct xp_head *h = it->h;

    while (it->blk < h->nblk) {
        struct ac_slice b = h->blk[it->blk];
        if (it->off >= b.len) {
            it->blk++;
            it->off = 0;
            continue;
        }
        const char *p = b.p + it->off, *end = b.p + b.len;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;
        it->off = (size_t)(e - b.p) + (nl != NULL);
        if (e > p && e[-1] == '\r')
            e--;
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon == NULL || colon == p)
            continue;
        const char *v = colon + 1;
        while (v < e && is_ows(*v))
            v++;
        while (e > v && is_ows(e[-1]))
            e--;
        *name = AC_SLICE(p, (size_t)(colon - p));
        *value = AC_SLICE(v, (size_t)(e - v));
        return true;
    }
    return false;
}
