/*
 * test_vcl_vm.c -- compiler + VM through the public API, against the mock
 * host in test_vcl_mock.h: each instruction, each built-in function,
 * regsub captures, ACLs, the built-in fall-through and the limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>

#include "test_vcl_mock.h"

#define VCL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HDR(w, n) mock_hdr(&r->m, VCL_WHERE_##w, (n))

static struct mock_run runs[1];

/* Compiles "vcl 4.1;" + src, resets the mock request, keeps the program. */
static struct vcl_program *
prog(const char *src)
{
    char buf[16384];
    struct vcl_program *p;

    snprintf(buf, sizeof(buf), "vcl 4.1;\nbackend default { .host = \"127.0.0.1\"; }\n%s", src);
    p = mock_compile(buf);
    assert_non_null(p);
    mock_run_init(&runs[0]);
    return p;
}

static int
run(struct vcl_program *p, enum vcl_sub sub)
{
    return vcl_run(p, sub, &runs[0].ctx, &runs[0].res);
}

static void
set_and_unset_headers_and_concatenate(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("sub vcl_recv {\n"
                                 "  set req.http.A = \"x\" + req.url + \"-\" + 42 + \"-\" + true;\n"
                                 "  set req.http.B = req.http.Host;\n"
                                 "  set req.http.C = req.http.Missing;\n"
                                 "  set req.http.D = 1.5 + \" \" + 90s + \" \" + client.ip;\n"
                                 "  set req.http.E = \"pre\";\n"
                                 "  set req.http.E += \"post\";\n"
                                 "  set req.http.F = \"\" + 1KB;\n"
                                 "  unset req.http.Host;\n"
                                 "  return (hash);\n"
                                 "}\n");

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_URL, "/p");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.action, VCL_ACT_HASH);
    assert_string_equal(HDR(REQ, "a"), "x/p-42-true");
    assert_string_equal(HDR(REQ, "B"), "example.com");
    assert_string_equal(HDR(REQ, "C"), "");
    assert_string_equal(HDR(REQ, "D"), "1.500 90.000 192.0.2.10");
    assert_string_equal(HDR(REQ, "E"), "prepost");
    assert_string_equal(HDR(REQ, "F"), "1024");
    assert_null(HDR(REQ, "Host"));
    vcl_program_release(&p);
}

static void
if_elseif_else_pick_one_branch(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("sub vcl_recv {\n"
                                 "  if (req.url == \"/a\") { set req.http.B = \"a\"; }\n"
                                 "  elseif (req.url == \"/b\") { set req.http.B = \"b\"; }\n"
                                 "  elsif (req.url == \"/c\") { set req.http.B = \"c\"; }\n"
                                 "  else if (req.url == \"/d\") { set req.http.B = \"d\"; }\n"
                                 "  else { set req.http.B = \"other\"; }\n"
                                 "  return (hash);\n"
                                 "}\n");
    static const char *const urls[] = {"/a", "/b", "/c", "/d", "/e"};
    static const char *const want[] = {"a", "b", "c", "d", "other"};

    (void)state;
    for (int i = 0; i < 5; i++) {
        mock_run_init(r);
        mock_str(&r->m, VCL_VAR_REQ_URL, urls[i]);
        assert_int_equal(run(p, VCL_SUB_RECV), 0);
        assert_string_equal(HDR(REQ, "B"), want[i]);
    }
    vcl_program_release(&p);
}

static void
comparisons_and_logic_for_every_type(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog(
        "sub vcl_backend_response {\n"
        "  set beresp.http.t1 = (beresp.status == 200) + \"\" + (beresp.status != 200) + \"\" +\n"
        "      (beresp.status < 300) + (beresp.status >= 201) + (beresp.status <= 200) + "
        "(beresp.status > 199);\n"
        "  set beresp.http.t2 = (beresp.ttl > 1m) + \"\" + (beresp.ttl < 1m) + (1.5 > 1) + (1KB == "
        "1024B);\n"
        "  set beresp.http.t3 = (bereq.url == \"/\") + \"\" + (beresp.http.none == \"\") + "
        "(!beresp.http.none) + (beresp.http.none != \"x\");\n"
        "  set beresp.http.t4 = (client.ip == \"192.0.2.10\") + \"\" + (beresp.uncacheable == "
        "false) + (bereq.backend == default);\n"
        "  set beresp.http.t5 = (true && false) + \"\" + (true || false) + (false || !false) + "
        "(now > now - 1s);\n"
        "  if (beresp.status) { set beresp.http.t6 = \"int\"; }\n"
        "  if (beresp.ttl) { set beresp.http.t7 = \"dur\"; }\n"
        "  if (beresp.grace) { set beresp.http.t8 = \"zero\"; }\n"
        "}\n");

    (void)state;
    r->m.vars[VCL_VAR_BEREQ_BACKEND].u.ref = (struct vcl_ref){VCL_REF_BACKEND, 0};
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_string_equal(HDR(BERESP, "t1"), "truefalsetruefalsetruetrue");
    assert_string_equal(HDR(BERESP, "t2"), "truefalsetruetrue");
    assert_string_equal(HDR(BERESP, "t3"), "truefalsetruetrue"); /* unset != anything */
    assert_string_equal(HDR(BERESP, "t4"), "truetruetrue");
    assert_string_equal(HDR(BERESP, "t5"), "falsetruetruetrue");
    assert_string_equal(HDR(BERESP, "t6"), "int");
    assert_string_equal(HDR(BERESP, "t7"), "dur");
    assert_null(HDR(BERESP, "t8"));
    vcl_program_release(&p);
}

static void
duration_time_and_integer_arithmetic(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("sub vcl_backend_response {\n"
                                 "  set beresp.ttl = 1h + 10s;\n"
                                 "  set beresp.grace = 2m - 30s;\n"
                                 "  set beresp.keep = 10s * 3 + 1m / 2 + -5s;\n"
                                 "  set beresp.http.i = 7 + 3 * 2 - 8 / 3;\n"
                                 "  set beresp.http.r = 1 + 0.5;\n"
                                 "  set beresp.http.d = (1h / 30m);\n"
                                 "  set beresp.http.now = now + 1d;\n"
                                 "  set beresp.http.age = now - (now - 1w);\n"
                                 "  set beresp.ttl += 5s;\n"
                                 "}\n");

    (void)state;
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_true(r->m.vars[VCL_VAR_BERESP_TTL].u.d == 3600 + 10 + 5 ||
                r->m.vars[VCL_VAR_BERESP_TTL].u.d == 3615);
    assert_true(r->m.vars[VCL_VAR_BERESP_GRACE].u.d == 90);
    assert_true(r->m.vars[VCL_VAR_BERESP_KEEP].u.d == 55);
    assert_string_equal(HDR(BERESP, "i"), "11");
    assert_string_equal(HDR(BERESP, "r"), "1.500");
    assert_string_equal(HDR(BERESP, "d"), "2.000");
    /* 1700000000 + 86400 = Wed, 15 Nov 2023 22:13:20 GMT */
    assert_string_equal(HDR(BERESP, "now"), "Wed, 15 Nov 2023 22:13:20 GMT");
    assert_string_equal(HDR(BERESP, "age"), "604800.000");
    vcl_program_release(&p);
}

