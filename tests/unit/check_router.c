/*
 * check_router.c - the router's item API over a real cell of three nodes (RocksDB + WAL in
 * a temporary directory): tables, inode allocation, transactions, reads,
 * crash leftovers and the status/stats text.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "meta/meta.h"
#include "node/cell.h"
#include "router/route.h"
#include "router/metrics.h"
#include "router/router.h"
#include "router/router_int.h"
#include "router/xact.h"
#include "unit.h"

static char dir[256];
static struct qfs_cell *node;
static struct qfs_router *r;

static void open_all(void)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = dir, .nodes = 3, .paxos = &prm };

	unit_fast_paxos(&prm);
	ck_assert_int_eq(qfs_cell_open(&o, &node), 0);
	ck_assert_int_eq(qfs_route_attach(node), 0);
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
	unit_tmpdir(dir, sizeof(dir), "check_router");
	open_all();
}

static void teardown(void)
{
	close_all();
	unit_rmdir(dir);
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
	ck_assert_uint_eq(t.id, t.ino);
	ck_assert_int_eq(qfs_router_table_create(r, "orders", &a, &t2), -EEXIST);
	ck_assert_int_eq(qfs_router_table_lookup(r, "orders", &t2), 0);
	ck_assert_uint_eq(t2.ino, t.ino);
	ck_assert_int_eq(qfs_router_get_attr(r, t.id, t.ino, &got), 0);
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
	ck_assert_int_eq(qfs_cell_group_exists(node, t.id), 0);
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
	put_entry(t1.id, t1.ino, "item", 99999);
	ck_assert_int_eq(qfs_router_table_delete(r, "a"), -ENOTEMPTY);
	/* replacing a non-empty table is refused; an empty one is replaced */
	ck_assert_int_eq(qfs_router_table_rename(r, "b", "a", 0), -ENOTEMPTY);
	ck_assert_int_eq(qfs_router_table_rename(r, "a", "b", 1), -EEXIST);
	ck_assert_int_eq(qfs_router_table_rename(r, "a", "b", 0), 0);
	ck_assert_int_eq(qfs_cell_group_exists(node, t2.id), 0);
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
	ck_assert_int_eq(qfs_router_txn(r, t.id, &txn, &res), 0);
	ck_assert_int_eq(res, -ENOENT);
	qfs_txn_close(&txn);
	ck_assert_int_eq(qfs_router_get(r, t.id, key, klen, &val, &vlen), -ENOENT);
	put_entry(t.id, t.ino, "x", 5555);
	ck_assert_int_eq(qfs_router_get(r, t.id, key, klen, &val, &vlen), 0);
	free(val);
	/* a group that does not exist */
	ck_assert_int_eq(qfs_router_get(r, 987654321, key, klen, &val, &vlen), QFS_ENOGROUP);
}
END_TEST

/* The typed item API (item.c) encodes exactly the keys of common/key.h
 * (the stored format does not change), scans decode them back, a range
 * "after" a name starts past it, and a key that does not decode stops a
 * scan with QFS_ECORRUPT. */
struct item_seen {
	char names[8][8];
	int n;
	int chunks;
};

static int item_cb(const struct qfs_router_key *k, const void *val, size_t vl, void *arg)
{
	struct item_seen *s = arg;

	(void)val;
	(void)vl;
	if (k->kind == QFS_RKEY_CHUNK) {
		s->chunks++;
		return 0;
	}
	ck_assert_int_eq(k->kind, QFS_RKEY_DENTRY);
	ck_assert_uint_lt(k->name_len, sizeof(s->names[0]));
	memcpy(s->names[s->n], k->name, k->name_len);
	s->names[s->n][k->name_len] = 0;
	s->n++;
	return 0;
}

START_TEST(test_item_api)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_router_itxn it;
	struct qfs_router_key dk = qfs_router_key_dentry(4242, "bb", 2), ik = qfs_router_key_inode(4242),
			      ck = qfs_router_key_chunk(4242, 7), ok = qfs_router_key_dentry(0, "o", 1);
	struct qfs_router_range cr = qfs_router_range_chunks(4242, 3, 9), dr = qfs_router_range_dentries(4242, "aa", 2);
	uint8_t k[QFS_KEY_MAX + 1], k2[QFS_KEY_MAX];
	size_t kl, k2l;
	struct qfs_op *op;
	struct item_seen seen = { 0 };
	void *val;
	size_t vlen;
	int res = -1;

	qfs_router_itxn_init(&it);
	op = qfs_router_itxn_add(&it, QFS_OP_DEL, &dk, NULL);
	kl = qfs_key_dentry(k, 4242, "bb", 2);
	ck_assert_uint_eq(op->key_len, kl);
	ck_assert_mem_eq(op->key, k, kl);
	ck_assert_uint_eq(op->key2_len, 0);
	op = qfs_router_itxn_add(&it, QFS_OP_LINK_DROP, &ik, &ok);
	kl = qfs_key_inode(k, 4242);
	k2l = qfs_key_dentry(k2, 0, "o", 1);
	ck_assert_uint_eq(op->key_len, kl);
	ck_assert_mem_eq(op->key, k, kl);
	ck_assert_uint_eq(op->key2_len, k2l);
	ck_assert_mem_eq(op->key2, k2, k2l);
	op = qfs_router_itxn_add(&it, QFS_OP_PUT, &ck, NULL);
	kl = qfs_key_chunk(k, 4242, 7);
	ck_assert_mem_eq(op->key, k, kl);
	op = qfs_router_itxn_add_range(&it, QFS_OP_DEL_RANGE, &cr);
	qfs_key_chunk_range(k, &kl, k2, &k2l, 4242, 3, 9);
	ck_assert_uint_eq(op->key_len, kl);
	ck_assert_mem_eq(op->key, k, kl);
	ck_assert_uint_eq(op->key2_len, k2l);
	ck_assert_mem_eq(op->key2, k2, k2l);
	op = qfs_router_itxn_add_range(&it, QFS_OP_EXPECT_EMPTY, &dr);
	kl = qfs_key_dentry(k, 4242, "aa", 2);
	k[kl++] = 0; /* the first key after "aa" */
	ck_assert_uint_eq(op->key_len, kl);
	ck_assert_mem_eq(op->key, k, kl);
	for (int i = 0; i < 200; i++) /* keys past one block stay put */
		ck_assert_ptr_nonnull(qfs_router_itxn_add(&it, QFS_OP_DEL, &dk, &dk));
	ck_assert_mem_eq(it.t.ops[0].key, it.t.ops[5].key, it.t.ops[0].key_len);
	qfs_router_itxn_close(&it);

	/* a round trip through a table */
	ck_assert_int_eq(qfs_router_table_create(r, "it", &a, &t), 0);
	put_entry(t.id, 4242, "aa", 1);
	put_entry(t.id, 4242, "bb", 2);
	put_entry(t.id, 4242, "cc", 3);
	qfs_router_itxn_init(&it);
	ck = qfs_router_key_chunk(4242, 1);
	op = qfs_router_itxn_add(&it, QFS_OP_PUT, &ck, NULL);
	op->val = (const uint8_t *)"data";
	op->val_len = 4;
	ck_assert_int_eq(qfs_router_item_txn(r, t.id, &it, &res), 0);
	ck_assert_int_eq(res, 0);
	qfs_router_itxn_close(&it);
	ck_assert_int_eq(qfs_router_item_get(r, t.id, &ck, &val, &vlen), 0);
	ck_assert_uint_eq(vlen, 4);
	ck_assert_mem_eq(val, "data", 4);
	free(val);
	ck_assert_int_eq(qfs_router_item_get(r, t.id, &dk, &val, &vlen), 0);
	free(val);
	/* the same value held without a copy: the same bytes, released once */
	struct qfs_val pv = { 0 };
	ck_assert_int_eq(qfs_router_item_get_val(r, t.id, &ck, &pv), 0);
	ck_assert(qfs_val_held(&pv));
	ck_assert_uint_eq(pv.len, 4);
	ck_assert_mem_eq(pv.data, "data", 4);
	qfs_val_release(&pv);
	ck_assert(!qfs_val_held(&pv));
	ck_assert_uint_eq(pv.len, 0);
	qfs_val_release(&pv); /* a second release gives nothing back */
	ck = qfs_router_key_chunk(4242, 2);
	ck_assert_int_eq(qfs_router_item_get(r, t.id, &ck, &val, &vlen), -ENOENT);
	ck_assert_int_eq(qfs_router_item_get_val(r, t.id, &ck, &pv), -ENOENT);
	ck_assert(!qfs_val_held(&pv)); /* set only on success */
	ck_assert_int_eq(qfs_router_item_get_val(r, 987654321, &ck, &pv), QFS_ENOGROUP);
	ck_assert(!qfs_val_held(&pv));
	ck_assert_int_eq(qfs_router_item_scan(r, t.id, &dr, item_cb, &seen), 0);
	ck_assert_int_eq(seen.n, 2); /* after "aa": bb, cc */
	ck_assert_str_eq(seen.names[0], "bb");
	ck_assert_str_eq(seen.names[1], "cc");
	cr = qfs_router_range_chunks(4242, 0, UINT64_MAX);
	ck_assert_int_eq(qfs_router_item_scan(r, t.id, &cr, item_cb, &seen), 0);
	ck_assert_int_eq(seen.chunks, 1);

	/* a key inside the directory's range that does not decode (a raw
	 * PUT; no encoder makes it): the scan stops with QFS_ECORRUPT */
	struct qfs_txn txn;
	kl = qfs_key_dentry(k, 4242, "dd", 2);
	k[kl++] = 0; /* a NUL inside the name */
	k[kl++] = 'x';
	qfs_txn_init(&txn);
	op = qfs_txn_add(&txn, QFS_OP_PUT);
	op->key = k;
	op->key_len = (uint32_t)kl;
	op->val = (const uint8_t *)"x";
	op->val_len = 1;
	ck_assert_int_eq(qfs_router_txn(r, t.id, &txn, &res), 0);
	ck_assert_int_eq(res, 0);
	qfs_txn_close(&txn);
	dr = qfs_router_range_dentries(4242, NULL, 0);
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(qfs_router_item_scan(r, t.id, &dr, item_cb, &seen), QFS_ECORRUPT);
	ck_assert_int_eq(seen.n, 3); /* aa, bb, cc, then the bad key */
}
END_TEST

/* A LINK_DROP whose orphan entry (pk 0) is in another partition than its
 * inode is spelled out by route_orphan from the inode it reads first; a
 * change of the inode between that read and the txn must fail the txn
 * with QFS_ECONFLICT (fs/ retries), never lose the orphan entry: an
 * inode read as absent (a read of a stale partition, an eventual read)
 * that is there when the txn applies, and a link() in between. */
static qfs_table_t orph_table;
static qfs_ino_t orph_ino;
static int orph_kind; /* hook: 1 put the inode (nlink 1), 2 add a link */

static void orph_put_inode(qfs_table_t table, qfs_ino_t ino)
{
	uint8_t key[QFS_KEY_MAX];
	struct qfs_inode in;
	struct qfs_buf b;
	struct qfs_txn t;
	struct qfs_op *op;
	int res = 1;

	qfs_inode_init(&in);
	in.a.ino = ino;
	in.a.mode = S_IFREG | 0644;
	in.a.nlink = 1;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_PUT);
	op->key = key;
	op->key_len = (uint32_t)qfs_key_inode(key, ino);
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	ck_assert_int_eq(qfs_router_txn(r, table, &t, &res), 0);
	ck_assert_int_eq(res, 0);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
}

static void orph_hook(qfs_table_t table)
{
	uint8_t key[QFS_KEY_MAX];
	struct qfs_txn t;
	struct qfs_op *op;
	int res = 1, kind = orph_kind;

	orph_kind = 0; /* once */
	if (kind == 1) {
		orph_put_inode(table, orph_ino);
	} else if (kind == 2) {
		qfs_txn_init(&t);
		op = qfs_txn_add(&t, QFS_OP_LINK_ADD);
		op->key = key;
		op->key_len = (uint32_t)qfs_key_inode(key, orph_ino);
		op->limit = 100;
		ck_assert_int_eq(qfs_router_txn(r, table, &t, &res), 0);
		ck_assert_int_eq(res, 0);
		qfs_txn_close(&t);
	}
}

/* Drop a name of ino with its orphan entry; the txn's result. */
static int orph_drop(qfs_table_t table, qfs_ino_t ino)
{
	struct qfs_dentry d = { ino, S_IFREG, 0 };
	struct qfs_router_itxn it;
	struct qfs_router_key ik = qfs_router_key_inode(ino), ok;
	struct qfs_buf b;
	struct qfs_op *op;
	char name[32];
	int res = 1;

	snprintf(name, sizeof(name), "%016llx", (unsigned long long)ino);
	ok = qfs_router_key_dentry(0, name, strlen(name));
	qfs_buf_init(&b);
	qfs_dentry_encode(&d, &b);
	qfs_router_itxn_init(&it);
	op = qfs_router_itxn_add(&it, QFS_OP_LINK_DROP, &ik, &ok);
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	ck_assert_int_eq(qfs_router_item_txn(r, table, &it, &res), 0);
	qfs_router_itxn_close(&it);
	qfs_buf_close(&b);
	return res;
}

static int orph_entry(qfs_table_t table, qfs_ino_t ino)
{
	char name[32];
	void *val;
	size_t vl;

	snprintf(name, sizeof(name), "%016llx", (unsigned long long)ino);
	struct qfs_router_key ok = qfs_router_key_dentry(0, name, strlen(name));
	int rc = qfs_router_item_get(r, table, &ok, &val, &vl);
	if (rc == 0)
		free(val);
	return rc;
}

