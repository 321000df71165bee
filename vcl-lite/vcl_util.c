/*
 * vcl_util.c -- small shared pieces: assertions, allocation, the compile
 * pool, the name tables generated from the X-macros in vcl.h/vcl_int.h.
 */
#include "vcl.h"
#include "vcl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vcl_panic_f *panic_hook; /* set once at start-up by the daemon */

void
vcl_set_panic_hook(vcl_panic_f *hook)
{
    panic_hook = hook;
}

void
vcl_panic(const char *func, const char *file, int line, const char *expr)
{
    if (panic_hook != NULL)
        panic_hook(func, file, line, expr);
    fprintf(stderr, "vcl-lite: assertion failed in %s() at %s:%d: %s\n", func, file, line, expr);
    abort();
}

void *
vcl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        vcl_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

void *
vcl_xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);

    if (p == NULL)
        vcl_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

void *
vcl_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        vcl_panic(__func__, __FILE__, __LINE__, "out of memory");
    return p;
}

char *
vcl_xstrndup(const char *s, size_t n)
{
    char *d = vcl_xmalloc(n + 1);

    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ------------------------------------------------------------------ pool */

struct pool_chunk {
    struct pool_chunk *next;
    size_t size, used;
    _Alignas(16) char data[];
};

struct vcl_pool {
    struct pool_chunk *head;
};

struct vcl_pool *
vcl_pool_new(void)
{
    return vcl_xcalloc(1, sizeof(struct vcl_pool));
}

void *
vcl_pool_alloc(struct vcl_pool *pool, size_t n)
{
    struct pool_chunk *c = pool->head;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (c == NULL || c->size - c->used < n) {
        size_t sz = n > 16384 ? n : 16384;

        c = vcl_xmalloc(sizeof(*c) + sz);
        c->size = sz;
        c->used = 0;
        c->next = pool->head;
        pool->head = c;
    }
    p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *
vcl_pool_strndup(struct vcl_pool *pool, const char *s, size_t n)
{
    char *d = vcl_pool_alloc(pool, n + 1);

    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void
vcl_pool_free(struct vcl_pool **pp)
{
    struct vcl_pool *pool = *pp;
    struct pool_chunk *c, *n;

    if (pool == NULL)
        return;
    *pp = NULL;
    for (c = pool->head; c != NULL; c = n) {
        n = c->next;
        free(c);
    }
    free(pool);
}

/* --------------------------------------------------------------- strings */

bool
vcl_str_caseeq(struct vcl_str a, struct vcl_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];

        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return false;
    }
    return true;
}

bool
vcl_str_eq_cstr(struct vcl_str a, const char *s)
{
    size_t n = strlen(s);

    return a.len == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

unsigned
vcl_edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned row[65], prev, tmp;

    if (alen > 64 || blen > 64)
        return 1000;
    for (size_t j = 0; j <= blen; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= alen; i++) {
        prev = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= blen; j++) {
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned best = prev + cost;

            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            tmp = row[j];
            row[j] = best;
            prev = tmp;
        }
    }
    return row[blen];
}

/* ---------------------------------------------------------------- tables */

const struct vcl_var_info vcl_vars[VCL_VAR__MAX] = {
#define VCL_X_VAR(id, nm, ty, rd, wr) [VCL_VAR_##id] = {nm, VCL_T_##ty, rd, wr},
    VCL_VARIABLES(VCL_X_VAR)
#undef VCL_X_VAR
};

const struct vcl_where_info vcl_wheres[VCL_WHERE__MAX] = {
#define VCL_X_WHERE(id, nm, rd, wr) [VCL_WHERE_##id] = {nm, rd, wr},
    VCL_WHERES(VCL_X_WHERE)
#undef VCL_X_WHERE
};

