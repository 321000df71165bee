/*
 * admin.h -- the admin listener (-T ADDR:PORT): purge, ban and inspect the
 * cache over HTTP with JSON answers, optionally guarded by a shared secret
 * (-S FILE; clients send it in X-Admin-Secret).
 *
 *   POST /purge?url=/path[&host=example.com][&soft=1]   every variant of a URL
 *   POST /purge?tag=article-42[&soft=1]                  every object with a tag
 *   POST /ban?expr=<url-encoded expression>              (or the expression in Ban:)
 *   GET  /bans                                           active bans, newest first
 *   GET  /stats                                          store counters
 *   POST /reload                                         compile the policy and read the
 *                                                        certificates again; the answer is
 *                                                        the result ({"status": "ok"} or
 *                                                        {"status": "error", "message": ...})
 */
#ifndef AC_ADMIN_H
#define AC_ADMIN_H

#include <stddef.h>

struct req;
enum step;

/* Answer a request that came on an admin listener. */
enum step admin_request(struct req *req);
/* A synthetic answer whose body is JSON (Content-Type: application/json),
 * as the admin listener and PURGE/BAN without a policy give; reason NULL:
 * the standard phrase.  json[0..len) is copied. */
enum step admin_answer_json(struct req *req, int status, const char *reason, const char *json,
                            size_t len);
/* R_ADMIN: an admin request waiting for the main thread (POST /reload);
 * woken through its wrk_wakeup when the result is there. */
enum step admin_wait_step(struct req *req);
/* The request ends (req_end()): drop what it waits for.  No-op for one
 * that waits for nothing. */
void admin_req_end(struct req *req);

#endif /* AC_ADMIN_H */
