/*
 * glist.h - a growable list of replication group ids, filled by the
 * group walkers (qfs_cell_groups, qfs_rnode_groups) through qfs_glist_add.
 * Not thread-safe: one owner at a time.
 */
#ifndef QFS_COMMON_GLIST_H
#define QFS_COMMON_GLIST_H

#include <stddef.h>

#include "common/qfs.h"

struct qfs_glist {
	qfs_group_t *v;
	size_t n, cap;
	int err;        /* -ENOMEM once an add failed (that id is missing) */
};

/* Append g to the struct qfs_glist at list (the walkers' callback shape). */
void qfs_glist_add(qfs_group_t g, void *list);
/* 1 if l holds g, else 0. */
int qfs_glist_has(const struct qfs_glist *l, qfs_group_t g);
/* Sort ascending. */
void qfs_glist_sort(struct qfs_glist *l);
/* Free the ids; l is empty (and reusable) after. */
void qfs_glist_free(struct qfs_glist *l);

#endif
