/*
 * vcl_check.c -- symbols, types, permissions and return actions.
 *
 * Works in four steps over the parsed declarations:
 *   1. collect declarations (backends, probes, ACLs, subs, imports) and
 *      reject duplicates;
 *   2. read vcl_init's director set-up (`new` and `.add_backend()`), which
 *      is interpreted here, at compile time, so the daemon gets a static
 *      description of each director;
 *   3. walk the call graph from every built-in sub, so each custom sub knows
 *      which built-in subs reach it (its permissions are the intersection)
 *      and recursion is caught;
 *   4. type-check every body against its subs' permissions, resolving names
 *      and inserting explicit conversions, so codegen is a plain walk.
 */
#include "vcl.h"
#include "vcl_int.h"

#include <stdlib.h>
#include <string.h>

struct cx {
    struct vcl_compile *cs;
    struct vcl_symtab *st;
    unsigned mask;      /* built-in subs this body runs in */
    const char *custom; /* name of the custom sub being checked, or NULL */
    bool in_init;       /* body of vcl_init (director set-up allowed) */
};

static void check_stmts(struct cx *cx, struct vcl_node *list, bool top);
static void check_expr(struct cx *cx, struct vcl_node *n);
static void coerce(struct cx *cx, struct vcl_node **np, enum vcl_type want, const char *what);

static struct vcl_node *
mknode(struct cx *cx, enum vcl_node_kind k, const struct vcl_token *t, enum vcl_type type)
{
    struct vcl_node *n = vcl_pool_alloc(cx->cs->pool, sizeof(*n));

    n->kind = k;
    n->tok = t;
    n->type = type;
    return n;
}

/* The first built-in sub in mask outside allowed, for messages. */
static const char *
offending_sub(unsigned mask, unsigned allowed)
{
    unsigned bad = mask & ~allowed;

    for (unsigned i = 0; i < VCL_SUB__MAX; i++)
        if (bad & (1u << i))
            return vcl_sub_name((enum vcl_sub)i);
    return "?";
}

static void
perm_error(struct cx *cx, const struct vcl_token *t, const char *name, const char *what,
           unsigned allowed)
{
    const char *sub = offending_sub(cx->mask, allowed);

    if (cx->custom != NULL)
        vcl_error(cx->cs, t, "%s is not %s in %s (sub '%s' is called from %s)", name, what, sub,
                  cx->custom, sub);
    else
        vcl_error(cx->cs, t, "%s is not %s in %s", name, what, sub);
}

/* ------------------------------------------------------------- lookups */

static struct vcl_sym *
find_sym(struct vcl_sym *tab, size_t n, struct vcl_str name)
{
    for (size_t i = 0; i < n; i++)
        if (tab[i].name.len == name.len && memcmp(tab[i].name.p, name.p, name.len) == 0)
            return &tab[i];
    return NULL;
}

static struct vcl_sym_sub *
find_sub(struct vcl_symtab *st, struct vcl_str name)
{
    for (size_t i = 0; i < st->nsubs; i++)
        if (st->subs[i].name.len == name.len && memcmp(st->subs[i].name.p, name.p, name.len) == 0)
            return &st->subs[i];
    return NULL;
}

static int
find_dir(struct vcl_symtab *st, struct vcl_str name)
{
    for (size_t i = 0; i < st->ndirs; i++)
        if (st->dirs[i].name.len == name.len && memcmp(st->dirs[i].name.p, name.p, name.len) == 0)
            return (int)i;
    return -1;
}

static int
method_of(struct vcl_str name)
{
    for (unsigned i = 0; i < VCL_SUB__MAX; i++)
        if (vcl_str_eq_cstr(name, vcl_sub_name((enum vcl_sub)i)))
            return (int)i;
    return -1;
}

static bool
imported(struct vcl_symtab *st, struct vcl_str vmod)
{
    for (size_t i = 0; i < st->nimports; i++)
        if (st->imports[i].len == vmod.len && memcmp(st->imports[i].p, vmod.p, vmod.len) == 0)
            return true;
    return false;
}

/* The closest known variable or function name, for "did you mean", in buf
 * (NULL when nothing is close).  A misspelt header prefix (req.htp.Host)
 * suggests the header. */
static const char *
suggest(struct vcl_str name, bool funcs, char *buf, size_t len)
{
    const char *best = NULL;
    unsigned bestd = 3;
    unsigned lim = name.len < 6 ? 2 : 3;

    for (unsigned i = 0; i < (funcs ? (unsigned)VCL_FN__MAX : (unsigned)VCL_VAR__MAX); i++) {
        const char *cand = funcs ? vcl_funcs[i].name : vcl_vars[i].name;
        unsigned d = vcl_edit_distance(name.p, name.len, cand, strlen(cand));

        if (d < bestd && d <= lim) {
            bestd = d;
            best = cand;
        }
    }
    if (best != NULL || funcs)
        return best;
    for (unsigned w = 0; w < VCL_WHERE__MAX; w++) {
        char pre[32];
        size_t pl = (size_t)snprintf(pre, sizeof(pre), "%s.http.", vcl_wheres[w].name);
        const char *dot;

        /* compare the prefix up to the second dot: "req.htp." vs "req.http." */
        dot = name.len > strlen(vcl_wheres[w].name) + 1
                  ? memchr(name.p + strlen(vcl_wheres[w].name) + 1, '.',
                           name.len - strlen(vcl_wheres[w].name) - 1)
                  : NULL;
        if (dot == NULL || dot + 1 >= name.p + name.len)
            continue;
        if (vcl_edit_distance(name.p, (size_t)(dot - name.p) + 1, pre, pl) == 1) {
            snprintf(buf, len, "%s%.*s", pre, (int)(name.p + name.len - dot - 1), dot + 1);
            return buf;
        }
    }
    return NULL;
}

/* Names we know but do not (yet) implement: named explicitly, never ignored. */
static bool
unsupported_name(struct cx *cx, const struct vcl_token *t, struct vcl_str name)
{
    static const struct {
        const char *name;
        const char *why;
    } tab[] = {
        {"beresp.do_esi", "beresp.do_esi is not supported yet: accel has no ESI processing"},
        {"req.esi", "req.esi is not supported yet: accel has no ESI processing"},
        {"resp.do_esi", "resp.do_esi is not supported yet: accel has no ESI processing"},
        {"req.backend", "req.backend is VCL 3; use req.backend_hint"},
        {"beresp.backend", "beresp.backend is not supported; use beresp.backend.name"},
        {"obj.lastuse", "obj.lastuse is VCL 3 and not supported"},
        {"req.body", "req.body is not supported; use std.cache_req_body()"},
        {"bereq.body", "bereq.body is not supported"},
        {"req.storage", "req.storage is not supported"},
        {"beresp.storage", "beresp.storage is not supported; beresp.storage_hint is accepted"},
        {"beresp.filters", "beresp.filters is not supported"},
        {"resp.filters", "resp.filters is not supported"},
        {"req.hash", "req.hash is not supported"},
        {"req.top.url", "req.top.* is not supported (no ESI)"},
        {"bereq.hash", "bereq.hash is not supported"},
    };

    for (size_t i = 0; i < VCL_ARRAY_LEN(tab); i++) {
        if (vcl_str_eq_cstr(name, tab[i].name)) {
            vcl_error(cx->cs, t, "%s", tab[i].why);
            return true;
        }
    }
    return false;
}

