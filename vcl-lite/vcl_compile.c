/*
 * vcl_compile.c -- checked AST to program: instructions, constants,
 * regexes, ACL tables and the declarations the daemon reads.
 *
 * The code is a flat array for a small stack machine (vcl_vm.c).  Each
 * built-in sub's entry runs the user's bodies in order of appearance, then
 * the builtin's body (which always returns), so falling through a sub
 * continues with the built-in behaviour, as in Varnish.  Custom subs end in
 * OP_RET.  The stack depth of every expression is computed here and bounded,
 * so the VM's fixed stack cannot overflow.
 */
#include "vcl.h"
#include "vcl_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define VM_STACK 64 /* must match vcl_vm.c */

struct gen {
    struct vcl_compile *cs;
    struct vcl_program *p;
    struct vcl_symtab *st;
    unsigned depth, maxdepth;
    int *dirmap; /* symtab director index -> program index (stubs: -1) */
};

static void gen_expr(struct gen *g, struct vcl_node *n);
static void gen_stmts(struct gen *g, struct vcl_node *list);

static uint32_t
emit(struct gen *g, enum vcl_opcode op, unsigned a, unsigned b, uint32_t c,
     const struct vcl_token *t)
{
    struct vcl_program *p = g->p;
    struct vcl_insn *i;

    if (p->ncode == p->capcode) {
        p->capcode = p->capcode ? p->capcode * 2 : 256;
        p->code = vcl_xrealloc(p->code, p->capcode * sizeof(*p->code));
    }
    i = &p->code[p->ncode];
    i->op = (uint8_t)op;
    i->a = (uint8_t)a;
    i->b = (uint16_t)b;
    i->c = c;
    i->line = t ? t->line : 0;
    i->src = t ? t->src : 0;
    return (uint32_t)p->ncode++;
}

static void
push(struct gen *g, int n)
{
    g->depth = (unsigned)((int)g->depth + n);
    if (g->depth > g->maxdepth)
        g->maxdepth = g->depth;
}

static uint32_t
konst(struct gen *g, struct vcl_value v)
{
    struct vcl_program *p = g->p;

    if (p->nconsts == p->capconsts) {
        p->capconsts = p->capconsts ? p->capconsts * 2 : 64;
        p->consts = vcl_xrealloc(p->consts, p->capconsts * sizeof(*p->consts));
    }
    p->consts[p->nconsts] = v;
    return (uint32_t)p->nconsts++;
}

static uint32_t
kstr(struct gen *g, struct vcl_str s)
{
    struct vcl_value v;

    memset(&v, 0, sizeof(v));
    v.type = VCL_T_STRING;
    if (s.p != NULL) {
        v.u.s.p = vcl_pool_strndup(g->p->pool, s.p, s.len);
        v.u.s.len = s.len;
    }
    return konst(g, v);
}

static uint32_t
kint(struct gen *g, enum vcl_type t, int64_t i)
{
    struct vcl_value v;

    memset(&v, 0, sizeof(v));
    v.type = t;
    v.u.i = i;
    return konst(g, v);
}

static uint32_t
kdbl(struct gen *g, enum vcl_type t, double d)
{
    struct vcl_value v;

    memset(&v, 0, sizeof(v));
    v.type = t;
    v.u.d = d;
    return konst(g, v);
}

static struct vcl_ref
map_ref(struct gen *g, struct vcl_ref r)
{
    if (r.kind == VCL_REF_DIRECTOR)
        r.idx = (unsigned)g->dirmap[r.idx];
    return r;
}

static uint32_t
regex(struct gen *g, struct vcl_node *n)
{
    char err[256];
    uint32_t idx = 0;

    if (vcl_re_compile(g->p, n->s.p, n->s.len, err, sizeof(err), &idx) != 0)
        vcl_error(g->cs, n->tok, "invalid regular expression: %s", err);
    return idx;
}

