/*
 * policy.c -- vcl-lite in the daemon: compiling and installing programs,
 * the host operations the VM calls to read and change a request, and the
 * offline tools (-C, -x explain).
 */
#include "policy.h"

#include "bans.h"
#include "check.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "sess.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#define POL_ARENA_SIZE 16384

static void
vcl_options_from(const struct config *cfg, struct vcl_options *o)
{
    vcl_options_init(o);
    o->unknown_vmods_stub = cfg->vcl_unknown_vmods_stub;
    o->max_restarts = (unsigned)cfg->p.max_restarts;
    o->hit_for_miss_ttl = cfg->p.hfm_ttl;
}

struct vcl_program *
policy_compile(const struct config *cfg, const char *path, FILE *diag)
{
    struct vcl_options o;
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    int r;

    vcl_options_from(cfg, &o);
    if (path == NULL) {
        /* No -f: the built-in policy in front of the -b origins (-x explain). */
        char *src = check_builtin_policy_text(cfg);
        r = vcl_compile_string("<built-in policy>", src, strlen(src), &o, &p, &d);
        free(src);
    } else {
        r = vcl_compile_file(path, &o, &p, &d);
    }
    if (d != NULL && diag != NULL && vcl_diags_count(d) > 0)
        fputs(vcl_diags_text(d), diag);
    vcl_diags_free(&d);
    if (r != 0) {
        if (diag != NULL && r != VCL_ECOMPILE && r != VCL_EIO)
            fprintf(diag, "%s: %s\n", path, vcl_strerror(r));
        return NULL;
    }
    return p;
}

/* ------------------------------------------------------------ installing */

static void
on_vcl_async(struct ev_loop *loop, ev_async *a, int revents)
{
    struct wrk *w = AC_CONTAINER_OF(a, struct wrk, vcl_async);
    struct vcl_program *p;

    (void)loop;
    (void)revents;
    AC_ZERO(pthread_mutex_lock(&w->vcl_mtx));
    p = w->vcl_pending;
    w->vcl_pending = NULL;
    AC_ZERO(pthread_mutex_unlock(&w->vcl_mtx));
    if (p == NULL)
        return;
    /* Requests in flight hold their own references to the old program
     * (and through it to its pool set). */
    vcl_program_release(&w->vcl);
    w->vcl = p;
    pool_worker_install(w, pool_set_of(p));
}

void
policy_worker_install(struct wrk *w, struct vcl_program *p)
{
    struct vcl_program *old;

    if (!ev_is_active(&w->vcl_async)) {
        /* start-up, before the worker thread runs */
        ev_async_init(&w->vcl_async, on_vcl_async);
        ev_async_start(w->loop, &w->vcl_async);
        w->vcl = vcl_program_ref(p);
        pool_worker_install(w, pool_set_of(p));
        return;
    }
    AC_ZERO(pthread_mutex_lock(&w->vcl_mtx));
    old = w->vcl_pending;
    w->vcl_pending = vcl_program_ref(p);
    AC_ZERO(pthread_mutex_unlock(&w->vcl_mtx));
    if (old != NULL)
        vcl_program_release(&old);
    ev_async_send(w->loop, &w->vcl_async);
}

/* ----------------------------------------------------------- host ops */

static bool
sl_caseeq(struct ac_slice a, struct vcl_str b)
{
    return ac_slice_caseeq(a, AC_SLICE(b.p, b.len));
}

static struct vcl_str
vs(struct ac_slice s)
{
    return (struct vcl_str){ s.p, s.len };
}

static struct ac_slice
as(struct vcl_str s)
{
    return AC_SLICE(s.p, s.len);
}

/* A copy of s in the request arena (a set may pass the very bytes a get
 * returned; copying also makes values outlive a buffer compaction). */
static struct ac_slice
arena_copy(struct sess *s, struct vcl_str v)
{
    struct vcl_arena *a = &s->arena;

    if (v.p == NULL)
        return AC_SLICE(NULL, 0);
    if (v.p >= a->base && v.p < a->base + a->size)
        return as(v);               /* already in the arena */
    if (a->used + v.len > a->size - 4096)   /* leave the VM its regex space */
        return AC_SLICE(NULL, 0);
    char *d = a->base + a->used;
    memmove(d, v.p, v.len);
    a->used += v.len;
    return AC_SLICE(d, v.len);
}

static int
overlay_set(struct pol_hdrop *ops, unsigned *n, struct ac_slice name, struct ac_slice value)
{
    for (unsigned i = 0; i < *n; i++) {
        if (ac_slice_caseeq(ops[i].name, name)) {
            ops[i].value = value;
            return 0;
        }
    }
    if (*n >= POL_MAX_HDROPS)
        return -1;
    ops[*n].name = name;
    ops[*n].value = value;
    (*n)++;
    return 0;
}

bool
pol_overlay_has(const struct pol_hdrop *ops, unsigned n, struct ac_slice name)
{
    for (unsigned i = 0; i < n; i++)
        if (ac_slice_caseeq(ops[i].name, name))
            return true;
    return false;
}

