/*
 * cluster_bus.c -- the cluster bus's Redis side (cluster_int.h): the two
 * connections and their faults, the sync that decides where a node reads
 * the stream from, publishing (XADD), reading (XREAD BLOCK) and applying
 * entries, and keeping the position durably in the store.
 */
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
#include <hiredis/adapters/libev.h>

static void apply(const struct clwire_entry *e);

/* ------------------------------------------------------------ helpers */

double
cl_wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t
cl_mono_ms(void)
{
    return pool_now_ms();
}

const char *
cl_key(char *buf, size_t len, const char *suffix)
{
    snprintf(buf, len, "%s%s", CL.k_prefix, suffix);
    return buf;
}

void
cl_set_state(enum bus_state s)
{
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    CL.state = s;
    CL.state_since = cl_wall_now();
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
}

struct ac_slice
cl_rs(const redisReply *r)
{
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        return AC_SLICE(NULL, 0);
    return AC_SLICE(r->str, r->len);
}

/* A command on cmd, counted for the watchdog. */
void
cl_cmd_sent(int rc)
{
    if (rc != REDIS_OK)
        return;
    if (CL.cmd_pending++ == 0)
        CL.cmd_progress = ev_now(CL.loop);
}

void
cl_cmd_answered(void)
{
    if (CL.cmd_pending > 0)
        CL.cmd_pending--;
    CL.cmd_progress = ev_now(CL.loop);
}

void
cl_on_reply_counted(redisAsyncContext *c, void *r, void *priv)
{
    (void)c;
    (void)priv;
    if (r != NULL)
        cl_cmd_answered();
}

/* --------------------------------------------------------- publishing */

