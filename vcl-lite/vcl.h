/*
 * vcl.h -- vcl-lite, the accel policy language: the ONE public header.
 *
 * vcl-lite reads like VCL 4.x.  A policy is compiled once, at load time,
 * into an immutable, reference-counted program (struct vcl_program); the
 * daemon then runs one sub at a time against a per-request context whose
 * host-ops table gives the VM access to the request, the response and the
 * cache (struct vcl_ctx, struct vcl_host_ops).  The library does no I/O at
 * run time: files are read only while compiling (the policy, its includes
 * and constant std.fileread() paths).
 *
 * Life cycle, in the daemon:
 *
 *     struct vcl_options opt;
 *     struct vcl_program *prog = NULL;
 *     struct vcl_diags *diags = NULL;
 *     vcl_options_init(&opt);
 *     if (vcl_compile_file("site.vcl", &opt, &prog, &diags) != 0)
 *         print vcl_diags_text(diags) and keep the old program;
 *     vcl_diags_free(&diags);
 *     ... read vcl_program_backend(prog, i), _probe(), _director() ...
 *     run VCL_SUB_INIT once (action fail: refuse the program); run
 *     VCL_SUB_FINI when discarding it.  Without -f, compile the string
 *     "vcl 4.1; backend default { .host = \"H\"; .port = \"P\"; }" to get
 *     the built-in policy with one backend, as varnishd -b does.
 *
 *     per request (one arena, one ctx):
 *     struct vcl_arena ws = { buf, sizeof buf, 0 };
 *     struct vcl_ctx ctx;
 *     struct vcl_result res;
 *     vcl_ctx_init(&ctx, &host_ops, req, &ws);
 *     rc = vcl_run(prog, VCL_SUB_RECV, &ctx, &res);     res.action == VCL_ACT_HASH ...
 *
 *     vcl_program_release(&prog);    when no request uses it any more
 *
 * Threads: a program is immutable after compile and may be run by any number
 * of threads at once; each running request needs its own ctx and arena.
 * vcl_program_ref()/vcl_program_release() are atomic.
 *
 * Errors: every function returning int returns 0 or a negative VCL_E* code;
 * vcl_strerror() names it.
 */
#ifndef VCL_H
#define VCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- codes */

#define VCL_OK        0
#define VCL_EINVAL   (-1)  /* bad argument from the caller */
#define VCL_ECOMPILE (-2)  /* the policy has errors: see the diagnostics */
#define VCL_ENOMEM   (-3)  /* heap allocation failed while compiling */
#define VCL_EIO      (-4)  /* a policy file could not be read */
#define VCL_ENOSPC   (-5)  /* run time: the request arena is full */
#define VCL_EHOST    (-6)  /* run time: a host op returned an error */
#define VCL_ERUNTIME (-7)  /* run time: other failure (regex limit, nesting...) */

/* Static text for a VCL_E* code (or "unknown error"). */
const char *vcl_strerror(int code);

/* A borrowed byte range; never NUL-terminated.  Whoever hands one out says
 * how long it stays valid.  p == NULL means "not set" (an absent header),
 * which differs from "" (an empty one), as in VCL. */
struct vcl_str {
    const char *p;
    size_t len;
};
#define VCL_LIT(s) ((struct vcl_str){ (s), sizeof(s) - 1 })

/* -------------------------------------------------------- subs, actions */

/* The built-in subs, in Varnish's request state machine order.
 * X(ID, "name") */
#define VCL_SUBS(X)                                                                              \
    X(RECV, "vcl_recv")                                                                          \
    X(PIPE, "vcl_pipe")                                                                          \
    X(PASS, "vcl_pass")                                                                          \
    X(HASH, "vcl_hash")                                                                          \
    X(PURGE, "vcl_purge")                                                                        \
    X(HIT, "vcl_hit")                                                                            \
    X(MISS, "vcl_miss")                                                                          \
    X(DELIVER, "vcl_deliver")                                                                    \
    X(SYNTH, "vcl_synth")                                                                        \
    X(BACKEND_FETCH, "vcl_backend_fetch")                                                        \
    X(BACKEND_RESPONSE, "vcl_backend_response")                                                  \
    X(BACKEND_ERROR, "vcl_backend_error")                                                        \
    X(INIT, "vcl_init")                                                                          \
    X(FINI, "vcl_fini")

enum vcl_sub {
#define VCL_X_SUB(id, name) VCL_SUB_##id,
    VCL_SUBS(VCL_X_SUB)
#undef VCL_X_SUB
    VCL_SUB__MAX
};