static void
integer_division_by_zero_fails_the_request(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("sub vcl_recv { set req.http.x = 1 / std.integer(req.http.zero, 0); }\n"
             "import std;\n");

    (void)state;
    assert_int_equal(run(p, VCL_SUB_RECV), VCL_ERUNTIME);
    assert_int_equal(r->res.action, VCL_ACT_FAIL);
    assert_string_equal(r->ctx.error, "integer division by zero");
    assert_int_equal(r->ctx.error_line, 3);
    vcl_program_release(&p);
}

static void
regex_match_and_no_match(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("sub vcl_recv {\n"
             "  if (req.url ~ \"^/static/\") { set req.http.a = \"1\"; }\n"
             "  if (req.url !~ \"\\.php$\") { set req.http.b = \"1\"; }\n"
             "  if (req.http.host ~ \"(?i)EXAMPLE\\.COM\") { set req.http.c = \"1\"; }\n"
             "  if (req.http.missing ~ \"^$\") { set req.http.d = \"1\"; }\n"
             "}\n");

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_URL, "/static/x.css");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(HDR(REQ, "a"), "1");
    assert_string_equal(HDR(REQ, "b"), "1");
    assert_string_equal(HDR(REQ, "c"), "1");
    assert_string_equal(HDR(REQ, "d"), "1"); /* unset matches as "" */
    mock_run_init(r);
    mock_str(&r->m, VCL_VAR_REQ_URL, "/index.php");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_null(HDR(REQ, "a"));
    assert_null(HDR(REQ, "b"));
    vcl_program_release(&p);
}

static void
regsub_and_regsuball_expand_captures(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("sub vcl_recv {\n"
             "  set req.http.a = regsub(req.url, \"^/([a-z]+)/([0-9]+)\", \"/\\2/\\1[\\0]\");\n"
             "  set req.http.b = regsuball(req.url, \"[0-9]\", \"#\");\n"
             "  set req.http.c = regsub(req.url, \"nomatch\", \"x\");\n"
             "  set req.http.d = regsuball(\"abc\", \"x*\", \"-\");\n"
             "  set req.http.e = regsub(req.url, \"\\?.*$\", \"\");\n"
             "  set req.http.f = regsuball(req.http.cookie, \"(^|; *)(_ga|_gid)=[^;]*\", \"\");\n"
             "  set req.http.g = regsub(req.url, \"(x)?/\", \"[\\1]\");\n"
             "}\n");

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_URL, "/news/2024?utm=1");
    mock_set(&r->m, VCL_WHERE_REQ, "Cookie", "_ga=1; session=abc; _gid=2");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(HDR(REQ, "a"), "/2024/news[/news/2024]?utm=1");
    assert_string_equal(HDR(REQ, "b"), "/news/####?utm=#");
    assert_string_equal(HDR(REQ, "c"), "/news/2024?utm=1");
    assert_string_equal(HDR(REQ, "d"), "-a-b-c-");
    assert_string_equal(HDR(REQ, "e"), "/news/2024");
    assert_string_equal(HDR(REQ, "f"), "; session=abc");
    assert_string_equal(HDR(REQ, "g"), "[]news/2024?utm=1");
    vcl_program_release(&p);
}

static void
acl_matching_ipv4_ipv6_masks_and_negation(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("acl purgers {\n"
                                 "  \"localhost\";\n"
                                 "  \"192.0.2.0\"/24;\n"
                                 "  !\"192.0.2.66\";\n"
                                 "  \"2001:db8::\"/32;\n"
                                 "  !\"2001:db8:dead::\"/48;\n"
                                 "}\n"
                                 "sub vcl_recv {\n"
                                 "  if (client.ip ~ purgers) { return (synth(200, \"in\")); }\n"
                                 "  if (client.ip !~ purgers) { return (synth(403, \"out\")); }\n"
                                 "}\n");
    static const struct {
        struct vcl_ip ip;
        unsigned status;
    } cases[] = {
        {{4, {192, 0, 2, 10}, 0}, 200},
        {{4, {192, 0, 2, 66}, 0}, 403}, /* negated, more specific */
        {{4, {192, 0, 3, 1}, 0}, 403},
        {{4, {127, 0, 0, 1}, 0}, 200},
        {{6, {0x20, 0x01, 0x0d, 0xb8, 0, 1}, 0}, 200},
        {{6, {0x20, 0x01, 0x0d, 0xb8, 0xde, 0xad, 0, 1}, 0}, 403},
        {{6, {0x20, 0x01, 0x0d, 0xb9}, 0}, 403},
        {{6, {[10] = 0xff, [11] = 0xff, [12] = 192, [13] = 0, [14] = 2, [15] = 9}, 0}, 200},
        {{6, {[15] = 1}, 0}, 200}, /* ::1 from "localhost" */
    };

    (void)state;
    for (size_t i = 0; i < VCL_ARRAY_LEN(cases); i++) {
        mock_run_init(r);
        r->m.vars[VCL_VAR_CLIENT_IP].u.ip = cases[i].ip;
        assert_int_equal(run(p, VCL_SUB_RECV), 0);
        assert_int_equal(r->res.action, VCL_ACT_SYNTH);
        assert_int_equal(r->res.status, cases[i].status);
    }
    vcl_program_release(&p);
}