/* Resolves an identifier used as a value or as a set/unset target.  On
 * success rewrites *n to N_VAR, N_HEADER, N_BACKEND or N_ACLREF.  Does not
 * check permissions (callers do, knowing whether it is read or write). */
static void
resolve(struct cx *cx, struct vcl_node *n)
{
    struct vcl_str name = n->s;
    struct vcl_sym *sym;
    const char *dym;
    char sbuf[128];
    int d;

    VCL_ASSERT(n->kind == N_IDENT);
    for (unsigned w = 0; w < VCL_WHERE__MAX; w++) {
        size_t wl = strlen(vcl_wheres[w].name);

        if (name.len > wl + 6 && memcmp(name.p, vcl_wheres[w].name, wl) == 0 &&
            memcmp(name.p + wl, ".http.", 6) == 0) {
            n->kind = N_HEADER;
            n->i = w;
            n->s.p = name.p + wl + 6;
            n->s.len = name.len - wl - 6;
            n->type = VCL_T_STRING;
            return;
        }
    }
    for (unsigned v = 0; v < VCL_VAR__MAX; v++) {
        if (vcl_str_eq_cstr(name, vcl_vars[v].name)) {
            n->kind = N_VAR;
            n->i = v;
            n->type = vcl_vars[v].type;
            return;
        }
    }
    if ((sym = find_sym(cx->st->backends, cx->st->nbackends, name)) != NULL) {
        sym->used = true;
        n->kind = N_BACKEND;
        n->type = VCL_T_BACKEND;
        n->val.type = VCL_T_BACKEND;
        n->val.u.ref.kind = sym->decl->i ? VCL_REF_NONE : VCL_REF_BACKEND;
        n->val.u.ref.idx = (unsigned)(sym - cx->st->backends);
        return;
    }
    if ((d = find_dir(cx->st, name)) >= 0) {
        if (cx->st->dirs[d].stub) {
            n->kind = N_STUB;
            n->type = VCL_T_STUB;
            return;
        }
        n->kind = N_BACKEND;
        n->type = VCL_T_BACKEND;
        n->val.type = VCL_T_BACKEND;
        n->val.u.ref.kind = VCL_REF_DIRECTOR;
        n->val.u.ref.idx = (unsigned)d;
        return;
    }
    if ((sym = find_sym(cx->st->acls, cx->st->nacls, name)) != NULL) {
        sym->used = true;
        n->kind = N_ACLREF;
        n->type = VCL_T_ACL;
        n->i = sym - cx->st->acls;
        return;
    }
    if (unsupported_name(cx, n->tok, name))
        return;
    if (vcl_str_eq_cstr(name, "req.http") || vcl_str_eq_cstr(name, "resp.http") ||
        vcl_str_eq_cstr(name, "beresp.http") || vcl_str_eq_cstr(name, "bereq.http") ||
        vcl_str_eq_cstr(name, "obj.http")) {
        vcl_error(cx->cs, n->tok, "'%.*s' needs a header name, as in %.*s.Host", (int)name.len,
                  name.p, (int)name.len, name.p);
        return;
    }
    dym = suggest(name, false, sbuf, sizeof(sbuf));
    if (dym != NULL)
        vcl_error(cx->cs, n->tok, "unknown variable '%.*s' (did you mean '%s'?)", (int)name.len,
                  name.p, dym);
    else
        vcl_error(cx->cs, n->tok, "unknown variable '%.*s'", (int)name.len, name.p);
}

static void
check_read(struct cx *cx, struct vcl_node *n)
{
    if (n->kind == N_VAR) {
        const struct vcl_var_info *vi = &vcl_vars[n->i];

        if (cx->mask & ~vi->rd)
            perm_error(cx, n->tok, vi->name, "readable", vi->rd);
    } else if (n->kind == N_HEADER) {
        const struct vcl_where_info *wi = &vcl_wheres[n->i];

        if (cx->mask & ~wi->rd) {
            char buf[16];

            snprintf(buf, sizeof(buf), "%s.http", wi->name);
            perm_error(cx, n->tok, buf, "readable", wi->rd);
        }
    }
}

/* ---------------------------------------------------------- conversion */

static void
wrap_conv(struct cx *cx, struct vcl_node **np, enum vcl_type want)
{
    struct vcl_node *c = mknode(cx, N_CONV, (*np)->tok, want);

    c->a = *np;
    *np = c;
}

/* Makes *np an expression of type want, inserting the implicit conversions
 * VCL has (anything to STRING, INT to REAL, STRING/BACKEND to BOOL, a string
 * literal to IP), or reports "what: expected X, found Y". */
static void
coerce(struct cx *cx, struct vcl_node **np, enum vcl_type want, const char *what)
{
    struct vcl_node *n = *np;
    enum vcl_type have;

    ERRCHK(cx->cs);
    have = n->type;
    if (have == want)
        return;
    if (have == VCL_T_STUB) {
        n->kind = N_STUB;
        n->type = want;
        return;
    }
    switch (want) {
    case VCL_T_STRING:
        switch (have) {
        case VCL_T_BOOL:
        case VCL_T_INT:
        case VCL_T_REAL:
        case VCL_T_DURATION:
        case VCL_T_BYTES:
        case VCL_T_IP:
        case VCL_T_TIME:
        case VCL_T_BACKEND:
            wrap_conv(cx, np, want);
            return;
        default:
            break;
        }
        break;
    case VCL_T_REAL:
        if (have == VCL_T_INT) {
            if (n->kind == N_INT) {
                n->kind = N_REAL;
                n->d = (double)n->i;
                n->type = VCL_T_REAL;
            } else {
                wrap_conv(cx, np, want);
            }
            return;
        }
        break;
    case VCL_T_BOOL:
        /* as VCC's tobool: INT != 0, DURATION > 0 (`if (obj.hits)`) */
        if (have == VCL_T_STRING || have == VCL_T_BACKEND || have == VCL_T_INT ||
            have == VCL_T_DURATION) {
            wrap_conv(cx, np, want);
            return;
        }
        break;
    case VCL_T_IP:
        if (n->kind == N_STRING) {
            n->kind = N_CONST;
            n->type = VCL_T_IP;
            n->val.type = VCL_T_IP;
            if (!vcl_parse_ip(n->s.p, n->s.len, &n->val.u.ip))
                vcl_error(cx->cs, n->tok, "'%.*s' is not an IP address", (int)n->s.len, n->s.p);
            return;
        }
        break;
    default:
        break;
    }
    if (have == VCL_T_ACL)
        vcl_error(cx->cs, n->tok, "ACL '%.*s' can only be used as 'ip ~ %.*s'", (int)n->s.len,
                  n->s.p, (int)n->s.len, n->s.p);
    else if (have == VCL_T_VOID)
        vcl_error(cx->cs, n->tok, "%s: expected %s, but this returns nothing", what,
                  vcl_type_name(want));
    else if (want == VCL_T_DURATION && have == VCL_T_INT)
        vcl_error(cx->cs, n->tok, "%s: expected DURATION, found INT (write a unit, as in 120s)",
                  what);
    else
        vcl_error(cx->cs, n->tok, "%s: expected %s, found %s", what, vcl_type_name(want),
                  vcl_type_name(have));
}

/* --------------------------------------------------------- expressions */

enum callee { CALLEE_ERROR, CALLEE_FUNC, CALLEE_STUB };

/* Finds the function a call names: a built-in, a vmod function, a director
 * method, or (migration mode) a stub.  Sets *id for CALLEE_FUNC. */
