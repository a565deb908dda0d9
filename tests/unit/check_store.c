/*
 * check_store.c - unit tests of src/store (Check suite "store") against a
 * real RocksDB in a fresh mkdtemp directory per test: every op kind's success
 * and failure paths, atomicity, read-your-writes inside a txn, applied LSN
 * rules and persistence, scans, group drop, undecodable payloads.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/item.h"
#include "common/key.h"
#include "common/log.h"
#include "common/sysio.h"
#include "common/txn.h"
#include "store/store.h"
#include "store/store_int.h" /* the chunk checksum counters and the raw RocksDB handle */
#include "runner.h"

#define G1 7
#define G2 8
#define DIR_INO 1024
#define FILE_INO 2000

static char dir[64];
static int private_mounts; /* main() made a private mount namespace */
static const uint8_t *kp; /* last key from a helper, so its length is read after */
static struct qfs_store *st;

/* Keys used by a test live here so that ops can borrow them. */
static uint8_t kpool[128][QFS_KEY_MAX];
static size_t knext;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	strcpy(dir, "/tmp/qfs-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
	knext = 0;
}

static void teardown(void)
{
	qfs_store_close(st);
	st = NULL;
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void reopen(void)
{
	qfs_store_close(st);
	st = NULL;
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
}

/* ---- key helpers: return a pooled key; length in *len ---- */

static const uint8_t *kdent(uint64_t parent, const char *name, uint32_t *len)
{
	ck_assert_uint_lt(knext, 128);
	uint8_t *k = kpool[knext++];
	*len = (uint32_t)qfs_key_dentry(k, parent, name, strlen(name));
	return k;
}

static const uint8_t *kino(uint64_t ino, uint32_t *len)
{
	ck_assert_uint_lt(knext, 128);
	uint8_t *k = kpool[knext++];
	*len = (uint32_t)qfs_key_inode(k, ino);
	return k;
}

static const uint8_t *kchunk(uint64_t ino, uint64_t c, uint32_t *len)
{
	ck_assert_uint_lt(knext, 128);
	uint8_t *k = kpool[knext++];
	*len = (uint32_t)qfs_key_chunk(k, ino, c);
	return k;
}

/* ---- txn helpers ---- */

static struct qfs_op *add(struct qfs_txn *t, enum qfs_op_kind kind, const uint8_t *k, uint32_t kl)
{
	struct qfs_op *op = qfs_txn_add(t, kind);
	ck_assert_ptr_nonnull(op);
	op->key = k;
	op->key_len = kl;
	return op;
}

static void add_put(struct qfs_txn *t, const uint8_t *k, uint32_t kl, const char *v)
{
	struct qfs_op *op = add(t, QFS_OP_PUT, k, kl);
	op->val = (const uint8_t *)v;
	op->val_len = (uint32_t)strlen(v);
}

/* A RANGE op at key "": fail with QFS_ESTALE unless the fence holds epoch
 * (be64, 8 bytes). */
static void add_fence(struct qfs_txn *t, const uint8_t *epoch)
{
	struct qfs_op *op = add(t, QFS_OP_RANGE, (const uint8_t *)"", 0);
	op->val = epoch;
	op->val_len = 8;
	op->err = QFS_ESTALE;
}

static void add_put_bytes(struct qfs_txn *t, const uint8_t *k, uint32_t kl, const uint8_t *v,
			  size_t vl)
{
	struct qfs_op *op = add(t, QFS_OP_PUT, k, kl);
	op->val = v;
	op->val_len = (uint32_t)vl;
}

static void add_expect(struct qfs_txn *t, enum qfs_op_kind kind, const uint8_t *k, uint32_t kl,
		       int err)
{
	struct qfs_op *op = add(t, kind, k, kl);
	op->err = err;
}

static void add_range(struct qfs_txn *t, enum qfs_op_kind kind, const uint8_t *lo, uint32_t lol,
		      const uint8_t *hi, uint32_t hil, int err)
{
	struct qfs_op *op = add(t, kind, lo, lol);
	op->key2 = hi;
	op->key2_len = hil;
	op->err = err;
}

/* Apply t to group at applied + 1; assert the call succeeded, close t and
 * return the txn's result. */
static int apply_txn(qfs_group_t g, struct qfs_txn *t)
{
	struct qfs_buf b;
	qfs_lsn_t applied, after;
	int res = 12345;

	qfs_buf_init(&b);
	qfs_txn_encode(t, &b);
	ck_assert_int_eq(b.err, 0);
	ck_assert_int_eq(qfs_store_applied(st, g, &applied), 0);
	ck_assert_int_eq(qfs_store_apply(st, g, applied + 1, b.data, b.len, &res), 0);
	ck_assert_int_ne(res, 12345);
	ck_assert_int_eq(qfs_store_applied(st, g, &after), 0);
	ck_assert_uint_eq(after, applied + 1); /* advances even when res != 0 */
	qfs_buf_close(&b);
	qfs_txn_close(t);
	return res;
}

/* Apply a single-op txn built by the caller in t (convenience alias). */
#define APPLY(g, t) apply_txn((g), (t))

/* Value at key in g as a NUL-terminated heap string, or NULL if absent. */
static char *get_str(qfs_group_t g, const uint8_t *k, uint32_t kl)
{
	void *v;
	size_t vl;
	int rc = qfs_store_get(st, g, k, kl, &v, &vl);
	if (rc == -ENOENT)
		return NULL;
	ck_assert_int_eq(rc, 0);
	char *s = malloc(vl + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, v, vl);
	s[vl] = '\0';
	free(v);
	return s;
}

static int present(qfs_group_t g, const uint8_t *k, uint32_t kl)
{
	char *s = get_str(g, k, kl);
	free(s);
	return s != NULL;
}

static void assert_val(qfs_group_t g, const uint8_t *k, uint32_t kl, const char *want)
{
	char *s = get_str(g, k, kl);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, want);
	free(s);
}

/* Store in (encoded) as the inode item of in->a.ino in g, and close it. */
static void put_encoded(qfs_group_t g, struct qfs_inode *in)
{
	struct qfs_buf b;
	struct qfs_txn t;
	uint32_t kl;
	const uint8_t *k = kino(in->a.ino, &kl);

	qfs_buf_init(&b);
	qfs_inode_encode(in, &b);
	qfs_txn_init(&t);
	add_put_bytes(&t, k, kl, b.data, b.len);
	ck_assert_int_eq(APPLY(g, &t), 0);
	qfs_buf_close(&b);
	qfs_inode_close(in);
}

/* Store an inode for ino in g with a known attribute set. */
static void put_inode(qfs_group_t g, uint64_t ino, uint32_t mode)
{
	struct qfs_inode in;

	qfs_inode_init(&in);
	in.a.ino = ino;
	in.a.mode = mode;
	in.a.uid = 1;
	in.a.gid = 2;
	in.a.nlink = 1;
	in.a.size = 3;
	in.a.rdev = 4;
	in.a.flags = QFS_ATTR_INLINE;
	in.a.atime = (struct qfs_ts){ 10, 1 };
	in.a.mtime = (struct qfs_ts){ 20, 2 };
	in.a.ctime = (struct qfs_ts){ 30, 3 };
	in.a.btime = (struct qfs_ts){ 40, 4 };
	ck_assert_int_eq(qfs_inode_set_data(&in, "abc", 3), 0);
	put_encoded(g, &in);
}

/* Read and decode the inode of ino in g (asserts presence). */
static void get_inode(qfs_group_t g, uint64_t ino, struct qfs_inode *in)
{
	uint32_t kl;
	const uint8_t *k = kino(ino, &kl);
	void *v;
	size_t vl;
	ck_assert_int_eq(qfs_store_get(st, g, k, kl, &v, &vl), 0);
	qfs_inode_init(in);
	ck_assert_int_eq(qfs_inode_decode(v, vl, in), 0);
	free(v);
}

static qfs_lsn_t applied(qfs_group_t g)
{
	qfs_lsn_t l = 999;
	ck_assert_int_eq(qfs_store_applied(st, g, &l), 0);
	return l;
}

/* ---- tests ---- */


START_TEST(test_open_empty)
{
	uint32_t kl;
	const uint8_t *k = kino(5, &kl);
	void *v = NULL;
	size_t vl;
	uint64_t bytes = 77;
	ck_assert_uint_eq(applied(G1), 0);
	ck_assert_int_eq(qfs_store_get(st, G1, k, kl, &v, &vl), -ENOENT);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(qfs_store_group_size(st, G1, &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	qfs_store_close(NULL);
}
END_TEST

START_TEST(test_open_fails)
{
	struct qfs_store *s2 = (struct qfs_store *)0x1;
	/* a regular file where the directory should be */
	char path[128];
	snprintf(path, sizeof(path), "%s/file", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/file/db", dir);
	ck_assert_int_eq(qfs_store_open(path, &s2), -EIO);
	ck_assert_ptr_eq(s2, (struct qfs_store *)0x1);
	/* the same RocksDB opened twice: the lock refuses */
	ck_assert_int_eq(qfs_store_open(dir, &s2), -EIO);
}
END_TEST

START_TEST(test_put_get_del)
{
	struct qfs_txn t;
	uint32_t ka, kb;
	const uint8_t *a = kdent(DIR_INO, "a", &ka), *b = kdent(DIR_INO, "b", &kb);

	qfs_txn_init(&t);
	add_put(&t, a, ka, "one");
	add_put(&t, b, kb, "");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, a, ka, "one");
	assert_val(G1, b, kb, "");
	ck_assert(!present(G2, a, ka)); /* groups are separate */

	qfs_txn_init(&t);
	add_put(&t, a, ka, "two");
	add(&t, QFS_OP_DEL, b, kb);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, a, ka, "two");
	ck_assert(!present(G1, b, kb));

	/* deleting an absent key is not an error */
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, b, kb);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(applied(G1), 3);
}
END_TEST

/* qfs_store_get_val: the value pinned, without a copy; it stays intact
 * while the key is overwritten, deleted and flushed; absent keys and
 * unknown groups hold nothing. */
START_TEST(test_get_val)
{
	struct qfs_txn t;
	struct qfs_val v = { 0 }, w = { 0 };
	uint32_t ka, kc;
	const uint8_t *a = kdent(DIR_INO, "a", &ka), *c = kchunk(FILE_INO, 4, &kc);
	uint8_t chunk[3000];

	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7 + 1);
	qfs_txn_init(&t);
	add_put(&t, a, ka, "one");
	add_put_bytes(&t, c, kc, chunk, sizeof(chunk));
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_get_val(st, G1, a, ka, &v), 0);
	ck_assert(qfs_val_held(&v));
	ck_assert_uint_eq(v.len, 3);
	ck_assert_mem_eq(v.data, "one", 3);
	ck_assert_int_eq(qfs_store_get_val(st, G1, c, kc, &w), 0);
	ck_assert_uint_eq(w.len, sizeof(chunk));
	ck_assert_mem_eq(w.data, chunk, sizeof(chunk));

	/* overwritten, then deleted and flushed while pinned */
	qfs_txn_init(&t);
	add_put(&t, a, ka, "two");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, a, ka);
	add(&t, QFS_OP_DEL, c, kc);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	ck_assert_mem_eq(v.data, "one", 3);
	ck_assert_mem_eq(w.data, chunk, sizeof(chunk));
	qfs_val_release(&v);
	qfs_val_release(&w);
	ck_assert(!qfs_val_held(&v));
	ck_assert(!qfs_val_held(&w));

	/* absent: -ENOENT, nothing held */
	ck_assert_int_eq(qfs_store_get_val(st, G1, a, ka, &v), -ENOENT);
	ck_assert(!qfs_val_held(&v));
	ck_assert_int_eq(qfs_store_get_val(st, G2, c, kc, &v), -ENOENT);
	ck_assert(!qfs_val_held(&v));
}
END_TEST

/* qfs_store_get_val of values read from SST files, not the memtable (the
 * memtable's are RocksDB's copies): an item in a block of the block cache
 * (the checked read fills it: the slice holds a cache handle), a short
 * chunk in an SST block read without filling the cache, a chunk in a
 * blob file.  They stay intact while the group is dropped and the store
 * compacted (their SST and blob files deleted), and release cleanly
 * afterwards (ASan build: no use after free). */
START_TEST(test_get_val_sst)
{
	struct qfs_txn t;
	struct qfs_val v[3] = { { 0 } };
	uint32_t ka, kc, kb;
	const uint8_t *a = kdent(DIR_INO, "sst", &ka), *c = kchunk(FILE_INO, 1, &kc),
		      *b = kchunk(FILE_INO, 2, &kb);
	uint8_t shortc[1000], *big = malloc(QFS_CHUNK_SIZE);
	void *gone = NULL;
	size_t gone_len = 0;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < sizeof(shortc); i++)
		shortc[i] = (uint8_t)(i * 13 + 5);
	for (size_t i = 0; i < QFS_CHUNK_SIZE; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	qfs_txn_init(&t);
	add_put(&t, a, ka, "in-an-sst");
	add_put_bytes(&t, c, kc, shortc, sizeof(shortc));
	add_put_bytes(&t, b, kb, big, QFS_CHUNK_SIZE);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_sync(st), 0); /* out of the memtable */
	ck_assert_int_eq(qfs_store_get_val(st, G1, a, ka, &v[0]), 0);
	ck_assert_int_eq(qfs_store_get_val(st, G1, c, kc, &v[1]), 0);
	ck_assert_int_eq(qfs_store_get_val(st, G1, b, kb, &v[2]), 0);
	ck_assert_uint_eq(v[0].len, 9);
	ck_assert_uint_eq(v[1].len, sizeof(shortc));
	ck_assert_uint_eq(v[2].len, QFS_CHUNK_SIZE);

	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert_int_eq(qfs_store_compact(st, 0), 0);
	ck_assert_int_eq(qfs_store_get(st, G1, a, ka, &gone, &gone_len), -ENOENT);
	ck_assert_mem_eq(v[0].data, "in-an-sst", 9);
	ck_assert_mem_eq(v[1].data, shortc, sizeof(shortc));
	ck_assert_mem_eq(v[2].data, big, QFS_CHUNK_SIZE);
	for (int i = 0; i < 3; i++) {
		qfs_val_release(&v[i]);
		ck_assert(!qfs_val_held(&v[i]));
	}
	free(big);
}
END_TEST

/* qfs_store_apply reuses one WriteBatch (store.c apply_batch_done): what a
 * failed txn, or a txn whose apply failed, put in it never reaches the
 * next apply; a batch above STORE_APPLY_WB_KEEP is freed, not kept; the
 * data of a large txn is all stored. */
START_TEST(test_apply_batch_reuse)
{
	struct qfs_txn t;
	uint32_t ka, kb, kc, kx;
	const uint8_t *a = kdent(DIR_INO, "a", &ka), *b = kdent(DIR_INO, "b", &kb);
	const uint8_t *c = kdent(DIR_INO, "c", &kc), *x = kdent(DIR_INO, "x", &kx);
	const size_t n = STORE_APPLY_WB_KEEP / QFS_CHUNK_SIZE + 2;
	uint8_t *big = malloc(QFS_CHUNK_SIZE);

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_null(st->apply_wb);
	qfs_txn_init(&t);
	add_put(&t, a, ka, "one");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_ptr_nonnull(st->apply_wb); /* kept for the next apply */
	/* a txn that fails after a put: the put is not applied, now or later */
	qfs_txn_init(&t);
	add_put(&t, b, kb, "lost");
	add_range(&t, QFS_OP_EXPECT_EMPTY, a, ka, x, kx, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), -ENOTEMPTY);
	qfs_txn_init(&t);
	add_put(&t, c, kc, "three");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, b, kb));
	assert_val(G1, c, kc, "three");
	/* an apply that fails (a wrong LSN) leaves nothing behind either */
	struct qfs_buf eb;
	int res = 0;
	qfs_txn_init(&t);
	add_put(&t, b, kb, "lost too");
	qfs_buf_init(&eb);
	qfs_txn_encode(&t, &eb);
	ck_assert_int_eq(qfs_store_apply(st, G1, 1, eb.data, eb.len, &res), -EINVAL);
	qfs_buf_close(&eb);
	qfs_txn_close(&t);
	qfs_txn_init(&t);
	add_put(&t, x, kx, "four");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, b, kb));
	/* a txn larger than the batch kept: stored whole, its batch freed */
	qfs_txn_init(&t);
	uint8_t (*keys)[32] = calloc(n, sizeof(*keys));
	ck_assert_ptr_nonnull(keys);
	for (size_t i = 0; i < n; i++) {
		size_t kl = qfs_key_chunk(keys[i], FILE_INO, i);
		memset(big, 0x5a, QFS_CHUNK_SIZE);
		add_put_bytes(&t, keys[i], (uint32_t)kl, big, QFS_CHUNK_SIZE);
	}
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_ptr_null(st->apply_wb);
	for (size_t i = 0; i < n; i += n - 1) {
		void *v = NULL;
		size_t vl = 0;
		ck_assert_int_eq(qfs_store_get(st, G1, keys[i], qfs_key_chunk(keys[i], FILE_INO, i), &v, &vl), 0);
		ck_assert_uint_eq(vl, QFS_CHUNK_SIZE);
		ck_assert_mem_eq(v, big, QFS_CHUNK_SIZE);
		free(v);
	}
	free(keys);
	free(big);
	/* and the next apply makes a new one */
	qfs_txn_init(&t);
	add_put(&t, a, ka, "five");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, a, ka, "five");
	ck_assert_ptr_nonnull(st->apply_wb);
}
END_TEST

START_TEST(test_expect_absent_present)
{
	struct qfs_txn t;
	uint32_t ka, kb, kc;
	const uint8_t *a = kdent(DIR_INO, "a", &ka), *b = kdent(DIR_INO, "b", &kb);
	const uint8_t *c = kdent(DIR_INO, "c", &kc);

	qfs_txn_init(&t);
	add_expect(&t, QFS_OP_EXPECT_ABSENT, a, ka, -EEXIST);
	add_put(&t, a, ka, "x");
	ck_assert_int_eq(APPLY(G1, &t), 0);

	qfs_txn_init(&t);
	add_put(&t, b, kb, "y");
	add_expect(&t, QFS_OP_EXPECT_ABSENT, a, ka, -EEXIST);
	ck_assert_int_eq(APPLY(G1, &t), -EEXIST);
	ck_assert(!present(G1, b, kb));

	qfs_txn_init(&t);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, a, ka, -ENOENT);
	add_put(&t, c, kc, "z");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, c, kc, "z");

	qfs_txn_init(&t);
	add_put(&t, c, kc, "changed");
	add_expect(&t, QFS_OP_EXPECT_PRESENT, b, kb, QFS_ECONFLICT);
	ck_assert_int_eq(APPLY(G1, &t), QFS_ECONFLICT);
	assert_val(G1, c, kc, "z");
}
END_TEST

/* QFS_OP_RANGE: the partition fence (src/meta) compares the epoch stored
 * first in the record at key "" (absent: 0) and fails with its error. */
START_TEST(test_range_fence)
{
	static const uint8_t e0[8] = { 0 }, e1[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
	static const uint8_t rec1[12] = { 0, 0, 0, 0, 0, 0, 0, 1, 'r', 'e', 's', 't' };
	struct qfs_txn t;
	uint32_t ka;
	const uint8_t *a = kdent(DIR_INO, "a", &ka);

	/* no fence record: epoch 0 passes, 1 fails and writes nothing */
	qfs_txn_init(&t);
	add_fence(&t, e0);
	add_put(&t, a, ka, "x");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add_fence(&t, e1);
	add_put(&t, a, ka, "y");
	ck_assert_int_eq(APPLY(G1, &t), QFS_ESTALE);
	assert_val(G1, a, ka, "x");
	/* a fence at epoch 1: now 1 passes and 0 fails */
	qfs_txn_init(&t);
	add_put_bytes(&t, (const uint8_t *)"", 0, rec1, sizeof(rec1));
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add_fence(&t, e0);
	add_put(&t, a, ka, "z");
	ck_assert_int_eq(APPLY(G1, &t), QFS_ESTALE);
	assert_val(G1, a, ka, "x");
	qfs_txn_init(&t);
	add_fence(&t, e1);
	add_put(&t, a, ka, "z");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, a, ka, "z");
	/* a fence in another group does not count */
	qfs_txn_init(&t);
	add_fence(&t, e1);
	ck_assert_int_eq(APPLY(G2, &t), QFS_ESTALE);
}
END_TEST

START_TEST(test_expect_value)
{
	struct qfs_txn t;
	struct qfs_op *op;
	uint32_t ka, kb;
	const uint8_t *a = kdent(DIR_INO, "a", &ka), *b = kdent(DIR_INO, "b", &kb);

	qfs_txn_init(&t);
	add_put(&t, a, ka, "v1");
	ck_assert_int_eq(APPLY(G1, &t), 0);

	const struct {
		const char *want;
		int ok;
	} cases[] = { { "v1", 1 }, { "v2", 0 }, { "v", 0 }, { "v11", 0 }, { "", 0 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		qfs_txn_init(&t);
		op = add(&t, QFS_OP_EXPECT_VALUE, a, ka);
		op->val = (const uint8_t *)cases[i].want;
		op->val_len = (uint32_t)strlen(cases[i].want);
		op->err = QFS_ECONFLICT;
		add_put(&t, b, kb, cases[i].want);
		ck_assert_int_eq(APPLY(G1, &t), cases[i].ok ? 0 : QFS_ECONFLICT);
		ck_assert_int_eq(present(G1, b, kb), cases[i].ok);
		qfs_txn_init(&t);
		add(&t, QFS_OP_DEL, b, kb);
		APPLY(G1, &t);
	}
	/* absent key: even an empty expected value fails */
	qfs_txn_init(&t);
	op = add(&t, QFS_OP_EXPECT_VALUE, b, kb);
	op->val = (const uint8_t *)"";
	op->err = -ESTALE;
	ck_assert_int_eq(APPLY(G1, &t), -ESTALE);
}
END_TEST

START_TEST(test_expect_empty)
{
	struct qfs_txn t;
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	uint32_t ka, kino_l, kother;
	const uint8_t *a = kdent(DIR_INO, "a", &ka);
	const uint8_t *ik = kino(DIR_INO, &kino_l);
	const uint8_t *other = kdent(DIR_INO + 1, "a", &kother);
	qfs_key_dentry_range(lo, &lol, hi, &hil, DIR_INO);

	/* the directory's own inode and other directories do not count */
	qfs_txn_init(&t);
	add_put(&t, ik, kino_l, "inode");
	add_put(&t, other, kother, "x");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_EXPECT_EMPTY, lo, (uint32_t)lol, hi, (uint32_t)hil, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), 0);

	/* a stored entry */
	qfs_txn_init(&t);
	add_put(&t, a, ka, "x");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, ik, kino_l);
	add_range(&t, QFS_OP_EXPECT_EMPTY, lo, (uint32_t)lol, hi, (uint32_t)hil, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), -ENOTEMPTY);
	ck_assert(present(G1, ik, kino_l));

	/* deleted earlier in the same txn: empty */
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, a, ka);
	add_range(&t, QFS_OP_EXPECT_EMPTY, lo, (uint32_t)lol, hi, (uint32_t)hil, -ENOTEMPTY);
	add(&t, QFS_OP_DEL, ik, kino_l);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, ik, kino_l));

	/* written earlier in the same txn: not empty */
	uint32_t kb;
	const uint8_t *b = kdent(DIR_INO, "b", &kb);
	qfs_txn_init(&t);
	add_put(&t, b, kb, "new");
	add_range(&t, QFS_OP_EXPECT_EMPTY, lo, (uint32_t)lol, hi, (uint32_t)hil, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), -ENOTEMPTY);
	ck_assert(!present(G1, b, kb));

	/* half-open: a key equal to the upper bound is outside */
	qfs_txn_init(&t);
	add_put(&t, b, kb, "b");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_EXPECT_EMPTY, a, ka, b, kb, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	/* an inverted or empty range is empty */
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_EXPECT_EMPTY, b, kb, a, ka, -ENOTEMPTY);
	add_range(&t, QFS_OP_EXPECT_EMPTY, b, kb, b, kb, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), 0);
}
END_TEST

START_TEST(test_del_range)
{
	struct qfs_txn t;
	const char *names[] = { "a", "b", "c", "d", "e" };
	const uint8_t *k[5];
	uint32_t kl[5];
	for (int i = 0; i < 5; i++)
		k[i] = kdent(DIR_INO, names[i], &kl[i]);
	uint32_t kbb, kcc;
	const uint8_t *bb = kdent(DIR_INO, "bb", &kbb), *cc = kdent(DIR_INO, "cc", &kcc);

	qfs_txn_init(&t);
	for (int i = 0; i < 5; i++)
		add_put(&t, k[i], kl[i], names[i]);
	ck_assert_int_eq(APPLY(G1, &t), 0);

	/* [b, d): DB keys b, c and the overlay key bb go; a written after the
	 * range survives; a, d, e untouched */
	qfs_txn_init(&t);
	add_put(&t, bb, kbb, "bb");
	add_range(&t, QFS_OP_DEL_RANGE, k[1], kl[1], k[3], kl[3], 0);
	add_put(&t, cc, kcc, "cc");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, k[0], kl[0], "a");
	ck_assert(!present(G1, k[1], kl[1]));
	ck_assert(!present(G1, bb, kbb));
	ck_assert(!present(G1, k[2], kl[2]));
	assert_val(G1, cc, kcc, "cc");
	assert_val(G1, k[3], kl[3], "d");
	assert_val(G1, k[4], kl[4], "e");

	/* after a DEL_RANGE, the range reads empty in the same txn */
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, k[0], kl[0], k[4], kl[4], 0);
	add_range(&t, QFS_OP_EXPECT_EMPTY, k[0], kl[0], k[4], kl[4], -ENOTEMPTY);
	add_expect(&t, QFS_OP_EXPECT_ABSENT, k[3], kl[3], -EEXIST);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, k[4], kl[4], -ENOENT);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, k[0], kl[0]));
	ck_assert(!present(G1, cc, kcc));
	ck_assert(!present(G1, k[3], kl[3]));
	assert_val(G1, k[4], kl[4], "e");

	/* a failing txn undoes its DEL_RANGE */
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, k[0], kl[0], bb, kbb, 0); /* nothing there */
	add_range(&t, QFS_OP_DEL_RANGE, k[4], kl[4], kpool[0], 0, 0); /* inverted: no-op */
	kp = kdent(DIR_INO, "f", &kl[0]);
	add_range(&t, QFS_OP_DEL_RANGE, k[3], kl[3], kp, kl[0], 0);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, k[4], kl[4], -ENOENT);
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	assert_val(G1, k[4], kl[4], "e");
}
END_TEST

/* DEL_RANGE over chunk keys, the way truncate uses it. */
START_TEST(test_del_range_chunks)
{
	struct qfs_txn t;
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	uint32_t kl;
	qfs_txn_init(&t);
	for (uint64_t c = 0; c < 10; c++) {
		kp = kchunk(FILE_INO, c, &kl);
		add_put(&t, kp, kl, "chunk");
	}
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_key_chunk_range(lo, &lol, hi, &hil, FILE_INO, 4, UINT64_MAX);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, lo, (uint32_t)lol, hi, (uint32_t)hil, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	for (uint64_t c = 0; c < 10; c++) {
		const uint8_t *k = kchunk(FILE_INO, c, &kl);
		ck_assert_int_eq(present(G1, k, kl), c < 4);
	}
}
END_TEST

