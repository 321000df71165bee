/*
 * pool.h -- origin servers ("backends"), their health and counters, the
 * directors that choose among them, and per-worker pools of idle keep-alive
 * connections to them.
 *
 * A pool set is everything one policy program declares: its backends (in
 * declaration order, so a vcl_ref's idx indexes both) and its directors.
 * It is built on the main thread, then shared read-only by every worker,
 * the probe thread and the admin listener; only the atomics in it change.
 * A set lives as long as the program it was built from (vcl host data) and
 * as long as any origin connection to one of its backends (oc->be), so a
 * reload installs a new set while requests in flight finish on the old one.
 * With -b and no policy there is one set for the process lifetime.
 *
 * An oconn is owned by its worker: either idle in the pool (watched for
 * close and idle timeout) or checked out by one origin exchange (fetch.h)
 * or tunnel.
 */
#ifndef AC_POOL_H
#define AC_POOL_H

#include "ac.h"
#include "buf.h"
#include "conn.h"
#include "director.h"
#include "wrk.h"

#include <stdatomic.h>

#include "vcl.h"

struct pool_set;
struct oconn;

struct oconn_list {
    struct oconn *head;
    unsigned n;
};

/* What a probe sends and expects (Varnish vcl-probe semantics). */
struct pool_probe_cfg {
    char *request;              /* the whole request head, CRLF-terminated */
    unsigned expected;          /* status code */
    double timeout, interval;
    unsigned window, threshold, initial;
};

/* Per-backend counters, shown in GET /stats (admin listener). */
#define POOL_BE_COUNTERS(X) \
    X(req, "requests sent") \
    X(fail, "connect failures and timeouts") \
    X(resp_5xx, "5xx answers (502, 503, 504 count as failures)") \
    X(conn, "connections opened") \
    X(reuse, "idle connections reused") \
    X(retry_other, "requests moved here from a failed server") \
    X(queued, "requests that waited for max_connections") \
    X(queue_full, "requests refused (503) after waiting for max_connections") \
    X(probe_good, "good probes") \
    X(probe_bad, "failed probes")

/* A request waiting for a max_connections slot of a backend (embedded in
 * the origin exchange).  Waiters are served first come, first served: a slot given
 * back goes straight to the oldest waiter (granted), whose wake(arg) is
 * called, from the releasing thread, under the backend's queue lock. */
struct pool_waiter {
    struct pool_waiter *next;
    struct backend *be;         /* non-NULL while queued or granted */
    void (*wake)(void *arg);
    void *arg;
    bool queued, granted;
};

struct backend {
    unsigned magic;
#define BACKEND_MAGIC 0x21b7e90d
    unsigned idx;
    struct pool_set *set;
    char vname[80];             /* the policy's name ("b1"), or host:port for -b */
    char name[80];              /* "host:port" for messages and beresp.backend.name */
    char *host;                 /* .host as written; NULL for -b */
    char *host_header;          /* .host_header, NULL if not set */
    bool ssl;                   /* .ssl = true: TLS to this origin */
    bool ssl_sni;               /* send tls_name as SNI */
    bool ssl_verify_host;       /* the certificate must name tls_name */
    const char *tls_name;       /* .host_header, else .host (points into the above) */
    struct ssl_ctx_st *tls_ctx; /* client context: trust store, verification, sessions */
    bool none;                  /* `backend x none;`: never chosen */
    struct sockaddr_storage ss;
    socklen_t len;
    double connect_timeout;     /* seconds; < 0: the -p parameter */
    double first_byte_timeout;
    double between_bytes_timeout;
    unsigned max_conn;          /* 0: unlimited */
    bool has_probe;
    struct pool_probe_cfg probe;
    /* health: healthy when probe_ok and now >= sick_until_ms */
    atomic_bool probe_ok;
    atomic_bool probe_reported; /* a health state was logged (written by the probe thread) */
    atomic_uint_fast64_t probe_bits;    /* probe window, newest result in bit 0 */
    atomic_uint_fast64_t sick_until_ms; /* passive: consecutive failures */
    atomic_uint consec_fail;
    atomic_uint busy;           /* connections checked out (max_connections) */
    pthread_mutex_t qmtx;       /* the waiters' queue (only with max_conn) */
    struct pool_waiter *qhead, *qtail;
#define X(n, h) atomic_uint_fast64_t n_##n;
    POOL_BE_COUNTERS(X)
#undef X
    struct oconn_list *idle;    /* idle connections, one list per worker */
};

struct oconn {
    unsigned magic;
#define OCONN_MAGIC 0x6fa3d815
    struct conn c;
    struct wrk *w;
    const struct backend *be;   /* holds a reference on be->set */
    ev_io io;                   /* idle: watches for close; checked out: its owner's */
    ev_timer idle_tmr;
    struct oconn *next, *prev;  /* idle list */
    void *owner;                /* NULL while idle; checked out: its fetch (fetch.h) or
                                 * tunnel, which set the io callback */
    unsigned nreq;              /* requests sent on this connection */
    bool connecting;
    bool handshaking;           /* TLS to the origin: handshake not done yet */
    bool slot;                  /* counts in be->busy */
};

/* ------------------------------------------------------------ sets */

