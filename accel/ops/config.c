/*
 * config.c -- command line parsing in the style of varnishd: -a, -b, -f, -s,
 * -C, -w, -l, -p name=value.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

double
config_parse_duration(const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || v < 0 || v != v)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "ms") == 0)
        return v / 1000.0;
    if (strcmp(end, "m") == 0)
        return v * 60;
    if (strcmp(end, "h") == 0)
        return v * 3600;
    if (strcmp(end, "d") == 0)
        return v * 86400;
    return -1;
}

double
config_parse_size(const char *s)
{
    char *end;
    double v, mul = 1;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || v < 0 || v != v)
        return -1;
    switch (tolower((unsigned char)*end)) {
    case '\0': return v;
    case 'k': mul = 1024.0; break;
    case 'm': mul = 1024.0 * 1024; break;
    case 'g': mul = 1024.0 * 1024 * 1024; break;
    case 't': mul = 1024.0 * 1024 * 1024 * 1024; break;
    case 'b': return end[1] == '\0' ? v : -1;
    default: return -1;
    }
    end++;
    if (*end == '\0' || strcasecmp(end, "b") == 0 || strcasecmp(end, "ib") == 0)
        return v * mul;
    return -1;
}

int
config_parse_addr(const char *spec, const char *default_host, struct config_addr *out,
                  char *err, size_t errlen)
{
    char host[256], port[32];
    const char *colon, *p = spec;
    struct addrinfo hints, *res = NULL;
    size_t hl;
    int r;

    memset(out, 0, sizeof(*out));
    if (p[0] == '[') {
        const char *rb = strchr(p, ']');
        if (rb == NULL)
            return fail(err, errlen, "missing ']' in IPv6 address");
        hl = (size_t)(rb - p - 1);
        if (hl >= sizeof(host))
            return fail(err, errlen, "address too long");
        memcpy(host, p + 1, hl);
        host[hl] = '\0';
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (rb[1] != '\0' && colon == NULL)
            return fail(err, errlen, "expected ':PORT' after ']'");
    } else {
        colon = strrchr(p, ':');
        if (colon == NULL) {
            /* a bare number is a port, anything else a host */
            bool digits = *p != '\0';
            for (const char *q = p; *q; q++)
                digits = digits && isdigit((unsigned char)*q);
            if (digits) {
                snprintf(host, sizeof(host), "%s", default_host);
                colon = p - 1;
            } else {
                hl = strlen(p);
                if (hl >= sizeof(host))
                    return fail(err, errlen, "host name too long");
                memcpy(host, p, hl + 1);
            }
        } else {
            hl = (size_t)(colon - p);
            if (hl >= sizeof(host))
                return fail(err, errlen, "host name too long");
            memcpy(host, p, hl);
            host[hl] = '\0';
            if (hl == 0)
                snprintf(host, sizeof(host), "%s", default_host);
        }
    }
    if (colon != NULL) {
        const char *ps = colon + 1;
        char *end;
        long v;
        errno = 0;
        v = strtol(ps, &end, 10);
        if (*ps == '\0' || *end != '\0' || errno || v < 0 || v > 65535)
            return fail(err, errlen, "invalid port '%s' (expected 0-65535)", ps);
        snprintf(port, sizeof(port), "%ld", v);
    } else {
        snprintf(port, sizeof(port), "80");
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (host[0] == '\0' || strcmp(host, "*") == 0 ? AI_PASSIVE : 0);
    r = getaddrinfo(host[0] == '\0' || strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
    if (r != 0 || res == NULL)
        return fail(err, errlen, "cannot resolve host '%s': %s", host,
                    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    out->spec = ac_xstrdup(spec);
    return 0;
}

/* config_parse_addr() for the argument of flag -X, the message naming
 * both: "-b nonsense: cannot resolve host 'nonsense': Name or service not
 * known". */
static int
addr_opt(char flag, const char *arg, const char *spec, const char *default_host,
         struct config_addr *a, char *err, size_t errlen)
{
    char e[384];

    if (config_parse_addr(spec, default_host, a, e, sizeof(e)) == 0)
        return 0;
    return fail(err, errlen, "-%c %s: %s", flag, arg, e);
}

/* A listen address must say its port: "-a 127.0.0.1" listening on :80 by
 * surprise helps nobody.  ADDR:PORT, [V6]:PORT, :PORT or a bare PORT. */
static bool
has_port(const char *spec)
{
    const char *rb = spec[0] == '[' ? strchr(spec, ']') : NULL, *colon;
    bool digits = *spec != '\0';

    if (spec[0] == '[')
        return rb != NULL && rb[1] == ':' && rb[2] != '\0';
    if ((colon = strrchr(spec, ':')) != NULL)
        return colon[1] != '\0';
    for (const char *q = spec; *q; q++)
        digits = digits && isdigit((unsigned char)*q);
    return digits;
}

static int
listen_opt(char flag, const char *arg, const char *spec, const char *default_host,
           struct config_addr *a, char *err, size_t errlen)
{
    if (!has_port(spec))
        return fail(err, errlen, "-%c %s: no port (expected ADDR:PORT, e.g. -%c %s:%s, or "
                    "-%c :PORT for every address)", flag, arg, flag,
                    spec[0] ? spec : "127.0.0.1", flag == 'T' ? "6082" : "8080", flag);
    return addr_opt(flag, arg, spec, default_host, a, err, errlen);
}

/* -b HOST:PORT, or https://HOST[:PORT][/] for an origin spoken to over TLS
 * (port 443 by default; HOST is the SNI name and must be in its
 * certificate). */
static int
parse_origin(const char *arg, struct config_addr *a, char *err, size_t errlen)
{
    char spec[300], name[256];
    const char *rest, *e, *pc;
    size_t n;

    if (strncasecmp(arg, "http://", 7) == 0)
        arg += 7;
    if (strncasecmp(arg, "https://", 8) != 0)
        return addr_opt('b', arg, arg, "127.0.0.1", a, err, errlen);
    rest = arg + 8;
    n = strcspn(rest, "/");
    if (n == 0 || n >= sizeof(name) || (rest[n] == '/' && rest[n + 1] != '\0'))
        return fail(err, errlen, "-b '%s': expected https://HOST[:PORT]", arg);
    memcpy(spec, rest, n);
    spec[n] = '\0';
    /* the port is after the last ':' unless that is inside [IPv6] */
    e = strrchr(spec, ']');
    pc = strrchr(e ? e : spec, ':');
    if (spec[0] == '[' && e == NULL)
        return fail(err, errlen, "-b '%s': missing ']'", arg);
    snprintf(name, sizeof(name), "%.*s", (int)(pc ? (size_t)(pc - spec) : n), spec);
    if (pc == NULL)
        snprintf(spec + n, sizeof(spec) - n, ":443");
    if (addr_opt('b', arg, spec, "127.0.0.1", a, err, errlen) != 0)
        return -1;
    if (name[0] == '[') {               /* [::1] -> ::1 for the certificate check */
        memmove(name, name + 1, strlen(name));
        name[strlen(name) - 1] = '\0';
    }
    free(a->spec);
    a->spec = ac_xstrdup(arg);
    a->tls = true;
    a->name = ac_xstrdup(name);
    return 0;
}

void
config_usage(FILE *f)
{
    fprintf(f,
        "usage: accel [options]\n"
        "  -a ADDR:PORT[,tls]  listen address (repeatable; default 127.0.0.1:8080;\n"
        "                      :PORT for every address; the port is required)\n"
        "  -b HOST[:PORT]      origin server (repeatable: round robin; port 80 by default);\n"
        "                      https://HOST[:PORT] for TLS to the origin\n"
        "  -f FILE             vcl-lite policy file (backends come from it; not with -b)\n"
        "  -s SPEC             storage: mem=SIZE (default 256m; also malloc,SIZE),\n"
        "                      disk=PATH[,size=SIZE], or none (no cache: a plain reverse proxy)\n"
        "  -C                  check everything start-up checks (policy, backends, CA files,\n"
        "                      certificates, log files), print the policy listing, exit 0/1\n"
        "  -x builtin          print the built-in policy\n"
        "  -x explain [-f FILE] 'GET /path' [-H 'Name: value']... [-R 'HTTP/1.1 200 OK'\n"
        "                      [-B 'Name: value']...]  run the policy (default: the built-in\n"
        "                      one) offline, print its decisions\n"
        "  -w N                worker threads (default: number of CPUs)\n"
        "  -l FILE             access log file ('-' for stdout; default: none)\n"
        "  -e FILE             error log file (default: stderr); SIGUSR1 reopens -e and -l\n"
        "  -P FILE             write the pid to FILE (locked while accel runs)\n"
        "  -p NAME=VALUE       set a parameter (repeatable), see below\n"
        "  -c CERT[,KEY]       TLS certificate chain and key, PEM (repeatable: SNI picks;\n"
        "                      the first is the default); needed by -a ADDR:PORT,tls\n"
        "  -u USER             drop privileges to USER once listeners and keys are open\n"
        "  -T ADDR:PORT        admin listener (purge, ban, bans, stats, reload; JSON),\n"
        "                      e.g. 127.0.0.1:6082\n"
        "  -S FILE             admin secret: clients send it in X-Admin-Secret\n"
        "  -d                  debug logging (also: why each bad request was refused)\n"
        "  -h                  this help\n"
        "signals: HUP reloads the policy and certificates, USR1 reopens the log files,\n"
        "  TERM/INT drain and stop\n"
        "parameters (durations: 1.5, 500ms, 2s, 1m; sizes: 64k, 1m):\n"
        "  %-22s %-8s %s\n", "targeted_cache_control", "Accel-Cache-Control",
        "RFC 9213 field for accel (empty: none)");
    fprintf(f, "  %-22s %-10s %s\n", "vcl_unknown_vmods", "error",
            "'stub': unknown vmod calls compile to neutral values, with warnings");
    fprintf(f, "  %-22s %-10s %s\n", "http2", "on",
            "'off': no HTTP/2 (ALPN offers http/1.1 only, no h2c preface)");
    fprintf(f, "  %-22s %-10s %s\n", "tls_ciphers", "(ECDHE+AEAD)",
            "TLS 1.2 cipher list (OpenSSL syntax)");
    fprintf(f, "  %-22s %-10s %s\n", "tls_ciphersuites", "(OpenSSL)",
            "TLS 1.3 cipher suites (OpenSSL syntax)");
    fprintf(f, "  %-22s %-10s %s\n", "origin_ca_file", "(system)",
            "CA file (PEM) trusted for -b https:// origins");
    fprintf(f, "  %-22s %-10s %s\n", "cluster_bus", "(alone)",
            "redis://HOST:PORT[/DB]: join the cluster coordinated through that Redis");
    fprintf(f, "  %-22s %-10s %s\n", "cluster_name", "accel", "namespace of the cluster's Redis keys");
    fprintf(f, "  %-22s %-10s %s\n", "cluster_addr", "(first -a)",
            "HOST:PORT other members reach this node at");
#define X(name, kind, def, help) \
    if (CONFIG_##kind == CONFIG_BOOL) \
        fprintf(f, "  %-22s %-10s %s\n", #name, (def) ? "on" : "off", help); \
    else \
        fprintf(f, "  %-22s %-10.10g %s\n", #name, (double)(def), help);
    CONFIG_PARAMS(X)
#undef X
}

/* on/off (and the usual synonyms) -> 1/0; -1 for anything else. */
static double
parse_bool(const char *s)
{
    static const char *const yes[] = { "on", "true", "yes", "1" }, *const no[] = { "off", "false",
                                                                               "no", "0" };

    for (size_t i = 0; i < AC_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

static int
set_param(struct config *cfg, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    size_t nl;
    double v;

    if (eq == NULL)
        return fail(err, errlen, "-p '%s': expected NAME=VALUE", arg);
    nl = (size_t)(eq - arg);
    if (nl == 17 && memcmp(arg, "vcl_unknown_vmods", 17) == 0) {
        if (strcmp(eq + 1, "stub") != 0 && strcmp(eq + 1, "error") != 0)
            return fail(err, errlen, "-p vcl_unknown_vmods: expected 'stub' or 'error'");
        cfg->vcl_unknown_vmods_stub = strcmp(eq + 1, "stub") == 0;
        return 0;
    }
    if (nl == 5 && memcmp(arg, "http2", 5) == 0) {
        if (strcmp(eq + 1, "on") != 0 && strcmp(eq + 1, "off") != 0)
            return fail(err, errlen, "-p http2: expected 'on' or 'off'");
        cfg->no_http2 = strcmp(eq + 1, "off") == 0;
        return 0;
    }
    if (nl == 11 && memcmp(arg, "tls_ciphers", 11) == 0) {
        free(cfg->tls_ciphers);
        cfg->tls_ciphers = ac_xstrdup(eq + 1);
        return 0;
    }
    if (nl == 14 && memcmp(arg, "origin_ca_file", 14) == 0) {
        free(cfg->origin_ca_file);
        cfg->origin_ca_file = ac_xstrdup(eq + 1);
        return 0;
    }
    if (nl == 16 && memcmp(arg, "tls_ciphersuites", 16) == 0) {
        free(cfg->tls_ciphersuites);
        cfg->tls_ciphersuites = ac_xstrdup(eq + 1);
        return 0;
    }
    if (nl > 8 && memcmp(arg, "cluster_", 8) == 0) {
        char **sp = nl == 11 && memcmp(arg, "cluster_bus", 11) == 0    ? &cfg->cluster_bus
                  : nl == 12 && memcmp(arg, "cluster_name", 12) == 0 ? &cfg->cluster_name
                  : nl == 12 && memcmp(arg, "cluster_addr", 12) == 0 ? &cfg->cluster_addr
                                                                     : NULL;
        if (sp != NULL) {
            free(*sp);
            *sp = ac_xstrdup(eq + 1);
            return 0;
        }
    }
    if (nl == 22 && memcmp(arg, "targeted_cache_control", 22) == 0) {
        free(cfg->targeted_cc);
        cfg->targeted_cc = ac_xstrdup(eq + 1);
        return 0;
    }
#define X(name, kind, def, help) \
    if (nl == sizeof(#name) - 1 && memcmp(arg, #name, nl) == 0) { \
        enum config_kind k = CONFIG_##kind; \
        v = k == CONFIG_DUR ? config_parse_duration(eq + 1) \
            : k == CONFIG_REAL ? strtod(eq + 1, NULL) \
            : k == CONFIG_BOOL ? parse_bool(eq + 1) : config_parse_size(eq + 1); \
        if (v < 0 || (k == CONFIG_UINT && v != (double)(unsigned long)v)) \
            return fail(err, errlen, "-p %s: invalid value '%s'", #name, eq + 1); \
        cfg->p.name = v; \
        return 0; \
    }
    CONFIG_PARAMS(X)
#undef X
    return fail(err, errlen, "-p: unknown parameter '%.*s' (accel -h lists them)", (int)nl, arg);
}

/* The ranges RFC 9113 §6.5.2 allows, and what makes sense for a server. */
static int
check_h2(const struct config *cfg, char *err, size_t errlen)
{
    const struct config_params *p = &cfg->p;

    if (p->h2_max_concurrent_streams < 1 || p->h2_max_concurrent_streams > 10000)
        return fail(err, errlen, "-p h2_max_concurrent_streams: must be 1..10000");
    if (p->h2_max_frame_size < 16384 || p->h2_max_frame_size > 16777215)
        return fail(err, errlen, "-p h2_max_frame_size: must be 16k..16m-1 (RFC 9113)");
    if (p->h2_initial_window < 1024 || p->h2_initial_window > 2147483647.0)
        return fail(err, errlen, "-p h2_initial_window: must be 1k..2g-1");
    if (p->h2_conn_window < 65535 || p->h2_conn_window > 2147483647.0)
        return fail(err, errlen, "-p h2_conn_window: must be 65535..2g-1");
    if (p->h2_max_header_list < 1024 || p->h2_max_header_list > 16777216)
        return fail(err, errlen, "-p h2_max_header_list: must be 1k..16m");
    if (p->h2_header_table_size > 65536)
        return fail(err, errlen, "-p h2_header_table_size: at most 64k");
    if (p->h2_out_buffer < 16384 || p->h2_out_buffer > 16777216)
        return fail(err, errlen, "-p h2_out_buffer: must be 16k..16m");
    return 0;
}

/* -s mem=SIZE | -s disk=PATH[,size=SIZE] (also varnishd's malloc,SIZE). */
static int
parse_storage(struct config *cfg, const char *arg, char *err, size_t errlen)
{
    double v;

    if (strcmp(arg, "none") == 0) {
        cfg->no_cache = true;       /* a plain reverse proxy: nothing is stored */
        return 0;
    }
    if (strncmp(arg, "mem=", 4) == 0 || strncmp(arg, "malloc,", 7) == 0) {
        v = config_parse_size(arg + (arg[0] == 'm' && arg[1] == 'e' ? 4 : 7));
        if (v < 1024 * 1024)
            return fail(err, errlen, "-s %s: expected a memory size of at least 1m", arg);
        cfg->mem_limit = (size_t)v;
        return 0;
    }
    if (strncmp(arg, "disk=", 5) == 0) {
        const char *path = arg + 5, *comma = strchr(path, ',');
        size_t pl = comma ? (size_t)(comma - path) : strlen(path);
        if (pl == 0)
            return fail(err, errlen, "-s %s: expected disk=PATH[,size=SIZE]", arg);
        free(cfg->disk_path);
        cfg->disk_path = ac_xstrndup(path, pl);
        cfg->disk_size = (size_t)1 << 30;
        if (comma != NULL) {
            if (strncmp(comma + 1, "size=", 5) != 0 ||
                (v = config_parse_size(comma + 6)) < 1024 * 1024)
                return fail(err, errlen, "-s %s: expected size=SIZE (at least 1m) after the path",
                            arg);
            cfg->disk_size = (size_t)v;
        }
        return 0;
    }
    return fail(err, errlen, "-s %s: expected mem=SIZE or disk=PATH[,size=SIZE]", arg);
}

static void
add_addr(struct config_addr **arr, unsigned *n, const struct config_addr *a)
{
    *arr = ac_xrealloc(*arr, sizeof(**arr) * (*n + 1));
    (*arr)[(*n)++] = *a;
}

int
config_parse(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct config_addr a;
    long ncpu;
    int c;

    memset(cfg, 0, sizeof(*cfg));
    cfg->magic = CONFIG_MAGIC;
#define X(name, kind, def, help) cfg->p.name = (def);
    CONFIG_PARAMS(X)
#undef X
    optind = 1;
    opterr = 0;
    while ((c = getopt(argc, argv, "+:a:b:c:e:f:s:Cw:l:p:dhx:T:S:u:P:")) != -1) {
        switch (c) {
        case 'a': {
            char spec[512];
            const char *comma = strchr(optarg, ',');
            size_t l = comma ? (size_t)(comma - optarg) : strlen(optarg);
            bool tls = false;
            if (l >= sizeof(spec))
                return fail(err, errlen, "-a '%s': too long", optarg);
            memcpy(spec, optarg, l);
            spec[l] = '\0';
            if (comma != NULL) {
                if (strcmp(comma + 1, "tls") == 0 || strcmp(comma + 1, "https") == 0)
                    tls = true;
                else
                    return fail(err, errlen, "-a '%s': unknown option '%s'", optarg, comma + 1);
            }
            if (listen_opt('a', optarg, spec, "", &a, err, errlen) != 0)
                return -1;
            a.tls = tls;
            add_addr(&cfg->listen, &cfg->nlisten, &a);
            break;
        }
        case 'b':
            if (parse_origin(optarg, &a, err, errlen) != 0)
                return -1;
            add_addr(&cfg->backend, &cfg->nbackend, &a);
            break;
        case 'c':
            if (optarg[0] == '\0' || optarg[0] == ',')
                return fail(err, errlen, "-c '%s': expected CERT.pem[,KEY.pem]", optarg);
            cfg->certs = ac_xrealloc(cfg->certs, sizeof(char *) * (cfg->ncerts + 1));
            cfg->certs[cfg->ncerts++] = ac_xstrdup(optarg);
            break;
        case 'u':
            free(cfg->user);
            cfg->user = ac_xstrdup(optarg);
            break;
        case 'f':
            free(cfg->vcl_file);
            cfg->vcl_file = ac_xstrdup(optarg);
            break;
        case 's':
            cfg->storage = ac_xrealloc(cfg->storage, sizeof(char *) * (cfg->nstorage + 1));
            cfg->storage[cfg->nstorage++] = ac_xstrdup(optarg);
            if (parse_storage(cfg, optarg, err, errlen) != 0)
                return -1;
            break;
        case 'C':
            cfg->compile_only = true;
            break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 256)
                return fail(err, errlen, "-w '%s': expected a number of workers 1..256", optarg);
            cfg->nworkers = (unsigned)v;
            break;
        }
        case 'l':
            free(cfg->access_log);
            cfg->access_log = ac_xstrdup(optarg);
            break;
        case 'e':
            free(cfg->error_log);
            cfg->error_log = ac_xstrdup(optarg);
            break;
        case 'P':
            free(cfg->pid_file);
            cfg->pid_file = ac_xstrdup(optarg);
            break;
        case 'p':
            if (set_param(cfg, optarg, err, errlen) != 0)
                return -1;
            break;
        case 'd':
            cfg->debug = true;
            break;
        case 'h':
            config_usage(stdout);
            return 1;
        case 'T':
            if (listen_opt('T', optarg, optarg, "127.0.0.1", &a, err, errlen) != 0)
                return -1;
            a.admin = true;
            add_addr(&cfg->listen, &cfg->nlisten, &a);
            break;
        case 'S': {
            char buf[256];
            FILE *f;
            size_t n;
            if (ac_file_readable(optarg, buf, sizeof(buf)) != 0)
                return fail(err, errlen, "-S %s: %s", optarg, buf);
            if ((f = fopen(optarg, "r")) == NULL)
                return fail(err, errlen, "-S %s: %s", optarg, strerror(errno));
            n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                n--;
            if (n == 0)
                return fail(err, errlen, "-S %s: the secret file is empty", optarg);
            free(cfg->admin_secret);
            cfg->admin_secret = ac_xstrndup(buf, n);
            break;
        }
        case 'x':
            if (strcmp(optarg, "builtin") != 0 && strcmp(optarg, "explain") != 0)
                return fail(err, errlen, "-x %s: expected 'builtin' or 'explain'", optarg);
            free(cfg->x_tool);
            cfg->x_tool = ac_xstrdup(optarg);
            break;
        case ':':
            return fail(err, errlen, "option -%c needs an argument", optopt);
        default:
            return fail(err, errlen, "unknown option -%c (accel -h for help)", optopt);
        }
    }
    if (cfg->x_tool != NULL) {
        cfg->x_argc = argc - optind;
        cfg->x_argv = argv + optind;
    } else if (optind < argc) {
        return fail(err, errlen, "unexpected argument '%s'", argv[optind]);
    }
    if (cfg->targeted_cc == NULL)
        cfg->targeted_cc = ac_xstrdup("Accel-Cache-Control");
    if (cfg->mem_limit == 0)
        cfg->mem_limit = (size_t)256 << 20;
    bool client_listener = false;
    for (unsigned i = 0; i < cfg->nlisten; i++)
        client_listener = client_listener || !cfg->listen[i].admin;
    if (!client_listener) {
        if (config_parse_addr("127.0.0.1:8080", "", &a, err, errlen) != 0)
            return -1;
        add_addr(&cfg->listen, &cfg->nlisten, &a);
    }
    if (cfg->nworkers == 0) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->nworkers = ncpu > 0 ? (unsigned)AC_MIN(ncpu, 64) : 1;
    }
    if (cfg->p.max_headers < 1 || cfg->p.max_headers > 10000)
        return fail(err, errlen, "-p max_headers: must be 1..10000");
    if (cfg->p.max_head_bytes < 256)
        return fail(err, errlen, "-p max_head_bytes: must be at least 256");
    if (cfg->p.relay_buffer < 4096)
        return fail(err, errlen, "-p relay_buffer: must be at least 4k");
    for (unsigned i = 0; i < cfg->nlisten; i++)
        if (cfg->listen[i].tls && cfg->ncerts == 0)
            return fail(err, errlen, "-a %s,tls: needs a certificate (-c cert.pem,key.pem)",
                        cfg->listen[i].spec);
    if (cfg->p.tls_ticket_rotate < 1)
        return fail(err, errlen, "-p tls_ticket_rotate: must be at least 1s");
    return check_h2(cfg, err, errlen);
}

void
config_free(struct config *cfg)
{
    for (unsigned i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i].spec);
    for (unsigned i = 0; i < cfg->nbackend; i++) {
        free(cfg->backend[i].spec);
        free(cfg->backend[i].name);
    }
    free(cfg->origin_ca_file);
    free(cfg->cluster_bus);
    free(cfg->cluster_name);
    free(cfg->cluster_addr);
    for (unsigned i = 0; i < cfg->nstorage; i++)
        free(cfg->storage[i]);
    free(cfg->listen);
    free(cfg->backend);
    free(cfg->backend_host);
    free(cfg->storage);
    free(cfg->vcl_file);
    free(cfg->access_log);
    free(cfg->error_log);
    free(cfg->pid_file);
    free(cfg->targeted_cc);
    free(cfg->disk_path);
    free(cfg->x_tool);
    free(cfg->admin_secret);
    for (unsigned i = 0; i < cfg->ncerts; i++)
        free(cfg->certs[i]);
    free(cfg->certs);
    free(cfg->tls_ciphers);
    free(cfg->tls_ciphersuites);
    free(cfg->user);
    memset(cfg, 0, sizeof(*cfg));
}