static void
return_actions_carry_their_arguments(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("sub vcl_recv {\n"
             "  if (req.url == \"/s\") { return (synth(404, \"Nope \" + req.url)); }\n"
             "  if (req.url == \"/t\") { return (synth(301)); }\n"
             "  return (pass);\n"
             "}\n"
             "sub vcl_backend_response {\n"
             "  if (bereq.url == \"/p\") { return (pass); }\n"
             "  if (bereq.url == \"/q\") { return (pass(10s)); }\n"
             "}\n");

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_URL, "/s");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.action, VCL_ACT_SYNTH);
    assert_int_equal(r->res.status, 404);
    assert_memory_equal(r->res.reason.p, "Nope /s", 7);
    mock_str(&r->m, VCL_VAR_REQ_URL, "/t");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.status, 301);
    assert_null(r->res.reason.p);
    mock_str(&r->m, VCL_VAR_REQ_URL, "/u");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.action, VCL_ACT_PASS);
    mock_str(&r->m, VCL_VAR_BEREQ_URL, "/p");
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_int_equal(r->res.action, VCL_ACT_PASS);
    assert_true(r->res.duration == 120); /* default hit-for-pass */
    mock_str(&r->m, VCL_VAR_BEREQ_URL, "/q");
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_true(r->res.duration == 10);
    vcl_program_release(&p);
}

static void
restart_and_retry_are_bounded(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_options opt;
    struct vcl_program *p;

    (void)state;
    vcl_options_init(&opt);
    opt.max_restarts = 2;
    p = mock_compile_opt("vcl 4.1;\nbackend b { .host = \"h\"; }\n"
                         "sub vcl_deliver { return (restart); }\n"
                         "sub vcl_backend_response { return (retry); }\n"
                         "sub vcl_backend_error { return (retry); }\n",
                         &opt);
    assert_non_null(p);
    mock_run_init(r);
    r->m.vars[VCL_VAR_REQ_RESTARTS].u.i = 1;
    assert_int_equal(run(p, VCL_SUB_DELIVER), 0);
    assert_int_equal(r->res.action, VCL_ACT_RESTART);
    r->m.vars[VCL_VAR_REQ_RESTARTS].u.i = 2;
    assert_int_equal(run(p, VCL_SUB_DELIVER), 0);
    assert_int_equal(r->res.action, VCL_ACT_SYNTH);
    assert_int_equal(r->res.status, 503);
    r->m.vars[VCL_VAR_BEREQ_RETRIES].u.i = 3;
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_int_equal(r->res.action, VCL_ACT_RETRY);
    r->m.vars[VCL_VAR_BEREQ_RETRIES].u.i = 4;
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_int_equal(r->res.action, VCL_ACT_FAIL);
    assert_int_equal(run(p, VCL_SUB_BACKEND_ERROR), 0);
    assert_int_equal(r->res.action, VCL_ACT_ABANDON);
    vcl_program_release(&p);
}

static void
builtin_recv_defaults(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("");
    static const struct {
        const char *method, *hdr, *val;
        enum vcl_action act;
    } cases[] = {
        {"GET", NULL, NULL, VCL_ACT_HASH},      {"HEAD", NULL, NULL, VCL_ACT_HASH},
        {"GET", "Cookie", "a=b", VCL_ACT_PASS}, {"GET", "Authorization", "Basic x", VCL_ACT_PASS},
        {"POST", NULL, NULL, VCL_ACT_PASS},     {"DELETE", NULL, NULL, VCL_ACT_PASS},
        {"FROB", NULL, NULL, VCL_ACT_PIPE},     {"CONNECT", NULL, NULL, VCL_ACT_PIPE},
        {"PRI", NULL, NULL, VCL_ACT_SYNTH},
    };

    (void)state;
    for (size_t i = 0; i < VCL_ARRAY_LEN(cases); i++) {
        mock_run_init(r);
        mock_str(&r->m, VCL_VAR_REQ_METHOD, cases[i].method);
        if (cases[i].hdr)
            mock_set(&r->m, VCL_WHERE_REQ, cases[i].hdr, cases[i].val);
        assert_int_equal(run(p, VCL_SUB_RECV), 0);
        assert_int_equal(r->res.action, cases[i].act);
    }
    /* HTTP/1.1 without Host: 400 */
    mock_run_init(r);
    mock_unset_header(&r->m, VCL_WHERE_REQ, VCL_LIT("Host"));
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.action, VCL_ACT_SYNTH);
    assert_int_equal(r->res.status, 400);
    vcl_program_release(&p);
}

static void
builtin_hash_and_other_subs(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("");
    static const struct {
        enum vcl_sub sub;
        enum vcl_action act;
    } cases[] = {
        {VCL_SUB_PIPE, VCL_ACT_PIPE},
        {VCL_SUB_PASS, VCL_ACT_FETCH},
        {VCL_SUB_PURGE, VCL_ACT_SYNTH},
        {VCL_SUB_HIT, VCL_ACT_DELIVER},
        {VCL_SUB_MISS, VCL_ACT_FETCH},
        {VCL_SUB_DELIVER, VCL_ACT_DELIVER},
        {VCL_SUB_SYNTH, VCL_ACT_DELIVER},
        {VCL_SUB_BACKEND_FETCH, VCL_ACT_FETCH},
        {VCL_SUB_BACKEND_ERROR, VCL_ACT_DELIVER},
        {VCL_SUB_INIT, VCL_ACT_OK},
        {VCL_SUB_FINI, VCL_ACT_OK},
    };

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_URL, "/x?y");
    assert_int_equal(run(p, VCL_SUB_HASH), 0);
    assert_int_equal(r->res.action, VCL_ACT_LOOKUP);
    assert_string_equal(r->m.hash, "/x?y|example.com");
    mock_run_init(r);
    mock_unset_header(&r->m, VCL_WHERE_REQ, VCL_LIT("host"));
    assert_int_equal(run(p, VCL_SUB_HASH), 0);
    assert_string_equal(r->m.hash, "/|10.0.0.1");
    for (size_t i = 0; i < VCL_ARRAY_LEN(cases); i++) {
        assert_int_equal(run(p, cases[i].sub), 0);
        assert_int_equal(r->res.action, cases[i].act);
    }
    assert_non_null(strstr(r->m.synth, "<h1>Error 200 OK</h1>"));
    assert_string_equal(HDR(BERESP, "Retry-After"), "5");
    vcl_program_release(&p);
}