START_TEST(test_setattr)
{
	struct qfs_txn t;
	struct qfs_op *op;
	struct qfs_inode in;
	uint32_t kl;
	const uint8_t *k = kino(FILE_INO, &kl);

	put_inode(G1, FILE_INO, S_IFREG | 0644);

	/* mode: the type is kept, the permission bits (with suid/sgid/sticky) replaced */
	qfs_txn_init(&t);
	op = add(&t, QFS_OP_SETATTR, k, kl);
	op->mask = QFS_SET_MODE;
	op->attr.mode = S_IFDIR | 04755;
	op->attr.uid = 999; /* not in the mask: ignored */
	ck_assert_int_eq(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.mode, S_IFREG | 04755);
	ck_assert_uint_eq(in.a.uid, 1);
	ck_assert_uint_eq(in.data_len, 3); /* data and other fields kept */
	qfs_inode_close(&in);

	/* every other mask bit */
	qfs_txn_init(&t);
	op = add(&t, QFS_OP_SETATTR, k, kl);
	op->mask = QFS_SET_UID | QFS_SET_GID | QFS_SET_SIZE | QFS_SET_ATIME | QFS_SET_MTIME |
		   QFS_SET_CTIME | QFS_SET_FLAGS | QFS_SET_RDEV;
	op->attr = (struct qfs_attr){ .ino = 1, .mode = 0, .uid = 11, .gid = 12, .nlink = 50,
				      .flags = 0, .size = 13, .rdev = 14,
				      .atime = { 100, 1 }, .mtime = { 200, 2 },
				      .ctime = { 300, 3 }, .btime = { 400, 4 } };
	ck_assert_int_eq(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.ino, FILE_INO);
	ck_assert_uint_eq(in.a.mode, S_IFREG | 04755);
	ck_assert_uint_eq(in.a.uid, 11);
	ck_assert_uint_eq(in.a.gid, 12);
	ck_assert_uint_eq(in.a.nlink, 1);
	ck_assert_uint_eq(in.a.flags, 0);
	ck_assert_uint_eq(in.a.size, 13);
	ck_assert_uint_eq(in.a.rdev, 14);
	ck_assert_int_eq(in.a.atime.sec, 100);
	ck_assert_int_eq(in.a.mtime.sec, 200);
	ck_assert_uint_eq(in.a.mtime.nsec, 2);
	ck_assert_int_eq(in.a.ctime.sec, 300);
	ck_assert_int_eq(in.a.btime.sec, 40); /* no mask bit for btime */
	qfs_inode_close(&in);

	/* one field at a time leaves the others */
	qfs_txn_init(&t);
	op = add(&t, QFS_OP_SETATTR, k, kl);
	op->mask = QFS_SET_GID;
	op->attr.gid = 77;
	ck_assert_int_eq(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.gid, 77);
	ck_assert_uint_eq(in.a.uid, 11);
	ck_assert_uint_eq(in.a.size, 13);
	qfs_inode_close(&in);

	/* absent inode, and a key that is not an inode key */
	qfs_txn_init(&t);
	kp = kino(FILE_INO + 1, &kl);
	op = add(&t, QFS_OP_SETATTR, kp, kl);
	op->mask = QFS_SET_UID;
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	qfs_txn_init(&t);
	kp = kdent(DIR_INO, "x", &kl);
	op = add(&t, QFS_OP_SETATTR, kp, kl);
	op->mask = QFS_SET_UID;
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
}
END_TEST

START_TEST(test_nlink)
{
	struct qfs_txn t;
	struct qfs_inode in;
	uint32_t kl;
	const uint8_t *k = kino(FILE_INO, &kl);
	put_inode(G1, FILE_INO, S_IFDIR | 0755);

	qfs_txn_init(&t);
	add(&t, QFS_OP_NLINK, k, kl)->delta = 2;
	add(&t, QFS_OP_NLINK, k, kl)->delta = 1;
	ck_assert_int_eq(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.nlink, 4);
	qfs_inode_close(&in);

	qfs_txn_init(&t);
	add(&t, QFS_OP_NLINK, k, kl)->delta = -4;
	ck_assert_int_eq(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.nlink, 0);
	qfs_inode_close(&in);

	qfs_txn_init(&t);
	add(&t, QFS_OP_NLINK, k, kl)->delta = -1;
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
	qfs_txn_init(&t);
	kp = kino(FILE_INO + 5, &kl);
	add(&t, QFS_OP_NLINK, kp, kl)->delta = 1;
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
}
END_TEST

START_TEST(test_setdata)
{
	struct qfs_txn t;
	struct qfs_op *op;
	struct qfs_inode in;
	uint32_t kl;
	const uint8_t *k = kino(FILE_INO, &kl);
	put_inode(G1, FILE_INO, S_IFREG | 0644);

	qfs_txn_init(&t);
	op = add(&t, QFS_OP_SETDATA, k, kl);
	op->val = (const uint8_t *)"hello world";
	op->val_len = 11;
	ck_assert_int_eq(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.data_len, 11);
	ck_assert_mem_eq(in.data, "hello world", 11);
	ck_assert_uint_eq(in.a.size, 3); /* SETDATA does not touch attributes */
	qfs_inode_close(&in);

	qfs_txn_init(&t);
	add(&t, QFS_OP_SETDATA, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.data_len, 0);
	qfs_inode_close(&in);

	qfs_txn_init(&t);
	kp = kino(FILE_INO + 1, &kl);
	op = add(&t, QFS_OP_SETDATA, kp, kl);
	op->val = (const uint8_t *)"x";
	op->val_len = 1;
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
}
END_TEST

static void add_xset(struct qfs_txn *t, const uint8_t *k, uint32_t kl, const char *name,
		     const void *v, uint32_t vl, int flags)
{
	struct qfs_op *op = add(t, QFS_OP_XSET, k, kl);
	op->name = name;
	op->val = v;
	op->val_len = vl;
	op->flags = flags;
}

START_TEST(test_xattrs)
{
	struct qfs_txn t;
	struct qfs_inode in;
	uint32_t kl;
	const uint8_t *k = kino(FILE_INO, &kl);
	put_inode(G1, FILE_INO, S_IFREG | 0644);

	qfs_txn_init(&t);
	add_xset(&t, k, kl, "user.b", "2", 1, XATTR_CREATE);
	add_xset(&t, k, kl, "user.a", "1", 1, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);

	qfs_txn_init(&t);
	add_xset(&t, k, kl, "user.a", "x", 1, XATTR_CREATE);
	ck_assert_int_eq(APPLY(G1, &t), -EEXIST);
	qfs_txn_init(&t);
	add_xset(&t, k, kl, "user.c", "x", 1, XATTR_REPLACE);
	ck_assert_int_eq(APPLY(G1, &t), -ENODATA);
	qfs_txn_init(&t);
	add_xset(&t, k, kl, "user.a", "11", 2, XATTR_REPLACE);
	ck_assert_int_eq(APPLY(G1, &t), 0);

	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.nxattrs, 2);
	ck_assert_str_eq(in.xattrs[0].name, "user.a");
	ck_assert_uint_eq(in.xattrs[0].len, 2);
	ck_assert_mem_eq(in.xattrs[0].value, "11", 2);
	ck_assert_str_eq(in.xattrs[1].name, "user.b");
	ck_assert_uint_eq(in.data_len, 3);
	qfs_inode_close(&in);

	/* limits: total over QFS_XATTR_TOTAL_MAX -> -ENOSPC, nothing applied */
	uint8_t *big = calloc(1, QFS_XATTR_TOTAL_MAX);
	ck_assert_ptr_nonnull(big);
	qfs_txn_init(&t);
	add(&t, QFS_OP_XDEL, k, kl)->name = "user.b";
	add_xset(&t, k, kl, "user.big", big, QFS_XATTR_TOTAL_MAX - 8 - 8 + 1, 0);
	ck_assert_int_eq(APPLY(G1, &t), -ENOSPC); /* user.a (6+2) + user.big (8) */
	qfs_txn_init(&t);
	add_xset(&t, k, kl, "user.big", big, QFS_XATTR_VALUE_MAX + 1 > QFS_XATTR_TOTAL_MAX ?
						     QFS_XATTR_TOTAL_MAX : QFS_XATTR_VALUE_MAX + 1, 0);
	ck_assert_int_lt(APPLY(G1, &t), 0);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.nxattrs, 2);
	qfs_inode_close(&in);
	qfs_txn_init(&t);
	add(&t, QFS_OP_XDEL, k, kl)->name = "user.b";
	add_xset(&t, k, kl, "user.big", big, QFS_XATTR_TOTAL_MAX - 8 - 8, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	free(big);

	/* XDEL */
	qfs_txn_init(&t);
	add(&t, QFS_OP_XDEL, k, kl)->name = "user.a";
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add(&t, QFS_OP_XDEL, k, kl)->name = "user.a";
	ck_assert_int_eq(APPLY(G1, &t), -ENODATA);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.nxattrs, 1);
	ck_assert_str_eq(in.xattrs[0].name, "user.big");
	qfs_inode_close(&in);

	/* absent inode */
	qfs_txn_init(&t);
	kp = kino(FILE_INO + 1, &kl);
	add_xset(&t, kp, kl, "user.a", "1", 1, 0);
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	qfs_txn_init(&t);
	kp = kino(FILE_INO + 1, &kl);
	add(&t, QFS_OP_XDEL, kp, kl)->name = "user.a";
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
}
END_TEST

/* A txn that writes, then patches what it wrote, then checks it. */
START_TEST(test_read_your_writes)
{
	struct qfs_txn t;
	struct qfs_op *op;
	struct qfs_inode in;
	struct qfs_buf b;
	uint32_t kl, dl;
	const uint8_t *k = kino(FILE_INO, &kl);
	const uint8_t *d = kdent(DIR_INO, "f", &dl);

	qfs_inode_init(&in);
	in.a.ino = FILE_INO;
	in.a.mode = S_IFREG | 0600;
	in.a.nlink = 1;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);

	qfs_txn_init(&t);
	add_expect(&t, QFS_OP_EXPECT_ABSENT, d, dl, -EEXIST);
	add_put(&t, d, dl, "dentry");
	add_expect(&t, QFS_OP_EXPECT_ABSENT, d, dl, -EEXIST - 1000); /* must fail now */
	ck_assert_int_eq(APPLY(G1, &t), -EEXIST - 1000);
	ck_assert(!present(G1, d, dl));

	qfs_txn_init(&t);
	add_put(&t, d, dl, "dentry");
	add_put_bytes(&t, k, kl, b.data, b.len);
	op = add(&t, QFS_OP_EXPECT_VALUE, d, dl);
	op->val = (const uint8_t *)"dentry";
	op->val_len = 6;
	op->err = QFS_ECONFLICT;
	add(&t, QFS_OP_NLINK, k, kl)->delta = 1;
	add_xset(&t, k, kl, "user.x", "v", 1, XATTR_CREATE);
	op = add(&t, QFS_OP_SETATTR, k, kl);
	op->mask = QFS_SET_SIZE;
	op->attr.size = 5;
	op = add(&t, QFS_OP_SETDATA, k, kl);
	op->val = (const uint8_t *)"hello";
	op->val_len = 5;
	add_xset(&t, k, kl, "user.x", "w", 1, XATTR_CREATE); /* sees the first XSET */
	ck_assert_int_eq(APPLY(G1, &t), -EEXIST);
	ck_assert(!present(G1, k, kl));

	qfs_txn_init(&t);
	add_put(&t, d, dl, "dentry");
	add_put_bytes(&t, k, kl, b.data, b.len);
	add(&t, QFS_OP_NLINK, k, kl)->delta = 1;
	add_xset(&t, k, kl, "user.x", "v", 1, XATTR_CREATE);
	op = add(&t, QFS_OP_SETATTR, k, kl);
	op->mask = QFS_SET_SIZE;
	op->attr.size = 5;
	op = add(&t, QFS_OP_SETDATA, k, kl);
	op->val = (const uint8_t *)"hello";
	op->val_len = 5;
	add_expect(&t, QFS_OP_EXPECT_PRESENT, k, kl, -ENOENT);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_inode_close(&in);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.nlink, 2);
	ck_assert_uint_eq(in.a.size, 5);
	ck_assert_uint_eq(in.data_len, 5);
	ck_assert_uint_eq(in.nxattrs, 1);
	qfs_inode_close(&in);

	/* delete then patch in the same txn: the patch sees the delete */
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, k, kl);
	add(&t, QFS_OP_NLINK, k, kl)->delta = 1;
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	ck_assert(present(G1, k, kl));
	qfs_buf_close(&b);
}
END_TEST

/* Loop test: a txn of 6 writes where op _i is replaced by a failing
 * condition; nothing of it may show, its error is the result, and the
 * applied LSN advances. */
START_TEST(test_atomic_loop)
{
	struct qfs_txn t;
	const uint8_t *k[6];
	uint32_t kl[6];
	char name[8];
	uint32_t ml;
	const uint8_t *missing = kdent(DIR_INO, "missing", &ml);

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		k[i] = kdent(DIR_INO, name, &kl[i]);
	}
	uint32_t ikl;
	const uint8_t *ik = kino(FILE_INO, &ikl);
	qfs_lsn_t before = applied(G1);

	qfs_txn_init(&t);
	for (int i = 0; i < 6; i++) {
		if (i == _i) {
			add_expect(&t, QFS_OP_EXPECT_PRESENT, missing, ml, -100 - i);
		} else if (i == 2) {
			add(&t, QFS_OP_NLINK, ik, ikl)->delta = 5;
		} else {
			add_put(&t, k[i], kl[i], "v");
		}
	}
	ck_assert_int_eq(APPLY(G1, &t), -100 - _i);
	ck_assert_uint_eq(applied(G1), before + 1);
	for (int i = 0; i < 6; i++)
		ck_assert(!present(G1, k[i], kl[i]));
	struct qfs_inode in;
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.nlink, 1);
	qfs_inode_close(&in);
}
END_TEST

START_TEST(test_lsn_rules)
{
	struct qfs_txn t;
	struct qfs_buf b;
	uint32_t kl;
	const uint8_t *k = kdent(DIR_INO, "a", &kl);
	int res = 4242;

	qfs_txn_init(&t);
	add_put(&t, k, kl, "v");
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	qfs_txn_close(&t);

	ck_assert_int_eq(qfs_store_apply(st, G1, 0, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(qfs_store_apply(st, G1, 2, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(res, 4242);
	ck_assert(!present(G1, k, kl));
	ck_assert_uint_eq(applied(G1), 0);
	ck_assert_int_eq(qfs_store_apply(st, G1, 1, b.data, b.len, &res), 0);
	ck_assert_int_eq(res, 0);
	ck_assert_int_eq(qfs_store_apply(st, G1, 1, b.data, b.len, &res), -EINVAL); /* replay */
	ck_assert_int_eq(qfs_store_apply_noop(st, G1, 1), -EINVAL);
	ck_assert_int_eq(qfs_store_apply_noop(st, G1, 3), -EINVAL);
	ck_assert_int_eq(qfs_store_apply_noop(st, G1, 2), 0);
	ck_assert_uint_eq(applied(G1), 2);
	ck_assert_uint_eq(applied(G2), 0); /* per group */
	ck_assert_int_eq(qfs_store_apply(st, G2, 1, b.data, b.len, &res), 0);
	ck_assert_int_eq(qfs_store_apply(st, G1, 3, b.data, b.len, &res), 0);

	/* persistence across close/reopen */
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	ck_assert_uint_eq(applied(G1), 3);
	ck_assert_uint_eq(applied(G2), 1);
	assert_val(G1, k, kl, "v");
	assert_val(G2, k, kl, "v");
	ck_assert_int_eq(qfs_store_apply(st, G1, 3, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(qfs_store_apply(st, G1, 4, b.data, b.len, &res), 0);
	qfs_buf_close(&b);
}
END_TEST

START_TEST(test_undecodable)
{
	struct qfs_txn t;
	struct qfs_buf b;
	uint32_t kl;
	const uint8_t *k = kdent(DIR_INO, "a", &kl);
	int res = 4242;

	qfs_txn_init(&t);
	add_put(&t, k, kl, "v");
	kp = kdent(DIR_INO, "b", &kl);
	add_put(&t, kp, kl, "w");
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	qfs_txn_close(&t);

	int saved = qfs_log_level;
	qfs_log_level = -1; /* one ERR line per attempt otherwise */
	for (size_t n = 0; n < b.len; n++)
		ck_assert_int_eq(qfs_store_apply(st, G1, 1, b.data, n, &res), QFS_ECORRUPT);
	qfs_log_level = saved;
	const uint8_t garbage[] = { 1, 0xff, 0xff, 0xff, 0xff, 9, 9 };
	ck_assert_int_eq(qfs_store_apply(st, G1, 1, garbage, sizeof(garbage), &res), QFS_ECORRUPT);
	uint8_t version = b.data[0];
	b.data[0] = QFS_TXN_VERSION + 1; /* written by a newer release */
	ck_assert_int_eq(qfs_store_apply(st, G1, 1, b.data, b.len, &res), QFS_EFORMAT);
	b.data[0] = version;
	ck_assert_int_eq(res, 4242);
	ck_assert_uint_eq(applied(G1), 0);
	ck_assert(!present(G1, k, 16 + 1));
	ck_assert_int_eq(qfs_store_apply(st, G1, 1, b.data, b.len, &res), 0);
	ck_assert_int_eq(res, 0);
	qfs_buf_close(&b);
}
END_TEST

/* A patch op on a stored inode value that does not decode fails the txn
 * with the decoder's error as its (committed) result. */
START_TEST(test_patch_corrupt_inode)
{
	struct qfs_txn t;
	uint32_t kl;
	const uint8_t *k = kino(FILE_INO, &kl);
	qfs_txn_init(&t);
	add_put(&t, k, kl, "\001 not an inode");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add(&t, QFS_OP_NLINK, k, kl)->delta = 1;
	ck_assert_int_eq(APPLY(G1, &t), QFS_ECORRUPT);
	assert_val(G1, k, kl, "\001 not an inode");
	/* a newer format version is QFS_EFORMAT */
	qfs_txn_init(&t);
	add_put(&t, k, kl, "\003 from the future");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add(&t, QFS_OP_XDEL, k, kl)->name = "user.a";
	ck_assert_int_eq(APPLY(G1, &t), QFS_EFORMAT);
}
END_TEST

/* ---- counts kept at apply time (doc/format-items.md) ---- */

static uint64_t chunk_bytes_of(qfs_group_t g, uint64_t ino)
{
	struct qfs_inode in;
	get_inode(g, ino, &in);
	uint64_t n = in.chunk_bytes;
	qfs_inode_close(&in);
	return n;
}

static uint64_t ninodes_of(qfs_group_t g, uint64_t ino)
{
	struct qfs_inode in;
	get_inode(g, ino, &in);
	uint64_t n = in.ninodes;
	qfs_inode_close(&in);
	return n;
}

/* Chunk PUT/DEL/DEL_RANGE change the inode's chunk_bytes by the change of
 * the value lengths; a failed txn changes nothing; a PUT of the inode
 * keeps the count whatever the value says. */
START_TEST(test_count_chunk_bytes)
{
	struct qfs_txn t;
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	uint32_t kl, il;
	const uint8_t *ik = kino(FILE_INO, &il);

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 0);
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 0, &kl);
	add_put(&t, kp, kl, "hello");
	kp = kchunk(FILE_INO, 1, &kl);
	add_put(&t, kp, kl, "abc");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 8);
	struct qfs_inode in;
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.blocks, 1); /* 8 chunk bytes + 3 inline */
	qfs_inode_close(&in);

	/* overwrite shorter, delete one, delete an absent one */
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 0, &kl);
	add_put(&t, kp, kl, "hi");
	kp = kchunk(FILE_INO, 1, &kl);
	add(&t, QFS_OP_DEL, kp, kl);
	kp = kchunk(FILE_INO, 9, &kl);
	add(&t, QFS_OP_DEL, kp, kl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 2);

	/* a range delete counts what it removed, also what the txn wrote */
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 3, &kl);
	add_put(&t, kp, kl, "xxxx");
	kp = kchunk(FILE_INO, 2, &kl);
	add_put(&t, kp, kl, "yyyyyyy");
	qfs_key_chunk_range(lo, &lol, hi, &hil, FILE_INO, 3, UINT64_MAX);
	add_range(&t, QFS_OP_DEL_RANGE, lo, (uint32_t)lol, hi, (uint32_t)hil, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 9);

	/* a failed txn counts nothing */
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 5, &kl);
	add_put(&t, kp, kl, "zzzzzzzzzz");
	add_expect(&t, QFS_OP_EXPECT_ABSENT, ik, il, -EEXIST);
	ck_assert_int_eq(APPLY(G1, &t), -EEXIST);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 9);

	/* a PUT of the inode keeps the store's counts, not the writer's */
	struct qfs_buf b;
	qfs_inode_init(&in);
	in.a.ino = FILE_INO;
	in.a.mode = S_IFREG | 0600;
	in.chunk_bytes = 999999;
	in.ninodes = 5;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	qfs_txn_init(&t);
	add_put_bytes(&t, ik, il, b.data, b.len);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 9);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.mode, S_IFREG | 0600);
	ck_assert_uint_eq(in.a.blocks, 1);
	qfs_inode_close(&in);

	/* deleting the inode and its chunks: nothing left to count on */
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, ik, il);
	qfs_key_chunk_range(lo, &lol, hi, &hil, FILE_INO, 0, UINT64_MAX);
	add_range(&t, QFS_OP_DEL_RANGE, lo, (uint32_t)lol, hi, (uint32_t)hil, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, ik, il));
	qfs_buf_close(&b);
}
END_TEST

/* An inode stored by version 1 has no chunk count: it stays unknown
 * (st_blocks from the size) until every chunk is deleted at once. */
START_TEST(test_count_unknown_v1)
{
	struct qfs_inode in;
	struct qfs_buf b, v1;
	struct qfs_txn t;
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	uint32_t kl, il;
	const uint8_t *ik = kino(FILE_INO, &il);
	const size_t attr_block = 8 + 5 * 4 + 8 + 8 + 4 * 12;

	qfs_inode_init(&in);
	in.a.ino = FILE_INO;
	in.a.mode = S_IFREG | 0644;
	in.a.size = 1 << 20;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	qfs_buf_init(&v1);
	qfs_buf_put_u8(&v1, 1);
	qfs_buf_put(&v1, b.data + 1, attr_block);
	qfs_buf_put(&v1, b.data + 1 + attr_block + 16, b.len - 1 - attr_block - 16);
	ck_assert_int_eq(qfs_store_load_item(st, G1, ik, il, v1.data, v1.len), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), QFS_COUNT_UNKNOWN);

	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 0, &kl);
	add_put(&t, kp, kl, "data");
	add(&t, QFS_OP_SETATTR, ik, il)->mask = QFS_SET_UID;
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), QFS_COUNT_UNKNOWN);
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.blocks, (1 << 20) / 512);
	qfs_inode_close(&in);

	qfs_txn_init(&t);
	qfs_key_chunk_range(lo, &lol, hi, &hil, FILE_INO, 0, UINT64_MAX);
	add_range(&t, QFS_OP_DEL_RANGE, lo, (uint32_t)lol, hi, (uint32_t)hil, 0);
	kp = kchunk(FILE_INO, 2, &kl);
	add_put(&t, kp, kl, "abcdef");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 6);
	qfs_buf_close(&v1);
	qfs_buf_close(&b);
}
END_TEST

/* The inode whose ino is the group's id counts the inode items of the
 * group: +1 per inode that appears, -1 per inode that goes. */
START_TEST(test_count_ninodes)
{
	struct qfs_txn t;
	uint32_t kl;

	put_inode(G2, G2, S_IFDIR | 0755);
	ck_assert_uint_eq(ninodes_of(G2, G2), 1); /* itself */
	put_inode(G2, 100, S_IFREG | 0644);
	put_inode(G2, 101, S_IFREG | 0644);
	ck_assert_uint_eq(ninodes_of(G2, G2), 3);
	put_inode(G2, 100, S_IFREG | 0600); /* replaced, not added */
	ck_assert_uint_eq(ninodes_of(G2, G2), 3);
	qfs_txn_init(&t);
	kp = kino(100, &kl);
	add(&t, QFS_OP_DEL, kp, kl);
	kp = kino(555, &kl);
	add(&t, QFS_OP_DEL, kp, kl); /* absent */
	ck_assert_int_eq(APPLY(G2, &t), 0);
	ck_assert_uint_eq(ninodes_of(G2, G2), 2);
	/* dentries and chunks are not inodes */
	qfs_txn_init(&t);
	kp = kdent(G2, "name", &kl);
	add_put(&t, kp, kl, "d");
	kp = kchunk(101, 0, &kl);
	add_put(&t, kp, kl, "c");
	ck_assert_int_eq(APPLY(G2, &t), 0);
	ck_assert_uint_eq(ninodes_of(G2, G2), 2);
	ck_assert_uint_eq(chunk_bytes_of(G2, 101), 1);
	/* LINK_DROP of the last name deletes the inode: one less */
	put_inode(G2, 102, S_IFREG | 0644);
	ck_assert_uint_eq(ninodes_of(G2, G2), 3);
	qfs_txn_init(&t);
	kp = kino(102, &kl);
	add(&t, QFS_OP_LINK_DROP, kp, kl);
	ck_assert_int_eq(APPLY(G2, &t), 0);
	ck_assert(!present(G2, kp, kl));
	ck_assert_uint_eq(ninodes_of(G2, G2), 2);
	/* the same survives a reopen of the store */
	reopen();
	ck_assert_uint_eq(ninodes_of(G2, G2), 2);
	ck_assert_uint_eq(chunk_bytes_of(G2, 101), 1);
}
END_TEST

struct scan_acc {
	char names[64][16];
	int n;
	int stop_at; /* return 99 after this many; -1 never */
};

static int scan_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		   void *arg)
{
	struct scan_acc *acc = arg;
	struct qfs_key k;
	ck_assert_int_eq(qfs_key_parse(key, key_len, &k), 0);
	ck_assert_int_lt(acc->n, 64);
	if (k.kind == QFS_KEY_DENTRY) {
		ck_assert_uint_lt(k.name_len, 16);
		memcpy(acc->names[acc->n], k.name, k.name_len);
		acc->names[acc->n][k.name_len] = '\0';
		ck_assert_uint_eq(val_len, k.name_len); /* values are the names */
		ck_assert_mem_eq(val, k.name, val_len);
	} else {
		snprintf(acc->names[acc->n], 16, "#%d/%llu", k.kind, (unsigned long long)k.pk);
	}
	acc->n++;
	return acc->stop_at >= 0 && acc->n >= acc->stop_at ? 99 : 0;
}

START_TEST(test_scan)
{
	struct qfs_txn t;
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	uint32_t kl;
	const char *names[] = { "m", "b", "zz", "a", "ab", "\x01x", "\xff", "q" };
	const char *sorted[] = { "\x01x", "a", "ab", "b", "m", "q", "zz", "\xff" };
	struct scan_acc acc = { .n = 0, .stop_at = -1 };

	qfs_txn_init(&t);
	for (size_t i = 0; i < 8; i++) {
		kp = kdent(DIR_INO, names[i], &kl);
		add_put(&t, kp, kl, names[i]);
	}
	kp = kino(DIR_INO, &kl);
	add_put(&t, kp, kl, "inode");
	kp = kdent(DIR_INO + 1, "other", &kl);
	add_put(&t, kp, kl, "other");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	kp = kdent(DIR_INO, "g2", &kl);
	add_put(&t, kp, kl, "g2");
	ck_assert_int_eq(APPLY(G2, &t), 0);

	/* exactly the directory's entries, sorted */
	qfs_key_dentry_range(lo, &lol, hi, &hil, DIR_INO);
	ck_assert_int_eq(qfs_store_scan(st, G1, lo, lol, hi, hil, scan_cb, &acc), 0);
	ck_assert_int_eq(acc.n, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_str_eq(acc.names[i], sorted[i]);

	/* lower bound inclusive, upper exclusive */
	acc.n = 0;
	uint32_t al, ql;
	const uint8_t *a = kdent(DIR_INO, "a", &al), *q = kdent(DIR_INO, "q", &ql);
	ck_assert_int_eq(qfs_store_scan(st, G1, a, al, q, ql, scan_cb, &acc), 0);
	ck_assert_int_eq(acc.n, 4);
	ck_assert_str_eq(acc.names[0], "a");
	ck_assert_str_eq(acc.names[3], "m");

	/* hi NULL: to the end of the group, never into the next group */
	acc.n = 0;
	ck_assert_int_eq(qfs_store_scan(st, G1, NULL, 0, NULL, 0, scan_cb, &acc), 0);
	ck_assert_int_eq(acc.n, 10);
	acc.n = 0;
	ck_assert_int_eq(qfs_store_scan(st, G2, NULL, 0, NULL, 0, scan_cb, &acc), 0);
	ck_assert_int_eq(acc.n, 1);
	ck_assert_str_eq(acc.names[0], "g2");

	/* early stop returns the callback's value */
	acc.n = 0;
	acc.stop_at = 3;
	ck_assert_int_eq(qfs_store_scan(st, G1, lo, lol, hi, hil, scan_cb, &acc), 99);
	ck_assert_int_eq(acc.n, 3);

	/* empty range */
	acc.n = 0;
	acc.stop_at = -1;
	qfs_key_dentry_range(lo, &lol, hi, &hil, DIR_INO + 7);
	ck_assert_int_eq(qfs_store_scan(st, G1, lo, lol, hi, hil, scan_cb, &acc), 0);
	ck_assert_int_eq(acc.n, 0);
}
END_TEST

/* The scan reads one snapshot: writes made from inside the callback are not
 * seen by the running scan. */
struct snap_arg {
	int n;
	int wrote;
};

static int snap_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		   void *arg)
{
	struct snap_arg *s = arg;
	(void)key;
	(void)key_len;
	(void)val;
	(void)val_len;
	if (!s->wrote) {
		struct qfs_txn t;
		uint32_t kl;
		s->wrote = 1;
		qfs_txn_init(&t);
		kp = kdent(DIR_INO, "zzz-late", &kl);
		add_put(&t, kp, kl, "late");
		ck_assert_int_eq(APPLY(G1, &t), 0);
	}
	s->n++;
	return 0;
}