/* A neutral value for a stubbed call (migration mode). */
static void
gen_stub(struct gen *g, struct vcl_node *n)
{
    struct vcl_value v;

    memset(&v, 0, sizeof(v));
    v.type = n->type;
    if (n->type == VCL_T_VOID)
        return;
    if (n->type == VCL_T_STRING) {
        v.u.s.p = "";
        v.u.s.len = 0;
    }
    if (n->type == VCL_T_STUB) {
        v.type = VCL_T_STRING;
        v.u.s.p = "";
    }
    emit(g, OP_CONST, 0, 0, konst(g, v), n->tok);
    push(g, 1);
}

static void
gen_call(struct gen *g, struct vcl_node *n)
{
    unsigned slots = 0, aux = 0;
    const struct vcl_func *f = &vcl_funcs[n->i];

    if (n->i == VCL_FN_STD_FILEREAD) {
        /* read once, at load: the VM does no I/O */
        char *text = NULL, *path;
        size_t len = 0;

        if (n->a->kind != N_STRING) {
            vcl_error(g->cs, n->a->tok, "std.fileread() needs a constant path");
            return;
        }
        path = vcl_pool_strndup(g->cs->pool, n->a->s.p, n->a->s.len);
        if (vcl_read_file(g->cs, path, &text, &len) != 0) {
            vcl_error(g->cs, n->a->tok, "std.fileread(): cannot read \"%s\"", path);
            return;
        }
        emit(g, OP_CONST, 0, 0, kstr(g, (struct vcl_str){text, len}), n->tok);
        free(text);
        push(g, 1);
        return;
    }

    for (struct vcl_node *a = n->a; a != NULL; a = a->next) {
        if (a->type == VCL_T_REGEX) {
            emit(g, OP_CONST, 0, 0, kint(g, VCL_T_INT, regex(g, a)), a->tok);
            push(g, 1);
            slots++;
        } else if (a->type == VCL_T_HEADER) {
            emit(g, OP_CONST, 0, 0, kint(g, VCL_T_INT, a->i), a->tok);
            emit(g, OP_CONST, 0, 0, kstr(g, a->s), a->tok);
            push(g, 2);
            slots += 2;
        } else {
            gen_expr(g, a);
            slots++;
        }
    }
    if (n->i == VCL_FN_DIR_BACKEND)
        aux = (unsigned)g->dirmap[n->val.u.ref.idx];
    emit(g, OP_FUNC, slots, aux, (uint32_t)n->i, n->tok);
    push(g, -(int)slots + (f->ret == VCL_T_VOID ? 0 : 1));
}

