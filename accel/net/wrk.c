/*
 * wrk.c -- worker threads: accept loop, the registry of what a worker owns,
 * cross-thread wake-ups, draining.
 */
#include "wrk.h"

#include "conn.h"
#include "store.h"
#include "tls.h"
#include "vcl.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void
on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    struct wrk_listener *l = AC_CONTAINER_OF(io, struct wrk_listener, io);
    struct wrk *w = l->w;
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1;

    (void)loop;
    (void)revents;
    AC_CHECK_OBJ(w, WRK_MAGIC);
    /* Accept a bounded batch so one busy listener cannot starve the loop. */
    for (int i = 0; i < 64 && !w->stopping; i++) {
        sl = sizeof(ss);
        fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                LOG_W("worker %u: accept on %s: %s", w->id, l->addr->spec, strerror(errno));
            return;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        w->hooks->accept(w, fd, (struct sockaddr *)&ss, sl, l->addr);
    }
}

void
wrk_task_add(struct wrk *w, struct wrk_task *t)
{
    AC_ASSERT(!t->listed);
    t->prev = NULL;
    t->next = w->tasks;
    if (w->tasks)
        w->tasks->prev = t;
    w->tasks = t;
    t->listed = true;
    w->ntasks++;
}

void
wrk_task_del(struct wrk *w, struct wrk_task *t)
{
    AC_ASSERT(t->listed);
    if (t->prev)
        t->prev->next = t->next;
    else
        w->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
    t->listed = false;
    AC_ASSERT(w->ntasks > 0);
    w->ntasks--;
}

void
wrk_maybe_done(struct wrk *w)
{
    if (w->stopping && w->ntasks == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

static void
io_set(struct ev_loop *loop, ev_io *io, int fd, int events)
{
    int cur = ev_is_active(io) ? (io->events & (EV_READ | EV_WRITE)) : 0;

    if (cur == events)
        return;
    ev_io_stop(loop, io);
    if (events) {
        /* ev_io_modify, not ev_io_set: the fd is the same, and ev_io_set
         * would make libev re-register it (a failing epoll_ctl) */
        if (io->fd != fd)
            ev_io_set(io, fd, events);
        else
            ev_io_modify(io, events);
        ev_io_start(loop, io);
    }
}

void
wrk_io_want(struct ev_loop *loop, ev_io *io, int fd, int *wantp, int ev)
{
    *wantp = ev;
    if (ev == 0 && ev_is_active(io) && (io->events & (EV_READ | EV_WRITE)) == EV_READ)
        return;
    io_set(loop, io, fd, ev);
}

void
wrk_wake(struct wrk *w, struct wrk_wakeup *wu)
{
    bool poke = false;

    AC_ZERO(pthread_mutex_lock(&w->wake_mtx));
    if (!wu->queued) {
        wu->queued = true;
        wu->next = w->wake_head;
        w->wake_head = wu;
        poke = true;
    }
    AC_ZERO(pthread_mutex_unlock(&w->wake_mtx));
    if (poke)
        ev_async_send(w->loop, &w->wake_async);
}

void
wrk_wake_cancel(struct wrk *w, struct wrk_wakeup *wu)
{
    struct wrk_wakeup **pp;

    AC_ZERO(pthread_mutex_lock(&w->wake_mtx));
    if (wu->queued) {
        for (pp = &w->wake_head; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == wu) {
                *pp = wu->next;
                break;
            }
        }
        wu->queued = false;
        wu->next = NULL;
    }
    AC_ZERO(pthread_mutex_unlock(&w->wake_mtx));
}

static void
on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    struct wrk *w = AC_CONTAINER_OF(a, struct wrk, wake_async);
    struct wrk_wakeup *wu;

    (void)loop;
    (void)revents;
    for (;;) {
        /* One at a time: running one may cancel (free) others' entries. */
        AC_ZERO(pthread_mutex_lock(&w->wake_mtx));
        wu = w->wake_head;
        if (wu != NULL) {
            w->wake_head = wu->next;
            wu->next = NULL;
            wu->queued = false;
        }
        AC_ZERO(pthread_mutex_unlock(&w->wake_mtx));
        if (wu == NULL)
            break;
        wu->fn(wu);
    }
}

static void
on_housekeep(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct wrk *w = AC_CONTAINER_OF(t, struct wrk, housekeep);

    (void)revents;
    if (w->store != NULL && store_housekeep(w->store, ev_now(loop), 2000) != STORE_OK)
        LOG_W("store housekeeping: disk error");
}

static void
on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct wrk *w = AC_CONTAINER_OF(t, struct wrk, tick);

    (void)revents;
    log_access_flush(&w->alog);
    if (w->id == 0 && w->cfg->ncerts > 0)
        tls_tickets_rotate(ev_now(loop), w->cfg->p.tls_ticket_rotate);
}

static void
on_drain_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct wrk *w = AC_CONTAINER_OF(t, struct wrk, drain_timer);

    (void)revents;
    if (w->ntasks > 0)
        LOG_W("worker %u: drain timeout, closing %u connection(s)", w->id, w->ntasks);
    while (w->tasks != NULL)
        w->tasks->ops->kill(w->tasks);
    ev_break(loop, EVBREAK_ALL);
}

