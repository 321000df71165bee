/*
 * h1_parse.c -- strict HTTP/1.1 head parser and chunked decoder (RFC 9112,
 * RFC 9110, RFC 3986 for targets and Host).
 *
 * Heads are parsed in two passes over the caller's buffer, both cheap:
 *   1. head_scan() walks the lines with memchr('\n') to find the empty line
 *      that ends the head.  It already rejects bare LF and enforces the size,
 *      line and count limits, so an incomplete head costs one memchr per line
 *      (vectorised in libc) and a malicious trickle hits 431 as soon as it
 *      has grown past a limit, not when it finally ends.
 *   2. Only when the head is complete do we validate every byte against the
 *      grammars with the table below.  Every line of a complete head ends in
 *      CR LF and CR belongs to no character class, so the inner loops of the
 *      field parser need no bounds checks: CR is their sentinel.
 * When the head is incomplete we still parse whatever of the start line is
 * there, so garbage that is not HTTP (a TLS hello, a port scan) is answered
 * with 400 at once instead of waiting for the head deadline.
 *
 * Bare LF is rejected everywhere, in requests and in responses: RFC 9112 §2.2
 * allows a recipient to accept it, but an LF that we take as a line end and
 * an origin (or a cache in front of us) does not is the classic start of a
 * request-smuggling desync.
 */
#include "h1_parse.h"

#include <limits.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Character classes, one table lookup per byte. */
#define C_TCHAR 0x01 /* token (RFC 9110 §5.6.2) */
#define C_VALUE 0x02 /* field-content octet: VCHAR, obs-text, SP, HTAB */
#define C_PATH  0x04 /* pchar minus pct-encoded, plus "/" (RFC 3986 §3.3) */
#define C_QUERY 0x08 /* C_PATH plus "?" (RFC 3986 §3.4) */
#define C_REG   0x10 /* reg-name minus pct-encoded: unreserved / sub-delims */
#define C_HEX   0x20
#define C_DIGIT 0x40

static const uint8_t cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x08 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x18 */
    0x02, 0x1f, 0x02, 0x03, 0x1f, 0x03, 0x1f, 0x1f, /* 0x20 */
    0x1e, 0x1e, 0x1f, 0x1f, 0x1e, 0x1f, 0x1f, 0x0e, /* 0x28 */
    0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, /* 0x30 */
    0x7f, 0x7f, 0x0e, 0x1e, 0x02, 0x1e, 0x02, 0x0a, /* 0x38 */
    0x0e, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x1f, /* 0x40 */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 0x48 */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 0x50 */
    0x1f, 0x1f, 0x1f, 0x02, 0x02, 0x02, 0x03, 0x1f, /* 0x58 */
    0x03, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x1f, /* 0x60 */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 0x68 */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 0x70 */
    0x1f, 0x1f, 0x1f, 0x02, 0x03, 0x02, 0x1f, 0x00, /* 0x78 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x80 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x88 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x90 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x98 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xa0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xa8 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xb0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xb8 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xc0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xc8 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xd0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xd8 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xe0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xe8 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xf0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xf8 */
};

#define IS(c, k)   (cls[(uint8_t)(c)] & (k))
#define IS_WS(c)   ((c) == ' ' || (c) == '\t')

/* Content-Length and chunk sizes above these are rejected: they do not fit
 * an off_t, and nothing legitimate comes close. */
#define CL_MAX       ((uint64_t)INT64_MAX)
#define CHUNK_MAX    ((uint64_t)1 << 62)
#define CHUNK_LINE_DEFAULT 4096

/* What the field lines told us, gathered while parsing them. */
struct head {
    const struct h1_limits *lim;
    const char *buf;        /* start of the caller's buffer, for error offsets */
    bool is_request;
    struct h1_header *hdrs;
    unsigned nhdrs;
    enum h1_error error;
    const char *reason;
    size_t at;              /* offset of the byte that broke the rule, or SIZE_MAX */

    unsigned nhost;
    struct ac_slice host;
    bool has_cl;
    uint64_t cl;
    bool has_te;
    bool te_last_chunked;
    bool te_other;          /* a coding other than chunked */
    bool te_chunked_params; /* "chunked;x=y": chunked takes no parameters */
    unsigned te_chunked;    /* how many times chunked was listed */
    bool conn_close, conn_keepalive, conn_upgrade, has_upgrade, has_te_hdr;
    bool expect_100, expect_other;
};

static int
fail(struct head *h, enum h1_error e, const char *why)
{
    h->error = e;
    h->reason = why;
    return AC_EPROTO;
}

/* fail(), naming the byte at `where` (inside the buffer) as the culprit, so
 * the log can say "at byte 17" instead of only the rule. */
static int
fail_at(struct head *h, enum h1_error e, const char *why, const char *where)
{
    h->at = (size_t)(where - h->buf);
    return fail(h, e, why);
}

static inline bool
name_is(struct ac_slice name, const char *lower, size_t n)
{
    return ac_slice_caseeq(name, AC_SLICE(lower, n));
}
#define NAME_IS(name, lit) name_is((name), (lit), sizeof(lit) - 1)

int
h1_error_status(enum h1_error e)
{
    switch (e) {
    case H1_ERR_NONE:
        return 0;
    case H1_ERR_TARGET_TOO_LONG:
        return 414;
    case H1_ERR_HEAD_TOO_LARGE:
        return 431;
    case H1_ERR_TE_UNKNOWN:
        return 501;
    case H1_ERR_VERSION:
        return 505;
    case H1_ERR_BAD:
        break;
    }
    return 400;
}

/* ------------------------------------------------------------------------
 * Pass 1: find the end of the head, enforce the limits.
 */

/*
 * buf[off..len) starts at the request/status line (leading empty lines are
 * already skipped).  Returns 0 with *line1 (offset of the CR ending the start
 * line) and *head_end (offset just past the empty line) set; AC_AGAIN with
 * *line1 set if the start line is complete (else 0); or AC_EPROTO.
 */
