/*
 * check.c -- accel -C: the start-up checks, without the start (check.h).
 * Start-up runs the same functions (policy_compile, pool_set_from_*,
 * the certificate loader), so a configuration -C accepts does not fail
 * to start for a reason -C could have seen; what -C cannot know is
 * whether the ports are free when accel starts.
 */
#include "check.h"

#include "conn.h"
#include "policy.h"
#include "pool.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int
check_policy_file(const struct config *cfg, char *err, size_t errlen)
{
    char why[128];

    if (cfg->vcl_file == NULL || ac_file_readable(cfg->vcl_file, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "-f %s: %s", cfg->vcl_file, why);
    return -1;
}

char *
check_builtin_policy_text(const struct config *cfg)
{
    struct ac_buf b;
    char host[64], *port;

    ac_buf_init(&b, 256, 0);
    ac_buf_catstr(&b, "vcl 4.1;\n# the built-in policy: no subs of its own, one backend per -b\n");
    if (cfg->nbackend == 0)
        ac_buf_catstr(&b, "backend default none;\n");
    for (unsigned i = 0; i < cfg->nbackend; i++) {
        const struct config_addr *a = &cfg->backend[i];
        /* the resolved address, "1.2.3.4:80" or "[::1]:80" */
        sock_ntop_port((const struct sockaddr *)&a->ss, host, sizeof(host));
        port = strrchr(host, ':');
        *port++ = '\0';
        if (host[0] == '[' && port - 2 > host && port[-2] == ']')
            port[-2] = '\0';           /* "[::1]" -> "::1" */
        if (i == 0)
            ac_buf_catstr(&b, "backend default");
        else
            ac_buf_printf(&b, "backend b%u", i + 1);
        ac_buf_printf(&b, " { .host = \"%s\"; .port = \"%s\";", host[0] == '[' ? host + 1 : host,
                      port);
        if (a->tls)
            ac_buf_printf(&b, " .ssl = true; .host_header = \"%s\";", a->name);
        ac_buf_catstr(&b, " }\n");
    }
    ac_buf_cat(&b, "", 1);
    AC_ASSERT(!ac_buf_error(&b));
    return b.p;                     /* the buffer is the caller's now */
}

/* Could accel append to path (creating it)?  Nothing is created here. */
static int
writable_file(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    if (access(dirname(dir), W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot be created: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* -s disk=PATH: a directory accel can write, or one it can create. */
static int
disk_dir_ok(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat st;

    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s", strerror(ENOTDIR));
            return -1;
        }
        if (access(path, W_OK | X_OK) != 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    if (access(dirname(dir), W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot be created: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The files and names accel uses after the policy: each problem printed. */
static unsigned
check_files(const struct config *cfg)
{
    static const struct {
        char flag;
        size_t off;
    } files[] = {
        { 'l', offsetof(struct config, access_log) },
        { 'e', offsetof(struct config, error_log) },
        { 'P', offsetof(struct config, pid_file) },
    };
    char err[512];
    unsigned bad = 0;

    for (size_t i = 0; i < AC_ARRAY_LEN(files); i++) {
        const char *path = *(char *const *)(const void *)((const char *)cfg + files[i].off);
        if (path == NULL || (files[i].flag == 'l' && strcmp(path, "-") == 0))
            continue;
        if (writable_file(path, err, sizeof(err)) != 0) {
            fprintf(stderr, "accel: -%c %s: %s\n", files[i].flag, path, err);
            bad++;
        }
    }
    if (cfg->disk_path != NULL && disk_dir_ok(cfg->disk_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "accel: -s disk=%s: %s\n", cfg->disk_path, err);
        bad++;
    }
    if (cfg->user != NULL && getpwnam(cfg->user) == NULL) {
        fprintf(stderr, "accel: -u %s: no such user\n", cfg->user);
        bad++;
    }
    if (tls_server_check(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "accel: %s\n", err);
        bad++;
    }
    return bad;
}

int
check_main(const struct config *cfg)
{
    struct vcl_program *p = NULL;
    struct pool_set *ps = NULL;
    char err[1024];
    unsigned bad = 0;

    if (cfg->nbackend == 0 && cfg->vcl_file == NULL) {
        fprintf(stderr, "accel: -C: no origin: give -b HOST:PORT or -f policy.vcl\n");
        return 2;
    }
    if (cfg->nbackend > 0 && cfg->vcl_file != NULL) {
        fprintf(stderr, "accel: -b and -f exclude each other: declare backends in the policy\n");
        return 2;
    }
    if (check_policy_file(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "accel: %s\n", err);
        bad++;
    } else if ((p = policy_compile(cfg, cfg->vcl_file, stderr)) == NULL) {
        bad++;
    } else if ((ps = pool_set_from_program(cfg, p, err, sizeof(err))) == NULL) {
        /* "site.vcl:3:13: error: backend web: cannot resolve host ..." */
        fprintf(stderr, "%s\n", err);
        bad++;
    }
    pool_set_release(&ps);
    if (cfg->vcl_file == NULL && (ps = pool_set_from_config(cfg, err, sizeof(err))) == NULL) {
        fprintf(stderr, "accel: %s\n", err);
        bad++;
    }
    pool_set_release(&ps);
    bad += check_files(cfg);
    if (bad == 0 && p != NULL) {
        char *dump = vcl_program_dump(p);
        if (dump != NULL)
            fputs(dump, stdout);
        free(dump);
    }
    if (p != NULL)
        vcl_program_release(&p);
    if (bad > 0)
        fprintf(stderr, "accel: -C: %u problem%s: accel would not start\n", bad, bad == 1 ? "" : "s");
    return bad > 0 ? 1 : 0;
}
