/*
 * cache_gz.h -- compression in the caching states (cache_gz.c): the
 * beresp.do_* defaults, the stored coding and fill filter, the coding each
 * client gets, and delivery through a decoder.  Shared by cache_sess.c and
 * cache_gz.c only; the codecs themselves are in gz.h.
 */
#ifndef AC_CACHE_GZ_H
#define AC_CACHE_GZ_H

#include "req_int.h"

/* stale-if-error seconds and must-revalidate travel in the object's flags
 * above the store's own bits (the store keeps flags as given). */
#define OBJ_F_MUSTREVAL 0x2u
#define OBJ_SIE_SHIFT 8
/* Compression (docs/caching.md "Compression"): the object wants a brotli
 * body; its coding is negotiated per request (Content-Encoding, ETag and
 * Vary are sent per request, not stored); the origin's Vary already names
 * Accept-Encoding; the coding the origin sent (the ETag belongs to it). */
#define OBJ_F_BROTLI 0x4u
#define OBJ_F_NEGOTIATE 0x8u
#define OBJ_F_VARY_AE 0x40u
#define OBJ_ORIGENC_SHIFT 4
#define OBJ_ORIGENC_MASK 0x30u
#define OBJ_F_COMPRESS_MASK (OBJ_F_BROTLI | OBJ_F_NEGOTIATE | OBJ_F_VARY_AE | OBJ_ORIGENC_MASK)

#define GZ_BUFSZ (32 * 1024)

enum dlv { DLV_DONE, DLV_DEAD, DLV_ABORTED, DLV_TAIL, DLV_WAIT_WRITE, DLV_WAIT_DATA };

/* The STORE_ENC_* of a response's Content-Encoding (identity when unknown). */
unsigned cache_gz_store_encoding(const struct h1_response *r);

/* beresp.do_gzip / do_gunzip / do_brotli before vcl_backend_response. */
void cache_gz_defaults(struct req *req, const struct h1_response *r);

/*
 * After vcl_backend_response, for a response to store: the stored coding
 * (returned), the object's compression flags (*flagsp) and the fill filter
 * (req->fill_gz, req->fill_buf).
 */
unsigned cache_gz_setup(struct req *req, const struct h1_response *r, unsigned *flagsp);

/* Remove Content-Encoding and ETag from a block being built (before
 * cache_block_seal): a negotiated object sends them per request. */
void cache_gz_strip(struct ac_buf *b);

/* The coding this request gets from req->obj (sets req->dlv_alt); may queue
 * the object's brotli body.  complete/len: the object's state. */
unsigned cache_gz_choose(struct req *req, bool complete, size_t len);

/* Deliver req->obj through req->dlv_gz (identity for a client without gzip/br). */
enum dlv cache_gz_pump(struct req *req);

#endif /* AC_CACHE_GZ_H */
