/*
 * test_h1_parse.c -- the HTTP/1.1 head parsers and the chunked decoder.
 *
 * Every input is copied so that its last byte is the last readable byte of
 * a mapping followed by a PROT_NONE page (picohttpparser's trick): reading
 * one byte too far crashes the test instead of passing by luck.  Every
 * message is also fed at every length: a prefix of a valid head must return
 * AC_AGAIN, and no prefix may ever "succeed".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "h1_parse.h"

#define GUARD_DATA (128 * 1024)

static char *g_map;
static size_t g_maplen, g_data;

static int
group_setup(void **state)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);

    (void)state;
    g_data = (GUARD_DATA + pg - 1) / pg * pg;
    g_maplen = g_data + pg;
    g_map = mmap(NULL, g_maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g_map == MAP_FAILED)
        return -1;
    return mprotect(g_map + g_data, pg, PROT_NONE);
}

static int
group_teardown(void **state)
{
    (void)state;
    munmap(g_map, g_maplen);
    return 0;
}

/* Copy s[0..n) so that it ends right before the PROT_NONE page. */
static const char *
at_end(const char *s, size_t n)
{
    char *p;

    assert_true(n <= g_data);
    p = g_map + g_data - n;
    memmove(p, s, n);
    return p;
}

static const struct h1_limits LIM = {
    .max_head = 8192, .max_target = 2048, .max_header_line = 4096, .max_headers = 64,
};
static struct h1_header hdrs[64];
/* -p uri_strict=on: the RFC 3986 grammar for request-targets */
static const struct h1_limits STRICT = {
    .max_head = 8192, .max_target = 2048, .max_header_line = 4096, .max_headers = 64,
    .strict_target = true,
};

#define S(lit) (lit), (sizeof(lit) - 1)

static void
assert_slice(struct ac_slice s, const char *want)
{
    size_t n = strlen(want);

    if (s.len != n || (n > 0 && memcmp(s.p, want, n) != 0))
        fail_msg("slice \"%.*s\" != \"%s\"", (int)s.len, s.p ? s.p : "", want);
}

/* Parse every prefix (none may succeed; prefixes of a valid head must be
 * AC_AGAIN), then the whole; returns the result of the whole. */
static int
req_all_prefixes(const char *s, size_t n, const struct h1_limits *lim, struct h1_request *req,
                 bool valid)
{
    for (size_t k = 0; k < n; k++) {
        struct h1_request r = { .hdrs = hdrs };
        int rc = h1_parse_request(at_end(s, k), k, lim, &r);

        if (rc > 0 || (valid && rc != AC_AGAIN))
            fail_msg("prefix %zu/%zu: %d (%s)", k, n, rc, r.reason ? r.reason : "-");
    }
    req->hdrs = hdrs;
    return h1_parse_request(at_end(s, n), n, lim, req);
}

static void
req_ok(const char *s, size_t n, struct h1_request *req)
{
    int rc = req_all_prefixes(s, n, &LIM, req, true);

    if (rc != (int)n)
        fail_msg("parse: %d != %zu (%s)", rc, n, req->reason ? req->reason : "-");
    assert_int_equal(req->error, H1_ERR_NONE);
    assert_null(req->reason);
}

static void
resp_all_prefixes(const char *s, size_t n, const char *method, struct h1_response *resp,
                  int want)
{
    struct ac_slice m = { method, strlen(method) };
    int rc;

    for (size_t k = 0; k < n; k++) {
        struct h1_response r = { .hdrs = hdrs };

        rc = h1_parse_response(at_end(s, k), k, &LIM, m, &r);
        if (rc > 0 || (want > 0 && rc != AC_AGAIN))
            fail_msg("prefix %zu/%zu: %d (%s)", k, n, rc, r.reason ? r.reason : "-");
    }
    resp->hdrs = hdrs;
    rc = h1_parse_response(at_end(s, n), n, &LIM, m, resp);
    if (rc != want)
        fail_msg("parse: %d != %d (%s)", rc, want, resp->reason ? resp->reason : "-");
}

/* ------------------------------------------------------------------------
 * Valid requests.
 */

static void
get_origin_form_is_split_into_slices(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("GET /index.html?q=1&r=%20x/?a HTTP/1.1\r\nHost: example.com\r\n"
             "User-Agent: t/1\r\nAccept: */*\r\n\r\n"), &req);
    assert_slice(req.method, "GET");
    assert_slice(req.target, "/index.html?q=1&r=%20x/?a");
    assert_slice(req.path, "/index.html?q=1&r=%20x/?a");
    assert_slice(req.host, "example.com");
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.flags, 0);
    assert_int_equal(req.body, H1_BODY_NONE);
    assert_int_equal(req.nhdrs, 3);
    assert_slice(req.hdrs[1].name, "User-Agent");
    assert_slice(req.hdrs[1].value, "t/1");
    assert_slice(req.hdrs[2].value, "*/*");
}

/* What browsers, PHP frameworks and shell users send, which RFC 3986 does
 * not allow raw but nginx and Varnish take (RFC 9112 §3.2 lets a recipient
 * be lenient): accepted as received by default, refused with uri_strict. */
static void
liberal_targets_are_taken_as_received(void **state)
{
    static const char *const targets[] = {
        "/catalog?filter[color]=red&filter[size][]=m",      /* PHP / Magento */
        "/a|b^c", "/q?json={\"a\":1}", "/win\\path", "/x?y=`z`", "/<tag>",
        "/caf\xc3\xa9?q=\xe2\x82\xac", "/q?p=100%", "/q?p=%zz&r=%4", "/page#frag",
        "/?a=b?c=[d]", "/%",
    };
    char buf[256];
    struct h1_request req;

    (void)state;
    for (size_t i = 0; i < AC_ARRAY_LEN(targets); i++) {
        int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", targets[i]);

        req_ok(buf, (size_t)n, &req);
        assert_slice(req.target, targets[i]);
        assert_slice(req.path, targets[i]);
        req.hdrs = hdrs;
        if (h1_parse_request(at_end(buf, (size_t)n), (size_t)n, &STRICT, &req) != AC_EPROTO)
            fail_msg("uri_strict took %s", targets[i]);
        /* absolute-form too */
        n = snprintf(buf, sizeof(buf), "GET http://a%s HTTP/1.1\r\nHost: a\r\n\r\n",
                     targets[i]);
        req_ok(buf, (size_t)n, &req);
        assert_slice(req.path, targets[i]);
    }
}

/* RFC 3986 characters of a path or query (pchar, "/", "?"), without "%":
 * an oracle written apart from the parser's table. */
static bool
rfc3986_target_byte(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("-._~!$&'()*+,;=:@/?", (int)c) != NULL);
}

/* Every byte at every position of a target long enough to cross the
 * vector boundaries, under both grammars. */
