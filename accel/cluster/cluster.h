/*
 * cluster.h -- several accel nodes acting as one cache, coordinated
 * through Redis (-p cluster_bus=redis://HOST:PORT[/DB]).  docs/cluster.md
 * has the design, the Redis keys and the guarantees.
 *
 *  - membership: each node refreshes a heartbeat key with a TTL; the live
 *    members form a consistent-hash ring (clview.h) that names the owner of
 *    each cache key.  A miss on a non-owner is fetched from the owner (one
 *    hop, marked with CLUSTER_HOP_HEADER so the owner never forwards it).
 *  - invalidation: every purge, tag purge and ban accepted on a node is
 *    applied there, then appended to a Redis Stream (clwire.h); every node
 *    consumes the stream, applies the entries of the others, and keeps its
 *    position durably in its store, so a restarted node replays what it
 *    missed before it serves from its disk tier.
 *
 * The bus runs on a thread of its own (one libev loop, two hiredis
 * connections); nothing here blocks a worker: workers read snapshots under
 * a mutex and hand publications over through a queue and an ev_async.
 */
#ifndef AC_CLUSTER_H
#define AC_CLUSTER_H

#include "ac.h"
#include "buf.h"
#include "clwire.h"
#include "config.h"

struct backend;
struct store;

/* The field a peer fetch carries: "<cluster_name> <sender id>". */
#define CLUSTER_HOP_HEADER "X-Accel-Peer"

/*
 * Main thread, after the store is open and before workers start: check the
 * cluster parameters and start the bus thread (which connects on its own;
 * a Redis that is down is not an error).  No-op without cluster_bus.
 * 0, or -1 with a message (bad cluster_bus or cluster_addr).
 */
int cluster_start(const struct config *cfg, struct store *st, char *err, size_t errlen);
/* Main thread, when a stop begins: take this node off the ring at once
 * (its heartbeat key is deleted; a blocking call of at most half a second),
 * so the others stop sending it fetches while it drains. */
void cluster_leave(void);
/* Main thread, after the workers stopped: stop the thread, free all. */
void cluster_stop(void);

/* Is this node part of a cluster (cluster_bus given)? */
bool cluster_on(void);
/* This node's id (its cluster_addr) and the cluster's name ("" alone). */
const char *cluster_self(void);
const char *cluster_name(void);

/* CLUSTER_HOP_HEADER's value for this node (process lifetime). */
struct ac_slice cluster_hop_value(void);

/*
 * Owner of a cache key: the peer backend to fetch it from (valid for the
 * process lifetime), or NULL when this node owns it, or there is no
 * cluster.  Peers recently reported failed are skipped (their keys go to
 * the next member on the ring).  Any thread.
 */
const struct backend *cluster_owner(struct ac_slice key);
/* The id of the key's owner into out (this node's when alone). */
void cluster_owner_id(struct ac_slice key, char *out, size_t outlen);
/* A fetch from peer be failed (connect, deadline): skip it for a while. */
void cluster_peer_failed(const struct backend *be);

/*
 * Peer fetches and invalidations in flight: the owner tells the peer how
 * far it has applied the stream (cluster_pos_fmt() into a response field),
 * and the peer keeps the answer only when the owner is not behind what the
 * peer itself has applied or published (cluster_peer_behind()): so a copy
 * fetched from an owner that has not applied a purge yet is never kept.
 * The value is "EPOCH MS-SEQ"; any thread.
 */
void cluster_pos_fmt(char *out, size_t outlen);
bool cluster_peer_behind(struct ac_slice owner_pos);

/* May lookups use the disk tier?  False from start-up until this node has
 * replayed the invalidations it missed (always true without a cluster or
 * without a disk tier). */
bool cluster_disk_ok(void);

/*
 * An invalidation accepted on this node and already applied here: queue it
 * for the stream (published at once when the bus is up, else when it comes
 * back).  arg as in clwire.h.  Returns a ticket for cluster_ticket_poll()
 * (0 without a cluster); cluster_ticket_last() is the last ticket this
 * thread got (for callers below an API that does not pass it up).
 */
uint64_t cluster_publish(enum clwire_op op, unsigned flags, struct ac_slice arg);
uint64_t cluster_ticket_last(void);
/* bans.h's added hook (main.c wires it): a ban accepted here, published. */
void cluster_ban_added(struct ac_slice canon);

struct cluster_ack {
    unsigned members;           /* live members, this node included */
    unsigned applied;           /* of those, how many applied the entry */
    bool bus_up;
    bool queued;                /* not in the stream yet (bus down or busy) */
};

/* How far ticket t got; true when there is nothing left to wait for (every
 * live member applied it, or the bus is down). */
bool cluster_ticket_poll(uint64_t t, struct cluster_ack *a);
/* `"cluster": {...}` member for a purge answer, from a poll result. */
void cluster_ack_json(struct ac_buf *b, const struct cluster_ack *a);

/* The admin listener's GET /cluster document. */
void cluster_json(struct ac_buf *b);

#endif /* AC_CLUSTER_H */
