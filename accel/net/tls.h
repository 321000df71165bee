/*
 * tls.h -- TLS with OpenSSL behind the connection layer (conn.h).
 *
 * The transport (conn_tls_ops) is direction-agnostic: a struct conn becomes
 * TLS with tls_server_attach() (an accepted client connection) or
 * tls_client_attach() (a connection accel opened to an origin); both are
 * then driven by tls_handshake() and read/written through conn_read() /
 * conn_writev() like a plain connection.  Every call is non-blocking and
 * reports AC_AGAIN with c->want set to the readiness OpenSSL waits for,
 * which may be the opposite direction of the call (a read can need to write).
 *
 * Server side: one process-wide certificate set built from -c (SNI picks
 * the certificate by exact name or wildcard from the certificate's SAN/CN,
 * the first -c is the default), TLS 1.2 and 1.3 only, ECDHE + AEAD ciphers
 * in 1.2, server preference, groups X25519:P-256, ALPN h2 then http/1.1
 * (http/1.1 only with -p http2=off).  Session
 * tickets are encrypted with a key ring shared by all workers and rotated by
 * tls_tickets_rotate(), so a ticket from one worker resumes on any other.
 * tls_server_reload() re-reads every certificate and key (SIGHUP); on any
 * error the running set stays.  Connections keep the set they started with.
 *
 * OpenSSL writes to the socket with write(2): the process must ignore
 * SIGPIPE (main.c does).
 */
#ifndef AC_TLS_H
#define AC_TLS_H

#include "ac.h"
#include "config.h"
#include "conn.h"

#include <openssl/ssl.h>

extern const struct conn_ops conn_tls_ops;

/* Does this connection speak TLS? */
static inline bool
conn_is_tls(const struct conn *c)
{
    return c->ops == &conn_tls_ops;
}

/* ------------------------------------------------------------ server side */

/*
 * Load the certificates of cfg->certs (-c) and build the server contexts
 * (main thread, before workers start).  Returns 0, or -1 with a message in
 * err (a file that cannot be read, a key that does not match its
 * certificate, a bad cipher list).  With no -c, does nothing and returns 0.
 */
int tls_server_init(const struct config *cfg, char *err, size_t errlen);
/* The same checks without installing anything (accel -C): 0 or -1 with err. */
int tls_server_check(const struct config *cfg, char *err, size_t errlen);
/* Re-read every certificate and key; on success new connections use them,
 * on failure (message in err) the running set stays.  0 or -1. */
int tls_server_reload(char *err, size_t errlen);
/* Release the server state (after the workers stopped). */
void tls_server_fini(void);

/*
 * Make c (an accepted, non-blocking socket) a TLS server connection: the
 * handshake starts on the first tls_handshake().  Returns 0, or AC_ENOMEM
 * when no SSL object can be made (c stays plain; close it).
 */
int tls_server_attach(struct conn *c);

/*
 * Rotate the session ticket keys when the current one is older than
 * `every` seconds (called once a second by worker 0; any thread).  Tickets
 * made with the previous key still resume (and get a new ticket) for one
 * more period.
 */
void tls_tickets_rotate(double now, double every);

/* ------------------------------------------------------------ client side */

/*
 * A client context for connections to origins: TLS 1.2+, the system trust
 * store (or only ca_file when given), peer verification when verify is
 * true, ALPN http/1.1, and a small per-host session cache so later
 * connections resume.  Shareable by every thread.  NULL with err on failure.
 * Release with tls_client_ctx_free().
 */
SSL_CTX *tls_client_ctx(const char *ca_file, bool verify, char *err, size_t errlen);
void tls_client_ctx_free(SSL_CTX **ctxp);

/*
 * Make c (a non-blocking socket; attach at any time, but call
 * tls_handshake() only once the TCP connect finished, as fetch_connect()
 * checks SO_ERROR) a TLS client connection to sni_host (may be NULL: no SNI, no name check).  With a
 * verifying context the certificate must match sni_host (a name or an IP
 * literal).  A cached session for sni_host is offered.  Returns 0 or
 * AC_ENOMEM.  Then call tls_handshake() until it returns 0.
 */
int tls_client_attach(struct conn *c, SSL_CTX *ctx, const char *sni_host);
/* The same with the two checks a backend can turn off (.ssl_sni,
 * .ssl_verify_host): send sni_host as SNI; require the certificate to name
 * it (only with a verifying context).  Sessions are still cached by name. */
int tls_client_attach_opts(struct conn *c, SSL_CTX *ctx, const char *sni_host, bool sni,
                           bool verify_host);

/* ------------------------------------------------------------ both */

/*
 * Drive the handshake: 0 when done, AC_AGAIN (c->want says which
 * readiness), AC_EPROTO when it failed (tls_conn_error() says why;
 * tls_conn_plain_http() whether the peer spoke plain HTTP).
 */
int tls_handshake(struct conn *c);
/* Why the last handshake/read/write failed (static or per-connection
 * string, valid until the connection is closed). */
const char *tls_conn_error(const struct conn *c);
/* The failed handshake began with a plain HTTP request line. */
bool tls_conn_plain_http(const struct conn *c);
/* Does OpenSSL hold bytes of this connection that a read would return
 * without the socket becoming readable (decrypted or buffered records)? */
bool tls_conn_pending(const struct conn *c);
/* The connection is being dropped in the middle of a response (origin
 * cut, timeout): close it without close_notify, so the peer sees an
 * unclean close rather than a complete close-delimited body. */
void tls_conn_abort(struct conn *c);
/* Was the session resumed (ticket)? */
bool tls_conn_resumed(const struct conn *c);
/* "TLSv1.3", the cipher name, the SNI host name ("" when none): static or
 * valid while the connection is open. */
const char *tls_conn_version(const struct conn *c);
const char *tls_conn_cipher(const struct conn *c);
const char *tls_conn_sni(const struct conn *c);
/* Did the handshake choose h2 by ALPN (the client offered it and -p
 * http2 is on)? */
bool tls_conn_alpn_h2(const struct conn *c);

/* Does the DNS name pattern (exact or "*.example.com": the star is one whole
 * left-most label) match host?  Case-insensitive; both slices. */
bool tls_name_match(struct ac_slice pattern, struct ac_slice host);

#endif /* AC_TLS_H */
