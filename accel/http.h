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

#endif /* AC_HTTP_H */
