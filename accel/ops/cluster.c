/*
 * cluster.c -- the cluster bus: membership, the ring's members, and the
 * invalidation stream, over Redis (cluster.h, docs/cluster.md).
 *
 * One thread, one libev loop, two hiredis connections to the same Redis:
 *   cmd  heartbeats, membership, acknowledgements, XADD, trimming;
 *   rd   nothing but XREAD BLOCK on the stream, so a new entry reaches
 *        every node as soon as Redis has it.
 * Either connection failing takes both down; a timer reconnects.  While
 * the bus is down, invalidations accepted here are queued (and applied
 * locally already), the last known ring stays in use, and a peer that does
 * not answer is skipped by the requests themselves (cluster_peer_failed).
 *
 * Redis keys (NAME is cluster_name; the {NAME} hash tag keeps them in one
 * slot of a Redis Cluster):
 *   accel:{NAME}:hb:ID     heartbeat, SET ... PX 3 x cluster_heartbeat
 *   accel:{NAME}:nodes     set of member ids ever seen (pruned by the leader)
 *   accel:{NAME}:acks      hash: member id -> last applied stream id
 *   accel:{NAME}:inval     the invalidation stream (clwire.h entries)
 *   accel:{NAME}:epoch     random value made once per Redis data set, so a
 *                          Redis that lost its data is noticed
 *   accel:{NAME}:trimmed   the MINID of the last trim that removed entries
 *
 * Threads: workers call cluster_owner(), cluster_publish(),
 * cluster_ticket_poll() and cluster_json(); they touch only the snapshot
 * and the queue, under CL.mtx.  Everything else is the bus thread's.
 */
#include "cluster.h"

#include "bans.h"
#include "clview.h"
#include "conn.h"
#include "log.h"
#include "pool.h"
#include "store.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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
static const char *const bus_names[] = { "down", "connecting", "syncing", "up" };

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

static struct {
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
} CL;

static _Thread_local uint64_t last_ticket;

static void bus_down(const char *why);
static void bus_connect(void);
static void flush_queue(void);
static void start_read(void);
static void heartbeat(void);
static void on_reply_counted(redisAsyncContext *c, void *r, void *priv);

/* ------------------------------------------------------------ helpers */

static double
wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t
mono_ms(void)
{
    return pool_now_ms();
}

static const char *
key(char *buf, size_t len, const char *suffix)
{
    snprintf(buf, len, "%s%s", CL.k_prefix, suffix);
    return buf;
}

static void
set_state(enum bus_state s)
{
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    CL.state = s;
    CL.state_since = wall_now();
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
}

static struct ac_slice
rs(const redisReply *r)
{
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        return AC_SLICE(NULL, 0);
    return AC_SLICE(r->str, r->len);
}

/* A command on cmd, counted for the watchdog. */
static void
cmd_sent(int rc)
{
    if (rc != REDIS_OK)
        return;
    if (CL.cmd_pending++ == 0)
        CL.cmd_progress = ev_now(CL.loop);
}

static void
cmd_answered(void)
{
    if (CL.cmd_pending > 0)
        CL.cmd_pending--;
    CL.cmd_progress = ev_now(CL.loop);
}

/* --------------------------------------------------------- peers, view */

/* The peer backend for member id (made on first sight, kept for good). */
static int
peer_index(const char *id)
{
    struct config_addr a;
    char err[256];

    for (unsigned i = 0; i < CL.npeers; i++)
        if (strcmp(CL.peers[i].id, id) == 0)
            return (int)i;
    if (CL.npeers == CL_MAX_PEERS)
        return -1;
    if (config_parse_addr(id, "127.0.0.1", &a, err, sizeof(err)) != 0) {
        LOG_W("cluster: member '%s' has no usable address: %s", id, err);
        return -1;
    }
    double pt = CL.cfg->p.cluster_peer_timeout;
    struct pool_set *ps = pool_set_peer(CL.cfg, &a.ss, a.len, id,
                                        AC_MIN(pt, CL.cfg->p.connect_timeout), pt);
    free(a.spec);
    struct peer *p = &CL.peers[CL.npeers];
    snprintf(p->id, sizeof(p->id), "%s", id);
    atomic_init(&p->down_until_ms, 0);
    p->ps = ps;                 /* published by the npeers store below (under mtx) */
    return (int)CL.npeers++;
}

/* Rebuild the view from the live members (the caller holds mtx). */
static void
view_rebuild(const char *const *ids, unsigned n)
{
    const char *all[CLVIEW_MAX + 1];
    unsigned k = 0;
    bool self_in = false;

    for (unsigned i = 0; i < n && k < CLVIEW_MAX; i++) {
        all[k++] = ids[i];
        self_in = self_in || strcmp(ids[i], CL.self) == 0;
    }
    if (!self_in && k < CLVIEW_MAX + 1)
        all[k++] = CL.self;     /* this node serves, so it owns its share */
    clview_free(&CL.view);
    clview_build(&CL.view, all, k);
    for (unsigned i = 0; i < CL.view.n; i++)
        CL.view_peer[i] = strcmp(CL.view.id[i], CL.self) == 0 ? -1 : peer_index(CL.view.id[i]);
}

struct usable_arg {
    uint64_t now_ms;
};

static bool
member_usable(unsigned m, void *arg)
{
    struct usable_arg *a = arg;
    int pi = CL.view_peer[m];

    if (pi < 0)
        return true;            /* this node */
    return atomic_load_explicit(&CL.peers[pi].down_until_ms, memory_order_relaxed) <= a->now_ms;
}

const struct backend *
cluster_owner(struct ac_slice k)
{
    const struct backend *be = NULL;
    struct usable_arg a = { mono_ms() };
    int m;

    if (!CL.on)
        return NULL;
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    m = clview_owner(&CL.view, k, member_usable, &a);
    if (m >= 0 && CL.view_peer[m] >= 0)
        be = &CL.peers[CL.view_peer[m]].ps->be[0];
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    return be;
}

void
cluster_owner_id(struct ac_slice k, char *out, size_t outlen)
{
    struct usable_arg a = { mono_ms() };
    int m;

    snprintf(out, outlen, "%s", CL.on ? CL.self : "");
    if (!CL.on)
        return;
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    m = clview_owner(&CL.view, k, member_usable, &a);
    if (m >= 0)
        snprintf(out, outlen, "%s", CL.view.id[m]);
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
}

void
cluster_peer_failed(const struct backend *be)
{
    if (!CL.on || be == NULL || !be->peer)
        return;
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    for (unsigned i = 0; i < CL.npeers; i++)
        if (&CL.peers[i].ps->be[0] == be)
            atomic_store(&CL.peers[i].down_until_ms, mono_ms() + CL_PEER_DOWN_MS);
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
}

