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
#include "req_int.h"

#include "cluster.h"

#include <stdio.h>
#include <string.h>

#define PEER_WAIT_POLL 0.001        /* seconds between two looks at the acks */

static struct ac_slice
hop_name(void)
{
    return AC_LIT(CLUSTER_HOP_HEADER);
}

/* The owner's stream position, in its answers to peers (never stored). */
#define PEER_POS_HEADER "X-Accel-Peer-Pos"

static bool
from_peer(const struct req *req)
{
    const struct h1_header *h = h1_header_find(req->hdrs, req->http.nhdrs, hop_name());
    size_t nl = strlen(cluster_name());

    return h != NULL && h->value.len > nl && memcmp(h->value.p, cluster_name(), nl) == 0 &&
           h->value.p[nl] == ' ';
}

static void
drop_marker_op(struct req *req)
{
    for (unsigned i = 0; i < req->n_bereq_ops; i++)
        if (ac_slice_caseeq(req->bereq_ops[i].name, hop_name())) {
            req->bereq_ops[i] = req->bereq_ops[--req->n_bereq_ops];
            i--;
        }
}

void
peer_route(struct req *req, struct ac_slice key)
{
    const struct backend *be;

    if (!cluster_on())
        return;
    drop_marker_op(req);
    if (req->n_bereq_ops >= POL_MAX_HDROPS)
        return;                 /* no room for the marker: the origin, directly */
    if (h1_header_find(req->hdrs, req->http.nhdrs, hop_name()) != NULL) {
        /* A peer (or a client pretending) sent it: fetch from the origin,
         * without the marker. */
        req->bereq_ops[req->n_bereq_ops++] = (struct pol_hdrop){ hop_name(), AC_SLICE(NULL, 0) };
        return;
    }
    be = cluster_owner(key);
    if (be == NULL)
        return;                 /* ours */
    req->fetch.be = be;
    req->bereq_ops[req->n_bereq_ops++] = (struct pol_hdrop){ hop_name(), cluster_hop_value() };
    STAT_INC(req->w, cluster_peer_fetch);
}

bool
peer_fallback(struct req *req)
{
    struct fetch *f = &req->fetch;
    const struct backend *peer = f->be, *to;

    if (peer == NULL || !peer->peer || req->bytes_sent > 0 ||
        (req->state != R_CONNECT && req->state != R_BEREQ && req->state != R_BERESP))
        return false;
    cluster_peer_failed(peer);
    fetch_close(f);
    drop_marker_op(req);
    to = req->prog != NULL ? pol_backend(req) : pool_pick(req->w);
    if (to == NULL)
        return false;           /* f->be stays: the error path names the peer that failed */
    LOG_W("cluster: peer %s failed (%s%s%s) for " AC_SLICE_FMT "; fetching from origin %s",
          peer->name, f->fail_what ? f->fail_what : "?", f->fail_err ? ": " : "",
          f->fail_err ? strerror(f->fail_err) : "", AC_SLICE_ARG(req->http.path), to->name);
    STAT_INC(req->w, cluster_peer_fallback);
    fetch_redirect(f, to);
    req_build_bereq(req);
    req->state = R_CONNECT;
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
owner_ttl(const struct req *req, double *ttl)
{
    const struct h1_header *last = NULL;

    for (unsigned i = 0; i < req->fetch.resp.nhdrs; i++)
        if (ac_slice_caseeq(req->fetch.resp.hdrs[i].name, AC_LIT("Cache-Status")))
            last = &req->fetch.resp.hdrs[i];
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
take_pos(struct req *req)
{
    struct ac_slice v = AC_SLICE(NULL, 0);
    unsigned k = 0;

    for (unsigned i = 0; i < req->fetch.resp.nhdrs; i++) {
        if (ac_slice_caseeq(req->fetch.resp.hdrs[i].name, AC_LIT(PEER_POS_HEADER))) {
            v = req->fetch.resp.hdrs[i].value;
            continue;
        }
        req->fetch.resp.hdrs[k++] = req->fetch.resp.hdrs[i];
    }
    req->fetch.resp.nhdrs = k;
    return v;
}

void
peer_beresp(struct req *req)
{
    req->cl_owner_behind = false;
    if (req->fetch.be == NULL || !req->fetch.be->peer)
        return;
    req->cl_owner_behind = cluster_peer_behind(take_pos(req));
}

void
peer_local_ttl(struct req *req)
{
    struct cache_decision *d = &req->dec;
    double cap = req->w->cfg->p.cluster_local_ttl, ot;

    if (req->fetch.be == NULL || !req->fetch.be->peer || !d->store)
        return;
    if (owner_ttl(req, &ot) && ot < cap)
        cap = ot;
    if (req->cl_owner_behind)
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
peer_dlv_fields(struct req *req, struct ac_buf *t)
{
    size_t n;

    char pos[CLWIRE_ID_STRMAX + 80];

    if (!cluster_on() || req->obj == NULL || !from_peer(req))
        return;
    cluster_pos_fmt(pos, sizeof(pos));
    ac_buf_printf(t, PEER_POS_HEADER ": %s\r\n", pos);
    n = store_obj_tag_count(req->obj);
    if (n == 0)
        return;
    ac_buf_catstr(t, "Surrogate-Key:");
    for (size_t i = 0; i < n; i++) {
        struct store_bytes tag = store_obj_tag(req->obj, i);
        ac_buf_cat(t, " ", 1);
        ac_buf_cat(t, tag.p, tag.len);
    }
    ac_buf_catstr(t, "\r\n");
}

unsigned
peer_lookup_flags(struct req *req)
{
    if (req->lookups == 1 && cluster_on() && from_peer(req))
        STAT_INC(req->w, cluster_peer_request);
    return cluster_disk_ok() ? 0 : STORE_LOOKUP_MEM_ONLY;
}

static enum step
inval_finish(struct req *req, const struct cluster_ack *a)
{
    struct ac_buf *b = &req->tmpbuf;

    if (a != NULL) {
        ac_buf_catstr(b, ", ");
        cluster_ack_json(b, a);
    }
    ac_buf_catstr(b, "}\n");
    req->resp_ops[0].name = AC_LIT("Content-Type");
    req->resp_ops[0].value = AC_LIT("application/json");
    req->n_resp_ops = 1;
    req->cl_ticket = 0;
    return req_synth_ex(req, req->cl_status, req->cl_reason, b->p, b->len, false, true);
}

enum step
peer_inval_answer(struct req *req, int status, const char *reason, uint64_t ticket)
{
    req->cl_status = status;
    req->cl_reason = reason;
    if (!cluster_on() || ticket == 0)
        return inval_finish(req, NULL);
    req->cl_ticket = ticket;
    req->cl_until = ev_now(req->w->loop) + req->w->cfg->p.cluster_purge_wait;
    req->state = R_CLWAIT;
    return STEP_MORE;
}

enum step
peer_wait_step(struct req *req)
{
    struct cluster_ack a;
    bool done = cluster_ticket_poll(req->cl_ticket, &a);

    req->timed_out = false;           /* our own poll timer */
    if (!done && ev_now(req->w->loop) < req->cl_until) {
        req_timer(req, PEER_WAIT_POLL);
        return STEP_WAIT;
    }
    return inval_finish(req, &a);
}