static void
builtin_backend_response_marks_hit_for_miss(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("");
    static const struct {
        const char *hdr, *val;
        bool hfm;
    } cases[] = {
        {NULL, NULL, false},
        {"Set-Cookie", "a=b", true},
        {"Cache-Control", "private, max-age=60", true},
        {"Cache-Control", "no-store", true},
        {"Cache-Control", "public, max-age=60", false},
        {"Surrogate-Control", "no-store", true},
        {"Vary", "*", true},
        {"Vary", "Accept-Encoding", false},
    };

    (void)state;
    for (size_t i = 0; i < VCL_ARRAY_LEN(cases); i++) {
        mock_run_init(r);
        r->m.vars[VCL_VAR_BERESP_TTL].u.d = 300; /* from RFC 9111 headers */
        if (cases[i].hdr)
            mock_set(&r->m, VCL_WHERE_BERESP, cases[i].hdr, cases[i].val);
        assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
        assert_int_equal(r->res.action, VCL_ACT_DELIVER);
        assert_int_equal(r->m.vars[VCL_VAR_BERESP_UNCACHEABLE].u.b, cases[i].hfm);
        assert_true(r->m.vars[VCL_VAR_BERESP_TTL].u.d == (cases[i].hfm ? 120 : 300));
    }
    /* ttl 0 from the origin: hit-for-miss too; a policy's own return skips it */
    mock_run_init(r);
    r->m.vars[VCL_VAR_BERESP_TTL].u.d = 0;
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_true(r->m.vars[VCL_VAR_BERESP_UNCACHEABLE].u.b);
    vcl_program_release(&p);
}

static void
hit_for_miss_ttl_is_configurable(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_options opt;
    struct vcl_program *p;

    (void)state;
    vcl_options_init(&opt);
    opt.hit_for_miss_ttl = 30;
    p = mock_compile_opt("vcl 4.1;\nbackend b { .host = \"h\"; }\n", &opt);
    assert_non_null(p);
    mock_run_init(r);
    mock_set(&r->m, VCL_WHERE_BERESP, "Set-Cookie", "x=y");
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_true(r->m.vars[VCL_VAR_BERESP_TTL].u.d == 30);
    vcl_program_release(&p);
}

static void
user_bodies_run_in_order_then_fall_through(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("sub vcl_recv { set req.http.order = \"1\"; }\n"
             "sub vcl_recv { set req.http.order = req.http.order + \"2\"; call mark; }\n"
             "sub mark { set req.http.marked = \"yes\"; }\n");

    (void)state;
    mock_set(&r->m, VCL_WHERE_REQ, "Cookie", "x=1");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(HDR(REQ, "order"), "12");
    assert_string_equal(HDR(REQ, "marked"), "yes");
    assert_int_equal(r->res.action, VCL_ACT_PASS); /* builtin: Cookie -> pass */
    assert_true(vcl_program_defines(p, VCL_SUB_RECV));
    assert_false(vcl_program_defines(p, VCL_SUB_HASH));
    vcl_program_release(&p);
}

static void
return_inside_a_custom_sub_ends_the_builtin_sub(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("sub check { if (req.url ~ \"^/admin\") { return (pass); } }\n"
             "sub vcl_recv { call check; set req.http.after = \"1\"; return (hash); }\n");

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_URL, "/admin/x");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.action, VCL_ACT_PASS);
    assert_null(HDR(REQ, "after"));
    mock_run_init(r);
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.action, VCL_ACT_HASH);
    assert_string_equal(HDR(REQ, "after"), "1");
    vcl_program_release(&p);
}

static void
scalar_variables_reach_the_host_with_their_types(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("sub vcl_recv {\n"
             "  set req.hash_always_miss = true;\n"
             "  set req.url = \"/new\";\n"
             "  set req.method = \"HEAD\";\n"
             "  set req.ttl = 5s;\n"
             "  set req.backend_hint = default;\n"
             "  return (hash);\n"
             "}\n"
             "sub vcl_backend_response {\n"
             "  set beresp.status = 201;\n"
             "  set beresp.do_gzip = true;\n"
             "  set beresp.do_brotli = true;\n"
             "  set beresp.do_stream = false;\n"
             "  set beresp.storage_hint = \"memory\";\n"
             "  set beresp.reason = \"Made\";\n"
             "  return (deliver);\n"
             "}\n"
             "sub vcl_synth { set resp.body = \"hello\"; return (deliver); }\n");

    (void)state;
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_true(r->m.vars[VCL_VAR_REQ_HASH_ALWAYS_MISS].u.b);
    assert_string_equal(r->m.strs[VCL_VAR_REQ_URL], "/new");
    assert_string_equal(r->m.strs[VCL_VAR_REQ_METHOD], "HEAD");
    assert_true(r->m.vars[VCL_VAR_REQ_TTL].u.d == 5);
    assert_int_equal(r->m.vars[VCL_VAR_REQ_BACKEND_HINT].u.ref.kind, VCL_REF_BACKEND);
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_int_equal(r->m.vars[VCL_VAR_BERESP_STATUS].u.i, 201);
    assert_true(r->m.vars[VCL_VAR_BERESP_DO_GZIP].u.b);
    assert_true(r->m.vars[VCL_VAR_BERESP_DO_BROTLI].u.b);
    assert_string_equal(r->m.strs[VCL_VAR_BERESP_STORAGE_HINT], "memory");
    assert_int_equal(run(p, VCL_SUB_SYNTH), 0);
    assert_string_equal(r->m.synth, "hello");
    vcl_program_release(&p);
}

static void
builtin_functions_hash_ban_synthetic_log(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("import std;\n"
             "sub vcl_recv {\n"
             "  ban(\"obj.http.x ~ \" + req.url);\n"
             "  std.log(\"hello \" + req.url);\n"
             "  std.syslog(6, \"sys\");\n"
             "  std.timestamp(\"t\");\n"
             "  std.collect(req.http.Cookie);\n"
             "}\n"
             "sub vcl_hash { hash_data(req.url); hash_data(req.http.missing); return (lookup); }\n"
             "sub vcl_synth { synthetic(\"a\"); synthetic(\"b\"); return (deliver); }\n");

    (void)state;
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(r->m.bans, "obj.http.x ~ /");
    assert_string_equal(r->m.log, "hello /\nsys");
    assert_string_equal(r->m.collected, "Cookie/, ");
    assert_int_equal(run(p, VCL_SUB_HASH), 0);
    assert_int_equal(r->m.nhash, 1); /* an unset value is not hashed */
    assert_int_equal(run(p, VCL_SUB_SYNTH), 0);
    assert_string_equal(r->m.synth, "ab");
    vcl_program_release(&p);
}