struct ac_slice
cluster_hop_value(void)
{
    return AC_SLICE(CL.hop, strlen(CL.hop));
}

bool
cluster_on(void)
{
    return CL.on;
}

const char *
cluster_self(void)
{
    return CL.on ? CL.self : "";
}

const char *
cluster_name(void)
{
    return CL.on ? CL.name : "";
}

bool
cluster_disk_ok(void)
{
    return !CL.on || atomic_load_explicit(&CL.disk_ok, memory_order_acquire);
}

/* --------------------------------------------------------- publishing */

uint64_t
cluster_publish(enum clwire_op op, unsigned flags, struct ac_slice arg)
{
    struct pub *p;
    uint64_t t;

    if (!CL.on)
        return 0;
    if (arg.len > CLWIRE_ARG_MAX) {
        op = CLWIRE_ALL;        /* cannot be carried: drop everything instead */
        arg = AC_SLICE("", 0);
    }
    p = ac_xmalloc(sizeof(*p) + arg.len);
    p->next = NULL;
    p->op = op;
    p->flags = flags;
    p->inflight = false;
    p->len = arg.len;
    if (arg.len)
        memcpy(p->arg, arg.p, arg.len);
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    t = p->ticket = ++CL.next_ticket;
    CL.tickets[t % CL_TICKETS] = (struct ticket){ t, false, { 0, 0 } };
    if (CL.qlen >= CL_QUEUE_MAX) {
        /* Too much to carry: one "drop everything" entry stands for all
         * of it (the entries not yet sent; sent ones stay for their answer). */
        struct pub **pp = &CL.qhead, *q;
        CL.qtail = NULL;
        while ((q = *pp) != NULL) {
            if (q->inflight) {
                CL.qtail = q;
                pp = &q->next;
                continue;
            }
            *pp = q->next;
            free(q);
            CL.qlen--;
        }
        p->op = CLWIRE_ALL;
        p->len = 0;
        atomic_fetch_add(&CL.queue_collapsed, 1);
    }
    if (CL.qtail != NULL)
        CL.qtail->next = p;
    else
        CL.qhead = p;
    CL.qtail = p;
    CL.qlen++;
    double wait = CL.cfg->p.cluster_purge_wait;
    if (wait > 0)
        CL.wait_until = wall_now() + wait;
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    ev_async_send(CL.loop, &CL.wake_async);
    last_ticket = t;
    return t;
}

void
cluster_pos_fmt(char *out, size_t outlen)
{
    char idb[CLWIRE_ID_STRMAX];

    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    if (CL.pos_snap_known)
        snprintf(out, outlen, "%s %s", CL.epoch_snap, clwire_id_fmt(CL.pos_snap, idb));
    else
        snprintf(out, outlen, "- 0-0");
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
}

bool
cluster_peer_behind(struct ac_slice v)
{
    const char *sp = v.p != NULL ? memchr(v.p, ' ', v.len) : NULL;
    struct clwire_id theirs, mine;
    bool behind = true;

    if (sp == NULL || clwire_id_parse(AC_SLICE(sp + 1, (size_t)(v.p + v.len - sp - 1)),
                                      &theirs) != 0)
        return true;
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    mine = CL.pos_snap;
    if (clwire_id_cmp(CL.published_max, mine) > 0)
        mine = CL.published_max;
    /* same data set, nothing of ours still unpublished, and the owner has
     * applied at least what we have */
    if (CL.pos_snap_known && CL.qlen == 0 && (size_t)(sp - v.p) == strlen(CL.epoch_snap) &&
        memcmp(v.p, CL.epoch_snap, (size_t)(sp - v.p)) == 0)
        behind = clwire_id_cmp(theirs, mine) < 0;
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    return behind;
}

uint64_t
cluster_ticket_last(void)
{
    return last_ticket;
}

bool
cluster_ticket_poll(uint64_t t, struct cluster_ack *a)
{
    const struct ticket *tk;

    memset(a, 0, sizeof(*a));
    if (!CL.on || t == 0)
        return true;
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    tk = &CL.tickets[t % CL_TICKETS];
    a->bus_up = CL.state == BUS_UP;
    a->members = 1;
    a->applied = 1;             /* this node applied it before publishing */
    for (unsigned i = 0; i < CL.nmembers; i++)
        if (CL.members[i].alive && strcmp(CL.members[i].id, CL.self) != 0)
            a->members++;
    if (tk->t != t || !tk->has_id) {
        a->queued = tk->t == t;
    } else {
        for (unsigned i = 0; i < CL.nmembers; i++) {
            const struct member *m = &CL.members[i];
            if (m->alive && strcmp(m->id, CL.self) != 0 && m->has_ack &&
                clwire_id_cmp(m->ack, tk->id) >= 0)
                a->applied++;
        }
    }
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    return !a->bus_up || (!a->queued && a->applied >= a->members) || tk->t != t;
}

void
cluster_ack_json(struct ac_buf *b, const struct cluster_ack *a)
{
    ac_buf_printf(b, "\"cluster\": {\"members\": %u, \"applied\": %u, \"bus\": \"%s\"%s}",
                  a->members, a->applied, a->bus_up ? "up" : "down",
                  a->queued ? ", \"queued\": true" : "");
}

