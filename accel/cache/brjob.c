/*
 * brjob.c -- the brotli thread: one thread, one FIFO of object references.
 *
 * Why a thread and not the worker: brotli at quality 11 costs about as much
 * CPU per byte as fetching the object did, and a worker that spends 50 ms on
 * a 100 KiB page stalls every other client it serves.  The thread reads the
 * stored body (gunzipping it when it is gzip), compresses it, and appends
 * to the object's alternate body; the memory it needs is the encoder's
 * window plus two 64 KiB buffers, whatever the object's size.
 */
#include "brjob.h"

#include "ac.h"
#include "gz.h"
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define BUFSZ (64 * 1024)

struct job {
    struct job *next;
    struct store_obj *obj;
    int level;
};

/* The job queue; a process global (docs/architecture.md, Globals). */
static struct {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    struct job *head, *tail;
    unsigned depth;
    bool started;
    _Atomic bool stopping;          /* also read by a job in progress */
    pthread_t thr;
    _Atomic uint64_t made, failed, refused, bytes_in, bytes_out;
} q = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Feed n bytes (or finish) through the encoder into the alternate body. */
static int
encode(struct gz_stream *enc, struct store_obj *o, const char *p, size_t n, bool finish,
       char *out, size_t *produced)
{
    for (;;) {
        size_t w = 0;
        int r = gz_run(enc, &p, &n, out, BUFSZ, &w, finish ? GZ_FINISH : GZ_NOFLUSH);
        if (r == GZ_ERR)
            return -1;
        if (w > 0 && store_obj_alt_append(o, out, w) != STORE_OK)
            return -2;
        *produced += w;
        if (r == GZ_END)
            return 0;
        if (n == 0 && w < BUFSZ && !finish)
            return 0;
    }
}

int
brjob_make(struct store_obj *o, int level)
{
    unsigned enc = store_obj_encoding(o);
    size_t len = 0, off = 0, in_total = 0, produced = 0;
    struct gz_stream *dec = NULL, *br = NULL;
    char *out = NULL, *plain = NULL;
    int r = -1;
    bool retry = false;

    if (store_obj_state(o, &len) != STORE_OBJ_COMPLETE ||
        (enc != STORE_ENC_IDENTITY && enc != STORE_ENC_GZIP))
        goto done;
    /* Quality 10-11 costs about a second per MiB: bodies past 1 MiB (a
     * gzip body counted as four times its size) get quality 9 at most, ten
     * times faster, so one big object does not hold up the queue for long. */
    if ((enc == STORE_ENC_GZIP ? len * 4 : len) > (1u << 20) && level > 9)
        level = 9;
    out = malloc(BUFSZ);
    plain = malloc(BUFSZ);
    br = gz_new(GZ_K_BR_ENC, level, enc == STORE_ENC_IDENTITY ? len : 0);
    if (enc == STORE_ENC_GZIP)
        dec = gz_new(GZ_K_GZIP_DEC, 0, 0);
    if (out == NULL || plain == NULL || br == NULL || (enc == STORE_ENC_GZIP && dec == NULL)) {
        retry = true;
        goto done;
    }
    while (off < len) {
        struct store_bytes seg;
        if (atomic_load_explicit(&q.stopping, memory_order_relaxed)) {
            retry = true;       /* shutting down: not this object's fault */
            goto done;
        }
        if (store_obj_read(o, off, &seg, 1) == 0)
            goto done;
        size_t take = AC_MIN(seg.len, len - off);
        off += take;
        if (dec == NULL) {
            in_total += take;
            int e = encode(br, o, seg.p, take, false, out, &produced);
            if (e != 0) {
                retry = e == -2;
                goto done;
            }
            continue;
        }
        const char *p = seg.p;
        size_t n = take;
        for (;;) {
            size_t w = 0;
            int d = gz_run(dec, &p, &n, plain, BUFSZ, &w, GZ_NOFLUSH);
            if (d == GZ_ERR)
                goto done;  /* a corrupt stored body: no brotli for it */
            in_total += w;
            int e = encode(br, o, plain, w, false, out, &produced);
            if (e != 0) {
                retry = e == -2;
                goto done;
            }
            if (n == 0 && w < BUFSZ)
                break;
        }
    }
    if (dec != NULL && !gz_finished(dec))
        goto done;
    if (encode(br, o, NULL, 0, true, out, &produced) != 0) {
        retry = true;
        goto done;
    }
    /* Not smaller than what is stored: serving that body is better. */
    if (produced >= len)
        goto done;
    atomic_fetch_add_explicit(&q.bytes_in, in_total, memory_order_relaxed);
    atomic_fetch_add_explicit(&q.bytes_out, produced, memory_order_relaxed);
    r = 0;
done:
    gz_free(&dec);
    gz_free(&br);
    free(out);
    free(plain);
    if (r == 0 && store_obj_alt_publish(o, STORE_ENC_BR) == STORE_OK) {
        atomic_fetch_add_explicit(&q.made, 1, memory_order_relaxed);
        return 0;
    }
    store_obj_alt_cancel(o, retry);
    atomic_fetch_add_explicit(&q.failed, 1, memory_order_relaxed);
    return -1;
}