static void
gen_expr(struct gen *g, struct vcl_node *n)
{
    uint32_t j;
    unsigned cnt;

    ERRCHK(g->cs);
    switch (n->kind) {
    case N_STRING:
        emit(g, OP_CONST, 0, 0, kstr(g, n->s), n->tok);
        push(g, 1);
        return;
    case N_INT:
        emit(g, OP_CONST, 0, 0, kint(g, VCL_T_INT, n->i), n->tok);
        push(g, 1);
        return;
    case N_BYTES:
        emit(g, OP_CONST, 0, 0, kint(g, VCL_T_BYTES, n->i), n->tok);
        push(g, 1);
        return;
    case N_REAL:
        emit(g, OP_CONST, 0, 0, kdbl(g, VCL_T_REAL, n->d), n->tok);
        push(g, 1);
        return;
    case N_DURATION:
        emit(g, OP_CONST, 0, 0, kdbl(g, VCL_T_DURATION, n->d), n->tok);
        push(g, 1);
        return;
    case N_BOOL: {
        struct vcl_value v;

        memset(&v, 0, sizeof(v));
        v.type = VCL_T_BOOL;
        v.u.b = n->i != 0;
        emit(g, OP_CONST, 0, 0, konst(g, v), n->tok);
        push(g, 1);
        return;
    }
    case N_CONST: {
        struct vcl_value v = n->val;

        v.type = n->type;
        emit(g, OP_CONST, 0, 0, konst(g, v), n->tok);
        push(g, 1);
        return;
    }
    case N_BACKEND: {
        struct vcl_value v;

        memset(&v, 0, sizeof(v));
        v.type = VCL_T_BACKEND;
        v.u.ref = map_ref(g, n->val.u.ref);
        emit(g, OP_CONST, 0, 0, konst(g, v), n->tok);
        push(g, 1);
        return;
    }
    case N_VAR:
        emit(g, OP_VAR, 0, 0, (uint32_t)n->i, n->tok);
        push(g, 1);
        return;
    case N_HEADER:
        emit(g, OP_HDR, (unsigned)n->i, 0, kstr(g, n->s), n->tok);
        push(g, 1);
        return;
    case N_CONCAT:
        cnt = 0;
        for (struct vcl_node *a = n->a; a != NULL; a = a->next) {
            gen_expr(g, a);
            cnt++;
        }
        emit(g, OP_CONCAT, 0, 0, cnt, n->tok);
        push(g, 1 - (int)cnt);
        return;
    case N_CONV:
        gen_expr(g, n->a);
        emit(g, OP_CONV, n->a->type, n->type, 0, n->tok);
        return;
    case N_NOT:
        gen_expr(g, n->a);
        emit(g, OP_NOT, 0, 0, 0, n->tok);
        return;
    case N_NEG:
        gen_expr(g, n->a);
        emit(g, OP_NEG, n->type, 0, 0, n->tok);
        return;
    case N_STUB:
        gen_stub(g, n);
        return;
    case N_CALL:
        gen_call(g, n);
        return;
    case N_BINOP:
        switch ((enum vcl_tok_kind)n->i) {
        case VCL_TOK_AND:
        case VCL_TOK_OR:
            gen_expr(g, n->a);
            j = emit(g, n->i == VCL_TOK_AND ? OP_JF_KEEP : OP_JT_KEEP, 0, 0, 0, n->tok);
            push(g, -1);
            gen_expr(g, n->b);
            g->p->code[j].c = (uint32_t)g->p->ncode;
            return;
        case VCL_TOK_MATCH:
        case VCL_TOK_NOMATCH:
            gen_expr(g, n->a);
            if (n->b->kind == N_ACLREF)
                emit(g, OP_ACL, n->i == VCL_TOK_NOMATCH, 0, (uint32_t)n->b->i, n->tok);
            else
                emit(g, OP_MATCH, n->i == VCL_TOK_NOMATCH, 0, regex(g, n->b), n->tok);
            return;
        case VCL_TOK_PLUS:
        case VCL_TOK_MINUS:
        case VCL_TOK_STAR:
        case VCL_TOK_SLASH:
            gen_expr(g, n->a);
            gen_expr(g, n->b);
            emit(g, OP_ARITH, n->type, (unsigned)n->i, 0, n->tok);
            push(g, -1);
            return;
        default:
            gen_expr(g, n->a);
            gen_expr(g, n->b);
            emit(g, OP_CMP, n->val.type, (unsigned)n->i, 0, n->tok);
            push(g, -1);
            return;
        }
    default:
        VCL_UNREACHABLE("expression kind in codegen");
    }
}

