/*
 * vcl_vmod.c -- the built-in functions and the vmods accel implements
 * natively: regsub/regsuball, hash_data, synthetic, ban, std.*, xkey,
 * cookie, var, and director .backend().
 *
 * Each takes its arguments in parameter order and leaves its result in
 * *ret.  Strings they make go to the request arena.  Per-task state (the
 * cookie jar, the var store) lives in the arena too, reached from the ctx.
 */
#include "vcl.h"
#include "vcl_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JAR_MAX 64 /* cookies kept per request; Varnish's vmod_cookie has 100 */

static const struct vcl_str unset = {NULL, 0};

/* --------------------------------------------------------------- regsub */

/* Appends sub to sb, expanding \0..\9 from the match. */
static void
expand(struct vcl_sb *sb, struct vcl_str s, struct vcl_str sub, const size_t *ov, uint32_t ncap)
{
    size_t i = 0, lit = 0;

    while (i < sub.len) {
        if (sub.p[i] == '\\' && i + 1 < sub.len && isdigit((unsigned char)sub.p[i + 1])) {
            unsigned g = (unsigned)(sub.p[i + 1] - '0');

            vcl_sb_add(sb, sub.p + lit, i - lit);
            if (g <= ncap && ov[2 * g] != PCRE2_UNSET)
                vcl_sb_add(sb, s.p + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
            i += 2;
            lit = i;
            continue;
        }
        i++;
    }
    vcl_sb_add(sb, sub.p + lit, sub.len - lit);
}

static int
regsub(const struct vcl_program *p, struct vcl_ctx *ctx, struct vcl_value *a, bool all,
       struct vcl_str *out)
{
    struct vcl_str s = a[0].u.s, sub = a[2].u.s;
    uint32_t re = (uint32_t)a[1].u.i;
    struct vcl_sb sb;
    size_t pos = 0, copied = 0;
    const size_t *ov;
    int rc;

    if (s.p == NULL)
        s = VCL_LIT("");
    if (sub.p == NULL)
        sub = VCL_LIT("");
    rc = vcl_re_match(p, ctx, re, s, 0, &ov);
    if (rc <= 0) {
        *out = s; /* no match: the input, unchanged */
        return rc;
    }
    vcl_sb_begin(&sb, ctx);
    for (;;) {
        size_t ms = ov[0], me = ov[1];

        vcl_sb_add(&sb, s.p + copied, ms - copied);
        expand(&sb, s, sub, ov, p->re[re].ncap);
        copied = me;
        if (!all)
            break;
        pos = me;
        if (me == ms) { /* empty match: step one byte so we make progress */
            if (pos >= s.len)
                break;
            vcl_sb_add(&sb, s.p + pos, 1);
            pos++;
            copied = pos;
        }
        if (pos > s.len)
            break;
        rc = vcl_re_match(p, ctx, re, s, pos, &ov);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
    }
    vcl_sb_add(&sb, s.p + copied, s.len - copied);
    if (sb.len == 0 && !sb.over) {
        *out = VCL_LIT("");
        return 0;
    }
    return vcl_sb_end(&sb, out);
}

/* ------------------------------------------------------------------ std */

static int
change_case(struct vcl_ctx *ctx, struct vcl_str s, bool upper, struct vcl_str *out)
{
    int rc;
    char *w;

    if (s.p == NULL) {
        *out = s;
        return 0;
    }
    rc = vcl_ws_dup(ctx, s, out);
    if (rc != 0)
        return rc;
    w = (char *)out->p;
    for (size_t i = 0; i < out->len; i++)
        w[i] = (char)(upper ? toupper((unsigned char)w[i]) : tolower((unsigned char)w[i]));
    return 0;
}

static int
cmp_param(const struct vcl_str *a, const struct vcl_str *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);

    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* std.querysort: sort the query string's parameters (the cache key then
 * ignores their order).  Empty parameters are dropped. */