START_TEST(test_orphan_apart_races)
{
	struct qfs_attr a = dir_attr(), got;
	struct qfs_table t;
	uint8_t k[QFS_KEY_MAX], lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;

	ck_assert_int_eq(qfs_router_table_create(r, "orph", &a, &t), 0);
	orph_table = t.id;
	/* pk 0 (the orphan entries) alone in a partition: every other inode
	 * is in another one */
	ck_assert_int_eq(qfs_router_split(r, t.id, k, qfs_key_prefix(k, 0)), 0);
	qfs_key_dentry_range(lo, &lol, hi, &hil, 0);
	ck_assert_int_eq(qfs_router_split(r, t.id, hi, hil), 0);
	qfs_router_test_orphan_hook = orph_hook;

	/* read as absent, there when the txn applies */
	orph_ino = 700001;
	orph_kind = 1;
	ck_assert_int_eq(orph_drop(t.id, orph_ino), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_router_get_attr(r, t.id, orph_ino, &got), 0);
	ck_assert_uint_eq(got.nlink, 1);
	ck_assert_int_eq(orph_entry(t.id, orph_ino), -ENOENT);
	/* the retry drops it, keeping the inode under its orphan entry */
	ck_assert_int_eq(orph_drop(t.id, orph_ino), 0);
	ck_assert_int_eq(qfs_router_get_attr(r, t.id, orph_ino, &got), 0);
	ck_assert_uint_eq(got.nlink, 0);
	ck_assert_int_eq(orph_entry(t.id, orph_ino), 0);

	/* a link() in between: conflict, then the retry keeps the inode
	 * without orphan entry (one name left) */
	orph_ino = 700002;
	orph_put_inode(t.id, orph_ino);
	orph_kind = 2;
	ck_assert_int_eq(orph_drop(t.id, orph_ino), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_router_get_attr(r, t.id, orph_ino, &got), 0);
	ck_assert_uint_eq(got.nlink, 2);
	ck_assert_int_eq(orph_drop(t.id, orph_ino), 0);
	ck_assert_int_eq(qfs_router_get_attr(r, t.id, orph_ino, &got), 0);
	ck_assert_uint_eq(got.nlink, 1);
	ck_assert_int_eq(orph_entry(t.id, orph_ino), -ENOENT);
	/* and the last name: the orphan entry */
	ck_assert_int_eq(orph_drop(t.id, orph_ino), 0);
	ck_assert_int_eq(qfs_router_get_attr(r, t.id, orph_ino, &got), 0);
	ck_assert_uint_eq(got.nlink, 0);
	ck_assert_int_eq(orph_entry(t.id, orph_ino), 0);
	/* a truly absent inode: ENOENT as before */
	ck_assert_int_eq(orph_drop(t.id, 700003), -ENOENT);
	qfs_router_test_orphan_hook = NULL;
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

/* ---- partitions (doc/partitions.md) ---- */

struct keys_ctx {
	int n;
	int sorted;
	uint8_t last[QFS_KEY_MAX];
	size_t last_len;
};

static int keys_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct keys_ctx *c = arg;

	(void)v;
	(void)vl;
	if (c->n && qfs_meta_keycmp(c->last, c->last_len, k, kl) >= 0)
		c->sorted = 0;
	memcpy(c->last, k, kl);
	c->last_len = kl;
	c->n++;
	return 0;
}

/* Entries "e0".."e<n-1>" under the table's directory, one txn each. */
static void fill_dir(const struct qfs_table *t, int n)
{
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "e%d", i);
		put_entry(t->id, t->ino, name, 100000 + (qfs_ino_t)i);
	}
}

static int count_dir(const struct qfs_table *t, int *sorted)
{
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	struct keys_ctx c = { 0, 1, { 0 }, 0 };

	qfs_key_dentry_range(lo, &lol, hi, &hil, t->ino);
	ck_assert_int_eq(qfs_router_scan(r, t->id, lo, lol, hi, hil, keys_cb, &c), 0);
	*sorted = c.sorted;
	return c.n;
}

static int count_lines(const char *text, const char *prefix)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, prefix)); p++)
		n++;
	return n;
}

START_TEST(test_split_routes_and_scans)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	uint8_t k[QFS_KEY_MAX], lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t kl, lol, hil;
	struct qfs_buf b;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "big", &a, &t), 0);
	fill_dir(&t, 40);
	/* split inside the directory, at its 10th entry */
	kl = qfs_key_dentry(k, t.ino, "e17", 3);
	ck_assert_int_eq(qfs_router_split(r, t.id, k, kl), 0);
	ck_assert_int_eq(count_dir(&t, &sorted), 40); /* readdir reads both, in order */
	ck_assert(sorted);
	/* a split at a partition's first key is refused */
	ck_assert_int_eq(qfs_router_split(r, t.id, k, kl), -EINVAL);

	qfs_buf_init(&b);
	qfs_router_partitions(r, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(count_lines((char *)b.data, "table big partition "), 2);
	ck_assert_ptr_nonnull(strstr((char *)b.data, " epoch 2 replicas 1,2,3 azs a,b,c\n"));
	ck_assert_ptr_nonnull(strstr((char *)b.data, " leader "));

	/* reads and single-partition writes on both sides */
	void *val;
	size_t vl;
	uint8_t dk[QFS_KEY_MAX];
	size_t dl = qfs_key_dentry(dk, t.ino, "e3", 2);
	ck_assert_int_eq(qfs_router_get(r, t.id, dk, dl, &val, &vl), 0);
	free(val);
	ck_assert_int_eq(qfs_router_get(r, t.id, k, kl, &val, &vl), 0);
	free(val);
	put_entry(t.id, t.ino, "more", 5);
	/* a txn with ops in both partitions is a cross-partition txn: the
	 * range condition is cut at the boundary and checked in both */
	struct qfs_txn txn;
	struct qfs_op *op;
	int res = 0;
	qfs_key_dentry_range(lo, &lol, hi, &hil, t.ino);
	qfs_txn_init(&txn);
	op = qfs_txn_add(&txn, QFS_OP_EXPECT_EMPTY);
	op->key = lo;
	op->key_len = (uint32_t)lol;
	op->key2 = hi;
	op->key2_len = (uint32_t)hil;
	op->err = -ENOTEMPTY;
	ck_assert_int_eq(qfs_router_txn(r, t.id, &txn, &res), 0);
	ck_assert_int_eq(res, -ENOTEMPTY);
	qfs_txn_close(&txn);
	/* all or nothing across the two partitions: "e3" (left) and "e17"
	 * (right) deleted together, or not at all when a condition fails */
	uint8_t k3[QFS_KEY_MAX], kx[QFS_KEY_MAX];
	size_t l3 = qfs_key_dentry(k3, t.ino, "e3", 2), lx = qfs_key_dentry(kx, t.ino, "nope", 4);
	qfs_txn_init(&txn);
	op = qfs_txn_add(&txn, QFS_OP_DEL);
	op->key = k3;
	op->key_len = (uint32_t)l3;
	op = qfs_txn_add(&txn, QFS_OP_DEL);
	op->key = k;
	op->key_len = (uint32_t)kl;
	op = qfs_txn_add(&txn, QFS_OP_EXPECT_PRESENT);
	op->key = kx;
	op->key_len = (uint32_t)lx;
	op->err = -ENOENT;
	ck_assert_int_eq(qfs_router_txn(r, t.id, &txn, &res), 0);
	ck_assert_int_eq(res, -ENOENT);
	ck_assert_int_eq(qfs_router_get(r, t.id, k3, l3, &val, &vl), 0);
	free(val);
	ck_assert_int_eq(qfs_router_get(r, t.id, k, kl, &val, &vl), 0);
	free(val);
	txn.nops = 2; /* without the failing condition */
	ck_assert_int_eq(qfs_router_txn(r, t.id, &txn, &res), 0);
	ck_assert_int_eq(res, 0);
	ck_assert_int_eq(qfs_router_get(r, t.id, k3, l3, &val, &vl), -ENOENT);
	ck_assert_int_eq(qfs_router_get(r, t.id, k, kl, &val, &vl), -ENOENT);
	qfs_txn_close(&txn);
	put_entry(t.id, t.ino, "e3", 100003);
	put_entry(t.id, t.ino, "e17", 100017);

	/* the split is durable: a reopen routes the same way and the old
	 * group no longer holds the moved range */
	close_all();
	open_all();
	ck_assert_int_eq(count_dir(&t, &sorted), 41);
	ck_assert(sorted);
	qfs_buf_reset(&b);
	qfs_router_stats(r, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_ptr_nonnull(strstr((char *)b.data, "meta lookups_sent "));
	struct keys_ctx c = { 0, 1, { 0 }, 0 };
	ck_assert_int_eq(qfs_cell_scan(node, t.id, k, kl, hi, hil, keys_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);
	/* deleting the table drops every partition's group */
	qfs_buf_close(&b);
}
END_TEST

/* A crash after the commit point: the map says split, the old group still
 * holds the moved range and its old fence.  The next open finishes it. */
/* A cross-partition txn left prepared in the old group with its commit
 * decision recorded (a coordinator timeout whose recovery failed too)
 * writes its items at COMMIT: a split must finish it before copying the
 * moving range, or the committed item lands in the old group outside its
 * new range, where no read finds it. */
START_TEST(test_split_finishes_prepared_txns)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	uint8_t k[QFS_KEY_MAX], zk[QFS_KEY_MAX];
	size_t kl, zl;
	struct qfs_dentry d = { 777, S_IFREG, 0 };
	struct qfs_xact_part part;
	struct qfs_buf b;
	struct qfs_txn txn;
	struct qfs_op *op;
	void *val;
	size_t vl;
	int res = 1;

	ck_assert_int_eq(qfs_router_table_create(r, "prep", &a, &t), 0);
	fill_dir(&t, 20);
	kl = qfs_key_dentry(k, t.ino, "e5", 2);
	zl = qfs_key_dentry(zk, t.ino, "zz", 2); /* in the moving range */
	ck_assert_int_gt(qfs_meta_keycmp(zk, zl, k, kl), 0);
	/* prepared in the table's group and decided 'C', never committed */
	qfs_buf_init(&b);
	qfs_dentry_encode(&d, &b);
	qfs_txn_init(&txn);
	op = qfs_txn_add(&txn, QFS_OP_PUT);
	op->key = zk;
	op->key_len = (uint32_t)zl;
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	part.group = t.id;
	part.txn = &txn;
	qfs_xact_test_stop = 2; /* 1: PREPARE, 2: DECIDE 'C' */
	ck_assert_int_eq(qfs_xact_run(node, QFS_META_GROUP, &part, 1, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	qfs_txn_close(&txn);
	qfs_buf_close(&b);

	ck_assert_int_eq(qfs_router_split(r, t.id, k, kl), 0);
	/* whatever finished the txn, its item is where reads look */
	close_all();
	open_all();
	ck_assert_int_eq(qfs_router_get(r, t.id, zk, zl, &val, &vl), 0);
	free(val);
	int sorted;
	ck_assert_int_eq(count_dir(&t, &sorted), 21);
	ck_assert(sorted);
}
END_TEST

/* A cross-partition txn prepared by a coordinator that died before its
 * decision (cluster mode: another mount killed -9 between its PREPAREs
 * and its COMMITs) locks its keys, and nothing else finishes it until a
 * mount opens or a split of the group.  A write of a locked key (in
 * cluster_split.sh: a create in the directory whose inode the dead txn
 * held) must not fail with EBUSY after the whole timeout: the router
 * finishes the stale txn (no decision: aborted) and writes. */
START_TEST(test_write_finishes_dead_coordinators_txn)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t, t2;
	uint8_t k[QFS_KEY_MAX], k2[QFS_KEY_MAX];
	size_t kl, k2l;
	struct qfs_dentry d = { 777, S_IFREG, 0 };
	struct qfs_xact_part parts[2];
	struct qfs_buf b;
	struct qfs_txn txn, txn2;
	struct qfs_op *op;
	void *val;
	size_t vl;
	int res = 1;

	ck_assert_int_eq(qfs_router_table_create(r, "lk", &a, &t), 0);
	ck_assert_int_eq(qfs_router_table_create(r, "lk2", &a, &t2), 0);
	kl = qfs_key_dentry(k, t.ino, "locked", 6);
	k2l = qfs_key_dentry(k2, t2.ino, "other", 5);
	qfs_buf_init(&b);
	qfs_dentry_encode(&d, &b);
	qfs_txn_init(&txn);
	op = qfs_txn_add(&txn, QFS_OP_PUT);
	op->key = k;
	op->key_len = (uint32_t)kl;
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	qfs_txn_init(&txn2);
	op = qfs_txn_add(&txn2, QFS_OP_PUT);
	op->key = k2;
	op->key_len = (uint32_t)k2l;
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	parts[0] = (struct qfs_xact_part){ t.id, &txn };
	parts[1] = (struct qfs_xact_part){ t2.id, &txn2 };
	qfs_xact_test_stop = 2; /* both parts prepared, then the coordinator dies */
	ck_assert_int_eq(qfs_xact_run(node, QFS_META_GROUP, parts, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	qfs_txn_close(&txn);
	qfs_txn_close(&txn2);
	qfs_buf_close(&b);

	uint64_t t0 = qfs_clock_mono_ms();
	put_entry(t.id, t.ino, "locked", 4242); /* asserts res 0 */
	ck_assert_uint_lt(qfs_clock_mono_ms() - t0, qfs_cell_timeout_ms(node)); /* not after the whole wait */
	ck_assert_int_eq(qfs_router_get(r, t.id, k, kl, &val, &vl), 0);
	ck_assert_int_eq(qfs_dentry_decode(val, vl, &d), 0);
	ck_assert_uint_eq(d.ino, 4242);
	free(val);
	/* the dead txn was aborted, not half committed: its other part is
	 * finished the same way by the next write there */
	put_entry(t2.id, t2.ino, "other", 4343);
	ck_assert_int_eq(qfs_router_get(r, t2.id, k2, k2l, &val, &vl), 0);
	ck_assert_int_eq(qfs_dentry_decode(val, vl, &d), 0);
	ck_assert_uint_eq(d.ino, 4343);
	free(val);
}
END_TEST

/* The split's commit whose answer is lost (a timeout after it applied):
 * the split must find out from the map, not drop the new group that the
 * map now names for the moved range. */
START_TEST(test_split_commit_answer_lost)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	uint8_t k[QFS_KEY_MAX];
	size_t kl;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "lost", &a, &t), 0);
	fill_dir(&t, 20);
	kl = qfs_key_dentry(k, t.ino, "e5", 2);
	qfs_meta_test_split_lost = 1;
	int rc = qfs_router_split(r, t.id, k, kl);
	qfs_meta_test_split_lost = 0;
	ck_assert_int_eq(rc, 0); /* committed: the split went on */
	ck_assert_int_eq(count_dir(&t, &sorted), 20);
	put_entry(t.id, t.ino, "zz", 5); /* in the moved range */
	close_all();
	open_all();
	ck_assert_int_eq(count_dir(&t, &sorted), 21);
	ck_assert(sorted);
}
END_TEST

START_TEST(test_repair_after_commit_point)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta *m;
	struct qfs_meta_part p, left, right;
	uint8_t k[QFS_KEY_MAX], hi[QFS_KEY_MAX], lo[QFS_KEY_MAX];
	size_t kl, hil, lol;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "t", &a, &t), 0);
	fill_dir(&t, 20);
	kl = qfs_key_dentry(k, t.ino, "e5", 2);
	qfs_key_dentry_range(lo, &lol, hi, &hil, t.ino);
	close_all();
	open_all();
	/* an out-of-band split that stops right after its commit point:
	 * new group with the copied items but no deletion in the old one */
	ck_assert_int_eq(qfs_meta_open(node, &m), 0);
	ck_assert_int_eq(qfs_meta_lookup(m, t.id, k, kl, &p), 0);
	ck_assert_int_eq(qfs_cell_group_create(node, 888888), 0);
	struct keys_ctx c = { 0, 1, { 0 }, 0 };
	ck_assert_int_eq(qfs_cell_scan(node, t.id, k, kl, hi, hil, keys_cb, &c), 0);
	int moved = c.n;
	ck_assert_int_gt(moved, 0);
	for (int i = 0; i < 20; i++) {
		char name[32];
		uint8_t dk[QFS_KEY_MAX];
		snprintf(name, sizeof(name), "e%d", i);
		size_t dl = qfs_key_dentry(dk, t.ino, name, strlen(name));
		if (qfs_meta_keycmp(dk, dl, k, kl) >= 0)
			put_entry(888888, t.ino, name, 100000 + (qfs_ino_t)i); /* the copy */
	}
	/* the old group's fence at epoch 2 goes first (as parts.c does) */
	struct qfs_meta_part g = p;
	struct qfs_meta_rec rec;
	struct qfs_buf eb;
	struct qfs_txn ft;
	int fres = 1;
	g.epoch = p.epoch + 1; /* range unchanged until settled */
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&ft);
	ck_assert_int_eq(qfs_meta_add_fence(&ft, &rec, &g), 0);
	qfs_buf_init(&eb);
	qfs_txn_encode(&ft, &eb);
	ck_assert_int_eq(qfs_cell_propose(node, t.id, eb.data, eb.len, &fres), 0);
	ck_assert_int_eq(fres, 0);
	qfs_buf_close(&eb);
	qfs_txn_close(&ft);
	qfs_meta_rec_close(&rec);
	/* and the new group's own fence (written before its copy in parts.c) */
	g = p;
	memcpy(g.lo, k, kl);
	g.lo_len = (uint32_t)kl;
	g.group = 888888;
	g.epoch = p.epoch + 1;
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&ft);
	ck_assert_int_eq(qfs_meta_add_fence(&ft, &rec, &g), 0);
	qfs_buf_init(&eb);
	qfs_txn_encode(&ft, &eb);
	ck_assert_int_eq(qfs_cell_propose(node, 888888, eb.data, eb.len, &fres), 0);
	ck_assert_int_eq(fres, 0);
	qfs_buf_close(&eb);
	qfs_txn_close(&ft);
	qfs_meta_rec_close(&rec);
	ck_assert_int_eq(qfs_meta_split(m, &p, k, kl, 888888, &left, &right), 0);
	qfs_meta_free(m);
	/* the router still serves epoch 1: its write is fenced, refreshed, retried */
	put_entry(t.id, t.ino, "zz-after", 7);
	close_all();
	open_all(); /* repair: old group settled */
	c = (struct keys_ctx){ 0, 1, { 0 }, 0 };
	ck_assert_int_eq(qfs_cell_scan(node, t.id, k, kl, hi, hil, keys_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);
	ck_assert_int_eq(count_dir(&t, &sorted), 21);
	ck_assert(sorted);
	ck_assert_int_eq(qfs_cell_group_exists(node, 888888), 1);
}
END_TEST