static int
head_scan(struct head *h, const char *buf, size_t len, size_t off, size_t *line1,
          size_t *head_end)
{
    const struct h1_limits *lim = h->lim;
    const char *end = buf + len, *ls = buf + off;
    unsigned nfields = 0;

    *line1 = 0;
    for (;;) {
        const char *nl = memchr(ls, '\n', (size_t)(end - ls));
        size_t n;

        if (nl == NULL)
            break;
        if (nl == ls || nl[-1] != '\r')
            return fail_at(h, H1_ERR_BAD, "bare LF", nl);
        n = (size_t)(nl - 1 - ls);  /* the line without its CR LF */
        if (*line1 == 0) {
            *line1 = (size_t)(nl - 1 - buf);    /* never 0: the line is not empty */
        } else if (n == 0) {
            *head_end = (size_t)(nl + 1 - buf);
            if ((lim->max_head && *head_end > lim->max_head) || *head_end > INT_MAX)
                return fail_at(h, H1_ERR_HEAD_TOO_LARGE, "head too large", nl);
            return 0;
        } else {
            if (++nfields > lim->max_headers)
                return fail_at(h, H1_ERR_HEAD_TOO_LARGE, "too many header fields", ls);
            if (lim->max_header_line && n > lim->max_header_line)
                return fail_at(h, H1_ERR_HEAD_TOO_LARGE, "header field line too long", ls);
        }
        ls = nl + 1;
    }

    /* Incomplete.  A head already past a limit can only get worse. */
    if ((lim->max_head && len > lim->max_head) || len > INT_MAX)
        return fail(h, H1_ERR_HEAD_TOO_LARGE, "head too large");
    if (*line1 != 0) {
        size_t n = (size_t)(end - ls);

        if (n > 0 && end[-1] == '\r')
            n--;
        if (n > 0 && nfields + 1 > lim->max_headers)
            return fail_at(h, H1_ERR_HEAD_TOO_LARGE, "too many header fields", ls);
        if (lim->max_header_line && n > lim->max_header_line)
            return fail_at(h, H1_ERR_HEAD_TOO_LARGE, "header field line too long", ls);
    }
    return AC_AGAIN;
}

/* Leading empty lines (CR LF only; RFC 9112 §2.2) before a start line.  A
 * lone CR at the very end may be half of one: *again is set then. */
static size_t
skip_empty_lines(const char *buf, size_t len, bool *again)
{
    size_t off = 0;

    while (off + 1 < len && buf[off] == '\r' && buf[off + 1] == '\n')
        off += 2;
    *again = off == len || (off + 1 == len && buf[off] == '\r');
    return off;
}

/* ------------------------------------------------------------------------
 * Grammar helpers: versions, targets, authorities.
 */

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, exactly 8 bytes, case-sensitive. */
static int
parse_version(struct head *h, const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !IS(p[5], C_DIGIT) || p[6] != '.' ||
        !IS(p[7], C_DIGIT))
        return fail(h, H1_ERR_BAD, "invalid HTTP version");
    if (p[5] != '1')
        return fail(h, H1_ERR_VERSION, "unsupported HTTP major version");
    *minor = p[7] - '0';
    return 0;
}

/* pct-encoded = "%" HEXDIG HEXDIG, with p at the "%". */
static inline bool
pct_ok(const char *p, const char *end)
{
    return end - p >= 3 && IS(p[1], C_HEX) && IS(p[2], C_HEX);
}

/*
 * path-abempty [ "?" query ] (or absolute-path when it starts with "/").
 * Returns NULL when p..end is fine, else the first byte that is not, with
 * *why saying which rule it broke.
 *
 * Two grammars (-p uri_strict):
 *   liberal (the default): every byte above 0x20 except DEL, as nginx and
 *     Varnish take them.  Browsers and PHP frameworks send "[", "]", "|",
 *     "^", "{", "}", "\", raw UTF-8, or a "%" that starts no escape
 *     ("?q=100%"); RFC 9112 §3.2 lets a recipient be lenient here.  What
 *     request smuggling and log or header injection need (SP, HTAB, CR, LF,
 *     NUL, other controls, DEL) stays an error.
 *   strict: RFC 3986 exactly (pchar, "/", "?", pct-encoded).
 */
static const char *
path_bad(const char *p, const char *end, bool strict, const char **why)
{
    unsigned k = C_PATH;

    if (!strict) {
        for (; p < end; p++) {
            uint8_t c = (uint8_t)*p;

            if (c <= 0x20 || c == 0x7f) {
                *why = c == 0 ? "NUL in request-target"
                              : c == 0x7f ? "DEL in request-target"
                                          : "control character in request-target";
                return p;
            }
        }
        return NULL;
    }
    while (p < end) {
        if (IS(*p, k)) {
            p++;
        } else if (*p == '%') {
            if (!pct_ok(p, end)) {
                *why = "invalid percent-encoding in request-target (uri_strict)";
                return p;
            }
            p += 3;
        } else if (*p == '?') {
            k = C_QUERY;            /* C_QUERY holds "?", so only the first lands here */
            p++;
        } else {
            /* "#", SP, CTLs, "[", "{", "\"", ... */
            *why = (uint8_t)*p <= 0x20 || *p == 0x7f
                       ? "control character in request-target"
                       : "character not allowed in request-target (uri_strict)";
            return p;
        }
    }
    return NULL;
}