static void
gen_stmt(struct gen *g, struct vcl_node *n)
{
    uint32_t j, k;
    unsigned flags = 0;

    g->depth = 0;
    switch (n->kind) {
    case N_SET:
        gen_expr(g, n->b);
        if (n->a->kind == N_HEADER)
            emit(g, OP_SETHDR, (unsigned)n->a->i, 0, kstr(g, n->a->s), n->a->tok);
        else
            emit(g, OP_SETVAR, 0, 0, (uint32_t)n->a->i, n->a->tok);
        break;
    case N_UNSET:
        emit(g, OP_UNSETHDR, (unsigned)n->a->i, 0, kstr(g, n->a->s), n->a->tok);
        break;
    case N_IF:
        gen_expr(g, n->a);
        j = emit(g, OP_JF, 0, 0, 0, n->tok);
        gen_stmts(g, n->b);
        if (n->c != NULL) {
            k = emit(g, OP_JMP, 0, 0, 0, n->tok);
            g->p->code[j].c = (uint32_t)g->p->ncode;
            gen_stmts(g, n->c);
            g->p->code[k].c = (uint32_t)g->p->ncode;
        } else {
            g->p->code[j].c = (uint32_t)g->p->ncode;
        }
        break;
    case N_CALLSUB:
        for (size_t i = 0; i < g->st->nsubs; i++)
            if (g->st->subs[i].name.len == n->s.len &&
                memcmp(g->st->subs[i].name.p, n->s.p, n->s.len) == 0)
                emit(g, OP_CALL, 0, 0, (uint32_t)i, n->tok);
        break;
    case N_RETURN:
        if (n->a != NULL) {
            gen_expr(g, n->a);
            flags |= 1;
        }
        if (n->b != NULL) {
            gen_expr(g, n->b);
            flags |= 2;
        }
        if (n->c != NULL) {
            gen_expr(g, n->c);
            flags |= 4;
        }
        emit(g, OP_RETURN, (unsigned)n->i, flags, 0, n->tok);
        break;
    case N_EXPR:
        if (n->a->kind == N_STUB)
            break;
        gen_expr(g, n->a);
        if (n->a->type != VCL_T_VOID) {
            emit(g, OP_POP, 0, 0, 0, n->tok);
        }
        break;
    case N_NOP:
        break;
    default:
        VCL_UNREACHABLE("statement kind in codegen");
    }
    if (g->maxdepth > VM_STACK)
        vcl_error(g->cs, n->tok, "expression too complex (needs more than %d stack slots)",
                  VM_STACK);
}

static void
gen_stmts(struct gen *g, struct vcl_node *list)
{
    for (struct vcl_node *s = list; s != NULL; s = s->next) {
        gen_stmt(g, s);
        ERRCHK(g->cs);
    }
}

/* ---------------------------------------------------------- declarations */

static char *
pstr(struct gen *g, struct vcl_str s)
{
    return vcl_pool_strndup(g->p->pool, s.p, s.len);
}

static bool
field_str(struct gen *g, struct vcl_node *f, const char **out)
{
    struct vcl_node *v = f->a;

    if (v == NULL || v->kind != N_STRING || v->next != NULL) {
        if (v != NULL && v->kind == N_INT && vcl_str_eq_cstr(f->s, "port")) {
            *out = pstr(g, (struct vcl_str){v->tok->b, (size_t)(v->tok->e - v->tok->b)});
            return true;
        }
        vcl_error(g->cs, f->tok, "field .%.*s needs a string", (int)f->s.len, f->s.p);
        return false;
    }
    *out = pstr(g, v->s);
    return true;
}

static bool
field_dur(struct gen *g, struct vcl_node *f, double *out)
{
    struct vcl_node *v = f->a;

    if (v == NULL || v->kind != N_DURATION || v->next != NULL) {
        vcl_error(g->cs, f->tok, "field .%.*s needs a duration such as 5s", (int)f->s.len, f->s.p);
        return false;
    }
    *out = v->d;
    return true;
}

static bool
field_uint(struct gen *g, struct vcl_node *f, unsigned *out)
{
    struct vcl_node *v = f->a;

    if (v == NULL || v->kind != N_INT || v->next != NULL || v->i < 0 || v->i > 1000000000) {
        vcl_error(g->cs, f->tok, "field .%.*s needs a positive integer", (int)f->s.len, f->s.p);
        return false;
    }
    *out = (unsigned)v->i;
    return true;
}

/* true/false, or 1/0 as Varnish Enterprise writes its .ssl fields. */
static bool
field_bool(struct gen *g, struct vcl_node *f, bool *out)
{
    struct vcl_node *v = f->a;

    if (v != NULL && v->next == NULL && v->kind == N_BOOL) {
        *out = v->i != 0;
        return true;
    }
    if (v != NULL && v->next == NULL && v->kind == N_INT && (v->i == 0 || v->i == 1)) {
        *out = v->i != 0;
        return true;
    }
    vcl_error(g->cs, f->tok, "field .%.*s needs true or false", (int)f->s.len, f->s.p);
    return false;
}

