/*
 * glist.c - a growable list of group ids (glist.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "common/glist.h"

/* See glist.h. */
void qfs_glist_add(qfs_group_t g, void *list)
{
	struct qfs_glist *l = list;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		qfs_group_t *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->err = -ENOMEM;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = g;
}

/* See glist.h. */
int qfs_glist_has(const struct qfs_glist *l, qfs_group_t g)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == g)
			return 1;
	return 0;
}

static int cmp_group(const void *a, const void *b)
{
	qfs_group_t x = *(const qfs_group_t *)a, y = *(const qfs_group_t *)b;

	return x < y ? -1 : x > y;
}

/* See glist.h. */
void qfs_glist_sort(struct qfs_glist *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(l->v[0]), cmp_group);
}

/* See glist.h. */
void qfs_glist_free(struct qfs_glist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
	l->err = 0;
}
