/*
 * vcl_lex.c -- source text to tokens.
 *
 * Tokens keep begin/end pointers into the source (Varnish VCC), so messages
 * can quote them and put a caret under them.  Identifiers may contain '.'
 * and '-' as in VCL (req.http.Accept-Encoding is one token).  Literals are
 * decoded here: "strings" and {"long strings"} (no escapes in VCL), integers,
 * reals, durations (ms s m h d w y) and bytes (B KB MB GB TB).
 */
#include "vcl.h"
#include "vcl_int.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lexer {
    struct vcl_compile *cs;
    struct vcl_source *src;
    unsigned idx;
    const char *p, *end;
    unsigned line;
    const char *line_start;
    size_t cap;
};

static void
lex_err(struct lexer *lx, const char *at, const char *fmt, const char *arg)
{
    struct vcl_token t;

    memset(&t, 0, sizeof(t));
    t.b = at;
    t.e = at < lx->end ? at + 1 : at;
    t.src = lx->idx;
    t.line = lx->line;
    t.col = (unsigned)(at - lx->line_start) + 1;
    vcl_error(lx->cs, &t, fmt, arg);
}

static struct vcl_token *
push(struct lexer *lx, enum vcl_tok_kind k, const char *b, const char *e, unsigned line,
     unsigned col)
{
    struct vcl_source *s = lx->src;
    struct vcl_token *t;

    if (s->ntoks == lx->cap) {
        lx->cap = lx->cap ? lx->cap * 2 : 256;
        s->toks = vcl_xrealloc(s->toks, lx->cap * sizeof(*s->toks));
    }
    t = &s->toks[s->ntoks++];
    memset(t, 0, sizeof(*t));
    t->kind = k;
    t->b = b;
    t->e = e;
    t->src = lx->idx;
    t->line = line;
    t->col = col;
    return t;
}

static bool
is_ident_start(int c)
{
    return isalpha(c) || c == '_';
}

