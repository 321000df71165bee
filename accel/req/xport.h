/*
 * xport.h -- the transport interface: what the request machine (req.h)
 * needs from whatever carries a request's bytes.  HTTP/1.1 (client/h1.c)
 * implements it now, HTTP/2 next; an internal request (background
 * revalidation, later ESI includes and peer fetches) has no transport, or
 * one of its own (ESI: the body of the page being assembled).
 *
 * A transport turns bytes into requests: it fills the request head
 * (req_http()), calls req_start(), and serves the calls below for that
 * request until done().  Each request has its own struct xport (HTTP/1.1:
 * the connection's one; HTTP/2: one per stream), embedded in the
 * transport's own object and recovered with AC_CONTAINER_OF, so that
 * backpressure is per request: a call that cannot take more returns
 * AC_AGAIN, the request waits, and the transport calls req_resume() for
 * that request once it can take more.  Nothing blocks, nothing else waits.
 *
 * Directions: the transport calls down into the request machine (req.h);
 * the request machine calls the transport only through these ops.
 *
 * Validity of what the request hands over: head() and interim() read the
 * struct xp_head during the call only; the bytes a final head (blk, line,
 * reason) points to stay valid and unchanged until done(); those of an
 * interim head or of body iovecs until the call returned AC_OK or, after
 * AC_AGAIN, until the transport called req_resume().  A transport may keep the pointers (HTTP/1.1 writes them
 * with one writev) or copy the bytes (HTTP/2 frames them).
 *
 * Return codes of the ops: AC_OK (taken), AC_AGAIN (held: wait for
 * req_resume()), AC_ECLOSED (the client is gone: no more output, ever; the
 * request ends or goes on without a client, see done()).
 */
#ifndef AC_XPORT_H
#define AC_XPORT_H

#include "ac.h"
#include "buf.h"

#include <sys/types.h>
#include <sys/uio.h>

struct xport;
struct oconn;

/* How much body follows a response head. */
enum xp_body {
    XP_BODY_NONE,       /* nothing (HEAD, 1xx, 204, 304, 416, ...); a Content-Length
                         * among the fields describes the representation only */
    XP_BODY_LENGTH,     /* the fields carry Content-Length; that many bytes follow */
    XP_BODY_STREAM,     /* length unknown: the body ends with XP_W_END (HTTP/1.1
                         * chunked, HTTP/1.0 close-delimited, HTTP/2 END_STREAM) */
};

#define XP_HEAD_NBLK 4

/*
 * A response head in a form every transport can frame.  The fields are
 * HTTP/1 field lines ("Name: value\r\n", no empty line at the end) in up
 * to XP_HEAD_NBLK blocks, in order: a stored object's header block goes
 * out as it was stored, without parsing; HTTP/1.1 writes the blocks as they
 * are, HTTP/2 walks them with xp_fields_next().  The blocks never contain
 * framing or connection fields (Transfer-Encoding, Connection, Keep-Alive):
 * those are the transport's, decided from body and close below.
 * Content-Length is an end-to-end field and is among the fields when the
 * length is known.
 */
struct xp_head {
    unsigned status;
    struct ac_slice reason;     /* reason phrase for an HTTP/1 status line (as it is:
                                 * an origin's may be empty) */
    struct ac_slice line;       /* optional (len 0: none): the status line after the
                                 * version as stored ("200 OK\r\n"); HTTP/1.1 writes it
                                 * instead of status + reason */
    struct ac_slice blk[XP_HEAD_NBLK];
    unsigned nblk;
    enum xp_body body;
    bool close;                 /* the request asks to end the connection after this
                                 * response (a bad request, a body left unread); HTTP/1.1
                                 * sends Connection: close, HTTP/2 ignores it */
};

/* Walk the fields of a head (HTTP/2 HPACK-encodes them one by one). */
struct xp_field_iter {
    const struct xp_head *h;
    unsigned blk;
    size_t off;
};

void xp_fields_init(struct xp_field_iter *it, const struct xp_head *h);
/* The next field: name as written, value without the surrounding
 * whitespace, both pointing into the head's blocks.  false at the end.
 * Lines without a colon (never written by accel) are skipped. */
bool xp_fields_next(struct xp_field_iter *it, struct ac_slice *name, struct ac_slice *value);

