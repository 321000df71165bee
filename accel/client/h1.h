/*
 * h1.h -- the HTTP/1.1 transport (xport.h): a client connection that turns
 * bytes into requests for the request machine and frames what they answer.
 * It owns everything about the connection: the TLS handshake, reading and
 * parsing heads (400/414/431/501/505 for bad ones), keep-alive and
 * pipelining, the request body (100-continue, chunked validation, the
 * minimum body rate), response framing (Content-Length, chunked for
 * HTTP/1.1, close-delimited for 1.0), Connection fields, the send timeout,
 * lingering close, and the Upgrade / pipe tunnel.  One request at a time.
 */
#ifndef AC_H1_H
#define AC_H1_H

#include "wrk.h"

/* The worker's accept hook (wrk_accept_f): a new client connection. */
void h1_accept(struct wrk *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
               const struct config_addr *addr);

#endif /* AC_H1_H */
