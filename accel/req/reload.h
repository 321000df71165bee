/*
 * reload.h -- reloading the policy and the certificates, on SIGHUP and on
 * the admin listener's POST /reload, whose answer is the compile result.
 *
 * Both run on the main thread (reload_all()); a worker that takes a POST
 * /reload only queues a reload request here and waits, like any request
 * waiting on something outside its worker, for a wrk_wakeup with the
 * result:
 *
 *   worker                               main thread
 *   r = reload_req_submit(w, wu) ----->  poll() sees reload_queue_fd()
 *   (request waits in R_ADMIN)           reload_queue_serve(): takes every
 *                                        queued request, runs one reload,
 *   reload_req_result(&r, ...)  <-----   stores the result, wrk_wake(w, wu)
 *
 * A request that goes away meanwhile calls reload_req_abandon(); the main
 * thread then frees the reload request instead of waking anybody.  All of
 * it is under one mutex, so wu is never queued after it abandoned.
 */
#ifndef AC_RELOAD_H
#define AC_RELOAD_H

#include "ac.h"
#include "buf.h"
#include "config.h"

struct wrk;
struct wrk_wakeup;
struct vcl_program;

/*
 * Compile cfg->vcl_file again and install it on the workers (on failure
 * the running policy stays), then read the certificates (-c) again (on
 * failure the running ones stay).  Everything is logged; msg (reset here)
 * gets the outcome as text: "" on success, else the compiler's
 * diagnostics (file:line:col: error: ..., with the source line and caret)
 * or the reason.  Returns 0 when everything reloaded, -1 when something
 * failed, 1 when there was nothing to reload (no -f, no -c).  Main thread.
 */
int reload_all(const struct config *cfg, struct wrk *ws, struct vcl_program **progp,
               struct ac_buf *msg);

/* The queue of POST /reload requests.  _init makes its eventfd (0 or -1);
 * _fd is what the main thread polls (readable: call _serve). */
int reload_queue_init(void);
int reload_queue_fd(void);
/* Main thread: take every queued request, run one reload with run(arg,
 * msg) (reload_all), hand its result to each.  No-op when none is queued. */
void reload_queue_serve(int (*run)(void *arg, struct ac_buf *msg), void *arg);
/* Free what is left (abandoned requests) and the eventfd; at exit. */
void reload_queue_fini(void);

struct reload_req;

/* Worker: queue a reload; when it ran, wu is queued on w (wrk_wake()).
 * The reload request is the caller's until reload_req_result() said done
 * or reload_req_abandon(); wu must stay valid until then. */
struct reload_req *reload_req_submit(struct wrk *w, struct wrk_wakeup *wu);
/* Worker: true when the reload ran; then *status is reload_all()'s value,
 * msg (reset) its text, and *rp is freed and NULL. */
bool reload_req_result(struct reload_req **rp, int *status, struct ac_buf *msg);
/* Worker: the request is going away (or gave up waiting); NULL-safe.
 * A wake-up already queued is the caller's to cancel (wrk_wake_cancel()). */
void reload_req_abandon(struct reload_req **rp);

#endif /* AC_RELOAD_H */
