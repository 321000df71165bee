/*
 * test_vcl_mock.h -- a mock host for the vcl-lite unit tests: headers and
 * variables in fixed tables, hash/ban/synthetic/log recorded as text.
 * Header-only so each test_vcl_*.c can include it.
 */
#ifndef TEST_VCL_MOCK_H
#define TEST_VCL_MOCK_H

#include "vcl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MOCK_HDRS 64

struct mock_hdr {
    enum vcl_where w;
    char name[64];
    char value[1024];
    size_t len;
    bool used;
};

struct mock {
    struct mock_hdr h[MOCK_HDRS];
    struct vcl_value vars[VCL_VAR__MAX];
    char strs[VCL_VAR__MAX][512]; /* copies of STRING variables */
    char hash[2048];
    int nhash;
    char bans[1024];
    char synth[8192];
    char log[2048];
    bool unhealthy;
    int64_t xkey_count;
    char xkey[256];
    bool xkey_soft;
    bool fail_get_var;
    unsigned dir_pick; /* director_backend answers backend dir_pick when != ~0 */
    char collected[256];
};

static __attribute__((unused)) void
mock_cat(char *dst, size_t cap, const char *sep, struct vcl_str s)
{
    size_t l = strlen(dst);

    if (l > 0 && sep != NULL)
        l += (size_t)snprintf(dst + l, cap - l, "%s", sep);
    if (l < cap)
        snprintf(dst + l, cap - l, "%.*s", (int)s.len, s.p);
}

static __attribute__((unused)) struct mock_hdr *
mock_find(struct mock *m, enum vcl_where w, struct vcl_str name)
{
    for (int i = 0; i < MOCK_HDRS; i++)
        if (m->h[i].used && m->h[i].w == w && strlen(m->h[i].name) == name.len &&
            strncasecmp(m->h[i].name, name.p, name.len) == 0)
            return &m->h[i];
    return NULL;
}

static __attribute__((unused)) int
mock_get_var(void *priv, enum vcl_var v, struct vcl_value *out)
{
    struct mock *m = priv;

    if (m->fail_get_var)
        return -1;
    *out = m->vars[v];
    return 0;
}

static __attribute__((unused)) int
mock_set_var(void *priv, enum vcl_var v, const struct vcl_value *val)
{
    struct mock *m = priv;
    char tmp[512];

    m->vars[v] = *val;
    if (val->type == VCL_T_STRING) {
        /* the value may be the string we handed out (regsub without a match) */
        snprintf(tmp, sizeof(tmp), "%.*s", (int)val->u.s.len, val->u.s.p);
        memcpy(m->strs[v], tmp, strlen(tmp) + 1);
        m->vars[v].u.s.p = m->strs[v];
        m->vars[v].u.s.len = strlen(m->strs[v]);
    }
    if (v == VCL_VAR_RESP_BODY || v == VCL_VAR_BERESP_BODY)
        snprintf(m->synth, sizeof(m->synth), "%.*s", (int)val->u.s.len, val->u.s.p);
    return 0;
}

static __attribute__((unused)) int
mock_get_header(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str *out)
{
    struct mock_hdr *h = mock_find(priv, w, name);

    out->p = h ? h->value : NULL;
    out->len = h ? h->len : 0;
    return 0;
}

static __attribute__((unused)) void
mock_set(struct mock *m, enum vcl_where w, const char *name, const char *value)
{
    struct mock_hdr *h = mock_find(m, w, (struct vcl_str){name, strlen(name)});

    for (int i = 0; h == NULL && i < MOCK_HDRS; i++)
        if (!m->h[i].used)
            h = &m->h[i];
    h->used = true;
    h->w = w;
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->value, sizeof(h->value), "%s", value);
    h->len = strlen(h->value);
}

static __attribute__((unused)) int
mock_set_header(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str value)
{
    char n[64], v[1024];

    snprintf(n, sizeof(n), "%.*s", (int)name.len, name.p);
    snprintf(v, sizeof(v), "%.*s", (int)value.len, value.p);
    mock_set(priv, w, n, v);
    return 0;
}

static __attribute__((unused)) int
mock_unset_header(void *priv, enum vcl_where w, struct vcl_str name)
{
    struct mock_hdr *h = mock_find(priv, w, name);

    if (h != NULL)
        h->used = false;
    return 0;
}

/* the header's value, or NULL when absent */
static __attribute__((unused)) const char *
mock_hdr(struct mock *m, enum vcl_where w, const char *name)
{
    struct mock_hdr *h = mock_find(m, w, (struct vcl_str){name, strlen(name)});

    return h ? h->value : NULL;
}

static __attribute__((unused)) int
mock_hash_data(void *priv, struct vcl_str s)
{
    struct mock *m = priv;

    m->nhash++;
    mock_cat(m->hash, sizeof(m->hash), "|", s);
    return 0;
}

static __attribute__((unused)) int
mock_synthetic(void *priv, struct vcl_str s)
{
    struct mock *m = priv;

    mock_cat(m->synth, sizeof(m->synth), NULL, s);
    return 0;
}

static __attribute__((unused)) int
mock_ban(void *priv, struct vcl_str s)
{
    struct mock *m = priv;

    mock_cat(m->bans, sizeof(m->bans), "\n", s);
    return 0;
}

static __attribute__((unused)) void
mock_log(void *priv, struct vcl_str s)
{
    struct mock *m = priv;

    mock_cat(m->log, sizeof(m->log), "\n", s);
}

