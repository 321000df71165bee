/*
 * vcl_parse.c -- tokens to AST, following includes.
 *
 * Recursive descent over VCL 4.x.  Every function returns as soon as the
 * compile's sticky error is set (Varnish ERRCHK): the first error is the one
 * reported.  Nodes live in the compile pool and point at their first token
 * for messages.  Nesting is bounded so hostile input cannot exhaust the
 * C stack (the fuzzer feeds "((((((...").
 */
#include "vcl.h"
#include "vcl_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct parser {
    struct vcl_compile *cs;
    struct vcl_token *t; /* current token */
    unsigned idx;
    unsigned depth;
};

static struct vcl_node *expr(struct parser *ps);
static struct vcl_node *block(struct parser *ps);
static struct vcl_node *statement(struct parser *ps);
static struct vcl_node **include_stmts(struct parser *ps, struct vcl_node **tail);

static struct vcl_node *
node(struct parser *ps, enum vcl_node_kind k, const struct vcl_token *t)
{
    struct vcl_node *n = vcl_pool_alloc(ps->cs->pool, sizeof(*n));

    n->kind = k;
    n->tok = t;
    return n;
}

static bool
is_kind(const struct parser *ps, enum vcl_tok_kind k)
{
    return ps->t->kind == k;
}

static bool
is_word(const struct parser *ps, const char *w)
{
    return ps->t->kind == VCL_TOK_IDENT && vcl_str_eq_cstr(ps->t->s, w);
}

static void
next(struct parser *ps)
{
    if (ps->t->kind != VCL_TOK_EOF)
        ps->t++;
}

/* Expects token kind k; errors with "expected X, found Y". */
static bool
expect(struct parser *ps, enum vcl_tok_kind k)
{
    if (ps->t->kind == k) {
        next(ps);
        return true;
    }
    if (ps->t->kind == VCL_TOK_EOF)
        vcl_error(ps->cs, ps->t, "expected %s, found end of file", vcl_tok_desc(k));
    else
        vcl_error(ps->cs, ps->t, "expected %s, found '%.*s'", vcl_tok_desc(k),
                  (int)(ps->t->e - ps->t->b), ps->t->b);
    return false;
}

static void
unexpected(struct parser *ps, const char *what)
{
    if (ps->t->kind == VCL_TOK_EOF)
        vcl_error(ps->cs, ps->t, "expected %s, found end of file", what);
    else
        vcl_error(ps->cs, ps->t, "expected %s, found '%.*s'", what, (int)(ps->t->e - ps->t->b),
                  ps->t->b);
}

/* ---------------------------------------------------------- expressions */

/* ( [name =] expr {, [name =] expr} ) */
static struct vcl_node *
call_args(struct parser *ps)
{
    struct vcl_node *head = NULL, **tail = &head;

    if (!expect(ps, VCL_TOK_LPAREN))
        return NULL;
    if (is_kind(ps, VCL_TOK_RPAREN)) {
        next(ps);
        return NULL;
    }
    for (;;) {
        struct vcl_node *a = node(ps, N_ARG, ps->t);

        if (ps->t->kind == VCL_TOK_IDENT && ps->t[1].kind == VCL_TOK_ASSIGN) {
            a->s = ps->t->s;
            next(ps);
            next(ps);
        }
        a->a = expr(ps);
        ERRCHK_NULL(ps->cs);
        *tail = a;
        tail = &a->next;
        if (is_kind(ps, VCL_TOK_COMMA)) {
            next(ps);
            continue;
        }
        if (!expect(ps, VCL_TOK_RPAREN))
            return NULL;
        return head;
    }
}

static struct vcl_node *
primary(struct parser *ps)
{
    struct vcl_token *t = ps->t;
    struct vcl_node *n;

    switch (t->kind) {
    case VCL_TOK_LPAREN:
        next(ps);
        n = expr(ps);
        ERRCHK_NULL(ps->cs);
        if (!expect(ps, VCL_TOK_RPAREN))
            return NULL;
        return n;
    case VCL_TOK_STRING:
        n = node(ps, N_STRING, t);
        n->s = t->s;
        next(ps);
        return n;
    case VCL_TOK_INT:
        n = node(ps, N_INT, t);
        n->i = t->i;
        next(ps);
        return n;
    case VCL_TOK_REAL:
        n = node(ps, N_REAL, t);
        n->d = t->d;
        next(ps);
        return n;
    case VCL_TOK_DURATION:
        n = node(ps, N_DURATION, t);
        n->d = t->d;
        next(ps);
        return n;
    case VCL_TOK_BYTES:
        n = node(ps, N_BYTES, t);
        n->i = t->i;
        next(ps);
        return n;
    case VCL_TOK_IDENT:
        if (vcl_str_eq_cstr(t->s, "true") || vcl_str_eq_cstr(t->s, "false")) {
            n = node(ps, N_BOOL, t);
            n->i = t->s.len == 4;
            next(ps);
            return n;
        }
        next(ps);
        if (is_kind(ps, VCL_TOK_LPAREN)) {
            n = node(ps, N_CALL, t);
            n->s = t->s;
            n->a = call_args(ps);
            return n;
        }
        n = node(ps, N_IDENT, t);
        n->s = t->s;
        return n;
    default:
        unexpected(ps, "an expression");
        return NULL;
    }
}

