/*
 * test_vcl_parse.c -- the vcl-lite parser on its own: the AST of every
 * declaration and statement, and syntax errors.  Includes vcl_int.h for the
 * stage's entry point and node kinds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vcl.h"
#include "vcl_int.h"

struct parsed {
    struct vcl_compile cs;
    struct vcl_symtab sym;
    struct vcl_diags *diags;
};

static struct vcl_node *
parse(struct parsed *ps, const char *src)
{
    unsigned idx;

    vcl_cs_init(&ps->cs, NULL, &ps->sym);
    idx = vcl_source_add(&ps->cs, "parse.vcl", src, strlen(src));
    vcl_parse(&ps->cs, idx, true);
    return ps->cs.decls;
}

static void
done(struct parsed *ps)
{
    vcl_cs_fini(&ps->cs, &ps->diags);
    vcl_diags_free(&ps->diags);
}

/* Parses src expecting an error containing msg. */
static void
expect_error(const char *src, const char *msg)
{
    struct parsed ps;

    parse(&ps, src);
    vcl_cs_fini(&ps.cs, &ps.diags);
    if (strstr(vcl_diags_text(ps.diags), msg) == NULL) {
        fprintf(stderr, "source: %s\nwant: %s\ngot: %s\n", src, msg, vcl_diags_text(ps.diags));
        fail();
    }
    vcl_diags_free(&ps.diags);
}

static void
declarations_become_nodes_in_order(void **state)
{
    struct parsed ps;
    struct vcl_node *d = parse(&ps, "vcl 4.1;\n"
                                    "import std;\n"
                                    "import directors from \"/x.so\";\n"
                                    "probe p { .url = \"/h\"; .interval = 5s; }\n"
                                    "backend b { .host = \"h\"; .port = \"80\"; .probe = p; }\n"
                                    "backend c { .host = \"h\"; .probe = { .url = \"/\"; } }\n"
                                    "backend n none;\n"
                                    "acl a { \"10.0.0.0\"/8; !\"10.1.2.3\"; (\"example.com\"); }\n"
                                    "sub s { }\n");

    (void)state;
    assert_false(ps.cs.err);
    assert_int_equal(d->kind, N_VCL);
    d = d->next;
    assert_int_equal(d->kind, N_IMPORT);
    assert_true(vcl_str_eq_cstr(d->s, "std"));
    d = d->next;
    assert_int_equal(d->kind, N_IMPORT);
    d = d->next;
    assert_int_equal(d->kind, N_PROBEDECL);
    assert_int_equal(d->a->kind, N_FIELD);
    assert_true(vcl_str_eq_cstr(d->a->s, "url"));
    assert_int_equal(d->a->next->a->kind, N_DURATION);
    d = d->next;
    assert_int_equal(d->kind, N_BACKENDDECL);
    assert_int_equal(d->a->next->next->a->kind, N_IDENT); /* .probe = p */
    d = d->next;
    assert_true(d->a->next->paren); /* inline probe */
    d = d->next;
    assert_int_equal(d->i, 1); /* none */
    d = d->next;
    assert_int_equal(d->kind, N_ACLDECL);
    assert_int_equal(d->a->i, 8);
    assert_true(d->a->next->neg);
    assert_true(d->a->next->next->paren);
    d = d->next;
    assert_int_equal(d->kind, N_SUB);
    assert_null(d->a);
    assert_null(d->next);
    done(&ps);
}

static void
every_statement_parses(void **state)
{
    struct parsed ps;
    struct vcl_node *s;
    struct vcl_node *d =
        parse(&ps, "vcl 4.0;\n"
                   "sub vcl_recv {\n"
                   "  set req.http.X = \"a\";\n"
                   "  set req.http.Y += \"b\";\n"
                   "  unset req.http.Z;\n"
                   "  if (a) { } elseif (b) { } elsif (c) { } else if (d) { } else { }\n"
                   "  call other;\n"
                   "  return (synth(404, \"x\"));\n"
                   "  hash_data(req.url);\n"
                   "  new x = directors.round_robin();\n"
                   "  ;\n"
                   "  return (pass);\n"
                   "}\n");

    (void)state;
    assert_false(ps.cs.err);
    s = d->next->a;
    assert_int_equal(s->kind, N_SET);
    assert_int_equal(s->i, VCL_TOK_ASSIGN);
    s = s->next;
    assert_int_equal(s->i, VCL_TOK_PLUSEQ);
    s = s->next;
    assert_int_equal(s->kind, N_UNSET);
    s = s->next;
    assert_int_equal(s->kind, N_IF);
    assert_int_equal(s->c->kind, N_IF);       /* elseif */
    assert_int_equal(s->c->c->kind, N_IF);    /* elsif */
    assert_int_equal(s->c->c->c->kind, N_IF); /* else if */
    s = s->next;
    assert_int_equal(s->kind, N_CALLSUB);
    s = s->next;
    assert_int_equal(s->kind, N_RETURN);
    assert_true(vcl_str_eq_cstr(s->s, "synth"));
    assert_non_null(s->a->next);
    s = s->next;
    assert_int_equal(s->kind, N_EXPR);
    assert_int_equal(s->a->kind, N_CALL);
    s = s->next;
    assert_int_equal(s->kind, N_NEW);
    s = s->next;
    assert_int_equal(s->kind, N_RETURN);
    assert_null(s->next);
    done(&ps);
}