size_t
h1_target_canon(const char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *end = p + n;
    char *o = out;

    while (p < end) {
        if (IS(*p, C_QUERY)) {
            *o++ = *p++;
        } else if (*p == '%' && pct_ok(p, end)) {
            memcpy(o, p, 3);
            o += 3;
            p += 3;
        } else {
            uint8_t c = (uint8_t)*p++;

            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    return (size_t)(o - out);
}

static bool
ipv4_valid(const char *p, const char *end)
{
    for (int i = 0; i < 4; i++) {
        const char *s;
        unsigned v = 0;

        if (i > 0 && (p == end || *p++ != '.'))
            return false;
        s = p;
        while (p < end && IS(*p, C_DIGIT) && p - s < 3)
            v = v * 10 + (unsigned)(*p++ - '0');
        if (p == s || v > 255 || (p - s > 1 && *s == '0'))
            return false;
    }
    return p == end;
}

/* IPv6address (RFC 3986 §3.2.2), with at most one "::" and an optional
 * trailing IPv4 part. */
static bool
ipv6_valid(const char *p, const char *end)
{
    unsigned groups = 0;
    bool dbl = false;

    if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
        dbl = true;
        p += 2;
        if (p == end)
            return true;
    }
    for (;;) {
        const char *s = p;

        while (p < end && IS(*p, C_HEX) && p - s < 4)
            p++;
        if (p == s)
            return false;
        if (p < end && *p == '.') {
            if (!ipv4_valid(s, end))
                return false;
            groups += 2;
            break;
        }
        groups++;
        if (p == end)
            break;
        if (*p != ':' || groups > 7)
            return false;
        p++;
        if (p < end && *p == ':') {
            if (dbl)
                return false;
            dbl = true;
            p++;
            if (p == end)
                break;
        } else if (p == end) {
            return false;
        }
    }
    return dbl ? groups <= 7 : groups == 8;
}

/* IP-literal contents: IPv6address / IPvFuture. */
static bool
ip_literal_valid(const char *p, const char *end)
{
    const char *s;

    if (p == end || (*p != 'v' && *p != 'V'))
        return ipv6_valid(p, end);
    s = ++p;
    while (p < end && IS(*p, C_HEX))
        p++;
    if (p == s || p == end || *p != '.')
        return false;
    if (++p == end)
        return false;
    for (; p < end; p++)
        if (!IS(*p, C_REG) && *p != ':')
            return false;
    return true;
}

/*
 * authority without userinfo: host [ ":" port ] (RFC 3986 §3.2, RFC 9110
 * §4.2.1 forbids userinfo in http URIs and we treat it as an error).
 * The host must not be empty.  *hostlen gets the length of the host part,
 * *port the port or -1 when absent or empty.  The port is limited to 65535.
 */
static bool
authority_valid(const char *p, size_t n, bool need_port, size_t *hostlen, long *port)
{
    const char *end = p + n, *q = p;
    long v = 0;

    *port = -1;
    if (n == 0)
        return false;
    if (*q == '[') {
        const char *rb = memchr(q, ']', n);

        if (rb == NULL || !ip_literal_valid(q + 1, rb))
            return false;
        q = rb + 1;
    } else {
        while (q < end) {
            if (IS(*q, C_REG)) {
                q++;
            } else if (*q == '%') {
                if (!pct_ok(q, end))
                    return false;
                q += 3;
            } else {
                break;
            }
        }
        if (q == p)
            return false;
    }
    *hostlen = (size_t)(q - p);
    if (q == end)
        return !need_port;
    if (*q++ != ':')
        return false;           /* "@" (userinfo), "/", SP, ... */
    if (q == end)
        return !need_port;      /* "host:" is allowed by RFC 3986 */
    if (end - q > 5)
        return false;
    for (; q < end; q++) {
        if (!IS(*q, C_DIGIT))
            return false;
        v = v * 10 + (*q - '0');
    }
    if (v > 65535)
        return false;
    *port = v;
    return true;
}

/* Do two (valid) authorities name the same host and port?  Host compares
 * case-insensitively; a missing or empty port is the scheme's default. */
static bool
authority_same(struct ac_slice a, struct ac_slice b, long defport)
{
    size_t ha = 0, hb = 0;
    long pa, pb;

    if (!authority_valid(a.p, a.len, false, &ha, &pa) ||
        !authority_valid(b.p, b.len, false, &hb, &pb))
        return false;
    if (pa < 0)
        pa = defport;
    if (pb < 0)
        pb = defport;
    return pa == pb && ac_slice_caseeq(AC_SLICE(a.p, ha), AC_SLICE(b.p, hb));
}

/* ------------------------------------------------------------------------
 * The request line.
 */

/*
 * method SP request-target SP HTTP-version, in p..eol (eol is the CR).
 * RFC 9112 §3: exactly one SP between the parts; we do not "fix" anything.
 */
static int
parse_request_line(struct head *h, const char *p, const char *eol, struct h1_request *req)
{
    const struct h1_limits *lim = h->lim;
    const char *m = p, *t, *sp;
    int r;

    while (IS(*p, C_TCHAR))     /* stops at the CR at eol at the latest */
        p++;
    if (p == m || *p != ' ')
        return fail_at(h, H1_ERR_BAD, "invalid method", p);
    req->method = AC_SLICE(m, (size_t)(p - m));
    t = ++p;
    sp = memchr(t, ' ', (size_t)(eol - t));
    if (sp == NULL) {
        if (lim->max_target && (size_t)(eol - t) > lim->max_target)
            return fail_at(h, H1_ERR_TARGET_TOO_LONG, "request-target too long", t + lim->max_target);
        return fail_at(h, H1_ERR_BAD, "invalid request line (no version)", eol);
    }
    if (sp == t)
        return fail_at(h, H1_ERR_BAD, "empty request-target", t);
    req->target = AC_SLICE(t, (size_t)(sp - t));
    if (lim->max_target && req->target.len > lim->max_target)
        return fail_at(h, H1_ERR_TARGET_TOO_LONG, "request-target too long", t + lim->max_target);
    /* The version first: "PRI * HTTP/2.0" (the h2 preface) is a 505, not a
     * misplaced asterisk. */
    if ((r = parse_version(h, sp + 1, (size_t)(eol - sp - 1), &req->minor)) != 0) {
        /* "GET /a b HTTP/1.1": a version at the end, a space in the target */
        const char *lsp = memrchr(sp + 1, ' ', (size_t)(eol - sp - 1));
        if (lsp != NULL && eol - lsp - 1 == 8 && memcmp(lsp + 1, "HTTP/", 5) == 0)
            return fail_at(h, H1_ERR_BAD, "space in request-target", sp);
        h->at = (size_t)(sp + 1 - h->buf);
        return r;
    }
    return 0;
}

/*
 * Classify and validate the request-target (RFC 9112 §3.2).  CONNECT takes
 * authority-form and nothing else; "*" only with OPTIONS; absolute-form only
 * for http and https.
 */
static int
parse_target(struct head *h, struct h1_request *req, struct ac_slice *abs_authority,
             long *defport)
{
    const char *p = req->target.p, *end = p + req->target.len, *bad, *why;
    bool strict = h->lim->strict_target;
    size_t hl;
    long port;

    abs_authority->len = 0;
    if (ac_slice_eq(req->method, AC_LIT("CONNECT"))) {     /* methods are case-sensitive */
        /* authority-form = uri-host ":" port */
        if (!authority_valid(p, req->target.len, true, &hl, &port))
            return fail_at(h, H1_ERR_BAD, "invalid authority-form target", p);
        req->flags |= H1_F_AUTHORITY_FORM;
        req->path = AC_SLICE(NULL, 0);
        return 0;
    }
    if (*p == '/') {
        if ((bad = path_bad(p, end, strict, &why)) != NULL)
            return fail_at(h, H1_ERR_BAD, why, bad);
        req->path = req->target;
        return 0;
    }
    if (*p == '*' && req->target.len == 1) {
        if (!ac_slice_eq(req->method, AC_LIT("OPTIONS")))
            return fail_at(h, H1_ERR_BAD, "asterisk-form only for OPTIONS", p);
        req->flags |= H1_F_ASTERISK_FORM;
        req->path = req->target;
        return 0;
    }
    /* absolute-form: http or https (scheme is case-insensitive) "://" authority */
    if (req->target.len > 7 && ac_slice_caseeq(AC_SLICE(p, 7), AC_LIT("http://"))) {
        p += 7;
        *defport = 80;
    } else if (req->target.len > 8 && ac_slice_caseeq(AC_SLICE(p, 8), AC_LIT("https://"))) {
        p += 8;
        *defport = 443;
    } else {
        return fail_at(h, H1_ERR_BAD, "request-target is not /path, http(s)://... or *", p);
    }
    {
        const char *a = p;

        while (p < end && *p != '/' && *p != '?')
            p++;
        if (!authority_valid(a, (size_t)(p - a), false, &hl, &port))
            return fail_at(h, H1_ERR_BAD, "invalid authority in absolute-form target", a);
        *abs_authority = AC_SLICE(a, (size_t)(p - a));
    }
    if (p == end) {
        req->path = AC_LIT("/");
    } else if (*p == '?') {
        /* "http://a?q" is valid RFC 3986, but the path we would forward,
         * "/?q", is not in the buffer; no client sends this. */
        return fail_at(h, H1_ERR_BAD, "absolute-form with a query but no path", p);
    } else {
        if ((bad = path_bad(p, end, strict, &why)) != NULL)
            return fail_at(h, H1_ERR_BAD, why, bad);
        req->path = AC_SLICE(p, (size_t)(end - p));
    }
    req->flags |= H1_F_ABSOLUTE_FORM;
    return 0;
}

/*
 * The start line of an incomplete head: reject what is already wrong.  Any
 * prefix of a valid request passes.
 */
static int
request_line_partial(struct head *h, const char *p, const char *end)
{
    const char *m = p, *sp;

    while (p < end && IS(*p, C_TCHAR))
        p++;
    if (p == end)
        return AC_AGAIN;
    if (p == m || *p != ' ')
        return fail_at(h, H1_ERR_BAD, "invalid method", p);
    p++;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (h->lim->max_target && (size_t)((sp ? sp : end) - p) > h->lim->max_target)
        return fail_at(h, H1_ERR_TARGET_TOO_LONG, "request-target too long", p + h->lim->max_target);
    return AC_AGAIN;
}

/* ------------------------------------------------------------------------
 * Field lines and the fields that decide framing and connection handling.
 */

/* End of a quoted-string starting at p (the DQUOTE), or NULL.  The bytes are
 * already known to be field-content, so qdtext is "not DQUOTE or backslash". */
static const char *
quoted_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && ++p == end)
            return NULL;
    }
    return NULL;
}