START_TEST(test_scan_snapshot)
{
	struct qfs_txn t;
	uint32_t kl;
	struct snap_arg s = { 0, 0 };
	qfs_txn_init(&t);
	kp = kdent(DIR_INO, "a", &kl);
	add_put(&t, kp, kl, "a");
	kp = kdent(DIR_INO, "b", &kl);
	add_put(&t, kp, kl, "b");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_scan(st, G1, NULL, 0, NULL, 0, snap_cb, &s), 0);
	ck_assert_int_eq(s.n, 2);
}
END_TEST

START_TEST(test_drop_group)
{
	struct qfs_txn t;
	uint32_t kl;
	struct scan_acc acc = { .n = 0, .stop_at = -1 };
	const uint8_t *k = kdent(DIR_INO, "a", &kl);

	for (qfs_group_t g = G1; g <= G2; g++) {
		for (int i = 0; i < 3; i++) {
			qfs_txn_init(&t);
			add_put(&t, k, kl, "a");
			ck_assert_int_eq(APPLY(g, &t), 0);
		}
	}
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert_uint_eq(applied(G1), 0);
	ck_assert(!present(G1, k, kl));
	ck_assert_int_eq(qfs_store_scan(st, G1, NULL, 0, NULL, 0, scan_cb, &acc), 0);
	ck_assert_int_eq(acc.n, 0);
	ck_assert_uint_eq(applied(G2), 3);
	assert_val(G2, k, kl, "a");

	/* the group starts over at lsn 1; the drop survives a reopen */
	reopen();
	ck_assert_uint_eq(applied(G1), 0);
	ck_assert(!present(G1, k, kl));
	assert_val(G2, k, kl, "a");
	qfs_txn_init(&t);
	add_put(&t, k, kl, "b");
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, k, kl, "b");
	ck_assert_int_eq(qfs_store_drop_group(st, UINT64_MAX), 0); /* edge: last group id */
	ck_assert_int_eq(qfs_store_drop_group(st, 12345), 0);       /* nothing there */
	assert_val(G1, k, kl, "b");
}
END_TEST

/* The applied LSN an apply checks comes from a cache (store.c): every
 * write of it, a drop and an install keep that cache exact without a
 * reopen; an apply at any other LSN than the next is refused. */
START_TEST(test_applied_cache)
{
	struct qfs_txn t;
	struct qfs_buf b;
	struct qfs_store_install *in;
	uint32_t kl;
	int res = 12345;
	const uint8_t *k = kdent(DIR_INO, "c", &kl);

	qfs_txn_init(&t);
	add_put(&t, k, kl, "v");
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	ck_assert_int_eq(b.err, 0);
	qfs_txn_close(&t);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(qfs_store_apply(st, G1, i + 1, b.data, b.len, &res), 0);
	ck_assert_uint_eq(applied(G1), 3);
	ck_assert_int_eq(qfs_store_apply(st, G1, 3, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(qfs_store_apply(st, G1, 5, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(qfs_store_apply_noop(st, G1, 4), 0);
	ck_assert_int_eq(qfs_store_apply(st, G1, 4, b.data, b.len, &res), -EINVAL);
	ck_assert_uint_eq(applied(G1), 4);

	/* a drop: the group starts over at 1, without a reopen */
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert_int_eq(qfs_store_apply(st, G1, 5, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(qfs_store_apply(st, G1, 1, b.data, b.len, &res), 0);
	ck_assert_uint_eq(applied(G1), 1);

	/* load_applied sets it; an install brings its own */
	ck_assert_int_eq(qfs_store_load_applied(st, G1, 2), 0);
	ck_assert_int_eq(qfs_store_apply(st, G1, 2, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(qfs_store_apply(st, G1, 3, b.data, b.len, &res), 0);
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, (const uint8_t *)"n", 1), 0);
	ck_assert_int_eq(qfs_store_install_commit(in, 77, 9), 0);
	ck_assert_uint_eq(applied(G1), 77);
	ck_assert_int_eq(qfs_store_apply(st, G1, 4, b.data, b.len, &res), -EINVAL);
	ck_assert_int_eq(qfs_store_apply(st, G1, 78, b.data, b.len, &res), 0);
	ck_assert_uint_eq(applied(G2), 0); /* another group untouched */
	reopen();
	ck_assert_uint_eq(applied(G1), 78);
	qfs_buf_close(&b);
}
END_TEST

/* The fence a RANGE op compares comes from a cache (store.c): a txn that
 * writes the fence, a drop, a load_item and an install each make the
 * next RANGE op see the new record, without a reopen. */
static int fence_res(qfs_group_t g, uint64_t epoch)
{
	struct qfs_txn t;
	uint8_t ep[8];

	qfs_be64_put(ep, epoch);
	qfs_txn_init(&t);
	add_fence(&t, ep);
	return APPLY(g, &t);
}

START_TEST(test_fence_cache)
{
	struct qfs_txn t;
	struct qfs_store_install *in;
	uint8_t rec[12], ep5[8];

	ck_assert_int_eq(fence_res(G1, 0), 0); /* absent: epoch 0 (now cached) */
	ck_assert_int_eq(fence_res(G1, 5), QFS_ESTALE);
	qfs_be64_put(rec, 5);
	memcpy(rec + 8, "rest", 4);
	qfs_txn_init(&t);
	add_put_bytes(&t, (const uint8_t *)"", 0, rec, sizeof(rec));
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(fence_res(G1, 0), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 5), 0);
	ck_assert_int_eq(fence_res(G2, 0), 0); /* per group */
	ck_assert_int_eq(fence_res(G2, 5), QFS_ESTALE);

	/* a txn that writes the fence after its RANGE op: the next one sees it */
	qfs_txn_init(&t);
	qfs_be64_put(ep5, 5);
	add_fence(&t, ep5);
	qfs_be64_put(rec, 6);
	add_put_bytes(&t, (const uint8_t *)"", 0, rec, 8);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(fence_res(G1, 5), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 6), 0);

	/* a failed txn writes nothing: the fence stays */
	qfs_txn_init(&t);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, (const uint8_t *)"zz", 2, -ENOENT);
	qfs_be64_put(rec, 9);
	add_put_bytes(&t, (const uint8_t *)"", 0, rec, 8);
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	ck_assert_int_eq(fence_res(G1, 6), 0);

	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert_int_eq(fence_res(G1, 6), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 0), 0);
	qfs_be64_put(rec, 7);
	ck_assert_int_eq(qfs_store_load_item(st, G1, (const uint8_t *)"", 0, rec, 8), 0);
	ck_assert_int_eq(fence_res(G1, 0), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 7), 0);
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	qfs_be64_put(rec, 8);
	ck_assert_int_eq(qfs_store_install_item(in, (const uint8_t *)"", 0, rec, 8), 0);
	ck_assert_int_eq(qfs_store_install_commit(in, 50, 9), 0);
	ck_assert_int_eq(fence_res(G1, 7), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 8), 0);
	reopen();
	ck_assert_int_eq(fence_res(G1, 8), 0);
	ck_assert_int_eq(fence_res(G2, 0), 0);
}
END_TEST

START_TEST(test_group_size)
{
	struct qfs_txn t;
	uint32_t kl;
	uint64_t b1 = 1, b2 = 1;
	static uint8_t val[4096];
	char name[16];
	memset(val, 'x', sizeof(val));
	for (int r = 0; r < 4; r++) {
		qfs_txn_init(&t);
		knext = 0;
		for (int i = 0; i < 100; i++) {
			snprintf(name, sizeof(name), "f%d-%d", r, i);
			kp = kdent(DIR_INO, name, &kl);
			add_put_bytes(&t, kp, kl, val, sizeof(val));
		}
		ck_assert_int_eq(APPLY(G1, &t), 0);
	}
	ck_assert_int_eq(qfs_store_group_size(st, G1, &b1), 0);
	ck_assert_int_eq(qfs_store_group_size(st, G2, &b2), 0);
	ck_assert_uint_eq(b2, 0);
	ck_assert_uint_ge(b1, b2);
}
END_TEST

/* ---- hard links: LINK_ADD / LINK_DROP ---- */

static int dump_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct qfs_buf *b = arg;
	qfs_buf_put_bytes(b, k, kl);
	qfs_buf_put_bytes(b, v, vl);
	return 0;
}

/* Every item of g, keys and values end to end. */
static void dump(qfs_group_t g, struct qfs_buf *b)
{
	qfs_buf_init(b);
	ck_assert_int_eq(qfs_store_scan(st, g, NULL, 0, NULL, 0, dump_cb, b), 0);
	ck_assert_int_eq(b->err, 0);
}

static void put_chunks(qfs_group_t g, uint64_t ino, int n)
{
	struct qfs_txn t;
	uint32_t kl;
	qfs_txn_init(&t);
	for (int c = 0; c < n; c++) {
		kp = kchunk(ino, (uint64_t)c, &kl);
		add_put(&t, kp, kl, "chunk");
	}
	ck_assert_int_eq(APPLY(g, &t), 0);
}

static int nchunks(qfs_group_t g, uint64_t ino)
{
	int n = 0;
	for (uint64_t c = 0; c < 8; c++) {
		uint32_t kl;
		kp = kchunk(ino, c, &kl);
		n += present(g, kp, kl);
	}
	return n;
}

static uint32_t nlink_of(qfs_group_t g, uint64_t ino)
{
	struct qfs_inode in;
	get_inode(g, ino, &in);
	uint32_t n = in.a.nlink;
	qfs_inode_close(&in);
	return n;
}

START_TEST(test_link_add)
{
	struct qfs_txn t;
	uint32_t kl, dl;
	const uint8_t *k = kino(FILE_INO, &kl), *d = kino(DIR_INO, &dl);
	put_inode(G1, FILE_INO, S_IFREG | 0644); /* nlink 1 */
	put_inode(G1, DIR_INO, S_IFDIR | 0755);

	for (int i = 0; i < 2; i++) {
		qfs_txn_init(&t);
		add(&t, QFS_OP_LINK_ADD, k, kl)->limit = 3;
		ck_assert_int_eq(APPLY(G1, &t), 0);
	}
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 3);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_ADD, k, kl)->limit = 3;
	ck_assert_int_eq(APPLY(G1, &t), -EMLINK);
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 3);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_ADD, d, dl)->limit = 100;
	ck_assert_int_eq(APPLY(G1, &t), -EPERM);
	qfs_txn_init(&t);
	kp = kino(FILE_INO + 9, &kl);
	add(&t, QFS_OP_LINK_ADD, kp, kl)->limit = 100;
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	/* an inode with no name left (open, unlinked) gets none back */
	qfs_txn_init(&t);
	add(&t, QFS_OP_NLINK, k, kl)->delta = -3;
	add(&t, QFS_OP_LINK_ADD, k, kl)->limit = 100;
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 3); /* the failed txn changed nothing */
}
END_TEST

START_TEST(test_link_drop)
{
	struct qfs_txn t;
	uint32_t kl, ol, dl;
	const uint8_t *k = kino(FILE_INO, &kl), *ok = kdent(0, "00000000000007d0", &ol);
	const uint8_t *d = kino(DIR_INO, &dl);
	put_inode(G1, FILE_INO, S_IFREG | 0644);
	put_inode(G1, DIR_INO, S_IFDIR | 0755);
	put_chunks(G1, FILE_INO, 3);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_ADD, k, kl)->limit = 10;
	ck_assert_int_eq(APPLY(G1, &t), 0);

	/* two names; dropping one keeps the inode and its chunks */
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 1);
	ck_assert_int_eq(nchunks(G1, FILE_INO), 3);

	/* a drop in a txn that fails later has no effect */
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, ok, ol, -ESTALE);
	ck_assert_int_eq(APPLY(G1, &t), -ESTALE);
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 1);
	ck_assert_int_eq(nchunks(G1, FILE_INO), 3);

	/* the last name of an open file: orphan entry, inode and chunks kept */
	qfs_txn_init(&t);
	struct qfs_op *op = add(&t, QFS_OP_LINK_DROP, k, kl);
	op->key2 = ok;
	op->key2_len = ol;
	op->val = (const uint8_t *)"orphan";
	op->val_len = 6;
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 0);
	assert_val(G1, ok, ol, "orphan");
	ck_assert_int_eq(nchunks(G1, FILE_INO), 3);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL); /* nothing left to drop */

	/* the last name of a closed file: inode and chunks destroyed */
	qfs_txn_init(&t);
	add(&t, QFS_OP_NLINK, k, kl)->delta = 1;
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, k, kl));
	ck_assert_int_eq(nchunks(G1, FILE_INO), 0);
	ck_assert(present(G1, ok, ol)); /* someone else's business */

	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, d, dl);
	ck_assert_int_eq(APPLY(G1, &t), -EISDIR);
	ck_assert_uint_eq(nlink_of(G1, DIR_INO), 1);
}
END_TEST

/* A regular file as fs/ writes it: not inline, size bytes, no data. */
static void put_file(qfs_group_t g, uint64_t ino, uint64_t size)
{
	struct qfs_inode in;

	qfs_inode_init(&in);
	in.a.ino = ino;
	in.a.mode = S_IFREG | 0644;
	in.a.nlink = 1;
	in.a.size = size;
	put_encoded(g, &in);
}

/* The last name of a file as fs/ writes it (chunks only below its size):
 * up to 16 chunks they are deleted by key, past that by a walk of the
 * range; either way every chunk goes, the first, the last and none is
 * left behind a hole; an empty file and an inline one have none. */
START_TEST(test_link_drop_sized)
{
	static const uint64_t sizes[] = { 2 * QFS_CHUNK_SIZE + 10, 16 * QFS_CHUNK_SIZE, 16 * QFS_CHUNK_SIZE + 1,
					  4096, 0 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t ino = 9 + i, size = sizes[i], last = size ? (size - 1) / QFS_CHUNK_SIZE : 0;
		uint32_t kl, c0l, cnl;
		const uint8_t *k = kino(ino, &kl);
		uint8_t c0[QFS_KEY_MAX], cn[QFS_KEY_MAX];
		struct qfs_txn t;

		put_file(G1, ino, size);
		qfs_txn_init(&t);
		c0l = (uint32_t)qfs_key_chunk(c0, ino, 0);
		cnl = (uint32_t)qfs_key_chunk(cn, ino, last);
		if (size) {
			add_put(&t, c0, c0l, "chunk");
			if (last)
				add_put(&t, cn, cnl, "chunk");
			ck_assert_int_eq(APPLY(G1, &t), 0);
			ck_assert_uint_eq(chunk_bytes_of(G1, ino), last ? 10 : 5);
		}
		qfs_txn_init(&t);
		add(&t, QFS_OP_LINK_DROP, k, kl);
		ck_assert_int_eq(APPLY(G1, &t), 0);
		ck_assert(!present(G1, k, kl));
		ck_assert(!present(G1, c0, c0l));
		ck_assert(!present(G1, cn, cnl));
		ck_assert_int_eq(nchunks(G1, ino), 0);
	}
	/* inline (put_inode: 3 bytes in the inode), no chunk */
	uint32_t kl;
	const uint8_t *k = kino(FILE_INO, &kl);
	struct qfs_txn t;
	put_inode(G1, FILE_INO, S_IFREG | 0644);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, k, kl));
}
END_TEST

/* Two unlinks of two names of one inode, proposed at once (each built from
 * a read that saw nlink 2), are ordered by the log: whichever applies second
 * destroys the inode, on every replica alike, and none leaks or loses it. */
START_TEST(test_link_drop_race)
{
	struct qfs_buf enc[2], b1, b2;
	uint32_t kl, da, db, pl;
	const uint8_t *k = kino(FILE_INO, &kl), *p = kino(DIR_INO, &pl);
	const uint8_t *na = kdent(DIR_INO, "a", &da), *nb = kdent(DIR_INO, "b", &db);

	for (qfs_group_t g = G1; g <= G2; g++) {
		struct qfs_txn t;
		put_inode(g, FILE_INO, S_IFREG | 0644);
		put_inode(g, DIR_INO, S_IFDIR | 0755);
		put_chunks(g, FILE_INO, 2);
		qfs_txn_init(&t);
		add(&t, QFS_OP_LINK_ADD, k, kl)->limit = 10;
		add_put(&t, na, da, "dentry");
		add_put(&t, nb, db, "dentry");
		ck_assert_int_eq(APPLY(g, &t), 0);
	}
	for (int i = 0; i < 2; i++) {
		struct qfs_txn t;
		qfs_txn_init(&t);
		const uint8_t *n = i ? nb : na;
		uint32_t nl = i ? db : da;
		struct qfs_op *op = add(&t, QFS_OP_EXPECT_VALUE, n, nl);
		op->val = (const uint8_t *)"dentry";
		op->val_len = 6;
		op->err = QFS_ECONFLICT;
		add(&t, QFS_OP_DEL, n, nl);
		add(&t, QFS_OP_SETATTR, p, pl)->mask = QFS_SET_MTIME;
		add(&t, QFS_OP_LINK_DROP, k, kl);
		qfs_buf_init(&enc[i]);
		qfs_txn_encode(&t, &enc[i]);
		ck_assert_int_eq(enc[i].err, 0);
		qfs_txn_close(&t);
	}
	/* G1 applies a then b, G2 b then a */
	for (int i = 0; i < 2; i++) {
		int res = 1;
		qfs_lsn_t l = applied(G1);
		ck_assert_int_eq(qfs_store_apply(st, G1, l + 1, enc[i].data, enc[i].len, &res), 0);
		ck_assert_int_eq(res, 0);
		ck_assert_int_eq(present(G1, k, kl), i == 0);
		ck_assert_int_eq(nchunks(G1, FILE_INO), i == 0 ? 2 : 0);
		l = applied(G2);
		ck_assert_int_eq(qfs_store_apply(st, G2, l + 1, enc[1 - i].data, enc[1 - i].len, &res), 0);
		ck_assert_int_eq(res, 0);
	}
	ck_assert(!present(G1, na, da) && !present(G1, nb, db));
	dump(G1, &b1);
	dump(G2, &b2);
	ck_assert_uint_eq(b1.len, b2.len);
	ck_assert_mem_eq(b1.data, b2.data, b1.len);
	qfs_buf_close(&b1);
	qfs_buf_close(&b2);
	qfs_buf_close(&enc[0]);
	qfs_buf_close(&enc[1]);
}
END_TEST

/* Memory budget and blob files (store.h qfs_store_opts): two stores share
 * one cache; memtables stay within the budget while 8 MiB of 128 KiB values
 * go in; the values land in blob files and read back; after the group is
 * dropped, a compaction deletes the (wholly dead) blob files. */
/* ---- PATCH: bytes overlaid on a chunk ---- */

static struct qfs_op *add_patch(struct qfs_txn *t, const uint8_t *k, uint32_t kl, uint32_t off, const void *v,
				size_t vl)
{
	struct qfs_op *op = add(t, QFS_OP_PATCH, k, kl);
	op->offset = off;
	op->val = v;
	op->val_len = (uint32_t)vl;
	return op;
}

/* Value of key k in g: its length, and its bytes copied into out (cap). */
static size_t get_bytes(qfs_group_t g, const uint8_t *k, uint32_t kl, uint8_t *out, size_t cap)
{
	void *v;
	size_t vl;
	int rc = qfs_store_get(st, g, k, kl, &v, &vl);
	if (rc == -ENOENT)
		return 0;
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_le(vl, cap);
	memcpy(out, v, vl);
	free(v);
	return vl;
}

/* Overlay inside, extend past the end, on an absent chunk (zeros before
 * the offset), trailing zeros trimmed, all zeros deletes; chunk_bytes
 * follows; later ops of the txn see the result; bounds and a key that is
 * not a chunk's fail with -EINVAL and change nothing. */
START_TEST(test_patch)
{
	static uint8_t want[QFS_CHUNK_SIZE], got[QFS_CHUNK_SIZE], big[QFS_CHUNK_SIZE + 1];
	struct qfs_txn t;
	uint32_t kl, kl1, il;
	const uint8_t *k0 = kchunk(FILE_INO, 0, &kl);
	const uint8_t *k1 = kchunk(FILE_INO, 1, &kl1);
	const uint8_t *ik = kino(FILE_INO, &il);

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	qfs_txn_init(&t);
	add_put(&t, k0, kl, "hello world");
	ck_assert_int_eq(APPLY(G1, &t), 0);

	/* inside */
	qfs_txn_init(&t);
	add_patch(&t, k0, kl, 6, "WORLD", 5);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, k0, kl, "hello WORLD");
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 11);

	/* straddling the end: extends */
	qfs_txn_init(&t);
	add_patch(&t, k0, kl, 9, "LD and more", 11);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	assert_val(G1, k0, kl, "hello WORLD and more");
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 20);

	/* past the end: zeros between */
	qfs_txn_init(&t);
	add_patch(&t, k0, kl, 30, "x", 1);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	memset(want, 0, sizeof(want));
	memcpy(want, "hello WORLD and more", 20);
	want[30] = 'x';
	ck_assert_uint_eq(get_bytes(G1, k0, kl, got, sizeof(got)), 31);
	ck_assert_mem_eq(got, want, 31);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 31);

	/* absent chunk, up to the last byte of the chunk; then a PATCH in the
	 * same txn sees the first one */
	qfs_txn_init(&t);
	add_patch(&t, k1, kl1, QFS_CHUNK_SIZE - 3, "abc", 3);
	add_patch(&t, k1, kl1, QFS_CHUNK_SIZE - 2, "B", 1);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	memset(want, 0, sizeof(want));
	memcpy(want + QFS_CHUNK_SIZE - 3, "aBc", 3);
	ck_assert_uint_eq(get_bytes(G1, k1, kl1, got, sizeof(got)), QFS_CHUNK_SIZE);
	ck_assert_mem_eq(got, want, QFS_CHUNK_SIZE);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 31 + QFS_CHUNK_SIZE);

	/* zeros at the end are trimmed; zeros over everything delete */
	qfs_txn_init(&t);
	add_patch(&t, k1, kl1, QFS_CHUNK_SIZE - 2, "\0\0", 2);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(get_bytes(G1, k1, kl1, got, sizeof(got)), QFS_CHUNK_SIZE - 2);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 31 + QFS_CHUNK_SIZE - 2);
	qfs_txn_init(&t);
	add_patch(&t, k1, kl1, QFS_CHUNK_SIZE - 3, "\0", 1);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, k1, kl1));
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 31);
	/* an empty PATCH of an absent chunk stores nothing */
	qfs_txn_init(&t);
	add_patch(&t, k1, kl1, 5, "", 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert(!present(G1, k1, kl1));

	/* after a DEL_RANGE in the same txn: overlaid on nothing */
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	qfs_key_chunk_range(lo, &lol, hi, &hil, FILE_INO, 0, UINT64_MAX);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, lo, (uint32_t)lol, hi, (uint32_t)hil, 0);
	add_patch(&t, k0, kl, 2, "zz", 2);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(get_bytes(G1, k0, kl, got, sizeof(got)), 4);
	ck_assert_mem_eq(got, "\0\0zz", 4);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 4);

	/* bounds: one byte past the chunk, an offset past it, a huge offset
	 * (no wrap); the txn changes nothing, also what came before */
	memset(big, 'b', sizeof(big));
	qfs_txn_init(&t);
	add_patch(&t, k0, kl, 0, big, QFS_CHUNK_SIZE + 1);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
	qfs_txn_init(&t);
	add_patch(&t, k0, kl, 0, "q", 1);
	add_patch(&t, k0, kl, QFS_CHUNK_SIZE, "q", 1);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
	qfs_txn_init(&t);
	add_patch(&t, k0, kl, UINT32_MAX, "q", 1);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
	/* a key that is not a chunk's */
	qfs_txn_init(&t);
	add_patch(&t, ik, il, 0, "q", 1);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
	ck_assert_uint_eq(get_bytes(G1, k0, kl, got, sizeof(got)), 4);
	ck_assert_mem_eq(got, "\0\0zz", 4);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 4);
	/* the whole chunk is allowed */
	qfs_txn_init(&t);
	add_patch(&t, k0, kl, 0, big, QFS_CHUNK_SIZE);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), QFS_CHUNK_SIZE);

	/* the applied state survives a reopen */
	reopen();
	ck_assert_uint_eq(get_bytes(G1, k0, kl, got, sizeof(got)), QFS_CHUNK_SIZE);
	ck_assert_mem_eq(got, big, QFS_CHUNK_SIZE);
}
END_TEST

static int count_blobs(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(dd);
	while ((de = readdir(dd)) != NULL) {
		size_t l = strlen(de->d_name);
		n += l > 5 && strcmp(de->d_name + l - 5, ".blob") == 0;
	}
	closedir(dd);
	return n;
}

START_TEST(test_budget_blobs)
{
	char d2[80];
	struct qfs_store_cache *cache;
	struct qfs_store_opts o = { .memtable_bytes = 4u << 20 };
	struct qfs_store *s2, *s3;
	static uint8_t val[128 << 10];
	uint64_t mem, cu, maxmem = 0;
	void *v;
	size_t vl;

	ck_assert_int_eq(qfs_store_cache_new(8u << 20, &cache), 0);
	o.cache = cache;
	snprintf(d2, sizeof(d2), "%s/s2", dir);
	ck_assert_int_eq(qfs_store_open_opts(d2, &o, &s2), 0);
	snprintf(d2, sizeof(d2), "%s/s3", dir);
	ck_assert_int_eq(qfs_store_open_opts(d2, &o, &s3), 0);
	for (uint32_t i = 0; i < 64; i++) {
		uint8_t k[8];

		qfs_be64_put(k, i);
		memset(val, (int)(i + 1), sizeof(val));
		ck_assert_int_eq(qfs_store_load_item(s2, 7, k, sizeof(k), val, sizeof(val)), 0);
		ck_assert_int_eq(qfs_store_mem(s2, &mem, &cu), 0);
		if (mem > maxmem)
			maxmem = mem;
	}
	/* two memtables of half the budget, plus an arena block of slack */
	ck_assert_uint_le(maxmem, (4u << 20) + (1u << 20));
	ck_assert_int_eq(qfs_store_sync(s2), 0);
	snprintf(d2, sizeof(d2), "%s/s2", dir);
	ck_assert_int_gt(count_blobs(d2), 0);
	for (uint32_t i = 0; i < 64; i += 9) {
		uint8_t k[8];

		qfs_be64_put(k, i);
		ck_assert_int_eq(qfs_store_get(s2, 7, k, sizeof(k), &v, &vl), 0);
		ck_assert_uint_eq(vl, sizeof(val));
		ck_assert_uint_eq(((uint8_t *)v)[vl - 1], i + 1);
		free(v);
	}
	/* the shared cache: both stores report the same usage */
	uint64_t c2, c3;
	ck_assert_int_eq(qfs_store_mem(s2, &mem, &c2), 0);
	ck_assert_int_eq(qfs_store_mem(s3, &mem, &c3), 0);
	ck_assert_uint_eq(c2, c3);
	/* drop + compaction: the blob files are all garbage and go */
	ck_assert_int_eq(qfs_store_drop_group(s2, 7), 0);
	ck_assert_int_eq(qfs_store_compact(s2, 0), 0);
	ck_assert_int_eq(count_blobs(d2), 0);
	/* a compaction that needs more room than the disk has is refused */
	ck_assert_int_eq(qfs_store_compact(s2, UINT64_MAX), -ENOSPC);
	qfs_store_close(s3);
	qfs_store_close(s2);
	qfs_store_cache_free(cache);
}
END_TEST

