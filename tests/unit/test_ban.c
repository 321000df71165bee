/*
 * test_ban.c -- the ban expression parser, its canonical text and the
 * evaluator (accel/cache/ban.c).
 *
 * Objects are a small fake: a URL, a Host, a status and two header tables
 * (object and request) looked up case-insensitively, as the cache will.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ban.h"

/*--------------------------------------------------------------------
 * Helpers.
 */

struct fake_hdr {
    const char *name, *value;
};

struct fake {
    const struct fake_hdr *obj, *req;   /* NULL-name terminated */
};

static bool
lookup(const struct fake_hdr *h, struct ac_slice name, struct ac_slice *value)
{
    for (; h != NULL && h->name != NULL; h++) {
        if (ac_slice_caseeq(name, AC_SLICE(h->name, strlen(h->name)))) {
            *value = AC_SLICE(h->value, strlen(h->value));
            return true;
        }
    }
    return false;
}

static ban_header_f on_obj_header, on_req_header;

static bool
on_obj_header(void *arg, struct ac_slice name, struct ac_slice *value)
{
    return lookup(((struct fake *)arg)->obj, name, value);
}

static bool
on_req_header(void *arg, struct ac_slice name, struct ac_slice *value)
{
    return lookup(((struct fake *)arg)->req, name, value);
}

static const struct fake_hdr obj_hdrs[] = {
    { "Content-Type", "image/png" },
    { "X-Empty", "" },
    { "Cache-Tag", "a b \"q\" c\\d" },
    { NULL, NULL },
};
static const struct fake_hdr req_hdrs[] = {
    { "Host", "req.example.com" },
    { "Accept-Language", "en-GB" },
    { NULL, NULL },
};
static struct fake fake = { obj_hdrs, req_hdrs };

static struct ban_obj
mkobj(const char *url, unsigned status)
{
    struct ban_obj o = {
        .url = AC_SLICE(url, strlen(url)),
        .host = AC_LIT("www.example.com"),
        .status = status,
        .obj_header = on_obj_header,
        .req_header = on_req_header,
        .arg = &fake,
        .ttl_left = 120,
        .age = 30,
    };
    return o;
}

static struct ban *
must_parse(const char *text)
{
    struct ban *b = NULL;
    char err[256];

    if (ban_parse(AC_SLICE(text, strlen(text)), &b, err, sizeof err) != 0)
        fail_msg("ban_parse(%s): %s", text, err);
    assert_non_null(b);
    return b;
}

/* Parse must fail; the message must start with "col COL:" and contain sub. */
static void
must_fail(const char *text, int col, const char *sub)
{
    struct ban *b = NULL;
    char err[256], pfx[32];

    assert_int_equal(ban_parse(AC_SLICE(text, strlen(text)), &b, err, sizeof err), -1);
    assert_null(b);
    snprintf(pfx, sizeof pfx, "col %d: ", col);
    if (strncmp(err, pfx, strlen(pfx)) != 0 || strstr(err, sub) == NULL)
        fail_msg("ban_parse(%s): got \"%s\", want \"%s...%s\"", text, err, pfx, sub);
}

static void
expect_text(const char *in, const char *canon)
{
    struct ban *b = must_parse(in);

    assert_string_equal(ban_text(b), canon);
    ban_free(&b);
    assert_null(b);
}

static bool
matches(const char *text, const struct ban_obj *o)
{
    struct ban *b = must_parse(text);
    bool m = ban_match(b, o);

    ban_free(&b);
    return m;
}

/*--------------------------------------------------------------------
 * Parsing: each form, canonical text.
 */

static void
test_parse_fields(void **state)
{
    (void)state;
    expect_text("req.url == /a", "req.url == \"/a\"");
    expect_text("req.http.Host == example.com", "req.http.host == \"example.com\"");
    expect_text("obj.status == 200", "obj.status == 200");
    expect_text("obj.http.Content-Type ~ ^image/", "obj.http.content-type ~ \"^image/\"");
    expect_text("obj.ttl > 10s", "obj.ttl > 10s");
    expect_text("obj.age <= 1.5m", "obj.age <= 90s");
    expect_text("obj.age < 250ms", "obj.age < 0.25s");
    expect_text("obj.ttl >= -1h", "obj.ttl >= -3600s");
    expect_text("obj.ttl == 1d", "obj.ttl == 86400s");
    expect_text("obj.ttl != 0.0s", "obj.ttl != 0s");
    expect_text("REQ.URL == x", "req.url == \"x\"");
}

