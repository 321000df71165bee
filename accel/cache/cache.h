/*
 * cache.h -- HTTP caching rules (RFC 9111 as a shared cache, RFC 9213
 * targeted fields, RFC 5861 stale-*), as pure functions over parsed
 * messages: cache keys, request classification, storability and lifetimes,
 * Age, Vary selectors, the stored header block, conditional requests and
 * ranges.  No I/O and no store calls: sessions (cache_sess.c) use these.
 */
#ifndef AC_CACHE_H
#define AC_CACHE_H

#include "ac.h"
#include "buf.h"
#include "h1_parse.h"

/* The defaults a policy can change, from -p parameters. */
struct cache_params {
    double default_grace;       /* stale-while-revalidate when the origin says nothing */
    double default_keep;        /* kept past grace for revalidation (objects with validators) */
    double hfm_ttl;             /* lifetime of a hit-for-miss marker */
    double heuristic_fraction;  /* of (Date - Last-Modified) */
    double heuristic_max;       /* cap of a heuristic lifetime */
    double max_object_size;     /* larger bodies stream through, not stored */
    struct ac_slice targeted_cc;/* "Accel-Cache-Control" by default */
};

/* Cache-Control directives that matter to a shared cache.  -1: absent. */
struct cache_cc {
    bool present;
    bool no_store, no_cache, private_, public_, must_revalidate, proxy_revalidate;
    bool must_understand, no_transform, immutable;
    int64_t max_age, s_maxage, swr, sie;
    bool invalid;               /* a directive we need had a bad value: treat as stale */
    unsigned ndirectives;       /* directives seen (an empty field has none) */
};

void cache_cc_init(struct cache_cc *cc);
/* Parse one field value into cc (several field lines accumulate; for a
 * repeated directive the first occurrence wins, RFC 9111 §4.2.1). */
void cache_cc_parse(struct cache_cc *cc, struct ac_slice value);

/* Cache key of a request: lower-cased host without a default port, a
 * newline, then the request-target path as received. */
void cache_key(const struct h1_request *req, struct ac_buf *out);

/* What the default policy does with a request. */
enum cache_req_kind {
    CACHE_REQ_LOOKUP,       /* GET/HEAD without Authorization or Cookie */
    CACHE_REQ_PASS,         /* other safe methods, or credentials */
    CACHE_REQ_UNSAFE,       /* POST/PUT/DELETE/PATCH/...: pass, then invalidate (§4.4) */
};
enum cache_req_kind cache_classify_request(const struct h1_request *req, const char **why);

/* The storage decision for a response. */
struct cache_decision {
    bool store;                 /* store the object */
    bool hfm;                   /* not stored: leave a hit-for-miss marker */
    double hfm_ttl;
    const char *why;            /* reason it is not stored (for logs and X-Cache-Reason) */
    double ttl, grace, keep;    /* store_times; insert = response time - initial_age */
    double stale_if_error;      /* seconds after ttl a stale copy may answer an error */
    double initial_age;         /* RFC 9111 §4.2.3 corrected_initial_age */
    double date;                /* origin Date (or response time when absent) */
    bool must_revalidate;       /* no stale serving of any kind */
    bool no_transform;
};

/*
 * Decide whether resp (the origin's answer to req, requested at req_time and
 * received at resp_time) may be stored, for how long, and with what grace.
 */
void cache_decide(const struct h1_request *req, const struct h1_response *resp, double req_time,
                  double resp_time, const struct cache_params *p, struct cache_decision *d);

/*
 * Variant selector (RFC 9111 §4.1) of req for resp's Vary fields, into sel.
 * Returns false for "Vary: *" (never matches: not storable).  Accept-Encoding
 * is not a selecting field: accel keeps encodings itself.  Empty when the
 * response has no Vary.
 */
bool cache_vary_selector(const struct h1_response *resp, const struct h1_request *req,
                         struct ac_buf *sel);
/* Does a stored selector match req? */
bool cache_vary_match(struct ac_slice sel, const struct h1_request *req);

/*
 * The header block stored with an object: a status line without the
 * version ("200 OK\r\n") and the header fields to send on every hit, each
 * "Name: value\r\n".  Excluded: hop-by-hop fields, Content-Length,
 * Transfer-Encoding, Age (recomputed), Set-Cookie, and the targeted
 * cache-control fields (consumed by accel).  Date is added when missing.
 */
void cache_block_build(const struct h1_response *resp, const struct cache_params *p,
                       double resp_time, struct ac_buf *out);
/*
 * 304 freshening (RFC 9111 §3.2, §4.3.4): a new block from the stored one
 * with every field the 304 carries replaced (except those cache_block_build
 * excludes, and Content-Length).
 */
void cache_block_freshen(struct ac_slice old, const struct h1_response *r304,
                         const struct cache_params *p, double resp_time, struct ac_buf *out);
/*
 * A stored block carries, after a NUL, the URL and Host of the request that
 * fetched the object ("\0url\0host"), so bans on req.url / req.http.host
 * can be evaluated on stored objects, even by the background ban pass.
 * cache_block_seal() appends them; cache_block_visible() is the part sent to
 * clients; cache_block_origin() reads them back.
 */
void cache_block_seal(struct ac_buf *block, struct ac_slice url, struct ac_slice host);
struct ac_slice cache_block_visible(struct ac_slice block);
void cache_block_origin(struct ac_slice block, struct ac_slice *url, struct ac_slice *host);

/* Find a field in a stored block (first occurrence). */
bool cache_block_find(struct ac_slice block, struct ac_slice name, struct ac_slice *value);

/*
 * Conditional request evaluated against a stored response (RFC 9110
 * §13.2.2): true when the answer is 304 Not Modified.  If-None-Match
 * (weak comparison, "*") takes precedence over If-Modified-Since.
 */
bool cache_not_modified(const struct h1_request *req, struct ac_slice etag,
                        struct ac_slice last_modified);

/*
 * Range request against a complete body of len bytes (RFC 9110 §14):
 *  0   no range applies: answer 200 with the whole body (no Range, a
 *      multi-range, an If-Range that does not match, a syntax we ignore)
 *  206 one satisfiable range [*first, *last]
 *  416 unsatisfiable
 */
int cache_range(const struct h1_request *req, uint64_t len, struct ac_slice etag,
                struct ac_slice last_modified, uint64_t *first, uint64_t *last);

#endif /* AC_CACHE_H */
