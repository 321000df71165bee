/*
 * http.c -- hop-by-hop fields, method properties, reason phrases.
 */
#include "http.h"

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
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
