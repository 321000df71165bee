/*
 * test_gz.c -- content codings (gz.c): qvalues, Accept-Encoding parsing and
 * the coding choice, compressible media types, the gzip and brotli streams
 * (round trips, corrupt and truncated input); the brotli job (brjob.c)
 * making an object's alternate body; the store's alternate-body contract.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brjob.h"
#include "gz.h"
#include "store.h"
#include "store_test_util.h"

#define S(lit) AC_SLICE((lit), strlen(lit))

static struct gz_accept
parse(const char *const *values)
{
    struct gz_accept_state st;
    struct gz_accept acc;

    gz_accept_begin(&st);
    for (; values != NULL && *values != NULL; values++)
        gz_accept_add(&st, S(*values));
    gz_accept_end(&st, &acc);
    return acc;
}

static struct gz_accept
parse1(const char *v)
{
    const char *vals[] = { v, NULL };

    return parse(v != NULL ? vals : NULL);
}

/* ---- qvalues ---------------------------------------------------------------- */

static void
qvalues_follow_the_rfc_grammar(void **state)
{
    (void)state;
    assert_int_equal(gz_qvalue(S("1")), 1000);
    assert_int_equal(gz_qvalue(S("1.")), 1000);
    assert_int_equal(gz_qvalue(S("1.000")), 1000);
    assert_int_equal(gz_qvalue(S("0")), 0);
    assert_int_equal(gz_qvalue(S("0.5")), 500);
    assert_int_equal(gz_qvalue(S("0.05")), 50);
    assert_int_equal(gz_qvalue(S("0.001")), 1);
    assert_int_equal(gz_qvalue(S(" 0.8 ")), 800);
}

static void
bad_qvalues_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(gz_qvalue(S("")), -1);
    assert_int_equal(gz_qvalue(S("1.5")), -1);
    assert_int_equal(gz_qvalue(S("1.001")), -1);
    assert_int_equal(gz_qvalue(S("2")), -1);
    assert_int_equal(gz_qvalue(S("0.1234")), -1);
    assert_int_equal(gz_qvalue(S("-1")), -1);
    assert_int_equal(gz_qvalue(S("abc")), -1);
    assert_int_equal(gz_qvalue(S("0.x")), -1);
    assert_int_equal(gz_qvalue(S(".5")), -1);
}

/* ---- Accept-Encoding ---------------------------------------------------------- */

static void
no_field_means_identity_only(void **state)
{
    struct gz_accept a = parse1(NULL);

    (void)state;
    assert_int_equal(a.q_br, 0);
    assert_int_equal(a.q_gzip, 0);
    assert_int_equal(a.q_identity, 1000);
    a = parse1("");
    assert_int_equal(a.q_gzip, 0);
    assert_int_equal(a.q_identity, 1000);
}

static void
listed_codings_get_their_qvalues(void **state)
{
    struct gz_accept a = parse1("gzip;q=0.8, br; q=0.9 ,deflate");

    (void)state;
    assert_int_equal(a.q_gzip, 800);
    assert_int_equal(a.q_br, 900);
    assert_int_equal(a.q_identity, 1000);
    a = parse1("x-gzip, BR;Q=0.5");
    assert_int_equal(a.q_gzip, 1000);
    assert_int_equal(a.q_br, 500);
}

static void
star_covers_unlisted_codings_and_identity(void **state)
{
    struct gz_accept a = parse1("*");

    (void)state;
    assert_int_equal(a.q_br, 1000);
    assert_int_equal(a.q_gzip, 1000);
    assert_int_equal(a.q_identity, 1000);
    a = parse1("gzip;q=0, *;q=0.5");
    assert_int_equal(a.q_gzip, 0);
    assert_int_equal(a.q_br, 500);
    a = parse1("*;q=0");
    assert_int_equal(a.q_identity, 0);
    a = parse1("*;q=0, identity");
    assert_int_equal(a.q_identity, 1000);
    assert_int_equal(a.q_gzip, 0);
}

static void
identity_can_be_refused(void **state)
{
    struct gz_accept a = parse1("identity;q=0, gzip");

    (void)state;
    assert_int_equal(a.q_identity, 0);
    assert_int_equal(a.q_gzip, 1000);
}

static void
first_listing_wins_and_field_lines_combine(void **state)
{
    const char *vals[] = { "gzip;q=0.2", "br, gzip", NULL };
    struct gz_accept a = parse(vals);

    (void)state;
    assert_int_equal(a.q_gzip, 200);
    assert_int_equal(a.q_br, 1000);
}