static void
every_target_byte_at_every_position(void **state)
{
    char buf[128];
    struct h1_request req = { .hdrs = hdrs };
    const size_t pre = 5, tlen = 40;    /* "GET /" */
    static const char tail[] = " HTTP/1.1\r\nHost: a\r\n\r\n";

    (void)state;
    for (unsigned c = 0; c < 256; c++) {
        bool liberal_ok = c > 0x20 && c != 0x7f;
        bool strict_ok = rfc3986_target_byte(c);

        if (c == '%')
            continue;           /* escapes: the reject table and the liberal list */
        for (size_t i = 0; i < tlen; i++) {
            size_t n;
            int rc;

            memcpy(buf, "GET /", pre);
            memset(buf + pre, 'p', tlen);
            buf[pre + i] = (char)c;
            memcpy(buf + pre + tlen, tail, sizeof(tail) - 1);
            n = pre + tlen + sizeof(tail) - 1;
            rc = h1_parse_request(at_end(buf, n), n, &LIM, &req);
            if (liberal_ok != (rc == (int)n))
                fail_msg("liberal: byte %#x at %zu: %d (%s)", c, i, rc,
                         req.reason ? req.reason : "-");
            if (rc == AC_EPROTO && c != '\n' && req.err_off != pre + i)
                fail_msg("liberal: byte %#x at %zu: err_off %zu", c, i, req.err_off);
            rc = h1_parse_request(at_end(buf, n), n, &STRICT, &req);
            if (strict_ok != (rc == (int)n))
                fail_msg("strict: byte %#x at %zu: %d (%s)", c, i, rc,
                         req.reason ? req.reason : "-");
        }
    }
}

/* The cache key's form of a target: what strict refuses, percent-encoded. */
static void
canonical_target_encodes_what_strict_refuses(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        { "/catalog?filter[color]=red", "/catalog?filter%5Bcolor%5D=red" },
        { "/catalog?filter%5Bcolor%5D=red", "/catalog?filter%5Bcolor%5D=red" },
        { "/a|b^c{d}\\e\"f`g<h>", "/a%7Cb%5Ec%7Bd%7D%5Ce%22f%60g%3Ch%3E" },
        { "/caf\xc3\xa9", "/caf%C3%A9" },
        { "/q?p=100%", "/q?p=100%25" },
        { "/q?p=%zz&r=%4", "/q?p=%25zz&r=%254" },
        { "/a%2fb%2F", "/a%2fb%2F" },           /* escapes kept as sent */
        { "/page#frag", "/page%23frag" },
        { "/plain/path?a=b&c=d;e=f:g@h!$'()*+,~", "/plain/path?a=b&c=d;e=f:g@h!$'()*+,~" },
        { "a\nb", "a%0Ab" },                     /* hash_data: no fake separators */
        { "", "" },
    };
    char out[256], again[768];
    struct h1_request req = { .hdrs = hdrs };

    (void)state;
    for (size_t i = 0; i < AC_ARRAY_LEN(cases); i++) {
        size_t n = h1_target_canon(cases[i].in, strlen(cases[i].in), out);

        if (n != strlen(cases[i].out) || memcmp(out, cases[i].out, n) != 0)
            fail_msg("canon(%s) = %.*s, want %s", cases[i].in, (int)n, out, cases[i].out);
        assert_int_equal(h1_target_canon(out, n, again), n);    /* idempotent */
        assert_memory_equal(again, out, n);
        if (cases[i].in[0] == '/') {                /* and a valid strict target */
            char buf[512];
            int l = snprintf(buf, sizeof(buf), "GET %.*s HTTP/1.1\r\nHost: a\r\n\r\n", (int)n,
                             out);
            assert_int_equal(h1_parse_request(at_end(buf, (size_t)l), (size_t)l, &STRICT, &req), l);
        }
    }
    /* every byte: 3 bytes out at most, and strict-valid bytes unchanged */
    for (unsigned c = 0; c < 256; c++) {
        char in = (char)c;
        size_t n = h1_target_canon(&in, 1, out);

        assert_true(n == 1 || n == 3);
        assert_true((n == 1) == rfc3986_target_byte(c));
    }
}

static void
absolute_form_gives_path_and_authority(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("GET http://Example.COM:80/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n"), &req);
    assert_true(req.flags & H1_F_ABSOLUTE_FORM);
    assert_slice(req.path, "/a/b?c");
    assert_slice(req.host, "Example.COM:80");

    req_ok(S("GET HTTPS://a.b HTTP/1.1\r\nHost: a.b:443\r\n\r\n"), &req);
    assert_slice(req.path, "/");
    assert_slice(req.host, "a.b");

    /* HTTP/1.0 needs no Host */
    req_ok(S("GET http://[::1]:8080/x HTTP/1.0\r\n\r\n"), &req);
    assert_slice(req.host, "[::1]:8080");
}

static void
options_asterisk_form(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
    assert_true(req.flags & H1_F_ASTERISK_FORM);
    assert_slice(req.target, "*");
}

static void
connect_authority_form(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), &req);
    assert_true(req.flags & H1_F_AUTHORITY_FORM);
    assert_slice(req.target, "example.com:443");
    req_ok(S("CONNECT [2001:db8::7]:443 HTTP/1.1\r\nHost: x\r\n\r\n"), &req);
    assert_true(req.flags & H1_F_AUTHORITY_FORM);
}

static void
http10_closes_unless_keep_alive(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("GET / HTTP/1.0\r\n\r\n"), &req);
    assert_int_equal(req.minor, 0);
    assert_int_equal(req.flags, H1_F_HTTP10 | H1_F_CLOSE);
    assert_int_equal(req.nhdrs, 0);
    req_ok(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &req);
    assert_int_equal(req.flags, H1_F_HTTP10 | H1_F_KEEPALIVE);
    /* Expect and Upgrade are ignored in HTTP/1.0 */
    req_ok(S("GET / HTTP/1.0\r\nExpect: 100-continue\r\nConnection: upgrade\r\n"
             "Upgrade: websocket\r\n\r\n"), &req);
    assert_int_equal(req.flags, H1_F_HTTP10 | H1_F_CLOSE);
}

static void
many_headers_up_to_the_limit(void **state)
{
    char buf[8192];
    size_t n;
    struct h1_request req;

    (void)state;
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < 64; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-H%d: v%d\r\n", i, i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    req_ok(buf, n, &req);
    assert_int_equal(req.nhdrs, 64);
    assert_slice(req.hdrs[63].name, "X-H63");
    assert_slice(req.hdrs[63].value, "v63");
    assert_slice(h1_header_find(req.hdrs, req.nhdrs, AC_LIT("x-h10"))->value, "v10");
}

static void
empty_values_and_ows_are_trimmed(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("GET / HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Sp:   \r\nX-T: \t v  w \t\r\n\r\n"), &req);
    assert_int_equal(req.nhdrs, 4);
    assert_slice(req.host, "a");
    assert_slice(req.hdrs[1].value, "");
    assert_slice(req.hdrs[2].value, "");
    assert_slice(req.hdrs[3].value, "v  w");
    /* an empty Host is allowed by RFC 9110 §7.2 */
    req_ok(S("GET / HTTP/1.1\r\nHost: \r\n\r\n"), &req);
    assert_int_equal(req.host.len, 0);
}

static void
obs_text_in_values_is_kept(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("GET / HTTP/1.1\r\nHost: a\r\nX-O: caf\xc3\xa9 \x80\xff\r\n\r\n"), &req);
    assert_slice(req.hdrs[1].value, "caf\xc3\xa9 \x80\xff");
}

