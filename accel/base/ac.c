/*
 * ac.c -- panic and allocation helpers shared by the whole daemon.
 */
#include "ac.h"

#include <stdio.h>
#include <stdlib.h>

void
ac_panic(const char *func, const char *file, int line, const char *expr)
{
    fprintf(stderr, "accel: panic: %s:%d: %s(): assertion failed: %s\n", file, line, func, expr);
    fflush(stderr);
    abort();
}

void *
ac_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        ac_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

void *
ac_xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);

    if (p == NULL)
        ac_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

void *
ac_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        ac_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

char *
ac_xstrndup(const char *s, size_t n)
{
    char *d = ac_xmalloc(n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *
ac_xstrdup(const char *s)
{
    return ac_xstrndup(s, strlen(s));
}
