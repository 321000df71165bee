/*
 * vcl_vm.c -- runs one sub of a compiled program.
 *
 * A stack machine over the flat instruction array.  The stack is a fixed
 * array on the C stack (codegen proves no expression needs more); custom sub
 * calls nest at most CALL_DEPTH deep (codegen rejects recursion).  Nothing
 * is allocated on the heap: strings go to the request arena, and running out
 * of it is VCL_ENOSPC with action fail, never a crash.  The language has no
 * loops, so a run is bounded by the size of the program.
 */
#include "vcl.h"
#include "vcl_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <inttypes.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define VM_STACK 64 /* must match vcl_compile.c */
#define CALL_DEPTH 32

void
vcl_ctx_init(struct vcl_ctx *ctx, const struct vcl_host_ops *ops, void *priv,
             struct vcl_arena *arena)
{
    VCL_NOTNULL(ctx);
    VCL_NOTNULL(ops);
    VCL_NOTNULL(arena);
    VCL_ASSERT(arena->used <= arena->size);
    memset(ctx, 0, sizeof(*ctx));
    ctx->magic = VCL_CTX_MAGIC;
    ctx->ops = ops;
    ctx->priv = priv;
    ctx->arena = arena;
    ctx->error = "";
    ctx->_top = arena->size;
}

/* ---------------------------------------------------------------- arena */

void *
vcl_ws_alloc(struct vcl_ctx *ctx, size_t n)
{
    struct vcl_arena *a = ctx->arena;
    uintptr_t base = (uintptr_t)a->base + a->used;
    size_t pad = (8 - (base & 7)) & 7;

    if (ctx->_top < a->used || ctx->_top - a->used < pad + n)
        return NULL;
    a->used += pad;
    base = (uintptr_t)a->base + a->used;
    a->used += n;
    memset((void *)base, 0, n);
    return (void *)base;
}

int
vcl_ws_dup(struct vcl_ctx *ctx, struct vcl_str in, struct vcl_str *out)
{
    struct vcl_sb sb;

    if (in.p == NULL) {
        *out = in;
        return 0;
    }
    vcl_sb_begin(&sb, ctx);
    vcl_sb_add(&sb, in.p, in.len);
    return vcl_sb_end(&sb, out);
}

void
vcl_sb_begin(struct vcl_sb *sb, struct vcl_ctx *ctx)
{
    struct vcl_arena *a = ctx->arena;

    sb->ctx = ctx;
    sb->b = a->base + a->used;
    sb->len = 0;
    sb->cap = ctx->_top > a->used ? ctx->_top - a->used : 0;
    sb->over = false;
}

void
vcl_sb_add(struct vcl_sb *sb, const char *p, size_t n)
{
    if (sb->over || n == 0)
        return;
    if (sb->cap - sb->len < n) {
        sb->over = true;
        return;
    }
    memcpy(sb->b + sb->len, p, n);
    sb->len += n;
}

int
vcl_sb_end(struct vcl_sb *sb, struct vcl_str *out)
{
    if (sb->over) {
        sb->ctx->error = "request arena full";
        return VCL_ENOSPC;
    }
    out->p = sb->b;
    out->len = sb->len;
    sb->ctx->arena->used += sb->len;
    return 0;
}

/* ---------------------------------------------------------------- regex */

/* pcre2's memory for matching comes from the arena's top (so a string
 * being built at the bottom is never disturbed) and is never freed. */
static void *
re_alloc(PCRE2_SIZE n, void *data)
{
    struct vcl_ctx *ctx = data;
    struct vcl_arena *a = ctx->arena;
    uintptr_t top = (uintptr_t)a->base + ctx->_top;
    uintptr_t p = (top - n) & ~(uintptr_t)15;

    if (n > ctx->_top || p < (uintptr_t)a->base + a->used)
        return NULL;
    ctx->_top = (size_t)(p - (uintptr_t)a->base);
    return (void *)p;
}

