/*
 * test_tls.c -- the TLS transport, both directions, over socketpairs:
 * accel's server side (SNI, wildcard, tickets, rotation, reload, plain HTTP
 * detection) against accel's client API (verification, hostname check,
 * session cache), plus the name matcher.  Certificates are made in memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tls.h"
#include "tls_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[256];
    char a_crt[320], a_key[320], b_crt[320], b_key[320], ca[320];
    char *specs[2];
    struct config cfg;
    SSL_CTX *cctx;
};

static void
cat_file(FILE *out, const char *path)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(f);
}

/* Certificates are made once (RSA key generation is slow under valgrind). */
static struct fixture *files;

static int
group_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    FILE *f;

    (void)state;
    const char *tmp = getenv("TMPDIR");

    snprintf(fx->dir, sizeof(fx->dir), "%s/accel-test-tls-XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->a_crt, sizeof(fx->a_crt), "%s/a.pem", fx->dir);
    snprintf(fx->a_key, sizeof(fx->a_key), "%s/a.key", fx->dir);
    snprintf(fx->b_crt, sizeof(fx->b_crt), "%s/b.pem", fx->dir);
    snprintf(fx->b_key, sizeof(fx->b_key), "%s/b.key", fx->dir);
    snprintf(fx->ca, sizeof(fx->ca), "%s/ca.pem", fx->dir);
    assert_true(tls_test_make_cert(fx->a_crt, fx->a_key, "a.test", "DNS:a.test", false));
    /* ECDSA both: RSA key generation costs ~30 s under valgrind (RSA
     * certificates are covered by the integration tests) */
    assert_true(tls_test_make_cert(fx->b_crt, fx->b_key, "b.test", "DNS:b.test,DNS:*.w.test",
                                   false));
    f = fopen(fx->ca, "w");
    assert_non_null(f);
    cat_file(f, fx->a_crt);                 /* self-signed: each is its own CA */
    cat_file(f, fx->b_crt);
    fclose(f);
    for (int i = 0; i < 2; i++) {
        fx->specs[i] = malloc(700);
        snprintf(fx->specs[i], 700, "%s,%s", i ? fx->b_crt : fx->a_crt, i ? fx->b_key : fx->a_key);
    }
    fx->cfg.magic = CONFIG_MAGIC;
    fx->cfg.certs = fx->specs;
    fx->cfg.ncerts = 2;
    fx->cfg.p.tls_ticket_rotate = 3600;
    files = fx;
    return 0;
}

static int
group_teardown(void **state)
{
    struct fixture *fx = files;
    const char *names[] = { fx->a_crt, fx->a_key, fx->b_crt, fx->b_key, fx->ca };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(names[i]);
    rmdir(fx->dir);
    free(fx->specs[0]);
    free(fx->specs[1]);
    free(fx);
    files = NULL;
    return 0;
}

static int
setup(void **state)
{
    struct fixture *fx = files;
    char err[256] = "";

    assert_int_equal(tls_server_init(&fx->cfg, err, sizeof(err)), 0);
    fx->cctx = tls_client_ctx(fx->ca, true, err, sizeof(err));
    assert_non_null(fx->cctx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;

    tls_client_ctx_free(&fx->cctx);
    tls_server_fini();
    return 0;
}

struct pair {
    struct conn cli, srv;
};

/* A connected socketpair: srv a TLS server connection, cli a TLS client
 * connection to host (NULL: no SNI). */
static void
pair_open(struct fixture *fx, struct pair *p, const char *host)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    conn_init(&p->srv, sv[0], &conn_plain_ops);
    conn_init(&p->cli, sv[1], &conn_plain_ops);
    assert_int_equal(tls_server_attach(&p->srv), 0);
    assert_int_equal(tls_client_attach(&p->cli, fx->cctx, host), 0);
    assert_true(conn_is_tls(&p->srv) && conn_is_tls(&p->cli));
}

static void
pair_close(struct pair *p)
{
    conn_close(&p->cli);
    conn_close(&p->srv);
}

/* Drive both handshakes until both are done (0) or one failed (-1). */
static int
handshake(struct pair *p)
{
    int rc = AC_AGAIN, rs = AC_AGAIN;

    for (int i = 0; i < 200 && (rc != 0 || rs != 0); i++) {
        if (rc == AC_AGAIN)
            rc = tls_handshake(&p->cli);
        if (rs == AC_AGAIN)
            rs = tls_handshake(&p->srv);
        if (rc == AC_EPROTO || rs == AC_EPROTO)
            return -1;
    }
    return rc == 0 && rs == 0 ? 0 : -1;
}

