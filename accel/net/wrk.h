/*
 * wrk.h -- workers: one thread and one libev loop each, with its own
 * SO_REUSEPORT listeners, the connections and requests it owns, idle
 * origin connections, access log buffer and counters.  Nothing here is
 * shared between workers.
 *
 * net/ knows nothing of HTTP or requests: what a worker runs is given to
 * it as hooks (main.c wires the HTTP/1.1 transport's accept and the origin
 * pools' idle-connection cleanup), what it owns is a list of tasks with a
 * drain and a kill operation, and cross-thread wake-ups are nodes with a
 * callback.
 */
#ifndef AC_WRK_H
#define AC_WRK_H

#include "ac.h"
#include "config.h"
#include "log.h"
#include "stat.h"

#include <ev.h>
#include <pthread.h>
#include <sys/socket.h>

struct wrk;
struct store;
struct cache_params;
struct vcl_program;
struct pool_set;
struct req;

/*
 * Something a worker owns until it ends: a client connection, or a request
 * that has no client connection (a background fetch, a fill whose client
 * went away).  The worker's loop ends when it is draining and no task is
 * left; at the drain timeout (and at exit) every task is killed.
 */
struct wrk_task;
typedef void wrk_task_f(struct wrk_task *t);
struct wrk_task_ops {
    const char *name;
    wrk_task_f *drain;          /* the worker drains: end t now if it is idle; may be NULL */
    wrk_task_f *kill;           /* end t now (it removes itself with wrk_task_del) */
};
struct wrk_task {
    const struct wrk_task_ops *ops;
    struct wrk_task *next, *prev;
    bool listed;
};

/* A wake-up that any thread may queue for a worker (a store waiter, a
 * max_connections slot given back): fn runs on the worker's thread. */
struct wrk_wakeup;
typedef void wrk_wakeup_f(struct wrk_wakeup *wu);
struct wrk_wakeup {
    wrk_wakeup_f *fn;
    struct wrk_wakeup *next;
    bool queued;                /* under the worker's wake_mtx */
};

/* What the worker calls in the rooms above it (set once, by main.c). */
typedef void wrk_accept_f(struct wrk *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
                          const struct config_addr *addr);
struct wrk_hooks {
    wrk_accept_f *accept;       /* a new client connection (fd non-blocking) */
    void (*drain)(struct wrk *w);   /* the worker starts draining; may be NULL */
    void (*exit)(struct wrk *w);    /* the loop ended, every task is gone; may be NULL */
    void (*destroy)(struct wrk *w); /* wrk_destroy_all(), main thread; may be NULL */
};

struct wrk_listener {
    int fd;
    ev_io io;
    struct wrk *w;
    const struct config_addr *addr;
};

struct wrk {
    unsigned magic;
#define WRK_MAGIC 0x7d21c0e4
    unsigned id;
    struct ev_loop *loop;
    pthread_t thr;
    const struct config *cfg;
    const struct wrk_hooks *hooks;
    struct wrk_listener *lst;
    unsigned nlst;
    ev_async stop_async;        /* main thread → worker: start draining */
    ev_timer tick;              /* 1 s: flush the access log */
    ev_timer drain_timer;
    bool stopping;
    unsigned ntasks;
    struct wrk_task *tasks;     /* everything the worker owns (doubly linked) */
    struct pool_set *pset;      /* origins for new requests; idle conns live in it (pool.h) */
    unsigned rr;                /* round-robin position over backends */
    struct log_access alog;
    struct stats stats;
    struct store *store;        /* shared, thread-safe; owned by main.c */
    const struct cache_params *cparams;
    ev_timer housekeep;         /* worker 0 only: store expiry and ban work */
    /* wake-ups from any thread: queued here, wake_async poked, run by the worker */
    pthread_mutex_t wake_mtx;
    struct wrk_wakeup *wake_head;
    ev_async wake_async;
    /* the policy program for new requests (a reference); a reload hands
     * the next one over through vcl_pending + vcl_async */
    struct vcl_program *vcl;
    pthread_mutex_t vcl_mtx;
    struct vcl_program *vcl_pending;
    ev_async vcl_async;
    unsigned xid_next;
    /* freed requests kept for reuse (req.c; their buffers stay allocated) */
    struct req *req_cache;
    unsigned nreq_cache;
};

/* Queue wu for its fn on w's thread (any thread; a queued node is not
 * queued twice). */
void wrk_wake(struct wrk *w, struct wrk_wakeup *wu);
/* Take wu off the queue (w's thread). */
void wrk_wake_cancel(struct wrk *w, struct wrk_wakeup *wu);

/* Register / unregister something the worker owns. */
void wrk_task_add(struct wrk *w, struct wrk_task *t);
void wrk_task_del(struct wrk *w, struct wrk_task *t);
/* While draining: called when a task ends, exits the loop when none is left. */
void wrk_maybe_done(struct wrk *w);

/*
 * Set the events an io watcher waits for (*wantp keeps them for the
 * callback).  A read watcher that is no longer wanted is left running
 * ("lazy stop"): stopping it and starting it again a moment later costs
 * libev's epoll backend a failing epoll_ctl each time.  Its callback must
 * stop it when it fires while *wantp is 0.
 */
void wrk_io_want(struct ev_loop *loop, ev_io *io, int fd, int *wantp, int ev);

/* Create workers (listeners are opened here, so bind errors surface before
 * any thread starts).  Returns 0, or -1 with a message in err. */
int wrk_create_all(const struct config *cfg, struct store *st, const struct cache_params *cp,
                   const struct wrk_hooks *hooks, struct wrk **out, char *err, size_t errlen);
int wrk_start_all(struct wrk *ws, unsigned n);
/* Ask every worker to drain and wait for them to finish. */
void wrk_stop_all(struct wrk *ws, unsigned n);
void wrk_destroy_all(struct wrk **ws, unsigned n);

#endif /* AC_WRK_H */
