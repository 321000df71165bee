/*
 * sess.h -- a client connection and the request it is working on: an
 * explicit state machine driven by sess_drive().  Callbacks only record what
 * happened and call the driver, so every transition is in one place.
 *
 * The client side (head, dispatch, synthetic answers, keep-alive) is in
 * sess.c, the origin side (connect, request, response, body relay) in
 * fetch.c, and the Upgrade tunnel in tunnel.c.  They share this struct.
 */
#ifndef AC_SESS_H
#define AC_SESS_H

#include "ac.h"
#include "buf.h"
#include "conn.h"
#include "h1_parse.h"
#include "pool.h"
#include "wrk.h"
#include "cache.h"
#include "gz.h"
#include "policy.h"
#include "store.h"

#include <netinet/in.h>
#include <sys/uio.h>

#define SESS_STATES(X) \
    X(S_TLS)        /* TLS handshake (tls listeners) */ \
    X(S_HEAD)       /* waiting for / parsing a request head */ \
    X(S_RECV)       /* a request head is parsed: decide what to do */ \
    X(S_LOOKUP)     /* cache lookup (cache_sess.c) */ \
    X(S_WAITOBJ)    /* waiting for a busy object's response head */ \
    X(S_DELIVER)    /* delivering a cached (or busy) object */ \
    X(S_FILL)       /* origin body into a busy object, object to the client */ \
    X(S_CONNECT)    /* getting an origin connection */ \
    X(S_BEREQ)      /* sending the request head to the origin */ \
    X(S_REQBODY)    /* streaming the request body to the origin */ \
    X(S_BERESP)     /* waiting for the origin's response head */ \
    X(S_RESPBODY)   /* relaying the response body to the client */ \
    X(S_TUNNEL)     /* upgraded: relaying bytes both ways */ \
    X(S_SYNTH)      /* writing a response accel made itself */ \
    X(S_ADMIN)      /* admin request waiting for the main thread (admin.c) */ \
    X(S_FINISH)     /* request done: log, then keep-alive or close */ \
    X(S_CLOSE)      /* flush what is queued, then close */

enum sess_state {
#define X(s) s,
    SESS_STATES(X)
#undef X
    S__MAX
};

enum step { STEP_MORE, STEP_WAIT, STEP_DONE };
typedef enum step sess_step_f(struct sess *s);

/* Client output queue: iovecs over memory that stays put until flushed. */
#define SESS_NIOV 8

struct sess {
    unsigned magic;
#define SESS_MAGIC 0x9b2d44e1
    enum sess_state state;
    struct wrk *w;
    struct sess *next, *prev;       /* worker's list */
    struct conn c;
    ev_io io;                       /* client fd */
    int cwant, owant;               /* events the state machine waits for per side */
    ev_timer tmr;                   /* the one timer, re-armed per state */
    bool timed_out;
    bool in_drive;
    char client_ip[48];
    struct sockaddr_storage peer;

    /* client input */
    struct ac_iobuf rbuf;
    bool client_eof;
    double head_start;              /* first byte of the current head arrived */

    /* the current request */
    struct h1_header *hdrs;         /* max_headers entries */
    struct h1_request req;
    size_t head_len;                /* bytes of rbuf the head occupies */
    bool head_copied;               /* slices rebased into headcopy */
    struct ac_buf headcopy;
    double t_start;                 /* request start (wall clock) */
    bool keepalive;                 /* client connection may be reused after this */
    uint64_t reqbody_left;          /* H1_BODY_LENGTH: bytes still to relay */
    struct h1_chunked reqchunk;
    size_t reqbody_pending_fwd;     /* validated body bytes at the head of rbuf, unsent */
    size_t reqbody_scan;            /* chunked: bytes after those already validated */
    bool body_checked;              /* chunked: the first chunk-size line was valid */
    double body_window_start;
    uint64_t body_window_bytes;
    int status;                     /* status sent to the client */
    uint64_t bytes_sent;            /* body bytes sent */
    int upstream_status;
    const char *cache_state;        /* for the log: "PASS", "MISS", "SYNTH", ... */
    const char *bad_reason;         /* refused by the parser: the rule, for the log */
    size_t bad_off;                 /* ... and the offending byte (SIZE_MAX: none) */
    bool logged;                    /* the access-log line of this request is written */

    /* client output */
    struct ac_buf whead;            /* response head (or whole synthetic answer) */
    struct iovec iov[SESS_NIOV];
    int niov;
    char chunkhdr[2][24];           /* chunk-size lines for at most two runs per flush */
    unsigned nchunkhdr;

    /* origin side */
    const struct backend *be;
    struct oconn *oc;
    bool oc_reused;
    unsigned retries;
    /* origin pools (pool.h): the hash key .backend(key) gave, whether the
     * request already moved to another server, bereq.*_timeout set by the
     * policy (< 0: unset; FETCH_TMO_*), the end of a max_connections wait */
    uint64_t dir_key;
    bool dir_key_set;
    bool moved;
    double bto[3];
    double queue_until;
    struct pool_waiter qw;          /* waiting for a max_connections slot */
    struct ac_buf bereq;            /* request head for the origin */
    size_t bereq_off;
    struct ac_iobuf relay;          /* origin → client bytes */
    struct h1_header *bhdrs;
    struct h1_response resp;
    bool resp_head_done;
    uint64_t respbody_left;
    struct h1_chunked respchunk;
    bool resp_chunked_out;          /* re-framing as chunked to the client */
    bool resp_close_out;            /* close-delimited to the client */
    bool origin_reusable;
    uint64_t resp_bytes_in;         /* origin bytes received for this response */

