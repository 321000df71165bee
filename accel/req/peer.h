/*
 * peer.h -- the request side of the cluster (ops/cluster.h): which node a
 * cache fetch goes to, what happens when that peer fails, how long a
 * non-owner keeps a peer's object, and purge answers that wait for the
 * other members.  Hook calls from the request machine; the logic is here.
 */
#ifndef AC_PEER_H
#define AC_PEER_H

#include "ac.h"

#include <stdint.h>

struct sess;
enum step;

/*
 * A cache fetch (busy object) for key is about to be built: when a peer
 * owns key, send it there (s->be), marked with CLUSTER_HOP_HEADER.  A
 * request that came marked from a peer is never forwarded again (and the
 * marker does not reach the origin).  No-op without a cluster.
 */
void peer_route(struct sess *s, struct ac_slice key);

/*
 * The fetch from a peer failed before any answer (connect, deadline,
 * closed): the peer is skipped for a while and the request goes to the
 * origin directly.  True when it took over (state set to S_CONNECT).
 */
bool peer_fallback(struct sess *s);

/* A response head from a peer: take the owner's position field out (it is
 * never stored nor sent on) and note whether the owner is behind us. */
void peer_beresp(struct sess *s);

/* An object fetched from a peer is kept at most cluster_local_ttl (and no
 * longer than its own lifetime).  Call after the caching decision. */
void peer_local_ttl(struct sess *s);

/* Delivering s->obj to a cluster peer: add its tags (Surrogate-Key),
 * which are not part of the stored header block, so that the peer's copy
 * answers tag purges too. */
struct ac_buf;
void peer_dlv_fields(struct sess *s, struct ac_buf *t);

/* Extra store_lookup() flags for s: memory only while the node has not
 * caught up with the invalidations it missed.  Counts requests from peers. */
unsigned peer_lookup_flags(struct sess *s);

/*
 * Answer an invalidation (purge, ban) whose JSON object, without its
 * closing brace, is in s->tmpbuf: in a cluster wait up to
 * cluster_purge_wait for the live members to apply publication `ticket`,
 * then add "cluster": {"members": M, "applied": A} (application/json).
 */
enum step peer_inval_answer(struct sess *s, int status, const char *reason, uint64_t ticket);

/* S_CLWAIT: poll the publication's acknowledgements. */
enum step peer_wait_step(struct sess *s);

#endif /* AC_PEER_H */
