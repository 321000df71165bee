/*
 * fetch.h -- one exchange with an origin for a request: a connection
 * (pooled or new, within the backend's max_connections), the request head
 * and body out, the response head and body in.
 *
 * The owner (the request machine) drives it: each call does what it can
 * without blocking and returns FETCH_OK (done), AC_AGAIN (waiting: the
 * owner's wake callback runs, on its worker, when the origin socket, the
 * timer or a max_connections slot has something), or a FETCH_E* code with
 * fail_status / fail_what / fail_err saying why.  The exchange knows no
 * request, no policy and no cache: what it needs of the request (may a
 * dead pooled connection be retried?) is told to it.
 *
 * Flow control: the response body moves through one fixed buffer (relay,
 * relay_buffer bytes).  fetch_body_take() hands out runs of body bytes
 * that stay in place until the next fetch_body_read(), which the owner
 * calls only when everything taken is written out; so a slow client slows
 * the origin read instead of growing memory (a 1 GiB body needs 64 KiB).
 */
#ifndef AC_FETCH_H
#define AC_FETCH_H

#include "ac.h"
#include "buf.h"
#include "h1_parse.h"
#include "pool.h"
#include "wrk.h"

/* Results besides FETCH_OK (0) and AC_AGAIN. */
#define FETCH_OK       0
#define FETCH_EMOVE  (-100)     /* failed before any response byte (connect, send, a
                                 * close before answering): another server may be tried */
#define FETCH_ERETRY (-101)     /* a reused idle connection was dead: fetch_retry() */
#define FETCH_EQUEUE (-102)     /* no max_connections slot within backend_queue_timeout */
#define FETCH_EFAIL  (-103)     /* the origin failed (fail_status 502 or 504) */
#define FETCH_INTERIM  1        /* fetch_head(): a 1xx interim response is parsed */

/* Origin timeouts: bereq.*_timeout from the policy, else the backend's
 * declaration, else the -p parameter. */
enum fetch_tmo { FETCH_TMO_CONNECT, FETCH_TMO_FIRST_BYTE, FETCH_TMO_BETWEEN_BYTES };

struct fetch;
typedef void fetch_wake_f(struct fetch *f);

struct fetch {
    unsigned magic;
#define FETCH_MAGIC 0x1d6e5b93
    struct wrk *w;
    fetch_wake_f *wake;         /* something happened: drive the owner (worker thread) */
    const char *who;            /* the client, for log lines */
    const struct backend *be;
    struct oconn *oc;
    bool oc_reused;
    bool may_retry;             /* a dead reused connection may be retried (no body,
                                 * idempotent method): set by the owner */
    unsigned retries;           /* bereq.retries */
    double bto[3];              /* bereq.*_timeout (< 0: unset), by enum fetch_tmo */
    /* waiting for a max_connections slot */
    struct pool_waiter qw;
    struct wrk_wakeup qwake;
    double queue_until;
    bool queued;                /* entered the queue during this request */
    /* request */
    size_t bereq_off;
    /* response */
    struct ac_iobuf relay;      /* origin bytes */
    struct h1_header *bhdrs;    /* max_headers entries */
    struct h1_response resp;
    size_t head_len;            /* bytes of relay the parsed head occupies */
    uint64_t respbody_left;
    struct h1_chunked respchunk;
    bool origin_reusable;
    bool origin_eof;
    uint64_t resp_bytes_in;     /* origin bytes received for this response */
    bool poll_first;            /* wait for readiness first: a read would find nothing */
    /* waiting */
    int want;
    ev_timer tmr;
    bool timed_out;
    /* why the last call failed */
    int fail_status;
    const char *fail_what;
    int fail_err;
    char fail_buf[160];
};

/* Once, when the owner is made: w, wake (may be NULL until fetch_begin). */
void fetch_init(struct fetch *f, struct wrk *w);
/* A new exchange for the owner's request: be (may be NULL until chosen),
 * the owner's wake callback and the client's name for logs. */
