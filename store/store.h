/*
 * store.h -- the accel object store: a sharded, size-bounded memory tier
 * with S3-FIFO eviction, streaming (busy) objects for request coalescing,
 * invalidation by key, tag and ban, and an optional LMDB disk tier written
 * behind by one writer thread.
 *
 * This header is the manual (LMDB style).  Conventions:
 *  - Functions return int: 0 (STORE_OK) or a negative STORE_E* code, except
 *    store_lookup(), which returns a positive result (STORE_HIT, ...).
 *  - Slices (struct store_bytes) are borrowed; each function says how long
 *    what it hands out stays valid.  Input slices are copied when kept.
 *  - Time is a parameter: the store never reads the clock.  `now` and all
 *    object times are seconds as doubles on one caller-chosen clock (use the
 *    wall clock so times stay meaningful across restarts).
 *  - Every function is thread-safe unless it says otherwise.  Callbacks the
 *    store calls say which locks are held and what they may not do.
 *
 * See docs/store.md for the design, eviction, on-disk format and counters.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed byte range; never NUL-terminated. */
struct store_bytes {
    const void *p;
    size_t len;
};

/* ---- result and error codes -------------------------------------------- */

#define STORE_OK 0
#define STORE_ENOMEM (-30801)   /* allocation failed */
#define STORE_EINVAL (-30802)   /* bad argument or configuration */
#define STORE_ESTATE (-30803)   /* call not allowed in the object's state */
#define STORE_EDISK (-30804)    /* LMDB error (message in the errbuf) */
#define STORE_EVERSION (-30805) /* disk store of another format (not fatal) */
#define STORE_ETOOBIG (-30806)  /* a configured limit was hit */

/* store_lookup() results (positive, so errors stay distinguishable). */
enum store_result {
    STORE_MISS = 1,         /* nothing usable; nothing created */
    STORE_HIT = 2,          /* *objp: a complete object (maybe stale, maybe HFM) */
    STORE_BUSY = 3,         /* *objp: somebody else's busy object: wait/stream */
    STORE_MISS_CREATED = 4, /* *objp: your new busy object: complete or abort it */
};

/* Returns a static string for a STORE_E* code or a store_result. */
const char *store_strerror(int err);

/*
 * Assertion hook: STORE_ASSERT failures (store bugs, never bad input) call
 * fn, then abort().  Process-wide; set it once at start-up, before
 * store_open().  NULL restores the default (message on stderr).
 */
typedef void store_panic_f(const char *func, const char *file, int line, const char *expr);
void store_set_panic_hook(store_panic_f *fn);

/* ---- opaque handles ----------------------------------------------------- */

struct store;     /* one per process; see store_open() */
struct store_obj; /* a cached object, reference counted */

/* ---- callbacks ---------------------------------------------------------- */

/*
 * Vary matching: return true when the object whose variant selector is
 * `selector` may answer the current request.  Called from store_lookup()
 * with a shard lock held (and, for disk hits, inside a short LMDB read
 * transaction): be quick, and call no store function.
 */
typedef bool store_match_f(void *arg, struct store_bytes selector);

/*
 * Ban evaluation: return true when the ban `spec` (the opaque bytes given to
 * store_ban_add()) matches object `obj`, which is then invalidated.  Only
 * the store_obj_* getters may be used on obj.  Called from any thread that
 * calls store_lookup(), store_housekeep() or completes an object, and from
 * the disk writer thread, with store locks held: be quick, thread-safe, and
 * call no other store function.
 */
typedef bool store_ban_match_f(void *arg, struct store_bytes spec, const struct store_obj *obj);

/* ---- configuration ------------------------------------------------------ */

/* Test hook: every key gets the same digest (proves full keys are compared). */
#define STORE_CFG_TEST_CONST_DIGEST 0x1u