static enum callee
find_callee(struct cx *cx, struct vcl_node *n, int *id)
{
    struct vcl_str name = n->s;
    const char *dot = memchr(name.p, '.', name.len);

    *id = -1;
    if (dot != NULL) {
        struct vcl_str obj = {name.p, (size_t)(dot - name.p)};
        struct vcl_str meth = {dot + 1, name.len - obj.len - 1};
        int d = find_dir(cx->st, obj);

        if (d >= 0) {
            if (cx->st->dirs[d].stub)
                return CALLEE_STUB;
            if (vcl_str_eq_cstr(meth, "backend")) {
                *id = VCL_FN_DIR_BACKEND;
                n->val.u.ref.kind = VCL_REF_DIRECTOR;
                n->val.u.ref.idx = (unsigned)d;
                return CALLEE_FUNC;
            }
            if (vcl_str_eq_cstr(meth, "add_backend") || vcl_str_eq_cstr(meth, "remove_backend") ||
                vcl_str_eq_cstr(meth, "reconfigure"))
                vcl_error(cx->cs, n->tok,
                          "%.*s() is director set-up: only allowed unconditionally in vcl_init",
                          (int)name.len, name.p);
            else
                vcl_error(cx->cs, n->tok, "director '%.*s' has no method '%.*s' (only .backend())",
                          (int)obj.len, obj.p, (int)meth.len, meth.p);
            return CALLEE_ERROR;
        }
        if (vcl_vmod_known(obj)) {
            if (!imported(cx->st, obj)) {
                vcl_error(cx->cs, n->tok, "vmod '%.*s' is not imported (add 'import %.*s;')",
                          (int)obj.len, obj.p, (int)obj.len, obj.p);
                return CALLEE_ERROR;
            }
        } else if (imported(cx->st, obj)) {
            return CALLEE_STUB; /* an imported unknown vmod: only in migration mode */
        } else {
            vcl_error(cx->cs, n->tok, "unknown function '%.*s' (no vmod or object '%.*s')",
                      (int)name.len, name.p, (int)obj.len, obj.p);
            return CALLEE_ERROR;
        }
    }
    for (unsigned i = 0; i < VCL_FN__MAX; i++) {
        if (vcl_str_eq_cstr(name, vcl_funcs[i].name)) {
            *id = (int)i;
            return CALLEE_FUNC;
        }
    }
    {
        char sbuf[128];
        const char *dym = suggest(name, true, sbuf, sizeof(sbuf));

        if (dym != NULL)
            vcl_error(cx->cs, n->tok, "unknown function '%.*s' (did you mean '%s'?)", (int)name.len,
                      name.p, dym);
        else
            vcl_error(cx->cs, n->tok, "unknown function '%.*s'", (int)name.len, name.p);
    }
    return CALLEE_ERROR;
}

/* The value of an optional argument left out. */
static struct vcl_node *
default_arg(struct cx *cx, struct vcl_node *call, int id, unsigned i, enum vcl_type want)
{
    struct vcl_node *def;

    if (want == VCL_T_BOOL) {
        def = mknode(cx, N_BOOL, call->tok, VCL_T_BOOL);
        def->i = (id == VCL_FN_STD_FNMATCH && i == 2); /* pathname = true */
    } else if (want == VCL_T_STRING && id == VCL_FN_STD_COLLECT) {
        def = mknode(cx, N_STRING, call->tok, VCL_T_STRING);
        def->s = VCL_LIT(", ");
    } else {
        def = mknode(cx, N_CONST, call->tok, want);
        def->val.type = want; /* an unset STRING: p == NULL */
    }
    return def;
}

/* Checks one argument against its parameter type. */
static void
check_arg(struct cx *cx, struct vcl_node **argp, enum vcl_type want, const char *what)
{
    struct vcl_node *a = *argp;

    if (want == VCL_T_REGEX) {
        if (a->kind != N_STRING) {
            vcl_error(cx->cs, a->tok, "%s: the regular expression must be a string literal", what);
            return;
        }
        a->type = VCL_T_REGEX;
        return;
    }
    if (want == VCL_T_HEADER) {
        if (a->kind == N_IDENT)
            resolve(cx, a);
        ERRCHK(cx->cs);
        if (a->kind != N_HEADER) {
            vcl_error(cx->cs, a->tok, "%s: expected a header such as req.http.Cookie", what);
            return;
        }
        if (cx->mask & ~vcl_wheres[a->i].wr) {
            perm_error(cx, a->tok, "the header", "writable", vcl_wheres[a->i].wr);
            return;
        }
        a->type = VCL_T_HEADER;
        return;
    }
    check_expr(cx, a);
    ERRCHK(cx->cs);
    coerce(cx, argp, want, what);
}

/* Maps positional and named arguments onto the parameters, fills in the
 * defaults, checks each, and relinks them as a plain list in order. */
static void
bind_args(struct cx *cx, struct vcl_node *n, int id)
{
    const struct vcl_func *f = &vcl_funcs[id];
    struct vcl_node *argv[5] = {0};
    unsigned npos = 0;

    for (struct vcl_node *a = n->a; a != NULL; a = a->next) {
        unsigned slot;

        if (a->s.p != NULL) {
            for (slot = 0; slot < f->max_args; slot++)
                if (vcl_str_eq_cstr(a->s, f->argnames[slot]))
                    break;
            if (slot == f->max_args) {
                vcl_error(cx->cs, a->tok, "%s() has no argument named '%.*s'", f->name,
                          (int)a->s.len, a->s.p);
                return;
            }
        } else if ((slot = npos++) >= f->max_args) {
            vcl_error(cx->cs, a->tok, "too many arguments for %s() (at most %u)", f->name,
                      f->max_args);
            return;
        }
        if (argv[slot] != NULL) {
            vcl_error(cx->cs, a->tok, "argument '%s' of %s() given twice", f->argnames[slot],
                      f->name);
            return;
        }
        argv[slot] = a->a;
    }
    for (unsigned i = 0; i < f->max_args; i++) {
        char what[64];

        if (argv[i] == NULL) {
            if (i < f->min_args) {
                vcl_error(cx->cs, n->tok, "%s() needs %u argument%s", f->name, f->min_args,
                          f->min_args == 1 ? "" : "s");
                return;
            }
            argv[i] = default_arg(cx, n, id, i, f->args[i]);
            continue;
        }
        snprintf(what, sizeof(what), "argument '%s' of %s()", f->argnames[i], f->name);
        check_arg(cx, &argv[i], f->args[i], what);
        ERRCHK(cx->cs);
    }
    n->a = NULL;
    for (unsigned i = f->max_args; i-- > 0;) {
        argv[i]->next = n->a;
        n->a = argv[i];
    }
}

/* A call: resolve it, check where it may run, bind its arguments.  A call
 * of an unknown vmod (migration mode) becomes a stub with a warning. */
/*
 * Varnish shard's `.backend(by = HASH | URL | KEY)`: HASH (the default) is
 * the cache key, so the argument goes; URL becomes the key req.url (bereq.url
 * in backend subs); KEY needs `key = ...`, which is the key already.  Other
 * values (BLOB) and shard's tuning arguments are errors.  False on an error.
 */