static __attribute__((unused)) int
mock_healthy(void *priv, struct vcl_ref ref, bool *out)
{
    struct mock *m = priv;

    (void)ref;
    *out = !m->unhealthy;
    return 0;
}

static __attribute__((unused)) int
mock_director_backend(void *priv, unsigned dir, struct vcl_str key, struct vcl_ref *out)
{
    struct mock *m = priv;

    (void)key;
    if (m->dir_pick != ~0u) {
        out->kind = VCL_REF_BACKEND;
        out->idx = m->dir_pick;
    } else {
        out->kind = VCL_REF_DIRECTOR;
        out->idx = dir;
    }
    return 0;
}

static __attribute__((unused)) int
mock_xkey_purge(void *priv, struct vcl_str keys, bool soft, int64_t *count)
{
    struct mock *m = priv;

    snprintf(m->xkey, sizeof(m->xkey), "%.*s", (int)keys.len, keys.p);
    m->xkey_soft = soft;
    *count = m->xkey_count;
    return 0;
}

static __attribute__((unused)) int
mock_collect(void *priv, enum vcl_where w, struct vcl_str name, struct vcl_str sep)
{
    struct mock *m = priv;

    (void)w;
    snprintf(m->collected, sizeof(m->collected), "%.*s/%.*s", (int)name.len, name.p, (int)sep.len,
             sep.p);
    return 0;
}

static __attribute__((unused)) const struct vcl_host_ops mock_ops = {
    .get_var = mock_get_var,
    .set_var = mock_set_var,
    .get_header = mock_get_header,
    .set_header = mock_set_header,
    .unset_header = mock_unset_header,
    .hash_data = mock_hash_data,
    .synthetic = mock_synthetic,
    .ban = mock_ban,
    .log = mock_log,
    .healthy = mock_healthy,
    .director_backend = mock_director_backend,
    .xkey_purge = mock_xkey_purge,
    .collect_header = mock_collect,
};

static __attribute__((unused)) void
mock_str(struct mock *m, enum vcl_var v, const char *s)
{
    snprintf(m->strs[v], sizeof(m->strs[v]), "%s", s);
    m->vars[v].type = VCL_T_STRING;
    m->vars[v].u.s.p = m->strs[v];
    m->vars[v].u.s.len = strlen(s);
}

/* A typical GET request on an HTTP/1.1 connection from 192.0.2.10. */
static __attribute__((unused)) void
mock_init(struct mock *m)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < VCL_VAR__MAX; i++)
        m->vars[i].type = vcl_var_type((enum vcl_var)i);
    m->dir_pick = ~0u;
    mock_str(m, VCL_VAR_REQ_METHOD, "GET");
    mock_str(m, VCL_VAR_REQ_URL, "/");
    mock_str(m, VCL_VAR_REQ_PROTO, "HTTP/1.1");
    mock_str(m, VCL_VAR_REQ_XID, "1001");
    mock_str(m, VCL_VAR_BEREQ_METHOD, "GET");
    mock_str(m, VCL_VAR_BEREQ_URL, "/");
    mock_str(m, VCL_VAR_BEREQ_XID, "1002");
    mock_str(m, VCL_VAR_BERESP_REASON, "OK");
    mock_str(m, VCL_VAR_RESP_REASON, "OK");
    m->vars[VCL_VAR_BERESP_STATUS].u.i = 200;
    m->vars[VCL_VAR_RESP_STATUS].u.i = 200;
    m->vars[VCL_VAR_BERESP_TTL].u.d = 120;
    m->vars[VCL_VAR_CLIENT_IP].u.ip = (struct vcl_ip){4, {192, 0, 2, 10}, 0};
    m->vars[VCL_VAR_SERVER_IP].u.ip = (struct vcl_ip){4, {10, 0, 0, 1}, 0};
    m->vars[VCL_VAR_NOW].u.d = 1700000000.0;
    mock_set(m, VCL_WHERE_REQ, "Host", "example.com");
}

/* Compiles src or fails the test with the diagnostics printed. */
static __attribute__((unused)) struct vcl_program *
mock_compile_opt(const char *src, const struct vcl_options *opt)
{
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    int rc = vcl_compile_string("test.vcl", src, strlen(src), opt, &p, &d);

    if (rc != 0) {
        fprintf(stderr, "compile failed (%s):\n%s", vcl_strerror(rc), vcl_diags_text(d));
        vcl_diags_free(&d);
        return NULL;
    }
    vcl_diags_free(&d);
    return p;
}

static __attribute__((unused)) struct vcl_program *
mock_compile(const char *src)
{
    return mock_compile_opt(src, NULL);
}

/* The first diagnostic's text for a source expected not to compile. */
static __attribute__((unused)) char *
mock_compile_error(const char *src)
{
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    char *out;
    int rc = vcl_compile_string("test.vcl", src, strlen(src), NULL, &p, &d);

    if (rc == 0) {
        vcl_program_release(&p);
        vcl_diags_free(&d);
        return strdup("(compiled)");
    }
    out = strdup(vcl_diags_text(d));
    vcl_diags_free(&d);
    return out;
}

struct mock_run {
    struct mock m;
    char ws[16384];
    struct vcl_arena arena;
    struct vcl_ctx ctx;
    struct vcl_result res;
};

static __attribute__((unused)) void
mock_run_init(struct mock_run *r)
{
    mock_init(&r->m);
    r->arena = (struct vcl_arena){r->ws, sizeof(r->ws), 0};
    vcl_ctx_init(&r->ctx, &mock_ops, &r->m, &r->arena);
}

#endif /* TEST_VCL_MOCK_H */
