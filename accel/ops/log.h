/*
 * log.h -- the error log (stderr, levels, timestamps) and the access log
 * (NCSA combined + duration + upstream status, buffered per worker and
 * flushed in batches, never one syscall per request).
 */
#ifndef AC_LOG_H
#define AC_LOG_H

#include "ac.h"
#include "buf.h"

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Global, set once at start-up before threads exist (see architecture.md). */
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_E(...) log_msg(LOG_ERR, __VA_ARGS__)
#define LOG_W(...) log_msg(LOG_WARN, __VA_ARGS__)
#define LOG_I(...) log_msg(LOG_INFO, __VA_ARGS__)
#ifdef AC_DEBUG_LOG
#define AC_DEBUG(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#else
#define AC_DEBUG(...) ((void)0)
#endif

/* One access-log line's fields. */
struct log_access_rec {
    const char *client_ip;
    double t_start;             /* wall clock, seconds */
    double duration;            /* seconds */
    struct ac_slice method, target, proto;
    int status;
    uint64_t bytes;             /* body bytes sent */
    struct ac_slice referer, user_agent;
    int upstream_status;        /* 0: none ("-") */
    const char *cache;          /* "MISS", "HIT", "PASS", ... or NULL */
};

/* A per-worker access log: lines go into buf and are written with one
 * write(2) when it holds more than a batch or on the worker's timer. */
struct log_access {
    int fd;                     /* -1: disabled */
    struct ac_buf buf;
};

void log_access_init(struct log_access *la, int fd);
void log_access_add(struct log_access *la, const struct log_access_rec *r);
void log_access_flush(struct log_access *la);
void log_access_fini(struct log_access *la);

#endif /* AC_LOG_H */