static struct vcl_node *
unary(struct parser *ps)
{
    if (is_kind(ps, VCL_TOK_MINUS)) {
        struct vcl_node *n = node(ps, N_NEG, ps->t);

        next(ps);
        if (++ps->depth > MAX_DEPTH) {
            vcl_error(ps->cs, ps->t, "expression nested too deeply");
            return NULL;
        }
        n->a = unary(ps);
        ps->depth--;
        return n;
    }
    return primary(ps);
}

static struct vcl_node *
binop(struct parser *ps, enum vcl_tok_kind op, struct vcl_token *t, struct vcl_node *l,
      struct vcl_node *r)
{
    struct vcl_node *n = node(ps, N_BINOP, t);

    n->i = op;
    n->a = l;
    n->b = r;
    return n;
}

static struct vcl_node *
mul(struct parser *ps)
{
    struct vcl_node *l = unary(ps);

    while (!ps->cs->err && (is_kind(ps, VCL_TOK_STAR) || is_kind(ps, VCL_TOK_SLASH))) {
        struct vcl_token *t = ps->t;

        next(ps);
        l = binop(ps, t->kind, t, l, unary(ps));
    }
    return l;
}

static struct vcl_node *
add(struct parser *ps)
{
    struct vcl_node *l = mul(ps);

    while (!ps->cs->err && (is_kind(ps, VCL_TOK_PLUS) || is_kind(ps, VCL_TOK_MINUS))) {
        struct vcl_token *t = ps->t;

        next(ps);
        l = binop(ps, t->kind, t, l, mul(ps));
    }
    return l;
}

static struct vcl_node *
cmp(struct parser *ps)
{
    struct vcl_node *l = add(ps);
    struct vcl_token *t = ps->t;

    ERRCHK_NULL(ps->cs);
    switch (t->kind) {
    case VCL_TOK_EQ:
    case VCL_TOK_NE:
    case VCL_TOK_LT:
    case VCL_TOK_GT:
    case VCL_TOK_LE:
    case VCL_TOK_GE:
    case VCL_TOK_MATCH:
    case VCL_TOK_NOMATCH:
        next(ps);
        return binop(ps, t->kind, t, l, add(ps));
    default:
        return l;
    }
}

static struct vcl_node *
not_expr(struct parser *ps)
{
    if (is_kind(ps, VCL_TOK_NOT)) {
        struct vcl_node *n = node(ps, N_NOT, ps->t);

        next(ps);
        if (++ps->depth > MAX_DEPTH) {
            vcl_error(ps->cs, ps->t, "expression nested too deeply");
            return NULL;
        }
        n->a = not_expr(ps);
        ps->depth--;
        return n;
    }
    return cmp(ps);
}

static struct vcl_node *
and_expr(struct parser *ps)
{
    struct vcl_node *l = not_expr(ps);

    while (!ps->cs->err && is_kind(ps, VCL_TOK_AND)) {
        struct vcl_token *t = ps->t;

        next(ps);
        l = binop(ps, VCL_TOK_AND, t, l, not_expr(ps));
    }
    return l;
}

static struct vcl_node *
expr(struct parser *ps)
{
    struct vcl_node *l;

    if (++ps->depth > MAX_DEPTH) {
        vcl_error(ps->cs, ps->t, "expression nested too deeply");
        return NULL;
    }
    l = and_expr(ps);
    while (!ps->cs->err && is_kind(ps, VCL_TOK_OR)) {
        struct vcl_token *t = ps->t;

        next(ps);
        l = binop(ps, VCL_TOK_OR, t, l, and_expr(ps));
    }
    ps->depth--;
    return ps->cs->err ? NULL : l;
}

