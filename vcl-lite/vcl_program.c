/*
 * vcl_program.c -- the compile entry points, diagnostics, the program's
 * life cycle and what the daemon reads from it (declarations, listing).
 */
#include "vcl.h"
#include "vcl_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ growable text */

struct tbuf {
    char *p;
    size_t len, cap;
};

static void tb_addf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
tb_addn(struct tbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = vcl_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
tb_addf(struct tbuf *b, const char *fmt, ...)
{
    va_list ap;
    char tmp[512];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        tb_addn(b, tmp, (size_t)n);
        return;
    }
    {
        char *big = vcl_xmalloc((size_t)n + 1);

        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        tb_addn(b, big, (size_t)n);
        free(big);
    }
}

/* -------------------------------------------------------- diagnostics */

struct vcl_diags {
    struct vcl_pool *pool;
    struct vcl_diag *d;
    size_t n, cap;
    bool has_error;
    char *joined;
};

size_t
vcl_diags_count(const struct vcl_diags *d)
{
    return d ? d->n : 0;
}

const struct vcl_diag *
vcl_diags_get(const struct vcl_diags *d, size_t i)
{
    return d && i < d->n ? &d->d[i] : NULL;
}

bool
vcl_diags_has_error(const struct vcl_diags *d)
{
    return d ? d->has_error : false;
}

const char *
vcl_diags_text(const struct vcl_diags *d)
{
    return d && d->joined ? d->joined : "";
}

void
vcl_diags_free(struct vcl_diags **dp)
{
    struct vcl_diags *d;

    if (dp == NULL || (d = *dp) == NULL)
        return;
    *dp = NULL;
    vcl_pool_free(&d->pool);
    free(d->d);
    free(d->joined);
    free(d);
}

static void
diag_add(struct vcl_compile *cs, enum vcl_severity sev, const struct vcl_token *t, const char *fmt,
         va_list ap)
{
    struct vcl_diags *dg = cs->diags;
    struct vcl_diag *d;
    char msg[1024];
    struct tbuf tb = {0};
    const char *file = "<policy>";

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (dg->n == dg->cap) {
        dg->cap = dg->cap ? dg->cap * 2 : 8;
        dg->d = vcl_xrealloc(dg->d, dg->cap * sizeof(*dg->d));
    }
    d = &dg->d[dg->n++];
    memset(d, 0, sizeof(*d));
    d->severity = sev;
    if (t != NULL && t->src < cs->nsrcs)
        file = cs->srcs[t->src].name;
    d->file = vcl_pool_strndup(dg->pool, file, strlen(file));
    d->message = vcl_pool_strndup(dg->pool, msg, strlen(msg));
    if (t != NULL) {
        const struct vcl_source *s = &cs->srcs[t->src];
        const char *ls = t->b, *le = t->b;
        size_t tl;

        d->line = t->line;
        d->col = t->col;
        tb_addf(&tb, "%s:%u:%u: %s: %s\n", file, t->line, t->col,
                sev == VCL_SEV_ERROR ? "error" : "warning", msg);
        while (ls > s->text && ls[-1] != '\n')
            ls--;
        while (le < s->text + s->len && *le != '\n')
            le++;
        tb_addn(&tb, ls, (size_t)(le - ls));
        tb_addn(&tb, "\n", 1);
        for (const char *c = ls; c < t->b; c++)
            tb_addn(&tb, *c == '\t' ? "\t" : " ", 1);
        tb_addn(&tb, "^", 1);
        tl = (size_t)(t->e - t->b);
        for (size_t i = 1; i < tl && t->b + i < le; i++)
            tb_addn(&tb, "~", 1);
        tb_addn(&tb, "\n", 1);
    } else {
        tb_addf(&tb, "%s: %s: %s\n", file, sev == VCL_SEV_ERROR ? "error" : "warning", msg);
    }
    d->text = vcl_pool_strndup(dg->pool, tb.p, tb.len);
    {
        struct tbuf j = {dg->joined, dg->joined ? strlen(dg->joined) : 0,
                         dg->joined ? strlen(dg->joined) + 1 : 0};

        tb_addn(&j, tb.p, tb.len);
        dg->joined = j.p;
    }
    free(tb.p);
}

