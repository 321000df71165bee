/*
 * reload.c -- SIGHUP and POST /reload: compile the policy again beside the
 * running program and read the certificates again, on the main thread;
 * the queue through which admin requests on the workers ask for it and get
 * the compile result back (reload.h).
 */
#include "reload.h"

#include "log.h"
#include "policy.h"
#include "pool.h"
#include "probe.h"
#include "tls.h"
#include "wrk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

/*
 * The policy: on success hand it to every worker (requests in flight keep
 * the program they started with), on failure keep the old one and say
 * why.  0, -1, or 1 (no -f).
 */
static int
reload_policy(const struct config *cfg, struct wrk *ws, struct vcl_program **progp,
              struct ac_buf *msg)
{
    struct vcl_program *p;
    char *diag = NULL;
    size_t dlen = 0;
    FILE *df;

    if (cfg->vcl_file == NULL)
        return 1;
    LOG_I("reloading %s", cfg->vcl_file);
    /* The compiler writes its diagnostics to a stream: catch them, so they
     * go to the error log with a timestamp on each line and to the admin
     * client that asked. */
    df = open_memstream(&diag, &dlen);
    p = policy_compile(cfg, cfg->vcl_file, df != NULL ? df : stderr);
    if (df != NULL)
        fclose(df);
    if (diag != NULL && dlen > 0) {
        while (dlen > 0 && diag[dlen - 1] == '\n')
            diag[--dlen] = '\0';
        log_msg(p == NULL ? LOG_ERR : LOG_WARN, "%s", diag);
    }
    if (p == NULL) {
        LOG_E("reload of %s failed: keeping the running policy", cfg->vcl_file);
        if (dlen > 0)
            ac_buf_cat(msg, diag, dlen);
        else
            ac_buf_printf(msg, "%s: the policy does not compile", cfg->vcl_file);
        free(diag);
        return -1;
    }
    free(diag);
    /* The new program brings its own pool set (backends, probes,
     * directors); health carries over for unchanged backends.  Requests in
     * flight finish on the old set; each worker closes its idle
     * connections to the old one when it switches. */
    char err[512];
    struct pool_set *ps = pool_set_from_program(cfg, p, err, sizeof(err));
    if (ps == NULL) {
        LOG_E("reload of %s failed: %s: keeping the running policy", cfg->vcl_file, err);
        ac_buf_catstr(msg, err);
        vcl_program_release(&p);
        return -1;
    }
    pool_set_inherit(ps, pool_set_of(*progp));
    probe_install(ps);
    if (!probe_wait_first(ps))
        LOG_W("reload: some first probes did not finish in time; those backends start sick");
    pool_set_attach(ps, p);
    LOG_I("reload: %zu backend(s), %zu director(s)", vcl_program_backend_count(p),
          vcl_program_director_count(p));
    for (unsigned i = 0; i < cfg->nworkers; i++)
        policy_worker_install(&ws[i], p);
    vcl_program_release(progp);
    *progp = p;
    LOG_I("reload of %s done", cfg->vcl_file);
    return 0;
}

/*
 * Every certificate and key again.  New connections get the new ones;
 * established connections keep theirs.  A bad file keeps the running set
 * (after -u, the key files must be readable by that user).
 */
static int
reload_certs(const struct config *cfg, struct ac_buf *msg)
{
    char err[512];

    if (cfg->ncerts == 0)
        return 1;
    LOG_I("reloading %u certificate(s)", cfg->ncerts);
    if (tls_server_reload(err, sizeof(err)) != 0) {
        LOG_E("certificate reload failed, keeping the running certificates: %s", err);
        if (msg->len > 0)
            ac_buf_cat(msg, "\n", 1);
        ac_buf_catstr(msg, err);
        return -1;
    }
    LOG_I("certificate reload done");
    return 0;
}

int
reload_all(const struct config *cfg, struct wrk *ws, struct vcl_program **progp,
           struct ac_buf *msg)
{
    int rp, rc;