static void
std_string_and_conversion_functions(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog(
        "import std;\n"
        "sub vcl_recv {\n"
        "  set req.http.lo = std.tolower(\"MiXeD\");\n"
        "  set req.http.up = std.toupper(\"MiXeD\");\n"
        "  set req.http.qs = std.querysort(\"/p?b=2&a=1&&c=3&a=0\");\n"
        "  set req.http.qs2 = std.querysort(\"/p\");\n"
        "  set req.http.dur = std.duration(\"1.5m\", 1s) + \"/\" + std.duration(\"bogus\", 7s);\n"
        "  set req.http.int = std.integer(\"42\", 0) + 1 + \"/\" + std.integer(\"4x\", -1);\n"
        "  set req.http.real = std.real(\"2.5\", 0.0) + \"/\" + std.real(s = \"z\", fallback = "
        "1.0);\n"
        "  set req.http.ip = std.ip(\"::1\", \"0.0.0.0\") + \"/\" + std.ip(\"nope\", "
        "\"10.9.8.7\");\n"
        "  set req.http.time = std.time(\"Sun, 06 Nov 1994 08:49:37 GMT\", now);\n"
        "  set req.http.ss = std.strstr(\"haystack\", \"st\") + \"/\" + std.strstr(\"a\", \"b\");\n"
        "  set req.http.fn = std.fnmatch(\"*.css\", \"a/b.css\", pathname = false) + \"/\" +\n"
        "      std.fnmatch(\"*.css\", \"a/b.css\");\n"
        "  set req.http.env = std.getenv(\"VCL_TEST_ENV\");\n"
        "  set req.http.h = std.healthy(req.backend_hint);\n"
        "  set req.http.conv = std.round(2.5) + \"/\" + std.real2integer(-2.6, 0) + \"/\" +\n"
        "      std.time2integer(now, 0) + \"/\" + std.time2real(now, 0.0) + \"/\" + "
        "std.real2time(1.0, now);\n"
        "  set req.http.ban = std.ban(\"req.url ~ x\") + std.ban_error();\n"
        "  if (std.random(0, 10) >= 0 && std.random(5, 6) < 6 && std.random(1, 1) == 1) { set "
        "req.http.rnd = \"ok\"; }\n"
        "}\n");

    (void)state;
    setenv("VCL_TEST_ENV", "env-ok", 1);
    r->m.vars[VCL_VAR_REQ_BACKEND_HINT].u.ref = (struct vcl_ref){VCL_REF_BACKEND, 0};
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(HDR(REQ, "lo"), "mixed");
    assert_string_equal(HDR(REQ, "up"), "MIXED");
    assert_string_equal(HDR(REQ, "qs"), "/p?a=0&a=1&b=2&c=3");
    assert_string_equal(HDR(REQ, "qs2"), "/p");
    assert_string_equal(HDR(REQ, "dur"), "90.000/7.000");
    assert_string_equal(HDR(REQ, "int"), "43/-1");
    assert_string_equal(HDR(REQ, "real"), "2.500/1.000");
    assert_string_equal(HDR(REQ, "ip"), "::1/10.9.8.7");
    assert_string_equal(HDR(REQ, "time"), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(HDR(REQ, "ss"), "stack/");
    assert_string_equal(HDR(REQ, "fn"), "true/false");
    assert_string_equal(HDR(REQ, "env"), "env-ok");
    assert_string_equal(HDR(REQ, "h"), "true");
    assert_string_equal(HDR(REQ, "conv"),
                        "3.000/-3/1700000000/1700000000.000/Thu, 01 Jan 1970 00:00:01 GMT");
    assert_string_equal(HDR(REQ, "ban"), "true");
    assert_string_equal(HDR(REQ, "rnd"), "ok");
    assert_string_equal(r->m.bans, "req.url ~ x");
    r->m.unhealthy = true;
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(HDR(REQ, "h"), "false");
    vcl_program_release(&p);
}

static void
cookie_vmod_parses_filters_and_rebuilds(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("import cookie;\n"
             "sub vcl_recv {\n"
             "  cookie.parse(req.http.Cookie);\n"
             "  set req.http.sess = cookie.get(\"session\");\n"
             "  set req.http.has = cookie.isset(\"_ga\") + \"/\" + cookie.isset(\"nope\");\n"
             "  cookie.filter(\"_ga, _gid\");\n"
             "  cookie.set(\"lang\", \"en\");\n"
             "  cookie.delete(\"tmp\");\n"
             "  set req.http.Cookie = cookie.get_string();\n"
             "  cookie.keep_re(\"^(session|lang)$\");\n"
             "  set req.http.kept = cookie.get_string();\n"
             "  cookie.keep(\"lang\");\n"
             "  set req.http.k2 = cookie.get_string();\n"
             "  cookie.filter_re(\"^la\");\n"
             "  set req.http.k3 = cookie.get_string();\n"
             "}\n"
             "sub vcl_deliver { set resp.http.later = cookie.get(\"session\"); cookie.clean(); set "
             "resp.http.c = cookie.get_string(); }\n");

    (void)state;
    mock_set(&r->m, VCL_WHERE_REQ, "Cookie", "_ga=GA1; session=abc ; tmp=1;_gid=x; other=y");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(HDR(REQ, "sess"), "abc");
    assert_string_equal(HDR(REQ, "has"), "true/false");
    assert_string_equal(HDR(REQ, "Cookie"), "session=abc; other=y; lang=en");
    assert_string_equal(HDR(REQ, "kept"), "session=abc; lang=en");
    assert_string_equal(HDR(REQ, "k2"), "lang=en");
    assert_string_equal(HDR(REQ, "k3"), "");
    mock_run_init(r); /* a new request: fresh jar */
    mock_set(&r->m, VCL_WHERE_REQ, "Cookie", "session=zz");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(run(p, VCL_SUB_DELIVER), 0);
    assert_string_equal(HDR(RESP, "later"), ""); /* filtered by the keep chain */
    assert_string_equal(HDR(RESP, "c"), "");
    vcl_program_release(&p);
}

static void
var_vmod_keeps_values_across_subs_of_a_request(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("import var;\n"
                                 "sub vcl_recv {\n"
                                 "  var.set(\"orig\", req.url);\n"
                                 "  var.set_int(\"n\", 41);\n"
                                 "  var.set_duration(\"d\", 2m);\n"
                                 "  var.set_real(\"r\", 0.5);\n"
                                 "  var.global_set(\"g\", \"global-\" + req.url);\n"
                                 "  set req.url = \"/rewritten\";\n"
                                 "}\n"
                                 "sub vcl_deliver {\n"
                                 "  set resp.http.orig = var.get(\"orig\");\n"
                                 "  set resp.http.n = var.get_int(\"n\") + 1;\n"
                                 "  set resp.http.d = var.get_duration(\"d\");\n"
                                 "  set resp.http.r = var.get_real(\"r\");\n"
                                 "  set resp.http.none = var.get(\"none\");\n"
                                 "  set resp.http.g = var.global_get(\"g\");\n"
                                 "  var.clear();\n"
                                 "  set resp.http.cleared = var.get_int(\"n\");\n"
                                 "}\n");

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_URL, "/orig");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(run(p, VCL_SUB_DELIVER), 0);
    assert_string_equal(HDR(RESP, "orig"), "/orig");
    assert_string_equal(HDR(RESP, "n"), "42");
    assert_string_equal(HDR(RESP, "d"), "120.000");
    assert_string_equal(HDR(RESP, "r"), "0.500");
    assert_string_equal(HDR(RESP, "none"), "");
    assert_string_equal(HDR(RESP, "g"), "global-/orig");
    assert_string_equal(HDR(RESP, "cleared"), "0");
    mock_run_init(r); /* globals outlive the request, per-request vars do not */
    assert_int_equal(run(p, VCL_SUB_DELIVER), 0);
    assert_string_equal(HDR(RESP, "g"), "global-/orig");
    assert_string_equal(HDR(RESP, "orig"), "");
    vcl_program_release(&p);
}

