/*
 * pool.c -- pool sets (backends + directors), backend health, and idle
 * origin connections per worker.
 *
 * An idle connection stays in its worker's list, most recently used first
 * (a warm connection is less likely to have been closed by the origin).  Its
 * read watcher catches the origin closing it (or sending bytes it should
 * not), and a timer closes it after origin_idle_timeout.
 *
 * Health: a backend is healthy when its probe window says so (always, when
 * it has no probe) and it is not in a passive "sick" period, which
 * backend_fail_threshold consecutive failures (connect errors, timeouts,
 * 5xx answers) start for backend_sick_time.  Only policy sets are managed;
 * -b origins keep today's behaviour (round robin, never skipped).
 */
#include "pool.h"

#include "log.h"
#include "tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ------------------------------------------------------------ sets */

static struct pool_set *
set_new(unsigned nbe, unsigned ndir, unsigned nworkers)
{
    struct pool_set *ps = ac_xcalloc(1, sizeof(*ps));

    ps->magic = POOL_SET_MAGIC;
    atomic_init(&ps->refs, 1);
    ps->nworkers = nworkers ? nworkers : 1;
    ps->nbe = nbe;
    ps->be = ac_xcalloc(nbe ? nbe : 1, sizeof(*ps->be));
    ps->ndir = ndir;
    ps->dir = ac_xcalloc(ndir ? ndir : 1, sizeof(*ps->dir));
    for (unsigned i = 0; i < nbe; i++) {
        struct backend *be = &ps->be[i];
        be->magic = BACKEND_MAGIC;
        be->idx = i;
        be->set = ps;
        be->connect_timeout = be->first_byte_timeout = be->between_bytes_timeout = -1;
        atomic_init(&be->probe_ok, true);
        AC_ZERO(pthread_mutex_init(&be->qmtx, NULL));
        be->idle = ac_xcalloc(ps->nworkers, sizeof(*be->idle));
    }
    return ps;
}

struct pool_set *
pool_set_from_config(const struct config *cfg, char *err, size_t errlen)
{
    struct pool_set *ps;

    if (cfg->nbackend == 0) {
        snprintf(err, errlen, "no origin: give -b HOST:PORT (or -f policy.vcl)");
        return NULL;
    }
    ps = set_new(cfg->nbackend, 0, cfg->nworkers);
    for (unsigned i = 0; i < cfg->nbackend; i++) {
        struct backend *be = &ps->be[i];
        memcpy(&be->ss, &cfg->backend[i].ss, cfg->backend[i].len);
        be->len = cfg->backend[i].len;
        sock_ntop_port((struct sockaddr *)&be->ss, be->name, sizeof(be->name));
        snprintf(be->vname, sizeof(be->vname), "%s", be->name);
        if (cfg->backend[i].tls) {      /* -b https://NAME[:PORT] */
            char terr[256];
            be->ssl = be->ssl_sni = be->ssl_verify_host = true;
            be->host = ac_xstrdup(cfg->backend[i].name);
            be->tls_name = be->host;
            if (cfg->origin_ca_file != NULL &&
                ac_file_readable(cfg->origin_ca_file, terr, sizeof(terr)) != 0) {
                snprintf(err, errlen, "-p origin_ca_file=%s: %s", cfg->origin_ca_file, terr);
                pool_set_release(&ps);
                return NULL;
            }
            be->tls_ctx = tls_client_ctx(cfg->origin_ca_file, true, terr, sizeof(terr));
            if (be->tls_ctx == NULL) {
                snprintf(err, errlen, "-b %s: %s", cfg->backend[i].spec, terr);
                pool_set_release(&ps);
                return NULL;
            }
        }
    }
    return ps;
}

/* Peer sets (cluster members): their idle connections outlive w->pset
 * changes, so pool_close_idle() must find them here. */
#define POOL_PEER_SETS 256
static pthread_mutex_t peer_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct pool_set *peer_sets[POOL_PEER_SETS];