/* Long values are scanned sixteen bytes at a time: try every byte class at
 * every position of a long value, across the vector boundaries. */
static void
every_value_byte_at_every_position(void **state)
{
    char buf[128];
    struct h1_request req = { .hdrs = hdrs };
    const size_t pre = 28, vlen = 40;   /* "GET / HTTP/1.1\r\nHost: a\r\nX: " */

    (void)state;
    for (unsigned c = 0; c < 256; c++) {
        bool ok = c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f);

        if (c == '\r')
            continue;           /* a bare CR: covered elsewhere */
        for (size_t i = 0; i < vlen; i++) {
            size_t n;
            int rc;

            memcpy(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ", pre);
            memset(buf + pre, 'v', vlen);
            buf[pre + i] = (char)c;
            memcpy(buf + pre + vlen, "\r\n\r\n", 4);
            n = pre + vlen + 4;
            rc = h1_parse_request(at_end(buf, n), n, &LIM, &req);
            if (ok != (rc == (int)n))
                fail_msg("byte %#x at %zu: %d (%s)", c, i, rc, req.reason ? req.reason : "-");
        }
    }
}

static void
leading_empty_lines_are_skipped(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), &req);
    assert_slice(req.method, "GET");
}

static void
host_forms(void **state)
{
    static const char *const ok[] = {
        "GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 192.0.2.1:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:8]\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::]\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7::]:0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:1.2.3.4]\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: xn--bcher-kva.example:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a%2Db.example\r\n\r\n",
    };
    struct h1_request req;

    (void)state;
    for (size_t i = 0; i < AC_ARRAY_LEN(ok); i++)
        req_ok(ok[i], strlen(ok[i]), &req);
}