static void *
run(void *arg)
{
    (void)arg;
    AC_ZERO(pthread_mutex_lock(&q.mtx));
    for (;;) {
        while (q.head == NULL && !q.stopping)
            AC_ZERO(pthread_cond_wait(&q.cond, &q.mtx));
        if (q.stopping)
            break;
        struct job *j = q.head;
        q.head = j->next;
        if (q.head == NULL)
            q.tail = NULL;
        q.depth--;
        AC_ZERO(pthread_mutex_unlock(&q.mtx));
        (void)brjob_make(j->obj, j->level);
        store_obj_release(&j->obj);
        free(j);
        AC_ZERO(pthread_mutex_lock(&q.mtx));
    }
    AC_ZERO(pthread_mutex_unlock(&q.mtx));
    return NULL;
}

bool
brjob_submit(struct store_obj *o, int level)
{
    struct job *j;

    if (store_obj_alt_begin(o) != STORE_OK)
        return false;
    AC_ZERO(pthread_mutex_lock(&q.mtx));
    if (q.stopping || q.depth >= BRJOB_QUEUE_MAX) {
        AC_ZERO(pthread_mutex_unlock(&q.mtx));
        store_obj_alt_cancel(o, true);
        atomic_fetch_add_explicit(&q.refused, 1, memory_order_relaxed);
        return false;
    }
    if (!q.started) {
        if (pthread_create(&q.thr, NULL, run, NULL) != 0) {
            AC_ZERO(pthread_mutex_unlock(&q.mtx));
            store_obj_alt_cancel(o, true);
            LOG_W("brotli: cannot start the compression thread");
            return false;
        }
        q.started = true;
    }
    j = ac_xcalloc(1, sizeof(*j));
    j->obj = store_obj_ref(o);
    j->level = level;
    if (q.tail != NULL)
        q.tail->next = j;
    else
        q.head = j;
    q.tail = j;
    q.depth++;
    AC_ZERO(pthread_cond_signal(&q.cond));
    AC_ZERO(pthread_mutex_unlock(&q.mtx));
    return true;
}

void
brjob_stats(struct brjob_stats *out)
{
    out->made = atomic_load(&q.made);
    out->failed = atomic_load(&q.failed);
    out->refused = atomic_load(&q.refused);
    out->bytes_in = atomic_load(&q.bytes_in);
    out->bytes_out = atomic_load(&q.bytes_out);
}

void
brjob_fini(void)
{
    struct job *j;

    AC_ZERO(pthread_mutex_lock(&q.mtx));
    q.stopping = true;
    AC_ZERO(pthread_cond_signal(&q.cond));
    bool started = q.started;
    AC_ZERO(pthread_mutex_unlock(&q.mtx));
    if (started)
        AC_ZERO(pthread_join(q.thr, NULL));
    while ((j = q.head) != NULL) {
        q.head = j->next;
        store_obj_alt_cancel(j->obj, true);
        store_obj_release(&j->obj);
        free(j);
    }
    q.tail = NULL;
    q.depth = 0;
    q.started = false;
    q.stopping = false;             /* a later submit may start it again */
}
