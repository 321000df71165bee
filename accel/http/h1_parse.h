/*
 * h1_parse.h -- strict, zero-copy HTTP/1.1 message head parser and chunked
 * decoder (RFC 9112), in the manner of picohttpparser: no state between calls
 * for heads (the caller re-parses from the start when more bytes arrive; the
 * head is small and bounded), slices point into the caller's buffer.
 *
 * Validity of the slices: every ac_slice filled in here points into the
 * buffer passed to the parse call and stays valid until the caller moves or
 * overwrites those bytes (h1 buffers are compacted only between messages).
 */
#ifndef H1_PARSE_H
#define H1_PARSE_H

#include "ac.h"

struct h1_header {
    struct ac_slice name;   /* token, as received (case preserved) */
    struct ac_slice value;  /* OWS trimmed on both ends; may be empty */
};

/* Limits a parse call enforces.  0 for a field means "no limit of that kind"
 * except max_headers, which must be > 0 and <= the size of the hdrs array. */
struct h1_limits {
    size_t max_head;        /* bytes of start line + headers + final CRLF (431) */
    size_t max_target;      /* bytes of the request-target (414) */
    size_t max_header_line; /* bytes of one field line (431) */
    unsigned max_headers;   /* number of field lines (431) */
    bool strict_target;     /* -p uri_strict=on: RFC 3986 characters only in the
                             * request-target; off: any byte above 0x20 but DEL */
};

/* How the body of a message is framed (RFC 9112 §6.3). */
enum h1_body {
    H1_BODY_NONE = 0,       /* no body (request without CL/TE; HEAD/1xx/204/304 response) */
    H1_BODY_LENGTH,         /* content_length bytes follow */
    H1_BODY_CHUNKED,        /* chunked transfer coding */
    H1_BODY_CLOSE,          /* response only: body runs until the connection closes */
};

/* Flags on a parsed message. */
#define H1_F_CLOSE          0x0001u /* Connection: close (or HTTP/1.0 without keep-alive) */
#define H1_F_KEEPALIVE      0x0002u /* Connection: keep-alive seen */
#define H1_F_EXPECT_100     0x0004u /* request: Expect: 100-continue */
#define H1_F_UPGRADE        0x0008u /* Connection: upgrade and an Upgrade header present */
#define H1_F_HTTP10         0x0010u /* HTTP/1.0 message */
#define H1_F_ABSOLUTE_FORM  0x0020u /* request-target was absolute-form */
#define H1_F_ASTERISK_FORM  0x0040u /* request-target was "*" (OPTIONS) */
#define H1_F_AUTHORITY_FORM 0x0080u /* request-target was authority-form (CONNECT) */
#define H1_F_HAS_TE         0x0100u /* a TE request header was present (hop-by-hop) */
#define H1_F_EXPECT_OTHER   0x0200u /* request: an Expect value other than 100-continue
                                     * (the session may answer 417, RFC 9110 §10.1.1) */

/* Why a message was rejected; the session maps this to a status code. */
enum h1_error {
    H1_ERR_NONE = 0,
    H1_ERR_BAD,             /* 400: grammar, framing or smuggling risk */
    H1_ERR_TARGET_TOO_LONG, /* 414 */
    H1_ERR_HEAD_TOO_LARGE,  /* 431: head, a line, or the count over a limit */
    H1_ERR_TE_UNKNOWN,      /* 501: a transfer coding we do not implement */
    H1_ERR_VERSION,         /* 505: HTTP major version other than 1 */
};

/* The status code a request error maps to (400, 414, 431, 501, 505); 0 for
 * H1_ERR_NONE.  For a response error the proxy answers 502 whatever the enum. */
int h1_error_status(enum h1_error e);

struct h1_request {
    struct ac_slice method;
    struct ac_slice target;     /* as received */
    struct ac_slice path;       /* origin-form: target; absolute-form: path-abempty+query ("/" if empty) */
    struct ac_slice host;       /* the Host field value, or the authority of an absolute-form target */
    int minor;                  /* HTTP/1.<minor> */
    unsigned flags;             /* H1_F_* */
    enum h1_body body;          /* H1_BODY_NONE, _LENGTH or _CHUNKED */
    uint64_t content_length;    /* when body == H1_BODY_LENGTH */
    struct h1_header *hdrs;     /* caller's array, max_headers entries */
    unsigned nhdrs;             /* filled in */
    enum h1_error error;        /* when the call returned AC_EPROTO */
    const char *reason;         /* static string saying why, for the log; NULL when fine */
    size_t err_off;             /* AC_EPROTO: offset in buf of the byte that broke the
                                 * rule (where a limit was crossed); SIZE_MAX when the
                                 * rule names no byte (missing Host) or on success */
};

