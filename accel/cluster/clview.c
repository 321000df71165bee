/*
 * clview.c -- cluster views: members and their ring (clview.h).
 */
#include "clview.h"

#include <stdlib.h>

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void
clview_build(struct clview *v, const char *const *ids, unsigned n)
{
    unsigned k = 0;

    memset(v, 0, sizeof(*v));
    v->magic = CLVIEW_MAGIC;
    v->id = ac_xcalloc(n ? (n < CLVIEW_MAX ? n : CLVIEW_MAX) : 1, sizeof(*v->id));
    for (unsigned i = 0; i < n && k < CLVIEW_MAX; i++) {
        bool dup = false;
        if (ids[i] == NULL || ids[i][0] == '\0')
            continue;
        for (unsigned j = 0; j < k && !dup; j++)
            dup = strcmp(v->id[j], ids[i]) == 0;
        if (!dup)
            v->id[k++] = ac_xstrdup(ids[i]);
    }
    qsort(v->id, k, sizeof(*v->id), cmp_str);
    v->n = k;
    if (k > 0)
        AC_ZERO(dir_ring_build(&v->ring, (const char *const *)v->id, NULL, k));
}

void
clview_free(struct clview *v)
{
    if (v->magic != CLVIEW_MAGIC)
        return;
    for (unsigned i = 0; i < v->n; i++)
        free(v->id[i]);
    free(v->id);
    if (v->n > 0)
        dir_ring_free(&v->ring);
    memset(v, 0, sizeof(*v));
}

int
clview_owner(const struct clview *v, struct ac_slice key,
             bool (*usable)(unsigned member, void *arg), void *arg)
{
    AC_CHECK_OBJ(v, CLVIEW_MAGIC);
    if (v->n == 0)
        return -1;
    return dir_ring_lookup(&v->ring, dir_hash(key.p, key.len), usable, arg);
}

int
clview_find(const struct clview *v, const char *id)
{
    for (unsigned i = 0; i < v->n; i++)
        if (strcmp(v->id[i], id) == 0)
            return (int)i;
    return -1;
}
