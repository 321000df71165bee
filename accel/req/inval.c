/*
 * inval.c -- invalidation requests: PURGE and BAN without a policy (loopback
 * clients only), return (purge) under a policy, purges by URL for the admin
 * listener, and RFC 9111 §4.4 invalidation after unsafe methods.  The store
 * does the work (store_purge_key, store_purge_tag, store_ban_add); bans are
 * parsed and evaluated in bans.c.
 */
#include "req_int.h"

#include "admin.h"
#include "bans.h"
#include "cluster.h"
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

static double
now_of(const struct req *req)
{
    return ev_now(req->w->loop);
}

static bool
is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

/*
 * PURGE without a policy (as Varnish users write it in VCL): from loopback
 * clients only (anyone else gets 405 and nothing is purged).
 *   PURGE /path                        every variant of that URL
 *   PURGE / with Surrogate-Key: a b    every object tagged a or b
 *   Purge-Mode: soft                   mark stale (served within grace while
 *                                      one background fetch refreshes)
 * Answers 200 with the count, or 404 when nothing was cached.
 */
enum step
cache_purge_request(struct req *req)
{
    const struct h1_header *keys, *mode;
    unsigned flags = 0;
    size_t n = 0, total = 0;
    uint64_t ticket = 0;

    req->cache_state = "PURGE";
    if (!is_loopback(&req->meta->peer))
        return req_synth(req, 405, "Not allowed", "PURGE is allowed from loopback only\n", false);
    mode = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("Purge-Mode"));
    if (mode != NULL && ac_slice_caseeq(mode->value, AC_LIT("soft")))
        flags |= STORE_PURGE_SOFT;
    keys = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("Surrogate-Key"));
    if (keys == NULL)
        keys = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("xkey"));
    if (keys != NULL) {
        const char *p = keys->value.p, *end = p + keys->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *q = p;
            while (q < end && *q != ' ' && *q != '\t' && *q != ',')
                q++;
            if (q > p && store_purge_tag(req->w->store, (struct store_bytes){ p, (size_t)(q - p) },
                                         flags, now_of(req), &n) == STORE_OK)
                total += n;
            if (q > p)
                ticket = cluster_publish(CLWIRE_TAG, flags ? CLWIRE_SOFT : 0,
                                         AC_SLICE(p, (size_t)(q - p)));
            p = q;
        }
    } else {
        cache_key(&req->http, &req->key);
        if (store_purge_key(req->w->store, (struct store_bytes){ req->key.p, req->key.len }, flags,
                            now_of(req), &n) == STORE_OK)
            total = n;
        ticket = cluster_publish(CLWIRE_KEY, flags ? CLWIRE_SOFT : 0, ac_buf_slice(&req->key));
    }
    ac_buf_reset(&req->tmpbuf);
    ac_buf_printf(&req->tmpbuf, "{\"purged\": %zu, \"mode\": \"%s\"", total,
                  (flags & STORE_PURGE_SOFT) ? "soft" : "hard");
    /* in a cluster the other members may hold it: accepted, not "not found" */
    if (total == 0 && !cluster_on())
        return peer_inval_answer(req, 404, "Not in cache", 0);
    return peer_inval_answer(req, 200, "Purged", ticket);
}

int
cache_url_key(struct req *req, struct ac_slice url, struct ac_slice host)
{
    if (req->w->vcl != NULL) {
        /* the policy's key: vcl_hash with req.url and Host swapped in */
        struct ac_slice saved_path = req->http.path, saved_host[8];
        unsigned nh = 0;
        pol_begin(req);
        req->http.path = url;
        for (unsigned i = 0; i < req->http.nhdrs && nh < 8; i++) {
            if (ac_slice_caseeq(req->hdrs[i].name, AC_LIT("Host"))) {
                saved_host[nh++] = req->hdrs[i].value;
                req->hdrs[i].value = host;
            }
        }
        int r = cache_make_key(req);
        req->http.path = saved_path;
        nh = 0;
        for (unsigned i = 0; i < req->http.nhdrs && nh < 8; i++)
            if (ac_slice_caseeq(req->hdrs[i].name, AC_LIT("Host")))
                req->hdrs[i].value = saved_host[nh++];
        if (r != 0)
            return -1;
    } else {
        struct h1_request tmp = req->http;
        tmp.path = url;
        tmp.host = host;
        cache_key(&tmp, &req->key);
    }
    return 0;
}

int
cache_purge_url(struct req *req, struct ac_slice url, struct ac_slice host, unsigned flags,
                size_t *countp)
{
    if (cache_url_key(req, url, host) != 0)
        return STORE_EINVAL;
    (void)cluster_publish(CLWIRE_KEY, flags ? CLWIRE_SOFT : 0, ac_buf_slice(&req->key));
    return store_purge_key(req->w->store, (struct store_bytes){ req->key.p, req->key.len }, flags,
                           now_of(req), countp);
}

/*
 * BAN without a policy, from loopback clients only:
 *   BAN / with Ban: obj.http.content-type ~ "^image/" && req.url ~ "^/blog/"
 * Answers 200 with the canonical ban text, or 400 with the parse error.
 */
