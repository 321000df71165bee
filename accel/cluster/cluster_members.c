/*
 * cluster_members.c -- membership (cluster_int.h): heartbeats, who is live,
 * the peer backend of every member ever seen, the view the ring is built
 * from, acknowledgements, and the leader's trimming of the stream.
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
void
cl_view_rebuild(const char *const *ids, unsigned n)
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

/* ----------------------------------------------------- membership */

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

/* XTRIM, and as the mark the id of the newest entry it removed (one
 * script: no node can read the stream between the two without seeing the
 * mark).  A member whose position is at or past the mark missed nothing;
 * one before it may have, and drops its cache when it returns.  The mark
 * is not the cut itself: when the retention cuts above every position
 * (an idle stream), the members that applied everything must not drop. */
static const char trim_lua[] =
    "local last = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1], '-', 'COUNT', 1) "
    "local n = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1]) "
    "if n > 0 and last[1] then redis.call('SET', KEYS[2], last[1][1]) end return n";

static void
on_trim(redisAsyncContext *c, void *r_, void *priv)
{
    redisReply *r = r_;

    (void)c;
    (void)priv;
    if (r == NULL)
        return;
    cl_cmd_answered();
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
        if (ac_slice_eq(cl_rs(h->element[j]), AC_SLICE(name, strlen(name))))
            return cl_rs(h->element[j + 1]);
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
    uint64_t now_ms = (uint64_t)(cl_wall_now() * 1000);
    uint64_t ret_ms = (uint64_t)(CL.cfg->p.cluster_retention * 1000);
    char k[CL_KEYLEN], k2[CL_KEYLEN], idb[CLWIRE_ID_STRMAX], sf[CLWIRE_NODE_MAX + 2];

    cap = (struct clwire_id){ now_ms > ret_ms ? now_ms - ret_ms : 0, 0 };
    for (unsigned i = 0; i < ids->n; i++) {
        struct clwire_id a = { 0, 0 }, seen = { 0, 0 };
        snprintf(sf, sizeof(sf), "@%s", ids->id[i]);
        (void)clwire_id_parse(hash_field(acks, ids->id[i]), &a);
        (void)clwire_id_parse(hash_field(acks, sf), &seen);
        if (!alive[i] && seen.ms + ret_ms < now_ms) {
            cl_cmd_sent(redisAsyncCommand(CL.cmd, cl_on_reply_counted, NULL, "SREM %s %s",
                                       cl_key(k, sizeof(k), "nodes"), ids->id[i]));
            cl_cmd_sent(redisAsyncCommand(CL.cmd, cl_on_reply_counted, NULL, "HDEL %s %s %s",
                                       cl_key(k, sizeof(k), "acks"), ids->id[i], sf));
            continue;
        }
        if (clwire_id_cmp(a, minid) < 0)
            minid = a;
    }
    cut = clwire_id_cmp(minid, cap) > 0 ? minid : cap;
    if (cut.ms == UINT64_MAX || (cut.ms == 0 && cut.seq == 0))
        return;
    cl_cmd_sent(redisAsyncCommand(CL.cmd, on_trim, NULL, "EVAL %s 2 %s %s %s", trim_lua,
                               cl_key(k, sizeof(k), "inval"), cl_key(k2, sizeof(k2), "trimmed"),
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
    cl_cmd_answered();
    if (r->type != REDIS_REPLY_ARRAY) {
        if (l != NULL)
            idlist_free(l);
        return;
    }
    AC_ZERO(pthread_mutex_lock(&CL.mtx));
    for (unsigned i = 0; i < CL.nmembers; i++) {
        struct member *m = &CL.members[i];
        for (size_t j = 0; j + 1 < r->elements; j += 2)
            if (ac_slice_eq(cl_rs(r->element[j]), AC_SLICE(m->id, strlen(m->id))))
                m->has_ack = clwire_id_parse(cl_rs(r->element[j + 1]), &m->ack) == 0;
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

void
cl_request_acks(struct idlist *l)
{
    char k[CL_KEYLEN];

    if (CL.cmd == NULL || CL.state != BUS_UP) {
        if (l != NULL)
            idlist_free(l);
        return;
    }
    int rc = redisAsyncCommand(CL.cmd, on_acks, l, "HGETALL %s", cl_key(k, sizeof(k), "acks"));
    if (rc != REDIS_OK && l != NULL)
        idlist_free(l);
    cl_cmd_sent(rc);
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
    cl_cmd_answered();
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
        cl_view_rebuild(live, nlive);
        LOG_I("cluster %s: %u live member(s)", CL.name, CL.view.n);
    }
    AC_ZERO(pthread_mutex_unlock(&CL.mtx));
    cl_request_acks(l);
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
    cl_cmd_answered();
    if (r->type != REDIS_REPLY_ARRAY || CL.cmd == NULL)
        return;
    l = ac_xcalloc(1, sizeof(*l));
    for (size_t i = 0; i < r->elements && l->n < CLVIEW_MAX * 2; i++) {
        struct ac_slice s = cl_rs(r->element[i]);
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
        cl_key(keys[i], sizeof(keys[i]), suf);
        argv[1 + i] = keys[i];
        argvlen[1 + i] = strlen(keys[i]);
    }
    int rc = redisAsyncCommandArgv(CL.cmd, on_mget, l, (int)(1 + l->n), argv, argvlen);
    if (rc != REDIS_OK)
        idlist_free(l);
    cl_cmd_sent(rc);
}

/* Refresh our heartbeat and registration, then read the membership. */
void
cl_heartbeat(void)
{
    char k[CL_KEYLEN], suf[CLWIRE_NODE_MAX + 8], ttl[32], v[64];

    if (CL.cmd == NULL || CL.state != BUS_UP || CL.leaving)
        return;
    CL.hb_count++;
    snprintf(suf, sizeof(suf), "hb:%s", CL.self);
    snprintf(ttl, sizeof(ttl), "%llu",
             (unsigned long long)(CL.cfg->p.cluster_heartbeat * 3000 + 0.5));
    snprintf(v, sizeof(v), "%d %.0f", (int)getpid(), cl_wall_now());
    cl_cmd_sent(redisAsyncCommand(CL.cmd, cl_on_reply_counted, NULL, "SET %s %s PX %s",
                               cl_key(k, sizeof(k), suf), v, ttl));
    cl_cmd_sent(redisAsyncCommand(CL.cmd, cl_on_reply_counted, NULL, "SADD %s %s",
                               cl_key(k, sizeof(k), "nodes"), CL.self));
    snprintf(suf, sizeof(suf), "@%s", CL.self);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)(cl_wall_now() * 1000));
    cl_cmd_sent(redisAsyncCommand(CL.cmd, cl_on_reply_counted, NULL, "HSET %s %s %s",
                               cl_key(k, sizeof(k), "acks"), suf, v));
    cl_cmd_sent(redisAsyncCommand(CL.cmd, on_smembers, NULL, "SMEMBERS %s",
                               cl_key(k, sizeof(k), "nodes")));
}
