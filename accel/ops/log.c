/*
 * log.c -- error and access logs.
 */
#include "log.h"

#include <errno.h>
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

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = { "ERR", "WARN", "INFO", "DEBUG" };
    char line[1024];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n;
    int r;

    if (lvl > log_level)
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] ", (long)tv.tv_usec / 1000, names[lvl]);
    if (r > 0)
        n += (size_t)r;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (r > 0)
        n += AC_MIN((size_t)r, sizeof(line) - n - 2);
    line[n++] = '\n';
    /* One write(2) per line, so lines from several threads never interleave. */
    (void)!write(2, line, n);
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
    ac_buf_printf(b, " %s\n", r->cache ? r->cache : "-");
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