/* Bus thread: a publication was answered (id: its stream id) or failed. */
static void
on_xadd(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;
    struct pub *p = priv, **pp;
    struct clwire_id id;

    (void)c;
    if (r == NULL)
        return;                 /* connection gone: bus_down() re-queues */
    cmd_answered();
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    p->inflight = false;
    if (r->type == REDIS_REPLY_ERROR || clwire_id_parse(rs(r), &id) != 0) {
        AC_ZERO(pthread_mutex_unlock(&CL.mtx));
        atomic_fetch_add(&CL.publish_failed, 1);
        LOG_W("cluster: XADD failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "bad id");
        bus_down("XADD failed");
        return;
    }
    if (clwire_id_cmp(id, CL.published_max) > 0)
        CL.published_max = id;
    struct ticket *tk = &CL.tickets[p->ticket % CL_TICKETS];
    if (tk->t == p->ticket) {
        tk->has_id = true;
        tk->id = id;
    }
    for (pp = &CL.qhead; *pp != NULL && *pp != p; pp = &(*pp)->next)
        ;
    if (*pp == p) {
        *pp = p->next;
        if (CL.qtail == p) {
            CL.qtail = NULL;
            for (struct pub *q = CL.qhead; q != NULL; q = q->next)
                CL.qtail = q;
        }
        CL.qlen--;
        free(p);
    }
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    atomic_fetch_add(&CL.published, 1);
}

/* Bus thread: send every queued publication not yet sent (in order). */
static void
flush_queue(void)
{
    char k[CL_KEYLEN];

    if (CL.state != BUS_UP || CL.cmd == NULL)
        return;
    key(k, sizeof(k), "inval");
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    for (struct pub *p = CL.qhead; p != NULL; p = p->next) {
        const char *argv[3 + CLWIRE_NFIELDS];
        size_t argvlen[3 + CLWIRE_NFIELDS];
        struct clwire_entry e = { p->op, p->flags, AC_SLICE(CL.self, strlen(CL.self)),
                                  AC_SLICE(p->arg, p->len) };
        if (p->inflight)
            continue;
        argv[0] = "XADD";
        argvlen[0] = 4;
        argv[1] = k;
        argvlen[1] = strlen(k);
        argv[2] = "*";
        argvlen[2] = 1;
        int n = clwire_encode(&e, argv + 3, argvlen + 3);
        int rc = redisAsyncCommandArgv(CL.cmd, on_xadd, p, 3 + n, argv, argvlen);
        if (rc != REDIS_OK)
            break;
        cmd_sent(rc);
        p->inflight = true;
    }
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
}

/* ---------------------------------------------------- applying entries */

static void
drop_cache(const char *why)
{
    char err[256];

    LOG_W("cluster: dropping the whole cache: %s", why);
    if (bans_add_local(CL.st, AC_LIT("obj.status >= 0"), wall_now(), NULL, err, sizeof(err)) != 0)
        LOG_E("cluster: could not drop the cache: %s", err);
    atomic_fetch_add(&CL.cache_dropped, 1);
}

static void
apply(const struct clwire_entry *e)
{
    unsigned sf = (e->flags & CLWIRE_SOFT) ? STORE_PURGE_SOFT : 0;
    double now = wall_now();
    char err[256];
    int r = STORE_OK;

    switch (e->op) {
    case CLWIRE_KEY:
        r = store_purge_key(CL.st, (struct store_bytes){ e->arg.p, e->arg.len }, sf, now, NULL);
        break;
    case CLWIRE_TAG:
        r = store_purge_tag(CL.st, (struct store_bytes){ e->arg.p, e->arg.len }, sf, now, NULL);
        break;
    case CLWIRE_BAN:
        if (bans_add_local(CL.st, e->arg, now, NULL, err, sizeof(err)) != 0) {
            LOG_W("cluster: ban from %.*s not applied (%s): dropping the cache instead",
                  AC_SLICE_ARG(e->node), err);
            drop_cache("a ban that does not parse here");
        }
        break;
    case CLWIRE_ALL:
        drop_cache("a member asked for it (its queue overflowed, or an admin)");
        break;
    }
    if (r != STORE_OK)
        LOG_W("cluster: %s purge not applied: %s", clwire_op_name(e->op), store_strerror(r));
}

/* One XREAD entry [id, [f, v, ...]]: apply it unless it is ours.  The
 * position moves on even for a bad entry, after the cache was dropped. */
static void
apply_reply_entry(const redisReply *en)
{
    struct ac_slice fv[32];
    struct clwire_entry e;
    struct clwire_id id;
    const char *why = "not an entry";
    size_t n = 0;

    if (en->type != REDIS_REPLY_ARRAY || en->elements < 1 ||
        clwire_id_parse(rs(en->element[0]), &id) != 0)
        return;                 /* no id: nothing to stand on (Redis never sends this) */
    if (en->elements >= 2 && en->element[1]->type == REDIS_REPLY_ARRAY &&
        en->element[1]->elements <= AC_ARRAY_LEN(fv)) {
        const redisReply *a = en->element[1];
        for (n = 0; n < a->elements; n++)
            fv[n] = rs(a->element[n]);
        if (clwire_decode(fv, n, &e, &why) == 0) {
            if (!ac_slice_eq(e.node, AC_SLICE(CL.self, strlen(CL.self)))) {
                apply(&e);
                atomic_fetch_add(&CL.applied, 1);
                if (!atomic_load(&CL.disk_ok))
                    atomic_fetch_add(&CL.replayed, 1);
            }
            CL.pos = id;
            return;
        }
    }
    atomic_fetch_add(&CL.entries_bad, 1);
    LOG_W("cluster: stream entry %llu-%llu: %s", (unsigned long long)id.ms,
          (unsigned long long)id.seq, why);
    drop_cache("an entry that cannot be read");
    CL.pos = id;
}

/* Keep the position in the store (durable) and tell the others. */
static void
persist_position(void)
{
    char v[160], idb[CLWIRE_ID_STRMAX], k[200];

    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    CL.pos_snap = CL.pos;
    CL.pos_snap_known = true;
    snprintf(CL.epoch_snap, sizeof(CL.epoch_snap), "%s", CL.epoch);
    for (unsigned i = 0; i < CL.nmembers; i++)
        if (strcmp(CL.members[i].id, CL.self) == 0) {
            CL.members[i].ack = CL.pos;
            CL.members[i].has_ack = true;
        }
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    if (clwire_id_cmp(CL.pos, CL.last_persisted) != 0) {
        int l = snprintf(v, sizeof(v), "%s %s", CL.epoch, clwire_id_fmt(CL.pos, idb));
        char mk[200];
        int ml = snprintf(mk, sizeof(mk), "cluster:%s", CL.name);
        if (ml > 64)
            ml = 64;
        if (store_meta_put(CL.st, (struct store_bytes){ mk, (size_t)ml },
                           (struct store_bytes){ v, (size_t)l }) != STORE_OK)
            LOG_W("cluster: could not record the stream position in the store");
        CL.last_persisted = CL.pos;
    }
    if (CL.cmd != NULL && CL.state == BUS_UP)
        cmd_sent(redisAsyncCommand(CL.cmd, on_reply_counted, NULL, "HSET %s %s %s",
                                   key(k, sizeof(k), "acks"), CL.self,
                                   clwire_id_fmt(CL.pos, idb)));
}

static void
on_xread(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;
    size_t got = 0;

    (void)c;
    (void)priv;
    if (r == NULL)
        return;
    CL.reading = false;
    CL.rd_progress = ev_now(CL.loop);
    if (r->type == REDIS_REPLY_ERROR) {
        LOG_W("cluster: XREAD: %s", r->str);
        bus_down("XREAD failed");
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *s = r->element[i];
            if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
                s->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t j = 0; j < s->element[1]->elements; j++, got++)
                apply_reply_entry(s->element[1]->element[j]);
        }
    }
    if (got > 0)
        persist_position();
    CL.caught_up = got < CL_READ_COUNT;
    if (CL.caught_up && !atomic_load(&CL.disk_ok)) {
        atomic_store_explicit(&CL.disk_ok, true, memory_order_release);
        LOG_I("cluster: caught up with the invalidation stream (%llu replayed); the disk "
              "tier is in use", (unsigned long long)atomic_load(&CL.replayed));
    }
    start_read();
}

