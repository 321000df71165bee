/*
 * h2.h -- the HTTP/2 server connection (RFC 9113), without sockets.
 *
 * libnghttp2 does the framing, HPACK and the protocol's state rules; this
 * layer owns the session logic: which streams exist and what they cost,
 * the limits and attack defences (each one a setting and an event the
 * caller counts), request heads turned into the HTTP/1.1-shaped request the
 * request machine knows, request bodies buffered within the flow-control
 * window and released as the request takes them, and response bodies taken
 * by reference with backpressure per stream.
 *
 * Bytes in: h2_conn_recv().  Bytes out: h2_conn_output() hands out what is
 * ready (frames are copied once, into a bounded output buffer; a response
 * body is read in place until then), h2_conn_output_done() says how much
 * the socket took.  Time is a parameter (now, seconds): the layer never
 * reads the clock.
 *
 * Upcalls (struct h2_ops) are never made from inside libnghttp2: its
 * callbacks only record what happened on the stream, and the events are
 * delivered once the library returned, from h2_conn_recv(),
 * h2_conn_output() or h2_conn_tick().  An upcall may call any h2_stream_*
 * or h2_conn_* function.
 *
 * Stream lifetime: a stream is created by the client's HEADERS and handed
 * up by on_request().  From then on the upper layer holds it until it calls
 * h2_stream_release(), even after the stream closed on the wire (a reset:
 * on_close() says so).  Calls on a closed stream are harmless no-ops
 * (AC_ECLOSED).  Only h2_conn_free() takes streams away (on_close() with
 * final set).
 */
#ifndef AC_H2_H
#define AC_H2_H

#include "ac.h"
#include "h1_parse.h"

struct h2_conn;
struct h2_stream;

/* The connection preface a client sends first (RFC 9113 §3.4); a plain
 * listener that sees it speaks h2c ("prior knowledge"). */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Error codes of RFC 9113 §7 (GOAWAY, RST_STREAM). */
#define H2_NO_ERROR 0x0u
#define H2_PROTOCOL_ERROR 0x1u
#define H2_INTERNAL_ERROR 0x2u
#define H2_FLOW_CONTROL_ERROR 0x3u
#define H2_REFUSED_STREAM 0x7u
#define H2_CANCEL 0x8u
#define H2_ENHANCE_YOUR_CALM 0xbu

/* Limits and defaults: one -p parameter each (docs/guide.md, "HTTP/2"). */
struct h2_settings {
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS; also the live
                                      * requests (reset streams still working) per connection */
    uint32_t max_header_list;        /* decoded request head (RFC 9113 §6.5.2 counting): 431 */
    uint32_t max_fields;             /* request fields, cookie crumbs not counted: 431 */
    uint32_t max_target;             /* :path length: 414 */
    uint32_t header_table_size;      /* HPACK dynamic table, both directions */
    uint32_t initial_window;         /* per-stream receive window (request bodies) */
    uint32_t conn_window;            /* connection receive window */
    uint32_t max_frame_size;         /* SETTINGS_MAX_FRAME_SIZE we accept */
    uint32_t max_continuations;      /* CONTINUATION frames after one HEADERS (CVE-2024-27316) */
    uint32_t max_resets;             /* stream resets (either side) per 10 s (CVE-2023-44487) */
    uint32_t max_settings;           /* SETTINGS frames per 10 s */
    uint32_t max_pings;              /* PING frames per 10 s */
    uint32_t max_empty;              /* empty DATA without END_STREAM, PRIORITY frames, per 10 s */
    size_t out_buffer;               /* output buffered before the socket takes it */
    double send_timeout;             /* a stream with data the client's window holds back */
    double head_timeout;             /* a request head split over frames must end in time */
    double idle_timeout;             /* no stream open: GOAWAY and close */
};