static bool
dir_backend_by(struct cx *cx, struct vcl_node *n)
{
    struct vcl_node **pp, *by = NULL, *key = NULL;

    for (pp = &n->a; *pp != NULL;) {
        struct vcl_node *a = *pp;
        if (a->s.p != NULL && vcl_str_eq_cstr(a->s, "by")) {
            by = a;
            *pp = a->next;          /* not an argument of the call itself */
            continue;
        }
        if (a->s.p == NULL || vcl_str_eq_cstr(a->s, "key"))
            key = a;
        pp = &a->next;
    }
    if (by == NULL)
        return true;
    if (by->a->kind != N_IDENT) {
        vcl_error(cx->cs, by->a->tok, "by = expects HASH, URL or KEY");
        return false;
    }
    if (vcl_str_eq_cstr(by->a->s, "HASH")) {
        if (key != NULL) {
            vcl_error(cx->cs, key->tok, "by = HASH takes no key (it hashes the cache key)");
            return false;
        }
        return true;
    }
    if (vcl_str_eq_cstr(by->a->s, "KEY")) {
        if (key == NULL) {
            vcl_error(cx->cs, by->tok, "by = KEY needs key = ...");
            return false;
        }
        return true;
    }
    if (vcl_str_eq_cstr(by->a->s, "URL")) {
        struct vcl_node *arg, *url;
        if (key != NULL) {
            vcl_error(cx->cs, key->tok, "by = URL takes no key (it hashes the URL)");
            return false;
        }
        url = mknode(cx, N_IDENT, by->a->tok, VCL_T_STRING);
        url->s = (cx->mask & VCL_M_CLIENT) ? VCL_LIT("req.url") : VCL_LIT("bereq.url");
        arg = mknode(cx, N_ARG, by->tok, VCL_T_STRING);
        arg->a = url;
        arg->next = n->a;
        n->a = arg;
        return true;
    }
    vcl_error(cx->cs, by->a->tok, "by = %.*s is not supported (HASH, URL or KEY)",
              (int)by->a->s.len, by->a->s.p);
    return false;
}

static void
check_call(struct cx *cx, struct vcl_node *n)
{
    const struct vcl_func *f;
    int id;

    switch (find_callee(cx, n, &id)) {
    case CALLEE_ERROR:
        return;
    case CALLEE_STUB:
        vcl_warn(cx->cs, n->tok,
                 "call to '%.*s' of an unknown vmod compiled to a neutral value "
                 "(migration mode)",
                 (int)n->s.len, n->s.p);
        for (struct vcl_node *a = n->a; a != NULL; a = a->next) {
            check_expr(cx, a->a);
            ERRCHK(cx->cs);
        }
        n->kind = N_STUB;
        n->type = VCL_T_STUB;
        n->a = NULL;
        return;
    case CALLEE_FUNC:
        break;
    }
    f = &vcl_funcs[id];
    n->i = id;
    n->type = f->ret;
    if (cx->mask & ~f->mask) {
        vcl_error(cx->cs, n->tok, "%s() is not allowed in %s", f->name,
                  offending_sub(cx->mask, f->mask));
        return;
    }
    if (id == VCL_FN_DIR_BACKEND && !dir_backend_by(cx, n))
        return;
    bind_args(cx, n, id);
}

static bool
is_num(enum vcl_type t)
{
    return t == VCL_T_INT || t == VCL_T_REAL;
}

/* + - * / : result type by operand types, converting INT to REAL as needed. */
static void
check_arith(struct cx *cx, struct vcl_node *n)
{
    enum vcl_type l = n->a->type, r = n->b->type, res = VCL_T_VOID;
    enum vcl_tok_kind op = (enum vcl_tok_kind)n->i;

    if (l == VCL_T_STUB)
        coerce(cx, &n->a, r == VCL_T_STUB ? VCL_T_INT : r, "operand"), l = n->a->type;
    if (r == VCL_T_STUB)
        coerce(cx, &n->b, l, "operand"), r = n->b->type;
    if (l == VCL_T_INT && r == VCL_T_INT)
        res = VCL_T_INT;
    else if (is_num(l) && is_num(r))
        res = VCL_T_REAL;
    else if (l == VCL_T_BYTES && r == VCL_T_BYTES && (op == VCL_TOK_PLUS || op == VCL_TOK_MINUS))
        res = VCL_T_BYTES;
    else if (op == VCL_TOK_PLUS || op == VCL_TOK_MINUS) {
        if (l == VCL_T_DURATION && r == VCL_T_DURATION)
            res = VCL_T_DURATION;
        else if (l == VCL_T_TIME && r == VCL_T_DURATION)
            res = VCL_T_TIME;
        else if (op == VCL_TOK_PLUS && l == VCL_T_DURATION && r == VCL_T_TIME)
            res = VCL_T_TIME;
        else if (op == VCL_TOK_MINUS && l == VCL_T_TIME && r == VCL_T_TIME)
            res = VCL_T_DURATION;
    } else if (op == VCL_TOK_STAR) {
        if ((l == VCL_T_DURATION && is_num(r)) || (is_num(l) && r == VCL_T_DURATION))
            res = VCL_T_DURATION;
    } else if (op == VCL_TOK_SLASH) {
        if (l == VCL_T_DURATION && is_num(r))
            res = VCL_T_DURATION;
        else if (l == VCL_T_DURATION && r == VCL_T_DURATION)
            res = VCL_T_REAL;
    }
    if (res == VCL_T_VOID) {
        vcl_error(cx->cs, n->tok, "operator %s cannot combine %s and %s", vcl_tok_desc(op),
                  vcl_type_name(l), vcl_type_name(r));
        return;
    }
    if (res != VCL_T_INT && res != VCL_T_BYTES) {
        if (l == VCL_T_INT)
            coerce(cx, &n->a, VCL_T_REAL, "operand");
        if (r == VCL_T_INT)
            coerce(cx, &n->b, VCL_T_REAL, "operand");
    }
    n->type = res;
}

/* Appends a string operand to a concatenation, flattening nested ones. */
static void
concat_add(struct cx *cx, struct vcl_node **tail, struct vcl_node *x)
{
    struct vcl_node **t = tail;

    if (x->kind == N_CONCAT) {
        struct vcl_node *p = x->a;

        while (*t != NULL)
            t = &(*t)->next;
        *t = p;
        return;
    }
    coerce(cx, &x, VCL_T_STRING, "operand of '+'");
    while (*t != NULL)
        t = &(*t)->next;
    x->next = NULL;
    *t = x;
}