/* Masks of subs, used by the variable table below (who may read/write). */
#define VCL_M(id) (1u << VCL_SUB_##id)
#define VCL_M_CLIENT                                                                             \
    (VCL_M(RECV) | VCL_M(PIPE) | VCL_M(PASS) | VCL_M(HASH) | VCL_M(PURGE) | VCL_M(HIT) |          \
     VCL_M(MISS) | VCL_M(DELIVER) | VCL_M(SYNTH))
#define VCL_M_BACKEND (VCL_M(BACKEND_FETCH) | VCL_M(BACKEND_RESPONSE) | VCL_M(BACKEND_ERROR))
#define VCL_M_BERESP (VCL_M(BACKEND_RESPONSE) | VCL_M(BACKEND_ERROR))
#define VCL_M_BEREQ (VCL_M(PIPE) | VCL_M_BACKEND)
#define VCL_M_RESP (VCL_M(DELIVER) | VCL_M(SYNTH))
#define VCL_M_OBJ (VCL_M(HIT))
#define VCL_M_OBJD (VCL_M(HIT) | VCL_M(DELIVER))
#define VCL_M_TASK (VCL_M_CLIENT | VCL_M_BACKEND)
#define VCL_M_ALL (VCL_M_TASK | VCL_M(INIT) | VCL_M(FINI))

/* Return actions.  X(ID, "name") */
#define VCL_ACTIONS(X)                                                                           \
    X(NONE, "none")     /* internal: never returned by vcl_run */                               \
    X(HASH, "hash")                                                                              \
    X(PASS, "pass")     /* in vcl_backend_response: pass(duration), see vcl_result */           \
    X(PIPE, "pipe")                                                                              \
    X(PURGE, "purge")                                                                            \
    X(SYNTH, "synth")   /* status + reason in vcl_result */                                     \
    X(RESTART, "restart")                                                                        \
    X(LOOKUP, "lookup")                                                                          \
    X(DELIVER, "deliver")                                                                        \
    X(FETCH, "fetch")                                                                            \
    X(MISS, "miss")                                                                              \
    X(ABANDON, "abandon")                                                                        \
    X(RETRY, "retry")                                                                            \
    X(OK, "ok")                                                                                  \
    X(FAIL, "fail")     /* also the result of a run-time error: answer 503 */

enum vcl_action {
#define VCL_X_ACT(id, name) VCL_ACT_##id,
    VCL_ACTIONS(VCL_X_ACT)
#undef VCL_X_ACT
    VCL_ACT__MAX
};

/* ---------------------------------------------------------------- types */

#define VCL_TYPES(X)                                                                             \
    X(VOID, "VOID")                                                                              \
    X(STRING, "STRING")                                                                          \
    X(BOOL, "BOOL")                                                                              \
    X(INT, "INT")                                                                                \
    X(REAL, "REAL")                                                                              \
    X(DURATION, "DURATION") /* seconds, in u.d */                                               \
    X(BYTES, "BYTES")       /* in u.i */                                                        \
    X(IP, "IP")                                                                                  \
    X(TIME, "TIME")         /* seconds since the epoch, in u.d */                               \
    X(BACKEND, "BACKEND")                                                                        \
    X(ACL, "ACL")           /* compile-time only */                                             \
    X(HEADER, "HEADER")     /* compile-time only: a header reference */                         \
    X(REGEX, "REGEX")       /* compile-time only */                                             \
    X(STUB, "STUB")         /* compile-time only: an unknown vmod call in migration mode */

enum vcl_type {
#define VCL_X_TYPE(id, name) VCL_T_##id,
    VCL_TYPES(VCL_X_TYPE)
#undef VCL_X_TYPE
    VCL_T__MAX
};

/* An address: family 4 (addr[0..3]) or 6 (addr[0..15]); family 0 = none. */
struct vcl_ip {
    uint8_t family;
    uint8_t addr[16];
    uint16_t port;
};

/* A backend-valued expression: a backend declared in the policy, or a
 * director made in vcl_init.  idx indexes vcl_program_backend() or
 * vcl_program_director().  VCL_REF_NONE is `backend x none;` or unset. */
enum vcl_ref_kind { VCL_REF_NONE, VCL_REF_BACKEND, VCL_REF_DIRECTOR };
struct vcl_ref {
    enum vcl_ref_kind kind;
    unsigned idx;
};

/* A typed value crossing the host-ops boundary. */
struct vcl_value {
    enum vcl_type type;
    union {
        struct vcl_str s; /* STRING */
        bool b;           /* BOOL */
        int64_t i;        /* INT, BYTES */
        double d;         /* REAL, DURATION (seconds), TIME (epoch seconds) */
        struct vcl_ip ip; /* IP */
        struct vcl_ref ref; /* BACKEND */
    } u;
};

