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
#include "cluster_int.h"

#include "bans.h"
#include "conn.h"
#include "log.h"
#include "pool.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct cluster_state CL;
static const char *const bus_names[] = { "down", "connecting", "syncing", "up" };
static _Thread_local uint64_t last_ticket;

/* ------------------------------------------------------ the ring (workers) */

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
    struct usable_arg a = { cl_mono_ms() };
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
    struct usable_arg a = { cl_mono_ms() };
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
            atomic_store(&CL.peers[i].down_until_ms, cl_mono_ms() + CL_PEER_DOWN_MS);
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
        CL.wait_until = cl_wall_now() + wait;
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    ev_async_send(CL.loop, &CL.wake_async);
    last_ticket = t;
    return t;
}

void
cluster_ban_added(struct ac_slice canon)
{
    (void)cluster_publish(CLWIRE_BAN, 0, canon);
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

/* ------------------------------------------------- the bus thread's loop */

static void
on_hb_tmr(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    cl_heartbeat();
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
    if (cl_wall_now() > until) {
        ev_timer_stop(loop, t);
        return;
    }
    if (CL.cmd_pending < 16)
        cl_request_acks(NULL);
}

static void
on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    cl_flush_queue();
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
    cl_bus_connect();
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
    CL.state_since = cl_wall_now();
    srandom((unsigned)(cl_wall_now() * 1e6) ^ (unsigned)getpid());
    cl_view_rebuild(NULL, 0);      /* alone until the bus says otherwise */
    CL.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (CL.loop == NULL) {
        snprintf(err, errlen, "cluster: cannot create an event loop");
        return -1;
    }
    ev_async_init(&CL.wake_async, on_wake);
    ev_async_start(CL.loop, &CL.wake_async);
    ev_async_init(&CL.stop_async, on_stop);
    ev_async_start(CL.loop, &CL.stop_async);
    ev_init(&CL.reconnect_tmr, cl_on_reconnect_tmr);
    ev_timer_init(&CL.hb_tmr, on_hb_tmr, cfg->p.cluster_heartbeat, cfg->p.cluster_heartbeat);
    ev_timer_start(CL.loop, &CL.hb_tmr);
    ev_timer_init(&CL.watchdog_tmr, cl_on_watchdog, 0.5, 0.5);
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
    if ((r = redisCommand(c, "DEL %s", cl_key(k, sizeof(k), suf))) != NULL)
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
        bool suspect = pi >= 0 && atomic_load(&CL.peers[pi].down_until_ms) > cl_mono_ms();
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
