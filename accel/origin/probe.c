/*
 * probe.c -- the probe thread (see probe.h).
 */
#include "probe.h"

#include "log.h"
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct probe {
    unsigned magic;
#define PROBE_MAGIC 0x4e1d8b23
    struct backend *be;
    ev_timer tick;              /* every interval */
    ev_timer tmo;               /* this probe's timeout */
    ev_io io;
    struct conn c;              /* plain, or TLS for an .ssl backend */
    bool busy, connecting, handshaking;
    bool first_done;            /* the first probe after install has a result */
    size_t sent, len;
    char buf[256];
};

static struct {
    pthread_t thr;
    bool running;
    struct ev_loop *loop;
    ev_async async;
    pthread_mutex_t mtx;
    pthread_cond_t cond;        /* done_gen moved (under mtx) */
    struct pool_set *pending;   /* set to install (under mtx) */
    bool pending_set;
    bool stop;
    unsigned req_gen;           /* installs asked for (under mtx) */
    unsigned done_gen;          /* installs whose first probes all ended (under mtx) */
    unsigned cur_gen;           /* probe thread only: generation of cur */
    unsigned first_left;        /* probe thread only: first probes still running */
    struct pool_set *cur;       /* probe thread only */
    struct probe *probes;
    unsigned nprobes;
} P = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Probe thread: every probe of the current set has had its first result. */
static void
first_round_done(void)
{
    AC_ZERO(pthread_mutex_lock(&P.mtx));
    if (P.done_gen < P.cur_gen)
        P.done_gen = P.cur_gen;
    AC_ZERO(pthread_cond_broadcast(&P.cond));
    AC_ZERO(pthread_mutex_unlock(&P.mtx));
}

int
probe_parse_status(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    int code = 0;

    if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0)
        return -1;
    if (len < 5 && memcmp(buf, "HTTP/", len) != 0)
        return -1;
    if (nl == NULL)
        return len > 200 ? -1 : 0;
    if (nl - buf > 200)
        return -1;                  /* the same verdict a shorter read gave */
    /* HTTP/x.y SP 3DIGIT */
    const char *sp = memchr(buf, ' ', (size_t)(nl - buf));
    if (sp == NULL || nl - sp < 4)
        return -1;
    for (int i = 1; i <= 3; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return -1;
        code = code * 10 + (sp[i] - '0');
    }
    if (sp + 4 < nl && sp[4] != ' ' && sp[4] != '\r')
        return -1;
    return code >= 100 ? code : -1;
}

static void
finish(struct probe *p, int result, const char *why)
{
    ev_io_stop(P.loop, &p->io);
    ev_timer_stop(P.loop, &p->tmo);
    conn_close(&p->c);
    p->busy = false;
    if (result >= 0)
        pool_be_probe_result(p->be, result == 1, why);
    if (!p->first_done) {
        p->first_done = true;
        if (P.first_left > 0 && --P.first_left == 0)
            first_round_done();
    }
}

/* Wait for the readiness the connection asked for. */
static void
probe_want(struct ev_loop *loop, struct probe *p, int ev)
{
    if ((p->io.events & (EV_READ | EV_WRITE)) == ev)
        return;
    ev_io_stop(loop, &p->io);
    ev_io_set(&p->io, p->c.fd, ev);
    ev_io_start(loop, &p->io);
}

static void
on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    struct probe *p = AC_CONTAINER_OF(io, struct probe, io);
    const char *req = p->be->probe.request;
    size_t rlen = strlen(req);
    char why[160];
    ssize_t n;

    (void)revents;
    AC_CHECK_OBJ(p, PROBE_MAGIC);
    if (p->connecting) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(p->c.fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err != 0) {
            snprintf(why, sizeof(why), "connect: %s", strerror(err));
            finish(p, 0, why);
            return;
        }
        p->connecting = false;
        if (p->be->ssl) {
            if (pool_be_tls_attach(p->be, &p->c) != 0) {
                finish(p, 0, "TLS setup: out of memory");
                return;
            }
            p->handshaking = true;
        }
    }
    if (p->handshaking) {
        int r = tls_handshake(&p->c);
        if (r == AC_AGAIN) {
            probe_want(loop, p, p->c.want);
            return;
        }
        if (r != 0) {
            snprintf(why, sizeof(why), "TLS handshake: %s", tls_conn_error(&p->c));
            finish(p, 0, why);
            return;
        }
        p->handshaking = false;
    }
    while (p->sent < rlen) {
        struct iovec iov = { (char *)req + p->sent, rlen - p->sent };
        n = conn_writev(&p->c, &iov, 1);
        if (n == AC_AGAIN) {
            probe_want(loop, p, p->c.want);
            return;
        }
        if (n <= 0) {
            snprintf(why, sizeof(why), "send: %s", strerror(p->c.err));
            finish(p, 0, why);
            return;
        }
        p->sent += (size_t)n;
    }
    for (;;) {
        n = conn_read(&p->c, p->buf + p->len, sizeof(p->buf) - p->len);
        if (n == AC_AGAIN) {
            probe_want(loop, p, p->c.want);
            return;
        }
        if (n <= 0) {
            snprintf(why, sizeof(why), "%s before a status line",
                     n == 0 ? "closed" : strerror(p->c.err));
            finish(p, 0, why);
            return;
        }
        p->len += (size_t)n;
        int code = probe_parse_status(p->buf, p->len);
        if (code == 0 && p->len < sizeof(p->buf))
            continue;
        if (code <= 0) {
            finish(p, 0, "not an HTTP answer");
            return;
        }
        if ((unsigned)code != p->be->probe.expected) {
            snprintf(why, sizeof(why), "status %d, expected %u", code, p->be->probe.expected);
            finish(p, 0, why);
            return;
        }
        finish(p, 1, NULL);
        return;
    }
}