static void put_fence(qfs_group_t g, const struct qfs_meta_part *p);

/* An entry put straight into group g (no fence check: another mount's
 * write routed by the map g serves). */
static void put_direct(qfs_group_t g, qfs_ino_t dirino, const char *name, qfs_ino_t ino)
{
	uint8_t key[QFS_KEY_MAX];
	struct qfs_dentry d = { ino, S_IFREG, 0 };
	struct qfs_buf b, eb;
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
	qfs_buf_init(&eb);
	qfs_txn_encode(&t, &eb);
	ck_assert_int_eq(qfs_cell_propose(node, g, eb.data, eb.len, &res), 0);
	ck_assert_int_eq(res, 0);
	qfs_buf_close(&eb);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
}

/* Cluster mode: another mount's split committed but did not settle G yet
 * (or its mount died right after the commit), and a third mount created
 * a name in the moved range, in N.  A scan through this router, whose
 * cache still routes the whole range to G, must list that name: G's stale
 * copy of the moved range must not be handed out before the fence check
 * (it was, and the scan resumed in N after G's last key: the name was
 * missed although created before the scan began). */
START_TEST(test_cluster_scan_after_foreign_commit)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta *m;
	struct qfs_meta_part p, g, left, right;
	uint8_t k[QFS_KEY_MAX];
	size_t kl;
	void *val;
	size_t vl;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "cs", &a, &t), 0);
	fill_dir(&t, 10); /* e0 .. e9 */
	ck_assert_int_eq(count_dir(&t, &sorted), 10); /* the router caches epoch E */
	kl = qfs_key_dentry(k, t.ino, "e5", 2);
	/* another mount's split, through its own map: copy, fences, commit */
	ck_assert_int_eq(qfs_meta_open(node, &m), 0);
	ck_assert_int_eq(qfs_meta_lookup(m, t.id, k, kl, &p), 0);
	ck_assert_int_eq(qfs_cell_group_create(node, 777777), 0);
	for (int i = 5; i < 10; i++) {
		char name[32];
		snprintf(name, sizeof(name), "e%d", i);
		put_direct(777777, t.ino, name, 100000 + (qfs_ino_t)i);
	}
	g = p;
	g.epoch = p.epoch + 1; /* G fenced at E+1, range unchanged */
	put_fence(t.id, &g);
	g = p;
	memcpy(g.lo, k, kl);
	g.lo_len = (uint32_t)kl;
	g.group = 777777;
	g.epoch = p.epoch + 1;
	put_fence(777777, &g);
	ck_assert_int_eq(qfs_meta_split(m, &p, k, kl, 777777, &left, &right), 0);
	qfs_meta_free(m);
	/* not settled: G still holds e5 .. e9.  A third mount creates e55 in N */
	put_direct(777777, t.ino, "e55", 100055);
	router_test_cluster_reads = 1;
	ck_assert_int_eq(count_dir(&t, &sorted), 11);
	ck_assert(sorted);
	kl = qfs_key_dentry(k, t.ino, "e55", 3);
	ck_assert_int_eq(qfs_router_get(r, t.id, k, kl, &val, &vl), 0);
	free(val);
	router_test_cluster_reads = 0;
}
END_TEST

/* The split that test_gc_keeps_foreign_split's hook commits. */
static struct {
	struct qfs_meta *m;
	struct qfs_meta_part p;
	struct qfs_meta_intent in;
	uint8_t k[QFS_KEY_MAX];
	size_t kl;
} gcs;

static void gc_commit_hook(void)
{
	struct qfs_meta_part left, right;

	ck_assert_int_eq(qfs_meta_split_claimed(gcs.m, &gcs.p, gcs.k, gcs.kl, gcs.in.newg, &gcs.in, &left, &right), 0);
}

/* Cluster mode: a mount opening while another mount's split commits must
 * not drop the split's new group.  The opening mount read the map before
 * the commit and the intents after it (the commit deletes the intent):
 * N was in neither, and dropped with the only copy of the moved keys
 * once G is settled.  The intents must be read before the map. */
START_TEST(test_gc_keeps_foreign_split)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta_part g;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "gc", &a, &t), 0);
	fill_dir(&t, 10); /* e0 .. e9 */
	gcs.kl = qfs_key_dentry(gcs.k, t.ino, "e5", 2);
	/* another mount's split up to its commit: claim, N, fences, copy */
	ck_assert_int_eq(qfs_meta_open(node, &gcs.m), 0);
	ck_assert_int_eq(qfs_meta_lookup(gcs.m, t.id, gcs.k, gcs.kl, &gcs.p), 0);
	gcs.in = (struct qfs_meta_intent){ t.id, gcs.p.group, 42, 1, 666666, gcs.p.epoch };
	ck_assert_int_eq(qfs_meta_intent_claim(gcs.m, &gcs.p, &gcs.in), 0);
	ck_assert_int_eq(qfs_cell_group_create(node, 666666), 0);
	g = gcs.p;
	g.epoch = gcs.p.epoch + 1;
	put_fence(t.id, &g);
	g = gcs.p;
	memcpy(g.lo, gcs.k, gcs.kl);
	g.lo_len = (uint32_t)gcs.kl;
	g.group = 666666;
	g.epoch = gcs.p.epoch + 1;
	put_fence(666666, &g);
	for (int i = 5; i < 10; i++) {
		char name[32];
		snprintf(name, sizeof(name), "e%d", i);
		put_direct(666666, t.ino, name, 100000 + (qfs_ino_t)i);
	}
	/* this mount reopens; the split commits right after it listed the groups */
	qfs_router_free(r);
	r = NULL;
	router_test_cluster_reads = 1;
	router_test_gc_hook = gc_commit_hook;
	ck_assert_int_eq(qfs_router_new(node, 0, 0, &r), 0);
	router_test_gc_hook = NULL;
	router_test_cluster_reads = 0;
	qfs_meta_free(gcs.m);
	ck_assert_int_eq(qfs_cell_group_exists(node, 666666), 1);
	ck_assert_int_eq(count_dir(&t, &sorted), 10);
	ck_assert(sorted);
}
END_TEST

/* A crash before the commit point leaves the new group unreferenced. */
START_TEST(test_new_group_before_commit_dropped)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "t", &a, &t), 0);
	fill_dir(&t, 10);
	ck_assert_int_eq(qfs_cell_group_create(node, 999999), 0);
	put_entry(999999, t.ino, "e3", 1); /* a partial copy */
	close_all();
	open_all();
	ck_assert_int_eq(qfs_cell_group_exists(node, 999999), 0);
	ck_assert_int_eq(count_dir(&t, &sorted), 10);
}
END_TEST

START_TEST(test_split_table_delete)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	uint8_t k[QFS_KEY_MAX], dk[QFS_KEY_MAX];
	size_t kl;
	struct qfs_txn txn;
	struct qfs_op *op;
	int res = 0;

	ck_assert_int_eq(qfs_router_table_create(r, "gone", &a, &t), 0);
	fill_dir(&t, 6);
	kl = qfs_key_dentry(k, t.ino, "e2", 2);
	ck_assert_int_eq(qfs_router_split(r, t.id, k, kl), 0);
	ck_assert_int_eq(qfs_router_table_delete(r, "gone"), -ENOTEMPTY);
	for (int i = 0; i < 6; i++) {
		char name[8];
		snprintf(name, sizeof(name), "e%d", i);
		qfs_txn_init(&txn);
		op = qfs_txn_add(&txn, QFS_OP_DEL);
		op->key = dk;
		op->key_len = (uint32_t)qfs_key_dentry(dk, t.ino, name, strlen(name));
		ck_assert_int_eq(qfs_router_txn(r, t.id, &txn, &res), 0);
		ck_assert_int_eq(res, 0);
		qfs_txn_close(&txn);
	}
	ck_assert_int_eq(qfs_router_table_delete(r, "gone"), 0);
	ck_assert_int_eq(qfs_cell_group_exists(node, t.id), 0);
	struct qfs_buf b;
	qfs_buf_init(&b);
	qfs_router_partitions(r, &b);
	ck_assert_uint_eq(b.len, 0);
	qfs_buf_close(&b);
}
END_TEST

/* Write the fence of partition p (its epoch and range) into group g, as
 * a split's step 3 does. */
static void put_fence(qfs_group_t g, const struct qfs_meta_part *p)
{
	struct qfs_meta_rec rec;
	struct qfs_buf eb;
	struct qfs_txn ft;
	int fres = 1;

	qfs_meta_rec_init(&rec);
	qfs_txn_init(&ft);
	ck_assert_int_eq(qfs_meta_add_fence(&ft, &rec, p), 0);
	qfs_buf_init(&eb);
	qfs_txn_encode(&ft, &eb);
	ck_assert_int_eq(qfs_cell_propose(node, g, eb.data, eb.len, &fres), 0);
	ck_assert_int_eq(fres, 0);
	qfs_buf_close(&eb);
	qfs_txn_close(&ft);
	qfs_meta_rec_close(&rec);
}

/* A name of the directory whose entry key sorts below (below = 1) or at
 * or above k. */
static void name_beside(qfs_ino_t dirino, const uint8_t *k, size_t kl, int below, char *name)
{
	uint8_t dk[QFS_KEY_MAX];

	for (int i = 0; i < 1000; i++) {
		snprintf(name, 16, "%c%d", below ? 'a' : 'z', i);
		size_t dl = qfs_key_dentry(dk, dirino, name, strlen(name));
		if ((qfs_meta_keycmp(dk, dl, k, kl) < 0) == below)
			return;
	}
	ck_abort_msg("no name beside the split key");
}

/* The writer whose map reload the hook holds (test_stale_reload_*). */
static pthread_mutex_t hk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hk_cv = PTHREAD_COND_INITIALIZER;
static pthread_t hk_thread;
static int hk_state;    /* 1: first reload read, waits for 2; 3: second reload read, waits for 4 */
static int hk_done;     /* the writer returned */
static int hk_rc, hk_res;
static qfs_table_t hk_table;
static qfs_ino_t hk_dir;
static char hk_name[16];

