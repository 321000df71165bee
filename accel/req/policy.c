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
#include "req_int.h"

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
arena_copy(struct req *req, struct vcl_str v)
{
    struct vcl_arena *a = &req->arena;

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
arr_set(struct req *req, struct h1_header *h, unsigned *n, struct vcl_str name,
        struct vcl_str value)
{
    struct ac_slice nm = arena_copy(req, name), v = arena_copy(req, value);

    if ((name.len && nm.p == NULL) || (value.len && v.p == NULL))
        return -1;
    arr_remove(h, n, name);
    if (*n >= (unsigned)req->w->cfg->p.max_headers)
        return -1;
    h[*n].name = nm;
    h[*n].value = v.p ? v : AC_LIT("");
    (*n)++;
    return 0;
}

static int
op_get_header(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str *out)
{
    struct req *req = priv;
    const struct h1_header *h = NULL;

    out->p = NULL;
    out->len = 0;
    switch (w) {
    case VCL_WHERE_REQ:
        h = h1_header_find(req->hdrs, req->http.nhdrs, as(name));
        break;
    case VCL_WHERE_BEREQ:
        if (overlay_get(req->bereq_ops, req->n_bereq_ops, name, out))
            return 0;
        if (http_is_hop_by_hop(as(name)))
            return 0;
        h = h1_header_find(req->hdrs, req->http.nhdrs, as(name));
        break;
    case VCL_WHERE_BERESP:
        if (req->fetch.resp.hdrs != NULL)
            h = h1_header_find(req->fetch.resp.hdrs, req->fetch.resp.nhdrs, as(name));
        break;
    case VCL_WHERE_RESP:
        if (overlay_get(req->resp_ops, req->n_resp_ops, name, out))
            return 0;
        if (req->obj != NULL && req->state != R_SYNTH) {
            struct store_bytes b = store_obj_headers(req->obj);
            struct ac_slice v;
            if (cache_block_find(AC_SLICE(b.p, b.len), as(name), &v))
                *out = vs(v);
            return 0;
        }
        if (req->fetch.resp.hdrs != NULL && req->state != R_SYNTH)
            h = h1_header_find(req->fetch.resp.hdrs, req->fetch.resp.nhdrs, as(name));
        break;
    case VCL_WHERE_OBJ:
        if (req->obj != NULL) {
            struct store_bytes b = store_obj_headers(req->obj);
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
    struct req *req = priv;
    struct ac_slice nm, v;

    switch (w) {
    case VCL_WHERE_REQ:
        return arr_set(req, req->hdrs, &req->http.nhdrs, name, value);
    case VCL_WHERE_BERESP:
        if (req->fetch.resp.hdrs == NULL)
            return -1;
        return arr_set(req, req->fetch.resp.hdrs, &req->fetch.resp.nhdrs, name, value);
    case VCL_WHERE_BEREQ:
    case VCL_WHERE_RESP:
        nm = arena_copy(req, name);
        v = arena_copy(req, value);
        if (nm.p == NULL || (value.len && v.p == NULL))
            return -1;
        if (v.p == NULL)
            v = AC_LIT("");
        return w == VCL_WHERE_BEREQ ? overlay_set(req->bereq_ops, &req->n_bereq_ops, nm, v)
                                    : overlay_set(req->resp_ops, &req->n_resp_ops, nm, v);
    default:
        return -1;
    }
}

static int
op_unset_header(void *priv, enum vcl_where w, struct vcl_str name)
{
    struct req *req = priv;
    struct ac_slice nm;

    switch (w) {
    case VCL_WHERE_REQ:
        arr_remove(req->hdrs, &req->http.nhdrs, name);
        return 0;
    case VCL_WHERE_BERESP:
        if (req->fetch.resp.hdrs != NULL)
            arr_remove(req->fetch.resp.hdrs, &req->fetch.resp.nhdrs, name);
        return 0;
    case VCL_WHERE_BEREQ:
    case VCL_WHERE_RESP:
        nm = arena_copy(req, name);
        if (nm.p == NULL)
            return -1;
        return w == VCL_WHERE_BEREQ
                   ? overlay_set(req->bereq_ops, &req->n_bereq_ops, nm, AC_SLICE(NULL, 0))
                   : overlay_set(req->resp_ops, &req->n_resp_ops, nm, AC_SLICE(NULL, 0));
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
arena_printf(struct req *req, const char *fmt, unsigned long long v)
{
    struct vcl_arena *a = &req->arena;
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
    struct req *req = priv;
    struct store_times t;
    double now = ev_now(req->w->loop);

    memset(out, 0, sizeof(*out));
    out->type = vcl_var_type(var);
    switch (var) {
    case VCL_VAR_REQ_METHOD: out->u.s = vs(req->http.method); break;
    case VCL_VAR_REQ_URL: out->u.s = vs(req->http.path); break;
    case VCL_VAR_REQ_PROTO: out->u.s = vs(req->proto); break;
    case VCL_VAR_REQ_BACKEND_HINT: out->u.ref = req->backend_hint; break;
    case VCL_VAR_REQ_RESTARTS: out->u.i = req->restarts; break;
    case VCL_VAR_REQ_HASH_ALWAYS_MISS: out->u.b = req->hash_always_miss; break;
    case VCL_VAR_REQ_XID:
    case VCL_VAR_BEREQ_XID: out->u.s = arena_printf(req, "%llu", req->xid); break;
    case VCL_VAR_REQ_CAN_GZIP: {
        const struct h1_header *h = h1_header_find(req->hdrs, req->http.nhdrs,
                                                   AC_LIT("Accept-Encoding"));
        out->u.b = h != NULL && h1_list_has_token(h->value, AC_LIT("gzip"));
        break;
    }
    case VCL_VAR_REQ_IS_HITMISS:
    case VCL_VAR_REQ_IS_HITPASS:
        out->u.b = req->cstatus != NULL && strstr(req->cstatus, "hit-for-miss") != NULL;
        break;
    case VCL_VAR_BEREQ_METHOD:
        out->u.s = vs(req->bereq_method.len ? req->bereq_method : req->http.method);
        break;
    case VCL_VAR_BEREQ_URL: out->u.s = vs(req->http.path); break;
    case VCL_VAR_BEREQ_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_BEREQ_BACKEND: out->u.ref = req->backend_hint; break;
    case VCL_VAR_BEREQ_RETRIES: out->u.i = req->fetch.retries; break;
    case VCL_VAR_BEREQ_IS_BGFETCH: out->u.b = req->bg; break;
    case VCL_VAR_BEREQ_UNCACHEABLE: out->u.b = req->busy == NULL; break;
    case VCL_VAR_BEREQ_CONNECT_TIMEOUT: out->u.d = req_fetch_timeout(req, FETCH_TMO_CONNECT); break;
    case VCL_VAR_BEREQ_FIRST_BYTE_TIMEOUT:
        out->u.d = req_fetch_timeout(req, FETCH_TMO_FIRST_BYTE);
        break;
    case VCL_VAR_BEREQ_BETWEEN_BYTES_TIMEOUT:
        out->u.d = req_fetch_timeout(req, FETCH_TMO_BETWEEN_BYTES);
        break;
    case VCL_VAR_BERESP_STATUS: out->u.i = req->fetch.resp.status; break;
    case VCL_VAR_BERESP_REASON: out->u.s = vs(req->fetch.resp.reason_phrase); break;
    case VCL_VAR_BERESP_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_BERESP_TTL: out->u.d = req->dec.ttl - req->dec.initial_age; break;
    case VCL_VAR_BERESP_GRACE: out->u.d = req->dec.grace; break;
    case VCL_VAR_BERESP_KEEP: out->u.d = req->dec.keep; break;
    case VCL_VAR_BERESP_AGE: out->u.d = req->dec.initial_age; break;
    case VCL_VAR_BERESP_UNCACHEABLE: out->u.b = req->vcl_uncacheable; break;
    case VCL_VAR_BERESP_DO_STREAM: out->u.b = true; break;
    case VCL_VAR_BERESP_DO_GZIP: out->u.b = req->do_gzip; break;
    case VCL_VAR_BERESP_DO_GUNZIP: out->u.b = req->do_gunzip; break;
    case VCL_VAR_BERESP_DO_BROTLI: out->u.b = req->do_brotli; break;
    case VCL_VAR_BERESP_BACKEND_NAME:
        out->u.s = req->fetch.be ? (struct vcl_str){ req->fetch.be->name, strlen(req->fetch.be->name) } : VCL_LIT("");
        break;
    case VCL_VAR_BERESP_WAS_304: out->u.b = req->revalidating && req->fetch.resp.status == 304; break;
    case VCL_VAR_BERESP_STORAGE_HINT: out->u.s = VCL_LIT(""); break;
    case VCL_VAR_OBJ_STATUS: out->u.i = req->obj ? store_obj_status(req->obj) : 0; break;
    case VCL_VAR_OBJ_REASON: {
        struct store_bytes b = req->obj ? store_obj_headers(req->obj) : (struct store_bytes){ "", 0 };
        b.len = cache_block_visible(AC_SLICE(b.p, b.len)).len;
        const char *sp = b.len > 4 ? memchr(b.p, ' ', b.len) : NULL;
        const char *nl = b.len ? memchr(b.p, '\r', b.len) : NULL;
        out->u.s = sp && nl && nl > sp ? (struct vcl_str){ sp + 1, (size_t)(nl - sp - 1) }
                                       : VCL_LIT("");
        break;
    }
    case VCL_VAR_OBJ_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_OBJ_HITS: out->u.i = req->obj ? store_obj_hits(req->obj) : 0; break;
    case VCL_VAR_OBJ_TTL:
    case VCL_VAR_OBJ_GRACE:
    case VCL_VAR_OBJ_KEEP:
    case VCL_VAR_OBJ_AGE:
        if (req->obj == NULL)
            break;
        store_obj_times(req->obj, &t);
        out->u.d = var == VCL_VAR_OBJ_TTL ? t.insert + t.ttl - now
                 : var == VCL_VAR_OBJ_GRACE ? t.grace
                 : var == VCL_VAR_OBJ_KEEP ? t.keep : now - t.insert;
        break;
    case VCL_VAR_OBJ_UNCACHEABLE:
        out->u.b = req->obj && (store_obj_flags(req->obj) & STORE_OBJ_F_HFM);
        break;
    case VCL_VAR_RESP_STATUS: out->u.i = req->status; break;
    case VCL_VAR_RESP_REASON:
        out->u.s = req->resp_reason.p ? vs(req->resp_reason)
                 : (struct vcl_str){ http_reason(req->status), strlen(http_reason(req->status)) };
        break;
    case VCL_VAR_RESP_PROTO: out->u.s = VCL_LIT("HTTP/1.1"); break;
    case VCL_VAR_CLIENT_IP:
    case VCL_VAR_REMOTE_IP:
        ip_of(&req->meta->peer, &out->u.ip);
        break;
    case VCL_VAR_SERVER_IP:
    case VCL_VAR_LOCAL_IP: {
        struct sockaddr_storage ss;
        if (req_meta_local(req->meta, &ss) == 0)
            ip_of(&ss, &out->u.ip);
        break;
    }
    case VCL_VAR_CLIENT_IDENTITY:
        out->u.s = (struct vcl_str){ req->meta->client_ip, strlen(req->meta->client_ip) };
        break;
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
    struct req *req = priv;
    struct ac_slice c;

    switch (var) {
    case VCL_VAR_REQ_METHOD:
    case VCL_VAR_BEREQ_METHOD:
        if ((c = arena_copy(req, v->u.s)).p == NULL || c.len == 0)
            return -1;
        if (var == VCL_VAR_REQ_METHOD)
            req->http.method = c;
        else
            req->bereq_method = c;
        return 0;
    case VCL_VAR_REQ_URL:
    case VCL_VAR_BEREQ_URL:
        if ((c = arena_copy(req, v->u.s)).p == NULL || c.len == 0)
            return -1;
        req->http.path = c;
        return 0;
    case VCL_VAR_REQ_PROTO:
    case VCL_VAR_BEREQ_PROTO:
    case VCL_VAR_BERESP_PROTO:
    case VCL_VAR_RESP_PROTO:
        return 0;   /* accel speaks HTTP/1.1 on both sides */
    case VCL_VAR_REQ_BACKEND_HINT:
    case VCL_VAR_BEREQ_BACKEND:
        req->backend_hint = v->u.ref;
        return 0;
    case VCL_VAR_REQ_HASH_ALWAYS_MISS:
        req->hash_always_miss = v->u.b;
        return 0;
    case VCL_VAR_REQ_HASH_IGNORE_BUSY:
    case VCL_VAR_REQ_TTL:
    case VCL_VAR_REQ_GRACE:
    case VCL_VAR_BERESP_STORAGE_HINT:
    case VCL_VAR_BERESP_DO_STREAM:
        return 0;   /* accepted, advisory (docs/vcl-lite.md "coming from Varnish") */
    case VCL_VAR_BEREQ_CONNECT_TIMEOUT:
        req->fetch.bto[FETCH_TMO_CONNECT] = v->u.d > 0 ? v->u.d : 0.001;
        return 0;
    case VCL_VAR_BEREQ_FIRST_BYTE_TIMEOUT:
        req->fetch.bto[FETCH_TMO_FIRST_BYTE] = v->u.d > 0 ? v->u.d : 0.001;
        return 0;
    case VCL_VAR_BEREQ_BETWEEN_BYTES_TIMEOUT:
        req->fetch.bto[FETCH_TMO_BETWEEN_BYTES] = v->u.d > 0 ? v->u.d : 0.001;
        return 0;
    case VCL_VAR_BERESP_DO_GZIP:
        req->do_gzip = v->u.b;        /* applied when the fill starts (cache_sess.c) */
        return 0;
    case VCL_VAR_BERESP_DO_GUNZIP:
        req->do_gunzip = v->u.b;
        return 0;
    case VCL_VAR_BERESP_DO_BROTLI:
        req->do_brotli = v->u.b;
        return 0;
    case VCL_VAR_BERESP_STATUS:
        if (v->u.i < 100 || v->u.i > 999)
            return -1;
        req->fetch.resp.status = (int)v->u.i;
        return 0;
    case VCL_VAR_BERESP_REASON:
        if ((c = arena_copy(req, v->u.s)).p == NULL && v->u.s.len)
            return -1;
        req->fetch.resp.reason_phrase = c;
        return 0;
    case VCL_VAR_BERESP_TTL:
        req->dec.ttl = v->u.d + req->dec.initial_age;
        req->vcl_ttl_set = true;
        return 0;
    case VCL_VAR_BERESP_GRACE:
        req->dec.grace = v->u.d > 0 ? v->u.d : 0;
        return 0;
    case VCL_VAR_BERESP_KEEP:
        req->dec.keep = v->u.d > 0 ? v->u.d : 0;
        return 0;
    case VCL_VAR_BERESP_UNCACHEABLE:
        req->vcl_uncacheable = v->u.b;
        return 0;
    case VCL_VAR_BERESP_BODY:
    case VCL_VAR_RESP_BODY:
        ac_buf_reset(&req->synth_body);
        ac_buf_cat(&req->synth_body, v->u.s.p, v->u.s.len);
        req->synth_body_set = true;
        return 0;
    case VCL_VAR_RESP_STATUS:
        if (v->u.i < 100 || v->u.i > 999)
            return -1;
        req->resp_status_set = (int)v->u.i;
        req->status = (int)v->u.i;
        return 0;
    case VCL_VAR_RESP_REASON:
        if ((c = arena_copy(req, v->u.s)).p == NULL && v->u.s.len)
            return -1;
        req->resp_reason = c;
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
    struct req *req = priv;

    /* Each part ends with a separator, so ("ab","c") and ("a","bc") differ;
     * parts are in canonical target form (h1_target_canon: "[" as "%5B",
     * a newline as "%0A"), so req.url as a browser and as curl send it
     * hash alike and no part can fake a separator. */
    char *d = ac_buf_reserve(&req->key, 3 * str.len + 1);
    if (d == NULL)
        return -1;
    size_t n = h1_target_canon(str.p, str.len, d);
    d[n] = '\n';
    ac_buf_commit(&req->key, n + 1);
    return ac_buf_error(&req->key) ? -1 : 0;
}

static int
op_synthetic(void *priv, struct vcl_str str)
{
    struct req *req = priv;

    ac_buf_cat(&req->synth_body, str.p, str.len);
    req->synth_body_set = true;
    return 0;
}

static int
op_ban(void *priv, struct vcl_str expr)
{
    struct req *req = priv;

    char err[256];

    if (req->w->store == NULL)
        return 0;
    /* As Varnish: a bad expression is logged and the request goes on. */
    if (bans_add(req->w->store, as(expr), ev_now(req->w->loop), NULL, err, sizeof(err)) != 0)
        LOG_W("vcl ban(\"%.*s\"): %s", (int)expr.len, expr.p, err);
    return 0;
}

static void
op_log(void *priv, struct vcl_str str)
{
    struct req *req = priv;

    LOG_I("vcl: %s: %.*s", req->meta->client_ip, (int)str.len, str.p);
}

/*
 * dir.backend([key]): the choice is made at fetch time (pol_backend), when
 * health is current and a failed server can be avoided on retry; the ref
 * stays the director.  A key given here is remembered for hash/shard.
 */
static int
op_director_backend(void *priv, unsigned director, struct vcl_str key, struct vcl_ref *out)
{
    struct req *req = priv;

    if (director >= vcl_program_director_count(req->prog))
        return -1;
    if (key.p != NULL) {
        req->dir_key = dir_hash(key.p, key.len);
        req->dir_key_set = true;
    }
    out->kind = VCL_REF_DIRECTOR;
    out->idx = director;
    return 0;
}

static int
op_healthy(void *priv, struct vcl_ref ref, bool *out)
{
    struct req *req = priv;
    struct pool_set *ps = pool_set_of(req->prog);

    *out = ps != NULL ? pool_ref_healthy(ps, ref, pool_now_ms()) : true;
    return 0;
}

static int
op_xkey_purge(void *priv, struct vcl_str keys, bool soft, int64_t *count)
{
    struct req *req = priv;
    const char *p = keys.p, *end = keys.p + keys.len;
    size_t n, total = 0;

    *count = 0;
    if (req->w->store == NULL)
        return 0;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *q = p;
        while (q < end && *q != ' ' && *q != ',')
            q++;
        if (q > p && store_purge_tag(req->w->store, (struct store_bytes){ p, (size_t)(q - p) },
                                     soft ? STORE_PURGE_SOFT : 0, ev_now(req->w->loop),
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
    struct req *req = priv;
    struct h1_header *h;
    unsigned *n;
    struct vcl_arena *a = &req->arena;
    char *d;
    size_t start, cnt = 0;

    if (w == VCL_WHERE_REQ) {
        h = req->hdrs;
        n = &req->http.nhdrs;
    } else if (w == VCL_WHERE_BERESP && req->fetch.resp.hdrs != NULL) {
        h = req->fetch.resp.hdrs;
        n = &req->fetch.resp.nhdrs;
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
    return arr_set(req, h, n, name, joined);
}

/* tls.is_tls() and friends: the client connection (Varnish Enterprise's
 * vmod tls).  An internal request answers for the client connection of the
 * request that caused it (its metadata is a copy). */
static int
op_tls_info(void *priv, enum vcl_tls_what what, struct vcl_value *out)
{
    struct req *req = priv;
    const char *v;

    AC_CHECK_OBJ(req, REQ_MAGIC);
    if (what == VCL_TLS_IS_TLS) {
        out->u.b = req->meta->tls;
        return 0;
    }
    if (!req->meta->tls)
        return 0;
    v = what == VCL_TLS_VERSION ? req_meta_tls_version(req->meta)
        : what == VCL_TLS_CIPHER ? req_meta_tls_cipher(req->meta) : req_meta_tls_sni(req->meta);
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
pol_begin(struct req *req)
{
    if (req->prog != NULL || req->w->vcl == NULL)
        return;
    pol_begin_from(req, req->w->vcl);
}

void
pol_begin_from(struct req *req, struct vcl_program *p)
{
    req->prog = vcl_program_ref(p);
    if (req->arena.base == NULL) {
        req->arena.base = ac_xmalloc(POL_ARENA_SIZE);
        req->arena.size = POL_ARENA_SIZE;
    }
    req->arena.used = 0;
    vcl_ctx_init(&req->vctx, &host_ops, req, &req->arena);
    req->backend_hint = vcl_program_default_backend(req->prog);
    req->xid = ++req->w->xid_next * 64 + req->w->id;
    req->restarts = 0;
    req->dir_key_set = false;
    req->moved = false;
    for (unsigned i = 0; i < AC_ARRAY_LEN(req->fetch.bto); i++)
        req->fetch.bto[i] = -1;
}

void
pol_end(struct req *req)
{
    if (req->prog != NULL)
        vcl_program_release(&req->prog);
    req->arena.used = 0;
    req->n_resp_ops = req->n_bereq_ops = 0;
    req->hash_always_miss = false;
    req->vcl_uncacheable = false;
    req->vcl_ttl_set = false;
    req->synth_body_set = false;
    ac_buf_reset(&req->synth_body);
    req->resp_reason = AC_SLICE(NULL, 0);
    req->resp_status_set = 0;
}

enum vcl_action
pol_run(struct req *req, enum vcl_sub sub, struct vcl_result *res)
{
    int r;

    memset(res, 0, sizeof(*res));
    if (req->prog == NULL) {
        res->action = VCL_ACT_NONE;
        return VCL_ACT_NONE;
    }
    r = vcl_run(req->prog, sub, &req->vctx, res);
    if (r != 0) {
        LOG_W("vcl: %s failed: %s (line %u; client %s)", vcl_sub_name(sub),
              req->vctx.error && req->vctx.error[0] ? req->vctx.error : vcl_strerror(r),
              req->vctx.error_line, req->meta->client_ip);
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

    /* A request without a transport, as an internal one has, asked by a
     * loopback client. */
    struct wrk w;
    memset(&w, 0, sizeof(w));
    w.magic = WRK_MAGIC;
    w.cfg = cfg;
    w.loop = EV_DEFAULT;
    w.vcl = p;
    struct req *req = req_alloc(&w);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    req_meta_init(&req->meta_own, (struct sockaddr *)&sin, sizeof(sin), NULL, false);
    struct h1_limits lim = { 65536, 8192, 8192, (unsigned)cfg->p.max_headers,
                             cfg->p.uri_strict != 0 };
    if (h1_parse_request(raw.p, raw.len, &lim, &req->http) <= 0) {
        fprintf(stderr, "accel: explain: invalid request: %s\n",
                req->http.reason ? req->http.reason : "?");
        return 2;
    }
    pol_begin(req);
    ops.trace = op_trace;
    vcl_ctx_init(&req->vctx, &ops, req, &req->arena);

    printf("request: %s\n", reqline);
    printf("vcl_recv:\n");
    enum vcl_action a = pol_run(req, VCL_SUB_RECV, &res);
    printf("  => %s", vcl_action_name(a));
    if (a == VCL_ACT_SYNTH)
        printf("(%u%s%.*s)", res.status, res.reason.p ? ", " : "", (int)res.reason.len,
               res.reason.p ? res.reason.p : "");
    printf("\n");
    if (a == VCL_ACT_HASH || a == VCL_ACT_PURGE) {
        printf("vcl_hash:\n");
        ac_buf_reset(&req->key);
        pol_run(req, VCL_SUB_HASH, &res);
        printf("  => %s\ncache key: \"", vcl_action_name(res.action));
        for (size_t i = 0; i < req->key.len; i++)
            putchar(req->key.p[i] == '\n' ? '|' : req->key.p[i]);
        printf("\"\n");
    }
    printf("backend: %s%s\n", vcl_program_ref_name(p, req->backend_hint),
           req->backend_hint.kind == VCL_REF_DIRECTOR
               ? " (a director: it picks a healthy server when the request goes to the origin)"
               : "");
    printf("request headers after vcl_recv:\n");
    for (unsigned i = 0; i < req->http.nhdrs; i++)
        printf("  " AC_SLICE_FMT ": " AC_SLICE_FMT "\n", AC_SLICE_ARG(req->hdrs[i].name),
               AC_SLICE_ARG(req->hdrs[i].value));
    if (respline != NULL && (a == VCL_ACT_HASH || a == VCL_ACT_PASS)) {
        struct cache_params cp = { cfg->p.default_grace, cfg->p.default_keep, cfg->p.hfm_ttl,
                                   cfg->p.heuristic_fraction, cfg->p.heuristic_max,
                                   cfg->p.max_object_size,
                                   AC_SLICE(cfg->targeted_cc, strlen(cfg->targeted_cc)) };
        ac_buf_cat(&rawresp, "\r\n", 2);
        if (req->fetch.bhdrs == NULL)
            req->fetch.bhdrs = ac_xcalloc((size_t)cfg->p.max_headers, sizeof(*req->fetch.bhdrs));
        req->fetch.resp.hdrs = req->fetch.bhdrs;
        if (h1_parse_response(rawresp.p, rawresp.len, &lim, AC_LIT("GET"), &req->fetch.resp) <= 0) {
            fprintf(stderr, "accel: explain: invalid response: %s\n",
                    req->fetch.resp.reason ? req->fetch.resp.reason : "?");
            rc = 2;
        } else {
            double now = ev_time();
            cache_decide(&req->http, &req->fetch.resp, now, now, &cp, &req->dec);
            printf("RFC 9111: %s; ttl %.0fs, grace %.0fs, keep %.0fs%s%s\n",
                   req->dec.store ? "storable" : "not storable", req->dec.ttl, req->dec.grace,
                   req->dec.keep, req->dec.why ? "; why: " : "", req->dec.why ? req->dec.why : "");
            if (a == VCL_ACT_HASH)
                req->busy = (struct store_obj *)1;  /* bereq.uncacheable = false; never dereferenced */
            printf("vcl_backend_response:\n");
            pol_run(req, VCL_SUB_BACKEND_RESPONSE, &res);
            req->busy = NULL;
            printf("  => %s\n", vcl_action_name(res.action));
            double ttl = req->dec.ttl - req->dec.initial_age;
            bool store = a == VCL_ACT_HASH && !req->vcl_uncacheable && ttl > 0 &&
                         res.action == VCL_ACT_DELIVER;
            printf("decision: %s; ttl %.0fs, grace %.0fs, keep %.0fs\n",
                   store ? "store" : req->vcl_uncacheable ? "hit-for-miss" : "do not store", ttl,
                   req->dec.grace, req->dec.keep);
        }
    }
    req_destroy(&req);
    vcl_program_release(&p);
    ac_buf_free(&raw);
    ac_buf_free(&rawresp);
    return rc;
}

const struct backend *
pol_backend_avoid(struct req *req, const struct backend *avoid)
{
    struct pool_set *ps = pool_set_of(req->prog);
    struct dir_pick pk = { 0, avoid, pool_now_ms() };

    if (ps == NULL)
        return NULL;
    if (req->backend_hint.kind == VCL_REF_DIRECTOR) {
        /* hash/shard: the key given to .backend(), else the cache key,
         * else (pass, pipe) host and URL */
        if (req->dir_key_set) {
            pk.key = req->dir_key;
        } else if (req->kind == CACHE_REQ_LOOKUP && req->key.len > 0) {
            pk.key = dir_hash(req->key.p, req->key.len);
        } else {
            uint64_t h = dir_hash(req->http.host.p, req->http.host.len);
            pk.key = h ^ dir_hash(req->http.path.p, req->http.path.len);
        }
    }
    return pool_resolve(ps, req->backend_hint, &pk);
}

const struct backend *
pol_backend(struct req *req)
{
    return pol_backend_avoid(req, NULL);
}

const char *
pol_cstr(struct req *req, struct vcl_str v)
{
    struct vcl_arena *a = &req->arena;

    if (a->base == NULL || a->used + v.len + 1 > a->size - 4096)
        return NULL;
    char *d = a->base + a->used;
    memcpy(d, v.p, v.len);
    d[v.len] = '\0';
    a->used += v.len + 1;
    return d;
}
