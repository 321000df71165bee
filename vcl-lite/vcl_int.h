/*
 * vcl_int.h -- vcl-lite internals shared by the library's .c files.
 * Nothing outside vcl-lite/ includes this (tests reach internals only through
 * the public header, except test_vcl_lex.c/test_vcl_parse.c, which include
 * this header to test the stages on their own).
 *
 * Pipeline: vcl_lex.c (text -> tokens) -> vcl_parse.c (tokens -> AST, with
 * includes) -> vcl_check.c (symbols, types, permissions, return actions;
 * annotates and rewrites the AST with explicit conversions) -> vcl_compile.c
 * (AST -> flat instruction array, constant pool, regexes, ACL tables,
 * declarations) -> vcl_vm.c (runs one sub).  vcl_program.c owns the
 * entry points, diagnostics and the program's life cycle.
 */
#ifndef VCL_INT_H
#define VCL_INT_H

#include "vcl.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* ------------------------------------------------------------ asserts */

void vcl_panic(const char *func, const char *file, int line, const char *expr)
    __attribute__((noreturn));
#define VCL_ASSERT(e) ((e) ? (void)0 : vcl_panic(__func__, __FILE__, __LINE__, #e))
#define VCL_NOTNULL(p) VCL_ASSERT((p) != NULL)
#define VCL_CHECK_OBJ(p, m)                                                                      \
    do {                                                                                         \
        VCL_NOTNULL(p);                                                                          \
        VCL_ASSERT((p)->magic == (m));                                                           \
    } while (0)
#define VCL_UNREACHABLE(why) vcl_panic(__func__, __FILE__, __LINE__, (why))
#define VCL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Small fixed-size allocations abort on failure (STYLE.md). */
void *vcl_xmalloc(size_t n);
void *vcl_xcalloc(size_t n, size_t m);
void *vcl_xrealloc(void *p, size_t n);
char *vcl_xstrndup(const char *s, size_t n);

/* A chunked bump allocator: the AST and tokens of one compile, and the
 * strings and tables of one program, each live in one pool freed at once. */
struct vcl_pool;
struct vcl_pool *vcl_pool_new(void);
void *vcl_pool_alloc(struct vcl_pool *pool, size_t n); /* zeroed, 16-aligned */
char *vcl_pool_strndup(struct vcl_pool *pool, const char *s, size_t n);
void vcl_pool_free(struct vcl_pool **pool);

/* Case-insensitive and exact slice equality. */
bool vcl_str_caseeq(struct vcl_str a, struct vcl_str b);
bool vcl_str_eq_cstr(struct vcl_str a, const char *s);

/* ------------------------------------------------------------- lexer */

#define VCL_TOKENS(X)                                                                            \
    X(EOF, "end of file")                                                                        \
    X(IDENT, "identifier")                                                                       \
    X(STRING, "string")                                                                          \
    X(INT, "integer")                                                                            \
    X(REAL, "real number")                                                                       \
    X(DURATION, "duration")                                                                      \
    X(BYTES, "bytes")                                                                            \
    X(LBRACE, "'{'")                                                                             \
    X(RBRACE, "'}'")                                                                             \
    X(LPAREN, "'('")                                                                             \
    X(RPAREN, "')'")                                                                             \
    X(SEMI, "';'")                                                                               \
    X(COMMA, "','")                                                                              \
    X(ASSIGN, "'='")                                                                             \
    X(EQ, "'=='")                                                                                \
    X(NE, "'!='")                                                                                \
    X(NOT, "'!'")                                                                                \
    X(MATCH, "'~'")                                                                              \
    X(NOMATCH, "'!~'")                                                                           \
    X(LT, "'<'")                                                                                 \
    X(GT, "'>'")                                                                                 \
    X(LE, "'<='")                                                                                \
    X(GE, "'>='")                                                                                \
    X(PLUS, "'+'")                                                                               \
    X(MINUS, "'-'")                                                                              \
    X(STAR, "'*'")                                                                               \
    X(SLASH, "'/'")                                                                              \
    X(AND, "'&&'")                                                                               \
    X(OR, "'||'")                                                                                \
    X(PLUSEQ, "'+='")                                                                            \
    X(MINUSEQ, "'-='")                                                                           \
    X(DOT, "'.'")

