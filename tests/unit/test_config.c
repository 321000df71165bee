/*
 * test_config.c -- the command line: TLS listeners and certificates (-a
 * ADDR:PORT,tls, -c, -u, the tls_* parameters), https:// origins (-b),
 * listen addresses that must name a port, messages that name the flag, -e,
 * -P, boolean parameters, and option interplay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "config.h"
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARGV(...) ((char *[]){ "accel", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "accel", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, err, ...) \
    config_parse((cfg), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (err), sizeof(err))

static void
tls_listener_needs_a_certificate(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&cfg, err, "-a", "127.0.0.1:8443,tls", "-b", "127.0.0.1:9"), -1);
    assert_non_null(strstr(err, "needs a certificate"));
    config_free(&cfg);
}

static void
tls_listener_and_certificates_are_kept_in_order(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&cfg, err, "-a", "127.0.0.1:8080", "-a", "127.0.0.1:8443,tls", "-c",
                           "a.pem,a.key", "-c", "b.pem", "-u", "nobody", "-p",
                           "tls_handshake_timeout=2s", "-p", "tls_ticket_rotate=10m", "-p",
                           "tls_ciphers=ECDHE-ECDSA-AES128-GCM-SHA256", "-p",
                           "tls_ciphersuites=TLS_AES_128_GCM_SHA256", "-b", "127.0.0.1:9"),
                     0);
    assert_int_equal(cfg.nlisten, 2);
    assert_false(cfg.listen[0].tls);
    assert_true(cfg.listen[1].tls);
    assert_int_equal(cfg.ncerts, 2);
    assert_string_equal(cfg.certs[0], "a.pem,a.key");
    assert_string_equal(cfg.certs[1], "b.pem");
    assert_string_equal(cfg.user, "nobody");
    assert_true(cfg.p.tls_handshake_timeout == 2.0);
    assert_true(cfg.p.tls_ticket_rotate == 600.0);
    assert_string_equal(cfg.tls_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(cfg.tls_ciphersuites, "TLS_AES_128_GCM_SHA256");
    config_free(&cfg);
}

static void
bad_tls_arguments_are_refused(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&cfg, err, "-c", ",key.pem"), -1);
    assert_non_null(strstr(err, "-c"));
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-a", "127.0.0.1:8443,ssl"), -1);
    assert_non_null(strstr(err, "unknown option"));
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-c", "a.pem", "-p", "tls_ticket_rotate=0"), -1);
    assert_non_null(strstr(err, "tls_ticket_rotate"));
    config_free(&cfg);
}

static void
explain_after_admin_secret_keeps_the_secret(void **state)
{
    struct config cfg;
    char err[256] = "", path[512];
    const char *tmp = getenv("TMPDIR");
    int fd;

    (void)state;
    snprintf(path, sizeof(path), "%s/accel-test-config-XXXXXX", tmp != NULL ? tmp : "/tmp");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    /* -x used to free the -S secret and leave the pointer behind */
    assert_int_equal(PARSE(&cfg, err, "-S", path, "-x", "builtin"), 0);
    assert_string_equal(cfg.admin_secret, "s3cret");
    config_free(&cfg);
    unlink(path);
}

static void
https_origins_keep_their_name_and_default_to_443(void **state)
{
    struct config cfg;
    char err[256] = "", a[64];

    (void)state;
    assert_int_equal(PARSE(&cfg, err, "-b", "https://127.0.0.1", "-b", "https://127.0.0.1:8443/",
                           "-b", "https://[::1]:9443", "-b", "http://127.0.0.1:81", "-b",
                           "127.0.0.1:82", "-p", "origin_ca_file=ca.pem"),
                     0);
    assert_int_equal(cfg.nbackend, 5);
    assert_true(cfg.backend[0].tls);
    assert_string_equal(cfg.backend[0].name, "127.0.0.1");
    assert_string_equal(sock_ntop_port((struct sockaddr *)&cfg.backend[0].ss, a, sizeof(a)),
                        "127.0.0.1:443");
    assert_string_equal(cfg.backend[1].name, "127.0.0.1");
    assert_string_equal(sock_ntop_port((struct sockaddr *)&cfg.backend[1].ss, a, sizeof(a)),
                        "127.0.0.1:8443");
    assert_string_equal(cfg.backend[2].name, "::1");    /* no brackets for the check */
    assert_false(cfg.backend[3].tls);
    assert_null(cfg.backend[3].name);
    assert_false(cfg.backend[4].tls);
    assert_string_equal(cfg.origin_ca_file, "ca.pem");
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "https://host/path"), -1);
    assert_non_null(strstr(err, "https://HOST[:PORT]"));
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "https://"), -1);
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "https://[::1"), -1);
    assert_non_null(strstr(err, "]"));
    config_free(&cfg);
}

