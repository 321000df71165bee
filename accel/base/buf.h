/*
 * buf.h -- byte buffers.
 *
 * struct ac_buf is a grow-only output buffer with a sticky error (like
 * Varnish's VSB): appends after a failure are ignored and the caller checks
 * ac_buf_error() once at the end.  It never moves behind the caller's back:
 * only appends and ac_buf_reserve() may reallocate, and slices into it are
 * valid until the next such call.
 *
 * struct ac_iobuf is a fixed-capacity I/O window [start, end) used for
 * socket reads; ac_iobuf_compact() moves unread bytes to the front, which
 * invalidates slices into it.
 */
#ifndef AC_BUF_H
#define AC_BUF_H

#include "ac.h"

struct ac_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t limit;   /* 0: no limit; else appends beyond it set the error */
    bool error;
};

void ac_buf_init(struct ac_buf *b, size_t initial, size_t limit);
void ac_buf_free(struct ac_buf *b);
void ac_buf_reset(struct ac_buf *b);
void ac_buf_cat(struct ac_buf *b, const void *p, size_t n);
void ac_buf_cats(struct ac_buf *b, struct ac_slice s);
void ac_buf_catstr(struct ac_buf *b, const char *s);
void ac_buf_printf(struct ac_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append v in decimal: the numbers of a cache hit's head (Content-Length,
 * Age, ttl) without printf's format parsing (four of them made up a third
 * of a 1 KiB hit's instructions). */
void ac_buf_catu(struct ac_buf *b, uint64_t v);
void ac_buf_cati(struct ac_buf *b, int64_t v);
/* Append one header field line, "name: value\r\n". */
void ac_buf_field(struct ac_buf *b, struct ac_slice name, struct ac_slice value);
/* Append v as the inside of a JSON string (quotes, backslashes and control
 * characters escaped; no surrounding quotes). */
void ac_buf_json_escape(struct ac_buf *b, struct ac_slice v);
/* Reserve n bytes at the end; returns NULL (and sets the error) on failure.
 * The caller writes up to n bytes and then calls ac_buf_commit(). */
char *ac_buf_reserve(struct ac_buf *b, size_t n);
void ac_buf_commit(struct ac_buf *b, size_t n);
static inline bool
ac_buf_error(const struct ac_buf *b)
{
    return b->error;
}
static inline struct ac_slice
ac_buf_slice(const struct ac_buf *b)
{
    return AC_SLICE(b->p, b->len);
}

struct ac_iobuf {
    char *data;
    size_t cap;
    size_t start;   /* first unread byte */
    size_t end;     /* one past the last byte read */
};

void ac_iobuf_init(struct ac_iobuf *b, size_t cap);
void ac_iobuf_free(struct ac_iobuf *b);
void ac_iobuf_compact(struct ac_iobuf *b);
/* Grow capacity to at least cap (never shrinks); invalidates slices. */
void ac_iobuf_grow(struct ac_iobuf *b, size_t cap);
static inline size_t
ac_iobuf_len(const struct ac_iobuf *b)
{
    return b->end - b->start;
}
static inline size_t
ac_iobuf_room(const struct ac_iobuf *b)
{
    return b->cap - b->end;
}
static inline const char *
ac_iobuf_head(const struct ac_iobuf *b)
{
    return b->data + b->start;
}
static inline void
ac_iobuf_consume(struct ac_iobuf *b, size_t n)
{
    AC_ASSERT(n <= b->end - b->start);
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

#endif /* AC_BUF_H */