    /* tunnel */
    bool origin_eof;
    bool client_shut, origin_shut;

    /* cache (cache_sess.c) */
    enum cache_req_kind kind;
    const char *pass_why;           /* why the request passes (logs, Cache-Status) */
    struct ac_buf key;
    struct ac_buf scratch;          /* selector / header block being built */
    struct ac_buf scratch2;
    struct ac_buf tmpbuf;
    struct ac_slice bereq_method;   /* the method sent to the origin */
    struct store_obj *obj;          /* object being delivered or waited on (a reference) */
    struct store_obj *busy;         /* busy object this session fills (a reference) */
    struct store_obj *stale;        /* stale copy: validators, stale-if-error (a reference) */
    struct store_waiter waiter;
    bool subscribed;
    bool wake_queued;               /* on the worker's wake list (under wake_mtx) */
    struct sess *wake_next;
    unsigned lookups;
    bool bg;                        /* background fetch: no client */
    bool client_dead;               /* client gone: keep filling for the others */
    bool revalidating;              /* the origin request carries our validators */
    double req_time, resp_time;
    struct cache_decision dec;
    const char *xcache;             /* X-Cache value */
    const char *cstatus;            /* Cache-Status parameters after "accel; " */
    /* delivery from an object */
    bool dlv_started, dlv_done, dlv_chunked, dlv_last_chunk;
    uint64_t dlv_off, dlv_end;      /* body bytes [off, end) still to send */
    struct ac_buf dlv_tail;         /* per-request head fields */
    char dlv_chunkhdr[24];
    /* fill */
    bool fill_done, fill_overflow;
    uint64_t fill_len;
    struct ac_slice pending_run;    /* decoded bytes not stored (overflow) */
    /* compression (cache_sess.c, gz.c) */
    bool do_gzip, do_gunzip, do_brotli; /* beresp.do_*: defaults, then the policy */
    struct gz_stream *fill_gz;      /* origin body -> object filter, or NULL */
    bool fill_gz_check;             /* fill_gz only checks origin gzip (output dropped) */
    bool fill_gz_dirty;             /* encoder holds input not yet flushed */
    char *fill_buf;                 /* GZ output for fill_gz */
    struct gz_stream *dlv_gz;       /* object -> client decoder, or NULL */
    char *dlv_buf;                  /* decoded bytes queued for the client */
    bool dlv_alt;                   /* delivering the object's alternate body */

    /* policy (policy.c) */
    struct vcl_program *prog;       /* this request's program (a reference), or NULL */
    struct vcl_ctx vctx;
    struct vcl_arena arena;
    unsigned restarts;
    unsigned xid;
    struct vcl_ref backend_hint;
    bool hash_always_miss;
    bool vcl_uncacheable;
    bool vcl_ttl_set;
    struct pol_hdrop resp_ops[POL_MAX_HDROPS], bereq_ops[POL_MAX_HDROPS];
    unsigned n_resp_ops, n_bereq_ops;
    struct ac_buf synth_body;
    bool synth_body_set;
    struct ac_slice resp_reason;    /* resp.reason set by the policy */
    int resp_status_set;            /* resp.status set by the policy (0: not) */
    bool prog_restart_exhausted;
    bool abandon;                   /* vcl_backend_fetch did not return fetch */
    bool piping;                    /* return (pipe): raw bytes both ways after the head */
    bool admin;                     /* accepted on the admin listener (-T) */
    struct reload_req *reload;      /* POST /reload waiting in S_ADMIN (admin.c) */
    double reload_until;
    bool tls;                       /* the client connection is TLS (X-Forwarded-Proto) */
    bool poll_first;                /* wait for readiness before the next read: it
                                     * would find nothing (saves a syscall) */
    enum step fetch_next;           /* what fetch_start_respbody decided */
};

/* Accept hook: a new client connection on worker w (fd is non-blocking);
 * tls: start with a TLS handshake. */
void sess_new(struct wrk *w, int fd, const struct sockaddr *peer, socklen_t peerlen, bool admin,
              bool tls);
/* Run the state machine until it waits or the session is closed. */
void sess_drive(struct sess *s);
/* Worker is draining: close the session if it is idle between requests. */
void sess_drain(struct sess *s);
/* Force-close (drain timeout, worker exit). */
void sess_kill(struct sess *s);

/* Shared by sess.c / fetch.c / tunnel.c */
void sess_timer(struct sess *s, double seconds);
void sess_want(struct sess *s, int client_events, int origin_events);
/* Flush the client output queue: STEP_MORE when empty, STEP_WAIT when the
 * socket is full (watchers set), STEP_DONE on a write error (client gone). */