static void
check_compare(struct cx *cx, struct vcl_node *n)
{
    enum vcl_tok_kind op = (enum vcl_tok_kind)n->i;
    enum vcl_type l, r;
    bool ordered = op != VCL_TOK_EQ && op != VCL_TOK_NE;

    check_expr(cx, n->a);
    ERRCHK(cx->cs);
    check_expr(cx, n->b);
    ERRCHK(cx->cs);
    l = n->a->type;
    r = n->b->type;
    if (l == VCL_T_STUB && r == VCL_T_STUB)
        coerce(cx, &n->a, VCL_T_STRING, "operand"), coerce(cx, &n->b, VCL_T_STRING, "operand");
    else if (l == VCL_T_STUB)
        coerce(cx, &n->a, r, "operand");
    else if (r == VCL_T_STUB)
        coerce(cx, &n->b, l, "operand");
    else if (l == VCL_T_INT && r == VCL_T_REAL)
        coerce(cx, &n->a, VCL_T_REAL, "operand");
    else if (l == VCL_T_REAL && r == VCL_T_INT)
        coerce(cx, &n->b, VCL_T_REAL, "operand");
    else if (l == VCL_T_IP && n->b->kind == N_STRING)
        coerce(cx, &n->b, VCL_T_IP, "operand");
    else if (l == VCL_T_STRING && r != VCL_T_STRING && !ordered && r != VCL_T_ACL &&
             r != VCL_T_VOID)
        coerce(cx, &n->b, VCL_T_STRING, "operand");
    ERRCHK(cx->cs);
    l = n->a->type;
    r = n->b->type;
    if (l != r) {
        vcl_error(cx->cs, n->tok, "cannot compare %s with %s", vcl_type_name(l), vcl_type_name(r));
        return;
    }
    switch (l) {
    case VCL_T_INT:
    case VCL_T_REAL:
    case VCL_T_DURATION:
    case VCL_T_BYTES:
    case VCL_T_TIME:
        break;
    case VCL_T_STRING:
    case VCL_T_BOOL:
    case VCL_T_IP:
    case VCL_T_BACKEND:
        if (ordered) {
            vcl_error(cx->cs, n->tok, "operator %s is not defined for %s", vcl_tok_desc(op),
                      vcl_type_name(l));
            return;
        }
        break;
    default:
        vcl_error(cx->cs, n->tok, "cannot compare values of type %s", vcl_type_name(l));
        return;
    }
    n->val.type = l; /* operand type, for codegen */
    n->type = VCL_T_BOOL;
}

static void
check_match(struct cx *cx, struct vcl_node *n)
{
    struct vcl_sym *acl = NULL;

    if (n->b->kind == N_IDENT)
        acl = find_sym(cx->st->acls, cx->st->nacls, n->b->s);
    check_expr(cx, n->a);
    ERRCHK(cx->cs);
    if (acl != NULL) {
        acl->used = true;
        n->b->kind = N_ACLREF;
        n->b->type = VCL_T_ACL;
        n->b->i = acl - cx->st->acls;
        coerce(cx, &n->a, VCL_T_IP, "left side of an ACL match");
    } else if (n->b->kind == N_STRING) {
        n->b->type = VCL_T_REGEX;
        if (n->a->type == VCL_T_IP) {
            vcl_error(cx->cs, n->b->tok, "an IP is matched against an ACL name, not a string");
            return;
        }
        coerce(cx, &n->a, VCL_T_STRING, "left side of '~'");
    } else if (n->b->kind == N_IDENT && n->a->type == VCL_T_IP) {
        vcl_error(cx->cs, n->b->tok, "unknown ACL '%.*s'", (int)n->b->s.len, n->b->s.p);
        return;
    } else {
        vcl_error(cx->cs, n->b->tok,
                  "the right side of %s must be a string literal (regex) or an ACL name",
                  vcl_tok_desc((enum vcl_tok_kind)n->i));
        return;
    }
    n->type = VCL_T_BOOL;
}

static void
check_expr(struct cx *cx, struct vcl_node *n)
{
    ERRCHK(cx->cs);
    switch (n->kind) {
    case N_STRING:
        n->type = VCL_T_STRING;
        return;
    case N_INT:
        n->type = VCL_T_INT;
        return;
    case N_REAL:
        n->type = VCL_T_REAL;
        return;
    case N_DURATION:
        n->type = VCL_T_DURATION;
        return;
    case N_BYTES:
        n->type = VCL_T_BYTES;
        return;
    case N_BOOL:
        n->type = VCL_T_BOOL;
        return;
    case N_IDENT:
        resolve(cx, n);
        ERRCHK(cx->cs);
        check_read(cx, n);
        return;
    case N_CALL:
        check_call(cx, n);
        return;
    case N_NOT:
        check_expr(cx, n->a);
        coerce(cx, &n->a, VCL_T_BOOL, "operand of '!'");
        n->type = VCL_T_BOOL;
        return;
    case N_NEG:
        check_expr(cx, n->a);
        ERRCHK(cx->cs);
        if (n->a->kind == N_INT || n->a->kind == N_REAL || n->a->kind == N_DURATION) {
            struct vcl_node *c = n->a;

            *n = *c; /* fold -literal */
            n->i = -n->i;
            n->d = -n->d;
            return;
        }
        if (n->a->type != VCL_T_INT && n->a->type != VCL_T_REAL && n->a->type != VCL_T_DURATION) {
            vcl_error(cx->cs, n->tok, "unary '-' is not defined for %s", vcl_type_name(n->a->type));
            return;
        }
        n->type = n->a->type;
        return;
    case N_BINOP:
        switch ((enum vcl_tok_kind)n->i) {
        case VCL_TOK_AND:
        case VCL_TOK_OR:
            check_expr(cx, n->a);
            coerce(cx, &n->a, VCL_T_BOOL, "operand of a logical operator");
            check_expr(cx, n->b);
            coerce(cx, &n->b, VCL_T_BOOL, "operand of a logical operator");
            n->type = VCL_T_BOOL;
            return;
        case VCL_TOK_MATCH:
        case VCL_TOK_NOMATCH:
            check_match(cx, n);
            return;
        case VCL_TOK_PLUS:
            check_expr(cx, n->a);
            check_expr(cx, n->b);
            ERRCHK(cx->cs);
            if (n->a->type == VCL_T_STRING || n->b->type == VCL_T_STRING) {
                struct vcl_node *l = n->a, *r = n->b;

                n->kind = N_CONCAT;
                n->type = VCL_T_STRING;
                n->a = NULL;
                concat_add(cx, &n->a, l);
                concat_add(cx, &n->a, r);
                return;
            }
            check_arith(cx, n);
            return;
        case VCL_TOK_MINUS:
        case VCL_TOK_STAR:
        case VCL_TOK_SLASH:
            check_expr(cx, n->a);
            check_expr(cx, n->b);
            ERRCHK(cx->cs);
            check_arith(cx, n);
            return;
        default:
            check_compare(cx, n);
            return;
        }
    case N_STUB:
    case N_CONST:
    case N_VAR:
    case N_HEADER:
    case N_BACKEND:
    case N_ACLREF:
    case N_CONCAT:
    case N_CONV:
        return; /* already checked (shared subtree) */
    default:
        VCL_UNREACHABLE("expression kind");
    }
}

/* ---------------------------------------------------------- statements */

static void
check_set(struct cx *cx, struct vcl_node *n)
{
    struct vcl_node *t = n->a;
    char what[80];
    unsigned wr;
    const char *name;

    resolve(cx, t);
    ERRCHK(cx->cs);
    if (t->kind == N_HEADER) {
        wr = vcl_wheres[t->i].wr;
        snprintf(what, sizeof(what), "%s.http.%.*s", vcl_wheres[t->i].name, (int)t->s.len, t->s.p);
    } else if (t->kind == N_VAR) {
        wr = vcl_vars[t->i].wr;
        snprintf(what, sizeof(what), "%s", vcl_vars[t->i].name);
    } else {
        vcl_error(cx->cs, t->tok, "'%.*s' cannot be assigned to", (int)t->s.len, t->s.p);
        return;
    }
    name = what;
    if (wr == 0) {
        vcl_error(cx->cs, t->tok, "%s is read-only", name);
        return;
    }
    if (cx->mask & ~wr) {
        perm_error(cx, t->tok, name, "writable", wr);
        return;
    }
    check_expr(cx, n->b);
    ERRCHK(cx->cs);
    if (n->i != VCL_TOK_ASSIGN) {
        /* x += y  ->  x = x + y */
        struct vcl_node *rd = mknode(cx, t->kind, t->tok, t->type);
        struct vcl_node *op = mknode(cx, N_BINOP, n->tok, VCL_T_VOID);

        rd->i = t->i;
        rd->s = t->s;
        check_read(cx, rd);
        op->i = n->i == VCL_TOK_PLUSEQ ? VCL_TOK_PLUS : VCL_TOK_MINUS;
        op->a = rd;
        op->b = n->b;
        if (op->i == VCL_TOK_PLUS && (rd->type == VCL_T_STRING || n->b->type == VCL_T_STRING)) {
            op->kind = N_CONCAT;
            op->type = VCL_T_STRING;
            op->a = NULL;
            concat_add(cx, &op->a, rd);
            concat_add(cx, &op->a, n->b);
        } else {
            check_arith(cx, op);
        }
        ERRCHK(cx->cs);
        n->b = op;
        n->i = VCL_TOK_ASSIGN;
    }
    coerce(cx, &n->b, t->type, name);
}