static int
querysort(struct vcl_ctx *ctx, struct vcl_str url, struct vcl_str *out)
{
    struct vcl_str prm[64];
    const char *q, *end;
    size_t n = 0;
    struct vcl_sb sb;

    *out = url;
    if (url.p == NULL || (q = memchr(url.p, '?', url.len)) == NULL)
        return 0;
    end = url.p + url.len;
    for (const char *s = q + 1; s <= end;) {
        const char *e = memchr(s, '&', (size_t)(end - s));

        if (e == NULL)
            e = end;
        if (e > s) {
            if (n == VCL_ARRAY_LEN(prm))
                return 0; /* too many: leave it alone */
            prm[n].p = s;
            prm[n].len = (size_t)(e - s);
            n++;
        }
        s = e + 1;
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is small */
        struct vcl_str x = prm[i];
        size_t j = i;

        while (j > 0 && cmp_param(&prm[j - 1], &x) > 0) {
            prm[j] = prm[j - 1];
            j--;
        }
        prm[j] = x;
    }
    vcl_sb_begin(&sb, ctx);
    vcl_sb_add(&sb, url.p, (size_t)(q - url.p));
    for (size_t i = 0; i < n; i++) {
        vcl_sb_add(&sb, i == 0 ? "?" : "&", 1);
        vcl_sb_add(&sb, prm[i].p, prm[i].len);
    }
    return vcl_sb_end(&sb, out);
}

/* A NUL-terminated copy of s in buf (or the arena when long). */
static const char *
cstr(struct vcl_ctx *ctx, struct vcl_str s, char *buf, size_t len)
{
    char *d;

    if (s.p == NULL)
        s = VCL_LIT("");
    if (s.len < len) {
        d = buf;
    } else if ((d = vcl_ws_alloc(ctx, s.len + 1)) == NULL) {
        return NULL;
    }
    memcpy(d, s.p, s.len);
    d[s.len] = '\0';
    return d;
}

static bool
parse_time(const char *s, double *out)
{
    struct tm tm;
    char *end;
    double d;
    static const char *const fmts[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                       "%a %b %d %H:%M:%S %Y", "%Y-%m-%dT%H:%M:%S"};

    for (size_t i = 0; i < VCL_ARRAY_LEN(fmts); i++) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, fmts[i], &tm);
        if (end != NULL && (*end == '\0' || *end == 'Z')) {
            *out = (double)timegm(&tm);
            return true;
        }
    }
    d = strtod(s, &end);
    if (end != s && *end == '\0') {
        *out = d;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------- cookies */

struct cookie {
    struct vcl_str name, value;
};
struct jar {
    unsigned n;
    struct cookie c[JAR_MAX];
};

static struct jar *
jar_get(struct vcl_ctx *ctx)
{
    struct jar *j;

    if (ctx->_cookies == NULL)
        ctx->_cookies = vcl_ws_alloc(ctx, sizeof(struct jar));
    j = ctx->_cookies;
    /* a caller that reset the arena without vcl_ctx_init() gets an empty
     * jar rather than a wild read */
    if (j != NULL && j->n > JAR_MAX)
        j->n = 0;
    return j;
}

static struct cookie *
jar_find(struct jar *j, struct vcl_str name)
{
    for (unsigned i = 0; i < j->n; i++)
        if (j->c[i].name.len == name.len && memcmp(j->c[i].name.p, name.p, name.len) == 0)
            return &j->c[i];
    return NULL;
}

static void
trim(struct vcl_str *s)
{
    while (s->len > 0 && (s->p[0] == ' ' || s->p[0] == '\t'))
        s->p++, s->len--;
    while (s->len > 0 && (s->p[s->len - 1] == ' ' || s->p[s->len - 1] == '\t'))
        s->len--;
}

static int
cookie_parse(struct vcl_ctx *ctx, struct vcl_str hdr)
{
    struct jar *j = jar_get(ctx);
    struct vcl_str s;
    int rc;

    if (j == NULL)
        return VCL_ENOSPC;
    j->n = 0;
    if (hdr.p == NULL)
        return 0;
    rc = vcl_ws_dup(ctx, hdr, &s); /* the jar outlives this run */
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < s.len;) {
        const char *semi = memchr(s.p + i, ';', s.len - i);
        size_t e = semi ? (size_t)(semi - s.p) : s.len;
        struct vcl_str pair = {s.p + i, e - i};
        const char *eq = memchr(pair.p, '=', pair.len);

        i = e + 1;
        if (eq == NULL)
            continue;
        {
            struct cookie ck = {{pair.p, (size_t)(eq - pair.p)},
                                {eq + 1, pair.len - (size_t)(eq - pair.p) - 1}};
            struct cookie *old;

            trim(&ck.name);
            trim(&ck.value);
            if (ck.name.len == 0)
                continue;
            if ((old = jar_find(j, ck.name)) != NULL)
                old->value = ck.value;
            else if (j->n < JAR_MAX)
                j->c[j->n++] = ck;
        }
    }
    return 0;
}

