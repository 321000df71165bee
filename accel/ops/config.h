/*
 * config.h -- the daemon's configuration: command line and parameters.
 * Filled once by config_parse() on the main thread, read-only afterwards
 * (a global owned by main.c; see docs/architecture.md).
 */
#ifndef AC_CONFIG_H
#define AC_CONFIG_H

#include "ac.h"

#include <stdio.h>
#include <sys/socket.h>

/* Tunable parameters (-p name=value).  X(name, kind, default, help)
 * kind: DUR (seconds, "500ms", "2s", "1m"), UINT, SIZE ("64k", "1m"), REAL,
 * BOOL ("on"/"off", also true/false, yes/no, 1/0; stored as 1 or 0). */
#define CONFIG_PARAMS(X) \
    X(timeout_idle, DUR, 60, "idle keep-alive client connection timeout") \
    X(timeout_req_head, DUR, 10, "deadline to receive a whole request head") \
    X(min_body_rate, UINT, 1024, "bytes/s a client must sustain while sending a body (5 s windows)") \
    X(connect_timeout, DUR, 3, "origin connect timeout") \
    X(first_byte_timeout, DUR, 60, "origin time to the first response byte") \
    X(between_bytes_timeout, DUR, 60, "origin silence allowed between body bytes") \
    X(send_timeout, DUR, 60, "client not reading for this long is dropped") \
    X(max_connections, UINT, 10000, "client connections per worker") \
    X(max_head_bytes, SIZE, 32768, "request or response head size (431 / 502)") \
    X(max_header_line, SIZE, 8192, "one header field line (431)") \
    X(max_headers, UINT, 100, "number of header fields (431)") \
    X(max_target, SIZE, 8192, "request-target length (414)") \
    X(uri_strict, BOOL, 0, "on: only RFC 3986 characters in request-targets (400 for [ ] { } | ^ \\ \" raw UTF-8)") \
    X(drain_timeout, DUR, 10, "on SIGTERM, wait this long for requests in flight") \
    X(origin_idle_conns, UINT, 64, "idle origin connections kept per origin per worker") \
    X(origin_idle_timeout, DUR, 30, "idle origin connections are closed after this") \
    X(relay_buffer, SIZE, 65536, "bytes buffered per direction while relaying a body") \
    X(default_grace, DUR, 10, "grace when the origin sends no stale-while-revalidate") \
    X(default_keep, DUR, 3600, "objects with validators are kept this long past grace") \
    X(hfm_ttl, DUR, 120, "lifetime of a hit-for-miss marker") \
    X(heuristic_fraction, REAL, 0.1, "heuristic lifetime: this fraction of Date - Last-Modified") \
    X(heuristic_max, DUR, 86400, "cap of a heuristic lifetime") \
    X(max_object_size, SIZE, 134217728, "larger responses stream through and are not stored") \
    X(max_restarts, UINT, 4, "lookups a request may make (waiting on failed fetches)") \
    X(backend_fail_threshold, UINT, 3, "consecutive origin failures (connect, timeout, 502/503/504) that make a policy backend sick (0: never)") \
    X(backend_sick_time, DUR, 5, "how long such a backend stays sick before it is tried again") \
    X(backend_queue_timeout, DUR, 1, "wait for a backend's max_connections slot, then 503") \
    X(tls_handshake_timeout, DUR, 10, "deadline for a client's TLS handshake") \
    X(tls_ticket_rotate, DUR, 3600, "TLS session ticket keys are replaced this often") \
    X(gzip_level, UINT, 6, "gzip level (1-9) of bodies accel compresses; 0: accel never gzips") \
    X(brotli_level, UINT, 11, "quality (0-11) of the brotli bodies made in the background") \
    X(brotli_max_size, SIZE, 8388608, "larger objects get no brotli body (0: no brotli at all)") \
    X(compress_min_size, SIZE, 1024, "smaller responses (by Content-Length) are not compressed") \
    X(h2_max_concurrent_streams, UINT, 100, "HTTP/2 streams per connection (reset ones still working count)") \
    X(h2_max_header_list, SIZE, 32768, "HTTP/2 decoded request head, RFC 9113 counting (431)") \
    X(h2_header_table_size, SIZE, 4096, "HTTP/2 HPACK dynamic table, each direction") \
    X(h2_initial_window, SIZE, 65535, "HTTP/2 per-stream receive window: request body bytes held") \
    X(h2_conn_window, SIZE, 1048576, "HTTP/2 connection receive window") \
    X(h2_max_frame_size, SIZE, 16384, "HTTP/2 largest frame accepted (16k..16m)") \
    X(h2_max_continuations, UINT, 8, "HTTP/2 CONTINUATION frames after a HEADERS (CVE-2024-27316)") \
    X(h2_max_resets, UINT, 200, "HTTP/2 stream resets per 10 s, either side (CVE-2023-44487); 0: no limit") \
    X(h2_max_settings, UINT, 100, "HTTP/2 SETTINGS frames per 10 s; 0: no limit") \
    X(h2_max_pings, UINT, 100, "HTTP/2 PING frames per 10 s; 0: no limit") \
    X(h2_max_empty_frames, UINT, 200, "HTTP/2 empty DATA, PRIORITY, unknown frames per 10 s; 0: no limit") \
    X(h2_out_buffer, SIZE, 65536, "HTTP/2 frames buffered per connection before the socket") \
    X(cluster_local_ttl, DUR, 5, "cluster: a non-owner keeps a peer's object this long at most (capped by its ttl)") \
    X(cluster_purge_wait, DUR, 1, "cluster: a PURGE/BAN answer waits this long for the members to apply it") \
    X(cluster_peer_timeout, DUR, 2, "cluster: deadline for a peer's connect and first byte, then the origin") \
    X(cluster_heartbeat, DUR, 1, "cluster: heartbeat interval (a member is gone after 3 missed)") \
    X(cluster_retention, DUR, 86400, "cluster: invalidations kept for absent members at most this long")

