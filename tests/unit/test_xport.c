/*
 * test_xport.c -- the pieces of the transport interface every transport
 * shares (accel/req/xport.c, accel/req/meta.c): walking the fields of a
 * response head the way HTTP/2 will frame them, and request metadata that
 * outlives its connection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "req.h"
#include "xport.h"

static void
assert_slice(struct ac_slice s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

/* A stored block (status line left out through `line`), a per-request
 * tail and a policy field: walked in order, values trimmed. */
static void
fields_are_walked_in_order_across_blocks(void **state)
{
    static const char stored[] = "200 OK\r\nContent-Type: text/html\r\nETag:   \"x\"  \r\n";
    static const char tail[] = "Age: 3\r\nVia: 1.1 accel\r\n";
    struct xp_head h = { .status = 200, .reason = AC_LIT("OK") };
    struct xp_field_iter it;
    struct ac_slice n, v;

    (void)state;
    h.line = AC_SLICE(stored, 8);
    h.blk[0] = AC_SLICE(stored + 8, sizeof(stored) - 1 - 8);
    h.blk[1] = AC_SLICE(NULL, 0);                /* empty blocks are skipped */
    h.blk[2] = AC_LIT(tail);
    h.blk[3] = AC_LIT("X-Empty:\r\n");
    h.nblk = 4;
    xp_fields_init(&it, &h);
    const char *want[][2] = { { "Content-Type", "text/html" }, { "ETag", "\"x\"" },
                              { "Age", "3" }, { "Via", "1.1 accel" }, { "X-Empty", "" } };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_true(xp_fields_next(&it, &n, &v));
        assert_slice(n, want[i][0]);
        assert_slice(v, want[i][1]);
    }
    assert_false(xp_fields_next(&it, &n, &v));
    assert_false(xp_fields_next(&it, &n, &v));  /* stays at the end */
}

/* A last line without CRLF still counts; lines without a name are not
 * fields; a head without blocks has no fields. */
static void
odd_lines_are_skipped_not_trusted(void **state)
{
    struct xp_head h = { .status = 204, .reason = AC_LIT("No Content") };
    struct xp_field_iter it;
    struct ac_slice n, v;

    (void)state;
    xp_fields_init(&it, &h);
    assert_false(xp_fields_next(&it, &n, &v));
    h.blk[0] = AC_LIT("no colon here\r\n: no name\r\nA: 1\r\nB:2");
    h.nblk = 1;
    xp_fields_init(&it, &h);
    assert_true(xp_fields_next(&it, &n, &v));
    assert_slice(n, "A");
    assert_slice(v, "1");
    assert_true(xp_fields_next(&it, &n, &v));
    assert_slice(n, "B");
    assert_slice(v, "2");
    assert_false(xp_fields_next(&it, &n, &v));
}

/* The copy an internal request keeps holds the peer and the local address
 * of the connection it came from after that connection is gone. */
static void
meta_copy_outlives_the_connection(void **state)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(4711) };
    struct sockaddr_in b = { .sin_family = AF_INET };
    socklen_t bl = sizeof(b);
    struct sockaddr_storage ss;
    struct req_meta m, copy;
    struct conn c;
    int fd;

    (void)state;
    a.sin_addr.s_addr = htonl(0x7f000002);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&b, &bl), 0);
    conn_init(&c, fd, &conn_plain_ops);
    req_meta_init(&m, (struct sockaddr *)&a, sizeof(a), &c, false);
    assert_string_equal(m.client_ip, "127.0.0.2");
    assert_int_equal(req_meta_local(&m, &ss), 0);
    req_meta_copy(&copy, &m);
    conn_close(&c);
    assert_null(copy.conn);
    assert_string_equal(copy.client_ip, "127.0.0.2");
    assert_int_equal(((struct sockaddr_in *)&copy.peer)->sin_port, htons(4711));
    assert_int_equal(req_meta_local(&copy, &ss), 0);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, b.sin_port);
    assert_string_equal(req_meta_tls_version(&copy), "");
    assert_string_equal(req_meta_tls_sni(&copy), "");

    /* no connection at all: "-" for the log and X-Forwarded-For */
    req_meta_init(&m, NULL, 0, NULL, false);
    assert_string_equal(m.client_ip, "-");
    assert_int_equal(req_meta_local(&m, &ss), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_are_walked_in_order_across_blocks),
        cmocka_unit_test(odd_lines_are_skipped_not_trusted),
        cmocka_unit_test(meta_copy_outlives_the_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