/* Bus thread: a publication was answered (id: its stream id) or failed. */
static void
on_xadd(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;
    struct pub *p = priv, **pp;
    struct clwire_id id;

    (void)c;
    if (r == NULL)
        return;                 /* connection gone: cl_bus_down() re-queues */
    cl_cmd_answered();
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    p->inflight = false;
    if (r->type == REDIS_REPLY_ERROR || clwire_id_parse(cl_rs(r), &id) != 0) {
        AC_ZERO(pthread_mutex_unlock(&CL.mtx));
        atomic_fetch_add(&CL.publish_failed, 1);
        LOG_W("cluster: XADD failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "bad id");
        cl_bus_down("XADD failed");
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
void
cl_flush_queue(void)
{
    char k[CL_KEYLEN];

    if (CL.state != BUS_UP || CL.cmd == NULL)
        return;
    cl_key(k, sizeof(k), "inval");
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
        cl_cmd_sent(rc);
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
    if (bans_add_local(CL.st, AC_LIT("obj.status >= 0"), cl_wall_now(), NULL, err, sizeof(err)) != 0)
        LOG_E("cluster: could not drop the cache: %s", err);
    atomic_fetch_add(&CL.cache_dropped, 1);
}

static void
apply(const struct clwire_entry *e)
{
    unsigned sf = (e->flags & CLWIRE_SOFT) ? STORE_PURGE_SOFT : 0;
    double now = cl_wall_now();
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
    if (r != STORE_OK) {
        /* the position moves on: what this purge covered must go another way */
        LOG_W("cluster: %s purge not applied: %s", clwire_op_name(e->op), store_strerror(r));
        drop_cache("a purge the store could not apply");
    }
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
        clwire_id_parse(cl_rs(en->element[0]), &id) != 0)
        return;                 /* no id: nothing to stand on (Redis never sends this) */
    if (en->elements >= 2 && en->element[1]->type == REDIS_REPLY_ARRAY &&
        en->element[1]->elements <= AC_ARRAY_LEN(fv)) {
        const redisReply *a = en->element[1];
        for (n = 0; n < a->elements; n++)
            fv[n] = cl_rs(a->element[n]);
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
    char v[160], idb[CLWIRE_ID_STRMAX], k[CL_KEYLEN];

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
        cl_cmd_sent(redisAsyncCommand(CL.cmd, cl_on_reply_counted, NULL, "HSET %s %s %s",
                                   cl_key(k, sizeof(k), "acks"), CL.self,
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
        cl_bus_down("XREAD failed");
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
    cl_start_read();
}

void
cl_start_read(void)
{
    char k[CL_KEYLEN], idb[CLWIRE_ID_STRMAX], cnt[16], blk[16];

    if (CL.state != BUS_UP || CL.rd == NULL || !CL.rd_ready || CL.reading)
        return;
    snprintf(cnt, sizeof(cnt), "%d", CL_READ_COUNT);
    snprintf(blk, sizeof(blk), "%d", CL_READ_BLOCK_MS);
    if (redisAsyncCommand(CL.rd, on_xread, NULL, "XREAD COUNT %s BLOCK %s STREAMS %s %s", cnt, blk,
                          cl_key(k, sizeof(k), "inval"), clwire_id_fmt(CL.pos, idb)) == REDIS_OK) {
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
    cl_cmd_answered();
    if (r->type == REDIS_REPLY_ERROR) {
        LOG_W("cluster: bus sync step %u: %s", (unsigned)step, r->str);
        cl_bus_down("sync failed");
        return;
    }
    switch (step) {
    case 1: {                   /* GET epoch */
        struct ac_slice e = cl_rs(r);
        snprintf(CL.sync_epoch, sizeof(CL.sync_epoch), "%.*s", (int)AC_MIN(e.len, 60),
                 e.p ? e.p : "");
        break;
    }
    case 2:                     /* GET trimmed */
        CL.sync_has_trimmed = clwire_id_parse(cl_rs(r), &CL.sync_trimmed) == 0;
        break;
    case 3:                     /* XREVRANGE inval + - COUNT 1 */
        CL.sync_tail = (struct clwire_id){ 0, 0 };
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements > 0)
            (void)clwire_id_parse(cl_rs(r->element[0]->element[0]), &CL.sync_tail);
        if (CL.sync_epoch[0] == '\0') {
            cl_bus_down("no epoch");
            return;
        }
        cl_set_state(BUS_UP);       /* first: the position's HSET goes out with it */
        sync_decide();
        LOG_I("cluster %s: bus %s up (epoch %s), reading from %llu-%llu", CL.name, CL.url,
              CL.epoch, (unsigned long long)CL.pos.ms, (unsigned long long)CL.pos.seq);
        cl_flush_queue();
        cl_heartbeat();
        cl_start_read();
        break;
    }
}

static void
begin_sync(void)
{
    char k[CL_KEYLEN], rnd[64];

    cl_set_state(BUS_SYNCING);
    snprintf(rnd, sizeof(rnd), "%08lx%08lx", (unsigned long)random(),
             (unsigned long)(cl_wall_now() * 1000));
    CL.sync_epoch[0] = '\0';
    if (CL.db != 0)
        cl_cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)0, "SELECT %d", CL.db));
    cl_cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)0, "SET %s %s NX",
                               cl_key(k, sizeof(k), "epoch"), rnd));
    cl_cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)1, "GET %s", cl_key(k, sizeof(k), "epoch")));
    cl_cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)2, "GET %s",
                               cl_key(k, sizeof(k), "trimmed")));
    cl_cmd_sent(redisAsyncCommand(CL.cmd, on_sync, (void *)3, "XREVRANGE %s + - COUNT 1",
                               cl_key(k, sizeof(k), "inval")));
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
        cl_bus_down(c->errstr);
        return;
    }
    if (c == CL.cmd) {
        CL.cmd_ready = true;
        begin_sync();
    } else if (c == CL.rd) {
        CL.rd_ready = true;
        if (CL.db != 0)
            redisAsyncCommand(CL.rd, NULL, NULL, "SELECT %d", CL.db);
        cl_start_read();
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
    cl_bus_down(c->errstr[0] ? c->errstr : "connection closed");
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

void
cl_bus_connect(void)
{
    if (CL.cmd != NULL || CL.rd != NULL)
        return;
    cl_set_state(BUS_CONNECTING);
    CL.connect_start = ev_now(CL.loop);
    CL.cmd_ready = CL.rd_ready = CL.reading = false;
    CL.cmd_pending = 0;
    CL.cmd = open_conn();
    CL.rd = open_conn();
    if (CL.cmd == NULL || CL.rd == NULL) {
        cl_bus_down("cannot create a connection");
        return;
    }
    atomic_fetch_add(&CL.reconnects, 1);
}

/* Let both connections go; queued and in-flight publications wait for the
 * next connection (an in-flight XADD that did reach Redis is sent again:
 * entries are idempotent). */
void
cl_bus_down(const char *why)
{
    redisAsyncContext *c = CL.cmd, *r = CL.rd;
    bool was_up = CL.state == BUS_UP;

    if (CL.state == BUS_DOWN && c == NULL && r == NULL)
        return;
    CL.cmd = CL.rd = NULL;
    CL.cmd_ready = CL.rd_ready = CL.reading = false;
    CL.cmd_pending = 0;
    cl_set_state(BUS_DOWN);
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

void
cl_on_reconnect_tmr(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    cl_bus_connect();
}

/* A Redis that stopped answering (SIGSTOP, a dead network path) gives no
 * error of its own: each command gets a deadline. */
void
cl_on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
    double now = ev_now(loop);

    (void)t;
    (void)revents;
    if ((CL.state == BUS_CONNECTING || CL.state == BUS_SYNCING) &&
        now - CL.connect_start > CL_REPLY_DEADLINE + 2)
        cl_bus_down("connect or sync timed out");
    else if (CL.cmd_pending > 0 && now - CL.cmd_progress > CL_REPLY_DEADLINE)
        cl_bus_down("no answer from the bus");
    else if (CL.reading && now - CL.rd_progress > CL_READ_BLOCK_MS / 1000.0 + CL_REPLY_DEADLINE)
        cl_bus_down("no answer to XREAD");
}