static void
on_tmo(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct probe *p = AC_CONTAINER_OF(t, struct probe, tmo);

    (void)loop;
    (void)revents;
    finish(p, 0, "timed out");
}

static void
on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct probe *p = AC_CONTAINER_OF(t, struct probe, tick);
    char why[96];

    (void)revents;
    if (p->busy)
        finish(p, 0, "timed out");
    p->sent = p->len = 0;
    int fd = sock_connect((const struct sockaddr *)&p->be->ss, p->be->len);
    if (fd < 0) {
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        finish(p, 0, why);
        return;
    }
    conn_init(&p->c, fd, &conn_plain_ops);
    p->busy = true;
    p->connecting = true;
    p->handshaking = false;
    ev_io_init(&p->io, on_io, fd, EV_WRITE);
    ev_io_start(loop, &p->io);
    ev_timer_set(&p->tmo, p->be->probe.timeout, 0);
    ev_timer_start(loop, &p->tmo);
}

/* Probe thread: replace the probed set. */
static void
swap_set(struct pool_set *ps, unsigned gen)
{
    P.first_left = 0;               /* the old set's first round no longer counts */
    for (unsigned i = 0; i < P.nprobes; i++) {
        struct probe *p = &P.probes[i];
        if (p->busy)
            finish(p, -1, NULL);
        ev_timer_stop(P.loop, &p->tick);
        p->magic = 0;
    }
    free(P.probes);
    P.probes = NULL;
    P.nprobes = 0;
    pool_set_release(&P.cur);
    P.cur = ps;
    P.cur_gen = gen;
    if (ps == NULL) {
        first_round_done();
        return;
    }
    P.probes = ac_xcalloc(ps->nbe ? ps->nbe : 1, sizeof(*P.probes));
    for (unsigned i = 0; i < ps->nbe; i++) {
        struct backend *be = &ps->be[i];
        if (!be->has_probe || be->none)
            continue;
        struct probe *p = &P.probes[P.nprobes++];
        p->magic = PROBE_MAGIC;
        p->be = be;
        conn_init(&p->c, -1, &conn_plain_ops);
        ev_timer_init(&p->tick, on_tick, 0.0, be->probe.interval);
        ev_timer_init(&p->tmo, on_tmo, 0, 0);
        ev_timer_start(P.loop, &p->tick);   /* the first probe goes out at once */
    }
    P.first_left = P.nprobes;
    if (P.nprobes == 0)
        first_round_done();
}

static void
on_async(struct ev_loop *loop, ev_async *a, int revents)
{
    struct pool_set *ps = NULL;
    bool have, stop;
    unsigned gen;

    (void)a;
    (void)revents;
    AC_ZERO(pthread_mutex_lock(&P.mtx));
    have = P.pending_set;
    ps = P.pending;
    gen = P.req_gen;
    P.pending = NULL;
    P.pending_set = false;
    stop = P.stop;
    AC_ZERO(pthread_mutex_unlock(&P.mtx));
    if (have)
        swap_set(ps, gen);
    if (stop) {
        swap_set(NULL, gen);
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
probe_main(void *arg)
{
    (void)arg;
    ev_run(P.loop, 0);
    return NULL;
}

int
probe_start(void)
{
    P.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (P.loop == NULL)
        return -1;
    ev_async_init(&P.async, on_async);
    ev_async_start(P.loop, &P.async);
    if (pthread_create(&P.thr, NULL, probe_main, NULL) != 0) {
        ev_loop_destroy(P.loop);
        P.loop = NULL;
        return -1;
    }
    P.running = true;
    return 0;
}

void
probe_install(struct pool_set *ps)
{
    struct pool_set *old;

    if (!P.running)
        return;
    AC_ZERO(pthread_mutex_lock(&P.mtx));
    old = P.pending;
    P.pending = ps != NULL ? pool_set_ref(ps) : NULL;
    P.pending_set = true;
    P.req_gen++;
    AC_ZERO(pthread_mutex_unlock(&P.mtx));
    pool_set_release(&old);
    ev_async_send(P.loop, &P.async);
}

bool
probe_wait_first(const struct pool_set *ps)
{
    double wait = 0;
    struct timespec ts;
    bool done;
    int r = 0;

    if (!P.running || ps == NULL)
        return true;
    for (unsigned i = 0; i < ps->nbe; i++)
        if (ps->be[i].has_probe && ps->be[i].probe.timeout > wait)
            wait = ps->be[i].probe.timeout;
    wait += 0.2;                    /* the thread's own start and scheduling */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)wait;
    ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    AC_ZERO(pthread_mutex_lock(&P.mtx));
    while (P.done_gen < P.req_gen && r == 0)
        r = pthread_cond_timedwait(&P.cond, &P.mtx, &ts);
    done = P.done_gen >= P.req_gen;
    AC_ZERO(pthread_mutex_unlock(&P.mtx));
    return done;
}

void
probe_stop(void)
{
    struct pool_set *old;

    if (!P.running)
        return;
    AC_ZERO(pthread_mutex_lock(&P.mtx));
    P.stop = true;
    AC_ZERO(pthread_mutex_unlock(&P.mtx));
    ev_async_send(P.loop, &P.async);
    pthread_join(P.thr, NULL);
    AC_ZERO(pthread_mutex_lock(&P.mtx));
    old = P.pending;
    P.pending = NULL;
    AC_ZERO(pthread_mutex_unlock(&P.mtx));
    pool_set_release(&old);
    ev_loop_destroy(P.loop);
    P.loop = NULL;
    P.running = false;
}
