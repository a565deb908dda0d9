/*
 * check_scrub.c - unit tests of the scrubber's range checksums and item
 * narrowing (src/scrub/sum.c) and of the store's scrub snapshots
 * (src/store/scrubsnap.c) over a real RocksDB in a mkdtemp directory.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scrub/sum.h"
#include "store/store.h"

#define NITEMS 5000

static void key_of(unsigned i, uint8_t *k, size_t *kl)
{
	*kl = (size_t)snprintf((char *)k, 32, "k%08u", i);
}

static void val_of(unsigned i, uint8_t *v, size_t *vl)
{
	*vl = 1 + i % 300;
	for (size_t j = 0; j < *vl; j++)
		v[j] = (uint8_t)(i * 131 + j * 7);
}

/* Sum items 0..n-1, with item bad (if < n) given a different value, item
 * skip left out, and extra added after item extra_after. */
static void sum_items(struct qfs_scrub_sum *s, unsigned n, unsigned bad, unsigned skip)
{
	uint8_t k[32], v[512];
	size_t kl, vl;

	for (unsigned i = 0; i < n; i++) {
		if (i == skip)
			continue;
		key_of(i, k, &kl);
		val_of(i, v, &vl);
		if (i == bad)
			v[vl / 2] ^= 1;
		ck_assert_int_eq(qfs_scrub_sum_add(k, kl, v, vl, s), 0);
	}
	ck_assert_int_eq(qfs_scrub_sum_finish(s), 0);
}

static size_t differing(const struct qfs_scrub_sum *a, const struct qfs_scrub_sum *b, size_t *which)
{
	size_t n = 0;

	ck_assert_uint_eq(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		if (a->r[i].hash != b->r[i].hash) {
			*which = i;
			n++;
		}
	return n;
}

START_TEST(test_equal)
{
	struct qfs_scrub_sum a, b;
	size_t w = 0;

	ck_assert_int_eq(qfs_scrub_sum_init(&a), 0);
	sum_items(&a, NITEMS, UINT32_MAX, UINT32_MAX);
	ck_assert_uint_ge(a.n, NITEMS / QFS_SCRUB_RANGE_ITEMS);
	ck_assert_int_eq(qfs_scrub_sum_like(&b, &a), 0);
	sum_items(&b, NITEMS, UINT32_MAX, UINT32_MAX);
	ck_assert_uint_eq(differing(&a, &b, &w), 0);
	ck_assert_uint_eq(a.items, NITEMS);
	ck_assert_uint_eq(b.items, NITEMS);
	qfs_scrub_sum_close(&a);
	qfs_scrub_sum_close(&b);
}
END_TEST

/* One flipped bit in any item changes exactly the range that holds it. */
START_TEST(test_one_value)
{
	unsigned bad = (unsigned)_i * 997 % NITEMS;
	struct qfs_scrub_sum a, b;
	size_t w = 0;
	uint8_t k[32];
	size_t kl;

	ck_assert_int_eq(qfs_scrub_sum_init(&a), 0);
	sum_items(&a, NITEMS, UINT32_MAX, UINT32_MAX);
	ck_assert_int_eq(qfs_scrub_sum_like(&b, &a), 0);
	sum_items(&b, NITEMS, bad, UINT32_MAX);
	ck_assert_uint_eq(differing(&a, &b, &w), 1);
	key_of(bad, k, &kl);
	/* the range holds the key: lo <= key < hi */
	ck_assert(a.r[w].lo_len == 0 || memcmp(a.r[w].lo, k, kl) <= 0);
	size_t hl;
	const uint8_t *hi = qfs_scrub_sum_hi(&a, w, &hl);
	ck_assert(!hi || memcmp(k, hi, kl) < 0);
	qfs_scrub_sum_close(&a);
	qfs_scrub_sum_close(&b);
}
END_TEST

/* A missing item (in the model or in the other) is found too, and the
 * ranges of the other side still line up. */
START_TEST(test_missing)
{
	struct qfs_scrub_sum a, b;
	size_t w = 0;

	ck_assert_int_eq(qfs_scrub_sum_init(&a), 0);
	sum_items(&a, NITEMS, UINT32_MAX, 4321);
	ck_assert_int_eq(qfs_scrub_sum_like(&b, &a), 0);
	sum_items(&b, NITEMS, UINT32_MAX, UINT32_MAX);
	ck_assert_uint_eq(differing(&a, &b, &w), 1);
	ck_assert_uint_eq(b.r[w].items, a.r[w].items + 1);
	qfs_scrub_sum_close(&a);
	qfs_scrub_sum_close(&b);
}
END_TEST

/* Moving one byte from the end of a key to the start of its value is a
 * different replica: the length prefixes see it. */
START_TEST(test_boundary_shift)
{
	struct qfs_scrub_sum a, b;
	size_t w = 0;

	ck_assert_int_eq(qfs_scrub_sum_init(&a), 0);
	ck_assert_int_eq(qfs_scrub_sum_add((const uint8_t *)"ab", 2, (const uint8_t *)"c", 1, &a), 0);
	qfs_scrub_sum_finish(&a);
	ck_assert_int_eq(qfs_scrub_sum_like(&b, &a), 0);
	ck_assert_int_eq(qfs_scrub_sum_add((const uint8_t *)"a", 1, (const uint8_t *)"bc", 2, &b), 0);
	qfs_scrub_sum_finish(&b);
	ck_assert_uint_eq(differing(&a, &b, &w), 1);
	qfs_scrub_sum_close(&a);
	qfs_scrub_sum_close(&b);
}
END_TEST

struct seen {
	char keys[8][32];
	int kinds[8];
	int n;
};

static void seen_cb(const uint8_t *key, size_t key_len, enum qfs_scrub_diff kind, void *arg)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 8);
	memcpy(s->keys[s->n], key, key_len);
	s->keys[s->n][key_len] = '\0';
	s->kinds[s->n++] = kind;
}