static void
start_read(void)
{
    char k[CL_KEYLEN], idb[CLWIRE_ID_STRMAX], cnt[16], blk[16];

    if (CL.state != BUS_UP || CL.rd == NULL || !CL.rd_ready || CL.reading)
        return;
    snprintf(cnt, sizeof(cnt), "%d", CL_READ_COUNT);
    snprintf(blk, sizeof(blk), "%d", CL_READ_BLOCK_MS);
    if (redisAsyncCommand(CL.rd, on_xread, NULL, "XREAD COUNT %s BLOCK %s STREAMS %s %s", cnt, blk,
                          key(k, sizeof(k), "inval"), clwire_id_fmt(CL.pos, idb)) == REDIS_OK) {
        CL.reading = true;
        CL.rd_progress = ev_now(CL.loop);
    }
}

/* ------------------------------------------------ connecting, syncing */

/* Where to start reading: the durable position if it belongs to this
 * Redis data set and was not trimmed away; otherwise what is safe. */
static void
sync_decide(void)
{
    char buf[STORE_META_MAX + 1], mk[200];
    size_t len = 0;
    int ml = snprintf(mk, sizeof(mk), "cluster:%s", CL.name);

    if (ml > 64)
        ml = 64;
    if (!CL.have_pos &&
        store_meta_get(CL.st, (struct store_bytes){ mk, (size_t)ml }, buf, sizeof(buf) - 1,
                       &len) == STORE_OK) {
        buf[len] = '\0';
        char *sp = strchr(buf, ' ');
        if (sp != NULL && clwire_id_parse(AC_SLICE(sp + 1, strlen(sp + 1)), &CL.pos) == 0 &&
            (size_t)(sp - buf) < sizeof(CL.epoch)) {
            memcpy(CL.epoch, buf, (size_t)(sp - buf));
            CL.epoch[sp - buf] = '\0';
            CL.have_pos = true;
            CL.caught_up = false;   /* we were down: unknown */
            CL.last_persisted = CL.pos;
        }
    }
    if (CL.have_pos && strcmp(CL.epoch, CL.sync_epoch) == 0) {
        if (CL.sync_has_trimmed && clwire_id_cmp(CL.pos, CL.sync_trimmed) < 0) {
            drop_cache("entries this node had not applied were trimmed from the stream");
            CL.pos = CL.sync_tail;
        }
    } else if (CL.have_pos) {
        /* Redis lost its data (restarted without persistence, or another
         * Redis): its stream starts over.  A node that had read everything
         * before the loss missed nothing; any other cannot know. */
        if (!CL.caught_up)
            drop_cache("the bus lost its data while this node was behind");
        LOG_W("cluster: the bus has a new data set (epoch %s, was %s)", CL.sync_epoch, CL.epoch);
        CL.pos = (struct clwire_id){ 0, 0 };
    } else {
        /* First time in this cluster: a disk tier that holds objects may
         * hold some that were purged before we joined. */
        struct store_stats ss;
        store_stats(CL.st, &ss);
        if (ss.disk_objects > 0)
            drop_cache("joining a cluster with a disk tier of unknown history");
        CL.pos = CL.sync_tail;
    }
    snprintf(CL.epoch, sizeof(CL.epoch), "%s", CL.sync_epoch);
    CL.have_pos = true;
    CL.last_persisted = (struct clwire_id){ UINT64_MAX, UINT64_MAX };
    persist_position();
}

static void
on_sync(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;
    uintptr_t step = (uintptr_t)priv;

    (void)c;
    if (r == NULL)
        return;
    cmd_answered();
    if (r->type == REDIS_REPLY_ERROR) {
        LOG_W("cluster: bus sync step %u: %s", (unsigned)step, r->str);
        bus_down("sync failed");
        return;
    }
    switch (step) {
    case 1: {                   /* GET epoch */
        struct ac_slice e = rs(r);
        snprintf(CL.sync_epoch, sizeof(CL.sync_epoch), "%.*s", (int)AC_MIN(e.len, 60),
                 e.p ? e.p : "");
        break;
    }
    case 2:                     /* GET trimmed */
        CL.sync_has_trimmed = clwire_id_parse(rs(r), &CL.sync_trimmed) == 0;
        break;
    case 3:                     /* XREVRANGE inval + - COUNT 1 */
        CL.sync_tail = (struct clwire_id){ 0, 0 };
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements > 0)
            (void)clwire_id_parse(rs(r->element[0]->element[0]), &CL.sync_tail);
        if (CL.sync_epoch[0] == '\0') {
            bus_down("no epoch");
            return;
        }
        sync_decide();
        set_state(BUS_UP);
        LOG_I("cluster %s: bus %s up (epoch %s), reading from %llu-%llu", CL.name, CL.url,
              CL.epoch, (unsigned long long)CL.pos.ms, (unsigned long long)CL.pos.seq);
        flush_queue();
        heartbeat();
        start_read();
        break;
    }
}

static void
begin_sync(void)
{
    char k[CL_KEYLEN], rnd[64];

    set_state(BUS_SYNCING);
    snprintf(rnd, sizeof(rnd), "%08lx%08lx", (unsigned long)random(),
             (unsigned long)(wall_now() * 1000));
    CL.sync_epoch[0] = '\0';
    if (CL.db != 0)
        cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)0, "SELECT %d", CL.db));
    cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)0, "SET %s %s NX",
                               key(k, sizeof(k), "epoch"), rnd));
    cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)1, "GET %s", key(k, sizeof(k), "epoch")));
    cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)2, "GET %s",
                               key(k, sizeof(k), "trimmed")));
    cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)3, "XREVRANGE %s + - COUNT 1",
                               key(k, sizeof(k), "inval")));
}

static void
on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        /* hiredis frees c after this callback */
        if (c == CL.cmd)
            CL.cmd = NULL;
        if (c == CL.rd)
            CL.rd = NULL;
        bus_down(c->errstr);
        return;
    }
    if (c == CL.cmd) {
        CL.cmd_ready = true;
        begin_sync();
    } else if (c == CL.rd) {
        CL.rd_ready = true;
        if (CL.db != 0)
            redisAsyncCommand(CL.rd, NULL, NULL, "SELECT %d", CL.db);
        start_read();
    }
}

