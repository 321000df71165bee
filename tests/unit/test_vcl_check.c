/*
 * test_vcl_check.c -- the checker's messages.  Every error message the
 * checker (and the stages before it) can give is pinned by a golden file:
 * tests/unit/vcl_golden/<name>.vcl compiles to exactly <name>.err (file,
 * line, column, message, source line and caret).  Run from the repository
 * root.  Regenerate a golden file only after reading the new text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>

#include "test_vcl_mock.h"

#define GOLDEN_DIR "tests/unit/vcl_golden/"

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Every <name>.vcl in the golden directory (fragments for inclusion are
 * named .inc) is compared with its <name>.err. */
static void
every_message_matches_its_golden_file(void **state)
{
    int failures = 0, checked = 0;
    DIR *dir = opendir(GOLDEN_DIR);
    struct dirent *de;

    (void)state;
    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        char vcl[512], err[512], name[256];
        struct vcl_program *p = NULL;
        struct vcl_diags *d = NULL;
        size_t nl = strlen(de->d_name);
        char *want;
        int rc;

        if (nl < 5 || strcmp(de->d_name + nl - 4, ".vcl") != 0 || nl - 4 >= sizeof(name))
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(nl - 4), de->d_name);
        snprintf(vcl, sizeof(vcl), GOLDEN_DIR "%s.vcl", name);
        snprintf(err, sizeof(err), GOLDEN_DIR "%s.err", name);
        checked++;
        want = slurp(err);
        if (want == NULL) {
            fprintf(stderr, "golden %s: no .err file\n", name);
            failures++;
            continue;
        }
        rc = vcl_compile_file(vcl, NULL, &p, &d);
        if (strcmp(want, vcl_diags_text(d)) != 0) {
            fprintf(stderr, "golden %s:\n--- want\n%s--- got\n%s", name, want, vcl_diags_text(d));
            failures++;
        }
        /* an .err with an error line means the compile must fail */
        if ((strstr(want, ": error: ") != NULL) != (rc == VCL_ECOMPILE)) {
            fprintf(stderr, "golden %s: rc %d\n", name, rc);
            failures++;
        }
        assert_int_equal(vcl_diags_has_error(d), rc != 0);
        free(want);
        vcl_diags_free(&d);
        vcl_program_release(&p);
    }
    closedir(dir);
    assert_true(checked >= 90);
    assert_int_equal(failures, 0);
}

static void
diagnostic_fields_give_place_and_message(void **state)
{
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    const struct vcl_diag *g;
    const char *src =
        "vcl 4.1;\nbackend b { .host = \"h\"; }\nsub vcl_recv {\n  set beresp.ttl = 1s;\n}\n";

    (void)state;
    assert_int_equal(vcl_compile_string("site.vcl", src, strlen(src), NULL, &p, &d), VCL_ECOMPILE);
    assert_null(p);
    assert_int_equal(vcl_diags_count(d), 1);
    g = vcl_diags_get(d, 0);
    assert_int_equal(g->severity, VCL_SEV_ERROR);
    assert_string_equal(g->file, "site.vcl");
    assert_int_equal(g->line, 4);
    assert_int_equal(g->col, 7);
    assert_string_equal(g->message, "beresp.ttl is not writable in vcl_recv");
    assert_string_equal(g->text, "site.vcl:4:7: error: beresp.ttl is not writable in vcl_recv\n"
                                 "  set beresp.ttl = 1s;\n"
                                 "      ^~~~~~~~~~\n");
    assert_null(vcl_diags_get(d, 1));
    vcl_diags_free(&d);
    assert_null(d);
    vcl_diags_free(&d); /* NULL-safe */
}

static void
missing_file_is_an_io_error(void **state)
{
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;

    (void)state;
    assert_int_equal(vcl_compile_file("tests/unit/vcl_golden/nope.vcl", NULL, &p, &d), VCL_EIO);
    assert_non_null(strstr(vcl_diags_text(d), "cannot read policy file"));
    vcl_diags_free(&d);
    assert_int_equal(vcl_compile_string(NULL, "", 0, NULL, &p, NULL), VCL_EINVAL);
}

