/*
 * store_bench.c -- store benchmarks (not a test: prints figures, asserts
 * nothing about speed).  Each section runs for about a second.
 *
 *   build/bench/store_bench [seconds-per-section]   (default 1)
 *
 * 1. memory-tier hits/s, small objects, 1 and 2 threads
 * 2. disk-tier hits/s (memory tier too small to hold the set)
 * 3. insert throughput with write-behind (caller side and until committed)
 * 4. hit ratio of the store's S3-FIFO vs an LRU simulator at equal memory,
 *    Zipf(0.8) and Zipf(0.99) traces with a one-pass scan mixed in
 *
 * The store's memory limit covers its own tables (hash buckets, ghost and
 * tag tables), so at equal memory it holds slightly fewer objects than the
 * LRU simulator, which is given limit / per-object cost.
 *
 * Disk sections use a fresh directory under $TMPDIR (default /tmp), removed
 * at the end.
 */
#include "store.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NKEYS_HOT 100000

static double secs_per_section = 1.0;

static double
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
xs(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static char **
make_keys(const char *prefix, size_t n)
{
    char **k = malloc(n * sizeof(*k));
    size_t i;

    for (i = 0; i < n; i++) {
        k[i] = malloc(48);
        snprintf(k[i], 48, "%s%zu", prefix, i);
    }
    return k;
}

static void
free_keys(char **k, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(k[i]);
    free(k);
}

static int
put(struct store *st, const char *key, size_t blen, double now)
{
    static const char body[4096];
    struct store_lookup lk = { { key, strlen(key) }, now, NULL, NULL,
                               STORE_LOOKUP_CREATE | STORE_LOOKUP_FORCE_MISS };
    struct store_obj *o = NULL;
    struct store_meta m;
    int r = store_lookup(st, &lk, &o, NULL);

    if (r != STORE_MISS_CREATED) {
        store_obj_release(&o);
        return r;
    }
    memset(&m, 0, sizeof(m));
    m.status = 200;
    m.headers = (struct store_bytes){ "Content-Type: text/plain\r\n", 26 };
    m.times.insert = now;
    m.times.ttl = 3600;
    m.size_hint = blen;
    store_obj_set_meta(o, &m);
    store_obj_append(o, body, blen);
    r = store_obj_complete(o);
    store_obj_release(&o);
    return r;
}

/* ---- 1. memory hits -------------------------------------------------------- */

/*
 * The request keys are laid out one after another in trace order, as a
 * worker would have them in its read buffer, so the benchmark measures
 * the store and not the fetching of keys from random places.
 */
#define TKEY 40
struct hit_arg {
    struct store *st;
    const char (*tk)[TKEY];
    size_t ntk, start;
    atomic_int *go;
    uint64_t hits;
};

static void *
hit_thread(void *arg)
{
    struct hit_arg *a = arg;
    size_t pos = a->start;
    double t_end;
    uint64_t n = 0;

    while (!atomic_load(a->go))
        ;
    t_end = mono() + secs_per_section;
    for (;;) {
        int i;

        for (i = 0; i < 4096; i++) {
            const char *k = a->tk[pos];
            struct store_lookup lk = { { k + 1, (unsigned char)k[0] }, 100, NULL, NULL, 0 };
            struct store_obj *o = NULL;

            if (++pos == a->ntk)
                pos = 0;
            if (store_lookup(a->st, &lk, &o, NULL) == STORE_HIT)
                n++;
            store_obj_release(&o);
        }
        if (mono() >= t_end)
            break;
    }
    a->hits = n;
    return NULL;
}

static double
run_hits(struct store *st, const char (*tk)[TKEY], size_t ntk, int nthreads)
{
    struct hit_arg a[8];
    pthread_t th[8];
    atomic_int go = 0;
    double t0, t1;
    uint64_t total = 0;
    int i;

    for (i = 0; i < nthreads; i++) {
        a[i] = (struct hit_arg){ st, tk, ntk, ntk / nthreads * i, &go, 0 };
        pthread_create(&th[i], NULL, hit_thread, &a[i]);
    }
    t0 = mono();
    atomic_store(&go, 1);
    for (i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        total += a[i].hits;
    }
    t1 = mono();
    return total / (t1 - t0);
}

static int32_t *make_trace(double alpha, size_t universe, size_t len, size_t scan,
                           size_t *outlen);

/* keys of a trace, length-prefixed, contiguous */
static char (*trace_keys(char **keys, const int32_t *t, size_t n))[TKEY]
{
    char (*tk)[TKEY] = malloc(n * TKEY);
    size_t i;

    for (i = 0; i < n; i++) {
        size_t l = strlen(keys[t[i]]);

        tk[i][0] = (char)l;
        memcpy(tk[i] + 1, keys[t[i]], l);
    }
    return tk;
}

static void
bench_mem_hits(void)
{
    struct store_config cfg;
    struct store *st = NULL;
    char **keys = make_keys("example.com/asset-", NKEYS_HOT);
    size_t i, n = 1 << 20;
    int32_t *zipf = make_trace(0.99, NKEYS_HOT, n, 0, &n), *uni = malloc(n * sizeof(*uni));
    int32_t *hot = malloc(n * sizeof(*hot));
    char (*tz)[TKEY], (*tu)[TKEY], (*th)[TKEY];
    uint64_t seed = 3;

    for (i = 0; i < n; i++) {
        uni[i] = (int32_t)(xs(&seed) % NKEYS_HOT);
        hot[i] = (int32_t)(xs(&seed) % 1000);
    }
    tz = trace_keys(keys, zipf, n);
    tu = trace_keys(keys, uni, n);
    th = trace_keys(keys, hot, n);
    store_config_init(&cfg);
    cfg.mem_limit = (size_t)512 << 20;
    store_open(&cfg, &st);
    for (i = 0; i < NKEYS_HOT; i++)
        put(st, keys[i], 200, 100);
    printf("memory hits, %d objects of 200 B, 64 shards (M hits/s):\n", NKEYS_HOT);
    printf("  1000 hot keys   : 1 thread %6.2f   2 threads %6.2f   (CPU bound)\n",
           run_hits(st, (const char(*)[TKEY])th, n, 1) / 1e6,
           run_hits(st, (const char(*)[TKEY])th, n, 2) / 1e6);
    printf("  Zipf(0.99) keys : 1 thread %6.2f   2 threads %6.2f\n",
           run_hits(st, (const char(*)[TKEY])tz, n, 1) / 1e6,
           run_hits(st, (const char(*)[TKEY])tz, n, 2) / 1e6);
    printf("  uniform keys    : 1 thread %6.2f   2 threads %6.2f   (cache-miss bound)\n",
           run_hits(st, (const char(*)[TKEY])tu, n, 1) / 1e6,
           run_hits(st, (const char(*)[TKEY])tu, n, 2) / 1e6);
    store_close(&st);
    free(zipf);
    free(uni);
    free(hot);
    free(th);
    free(tz);
    free(tu);
    free_keys(keys, NKEYS_HOT);
}

/* ---- 2 + 3. disk ------------------------------------------------------------ */

static void
rm_dir(const char *dir)
{
    char p[512];

    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static struct store *
open_disk(const char *dir, size_t mem)
{
    struct store_config cfg;
    struct store *st = NULL;
    char msg[256];

    store_config_init(&cfg);
    cfg.mem_limit = mem;
    cfg.disk_path = dir;
    cfg.disk_map_size = (size_t)1 << 30;
    cfg.disk_queue_max = 65536;
    cfg.errbuf = msg;
    cfg.errbuf_len = sizeof(msg);
    if (store_open(&cfg, &st) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", msg);
        exit(1);
    }
    return st;
}

static void
bench_disk(void)
{
    enum { N = 50000 };
    const char *tmp = getenv("TMPDIR");
    char dir[256], **keys = make_keys("example.com/article/", N);
    struct store *st;
    struct store_stats s0, s1;
    double t0, t1, t2;
    uint64_t seed = 42, n = 0;
    size_t i;

    snprintf(dir, sizeof(dir), "%s/store_bench_XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return;
    }
    st = open_disk(dir, (size_t)256 << 20);
    t0 = mono();
    for (i = 0; i < N; i++)
        put(st, keys[i], 1024, 100);
    t1 = mono();
    store_sync(st);
    t2 = mono();
    store_stats(st, &s1);
    printf("insert with write-behind, %d objects of 1 KiB:\n", N);
    printf("  caller side   : %8.0f inserts/s\n", N / (t1 - t0));
    printf("  until on disk : %8.0f inserts/s (%llu commits, avg %.0f us, max %llu us)\n",
           N / (t2 - t0), (unsigned long long)s1.disk_commits,
           s1.disk_commits ? (double)s1.disk_commit_us_total / s1.disk_commits : 0.0,
           (unsigned long long)s1.disk_commit_us_max);
    store_close(&st);

    /* reopen with a memory tier far smaller than the set: lookups go to disk */
    st = open_disk(dir, (size_t)2 << 20);
    store_stats(st, &s0);
    t0 = mono();
    do {
        for (i = 0; i < 1000; i++, n++) {
            const char *k = keys[xs(&seed) % N];
            struct store_lookup lk = { { k, strlen(k) }, 101, NULL, NULL, 0 };
            struct store_obj *o = NULL;

            store_lookup(st, &lk, &o, NULL);
            store_obj_release(&o);
        }
        t1 = mono();
    } while (t1 - t0 < secs_per_section);
    store_stats(st, &s1);
    printf("disk hits, %d objects of 1 KiB, 2 MiB memory tier, 1 thread:\n", N);
    printf("  %8.0f disk hits/s (%.0f%% of %llu lookups from disk, promoted)\n",
           (s1.disk_hits - s0.disk_hits) / (t1 - t0),
           100.0 * (s1.disk_hits - s0.disk_hits) / n, (unsigned long long)n);
    store_close(&st);
    rm_dir(dir);
    free_keys(keys, N);
}

/* ---- 4. hit ratio vs LRU ------------------------------------------------------ */

struct lru_node {
    uint32_t key;
    int32_t prev, next;
};

/* An exact LRU over integer keys with a capacity in objects. */
struct lru {
    struct lru_node *nodes; /* by key */
    int32_t head, tail;
    size_t cap, n;
    uint8_t *in;
};

static void
lru_unlink(struct lru *l, int32_t k)
{
    struct lru_node *x = &l->nodes[k];

    if (x->prev >= 0)
        l->nodes[x->prev].next = x->next;
    else
        l->head = x->next;
    if (x->next >= 0)
        l->nodes[x->next].prev = x->prev;
    else
        l->tail = x->prev;
}

static void
lru_push(struct lru *l, int32_t k)
{
    struct lru_node *x = &l->nodes[k];

    x->prev = -1;
    x->next = l->head;
    if (l->head >= 0)
        l->nodes[l->head].prev = k;
    else
        l->tail = k;
    l->head = k;
}

static bool
lru_access(struct lru *l, int32_t k)
{
    if (l->in[k]) {
        lru_unlink(l, k);
        lru_push(l, k);
        return true;
    }
    if (l->n == l->cap) {
        int32_t v = l->tail;

        lru_unlink(l, v);
        l->in[v] = 0;
        l->n--;
    }
    lru_push(l, k);
    l->in[k] = 1;
    l->n++;
    return false;
}

/*
 * Trace: Zipf(alpha) over `universe` keys, with a one-pass scan of
 * `scan` never-repeated keys interleaved 1:1 in the middle third.
 */
static int32_t *
make_trace(double alpha, size_t universe, size_t len, size_t scan, size_t *outlen)
{
    double *cdf = malloc(universe * sizeof(*cdf)), sum = 0;
    int32_t *t = malloc((len + scan) * sizeof(*t));
    uint64_t seed = 7;
    size_t i, n = 0, s = 0;

    for (i = 0; i < universe; i++)
        sum += 1.0 / pow((double)(i + 1), alpha);
    for (i = 0; i < universe; i++)
        cdf[i] = (i ? cdf[i - 1] : 0) + 1.0 / pow((double)(i + 1), alpha) / sum;
    for (i = 0; i < len; i++) {
        double u = (xs(&seed) >> 11) * (1.0 / 9007199254740992.0);
        size_t lo = 0, hi = universe - 1;

        while (lo < hi) {
            size_t mid = (lo + hi) / 2;

            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* spread ranks over the key space so popular keys are not adjacent */
        t[n++] = (int32_t)((lo * 2654435761u) % universe);
        if (i >= len / 3 && s < scan && (i % 2) == 0)
            t[n++] = (int32_t)(universe + s++);
    }
    free(cdf);
    *outlen = n;
    return t;
}

static void
bench_hit_ratio(double alpha)
{
    const size_t universe = 100000, len = 1000000, scan = 200000;
    size_t n, i, per_obj, cap;
    int32_t *trace = make_trace(alpha, universe, len, scan, &n);
    struct store_config cfg;
    struct store *st = NULL;
    struct store_stats s;
    struct lru l;
    size_t lru_hits = 0, st_hits = 0;
    char key[32];

    /* measure what one object costs in the store, then size both caches
     * to hold about 10% of the Zipf universe */
    store_config_init(&cfg);
    cfg.mem_limit = (size_t)1 << 30;
    store_open(&cfg, &st);
    store_stats(st, &s);
    per_obj = s.mem_bytes; /* fixed tables */
    for (i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        put(st, key, 100, 100);
    }
    store_stats(st, &s);
    per_obj = (s.mem_bytes - per_obj) / s.mem_objects;
    store_close(&st);
    cap = universe / 10;

    store_config_init(&cfg);
    cfg.mem_limit = cap * per_obj;
    store_open(&cfg, &st);
    for (i = 0; i < n; i++) {
        struct store_lookup lk = { { key, 0 }, 100, NULL, NULL, 0 };
        struct store_obj *o = NULL;

        lk.key.len = (size_t)snprintf(key, sizeof(key), "k%d", trace[i]);
        if (store_lookup(st, &lk, &o, NULL) == STORE_HIT)
            st_hits++;
        else
            put(st, key, 100, 100);
        store_obj_release(&o);
    }
    store_stats(st, &s);
    store_close(&st);

    memset(&l, 0, sizeof(l));
    l.nodes = calloc(universe + scan, sizeof(*l.nodes));
    l.in = calloc(universe + scan, 1);
    l.head = l.tail = -1;
    l.cap = cfg.mem_limit / per_obj;
    for (i = 0; i < n; i++)
        lru_hits += lru_access(&l, trace[i]);
    printf("  Zipf(%.2f): S3-FIFO %.2f%%  LRU %.2f%%  (%zu requests, cache %zu objects = %zu KiB)\n",
           alpha, 100.0 * st_hits / n, 100.0 * lru_hits / n, n, l.cap, cfg.mem_limit >> 10);
    free(l.nodes);
    free(l.in);
    free(trace);
}

int
main(int argc, char **argv)
{
    if (argc > 1)
        secs_per_section = atof(argv[1]);
    if (secs_per_section <= 0)
        secs_per_section = 1.0;
    bench_mem_hits();
    bench_disk();
    printf("hit ratio, 100k-key universe, 1M Zipf requests + 200k-key one-pass scan:\n");
    bench_hit_ratio(0.8);
    bench_hit_ratio(0.99);
    return 0;
}