/* A listen address says its port; a bare number is a port. */
static void
listen_addresses_need_a_port(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    static const char *const bad[] = { "127.0.0.1", "localhost", "[::1]", "[::1]:", "127.0.0.1:" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(PARSE(&cfg, err, "-a", (char *)bad[i], "-b", "127.0.0.1:9"), -1);
        assert_non_null(strstr(err, "no port"));
        assert_non_null(strstr(err, bad[i]));
        config_free(&cfg);
    }
    assert_int_equal(PARSE(&cfg, err, "-T", "127.0.0.1", "-b", "127.0.0.1:9"), -1);
    assert_non_null(strstr(err, "-T 127.0.0.1: no port"));
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-a", "8080", "-a", ":8081", "-a", "[::1]:8082", "-T",
                           "6082", "-b", "127.0.0.1:9"), 0);
    assert_int_equal(cfg.nlisten, 4);
    assert_true(cfg.listen[3].admin);
    config_free(&cfg);
    /* -b keeps its default port: an origin on :80 is the common case */
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1"), 0);
    config_free(&cfg);
}

static void
address_errors_name_the_flag(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:70000"), -1);
    assert_string_equal(err, "-b 127.0.0.1:70000: invalid port '70000' (expected 0-65535)");
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "[::1:80"), -1);
    assert_string_equal(err, "-b [::1:80: missing ']' in IPv6 address");
    config_free(&cfg);
}

static void
bool_parameters_and_log_files(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9"), 0);
    assert_true(cfg.p.uri_strict == 0);             /* liberal targets by default */
    assert_null(cfg.error_log);
    assert_null(cfg.pid_file);
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9", "-p", "uri_strict=on", "-e", "e.log",
                           "-P", "a.pid"), 0);
    assert_true(cfg.p.uri_strict == 1);
    assert_string_equal(cfg.error_log, "e.log");
    assert_string_equal(cfg.pid_file, "a.pid");
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9", "-p", "uri_strict=OFF"), 0);
    assert_true(cfg.p.uri_strict == 0);
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9", "-p", "uri_strict=maybe"), -1);
    assert_string_equal(err, "-p uri_strict: invalid value 'maybe'");
    config_free(&cfg);
}

static void
http2_parameters_are_checked(void **state)
{
    struct config cfg;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9"), 0);
    assert_false(cfg.no_http2);                 /* on by default */
    assert_true(cfg.p.h2_max_concurrent_streams == 100);
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9", "-p", "http2=off", "-p",
                           "h2_max_concurrent_streams=10", "-p", "h2_initial_window=1m", "-p",
                           "h2_max_resets=0"),
                     0);
    assert_true(cfg.no_http2);
    assert_true(cfg.p.h2_max_concurrent_streams == 10);
    assert_true(cfg.p.h2_initial_window == 1048576);
    assert_true(cfg.p.h2_max_resets == 0);
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-p", "http2=maybe"), -1);
    assert_non_null(strstr(err, "http2"));
    config_free(&cfg);
    /* RFC 9113 §6.5.2 ranges */
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9", "-p", "h2_max_frame_size=1k"), -1);
    assert_non_null(strstr(err, "h2_max_frame_size"));
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9", "-p", "h2_initial_window=4g"), -1);
    assert_non_null(strstr(err, "h2_initial_window"));
    config_free(&cfg);
    assert_int_equal(PARSE(&cfg, err, "-b", "127.0.0.1:9", "-p", "h2_max_concurrent_streams=0"),
                     -1);
    config_free(&cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_listener_needs_a_certificate),
        cmocka_unit_test(tls_listener_and_certificates_are_kept_in_order),
        cmocka_unit_test(bad_tls_arguments_are_refused),
        cmocka_unit_test(explain_after_admin_secret_keeps_the_secret),
        cmocka_unit_test(https_origins_keep_their_name_and_default_to_443),
        cmocka_unit_test(http2_parameters_are_checked),
        cmocka_unit_test(listen_addresses_need_a_port),
        cmocka_unit_test(address_errors_name_the_flag),
        cmocka_unit_test(bool_parameters_and_log_files),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