static void
probe_defaults(struct vcl_probe_decl *pr)
{
    memset(pr, 0, sizeof(*pr));
    pr->url = "/";
    pr->expected_response = 200;
    pr->timeout = 2;
    pr->interval = 5;
    pr->window = 8;
    pr->threshold = 3;
    pr->initial = ~0u;
}

static void
probe_fields(struct gen *g, struct vcl_node *fields, struct vcl_probe_decl *pr,
             const struct vcl_token *at)
{
    for (struct vcl_node *f = fields; f != NULL; f = f->next) {
        if (vcl_str_eq_cstr(f->s, "url")) {
            field_str(g, f, &pr->url);
        } else if (vcl_str_eq_cstr(f->s, "request")) {
            size_t len = 0;
            char *buf;

            for (struct vcl_node *v = f->a; v != NULL; v = v->next) {
                if (v->kind != N_STRING) {
                    vcl_error(g->cs, v->tok, ".request takes strings, one per request line");
                    return;
                }
                len += v->s.len + 2;
            }
            buf = vcl_pool_alloc(g->p->pool, len + 3);
            len = 0;
            for (struct vcl_node *v = f->a; v != NULL; v = v->next) {
                memcpy(buf + len, v->s.p, v->s.len);
                len += v->s.len;
                memcpy(buf + len, "\r\n", 2);
                len += 2;
            }
            memcpy(buf + len, "\r\n", 3);
            pr->request = buf;
            pr->url = NULL;
        } else if (vcl_str_eq_cstr(f->s, "expected_response")) {
            field_uint(g, f, &pr->expected_response);
        } else if (vcl_str_eq_cstr(f->s, "timeout")) {
            field_dur(g, f, &pr->timeout);
        } else if (vcl_str_eq_cstr(f->s, "interval")) {
            field_dur(g, f, &pr->interval);
        } else if (vcl_str_eq_cstr(f->s, "window")) {
            field_uint(g, f, &pr->window);
        } else if (vcl_str_eq_cstr(f->s, "threshold")) {
            field_uint(g, f, &pr->threshold);
        } else if (vcl_str_eq_cstr(f->s, "initial")) {
            field_uint(g, f, &pr->initial);
        } else {
            vcl_error(g->cs, f->tok, "unknown probe field '.%.*s'", (int)f->s.len, f->s.p);
        }
        ERRCHK(g->cs);
    }
    if (pr->window > 64 || pr->threshold > pr->window) {
        vcl_error(g->cs, at, "probe: .threshold must be <= .window <= 64");
        return;
    }
    if (pr->initial == ~0u)
        pr->initial = pr->threshold ? pr->threshold - 1 : 0;
}

/* .probe = name | { inline } */
static void
backend_probe(struct gen *g, struct vcl_backend_decl *b, struct vcl_node *f, bool *pused)
{
    struct vcl_symtab *st = g->st;
    struct vcl_program *p = g->p;

    if (f->paren) {
        struct vcl_probe_decl *pr = &p->probes[p->nprobes];
        char name[160];

        probe_defaults(pr);
        snprintf(name, sizeof(name), "%s.probe", b->name);
        pr->name = vcl_pool_strndup(p->pool, name, strlen(name));
        probe_fields(g, f->b, pr, f->tok);
        b->probe = (int)p->nprobes++;
        return;
    }
    if (f->a != NULL && f->a->kind == N_IDENT && f->a->next == NULL) {
        for (size_t k = 0; k < st->nprobes; k++) {
            if (st->probes[k].name.len == f->a->s.len &&
                memcmp(st->probes[k].name.p, f->a->s.p, f->a->s.len) == 0) {
                pused[k] = true;
                b->probe = (int)k;
                return;
            }
        }
        vcl_error(g->cs, f->a->tok, "unknown probe '%.*s'", (int)f->a->s.len, f->a->s.p);
        return;
    }
    vcl_error(g->cs, f->tok, "field .probe needs a probe name or { ... }");
}

