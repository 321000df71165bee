/*
 * tunnel.c -- after a 101 Switching Protocols (WebSocket and friends) the
 * session relays bytes both ways until both sides have closed.  rbuf carries
 * client → origin, relay carries origin → client; each direction reads only
 * when its buffer is empty, so memory stays at two buffers.
 */
#include "sess.h"

#include <sys/socket.h>

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

enum step
tunnel_step(struct sess *s)
{
    bool dead = false;

    if (s->niov > 0) {              /* the 101 head goes out first */
        enum step r = sess_flush(s);
        if (r != STEP_MORE)
            return r;
        STAT_INC(s->w, tunnel);
    }
    if (s->timed_out)
        return STEP_DONE;
    if (s->rbuf.cap < s->relay.cap)
        ac_iobuf_grow(&s->rbuf, s->relay.cap);
    for (;;) {
        int cev = 0, oev = 0;
        bool moved = false;
        moved |= pump(&s->c, &s->oc->c, &s->rbuf, &s->client_eof, &s->origin_shut, &cev, &oev,
                      &dead);
        moved |= pump(&s->oc->c, &s->c, &s->relay, &s->origin_eof, &s->client_shut, &oev, &cev,
                      &dead);
        if (dead)
            return STEP_DONE;
        if (s->client_eof && s->origin_eof && ac_iobuf_len(&s->rbuf) == 0 &&
            ac_iobuf_len(&s->relay) == 0)
            return STEP_DONE;
        if (moved)
            continue;
        sess_want(s, cev, oev);
        sess_timer(s, s->w->cfg->p.timeout_idle);
        return STEP_WAIT;
    }
}