/* Content-Length = 1*DIGIT, as a list ("5, 5") or repeated fields as long as
 * every value is the same (RFC 9110 §8.6); anything else is a smuggling risk. */
static int
content_length_field(struct head *h, struct ac_slice v)
{
    const char *p = v.p, *end = p + v.len;

    for (;;) {
        const char *d = p;
        uint64_t x = 0;

        while (p < end && IS(*p, C_DIGIT)) {
            unsigned dig = (unsigned)(*p++ - '0');

            if (x > (CL_MAX - dig) / 10)
                return fail_at(h, H1_ERR_BAD, "Content-Length too large", d);
            x = x * 10 + dig;
        }
        if (p == d)
            return fail_at(h, H1_ERR_BAD, "invalid Content-Length", d);
        if (h->has_cl && x != h->cl)
            return fail_at(h, H1_ERR_BAD, "differing Content-Length values", d);
        h->has_cl = true;
        h->cl = x;
        while (p < end && IS_WS(*p))
            p++;
        if (p == end)
            return 0;
        if (*p++ != ',')
            return fail_at(h, H1_ERR_BAD, "invalid Content-Length", p - 1);
        while (p < end && IS_WS(*p))
            p++;
    }
}

/*
 * Transfer-Encoding = #transfer-coding, transfer-coding = token *( OWS ";"
 * OWS token BWS "=" BWS ( token / quoted-string ) ).  Fields combine in
 * order.  Empty list elements are rejected here, unlike ordinary lists:
 * "chunked," is exactly the kind of value two parsers read two ways.
 */
static int
transfer_encoding_field(struct head *h, struct ac_slice v)
{
    const char *p = v.p, *end = p + v.len;

    h->has_te = true;
    for (;;) {
        const char *t;
        struct ac_slice coding;
        bool params = false, chunked;

        while (p < end && IS_WS(*p))
            p++;
        t = p;
        while (p < end && IS(*p, C_TCHAR))
            p++;
        if (p == t)
            return fail_at(h, H1_ERR_BAD, "invalid Transfer-Encoding", p);
        coding = AC_SLICE(t, (size_t)(p - t));
        for (;;) {
            const char *q = p;

            while (q < end && IS_WS(*q))
                q++;
            if (q == end || *q != ';') {
                p = q;
                break;
            }
            params = true;
            for (p = q + 1; p < end && IS_WS(*p); p++)
                ;
            for (t = p; p < end && IS(*p, C_TCHAR); p++)
                ;
            if (p == t)
                return fail_at(h, H1_ERR_BAD, "invalid Transfer-Encoding parameter", v.p);
            while (p < end && IS_WS(*p))
                p++;
            if (p == end || *p++ != '=')
                return fail_at(h, H1_ERR_BAD, "invalid Transfer-Encoding parameter", v.p);
            while (p < end && IS_WS(*p))
                p++;
            if (p < end && *p == '"') {
                if ((p = quoted_end(p, end)) == NULL)
                    return fail_at(h, H1_ERR_BAD, "invalid Transfer-Encoding parameter", v.p);
            } else {
                for (t = p; p < end && IS(*p, C_TCHAR); p++)
                    ;
                if (p == t)
                    return fail_at(h, H1_ERR_BAD, "invalid Transfer-Encoding parameter", v.p);
            }
        }
        chunked = NAME_IS(coding, "chunked");
        if (chunked) {
            h->te_chunked++;
            h->te_chunked_params |= params;
        } else {
            h->te_other = true;
        }
        h->te_last_chunked = chunked;
        if (p == end)
            return 0;
        if (*p++ != ',')
            return fail_at(h, H1_ERR_BAD, "invalid Transfer-Encoding", p - 1);
    }
}

/* Next element of a comma list, OWS trimmed (may be empty).  Quotes are not
 * honoured: only for lists of plain tokens (Connection, Expect). */