/* Chunk checksum records (doc/format-store.md "Chunk checksums").  A chunk
 * in a blob file is read through its 'c' record (our CRC32C, RocksDB's blob
 * check skipped); a chunk rewritten without its record (as a release
 * without them does) still reads back right, through RocksDB's checks; a
 * byte flipped in the blob file fails the read and never returns wrong
 * bytes; a deleted chunk takes its record along. */
static off_t find_in_blobs(const char *d, const uint8_t *pat, size_t n, char *path, size_t cap)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	off_t at = -1;

	ck_assert_ptr_nonnull(dd);
	while (at < 0 && (de = readdir(dd)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l <= 5 || strcmp(de->d_name + l - 5, ".blob") != 0)
			continue;
		snprintf(path, cap, "%s/%s", d, de->d_name);
		FILE *f = fopen(path, "rb");
		ck_assert_ptr_nonnull(f);
		static uint8_t buf[1 << 20];
		size_t got = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		for (size_t i = 0; i + n <= got; i++)
			if (memcmp(buf + i, pat, n) == 0) {
				at = (off_t)i;
				break;
			}
	}
	closedir(dd);
	return at;
}

START_TEST(test_chunk_crc)
{
	static uint8_t a[QFS_CHUNK_SIZE], b[QFS_CHUNK_SIZE], got[QFS_CHUNK_SIZE];
	uint32_t ka_l, kb_l, seed = 99;
	const uint8_t *ka = kchunk(FILE_INO, 0, &ka_l), *kb = kchunk(FILE_INO, 1, &kb_l);
	struct qfs_txn t;
	char path[200];
	void *v;
	size_t vl;

	for (size_t i = 0; i < QFS_CHUNK_SIZE; i++) {
		seed = seed * 1103515245u + 12345u;
		a[i] = (uint8_t)(seed >> 16);
		b[i] = (uint8_t)(seed >> 8);
	}
	qfs_txn_init(&t);
	add_put_bytes(&t, ka, ka_l, a, sizeof(a));
	add_put_bytes(&t, kb, kb_l, b, sizeof(b));
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_sync(st), 0); /* into a blob file */
	reopen();
	ck_assert_uint_eq(get_bytes(G1, ka, ka_l, got, sizeof(got)), QFS_CHUNK_SIZE);
	ck_assert_mem_eq(got, a, QFS_CHUNK_SIZE);
	ck_assert_uint_eq(st->crc_fast, 1);
	ck_assert_uint_eq(st->crc_slow, 0);
	/* pinned (qfs_store_get_val): the same check by the record */
	struct qfs_val pv = { 0 };
	ck_assert_int_eq(qfs_store_get_val(st, G1, ka, ka_l, &pv), 0);
	ck_assert_uint_eq(pv.len, QFS_CHUNK_SIZE);
	ck_assert_mem_eq(pv.data, a, QFS_CHUNK_SIZE);
	ck_assert_uint_eq(st->crc_fast, 2);
	qfs_val_release(&pv);

	/* a chunk written without its record: the record no longer matches */
	uint8_t dk[STORE_DBKEY_MAX];
	size_t dkl;
	char *err = NULL;
	ck_assert_ptr_eq(store_item_key(dk, sizeof(dk), G1, ka, ka_l, &dkl), dk);
	rocksdb_put(st->db, st->wo, (const char *)dk, dkl, (const char *)b, sizeof(b), &err);
	ck_assert_ptr_null(err);
	ck_assert_uint_eq(get_bytes(G1, ka, ka_l, got, sizeof(got)), QFS_CHUNK_SIZE);
	ck_assert_mem_eq(got, b, QFS_CHUNK_SIZE);
	ck_assert_uint_eq(st->crc_slow, 1);

	/* a flipped byte in chunk b's bytes in the blob file: an error, not b */
	off_t at = find_in_blobs(dir, b + 5000, 64, path, sizeof(path));
	ck_assert_int_ge(at, 0);
	qfs_store_close(st);
	st = NULL;
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseeko(f, at + 10, SEEK_SET), 0);
	int c = fgetc(f);
	ck_assert_int_eq(fseeko(f, at + 10, SEEK_SET), 0);
	fputc(c ^ 0x20, f);
	fclose(f);
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
	int rc = qfs_store_get(st, G1, kb, kb_l, &v, &vl);
	ck_assert(rc == QFS_ECORRUPT || rc == -EIO);
	ck_assert_uint_eq(st->crc_fast, 0);
	ck_assert_uint_eq(st->crc_slow, 1);
	/* the pinned read refuses it the same way, and holds nothing */
	rc = qfs_store_get_val(st, G1, kb, kb_l, &pv);
	ck_assert(rc == QFS_ECORRUPT || rc == -EIO);
	ck_assert(!qfs_val_held(&pv));
	ck_assert_uint_eq(st->crc_slow, 2);

	/* delete (of the intact chunk a: a's rewrite above was only in the
	 * memtable, gone with the reopen): the record goes with the chunk */
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, ka, ka_l);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_get(st, G1, ka, ka_l, &v, &vl), -ENOENT);
	ck_assert_ptr_eq(store_item_key(dk, sizeof(dk), G1, ka, ka_l, &dkl), dk);
	dk[0] = STORE_CRC_PREFIX;
	char *cv = rocksdb_get(st->db, st->ro, (const char *)dk, dkl, &vl, &err);
	ck_assert_ptr_null(err);
	ck_assert_ptr_null(cv);
}
END_TEST

/* A reader of a chunk while the applier rewrites it: the 'c' record and the
 * chunk may be read on either side of one apply, which is no mismatch. */
struct rewrite_reader {
	const uint8_t *k;
	uint32_t kl;
	const uint8_t *a, *b; /* the two contents the chunk alternates between */
	int stop;             /* atomic */
	unsigned reads, bad;  /* reads done; values neither a nor b (or errors) */
};

static void *rewrite_reader_main(void *arg)
{
	struct rewrite_reader *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		void *v;
		size_t vl;

		if (qfs_store_get(st, G1, r->k, r->kl, &v, &vl) != 0) {
			r->bad++;
			continue;
		}
		if (vl != QFS_CHUNK_SIZE || (memcmp(v, r->a, vl) != 0 && memcmp(v, r->b, vl) != 0))
			r->bad++;
		free(v);
		r->reads++;
	}
	return NULL;
}

START_TEST(test_chunk_crc_rewrite)
{
	static uint8_t a[QFS_CHUNK_SIZE], b[QFS_CHUNK_SIZE];
	uint32_t kl, seed = 7;
	const uint8_t *k = kchunk(FILE_INO, 0, &kl);
	struct rewrite_reader r = { .k = k, .kl = kl, .a = a, .b = b };
	struct qfs_txn t;
	pthread_t th;

	for (size_t i = 0; i < QFS_CHUNK_SIZE; i++) {
		seed = seed * 1103515245u + 12345u;
		a[i] = (uint8_t)(seed >> 16);
		b[i] = (uint8_t)(seed >> 8);
	}
	qfs_txn_init(&t);
	add_put_bytes(&t, k, kl, a, sizeof(a));
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, rewrite_reader_main, &r), 0);
	for (unsigned i = 0; i < 3000; i++) {
		qfs_txn_init(&t);
		add_put_bytes(&t, k, kl, i % 2 ? a : b, QFS_CHUNK_SIZE);
		ck_assert_int_eq(APPLY(G1, &t), 0);
		if (i % 500 == 499)
			ck_assert_int_eq(qfs_store_sync(st), 0); /* some reads from blob files */
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_gt(r.reads, 0);
	ck_assert_uint_eq(r.bad, 0);
	ck_assert_uint_eq(st->crc_mismatch, 0);

	/* a chunk written without its record is still a mismatch */
	uint8_t dk[STORE_DBKEY_MAX];
	size_t dkl;
	char *err = NULL;
	static uint8_t got[QFS_CHUNK_SIZE];
	ck_assert_ptr_eq(store_item_key(dk, sizeof(dk), G1, k, kl, &dkl), dk);
	rocksdb_put(st->db, st->wo, (const char *)dk, dkl, (const char *)b, sizeof(b), &err);
	ck_assert_ptr_null(err); /* the last rewrite left a (and a's record) */
	ck_assert_uint_eq(get_bytes(G1, k, kl, got, sizeof(got)), QFS_CHUNK_SIZE);
	ck_assert_mem_eq(got, b, QFS_CHUNK_SIZE);
	ck_assert_uint_eq(st->crc_mismatch, 1);
}
END_TEST

/* ---- snapshot install (install.c) ---- */

#define INST_CHUNKS 64 /* 8 MiB of chunk items: 4 x the store's memtable budget */

/* Files in the store's staging directory (0 when it does not exist). */
static int staging_files(void)
{
	char path[128];
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "%s/qfs-install", dir);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Chunk c of the install tests: random bytes from seed c. */
static void inst_chunk(uint8_t *out, uint64_t c)
{
	uint32_t seed = (uint32_t)c * 7919u + 1;

	for (size_t i = 0; i < QFS_CHUNK_SIZE; i++) {
		seed = seed * 1103515245u + 12345u;
		out[i] = (uint8_t)(seed >> 16);
	}
}

/* G1 holds an old state: a dentry, chunk 0 and applied LSN 5. */
static void inst_old_state(void)
{
	static uint8_t old[QFS_CHUNK_SIZE];
	uint32_t kl;
	const uint8_t *k;

	memset(old, 0x5a, sizeof(old));
	k = kdent(DIR_INO, "old", &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, (const uint8_t *)"o", 1), 0);
	k = kchunk(FILE_INO, 0, &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, old, sizeof(old)), 0);
	k = kdent(DIR_INO, "g2", &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G2, k, kl, (const uint8_t *)"y", 1), 0);
	ck_assert_int_eq(qfs_store_load_applied(st, G1, 5), 0);
	ck_assert_int_eq(qfs_store_sync(st), 0);
}

/* The old state of inst_old_state, untouched. */
static void inst_old_intact(void)
{
	static uint8_t got[QFS_CHUNK_SIZE];
	qfs_lsn_t lsn;
	uint64_t ballot;
	uint32_t kl;
	const uint8_t *k;

	k = kdent(DIR_INO, "old", &kl);
	assert_val(G1, k, kl, "o");
	k = kchunk(FILE_INO, 0, &kl);
	ck_assert_uint_eq(get_bytes(G1, k, kl, got, sizeof(got)), QFS_CHUNK_SIZE);
	ck_assert_uint_eq(got[0], 0x5a);
	ck_assert_uint_eq(got[QFS_CHUNK_SIZE - 1], 0x5a);
	k = kchunk(FILE_INO, 1, &kl);
	ck_assert(!present(G1, k, kl));
	ck_assert_int_eq(qfs_store_applied(st, G1, &lsn), 0);
	ck_assert_uint_eq(lsn, 5);
	ck_assert_int_eq(qfs_store_snap_point(st, G1, &lsn, &ballot), 0);
	ck_assert(lsn == 0 && ballot == 0);
}

/* Add chunks [from, to) of FILE_INO to in, asserting what it buffers. */
static void inst_add(struct qfs_store_install *in, uint64_t from, uint64_t to)
{
	static uint8_t val[QFS_CHUNK_SIZE];
	uint8_t k[QFS_KEY_MAX];

	for (uint64_t c = from; c < to; c++) {
		size_t kl = qfs_key_chunk(k, FILE_INO, c);

		inst_chunk(val, c);
		ck_assert_int_eq(qfs_store_install_item(in, k, kl, val, sizeof(val)), 0);
		ck_assert_uint_le(qfs_store_install_buffered(in), 2 * QFS_CHUNK_SIZE);
	}
}

/* A snapshot of 8 MiB in 128 KiB chunks on a store whose memtables may
 * hold 2 MiB and whose install files roll over at 1 MiB: the install
 * never buffers more than two items in memory (its counter, not RSS), it
 * spreads the items over several staging files, the old state stays
 * readable until commit,
 * commit replaces it wholly (old items gone, chunks checked by their 'c'
 * records), the staging files are gone, and it survives a reopen. */
START_TEST(test_install_bounded)
{
	static uint8_t got[QFS_CHUNK_SIZE], want[QFS_CHUNK_SIZE];
	struct qfs_store_opts o = { .memtable_bytes = QFS_STORE_MEMTABLE_MIN,
				    .install_file_bytes = 1u << 20 };
	struct qfs_store_install *in;
	qfs_lsn_t lsn;
	uint64_t ballot;
	uint32_t kl;
	const uint8_t *k;

	qfs_store_close(st);
	ck_assert_int_eq(qfs_store_open_opts(dir, &o, &st), 0);
	inst_old_state();
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	k = kdent(DIR_INO, "new", &kl); /* dentries sort before the chunks */
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, (const uint8_t *)"n", 1), 0);
	inst_add(in, 0, INST_CHUNKS);
	ck_assert_int_ge(staging_files(), INST_CHUNKS / 8); /* about 1 MiB each */
	inst_old_intact(); /* nothing visible before commit */
	ck_assert_int_eq(qfs_store_install_commit(in, 77, 99), 0);
	ck_assert_uint_gt(qfs_store_install_peak(st), 0);
	ck_assert_uint_le(qfs_store_install_peak(st), 2 * QFS_CHUNK_SIZE);
	ck_assert_uint_lt(qfs_store_install_peak(st) * 16, (uint64_t)INST_CHUNKS * QFS_CHUNK_SIZE);
	ck_assert_int_eq(staging_files(), 0);
	for (int pass = 0; pass < 2; pass++) {
		k = kdent(DIR_INO, "old", &kl);
		ck_assert(!present(G1, k, kl));
		k = kdent(DIR_INO, "new", &kl);
		assert_val(G1, k, kl, "n");
		k = kdent(DIR_INO, "g2", &kl);
		assert_val(G2, k, kl, "y");
		st->crc_fast = st->crc_slow = 0;
		for (uint64_t c = 0; c < INST_CHUNKS; c += 9) {
			k = kchunk(FILE_INO, c, &kl);
			inst_chunk(want, c);
			ck_assert_uint_eq(get_bytes(G1, k, kl, got, sizeof(got)), QFS_CHUNK_SIZE);
			ck_assert_mem_eq(got, want, QFS_CHUNK_SIZE);
		}
		ck_assert_uint_eq(st->crc_slow, 0); /* every chunk had its record */
		ck_assert_uint_gt(st->crc_fast, 0);
		ck_assert_int_eq(qfs_store_applied(st, G1, &lsn), 0);
		ck_assert_uint_eq(lsn, 77);
		ck_assert_int_eq(qfs_store_snap_point(st, G1, &lsn, &ballot), 0);
		ck_assert(lsn == 77 && ballot == 99);
		knext = 0;
		qfs_store_close(st);
		ck_assert_int_eq(qfs_store_open_opts(dir, &o, &st), 0);
	}
}
END_TEST

/* Keys out of order are refused (-EINVAL), and an aborted install leaves
 * the old state and no staging file. */
START_TEST(test_install_refused)
{
	struct qfs_store_install *in;
	uint8_t k[QFS_KEY_MAX];
	size_t kl;

	inst_old_state();
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	inst_add(in, 3, 5);
	kl = qfs_key_chunk(k, FILE_INO, 2);
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, (const uint8_t *)"x", 1), -EINVAL);
	qfs_store_install_abort(in);
	ck_assert_int_eq(staging_files(), 0);
	inst_old_intact();
	/* abort after a few items, then a later install of the group works */
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	inst_add(in, 1, 4);
	qfs_store_install_abort(in);
	ck_assert_int_eq(staging_files(), 0);
	inst_old_intact();
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	ck_assert_int_eq(qfs_store_install_commit(in, 9, 1), 0); /* an empty group */
	kl = qfs_key_chunk(k, FILE_INO, 0);
	ck_assert(!present(G1, k, (uint32_t)kl));
	/* a key out of order where a new staging file starts (every two
	 * chunks here): refused as well */
	struct qfs_store_opts o = { .install_file_bytes = 1 };
	qfs_store_close(st);
	ck_assert_int_eq(qfs_store_open_opts(dir, &o, &st), 0);
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	inst_add(in, 0, 2);
	kl = qfs_key_chunk(k, FILE_INO, 1);
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, (const uint8_t *)"x", 1), -EINVAL);
	qfs_store_install_abort(in);
	ck_assert_int_eq(staging_files(), 0);
	/* and in order, the small files install the whole snapshot */
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	inst_add(in, 0, 7);
	ck_assert_int_ge(staging_files(), 4);
	ck_assert_int_eq(qfs_store_install_commit(in, 12, 1), 0);
	ck_assert_int_eq(staging_files(), 0);
	for (uint64_t c = 0; c < 8; c++) {
		static uint8_t got[QFS_CHUNK_SIZE], want[QFS_CHUNK_SIZE];

		kl = qfs_key_chunk(k, FILE_INO, c);
		if (c == 7) {
			ck_assert(!present(G1, k, (uint32_t)kl));
			continue;
		}
		inst_chunk(want, c);
		ck_assert_uint_eq(get_bytes(G1, k, (uint32_t)kl, got, sizeof(got)), QFS_CHUNK_SIZE);
		ck_assert_mem_eq(got, want, QFS_CHUNK_SIZE);
	}
}
END_TEST

/* A crash in the middle of an install (a child process stops between two
 * chunks, without abort or close): the next open removes its staging files
 * and finds the old state intact. */
START_TEST(test_install_crash)
{
	inst_old_state();
	qfs_store_close(st);
	st = NULL;
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct qfs_store_install *in;

		if (qfs_store_open(dir, &st) || qfs_store_install_begin(st, G1, &in))
			_exit(2);
		inst_add(in, 0, 20);
		kill(getpid(), SIGKILL); /* the crash: nothing cleaned up */
		_exit(3);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
	ck_assert_int_ge(staging_files(), 2); /* what the crash left */
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
	ck_assert_int_eq(staging_files(), 0);
	inst_old_intact();
}
END_TEST

/* The old state still only in the memtables (never flushed, as a
 * replica's recent applies are: RocksDB's WAL is off) with its neighbours
 * G1 - 1 and G1 + 1 and the last group id: the ingestion's range deletes
 * hide the memtable's old items and 'c' records, the neighbours stay, a
 * write after the install (an apply) shadows the ingested value, and all
 * of it holds across a reopen.  The last group (its range ends at "e"
 * and "d") installs too without touching the others. */
START_TEST(test_install_memtable)
{
	static uint8_t got[QFS_CHUNK_SIZE], want[QFS_CHUNK_SIZE], old[QFS_CHUNK_SIZE];
	const qfs_group_t glast = UINT64_MAX;
	struct qfs_store_install *in;
	qfs_lsn_t lsn;
	uint32_t kl;
	const uint8_t *k;

	memset(old, 0x5a, sizeof(old));
	k = kdent(DIR_INO, "old", &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, (const uint8_t *)"o", 1), 0);
	ck_assert_int_eq(qfs_store_load_item(st, G1 - 1, k, kl, (const uint8_t *)"p", 1), 0);
	ck_assert_int_eq(qfs_store_load_item(st, G1 + 1, k, kl, (const uint8_t *)"q", 1), 0);
	ck_assert_int_eq(qfs_store_load_item(st, glast, k, kl, (const uint8_t *)"z", 1), 0);
	k = kchunk(FILE_INO, 0, &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, old, sizeof(old)), 0);
	ck_assert_int_eq(qfs_store_load_item(st, glast, k, kl, old, sizeof(old)), 0);
	k = kchunk(FILE_INO, 5, &kl); /* an old chunk the snapshot does not hold */
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, old, sizeof(old)), 0);
	ck_assert_int_eq(qfs_store_load_applied(st, G1, 5), 0);
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	k = kdent(DIR_INO, "new", &kl);
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, (const uint8_t *)"n", 1), 0);
	inst_add(in, 0, 2);
	ck_assert_int_eq(qfs_store_install_commit(in, 40, 2), 0);
	/* an apply after the install */
	k = kdent(DIR_INO, "new", &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, (const uint8_t *)"m", 1), 0);
	ck_assert_int_eq(qfs_store_install_begin(st, glast, &in), 0);
	ck_assert_int_eq(qfs_store_install_commit(in, 3, 1), 0); /* empty */
	for (int pass = 0; pass < 2; pass++) {
		k = kdent(DIR_INO, "old", &kl);
		ck_assert(!present(G1, k, kl));
		ck_assert(!present(glast, k, kl));
		assert_val(G1 - 1, k, kl, "p");
		assert_val(G1 + 1, k, kl, "q");
		k = kdent(DIR_INO, "new", &kl);
		assert_val(G1, k, kl, "m");
		st->crc_fast = st->crc_slow = 0;
		for (uint64_t c = 0; c < 2; c++) {
			k = kchunk(FILE_INO, c, &kl);
			inst_chunk(want, c);
			ck_assert_uint_eq(get_bytes(G1, k, kl, got, sizeof(got)), QFS_CHUNK_SIZE);
			ck_assert_mem_eq(got, want, QFS_CHUNK_SIZE);
		}
		ck_assert_uint_eq(st->crc_slow, 0); /* the old 'c' record of chunk 0 is gone */
		k = kchunk(FILE_INO, 5, &kl);
		ck_assert(!present(G1, k, kl));
		k = kchunk(FILE_INO, 0, &kl);
		ck_assert(!present(glast, k, kl));
		ck_assert_int_eq(qfs_store_applied(st, G1, &lsn), 0);
		ck_assert_uint_eq(lsn, 40);
		ck_assert_int_eq(qfs_store_applied(st, glast, &lsn), 0);
		ck_assert_uint_eq(lsn, 3);
		knext = 0;
		ck_assert_int_eq(qfs_store_sync(st), 0);
		reopen();
	}
}
END_TEST

/* A commit on a full disk while the group's old state is only in the
 * memtables: the ingestion would have to flush them first, and a flush
 * that hits a full disk leaves RocksDB with a background error (every
 * later write of every group of the store fails; Debian's 7.8 can even
 * abort, store.c qfs_store_sync).  Commit goes through qfs_store_sync's
 * checks instead: -ENOSPC, the old state intact, the staging files gone,
 * and once there is room again the store works and the install goes in.
 * The store is on a 24 MiB tmpfs mounted in the private mount namespace
 * main() made (it goes away with the test's processes). */
START_TEST(test_install_full_disk)
{
	static uint8_t old[QFS_CHUNK_SIZE], fill[1 << 16];
	char mnt[128], sdir[160], filler[160];
	struct qfs_store *s2;
	struct qfs_store_install *in;
	struct statvfs sv;
	uint32_t kl;
	const uint8_t *k;
	char *v;
	size_t vl;

	if (!private_mounts) {
		fprintf(stderr, "test_install_full_disk skipped: no private mount namespace\n");
		return;
	}
	snprintf(mnt, sizeof(mnt), "%s/t", dir);
	snprintf(sdir, sizeof(sdir), "%s/db", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	ck_assert_int_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=24m"), 0);
	ck_assert_int_eq(qfs_store_open(sdir, &s2), 0);
	for (size_t i = 0; i < sizeof(old); i++)
		old[i] = (uint8_t)(i * 131 + 7);
	k = kdent(DIR_INO, "old", &kl);
	ck_assert_int_eq(qfs_store_load_item(s2, G1, k, kl, (const uint8_t *)"o", 1), 0);
	for (uint64_t c = 0; c < 8; c++) { /* 1 MiB in the memtables */
		k = kchunk(FILE_INO, c, &kl);
		old[0] = (uint8_t)c;
		ck_assert_int_eq(qfs_store_load_item(s2, G1, k, kl, old, sizeof(old)), 0);
	}
	ck_assert_int_eq(qfs_store_load_applied(s2, G1, 5), 0);
	ck_assert_int_eq(qfs_store_install_begin(s2, G1, &in), 0);
	k = kdent(DIR_INO, "new", &kl);
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, (const uint8_t *)"n", 1), 0);
	/* the disk fills up: 256 KiB left */
	int fd = open(filler, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(statvfs(mnt, &sv), 0);
	for (uint64_t left = (uint64_t)sv.f_bavail * sv.f_frsize - (256u << 10); left;) {
		size_t n = left < sizeof(fill) ? left : sizeof(fill);

		for (size_t i = 0; i < n; i++)
			fill[i] = (uint8_t)(left + i * 7);
		ck_assert_int_eq(write(fd, fill, n), (ssize_t)n);
		left -= n;
	}
	close(fd);
	ck_assert_int_eq(qfs_store_install_commit(in, 40, 2), -ENOSPC);
	ck_assert_int_eq(qfs_store_applied(s2, G1, &(qfs_lsn_t){ 0 }), 0);
	k = kdent(DIR_INO, "old", &kl);
	ck_assert_int_eq(qfs_store_get(s2, G1, k, kl, (void **)&v, &vl), 0);
	free(v);
	k = kdent(DIR_INO, "new", &kl);
	ck_assert_int_eq(qfs_store_get(s2, G1, k, kl, (void **)&v, &vl), -ENOENT);
	snprintf(filler, sizeof(filler), "%s/t/db/qfs-install", dir);
	DIR *d = opendir(filler);
	ck_assert_ptr_nonnull(d);
	for (struct dirent *de; (de = readdir(d));)
		ck_assert_msg(de->d_name[0] == '.', "staging file %s left", de->d_name);
	closedir(d);
	/* room again: the store still takes writes and flushes, the install works */
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	ck_assert_int_eq(unlink(filler), 0);
	k = kdent(DIR_INO, "other", &kl);
	ck_assert_int_eq(qfs_store_load_item(s2, G2, k, kl, (const uint8_t *)"y", 1), 0);
	ck_assert_int_eq(qfs_store_sync(s2), 0);
	ck_assert_int_eq(qfs_store_install_begin(s2, G1, &in), 0);
	k = kdent(DIR_INO, "new", &kl);
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, (const uint8_t *)"n", 1), 0);
	ck_assert_int_eq(qfs_store_install_commit(in, 40, 2), 0);
	ck_assert_int_eq(qfs_store_get(s2, G1, k, kl, (void **)&v, &vl), 0);
	free(v);
	k = kdent(DIR_INO, "old", &kl);
	ck_assert_int_eq(qfs_store_get(s2, G1, k, kl, (void **)&v, &vl), -ENOENT);
	qfs_store_close(s2);
	ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
}
END_TEST

/* ---- two-phase commit (doc/xact.md) ---- */

static uint8_t txids[4][QFS_TXID_LEN];

static const uint8_t *txid_of(int i)
{
	qfs_be64_put(txids[i], 1);
	qfs_be64_put(txids[i] + 8, 1000u + (uint64_t)i);
	return txids[i];
}