/* Look a field up in an overlay: 1 found (value may be unset), 0 not there. */
static int
overlay_get(const struct pol_hdrop *ops, unsigned n, struct vcl_str name, struct vcl_str *out)
{
    for (unsigned i = 0; i < n; i++) {
        if (sl_caseeq(ops[i].name, name)) {
            *out = vs(ops[i].value);
            return 1;
        }
    }
    return 0;
}

static void
arr_remove(struct h1_header *h, unsigned *n, struct vcl_str name)
{
    unsigned k = 0;

    for (unsigned i = 0; i < *n; i++)
        if (!sl_caseeq(h[i].name, name))
            h[k++] = h[i];
    *n = k;
}

static int
arr_set(struct sess *s, struct h1_header *h, unsigned *n, struct vcl_str name,
        struct vcl_str value)
{
    struct ac_slice nm = arena_copy(s, name), v = arena_copy(s, value);

    if ((name.len && nm.p == NULL) || (value.len && v.p == NULL))
        return -1;
    arr_remove(h, n, name);
    if (*n >= (unsigned)s->w->cfg->p.max_headers)
        return -1;
    h[*n].name = nm;
    h[*n].value = v.p ? v : AC_LIT("");
    (*n)++;
    return 0;
}

static int
op_get_header(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str *out)
{
    struct sess *s = priv;
    const struct h1_header *h = NULL;

    out->p = NULL;
    out->len = 0;
    switch (w) {
    case VCL_WHERE_REQ:
        h = h1_header_find(s->hdrs, s->req.nhdrs, as(name));
        break;
    case VCL_WHERE_BEREQ:
        if (overlay_get(s->bereq_ops, s->n_bereq_ops, name, out))
            return 0;
        if (http_is_hop_by_hop(as(name)))
            return 0;
        h = h1_header_find(s->hdrs, s->req.nhdrs, as(name));
        break;
    case VCL_WHERE_BERESP:
        if (s->resp.hdrs != NULL)
            h = h1_header_find(s->resp.hdrs, s->resp.nhdrs, as(name));
        break;
    case VCL_WHERE_RESP:
        if (overlay_get(s->resp_ops, s->n_resp_ops, name, out))
            return 0;
        if (s->obj != NULL && s->state != S_SYNTH) {
            struct store_bytes b = store_obj_headers(s->obj);
            struct ac_slice v;
            if (cache_block_find(AC_SLICE(b.p, b.len), as(name), &v))
                *out = vs(v);
            return 0;
        }
        if (s->resp.hdrs != NULL && s->state != S_SYNTH)
            h = h1_header_find(s->resp.hdrs, s->resp.nhdrs, as(name));
        break;
    case VCL_WHERE_OBJ:
        if (s->obj != NULL) {
            struct store_bytes b = store_obj_headers(s->obj);
            struct ac_slice v;
            if (cache_block_find(AC_SLICE(b.p, b.len), as(name), &v))
                *out = vs(v);
        }
        return 0;
    default:
        return 0;
    }
    if (h != NULL)
        *out = vs(h->value);
    return 0;
}

static int
op_set_header(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str value)
{
    struct sess *s = priv;
    struct ac_slice nm, v;

    switch (w) {
    case VCL_WHERE_REQ:
        return arr_set(s, s->hdrs, &s->req.nhdrs, name, value);
    case VCL_WHERE_BERESP:
        if (s->resp.hdrs == NULL)
            return -1;
        return arr_set(s, s->resp.hdrs, &s->resp.nhdrs, name, value);
    case VCL_WHERE_BEREQ:
    case VCL_WHERE_RESP:
        nm = arena_copy(s, name);
        v = arena_copy(s, value);
        if (nm.p == NULL || (value.len && v.p == NULL))
            return -1;
        if (v.p == NULL)
            v = AC_LIT("");
        return w == VCL_WHERE_BEREQ ? overlay_set(s->bereq_ops, &s->n_bereq_ops, nm, v)
                                    : overlay_set(s->resp_ops, &s->n_resp_ops, nm, v);
    default:
        return -1;
    }
}

static int
op_unset_header(void *priv, enum vcl_where w, struct vcl_str name)
{
    struct sess *s = priv;
    struct ac_slice nm;

    switch (w) {
    case VCL_WHERE_REQ:
        arr_remove(s->hdrs, &s->req.nhdrs, name);
        return 0;
    case VCL_WHERE_BERESP:
        if (s->resp.hdrs != NULL)
            arr_remove(s->resp.hdrs, &s->resp.nhdrs, name);
        return 0;
    case VCL_WHERE_BEREQ:
    case VCL_WHERE_RESP:
        nm = arena_copy(s, name);
        if (nm.p == NULL)
            return -1;
        return w == VCL_WHERE_BEREQ
                   ? overlay_set(s->bereq_ops, &s->n_bereq_ops, nm, AC_SLICE(NULL, 0))
                   : overlay_set(s->resp_ops, &s->n_resp_ops, nm, AC_SLICE(NULL, 0));
    default:
        return -1;
    }
}