static void
bad_parameters_make_an_element_unacceptable(void **state)
{
    struct gz_accept a = parse1("br;q=2, gzip;q=, identity;level=3");

    (void)state;
    assert_int_equal(a.q_br, 0);
    assert_int_equal(a.q_gzip, 0);
    assert_int_equal(a.q_identity, 1000);   /* not a qvalue: ignored */
    a = parse1(",,; ;q=1, ,gzip");          /* empty elements are skipped */
    assert_int_equal(a.q_gzip, 1000);
}

static void
headers_are_found_by_name(void **state)
{
    struct h1_header h[] = {
        { AC_LIT("Host"), AC_LIT("x") },
        { AC_LIT("accept-encoding"), AC_LIT("br;q=0") },
        { AC_LIT("Accept-Encoding"), AC_LIT("gzip") },
    };
    struct gz_accept a;

    (void)state;
    gz_accept_from_headers(h, 3, &a);
    assert_int_equal(a.q_br, 0);
    assert_int_equal(a.q_gzip, 1000);
}

#define ALL (GZ_MASK(GZ_IDENTITY) | GZ_MASK(GZ_GZIP) | GZ_MASK(GZ_BR))

static void
choice_prefers_br_then_gzip_then_identity_on_ties(void **state)
{
    (void)state;
    assert_int_equal(gz_choose(&(struct gz_accept){ 1000, 1000, 1000 }, ALL), GZ_BR);
    assert_int_equal(gz_choose(&(struct gz_accept){ 1000, 1000, 1000 },
                               GZ_MASK(GZ_IDENTITY) | GZ_MASK(GZ_GZIP)), GZ_GZIP);
    assert_int_equal(gz_choose(&(struct gz_accept){ 0, 1000, 1000 }, ALL), GZ_GZIP);
    assert_int_equal(gz_choose(&(struct gz_accept){ 0, 0, 1000 }, ALL), GZ_IDENTITY);
}

static void
choice_follows_qvalues_first(void **state)
{
    (void)state;
    assert_int_equal(gz_choose(&(struct gz_accept){ 500, 1000, 0 }, ALL), GZ_GZIP);
    assert_int_equal(gz_choose(&(struct gz_accept){ 400, 300, 1000 }, ALL), GZ_IDENTITY);
    assert_int_equal(gz_choose(&(struct gz_accept){ 400, 300, 100 }, ALL), GZ_BR);
}

static void
nothing_acceptable_falls_back_to_identity(void **state)
{
    (void)state;
    assert_int_equal(gz_choose(&(struct gz_accept){ 0, 0, 0 }, ALL), GZ_IDENTITY);
    assert_int_equal(gz_choose(&(struct gz_accept){ 0, 0, 0 }, GZ_MASK(GZ_GZIP)), GZ_GZIP);
    assert_int_equal(gz_choose(&(struct gz_accept){ 1000, 0, 0 }, GZ_MASK(GZ_GZIP)), GZ_GZIP);
}

/* ---- media types ------------------------------------------------------------- */

static void
text_json_js_svg_are_compressible(void **state)
{
    (void)state;
    assert_true(gz_compressible_type(S("text/html; charset=utf-8")));
    assert_true(gz_compressible_type(S("TEXT/CSS")));
    assert_true(gz_compressible_type(S("application/json")));
    assert_true(gz_compressible_type(S("application/javascript;charset=utf-8")));
    assert_true(gz_compressible_type(S("image/svg+xml")));
    assert_true(gz_compressible_type(S("application/ld+json")));
    assert_true(gz_compressible_type(S("application/rss+xml")));
    assert_true(gz_compressible_type(S(" application/xml ")));
}

static void
compressed_media_are_not(void **state)
{
    (void)state;
    assert_false(gz_compressible_type(S("image/png")));
    assert_false(gz_compressible_type(S("image/jpeg")));
    assert_false(gz_compressible_type(S("video/mp4")));
    assert_false(gz_compressible_type(S("application/zip")));
    assert_false(gz_compressible_type(S("application/octet-stream")));
    assert_false(gz_compressible_type(S("text/")));
    assert_false(gz_compressible_type(S("")));
    assert_false(gz_compressible_type(S("application/+json")));
}

/* ---- streams ------------------------------------------------------------------ */