void
vcl_error(struct vcl_compile *cs, const struct vcl_token *tok, const char *fmt, ...)
{
    va_list ap;

    if (cs->err)
        return; /* the first error is the one that counts (ERRCHK) */
    cs->err = true;
    cs->diags->has_error = true;
    /* a failed compile reports its error alone: warnings before it are noise */
    cs->diags->n = 0;
    free(cs->diags->joined);
    cs->diags->joined = NULL;
    va_start(ap, fmt);
    diag_add(cs, VCL_SEV_ERROR, tok, fmt, ap);
    va_end(ap);
}

void
vcl_warn(struct vcl_compile *cs, const struct vcl_token *tok, const char *fmt, ...)
{
    va_list ap;

    if (cs->err)
        return;
    va_start(ap, fmt);
    diag_add(cs, VCL_SEV_WARNING, tok, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ sources */

unsigned
vcl_source_add(struct vcl_compile *cs, const char *name, const char *text, size_t len)
{
    struct vcl_source *s;

    cs->srcs = vcl_xrealloc(cs->srcs, (cs->nsrcs + 1) * sizeof(*cs->srcs));
    s = &cs->srcs[cs->nsrcs];
    memset(s, 0, sizeof(*s));
    s->name = vcl_xstrndup(name, strlen(name));
    s->text = vcl_xstrndup(text, len);
    s->len = len;
    return (unsigned)cs->nsrcs++;
}

static int
stdio_reader(void *priv, const char *path, char **text, size_t *len)
{
    FILE *f;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;

    (void)priv;
    f = fopen(path, "rb");
    if (f == NULL)
        return VCL_EIO;
    for (;;) {
        if (cap - n < 4096) {
            if (cap > (64u << 20)) { /* a policy is not 64 MB */
                free(buf);
                fclose(f);
                return VCL_EIO;
            }
            cap = cap ? cap * 2 : 8192;
            buf = vcl_xrealloc(buf, cap);
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return VCL_EIO;
    }
    fclose(f);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

int
vcl_read_file(struct vcl_compile *cs, const char *path, char **text, size_t *len)
{
    if (cs->opt.reader != NULL)
        return cs->opt.reader(cs->opt.reader_priv, path, text, len);
    return stdio_reader(NULL, path, text, len);
}

/* ------------------------------------------------------------ compile */

void
vcl_options_init(struct vcl_options *opt)
{
    memset(opt, 0, sizeof(*opt));
}

static void
program_free(struct vcl_program *p)
{
    if (p == NULL)
        return;
    if (p->host_fini != NULL)
        p->host_fini(p->host_data);
    vcl_re_free_all(p);
    if (p->gmtx != NULL) {
        pthread_mutex_destroy(p->gmtx);
        free(p->gmtx);
    }
    free(p->globals);
    free(p->code);
    free(p->consts);
    p->magic = 0;
    vcl_pool_free(&p->pool);
    free(p);
}

static struct vcl_program *
program_new(const struct vcl_options *opt)
{
    struct vcl_program *p = vcl_xcalloc(1, sizeof(*p));

    p->magic = VCL_PROGRAM_MAGIC;
    atomic_init(&p->refs, 1);
    p->pool = vcl_pool_new();
    p->max_restarts = opt->max_restarts ? opt->max_restarts : 4;
    p->max_retries = opt->max_retries ? opt->max_retries : 4;
    p->hfp_ttl = opt->hit_for_pass_ttl > 0 ? opt->hit_for_pass_ttl : 120;
    p->gmtx = vcl_xmalloc(sizeof(pthread_mutex_t));
    pthread_mutex_init(p->gmtx, NULL);
    p->globals = vcl_xcalloc(VCL_GLOBAL_VARS, sizeof(*p->globals));
    return p;
}

void
vcl_cs_init(struct vcl_compile *cs, const struct vcl_options *opt, struct vcl_symtab *sym)
{
    memset(cs, 0, sizeof(*cs));
    memset(sym, 0, sizeof(*sym));
    cs->magic = VCL_COMPILE_MAGIC;
    if (opt != NULL)
        cs->opt = *opt;
    cs->pool = vcl_pool_new();
    cs->decls_tail = &cs->decls;
    cs->sym = sym;
    cs->diags = vcl_xcalloc(1, sizeof(*cs->diags));
    cs->diags->pool = vcl_pool_new();
}

void
vcl_cs_fini(struct vcl_compile *cs, struct vcl_diags **diagsp)
{
    VCL_CHECK_OBJ(cs, VCL_COMPILE_MAGIC);
    for (size_t i = 0; i < cs->nsrcs; i++) {
        free(cs->srcs[i].name);
        free(cs->srcs[i].text);
        free(cs->srcs[i].toks);
    }
    free(cs->srcs);
    cs->srcs = NULL;
    cs->nsrcs = 0;
    vcl_pool_free(&cs->pool);
    if (diagsp != NULL)
        *diagsp = cs->diags;
    else
        vcl_diags_free(&cs->diags);
    cs->diags = NULL;
    cs->magic = 0;
}

static int
compile(const char *name, const char *src, size_t len, bool have_src, const struct vcl_options *opt,
        struct vcl_program **out, struct vcl_diags **diagsp)
{
    struct vcl_compile cs;
    struct vcl_symtab sym;
    struct vcl_options defopt;
    char *btext;
    unsigned idx;
    int rc = 0;

    if (name == NULL || out == NULL || (have_src && src == NULL && len > 0))
        return VCL_EINVAL;
    *out = NULL;
    if (opt == NULL) {
        vcl_options_init(&defopt);
        opt = &defopt;
    }
    vcl_cs_init(&cs, opt, &sym);
    if (!have_src) {
        char *text = NULL;
        size_t tlen = 0;

        rc = vcl_read_file(&cs, name, &text, &tlen);
        if (rc != 0) {
            idx = vcl_source_add(&cs, name, "", 0);
            vcl_error(&cs, NULL, "cannot read policy file '%s'", name);
            rc = rc == VCL_ENOMEM ? VCL_ENOMEM : VCL_EIO;
            goto done;
        }
        idx = vcl_source_add(&cs, name, text, tlen);
        free(text);
    } else {
        idx = vcl_source_add(&cs, name, src ? src : "", len);
    }
    vcl_parse(&cs, idx, true);
    if (!cs.err) {
        const char *bt;

        btext = vcl_xmalloc(16384);
        bt = vcl_builtin_text(opt->hit_for_miss_ttl, btext, 16384);
        sym.builtin_src = vcl_source_add(&cs, "<builtin>", bt, strlen(bt));
        free(btext);
        vcl_parse(&cs, sym.builtin_src, false);
    }
    if (!cs.err)
        vcl_check(&cs);
    if (!cs.err) {
        cs.prog = program_new(opt);
        vcl_codegen(&cs);
    }
    if (cs.err) {
        rc = VCL_ECOMPILE;
        program_free(cs.prog);
        cs.prog = NULL;
    } else {
        struct vcl_program *p = cs.prog;

        p->srcnames = vcl_pool_alloc(p->pool, cs.nsrcs * sizeof(char *));
        for (size_t i = 0; i < cs.nsrcs; i++)
            p->srcnames[i] = vcl_pool_strndup(p->pool, cs.srcs[i].name, strlen(cs.srcs[i].name));
        p->nsrcnames = cs.nsrcs;
        *out = p;
    }
done:
    vcl_cs_fini(&cs, diagsp);
    return rc;
}

int
vcl_compile_file(const char *path, const struct vcl_options *opt, struct vcl_program **out,
                 struct vcl_diags **diags)
{
    if (diags != NULL)
        *diags = NULL;
    return compile(path, NULL, 0, false, opt, out, diags);
}

int
vcl_compile_string(const char *name, const char *src, size_t len, const struct vcl_options *opt,
                   struct vcl_program **out, struct vcl_diags **diags)
{
    if (diags != NULL)
        *diags = NULL;
    return compile(name, src, len, true, opt, out, diags);
}

struct vcl_program *
vcl_program_ref(struct vcl_program *p)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void
vcl_program_release(struct vcl_program **pp)
{
    struct vcl_program *p;

    VCL_NOTNULL(pp);
    p = *pp;
    if (p == NULL)
        return;
    *pp = NULL;
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        program_free(p);
}

void
vcl_program_set_host_data(struct vcl_program *p, void *data, void (*fini)(void *))
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    p->host_data = data;
    p->host_fini = fini;
}

void *
vcl_program_host_data(const struct vcl_program *p)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return p->host_data;
}

/* ------------------------------------------------------- declarations */

size_t
vcl_program_backend_count(const struct vcl_program *p)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return p->nbackends;
}

const struct vcl_backend_decl *
vcl_program_backend(const struct vcl_program *p, size_t i)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return i < p->nbackends ? &p->backends[i] : NULL;
}