enum vcl_tok_kind {
#define VCL_X_TOK(id, desc) VCL_TOK_##id,
    VCL_TOKENS(VCL_X_TOK)
#undef VCL_X_TOK
    VCL_TOK__MAX
};
const char *vcl_tok_desc(enum vcl_tok_kind k);

/* A token: begin/end pointers into its source (Varnish VCC), the place, and
 * the decoded value of literals.  For STRING, s is the text between the
 * quotes (no escapes exist in VCL). */
struct vcl_token {
    enum vcl_tok_kind kind;
    const char *b, *e;
    unsigned src; /* index into the compile's source list */
    unsigned line, col;
    struct vcl_str s;
    int64_t i;
    double d;
};

/* One source file of a compile. */
struct vcl_source {
    char *name;
    char *text; /* NUL-terminated copy */
    size_t len;
    struct vcl_token *toks;
    size_t ntoks;
};

/* ------------------------------------------------------- compile state */

enum vcl_node_kind {
    /* expressions */
    N_STRING,
    N_INT,
    N_REAL,
    N_DURATION,
    N_BYTES,
    N_BOOL,
    N_IDENT,    /* name to resolve (variable, header, backend, acl, object) */
    N_VAR,      /* resolved scalar variable: v.i = enum vcl_var */
    N_HEADER,   /* resolved header: v.i = where, s = name */
    N_BACKEND,  /* resolved backend/director/none: ref */
    N_ACLREF,   /* resolved ACL: v.i = index */
    N_CALL,     /* function or method call: s = name, a = args (arg name in s of N_ARG) */
    N_ARG,      /* call argument: a = expr, s = name or {0} */
    N_BINOP,    /* v.i = op token kind, a, b */
    N_CONCAT,   /* a = list of string operands (checker output) */
    N_NOT,      /* a */
    N_NEG,      /* a */
    N_CONV,     /* a converted to node type */
    N_STUB,     /* neutral value of node type (migration mode) */
    N_CONST,    /* pre-computed constant value (IP literal): val */
    /* statements */
    N_SET,      /* a = target, b = value, v.i = op (ASSIGN, PLUSEQ, MINUSEQ) */
    N_UNSET,    /* a = target */
    N_IF,       /* a = cond, b = then list, c = else list */
    N_CALLSUB,  /* s = sub name */
    N_RETURN,   /* v.i = action, a = args */
    N_EXPR,     /* a = call as a statement */
    N_NEW,      /* s = object name, a = constructor call */
    N_NOP,      /* vcl_init director set-up, done at compile time */
    /* declarations */
    N_VCL,      /* s = version */
    N_IMPORT,   /* s = vmod name */
    N_BACKENDDECL, /* s = name, a = fields (N_FIELD), v.i = 1 for none */
    N_PROBEDECL,   /* s = name, a = fields */
    N_FIELD,    /* s = field name (without dot), a = value expr or b = inline probe fields */
    N_ACLDECL,  /* s = name, a = entries */
    N_ACLENTRY, /* s = address text, v.i = mask bits or -1, v.neg, v.paren */
    N_SUB       /* s = name, a = body */
};

struct vcl_node {
    enum vcl_node_kind kind;
    enum vcl_type type;          /* checker: value type of an expression */
    const struct vcl_token *tok; /* place for messages */
    struct vcl_node *a, *b, *c;
    struct vcl_node *next;
    struct vcl_str s;
    int64_t i;
    double d;
    bool neg, paren;
    struct vcl_value val; /* N_CONST, N_BACKEND (val.u.ref) */
};