/* ----------------------------------------------------------- statements */

static struct vcl_node *
target(struct parser *ps)
{
    struct vcl_node *n;

    if (!is_kind(ps, VCL_TOK_IDENT)) {
        unexpected(ps, "a variable");
        return NULL;
    }
    n = node(ps, N_IDENT, ps->t);
    n->s = ps->t->s;
    next(ps);
    return n;
}

static struct vcl_node *
if_stmt(struct parser *ps)
{
    struct vcl_node *n = node(ps, N_IF, ps->t);

    next(ps); /* if / elseif / elsif / else if */
    if (!expect(ps, VCL_TOK_LPAREN))
        return NULL;
    n->a = expr(ps);
    ERRCHK_NULL(ps->cs);
    if (!expect(ps, VCL_TOK_RPAREN))
        return NULL;
    n->b = block(ps);
    ERRCHK_NULL(ps->cs);
    if (is_word(ps, "elseif") || is_word(ps, "elsif") ||
        (is_word(ps, "else") && ps->t[1].kind == VCL_TOK_IDENT &&
         vcl_str_eq_cstr(ps->t[1].s, "if"))) {
        if (is_word(ps, "else"))
            next(ps);
        if (++ps->depth > MAX_DEPTH) {
            vcl_error(ps->cs, ps->t, "too many elseif branches");
            return NULL;
        }
        n->c = if_stmt(ps);
        ps->depth--;
    } else if (is_word(ps, "else")) {
        next(ps);
        n->c = block(ps);
    }
    return n;
}

static struct vcl_node *
statement(struct parser *ps)
{
    struct vcl_token *t = ps->t;
    struct vcl_node *n;

    if (t->kind != VCL_TOK_IDENT) {
        unexpected(ps, "a statement");
        return NULL;
    }
    if (is_word(ps, "set")) {
        n = node(ps, N_SET, t);
        next(ps);
        n->a = target(ps);
        ERRCHK_NULL(ps->cs);
        if (is_kind(ps, VCL_TOK_ASSIGN) || is_kind(ps, VCL_TOK_PLUSEQ) ||
            is_kind(ps, VCL_TOK_MINUSEQ)) {
            n->i = ps->t->kind;
            next(ps);
        } else {
            unexpected(ps, "'='");
            return NULL;
        }
        n->b = expr(ps);
    } else if (is_word(ps, "unset") || is_word(ps, "remove")) {
        n = node(ps, N_UNSET, t);
        next(ps);
        n->a = target(ps);
    } else if (is_word(ps, "if")) {
        return if_stmt(ps);
    } else if (is_word(ps, "call")) {
        n = node(ps, N_CALLSUB, t);
        next(ps);
        if (!is_kind(ps, VCL_TOK_IDENT)) {
            unexpected(ps, "a sub name");
            return NULL;
        }
        n->tok = ps->t;
        n->s = ps->t->s;
        next(ps);
    } else if (is_word(ps, "return")) {
        n = node(ps, N_RETURN, t);
        next(ps);
        if (!expect(ps, VCL_TOK_LPAREN))
            return NULL;
        if (!is_kind(ps, VCL_TOK_IDENT)) {
            unexpected(ps, "an action");
            return NULL;
        }
        n->tok = ps->t;
        n->s = ps->t->s;
        next(ps);
        if (is_kind(ps, VCL_TOK_LPAREN))
            n->a = call_args(ps);
        ERRCHK_NULL(ps->cs);
        if (!expect(ps, VCL_TOK_RPAREN))
            return NULL;
    } else if (is_word(ps, "new")) {
        n = node(ps, N_NEW, t);
        next(ps);
        if (!is_kind(ps, VCL_TOK_IDENT)) {
            unexpected(ps, "an object name");
            return NULL;
        }
        n->tok = ps->t;
        n->s = ps->t->s;
        next(ps);
        if (!expect(ps, VCL_TOK_ASSIGN))
            return NULL;
        if (!is_kind(ps, VCL_TOK_IDENT) || ps->t[1].kind != VCL_TOK_LPAREN) {
            unexpected(ps, "a constructor call such as directors.round_robin()");
            return NULL;
        }
        n->a = primary(ps);
    } else if (is_word(ps, "synth") || is_word(ps, "error")) {
        vcl_error(ps->cs, t, "'%.*s' is VCL 3 syntax; use return (synth(status, reason))",
                  (int)t->s.len, t->s.p);
        return NULL;
    } else if (is_word(ps, "esi")) {
        vcl_error(ps->cs, t, "'esi' is VCL 3 syntax and ESI is not supported yet");
        return NULL;
    } else if (t[1].kind == VCL_TOK_LPAREN) {
        n = node(ps, N_EXPR, t);
        n->a = primary(ps);
    } else {
        vcl_error(ps->cs, t, "unknown statement '%.*s'", (int)t->s.len, t->s.p);
        return NULL;
    }
    ERRCHK_NULL(ps->cs);
    if (!expect(ps, VCL_TOK_SEMI))
        return NULL;
    return n;
}