/* ------------------------------------------------------------ variables */

/* Every scalar variable the language knows, with its type, the subs that may
 * read it and the subs that may write it.  The VM asks the host for them by
 * enum vcl_var id (VCL_VAR_REQ_URL ...), never by name.  Headers
 * (req.http.X ...) are not here: they go through the header ops.
 * X(ID, "name", TYPE, read mask, write mask) */
#define VCL_VARIABLES(X)                                                                         \
    X(REQ_METHOD, "req.method", STRING, VCL_M_CLIENT, VCL_M_CLIENT)                              \
    X(REQ_URL, "req.url", STRING, VCL_M_CLIENT, VCL_M_CLIENT)                                    \
    X(REQ_PROTO, "req.proto", STRING, VCL_M_CLIENT, VCL_M_CLIENT)                                \
    X(REQ_BACKEND_HINT, "req.backend_hint", BACKEND, VCL_M_CLIENT, VCL_M_CLIENT)                 \
    X(REQ_RESTARTS, "req.restarts", INT, VCL_M_CLIENT, 0)                                        \
    X(REQ_HASH_ALWAYS_MISS, "req.hash_always_miss", BOOL, VCL_M_CLIENT, VCL_M(RECV))             \
    X(REQ_HASH_IGNORE_BUSY, "req.hash_ignore_busy", BOOL, VCL_M_CLIENT, VCL_M(RECV))             \
    X(REQ_TTL, "req.ttl", DURATION, VCL_M_CLIENT, VCL_M_CLIENT)                                  \
    X(REQ_GRACE, "req.grace", DURATION, VCL_M_CLIENT, VCL_M_CLIENT)                              \
    X(REQ_XID, "req.xid", STRING, VCL_M_CLIENT, 0)                                               \
    X(REQ_ESI_LEVEL, "req.esi_level", INT, VCL_M_CLIENT, 0)                                      \
    X(REQ_CAN_GZIP, "req.can_gzip", BOOL, VCL_M_CLIENT, 0)                                       \
    X(REQ_IS_HITMISS, "req.is_hitmiss", BOOL, VCL_M_CLIENT, 0)                                   \
    X(REQ_IS_HITPASS, "req.is_hitpass", BOOL, VCL_M_CLIENT, 0)                                   \
    X(BEREQ_METHOD, "bereq.method", STRING, VCL_M_BEREQ, VCL_M_BEREQ)                            \
    X(BEREQ_URL, "bereq.url", STRING, VCL_M_BEREQ, VCL_M_BEREQ)                                  \
    X(BEREQ_PROTO, "bereq.proto", STRING, VCL_M_BEREQ, VCL_M_BEREQ)                              \
    X(BEREQ_BACKEND, "bereq.backend", BACKEND, VCL_M_BEREQ, VCL_M_BEREQ)                         \
    X(BEREQ_RETRIES, "bereq.retries", INT, VCL_M_BACKEND, 0)                                     \
    X(BEREQ_XID, "bereq.xid", STRING, VCL_M_BACKEND, 0)                                          \
    X(BEREQ_IS_BGFETCH, "bereq.is_bgfetch", BOOL, VCL_M_BACKEND, 0)                              \
    X(BEREQ_UNCACHEABLE, "bereq.uncacheable", BOOL, VCL_M_BACKEND, 0)                            \
    X(BEREQ_CONNECT_TIMEOUT, "bereq.connect_timeout", DURATION, VCL_M_BEREQ, VCL_M_BEREQ)        \
    X(BEREQ_FIRST_BYTE_TIMEOUT, "bereq.first_byte_timeout", DURATION, VCL_M_BEREQ, VCL_M_BEREQ)  \
    X(BEREQ_BETWEEN_BYTES_TIMEOUT, "bereq.between_bytes_timeout", DURATION, VCL_M_BEREQ,         \
      VCL_M_BEREQ)                                                                               \
    X(BERESP_STATUS, "beresp.status", INT, VCL_M_BERESP, VCL_M_BERESP)                           \
    X(BERESP_REASON, "beresp.reason", STRING, VCL_M_BERESP, VCL_M_BERESP)                        \
    X(BERESP_PROTO, "beresp.proto", STRING, VCL_M_BERESP, VCL_M_BERESP)                          \
    X(BERESP_TTL, "beresp.ttl", DURATION, VCL_M_BERESP, VCL_M_BERESP)                            \
    X(BERESP_GRACE, "beresp.grace", DURATION, VCL_M_BERESP, VCL_M_BERESP)                        \
    X(BERESP_KEEP, "beresp.keep", DURATION, VCL_M_BERESP, VCL_M_BERESP)                          \
    X(BERESP_AGE, "beresp.age", DURATION, VCL_M_BERESP, 0)                                       \
    X(BERESP_UNCACHEABLE, "beresp.uncacheable", BOOL, VCL_M_BERESP, VCL_M_BERESP)                \
    X(BERESP_DO_GZIP, "beresp.do_gzip", BOOL, VCL_M_BERESP, VCL_M_BERESP)                        \
    X(BERESP_DO_GUNZIP, "beresp.do_gunzip", BOOL, VCL_M_BERESP, VCL_M_BERESP)                    \
    X(BERESP_DO_BROTLI, "beresp.do_brotli", BOOL, VCL_M_BERESP, VCL_M_BERESP)                    \
    X(BERESP_DO_STREAM, "beresp.do_stream", BOOL, VCL_M_BERESP, VCL_M_BERESP)                    \
    X(BERESP_BACKEND_NAME, "beresp.backend.name", STRING, VCL_M_BERESP, 0)                       \
    X(BERESP_WAS_304, "beresp.was_304", BOOL, VCL_M_BERESP, 0)                                   \
    X(BERESP_STORAGE_HINT, "beresp.storage_hint", STRING, VCL_M_BERESP, VCL_M_BERESP)            \
    X(BERESP_BODY, "beresp.body", STRING, 0, VCL_M(BACKEND_ERROR))                               \
    X(OBJ_STATUS, "obj.status", INT, VCL_M_OBJ, 0)                                               \
    X(OBJ_REASON, "obj.reason", STRING, VCL_M_OBJ, 0)                                            \
    X(OBJ_PROTO, "obj.proto", STRING, VCL_M_OBJ, 0)                                              \
    X(OBJ_HITS, "obj.hits", INT, VCL_M_OBJD, 0)                                                  \
    X(OBJ_TTL, "obj.ttl", DURATION, VCL_M_OBJ, 0)                                                \
    X(OBJ_GRACE, "obj.grace", DURATION, VCL_M_OBJ, 0)                                            \
    X(OBJ_KEEP, "obj.keep", DURATION, VCL_M_OBJ, 0)                                              \
    X(OBJ_AGE, "obj.age", DURATION, VCL_M_OBJD, 0)                                               \
    X(OBJ_UNCACHEABLE, "obj.uncacheable", BOOL, VCL_M_OBJD, 0)                                   \
    X(RESP_STATUS, "resp.status", INT, VCL_M_RESP, VCL_M_RESP)                                   \
    X(RESP_REASON, "resp.reason", STRING, VCL_M_RESP, VCL_M_RESP)                                \
    X(RESP_PROTO, "resp.proto", STRING, VCL_M_RESP, VCL_M_RESP)                                  \
    X(RESP_BODY, "resp.body", STRING, 0, VCL_M(SYNTH))                                           \
    X(CLIENT_IP, "client.ip", IP, VCL_M_TASK, 0)                                                 \
    X(CLIENT_IDENTITY, "client.identity", STRING, VCL_M_TASK, VCL_M_CLIENT)                      \
    X(SERVER_IP, "server.ip", IP, VCL_M_TASK, 0)                                                 \
    X(SERVER_HOSTNAME, "server.hostname", STRING, VCL_M_ALL, 0)                                  \
    X(SERVER_IDENTITY, "server.identity", STRING, VCL_M_ALL, 0)                                  \
    X(LOCAL_IP, "local.ip", IP, VCL_M_TASK, 0)                                                   \
    X(REMOTE_IP, "remote.ip", IP, VCL_M_TASK, 0)                                                 \
    X(NOW, "now", TIME, VCL_M_ALL, 0)

