/*
 * sum.c - range checksums and item narrowing of the scrubber (contract in
 * sum.h, design in doc/scrub.md).  Hashes are XXH3-64 (libxxhash), streamed
 * per range.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "scrub/sum.h"

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

static int range_push(struct qfs_scrub_sum *s, const uint8_t *lo, size_t lo_len)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct qfs_scrub_range *r = realloc(s->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		s->r = r;
		s->cap = cap;
	}
	struct qfs_scrub_range *r = &s->r[s->n];
	memset(r, 0, sizeof(*r));
	if (lo_len) {
		r->lo = malloc(lo_len);
		if (!r->lo)
			return -ENOMEM;
		memcpy(r->lo, lo, lo_len);
		r->lo_len = lo_len;
	}
	s->n++;
	return 0;
}

static int sum_start(struct qfs_scrub_sum *s)
{
	s->xs = XXH3_createState();
	if (!s->xs)
		return -ENOMEM;
	XXH3_64bits_reset(s->xs);
	s->range_items = QFS_SCRUB_RANGE_ITEMS;
	s->range_bytes = QFS_SCRUB_RANGE_BYTES;
	return 0;
}

/* See sum.h. */
int qfs_scrub_sum_init(struct qfs_scrub_sum *s)
{
	memset(s, 0, sizeof(*s));
	s->model = 1;
	if (sum_start(s) || range_push(s, NULL, 0)) {
		qfs_scrub_sum_close(s);
		return -ENOMEM;
	}
	return 0;
}

/* See sum.h. */
int qfs_scrub_sum_like(struct qfs_scrub_sum *s, const struct qfs_scrub_sum *model)
{
	memset(s, 0, sizeof(*s));
	if (sum_start(s))
		return -ENOMEM;
	for (size_t i = 0; i < model->n; i++)
		if (range_push(s, model->r[i].lo, model->r[i].lo_len)) {
			qfs_scrub_sum_close(s);
			return -ENOMEM;
		}
	return 0;
}

/* Close range s->cur's hash and reset the state for the next one. */
static void range_close(struct qfs_scrub_sum *s)
{
	s->r[s->cur].hash = XXH3_64bits_digest(s->xs);
	XXH3_64bits_reset(s->xs);
}

/* See sum.h. */
int qfs_scrub_sum_add(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		      void *arg)
{
	struct qfs_scrub_sum *s = arg;
	uint8_t len[4];

	if (s->model) {
		struct qfs_scrub_range *r = &s->r[s->cur];
		if (r->items >= s->range_items || r->bytes >= s->range_bytes) {
			range_close(s);
			if (range_push(s, key, key_len))
				return -ENOMEM;
			s->cur++;
		}
	} else {
		while (s->cur + 1 < s->n &&
		       key_cmp(key, key_len, s->r[s->cur + 1].lo, s->r[s->cur + 1].lo_len) >= 0) {
			range_close(s);
			s->cur++;
		}
	}
	struct qfs_scrub_range *r = &s->r[s->cur];
	len[0] = (uint8_t)(key_len >> 24);
	len[1] = (uint8_t)(key_len >> 16);
	len[2] = (uint8_t)(key_len >> 8);
	len[3] = (uint8_t)key_len;
	XXH3_64bits_update(s->xs, len, 4);
	XXH3_64bits_update(s->xs, key, key_len);
	len[0] = (uint8_t)(val_len >> 24);
	len[1] = (uint8_t)(val_len >> 16);
	len[2] = (uint8_t)(val_len >> 8);
	len[3] = (uint8_t)val_len;
	XXH3_64bits_update(s->xs, len, 4);
	XXH3_64bits_update(s->xs, val, val_len);
	r->items++;
	r->bytes += key_len + val_len;
	s->items++;
	s->bytes += key_len + val_len;
	return 0;
}

/* See sum.h. */
int qfs_scrub_sum_finish(struct qfs_scrub_sum *s)
{
	range_close(s);
	while (s->cur + 1 < s->n) {
		s->cur++;
		range_close(s);
	}
	return 0;
}

/* See sum.h. */
void qfs_scrub_sum_close(struct qfs_scrub_sum *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->r[i].lo);
	free(s->r);
	if (s->xs)
		XXH3_freeState(s->xs);
	memset(s, 0, sizeof(*s));
}

/* See sum.h. */
const uint8_t *qfs_scrub_sum_hi(const struct qfs_scrub_sum *s, size_t i, size_t *len)
{
	if (i + 1 >= s->n) {
		*len = 0;
		return NULL;
	}
	*len = s->r[i + 1].lo_len;
	return s->r[i + 1].lo;
}

/* See sum.h. */
int qfs_scrub_items_add(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
			void *arg)
{
	struct qfs_scrub_items *it = arg;

	if (it->n == it->cap) {
		size_t cap = it->cap ? it->cap * 2 : 64;
		struct qfs_scrub_item *v = realloc(it->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		it->v = v;
		it->cap = cap;
	}
	struct qfs_scrub_item *x = &it->v[it->n];
	x->key = malloc(key_len ? key_len : 1);
	if (!x->key)
		return -ENOMEM;
	memcpy(x->key, key, key_len);
	x->key_len = key_len;
	x->vhash = XXH3_64bits(val, val_len);
	it->n++;
	return 0;
}

/* See sum.h. */
void qfs_scrub_items_close(struct qfs_scrub_items *it)
{
	for (size_t i = 0; i < it->n; i++)
		free(it->v[i].key);
	free(it->v);
	memset(it, 0, sizeof(*it));
}

/* See sum.h. */
size_t qfs_scrub_items_diff(const struct qfs_scrub_items *a, const struct qfs_scrub_items *b,
			    void (*cb)(const uint8_t *key, size_t key_len, enum qfs_scrub_diff kind,
				       void *arg),
			    void *arg)
{
	size_t i = 0, j = 0, n = 0;

	while (i < a->n || j < b->n) {
		int c = i == a->n ? 1 : j == b->n ? -1
			: key_cmp(a->v[i].key, a->v[i].key_len, b->v[j].key, b->v[j].key_len);
		if (c < 0) {
			cb(a->v[i].key, a->v[i].key_len, QFS_SCRUB_DIFF_MISSING, arg);
			i++;
			n++;
		} else if (c > 0) {
			cb(b->v[j].key, b->v[j].key_len, QFS_SCRUB_DIFF_EXTRA, arg);
			j++;
			n++;
		} else {
			if (a->v[i].vhash != b->v[j].vhash) {
				cb(a->v[i].key, a->v[i].key_len, QFS_SCRUB_DIFF_VALUE, arg);
				n++;
			}
			i++;
			j++;
		}
	}
	return n;
}

/* See sum.h. */
char *qfs_scrub_hex(const uint8_t *p, size_t len, size_t max, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t n = len < max ? len : max, o = 0;

	for (size_t i = 0; i < n; i++) {
		out[o++] = hx[p[i] >> 4];
		out[o++] = hx[p[i] & 15];
	}
	if (n < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	if (o == 0)
		out[o++] = '-';
	out[o] = '\0';
	return out;
}
