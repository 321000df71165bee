/*
 * admin.c -- the admin listener's requests.  They never reach an origin;
 * each answer is one JSON document.
 */
#include "admin.h"

#include "bans.h"
#include "cluster.h"
#include "pool.h"
#include "reload.h"
#include "req_int.h"

#include <stdio.h>
#include <stdlib.h>

/* Value of query parameter name in target (percent-decoded into out). */
/* One `"name": count` member of a JSON object (a comma before all but the first). */
static void
json_count(struct ac_buf *b, bool *first, const char *name, uint64_t v)
{
    ac_buf_printf(b, "%s\"%s\": %llu", *first ? "" : ", ", name, (unsigned long long)v);
    *first = false;
}

static bool
query_param(struct ac_slice target, const char *name, struct ac_buf *out)
{
    const char *q = memchr(target.p, '?', target.len), *end = target.p + target.len;
    size_t nl = strlen(name);

    ac_buf_reset(out);
    if (q == NULL)
        return false;
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) >= nl && memcmp(p, name, nl) == 0 && (p + nl == e || p[nl] == '=')) {
            for (const char *v = p + nl + (p + nl < e); v < e; v++) {
                char c = *v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && e - v >= 3) {
                    char hex[3] = { v[1], v[2], 0 };
                    char *stop;
                    long x = strtol(hex, &stop, 16);
                    if (*stop == '\0') {
                        c = (char)x;
                        v += 2;
                    }
                }
                ac_buf_cat(out, &c, 1);
            }
            return true;
        }
        p = e + 1;
    }
    return false;
}

static void
json_str(struct ac_buf *b, struct ac_slice v)
{
    ac_buf_cat(b, "\"", 1);
    ac_buf_json_escape(b, v);
    ac_buf_cat(b, "\"", 1);
}

enum step
admin_answer_json(struct req *req, int status, const char *reason, const char *json, size_t len)
{
    req->resp_ops[0].name = AC_LIT("Content-Type");
    req->resp_ops[0].value = AC_LIT("application/json");
    req->n_resp_ops = 1;
    return req_synth_ex(req, status, reason, json, len, false, true);
}

static enum step
answer(struct req *req, int status, struct ac_buf *body)
{
    ac_buf_cat(body, "\n", 1);
    return admin_answer_json(req, status, NULL, body->p, body->len);
}

static int
list_ban(void *arg, struct store_bytes spec, double time)
{
    struct ac_buf *b = arg;

    if (b->len > 1)
        ac_buf_cat(b, ", ", 2);
    ac_buf_catstr(b, "{\"ban\": ");
    json_str(b, AC_SLICE(spec.p, spec.len));
    ac_buf_printf(b, ", \"time\": %.3f}", time);
    return 0;
}

/* Constant-time comparison of the secret (no early exit on a mismatch). */
static bool
secret_ok(const struct req *req)
{
    const char *want = req->w->cfg->admin_secret;
    const struct h1_header *h;
    size_t wl;
    unsigned diff = 0;

    if (want == NULL)
        return true;
    h = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("X-Admin-Secret"));
    wl = strlen(want);
    if (h == NULL || h->value.len != wl)
        return false;
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned)(want[i] ^ h->value.p[i]);
    return diff == 0;
}

/* Does the client want text rather than JSON?  (Accept names text/plain
 * and not application/json.) */
static bool
wants_text(const struct req *req)
{
    const struct h1_header *h = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("Accept"));

    if (h == NULL)
        return false;
    return h1_list_has_token(h->value, AC_LIT("text/plain")) &&
           !h1_list_has_token(h->value, AC_LIT("application/json"));
}

/* Longest a POST /reload waits for the main thread (compile, DNS, the
 * first probes of new backends): then 504 and the reload goes on. */
#define RELOAD_WAIT_MAX 60.0

/* The main thread has the result (reload_queue_serve(), any thread but
 * ours): on the request's worker now. */
static void
on_reload_wake(struct wrk_wakeup *wu)
{
    struct req *req = AC_CONTAINER_OF(wu, struct req, admin_wake);

    AC_CHECK_OBJ(req, REQ_MAGIC);
    if (req->in_drive || req->state != R_ADMIN)
        return;
    req_drive(req);
}

/*
 * POST /reload: the main thread compiles the policy and reads the
 * certificates (reload.h); the request waits in R_ADMIN (for the wake-up
 * that carries the result, or its own timer) and answers the result: 200
 * {"status": "ok"}, or 422 {"status": "error", "message": "site.vcl:3:9:
 * error: ..."} (the running policy stays), or 409 when there is nothing
 * to reload.  Accept: text/plain gets the same as plain text.
 */
static enum step
reload_begin(struct req *req)
{
    AC_ASSERT(req->reload == NULL);
    req->admin_wake.fn = on_reload_wake;
    req->reload = reload_req_submit(req->w, &req->admin_wake);
    req_timer(req, RELOAD_WAIT_MAX);
    req->state = R_ADMIN;
    return STEP_WAIT;
}