static void
check_return(struct cx *cx, struct vcl_node *n)
{
    int act = -1;
    unsigned allowed = ~0u;
    struct vcl_node *args = n->a;
    unsigned nargs = 0;

    for (unsigned i = 1; i < VCL_ACT__MAX; i++)
        if (vcl_str_eq_cstr(n->s, vcl_action_name((enum vcl_action)i)))
            act = (int)i;
    if (act < 0) {
        if (vcl_str_eq_cstr(n->s, "vcl"))
            vcl_error(cx->cs, n->tok,
                      "return (vcl(label)) is not supported: vcl-lite has no labels");
        else if (vcl_str_eq_cstr(n->s, "error"))
            vcl_error(cx->cs, n->tok,
                      "return (error) is VCL 3; use return (synth(status, reason))");
        else
            vcl_error(cx->cs, n->tok, "unknown action '%.*s'", (int)n->s.len, n->s.p);
        return;
    }
    for (unsigned i = 0; i < VCL_SUB__MAX; i++)
        if (cx->mask & (1u << i))
            allowed &= vcl_sub_actions[i];
    if (cx->mask != 0 && !(allowed & (1u << act))) {
        const char *sub = NULL;

        for (unsigned i = 0; i < VCL_SUB__MAX && sub == NULL; i++)
            if ((cx->mask & (1u << i)) && !(vcl_sub_actions[i] & (1u << act)))
                sub = vcl_sub_name((enum vcl_sub)i);
        if (cx->custom != NULL)
            vcl_error(cx->cs, n->tok,
                      "return (%s) is not allowed in %s (sub '%s' is called from %s)",
                      vcl_action_name((enum vcl_action)act), sub, cx->custom, sub);
        else
            vcl_error(cx->cs, n->tok, "return (%s) is not allowed in %s",
                      vcl_action_name((enum vcl_action)act), sub);
        return;
    }
    n->i = act;
    for (struct vcl_node *a = args; a != NULL; a = a->next) {
        nargs++;
        if (a->s.p != NULL) {
            vcl_error(cx->cs, a->tok, "return actions take no named arguments");
            return;
        }
    }
    n->a = n->b = n->c = NULL;
    if (act == VCL_ACT_SYNTH) {
        if (nargs < 1 || nargs > 2) {
            vcl_error(cx->cs, n->tok, "synth() takes a status and an optional reason");
            return;
        }
        n->a = args->a;
        check_expr(cx, n->a);
        coerce(cx, &n->a, VCL_T_INT, "synth status");
        if (nargs == 2) {
            n->b = args->next->a;
            check_expr(cx, n->b);
            coerce(cx, &n->b, VCL_T_STRING, "synth reason");
        }
    } else if (act == VCL_ACT_PASS && nargs > 0) {
        if (nargs > 1 || (cx->mask & ~VCL_M(BACKEND_RESPONSE))) {
            vcl_error(cx->cs, n->tok, "pass(duration) is only allowed in vcl_backend_response");
            return;
        }
        n->c = args->a;
        check_expr(cx, n->c);
        coerce(cx, &n->c, VCL_T_DURATION, "pass duration");
    } else if (nargs > 0) {
        vcl_error(cx->cs, n->tok, "action '%s' takes no arguments",
                  vcl_action_name((enum vcl_action)act));
    }
}

static void
check_stmt(struct cx *cx, struct vcl_node *n, bool top)
{
    switch (n->kind) {
    case N_SET:
        check_set(cx, n);
        return;
    case N_UNSET:
        resolve(cx, n->a);
        ERRCHK(cx->cs);
        if (n->a->kind != N_HEADER) {
            vcl_error(cx->cs, n->a->tok, "only headers can be unset ('%.*s' is not a header)",
                      (int)n->a->tok->s.len, n->a->tok->s.p);
            return;
        }
        if (cx->mask & ~vcl_wheres[n->a->i].wr) {
            char buf[80];

            snprintf(buf, sizeof(buf), "%s.http.%.*s", vcl_wheres[n->a->i].name, (int)n->a->s.len,
                     n->a->s.p);
            perm_error(cx, n->a->tok, buf, "writable", vcl_wheres[n->a->i].wr);
        }
        return;
    case N_IF:
        check_expr(cx, n->a);
        coerce(cx, &n->a, VCL_T_BOOL, "if condition");
        ERRCHK(cx->cs);
        check_stmts(cx, n->b, false);
        ERRCHK(cx->cs);
        check_stmts(cx, n->c, false); /* else block, or the elseif chain */
        return;
    case N_CALLSUB:
        /* resolved by the call-graph walk */
        return;
    case N_RETURN:
        check_return(cx, n);
        return;
    case N_EXPR:
        if (n->a->kind == N_STUB) /* set-up call on a stub object: done */
            return;
        check_expr(cx, n->a);
        return;
    case N_NEW:
        if (!cx->in_init)
            vcl_error(cx->cs, n->tok, "'new' is only allowed in vcl_init");
        else if (!top)
            vcl_error(cx->cs, n->tok, "director set-up in vcl_init must not be conditional");
        else
            VCL_UNREACHABLE("new not consumed by director set-up");
        return;
    case N_NOP:
        return;
    default:
        VCL_UNREACHABLE("statement kind");
    }
}

static void
check_stmts(struct cx *cx, struct vcl_node *list, bool top)
{
    for (struct vcl_node *s = list; s != NULL; s = s->next) {
        check_stmt(cx, s, top);
        ERRCHK(cx->cs);
    }
}

/* ------------------------------------------------------ directors (init) */

static const struct {
    const char *name;
    enum vcl_director_type type;
} dir_types[] = {
    {"directors.round_robin", VCL_DIR_ROUND_ROBIN},
    {"directors.random", VCL_DIR_RANDOM},
    {"directors.fallback", VCL_DIR_FALLBACK},
    {"directors.hash", VCL_DIR_HASH},
    {"directors.shard", VCL_DIR_SHARD},
    {"directors.least_connections", VCL_DIR_LEAST_CONN},
};