struct store_config {
    unsigned shards;         /* power of two; 0: 64 */
    size_t mem_limit;        /* bytes, metadata + bodies; 0: 256 MiB */
    const char *disk_path;   /* directory for LMDB (created); NULL: memory only */
    size_t disk_map_size;    /* LMDB map size in bytes; 0: 1 GiB */
    size_t disk_min_size;    /* write objects whose body is >= this ... */
    size_t disk_max_size;    /* ... and <= this (0: 8 MiB) */
    double disk_min_ttl;     /* ... and whose ttl+grace+keep >= this (s) */
    unsigned disk_queue_max; /* write-behind queue bound; 0: 8192 (excess dropped) */
    store_ban_match_f *ban_match; /* NULL: bans never match */
    void *ban_arg;
    unsigned flags;   /* STORE_CFG_* */
    char *errbuf;     /* optional: store_open() explains failures here */
    size_t errbuf_len;
};

/* Fills *cfg with the defaults (all zero: memory only, 64 shards, 256 MiB). */
void store_config_init(struct store_config *cfg);

/*
 * Opens a store.  With cfg->disk_path, opens (or creates) the LMDB
 * environment there, reloads bans, and starts the writer thread.  A disk
 * store written by an incompatible format version is discarded (emptied);
 * the open succeeds and cfg->errbuf says so.  cfg and its strings are
 * copied.  On success *stp holds the store (owned by the caller; free it
 * with store_close()).  Errors: STORE_EINVAL, STORE_ENOMEM, STORE_EDISK
 * (with a message in cfg->errbuf).
 */
int store_open(const struct store_config *cfg, struct store **stp);

/*
 * Stops the writer thread after it has written every queued object, closes
 * LMDB, frees every object and sets *stp to NULL.  All references the
 * caller took (lookups, store_obj_ref) must have been released and every
 * busy object completed or aborted first.  Not thread-safe against other
 * calls on the same store.
 */
void store_close(struct store **stp);

/*
 * Waits until every object queued for the disk tier before the call is
 * written (committed) or dropped.  For tests, benchmarks and orderly
 * shutdown; the request path never needs it.  No-op without a disk tier.
 */
int store_sync(struct store *st);

/* ---- lookup ------------------------------------------------------------- */

#define STORE_LOOKUP_CREATE 0x1u   /* on miss, create a busy object (MISS_CREATED) */
#define STORE_LOOKUP_REFRESH 0x2u  /* on a stale hit with no fetch under way,
                                    * also create a busy object in *busyp */
#define STORE_LOOKUP_MEM_ONLY 0x4u /* do not consult the disk tier */
#define STORE_LOOKUP_FORCE_MISS 0x8u /* ignore complete objects (hash_always_miss):
                                      * BUSY if a matching fetch runs, else miss */

struct store_lookup {
    struct store_bytes key; /* full key bytes (e.g. host + url) */
    double now;
    store_match_f *match;   /* NULL: every variant matches */
    void *match_arg;
    unsigned flags;         /* STORE_LOOKUP_* */
};

/*
 * Looks up lk->key atomically with respect to other lookups of the same key
 * (one shard lock), so that of several concurrent lookups with
 * STORE_LOOKUP_CREATE exactly one gets STORE_MISS_CREATED and the others
 * STORE_BUSY: request coalescing.
 *
 * Variants (Vary): the store asks lk->match about each complete variant of
 * the key.  A busy object whose metadata is not yet set has an unknown
 * selector, so it is returned as STORE_BUSY to everybody: wait on it, and
 * once it has metadata (store_obj_has_meta()) or is done, check its
 * selector yourself; if it does not match, look up again.  A busy object
 * whose metadata is set is only returned to requests it matches.  This is
 * what Varnish does with its waiting list.
 *
 * Objects past ttl+grace+keep, or invalidated by a ban (evaluated here for
 * objects older than the ban), are removed and never returned.  A memory
 * miss consults the disk tier (short read transaction) and promotes a disk
 * hit into memory.
 *
 * Results, with *objp holding a new reference you must release:
 *  STORE_HIT: a complete object; classify it with store_obj_freshness().
 *     It may carry STORE_OBJ_F_HFM (hit-for-miss: fetch without coalescing
 *     and without creating a busy object).  With STORE_LOOKUP_REFRESH and a
 *     stale object and no busy object for the key, *busyp (if busyp is not
 *     NULL) gets a new busy object you own (background refresh), else NULL.
 *  STORE_BUSY: another caller's busy object.
 *  STORE_MISS_CREATED: a new busy object that you own: set its metadata,
 *     append, then complete or abort it.  It is in the index already.
 *  STORE_MISS: *objp is NULL.
 * Errors (negative): STORE_EINVAL, STORE_ENOMEM.
 */