static enum step
reload_answer(struct req *req, int status, struct ac_slice msg)
{
    struct ac_buf *body = &req->tmpbuf;
    int code = status == 0 ? 200 : status > 0 ? 409 : status == -2 ? 504 : 422;

    ac_buf_reset(body);
    if (wants_text(req)) {
        if (status == 0)
            ac_buf_catstr(body, "reloaded\n");
        else
            ac_buf_printf(body, "reload failed%s:\n" AC_SLICE_FMT "\n",
                          status < 0 ? ", the running policy and certificates stay" : "",
                          AC_SLICE_ARG(msg));
        req->resp_ops[0].name = AC_LIT("Content-Type");
        req->resp_ops[0].value = AC_LIT("text/plain; charset=utf-8");
        req->n_resp_ops = 1;
        return req_synth_ex(req, code, NULL, body->p, body->len, false, true);
    }
    if (status == 0) {
        ac_buf_catstr(body, "{\"status\": \"ok\"}");
    } else {
        ac_buf_catstr(body, "{\"status\": \"error\", \"message\": ");
        json_str(body, msg);
        ac_buf_catstr(body, "}");
    }
    return answer(req, code, body);
}

enum step
admin_wait_step(struct req *req)
{
    struct ac_buf msg;
    int status;
    enum step r;

    AC_CHECK_OBJ(req, REQ_MAGIC);
    if (req->reload == NULL)
        return STEP_DONE;
    ac_buf_init(&msg, 0, 0);
    if (reload_req_result(&req->reload, &status, &msg)) {
        ev_timer_stop(req->w->loop, &req->tmr);
        r = reload_answer(req, status, ac_buf_slice(&msg));
        ac_buf_free(&msg);
        return r;
    }
    ac_buf_free(&msg);
    if (req->timed_out) {
        admin_req_end(req);
        return reload_answer(req, -2, AC_LIT("the reload did not finish in time (it goes on; "
                                             "the error log has the result)"));
    }
    return STEP_WAIT;               /* woken early: the result is not there yet */
}

void
admin_req_end(struct req *req)
{
    if (req->reload == NULL)
        return;
    reload_req_abandon(&req->reload);
    wrk_wake_cancel(req->w, &req->admin_wake);  /* a wake-up already queued for it */
}