enum vcl_var {
#define VCL_X_VAR(id, name, type, rd, wr) VCL_VAR_##id,
    VCL_VARIABLES(VCL_X_VAR)
#undef VCL_X_VAR
    VCL_VAR__MAX
};

/* The header sets: req.http.*, bereq.http.*, beresp.http.*, resp.http.*,
 * obj.http.* (read-only).  X(ID, "prefix", read mask, write mask) */
#define VCL_WHERES(X)                                                                            \
    X(REQ, "req", VCL_M_CLIENT, VCL_M_CLIENT)                                                    \
    X(BEREQ, "bereq", VCL_M_BEREQ, VCL_M_BEREQ)                                                  \
    X(BERESP, "beresp", VCL_M_BERESP, VCL_M_BERESP)                                              \
    X(RESP, "resp", VCL_M_RESP, VCL_M_RESP)                                                      \
    X(OBJ, "obj", VCL_M_OBJ, 0)

enum vcl_where {
#define VCL_X_WHERE(id, name, rd, wr) VCL_WHERE_##id,
    VCL_WHERES(VCL_X_WHERE)
#undef VCL_X_WHERE
    VCL_WHERE__MAX
};

/* Names of the enums above (static strings; "?" when out of range). */
const char *vcl_sub_name(enum vcl_sub sub);
const char *vcl_action_name(enum vcl_action act);
const char *vcl_type_name(enum vcl_type type);
const char *vcl_var_name(enum vcl_var var);
enum vcl_type vcl_var_type(enum vcl_var var);
const char *vcl_where_name(enum vcl_where where);

