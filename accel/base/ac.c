/*
 * ac.c -- panic and allocation helpers shared by the whole daemon.
 */
#include "ac.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

int
ac_file_readable(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int e = 0;

    if (fd < 0)
        e = errno;
    else if (fstat(fd, &st) != 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        e = EISDIR;
    if (fd >= 0)
        close(fd);
    if (e != 0) {
        snprintf(err, errlen, "%s", strerror(e));
        return -1;
    }
    return 0;
}
