/*
 * store_record.c -- the on-disk object record: encoder, validating decoder,
 * and object construction from a record.  The format is in docs/store.md.
 *
 * Everything read from disk is untrusted: a torn write, a bit flip or a
 * record from another program must be rejected here, never asserted on.
 * The decoder checks magic, version, the length and CRC-32 of the payload,
 * then every length field against what remains, and that nothing is left.
 */
#include "store.h"
#include "store_int.h"

#include <math.h>
#include <stdlib.h>
#include <zlib.h>

#define FIXED_LEN (8 + 2 + 1 + 1 + 4 + 5 * 8 + 4 + 4 + 4 + 2 + 2 + 2 + 2 + 8)

static void
put16(uint8_t **p, uint16_t v)
{
    (*p)[0] = (uint8_t)v;
    (*p)[1] = (uint8_t)(v >> 8);
    *p += 2;
}

static void
put32(uint8_t **p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p, (uint16_t)(v >> 16));
}

static void
put64(uint8_t **p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p, (uint32_t)(v >> 32));
}

static void
putd(uint8_t **p, double d)
{
    uint64_t v;

    memcpy(&v, &d, sizeof(v));
    put64(p, v);
}

static void
putb(uint8_t **p, struct store_bytes b)
{
    if (b.len > 0)
        memcpy(*p, b.p, b.len);
    *p += b.len;
}

static uint16_t
get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16);
}

static uint64_t
get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static double
getd(const uint8_t *p)
{
    uint64_t v = get64(p);
    double d;

    memcpy(&d, &v, sizeof(d));
    return d;
}

/* Size without the alternate body (which may be published at any time). */
static size_t
base_size(const struct store_obj *o)
{
    const struct store_mblock *m = store_obj_meta(o);
    size_t n = STORE_REC_HDR + FIXED_LEN, i;

    if (m == NULL || o->keylen > UINT32_MAX || m->selector.len > UINT32_MAX ||
        m->headers.len > UINT32_MAX || m->etag.len > 0xffff || m->last_modified.len > 0xffff ||
        m->ntags > 0xffff)
        return 0;
    n += o->keylen + m->selector.len + m->headers.len + m->etag.len + m->last_modified.len;
    for (i = 0; i < m->ntags; i++)
        n += 2 + m->tags[i].len;
    n += store_obj_body_len(o);
    if (n - STORE_REC_HDR > UINT32_MAX)
        return 0;
    return n;
}

size_t
store_record_size(const struct store_obj *o)
{
    size_t n = base_size(o), alen = 0;

    if (n == 0 || !store_obj_alt(o, NULL, &alen))
        return n;
    n += STORE_REC_ALT_FIXED + alen;
    return n - STORE_REC_HDR > UINT32_MAX ? base_size(o) : n;
}

/* Copies len bytes of a body (segments from read()) to *p. */
static void
put_body(uint8_t **p, const struct store_obj *o, size_t blen,
         size_t (*read)(const struct store_obj *, size_t, struct store_bytes *, size_t))
{
    struct store_bytes segs[64];
    size_t i, n, off = 0;

    while (off < blen && (n = read(o, off, segs, 64)) > 0) {
        for (i = 0; i < n && off < blen; i++) {
            size_t k = segs[i].len < blen - off ? segs[i].len : blen - off;

            memcpy(*p, segs[i].p, k);
            *p += k;
            off += k;
        }
    }
}

