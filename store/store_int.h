/*
 * store_int.h -- internals shared by the store/ sources.  Nothing outside
 * store/ includes this, except the record fuzz target (to reach the
 * decoder) and white-box tests that say why.
 *
 * Locking order (never take them the other way round):
 *   shard mutex -> tag stripe mutex
 *   shard mutex -> ban rwlock (read)
 *   disk queue mutex and waiter stripe mutexes are leaves.
 * No callback into the caller runs with a waiter stripe or queue mutex held.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include "store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* ---- assertions (stay on in release builds) ---- */

void store_panic(const char *func, const char *file, int line, const char *expr);
#define STORE_ASSERT(e) ((e) ? (void)0 : store_panic(__func__, __FILE__, __LINE__, #e))
#define STORE_ZERO(e) STORE_ASSERT((e) == 0)
#define STORE_NOTNULL(p) STORE_ASSERT((p) != NULL)
#define STORE_CHECK_OBJ(p, m)                                                                  \
    do {                                                                                       \
        STORE_NOTNULL(p);                                                                      \
        STORE_ASSERT((p)->magic == (m));                                                       \
    } while (0)

#define STORE_MAGIC 0xbbad471fu
#define STORE_OBJ_MAGIC 0x310bc394u
#define STORE_HEAD_MAGIC 0x2e9be709u
#define STORE_BODY_MAGIC 0x80412eaeu
#define STORE_WAITER_MAGIC 0x9d29aa9au
#define STORE_BAN_MAGIC 0x3e5445edu
#define STORE_DISK_MAGIC 0xb7b14aa0u

/* Allocation of small fixed-size things aborts on failure (STYLE.md). */
void *store_xmalloc(size_t n);
void *store_xcalloc(size_t n, size_t m);

#define STORE_DIGEST_LEN 16
#define STORE_WSTRIPES 64  /* waiter lock stripes */
#define STORE_TSTRIPES 16  /* tag index stripes */
#define STORE_SEG_MIN 1024
#define STORE_SEG_MAX (256 * 1024)

/* ---- body: segments shared by an object and its freshened copies ---- */

struct store_seg {
    struct store_seg *_Atomic next; /* published after the data it covers */
    size_t cap;
    size_t used; /* appender only */
    char data[];
};

struct store_body {
    unsigned magic;
    atomic_uint refcnt;     /* objects sharing it */
    struct store *st;
    _Atomic size_t len;     /* bytes readable (release after the copy) */
    struct store_seg *_Atomic first;
    struct store_seg *tail; /* appender only */
    _Atomic size_t charge;
};

/* ---- tag index link: one per tag of an indexed object ---- */

struct store_tag_link {
    struct store_tag_link *next, *prev; /* tag stripe lock */
    struct store_obj *obj;
    uint8_t digest[STORE_DIGEST_LEN];
    int linked;
};

/* ---- immutable metadata block, published once ---- */

struct store_mblock {
    unsigned status, encoding, flags;
    struct store_times times;
    struct store_bytes headers, etag, last_modified, selector;
    size_t ntags;
    struct store_bytes *tags;
    struct store_tag_link *links;
    size_t size_hint;
    size_t charge;
};

/*
 * An object.  References: the index holds one while the object is linked
 * (head != NULL), each lookup result one, the disk queue one per pending
 * write.  Fields marked "shard" are protected by the shard mutex.
 */
struct store_obj {
    unsigned magic;
    atomic_uint refcnt;
    struct store *st;
    struct store_head *head;          /* shard; NULL when unlinked */
    struct store_obj *vnext, *vprev;  /* shard: the head's variants */
    struct store_obj *qnext, *qprev;  /* shard: eviction queue */
    uint8_t queue;                    /* shard: Q_NONE, Q_SMALL, Q_MAIN */
    uint8_t freq;                     /* shard: S3-FIFO frequency, 0..3 */
    _Atomic uint32_t hits;            /* lookups that returned it (obj.hits) */
    _Atomic int state;                /* enum store_obj_state */
    struct store_mblock *_Atomic meta;
    struct store_body *_Atomic body;  /* NULL: empty so far */
    _Atomic uint64_t soft_at;         /* double bits; 0: no soft purge */
    _Atomic uint64_t ban_seq;         /* newest ban already checked */
    _Atomic int invalid;              /* purged/banned: never (re)write to disk */
    /* alternate body (another encoding), made after completion by one
     * builder: alt_state goes NONE -> BUILDING -> READY (or back to NONE,
     * or FAILED); alt is published once, with a release store, when READY. */
    _Atomic int alt_state;
    struct store_body *alt_build;     /* the builder only */
    struct store_body *_Atomic alt;   /* published alternate body */
    unsigned alt_enc;                 /* written before alt is published */
    size_t qcharge;                   /* shard: bytes accounted in the queue */
    double expires;                   /* shard: store_obj_expiry() cached once indexed */
    size_t charge;                    /* obj allocation incl. key */
    /* waiters: protected by st->wlocks[stripe] */
    struct store_waiter *waiters;
    struct store_waiter *notify_next;
    int notifying, notify_again;
    pthread_t notifier;
    uint8_t digest[STORE_DIGEST_LEN];
    size_t keylen;
    char key[];
};

