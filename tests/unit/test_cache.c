/*
 * test_cache.c -- the HTTP caching rules of accel/cache/cache.c (RFC 9111, RFC 9110
 * conditionals and ranges, RFC 9213 targeted fields, RFC 5861 stale-*).
 *
 * Every message is raw HTTP/1.1 text run through h1_parse_request /
 * h1_parse_response, so the functions see what the proxy sees.  Times are
 * parameters: T0 is the origin's Date ("Sun, 06 Nov 1994 08:49:37 GMT").
 *
 * Tests marked BUG pinned bugs found in review (each comment says what the
 * RFC asks); cache.c is fixed and they run as the "cache_regressions" group.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "http.h"
#include "h1_parse.h"

#define T0      784111777.0
#define D0      "Sun, 06 Nov 1994 08:49:37 GMT"   /* T0 */
#define D0_M10  "Sun, 06 Nov 1994 08:49:27 GMT"   /* T0 - 10 */
#define D0_M1000 "Sun, 06 Nov 1994 08:32:57 GMT"  /* T0 - 1000 */
#define D0_M10D "Thu, 27 Oct 1994 08:49:37 GMT"   /* T0 - 10 days */
#define D0_M100D "Fri, 29 Jul 1994 08:49:37 GMT"  /* T0 - 100 days */
#define D0_P10  "Sun, 06 Nov 1994 08:49:47 GMT"   /* T0 + 10 */
#define D0_P100 "Sun, 06 Nov 1994 08:51:17 GMT"   /* T0 + 100 */
#define D0_P600 "Sun, 06 Nov 1994 08:59:37 GMT"   /* T0 + 600 */
#define D0_P1000 "Sun, 06 Nov 1994 09:06:17 GMT"  /* T0 + 1000 */
#define DWED    "Wed, 21 Oct 2015 07:28:00 GMT"   /* a Wednesday: starts with 'W' */

#define MAXH 32

static const struct h1_limits LIM = {
    .max_head = 16384, .max_target = 4096, .max_header_line = 8192, .max_headers = MAXH,
};

/* ---- fixture: the parameters and the output buffers ---- */

struct fx {
    struct cache_params p;
    struct ac_buf a, b;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->p.default_grace = 10;
    f->p.default_keep = 3600;
    f->p.hfm_ttl = 120;
    f->p.heuristic_fraction = 0.1;
    f->p.heuristic_max = 86400;
    f->p.max_object_size = 1e8;
    f->p.targeted_cc = AC_LIT("Accel-Cache-Control");
    ac_buf_init(&f->a, 0, 0);
    ac_buf_init(&f->b, 0, 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    ac_buf_free(&f->a);
    ac_buf_free(&f->b);
    free(f);
    return 0;
}

/* ---- parsed messages; the text must outlive them (literals do) ---- */

struct rq {
    struct h1_request r;
    struct h1_header h[MAXH];
};
struct rs {
    struct h1_response r;
    struct h1_header h[MAXH];
};

static const struct h1_request *
parse_req(struct rq *m, const char *text)
{
    int n;

    memset(m, 0, sizeof(*m));
    m->r.hdrs = m->h;
    n = h1_parse_request(text, strlen(text), &LIM, &m->r);
    if (n <= 0)
        fail_msg("request did not parse (%d, %s):\n%s", n, m->r.reason ? m->r.reason : "", text);
    return &m->r;
}

static const struct h1_response *
parse_resp(struct rs *m, const char *text)
{
    int n;

    memset(m, 0, sizeof(*m));
    m->r.hdrs = m->h;
    n = h1_parse_response(text, strlen(text), &LIM, AC_LIT("GET"), &m->r);
    if (n <= 0)
        fail_msg("response did not parse (%d, %s):\n%s", n, m->r.reason ? m->r.reason : "", text);
    return &m->r;
}

/* A GET for http://example.com/a with extra field lines. */
#define GET(extra) "GET /a HTTP/1.1\r\nHost: example.com\r\n" extra "\r\n"
/* A response with Date: T0 and extra field lines. */
#define RESP(status, extra) "HTTP/1.1 " status "\r\nDate: " D0 "\r\n" extra "\r\n"

static void
assert_slice(struct ac_slice s, const char *want)
{
    size_t n = strlen(want);

    if (s.len != n || (n > 0 && memcmp(s.p, want, n) != 0))
        fail_msg("\"%.*s\" != \"%s\"", (int)s.len, s.p ? s.p : "", want);
}

static void
assert_buf(const struct ac_buf *b, const char *want, size_t n)
{
    if (b->len != n || memcmp(b->p, want, n) != 0)
        fail_msg("buffer \"%.*s\" (%zu) != \"%.*s\" (%zu)", (int)b->len, b->p ? b->p : "", b->len,
                 (int)n, want, n);
}
#define ASSERT_BUF(b, lit) assert_buf((b), (lit), sizeof(lit) - 1)

#define assert_secs(a, b) assert_secs_((a), (b), #a, __FILE__, __LINE__)
static void
assert_secs_(double got, double want, const char *expr, const char *file, int line)
{
    if (fabs(got - want) > 1e-6)
        fail_msg("%s:%d: %s is %.3f, want %.3f", file, line, expr, got, want);
}

/* cache_decide for a GET and resp, with explicit times. */
static void
decide_at(struct fx *f, const char *resp, double req_time, double resp_time,
          struct cache_decision *d)
{
    struct rq q;
    struct rs r;

    cache_decide(parse_req(&q, GET("")), parse_resp(&r, resp), req_time, resp_time, &f->p, d);
}

static void
decide(struct fx *f, const char *resp, struct cache_decision *d)
{
    decide_at(f, resp, T0, T0, d);
}

static void
assert_stored(const struct cache_decision *d, double ttl)
{
    if (!d->store)
        fail_msg("not stored: %s", d->why ? d->why : "(no reason)");
    assert_false(d->hfm);
    assert_secs(d->ttl, ttl);
}

static void
assert_hfm(const struct fx *f, const struct cache_decision *d)
{
    if (d->store)
        fail_msg("stored with ttl %.3f, want hit-for-miss", d->ttl);
    assert_true(d->hfm);
    assert_secs(d->hfm_ttl, f->p.hfm_ttl);
    assert_non_null(d->why);
}

static struct cache_cc
cc_of(const char *v)
{
    struct cache_cc cc;

    cache_cc_init(&cc);
    cache_cc_parse(&cc, AC_SLICE(v, strlen(v)));
    return cc;
}

/* ================= cache_cc_parse ================= */

static void
cc_init_marks_every_directive_absent(void **state)
{
    struct cache_cc cc;

    (void)state;
    cache_cc_init(&cc);
    assert_false(cc.present);
    assert_false(cc.no_store || cc.no_cache || cc.private_ || cc.public_ || cc.must_revalidate ||
                 cc.proxy_revalidate || cc.must_understand || cc.no_transform || cc.immutable ||
                 cc.invalid);
    assert_int_equal(cc.max_age, -1);
    assert_int_equal(cc.s_maxage, -1);
    assert_int_equal(cc.swr, -1);
    assert_int_equal(cc.sie, -1);
}

static void
cc_parse_recognises_every_directive(void **state)
{
    struct cache_cc cc = cc_of("no-store, no-cache, private, public, must-revalidate, "
                               "proxy-revalidate, must-understand, no-transform, immutable, "
                               "max-age=1, s-maxage=2, stale-while-revalidate=3, stale-if-error=4");

    (void)state;
    assert_true(cc.present);
    assert_true(cc.no_store);
    assert_true(cc.no_cache);
    assert_true(cc.private_);
    assert_true(cc.public_);
    assert_true(cc.must_revalidate);
    assert_true(cc.proxy_revalidate);
    assert_true(cc.must_understand);
    assert_true(cc.no_transform);
    assert_true(cc.immutable);
    assert_int_equal(cc.max_age, 1);
    assert_int_equal(cc.s_maxage, 2);
    assert_int_equal(cc.swr, 3);
    assert_int_equal(cc.sie, 4);
    assert_false(cc.invalid);
}

static void
cc_parse_sets_only_the_directives_present(void **state)
{
    struct cache_cc cc = cc_of("public");

    (void)state;
    assert_true(cc.present);
    assert_true(cc.public_);
    assert_false(cc.no_store || cc.private_ || cc.no_cache || cc.invalid);
    assert_int_equal(cc.max_age, -1);
    assert_int_equal(cc.s_maxage, -1);
}

static void
cc_parse_directive_names_are_case_insensitive(void **state)
{
    struct cache_cc cc = cc_of("Max-Age=5, NO-STORE, S-MaxAge=7");

    (void)state;
    assert_int_equal(cc.max_age, 5);
    assert_int_equal(cc.s_maxage, 7);
    assert_true(cc.no_store);
}

static void
cc_parse_accepts_quoted_values(void **state)
{
    struct cache_cc cc = cc_of("max-age=\"60\", stale-if-error=\"5\"");

    (void)state;
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.sie, 5);
    assert_false(cc.invalid);
}