static void
framing_and_connection_fields(void **state)
{
    struct h1_request req;

    (void)state;
    req_ok(S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), &req);
    assert_int_equal(req.body, H1_BODY_LENGTH);
    assert_int_equal(req.content_length, 5);
    req_ok(S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5 , 5\r\ncontent-length: 5\r\n\r\n"),
           &req);
    assert_int_equal(req.content_length, 5);
    req_ok(S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &req);
    assert_int_equal(req.body, H1_BODY_LENGTH);
    assert_int_equal(req.content_length, 0);
    req_ok(S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), &req);
    assert_int_equal(req.content_length, INT64_MAX);
    req_ok(S("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), &req);
    assert_int_equal(req.body, H1_BODY_CHUNKED);
    req_ok(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive , Close\r\n\r\n"), &req);
    assert_int_equal(req.flags, H1_F_CLOSE | H1_F_KEEPALIVE);
    req_ok(S("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
           &req);
    assert_int_equal(req.flags, H1_F_UPGRADE);
    req_ok(S("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n"), &req);
    assert_int_equal(req.flags, 0);
    req_ok(S("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"),
           &req);
    assert_int_equal(req.flags, H1_F_EXPECT_100);
    req_ok(S("PUT / HTTP/1.1\r\nHost: a\r\nExpect: x-foo\r\n\r\n"), &req);
    assert_int_equal(req.flags, H1_F_EXPECT_OTHER);
    req_ok(S("GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n"), &req);
    assert_int_equal(req.flags, H1_F_HAS_TE);
    req_ok(S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), &req);
    assert_int_equal(req.minor, 2);
}

static void
pipelined_heads_are_found_by_the_return_value(void **state)
{
    static const char two[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n";
    const size_t first = 28;
    struct h1_request req = { .hdrs = hdrs };
    const char *p;
    int rc;

    (void)state;
    /* whatever part of the second head has arrived, the first is complete */
    for (size_t k = first; k <= sizeof(two) - 1; k++) {
        rc = h1_parse_request(at_end(two, k), k, &LIM, &req);
        assert_int_equal(rc, first);
        assert_slice(req.target, "/a");
    }
    p = at_end(two, sizeof(two) - 1);
    rc = h1_parse_request(p, sizeof(two) - 1, &LIM, &req);
    assert_int_equal(rc, first);
    rc = h1_parse_request(p + first, sizeof(two) - 1 - first, &LIM, &req);
    assert_int_equal(rc, sizeof(two) - 1 - first);
    assert_slice(req.method, "POST");
    assert_slice(req.host, "b");
}

static void
list_and_find_helpers(void **state)
{
    (void)state;
    assert_true(h1_list_has_token(AC_LIT("a, Keep-Alive ,b"), AC_LIT("keep-alive")));
    assert_true(h1_list_has_token(AC_LIT("gzip;q=\"x,chunked\", br;q=1"), AC_LIT("br")));
    assert_false(h1_list_has_token(AC_LIT("gzip;q=\"x,chunked\""), AC_LIT("chunked")));
    assert_true(h1_list_has_token(AC_LIT(",,close,,"), AC_LIT("close")));
    assert_true(h1_list_has_token(AC_LIT("a;q=\"\\\",b\", b"), AC_LIT("b")));
    assert_false(h1_list_has_token(AC_LIT("a;q=\"\\\",b\""), AC_LIT("b")));
    assert_false(h1_list_has_token(AC_LIT("closed"), AC_LIT("close")));
    assert_false(h1_list_has_token(AC_LIT(""), AC_LIT("close")));
    assert_false(h1_list_has_token(AC_LIT("a"), AC_LIT("")));
    assert_null(h1_header_find(hdrs, 0, AC_LIT("host")));
    assert_int_equal(h1_error_status(H1_ERR_TE_UNKNOWN), 501);
    assert_int_equal(h1_error_status(H1_ERR_NONE), 0);
    assert_int_equal(h1_error_status(H1_ERR_BAD), 400);
    assert_int_equal(h1_error_status(H1_ERR_TARGET_TOO_LONG), 414);
    assert_int_equal(h1_error_status(H1_ERR_HEAD_TOO_LARGE), 431);
    assert_int_equal(h1_error_status(H1_ERR_VERSION), 505);
}

/* ------------------------------------------------------------------------
 * Rejected requests: one cmocka test each, built from this table.
 */

enum rej_limits { R_LIM, R_SMALL, R_STRICT, R_BOTH };
struct reject {
    const char *name;
    const char *in;
    size_t len;
    enum h1_error err;
    enum rej_limits limits;     /* R_BOTH: liberal (LIM) and strict (STRICT) alike */
    long off;                   /* err_off wanted; -1: not checked */
};
#define REJ(n, s, e) { n, s, sizeof(s) - 1, e, R_BOTH, -1 }
#define REJ_AT(n, s, e, o) { n, s, sizeof(s) - 1, e, R_BOTH, o }
#define REJ_SMALL(n, s, e) { n, s, sizeof(s) - 1, e, R_SMALL, -1 }
/* rejected by the RFC 3986 grammar of -p uri_strict=on only */
#define REJ_STRICT(n, s, e) { n, s, sizeof(s) - 1, e, R_STRICT, -1 }
#define H11 " HTTP/1.1\r\nHost: a\r\n"

static const struct reject rejects[] = {
    REJ("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("bare LF ends request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("bare LF ends field line", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", H1_ERR_BAD),
    REJ("bare LF ends head", "GET / HTTP/1.1\r\nHost: a\r\n\n", H1_ERR_BAD),
    REJ("bare LF head only", "GET / HTTP/1.1\nHost: a\n\n", H1_ERR_BAD),
    REJ("bare LF leading line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("bare CR in field value", "GET /" H11 "X: a\rb\r\n\r\n", H1_ERR_BAD),
    REJ("bare CR as line end", "GET /" H11 "X: a\r\r\n\r\n", H1_ERR_BAD),
    REJ("bare CR starting a line", "GET /" H11 "\rX: a\r\n\r\n", H1_ERR_BAD),
    REJ("NUL in field value", "GET /" H11 "X: a\0b\r\n\r\n", H1_ERR_BAD),
    REJ_AT("CTL in field value", "GET /" H11 "X: a\x01\r\n\r\n", H1_ERR_BAD, 29),
    REJ("DEL in field value", "GET /" H11 "X: a\x7f\r\n\r\n", H1_ERR_BAD),
    REJ("ESC in field value", "GET /" H11 "X: \x1b[0m\r\n\r\n", H1_ERR_BAD),
    REJ_AT("NUL in target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD, 6),
    REJ_AT("CTL in target", "GET /a\x01b" H11 "\r\n", H1_ERR_BAD, 6),
    REJ_AT("ESC in target", "GET /?q=\x1b[0m" H11 "\r\n", H1_ERR_BAD, 8),
    REJ_AT("DEL in target", "GET /a\x7f" H11 "\r\n", H1_ERR_BAD, 6),
    REJ_AT("tab in target", "GET /a\tb" H11 "\r\n", H1_ERR_BAD, 6),
    REJ_AT("CTL in absolute-form path", "GET http://a/\x1f" H11 "\r\n", H1_ERR_BAD, 13),
    REJ_AT("bare CR in target", "GET /a\rb" H11 "\r\n", H1_ERR_BAD, 6),
    REJ_STRICT("bracket in target", "GET /?a[b]=c" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("pipe in target", "GET /a|b" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("backslash in target", "GET /a\\b" H11 "\r\n", H1_ERR_BAD),
    REJ("CTL in method", "G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("obs-fold", "GET /" H11 "X: a\r\n  b\r\n\r\n", H1_ERR_BAD),
    REJ("obs-fold with tab", "GET /" H11 "X: a\r\n\tb\r\n\r\n", H1_ERR_BAD),
    REJ("whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", H1_ERR_BAD),
    REJ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", H1_ERR_BAD),
    REJ("tab before colon", "GET /" H11 "Content-Length\t: 5\r\n\r\n", H1_ERR_BAD),
    REJ("empty field name", "GET /" H11 ": a\r\n\r\n", H1_ERR_BAD),
    REJ("field line without colon", "GET /" H11 "X-Foo\r\n\r\n", H1_ERR_BAD),
    REJ("field name not a token", "GET /" H11 "X(y): a\r\n\r\n", H1_ERR_BAD),
    REJ("bare CR in field name", "GET /" H11 "X\rY: a\r\n\r\n", H1_ERR_BAD),
    REJ("field name with obs-text", "GET /" H11 "X\x80: a\r\n\r\n", H1_ERR_BAD),
    REJ_AT("method not a token", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD, 1),
    REJ("empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("tab as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ_AT("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD, 6),
    REJ_STRICT("quote in target", "GET /a\"b" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("fragment in target", "GET /a#f" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("brace in target", "GET /a{b}" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("obs-text in target", "GET /caf\xc3\xa9" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("bad percent escape", "GET /%zz" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("truncated percent escape", "GET /%4" H11 "\r\n", H1_ERR_BAD),
    REJ("relative target", "GET a/b" H11 "\r\n", H1_ERR_BAD),
    REJ("absolute-form ftp", "GET ftp://a/" H11 "\r\n", H1_ERR_BAD),
    REJ("absolute-form userinfo", "GET http://u@a/" H11 "\r\n", H1_ERR_BAD),
    REJ("absolute-form empty host", "GET http:///a" H11 "\r\n", H1_ERR_BAD),
    REJ("absolute-form query no path", "GET http://a?x" H11 "\r\n", H1_ERR_BAD),
    REJ("absolute-form bad path", "GET http://a/ b" H11 "\r\n", H1_ERR_BAD),
    REJ_STRICT("absolute-form bad path char", "GET http://a/{}" H11 "\r\n", H1_ERR_BAD),
    REJ("Host disagrees with absolute-form",
        "GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("Host port disagrees with absolute-form",
        "GET http://a:8080/ HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("asterisk-form with GET", "GET *" H11 "\r\n", H1_ERR_BAD),
    REJ("authority-form with GET", "GET a.com:443" H11 "\r\n", H1_ERR_BAD),
    REJ("CONNECT with origin-form", "CONNECT /" H11 "\r\n", H1_ERR_BAD),
    REJ("CONNECT without port", "CONNECT a.com" H11 "\r\n", H1_ERR_BAD),
    REJ("CONNECT with userinfo", "CONNECT u@a.com:443" H11 "\r\n", H1_ERR_BAD),
    REJ("lowercase connect is not CONNECT", "connect a.com:443" H11 "\r\n", H1_ERR_BAD),
    REJ("version trailing byte", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("version lowercase", "GET / http/1.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("version two-digit major", "GET / HTTP/11.1\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("missing version", "GET /\r\nHost: a\r\n\r\n", H1_ERR_BAD),
    REJ("HTTP/0.9 request line", "GET /\r\n\r\n", H1_ERR_BAD),
    REJ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", H1_ERR_VERSION),
    REJ("HTTP/0.9 version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", H1_ERR_VERSION),
    REJ("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", H1_ERR_VERSION),
    REJ("missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", H1_ERR_BAD),
    REJ("two Host fields", "GET /" H11 "Host: a\r\n\r\n", H1_ERR_BAD),
    REJ("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", H1_ERR_BAD),
    REJ("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", H1_ERR_BAD),
    REJ("Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", H1_ERR_BAD),
    REJ("Host port not digits", "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", H1_ERR_BAD),
    REJ("Host port too large", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", H1_ERR_BAD),
    REJ("Host empty with port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", H1_ERR_BAD),
    REJ("Host unclosed IP literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", H1_ERR_BAD),
    REJ("Host bad IPv6", "GET / HTTP/1.1\r\nHost: [1::2::3]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv6 too many groups", "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:8:9]\r\n\r\n",
        H1_ERR_BAD),
    REJ("Host bad embedded IPv4", "GET / HTTP/1.1\r\nHost: [::1.2.3.256]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv4 leading zero", "GET / HTTP/1.1\r\nHost: [::1.2.3.04]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv4 short", "GET / HTTP/1.1\r\nHost: [::1.2.3]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv4 trailing byte", "GET / HTTP/1.1\r\nHost: [::1.2.3.4x]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv6 too few groups", "GET / HTTP/1.1\r\nHost: [1:2]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv6 trailing colon", "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv6 leading colon", "GET / HTTP/1.1\r\nHost: [:1::2]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv6 long group", "GET / HTTP/1.1\r\nHost: [12345::]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPv6 bad char", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", H1_ERR_BAD),
    REJ("Host empty IP literal", "GET / HTTP/1.1\r\nHost: []\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPvFuture without dot", "GET / HTTP/1.1\r\nHost: [v1]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPvFuture without version", "GET / HTTP/1.1\r\nHost: [v.x]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPvFuture empty", "GET / HTTP/1.1\r\nHost: [v1.]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IPvFuture bad char", "GET / HTTP/1.1\r\nHost: [v1.x/y]\r\n\r\n", H1_ERR_BAD),
    REJ("Host IP literal then junk", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", H1_ERR_BAD),
    REJ("Host port six digits", "GET / HTTP/1.1\r\nHost: a:000080\r\n\r\n", H1_ERR_BAD),
    REJ("Host bad percent", "GET / HTTP/1.1\r\nHost: a%g1\r\n\r\n", H1_ERR_BAD),
    REJ("CL with TE", "POST /" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE with CL", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        H1_ERR_BAD),
    REJ("CL list differs", "POST /" H11 "Content-Length: 5, 6\r\n\r\n", H1_ERR_BAD),
    REJ("CL fields differ", "POST /" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        H1_ERR_BAD),
    REJ("CL not digits", "POST /" H11 "Content-Length: abc\r\n\r\n", H1_ERR_BAD),
    REJ("CL negative", "POST /" H11 "Content-Length: -1\r\n\r\n", H1_ERR_BAD),
    REJ("CL plus sign", "POST /" H11 "Content-Length: +5\r\n\r\n", H1_ERR_BAD),
    REJ("CL hex", "POST /" H11 "Content-Length: 0x5\r\n\r\n", H1_ERR_BAD),
    REJ("CL inner space", "POST /" H11 "Content-Length: 5 5\r\n\r\n", H1_ERR_BAD),
    REJ("CL empty", "POST /" H11 "Content-Length: \r\n\r\n", H1_ERR_BAD),
    REJ("CL empty element", "POST /" H11 "Content-Length: 5,\r\n\r\n", H1_ERR_BAD),
    REJ("CL overflow", "POST /" H11 "Content-Length: 9223372036854775808\r\n\r\n", H1_ERR_BAD),
    REJ("CL huge overflow", "POST /" H11 "Content-Length: 99999999999999999999999\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE final not chunked", "POST /" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE gzip only", "POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", H1_ERR_BAD),
    REJ("TE chunked twice", "POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE chunked twice across fields",
        "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE chunked then other field",
        "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", H1_ERR_BAD),
    REJ("TE empty", "POST /" H11 "Transfer-Encoding: \r\n\r\n", H1_ERR_BAD),
    REJ("TE empty element", "POST /" H11 "Transfer-Encoding: chunked,\r\n\r\n", H1_ERR_BAD),
    REJ("TE leading empty element", "POST /" H11 "Transfer-Encoding: , chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE not a token", "POST /" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", H1_ERR_BAD),
    REJ("TE bad parameter", "POST /" H11 "Transfer-Encoding: gzip;, chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE parameters on chunked", "POST /" H11 "Transfer-Encoding: chunked;a=b\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE parameter without value", "POST /" H11 "Transfer-Encoding: gzip;q, chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE parameter empty value", "POST /" H11 "Transfer-Encoding: gzip;q=, chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE parameter empty name", "POST /" H11 "Transfer-Encoding: gzip;=1, chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE parameter open quote", "POST /" H11 "Transfer-Encoding: gzip;q=\"1, chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE two codings without comma", "POST /" H11 "Transfer-Encoding: gzip chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_BAD),
    REJ("TE gzip before chunked", "POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n",
        H1_ERR_TE_UNKNOWN),
    REJ("TE deflate before chunked",
        "POST /" H11 "Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n",
        H1_ERR_TE_UNKNOWN),
    REJ("TE unknown coding", "POST /" H11 "Transfer-Encoding: x-foo;a=\"b,c\", chunked\r\n\r\n",
        H1_ERR_TE_UNKNOWN),
    REJ("TE coding with parameters", "POST /" H11
        "Transfer-Encoding: gzip ; q = 1 ;r=\"x\\\"y\" , chunked\r\n\r\n", H1_ERR_TE_UNKNOWN),
    REJ("TE identity", "POST /" H11 "Transfer-Encoding: identity, chunked\r\n\r\n",
        H1_ERR_TE_UNKNOWN),
    REJ("TLS hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", H1_ERR_BAD),
    REJ("garbage line", "hello world\r\n\r\n", H1_ERR_BAD),
    REJ_SMALL("target over max_target", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n"
              "Host: a\r\n\r\n", H1_ERR_TARGET_TOO_LONG),
    REJ_SMALL("head over max_head", "GET / HTTP/1.1\r\nHost: a\r\n"
              "X-A: 0123456789012345678901\r\nX-B: 0123456789012345678901\r\n\r\n",
              H1_ERR_HEAD_TOO_LARGE),
    REJ_SMALL("target over max_target without version", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
              "\r\n\r\n", H1_ERR_TARGET_TOO_LONG),
    REJ_SMALL("field line over max_header_line", "GET / HTTP/1.1\r\nHost: a\r\n"
              "X-Long: 01234567890123456789012345678901\r\n\r\n", H1_ERR_HEAD_TOO_LARGE),
    REJ_SMALL("more than max_headers fields", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n"
              "C: 3\r\nD: 4\r\n\r\n", H1_ERR_HEAD_TOO_LARGE),
};

/* max_head 64, max_target 32, max_header_line 32, max_headers 4 */
static const struct h1_limits SMALL = {
    .max_head = 64, .max_target = 32, .max_header_line = 32, .max_headers = 4,
};

static void
rejected_with(const struct reject *c, const struct h1_limits *lim)
{
    struct h1_request req;
    int rc;

    rc = req_all_prefixes(c->in, c->len, lim, &req, false);
    if (rc != AC_EPROTO)
        fail_msg("%s: returned %d", c->name, rc);
    if (req.error != c->err)
        fail_msg("%s: error %d (%s), want %d", c->name, req.error, req.reason, c->err);
    assert_non_null(req.reason);
    if (c->off >= 0 && req.err_off != (size_t)c->off)
        fail_msg("%s: err_off %zu, want %ld (%s)", c->name, req.err_off, c->off, req.reason);
    if (req.err_off != SIZE_MAX && req.err_off > c->len)
        fail_msg("%s: err_off %zu past the input", c->name, req.err_off);
}

static void
rejected_request(void **state)
{
    const struct reject *c = *state;
    struct h1_request req;

    switch (c->limits) {
    case R_SMALL:
        rejected_with(c, &SMALL);
        break;
    case R_LIM:
        rejected_with(c, &LIM);
        break;
    case R_BOTH:
        rejected_with(c, &LIM);
        rejected_with(c, &STRICT);
        break;
    case R_STRICT:
        rejected_with(c, &STRICT);
        /* the liberal grammar (the default) takes it */
        req_ok(c->in, c->len, &req);
        break;
    }
}

/* Limits hit while the head is still incomplete are reported at once. */
static void
limits_apply_to_incomplete_heads(void **state)
{
    char big[200];
    struct h1_request req = { .hdrs = hdrs };
    int rc;

    (void)state;
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    rc = h1_parse_request(at_end(big, 40), 40, &SMALL, &req);
    assert_int_equal(rc, AC_EPROTO);
    assert_int_equal(req.error, H1_ERR_TARGET_TOO_LONG);
    /* the target fits; the head does not */
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    rc = h1_parse_request(at_end(big, 65), 65, &SMALL, &req);
    assert_int_equal(rc, AC_EPROTO);
    assert_int_equal(req.error, H1_ERR_HEAD_TOO_LARGE);
    rc = h1_parse_request(at_end(big, 60), 60, &SMALL, &req);
    assert_int_equal(rc, AC_EPROTO);            /* the field line is over 32 */
    assert_int_equal(req.error, H1_ERR_HEAD_TOO_LARGE);
    rc = h1_parse_request(at_end(big, 40), 40, &SMALL, &req);
    assert_int_equal(rc, AC_AGAIN);
    /* garbage is rejected before the head ends */
    rc = h1_parse_request(at_end("\x16\x03\x01", 3), 3, &LIM, &req);
    assert_int_equal(rc, AC_EPROTO);
    rc = h1_parse_request(at_end("GET / HTTP/3.0\r\n", 16), 16, &LIM, &req);
    assert_int_equal(rc, AC_EPROTO);
    assert_int_equal(req.error, H1_ERR_VERSION);
    /* an endless run of empty lines is a head too large */
    memset(big, 0, sizeof(big));
    for (size_t i = 0; i + 1 < sizeof(big); i += 2)
        memcpy(big + i, "\r\n", 2);
    rc = h1_parse_request(at_end(big, 66), 66, &SMALL, &req);
    assert_int_equal(rc, AC_EPROTO);
    assert_int_equal(req.error, H1_ERR_HEAD_TOO_LARGE);
    rc = h1_parse_request(at_end(big, 64), 64, &SMALL, &req);
    assert_int_equal(rc, AC_AGAIN);
}

/* ------------------------------------------------------------------------
 * Responses.
 */

struct resp_case {
    const char *in;
    const char *method;
    int status;
    enum h1_body body;
    uint64_t cl;
    unsigned flags;
};

static const struct resp_case resp_cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "GET", 200, H1_BODY_LENGTH, 12, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", "GET", 200, H1_BODY_LENGTH, 3, 0 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 200, H1_BODY_CHUNKED,
      0, 0 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET", 200,
      H1_BODY_CHUNKED, 0, 0 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "GET", 200,
      H1_BODY_CHUNKED, 5, H1_F_CLOSE },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", 200, H1_BODY_CLOSE, 0,
      H1_F_CLOSE },
    { "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", "GET", 200, H1_BODY_CLOSE, 0, H1_F_CLOSE },
    { "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", "GET", 204, H1_BODY_NONE, 7, 0 },
    { "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 304,
      H1_BODY_NONE, 0, 0 },
    { "HTTP/1.1 100 Continue\r\n\r\n", "PUT", 100, H1_BODY_NONE, 0, 0 },
    { "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
      "GET", 101, H1_BODY_NONE, 0, H1_F_UPGRADE },
    { "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", 200, H1_BODY_NONE, 99, 0 },
    { "HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT", 200, H1_BODY_NONE, 0, 0 },
    { "HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n", "CONNECT", 407, H1_BODY_LENGTH, 0, 0 },
    { "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "GET", 200, H1_BODY_LENGTH, 1,
      H1_F_HTTP10 | H1_F_CLOSE },
    { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", "GET", 200,
      H1_BODY_LENGTH, 1, H1_F_HTTP10 | H1_F_KEEPALIVE },
    { "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 200, H1_BODY_CHUNKED, 0,
      H1_F_HTTP10 | H1_F_CLOSE },
    { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", "GET", 200,
      H1_BODY_LENGTH, 1, H1_F_CLOSE },
    { "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", "GET", 200, H1_BODY_LENGTH, 1, 0 },
    { "HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n", "GET", 200, H1_BODY_LENGTH, 1, 0 },
    { "HTTP/1.1 599 Caf\xc3\xa9\tok\r\nContent-Length: 0\r\n\r\n", "GET", 599, H1_BODY_LENGTH,
      0, 0 },
    { "\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "GET", 404, H1_BODY_LENGTH, 0,
      0 },
};

static void
responses_are_framed_per_rfc9112(void **state)
{
    (void)state;
    for (size_t i = 0; i < AC_ARRAY_LEN(resp_cases); i++) {
        const struct resp_case *c = &resp_cases[i];
        struct h1_response resp;
        size_t n = strlen(c->in);

        resp_all_prefixes(c->in, n, c->method, &resp, (int)n);
        assert_int_equal(resp.status, c->status);
        if (resp.body != c->body || resp.flags != c->flags || resp.content_length != c->cl)
            fail_msg("case %zu: body %d flags %#x cl %llu", i, resp.body, resp.flags,
                     (unsigned long long)resp.content_length);
    }
}

static void
response_fields_and_reason(void **state)
{
    struct h1_response resp;

    (void)state;
    resp_all_prefixes(S("HTTP/1.1 404 Not Found\r\nServer: t\r\nX-E:\r\n\r\n"), "GET", &resp,
                      43);
    assert_slice(resp.reason_phrase, "Not Found");
    assert_int_equal(resp.minor, 1);
    assert_int_equal(resp.nhdrs, 2);
    assert_slice(resp.hdrs[0].value, "t");
}

static void
pipelined_responses(void **state)
{
    static const char two[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
                              "2\r\n\r\nok";
    struct h1_response resp = { .hdrs = hdrs };
    const char *p = at_end(two, sizeof(two) - 1);
    int rc;

    (void)state;
    rc = h1_parse_response(p, sizeof(two) - 1, &LIM, AC_LIT("PUT"), &resp);
    assert_int_equal(rc, 25);
    assert_int_equal(resp.status, 100);
    rc = h1_parse_response(p + 25, sizeof(two) - 1 - 25, &LIM, AC_LIT("PUT"), &resp);
    assert_int_equal(rc, sizeof(two) - 1 - 25 - 2);
    assert_int_equal(resp.body, H1_BODY_LENGTH);
}

static const struct reject resp_rejects[] = {
    REJ("resp HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", H1_ERR_VERSION),
    REJ("resp not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", H1_ERR_BAD),
    REJ("resp lowercase version", "http/1.1 200 OK\r\n\r\n", H1_ERR_BAD),
    REJ("resp status two digits", "HTTP/1.1 20 OK\r\n\r\n", H1_ERR_BAD),
    REJ("resp status four digits", "HTTP/1.1 2000 OK\r\n\r\n", H1_ERR_BAD),
    REJ("resp status under 100", "HTTP/1.1 099 x\r\n\r\n", H1_ERR_BAD),
    REJ("resp no SP after version", "HTTP/1.1_200 OK\r\n\r\n", H1_ERR_BAD),
    REJ("resp no SP after status", "HTTP/1.1 200_OK\r\n\r\n", H1_ERR_BAD),
    REJ("resp short status line", "HTTP/1.1 20\r\n\r\n", H1_ERR_BAD),
    REJ("resp parameters on chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;a=b\r\n\r\n",
        H1_ERR_BAD),
    REJ("resp status not digits", "HTTP/1.1 2x0 OK\r\n\r\n", H1_ERR_BAD),
    REJ("resp CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", H1_ERR_BAD),
    REJ("resp bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", H1_ERR_BAD),
    REJ("resp bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", H1_ERR_BAD),
    REJ("resp differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        H1_ERR_BAD),
    REJ("resp bad CL on 304", "HTTP/1.1 304 NM\r\nContent-Length: -1\r\n\r\n", H1_ERR_BAD),
    REJ("resp chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        H1_ERR_BAD),
    REJ("resp obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", H1_ERR_BAD),
    REJ("resp space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n",
        H1_ERR_BAD),
    REJ("resp NUL in value", "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", H1_ERR_BAD),
};

static void
rejected_response(void **state)
{
    const struct reject *c = *state;
    struct h1_response resp;

    resp_all_prefixes(c->in, c->len, "GET", &resp, AC_EPROTO);
    if (resp.error != c->err)
        fail_msg("%s: error %d (%s), want %d", c->name, resp.error, resp.reason, c->err);
    assert_non_null(resp.reason);
}

/* ------------------------------------------------------------------------
 * Chunked decoder.
 */

struct dec {
    int rc;                 /* AC_AGAIN: not finished; 0: done; AC_EPROTO */
    char data[4096];
    size_t dlen, consumed;
    const char *reason;
};

static void
feed(struct h1_chunked *c, const char *s, size_t n, struct dec *d)
{
    const char *p = at_end(s, n);
    size_t off = 0;

    while (d->rc == AC_AGAIN && off < n) {
        struct ac_slice data;
        long r = h1_chunked_decode(c, p + off, n - off, &data);

        if (r == AC_EPROTO) {
            d->rc = AC_EPROTO;
            d->reason = c->reason;
            assert_non_null(d->reason);
            return;
        }
        assert_true(r > 0 && (size_t)r <= n - off);
        assert_true(data.len <= (size_t)r);
        assert_true(data.p >= p + off && data.p + data.len <= p + off + (size_t)r);
        assert_true(d->dlen + data.len <= sizeof(d->data));
        memcpy(d->data + d->dlen, data.p, data.len);
        d->dlen += data.len;
        off += (size_t)r;
        d->consumed += (size_t)r;
        if (h1_chunked_done(c))
            d->rc = 0;
    }
}

static void
decode_whole(const char *s, size_t n, size_t max_line, struct dec *d)
{
    struct h1_chunked c;

    memset(d, 0, sizeof(*d));
    d->rc = AC_AGAIN;
    h1_chunked_init(&c);
    c.max_line = max_line;
    feed(&c, s, n, d);
    if (d->rc == 0)
        assert_int_equal(c.total, d->dlen);
}

/* The same bytes and verdict whether fed whole, in two parts split at every
 * offset, or one byte at a time. */
static void
decode_every_split(const char *s, size_t n, size_t max_line, struct dec *whole)
{
    static struct dec d;
    struct h1_chunked c;

    decode_whole(s, n, max_line, whole);
    for (size_t k = 0; k <= n; k++) {
        memset(&d, 0, sizeof(d));
        d.rc = AC_AGAIN;
        h1_chunked_init(&c);
        c.max_line = max_line;
        feed(&c, s, k, &d);
        feed(&c, s + k, n - k, &d);
        /* on error, what was consumed before it depends on the split */
        if (d.rc != whole->rc || d.dlen != whole->dlen ||
            (d.rc != AC_EPROTO && d.consumed != whole->consumed) ||
            memcmp(d.data, whole->data, d.dlen) != 0)
            fail_msg("split at %zu of %zu: rc %d/%d dlen %zu/%zu consumed %zu/%zu", k, n, d.rc,
                     whole->rc, d.dlen, whole->dlen, d.consumed, whole->consumed);
    }
    memset(&d, 0, sizeof(d));
    d.rc = AC_AGAIN;
    h1_chunked_init(&c);
    c.max_line = max_line;
    for (size_t i = 0; i < n; i++)
        feed(&c, s + i, 1, &d);
    assert_int_equal(d.rc, whole->rc);
    assert_int_equal(d.dlen, whole->dlen);
    assert_memory_equal(d.data, whole->data, d.dlen);
}

struct chunk_ok {
    const char *in;
    const char *body;
    size_t consumed;        /* 0: all of in */
};

static const struct chunk_ok chunk_oks[] = {
    { "5\r\nhello\r\n0\r\n\r\n", "hello", 0 },
    { "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", 0 },
    { "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij", 0 },
    { "0000000005\r\nhello\r\n000\r\n\r\n", "hello", 0 },
    { "5;a\r\nhello\r\n0;b=c\r\n\r\n", "hello", 0 },
    { "5 ;a = b ; c=\"q\\\"x;y\" ;d\r\nhello\r\n0\r\n\r\n", "hello", 0 },
    { "5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello", 0 },
    { "5;a;b ;c=\"x\";d=\"\\\x80\" \t;e\r\nhello\r\n0\r\n\r\n", "hello", 0 },
    { "0\r\nX-Trailer: yes\r\nY:\r\nZ: \xc3\xa9 a\t\r\n\r\n", "", 0 },
    { "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "abc", 13 },
    { "1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", "\r\n", 0 },
};

static void
chunked_valid_bodies_decode(void **state)
{
    static struct dec d;

    (void)state;
    for (size_t i = 0; i < AC_ARRAY_LEN(chunk_oks); i++) {
        const struct chunk_ok *c = &chunk_oks[i];
        size_t n = strlen(c->in);

        decode_every_split(c->in, n, 0, &d);
        if (d.rc != 0)
            fail_msg("case %zu: rc %d (%s)", i, d.rc, d.reason);
        assert_int_equal(d.dlen, strlen(c->body));
        assert_memory_equal(d.data, c->body, d.dlen);
        assert_int_equal(d.consumed, c->consumed ? c->consumed : n);
    }
}

static void
chunked_done_consumes_nothing_more(void **state)
{
    struct h1_chunked c;
    struct ac_slice data;
    const char *p = at_end(S("0\r\n\r\nX"));

    (void)state;
    h1_chunked_init(&c);
    assert_int_equal(h1_chunked_decode(&c, p, 6, &data), 5);
    assert_true(h1_chunked_done(&c));
    assert_int_equal(h1_chunked_decode(&c, p + 5, 1, &data), 0);
    assert_int_equal(data.len, 0);
    assert_int_equal(h1_chunked_decode(&c, p, 0, &data), 0);
}

static void
chunked_error_after_data_is_reported_next_call(void **state)
{
    struct h1_chunked c;
    struct ac_slice data;
    const char *p = at_end(S("5\r\nhello\r\nZ"));

    (void)state;
    h1_chunked_init(&c);
    /* framing, the data run, its CRLF; "Z" is left for the next call */
    assert_int_equal(h1_chunked_decode(&c, p, 11, &data), 10);
    assert_int_equal(data.len, 5);
    assert_true(data.p == p + 3);
    assert_int_equal(h1_chunked_decode(&c, p + 10, 1, &data), AC_EPROTO);
    assert_non_null(c.reason);
}

static void
chunked_big_sizes(void **state)
{
    struct h1_chunked c;
    struct ac_slice data;
    const char *p;

    (void)state;
    /* 2^62 itself is accepted (we only see the start of it) */
    p = at_end(S("4000000000000000\r\nab"));
    h1_chunked_init(&c);
    assert_int_equal(h1_chunked_decode(&c, p, 20, &data), 20);
    assert_int_equal(data.len, 2);
    assert_true(c.remaining == ((uint64_t)1 << 62) - 2);
}

struct chunk_bad {
    const char *name;
    const char *in;
    size_t len;
    size_t max_line;
};
#define CBAD(n, s) { n, s, sizeof(s) - 1, 0 }
#define CBAD_LINE(n, s, ml) { n, s, sizeof(s) - 1, ml }

static const struct chunk_bad chunk_bads[] = {
    CBAD("chunk size not hex", "g\r\n"),
    CBAD("chunk size empty", "\r\n"),
    CBAD("chunk size negative", "-1\r\n"),
    CBAD("chunk size 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
    CBAD("chunk size leading space", " 5\r\nhello\r\n0\r\n\r\n"),
    CBAD("chunk size trailing space", "5 \r\nhello\r\n0\r\n\r\n"),
    CBAD("chunk size bare LF", "5\nhello\r\n0\r\n\r\n"),
    CBAD("chunk size bare CR", "5\rhello\r\n0\r\n\r\n"),
    CBAD("chunk size overflow 2^62+1", "4000000000000001\r\n"),
    CBAD("chunk size overflow 2^64", "10000000000000000\r\n"),
    CBAD("missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n"),
    CBAD("data too long for size", "5\r\nhello!\r\n0\r\n\r\n"),
    CBAD("bare LF after data", "5\r\nhello\n0\r\n\r\n"),
    CBAD("bare CR after data", "5\r\nhello\r0\r\n\r\n"),
    CBAD("ext empty", "5;\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext empty name", "5;=a\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext empty value", "5;a=\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext trailing space", "5;a=b \r\nhello\r\n0\r\n\r\n"),
    CBAD("ext bad char", "5;a@b\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext unterminated quote", "5;a=\"x\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext CTL in quote", "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext bytes after quote", "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext bare LF", "5;a\nhello\r\n0\r\n\r\n"),
    CBAD("ext junk after size space", "5 x\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext junk after name space", "5;a x\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext name space CR", "5;a \r\nhello\r\n0\r\n\r\n"),
    CBAD("ext value not token", "5;a=@\r\nhello\r\n0\r\n\r\n"),
    CBAD("ext quoted-pair CTL", "5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n"),
    CBAD("last chunk bare LF", "0\n\r\n"),
    CBAD("final bare LF", "0\r\n\n"),
    CBAD("final bare CR", "0\r\n\rX"),
    CBAD("trailer obs-fold", "0\r\nX: y\r\n z\r\n\r\n"),
    CBAD("trailer without colon", "0\r\nXy\r\n\r\n"),
    CBAD("trailer space before colon", "0\r\nX : y\r\n\r\n"),
    CBAD("trailer empty name", "0\r\n: y\r\n\r\n"),
    CBAD("trailer bare LF", "0\r\nX: y\n\r\n"),
    CBAD("trailer bare CR", "0\r\nX: y\rz\r\n\r\n"),
    CBAD("trailer NUL", "0\r\nX: \0\r\n\r\n"),
    CBAD_LINE("size line too long", "000000000000000000005\r\nhello\r\n0\r\n\r\n", 16),
    CBAD_LINE("ext line too long", "5;aaaaaaaaaaaaaaaaaaaaaaaaa\r\nhello\r\n0\r\n\r\n", 16),
    CBAD_LINE("trailer line too long", "0\r\nX: aaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 16),
};

static void
chunked_rejected(void **state)
{
    const struct chunk_bad *c = *state;
    static struct dec d;

    decode_every_split(c->in, c->len, c->max_line, &d);
    if (d.rc != AC_EPROTO)
        fail_msg("%s: rc %d", c->name, d.rc);
}

/* ------------------------------------------------------------------------ */

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(get_origin_form_is_split_into_slices),
        cmocka_unit_test(liberal_targets_are_taken_as_received),
        cmocka_unit_test(every_target_byte_at_every_position),
        cmocka_unit_test(canonical_target_encodes_what_strict_refuses),
        cmocka_unit_test(absolute_form_gives_path_and_authority),
        cmocka_unit_test(options_asterisk_form),
        cmocka_unit_test(connect_authority_form),
        cmocka_unit_test(http10_closes_unless_keep_alive),
        cmocka_unit_test(many_headers_up_to_the_limit),
        cmocka_unit_test(empty_values_and_ows_are_trimmed),
        cmocka_unit_test(obs_text_in_values_is_kept),
        cmocka_unit_test(every_value_byte_at_every_position),
        cmocka_unit_test(leading_empty_lines_are_skipped),
        cmocka_unit_test(host_forms),
        cmocka_unit_test(framing_and_connection_fields),
        cmocka_unit_test(pipelined_heads_are_found_by_the_return_value),
        cmocka_unit_test(list_and_find_helpers),
        cmocka_unit_test(limits_apply_to_incomplete_heads),
        cmocka_unit_test(responses_are_framed_per_rfc9112),
        cmocka_unit_test(response_fields_and_reason),
        cmocka_unit_test(pipelined_responses),
        cmocka_unit_test(chunked_valid_bodies_decode),
        cmocka_unit_test(chunked_done_consumes_nothing_more),
        cmocka_unit_test(chunked_error_after_data_is_reported_next_call),
        cmocka_unit_test(chunked_big_sizes),
    };
    static char names[AC_ARRAY_LEN(rejects) + AC_ARRAY_LEN(resp_rejects) +
                      AC_ARRAY_LEN(chunk_bads)][96];
    struct CMUnitTest tests[AC_ARRAY_LEN(fixed) + AC_ARRAY_LEN(names)];
    size_t n = 0, k = 0;

    for (size_t i = 0; i < AC_ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < AC_ARRAY_LEN(rejects); i++, k++) {
        snprintf(names[k], sizeof(names[k]), "request rejected: %s", rejects[i].name);
        tests[n++] = (struct CMUnitTest){ names[k], rejected_request, NULL, NULL,
                                          (void *)&rejects[i] };
    }
    for (size_t i = 0; i < AC_ARRAY_LEN(resp_rejects); i++, k++) {
        snprintf(names[k], sizeof(names[k]), "response rejected: %s", resp_rejects[i].name);
        tests[n++] = (struct CMUnitTest){ names[k], rejected_response, NULL, NULL,
                                          (void *)&resp_rejects[i] };
    }
    for (size_t i = 0; i < AC_ARRAY_LEN(chunk_bads); i++, k++) {
        snprintf(names[k], sizeof(names[k]), "chunked rejected: %s", chunk_bads[i].name);
        tests[n++] = (struct CMUnitTest){ names[k], chunked_rejected, NULL, NULL,
                                          (void *)&chunk_bads[i] };
    }
    return _cmocka_run_group_tests("h1_parse", tests, n, group_setup, group_teardown);
}