struct pool_set *
pool_set_peer(const struct config *cfg, const struct sockaddr_storage *ss, socklen_t len,
              const char *name, double connect_tmo, double first_byte_tmo)
{
    struct pool_set *ps = set_new(1, 0, cfg->nworkers);
    struct backend *be = &ps->be[0];
    bool kept = false;

    memcpy(&be->ss, ss, len);
    be->len = len;
    be->peer = true;
    be->connect_timeout = connect_tmo;
    be->first_byte_timeout = first_byte_tmo;
    sock_ntop_port((const struct sockaddr *)&be->ss, be->name, sizeof(be->name));
    snprintf(be->vname, sizeof(be->vname), "peer:%s", name);
    AC_ZERO(pthread_mutex_lock(&peer_mtx));
    for (unsigned i = 0; i < POOL_PEER_SETS && !kept; i++)
        if (peer_sets[i] == NULL) {
            peer_sets[i] = ps;
            kept = true;
        }
    AC_ZERO(pthread_mutex_unlock(&peer_mtx));
    ps->keep_idle = kept;       /* table full: connections are simply not kept */
    return ps;
}

void
pool_set_peer_forget(struct pool_set *ps)
{
    AC_ZERO(pthread_mutex_lock(&peer_mtx));
    for (unsigned i = 0; i < POOL_PEER_SETS; i++)
        if (peer_sets[i] == ps)
            peer_sets[i] = NULL;
    AC_ZERO(pthread_mutex_unlock(&peer_mtx));
}

static void
probe_cfg(struct backend *be, const struct vcl_probe_decl *pd)
{
    struct pool_probe_cfg *pc = &be->probe;
    struct ac_buf b;

    be->has_probe = true;
    ac_buf_init(&b, 256, 0);
    if (pd->request != NULL) {
        ac_buf_catstr(&b, pd->request);
    } else {
        const char *h = be->host_header ? be->host_header : be->host ? be->host : be->name;
        bool v6 = be->host_header == NULL && strchr(h, ':') != NULL && h[0] != '[';
        ac_buf_printf(&b,
                      "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nConnection: close\r\n"
                      "User-Agent: accel-probe\r\n\r\n",
                      pd->url ? pd->url : "/", v6 ? "[" : "", h, v6 ? "]" : "");
    }
    ac_buf_cat(&b, "", 1);
    pc->request = ac_xstrdup(b.p);
    ac_buf_free(&b);
    pc->expected = pd->expected_response ? pd->expected_response : 200;
    pc->timeout = pd->timeout > 0 ? pd->timeout : 2;
    pc->interval = pd->interval > 0 ? pd->interval : 5;
    pc->window = pd->window >= 1 && pd->window <= 64 ? pd->window : 8;
    pc->threshold = pd->threshold >= 1 ? pd->threshold : 3;
    if (pc->threshold > pc->window)
        pc->threshold = pc->window;
    pc->initial = pd->initial <= pc->window ? pd->initial : pc->window;
    uint64_t bits = pc->initial >= 64 ? ~0ull : (1ull << pc->initial) - 1;
    atomic_store(&be->probe_bits, bits);
    atomic_store(&be->probe_ok, pc->initial >= pc->threshold);
}

/* An error about a backend declaration, at its place in the policy, as
 * the compiler words its own: "site.vcl:3:13: error: backend web: ...". */