static char *
sample(size_t n)
{
    char *p = malloc(n);

    for (size_t i = 0; i < n; i++)
        p[i] = "<p>accel caches and compresses</p>\n"[i % 35] + (char)((i / 4096) % 3);
    return p;
}

/* Run g over in[0..n) in pieces of `step`, the last with flush `last`;
 * the output is returned in *out (malloc'd). */
static int
run_all(struct gz_stream *g, const char *in, size_t n, size_t step, char **out, size_t *outn,
        enum gz_flush last)
{
    char buf[333];      /* small on purpose: many output rounds */
    size_t cap = 0, off = 0;
    int r = GZ_OK;

    *out = NULL;
    *outn = 0;
    do {
        size_t k = n - off < step ? n - off : step;
        const char *p = in + off;
        bool final = off + k == n;
        enum gz_flush f = final ? last : GZ_NOFLUSH;
        off += k;
        for (;;) {
            size_t w = 0, k0 = k;
            r = gz_run(g, &p, &k, buf, sizeof(buf), &w, f);
            if (r == GZ_ERR)
                return r;
            if (*outn + w + 1 > cap) {
                cap = (*outn + w) * 2 + 64;
                *out = realloc(*out, cap);
            }
            memcpy(*out + *outn, buf, w);
            *outn += w;
            if (r == GZ_END || (w == 0 && k == k0))
                break;
        }
    } while (off < n);
    return r;
}

static void
round_trip(enum gz_kind enc, enum gz_kind dec, int level, size_t n, size_t step)
{
    char *in = sample(n), *z = NULL, *back = NULL;
    size_t zn = 0, bn = 0;
    struct gz_stream *e = gz_new(enc, level, n), *d = gz_new(dec, 0, 0);

    assert_non_null(e);
    assert_non_null(d);
    assert_int_equal(run_all(e, in, n, step, &z, &zn, GZ_FINISH), GZ_END);
    assert_true(gz_finished(e));
    if (n > 10000)
        assert_true(zn < n / 4);        /* it did compress */
    assert_int_equal(run_all(d, z, zn, step, &back, &bn, GZ_NOFLUSH), GZ_END);
    assert_true(gz_finished(d));
    assert_int_equal(bn, n);
    assert_memory_equal(back, in, n);
    gz_free(&e);
    gz_free(&d);
    assert_null(e);
    free(in);
    free(z);
    free(back);
}

static void
gzip_round_trips_in_any_pieces(void **state)
{
    (void)state;
    round_trip(GZ_K_GZIP_ENC, GZ_K_GZIP_DEC, 6, 200000, 1 << 20);
    round_trip(GZ_K_GZIP_ENC, GZ_K_GZIP_DEC, 1, 200000, 777);
    round_trip(GZ_K_GZIP_ENC, GZ_K_GZIP_DEC, 9, 5000, 1);
    round_trip(GZ_K_GZIP_ENC, GZ_K_GZIP_DEC, 6, 0, 16);
}

static void
brotli_round_trips_in_any_pieces(void **state)
{
    (void)state;
    round_trip(GZ_K_BR_ENC, GZ_K_BR_DEC, 5, 200000, 1 << 20);
    round_trip(GZ_K_BR_ENC, GZ_K_BR_DEC, 11, 30000, 1000);
    round_trip(GZ_K_BR_ENC, GZ_K_BR_DEC, 1, 3000, 1);
    round_trip(GZ_K_BR_ENC, GZ_K_BR_DEC, 4, 0, 16);
}

static void
sync_flush_makes_everything_so_far_decodable(void **state)
{
    char *in = sample(50000), out[65536], plain[65536];
    const char *p = in, *q;
    size_t k = 50000, w = 0, qn, pw = 0;
    struct gz_stream *e = gz_new(GZ_K_GZIP_ENC, 6, 0), *d = gz_new(GZ_K_GZIP_DEC, 0, 0);

    (void)state;
    assert_int_equal(gz_run(e, &p, &k, out, sizeof(out), &w, GZ_SYNC), GZ_OK);
    assert_int_equal(k, 0);
    q = out;
    qn = w;
    assert_int_equal(gz_run(d, &q, &qn, plain, sizeof(plain), &pw, GZ_NOFLUSH), GZ_OK);
    assert_int_equal(pw, 50000);            /* all of it, before the stream ends */
    assert_memory_equal(plain, in, 50000);
    assert_false(gz_finished(d));
    gz_free(&e);
    gz_free(&d);
    free(in);
}