enum step
cache_ban_request(struct req *req)
{
    const struct h1_header *h = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("Ban"));
    char err[256];

    req->cache_state = "BAN";
    if (!is_loopback(&req->meta->peer))
        return req_synth(req, 405, "Not allowed", "BAN is allowed from loopback only\n", false);
    if (h == NULL) {
        static const char no_ban[] = "{\"error\": \"expected a Ban: header with the expression\"}\n";
        return admin_answer_json(req, 400, NULL, no_ban, sizeof(no_ban) - 1);
    }
    ac_buf_reset(&req->tmpbuf);
    ac_buf_catstr(&req->tmpbuf, "{\"ban\": \"");
    struct ac_buf canon;
    ac_buf_init(&canon, 0, 0);
    if (bans_add(req->w->store, h->value, now_of(req), &canon, err, sizeof(err)) != 0) {
        ac_buf_free(&canon);
        ac_buf_reset(&req->tmpbuf);
        ac_buf_catstr(&req->tmpbuf, "{\"error\": \"");
        ac_buf_json_escape(&req->tmpbuf, AC_SLICE(err, strlen(err)));
        ac_buf_catstr(&req->tmpbuf, "\"}\n");
        return admin_answer_json(req, 400, NULL, req->tmpbuf.p, req->tmpbuf.len);
    }
    ac_buf_json_escape(&req->tmpbuf, ac_buf_slice(&canon));
    ac_buf_free(&canon);
    if (cluster_on()) {
        ac_buf_catstr(&req->tmpbuf, "\"");
        return peer_inval_answer(req, 200, "Banned", cluster_ticket_last());
    }
    ac_buf_catstr(&req->tmpbuf, "\"}\n");
    return admin_answer_json(req, 200, "Banned", req->tmpbuf.p, req->tmpbuf.len);
}

/* return (purge): drop every variant of the key, then vcl_purge. */
enum step
cache_policy_purge(struct req *req)
{
    struct vcl_result res;
    size_t n = 0;

    const struct h1_header *mode = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("Purge-Mode"));
    unsigned flags = mode != NULL && ac_slice_caseeq(mode->value, AC_LIT("soft"))
                         ? STORE_PURGE_SOFT : 0;

    if (req->w->store == NULL || cache_make_key(req) != 0)
        return req_synth(req, 503, NULL, "Purge failed\n", false);
    /* Purge-Mode: soft works under a policy too: stale, kept for grace */
    if (store_purge_key(req->w->store, (struct store_bytes){ req->key.p, req->key.len }, flags,
                        now_of(req), &n) != STORE_OK)
        LOG_W("purge: store error");
    (void)cluster_publish(CLWIRE_KEY, flags ? CLWIRE_SOFT : 0, ac_buf_slice(&req->key));
    req->cache_state = "PURGE";
    enum vcl_action a = pol_run(req, VCL_SUB_PURGE, &res);
    if (a == VCL_ACT_SYNTH)
        return req_synth(req, (int)res.status,
                          res.reason.p ? pol_cstr(req, res.reason) : NULL, NULL, false);
    return cache_synth_or_restart(req, a, &res);
}

/* Key of a URI reference in a Location-like field, if it names our host. */
static bool
same_origin_key(const struct req *req, struct ac_slice v, struct ac_buf *key)
{
    struct h1_request tmp = req->http;

    if (v.len == 0)
        return false;
    if (v.p[0] == '/' && (v.len < 2 || v.p[1] != '/')) {
        tmp.path = v;
    } else {
        size_t skip = 0;
        if (v.len > 7 && memcmp(v.p, "http://", 7) == 0)
            skip = 7;
        else if (v.len > 8 && memcmp(v.p, "https://", 8) == 0)
            skip = 8;
        else
            return false;
        const char *h = v.p + skip, *end = v.p + v.len;
        const char *slash = memchr(h, '/', (size_t)(end - h));
        struct ac_slice host = AC_SLICE(h, slash ? (size_t)(slash - h) : (size_t)(end - h));
        if (!ac_slice_caseeq(host, req->http.host))
            return false;
        tmp.path = slash ? AC_SLICE(slash, (size_t)(end - slash)) : AC_LIT("/");
    }
    if (req->prog != NULL) {
        /* the policy's key for that URL: vcl_hash with req.url swapped */
        struct req *m = (struct req *)req;
        struct ac_slice saved = m->http.path;
        m->http.path = tmp.path;
        int r = cache_make_key(m);
        m->http.path = saved;
        return r == 0;
    }
    cache_key(&tmp, key);
    return true;
}

/* RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the
 * target URI, and Location / Content-Location when they are same-origin. */
void
cache_after_unsafe(struct req *req)
{
    static const char *const fields[] = { "Location", "Content-Location" };
    size_t n = 0, total = 0;

    if (req->w->store == NULL)
        return;
    if (cache_make_key(req) != 0)
        return;
    if (store_purge_key(req->w->store, (struct store_bytes){ req->key.p, req->key.len }, 0, now_of(req),
                        &n) == STORE_OK)
        total += n;
    (void)cluster_publish(CLWIRE_KEY, 0, ac_buf_slice(&req->key));
    for (size_t i = 0; i < AC_ARRAY_LEN(fields); i++) {
        const struct h1_header *h = h1_header_find(req->fetch.resp.hdrs, req->fetch.resp.nhdrs,
                                                   AC_SLICE(fields[i], strlen(fields[i])));
        if (h != NULL && same_origin_key(req, h->value, &req->key)) {
            if (store_purge_key(req->w->store, (struct store_bytes){ req->key.p, req->key.len }, 0,
                                now_of(req), &n) == STORE_OK)
                total += n;
            (void)cluster_publish(CLWIRE_KEY, 0, ac_buf_slice(&req->key));
        }
    }
    STAT_ADD(req->w, cache_invalidated, total);
}