int store_lookup(struct store *st, const struct store_lookup *lk, struct store_obj **objp,
                 struct store_obj **busyp);

/* ---- objects: references ------------------------------------------------ */

/* Takes one more reference on o.  Returns o. */
struct store_obj *store_obj_ref(struct store_obj *o);

/*
 * Drops the reference in *op and sets *op to NULL (NULL *op: no-op).  The
 * last reference frees the object; an object stays valid for whoever holds
 * a reference even after it was evicted, replaced or invalidated.
 */
void store_obj_release(struct store_obj **op);

/* ---- objects: metadata -------------------------------------------------- */

enum store_encoding {
    STORE_ENC_IDENTITY = 0,
    STORE_ENC_GZIP = 1,
    STORE_ENC_BR = 2,
    STORE_ENC_DEFLATE = 3,
};

#define STORE_OBJ_F_HFM 0x1u /* hit-for-miss: uncacheable marker, no body */

struct store_times {
    double date;   /* origin Date */
    double insert; /* when the store took it */
    double ttl;    /* fresh until insert + ttl */
    double grace;  /* then servable stale for grace seconds */
    double keep;   /* then kept for conditional revalidation */
};

struct store_meta {
    unsigned status;                /* HTTP status */
    struct store_bytes headers;     /* serialised header block, opaque */
    struct store_bytes etag;        /* validators, opaque; len 0: none */
    struct store_bytes last_modified;
    struct store_bytes selector;    /* variant selector (normalised Vary values) */
    const struct store_bytes *tags; /* surrogate keys */
    size_t ntags;
    struct store_times times;
    unsigned encoding;              /* enum store_encoding */
    unsigned flags;                 /* STORE_OBJ_F_* */
    size_t size_hint;               /* expected body length (Content-Length) or 0 */
};

/*
 * Sets the metadata of a busy object you own, copying everything.  Call it
 * once, before the first append (the response headers are known then).
 * Waiters are notified: the selector is now known.  Errors: STORE_ESTATE
 * (not busy or metadata already set), STORE_EINVAL, STORE_ENOMEM.
 */
int store_obj_set_meta(struct store_obj *o, const struct store_meta *m);

/*
 * Getters.  Slices stay valid while you hold a reference to o.  On a busy
 * object without metadata they return zero/empty values.  Safe on any
 * thread.  store_obj_times() reports soft invalidation: ttl is shortened
 * so that the object is stale from the soft purge on.
 */
bool store_obj_has_meta(const struct store_obj *o);
struct store_bytes store_obj_key(const struct store_obj *o);
unsigned store_obj_status(const struct store_obj *o);
struct store_bytes store_obj_headers(const struct store_obj *o);
struct store_bytes store_obj_etag(const struct store_obj *o);
struct store_bytes store_obj_last_modified(const struct store_obj *o);
struct store_bytes store_obj_selector(const struct store_obj *o);
size_t store_obj_tag_count(const struct store_obj *o);
struct store_bytes store_obj_tag(const struct store_obj *o, size_t i); /* i < count */
void store_obj_times(const struct store_obj *o, struct store_times *out);
unsigned store_obj_encoding(const struct store_obj *o);
unsigned store_obj_flags(const struct store_obj *o);
/* Lookups that returned o as a hit so far (VCL's obj.hits), this one included. */
unsigned store_obj_hits(const struct store_obj *o);

enum store_freshness {
    STORE_FRESH = 0,          /* now < insert + ttl */
    STORE_STALE_IN_GRACE = 1, /* ... < + grace: serve stale, refresh in background */
    STORE_STALE_IN_KEEP = 2,  /* ... < + keep: only for conditional revalidation */
    STORE_EXPIRED = 3,
};

