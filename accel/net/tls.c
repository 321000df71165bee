/*
 * tls.c -- TLS over OpenSSL: the conn_tls_ops transport, the server's
 * certificate set (SNI, reload), the shared session-ticket key ring, and a
 * client context for origins.
 *
 * Threads: the certificate set and the ticket keys are process-wide and
 * shared by every worker (see docs/architecture.md, globals): the set is an
 * immutable, reference-counted object swapped under tls_mtx by a reload;
 * each connection holds a reference on the set it started with, so a reload
 * never pulls the certificate from under a handshake.  The ticket keys are
 * copied out under tls_mtx by the ticket callback.  Everything else belongs
 * to one connection and therefore to one worker.
 */
#include "tls.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/* TLS 1.2: forward secrecy (ECDHE) and AEAD only; no RSA key exchange, no
 * CBC (Mozilla "intermediate" without DHE).  TLS 1.3 keeps OpenSSL's suites. */
#define TLS_DEFAULT_CIPHERS                                                                      \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                 \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256"
/* One TLS record's worth of plaintext: small iovecs are gathered up to this
 * so a response head and the start of its body share one record (nginx's
 * ssl_buffer_size does the same). */
#define TLS_RECORD 16384

struct tls_cert {
    SSL_CTX *ctx;
    char **names;                   /* lower case DNS names (SAN, else CN) */
    unsigned nnames;
    char *file;                     /* for messages */
    unsigned keytypes;              /* 1 RSA, 2 ECDSA, 4 other: certificates in ctx */
    unsigned merged_into;           /* j + 1: loaded into certs[j].ctx (ctx NULL) */
};

/* Immutable after build; freed when the last reference goes (the global
 * pointer holds one, each server connection one). */
struct tls_certset {
    unsigned magic;
#define TLS_CERTSET_MAGIC 0x1f6b93d4
    atomic_uint refs;
    struct tls_cert *certs;         /* certs[0]: the default (first -c) */
    unsigned ncerts;
};

struct tls_conn {
    unsigned magic;
#define TLS_CONN_MAGIC 0x8c27e05a
    SSL *ssl;
    struct tls_certset *set;        /* server side: a reference */
    bool failed;                    /* fatal error: no close_notify */
    bool shut_sent;
    bool plain_http;
    const char *why;
    char whybuf[160];
    char host[256];                 /* client side: the origin's name */
};

struct tls_tkey {
    unsigned char name[16], aes[32], hmac[32];
    bool valid;
};

static pthread_mutex_t tls_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct tls_certset *tls_cur;         /* under tls_mtx */
static const struct config *tls_cfg;        /* read-only after tls_server_init */
static struct tls_tkey tls_keys[2];         /* [0] encrypts, [1] still decrypts; tls_mtx */
static double tls_keys_born;                /* tls_mtx */

static __thread unsigned char tls_wstage[TLS_RECORD];  /* per thread: writev coalescing */

static double
wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The error OpenSSL queued, as text; clears the queue (it is per thread and
 * must be empty before the next call, or SSL_get_error misreports). */
static const char *
ssl_errstr(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char tmp[120];

    if (e == 0) {
        snprintf(buf, len, "%s", what);
    } else {
        ERR_error_string_n(e, tmp, sizeof(tmp));
        snprintf(buf, len, "%s: %s", what, tmp);
    }
    ERR_clear_error();
    return buf;
}

bool
tls_name_match(struct ac_slice pat, struct ac_slice host)
{
    if (pat.len == 0 || host.len == 0)
        return false;
    if (pat.len > 2 && pat.p[0] == '*' && pat.p[1] == '.') {
        /* "*.example.com" matches "a.example.com", not "example.com" nor
         * "a.b.example.com" (RFC 6125 §6.4.3: the star is one label). */
        const char *dot = memchr(host.p, '.', host.len);
        if (dot == NULL || dot == host.p)
            return false;
        return ac_slice_caseeq(AC_SLICE(pat.p + 1, pat.len - 1),
                               AC_SLICE(dot, host.len - (size_t)(dot - host.p)));
    }
    return ac_slice_caseeq(pat, host);
}