enum { Q_NONE = 0, Q_SMALL = 1, Q_MAIN = 2 };

/* A key: the variants of one key live on one head. */
struct store_head {
    unsigned magic;
    struct store_head *hnext;   /* bucket chain */
    struct store_obj *variants; /* newest first */
    uint8_t digest[STORE_DIGEST_LEN];
    size_t charge;
    size_t keylen;
    char key[];
};

struct store_shard {
    /* first cache line: what every hit touches (two threads hitting the
     * same shard move one line, not two) */
    pthread_mutex_t mtx;
    struct store_head **buckets;
    uint64_t lookups, hits;
    size_t nbuckets, nheads;
    /* S3-FIFO: newest at *_head, evict at *_tail */
    struct store_obj *small_head, *small_tail, *main_head, *main_tail;
    size_t small_bytes, main_bytes, main_count;
    uint64_t *ghost;
    size_t ghost_mask;
    uint32_t ghost_clock;
    /* counters (shard lock) */
    uint64_t busy, misses, inserts, evictions, expiries, invalidations, objects;
} __attribute__((aligned(64)));

struct store_tag_stripe {
    pthread_mutex_t mtx;
    struct store_tag_link **buckets;
    size_t mask;
} __attribute__((aligned(64)));

struct store_ban {
    unsigned magic;
    struct store_ban *next; /* older */
    uint64_t seq;
    double time;
    bool all;   /* restored from a corrupt record: matches every older object */
    size_t len;
    char spec[];
};

struct store_disk;

struct store {
    unsigned magic;
    struct store_config cfg; /* disk_path/errbuf not kept */
    unsigned nshards, shard_mask;
    struct store_shard *shards;
    _Atomic size_t mem_used;
    size_t mem_limit;
    _Atomic unsigned evict_rr;
    pthread_mutex_t wlocks[STORE_WSTRIPES];
    pthread_cond_t wconds[STORE_WSTRIPES];
    struct store_tag_stripe tags[STORE_TSTRIPES];
    /* bans */
    pthread_rwlock_t ban_lock;
    pthread_mutex_t ban_add_mtx;   /* serialises store_ban_add and retiring */
    struct store_ban *bans;        /* newest first; ban_lock */
    _Atomic uint64_t ban_newest;   /* seq of the newest ban ever added */
    uint64_t ban_count, bans_added, bans_retired; /* ban_lock */
    /* housekeeping (one caller at a time) */
    pthread_mutex_t hk_mtx;
    unsigned hk_shard;
    size_t hk_bucket;
    uint64_t hk_mem_target;        /* ban seq the running memory pass checks to */
    bool hk_mem_running, hk_mem_incomplete;
    uint64_t hk_mem_done;          /* last completed memory pass target */
    uint64_t hk_disk_done;         /* last completed disk pass target */
    struct store_disk *disk;       /* NULL: memory only */
};

/* ---- store.c ---- */
void store_digest(const struct store *st, const void *p, size_t len, uint8_t out[STORE_DIGEST_LEN]);
uint64_t store_hash64(const void *p, size_t len, uint64_t seed);
struct store_shard *store_shard_of(struct store *st, const uint8_t digest[STORE_DIGEST_LEN]);
void store_mem_charge(struct store *st, size_t n);
void store_mem_uncharge(struct store *st, size_t n);
void store_mem_reclaim(struct store *st, unsigned hint);
/* Under the shard lock: remove o from the index, its queue and the tag index;
 * drops the index reference (may free o). */
struct store_head *store_head_find(struct store_shard *sh, const uint8_t digest[STORE_DIGEST_LEN],
                                   struct store_bytes key);
