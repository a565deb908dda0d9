/*
 * check_router.c - the router's item API over a real cell of three nodes (RocksDB + WAL in
 * a temporary directory): tables, inode allocation, transactions, reads,
 * crash leftovers and the status/stats text.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/key.h"
#include "common/log.h"
#include "node/cell.h"
#include "router/metrics.h"
#include "router/router.h"

static char dir[256];
static struct qfs_cell *node;
static struct qfs_router *r;

static void open_all(void)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = dir, .nodes = 3, .paxos = &prm };

	/* fast timers, as check_rnode uses: leaders in well under a second */
	qfs_paxos_params_default(&prm);
	prm.election_min_ms = 150;
	prm.election_max_ms = 300;
	prm.heartbeat_ms = 30;
	prm.lease_ms = 200;
	ck_assert_int_eq(qfs_cell_open(&o, &node), 0);
	ck_assert_int_eq(qfs_router_new(node, 0, 0, &r), 0);
}

static void close_all(void)
{
	qfs_router_free(r);
	qfs_cell_close(node);
	r = NULL;
	node = NULL;
}

static void setup(void)
{
	qfs_log_level = QFS_LOG_WARN;
	snprintf(dir, sizeof(dir), "/tmp/check_router.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	open_all();
}

static void teardown(void)
{
	char cmd[300];

	close_all();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct qfs_attr dir_attr(void)
{
	struct qfs_attr a;

	memset(&a, 0, sizeof(a));
	a.mode = S_IFDIR | 0750;
	a.uid = 1000;
	a.gid = 100;
	a.mtime.sec = 1234;
	return a;
}

static int count_cb(const struct qfs_table *t, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_table_lifecycle)
{
	struct qfs_attr a = dir_attr(), got;
	struct qfs_table t, t2;
	int n = 0;

	ck_assert_int_eq(qfs_router_table_lookup(r, "orders", &t), -ENOENT);
	ck_assert_int_eq(qfs_router_table_create(r, "orders", &a, &t), 0);
	ck_assert_str_eq(t.name, "orders");
	ck_assert_uint_ge(t.ino, QFS_FIRST_INO);
	ck_assert_uint_eq(t.group, t.ino);
	ck_assert_int_eq(qfs_router_table_create(r, "orders", &a, &t2), -EEXIST);
	ck_assert_int_eq(qfs_router_table_lookup(r, "orders", &t2), 0);
	ck_assert_uint_eq(t2.ino, t.ino);
	ck_assert_int_eq(qfs_router_get_attr(r, t.group, t.ino, &got), 0);
	ck_assert_uint_eq(got.mode, S_IFDIR | 0750);
	ck_assert_uint_eq(got.uid, 1000);
	ck_assert_uint_eq(got.nlink, 2);
	ck_assert_int_eq(qfs_router_get_attr(r, QFS_META_GROUP, QFS_ROOT_INO, &got), 0);
	ck_assert_uint_eq(got.nlink, 3); /* 2 + one table */
	ck_assert_uint_eq(qfs_router_table_count(r), 1);
	ck_assert_int_eq(qfs_router_table_list(r, "", count_cb, &n), 0);
	ck_assert_int_eq(n, 1);

	/* rename, then delete */
	ck_assert_int_eq(qfs_router_table_rename(r, "orders", "sales", 0), 0);
	ck_assert_int_eq(qfs_router_table_lookup(r, "orders", &t2), -ENOENT);
	ck_assert_int_eq(qfs_router_table_lookup(r, "sales", &t2), 0);
	ck_assert_uint_eq(t2.ino, t.ino);
	ck_assert_int_eq(qfs_router_table_rename(r, "nope", "x", 0), -ENOENT);
	ck_assert_int_eq(qfs_router_table_delete(r, "sales"), 0);
	ck_assert_int_eq(qfs_router_table_delete(r, "sales"), -ENOENT);
	ck_assert_int_eq(qfs_cell_group_exists(node, t.group), 0);
	ck_assert_uint_eq(qfs_router_table_count(r), 0);
	ck_assert_int_eq(qfs_router_get_attr(r, QFS_META_GROUP, QFS_ROOT_INO, &got), 0);
	ck_assert_uint_eq(got.nlink, 2);
}
END_TEST

/* Put a dentry under dir so the table is not empty. */
static void put_entry(qfs_group_t g, qfs_ino_t dirino, const char *name, qfs_ino_t ino)
{
	uint8_t key[QFS_KEY_MAX];
	struct qfs_dentry d = { ino, S_IFREG, 0 };
	struct qfs_buf b;
	struct qfs_txn t;
	struct qfs_op *op;
	int res = 1;

	qfs_buf_init(&b);
	qfs_dentry_encode(&d, &b);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_PUT);
	op->key = key;
	op->key_len = (uint32_t)qfs_key_dentry(key, dirino, name, strlen(name));
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	ck_assert_int_eq(qfs_router_txn(r, g, &t, &res), 0);
	ck_assert_int_eq(res, 0);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
}

START_TEST(test_nonempty_tables)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t1, t2;

	ck_assert_int_eq(qfs_router_table_create(r, "a", &a, &t1), 0);
	ck_assert_int_eq(qfs_router_table_create(r, "b", &a, &t2), 0);
	put_entry(t1.group, t1.ino, "item", 99999);
	ck_assert_int_eq(qfs_router_table_delete(r, "a"), -ENOTEMPTY);
	/* replacing a non-empty table is refused; an empty one is replaced */
	ck_assert_int_eq(qfs_router_table_rename(r, "b", "a", 0), -ENOTEMPTY);
	ck_assert_int_eq(qfs_router_table_rename(r, "a", "b", 1), -EEXIST);
	ck_assert_int_eq(qfs_router_table_rename(r, "a", "b", 0), 0);
	ck_assert_int_eq(qfs_cell_group_exists(node, t2.group), 0);
	ck_assert_uint_eq(qfs_router_table_count(r), 1);
	ck_assert_int_eq(qfs_router_table_lookup(r, "b", &t2), 0);
	ck_assert_uint_eq(t2.ino, t1.ino);
}
END_TEST