static void
ip_of(const struct sockaddr_storage *ss, struct vcl_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        ip->family = 4;
        memcpy(ip->addr, &in->sin_addr, 4);
        ip->port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)ss;
        ip->family = 6;
        memcpy(ip->addr, &in6->sin6_addr, 16);
        ip->port = ntohs(in6->sin6_port);
    }
}

static struct vcl_str
arena_printf(struct sess *s, const char *fmt, unsigned long long v)
{
    struct vcl_arena *a = &s->arena;
    char *d = a->base + a->used;
    int n;

    if (a->used + 32 > a->size - 4096)
        return (struct vcl_str){ "", 0 };
    n = snprintf(d, 32, fmt, v);
    a->used += (size_t)n;
    return (struct vcl_str){ d, (size_t)n };
}

static int
op_get_var(void *priv, enum vcl_var var, struct vcl_value *out)
{
    struct sess *s = priv;
    struct store_times t;
    double now = ev_now(s->w->loop);

    memset(out, 0, sizeof(*out));
    out->type = vcl_var_type(var);
    switch (var) {
    case VCL_VAR_REQ_METHOD: out->u.s = vs(s->req.method); break;
    case VCL_VAR_REQ_URL: out->u.s = vs(s->req.path); break;
    case VCL_VAR_REQ_PROTO:
        out->u.s = s->req.minor >= 1 ? VCL_LIT("HTTP/1.1") : VCL_LIT("HTTP/1.0");
        break;
    case VCL_VAR_REQ_BACKEND_HINT: out->u.ref = s->backend_hint; break;
    case VCL_VAR_REQ_RESTARTS: out->u.i = s->restarts; break;
    case VCL_VAR_REQ_HASH_ALWAYS_MISS: out->u.b = s->hash_always_miss; break;
    case VCL_VAR_REQ_XID:
    case VCL_VAR_BEREQ_XID: out->u.s = arena_printf(s, "%llu", s->xid); break;
    case VCL_VAR_REQ_CAN_GZIP: {
        const struct h1_header *h = h1_header_find(s->hdrs, s->req.nhdrs,
                                                   AC_LIT("Accept-Encoding"));
        out->u.b = h != NULL && h1_list_has_token(h->value, AC_LIT("gzip"));
        break;
    }
    case VCL_VAR_REQ_IS_HITMISS:
    case VCL_VAR_REQ_IS_HITPASS:
        out->u.b = s->cstatus != NULL && strstr(s->cstatus, "hit-for-miss") != NULL;
        break;
    case VCL_VAR_BEREQ_METHOD:
        out->u.s = vs(s->bereq_method.len ? s->bereq_method : s->req.method);
        break;
    case VCL_VAR_BEREQ_URL: out->u.s = vs(s->req.path); break;
    case VCL_VAR_BEREQ_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_BEREQ_BACKEND: out->u.ref = s->backend_hint; break;
    case VCL_VAR_BEREQ_RETRIES: out->u.i = s->retries; break;
    case VCL_VAR_BEREQ_IS_BGFETCH: out->u.b = s->bg; break;
    case VCL_VAR_BEREQ_UNCACHEABLE: out->u.b = s->busy == NULL; break;
    case VCL_VAR_BEREQ_CONNECT_TIMEOUT: out->u.d = fetch_timeout(s, FETCH_TMO_CONNECT); break;
    case VCL_VAR_BEREQ_FIRST_BYTE_TIMEOUT:
        out->u.d = fetch_timeout(s, FETCH_TMO_FIRST_BYTE);
        break;
    case VCL_VAR_BEREQ_BETWEEN_BYTES_TIMEOUT:
        out->u.d = fetch_timeout(s, FETCH_TMO_BETWEEN_BYTES);
        break;
    case VCL_VAR_BERESP_STATUS: out->u.i = s->resp.status; break;
    case VCL_VAR_BERESP_REASON: out->u.s = vs(s->resp.reason_phrase); break;
    case VCL_VAR_BERESP_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_BERESP_TTL: out->u.d = s->dec.ttl - s->dec.initial_age; break;
    case VCL_VAR_BERESP_GRACE: out->u.d = s->dec.grace; break;
    case VCL_VAR_BERESP_KEEP: out->u.d = s->dec.keep; break;
    case VCL_VAR_BERESP_AGE: out->u.d = s->dec.initial_age; break;
    case VCL_VAR_BERESP_UNCACHEABLE: out->u.b = s->vcl_uncacheable; break;
    case VCL_VAR_BERESP_DO_STREAM: out->u.b = true; break;
    case VCL_VAR_BERESP_DO_GZIP: out->u.b = s->do_gzip; break;
    case VCL_VAR_BERESP_DO_GUNZIP: out->u.b = s->do_gunzip; break;
    case VCL_VAR_BERESP_DO_BROTLI: out->u.b = s->do_brotli; break;
    case VCL_VAR_BERESP_BACKEND_NAME:
        out->u.s = s->be ? (struct vcl_str){ s->be->name, strlen(s->be->name) } : VCL_LIT("");
        break;
    case VCL_VAR_BERESP_WAS_304: out->u.b = s->revalidating && s->resp.status == 304; break;
    case VCL_VAR_BERESP_STORAGE_HINT: out->u.s = VCL_LIT(""); break;
    case VCL_VAR_OBJ_STATUS: out->u.i = s->obj ? store_obj_status(s->obj) : 0; break;
    case VCL_VAR_OBJ_REASON: {
        struct store_bytes b = s->obj ? store_obj_headers(s->obj) : (struct store_bytes){ "", 0 };
        b.len = cache_block_visible(AC_SLICE(b.p, b.len)).len;
        const char *sp = b.len > 4 ? memchr(b.p, ' ', b.len) : NULL;
        const char *nl = b.len ? memchr(b.p, '\r', b.len) : NULL;
        out->u.s = sp && nl && nl > sp ? (struct vcl_str){ sp + 1, (size_t)(nl - sp - 1) }
                                       : VCL_LIT("");
        break;
    }
    case VCL_VAR_OBJ_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_OBJ_HITS: out->u.i = s->obj ? store_obj_hits(s->obj) : 0; break;
    case VCL_VAR_OBJ_TTL:
    case VCL_VAR_OBJ_GRACE:
    case VCL_VAR_OBJ_KEEP:
    case VCL_VAR_OBJ_AGE:
        if (s->obj == NULL)
            break;
        store_obj_times(s->obj, &t);
        out->u.d = var == VCL_VAR_OBJ_TTL ? t.insert + t.ttl - now
                 : var == VCL_VAR_OBJ_GRACE ? t.grace
                 : var == VCL_VAR_OBJ_KEEP ? t.keep : now - t.insert;
        break;
    case VCL_VAR_OBJ_UNCACHEABLE:
        out->u.b = s->obj && (store_obj_flags(s->obj) & STORE_OBJ_F_HFM);
        break;
    case VCL_VAR_RESP_STATUS: out->u.i = s->status; break;
    case VCL_VAR_RESP_REASON:
        out->u.s = s->resp_reason.p ? vs(s->resp_reason)
                 : (struct vcl_str){ http_reason(s->status), strlen(http_reason(s->status)) };
        break;
    case VCL_VAR_RESP_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_CLIENT_IP:
    case VCL_VAR_REMOTE_IP:
        ip_of(&s->peer, &out->u.ip);
        break;
    case VCL_VAR_SERVER_IP:
    case VCL_VAR_LOCAL_IP: {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        if (s->c.fd >= 0 && getsockname(s->c.fd, (struct sockaddr *)&ss, &sl) == 0)
            ip_of(&ss, &out->u.ip);
        break;
    }
    case VCL_VAR_CLIENT_IDENTITY: out->u.s = (struct vcl_str){ s->client_ip, strlen(s->client_ip) }; break;
    case VCL_VAR_SERVER_HOSTNAME: {
        static __thread char host[256];
        if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) != 0)
            strcpy(host, "localhost");
        out->u.s = (struct vcl_str){ host, strlen(host) };
        break;
    }
    case VCL_VAR_SERVER_IDENTITY: out->u.s = VCL_LIT("accel"); break;
    case VCL_VAR_NOW: out->u.d = now; break;
    default:
        break;
    }
    return 0;
}

