/*
 * http.c -- hop-by-hop fields, method properties, reason phrases.
 */
#include "http.h"

#include <stdio.h>

bool
http_is_hop_by_hop(struct ac_slice n)
{
    switch (n.len) {
    case 2:
        return ac_slice_caseeq(n, AC_LIT("TE"));
    case 7:
        return ac_slice_caseeq(n, AC_LIT("Trailer")) || ac_slice_caseeq(n, AC_LIT("Upgrade"));
    case 10:
        return ac_slice_caseeq(n, AC_LIT("Connection")) || ac_slice_caseeq(n, AC_LIT("Keep-Alive"));
    case 14:
        /* RFC 7540 §3.2.1: hop-by-hop, and the h2c upgrade is never honoured */
        return ac_slice_caseeq(n, AC_LIT("HTTP2-Settings"));
    case 17:
        return ac_slice_caseeq(n, AC_LIT("Transfer-Encoding"));
    default:
        break;
    }
    /* Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, ... */
    return n.len > 6 && ac_slice_caseeq(AC_SLICE(n.p, 6), AC_LIT("Proxy-"));
}

bool
http_conn_lists(const struct h1_header *hdrs, unsigned n, struct ac_slice name)
{
    for (unsigned i = 0; i < n; i++)
        if (ac_slice_caseeq(hdrs[i].name, AC_LIT("Connection")) &&
            h1_list_has_token(hdrs[i].value, name))
            return true;
    return false;
}

bool
http_method_idempotent(struct ac_slice m)
{
    return ac_slice_eq(m, AC_LIT("GET")) || ac_slice_eq(m, AC_LIT("HEAD")) ||
           ac_slice_eq(m, AC_LIT("OPTIONS")) || ac_slice_eq(m, AC_LIT("PUT")) ||
           ac_slice_eq(m, AC_LIT("DELETE")) || ac_slice_eq(m, AC_LIT("TRACE"));
}

const char *
http_reason(int status)
{
    /* RFC 9110 §15 and the common registered extensions. */
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
    }
}

static int
month_index(const char *p)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

    for (int i = 0; i < 12; i++)
        if (memcmp(p, months + 3 * i, 3) == 0)
            return i;
    return -1;
}

static bool
digits(const char *p, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), m 0-based. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    m += 1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool
make_time(int y, int mon, int d, int hh, int mm, int ss, double *t)
{
    if (mon < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
        return false;
    *t = (double)(days_from_civil(y, mon, d) * 86400 + hh * 3600 + mm * 60 + ss);
    return true;
}

bool
http_date_parse(struct ac_slice s, double *t)
{
    const char *p = s.p;
    int d, y, hh, mm, ss, mon;

    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (s.len == 29 && p[3] == ',' && p[4] == ' ' && p[7] == ' ' && p[11] == ' ' &&
        p[16] == ' ' && p[19] == ':' && p[22] == ':' && memcmp(p + 25, " GMT", 4) == 0) {
        if (!digits(p + 5, 2, &d) || (mon = month_index(p + 8)) < 0 || !digits(p + 12, 4, &y) ||
            !digits(p + 17, 2, &hh) || !digits(p + 20, 2, &mm) || !digits(p + 23, 2, &ss))
            return false;
        return make_time(y, mon, d, hh, mm, ss, t);
    }
    /* asctime: "Sun Nov  6 08:49:37 1994" */
    if (s.len == 24 && p[3] == ' ' && p[7] == ' ' && p[10] == ' ' && p[13] == ':' &&
        p[16] == ':' && p[19] == ' ') {
        char dd[2] = { p[8] == ' ' ? '0' : p[8], p[9] };
        if ((mon = month_index(p + 4)) < 0 || !digits(dd, 2, &d) || !digits(p + 11, 2, &hh) ||
            !digits(p + 14, 2, &mm) || !digits(p + 17, 2, &ss) || !digits(p + 20, 4, &y))
            return false;
        return make_time(y, mon, d, hh, mm, ss, t);
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    const char *c = memchr(p, ',', s.len);
    if (c != NULL && (size_t)(p + s.len - c) == 24 && c[1] == ' ' && c[4] == '-' &&
        c[8] == '-' && c[11] == ' ' && c[14] == ':' && c[17] == ':' &&
        memcmp(c + 20, " GMT", 4) == 0) {
        if (!digits(c + 2, 2, &d) || (mon = month_index(c + 5)) < 0 || !digits(c + 9, 2, &y) ||
            !digits(c + 12, 2, &hh) || !digits(c + 15, 2, &mm) || !digits(c + 18, 2, &ss))
            return false;
        y += y < 70 ? 2000 : 1900;     /* RFC 9110 §5.6.7: interpret 2-digit years */
        return make_time(y, mon, d, hh, mm, ss, t);
    }
    return false;
}

size_t
http_date_fmt(double t, char *buf)
{
    static const char wd[] = "ThuFriSatSunMonTueWed";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t secs = (int64_t)t, days = secs / 86400, rem = secs % 86400;
    int64_t z, era, doe, yoe, y, doy, mp, d, m;

    if (rem < 0) {
        rem += 86400;
        days--;
    }
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    int64_t w = ((days % 7) + 7) % 7;
    buf[0] = wd[w * 3];
    buf[1] = wd[w * 3 + 1];
    buf[2] = wd[w * 3 + 2];
    buf[3] = ',';
    buf[4] = ' ';
    buf[5] = (char)('0' + d / 10);
    buf[6] = (char)('0' + d % 10);
    buf[7] = ' ';
    memcpy(buf + 8, months + (m - 1) * 3, 3);
    buf[11] = ' ';
    buf[12] = (char)('0' + (y / 1000) % 10);
    buf[13] = (char)('0' + (y / 100) % 10);
    buf[14] = (char)('0' + (y / 10) % 10);
    buf[15] = (char)('0' + y % 10);
    buf[16] = ' ';
    buf[17] = (char)('0' + rem / 36000);
    buf[18] = (char)('0' + (rem / 3600) % 10);
    buf[19] = ':';
    buf[20] = (char)('0' + (rem % 3600) / 600);
    buf[21] = (char)('0' + ((rem % 3600) / 60) % 10);
    buf[22] = ':';
    buf[23] = (char)('0' + (rem % 60) / 10);
    buf[24] = (char)('0' + rem % 10);
    memcpy(buf + 25, " GMT", 4);
    buf[29] = '\0';
    return 29;
}

bool
http_delta_seconds(struct ac_slice s, int64_t *out)
{
    int64_t v = 0;

    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        if (v < 2147483648LL)
            v = v * 10 + (s.p[i] - '0');
    }
    *out = v > 2147483648LL ? 2147483648LL : v;
    return true;
}

void
http_bad_request_body(char *buf, size_t len, const char *what, const char *reason, size_t off)
{
    size_t wl = strcspn(what, "\n");

    if (reason == NULL)
        snprintf(buf, len, "%.*s\n", (int)wl, what);
    else if (off == SIZE_MAX)
        snprintf(buf, len, "%.*s: %s\n", (int)wl, what, reason);
    else
        snprintf(buf, len, "%.*s: %s (byte %zu)\n", (int)wl, what, reason, off);
}