static void hold_reload(qfs_table_t table)
{
	(void)table;
	if (!pthread_equal(pthread_self(), hk_thread))
		return;
	pthread_mutex_lock(&hk_mu);
	if (hk_state == 0 || hk_state == 2) {
		int wait = hk_state + 2;
		hk_state++;
		pthread_cond_broadcast(&hk_cv);
		while (hk_state < wait)
			pthread_cond_wait(&hk_cv, &hk_mu);
	}
	pthread_mutex_unlock(&hk_mu);
}

static void *writer_main(void *arg)
{
	uint8_t key[QFS_KEY_MAX];
	struct qfs_dentry d = { 4242, S_IFREG, 0 };
	struct qfs_buf b;
	struct qfs_txn t;
	struct qfs_op *op;

	(void)arg;
	qfs_buf_init(&b);
	qfs_dentry_encode(&d, &b);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_PUT);
	op->key = key;
	op->key_len = (uint32_t)qfs_key_dentry(key, hk_dir, hk_name, strlen(hk_name));
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	hk_rc = qfs_router_txn(r, hk_table, &t, &hk_res);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	pthread_mutex_lock(&hk_mu);
	hk_done = 1;
	pthread_cond_broadcast(&hk_cv);
	pthread_mutex_unlock(&hk_mu);
	return NULL;
}

/* A split's step 3 fences the old group G at E+1; a write to [lo, k)
 * meets it, and its reload reads the map still at E; the split commits
 * and installs the new map, and settles G (the moved range deleted from
 * it).  The write's reload, installed after that, must not put the old
 * map back: a get of [k, hi) would go to G and find nothing. */
START_TEST(test_stale_reload_after_split)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta_part p;
	uint8_t k[QFS_KEY_MAX];
	size_t kl;
	void *val;
	size_t vl;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "stale", &a, &t), 0);
	fill_dir(&t, 20);
	kl = qfs_key_dentry(k, t.ino, "e5", 2); /* "e5" is the right side's first key */
	/* the split's step 3 on G: fence at E+1, range unchanged */
	memset(&p, 0, sizeof(p));
	qfs_meta_part_first(&p, t.id, t.id, 3);
	p.epoch = 2;
	put_fence(t.id, &p);
	/* a write to [lo, k) meets it; its reload reads the map at E and waits */
	hk_table = t.id;
	hk_dir = t.ino;
	name_beside(t.ino, k, kl, 1, hk_name);
	hk_state = hk_done = 0;
	qfs_meta_test_reload_hook = hold_reload;
	pthread_mutex_lock(&hk_mu);
	ck_assert_int_eq(pthread_create(&hk_thread, NULL, writer_main, NULL), 0);
	while (hk_state != 1)
		pthread_cond_wait(&hk_cv, &hk_mu);
	pthread_mutex_unlock(&hk_mu);
	/* the split commits, installs its map and settles G */
	ck_assert_int_eq(qfs_router_split(r, t.id, k, kl), 0);
	/* the write's reload goes on; look when it meets G again (the old
	 * map put back) or has written (it kept the new one) */
	pthread_mutex_lock(&hk_mu);
	hk_state = 2;
	pthread_cond_broadcast(&hk_cv);
	while (hk_state != 3 && !hk_done)
		pthread_cond_wait(&hk_cv, &hk_mu);
	pthread_mutex_unlock(&hk_mu);
	ck_assert_int_eq(qfs_router_get(r, t.id, k, kl, &val, &vl), 0);
	free(val);
	ck_assert_int_eq(count_dir(&t, &sorted), hk_done ? 21 : 20);
	ck_assert(sorted);
	pthread_mutex_lock(&hk_mu);
	hk_state = 4;
	pthread_cond_broadcast(&hk_cv);
	pthread_mutex_unlock(&hk_mu);
	ck_assert_int_eq(pthread_join(hk_thread, NULL), 0);
	qfs_meta_test_reload_hook = NULL;
	ck_assert_int_eq(hk_rc, 0);
	ck_assert_int_eq(hk_res, 0);
	ck_assert_int_eq(count_dir(&t, &sorted), 21);
}
END_TEST

/* Metadata lookups served so far (the stats' "served"). */
static unsigned long long served(void)
{
	struct qfs_buf b;
	unsigned long long n;
	const char *p;

	qfs_buf_init(&b);
	qfs_router_stats(r, &b);
	qfs_buf_put_u8(&b, 0);
	p = strstr((char *)b.data, " served ");
	ck_assert_ptr_nonnull(p);
	n = strtoull(p + 8, NULL, 10);
	qfs_buf_close(&b);
	return n;
}

struct split_arg {
	const uint8_t *key;
	size_t len;
	int rc;
};

static void *split_main(void *arg)
{
	struct split_arg *a = arg;

	a->rc = qfs_router_split(r, hk_table, a->key, a->len);
	return NULL;
}

/* Two splits at once: the second, at a key the first one moves, must
 * split the partition the key is in once the first is done, not the one
 * it was in when it was asked. */
START_TEST(test_split_waits_then_looks_up)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	uint8_t k[QFS_KEY_MAX], k2[QFS_KEY_MAX];
	struct split_arg s1, s2;
	pthread_t second;
	struct qfs_buf b;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "twice", &a, &t), 0);
	fill_dir(&t, 20);
	s1 = (struct split_arg){ k, qfs_key_dentry(k, t.ino, "e2", 2), -1 };
	s2 = (struct split_arg){ k2, qfs_key_dentry(k2, t.ino, "e5", 2), -1 };
	ck_assert_int_gt(qfs_meta_keycmp(k2, s2.len, k, s1.len), 0); /* in [k, hi) */
	/* the first split, held right after its commit point */
	hk_table = t.id;
	hk_state = 0;
	qfs_meta_test_reload_hook = hold_reload;
	pthread_mutex_lock(&hk_mu);
	ck_assert_int_eq(pthread_create(&hk_thread, NULL, split_main, &s1), 0);
	while (hk_state != 1)
		pthread_cond_wait(&hk_cv, &hk_mu);
	pthread_mutex_unlock(&hk_mu);
	/* the second: time to look its partition up, which it must not do
	 * before the first is done (nothing else asks meta meanwhile) */
	unsigned long long n0 = served(), n1;
	for (int i = 0; i < 100 && (usleep(20000), n1 = served()) != n0; i++)
		n0 = n1; /* the lookups fill_dir queued are served */
	ck_assert_int_eq(pthread_create(&second, NULL, split_main, &s2), 0);
	for (int i = 0; i < 100 && served() == n0; i++)
		usleep(10000);
	pthread_mutex_lock(&hk_mu);
	hk_state = 4; /* the hook lets every reload through from here */
	pthread_cond_broadcast(&hk_cv);
	pthread_mutex_unlock(&hk_mu);
	ck_assert_int_eq(pthread_join(hk_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(second, NULL), 0);
	qfs_meta_test_reload_hook = NULL;
	ck_assert_int_eq(s1.rc, 0);
	ck_assert_int_eq(s2.rc, 0);
	qfs_buf_init(&b);
	qfs_router_partitions(r, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(count_lines((char *)b.data, "table twice partition "), 3);
	qfs_buf_close(&b);
	ck_assert_int_eq(count_dir(&t, &sorted), 20);
	ck_assert(sorted);
	close_all(); /* and every group matches the map after a reopen */
	open_all();
	ck_assert_int_eq(count_dir(&t, &sorted), 20);
}
END_TEST

/* The stats' meta counter that follows name (" lookups_sent ", ...). */
static unsigned long long meta_stat(const char *name)
{
	struct qfs_buf b;
	unsigned long long n;
	const char *p;

	qfs_buf_init(&b);
	qfs_router_stats(r, &b);
	qfs_buf_put_u8(&b, 0);
	p = strstr((char *)b.data, name);
	ck_assert_ptr_nonnull(p);
	n = strtoull(p + strlen(name), NULL, 10);
	qfs_buf_close(&b);
	return n;
}

/* The lookup worker sleeps idle: its queue is empty and it waits for a
 * request without a timeout (parts.c cq_main). */
static int cq_is_idle(void)
{
	int idle;

	pthread_mutex_lock(&r->cq_mu);
	idle = r->cq_idle && r->cq_n == 0;
	pthread_mutex_unlock(&r->cq_mu);
	return idle;
}

/* The constant-work lookups run in ticks, the worker not woken per
 * request (parts.c cq_main): a map changed behind the router's cache
 * (committed in src/meta only, as another mount's split is) is still
 * noticed through the lookup of a request, and the cache refreshed
 * (counted); once requests stop, the worker sleeps idle and does no
 * lookup by itself; the next request wakes it again. */
START_TEST(test_constant_work_ticks)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta_part p, left, right;
	uint8_t k[QFS_KEY_MAX], k0[QFS_KEY_MAX];
	size_t kl, k0l;
	void *val = NULL;
	size_t vl;
	int i;

	ck_assert_int_eq(qfs_router_table_create(r, "ticks", &a, &t), 0);
	fill_dir(&t, 20);
	kl = qfs_key_dentry(k, t.ino, "e5", 2);
	k0l = qfs_key_dentry(k0, t.ino, "e1", 2);
	ck_assert_int_lt(qfs_meta_keycmp(k0, k0l, k, kl), 0); /* stays left */
	ck_assert_int_eq(qfs_meta_lookup(r->meta, t.id, k, kl, &p), 0);
	ck_assert_int_eq(qfs_cell_group_create(node, 777777), 0);
	for (i = 0; i < 1000 && !cq_is_idle(); i++)
		usleep(10000); /* fill_dir's lookups done */
	ck_assert(cq_is_idle());
	unsigned long long ref0 = meta_stat(" refreshed "), sent0 = meta_stat(" lookups_sent ");
	ck_assert_int_eq(qfs_meta_split(r->meta, &p, k, kl, 777777, &left, &right), 0);
	ck_assert_uint_eq(router_peek(r, t.id, k, kl), t.id); /* the cache did not see it */
	/* requests of the left side, which the cache routes at the old
	 * epoch: their lookups find it changed */
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(qfs_router_get(r, t.id, k0, k0l, &val, &vl), 0);
		free(val);
	}
	for (i = 0; i < 1000 && router_peek(r, t.id, k, kl) != 777777; i++)
		usleep(10000);
	ck_assert_uint_eq(router_peek(r, t.id, k, kl), 777777);
	ck_assert_uint_gt(meta_stat(" refreshed "), ref0);
	ck_assert_uint_gt(meta_stat(" lookups_sent "), sent0);
	/* idle: no lookup without requests, over many ticks */
	for (i = 0; i < 1000 && !cq_is_idle(); i++)
		usleep(10000);
	ck_assert(cq_is_idle());
	sent0 = meta_stat(" lookups_sent ");
	usleep(100000);
	ck_assert(cq_is_idle());
	ck_assert_uint_eq(meta_stat(" lookups_sent "), sent0);
	/* and the next request is looked up */
	ck_assert_int_eq(qfs_router_get(r, t.id, k0, k0l, &val, &vl), 0);
	free(val);
	for (i = 0; i < 1000 && meta_stat(" lookups_sent ") == sent0; i++)
		usleep(10000);
	ck_assert_uint_gt(meta_stat(" lookups_sent "), sent0);
}
END_TEST

/* An abandoned split whose reset of the old group's fence failed leaves
 * G fenced at E+1 while the map says E: writes must not fail (after
 * thousands of stale retries) until the next mount; the router repairs
 * the fence. */
START_TEST(test_fence_ahead_of_map_repaired)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta_part p;
	int sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "ahead", &a, &t), 0);
	fill_dir(&t, 5);
	memset(&p, 0, sizeof(p));
	qfs_meta_part_first(&p, t.id, t.id, 3);
	p.epoch = 2; /* the split's step 3, never undone */
	put_fence(t.id, &p);
	put_entry(t.id, t.ino, "after", 77);
	ck_assert_int_eq(count_dir(&t, &sorted), 6);
	/* the fence is the map's again */
	void *val;
	size_t vl;
	struct qfs_meta_part f;
	ck_assert_int_eq(qfs_cell_get(node, t.id, QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, &val, &vl), 0);
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(qfs_meta_fence_decode(val, vl, &f), 0);
	free(val);
	ck_assert_uint_eq(f.epoch, 1);
}
END_TEST

/* The split check's size walk (router_part_size): a file's chunks after
 * its first count as the file's size, unread (two scans for a partition
 * of one file, however large), the estimate equals the exact count of
 * .quorumfs/partitions for full chunks and grows with the writes; chunks
 * with no inode are read; a limit stops the walk with a key at half of
 * it; and the split thread still splits a partition above split_bytes. */
static void put_file(qfs_table_t table, qfs_ino_t ino, uint64_t from, uint64_t nchunks, uint64_t size)
{
	uint8_t key[QFS_KEY_MAX], *data = malloc(QFS_CHUNK_SIZE);
	struct qfs_txn t;
	struct qfs_op *op;
	int res = 1;

	ck_assert_ptr_nonnull(data);
	for (uint64_t c = from; c < from + nchunks; c++) {
		for (size_t i = 0; i < QFS_CHUNK_SIZE; i++)
			data[i] = (uint8_t)(1 + (i * 7 + c * 13 + ino) % 251); /* no zero byte */
		qfs_txn_init(&t);
		op = qfs_txn_add(&t, QFS_OP_PUT);
		op->key = key;
		op->key_len = (uint32_t)qfs_key_chunk(key, ino, c);
		op->val = data;
		op->val_len = QFS_CHUNK_SIZE;
		ck_assert_int_eq(qfs_router_txn(r, table, &t, &res), 0);
		ck_assert_int_eq(res, 0);
		qfs_txn_close(&t);
	}
	free(data);
	if (size == 0)
		return;
	struct qfs_inode in;
	struct qfs_buf b;
	qfs_inode_init(&in);
	in.a.ino = ino;
	in.a.mode = S_IFREG | 0644;
	in.a.nlink = 1;
	in.a.size = size;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_PUT);
	op->key = key;
	op->key_len = (uint32_t)qfs_key_inode(key, ino);
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	ck_assert_int_eq(qfs_router_txn(r, table, &t, &res), 0);
	ck_assert_int_eq(res, 0);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	qfs_inode_close(&in);
}

