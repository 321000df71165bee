/*
 * req_int.h -- the request machine's own view of a request (struct req),
 * shared by the files of req/ (req.c: driver, receive, synthetic answers,
 * end; req_fetch.c: the origin steps and the pass relay; cache_sess.c: the
 * caching states; cache_gz.c, inval.c, policy.c) and the admin listener's
 * requests (admin.c).  Transports use req.h only.
 *
 * Callbacks (origin socket, timers, store waiters, req_resume()) only
 * record what happened and call req_drive(), so every transition is in one
 * place.
 */
#ifndef AC_REQ_INT_H
#define AC_REQ_INT_H

#include "req.h"

#include "ac.h"
#include "buf.h"
#include "cache.h"
#include "fetch.h"
#include "gz.h"
#include "h1_parse.h"
#include "peer.h"
#include "policy.h"
#include "pool.h"
#include "store.h"
#include "wrk.h"
#include "xport.h"

#include <sys/uio.h>

struct reload_req;                  /* reload.h: a POST /reload waiting for the main thread */

#define REQ_STATES(X) \
    X(R_RECV)       /* a request head is given: decide what to do */ \
    X(R_LOOKUP)     /* cache lookup (cache_sess.c) */ \
    X(R_WAITOBJ)    /* waiting for a busy object's response head */ \
    X(R_DELIVER)    /* delivering a cached (or busy) object */ \
    X(R_FILL)       /* origin body into a busy object, object to the client */ \
    X(R_CONNECT)    /* getting an origin connection (req_fetch.c) */ \
    X(R_BEREQ)      /* sending the request head to the origin */ \
    X(R_REQBODY)    /* streaming the request body to the origin */ \
    X(R_BERESP)     /* waiting for the origin's response head */ \
    X(R_RESPBODY)   /* relaying the response body to the client */ \
    X(R_TUNNEL)     /* the transport relays bytes both ways (Upgrade, pipe) */ \
    X(R_SYNTH)      /* writing a response accel made itself */ \
    X(R_CLWAIT)     /* a purge answer waits for the cluster's members (peer.c) */ \
    X(R_ADMIN)      /* an admin request waiting for the main thread (admin.c) */ \
    X(R_FINISH)     /* done: log, release, tell the transport */

enum req_state {
#define X(s) s,
    REQ_STATES(X)
#undef X
    R__MAX
};

/* What a step tells the driver: run the next step, wait for a waker, or
 * end the request (cut short: the client must see that). */
enum step { STEP_MORE, STEP_WAIT, STEP_DONE };
typedef enum step req_step_f(struct req *req);

struct req {
    unsigned magic;
#define REQ_MAGIC 0x9b2d44e1
    enum req_state state;
    struct wrk *w;
    struct xport *xp;               /* the client's transport; NULL: none (internal, or gone) */
    const struct req_meta *meta;    /* the transport's, or &meta_own */
    struct req_meta meta_own;
    struct ac_slice proto;          /* "HTTP/1.1", ...: req.proto, the access log */
    struct wrk_task task;           /* listed with the worker while there is no transport */
    struct wrk_wakeup wake;         /* store waiter: the object changed (any thread) */
    struct req *cache_next;         /* worker's cache of freed requests */
    ev_timer tmr;                   /* the request's own waits (busy object, stored body) */
    bool timed_out;
    bool in_drive;

    /* the request */
    struct h1_header *hdrs;         /* max_headers entries */
    struct h1_request http;
    struct ac_buf headcopy;         /* the head, when the request holds its own copy */
    double t_start;                 /* request start (wall clock) */
    bool body_checked;              /* chunked: the body's framing starts well */
    int status;                     /* status sent to the client */
    uint64_t bytes_sent;            /* body bytes sent */
    int upstream_status;
    const char *cache_state;        /* for the log: "PASS", "MISS", "SYNTH", ... */
    const char *bad_reason;         /* refused by the parser: the rule, for the log */
    size_t bad_off;                 /* ... and the offending byte (SIZE_MAX: none) */
    bool logged;                    /* the access-log line of this request is written */

    /* output (xport) */
    struct ac_buf whead;            /* fields of a head accel writes (pass, synth, 1xx) */
    bool out_wait;                  /* the transport holds output: wait for req_resume() */
    bool head_pending;              /* a head was queued, no write since (flush it before
                                     * waiting for the body's first bytes) */
    bool end_sent;                  /* the write with XP_W_END is done */
    bool body_begun;                /* xport body_begin() was called */
    struct ac_slice synth_out;      /* a synthetic body, in whead after the fields */