static bool
list_next(const char **pp, const char *end, struct ac_slice *elem)
{
    const char *p = *pp, *s, *e;

    if (p > end)
        return false;
    while (p < end && IS_WS(*p))
        p++;
    s = p;
    while (p < end && *p != ',')
        p++;
    e = p;
    while (e > s && IS_WS(e[-1]))
        e--;
    *elem = AC_SLICE(s, (size_t)(e - s));
    *pp = p + 1;                /* past the comma, or end + 1 when done */
    return true;
}

static void
connection_field(struct head *h, struct ac_slice v)
{
    const char *p = v.p, *end = p + v.len;
    struct ac_slice e;

    while (list_next(&p, end, &e)) {
        if (NAME_IS(e, "close"))
            h->conn_close = true;
        else if (NAME_IS(e, "keep-alive"))
            h->conn_keepalive = true;
        else if (NAME_IS(e, "upgrade"))
            h->conn_upgrade = true;
    }
}

static void
expect_field(struct head *h, struct ac_slice v)
{
    const char *p = v.p, *end = p + v.len;
    struct ac_slice e;

    while (list_next(&p, end, &e)) {
        if (NAME_IS(e, "100-continue"))
            h->expect_100 = true;
        else if (e.len > 0)
            h->expect_other = true;
    }
}

/* Host = uri-host [ ":" port ] (RFC 9110 §7.2); an empty value is allowed. */
static int
host_field(struct head *h, struct ac_slice v)
{
    size_t hl;
    long port;

    if (++h->nhost > 1)
        return fail_at(h, H1_ERR_BAD, "several Host fields", v.p);
    h->host = v;
    if (v.len > 0 && !authority_valid(v.p, v.len, false, &hl, &port))
        return fail_at(h, H1_ERR_BAD, "invalid Host", v.p);
    return 0;
}

/* Fields that matter to framing or to the connection, picked by length
 * first so that ordinary fields cost one switch. */
static int
field_special(struct head *h, struct ac_slice name, struct ac_slice v)
{
    switch (name.len) {
    case 2:
        if (NAME_IS(name, "te"))
            h->has_te_hdr = true;
        break;
    case 4:
        if (h->is_request && NAME_IS(name, "host"))
            return host_field(h, v);
        break;
    case 6:
        if (h->is_request && NAME_IS(name, "expect"))
            expect_field(h, v);
        break;
    case 7:
        if (NAME_IS(name, "upgrade"))
            h->has_upgrade = true;
        break;
    case 10:
        if (NAME_IS(name, "connection"))
            connection_field(h, v);
        break;
    case 14:
        if (NAME_IS(name, "content-length"))
            return content_length_field(h, v);
        break;
    case 17:
        if (NAME_IS(name, "transfer-encoding"))
            return transfer_encoding_field(h, v);
        break;
    }
    return 0;
}

/*
 * The end of a run of field-content octets starting at p: the first byte that
 * is not VCHAR, obs-text, SP or HTAB.  The caller guarantees a CR before end.
 * With SSE2 (every x86-64) sixteen bytes are checked at a time for a CTL or
 * DEL; HTAB, the one allowed CTL, is stepped over.  Long values (User-Agent,
 * Cookie) are the bulk of a request head.
 */
static inline const char *
value_scan(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i ctl_max = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);

    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, ctl_max), x),
                                   _mm_cmpeq_epi8(x, del));
        int m = _mm_movemask_epi8(bad);

        if (m == 0) {
            p += 16;
            continue;
        }
        p += __builtin_ctz((unsigned)m);
        if (*p != '\t')
            return p;
        p++;
    }
#else
    (void)end;
#endif
    for (;;) {                  /* unrolled by four; the CR stops it */
        if (!IS(p[0], C_VALUE))
            return p;
        if (!IS(p[1], C_VALUE))
            return p + 1;
        if (!IS(p[2], C_VALUE))
            return p + 2;
        if (!IS(p[3], C_VALUE))
            return p + 3;
        p += 4;
    }
}

/*
 * field-line = field-name ":" OWS field-value OWS, from p (just past the
 * start line's CR LF) to the empty line.  Pass 1 guarantees every LF here
 * follows a CR and the head ends in CR LF CR LF, so scanning by class stops
 * at a CR at the latest: no bounds checks in the loops.
 */
static int
parse_fields(struct head *h, const char *p, const char *head_end)
{
    for (;;) {
        const char *n = p, *ne, *v, *ve;
        struct h1_header *hd;
        int r;

        if (*p == '\r') {
            if (p[1] != '\n')
                return fail_at(h, H1_ERR_BAD, "bare CR", p);
            AC_DEBUG_CHECK(p + 2 == head_end);
            (void)head_end;
            return 0;
        }
        while (IS(*p, C_TCHAR))
            p++;
        if (*p != ':') {
            if (p == n && IS_WS(*p))
                return fail_at(h, H1_ERR_BAD, h->nhdrs == 0 ? "whitespace before first field"
                                                            : "obs-fold", p);
            if (IS_WS(*p))
                return fail_at(h, H1_ERR_BAD, "whitespace between field name and colon", p);
            if (*p == '\r' && p[1] != '\n')
                return fail_at(h, H1_ERR_BAD, "bare CR", p);
            return fail_at(h, H1_ERR_BAD, "invalid field name", p);
        }
        if (p == n)
            return fail_at(h, H1_ERR_BAD, "empty field name", p);
        ne = p++;
        while (IS_WS(*p))
            p++;
        v = p;
        p = value_scan(p, head_end);
        if (*p != '\r')
            return fail_at(h, H1_ERR_BAD, *p == '\0' ? "NUL in field value"
                                                     : "control character in field value", p);
        if (p[1] != '\n')
            return fail_at(h, H1_ERR_BAD, "bare CR", p);
        for (ve = p; ve > v && IS_WS(ve[-1]); ve--)
            ;
        if (h->nhdrs >= h->lim->max_headers)    /* pass 1 counted; belt and braces */
            return fail(h, H1_ERR_HEAD_TOO_LARGE, "too many header fields");
        hd = &h->hdrs[h->nhdrs++];
        hd->name = AC_SLICE(n, (size_t)(ne - n));
        hd->value = AC_SLICE(v, (size_t)(ve - v));
        p += 2;
        if ((r = field_special(h, hd->name, hd->value)) != 0)
            return r;
    }
}

/* ------------------------------------------------------------------------
 * Requests.
 */

static void
head_init(struct head *h, const struct h1_limits *lim, const char *buf, struct h1_header *hdrs,
          bool is_request)
{
    memset(h, 0, sizeof(*h));
    h->lim = lim;
    h->buf = buf;
    h->at = SIZE_MAX;
    h->hdrs = hdrs;
    h->is_request = is_request;
}