static void
includes_splice_declarations_in_place(void **state)
{
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    static struct mock_run r;

    (void)state;
    assert_int_equal(vcl_compile_file(GOLDEN_DIR "include_ok.vcl", NULL, &p, &d), 0);
    vcl_diags_free(&d);
    mock_run_init(&r);
    assert_int_equal(vcl_run(p, VCL_SUB_RECV, &r.ctx, &r.res), 0);
    assert_string_equal(mock_hdr(&r.m, VCL_WHERE_REQ, "included"), "yes");
    assert_string_equal(mock_hdr(&r.m, VCL_WHERE_REQ, "second"), "yes");
    assert_int_equal(r.res.action, VCL_ACT_HASH); /* fell through to the builtin */
    vcl_program_release(&p);

    /* inside a sub body, an include splices statements */
    assert_int_equal(vcl_compile_file(GOLDEN_DIR "include_in_sub.vcl", NULL, &p, &d), 0);
    vcl_diags_free(&d);
    mock_run_init(&r);
    assert_int_equal(vcl_run(p, VCL_SUB_RECV, &r.ctx, &r.res), 0);
    assert_string_equal(mock_hdr(&r.m, VCL_WHERE_REQ, "from-fragment"), "yes");
    assert_string_equal(mock_hdr(&r.m, VCL_WHERE_REQ, "after"), "yes");
    mock_run_init(&r);
    mock_str(&r.m, VCL_VAR_REQ_URL, "/x");
    assert_int_equal(vcl_run(p, VCL_SUB_RECV, &r.ctx, &r.res), 0);
    assert_int_equal(r.res.action, VCL_ACT_PASS);
    assert_null(mock_hdr(&r.m, VCL_WHERE_REQ, "after"));
    vcl_program_release(&p);
}

static int
mem_reader(void *priv, const char *path, char **text, size_t *len)
{
    (void)priv;
    if (strcmp(path, "conf/parts/extra.vcl") != 0)
        return VCL_EIO;
    *text = strdup("sub extra { set req.http.extra = \"1\"; }\n");
    *len = strlen(*text);
    return 0;
}

static void
include_reader_callback_resolves_relative_to_the_includer(void **state)
{
    struct vcl_options opt;
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    const char *src = "vcl 4.1;\nbackend b { .host = \"h\"; }\ninclude \"parts/extra.vcl\";\n"
                      "sub vcl_recv { call extra; }\n";

    (void)state;
    vcl_options_init(&opt);
    opt.reader = mem_reader;
    assert_int_equal(vcl_compile_string("conf/main.vcl", src, strlen(src), &opt, &p, &d), 0);
    vcl_diags_free(&d);
    vcl_program_release(&p);
}

/* Compiles a one-sub policy; returns whether it compiled. */
static bool
compiles(const char *body)
{
    char src[2048];
    struct vcl_program *p = NULL;
    int rc;

    snprintf(src, sizeof(src), "vcl 4.1;\nimport std;\nbackend b { .host = \"h\"; }\n%s\n", body);
    rc = vcl_compile_string("t.vcl", src, strlen(src), NULL, &p, NULL);
    vcl_program_release(&p);
    return rc == 0;
}

static void
return_actions_follow_the_state_machine(void **state)
{
    (void)state;
    assert_true(compiles("sub vcl_recv { return (purge); }"));
    assert_true(compiles("sub vcl_hit { return (miss); }"));
    assert_true(compiles("sub vcl_hit { return (pass); }"));
    assert_false(compiles("sub vcl_miss { return (deliver); }"));
    assert_true(compiles("sub vcl_backend_response { return (pass(10s)); }"));
    assert_false(compiles("sub vcl_recv { return (pass(10s)); }"));
    assert_true(compiles("sub vcl_backend_error { return (retry); }"));
    assert_false(compiles("sub vcl_backend_fetch { return (deliver); }"));
    assert_true(compiles("sub vcl_init { return (fail); }"));
    assert_false(compiles("sub vcl_fini { return (fail); }"));
    assert_true(compiles("sub vcl_synth { return (restart); }"));
    assert_false(compiles("sub vcl_pass { return (hash); }"));
    /* a custom sub must suit every sub that calls it */
    assert_true(compiles(
        "sub s { return (synth(403)); } sub vcl_recv { call s; } sub vcl_miss { call s; }"));
    assert_false(compiles(
        "sub s { return (synth(403)); } sub vcl_recv { call s; } sub vcl_hash { call s; }"));
}