static void
cc_parse_commas_inside_quotes_do_not_split(void **state)
{
    struct cache_cc cc = cc_of("private=\"Set-Cookie, max-age=5\", max-age=7");

    (void)state;
    assert_true(cc.private_);
    assert_int_equal(cc.max_age, 7);
}

static void
cc_parse_first_occurrence_of_a_repeated_directive_wins(void **state)
{
    struct cache_cc cc = cc_of("max-age=10, max-age=20, s-maxage=3, s-maxage=0");

    (void)state;
    assert_int_equal(cc.max_age, 10);
    assert_int_equal(cc.s_maxage, 3);
    /* across field lines too */
    cache_cc_parse(&cc, AC_LIT("max-age=99"));
    assert_int_equal(cc.max_age, 10);
}

static void
cc_parse_negative_value_is_invalid(void **state)
{
    struct cache_cc cc = cc_of("max-age=-1");

    (void)state;
    assert_true(cc.invalid);
    assert_true(cc.max_age <= 0);
}

static void
cc_parse_malformed_values_are_invalid(void **state)
{
    static const char *bad[] = {
        "max-age=abc", "max-age", "max-age=", "s-maxage=1.5", "max-age=\"\"",
        "stale-while-revalidate=x", "stale-if-error=-3", "max-age=1 0",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cache_cc cc = cc_of(bad[i]);
        if (!cc.invalid)
            fail_msg("\"%s\" not flagged invalid", bad[i]);
    }
}

static void
cc_parse_overflow_clamps_to_2_pow_31(void **state)
{
    struct cache_cc cc = cc_of("max-age=99999999999999999999999, s-maxage=2147483648");

    (void)state;
    assert_false(cc.invalid);
    assert_int_equal(cc.max_age, INT64_C(2147483648));
    assert_int_equal(cc.s_maxage, INT64_C(2147483648));
    cc = cc_of("max-age=2147483647");
    assert_int_equal(cc.max_age, INT64_C(2147483647));
}

static void
cc_parse_ignores_unknown_extensions(void **state)
{
    struct cache_cc cc = cc_of("foo, bar=baz, community=\"UCI\", x=\"a, no-store\", max-age=5");

    (void)state;
    assert_int_equal(cc.max_age, 5);
    assert_false(cc.no_store);
    assert_false(cc.invalid);
    assert_false(cc.private_ || cc.public_ || cc.no_cache);
}

static void
cc_parse_skips_empty_elements(void **state)
{
    struct cache_cc cc = cc_of(" , ,max-age=5,, ,no-cache,");

    (void)state;
    assert_int_equal(cc.max_age, 5);
    assert_true(cc.no_cache);
    assert_false(cc.invalid);
}

static void
cc_parse_several_field_lines_accumulate(void **state)
{
    struct cache_cc cc = cc_of("max-age=5");

    (void)state;
    cache_cc_parse(&cc, AC_LIT("no-store"));
    cache_cc_parse(&cc, AC_LIT("stale-while-revalidate=9"));
    assert_int_equal(cc.max_age, 5);
    assert_true(cc.no_store);
    assert_int_equal(cc.swr, 9);
}

/* ================= cache_key ================= */

static void
key_of(struct fx *f, const char *req)
{
    struct rq q;

    cache_key(parse_req(&q, req), &f->a);
    assert_false(ac_buf_error(&f->a));
}

static void
key_lowercases_the_host(void **state)
{
    struct fx *f = *state;

    key_of(f, "GET /Path HTTP/1.1\r\nHost: Example.COM\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com\n/Path");       /* the path keeps its case */
}

static void
key_strips_default_port_80(void **state)
{
    struct fx *f = *state;

    key_of(f, "GET / HTTP/1.1\r\nHost: example.com:80\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com\n/");
}

static void
key_keeps_other_ports(void **state)
{
    struct fx *f = *state;

    key_of(f, "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com:8080\n/");
    key_of(f, "GET / HTTP/1.1\r\nHost: example.com:180\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com:180\n/");
    key_of(f, "GET / HTTP/1.1\r\nHost: example.com:800\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com:800\n/");
}