static void
test_parse_ops(void **state)
{
    (void)state;
    expect_text("req.url==x", "req.url == \"x\"");
    expect_text("req.url!=x", "req.url != \"x\"");
    expect_text("req.url~x", "req.url ~ \"x\"");
    expect_text("req.url!~x", "req.url !~ \"x\"");
    expect_text("obj.status<300", "obj.status < 300");
    expect_text("obj.status>300", "obj.status > 300");
    expect_text("obj.status<=300", "obj.status <= 300");
    expect_text("obj.status>=300", "obj.status >= 300");
    expect_text("obj.status != \"404\"", "obj.status != 404");
}

static void
test_parse_quoting(void **state)
{
    (void)state;
    expect_text("req.url ~ \"^/blog/\"", "req.url ~ \"^/blog/\"");
    expect_text("req.url == \"a b\"", "req.url == \"a b\"");
    expect_text("req.url == \"say \\\"hi\\\"\"", "req.url == \"say \\\"hi\\\"\"");
    expect_text("req.url == \"back\\\\slash\"", "req.url == \"back\\\\slash\"");
    /* other backslashes are kept for the regex engine */
    expect_text("req.url ~ \"\\d+\"", "req.url ~ \"\\\\d+\"");
    expect_text("req.url == \"\"", "req.url == \"\"");
    expect_text("req.url == a\"b", "req.url == \"a\\\"b\"");
    expect_text("  \t req.url \n==\r\n \"x\"  \t", "req.url == \"x\"");
    /* a bare word runs to whitespace, "&&" included (as in Varnish) */
    expect_text("req.url ~ ^/a&&obj.status==1", "req.url ~ \"^/a&&obj.status==1\"");
}

static void
test_parse_unescape(void **state)
{
    struct ban_obj o = mkobj("/a \"b\" \\c", 200);

    (void)state;
    assert_true(matches("req.url == \"/a \\\"b\\\" \\\\c\"", &o));
    assert_true(matches("obj.http.cache-tag == \"a b \\\"q\\\" c\\\\d\"", &o));
    assert_true(matches("req.url ~ \"\\\\\\\\c$\"", &o));   /* regex \\c$ */
    assert_true(matches("req.url ~ \"^/a\\s\"", &o));
}

static void
test_canonical_dedup(void **state)
{
    struct ban *a, *b, *c;

    (void)state;
    a = must_parse("obj.http.content-type ~ \"^image/\" && req.url ~ \"^/blog/\"");
    b = must_parse("req.url~^/blog/ &&obj.http.Content-Type   ~ ^image/");
    c = must_parse("req.url ~ ^/blog/ && obj.http.CONTENT-TYPE ~ \"^image/\" && req.url ~ \"^/blog/\"");
    assert_string_equal(ban_text(a), ban_text(b));
    assert_string_equal(ban_text(a), ban_text(c));
    assert_string_equal(ban_text(a), "obj.http.content-type ~ \"^image/\" && req.url ~ \"^/blog/\"");
    ban_free(&a);
    ban_free(&b);
    ban_free(&c);
    ban_free(&c);   /* NULL is fine */

    /* different ops / args stay different */
    a = must_parse("req.url ~ /a");
    b = must_parse("req.url == /a");
    assert_string_not_equal(ban_text(a), ban_text(b));
    ban_free(&a);
    ban_free(&b);
}

static void
test_canonical_roundtrip(void **state)
{
    static const char *const in[] = {
        "req.url ~ \"\\d\\\"x\\\\\\\\\" && obj.status >= 500 && obj.ttl < 1.5ms",
        "obj.http.x-a-b == \"\" && req.http.Cookie !~ (?i)session",
        "obj.age > 1y && obj.age != 0.000001s",
        "obj.ttl <= 99y && obj.ttl > 0.001ms && obj.age < -31709791y",
    };

    (void)state;
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        struct ban *a = must_parse(in[i]);
        struct ban *b = must_parse(ban_text(a));
        assert_string_equal(ban_text(a), ban_text(b));
        ban_free(&a);
        ban_free(&b);
    }
}

static void
test_uses_req(void **state)
{
    struct ban *b;

    (void)state;
    b = must_parse("obj.status == 200 && obj.http.x ~ y");
    assert_false(ban_uses_req(b));
    ban_free(&b);
    b = must_parse("obj.status == 200 && req.url ~ y");
    assert_true(ban_uses_req(b));
    ban_free(&b);
    b = must_parse("req.http.host == y");
    assert_true(ban_uses_req(b));
    ban_free(&b);
}