/* chunk_bytes of ino's inode as the router reads it (st_blocks comes from it). */
static uint64_t chunk_bytes_of(qfs_table_t table, qfs_ino_t ino)
{
	uint8_t k[QFS_KEY_MAX];
	size_t kl = qfs_key_inode(k, ino), vl;
	struct qfs_inode in;
	void *val;

	ck_assert_int_eq(qfs_router_get(r, table, k, kl, &val, &vl), 0);
	qfs_inode_init(&in);
	ck_assert_int_eq(qfs_inode_decode(val, vl, &in), 0);
	free(val);
	uint64_t n = in.chunk_bytes;
	qfs_inode_close(&in);
	return n;
}

/* A split copies a large file into the new group in several txns of
 * 512 KiB, its chunks before its inode (key order).  The store counts a
 * chunk's bytes into its inode only if the inode exists, and a PUT of a
 * new inode starts at 0: the copied inode kept only the chunks copied in
 * its own txn, so st_blocks of a 3 MiB file fell to a few hundred KiB
 * after a split.  The copy must keep every chunk counted. */
START_TEST(test_split_keeps_chunk_bytes)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	uint8_t k[QFS_KEY_MAX];
	size_t kl;
	const qfs_ino_t ino = 5000, small = 5001;
	const uint64_t nchunks = 24;

	ck_assert_int_eq(qfs_router_table_create(r, "blocks", &a, &t), 0);
	put_file(t.id, ino, 0, 0, nchunks * QFS_CHUNK_SIZE); /* the inode first: it counts */
	put_file(t.id, ino, 0, nchunks, 0);
	put_file(t.id, small, 0, 0, 2 * QFS_CHUNK_SIZE);
	put_file(t.id, small, 0, 2, 0);
	ck_assert_uint_eq(chunk_bytes_of(t.id, ino), nchunks * QFS_CHUNK_SIZE);
	ck_assert_uint_eq(chunk_bytes_of(t.id, small), 2 * QFS_CHUNK_SIZE);
	kl = qfs_key_chunk(k, ino, 0); /* both files move to the new group */
	ck_assert_int_eq(qfs_router_split(r, t.id, k, kl), 0);
	ck_assert_uint_eq(chunk_bytes_of(t.id, ino), nchunks * QFS_CHUNK_SIZE);
	ck_assert_uint_eq(chunk_bytes_of(t.id, small), 2 * QFS_CHUNK_SIZE);
	struct qfs_attr fa;
	ck_assert_int_eq(qfs_router_get_attr(r, t.id, ino, &fa), 0);
	ck_assert_uint_eq(fa.blocks, nchunks * QFS_CHUNK_SIZE / 512);
	/* and the counts go on from there */
	put_file(t.id, ino, nchunks, 1, 0);
	ck_assert_uint_eq(chunk_bytes_of(t.id, ino), (nchunks + 1) * QFS_CHUNK_SIZE);
	close_all();
	open_all();
	ck_assert_uint_eq(chunk_bytes_of(t.id, ino), (nchunks + 1) * QFS_CHUNK_SIZE);
}
END_TEST

/* The exact bytes .quorumfs/partitions shows for the table's only partition. */
static uint64_t listed_bytes(const char *table)
{
	struct qfs_buf b;
	char pre[64];
	unsigned long long n = 0;

	qfs_buf_init(&b);
	qfs_router_partitions(r, &b);
	qfs_buf_put_u8(&b, 0);
	snprintf(pre, sizeof(pre), "table %s partition 0 ", table);
	const char *l = strstr((char *)b.data, pre);
	ck_assert_ptr_nonnull(l);
	l = strstr(l, " bytes ");
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(sscanf(l, " bytes %llu", &n), 1);
	qfs_buf_close(&b);
	return n;
}

static uint64_t walk(qfs_table_t table, uint64_t limit, uint8_t *mid, size_t *mid_len, uint32_t *scans)
{
	struct qfs_meta_part p;
	uint8_t k[QFS_KEY_MAX];
	uint64_t bytes = 0;
	size_t kl = qfs_key_inode(k, 1);

	qfs_meta_lookup(r->meta, table, k, kl, &p);
	ck_assert_int_eq(router_part_size(r, &p, limit, &bytes, mid, mid_len, scans), 0);
	return bytes;
}

START_TEST(test_size_walk)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta_part *v = NULL;
	uint8_t mid[QFS_KEY_MAX];
	size_t mid_len = 0, n = 0;
	uint32_t scans = 0;
	uint64_t est, est2;

	ck_assert_int_eq(qfs_router_table_create(r, "sz", &a, &t), 0);
	put_entry(t.id, t.ino, "f", 5000);
	put_file(t.id, 5000, 0, 8, 8 * QFS_CHUNK_SIZE);
	est = walk(t.id, 0, NULL, NULL, &scans);
	ck_assert_uint_eq(est, listed_bytes("sz"));
	ck_assert_uint_gt(est, 8 * QFS_CHUNK_SIZE);
	ck_assert_uint_eq(scans, 2); /* to the first chunk, then from the inode */
	/* the file grows: so does the estimate, at the same cost */
	put_file(t.id, 5000, 8, 8, 16 * QFS_CHUNK_SIZE);
	est2 = walk(t.id, 0, NULL, NULL, &scans);
	ck_assert_uint_eq(est2, listed_bytes("sz"));
	ck_assert_uint_ge(est2, est + 8 * QFS_CHUNK_SIZE);
	ck_assert_uint_eq(scans, 2);
	/* chunks without an inode (no size to take) are read and counted */
	put_file(t.id, 6000, 0, 3, 0);
	est = walk(t.id, 0, NULL, NULL, &scans);
	ck_assert_uint_eq(est, listed_bytes("sz"));
	ck_assert_uint_ge(est, est2 + 3 * QFS_CHUNK_SIZE);
	ck_assert_uint_le(scans, 5);
	/* a limit stops the walk past it, with the key at half of it */
	est2 = walk(t.id, 2 * QFS_CHUNK_SIZE, mid, &mid_len, &scans);
	ck_assert_uint_gt(est2, 2 * QFS_CHUNK_SIZE);
	ck_assert_uint_gt(mid_len, 0);

	/* the split thread splits by size on the estimate: 6 files of 512 KiB
	 * over a split_bytes of 1 MiB; the mid key (the end of the first or
	 * second file in key order) cuts the partition */
	for (qfs_ino_t i = 0; i < 6; i++)
		put_file(t.id, 7000 + i, 0, 4, 4 * QFS_CHUNK_SIZE);
	struct qfs_router_split_cfg cfg = { .split_bytes = 1u << 20, .check_ms = 100 };
	ck_assert_int_eq(qfs_router_split_config(r, &cfg), 0);
	for (int i = 0; i < 300 && n < 2; i++) {
		free(v);
		v = NULL;
		ck_assert_int_eq(qfs_meta_parts(r->meta, t.id, &v, &n), 0);
		if (n < 2)
			usleep(100 * 1000);
	}
	free(v);
	ck_assert_uint_ge(n, 2);
}
END_TEST

/* Bytes (keys + values, fences left out) group g holds in [lo, hi). */
static int exact_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)v;
	if (!qfs_meta_is_fence(k, kl))
		*(uint64_t *)arg += kl + vl;
	return 0;
}

static uint64_t exact_bytes(const struct qfs_meta_part *p)
{
	uint64_t n = 0;

	ck_assert_int_eq(qfs_cell_scan(node, p->group, p->lo, p->lo_len, p->hi_len ? p->hi : NULL, p->hi_len,
				       exact_cb, &n), 0);
	return n;
}

/* The size walk over a partition whose bounds cut a file: its inode past
 * hi (the chunks read, none skipped), its first chunks before lo (not
 * counted in: the estimate is the file's bytes from the first chunk the
 * partition holds, not the whole file's). */
START_TEST(test_size_walk_bounds)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta_part p, q;
	uint8_t k[QFS_KEY_MAX];
	uint64_t bytes = 0, want;
	uint32_t scans = 0;

	ck_assert_int_eq(qfs_router_table_create(r, "szb", &a, &t), 0);
	put_entry(t.id, t.ino, "f", 5100);
	put_file(t.id, 5100, 0, 6, 6 * QFS_CHUNK_SIZE);
	ck_assert_int_eq(qfs_meta_lookup(r->meta, t.id, k, qfs_key_inode(k, 5100), &p), 0);
	/* [.., inode): all 6 chunks, no inode */
	q = p;
	q.lo_len = QFS_META_ITEMS_FIRST_LEN;
	memcpy(q.lo, QFS_META_ITEMS_FIRST, q.lo_len);
	q.hi_len = (uint32_t)qfs_key_inode(q.hi, 5100);
	want = exact_bytes(&q);
	ck_assert_uint_gt(want, 6 * QFS_CHUNK_SIZE);
	ck_assert_int_eq(router_part_size(r, &q, 0, &bytes, NULL, NULL, &scans), 0);
	ck_assert_uint_eq(bytes, want);
	/* [.., chunk 3): chunks 0-2 only */
	q.hi_len = (uint32_t)qfs_key_chunk(q.hi, 5100, 3);
	want = exact_bytes(&q);
	ck_assert_int_eq(router_part_size(r, &q, 0, &bytes, NULL, NULL, &scans), 0);
	ck_assert_uint_eq(bytes, want);
	/* [chunk 4, inode]: chunks 4, 5 and the inode; the estimate takes the
	 * file's size from chunk 4 on (keys included), not chunks 0-3 */
	q = p;
	q.lo_len = (uint32_t)qfs_key_chunk(q.lo, 5100, 4);
	q.hi_len = (uint32_t)qfs_key_inode(q.hi, 5100) + 1;
	q.hi[q.hi_len - 1] = 0; /* just past the inode */
	want = exact_bytes(&q);
	ck_assert_uint_lt(want, 3 * QFS_CHUNK_SIZE);
	ck_assert_int_eq(router_part_size(r, &q, 0, &bytes, NULL, NULL, &scans), 0);
	ck_assert_uint_eq(bytes, want);
	ck_assert_uint_eq(scans, 2);
}
END_TEST

/* Propose to group g: a RANGE op at epoch ep (the fence a router at map
 * ep expects) in front of op; the txn's result. */
static int propose_at(qfs_group_t g, uint64_t ep, struct qfs_txn *t)
{
	struct qfs_buf eb;
	uint8_t be[8];
	struct qfs_op *op;
	int res = 1;

	qfs_be64_put(be, ep);
	op = qfs_txn_add(t, QFS_OP_RANGE);
	ck_assert_ptr_nonnull(op);
	op->key = QFS_META_FENCE_KEY;
	op->key_len = QFS_META_FENCE_KEY_LEN;
	op->val = be;
	op->val_len = 8;
	op->err = QFS_ESTALE;
	/* the condition first: swap it in front */
	struct qfs_op c = t->ops[t->nops - 1];
	memmove(&t->ops[1], &t->ops[0], (t->nops - 1) * sizeof(t->ops[0]));
	t->ops[0] = c;
	qfs_buf_init(&eb);
	qfs_txn_encode(t, &eb);
	ck_assert_int_eq(qfs_cell_propose(node, g, eb.data, eb.len, &res), 0);
	qfs_buf_close(&eb);
	return res;
}

static struct qfs_meta_part fence_of(qfs_group_t g)
{
	struct qfs_meta_part f;
	void *val;
	size_t vl;

	ck_assert_int_eq(qfs_cell_get(node, g, QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, &val, &vl), 0);
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(qfs_meta_fence_decode(val, vl, &f), 0);
	free(val);
	return f;
}

/* Cluster mode, the late reset (doc/cluster.md section 6): holder A of a
 * split of G (at E) has fenced G and decides to give up, then pauses past
 * the lease; mount C takes its intent over and undoes the split; mount D
 * splits G again, fences it and copies the moving half; then A's undo
 * lands.  It used to put G's fence back to (E, same range), the very
 * bytes D's fence replaced: a router still at map E then wrote into G's
 * moving half behind D's copy (acknowledged), D's settle of G found a
 * fence not its own and did nothing, and the next repair deleted G's
 * moved half, the acknowledged write with it.  Now an undo raises the
 * map's epoch instead, conditional on the intent: A's late undo changes
 * nothing and G's fence never goes back. */
