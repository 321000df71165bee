/*
 * ban.c -- ban expressions: the parser, the canonical printer and the
 * evaluator.  See ban.h for the language.
 *
 * The parser is a hand-written scanner over the caller's bytes (Varnish's VCL
 * compiler style: positions into the source, stop at the first error).  Each
 * condition is checked completely at parse time (field, operator allowed for
 * the field, argument form, regex compiles), so ban_match() never fails.
 */
#include "ban.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define BAN_MAGIC 0x3c9a61e5

/* PCRE2 limits while matching: a ban from an operator must not stall a
 * worker on a pathological pattern.  Hitting one counts as a match (ban.h). */
#define BAN_RE_MATCH_LIMIT   1000000u
#define BAN_RE_DEPTH_LIMIT   10000u
#define BAN_RE_HEAP_KIB      4096u
#define BAN_MAX_DURATION     1e15   /* seconds: ~31 million years */

enum ban_field {
    BF_REQ_URL,
    BF_REQ_HTTP,
    BF_OBJ_STATUS,
    BF_OBJ_HTTP,
    BF_OBJ_TTL,
    BF_OBJ_AGE,
};

enum ban_op {
    BO_EQ,
    BO_NE,
    BO_MATCH,
    BO_NMATCH,
    BO_LT,
    BO_GT,
    BO_LE,
    BO_GE,
};

static const char *const op_str[] = { "==", "!=", "~", "!~", "<", ">", "<=", ">=" };

struct ban_cond {
    enum ban_field field;
    enum ban_op op;
    char *name;             /* header name, lowercased, NUL-terminated */
    size_t namelen;
    char *arg;              /* string argument, unescaped, NUL-terminated */
    size_t arglen;
    double num;             /* obj.status, obj.ttl, obj.age */
    pcre2_code *re;         /* ~ and !~ */
    char *text;             /* canonical text of this condition */
};

struct ban {
    unsigned magic;
    unsigned ncond;
    bool uses_req;
    struct ban_cond *cond;
    char *text;
};

/*--------------------------------------------------------------------
 * A tiny growable string for the canonical text (parse time only).
 */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void