size_t
store_record_encode(const struct store_obj *o, uint64_t ban_seq, const struct store_times *tp,
                    void *buf, size_t len)
{
    const struct store_mblock *m = store_obj_meta(o);
    uint8_t *start = buf, *p = start + STORE_REC_HDR, *h = start;
    size_t i, blen = store_obj_body_len(o), base = base_size(o), alen = 0;
    struct store_times t = *tp;
    unsigned aenc = 0;
    /* len is what store_record_size() said: with the alternate body when
     * it saw one (published bodies never change), without it otherwise */
    bool with_alt = len > base;

    STORE_NOTNULL(m);
    STORE_ASSERT(len == base || (store_obj_alt(o, &aenc, &alen) &&
                                 len == base + STORE_REC_ALT_FIXED + alen));
    put64(&p, ban_seq);
    put16(&p, (uint16_t)m->status);
    *p++ = (uint8_t)m->encoding;
    *p++ = 0;
    put32(&p, m->flags);
    putd(&p, t.date);
    putd(&p, t.insert);
    putd(&p, t.ttl);
    putd(&p, t.grace);
    putd(&p, t.keep);
    put32(&p, (uint32_t)o->keylen);
    put32(&p, (uint32_t)m->selector.len);
    put32(&p, (uint32_t)m->headers.len);
    put16(&p, (uint16_t)m->etag.len);
    put16(&p, (uint16_t)m->last_modified.len);
    put16(&p, (uint16_t)m->ntags);
    put16(&p, 0);
    put64(&p, blen);
    putb(&p, (struct store_bytes){ o->key, o->keylen });
    putb(&p, m->selector);
    putb(&p, m->headers);
    putb(&p, m->etag);
    putb(&p, m->last_modified);
    for (i = 0; i < m->ntags; i++) {
        put16(&p, (uint16_t)m->tags[i].len);
        putb(&p, m->tags[i]);
    }
    put_body(&p, o, blen, store_obj_read);
    if (with_alt) {
        *p++ = (uint8_t)aenc;
        *p++ = 0;
        put16(&p, 0);
        put64(&p, alen);
        put_body(&p, o, alen, store_obj_alt_read);
    }
    STORE_ASSERT((size_t)(p - start) == len);
    put32(&h, STORE_REC_MAGIC);
    put16(&h, STORE_REC_VERSION);
    put16(&h, with_alt ? STORE_REC_F_ALT : 0);
    put32(&h, (uint32_t)(len - STORE_REC_HDR));
    put32(&h, (uint32_t)crc32(0L, start + STORE_REC_HDR, (uInt)(len - STORE_REC_HDR)));
    return len;
}

/* Takes n bytes from the cursor, or fails when fewer remain. */
static int
take(const uint8_t **p, size_t *left, size_t n, struct store_bytes *out)
{
    if (n > *left)
        return -1;
    out->p = *p;
    out->len = n;
    *p += n;
    *left -= n;
    return 0;
}