/* Where tok is, with the file name copied into the program. */
static struct vcl_place
place_of(struct gen *g, const struct vcl_token *tok)
{
    struct vcl_place pl = { NULL, 0, 0 };
    const char *name;

    if (tok == NULL || tok->src >= g->cs->nsrcs)
        return pl;
    name = g->cs->srcs[tok->src].name;
    pl.file = vcl_pool_strndup(g->p->pool, name, strlen(name));
    pl.line = tok->line;
    pl.col = tok->col;
    return pl;
}

/* The place of a field's value (its first token), else of the field. */
static struct vcl_place
value_place(struct gen *g, const struct vcl_node *f)
{
    return place_of(g, f->a != NULL && f->a->tok != NULL ? f->a->tok : f->tok);
}

static void
gen_backend(struct gen *g, struct vcl_backend_decl *b, struct vcl_node *d, bool *pused)
{
    b->none = d->i != 0;
    b->connect_timeout = b->first_byte_timeout = b->between_bytes_timeout = -1;
    b->probe = -1;
    b->ssl_sni = b->ssl_verify_peer = b->ssl_verify_host = true;
    b->line = d->tok->line;
    b->at = place_of(g, d->tok);
    for (struct vcl_node *f = d->a; f != NULL; f = f->next) {
        if (vcl_str_eq_cstr(f->s, "host")) {
            field_str(g, f, &b->host);
            b->host_at = value_place(g, f);
        } else if (vcl_str_eq_cstr(f->s, "port")) {
            field_str(g, f, &b->port);
        } else if (vcl_str_eq_cstr(f->s, "path")) {
            field_str(g, f, &b->path);
            b->path_at = value_place(g, f);
        } else if (vcl_str_eq_cstr(f->s, "host_header")) {
            field_str(g, f, &b->host_header);
        } else if (vcl_str_eq_cstr(f->s, "connect_timeout")) {
            field_dur(g, f, &b->connect_timeout);
        } else if (vcl_str_eq_cstr(f->s, "first_byte_timeout")) {
            field_dur(g, f, &b->first_byte_timeout);
        } else if (vcl_str_eq_cstr(f->s, "between_bytes_timeout")) {
            field_dur(g, f, &b->between_bytes_timeout);
        } else if (vcl_str_eq_cstr(f->s, "max_connections")) {
            field_uint(g, f, &b->max_connections);
        } else if (vcl_str_eq_cstr(f->s, "ssl")) {
            field_bool(g, f, &b->ssl);
        } else if (vcl_str_eq_cstr(f->s, "ssl_sni")) {
            field_bool(g, f, &b->ssl_sni);
        } else if (vcl_str_eq_cstr(f->s, "ssl_verify_peer")) {
            field_bool(g, f, &b->ssl_verify_peer);
        } else if (vcl_str_eq_cstr(f->s, "ssl_verify_host")) {
            field_bool(g, f, &b->ssl_verify_host);
        } else if (vcl_str_eq_cstr(f->s, "ssl_ca_file")) {
            field_str(g, f, &b->ssl_ca_file);
            b->ssl_ca_file_at = value_place(g, f);
        } else if (vcl_str_eq_cstr(f->s, "probe")) {
            backend_probe(g, b, f, pused);
        } else {
            vcl_error(g->cs, f->tok, "unknown or unsupported backend field '.%.*s'", (int)f->s.len,
                      f->s.p);
            return;
        }
        ERRCHK(g->cs);
    }
    if (!b->none && b->host == NULL && b->path == NULL)
        vcl_error(g->cs, d->tok, "backend '%s' needs .host or .path", b->name);
    else if (b->host != NULL && b->path != NULL)
        vcl_error(g->cs, d->tok, "backend '%s' has both .host and .path", b->name);
}