static void
on_disconnect(const redisAsyncContext *c, int status)
{
    (void)status;
    /* hiredis frees c after this callback */
    if (c == CL.cmd)
        CL.cmd = NULL;
    else if (c == CL.rd)
        CL.rd = NULL;
    else
        return;                 /* one we already let go */
    bus_down(c->errstr[0] ? c->errstr : "connection closed");
}

static redisAsyncContext *
open_conn(void)
{
    redisAsyncContext *c = redisAsyncConnect(CL.host, CL.port);

    if (c == NULL)
        return NULL;
    if (c->err) {
        redisAsyncFree(c);
        return NULL;
    }
    redisLibevAttach(CL.loop, c);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    return c;
}

static void
bus_connect(void)
{
    if (CL.cmd != NULL || CL.rd != NULL)
        return;
    set_state(BUS_CONNECTING);
    CL.connect_start = ev_now(CL.loop);
    CL.cmd_ready = CL.rd_ready = CL.reading = false;
    CL.cmd_pending = 0;
    CL.cmd = open_conn();
    CL.rd = open_conn();
    if (CL.cmd == NULL || CL.rd == NULL) {
        bus_down("cannot create a connection");
        return;
    }
    atomic_fetch_add(&CL.reconnects, 1);
}

/* Let both connections go; queued and in-flight publications wait for the
 * next connection (an in-flight XADD that did reach Redis is sent again:
 * entries are idempotent). */
static void
bus_down(const char *why)
{
    redisAsyncContext *c = CL.cmd, *r = CL.rd;
    bool was_up = CL.state == BUS_UP;

    if (CL.state == BUS_DOWN && c == NULL && r == NULL)
        return;
    CL.cmd = CL.rd = NULL;
    CL.cmd_ready = CL.rd_ready = CL.reading = false;
    CL.cmd_pending = 0;
    set_state(BUS_DOWN);
    if (c != NULL)
        redisAsyncFree(c);
    if (r != NULL)
        redisAsyncFree(r);
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    for (struct pub *p = CL.qhead; p != NULL; p = p->next)
        p->inflight = false;
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    atomic_fetch_add(&CL.bus_errors, 1);
    if (was_up)
        LOG_W("cluster %s: bus %s down (%s); serving on, invalidations are queued", CL.name,
              CL.url, why ? why : "?");
    if (!ev_is_active(&CL.reconnect_tmr)) {
        ev_timer_set(&CL.reconnect_tmr, 1.0, 0);
        ev_timer_start(CL.loop, &CL.reconnect_tmr);
    }
}

static void
on_reconnect_tmr(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    bus_connect();
}

/* A Redis that stopped answering (SIGSTOP, a dead network path) gives no
 * error of its own: each command gets a deadline. */
static void
on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
    double now = ev_now(loop);

    (void)t;
    (void)revents;
    if ((CL.state == BUS_CONNECTING || CL.state == BUS_SYNCING) &&
        now - CL.connect_start > CL_REPLY_DEADLINE + 2)
        bus_down("connect or sync timed out");
    else if (CL.cmd_pending > 0 && now - CL.cmd_progress > CL_REPLY_DEADLINE)
        bus_down("no answer from the bus");
    else if (CL.reading && now - CL.rd_progress > CL_READ_BLOCK_MS / 1000.0 + CL_REPLY_DEADLINE)
        bus_down("no answer to XREAD");
}

/* ----------------------------------------------------- membership */

static void
on_reply_counted(redisAsyncContext *c, void *r, void *priv)
{
    (void)c;
    (void)priv;
    if (r != NULL)
        cmd_answered();
}


struct idlist {
    unsigned n;
    char *id[CLVIEW_MAX * 2];
};

static void
idlist_free(struct idlist *l)
{
    for (unsigned i = 0; i < l->n; i++)
        free(l->id[i]);
    free(l);
}

/* XTRIM, and the mark only when entries were removed (atomically, so no
 * node can read the stream between the two without seeing the mark). */
static const char trim_lua[] =
    "local n = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1]) "
    "if n > 0 then redis.call('SET', KEYS[2], ARGV[1]) end return n";

static void
on_trim(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;

    (void)c;
    (void)priv;
    if (r == NULL)
        return;
    cmd_answered();
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        atomic_fetch_add(&CL.trims, 1);
    else if (r->type == REDIS_REPLY_ERROR)
        LOG_W("cluster: trimming the stream: %s", r->str);
}

/* The value of field name in an HGETALL reply (empty slice: none). */
static struct ac_slice
hash_field(const redisReply *h, const char *name)
{
    for (size_t j = 0; j + 1 < h->elements; j += 2)
        if (ac_slice_eq(rs(h->element[j]), AC_SLICE(name, strlen(name))))
            return rs(h->element[j + 1]);
    return AC_SLICE(NULL, 0);
}

/*
 * Leader (smallest live id) only: trim the stream below every member's
 * position, or below the retention cap; forget members not seen for the
 * retention.  A member absent past the cap finds the mark above its
 * position when it returns and drops its cache.
 */
static void
trim(const struct idlist *ids, const bool *alive, const redisReply *acks)
{
    struct clwire_id minid = { UINT64_MAX, UINT64_MAX }, cap, cut;
    uint64_t now_ms = (uint64_t)(wall_now() * 1000);
    uint64_t ret_ms = (uint64_t)(CL.cfg->p.cluster_retention * 1000);
    char k[CL_KEYLEN], k2[CL_KEYLEN], idb[CLWIRE_ID_STRMAX], sf[CLWIRE_NODE_MAX + 2];

    cap = (struct clwire_id){ now_ms > ret_ms ? now_ms - ret_ms : 0, 0 };
    for (unsigned i = 0; i < ids->n; i++) {
        struct clwire_id a = { 0, 0 }, seen = { 0, 0 };
        snprintf(sf, sizeof(sf), "@%s", ids->id[i]);
        (void)clwire_id_parse(hash_field(acks, ids->id[i]), &a);
        (void)clwire_id_parse(hash_field(acks, sf), &seen);
        if (!alive[i] && seen.ms + ret_ms < now_ms) {
            cmd_sent(redisAsyncCommand(CL.cmd, on_reply_counted, NULL, "SREM %s %s",
                                       key(k, sizeof(k), "nodes"), ids->id[i]));
            cmd_sent(redisAsyncCommand(CL.cmd, on_reply_counted, NULL, "HDEL %s %s %s",
                                       key(k, sizeof(k), "acks"), ids->id[i], sf));
            continue;
        }
        if (clwire_id_cmp(a, minid) < 0)
            minid = a;
    }
    cut = clwire_id_cmp(minid, cap) > 0 ? minid : cap;
    if (cut.ms == UINT64_MAX || (cut.ms == 0 && cut.seq == 0))
        return;
    cmd_sent(redisAsyncCommand(CL.cmd, on_trim, NULL, "EVAL %s 2 %s %s %s", trim_lua,
                               key(k, sizeof(k), "inval"), key(k2, sizeof(k2), "trimmed"),
                               clwire_id_fmt(cut, idb)));
}