/* What happened, for the caller's counters (stat.h) and debug log. */
#define H2_EVENTS(X) \
    X(H2_EV_STREAM, "a stream (request) was opened") \
    X(H2_EV_REFUSED, "a stream was refused: max concurrent streams or live requests") \
    X(H2_EV_HEADER_TOO_LARGE, "a request head over max_header_list got 431") \
    X(H2_EV_BAD_REQUEST, "a malformed request got 400 (Host and :authority differ, ...)") \
    X(H2_EV_CONTINUATION_FLOOD, "too many CONTINUATION frames: GOAWAY") \
    X(H2_EV_RAPID_RESET, "too many stream resets: GOAWAY ENHANCE_YOUR_CALM") \
    X(H2_EV_SETTINGS_FLOOD, "too many SETTINGS frames: GOAWAY ENHANCE_YOUR_CALM") \
    X(H2_EV_PING_FLOOD, "too many PING frames: GOAWAY ENHANCE_YOUR_CALM") \
    X(H2_EV_EMPTY_FLOOD, "too many empty DATA / PRIORITY frames: GOAWAY ENHANCE_YOUR_CALM") \
    X(H2_EV_ACK_FLOOD, "the client does not read its SETTINGS/PING acknowledgements") \
    X(H2_EV_PROTOCOL_ERROR, "a connection error (GOAWAY with an RFC 9113 error code)") \
    X(H2_EV_STREAM_ERROR, "a stream error (RST_STREAM from us)") \
    X(H2_EV_CLIENT_RESET, "the client reset a stream") \
    X(H2_EV_STALLED, "a stream reset: its window stayed closed for send_timeout") \
    X(H2_EV_HEAD_TIMEOUT, "a request head not finished within head_timeout: GOAWAY") \
    X(H2_EV_IDLE, "no stream for idle_timeout: GOAWAY, close") \
    X(H2_EV_GOAWAY, "a graceful GOAWAY (shutdown, reload)")

enum h2_event {
#define X(e, help) e,
    H2_EVENTS(X)
#undef X
    H2_EV__MAX
};

/* The name of an event ("H2_EV_STREAM"). */
const char *h2_event_name(enum h2_event ev);

/*
 * A request head as the request machine knows it from HTTP/1.1: method,
 * target (:path), host (:authority, or the Host field), the regular fields
 * (names lower case, as HTTP/2 sends them; several cookie fields joined by
 * "; " as RFC 9113 §8.2.3 asks before HTTP/1.1 sees them; a host field
 * added from :authority when the client sent none), minor 1, flags
 * H1_F_EXPECT_100 / H1_F_EXPECT_OTHER / H1_F_HAS_TE as the HTTP/1.1 parser
 * sets them, H1_F_AUTHORITY_FORM for CONNECT.  body is
 * H1_BODY_NONE (END_STREAM on the HEADERS), H1_BODY_LENGTH (a
 * content-length, which libnghttp2 holds the DATA frames to) or
 * H1_BODY_CHUNKED, meaning "a body of unknown length follows".  Slices are
 * valid until the stream is released.
 */
struct h2_request {
    struct h1_request req;
    struct ac_slice scheme;
};

struct h2_ops {
    /* A stream's request head is complete (rq: see above).  Return the
     * upper layer's handle, passed to the stream upcalls below, or NULL to
     * refuse the stream (RST_STREAM REFUSED_STREAM).  A stream the upper
     * layer answered and released within the call is done: the return
     * value is then ignored. */
    void *(*on_request)(void *conn_ud, struct h2_stream *st, const struct h2_request *rq);
    /* New request body bytes, or the body's end (h2_stream_body()). */
    void (*on_body)(void *ud);
    /* The chunk given to h2_stream_write() is out: the stream takes more. */
    void (*on_writable)(void *ud);
    /* The stream ended on the wire before its response did: reset by the
     * client (error: its code) or by us, or the connection is closing.
     * The upper layer still holds it and releases it when its request is
     * done: until then it counts against max_concurrent_streams (a request
     * that goes on without its client, like a fill for other waiters, is
     * still work the client made).  final: the connection is being freed
     * (h2_conn_free()): the stream is released when the call returns and
     * must not be used again. */
    void (*on_close)(void *ud, uint32_t error, bool final);
    /* Counters and debug log; may be NULL. */
    void (*on_event)(void *conn_ud, enum h2_event ev);
    /* The layer answered a request itself (status 400 or 431, why): the
     * access log; may be NULL. */
    void (*on_reject)(void *conn_ud, const struct h2_request *rq, int status, const char *why);
};

/*
 * A server connection.  The client's preface is expected first (the bytes
 * of a prior-knowledge h2c client included: hand them to h2_conn_recv()).
 * Our SETTINGS are queued at once.  NULL when libnghttp2 cannot allocate.
 */
struct h2_conn *h2_conn_new(const struct h2_settings *set, const struct h2_ops *ops,
                            void *conn_ud, double now);
/* Free the connection: streams the upper layer still holds get
 * on_close(final) first. */