    /* origin side (req_fetch.c, origin/fetch.h) */
    struct fetch fetch;
    struct ac_buf bereq;            /* request head for the origin */
    /* origin pools (pool.h): the hash key .backend(key) gave, whether the
     * request already moved to another server */
    uint64_t dir_key;
    bool dir_key_set;
    bool moved;
    bool piping;                    /* return (pipe): raw bytes both ways after the head */
    bool abandon;                   /* vcl_backend_fetch did not return fetch */
    /* chunked framing of a request body the transport gives as plain bytes
     * (no XP_F_RAW_CHUNKED): framing bytes not sent yet, data bytes the
     * current chunk still owes, the last chunk queued */
    char frame[24];
    size_t frame_len, frame_off;
    uint64_t chunk_left;
    bool frame_end;
    enum step fetch_next;           /* what req_start_respbody decided */

    /* cache (cache_sess.c) */
    enum cache_req_kind kind;
    const char *pass_why;           /* why the request passes (logs, Cache-Status) */
    struct ac_buf key;
    struct ac_buf scratch;          /* selector / header block being built */
    struct ac_buf scratch2;
    struct ac_buf tmpbuf;
    struct ac_slice bereq_method;   /* the method sent to the origin */
    struct store_obj *obj;          /* object being delivered or waited on (a reference) */
    struct store_obj *busy;         /* busy object this request fills (a reference) */
    struct store_obj *stale;        /* stale copy: validators, stale-if-error (a reference) */
    struct store_waiter waiter;
    bool subscribed;
    unsigned lookups;
    bool bg;                        /* background fetch: no client, nothing delivered */
    bool client_dead;               /* client gone: keep filling for the others */
    bool revalidating;              /* the origin request carries our validators */
    double req_time, resp_time;
    struct cache_decision dec;
    const char *xcache;             /* X-Cache value */
    const char *cstatus;            /* Cache-Status parameters after "accel; " */
    /* delivery from an object */
    bool dlv_started, dlv_done;
    uint64_t dlv_off, dlv_end;      /* body bytes [off, end) still to send */
    struct ac_buf dlv_tail;         /* per-request head fields */
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

    /* cluster (peer.c): a purge answer waiting for the members */
    uint64_t cl_ticket;
    double cl_until;
    int cl_status;
    const char *cl_reason;
    bool cl_owner_behind;           /* a peer's answer: the owner had applied less than us */

    /* admin requests (admin.c): POST /reload waiting in R_ADMIN for the
     * main thread, which wakes it through admin_wake (reload.h) */
    struct reload_req *reload;
    struct wrk_wakeup admin_wake;
};

/* ------------------------------------------------------------ req.c */

/* Run the state machine until it waits or the request ends. */
void req_drive(struct req *req);
/* A request for tools that run the policy without a network (-x explain):
 * no transport, not registered with the worker.  req_destroy() frees it. */
struct req *req_alloc(struct wrk *w);
void req_destroy(struct req **reqp);
/* The request's own timer (busy object and stored-body waits). */
void req_timer(struct req *req, double seconds);
/* Copy the head into the request's own buffer (slices into the policy's
 * arena included), so it outlives the transport's buffers. */
void req_own_head(struct req *req);
/* Copy src's head (as the policy left it) into dst's own buffer. */
void req_copy_head(struct req *dst, const struct req *src);

/* Output.  The head: false when the client is gone.  write: AC_OK,
 * AC_AGAIN (wait for req_resume(): return STEP_WAIT), AC_ECLOSED (the
 * client is gone; req->client_dead is set and the transport dropped).
 * Without a transport both take everything. */
bool req_send_head(struct req *req, const struct xp_head *h);
int req_write(struct req *req, const struct iovec *iov, int n, unsigned flags);
/* Before waiting for body bytes: a queued head goes out now (a client
 * sees the head of a slow body at once).  As req_write(). */
int req_flush_head(struct req *req);
/* The transport's part is over before the request's (client gone): copy
 * the metadata and the head, tell it done(how), go on without it. */
void req_drop_xport(struct req *req, enum xp_end how);

/* Queue a complete synthetic response and move to R_SYNTH (vcl_synth
 * shapes it under a policy).  close: end the connection after it. */
enum step req_synth(struct req *req, int status, const char *reason, const char *body,
                    bool close);
/* A synthetic answer with an explicit body length; overlay: add the
 * policy's resp.http.* fields.  Does not run vcl_synth. */
enum step req_synth_ex(struct req *req, int status, const char *reason, const char *body,
                       size_t blen, bool close, bool overlay);