static void
key_handles_ipv6_literal_hosts(void **state)
{
    struct fx *f = *state;

    key_of(f, "GET /x HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n");
    ASSERT_BUF(&f->a, "[2001:db8::1]\n/x");
    key_of(f, "GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
    ASSERT_BUF(&f->a, "[::1]\n/x");
    key_of(f, "GET /x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    ASSERT_BUF(&f->a, "[::1]:8080\n/x");
    key_of(f, "GET /x HTTP/1.1\r\nHost: [::80]\r\n\r\n");
    ASSERT_BUF(&f->a, "[::80]\n/x");
}

static void
key_of_absolute_form_uses_authority_and_path(void **state)
{
    struct fx *f = *state;

    key_of(f, "GET http://Example.com/a/b?q=1 HTTP/1.1\r\nHost: Example.com\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com\n/a/b?q=1");
    key_of(f, "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com\n/");
}

static void
key_keeps_the_query_as_received(void **state)
{
    struct fx *f = *state;

    key_of(f, "GET /a?b=1&c=2 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com\n/a?b=1&c=2");
    key_of(f, "GET /a?c=2&b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_BUF(&f->a, "example.com\n/a?c=2&b=1");
}

/* ================= cache_classify_request ================= */

static enum cache_req_kind
classify(const char *req, const char **why)
{
    struct rq q;

    return cache_classify_request(parse_req(&q, req), why);
}

static void
classify_get_and_head_are_looked_up(void **state)
{
    const char *why = "x";

    (void)state;
    assert_int_equal(classify("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &why), CACHE_REQ_LOOKUP);
    assert_null(why);
    assert_int_equal(classify("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", &why), CACHE_REQ_LOOKUP);
    assert_null(why);
}

static void
classify_credentials_pass(void **state)
{
    const char *why = NULL;

    (void)state;
    assert_int_equal(classify("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eDp5\r\n\r\n", &why),
                     CACHE_REQ_PASS);
    assert_string_equal(why, "Authorization");
    assert_int_equal(classify("HEAD / HTTP/1.1\r\nHost: a\r\ncookie: s=1\r\n\r\n", &why),
                     CACHE_REQ_PASS);
    assert_string_equal(why, "Cookie");
}

static void
classify_options_and_trace_pass(void **state)
{
    const char *why = NULL;

    (void)state;
    assert_int_equal(classify("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &why), CACHE_REQ_PASS);
    assert_non_null(why);
    assert_int_equal(classify("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n", &why), CACHE_REQ_PASS);
    assert_int_equal(classify("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", &why), CACHE_REQ_PASS);
}

static void
classify_unsafe_methods(void **state)
{
    static const char *reqs[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n",
        "PATCH / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    };
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        why = NULL;
        assert_int_equal(classify(reqs[i], &why), CACHE_REQ_UNSAFE);
        assert_non_null(why);
    }
}

static void
classify_methods_are_case_sensitive(void **state)
{
    const char *why;

    (void)state;
    /* RFC 9110 §9.1: "get" is not GET */
    assert_int_not_equal(classify("get / HTTP/1.1\r\nHost: a\r\n\r\n", &why), CACHE_REQ_LOOKUP);
}

/* ================= cache_decide: freshness lifetime (§4.2.1) ================= */

static void
decide_s_maxage_beats_max_age_and_expires(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Cache-Control: max-age=10, s-maxage=20\r\nExpires: " D0_P1000 "\r\n"),
           &d);
    assert_stored(&d, 20);
}

static void
decide_max_age_beats_expires(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Expires: " D0_P1000 "\r\nCache-Control: max-age=30\r\n"), &d);
    assert_stored(&d, 30);
}

static void
decide_expires_beats_heuristic(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Expires: " D0_P600 "\r\nLast-Modified: " D0_M10D "\r\n"), &d);
    assert_stored(&d, 600);
}

static void
decide_expires_lifetime_is_expires_minus_date(void **state)
{
    struct cache_decision d;

    /* Our clock is 50 s behind the origin's: the lifetime still comes from
     * the origin's two timestamps (600), not Expires - resp_time (650). */
    decide_at(*state, RESP("200 OK", "Expires: " D0_P600 "\r\n"), T0 - 50, T0 - 50, &d);
    assert_stored(&d, 600);
    assert_secs(d.initial_age, 0);
    assert_secs(d.date, T0);
}

static void
decide_expires_without_date_counts_from_response_time(void **state)
{
    struct cache_decision d;

    decide_at(*state, "HTTP/1.1 200 OK\r\nExpires: " D0_P600 "\r\n\r\n", T0 + 100, T0 + 100, &d);
    assert_stored(&d, 500);
    assert_secs(d.date, T0 + 100);
}

static void
decide_invalid_expires_means_already_expired(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    /* §5.3: "Expires: 0" is invalid and means already expired, and it is
     * explicit: no heuristic from Last-Modified either. */
    decide(f, RESP("200 OK", "Expires: 0\r\nLast-Modified: " D0_M10D "\r\n"), &d);
    assert_hfm(f, &d);
    assert_secs(d.ttl, 0);
}

static void
decide_expires_in_the_past_is_not_stored(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Expires: " D0_M10 "\r\n"), &d);
    assert_hfm(f, &d);
}

static void
decide_heuristic_is_a_fraction_of_time_since_last_modified(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Last-Modified: " D0_M1000 "\r\n"), &d);
    assert_stored(&d, 100);     /* 10% of 1000 s */
}

static void
decide_heuristic_is_capped_by_heuristic_max(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Last-Modified: " D0_M100D "\r\n"), &d);
    assert_stored(&d, 86400);   /* 10% of 100 days is 10 days, capped at 1 day */
}

static void
decide_heuristic_only_for_default_cacheable_status(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("404 Not Found", "Last-Modified: " D0_M1000 "\r\n"), &d);
    assert_stored(&d, 100);
    decide(f, RESP("301 Moved Permanently", "Location: /b\r\nLast-Modified: " D0_M1000 "\r\n"), &d);
    assert_stored(&d, 100);
    decide(f, RESP("302 Found", "Location: /b\r\nLast-Modified: " D0_M1000 "\r\n"), &d);
    assert_hfm(f, &d);
    decide(f, RESP("500 Internal Server Error", "Last-Modified: " D0_M1000 "\r\n"), &d);
    assert_hfm(f, &d);
}

static void
decide_no_freshness_information_leaves_hit_for_miss(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Content-Type: text/plain\r\n"), &d);
    assert_hfm(f, &d);
    assert_secs(d.ttl, 0);
    /* a Last-Modified not before Date gives no heuristic */
    decide(f, RESP("200 OK", "Last-Modified: " D0 "\r\n"), &d);
    assert_hfm(f, &d);
}

static void
decide_status_codes_with_explicit_freshness(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("404 Not Found", "Cache-Control: max-age=60\r\n"), &d);
    assert_stored(&d, 60);
    decide(f, RESP("302 Found", "Location: /b\r\n"), &d);
    assert_hfm(f, &d);
    decide(f, RESP("302 Found", "Location: /b\r\nCache-Control: max-age=60\r\n"), &d);
    assert_stored(&d, 60);
    decide(f, RESP("500 Internal Server Error", "Cache-Control: max-age=60\r\n"), &d);
    assert_stored(&d, 60);
}

static void
decide_invalid_max_age_is_stale(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Cache-Control: max-age=-5\r\nExpires: " D0_P600 "\r\n"), &d);
    assert_hfm(f, &d);
    assert_secs(d.ttl, 0);
}

/* ================= cache_decide: storability (§3) ================= */

static void
decide_directives_and_fields_that_forbid_storing(void **state)
{
    static const char *resps[] = {
        RESP("200 OK", "Cache-Control: max-age=60, no-store\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60, private\r\n"),
        RESP("200 OK", "Cache-Control: private=\"Set-Cookie\", max-age=60\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60\r\nCache-Control: no-cache\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60\r\nSet-Cookie: a=1\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60\r\nSurrogate-Control: max-age=10, no-store\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60\r\nVary: *\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60\r\nVary: Accept-Language, *\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60\r\nVary: Accept\r\nVary: *\r\n"),
    };
    struct fx *f = *state;
    struct cache_decision d;

    for (size_t i = 0; i < sizeof(resps) / sizeof(resps[0]); i++) {
        decide(f, resps[i], &d);
        if (d.store || !d.hfm)
            fail_msg("stored=%d hfm=%d for:\n%s", d.store, d.hfm, resps[i]);
        assert_secs(d.hfm_ttl, 120);
        assert_non_null(d.why);
    }
}

static void
decide_must_understand_with_known_status_overrides_no_store(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Cache-Control: must-understand, no-store, max-age=60\r\n"), &d);
    assert_stored(&d, 60);
    decide(f, RESP("404 Not Found", "Cache-Control: must-understand, no-store, max-age=60\r\n"), &d);
    assert_stored(&d, 60);
    /* unknown status: no-store holds */
    decide(f, RESP("599 Odd", "Cache-Control: must-understand, no-store, max-age=60\r\n"), &d);
    assert_hfm(f, &d);
}

static void
decide_partial_and_interim_responses_are_not_stored_without_marker(void **state)
{
    static const char *resps[] = {
        RESP("206 Partial Content", "Cache-Control: max-age=60\r\nContent-Range: bytes 0-1/10\r\n"
                                    "Content-Length: 2\r\n"),
        RESP("100 Continue", "Cache-Control: max-age=60\r\n"),
        RESP("103 Early Hints", "Cache-Control: max-age=60\r\nLink: </s.css>; rel=preload\r\n"),
        RESP("304 Not Modified", "Cache-Control: max-age=60\r\n"),
    };
    struct cache_decision d;

    for (size_t i = 0; i < sizeof(resps) / sizeof(resps[0]); i++) {
        decide(*state, resps[i], &d);
        if (d.store || d.hfm)
            fail_msg("stored=%d hfm=%d for:\n%s", d.store, d.hfm, resps[i]);
        assert_non_null(d.why);
    }
}

static void
decide_credentials_with_s_maxage_may_be_stored(void **state)
{
    struct fx *f = *state;
    struct rq q;
    struct rs r;
    struct cache_decision d;

    /* §3.5: s-maxage (or public, must-revalidate) lets a shared cache
     * reuse the answer to an authorized request. */
    cache_decide(parse_req(&q, GET("Authorization: Basic eDp5\r\n")),
                 parse_resp(&r, RESP("200 OK", "Cache-Control: s-maxage=60\r\n")), T0, T0, &f->p, &d);
    assert_stored(&d, 60);
}

/* ================= cache_decide: Age (§4.2.3) ================= */

static void
decide_apparent_age_from_date(void **state)
{
    struct cache_decision d;

    decide_at(*state, RESP("200 OK", "Cache-Control: max-age=60\r\n"), T0 + 10, T0 + 10, &d);
    assert_secs(d.initial_age, 10);
    assert_stored(&d, 60);       /* ttl is the whole lifetime; insert = resp_time - age */
}

static void
decide_corrected_age_adds_response_delay(void **state)
{
    struct cache_decision d;

    decide_at(*state,
              "HTTP/1.1 200 OK\r\nDate: " D0_P10 "\r\nAge: 30\r\nCache-Control: max-age=60\r\n\r\n",
              T0 + 8, T0 + 10, &d);
    assert_secs(d.initial_age, 32);     /* 30 + (10 - 8); apparent 0 */
    assert_stored(&d, 60);
}

static void
decide_initial_age_is_max_of_apparent_and_corrected(void **state)
{
    struct cache_decision d;

    decide_at(*state, RESP("200 OK", "Age: 5\r\nCache-Control: max-age=60\r\n"), T0 + 20, T0 + 21,
              &d);
    assert_secs(d.initial_age, 21);     /* apparent 21 > corrected 5 + 1 */
    decide_at(*state, RESP("200 OK", "Age: 40\r\nCache-Control: max-age=60\r\n"), T0 + 1, T0 + 3,
              &d);
    assert_secs(d.initial_age, 42);     /* corrected 40 + 2 > apparent 3 */
}

static void
decide_invalid_age_counts_as_zero(void **state)
{
    struct cache_decision d;

    decide_at(*state, RESP("200 OK", "Age: soon\r\nCache-Control: max-age=60\r\n"), T0, T0 + 1, &d);
    assert_secs(d.initial_age, 1);
    assert_stored(&d, 60);
}

static void
decide_response_older_than_its_lifetime_is_not_stored(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Age: 120\r\nCache-Control: max-age=60\r\n"), &d);
    assert_hfm(f, &d);
    decide(f, RESP("200 OK", "Age: 60\r\nCache-Control: max-age=60\r\n"), &d);
    assert_hfm(f, &d);          /* fresh only while lifetime > age */
    decide(f, RESP("200 OK", "Age: 59\r\nCache-Control: max-age=60\r\n"), &d);
    assert_stored(&d, 60);
}

/* ================= cache_decide: targeted fields (RFC 9213) ================= */

static void
decide_cdn_cache_control_overrides_cache_control(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Cache-Control: max-age=10\r\nCDN-Cache-Control: max-age=100\r\n"), &d);
    assert_stored(&d, 100);
    decide(f, RESP("200 OK", "Cache-Control: no-store\r\nCDN-Cache-Control: max-age=100\r\n"), &d);
    assert_stored(&d, 100);
    decide(f, RESP("200 OK", "Cache-Control: max-age=100\r\nCDN-Cache-Control: no-store\r\n"), &d);
    assert_hfm(f, &d);
}

static void
decide_cdn_cache_control_replaces_expires(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "CDN-Cache-Control: public\r\nExpires: " D0_P600 "\r\n"), &d);
    assert_hfm(f, &d);
}

static void
decide_targeted_field_overrides_both(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Cache-Control: max-age=10\r\nCDN-Cache-Control: max-age=100\r\n"
                             "accel-cache-control: max-age=300\r\n"), &d);
    assert_stored(&d, 300);
    decide(f, RESP("200 OK", "CDN-Cache-Control: max-age=100\r\n"
                             "Accel-Cache-Control: no-store\r\n"), &d);
    assert_hfm(f, &d);
}

