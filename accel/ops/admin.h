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

struct sess;
enum step;

/* Answer the request of a session accepted on an admin listener. */
enum step admin_request(struct sess *s);
/* A synthetic answer whose body is JSON (Content-Type: application/json),
 * as the admin listener and PURGE/BAN without a policy give; reason NULL:
 * the standard phrase.  json[0..len) is copied. */
/* S_ADMIN: an admin request waiting for the main thread (POST /reload). */
enum step admin_wait_step(struct sess *s);
/* The session is going away: drop what it waits for (sess_free). */
void admin_sess_end(struct sess *s);
enum step admin_answer_json(struct sess *s, int status, const char *reason, const char *json,
                            size_t len);

#endif /* AC_ADMIN_H */
