/*
 * ac.h -- shared definitions for the accel daemon: slices, result codes,
 * assertions, allocation helpers.  Every accel/ .c includes this (through its
 * own header).  The libraries (store/, vcl-lite/) have their own equivalents.
 */
#ifndef AC_H
#define AC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

/* Result codes: 0 is success; "would block" is an ordinary result (nginx). */
#define AC_OK          0
#define AC_AGAIN      (-1)   /* need more input / would block */
#define AC_EPROTO     (-2)   /* peer broke the protocol */
#define AC_ETOOBIG    (-3)   /* a configured limit was hit */
#define AC_ECLOSED    (-4)   /* peer closed */
#define AC_ETIMEDOUT  (-5)
#define AC_EIO        (-6)   /* socket error (errno kept by the caller) */
#define AC_ENOMEM     (-7)

/* A borrowed byte range; never NUL-terminated.  Whoever hands one out says
 * how long it stays valid. */
struct ac_slice {
    const char *p;
    size_t len;
};
#define AC_LIT(s)        ((struct ac_slice){ (s), sizeof(s) - 1 })
#define AC_SLICE(p, n)   ((struct ac_slice){ (p), (n) })
#define AC_SLICE_FMT     "%.*s"
#define AC_SLICE_ARG(s)  (int)(s).len, (s).p

static inline bool
ac_slice_eq(struct ac_slice a, struct ac_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ASCII case-insensitive equality (header names, tokens). */
static inline bool
ac_slice_caseeq(struct ac_slice a, struct ac_slice b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return false;
    }
    return true;
}

/* Assertions catch our bugs, never bad input; they stay on in release builds. */
void ac_panic(const char *func, const char *file, int line, const char *expr)
    __attribute__((noreturn));
#define AC_ASSERT(e)   ((e) ? (void)0 : ac_panic(__func__, __FILE__, __LINE__, #e))
#define AC_ZERO(e)     AC_ASSERT((e) == 0)
#define AC_NOTNULL(p)  AC_ASSERT((p) != NULL)
#define AC_CHECK_OBJ(p, m) do { AC_NOTNULL(p); AC_ASSERT((p)->magic == (m)); } while (0)
#define AC_UNREACHABLE(why) ac_panic(__func__, __FILE__, __LINE__, (why))
#ifdef AC_SAN
#define AC_DEBUG_CHECK(e) AC_ASSERT(e)
#else
#define AC_DEBUG_CHECK(e) ((void)0)
#endif

#define AC_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define AC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define AC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Small fixed-size allocations abort on failure (h2o, Redis); sizes a peer
 * controls go through a limit first. */
void *ac_xmalloc(size_t n);
void *ac_xcalloc(size_t n, size_t m);
void *ac_xrealloc(void *p, size_t n);
char *ac_xstrdup(const char *s);
char *ac_xstrndup(const char *s, size_t n);

/* Can path be opened and read as a file?  0, or -1 with the system's words
 * for why in err ("No such file or directory", "Permission denied", "Is a
 * directory"), for messages such as "-c site.pem: No such file or
 * directory" that name the flag instead of a library's error code.  The
 * check opens the file (access(2) would answer for the real uid). */
int ac_file_readable(const char *path, char *err, size_t errlen);

#endif /* AC_H */