static void
decide_invalid_targeted_field_is_ignored(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Cache-Control: max-age=10\r\nCDN-Cache-Control: max-age=100\r\n"
                                  "Accel-Cache-Control: max-age=soon\r\n"), &d);
    assert_stored(&d, 100);
}

/* ================= cache_decide: grace, stale-if-error, keep ================= */

static void
decide_revalidation_directives_forbid_stale_serving(void **state)
{
    static const char *resps[] = {
        RESP("200 OK", "Cache-Control: max-age=60, must-revalidate, stale-while-revalidate=30, "
                       "stale-if-error=600\r\n"),
        RESP("200 OK", "Cache-Control: max-age=60, proxy-revalidate, stale-while-revalidate=30, "
                       "stale-if-error=600\r\n"),
        RESP("200 OK", "Cache-Control: s-maxage=60, stale-while-revalidate=30, "
                       "stale-if-error=600\r\n"),
    };
    struct cache_decision d;

    for (size_t i = 0; i < sizeof(resps) / sizeof(resps[0]); i++) {
        decide(*state, resps[i], &d);
        assert_stored(&d, 60);
        if (!d.must_revalidate || d.grace != 0 || d.stale_if_error != 0)
            fail_msg("must_revalidate=%d grace=%.1f sie=%.1f for:\n%s", d.must_revalidate,
                     d.grace, d.stale_if_error, resps[i]);
    }
}

static void
decide_stale_while_revalidate_sets_grace(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Cache-Control: max-age=60, stale-while-revalidate=30\r\n"), &d);
    assert_stored(&d, 60);
    assert_false(d.must_revalidate);
    assert_secs(d.grace, 30);
}

static void
decide_default_grace_when_origin_says_nothing(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Cache-Control: max-age=60\r\n"), &d);
    assert_secs(d.grace, 10);
    assert_secs(d.stale_if_error, 0);
}

static void
decide_stale_if_error_is_reported_and_kept(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Cache-Control: max-age=60, stale-if-error=100\r\n"), &d);
    assert_stored(&d, 60);
    assert_secs(d.stale_if_error, 100);
    /* no validators: keep only long enough for stale-if-error past grace */
    assert_secs(d.keep, 90);
}

static void
decide_keep_only_with_validators(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("200 OK", "Cache-Control: max-age=60\r\nETag: \"v1\"\r\n"), &d);
    assert_secs(d.keep, 3600);
    decide(f, RESP("200 OK", "Cache-Control: max-age=60\r\nLast-Modified: " D0_M10D "\r\n"), &d);
    assert_secs(d.keep, 3600);
    decide(f, RESP("200 OK", "Cache-Control: max-age=60\r\n"), &d);
    assert_secs(d.keep, 0);
}

static void
decide_reports_no_transform_and_date(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Cache-Control: max-age=60, no-transform\r\n"), &d);
    assert_true(d.no_transform);
    assert_secs(d.date, T0);
    decide(*state, RESP("200 OK", "Cache-Control: max-age=60\r\n"), &d);
    assert_false(d.no_transform);
}

/* ================= Vary (§4.1) ================= */

static bool
selector(struct fx *f, const char *resp, const char *req)
{
    struct rq q;
    struct rs r;

    return cache_vary_selector(parse_resp(&r, resp), parse_req(&q, req), &f->a);
}

static bool
vary_matches(struct fx *f, const char *req)
{
    struct rq q;

    return cache_vary_match(ac_buf_slice(&f->a), parse_req(&q, req));
}

static void
vary_absent_gives_empty_selector_matching_everything(void **state)
{
    struct fx *f = *state;

    assert_true(selector(f, RESP("200 OK", ""), GET("Accept-Language: en\r\n")));
    assert_int_equal(f->a.len, 0);
    assert_true(vary_matches(f, GET("Accept-Language: fr\r\n")));
    assert_true(vary_matches(f, GET("")));
}

