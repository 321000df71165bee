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
 */
#ifndef AC_ADMIN_H
#define AC_ADMIN_H

struct req;
enum step;

/* Answer a request that came on an admin listener. */
enum step admin_request(struct req *req);

#endif /* AC_ADMIN_H */