struct h1_response {
    int status;                 /* 100..999 */
    struct ac_slice reason_phrase;
    int minor;
    unsigned flags;
    enum h1_body body;          /* decided with the request method, see h1_parse_response */
    uint64_t content_length;
    struct h1_header *hdrs;
    unsigned nhdrs;
    enum h1_error error;
    const char *reason;
    size_t err_off;             /* as in h1_request */
};

/*
 * Parse a request head from buf[0..len).
 *   req->hdrs must point to an array of lim->max_headers entries.
 * Returns the number of bytes the head occupies (start line to the empty
 * line, inclusive, > 0); AC_AGAIN if the head is incomplete (and no limit is
 * exceeded yet); AC_EPROTO if it is invalid, with req->error and req->reason
 * set.  Leading empty lines before the request line (RFC 9112 §2.2) are
 * skipped and counted in the return value.
 *
 * Rejected (400 unless noted): bare CR, bare LF, NUL or other CTLs in the
 * start line or a field line; obs-fold; whitespace between field name and
 * colon; an empty or invalid field name; a method that is not a token; a
 * request-target that does not match origin-form, absolute-form (http/https),
 * authority-form (CONNECT only) or asterisk-form (OPTIONS only), where the
 * path and query of origin- and absolute-form may hold any byte above 0x20
 * but DEL (the liberal grammar nginx and Varnish use: "[", "|", "{", "\",
 * raw UTF-8, a "%" that starts no escape), or only RFC 3986 characters and
 * valid pct-encoding with lim->strict_target; SP, HTAB, NUL and other
 * control bytes in a target are always rejected; an HTTP
 * version that is not HTTP/1.x (505 for other majors); missing Host on
 * HTTP/1.1; several Host fields; an invalid Host (RFC 3986 authority); an
 * absolute-form target whose authority disagrees with Host; Content-Length
 * with Transfer-Encoding; several differing or malformed Content-Length;
 * Transfer-Encoding whose final coding is not chunked, or "chunked" applied
 * twice (400); a transfer coding other than chunked (501: H1_ERR_TE_UNKNOWN);
 * Transfer-Encoding on HTTP/1.0.  414 for a target over max_target, 431 for a
 * head over max_head, a field line over max_header_line or more than
 * max_headers fields.
 *
 * Details the caller may rely on:
 * - Limits are enforced on incomplete heads too: a buffer already longer than
 *   max_head, a partial target longer than max_target, a partial field line
 *   longer than max_header_line fail at once.  max_head counts from buf[0],
 *   leading empty lines included; max_header_line counts a field line without
 *   its CR LF.  An incomplete start line that is already invalid (not a
 *   token method, TLS or other non-HTTP bytes, a bad version) fails at once.
 * - Bare LF is never a line end (nor in responses or chunked framing).
 * - Content-Length: 0 gives H1_BODY_LENGTH with content_length 0.
 * - An empty Host value is accepted (RFC 9110 §7.2); host.len is then 0.
 * - absolute-form: "http://a?q" (query without path) is rejected, so path is
 *   always a valid origin-form to forward.  path may be the static "/".
 *   asterisk-form: path is "*"; authority-form (CONNECT): path is empty and
 *   host is the Host field (the tunnel goes to target).
 * - Expect: 100-continue sets H1_F_EXPECT_100 on HTTP/1.1 only (RFC 9110
 *   §10.1.1); any other expectation sets H1_F_EXPECT_OTHER (answer 417).
 * - Connection: upgrade plus an Upgrade field sets H1_F_UPGRADE on HTTP/1.1
 *   only (RFC 9110 §7.8).
 */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_request *req);