static void
vary_accept_language_matches_same_value_only(void **state)
{
    struct fx *f = *state;

    assert_true(selector(f, RESP("200 OK", "Vary: Accept-Language\r\n"),
                         GET("Accept-Language: en-GB\r\n")));
    assert_true(f->a.len > 0);
    assert_true(vary_matches(f, GET("Accept-Language: en-GB\r\n")));
    assert_true(vary_matches(f, GET("accept-language: en-GB\r\n")));
    assert_false(vary_matches(f, GET("Accept-Language: fr\r\n")));
    assert_false(vary_matches(f, GET("Accept-Language: en-gb, fr\r\n")));
    assert_false(vary_matches(f, GET("")));
}

static void
vary_absent_field_matches_only_absent(void **state)
{
    struct fx *f = *state;

    assert_true(selector(f, RESP("200 OK", "Vary: Accept-Language\r\n"), GET("")));
    assert_true(vary_matches(f, GET("")));
    assert_true(vary_matches(f, GET("Accept: */*\r\n")));
    assert_false(vary_matches(f, GET("Accept-Language: en\r\n")));
    /* present but empty is not absent */
    assert_false(vary_matches(f, GET("Accept-Language:\r\n")));
}

static void
vary_normalises_whitespace_and_field_lines(void **state)
{
    struct fx *f = *state;

    assert_true(selector(f, RESP("200 OK", "vary: accept-language\r\n"),
                         GET("Accept-Language: en,   fr\r\n")));
    assert_true(vary_matches(f, GET("Accept-Language: en, fr\r\n")));
    assert_true(vary_matches(f, GET("Accept-Language: en,\tfr  \r\n")));
    assert_true(vary_matches(f, GET("Accept-Language: en\r\nAccept-Language: fr\r\n")));
    assert_false(vary_matches(f, GET("Accept-Language: fr, en\r\n")));
}

static void
vary_several_fields_must_all_match(void **state)
{
    struct fx *f = *state;

    assert_true(selector(f, RESP("200 OK", "Vary: Accept-Language\r\nVary: X-Device, Accept\r\n"),
                         GET("Accept-Language: en\r\nX-Device: mobile\r\nAccept: text/html\r\n")));
    assert_true(vary_matches(f, GET("X-Device: mobile\r\nAccept: text/html\r\nAccept-Language: en\r\n")));
    assert_false(vary_matches(f, GET("Accept-Language: en\r\nX-Device: desktop\r\nAccept: text/html\r\n")));
    assert_false(vary_matches(f, GET("Accept-Language: en\r\nX-Device: mobile\r\n")));
    assert_false(vary_matches(f, GET("Accept-Language: de\r\nX-Device: mobile\r\nAccept: text/html\r\n")));
}

static void
vary_ignores_accept_encoding(void **state)
{
    struct fx *f = *state;

    assert_true(selector(f, RESP("200 OK", "Vary: Accept-Encoding\r\n"), GET("Accept-Encoding: gzip\r\n")));
    assert_int_equal(f->a.len, 0);
    assert_true(vary_matches(f, GET("Accept-Encoding: br\r\n")));
    assert_true(selector(f, RESP("200 OK", "Vary: Accept-Encoding, Accept-Language\r\n"),
                         GET("Accept-Encoding: gzip\r\nAccept-Language: en\r\n")));
    assert_true(vary_matches(f, GET("Accept-Language: en\r\n")));
    assert_false(vary_matches(f, GET("Accept-Encoding: gzip\r\nAccept-Language: fr\r\n")));
}

static void
vary_star_has_no_selector(void **state)
{
    struct fx *f = *state;

    assert_false(selector(f, RESP("200 OK", "Vary: *\r\n"), GET("")));
    assert_false(selector(f, RESP("200 OK", "Vary: Accept-Language, *\r\n"), GET("")));
    assert_false(selector(f, RESP("200 OK", "Vary: Accept\r\nVary: *\r\n"), GET("")));
}

/* ================= the stored header block ================= */

static void
build(struct fx *f, const char *resp, double resp_time)
{
    struct rs r;

    cache_block_build(parse_resp(&r, resp), &f->p, resp_time, &f->a);
    assert_false(ac_buf_error(&f->a));
}

static bool
block_has(const struct ac_buf *b, const char *name)
{
    struct ac_slice v;

    return cache_block_find(ac_buf_slice(b), AC_SLICE(name, strlen(name)), &v);
}

static unsigned
block_count(const struct ac_buf *b, const char *name)
{
    /* count field lines named name (case-insensitive), status line skipped */
    const char *p = b->p, *end = b->p + b->len;
    const char *nl = memchr(p, '\n', b->len);
    size_t n = strlen(name);
    unsigned c = 0;

    for (p = nl ? nl + 1 : end; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(end - p) > n && p[n] == ':' && ac_slice_caseeq(AC_SLICE(p, n), AC_SLICE(name, n)))
            c++;
        p = e ? e + 1 : end;
    }
    return c;
}

static void
assert_field(const struct ac_buf *b, const char *name, const char *want)
{
    struct ac_slice v;

    if (!cache_block_find(ac_buf_slice(b), AC_SLICE(name, strlen(name)), &v))
        fail_msg("no %s in block:\n%.*s", name, (int)b->len, b->p);
    assert_slice(v, want);
}

static void
block_starts_with_status_line_without_version(void **state)
{
    struct fx *f = *state;

    build(f, RESP("404 Not Found", "Content-Type: text/plain\r\n"), T0);
    assert_true(f->a.len > 15);
    assert_memory_equal(f->a.p, "404 Not Found\r\n", 15);
    build(f, RESP("200 OK", ""), T0);
    ASSERT_BUF(&f->a, "200 OK\r\nDate: " D0 "\r\n");
}

static void
block_excludes_hop_by_hop_and_consumed_fields(void **state)
{
    struct fx *f = *state;

    build(f, RESP("200 OK", "Connection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n"
                            "X-Secret: 1\r\nContent-Length: 10\r\nAge: 5\r\nSet-Cookie: a=1\r\n"
                            "CDN-Cache-Control: max-age=9\r\nAccel-Cache-Control: max-age=8\r\n"
                            "Proxy-Authenticate: Basic\r\nUpgrade: h2c\r\nTrailer: X\r\n"
                            "Cache-Control: max-age=60\r\nETag: \"v1\"\r\nContent-Type: text/html\r\n"),
          T0);
    static const char *gone[] = {
        "Connection", "Keep-Alive", "X-Secret", "Content-Length", "Age", "Set-Cookie",
        "CDN-Cache-Control", "Accel-Cache-Control", "Proxy-Authenticate", "Upgrade", "Trailer",
    };
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        if (block_has(&f->a, gone[i]))
            fail_msg("%s stored in block:\n%.*s", gone[i], (int)f->a.len, f->a.p);
    assert_field(&f->a, "Cache-Control", "max-age=60");
    assert_field(&f->a, "ETag", "\"v1\"");
    assert_field(&f->a, "content-type", "text/html");
    assert_field(&f->a, "Date", D0);
}

static void
block_excludes_transfer_encoding(void **state)
{
    struct fx *f = *state;

    build(f, RESP("200 OK", "Transfer-Encoding: chunked\r\nX-A: 1\r\n"), T0);
    assert_false(block_has(&f->a, "Transfer-Encoding"));
    assert_field(&f->a, "X-A", "1");
}

static void
block_adds_date_when_missing(void **state)
{
    struct fx *f = *state;

    build(f, "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n", T0 + 100);
    assert_field(&f->a, "Date", D0_P100);
    assert_int_equal(block_count(&f->a, "Date"), 1);
    build(f, RESP("200 OK", "X-A: 1\r\n"), T0 + 100);      /* the origin's Date stays */
    assert_field(&f->a, "Date", D0);
    assert_int_equal(block_count(&f->a, "Date"), 1);
}

