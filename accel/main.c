/*
 * main.c -- accel: parse the command line, open listeners, start the
 * workers, then wait for signals and admin requests: SIGTERM/SIGINT drain
 * and exit 0, SIGHUP (and POST /reload on the admin listener) reloads the
 * policy and the certificates, SIGUSR1 reopens the log files.
 */
#include "ac.h"
#include "bans.h"
#include "brjob.h"
#include "cache.h"
#include "check.h"
#include "cluster.h"
#include "config.h"
#include "h1.h"
#include "h2x.h"
#include "log.h"
#include "policy.h"
#include "pool.h"
#include "probe.h"
#include "reload.h"
#include "req.h"
#include "store.h"
#include "tls.h"
#include "wrk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/signalfd.h>
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
 * Signals.  Every signal whose default action would end the daemon by
 * surprise is either used or ignored: a logrotate postrotate `kill -USR1`
 * (the nginx convention) must never take the cache down.  Process-directed
 * ones are blocked in every thread and read by the main thread through a
 * signalfd (so they are logged); the ones the kernel sends to the thread
 * that caused them (SIGPIPE on a write to a closed socket, SIGXFSZ on a log
 * over the file size limit) are ignored, so the write just fails.
 *   SIGTERM, SIGINT   drain and exit 0
 *   SIGHUP            reload the policy and the certificates
 *   SIGUSR1           reopen the log files (-e, -l)
 *   others            logged and ignored (SIGUSR2, SIGALRM, SIGVTALRM,
 *                     SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, real-time signals)
 * SIGQUIT keeps its default (quit with a core dump: a debugging tool, never
 * sent by accident), as do the signals of faults (SIGSEGV, SIGBUS, ...).
 */
