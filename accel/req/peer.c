/*
 * peer.c -- cache fetches between cluster members (peer.h).
 *
 * The owner of a key is the origin of a non-owner's fetch: the non-owner
 * sends the request as it would to an origin (client fields, its own
 * X-Forwarded-For entry, gzip asked for) with CLUSTER_HOP_HEADER added, to
 * the owner's cluster_addr.  The owner sees the marker and serves from, or
 * fills, its own cache from the real origin, never from another peer: so a
 * request makes at most one hop even while two nodes disagree about the
 * ring, and one origin fetch serves the whole cluster (coalescing happens
 * on the owner's busy object).
 */
#include "peer.h"

#include "cluster.h"
#include "sess.h"

#include <stdio.h>

#define PEER_WAIT_POLL 0.001        /* seconds between two looks at the acks */

static struct ac_slice
hop_name(void)
{
    return AC_LIT(CLUSTER_HOP_HEADER);
}

/* The owner's stream position, in its answers to peers (never stored). */
#define PEER_POS_HEADER "X-Accel-Peer-Pos"

static bool
from_peer(const struct sess *s)
{
    const struct h1_header *h = h1_header_find(s->hdrs, s->req.nhdrs, hop_name());
    size_t nl = strlen(cluster_name());

    return h != NULL && h->value.len > nl && memcmp(h->value.p, cluster_name(), nl) == 0 &&
           h->value.p[nl] == ' ';
}

static void
drop_marker_op(struct sess *s)
{
    for (unsigned i = 0; i < s->n_bereq_ops; i++)
        if (ac_slice_caseeq(s->bereq_ops[i].name, hop_name())) {
            s->bereq_ops[i] = s->bereq_ops[--s->n_bereq_ops];
            i--;
        }
}

void
peer_route(struct sess *s, struct ac_slice key)
{
    const struct backend *be;

    if (!cluster_on())
        return;
    drop_marker_op(s);
    if (s->n_bereq_ops >= POL_MAX_HDROPS)
        return;                 /* no room for the marker: the origin, directly */
    if (h1_header_find(s->hdrs, s->req.nhdrs, hop_name()) != NULL) {
        /* A peer (or a client pretending) sent it: fetch from the origin,
         * without the marker. */
        s->bereq_ops[s->n_bereq_ops++] = (struct pol_hdrop){ hop_name(), AC_SLICE(NULL, 0) };
        return;
    }
    be = cluster_owner(key);
    if (be == NULL)
        return;                 /* ours */
    s->be = be;
    s->bereq_ops[s->n_bereq_ops++] = (struct pol_hdrop){ hop_name(), cluster_hop_value() };
    STAT_INC(s->w, cluster_peer_fetch);
}

bool
peer_fallback(struct sess *s)
{
    const struct backend *peer = s->be;

    if (peer == NULL || !peer->peer || s->bytes_sent > 0 ||
        (s->state != S_CONNECT && s->state != S_BEREQ && s->state != S_BERESP))
        return false;
    cluster_peer_failed(peer);
    if (s->oc != NULL)
        pool_close(&s->oc);
    drop_marker_op(s);
    s->be = s->prog != NULL ? pol_backend(s) : pool_pick(s->w);
    if (s->be == NULL) {
        s->be = peer;           /* the error path names the server that failed */
        return false;
    }
    LOG_W("cluster: peer %s did not answer for " AC_SLICE_FMT "; fetching from origin %s",
          peer->name, AC_SLICE_ARG(s->req.path), s->be->name);
    STAT_INC(s->w, cluster_peer_fallback);
    s->relay.start = s->relay.end = 0;
    s->resp_bytes_in = 0;
    s->oc_reused = false;
    s->timed_out = false;
    s->retries = 0;
    fetch_build_bereq(s);
    s->state = S_CONNECT;
    return true;
}

/*
 * The freshness the owner had left for its object: the ttl= parameter of
 * its Cache-Status entry (RFC 9211), the last field line.  An owner serving
 * a stale object (grace, soft purge) says ttl <= 0 there, although the
 * origin's max-age and Age would call it fresh; a non-owner must not keep
 * such a copy.  false when there is none (the owner's policy removed it).
 */
static bool
owner_ttl(const struct sess *s, double *ttl)
{
    const struct h1_header *last = NULL;

    for (unsigned i = 0; i < s->resp.nhdrs; i++)
        if (ac_slice_caseeq(s->resp.hdrs[i].name, AC_LIT("Cache-Status")))
            last = &s->resp.hdrs[i];
    if (last == NULL)
        return false;
    const char *p = last->value.p, *end = p + last->value.len, *found = NULL;
    for (const char *q = p; q + 4 <= end; q++)
        if (memcmp(q, "ttl=", 4) == 0 && (q == p || q[-1] == ' ' || q[-1] == ';'))
            found = q + 4;
    if (found == NULL)
        return false;
    double v = 0;
    bool neg = found < end && *found == '-', digits = false;
    for (const char *q = found + neg; q < end && *q >= '0' && *q <= '9' && v < 1e12; q++) {
        v = v * 10 + (*q - '0');
        digits = true;
    }
    *ttl = neg ? -v : v;
    return digits;
}