static void
block_find_returns_first_occurrence_case_insensitively(void **state)
{
    static const char blk[] = "200 OK\r\nX-A:  one \r\nx-a: two\r\nLink: <a>\r\n";
    struct ac_slice v;

    (void)state;
    assert_true(cache_block_find(AC_LIT(blk), AC_LIT("x-A"), &v));
    assert_slice(v, "one");
    assert_true(cache_block_find(AC_LIT(blk), AC_LIT("Link"), &v));
    assert_slice(v, "<a>");
    assert_false(cache_block_find(AC_LIT(blk), AC_LIT("X-B"), &v));
    assert_false(cache_block_find(AC_LIT(blk), AC_LIT("200 OK"), &v));
}

static void
sealed_block_hides_url_and_host_from_clients(void **state)
{
    struct ac_buf b;
    struct ac_slice v, url, host;

    (void)state;
    ac_buf_init(&b, 0, 0);
    ac_buf_catstr(&b, "200 OK\r\nX-A: one\r\n");
    cache_block_seal(&b, AC_LIT("/blog/?p=1"), AC_LIT("example.com"));
    v = cache_block_visible(ac_buf_slice(&b));
    assert_int_equal(v.len, strlen("200 OK\r\nX-A: one\r\n"));
    cache_block_origin(ac_buf_slice(&b), &url, &host);
    assert_slice(url, "/blog/?p=1");
    assert_slice(host, "example.com");
    assert_true(cache_block_find(ac_buf_slice(&b), AC_LIT("X-A"), &v));
    assert_slice(v, "one");
    assert_false(cache_block_find(ac_buf_slice(&b), AC_LIT("example.com"), &v));
    /* an unsealed block: all visible, no origin */
    cache_block_origin(AC_LIT("200 OK\r\n"), &url, &host);
    assert_int_equal(url.len + host.len, 0);
    ac_buf_free(&b);
}

static void
freshen_replaces_fields_the_304_carries(void **state)
{
    struct fx *f = *state;
    struct rs r;

    build(f, RESP("200 OK", "ETag: \"a\"\r\nCache-Control: max-age=10\r\nX-Keep: 1\r\n"
                            "Content-Type: text/html\r\n"), T0);
    cache_block_freshen(ac_buf_slice(&f->a),
                        parse_resp(&r, "HTTP/1.1 304 Not Modified\r\nDate: " D0_P100 "\r\n"
                                       "ETag: \"b\"\r\nCache-Control: max-age=60\r\n\r\n"),
                        &f->p, T0 + 100, &f->b);
    assert_false(ac_buf_error(&f->b));
    assert_memory_equal(f->b.p, "200 OK\r\n", 8);
    assert_field(&f->b, "ETag", "\"b\"");
    assert_field(&f->b, "Cache-Control", "max-age=60");
    assert_field(&f->b, "Date", D0_P100);
    assert_field(&f->b, "X-Keep", "1");
    assert_field(&f->b, "Content-Type", "text/html");
    assert_int_equal(block_count(&f->b, "ETag"), 1);
    assert_int_equal(block_count(&f->b, "Cache-Control"), 1);
    assert_int_equal(block_count(&f->b, "Date"), 1);
}

static void
freshen_does_not_store_excluded_fields_of_the_304(void **state)
{
    struct fx *f = *state;
    struct rs r;

    build(f, RESP("200 OK", "ETag: \"a\"\r\n"), T0);
    cache_block_freshen(ac_buf_slice(&f->a),
                        parse_resp(&r, "HTTP/1.1 304 Not Modified\r\nDate: " D0_P100 "\r\n"
                                       "Age: 3\r\nSet-Cookie: s=1\r\nContent-Length: 99\r\n"
                                       "Connection: keep-alive\r\nCDN-Cache-Control: max-age=5\r\n\r\n"),
                        &f->p, T0 + 100, &f->b);
    static const char *gone[] = { "Age", "Set-Cookie", "Content-Length", "Connection",
                                  "CDN-Cache-Control" };
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        if (block_has(&f->b, gone[i]))
            fail_msg("%s stored in block:\n%.*s", gone[i], (int)f->b.len, f->b.p);
    assert_field(&f->b, "ETag", "\"a\"");
}

/* ================= conditional requests (RFC 9110 §13) ================= */

static bool
not_modified(const char *req, const char *etag, const char *lm)
{
    struct rq q;

    return cache_not_modified(parse_req(&q, req), AC_SLICE(etag, strlen(etag)),
                              AC_SLICE(lm, strlen(lm)));
}

static void
inm_uses_weak_comparison(void **state)
{
    (void)state;
    assert_true(not_modified(GET("If-None-Match: \"x\"\r\n"), "\"x\"", ""));
    assert_true(not_modified(GET("If-None-Match: W/\"x\"\r\n"), "\"x\"", ""));
    assert_true(not_modified(GET("If-None-Match: \"x\"\r\n"), "W/\"x\"", ""));
    assert_true(not_modified(GET("If-None-Match: W/\"x\"\r\n"), "W/\"x\"", ""));
    assert_false(not_modified(GET("If-None-Match: \"y\"\r\n"), "\"x\"", ""));
    assert_false(not_modified(GET("If-None-Match: \"X\"\r\n"), "\"x\"", ""));
}

static void
inm_matches_any_tag_of_a_list(void **state)
{
    (void)state;
    assert_true(not_modified(GET("If-None-Match: \"a\", \"b\",W/\"x\"\r\n"), "\"x\"", ""));
    assert_false(not_modified(GET("If-None-Match: \"a\", \"b\"\r\n"), "\"c\"", ""));
}

static void
inm_star_matches_any_stored_response(void **state)
{
    (void)state;
    assert_true(not_modified(GET("If-None-Match: *\r\n"), "\"x\"", ""));
    assert_true(not_modified(GET("If-None-Match: *\r\n"), "", ""));
}

static void
inm_without_stored_etag_does_not_match(void **state)
{
    (void)state;
    assert_false(not_modified(GET("If-None-Match: \"x\"\r\n"), "", D0_M10));
}

static void
inm_present_makes_ims_ignored(void **state)
{
    (void)state;
    assert_false(not_modified(GET("If-None-Match: \"nope\"\r\nIf-Modified-Since: " D0 "\r\n"),
                              "\"x\"", D0_M1000));
}

static void
ims_compares_with_last_modified(void **state)
{
    (void)state;
    assert_true(not_modified(GET("If-Modified-Since: " D0 "\r\n"), "\"x\"", D0_M1000)); /* earlier */
    assert_true(not_modified(GET("If-Modified-Since: " D0 "\r\n"), "", D0));             /* equal */
    assert_false(not_modified(GET("If-Modified-Since: " D0 "\r\n"), "", D0_P10));        /* later */
    assert_false(not_modified(GET("If-Modified-Since: yesterday\r\n"), "", D0_M1000));
    assert_false(not_modified(GET("If-Modified-Since: " D0 "\r\n"), "\"x\"", ""));
    assert_false(not_modified(GET(""), "\"x\"", D0));
}

/* ================= ranges (RFC 9110 §14) ================= */

static int
range(const char *req, uint64_t len, const char *etag, const char *lm, uint64_t *a, uint64_t *b)
{
    struct rq q;

    *a = *b = 777;
    return cache_range(parse_req(&q, req), len, AC_SLICE(etag, strlen(etag)),
                       AC_SLICE(lm, strlen(lm)), a, b);
}

static void
range_first_last(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=0-99\r\n"), 1000, "", "", &a, &b), 206);
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    assert_int_equal(range(GET("Range: bytes=10-10\r\n"), 1000, "", "", &a, &b), 206);
    assert_int_equal(a, 10);
    assert_int_equal(b, 10);
}

