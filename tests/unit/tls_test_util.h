/*
 * tls_test_util.h -- self-signed test certificates made in memory with
 * OpenSSL and written as PEM files (for test_tls.c and fuzz_tls_hello.c).
 */
#ifndef TLS_TEST_UTIL_H
#define TLS_TEST_UTIL_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * Write a self-signed certificate for the DNS names in san ("DNS:a.test,
 * DNS:*.w.test") to cert_path and its key to key_path.  rsa: RSA 2048,
 * else ECDSA P-256.  Returns true on success.
 */
static inline bool
tls_test_make_cert(const char *cert_path, const char *key_path, const char *cn, const char *san,
                   bool rsa)
{
    EVP_PKEY *pk = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *nm;
    X509_EXTENSION *ext;
    X509V3_CTX v3;
    FILE *f;
    bool ok = false;

    if (pk == NULL || x == NULL)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, nm);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (ext == NULL)
        goto out;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (X509_sign(x, pk, EVP_sha256()) == 0)
        goto out;
    if ((f = fopen(cert_path, "w")) == NULL)
        goto out;
    ok = PEM_write_X509(f, x) == 1;
    fclose(f);
    if ((f = fopen(key_path, "w")) == NULL) {
        ok = false;
        goto out;
    }
    ok = ok && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
    fclose(f);
out:
    X509_free(x);
    EVP_PKEY_free(pk);
    return ok;
}

#endif /* TLS_TEST_UTIL_H */