enum step
admin_request(struct req *req)
{
    struct ac_slice path = req->http.path;
    const char *q = memchr(path.p, '?', path.len);
    struct ac_slice route = AC_SLICE(path.p, q ? (size_t)(q - path.p) : path.len);
    bool post = ac_slice_eq(req->http.method, AC_LIT("POST"));
    bool get = ac_slice_eq(req->http.method, AC_LIT("GET"));
    struct ac_buf *body = &req->tmpbuf, arg;
    double now = ev_now(req->w->loop);
    enum step r;

    req->cache_state = "ADMIN";
    ac_buf_reset(body);
    if (!secret_ok(req)) {
        ac_buf_catstr(body, "{\"error\": \"missing or wrong X-Admin-Secret\"}");
        return answer(req, 401, body);
    }
    if (ac_slice_eq(route, AC_LIT("/reload"))) {
        if (!post) {
            ac_buf_catstr(body, "{\"error\": \"POST /reload\"}");
            return answer(req, 405, body);
        }
        return reload_begin(req);
    }
    if (get && ac_slice_eq(route, AC_LIT("/stats")) && req->w->store == NULL) {
        ac_buf_catstr(body, "{\"backends\": ");
        pool_stats_json(pool_worker_set(req->w), body);
        ac_buf_catstr(body, "}");
        return answer(req, 200, body);
    }
    if (req->w->store == NULL) {
        ac_buf_catstr(body, "{\"error\": \"no cache (-s none)\"}");
        return answer(req, 404, body);
    }
    ac_buf_init(&arg, 0, 0);
    if (post && ac_slice_eq(route, AC_LIT("/purge"))) {
        unsigned flags = 0;
        size_t n = 0;
        int rc;
        if (query_param(req->http.path, "soft", &arg) && !(arg.len == 1 && arg.p[0] == '0'))
            flags |= STORE_PURGE_SOFT;
        if (query_param(req->http.path, "tag", &arg)) {
            rc = store_purge_tag(req->w->store, (struct store_bytes){ arg.p, arg.len }, flags, now,
                                 &n);
            if (arg.len > 0)
                (void)cluster_publish(CLWIRE_TAG, flags ? CLWIRE_SOFT : 0, ac_buf_slice(&arg));
        } else if (query_param(req->http.path, "url", &arg) && arg.len > 0 && arg.p[0] == '/') {
            struct ac_buf host;
            ac_buf_init(&host, 0, 0);
            if (!query_param(req->http.path, "host", &host))
                ac_buf_catstr(&host, "localhost");
            rc = cache_purge_url(req, ac_buf_slice(&arg), ac_buf_slice(&host), flags, &n);
            ac_buf_free(&host);
        } else {
            ac_buf_free(&arg);
            ac_buf_catstr(body, "{\"error\": \"expected url=/path (and host=) or tag=\"}");
            return answer(req, 400, body);
        }
        ac_buf_free(&arg);
        if (rc != STORE_OK) {
            ac_buf_printf(body, "{\"error\": \"%s\"}", store_strerror(rc));
            return answer(req, 500, body);
        }
        ac_buf_printf(body, "{\"purged\": %zu, \"mode\": \"%s\"", n,
                      (flags & STORE_PURGE_SOFT) ? "soft" : "hard");
        return peer_inval_answer(req, 200, NULL, cluster_ticket_last());
    }
    if (post && ac_slice_eq(route, AC_LIT("/ban"))) {
        const struct h1_header *h = h1_header_find(req->hdrs, req->http.nhdrs, AC_LIT("Ban"));
        char err[256];
        struct ac_buf canon;
        if (!query_param(req->http.path, "expr", &arg) && h != NULL)
            ac_buf_cats(&arg, h->value);
        ac_buf_init(&canon, 0, 0);
        if (arg.len == 0 || bans_add(req->w->store, ac_buf_slice(&arg), now, &canon, err,
                                     sizeof(err)) != 0) {
            if (arg.len == 0)
                snprintf(err, sizeof(err), "expected expr= or a Ban: header");
            ac_buf_catstr(body, "{\"error\": ");
            json_str(body, AC_SLICE(err, strlen(err)));
            ac_buf_catstr(body, "}");
            r = answer(req, 400, body);
        } else {
            ac_buf_catstr(body, "{\"ban\": ");
            json_str(body, ac_buf_slice(&canon));
            r = peer_inval_answer(req, 200, NULL, cluster_ticket_last());
        }
        ac_buf_free(&canon);
        ac_buf_free(&arg);
        return r;
    }
    ac_buf_free(&arg);
    if (get && ac_slice_eq(route, AC_LIT("/cluster"))) {
        cluster_json(body);
        return answer(req, 200, body);
    }
    if (get && ac_slice_eq(route, AC_LIT("/cluster/owner"))) {
        /* which member owns a URL's cache key (tools, tests) */
        struct ac_buf host;
        char owner[CLWIRE_NODE_MAX + 1];
        ac_buf_init(&host, 0, 0);
        if (!query_param(req->http.path, "url", &arg) || arg.len == 0 || arg.p[0] != '/') {
            ac_buf_free(&arg);
            ac_buf_free(&host);
            ac_buf_catstr(body, "{\"error\": \"expected url=/path (and host=)\"}");
            return answer(req, 400, body);
        }
        if (!query_param(req->http.path, "host", &host))
            ac_buf_catstr(&host, "localhost");
        int kr = cache_url_key(req, ac_buf_slice(&arg), ac_buf_slice(&host));
        ac_buf_free(&arg);
        ac_buf_free(&host);
        if (kr != 0) {
            ac_buf_catstr(body, "{\"error\": \"the policy gave no key\"}");
            return answer(req, 500, body);
        }
        cluster_owner_id(ac_buf_slice(&req->key), owner, sizeof(owner));
        ac_buf_catstr(body, "{\"owner\": ");
        json_str(body, AC_SLICE(owner, strlen(owner)));
        ac_buf_printf(body, ", \"self\": %s}", strcmp(owner, cluster_self()) == 0 ? "true" : "false");
        return answer(req, 200, body);
    }
    if (get && ac_slice_eq(route, AC_LIT("/bans"))) {
        ac_buf_catstr(body, "[");
        store_ban_iter(req->w->store, list_ban, body);
        ac_buf_catstr(body, "]");
        return answer(req, 200, body);
    }
    if (get && ac_slice_eq(route, AC_LIT("/stats"))) {
        struct store_stats st;
        bool first = true;
        store_stats(req->w->store, &st);
        ac_buf_catstr(body, "{\"store\": {");
#define X(name, help) json_count(body, &first, #name, st.name);
        STORE_STATS_LIST(X)
#undef X
        /* every worker's counters, summed (workers are one array) */
        struct stats sum;
        const struct wrk *w0 = req->w - req->w->id;
        memset(&sum, 0, sizeof(sum));
        for (unsigned i = 0; i < req->w->cfg->nworkers; i++)
            stats_accumulate(&sum, &w0[i].stats);
        ac_buf_catstr(body, "}, \"counters\": {");
        first = true;
#define X(name, help) json_count(body, &first, #name, sum.name);
        STAT_COUNTERS(X)
#undef X
        ac_buf_catstr(body, "}, \"backends\": ");
        pool_stats_json(pool_worker_set(req->w), body);
        if (cluster_on()) {
            ac_buf_catstr(body, ", \"cluster\": ");
            cluster_json(body);
        }
        ac_buf_catstr(body, "}");
        return answer(req, 200, body);
    }
    ac_buf_catstr(body, "{\"error\": \"unknown admin request\", \"routes\": [\"POST /purge\", "
                        "\"POST /ban\", \"GET /bans\", \"GET /stats\", \"POST /reload\", "
                        "\"GET /cluster\", \"GET /cluster/owner?url=\"]}");
    return answer(req, 404, body);
}