static void
on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    struct wrk *w = AC_CONTAINER_OF(a, struct wrk, stop_async);
    struct wrk_task *t, *next;

    (void)revents;
    if (w->stopping)
        return;
    w->stopping = true;
    for (unsigned i = 0; i < w->nlst; i++) {
        ev_io_stop(loop, &w->lst[i].io);
        close(w->lst[i].fd);
        w->lst[i].fd = -1;
    }
    if (w->hooks->drain != NULL)
        w->hooks->drain(w);
    ev_timer_stop(loop, &w->housekeep);
    for (t = w->tasks; t != NULL; t = next) {
        next = t->next;             /* draining t may end it */
        if (t->ops->drain != NULL)
            t->ops->drain(t);
    }
    ev_timer_set(&w->drain_timer, w->cfg->p.drain_timeout, 0);
    ev_timer_start(loop, &w->drain_timer);
    wrk_maybe_done(w);
}

static void *
wrk_main(void *arg)
{
    struct wrk *w = arg;

    AC_CHECK_OBJ(w, WRK_MAGIC);
    ev_run(w->loop, 0);
    /* Leave nothing behind: connections, requests, idle origin
     * connections, log lines. */
    while (w->tasks != NULL)
        w->tasks->ops->kill(w->tasks);
    if (w->hooks->exit != NULL)
        w->hooks->exit(w);
    log_access_flush(&w->alog);
    return NULL;
}

int
wrk_create_all(const struct config *cfg, struct store *st, const struct cache_params *cp,
               const struct wrk_hooks *hooks, struct wrk **out, char *err, size_t errlen)
{
    struct wrk *ws = ac_xcalloc(cfg->nworkers, sizeof(*ws));
    int alog_fd = -1;

    if (cfg->access_log != NULL) {
        if (strcmp(cfg->access_log, "-") == 0) {
            alog_fd = 1;
        } else {
            alog_fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (alog_fd < 0) {
                snprintf(err, errlen, "-l %s: %s", cfg->access_log, strerror(errno));
                free(ws);
                return -1;
            }
        }
    }
    for (unsigned i = 0; i < cfg->nworkers; i++) {
        struct wrk *w = &ws[i];
        w->magic = WRK_MAGIC;
        w->id = i;
        w->cfg = cfg;
        w->hooks = hooks;
        w->store = st;
        w->cparams = cp;
        AC_ZERO(pthread_mutex_init(&w->wake_mtx, NULL));
        AC_ZERO(pthread_mutex_init(&w->vcl_mtx, NULL));
        w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
        if (w->loop == NULL) {
            snprintf(err, errlen, "cannot create an event loop");
            return -1;
        }
        log_access_init(&w->alog, alog_fd);
        w->lst = ac_xcalloc(cfg->nlisten, sizeof(*w->lst));
        w->nlst = cfg->nlisten;
        for (unsigned j = 0; j < cfg->nlisten; j++) {
            struct wrk_listener *l = &w->lst[j];
            const struct config_addr *a = &cfg->listen[j];
            l->w = w;
            l->addr = a;
            l->fd = sock_listen((const struct sockaddr *)&a->ss, a->len, true, 1024);
            if (l->fd < 0) {
                snprintf(err, errlen, "cannot listen on %s: %s", a->spec, strerror(errno));
                *out = ws;
                return -1;
            }
            ev_io_init(&l->io, on_accept, l->fd, EV_READ);
            ev_io_start(w->loop, &l->io);
        }
        ev_async_init(&w->stop_async, on_stop);
        ev_async_start(w->loop, &w->stop_async);
        ev_timer_init(&w->tick, on_tick, 1.0, 1.0);
        ev_timer_start(w->loop, &w->tick);
        ev_timer_init(&w->drain_timer, on_drain_timeout, 0, 0);
        ev_async_init(&w->wake_async, on_wake);
        ev_async_start(w->loop, &w->wake_async);
        ev_timer_init(&w->housekeep, on_housekeep, 1.0, 1.0);
        if (i == 0 && st != NULL)
            ev_timer_start(w->loop, &w->housekeep);
    }
    *out = ws;
    return 0;
}

int
wrk_start_all(struct wrk *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int r = pthread_create(&ws[i].thr, NULL, wrk_main, &ws[i]);
        if (r != 0) {
            LOG_E("cannot start worker %u: %s", i, strerror(r));
            return -1;
        }
    }
    return 0;
}

void
wrk_stop_all(struct wrk *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        ev_async_send(ws[i].loop, &ws[i].stop_async);
    for (unsigned i = 0; i < n; i++)
        pthread_join(ws[i].thr, NULL);
}

void
wrk_destroy_all(struct wrk **wsp, unsigned n)
{
    struct wrk *ws = *wsp;
    int alog_fd = -1;

    *wsp = NULL;
    if (ws == NULL)
        return;
    for (unsigned i = 0; i < n; i++) {
        struct wrk *w = &ws[i];
        if (w->magic != WRK_MAGIC)
            continue;
        for (unsigned j = 0; j < w->nlst && w->lst; j++)
            if (w->lst[j].fd >= 0)
                close(w->lst[j].fd);
        free(w->lst);
        if (w->hooks != NULL && w->hooks->destroy != NULL)
            w->hooks->destroy(w);
        alog_fd = w->alog.fd;
        log_access_fini(&w->alog);
        if (w->loop)
            ev_loop_destroy(w->loop);
        pthread_mutex_destroy(&w->wake_mtx);
        pthread_mutex_destroy(&w->vcl_mtx);
        if (w->vcl != NULL)
            vcl_program_release(&w->vcl);
        if (w->vcl_pending != NULL)
            vcl_program_release(&w->vcl_pending);
        w->magic = 0;
    }
    if (alog_fd > 2)
        close(alog_fd);
    free(ws);
}