/* { statement* } */
static struct vcl_node *
block(struct parser *ps)
{
    struct vcl_node *head = NULL, **tail = &head;

    if (!expect(ps, VCL_TOK_LBRACE))
        return NULL;
    if (++ps->depth > MAX_DEPTH) {
        vcl_error(ps->cs, ps->t, "statements nested too deeply");
        return NULL;
    }
    while (!is_kind(ps, VCL_TOK_RBRACE)) {
        struct vcl_node *s;

        if (is_kind(ps, VCL_TOK_EOF)) {
            unexpected(ps, "'}'");
            return NULL;
        }
        if (is_kind(ps, VCL_TOK_SEMI)) { /* stray ';' is harmless in VCL */
            next(ps);
            continue;
        }
        if (is_word(ps, "include")) {
            next(ps);
            tail = include_stmts(ps, tail);
            ERRCHK_NULL(ps->cs);
            continue;
        }
        s = statement(ps);
        ERRCHK_NULL(ps->cs);
        *tail = s;
        tail = &s->next;
    }
    next(ps);
    ps->depth--;
    /* an empty body still needs a node so "defined" is visible */
    return head;
}

/* -------------------------------------------------------- declarations */

static void
append_decl(struct parser *ps, struct vcl_node *d)
{
    *ps->cs->decls_tail = d;
    ps->cs->decls_tail = &d->next;
}

/* .name = value; ... } for backends and probes */
static struct vcl_node *
fields(struct parser *ps)
{
    struct vcl_node *head = NULL, **tail = &head;

    if (!expect(ps, VCL_TOK_LBRACE))
        return NULL;
    while (!is_kind(ps, VCL_TOK_RBRACE)) {
        struct vcl_node *f;

        if (!is_kind(ps, VCL_TOK_DOT)) {
            unexpected(ps, "a field such as '.host'");
            return NULL;
        }
        next(ps);
        if (!is_kind(ps, VCL_TOK_IDENT)) {
            unexpected(ps, "a field name");
            return NULL;
        }
        f = node(ps, N_FIELD, ps->t);
        f->s = ps->t->s;
        next(ps);
        if (!expect(ps, VCL_TOK_ASSIGN))
            return NULL;
        if (is_kind(ps, VCL_TOK_LBRACE)) {
            f->b = fields(ps); /* inline probe */
            ERRCHK_NULL(ps->cs);
            f->paren = true;
            if (is_kind(ps, VCL_TOK_SEMI))
                next(ps);
        } else {
            /* one value, or several juxtaposed strings (.request) */
            struct vcl_node **vt = &f->a;

            do {
                *vt = unary(ps);
                ERRCHK_NULL(ps->cs);
                vt = &(*vt)->next;
            } while (is_kind(ps, VCL_TOK_STRING));
            if (!expect(ps, VCL_TOK_SEMI))
                return NULL;
        }
        *tail = f;
        tail = &f->next;
    }
    next(ps);
    return head;
}

static void
acl_decl(struct parser *ps, struct vcl_node *d)
{
    struct vcl_node **tail = &d->a;

    if (!expect(ps, VCL_TOK_LBRACE))
        return;
    while (!is_kind(ps, VCL_TOK_RBRACE)) {
        struct vcl_node *e = node(ps, N_ACLENTRY, ps->t);

        e->i = -1;
        if (is_kind(ps, VCL_TOK_NOT)) {
            e->neg = true;
            next(ps);
        }
        if (is_kind(ps, VCL_TOK_LPAREN)) {
            e->paren = true;
            next(ps);
        }
        if (!is_kind(ps, VCL_TOK_STRING)) {
            unexpected(ps, "an address in quotes");
            return;
        }
        e->tok = ps->t;
        e->s = ps->t->s;
        next(ps);
        if (e->paren && !expect(ps, VCL_TOK_RPAREN))
            return;
        if (is_kind(ps, VCL_TOK_SLASH)) {
            next(ps);
            if (!is_kind(ps, VCL_TOK_INT)) {
                unexpected(ps, "a mask length");
                return;
            }
            e->i = ps->t->i;
            next(ps);
        }
        if (!expect(ps, VCL_TOK_SEMI))
            return;
        *tail = e;
        tail = &e->next;
    }
    next(ps);
}