START_TEST(test_late_abort_keeps_later_fence)
{
	struct qfs_attr a = dir_attr();
	struct qfs_table t;
	struct qfs_meta *ma, *md;
	struct qfs_meta_part p, pd, g, left, right, f;
	struct qfs_meta_intent ina, ina2, ind, iv[4];
	struct qfs_meta_rec rec, grec;
	struct qfs_txn tx;
	uint8_t k[QFS_KEY_MAX], kx[QFS_KEY_MAX];
	size_t kl, kxl, ni;
	void *val;
	size_t vl;
	int res, sorted;

	ck_assert_int_eq(qfs_router_table_create(r, "late", &a, &t), 0);
	fill_dir(&t, 10); /* e0 .. e9 */
	kl = qfs_key_dentry(k, t.ino, "e5", 2);
	/* A: claim at E, its new group, G fenced at E+1, a forced beat */
	ck_assert_int_eq(qfs_meta_open(node, &ma), 0);
	ck_assert_int_eq(qfs_meta_lookup(ma, t.id, k, kl, &p), 0);
	ina = (struct qfs_meta_intent){ t.id, p.group, 41, 1, 555551, p.epoch };
	ck_assert_int_eq(qfs_meta_intent_claim(ma, &p, &ina), 0);
	ck_assert_int_eq(qfs_cell_group_create(node, 555551), 0);
	g = p;
	g.epoch = p.epoch + 1;
	put_fence(p.group, &g);
	ina2 = ina;
	ina2.beat = 2;
	ck_assert_int_eq(qfs_meta_intent_swap(ma, &ina, &ina2), 0);
	/* A pauses.  C (this router) sees the intent unchanged for the lease */
	router_test_cluster_splits = 1;
	router_test_lease_ms = 1;
	(void)router_fence_repair(r, t.id);
	usleep(5000);
	(void)router_fence_repair(r, t.id);
	ck_assert_int_eq(qfs_meta_intents(ma, t.id, iv, 4, &ni), 0);
	ck_assert_uint_eq(ni, 0); /* taken over and undone */
	f = fence_of(p.group);
	ck_assert_uint_ge(f.epoch, p.epoch + 1); /* never back */
	/* D: claims G as the map now has it, fences it one above, copies */
	ck_assert_int_eq(qfs_meta_open(node, &md), 0);
	ck_assert_int_eq(qfs_meta_reload_table(md, t.id), 0);
	ck_assert_int_eq(qfs_meta_lookup(md, t.id, k, kl, &pd), 0);
	ind = (struct qfs_meta_intent){ t.id, pd.group, 43, 1, 555553, pd.epoch };
	ck_assert_int_eq(qfs_meta_intent_claim(md, &pd, &ind), 0);
	ck_assert_int_eq(qfs_cell_group_create(node, 555553), 0);
	g = pd;
	g.epoch = pd.epoch + 1;
	qfs_meta_rec_init(&grec);
	qfs_txn_init(&tx);
	ck_assert_int_eq(qfs_meta_add_fence(&tx, &grec, &g), 0);
	ck_assert_int_eq(propose_at(pd.group, pd.epoch, &tx), 0); /* step 2, conditional on E */
	qfs_txn_close(&tx);
	g = pd;
	memcpy(g.lo, k, kl);
	g.lo_len = (uint32_t)kl;
	g.group = 555553;
	g.epoch = pd.epoch + 1;
	put_fence(555553, &g);
	for (int i = 5; i < 10; i++) {
		char name[32];
		snprintf(name, sizeof(name), "e%d", i);
		put_direct(555553, t.ino, name, 100000 + (qfs_ino_t)i);
	}
	/* A's undo lands late */
	router_test_abort(r, &ina2, &p);
	f = fence_of(p.group);
	ck_assert_uint_eq(f.epoch, pd.epoch + 1); /* D's fence stays */
	/* a router still at map E writes into the moving half, behind D's copy */
	{
		struct qfs_dentry d = { 100077, S_IFREG, 0 };
		struct qfs_buf b;
		struct qfs_op *op;

		kxl = qfs_key_dentry(kx, t.ino, "e7x", 3);
		qfs_buf_init(&b);
		qfs_dentry_encode(&d, &b);
		qfs_txn_init(&tx);
		op = qfs_txn_add(&tx, QFS_OP_PUT);
		op->key = kx;
		op->key_len = (uint32_t)kxl;
		op->val = b.data;
		op->val_len = (uint32_t)b.len;
		res = propose_at(p.group, p.epoch, &tx);
		qfs_txn_close(&tx);
		qfs_buf_close(&b);
	}
	ck_assert_int_eq(res, QFS_ESTALE); /* refused: nothing lands behind the copy */
	/* D commits and settles G, conditional on its own fence */
	ck_assert_int_eq(qfs_meta_split_claimed(md, &pd, k, kl, 555553, &ind, &left, &right), 0);
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&tx);
	{
		struct qfs_op *op = qfs_txn_add(&tx, QFS_OP_EXPECT_VALUE);
		static const uint8_t end[QFS_META_KEY_END_LEN] = {
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		};

		op->key = QFS_META_FENCE_KEY;
		op->key_len = QFS_META_FENCE_KEY_LEN;
		op->val = grec.val.data;
		op->val_len = (uint32_t)grec.val.len;
		op->err = QFS_ECONFLICT;
		ck_assert_int_eq(qfs_meta_add_fence(&tx, &rec, &left), 0);
		op = qfs_txn_add(&tx, QFS_OP_DEL_RANGE);
		op->key = left.hi;
		op->key_len = left.hi_len;
		op->key2 = end;
		op->key2_len = sizeof(end);
		ck_assert_int_eq(propose_at(left.group, left.epoch, &tx), 0); /* D's settle applies */
	}
	qfs_txn_close(&tx);
	qfs_meta_rec_close(&rec);
	qfs_meta_rec_close(&grec);
	qfs_meta_free(ma);
	qfs_meta_free(md);
	/* the next repair changes nothing; every name reads back */
	(void)router_fence_repair(r, t.id);
	router_test_cluster_splits = 0;
	router_test_lease_ms = 0;
	f = fence_of(p.group);
	ck_assert_uint_eq(f.epoch, left.epoch);
	ck_assert_uint_eq(f.hi_len, left.hi_len);
	router_test_cluster_reads = 1;
	ck_assert_int_eq(count_dir(&t, &sorted), 10);
	ck_assert(sorted);
	for (int i = 0; i < 10; i++) {
		char name[32];
		snprintf(name, sizeof(name), "e%d", i);
		kl = qfs_key_dentry(k, t.ino, name, strlen(name));
		ck_assert_int_eq(qfs_router_get(r, t.id, k, kl, &val, &vl), 0);
		free(val);
	}
	router_test_cluster_reads = 0;
	put_entry(t.id, t.ino, "e8y", 100088); /* a write after it all goes through */
	ck_assert_int_eq(count_dir(&t, &sorted), 11);
}
END_TEST

/* The key of a load split (qfs_router_load_split_key): a chunk key of the
 * requests' median moves to the end of its file; when that end is the
 * partition's own end (a hot file written at the end of its range, where
 * the split used to do nothing, silently), to the file's start; a
 * partition that is one file, a key at its first key or outside it: no
 * key, and a reason. */
START_TEST(test_load_split_key)
{
	uint8_t k[QFS_KEY_MAX], end[QFS_KEY_MAX], start[QFS_KEY_MAX], d[QFS_KEY_MAX];
	size_t kl, dl;
	const char *why = NULL;

	/* end: the first key after every item of file 77 */
	size_t cl = qfs_key_chunk(end, 77, 5);
	memcpy(start, end, QFS_KEY_PREFIX_LEN);
	for (int i = QFS_KEY_PREFIX_LEN - 1; i >= 0; i--)
		if (++end[i] != 0)
			break;
	ck_assert_uint_gt(cl, QFS_KEY_PREFIX_LEN);

	/* open-ended partition: the end of the file */
	kl = qfs_key_chunk(k, 77, 5);
	ck_assert_int_eq(qfs_router_load_split_key(NULL, 0, NULL, 0, k, &kl, &why), 0);
	ck_assert_uint_eq(kl, QFS_KEY_PREFIX_LEN);
	ck_assert_mem_eq(k, end, QFS_KEY_PREFIX_LEN);

	/* the file ends the partition: its start */
	kl = qfs_key_chunk(k, 77, 5);
	ck_assert_int_eq(qfs_router_load_split_key(NULL, 0, end, QFS_KEY_PREFIX_LEN, k, &kl, &why), 0);
	ck_assert_uint_eq(kl, QFS_KEY_PREFIX_LEN);
	ck_assert_mem_eq(k, start, QFS_KEY_PREFIX_LEN);
	kl = qfs_key_inode(k, 77); /* its inode item too */
	ck_assert_int_eq(qfs_router_load_split_key(NULL, 0, end, QFS_KEY_PREFIX_LEN, k, &kl, &why), 0);
	ck_assert_mem_eq(k, start, QFS_KEY_PREFIX_LEN);

	/* the partition is that one file: no key, a reason, key untouched */
	kl = qfs_key_chunk(k, 77, 5);
	ck_assert_int_eq(qfs_router_load_split_key(start, QFS_KEY_PREFIX_LEN, end, QFS_KEY_PREFIX_LEN,
						   k, &kl, &why), -ERANGE);
	ck_assert_str_eq(why, "one file spans the partition around the median key");
	ck_assert_uint_eq(kl, cl);

	/* a dentry stays where it is, but not at the partition's first key */
	dl = qfs_key_dentry(d, 77, "name", 4);
	memcpy(k, d, dl);
	kl = dl;
	ck_assert_int_eq(qfs_router_load_split_key(NULL, 0, NULL, 0, k, &kl, &why), 0);
	ck_assert_uint_eq(kl, dl);
	ck_assert_mem_eq(k, d, dl);
	ck_assert_int_eq(qfs_router_load_split_key(d, dl, NULL, 0, k, &kl, &why), -ERANGE);
	ck_assert_str_eq(why, "median key is the partition's first key");

	/* outside [lo, hi) (samples older than the last split) */
	kl = qfs_key_chunk(k, 77, 5);
	ck_assert_int_eq(qfs_router_load_split_key(end, QFS_KEY_PREFIX_LEN, NULL, 0, k, &kl, &why), -ERANGE);
	ck_assert_str_eq(why, "median key outside the partition");
}
END_TEST

/* ------------------------------------------------------------------------
 * router/route.c against a fake cell of three nodes (issue 12 item 6): the
 * fake answers each attempt from a script (-EREMOTE with a hint, -EAGAIN,
 * -ETIMEDOUT, QFS_ESTOPPED, -EHOSTDOWN) and keeps a fake clock that only
 * its sleeps and attempts advance, so every wait and timeout is exact and
 * nothing sleeps for real. */

#define FK_NODES 3
#define FK_SCRIPT 16

struct fake {
	uint64_t now;                  /* fake monotonic ms */
	uint32_t timeout;              /* the cell's timeout (ms) */
	enum qfs_cell_reads mode;
	int exists;                    /* the group exists */
	uint32_t leader[FK_NODES + 1]; /* the leader each node knows (views) */
	int lease[FK_NODES + 1];       /* node leads with a lease */
	int up[FK_NODES + 1];
	int stopped[FK_NODES + 1];     /* replica stopped after an error */
	int stop_err[FK_NODES + 1];
	qfs_lsn_t applied[FK_NODES + 1];
	uint32_t elect_at;             /* leader 2 becomes known at this fake time (0: never) */
	struct { uint32_t node; int rc; uint32_t hint; } script[FK_SCRIPT]; /* attempt answers */
	int nscript, next;
	uint32_t calls[FK_SCRIPT];     /* node of each attempt */
	int ncalls, sleeps, gets;
	uint32_t got_at;               /* node the last get read */
	int refuse;                    /* reads refused with -EREMOTE (lease lost) before
					  one is served; -1: every one */
};

static uint32_t fk_nodes(void *c) { (void)c; return FK_NODES; }
static uint32_t fk_timeout(void *c) { return ((struct fake *)c)->timeout; }
static enum qfs_cell_reads fk_mode(void *c) { return ((struct fake *)c)->mode; }
static int fk_exists(void *c, qfs_group_t g) { (void)g; return ((struct fake *)c)->exists; }
static uint64_t fk_now(void *c) { return ((struct fake *)c)->now; }

static void fk_elect(struct fake *f)
{
	if (f->elect_at && f->now >= f->elect_at)
		for (int i = 1; i <= FK_NODES; i++) {
			f->leader[i] = 2;
			f->lease[i] = i == 2;
		}
}

static void fk_sleep(void *c, uint32_t ms)
{
	struct fake *f = c;

	f->now += ms;
	f->sleeps++;
	fk_elect(f);
}

static int fk_view(void *c, uint32_t id, qfs_group_t g, int info, struct qfs_cell_view *out)
{
	struct fake *f = c;

	(void)g;
	if (id < 1 || id > FK_NODES)
		return -EINVAL;
	if (!f->up[id])
		return -EHOSTDOWN;
	memset(out, 0, sizeof(*out));
	out->leader = f->leader[id];
	out->lease = f->lease[id];
	if (info) {
		out->hosted = 1;
		out->stopped = f->stopped[id];
		out->err = f->stop_err[id];
		out->applied = f->applied[id];
	}
	return 0;
}

static int fk_propose_at(void *c, uint32_t id, qfs_group_t g, const void *txn, size_t len,
			 uint32_t timeout_ms, int *result, uint32_t *leader)
{
	struct fake *f = c;
	int rc;

	(void)g;
	(void)txn;
	(void)len;
	ck_assert_int_lt(f->ncalls, FK_SCRIPT);
	f->calls[f->ncalls++] = id;
	ck_assert_int_lt(f->next, f->nscript); /* no attempt beyond the script */
	ck_assert_uint_eq(f->script[f->next].node, id);
	rc = f->script[f->next].rc;
	*leader = f->script[f->next].hint;
	f->next++;
	if (rc == -ETIMEDOUT)
		f->now += timeout_ms; /* the node waited its whole budget */
	if (rc == 0)
		*result = 7;
	return rc;
}

static int fk_get_at(void *c, uint32_t id, qfs_group_t g, const uint8_t *key, size_t key_len,
		     uint32_t wait_ms, void **val, size_t *val_len, uint32_t *leader)
{
	struct fake *f = c;

	(void)g;
	(void)key;
	(void)key_len;
	(void)wait_ms;
	(void)leader;
	f->gets++;
	if (!f->up[id])
		return -EHOSTDOWN;
	if (f->refuse) {
		f->refuse -= f->refuse > 0;
		*leader = 0;
		return -EREMOTE;
	}
	f->got_at = id;
	*val = strdup("v");
	*val_len = 1;
	return 0;
}

static int fk_scan_at(void *c, uint32_t id, qfs_group_t g, const uint8_t *lo, size_t lo_len,
		      const uint8_t *hi, size_t hi_len, uint32_t wait_ms, qfs_store_scan_cb cb,
		      void *arg, int *more, struct qfs_buf *resume, uint32_t *leader)
{
	struct fake *f = c;

	(void)id; (void)g; (void)lo; (void)lo_len; (void)hi; (void)hi_len;
	(void)wait_ms; (void)resume;
	*more = 0;
	if (f->refuse) {
		f->refuse -= f->refuse > 0;
		*leader = 0;
		return -EREMOTE;
	}
	return cb((const uint8_t *)"k", 1, (const uint8_t *)"v", 1, arg);
}

static int count_keys_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)k; (void)kl; (void)v; (void)vl;
	(*(int *)arg)++;
	return 0;
}

static const struct qfs_route_ops fk_ops = {
	.nodes = fk_nodes, .timeout_ms = fk_timeout, .read_mode = fk_mode, .exists = fk_exists,
	.view = fk_view, .propose_at = fk_propose_at, .get_at = fk_get_at, .scan_at = fk_scan_at,
	.now_ms = fk_now, .sleep_ms = fk_sleep,
};

/* Three nodes up, every one believing node 1 leads (with its lease), the
 * group present, clock at 1000 ms, timeout 500 ms. */
