/*
 * pool.h -- origin servers and per-worker pools of idle keep-alive
 * connections to them.  An oconn is owned by its worker: either idle in the
 * pool (watched for close and idle timeout) or checked out by one session.
 */
#ifndef AC_POOL_H
#define AC_POOL_H

#include "ac.h"
#include "conn.h"
#include "wrk.h"

struct backend {
    unsigned magic;
#define BACKEND_MAGIC 0x21b7e90d
    unsigned idx;
    char name[64];              /* "host:port" for messages */
    struct sockaddr_storage ss;
    socklen_t len;
};

struct oconn {
    unsigned magic;
#define OCONN_MAGIC 0x6fa3d815
    struct conn c;
    struct wrk *w;
    const struct backend *be;
    ev_io io;                   /* idle: watches for close; checked out: the session's */
    ev_timer idle_tmr;
    struct oconn *next, *prev;  /* idle list */
    struct sess *owner;         /* NULL while idle */
    unsigned nreq;              /* requests sent on this connection */
    bool connecting;
};

/* The process-wide origin table, built from -b before workers start
 * (read-only afterwards; see docs/architecture.md). */
int pool_backends_init(const struct config *cfg);
void pool_backends_fini(void);
unsigned pool_nbackends(void);
const struct backend *pool_backend(unsigned idx);

/* Choose the next backend for w (round robin). NULL when there is none. */
const struct backend *pool_pick(struct wrk *w);

/* An idle connection to be, or NULL.  The caller owns it. */
struct oconn *pool_get_idle(struct wrk *w, const struct backend *be);
/* A new connection (connect in progress: oc->connecting).  NULL with errno. */
struct oconn *pool_connect(struct wrk *w, const struct backend *be);
/* Give a healthy, idle-able connection back to the pool (or close it when
 * the pool is full or the worker is stopping).  Clears *ocp. */
void pool_put(struct oconn **ocp);
/* Close and free.  Clears *ocp. */
void pool_close(struct oconn **ocp);
/* Close every idle connection of w. */
void pool_close_idle(struct wrk *w);

#endif /* AC_POOL_H */