static void
range_open_ended(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=500-\r\n"), 1000, "", "", &a, &b), 206);
    assert_int_equal(a, 500);
    assert_int_equal(b, 999);
}

static void
range_suffix(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=-100\r\n"), 1000, "", "", &a, &b), 206);
    assert_int_equal(a, 900);
    assert_int_equal(b, 999);
    assert_int_equal(range(GET("Range: bytes=-2000\r\n"), 1000, "", "", &a, &b), 206);
    assert_int_equal(a, 0);
    assert_int_equal(b, 999);
    assert_int_equal(range(GET("Range: bytes=-0\r\n"), 1000, "", "", &a, &b), 416);
}

static void
range_last_beyond_length_is_clipped(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=900-5000\r\n"), 1000, "", "", &a, &b), 206);
    assert_int_equal(a, 900);
    assert_int_equal(b, 999);
}

static void
range_first_at_or_past_length_is_unsatisfiable(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=1000-\r\n"), 1000, "", "", &a, &b), 416);
    assert_int_equal(range(GET("Range: bytes=1000-2000\r\n"), 1000, "", "", &a, &b), 416);
    assert_int_equal(range(GET("Range: bytes=0-\r\n"), 0, "", "", &a, &b), 416);
}

static void
range_ignored_forms_answer_whole_body(void **state)
{
    static const char *reqs[] = {
        GET(""),
        GET("Range: bytes=0-1, 5-6\r\n"),
        GET("Range: items=0-1\r\n"),
        GET("Range: bytes=a-b\r\n"),
        GET("Range: bytes=5-2\r\n"),
        GET("Range: bytes=5\r\n"),
    };
    uint64_t a, b;

    (void)state;
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        if (range(reqs[i], 1000, "", "", &a, &b) != 0)
            fail_msg("a range applied for:\n%s", reqs[i]);
}

static void
if_range_with_matching_strong_etag_applies_range(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: \"v1\"\r\n"), 100, "\"v1\"", "", &a, &b),
                     206);
    assert_int_equal(a, 0);
    assert_int_equal(b, 9);
}

static void
if_range_with_weak_or_other_etag_sends_whole_body(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: W/\"v1\"\r\n"), 100, "W/\"v1\"", "", &a, &b), 0);
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: \"v1\"\r\n"), 100, "W/\"v1\"", "", &a, &b), 0);
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: \"v2\"\r\n"), 100, "\"v1\"", "", &a, &b), 0);
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: \"v1\"\r\n"), 100, "", D0, &a, &b), 0);
}

static void
if_range_with_date_equal_to_last_modified_applies_range(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: " D0 "\r\n"), 100, "\"v1\"", D0, &a, &b),
                     206);
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: " D0_M10 "\r\n"), 100, "", D0, &a, &b),
                     0);
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: " D0 "\r\n"), 100, "\"v1\"", "", &a, &b),
                     0);
}

/* ================= HTTP-date ================= */

static bool
date_parse(const char *s, double *t)
{
    return http_date_parse(AC_SLICE(s, strlen(s)), t);
}

static void
date_parses_the_three_formats(void **state)
{
    double t;

    (void)state;
    t = 0;
    assert_true(date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t));
    assert_secs(t, T0);
    t = 0;
    assert_true(date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t));
    assert_secs(t, T0);
    t = 0;
    assert_true(date_parse("Sun Nov  6 08:49:37 1994", &t));
    assert_secs(t, T0);
    t = 0;
    assert_true(date_parse(DWED, &t));
    assert_secs(t, 1445412480.0);
}

static void
date_rejects_garbage(void **state)
{
    static const char *bad[] = {
        "", "0", "-1", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:61:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun Nov  6 08:49:37 94", "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun, 0x Nov 1994 08:49:37 GMT",
    };
    double t;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (date_parse(bad[i], &t))
            fail_msg("\"%s\" parsed as %.0f", bad[i], t);
}

static void
date_fmt_writes_imf_fixdate_and_round_trips(void **state)
{
    static const double times[] = { 0, T0, 951825600 /* 2000-02-29 */, 1445412480, 4102444799,
                                    86399, 1700000000 };
    char buf[32];
    double t;

    (void)state;
    assert_int_equal(http_date_fmt(T0, buf), 29);
    assert_string_equal(buf, D0);
    assert_int_equal(http_date_fmt(1445412480, buf), 29);
    assert_string_equal(buf, DWED);
    assert_int_equal(http_date_fmt(0, buf), 29);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        assert_int_equal(http_date_fmt(times[i], buf), 29);
        assert_true(http_date_parse(AC_SLICE(buf, 29), &t));
        assert_secs(t, times[i]);
    }
}

/* ============ regressions: bugs found in review, fixed in cache.c ============ */

/* BUG: RFC 9111 §3: a cache MUST NOT store a response with must-understand
 * unless it understands the status code.  cache.c only applies
 * must-understand to no-store, so a 599 with max-age=60 is stored. */
static void
bug_must_understand_with_unknown_status_is_not_stored(void **state)
{
    struct fx *f = *state;
    struct cache_decision d;

    decide(f, RESP("599 Odd", "Cache-Control: must-understand, max-age=60\r\n"), &d);
    assert_false(d.store);
}

/* BUG: RFC 9111 §3.5: a shared cache MUST NOT reuse the answer to a request
 * with Authorization unless it has must-revalidate, public or s-maxage.
 * cache_decide ignores req ((void)req) and stores it with max-age=60. */
static void
bug_credentials_without_public_are_not_stored(void **state)
{
    struct fx *f = *state;
    struct rq q;
    struct rs r;
    struct cache_decision d;

    cache_decide(parse_req(&q, GET("Authorization: Basic eDp5\r\n")),
                 parse_resp(&r, RESP("200 OK", "Cache-Control: max-age=60\r\n")), T0, T0, &f->p, &d);
    assert_false(d.store);
}

/* BUG: RFC 9213 §2.2: the cache uses the first targeted field with a valid,
 * NON-EMPTY value, else Cache-Control.  An empty CDN-Cache-Control wins in
 * cache.c, Cache-Control's max-age=60 is ignored and nothing is stored. */
static void
bug_empty_targeted_field_falls_back_to_cache_control(void **state)
{
    struct cache_decision d;

    decide(*state, RESP("200 OK", "Cache-Control: max-age=60\r\nCDN-Cache-Control:\r\n"), &d);
    assert_stored(&d, 60);
}

/* BUG: cache_vary_match normalises the request's value into a 512-byte
 * stack buffer wrapped in an ac_buf; a longer value makes ac_buf_reserve
 * realloc() the stack array (crash/heap corruption).  Run in a child. */
