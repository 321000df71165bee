/*
 * peer.h -- the request side of the cluster (cluster/cluster.h): which node
 * a cache fetch goes to, what happens when that peer fails, how long a
 * non-owner keeps a peer's object, and purge answers that wait for the
 * other members.  Hook calls from the request machine (req_fetch.c,
 * cache_sess.c, inval.c, admin.c); the logic is in peer.c.  Every hook is
 * a no-op without a cluster.
 */
#ifndef AC_PEER_H
#define AC_PEER_H

#include "ac.h"
#include "buf.h"

#include <stdint.h>

struct req;
enum step;

/*
 * A cache fetch (busy object) for key has its origin server chosen
 * (req->fetch.be) and its head is about to be built: when a peer owns key,
 * send it there instead (req->fetch.be becomes the peer's backend), marked
 * with CLUSTER_HOP_HEADER.  A request that came marked from a peer is never
 * forwarded again (and the marker does not reach the origin).
 */
void peer_route(struct req *req, struct ac_slice key);

/*
 * The fetch from a peer failed before any answer (connect, deadline,
 * closed): the peer is skipped for a while and the request goes to the
 * origin directly.  True when it took over (state set to R_CONNECT).
 */
bool peer_fallback(struct req *req);

/* A response head from a peer: take the owner's position field out (it is
 * never stored nor sent on) and note whether the owner is behind us. */
void peer_beresp(struct req *req);

/* An object fetched from a peer is kept at most cluster_local_ttl (and no
 * longer than its own lifetime).  Call after the caching decision. */
void peer_local_ttl(struct req *req);

/* Delivering req->obj to a cluster peer: add its tags (Surrogate-Key),
 * which are not part of the stored header block, so that the peer's copy
 * answers tag purges too, and this node's stream position. */
void peer_dlv_fields(struct req *req, struct ac_buf *t);

/* Extra store_lookup() flags for req: memory only while the node has not
 * caught up with the invalidations it missed.  Counts requests from peers. */
unsigned peer_lookup_flags(struct req *req);

/*
 * Answer an invalidation (purge, ban) whose JSON object, without its
 * closing brace, is in req->tmpbuf: in a cluster wait up to
 * cluster_purge_wait for the live members to apply publication `ticket`
 * (state R_CLWAIT), then add "cluster": {"members": M, "applied": A}
 * (application/json).  reason NULL: the status's own.
 */
enum step peer_inval_answer(struct req *req, int status, const char *reason, uint64_t ticket);

/* R_CLWAIT: poll the publication's acknowledgements. */
enum step peer_wait_step(struct req *req);

#endif /* AC_PEER_H */