/* flags of write() */
#define XP_W_END 0x1u           /* these bytes end the body (may be none) */

/* How a request ended, for done(). */
enum xp_end {
    XP_END_OK,          /* the response went out whole: the transport may go on */
    XP_END_ABORT,       /* cut short, or no response at all: the peer must see that
                         * (HTTP/1.1 closes the connection without a last chunk and
                         * without close_notify; HTTP/2 resets the stream) */
};

struct xport_ops {
    /*
     * Queue a 1xx interim response (103 Early Hints).  AC_OK, AC_AGAIN,
     * AC_ECLOSED.
     */
    int (*interim)(struct xport *x, const struct xp_head *h);
    /*
     * Queue the final response head.  It may wait for the first write()
     * (HTTP/1.1 sends head and a small body with one writev), so a
     * response with no body still ends with write(x, NULL, 0, XP_W_END).
     * AC_OK or AC_ECLOSED (never AC_AGAIN).
     */
    int (*head)(struct xport *x, const struct xp_head *h);
    /*
     * Body bytes, in order, after head().  The transport frames them
     * (HTTP/1.1 chunked for XP_BODY_STREAM).  At most XP_MAX_IOV entries.
     * With XP_W_END the body is complete after them.  AC_OK: all taken;
     * AC_AGAIN: held, req_resume() follows when they are out; AC_ECLOSED.
     */
    int (*write)(struct xport *x, const struct iovec *iov, int n, unsigned flags);
    /*
     * The request body is going to be read (HTTP/1.1 sends 100 Continue
     * when the client asked for it).  AC_OK, AC_ECLOSED.
     */
    int (*body_begin)(struct xport *x);
    /*
     * The next request body bytes, without consuming them: > 0 bytes at
     * *out (valid until body_consume() or done()); 0: the body is
     * complete and consumed; AC_AGAIN: nothing yet (req_resume() follows);
     * AC_EPROTO: bad framing (answer 400); AC_ETIMEDOUT: the client sends
     * too slowly (answer 408); AC_ECLOSED: the client is gone.
     * For a chunked request (head.body == H1_BODY_CHUNKED) the bytes are
     * the client's validated chunked framing when xport.flags has
     * XP_F_RAW_CHUNKED (HTTP/1.1: forwarded as received), else plain body
     * bytes that the origin request frames itself.  The first call after
     * body_begin() returns only once the framing is known to start well,
     * so a broken body is refused before anything reaches an origin.
     */
    ssize_t (*body_read)(struct xport *x, struct ac_slice *out);
    void (*body_consume)(struct xport *x, size_t n);
    /*
     * Hand an origin connection over: from now on the transport copies
     * bytes both ways until both sides have closed (Upgrade after 101, or
     * return (pipe)).  h: the 101 head to send first, or NULL (pipe);
     * from_origin: bytes read from the origin after its head (moved to the
     * transport).  The transport owns oc from the call on (pool_close()),
     * and calls req_resume() when the tunnel has ended; the request then
     * finishes (done(), XP_END_ABORT: the connection ends).  NULL in transports that
     * cannot tunnel (HTTP/2): the request machine then treats pipe as pass,
     * as Varnish does.  AC_OK or AC_ECLOSED.
     */
    int (*tunnel)(struct xport *x, const struct xp_head *h, struct oconn *oc,
                  struct ac_iobuf *from_origin);
    /*
     * The request is over; the transport drops its pointer to it (the
     * request frees itself after this returns) and may go on (the next
     * HTTP/1.1 request) or end.  Called exactly once per request that was
     * started and not detached, never from inside another op.
     */
    void (*done)(struct xport *x, enum xp_end how);
};

/* What a transport can do (xport.flags). */
#define XP_F_RAW_CHUNKED 0x1u   /* body_read() gives a chunked body with its framing */

#define XP_MAX_IOV 8

struct xport {
    unsigned magic;
#define XPORT_MAGIC 0x4c0f93a6
    const struct xport_ops *ops;
    unsigned flags;             /* XP_F_* */
    struct ac_slice proto;      /* "HTTP/1.1", "HTTP/1.0", "HTTP/2.0": req.proto, the log */
};

#endif /* AC_XPORT_H */