static bool
in_csv(struct vcl_str list, struct vcl_str name)
{
    for (size_t i = 0; i < list.len;) {
        const char *c = memchr(list.p + i, ',', list.len - i);
        size_t e = c ? (size_t)(c - list.p) : list.len;
        struct vcl_str it = {list.p + i, e - i};

        trim(&it);
        if (it.len == name.len && memcmp(it.p, name.p, name.len) == 0)
            return true;
        i = e + 1;
    }
    return false;
}

/* keep (keep=true) or drop the cookies whose names are in the list, or match
 * the regex (re >= 0). */
static int
cookie_select(const struct vcl_program *p, struct vcl_ctx *ctx, struct vcl_str list, int64_t re,
              bool keep)
{
    struct jar *j = jar_get(ctx);
    unsigned w = 0;

    if (j == NULL)
        return VCL_ENOSPC;
    for (unsigned i = 0; i < j->n; i++) {
        bool hit;

        if (re >= 0) {
            const size_t *ov;
            int rc = vcl_re_match(p, ctx, (uint32_t)re, j->c[i].name, 0, &ov);

            if (rc < 0)
                return rc;
            hit = rc == 1;
        } else {
            hit = list.p != NULL && in_csv(list, j->c[i].name);
        }
        if (hit == keep)
            j->c[w++] = j->c[i];
    }
    j->n = w;
    return 0;
}

static int
cookie_string(struct vcl_ctx *ctx, struct vcl_str *out)
{
    struct jar *j = jar_get(ctx);
    struct vcl_sb sb;

    if (j == NULL)
        return VCL_ENOSPC;
    if (j->n == 0) {
        *out = VCL_LIT("");
        return 0;
    }
    vcl_sb_begin(&sb, ctx);
    for (unsigned i = 0; i < j->n; i++) {
        if (i > 0)
            vcl_sb_add(&sb, "; ", 2);
        vcl_sb_add(&sb, j->c[i].name.p, j->c[i].name.len);
        vcl_sb_add(&sb, "=", 1);
        vcl_sb_add(&sb, j->c[i].value.p, j->c[i].value.len);
    }
    return vcl_sb_end(&sb, out);
}

/* ------------------------------------------------------------------ var */

struct var {
    struct var *next;
    struct vcl_str name;
    struct vcl_value v;
};

static struct var *
var_find(struct vcl_ctx *ctx, struct vcl_str name)
{
    for (struct var *v = ctx->_vars; v != NULL; v = v->next)
        if (v->name.len == name.len && memcmp(v->name.p, name.p, name.len) == 0)
            return v;
    return NULL;
}

static int
var_set(struct vcl_ctx *ctx, struct vcl_str name, const struct vcl_value *val)
{
    struct var *v;
    int rc;

    if (name.p == NULL)
        name = VCL_LIT("");
    v = var_find(ctx, name);
    if (v == NULL) {
        v = vcl_ws_alloc(ctx, sizeof(*v));
        if (v == NULL)
            return VCL_ENOSPC;
        if ((rc = vcl_ws_dup(ctx, name, &v->name)) != 0)
            return rc;
        v->next = ctx->_vars;
        ctx->_vars = v;
    }
    v->v = *val;
    if (val->type == VCL_T_STRING)
        return vcl_ws_dup(ctx, val->u.s, &v->v.u.s);
    return 0;
}

static void
var_get(struct vcl_ctx *ctx, struct vcl_str name, enum vcl_type t, struct vcl_value *ret)
{
    struct var *v = name.p ? var_find(ctx, name) : NULL;

    memset(ret, 0, sizeof(*ret));
    ret->type = t;
    if (v != NULL && v->v.type == t)
        *ret = v->v;
}

