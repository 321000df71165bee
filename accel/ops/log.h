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
/* Whether messages of this level are written (-d turns on LOG_DEBUG). */
bool log_enabled(enum log_level lvl);
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
    const char *cache;          /* "MISS", "HIT", "PASS", "SYNTH", ... or NULL */
    const char *bad_reason;     /* a request the parser refused: its rule (h1_request's
                                 * reason); the cache field then reads
                                 * BAD:<rule, spaces as '-'>[@<byte offset>] */
    size_t bad_off;             /* offset of the offending byte, SIZE_MAX: none */
};

/* A per-worker access log: lines go into buf and are written with one
 * write(2) when it holds more than a batch or on the worker's timer. */
struct log_access {
    int fd;                     /* -1: disabled */
    struct ac_buf buf;
};

/*
 * A request head the parser refused, at debug level (-d): the client, the
 * status, the rule (reason), the byte offset and the bytes around it,
 * escaped: `client 10.0.0.7: 400 bad request: control character in
 * request-target at byte 6: "GET /a\x01b HTTP/1.1\r\nHost: ..."`.
 * head/len: what had been read (may be incomplete); off SIZE_MAX: no byte.
 */
void log_bad_request(const char *client_ip, int status, const char *reason, size_t off,
                     const char *head, size_t len);

/*
 * Reopen the log files after logrotate moved them (SIGUSR1): the error log
 * (-e FILE, on fd 2) and the access log (-l FILE, the workers' shared fd).
 * Each new file is opened (O_APPEND, created 0644) and dup2()ed onto the
 * old descriptor, so every thread keeps writing to the same fd number and
 * no lock is needed; a file that cannot be opened keeps the old one.
 * Returns the number of files that failed (each logged).
 */
int log_reopen(const char *error_log, const char *access_log, int access_fd);
/* Open path for appending as the error log and make it fd 2 (stderr).
 * 0, or -1 with the errno text in err. */
int log_error_file_open(const char *path, char *err, size_t errlen);

void log_access_init(struct log_access *la, int fd);
void log_access_add(struct log_access *la, const struct log_access_rec *r);
void log_access_flush(struct log_access *la);
void log_access_fini(struct log_access *la);

#endif /* AC_LOG_H */
