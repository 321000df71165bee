/*
 * main.c -- accel: parse the command line, open listeners, start the
 * workers, then wait for signals: SIGTERM/SIGINT drain and exit 0.
 */
#include "ac.h"
#include "cache.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "store.h"
#include "wrk.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static struct config cfg;       /* read-only once workers start (architecture.md) */
static struct cache_params cparams; /* idem */

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
    if (cfg.compile_only) {
        fprintf(stderr, "accel: -C: the policy language is not built yet (issue 5)\n");
        config_free(&cfg);
        return 2;
    }
    if (cfg.nbackend == 0 && cfg.vcl_file == NULL) {
        fprintf(stderr, "accel: no origin: give -b HOST:PORT (or -f policy.vcl)\n");
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
    struct store *st = open_store();
    if (st == NULL) {
        config_free(&cfg);
        return 1;
    }
    pool_backends_init(&cfg);
    if (wrk_create_all(&cfg, st, &cparams, &ws, err, sizeof(err)) != 0) {
        LOG_E("%s", err);
        wrk_destroy_all(&ws, cfg.nworkers);
        pool_backends_fini();
        store_close(&st);
        config_free(&cfg);
        return 1;
    }
    if (wrk_start_all(ws, cfg.nworkers) != 0)
        return 1;
    for (unsigned i = 0; i < cfg.nlisten; i++)
        LOG_I("listening on %s (%u workers)", cfg.listen[i].spec, cfg.nworkers);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            LOG_I("SIGHUP: nothing to reload yet");
            continue;
        }
        break;
    }
    LOG_I("signal %d: draining (up to %gs)", sig, cfg.p.drain_timeout);
    wrk_stop_all(ws, cfg.nworkers);
    wrk_destroy_all(&ws, cfg.nworkers);
    pool_backends_fini();
    store_close(&st);
    config_free(&cfg);
    LOG_I("stopped");
    return 0;
}