/* Classifies o at time now (soft invalidation included). */
enum store_freshness store_obj_freshness(const struct store_obj *o, double now);

/* ---- objects: streaming insert and reading ------------------------------- */

enum store_obj_state {
    STORE_OBJ_BUSY = 0,     /* being fetched; more body may come */
    STORE_OBJ_COMPLETE = 1, /* body final */
    STORE_OBJ_ABORTED = 2,  /* the fetch failed; body incomplete, never cached */
};

/*
 * Appends len bytes to the body of a busy object you own (copied into
 * store memory) and notifies waiters.  Requires metadata.  Errors:
 * STORE_ESTATE, STORE_ENOMEM.  May evict other objects to make room.
 */
int store_obj_append(struct store_obj *o, const void *p, size_t len);

/*
 * Completes a busy object you own: it replaces, in the index, any complete
 * object of the same key and selector (whose readers keep it), becomes
 * evictable, is queued for the disk tier if it meets the criteria, and its
 * waiters are notified.  Requires metadata.  Errors: STORE_ESTATE.
 */
int store_obj_complete(struct store_obj *o);

/*
 * 304 revalidation ("freshen"): completes the busy object `o` you own,
 * whose metadata you have set from the 304 merged with old's, by sharing
 * old's complete body (no copy), then as store_obj_complete().  Readers of
 * old are unaffected.  Errors: STORE_ESTATE (o has a body or is not busy,
 * or old is not complete).
 */
int store_obj_freshen(struct store_obj *o, const struct store_obj *old);

/* Aborts a busy object you own: unlinks it, readers see STORE_OBJ_ABORTED. */
void store_obj_abort(struct store_obj *o);

/*
 * Returns the state of o and, in *lenp (if not NULL), the number of body
 * bytes that have arrived (final when COMPLETE).  Read the state first:
 * when it says COMPLETE, all lenp bytes are readable.
 */
enum store_obj_state store_obj_state(const struct store_obj *o, size_t *lenp);

/*
 * Fills segs[0..nsegs) with the body bytes from offset off that have
 * arrived so far, without copying, and returns the number of slices filled
 * (0: nothing beyond off yet).  Slices stay valid while you hold a
 * reference.  Safe concurrently with the appender.
 */
size_t store_obj_read(const struct store_obj *o, size_t off, struct store_bytes *segs,
                      size_t nsegs);

/* ---- alternate body: a second encoding of a complete object ------------- */

/*
 * An object may carry one alternate body beside its own: the same content
 * in another encoding (accel: a brotli body beside the gzip one), made
 * after the object completed, off the request path.  It lives and dies
 * with the object, so purges, bans, eviction and replacement remove it with
 * the object; a 304 freshening shares it with the new object.  With a disk
 * tier, publishing it writes the object again (if it is still indexed),
 * and a disk hit brings it back.
 *
 * store_obj_alt_begin() claims the right to build it: STORE_OK exactly once
 * per object (until a cancel with retry), STORE_ESTATE when it is built,
 * being built, failed, or the object is not complete.  The builder then
 * appends (STORE_ENOMEM), and ends with store_obj_alt_publish() (readers see
 * it from then on) or store_obj_alt_cancel() (retry: true lets a later
 * begin try again; false marks it failed for good).  Hold a reference on o
 * while building.
 */
int store_obj_alt_begin(struct store_obj *o);
int store_obj_alt_append(struct store_obj *o, const void *p, size_t len);
int store_obj_alt_publish(struct store_obj *o, unsigned encoding);
void store_obj_alt_cancel(struct store_obj *o, bool retry);

/*
 * True when o has a published alternate body; *encp gets its encoding and
 * *lenp its (final) length.  Lock-free, any thread.
 */
bool store_obj_alt(const struct store_obj *o, unsigned *encp, size_t *lenp);
/* Bytes of the alternate body from off, as store_obj_read(); 0 when none. */
size_t store_obj_alt_read(const struct store_obj *o, size_t off, struct store_bytes *segs,
                          size_t nsegs);