static int
op_set_var(void *priv, enum vcl_var var, const struct vcl_value *v)
{
    struct sess *s = priv;
    struct ac_slice c;

    switch (var) {
    case VCL_VAR_REQ_METHOD:
    case VCL_VAR_BEREQ_METHOD:
        if ((c = arena_copy(s, v->u.s)).p == NULL || c.len == 0)
            return -1;
        if (var == VCL_VAR_REQ_METHOD)
            s->req.method = c;
        else
            s->bereq_method = c;
        return 0;
    case VCL_VAR_REQ_URL:
    case VCL_VAR_BEREQ_URL:
        if ((c = arena_copy(s, v->u.s)).p == NULL || c.len == 0)
            return -1;
        s->req.path = c;
        return 0;
    case VCL_VAR_REQ_PROTO:
    case VCL_VAR_BEREQ_PROTO:
    case VCL_VAR_BERESP_PROTO:
    case VCL_VAR_RESP_PROTO:
        return 0;   /* accel speaks HTTP/1.1 on both sides */
    case VCL_VAR_REQ_BACKEND_HINT:
    case VCL_VAR_BEREQ_BACKEND:
        s->backend_hint = v->u.ref;
        return 0;
    case VCL_VAR_REQ_HASH_ALWAYS_MISS:
        s->hash_always_miss = v->u.b;
        return 0;
    case VCL_VAR_REQ_HASH_IGNORE_BUSY:
    case VCL_VAR_REQ_TTL:
    case VCL_VAR_REQ_GRACE:
    case VCL_VAR_BERESP_STORAGE_HINT:
    case VCL_VAR_BERESP_DO_STREAM:
        return 0;   /* accepted, advisory (docs/vcl-lite.md "coming from Varnish") */
    case VCL_VAR_BEREQ_CONNECT_TIMEOUT:
        s->bto[FETCH_TMO_CONNECT] = v->u.d > 0 ? v->u.d : 0.001;
        return 0;
    case VCL_VAR_BEREQ_FIRST_BYTE_TIMEOUT:
        s->bto[FETCH_TMO_FIRST_BYTE] = v->u.d > 0 ? v->u.d : 0.001;
        return 0;
    case VCL_VAR_BEREQ_BETWEEN_BYTES_TIMEOUT:
        s->bto[FETCH_TMO_BETWEEN_BYTES] = v->u.d > 0 ? v->u.d : 0.001;
        return 0;
    case VCL_VAR_BERESP_DO_GZIP:
        s->do_gzip = v->u.b;        /* applied when the fill starts (cache_sess.c) */
        return 0;
    case VCL_VAR_BERESP_DO_GUNZIP:
        s->do_gunzip = v->u.b;
        return 0;
    case VCL_VAR_BERESP_DO_BROTLI:
        s->do_brotli = v->u.b;
        return 0;
    case VCL_VAR_BERESP_STATUS:
        if (v->u.i < 100 || v->u.i > 999)
            return -1;
        s->resp.status = (int)v->u.i;
        return 0;
    case VCL_VAR_BERESP_REASON:
        if ((c = arena_copy(s, v->u.s)).p == NULL && v->u.s.len)
            return -1;
        s->resp.reason_phrase = c;
        return 0;
    case VCL_VAR_BERESP_TTL:
        s->dec.ttl = v->u.d + s->dec.initial_age;
        s->vcl_ttl_set = true;
        return 0;
    case VCL_VAR_BERESP_GRACE:
        s->dec.grace = v->u.d > 0 ? v->u.d : 0;
        return 0;
    case VCL_VAR_BERESP_KEEP:
        s->dec.keep = v->u.d > 0 ? v->u.d : 0;
        return 0;
    case VCL_VAR_BERESP_UNCACHEABLE:
        s->vcl_uncacheable = v->u.b;
        return 0;
    case VCL_VAR_BERESP_BODY:
    case VCL_VAR_RESP_BODY:
        ac_buf_reset(&s->synth_body);
        ac_buf_cat(&s->synth_body, v->u.s.p, v->u.s.len);
        s->synth_body_set = true;
        return 0;
    case VCL_VAR_RESP_STATUS:
        if (v->u.i < 100 || v->u.i > 999)
            return -1;
        s->resp_status_set = (int)v->u.i;
        s->status = (int)v->u.i;
        return 0;
    case VCL_VAR_RESP_REASON:
        if ((c = arena_copy(s, v->u.s)).p == NULL && v->u.s.len)
            return -1;
        s->resp_reason = c;
        return 0;
    case VCL_VAR_CLIENT_IDENTITY:
        return 0;
    default:
        return -1;
    }
}

