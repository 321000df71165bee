/*
 * gz.h -- content codings: Accept-Encoding negotiation (RFC 9110 §12.5.3),
 * which media types are worth compressing, and streaming gzip and brotli
 * encoders and decoders behind one interface.  No I/O, no store: the
 * caching states (cache_sess.c) and the brotli job (brjob.c) use these.
 */
#ifndef AC_GZ_H
#define AC_GZ_H

#include "ac.h"
#include "h1_parse.h"

/* Codings accel produces or decodes; the values are the store's
 * STORE_ENC_* values. */
enum gz_enc { GZ_IDENTITY = 0, GZ_GZIP = 1, GZ_BR = 2 };
#define GZ_MASK(e) (1u << (e))

/*
 * A client's Accept-Encoding, as qvalues in thousandths (0: not
 * acceptable, 1000: q=1).  Without the field, or with an empty one, only
 * identity is acceptable (RFC 9110 allows any coding then, but clients that
 * send nothing are scripts and old tools: Varnish and nginx send identity
 * too).  "*" covers every coding not listed, identity included; "x-gzip"
 * is gzip.  A coding listed twice keeps its first qvalue; a bad qvalue
 * makes that element not acceptable.
 */
struct gz_accept {
    int q_br, q_gzip, q_identity;
};

/* Parse every Accept-Encoding field of hdrs[0..n) into *out. */
void gz_accept_from_headers(const struct h1_header *hdrs, unsigned n, struct gz_accept *out);

/*
 * Parse field values one after the other (several field lines combine):
 * gz_accept_begin(), gz_accept_add() per value, gz_accept_end().  The
 * state is in *st; gz_accept_end() fills *out.
 */
struct gz_accept_state {
    int br, gzip, identity, star; /* -1: not listed */
    bool seen;
};
void gz_accept_begin(struct gz_accept_state *st);
void gz_accept_add(struct gz_accept_state *st, struct ac_slice value);
void gz_accept_end(const struct gz_accept_state *st, struct gz_accept *out);

/* Parse a qvalue ("0", "0.5", "1.000"): thousandths, or -1 when invalid. */
int gz_qvalue(struct ac_slice v);

/*
 * The coding to send among those available (a mask of GZ_MASK(enc)): the
 * highest qvalue above 0, ties broken br > gzip > identity.  When none is
 * acceptable, identity if available (RFC 9110 §12.5.3: a response without
 * content coding), else the lowest coding in the mask.
 */
enum gz_enc gz_choose(const struct gz_accept *acc, unsigned avail);

/*
 * Is a Content-Type worth compressing?  Any text/ type, JSON, JavaScript, XML and
 * the +json/+xml types, SVG, icons, WebAssembly and uncompressed fonts;
 * parameters (charset) are ignored.  Images, audio, video and archives are
 * already compressed.
 */
bool gz_compressible_type(struct ac_slice content_type);

/* ---- streaming codecs ---------------------------------------------------- */

enum gz_kind {
    GZ_K_GZIP_ENC,  /* identity -> gzip (zlib deflate, gzip wrapper) */
    GZ_K_GZIP_DEC,  /* gzip -> identity (members may be concatenated) */
    GZ_K_BR_ENC,    /* identity -> brotli */
    GZ_K_BR_DEC,    /* brotli -> identity */
};

/* gz_run() flush modes (encoders; decoders ignore them). */
enum gz_flush { GZ_NOFLUSH, GZ_SYNC, GZ_FINISH };

/* gz_run() results. */
#define GZ_OK 0      /* progress; call again with more input or more room */
#define GZ_END 1     /* the stream is complete (encoder finished, decoder at a
                      * member end with no input left over) */
#define GZ_ERR (-1)  /* corrupt input (decoders) or out of memory */

struct gz_stream;

/*
 * A new stream of kind k.  level: gzip 1..9, brotli 0..11 (encoders);
 * size_hint: expected input bytes or 0 (brotli encoder).  NULL when out of
 * memory.  Free with gz_free().
 */
struct gz_stream *gz_new(enum gz_kind k, int level, size_t size_hint);
void gz_free(struct gz_stream **gp);

/*
 * Run the stream: consume from *in (advanced, *inlen decreased), write at
 * most cap bytes to out (*outlen: bytes written).  Call until it makes no
 * more output for the input given.  Returns GZ_OK, GZ_END or GZ_ERR; after
 * GZ_ERR the stream stays failed.
 */
int gz_run(struct gz_stream *g, const char **in, size_t *inlen, char *out, size_t cap,
           size_t *outlen, enum gz_flush flush);

/* Did a decoder see the end of a complete stream (and nothing after it)? */
bool gz_finished(const struct gz_stream *g);

#endif /* AC_GZ_H */