static char *
gzip_of(const char *in, size_t n, size_t *zn)
{
    char *z = NULL;
    struct gz_stream *e = gz_new(GZ_K_GZIP_ENC, 6, 0);

    assert_int_equal(run_all(e, in, n, n ? n : 1, &z, zn, GZ_FINISH), GZ_END);
    gz_free(&e);
    return z;
}

static void
corrupt_gzip_is_an_error(void **state)
{
    size_t zn, bn;
    char *in = sample(100000), *z = gzip_of(in, 100000, &zn), *back = NULL;
    struct gz_stream *d = gz_new(GZ_K_GZIP_DEC, 0, 0);

    (void)state;
    for (size_t i = zn / 2; i < zn / 2 + 32; i++)
        z[i] ^= 0x55;
    /* damage in the middle: an error, or at best a stream that never ends */
    int r = run_all(d, z, zn, 4096, &back, &bn, GZ_NOFLUSH);
    assert_true(r == GZ_ERR || (r == GZ_OK && !gz_finished(d)));
    assert_false(gz_finished(d));
    gz_free(&d);
    free(back);
    /* a bad header: an error at once, and for good */
    z[0] ^= 0xff;
    d = gz_new(GZ_K_GZIP_DEC, 0, 0);
    assert_int_equal(run_all(d, z, zn, 4096, &back, &bn, GZ_NOFLUSH), GZ_ERR);
    const char *p = z;
    size_t k = 10, w;
    char out[64];
    assert_int_equal(gz_run(d, &p, &k, out, sizeof(out), &w, GZ_NOFLUSH), GZ_ERR);
    gz_free(&d);
    free(back);
    free(z);
    free(in);
}

static void
bad_crc_and_truncation_are_caught(void **state)
{
    size_t zn, bn;
    char *in = sample(20000), *z = gzip_of(in, 20000, &zn), *back = NULL;
    struct gz_stream *d = gz_new(GZ_K_GZIP_DEC, 0, 0);

    (void)state;
    z[zn - 8] ^= 1;                         /* CRC32 in the trailer */
    assert_int_equal(run_all(d, z, zn, 1000, &back, &bn, GZ_NOFLUSH), GZ_ERR);
    gz_free(&d);
    free(back);
    z[zn - 8] ^= 1;
    d = gz_new(GZ_K_GZIP_DEC, 0, 0);
    assert_int_equal(run_all(d, z, zn - 3, 1000, &back, &bn, GZ_NOFLUSH), GZ_OK);
    assert_false(gz_finished(d));           /* a stream cut short is not whole */
    gz_free(&d);
    free(back);
    free(z);
    free(in);
}

static void
concatenated_gzip_members_decode_and_garbage_after_does_not(void **state)
{
    size_t an, bn, on;
    char *a = gzip_of("hello ", 6, &an), *b = gzip_of("world", 5, &bn), *out = NULL;
    char *both = malloc(an + bn + 4);
    struct gz_stream *d = gz_new(GZ_K_GZIP_DEC, 0, 0);

    (void)state;
    memcpy(both, a, an);
    memcpy(both + an, b, bn);
    assert_int_equal(run_all(d, both, an + bn, 3, &out, &on, GZ_NOFLUSH), GZ_END);
    assert_int_equal(on, 11);
    assert_memory_equal(out, "hello world", 11);
    gz_free(&d);
    free(out);
    memcpy(both + an, "junk", 4);
    d = gz_new(GZ_K_GZIP_DEC, 0, 0);
    assert_int_equal(run_all(d, both, an + 4, 64, &out, &on, GZ_NOFLUSH), GZ_ERR);
    gz_free(&d);
    free(out);
    free(both);
    free(a);
    free(b);
}

static void
corrupt_brotli_is_an_error(void **state)
{
    const char junk[] = "this is not a brotli stream at all, not even close";
    char *out = NULL;
    size_t on;
    struct gz_stream *d = gz_new(GZ_K_BR_DEC, 0, 0);

    (void)state;
    assert_int_equal(run_all(d, junk, sizeof(junk), 7, &out, &on, GZ_NOFLUSH), GZ_ERR);
    gz_free(&d);
    free(out);
}

/* ---- the brotli job and the store's alternate body ------------------------------ */