static int
op_hash_data(void *priv, struct vcl_str str)
{
    struct sess *s = priv;

    /* Each part ends with a separator, so ("ab","c") and ("a","bc") differ;
     * parts are in canonical target form (h1_target_canon: "[" as "%5B",
     * a newline as "%0A"), so req.url as a browser and as curl send it
     * hash alike and no part can fake a separator. */
    char *d = ac_buf_reserve(&s->key, 3 * str.len + 1);
    if (d == NULL)
        return -1;
    size_t n = h1_target_canon(str.p, str.len, d);
    d[n] = '\n';
    ac_buf_commit(&s->key, n + 1);
    return ac_buf_error(&s->key) ? -1 : 0;
}

static int
op_synthetic(void *priv, struct vcl_str str)
{
    struct sess *s = priv;

    ac_buf_cat(&s->synth_body, str.p, str.len);
    s->synth_body_set = true;
    return 0;
}

static int
op_ban(void *priv, struct vcl_str expr)
{
    struct sess *s = priv;

    char err[256];

    if (s->w->store == NULL)
        return 0;
    /* As Varnish: a bad expression is logged and the request goes on. */
    if (bans_add(s->w->store, as(expr), ev_now(s->w->loop), NULL, err, sizeof(err)) != 0)
        LOG_W("vcl ban(\"%.*s\"): %s", (int)expr.len, expr.p, err);
    return 0;
}

static void
op_log(void *priv, struct vcl_str str)
{
    struct sess *s = priv;

    LOG_I("vcl: %s: %.*s", s->client_ip, (int)str.len, str.p);
}

/*
 * dir.backend([key]): the choice is made at fetch time (pol_backend), when
 * health is current and a failed server can be avoided on retry; the ref
 * stays the director.  A key given here is remembered for hash/shard.
 */
static int
op_director_backend(void *priv, unsigned director, struct vcl_str key, struct vcl_ref *out)
{
    struct sess *s = priv;

    if (director >= vcl_program_director_count(s->prog))
        return -1;
    if (key.p != NULL) {
        s->dir_key = dir_hash(key.p, key.len);
        s->dir_key_set = true;
    }
    out->kind = VCL_REF_DIRECTOR;
    out->idx = director;
    return 0;
}