static void fk_init(struct fake *f, struct qfs_route **rt)
{
	memset(f, 0, sizeof(*f));
	f->now = 1000;
	f->timeout = 500;
	f->exists = 1;
	for (int i = 1; i <= FK_NODES; i++) {
		f->up[i] = 1;
		f->leader[i] = 1;
	}
	f->lease[1] = 1;
	ck_assert_int_eq(qfs_route_new_ops(&fk_ops, f, rt), 0);
}

static void fk_answer(struct fake *f, uint32_t id, int rc, uint32_t hint)
{
	ck_assert_int_lt(f->nscript, FK_SCRIPT);
	f->script[f->nscript].node = id;
	f->script[f->nscript].rc = rc;
	f->script[f->nscript++].hint = hint;
}

/* A stale leader answers NOT_LEADER with a hint: the route follows it at
 * once (no sleep), counts a redirect, and the next proposal goes straight
 * to the node that succeeded. */
START_TEST(test_route_follows_hints)
{
	struct qfs_route *rt;
	struct fake f;
	uint64_t redir, tmo;
	int res = 0;

	fk_init(&f, &rt);
	fk_answer(&f, 1, -EREMOTE, 3);
	fk_answer(&f, 3, -EREMOTE, 2);
	fk_answer(&f, 2, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(res, 7);
	ck_assert_int_eq(f.ncalls, 3);
	ck_assert_int_eq(f.sleeps, 0);
	qfs_route_stat(rt, &redir, &tmo);
	ck_assert_uint_eq(redir, 2);
	ck_assert_uint_eq(tmo, 0);
	/* node 2 succeeded: asked first next time, and it names itself */
	for (int i = 1; i <= FK_NODES; i++)
		f.leader[i] = 2;
	fk_answer(&f, 2, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(f.ncalls, 4);
	/* a hint without a leader (0) waits one poll step, then asks again */
	fk_answer(&f, 2, -EREMOTE, 0);
	fk_answer(&f, 2, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(f.sleeps, 1);
	qfs_route_free(rt);
}
END_TEST

/* No node knows a leader (an election): the route polls every
 * QFS_ROUTE_POLL_MS until one is known, within the budget; -EAGAIN (a new
 * leader replaced the entry) is retried after one poll step too. */
START_TEST(test_route_waits_out_election)
{
	struct qfs_route *rt;
	struct fake f;
	uint64_t redir, tmo;
	int res = 0;

	fk_init(&f, &rt);
	for (int i = 1; i <= FK_NODES; i++)
		f.leader[i] = 0;
	f.lease[1] = 0;
	f.elect_at = 1100;
	fk_answer(&f, 2, -EAGAIN, 0);
	fk_answer(&f, 2, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(f.sleeps, 100 / QFS_ROUTE_POLL_MS + 1);
	ck_assert_uint_eq(f.now, 1100 + QFS_ROUTE_POLL_MS);
	qfs_route_stat(rt, &redir, &tmo);
	ck_assert_uint_eq(redir, 1);
	ck_assert_uint_eq(tmo, 0);
	qfs_route_free(rt);
}
END_TEST

/* The bound: with no leader ever, a proposal and a strong read give up
 * with -ETIMEDOUT after exactly the cell's timeout (fake clock), counted;
 * a missing group is QFS_ENOGROUP at once. */
START_TEST(test_route_timeout_bounded)
{
	struct qfs_route *rt;
	struct fake f;
	uint64_t redir, tmo;
	void *v = NULL;
	size_t vl = 0;
	int res = 0;

	fk_init(&f, &rt);
	for (int i = 1; i <= FK_NODES; i++)
		f.leader[i] = 0;
	f.lease[1] = 0;
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), -ETIMEDOUT);
	ck_assert_uint_eq(f.now, 1500);
	ck_assert_int_eq(f.ncalls, 0);
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), -ETIMEDOUT);
	ck_assert_uint_eq(f.now, 2000);
	ck_assert_int_eq(f.gets, 0);
	qfs_route_stat(rt, &redir, &tmo);
	ck_assert_uint_eq(tmo, 2);

	f.exists = 0;
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), QFS_ENOGROUP);
	ck_assert_uint_eq(f.now, 2000);
	struct qfs_val pv = { 0 }; /* the pinned read: the same error, nothing held */
	ck_assert_int_eq(qfs_route_get_val(rt, 9, (const uint8_t *)"k", 1, &pv), QFS_ENOGROUP);
	ck_assert(!qfs_val_held(&pv));
	f.exists = 1;
	ck_assert_int_eq(qfs_route_get_val(rt, 9, (const uint8_t *)"k", 1, &pv), -ETIMEDOUT);
	ck_assert(!qfs_val_held(&pv));
	ck_assert_int_eq(f.gets, 0);
	qfs_route_free(rt);
}
END_TEST

/* A timeout at the leader is final (the entry may still commit): one
 * attempt, -ETIMEDOUT, not retried elsewhere. */
START_TEST(test_route_leader_timeout_final)
{
	struct qfs_route *rt;
	struct fake f;
	uint64_t redir, tmo;
	int res = 0;

	fk_init(&f, &rt);
	fk_answer(&f, 1, -ETIMEDOUT, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), -ETIMEDOUT);
	ck_assert_int_eq(f.ncalls, 1);
	ck_assert_uint_eq(f.now, 1500); /* the attempt got the whole budget */
	qfs_route_stat(rt, &redir, &tmo);
	ck_assert_uint_eq(tmo, 1);
	/* with a replica stopped on a full disk the answer says why */
	f.stopped[3] = 1;
	f.stop_err[3] = -ENOSPC;
	fk_answer(&f, 1, -ETIMEDOUT, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), -ENOSPC);
	qfs_route_free(rt);
}
END_TEST

/* Stopped replicas: a majority stopped fails at once with its reason
 * (no wait); QFS_ESTOPPED at every node in turn ends with QFS_ESTOPPED; a
 * node that went down before the attempt (-EHOSTDOWN) is passed over. */
START_TEST(test_route_stopped_replicas)
{
	struct qfs_route *rt;
	struct fake f;
	int res = 0;

	fk_init(&f, &rt);
	for (int i = 1; i <= FK_NODES; i++)
		f.leader[i] = 0;
	f.stopped[1] = f.stopped[2] = 1;
	f.stop_err[2] = -ENOSPC;
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), -ENOSPC);
	ck_assert_int_eq(f.sleeps, 0);
	ck_assert_uint_eq(f.now, 1000);
	qfs_route_free(rt);

	fk_init(&f, &rt);
	fk_answer(&f, 1, QFS_ESTOPPED, 0);
	f.stopped[1] = 1;
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), -ETIMEDOUT);
	ck_assert_int_eq(f.ncalls, 1); /* node 1 was never asked again */
	qfs_route_free(rt);

	fk_init(&f, &rt);
	fk_answer(&f, 1, -EHOSTDOWN, 0);
	fk_answer(&f, 1, QFS_ESTOPPED, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), -ETIMEDOUT);
	ck_assert_int_eq(f.ncalls, 2);
	qfs_route_free(rt);
}
END_TEST

/* Reads: strong reads go to the leader with a lease; eventual reads fall
 * back to the replica that applied the most; a node that stopped between
 * the choice and the read is chosen again. */
START_TEST(test_route_reads)
{
	struct qfs_route *rt;
	struct fake f;
	void *v = NULL;
	size_t vl = 0;
	int n = 0;

	fk_init(&f, &rt);
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), 0);
	ck_assert_uint_eq(f.got_at, 1);
	/* _get_val over ops without get_at_val: get_at's value held, the same
	 * bytes, freed by the release (ASan: once) */
	struct qfs_val pv = { 0 };
	ck_assert_int_eq(qfs_route_get_val(rt, 9, (const uint8_t *)"k", 1, &pv), 0);
	ck_assert(qfs_val_held(&pv));
	ck_assert_uint_eq(pv.len, vl);
	ck_assert_mem_eq(pv.data, v, vl);
	qfs_val_release(&pv);
	ck_assert(!qfs_val_held(&pv));
	free(v);
	ck_assert_int_eq(qfs_route_scan(rt, 9, NULL, 0, NULL, 0, count_keys_cb, &n), 0);
	ck_assert_int_eq(n, 1);
	f.lease[1] = 0;
	f.mode = QFS_CELL_READ_EVENTUAL;
	f.applied[1] = 5;
	f.applied[2] = 9;
	f.applied[3] = 7;
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), 0);
	ck_assert_uint_eq(f.got_at, 2);
	free(v);
	ck_assert_uint_eq(f.now, 1000);
	qfs_route_free(rt);
}
END_TEST

/* The same route over a remote fake (cluster mode): nodes 11, 12, 13 seen
 * only through attempts.  A node that does not answer (-EHOSTDOWN) is
 * passed over for the next; -ETIMEDOUT at a node is retried (the token
 * makes it safe) after QFS_ROUTE_ELECTION_MS; the txn is prepared once
 * and every attempt sends that copy; the node that answered is asked
 * first next time; with no answer at all the call ends after exactly the
 * timeout. */
struct rfake {
	struct fake f;
	int silent[3];
	int prepared;
	const void *sent;
};

static int rf_remote(void *c) { (void)c; return 1; }
static uint32_t rf_node_id(void *c, uint32_t idx) { (void)c; return idx < 3 ? 11 + idx : 0; }
static int rf_silent(void *c, uint32_t id)
{
	/* a node not in the cluster file counts as silent (qfs_rcell_silent) */
	return id < 11 || id > 13 || ((struct rfake *)c)->silent[id - 11];
}

static int rf_prepare(void *c, qfs_group_t g, const void *txn, size_t len, struct qfs_buf *out)
{
	struct rfake *rf = c;

	(void)g;
	rf->prepared++;
	qfs_buf_reset(out);
	qfs_buf_put(out, "tok:", 4);
	qfs_buf_put(out, txn, len);
	return 1;
}

static int rf_propose_at(void *c, uint32_t id, qfs_group_t g, const void *txn, size_t len,
			 uint32_t wait_ms, int *result, uint32_t *leader)
{
	struct rfake *rf = c;
	int rc;

	if (id < 11 || id > 13)
		return -EINVAL; /* not in the cluster file (qfs_rcell_propose_at) */

	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(txn, "tok:t", 5), 0);
	ck_assert_uint_le(wait_ms, QFS_ROUTE_TRY_MS);
	rc = fk_propose_at(&rf->f, id, g, txn, len, wait_ms, result, leader);
	if (rc == -EHOSTDOWN) {
		rf->f.now += wait_ms; /* waited for an answer that never came */
		rf->silent[id - 11] = 1;
	}
	return rc;
}

static const struct qfs_route_ops rf_ops = {
	.nodes = fk_nodes, .timeout_ms = fk_timeout, .read_mode = fk_mode, .exists = fk_exists,
	.view = fk_view, .propose_at = rf_propose_at, .get_at = fk_get_at, .scan_at = fk_scan_at,
	.now_ms = fk_now, .sleep_ms = fk_sleep, .remote = rf_remote, .prepare = rf_prepare,
	.node_id = rf_node_id, .silent = rf_silent,
};

/* A cluster that placed group 9 on nodes 13 and 12 only. */
static uint32_t rf_group_nodes(void *c, qfs_group_t g, uint32_t *out, uint32_t max)
{
	(void)c;
	ck_assert_uint_eq(g, 9);
	ck_assert_uint_ge(max, 2);
	out[0] = 13;
	out[1] = 12;
	return 2;
}

/* Group 9's members as a node names them, one (14) missing from this
 * mount's cluster file (a node added since it was written). */
static uint32_t rf_group_nodes_unknown(void *c, qfs_group_t g, uint32_t *out, uint32_t max)
{
	(void)c;
	(void)g;
	ck_assert_uint_ge(max, 3);
	out[0] = 14;
	out[1] = 12;
	out[2] = 13;
	return 3;
}

static const struct qfs_route_ops rf_unknown_ops = {
	.nodes = fk_nodes, .timeout_ms = fk_timeout, .read_mode = fk_mode, .exists = fk_exists,
	.view = fk_view, .propose_at = rf_propose_at, .get_at = fk_get_at, .scan_at = fk_scan_at,
	.now_ms = fk_now, .sleep_ms = fk_sleep, .remote = rf_remote, .prepare = rf_prepare,
	.node_id = rf_node_id, .silent = rf_silent, .group_nodes = rf_group_nodes_unknown,
};

static const struct qfs_route_ops rf_placed_ops = {
	.nodes = fk_nodes, .timeout_ms = fk_timeout, .read_mode = fk_mode, .exists = fk_exists,
	.view = fk_view, .propose_at = rf_propose_at, .get_at = fk_get_at, .scan_at = fk_scan_at,
	.now_ms = fk_now, .sleep_ms = fk_sleep, .remote = rf_remote, .prepare = rf_prepare,
	.node_id = rf_node_id, .silent = rf_silent, .group_nodes = rf_group_nodes,
};