static int
setup_store(void **state)
{
    struct store_config cfg;
    struct store *st = NULL;

    store_config_init(&cfg);
    cfg.shards = 4;
    cfg.mem_limit = 64 << 20;
    assert_int_equal(store_open(&cfg, &st), STORE_OK);
    *state = st;
    return 0;
}

static int
teardown_store(void **state)
{
    struct store *st = *state;

    brjob_fini();
    store_close(&st);
    return 0;
}

/* A complete object for key with body[0..n) stored with encoding enc. */
static struct store_obj *
put_encoded(struct store *st, const char *key, const char *body, size_t n, unsigned enc)
{
    struct store_lookup lk = { B(key), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *o = NULL;
    struct store_meta m;

    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_MISS_CREATED);
    test_meta(&m, 100, 60, NULL);
    m.encoding = enc;
    assert_int_equal(store_obj_set_meta(o, &m), STORE_OK);
    for (size_t off = 0; off < n; off += 1000)
        assert_int_equal(store_obj_append(o, body + off, n - off < 1000 ? n - off : 1000), 0);
    assert_int_equal(store_obj_complete(o), STORE_OK);
    return o;
}

static char *
alt_bytes(const struct store_obj *o, size_t *lenp)
{
    unsigned enc = 99;
    size_t len = 0, off = 0;
    char *p;

    assert_true(store_obj_alt(o, &enc, &len));
    assert_int_equal(enc, STORE_ENC_BR);
    p = malloc(len + 1);
    while (off < len) {
        struct store_bytes seg;
        assert_int_equal(store_obj_alt_read(o, off, &seg, 1), 1);
        memcpy(p + off, seg.p, seg.len);
        off += seg.len;
    }
    *lenp = len;
    return p;
}

static void
brotli_job_makes_the_alternate_body_from_gzip_and_identity(void **state)
{
    struct store *st = *state;
    size_t n = 120000, zn, bn, pn;
    char *in = sample(n), *z = gzip_of(in, n, &zn), *br, *plain = NULL;

    for (unsigned enc = STORE_ENC_IDENTITY; enc <= STORE_ENC_GZIP; enc++) {
        struct store_obj *o = enc == STORE_ENC_GZIP ? put_encoded(st, "/g", z, zn, enc)
                                                    : put_encoded(st, "/i", in, n, enc);
        assert_false(store_obj_alt(o, NULL, NULL));
        assert_int_equal(store_obj_alt_begin(o), STORE_OK);
        assert_int_equal(store_obj_alt_begin(o), STORE_ESTATE);     /* once */
        assert_int_equal(brjob_make(o, 9), 0);
        assert_int_equal(store_obj_alt_state(o), STORE_ALT_READY);
        br = alt_bytes(o, &bn);
        assert_true(bn < zn);
        struct gz_stream *d = gz_new(GZ_K_BR_DEC, 0, 0);
        assert_int_equal(run_all(d, br, bn, 5000, &plain, &pn, GZ_NOFLUSH), GZ_END);
        assert_int_equal(pn, n);
        assert_memory_equal(plain, in, n);
        gz_free(&d);
        free(plain);
        free(br);
        assert_int_equal(store_obj_alt_begin(o), STORE_ESTATE);
        assert_false(brjob_submit(o, 9));
        store_obj_release(&o);
    }
    free(z);
    free(in);
}

static void
brotli_job_refuses_a_corrupt_stored_body_for_good(void **state)
{
    struct store *st = *state;
    size_t zn;
    char *in = sample(30000), *z = gzip_of(in, 30000, &zn);
    struct store_obj *o;

    z[zn / 2] ^= 0x77;
    z[zn / 2 + 1] ^= 0x77;
    o = put_encoded(st, "/bad", z, zn, STORE_ENC_GZIP);
    assert_int_equal(store_obj_alt_begin(o), STORE_OK);
    assert_int_equal(brjob_make(o, 5), -1);
    assert_false(store_obj_alt(o, NULL, NULL));
    assert_int_equal(store_obj_alt_state(o), STORE_ALT_FAILED);
    assert_int_equal(store_obj_alt_begin(o), STORE_ESTATE);
    store_obj_release(&o);
    free(z);
    free(in);
}