/*--------------------------------------------------------------------
 * Errors.
 */

static void
test_errors(void **state)
{
    (void)state;
    must_fail("", 1, "empty ban");
    must_fail("   ", 4, "empty ban");
    must_fail("req.uri == /", 1, "unknown field 'req.uri'");
    must_fail("beresp.status == 200", 1, "unknown field");
    must_fail("== /", 1, "expected field");
    must_fail("req.url /", 9, "expected operator");
    must_fail("req.url", 8, "expected operator");
    must_fail("req.url = /", 9, "expected operator");
    must_fail("req.url ==", 11, "expected argument");
    must_fail("req.url ==   ", 14, "expected argument");
    must_fail("req.url == && obj.status == 1", 12, "expected argument");
    must_fail("req.url ~ \"(\"", 11, "bad regex: missing closing parenthesis");
    must_fail("req.url ~ [a", 11, "bad regex: missing terminating ]");
    must_fail("req.url == \"abc", 12, "unterminated quoted string");
    must_fail("req.url == \"abc\\\"", 12, "unterminated quoted string");
    must_fail("req.url == \"abc\"def", 17, "expected whitespace after quoted string");
    expect_text("req.url == \"a\"&&req.url==\"b\"", "req.url == \"a\" && req.url == \"b\"");
    must_fail("req.url == \"a\"||req.url==\"b\"", 15, "'||' is not supported");
    must_fail("req.url == /a garbage", 15, "expected '&&' or end of ban");
    must_fail("req.url == /a &", 15, "expected '&&'");
    must_fail("req.url == /a || req.url == /b", 15, "'||' is not supported");
    must_fail("req.url == /a &&", 17, "expected field");   /* nothing after && */
    must_fail("req.http. == x", 1, "expected a header name");
    must_fail("obj.http.a/b == x", 11, "invalid character in header name");
    must_fail("req.url < x", 9, "needs a numeric field");
    must_fail("obj.status ~ 200", 12, "needs a string field");
    must_fail("obj.status == 2000", 15, "expected a status code");
    must_fail("obj.status == abc", 15, "expected a status code");
    must_fail("obj.status == -1", 15, "expected a status code");
    must_fail("obj.ttl > 10", 11, "expected a duration");
    must_fail("obj.ttl > 10x", 11, "expected a duration");
    must_fail("obj.ttl > s", 11, "expected a duration");
    must_fail("obj.age > 1e3s", 11, "expected a duration");
    must_fail("obj.age ~ 1s", 9, "needs a string field");
    must_fail("obj.age > 0.0001ms", 11, "more precise than a microsecond");
    must_fail("obj.age > 0.0000001s", 11, "expected a duration");
    must_fail("obj.ttl > 99999999999y", 11, "duration out of range");
    must_fail("obj.ttl > 123456789012345678s", 11, "expected a duration");
    /* the longest number the syntax allows (26 bytes with its NUL) once
     * overflowed the parser's buffer (found by fuzz_ban; ASan build) */
    must_fail("obj.ttl > -66666666666666666.666666s", 11, "duration out of range");
    must_fail("obj.ttl > 66666666666666666.676666.ttl > 666s", 11, "expected a duration");
}