static void
xkey_purge_goes_to_the_host(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("import xkey;\n"
                                 "sub vcl_recv {\n"
                                 "  if (req.method == \"PURGE\") {\n"
                                 "    set req.http.n = xkey.purge(req.http.xkey-purge);\n"
                                 "    return (synth(200, \"Purged \" + req.http.n));\n"
                                 "  }\n"
                                 "  set req.http.n = xkey.softpurge(\"a b\");\n"
                                 "}\n");

    (void)state;
    mock_str(&r->m, VCL_VAR_REQ_METHOD, "PURGE");
    mock_set(&r->m, VCL_WHERE_REQ, "xkey-purge", "post-1 post-2");
    r->m.xkey_count = 7;
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(r->m.xkey, "post-1 post-2");
    assert_false(r->m.xkey_soft);
    assert_memory_equal(r->res.reason.p, "Purged 7", 8);
    mock_run_init(r);
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_true(r->m.xkey_soft);
    vcl_program_release(&p);
}

static void
directors_are_declared_and_resolved_by_the_host(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog(
        "import directors;\n"
        "backend b1 { .host = \"10.0.0.1\"; .port = \"8080\"; .connect_timeout = 1s;\n"
        "  .first_byte_timeout = 30s; .between_bytes_timeout = 5s; .max_connections = 100;\n"
        "  .probe = { .url = \"/health\"; .interval = 2s; .window = 5; .threshold = 3; } }\n"
        "backend b2 { .host = \"10.0.0.2\"; .probe = hp; .host_header = \"www\"; .ssl = true;\n"
        "  .ssl_sni = false; .ssl_verify_host = 0; .ssl_ca_file = \"ca.pem\"; }\n"
        "backend sock { .path = \"/run/app.sock\"; }\n"
        "backend nobody none;\n"
        "probe hp { .request = \"GET /ping HTTP/1.1\" \"Host: x\"; .expected_response = 204; }\n"
        "sub vcl_init {\n"
        "  new rr = directors.round_robin();\n"
        "  rr.add_backend(b1);\n"
        "  rr.add_backend(b2);\n"
        "  new h = directors.hash();\n"
        "  h.add_backend(b1, 1.5);\n"
        "  h.add_backend(b2, 2);\n"
        "  new fb = directors.fallback(sticky = true);\n"
        "  fb.add_backend(rr);\n"
        "  fb.add_backend(sock);\n"
        "  new sh = directors.shard();\n"
        "  sh.add_backend(b1);\n"
        "  sh.reconfigure();\n"
        "}\n"
        "sub vcl_recv {\n"
        "  if (req.url ~ \"^/h\") { set req.backend_hint = h.backend(req.url); }\n"
        "  else if (req.url ~ \"^/n\") { set req.backend_hint = nobody; }\n"
        "  else { set req.backend_hint = fb.backend(); }\n"
        "  set req.http.be = req.backend_hint;\n"
        "}\n");
    const struct vcl_backend_decl *b;
    const struct vcl_probe_decl *pr;
    const struct vcl_director_decl *d;

    (void)state;
    assert_int_equal(vcl_program_backend_count(p), 5);
    b = vcl_program_backend(p, 1);
    assert_string_equal(b->name, "b1");
    assert_string_equal(b->host, "10.0.0.1");
    assert_string_equal(b->port, "8080");
    assert_true(b->connect_timeout == 1 && b->first_byte_timeout == 30 &&
                b->between_bytes_timeout == 5);
    assert_int_equal(b->max_connections, 100);
    assert_true(b->probe >= 0);
    pr = vcl_program_probe(p, (size_t)b->probe);
    assert_string_equal(pr->name, "b1.probe");
    assert_string_equal(pr->url, "/health");
    assert_true(pr->interval == 2);
    assert_int_equal(pr->window, 5);
    assert_int_equal(pr->initial, 2);
    assert_false(b->ssl);
    assert_true(b->ssl_sni && b->ssl_verify_peer && b->ssl_verify_host);  /* defaults */
    assert_null(b->ssl_ca_file);
    b = vcl_program_backend(p, 2);
    assert_true(b->ssl);
    assert_false(b->ssl_sni);
    assert_true(b->ssl_verify_peer);
    assert_false(b->ssl_verify_host);
    assert_string_equal(b->ssl_ca_file, "ca.pem");
    assert_string_equal(b->host_header, "www");
    pr = vcl_program_probe(p, (size_t)b->probe);
    assert_string_equal(pr->name, "hp");
    assert_null(pr->url);
    assert_string_equal(pr->request, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(pr->expected_response, 204);
    assert_string_equal(vcl_program_backend(p, 3)->path, "/run/app.sock");
    assert_true(vcl_program_backend(p, 4)->none);
    assert_null(vcl_program_backend(p, 5));
    assert_int_equal(vcl_program_default_backend(p).kind, VCL_REF_BACKEND);
    assert_int_equal(vcl_program_default_backend(p).idx, 0);

    assert_int_equal(vcl_program_director_count(p), 4);
    d = vcl_program_director(p, 0);
    assert_string_equal(d->name, "rr");
    assert_int_equal(d->type, VCL_DIR_ROUND_ROBIN);
    assert_int_equal(d->n_members, 2);
    d = vcl_program_director(p, 1);
    assert_int_equal(d->type, VCL_DIR_HASH);
    assert_true(d->members[0].weight == 1.5 && d->members[1].weight == 2);
    d = vcl_program_director(p, 2);
    assert_int_equal(d->type, VCL_DIR_FALLBACK);
    assert_true(d->sticky);
    assert_int_equal(d->members[0].ref.kind, VCL_REF_DIRECTOR);
    assert_int_equal(d->members[0].ref.idx, 0);
    assert_int_equal(d->members[1].ref.kind, VCL_REF_BACKEND);
    assert_int_equal(d->members[1].ref.idx, 3);
    assert_int_equal(vcl_program_director(p, 3)->type, VCL_DIR_SHARD);

    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->m.vars[VCL_VAR_REQ_BACKEND_HINT].u.ref.kind, VCL_REF_DIRECTOR);
    assert_int_equal(r->m.vars[VCL_VAR_REQ_BACKEND_HINT].u.ref.idx, 2);
    mock_run_init(r);
    r->m.dir_pick = 2; /* the daemon's hash director picks b2 */
    mock_str(&r->m, VCL_VAR_REQ_URL, "/h");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->m.vars[VCL_VAR_REQ_BACKEND_HINT].u.ref.kind, VCL_REF_BACKEND);
    assert_int_equal(r->m.vars[VCL_VAR_REQ_BACKEND_HINT].u.ref.idx, 2);
    mock_run_init(r);
    mock_str(&r->m, VCL_VAR_REQ_URL, "/n");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->m.vars[VCL_VAR_REQ_BACKEND_HINT].u.ref.kind, VCL_REF_NONE);
    vcl_program_release(&p);
}