START_TEST(test_alloc_ino_persists)
{
	qfs_ino_t a, b, c;

	ck_assert_int_eq(qfs_router_alloc_ino(r, &a), 0);
	ck_assert_int_eq(qfs_router_alloc_ino(r, &b), 0);
	ck_assert_uint_ge(a, QFS_FIRST_INO);
	ck_assert_uint_eq(b, a + 1);
	close_all();
	open_all();
	ck_assert_int_eq(qfs_router_alloc_ino(r, &c), 0);
	ck_assert_uint_gt(c, b); /* never reused after a restart */
}
END_TEST

START_TEST(test_txn_result_and_reads)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	uint8_t key[QFS_KEY_MAX];
	struct qfs_txn txn;
	struct qfs_op *op;
	void *val;
	size_t vlen;
	int res = 0;

	ck_assert_int_eq(qfs_router_table_create(r, "t", &a, &t), 0);
	size_t klen = qfs_key_dentry(key, t.ino, "x", 1);
	qfs_txn_init(&txn);
	op = qfs_txn_add(&txn, QFS_OP_EXPECT_PRESENT);
	op->key = key;
	op->key_len = (uint32_t)klen;
	op->err = -ENOENT;
	ck_assert_int_eq(qfs_router_txn(r, t.group, &txn, &res), 0);
	ck_assert_int_eq(res, -ENOENT);
	qfs_txn_close(&txn);
	ck_assert_int_eq(qfs_router_get(r, t.group, key, klen, &val, &vlen), -ENOENT);
	put_entry(t.group, t.ino, "x", 5555);
	ck_assert_int_eq(qfs_router_get(r, t.group, key, klen, &val, &vlen), 0);
	free(val);
	/* a group that does not exist */
	ck_assert_int_eq(qfs_router_get(r, 987654321, key, klen, &val, &vlen), QFS_ENOGROUP);
}
END_TEST

START_TEST(test_orphan_group_dropped)
{
	/* a crash between "group created" and "table entry written" leaves a
	 * group no table refers to: the next start drops it */
	ck_assert_int_eq(qfs_cell_group_create(node, 777777), 0);
	close_all();
	open_all();
	ck_assert_int_eq(qfs_cell_group_exists(node, 777777), 0);
	ck_assert_int_eq(qfs_cell_group_exists(node, QFS_META_GROUP), 1);
}
END_TEST

START_TEST(test_status_and_stats_text)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_buf b;

	ck_assert_int_eq(qfs_router_table_create(r, "orders", &a, &t), 0);
	qfs_buf_init(&b);
	qfs_router_status(r, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_ptr_nonnull(strstr((char *)b.data, "tables 1\n"));
	ck_assert_ptr_nonnull(strstr((char *)b.data, "table orders group "));
	ck_assert_ptr_nonnull(strstr((char *)b.data, "replicas 3 up 3"));
	qfs_buf_reset(&b);
	qfs_router_stats(r, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_ptr_nonnull(strstr((char *)b.data, "table orders op txn count"));
	ck_assert_ptr_nonnull(strstr((char *)b.data, "cell proposals "));
	qfs_buf_close(&b);
}
END_TEST

START_TEST(test_hist_percentiles)
{
	struct qfs_hist h;

	memset(&h, 0, sizeof(h));
	ck_assert_uint_eq(qfs_hist_pct(&h, 50), 0);
	for (int i = 0; i < 99; i++)
		qfs_hist_record(&h, 10 * 1000, 0);   /* 10 us */
	qfs_hist_record(&h, 5000 * 1000, 1);     /* 5 ms, failed */
	ck_assert_uint_eq(h.count, 100);
	ck_assert_uint_eq(h.errors, 1);
	ck_assert_uint_eq(h.max_us, 5000);
	ck_assert_uint_eq(qfs_hist_pct(&h, 50), 16);   /* bucket bound above 10 us */
	ck_assert_uint_eq(qfs_hist_pct(&h, 100), 5000); /* capped at the max */
}
END_TEST

static Suite *router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("api");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_table_lifecycle);
	tcase_add_test(tc, test_nonempty_tables);
	tcase_add_test(tc, test_alloc_ino_persists);
	tcase_add_test(tc, test_txn_result_and_reads);
	tcase_add_test(tc, test_orphan_group_dropped);
	tcase_add_test(tc, test_status_and_stats_text);
	suite_add_tcase(s, tc);
	TCase *th = tcase_create("metrics");
	tcase_add_test(th, test_hist_percentiles);
	suite_add_tcase(s, th);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(router_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