/* ------------------------------------------------------------ compiling */

/* Reads one policy file for the compiler (an include or the main file).
 * On success store a malloc()ed buffer in *text (the library free()s it) and
 * its length in *len, and return 0; return a negative VCL_E* code (usually
 * VCL_EIO) otherwise.  path is already resolved relative to the including
 * file's directory. */
typedef int vcl_reader_f(void *priv, const char *path, char **text, size_t *len);

struct vcl_options {
    /* Migration mode (`-p vcl_unknown_vmods=stub`): an import of a vmod
     * accel does not provide is accepted, and each call of it compiles to
     * a neutral value ("", 0, false, no-op) with a warning at its call site.
     * Off: such an import is a compile error. */
    bool unknown_vmods_stub;
    /* Optional file reader; NULL reads the file system with stdio. */
    vcl_reader_f *reader;
    void *reader_priv;
    /* return (restart) when req.restarts >= max_restarts becomes
     * synth(503, "Too many restarts"); 0 means the default, 4. */
    unsigned max_restarts;
    /* return (retry) when bereq.retries >= max_retries becomes fail (from
     * vcl_backend_fetch/response: go to vcl_backend_error) or abandon (from
     * vcl_backend_error); 0 means the default, 4. */
    unsigned max_retries;
    /* beresp.ttl the built-in vcl_backend_response gives hit-for-miss
     * markers, in seconds; 0 means the default, 120 (as Varnish). */
    double hit_for_miss_ttl;
    /* Duration of `return (pass)` without an argument in
     * vcl_backend_response (hit-for-pass), seconds; 0 means 120. */
    double hit_for_pass_ttl;
};

/* Fills *opt with the defaults (everything off or 0). */
void vcl_options_init(struct vcl_options *opt);

/* Diagnostics of one compile: errors (at most one: the compiler stops at the
 * first, like Varnish) and warnings (unused subs/backends/ACLs/probes,
 * stubbed vmod calls). */
enum vcl_severity { VCL_SEV_WARNING, VCL_SEV_ERROR };
struct vcl_diag {
    enum vcl_severity severity;
    const char *file;    /* as given or as resolved for includes */
    unsigned line, col;  /* 1-based; 0 when not tied to a place */
    const char *message; /* "beresp.ttl is not writable in vcl_recv" */
    /* "file:line:col: error: message\n<source line>\n<spaces>^~~~\n" */
    const char *text;
};
struct vcl_diags;

/* Number of diagnostics, one of them (NULL past the end), whether one is an
 * error, and all texts joined (warnings and errors, in order).  Strings stay
 * valid until vcl_diags_free(). */
size_t vcl_diags_count(const struct vcl_diags *d);
const struct vcl_diag *vcl_diags_get(const struct vcl_diags *d, size_t i);
bool vcl_diags_has_error(const struct vcl_diags *d);
const char *vcl_diags_text(const struct vcl_diags *d);
/* Frees the list and sets *d to NULL (NULL-safe). */
void vcl_diags_free(struct vcl_diags **d);

struct vcl_program;

/* Compiles the policy in the file at path (includes resolve relative to
 * it).  opt may be NULL (defaults).  On success *out holds a new program
 * with one reference owned by the caller, and 0 is returned.  *diags (if
 * diags is not NULL) always receives a list the caller frees, even on
 * success (warnings).  Errors: VCL_ECOMPILE (see diags), VCL_EIO (the main
 * file; also in diags), VCL_ENOMEM, VCL_EINVAL. */
int vcl_compile_file(const char *path, const struct vcl_options *opt, struct vcl_program **out,
                     struct vcl_diags **diags);

/* Same, from text in memory.  name is used in messages and as the base for
 * relative includes (its directory; "" or a bare name means the current
 * directory).  src need not be NUL-terminated; it is copied. */