static void
on_acks(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;
    struct idlist *l = priv;

    (void)c;
    if (r == NULL) {
        if (l != NULL)
            idlist_free(l);
        return;
    }
    cmd_answered();
    if (r->type != REDIS_REPLY_ARRAY) {
        if (l != NULL)
            idlist_free(l);
        return;
    }
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    for (unsigned i = 0; i < CL.nmembers; i++) {
        struct member *m = &CL.members[i];
        for (size_t j = 0; j + 1 < r->elements; j += 2)
            if (ac_slice_eq(rs(r->element[j]), AC_SLICE(m->id, strlen(m->id))))
                m->has_ack = clwire_id_parse(rs(r->element[j + 1]), &m->ack) == 0;
    }
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    if (l != NULL) {
        bool alive[CLVIEW_MAX * 2];
        const char *leader = NULL;
        AC_ZERO(pthread_mutex_lock(&CL.mtx));
        for (unsigned i = 0; i < l->n; i++) {
            alive[i] = false;
            for (unsigned j = 0; j < CL.nmembers; j++)
                if (strcmp(CL.members[j].id, l->id[i]) == 0)
                    alive[i] = CL.members[j].alive;
            if (alive[i] && (leader == NULL || strcmp(l->id[i], leader) < 0))
                leader = l->id[i];
        }
        bool lead = leader != NULL && strcmp(leader, CL.self) == 0;
        AC_ZERO(pthread_mutex_unlock(&CL.mtx));
        if (lead && CL.hb_count % CL_TRIM_EVERY == 1)
            trim(l, alive, r);
        idlist_free(l);
    }
}

static void
request_acks(struct idlist *l)
{
    char k[CL_KEYLEN];

    if (CL.cmd == NULL || CL.state != BUS_UP) {
        if (l != NULL)
            idlist_free(l);
        return;
    }
    int rc = redisAsyncCommand(CL.cmd, on_acks, l, "HGETALL %s", key(k, sizeof(k), "acks"));
    if (rc != REDIS_OK && l != NULL)
        idlist_free(l);
    cmd_sent(rc);
}

/* MGET of the heartbeat keys answered: who is alive; a new view if the
 * live set changed. */
static void
on_mget(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;
    struct idlist *l = priv;
    const char *live[CLVIEW_MAX];
    unsigned nlive = 0;
    bool changed;

    (void)c;
    if (r == NULL) {
        idlist_free(l);
        return;
    }
    cmd_answered();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != l->n) {
        idlist_free(l);
        return;
    }
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    struct member old[CLVIEW_MAX];
    unsigned nold = CL.nmembers;
    memcpy(old, CL.members, sizeof(old));
    CL.nmembers = 0;
    for (unsigned i = 0; i < l->n && CL.nmembers < CLVIEW_MAX; i++) {
        struct member *m = &CL.members[CL.nmembers++];
        memset(m, 0, sizeof(*m));
        snprintf(m->id, sizeof(m->id), "%s", l->id[i]);
        m->alive = r->element[i]->type == REDIS_REPLY_STRING || strcmp(l->id[i], CL.self) == 0;
        for (unsigned j = 0; j < nold; j++)
            if (strcmp(old[j].id, m->id) == 0) {
                m->has_ack = old[j].has_ack;
                m->ack = old[j].ack;
            }
        if (m->alive && nlive < CLVIEW_MAX)
            live[nlive++] = m->id;
    }
    /* the view is the live members plus this node */
    bool self_live = false;
    for (unsigned i = 0; i < nlive; i++)
        self_live = self_live || strcmp(live[i], CL.self) == 0;
    changed = nlive + !self_live != CL.view.n;
    for (unsigned i = 0; i < nlive && !changed; i++)
        changed = clview_find(&CL.view, live[i]) < 0;
    if (changed) {
        view_rebuild(live, nlive);
        LOG_I("cluster %s: %u live member(s)", CL.name, CL.view.n);
    }
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    request_acks(l);
}

static void
on_smembers(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;
    struct idlist *l;
    const char *argv[1 + CLVIEW_MAX * 2];
    size_t argvlen[1 + CLVIEW_MAX * 2];
    char keys[CLVIEW_MAX * 2][CL_KEYLEN];

    (void)c;
    (void)priv;
    if (r == NULL)
        return;
    cmd_answered();
    if (r->type != REDIS_REPLY_ARRAY || CL.cmd == NULL)
        return;
    l = ac_xcalloc(1, sizeof(*l));
    for (size_t i = 0; i < r->elements && l->n < CLVIEW_MAX * 2; i++) {
        struct ac_slice s = rs(r->element[i]);
        if (s.len == 0 || s.len > CLWIRE_NODE_MAX)
            continue;
        l->id[l->n] = ac_xmalloc(s.len + 1);
        memcpy(l->id[l->n], s.p, s.len);
        l->id[l->n][s.len] = '\0';
        l->n++;
    }
    if (l->n == 0) {
        idlist_free(l);
        return;
    }
    argv[0] = "MGET";
    argvlen[0] = 4;
    for (unsigned i = 0; i < l->n; i++) {
        char suf[CLWIRE_NODE_MAX + 8];
        snprintf(suf, sizeof(suf), "hb:%s", l->id[i]);
        key(keys[i], sizeof(keys[i]), suf);
        argv[1 + i] = keys[i];
        argvlen[1 + i] = strlen(keys[i]);
    }
    int rc = redisAsyncCommandArgv(CL.cmd, on_mget, l, (int)(1 + l->n), argv, argvlen);
    if (rc != REDIS_OK)
        idlist_free(l);
    cmd_sent(rc);
}

