/*
 * stat.h -- counters.  One X-macro table; each worker owns a struct stats
 * that only its thread writes (relaxed atomic reads from elsewhere).
 */
#ifndef AC_STAT_H
#define AC_STAT_H

#include "ac.h"

#define STAT_COUNTERS(X) \
    X(client_conn, "client connections accepted") \
    X(client_conn_refused, "client connections refused (max_connections)") \
    X(client_req, "client requests received") \
    X(client_req_bad, "requests rejected as malformed (400/414/431/501/505)") \
    X(client_timeout, "client connections closed by a timeout") \
    X(backend_conn, "origin connections opened") \
    X(backend_reuse, "origin connections reused from the idle pool") \
    X(backend_retry, "requests retried (dead pooled connection, or moved to another server)") \
    X(backend_fail, "origin connect failures") \
    X(backend_timeout, "origin timeouts (connect, first byte, between bytes)") \
    X(backend_req, "requests sent to origins") \
    X(resp_502, "502 answers") \
    X(resp_504, "504 answers") \
    X(tunnel, "upgraded connections tunnelled") \
    X(tls_handshake, "TLS handshakes completed") \
    X(tls_resumed, "TLS handshakes that resumed a session (ticket)") \
    X(tls_handshake_fail, "TLS handshakes failed (bad or plain-HTTP client, timeout)") \
    X(cache_hit, "requests answered from a fresh object") \
    X(cache_miss, "lookups that fetched (busy object created)") \
    X(cache_coalesced, "requests that waited on another request's fetch") \
    X(cache_pass, "requests passed to the origin (method, credentials)") \
    X(cache_hitmiss, "requests passed because of a hit-for-miss marker") \
    X(cache_stale, "stale objects served within grace") \
    X(cache_stale_error, "stale objects served because the origin failed") \
    X(cache_revalidated, "objects freshened by a 304") \
    X(cache_bgfetch, "background refreshes started") \
    X(cache_uncacheable, "responses not stored") \
    X(cache_invalidated, "objects invalidated by unsafe methods") \
    X(gzip_stored, "objects gzip-compressed by accel while filling") \
    X(gzip_gunzipped, "objects stored decompressed (beresp.do_gunzip)") \
    X(gzip_decoded, "deliveries decompressed on the fly (client takes neither gzip nor br)") \
    X(gzip_corrupt, "corrupt gzip or brotli bodies (origin or stored) refused") \
    X(brotli_delivered, "deliveries of an object's brotli body") \
    X(h2_conn, "HTTP/2 connections (ALPN h2, or the h2c preface)") \
    X(h2_stream, "HTTP/2 streams (requests)") \
    X(h2_refused, "HTTP/2 streams refused (h2_max_concurrent_streams)") \
    X(h2_header_too_large, "HTTP/2 requests answered 431 (h2_max_header_list, max_headers)") \
    X(h2_bad_request, "HTTP/2 requests answered 400/414 (Host and :authority differ, ...)") \
    X(h2_continuation_flood, "HTTP/2 connections ended: CONTINUATION flood (h2_max_continuations)") \
    X(h2_rapid_reset, "HTTP/2 connections ended: too many stream resets (h2_max_resets)") \
    X(h2_settings_flood, "HTTP/2 connections ended: SETTINGS flood (h2_max_settings)") \
    X(h2_ping_flood, "HTTP/2 connections ended: PING flood (h2_max_pings)") \
    X(h2_empty_flood, "HTTP/2 connections ended: empty-frame flood (h2_max_empty_frames)") \
    X(h2_ack_flood, "HTTP/2 connections ended: acknowledgements never read") \
    X(h2_protocol_error, "HTTP/2 connections ended by a protocol error (GOAWAY)") \
    X(h2_stream_error, "HTTP/2 streams reset by accel for a protocol error") \
    X(h2_client_reset, "HTTP/2 streams reset by the client") \
    X(h2_stalled, "HTTP/2 streams reset: the client's window stayed shut (send_timeout)") \
    X(h2_head_timeout, "HTTP/2 connections ended: a request head not finished (timeout_req_head)") \
    X(h2_idle, "HTTP/2 connections closed idle (timeout_idle)") \
    X(h2_goaway, "HTTP/2 graceful GOAWAYs (shutdown, reload)") \
    X(cluster_peer_fetch, "cache fetches sent to the cluster member owning the key") \
    X(cluster_peer_fallback, "peer fetches that failed and went to the origin instead") \
    X(cluster_peer_request, "requests that came from a cluster member (never forwarded)")

struct stats {
#define X(name, help) uint64_t name;
    STAT_COUNTERS(X)
#undef X
};

/* Only the owning worker writes its counters: a relaxed load and store
 * (plain instructions, no lock prefix) keep readers on other threads (the
 * admin listener's GET /stats) free of data races. */
#define STAT_ADD(w, name, n)                                                                 \
    __atomic_store_n(&(w)->stats.name,                                                       \
                     __atomic_load_n(&(w)->stats.name, __ATOMIC_RELAXED) + (uint64_t)(n),    \
                     __ATOMIC_RELAXED)
#define STAT_INC(w, name) STAT_ADD(w, name, 1)

/* Add one worker's counters (read from any thread) into sum. */
static inline void
stats_accumulate(struct stats *sum, const struct stats *one)
{
#define X(name, help) sum->name += __atomic_load_n(&one->name, __ATOMIC_RELAXED);
    STAT_COUNTERS(X)
#undef X
}

#endif /* AC_STAT_H */
