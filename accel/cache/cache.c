/*
 * cache.c -- HTTP caching rules as pure functions.  Section numbers are
 * RFC 9111 unless they say otherwise; docs/caching.md maps each MUST and
 * SHOULD to the code and the tests.
 */
#include "cache.h"

#include "http.h"

#include <stdio.h>

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct ac_slice
trim(struct ac_slice s)
{
    while (s.len && is_ows(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && is_ows(s.p[s.len - 1]))
        s.len--;
    return s;
}

void
cache_cc_init(struct cache_cc *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = cc->swr = cc->sie = -1;
}

/* A directive's delta-seconds argument, possibly quoted.  A negative or
 * malformed value makes the response stale (§4.2.1, §1.2.2). */
static void
cc_seconds(struct cache_cc *cc, int64_t *slot, struct ac_slice arg, bool has_arg)
{
    int64_t v;

    if (*slot != -1)
        return;                     /* first occurrence wins */
    if (arg.len >= 2 && arg.p[0] == '"' && arg.p[arg.len - 1] == '"') {
        arg.p++;
        arg.len -= 2;
    }
    if (!has_arg || !http_delta_seconds(arg, &v)) {
        cc->invalid = true;
        *slot = 0;
        return;
    }
    *slot = v;
}

void
cache_cc_parse(struct cache_cc *cc, struct ac_slice value)
{
    const char *p = value.p, *end = value.p + value.len;

    cc->present = true;
    while (p < end) {
        const char *q = p;
        bool quoted = false;
        /* one element up to a comma outside quotes */
        while (q < end && (quoted || *q != ',')) {
            if (*q == '"')
                quoted = !quoted;
            else if (*q == '\\' && quoted && q + 1 < end)
                q++;
            q++;
        }
        struct ac_slice el = trim(AC_SLICE(p, (size_t)(q - p)));
        p = q < end ? q + 1 : end;
        if (el.len == 0)
            continue;
        cc->ndirectives++;
        const char *eq = memchr(el.p, '=', el.len);
        struct ac_slice name = trim(AC_SLICE(el.p, eq ? (size_t)(eq - el.p) : el.len));
        struct ac_slice arg = eq ? trim(AC_SLICE(eq + 1, (size_t)(el.p + el.len - eq - 1)))
                                 : AC_SLICE(NULL, 0);
        bool has = eq != NULL;
        if (ac_slice_caseeq(name, AC_LIT("no-store")))
            cc->no_store = true;
        else if (ac_slice_caseeq(name, AC_LIT("no-cache")))
            cc->no_cache = true;    /* the qualified form is treated as the plain one */
        else if (ac_slice_caseeq(name, AC_LIT("private")))
            cc->private_ = true;
        else if (ac_slice_caseeq(name, AC_LIT("public")))
            cc->public_ = true;
        else if (ac_slice_caseeq(name, AC_LIT("must-revalidate")))
            cc->must_revalidate = true;
        else if (ac_slice_caseeq(name, AC_LIT("proxy-revalidate")))
            cc->proxy_revalidate = true;
        else if (ac_slice_caseeq(name, AC_LIT("must-understand")))
            cc->must_understand = true;
        else if (ac_slice_caseeq(name, AC_LIT("no-transform")))
            cc->no_transform = true;
        else if (ac_slice_caseeq(name, AC_LIT("immutable")))
            cc->immutable = true;
        else if (ac_slice_caseeq(name, AC_LIT("max-age")))
            cc_seconds(cc, &cc->max_age, arg, has);
        else if (ac_slice_caseeq(name, AC_LIT("s-maxage")))
            cc_seconds(cc, &cc->s_maxage, arg, has);
        else if (ac_slice_caseeq(name, AC_LIT("stale-while-revalidate")))
            cc_seconds(cc, &cc->swr, arg, has);
        else if (ac_slice_caseeq(name, AC_LIT("stale-if-error")))
            cc_seconds(cc, &cc->sie, arg, has);
        /* unknown extensions are ignored (§5.2.3) */
    }
}

void
cache_key(const struct h1_request *req, struct ac_buf *out)
{
    struct ac_slice h = req->host;
    char *d;

    /* The default port names the same origin (RFC 9110 §4.2.3). */
    if (h.len > 3 && memcmp(h.p + h.len - 3, ":80", 3) == 0 && h.p[h.len - 4] != ':')
        h.len -= 3;
    ac_buf_reset(out);
    d = ac_buf_reserve(out, h.len + 1 + 3 * req->path.len);
    if (d == NULL)
        return;
    for (size_t i = 0; i < h.len; i++) {
        char c = h.p[i];
        d[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    d[h.len] = '\n';
    /* "/a[b]" and "/a%5Bb%5D" are one resource to every origin (h1_parse.h) */
    ac_buf_commit(out, h.len + 1 + h1_target_canon(req->path.p, req->path.len, d + h.len + 1));
}

static bool
method_is(const struct h1_request *req, const char *m, size_t n)
{
    return req->method.len == n && memcmp(req->method.p, m, n) == 0;
}

enum cache_req_kind
cache_classify_request(const struct h1_request *req, const char **why)
{
    *why = NULL;
    if (!method_is(req, "GET", 3) && !method_is(req, "HEAD", 4)) {
        if (method_is(req, "OPTIONS", 7) || method_is(req, "TRACE", 5)) {
            *why = "method";
            return CACHE_REQ_PASS;
        }
        *why = "unsafe method";
        return CACHE_REQ_UNSAFE;
    }
    /* As Varnish's builtin.vcl: credentials mean a personal answer. */
    if (h1_header_find(req->hdrs, req->nhdrs, AC_LIT("Authorization")) != NULL) {
        *why = "Authorization";
        return CACHE_REQ_PASS;
    }
    if (h1_header_find(req->hdrs, req->nhdrs, AC_LIT("Cookie")) != NULL) {
        *why = "Cookie";
        return CACHE_REQ_PASS;
    }
    return CACHE_REQ_LOOKUP;
}

/* Status codes cacheable by default, for heuristic freshness (RFC 9110 §15.1). */
static bool
heuristic_status(int st)
{
    switch (st) {
    case 200: case 203: case 204: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}

/* Status codes whose caching rules we implement (for must-understand). */
static bool
understood_status(int st)
{
    return heuristic_status(st) || st == 302 || st == 303 || st == 307 || st == 403;
}

static const struct h1_header *
find(const struct h1_response *r, const char *name, size_t n)
{
    return h1_header_find(r->hdrs, r->nhdrs, AC_SLICE(name, n));
}
#define FIND(r, lit) find((r), (lit), sizeof(lit) - 1)

/* Collect every field line of one name into cc; false when absent. */
static bool
collect_cc(const struct h1_response *r, struct ac_slice name, struct cache_cc *cc)
{
    bool any = false;

    cache_cc_init(cc);
    for (unsigned i = 0; i < r->nhdrs; i++) {
        if (ac_slice_caseeq(r->hdrs[i].name, name)) {
            cache_cc_parse(cc, r->hdrs[i].value);
            any = true;
        }
    }
    return any;
}

static void
not_stored(struct cache_decision *d, const char *why, bool hfm, const struct cache_params *p)
{
    d->store = false;
    d->hfm = hfm;
    d->hfm_ttl = hfm ? p->hfm_ttl : 0;
    d->why = why;
}

/* §3 and the builtin policy: why a response may not be stored (NULL: it
 * may); *hfm says whether to leave a hit-for-miss marker. */
static const char *
unstorable(const struct h1_response *resp, const struct cache_cc *fc, bool *hfm)
{
    const struct h1_header *h;
    int st = resp->status;

    *hfm = true;
    if (st < 200 || st == 206 || st == 304) {
        *hfm = false;
        return st == 206 ? "partial content" : "not a final status";
    }
    if (fc->must_understand && !understood_status(st))
        return "must-understand";   /* §5.2.2.3: only for status codes we implement */
    if (fc->no_store && !fc->must_understand)
        return "no-store";
    if (fc->private_)
        return "private";
    if (fc->no_cache)
        return "no-cache";
    if (FIND(resp, "Set-Cookie") != NULL)
        return "Set-Cookie";
    if ((h = FIND(resp, "Surrogate-Control")) != NULL &&
        h1_list_has_token(h->value, AC_LIT("no-store")))
        return "Surrogate-Control: no-store";
    for (unsigned i = 0; i < resp->nhdrs; i++) {
        if (ac_slice_caseeq(resp->hdrs[i].name, AC_LIT("Vary")) &&
            h1_list_has_token(resp->hdrs[i].value, AC_LIT("*")))
            return "Vary: *";
    }
    return NULL;
}

void
cache_decide(const struct h1_request *req, const struct h1_response *resp, double req_time,
             double resp_time, const struct cache_params *p, struct cache_decision *d)
{
    struct cache_cc cc, tcc;
    const struct h1_header *h;
    bool targeted = false, explicit_fresh = false;
    double lifetime = 0, date, v;
    int64_t age = 0;
    int st = resp->status;

    memset(d, 0, sizeof(*d));

    /* §4.2.3: Age. */
    date = resp_time;
    if ((h = FIND(resp, "Date")) != NULL && http_date_parse(h->value, &v))
        date = v;
    d->date = date;
    if ((h = FIND(resp, "Age")) != NULL && !http_delta_seconds(h->value, &age))
        age = 0;
    double apparent = resp_time - date > 0 ? resp_time - date : 0;
    double corrected = (double)age + (resp_time - req_time);
    d->initial_age = apparent > corrected ? apparent : corrected;

    /* RFC 9213: a targeted field for us wins over CDN-Cache-Control, which
     * wins over Cache-Control; the winner replaces Cache-Control and Expires. */
    collect_cc(resp, AC_LIT("Cache-Control"), &cc);
    /* RFC 9213 §2.2: only a valid, non-empty targeted field counts. */
    if (p->targeted_cc.len && collect_cc(resp, p->targeted_cc, &tcc) && !tcc.invalid &&
        tcc.ndirectives > 0) {
        targeted = true;
    } else if (collect_cc(resp, AC_LIT("CDN-Cache-Control"), &tcc) && !tcc.invalid &&
               tcc.ndirectives > 0) {
        targeted = true;
    }
    const struct cache_cc *fc = targeted ? &tcc : &cc;
    d->no_transform = cc.no_transform;

    /* §4.2.1: freshness lifetime, s-maxage > max-age > Expires > heuristic. */
    if (fc->invalid) {
        lifetime = 0;
        explicit_fresh = true;
    } else if (fc->s_maxage >= 0) {
        lifetime = (double)fc->s_maxage;
        explicit_fresh = true;
    } else if (fc->max_age >= 0) {
        lifetime = (double)fc->max_age;
        explicit_fresh = true;
    } else if (!targeted && (h = FIND(resp, "Expires")) != NULL) {
        explicit_fresh = true;
        /* §5.3: an invalid Expires ("0") means already expired. */
        lifetime = http_date_parse(h->value, &v) ? v - date : 0;
    } else if (heuristic_status(st) && (h = FIND(resp, "Last-Modified")) != NULL &&
               http_date_parse(h->value, &v) && v < date) {
        /* §4.2.2: a fraction of the time since the last change, capped. */
        lifetime = (date - v) * p->heuristic_fraction;
        if (lifetime > p->heuristic_max)
            lifetime = p->heuristic_max;
    }
    (void)explicit_fresh;
    /* §4.2: fresh while lifetime > current_age; the object's clock starts
     * at resp_time - initial_age (the session sets times.insert so), and
     * ttl is the whole lifetime.  It is computed even for a response that
     * is not stored: a policy may still decide to store it. */
    d->ttl = lifetime > 0 ? lifetime : 0;
    d->must_revalidate = fc->must_revalidate || fc->proxy_revalidate || fc->s_maxage >= 0;
    if (d->must_revalidate) {
        d->grace = 0;           /* §4.2.4: never served stale */
        d->stale_if_error = 0;
    } else {
        d->grace = fc->swr >= 0 ? (double)fc->swr : p->default_grace;
        d->stale_if_error = fc->sie >= 0 ? (double)fc->sie : 0;
    }
    bool validators = FIND(resp, "ETag") != NULL || FIND(resp, "Last-Modified") != NULL;
    d->keep = validators ? p->default_keep : 0;
    if (d->stale_if_error > d->grace + d->keep)
        d->keep = d->stale_if_error - d->grace;

    bool hfm;
    const char *why = unstorable(resp, fc, &hfm);
    /* §3.5: an answer to a request with credentials is stored only when the
     * origin says a shared cache may (public, s-maxage, must-revalidate). */
    if (why == NULL && req != NULL &&
        h1_header_find(req->hdrs, req->nhdrs, AC_LIT("Authorization")) != NULL &&
        !fc->public_ && fc->s_maxage < 0 && !fc->must_revalidate)
        why = "Authorization", hfm = true;
    if (why != NULL) {
        not_stored(d, why, hfm, p);
        return;
    }
    if (lifetime - d->initial_age <= 0) {
        /* No blanket default TTL: nothing to serve fresh.  Leave a marker so
         * the next requests go to the origin in parallel, not in a queue. */
        not_stored(d, "no freshness lifetime", true, p);
        return;
    }
    d->store = true;
}

/* Normalised value of a request field for Vary: field lines joined with
 * ", ", OWS trimmed, runs of whitespace collapsed. */
static void
vary_value(const struct h1_request *req, struct ac_slice name, struct ac_buf *out, bool *present)
{
    bool first = true;

    *present = false;
    for (unsigned i = 0; i < req->nhdrs; i++) {
        if (!ac_slice_caseeq(req->hdrs[i].name, name))
            continue;
        struct ac_slice v = trim(req->hdrs[i].value);
        if (!first)
            ac_buf_cat(out, ", ", 2);
        first = false;
        *present = true;
        bool ws = false;
        for (size_t k = 0; k < v.len; k++) {
            if (is_ows(v.p[k])) {
                ws = true;
                continue;
            }
            if (ws)
                ac_buf_cat(out, " ", 1);
            ws = false;
            ac_buf_cat(out, &v.p[k], 1);
        }
    }
}

/* Selector layout: for each Vary field, "name\0" then '+' value or '-',
 * then "\0".  Names are lower-cased; Accept-Encoding is skipped. */
bool
cache_vary_selector(const struct h1_response *resp, const struct h1_request *req,
                    struct ac_buf *sel)
{
    ac_buf_reset(sel);
    for (unsigned i = 0; i < resp->nhdrs; i++) {
        if (!ac_slice_caseeq(resp->hdrs[i].name, AC_LIT("Vary")))
            continue;
        struct ac_slice v = resp->hdrs[i].value;
        const char *p = v.p, *end = v.p + v.len;
        while (p < end) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            struct ac_slice n = trim(AC_SLICE(p, c ? (size_t)(c - p) : (size_t)(end - p)));
            p = c ? c + 1 : end;
            if (n.len == 0)
                continue;
            if (n.len == 1 && n.p[0] == '*')
                return false;
            if (ac_slice_caseeq(n, AC_LIT("Accept-Encoding")))
                continue;
            for (size_t k = 0; k < n.len; k++) {
                char ch = n.p[k];
                ch = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
                ac_buf_cat(sel, &ch, 1);
            }
            ac_buf_cat(sel, "", 1);
            size_t mark = sel->len;
            bool present;
            ac_buf_cat(sel, "+", 1);
            vary_value(req, n, sel, &present);
            if (!present) {
                sel->len = mark;
                ac_buf_cat(sel, "-", 1);
            }
            ac_buf_cat(sel, "", 1);
        }
    }
    return true;
}

bool
cache_vary_match(struct ac_slice sel, const struct h1_request *req)
{
    const char *p = sel.p, *end = sel.p + sel.len;
    char small[512];
    /* A stack buffer for the usual short values (its limit stops any
     * growth); a longer value is normalised again into the heap. */
    struct ac_buf tmp = { small, 0, sizeof(small), sizeof(small), false };
    bool ok = true;

    while (ok && p < end) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        if (z == NULL)
            return false;
        struct ac_slice name = AC_SLICE(p, (size_t)(z - p));
        const char *vs = z + 1;
        const char *vz = vs < end ? memchr(vs, '\0', (size_t)(end - vs)) : NULL;
        if (vz == NULL)
            return false;
        bool present;
        tmp.len = 0;
        tmp.error = false;
        vary_value(req, name, &tmp, &present);
        if (tmp.error && tmp.p == small) {
            ac_buf_init(&tmp, 2048, 0);
            vary_value(req, name, &tmp, &present);
        }
        if (vs[0] == '-')
            ok = !present;
        else
            ok = present && (size_t)(vz - vs - 1) == tmp.len &&
                 memcmp(vs + 1, tmp.p, tmp.len) == 0;
        p = vz + 1;
    }
    if (tmp.p != small)
        ac_buf_free(&tmp);
    return ok;
}

/* Fields never stored in the block. */
static bool
block_excluded(struct ac_slice n, const struct cache_params *p)
{
    return http_is_hop_by_hop(n) || ac_slice_caseeq(n, AC_LIT("Content-Length")) ||
           ac_slice_caseeq(n, AC_LIT("Age")) || ac_slice_caseeq(n, AC_LIT("Set-Cookie")) ||
           ac_slice_caseeq(n, AC_LIT("CDN-Cache-Control")) ||
           /* surrogate keys are kept as the object's tags, not sent to clients */
           ac_slice_caseeq(n, AC_LIT("Surrogate-Key")) || ac_slice_caseeq(n, AC_LIT("xkey")) ||
           ac_slice_caseeq(n, AC_LIT("Cache-Tag")) ||
           (p->targeted_cc.len && ac_slice_caseeq(n, p->targeted_cc));
}

static void
block_field(struct ac_buf *out, struct ac_slice n, struct ac_slice v)
{
    ac_buf_field(out, n, v);
}

/* Append r's storable fields; add Date when neither r nor the caller
 * (have_date) has one (RFC 9110 §6.6.1: a recipient with a clock adds it). */
static void
block_fields(struct ac_buf *out, const struct h1_response *r, const struct cache_params *p,
             double resp_time, bool have_date)
{
    for (unsigned i = 0; i < r->nhdrs; i++) {
        const struct h1_header *h = &r->hdrs[i];
        if (block_excluded(h->name, p) || http_conn_lists(r->hdrs, r->nhdrs, h->name))
            continue;
        if (ac_slice_caseeq(h->name, AC_LIT("Date")))
            have_date = true;
        block_field(out, h->name, h->value);
    }
    if (!have_date) {
        char d[32];
        http_date_fmt(resp_time, d);
        block_field(out, AC_LIT("Date"), AC_SLICE(d, 29));
    }
}

void
cache_block_build(const struct h1_response *resp, const struct cache_params *p,
                  double resp_time, struct ac_buf *out)
{
    ac_buf_reset(out);
    ac_buf_printf(out, "%03d ", resp->status);
    ac_buf_cats(out, resp->reason_phrase);
    ac_buf_cat(out, "\r\n", 2);
    block_fields(out, resp, p, resp_time, false);
}

/* Iterate the field lines of a block; *pos starts at 0.  The status line is
 * skipped. */
static bool
block_next(struct ac_slice b, size_t *pos, struct ac_slice *name, struct ac_slice *value)
{
    if (*pos == 0) {
        const char *nl = memchr(b.p, '\n', b.len);
        if (nl == NULL)
            return false;
        *pos = (size_t)(nl - b.p) + 1;
    }
    while (*pos < b.len) {
        const char *line = b.p + *pos;
        const char *nl = memchr(line, '\n', b.len - *pos);
        size_t ll = nl ? (size_t)(nl - line) + 1 : b.len - *pos;
        *pos += ll;
        const char *colon = memchr(line, ':', ll);
        if (colon == NULL)
            continue;
        *name = AC_SLICE(line, (size_t)(colon - line));
        size_t vl = ll - (size_t)(colon + 1 - line);
        struct ac_slice v = AC_SLICE(colon + 1, vl);
        while (v.len && (v.p[v.len - 1] == '\n' || v.p[v.len - 1] == '\r'))
            v.len--;
        *value = trim(v);
        return true;
    }
    return false;
}

void
cache_block_seal(struct ac_buf *block, struct ac_slice url, struct ac_slice host)
{
    ac_buf_cat(block, "", 1);
    ac_buf_cats(block, url);
    ac_buf_cat(block, "", 1);
    ac_buf_cats(block, host);
}

struct ac_slice
cache_block_visible(struct ac_slice block)
{
    const char *z = block.len ? memchr(block.p, '\0', block.len) : NULL;

    return z ? AC_SLICE(block.p, (size_t)(z - block.p)) : block;
}

void
cache_block_origin(struct ac_slice block, struct ac_slice *url, struct ac_slice *host)
{
    const char *end = block.p + block.len;
    const char *z = block.len ? memchr(block.p, '\0', block.len) : NULL;

    *url = *host = AC_SLICE("", 0);
    if (z == NULL)
        return;
    const char *u = z + 1;
    const char *z2 = memchr(u, '\0', (size_t)(end - u));
    if (z2 == NULL) {
        *url = AC_SLICE(u, (size_t)(end - u));
        return;
    }
    *url = AC_SLICE(u, (size_t)(z2 - u));
    *host = AC_SLICE(z2 + 1, (size_t)(end - z2 - 1));
}

bool
cache_block_find(struct ac_slice block, struct ac_slice name, struct ac_slice *value)
{
    block = cache_block_visible(block);
    size_t pos = 0;
    struct ac_slice n, v;

    while (block_next(block, &pos, &n, &v)) {
        if (ac_slice_caseeq(n, name)) {
            *value = v;
            return true;
        }
    }
    return false;
}

void
cache_block_freshen(struct ac_slice old, const struct h1_response *r304,
                    const struct cache_params *p, double resp_time, struct ac_buf *out)
{
    const char *nl;
    size_t pos = 0;
    struct ac_slice n, v;
    bool date = false;

    old = cache_block_visible(old);
    nl = memchr(old.p, '\n', old.len);
    ac_buf_reset(out);
    if (nl == NULL)
        return;
    ac_buf_cat(out, old.p, (size_t)(nl - old.p) + 1);   /* the stored status line */
    /* Stored fields the 304 does not replace stay as they were ... */
    while (block_next(old, &pos, &n, &v)) {
        if (h1_header_find(r304->hdrs, r304->nhdrs, n) != NULL && !block_excluded(n, p) &&
            !http_conn_lists(r304->hdrs, r304->nhdrs, n))
            continue;
        if (ac_slice_caseeq(n, AC_LIT("Date")))
            date = true;
        block_field(out, n, v);
    }
    /* ... and the 304's fields replace the others (§3.2), except those a
     * cache never stores (§3.1). */
    block_fields(out, r304, p, resp_time, date);
}

/* The opaque-tag of an entity-tag, without W/ (weak comparison). */
static struct ac_slice
opaque_tag(struct ac_slice t, bool *weak)
{
    t = trim(t);
    *weak = t.len >= 2 && t.p[0] == 'W' && t.p[1] == '/';
    if (*weak) {
        t.p += 2;
        t.len -= 2;
    }
    return t;
}

bool
cache_not_modified(const struct h1_request *req, struct ac_slice etag,
                   struct ac_slice last_modified)
{
    const struct h1_header *h;
    double ims, lm;

    if ((h = h1_header_find(req->hdrs, req->nhdrs, AC_LIT("If-None-Match"))) != NULL) {
        bool w1, w2;
        struct ac_slice mine = opaque_tag(etag, &w1);
        const char *p = h->value.p, *end = h->value.p + h->value.len;
        if (trim(h->value).len == 1 && trim(h->value).p[0] == '*')
            return true;
        if (etag.len == 0)
            return false;
        while (p < end) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            struct ac_slice t = opaque_tag(AC_SLICE(p, c ? (size_t)(c - p) : (size_t)(end - p)), &w2);
            p = c ? c + 1 : end;
            if (ac_slice_eq(t, mine))
                return true;
        }
        return false;               /* If-Modified-Since is ignored with If-None-Match */
    }
    if ((h = h1_header_find(req->hdrs, req->nhdrs, AC_LIT("If-Modified-Since"))) != NULL &&
        last_modified.len > 0 && http_date_parse(h->value, &ims) &&
        http_date_parse(last_modified, &lm))
        return lm <= ims;
    return false;
}

static bool
parse_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;

    if (p == end)
        return false;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

int
cache_range(const struct h1_request *req, uint64_t len, struct ac_slice etag,
            struct ac_slice last_modified, uint64_t *first, uint64_t *last)
{
    const struct h1_header *h = h1_header_find(req->hdrs, req->nhdrs, AC_LIT("Range"));
    const struct h1_header *ir;
    struct ac_slice r;

    if (h == NULL || !method_is(req, "GET", 3))
        return 0;                   /* RFC 9110 §14.2: Range is for GET only */
    if ((ir = h1_header_find(req->hdrs, req->nhdrs, AC_LIT("If-Range"))) != NULL) {
        /* RFC 9110 §13.1.5: a strong validator must match exactly. */
        struct ac_slice v = trim(ir->value);
        bool weak = v.len >= 2 && v.p[0] == 'W' && v.p[1] == '/';
        if (v.len > 0 && (v.p[0] == '"' || weak)) {
            struct ac_slice e = trim(etag);
            if (weak || e.len == 0 || (e.len >= 2 && e.p[0] == 'W' && e.p[1] == '/') ||
                !ac_slice_eq(v, e))
                return 0;
        } else if (!ac_slice_eq(v, trim(last_modified)) || last_modified.len == 0) {
            return 0;
        }
    }
    r = trim(h->value);
    if (r.len < 6 || memcmp(r.p, "bytes=", 6) != 0)
        return 0;                   /* another unit: ignore Range */
    r.p += 6;
    r.len -= 6;
    r = trim(r);
    if (memchr(r.p, ',', r.len) != NULL)
        return 0;                   /* multi-range: answer 200 with everything */
    const char *dash = memchr(r.p, '-', r.len);
    if (dash == NULL)
        return 0;
    const char *end = r.p + r.len;
    uint64_t a, b;
    if (dash == r.p) {              /* suffix: last N bytes */
        if (!parse_u64(dash + 1, end, &b))
            return 0;
        if (b == 0 || len == 0)
            return 416;
        *first = b >= len ? 0 : len - b;
        *last = len - 1;
        return 206;
    }
    if (!parse_u64(r.p, dash, &a))
        return 0;
    if (dash + 1 == end)
        b = len ? len - 1 : 0;
    else if (!parse_u64(dash + 1, end, &b) || b < a)
        return 0;
    if (a >= len)
        return 416;
    *first = a;
    *last = b >= len ? len - 1 : b;
    return 206;
}