static void
signals_block(sigset_t *set)
{
    static const int waited[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM,
                                  SIGPROF, SIGIO, SIGPWR,
#ifdef SIGSTKFLT
                                  SIGSTKFLT,
#endif
    };

    sigemptyset(set);
    for (size_t i = 0; i < AC_ARRAY_LEN(waited); i++)
        sigaddset(set, waited[i]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        sigaddset(set, sig);
    /* Threads made from now on inherit the mask. */
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
}

/* -P FILE: the pid, under an flock that lasts as long as the process, so a
 * second accel with the same file refuses to start.  The fd, or -1. */
static int
pidfile_write(const char *path, char *err, size_t errlen)
{
    char buf[32] = "";
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ssize_t n;

    if (fd < 0) {
        snprintf(err, errlen, "-P %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        n = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(err, errlen, "-P %s: another accel is running with it (pid %s)", path,
                 buf[0] ? buf : "?");
        close(fd);
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        snprintf(err, errlen, "-P %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Is a (-T) address a loopback one? */
static bool
addr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr);
    return false;
}

/* What main's loop reloads with (reload_queue_serve()'s callback). */
struct reload_env {
    struct wrk *ws;
    struct vcl_program **progp;
};

static int
run_reload(void *arg, struct ac_buf *msg)
{
    struct reload_env *env = arg;

    int rc = reload_all(&cfg, env->ws, env->progp, msg);

    h2x_reload_all(env->ws, cfg.nworkers);  /* HTTP/2 connections: graceful GOAWAY */
    return rc;
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

/* The listening lines, the admin one named as such. */
static void
log_listeners(void)
{
    for (unsigned i = 0; i < cfg.nlisten; i++) {
        const struct config_addr *a = &cfg.listen[i];
        if (a->admin)
            LOG_I("admin listening on %s (purge, ban, stats, reload%s)", a->spec,
                  cfg.admin_secret ? "; X-Admin-Secret required" : "");
        else
            LOG_I("listening on %s (%s%u worker%s)", a->spec, a->tls ? "TLS, " : "",
                  cfg.nworkers, cfg.nworkers == 1 ? "" : "s");
    }
}

/*
 * Wait for signals and POST /reload requests until SIGTERM/SIGINT; returns
 * that signal.  sfd: the signalfd of the blocked set.
 */
static int
serve_signals(int sfd, struct wrk *ws, struct vcl_program **progp)
{
    struct reload_env env = { ws, progp };
    struct pollfd pfd[2] = { { sfd, POLLIN, 0 }, { reload_queue_fd(), POLLIN, 0 } };
    struct signalfd_siginfo si;
    struct ac_buf msg;

    ac_buf_init(&msg, 0, 0);
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno != EINTR)
                LOG_E("poll: %s", strerror(errno));
            continue;
        }
        if (pfd[1].revents & POLLIN)
            reload_queue_serve(run_reload, &env);
        if (!(pfd[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        switch ((int)si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            ac_buf_free(&msg);
            return (int)si.ssi_signo;
        case SIGHUP:
            LOG_I("SIGHUP: reload");
            (void)reload_all(&cfg, ws, progp, &msg);
            h2x_reload_all(ws, cfg.nworkers);
            break;
        case SIGUSR1:
            (void)log_reopen(cfg.error_log, cfg.access_log, ws[0].alog.fd);
            break;
        default:
            LOG_W("signal %u (%s) from pid %u ignored: SIGHUP reloads, SIGUSR1 reopens the logs, "
                  "SIGTERM stops", si.ssi_signo, strsignal((int)si.ssi_signo), si.ssi_pid);
            break;
        }
    }
}

int
main(int argc, char **argv)
{
    char err[1024];
    struct wrk *ws = NULL;
    sigset_t set;
    int sig, r, sfd = -1, pidfd = -1;

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
    /* From here on no signal ends accel by surprise, not even during a
     * long start-up (probes, a big disk tier). */
    signals_block(&set);
    if (cfg.debug)
        log_set_level(LOG_DEBUG);
    vcl_set_panic_hook(on_store_panic);
    if (cfg.x_tool != NULL && strcmp(cfg.x_tool, "builtin") == 0) {
        fputs(vcl_builtin_source(), stdout);
        config_free(&cfg);
        return 0;
    }
    if (cfg.x_tool != NULL) {
        r = check_policy_file(&cfg, err, sizeof(err)) != 0 ? 1 : 0;
        if (r != 0)
            fprintf(stderr, "accel: %s\n", err);
        else
            r = policy_main_explain(&cfg, cfg.x_argc, cfg.x_argv);
        config_free(&cfg);
        return r;
    }
    if (cfg.compile_only) {
        r = check_main(&cfg);
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
    for (unsigned i = 0; i < cfg.nlisten; i++)
        if (cfg.listen[i].admin && cfg.admin_secret == NULL &&
            !addr_is_loopback(&cfg.listen[i].ss))
            LOG_W("-T %s is not a loopback address and there is no -S secret: anyone who can "
                  "reach it may purge, ban and reload; give -S FILE or listen on 127.0.0.1",
                  cfg.listen[i].spec);
    struct vcl_program *prog = NULL;
    struct pool_set *bset = NULL;   /* -b origins (no policy) */
    if (cfg.vcl_file != NULL) {
        struct pool_set *ps;
        if (check_policy_file(&cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "accel: %s\n", err);
            config_free(&cfg);
            return 1;
        }
        prog = policy_compile(&cfg, cfg.vcl_file, stderr);
        if (prog == NULL) {
            fprintf(stderr, "accel: -f %s: the policy does not compile (errors above)\n",
                    cfg.vcl_file);
            config_free(&cfg);
            return 1;
        }
        if ((ps = pool_set_from_program(&cfg, prog, err, sizeof(err))) == NULL) {
            fprintf(stderr, "%s\n", err);
            vcl_program_release(&prog);
            config_free(&cfg);
            return 1;
        }
        pool_set_attach(ps, prog);
    } else if ((bset = pool_set_from_config(&cfg, err, sizeof(err))) == NULL) {
        fprintf(stderr, "accel: %s\n", err);
        config_free(&cfg);
        return 1;
    }

    cparams.default_grace = cfg.p.default_grace;
    cparams.default_keep = cfg.p.default_keep;
    cparams.hfm_ttl = cfg.p.hfm_ttl;
    cparams.heuristic_fraction = cfg.p.heuristic_fraction;
    cparams.heuristic_max = cfg.p.heuristic_max;
    cparams.max_object_size = cfg.p.max_object_size;
    cparams.targeted_cc = AC_SLICE(cfg.targeted_cc, strlen(cfg.targeted_cc));
    struct store *st = cfg.no_cache ? NULL : open_store();
    if (st == NULL && !cfg.no_cache) {
        pool_set_release(&bset);
        if (prog != NULL)
            vcl_program_release(&prog);
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
    err[0] = '\0';
    int wrc = wrk_create_all(&cfg, st, &cparams, &wrk_hooks, &ws, err, sizeof(err));
    for (unsigned i = 0; wrc == 0 && i < cfg.nworkers; i++)
        h2x_worker_init(&ws[i]);
    if (wrc != 0 ||
        (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 || reload_queue_init() != 0 ||
        (cfg.pid_file != NULL && (pidfd = pidfile_write(cfg.pid_file, err, sizeof(err))) < 0) ||
        (cfg.error_log != NULL && log_error_file_open(cfg.error_log, err, sizeof(err)) != 0) ||
        (cfg.user != NULL && drop_privileges(cfg.user, err, sizeof(err)) != 0)) {
        LOG_E("%s", err[0] ? err : strerror(errno));
        wrk_destroy_all(&ws, cfg.nworkers);
        cluster_stop();
        pool_set_release(&bset);
        if (prog != NULL)
            vcl_program_release(&prog);
        tls_server_fini();
        if (st != NULL)
            store_close(&st);
        if (sfd >= 0)
            close(sfd);
        reload_queue_fini();
        if (pidfd >= 0) {
            unlink(cfg.pid_file);
            close(pidfd);
        }
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
    log_listeners();
    sig = serve_signals(sfd, ws, &prog);
    LOG_I("signal %d (%s): draining (up to %gs)", sig, strsignal(sig), cfg.p.drain_timeout);
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
    reload_queue_fini();
    close(sfd);
    pool_set_release(&bset);
    tls_server_fini();
    brjob_fini();                   /* its object references go before the store */
    if (st != NULL)
        store_close(&st);
    bans_fini();
    if (prog != NULL)
        vcl_program_release(&prog);
    if (pidfd >= 0) {
        /* after -u the directory may not let us: the stale file is harmless
         * (the lock went with us) */
        (void)unlink(cfg.pid_file);
        close(pidfd);
    }
    config_free(&cfg);
    LOG_I("stopped");
    return 0;
}
