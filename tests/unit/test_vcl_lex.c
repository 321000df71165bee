/*
 * test_vcl_lex.c -- the vcl-lite lexer on its own.  Includes vcl_int.h (the
 * stage's internal entry point) because the public API only exposes whole
 * compiles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "vcl.h"
#include "vcl_int.h"

struct lexed {
    struct vcl_compile cs;
    struct vcl_symtab sym;
    struct vcl_diags *diags;
};

static struct vcl_source *
lex(struct lexed *l, const char *src)
{
    unsigned idx;

    vcl_cs_init(&l->cs, NULL, &l->sym);
    idx = vcl_source_add(&l->cs, "lex.vcl", src, strlen(src));
    vcl_lex(&l->cs, idx);
    return &l->cs.srcs[idx];
}

static void
done(struct lexed *l)
{
    vcl_cs_fini(&l->cs, &l->diags);
    vcl_diags_free(&l->diags);
}

static void
every_operator_and_punctuation_is_a_token(void **state)
{
    static const enum vcl_tok_kind want[] = {
        VCL_TOK_LBRACE, VCL_TOK_RBRACE,  VCL_TOK_LPAREN, VCL_TOK_RPAREN,  VCL_TOK_SEMI,
        VCL_TOK_COMMA,  VCL_TOK_ASSIGN,  VCL_TOK_EQ,     VCL_TOK_NE,      VCL_TOK_NOT,
        VCL_TOK_MATCH,  VCL_TOK_NOMATCH, VCL_TOK_LT,     VCL_TOK_GT,      VCL_TOK_LE,
        VCL_TOK_GE,     VCL_TOK_PLUS,    VCL_TOK_MINUS,  VCL_TOK_STAR,    VCL_TOK_SLASH,
        VCL_TOK_AND,    VCL_TOK_OR,      VCL_TOK_PLUSEQ, VCL_TOK_MINUSEQ, VCL_TOK_DOT,
        VCL_TOK_EOF,
    };
    struct lexed l;
    struct vcl_source *s = lex(&l, "{ } ( ) ; , = == != ! ~ !~ < > <= >= + - * / && || += -= .");

    (void)state;
    assert_false(l.cs.err);
    assert_int_equal(s->ntoks, VCL_ARRAY_LEN(want));
    for (size_t i = 0; i < VCL_ARRAY_LEN(want); i++)
        assert_int_equal(s->toks[i].kind, want[i]);
    done(&l);
}

static void
identifiers_keep_dots_and_dashes(void **state)
{
    struct lexed l;
    struct vcl_source *s = lex(&l, "req.http.Accept-Encoding std.tolower _x9 a.");

    (void)state;
    assert_false(l.cs.err);
    assert_int_equal(s->toks[0].kind, VCL_TOK_IDENT);
    assert_int_equal(s->toks[0].s.len, strlen("req.http.Accept-Encoding"));
    assert_memory_equal(s->toks[1].s.p, "std.tolower", 11);
    assert_int_equal(s->toks[2].s.len, 3);
    assert_int_equal(s->toks[3].s.len, 1); /* trailing dot is not part of a name */
    assert_int_equal(s->toks[4].kind, VCL_TOK_DOT);
    done(&l);
}

static void
numbers_durations_and_bytes_are_decoded(void **state)
{
    struct lexed l;
    struct vcl_source *s = lex(&l, "42 1.5 100ms 10s 5m 1h 1d 1w 1y 1.5m 512B 1KB 10MB 2GB 1TB");

    (void)state;
    assert_false(l.cs.err);
    assert_int_equal(s->toks[0].kind, VCL_TOK_INT);
    assert_int_equal(s->toks[0].i, 42);
    assert_int_equal(s->toks[1].kind, VCL_TOK_REAL);
    assert_true(s->toks[1].d == 1.5);
    assert_int_equal(s->toks[2].kind, VCL_TOK_DURATION);
    assert_true(s->toks[2].d > 0.0999 && s->toks[2].d < 0.1001);
    assert_true(s->toks[3].d == 10);
    assert_true(s->toks[4].d == 300);
    assert_true(s->toks[5].d == 3600);
    assert_true(s->toks[6].d == 86400);
    assert_true(s->toks[7].d == 604800);
    assert_true(s->toks[8].d == 31536000);
    assert_true(s->toks[9].d == 90);
    assert_int_equal(s->toks[10].kind, VCL_TOK_BYTES);
    assert_int_equal(s->toks[10].i, 512);
    assert_int_equal(s->toks[11].i, 1024);
    assert_int_equal(s->toks[12].i, 10 * 1024 * 1024);
    assert_int_equal(s->toks[13].i, 2LL * 1024 * 1024 * 1024);
    assert_int_equal(s->toks[14].i, 1024LL * 1024 * 1024 * 1024);
    done(&l);
}