/* Checker symbol tables (built by vcl_check, read by vcl_codegen). */
struct vcl_sym {
    struct vcl_str name;
    struct vcl_node *decl;
    bool used;
};
struct vcl_sym_sub {
    struct vcl_str name;
    struct vcl_node *decl;
    unsigned mask;  /* built-in subs that reach it through calls */
    uint8_t state;  /* call-graph walk: 0 new, 1 on stack, 2 done */
    uint32_t entry; /* codegen */
};
struct vcl_sym_dir {
    struct vcl_str name;
    const struct vcl_token *tok;
    bool stub; /* object of an unknown vmod (migration mode) */
    enum vcl_director_type type;
    bool sticky;
    struct vcl_director_member *members;
    size_t n, cap;
};
struct vcl_symtab {
    struct vcl_sym *backends, *probes, *acls;
    size_t nbackends, nprobes, nacls;
    struct vcl_sym_sub *subs;
    size_t nsubs;
    struct vcl_sym_dir *dirs;
    size_t ndirs;
    struct vcl_str *imports;
    size_t nimports;
    /* bodies of each built-in sub, user's first, then the builtin's */
    struct vcl_node **bodies[VCL_SUB__MAX];
    size_t nbodies[VCL_SUB__MAX];
    bool user_defined[VCL_SUB__MAX];
    unsigned builtin_src;
};

/* Everything one compile needs; freed at the end of vcl_compile_*. */
struct vcl_compile {
    unsigned magic;
#define VCL_COMPILE_MAGIC 0x3f7a91c2u
    struct vcl_options opt;
    struct vcl_pool *pool; /* AST, tokens */
    struct vcl_source *srcs;
    size_t nsrcs;
    unsigned include_depth;
    unsigned include_stack[16];
    struct vcl_node *decls, **decls_tail;
    /* sticky error (Varnish ERRCHK): set once, every stage returns at once */
    bool err;
    /* diagnostics collected */
    struct vcl_diags *diags;
    /* checker tables */
    struct vcl_symtab *sym;
    /* output */
    struct vcl_program *prog;
};
#define ERRCHK(cs)                                                                               \
    do {                                                                                         \
        if ((cs)->err)                                                                           \
            return;                                                                              \
    } while (0)
#define ERRCHK_NULL(cs)                                                                          \
    do {                                                                                         \
        if ((cs)->err)                                                                           \
            return NULL;                                                                         \
    } while (0)

