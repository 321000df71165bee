/*
 * fuzz_tls_hello.c -- libFuzzer target for accel's TLS server side: the
 * input is what a client sends first (a ClientHello, or anything), written
 * into a socketpair whose other end is a server connection made by
 * tls_server_attach() with two certificates loaded by tls_server_init() --
 * so OpenSSL's record and handshake parsers run together with accel's SNI
 * (servername), ALPN and session-ticket (a ticket in the hello is opened
 * with the shared key ring) callbacks.  Also fuzzes tls_name_match() with
 * the input split at its first NUL.
 *
 * Invariants beyond "does not crash": tls_handshake() returns only 0,
 * AC_AGAIN or AC_EPROTO; a failure has a reason; reads after a handshake
 * return bytes, 0, AC_AGAIN or AC_EIO; a plain name matches itself.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/tls_test_util.h"
#include "tls.h"

#define FUZZ_ASSERT(e) do { if (!(e)) __builtin_trap(); } while (0)

static struct config cfg;
static char *specs[2];
static char paths[4][320];
static char dir[256];

/* The certificates are only needed while loading them: leave no files. */
static void
remove_files(void)
{
    for (int i = 0; i < 4; i++)
        unlink(paths[i]);
    rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    char *a = paths[0], *ak = paths[1], *b = paths[2], *bk = paths[3], err[256];

    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "%s/accel-fuzz-tls-XXXXXX", tmp != NULL ? tmp : "/tmp");
    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(a, sizeof(paths[0]), "%s/a.pem", dir);
    snprintf(ak, sizeof(paths[0]), "%s/a.key", dir);
    snprintf(b, sizeof(paths[0]), "%s/b.pem", dir);
    snprintf(bk, sizeof(paths[0]), "%s/b.key", dir);
    if (!tls_test_make_cert(a, ak, "a.test", "DNS:a.test", false) ||
        !tls_test_make_cert(b, bk, "b.test", "DNS:b.test,DNS:*.w.test", false))
        abort();
    specs[0] = malloc(700);
    specs[1] = malloc(700);
    snprintf(specs[0], 700, "%s,%s", a, ak);
    snprintf(specs[1], 700, "%s,%s", b, bk);
    cfg.magic = CONFIG_MAGIC;
    cfg.certs = specs;
    cfg.ncerts = 2;
    cfg.p.tls_ticket_rotate = 3600;
    if (tls_server_init(&cfg, err, sizeof(err)) != 0)
        abort();
    remove_files();
    return 0;
}

static void
fuzz_names(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    struct ac_slice pat, host;

    if (nul == NULL)
        return;
    pat = AC_SLICE((const char *)data, (size_t)(nul - data));
    host = AC_SLICE((const char *)nul + 1, size - (size_t)(nul - data) - 1);
    (void)tls_name_match(pat, host);
    if (pat.len > 0 && !(pat.len > 2 && pat.p[0] == '*' && pat.p[1] == '.'))
        FUZZ_ASSERT(tls_name_match(pat, pat));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conn c;
    char buf[4096];
    int sv[2], r = AC_AGAIN;

    fuzz_names(data, size);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    conn_init(&c, sv[0], &conn_plain_ops);
    if (tls_server_attach(&c) != 0)
        abort();
    if (size > 0 && write(sv[1], data, size) != (ssize_t)size) {
        conn_close(&c);
        close(sv[1]);
        return 0;
    }
    shutdown(sv[1], SHUT_WR);                   /* then EOF: nothing more comes */
    for (int i = 0; i < 8 && r == AC_AGAIN; i++) {
        r = tls_handshake(&c);
        FUZZ_ASSERT(r == 0 || r == AC_AGAIN || r == AC_EPROTO);
        /* drain what the server wrote so it never blocks */
        while (read(sv[1], buf, sizeof(buf)) > 0)
            ;
    }
    if (r == AC_EPROTO)
        FUZZ_ASSERT(tls_conn_error(&c)[0] != '\0');
    if (r == 0) {
        ssize_t n = conn_read(&c, buf, sizeof(buf));
        FUZZ_ASSERT(n >= 0 || n == AC_AGAIN || n == AC_EIO);
    }
    conn_close(&c);
    close(sv[1]);
    return 0;
}