static void
variables_are_checked_per_sub(void **state)
{
    (void)state;
    assert_true(compiles("sub vcl_deliver { set resp.http.X = req.url; set req.http.Y = \"1\"; }"));
    assert_true(
        compiles("sub vcl_backend_error { set beresp.ttl = 1s; set beresp.body = \"x\"; }"));
    assert_false(compiles("sub vcl_recv { set resp.status = 200; }"));
    assert_false(compiles("sub vcl_hit { set obj.http.x = \"1\"; }"));
    assert_true(compiles("sub vcl_hit { if (obj.ttl < 1s && obj.hits > 0) { return (miss); } }"));
    assert_false(compiles("sub vcl_miss { if (obj.hits > 0) { return (pass); } }"));
    assert_true(compiles(
        "sub vcl_backend_fetch { set bereq.http.x = \"1\"; set bereq.first_byte_timeout = 30s; }"));
    assert_false(compiles("sub vcl_backend_fetch { set beresp.http.x = \"1\"; }"));
    assert_false(compiles("sub vcl_recv { set req.xid = \"1\"; }"));
    assert_true(compiles("sub vcl_recv { set req.hash_always_miss = true; }"));
    assert_false(compiles("sub vcl_deliver { set req.hash_always_miss = true; }"));
    assert_true(compiles("sub vcl_synth { set resp.body = \"x\"; }"));
    assert_false(compiles("sub vcl_deliver { set resp.body = \"x\"; }"));
    assert_false(compiles("sub s { set req.url = bereq.url; } sub vcl_recv { call s; }"));
    assert_true(compiles("sub s { set req.url = \"/\"; }")); /* unused: only types (a warning) */
}

static void
implicit_conversions_as_in_vcl(void **state)
{
    (void)state;
    assert_true(compiles(
        "sub vcl_recv { set req.http.a = 1 + \"x\" + 1.5 + 1s + true + client.ip + now; }"));
    assert_true(
        compiles("sub vcl_recv { if (req.http.a && !req.http.b || req.backend_hint) { } }"));
    assert_true(compiles("sub vcl_recv { if (client.ip == \"127.0.0.1\") { } }"));
    assert_false(compiles("sub vcl_recv { if (client.ip == \"not-an-ip\") { } }"));
    assert_true(compiles(
        "sub vcl_backend_response { set beresp.ttl = std.duration(beresp.http.x, 1m) * 2; }"));
    assert_false(compiles("sub vcl_backend_response { set beresp.ttl = 1s + 1; }"));
    assert_true(compiles("sub vcl_backend_response { set beresp.grace = beresp.ttl / 2; }"));
    assert_false(compiles("sub vcl_recv { if (req.url < \"x\") { } }"));
    assert_true(
        compiles("sub vcl_recv { if (req.restarts || req.ttl) { } }")); /* INT != 0, DURATION > 0 */
    assert_false(compiles("sub vcl_recv { if (1.5) { } }"));
    assert_true(compiles("sub vcl_recv { set req.http.x = std.integer(req.http.n, 0) * 3 - 1; }"));
    assert_false(compiles("sub vcl_recv { std.duration(\"1s\"); }"));
    assert_false(compiles("sub vcl_recv { set req.http.x = std.tolower(s1 = \"a\"); }"));
    assert_false(compiles("sub vcl_recv { set req.http.x = std.tolower(\"a\", \"b\"); }"));
    assert_false(compiles("sub vcl_recv { set req.http.x = regsub(req.url, req.url, \"\"); }"));
    assert_false(compiles("sub vcl_recv { set req.http.x = std.fileread(req.url); }"));
    assert_false(compiles("sub vcl_recv { set req.http.x = hash_data(\"a\"); }"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_message_matches_its_golden_file),
        cmocka_unit_test(diagnostic_fields_give_place_and_message),
        cmocka_unit_test(missing_file_is_an_io_error),
        cmocka_unit_test(includes_splice_declarations_in_place),
        cmocka_unit_test(include_reader_callback_resolves_relative_to_the_includer),
        cmocka_unit_test(return_actions_follow_the_state_machine),
        cmocka_unit_test(variables_are_checked_per_sub),
        cmocka_unit_test(implicit_conversions_as_in_vcl),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
