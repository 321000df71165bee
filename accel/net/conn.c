/*
 * conn.c -- plain TCP transport and socket helpers.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t
plain_read(struct conn *c, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = read(c->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->want = EV_READ;
        return AC_AGAIN;
    }
    c->err = errno;
    return AC_EIO;
}

static ssize_t
plain_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    ssize_t n;

    if (iovcnt > IOV_MAX)
        iovcnt = IOV_MAX;
    do {
        n = writev(c->fd, iov, iovcnt);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->want = EV_WRITE;
        return AC_AGAIN;
    }
    c->err = errno;
    return AC_EIO;
}

static int
plain_shutdown(struct conn *c)
{
    return shutdown(c->fd, SHUT_WR);
}

static void
plain_close(struct conn *c)
{
    (void)c;
}

const struct conn_ops conn_plain_ops = {
    .name = "plain",
    .read = plain_read,
    .writev = plain_writev,
    .shutdown = plain_shutdown,
    .close = plain_close,
};

void
conn_init(struct conn *c, int fd, const struct conn_ops *ops)
{
    c->magic = CONN_MAGIC;
    c->fd = fd;
    c->want = 0;
    c->err = 0;
    c->ops = ops;
    c->priv = NULL;
}

void
conn_close(struct conn *c)
{
    AC_CHECK_OBJ(c, CONN_MAGIC);
    if (c->fd < 0)
        return;
    c->ops->close(c);
    close(c->fd);
    c->fd = -1;
}

void
conn_close_transport(struct conn *c)
{
    AC_CHECK_OBJ(c, CONN_MAGIC);
    c->ops->close(c);
    c->ops = &conn_plain_ops;
    c->priv = NULL;
}

int
sock_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int
sock_listen(const struct sockaddr *sa, socklen_t len, bool reuseport, int backlog)
{
    int one = 1, fd, e;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto fail;
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, len) != 0 || listen(fd, backlog) != 0)
        goto fail;
    return fd;
fail:
    e = errno;
    close(fd);
    errno = e;
    return -1;
}

int
sock_connect(const struct sockaddr *sa, socklen_t len)
{
    int one = 1, fd, e;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

const char *
sock_ntop(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)len);
    else
        snprintf(buf, len, "-");
    return buf;
}

const char *
sock_ntop_port(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port = 0;

    sock_ntop(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    if (sa->sa_family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", ip, port);
    else
        snprintf(buf, len, "%s:%u", ip, port);
    return buf;
}
