/*
 * tunnel.c -- after a 101 Switching Protocols (WebSocket and friends), or
 * for return (pipe), bytes go both ways until both sides have closed
 * (tunnel.h).  up carries client -> origin, down origin -> client; each
 * direction reads only when its buffer is empty.
 */
#include "tunnel.h"

/* Move bytes one way.  *need gets the events to wait for on each side.
 * Returns true if anything moved, false otherwise; sets *dead on an error. */
static bool
pump(struct conn *src, struct conn *dst, struct ac_iobuf *b, bool *src_eof, bool *dst_shut,
     int *need_src, int *need_dst, bool *dead)
{
    ssize_t n;

    if (ac_iobuf_len(b) > 0) {
        struct iovec iov = { (void *)(uintptr_t)ac_iobuf_head(b), ac_iobuf_len(b) };
        n = conn_writev(dst, &iov, 1);
        if (n == AC_AGAIN) {
            *need_dst |= dst->want;
            return false;
        }
        if (n < 0) {
            *dead = true;
            return false;
        }
        ac_iobuf_consume(b, (size_t)n);
        return true;
    }
    if (*src_eof) {
        if (!*dst_shut) {
            *dst_shut = true;
            (void)conn_shutdown(dst);     /* pass the half-close on */
        }
        return false;
    }
    b->start = b->end = 0;
    n = conn_read(src, b->data, b->cap);
    if (n > 0) {
        b->end = (size_t)n;
        return true;
    }
    if (n == AC_AGAIN) {
        *need_src |= src->want;
        return false;
    }
    *src_eof = true;
    return true;
}

int
tunnel_run(struct tunnel *t, int *cev, int *oev)
{
    bool dead = false;

    if (t->up->cap < t->down->cap)
        ac_iobuf_grow(t->up, t->down->cap);
    for (;;) {
        bool moved = false;
        *cev = *oev = 0;
        moved |= pump(t->client, t->origin, t->up, &t->client_eof, &t->origin_shut, cev, oev,
                      &dead);
        moved |= pump(t->origin, t->client, t->down, &t->origin_eof, &t->client_shut, oev, cev,
                      &dead);
        if (dead)
            return -1;
        if (t->client_eof && t->origin_eof && ac_iobuf_len(t->up) == 0 &&
            ac_iobuf_len(t->down) == 0)
            return 0;
        if (!moved)
            return 1;
    }
}