    ac_buf_reset(msg);
    rp = reload_policy(cfg, ws, progp, msg);
    rc = reload_certs(cfg, msg);
    if (rp == 1 && rc == 1) {
        LOG_I("reload: nothing to reload (no policy file -f, no certificates -c)");
        ac_buf_catstr(msg, "nothing to reload: no policy file (-f) and no certificates (-c)");
        return 1;
    }
    return rp < 0 || rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ the queue */

struct reload_req {
    unsigned magic;
#define RELOAD_REQ_MAGIC 0x3e6a91c5
    struct wrk *w;
    struct wrk_wakeup *wu;          /* the waiting request's; NULL once abandoned */
    struct reload_req *next;        /* queued, not yet taken */
    bool queued, taken, done;
    int status;
    struct ac_buf msg;
};

/* Global (architecture.md): the queued requests and the eventfd that wakes
 * the main thread; any thread, under Q.mtx. */
static struct {
    pthread_mutex_t mtx;
    struct reload_req *head;
    int efd;
} Q = { PTHREAD_MUTEX_INITIALIZER, NULL, -1 };

int
reload_queue_init(void)
{
    Q.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return Q.efd >= 0 ? 0 : -1;
}

int
reload_queue_fd(void)
{
    return Q.efd;
}

static void
req_free(struct reload_req **rp)
{
    struct reload_req *r = *rp;

    AC_CHECK_OBJ(r, RELOAD_REQ_MAGIC);
    ac_buf_free(&r->msg);
    r->magic = 0;
    free(r);
    *rp = NULL;
}

struct reload_req *
reload_req_submit(struct wrk *w, struct wrk_wakeup *wu)
{
    struct reload_req *r = ac_xcalloc(1, sizeof(*r));
    uint64_t one = 1;

    r->magic = RELOAD_REQ_MAGIC;
    r->w = w;
    r->wu = wu;
    ac_buf_init(&r->msg, 0, 0);
    AC_ZERO(pthread_mutex_lock(&Q.mtx));
    r->next = Q.head;
    Q.head = r;
    r->queued = true;
    AC_ZERO(pthread_mutex_unlock(&Q.mtx));
    if (Q.efd >= 0)
        (void)!write(Q.efd, &one, sizeof(one));
    return r;
}

bool
reload_req_result(struct reload_req **rp, int *status, struct ac_buf *msg)
{
    struct reload_req *r = *rp;
    bool done;

    AC_CHECK_OBJ(r, RELOAD_REQ_MAGIC);
    AC_ZERO(pthread_mutex_lock(&Q.mtx));
    done = r->done;
    AC_ZERO(pthread_mutex_unlock(&Q.mtx));
    if (!done)
        return false;
    /* done: the main thread no longer touches it */
    *status = r->status;
    ac_buf_reset(msg);
    ac_buf_cats(msg, ac_buf_slice(&r->msg));
    req_free(rp);
    return true;
}

void
reload_req_abandon(struct reload_req **rp)
{
    struct reload_req *r = *rp, **pp;
    bool mine = true;

    if (r == NULL)
        return;
    AC_CHECK_OBJ(r, RELOAD_REQ_MAGIC);
    AC_ZERO(pthread_mutex_lock(&Q.mtx));
    if (r->queued) {
        for (pp = &Q.head; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == r) {
                *pp = r->next;
                break;
            }
        }
        r->queued = false;
    } else if (r->taken && !r->done) {
        r->wu = NULL;               /* the main thread frees it when it is done */
        mine = false;
    }
    AC_ZERO(pthread_mutex_unlock(&Q.mtx));
    if (mine)
        req_free(&r);
    *rp = NULL;
}

void
reload_queue_serve(int (*run)(void *arg, struct ac_buf *msg), void *arg)
{
    struct reload_req *taken, *r, *next;
    struct ac_buf msg;
    uint64_t n;
    int status;

    if (Q.efd >= 0)
        (void)!read(Q.efd, &n, sizeof(n));
    AC_ZERO(pthread_mutex_lock(&Q.mtx));
    taken = Q.head;
    Q.head = NULL;
    for (r = taken; r != NULL; r = r->next) {
        r->queued = false;
        r->taken = true;
    }
    AC_ZERO(pthread_mutex_unlock(&Q.mtx));
    if (taken == NULL)
        return;
    /* One reload answers every request queued before it started. */
    LOG_I("POST /reload on the admin listener");
    ac_buf_init(&msg, 0, 0);
    status = run(arg, &msg);
    AC_ZERO(pthread_mutex_lock(&Q.mtx));
    for (r = taken; r != NULL; r = next) {
        next = r->next;
        r->next = NULL;
        if (r->wu == NULL) {        /* its request went away meanwhile */
            req_free(&r);
            continue;
        }
        r->status = status;
        ac_buf_cats(&r->msg, ac_buf_slice(&msg));
        r->done = true;
        /* under Q.mtx: the request cannot abandon (and be reused) between
         * the check above and this wake-up */
        wrk_wake(r->w, r->wu);
    }
    AC_ZERO(pthread_mutex_unlock(&Q.mtx));
    ac_buf_free(&msg);
}

void
reload_queue_fini(void)
{
    struct reload_req *r;

    AC_ZERO(pthread_mutex_lock(&Q.mtx));
    while ((r = Q.head) != NULL) {
        Q.head = r->next;
        req_free(&r);
    }
    AC_ZERO(pthread_mutex_unlock(&Q.mtx));
    if (Q.efd >= 0)
        close(Q.efd);
    Q.efd = -1;
}