static int
global_set(const struct vcl_program *p, struct vcl_ctx *ctx, struct vcl_str name,
           struct vcl_str val)
{
    struct vcl_global_var *g = p->globals, *slot = NULL;

    if (val.p == NULL)
        val = VCL_LIT("");
    if (name.p == NULL || name.len >= sizeof(g->name) || val.len >= VCL_GLOBAL_VAR_LEN) {
        ctx->error = "var.global_set: name or value too long";
        return VCL_ERUNTIME;
    }
    pthread_mutex_lock(p->gmtx);
    for (unsigned i = 0; i < VCL_GLOBAL_VARS; i++) {
        if (g[i].name[0] != '\0' && strlen(g[i].name) == name.len &&
            memcmp(g[i].name, name.p, name.len) == 0) {
            slot = &g[i];
            break;
        }
        if (g[i].name[0] == '\0' && slot == NULL)
            slot = &g[i];
    }
    if (slot != NULL) {
        memcpy(slot->name, name.p, name.len);
        slot->name[name.len] = '\0';
        memcpy(slot->value, val.p, val.len);
        slot->len = val.len;
    }
    pthread_mutex_unlock(p->gmtx);
    if (slot == NULL) {
        ctx->error = "var.global_set: too many global variables";
        return VCL_ERUNTIME;
    }
    return 0;
}

static int
global_get(const struct vcl_program *p, struct vcl_ctx *ctx, struct vcl_str name,
           struct vcl_str *out)
{
    struct vcl_global_var *g = p->globals;
    struct vcl_sb sb;
    int rc = 0;

    *out = unset;
    if (name.p == NULL)
        return 0;
    pthread_mutex_lock(p->gmtx);
    for (unsigned i = 0; i < VCL_GLOBAL_VARS; i++) {
        if (g[i].name[0] != '\0' && strlen(g[i].name) == name.len &&
            memcmp(g[i].name, name.p, name.len) == 0) {
            vcl_sb_begin(&sb, ctx);
            vcl_sb_add(&sb, g[i].value, g[i].len);
            if (g[i].len == 0)
                *out = VCL_LIT("");
            else
                rc = vcl_sb_end(&sb, out);
            break;
        }
    }
    pthread_mutex_unlock(p->gmtx);
    return rc;
}

/* ------------------------------------------------------------- dispatch */

static int
host_rc(struct vcl_ctx *ctx, int rc, const char *what)
{
    if (rc == 0)
        return 0;
    ctx->error = what;
    return VCL_EHOST;
}

int
vcl_vmod_call(const struct vcl_program *p, struct vcl_ctx *ctx, unsigned id, unsigned aux,
              struct vcl_value *a, struct vcl_value *ret)
{
    const struct vcl_host_ops *ops = ctx->ops;
    char buf[256], buf2[256];
    const char *c1, *c2;
    int rc = 0;