/* Apply PREPARE(txid, sub) to g; closes sub; returns the result. */
static int prepare_id(qfs_group_t g, const uint8_t *txid, struct qfs_txn *sub)
{
	struct qfs_buf b;
	struct qfs_txn t;
	int res;

	qfs_buf_init(&b);
	qfs_txn_encode(sub, &b);
	qfs_txn_close(sub);
	qfs_txn_init(&t);
	struct qfs_op *op = add(&t, QFS_OP_PREPARE, txid, QFS_TXID_LEN);
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	res = APPLY(g, &t);
	qfs_buf_close(&b);
	return res;
}

/* Apply PREPARE(txid i, sub) to g; closes sub; returns the result. */
static int prepare(qfs_group_t g, int i, struct qfs_txn *sub)
{
	return prepare_id(g, txid_of(i), sub);
}

static int xop_id(qfs_group_t g, enum qfs_op_kind kind, const uint8_t *txid, const char *val)
{
	struct qfs_txn t;
	qfs_txn_init(&t);
	struct qfs_op *op = add(&t, kind, txid, QFS_TXID_LEN);
	if (val) {
		op->val = (const uint8_t *)val;
		op->val_len = (uint32_t)strlen(val);
	}
	return APPLY(g, &t);
}

static int xop(qfs_group_t g, enum qfs_op_kind kind, int i, const char *val)
{
	return xop_id(g, kind, txid_of(i), val);
}

static int put1(qfs_group_t g, const uint8_t *k, uint32_t kl, const char *v)
{
	struct qfs_txn t;
	qfs_txn_init(&t);
	add_put(&t, k, kl, v);
	return APPLY(g, &t);
}

static int count_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)k; (void)kl; (void)v; (void)vl;
	(*(int *)arg)++;
	return 0;
}

/* Reserved records of tag in g. */
static int nxact(qfs_group_t g, uint8_t tag)
{
	uint8_t lo[QFS_KEY_PREFIX_LEN + 2], hi[QFS_KEY_PREFIX_LEN + 2];
	int n = 0;
	qfs_key_xact_range(lo, hi, tag);
	ck_assert_int_eq(qfs_store_scan(st, g, lo, sizeof(lo), hi, sizeof(hi), count_cb, &n), 0);
	return n;
}

/* Prepared records of g. */
static int nprepared(qfs_group_t g)
{
	return nxact(g, QFS_KEY_XACT_PREPARED);
}

START_TEST(test_xact_prepare_commit)
{
	struct qfs_txn t;
	uint32_t al, bl, cl;
	const uint8_t *a = kdent(DIR_INO, "a", &al), *b = kdent(DIR_INO, "b", &bl);
	const uint8_t *c = kdent(DIR_INO, "c", &cl);

	ck_assert_int_eq(put1(G1, a, al, "old"), 0);
	qfs_txn_init(&t);
	add_put(&t, a, al, "new");
	add_put(&t, b, bl, "bee");
	add_expect(&t, QFS_OP_EXPECT_PRESENT, a, al, -ENOENT);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	assert_val(G1, a, al, "old"); /* read committed: the old value until COMMIT */
	ck_assert(!present(G1, b, bl));
	ck_assert_int_eq(nprepared(G1), 1);

	/* a retried PREPARE changes nothing; another sub-txn under the same
	 * txid (a clash of ids) is refused */
	qfs_txn_init(&t);
	add_put(&t, a, al, "new");
	add_put(&t, b, bl, "bee");
	add_expect(&t, QFS_OP_EXPECT_PRESENT, a, al, -ENOENT);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	qfs_txn_init(&t);
	add_put(&t, a, al, "other");
	ck_assert_int_eq(prepare(G1, 0, &t), -EEXIST);
	ck_assert_int_eq(nprepared(G1), 1);

	/* locked keys: writes and reads in txns are refused, others pass */
	ck_assert_int_eq(put1(G1, a, al, "x"), -EBUSY);
	ck_assert_int_eq(put1(G1, b, bl, "x"), -EBUSY);
	qfs_txn_init(&t);
	add_expect(&t, QFS_OP_EXPECT_ABSENT, b, bl, -EEXIST);
	ck_assert_int_eq(APPLY(G1, &t), -EBUSY);
	ck_assert_int_eq(put1(G1, c, cl, "sea"), 0);
	ck_assert_int_eq(put1(G2, a, al, "g2"), 0); /* another group has no locks */
	qfs_txn_init(&t);
	add_put(&t, b, bl, "two");
	ck_assert_int_eq(prepare(G1, 1, &t), -EBUSY); /* another txid on a locked key */
	ck_assert_int_eq(nprepared(G1), 1);
	/* locks are checked before conditions: b is absent now but may not
	 * be once txid 0 commits, so the answer is -EBUSY, not 0 or -EEXIST */
	qfs_txn_init(&t);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, b, bl, -ENOENT);
	ck_assert_int_eq(prepare(G1, 1, &t), -EBUSY);
	qfs_txn_init(&t);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, b, bl, -ENOENT);
	ck_assert_int_eq(APPLY(G1, &t), -EBUSY);

	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	assert_val(G1, a, al, "new");
	assert_val(G1, b, bl, "bee");
	ck_assert_int_eq(nprepared(G1), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0); /* done already */
	assert_val(G1, a, al, "new");
	ck_assert_int_eq(put1(G1, a, al, "free"), 0);
	assert_val(G1, a, al, "free");
}
END_TEST

START_TEST(test_xact_abort_and_fail)
{
	struct qfs_txn t;
	uint32_t al, bl;
	const uint8_t *a = kdent(DIR_INO, "a", &al), *b = kdent(DIR_INO, "b", &bl);

	ck_assert_int_eq(put1(G1, a, al, "old"), 0);
	qfs_txn_init(&t);
	add_put(&t, b, bl, "bee");
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_ABORT, 0, NULL), 0);
	ck_assert(!present(G1, b, bl));
	ck_assert_int_eq(nprepared(G1), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_ABORT, 0, NULL), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0); /* nothing left to commit */
	ck_assert(!present(G1, b, bl));
	ck_assert_int_eq(put1(G1, b, bl, "free"), 0);

	/* a failed condition: that error, nothing kept, nothing locked */
	qfs_txn_init(&t);
	add_put(&t, b, bl, "bee2");
	add_expect(&t, QFS_OP_EXPECT_ABSENT, a, al, -EEXIST);
	ck_assert_int_eq(prepare(G1, 1, &t), -EEXIST);
	ck_assert_int_eq(nprepared(G1), 0);
	ck_assert_int_eq(put1(G1, a, al, "x"), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 1, NULL), 0);
	assert_val(G1, b, bl, "free");
}
END_TEST

/* The fence cache (store.c) against the writers test_fence_cache leaves
 * out: a 2PC commit of a prepared sub-txn that writes the fence (its
 * RANGE op read, and cached, the old record at prepare), an ordinary txn
 * applied while a txn is prepared (store_xact_eval), a DEL_RANGE over the
 * fence, and two groups that share a slot of both caches (G1 and
 * G1 + 64: the same (g ^ g >> 17) % 64). */
START_TEST(test_fence_cache_writers)
{
	const qfs_group_t gs = G1 + 64; /* G1's slot */
	struct qfs_txn t;
	uint8_t rec[8], ep[8];
	uint32_t al;
	const uint8_t *a = kdent(DIR_INO, "a", &al);

	/* 2PC: prepared against epoch 0 (cached), the commit writes 3 */
	ck_assert_int_eq(fence_res(G1, 0), 0);
	qfs_txn_init(&t);
	qfs_be64_put(ep, 0);
	add_fence(&t, ep);
	qfs_be64_put(rec, 3);
	add_put_bytes(&t, (const uint8_t *)"", 0, rec, 8);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_int_eq(fence_res(G1, 0), 0); /* prepared, not written */
	ck_assert_int_eq(fence_res(G1, 3), QFS_ESTALE);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	ck_assert_int_eq(fence_res(G1, 0), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 3), 0);

	/* an ordinary txn while another is prepared (under locks) */
	qfs_txn_init(&t);
	add_put(&t, a, al, "x");
	ck_assert_int_eq(prepare(G1, 1, &t), 0);
	ck_assert_int_eq(fence_res(G1, 3), 0);
	qfs_txn_init(&t);
	qfs_be64_put(rec, 4);
	add_put_bytes(&t, (const uint8_t *)"", 0, rec, 8);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(fence_res(G1, 3), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 4), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_ABORT, 1, NULL), 0);
	ck_assert_int_eq(fence_res(G1, 4), 0);

	/* a DEL_RANGE that takes the fence with it */
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, (const uint8_t *)"", 0, (const uint8_t *)"\x01", 1, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(fence_res(G1, 4), QFS_ESTALE);
	ck_assert_int_eq(fence_res(G1, 0), 0);

	/* two groups in one slot: each sees its own fence and applied LSN */
	qfs_be64_put(rec, 9);
	qfs_txn_init(&t);
	add_put_bytes(&t, (const uint8_t *)"", 0, rec, 8);
	ck_assert_int_eq(APPLY(gs, &t), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(fence_res(G1, 0), 0);
		ck_assert_int_eq(fence_res(gs, 9), 0);
		ck_assert_int_eq(fence_res(gs, 0), QFS_ESTALE);
		ck_assert_int_eq(fence_res(G1, 9), QFS_ESTALE);
	}
	qfs_lsn_t a1 = applied(G1), as = applied(gs);
	ck_assert_uint_ne(a1, as);
	ck_assert_int_eq(qfs_store_apply_noop(st, gs, as + 1), 0);
	ck_assert_uint_eq(applied(G1), a1);
	ck_assert_int_eq(qfs_store_apply_noop(st, G1, a1 + 1), 0);
	ck_assert_uint_eq(applied(gs), as + 1);
	ck_assert_int_eq(qfs_store_drop_group(st, gs), 0);
	ck_assert_uint_eq(applied(G1), a1 + 1);
	ck_assert_uint_eq(applied(gs), 0);
	ck_assert_int_eq(fence_res(gs, 0), 0);
	ck_assert_int_eq(fence_res(G1, 0), 0);
}
END_TEST

START_TEST(test_xact_ranges)
{
	struct qfs_txn t;
	uint32_t lol, hil, c5l, o5l, al, el, eh;
	const uint8_t *lo = kchunk(FILE_INO, 0, &lol), *hi = kchunk(FILE_INO, 8, &hil);
	const uint8_t *c5 = kchunk(FILE_INO, 5, &c5l), *o5 = kchunk(FILE_INO + 1, 5, &o5l);
	const uint8_t *a = kdent(DIR_INO, "a", &al);
	const uint8_t *e0 = kdent(DIR_INO, "0", &el), *e9 = kdent(DIR_INO, "z", &eh);

	put_chunks(G1, FILE_INO, 3);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, lo, lol, hi, hil, 0);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_int_eq(nchunks(G1, FILE_INO), 3);
	ck_assert_int_eq(put1(G1, c5, c5l, "in range"), -EBUSY); /* absent key inside a locked range */
	ck_assert_int_eq(put1(G1, o5, o5l, "elsewhere"), 0);
	qfs_txn_init(&t);
	add_put(&t, c5, c5l, "x");
	ck_assert_int_eq(prepare(G1, 1, &t), -EBUSY);

	/* a range read that covers a point locked by another prepared txn */
	qfs_txn_init(&t);
	add_put(&t, a, al, "a");
	ck_assert_int_eq(prepare(G1, 2, &t), 0);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_EXPECT_EMPTY, e0, el, e9, eh, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), -EBUSY);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 2, NULL), 0);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_EXPECT_EMPTY, e0, el, e9, eh, -ENOTEMPTY);
	ck_assert_int_eq(APPLY(G1, &t), -ENOTEMPTY);

	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	ck_assert_int_eq(nchunks(G1, FILE_INO), 0);
	ck_assert_int_eq(put1(G1, c5, c5l, "now"), 0);
}
END_TEST

START_TEST(test_xact_link_drop)
{
	struct qfs_txn t;
	uint32_t kl;
	const uint8_t *k = kino(FILE_INO, &kl);

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	put_chunks(G1, FILE_INO, 3);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_ADD, k, kl)->limit = 10;
	ck_assert_int_eq(APPLY(G1, &t), 0);

	/* decided at prepare from the stored nlink (2): not the last link */
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 2);
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), -EBUSY); /* the inode is locked */
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	ck_assert_uint_eq(nlink_of(G1, FILE_INO), 1);
	ck_assert_int_eq(nchunks(G1, FILE_INO), 3);

	/* the last link: the inode and its chunks go at COMMIT, and the
	 * chunk range is locked meanwhile */
	qfs_txn_init(&t);
	add(&t, QFS_OP_LINK_DROP, k, kl);
	ck_assert_int_eq(prepare(G1, 1, &t), 0);
	ck_assert(present(G1, k, kl));
	uint32_t c7l;
	const uint8_t *c7 = kchunk(FILE_INO, 7, &c7l);
	ck_assert_int_eq(put1(G1, c7, c7l, "late"), -EBUSY);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 1, NULL), 0);
	ck_assert(!present(G1, k, kl));
	ck_assert_int_eq(nchunks(G1, FILE_INO), 0);
}
END_TEST

START_TEST(test_xact_decide)
{
	struct qfs_txn t, sub;
	uint32_t al;
	const uint8_t *a = kdent(DIR_INO, "a", &al);
	uint8_t rk[QFS_KEY_XACT_LEN];

	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "C"), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "C"), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "A"), -EALREADY);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "F"), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "A"), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "C"), -EALREADY);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "F"), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "F"), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "Q"), -EINVAL);
	ck_assert_int_eq(xop(G1, QFS_OP_DECIDE, 0, "CC"), -EINVAL);

	/* malformed uses */
	qfs_txn_init(&t);
	add(&t, QFS_OP_COMMIT, a, 5);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL); /* txid of the wrong length */
	qfs_txn_init(&t);
	add(&t, QFS_OP_COMMIT, txid_of(0), QFS_TXID_LEN);
	add_put(&t, a, al, "x");
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL); /* a 2PC op with others */
	qfs_txn_init(&t);
	add_put(&t, a, al, "x");
	add(&t, QFS_OP_ABORT, txid_of(0), QFS_TXID_LEN);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
	qfs_txn_init(&sub);
	add(&sub, QFS_OP_COMMIT, txid_of(1), QFS_TXID_LEN);
	ck_assert_int_eq(prepare(G1, 0, &sub), -EINVAL); /* 2PC inside a PREPARE */
	qfs_txn_init(&t);
	struct qfs_op *op = add(&t, QFS_OP_PREPARE, txid_of(0), QFS_TXID_LEN);
	op->val = (const uint8_t *)"junk";
	op->val_len = 4;
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL); /* undecodable sub-txn */
	ck_assert_int_eq(nprepared(G1), 0);

	/* the reserved keys are not items: no op reaches them */
	qfs_key_xact(rk, QFS_KEY_XACT_DECISION, txid_of(0));
	ck_assert_int_eq(put1(G1, rk, sizeof(rk), "C"), -EINVAL);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, a, al, rk, sizeof(rk), 0);
	ck_assert_int_eq(APPLY(G1, &t), -EINVAL);
}
END_TEST

/* A duplicate PREPARE (a proposal the cell retried, or one that timed
 * out and commits late) applied after its txid's COMMIT or ABORT, before
 * the coordinator forgets the decision, prepares nothing: else a recovery
 * would COMMIT the new record again (its effects a second time) or the
 * keys would stay locked.  Outcomes go after a keep time in txid time. */
START_TEST(test_xact_duplicate_prepare)
{
	struct qfs_txn t;
	uint32_t bl;
	const uint8_t *b = kdent(DIR_INO, "b", &bl);
	uint8_t old[QFS_TXID_LEN], late[QFS_TXID_LEN], now[QFS_TXID_LEN];

	/* committed, then the user deletes b; the duplicate must not bring it back */
	qfs_txn_init(&t);
	add_put(&t, b, bl, "bee");
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	assert_val(G1, b, bl, "bee");
	qfs_txn_init(&t);
	add(&t, QFS_OP_DEL, b, bl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	qfs_txn_init(&t);
	add_put(&t, b, bl, "bee");
	ck_assert_int_eq(prepare(G1, 0, &t), 0); /* as the first one answered */
	ck_assert_int_eq(nprepared(G1), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0); /* a recovery's COMMIT */
	ck_assert(!present(G1, b, bl));
	ck_assert_int_eq(put1(G1, b, bl, "free"), 0); /* nothing locked */

	/* aborted: the duplicate is refused like a late 'C' (-EALREADY) */
	qfs_txn_init(&t);
	add_put(&t, b, bl, "two");
	ck_assert_int_eq(prepare(G1, 1, &t), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_ABORT, 1, NULL), 0);
	qfs_txn_init(&t);
	add_put(&t, b, bl, "two");
	ck_assert_int_eq(prepare(G1, 1, &t), -EALREADY);
	ck_assert_int_eq(nprepared(G1), 0);

	/* a PREPARE that lands after the ABORT of its run (it timed out) */
	ck_assert_int_eq(xop(G1, QFS_OP_ABORT, 2, NULL), 0);
	qfs_txn_init(&t);
	add_put(&t, b, bl, "three");
	ck_assert_int_eq(prepare(G1, 2, &t), -EALREADY);
	ck_assert_int_eq(nprepared(G1), 0);
	assert_val(G1, b, bl, "free");
	ck_assert_int_eq(nxact(G1, QFS_KEY_XACT_OUTCOME), 3);
	ck_assert_int_eq(nxact(G2, QFS_KEY_XACT_OUTCOME), 0);

	/* outcomes are forgotten in bulk once 45 minutes older than a new
	 * one of the same coordinator (30 min keep + half of it again);
	 * coordinator 2 here, whose ids carry real times */
	uint64_t t0 = 1700000000000ull;
	qfs_be64_put(old, 2);
	qfs_be64_put(old + 8, t0 << 20);
	qfs_be64_put(late, 2);
	qfs_be64_put(late + 8, (t0 + 20 * 60000) << 20);
	qfs_be64_put(now, 2);
	ck_assert_int_eq(xop_id(G1, QFS_OP_ABORT, old, NULL), 0);
	ck_assert_int_eq(xop_id(G1, QFS_OP_ABORT, late, NULL), 0);
	ck_assert_int_eq(nxact(G1, QFS_KEY_XACT_OUTCOME), 5);
	qfs_be64_put(now + 8, (t0 + 44 * 60000) << 20);
	ck_assert_int_eq(xop_id(G1, QFS_OP_ABORT, now, NULL), 0);
	ck_assert_int_eq(nxact(G1, QFS_KEY_XACT_OUTCOME), 6); /* none 45 min old yet */
	qfs_be64_put(now + 8, (t0 + 46 * 60000) << 20);
	ck_assert_int_eq(xop_id(G1, QFS_OP_ABORT, now, NULL), 0);
	ck_assert_int_eq(nxact(G1, QFS_KEY_XACT_OUTCOME), 6); /* old went (all up to 30 min) */
	qfs_txn_init(&t);
	add_put(&t, b, bl, "four");
	qfs_be64_put(now + 8, ((t0 + 46 * 60000) << 20) + 1);
	ck_assert_int_eq(prepare_id(G1, now, &t), 0);
	ck_assert_int_eq(xop_id(G1, QFS_OP_COMMIT, now, NULL), 0);
	assert_val(G1, b, bl, "four");
	ck_assert_int_eq(nxact(G1, QFS_KEY_XACT_OUTCOME), 7);
	qfs_txn_init(&t);
	add_put(&t, b, bl, "late");
	ck_assert_int_eq(prepare_id(G1, late, &t), -EALREADY); /* 26 min: kept */
	qfs_txn_init(&t);
	add_put(&t, b, bl, "old");
	ck_assert_int_eq(prepare_id(G1, old, &t), 0); /* forgotten: prepares */
	ck_assert_int_eq(xop_id(G1, QFS_OP_ABORT, old, NULL), 0);
	/* the ids of coordinator 1 (time 0) are another coordinator's: kept */
	qfs_txn_init(&t);
	add_put(&t, b, bl, "two");
	ck_assert_int_eq(prepare(G1, 1, &t), -EALREADY);
	ck_assert_int_eq(nprepared(G1), 0);
}
END_TEST

/* Two runs that drew the same txid (two routers of one coordinator in the
 * same ms with the same 20-bit counter): the second one's PREPARE, applied
 * after the first one's COMMIT, is no duplicate (another sub-txn) and must
 * not answer 0 with nothing prepared, which would let its run commit with
 * this part's writes silently missing; it answers -EALREADY, so its run
 * aborts and retries with a new txid.  A true duplicate still answers 0. */
START_TEST(test_xact_txid_clash_after_commit)
{
	struct qfs_txn t;
	uint32_t bl, cl;
	const uint8_t *b = kdent(DIR_INO, "b", &bl), *c = kdent(DIR_INO, "c", &cl);

	qfs_txn_init(&t);
	add_put(&t, b, bl, "first");
	ck_assert_int_eq(prepare(G1, 3, &t), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 3, NULL), 0);
	assert_val(G1, b, bl, "first");
	qfs_txn_init(&t);
	add_put(&t, c, cl, "second"); /* the other run's sub-txn */
	ck_assert_int_eq(prepare(G1, 3, &t), -EALREADY);
	ck_assert_int_eq(nprepared(G1), 0);
	ck_assert(!present(G1, c, cl));
	qfs_txn_init(&t);
	add_put(&t, b, bl, "first"); /* the first run's own duplicate */
	ck_assert_int_eq(prepare(G1, 3, &t), 0);
	ck_assert_int_eq(nprepared(G1), 0);
	assert_val(G1, b, bl, "first");
}
END_TEST

/* A prepared create rewrites the count of inodes in the group's own inode:
 * that inode is locked, so another create waits, and the count is exact
 * after both. */
START_TEST(test_xact_count_lock)
{
	struct qfs_txn t;
	struct qfs_inode in;
	struct qfs_buf b;
	uint32_t k1l, k2l;
	const uint8_t *k1 = kino(FILE_INO, &k1l), *k2 = kino(FILE_INO + 1, &k2l);

	put_inode(G1, G1, S_IFDIR | 0755); /* the group's inode (a table directory) */
	uint64_t before = ninodes_of(G1, G1);
	qfs_inode_init(&in);
	in.a.ino = FILE_INO;
	in.a.mode = S_IFREG | 0644;
	in.a.nlink = 1;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	qfs_txn_init(&t);
	add_put_bytes(&t, k1, k1l, b.data, b.len);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_uint_eq(ninodes_of(G1, G1), before);
	qfs_txn_init(&t);
	add_put_bytes(&t, k2, k2l, b.data, b.len);
	ck_assert_int_eq(APPLY(G1, &t), -EBUSY); /* its count change meets the lock */
	ck_assert(!present(G1, k2, k2l));
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	ck_assert_uint_eq(ninodes_of(G1, G1), before + 1);
	qfs_txn_init(&t);
	add_put_bytes(&t, k2, k2l, b.data, b.len);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(ninodes_of(G1, G1), before + 2);
	qfs_buf_close(&b);
	qfs_inode_close(&in);
}
END_TEST

static int collect_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	qfs_buf_put_bytes(arg, k, kl);
	qfs_buf_put_bytes(arg, v, vl);
	return 0;
}

/* A snapshot of the group (what the rnode sends a lagging replica) carries
 * its prepared txns: installed over a replica that had committed it, the
 * record, its locks and its effects come back with it. */
START_TEST(test_xact_snapshot_install)
{
	struct qfs_store_install *in;
	struct qfs_txn t;
	struct qfs_buf snap;
	struct qfs_rd r;
	qfs_lsn_t at;
	uint32_t al;
	const uint8_t *a = kdent(DIR_INO, "a", &al);

	qfs_txn_init(&t);
	add_put(&t, a, al, "prepared");
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	qfs_buf_init(&snap);
	ck_assert_int_eq(qfs_store_snapshot_scan(st, G1, &at, collect_cb, &snap), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	ck_assert_int_eq(put1(G1, a, al, "after"), 0);

	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	qfs_rd_init(&r, snap.data, snap.len);
	while (qfs_rd_left(&r)) {
		size_t kl, vl;
		const uint8_t *k = qfs_rd_bytes(&r, &kl), *v = qfs_rd_bytes(&r, &vl);
		ck_assert_int_eq(qfs_store_install_item(in, k, kl, v, vl), 0);
	}
	ck_assert_int_eq(qfs_store_install_commit(in, at, 1), 0);
	ck_assert_int_eq(nprepared(G1), 1);
	ck_assert(!present(G1, a, al));
	ck_assert_int_eq(put1(G1, a, al, "x"), -EBUSY); /* the count was rebuilt */
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	assert_val(G1, a, al, "prepared");
	qfs_buf_close(&snap);
}
END_TEST

/* A prepared record that does not decode (a damaged replica): COMMIT and
 * any txn that must check the locks fail the apply with QFS_ECORRUPT
 * (nothing written, the applied LSN stays: not a committed outcome), and
 * ABORT still removes it. */
START_TEST(test_xact_corrupt_record)
{
	uint8_t rk[QFS_KEY_XACT_LEN];
	struct qfs_txn t;
	struct qfs_buf b;
	uint32_t al;
	const uint8_t *a = kdent(DIR_INO, "a", &al);
	qfs_lsn_t before;
	int res = 7;

	qfs_key_xact(rk, QFS_KEY_XACT_PREPARED, txid_of(0));
	ck_assert_int_eq(qfs_store_load_item(st, G1, rk, sizeof(rk), (const uint8_t *)"junk", 4), 0);
	qfs_txn_init(&t);
	add(&t, QFS_OP_COMMIT, txid_of(0), QFS_TXID_LEN);
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	before = applied(G1);
	ck_assert_int_eq(qfs_store_apply(st, G1, before + 1, b.data, b.len, &res), QFS_ECORRUPT);
	ck_assert_int_eq(res, 7);
	qfs_buf_close(&b);
	qfs_txn_close(&t);
	qfs_txn_init(&t);
	add_put(&t, a, al, "x");
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	ck_assert_int_eq(qfs_store_apply(st, G1, before + 1, b.data, b.len, &res), QFS_ECORRUPT);
	qfs_buf_close(&b);
	qfs_txn_close(&t);
	ck_assert_uint_eq(applied(G1), before);
	ck_assert_int_eq(xop(G1, QFS_OP_ABORT, 0, NULL), 0);
	ck_assert_int_eq(nprepared(G1), 0);
	ck_assert_int_eq(put1(G1, a, al, "x"), 0);
}
END_TEST

/* The count of prepared txns is rebuilt after a reopen, the record goes
 * with the group's snapshots and its drop, and the encoder writes txn
 * version 3 only for the 2PC ops. */
START_TEST(test_xact_reopen_snapshot_drop)
{
	struct qfs_txn t;
	struct qfs_buf b;
	qfs_lsn_t at;
	uint32_t al;
	const uint8_t *a = kdent(DIR_INO, "a", &al);
	int n = 0;

	qfs_txn_init(&t);
	add_put(&t, a, al, "x");
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	ck_assert_uint_eq(b.data[0], 1);
	qfs_buf_close(&b);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	reopen();
	ck_assert_int_eq(put1(G1, a, al, "y"), -EBUSY);
	ck_assert_int_eq(qfs_store_snapshot_scan(st, G1, &at, count_cb, &n), 0);
	ck_assert_int_eq(n, 1); /* the prepared record is part of the group */
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert_int_eq(nprepared(G1), 0);
	ck_assert_int_eq(put1(G1, a, al, "y"), 0); /* no lock survives the drop */
	reopen();
	ck_assert_int_eq(put1(G1, a, al, "z"), 0);
}
END_TEST

/* ---- the value log (doc/format-store.md "Value log") ---- */

#define VLOG_JUNK 100 /* bytes before the entry in a fake segment file */

/* Random bytes (never a run of zeros). */
static void fill_rand(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)((seed >> 16) | 1);
	}
}

/* Apply t at applied + 1 of g as an entry of a fake WAL segment
 * dir/wal/<seg>.wal: the encoded txn is written to that file at
 * VLOG_JUNK (appended when the file exists), and handed to
 * qfs_store_apply_src with its place.  Closes t; returns the result. */