size_t
vcl_program_probe_count(const struct vcl_program *p)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return p->nprobes;
}

const struct vcl_probe_decl *
vcl_program_probe(const struct vcl_program *p, size_t i)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return i < p->nprobes ? &p->probes[i] : NULL;
}

size_t
vcl_program_director_count(const struct vcl_program *p)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return p->ndirectors;
}

const struct vcl_director_decl *
vcl_program_director(const struct vcl_program *p, size_t i)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return i < p->ndirectors ? &p->directors[i] : NULL;
}

struct vcl_ref
vcl_program_default_backend(const struct vcl_program *p)
{
    struct vcl_ref r = {VCL_REF_NONE, 0};

    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    if (p->nbackends > 0 && !p->backends[0].none)
        r.kind = VCL_REF_BACKEND;
    return r;
}

const char *
vcl_program_ref_name(const struct vcl_program *p, struct vcl_ref ref)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    if (ref.kind == VCL_REF_BACKEND && ref.idx < p->nbackends)
        return p->backends[ref.idx].name;
    if (ref.kind == VCL_REF_DIRECTOR && ref.idx < p->ndirectors)
        return p->directors[ref.idx].name;
    return "";
}

bool
vcl_program_defines(const struct vcl_program *p, enum vcl_sub sub)
{
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    return (unsigned)sub < VCL_SUB__MAX && p->defined[sub];
}