/*
 * Parse a response head from buf[0..len).
 *   req_method: the method of the request this answers (decides H1_BODY_NONE
 *   for HEAD and for 2xx to CONNECT).
 * Body framing per RFC 9112 §6.3: 1xx, 204, 304 and answers to HEAD have no
 * body; Transfer-Encoding chunked (final coding) is chunked; a Transfer-Encoding
 * without chunked final is close-delimited; otherwise Content-Length; otherwise
 * close-delimited.  Content-Length together with Transfer-Encoding: TE wins but
 * the message is flagged invalid for reuse (H1_F_CLOSE set).  Invalid or
 * differing Content-Length values are AC_EPROTO (the proxy answers 502).
 * Returns bytes consumed, AC_AGAIN or AC_EPROTO as for requests.
 * H1_F_CLOSE is also set when the body is H1_BODY_CLOSE, and for
 * Transfer-Encoding in an HTTP/1.0 response (still framed by it, RFC 9112
 * §6.1).  content_length is filled whenever a valid Content-Length was
 * present, even when it does not frame the body (HEAD, 304).  A missing SP
 * after the status code ("HTTP/1.1 200") is tolerated; the reason phrase is
 * then empty.  error is H1_ERR_VERSION for a major version other than 1,
 * H1_ERR_BAD otherwise.
 */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      struct ac_slice req_method, struct h1_response *resp);

/*
 * The canonical form of a request-target's path and query for cache keys:
 * every byte the strict grammar (lim->strict_target) refuses is written
 * as %XX (upper-case hex), everything else as received, so "/a[b]" and
 * "/a%5Bb%5D" (what a browser sends for the same link) name one object.
 * A "%" that starts a valid escape is kept; one that does not becomes
 * "%25".  Existing escapes are not decoded or re-cased (dot-segment and
 * percent normalisation is a separate step).  out must have room for 3 * n
 * bytes; returns the bytes written.  The result is itself a valid strict
 * target (when p is a path), and canonicalising it again changes nothing.
 */
size_t h1_target_canon(const char *p, size_t n, char *out);

/* Find a header by case-insensitive name; NULL if absent.  Returns the first. */
const struct h1_header *h1_header_find(const struct h1_header *hdrs, unsigned n,
                                       struct ac_slice name);

/* True if the comma-separated list value contains token tok (case-insensitive,
 * OWS around elements ignored, parameters after ';' ignored). */
bool h1_list_has_token(struct ac_slice value, struct ac_slice tok);

/*
 * Incremental chunked-body decoder (RFC 9112 §7.1).  It keeps its state
 * between calls so body bytes can be streamed as they arrive.  Chunk
 * extensions are validated and skipped; trailer fields are validated and
 * skipped (a proxy may drop trailers).
 */
enum h1_chunk_state {
    H1_CS_SIZE = 0, H1_CS_SIZE_DIGITS, H1_CS_EXT, H1_CS_SIZE_LF, H1_CS_DATA,
    H1_CS_DATA_CR, H1_CS_DATA_LF, H1_CS_TRAILER_START, H1_CS_TRAILER_LINE,
    H1_CS_TRAILER_LF, H1_CS_FINAL_LF, H1_CS_DONE,
};

struct h1_chunked {
    enum h1_chunk_state state;
    uint64_t remaining;         /* bytes left in the current chunk */
    uint64_t total;             /* decoded body bytes so far */
    size_t line_len;            /* length of the current size/extension/trailer line */
    unsigned ndigits;
    size_t max_line;            /* limit for a size line or a trailer line (0: 4096) */
    const char *reason;         /* why decoding failed */
    unsigned _sub;              /* private: position inside a chunk-ext or trailer line */
};

void h1_chunked_init(struct h1_chunked *c);

/*
 * Decode from buf[0..len).  Consumes framing bytes and at most one run of
 * data bytes; on return *data is the run of body bytes found (inside buf,
 * possibly empty) and the return value is the number of input bytes
 * consumed (>= data->len; may be 0 only when len == 0).  Call again with the
 * rest of the input.  When the terminating chunk and trailers have been
 * consumed, c->state == H1_CS_DONE and no further input is consumed.
 * Returns AC_EPROTO with c->reason set on invalid framing (bad hex, size
 * overflow over 2^62, missing CRLF after data, bare LF or CR, line too long).
 * A call consumes framing, one run of data and the framing after it.  When
 * invalid framing follows a run of data in the same call, the call returns
 * that data normally and the error comes from the next call, so output and
 * verdict do not depend on how the input was split.  Whitespace after the
 * size or after an extension (not followed by ";" or "=") is invalid.
 */
long h1_chunked_decode(struct h1_chunked *c, const char *buf, size_t len, struct ac_slice *data);

static inline bool
h1_chunked_done(const struct h1_chunked *c)
{
    return c->state == H1_CS_DONE;
}

#endif /* H1_PARSE_H */