/* Records the (first) error at tok, or warns.  A NULL tok means no place. */
void vcl_error(struct vcl_compile *cs, const struct vcl_token *tok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vcl_warn(struct vcl_compile *cs, const struct vcl_token *tok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets up / tears down a compile state (the tests of single stages use
 * these too).  fini hands the diagnostics to *diags or frees them. */
void vcl_cs_init(struct vcl_compile *cs, const struct vcl_options *opt, struct vcl_symtab *sym);
void vcl_cs_fini(struct vcl_compile *cs, struct vcl_diags **diags);

/* Reads a policy file through the options' reader (or stdio). */
int vcl_read_file(struct vcl_compile *cs, const char *path, char **text, size_t *len);

/* Stage entry points. */
/* Lexes source idx into its token array (ending with EOF); sets cs->err on a
 * lexical error. */
void vcl_lex(struct vcl_compile *cs, unsigned idx);
/* Adds a source (copies text) and returns its index. */
unsigned vcl_source_add(struct vcl_compile *cs, const char *name, const char *text, size_t len);
/* Parses source idx (lexing it first), appending declarations to cs->decls;
 * follows includes.  is_main: the file must start with `vcl 4.x;`. */
void vcl_parse(struct vcl_compile *cs, unsigned idx, bool is_main);
/* Checks the whole AST and rewrites conversions. */
void vcl_check(struct vcl_compile *cs);
/* Builds cs->prog from the checked AST. */
void vcl_codegen(struct vcl_compile *cs);

/* ------------------------------------------------------ symbols, funcs */

/* Built-in functions (and vmod functions), by id.  X(ID, "name", RET, min
 * args, max args, { arg types }, { arg names }, sub mask where allowed) */
#define VCL_FA(...) { __VA_ARGS__ }
#define VCL_FUNCS(X)                                                                             \
    X(REGSUB, "regsub", STRING, 3, 3, VCL_FA(VCL_T_STRING, VCL_T_REGEX, VCL_T_STRING),           \
      VCL_FA("str", "regex", "sub"), VCL_M_ALL)                                                  \
    X(REGSUBALL, "regsuball", STRING, 3, 3, VCL_FA(VCL_T_STRING, VCL_T_REGEX, VCL_T_STRING),     \
      VCL_FA("str", "regex", "sub"), VCL_M_ALL)                                                  \
    X(HASH_DATA, "hash_data", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("input"), VCL_M(HASH))    \
    X(SYNTHETIC, "synthetic", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("body"),                  \
      VCL_M(SYNTH) | VCL_M(BACKEND_ERROR))                                                       \
    X(BAN, "ban", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("expr"), VCL_M_ALL)                   \
    X(STD_LOG, "std.log", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("s"), VCL_M_ALL)              \
    X(STD_SYSLOG, "std.syslog", VOID, 2, 2, VCL_FA(VCL_T_INT, VCL_T_STRING),                     \
      VCL_FA("priority", "s"), VCL_M_ALL)                                                        \
    X(STD_TOLOWER, "std.tolower", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("s"), VCL_M_ALL)    \
    X(STD_TOUPPER, "std.toupper", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("s"), VCL_M_ALL)    \
    X(STD_QUERYSORT, "std.querysort", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("url"),         \
      VCL_M_ALL)                                                                                 \
    X(STD_COLLECT, "std.collect", VOID, 1, 2, VCL_FA(VCL_T_HEADER, VCL_T_STRING),                \
      VCL_FA("hdr", "sep"), VCL_M_TASK)                                                          \
    X(STD_DURATION, "std.duration", DURATION, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_DURATION),        \
      VCL_FA("s", "fallback"), VCL_M_ALL)                                                        \
    X(STD_INTEGER, "std.integer", INT, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_INT),                    \
      VCL_FA("s", "fallback"), VCL_M_ALL)                                                        \
    X(STD_REAL, "std.real", REAL, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_REAL),                        \
      VCL_FA("s", "fallback"), VCL_M_ALL)                                                        \
    X(STD_IP, "std.ip", IP, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_IP), VCL_FA("s", "fallback"),       \
      VCL_M_ALL)                                                                                 \
    X(STD_TIME, "std.time", TIME, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_TIME),                        \
      VCL_FA("s", "fallback"), VCL_M_ALL)                                                        \
    X(STD_GETENV, "std.getenv", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("name"), VCL_M_ALL)   \
    X(STD_FILEREAD, "std.fileread", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("path"),          \
      VCL_M_ALL)                                                                                 \
    X(STD_STRSTR, "std.strstr", STRING, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_STRING),                \
      VCL_FA("s1", "s2"), VCL_M_ALL)                                                             \
    X(STD_FNMATCH, "std.fnmatch", BOOL, 2, 5,                                                    \
      VCL_FA(VCL_T_STRING, VCL_T_STRING, VCL_T_BOOL, VCL_T_BOOL, VCL_T_BOOL),                    \
      VCL_FA("pattern", "subject", "pathname", "noescape", "period"), VCL_M_ALL)                 \
    X(STD_CACHE_REQ_BODY, "std.cache_req_body", BOOL, 1, 1, VCL_FA(VCL_T_BYTES),                 \
      VCL_FA("size"), VCL_M(RECV))                                                               \
    X(STD_HEALTHY, "std.healthy", BOOL, 1, 1, VCL_FA(VCL_T_BACKEND), VCL_FA("be"), VCL_M_ALL)    \
    X(STD_TIMESTAMP, "std.timestamp", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("s"), VCL_M_ALL)  \
    X(STD_BAN, "std.ban", BOOL, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("expr"), VCL_M_ALL)          \
    X(STD_BAN_ERROR, "std.ban_error", STRING, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"), VCL_M_ALL)  \
    X(STD_RANDOM, "std.random", REAL, 2, 2, VCL_FA(VCL_T_REAL, VCL_T_REAL), VCL_FA("lo", "hi"),  \
      VCL_M_ALL)                                                                                 \
    X(STD_ROUND, "std.round", REAL, 1, 1, VCL_FA(VCL_T_REAL), VCL_FA("r"), VCL_M_ALL)           \
    X(STD_REAL2INTEGER, "std.real2integer", INT, 2, 2, VCL_FA(VCL_T_REAL, VCL_T_INT),            \
      VCL_FA("r", "fallback"), VCL_M_ALL)                                                        \
    X(STD_REAL2TIME, "std.real2time", TIME, 2, 2, VCL_FA(VCL_T_REAL, VCL_T_TIME),                \
      VCL_FA("r", "fallback"), VCL_M_ALL)                                                        \
    X(STD_TIME2INTEGER, "std.time2integer", INT, 2, 2, VCL_FA(VCL_T_TIME, VCL_T_INT),            \
      VCL_FA("t", "fallback"), VCL_M_ALL)                                                        \
    X(STD_TIME2REAL, "std.time2real", REAL, 2, 2, VCL_FA(VCL_T_TIME, VCL_T_REAL),                \
      VCL_FA("t", "fallback"), VCL_M_ALL)                                                        \
    X(XKEY_PURGE, "xkey.purge", INT, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("keys"), VCL_M_CLIENT)   \
    X(XKEY_SOFTPURGE, "xkey.softpurge", INT, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("keys"),         \
      VCL_M_CLIENT)                                                                              \
    X(TLS_IS_TLS, "tls.is_tls", BOOL, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"), VCL_M_CLIENT)       \
    X(TLS_VERSION, "tls.version", STRING, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"), VCL_M_CLIENT)   \
    X(TLS_CIPHER, "tls.cipher", STRING, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"), VCL_M_CLIENT)     \
    X(TLS_AUTHORITY, "tls.authority", STRING, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"),             \
      VCL_M_CLIENT)                                                                              \
    X(COOKIE_PARSE, "cookie.parse", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("cookieheader"),    \
      VCL_M_TASK)                                                                                \
    X(COOKIE_GET, "cookie.get", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("cookiename"),        \
      VCL_M_TASK)                                                                                \
    X(COOKIE_ISSET, "cookie.isset", BOOL, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("cookiename"),      \
      VCL_M_TASK)                                                                                \
    X(COOKIE_SET, "cookie.set", VOID, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_STRING),                  \
      VCL_FA("cookiename", "value"), VCL_M_TASK)                                                 \
    X(COOKIE_DELETE, "cookie.delete", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("cookiename"),    \
      VCL_M_TASK)                                                                                \
    X(COOKIE_FILTER, "cookie.filter", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("filterstring"),  \
      VCL_M_TASK)                                                                                \
    X(COOKIE_KEEP, "cookie.keep", VOID, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("filterstring"),      \
      VCL_M_TASK)                                                                                \
    X(COOKIE_FILTER_RE, "cookie.filter_re", VOID, 1, 1, VCL_FA(VCL_T_REGEX),                     \
      VCL_FA("expression"), VCL_M_TASK)                                                          \
    X(COOKIE_KEEP_RE, "cookie.keep_re", VOID, 1, 1, VCL_FA(VCL_T_REGEX), VCL_FA("expression"),   \
      VCL_M_TASK)                                                                                \
    X(COOKIE_CLEAN, "cookie.clean", VOID, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"), VCL_M_TASK)     \
    X(COOKIE_GET_STRING, "cookie.get_string", STRING, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"),     \
      VCL_M_TASK)                                                                                \
    X(VAR_SET, "var.set", VOID, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_STRING),                        \
      VCL_FA("name", "string"), VCL_M_TASK)                                                      \
    X(VAR_GET, "var.get", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("name"), VCL_M_TASK)        \
    X(VAR_SET_INT, "var.set_int", VOID, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_INT),                   \
      VCL_FA("name", "value"), VCL_M_TASK)                                                       \
    X(VAR_GET_INT, "var.get_int", INT, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("name"), VCL_M_TASK)   \
    X(VAR_SET_REAL, "var.set_real", VOID, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_REAL),                \
      VCL_FA("name", "value"), VCL_M_TASK)                                                       \
    X(VAR_GET_REAL, "var.get_real", REAL, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("name"),            \
      VCL_M_TASK)                                                                                \
    X(VAR_SET_DURATION, "var.set_duration", VOID, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_DURATION),    \
      VCL_FA("name", "value"), VCL_M_TASK)                                                       \
    X(VAR_GET_DURATION, "var.get_duration", DURATION, 1, 1, VCL_FA(VCL_T_STRING),                \
      VCL_FA("name"), VCL_M_TASK)                                                                \
    X(VAR_CLEAR, "var.clear", VOID, 0, 0, VCL_FA(VCL_T_VOID), VCL_FA("x"), VCL_M_TASK)           \
    X(VAR_GLOBAL_SET, "var.global_set", VOID, 2, 2, VCL_FA(VCL_T_STRING, VCL_T_STRING),          \
      VCL_FA("name", "string"), VCL_M_ALL)                                                       \
    X(VAR_GLOBAL_GET, "var.global_get", STRING, 1, 1, VCL_FA(VCL_T_STRING), VCL_FA("name"),      \
      VCL_M_ALL)                                                                                 \
    X(DIR_BACKEND, "<director>.backend", BACKEND, 0, 1, VCL_FA(VCL_T_STRING), VCL_FA("key"),     \
      VCL_M_TASK)

enum vcl_func_id {
#define VCL_X_FN(id, name, ret, mn, mx, at, an, mask) VCL_FN_##id,
    VCL_FUNCS(VCL_X_FN)
#undef VCL_X_FN
    VCL_FN__MAX
};

struct vcl_func {
    const char *name;
    enum vcl_type ret;
    unsigned min_args, max_args;
    enum vcl_type args[5];
    const char *argnames[5];
    unsigned mask;
};
extern const struct vcl_func vcl_funcs[VCL_FN__MAX];

struct vcl_var_info {
    const char *name;
    enum vcl_type type;
    unsigned rd, wr;
};
extern const struct vcl_var_info vcl_vars[VCL_VAR__MAX];
struct vcl_where_info {
    const char *name;
    unsigned rd, wr;
};
extern const struct vcl_where_info vcl_wheres[VCL_WHERE__MAX];
/* Allowed actions per sub (bit per enum vcl_action). */
extern const unsigned vcl_sub_actions[VCL_SUB__MAX];
/* Vmods accel provides natively. */
bool vcl_vmod_known(struct vcl_str name);
/* Every vmod accel provides, comma-separated, for messages (static). */
const char *vcl_vmod_names(void);
/* Levenshtein distance, capped. */
unsigned vcl_edit_distance(const char *a, size_t alen, const char *b, size_t blen);

/* ------------------------------------------------------------ program */

enum vcl_opcode {
    OP_NOP,
    OP_CONST,   /* push consts[c] */
    OP_VAR,     /* push get_var(c) */
    OP_SETVAR,  /* pop, set_var(c) */
    OP_HDR,     /* push get_header(a, consts[c]) */
    OP_SETHDR,  /* pop, set_header(a, consts[c]) */
    OP_UNSETHDR,
    OP_POP,
    OP_JMP,     /* pc = c */
    OP_JF,      /* pop; if false pc = c */
    OP_JF_KEEP, /* if top false pc = c (keep it) else pop: && */
    OP_JT_KEEP, /* || */
    OP_NOT,
    OP_NEG,     /* a = type */
    OP_ARITH,   /* a = result type, b = op token */
    OP_CMP,     /* a = operand type, b = op token */
    OP_MATCH,   /* pop string, push bool; c = regex, a = negate */
    OP_ACL,     /* pop ip, push bool; c = acl, a = negate */
    OP_CONCAT,  /* pop c strings, push one */
    OP_CONV,    /* a = from type, b = to type */
    OP_CALL,    /* call custom sub at c */
    OP_RET,     /* return from custom sub */
    OP_RETURN,  /* a = action, b = 1 status, 2 reason, 4 duration (popped in reverse) */
    OP_FUNC,    /* c = function id, a = argc, b = aux (director index) */
    OP_END      /* end of a built-in sub without return: internal error */
};

struct vcl_insn {
    uint8_t op;
    uint8_t a;
    uint16_t b;
    uint32_t c;
    uint32_t line; /* source line (for errors and the listing) */
    uint32_t src;
};

struct vcl_acl_entry {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;
    bool neg;
    uint8_t addr[16];
    const char *text;
};
struct vcl_acl {
    const char *name;
    size_t n;
    struct vcl_acl_entry *e; /* sorted by bits, longest first */
};

struct vcl_regex {
    const char *src;
    void *code; /* pcre2_code_8 * */
    uint32_t ncap;
};

struct vcl_custom_sub {
    const char *name;
    uint32_t entry;
};

#define VCL_GLOBAL_VARS 32
#define VCL_GLOBAL_VAR_LEN 256
struct vcl_global_var {
    char name[64];
    size_t len;
    char value[VCL_GLOBAL_VAR_LEN];
};

/* The compiled program.  Immutable after compile, except the reference
 * count and var.global_* slots (behind their mutex).  Holders of a
 * reference: whoever compiled it, plus each request running it
 * (vcl_program_ref). */
struct vcl_program {
    unsigned magic;
#define VCL_PROGRAM_MAGIC 0x8e4b2a61u
    atomic_uint refs;
    struct vcl_pool *pool; /* names, strings, tables */
    struct vcl_insn *code;
    size_t ncode, capcode;
    uint32_t entry[VCL_SUB__MAX];
    bool defined[VCL_SUB__MAX];
    struct vcl_value *consts;
    size_t nconsts, capconsts;
    struct vcl_regex *re;
    size_t nre, capre;
    uint32_t max_ovec;
    struct vcl_acl *acls;
    size_t nacls;
    struct vcl_backend_decl *backends;
    size_t nbackends;
    struct vcl_probe_decl *probes;
    size_t nprobes;
    struct vcl_director_decl *directors;
    size_t ndirectors;
    struct vcl_custom_sub *subs;
    size_t nsubs;
    char **srcnames;
    size_t nsrcnames;
    unsigned max_restarts, max_retries;
    double hfp_ttl;
    /* var.global_set/get */
    void *gmtx; /* pthread_mutex_t * */
    struct vcl_global_var *globals;
    /* vcl_program_set_host_data(): the daemon's per-program state */
    void *host_data;
    void (*host_fini)(void *);
};

/* Regex helpers (vcl_re.c). */
int vcl_re_compile(struct vcl_program *p, const char *src, size_t len, char *err, size_t errlen,
                   uint32_t *idx);
void vcl_re_free_all(struct vcl_program *p);

/* ---------------------------------------------------- run-time helpers */

/* Arena: strings grow from arena->used upwards; regex memory comes from the
 * top down to ctx->_top.  NULL / VCL_ENOSPC when they would meet. */
void *vcl_ws_alloc(struct vcl_ctx *ctx, size_t n); /* 8-aligned */
int vcl_ws_dup(struct vcl_ctx *ctx, struct vcl_str in, struct vcl_str *out);
/* An open string at the arena's free space: add pieces, then end (commits). */
struct vcl_sb {
    struct vcl_ctx *ctx;
    char *b;
    size_t len, cap;
    bool over;
};
void vcl_sb_begin(struct vcl_sb *sb, struct vcl_ctx *ctx);
void vcl_sb_add(struct vcl_sb *sb, const char *p, size_t n);
int vcl_sb_end(struct vcl_sb *sb, struct vcl_str *out);
/* Matches regex re against s from offset start.  Returns 1 and sets *ovec
 * (pairs, ncap+1 of them) on a match, 0 on no match, or a negative VCL_E*
 * (ctx->error set). */
int vcl_re_match(const struct vcl_program *p, struct vcl_ctx *ctx, uint32_t re, struct vcl_str s,
                 size_t start, const size_t **ovec);
/* Runs built-in function id (vcl_vmod.c).  args[] are in parameter order
 * (a HEADER parameter takes two slots: INT where, STRING name). */
int vcl_vmod_call(const struct vcl_program *p, struct vcl_ctx *ctx, unsigned id, unsigned aux,
                  struct vcl_value *args, struct vcl_value *ret);
/* Converts v to its string form in the arena (or static text). */
int vcl_to_string(const struct vcl_program *p, struct vcl_ctx *ctx, const struct vcl_value *v,
                  struct vcl_str *out);

/* Text of conversions used by the VM and the dump. */
int vcl_fmt_ip(const struct vcl_ip *ip, char *buf, size_t len);
bool vcl_parse_ip(const char *s, size_t len, struct vcl_ip *out);
bool vcl_parse_duration(const char *s, size_t len, double *out);
const char *vcl_builtin_text(double hfm_ttl, char *buf, size_t len);

#endif /* VCL_INT_H */