static void
bug_vary_match_with_long_value(void **state)
{
    struct fx *f = *state;
    static char req[2048];
    pid_t pid;
    int st;

    memset(req, 0, sizeof(req));
    strcpy(req, "GET /a HTTP/1.1\r\nHost: example.com\r\nAccept-Language: ");
    size_t n = strlen(req);
    memset(req + n, 'x', 600);
    strcpy(req + n + 600, "\r\n\r\n");
    assert_true(selector(f, RESP("200 OK", "Vary: Accept-Language\r\n"), req));
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(vary_matches(f, req) ? 0 : 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("cache_vary_match on a 600-byte value: %s %d",
                 WIFSIGNALED(st) ? "killed by signal" : "returned",
                 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/* BUG: a 304 without Date keeps the stored Date (the 304 does not carry
 * one) AND cache_block_freshen appends a new one: two Date fields, but Date
 * is a singleton (RFC 9110 §6.6.1, §5.3). */
static void
bug_freshen_without_date_keeps_one_date(void **state)
{
    struct fx *f = *state;
    struct rs r;

    build(f, RESP("200 OK", "ETag: \"a\"\r\n"), T0);
    cache_block_freshen(ac_buf_slice(&f->a),
                        parse_resp(&r, "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n"), &f->p,
                        T0 + 100, &f->b);
    assert_int_equal(block_count(&f->b, "Date"), 1);
}

/* BUG: RFC 9111 §3.2 updates the stored fields with the 304's, except the
 * fields excluded from storage (§3.1), such as those the 304's Connection
 * lists.  cache.c drops the stored X-Foo because the 304 carries one, then
 * skips the 304's (Connection-listed): the field is lost. */
static void
bug_freshen_keeps_field_that_304_lists_in_connection(void **state)
{
    struct fx *f = *state;
    struct rs r;

    build(f, RESP("200 OK", "X-Foo: stored\r\n"), T0);
    cache_block_freshen(ac_buf_slice(&f->a),
                        parse_resp(&r, "HTTP/1.1 304 Not Modified\r\nDate: " D0_P100 "\r\n"
                                       "Connection: X-Foo\r\nX-Foo: hop\r\n\r\n"),
                        &f->p, T0 + 100, &f->b);
    assert_field(&f->b, "X-Foo", "stored");
}

/* BUG: cache_range takes an If-Range that starts with 'W' for a weak
 * entity-tag, so a date on a Wednesday ("Wed, ...") never matches and the
 * whole body is sent.  RFC 9110 §13.1.5: a date equal to Last-Modified
 * applies the range. */
static void
bug_if_range_wednesday_date_applies_range(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range(GET("Range: bytes=0-9\r\nIf-Range: " DWED "\r\n"), 100, "", DWED, &a, &b),
                     206);
}

/* BUG: RFC 9110 §14.2: a server MUST ignore Range for methods without range
 * handling; GET is the only one.  cache_range answers 206 to HEAD (and
 * cache_sess.c calls it for HEAD). */
static void
bug_range_on_head_is_ignored(void **state)
{
    uint64_t a, b;

    (void)state;
    assert_int_equal(range("HEAD /a HTTP/1.1\r\nHost: example.com\r\nRange: bytes=0-9\r\n\r\n", 100, "",
                           "", &a, &b),
                     0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(sealed_block_hides_url_and_host_from_clients),
        T(cc_init_marks_every_directive_absent),
        T(cc_parse_recognises_every_directive),
        T(cc_parse_sets_only_the_directives_present),
        T(cc_parse_directive_names_are_case_insensitive),
        T(cc_parse_accepts_quoted_values),
        T(cc_parse_commas_inside_quotes_do_not_split),
        T(cc_parse_first_occurrence_of_a_repeated_directive_wins),
        T(cc_parse_negative_value_is_invalid),
        T(cc_parse_malformed_values_are_invalid),
        T(cc_parse_overflow_clamps_to_2_pow_31),
        T(cc_parse_ignores_unknown_extensions),
        T(cc_parse_skips_empty_elements),
        T(cc_parse_several_field_lines_accumulate),
        T(key_lowercases_the_host),
        T(key_strips_default_port_80),
        T(key_keeps_other_ports),
        T(key_handles_ipv6_literal_hosts),
        T(key_of_absolute_form_uses_authority_and_path),
        T(key_keeps_the_query_as_received),
        T(classify_get_and_head_are_looked_up),
        T(classify_credentials_pass),
        T(classify_options_and_trace_pass),
        T(classify_unsafe_methods),
        T(classify_methods_are_case_sensitive),
        T(decide_s_maxage_beats_max_age_and_expires),
        T(decide_max_age_beats_expires),
        T(decide_expires_beats_heuristic),
        T(decide_expires_lifetime_is_expires_minus_date),
        T(decide_expires_without_date_counts_from_response_time),
        T(decide_invalid_expires_means_already_expired),
        T(decide_expires_in_the_past_is_not_stored),
        T(decide_heuristic_is_a_fraction_of_time_since_last_modified),
        T(decide_heuristic_is_capped_by_heuristic_max),
        T(decide_heuristic_only_for_default_cacheable_status),
        T(decide_no_freshness_information_leaves_hit_for_miss),
        T(decide_status_codes_with_explicit_freshness),
        T(decide_invalid_max_age_is_stale),
        T(decide_directives_and_fields_that_forbid_storing),
        T(decide_must_understand_with_known_status_overrides_no_store),
        T(decide_partial_and_interim_responses_are_not_stored_without_marker),
        T(decide_credentials_with_s_maxage_may_be_stored),
        T(decide_apparent_age_from_date),
        T(decide_corrected_age_adds_response_delay),
        T(decide_initial_age_is_max_of_apparent_and_corrected),
        T(decide_invalid_age_counts_as_zero),
        T(decide_response_older_than_its_lifetime_is_not_stored),
        T(decide_cdn_cache_control_overrides_cache_control),
        T(decide_cdn_cache_control_replaces_expires),
        T(decide_targeted_field_overrides_both),
        T(decide_invalid_targeted_field_is_ignored),
        T(decide_revalidation_directives_forbid_stale_serving),
        T(decide_stale_while_revalidate_sets_grace),
        T(decide_default_grace_when_origin_says_nothing),
        T(decide_stale_if_error_is_reported_and_kept),
        T(decide_keep_only_with_validators),
        T(decide_reports_no_transform_and_date),
        T(vary_absent_gives_empty_selector_matching_everything),
        T(vary_accept_language_matches_same_value_only),
        T(vary_absent_field_matches_only_absent),
        T(vary_normalises_whitespace_and_field_lines),
        T(vary_several_fields_must_all_match),
        T(vary_ignores_accept_encoding),
        T(vary_star_has_no_selector),
        T(block_starts_with_status_line_without_version),
        T(block_excludes_hop_by_hop_and_consumed_fields),
        T(block_excludes_transfer_encoding),
        T(block_adds_date_when_missing),
        T(block_find_returns_first_occurrence_case_insensitively),
        T(freshen_replaces_fields_the_304_carries),
        T(freshen_does_not_store_excluded_fields_of_the_304),
        T(inm_uses_weak_comparison),
        T(inm_matches_any_tag_of_a_list),
        T(inm_star_matches_any_stored_response),
        T(inm_without_stored_etag_does_not_match),
        T(inm_present_makes_ims_ignored),
        T(ims_compares_with_last_modified),
        T(range_first_last),
        T(range_open_ended),
        T(range_suffix),
        T(range_last_beyond_length_is_clipped),
        T(range_first_at_or_past_length_is_unsatisfiable),
        T(range_ignored_forms_answer_whole_body),
        T(if_range_with_matching_strong_etag_applies_range),
        T(if_range_with_weak_or_other_etag_sends_whole_body),
        T(if_range_with_date_equal_to_last_modified_applies_range),
        T(date_parses_the_three_formats),
        T(date_rejects_garbage),
        T(date_fmt_writes_imf_fixdate_and_round_trips),
    };
    /* Correct behaviour cache.c does not have yet: these fail until fixed. */
    const struct CMUnitTest known_bugs[] = {
        T(bug_must_understand_with_unknown_status_is_not_stored),
        T(bug_credentials_without_public_are_not_stored),
        T(bug_empty_targeted_field_falls_back_to_cache_control),
        T(bug_vary_match_with_long_value),
        T(bug_freshen_without_date_keeps_one_date),
        T(bug_freshen_keeps_field_that_304_lists_in_connection),
        T(bug_if_range_wednesday_date_applies_range),
        T(bug_range_on_head_is_ignored),
    };
    /* The "bug_" tests pinned bugs found in review; all are fixed, and they
     * run with the rest as regression tests. */
    (void)argc;
    (void)argv;
    int failed = cmocka_run_group_tests_name("cache", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("cache_regressions", known_bugs, NULL, NULL);
    return failed;
}