static bool
is_ident(int c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* Skips blanks and comments (//, #, / * * /), counting lines.  Returns false
 * on an unterminated comment (error set). */
static bool
skip_space(struct lexer *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;

        if (c == '\n') {
            lx->line++;
            lx->p++;
            lx->line_start = lx->p;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            lx->p++;
        } else if (c == '#' || (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '/')) {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
            const char *start = lx->p;
            unsigned sl = lx->line;
            const char *sls = lx->line_start;

            lx->p += 2;
            while (lx->p < lx->end && !(*lx->p == '*' && lx->p + 1 < lx->end && lx->p[1] == '/')) {
                if (*lx->p == '\n') {
                    lx->line++;
                    lx->line_start = lx->p + 1;
                }
                lx->p++;
            }
            if (lx->p >= lx->end) {
                lx->line = sl;
                lx->line_start = sls;
                lex_err(lx, start, "unterminated /* comment%s", "");
                return false;
            }
            lx->p += 2;
        } else {
            break;
        }
    }
    return true;
}

static const struct {
    const char *suffix;
    double mult;
} dur_units[] = {
    {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 604800}, {"y", 31536000},
};
static const struct {
    const char *suffix;
    double mult;
} byte_units[] = {
    {"B", 1}, {"KB", 1024.0}, {"MB", 1048576.0}, {"GB", 1073741824.0}, {"TB", 1099511627776.0},
};

/* A number, possibly with a duration or bytes unit glued to it. */
static void
lex_number(struct lexer *lx, unsigned line, unsigned col)
{
    const char *b = lx->p, *q = lx->p;
    bool real = false;
    struct vcl_token *t;
    char buf[64];
    size_t n, ulen;
    double v;

    while (q < lx->end && isdigit((unsigned char)*q))
        q++;
    if (q + 1 < lx->end && *q == '.' && isdigit((unsigned char)q[1])) {
        real = true;
        q++;
        while (q < lx->end && isdigit((unsigned char)*q))
            q++;
    }
    n = (size_t)(q - b);
    if (n >= sizeof(buf)) {
        lex_err(lx, b, "number too long%s", "");
        return;
    }
    memcpy(buf, b, n);
    buf[n] = '\0';
    v = strtod(buf, NULL);
    ulen = 0;
    while (q + ulen < lx->end && isalpha((unsigned char)q[ulen]))
        ulen++;
    if (ulen > 0) {
        for (size_t i = 0; i < VCL_ARRAY_LEN(dur_units); i++) {
            if (strlen(dur_units[i].suffix) == ulen && memcmp(q, dur_units[i].suffix, ulen) == 0) {
                t = push(lx, VCL_TOK_DURATION, b, q + ulen, line, col);
                t->d = v * dur_units[i].mult;
                lx->p = q + ulen;
                return;
            }
        }
        for (size_t i = 0; i < VCL_ARRAY_LEN(byte_units); i++) {
            if (strlen(byte_units[i].suffix) == ulen &&
                memcmp(q, byte_units[i].suffix, ulen) == 0) {
                t = push(lx, VCL_TOK_BYTES, b, q + ulen, line, col);
                t->d = v * byte_units[i].mult;
                t->i = t->d > 9.2e18 ? INT64_MAX : (int64_t)t->d;
                lx->p = q + ulen;
                return;
            }
        }
        lex_err(lx, q,
                "unknown unit after number (durations: ms s m h d w y; bytes: B KB MB GB TB)%s",
                "");
        return;
    }
    if (!real && n > 18) {
        lex_err(lx, b, "integer too large%s", "");
        return;
    }
    t = push(lx, real ? VCL_TOK_REAL : VCL_TOK_INT, b, q, line, col);
    t->d = v;
    t->i = real ? (int64_t)v : strtoll(buf, NULL, 10);
    lx->p = q;
}

/* """...""" (any lines, Varnish 6), {"..."} (any lines), ending with the
 * closing delimiter of len bytes. */
static void
lex_long_string(struct lexer *lx, unsigned line, unsigned col, const char *close, size_t len)
{
    const char *b = lx->p, *q = b + len;
    unsigned nl = 0;
    const char *ls = lx->line_start;
    struct vcl_token *t;

    while (q + len <= lx->end && memcmp(q, close, len) != 0) {
        if (*q == '\n') {
            nl++;
            ls = q + 1;
        }
        q++;
    }
    if (q + len > lx->end) {
        lex_err(lx, b, "unterminated long string %s", len == 3 ? "\"\"\"...\"\"\"" : "{\"...\"}");
        return;
    }
    t = push(lx, VCL_TOK_STRING, b, q + len, line, col);
    t->s.p = b + len;
    t->s.len = (size_t)(q - b - len);
    lx->line += nl;
    lx->line_start = ls;
    lx->p = q + len;
}

/* "..." (one line), or a long string. */
static void
lex_string(struct lexer *lx, unsigned line, unsigned col)
{
    const char *b = lx->p;
    struct vcl_token *t;

    if (lx->end - b >= 3 && memcmp(b, "\"\"\"", 3) == 0) {
        lex_long_string(lx, line, col, "\"\"\"", 3);
        return;
    }
    if (*b == '{') {
        lex_long_string(lx, line, col, "\"}", 2);
        return;
    }
    if (*b == '"') {
        const char *q = b + 1;

        while (q < lx->end && *q != '"' && *q != '\n')
            q++;
        if (q >= lx->end || *q != '"') {
            lex_err(lx, b,
                    "unterminated string (a \"string\" must end on its line; use {\"...\"} for "
                    "long strings)%s",
                    "");
            return;
        }
        t = push(lx, VCL_TOK_STRING, b, q + 1, line, col);
        t->s.p = b + 1;
        t->s.len = (size_t)(q - b - 1);
        lx->p = q + 1;
        return;
    }
    VCL_UNREACHABLE("string start");
}

/* Operators and punctuation: sets *k and *len, or reports the character. */
static bool
lex_punct(struct lexer *lx, const char *b, char c, char d, enum vcl_tok_kind *kp, size_t *lenp)
{
    enum vcl_tok_kind k;
    size_t len = 1;

    switch (c) {
    case '{':
        k = VCL_TOK_LBRACE;
        break;
    case '}':
        k = VCL_TOK_RBRACE;
        break;
    case '(':
        k = VCL_TOK_LPAREN;
        break;
    case ')':
        k = VCL_TOK_RPAREN;
        break;
    case ';':
        k = VCL_TOK_SEMI;
        break;
    case ',':
        k = VCL_TOK_COMMA;
        break;
    case '.':
        k = VCL_TOK_DOT;
        break;
    case '~':
        k = VCL_TOK_MATCH;
        break;
    case '*':
        k = VCL_TOK_STAR;
        break;
    case '/':
        k = VCL_TOK_SLASH;
        break;
    case '=':
        k = d == '=' ? VCL_TOK_EQ : VCL_TOK_ASSIGN;
        len = d == '=' ? 2 : 1;
        break;
    case '!':
        k = d == '=' ? VCL_TOK_NE : d == '~' ? VCL_TOK_NOMATCH : VCL_TOK_NOT;
        len = (d == '=' || d == '~') ? 2 : 1;
        break;
    case '<':
        k = d == '=' ? VCL_TOK_LE : VCL_TOK_LT;
        len = d == '=' ? 2 : 1;
        break;
    case '>':
        k = d == '=' ? VCL_TOK_GE : VCL_TOK_GT;
        len = d == '=' ? 2 : 1;
        break;
    case '+':
        k = d == '=' ? VCL_TOK_PLUSEQ : VCL_TOK_PLUS;
        len = d == '=' ? 2 : 1;
        break;
    case '-':
        k = d == '=' ? VCL_TOK_MINUSEQ : VCL_TOK_MINUS;
        len = d == '=' ? 2 : 1;
        break;
    case '&':
        if (d != '&') {
            lex_err(lx, b, "unexpected '&' (did you mean '&&'?)%s", "");
            return false;
        }
        k = VCL_TOK_AND;
        len = 2;
        break;
    case '|':
        if (d != '|') {
            lex_err(lx, b, "unexpected '|' (did you mean '||'?)%s", "");
            return false;
        }
        k = VCL_TOK_OR;
        len = 2;
        break;
    default: {
        char tmp[8];

        if (isprint((unsigned char)c))
            snprintf(tmp, sizeof(tmp), "'%c'", c);
        else
            snprintf(tmp, sizeof(tmp), "0x%02x", (unsigned char)c);
        lex_err(lx, b, "unexpected character %s", tmp);
        return false;
    }
    }
    *kp = k;
    *lenp = len;
    return true;
}

void
vcl_lex(struct vcl_compile *cs, unsigned idx)
{
    struct lexer lx;

    VCL_CHECK_OBJ(cs, VCL_COMPILE_MAGIC);
    VCL_ASSERT(idx < cs->nsrcs);
    memset(&lx, 0, sizeof(lx));
    lx.cs = cs;
    lx.idx = idx;
    lx.src = &cs->srcs[idx];
    lx.p = lx.src->text;
    lx.end = lx.src->text + lx.src->len;
    lx.line = 1;
    lx.line_start = lx.p;
    lx.src->ntoks = 0;

    for (;;) {
        unsigned line, col;
        const char *b;
        char c, d;
        enum vcl_tok_kind k;
        size_t len = 1;

        if (!skip_space(&lx))
            return;
        line = lx.line;
        col = (unsigned)(lx.p - lx.line_start) + 1;
        if (lx.p >= lx.end) {
            push(&lx, VCL_TOK_EOF, lx.p, lx.p, line, col);
            return;
        }
        b = lx.p;
        c = *b;
        d = b + 1 < lx.end ? b[1] : '\0';
        if (c == 'C' && d == '{') {
            lex_err(&lx, b, "inline C (C{ ... }C) is not supported: vcl-lite runs no native code%s",
                    "");
            return;
        }
        if (is_ident_start((unsigned char)c)) {
            const char *q = b;
            struct vcl_token *t;

            while (q < lx.end && is_ident((unsigned char)*q))
                q++;
            /* "a.b." -> a trailing dot is not part of the name */
            while (q > b + 1 && q[-1] == '.')
                q--;
            t = push(&lx, VCL_TOK_IDENT, b, q, line, col);
            t->s.p = b;
            t->s.len = (size_t)(q - b);
            lx.p = q;
            continue;
        }
        if (isdigit((unsigned char)c)) {
            lex_number(&lx, line, col);
            if (cs->err)
                return;
            continue;
        }
        if (c == '"' || (c == '{' && d == '"')) {
            lex_string(&lx, line, col);
            if (cs->err)
                return;
            continue;
        }
        if (!lex_punct(&lx, b, c, d, &k, &len))
            return;
        push(&lx, k, b, b + len, line, col);
        lx.p = b + len;
    }
}
