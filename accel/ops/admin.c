/*
 * admin.c -- the admin listener's requests.  They never reach an origin;
 * each answer is one JSON document.
 */
#include "admin.h"

#include "bans.h"
#include "pool.h"
#include "reload.h"
#include "sess.h"

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
admin_answer_json(struct sess *s, int status, const char *reason, const char *json, size_t len)
{
    s->resp_ops[0].name = AC_LIT("Content-Type");
    s->resp_ops[0].value = AC_LIT("application/json");
    s->n_resp_ops = 1;
    return sess_synth_ex(s, status, reason, json, len, false, true);
}

static enum step
answer(struct sess *s, int status, struct ac_buf *body)
{
    ac_buf_cat(body, "\n", 1);
    return admin_answer_json(s, status, NULL, body->p, body->len);
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
secret_ok(const struct sess *s)
{
    const char *want = s->w->cfg->admin_secret;
    const struct h1_header *h;
    size_t wl;
    unsigned diff = 0;

    if (want == NULL)
        return true;
    h = h1_header_find(s->hdrs, s->req.nhdrs, AC_LIT("X-Admin-Secret"));
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
wants_text(const struct sess *s)
{
    const struct h1_header *h = h1_header_find(s->hdrs, s->req.nhdrs, AC_LIT("Accept"));

    if (h == NULL)
        return false;
    return h1_list_has_token(h->value, AC_LIT("text/plain")) &&
           !h1_list_has_token(h->value, AC_LIT("application/json"));
}

/* Longest a POST /reload waits for the main thread (compile, DNS, the
 * first probes of new backends): then 504 and the reload goes on. */
#define RELOAD_WAIT_MAX 60.0

/*
 * POST /reload: the main thread compiles the policy and reads the
 * certificates (reload.h); this session waits in S_ADMIN and answers the
 * result: 200 {"status": "ok"}, or 422 {"status": "error", "message":
 * "site.vcl:3:9: error: ..."} (the running policy stays), or 409 when there
 * is nothing to reload.  Accept: text/plain gets the same as plain text.
 */
static enum step
reload_begin(struct sess *s)
{
    AC_ASSERT(s->reload == NULL);
    s->reload = reload_req_submit(s->w, s);
    s->reload_until = ev_now(s->w->loop) + RELOAD_WAIT_MAX;
    s->state = S_ADMIN;
    return STEP_MORE;
}

static enum step
reload_answer(struct sess *s, int status, struct ac_slice msg)
{
    struct ac_buf *body = &s->tmpbuf;
    int code = status == 0 ? 200 : status > 0 ? 409 : status == -2 ? 504 : 422;

    ac_buf_reset(body);
    if (wants_text(s)) {
        if (status == 0)
            ac_buf_catstr(body, "reloaded\n");
        else
            ac_buf_printf(body, "reload failed%s:\n" AC_SLICE_FMT "\n",
                          status < 0 ? ", the running policy and certificates stay" : "",
                          AC_SLICE_ARG(msg));
        s->resp_ops[0].name = AC_LIT("Content-Type");
        s->resp_ops[0].value = AC_LIT("text/plain; charset=utf-8");
        s->n_resp_ops = 1;
        return sess_synth_ex(s, code, NULL, body->p, body->len, false, true);
    }
    if (status == 0) {
        ac_buf_catstr(body, "{\"status\": \"ok\"}");
    } else {
        ac_buf_catstr(body, "{\"status\": \"error\", \"message\": ");
        json_str(body, msg);
        ac_buf_catstr(body, "}");
    }
    return answer(s, code, body);
}

enum step
admin_wait_step(struct sess *s)
{
    struct ac_buf msg;
    double left;
    int status;
    enum step r;

    AC_CHECK_OBJ(s, SESS_MAGIC);
    if (s->reload == NULL)
        return STEP_DONE;
    ac_buf_init(&msg, 0, 0);
    if (reload_req_result(&s->reload, &status, &msg)) {
        r = reload_answer(s, status, ac_buf_slice(&msg));
        ac_buf_free(&msg);
        return r;
    }
    ac_buf_free(&msg);
    left = s->reload_until - ev_now(s->w->loop);
    if (left <= 0 || s->w->stopping) {
        admin_sess_end(s);
        return reload_answer(s, -2, AC_LIT("the reload did not finish in time (it goes on; "
                                           "the error log has the result)"));
    }
    sess_want(s, 0, 0);
    sess_timer(s, left);
    return STEP_WAIT;
}

void
admin_sess_end(struct sess *s)
{
    if (s->reload == NULL)
        return;
    reload_req_abandon(&s->reload);
    wrk_wake_cancel(s->w, s);       /* a wake-up already queued for it */
}

enum step
admin_request(struct sess *s)
{
    struct ac_slice path = s->req.path;
    const char *q = memchr(path.p, '?', path.len);
    struct ac_slice route = AC_SLICE(path.p, q ? (size_t)(q - path.p) : path.len);
    bool post = ac_slice_eq(s->req.method, AC_LIT("POST"));
    bool get = ac_slice_eq(s->req.method, AC_LIT("GET"));
    struct ac_buf *body = &s->tmpbuf, arg;
    double now = ev_now(s->w->loop);
    enum step r;

    s->cache_state = "ADMIN";
    ac_buf_reset(body);
    if (!secret_ok(s)) {
        ac_buf_catstr(body, "{\"error\": \"missing or wrong X-Admin-Secret\"}");
        return answer(s, 401, body);
    }
    if (ac_slice_eq(route, AC_LIT("/reload"))) {
        if (!post) {
            ac_buf_catstr(body, "{\"error\": \"POST /reload\"}");
            return answer(s, 405, body);
        }
        return reload_begin(s);
    }
    if (get && ac_slice_eq(route, AC_LIT("/stats")) && s->w->store == NULL) {
        ac_buf_catstr(body, "{\"backends\": ");
        pool_stats_json(pool_worker_set(s->w), body);
        ac_buf_catstr(body, "}");
        return answer(s, 200, body);
    }
    if (s->w->store == NULL) {
        ac_buf_catstr(body, "{\"error\": \"no cache (-s none)\"}");
        return answer(s, 404, body);
    }
    ac_buf_init(&arg, 0, 0);
    if (post && ac_slice_eq(route, AC_LIT("/purge"))) {
        unsigned flags = 0;
        size_t n = 0;
        int rc;
        if (query_param(s->req.path, "soft", &arg) && !(arg.len == 1 && arg.p[0] == '0'))
            flags |= STORE_PURGE_SOFT;
        if (query_param(s->req.path, "tag", &arg)) {
            rc = store_purge_tag(s->w->store, (struct store_bytes){ arg.p, arg.len }, flags, now,
                                 &n);
        } else if (query_param(s->req.path, "url", &arg) && arg.len > 0 && arg.p[0] == '/') {
            struct ac_buf host;
            ac_buf_init(&host, 0, 0);
            if (!query_param(s->req.path, "host", &host))
                ac_buf_catstr(&host, "localhost");
            rc = cache_purge_url(s, ac_buf_slice(&arg), ac_buf_slice(&host), flags, &n);
            ac_buf_free(&host);
        } else {
            ac_buf_free(&arg);
            ac_buf_catstr(body, "{\"error\": \"expected url=/path (and host=) or tag=\"}");
            return answer(s, 400, body);
        }
        ac_buf_free(&arg);
        if (rc != STORE_OK) {
            ac_buf_printf(body, "{\"error\": \"%s\"}", store_strerror(rc));
            return answer(s, 500, body);
        }
        ac_buf_printf(body, "{\"purged\": %zu, \"mode\": \"%s\"}", n,
                      (flags & STORE_PURGE_SOFT) ? "soft" : "hard");
        return answer(s, 200, body);
    }
    if (post && ac_slice_eq(route, AC_LIT("/ban"))) {
        const struct h1_header *h = h1_header_find(s->hdrs, s->req.nhdrs, AC_LIT("Ban"));
        char err[256];
        struct ac_buf canon;
        if (!query_param(s->req.path, "expr", &arg) && h != NULL)
            ac_buf_cats(&arg, h->value);
        ac_buf_init(&canon, 0, 0);
        if (arg.len == 0 || bans_add(s->w->store, ac_buf_slice(&arg), now, &canon, err,
                                     sizeof(err)) != 0) {
            if (arg.len == 0)
                snprintf(err, sizeof(err), "expected expr= or a Ban: header");
            ac_buf_catstr(body, "{\"error\": ");
            json_str(body, AC_SLICE(err, strlen(err)));
            ac_buf_catstr(body, "}");
            r = answer(s, 400, body);
        } else {
            ac_buf_catstr(body, "{\"ban\": ");
            json_str(body, ac_buf_slice(&canon));
            ac_buf_catstr(body, "}");
            r = answer(s, 200, body);
        }
        ac_buf_free(&canon);
        ac_buf_free(&arg);
        return r;
    }
    ac_buf_free(&arg);
    if (get && ac_slice_eq(route, AC_LIT("/bans"))) {
        ac_buf_catstr(body, "[");
        store_ban_iter(s->w->store, list_ban, body);
        ac_buf_catstr(body, "]");
        return answer(s, 200, body);
    }
    if (get && ac_slice_eq(route, AC_LIT("/stats"))) {
        struct store_stats st;
        bool first = true;
        store_stats(s->w->store, &st);
        ac_buf_catstr(body, "{\"store\": {");
#define X(name, help) json_count(body, &first, #name, st.name);
        STORE_STATS_LIST(X)
#undef X
        /* every worker's counters, summed (workers are one array) */
        struct stats sum;
        const struct wrk *w0 = s->w - s->w->id;
        memset(&sum, 0, sizeof(sum));
        for (unsigned i = 0; i < s->w->cfg->nworkers; i++)
            stats_accumulate(&sum, &w0[i].stats);
        ac_buf_catstr(body, "}, \"counters\": {");
        first = true;
#define X(name, help) json_count(body, &first, #name, sum.name);
        STAT_COUNTERS(X)
#undef X
        ac_buf_catstr(body, "}, \"backends\": ");
        pool_stats_json(pool_worker_set(s->w), body);
        ac_buf_catstr(body, "}");
        return answer(s, 200, body);
    }
    ac_buf_catstr(body, "{\"error\": \"unknown admin request\", \"routes\": [\"POST /purge\", "
                        "\"POST /ban\", \"GET /bans\", \"GET /stats\", \"POST /reload\"]}");
    return answer(s, 404, body);
}
