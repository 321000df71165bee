/* store_disk.c -- temporary stub (memory only) */
#include "store.h"
#include "store_int.h"

int store_disk_open(struct store *st, const struct store_config *cfg) { (void)st; store_format_msg(cfg->errbuf, cfg->errbuf_len, "disk tier not built"); return STORE_EINVAL; }
void store_disk_close(struct store *st) { (void)st; }
void store_disk_enqueue(struct store *st, struct store_obj *o) { (void)st; (void)o; }
int store_disk_lookup(struct store *st, const uint8_t digest[STORE_DIGEST_LEN], const struct store_lookup *lk, struct store_obj **op) { (void)st; (void)digest; (void)lk; *op = NULL; return 0; }
int store_disk_purge_key(struct store *st, const uint8_t digest[STORE_DIGEST_LEN], struct store_bytes key, size_t *countp) { (void)st; (void)digest; (void)key; *countp = 0; return 0; }
int store_disk_purge_tag(struct store *st, struct store_bytes tag, size_t *countp) { (void)st; (void)tag; *countp = 0; return 0; }
int store_disk_ban_put(struct store *st, const struct store_ban *b, uint64_t replaced_seq) { (void)st; (void)b; (void)replaced_seq; return 0; }
int store_disk_ban_del(struct store *st, uint64_t seq) { (void)st; (void)seq; return 0; }
int store_disk_housekeep(struct store *st, double now, unsigned budget, uint64_t target, bool *pass_done) { (void)st; (void)now; (void)budget; (void)target; *pass_done = false; return 0; }
void store_disk_stats(struct store *st, struct store_stats *out) { (void)st; (void)out; }
uint64_t store_disk_queue_min_ban(struct store *st) { (void)st; return UINT64_MAX; }
void store_disk_queue_invalidate(struct store *st, const uint8_t *digest, struct store_bytes key, struct store_bytes tag) { (void)st; (void)digest; (void)key; (void)tag; }
