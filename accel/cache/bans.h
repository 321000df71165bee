/*
 * bans.h -- bans in the daemon: parsing requests for them (the BAN method,
 * vcl-lite's ban()), recording them in the store in their canonical text,
 * and evaluating them for the store against stored objects.
 */
#ifndef AC_BANS_H
#define AC_BANS_H

#include "ac.h"
#include "buf.h"
#include "store.h"

/*
 * Parse expr, record the ban in st (persisted before this returns) at time
 * now, and put its canonical text in canon (if not NULL); then tell the
 * added hook (in a cluster: the ban is published to the other members, and
 * cluster_ticket_last() names the publication).  Returns 0, or -1 with a
 * message in err (the expression is bad, or the store failed).
 */
int bans_add(struct store *st, struct ac_slice expr, double now, struct ac_buf *canon, char *err,
             size_t errlen);

/* The same without telling the hook: for bans that came from the
 * cluster's stream. */
int bans_add_local(struct store *st, struct ac_slice expr, double now, struct ac_buf *canon,
                   char *err, size_t errlen);

/* The room above hears of each ban bans_add() recorded (its canonical
 * text), on the thread that added it: main.c wires the cluster bus here
 * (cluster_ban_added()), before the workers start.  NULL: nobody. */
typedef void bans_added_f(struct ac_slice canon);
void bans_set_added_hook(bans_added_f *fn);

/* The store's ban_match callback (store_config.ban_match; ban_arg unused):
 * does the ban whose canonical text is spec match obj?  Parsed bans are kept
 * in a process-wide table until bans_fini().  Thread-safe. */
bool bans_store_match(void *arg, struct store_bytes spec, const struct store_obj *obj);

/* Free the table of parsed bans (at exit, after the store is closed). */
void bans_fini(void);

#endif /* AC_BANS_H */