/* Connection handling common to both directions (RFC 9112 §9.3). */
static unsigned
connection_flags(const struct head *h, int minor)
{
    unsigned f = 0;

    if (h->conn_keepalive)
        f |= H1_F_KEEPALIVE;
    if (h->conn_close || (minor == 0 && !h->conn_keepalive))
        f |= H1_F_CLOSE;
    if (minor == 0)
        f |= H1_F_HTTP10;
    else if (h->conn_upgrade && h->has_upgrade)
        f |= H1_F_UPGRADE;      /* RFC 9110 §7.8: ignored in HTTP/1.0 */
    return f;
}

/* Decide the request body (RFC 9112 §6.1, §6.3) and the Host rules. */
static int
request_finish(struct head *h, struct h1_request *req, struct ac_slice abs_auth, long defport)
{
    if (req->minor >= 1 && h->nhost == 0)
        return fail(h, H1_ERR_BAD, "missing Host");
    if (req->flags & H1_F_ABSOLUTE_FORM) {
        if (h->nhost > 0 && !authority_same(abs_auth, h->host, defport))
            return fail(h, H1_ERR_BAD, "Host disagrees with absolute-form target");
        req->host = abs_auth;
    } else {
        req->host = h->host;
    }
    if (h->has_te) {
        if (req->minor == 0)
            return fail(h, H1_ERR_BAD, "Transfer-Encoding in HTTP/1.0");
        if (h->has_cl)
            return fail(h, H1_ERR_BAD, "Content-Length with Transfer-Encoding");
        if (h->te_chunked > 1)
            return fail(h, H1_ERR_BAD, "chunked applied twice");
        if (!h->te_last_chunked)
            return fail(h, H1_ERR_BAD, "final transfer coding is not chunked");
        if (h->te_chunked_params)
            return fail(h, H1_ERR_BAD, "parameters on chunked");
        if (h->te_other)
            return fail(h, H1_ERR_TE_UNKNOWN, "unsupported transfer coding");
        req->body = H1_BODY_CHUNKED;
    } else if (h->has_cl) {
        req->body = H1_BODY_LENGTH;
        req->content_length = h->cl;
    }
    req->flags |= connection_flags(h, req->minor);
    if (h->has_te_hdr)
        req->flags |= H1_F_HAS_TE;
    if (h->expect_100 && req->minor >= 1)
        req->flags |= H1_F_EXPECT_100;  /* RFC 9110 §10.1.1: ignored in HTTP/1.0 */
    if (h->expect_other)
        req->flags |= H1_F_EXPECT_OTHER;
    return 0;
}

int
h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                 struct h1_request *req)
{
    struct head h;
    struct ac_slice abs_auth = { NULL, 0 };
    long defport = 80;
    size_t off, line1, head_end = 0;
    bool again;
    int r;

    AC_NOTNULL(lim);
    AC_NOTNULL(req);
    AC_NOTNULL(req->hdrs);
    AC_ASSERT(lim->max_headers > 0);
    head_init(&h, lim, buf, req->hdrs, true);
    req->method = req->target = req->path = req->host = AC_SLICE(NULL, 0);
    req->minor = 0;
    req->flags = 0;
    req->body = H1_BODY_NONE;
    req->content_length = 0;
    req->nhdrs = 0;

    if (len == 0)
        return AC_AGAIN;
    off = skip_empty_lines(buf, len, &again);
    r = head_scan(&h, buf, len, off, &line1, &head_end);
    if (r == AC_AGAIN && !again) {
        if (line1 == 0)
            r = request_line_partial(&h, buf + off, buf + len);
        else if ((r = parse_request_line(&h, buf + off, buf + line1, req)) == 0 &&
                 (r = parse_target(&h, req, &abs_auth, &defport)) == 0)
            r = AC_AGAIN;
    } else if (r == 0) {
        if ((r = parse_request_line(&h, buf + off, buf + line1, req)) == 0 &&
            (r = parse_target(&h, req, &abs_auth, &defport)) == 0 &&
            (r = parse_fields(&h, buf + line1 + 2, buf + head_end)) == 0 &&
            (r = request_finish(&h, req, abs_auth, defport)) == 0)
            r = (int)head_end;
    }
    req->nhdrs = h.nhdrs;
    req->error = h.error;
    req->reason = h.reason;
    req->err_off = r == AC_EPROTO ? h.at : SIZE_MAX;
    return r;
}

/* ------------------------------------------------------------------------
 * Responses.
 */

/* HTTP-version SP 3DIGIT SP reason-phrase.  An origin that omits the SP
 * before an empty reason ("HTTP/1.1 200") is tolerated: the reason is
 * meaningless (RFC 9112 §4) and many servers do it. */
static int
parse_status_line(struct head *h, const char *p, const char *eol, struct h1_response *resp)
{
    int r;

    if (eol - p < 12)
        return fail(h, H1_ERR_BAD, "invalid status line");
    if ((r = parse_version(h, p, 8, &resp->minor)) != 0)
        return r;
    if (p[8] != ' ' || !IS(p[9], C_DIGIT) || !IS(p[10], C_DIGIT) || !IS(p[11], C_DIGIT))
        return fail(h, H1_ERR_BAD, "invalid status line");
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (resp->status < 100)
        return fail(h, H1_ERR_BAD, "invalid status code");
    p += 12;
    if (p == eol) {
        resp->reason_phrase = AC_SLICE(p, 0);
        return 0;
    }
    if (*p++ != ' ')
        return fail(h, H1_ERR_BAD, "invalid status line");
    resp->reason_phrase = AC_SLICE(p, (size_t)(eol - p));
    while (IS(*p, C_VALUE))     /* stops at the CR */
        p++;
    if (p != eol)
        return fail_at(h, H1_ERR_BAD, "control character in reason phrase", p);
    return 0;
}