void h2_conn_free(struct h2_conn **hp);

/*
 * Bytes from the client.  Returns 0, or AC_EPROTO when the connection is
 * over (a protocol error, a flood: the GOAWAY saying so is queued; write
 * out what h2_conn_output() still has, then close).
 */
int h2_conn_recv(struct h2_conn *h, const void *p, size_t len, double now);

/*
 * Frames ready for the socket: fills the output buffer from the streams
 * (as far as the client's windows and out_buffer allow) and returns it
 * (empty when nothing is ready).  The slice is valid until the next
 * h2_conn_* call.
 */
struct ac_slice h2_conn_output(struct h2_conn *h, double now);
/* The socket took n bytes of the slice h2_conn_output() returned. */
void h2_conn_output_done(struct h2_conn *h, size_t n, double now);

/* Should the caller read from the client now?  False while the output
 * buffer is full (a client that does not read stops being read). */
bool h2_conn_want_read(const struct h2_conn *h);
/* Nothing more to read or write: close the connection (after writing what
 * h2_conn_output() returns). */
bool h2_conn_finished(const struct h2_conn *h);
/* Streams open on the wire or still held by the upper layer. */
unsigned h2_conn_nstreams(const struct h2_conn *h);

/*
 * Timeouts (call about once a second, and when the deadline of
 * h2_conn_deadline() passes): a stream whose window stayed closed with
 * data waiting for send_timeout is reset (H2_EV_STALLED); a request head
 * unfinished after head_timeout, or no stream for idle_timeout, ends the
 * connection with GOAWAY.
 */
void h2_conn_tick(struct h2_conn *h, double now);
/* The next time h2_conn_tick() has something to check (absolute). */
double h2_conn_deadline(const struct h2_conn *h);

/*
 * Graceful end (shutdown, reload): GOAWAY now announces the end, a second
 * GOAWAY names the last stream served once the client had a round trip to
 * see the first; streams in flight finish, then h2_conn_finished().
 */
void h2_conn_goaway(struct h2_conn *h, double now);
/* Is the connection going away (GOAWAY sent or received)? */
bool h2_conn_closing(const struct h2_conn *h);

/* ------------------------------------------------------------ streams */

/* The stream id (for logs). */
int32_t h2_stream_id(const struct h2_stream *st);

/*
 * The response head: status and fields (any case: names are lowered;
 * connection-specific fields -- Connection and those it names, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade -- are dropped, RFC 9113
 * §8.2.2).  body false: the response ends with its head (HEAD, 304, 204).
 * A status 100..199 is an interim response (103), with more to follow.
 * Returns 0, AC_ECLOSED (stream gone) or AC_EPROTO (called twice).
 */
int h2_stream_respond(struct h2_stream *st, int status, const struct h1_header *fields,
                      unsigned nfields, bool body);

/*
 * A piece of the response body, by reference: p stays valid and unchanged
 * until on_writable() (or the release).  One piece at a time: AC_AGAIN
 * while the previous one is not out.  last: the body ends with it (len may
 * be 0).  Returns 0, AC_AGAIN, AC_ECLOSED.
 */
int h2_stream_write(struct h2_stream *st, const void *p, size_t len, bool last);
/* Did the stream close on the wire (reset, or both sides ended)? */
bool h2_stream_closed(const struct h2_stream *st);
/* Is there room for h2_stream_write() now? */
bool h2_stream_writable(const struct h2_stream *st);
/* Response body bytes the client has taken into its window so far (sent). */
uint64_t h2_stream_bytes_sent(const struct h2_stream *st);

/*
 * The request body received so far and not consumed: *out is valid until
 * the next h2_conn_recv(); *end: no more will come (END_STREAM).
 */
void h2_stream_body(struct h2_stream *st, struct ac_slice *out, bool *end);
/* n bytes of that body were taken: the client may send as many more. */
void h2_stream_body_consume(struct h2_stream *st, size_t n);

/* Reset the stream (error code, RFC 9113 §7). */
void h2_stream_reset(struct h2_stream *st, uint32_t error);
/*
 * The upper layer is done with the stream.  A response that did not end
 * (no last piece) resets it with INTERNAL_ERROR (CANCEL when it was reset
 * already); a request body not read is refused with RST_STREAM NO_ERROR
 * after a complete response (RFC 9113 §8.1).  Clears *stp.
 */
void h2_stream_release(struct h2_stream **stp);

#endif /* AC_H2_H */