int vcl_compile_string(const char *name, const char *src, size_t len,
                       const struct vcl_options *opt, struct vcl_program **out,
                       struct vcl_diags **diags);

/* Reference counting (atomic).  _ref returns p.  _release drops one
 * reference, frees the program with the last one, and sets *pp to NULL. */
struct vcl_program *vcl_program_ref(struct vcl_program *p);
void vcl_program_release(struct vcl_program **pp);

/* The host's own state for this program (accel: its origin pools).  Set it
 * once, before the program is shared; fini(data) runs when the program is
 * freed, on whichever thread drops the last reference.  _host_data returns
 * it (NULL when never set). */
void vcl_program_set_host_data(struct vcl_program *p, void *data, void (*fini)(void *));
void *vcl_program_host_data(const struct vcl_program *p);

/* The built-in policy (Varnish builtin.vcl equivalent) appended after the
 * user's bodies of each built-in sub, with the default hit-for-miss TTL.
 * Static text, for `accel -x builtin`. */
const char *vcl_builtin_source(void);

/* A readable listing of the compiled program (declarations, regexes, ACLs,
 * then each sub's instructions with the source line they came from), for
 * `accel -C`.  Returns a malloc()ed NUL-terminated string the caller frees,
 * or NULL when out of memory. */
char *vcl_program_dump(const struct vcl_program *p);

/* ------------------------------------------------ declarations to read */

/* A place in the policy's sources, for messages the host makes about a
 * declaration once it is compiled ("site.vcl:3:13: backend web: .host
 * 'x.invalid' does not resolve").  file belongs to the program; NULL (and
 * line 0) when not known. */
struct vcl_place {
    const char *file;
    unsigned line, col;
};

/* A backend.  Strings and arrays belong to the program and live as long as
 * it does.  Durations are seconds; a negative value means "not set in the
 * policy: use the daemon's default". */
struct vcl_backend_decl {
    const char *name;
    bool none;               /* `backend name none;` */
    const char *host;        /* .host, NULL when .path or none */
    const char *port;        /* .port as written ("8080", "http"), NULL if not set */
    const char *path;        /* .path (unix socket), NULL if not set */
    const char *host_header; /* .host_header, NULL if not set */
    double connect_timeout;
    double first_byte_timeout;
    double between_bytes_timeout;
    unsigned max_connections; /* 0: unlimited */
    bool ssl;                 /* .ssl = true: TLS to the origin */
    bool ssl_sni;             /* .ssl_sni, default true: send SNI */
    bool ssl_verify_peer;     /* .ssl_verify_peer, default true: verify the chain */
    bool ssl_verify_host;     /* .ssl_verify_host, default true: the name must match */
    const char *ssl_ca_file;  /* .ssl_ca_file: trust only this CA file (PEM) */
    int probe;                /* index for vcl_program_probe(), -1: none */
    unsigned line;            /* where it was declared (main or include) */
    struct vcl_place at;      /* the declaration: its name */
    struct vcl_place host_at; /* the values of .host, .path and .ssl_ca_file */
    struct vcl_place path_at;
    struct vcl_place ssl_ca_file_at;
};

/* A probe, named or inline (inline ones are named "<backend>.probe"). */
struct vcl_probe_decl {
    const char *name;
    const char *url;     /* .url, default "/" */
    const char *request; /* .request lines joined with "\r\n" plus a final
                            "\r\n\r\n"; NULL when .url is used */
    unsigned expected_response; /* default 200 */
    double timeout;             /* default 2s */
    double interval;            /* default 5s */
    unsigned window;            /* default 8 */
    unsigned threshold;         /* default 3 */
    unsigned initial;           /* default threshold - 1 */
};

enum vcl_director_type {
    VCL_DIR_ROUND_ROBIN,
    VCL_DIR_RANDOM,
    VCL_DIR_FALLBACK,
    VCL_DIR_HASH,
    VCL_DIR_SHARD,
    VCL_DIR_LEAST_CONN /* directors.least_connections() (accel extension) */
};
struct vcl_director_member {
    struct vcl_ref ref; /* a backend, or a director declared earlier */
    double weight;      /* 1.0 unless given (random, hash) */
};
/* A director made in vcl_init: `new web = directors.round_robin();`
 * followed by `web.add_backend(b1);` calls.  vcl_init's director set-up is
 * read at compile time (it must be unconditional); the daemon builds the
 * real director from this description. */
struct vcl_director_decl {
    const char *name;
    enum vcl_director_type type;
    bool sticky; /* fallback(sticky = true) */
    size_t n_members;
    const struct vcl_director_member *members;
};