/* Move len bytes from one side to the other through writev/read. */
static void
transfer(struct conn *from, struct conn *to, const struct iovec *iov0, int n, size_t total,
         char *out)
{
    struct iovec iov[64];
    size_t got = 0, sent = 0;

    assert_true(n <= 64);
    memcpy(iov, iov0, sizeof(*iov) * (size_t)n);
    for (int guard = 0; guard < 10000 && got < total; guard++) {
        if (n > 0) {
            ssize_t w = conn_writev(from, iov, n);
            if (w > 0) {
                size_t left = (size_t)w;
                int i = 0;
                sent += (size_t)w;
                while (i < n && left >= iov[i].iov_len)
                    left -= iov[i++].iov_len;
                if (i < n) {
                    iov[i].iov_base = (char *)iov[i].iov_base + left;
                    iov[i].iov_len -= left;
                }
                memmove(iov, iov + i, sizeof(*iov) * (size_t)(n - i));
                n -= i;
            } else {
                assert_int_equal(w, AC_AGAIN);
            }
        }
        ssize_t r = conn_read(to, out + got, total - got);
        if (r > 0)
            got += (size_t)r;
        else
            assert_int_equal(r, AC_AGAIN);
    }
    assert_int_equal(got, total);
    assert_int_equal(sent, total);
}

static void
ping(struct pair *p)
{
    char buf[8];
    struct iovec a = { "ping", 4 }, b = { "pong", 4 };

    transfer(&p->cli, &p->srv, &a, 1, 4, buf);
    assert_memory_equal(buf, "ping", 4);
    transfer(&p->srv, &p->cli, &b, 1, 4, buf);     /* the client also takes its ticket */
    assert_memory_equal(buf, "pong", 4);
}

static void
name_match_exact_and_one_label_wildcards(void **state)
{
    (void)state;
    assert_true(tls_name_match(AC_LIT("a.test"), AC_LIT("A.Test")));
    assert_false(tls_name_match(AC_LIT("a.test"), AC_LIT("b.test")));
    assert_true(tls_name_match(AC_LIT("*.w.test"), AC_LIT("x.w.test")));
    assert_false(tls_name_match(AC_LIT("*.w.test"), AC_LIT("w.test")));
    assert_false(tls_name_match(AC_LIT("*.w.test"), AC_LIT("a.b.w.test")));
    assert_false(tls_name_match(AC_LIT("*.w.test"), AC_LIT(".w.test")));
    assert_false(tls_name_match(AC_LIT("*"), AC_LIT("x")));
    assert_false(tls_name_match(AC_LIT(""), AC_LIT("")));
}

static void
handshake_verifies_and_sni_picks_the_certificate(void **state)
{
    struct fixture *fx = *state;
    const char *hosts[] = { "a.test", "b.test", "x.w.test" };
    struct pair p;

    for (int i = 0; i < 3; i++) {
        pair_open(fx, &p, hosts[i]);
        /* a verifying client with a name check: only the right certificate passes */
        assert_int_equal(handshake(&p), 0);
        assert_string_equal(tls_conn_sni(&p.srv), hosts[i]);
        assert_string_equal(tls_conn_version(&p.srv), "TLSv1.3");
        ping(&p);
        pair_close(&p);
    }
}

static void
wrong_host_name_fails_verification(void **state)
{
    struct fixture *fx = *state;
    struct pair p;

    pair_open(fx, &p, "c.test");            /* no certificate has c.test: the default (a) */
    assert_int_equal(handshake(&p), -1);
    assert_non_null(strstr(tls_conn_error(&p.cli), "certificate verify failed"));
    pair_close(&p);
}

static void
writev_gathers_small_iovecs_into_one_record(void **state)
{
    struct fixture *fx = *state;
    static char big[40000], out[45000], want[45000];
    struct iovec iov[51];
    struct pair p;
    size_t total = 0;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    for (int i = 0; i < 50; i++) {
        iov[i].iov_base = (void *)"0123456789012345678901234567890123456789012345678901234567890"
                                  "12345678901234567890123456789012345678";
        iov[i].iov_len = 100;
        memcpy(want + total, iov[i].iov_base, 100);
        total += 100;
    }
    iov[50].iov_base = big;
    iov[50].iov_len = sizeof(big);
    memcpy(want + total, big, sizeof(big));
    total += sizeof(big);
    pair_open(fx, &p, "a.test");
    assert_int_equal(handshake(&p), 0);
    /* the 50 small pieces and the start of the big one: one full record */
    assert_int_equal(conn_writev(&p.cli, iov, 51), 16384);
    ssize_t r = conn_read(&p.srv, out, sizeof(out));
    assert_int_equal(r, 16384);
    assert_memory_equal(out, want, 16384);
    pair_close(&p);

    pair_open(fx, &p, "a.test");
    assert_int_equal(handshake(&p), 0);
    transfer(&p.cli, &p.srv, iov, 51, total, out);   /* everything, in order, with retries */
    assert_memory_equal(out, want, total);
    pair_close(&p);
}

static void
tickets_resume_until_rotated_out(void **state)
{
    struct fixture *fx = *state;
    struct timespec ts;
    struct pair p;
    double now;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (double)ts.tv_sec;
    pair_open(fx, &p, "a.test");
    assert_int_equal(handshake(&p), 0);
    assert_false(tls_conn_resumed(&p.srv));
    ping(&p);                               /* the client caches the ticket */
    pair_close(&p);

    tls_tickets_rotate(now + 10, 3600);     /* too early: nothing changes */
    tls_tickets_rotate(now + 4000, 3600);   /* the ticket's key is now the previous one */
    pair_open(fx, &p, "a.test");
    assert_int_equal(handshake(&p), 0);
    assert_true(tls_conn_resumed(&p.srv));
    assert_true(tls_conn_resumed(&p.cli));
    ping(&p);
    pair_close(&p);

    tls_tickets_rotate(now + 8000, 3600);
    tls_tickets_rotate(now + 12000, 3600);  /* two rotations later: a full handshake */
    pair_open(fx, &p, "a.test");
    assert_int_equal(handshake(&p), 0);
    assert_false(tls_conn_resumed(&p.srv));
    pair_close(&p);
}