sb_add(struct sbuf *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (sb->len + n + 1 > cap)
            cap *= 2;
        sb->p = ac_xrealloc(sb->p, cap);
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void
sb_str(struct sbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

/*--------------------------------------------------------------------
 * Parser.
 */

struct pstate {
    const char *p;
    size_t len;
    size_t pos;
    char *err;
    size_t errlen;
};

static bool
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
skip_ws(struct pstate *ps)
{
    while (ps->pos < ps->len && is_ws(ps->p[ps->pos]))
        ps->pos++;
}

/* "col N: <msg> near '<up to 20 bytes>'" or "... at end of text". */
static int
perr(struct pstate *ps, size_t at, const char *fmt, ...)
{
    char msg[256], near[24];
    va_list ap;
    size_t n, i;

    if (ps->err == NULL || ps->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at >= ps->len) {
        snprintf(ps->err, ps->errlen, "col %zu: %s at end of text", at + 1, msg);
        return -1;
    }
    n = AC_MIN(ps->len - at, (size_t)20);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)ps->p[at + i];
        near[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    near[n] = '\0';
    snprintf(ps->err, ps->errlen, "col %zu: %s near '%s%s'", at + 1, msg, near,
             ps->len - at > n ? "..." : "");
    return -1;
}

/* Header-name bytes: RFC 9110 tchar minus the operator starters ! ~ & |. */
static bool
is_name_char(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-_.#$%'*+^`", c) != NULL;
}

static bool
is_field_end(char c)
{
    return is_ws(c) || strchr("=!~<>\"&|", c) != NULL;
}

static bool
prefix_caseeq(struct ac_slice s, const char *pfx)
{
    size_t n = strlen(pfx);

    return s.len >= n && ac_slice_caseeq(AC_SLICE(s.p, n), AC_SLICE(pfx, n));
}

static bool
is_string_field(enum ban_field f)
{
    return f == BF_REQ_URL || f == BF_REQ_HTTP || f == BF_OBJ_HTTP;
}

static int
parse_field(struct pstate *ps, struct ban_cond *c)
{
    static const char expect[] =
        "expected field (req.url, req.http.NAME, obj.status, obj.http.NAME, obj.ttl, obj.age)";
    size_t start = ps->pos, hdr = 0;
    struct ac_slice f;

    while (ps->pos < ps->len && !is_field_end(ps->p[ps->pos]))
        ps->pos++;
    f = AC_SLICE(ps->p + start, ps->pos - start);
    if (f.len == 0)
        return perr(ps, start, "%s", expect);
    if (ac_slice_caseeq(f, AC_LIT("req.url"))) {
        c->field = BF_REQ_URL;
    } else if (ac_slice_caseeq(f, AC_LIT("obj.status"))) {
        c->field = BF_OBJ_STATUS;
    } else if (ac_slice_caseeq(f, AC_LIT("obj.ttl"))) {
        c->field = BF_OBJ_TTL;
    } else if (ac_slice_caseeq(f, AC_LIT("obj.age"))) {
        c->field = BF_OBJ_AGE;
    } else if (prefix_caseeq(f, "req.http.")) {
        c->field = BF_REQ_HTTP;
        hdr = strlen("req.http.");
    } else if (prefix_caseeq(f, "obj.http.")) {
        c->field = BF_OBJ_HTTP;
        hdr = strlen("obj.http.");
    } else {
        return perr(ps, start, "unknown field '%.*s'; %s", (int)AC_MIN(f.len, (size_t)64), f.p,
                    expect);
    }
    if (hdr != 0) {
        if (f.len == hdr)
            return perr(ps, start, "expected a header name after '%.*s'", (int)hdr, f.p);
        for (size_t i = hdr; i < f.len; i++)
            if (!is_name_char(f.p[i]))
                return perr(ps, start + i, "invalid character in header name");
        c->namelen = f.len - hdr;
        c->name = ac_xmalloc(c->namelen + 1);
        for (size_t i = 0; i < c->namelen; i++) {
            char ch = f.p[hdr + i];
            c->name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        c->name[c->namelen] = '\0';
    }
    return 0;
}

static int
parse_op(struct pstate *ps, struct ban_cond *c)
{
    static const struct { const char *s; enum ban_op op; } ops[] = {
        { "==", BO_EQ }, { "!=", BO_NE }, { "!~", BO_NMATCH }, { "<=", BO_LE },
        { ">=", BO_GE }, { "~", BO_MATCH }, { "<", BO_LT }, { ">", BO_GT },
    };
    size_t start = ps->pos;

    for (size_t i = 0; i < AC_ARRAY_LEN(ops); i++) {
        size_t n = strlen(ops[i].s);
        if (ps->len - ps->pos >= n && memcmp(ps->p + ps->pos, ops[i].s, n) == 0) {
            c->op = ops[i].op;
            ps->pos += n;
            break;
        }
    }
    if (ps->pos == start)
        return perr(ps, start, "expected operator (== != ~ !~ < > <= >=)");
    if (is_string_field(c->field) && c->op >= BO_LT)
        return perr(ps, start, "operator '%s' needs a numeric field (obj.status, obj.ttl, obj.age); "
                    "expected == != ~ !~", op_str[c->op]);
    if (!is_string_field(c->field) && (c->op == BO_MATCH || c->op == BO_NMATCH))
        return perr(ps, start, "operator '%s' needs a string field; expected == != < > <= >=",
                    op_str[c->op]);
    return 0;
}

/* Reads a quoted or bare argument into c->arg (unescaped). */
static int
parse_arg(struct pstate *ps, struct ban_cond *c)
{
    size_t start = ps->pos, n = 0;

    if (ps->pos >= ps->len)
        return perr(ps, start, "expected argument");
    c->arg = ac_xmalloc(ps->len - ps->pos + 1);
    if (ps->p[ps->pos] == '"') {
        ps->pos++;
        for (;;) {
            char ch;
            if (ps->pos >= ps->len)
                return perr(ps, start, "unterminated quoted string");
            ch = ps->p[ps->pos++];
            if (ch == '"')
                break;
            if (ch == '\\' && ps->pos < ps->len &&
                (ps->p[ps->pos] == '"' || ps->p[ps->pos] == '\\'))
                ch = ps->p[ps->pos++];
            c->arg[n++] = ch;
        }
        /* "abc"def is one malformed token, not an argument and garbage;
         * "abc"&& is fine */
        if (ps->pos < ps->len && !is_ws(ps->p[ps->pos]) && ps->p[ps->pos] != '&' &&
            ps->p[ps->pos] != '|')
            return perr(ps, ps->pos, "expected whitespace after quoted string");
    } else {
        if (ps->len - ps->pos >= 2 &&
            (memcmp(ps->p + ps->pos, "&&", 2) == 0 || memcmp(ps->p + ps->pos, "||", 2) == 0))
            return perr(ps, start, "expected argument");
        while (ps->pos < ps->len && !is_ws(ps->p[ps->pos]))
            c->arg[n++] = ps->p[ps->pos++];
    }
    c->arg[n] = '\0';
    c->arglen = n;
    return 0;
}

static int
parse_status(struct pstate *ps, size_t at, struct ban_cond *c)
{
    unsigned v = 0;

    if (c->arglen == 0 || c->arglen > 3)
        return perr(ps, at, "expected a status code (0..999)");
    for (size_t i = 0; i < c->arglen; i++) {
        if (c->arg[i] < '0' || c->arg[i] > '9')
            return perr(ps, at, "expected a status code (0..999)");
        v = v * 10 + (unsigned)(c->arg[i] - '0');
    }
    c->num = v;
    return 0;
}

/* [-]DIGITS[.DIGITS]UNIT.  Precision is capped at a microsecond (6 fraction
 * digits, 3 for ms) and the size at BAN_MAX_DURATION, so the canonical text
 * ("%.6f" seconds) is exact and parses back to the same text. */
static int
parse_duration(struct pstate *ps, size_t at, struct ban_cond *c)
{
    static const struct { const char *u; double mul; } units[] = {
        { "ms", 0.001 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
        { "w", 604800 }, { "y", 31536000 },
    };
    static const char expect[] = "expected a duration: number and unit (ms s m h d w y), e.g. 10s";
    const char *s = c->arg;
    size_t i = 0, id = 0, fd = 0;
    char num[32];               /* sign, 17 digits, point, 6 digits, NUL: 26 */

    if (s[i] == '-')
        i++;
    while (s[i] >= '0' && s[i] <= '9')
        i++, id++;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, fd++;
    }
    if (id == 0 || id > 17 || fd > 6)
        return perr(ps, at, "%s", expect);
    memcpy(num, s, i);
    num[i] = '\0';
    for (size_t u = 0; u < AC_ARRAY_LEN(units); u++) {
        if (strcmp(s + i, units[u].u) == 0) {
            if (u == 0 && fd > 3)
                return perr(ps, at, "duration more precise than a microsecond");
            c->num = strtod(num, NULL) * units[u].mul;
            if (c->num > BAN_MAX_DURATION || c->num < -BAN_MAX_DURATION)
                return perr(ps, at, "duration out of range (at most %.0fs)", BAN_MAX_DURATION);
            if (c->num == 0)
                c->num = 0;   /* no negative zero in the canonical text */
            return 0;
        }
    }
    return perr(ps, at, "%s", expect);
}

static int
compile_re(struct pstate *ps, size_t at, struct ban_cond *c)
{
    int ec;
    PCRE2_SIZE eo;
    PCRE2_UCHAR msg[160];

    /* PCRE2_MATCH_INVALID_UTF: with (*UTF), bytes that are not UTF-8 just
     * don't match instead of making pcre2_match() fail. */
    c->re = pcre2_compile((PCRE2_SPTR)c->arg, c->arglen, PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (c->re == NULL) {
        if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", ec);
        return perr(ps, at, "bad regex: %s (at offset %zu of the pattern)", (char *)msg, (size_t)eo);
    }
    (void)pcre2_jit_compile(c->re, PCRE2_JIT_COMPLETE);   /* optional: falls back to the interpreter */
    return 0;
}

static void
print_cond(struct ban_cond *c)
{
    static const char *const fname[] = {
        [BF_REQ_URL] = "req.url", [BF_REQ_HTTP] = "req.http.", [BF_OBJ_STATUS] = "obj.status",
        [BF_OBJ_HTTP] = "obj.http.", [BF_OBJ_TTL] = "obj.ttl", [BF_OBJ_AGE] = "obj.age",
    };
    struct sbuf sb = { NULL, 0, 0 };
    char tmp[64];

    sb_str(&sb, fname[c->field]);
    if (c->name != NULL)
        sb_add(&sb, c->name, c->namelen);
    sb_str(&sb, " ");
    sb_str(&sb, op_str[c->op]);
    sb_str(&sb, " ");
    if (c->field == BF_OBJ_STATUS) {
        snprintf(tmp, sizeof tmp, "%u", (unsigned)c->num);
        sb_str(&sb, tmp);
    } else if (c->field == BF_OBJ_TTL || c->field == BF_OBJ_AGE) {
        size_t n = (size_t)snprintf(tmp, sizeof tmp, "%.6f", c->num);
        while (tmp[n - 1] == '0')
            n--;
        if (tmp[n - 1] == '.')
            n--;
        sb_add(&sb, tmp, n);
        sb_str(&sb, "s");
    } else {
        sb_str(&sb, "\"");
        for (size_t i = 0; i < c->arglen; i++) {
            if (c->arg[i] == '"' || c->arg[i] == '\\')
                sb_str(&sb, "\\");
            sb_add(&sb, &c->arg[i], 1);
        }
        sb_str(&sb, "\"");
    }
    c->text = sb.p;
}

static void
cond_fini(struct ban_cond *c)
{
    free(c->name);
    free(c->arg);
    free(c->text);
    if (c->re != NULL)
        pcre2_code_free(c->re);
    memset(c, 0, sizeof *c);
}

static int
cond_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ban_cond *)a)->text, ((const struct ban_cond *)b)->text);
}

