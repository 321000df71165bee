/*
 * cache_gz.c -- compression in the caching states (docs/caching.md,
 * "Compression"): what a stored response becomes (gzip while it streams,
 * gunzip, or checked as sent), which coding each client gets, and delivery
 * through a decoder for clients that take neither gzip nor br.  The fill
 * filter itself runs in cache_sess.c (fill_append), beside the store calls.
 */
#include "cache_gz.h"

#include "brjob.h"

#include <stdio.h>
#include <stdlib.h>

unsigned
cache_gz_store_encoding(const struct h1_response *r)
{
    const struct h1_header *h = h1_header_find(r->hdrs, r->nhdrs, AC_LIT("Content-Encoding"));

    if (h == NULL)
        return STORE_ENC_IDENTITY;
    if (ac_slice_caseeq(h->value, AC_LIT("gzip")))
        return STORE_ENC_GZIP;
    if (ac_slice_caseeq(h->value, AC_LIT("br")))
        return STORE_ENC_BR;
    if (ac_slice_caseeq(h->value, AC_LIT("deflate")))
        return STORE_ENC_DEFLATE;
    return STORE_ENC_IDENTITY;
}

/* The coding of an origin response (GZ_*), or -1 for one accel leaves
 * alone (deflate, zstd, several codings). */