void store_unlink_locked(struct store_shard *sh, struct store_obj *o);
/* Index side of store_obj_complete/abort/set_meta (take the shard lock). */
bool store_index_complete(struct store_obj *o);
void store_index_abort(struct store_obj *o);
void store_index_meta_set(struct store_obj *o);
void store_format_msg(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- store_obj.c ---- */
struct store_obj *store_obj_new(struct store *st, const uint8_t digest[STORE_DIGEST_LEN],
                                struct store_bytes key);
int store_obj_meta_copy(struct store_obj *o, const struct store_meta *m);
int store_obj_body_append(struct store_obj *o, const void *p, size_t len);
double store_obj_expiry(const struct store_obj *o); /* insert+ttl+grace+keep, soft included */
void store_obj_notify(struct store_obj *o);
bool store_bytes_eq(struct store_bytes a, struct store_bytes b);
size_t store_obj_body_len(const struct store_obj *o);
static inline struct store_mblock *
store_obj_meta(const struct store_obj *o)
{
    return atomic_load_explicit(&((struct store_obj *)o)->meta, memory_order_acquire);
}
/* Under the shard lock: link/unlink o's tags into the tag index. */
void store_tags_link(struct store *st, struct store_obj *o);
void store_tags_unlink(struct store *st, struct store_obj *o);

/* ---- store_inval.c ---- */
/* Evaluates bans newer than o->ban_seq; true: banned.  Any lock but ban_lock. */
bool store_ban_check(struct store *st, const struct store_obj *o, uint64_t obj_ban_seq,
                     uint64_t *checked);
int store_bans_init(struct store *st);
void store_bans_free(struct store *st);
/* used by the disk tier at open to restore persisted bans (oldest first) */
int store_ban_restore(struct store *st, uint64_t seq, double time, struct store_bytes spec,
                      bool all);

/* ---- store_record.c: the on-disk record ---- */
#define STORE_REC_MAGIC 0x52534341u /* "ACSR" little-endian */
#define STORE_REC_VERSION 1
#define STORE_REC_HDR 16
#define STORE_REC_MAX_TAGS 4096

#define STORE_REC_F_ALT 0x1u /* header flag: an alternate body follows the body */
#define STORE_REC_ALT_FIXED 12 /* alt encoding u8 | pad u8 | pad u16 | alt len u64 */

struct store_record {
    uint64_t ban_seq;
    unsigned status, encoding, flags;
    unsigned alt_encoding;       /* with alt.p != NULL */
    struct store_times times;
    struct store_bytes key, selector, headers, etag, last_modified, body;
    struct store_bytes alt;      /* the alternate body; p NULL: none */
    size_t ntags;
    struct store_bytes tags_raw; /* ntags x (u16 len, bytes), validated */
};

/* Encoded size of o (complete), or 0 when it cannot be encoded. */
size_t store_record_size(const struct store_obj *o);
/* Encodes o with times *t (from store_obj_times) into buf[0..len) (len from
 * store_record_size); returns bytes written. */
size_t store_record_encode(const struct store_obj *o, uint64_t ban_seq, const struct store_times *t,
                           void *buf, size_t len);
/* Validates and decodes; 0 or -1 (corrupt/torn/foreign).  *r points into buf. */
int store_record_decode(const void *buf, size_t len, struct store_record *r);
/* Tag i of a decoded record (walks; for few tags). */
struct store_bytes store_record_tag(const struct store_record *r, size_t i);
/* Sets and publishes o's alternate body from bytes (a record's), without
 * reclaiming memory (the caller may be inside a disk read).  0 or ENOMEM. */
int store_obj_alt_restore(struct store_obj *o, unsigned encoding, struct store_bytes b);
/* Under no lock: is o in the index?  Takes the shard lock. */
bool store_index_linked(struct store_obj *o, bool enqueue_for_disk);
/* Builds a complete, unlinked object (refcnt 1) from a decoded record. */
struct store_obj *store_obj_from_record(struct store *st, const uint8_t digest[STORE_DIGEST_LEN],
                                        const struct store_record *r);

/* ---- store_disk.c ---- */
int store_disk_open(struct store *st, const struct store_config *cfg);
void store_disk_close(struct store *st);
void store_disk_enqueue(struct store *st, struct store_obj *o);
/* 1: *op is a promoted-to-be object (unlinked, refcnt 1); 0: none; <0 error */
int store_disk_lookup(struct store *st, const uint8_t digest[STORE_DIGEST_LEN],
                      const struct store_lookup *lk, struct store_obj **op);
int store_disk_purge_key(struct store *st, const uint8_t digest[STORE_DIGEST_LEN],
                         struct store_bytes key, size_t *countp);
int store_disk_purge_tag(struct store *st, struct store_bytes tag, size_t *countp);
int store_disk_ban_put(struct store *st, const struct store_ban *b, uint64_t replaced_seq);
int store_disk_ban_del(struct store *st, uint64_t seq);
int store_disk_housekeep(struct store *st, double now, unsigned budget, uint64_t target,
                         bool *pass_done);
void store_disk_stats(struct store *st, struct store_stats *out);
/* Marks queued (not yet written) objects for key or tag invalid. */
/* Smallest ban_seq among objects queued or being written (UINT64_MAX: none). */
uint64_t store_disk_queue_min_ban(struct store *st);
void store_disk_queue_invalidate(struct store *st, const uint8_t *digest, struct store_bytes key,
                                 struct store_bytes tag);

#endif /* STORE_INT_H */