/* Refresh our heartbeat and registration, then read the membership. */
static void
heartbeat(void)
{
    char k[CL_KEYLEN], suf[CLWIRE_NODE_MAX + 8], ttl[32], v[64];

    if (CL.cmd == NULL || CL.state != BUS_UP || CL.leaving)
        return;
    CL.hb_count++;
    snprintf(suf, sizeof(suf), "hb:%s", CL.self);
    snprintf(ttl, sizeof(ttl), "%llu",
             (unsigned long long)(CL.cfg->p.cluster_heartbeat * 3000 + 0.5));
    snprintf(v, sizeof(v), "%d %.0f", (int)getpid(), wall_now());
    cmd_sent(redisAsyncCommand(CL.cmd, on_reply_counted, NULL, "SET %s %s PX %s",
                               key(k, sizeof(k), suf), v, ttl));
    cmd_sent(redisAsyncCommand(CL.cmd, on_reply_counted, NULL, "SADD %s %s",
                               key(k, sizeof(k), "nodes"), CL.self));
    snprintf(suf, sizeof(suf), "@%s", CL.self);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)(wall_now() * 1000));
    cmd_sent(redisAsyncCommand(CL.cmd, on_reply_counted, NULL, "HSET %s %s %s",
                               key(k, sizeof(k), "acks"), suf, v));
    cmd_sent(redisAsyncCommand(CL.cmd, on_smembers, NULL, "SMEMBERS %s",
                               key(k, sizeof(k), "nodes")));
}

static void
on_hb_tmr(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    heartbeat();
}

/* While a purge answer waits, poll the acknowledgements often. */
static void
on_ackpoll(struct ev_loop *loop, ev_timer *t, int revents)
{
    double until;

    (void)revents;
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    until = CL.wait_until;
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    if (wall_now() > until) {
        ev_timer_stop(loop, t);
        return;
    }
    if (CL.cmd_pending < 16)
        request_acks(NULL);
}

static void
on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    flush_queue();
    if (!ev_is_active(&CL.ackpoll_tmr)) {
        ev_timer_set(&CL.ackpoll_tmr, CL_ACK_POLL, CL_ACK_POLL);
        ev_timer_start(loop, &CL.ackpoll_tmr);
    }
}

static void
on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *
cluster_main(void *arg)
{
    (void)arg;
    bus_connect();
    ev_run(CL.loop, 0);
    /* stopping: let the connections go without reconnecting */
    redisAsyncContext *c = CL.cmd, *r = CL.rd;
    CL.cmd = CL.rd = NULL;
    if (c != NULL)
        redisAsyncFree(c);
    if (r != NULL)
        redisAsyncFree(r);
    return NULL;
}

/* ------------------------------------------------------ start, stop */

/* redis://HOST:PORT[/DB], HOST:PORT, [v6]:PORT */
static int
parse_bus(const char *url, char *err, size_t errlen)
{
    const char *p = url, *hend, *colon;
    char *end;
    long v;

    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (hend == NULL)
            goto bad;
        snprintf(CL.host, sizeof(CL.host), "%.*s", (int)(hend - p - 1), p + 1);
        colon = hend[1] == ':' ? hend + 1 : NULL;
    } else {
        colon = strchr(p, ':');
        size_t hl = colon ? (size_t)(colon - p) : strcspn(p, "/");
        if (hl == 0 || hl >= sizeof(CL.host))
            goto bad;
        snprintf(CL.host, sizeof(CL.host), "%.*s", (int)hl, p);
    }
    CL.port = 6379;
    CL.db = 0;
    if (colon != NULL) {
        v = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || v <= 0 || v > 65535 || (*end != '\0' && *end != '/'))
            goto bad;
        CL.port = (int)v;
        p = end;
    } else {
        p += strcspn(p, "/");
    }
    if (*p == '/') {
        v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 0 || v > 1000000 || *end != '\0')
            goto bad;
        CL.db = (int)v;
    } else if (*p != '\0') {
        goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen, "-p cluster_bus='%s': expected redis://HOST:PORT[/DB]", url);
    return -1;
}

int
cluster_start(const struct config *cfg, struct store *st, char *err, size_t errlen)
{
    const char *addr = cfg->cluster_addr;
    char buf[128];

    memset(&CL, 0, sizeof(CL));
    if (cfg->cluster_bus == NULL || cfg->cluster_bus[0] == '\0')
        return 0;
    if (st == NULL) {
        snprintf(err, errlen, "-p cluster_bus: a cluster needs a cache (not -s none)");
        return -1;
    }
    if (parse_bus(cfg->cluster_bus, err, errlen) != 0)
        return -1;
    snprintf(CL.url, sizeof(CL.url), "%s", cfg->cluster_bus);
    snprintf(CL.name, sizeof(CL.name), "%s",
             cfg->cluster_name && cfg->cluster_name[0] ? cfg->cluster_name : "accel");
    if (strpbrk(CL.name, "{}: \t\r\n") != NULL || strlen(CL.name) > 64) {
        snprintf(err, errlen, "-p cluster_name='%s': at most 64 characters, none of {}: or "
                 "spaces", CL.name);
        return -1;
    }
    if (addr == NULL) {
        /* the first client listener, as peers will see it */
        for (unsigned i = 0; i < cfg->nlisten && addr == NULL; i++) {
            const struct config_addr *a = &cfg->listen[i];
            if (a->admin || a->tls)
                continue;
            sock_ntop_port((const struct sockaddr *)&a->ss, buf, sizeof(buf));
            addr = buf;
        }
        if (addr == NULL || strncmp(addr, "0.0.0.0:", 8) == 0 || strncmp(addr, "[::]:", 5) == 0) {
            snprintf(err, errlen, "-p cluster_addr: give the HOST:PORT peers reach this node at "
                     "(the first plain -a listens on every address)");
            return -1;
        }
    }
    struct config_addr ca;
    if (strlen(addr) > CLWIRE_NODE_MAX || strpbrk(addr, " \t\r\n") != NULL ||
        config_parse_addr(addr, "127.0.0.1", &ca, err, errlen) != 0) {
        if (strlen(addr) > CLWIRE_NODE_MAX || strpbrk(addr, " \t\r\n") != NULL)
            snprintf(err, errlen, "-p cluster_addr='%s': not a HOST:PORT", addr);
        return -1;
    }
    free(ca.spec);
    snprintf(CL.self, sizeof(CL.self), "%s", addr);
    snprintf(CL.k_prefix, sizeof(CL.k_prefix), "accel:{%s}:", CL.name);
    snprintf(CL.hop, sizeof(CL.hop), "%s %s", CL.name, CL.self);
    CL.magic = CLUSTER_MAGIC;
    CL.cfg = cfg;
    CL.st = st;
    AC_ZERO(pthread_mutex_init(&CL.mtx, NULL));
    atomic_init(&CL.disk_ok, !store_has_disk(st));
    CL.state = BUS_DOWN;
    CL.state_since = wall_now();
    srandom((unsigned)(wall_now() * 1e6) ^ (unsigned)getpid());
    view_rebuild(NULL, 0);      /* alone until the bus says otherwise */
    CL.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (CL.loop == NULL) {
        snprintf(err, errlen, "cluster: cannot create an event loop");
        return -1;
    }
    ev_async_init(&CL.wake_async, on_wake);
    ev_async_start(CL.loop, &CL.wake_async);
    ev_async_init(&CL.stop_async, on_stop);
    ev_async_start(CL.loop, &CL.stop_async);
    ev_init(&CL.reconnect_tmr, on_reconnect_tmr);
    ev_timer_init(&CL.hb_tmr, on_hb_tmr, cfg->p.cluster_heartbeat, cfg->p.cluster_heartbeat);
    ev_timer_start(CL.loop, &CL.hb_tmr);
    ev_timer_init(&CL.watchdog_tmr, on_watchdog, 0.5, 0.5);
    ev_timer_start(CL.loop, &CL.watchdog_tmr);
    ev_init(&CL.ackpoll_tmr, on_ackpoll);
    CL.on = true;
    if (pthread_create(&CL.thr, NULL, cluster_main, NULL) != 0) {
        snprintf(err, errlen, "cluster: cannot start the bus thread");
        CL.on = false;
        return -1;
    }
    CL.thr_started = true;
    LOG_I("cluster %s: this node is %s, bus %s", CL.name, CL.self, CL.url);
    return 0;
}