static void
test_error_details(void **state)
{
    struct ban *b = NULL;
    char err[256], small[12];
    char nul[] = "req.url == a\0b";
    char big[BAN_MAX_TEXT + 2];

    (void)state;
    /* the near-snippet shows what follows the column */
    assert_int_equal(ban_parse(AC_LIT("req.url == /a xyz"), &b, err, sizeof err), -1);
    assert_string_equal(err, "col 15: expected '&&' or end of ban near 'xyz'");
    assert_int_equal(ban_parse(AC_LIT("req.url"), &b, err, sizeof err), -1);
    assert_string_equal(err, "col 8: expected operator (== != ~ !~ < > <= >=) at end of text");
    /* a short buffer is truncated, still terminated; NULL is allowed */
    assert_int_equal(ban_parse(AC_LIT("req.url"), &b, small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(ban_parse(AC_LIT("req.url"), &b, NULL, 0), -1);
    /* NUL bytes and over-long text */
    assert_int_equal(ban_parse(AC_SLICE(nul, sizeof nul - 1), &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "col 13: NUL byte"));
    memset(big, ' ', sizeof big);
    assert_int_equal(ban_parse(AC_SLICE(big, sizeof big), &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than"));
    assert_null(b);
}

static void
test_too_many_conditions(void **state)
{
    char text[4096];
    size_t n = 0;
    struct ban *b = NULL;
    char err[256];

    (void)state;
    for (int i = 0; i < BAN_MAX_COND; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%sreq.url != /%d", i ? " && " : "", i);
    b = must_parse(text);
    ban_free(&b);
    snprintf(text + n, sizeof text - n, " && req.url != /x");
    assert_int_equal(ban_parse(AC_SLICE(text, strlen(text)), &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than"));
    /* duplicates still count while parsing, but collapse afterwards */
    b = must_parse("req.url == a && req.url == a && req.url == a");
    assert_string_equal(ban_text(b), "req.url == \"a\"");
    ban_free(&b);
}

/*--------------------------------------------------------------------
 * Matching.
 */

static void
test_match_strings(void **state)
{
    struct ban_obj o = mkobj("/blog/post?id=1", 200);

    (void)state;
    assert_true(matches("req.url == /blog/post?id=1", &o));
    assert_false(matches("req.url == /blog/post", &o));
    assert_true(matches("req.url != /blog/post", &o));
    assert_false(matches("req.url != /blog/post?id=1", &o));
    assert_true(matches("req.url ~ ^/blog/", &o));
    assert_false(matches("req.url ~ ^/news/", &o));
    assert_true(matches("req.url !~ ^/news/", &o));
    assert_false(matches("req.url !~ ^/blog/", &o));
    assert_true(matches("obj.http.content-type ~ \"^image/\"", &o));
    assert_true(matches("obj.http.content-type == image/png", &o));
    assert_false(matches("obj.http.content-type == IMAGE/PNG", &o));
    assert_true(matches("obj.http.x-empty == \"\"", &o));
    assert_true(matches("obj.http.x-empty ~ ^$", &o));
    assert_true(matches("req.http.accept-language ~ ^en", &o));
}

static void
test_match_absent(void **state)
{
    struct ban_obj o = mkobj("/", 200);

    (void)state;
    assert_false(matches("obj.http.x-missing == \"\"", &o));
    assert_false(matches("obj.http.x-missing ~ .*", &o));
    assert_false(matches("obj.http.x-missing ~ ^$", &o));
    assert_true(matches("obj.http.x-missing != anything", &o));
    assert_true(matches("obj.http.x-missing !~ .*", &o));
    assert_false(matches("req.http.x-missing == a", &o));
    assert_true(matches("req.http.x-missing !~ a", &o));
    /* no accessors at all: every header is absent */
    o.obj_header = NULL;
    o.req_header = NULL;
    assert_false(matches("obj.http.content-type ~ .", &o));
    assert_true(matches("obj.http.content-type != image/png", &o));
    assert_false(matches("req.http.accept-language ~ .", &o));
    /* an empty URL is an empty string, not absent */
    o.url = AC_LIT("");
    assert_true(matches("req.url == \"\"", &o));
    assert_true(matches("req.url ~ ^$", &o));
}

static void
test_match_header_case(void **state)
{
    struct ban_obj o = mkobj("/", 200);

    (void)state;
    assert_true(matches("obj.http.CONTENT-TYPE == image/png", &o));
    assert_true(matches("obj.http.Content-Type == image/png", &o));
    assert_true(matches("req.http.ACCEPT-language == en-GB", &o));
}

static void
test_match_host(void **state)
{
    struct ban_obj o = mkobj("/", 200);

    (void)state;
    /* o.host answers req.http.host when set ... */
    assert_true(matches("req.http.Host == www.example.com", &o));
    assert_false(matches("req.http.host == req.example.com", &o));
    /* ... else the request header accessor does */
    o.host = AC_LIT("");
    assert_true(matches("req.http.host == req.example.com", &o));
}

static void
test_match_status(void **state)
{
    struct ban_obj o = mkobj("/", 404);

    (void)state;
    assert_true(matches("obj.status == 404", &o));
    assert_false(matches("obj.status == 200", &o));
    assert_true(matches("obj.status != 200", &o));
    assert_true(matches("obj.status >= 400", &o));
    assert_true(matches("obj.status >= 404", &o));
    assert_false(matches("obj.status > 404", &o));
    assert_true(matches("obj.status < 500", &o));
    assert_true(matches("obj.status <= 404", &o));
    assert_false(matches("obj.status < 404", &o));
    assert_true(matches("obj.status == 04", &o) == false);
}

static void
test_match_durations(void **state)
{
    struct ban_obj o = mkobj("/", 200);   /* ttl_left 120, age 30 */

    (void)state;
    assert_true(matches("obj.ttl > 1m", &o));
    assert_false(matches("obj.ttl > 2m", &o));
    assert_true(matches("obj.ttl >= 2m", &o));
    assert_true(matches("obj.ttl == 120s", &o));
    assert_true(matches("obj.age < 1m", &o));
    assert_true(matches("obj.age == 30000ms", &o));
    assert_false(matches("obj.age > 30s", &o));
    assert_true(matches("obj.age != 29s", &o));
}

static void
test_match_several(void **state)
{
    struct ban_obj o = mkobj("/blog/x.png", 200);

    (void)state;
    assert_true(matches("obj.http.content-type ~ \"^image/\" && req.url ~ \"^/blog/\"", &o));
    assert_false(matches("obj.http.content-type ~ \"^image/\" && req.url ~ \"^/news/\"", &o));
    assert_false(matches("obj.http.content-type ~ \"^text/\" && req.url ~ \"^/blog/\"", &o));
    assert_true(matches("obj.status == 200 && req.url ~ png$ && obj.http.x-missing !~ . && "
                        "req.http.host ~ example", &o));
    assert_false(matches("obj.status == 200 && req.url ~ png$ && obj.http.x-missing ~ .", &o));
}

static void
test_match_regex_flags(void **state)
{
    struct ban_obj o = mkobj("/Blog/Post", 200);

    (void)state;
    assert_false(matches("req.url ~ ^/blog/", &o));
    assert_true(matches("req.url ~ (?i)^/blog/", &o));
    assert_true(matches("req.url ~ \"(?i)^/BLOG/post$\"", &o));
    assert_false(matches("req.url !~ (?i)^/blog/", &o));
    /* a regex matches anywhere unless anchored */
    assert_true(matches("req.url ~ Post", &o));
    /* (*UTF) on bytes that are not UTF-8: no match, not an error */
    o.url = AC_LIT("a\xff");
    assert_true(matches("req.url ~ (*UTF)^a", &o));
    assert_false(matches("req.url ~ (*UTF)^a.$", &o));
    assert_true(matches("req.url !~ (*UTF)^a.$", &o));
}

static void
test_match_regex_limit(void **state)
{
    /* catastrophic backtracking hits the match limit: counts as a match */
    char url[64];
    struct ban_obj o;

    (void)state;
    memset(url, 'a', sizeof url - 2);
    url[sizeof url - 2] = 'b';
    url[sizeof url - 1] = '\0';
    o = mkobj(url, 200);
    assert_true(matches("req.url ~ ^(a+)+$", &o));
    assert_true(matches("req.url !~ ^(a+)+$", &o));
}

/* Many threads evaluate one ban at once (run under TSAN/helgrind too). */
struct thr_arg {
    const struct ban *b;
    int hits;
};

static void *
thr_main(void *p)
{
    struct thr_arg *t = p;
    struct ban_obj o1 = mkobj("/blog/a", 200), o2 = mkobj("/news/a", 200);

    for (int i = 0; i < 2000; i++)
        t->hits += ban_match(t->b, &o1) + ban_match(t->b, &o2);
    return NULL;
}

static void
test_match_threads(void **state)
{
    struct ban *b = must_parse("req.url ~ (?i)^/BLOG/ && obj.http.content-type ~ image");
    pthread_t th[4];
    struct thr_arg ta[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        ta[i] = (struct thr_arg){ b, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &ta[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(ta[i].hits, 2000);
    }
    ban_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_ops),
        cmocka_unit_test(test_parse_quoting),
        cmocka_unit_test(test_parse_unescape),
        cmocka_unit_test(test_canonical_dedup),
        cmocka_unit_test(test_canonical_roundtrip),
        cmocka_unit_test(test_uses_req),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_details),
        cmocka_unit_test(test_too_many_conditions),
        cmocka_unit_test(test_match_strings),
        cmocka_unit_test(test_match_absent),
        cmocka_unit_test(test_match_header_case),
        cmocka_unit_test(test_match_host),
        cmocka_unit_test(test_match_status),
        cmocka_unit_test(test_match_durations),
        cmocka_unit_test(test_match_several),
        cmocka_unit_test(test_match_regex_flags),
        cmocka_unit_test(test_match_regex_limit),
        cmocka_unit_test(test_match_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