static int
parse_cond(struct pstate *ps, struct ban_cond *c)
{
    size_t at;

    if (parse_field(ps, c) != 0)
        return -1;
    skip_ws(ps);
    if (parse_op(ps, c) != 0)
        return -1;
    skip_ws(ps);
    at = ps->pos;
    if (parse_arg(ps, c) != 0)
        return -1;
    switch (c->field) {
    case BF_OBJ_STATUS:
        if (parse_status(ps, at, c) != 0)
            return -1;
        break;
    case BF_OBJ_TTL:
    case BF_OBJ_AGE:
        if (parse_duration(ps, at, c) != 0)
            return -1;
        break;
    default:
        if ((c->op == BO_MATCH || c->op == BO_NMATCH) && compile_re(ps, at, c) != 0)
            return -1;
        break;
    }
    print_cond(c);
    return 0;
}

int
ban_parse(struct ac_slice text, struct ban **out, char *err, size_t errlen)
{
    struct pstate ps = { text.p, text.len, 0, err, errlen };
    struct ban_cond cond[BAN_MAX_COND];
    unsigned n = 0, k;
    struct ban *b;
    struct sbuf sb = { NULL, 0, 0 };

    AC_NOTNULL(out);
    AC_ASSERT(text.p != NULL || text.len == 0);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (text.len > BAN_MAX_TEXT)
        return perr(&ps, 0, "ban text longer than %d bytes", BAN_MAX_TEXT);
    if (text.len > 0 && memchr(text.p, '\0', text.len) != NULL)
        return perr(&ps, (size_t)((const char *)memchr(text.p, '\0', text.len) - text.p),
                    "NUL byte in ban text");
    memset(cond, 0, sizeof cond);
    skip_ws(&ps);
    if (ps.pos >= ps.len) {
        perr(&ps, ps.pos, "empty ban: expected a condition such as req.url ~ \"^/\"");
        return -1;
    }
    for (;;) {
        if (n == BAN_MAX_COND) {
            perr(&ps, ps.pos, "more than %d conditions", BAN_MAX_COND);
            goto fail;
        }
        if (parse_cond(&ps, &cond[n++]) != 0)
            goto fail;
        skip_ws(&ps);
        if (ps.pos >= ps.len)
            break;
        if (ps.len - ps.pos >= 2 && memcmp(ps.p + ps.pos, "&&", 2) == 0) {
            ps.pos += 2;
            skip_ws(&ps);
            continue;
        }
        if (ps.len - ps.pos >= 2 && memcmp(ps.p + ps.pos, "||", 2) == 0) {
            perr(&ps, ps.pos, "'||' is not supported: bans only join conditions with '&&' "
                 "(send one ban per alternative)");
            goto fail;
        }
        perr(&ps, ps.pos, "expected '&&' or end of ban");
        goto fail;
    }

    /* Canonical order; identical conditions collapse to one. */
    qsort(cond, n, sizeof cond[0], cond_cmp);
    for (unsigned i = k = 0; i < n; i++) {
        if (k > 0 && strcmp(cond[k - 1].text, cond[i].text) == 0) {
            cond_fini(&cond[i]);
            continue;
        }
        if (k != i) {
            cond[k] = cond[i];
            memset(&cond[i], 0, sizeof cond[i]);
        }
        k++;
    }
    n = k;

    b = ac_xcalloc(1, sizeof *b);
    b->magic = BAN_MAGIC;
    b->ncond = n;
    b->cond = ac_xcalloc(n, sizeof *b->cond);
    memcpy(b->cond, cond, n * sizeof *b->cond);
    for (unsigned i = 0; i < n; i++) {
        if (i > 0)
            sb_str(&sb, " && ");
        sb_str(&sb, cond[i].text);
        if (cond[i].field == BF_REQ_URL || cond[i].field == BF_REQ_HTTP)
            b->uses_req = true;
    }
    b->text = sb.p;
    *out = b;
    return 0;

fail:
    for (unsigned i = 0; i < n; i++)
        cond_fini(&cond[i]);
    return -1;
}