/* --------------------------------------------------------------- dump */

static const char *const op_names[] = {
    [OP_NOP] = "nop",     [OP_CONST] = "const",   [OP_VAR] = "var",        [OP_SETVAR] = "setvar",
    [OP_HDR] = "hdr",     [OP_SETHDR] = "sethdr", [OP_UNSETHDR] = "unset", [OP_POP] = "pop",
    [OP_JMP] = "jmp",     [OP_JF] = "jf",         [OP_JF_KEEP] = "jf.and", [OP_JT_KEEP] = "jt.or",
    [OP_NOT] = "not",     [OP_NEG] = "neg",       [OP_ARITH] = "arith",    [OP_CMP] = "cmp",
    [OP_MATCH] = "match", [OP_ACL] = "acl",       [OP_CONCAT] = "concat",  [OP_CONV] = "conv",
    [OP_CALL] = "call",   [OP_RET] = "ret",       [OP_RETURN] = "return",  [OP_FUNC] = "func",
    [OP_END] = "end",
};

static void
dump_value(struct tbuf *b, const struct vcl_program *p, const struct vcl_value *v)
{
    char ip[64];

    switch (v->type) {
    case VCL_T_STRING:
        if (v->u.s.p == NULL) {
            tb_addf(b, "<unset>");
            break;
        }
        tb_addn(b, "\"", 1);
        for (size_t i = 0; i < v->u.s.len && i < 60; i++) {
            char c = v->u.s.p[i];

            if (c == '\n')
                tb_addn(b, "\\n", 2);
            else
                tb_addn(b, &c, 1);
        }
        tb_addf(b, "%s\"", v->u.s.len > 60 ? "..." : "");
        break;
    case VCL_T_BOOL:
        tb_addf(b, "%s", v->u.b ? "true" : "false");
        break;
    case VCL_T_INT:
        tb_addf(b, "%" PRId64, v->u.i);
        break;
    case VCL_T_BYTES:
        tb_addf(b, "%" PRId64 "B", v->u.i);
        break;
    case VCL_T_REAL:
        tb_addf(b, "%g", v->u.d);
        break;
    case VCL_T_DURATION:
        tb_addf(b, "%gs", v->u.d);
        break;
    case VCL_T_TIME:
        tb_addf(b, "time %g", v->u.d);
        break;
    case VCL_T_IP:
        vcl_fmt_ip(&v->u.ip, ip, sizeof(ip));
        tb_addf(b, "ip %s", ip);
        break;
    case VCL_T_BACKEND:
        tb_addf(b, "%s %s", v->u.ref.kind == VCL_REF_DIRECTOR ? "director" : "backend",
                v->u.ref.kind == VCL_REF_NONE ? "none" : vcl_program_ref_name(p, v->u.ref));
        break;
    default:
        tb_addf(b, "?");
    }
}