struct pool_set {
    unsigned magic;
#define POOL_SET_MAGIC 0x5a0e7c41
    atomic_uint refs;
    bool managed;               /* a policy's: health checked, retries elsewhere */
    unsigned nworkers;          /* size of each backend's idle array */
    unsigned nbe;
    struct backend *be;
    unsigned ndir;
    struct director *dir;
};

/* Resolve ref (a backend or a director) to one backend: directors pick,
 * skipping sick backends and pk->avoid; a plain backend is returned only
 * when healthy and not avoided.  NULL when nothing is usable (director.c). */
struct backend *pool_resolve(struct pool_set *ps, struct vcl_ref ref, const struct dir_pick *pk);
/* std.healthy(): a backend's health, or whether a director has any healthy
 * member (director.c). */
bool pool_ref_healthy(struct pool_set *ps, struct vcl_ref ref, uint64_t now_ms);

/* The set for -b origins (no policy: round robin, never marked sick).
 * One reference for the caller.  NULL with a message when empty. */
struct pool_set *pool_set_from_config(const struct config *cfg, char *err, size_t errlen);
/* The set a policy declares: backends (addresses resolved now), probes,
 * directors (hash rings built).  One reference for the caller; NULL with
 * a message in err. */
struct pool_set *pool_set_from_program(const struct config *cfg, const struct vcl_program *p,
                                       char *err, size_t errlen);
/* Carry health (probe window, passive state) over from old to ps for every
 * backend with the same name and address, so a reload does not reset it. */
void pool_set_inherit(struct pool_set *ps, const struct pool_set *old);
struct pool_set *pool_set_ref(struct pool_set *ps);
void pool_set_release(struct pool_set **psp);
unsigned pool_set_nbackends(const struct pool_set *ps);
struct backend *pool_set_backend(struct pool_set *ps, unsigned idx);
/* Attach ps to p (a reference moves to the program). */
void pool_set_attach(struct pool_set *ps, struct vcl_program *p);
/* The set attached to p. */
struct pool_set *pool_set_of(const struct vcl_program *p);
/* Does ps use probes or passive health (a policy set)? */
bool pool_set_managed(const struct pool_set *ps);

/* ------------------------------------------------------------ health */

/* Milliseconds on CLOCK_MONOTONIC (health deadlines, any thread). */
uint64_t pool_now_ms(void);
bool pool_be_healthy(const struct backend *be, uint64_t now_ms);
/* Passive health: a request's outcome on be (ok: a response < 500).
 * failure_threshold consecutive failures make be sick for sick_time. */
void pool_be_report(struct backend *be, bool ok, const struct config *cfg);
/* Probe thread: one probe result; logs health changes. */
void pool_be_probe_result(struct backend *be, bool ok, const char *why);

/* ------------------------------------------------------- connections */

/* Choose the next backend for w (round robin over -b origins). */
const struct backend *pool_pick(struct wrk *w);
/* The worker's current set (w->pset). */
struct pool_set *pool_worker_set(struct wrk *w);
/* Give w the set ps (a new reference); close w's idle connections of the
 * previous one (worker thread, or before the worker runs). */
void pool_worker_install(struct wrk *w, struct pool_set *ps);

/* A max_connections slot on be: true when taken (always, without a limit).
 * A taken slot goes back with the connection (pool_put, pool_close) or
 * with pool_be_release(). */
bool pool_be_acquire(struct backend *be);
void pool_be_release(struct backend *be);
/* Queue qw (be, wake and arg set by the caller) for a slot of be: true when
 * a slot was free after all (taken; qw not queued). */
bool pool_wait_enter(struct pool_waiter *qw);
/* Was qw granted a slot?  Then it owns it and is no longer waiting. */
bool pool_wait_granted(struct pool_waiter *qw);
/* Stop waiting (timeout, request gone); a slot granted meanwhile goes to
 * the next waiter.  No-op when qw->be is NULL.  Clears qw->be. */
void pool_wait_leave(struct pool_waiter *qw);
/* An idle connection to be, or NULL.  The caller owns it (and its slot). */
struct oconn *pool_get_idle(struct wrk *w, const struct backend *be);
/* A new connection (connect in progress: oc->connecting).  NULL with errno.
 * This is the one place an origin connection is made; an .ssl backend's TLS
 * handshake follows the TCP connect (fetch_connect, oc->handshaking). */
struct oconn *pool_connect(struct wrk *w, const struct backend *be);
/* Make c (connected to the .ssl backend be) a TLS client with be's context,
 * name, SNI and name-check settings; then drive tls_handshake().  0 or
 * AC_ENOMEM. */
int pool_be_tls_attach(const struct backend *be, struct conn *c);
/* Give a healthy, idle-able connection back to the pool (or close it when
 * the pool is full, the worker is stopping or be's set was replaced).
 * Clears *ocp. */
void pool_put(struct oconn **ocp);
/* Close and free.  Clears *ocp. */
void pool_close(struct oconn **ocp);
/* Close every idle connection of w. */
void pool_close_idle(struct wrk *w);

/* Append the per-backend JSON array (name, address, health, counters). */
void pool_stats_json(struct pool_set *ps, struct ac_buf *b);

#endif /* AC_POOL_H */
