/*
 * cluster_int.h -- what the three files of the cluster bus share (cluster.c:
 * the API workers and the admin listener call, start and stop; cluster_bus.c:
 * the Redis connections, the stream, applying entries; cluster_members.c:
 * heartbeats, membership, the ring's members, trimming).  Nothing outside
 * them includes it.
 *
 * Thread rules: CL's fields under "bus thread only" are touched by the bus
 * thread alone; those under "shared" only with CL.mtx held.
 */
#ifndef AC_CLUSTER_INT_H
#define AC_CLUSTER_INT_H

#include "cluster.h"
#include "clview.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>

struct pool_set;

#define CL_KEYLEN 480              /* prefix (<= 80) + "hb:" + a node id (<= 255) */
#define CL_MAX_PEERS 256            /* distinct member ids ever seen (peer backends) */
#define CL_TICKETS 4096             /* recent publications whose stream id we remember */
#define CL_QUEUE_MAX 100000         /* queued publications before they collapse to "all" */
#define CL_READ_COUNT 256           /* entries per XREAD */
#define CL_READ_BLOCK_MS 1000
#define CL_REPLY_DEADLINE 3.0       /* a command without an answer this long: reconnect */
#define CL_PEER_DOWN_MS 3000        /* a failed peer is skipped this long */
#define CL_TRIM_EVERY 10            /* heartbeats between the leader's trims */
#define CL_ACK_POLL 0.001           /* acks are polled this often while a purge waits */

enum bus_state { BUS_DOWN, BUS_CONNECTING, BUS_SYNCING, BUS_UP };

struct pub {
    struct pub *next;
    uint64_t ticket;
    enum clwire_op op;
    unsigned flags;
    bool inflight;              /* XADD sent, no answer yet */
    size_t len;
    char arg[];
};

struct peer {
    char id[CLWIRE_NODE_MAX + 1];
    struct pool_set *ps;        /* one backend (peer = true); process lifetime */
    atomic_uint_fast64_t down_until_ms;
};

struct member {                 /* snapshot row for the admin JSON and acks */
    char id[CLWIRE_NODE_MAX + 1];
    bool alive;
    bool has_ack;
    struct clwire_id ack;
};

struct ticket {
    uint64_t t;
    bool has_id;
    struct clwire_id id;
};

#define CL_COUNTERS(X) \
    X(published, "entries added to the stream by this node") \
    X(publish_failed, "XADD errors (the entry stays queued)") \
    X(applied, "entries of other nodes applied") \
    X(replayed, "entries applied while catching up after start or reconnect") \
    X(entries_bad, "entries that could not be decoded (the cache was dropped)") \
    X(cache_dropped, "times this node dropped its whole cache (missed entries)") \
    X(reconnects, "connections to the bus made") \
    X(bus_errors, "bus connections lost or refused") \
    X(trims, "stream trims that removed entries (leader)") \
    X(queue_collapsed, "times the queue overflowed and became one drop-all entry")

struct cluster_state {
    unsigned magic;
#define CLUSTER_MAGIC 0x2d8c61f4
    bool on;
    const struct config *cfg;
    struct store *st;
    char name[128], self[CLWIRE_NODE_MAX + 1], url[300];
    char host[256];
    int port, db;
    char k_prefix[160];         /* "accel:{NAME}:" */
    char hop[CLWIRE_NODE_MAX + 80]; /* "NAME SELF" */

    pthread_t thr;
    bool thr_started;
    struct ev_loop *loop;
    ev_async wake_async, stop_async;
    ev_timer reconnect_tmr, hb_tmr, watchdog_tmr, ackpoll_tmr;

    /* bus thread only */
    redisAsyncContext *cmd, *rd;
    bool cmd_ready, rd_ready, reading;
    unsigned cmd_pending;
    double cmd_progress, rd_progress, connect_start;
    unsigned hb_count;
    _Atomic bool leaving;       /* cluster_leave() ran: no more heartbeats */
    char sync_epoch[64];
    struct clwire_id sync_trimmed, sync_tail;
    bool sync_has_trimmed;
    bool have_pos;              /* pos/epoch known (durable or from this run) */
    char epoch[64];
    struct clwire_id pos;
    bool caught_up;             /* the last XREAD left nothing behind */
    struct clwire_id last_persisted;

    /* shared with workers, under mtx */
    pthread_mutex_t mtx;
    enum bus_state state;
    double state_since;
    struct pub *qhead, *qtail;
    size_t qlen;
    uint64_t next_ticket;
    struct ticket tickets[CL_TICKETS];
    struct peer peers[CL_MAX_PEERS];
    unsigned npeers;
    struct clview view;         /* live members + self */
    int view_peer[CLVIEW_MAX];  /* view member -> peers[] index, -1: self */
    struct member members[CLVIEW_MAX];
    unsigned nmembers;
    struct clwire_id pos_snap;
    bool pos_snap_known;
    struct clwire_id published_max;  /* the newest id our own XADDs got */
    char epoch_snap[64];
    double wait_until;          /* a purge waits for acks until then */
    atomic_bool disk_ok;
#define X(n, h) atomic_uint_fast64_t n;
    CL_COUNTERS(X)
#undef X
};

/* The bus (see cluster.c and docs/architecture.md, "Globals"). */
extern struct cluster_state CL;


struct idlist;

/* cluster_bus.c */
double cl_wall_now(void);
uint64_t cl_mono_ms(void);
/* "accel:{NAME}:" + suffix into buf; returns buf. */
const char *cl_key(char *buf, size_t len, const char *suffix);
void cl_set_state(enum bus_state s);
/* A string or status reply as a slice (empty for anything else). */
struct ac_slice cl_rs(const redisReply *r);
/* Count a command sent on cmd / answered (the watchdog's deadline). */
void cl_cmd_sent(int rc);
void cl_cmd_answered(void);
/* A reply callback that only counts the answer. */
void cl_on_reply_counted(redisAsyncContext *c, void *r, void *priv);
void cl_bus_connect(void);
/* Both connections go; queued publications wait for the next one. */
void cl_bus_down(const char *why);
void cl_flush_queue(void);
void cl_start_read(void);
void cl_on_reconnect_tmr(struct ev_loop *loop, ev_timer *t, int revents);
void cl_on_watchdog(struct ev_loop *loop, ev_timer *t, int revents);

/* cluster_members.c */
void cl_heartbeat(void);
/* HGETALL of the acks; with l (the member ids read), membership follows. */
void cl_request_acks(struct idlist *l);
/* The view from the live members (CL.mtx held). */
void cl_view_rebuild(const char *const *ids, unsigned n);

#endif /* AC_CLUSTER_INT_H */