static void
dump_insn(struct tbuf *b, const struct vcl_program *p, size_t pc)
{
    const struct vcl_insn *in = &p->code[pc];

    char where[64];

    if (in->src != 0 && in->src < p->nsrcnames)
        snprintf(where, sizeof(where), "%s:%u", p->srcnames[in->src], in->line);
    else
        snprintf(where, sizeof(where), "%u", in->line);
    tb_addf(b, "  %5zu  %-14s %-7s", pc, where, op_names[in->op]);
    switch ((enum vcl_opcode)in->op) {
    case OP_CONST:
        tb_addn(b, " ", 1);
        dump_value(b, p, &p->consts[in->c]);
        break;
    case OP_VAR:
    case OP_SETVAR:
        tb_addf(b, " %s", vcl_var_name((enum vcl_var)in->c));
        break;
    case OP_HDR:
    case OP_SETHDR:
    case OP_UNSETHDR:
        tb_addf(b, " %s.http.%.*s", vcl_where_name((enum vcl_where)in->a),
                (int)p->consts[in->c].u.s.len, p->consts[in->c].u.s.p);
        break;
    case OP_JMP:
    case OP_JF:
    case OP_JF_KEEP:
    case OP_JT_KEEP:
        tb_addf(b, " -> %u", in->c);
        break;
    case OP_ARITH:
    case OP_CMP:
        tb_addf(b, " %s %s", vcl_tok_desc((enum vcl_tok_kind)in->b),
                vcl_type_name((enum vcl_type)in->a));
        break;
    case OP_NEG:
        tb_addf(b, " %s", vcl_type_name((enum vcl_type)in->a));
        break;
    case OP_MATCH:
        tb_addf(b, " %s\"%s\"", in->a ? "!~ " : "~ ", p->re[in->c].src);
        break;
    case OP_ACL:
        tb_addf(b, " %s%s", in->a ? "!~ " : "~ ", p->acls[in->c].name);
        break;
    case OP_CONCAT:
        tb_addf(b, " %u", in->c);
        break;
    case OP_CONV:
        tb_addf(b, " %s -> %s", vcl_type_name((enum vcl_type)in->a),
                vcl_type_name((enum vcl_type)in->b));
        break;
    case OP_CALL:
        for (size_t i = 0; i < p->nsubs; i++)
            if (p->subs[i].entry == in->c)
                tb_addf(b, " %s", p->subs[i].name);
        break;
    case OP_RETURN:
        tb_addf(b, " %s%s%s%s", vcl_action_name((enum vcl_action)in->a),
                in->b & 1 ? " +status" : "", in->b & 2 ? " +reason" : "",
                in->b & 4 ? " +duration" : "");
        break;
    case OP_FUNC:
        tb_addf(b, " %s/%u", vcl_funcs[in->c].name, in->a);
        if (in->c == VCL_FN_DIR_BACKEND)
            tb_addf(b, " (%s)", p->directors[in->b].name);
        break;
    default:
        break;
    }
    tb_addn(b, "\n", 1);
}