enum store_alt_state { STORE_ALT_NONE = 0, STORE_ALT_BUILDING = 1, STORE_ALT_READY = 2,
                       STORE_ALT_FAILED = 3 };
/* Alternate-body state (STORE_ALT_*), for tests and listings. */
int store_obj_alt_state(const struct store_obj *o);

/* ---- waiters ------------------------------------------------------------ */

struct store_waiter;
typedef void store_waiter_f(struct store_waiter *w);

/*
 * A waiter is owned by the caller and embedded in its own struct (recover
 * that with offsetof).  Level-triggered: once subscribed, fn is called
 * after every change of the object (metadata set, bytes appended,
 * complete, abort), from the thread that made the change, with no store
 * lock held, until you unsubscribe.  Any change after subscribe() returned
 * causes at least one later call; so subscribe, then read state and body.
 * fn must be quick (e.g. ev_async_send) and must not free the waiter; it may
 * call store_obj_state/read and store_waiter_unsubscribe on its own waiter.
 * Calls for one waiter never overlap.  Fields starting with _ are private.
 */
struct store_waiter {
    unsigned magic;
    store_waiter_f *fn;
    void *priv; /* yours */
    struct store_waiter *_next, *_prev;
    struct store_obj *_obj;
    int _calling;
};

void store_waiter_init(struct store_waiter *w, store_waiter_f *fn, void *priv);

/*
 * Subscribes w to o.  You must hold a reference on o until you unsubscribe.
 * Errors: STORE_ESTATE (w already subscribed).
 */
int store_waiter_subscribe(struct store_obj *o, struct store_waiter *w);

/*
 * Unsubscribes w (no-op when not subscribed).  When it returns, fn is not
 * running for w (it waits for a call in progress on another thread) and
 * will not be called again: you may free w.  Safe from within fn itself.
 */
void store_waiter_unsubscribe(struct store_waiter *w);

/* ---- invalidation ------------------------------------------------------- */

#define STORE_PURGE_SOFT 0x1u /* make stale now, keep for grace (and keep) */

/*
 * Invalidates every variant of key (busy objects are unlinked too: their
 * readers continue, new lookups miss), in memory, in the write-behind queue
 * and on disk (synchronous LMDB commit before returning: durable).  *countp
 * (if not NULL) gets the number of objects invalidated.  Soft: objects stay
 * but are stale from now on; on disk a soft purge deletes (see docs).
 * Errors: STORE_EDISK.
 */
int store_purge_key(struct store *st, struct store_bytes key, unsigned flags, double now,
                    size_t *countp);

/* Same by surrogate key (tag), through the tag indexes of both tiers. */
int store_purge_tag(struct store *st, struct store_bytes tag, unsigned flags, double now,
                    size_t *countp);

/*
 * Records a ban: every object inserted before it (busy creation counts as
 * insertion) for which the configured ban_match callback returns true is
 * invalidated, lazily at lookup, or by store_housekeep().  An identical
 * older ban is replaced.  Persisted (synchronous commit) before returning.
 * spec is copied.  Errors: STORE_ENOMEM, STORE_EDISK.
 */
int store_ban_add(struct store *st, struct store_bytes spec, double now);

/* Ban listing: fn(arg, spec, time) for each active ban, newest first, with
 * the ban lock held (call no store function).  Return nonzero to stop. */
typedef int store_ban_iter_f(void *arg, struct store_bytes spec, double time);
int store_ban_iter(struct store *st, store_ban_iter_f *fn, void *arg);

/*
 * Background step, to call from a timer (any one thread at a time): expiry
 * sweep of both tiers and ban lurker, visiting at most `budget` objects per
 * tier (0: 1000), and retiring bans once every older object was checked.
 * Returns STORE_OK or STORE_EDISK.
 */
int store_housekeep(struct store *st, double now, unsigned budget);

/* ---- application records ----------------------------------------------- */