/* Resolves path against the directory of the including file. */
static char *
include_path(struct parser *ps, struct vcl_str rel)
{
    const char *from = ps->cs->srcs[ps->idx].name;
    const char *slash = strrchr(from, '/');
    size_t dlen;
    char *p;

    if ((rel.len > 0 && rel.p[0] == '/') || slash == NULL)
        return vcl_pool_strndup(ps->cs->pool, rel.p, rel.len);
    dlen = (size_t)(slash - from) + 1;
    p = vcl_pool_alloc(ps->cs->pool, dlen + rel.len + 1);
    memcpy(p, from, dlen);
    memcpy(p + dlen, rel.p, rel.len);
    return p;
}

/* include "file";  Checks for cycles and depth, reads and registers the
 * file, and consumes the directive.  Returns the new source's index, or -1
 * (error set). */
static int
include_open(struct parser *ps)
{
    struct vcl_compile *cs = ps->cs;
    char *path, *text = NULL;
    size_t len = 0;
    unsigned idx;
    int rc;

    if (!is_kind(ps, VCL_TOK_STRING)) {
        unexpected(ps, "a file name in quotes");
        return -1;
    }
    path = include_path(ps, ps->t->s);
    for (unsigned i = 0; i < cs->include_depth; i++) {
        if (strcmp(cs->srcs[cs->include_stack[i]].name, path) == 0) {
            vcl_error(cs, ps->t, "include cycle: \"%s\" includes itself", path);
            return -1;
        }
    }
    if (cs->include_depth >= VCL_ARRAY_LEN(cs->include_stack) - 1) {
        vcl_error(cs, ps->t, "includes nested too deeply (limit %zu)",
                  VCL_ARRAY_LEN(cs->include_stack) - 1);
        return -1;
    }
    rc = vcl_read_file(cs, path, &text, &len);
    if (rc != 0) {
        vcl_error(cs, ps->t, "cannot read included file \"%s\": %s", path,
                  rc == VCL_EIO ? "no such file or not readable" : vcl_strerror(rc));
        return -1;
    }
    next(ps);
    if (!expect(ps, VCL_TOK_SEMI)) {
        free(text);
        return -1;
    }
    idx = vcl_source_add(cs, path, text, len);
    free(text);
    return (int)idx;
}

/* include at the top level: the file's declarations, in place. */
static void
include_decl(struct parser *ps)
{
    int idx = include_open(ps);

    if (idx >= 0)
        vcl_parse(ps->cs, (unsigned)idx, false);
}

/* include inside a sub body: the file's statements, in place (Varnish
 * splices includes at the token level; fragments of statements are used
 * this way).  Returns the new tail of the statement list. */
static struct vcl_node **
include_stmts(struct parser *ps, struct vcl_node **tail)
{
    struct vcl_compile *cs = ps->cs;
    struct parser sub;
    int idx = include_open(ps);

    if (idx < 0)
        return tail;
    vcl_lex(cs, (unsigned)idx);
    if (cs->err)
        return tail;
    memset(&sub, 0, sizeof(sub));
    sub.cs = cs;
    sub.idx = (unsigned)idx;
    sub.t = cs->srcs[idx].toks;
    sub.depth = ps->depth;
    cs->include_stack[cs->include_depth++] = (unsigned)idx;
    while (!cs->err && !is_kind(&sub, VCL_TOK_EOF)) {
        struct vcl_node *st;

        if (is_kind(&sub, VCL_TOK_SEMI)) {
            next(&sub);
            continue;
        }
        if (is_word(&sub, "include")) {
            next(&sub);
            tail = include_stmts(&sub, tail);
            continue;
        }
        st = statement(&sub);
        if (st == NULL)
            break;
        *tail = st;
        tail = &st->next;
    }
    cs->include_depth--;
    return tail;
}