size_t vcl_program_backend_count(const struct vcl_program *p);
const struct vcl_backend_decl *vcl_program_backend(const struct vcl_program *p, size_t i);
size_t vcl_program_probe_count(const struct vcl_program *p);
const struct vcl_probe_decl *vcl_program_probe(const struct vcl_program *p, size_t i);
size_t vcl_program_director_count(const struct vcl_program *p);
const struct vcl_director_decl *vcl_program_director(const struct vcl_program *p, size_t i);
/* The default backend for req.backend_hint: the first backend declared
 * (Varnish); kind VCL_REF_NONE when the policy declares none. */
struct vcl_ref vcl_program_default_backend(const struct vcl_program *p);
/* The name of a backend or director ("" for none). */
const char *vcl_program_ref_name(const struct vcl_program *p, struct vcl_ref ref);
/* Whether the policy defines (not only inherits from the builtin) a sub. */
bool vcl_program_defines(const struct vcl_program *p, enum vcl_sub sub);

/* ------------------------------------------------------------- running */

/* Per-request scratch memory owned by the caller.  Strings the VM makes
 * (concatenation, regsub, conversions) and its per-request state (cookie
 * jar, var store, regex match data) are bump-allocated from it; nothing is
 * freed individually.  Reset `used` (and re-init the ctx) when the request
 * ends.  Running out is VCL_ENOSPC, never a crash.  8 KB is plenty for
 * typical policies. */
struct vcl_arena {
    char *base;
    size_t size;
    size_t used;
};

/* Callbacks through which the VM reaches the request.  priv is the ctx's
 * priv.  Every op returns 0 or a negative code (the run then fails with
 * VCL_EHOST, action fail).  Slices the host returns must stay valid until the
 * vcl_run call returns; slices the VM passes in live in the arena (or in the
 * program) and stay valid until the arena is reset: copy what must live
 * longer.  Ops marked optional may be NULL (the stated fallback is used). */
enum vcl_tls_what { VCL_TLS_IS_TLS, VCL_TLS_VERSION, VCL_TLS_CIPHER, VCL_TLS_AUTHORITY };

struct vcl_host_ops {
    /* Scalar variables by id (see VCL_VARIABLES for types).  An unset STRING
     * is u.s.p == NULL.  set_var receives a value of the variable's type;
     * a STRING may point at the very bytes get_var returned for the same
     * variable (regsub without a match returns its input), so copy with
     * memmove semantics.  The same holds for set_header. */
    int (*get_var)(void *priv, enum vcl_var var, struct vcl_value *out);
    int (*set_var)(void *priv, enum vcl_var var, const struct vcl_value *v);
    /* Headers, name case-insensitive, without the colon.  get: the first
     * value, or out->p = NULL when absent (Varnish joins duplicates only for
     * std.collect).  set replaces every instance; unset removes all. */
    int (*get_header)(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str *out);
    int (*set_header)(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str value);
    int (*unset_header)(void *priv, enum vcl_where w, struct vcl_str name);
    /* vcl_hash: add to the cache key. */
    int (*hash_data)(void *priv, struct vcl_str s);
    /* synthetic(): append to the synthetic body being built (vcl_synth,
     * vcl_backend_error).  `set resp.body = ...` / `set beresp.body = ...`
     * arrive through set_var (VCL_VAR_RESP_BODY / VCL_VAR_BERESP_BODY) and
     * replace it. */
    int (*synthetic)(void *priv, struct vcl_str s);
    /* ban("expr"): the host parses the expression; an unparsable one should
     * be logged and return 0 (Varnish logs and continues). Optional: ignored. */
    int (*ban)(void *priv, struct vcl_str expr);
    /* std.log / std.syslog.  Optional: dropped. */
    void (*log)(void *priv, struct vcl_str s);
    /* std.healthy(backend-or-director).  Optional: true. */
    int (*healthy)(void *priv, struct vcl_ref ref, bool *out);
    /* dir.backend(key...) on a director made in vcl_init: the daemon's real
     * director picks.  key.p == NULL when no key was given (round_robin,
     * random, fallback); for hash/shard the key string.  The host may answer
     * with the director itself to defer the choice to fetch time.
     * Optional: the director reference itself. */
    int (*director_backend)(void *priv, unsigned director, struct vcl_str key,
                            struct vcl_ref *out);
    /* xkey.purge(keys) / xkey.softpurge(keys): space-separated keys; store the
     * number of objects hit in *count.  Optional: 0. */
    int (*xkey_purge)(void *priv, struct vcl_str keys, bool soft, int64_t *count);
    /* std.collect(hdr, sep): join every instance of a header into one, in
     * place.  Optional: no-op. */
    int (*collect_header)(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str sep);
    /* std.cache_req_body(max): buffer the request body; *ok false if larger.
     * Optional: false. */
    int (*cache_req_body)(void *priv, int64_t max_bytes, bool *ok);
    /* tls.is_tls() (out->u.b), tls.version(), tls.cipher(), tls.authority()
     * (the SNI name) (out->u.s): the client connection's TLS facts, named
     * as in Varnish Enterprise's vmod tls.  Optional: not TLS (false, ""). */
    int (*tls_info)(void *priv, enum vcl_tls_what what, struct vcl_value *out);
    /* Explain mode (`accel -x explain`): called for every statement with an
     * effect, with the file it came from ("<builtin>" for the built-in
     * policy), its line, and a short text: `set beresp.ttl = 120.000`,
     * `unset req.http.Cookie`, `call normalize`, `hash_data("/x")`,
     * `return (pass)`.  The text lives on the VM's stack: valid during the
     * call only.  Optional: leave NULL in production (costs one test per
     * such statement). */
    void (*trace)(void *priv, const char *file, unsigned line, struct vcl_str text);
};