void
ban_free(struct ban **bp)
{
    struct ban *b;

    AC_NOTNULL(bp);
    b = *bp;
    if (b == NULL)
        return;
    *bp = NULL;
    AC_CHECK_OBJ(b, BAN_MAGIC);
    for (unsigned i = 0; i < b->ncond; i++)
        cond_fini(&b->cond[i]);
    free(b->cond);
    free(b->text);
    b->magic = 0;
    free(b);
}

const char *
ban_text(const struct ban *b)
{
    AC_CHECK_OBJ(b, BAN_MAGIC);
    return b->text;
}

bool
ban_uses_req(const struct ban *b)
{
    AC_CHECK_OBJ(b, BAN_MAGIC);
    return b->uses_req;
}

/*--------------------------------------------------------------------
 * Evaluation.
 *
 * One PCRE2 match data per thread (an ovector of one pair: we only ask
 * "does it match"), created on first use and freed by a pthread key
 * destructor at thread exit.  The match context (limits) is created once and
 * only read afterwards.
 */

static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static pthread_key_t re_key;
static pcre2_match_context *re_mctx;
static _Thread_local pcre2_match_data *re_md;

static void
re_md_destroy(void *p)
{
    pcre2_match_data_free(p);
    re_md = NULL;   /* this thread's; a later ban_match on it would make a new one */
}