static void
decl(struct parser *ps)
{
    struct vcl_token *t = ps->t;
    struct vcl_node *d;

    if (is_word(ps, "vcl")) {
        vcl_error(ps->cs, t, "'vcl' version must be the first declaration");
        return;
    }
    if (is_word(ps, "include")) {
        next(ps);
        include_decl(ps);
        return;
    }
    if (is_word(ps, "import")) {
        next(ps);
        if (!is_kind(ps, VCL_TOK_IDENT)) {
            unexpected(ps, "a vmod name");
            return;
        }
        d = node(ps, N_IMPORT, ps->t);
        d->s = ps->t->s;
        next(ps);
        if (is_word(ps, "from")) {
            next(ps);
            if (!expect(ps, VCL_TOK_STRING))
                return;
        }
        if (!expect(ps, VCL_TOK_SEMI))
            return;
        append_decl(ps, d);
        return;
    }
    if (is_word(ps, "backend") || is_word(ps, "probe") || is_word(ps, "acl") ||
        is_word(ps, "sub")) {
        enum vcl_node_kind k = is_word(ps, "backend") ? N_BACKENDDECL
                               : is_word(ps, "probe") ? N_PROBEDECL
                               : is_word(ps, "acl")   ? N_ACLDECL
                                                      : N_SUB;
        next(ps);
        if (!is_kind(ps, VCL_TOK_IDENT)) {
            unexpected(ps, "a name");
            return;
        }
        d = node(ps, k, ps->t);
        d->s = ps->t->s;
        next(ps);
        switch (k) {
        case N_BACKENDDECL:
            if (is_word(ps, "none")) {
                next(ps);
                d->i = 1;
                expect(ps, VCL_TOK_SEMI);
            } else {
                d->a = fields(ps);
            }
            break;
        case N_PROBEDECL:
            d->a = fields(ps);
            break;
        case N_ACLDECL:
            /* acl flags (acl x +log -pedantic) are accepted and ignored */
            while (is_kind(ps, VCL_TOK_PLUS) || is_kind(ps, VCL_TOK_MINUS)) {
                next(ps);
                if (!expect(ps, VCL_TOK_IDENT))
                    return;
            }
            acl_decl(ps, d);
            break;
        default:
            if (!is_kind(ps, VCL_TOK_LBRACE)) {
                unexpected(ps, "'{'");
                return;
            }
            d->a = block(ps);
            break;
        }
        ERRCHK(ps->cs);
        append_decl(ps, d);
        return;
    }
    if (is_word(ps, "director")) {
        vcl_error(ps->cs, t,
                  "'director' declarations are VCL 3; use 'import directors;' and "
                  "'new x = directors.round_robin();' in vcl_init");
        return;
    }
    if (is_word(ps, "return")) {
        vcl_error(ps->cs, t, "'return' outside a sub");
        return;
    }
    if (t->kind == VCL_TOK_IDENT)
        vcl_error(ps->cs, t,
                  "unknown declaration '%.*s' (expected backend, probe, acl, sub, "
                  "import or include)",
                  (int)t->s.len, t->s.p);
    else
        unexpected(ps, "a declaration");
}

void
vcl_parse(struct vcl_compile *cs, unsigned idx, bool is_main)
{
    struct parser ps;

    VCL_CHECK_OBJ(cs, VCL_COMPILE_MAGIC);
    vcl_lex(cs, idx);
    ERRCHK(cs);
    memset(&ps, 0, sizeof(ps));
    ps.cs = cs;
    ps.idx = idx;
    ps.t = cs->srcs[idx].toks;
    cs->include_stack[cs->include_depth++] = idx;

    if (is_word(&ps, "vcl")) {
        struct vcl_node *d = node(&ps, N_VCL, ps.t);

        next(&ps);
        if (!is_kind(&ps, VCL_TOK_REAL) ||
            !(vcl_str_eq_cstr((struct vcl_str){ps.t->b, (size_t)(ps.t->e - ps.t->b)}, "4.0") ||
              vcl_str_eq_cstr((struct vcl_str){ps.t->b, (size_t)(ps.t->e - ps.t->b)}, "4.1"))) {
            vcl_error(cs, ps.t, "unsupported VCL version '%.*s' (vcl-lite reads 4.0 and 4.1)",
                      (int)(ps.t->e - ps.t->b), ps.t->b);
            goto out;
        }
        d->s = (struct vcl_str){ps.t->b, (size_t)(ps.t->e - ps.t->b)};
        next(&ps);
        if (!expect(&ps, VCL_TOK_SEMI))
            goto out;
        append_decl(&ps, d);
    } else if (is_main) {
        vcl_error(cs, ps.t, "the policy must start with 'vcl 4.0;' or 'vcl 4.1;'");
        goto out;
    }
    while (!cs->err && !is_kind(&ps, VCL_TOK_EOF))
        decl(&ps);
out:
    cs->include_depth--;
}