static void
gen_probes_backends(struct gen *g)
{
    struct vcl_symtab *st = g->st;
    struct vcl_program *p = g->p;
    size_t ninline = 0;
    bool *pused;

    for (size_t i = 0; i < st->nbackends; i++)
        for (struct vcl_node *f = st->backends[i].decl->a; f != NULL; f = f->next)
            ninline += f->paren;
    p->probes = vcl_pool_alloc(p->pool, (st->nprobes + ninline + 1) * sizeof(*p->probes));
    pused = vcl_pool_alloc(g->cs->pool, st->nprobes + 1);
    for (size_t i = 0; i < st->nprobes; i++) {
        probe_defaults(&p->probes[i]);
        p->probes[i].name = pstr(g, st->probes[i].name);
        probe_fields(g, st->probes[i].decl->a, &p->probes[i], st->probes[i].decl->tok);
        ERRCHK(g->cs);
    }
    p->nprobes = st->nprobes;
    p->backends = vcl_pool_alloc(p->pool, (st->nbackends + 1) * sizeof(*p->backends));
    for (size_t i = 0; i < st->nbackends; i++) {
        p->backends[i].name = pstr(g, st->backends[i].name);
        gen_backend(g, &p->backends[i], st->backends[i].decl, pused);
        ERRCHK(g->cs);
    }
    p->nbackends = st->nbackends;
    for (size_t i = 0; i < st->nprobes; i++)
        if (!pused[i])
            vcl_warn(g->cs, st->probes[i].decl->tok, "probe '%s' is never used", p->probes[i].name);
}

static int
cmp_acl(const void *x, const void *y)
{
    const struct vcl_acl_entry *a = x, *b = y;

    if (a->bits != b->bits)
        return a->bits > b->bits ? -1 : 1;
    return 0;
}