/* Take the owner's position field out of the response (it must not be
 * stored or reach a client) and return its value. */
static struct ac_slice
take_pos(struct sess *s)
{
    struct ac_slice v = AC_SLICE(NULL, 0);
    unsigned k = 0;

    for (unsigned i = 0; i < s->resp.nhdrs; i++) {
        if (ac_slice_caseeq(s->resp.hdrs[i].name, AC_LIT(PEER_POS_HEADER))) {
            v = s->resp.hdrs[i].value;
            continue;
        }
        s->resp.hdrs[k++] = s->resp.hdrs[i];
    }
    s->resp.nhdrs = k;
    return v;
}

void
peer_beresp(struct sess *s)
{
    s->cl_owner_behind = false;
    if (s->be == NULL || !s->be->peer)
        return;
    s->cl_owner_behind = cluster_peer_behind(take_pos(s));
}

void
peer_local_ttl(struct sess *s)
{
    struct cache_decision *d = &s->dec;
    double cap = s->w->cfg->p.cluster_local_ttl, ot;

    if (s->be == NULL || !s->be->peer || !d->store)
        return;
    if (owner_ttl(s, &ot) && ot < cap)
        cap = ot;
    if (s->cl_owner_behind)
        cap = 0;                /* the owner may not have applied a purge we saw */
    if (cap <= 0) {
        d->store = false;       /* every request goes to the owner */
        d->hfm = false;
        d->why = "cluster: local ttl 0, the owner's copy is stale or the owner is behind";
        return;
    }
    if (d->ttl - d->initial_age > cap)
        d->ttl = d->initial_age + cap;
    if (d->grace > cap)
        d->grace = cap;
    if (d->keep > cap)
        d->keep = cap;
}

void
peer_dlv_fields(struct sess *s, struct ac_buf *t)
{
    size_t n;

    char pos[CLWIRE_ID_STRMAX + 80];

    if (!cluster_on() || s->obj == NULL || !from_peer(s))
        return;
    cluster_pos_fmt(pos, sizeof(pos));
    ac_buf_printf(t, PEER_POS_HEADER ": %s\r\n", pos);
    n = store_obj_tag_count(s->obj);
    if (n == 0)
        return;
    ac_buf_catstr(t, "Surrogate-Key:");
    for (size_t i = 0; i < n; i++) {
        struct store_bytes tag = store_obj_tag(s->obj, i);
        ac_buf_cat(t, " ", 1);
        ac_buf_cat(t, tag.p, tag.len);
    }
    ac_buf_catstr(t, "\r\n");
}

unsigned
peer_lookup_flags(struct sess *s)
{
    if (s->lookups == 1 && cluster_on() && from_peer(s))
        STAT_INC(s->w, cluster_peer_request);
    return cluster_disk_ok() ? 0 : STORE_LOOKUP_MEM_ONLY;
}

static enum step
inval_finish(struct sess *s, const struct cluster_ack *a)
{
    struct ac_buf *b = &s->tmpbuf;

    if (a != NULL) {
        ac_buf_catstr(b, ", ");
        cluster_ack_json(b, a);
    }
    ac_buf_catstr(b, "}\n");
    s->resp_ops[0].name = AC_LIT("Content-Type");
    s->resp_ops[0].value = AC_LIT("application/json");
    s->n_resp_ops = 1;
    s->cl_ticket = 0;
    return sess_synth_ex(s, s->cl_status, s->cl_reason, b->p, b->len, false, true);
}

enum step
peer_inval_answer(struct sess *s, int status, const char *reason, uint64_t ticket)
{
    s->cl_status = status;
    s->cl_reason = reason;
    if (!cluster_on() || ticket == 0)
        return inval_finish(s, NULL);
    s->cl_ticket = ticket;
    s->cl_until = ev_now(s->w->loop) + s->w->cfg->p.cluster_purge_wait;
    s->state = S_CLWAIT;
    return STEP_MORE;
}

enum step
peer_wait_step(struct sess *s)
{
    struct cluster_ack a;
    bool done = cluster_ticket_poll(s->cl_ticket, &a);

    s->timed_out = false;           /* our own poll timer */
    if (!done && ev_now(s->w->loop) < s->cl_until) {
        sess_want(s, 0, 0);
        sess_timer(s, PEER_WAIT_POLL);
        return STEP_WAIT;
    }
    return inval_finish(s, &a);
}