static int apply_seg(qfs_group_t g, struct qfs_txn *t, qfs_lsn_t seg)
{
	char wd[128], path[192];
	struct qfs_buf b;
	struct stat sb;
	int fd, res = 12345;
	off_t off;

	snprintf(wd, sizeof(wd), "%s/wal", dir);
	(void)mkdir(wd, 0755);
	snprintf(path, sizeof(path), "%s/%016llx.wal", wd, (unsigned long long)seg);
	qfs_buf_init(&b);
	qfs_txn_encode(t, &b);
	ck_assert_int_eq(b.err, 0);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	off = sb.st_size ? sb.st_size : VLOG_JUNK;
	ck_assert_int_eq(pwrite(fd, b.data, b.len, off), (ssize_t)b.len);
	close(fd);
	struct qfs_store_src src = { .seg_dir = wd, .seg_first = seg, .off = (uint64_t)off, .base = b.data,
				     .len = b.len };
	ck_assert_int_eq(qfs_store_apply_src(st, g, applied(g) + 1, b.data, b.len, &src, &res), 0);
	ck_assert_int_ne(res, 12345);
	qfs_buf_close(&b);
	qfs_txn_close(t);
	return res;
}

/* PUT one chunk (n random bytes from seed) of FILE_INO, entry in seg. */
static int put_chunk_seg(qfs_group_t g, uint64_t c, size_t n, unsigned seed, qfs_lsn_t seg, uint8_t *out)
{
	struct qfs_txn t;
	uint32_t kl;

	fill_rand(out, n, seed);
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, c, &kl);
	add_put_bytes(&t, kp, kl, out, n);
	return apply_seg(g, &t, seg);
}

/* Length of the raw 'c' record of chunk c of FILE_INO in g (0: absent),
 * and of its raw 'd' value in *dlen. */
static size_t raw_rec(qfs_group_t g, uint64_t c, size_t *dlen)
{
	uint8_t k[STORE_DBKEY_MAX];
	uint32_t kl;
	size_t klen, vl = 0, dl = 0;
	char *err = NULL, *v;
	const uint8_t *ck = kchunk(FILE_INO, c, &kl);
	uint8_t *kk = store_item_key(k, sizeof(k), g, ck, kl, &klen);

	ck_assert_ptr_eq(kk, k);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	v = rocksdb_get(st->db, ro, (const char *)k, klen, &dl, &err);
	ck_assert_ptr_null(err);
	*dlen = v ? dl : (size_t)-1;
	rocksdb_free(v);
	k[0] = STORE_CRC_PREFIX;
	v = rocksdb_get(st->db, ro, (const char *)k, klen, &vl, &err);
	ck_assert_ptr_null(err);
	rocksdb_free(v);
	rocksdb_readoptions_destroy(ro);
	return v ? vl : 0;
}

static void assert_chunk(qfs_group_t g, uint64_t c, const uint8_t *want, size_t n)
{
	uint32_t kl;
	const uint8_t *k = kchunk(FILE_INO, c, &kl);
	struct qfs_val v = { 0 };
	void *p;
	size_t pl;

	ck_assert_int_eq(qfs_store_get(st, g, k, kl, &p, &pl), 0);
	ck_assert_uint_eq(pl, n);
	ck_assert_int_eq(memcmp(p, want, n), 0);
	free(p);
	ck_assert_int_eq(qfs_store_get_val(st, g, k, kl, &v), 0);
	ck_assert_uint_eq(v.len, n);
	ck_assert_int_eq(memcmp(v.data, want, n), 0);
	qfs_val_release(&v);
}

static int link_exists(qfs_group_t g, qfs_lsn_t seg)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/qfs-vlog/%016llx.%016llx.wal", dir, (unsigned long long)g,
		 (unsigned long long)seg);
	return access(path, F_OK) == 0;
}

struct vscan {
	const uint8_t *want;
	size_t n;
	int seen;
};

static int vscan_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct vscan *a = arg;

	if (store_is_chunk_key(k, kl)) {
		ck_assert_uint_eq(vl, a->n);
		ck_assert_int_eq(memcmp(v, a->want, vl), 0);
		a->seen++;
	}
	return 0;
}

/* A chunk applied with its place is a pointer (empty item, long record)
 * that every read resolves: get, get_val, scan, snapshot scan, scrub
 * snapshot; a small chunk and a plain apply stay in RocksDB. */
START_TEST(test_vlog_put_get)
{
	static uint8_t big[QFS_CHUNK_SIZE], small[100];
	struct vscan a = { big, sizeof(big), 0 };
	struct qfs_store_snap *sn;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(big), 1, 2, big), 0);
	ck_assert_int_eq(put_chunk_seg(G1, 1, sizeof(small), 2, 2, small), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_VLOG_REC_LEN);
	ck_assert_uint_eq(dl, 0);
	ck_assert_uint_eq(raw_rec(G1, 1, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, sizeof(small));
	ck_assert(link_exists(G1, 2));
	assert_chunk(G1, 0, big, sizeof(big));
	assert_chunk(G1, 1, small, sizeof(small));
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), sizeof(big) + sizeof(small));
	uint32_t lol, hil;
	const uint8_t *lo = kchunk(FILE_INO, 0, &lol), *hi = kchunk(FILE_INO, 1, &hil);

	ck_assert_int_eq(qfs_store_scan(st, G1, lo, lol, hi, hil, vscan_cb, &a), 0);
	ck_assert_int_eq(a.seen, 1);
	a.seen = 0;
	ck_assert_int_eq(qfs_store_snap_take(st, &sn), 0);
	ck_assert_int_eq(qfs_store_snap_scan(sn, G1, lo, lol, hi, hil, vscan_cb, &a), 0);
	ck_assert_int_eq(a.seen, 1);
	qfs_store_snap_release(sn);
	/* an apply without a place keeps the value in RocksDB */
	{
		struct qfs_txn t;
		uint32_t kl;

		qfs_txn_init(&t);
		kp = kchunk(FILE_INO, 2, &kl);
		add_put_bytes(&t, kp, kl, big, sizeof(big));
		ck_assert_int_eq(APPLY(G1, &t), 0);
		ck_assert_uint_eq(raw_rec(G1, 2, &dl), STORE_CRC_LEN);
		ck_assert_uint_eq(dl, sizeof(big));
	}
	/* and from the durable store after a reopen */
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	assert_chunk(G1, 0, big, sizeof(big));
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 2 * sizeof(big) + sizeof(small));
}
END_TEST

/* Overwrites and deletes of pointers keep the counts right (the old
 * length comes from the record) and the collector removes a segment no
 * pointer uses once its group applied past the next one, never the last
 * one of a group, nor while a snapshot read is open. */
START_TEST(test_vlog_overwrite_gc)
{
	static uint8_t v1[QFS_CHUNK_SIZE], v2[QFS_CHUNK_SIZE / 2];
	struct qfs_store_vlog_stat vs;
	struct qfs_store_snap *sn;
	struct qfs_txn t;
	uint32_t kl, lol, hil;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);            /* lsn 1 */
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v1), 3, 2, v1), 0); /* lsn 2, seg 2 */
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v2), 4, 3, v2), 0); /* lsn 3, seg 3 */
	assert_chunk(G1, 0, v2, sizeof(v2));
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), sizeof(v2));
	ck_assert(link_exists(G1, 2) && link_exists(G1, 3));
	/* an open snapshot read holds the collector back */
	ck_assert_int_eq(qfs_store_snap_take(st, &sn), 0);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.removed, 0);
	ck_assert_uint_eq(vs.segments, 2);
	ck_assert_uint_eq(vs.live, sizeof(v2));
	qfs_store_snap_release(sn);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.removed, 1);
	ck_assert_uint_eq(vs.segments, 1);
	ck_assert(!link_exists(G1, 2) && link_exists(G1, 3));
	assert_chunk(G1, 0, v2, sizeof(v2));
	/* delete every chunk (DEL_RANGE): the count follows the record's length */
	const uint8_t *lo = kchunk(FILE_INO, 0, &lol), *hi = kchunk(FILE_INO, 100, &hil);

	ck_assert_int_eq(put_chunk_seg(G1, 1, sizeof(v1), 5, 3, v1), 0); /* lsn 4, seg 3 */
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), sizeof(v1) + sizeof(v2));
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, lo, lol, hi, hil, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), 0);
	kp = kchunk(FILE_INO, 0, &kl);
	ck_assert(!present(G1, kp, kl));
	/* the group's last segment stays */
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.removed, 0);
	ck_assert(link_exists(G1, 3));
	/* a later one makes it removable; drop removes them all */
	ck_assert_int_eq(put_chunk_seg(G1, 5, sizeof(v1), 6, 6, v1), 0); /* lsn 6, seg 6 */
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.removed, 1);
	ck_assert(!link_exists(G1, 3) && link_exists(G1, 6));
	/* a segment with a live value stays, later ones or not */
	ck_assert_int_eq(put_chunk_seg(G1, 7, sizeof(v2), 10, 8, v2), 0); /* lsn 7, seg 8 */
	put_inode(G1, FILE_INO + 1, S_IFREG | 0644);                     /* lsn 8 */
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.removed, 0);
	ck_assert_uint_eq(vs.live, sizeof(v1) + sizeof(v2));
	ck_assert(link_exists(G1, 6) && link_exists(G1, 8));
	fill_rand(v1, sizeof(v1), 6);
	assert_chunk(G1, 5, v1, sizeof(v1));
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert(!link_exists(G1, 6));
}
END_TEST

/* A segment less than half live below the applied LSN: its live values
 * move into RocksDB (8-byte records), then it goes; one more than half
 * live stays. */
START_TEST(test_vlog_rewrite)
{
	static uint8_t v[4][QFS_CHUNK_SIZE / 2], w[QFS_CHUNK_SIZE / 2];
	struct qfs_store_vlog_stat vs;
	struct qfs_txn t;
	uint32_t kl;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	qfs_txn_init(&t);
	for (int i = 0; i < 4; i++) {
		fill_rand(v[i], sizeof(v[i]), 20 + (unsigned)i);
		kp = kchunk(FILE_INO, (uint64_t)i, &kl);
		add_put_bytes(&t, kp, kl, v[i], sizeof(v[i]));
	}
	ck_assert_int_eq(apply_seg(G1, &t, 2), 0); /* lsn 2: four chunks in seg 2 */
	for (int i = 1; i < 4; i++)                 /* lsn 3-5: three replaced in seg 3 */
		ck_assert_int_eq(put_chunk_seg(G1, (uint64_t)i, sizeof(w), 30 + (unsigned)i, 3, w), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_VLOG_REC_LEN);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.rewritten, sizeof(v[0]));
	ck_assert_uint_eq(vs.removed, 1);
	ck_assert(!link_exists(G1, 2) && link_exists(G1, 3));
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, sizeof(v[0]));
	assert_chunk(G1, 0, v[0], sizeof(v[0]));
	assert_chunk(G1, 3, w, sizeof(w));
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 4 * sizeof(w));
	/* seg 3 (live 3 chunks of 3) stays after seg 4 passes it */
	ck_assert_int_eq(put_chunk_seg(G1, 9, sizeof(w), 40, 6, w), 0); /* lsn 6, seg 6 */
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.rewritten, 0);
	ck_assert_uint_eq(vs.removed, 0);
	ck_assert(link_exists(G1, 3));
	reopen();
	assert_chunk(G1, 0, v[0], sizeof(v[0]));
}
END_TEST

/* The collector moving a chunk while an apply rewrites it: the apply
 * wins.  The collector reads the value of chunk 0 (the one live chunk of
 * a segment less than half live) outside the apply lock; a hook on its
 * open of the link applies, right then, a new value of chunk 0 (a
 * pointer into another segment, a value in RocksDB) or its delete.  The
 * collector must then write nothing for chunk 0: fails if its check of
 * the record under the lock were missing (the old value would come back,
 * or the deleted chunk). */
static int race_variant, race_armed;
static uint8_t race_new[QFS_CHUNK_SIZE / 2];

static int race_open(const char *path, int flags, mode_t mode)
{
	char name[64];

	snprintf(name, sizeof(name), "qfs-vlog/%016llx.%016llx.wal", (unsigned long long)G1, 2ull);
	if (race_armed && strstr(path, name)) {
		struct qfs_txn t;
		uint32_t kl;

		race_armed = 0;
		if (race_variant == 0) { /* a pointer into segment 3 */
			ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(race_new), 77, 3, race_new), 0);
		} else {
			qfs_txn_init(&t);
			kp = kchunk(FILE_INO, 0, &kl);
			if (race_variant == 1) { /* a value in RocksDB */
				fill_rand(race_new, sizeof(race_new), 78);
				add_put_bytes(&t, kp, kl, race_new, sizeof(race_new));
			} else { /* a delete */
				add(&t, QFS_OP_DEL, kp, kl);
			}
			ck_assert_int_eq(APPLY(G1, &t), 0);
		}
	}
	return qfs_sysio_default.open(path, flags, mode);
}

START_TEST(test_vlog_rewrite_race)
{
	static uint8_t v[4][QFS_CHUNK_SIZE / 2], w[QFS_CHUNK_SIZE / 2];
	struct qfs_store_vlog_stat vs;
	struct qfs_txn t;
	uint32_t kl;
	size_t dl;

	race_variant = _i;
	put_inode(G1, FILE_INO, S_IFREG | 0644);
	qfs_txn_init(&t);
	for (int i = 0; i < 4; i++) {
		fill_rand(v[i], sizeof(v[i]), 50 + (unsigned)i);
		kp = kchunk(FILE_INO, (uint64_t)i, &kl);
		add_put_bytes(&t, kp, kl, v[i], sizeof(v[i]));
	}
	ck_assert_int_eq(apply_seg(G1, &t, 2), 0); /* four chunks in seg 2 */
	for (int i = 1; i < 4; i++)                 /* three replaced in seg 3 */
		ck_assert_int_eq(put_chunk_seg(G1, (uint64_t)i, sizeof(w), 60 + (unsigned)i, 3, w), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_VLOG_REC_LEN);
	reopen(); /* no cached fd: the collector opens the link */
	__atomic_store_n(&qfs_sysio.open, race_open, __ATOMIC_RELEASE);
	race_armed = 1;
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	qfs_sysio_reset();
	ck_assert_int_eq(race_armed, 0); /* the hook ran */
	ck_assert_uint_eq(vs.rewritten, 0);
	ck_assert_uint_eq(vs.removed, 1); /* seg 2 has no pointer left */
	ck_assert(!link_exists(G1, 2) && link_exists(G1, 3));
	for (int round = 0; round < 2; round++) {
		if (race_variant == 2) {
			kp = kchunk(FILE_INO, 0, &kl);
			ck_assert(!present(G1, kp, kl));
			ck_assert_uint_eq(raw_rec(G1, 0, &dl), 0);
			ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 3 * sizeof(w));
		} else {
			assert_chunk(G1, 0, race_new, sizeof(race_new));
			ck_assert_uint_eq(raw_rec(G1, 0, &dl), race_variant == 0 ? STORE_VLOG_REC_LEN : STORE_CRC_LEN);
			ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 4 * sizeof(w));
		}
		reopen();
	}
}
END_TEST

/* Remove the fake WAL segment seg (its links keep the file). */
static void wal_unlink(qfs_lsn_t seg)
{
	char path[192];

	snprintf(path, sizeof(path), "%s/wal/%016llx.wal", dir, (unsigned long long)seg);
	ck_assert_int_eq(unlink(path), 0);
}

/* A snapshot read (scrub, archive, snapshot send) open while its group
 * is dropped reads the group as it was: the values it resolves stay
 * readable until it ends (no EIO, no damage counted); then the links go
 * (the collector: a group without an applied LSN whose WAL files have no
 * other name), not one is left behind, also after a crash; another
 * group's stay. */
START_TEST(test_vlog_drop_snapshot)
{
	static uint8_t v[QFS_CHUNK_SIZE];
	struct vscan a = { v, sizeof(v), 0 };
	struct qfs_store_vlog_stat vs;
	struct qfs_store_snap *sn;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v), 90, 2, v), 0);
	ck_assert_int_eq(put_chunk_seg(G1, 1, sizeof(v), 90, 3, v), 0);
	ck_assert_int_eq(put_chunk_seg(G2, 0, sizeof(v), 90, 4, v), 0);
	ck_assert(link_exists(G1, 2) && link_exists(G1, 3));
	reopen(); /* no cached fd */
	ck_assert_int_eq(qfs_store_snap_take(st, &sn), 0);
	wal_unlink(2); /* the group's WAL goes first (rnode) */
	wal_unlink(3);
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert_int_eq(qfs_store_snap_scan(sn, G1, NULL, 0, NULL, 0, vscan_cb, &a), 0);
	ck_assert_int_eq(a.seen, 2);
	qfs_store_snap_release(sn);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.bad, 0);
	ck_assert(!link_exists(G1, 2) && !link_exists(G1, 3));
	ck_assert_uint_eq(vs.segments, 1); /* G2's */
	ck_assert(link_exists(G2, 4));
	assert_chunk(G2, 0, v, sizeof(v));
	{ /* the archiver's table snapshot resolves pointers too */
		struct vscan b = { v, sizeof(v), 0 };
		qfs_lsn_t ap = 0;

		ck_assert_int_eq(qfs_store_snapshot_scan(st, G2, &ap, vscan_cb, &b), 0);
		ck_assert_int_eq(b.seen, 1);
		ck_assert_uint_eq(ap, 1);
	}
	/* links left by a crash after a drop: removed at the next pass */
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v), 90, 5, v), 0);
	ck_assert_int_eq(qfs_store_snap_take(st, &sn), 0);
	wal_unlink(5);
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert(link_exists(G1, 5));
	qfs_store_snap_release(sn);
	reopen(); /* (as after a crash before the collector's pass) */
	ck_assert(link_exists(G1, 5));
	ck_assert_int_eq(qfs_store_vlog_gc(st, 0, &vs), 0);
	ck_assert(!link_exists(G1, 5) && link_exists(G2, 4));
	assert_chunk(G2, 0, v, sizeof(v));
}
END_TEST

/* A point read's own snapshot (the checked read after a failed first
 * try) holds the collector back as a scan's does: a pointer it resolves
 * stays readable.  The first try's open of the link fails (EMFILE); on
 * the checked read's open, a hook runs the collector, which moves the
 * chunk into RocksDB and would unlink the link the read's snapshot still
 * points into: fails with QFS_ECORRUPT if point reads were not counted
 * in vlog_snaps. */
static int pr_opens;
static struct qfs_store_vlog_stat pr_vs;

static int pr_open(const char *path, int flags, mode_t mode)
{
	char name[64];

	snprintf(name, sizeof(name), "qfs-vlog/%016llx.%016llx.wal", (unsigned long long)G1, 2ull);
	if (strstr(path, name)) {
		int n = ++pr_opens;

		if (n == 1) {
			errno = EMFILE;
			return -1;
		}
		if (n == 2)
			ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &pr_vs), 0);
	}
	return qfs_sysio_default.open(path, flags, mode);
}

START_TEST(test_vlog_point_read_gc)
{
	static uint8_t v[4][QFS_CHUNK_SIZE / 2], w[QFS_CHUNK_SIZE / 2];
	struct qfs_store_vlog_stat vs;
	struct qfs_txn t;
	uint32_t kl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	qfs_txn_init(&t);
	for (int i = 0; i < 4; i++) {
		fill_rand(v[i], sizeof(v[i]), 80 + (unsigned)i);
		kp = kchunk(FILE_INO, (uint64_t)i, &kl);
		add_put_bytes(&t, kp, kl, v[i], sizeof(v[i]));
	}
	ck_assert_int_eq(apply_seg(G1, &t, 2), 0);
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(put_chunk_seg(G1, (uint64_t)i, sizeof(w), 85 + (unsigned)i, 3, w), 0);
	reopen(); /* no cached fd */
	pr_opens = 0;
	__atomic_store_n(&qfs_sysio.open, pr_open, __ATOMIC_RELEASE);
	kp = kchunk(FILE_INO, 0, &kl);
	void *p = NULL;
	size_t pl = 0;
	int rc = qfs_store_get(st, G1, kp, kl, &p, &pl);

	qfs_sysio_reset();
	ck_assert_int_ge(pr_opens, 3); /* the try, the checked read, the collector */
	ck_assert_uint_eq(pr_vs.rewritten, sizeof(v[0]));
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(pl, sizeof(v[0]));
	ck_assert_int_eq(memcmp(p, v[0], pl), 0);
	free(p);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0); /* now it goes */
	ck_assert_uint_eq(vs.bad, 0);
	ck_assert(!link_exists(G1, 2) && link_exists(G1, 3));
	assert_chunk(G1, 0, v[0], sizeof(v[0]));
}
END_TEST

/* A link that cannot be made (ENOSPC on link, EIO on the directory's
 * fsync): the values of that segment stay in RocksDB (8-byte records),
 * read back right, and the next segment is linked again; a link left
 * without its fsync holds no pointer and the collector removes it. */
START_TEST(test_vlog_link_fails)
{
	static uint8_t v[QFS_CHUNK_SIZE];
	struct qfs_store_vlog_stat vs;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	qfs_sysio_fault_set(QFS_SYSIO_BIT(QFS_SYSIO_RENAME), 1, ENOSPC, 0);
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v), 91, 2, v), 0);
	ck_assert_int_eq(put_chunk_seg(G1, 1, sizeof(v), 92, 2, v), 0); /* same segment: not tried again */
	ck_assert_uint_eq(qfs_sysio_fault_fired(), 1);
	qfs_sysio_reset();
	ck_assert(!link_exists(G1, 2));
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(raw_rec(G1, 1, &dl), STORE_CRC_LEN);
	assert_chunk(G1, 1, v, sizeof(v));
	fill_rand(v, sizeof(v), 91);
	assert_chunk(G1, 0, v, sizeof(v));
	/* the link made, its directory fsync failing */
	qfs_sysio_fault_set(QFS_SYSIO_BIT(QFS_SYSIO_SYNC), 1, EIO, 0);
	ck_assert_int_eq(put_chunk_seg(G1, 2, sizeof(v), 93, 3, v), 0);
	ck_assert_uint_eq(qfs_sysio_fault_fired(), 1);
	qfs_sysio_reset();
	ck_assert(link_exists(G1, 3));
	ck_assert_uint_eq(raw_rec(G1, 2, &dl), STORE_CRC_LEN);
	assert_chunk(G1, 2, v, sizeof(v));
	/* the next segment is linked: pointers again */
	ck_assert_int_eq(put_chunk_seg(G1, 3, sizeof(v), 94, 4, v), 0);
	ck_assert(link_exists(G1, 4));
	ck_assert_uint_eq(raw_rec(G1, 3, &dl), STORE_VLOG_REC_LEN);
	assert_chunk(G1, 3, v, sizeof(v));
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert(!link_exists(G1, 3) && link_exists(G1, 4));
	reopen();
	assert_chunk(G1, 3, v, sizeof(v));
	fill_rand(v, sizeof(v), 93);
	assert_chunk(G1, 2, v, sizeof(v));
}
END_TEST

/* A stale link of the group's earlier life (a drop, or a snapshot install
 * while a snapshot read was open, left it: its WAL file has no other
 * name) named after the segment the group appends to now: the collector
 * must not take it for a later segment of the log and remove the link of
 * that current segment (its pointers would then name a missing file:
 * EIO).  A link whose WAL file has no other name left (the WAL deleted
 * it) still goes. */
START_TEST(test_vlog_stale_next)
{
	static uint8_t v[QFS_CHUNK_SIZE], w[QFS_CHUNK_SIZE];
	struct qfs_store_vlog_stat vs;
	char path[256];
	struct qfs_txn t;
	uint32_t kl;
	int fd;

	put_inode(G1, FILE_INO, S_IFREG | 0644);                             /* lsn 1 */
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v), 95, 2, v), 0);      /* lsn 2, seg 2 */
	snprintf(path, sizeof(path), "%s/qfs-vlog/%016llx.%016llx.wal", dir, (unsigned long long)G1, 3ull);
	fd = open(path, O_WRONLY | O_CREAT, 0644); /* the stale link */
	ck_assert_int_ge(fd, 0);
	close(fd);
	qfs_txn_init(&t); /* lsn 3: chunk 0 in RocksDB, no pointer into seg 2 */
	kp = kchunk(FILE_INO, 0, &kl);
	add_put_bytes(&t, kp, kl, v, sizeof(v));
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert(link_exists(G1, 2)); /* the log still appends to seg 2 */
	ck_assert_int_eq(put_chunk_seg(G1, 1, sizeof(w), 96, 2, w), 0);      /* lsn 4, seg 2 */
	assert_chunk(G1, 1, w, sizeof(w));
	reopen();
	assert_chunk(G1, 1, w, sizeof(w));
	/* the WAL deletes seg 2 (the group moved on): its link may go once
	 * nothing points into it */
	ck_assert_int_eq(put_chunk_seg(G1, 1, sizeof(w), 97, 5, w), 0);      /* lsn 5, seg 5 */
	wal_unlink(2);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert(!link_exists(G1, 2) && link_exists(G1, 5));
	assert_chunk(G1, 1, w, sizeof(w));
}
END_TEST

/* Run body(arg) in a child that opens the store of dir and is then killed
 * (SIGKILL: nothing flushed or cleaned up); body returns 0 if it worked.
 * Asserts the child died of the kill, not of a failed body. */
static void crash_child(int (*body)(void *), void *arg)
{
	int status = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (qfs_store_open(dir, &st) || body(arg) != 0)
			_exit(2);
		kill(getpid(), SIGKILL);
		_exit(3);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
}

static int crash_put_lsn2(void *v)
{
	return put_chunk_seg(G1, 0, QFS_CHUNK_SIZE, 7, 2, v);
}

/* A crash (close without a flush: RocksDB's WAL is off) loses the
 * pointers with the memtable; the replay of the same entries links the
 * segment again (it exists: EEXIST, same file) and reads are right. */
START_TEST(test_vlog_crash_replay)
{
	static uint8_t v[QFS_CHUNK_SIZE], w[QFS_CHUNK_SIZE];
	char path[192];
	struct qfs_txn t;
	uint32_t kl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	qfs_store_close(st);
	st = NULL;
	crash_child(crash_put_lsn2, v); /* the apply of lsn 2, then a crash before any flush */
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
	ck_assert_uint_eq(applied(G1), 1); /* lsn 2 is gone with the memtable */
	ck_assert(link_exists(G1, 2));
	/* the replay: the same bytes at the same place (the file holds them) */
	fill_rand(w, sizeof(w), 11);
	snprintf(path, sizeof(path), "%s/wal/%016llx.wal", dir, 2ull);
	ck_assert_int_eq(truncate(path, VLOG_JUNK), 0); /* apply_seg appends at the end */
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v), 7, 2, v), 0);
	assert_chunk(G1, 0, v, sizeof(v));
	/* a stale link (another file of the same name) is never pointed into */
	ck_assert_int_eq(qfs_store_sync(st), 0);
	snprintf(path, sizeof(path), "%s/qfs-vlog/%016llx.%016llx.wal", dir, (unsigned long long)G2, 9ull);
	ck_assert_int_eq(mkdir(path, 0755) == 0 || errno == EEXIST, 1);
	ck_assert_int_eq(rmdir(path), 0);
	{
		int fd = open(path, O_WRONLY | O_CREAT, 0644);

		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 0, &kl);
	add_put_bytes(&t, kp, kl, w, sizeof(w));
	ck_assert_int_eq(apply_seg(G2, &t, 9), 0);
	{
		size_t dl;

		ck_assert_uint_eq(raw_rec(G2, 0, &dl), STORE_CRC_LEN);
		ck_assert_uint_eq(dl, sizeof(w));
	}
	assert_chunk(G2, 0, w, sizeof(w));
}
END_TEST

static int vcount_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	++*(int *)arg;
	return 0;
}

/* A damaged value (a flipped byte in the segment) or a missing segment is
 * an error (QFS_ECORRUPT: EIO), never wrong bytes, for every read. */