enum step sess_flush(struct sess *s);
void sess_iov_add(struct sess *s, const void *p, size_t len);
/* Queue a complete synthetic response and move to S_SYNTH. */
enum step sess_synth(struct sess *s, int status, const char *reason, const char *body,
                     bool close);
/* A synthetic answer with an explicit body length; overlay: add the
 * policy's resp.http.* fields.  Does not run vcl_synth. */
enum step sess_synth_ex(struct sess *s, int status, const char *reason, const char *body,
                        size_t blen, bool close, bool overlay);
/* return (restart): run vcl_recv again (bounded by max_restarts). */
enum step sess_restart(struct sess *s);
/* Go to the origin without the cache (builds the request, handles a body). */
enum step sess_start_pass(struct sess *s);
/* vcl_recv and what its action leads to (cache_sess.c). */
enum step cache_policy_recv(struct sess *s);
/* Purge every variant of url on host (the policy's key when there is one). */
int cache_purge_url(struct sess *s, struct ac_slice url, struct ac_slice host, unsigned flags,
                    size_t *countp);
/* BAN without a policy: the expression in a Ban: header (inval.c). */
enum step cache_ban_request(struct sess *s);
/* PURGE without a policy: key or Surrogate-Key, hard or soft (inval.c). */
enum step cache_purge_request(struct sess *s);
/* The cache key into s->key: the policy's vcl_hash, or cache_key(); 0 or -1. */
int cache_make_key(struct sess *s);
/* A policy's synth/restart/fail verdict as the answer (cache_sess.c). */
enum step cache_synth_or_restart(struct sess *s, enum vcl_action a, const struct vcl_result *res);
/* return (purge) under a policy (inval.c). */
enum step cache_policy_purge(struct sess *s);
/* vcl_backend_response (cache_sess.c); true when it ended the fetch. */
bool policy_backend_response(struct sess *s, enum step *st);
/* The backend the policy's req.backend_hint names (directors resolved,
 * sick servers skipped), or NULL. */
const struct backend *pol_backend(struct sess *s);
/* The same, never avoid (a retry after avoid failed); NULL when no other. */
const struct backend *pol_backend_avoid(struct sess *s, const struct backend *avoid);
/* No usable origin (every server of the pool sick): stale-if-error if the
 * cache has a copy, else 503 with a clear body. */
enum step fetch_no_backend(struct sess *s);
/* Origin timeouts for this request: bereq.*_timeout from the policy, else
 * the backend's declaration, else the -p parameter. */
enum fetch_tmo { FETCH_TMO_CONNECT, FETCH_TMO_FIRST_BYTE, FETCH_TMO_BETWEEN_BYTES };
double fetch_timeout(const struct sess *s, enum fetch_tmo t);
/* Build the client response head from the origin response into s->whead. */
void sess_build_resp_head(struct sess *s);
/* Release the origin connection: back to the pool if reusable, else closed. */
void sess_release_origin(struct sess *s, bool reusable);

sess_step_f fetch_connect, fetch_bereq, fetch_reqbody, fetch_beresp, fetch_respbody;
sess_step_f cache_lookup_step, cache_waitobj_step, cache_deliver_step, cache_fill_step;
void fetch_build_bereq(struct sess *s);
/* Queue body bytes for the client with the client's framing. */
void fetch_emit(struct sess *s, const char *p, size_t len);
/* Has the origin's response body been read completely (per its framing)? */
bool fetch_body_done(const struct sess *s);
/* Relay the response (head of r bytes in s->relay) to the client as is. */
void fetch_start_respbody(struct sess *s, size_t r);
/* Move the request head out of rbuf (rebasing the slices into headcopy)
 * so rbuf can carry other bytes (request body, tunnel). */
void sess_copy_head(struct sess *s);
/* A session without a client (background fetch), registered on w. */
struct sess *sess_new_detached(struct wrk *w);
/* Copy src's request (head bytes and parsed slices) into dst. */
void sess_copy_request(struct sess *dst, const struct sess *src);
/* The origin's final response head is parsed (r bytes in s->relay): a cache
 * fetch decides here whether to fill, freshen or pass.  Returns the next
 * step. */
enum step cache_on_beresp(struct sess *s, size_t r);
/* The origin failed (status 502/504 about to be sent): serve a stale copy
 * if allowed (stale-if-error), abort a busy object.  Returns true if it
 * took over (state set), false to answer the error. */
bool cache_on_origin_fail(struct sess *s);
/* Per-request cache state reset and release (refs, waiter). */
void cache_sess_reset(struct sess *s);
/* Cache headers for a response relayed from the origin (pass). */
void cache_pass_headers(struct sess *s, struct ac_buf *b);
/* After an unsafe request's answer: invalidate the target (§4.4). */
void cache_after_unsafe(struct sess *s);
/* Wake-up from a store waiter, on the session's own worker thread. */
void sess_wake(struct sess *s);
sess_step_f tunnel_step;
/* Origin connection watcher callback (checked-out connections). */
void fetch_on_origin_io(struct ev_loop *loop, ev_io *io, int revents);

#endif /* AC_SESS_H */
