/*
 * sum.h - range checksums of the scrubber (doc/scrub.md section 2): the
 * items of one group, in key order, are cut into contiguous key ranges and
 * each range gets an XXH3-64 over its items' bytes, so that two replicas
 * whose summaries differ are narrowed down to the ranges that differ, and
 * then to the items (qfs_scrub_items_diff).
 *
 * One replica (the model) defines the ranges while it is summed: a range
 * ends after QFS_SCRUB_RANGE_ITEMS items or QFS_SCRUB_RANGE_BYTES bytes,
 * and the next one starts at the key of the item that follows.  The other
 * replicas are summed over the same ranges (qfs_scrub_sum_like): range 0
 * starts at the empty key, range i at the model's key lo[i], and the last
 * one runs to the end of the group, so every item of every replica falls in
 * exactly one range whatever it holds.
 *
 * An item contributes be32(key length) key be32(value length) value to its
 * range's hash: every byte of key and value is covered, and no two item
 * sequences with different boundaries hash the same input.
 *
 * Pure code (no I/O, no locks): one struct per thread.
 */
#ifndef QFS_SCRUB_SUM_H
#define QFS_SCRUB_SUM_H

#include <stddef.h>
#include <stdint.h>

#define QFS_SCRUB_RANGE_ITEMS 1024u
#define QFS_SCRUB_RANGE_BYTES (4u << 20)

struct qfs_scrub_range {
	uint8_t *lo;             /* first key of the range (malloc'd; NULL, 0: the empty key) */
	size_t lo_len;
	uint64_t hash;           /* XXH3-64 of the range's items, valid after finish */
	uint64_t items;          /* items in the range */
	uint64_t bytes;          /* key + value bytes in the range */
};

struct qfs_scrub_sum {
	struct qfs_scrub_range *r; /* ranges, in key order */
	size_t n, cap;
	int model;               /* 1: this sum cuts the ranges */
	size_t cur;              /* range the next item goes to */
	void *xs;                /* XXH3 state of range cur */
	uint64_t items, bytes;   /* totals */
	uint32_t range_items;    /* cut thresholds (model); tests may lower them */
	uint64_t range_bytes;
};

/* Start a model sum (it defines the ranges).  0 or -ENOMEM. */
int qfs_scrub_sum_init(struct qfs_scrub_sum *s);
/* Start a sum over the ranges of model (finished or not: only its lo keys
 * are copied).  0 or -ENOMEM. */
int qfs_scrub_sum_like(struct qfs_scrub_sum *s, const struct qfs_scrub_sum *model);
/* Add one item; items must come in strictly increasing key order.  0 or
 * -ENOMEM.  The signature is a store scan callback's (arg = the sum). */
int qfs_scrub_sum_add(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		      void *arg);
/* Close the last range's hash.  0.  After it, s->r[i].hash are final; a
 * like-sum has exactly model's ranges (ranges without items hash the empty
 * input). */
int qfs_scrub_sum_finish(struct qfs_scrub_sum *s);
void qfs_scrub_sum_close(struct qfs_scrub_sum *s);
/* End of range i (exclusive): the next range's lo, or NULL (end of group). */
const uint8_t *qfs_scrub_sum_hi(const struct qfs_scrub_sum *s, size_t i, size_t *len);

/* Item digests of one range of one replica, for narrowing. */
struct qfs_scrub_item {
	uint8_t *key;
	size_t key_len;
	uint64_t vhash;          /* XXH3-64 of the value */
};
struct qfs_scrub_items {
	struct qfs_scrub_item *v;
	size_t n, cap;
};
/* Scan callback collecting items (arg = struct qfs_scrub_items). */
int qfs_scrub_items_add(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
			void *arg);
void qfs_scrub_items_close(struct qfs_scrub_items *it);

/* How an item of replica b differs from replica a. */
enum qfs_scrub_diff { QFS_SCRUB_DIFF_VALUE = 1, QFS_SCRUB_DIFF_MISSING, QFS_SCRUB_DIFF_EXTRA };
/* Merge a and b (both in key order) and call cb(key, kind, arg) for every
 * key whose presence or value differs: MISSING (in a, not in b), EXTRA (in
 * b only), VALUE.  Returns the number of differences. */
size_t qfs_scrub_items_diff(const struct qfs_scrub_items *a, const struct qfs_scrub_items *b,
			    void (*cb)(const uint8_t *key, size_t key_len, enum qfs_scrub_diff kind,
				       void *arg),
			    void *arg);

/* Lower-case hex of up to max bytes of p into out (size >= 2*max+4); "..."
 * marks a cut.  Returns out. */
char *qfs_scrub_hex(const uint8_t *p, size_t len, size_t max, char *out);

#endif