static void
re_free(void *p, void *data)
{
    (void)p;
    (void)data;
}

struct re_state {
    pcre2_general_context *gc;
    pcre2_match_context *mc;
    pcre2_match_data *md;
    uint32_t cap;
};

int
vcl_re_match(const struct vcl_program *p, struct vcl_ctx *ctx, uint32_t re, struct vcl_str s,
             size_t start, const size_t **ovec)
{
    struct re_state *rs = ctx->_md;
    int rc;

    VCL_ASSERT(re < p->nre);
    if (rs == NULL || rs->cap < p->max_ovec) {
        rs = re_alloc(sizeof(*rs), ctx);
        if (rs == NULL)
            goto nomem;
        memset(rs, 0, sizeof(*rs));
        rs->gc = pcre2_general_context_create(re_alloc, re_free, ctx);
        if (rs->gc == NULL)
            goto nomem;
        rs->mc = pcre2_match_context_create(rs->gc);
        rs->md = pcre2_match_data_create(p->max_ovec ? p->max_ovec : 1, rs->gc);
        if (rs->mc == NULL || rs->md == NULL)
            goto nomem;
        /* bounded time even for a pathological pattern (ReDoS) */
        pcre2_set_match_limit(rs->mc, 100000);
        pcre2_set_depth_limit(rs->mc, 10000);
        rs->cap = p->max_ovec;
        ctx->_md = rs;
    }
    if (s.p == NULL)
        s = VCL_LIT("");
    rc = pcre2_match(p->re[re].code, (PCRE2_SPTR)s.p, s.len, start, 0, rs->md, rs->mc);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc == PCRE2_ERROR_NOMEMORY || rc == PCRE2_ERROR_HEAPLIMIT)
        goto nomem;
    if (rc < 0) {
        ctx->error = "regex match failed (match limit reached?)";
        return VCL_ERUNTIME;
    }
    *ovec = pcre2_get_ovector_pointer(rs->md);
    return 1;
nomem:
    ctx->error = "request arena full (regex)";
    return VCL_ENOSPC;
}

/* ----------------------------------------------------------- conversion */