    switch ((enum vcl_func_id)id) {
    case VCL_FN_REGSUB:
    case VCL_FN_REGSUBALL:
        return regsub(p, ctx, a, id == VCL_FN_REGSUBALL, &ret->u.s);
    case VCL_FN_HASH_DATA:
        if (a[0].u.s.p == NULL || ops->hash_data == NULL)
            return 0;
        return host_rc(ctx, ops->hash_data(ctx->priv, a[0].u.s), "host hash_data failed");
    case VCL_FN_SYNTHETIC:
        if (ops->synthetic == NULL)
            return 0;
        return host_rc(ctx, ops->synthetic(ctx->priv, a[0].u.s.p ? a[0].u.s : VCL_LIT("")),
                       "host synthetic failed");
    case VCL_FN_BAN:
        if (ops->ban == NULL)
            return 0;
        return host_rc(ctx, ops->ban(ctx->priv, a[0].u.s.p ? a[0].u.s : VCL_LIT("")),
                       "host ban failed");
    case VCL_FN_STD_LOG:
    case VCL_FN_STD_SYSLOG:
        if (ops->log != NULL) {
            struct vcl_str s = a[id == VCL_FN_STD_LOG ? 0 : 1].u.s;

            ops->log(ctx->priv, s.p ? s : VCL_LIT(""));
        }
        return 0;
    case VCL_FN_STD_TIMESTAMP:
        return 0; /* accel timestamps every step itself */
    case VCL_FN_STD_BAN:
        /* the host parses the expression and logs a bad one (Varnish's
         * std.ban_error() text is not kept: it answers "") */
        ret->u.b = true;
        if (ops->ban == NULL)
            return 0;
        return host_rc(ctx, ops->ban(ctx->priv, a[0].u.s.p ? a[0].u.s : VCL_LIT("")),
                       "host ban failed");
    case VCL_FN_STD_BAN_ERROR:
        ret->u.s = VCL_LIT("");
        return 0;
    case VCL_FN_STD_RANDOM: {
        /* xorshift64*: sampling and A/B splits, not cryptography */
        uint64_t x = ctx->_rng;

        if (x == 0) {
            struct vcl_value now = {VCL_T_TIME, {.d = 0}};

            if (ops->get_var != NULL)
                (void)ops->get_var(ctx->priv, VCL_VAR_NOW, &now);
            x = (uint64_t)(uintptr_t)ctx ^ 0x9e3779b97f4a7c15ull;
            if (isfinite(now.u.d) && now.u.d > 0 && now.u.d < 1e12)
                x ^= (uint64_t)(now.u.d * 1e6) << 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        ctx->_rng = x;
        ret->u.d = a[0].u.d + (a[1].u.d - a[0].u.d) * ((double)((x * 0x2545f4914f6cdd1dull) >> 11) /
                                                       9007199254740992.0);
        return 0;
    }
    case VCL_FN_STD_ROUND:
        ret->u.d = round(a[0].u.d);
        return 0;
    case VCL_FN_STD_REAL2INTEGER:
    case VCL_FN_STD_TIME2INTEGER:
        /* out of range or not a number: the fallback, never UB */
        if (isfinite(a[0].u.d) && a[0].u.d > -9.2e18 && a[0].u.d < 9.2e18)
            ret->u.i = (int64_t)round(a[0].u.d);
        else
            ret->u.i = a[1].u.i;
        return 0;
    case VCL_FN_STD_REAL2TIME:
    case VCL_FN_STD_TIME2REAL:
        ret->u.d = isfinite(a[0].u.d) ? a[0].u.d : a[1].u.d;
        return 0;
    case VCL_FN_STD_TOLOWER:
    case VCL_FN_STD_TOUPPER:
        return change_case(ctx, a[0].u.s, id == VCL_FN_STD_TOUPPER, &ret->u.s);
    case VCL_FN_STD_QUERYSORT:
        return querysort(ctx, a[0].u.s, &ret->u.s);
    case VCL_FN_STD_COLLECT:
        if (ops->collect_header == NULL)
            return 0;
        return host_rc(ctx,
                       ops->collect_header(ctx->priv, (enum vcl_where)a[0].u.i, a[1].u.s,
                                           a[2].u.s.p ? a[2].u.s : VCL_LIT(", ")),
                       "host collect_header failed");
    case VCL_FN_STD_DURATION:
        *ret = a[1];
        if (a[0].u.s.p != NULL && !vcl_parse_duration(a[0].u.s.p, a[0].u.s.len, &ret->u.d))
            ret->u.d = a[1].u.d;
        return 0;
    case VCL_FN_STD_INTEGER:
    case VCL_FN_STD_REAL: {
        char *end;

        *ret = a[1];
        if ((c1 = cstr(ctx, a[0].u.s, buf, sizeof(buf))) == NULL || a[0].u.s.p == NULL)
            return 0;
        while (isspace((unsigned char)*c1))
            c1++;
        if (*c1 == '\0')
            return 0;
        if (id == VCL_FN_STD_INTEGER) {
            long long v = strtoll(c1, &end, 10);

            if (*end == '\0')
                ret->u.i = v;
        } else {
            double v = strtod(c1, &end);

            if (*end == '\0')
                ret->u.d = v;
        }
        return 0;
    }
    case VCL_FN_STD_IP:
        *ret = a[1];
        if (a[0].u.s.p != NULL && !vcl_parse_ip(a[0].u.s.p, a[0].u.s.len, &ret->u.ip))
            ret->u.ip = a[1].u.ip;
        return 0;
    case VCL_FN_STD_TIME:
        *ret = a[1];
        if (a[0].u.s.p != NULL && (c1 = cstr(ctx, a[0].u.s, buf, sizeof(buf))) != NULL &&
            !parse_time(c1, &ret->u.d))
            ret->u.d = a[1].u.d;
        return 0;
    case VCL_FN_STD_GETENV: {
        const char *v;

        ret->u.s = unset;
        if ((c1 = cstr(ctx, a[0].u.s, buf, sizeof(buf))) == NULL)
            return VCL_ENOSPC;
        v = getenv(c1); /* read-only environment: the daemon never calls setenv */
        if (v != NULL)
            return vcl_ws_dup(ctx, (struct vcl_str){v, strlen(v)}, &ret->u.s);
        return 0;
    }
    case VCL_FN_STD_FILEREAD:
        ret->u.s = VCL_LIT(""); /* constant paths are read at compile time */
        return 0;
    case VCL_FN_STD_STRSTR: {
        struct vcl_str h = a[0].u.s, n = a[1].u.s;
        const char *f;

        ret->u.s = unset;
        if (h.p == NULL || n.p == NULL)
            return 0;
        f = n.len == 0 ? h.p : memmem(h.p, h.len, n.p, n.len);
        if (f != NULL)
            ret->u.s = (struct vcl_str){f, h.len - (size_t)(f - h.p)};
        return 0;
    }
    case VCL_FN_STD_FNMATCH: {
        int flags = (a[2].u.b ? FNM_PATHNAME : 0) | (a[3].u.b ? FNM_NOESCAPE : 0) |
                    (a[4].u.b ? FNM_PERIOD : 0);

        if (a[0].u.s.p == NULL || a[1].u.s.p == NULL) {
            ret->u.b = false;
            return 0;
        }
        c1 = cstr(ctx, a[0].u.s, buf, sizeof(buf));
        c2 = cstr(ctx, a[1].u.s, buf2, sizeof(buf2));
        if (c1 == NULL || c2 == NULL)
            return VCL_ENOSPC;
        ret->u.b = fnmatch(c1, c2, flags) == 0;
        return 0;
    }
    case VCL_FN_STD_CACHE_REQ_BODY:
        ret->u.b = false;
        if (ops->cache_req_body == NULL)
            return 0;
        return host_rc(ctx, ops->cache_req_body(ctx->priv, a[0].u.i, &ret->u.b),
                       "host cache_req_body failed");
    case VCL_FN_STD_HEALTHY:
        ret->u.b = a[0].u.ref.kind != VCL_REF_NONE;
        if (ops->healthy == NULL || a[0].u.ref.kind == VCL_REF_NONE)
            return 0;
        return host_rc(ctx, ops->healthy(ctx->priv, a[0].u.ref, &ret->u.b), "host healthy failed");
    case VCL_FN_TLS_IS_TLS:
    case VCL_FN_TLS_VERSION:
    case VCL_FN_TLS_CIPHER:
    case VCL_FN_TLS_AUTHORITY: {
        enum vcl_tls_what what = id == VCL_FN_TLS_IS_TLS    ? VCL_TLS_IS_TLS
                                 : id == VCL_FN_TLS_VERSION ? VCL_TLS_VERSION
                                 : id == VCL_FN_TLS_CIPHER  ? VCL_TLS_CIPHER
                                                            : VCL_TLS_AUTHORITY;
        if (what == VCL_TLS_IS_TLS)
            ret->u.b = false;
        else
            ret->u.s = VCL_LIT("");
        if (ops->tls_info == NULL)
            return 0;
        return host_rc(ctx, ops->tls_info(ctx->priv, what, ret), "host tls_info failed");
    }
    case VCL_FN_XKEY_PURGE:
    case VCL_FN_XKEY_SOFTPURGE:
        ret->u.i = 0;
        if (ops->xkey_purge == NULL || a[0].u.s.p == NULL)
            return 0;
        return host_rc(ctx,
                       ops->xkey_purge(ctx->priv, a[0].u.s, id == VCL_FN_XKEY_SOFTPURGE, &ret->u.i),
                       "host xkey_purge failed");
    case VCL_FN_COOKIE_PARSE:
        return cookie_parse(ctx, a[0].u.s);
    case VCL_FN_COOKIE_GET:
    case VCL_FN_COOKIE_ISSET: {
        struct jar *j = jar_get(ctx);
        struct cookie *c;

        if (j == NULL)
            return VCL_ENOSPC;
        c = a[0].u.s.p ? jar_find(j, a[0].u.s) : NULL;
        if (id == VCL_FN_COOKIE_ISSET)
            ret->u.b = c != NULL;
        else
            ret->u.s = c ? c->value : unset;
        return 0;
    }
    case VCL_FN_COOKIE_SET: {
        struct jar *j = jar_get(ctx);
        struct cookie *c;
        struct vcl_str n, v;

        if (j == NULL)
            return VCL_ENOSPC;
        if (a[0].u.s.p == NULL || a[0].u.s.len == 0)
            return 0;
        if ((rc = vcl_ws_dup(ctx, a[0].u.s, &n)) != 0 ||
            (rc = vcl_ws_dup(ctx, a[1].u.s.p ? a[1].u.s : VCL_LIT(""), &v)) != 0)
            return rc;
        if ((c = jar_find(j, n)) != NULL)
            c->value = v;
        else if (j->n < JAR_MAX)
            j->c[j->n++] = (struct cookie){n, v};
        return 0;
    }
    case VCL_FN_COOKIE_DELETE: {
        struct jar *j = jar_get(ctx);
        struct cookie *c;

        if (j == NULL)
            return VCL_ENOSPC;
        if (a[0].u.s.p != NULL && (c = jar_find(j, a[0].u.s)) != NULL) {
            /* keep the order: the rebuilt header should read like the original */
            memmove(c, c + 1, (size_t)(&j->c[j->n] - (c + 1)) * sizeof(*c));
            j->n--;
        }
        return 0;
    }
    case VCL_FN_COOKIE_FILTER:
        return cookie_select(p, ctx, a[0].u.s, -1, false);
    case VCL_FN_COOKIE_KEEP:
        return cookie_select(p, ctx, a[0].u.s.p ? a[0].u.s : VCL_LIT(""), -1, true);
    case VCL_FN_COOKIE_FILTER_RE:
        return cookie_select(p, ctx, unset, a[0].u.i, false);
    case VCL_FN_COOKIE_KEEP_RE:
        return cookie_select(p, ctx, unset, a[0].u.i, true);
    case VCL_FN_COOKIE_CLEAN: {
        struct jar *j = jar_get(ctx);

        if (j == NULL)
            return VCL_ENOSPC;
        j->n = 0;
        return 0;
    }
    case VCL_FN_COOKIE_GET_STRING:
        return cookie_string(ctx, &ret->u.s);
    case VCL_FN_VAR_SET:
    case VCL_FN_VAR_SET_INT:
    case VCL_FN_VAR_SET_REAL:
    case VCL_FN_VAR_SET_DURATION:
        return var_set(ctx, a[0].u.s, &a[1]);
    case VCL_FN_VAR_GET:
        var_get(ctx, a[0].u.s, VCL_T_STRING, ret);
        return 0;
    case VCL_FN_VAR_GET_INT:
        var_get(ctx, a[0].u.s, VCL_T_INT, ret);
        return 0;
    case VCL_FN_VAR_GET_REAL:
        var_get(ctx, a[0].u.s, VCL_T_REAL, ret);
        return 0;
    case VCL_FN_VAR_GET_DURATION:
        var_get(ctx, a[0].u.s, VCL_T_DURATION, ret);
        return 0;
    case VCL_FN_VAR_CLEAR:
        ctx->_vars = NULL;
        return 0;
    case VCL_FN_VAR_GLOBAL_SET:
        return global_set(p, ctx, a[0].u.s, a[1].u.s);
    case VCL_FN_VAR_GLOBAL_GET:
        return global_get(p, ctx, a[0].u.s, &ret->u.s);
    case VCL_FN_DIR_BACKEND:
        ret->u.ref.kind = VCL_REF_DIRECTOR;
        ret->u.ref.idx = aux;
        if (ops->director_backend == NULL)
            return 0;
        return host_rc(ctx, ops->director_backend(ctx->priv, aux, a[0].u.s, &ret->u.ref),
                       "host director_backend failed");
    default:
        VCL_UNREACHABLE("function id");
    }
    return rc;
}
