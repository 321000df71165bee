/*
 * wrk.h -- workers: one thread and one libev loop each, with its own
 * SO_REUSEPORT listeners, client sessions, idle origin connections, access
 * log buffer and counters.  Nothing here is shared between workers.
 */
#ifndef AC_WRK_H
#define AC_WRK_H

#include "ac.h"
#include "config.h"
#include "log.h"
#include "stat.h"

#include <ev.h>
#include <pthread.h>

struct sess;
struct oconn;
struct store;
struct cache_params;

struct wrk_listener {
    int fd;
    ev_io io;
    struct wrk *w;
    const struct config_addr *addr;
};

struct oconn_list {
    struct oconn *head;
    unsigned n;
};

struct wrk {
    unsigned magic;
#define WRK_MAGIC 0x7d21c0e4
    unsigned id;
    struct ev_loop *loop;
    pthread_t thr;
    const struct config *cfg;
    struct wrk_listener *lst;
    unsigned nlst;
    ev_async stop_async;        /* main thread → worker: start draining */
    ev_timer tick;              /* 1 s: flush the access log */
    ev_timer drain_timer;
    bool stopping;
    unsigned nsess;
    struct sess *sessions;      /* all live sessions (doubly linked) */
    struct pool_set *pset;      /* origins for new requests; idle conns live in it (pool.h) */
    unsigned rr;                /* round-robin position over backends */
    struct log_access alog;
    struct stats stats;
    struct store *store;        /* shared, thread-safe; owned by main.c */
    const struct cache_params *cparams;
    ev_timer housekeep;         /* worker 0 only: store expiry and ban work */
    /* store waiters may fire on any thread: they queue the session here
     * and poke wake_async; the worker drives the queued sessions. */
    pthread_mutex_t wake_mtx;
    struct sess *wake_head;
    ev_async wake_async;
    /* the policy program for new requests (a reference); a reload hands
     * the next one over through vcl_pending + vcl_async */
    struct vcl_program *vcl;
    pthread_mutex_t vcl_mtx;
    struct vcl_program *vcl_pending;
    ev_async vcl_async;
    unsigned xid_next;
};

/* Queue s for a wake-up on its worker (any thread). */
void wrk_wake(struct wrk *w, struct sess *s);
/* Remove s from the wake queue (its own worker thread). */
void wrk_wake_cancel(struct wrk *w, struct sess *s);

/* Create workers (listeners are opened here, so bind errors surface before
 * any thread starts).  Returns 0, or -1 with a message in err. */
int wrk_create_all(const struct config *cfg, struct store *st, const struct cache_params *cp,
                   struct wrk **out, char *err, size_t errlen);
int wrk_start_all(struct wrk *ws, unsigned n);
/* Ask every worker to drain and wait for them to finish. */
void wrk_stop_all(struct wrk *ws, unsigned n);
void wrk_destroy_all(struct wrk **ws, unsigned n);

/* Called by a session to (un)register itself. */
void wrk_sess_add(struct wrk *w, struct sess *s);
void wrk_sess_del(struct wrk *w, struct sess *s);
/* While draining: called when a session count drops, exits the loop at 0. */
void wrk_maybe_done(struct wrk *w);

#endif /* AC_WRK_H */
