/*
 * brjob.h -- brotli bodies made off the request path.  A complete cached
 * object whose policy asked for brotli gets, once, an alternate body
 * (store_obj_alt_*) compressed from its stored body (gzip or identity) by
 * one background thread at a good quality level.  Hits use it as soon as
 * it is published; until then br clients get gzip (or identity).
 */
#ifndef AC_BRJOB_H
#define AC_BRJOB_H

#include "store.h"

#include <stdint.h>

/* Jobs waiting at most; more are refused (a later hit submits again). */
#define BRJOB_QUEUE_MAX 4096

/*
 * Queue o (complete, encoding identity or gzip) for a brotli body at
 * quality level.  Claims the object's alternate body first, so an object
 * is compressed once however many requests ask.  Starts the thread on
 * first use.  Takes its own reference.  Returns true when queued; false
 * when the object has (or is getting, or failed to get) one, or the queue
 * is full.  Any thread.
 */
bool brjob_submit(struct store_obj *o, int level);

/*
 * Make the brotli body of o now, on the calling thread (the job thread's
 * work; also for tests).  The caller must have claimed it with
 * store_obj_alt_begin().  Publishes it, or cancels when the input does not
 * decode (failed for good), memory runs out (retry later), or the result
 * is not smaller than the stored body (failed for good: gzip is served).
 * Returns 0 when published, -1 otherwise.
 */
int brjob_make(struct store_obj *o, int level);

/* Counters since start (any thread). */
struct brjob_stats {
    uint64_t made, failed, refused, bytes_in, bytes_out;
};
void brjob_stats(struct brjob_stats *out);

/*
 * Stop the thread after the job in progress, drop queued jobs (their
 * claims are released) and wait for it.  Call before store_close().
 * No-op when the thread never started.
 */
void brjob_fini(void);

#endif /* AC_BRJOB_H */
