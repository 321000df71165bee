/*
 * log.c -- error and access logs.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level = LOG_INFO;   /* global: set before threads start */

void
log_set_level(enum log_level lvl)
{
    log_level = lvl;
}

bool
log_enabled(enum log_level lvl)
{
    return lvl <= log_level;
}

/* Open path for appending; the fd, or -1 with errno set. */
static int
open_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int
log_error_file_open(const char *path, char *err, size_t errlen)
{
    int fd = open_append(path);

    if (fd < 0) {
        snprintf(err, errlen, "-e %s: %s", path, strerror(errno));
        return -1;
    }
    if (fd != 2) {
        if (dup2(fd, 2) < 0) {
            snprintf(err, errlen, "-e %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        close(fd);
    }
    return 0;
}

/* Open path again and put it on fd `onto` (dup2 replaces atomically: a
 * write by another thread goes to the old file or to the new one). */
static int
reopen_onto(const char *what, const char *path, int onto)
{
    int fd = open_append(path);

    if (fd < 0) {
        LOG_E("SIGUSR1: cannot reopen the %s %s: %s (still writing to the old file)", what, path,
              strerror(errno));
        return -1;
    }
    if (dup2(fd, onto) < 0) {
        LOG_E("SIGUSR1: cannot reopen the %s %s: dup2: %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    /* dup2 drops FD_CLOEXEC on the target; keep it (only the -e fd 2 is
     * meant to survive an exec, and accel does not exec) */
    if (onto > 2)
        (void)fcntl(onto, F_SETFD, FD_CLOEXEC);
    close(fd);
    return 0;
}

int
log_reopen(const char *error_log, const char *access_log, int access_fd)
{
    int failed = 0;

    if (error_log != NULL)
        failed += reopen_onto("error log", error_log, 2) != 0;
    if (access_log != NULL && strcmp(access_log, "-") != 0 && access_fd > 2)
        failed += reopen_onto("access log", access_log, access_fd) != 0;
    if (error_log != NULL)
        LOG_I("SIGUSR1: error log %s reopened", error_log);
    if (access_log != NULL && strcmp(access_log, "-") != 0 && access_fd > 2)
        LOG_I("SIGUSR1: access log %s reopened", access_log);
    if (error_log == NULL && (access_log == NULL || access_fd <= 2))
        LOG_I("SIGUSR1: no log file to reopen (-e FILE, -l FILE)");
    return failed;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = { "ERR", "WARN", "INFO", "DEBUG" };
    char msg[2048], out[4096], pre[64];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n = 0, pl;
    int r;

    if (lvl > log_level)
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    pl = strftime(pre, sizeof(pre), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(pre + pl, sizeof(pre) - pl, ".%03ldZ [%s] ", (long)tv.tv_usec / 1000, names[lvl]);
    if (r > 0)
        pl += AC_MIN((size_t)r, sizeof(pre) - pl - 1);
    va_start(ap, fmt);
    r = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r < 0)
        return;
    /* A multi-line message (a compiler diagnostic with its source line and
     * caret) gets the timestamp on every line, so grep and log shippers
     * never see a line without one.  One write(2) for all of it, so lines
     * from several threads never interleave. */
    for (const char *p = msg, *end = msg + AC_MIN((size_t)r, sizeof(msg) - 1); p < end || n == 0;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);

        if (n + pl + ll + 1 > sizeof(out))
            ll = n + pl + 1 < sizeof(out) ? sizeof(out) - n - pl - 1 : 0;
        if (n + pl + 1 > sizeof(out))
            break;
        memcpy(out + n, pre, pl);
        memcpy(out + n + pl, p, ll);
        n += pl + ll;
        out[n++] = '\n';
        if (nl == NULL || nl + 1 == end)
            break;
        p = nl + 1;
    }
    (void)!write(2, out, n);
}

void
log_access_init(struct log_access *la, int fd)
{
    la->fd = fd;
    ac_buf_init(&la->buf, fd >= 0 ? 16384 : 0, 0);
}

/* Append s with characters that could break the line format escaped. */
static void
cat_escaped(struct ac_buf *b, struct ac_slice s)
{
    static const char hex[] = "0123456789abcdef";

    if (s.len == 0) {
        ac_buf_cat(b, "-", 1);
        return;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) {
            char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
            ac_buf_cat(b, e, 4);
        } else {
            ac_buf_cat(b, &s.p[i], 1);
        }
    }
}

void
log_bad_request(const char *client_ip, int status, const char *reason, size_t off,
                 const char *head, size_t len)
{
    struct ac_buf b;
    size_t from = 0, to = AC_MIN(len, (size_t)64);
    char at[48] = "";

    if (!log_enabled(LOG_DEBUG))
        return;
    if (off != SIZE_MAX && off <= len) {
        from = off > 24 ? off - 24 : 0;
        to = AC_MIN(len, off + 24);
        snprintf(at, sizeof(at), " at byte %zu", off);
    }
    ac_buf_init(&b, 256, 0);
    cat_escaped(&b, AC_SLICE(head + from, to - from));
    ac_buf_cat(&b, "", 1);
    log_msg(LOG_DEBUG, "client %s: %d bad request: %s%s: %s\"%s\"%s", client_ip ? client_ip : "-",
            status, reason ? reason : "request head refused", at, from > 0 ? "..." : "",
            ac_buf_error(&b) ? "" : b.p, to < len ? "..." : "");
    ac_buf_free(&b);
}

void
log_access_add(struct log_access *la, const struct log_access_rec *r)
{
    struct ac_buf *b = &la->buf;
    char ts[64];
    struct tm tm;
    time_t t;

    if (la->fd < 0)
        return;
    t = (time_t)r->t_start;
    localtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%d/%b/%Y:%H:%M:%S %z", &tm);
    ac_buf_printf(b, "%s - - [%s] \"", r->client_ip ? r->client_ip : "-", ts);
    cat_escaped(b, r->method);
    ac_buf_cat(b, " ", 1);
    cat_escaped(b, r->target);
    ac_buf_cat(b, " ", 1);
    cat_escaped(b, r->proto);
    ac_buf_printf(b, "\" %d %llu \"", r->status, (unsigned long long)r->bytes);
    cat_escaped(b, r->referer);
    ac_buf_cat(b, "\" \"", 3);
    cat_escaped(b, r->user_agent);
    ac_buf_printf(b, "\" %.6f ", r->duration);
    if (r->upstream_status > 0)
        ac_buf_printf(b, "%d", r->upstream_status);
    else
        ac_buf_cat(b, "-", 1);
    if (r->bad_reason != NULL) {
        /* one field without spaces: BAD:control-character-in-request-target@6 */
        ac_buf_catstr(b, " BAD:");
        for (const char *p = r->bad_reason; *p; p++)
            ac_buf_cat(b, *p == ' ' ? "-" : p, 1);
        if (r->bad_off != SIZE_MAX)
            ac_buf_printf(b, "@%zu", r->bad_off);
        ac_buf_cat(b, "\n", 1);
    } else {
        ac_buf_printf(b, " %s\n", r->cache ? r->cache : "-");
    }
    if (ac_buf_error(b))
        ac_buf_reset(b);
    else if (b->len >= 8192)
        log_access_flush(la);
}

void
log_access_flush(struct log_access *la)
{
    size_t off = 0;

    if (la->fd < 0 || la->buf.len == 0)
        return;
    while (off < la->buf.len) {
        ssize_t n = write(la->fd, la->buf.p + off, la->buf.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;  /* a broken log must not stop serving; lines are dropped */
        off += (size_t)n;
    }
    ac_buf_reset(&la->buf);
}

void
log_access_fini(struct log_access *la)
{
    log_access_flush(la);
    ac_buf_free(&la->buf);
}