void fetch_begin(struct fetch *f, fetch_wake_f *wake, const char *who);
/* End the exchange: close the connection, leave the slot queue, stop the
 * timer.  Keeps be, resp and the counters for the log and the policy. */
void fetch_end(struct fetch *f);
/* Free the buffers (owner destroyed). */
void fetch_fini(struct fetch *f);

double fetch_timeout(const struct fetch *f, enum fetch_tmo t);

/* Get a connection to f->be: a max_connections slot (waiting in the
 * backend's queue when none is free), then an idle connection or a new
 * one, and its TLS handshake for an .ssl backend.  FETCH_OK, AC_AGAIN,
 * FETCH_EMOVE (connect failed or timed out), FETCH_EQUEUE. */
int fetch_connect(struct fetch *f);
/* Send the request head.  FETCH_OK, AC_AGAIN, FETCH_ERETRY, FETCH_EMOVE,
 * FETCH_EFAIL (timeout). */
int fetch_send_head(struct fetch *f, const struct ac_buf *bereq);
/* Send body bytes: > 0 written, AC_AGAIN, FETCH_EFAIL (error; timeout 504). */
ssize_t fetch_send_body(struct fetch *f, struct ac_slice data);
/*
 * Read and parse the response head (method: the one sent; upgrade: the
 * request asked for an Upgrade, so a 101 is final).  FETCH_OK: f->resp is
 * the final head, reported to passive health; FETCH_INTERIM: f->resp is a
 * 1xx to relay, then call fetch_head_consume() and fetch_head() again
 * (100 Continue is skipped here); AC_AGAIN; FETCH_ERETRY; FETCH_EMOVE (no
 * response byte); FETCH_EFAIL (invalid, too large, timeout, cut).
 */
int fetch_head(struct fetch *f, struct ac_slice method, bool upgrade);
/* Drop the parsed head from the buffer; for a final head, set up the body
 * framing (respbody_left, respchunk, origin_reusable). */
void fetch_head_consume(struct fetch *f);
/* The next run of body bytes from the buffer (they stay in place until
 * fetch_body_read()): 1 with *data, 0 when nothing is buffered (or the
 * body is done), FETCH_EFAIL on bad chunked framing. */
int fetch_body_take(struct fetch *f, struct ac_slice *data);
/* Read more body bytes into the (empty) buffer: 1 read (or the end of a
 * close-delimited body), AC_AGAIN (between_bytes_timeout armed),
 * FETCH_EFAIL (closed or error mid-body). */
int fetch_body_read(struct fetch *f);
/* Has the body been read completely (per its framing)? */
bool fetch_body_done(const struct fetch *f);
/* Give the connection back: to the idle pool when reusable and nothing
 * more was read (and OpenSSL holds nothing more), else closed. */
void fetch_release(struct fetch *f, bool reusable);
void fetch_close(struct fetch *f);

/* A reused connection was dead: close it, count the retry, connect again. */
void fetch_retry(struct fetch *f);
/* The origin failed (status 502/504, what, errno): passive health, the
 * counters, the log line; the connection is closed. */
void fetch_failed(struct fetch *f, int status, const char *what, int err);
/* Go to another server after f->be failed before answering (the owner
 * chose `to`): health report, log line, counters. */
void fetch_move(struct fetch *f, const struct backend *to);
/* Move a response being read (connection, buffer, body framing) from src
 * to dst, a fresh exchange of another owner (a fill handed to an internal
 * request). */
void fetch_handover(struct fetch *dst, struct fetch *src);
/* Hand the connection over (tunnel): the caller owns it from now on. */
struct oconn *fetch_take_conn(struct fetch *f);

/* Wait for events on the origin connection (lazy stop, wrk_io_want) and,
 * with seconds >= 0, re-arm the timer (seconds < 0: leave it running). */
void fetch_want(struct fetch *f, int events, double seconds);

#endif /* AC_FETCH_H */
