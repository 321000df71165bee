/*
 * conn.h -- the connection layer: one transport interface per connection
 * (plain TCP here, TLS in tls.c, behind the same ops, so the HTTP code does
 * not care), plus socket helpers.
 *
 * I/O calls never block.  They return bytes (> 0), 0 for an orderly close
 * by the peer (read only), AC_AGAIN when the call would block -- and then
 * c->want says which readiness (EV_READ or EV_WRITE) to wait for, which
 * for TLS may differ from the direction of the call -- or AC_EIO with
 * c->err set to the errno.
 */
#ifndef AC_CONN_H
#define AC_CONN_H

#include "ac.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct conn;

typedef ssize_t conn_read_f(struct conn *c, void *buf, size_t len);
typedef ssize_t conn_writev_f(struct conn *c, const struct iovec *iov, int iovcnt);
typedef int conn_shutdown_f(struct conn *c);
typedef void conn_close_f(struct conn *c);

struct conn_ops {
    const char *name;
    conn_read_f *read;
    conn_writev_f *writev;
    conn_shutdown_f *shutdown;  /* end our sending side (TLS: close_notify first); 0 or -1 */
    conn_close_f *close;        /* release transport state; the fd is closed by conn_close */
};

struct conn {
    unsigned magic;
#define CONN_MAGIC 0x3e9a51c2
    int fd;
    int want;                   /* EV_READ / EV_WRITE after AC_AGAIN */
    int err;                    /* errno after AC_EIO */
    const struct conn_ops *ops;
    void *priv;                 /* transport state (TLS session) */
};

extern const struct conn_ops conn_plain_ops;

void conn_init(struct conn *c, int fd, const struct conn_ops *ops);
static inline ssize_t
conn_read(struct conn *c, void *buf, size_t len)
{
    return c->ops->read(c, buf, len);
}
static inline ssize_t
conn_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    return c->ops->writev(c, iov, iovcnt);
}
static inline int
conn_shutdown(struct conn *c)
{
    return c->ops->shutdown(c);
}
/* Release the transport and close the fd (idempotent). */
void conn_close(struct conn *c);
/* Release the transport only (the connection becomes plain; fd kept). */
void conn_close_transport(struct conn *c);

/* Socket helpers: 0 or -1 with errno. */
int sock_nonblock(int fd);
int sock_listen(const struct sockaddr *sa, socklen_t len, bool reuseport, int backlog);
/* Non-blocking connect: returns the fd with the connect in progress (or
 * done), -1 with errno on immediate failure. */
int sock_connect(const struct sockaddr *sa, socklen_t len);
/* Printable "ip" of a socket address, into buf. */
const char *sock_ntop(const struct sockaddr *sa, char *buf, size_t len);
/* "ip:port" of a socket address. */
const char *sock_ntop_port(const struct sockaddr *sa, char *buf, size_t len);

#endif /* AC_CONN_H */
