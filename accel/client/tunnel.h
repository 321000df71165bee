/*
 * tunnel.h -- bytes both ways between a client and an origin connection,
 * unparsed, after a 101 Switching Protocols (WebSocket and friends) or a
 * return (pipe), until both sides have closed.  Each direction has one
 * buffer and reads only when it is empty, so memory stays at two buffers.
 */
#ifndef AC_TUNNEL_H
#define AC_TUNNEL_H

#include "ac.h"
#include "buf.h"
#include "conn.h"

struct tunnel {
    struct conn *client, *origin;
    struct ac_iobuf *up;        /* client -> origin */
    struct ac_iobuf *down;      /* origin -> client */
    bool client_eof, origin_eof;
    bool client_shut, origin_shut;  /* our half-close passed on */
};

/*
 * Move what can be moved.  Returns 1 while the tunnel is open, with the
 * events to wait for on each side in *cev and *oev; 0 when both sides have
 * closed and both buffers are empty; -1 on an error (the tunnel is over).
 */
int tunnel_run(struct tunnel *t, int *cev, int *oev);

#endif /* AC_TUNNEL_H */