static void
acl_add(struct gen *g, struct vcl_acl *acl, struct vcl_node *e, int family, const uint8_t *addr,
        int bits)
{
    struct vcl_acl_entry *x = &acl->e[acl->n++];
    int max = family == 4 ? 32 : 128;

    if (bits < 0)
        bits = max;
    if (bits > max) {
        vcl_error(g->cs, e->tok, "mask /%d is too long for '%.*s'", bits, (int)e->s.len, e->s.p);
        return;
    }
    x->family = (uint8_t)family;
    x->bits = (uint8_t)bits;
    x->neg = e->neg;
    memcpy(x->addr, addr, family == 4 ? 4 : 16);
    for (int i = bits; i < max; i++) /* clear host bits */
        x->addr[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
    x->text = pstr(g, (struct vcl_str){e->s.p, e->s.len});
}

static void
gen_acls(struct gen *g)
{
    struct vcl_symtab *st = g->st;
    struct vcl_program *p = g->p;

    p->acls = vcl_pool_alloc(p->pool, (st->nacls + 1) * sizeof(*p->acls));
    for (size_t i = 0; i < st->nacls; i++) {
        struct vcl_acl *acl = &p->acls[i];
        size_t n = 0;

        acl->name = pstr(g, st->acls[i].name);
        for (struct vcl_node *e = st->acls[i].decl->a; e != NULL; e = e->next)
            n += 2;
        acl->e = vcl_pool_alloc(p->pool, (n + 1) * sizeof(*acl->e));
        for (struct vcl_node *e = st->acls[i].decl->a; e != NULL; e = e->next) {
            char buf[64];
            uint8_t a[16];

            if (e->s.len >= sizeof(buf)) {
                vcl_error(g->cs, e->tok, "ACL entry too long");
                return;
            }
            memcpy(buf, e->s.p, e->s.len);
            buf[e->s.len] = '\0';
            if (inet_pton(AF_INET, buf, a) == 1) {
                acl_add(g, acl, e, 4, a, (int)e->i);
            } else if (inet_pton(AF_INET6, buf, a) == 1) {
                acl_add(g, acl, e, 6, a, (int)e->i);
            } else if (strcmp(buf, "localhost") == 0) {
                static const uint8_t lo4[4] = {127, 0, 0, 1};
                static const uint8_t lo6[16] = {[15] = 1};

                acl_add(g, acl, e, 4, lo4, e->i < 0 ? 32 : (int)e->i);
                if (!g->cs->err)
                    acl_add(g, acl, e, 6, lo6, e->i < 0 ? 128 : (int)e->i + 96);
            } else if (e->paren) {
                vcl_warn(g->cs, e->tok, "ACL entry (\"%s\") skipped: host names are not resolved",
                         buf);
            } else {
                vcl_error(g->cs, e->tok,
                          "ACL entry '%s' is not an IP address (host names are not resolved; "
                          "write (\"%s\") to skip it)",
                          buf, buf);
                return;
            }
            ERRCHK(g->cs);
        }
        qsort(acl->e, acl->n, sizeof(*acl->e), cmp_acl);
    }
    p->nacls = st->nacls;
}

static void
gen_directors(struct gen *g)
{
    struct vcl_symtab *st = g->st;
    struct vcl_program *p = g->p;
    size_t n = 0;

    g->dirmap = vcl_pool_alloc(g->cs->pool, (st->ndirs + 1) * sizeof(int));
    p->directors = vcl_pool_alloc(p->pool, (st->ndirs + 1) * sizeof(*p->directors));
    for (size_t i = 0; i < st->ndirs; i++) {
        g->dirmap[i] = st->dirs[i].stub ? -1 : (int)n;
        if (!st->dirs[i].stub)
            n++;
    }
    n = 0;
    for (size_t i = 0; i < st->ndirs; i++) {
        struct vcl_sym_dir *s = &st->dirs[i];
        struct vcl_director_decl *d;
        struct vcl_director_member *m;

        if (s->stub)
            continue;
        d = &p->directors[n++];
        d->name = pstr(g, s->name);
        d->type = s->type;
        d->sticky = s->sticky;
        d->n_members = s->n;
        m = vcl_pool_alloc(p->pool, (s->n + 1) * sizeof(*m));
        for (size_t k = 0; k < s->n; k++) {
            m[k] = s->members[k];
            m[k].ref = map_ref(g, m[k].ref);
        }
        d->members = m;
    }
    p->ndirectors = n;
}

void
vcl_codegen(struct vcl_compile *cs)
{
    struct gen g;
    struct vcl_program *p = cs->prog;
    struct vcl_symtab *st = cs->sym;

    VCL_CHECK_OBJ(cs, VCL_COMPILE_MAGIC);
    VCL_CHECK_OBJ(p, VCL_PROGRAM_MAGIC);
    memset(&g, 0, sizeof(g));
    g.cs = cs;
    g.p = p;
    g.st = st;
    gen_directors(&g);
    gen_probes_backends(&g);
    ERRCHK(cs);
    gen_acls(&g);
    ERRCHK(cs);

    emit(&g, OP_END, 0, 0, 0, NULL); /* pc 0: never a valid entry */
    p->subs = vcl_pool_alloc(p->pool, (st->nsubs + 1) * sizeof(*p->subs));
    for (size_t i = 0; i < st->nsubs; i++) {
        p->subs[i].name = pstr(&g, st->subs[i].name);
        p->subs[i].entry = (uint32_t)p->ncode;
        gen_stmts(&g, st->subs[i].decl->a);
        ERRCHK(cs);
        emit(&g, OP_RET, 0, 0, 0, st->subs[i].decl->tok);
    }
    p->nsubs = st->nsubs;
    for (unsigned m = 0; m < VCL_SUB__MAX; m++) {
        p->entry[m] = (uint32_t)p->ncode;
        p->defined[m] = st->user_defined[m];
        for (size_t b = 0; b < st->nbodies[m]; b++) {
            gen_stmts(&g, st->bodies[m][b]->a);
            ERRCHK(cs);
        }
        emit(&g, OP_END, 0, 0, 0, NULL);
    }
    for (size_t i = 0; i < p->ncode; i++)
        if (p->code[i].op == OP_CALL)
            p->code[i].c = p->subs[p->code[i].c].entry;
}
