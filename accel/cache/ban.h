/*
 * ban.h -- ban expressions: parse once, evaluate against many objects.
 *
 * A ban is a condition over a cached object and the request that created it
 * (Varnish's ban() / varnishadm "ban"): conditions joined by "&&", each
 * "FIELD OP ARG".
 *
 *   FIELD  req.url | req.http.NAME | obj.status | obj.http.NAME | obj.ttl | obj.age
 *          (header NAMEs are case-insensitive; the canonical text lowercases them)
 *   OP     strings (req.url, req.http.*, obj.http.*): ==  !=  ~  !~
 *          numbers (obj.status, obj.ttl, obj.age):     ==  !=  <  >  <=  >=
 *   ARG    "double quoted" (\" and \\ are escapes; any other backslash is
 *          kept as is, so "\d+" reaches PCRE2 as \d+), or a bare word that
 *          runs to the next whitespace (so "req.url ~ ^/a&&x" is one regex:
 *          put spaces around "&&").  obj.status takes an integer 0..999;
 *          obj.ttl / obj.age take a duration: a number with a unit
 *          ms s m h d w y ("10s", "1.5m"), as in VCL; at most a
 *          microsecond of precision and 1e15 seconds either way.
 *
 * Example: obj.http.content-type ~ "^image/" && req.url ~ "^/blog/"
 *
 * "||" is refused (Varnish bans have only AND: send two bans instead).
 * Regexes are PCRE2, compiled (and JIT-compiled when available) at parse time;
 * "(?i)" etc. work as in PCRE.  Limits: BAN_MAX_TEXT bytes of text,
 * BAN_MAX_COND conditions; NUL bytes are refused.
 *
 * Semantics (as in Varnish):
 *   - An absent header never equals a string and never matches a regex, so
 *     "!=" and "!~" on an absent header are true.
 *   - All conditions must hold for the ban to match.
 *   - If PCRE2 fails while matching (match/heap limit hit on a pathological
 *     pattern), the condition counts as true for both ~ and !~: a ban errs
 *     towards invalidating (a refetch) rather than serving banned content.
 */
#ifndef BAN_H
#define BAN_H

#include "ac.h"

#define BAN_MAX_TEXT   8192   /* bytes of ban text accepted by ban_parse */
#define BAN_MAX_COND   32     /* conditions per ban */

struct ban;   /* opaque; immutable after ban_parse */

/*
 * Parse a ban expression.
 * [in]  text    the expression; not NUL-terminated; only read during the call.
 * [out] out     on success, a new ban owned by the caller (release: ban_free).
 * [out] err     on failure, a NUL-terminated message such as
 *               "col 12: expected operator (== != ~ !~ < > <= >=) near 'foo'"
 *               (columns count bytes from 1).  May be NULL if errlen is 0.
 * Returns 0, or -1 (bad expression; *out untouched).  Allocates only here:
 * the ban, its conditions, its compiled regexes and its canonical text.
 * Out of memory aborts (ac_xmalloc), except inside PCRE2, reported as -1.
 */
int ban_parse(struct ac_slice text, struct ban **out, char *err, size_t errlen);

/* Release a ban and set *b to NULL.  *b may be NULL. */
void ban_free(struct ban **b);

/*
 * The canonical text: conditions sorted, duplicates removed, each printed as
 * FIELD OP "ARG" (header names lowercased; args always quoted with \" and \\
 * escaped; obj.status as a decimal; durations in seconds, e.g. "60s"), joined
 * by " && ".  Equivalent inputs give equal strings (use it to deduplicate);
 * ban_parse() of it gives the same ban again.  Owned by the ban, valid until
 * ban_free().
 */
const char *ban_text(const struct ban *b);

/* Header lookup for ban_match(): return true and *value (valid until
 * ban_match() returns) if the header is present.  name is lowercased. */
typedef bool ban_header_f(void *arg, struct ac_slice name, struct ac_slice *value);

/* What the evaluator needs from an object.  All slices need only stay valid
 * for the duration of ban_match(). */
struct ban_obj {
    struct ac_slice url;     /* request URL the object was fetched for (may be empty) */
    struct ac_slice host;    /* request Host; if non-empty it answers req.http.host,
                                otherwise req_header() is asked */
    unsigned status;
    /* Header lookup in the object's stored headers and in the request that
     * made it: return true and *value if present.  Either may be NULL (then
     * every such header is absent).  Called with arg; must be thread-safe if
     * ban_match runs on several threads over the same object. */
    ban_header_f *obj_header;
    ban_header_f *req_header;
    void *arg;
    double ttl_left, age;    /* seconds, for obj.ttl / obj.age */
};

/*
 * Whether object o matches ban b (every condition holds).
 * Thread-safe: any number of threads may evaluate the same ban at once.
 * No heap allocation in steady state: regex matching uses one PCRE2 match
 * data per thread, created on the thread's first regex match and freed at
 * thread exit (pthread key destructor); PCRE2 keeps its backtracking frames
 * in it, so they are only (re)allocated when a pattern needs more than any
 * earlier one on that thread.
 */
bool ban_match(const struct ban *b, const struct ban_obj *o);

/* Whether the ban reads req.* (the background lurker, which has no request,
 * can only evaluate bans for which this is false). */
bool ban_uses_req(const struct ban *b);

#endif /* BAN_H */