/* Response framing, RFC 9112 §6.3, in its order. */
static int
response_finish(struct head *h, struct h1_response *resp, struct ac_slice req_method)
{
    bool is_head = ac_slice_eq(req_method, AC_LIT("HEAD"));
    bool is_connect = ac_slice_eq(req_method, AC_LIT("CONNECT"));
    int st = resp->status;

    if (h->has_te) {
        if (h->te_chunked > 1)
            return fail(h, H1_ERR_BAD, "chunked applied twice");
        if (h->te_chunked_params)
            return fail(h, H1_ERR_BAD, "parameters on chunked");
    }
    resp->flags |= connection_flags(h, resp->minor);
    if (h->has_cl)
        resp->content_length = h->cl;
    if (is_head || st < 200 || st == 204 || st == 304 || (is_connect && st < 300)) {
        resp->body = H1_BODY_NONE;
    } else if (h->has_te) {
        resp->body = h->te_last_chunked ? H1_BODY_CHUNKED : H1_BODY_CLOSE;
        /* CL beside TE, or TE in HTTP/1.0: framing is suspect, do not reuse
         * the connection (RFC 9112 §6.1, §6.3). */
        if (h->has_cl || resp->minor == 0)
            resp->flags |= H1_F_CLOSE;
    } else if (h->has_cl) {
        resp->body = H1_BODY_LENGTH;
    } else {
        resp->body = H1_BODY_CLOSE;
    }
    if (resp->body == H1_BODY_CLOSE)
        resp->flags |= H1_F_CLOSE;
    return 0;
}

int
h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                  struct ac_slice req_method, struct h1_response *resp)
{
    struct head h;
    size_t off, line1, head_end = 0;
    bool again;
    int r;

    AC_NOTNULL(lim);
    AC_NOTNULL(resp);
    AC_NOTNULL(resp->hdrs);
    AC_ASSERT(lim->max_headers > 0);
    head_init(&h, lim, buf, resp->hdrs, false);
    resp->status = 0;
    resp->reason_phrase = AC_SLICE(NULL, 0);
    resp->minor = 0;
    resp->flags = 0;
    resp->body = H1_BODY_NONE;
    resp->content_length = 0;
    resp->nhdrs = 0;

    if (len == 0)
        return AC_AGAIN;
    off = skip_empty_lines(buf, len, &again);
    r = head_scan(&h, buf, len, off, &line1, &head_end);
    if (r == AC_AGAIN && !again) {
        if (line1 != 0)
            r = parse_status_line(&h, buf + off, buf + line1, resp);
        else if (memcmp(buf + off, "HTTP/", AC_MIN(len - off, 5)) != 0)
            r = fail(&h, H1_ERR_BAD, "not an HTTP response");
        if (r == 0)
            r = AC_AGAIN;
    } else if (r == 0) {
        if ((r = parse_status_line(&h, buf + off, buf + line1, resp)) == 0 &&
            (r = parse_fields(&h, buf + line1 + 2, buf + head_end)) == 0 &&
            (r = response_finish(&h, resp, req_method)) == 0)
            r = (int)head_end;
    }
    resp->nhdrs = h.nhdrs;
    resp->error = h.error;
    resp->reason = h.reason;
    resp->err_off = r == AC_EPROTO ? h.at : SIZE_MAX;
    return r;
}

/* ------------------------------------------------------------------------
 * Header helpers.
 */

const struct h1_header *
h1_header_find(const struct h1_header *hdrs, unsigned n, struct ac_slice name)
{
    for (unsigned i = 0; i < n; i++)
        if (hdrs[i].name.len == name.len && ac_slice_caseeq(hdrs[i].name, name))
            return &hdrs[i];
    return NULL;
}

/* Elements may carry parameters with quoted strings ("a;q=\"x,y\", b"): a
 * comma inside quotes does not end the element. */
bool
h1_list_has_token(struct ac_slice value, struct ac_slice tok)
{
    const char *p = value.p, *end = p + value.len;

    while (p < end) {
        const char *s, *e;

        while (p < end && (IS_WS(*p) || *p == ','))
            p++;
        s = p;
        while (p < end && *p != ',' && *p != ';')
            p++;
        for (e = p; e > s && IS_WS(e[-1]); e--)
            ;
        if (e > s && ac_slice_caseeq(AC_SLICE(s, (size_t)(e - s)), tok))
            return true;
        if (p < end && *p == ';') {
            bool quoted = false;

            for (; p < end; p++) {
                if (quoted) {
                    if (*p == '\\' && p + 1 < end)
                        p++;
                    else if (*p == '"')
                        quoted = false;
                } else if (*p == '"') {
                    quoted = true;
                } else if (*p == ',') {
                    break;
                }
            }
        }
    }
    return false;
}

/* ------------------------------------------------------------------------
 * Chunked decoder (RFC 9112 §7.1).
 *
 *   chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   last-chunk = 1*("0") [ chunk-ext ] CRLF, then trailer-section CRLF
 *
 * Strict on purpose: whitespace after the size or after an extension that is
 * not followed by ";" or "=" is rejected, as are bare CR and LF.  Lenient
 * chunk parsers that disagree with each other are how bodies get smuggled.
 */

/* c->_sub inside H1_CS_EXT */
enum {
    X_WS_SEMI = 0,  /* after BWS that followed the size or a value: BWS or ";" */
    X_WS_NAME,      /* after ";": BWS, then the name */
    X_NAME,         /* in the name */
    X_WS_EQ,        /* after name and BWS: BWS, "=" or ";" */
    X_WS_VAL,       /* after "=": BWS, then token or quoted-string */
    X_VAL,          /* in a token value */
    X_QS,           /* in a quoted-string */
    X_QP,           /* after a backslash in a quoted-string */
    X_QEND,         /* after the closing quote */
};

/* c->_sub inside H1_CS_TRAILER_LINE */
enum { T_NAME = 0, T_VALUE };

void
h1_chunked_init(struct h1_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = H1_CS_SIZE;
}

static inline int
hexval(unsigned char ch)
{
    if (ch <= '9')
        return ch - '0';
    return (ch | 0x20) - 'a' + 10;
}