static int
origin_coding(const struct h1_response *r)
{
    const struct h1_header *h = h1_header_find(r->hdrs, r->nhdrs, AC_LIT("Content-Encoding"));
    struct ac_slice v;

    if (h == NULL)
        return GZ_IDENTITY;
    v = h->value;
    while (v.len > 0 && (v.p[0] == ' ' || v.p[0] == '\t'))
        v.p++, v.len--;
    while (v.len > 0 && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
        v.len--;
    if (v.len == 0 || ac_slice_caseeq(v, AC_LIT("identity")))
        return GZ_IDENTITY;
    if (ac_slice_caseeq(v, AC_LIT("gzip")) || ac_slice_caseeq(v, AC_LIT("x-gzip")))
        return GZ_GZIP;
    if (ac_slice_caseeq(v, AC_LIT("br")))
        return GZ_BR;
    return -1;
}

/* Does a Vary field of r name Accept-Encoding already? */
static bool
vary_names_ae(const struct h1_response *r)
{
    static const char ae[] = "accept-encoding";

    for (unsigned i = 0; i < r->nhdrs; i++) {
        struct ac_slice v = r->hdrs[i].value;
        if (!ac_slice_caseeq(r->hdrs[i].name, AC_LIT("Vary")))
            continue;
        for (size_t j = 0; j + sizeof(ae) - 1 <= v.len; j++)
            if (ac_slice_caseeq(AC_SLICE(v.p + j, sizeof(ae) - 1), AC_LIT(ae)))
                return true;
    }
    return false;
}

/*
 * beresp.do_gzip / do_brotli before vcl_backend_response: on for bodies of
 * compressible types (gz_compressible_type()) of at least compress_min_size
 * bytes (or of unknown length) that the origin sent unencoded (gzip: also
 * brotli for gzip ones), unless Cache-Control: no-transform.  do_gunzip:
 * off.  The policy may change all three.
 */
void
cache_gz_defaults(struct req *req, const struct h1_response *r)
{
    const struct config_params *p = &req->w->cfg->p;
    const struct h1_header *ct = h1_header_find(r->hdrs, r->nhdrs, AC_LIT("Content-Type"));
    int oc = origin_coding(r);
    bool text = ct != NULL && gz_compressible_type(ct->value);
    bool has_body = r->status >= 200 && r->status != 204 && r->status != 206 &&
                    r->status != 304 && r->body != H1_BODY_NONE;
    bool big = r->body != H1_BODY_LENGTH || (double)r->content_length >= p->compress_min_size;
    bool ok = text && has_body && big && !req->dec.no_transform;

    req->do_gunzip = false;
    req->do_gzip = ok && oc == GZ_IDENTITY && p->gzip_level > 0;
    req->do_brotli = ok && (oc == GZ_IDENTITY || oc == GZ_GZIP) && p->brotli_max_size > 0 &&
                   (r->body != H1_BODY_LENGTH || (double)r->content_length <= p->brotli_max_size);
}

/*
 * After vcl_backend_response, for a response to store: choose the stored
 * coding and set up the filter between the origin body and the object:
 * gzip it (do_gzip), gunzip it (do_gunzip), or only check an encoded body
 * (a corrupt one is never stored).  Returns the stored coding; *flagsp gets
 * the object's compression flags.  no-transform (RFC 9110 §7.7): stored
 * and served exactly as sent.
 */
unsigned
cache_gz_setup(struct req *req, const struct h1_response *r, unsigned *flagsp)
{
    const struct config_params *p = &req->w->cfg->p;
    int oc = origin_coding(r);
    unsigned senc, f = 0;

    *flagsp = 0;
    if (oc < 0 || req->dec.no_transform)
        return cache_gz_store_encoding(r);
    senc = (unsigned)oc;
    if (oc == GZ_GZIP && req->do_gunzip) {
        req->fill_gz = gz_new(GZ_K_GZIP_DEC, 0, 0);
        senc = GZ_IDENTITY;
        STAT_INC(req->w, gzip_gunzipped);
    } else if (oc == GZ_GZIP || oc == GZ_BR) {
        req->fill_gz = gz_new(oc == GZ_GZIP ? GZ_K_GZIP_DEC : GZ_K_BR_DEC, 0, 0);
        req->fill_gz_check = true;
    } else if (req->do_gzip) {
        req->fill_gz = gz_new(GZ_K_GZIP_ENC, (int)p->gzip_level, 0);
        senc = GZ_GZIP;
        STAT_INC(req->w, gzip_stored);
    }
    if (req->fill_gz != NULL || senc != (unsigned)oc) {
        AC_NOTNULL(req->fill_gz);     /* zlib/brotli fail only when out of memory */
        req->fill_buf = ac_xmalloc(GZ_BUFSZ);
    }
    if (req->do_brotli && (senc == GZ_IDENTITY || senc == GZ_GZIP))
        f |= OBJ_F_BROTLI;
    if (senc != GZ_IDENTITY || senc != (unsigned)oc || (f & OBJ_F_BROTLI)) {
        f |= OBJ_F_NEGOTIATE | ((unsigned)oc << OBJ_ORIGENC_SHIFT);
        if (vary_names_ae(r))
            f |= OBJ_F_VARY_AE;
    }
    *flagsp = f;
    return senc;
}

/* Drop from a block being built (before cache_block_seal) the fields a
 * negotiated object sends per request: Content-Encoding and ETag. */
void
cache_gz_strip(struct ac_buf *b)
{
    size_t r = 0, w = 0;
    bool status_line = true;

    while (r < b->len) {
        const char *nl = memchr(b->p + r, '\n', b->len - r);
        size_t ll = nl ? (size_t)(nl - (b->p + r)) + 1 : b->len - r;
        const char *colon = memchr(b->p + r, ':', ll);
        bool drop = false;
        if (!status_line && colon != NULL) {
            struct ac_slice n = AC_SLICE(b->p + r, (size_t)(colon - (b->p + r)));
            drop = ac_slice_caseeq(n, AC_LIT("Content-Encoding")) ||
                   ac_slice_caseeq(n, AC_LIT("ETag"));
        }
        status_line = false;
        if (!drop) {
            memmove(b->p + w, b->p + r, ll);
            w += ll;
        }
        r += ll;
    }
    b->len = w;
}

/*
 * The representation this request gets (RFC 9110 §12.5.3): for an object
 * whose coding is negotiated, the best of the stored body, its brotli
 * body once made, and identity (decoded on the fly) that the client's
 * Accept-Encoding accepts.  Sets req->dlv_alt and returns the coding; asks
 * for a brotli body when the client would take one and there is none yet.
 */
unsigned
cache_gz_choose(struct req *req, bool complete, size_t len)
{
    struct store_obj *o = req->obj;
    unsigned f = store_obj_flags(o), enc = store_obj_encoding(o), altenc = 0;
    const struct config_params *p = &req->w->cfg->p;
    struct gz_accept acc;
    bool alt;

    req->dlv_alt = false;
    if (!(f & OBJ_F_NEGOTIATE))
        return enc;
    alt = store_obj_alt(o, &altenc, NULL);
    gz_accept_from_headers(req->http.hdrs, req->http.nhdrs, &acc);
    unsigned e = gz_choose(&acc, GZ_MASK(enc) | GZ_MASK(GZ_IDENTITY) | (alt ? GZ_MASK(altenc) : 0));
    if ((f & OBJ_F_BROTLI) && !alt && complete && acc.q_br > 0 &&
        (double)len <= p->brotli_max_size && store_obj_alt_state(o) == STORE_ALT_NONE)
        (void)brjob_submit(o, (int)p->brotli_level);  /* e.g. after a restart */
    if (alt && e == altenc && e != enc)
        req->dlv_alt = true;
    return e;
}

/*
 * Delivery through a decoder (identity for a client that takes neither
 * gzip nor br): decode what has arrived into dlv_buf, write it, and decode
 * more only once the transport has taken it, so memory stays at one
 * buffer per client for any body size.  A stored body that does not
 * decode, or ends before its stream does, ends the response with a close
 * (no last chunk): the client never takes it for whole.
 */
enum dlv
cache_gz_pump(struct req *req)
{
    for (;;) {
        if (req->out_wait)
            return DLV_WAIT_WRITE;  /* dlv_buf is still the transport's */
        if (req->dlv_done)
            return DLV_DONE;
        size_t len = 0, outn = 0;
        enum store_obj_state st = store_obj_state(req->obj, &len);
        int r = GZ_OK;
        while (outn < GZ_BUFSZ) {
            struct store_bytes seg = { NULL, 0 };
            const char *p = NULL;
            size_t n = 0, w = 0;
            if (req->dlv_off < len && store_obj_read(req->obj, (size_t)req->dlv_off, &seg, 1) == 1) {
                p = seg.p;
                n = (size_t)AC_MIN((uint64_t)seg.len, len - req->dlv_off);
            }
            size_t n0 = n;
            r = gz_run(req->dlv_gz, &p, &n, req->dlv_buf + outn, GZ_BUFSZ - outn, &w, GZ_NOFLUSH);
            req->dlv_off += n0 - n;
            outn += w;
            if (r == GZ_ERR || (w == 0 && n == n0))
                break;
        }
        if (r == GZ_ERR) {
            STAT_INC(req->w, gzip_corrupt);
            LOG_W("cached body of " AC_SLICE_FMT " does not decode; response cut",
                  AC_SLICE_ARG(req->http.path));
            return DLV_ABORTED;
        }
        if (outn > 0) {
            struct iovec iov = { req->dlv_buf, outn };
            req->bytes_sent += outn;
            int wr = req_write(req, &iov, 1, 0);
            if (wr == AC_AGAIN)
                return DLV_WAIT_WRITE;
            if (wr != AC_OK)
                return DLV_DEAD;
            continue;
        }
        if (req->dlv_off < len)
            return DLV_ABORTED;     /* input the decoder will not take */
        if (st == STORE_OBJ_ABORTED)
            return DLV_ABORTED;
        if (st != STORE_OBJ_COMPLETE) {
            int wr = req_flush_head(req);   /* the body is still coming */
            if (wr == AC_AGAIN)
                return DLV_WAIT_WRITE;
            return wr == AC_OK ? DLV_WAIT_DATA : DLV_DEAD;
        }
        if (!gz_finished(req->dlv_gz)) {
            STAT_INC(req->w, gzip_corrupt);
            LOG_W("cached body of " AC_SLICE_FMT " ends inside its compressed stream",
                  AC_SLICE_ARG(req->http.path));
            return DLV_ABORTED;
        }
        req->dlv_done = true;
        int wr = req_write(req, NULL, 0, XP_W_END);
        if (wr == AC_AGAIN)
            return DLV_WAIT_WRITE;
        if (wr != AC_OK)
            return DLV_DEAD;
    }
}