START_TEST(test_route_remote)
{
	struct qfs_route *rt;
	struct rfake rf;
	uint64_t redir, tmo;
	int res = 0;

	memset(&rf, 0, sizeof(rf));
	rf.f.now = 1000;
	rf.f.timeout = 10000;
	ck_assert_int_eq(qfs_route_new_ops(&rf_ops, &rf, &rt), 0);
	fk_answer(&rf.f, 11, -EHOSTDOWN, 0);   /* node 11 (first in order) is down */
	fk_answer(&rf.f, 12, -EREMOTE, 13);    /* 12 knows the leader */
	fk_answer(&rf.f, 13, -ETIMEDOUT, 0);   /* no quorum yet: retried */
	fk_answer(&rf.f, 12, 0, 0);            /* the next after 13, 11 being silent */
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(res, 7);
	ck_assert_int_eq(rf.prepared, 1);
	ck_assert_int_eq(rf.f.ncalls, 4);
	ck_assert_int_eq(rf.f.sleeps, 1);      /* only after the node's -ETIMEDOUT */
	qfs_route_stat(rt, &redir, &tmo);
	ck_assert_uint_eq(redir, 3);
	/* 12 answered: asked first next time */
	fk_answer(&rf.f, 12, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(rf.f.ncalls, 5);
	ck_assert_int_eq(rf.prepared, 2);
	qfs_route_free(rt);

	/* nobody answers: -ETIMEDOUT after exactly the timeout, each attempt
	 * bounded by QFS_ROUTE_TRY_MS */
	memset(&rf, 0, sizeof(rf));
	rf.f.now = 1000;
	rf.f.timeout = 7000;
	ck_assert_int_eq(qfs_route_new_ops(&rf_ops, &rf, &rt), 0);
	fk_answer(&rf.f, 11, -EHOSTDOWN, 0);
	fk_answer(&rf.f, 12, -EHOSTDOWN, 0);
	fk_answer(&rf.f, 13, -EHOSTDOWN, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), -ETIMEDOUT);
	ck_assert_uint_eq(rf.f.now, 8000);
	ck_assert_int_eq(rf.f.ncalls, 3);
	qfs_route_stat(rt, &redir, &tmo);
	ck_assert_uint_eq(tmo, 1);
	qfs_route_free(rt);

	/* a placed group: only its nodes are tried, in their order */
	memset(&rf, 0, sizeof(rf));
	rf.f.now = 1000;
	rf.f.timeout = 10000;
	ck_assert_int_eq(qfs_route_new_ops(&rf_placed_ops, &rf, &rt), 0);
	fk_answer(&rf.f, 13, -EHOSTDOWN, 0);
	fk_answer(&rf.f, 12, -EAGAIN, 0);     /* retried at the same node */
	fk_answer(&rf.f, 12, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(rf.f.ncalls, 3);
	qfs_route_free(rt);

	/* a member this mount's cluster file does not know is never tried,
	 * not even when every known one went silent (an attempt there ended
	 * the call with -EINVAL) */
	memset(&rf, 0, sizeof(rf));
	rf.f.now = 1000;
	rf.f.timeout = 20000;
	ck_assert_int_eq(qfs_route_new_ops(&rf_unknown_ops, &rf, &rt), 0);
	fk_answer(&rf.f, 12, -EHOSTDOWN, 0);
	fk_answer(&rf.f, 13, -EHOSTDOWN, 0);
	fk_answer(&rf.f, 12, -EREMOTE, 14);   /* a hint to it is not followed either */
	fk_answer(&rf.f, 13, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(rf.f.ncalls, 4);
	qfs_route_free(rt);
}
END_TEST

/* The replica chosen for a strong read refuses it (-EREMOTE: its lease
 * lapsed, or the node restarted, between the view and the read): the
 * route chooses again after a poll step, within the call's deadline, and
 * gives up with -ETIMEDOUT (never -EREMOTE) at exactly that deadline. */
START_TEST(test_route_read_refused)
{
	struct qfs_route *rt;
	struct fake f;
	uint64_t redir, tmo;
	void *v = NULL;
	size_t vl = 0;
	int n = 0;

	fk_init(&f, &rt);
	f.refuse = 1;
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), 0);
	ck_assert_uint_eq(f.got_at, 1);
	ck_assert_int_eq(f.gets, 2);
	ck_assert_int_eq(f.sleeps, 1);
	free(v);
	f.refuse = 2;
	ck_assert_int_eq(qfs_route_scan(rt, 9, NULL, 0, NULL, 0, count_keys_cb, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(f.sleeps, 3);
	f.refuse = -1;
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), -ETIMEDOUT);
	ck_assert_uint_eq(f.now, 1000 + 3 * QFS_ROUTE_POLL_MS + 500);
	ck_assert_int_eq(qfs_route_scan(rt, 9, NULL, 0, NULL, 0, count_keys_cb, &n), -ETIMEDOUT);
	ck_assert_int_eq(n, 1);
	qfs_route_stat(rt, &redir, &tmo);
	ck_assert_uint_eq(tmo, 2);
	qfs_route_free(rt);
}
END_TEST

/* A scan callback that stops the scan with an error the route retries
 * elsewhere (-EHOSTDOWN, -ETIMEDOUT, -EREMOTE, -EAGAIN): the scan ends with
 * the callback's value, the keys it saw are not delivered again. */
static int stop_err;

static int stop_once_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	int e = stop_err;

	(void)k; (void)kl; (void)v; (void)vl;
	(*(int *)arg)++;
	stop_err = 0; /* once */
	return e;
}

START_TEST(test_route_scan_cb_stop)
{
	static const int errs[] = { -EHOSTDOWN, -ETIMEDOUT, -EREMOTE, -EAGAIN, QFS_ESTOPPED };
	struct qfs_route *rt;
	struct fake f;
	struct rfake rf;
	int n;

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		fk_init(&f, &rt);
		n = 0;
		stop_err = errs[i];
		ck_assert_int_eq(qfs_route_scan(rt, 9, NULL, 0, NULL, 0, stop_once_cb, &n), errs[i]);
		ck_assert_int_eq(n, 1);
		qfs_route_free(rt);

		memset(&rf, 0, sizeof(rf));
		rf.f.now = 1000;
		rf.f.timeout = 10000;
		ck_assert_int_eq(qfs_route_new_ops(&rf_ops, &rf, &rt), 0);
		n = 0;
		stop_err = errs[i];
		ck_assert_int_eq(qfs_route_scan(rt, 9, NULL, 0, NULL, 0, stop_once_cb, &n), errs[i]);
		ck_assert_int_eq(n, 1);
		ck_assert_int_eq(rf.f.sleeps, 0);
		qfs_route_free(rt);
	}
}
END_TEST

/* A cluster of five nodes (more than QFS_CLUSTER_REPLICAS) during a live
 * `member replace`: node 15 dropped its replica of group 9 and answers
 * QFS_ENOGROUP, while the members the cell names, even after a forget and
 * a new question, still include it first (a replica that has not applied
 * the change yet names it: the race of cluster4.sh).  Reads and proposals
 * go on at the other members: no QFS_ENOGROUP (ESTALE in fs/).  A group no
 * node hosts any more (a dropped table) answers QFS_ENOGROUP after two
 * attempts; so does a group whose named members all said so. */
struct mfake {
	struct fake f;
	int forgets, prepared;
	uint32_t ids[5], n;
};

static uint32_t mf_nodes(void *c) { (void)c; return 5; }
static uint32_t mf_node_id(void *c, uint32_t idx) { (void)c; return idx < 5 ? 11 + idx : 0; }
static int mf_silent(void *c, uint32_t id) { (void)c; return id < 11 || id > 15; }

static uint32_t mf_group_nodes(void *c, qfs_group_t g, uint32_t *out, uint32_t max)
{
	struct mfake *m = c;

	ck_assert_uint_eq(g, 9);
	ck_assert_uint_ge(max, m->n);
	memcpy(out, m->ids, m->n * sizeof(out[0]));
	return m->n;
}

static void mf_group_forget(void *c, qfs_group_t g)
{
	ck_assert_uint_eq(g, 9);
	((struct mfake *)c)->forgets++;
}

static int mf_prepare(void *c, qfs_group_t g, const void *txn, size_t len, struct qfs_buf *out)
{
	(void)g;
	((struct mfake *)c)->prepared++;
	qfs_buf_reset(out);
	qfs_buf_put(out, txn, len);
	return 1;
}

/* A get answered from the script, like fk_propose_at. */
static int mf_get_at(void *c, uint32_t id, qfs_group_t g, const uint8_t *key, size_t key_len,
		     uint32_t wait_ms, void **val, size_t *val_len, uint32_t *leader)
{
	int res, rc = fk_propose_at(c, id, g, key, key_len, wait_ms, &res, leader);

	if (!rc) {
		*val = strdup("v");
		*val_len = 1;
	}
	return rc;
}

static const struct qfs_route_ops mf_ops = {
	.nodes = mf_nodes, .timeout_ms = fk_timeout, .read_mode = fk_mode, .exists = fk_exists,
	.view = fk_view, .propose_at = fk_propose_at, .get_at = mf_get_at, .scan_at = fk_scan_at,
	.now_ms = fk_now, .sleep_ms = fk_sleep, .remote = rf_remote, .prepare = mf_prepare,
	.node_id = mf_node_id, .silent = mf_silent, .group_nodes = mf_group_nodes,
	.group_forget = mf_group_forget,
};

START_TEST(test_route_member_moved)
{
	static const uint32_t stale[4] = { 15, 13, 11, 12 }, all[5] = { 11, 12, 13, 14, 15 };
	struct qfs_route *rt;
	struct mfake m;
	void *v = NULL;
	size_t vl = 0;
	int res = 0;

	memset(&m, 0, sizeof(m));
	m.f.now = 1000;
	m.f.timeout = 10000;
	m.f.exists = 1;
	memcpy(m.ids, stale, sizeof(stale));
	m.n = 4;
	ck_assert_int_eq(qfs_route_new_ops(&mf_ops, &m, &rt), 0);
	/* a lookup: 15 dropped its copy; the members still name it first */
	fk_answer(&m.f, 15, QFS_ENOGROUP, 0);
	fk_answer(&m.f, 13, 0, 0);
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), 0);
	ck_assert_uint_eq(vl, 1);
	free(v);
	ck_assert_int_eq(m.f.ncalls, 2);
	ck_assert_int_ge(m.forgets, 1);
	/* 13 answered: asked first next time, 15 is not asked again */
	fk_answer(&m.f, 13, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(res, 7);
	ck_assert_int_eq(m.f.ncalls, 3);
	qfs_route_free(rt);

	/* the first other member is not there yet either (it had not
	 * created its copy): the call goes on at the next one */
	memset(&m, 0, sizeof(m));
	m.f.now = 1000;
	m.f.timeout = 10000;
	m.f.exists = 1;
	memcpy(m.ids, stale, sizeof(stale));
	m.n = 4;
	ck_assert_int_eq(qfs_route_new_ops(&mf_ops, &m, &rt), 0);
	fk_answer(&m.f, 15, QFS_ENOGROUP, 0);
	fk_answer(&m.f, 13, QFS_ENOGROUP, 0);
	fk_answer(&m.f, 11, -EREMOTE, 12);
	fk_answer(&m.f, 12, 0, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), 0);
	ck_assert_int_eq(m.f.ncalls, 4);
	ck_assert_int_eq(m.prepared, 1);
	qfs_route_free(rt);

	/* a dropped table: no node hosts it (every node named, the cell's
	 * answer when nobody says); QFS_ENOGROUP after two attempts */
	memset(&m, 0, sizeof(m));
	m.f.now = 1000;
	m.f.timeout = 10000;
	m.f.exists = 0;
	memcpy(m.ids, all, sizeof(all));
	m.n = 5;
	ck_assert_int_eq(qfs_route_new_ops(&mf_ops, &m, &rt), 0);
	fk_answer(&m.f, 11, QFS_ENOGROUP, 0);
	fk_answer(&m.f, 12, QFS_ENOGROUP, 0);
	ck_assert_int_eq(qfs_route_get(rt, 9, (const uint8_t *)"k", 1, &v, &vl), QFS_ENOGROUP);
	ck_assert_int_eq(m.f.ncalls, 2);
	ck_assert_uint_eq(m.f.now, 1000); /* no wait */
	qfs_route_free(rt);

	/* every named member said QFS_ENOGROUP (some node still answers
	 * that it exists): QFS_ENOGROUP once none is left, no endless loop */
	memset(&m, 0, sizeof(m));
	m.f.now = 1000;
	m.f.timeout = 10000;
	m.f.exists = 1;
	m.ids[0] = 14;
	m.ids[1] = 15;
	m.n = 2;
	ck_assert_int_eq(qfs_route_new_ops(&mf_ops, &m, &rt), 0);
	fk_answer(&m.f, 14, QFS_ENOGROUP, 0);
	fk_answer(&m.f, 15, QFS_ENOGROUP, 0);
	ck_assert_int_eq(qfs_route_propose(rt, 9, "t", 1, &res), QFS_ENOGROUP);
	ck_assert_int_eq(m.f.ncalls, 2);
	qfs_route_free(rt);
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
	tcase_add_test(tc, test_item_api);
	tcase_add_test(tc, test_orphan_group_dropped);
	tcase_add_test(tc, test_orphan_apart_races);
	tcase_add_test(tc, test_status_and_stats_text);
	tcase_add_test(tc, test_split_routes_and_scans);
	tcase_add_test(tc, test_repair_after_commit_point);
	tcase_add_test(tc, test_cluster_scan_after_foreign_commit);
	tcase_add_test(tc, test_gc_keeps_foreign_split);
	tcase_add_test(tc, test_split_finishes_prepared_txns);
	tcase_add_test(tc, test_split_commit_answer_lost);
	tcase_add_test(tc, test_write_finishes_dead_coordinators_txn);
	tcase_add_test(tc, test_new_group_before_commit_dropped);
	tcase_add_test(tc, test_split_table_delete);
	tcase_add_test(tc, test_stale_reload_after_split);
	tcase_add_test(tc, test_split_waits_then_looks_up);
	tcase_add_test(tc, test_constant_work_ticks);
	tcase_add_test(tc, test_fence_ahead_of_map_repaired);
	tcase_add_test(tc, test_size_walk);
	tcase_add_test(tc, test_size_walk_bounds);
	tcase_add_test(tc, test_split_keeps_chunk_bytes);
	tcase_add_test(tc, test_late_abort_keeps_later_fence);
	suite_add_tcase(s, tc);
	TCase *th = tcase_create("metrics");
	tcase_add_test(th, test_hist_percentiles);
	tcase_add_test(th, test_load_split_key);
	suite_add_tcase(s, th);
	TCase *tr = tcase_create("route");
	tcase_add_test(tr, test_route_follows_hints);
	tcase_add_test(tr, test_route_waits_out_election);
	tcase_add_test(tr, test_route_timeout_bounded);
	tcase_add_test(tr, test_route_leader_timeout_final);
	tcase_add_test(tr, test_route_stopped_replicas);
	tcase_add_test(tr, test_route_reads);
	tcase_add_test(tr, test_route_remote);
	tcase_add_test(tr, test_route_scan_cb_stop);
	tcase_add_test(tr, test_route_read_refused);
	tcase_add_test(tr, test_route_member_moved);
	suite_add_tcase(s, tr);
	return s;
}

int main(void)
{
	return unit_run(router_suite());
}