/* One byte of a chunk extension; returns NULL or the error. */
static const char *
ext_byte(struct h1_chunked *c, unsigned char ch)
{
    switch (c->_sub) {
    case X_WS_SEMI:
        if (ch == ';')
            c->_sub = X_WS_NAME;
        else if (!IS_WS(ch))
            return "invalid chunk extension";
        return NULL;
    case X_WS_NAME:
        if (IS(ch, C_TCHAR))
            c->_sub = X_NAME;
        else if (!IS_WS(ch))
            return "invalid chunk extension";
        return NULL;
    case X_NAME:
    case X_VAL:
        if (IS(ch, C_TCHAR))
            return NULL;
        if (ch == ';')
            c->_sub = X_WS_NAME;
        else if (ch == '=' && c->_sub == X_NAME)
            c->_sub = X_WS_VAL;
        else if (IS_WS(ch))
            c->_sub = c->_sub == X_NAME ? X_WS_EQ : X_WS_SEMI;
        else
            return "invalid chunk extension";
        return NULL;
    case X_WS_EQ:
        if (ch == '=')
            c->_sub = X_WS_VAL;
        else if (ch == ';')
            c->_sub = X_WS_NAME;
        else if (!IS_WS(ch))
            return "invalid chunk extension";
        return NULL;
    case X_WS_VAL:
        if (IS(ch, C_TCHAR))
            c->_sub = X_VAL;
        else if (ch == '"')
            c->_sub = X_QS;
        else if (!IS_WS(ch))
            return "invalid chunk extension";
        return NULL;
    case X_QS:
        if (ch == '"')
            c->_sub = X_QEND;
        else if (ch == '\\')
            c->_sub = X_QP;
        else if (!IS(ch, C_VALUE))
            return "invalid quoted-string in chunk extension";
        return NULL;
    case X_QP:
        if (!IS(ch, C_VALUE))
            return "invalid quoted-string in chunk extension";
        c->_sub = X_QS;
        return NULL;
    case X_QEND:
        if (ch == ';')
            c->_sub = X_WS_NAME;
        else if (IS_WS(ch))
            c->_sub = X_WS_SEMI;
        else
            return "invalid chunk extension";
        return NULL;
    }
    return "invalid chunk extension";
}

/* Where a CR may end the size line inside an extension. */
static inline bool
ext_may_end(unsigned sub)
{
    return sub == X_NAME || sub == X_VAL || sub == X_QEND;
}

/*
 * An error found after a run of data has been taken is reported on the next
 * call (the bad byte is left unconsumed and the state untouched), so the
 * caller gets the same bytes and the same verdict however the input is split.
 */
long
h1_chunked_decode(struct h1_chunked *c, const char *buf, size_t len, struct ac_slice *data)
{
    const char *p = buf, *end = buf + len;
    size_t max_line = c->max_line ? c->max_line : CHUNK_LINE_DEFAULT;
    const char *why = NULL;
    bool have_data = false;
    unsigned char ch = 0;

    AC_NOTNULL(data);
    *data = AC_SLICE(buf, 0);
    while (p < end) {
        ch = (unsigned char)*p;
        switch (c->state) {
        case H1_CS_DATA: {
            size_t n;

            if (have_data)
                goto out;
            n = (size_t)AC_MIN(c->remaining, (uint64_t)(end - p));
            *data = AC_SLICE(p, n);
            have_data = true;
            p += n;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = H1_CS_DATA_CR;
            continue;
        }
        case H1_CS_SIZE:
            if (!IS(ch, C_HEX)) {
                why = "invalid chunk size";
                goto fail;
            }
            c->remaining = (uint64_t)hexval(ch);
            c->ndigits = 1;
            c->line_len = 1;
            c->state = H1_CS_SIZE_DIGITS;
            break;
        case H1_CS_SIZE_DIGITS:
            if (c->line_len + 1 > max_line) {
                why = "chunk size line too long";
                goto fail;
            }
            if (IS(ch, C_HEX)) {
                unsigned d = (unsigned)hexval(ch);

                if (c->remaining > (CHUNK_MAX - d) >> 4) {
                    why = "chunk size too large";
                    goto fail;
                }
                c->remaining = (c->remaining << 4) | d;
                c->ndigits++;
            } else if (ch == '\r') {
                c->state = H1_CS_SIZE_LF;
            } else if (ch == ';' || IS_WS(ch)) {
                c->_sub = ch == ';' ? X_WS_NAME : X_WS_SEMI;
                c->state = H1_CS_EXT;
            } else {
                why = "invalid chunk size";
                goto fail;
            }
            c->line_len++;
            break;
        case H1_CS_EXT:
            if (c->line_len + 1 > max_line) {
                why = "chunk size line too long";
                goto fail;
            }
            if (ch == '\r') {
                if (!ext_may_end(c->_sub)) {
                    why = "invalid chunk extension";
                    goto fail;
                }
                c->state = H1_CS_SIZE_LF;
            } else if ((why = ext_byte(c, ch)) != NULL) {
                goto fail;
            }
            c->line_len++;
            break;
        case H1_CS_SIZE_LF:
            if (ch != '\n') {
                why = "bare CR";
                goto fail;
            }
            c->state = c->remaining == 0 ? H1_CS_TRAILER_START : H1_CS_DATA;
            break;
        case H1_CS_DATA_CR:
            if (ch != '\r') {
                why = "missing CRLF after chunk data";
                goto fail;
            }
            c->state = H1_CS_DATA_LF;
            break;
        case H1_CS_DATA_LF:
            if (ch != '\n') {
                why = "missing CRLF after chunk data";
                goto fail;
            }
            c->state = H1_CS_SIZE;
            break;
        case H1_CS_TRAILER_START:
            if (ch == '\r') {
                c->state = H1_CS_FINAL_LF;
            } else if (IS(ch, C_TCHAR)) {
                c->_sub = T_NAME;
                c->line_len = 1;
                c->state = H1_CS_TRAILER_LINE;
            } else {
                why = IS_WS(ch) ? "obs-fold in trailer" : "invalid trailer field";
                goto fail;
            }
            break;
        case H1_CS_TRAILER_LINE:
            if (c->line_len + 1 > max_line) {
                why = "trailer line too long";
                goto fail;
            }
            if (c->_sub == T_NAME) {
                if (ch == ':') {
                    c->_sub = T_VALUE;
                } else if (!IS(ch, C_TCHAR)) {
                    why = IS_WS(ch) ? "whitespace between field name and colon"
                                    : "invalid trailer field";
                    goto fail;
                }
            } else if (ch == '\r') {
                c->state = H1_CS_TRAILER_LF;
            } else if (!IS(ch, C_VALUE)) {
                why = "control character in trailer";
                goto fail;
            }
            c->line_len++;
            break;
        case H1_CS_TRAILER_LF:
            if (ch != '\n') {
                why = "bare CR";
                goto fail;
            }
            c->state = H1_CS_TRAILER_START;
            break;
        case H1_CS_FINAL_LF:
            if (ch != '\n') {
                why = "bare CR";
                goto fail;
            }
            c->state = H1_CS_DONE;
            p++;
            goto out;
        case H1_CS_DONE:
            goto out;
        }
        p++;
    }
out:
    return (long)(p - buf);
fail:
    if (ch == '\n')
        why = "bare LF";    /* where LF is expected it never fails */
    if (have_data)
        return (long)(p - buf);     /* report it on the next call */
    c->reason = why;
    return AC_EPROTO;
}