void
cluster_leave(void)
{
    struct timeval tv = { 0, 500000 };
    redisContext *c;
    redisReply *r;
    char k[CL_KEYLEN], suf[CLWIRE_NODE_MAX + 8];

    if (!CL.on)
        return;
    c = redisConnectWithTimeout(CL.host, CL.port, tv);
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return;                 /* the others see the heartbeat expire instead */
    }
    redisSetTimeout(c, tv);
    if (CL.db != 0 && (r = redisCommand(c, "SELECT %d", CL.db)) != NULL)
        freeReplyObject(r);
    snprintf(suf, sizeof(suf), "hb:%s", CL.self);
    if ((r = redisCommand(c, "DEL %s", key(k, sizeof(k), suf))) != NULL)
        freeReplyObject(r);
    redisFree(c);
    CL.leaving = true;
}

void
cluster_stop(void)
{
    if (!CL.on)
        return;
    ev_async_send(CL.loop, &CL.stop_async);
    if (CL.thr_started)
        pthread_join(CL.thr, NULL);
    CL.on = false;
    ev_loop_destroy(CL.loop);
    while (CL.qhead != NULL) {
        struct pub *p = CL.qhead;
        CL.qhead = p->next;
        free(p);
    }
    if (CL.qlen > 0)
        LOG_W("cluster: %zu invalidation(s) were never published (bus down at exit)", CL.qlen);
    for (unsigned i = 0; i < CL.npeers; i++) {
        pool_set_peer_forget(CL.peers[i].ps);
        pool_set_release(&CL.peers[i].ps);
    }
    clview_free(&CL.view);
    pthread_mutex_destroy(&CL.mtx);
    CL.magic = 0;
}

/* ------------------------------------------------------------- admin */

void
cluster_json(struct ac_buf *b)
{
    char idb[CLWIRE_ID_STRMAX];
    bool first = true;

    if (!CL.on) {
        ac_buf_catstr(b, "{\"enabled\": false}");
        return;
    }
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    ac_buf_catstr(b, "{\"enabled\": true, \"name\": ");
    ac_buf_cat(b, "\"", 1);
    ac_buf_json_escape(b, AC_SLICE(CL.name, strlen(CL.name)));
    ac_buf_catstr(b, "\", \"self\": \"");
    ac_buf_json_escape(b, AC_SLICE(CL.self, strlen(CL.self)));
    ac_buf_catstr(b, "\", \"bus\": {\"url\": \"");
    ac_buf_json_escape(b, AC_SLICE(CL.url, strlen(CL.url)));
    ac_buf_printf(b, "\", \"state\": \"%s\", \"since\": %.3f, \"queued\": %zu}", bus_names[CL.state],
                  CL.state_since, CL.qlen);
    ac_buf_printf(b, ", \"position\": \"%s\", \"replayed\": %s",
                  CL.pos_snap_known ? clwire_id_fmt(CL.pos_snap, idb) : "",
                  atomic_load(&CL.disk_ok) ? "true" : "false");
    ac_buf_catstr(b, ", \"ring\": [");
    for (unsigned i = 0; i < CL.view.n; i++) {
        ac_buf_catstr(b, i ? ", \"" : "\"");
        ac_buf_json_escape(b, AC_SLICE(CL.view.id[i], strlen(CL.view.id[i])));
        ac_buf_cat(b, "\"", 1);
    }
    ac_buf_catstr(b, "], \"members\": [");
    for (unsigned i = 0; i < CL.nmembers; i++) {
        const struct member *m = &CL.members[i];
        bool self = strcmp(m->id, CL.self) == 0;
        int pi = -1;
        for (unsigned j = 0; j < CL.npeers; j++)
            if (strcmp(CL.peers[j].id, m->id) == 0)
                pi = (int)j;
        bool suspect = pi >= 0 && atomic_load(&CL.peers[pi].down_until_ms) > mono_ms();
        ac_buf_catstr(b, first ? "{\"id\": \"" : ", {\"id\": \"");
        first = false;
        ac_buf_json_escape(b, AC_SLICE(m->id, strlen(m->id)));
        ac_buf_printf(b, "\", \"state\": \"%s\"",
                      self ? "self" : !m->alive ? "down" : suspect ? "unreachable" : "live");
        if (m->has_ack) {
            ac_buf_printf(b, ", \"applied\": \"%s\"", clwire_id_fmt(m->ack, idb));
            ac_buf_printf(b, ", \"lag_ms\": %llu",
                          (unsigned long long)(CL.pos_snap_known && CL.pos_snap.ms > m->ack.ms
                                                   ? CL.pos_snap.ms - m->ack.ms : 0));
        }
        if (pi >= 0) {
            const struct backend *be = &CL.peers[pi].ps->be[0];
            ac_buf_printf(b, ", \"fetches\": %llu, \"failures\": %llu",
                          (unsigned long long)atomic_load(&be->n_req),
                          (unsigned long long)atomic_load(&be->n_fail));
        }
        ac_buf_cat(b, "}", 1);
    }
    ac_buf_catstr(b, "], \"counters\": {");
    first = true;
#define X(n, h) ac_buf_printf(b, "%s\"%s\": %llu", first ? "" : ", ", #n, \
                              (unsigned long long)atomic_load(&CL.n)); first = false;
    CL_COUNTERS(X)
#undef X
    ac_buf_catstr(b, "}}");
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
}
