/*
 * req.h -- the request machine: one request, whatever carried it.
 *
 * A request runs its own state machine, owned by its worker, and knows
 * nothing about how its bytes arrive: its transport (xport.h) gives it a
 * head and a body stream and takes back a response head and body bytes.
 *
 *     transport fills req_http(), req_start()
 *       -> RECV      policy (vcl_recv), admin / PURGE / BAN, pass or lookup
 *       -> LOOKUP    store lookup (vcl_hash, vcl_hit)
 *       -> WAITOBJ   a busy object another request is fetching
 *       -> CONNECT .. BERESP     the origin (origin/fetch.h): connection,
 *                                request head and body, response head
 *       -> FILL      origin body into the busy object, object to the client
 *       -> DELIVER   a cached or busy object to the client
 *       -> RESPBODY  a pass answer relayed from the origin
 *       -> SYNTH     an answer accel makes itself
 *       -> FINISH    log, release, xport->done()
 *
 * Waking: a step that waits returns; its waker (origin socket, store
 * waiter, timer, or the transport through req_resume()) drives the
 * request again on its own worker.  Several requests may share a
 * connection (HTTP/2 streams); each waits only for its own things.
 *
 * Internal requests (background revalidation now; ESI includes, prefetch
 * and peer fetches next) run through the same machine without a client
 * transport, and carry the metadata of the request that caused them
 * (struct req_meta: client address, X-Forwarded-For, TLS state) and a copy
 * of its head as the policy left it.
 */
#ifndef AC_REQ_H
#define AC_REQ_H

#include "ac.h"
#include "h1_parse.h"
#include "xport.h"

#include <sys/socket.h>

struct req;
struct wrk;
struct conn;

/*
 * Who asked, as the policy and the origin request see it.  A transport
 * keeps one per connection (HTTP/2: shared by its streams) and hands a
 * pointer to req_new(); it must stay valid while the request has the
 * transport (until done() or req_detach()).  A request that outlives its
 * transport, and every internal request, holds its own copy
 * (req_meta_copy()).
 */
struct req_meta {
    struct sockaddr_storage peer;   /* client.ip; family 0 when there is none */
    char client_ip[48];             /* printable peer: logs, X-Forwarded-For */
    bool tls;                       /* the client connection is TLS (X-Forwarded-Proto) */
    bool admin;                     /* accepted on the admin listener (-T) */
    /*
     * TLS details and the local address come from the client connection
     * while there is one (conn != NULL: looked up when the policy asks);
     * a copy resolves them into the fields below and clears conn.
     */
    const struct conn *conn;
    struct sockaddr_storage local;  /* server.ip; family 0: unknown */
    const char *tls_version;        /* static OpenSSL strings ("" when not TLS) */
    const char *tls_cipher;
    char tls_sni[256];
};

/* Initialise m for a client connection c (peer address, printable form). */
void req_meta_init(struct req_meta *m, const struct sockaddr *peer, socklen_t peerlen,
                   const struct conn *c, bool admin);
/* Copy src into dst with the connection-dependent parts resolved (dst->conn
 * is NULL afterwards), so dst outlives the connection. */
void req_meta_copy(struct req_meta *dst, const struct req_meta *src);
/* server.ip of a request's metadata into ss (0, or -1 when unknown). */
int req_meta_local(const struct req_meta *m, struct sockaddr_storage *ss);
/* TLS details ("" when not TLS). */
const char *req_meta_tls_version(const struct req_meta *m);
const char *req_meta_tls_cipher(const struct req_meta *m);
const char *req_meta_tls_sni(const struct req_meta *m);

/*
 * A new request on worker w, served by transport x (which must stay valid
 * until done() or req_detach()), asked by meta (see struct req_meta).
 * Requests come from a per-worker cache of freed ones, so their buffers
 * are reused.  The caller then fills req_http() and calls req_start().
 */
struct req *req_new(struct wrk *w, struct xport *x, const struct req_meta *meta);

/* The head to fill before req_start(): hdrs points to an array of
 * max_headers entries.  The slices must stay valid until done() or
 * req_detach() (a request that goes on without its transport copies them
 * first); a transport that moves them (HTTP/1.1 copies the head out of
 * its read buffer when the body is read) rebases them itself. */
struct h1_request *req_http(struct req *req);

/* Run the request (worker thread).  It ends with x->ops->done(). */
void req_start(struct req *req);

/* A request the transport refused before it had a head (a bad head, a
 * head timeout, plain HTTP on a TLS port): answered with status and body,
 * logged, and the connection ends after it (close).  Instead of
 * req_start().  why: the rule the head broke (a static string: the
 * parser's h1_request.reason), off: the offending byte or SIZE_MAX; the
 * access log's cache field then reads BAD:<why>[@<off>]. */
void req_start_error(struct req *req, int status, const char *body, const char *why,
                     size_t off);

/* The transport can take more output (what it held after AC_AGAIN is out),
 * or has more body bytes, for this request: drive it again.  Never call
 * from inside an op. */
void req_resume(struct req *req);

/* The transport goes away (client closed, stream reset, connection
 * killed) before done(): the request never calls it again.  It goes on
 * without a client when others depend on it (a fill for waiting
 * requests), else it ends.  Never call from inside an op. */
void req_detach(struct req *req);

/*
 * An internal request caused by parent, on parent's worker: x is its
 * transport (NULL: no client; ESI includes will pass the parent's body
 * stream), its metadata a copy of parent's, and with REQ_INT_HEAD its head
 * a copy of parent's as the policy left it (method, URL, fields).  The
 * caller says what it is for and starts it.
 */
#define REQ_INT_HEAD 0x1u
struct req *req_new_internal(struct req *parent, struct xport *x, unsigned flags);

/* Worker exit: free every request in w's cache of freed ones. */
void req_cache_flush(struct wrk *w);

#endif /* AC_REQ_H */