static void
migration_mode_stubs_unknown_vmods(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_options opt;
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    const char *src = "vcl 4.1;\nbackend b { .host = \"h\"; }\n"
                      "import geoip2;\nimport vsthrottle;\n"
                      "sub vcl_init { new geo = geoip2.geoip2(\"/x.mmdb\"); }\n"
                      "sub vcl_recv {\n"
                      "  set req.http.country = geo.lookup(\"country/iso_code\", client.ip);\n"
                      "  if (vsthrottle.is_denied(client.ip, 10, 1s)) { return (synth(429)); }\n"
                      "  set req.http.n = 1 + vsthrottle.remaining(client.ip, 10, 1s);\n"
                      "  vsthrottle.noop();\n"
                      "  return (hash);\n"
                      "}\n";

    (void)state;
    /* off: a compile error naming the vmod and the line */
    assert_int_equal(vcl_compile_string("m.vcl", src, strlen(src), NULL, &p, &d), VCL_ECOMPILE);
    assert_non_null(
        strstr(vcl_diags_text(d), "m.vcl:3:8: error: vmod 'geoip2' is not provided by accel"));
    /* the message lists every vmod accel has, tls included */
    assert_non_null(strstr(vcl_diags_text(d), "(known: std, directors, xkey, cookie, var, tls;"));
    vcl_diags_free(&d);
    vcl_options_init(&opt);
    opt.unknown_vmods_stub = true;
    assert_int_equal(vcl_compile_string("m.vcl", src, strlen(src), &opt, &p, &d), 0);
    assert_false(vcl_diags_has_error(d));
    assert_non_null(
        strstr(vcl_diags_text(d), "m.vcl:7:26: warning: call to 'geo.lookup' of an unknown vmod"));
    assert_non_null(
        strstr(vcl_diags_text(d), "m.vcl:8:7: warning: call to 'vsthrottle.is_denied'"));
    vcl_diags_free(&d);
    mock_run_init(r);
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_int_equal(r->res.action, VCL_ACT_HASH);
    assert_string_equal(HDR(REQ, "country"), "");
    assert_string_equal(HDR(REQ, "n"), "1");
    vcl_program_release(&p);
}