static void __attribute__((format(printf, 5, 6)))
decl_error(char *err, size_t errlen, const struct vcl_place *at, const char *name,
           const char *fmt, ...)
{
    char what[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (at->file != NULL)
        snprintf(err, errlen, "%s:%u:%u: error: backend %s: %s", at->file, at->line, at->col, name,
                 what);
    else
        snprintf(err, errlen, "backend %s: %s", name, what);
}

struct pool_set *
pool_set_from_program(const struct config *cfg, const struct vcl_program *p, char *err,
                      size_t errlen)
{
    size_t nbe = vcl_program_backend_count(p), ndir = vcl_program_director_count(p);
    struct pool_set *ps = set_new((unsigned)nbe, (unsigned)ndir, cfg->nworkers);

    ps->managed = true;
    for (size_t i = 0; i < nbe; i++) {
        const struct vcl_backend_decl *b = vcl_program_backend(p, i);
        struct backend *be = &ps->be[i];
        char spec[512], aerr[384];
        struct config_addr a;

        snprintf(be->vname, sizeof(be->vname), "%s", b->name);
        if (b->none || b->host == NULL) {
            if (b->path != NULL) {
                decl_error(err, errlen, &b->path_at, b->name, ".path \"%s\": unix-socket "
                           "backends are not supported yet (give .host and .port)", b->path);
                goto fail;
            }
            be->none = true;
            snprintf(be->name, sizeof(be->name), "%s", b->name);
            continue;
        }
        const char *port = b->port ? b->port : b->ssl ? "443" : "80";
        if (strchr(b->host, ':') != NULL && b->host[0] != '[')
            snprintf(spec, sizeof(spec), "[%s]:%s", b->host, port);
        else
            snprintf(spec, sizeof(spec), "%s:%s", b->host, port);
        memset(&a, 0, sizeof(a));
        if (config_parse_addr(spec, "127.0.0.1", &a, aerr, sizeof(aerr)) != 0) {
            free(a.spec);
            decl_error(err, errlen, &b->host_at, b->name, "%s", aerr);
            goto fail;
        }
        memcpy(&be->ss, &a.ss, a.len);
        be->len = a.len;
        free(a.spec);
        sock_ntop_port((struct sockaddr *)&be->ss, be->name, sizeof(be->name));
        be->host = ac_xstrdup(b->host);
        be->host_header = b->host_header ? ac_xstrdup(b->host_header) : NULL;
        be->ssl = b->ssl;
        if (be->ssl) {
            char terr[256];
            be->ssl_sni = b->ssl_sni;
            be->ssl_verify_host = b->ssl_verify_host;
            be->tls_name = be->host_header ? be->host_header : be->host;
            if (b->ssl_ca_file != NULL && ac_file_readable(b->ssl_ca_file, terr, sizeof(terr)) != 0) {
                decl_error(err, errlen, &b->ssl_ca_file_at, b->name, ".ssl_ca_file %s: %s",
                           b->ssl_ca_file, terr);
                goto fail;
            }
            be->tls_ctx = tls_client_ctx(b->ssl_ca_file, b->ssl_verify_peer, terr, sizeof(terr));
            if (be->tls_ctx == NULL) {
                decl_error(err, errlen, b->ssl_ca_file ? &b->ssl_ca_file_at : &b->at, b->name,
                           "%s", terr);
                goto fail;
            }
        }
        be->connect_timeout = b->connect_timeout;
        be->first_byte_timeout = b->first_byte_timeout;
        be->between_bytes_timeout = b->between_bytes_timeout;
        be->max_conn = b->max_connections;
        if (b->probe >= 0)
            probe_cfg(be, vcl_program_probe(p, (size_t)b->probe));
    }
    for (size_t i = 0; i < ndir; i++) {
        const struct vcl_director_decl *dd = vcl_program_director(p, i);
        struct director *d = &ps->dir[i];
        d->magic = DIRECTOR_MAGIC;
        snprintf(d->name, sizeof(d->name), "%s", dd->name);
        d->type = dd->type;
        d->sticky = dd->sticky;
        if (dd->n_members > 64) {
            snprintf(err, errlen, "director %s: more than 64 members", dd->name);
            goto fail;
        }
        d->n = (unsigned)dd->n_members;
        d->ref = ac_xcalloc(d->n ? d->n : 1, sizeof(*d->ref));
        d->weight = ac_xcalloc(d->n ? d->n : 1, sizeof(*d->weight));
        const char **names = ac_xcalloc(d->n ? d->n : 1, sizeof(*names));
        for (unsigned k = 0; k < d->n; k++) {
            d->ref[k] = dd->members[k].ref;
            d->weight[k] = dd->members[k].weight;
            names[k] = vcl_program_ref_name(p, d->ref[k]);
        }
        if ((d->type == VCL_DIR_HASH || d->type == VCL_DIR_SHARD) && d->n > 0)
            (void)dir_ring_build(&d->ring, names, d->weight, d->n);
        free(names);
    }
    return ps;
fail:
    pool_set_release(&ps);
    return NULL;
}

void
pool_set_inherit(struct pool_set *ps, const struct pool_set *old)
{
    if (old == NULL || !old->managed || !ps->managed)
        return;
    for (unsigned i = 0; i < ps->nbe; i++) {
        struct backend *be = &ps->be[i];
        for (unsigned j = 0; j < old->nbe; j++) {
            const struct backend *ob = &old->be[j];
            if (strcmp(ob->vname, be->vname) != 0 || strcmp(ob->name, be->name) != 0)
                continue;
            if (be->has_probe && ob->has_probe) {
                uint64_t mask = be->probe.window >= 64 ? ~0ull : (1ull << be->probe.window) - 1;
                atomic_store(&be->probe_bits, atomic_load(&ob->probe_bits) & mask);
                atomic_store(&be->probe_ok, atomic_load(&ob->probe_ok));
                atomic_store(&be->probe_reported, atomic_load(&ob->probe_reported));
            }
            atomic_store(&be->sick_until_ms, atomic_load(&ob->sick_until_ms));
            break;
        }
    }
}

struct pool_set *
pool_set_ref(struct pool_set *ps)
{
    AC_CHECK_OBJ(ps, POOL_SET_MAGIC);
    atomic_fetch_add_explicit(&ps->refs, 1, memory_order_relaxed);
    return ps;
}

void
pool_set_release(struct pool_set **psp)
{
    struct pool_set *ps = *psp;

    *psp = NULL;
    if (ps == NULL)
        return;
    AC_CHECK_OBJ(ps, POOL_SET_MAGIC);
    if (atomic_fetch_sub_explicit(&ps->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (unsigned i = 0; i < ps->nbe; i++) {
        struct backend *be = &ps->be[i];
        for (unsigned k = 0; k < ps->nworkers; k++)
            AC_ASSERT(be->idle[k].head == NULL);    /* workers drained theirs */
        AC_ASSERT(be->qhead == NULL);   /* waiters hold the program, hence the set */
        pthread_mutex_destroy(&be->qmtx);
        free(be->idle);
        tls_client_ctx_free(&be->tls_ctx);
        free(be->host);
        free(be->host_header);
        free(be->probe.request);
        be->magic = 0;
    }
    for (unsigned i = 0; i < ps->ndir; i++) {
        free(ps->dir[i].ref);
        free(ps->dir[i].weight);
        dir_ring_free(&ps->dir[i].ring);
    }
    free(ps->be);
    free(ps->dir);
    ps->magic = 0;
    free(ps);
}

unsigned
pool_set_nbackends(const struct pool_set *ps)
{
    return ps->nbe;
}

struct backend *
pool_set_backend(struct pool_set *ps, unsigned idx)
{
    AC_ASSERT(idx < ps->nbe);
    return &ps->be[idx];
}

static void
set_fini(void *arg)
{
    struct pool_set *ps = arg;

    pool_set_release(&ps);
}

void
pool_set_attach(struct pool_set *ps, struct vcl_program *p)
{
    vcl_program_set_host_data(p, ps, set_fini);
}

struct pool_set *
pool_set_of(const struct vcl_program *p)
{
    return vcl_program_host_data(p);
}

bool
pool_set_managed(const struct pool_set *ps)
{
    return ps->managed;
}

/* ------------------------------------------------------------ health */

uint64_t
pool_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool
pool_be_healthy(const struct backend *be, uint64_t now_ms)
{
    if (be->none)
        return false;
    if (!atomic_load_explicit(&be->probe_ok, memory_order_relaxed))
        return false;
    return now_ms >= atomic_load_explicit(&be->sick_until_ms, memory_order_relaxed);
}

void
pool_be_report(struct backend *be, bool ok, const struct config *cfg)
{
    unsigned n;

    if (!be->set->managed)
        return;
    if (ok) {
        if (atomic_load_explicit(&be->consec_fail, memory_order_relaxed) != 0)
            atomic_store_explicit(&be->consec_fail, 0, memory_order_relaxed);
        /* the first success after a passive sick period: say so, once */
        uint_fast64_t until = atomic_load_explicit(&be->sick_until_ms, memory_order_relaxed);
        if (until != 0 && pool_now_ms() >= until &&
            atomic_compare_exchange_strong_explicit(&be->sick_until_ms, &until, 0,
                                                    memory_order_relaxed, memory_order_relaxed))
            LOG_I("backend %s (%s): healthy again (answered after its sick period)", be->vname,
                  be->name);
        return;
    }
    n = atomic_fetch_add_explicit(&be->consec_fail, 1, memory_order_relaxed) + 1;
    if (cfg->p.backend_fail_threshold < 1 || n < (unsigned)cfg->p.backend_fail_threshold)
        return;
    atomic_store_explicit(&be->consec_fail, 0, memory_order_relaxed);
    uint64_t until = pool_now_ms() + (uint64_t)(cfg->p.backend_sick_time * 1000);
    atomic_store_explicit(&be->sick_until_ms, until, memory_order_relaxed);
    LOG_W("backend %s (%s): sick for %gs after %u consecutive failures", be->vname, be->name,
          cfg->p.backend_sick_time, n);
}

void
pool_be_probe_result(struct backend *be, bool ok, const char *why)
{
    const struct pool_probe_cfg *pc = &be->probe;
    uint64_t mask = pc->window >= 64 ? ~0ull : (1ull << pc->window) - 1;
    uint64_t bits = ((atomic_load(&be->probe_bits) << 1) | (ok ? 1u : 0u)) & mask;
    unsigned good = (unsigned)__builtin_popcountll(bits);
    bool now_ok = good >= pc->threshold, was = atomic_load(&be->probe_ok);

    atomic_store(&be->probe_bits, bits);
    atomic_fetch_add_explicit(ok ? &be->n_probe_good : &be->n_probe_bad, 1,
                              memory_order_relaxed);
    /* A backend that starts sick and stays so has never changed state: say
     * so once, at its first result, so nobody wonders why it gets nothing. */
    if (now_ok != was || !atomic_load(&be->probe_reported)) {
        atomic_store(&be->probe_reported, true);
        if (now_ok == was && now_ok)
            return;                 /* started healthy, still is: nothing to say */
        atomic_store(&be->probe_ok, now_ok);
        if (now_ok)
            atomic_store(&be->sick_until_ms, 0);    /* probes are the authority */
        LOG_I("backend %s (%s): %s (probe %u/%u good, threshold %u%s%s)", be->vname, be->name,
              now_ok ? "healthy" : "sick", good, pc->window, pc->threshold, why ? "; " : "",
              why ? why : "");
    }
}

/* ------------------------------------------------------- connections */

struct pool_set *
pool_worker_set(struct wrk *w)
{
    return w->pset;
}

void
pool_worker_install(struct wrk *w, struct pool_set *ps)
{
    if (w->pset == ps)
        return;
    if (w->pset != NULL) {
        pool_close_idle(w);         /* old connections drained on this thread */
        pool_set_release(&w->pset);
    }
    w->pset = ps != NULL ? pool_set_ref(ps) : NULL;
}

const struct backend *
pool_pick(struct wrk *w)
{
    struct pool_set *ps = w->pset;

    if (ps == NULL || ps->nbe == 0)
        return NULL;
    return &ps->be[w->rr++ % ps->nbe];
}

bool
pool_be_acquire(struct backend *be)
{
    unsigned cur = atomic_load_explicit(&be->busy, memory_order_relaxed);

    if (be->max_conn == 0) {
        atomic_fetch_add_explicit(&be->busy, 1, memory_order_relaxed);
        return true;
    }
    do {
        if (cur >= be->max_conn)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&be->busy, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

/* Under be->qmtx: hand a slot being given back to the oldest waiter, or
 * free it. */
static void
slot_pass_locked(struct backend *be)
{
    struct pool_waiter *qw = be->qhead;

    if (qw == NULL) {
        atomic_fetch_sub_explicit(&be->busy, 1, memory_order_relaxed);
        return;
    }
    be->qhead = qw->next;
    if (be->qhead == NULL)
        be->qtail = NULL;
    qw->next = NULL;
    qw->queued = false;
    qw->granted = true;             /* busy stays: the slot changes hands */
    qw->wake(qw->arg);
}

void
pool_be_release(struct backend *be)
{
    if (be->max_conn == 0) {
        atomic_fetch_sub_explicit(&be->busy, 1, memory_order_relaxed);
        return;
    }
    AC_ZERO(pthread_mutex_lock(&be->qmtx));
    slot_pass_locked(be);
    AC_ZERO(pthread_mutex_unlock(&be->qmtx));
}

bool
pool_wait_enter(struct pool_waiter *qw)
{
    struct backend *be = qw->be;
    bool got;

    AC_ZERO(pthread_mutex_lock(&be->qmtx));
    /* Again under the lock: a release between the caller's failed attempt
     * and now would otherwise find nobody to hand its slot to. */
    got = be->qhead == NULL && pool_be_acquire(be);
    if (!got) {
        qw->next = NULL;
        qw->queued = true;
        qw->granted = false;
        if (be->qtail != NULL)
            be->qtail->next = qw;
        else
            be->qhead = qw;
        be->qtail = qw;
    }
    AC_ZERO(pthread_mutex_unlock(&be->qmtx));
    return got;
}

bool
pool_wait_granted(struct pool_waiter *qw)
{
    struct backend *be = qw->be;
    bool g;

    AC_ZERO(pthread_mutex_lock(&be->qmtx));
    g = qw->granted;
    qw->granted = false;
    AC_ZERO(pthread_mutex_unlock(&be->qmtx));
    if (g)
        qw->be = NULL;
    return g;
}

void
pool_wait_leave(struct pool_waiter *qw)
{
    struct backend *be = qw->be;

    if (be == NULL)
        return;
    AC_ZERO(pthread_mutex_lock(&be->qmtx));
    if (qw->queued) {
        struct pool_waiter **pp = &be->qhead, *prev = NULL;
        while (*pp != qw) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = qw->next;
        if (be->qtail == qw)
            be->qtail = prev;
        qw->next = NULL;
        qw->queued = false;
    }
    if (qw->granted) {
        qw->granted = false;
        slot_pass_locked(be);       /* not ours after all: the next one's */
    }
    AC_ZERO(pthread_mutex_unlock(&be->qmtx));
    qw->be = NULL;
}

static void
slot_release(struct oconn *oc)
{
    if (oc->slot) {
        oc->slot = false;
        pool_be_release((struct backend *)oc->be);
    }
}

static void
idle_unlink(struct oconn *oc)
{
    struct oconn_list *l = &oc->be->idle[oc->w->id];

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
    struct oconn *oc = be->idle[w->id].head;

    if (oc == NULL)
        return NULL;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    idle_unlink(oc);
    ev_io_stop(w->loop, &oc->io);
    ev_timer_stop(w->loop, &oc->idle_tmr);
    atomic_fetch_add_explicit(&((struct backend *)be)->n_reuse, 1, memory_order_relaxed);
    return oc;
}

int
pool_be_tls_attach(const struct backend *be, struct conn *c)
{
    AC_ASSERT(be->ssl && be->tls_ctx != NULL);
    return tls_client_attach_opts(c, be->tls_ctx, be->tls_name, be->ssl_sni, be->ssl_verify_host);
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
    pool_set_ref(be->set);
    oc->connecting = true;
    ev_io_init(&oc->io, on_idle_io, fd, EV_READ);
    ev_timer_init(&oc->idle_tmr, on_idle_timer, 0, 0);
    STAT_INC(w, backend_conn);
    atomic_fetch_add_explicit(&((struct backend *)be)->n_conn, 1, memory_order_relaxed);
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
    l = &oc->be->idle[w->id];
    if (w->stopping || (oc->be->set != w->pset && !oc->be->set->keep_idle) ||
        l->n >= (unsigned)w->cfg->p.origin_idle_conns) {
        pool_close(&oc);
        return;
    }
    slot_release(oc);
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
    struct pool_set *ps;

    *ocp = NULL;
    AC_CHECK_OBJ(oc, OCONN_MAGIC);
    slot_release(oc);
    ev_io_stop(oc->w->loop, &oc->io);
    ev_timer_stop(oc->w->loop, &oc->idle_tmr);
    conn_close(&oc->c);
    ps = oc->be->set;
    oc->magic = 0;
    free(oc);
    pool_set_release(&ps);
}

static void
close_idle_of(struct wrk *w, struct pool_set *ps)
{
    for (unsigned i = 0; ps != NULL && i < ps->nbe; i++) {
        struct oconn *oc;
        while ((oc = ps->be[i].idle[w->id].head) != NULL) {
            idle_unlink(oc);
            pool_close(&oc);
        }
    }
}

void
pool_close_idle(struct wrk *w)
{
    close_idle_of(w, w->pset);
    /* the registry keeps its sets alive while w closes their connections */
    AC_ZERO(pthread_mutex_lock(&peer_mtx));
    for (unsigned i = 0; i < POOL_PEER_SETS; i++)
        close_idle_of(w, peer_sets[i]);
    AC_ZERO(pthread_mutex_unlock(&peer_mtx));
}

/* ------------------------------------------------------------- stats */

void
pool_stats_json(struct pool_set *ps, struct ac_buf *b)
{
    uint64_t now = pool_now_ms();

    ac_buf_catstr(b, "[");
    for (unsigned i = 0; ps != NULL && i < ps->nbe; i++) {
        struct backend *be = &ps->be[i];
        uint64_t su = atomic_load(&be->sick_until_ms);
        ac_buf_printf(b, "%s{\"name\": \"%s\", \"address\": \"%s\", \"healthy\": %s", i ? ", " : "",
                      be->vname, be->name, pool_be_healthy(be, now) ? "true" : "false");
        if (be->has_probe)
            ac_buf_printf(b, ", \"probe\": \"%u/%u\"",
                          (unsigned)__builtin_popcountll(atomic_load(&be->probe_bits)),
                          be->probe.window);
        if (su > now)
            ac_buf_printf(b, ", \"sick_for\": %.3f", (double)(su - now) / 1000.0);
        ac_buf_printf(b, ", \"busy\": %u, \"max_connections\": %u",
                      atomic_load(&be->busy), be->max_conn);
#define X(n, h) ac_buf_printf(b, ", \"%s\": %llu", #n, \
                              (unsigned long long)atomic_load_explicit(&be->n_##n, \
                                                                       memory_order_relaxed));
        POOL_BE_COUNTERS(X)
#undef X
        ac_buf_catstr(b, "}");
    }
    ac_buf_catstr(b, "]");
}