/*
 * A few small named values the application keeps beside the cache, durable
 * with the disk tier (accel's cluster bus keeps its stream position here,
 * so a restarted node knows which invalidations it already applied).  They
 * live in the disk tier's metadata under a prefix of their own; a disk
 * store discarded for its format version loses them with the objects.
 * Without a disk tier nothing is kept: put succeeds, get answers MISS.
 *
 * store_meta_put() copies value (at most STORE_META_MAX bytes; name at most
 * 64) and commits synchronously before it returns (durable).  Errors:
 * STORE_EINVAL, STORE_EDISK.
 * store_meta_get() copies up to cap bytes into buf and sets *lenp to the
 * value's length; STORE_MISS when absent.  Errors: STORE_EINVAL (cap too
 * small: *lenp says how much is needed), STORE_EDISK.
 * store_has_disk() says whether st has a disk tier.
 */
#define STORE_META_MAX 1024
int store_meta_put(struct store *st, struct store_bytes name, struct store_bytes value);
int store_meta_get(struct store *st, struct store_bytes name, void *buf, size_t cap, size_t *lenp);
bool store_has_disk(const struct store *st);

/* ---- introspection ------------------------------------------------------- */

/* X(name, description): the counters of struct store_stats. */
#define STORE_STATS_LIST(X)                                                                   \
    X(mem_lookups, "memory lookups")                                                          \
    X(mem_hits, "memory hits (incl. stale, HFM)")                                             \
    X(mem_busy, "lookups that found a busy object")                                           \
    X(mem_misses, "memory misses")                                                            \
    X(mem_inserts, "objects completed into memory (incl. promotions)")                       \
    X(mem_bytes, "bytes in memory (metadata + bodies)")                                      \
    X(mem_limit, "configured memory limit")                                                   \
    X(mem_objects, "objects in the memory index")                                             \
    X(mem_evictions, "objects evicted for memory")                                            \
    X(mem_expiries, "objects removed past ttl+grace+keep")                                    \
    X(mem_invalidations, "objects invalidated (key, tag, ban)")                               \
    X(disk_lookups, "disk lookups")                                                           \
    X(disk_hits, "disk hits (promoted)")                                                      \
    X(disk_misses, "disk misses")                                                             \
    X(disk_inserts, "records written")                                                        \
    X(disk_bytes, "bytes written (records)")                                                  \
    X(disk_objects, "records on disk")                                                        \
    X(disk_evictions, "records evicted when the map was full")                                \
    X(disk_expiries, "records removed past ttl+grace+keep")                                   \
    X(disk_invalidations, "records invalidated (key, tag, ban)")                              \
    X(disk_queue_depth, "write-behind queue depth")                                           \
    X(disk_queue_dropped, "writes dropped: queue full")                                       \
    X(disk_skipped_full, "writes skipped: map full even after eviction")                      \
    X(disk_commits, "LMDB write commits")                                                     \
    X(disk_commit_us_total, "total commit latency (us)")                                      \
    X(disk_commit_us_max, "max commit latency (us)")                                          \
    X(disk_corrupt, "records dropped as corrupt, torn or foreign")                            \
    X(bans, "active bans")                                                                    \
    X(bans_added, "bans added")                                                               \
    X(bans_retired, "bans retired")

struct store_stats {
#define STORE_STATS_FIELD(n, d) uint64_t n;
    STORE_STATS_LIST(STORE_STATS_FIELD)
#undef STORE_STATS_FIELD
};

/* Fills *out with a snapshot (each counter consistent, not all together). */
void store_stats(struct store *st, struct store_stats *out);

/*
 * Admin listing of the memory index: fn(arg, o) for each object (busy
 * included), shard by shard with that shard's lock held; use only the
 * getters, take a store_obj_ref() to keep o past the call.  Return nonzero
 * from fn to stop; store_iter returns that value (0 when complete).
 */
typedef int store_iter_f(void *arg, const struct store_obj *o);
int store_iter(struct store *st, store_iter_f *fn, void *arg);

#endif /* STORE_H */