char *
vcl_program_dump(const struct vcl_program *p)
{
    struct tbuf b = {0};
    static const char *const dtypes[] = {"round_robin", "random", "fallback", "hash", "shard",
                                         "least_connections"};

    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    tb_addf(&b, "# vcl-lite program: %zu instructions, %zu constants, %zu regexes, %zu ACLs\n",
            p->ncode, p->nconsts, p->nre, p->nacls);
    for (size_t i = 0; i < p->nbackends; i++) {
        const struct vcl_backend_decl *be = &p->backends[i];

        if (be->none) {
            tb_addf(&b, "backend %s none;\n", be->name);
            continue;
        }
        tb_addf(&b, "backend %s: %s%s%s%s%s", be->name, be->host ? "host " : "path ",
                be->host ? be->host : be->path, be->port ? " port " : "", be->port ? be->port : "",
                be->ssl ? " ssl" : "");
        if (be->connect_timeout >= 0)
            tb_addf(&b, " connect_timeout %gs", be->connect_timeout);
        if (be->first_byte_timeout >= 0)
            tb_addf(&b, " first_byte_timeout %gs", be->first_byte_timeout);
        if (be->between_bytes_timeout >= 0)
            tb_addf(&b, " between_bytes_timeout %gs", be->between_bytes_timeout);
        if (be->max_connections)
            tb_addf(&b, " max_connections %u", be->max_connections);
        if (be->probe >= 0)
            tb_addf(&b, " probe %s", p->probes[be->probe].name);
        tb_addf(&b, "%s\n", i == 0 ? " (default)" : "");
    }
    for (size_t i = 0; i < p->nprobes; i++) {
        const struct vcl_probe_decl *pr = &p->probes[i];

        tb_addf(&b,
                "probe %s: %s%s expect %u timeout %gs interval %gs window %u threshold %u "
                "initial %u\n",
                pr->name, pr->url ? "url " : "request", pr->url ? pr->url : "",
                pr->expected_response, pr->timeout, pr->interval, pr->window, pr->threshold,
                pr->initial);
    }
    for (size_t i = 0; i < p->ndirectors; i++) {
        const struct vcl_director_decl *d = &p->directors[i];

        tb_addf(&b, "director %s: %s%s", d->name, dtypes[d->type], d->sticky ? " sticky" : "");
        for (size_t k = 0; k < d->n_members; k++)
            tb_addf(&b, "%s%s*%g", k ? ", " : " ", vcl_program_ref_name(p, d->members[k].ref),
                    d->members[k].weight);
        tb_addn(&b, "\n", 1);
    }
    for (size_t i = 0; i < p->nacls; i++) {
        const struct vcl_acl *a = &p->acls[i];

        tb_addf(&b, "acl %s:", a->name);
        for (size_t k = 0; k < a->n; k++)
            tb_addf(&b, " %s%s/%u", a->e[k].neg ? "!" : "", a->e[k].text, a->e[k].bits);
        tb_addn(&b, "\n", 1);
    }
    for (size_t i = 0; i < p->nsubs; i++) {
        size_t end = p->ncode;

        tb_addf(&b, "\nsub %s:\n", p->subs[i].name);
        for (size_t pc = p->subs[i].entry; pc < end; pc++) {
            dump_insn(&b, p, pc);
            if (p->code[pc].op == OP_RET)
                break;
        }
    }
    for (unsigned m = 0; m < VCL_SUB__MAX; m++) {
        tb_addf(&b, "\nsub %s:%s\n", vcl_sub_name((enum vcl_sub)m),
                p->defined[m] ? "" : " (builtin only)");
        for (size_t pc = p->entry[m]; pc < p->ncode; pc++) {
            dump_insn(&b, p, pc);
            if (p->code[pc].op == OP_END)
                break;
        }
    }
    if (b.p == NULL)
        tb_addn(&b, "", 0);
    return b.p;
}