/* return (restart): run vcl_recv again (bounded by max_restarts). */
enum step req_restart(struct req *req);
/* Append the policy's resp.http.* fields (the set ones) to b. */
void req_cat_resp_overlay(struct req *req, struct ac_buf *b);
/* An internal request without a client on w, registered with the worker,
 * with a copy of parent's metadata (parent may be NULL: none). */
struct req *req_new_detached(struct wrk *w, const struct req *parent);

/* ------------------------------------------------------- req_fetch.c */

req_step_f req_connect_step, req_bereq_step, req_reqbody_step, req_beresp_step,
    req_respbody_step, req_tunnel_step;
/* Go to the origin without the cache (builds the request, handles a body). */
enum step req_start_pass(struct req *req);
/* A cache fetch (req->busy to fill, for cache key `key`) whose origin
 * server is chosen (req->fetch.be): in a cluster the key's owner may take
 * its place (peer_route()); the origin request head, then R_CONNECT. */
void req_start_cache_fetch(struct req *req, struct ac_slice key);
/* Build the origin request head into req->bereq (vcl_backend_fetch first). */
void req_build_bereq(struct req *req);
/* Set up the fetch for the chosen backend (req->fetch.be). */
void req_fetch_prepare(struct req *req);
/* The backend the policy's req.backend_hint names (directors resolved,
 * sick servers skipped), or NULL. */
const struct backend *pol_backend(struct req *req);
/* The same, never avoid (a retry after avoid failed); NULL when no other. */
const struct backend *pol_backend_avoid(struct req *req, const struct backend *avoid);
/* No usable origin (every server of the pool sick): stale-if-error if the
 * cache has a copy, else 503 with a clear body. */
enum step req_no_backend(struct req *req);
/* Relay the response (its head parsed in req->fetch) to the client as is;
 * the next step goes to req->fetch_next. */
void req_start_respbody(struct req *req);
/* The client response head for a relayed origin response; sets *h. */
void req_build_resp_head(struct req *req, struct xp_head *h);
/* Origin timeouts of this request (policy, backend, parameter). */
#define req_fetch_timeout(req, t) fetch_timeout(&(req)->fetch, (t))

/* ------------------------------------------------------ cache_sess.c */

req_step_f cache_lookup_step, cache_waitobj_step, cache_deliver_step, cache_fill_step;
/* vcl_recv and what its action leads to. */
enum step cache_policy_recv(struct req *req);
/* The cache key into req->key: the policy's vcl_hash, or cache_key(); 0 or -1. */
int cache_make_key(struct req *req);
/* A policy's synth/restart/fail verdict as the answer. */
enum step cache_synth_or_restart(struct req *req, enum vcl_action a, const struct vcl_result *res);
/* vcl_backend_response; true when it ended the fetch. */
bool policy_backend_response(struct req *req, enum step *st);
/* The origin's final response head is parsed: a cache fetch decides here
 * whether to fill, freshen or pass.  Returns the next step. */
enum step cache_on_beresp(struct req *req);
/* The origin failed (status 502/504 about to be sent): serve a stale copy
 * if allowed (stale-if-error), abort a busy object.  Returns true if it
 * took over (state set), false to answer the error. */
bool cache_on_origin_fail(struct req *req);
/* Per-request cache state reset and release (refs, waiter). */
void cache_req_reset(struct req *req);
/* Cache headers for a response relayed from the origin (pass). */
void cache_pass_headers(struct req *req, struct ac_buf *b);
/* Wake-up from a store waiter, on the request's own worker thread. */
void cache_on_wake(struct wrk_wakeup *wu);

/* ---------------------------------------------------------- inval.c */

/* The cache key of url on host into req->key (the policy's vcl_hash with
 * req.url and Host swapped in, when there is one); 0 or -1. */
int cache_url_key(struct req *req, struct ac_slice url, struct ac_slice host);
/* Purge every variant of url on host (the policy's key when there is one). */
int cache_purge_url(struct req *req, struct ac_slice url, struct ac_slice host, unsigned flags,
                    size_t *countp);
/* BAN without a policy: the expression in a Ban: header. */
enum step cache_ban_request(struct req *req);
/* PURGE without a policy: key or Surrogate-Key, hard or soft. */
enum step cache_purge_request(struct req *req);
/* return (purge) under a policy. */
enum step cache_policy_purge(struct req *req);
/* After an unsafe request's answer: invalidate the target (§4.4). */
void cache_after_unsafe(struct req *req);

#endif /* AC_REQ_INT_H */
