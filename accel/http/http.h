/*
 * http.h -- HTTP semantics shared by the client and origin sides: hop-by-hop
 * fields (RFC 9110 §7.6.1), method properties, reason phrases.
 */
#ifndef AC_HTTP_H
#define AC_HTTP_H

#include "ac.h"
#include "h1_parse.h"

/* True for fields a proxy must not forward: Connection, Keep-Alive, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-* (and Proxy-Connection). */
bool http_is_hop_by_hop(struct ac_slice name);
/* True if a Connection field of the message lists name. */
bool http_conn_lists(const struct h1_header *hdrs, unsigned n, struct ac_slice name);
/* Safe + idempotent methods that may be retried on a fresh connection. */
bool http_method_idempotent(struct ac_slice m);
/* Standard reason phrase, or "Unknown". */
const char *http_reason(int status);
/* The body of the answer to a request head the parser refused, so a person
 * with curl sees why: "Bad request: control character in request-target
 * (byte 6)\n".  what: the generic text ("Bad request\n"); reason: the
 * parser's rule or NULL; off: the byte (SIZE_MAX: none).  Into buf
 * (NUL-terminated, truncated to len). */
void http_bad_request_body(char *buf, size_t len, const char *what, const char *reason,
                           size_t off);



/* HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, obsolete RFC 850 and asctime
 * forms.  Returns true and the time in *t on success. */
bool http_date_parse(struct ac_slice s, double *t);
/* IMF-fixdate of t into buf (at least 30 bytes); returns the length (29). */
size_t http_date_fmt(double t, char *buf);
/* Non-negative decimal delta-seconds; values past 2^31 clamp to 2^31
 * (RFC 9111 §1.2.2).  false if not a number. */
bool http_delta_seconds(struct ac_slice s, int64_t *out);
#endif /* AC_HTTP_H */