static int
op_healthy(void *priv, struct vcl_ref ref, bool *out)
{
    struct sess *s = priv;
    struct pool_set *ps = pool_set_of(s->prog);

    *out = ps != NULL ? pool_ref_healthy(ps, ref, pool_now_ms()) : true;
    return 0;
}

static int
op_xkey_purge(void *priv, struct vcl_str keys, bool soft, int64_t *count)
{
    struct sess *s = priv;
    const char *p = keys.p, *end = keys.p + keys.len;
    size_t n, total = 0;

    *count = 0;
    if (s->w->store == NULL)
        return 0;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *q = p;
        while (q < end && *q != ' ' && *q != ',')
            q++;
        if (q > p && store_purge_tag(s->w->store, (struct store_bytes){ p, (size_t)(q - p) },
                                     soft ? STORE_PURGE_SOFT : 0, ev_now(s->w->loop),
                                     &n) == STORE_OK)
            total += n;
        p = q;
    }
    *count = (int64_t)total;
    return 0;
}

static int
op_collect_header(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str sep)
{
    struct sess *s = priv;
    struct h1_header *h;
    unsigned *n;
    struct vcl_arena *a = &s->arena;
    char *d;
    size_t start, cnt = 0;

    if (w == VCL_WHERE_REQ) {
        h = s->hdrs;
        n = &s->req.nhdrs;
    } else if (w == VCL_WHERE_BERESP && s->resp.hdrs != NULL) {
        h = s->resp.hdrs;
        n = &s->resp.nhdrs;
    } else {
        return 0;
    }
    start = a->used;
    for (unsigned i = 0; i < *n; i++) {
        if (!sl_caseeq(h[i].name, name))
            continue;
        size_t need = (cnt ? sep.len : 0) + h[i].value.len;
        if (a->used + need > a->size - 4096)
            return -1;
        d = a->base + a->used;
        if (cnt) {
            memcpy(d, sep.p, sep.len);
            d += sep.len;
        }
        memcpy(d, h[i].value.p, h[i].value.len);
        a->used += need;
        cnt++;
    }
    if (cnt < 2) {
        a->used = start;
        return 0;
    }
    struct vcl_str joined = { a->base + start, a->used - start };
    return arr_set(s, h, n, name, joined);
}

/* tls.is_tls() and friends: the client connection (Varnish Enterprise's
 * vmod tls).  A background fetch has no client: not TLS. */
static int
op_tls_info(void *priv, enum vcl_tls_what what, struct vcl_value *out)
{
    struct sess *s = priv;
    const char *v;

    AC_CHECK_OBJ(s, SESS_MAGIC);
    if (what == VCL_TLS_IS_TLS) {
        out->u.b = conn_is_tls(&s->c);
        return 0;
    }
    if (!conn_is_tls(&s->c))
        return 0;
    v = what == VCL_TLS_VERSION ? tls_conn_version(&s->c)
        : what == VCL_TLS_CIPHER ? tls_conn_cipher(&s->c) : tls_conn_sni(&s->c);
    out->u.s = (struct vcl_str){ v, strlen(v) };
    return 0;
}

static const struct vcl_host_ops host_ops = {
    .get_var = op_get_var,
    .set_var = op_set_var,
    .get_header = op_get_header,
    .set_header = op_set_header,
    .unset_header = op_unset_header,
    .hash_data = op_hash_data,
    .synthetic = op_synthetic,
    .ban = op_ban,
    .log = op_log,
    .healthy = op_healthy,
    .director_backend = op_director_backend,
    .xkey_purge = op_xkey_purge,
    .collect_header = op_collect_header,
    .tls_info = op_tls_info,
};

/* ------------------------------------------------------- request side */

void
pol_begin(struct sess *s)
{
    if (s->prog != NULL || s->w->vcl == NULL)
        return;
    pol_begin_from(s, s->w->vcl);
}

void
pol_begin_from(struct sess *s, struct vcl_program *p)
{
    s->prog = vcl_program_ref(p);
    if (s->arena.base == NULL) {
        s->arena.base = ac_xmalloc(POL_ARENA_SIZE);
        s->arena.size = POL_ARENA_SIZE;
    }
    s->arena.used = 0;
    vcl_ctx_init(&s->vctx, &host_ops, s, &s->arena);
    s->backend_hint = vcl_program_default_backend(s->prog);
    s->xid = ++s->w->xid_next * 64 + s->w->id;
    s->restarts = 0;
    s->dir_key_set = false;
    s->moved = false;
    for (unsigned i = 0; i < AC_ARRAY_LEN(s->bto); i++)
        s->bto[i] = -1;
}

void
pol_end(struct sess *s)
{
    if (s->prog != NULL)
        vcl_program_release(&s->prog);
    s->arena.used = 0;
    s->n_resp_ops = s->n_bereq_ops = 0;
    s->hash_always_miss = false;
    s->vcl_uncacheable = false;
    s->vcl_ttl_set = false;
    s->synth_body_set = false;
    ac_buf_reset(&s->synth_body);
    s->resp_reason = AC_SLICE(NULL, 0);
    s->resp_status_set = 0;
}