/* One request's (or one backend task's) run state.  Fill it with
 * vcl_ctx_init(); the public fields may be read after a run. */
struct vcl_ctx {
    unsigned magic;
#define VCL_CTX_MAGIC 0x5c1d0e37u
    const struct vcl_host_ops *ops;
    void *priv;
    struct vcl_arena *arena;
    /* After a failed run: static text or arena text saying why ("request
     * arena full", "regsub: ..."), with the source line; empty otherwise. */
    const char *error;
    unsigned error_line;
    /* private: per-task VM state in the arena (cookie jar, var store, regex
     * match data); NULL until first used. */
    void *_cookies;
    void *_vars;
    void *_md;
    /* private: the VM's regex memory is taken from the arena's top down to
     * here, while strings grow from arena->used up. */
    size_t _top;
    /* private: std.random() state, seeded on first use. */
    uint64_t _rng;
};

/* Prepares ctx for one task: a client request with all its subs and
 * restarts (cookie jar and var.* values persist across its vcl_run calls),
 * or one backend fetch (its own ctx and arena, like Varnish's bereq task).
 * The VM never sets req.backend_hint itself: start it at
 * vcl_program_default_backend().  Nothing is allocated.  Call it again whenever the arena is
 * reset: the ctx keeps state in the arena. */
void vcl_ctx_init(struct vcl_ctx *ctx, const struct vcl_host_ops *ops, void *priv,
                  struct vcl_arena *arena);

/* The outcome of one sub.  What the daemon does with it, as Varnish:
 *   hash -> run VCL_SUB_HASH (hash_data calls build the key) then look up;
 *   synth -> set resp.status = status and resp.reason = reason (or the
 *     standard phrase when reason.p is NULL), then run VCL_SUB_SYNTH;
 *   restart -> req.restarts + 1 and VCL_SUB_RECV again with the same ctx
 *     (the VM already turned a restart past max_restarts into synth 503);
 *   purge -> purge the key, then run VCL_SUB_PURGE;
 *   pass in vcl_backend_response -> hit-for-pass for `duration` seconds;
 *   fail -> 503 (synth) or, in backend subs, vcl_backend_error. */
struct vcl_result {
    enum vcl_action action;
    unsigned status;       /* synth(status, ...) */
    struct vcl_str reason; /* synth(..., reason); p == NULL when not given */
    double duration;       /* pass(duration) in vcl_backend_response, seconds */
};

/* Runs sub (the user's bodies, then the built-in one) against ctx.
 * On success returns 0 and fills *out with the action, which is always one
 * the sub may return.  On a run-time error (arena full, a host op failing)
 * returns VCL_ENOSPC / VCL_EHOST / VCL_ERUNTIME, sets ctx->error and
 * out->action = VCL_ACT_FAIL: answer as Varnish does a VCL failure (503).
 * Allocates no heap memory; bounded in time (the language has no loops). */
int vcl_run(const struct vcl_program *p, enum vcl_sub sub, struct vcl_ctx *ctx,
            struct vcl_result *out);

/* Assertion hook: the library's VCL_ASSERT calls it (if set) with the
 * failed expression before aborting, so the daemon can log a panic.  Set it
 * once at start-up. */
typedef void vcl_panic_f(const char *func, const char *file, int line, const char *expr);
void vcl_set_panic_hook(vcl_panic_f *hook);

#endif /* VCL_H */
