/*
 * main.c -- accel: parse the command line, open listeners, start the
 * workers, then wait for signals: SIGTERM/SIGINT drain and exit 0.
 */
#include "ac.h"
#include "bans.h"
#include "brjob.h"
#include "cache.h"
#include "cluster.h"
#include "config.h"
#include "h1.h"
#include "h2x.h"
#include "log.h"
#include "policy.h"
#include "pool.h"
#include "probe.h"
#include "req.h"
#include "store.h"
#include "tls.h"
#include "wrk.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct config cfg;       /* read-only once workers start (architecture.md) */
static struct cache_params cparams; /* idem */

/*
 * What the workers run, wired here so that net/ knows no room above it:
 * client connections are HTTP/1.1 (client/h1.c), a draining or exiting
 * worker closes its idle origin connections (origin/pool.c), an exiting one
 * frees its cache of request objects (req/req.c).
 */
static void
wrk_on_exit(struct wrk *w)
{
    pool_close_idle(w);
    req_cache_flush(w);
}

static void
wrk_on_destroy(struct wrk *w)
{
    if (w->pset != NULL)
        pool_set_release(&w->pset);
    h2x_worker_fini(w);
}

static const struct wrk_hooks wrk_hooks = {
    .accept = h1_accept,
    .drain = pool_close_idle,
    .exit = wrk_on_exit,
    .destroy = wrk_on_destroy,
};

static void
on_store_panic(const char *func, const char *file, int line, const char *expr)
{
    ac_panic(func, file, line, expr);
}

/* Open the object store from -s (memory always; LMDB with disk=). */
static struct store *
open_store(void)
{
    struct store_config sc;
    struct store *st = NULL;
    char err[512] = "";
    int r;

    store_set_panic_hook(on_store_panic);
    store_config_init(&sc);
    sc.mem_limit = cfg.mem_limit;
    sc.disk_path = cfg.disk_path;
    sc.disk_map_size = cfg.disk_size;
    sc.disk_max_size = (size_t)cfg.p.max_object_size;
    sc.disk_min_ttl = 1;
    sc.ban_match = bans_store_match;
    sc.errbuf = err;
    sc.errbuf_len = sizeof(err);
    r = store_open(&sc, &st);
    if (r != STORE_OK) {
        LOG_E("cannot open the store: %s%s%s", store_strerror(r), err[0] ? ": " : "", err);
        return NULL;
    }
    if (err[0])
        LOG_W("store: %s", err);
    return st;
}

/*
 * SIGHUP: compile the policy file again beside the running program; on
 * success hand it to every worker (requests in flight keep the program they
 * started with), on failure keep the old one and say why.
 */
static void
reload(struct wrk *ws, struct vcl_program **progp)
{
    struct vcl_program *p;

    if (cfg.vcl_file == NULL) {
        LOG_I("SIGHUP: no policy file (-f) to reload");
        return;
    }
    LOG_I("SIGHUP: reloading %s", cfg.vcl_file);
    p = policy_compile(&cfg, cfg.vcl_file, stderr);
    if (p == NULL) {
        LOG_E("reload of %s failed: keeping the running policy", cfg.vcl_file);
        return;
    }
    /* The new program brings its own pool set (backends, probes,
     * directors); health carries over for unchanged backends.  Requests in
     * flight finish on the old set; each worker closes its idle
     * connections to the old one when it switches. */
    char err[512];
    struct pool_set *ps = pool_set_from_program(&cfg, p, err, sizeof(err));
    if (ps == NULL) {
        LOG_E("reload of %s failed: %s: keeping the running policy", cfg.vcl_file, err);
        vcl_program_release(&p);
        return;
    }
    pool_set_inherit(ps, pool_set_of(*progp));
    probe_install(ps);
    if (!probe_wait_first(ps))
        LOG_W("reload: some first probes did not finish in time; those backends start sick");
    pool_set_attach(ps, p);
    LOG_I("reload: %zu backend(s), %zu director(s)", vcl_program_backend_count(p),
          vcl_program_director_count(p));
    for (unsigned i = 0; i < cfg.nworkers; i++)
        policy_worker_install(&ws[i], p);
    vcl_program_release(progp);
    *progp = p;
    LOG_I("reload of %s done", cfg.vcl_file);
}