static void
strings_and_long_strings_span_lines(void **state)
{
    struct lexed l;
    struct vcl_source *s =
        lex(&l, "\"plain\" {\"long\n\"quoted\"\nstring\"} x \"\"\"tri\"ple\nq\"\"\" \"\"");

    (void)state;
    assert_false(l.cs.err);
    assert_int_equal(s->toks[0].kind, VCL_TOK_STRING);
    assert_int_equal(s->toks[0].s.len, 5);
    assert_int_equal(s->toks[1].kind, VCL_TOK_STRING);
    assert_int_equal(s->toks[1].s.len, strlen("long\n\"quoted\"\nstring"));
    assert_memory_equal(s->toks[1].s.p, "long\n\"quoted\"\nstring", s->toks[1].s.len);
    assert_int_equal(s->toks[2].line, 3);              /* lines counted inside the long string */
    assert_int_equal(s->toks[3].kind, VCL_TOK_STRING); /* Varnish 6 triple quotes */
    assert_int_equal(s->toks[3].s.len, strlen("tri\"ple\nq"));
    assert_memory_equal(s->toks[3].s.p, "tri\"ple\nq", s->toks[3].s.len);
    assert_int_equal(s->toks[4].s.len, 0); /* "" is still an empty string */
    assert_int_equal(s->toks[4].line, 4);
    done(&l);
}

static void
all_three_comment_styles_are_skipped(void **state)
{
    struct lexed l;
    struct vcl_source *s = lex(&l, "a // one\n# two\nb /* three\nfour */ c");

    (void)state;
    assert_false(l.cs.err);
    assert_int_equal(s->ntoks, 4);
    assert_int_equal(s->toks[1].line, 3);
    assert_int_equal(s->toks[2].line, 4);
    assert_int_equal(s->toks[2].col, 9);
    done(&l);
}

static void
lexical_errors_name_the_problem(void **state)
{
    static const struct {
        const char *src;
        const char *msg;
    } cases[] = {
        {"\"open", "unterminated string"},
        {"{\"open", "unterminated long string"},
        {"\"\"\"open\"\"", "unterminated long string"},
        {"/* open", "unterminated /* comment"},
        {"C{ int x; }C", "inline C (C{ ... }C) is not supported"},
        {"a & b", "did you mean '&&'"},
        {"a | b", "did you mean '||'"},
        {"10parsecs", "unknown unit"},
        {"@", "unexpected character '@'"},
        {"99999999999999999999", "integer too large"},
    };

    (void)state;
    for (size_t i = 0; i < VCL_ARRAY_LEN(cases); i++) {
        struct lexed l;

        lex(&l, cases[i].src);
        assert_true(l.cs.err);
        vcl_cs_fini(&l.cs, &l.diags);
        assert_non_null(strstr(vcl_diags_text(l.diags), cases[i].msg));
        vcl_diags_free(&l.diags);
    }
}

static void
token_positions_are_line_and_column(void **state)
{
    struct lexed l;
    struct vcl_source *s = lex(&l, "sub x {\n\tset  y = 1;\n}");

    (void)state;
    assert_int_equal(s->toks[3].line, 2); /* set */
    assert_int_equal(s->toks[3].col, 2);
    assert_int_equal(s->toks[4].col, 7); /* y */
    assert_int_equal(s->toks[s->ntoks - 1].kind, VCL_TOK_EOF);
    done(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_operator_and_punctuation_is_a_token),
        cmocka_unit_test(identifiers_keep_dots_and_dashes),
        cmocka_unit_test(numbers_durations_and_bytes_are_decoded),
        cmocka_unit_test(strings_and_long_strings_span_lines),
        cmocka_unit_test(all_three_comment_styles_are_skipped),
        cmocka_unit_test(lexical_errors_name_the_problem),
        cmocka_unit_test(token_positions_are_line_and_column),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