enum config_kind { CONFIG_DUR, CONFIG_UINT, CONFIG_SIZE, CONFIG_REAL, CONFIG_BOOL };

struct config_params {
#define X(name, kind, def, help) double name;
    CONFIG_PARAMS(X)
#undef X
};

struct config_addr {
    char *spec;                         /* as given, for messages */
    struct sockaddr_storage ss;
    socklen_t len;
    bool tls;                           /* ",tls" listener; https:// origin (-b) */
    char *name;                         /* -b https://NAME: for SNI and the certificate check */
    bool admin;                         /* -T: the admin listener */
};

struct config {
    unsigned magic;
#define CONFIG_MAGIC 0x5c0f1a37
    struct config_addr *listen;
    unsigned nlisten;
    struct config_addr *backend;        /* -b, in order */
    char **backend_host;                /* host part of each -b, for messages */
    unsigned nbackend;
    unsigned nworkers;
    char *access_log;                   /* NULL: none, "-": stdout */
    char *error_log;                    /* -e FILE: NULL: stderr */
    char *pid_file;                     /* -P FILE: NULL: none */
    char *vcl_file;                     /* -f */
    char **storage;                     /* -s specs, as given */
    unsigned nstorage;
    bool compile_only;                  /* -C */
    bool debug;                         /* -d: debug logging */
    char *targeted_cc;                  /* -p targeted_cache_control=NAME (RFC 9213) */
    bool vcl_unknown_vmods_stub;        /* -p vcl_unknown_vmods=stub (migration mode) */
    bool no_http2;                      /* -p http2=off: no h2 by ALPN, no h2c preface */
    char *x_tool;                       /* -x builtin | explain */
    char *admin_secret;                 /* -S FILE: X-Admin-Secret the admin listener wants */
    int x_argc;                         /* arguments after the options, for -x */
    char **x_argv;
    size_t mem_limit;                   /* -s mem=SIZE */
    bool no_cache;                      /* -s none */
    char *disk_path;                    /* -s disk=PATH[,size=SIZE] */
    size_t disk_size;
    char **certs;                       /* -c cert.pem[,key.pem], in order (first: default) */
    unsigned ncerts;
    char *tls_ciphers;                  /* -p tls_ciphers=LIST (TLS 1.2; NULL: default) */
    char *tls_ciphersuites;             /* -p tls_ciphersuites=LIST (TLS 1.3; NULL: default) */
    char *origin_ca_file;               /* -p origin_ca_file=PEM for -b https:// (NULL: system store) */
    char *user;                         /* -u USER: drop privileges after start-up */
    char *cluster_bus;                  /* -p cluster_bus=redis://HOST:PORT[/DB] (NULL: alone) */
    char *cluster_name;                 /* -p cluster_name=NAME (Redis key namespace) */
    char *cluster_addr;                 /* -p cluster_addr=HOST:PORT peers reach us at */
    struct config_params p;
};

/*
 * Parse argv into cfg.  Returns 0 on success, 1 when usage was printed on
 * request (-h: exit 0), -1 on a bad argument with a message in err (exit 2).
 */
int config_parse(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
void config_usage(FILE *f);
void config_free(struct config *cfg);

/* Parse "host:port", "[v6]:port", ":port" or "port" into a socket address.
 * Host names are resolved with getaddrinfo (first result).  0 or -1 with err. */
int config_parse_addr(const char *spec, const char *default_host, struct config_addr *out,
                      char *err, size_t errlen);
/* "1.5", "500ms", "2s", "3m", "1h" → seconds; -1 on error. */
double config_parse_duration(const char *s);
/* "123", "64k", "10M", "1G" (also KB/MB/GB, KiB...) → bytes; -1 on error. */
double config_parse_size(const char *s);

#endif /* AC_CONFIG_H */