/* ---------------------------------------------------------------- tickets */

static void
tkey_make(struct tls_tkey *k)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        AC_UNREACHABLE("RAND_bytes failed: no entropy for ticket keys");
    k->valid = true;
}

void
tls_tickets_rotate(double now, double every)
{
    AC_ZERO(pthread_mutex_lock(&tls_mtx));
    if (tls_keys[0].valid && now - tls_keys_born >= every) {
        tls_keys[1] = tls_keys[0];
        tkey_make(&tls_keys[0]);
        tls_keys_born = now;
    }
    AC_ZERO(pthread_mutex_unlock(&tls_mtx));
}

static int
mac_init(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"sha256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/*
 * Session tickets (TLS 1.2 tickets and TLS 1.3 stateless PSKs) are sealed
 * with the process-wide key ring, so any worker opens what another made.
 * Returns 1 (ok), 2 (ok, issue a fresh ticket: sealed with the previous
 * key, or TLS 1.3), 0 (unknown key: full handshake), -1 (error).
 */
static int
on_ticket_key(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
              EVP_MAC_CTX *hctx, int enc)
{
    struct tls_tkey k;
    int which = -1;

    AC_ZERO(pthread_mutex_lock(&tls_mtx));
    if (enc) {
        k = tls_keys[0];
        which = k.valid ? 0 : -1;
    } else {
        for (int i = 0; i < 2; i++) {
            if (tls_keys[i].valid && memcmp(name, tls_keys[i].name, 16) == 0) {
                k = tls_keys[i];
                which = i;
                break;
            }
        }
    }
    AC_ZERO(pthread_mutex_unlock(&tls_mtx));
    if (enc) {
        if (which < 0 || RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(name, k.name, 16);
        if (EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
            mac_init(hctx, k.hmac) != 1)
            return -1;
        return 1;
    }
    if (which < 0)
        return 0;
    if (EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
        mac_init(hctx, k.hmac) != 1)
        return -1;
    /* TLS 1.3 clients use a ticket once (RFC 8446 §C.4): without a fresh
     * one after each resumption, every other connection would pay a full
     * handshake (nginx renews for TLS 1.3 too). */
    return which == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
}

/* ---------------------------------------------------------------- server contexts */

static void
certset_release(struct tls_certset **setp)
{
    struct tls_certset *set = *setp;

    *setp = NULL;
    if (set == NULL)
        return;
    AC_CHECK_OBJ(set, TLS_CERTSET_MAGIC);
    if (atomic_fetch_sub(&set->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < set->ncerts; i++) {
        struct tls_cert *c = &set->certs[i];
        SSL_CTX_free(c->ctx);
        for (unsigned j = 0; j < c->nnames; j++)
            free(c->names[j]);
        free(c->names);
        free(c->file);
    }
    free(set->certs);
    set->magic = 0;
    free(set);
}

static struct tls_certset *
certset_get(void)
{
    struct tls_certset *set;

    AC_ZERO(pthread_mutex_lock(&tls_mtx));
    set = tls_cur;
    if (set != NULL)
        atomic_fetch_add(&set->refs, 1);
    AC_ZERO(pthread_mutex_unlock(&tls_mtx));
    return set;
}

/* The certificate for an SNI name: exact names first, then wildcards. */
static struct tls_cert *
certset_find(struct tls_certset *set, struct ac_slice host)
{
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < set->ncerts; i++) {
            struct tls_cert *c = &set->certs[i];
            for (unsigned j = 0; c->ctx != NULL && j < c->nnames; j++) {
                struct ac_slice n = AC_SLICE(c->names[j], strlen(c->names[j]));
                bool wild = n.len > 1 && n.p[0] == '*';
                if (wild == (pass == 1) && tls_name_match(n, host))
                    return c;
            }
        }
    }
    return NULL;
}

static int
on_servername(SSL *ssl, int *al, void *arg)
{
    struct tls_certset *set = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    struct tls_cert *c;

    (void)al;
    if (name == NULL || set == NULL)
        return SSL_TLSEXT_ERR_NOACK;        /* no SNI: the default certificate */
    c = certset_find(set, AC_SLICE(name, strlen(name)));
    if (c != NULL && c->ctx != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, c->ctx);
    return SSL_TLSEXT_ERR_OK;               /* unknown name: the default certificate */
}

/* ALPN: h2 first, then http/1.1 (arg NULL with -p http2=off: http/1.1
 * only); a client that offers none of ours gets a no_application_protocol
 * alert (as nginx).  SSL_select_next_proto() takes our order, so a client
 * offering both gets h2 (RFC 7301 §3.2: the server's preference). */
static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
        unsigned inlen, void *arg)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    const unsigned char *ours = arg != NULL ? both : both + 3;
    unsigned ourlen = arg != NULL ? sizeof(both) - 1 : sizeof(both) - 4;
    unsigned char *sel;

    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, ours, ourlen, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void