static void
dir_new(struct cx *cx, struct vcl_node *n)
{
    struct vcl_symtab *st = cx->st;
    struct vcl_sym_dir *d;
    struct vcl_node *call = n->a;
    const char *dot = memchr(call->s.p, '.', call->s.len);
    struct vcl_str vmod = {call->s.p, dot ? (size_t)(dot - call->s.p) : call->s.len};

    if (find_dir(st, n->s) >= 0 || find_sym(st->backends, st->nbackends, n->s) != NULL ||
        find_sym(st->acls, st->nacls, n->s) != NULL) {
        vcl_error(cx->cs, n->tok, "'%.*s' is already defined", (int)n->s.len, n->s.p);
        return;
    }
    d = &st->dirs[st->ndirs];
    memset(d, 0, sizeof(*d));
    d->name = n->s;
    d->tok = n->tok;
    if (dot == NULL) {
        vcl_error(cx->cs, call->tok, "expected a constructor such as directors.round_robin()");
        return;
    }
    if (vcl_vmod_known(vmod)) {
        if (!imported(st, vmod)) {
            vcl_error(cx->cs, call->tok, "vmod '%.*s' is not imported (add 'import %.*s;')",
                      (int)vmod.len, vmod.p, (int)vmod.len, vmod.p);
            return;
        }
        if (!vcl_str_eq_cstr(vmod, "directors")) {
            vcl_error(cx->cs, call->tok, "vmod '%.*s' has no object constructor '%.*s'",
                      (int)vmod.len, vmod.p, (int)call->s.len, call->s.p);
            return;
        }
        for (size_t i = 0; i < VCL_ARRAY_LEN(dir_types); i++) {
            if (vcl_str_eq_cstr(call->s, dir_types[i].name)) {
                d->type = dir_types[i].type;
                goto found;
            }
        }
        vcl_error(cx->cs, call->tok,
                  "unknown director type '%.*s' (round_robin, random, "
                  "fallback, hash, shard, least_connections)",
                  (int)call->s.len, call->s.p);
        return;
    } else if (imported(st, vmod)) {
        d->stub = true;
        vcl_warn(cx->cs, call->tok, "object '%.*s' of an unknown vmod is a stub (migration mode)",
                 (int)call->s.len, call->s.p);
        st->ndirs++;
        return;
    } else {
        vcl_error(cx->cs, call->tok, "unknown vmod '%.*s'", (int)vmod.len, vmod.p);
        return;
    }
found:
    for (struct vcl_node *a = call->a; a != NULL; a = a->next) {
        if (d->type == VCL_DIR_FALLBACK && (a->s.p == NULL || vcl_str_eq_cstr(a->s, "sticky")) &&
            a->a->kind == N_BOOL) {
            d->sticky = a->a->i != 0;
            continue;
        }
        vcl_error(cx->cs, a->tok, "unsupported argument for %.*s()", (int)call->s.len, call->s.p);
        return;
    }
    st->ndirs++;
}

/* web.add_backend(b1[, weight]) in vcl_init; returns true when consumed. */
static bool
dir_method(struct cx *cx, struct vcl_node *n)
{
    struct vcl_node *call = n->a;
    const char *dot;
    struct vcl_str obj, meth;
    struct vcl_sym_dir *d;
    struct vcl_sym *b;
    struct vcl_director_member m;
    struct vcl_node *arg, *w;
    int di;

    if (call->kind != N_CALL || (dot = memchr(call->s.p, '.', call->s.len)) == NULL)
        return false;
    obj = (struct vcl_str){call->s.p, (size_t)(dot - call->s.p)};
    meth = (struct vcl_str){dot + 1, call->s.len - obj.len - 1};
    if ((di = find_dir(cx->st, obj)) < 0)
        return false;
    d = &cx->st->dirs[di];
    if (d->stub) {
        vcl_warn(cx->cs, call->tok, "call to '%.*s' of a stub object ignored (migration mode)",
                 (int)call->s.len, call->s.p);
        n->kind = N_NOP;
        return true;
    }
    if (vcl_str_eq_cstr(meth, "reconfigure")) {
        n->kind = N_NOP; /* the daemon builds the shard ring itself */
        return true;
    }
    if (!vcl_str_eq_cstr(meth, "add_backend"))
        return false;
    arg = call->a;
    if (arg == NULL || arg->a->kind != N_IDENT || (arg->next && arg->next->next)) {
        vcl_error(cx->cs, call->tok, "%.*s() takes a backend and an optional weight",
                  (int)call->s.len, call->s.p);
        return true;
    }
    memset(&m, 0, sizeof(m));
    m.weight = 1.0;
    if ((b = find_sym(cx->st->backends, cx->st->nbackends, arg->a->s)) != NULL) {
        b->used = true;
        m.ref.kind = VCL_REF_BACKEND;
        m.ref.idx = (unsigned)(b - cx->st->backends);
    } else if ((di = find_dir(cx->st, arg->a->s)) >= 0 && di < (int)(d - cx->st->dirs) &&
               !cx->st->dirs[di].stub) {
        m.ref.kind = VCL_REF_DIRECTOR;
        m.ref.idx = (unsigned)di;
    } else {
        vcl_error(cx->cs, arg->a->tok, "unknown backend '%.*s'", (int)arg->a->s.len, arg->a->s.p);
        return true;
    }
    if ((w = arg->next ? arg->next->a : NULL) != NULL) {
        if (w->kind == N_INT)
            m.weight = (double)w->i;
        else if (w->kind == N_REAL)
            m.weight = w->d;
        else {
            vcl_error(cx->cs, w->tok, "the weight must be a number");
            return true;
        }
        if (d->type != VCL_DIR_RANDOM && d->type != VCL_DIR_HASH && d->type != VCL_DIR_SHARD &&
            d->type != VCL_DIR_LEAST_CONN) {
            vcl_error(cx->cs, w->tok, "this director type takes no weights");
            return true;
        }
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        {
            struct vcl_director_member *nm = vcl_pool_alloc(cx->cs->pool, d->cap * sizeof(*nm));

            if (d->n)
                memcpy(nm, d->members, d->n * sizeof(*nm));
            d->members = nm;
        }
    }
    d->members[d->n++] = m;
    n->kind = N_NOP;
    return true;
}

static void
directors_setup(struct cx *cx)
{
    struct vcl_symtab *st = cx->st;

    for (size_t i = 0; i < st->nbodies[VCL_SUB_INIT]; i++) {
        for (struct vcl_node *s = st->bodies[VCL_SUB_INIT][i]->a; s != NULL; s = s->next) {
            if (s->kind == N_NEW) {
                dir_new(cx, s);
                ERRCHK(cx->cs);
                s->kind = N_NOP;
            } else if (s->kind == N_EXPR) {
                dir_method(cx, s);
                ERRCHK(cx->cs);
            }
        }
    }
}

/* ----------------------------------------------------------- call graph */

static void walk_calls(struct cx *cx, struct vcl_node *list, unsigned bit);

static void
visit_sub(struct cx *cx, struct vcl_node *call, unsigned bit)
{
    struct vcl_sym_sub *s = find_sub(cx->st, call->s);

    if (s == NULL) {
        if (method_of(call->s) >= 0)
            vcl_error(cx->cs, call->tok, "built-in sub '%.*s' cannot be called", (int)call->s.len,
                      call->s.p);
        else
            vcl_error(cx->cs, call->tok, "unknown sub '%.*s'", (int)call->s.len, call->s.p);
        return;
    }
    if (s->state == 1) {
        vcl_error(cx->cs, call->tok, "recursive call to sub '%.*s'", (int)call->s.len, call->s.p);
        return;
    }
    if (s->state == 2)
        return;
    s->mask |= bit;
    s->state = 1;
    walk_calls(cx, s->decl->a, bit);
    s->state = 2;
}