enum vcl_action
pol_run(struct sess *s, enum vcl_sub sub, struct vcl_result *res)
{
    int r;

    memset(res, 0, sizeof(*res));
    if (s->prog == NULL) {
        res->action = VCL_ACT_NONE;
        return VCL_ACT_NONE;
    }
    r = vcl_run(s->prog, sub, &s->vctx, res);
    if (r != 0) {
        LOG_W("vcl: %s failed: %s (line %u; client %s)", vcl_sub_name(sub),
              s->vctx.error && s->vctx.error[0] ? s->vctx.error : vcl_strerror(r),
              s->vctx.error_line, s->client_ip);
        res->action = VCL_ACT_FAIL;
    }
    return res->action;
}

/* ------------------------------------------------------------- explain */

static void
op_trace(void *priv, const char *file, unsigned line, struct vcl_str text)
{
    (void)priv;
    printf("  %s:%u  %.*s\n", file, line, (int)text.len, text.p);
}

/*
 * accel -x explain -f site.vcl 'GET /path' [-H 'Name: value' ...]
 *        [-R 'HTTP/1.1 200 OK' -B 'Cache-Control: max-age=60' ...]
 * Runs vcl_recv and vcl_hash (and, with a sample response, the RFC 9111
 * rules and vcl_backend_response) without a network, and prints every
 * decision.
 */
int
policy_main_explain(const struct config *cfg, int argc, char **argv)
{
    struct ac_buf raw, rawresp;
    const char *reqline = NULL, *respline = NULL;
    bool have_host = false;
    struct vcl_program *p;
    struct vcl_host_ops ops = host_ops;
    struct vcl_result res;
    int rc = 0;

    ac_buf_init(&raw, 256, 0);
    ac_buf_init(&rawresp, 256, 0);
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-H") == 0 || strcmp(argv[i], "-B") == 0) && i + 1 < argc) {
            struct ac_buf *b = argv[i][1] == 'H' ? &raw : &rawresp;
            if (b->len == 0) {
                fprintf(stderr, "accel: explain: %s before the %s line\n", argv[i],
                        argv[i][1] == 'H' ? "request" : "-R response");
                return 2;
            }
            if (b == &raw && strncasecmp(argv[i + 1], "host:", 5) == 0)
                have_host = true;
            ac_buf_printf(b, "%s\r\n", argv[++i]);
        } else if (strcmp(argv[i], "-R") == 0 && i + 1 < argc) {
            respline = argv[++i];
            ac_buf_printf(&rawresp, "%s\r\n", respline);
        } else if (reqline == NULL) {
            reqline = argv[i];
            ac_buf_printf(&raw, "%s HTTP/1.1\r\n", reqline);
        } else {
            fprintf(stderr, "accel: explain: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (reqline == NULL) {
        fprintf(stderr, "usage: accel -x explain [-f FILE] 'METHOD /path' [-H 'Name: value']... "
                        "[-R 'HTTP/1.1 200 OK' [-B 'Name: value']...]\n");
        return 2;
    }
    if (!have_host)
        ac_buf_catstr(&raw, "Host: localhost\r\n");
    ac_buf_cat(&raw, "\r\n", 2);
    p = policy_compile(cfg, cfg->vcl_file, stderr);
    if (p == NULL)
        return 1;

    /* A session without sockets, as a background fetch has. */
    struct wrk w;
    memset(&w, 0, sizeof(w));
    w.magic = WRK_MAGIC;
    w.cfg = cfg;
    w.loop = EV_DEFAULT;
    w.vcl = p;
    struct sess *s = ac_xcalloc(1, sizeof(*s));
    s->magic = SESS_MAGIC;
    s->w = &w;
    s->c.fd = -1;
    snprintf(s->client_ip, sizeof(s->client_ip), "127.0.0.1");
    struct sockaddr_in *sin = (struct sockaddr_in *)&s->peer;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->hdrs = ac_xcalloc((size_t)cfg->p.max_headers, sizeof(*s->hdrs));
    struct h1_limits lim = { 65536, 8192, 8192, (unsigned)cfg->p.max_headers,
                             cfg->p.uri_strict != 0 };
    s->req.hdrs = s->hdrs;
    if (h1_parse_request(raw.p, raw.len, &lim, &s->req) <= 0) {
        fprintf(stderr, "accel: explain: invalid request: %s\n",
                s->req.reason ? s->req.reason : "?");
        return 2;
    }
    pol_begin(s);
    ops.trace = op_trace;
    vcl_ctx_init(&s->vctx, &ops, s, &s->arena);

    printf("request: %s\n", reqline);
    printf("vcl_recv:\n");
    enum vcl_action a = pol_run(s, VCL_SUB_RECV, &res);
    printf("  => %s", vcl_action_name(a));
    if (a == VCL_ACT_SYNTH)
        printf("(%u%s%.*s)", res.status, res.reason.p ? ", " : "", (int)res.reason.len,
               res.reason.p ? res.reason.p : "");
    printf("\n");
    if (a == VCL_ACT_HASH || a == VCL_ACT_PURGE) {
        printf("vcl_hash:\n");
        ac_buf_reset(&s->key);
        pol_run(s, VCL_SUB_HASH, &res);
        printf("  => %s\ncache key: \"", vcl_action_name(res.action));
        for (size_t i = 0; i < s->key.len; i++)
            putchar(s->key.p[i] == '\n' ? '|' : s->key.p[i]);
        printf("\"\n");
    }
    printf("backend: %s%s\n", vcl_program_ref_name(p, s->backend_hint),
           s->backend_hint.kind == VCL_REF_DIRECTOR
               ? " (a director: it picks a healthy server when the request goes to the origin)"
               : "");
    printf("request headers after vcl_recv:\n");
    for (unsigned i = 0; i < s->req.nhdrs; i++)
        printf("  " AC_SLICE_FMT ": " AC_SLICE_FMT "\n", AC_SLICE_ARG(s->hdrs[i].name),
               AC_SLICE_ARG(s->hdrs[i].value));
    if (respline != NULL && (a == VCL_ACT_HASH || a == VCL_ACT_PASS)) {
        struct cache_params cp = { cfg->p.default_grace, cfg->p.default_keep, cfg->p.hfm_ttl,
                                   cfg->p.heuristic_fraction, cfg->p.heuristic_max,
                                   cfg->p.max_object_size,
                                   AC_SLICE(cfg->targeted_cc, strlen(cfg->targeted_cc)) };
        ac_buf_cat(&rawresp, "\r\n", 2);
        s->bhdrs = ac_xcalloc((size_t)cfg->p.max_headers, sizeof(*s->bhdrs));
        s->resp.hdrs = s->bhdrs;
        if (h1_parse_response(rawresp.p, rawresp.len, &lim, AC_LIT("GET"), &s->resp) <= 0) {
            fprintf(stderr, "accel: explain: invalid response: %s\n",
                    s->resp.reason ? s->resp.reason : "?");
            rc = 2;
        } else {
            double now = ev_time();
            cache_decide(&s->req, &s->resp, now, now, &cp, &s->dec);
            printf("RFC 9111: %s; ttl %.0fs, grace %.0fs, keep %.0fs%s%s\n",
                   s->dec.store ? "storable" : "not storable", s->dec.ttl, s->dec.grace,
                   s->dec.keep, s->dec.why ? "; why: " : "", s->dec.why ? s->dec.why : "");
            if (a == VCL_ACT_HASH)
                s->busy = (struct store_obj *)1;  /* bereq.uncacheable = false; never dereferenced */
            printf("vcl_backend_response:\n");
            pol_run(s, VCL_SUB_BACKEND_RESPONSE, &res);
            s->busy = NULL;
            printf("  => %s\n", vcl_action_name(res.action));
            double ttl = s->dec.ttl - s->dec.initial_age;
            bool store = a == VCL_ACT_HASH && !s->vcl_uncacheable && ttl > 0 &&
                         res.action == VCL_ACT_DELIVER;
            printf("decision: %s; ttl %.0fs, grace %.0fs, keep %.0fs\n",
                   store ? "store" : s->vcl_uncacheable ? "hit-for-miss" : "do not store", ttl,
                   s->dec.grace, s->dec.keep);
        }
    }
    pol_end(s);
    free(s->hdrs);
    free(s->bhdrs);
    ac_buf_free(&s->key);
    ac_buf_free(&s->synth_body);
    free(s->arena.base);
    free(s);
    vcl_program_release(&p);
    ac_buf_free(&raw);
    ac_buf_free(&rawresp);
    return rc;
}