int
store_record_decode(const void *buf, size_t len, struct store_record *r)
{
    const uint8_t *b = buf, *p;
    size_t left, i, keylen, sellen, hdrlen, etaglen, lmlen;
    uint64_t blen;
    struct store_bytes tb;

    memset(r, 0, sizeof(*r));
    if (buf == NULL || len < STORE_REC_HDR + FIXED_LEN)
        return -1;
    if (get32(b) != STORE_REC_MAGIC || get16(b + 4) != STORE_REC_VERSION ||
        (get16(b + 6) & ~STORE_REC_F_ALT) != 0)
        return -1;
    if ((size_t)get32(b + 8) != len - STORE_REC_HDR)
        return -1;
#ifndef AC_FUZZ /* the fuzzer could never forge a CRC: let it reach the parser */
    if ((uint32_t)crc32(0L, b + STORE_REC_HDR, (uInt)(len - STORE_REC_HDR)) != get32(b + 12))
        return -1;
#endif
    p = b + STORE_REC_HDR;
    r->ban_seq = get64(p);
    r->status = get16(p + 8);
    r->encoding = p[10];
    r->flags = get32(p + 12);
    r->times.date = getd(p + 16);
    r->times.insert = getd(p + 24);
    r->times.ttl = getd(p + 32);
    r->times.grace = getd(p + 40);
    r->times.keep = getd(p + 48);
    keylen = get32(p + 56);
    sellen = get32(p + 60);
    hdrlen = get32(p + 64);
    etaglen = get16(p + 68);
    lmlen = get16(p + 70);
    r->ntags = get16(p + 72);
    blen = get64(p + 76);
    if (p[11] != 0 || get16(p + 74) != 0)
        return -1;
    if (!isfinite(r->times.date) || !isfinite(r->times.insert) || !isfinite(r->times.ttl) ||
        !isfinite(r->times.grace) || !isfinite(r->times.keep))
        return -1;
    if (r->ntags > STORE_REC_MAX_TAGS)
        return -1;
    p += FIXED_LEN;
    left = len - STORE_REC_HDR - FIXED_LEN;
    if (take(&p, &left, keylen, &r->key) || take(&p, &left, sellen, &r->selector) ||
        take(&p, &left, hdrlen, &r->headers) || take(&p, &left, etaglen, &r->etag) ||
        take(&p, &left, lmlen, &r->last_modified))
        return -1;
    r->tags_raw.p = p;
    for (i = 0; i < r->ntags; i++) {
        if (left < 2)
            return -1;
        {
            size_t tl = get16(p);

            p += 2;
            left -= 2;
            if (take(&p, &left, tl, &tb))
                return -1;
        }
    }
    r->tags_raw.len = (size_t)(p - (const uint8_t *)r->tags_raw.p);
    if (blen > left || take(&p, &left, (size_t)blen, &r->body))
        return -1;
    if (get16(b + 6) & STORE_REC_F_ALT) {
        uint64_t alen;

        if (left < STORE_REC_ALT_FIXED || p[1] != 0 || get16(p + 2) != 0)
            return -1;
        r->alt_encoding = p[0];
        alen = get64(p + 4);
        p += STORE_REC_ALT_FIXED;
        left -= STORE_REC_ALT_FIXED;
        if (alen != left || take(&p, &left, (size_t)alen, &r->alt))
            return -1;
    }
    return left == 0 ? 0 : -1;
}

struct store_bytes
store_record_tag(const struct store_record *r, size_t i)
{
    const uint8_t *p = r->tags_raw.p;
    size_t k;

    STORE_ASSERT(i < r->ntags);
    for (k = 0;; k++) {
        size_t tl = get16(p);

        if (k == i)
            return (struct store_bytes){ p + 2, tl };
        p += 2 + tl;
    }
}

struct store_obj *
store_obj_from_record(struct store *st, const uint8_t digest[STORE_DIGEST_LEN],
                      const struct store_record *r)
{
    struct store_bytes *tags = NULL;
    struct store_meta m;
    struct store_obj *o;
    const uint8_t *p;
    size_t i;

    o = store_obj_new(st, digest, r->key);
    if (o == NULL)
        return NULL;
    if (r->ntags > 0) {
        tags = malloc(r->ntags * sizeof(*tags));
        if (tags == NULL)
            goto fail;
        for (i = 0, p = r->tags_raw.p; i < r->ntags; i++) {
            tags[i].len = get16(p);
            tags[i].p = p + 2;
            p += 2 + tags[i].len;
        }
    }
    memset(&m, 0, sizeof(m));
    m.status = r->status;
    m.headers = r->headers;
    m.etag = r->etag;
    m.last_modified = r->last_modified;
    m.selector = r->selector;
    m.tags = tags;
    m.ntags = r->ntags;
    m.times = r->times;
    m.encoding = r->encoding;
    m.flags = r->flags;
    m.size_hint = r->body.len;
    if (store_obj_meta_copy(o, &m) != 0)
        goto fail;
    if (r->body.len > 0 && store_obj_body_append(o, r->body.p, r->body.len) != 0)
        goto fail;
    if (r->alt.p != NULL && store_obj_alt_restore(o, r->alt_encoding, r->alt) != 0)
        goto fail;
    atomic_store(&o->ban_seq, r->ban_seq);
    atomic_store_explicit(&o->state, STORE_OBJ_COMPLETE, memory_order_release);
    free(tags);
    return o;
fail:
    free(tags);
    store_obj_release(&o);
    return NULL;
}