static void
re_init(void)
{
    AC_ZERO(pthread_key_create(&re_key, re_md_destroy));
    re_mctx = pcre2_match_context_create(NULL);
    AC_NOTNULL(re_mctx);
    AC_ZERO(pcre2_set_match_limit(re_mctx, BAN_RE_MATCH_LIMIT));
    AC_ZERO(pcre2_set_depth_limit(re_mctx, BAN_RE_DEPTH_LIMIT));
    AC_ZERO(pcre2_set_heap_limit(re_mctx, BAN_RE_HEAP_KIB));
}

/* 1 match, 0 no match, -1 PCRE2 error (limits). */
static int
re_match(const pcre2_code *re, struct ac_slice s)
{
    int rc;

    if (re_md == NULL) {
        AC_ZERO(pthread_once(&re_once, re_init));
        re_md = pcre2_match_data_create(1, NULL);
        AC_NOTNULL(re_md);
        AC_ZERO(pthread_setspecific(re_key, re_md));
    }
    rc = pcre2_match(re, (PCRE2_SPTR)(s.len ? s.p : ""), s.len, 0, 0, re_md, re_mctx);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    return -1;
}

static bool
num_cmp(enum ban_op op, double v, double arg)
{
    switch (op) {
    case BO_EQ: return v == arg;
    case BO_NE: return v != arg;
    case BO_LT: return v < arg;
    case BO_GT: return v > arg;
    case BO_LE: return v <= arg;
    case BO_GE: return v >= arg;
    default: AC_UNREACHABLE("string operator on a number");
    }
}

