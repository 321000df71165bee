/*
 * gz.c -- content codings: Accept-Encoding negotiation, compressible media
 * types, and the gzip (zlib) and brotli stream wrappers.
 */
#include "gz.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- Accept-Encoding ------------------------------------------------------ */

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct ac_slice
trim(struct ac_slice s)
{
    while (s.len > 0 && is_ows(s.p[0]))
        s.p++, s.len--;
    while (s.len > 0 && is_ows(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) (RFC 9110 §12.4.2) */
int
gz_qvalue(struct ac_slice v)
{
    int q, scale = 100;

    v = trim(v);
    if (v.len == 0 || (v.p[0] != '0' && v.p[0] != '1'))
        return -1;
    q = (v.p[0] - '0') * 1000;
    if (v.len == 1)
        return q;
    if (v.p[1] != '.' || v.len > 5)
        return -1;
    for (size_t i = 2; i < v.len; i++, scale /= 10) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        q += (v.p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

void
gz_accept_begin(struct gz_accept_state *st)
{
    st->br = st->gzip = st->identity = st->star = -1;
    st->seen = false;
}

/* One element: coding *( OWS ";" OWS parameter ). */
static void
add_element(struct gz_accept_state *st, struct ac_slice el)
{
    const char *semi = memchr(el.p, ';', el.len);
    struct ac_slice name = trim(AC_SLICE(el.p, semi ? (size_t)(semi - el.p) : el.len));
    int q = 1000;

    if (name.len == 0)
        return;
    while (semi != NULL) {
        const char *p = semi + 1, *end = el.p + el.len;
        const char *next = memchr(p, ';', (size_t)(end - p));
        struct ac_slice par = trim(AC_SLICE(p, (size_t)((next ? next : end) - p)));
        if (par.len >= 2 && (par.p[0] == 'q' || par.p[0] == 'Q')) {
            struct ac_slice rest = trim(AC_SLICE(par.p + 1, par.len - 1));
            if (rest.len > 0 && rest.p[0] == '=') {
                q = gz_qvalue(AC_SLICE(rest.p + 1, rest.len - 1));
                if (q < 0)
                    q = 0;  /* a qvalue we cannot read: not acceptable */
            }
        }
        semi = next;
    }
    int *slot = NULL;
    if (ac_slice_caseeq(name, AC_LIT("br")))
        slot = &st->br;
    else if (ac_slice_caseeq(name, AC_LIT("gzip")) || ac_slice_caseeq(name, AC_LIT("x-gzip")))
        slot = &st->gzip;
    else if (ac_slice_caseeq(name, AC_LIT("identity")))
        slot = &st->identity;
    else if (ac_slice_eq(name, AC_LIT("*")))
        slot = &st->star;
    if (slot != NULL && *slot < 0)
        *slot = q;
}

void
gz_accept_add(struct gz_accept_state *st, struct ac_slice v)
{
    size_t pos = 0;

    st->seen = true;
    while (pos <= v.len) {
        const char *c = pos < v.len ? memchr(v.p + pos, ',', v.len - pos) : NULL;
        size_t end = c ? (size_t)(c - v.p) : v.len;
        if (end > pos)
            add_element(st, AC_SLICE(v.p + pos, end - pos));
        if (c == NULL)
            break;
        pos = end + 1;
    }
}

void
gz_accept_end(const struct gz_accept_state *st, struct gz_accept *out)
{
    int other = st->star >= 0 ? st->star : 0;

    out->q_br = st->br >= 0 ? st->br : other;
    out->q_gzip = st->gzip >= 0 ? st->gzip : other;
    /* identity is acceptable unless "identity;q=0", or "*;q=0" without an
     * identity element, says otherwise */
    if (st->identity >= 0)
        out->q_identity = st->identity;
    else if (st->star == 0)
        out->q_identity = 0;
    else
        out->q_identity = 1000;
}

void
gz_accept_from_headers(const struct h1_header *hdrs, unsigned n, struct gz_accept *out)
{
    struct gz_accept_state st;

    gz_accept_begin(&st);
    for (unsigned i = 0; i < n; i++) {
        if (ac_slice_caseeq(hdrs[i].name, AC_LIT("Accept-Encoding")))
            gz_accept_add(&st, hdrs[i].value);
    }
    gz_accept_end(&st, out);
}

enum gz_enc
gz_choose(const struct gz_accept *acc, unsigned avail)
{
    /* server preference order: the first of equal qvalues wins */
    static const enum gz_enc order[] = { GZ_BR, GZ_GZIP, GZ_IDENTITY };
    int best_q = 0;
    enum gz_enc best = GZ_IDENTITY;
    bool found = false;

    for (size_t i = 0; i < AC_ARRAY_LEN(order); i++) {
        enum gz_enc e = order[i];
        int q = e == GZ_BR ? acc->q_br : e == GZ_GZIP ? acc->q_gzip : acc->q_identity;
        if (!(avail & GZ_MASK(e)) || q <= 0)
            continue;
        if (!found || q > best_q) {
            best = e;
            best_q = q;
            found = true;
        }
    }
    if (found)
        return best;
    if (avail & GZ_MASK(GZ_IDENTITY))
        return GZ_IDENTITY;
    if (avail & GZ_MASK(GZ_GZIP))
        return GZ_GZIP;
    return GZ_BR;
}

/* ---- compressible media types --------------------------------------------- */

bool
gz_compressible_type(struct ac_slice ct)
{
    static const char *const exact[] = {
        "application/json", "application/javascript", "application/x-javascript",
        "application/ecmascript", "application/xml", "application/wasm",
        "application/x-www-form-urlencoded", "application/vnd.ms-fontobject",
        "application/x-font-ttf", "application/x-font-opentype", "image/svg+xml",
        "image/x-icon", "image/vnd.microsoft.icon", "image/bmp", "font/ttf", "font/otf",
        "font/eot",
    };
    const char *semi = memchr(ct.p, ';', ct.len);
    struct ac_slice t = trim(AC_SLICE(ct.p, semi ? (size_t)(semi - ct.p) : ct.len));

    if (t.len > 5 && ac_slice_caseeq(AC_SLICE(t.p, 5), AC_LIT("text/")))
        return true;
    for (size_t i = 0; i < AC_ARRAY_LEN(exact); i++) {
        if (ac_slice_caseeq(t, AC_SLICE(exact[i], strlen(exact[i]))))
            return true;
    }
    /* application/ld+json, application/rss+xml, application/xhtml+xml, ... */
    if (t.len > 17 && ac_slice_caseeq(AC_SLICE(t.p, 12), AC_LIT("application/")) &&
        (ac_slice_caseeq(AC_SLICE(t.p + t.len - 5, 5), AC_LIT("+json")) ||
         ac_slice_caseeq(AC_SLICE(t.p + t.len - 4, 4), AC_LIT("+xml"))))
        return true;
    return false;
}

/* ---- streams ------------------------------------------------------------------ */

struct gz_stream {
    unsigned magic;
#define GZ_STREAM_MAGIC 0x4f1c2a97
    enum gz_kind kind;
    bool failed;
    bool at_end;        /* decoder: at a member end; encoder: finished */
    z_stream z;
    BrotliEncoderState *be;
    BrotliDecoderState *bd;
};

struct gz_stream *
gz_new(enum gz_kind k, int level, size_t size_hint)
{
    struct gz_stream *g = calloc(1, sizeof(*g));
    int r = Z_OK;

    if (g == NULL)
        return NULL;
    g->magic = GZ_STREAM_MAGIC;
    g->kind = k;
    switch (k) {
    case GZ_K_GZIP_ENC:
        if (level < 1 || level > 9)
            level = 6;
        /* windowBits 15 + 16: a gzip wrapper; memLevel 8: zlib's default */
        r = deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        break;
    case GZ_K_GZIP_DEC:
        r = inflateInit2(&g->z, 15 + 16);    /* gzip only, no zlib/raw guessing */
        break;
    case GZ_K_BR_ENC:
        g->be = BrotliEncoderCreateInstance(NULL, NULL, NULL);
        if (g->be == NULL)
            break;
        if (level < 0 || level > 11)
            level = 11;
        BrotliEncoderSetParameter(g->be, BROTLI_PARAM_QUALITY, (uint32_t)level);
        BrotliEncoderSetParameter(g->be, BROTLI_PARAM_LGWIN, 22);
        if (size_hint > 0)
            BrotliEncoderSetParameter(g->be, BROTLI_PARAM_SIZE_HINT,
                                      size_hint > (1u << 30) ? (1u << 30) : (uint32_t)size_hint);
        break;
    case GZ_K_BR_DEC:
        g->bd = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        break;
    }
    if (r != Z_OK || (k == GZ_K_BR_ENC && g->be == NULL) || (k == GZ_K_BR_DEC && g->bd == NULL)) {
        free(g);
        return NULL;
    }
    return g;
}

void
gz_free(struct gz_stream **gp)
{
    struct gz_stream *g = *gp;

    *gp = NULL;
    if (g == NULL)
        return;
    AC_CHECK_OBJ(g, GZ_STREAM_MAGIC);
    switch (g->kind) {
    case GZ_K_GZIP_ENC:
        deflateEnd(&g->z);
        break;
    case GZ_K_GZIP_DEC:
        inflateEnd(&g->z);
        break;
    case GZ_K_BR_ENC:
        BrotliEncoderDestroyInstance(g->be);
        break;
    case GZ_K_BR_DEC:
        BrotliDecoderDestroyInstance(g->bd);
        break;
    }
    g->magic = 0;
    free(g);
}

bool
gz_finished(const struct gz_stream *g)
{
    AC_CHECK_OBJ(g, GZ_STREAM_MAGIC);
    return !g->failed && g->at_end;
}

static int
run_zlib(struct gz_stream *g, const char **in, size_t *inlen, char *out, size_t cap,
         size_t *outlen, enum gz_flush flush)
{
    z_stream *z = &g->z;
    int r;

    /* zlib counts in uInt: feed at most 1 GiB per call */
    z->next_in = (Bytef *)(uintptr_t)*in;
    z->avail_in = (uInt)AC_MIN(*inlen, (size_t)1 << 30);
    z->next_out = (Bytef *)out;
    z->avail_out = (uInt)AC_MIN(cap, (size_t)1 << 30);
    size_t in0 = z->avail_in, out0 = z->avail_out;
    if (g->kind == GZ_K_GZIP_ENC) {
        int f = flush == GZ_FINISH ? Z_FINISH : flush == GZ_SYNC ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        r = deflate(z, f);
        if (r == Z_STREAM_END)
            g->at_end = true;
        else if (r != Z_OK && r != Z_BUF_ERROR)
            g->failed = true;
    } else {
        if (g->at_end && z->avail_in > 0) {
            /* another gzip member follows (RFC 1952 §2.2 allows several) */
            inflateReset(z);
            g->at_end = false;
        }
        r = inflate(z, Z_NO_FLUSH);
        if (r == Z_STREAM_END)
            g->at_end = true;
        else if (r != Z_OK && r != Z_BUF_ERROR)
            g->failed = true;
    }
    *in += in0 - z->avail_in;
    *inlen -= in0 - z->avail_in;
    *outlen = out0 - z->avail_out;
    if (g->failed)
        return GZ_ERR;
    return g->at_end && *inlen == 0 ? GZ_END : GZ_OK;
}

static int
run_brotli(struct gz_stream *g, const char **in, size_t *inlen, char *out, size_t cap,
           size_t *outlen, enum gz_flush flush)
{
    const uint8_t *nin = (const uint8_t *)*in;
    uint8_t *nout = (uint8_t *)out;
    size_t ain = *inlen, aout = cap;

    if (g->kind == GZ_K_BR_ENC) {
        BrotliEncoderOperation op = flush == GZ_FINISH ? BROTLI_OPERATION_FINISH
                                    : flush == GZ_SYNC ? BROTLI_OPERATION_FLUSH
                                                       : BROTLI_OPERATION_PROCESS;
        if (!BrotliEncoderCompressStream(g->be, op, &ain, &nin, &aout, &nout, NULL))
            g->failed = true;
        else if (BrotliEncoderIsFinished(g->be))
            g->at_end = true;
    } else {
        BrotliDecoderResult r = BrotliDecoderDecompressStream(g->bd, &ain, &nin, &aout, &nout,
                                                              NULL);
        if (r == BROTLI_DECODER_RESULT_ERROR)
            g->failed = true;
        else if (r == BROTLI_DECODER_RESULT_SUCCESS) {
            g->at_end = true;
            if (ain > 0)
                g->failed = true;   /* bytes after the end of the stream */
        }
    }
    *in = (const char *)nin;
    *inlen = ain;
    *outlen = cap - aout;
    if (g->failed)
        return GZ_ERR;
    return g->at_end && ain == 0 ? GZ_END : GZ_OK;
}

int
gz_run(struct gz_stream *g, const char **in, size_t *inlen, char *out, size_t cap,
       size_t *outlen, enum gz_flush flush)
{
    AC_CHECK_OBJ(g, GZ_STREAM_MAGIC);
    *outlen = 0;
    if (g->failed)
        return GZ_ERR;
    if (g->kind == GZ_K_GZIP_ENC || g->kind == GZ_K_GZIP_DEC)
        return run_zlib(g, in, inlen, out, cap, outlen, flush);
    return run_brotli(g, in, inlen, out, cap, outlen, flush);
}