static void
plain_http_on_the_tls_side_is_recognised(void **state)
{
    struct fixture *fx = *state;
    struct conn srv;
    int sv[2];

    (void)fx;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    conn_init(&srv, sv[0], &conn_plain_ops);
    assert_int_equal(tls_server_attach(&srv), 0);
    assert_int_equal(write(sv[1], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27), 27);
    assert_int_equal(tls_handshake(&srv), AC_EPROTO);
    assert_true(tls_conn_plain_http(&srv));
    conn_close(&srv);
    close(sv[1]);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    conn_init(&srv, sv[0], &conn_plain_ops);
    assert_int_equal(tls_server_attach(&srv), 0);
    assert_int_equal(write(sv[1], "\x16\x03\x01\x00\x05hello", 10), 10);
    assert_int_equal(tls_handshake(&srv), AC_EPROTO);
    assert_false(tls_conn_plain_http(&srv));
    conn_close(&srv);
    close(sv[1]);
}

static void
reload_with_a_bad_key_keeps_the_running_certificates(void **state)
{
    struct fixture *fx = *state;
    char err[512] = "", saved[4096];
    struct pair p, old;
    FILE *f;
    size_t n;

    pair_open(fx, &old, "b.test");          /* open before the reload, used after */
    assert_int_equal(handshake(&old), 0);
    f = fopen(fx->b_key, "r");
    n = fread(saved, 1, sizeof(saved), f);
    fclose(f);
    f = fopen(fx->b_key, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(tls_server_reload(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "private key"));
    assert_non_null(strstr(err, fx->b_key));
    pair_open(fx, &p, "b.test");            /* still served from the running set */
    assert_int_equal(handshake(&p), 0);
    pair_close(&p);

    f = fopen(fx->b_key, "w");
    assert_int_equal(fwrite(saved, 1, n, f), n);
    fclose(f);
    assert_int_equal(tls_server_reload(err, sizeof(err)), 0);
    pair_open(fx, &p, "b.test");
    assert_int_equal(handshake(&p), 0);
    pair_close(&p);
    ping(&old);                             /* the old set lives on for its connection */
    pair_close(&old);
}

static void
client_without_verification_accepts_any_certificate(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    SSL_CTX *ctx = tls_client_ctx(NULL, false, err, sizeof(err));
    SSL_CTX *keep = fx->cctx;
    struct pair p;

    assert_non_null(ctx);
    fx->cctx = ctx;
    pair_open(fx, &p, "127.0.0.1");         /* an address: no SNI sent */
    assert_int_equal(handshake(&p), 0);
    assert_string_equal(tls_conn_sni(&p.srv), "");
    ping(&p);
    pair_close(&p);
    fx->cctx = keep;
    tls_client_ctx_free(&ctx);
    assert_null(ctx);
}

/* Read on the client until something other than AC_AGAIN. */
static ssize_t
read_end(struct conn *c)
{
    char buf[64];
    ssize_t r = AC_AGAIN;

    for (int i = 0; i < 100 && r == AC_AGAIN; i++)
        r = conn_read(c, buf, sizeof(buf));
    return r;
}

/* An origin's close with close_notify is the end of the stream (0); a TCP
 * close without it is an error, so a close-delimited body cut short is
 * never taken for whole (RFC 9112 §9.8). */
static void
client_tells_a_clean_close_from_a_cut_one(void **state)
{
    struct fixture *fx = *state;
    struct pair p;

    pair_open(fx, &p, "a.test");
    assert_int_equal(handshake(&p), 0);
    ping(&p);
    assert_int_equal(conn_shutdown(&p.srv), 0);     /* close_notify, then FIN */
    assert_int_equal(read_end(&p.cli), 0);
    pair_close(&p);

    pair_open(fx, &p, "a.test");
    assert_int_equal(handshake(&p), 0);
    ping(&p);
    assert_int_equal(shutdown(p.srv.fd, SHUT_WR), 0);   /* FIN only */
    ssize_t r = read_end(&p.cli);
    assert_true(r < 0 && r != AC_AGAIN);
    pair_close(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(name_match_exact_and_one_label_wildcards),
        cmocka_unit_test_setup_teardown(handshake_verifies_and_sni_picks_the_certificate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(wrong_host_name_fails_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(writev_gathers_small_iovecs_into_one_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(tickets_resume_until_rotated_out, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_http_on_the_tls_side_is_recognised, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reload_with_a_bad_key_keeps_the_running_certificates,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(client_without_verification_accepts_any_certificate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(client_tells_a_clean_close_from_a_cut_one, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);               /* as in accel: OpenSSL writes with write(2) */
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
