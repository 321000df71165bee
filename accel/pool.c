/*
 * pool.c -- origin table and idle origin connections, per worker.
 *
 * An idle connection stays in its worker's list, most recently used first
 * (a warm connection is less likely to have been closed by the origin).  Its
 * read watcher catches the origin closing it (or sending bytes it should
 * not), and a timer closes it after origin_idle_timeout.
 */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>

static struct backend *backends;    /* process-wide, read-only once workers run */
static unsigned nbackends;

int
pool_backends_init(const struct config *cfg)
{
    backends = ac_xcalloc(cfg->nbackend ? cfg->nbackend : 1, sizeof(*backends));
    nbackends = cfg->nbackend;
    for (unsigned i = 0; i < nbackends; i++) {
        struct backend *be = &backends[i];
        be->magic = BACKEND_MAGIC;
        be->idx = i;
        memcpy(&be->ss, &cfg->backend[i].ss, cfg->backend[i].len);
        be->len = cfg->backend[i].len;
        sock_ntop_port((struct sockaddr *)&be->ss, be->name, sizeof(be->name));
    }
    return 0;
}

void
pool_backends_fini(void)
{
    free(backends);
    backends = NULL;
    nbackends = 0;
}

unsigned
pool_nbackends(void)
{
    return nbackends;
}

const struct backend *
pool_backend(unsigned idx)
{
    AC_ASSERT(idx < nbackends);
    return &backends[idx];
}

const struct backend *
pool_pick(struct wrk *w)
{
    if (nbackends == 0)
        return NULL;
    return &backends[w->rr++ % nbackends];
}

static void
idle_unlink(struct oconn *oc)
{
    struct oconn_list *l = &oc->w->idle[oc->be->idx];

    if (oc->prev)
        oc->prev->next = oc->next;
    else
        l->head = oc->next;
    if (oc->next)
        oc->next->prev = oc->prev;
    oc->next = oc->prev = NULL;
    l->n--;
}

static void
on_idle_event(struct oconn *oc)
{
    idle_unlink(oc);
    pool_close(&oc);
}

static void
on_idle_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct oconn *oc = AC_CONTAINER_OF(io, struct oconn, io);

    (void)loop;
    (void)revents;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    AC_ASSERT(oc->owner == NULL);
    /* An idle origin connection became readable: the origin closed it, or
     * sent bytes nobody asked for.  Either way it cannot be reused. */
    on_idle_event(oc);
}

static void
on_idle_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct oconn *oc = AC_CONTAINER_OF(t, struct oconn, idle_tmr);

    (void)loop;
    (void)revents;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    on_idle_event(oc);
}

struct oconn *
pool_get_idle(struct wrk *w, const struct backend *be)
{
    struct oconn *oc = w->idle[be->idx].head;

    if (oc == NULL)
        return NULL;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    idle_unlink(oc);
    ev_io_stop(w->loop, &oc->io);
    ev_timer_stop(w->loop, &oc->idle_tmr);
    return oc;
}

struct oconn *
pool_connect(struct wrk *w, const struct backend *be)
{
    struct oconn *oc;
    int fd;

    fd = sock_connect((const struct sockaddr *)&be->ss, be->len);
    if (fd < 0)
        return NULL;
    oc = ac_xcalloc(1, sizeof(*oc));
    oc->magic = OCONN_MAGIC;
    conn_init(&oc->c, fd, &conn_plain_ops);
    oc->w = w;
    oc->be = be;
    oc->connecting = true;
    ev_io_init(&oc->io, on_idle_io, fd, EV_READ);
    ev_timer_init(&oc->idle_tmr, on_idle_timer, 0, 0);
    STAT_INC(w, backend_conn);
    return oc;
}

void
pool_put(struct oconn **ocp)
{
    struct oconn *oc = *ocp;
    struct oconn_list *l;
    struct wrk *w;

    *ocp = NULL;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    w = oc->w;
    l = &w->idle[oc->be->idx];
    if (w->stopping || l->n >= (unsigned)w->cfg->p.origin_idle_conns) {
        pool_close(&oc);
        return;
    }
    oc->owner = NULL;
    ev_io_stop(w->loop, &oc->io);
    ev_set_cb(&oc->io, on_idle_io);
    ev_io_modify(&oc->io, EV_READ);     /* same fd: no re-registration */
    ev_io_start(w->loop, &oc->io);
    ev_timer_set(&oc->idle_tmr, w->cfg->p.origin_idle_timeout, 0);
    ev_timer_start(w->loop, &oc->idle_tmr);
    oc->next = l->head;
    oc->prev = NULL;
    if (l->head)
        l->head->prev = oc;
    l->head = oc;
    l->n++;
}

void
pool_close(struct oconn **ocp)
{
    struct oconn *oc = *ocp;

    *ocp = NULL;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    ev_io_stop(oc->w->loop, &oc->io);
    ev_timer_stop(oc->w->loop, &oc->idle_tmr);
    conn_close(&oc->c);
    oc->magic = 0;
    free(oc);
}

void
pool_close_idle(struct wrk *w)
{
    for (unsigned i = 0; i < nbackends; i++) {
        struct oconn *oc;
        while ((oc = w->idle[i].head) != NULL) {
            idle_unlink(oc);
            pool_close(&oc);
        }
    }
}