const struct backend *
pol_backend_avoid(struct sess *s, const struct backend *avoid)
{
    struct pool_set *ps = pool_set_of(s->prog);
    struct dir_pick pk = { 0, avoid, pool_now_ms() };

    if (ps == NULL)
        return NULL;
    if (s->backend_hint.kind == VCL_REF_DIRECTOR) {
        /* hash/shard: the key given to .backend(), else the cache key,
         * else (pass, pipe) host and URL */
        if (s->dir_key_set) {
            pk.key = s->dir_key;
        } else if (s->kind == CACHE_REQ_LOOKUP && s->key.len > 0) {
            pk.key = dir_hash(s->key.p, s->key.len);
        } else {
            uint64_t h = dir_hash(s->req.host.p, s->req.host.len);
            pk.key = h ^ dir_hash(s->req.path.p, s->req.path.len);
        }
    }
    return pool_resolve(ps, s->backend_hint, &pk);
}

const struct backend *
pol_backend(struct sess *s)
{
    return pol_backend_avoid(s, NULL);
}

const char *
pol_cstr(struct sess *s, struct vcl_str v)
{
    struct vcl_arena *a = &s->arena;

    if (a->base == NULL || a->used + v.len + 1 > a->size - 4096)
        return NULL;
    char *d = a->base + a->used;
    memcpy(d, v.p, v.len);
    d[v.len] = '\0';
    a->used += v.len + 1;
    return d;
}