cert_add_name(struct tls_cert *c, const unsigned char *p, int len)
{
    char *n;

    if (len <= 0 || len > 253 || memchr(p, '\0', (size_t)len) != NULL)
        return;
    n = ac_xstrndup((const char *)p, (size_t)len);
    for (char *q = n; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q + 32);
    c->names = ac_xrealloc(c->names, sizeof(*c->names) * (c->nnames + 1));
    c->names[c->nnames++] = n;
}

/* The DNS names a certificate is for: its subjectAltName DNS entries, or
 * its subject CN when it has none (RFC 6125 §6.4.4). */
static void
cert_names(struct tls_cert *c, X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

    if (gens != NULL) {
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            if (g->type == GEN_DNS)
                cert_add_name(c, ASN1_STRING_get0_data(g->d.dNSName),
                              ASN1_STRING_length(g->d.dNSName));
        }
        GENERAL_NAMES_free(gens);
    }
    if (c->nnames == 0) {
        X509_NAME *sn = X509_get_subject_name(x);
        int i = X509_NAME_get_index_by_NID(sn, NID_commonName, -1);
        if (i >= 0) {
            ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sn, i));
            cert_add_name(c, ASN1_STRING_get0_data(d), ASN1_STRING_length(d));
        }
    }
}

/* A server context with accel's protocol settings (no certificate yet). */
static SSL_CTX *
server_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *ciphers = cfg->tls_ciphers ? cfg->tls_ciphers : TLS_DEFAULT_CIPHERS;

    if (ctx == NULL) {
        ssl_errstr(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes and a moving buffer: writev may hand a different (but
     * identical) staging buffer on a retry; RELEASE_BUFFERS keeps idle
     * keep-alive connections small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Read what the socket has in one read(2), not a 5-byte record header
     * and then its body; bytes read ahead are seen by tls_conn_pending(). */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        ssl_errstr(err, errlen, "-p tls_ciphers: no usable cipher");
        goto fail;
    }
    if (cfg->tls_ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
        ssl_errstr(err, errlen, "-p tls_ciphersuites: no usable suite");
        goto fail;
    }
    if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        ssl_errstr(err, errlen, "groups " TLS_GROUPS);
        goto fail;
    }
    /* Stateless resumption only: tickets sealed with the shared key ring
     * work on every worker; no per-process session cache to lock. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"accel", 5);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_timeout(ctx, (long)AC_MAX(60.0, 2 * cfg->p.tls_ticket_rotate));
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, cfg->no_http2 ? NULL : (void *)ctx);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Split "cert.pem,key.pem" (the key may be in the certificate file). */
static void
cert_spec(const char *spec, char *cert, size_t clen, char *key, size_t klen)
{
    const char *comma = strchr(spec, ',');

    if (comma == NULL) {
        snprintf(cert, clen, "%s", spec);
        snprintf(key, klen, "%s", spec);
    } else {
        snprintf(cert, clen, "%.*s", (int)(comma - spec), spec);
        snprintf(key, klen, "%s", comma + 1);
    }
}