/*
 * SIGHUP: read every certificate and key again.  New connections get the
 * new ones; established connections keep theirs.  A bad file keeps the
 * running set (after -u, the key files must be readable by that user).
 */
static void
reload_certs(void)
{
    char err[512];

    if (cfg.ncerts == 0)
        return;
    LOG_I("SIGHUP: reloading %u certificate(s)", cfg.ncerts);
    if (tls_server_reload(err, sizeof(err)) != 0)
        LOG_E("certificate reload failed, keeping the running certificates: %s", err);
    else
        LOG_I("certificate reload done");
}

/*
 * -u USER: after the listeners, keys, store and logs are open, give up
 * root for good (groups, then gid, then uid; the order matters: without
 * root we could no longer change groups).  0, or -1 with a message.
 */
static int
drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);

    if (pw == NULL) {
        snprintf(err, errlen, "-u %s: no such user", user);
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "-u %s: cannot switch to uid %u gid %u: %s", user,
                 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && setuid(0) == 0) {
        snprintf(err, errlen, "-u %s: root could be regained", user);
        return -1;
    }
    LOG_I("running as %s (uid %u, gid %u)", user, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
    return 0;
}

int
main(int argc, char **argv)
{
    char err[512];
    struct wrk *ws = NULL;
    sigset_t set;
    int sig, r;

    r = config_parse(&cfg, argc, argv, err, sizeof(err));
    if (r == 1) {
        config_free(&cfg);
        return 0;
    }
    if (r != 0) {
        fprintf(stderr, "accel: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    if (cfg.debug)
        log_set_level(LOG_DEBUG);
    vcl_set_panic_hook(on_store_panic);
    if (cfg.x_tool != NULL && strcmp(cfg.x_tool, "builtin") == 0) {
        fputs(vcl_builtin_source(), stdout);
        config_free(&cfg);
        return 0;
    }
    if (cfg.x_tool != NULL) {
        r = policy_main_explain(&cfg, cfg.x_argc, cfg.x_argv);
        config_free(&cfg);
        return r;
    }
    if (cfg.compile_only) {
        r = policy_main_check(&cfg);
        config_free(&cfg);
        return r;
    }
    if (cfg.nbackend == 0 && cfg.vcl_file == NULL) {
        fprintf(stderr, "accel: no origin: give -b HOST:PORT (or -f policy.vcl)\n");
        config_free(&cfg);
        return 2;
    }
    if (cfg.nbackend > 0 && cfg.vcl_file != NULL) {
        fprintf(stderr, "accel: -b and -f exclude each other: declare backends in the policy\n");
        config_free(&cfg);
        return 2;
    }
    struct vcl_program *prog = NULL;
    struct pool_set *bset = NULL;   /* -b origins (no policy) */
    if (cfg.vcl_file != NULL) {
        struct pool_set *ps;
        prog = policy_compile(&cfg, cfg.vcl_file, stderr);
        if (prog == NULL) {
            fprintf(stderr, "accel: %s: the policy does not compile\n", cfg.vcl_file);
            config_free(&cfg);
            return 1;
        }
        if ((ps = pool_set_from_program(&cfg, prog, err, sizeof(err))) == NULL) {
            fprintf(stderr, "accel: %s: %s\n", cfg.vcl_file, err);
            vcl_program_release(&prog);
            config_free(&cfg);
            return 1;
        }
        pool_set_attach(ps, prog);
    } else if ((bset = pool_set_from_config(&cfg, err, sizeof(err))) == NULL) {
        fprintf(stderr, "accel: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    /* Workers inherit a mask with the signals main waits for. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    cparams.default_grace = cfg.p.default_grace;
    cparams.default_keep = cfg.p.default_keep;
    cparams.hfm_ttl = cfg.p.hfm_ttl;
    cparams.heuristic_fraction = cfg.p.heuristic_fraction;
    cparams.heuristic_max = cfg.p.heuristic_max;
    cparams.max_object_size = cfg.p.max_object_size;
    cparams.targeted_cc = AC_SLICE(cfg.targeted_cc, strlen(cfg.targeted_cc));
    struct store *st = cfg.no_cache ? NULL : open_store();
    if (st == NULL && !cfg.no_cache) {
        config_free(&cfg);
        return 1;
    }
    /* the cluster's start fails on its parameters (a usage error: 2); on
     * any failure the bus thread stops before the store it writes to closes */
    int rc = 0;
    if (cluster_start(&cfg, st, err, sizeof(err)) != 0)
        rc = 2;
    else if (tls_server_init(&cfg, err, sizeof(err)) != 0)
        rc = 1;
    if (rc != 0) {
        LOG_E("%s", err);
        cluster_stop();
        pool_set_release(&bset);
        if (prog != NULL)
            vcl_program_release(&prog);
        if (st != NULL)
            store_close(&st);
        config_free(&cfg);
        return rc;
    }
    if (cluster_on())
        bans_set_added_hook(cluster_ban_added);  /* bans accepted here are published */
    int wrc = wrk_create_all(&cfg, st, &cparams, &wrk_hooks, &ws, err, sizeof(err));
    for (unsigned i = 0; wrc == 0 && i < cfg.nworkers; i++)
        h2x_worker_init(&ws[i]);
    if (wrc != 0 ||
        (cfg.user != NULL && drop_privileges(cfg.user, err, sizeof(err)) != 0)) {
        LOG_E("%s", err);
        wrk_destroy_all(&ws, cfg.nworkers);
        cluster_stop();
        pool_set_release(&bset);
        if (prog != NULL)
            vcl_program_release(&prog);
        tls_server_fini();
        if (st != NULL)
            store_close(&st);
        config_free(&cfg);
        return 1;
    }
    if (prog != NULL)
        for (unsigned i = 0; i < cfg.nworkers; i++)
            policy_worker_install(&ws[i], prog);
    else
        for (unsigned i = 0; i < cfg.nworkers; i++)
            pool_worker_install(&ws[i], bset);
    if (prog != NULL) {
        if (probe_start() != 0) {
            LOG_E("cannot start the probe thread");
            return 1;
        }
        probe_install(pool_set_of(prog));
        if (!probe_wait_first(pool_set_of(prog)))
            LOG_W("some first probes did not finish in time; those backends start sick");
    }
    if (wrk_start_all(ws, cfg.nworkers) != 0)
        return 1;
    for (unsigned i = 0; i < cfg.nlisten; i++)
        LOG_I("listening on %s (%u workers)", cfg.listen[i].spec, cfg.nworkers);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(ws, &prog);
            reload_certs();
            h2x_reload_all(ws, cfg.nworkers);
            continue;
        }
        break;
    }
    LOG_I("signal %d: draining (up to %gs)", sig, cfg.p.drain_timeout);
    cluster_leave();
    wrk_stop_all(ws, cfg.nworkers);
    cluster_stop();                 /* after the workers: they used its peers */
    probe_stop();
    if (cfg.ncerts > 0) {
        /* the workers have stopped: their counters can be read */
        unsigned long long hs = 0, res = 0, fail = 0;
        for (unsigned i = 0; i < cfg.nworkers; i++) {
            hs += ws[i].stats.tls_handshake;
            res += ws[i].stats.tls_resumed;
            fail += ws[i].stats.tls_handshake_fail;
        }
        LOG_I("tls: %llu handshakes (%llu resumed), %llu failed", hs, res, fail);
    }
    wrk_destroy_all(&ws, cfg.nworkers);
    pool_set_release(&bset);
    tls_server_fini();
    brjob_fini();                   /* its object references go before the store */
    if (st != NULL)
        store_close(&st);
    bans_fini();
    if (prog != NULL)
        vcl_program_release(&prog);
    config_free(&cfg);
    LOG_I("stopped");
    return 0;
}