const struct vcl_func vcl_funcs[VCL_FN__MAX] = {
#define VCL_X_FN(id, nm, ret, mn, mx, at, an, msk)                                                 \
    [VCL_FN_##id] = {nm, VCL_T_##ret, mn, mx, at, an, msk},
    VCL_FUNCS(VCL_X_FN)
#undef VCL_X_FN
};

#define A(x) (1u << VCL_ACT_##x)
/* Return actions per sub, as in Varnish's request state machine; fail is
 * allowed everywhere (Varnish 6). */
const unsigned vcl_sub_actions[VCL_SUB__MAX] = {
    [VCL_SUB_RECV] = A(HASH) | A(PASS) | A(PIPE) | A(PURGE) | A(SYNTH) | A(RESTART) | A(FAIL),
    [VCL_SUB_PIPE] = A(PIPE) | A(SYNTH) | A(FAIL),
    [VCL_SUB_PASS] = A(FETCH) | A(SYNTH) | A(RESTART) | A(FAIL),
    [VCL_SUB_HASH] = A(LOOKUP) | A(FAIL),
    [VCL_SUB_PURGE] = A(SYNTH) | A(RESTART) | A(FAIL),
    [VCL_SUB_HIT] = A(DELIVER) | A(PASS) | A(MISS) | A(SYNTH) | A(RESTART) | A(FAIL),
    [VCL_SUB_MISS] = A(FETCH) | A(PASS) | A(SYNTH) | A(RESTART) | A(FAIL),
    [VCL_SUB_DELIVER] = A(DELIVER) | A(RESTART) | A(SYNTH) | A(FAIL),
    [VCL_SUB_SYNTH] = A(DELIVER) | A(RESTART) | A(FAIL),
    [VCL_SUB_BACKEND_FETCH] = A(FETCH) | A(ABANDON) | A(FAIL),
    [VCL_SUB_BACKEND_RESPONSE] = A(DELIVER) | A(RETRY) | A(ABANDON) | A(PASS) | A(FAIL),
    [VCL_SUB_BACKEND_ERROR] = A(DELIVER) | A(RETRY) | A(ABANDON) | A(FAIL),
    [VCL_SUB_INIT] = A(OK) | A(FAIL),
    [VCL_SUB_FINI] = A(OK),
};
#undef A

static const char *const sub_names[] = {
#define VCL_X_SUB(id, nm) nm,
    VCL_SUBS(VCL_X_SUB)
#undef VCL_X_SUB
};
static const char *const action_names[] = {
#define VCL_X_ACT(id, nm) nm,
    VCL_ACTIONS(VCL_X_ACT)
#undef VCL_X_ACT
};
static const char *const type_names[] = {
#define VCL_X_TYPE(id, nm) nm,
    VCL_TYPES(VCL_X_TYPE)
#undef VCL_X_TYPE
};
static const char *const tok_names[] = {
#define VCL_X_TOK(id, desc) desc,
    VCL_TOKENS(VCL_X_TOK)
#undef VCL_X_TOK
};

const char *
vcl_sub_name(enum vcl_sub sub)
{
    return (unsigned)sub < VCL_SUB__MAX ? sub_names[sub] : "?";
}

const char *
vcl_action_name(enum vcl_action act)
{
    return (unsigned)act < VCL_ACT__MAX ? action_names[act] : "?";
}

const char *
vcl_type_name(enum vcl_type type)
{
    return (unsigned)type < VCL_T__MAX ? type_names[type] : "?";
}

const char *
vcl_var_name(enum vcl_var var)
{
    return (unsigned)var < VCL_VAR__MAX ? vcl_vars[var].name : "?";
}

enum vcl_type
vcl_var_type(enum vcl_var var)
{
    return (unsigned)var < VCL_VAR__MAX ? vcl_vars[var].type : VCL_T_VOID;
}

const char *
vcl_where_name(enum vcl_where where)
{
    return (unsigned)where < VCL_WHERE__MAX ? vcl_wheres[where].name : "?";
}

const char *
vcl_tok_desc(enum vcl_tok_kind k)
{
    return (unsigned)k < VCL_TOK__MAX ? tok_names[k] : "?";
}

const char *
vcl_strerror(int code)
{
    switch (code) {
    case VCL_OK:
        return "success";
    case VCL_EINVAL:
        return "invalid argument";
    case VCL_ECOMPILE:
        return "the policy has errors";
    case VCL_ENOMEM:
        return "out of memory";
    case VCL_EIO:
        return "cannot read policy file";
    case VCL_ENOSPC:
        return "request arena full";
    case VCL_EHOST:
        return "host operation failed";
    case VCL_ERUNTIME:
        return "policy run-time error";
    default:
        return "unknown error";
    }
}

/* The vmods accel implements natively (import is accepted). */
/* The vmods accel provides; one list for the check and the message. */
#define VCL_VMODS(X) X(std) X(directors) X(xkey) X(cookie) X(var) X(tls)

bool
vcl_vmod_known(struct vcl_str name)
{
#define X(v) #v,
    static const char *const known[] = {VCL_VMODS(X)};
#undef X

    for (size_t i = 0; i < VCL_ARRAY_LEN(known); i++)
        if (vcl_str_eq_cstr(name, known[i]))
            return true;
    return false;
}

const char *
vcl_vmod_names(void)
{
#define X(v) ", " #v
    static const char names[] = VCL_VMODS(X);
#undef X

    return names + 2; /* "std, directors, ..." */
}