static void
precedence_follows_vcl(void **state)
{
    struct parsed ps;
    struct vcl_node *d =
        parse(&ps, "vcl 4.1;\nsub vcl_recv { if (!a ~ \"x\" || b && c == 1 + 2 * 3) {} }");
    struct vcl_node *e;

    (void)state;
    assert_false(ps.cs.err);
    e = d->next->a->a;
    assert_int_equal(e->kind, N_BINOP);
    assert_int_equal(e->i, VCL_TOK_OR);
    assert_int_equal(e->a->kind, N_NOT); /* ! binds a whole comparison */
    assert_int_equal(e->a->a->i, VCL_TOK_MATCH);
    assert_int_equal(e->b->i, VCL_TOK_AND);
    assert_int_equal(e->b->b->i, VCL_TOK_EQ);
    assert_int_equal(e->b->b->b->i, VCL_TOK_PLUS);
    assert_int_equal(e->b->b->b->b->i, VCL_TOK_STAR);
    done(&ps);
}

static void
named_call_arguments_keep_their_names(void **state)
{
    struct parsed ps;
    struct vcl_node *d =
        parse(&ps, "vcl 4.1;\nsub s { set x = std.duration(s = \"1s\", fallback = 2s); }");
    struct vcl_node *call;

    (void)state;
    assert_false(ps.cs.err);
    call = d->next->a->b;
    assert_int_equal(call->kind, N_CALL);
    assert_true(vcl_str_eq_cstr(call->a->s, "s"));
    assert_true(vcl_str_eq_cstr(call->a->next->s, "fallback"));
    done(&ps);
}

static void
syntax_errors_name_what_was_expected(void **state)
{
    (void)state;
    expect_error("sub vcl_recv {}",
                 "parse.vcl:1:1: error: the policy must start with 'vcl 4.0;' or 'vcl 4.1;'");
    expect_error("vcl 5.0;", "unsupported VCL version '5.0'");
    expect_error("vcl 4.1;\nsub vcl_recv { set req.url \"x\"; }",
                 "parse.vcl:2:28: error: expected '=', found '\"x\"'");
    expect_error("vcl 4.1;\nsub vcl_recv { return (pass) }", "expected ';', found '}'");
    expect_error("vcl 4.1;\nsub vcl_recv { if req.url { } }", "expected '(', found 'req.url'");
    expect_error("vcl 4.1;\nsub vcl_recv {", "expected '}', found end of file");
    expect_error("vcl 4.1;\nfrobnicate x;", "unknown declaration 'frobnicate'");
    expect_error("vcl 4.1;\nsub vcl_recv { frob; }", "unknown statement 'frob'");
    expect_error("vcl 4.1;\nsub vcl_recv { error 404 \"x\"; }", "VCL 3 syntax");
    expect_error("vcl 4.1;\ndirector d round-robin { }", "'director' declarations are VCL 3");
    expect_error("vcl 4.1;\nsub vcl_recv { set x = (1 + ; }", "expected an expression, found ';'");
    expect_error("vcl 4.1;\nbackend b { host = \"x\"; }", "expected a field such as '.host'");
    expect_error("vcl 4.1;\nacl a { 10.0.0.1; }", "expected an address in quotes");
    expect_error("vcl 4.1;\ninclude \"does-not-exist.vcl\";",
                 "cannot read included file \"does-not-exist.vcl\"");
}

static void
deep_nesting_is_an_error_not_a_crash(void **state)
{
    char src[8192];
    size_t n = 0;

    (void)state;
    n += (size_t)snprintf(src, sizeof(src), "vcl 4.1;\nsub vcl_recv { if (");
    for (int i = 0; i < 2000; i++)
        src[n++] = '(';
    src[n] = '\0';
    expect_error(src, "nested too deeply");
    n = (size_t)snprintf(src, sizeof(src), "vcl 4.1;\nsub vcl_recv { ");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "if (a) {");
    expect_error(src, "nested too deeply");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(declarations_become_nodes_in_order),
        cmocka_unit_test(every_statement_parses),
        cmocka_unit_test(precedence_follows_vcl),
        cmocka_unit_test(named_call_arguments_keep_their_names),
        cmocka_unit_test(syntax_errors_name_what_was_expected),
        cmocka_unit_test(deep_nesting_is_an_error_not_a_crash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
