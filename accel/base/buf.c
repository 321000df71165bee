/*
 * buf.c -- output buffers with a sticky error, and I/O windows.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void
ac_buf_init(struct ac_buf *b, size_t initial, size_t limit)
{
    b->p = initial ? ac_xmalloc(initial) : NULL;
    b->cap = initial;
    b->len = 0;
    b->limit = limit;
    b->error = false;
}

void
ac_buf_free(struct ac_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = b->len = 0;
}

void
ac_buf_reset(struct ac_buf *b)
{
    b->len = 0;
    b->error = false;
}

char *
ac_buf_reserve(struct ac_buf *b, size_t n)
{
    size_t need, ncap;

    if (b->error)
        return NULL;
    need = b->len + n;
    if (need < b->len || (b->limit && need > b->limit)) {
        b->error = true;
        return NULL;
    }
    if (need > b->cap) {
        ncap = b->cap ? b->cap : 256;
        while (ncap < need)
            ncap *= 2;
        if (b->limit && ncap > b->limit)
            ncap = b->limit;
        b->p = ac_xrealloc(b->p, ncap);
        b->cap = ncap;
    }
    return b->p + b->len;
}

void
ac_buf_commit(struct ac_buf *b, size_t n)
{
    AC_ASSERT(b->len + n <= b->cap);
    b->len += n;
}

void
ac_buf_cat(struct ac_buf *b, const void *p, size_t n)
{
    char *d = ac_buf_reserve(b, n);

    if (d == NULL)
        return;
    if (n)
        memcpy(d, p, n);
    b->len += n;
}

void
ac_buf_cats(struct ac_buf *b, struct ac_slice s)
{
    ac_buf_cat(b, s.p, s.len);
}

void
ac_buf_catstr(struct ac_buf *b, const char *s)
{
    ac_buf_cat(b, s, strlen(s));
}

void
ac_buf_catu(struct ac_buf *b, uint64_t v)
{
    char tmp[20], *p = tmp + sizeof(tmp);

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    ac_buf_cat(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void
ac_buf_cati(struct ac_buf *b, int64_t v)
{
    if (v < 0) {
        ac_buf_cat(b, "-", 1);
        ac_buf_catu(b, (uint64_t)0 - (uint64_t)v);     /* INT64_MIN too */
        return;
    }
    ac_buf_catu(b, (uint64_t)v);
}

void
ac_buf_field(struct ac_buf *b, struct ac_slice name, struct ac_slice value)
{
    ac_buf_cats(b, name);
    ac_buf_cat(b, ": ", 2);
    ac_buf_cats(b, value);
    ac_buf_cat(b, "\r\n", 2);
}

void
ac_buf_json_escape(struct ac_buf *b, struct ac_slice v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c == '"' || c == '\\')
            ac_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            ac_buf_cat(b, "\\n", 2);     /* multi-line messages stay readable */
        else if (c < 0x20)
            ac_buf_printf(b, "\\u%04x", c);
        else
            ac_buf_cat(b, &v.p[i], 1);
    }
}

void
ac_buf_printf(struct ac_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->error = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        ac_buf_cat(b, small, (size_t)n);
        return;
    }
    char *d = ac_buf_reserve(b, (size_t)n + 1);
    if (d == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
ac_iobuf_init(struct ac_iobuf *b, size_t cap)
{
    b->data = ac_xmalloc(cap);
    b->cap = cap;
    b->start = b->end = 0;
}

void
ac_iobuf_free(struct ac_iobuf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->start = b->end = 0;
}

void
ac_iobuf_compact(struct ac_iobuf *b)
{
    if (b->start == 0)
        return;
    memmove(b->data, b->data + b->start, b->end - b->start);
    b->end -= b->start;
    b->start = 0;
}

void
ac_iobuf_grow(struct ac_iobuf *b, size_t cap)
{
    if (cap <= b->cap)
        return;
    b->data = ac_xrealloc(b->data, cap);
    b->cap = cap;
}