/* Load a chain file and its key into ctx (a second call with another key
 * type adds a second certificate: OpenSSL keeps one per type).  0 or -1. */
static int
ctx_load(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    char what[2 * PATH_MAX + 64];

    /* The chain file: leaf first, then intermediates, all sent. */
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(what, sizeof(what), "certificate %s", cert);
        ssl_errstr(err, errlen, what);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof(what), "private key %s", key);
        ssl_errstr(err, errlen, what);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "private key %s does not match %s", key, cert);
        ssl_errstr(err, errlen, what);
        return -1;
    }
    return 0;
}

static unsigned
key_type_bit(X509 *x)
{
    int id = EVP_PKEY_get_base_id(X509_get0_pubkey(x));

    return id == EVP_PKEY_RSA ? 1u : id == EVP_PKEY_EC ? 2u : 4u;
}

static bool
same_names(const struct tls_cert *a, const struct tls_cert *b)
{
    if (a->nnames != b->nnames || a->nnames == 0)
        return false;
    for (unsigned i = 0; i < a->nnames; i++) {
        bool found = false;
        for (unsigned j = 0; j < b->nnames && !found; j++)
            found = strcmp(a->names[i], b->names[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/*
 * Read every -c into a new set; NULL with err when any file is bad.  A
 * certificate for exactly the names of an earlier one, with another key
 * type (RSA beside ECDSA), joins the earlier one's context, so OpenSSL
 * picks per client: ECDSA for those that take it, RSA for the others.
 */
static struct tls_certset *
certset_build(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_certset *set = ac_xcalloc(1, sizeof(*set));
    char cert[PATH_MAX], key[PATH_MAX];

    set->magic = TLS_CERTSET_MAGIC;
    atomic_init(&set->refs, 1);
    set->certs = ac_xcalloc(cfg->ncerts, sizeof(*set->certs));
    for (unsigned i = 0; i < cfg->ncerts; i++) {
        struct tls_cert *c = &set->certs[i];
        char ferr[128];
        cert_spec(cfg->certs[i], cert, sizeof(cert), key, sizeof(key));
        c->file = ac_xstrdup(cert);
        set->ncerts++;
        /* A missing or unreadable file in the words of the system, not as
         * OpenSSL's "error:0A080002:SSL routines::system lib". */
        if (ac_file_readable(cert, ferr, sizeof(ferr)) != 0) {
            snprintf(err, errlen, "-c %s: certificate %s: %s", cfg->certs[i], cert, ferr);
            goto fail;
        }
        if (strcmp(key, cert) != 0 && ac_file_readable(key, ferr, sizeof(ferr)) != 0) {
            snprintf(err, errlen, "-c %s: private key %s: %s", cfg->certs[i], key, ferr);
            goto fail;
        }
        c->ctx = server_ctx_new(cfg, err, errlen);
        if (c->ctx == NULL || ctx_load(c->ctx, cert, key, err, errlen) != 0)
            goto fail;
        cert_names(c, SSL_CTX_get0_certificate(c->ctx));
        c->keytypes = key_type_bit(SSL_CTX_get0_certificate(c->ctx));
        for (unsigned j = 0; j < i; j++) {
            struct tls_cert *e = &set->certs[j];
            if (e->ctx == NULL || (e->keytypes & c->keytypes) || c->keytypes == 4u ||
                !same_names(c, e))
                continue;
            if (ctx_load(e->ctx, cert, key, err, errlen) != 0)
                goto fail;
            e->keytypes |= c->keytypes;
            c->merged_into = j + 1;
            SSL_CTX_free(c->ctx);
            c->ctx = NULL;              /* names kept for the log; never matched */
            break;
        }
        if (c->ctx != NULL) {
            SSL_CTX_set_tlsext_servername_callback(c->ctx, on_servername);
            SSL_CTX_set_tlsext_servername_arg(c->ctx, set);
        }
    }
    return set;
fail:
    certset_release(&set);
    return NULL;
}

static void
certset_log(const struct tls_certset *set)
{
    for (unsigned i = 0; i < set->ncerts; i++) {
        const struct tls_cert *c = &set->certs[i];
        char names[512] = "";
        size_t off = 0;
        for (unsigned j = 0; j < c->nnames && off < sizeof(names); j++)
            off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", j ? " " : "",
                                    c->names[j]);
        if (c->merged_into)
            LOG_I("tls: certificate %s for %s (%s, beside %s)", c->file, names,
                  c->keytypes == 1u ? "RSA" : "ECDSA", set->certs[c->merged_into - 1].file);
        else
            LOG_I("tls: certificate %s for %s%s", c->file, names[0] ? names : "(no DNS name)",
                  i == 0 ? " (default)" : "");
    }
}

int
tls_server_init(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_certset *set;

    if (cfg->ncerts == 0)
        return 0;
    set = certset_build(cfg, err, errlen);
    if (set == NULL)
        return -1;
    certset_log(set);
    AC_ZERO(pthread_mutex_lock(&tls_mtx));
    tls_cfg = cfg;
    tls_cur = set;
    tkey_make(&tls_keys[0]);
    tls_keys_born = wall_now();
    AC_ZERO(pthread_mutex_unlock(&tls_mtx));
    return 0;
}

int
tls_server_check(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_certset *set;

    if (cfg->ncerts == 0)
        return 0;
    if ((set = certset_build(cfg, err, errlen)) == NULL)
        return -1;
    certset_release(&set);
    return 0;
}

int
tls_server_reload(char *err, size_t errlen)
{
    struct tls_certset *set, *old;

    if (tls_cfg == NULL || tls_cfg->ncerts == 0) {
        snprintf(err, errlen, "no certificates (-c) to reload");
        return -1;
    }
    set = certset_build(tls_cfg, err, errlen);
    if (set == NULL)
        return -1;
    certset_log(set);
    AC_ZERO(pthread_mutex_lock(&tls_mtx));
    old = tls_cur;
    tls_cur = set;
    AC_ZERO(pthread_mutex_unlock(&tls_mtx));
    certset_release(&old);          /* connections still hold their own reference */
    return 0;
}

void
tls_server_fini(void)
{
    struct tls_certset *set;

    AC_ZERO(pthread_mutex_lock(&tls_mtx));
    set = tls_cur;
    tls_cur = NULL;
    tls_cfg = NULL;
    memset(tls_keys, 0, sizeof(tls_keys));
    AC_ZERO(pthread_mutex_unlock(&tls_mtx));
    certset_release(&set);
}

/* ---------------------------------------------------------------- transport */

static struct tls_conn *
tconn(const struct conn *c)
{
    struct tls_conn *t = c->priv;

    AC_CHECK_OBJ(t, TLS_CONN_MAGIC);
    return t;
}

/* Map an SSL_* failure onto the conn contract: AC_AGAIN with c->want, 0 on
 * an orderly close (reads), AC_EIO with c->err and t->why otherwise. */
static ssize_t
ssl_fail(struct conn *c, struct tls_conn *t, int r, bool reading)
{
    int e = SSL_get_error(t->ssl, r);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->want = EV_READ;
        return AC_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->want = EV_WRITE;
        return AC_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        if (reading)
            return 0;
        c->err = EPIPE;
        t->why = "peer closed the TLS session";
        return AC_EIO;
    case SSL_ERROR_SYSCALL:
        c->err = errno != 0 ? errno : ECONNRESET;
        t->failed = true;
        snprintf(t->whybuf, sizeof(t->whybuf), "%s", strerror(c->err));
        t->why = t->whybuf;
        ERR_clear_error();
        return AC_EIO;
    default: {
        unsigned long l = ERR_peek_last_error();
        if (ERR_GET_LIB(l) == ERR_LIB_SSL &&
            (ERR_GET_REASON(l) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(l) == SSL_R_HTTPS_PROXY_REQUEST))
            t->plain_http = true;
        t->failed = true;
        c->err = EPROTO;
        t->why = ssl_errstr(t->whybuf, sizeof(t->whybuf), "TLS");
        return AC_EIO;
    }
    }
}

static ssize_t
tls_read(struct conn *c, void *buf, size_t len)
{
    struct tls_conn *t = tconn(c);
    int r;

    if (len > INT_MAX)
        len = INT_MAX;
    if (len == 0)
        return 0;
    r = SSL_read(t->ssl, buf, (int)len);
    if (r > 0)
        return r;
    return ssl_fail(c, t, r, true);
}

/*
 * Write the first bytes of iov as one record.  Small iovecs are gathered
 * into a per-thread staging buffer (up to one record); a large first iovec
 * is written in place.  After AC_AGAIN the caller presents the same bytes
 * again (nothing was consumed), which is what SSL_write's retry rule needs:
 * the record already sealed sits in OpenSSL's buffer, and the moving-buffer
 * mode lets the staging copy be a different one.
 */
static ssize_t
tls_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    struct tls_conn *t = tconn(c);
    const void *p = NULL;
    size_t n = 0;
    int r;

    while (iovcnt > 0 && iov[0].iov_len == 0) {
        iov++;
        iovcnt--;
    }
    if (iovcnt == 0)
        return 0;
    if (iovcnt == 1 || iov[0].iov_len >= TLS_RECORD) {
        p = iov[0].iov_base;
        n = AC_MIN(iov[0].iov_len, (size_t)INT_MAX);
    } else {
        for (int i = 0; i < iovcnt && n < TLS_RECORD; i++) {
            size_t k = AC_MIN(iov[i].iov_len, TLS_RECORD - n);
            memcpy(tls_wstage + n, iov[i].iov_base, k);
            n += k;
        }
        p = tls_wstage;
    }
    r = SSL_write(t->ssl, p, (int)n);
    if (r > 0)
        return r;
    return ssl_fail(c, t, r, false);
}

/* Send close_notify once (never waits for the peer's). */
static void
send_close_notify(struct tls_conn *t)
{
    if (t->failed || t->shut_sent || !SSL_is_init_finished(t->ssl))
        return;
    t->shut_sent = true;
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

static int
tls_shutdown(struct conn *c)
{
    struct tls_conn *t = tconn(c);

    send_close_notify(t);
    return shutdown(c->fd, SHUT_WR);
}

static void
tls_close(struct conn *c)
{
    struct tls_conn *t = c->priv;

    if (t == NULL)
        return;
    AC_CHECK_OBJ(t, TLS_CONN_MAGIC);
    send_close_notify(t);
    SSL_free(t->ssl);
    certset_release(&t->set);
    t->magic = 0;
    free(t);
    c->priv = NULL;
}

const struct conn_ops conn_tls_ops = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .shutdown = tls_shutdown,
    .close = tls_close,
};

static struct tls_conn *
tconn_new(struct conn *c, SSL_CTX *ctx)
{
    struct tls_conn *t;
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    t = ac_xcalloc(1, sizeof(*t));
    t->magic = TLS_CONN_MAGIC;
    t->ssl = ssl;
    t->why = "";
    SSL_set_app_data(ssl, t);
    c->priv = t;
    c->ops = &conn_tls_ops;
    return t;
}

int
tls_server_attach(struct conn *c)
{
    struct tls_certset *set = certset_get();
    struct tls_conn *t;

    AC_CHECK_OBJ(c, CONN_MAGIC);
    if (set == NULL)
        return AC_ENOMEM;
    t = tconn_new(c, set->certs[0].ctx);
    if (t == NULL) {
        certset_release(&set);
        return AC_ENOMEM;
    }
    t->set = set;
    SSL_set_accept_state(t->ssl);
    return 0;
}

int
tls_handshake(struct conn *c)
{
    struct tls_conn *t = tconn(c);
    int r;

    r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 0;
    if (ssl_fail(c, t, r, false) == AC_AGAIN)
        return AC_AGAIN;
    if (!SSL_is_server(t->ssl) && SSL_get_verify_result(t->ssl) != X509_V_OK) {
        /* Say which check failed (unknown CA, expired, wrong name ...). */
        snprintf(t->whybuf, sizeof(t->whybuf), "certificate verify failed: %s",
                 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
        t->why = t->whybuf;
    }
    if (t->why == NULL || t->why[0] == '\0')
        t->why = "handshake failed";
    return AC_EPROTO;
}

const char *
tls_conn_error(const struct conn *c)
{
    const struct tls_conn *t = c->priv;

    return t != NULL && c->ops == &conn_tls_ops && t->why ? t->why : "";
}

bool
tls_conn_plain_http(const struct conn *c)
{
    return c->ops == &conn_tls_ops && tconn(c)->plain_http;
}

bool
tls_conn_pending(const struct conn *c)
{
    const struct tls_conn *t = tconn(c);

    return SSL_has_pending(t->ssl) || !SSL_is_init_finished(t->ssl);
}

void
tls_conn_abort(struct conn *c)
{
    if (c->ops == &conn_tls_ops)
        tconn(c)->failed = true;    /* send_close_notify() skips it */
}

bool
tls_conn_resumed(const struct conn *c)
{
    return c->ops == &conn_tls_ops && SSL_session_reused(tconn(c)->ssl);
}

const char *
tls_conn_version(const struct conn *c)
{
    return c->ops == &conn_tls_ops ? SSL_get_version(tconn(c)->ssl) : "";
}

const char *
tls_conn_cipher(const struct conn *c)
{
    const char *n = c->ops == &conn_tls_ops ? SSL_get_cipher_name(tconn(c)->ssl) : NULL;

    return n != NULL ? n : "";
}

const char *
tls_conn_sni(const struct conn *c)
{
    const char *n = NULL;

    if (c->ops == &conn_tls_ops)
        n = SSL_get_servername(tconn(c)->ssl, TLSEXT_NAMETYPE_host_name);
    return n != NULL ? n : "";
}

bool
tls_conn_alpn_h2(const struct conn *c)
{
    const unsigned char *p = NULL;
    unsigned len = 0;

    if (c->ops != &conn_tls_ops)
        return false;
    SSL_get0_alpn_selected(tconn(c)->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

/* ---------------------------------------------------------------- client side */

/* Sessions of a client context, one per origin name, so a new connection
 * to the same origin resumes instead of paying a full handshake. */
#define TLS_CLIENT_SESSIONS 32
struct tls_client_cache {
    unsigned magic;
#define TLS_CLIENT_CACHE_MAGIC 0x4ad19b26
    pthread_mutex_t mtx;
    struct {
        char host[256];
        SSL_SESSION *sess;
    } e[TLS_CLIENT_SESSIONS];
    unsigned next;
};

static int tls_cache_idx = -1;
static pthread_once_t tls_cache_once = PTHREAD_ONCE_INIT;

static void
cache_idx_init(void)
{
    tls_cache_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static struct tls_client_cache *
client_cache(SSL_CTX *ctx)
{
    struct tls_client_cache *cc = SSL_CTX_get_ex_data(ctx, tls_cache_idx);

    AC_CHECK_OBJ(cc, TLS_CLIENT_CACHE_MAGIC);
    return cc;
}

/* A new session (TLS 1.3: a ticket after the handshake): remember it for
 * the origin's name.  Returns 1: we keep the reference. */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *t = SSL_get_app_data(ssl);
    struct tls_client_cache *cc = client_cache(SSL_get_SSL_CTX(ssl));
    unsigned slot = TLS_CLIENT_SESSIONS;

    if (t == NULL || t->host[0] == '\0')
        return 0;
    AC_ZERO(pthread_mutex_lock(&cc->mtx));
    for (unsigned i = 0; i < TLS_CLIENT_SESSIONS; i++)
        if (cc->e[i].sess != NULL && strcmp(cc->e[i].host, t->host) == 0)
            slot = i;
    if (slot == TLS_CLIENT_SESSIONS)
        slot = cc->next++ % TLS_CLIENT_SESSIONS;
    if (cc->e[slot].sess != NULL)
        SSL_SESSION_free(cc->e[slot].sess);
    snprintf(cc->e[slot].host, sizeof(cc->e[slot].host), "%s", t->host);
    cc->e[slot].sess = sess;
    AC_ZERO(pthread_mutex_unlock(&cc->mtx));
    return 1;
}

SSL_CTX *
tls_client_ctx(const char *ca_file, bool verify, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    struct tls_client_cache *cc;

    AC_ZERO(pthread_once(&tls_cache_once, cache_idx_init));
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || tls_cache_idx < 0) {
        ssl_errstr(err, errlen, "SSL_CTX_new");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* No SSL_OP_IGNORE_UNEXPECTED_EOF here: a TCP close without
     * close_notify must stay an error, or a close-delimited body cut short
     * (by the network or an attacker) would be taken, and cached, as whole
     * (RFC 9112 §9.8). Bodies with a length or chunks end before the close. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, TLS_DEFAULT_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9) != 0) {
        ssl_errstr(err, errlen, "client TLS settings");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                        : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        char what[PATH_MAX + 32];
        snprintf(what, sizeof(what), "CA file %s", ca_file ? ca_file : "(system store)");
        ssl_errstr(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    cc = ac_xcalloc(1, sizeof(*cc));
    cc->magic = TLS_CLIENT_CACHE_MAGIC;
    AC_ZERO(pthread_mutex_init(&cc->mtx, NULL));
    SSL_CTX_set_ex_data(ctx, tls_cache_idx, cc);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return ctx;
}

void
tls_client_ctx_free(SSL_CTX **ctxp)
{
    SSL_CTX *ctx = *ctxp;
    struct tls_client_cache *cc;

    *ctxp = NULL;
    if (ctx == NULL)
        return;
    cc = client_cache(ctx);
    for (unsigned i = 0; i < TLS_CLIENT_SESSIONS; i++)
        if (cc->e[i].sess != NULL)
            SSL_SESSION_free(cc->e[i].sess);
    pthread_mutex_destroy(&cc->mtx);
    cc->magic = 0;
    free(cc);
    SSL_CTX_set_ex_data(ctx, tls_cache_idx, NULL);
    SSL_CTX_free(ctx);
}

static bool
is_ip_literal(const char *h)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

int
tls_client_attach(struct conn *c, SSL_CTX *ctx, const char *sni_host)
{
    return tls_client_attach_opts(c, ctx, sni_host, true, true);
}

int
tls_client_attach_opts(struct conn *c, SSL_CTX *ctx, const char *sni_host, bool sni,
                       bool verify_host)
{
    struct tls_client_cache *cc = client_cache(ctx);
    struct tls_conn *t;
    bool ip;

    AC_CHECK_OBJ(c, CONN_MAGIC);
    t = tconn_new(c, ctx);
    if (t == NULL)
        return AC_ENOMEM;
    SSL_set_connect_state(t->ssl);
    if (sni_host == NULL || sni_host[0] == '\0')
        return 0;
    snprintf(t->host, sizeof(t->host), "%s", sni_host);
    ip = is_ip_literal(sni_host);
    /* No SNI for an address (RFC 6066 §3); the certificate must then name
     * the address, else the host name. */
    if (!ip && sni)
        (void)SSL_set_tlsext_host_name(t->ssl, sni_host);
    if (verify_host && (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER)) {
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), sni_host)
                    : SSL_set1_host(t->ssl, sni_host);
        if (ok != 1) {
            ERR_clear_error();
            conn_close_transport(c);
            return AC_ENOMEM;
        }
    }
    AC_ZERO(pthread_mutex_lock(&cc->mtx));
    for (unsigned i = 0; i < TLS_CLIENT_SESSIONS; i++) {
        if (cc->e[i].sess != NULL && strcmp(cc->e[i].host, sni_host) == 0) {
            (void)SSL_set_session(t->ssl, cc->e[i].sess);
            break;
        }
    }
    AC_ZERO(pthread_mutex_unlock(&cc->mtx));
    return 0;
}