static int fmt_into(struct vcl_ctx *ctx, struct vcl_str *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fmt_into(struct vcl_ctx *ctx, struct vcl_str *out, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    int n;
    struct vcl_sb sb;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;
    vcl_sb_begin(&sb, ctx);
    vcl_sb_add(&sb, buf, (size_t)n);
    if (n == 0) { /* an empty result is still "set" */
        out->p = "";
        out->len = 0;
        return 0;
    }
    return vcl_sb_end(&sb, out);
}

int
vcl_to_string(const struct vcl_program *p, struct vcl_ctx *ctx, const struct vcl_value *v,
              struct vcl_str *out)
{
    char buf[64];

    switch (v->type) {
    case VCL_T_STRING:
        *out = v->u.s;
        return 0;
    case VCL_T_BOOL:
        *out = v->u.b ? VCL_LIT("true") : VCL_LIT("false");
        return 0;
    case VCL_T_INT:
    case VCL_T_BYTES:
        return fmt_into(ctx, out, "%" PRId64, v->u.i);
    case VCL_T_REAL:
    case VCL_T_DURATION:
        return fmt_into(ctx, out, "%.3f", v->u.d);
    case VCL_T_TIME: {
        struct tm tm;
        time_t t = (time_t)v->u.d;

        if (gmtime_r(&t, &tm) == NULL ||
            strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
            buf[0] = '\0';
        return fmt_into(ctx, out, "%s", buf);
    }
    case VCL_T_IP:
        vcl_fmt_ip(&v->u.ip, buf, sizeof(buf));
        return fmt_into(ctx, out, "%s", buf);
    case VCL_T_BACKEND: {
        const char *n = vcl_program_ref_name(p, v->u.ref);

        out->p = n;
        out->len = strlen(n);
        return 0;
    }
    default:
        *out = VCL_LIT("");
        return 0;
    }
}

/* ------------------------------------------------------------ operators */

static bool
str_eq(struct vcl_str a, struct vcl_str b)
{
    /* VCL: an unset string equals nothing, not even "" (VRT_strcmp) */
    if (a.p == NULL || b.p == NULL)
        return false;
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool
compare(const struct vcl_value *l, const struct vcl_value *r, enum vcl_type t, unsigned op)
{
    int c = 0;

    switch (t) {
    case VCL_T_STRING:
        c = str_eq(l->u.s, r->u.s) ? 0 : 1;
        break;
    case VCL_T_BOOL:
        c = l->u.b != r->u.b;
        break;
    case VCL_T_INT:
    case VCL_T_BYTES:
        c = l->u.i < r->u.i ? -1 : l->u.i > r->u.i;
        break;
    case VCL_T_REAL:
    case VCL_T_DURATION:
    case VCL_T_TIME:
        c = l->u.d < r->u.d ? -1 : l->u.d > r->u.d;
        break;
    case VCL_T_IP:
        c = l->u.ip.family != r->u.ip.family ||
            memcmp(l->u.ip.addr, r->u.ip.addr, l->u.ip.family == 4 ? 4 : 16) != 0;
        break;
    case VCL_T_BACKEND:
        c = l->u.ref.kind != r->u.ref.kind ||
            (l->u.ref.kind != VCL_REF_NONE && l->u.ref.idx != r->u.ref.idx);
        break;
    default:
        VCL_UNREACHABLE("comparison type");
    }
    switch ((enum vcl_tok_kind)op) {
    case VCL_TOK_EQ:
        return c == 0;
    case VCL_TOK_NE:
        return c != 0;
    case VCL_TOK_LT:
        return c < 0;
    case VCL_TOK_GT:
        return c > 0;
    case VCL_TOK_LE:
        return c <= 0;
    case VCL_TOK_GE:
        return c >= 0;
    default:
        VCL_UNREACHABLE("comparison operator");
    }
}

static int
arith(struct vcl_ctx *ctx, struct vcl_value *l, const struct vcl_value *r, enum vcl_type res,
      unsigned op)
{
    if (res == VCL_T_INT || res == VCL_T_BYTES) {
        int64_t x = l->u.i, y = r->u.i, z = 0;
        bool ovf = false;

        switch ((enum vcl_tok_kind)op) {
        case VCL_TOK_PLUS:
            ovf = __builtin_add_overflow(x, y, &z);
            break;
        case VCL_TOK_MINUS:
            ovf = __builtin_sub_overflow(x, y, &z);
            break;
        case VCL_TOK_STAR:
            ovf = __builtin_mul_overflow(x, y, &z);
            break;
        case VCL_TOK_SLASH:
            if (y == 0 || (x == INT64_MIN && y == -1)) {
                ctx->error = "integer division by zero";
                return VCL_ERUNTIME;
            }
            z = x / y;
            break;
        default:
            VCL_UNREACHABLE("arith operator");
        }
        if (ovf) {
            ctx->error = "integer overflow";
            return VCL_ERUNTIME;
        }
        l->u.i = z;
    } else {
        double x = l->u.d, y = r->u.d;

        switch ((enum vcl_tok_kind)op) {
        case VCL_TOK_PLUS:
            l->u.d = x + y;
            break;
        case VCL_TOK_MINUS:
            l->u.d = x - y;
            break;
        case VCL_TOK_STAR:
            l->u.d = x * y;
            break;
        case VCL_TOK_SLASH:
            if (y == 0) {
                ctx->error = "division by zero";
                return VCL_ERUNTIME;
            }
            l->u.d = x / y;
            break;
        default:
            VCL_UNREACHABLE("arith operator");
        }
    }
    l->type = res;
    return 0;
}

/* ACL: the longest matching prefix decides (entries are sorted longest
 * first), and a negated entry means "no" (Varnish semantics). */
static bool
acl_match(const struct vcl_acl *acl, const struct vcl_ip *ip0)
{
    struct vcl_ip ip = *ip0;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (ip.family == 6 && memcmp(ip.addr, mapped, 12) == 0) { /* ::ffff:a.b.c.d */
        memmove(ip.addr, ip.addr + 12, 4);
        ip.family = 4;
    }
    for (size_t i = 0; i < acl->n; i++) {
        const struct vcl_acl_entry *e = &acl->e[i];
        unsigned full = e->bits / 8, rest = e->bits % 8;

        if (e->family != ip.family)
            continue;
        if (full && memcmp(e->addr, ip.addr, full) != 0)
            continue;
        if (rest && ((e->addr[full] ^ ip.addr[full]) & (uint8_t)(0xff << (8 - rest))))
            continue;
        return !e->neg;
    }
    return false;
}

/* ---------------------------------------------------------------- trace */

/* A value as text for the trace, into buf (never the arena: tracing must
 * not change what a run allocates). */
static void
trace_value(const struct vcl_program *p, const struct vcl_value *v, char *buf, size_t len)
{
    char ip[64];

    switch (v->type) {
    case VCL_T_STRING:
        if (v->u.s.p == NULL)
            snprintf(buf, len, "(unset)");
        else
            snprintf(buf, len, "\"%.*s%s\"", (int)(v->u.s.len > 120 ? 120 : v->u.s.len), v->u.s.p,
                     v->u.s.len > 120 ? "..." : "");
        break;
    case VCL_T_BOOL:
        snprintf(buf, len, "%s", v->u.b ? "true" : "false");
        break;
    case VCL_T_INT:
    case VCL_T_BYTES:
        snprintf(buf, len, "%" PRId64, v->u.i);
        break;
    case VCL_T_IP:
        vcl_fmt_ip(&v->u.ip, ip, sizeof(ip));
        snprintf(buf, len, "%s", ip);
        break;
    case VCL_T_BACKEND:
        snprintf(buf, len, "%s",
                 v->u.ref.kind == VCL_REF_NONE ? "none" : vcl_program_ref_name(p, v->u.ref));
        break;
    default:
        snprintf(buf, len, "%.3f", v->u.d);
        break;
    }
}

static void trace(const struct vcl_program *p, struct vcl_ctx *ctx, const struct vcl_insn *in,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
trace(const struct vcl_program *p, struct vcl_ctx *ctx, const struct vcl_insn *in, const char *fmt,
      ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;
    ctx->ops->trace(ctx->priv, in->src < p->nsrcnames ? p->srcnames[in->src] : "?", in->line,
                    (struct vcl_str){buf, (size_t)n});
}

static void
trace_insn(const struct vcl_program *p, struct vcl_ctx *ctx, const struct vcl_insn *in,
           const struct vcl_value *top, const struct vcl_result *res)
{
    char v[160];
    const struct vcl_str *name = &p->consts[in->c].u.s;

    switch ((enum vcl_opcode)in->op) {
    case OP_SETVAR:
        trace_value(p, top, v, sizeof(v));
        trace(p, ctx, in, "set %s = %s", vcl_var_name((enum vcl_var)in->c), v);
        break;
    case OP_SETHDR:
        trace_value(p, top, v, sizeof(v));
        trace(p, ctx, in, "set %s.http.%.*s = %s", vcl_where_name((enum vcl_where)in->a),
              (int)name->len, name->p, v);
        break;
    case OP_UNSETHDR:
        trace(p, ctx, in, "unset %s.http.%.*s", vcl_where_name((enum vcl_where)in->a),
              (int)name->len, name->p);
        break;
    case OP_CALL:
        for (size_t i = 0; i < p->nsubs; i++)
            if (p->subs[i].entry == in->c)
                trace(p, ctx, in, "call %s", p->subs[i].name);
        break;
    case OP_FUNC:
        if (vcl_funcs[in->c].ret != VCL_T_VOID)
            break;
        if (in->a > 0) {
            trace_value(p, top, v, sizeof(v));
            trace(p, ctx, in, "%s(%s)", vcl_funcs[in->c].name, v);
        } else {
            trace(p, ctx, in, "%s()", vcl_funcs[in->c].name);
        }
        break;
    case OP_RETURN:
        if (res->action == VCL_ACT_SYNTH)
            trace(p, ctx, in, "return (synth(%u, \"%.*s\"))", res->status, (int)res->reason.len,
                  res->reason.p ? res->reason.p : "");
        else if (res->action == VCL_ACT_PASS && res->duration > 0)
            trace(p, ctx, in, "return (pass(%.3f))", res->duration);
        else
            trace(p, ctx, in, "return (%s)", vcl_action_name(res->action));
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ run */

static int
fail(struct vcl_ctx *ctx, const struct vcl_insn *in, int rc, const char *why)
{
    if (why != NULL)
        ctx->error = why;
    if (ctx->error == NULL || ctx->error[0] == '\0')
        ctx->error = vcl_strerror(rc);
    ctx->error_line = in ? in->line : 0;
    return rc;
}

static void
finish_return(const struct vcl_program *p, struct vcl_ctx *ctx, enum vcl_sub sub,
              struct vcl_result *out)
{
    struct vcl_value v;

    if (out->action == VCL_ACT_RESTART) {
        memset(&v, 0, sizeof(v));
        v.type = VCL_T_INT;
        if (ctx->ops->get_var != NULL)
            (void)ctx->ops->get_var(ctx->priv, VCL_VAR_REQ_RESTARTS, &v);
        if (v.u.i >= (int64_t)p->max_restarts) {
            out->action = VCL_ACT_SYNTH;
            out->status = 503;
            out->reason = VCL_LIT("Too many restarts");
        }
    } else if (out->action == VCL_ACT_RETRY) {
        memset(&v, 0, sizeof(v));
        v.type = VCL_T_INT;
        if (ctx->ops->get_var != NULL)
            (void)ctx->ops->get_var(ctx->priv, VCL_VAR_BEREQ_RETRIES, &v);
        if (v.u.i >= (int64_t)p->max_retries)
            out->action = sub == VCL_SUB_BACKEND_ERROR ? VCL_ACT_ABANDON : VCL_ACT_FAIL;
    } else if (out->action == VCL_ACT_PASS && sub == VCL_SUB_BACKEND_RESPONSE &&
               out->duration <= 0) {
        out->duration = p->hfp_ttl;
    }
}

int
vcl_run(const struct vcl_program *p, enum vcl_sub sub, struct vcl_ctx *ctx, struct vcl_result *out)
{
    const struct vcl_host_ops *ops;
    const struct vcl_insn *code, *in = NULL;
    struct vcl_value st[VM_STACK + 1];
    uint32_t calls[CALL_DEPTH];
    unsigned sp = 0, csp = 0;
    uint32_t pc;
    int rc;

    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    VCL_CHECK_OBJ(ctx, VCL_CTX_MAGIC);
    VCL_NOTNULL(out);
    memset(out, 0, sizeof(*out));
    out->action = VCL_ACT_FAIL;
    if ((unsigned)sub >= VCL_SUB__MAX)
        return VCL_EINVAL;
    ops = ctx->ops;
    ctx->error = "";
    ctx->error_line = 0;
    code = p->code;
    pc = p->entry[sub];

    for (;;) {
        VCL_ASSERT(pc < p->ncode);
        in = &code[pc++];
        switch ((enum vcl_opcode)in->op) {
        case OP_NOP:
            break;
        case OP_CONST:
            st[sp++] = p->consts[in->c];
            break;
        case OP_VAR:
            memset(&st[sp], 0, sizeof(st[sp]));
            st[sp].type = vcl_vars[in->c].type;
            if (ops->get_var != NULL && ops->get_var(ctx->priv, (enum vcl_var)in->c, &st[sp]) != 0)
                return fail(ctx, in, VCL_EHOST, "host get_var failed");
            st[sp].type = vcl_vars[in->c].type;
            sp++;
            break;
        case OP_SETVAR:
            sp--;
            if (st[sp].type == VCL_T_STRING && st[sp].u.s.p == NULL)
                st[sp].u.s = VCL_LIT("");
            if (ops->trace != NULL)
                trace_insn(p, ctx, in, &st[sp], out);
            if (ops->set_var != NULL && ops->set_var(ctx->priv, (enum vcl_var)in->c, &st[sp]) != 0)
                return fail(ctx, in, VCL_EHOST, "host set_var failed");
            break;
        case OP_HDR:
            memset(&st[sp], 0, sizeof(st[sp]));
            st[sp].type = VCL_T_STRING;
            if (ops->get_header != NULL && ops->get_header(ctx->priv, (enum vcl_where)in->a,
                                                           p->consts[in->c].u.s, &st[sp].u.s) != 0)
                return fail(ctx, in, VCL_EHOST, "host get_header failed");
            sp++;
            break;
        case OP_SETHDR:
            sp--;
            if (st[sp].u.s.p == NULL)
                st[sp].u.s = VCL_LIT("");
            if (ops->trace != NULL)
                trace_insn(p, ctx, in, &st[sp], out);
            if (ops->set_header != NULL && ops->set_header(ctx->priv, (enum vcl_where)in->a,
                                                           p->consts[in->c].u.s, st[sp].u.s) != 0)
                return fail(ctx, in, VCL_EHOST, "host set_header failed");
            break;
        case OP_UNSETHDR:
            if (ops->trace != NULL)
                trace_insn(p, ctx, in, NULL, out);
            if (ops->unset_header != NULL &&
                ops->unset_header(ctx->priv, (enum vcl_where)in->a, p->consts[in->c].u.s) != 0)
                return fail(ctx, in, VCL_EHOST, "host unset_header failed");
            break;
        case OP_POP:
            sp--;
            break;
        case OP_JMP:
            pc = in->c;
            break;
        case OP_JF:
            sp--;
            if (!st[sp].u.b)
                pc = in->c;
            break;
        case OP_JF_KEEP:
            if (!st[sp - 1].u.b)
                pc = in->c;
            else
                sp--;
            break;
        case OP_JT_KEEP:
            if (st[sp - 1].u.b)
                pc = in->c;
            else
                sp--;
            break;
        case OP_NOT:
            st[sp - 1].u.b = !st[sp - 1].u.b;
            break;
        case OP_NEG:
            if (in->a == VCL_T_INT) {
                if (st[sp - 1].u.i == INT64_MIN)
                    return fail(ctx, in, VCL_ERUNTIME, "integer overflow");
                st[sp - 1].u.i = -st[sp - 1].u.i;
            } else {
                st[sp - 1].u.d = -st[sp - 1].u.d;
            }
            break;
        case OP_ARITH:
            sp--;
            rc = arith(ctx, &st[sp - 1], &st[sp], (enum vcl_type)in->a, in->b);
            if (rc != 0)
                return fail(ctx, in, rc, NULL);
            break;
        case OP_CMP:
            sp--;
            st[sp - 1].u.b = compare(&st[sp - 1], &st[sp], (enum vcl_type)in->a, in->b);
            st[sp - 1].type = VCL_T_BOOL;
            break;
        case OP_MATCH: {
            const size_t *ov;

            rc = vcl_re_match(p, ctx, in->c, st[sp - 1].u.s, 0, &ov);
            if (rc < 0)
                return fail(ctx, in, rc, NULL);
            st[sp - 1].type = VCL_T_BOOL;
            st[sp - 1].u.b = (rc == 1) != (in->a != 0);
            break;
        }
        case OP_ACL: {
            bool m = acl_match(&p->acls[in->c], &st[sp - 1].u.ip);

            st[sp - 1].type = VCL_T_BOOL;
            st[sp - 1].u.b = m != (in->a != 0);
            break;
        }
        case OP_CONCAT: {
            struct vcl_sb sb;
            struct vcl_str r;
            unsigned n = in->c;

            vcl_sb_begin(&sb, ctx);
            for (unsigned i = sp - n; i < sp; i++)
                if (st[i].u.s.p != NULL)
                    vcl_sb_add(&sb, st[i].u.s.p, st[i].u.s.len);
            if (sb.len == 0 && !sb.over)
                r = VCL_LIT("");
            else if ((rc = vcl_sb_end(&sb, &r)) != 0)
                return fail(ctx, in, rc, NULL);
            sp -= n;
            st[sp].type = VCL_T_STRING;
            st[sp].u.s = r;
            sp++;
            break;
        }
        case OP_CONV: {
            struct vcl_value *v = &st[sp - 1];

            if (in->b == VCL_T_STRING) {
                struct vcl_str s;

                rc = vcl_to_string(p, ctx, v, &s);
                if (rc != 0)
                    return fail(ctx, in, rc, NULL);
                v->u.s = s;
            } else if (in->b == VCL_T_BOOL) {
                bool b;

                if (in->a == VCL_T_STRING)
                    b = v->u.s.p != NULL;
                else if (in->a == VCL_T_INT)
                    b = v->u.i != 0;
                else if (in->a == VCL_T_DURATION)
                    b = v->u.d > 0;
                else
                    b = v->u.ref.kind != VCL_REF_NONE;
                v->u.b = b;
            } else if (in->b == VCL_T_REAL) {
                v->u.d = (double)v->u.i;
            } else {
                VCL_UNREACHABLE("conversion");
            }
            v->type = (enum vcl_type)in->b;
            break;
        }
        case OP_CALL:
            if (csp == CALL_DEPTH)
                return fail(ctx, in, VCL_ERUNTIME, "subs nested too deeply");
            if (ops->trace != NULL)
                trace_insn(p, ctx, in, NULL, out);
            calls[csp++] = pc;
            pc = in->c;
            break;
        case OP_RET:
            VCL_ASSERT(csp > 0);
            pc = calls[--csp];
            break;
        case OP_RETURN:
            out->action = (enum vcl_action)in->a;
            if (in->b & 4) {
                out->duration = st[--sp].u.d;
            }
            if (in->b & 2) {
                sp--;
                if (st[sp].u.s.p != NULL) {
                    rc = vcl_ws_dup(ctx, st[sp].u.s, &out->reason);
                    if (rc != 0)
                        return fail(ctx, in, rc, NULL);
                }
            }
            if (in->b & 1) {
                int64_t s = st[--sp].u.i;

                out->status = (s >= 100 && s <= 9999) ? (unsigned)s : 503;
            }
            finish_return(p, ctx, sub, out);
            if (ops->trace != NULL)
                trace_insn(p, ctx, in, NULL, out);
            return 0;
        case OP_FUNC: {
            struct vcl_value r;

            memset(&r, 0, sizeof(r));
            r.type = vcl_funcs[in->c].ret;
            if (ops->trace != NULL)
                trace_insn(p, ctx, in, in->a ? &st[sp - in->a] : NULL, out);
            sp -= in->a;
            rc = vcl_vmod_call(p, ctx, in->c, in->b, &st[sp], &r);
            if (rc != 0) {
                out->action = VCL_ACT_FAIL;
                return fail(ctx, in, rc, NULL);
            }
            if (vcl_funcs[in->c].ret != VCL_T_VOID)
                st[sp++] = r;
            break;
        }
        case OP_END:
            return fail(ctx, in, VCL_ERUNTIME, "sub ended without an action");
        default:
            VCL_UNREACHABLE("opcode");
        }
        VCL_ASSERT(sp <= VM_STACK);
    }
}
