/*
 * vcl_builtin.c -- the built-in policy, Varnish's builtin.vcl in vcl-lite.
 *
 * It is compiled into every program after the user's files, so each built-in
 * sub runs the user's bodies first and falls through to these (Varnish
 * semantics).  The caching defaults of the proxy live here: pass requests
 * with credentials, pipe unknown methods, pass anything but GET/HEAD, and
 * mark uncacheable answers hit-for-miss.  accel computes beresp.ttl from the
 * RFC 9111 headers before vcl_backend_response runs, as Varnish does, so the
 * builtin never sets a blanket TTL: only the hit-for-miss one.
 */
#include "vcl.h"
#include "vcl_int.h"

#include <stdio.h>

#define BUILTIN_HEAD                                                                             \
    "vcl 4.1;\n"                                                                                 \
    "\n"                                                                                         \
    "# accel built-in policy (Varnish builtin.vcl semantics).  Every built-in sub\n"            \
    "# of a policy continues here when the policy's own bodies do not return.\n"                \
    "\n"                                                                                         \
    "sub vcl_recv {\n"                                                                           \
    "    if (req.method == \"PRI\") {\n"                                                         \
    "        # HTTP/2 preface on an HTTP/1 connection\n"                                         \
    "        return (synth(405));\n"                                                             \
    "    }\n"                                                                                    \
    "    if (!req.http.host && req.esi_level == 0 && req.proto ~ \"^(?i)HTTP/1.1\") {\n"        \
    "        # HTTP/1.1 requires a Host header\n"                                                \
    "        return (synth(400));\n"                                                             \
    "    }\n"                                                                                    \
    "    if (req.method != \"GET\" &&\n"                                                         \
    "      req.method != \"HEAD\" &&\n"                                                          \
    "      req.method != \"PUT\" &&\n"                                                           \
    "      req.method != \"POST\" &&\n"                                                          \
    "      req.method != \"TRACE\" &&\n"                                                         \
    "      req.method != \"OPTIONS\" &&\n"                                                       \
    "      req.method != \"DELETE\" &&\n"                                                        \
    "      req.method != \"PATCH\") {\n"                                                         \
    "        # unknown method (or CONNECT): hand the connection to the origin\n"                \
    "        return (pipe);\n"                                                                   \
    "    }\n"                                                                                    \
    "    if (req.method != \"GET\" && req.method != \"HEAD\") {\n"                               \
    "        # only GET and HEAD are cached by default\n"                                        \
    "        return (pass);\n"                                                                   \
    "    }\n"                                                                                    \
    "    if (req.http.Authorization || req.http.Cookie) {\n"                                     \
    "        # personalised: not cacheable by default\n"                                         \
    "        return (pass);\n"                                                                   \
    "    }\n"                                                                                    \
    "    return (hash);\n"                                                                       \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_pipe {\n"                                                                           \
    "    return (pipe);\n"                                                                       \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_pass {\n"                                                                           \
    "    return (fetch);\n"                                                                      \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_hash {\n"                                                                           \
    "    hash_data(req.url);\n"                                                                  \
    "    if (req.http.host) {\n"                                                                 \
    "        hash_data(req.http.host);\n"                                                        \
    "    } else {\n"                                                                             \
    "        hash_data(server.ip);\n"                                                            \
    "    }\n"                                                                                    \
    "    return (lookup);\n"                                                                     \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_purge {\n"                                                                          \
    "    return (synth(200, \"Purged\"));\n"                                                    \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_hit {\n"                                                                            \
    "    return (deliver);\n"                                                                    \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_miss {\n"                                                                           \
    "    return (fetch);\n"                                                                      \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_deliver {\n"                                                                        \
    "    return (deliver);\n"                                                                    \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_synth {\n"                                                                          \
    "    set resp.http.Content-Type = \"text/html; charset=utf-8\";\n"                           \
    "    set resp.http.Retry-After = \"5\";\n"                                                   \
    "    synthetic({\"<!DOCTYPE html>\n"                                                         \
    "<html>\n"                                                                                   \
    "  <head>\n"                                                                                 \
    "    <title>\"} + resp.status + \" \" + resp.reason + {\"</title>\n"                         \
    "  </head>\n"                                                                                \
    "  <body>\n"                                                                                 \
    "    <h1>Error \"} + resp.status + \" \" + resp.reason + {\"</h1>\n"                         \
    "    <p>\"} + resp.reason + {\"</p>\n"                                                       \
    "    <p>XID: \"} + req.xid + {\"</p>\n"                                                      \
    "    <hr>\n"                                                                                 \
    "    <p>accel</p>\n"                                                                         \
    "  </body>\n"                                                                                \
    "</html>\n"                                                                                  \
    "\"});\n"                                                                                    \
    "    return (deliver);\n"                                                                    \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_backend_fetch {\n"                                                                  \
    "    return (fetch);\n"                                                                      \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_backend_response {\n"                                                               \
    "    if (bereq.uncacheable) {\n"                                                             \
    "        return (deliver);\n"                                                                \
    "    } else if (beresp.ttl <= 0s ||\n"                                                       \
    "      beresp.http.Set-Cookie ||\n"                                                          \
    "      beresp.http.Surrogate-Control ~ \"(?i)no-store\" ||\n"                                \
    "      (!beresp.http.Surrogate-Control &&\n"                                                 \
    "        beresp.http.Cache-Control ~ \"(?i:no-cache|no-store|private)\") ||\n"               \
    "      beresp.http.Vary == \"*\") {\n"                                                       \
    "        # uncacheable: remember it as hit-for-miss so later requests\n"                    \
    "        # go straight to the origin instead of queueing behind a fetch\n"                  \
    "        set beresp.ttl = "
#define BUILTIN_TAIL                                                                             \
    ";\n"                                                                                        \
    "        set beresp.uncacheable = true;\n"                                                   \
    "    }\n"                                                                                    \
    "    return (deliver);\n"                                                                    \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_backend_error {\n"                                                                  \
    "    set beresp.http.Content-Type = \"text/html; charset=utf-8\";\n"                         \
    "    set beresp.http.Retry-After = \"5\";\n"                                                 \
    "    synthetic({\"<!DOCTYPE html>\n"                                                         \
    "<html>\n"                                                                                   \
    "  <head>\n"                                                                                 \
    "    <title>\"} + beresp.status + \" \" + beresp.reason + {\"</title>\n"                     \
    "  </head>\n"                                                                                \
    "  <body>\n"                                                                                 \
    "    <h1>Error \"} + beresp.status + \" \" + beresp.reason + {\"</h1>\n"                     \
    "    <p>\"} + beresp.reason + {\"</p>\n"                                                     \
    "    <p>XID: \"} + bereq.xid + {\"</p>\n"                                                    \
    "    <hr>\n"                                                                                 \
    "    <p>accel</p>\n"                                                                         \
    "  </body>\n"                                                                                \
    "</html>\n"                                                                                  \
    "\"});\n"                                                                                    \
    "    return (deliver);\n"                                                                    \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_init {\n"                                                                           \
    "    return (ok);\n"                                                                         \
    "}\n"                                                                                        \
    "\n"                                                                                         \
    "sub vcl_fini {\n"                                                                           \
    "    return (ok);\n"                                                                         \
    "}\n"

const char *
vcl_builtin_source(void)
{
    return BUILTIN_HEAD "120s" BUILTIN_TAIL;
}

/* The builtin with the configured hit-for-miss TTL, in buf. */
const char *
vcl_builtin_text(double hfm_ttl, char *buf, size_t len)
{
    if (hfm_ttl <= 0 || hfm_ttl == 120)
        return vcl_builtin_source();
    snprintf(buf, len, "%s%.3fs%s", BUILTIN_HEAD, hfm_ttl, BUILTIN_TAIL);
    return buf;
}