START_TEST(test_vlog_damage)
{
	static uint8_t v[QFS_CHUNK_SIZE];
	struct qfs_store_vlog_stat vs;
	struct qfs_store_snap *sn;
	struct qfs_val val = { 0 };
	char path[256];
	uint32_t kl;
	const uint8_t *k;
	void *p;
	size_t pl;
	int fd, n = 0;
	uint8_t b;

	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v), 8, 2, v), 0);
	k = kchunk(FILE_INO, 0, &kl);
	snprintf(path, sizeof(path), "%s/qfs-vlog/%016llx.%016llx.wal", dir, (unsigned long long)G1, 2ull);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, VLOG_JUNK + 4000), 1);
	b ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &b, 1, VLOG_JUNK + 4000), 1);
	close(fd);
	ck_assert_int_eq(qfs_store_get(st, G1, k, kl, &p, &pl), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_store_get_val(st, G1, k, kl, &val), QFS_ECORRUPT);
	ck_assert(!qfs_val_held(&val));
	ck_assert_int_eq(qfs_store_scan(st, G1, NULL, 0, NULL, 0, vcount_cb, &n), QFS_ECORRUPT);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(qfs_store_snap_take(st, &sn), 0);
	ck_assert_int_eq(qfs_store_snap_scan(sn, G1, NULL, 0, NULL, 0, vcount_cb, &n), QFS_ECORRUPT);
	qfs_store_snap_release(sn);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_ge(vs.bad, 1);
	/* repaired, then missing */
	fd = open(path, O_RDWR);
	b ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &b, 1, VLOG_JUNK + 4000), 1);
	close(fd);
	assert_chunk(G1, 0, v, sizeof(v));
	ck_assert_int_eq(unlink(path), 0);
	reopen(); /* no cached fd */
	ck_assert_int_eq(qfs_store_get(st, G1, k, kl, &p, &pl), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_eq(vs.dangling, 1);
	/* an overwrite from RocksDB brings the item back */
	{
		struct qfs_txn t;

		qfs_txn_init(&t);
		add_put_bytes(&t, k, kl, v, sizeof(v));
		ck_assert_int_eq(APPLY(G1, &t), 0);
	}
	assert_chunk(G1, 0, v, sizeof(v));
}
END_TEST

/* The value log turned off (vlog_min_bytes UINT32_MAX): no pointer. */
START_TEST(test_vlog_off)
{
	static uint8_t v[QFS_CHUNK_SIZE];
	struct qfs_store_opts o = { .vlog_min_bytes = UINT32_MAX };
	size_t dl;

	qfs_store_close(st);
	ck_assert_int_eq(qfs_store_open_opts(dir, &o, &st), 0);
	ck_assert_int_eq(put_chunk_seg(G1, 0, sizeof(v), 9, 2, v), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, sizeof(v));
	ck_assert(!link_exists(G1, 2));
	assert_chunk(G1, 0, v, sizeof(v));
}
END_TEST

/* The read-ahead window of a link (store_vlog_ra_next): a sequential read,
 * its chunks taken out of order as by several FUSE threads, keeps at least
 * STORE_VLOG_RA - STORE_VLOG_RA_STEP bytes asked ahead of every read, the
 * asked ranges follow each other with no gap, and a read asks at most a
 * step beyond what it read once the window is open.  A jump asks nothing;
 * the read that follows it opens a window at its end.  (Fails if the lead
 * may fall to STORE_VLOG_RA / 2 as before, or a range is skipped.) */
START_TEST(test_vlog_ra_window)
{
	const uint64_t base = (8u << 20) + 123, len = QFS_CHUNK_SIZE, n = 2048;
	uint64_t mark = 0, next = 0, from = 0, asked = 0;

	for (uint64_t k = 0; k < n; k++) {
		/* pairs swapped every third pair: chunk 2j + 1 before 2j */
		uint64_t i = (k / 2) % 3 == 1 ? (k % 2 ? k - 1 : k + 1) : k;
		uint64_t off = base + i * len, m = store_vlog_ra_next(&mark, off, len, &from);

		if (m) {
			if (next)
				ck_assert_uint_eq(from, next); /* no gap, no overlap */
			else
				ck_assert_uint_eq(from, off + len);
			next = from + m;
			ck_assert_uint_eq(next, mark);
			asked += m;
			if (k > 0)
				ck_assert_uint_le(m, STORE_VLOG_RA_STEP + 2 * len);
		}
		ck_assert_uint_ge(mark, off + len + STORE_VLOG_RA - STORE_VLOG_RA_STEP);
	}
	ck_assert_uint_eq(asked, mark - (base + len));
	/* a jump ahead: nothing asked, the mark at its end; the next read asks */
	uint64_t far = mark + (1u << 30);

	ck_assert_uint_eq(store_vlog_ra_next(&mark, far, len, &from), 0);
	ck_assert_uint_eq(mark, far + len);
	ck_assert_uint_eq(store_vlog_ra_next(&mark, far + len, len, &from), STORE_VLOG_RA);
	ck_assert_uint_eq(from, far + 2 * len);
	/* a jump back (a reread of the file's start): the same */
	ck_assert_uint_eq(store_vlog_ra_next(&mark, base, len, &from), 0);
	ck_assert_uint_eq(mark, base + len);
	ck_assert_uint_eq(store_vlog_ra_next(&mark, base + len, len, &from), STORE_VLOG_RA);
	ck_assert_uint_eq(from, base + 2 * len);
}
END_TEST

/* ---- PATCH extents in the value log (doc/format-store.md "Value log") ---- */

/* The model of chunk c: its bytes and length as the PATCH semantics make
 * them (overlay, zeros in a gap, trailing zeros trimmed). */
struct pmodel {
	uint8_t b[QFS_CHUNK_SIZE];
	size_t len;
};

static void pmodel_patch(struct pmodel *m, size_t off, const uint8_t *v, size_t n)
{
	memcpy(m->b + off, v, n);
	if (off + n > m->len)
		m->len = off + n;
	while (m->len && m->b[m->len - 1] == 0)
		m->len--;
}

/* PATCH chunk c of FILE_INO at off with n bytes of v, the entry in seg;
 * the model follows.  Returns the txn's result. */
static int patch_seg(qfs_group_t g, uint64_t c, size_t off, const uint8_t *v, size_t n, qfs_lsn_t seg,
		     struct pmodel *m)
{
	struct qfs_txn t;
	uint32_t kl;

	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, c, &kl);
	add_patch(&t, kp, kl, (uint32_t)off, v, n);
	if (m)
		pmodel_patch(m, off, v, n);
	return apply_seg(g, &t, seg);
}

/* The raw 'c' record of chunk c of FILE_INO in g into out (cap bytes):
 * its length, 0 when absent. */
static size_t raw_rec_bytes(qfs_group_t g, uint64_t c, uint8_t *out, size_t cap)
{
	uint8_t k[STORE_DBKEY_MAX];
	uint32_t kl;
	size_t klen, vl = 0;
	char *err = NULL, *v;
	const uint8_t *ck = kchunk(FILE_INO, c, &kl);

	ck_assert_ptr_eq(store_item_key(k, sizeof(k), g, ck, kl, &klen), k);
	k[0] = STORE_CRC_PREFIX;
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	v = rocksdb_get(st->db, ro, (const char *)k, klen, &vl, &err);
	ck_assert_ptr_null(err);
	rocksdb_readoptions_destroy(ro);
	if (!v)
		return 0;
	ck_assert_uint_le(vl, cap);
	memcpy(out, v, vl);
	rocksdb_free(v);
	return vl;
}

/* Every read of chunk c agrees with the model (absent when empty), and
 * so does the count. */
static void assert_model(qfs_group_t g, uint64_t c, const struct pmodel *m)
{
	if (m->len) {
		struct vscan a = { m->b, m->len, 0 };
		uint32_t lol, hil;
		const uint8_t *lo;
		uint8_t lob[QFS_KEY_MAX];
		struct qfs_store_snap *sn;

		assert_chunk(g, c, m->b, m->len);
		lo = kchunk(FILE_INO, c, &lol);
		memcpy(lob, lo, lol);
		const uint8_t *hi = kchunk(FILE_INO, c + 1, &hil);

		ck_assert_int_eq(qfs_store_scan(st, g, lob, lol, hi, hil, vscan_cb, &a), 0);
		ck_assert_int_eq(a.seen, 1);
		a.seen = 0;
		lo = kchunk(FILE_INO, c, &lol);
		ck_assert_int_eq(qfs_store_snap_take(st, &sn), 0);
		ck_assert_int_eq(qfs_store_snap_scan(sn, g, lob, lol, hi, hil, vscan_cb, &a), 0);
		ck_assert_int_eq(a.seen, 1);
		qfs_store_snap_release(sn);
	} else {
		uint32_t kl;
		const uint8_t *k = kchunk(FILE_INO, c, &kl);

		ck_assert(!present(g, k, kl));
	}
}

static int is_ext_rec(qfs_group_t g, uint64_t c, uint32_t *n)
{
	uint8_t r[STORE_VLOG_EXT_REC_MAX];
	size_t rl = raw_rec_bytes(g, c, r, sizeof(r));

	if (!store_vlog_is_ext(r, rl))
		return 0;
	if (n)
		*n = qfs_be32_get(r + 4);
	return 1;
}

/* PATCHes applied from a durable record become extents of the chunk's
 * record, not a rewrite of the chunk: over an absent chunk, a pointer and
 * a value in RocksDB; overlapping extents apply in order; a PATCH past
 * the end leaves zeros in the gap; every read (get, get_val, scan,
 * snapshot scan) and the count follow the PATCH semantics, before and
 * after a reopen. */
START_TEST(test_vlog_patch_extents)
{
	static struct pmodel m0, m1, m2;
	static uint8_t big[QFS_CHUNK_SIZE], p[3][8192];
	size_t dl;
	uint32_t n;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	for (int i = 0; i < 3; i++)
		fill_rand(p[i], sizeof(p[i]), 40 + i);
	/* chunk 0: absent, then extents only */
	ck_assert_int_eq(patch_seg(G1, 0, 4096, p[0], 4096, 2, &m0), 0);
	ck_assert(is_ext_rec(G1, 0, &n));
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_VLOG_EXT_HEAD + STORE_VLOG_EXT_LEN);
	ck_assert_uint_eq(dl, 0); /* the item is empty */
	assert_model(G1, 0, &m0);
	ck_assert_int_eq(patch_seg(G1, 0, 6000, p[1], 4096, 2, &m0), 0); /* overlaps the first */
	ck_assert_int_eq(patch_seg(G1, 0, 5000, p[2], 100, 2, &m0), 0);  /* inside both */
	ck_assert_int_eq(patch_seg(G1, 0, 60000, p[2] + 7, 3000, 2, &m0), 0); /* past the end: a gap */
	ck_assert(is_ext_rec(G1, 0, &n));
	ck_assert_uint_eq(n, 4);
	assert_model(G1, 0, &m0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m0.len);
	/* chunk 1: a pointer as the base */
	ck_assert_int_eq(put_chunk_seg(G1, 1, 70000, 41, 3, m1.b), 0);
	m1.len = 70000;
	ck_assert_int_eq(patch_seg(G1, 1, 100, p[0], 8192, 3, &m1), 0);
	ck_assert_int_eq(patch_seg(G1, 1, 69999, p[1], 50, 3, &m1), 0); /* across the end */
	ck_assert(is_ext_rec(G1, 1, &n));
	ck_assert_uint_eq(n, 2);
	assert_model(G1, 1, &m1);
	/* chunk 2: a value in RocksDB as the base (applied without a place) */
	{
		struct qfs_txn t;
		uint32_t kl;

		fill_rand(big, 3000, 42);
		memcpy(m2.b, big, 3000);
		m2.len = 3000;
		qfs_txn_init(&t);
		kp = kchunk(FILE_INO, 2, &kl);
		add_put_bytes(&t, kp, kl, big, 3000);
		ck_assert_int_eq(APPLY(G1, &t), 0);
	}
	ck_assert_int_eq(patch_seg(G1, 2, 1000, p[2], 500, 3, &m2), 0);
	ck_assert(is_ext_rec(G1, 2, &n));
	ck_assert_uint_eq(raw_rec(G1, 2, &dl), STORE_VLOG_EXT_HEAD + STORE_VLOG_EXT_LEN);
	ck_assert_uint_eq(dl, 3000); /* the base stays in the item */
	assert_model(G1, 2, &m2);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m0.len + m1.len + m2.len);
	/* an apply without a place patches the chunk whole (compacts) */
	{
		struct qfs_txn t;
		uint32_t kl;

		qfs_txn_init(&t);
		kp = kchunk(FILE_INO, 0, &kl);
		add_patch(&t, kp, kl, 10, p[1], 10);
		pmodel_patch(&m0, 10, p[1], 10);
		ck_assert_int_eq(APPLY(G1, &t), 0);
		ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
		ck_assert_uint_eq(dl, m0.len);
	}
	assert_model(G1, 0, &m0);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	assert_model(G1, 0, &m0);
	assert_model(G1, 1, &m1);
	assert_model(G1, 2, &m2);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m0.len + m1.len + m2.len);
}
END_TEST

/* A PATCH whose last byte is zero at or past the chunk's end is applied
 * whole (the tail is trimmed, the chunk deleted when nothing is left):
 * the length and the count stay exact; a zero byte ending inside the
 * chunk stays an extent. */
START_TEST(test_vlog_patch_zero_tail)
{
	static struct pmodel m;
	static uint8_t p[8192], z[8192];
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	fill_rand(p, sizeof(p), 50);
	ck_assert_int_eq(patch_seg(G1, 0, 0, p, 8192, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, NULL));
	/* zeros inside: an extent */
	ck_assert_int_eq(patch_seg(G1, 0, 100, z, 1000, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, NULL));
	assert_model(G1, 0, &m);
	/* zeros at the end: the chunk is rewritten trimmed */
	ck_assert_int_eq(patch_seg(G1, 0, 6000, z, 2192, 2, &m), 0);
	ck_assert_uint_eq(m.len, 6000);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, 6000);
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 6000);
	/* a nonzero byte past the end: an extent again, the gap zeros */
	ck_assert_int_eq(patch_seg(G1, 0, 9000, p + 1, 1, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, NULL));
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 9001);
	/* zeros over everything: the chunk goes */
	ck_assert_int_eq(patch_seg(G1, 0, 0, z, 8192, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, NULL)); /* ends before 9001: still an extent */
	static uint8_t zz[9001];
	ck_assert_int_eq(patch_seg(G1, 0, 0, zz, sizeof(zz), 2, &m), 0);
	ck_assert_uint_eq(m.len, 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), 0);
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 0);
}
END_TEST

/* A PATCH that extends the chunk and ends in zero bytes after a nonzero
 * one (a 4 KiB write of random data: 1 in 256) stays an extent: the
 * extent and the length stop at its last nonzero byte, the value and the
 * count are those of the whole-chunk path (the model).  Only when that
 * byte lies below the old length (the base or an extent reaches past it)
 * or the PATCH is all zeros is the chunk read, trimmed and rewritten. */
START_TEST(test_vlog_patch_zero_end)
{
	static struct pmodel m;
	static uint8_t p[3][4096], q[1096];
	struct qfs_store_vlog_stat vs;
	uint8_t r[STORE_VLOG_EXT_REC_MAX];
	uint64_t e0;
	uint32_t n;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	for (int i = 0; i < 3; i++) {
		fill_rand(p[i], sizeof(p[i]), 60 + i);
		for (int j = 0; j < 3; j++)
			p[i][4095 - j] = 0; /* ends in three zeros ... */
		p[i][4092] |= 1;       /* ... after a nonzero byte */
	}
	ck_assert_int_eq(qfs_store_vlog_gc(st, 0, &vs), 0);
	e0 = vs.extents;
	/* over an absent chunk */
	ck_assert_int_eq(patch_seg(G1, 0, 0, p[0], 4096, 2, &m), 0);
	ck_assert_uint_eq(m.len, 4093);
	ck_assert(is_ext_rec(G1, 0, &n));
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(raw_rec_bytes(G1, 0, r, sizeof(r)), STORE_VLOG_EXT_HEAD + STORE_VLOG_EXT_LEN);
	ck_assert_uint_eq(qfs_be32_get(r), 4093);                          /* len */
	ck_assert_uint_eq(qfs_be32_get(r + STORE_VLOG_EXT_HEAD + 4), 4093); /* the extent */
	assert_model(G1, 0, &m);
	/* appended as the file system writes them: the next 4 KiB (a gap of
	 * the three trimmed zeros), then one over the end */
	ck_assert_int_eq(patch_seg(G1, 0, 4096, p[1], 4096, 2, &m), 0);
	ck_assert_int_eq(patch_seg(G1, 0, 6000, p[2], 4096, 2, &m), 0);
	ck_assert_uint_eq(m.len, 6000 + 4093);
	ck_assert(is_ext_rec(G1, 0, &n));
	ck_assert_uint_eq(n, 3);
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m.len);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 0, &vs), 0);
	ck_assert_uint_eq(vs.extents, e0 + 3);
	/* the last nonzero byte below the old length: read and rewritten */
	memcpy(q, p[0] + 3000, sizeof(q));
	memset(q + 996, 0, 100);
	q[995] |= 1;
	ck_assert_int_eq(patch_seg(G1, 0, 9000, q, sizeof(q), 2, &m), 0);
	ck_assert_uint_eq(m.len, 9000 + 996);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, m.len);
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m.len);
	/* over that base, extending again: an extent */
	ck_assert_int_eq(patch_seg(G1, 0, 20000, p[1], 4096, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, &n));
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(m.len, 20000 + 4093);
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m.len);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m.len);
}
END_TEST

/* PUT, DEL, DEL_RANGE (truncate) and a txn naming the chunk twice over a
 * chunk with extents leave no stale extent: the record is replaced or
 * deleted with the item, and the counts stay exact. */
START_TEST(test_vlog_patch_overwrite)
{
	static struct pmodel m;
	static uint8_t p[4096], w[5000];
	struct qfs_txn t;
	uint32_t kl, lol, hil;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	fill_rand(p, sizeof(p), 60);
	fill_rand(w, sizeof(w), 61);
	for (uint64_t c = 0; c < 3; c++) {
		memset(&m, 0, sizeof(m));
		ck_assert_int_eq(patch_seg(G1, c, 4096, p, sizeof(p), 2, &m), 0);
		ck_assert(is_ext_rec(G1, c, NULL));
	}
	/* PUT over chunk 0 (in RocksDB), DEL of chunk 1 */
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 0, &kl);
	add_put_bytes(&t, kp, kl, w, sizeof(w));
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	assert_chunk(G1, 0, w, sizeof(w));
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 1, &kl);
	add(&t, QFS_OP_DEL, kp, kl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(raw_rec(G1, 1, &dl), 0);
	ck_assert(!present(G1, kp, kl));
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), sizeof(w) + 8192);
	/* a PUT with its place over extents: a pointer */
	ck_assert_int_eq(patch_seg(G1, 0, 100, p, 100, 3, NULL), 0);
	ck_assert(is_ext_rec(G1, 0, NULL));
	ck_assert_int_eq(put_chunk_seg(G1, 0, 70000, 62, 3, m.b), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_VLOG_REC_LEN);
	assert_chunk(G1, 0, m.b, 70000);
	/* a txn that patches a chunk twice: applied whole, both in order */
	memset(&m, 0, sizeof(m));
	fill_rand(m.b, 70000, 62);
	m.len = 70000;
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 0, &kl);
	add_patch(&t, kp, kl, 10, p, 50);
	add_patch(&t, kp, kl, 30, p + 1000, 50);
	pmodel_patch(&m, 10, p, 50);
	pmodel_patch(&m, 30, p + 1000, 50);
	ck_assert_int_eq(apply_seg(G1, &t, 3), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	assert_model(G1, 0, &m);
	/* DEL_RANGE of every chunk (truncate to 0) */
	ck_assert(is_ext_rec(G1, 2, NULL));
	const uint8_t *lo = kchunk(FILE_INO, 0, &lol);
	uint8_t lob[QFS_KEY_MAX];

	memcpy(lob, lo, lol);
	const uint8_t *hi = kchunk(FILE_INO, 100, &hil);

	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, lob, lol, hi, hil, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 0);
	for (uint64_t c = 0; c < 3; c++)
		ck_assert_uint_eq(raw_rec(G1, c, &dl), 0);
	/* a DEL_RANGE of one extent chunk among others counts its length */
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(patch_seg(G1, 1, 20000, p, sizeof(p), 4, &m), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 24096);
	lo = kchunk(FILE_INO, 1, &lol);
	memcpy(lob, lo, lol);
	hi = kchunk(FILE_INO, 2, &hil);
	qfs_txn_init(&t);
	add_range(&t, QFS_OP_DEL_RANGE, lob, lol, hi, hil, 0);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 0);
}
END_TEST

/* Past STORE_VLOG_EXT_MAX extents, or more extent bytes than a chunk, the
 * next PATCH reads the chunk and stores it whole (8-byte record); then
 * extents start again over that base. */
START_TEST(test_vlog_patch_compact)
{
	static struct pmodel m;
	static uint8_t p[QFS_CHUNK_SIZE];
	size_t dl;
	uint32_t n;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	fill_rand(p, sizeof(p), 70);
	for (uint32_t i = 0; i < STORE_VLOG_EXT_MAX; i++) {
		ck_assert_int_eq(patch_seg(G1, 0, i * 3000, p + i, 4000, 2, &m), 0);
		ck_assert(is_ext_rec(G1, 0, &n));
		ck_assert_uint_eq(n, i + 1);
	}
	assert_model(G1, 0, &m);
	ck_assert_int_eq(patch_seg(G1, 0, 7, p + 99, 4000, 2, &m), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, m.len);
	assert_model(G1, 0, &m);
	ck_assert_int_eq(patch_seg(G1, 0, 50000, p + 5, 4000, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, &n));
	ck_assert_uint_eq(n, 1);
	assert_model(G1, 0, &m);
	/* the byte bound: two extents of 60000 bytes, a third of 20000 compacts */
	ck_assert_int_eq(patch_seg(G1, 0, 0, p, 60000, 2, &m), 0);
	ck_assert_int_eq(patch_seg(G1, 0, 1, p + 1, 60000, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, &n));
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(patch_seg(G1, 0, 2, p + 2, 20000, 2, &m), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m.len);
}
END_TEST

/* Pad segment seg of the fake WAL with n bytes of junk at its end. */
static void seg_pad(qfs_lsn_t seg, size_t n)
{
	char path[192];
	struct stat sb;
	int fd;
	static uint8_t junk[65536];

	snprintf(path, sizeof(path), "%s/wal/%016llx.wal", dir, (unsigned long long)seg);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	fill_rand(junk, sizeof(junk), 3);
	for (size_t done = 0; done < n; done += sizeof(junk))
		ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), sb.st_size + (off_t)done), (ssize_t)sizeof(junk));
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
}

/* The collector counts extents as live bytes of their segments: a segment
 * only extents point into stays (more than half live) or has its chunks
 * moved whole into RocksDB (less than half live) before it goes; the
 * base's segment and the extents' are counted apart. */
START_TEST(test_vlog_patch_gc)
{
	static struct pmodel m0, m1;
	static uint8_t p[QFS_CHUNK_SIZE];
	struct qfs_store_vlog_stat vs;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	fill_rand(p, sizeof(p), 80);
	/* chunk 0: a pointer into seg 2, extents in seg 3 (mostly live) */
	ck_assert_int_eq(put_chunk_seg(G1, 0, 60000, 81, 2, m0.b), 0);
	m0.len = 60000;
	ck_assert_int_eq(patch_seg(G1, 0, 1000, p, 50000, 3, &m0), 0);
	/* chunk 1: extents only, in seg 4 (padded: less than half live) */
	ck_assert_int_eq(patch_seg(G1, 1, 0, p + 3, 4000, 4, &m1), 0);
	ck_assert_int_eq(patch_seg(G1, 1, 8000, p + 4, 4000, 4, &m1), 0);
	seg_pad(4, 1 << 20);
	ck_assert_int_eq(put_chunk_seg(G1, 9, 5000, 82, 5, p), 0); /* a later link, applied past */
	ck_assert(is_ext_rec(G1, 0, NULL) && is_ext_rec(G1, 1, NULL));
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	/* seg 2 holds chunk 0's base (60000 of ~60 KiB): stays; seg 3 its
	 * extent: stays; seg 4 was rewritten: chunk 1 whole in RocksDB */
	ck_assert(link_exists(G1, 2) && link_exists(G1, 3));
	ck_assert(!link_exists(G1, 4));
	ck_assert_uint_ge(vs.rewritten, m1.len);
	ck_assert_uint_eq(raw_rec(G1, 1, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, m1.len);
	ck_assert_uint_eq(vs.live, 60000 + 50000 + 5000);
	ck_assert(is_ext_rec(G1, 0, NULL));
	assert_model(G1, 0, &m0);
	assert_model(G1, 1, &m1);
	/* an overwrite of chunk 0 in RocksDB: no pointer left in 2 and 3 */
	{
		struct qfs_txn t;
		uint32_t kl;

		qfs_txn_init(&t);
		kp = kchunk(FILE_INO, 0, &kl);
		add_put_bytes(&t, kp, kl, p, 100);
		ck_assert_int_eq(APPLY(G1, &t), 0);
	}
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert(!link_exists(G1, 2) && !link_exists(G1, 3) && link_exists(G1, 5));
	assert_model(G1, 1, &m1);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), 100 + m1.len + 5000);
}
END_TEST

struct patch34 {
	uint8_t (*p)[4096];
	struct pmodel *mc;
};

static int crash_patch_lsn34(void *arg)
{
	struct patch34 *a = arg;

	return patch_seg(G1, 0, 2048, a->p[1], 4096, 2, a->mc) || patch_seg(G1, 0, 100, a->p[2], 1000, 2, a->mc);
}

/* A crash (kill -9) after extents were applied but before any flush: the
 * replay of the same entries (the same bytes at the same places) gives
 * the same chunk; the entries applied before the crash and flushed stay. */
START_TEST(test_vlog_patch_replay)
{
	static struct pmodel m, mc;
	static uint8_t p[3][4096];
	char path[192];
	struct stat sb;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	for (int i = 0; i < 3; i++)
		fill_rand(p[i], sizeof(p[i]), 90 + i);
	ck_assert_int_eq(patch_seg(G1, 0, 0, p[0], 4096, 2, &m), 0);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	snprintf(path, sizeof(path), "%s/wal/%016llx.wal", dir, 2ull);
	ck_assert_int_eq(stat(path, &sb), 0);
	qfs_store_close(st);
	st = NULL;
	mc = m;
	struct patch34 a = { p, &mc };
	crash_child(crash_patch_lsn34, &a); /* lsn 3 and 4, then a crash before any flush */
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
	ck_assert_uint_eq(applied(G1), 2);
	assert_model(G1, 0, &m);
	/* the replay: the segment as the WAL keeps it, the same entries */
	ck_assert_int_eq(truncate(path, sb.st_size), 0);
	ck_assert_int_eq(patch_seg(G1, 0, 2048, p[1], 4096, 2, &m), 0);
	ck_assert_int_eq(patch_seg(G1, 0, 100, p[2], 1000, 2, &m), 0);
	ck_assert(is_ext_rec(G1, 0, NULL));
	assert_model(G1, 0, &m);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m.len);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	assert_model(G1, 0, &m);
}
END_TEST

/* A damaged extent (a flipped byte in the segment), a damaged base in the
 * item and a missing segment are QFS_ECORRUPT for every read, never
 * wrong bytes; the collector keeps the segment. */