static void
alternate_body_needs_a_complete_object_and_cancel_can_allow_a_retry(void **state)
{
    struct store *st = *state;
    struct store_lookup lk = { B("/busy"), 100, NULL, NULL, STORE_LOOKUP_CREATE };
    struct store_obj *o = NULL;
    struct store_meta m;

    assert_int_equal(store_lookup(st, &lk, &o, NULL), STORE_MISS_CREATED);
    test_meta(&m, 100, 60, NULL);
    assert_int_equal(store_obj_set_meta(o, &m), STORE_OK);
    assert_int_equal(store_obj_alt_begin(o), STORE_ESTATE);     /* still busy */
    assert_int_equal(store_obj_append(o, "abc", 3), STORE_OK);
    assert_int_equal(store_obj_complete(o), STORE_OK);
    assert_int_equal(store_obj_alt_append(o, "x", 1), STORE_ESTATE);  /* not claimed */
    assert_int_equal(store_obj_alt_begin(o), STORE_OK);
    assert_int_equal(store_obj_alt_append(o, "partial", 7), STORE_OK);
    store_obj_alt_cancel(o, true);
    assert_false(store_obj_alt(o, NULL, NULL));
    assert_int_equal(store_obj_alt_begin(o), STORE_OK);         /* retry allowed */
    assert_int_equal(store_obj_alt_append(o, "ALT", 3), STORE_OK);
    assert_int_equal(store_obj_alt_publish(o, STORE_ENC_BR), STORE_OK);
    size_t len = 0;
    char *p = alt_bytes(o, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "ALT", 3);
    free(p);
    store_obj_release(&o);
}

static void
freshening_shares_the_alternate_body_and_purge_drops_it(void **state)
{
    struct store *st = *state;
    struct store_obj *o = put_encoded(st, "/f", "body", 4, STORE_ENC_GZIP), *n = NULL, *h = NULL;
    struct store_lookup lk = { B("/f"), 100, NULL, NULL,
                               STORE_LOOKUP_CREATE | STORE_LOOKUP_FORCE_MISS };
    struct store_meta m;
    size_t count = 0, len;

    assert_int_equal(store_obj_alt_begin(o), STORE_OK);
    assert_int_equal(store_obj_alt_append(o, "BR", 2), STORE_OK);
    assert_int_equal(store_obj_alt_publish(o, STORE_ENC_BR), STORE_OK);
    assert_int_equal(store_lookup(st, &lk, &n, NULL), STORE_MISS_CREATED);
    test_meta(&m, 101, 60, NULL);
    assert_int_equal(store_obj_set_meta(n, &m), STORE_OK);
    assert_int_equal(store_obj_freshen(n, o), STORE_OK);
    char *p = alt_bytes(n, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "BR", 2);
    free(p);
    store_obj_release(&n);
    assert_int_equal(store_purge_key(st, B("/f"), 0, 102, &count), STORE_OK);
    assert_int_equal(count, 1);
    lk.flags = 0;
    lk.now = 102;
    assert_int_equal(store_lookup(st, &lk, &h, NULL), STORE_MISS);
    store_obj_release(&o);      /* the last reference frees both bodies */
}

int
main(void)
{
#define T(f) cmocka_unit_test(f)
#define TS(f) cmocka_unit_test_setup_teardown(f, setup_store, teardown_store)
    const struct CMUnitTest tests[] = {
        T(qvalues_follow_the_rfc_grammar),
        T(bad_qvalues_are_rejected),
        T(no_field_means_identity_only),
        T(listed_codings_get_their_qvalues),
        T(star_covers_unlisted_codings_and_identity),
        T(identity_can_be_refused),
        T(first_listing_wins_and_field_lines_combine),
        T(bad_parameters_make_an_element_unacceptable),
        T(headers_are_found_by_name),
        T(choice_prefers_br_then_gzip_then_identity_on_ties),
        T(choice_follows_qvalues_first),
        T(nothing_acceptable_falls_back_to_identity),
        T(text_json_js_svg_are_compressible),
        T(compressed_media_are_not),
        T(gzip_round_trips_in_any_pieces),
        T(brotli_round_trips_in_any_pieces),
        T(sync_flush_makes_everything_so_far_decodable),
        T(corrupt_gzip_is_an_error),
        T(bad_crc_and_truncation_are_caught),
        T(concatenated_gzip_members_decode_and_garbage_after_does_not),
        T(corrupt_brotli_is_an_error),
        TS(brotli_job_makes_the_alternate_body_from_gzip_and_identity),
        TS(brotli_job_refuses_a_corrupt_stored_body_for_good),
        TS(alternate_body_needs_a_complete_object_and_cancel_can_allow_a_retry),
        TS(freshening_shares_the_alternate_body_and_purge_drops_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
