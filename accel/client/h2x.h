/*
 * h2x.h -- HTTP/2 as a transport of the request machine (xport.h):
 * one client connection (struct h2_conn over a struct conn, its socket
 * watcher and timer) and, per stream, a struct xport for the stream's
 * request.
 *
 * A connection becomes HTTP/2 in the HTTP/1.1 transport, which hands it
 * over: after a TLS handshake that chose h2 by ALPN, or on a plain
 * listener whose first bytes are the h2c connection preface (prior
 * knowledge, RFC 9113 §3.3).  `Upgrade: h2c` (RFC 7540 §3.2, removed by
 * RFC 9113) is never honoured: the HTTP/1.1 transport treats it as any
 * other hop-by-hop field and drops it.
 */
#ifndef AC_H2X_H
#define AC_H2X_H

#include "ac.h"
#include "conn.h"
#include "h2.h"
#include "req.h"

#include <stdbool.h>

struct wrk;
struct config;

/* Is HTTP/2 on (-p http2, default on)? */
bool h2x_enabled(const struct config *cfg);

/*
 * Do the first bytes of a plain connection start the h2c preface?  1: all
 * of it is there; 0: they do not (HTTP/1.1); AC_AGAIN: a prefix of it,
 * read more.  Only the first bytes of a connection count.
 */
int h2x_preface(const char *p, size_t n);

/*
 * Take a client connection over: *c is moved (fd, TLS state; c is left
 * closed for the caller: fd -1), meta is copied (its conn pointer is set to
 * the new connection), pre[0..n) are bytes the caller already read (the
 * preface and what came with it).  The caller has stopped its watchers on
 * the fd and forgets the connection.
 */
void h2x_accept(struct wrk *w, struct conn *c, const struct req_meta *meta, const char *pre,
                size_t n);

/* The limits of -p (h2_*, timeout_idle, timeout_req_head, send_timeout,
 * max_headers, max_target). */
void h2x_settings(const struct config *cfg, struct h2_settings *set);

/* SIGHUP (main thread): every worker sends its HTTP/2 clients a graceful
 * GOAWAY, so they reconnect and meet the reloaded certificates and policy. */
void h2x_reload_all(struct wrk *ws, unsigned n);
/* Worker set-up and exit (the worker's own HTTP/2 state). */
void h2x_worker_init(struct wrk *w);
void h2x_worker_fini(struct wrk *w);

#endif /* AC_H2X_H */