START_TEST(test_vlog_patch_damage)
{
	static struct pmodel m;
	static uint8_t p[4096];
	uint8_t r[STORE_VLOG_EXT_REC_MAX], b;
	struct qfs_store_snap *sn;
	struct qfs_val val = { 0 };
	struct qfs_store_vlog_stat vs;
	char path[256];
	uint32_t kl;
	const uint8_t *k;
	void *pv;
	size_t pl, rl;
	int fd, n = 0;
	off_t at;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	fill_rand(p, sizeof(p), 95);
	ck_assert_int_eq(patch_seg(G1, 0, 0, p, 4096, 2, &m), 0);
	ck_assert_int_eq(patch_seg(G1, 0, 1000, p + 7, 2000, 2, &m), 0);
	rl = raw_rec_bytes(G1, 0, r, sizeof(r));
	ck_assert(store_vlog_is_ext(r, rl));
	/* the second extent's bytes, one flipped */
	at = (off_t)qfs_be64_get(r + STORE_VLOG_EXT_HEAD + STORE_VLOG_EXT_LEN + 20) + 500;
	snprintf(path, sizeof(path), "%s/qfs-vlog/%016llx.%016llx.wal", dir, (unsigned long long)G1, 2ull);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, at), 1);
	b ^= 0x04;
	ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
	k = kchunk(FILE_INO, 0, &kl);
	ck_assert_int_eq(qfs_store_get(st, G1, k, kl, &pv, &pl), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_store_get_val(st, G1, k, kl, &val), QFS_ECORRUPT);
	ck_assert(!qfs_val_held(&val));
	ck_assert_int_eq(qfs_store_scan(st, G1, NULL, 0, NULL, 0, vcount_cb, &n), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_store_snap_take(st, &sn), 0);
	ck_assert_int_eq(qfs_store_snap_scan(sn, G1, NULL, 0, NULL, 0, vcount_cb, &n), QFS_ECORRUPT);
	qfs_store_snap_release(sn);
	/* a PATCH over it still applies as an extent (no read); the read fails */
	ck_assert_int_eq(patch_seg(G1, 0, 3000, p, 100, 2, &m), 0);
	ck_assert_int_eq(qfs_store_get(st, G1, k, kl, &pv, &pl), QFS_ECORRUPT);
	/* repaired: right again */
	fd = open(path, O_RDWR);
	b ^= 0x04;
	ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
	assert_model(G1, 0, &m);
	/* a base in the item that does not match its record (a stale record
	 * left by a release before the records): the item, read with
	 * RocksDB's checks, is the base; the extents lie over it */
	{
		struct qfs_txn t;
		uint8_t dk[STORE_DBKEY_MAX];
		size_t dkl;
		char *err = NULL;

		qfs_txn_init(&t);
		kp = kchunk(FILE_INO, 1, &kl);
		add_put_bytes(&t, kp, kl, p, 3000);
		ck_assert_int_eq(APPLY(G1, &t), 0);
		ck_assert_int_eq(patch_seg(G1, 1, 5, p + 9, 10, 2, NULL), 0);
		ck_assert(is_ext_rec(G1, 1, NULL));
		kp = kchunk(FILE_INO, 1, &kl);
		ck_assert_ptr_eq(store_item_key(dk, sizeof(dk), G1, kp, kl, &dkl), dk);
		rocksdb_put(st->db, st->wo, (const char *)dk, dkl, (const char *)p + 1, 2000, &err);
		ck_assert_ptr_null(err);
		static struct pmodel ms;

		memcpy(ms.b, p + 1, 2000);
		ms.len = 2000;
		pmodel_patch(&ms, 5, p + 9, 10);
		uint64_t c0 = st->crc_slow;

		assert_chunk(G1, 1, ms.b, ms.len);
		ck_assert_uint_gt(st->crc_slow, c0); /* the checked read */
		ck_assert_uint_ge(st->vlog_stale, 1);
	}
	/* an 8-byte record left without its item (a delete by a release
	 * before the records): a PATCH over it takes an empty base */
	{
		uint8_t ck[STORE_DBKEY_MAX], cv[STORE_CRC_LEN];
		char *err = NULL;
		static struct pmodel mo;

		kp = kchunk(FILE_INO, 3, &kl);
		ck_assert(store_crc_record(ck, cv, G1, kp, kl, p, 500));
		rocksdb_put(st->db, st->wo, (const char *)ck, STORE_GROUP_PREFIX_LEN + kl, (const char *)cv, sizeof(cv),
			    &err);
		ck_assert_ptr_null(err);
		ck_assert_int_eq(patch_seg(G1, 3, 40, p + 3, 30, 2, &mo), 0);
		ck_assert(is_ext_rec(G1, 3, NULL));
		assert_model(G1, 3, &mo);
	}
	/* the segment missing */
	ck_assert_int_eq(unlink(path), 0);
	reopen();
	k = kchunk(FILE_INO, 0, &kl);
	ck_assert_int_eq(qfs_store_get(st, G1, k, kl, &pv, &pl), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert_uint_ge(vs.dangling, 1);
}
END_TEST

/* An 8-byte record left without its item by a release before the
 * records, whose delete lies in an SST (after a flush and a reopen, the
 * usual state of an upgraded store): rocksdb_key_may_exist cannot say
 * "definitely absent" (the tombstone's key is in its file's bloom
 * filter, its block not cached), yet the item is absent: the PATCH must
 * still take an empty base and write the item, or every read finds the
 * chunk absent and the PATCH's bytes are lost. */
START_TEST(test_vlog_patch_stale_deleted)
{
	static struct pmodel mo;
	static uint8_t p[4096];
	uint8_t dk[STORE_DBKEY_MAX];
	size_t dkl;
	uint32_t kl;
	char *err = NULL;
	struct qfs_txn t;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	fill_rand(p, sizeof(p), 97);
	qfs_txn_init(&t);
	kp = kchunk(FILE_INO, 0, &kl);
	add_put_bytes(&t, kp, kl, p, 500);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	/* the old release's delete: the item only, the record stays */
	kp = kchunk(FILE_INO, 0, &kl);
	ck_assert_ptr_eq(store_item_key(dk, sizeof(dk), G1, kp, kl, &dkl), dk);
	rocksdb_delete(st->db, st->wo, (const char *)dk, dkl, &err);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	ck_assert_int_eq(patch_seg(G1, 0, 40, p + 3, 30, 2, &mo), 0);
	assert_model(G1, 0, &mo);
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	assert_model(G1, 0, &mo);
}
END_TEST

/* A snapshot install into G1, committed at LSN 50, of FILE_INO's inode as
 * stored and its chunk no holding len bytes of data, in key order (the
 * key pool: the inode's key, then the chunk's). */
static void install_inode_chunk(uint64_t no, const uint8_t *data, size_t len)
{
	struct qfs_store_install *in;
	uint32_t il, kl;
	const uint8_t *ik = kino(FILE_INO, &il);
	const uint8_t *k = kchunk(FILE_INO, no, &kl);
	int chunk_first = memcmp(k, ik, kl < il ? kl : il) < 0;
	void *iv;
	size_t ivl;

	ck_assert_int_eq(qfs_store_get(st, G1, ik, il, &iv, &ivl), 0);
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	if (chunk_first)
		ck_assert_int_eq(qfs_store_install_item(in, k, kl, data, len), 0);
	ck_assert_int_eq(qfs_store_install_item(in, ik, il, iv, ivl), 0);
	if (!chunk_first)
		ck_assert_int_eq(qfs_store_install_item(in, k, kl, data, len), 0);
	free(iv);
	ck_assert_int_eq(qfs_store_install_commit(in, 50, 1), 0);
}

/* The other writers of a chunk over one with extents: restore's
 * load_item and a snapshot install replace the record whole (8 bytes, no
 * extent left to lie over the new value); a PATCH after the install
 * starts extents over the installed base; a txn PATCHing two chunks and
 * setting the inode's size stores both as extents and counts both. */
START_TEST(test_vlog_patch_writers)
{
	static struct pmodel m1, m2, m3;
	static uint8_t p[8192], w[6000];
	struct qfs_txn t;
	struct qfs_op *op;
	uint32_t kl, kl2, il;
	size_t dl;
	const uint8_t *k, *k2, *ik;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	fill_rand(p, sizeof(p), 98);
	fill_rand(w, sizeof(w), 99);
	ck_assert_int_eq(patch_seg(G1, 0, 100, p, 4000, 2, NULL), 0);
	ck_assert_int_eq(patch_seg(G1, 1, 0, p + 5, 3000, 2, NULL), 0);
	ck_assert(is_ext_rec(G1, 0, NULL) && is_ext_rec(G1, 1, NULL));
	/* restore's load_item over chunk 0 */
	k = kchunk(FILE_INO, 0, &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, w, sizeof(w)), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(dl, sizeof(w));
	assert_chunk(G1, 0, w, sizeof(w));
	/* a snapshot install: the inode and chunk 1 with other bytes; chunk 0 gone */
	install_inode_chunk(1, w + 1, 5000);
	ck_assert_uint_eq(raw_rec(G1, 1, &dl), STORE_CRC_LEN);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), 0);
	memcpy(m1.b, w + 1, 5000);
	m1.len = 5000;
	assert_model(G1, 1, &m1);
	/* (the installed inode's count is the snapshot's: the changes count) */
	uint64_t cb0 = chunk_bytes_of(G1, FILE_INO) - m1.len;
	/* a PATCH after the install (a new segment): extents over that base */
	ck_assert_int_eq(patch_seg(G1, 1, 4000, p + 9, 2000, 60, &m1), 0);
	ck_assert(is_ext_rec(G1, 1, NULL));
	assert_model(G1, 1, &m1);
	/* one txn: PATCHes of chunks 2 and 3 and the inode's size */
	qfs_txn_init(&t);
	k = kchunk(FILE_INO, 2, &kl);
	k2 = kchunk(FILE_INO, 3, &kl2);
	add_patch(&t, k, kl, 10, p + 11, 700);
	pmodel_patch(&m2, 10, p + 11, 700);
	add_patch(&t, k2, kl2, 0, p + 12, 900);
	pmodel_patch(&m3, 0, p + 12, 900);
	ik = kino(FILE_INO, &il);
	op = add(&t, QFS_OP_SETATTR, ik, il);
	op->mask = QFS_SET_SIZE;
	op->attr.size = 3 * (uint64_t)QFS_CHUNK_SIZE + 900;
	ck_assert_int_eq(apply_seg(G1, &t, 60), 0);
	ck_assert(is_ext_rec(G1, 2, NULL) && is_ext_rec(G1, 3, NULL));
	assert_model(G1, 2, &m2);
	assert_model(G1, 3, &m3);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), cb0 + m1.len + m2.len + m3.len);
	/* a txn that fails after its PATCH took the extents form: nothing
	 * changes, and the status counts no extent */
	{
		struct qfs_store_vlog_stat vs;
		uint64_t e0;

		ck_assert_int_eq(qfs_store_vlog_gc(st, 0, &vs), 0);
		e0 = vs.extents;
		qfs_txn_init(&t);
		k = kchunk(FILE_INO, 2, &kl);
		add_patch(&t, k, kl, 20, p + 13, 300);
		ik = kino(FILE_INO, &il);
		add(&t, QFS_OP_EXPECT_ABSENT, ik, il)->err = -EEXIST;
		ck_assert_int_eq(apply_seg(G1, &t, 60), -EEXIST);
		assert_model(G1, 2, &m2);
		ck_assert_int_eq(qfs_store_vlog_gc(st, 0, &vs), 0);
		ck_assert_uint_eq(vs.extents, e0);
	}
	ck_assert_int_eq(qfs_store_sync(st), 0);
	reopen();
	assert_model(G1, 1, &m1);
	assert_model(G1, 2, &m2);
	assert_model(G1, 3, &m3);
}
END_TEST

/* One step of test_vlog_patch_cc: a PATCH of chunk c (n bytes of v at
 * off, entry in seg) that must (hit 1) or must not (hit 0) read the
 * chunk's record from the 'c' record cache (-1: either); every read then
 * agrees with the model. */
static void patch_cc(uint64_t c, size_t off, const uint8_t *v, size_t n, qfs_lsn_t seg, struct pmodel *m,
		     int hit)
{
	uint64_t h = st->cc_hits_rec;

	ck_assert_int_eq(patch_seg(G1, c, off, v, n, seg, m), 0);
	ck_assert(is_ext_rec(G1, c, NULL));
	assert_model(G1, c, m);
	if (hit >= 0)
		ck_assert_uint_eq(st->cc_hits_rec, h + (uint64_t)hit);
}

/* The 'c' record cache (store_int.h struct qfs_store cc): a PATCH taken
 * as an extent reads the record the last one wrote from the cache; each
 * other writer of the chunk's record (an apply that writes the chunk
 * whole, a 2PC commit, restore's load_item, a snapshot install, a group
 * drop, the collector's rewrite) and a failed txn leave nothing stale:
 * the next PATCH reads RocksDB, and the bytes are the model's (a stale
 * record would bring back old extents or point into a removed link). */
START_TEST(test_vlog_patch_cc)
{
	static struct pmodel m, m1;
	static uint8_t p[16][4096], w[6000];
	struct qfs_store_vlog_stat vs;
	struct qfs_txn t;
	uint32_t kl;
	const uint8_t *k;
	size_t dl;

	put_inode(G1, FILE_INO, S_IFREG | 0644);
	for (int i = 0; i < 16; i++)
		fill_rand(p[i], sizeof(p[i]), 200 + (unsigned)i);
	fill_rand(w, sizeof(w), 199);
	patch_cc(0, 0, p[0], 4096, 2, &m, 0);
	patch_cc(0, 4096, p[1], 4096, 2, &m, 1);
	patch_cc(0, 100, p[2], 50, 2, &m, 1);

	knext = 0; /* the key pool: no key above is used again */
	/* a failed txn whose PATCH took the extents form: nothing written */
	qfs_txn_init(&t);
	k = kchunk(FILE_INO, 0, &kl);
	add_patch(&t, k, kl, 9000, p[3], 4096);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, (const uint8_t *)"zz", 2, -ENOENT);
	ck_assert_int_eq(apply_seg(G1, &t, 2), -ENOENT);
	assert_model(G1, 0, &m);
	patch_cc(0, 200, p[4], 60, 2, &m, -1); /* emptied, or the record before */
	patch_cc(0, 300, p[4], 70, 2, &m, 1);

	knext = 0; /* the key pool: no key above is used again */
	/* the chunk written whole: a PUT, then a PATCH without a place */
	qfs_txn_init(&t);
	k = kchunk(FILE_INO, 0, &kl);
	add_put_bytes(&t, k, kl, w, 3000);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	memset(&m, 0, sizeof(m));
	pmodel_patch(&m, 0, w, 3000);
	patch_cc(0, 2000, p[5], 4096, 2, &m, 0);
	qfs_txn_init(&t);
	k = kchunk(FILE_INO, 0, &kl);
	add_patch(&t, k, kl, 10, p[6], 20);
	pmodel_patch(&m, 10, p[6], 20);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_uint_eq(raw_rec(G1, 0, &dl), STORE_CRC_LEN);
	patch_cc(0, 30, p[7], 40, 2, &m, 0);
	patch_cc(0, 50, p[7], 40, 2, &m, 1);

	knext = 0; /* the key pool: no key above is used again */
	/* a 2PC commit of the chunk */
	qfs_txn_init(&t);
	k = kchunk(FILE_INO, 0, &kl);
	add_put_bytes(&t, k, kl, w + 1, 2500);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	memset(&m, 0, sizeof(m));
	pmodel_patch(&m, 0, w + 1, 2500);
	assert_model(G1, 0, &m);
	patch_cc(0, 3000, p[8], 100, 2, &m, 0);
	patch_cc(0, 3100, p[8], 100, 2, &m, 1);

	knext = 0; /* the key pool: no key above is used again */
	/* restore's (and the scrub repair's) load_item */
	k = kchunk(FILE_INO, 0, &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, w + 2, 2000), 0);
	memset(&m, 0, sizeof(m));
	pmodel_patch(&m, 0, w + 2, 2000);
	patch_cc(0, 1000, p[9], 2000, 2, &m, 0);
	patch_cc(0, 1500, p[9], 10, 2, &m, 1);

	knext = 0; /* the key pool: no key above is used again */
	/* a snapshot install of the inode and the chunk with other bytes */
	install_inode_chunk(0, w + 3, 1500);
	memset(&m, 0, sizeof(m));
	pmodel_patch(&m, 0, w + 3, 1500);
	assert_model(G1, 0, &m);
	patch_cc(0, 1400, p[10], 300, 60, &m, 0);
	patch_cc(0, 1700, p[10], 300, 60, &m, 1);

	knext = 0; /* the key pool: no key above is used again */
	/* the collector's rewrite: chunk 1's extents in seg 53 (LSNs 53 and
	 * 54, padded: less than half live) move into RocksDB and the link
	 * goes */
	ck_assert_uint_eq(applied(G1), 52);
	patch_cc(1, 0, p[11], 4000, 53, &m1, 0);
	patch_cc(1, 8000, p[12], 4000, 53, &m1, 1);
	seg_pad(53, 1 << 20);
	ck_assert_int_eq(put_chunk_seg(G1, 9, 5000, 198, 54, w), 0); /* a later link, applied past */
	ck_assert_int_eq(qfs_store_vlog_gc(st, 1, &vs), 0);
	ck_assert(!link_exists(G1, 53));
	ck_assert_uint_eq(raw_rec(G1, 1, &dl), STORE_CRC_LEN);
	assert_model(G1, 1, &m1);
	patch_cc(1, 100, p[13], 200, 54, &m1, 0);
	patch_cc(1, 400, p[13], 200, 54, &m1, 1);

	knext = 0; /* the key pool: no key above is used again */
	/* a group drop: the chunk is gone, a PATCH starts it over */
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	put_inode(G1, FILE_INO, S_IFREG | 0644);
	memset(&m, 0, sizeof(m));
	patch_cc(0, 500, p[14], 100, 63, &m, 0);
	patch_cc(0, 700, p[15], 100, 63, &m, 1);
	ck_assert_uint_eq(m.len, 800);
	ck_assert_uint_eq(chunk_bytes_of(G1, FILE_INO), m.len);
	reopen();
	assert_model(G1, 0, &m);
}
END_TEST

/* FILE_INO's inode as put_inode makes it, with uid uid, encoded into b. */
static void enc_inode_uid(struct qfs_buf *b, uint32_t uid)
{
	struct qfs_inode in;

	qfs_inode_init(&in);
	in.a.ino = FILE_INO;
	in.a.mode = S_IFREG | 0644;
	in.a.uid = uid;
	in.a.nlink = 1;
	qfs_buf_init(b);
	qfs_inode_encode(&in, b);
	ck_assert_int_eq(b->err, 0);
	qfs_inode_close(&in);
}

/* A SETATTR of FILE_INO's size: the apply reads the inode, from the cache
 * (hit 1) or not (hit 0; -1: either); then the inode has the size and the
 * uid want, which only the value the apply read can have given it.
 * Returns the txn's result. */
static int setsize_cc(uint64_t size, uint32_t want_uid, int hit)
{
	struct qfs_txn t;
	struct qfs_op *op;
	struct qfs_inode in;
	uint32_t kl;
	uint64_t h = st->cc_hits_item;
	const uint8_t *k = kino(FILE_INO, &kl);
	int res;

	qfs_txn_init(&t);
	op = add(&t, QFS_OP_SETATTR, k, kl);
	op->mask = QFS_SET_SIZE;
	op->attr.size = size;
	res = APPLY(G1, &t);
	if (res)
		return res;
	get_inode(G1, FILE_INO, &in);
	ck_assert_uint_eq(in.a.size, size);
	ck_assert_uint_eq(in.a.uid, want_uid);
	qfs_inode_close(&in);
	if (hit == 1)
		ck_assert_uint_gt(st->cc_hits_item, h);
	else if (hit == 0)
		ck_assert_uint_eq(st->cc_hits_item, h);
	return 0;
}

/* The apply's cache of the items it wrote (store_int.h struct qfs_store
 * cc), for an inode: the next apply reads the inode from it; each other
 * writer (a 2PC commit, restore's load_item, a snapshot install, a group
 * drop, an apply's delete) and a failed txn leave nothing stale. */
START_TEST(test_apply_cc_inode)
{
	struct qfs_store_install *in;
	struct qfs_txn t;
	struct qfs_buf b;
	uint32_t kl;
	const uint8_t *k;

	put_inode(G1, FILE_INO, S_IFREG | 0644); /* uid 1 */
	ck_assert_int_eq(setsize_cc(10, 1, 1), 0);
	ck_assert_int_eq(setsize_cc(11, 1, 1), 0);

	/* a failed txn that puts the inode: nothing written */
	knext = 0; /* the key pool: no key above is used again */
	enc_inode_uid(&b, 9);
	qfs_txn_init(&t);
	k = kino(FILE_INO, &kl);
	add_put_bytes(&t, k, kl, b.data, b.len);
	add_expect(&t, QFS_OP_EXPECT_PRESENT, (const uint8_t *)"zz", 2, -ENOENT);
	ck_assert_int_eq(APPLY(G1, &t), -ENOENT);
	qfs_buf_close(&b);
	ck_assert_int_eq(setsize_cc(12, 1, -1), 0);

	/* restore's (and the scrub repair's) load_item */
	knext = 0;
	enc_inode_uid(&b, 5);
	k = kino(FILE_INO, &kl);
	ck_assert_int_eq(qfs_store_load_item(st, G1, k, kl, b.data, b.len), 0);
	qfs_buf_close(&b);
	ck_assert_int_eq(setsize_cc(13, 5, 0), 0);
	ck_assert_int_eq(setsize_cc(14, 5, 1), 0);

	/* a 2PC commit */
	knext = 0;
	enc_inode_uid(&b, 6);
	qfs_txn_init(&t);
	k = kino(FILE_INO, &kl);
	add_put_bytes(&t, k, kl, b.data, b.len);
	ck_assert_int_eq(prepare(G1, 0, &t), 0);
	ck_assert_int_eq(xop(G1, QFS_OP_COMMIT, 0, NULL), 0);
	qfs_buf_close(&b);
	ck_assert_int_eq(setsize_cc(15, 6, 0), 0);
	ck_assert_int_eq(setsize_cc(16, 6, 1), 0);

	/* a snapshot install */
	knext = 0;
	enc_inode_uid(&b, 7);
	k = kino(FILE_INO, &kl);
	ck_assert_int_eq(qfs_store_install_begin(st, G1, &in), 0);
	ck_assert_int_eq(qfs_store_install_item(in, k, kl, b.data, b.len), 0);
	ck_assert_int_eq(qfs_store_install_commit(in, 50, 1), 0);
	qfs_buf_close(&b);
	ck_assert_int_eq(setsize_cc(17, 7, 0), 0);
	ck_assert_int_eq(setsize_cc(18, 7, 1), 0);

	/* a delete by an apply: the inode is absent */
	knext = 0;
	qfs_txn_init(&t);
	k = kino(FILE_INO, &kl);
	add(&t, QFS_OP_DEL, k, kl);
	ck_assert_int_eq(APPLY(G1, &t), 0);
	ck_assert_int_ne(setsize_cc(19, 7, -1), 0);

	/* a group drop */
	knext = 0;
	put_inode(G1, FILE_INO, S_IFREG | 0644);
	ck_assert_int_eq(setsize_cc(20, 1, 1), 0);
	ck_assert_int_eq(qfs_store_drop_group(st, G1), 0);
	ck_assert_int_ne(setsize_cc(21, 1, -1), 0);
}
END_TEST


static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_empty);
	tcase_add_test(tc, test_open_fails);
	tcase_add_test(tc, test_put_get_del);
	tcase_add_test(tc, test_apply_batch_reuse);
	tcase_add_test(tc, test_expect_absent_present);
	tcase_add_test(tc, test_expect_value);
	tcase_add_test(tc, test_range_fence);
	tcase_add_test(tc, test_expect_empty);
	tcase_add_test(tc, test_del_range);
	tcase_add_test(tc, test_del_range_chunks);
	tcase_add_test(tc, test_setattr);
	tcase_add_test(tc, test_nlink);
	tcase_add_test(tc, test_link_add);
	tcase_add_test(tc, test_link_drop);
	tcase_add_test(tc, test_link_drop_sized);
	tcase_add_test(tc, test_link_drop_race);
	tcase_add_test(tc, test_setdata);
	tcase_add_test(tc, test_xattrs);
	tcase_add_test(tc, test_read_your_writes);
	tcase_add_loop_test(tc, test_atomic_loop, 0, 6);
	tcase_add_test(tc, test_lsn_rules);
	tcase_add_test(tc, test_undecodable);
	tcase_add_test(tc, test_patch_corrupt_inode);
	tcase_add_test(tc, test_count_chunk_bytes);
	tcase_add_test(tc, test_patch);
	tcase_add_test(tc, test_count_unknown_v1);
	tcase_add_test(tc, test_count_ninodes);
	tcase_add_test(tc, test_scan);
	tcase_add_test(tc, test_scan_snapshot);
	tcase_add_test(tc, test_drop_group);
	tcase_add_test(tc, test_applied_cache);
	tcase_add_test(tc, test_fence_cache);
	tcase_add_test(tc, test_group_size);
	tcase_add_test(tc, test_budget_blobs);
	tcase_add_test(tc, test_chunk_crc);
	tcase_add_test(tc, test_vlog_put_get);
	tcase_add_test(tc, test_vlog_overwrite_gc);
	tcase_add_test(tc, test_vlog_rewrite);
	tcase_add_loop_test(tc, test_vlog_rewrite_race, 0, 3);
	tcase_add_test(tc, test_vlog_drop_snapshot);
	tcase_add_test(tc, test_vlog_point_read_gc);
	tcase_add_test(tc, test_vlog_link_fails);
	tcase_add_test(tc, test_vlog_stale_next);
	tcase_add_test(tc, test_vlog_crash_replay);
	tcase_add_test(tc, test_vlog_damage);
	tcase_add_test(tc, test_vlog_off);
	tcase_add_test(tc, test_vlog_ra_window);
	tcase_add_test(tc, test_vlog_patch_extents);
	tcase_add_test(tc, test_vlog_patch_zero_tail);
	tcase_add_test(tc, test_vlog_patch_zero_end);
	tcase_add_test(tc, test_vlog_patch_overwrite);
	tcase_add_test(tc, test_vlog_patch_compact);
	tcase_add_test(tc, test_vlog_patch_gc);
	tcase_add_test(tc, test_vlog_patch_replay);
	tcase_add_test(tc, test_vlog_patch_damage);
	tcase_add_test(tc, test_vlog_patch_stale_deleted);
	tcase_add_test(tc, test_vlog_patch_writers);
	tcase_add_test(tc, test_vlog_patch_cc);
	tcase_add_test(tc, test_apply_cc_inode);
	tcase_add_test(tc, test_chunk_crc_rewrite);
	tcase_add_test(tc, test_get_val);
	tcase_add_test(tc, test_get_val_sst);
	tcase_add_test(tc, test_install_bounded);
	tcase_add_test(tc, test_install_refused);
	tcase_add_test(tc, test_install_crash);
	tcase_add_test(tc, test_install_memtable);
	tcase_add_test(tc, test_install_full_disk);
	suite_add_tcase(s, tc);
	tc = tcase_create("xact");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_xact_prepare_commit);
	tcase_add_test(tc, test_fence_cache_writers);
	tcase_add_test(tc, test_xact_abort_and_fail);
	tcase_add_test(tc, test_xact_ranges);
	tcase_add_test(tc, test_xact_link_drop);
	tcase_add_test(tc, test_xact_decide);
	tcase_add_test(tc, test_xact_duplicate_prepare);
	tcase_add_test(tc, test_xact_txid_clash_after_commit);
	tcase_add_test(tc, test_xact_count_lock);
	tcase_add_test(tc, test_xact_snapshot_install);
	tcase_add_test(tc, test_xact_corrupt_record);
	tcase_add_test(tc, test_xact_reopen_snapshot_drop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* A mount namespace of our own, made before any thread exists (a
	 * namespace is per thread, and RocksDB's background threads must
	 * see the mounts of the test): a tmpfs a test mounts goes away with
	 * the test's processes, whatever happens to them. */
	private_mounts = geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
			 mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
	return unit_run_one(store_suite());
}