static bool
cond_match(const struct ban_cond *c, const struct ban_obj *o)
{
    struct ac_slice v = { NULL, 0 }, name = AC_SLICE(c->name, c->namelen);
    bool present = false;
    int m;

    switch (c->field) {
    case BF_OBJ_STATUS:
        return num_cmp(c->op, (double)o->status, c->num);
    case BF_OBJ_TTL:
        return num_cmp(c->op, o->ttl_left, c->num);
    case BF_OBJ_AGE:
        return num_cmp(c->op, o->age, c->num);
    case BF_REQ_URL:
        v = o->url;
        present = true;
        break;
    case BF_REQ_HTTP:
        if (o->host.len > 0 && ac_slice_eq(name, AC_LIT("host"))) {
            v = o->host;
            present = true;
        } else if (o->req_header != NULL) {
            present = o->req_header(o->arg, name, &v);
        }
        break;
    case BF_OBJ_HTTP:
        if (o->obj_header != NULL)
            present = o->obj_header(o->arg, name, &v);
        break;
    }
    switch (c->op) {
    case BO_EQ:
        return present && ac_slice_eq(v, AC_SLICE(c->arg, c->arglen));
    case BO_NE:
        return !present || !ac_slice_eq(v, AC_SLICE(c->arg, c->arglen));
    case BO_MATCH:
    case BO_NMATCH:
        if (!present)
            return c->op == BO_NMATCH;
        m = re_match(c->re, v);
        if (m < 0)
            return true;   /* err towards invalidating (ban.h) */
        return c->op == BO_MATCH ? m == 1 : m == 0;
    default:
        AC_UNREACHABLE("numeric operator on a string");
    }
}

bool
ban_match(const struct ban *b, const struct ban_obj *o)
{
    AC_CHECK_OBJ(b, BAN_MAGIC);
    AC_NOTNULL(o);
    for (unsigned i = 0; i < b->ncond; i++)
        if (!cond_match(&b->cond[i], o))
            return false;
    return true;
}