START_TEST(test_items_diff)
{
	struct qfs_scrub_items a = { 0 }, b = { 0 };
	struct seen sn = { .n = 0 };

	ck_assert_int_eq(qfs_scrub_items_add((const uint8_t *)"a", 1, (const uint8_t *)"1", 1, &a), 0);
	ck_assert_int_eq(qfs_scrub_items_add((const uint8_t *)"b", 1, (const uint8_t *)"2", 1, &a), 0);
	ck_assert_int_eq(qfs_scrub_items_add((const uint8_t *)"c", 1, (const uint8_t *)"3", 1, &a), 0);
	ck_assert_int_eq(qfs_scrub_items_add((const uint8_t *)"a", 1, (const uint8_t *)"1", 1, &b), 0);
	ck_assert_int_eq(qfs_scrub_items_add((const uint8_t *)"c", 1, (const uint8_t *)"X", 1, &b), 0);
	ck_assert_int_eq(qfs_scrub_items_add((const uint8_t *)"d", 1, (const uint8_t *)"4", 1, &b), 0);
	ck_assert_uint_eq(qfs_scrub_items_diff(&a, &b, seen_cb, &sn), 3);
	ck_assert_str_eq(sn.keys[0], "b");
	ck_assert_int_eq(sn.kinds[0], QFS_SCRUB_DIFF_MISSING);
	ck_assert_str_eq(sn.keys[1], "c");
	ck_assert_int_eq(sn.kinds[1], QFS_SCRUB_DIFF_VALUE);
	ck_assert_str_eq(sn.keys[2], "d");
	ck_assert_int_eq(sn.kinds[2], QFS_SCRUB_DIFF_EXTRA);
	sn.n = 0;
	ck_assert_uint_eq(qfs_scrub_items_diff(&a, &a, seen_cb, &sn), 0);
	qfs_scrub_items_close(&a);
	qfs_scrub_items_close(&b);
}
END_TEST

START_TEST(test_hex)
{
	char out[64];

	ck_assert_str_eq(qfs_scrub_hex((const uint8_t *)"\x01\xab", 2, 8, out), "01ab");
	ck_assert_str_eq(qfs_scrub_hex((const uint8_t *)"\x01\xab\x02", 3, 2, out), "01ab...");
	ck_assert_str_eq(qfs_scrub_hex(NULL, 0, 2, out), "-");
}
END_TEST