static void
walk_calls(struct cx *cx, struct vcl_node *list, unsigned bit)
{
    for (struct vcl_node *s = list; s != NULL; s = s->next) {
        ERRCHK(cx->cs);
        if (s->kind == N_CALLSUB) {
            visit_sub(cx, s, bit);
        } else if (s->kind == N_IF) {
            walk_calls(cx, s->b, bit);
            walk_calls(cx, s->c, bit);
        }
    }
}

/* ------------------------------------------------------------- collect */

static void
collect(struct cx *cx)
{
    struct vcl_compile *cs = cx->cs;
    struct vcl_symtab *st = cx->st;
    size_t n = 0, nnew = 0;

    for (struct vcl_node *d = cs->decls; d != NULL; d = d->next) {
        n++;
        if (d->kind == N_SUB && vcl_str_eq_cstr(d->s, "vcl_init"))
            for (struct vcl_node *s = d->a; s != NULL; s = s->next)
                nnew += s->kind == N_NEW;
    }
    st->backends = vcl_pool_alloc(cs->pool, (n + 1) * sizeof(struct vcl_sym));
    st->probes = vcl_pool_alloc(cs->pool, (n + 1) * sizeof(struct vcl_sym));
    st->acls = vcl_pool_alloc(cs->pool, (n + 1) * sizeof(struct vcl_sym));
    st->subs = vcl_pool_alloc(cs->pool, (n + 1) * sizeof(struct vcl_sym_sub));
    st->imports = vcl_pool_alloc(cs->pool, (n + 1) * sizeof(struct vcl_str));
    st->dirs = vcl_pool_alloc(cs->pool, (nnew + 1) * sizeof(struct vcl_sym_dir));
    for (unsigned i = 0; i < VCL_SUB__MAX; i++)
        st->bodies[i] = vcl_pool_alloc(cs->pool, (n + 1) * sizeof(struct vcl_node *));

    for (struct vcl_node *d = cs->decls; d != NULL; d = d->next) {
        struct vcl_sym *tab = NULL;
        size_t *cnt = NULL;
        int m;

        switch (d->kind) {
        case N_VCL:
            continue;
        case N_IMPORT:
            if (!vcl_vmod_known(d->s) && !cs->opt.unknown_vmods_stub) {
                vcl_error(cs, d->tok,
                          "vmod '%.*s' is not provided by accel (known: %s; migration mode "
                          "-p vcl_unknown_vmods=stub turns its calls into neutral values)",
                          (int)d->s.len, d->s.p, vcl_vmod_names());
                return;
            }
            if (!vcl_vmod_known(d->s))
                vcl_warn(cs, d->tok, "vmod '%.*s' is not provided by accel: its calls are stubs",
                         (int)d->s.len, d->s.p);
            st->imports[st->nimports++] = d->s;
            continue;
        case N_BACKENDDECL:
            tab = st->backends;
            cnt = &st->nbackends;
            break;
        case N_PROBEDECL:
            tab = st->probes;
            cnt = &st->nprobes;
            break;
        case N_ACLDECL:
            tab = st->acls;
            cnt = &st->nacls;
            break;
        case N_SUB:
            m = method_of(d->s);
            if (m >= 0) {
                st->bodies[m][st->nbodies[m]++] = d;
                if (d->tok->src != st->builtin_src)
                    st->user_defined[m] = true;
                continue;
            }
            if (d->s.len > 4 && memcmp(d->s.p, "vcl_", 4) == 0) {
                vcl_error(cs, d->tok,
                          "unknown built-in sub '%.*s' (custom subs must not start "
                          "with vcl_)",
                          (int)d->s.len, d->s.p);
                return;
            }
            if (find_sub(st, d->s) != NULL) {
                vcl_error(cs, d->tok, "sub '%.*s' is defined twice", (int)d->s.len, d->s.p);
                return;
            }
            st->subs[st->nsubs].name = d->s;
            st->subs[st->nsubs].decl = d;
            st->nsubs++;
            continue;
        default:
            VCL_UNREACHABLE("declaration kind");
        }
        if (find_sym(st->backends, st->nbackends, d->s) != NULL ||
            find_sym(st->probes, st->nprobes, d->s) != NULL ||
            find_sym(st->acls, st->nacls, d->s) != NULL) {
            vcl_error(cs, d->tok, "'%.*s' is already defined", (int)d->s.len, d->s.p);
            return;
        }
        tab[*cnt].name = d->s;
        tab[*cnt].decl = d;
        (*cnt)++;
    }
}

void
vcl_check(struct vcl_compile *cs)
{
    struct cx cx;

    VCL_CHECK_OBJ(cs, VCL_COMPILE_MAGIC);
    memset(&cx, 0, sizeof(cx));
    cx.cs = cs;
    cx.st = cs->sym;
    collect(&cx);
    ERRCHK(cs);
    cx.mask = VCL_M(INIT);
    cx.in_init = true;
    directors_setup(&cx);
    ERRCHK(cs);

    /* call graph: which built-in subs reach each custom sub */
    for (unsigned m = 0; m < VCL_SUB__MAX; m++) {
        for (size_t i = 0; i < cx.st->nsubs; i++)
            cx.st->subs[i].state = 0;
        for (size_t b = 0; b < cx.st->nbodies[m]; b++)
            walk_calls(&cx, cx.st->bodies[m][b]->a, 1u << m);
        ERRCHK(cs);
    }
    for (size_t i = 0; i < cx.st->nsubs; i++) {
        struct vcl_sym_sub *s = &cx.st->subs[i];

        if (s->mask == 0) {
            /* never called: still check it for unknown subs and cycles */
            for (size_t j = 0; j < cx.st->nsubs; j++)
                cx.st->subs[j].state = 0;
            s->state = 1;
            walk_calls(&cx, s->decl->a, 0);
            ERRCHK(cs);
            vcl_warn(cs, s->decl->tok, "sub '%.*s' is never called", (int)s->name.len, s->name.p);
        }
    }

    /* bodies */
    for (unsigned m = 0; m < VCL_SUB__MAX; m++) {
        cx.mask = 1u << m;
        cx.custom = NULL;
        cx.in_init = m == VCL_SUB_INIT;
        for (size_t b = 0; b < cx.st->nbodies[m]; b++) {
            check_stmts(&cx, cx.st->bodies[m][b]->a, true);
            ERRCHK(cs);
        }
    }
    for (size_t i = 0; i < cx.st->nsubs; i++) {
        struct vcl_sym_sub *s = &cx.st->subs[i];
        char name[128];

        snprintf(name, sizeof(name), "%.*s", (int)s->name.len, s->name.p);
        cx.mask = s->mask;
        cx.custom = name;
        cx.in_init = false;
        check_stmts(&cx, s->decl->a, false);
        ERRCHK(cs);
    }

    for (size_t i = 0; i < cx.st->nbackends; i++)
        if (!cx.st->backends[i].used && i > 0)
            vcl_warn(cs, cx.st->backends[i].decl->tok, "backend '%.*s' is never used",
                     (int)cx.st->backends[i].name.len, cx.st->backends[i].name.p);
    for (size_t i = 0; i < cx.st->nacls; i++)
        if (!cx.st->acls[i].used)
            vcl_warn(cs, cx.st->acls[i].decl->tok, "acl '%.*s' is never used",
                     (int)cx.st->acls[i].name.len, cx.st->acls[i].name.p);
}
