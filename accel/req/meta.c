/*
 * meta.c -- who asked (struct req_meta, req.h): the client address, TLS
 * state and local address of the connection a request came on, looked up
 * while the connection exists and copied out for requests that outlive it
 * (a fill that lost its client) or were caused by it (background
 * revalidation, later ESI includes and peer fetches).
 */
#include "req.h"

#include "conn.h"
#include "tls.h"

#include <stdio.h>

void
req_meta_init(struct req_meta *m, const struct sockaddr *peer, socklen_t peerlen,
              const struct conn *c, bool admin)
{
    memset(m, 0, sizeof(*m));
    if (peer != NULL) {
        memcpy(&m->peer, peer, AC_MIN((size_t)peerlen, sizeof(m->peer)));
        sock_ntop(peer, m->client_ip, sizeof(m->client_ip));
    } else {
        snprintf(m->client_ip, sizeof(m->client_ip), "-");
    }
    m->conn = c;
    m->admin = admin;
    m->tls_version = m->tls_cipher = "";
}

void
req_meta_copy(struct req_meta *dst, const struct req_meta *src)
{
    if (dst == src)
        return;
    *dst = *src;
    if (src->conn == NULL)
        return;
    /* resolve what needs the connection, while it is there */
    (void)req_meta_local(src, &dst->local);
    dst->tls_version = req_meta_tls_version(src);
    dst->tls_cipher = req_meta_tls_cipher(src);
    snprintf(dst->tls_sni, sizeof(dst->tls_sni), "%s", req_meta_tls_sni(src));
    dst->conn = NULL;
}

int
req_meta_local(const struct req_meta *m, struct sockaddr_storage *ss)
{
    socklen_t sl = sizeof(*ss);

    if (m->conn == NULL) {
        *ss = m->local;
        return m->local.ss_family != 0 ? 0 : -1;
    }
    memset(ss, 0, sizeof(*ss));
    if (m->conn->fd < 0 || getsockname(m->conn->fd, (struct sockaddr *)ss, &sl) != 0)
        return -1;
    return 0;
}

const char *
req_meta_tls_version(const struct req_meta *m)
{
    if (m->conn == NULL)
        return m->tls_version != NULL ? m->tls_version : "";
    return conn_is_tls(m->conn) ? tls_conn_version(m->conn) : "";
}

const char *
req_meta_tls_cipher(const struct req_meta *m)
{
    if (m->conn == NULL)
        return m->tls_cipher != NULL ? m->tls_cipher : "";
    return conn_is_tls(m->conn) ? tls_conn_cipher(m->conn) : "";
}

const char *
req_meta_tls_sni(const struct req_meta *m)
{
    if (m->conn == NULL)
        return m->tls_sni;
    return conn_is_tls(m->conn) ? tls_conn_sni(m->conn) : "";
}