/* ------------------------------------------------------- store snapshots */

static char dir[64];

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st;
	(void)f;
	(void)w;
	return remove(p);
}

static void store_setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_scrub.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void store_teardown(void)
{
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A snapshot sees the store as it was: later writes change neither its
 * sum nor its applied LSN, and the live store's sum differs. */
START_TEST(test_store_snapshot)
{
	struct qfs_store *s;
	struct qfs_store_snap *sn;
	struct qfs_scrub_sum a, b;
	uint8_t k[32], v[512];
	size_t kl, vl, w = 0;
	qfs_lsn_t lsn = 99;

	ck_assert_int_eq(qfs_store_open(dir, &s), 0);
	for (unsigned i = 0; i < 3000; i++) {
		key_of(i, k, &kl);
		val_of(i, v, &vl);
		ck_assert_int_eq(qfs_store_load_item(s, 7, k, kl, v, vl), 0);
		ck_assert_int_eq(qfs_store_load_item(s, 8, k, kl, v, vl), 0); /* another group */
	}
	ck_assert_int_eq(qfs_store_load_applied(s, 7, 42), 0);
	ck_assert_int_eq(qfs_store_snap_take(s, &sn), 0);
	key_of(1234, k, &kl);
	ck_assert_int_eq(qfs_store_load_item(s, 7, k, kl, (const uint8_t *)"new", 3), 0);
	ck_assert_int_eq(qfs_store_load_applied(s, 7, 43), 0);
	ck_assert_int_eq(qfs_store_sync(s), 0);

	ck_assert_int_eq(qfs_store_snap_applied(sn, 7, &lsn), 0);
	ck_assert_uint_eq(lsn, 42);
	ck_assert_int_eq(qfs_scrub_sum_init(&a), 0);
	ck_assert_int_eq(qfs_store_snap_scan(sn, 7, NULL, 0, NULL, 0, qfs_scrub_sum_add, &a), 0);
	qfs_scrub_sum_finish(&a);
	ck_assert_uint_eq(a.items, 3000);
	qfs_store_snap_release(sn);

	ck_assert_int_eq(qfs_store_snap_take(s, &sn), 0);
	ck_assert_int_eq(qfs_store_snap_applied(sn, 7, &lsn), 0);
	ck_assert_uint_eq(lsn, 43);
	ck_assert_int_eq(qfs_scrub_sum_like(&b, &a), 0);
	ck_assert_int_eq(qfs_store_snap_scan(sn, 7, NULL, 0, NULL, 0, qfs_scrub_sum_add, &b), 0);
	qfs_scrub_sum_finish(&b);
	ck_assert_uint_eq(differing(&a, &b, &w), 1);
	/* a range scan returns exactly the range */
	struct qfs_scrub_items it = { 0 };
	size_t hl;
	const uint8_t *hi = qfs_scrub_sum_hi(&a, w, &hl);
	ck_assert_int_eq(qfs_store_snap_scan(sn, 7, a.r[w].lo, a.r[w].lo_len, hi, hl, qfs_scrub_items_add,
					     &it), 0);
	ck_assert_uint_eq(it.n, a.r[w].items);
	qfs_scrub_items_close(&it);
	qfs_store_snap_release(sn);
	ck_assert_int_eq(qfs_store_verify(s), 0);
	qfs_scrub_sum_close(&a);
	qfs_scrub_sum_close(&b);
	qfs_store_close(s);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("scrub");
	TCase *tc = tcase_create("sum");

	tcase_add_test(tc, test_equal);
	tcase_add_loop_test(tc, test_one_value, 0, 12);
	tcase_add_test(tc, test_missing);
	tcase_add_test(tc, test_boundary_shift);
	tcase_add_test(tc, test_items_diff);
	tcase_add_test(tc, test_hex);
	suite_add_tcase(s, tc);
	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_store_snapshot);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