static void
arena_overflow_is_an_error_not_a_crash(void **state)
{
    struct vcl_program *p = prog("sub vcl_recv {\n"
                                 "  set req.http.a = req.url + req.url + req.url + req.url;\n"
                                 "  set req.http.b = regsuball(req.http.a, \"x\", \"yy\");\n"
                                 "}\n");
    struct mock m;
    char ws[64];
    struct vcl_arena a = {ws, sizeof(ws), 0};
    struct vcl_ctx ctx;
    struct vcl_result res;
    char url[200];

    (void)state;
    mock_init(&m);
    memset(url, 'x', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    mock_str(&m, VCL_VAR_REQ_URL, url);
    vcl_ctx_init(&ctx, &mock_ops, &m, &a);
    assert_int_equal(vcl_run(p, VCL_SUB_RECV, &ctx, &res), VCL_ENOSPC);
    assert_int_equal(res.action, VCL_ACT_FAIL);
    assert_string_equal(ctx.error, "request arena full");
    assert_int_equal(ctx.error_line, 4);
    assert_true(a.used <= a.size);
    /* big enough for the concatenation but not the regex state */
    {
        static char ws2[900];
        struct vcl_arena a2 = {ws2, sizeof(ws2), 0};

        vcl_ctx_init(&ctx, &mock_ops, &m, &a2);
        assert_true(vcl_run(p, VCL_SUB_RECV, &ctx, &res) == VCL_ENOSPC);
        assert_int_equal(res.action, VCL_ACT_FAIL);
    }
    vcl_program_release(&p);
}

static void
host_errors_fail_the_run(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("sub vcl_recv { if (req.url == \"/\") { return (pass); } }\n");

    (void)state;
    r->m.fail_get_var = true;
    assert_int_equal(run(p, VCL_SUB_RECV), VCL_EHOST);
    assert_int_equal(r->res.action, VCL_ACT_FAIL);
    assert_string_equal(r->ctx.error, "host get_var failed");
    vcl_program_release(&p);
}

static void
program_is_reference_counted_and_dumpable(void **state)
{
    struct vcl_program *p = prog("acl a { \"10.0.0.0\"/8; }\n"
                                 "sub f { set req.http.x = \"1\"; }\n"
                                 "sub vcl_recv { if (client.ip ~ a) { call f; } }\n");
    struct vcl_program *q = vcl_program_ref(p);
    char *dump;

    (void)state;
    dump = vcl_program_dump(q);
    assert_non_null(strstr(dump, "backend default: host 127.0.0.1 (default)"));
    assert_non_null(strstr(dump, "acl a: 10.0.0.0/8"));
    assert_non_null(strstr(dump, "sub f:"));
    assert_non_null(strstr(dump, "acl     ~ a"));
    assert_non_null(strstr(dump, "call    f"));
    assert_non_null(strstr(dump, "sub vcl_hash: (builtin only)"));
    assert_non_null(strstr(dump, "<builtin>:"));
    free(dump);
    vcl_program_release(&p);
    assert_null(p);
    vcl_program_release(&q); /* the last reference frees */
    assert_null(q);
    vcl_program_release(&q); /* NULL-safe */
}

static char trace_buf[4096];

static void
collect_trace(void *priv, const char *file, unsigned line, struct vcl_str text)
{
    size_t l = strlen(trace_buf);

    (void)priv;
    snprintf(trace_buf + l, sizeof(trace_buf) - l, "%s:%u %.*s\n", file, line, (int)text.len,
             text.p);
}

static void
trace_explains_every_effect_with_its_line(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p = prog("sub clean { unset req.http.Cookie; }\n"
                                 "sub vcl_recv {\n"
                                 "  call clean;\n"
                                 "  set req.http.X = \"a\" + 1;\n"
                                 "}\n"
                                 "sub vcl_backend_response { set beresp.ttl = 10s; }\n");
    struct vcl_host_ops ops = mock_ops;

    (void)state;
    ops.trace = collect_trace;
    vcl_ctx_init(&r->ctx, &ops, &r->m, &r->arena);
    trace_buf[0] = '\0';
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(trace_buf, "test.vcl:5 call clean\n"
                                   "test.vcl:3 unset req.http.Cookie\n"
                                   "test.vcl:6 set req.http.X = \"a1\"\n"
                                   "<builtin>:34 return (hash)\n");
    trace_buf[0] = '\0';
    mock_set(&r->m, VCL_WHERE_BERESP, "Set-Cookie", "a=b");
    assert_int_equal(run(p, VCL_SUB_BACKEND_RESPONSE), 0);
    assert_string_equal(trace_buf, "test.vcl:8 set beresp.ttl = 10.000\n"
                                   "<builtin>:106 set beresp.ttl = 120.000\n"
                                   "<builtin>:107 set beresp.uncacheable = true\n"
                                   "<builtin>:109 return (deliver)\n");
    trace_buf[0] = '\0';
    assert_int_equal(run(p, VCL_SUB_HASH), 0);
    assert_non_null(strstr(trace_buf, "<builtin>:46 hash_data(\"/\")\n"));
    vcl_program_release(&p);
}

static void
negation_and_or_of_computed_values(void **state)
{
    struct mock_run *r = &runs[0];
    struct vcl_program *p =
        prog("import std;\n"
             "sub vcl_recv {\n"
             "  set req.http.a = -std.integer(req.http.n, 0) + \"/\" + -std.duration(req.http.n + "
             "\"s\", 0s);\n"
             "  if (req.http.missing || req.http.n) { set req.http.b = \"or\"; }\n"
             "  if (req.http.missing && req.http.n) { set req.http.c = \"and\"; }\n"
             "  std.tolower(\"IGNORED\");\n"
             "  set req.http.d = \"x\";\n"
             "}\n");

    (void)state;
    mock_set(&r->m, VCL_WHERE_REQ, "n", "7");
    assert_int_equal(run(p, VCL_SUB_RECV), 0);
    assert_string_equal(HDR(REQ, "a"), "-7/-7.000");
    assert_string_equal(HDR(REQ, "d"), "x"); /* a value-returning call as a statement */
    assert_string_equal(HDR(REQ, "b"), "or");
    assert_null(HDR(REQ, "c"));
    vcl_program_release(&p);
}

static void
too_complex_expressions_are_compile_errors(void **state)
{
    char src[16384];
    size_t n;
    char *err;

    (void)state;
    n = (size_t)snprintf(src, sizeof(src),
                         "vcl 4.1;\nbackend b { .host = \"h\"; }\n"
                         "sub vcl_recv { set req.http.x = \"a\"");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, " + req.url");
    snprintf(src + n, sizeof(src) - n, "; }\n");
    err = mock_compile_error(src);
    assert_non_null(strstr(err, "expression too complex"));
    free(err);
}

static void
builtin_source_is_printable_and_compiles_alone(void **state)
{
    const char *b = vcl_builtin_source();
    struct vcl_program *p;

    (void)state;
    assert_non_null(strstr(b, "sub vcl_recv {"));
    assert_non_null(strstr(b, "set beresp.ttl = 120s;"));
    p = mock_compile(b);
    assert_non_null(p);
    vcl_program_release(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_and_unset_headers_and_concatenate),
        cmocka_unit_test(if_elseif_else_pick_one_branch),
        cmocka_unit_test(comparisons_and_logic_for_every_type),
        cmocka_unit_test(duration_time_and_integer_arithmetic),
        cmocka_unit_test(integer_division_by_zero_fails_the_request),
        cmocka_unit_test(regex_match_and_no_match),
        cmocka_unit_test(regsub_and_regsuball_expand_captures),
        cmocka_unit_test(acl_matching_ipv4_ipv6_masks_and_negation),
        cmocka_unit_test(return_actions_carry_their_arguments),
        cmocka_unit_test(restart_and_retry_are_bounded),
        cmocka_unit_test(builtin_recv_defaults),
        cmocka_unit_test(builtin_hash_and_other_subs),
        cmocka_unit_test(builtin_backend_response_marks_hit_for_miss),
        cmocka_unit_test(hit_for_miss_ttl_is_configurable),
        cmocka_unit_test(user_bodies_run_in_order_then_fall_through),
        cmocka_unit_test(return_inside_a_custom_sub_ends_the_builtin_sub),
        cmocka_unit_test(scalar_variables_reach_the_host_with_their_types),
        cmocka_unit_test(builtin_functions_hash_ban_synthetic_log),
        cmocka_unit_test(std_string_and_conversion_functions),
        cmocka_unit_test(cookie_vmod_parses_filters_and_rebuilds),
        cmocka_unit_test(var_vmod_keeps_values_across_subs_of_a_request),
        cmocka_unit_test(xkey_purge_goes_to_the_host),
        cmocka_unit_test(directors_are_declared_and_resolved_by_the_host),
        cmocka_unit_test(migration_mode_stubs_unknown_vmods),
        cmocka_unit_test(arena_overflow_is_an_error_not_a_crash),
        cmocka_unit_test(host_errors_fail_the_run),
        cmocka_unit_test(program_is_reference_counted_and_dumpable),
        cmocka_unit_test(builtin_source_is_printable_and_compiles_alone),
        cmocka_unit_test(trace_explains_every_effect_with_its_line),
        cmocka_unit_test(negation_and_or_of_computed_values),
        cmocka_unit_test(too_complex_expressions_are_compile_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
