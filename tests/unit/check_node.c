/*
 * check_node.c - unit tests of the storage node (src/node) over the real
 * WAL and RocksDB store, in a private temp directory per test.
 *
 * Covers: propose/read back, conditional txns, argument errors, group
 * commit under concurrent proposers, close + reopen recovery, replay of WAL
 * records the store never applied, a store ahead of its log, a corrupt WAL
 * record (that group stopped, the others fine), group drop (also racing with
 * proposers), the FORMAT check, and -ENOSPC from a WAL on a full filesystem
 * (root only: a small tmpfs is mounted over one group's log; skipped, with a
 * message, otherwise).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/key.h"
#include "common/txn.h"
#include "node/node.h"
#include "repl/repl.h"
#include "store/store.h"
#include "wal/wal.h"
#include "wal/wal_int.h" /* test-only fault hooks */

#define G1 0x400ull
#define G2 0x401ull
#define G3 0x402ull
#define DIR_INO 1024

static char tmpdir[256];
static char nodedir[300];
static char mounted[600]; /* tmpfs to unmount in teardown, or "" */
static struct qfs_node *N;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct qfs_node *node_open(void)
{
	struct qfs_node_opts o = { .dir = nodedir, .id = 1, .az = "a" };
	struct qfs_node *n = NULL;

	ck_assert_int_eq(qfs_node_open(&o, &n), 0);
	ck_assert_ptr_nonnull(n);
	return n;
}

static void setup(void)
{
	strcpy(tmpdir, "/tmp/check_node.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(nodedir, sizeof(nodedir), "%s/n1", tmpdir);
	mounted[0] = '\0';
	N = node_open();
}

static void teardown(void)
{
	qfs_wal_fault_write_after = -1;
	qfs_wal_fault_write_errno = ENOSPC;
	qfs_wal_fault_sync_after = -1;
	qfs_wal_fault_sync_errno = EIO;
	qfs_node_close(N);
	N = NULL;
	if (mounted[0])
		umount2(mounted, MNT_DETACH);
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Encode a txn: [EXPECT_ABSENT name -EEXIST] PUT name=val. */
static void txn_put(struct qfs_buf *out, const char *name, const void *val, size_t val_len,
		    int expect_absent)
{
	static __thread uint8_t key[QFS_KEY_MAX];
	struct qfs_txn t;
	struct qfs_op *op;
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name));

	qfs_txn_init(&t);
	if (expect_absent) {
		op = qfs_txn_add(&t, QFS_OP_EXPECT_ABSENT);
		ck_assert_ptr_nonnull(op);
		op->key = key;
		op->key_len = (uint32_t)klen;
		op->err = -EEXIST;
	}
	op = qfs_txn_add(&t, QFS_OP_PUT);
	ck_assert_ptr_nonnull(op);
	op->key = key;
	op->key_len = (uint32_t)klen;
	op->val = val;
	op->val_len = (uint32_t)val_len;
	qfs_buf_reset(out);
	qfs_txn_encode(&t, out);
	ck_assert_int_eq(out->err, 0);
	qfs_txn_close(&t);
}

static int put(struct qfs_node *n, qfs_group_t g, const char *name, const char *val,
	       int expect_absent, int *result)
{
	struct qfs_buf b;
	int rc;

	qfs_buf_init(&b);
	txn_put(&b, name, val, strlen(val), expect_absent);
	rc = qfs_node_propose(n, g, b.data, b.len, result);
	qfs_buf_close(&b);
	return rc;
}

static void put_ok(struct qfs_node *n, qfs_group_t g, const char *name, const char *val)
{
	int result = 99;

	ck_assert_int_eq(put(n, g, name, val, 0, &result), 0);
	ck_assert_int_eq(result, 0);
}

/* Read name: 0 and compare with want, or the error. */
static int get(struct qfs_node *n, qfs_group_t g, const char *name, const char *want)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name)), len = 0;
	void *val = NULL;
	int rc = qfs_node_get(n, g, key, klen, &val, &len);

	if (rc)
		return rc;
	ck_assert_msg(len == strlen(want) && memcmp(val, want, len) == 0,
		      "%s: got %.*s want %s", name, (int)len, (char *)val, want);
	free(val);
	return 0;
}

static char *status(struct qfs_node *n)
{
	struct qfs_buf b;
	size_t len;
	char *s;

	qfs_buf_init(&b);
	qfs_node_status(n, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(b.err, 0);
	s = (char *)qfs_buf_steal(&b, &len);
	return s;
}

/* The status line of group g (malloc'd), or NULL. */
static char *status_line(struct qfs_node *n, qfs_group_t g)
{
	char *s = status(n), *line, *end, prefix[64], *out = NULL;

	snprintf(prefix, sizeof(prefix), "group %016llx ", (unsigned long long)g);
	line = strstr(s, prefix);
	if (line) {
		end = strchr(line, '\n');
		out = strndup(line, end ? (size_t)(end - line) : strlen(line));
	}
	free(s);
	return out;
}

static unsigned long long status_field(struct qfs_node *n, qfs_group_t g, const char *field)
{
	char *line = status_line(n, g), key[64], *p;
	unsigned long long v;

	ck_assert_ptr_nonnull(line);
	snprintf(key, sizeof(key), " %s ", field);
	p = strstr(line, key);
	ck_assert_msg(p != NULL, "no %s in %s", field, line);
	v = strtoull(p + strlen(key), NULL, 10);
	free(line);
	return v;
}

static int count_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		    void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int scan_count(struct qfs_node *n, qfs_group_t g)
{
	int count = 0;

	ck_assert_int_eq(qfs_node_scan(n, g, NULL, 0, NULL, 0, count_cb, &count), 0);
	return count;
}

static void collect_cb(qfs_group_t g, void *arg)
{
	qfs_group_t **p = arg;

	*(*p)++ = g;
}

START_TEST(test_propose_read)
{
	struct qfs_buf b;
	int result = 99;
	qfs_group_t ids[4], *ip = ids;
	char *s;

	ck_assert_int_eq(qfs_node_group_exists(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G2), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G1), -EEXIST);
	ck_assert_int_eq(qfs_node_group_exists(N, G1), 1);
	qfs_node_groups(N, collect_cb, &ip);
	ck_assert_int_eq(ip - ids, 2);
	ck_assert_uint_eq(ids[0], G1);
	ck_assert_uint_eq(ids[1], G2);

	ck_assert_int_eq(get(N, G1, "a", ""), -ENOENT);
	put_ok(N, G1, "a", "one");
	ck_assert_int_eq(get(N, G1, "a", "one"), 0);
	ck_assert_int_eq(get(N, G2, "a", ""), -ENOENT); /* groups are disjoint */

	/* A failed condition is a committed outcome: rc 0, result -EEXIST. */
	ck_assert_int_eq(put(N, G1, "a", "two", 1, &result), 0);
	ck_assert_int_eq(result, -EEXIST);
	ck_assert_int_eq(get(N, G1, "a", "one"), 0);
	ck_assert_int_eq(put(N, G1, "b", "bee", 1, &result), 0);
	ck_assert_int_eq(result, 0);
	ck_assert_int_eq(scan_count(N, G1), 2);

	ck_assert_uint_eq(status_field(N, G1, "last"), 3);
	ck_assert_uint_eq(status_field(N, G1, "durable"), 3);
	ck_assert_uint_eq(status_field(N, G1, "commit"), 3);
	ck_assert_uint_eq(status_field(N, G1, "applied"), 3);
	ck_assert_uint_eq(status_field(N, G1, "leader"), 1);
	ck_assert_uint_eq(status_field(N, G1, "wal_segments"), 1);
	ck_assert_uint_eq(status_field(N, G2, "last"), 0);
	s = status(N);
	ck_assert_msg(strncmp(s, "node 1 az a state ok dir ", 25) == 0, "%s", s);
	ck_assert_ptr_nonnull(strstr(s, "group 0000000000000400 state ok leader 1 ballot 1 last 3 "));
	free(s);

	/* Errors. */
	ck_assert_int_eq(put(N, G3, "a", "x", 0, &result), QFS_ENOGROUP);
	ck_assert_int_eq(get(N, G3, "a", "x"), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_node_scan(N, G3, NULL, 0, NULL, 0, count_cb, &result), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_node_propose(N, G1, "garbage", 7, &result), -EINVAL);
	ck_assert_int_eq(qfs_node_propose(N, G1, "x", 0, &result), -EINVAL);
	qfs_buf_init(&b);
	txn_put(&b, "c", "x", 1, 0);
	ck_assert_int_eq(qfs_node_propose(N, G1, b.data,
					  QFS_WAL_RECORD_MAX - QFS_REPL_ENTRY_HDR + 1, &result),
			 -EINVAL);
	qfs_buf_close(&b);
	ck_assert_uint_eq(status_field(N, G1, "last"), 3); /* nothing logged */
}
END_TEST

START_TEST(test_large_payload)
{
	size_t len = 1u << 20;
	char *val = malloc(len + 1);
	struct qfs_buf b;
	int result = 99;
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, "big", 3), got_len = 0;
	void *got = NULL;

	ck_assert_ptr_nonnull(val);
	for (size_t i = 0; i < len; i++)
		val[i] = (char)('a' + i % 23);
	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	qfs_buf_init(&b);
	txn_put(&b, "big", val, len, 0);
	ck_assert_int_eq(qfs_node_propose(N, G1, b.data, b.len, &result), 0);
	ck_assert_int_eq(result, 0);
	qfs_buf_close(&b);
	ck_assert_int_eq(qfs_node_get(N, G1, key, klen, &got, &got_len), 0);
	ck_assert_uint_eq(got_len, len);
	ck_assert(memcmp(got, val, len) == 0);
	free(got);
	free(val);
}
END_TEST

#define NTHREADS 8
#define NPROPS 200

struct worker {
	pthread_t t;
	int id;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32], val[32];

	for (int i = 0; i < NPROPS; i++) {
		int result = 99;

		snprintf(name, sizeof(name), "w%d-%d", w->id, i);
		snprintf(val, sizeof(val), "v%d", i);
		if (put(N, w->id % 2 ? G2 : G1, name, val, 1, &result) != 0 || result != 0)
			w->failures++;
	}
	return NULL;
}

START_TEST(test_group_commit)
{
	struct worker w[NTHREADS];
	struct qfs_node_stat st;
	char name[32], val[32];

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G2), 0);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].id = i;
		w[i].failures = 0;
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(w[i].t, NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	qfs_node_stat(N, &st);
	ck_assert_uint_eq(st.proposals, NTHREADS * NPROPS);
	ck_assert_msg(st.fsyncs < st.proposals, "fsyncs %llu proposals %llu",
		      (unsigned long long)st.fsyncs, (unsigned long long)st.proposals);
	ck_assert_uint_le(st.commits, st.fsyncs);
	ck_assert_uint_gt(st.bytes_logged, 0);
	fprintf(stderr, "group commit: %llu proposals, %llu fsyncs, %llu rounds\n",
		(unsigned long long)st.proposals, (unsigned long long)st.fsyncs,
		(unsigned long long)st.commits);

	for (int t = 0; t < NTHREADS; t++)
		for (int i = 0; i < NPROPS; i += 37) {
			snprintf(name, sizeof(name), "w%d-%d", t, i);
			snprintf(val, sizeof(val), "v%d", i);
			ck_assert_int_eq(get(N, t % 2 ? G2 : G1, name, val), 0);
		}
	ck_assert_int_eq(scan_count(N, G1), NTHREADS / 2 * NPROPS);
	ck_assert_uint_eq(status_field(N, G1, "last"), NTHREADS / 2 * NPROPS);
	ck_assert_uint_eq(status_field(N, G2, "applied"), NTHREADS / 2 * NPROPS);
}
END_TEST

START_TEST(test_reopen)
{
	char name[32], val[32];

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G2), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G3), 0); /* stays empty */
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		put_ok(N, i % 2 ? G2 : G1, name, val);
	}
	qfs_node_close(N);
	N = node_open();
	ck_assert_int_eq(qfs_node_group_exists(N, G1), 1);
	ck_assert_int_eq(qfs_node_group_exists(N, G2), 1);
	ck_assert_int_eq(qfs_node_group_exists(N, G3), 1);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		ck_assert_int_eq(get(N, i % 2 ? G2 : G1, name, val), 0);
	}
	ck_assert_uint_eq(status_field(N, G1, "last"), 25);
	ck_assert_uint_eq(status_field(N, G1, "applied"), 25);
	ck_assert_uint_eq(status_field(N, G3, "last"), 0);
	/* LSNs continue where the log ended. */
	put_ok(N, G1, "after", "reopen");
	put_ok(N, G3, "first", "entry");
	ck_assert_uint_eq(status_field(N, G1, "last"), 26);
	ck_assert_uint_eq(status_field(N, G3, "last"), 1);
	qfs_node_close(N);
	N = node_open();
	ck_assert_int_eq(get(N, G1, "after", "reopen"), 0);
	ck_assert_int_eq(get(N, G3, "first", "entry"), 0);
	ck_assert_uint_eq(status_field(N, G1, "durable"), 26);
}
END_TEST

static void group_wal_dir(qfs_group_t g, char *out, size_t size)
{
	snprintf(out, size, "%s/wal/%016llx", nodedir, (unsigned long long)g);
}

/* Crash after fsync but before apply: records in the WAL the store lacks. */
START_TEST(test_replay_store_behind)
{
	char path[512], name[32], val[32];
	struct qfs_wal *w;
	struct qfs_buf b;
	qfs_lsn_t lsn;

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		put_ok(N, G1, name, "old");
	}
	qfs_node_close(N);
	N = NULL;

	group_wal_dir(G1, path, sizeof(path));
	ck_assert_int_eq(qfs_wal_open(path, NULL, &w), 0);
	ck_assert_uint_eq(qfs_wal_last(w), 5);
	qfs_buf_init(&b);
	for (lsn = 6; lsn <= 9; lsn++) {
		struct qfs_repl_entry e = { .lsn = lsn, .ballot = 1, .type = QFS_REPL_ENTRY_TXN };
		uint8_t hdr[QFS_REPL_ENTRY_HDR];
		uint8_t *rec;

		snprintf(name, sizeof(name), "k%llu", (unsigned long long)lsn);
		snprintf(val, sizeof(val), "replayed%llu", (unsigned long long)lsn);
		txn_put(&b, name, val, strlen(val), 0);
		qfs_repl_entry_encode_hdr(hdr, &e);
		rec = malloc(sizeof(hdr) + b.len);
		memcpy(rec, hdr, sizeof(hdr));
		memcpy(rec + sizeof(hdr), b.data, b.len);
		ck_assert_int_eq(qfs_wal_append(w, lsn, rec, sizeof(hdr) + b.len), 0);
		free(rec);
	}
	/* and a no-op barrier */
	{
		struct qfs_repl_entry e = { .lsn = 10, .ballot = 1, .type = QFS_REPL_ENTRY_NOOP };
		uint8_t hdr[QFS_REPL_ENTRY_HDR];

		qfs_repl_entry_encode_hdr(hdr, &e);
		ck_assert_int_eq(qfs_wal_append(w, 10, hdr, sizeof(hdr)), 0);
	}
	ck_assert_int_eq(qfs_wal_sync(w), 0);
	qfs_wal_close(w);
	qfs_buf_close(&b);

	N = node_open();
	for (lsn = 6; lsn <= 9; lsn++) {
		snprintf(name, sizeof(name), "k%llu", (unsigned long long)lsn);
		snprintf(val, sizeof(val), "replayed%llu", (unsigned long long)lsn);
		ck_assert_int_eq(get(N, G1, name, val), 0);
	}
	ck_assert_int_eq(get(N, G1, "k0", "old"), 0);
	ck_assert_uint_eq(status_field(N, G1, "applied"), 10);
	ck_assert_uint_eq(status_field(N, G1, "last"), 10);
	put_ok(N, G1, "k11", "new");
	ck_assert_uint_eq(status_field(N, G1, "applied"), 11);

	/* The store agrees, read on its own. */
	qfs_node_close(N);
	{
		struct qfs_store *s;
		qfs_lsn_t applied = 0;

		snprintf(path, sizeof(path), "%s/store", nodedir);
		ck_assert_int_eq(qfs_store_open(path, &s), 0);
		ck_assert_int_eq(qfs_store_applied(s, G1, &applied), 0);
		ck_assert_uint_eq(applied, 11);
		qfs_store_close(s);
	}
	N = node_open();
}
END_TEST

/* The store applied an entry the log does not have: the log was lost. */
START_TEST(test_lost_log)
{
	char path[512], *line;
	struct qfs_store *s;
	struct qfs_buf b;
	int result;

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G2), 0);
	put_ok(N, G1, "a", "1");
	put_ok(N, G1, "b", "2");
	put_ok(N, G2, "a", "1");
	qfs_node_close(N);
	N = NULL;

	snprintf(path, sizeof(path), "%s/store", nodedir);
	ck_assert_int_eq(qfs_store_open(path, &s), 0);
	qfs_buf_init(&b);
	txn_put(&b, "c", "3", 1, 0);
	ck_assert_int_eq(qfs_store_apply(s, G1, 3, b.data, b.len, &result), 0);
	qfs_buf_close(&b);
	qfs_store_close(s);

	N = node_open();
	ck_assert_int_eq(put(N, G1, "d", "4", 0, &result), QFS_ESTOPPED);
	ck_assert_int_eq(get(N, G1, "a", "1"), QFS_ESTOPPED);
	line = status_line(N, G1);
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strstr(line, "state stopped err \"lost log") != NULL, "%s", line);
	free(line);
	/* The other group is served. */
	ck_assert_int_eq(get(N, G2, "a", "1"), 0);
	put_ok(N, G2, "b", "2");
}
END_TEST

/* Flip one byte of the first occurrence of pat in the files under dir. */
static int corrupt_in_dir(const char *dir, const char *pat)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int done = 0;

	ck_assert_ptr_nonnull(d);
	while (!done && (de = readdir(d)) != NULL) {
		char path[1024];
		struct stat sb;
		char *buf, *hit;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0)
			continue;
		buf = malloc((size_t)sb.st_size);
		fd = open(path, O_RDWR);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pread(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
		hit = memmem(buf, (size_t)sb.st_size, pat, strlen(pat));
		if (hit) {
			char c = (char)(hit[0] ^ 0x20);

			ck_assert_int_eq(pwrite(fd, &c, 1, hit - buf), 1);
			ck_assert_int_eq(fsync(fd), 0);
			done = 1;
		}
		close(fd);
		free(buf);
	}
	closedir(d);
	return done;
}

START_TEST(test_corrupt_wal)
{
	char path[512], name[32], val[300], *line;
	int result;

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G2), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		memset(val, 'x', sizeof(val) - 1);
		val[sizeof(val) - 1] = '\0';
		memcpy(val, "MARK-", 5);
		val[5] = (char)('A' + i);
		put_ok(N, G1, name, val);
		put_ok(N, G2, name, "fine");
	}
	qfs_node_close(N);
	N = NULL;

	/* A record in the middle: valid records follow it, so it is not a torn
	 * tail but corruption. */
	group_wal_dir(G1, path, sizeof(path));
	ck_assert_int_eq(corrupt_in_dir(path, "MARK-K"), 1);

	N = node_open(); /* not an open failure */
	ck_assert_int_eq(qfs_node_group_exists(N, G1), 1);
	ck_assert_int_eq(put(N, G1, "new", "x", 0, &result), QFS_ESTOPPED);
	ck_assert_int_eq(get(N, G1, "k0", "whatever"), QFS_ESTOPPED);
	ck_assert_int_eq(qfs_node_scan(N, G1, NULL, 0, NULL, 0, count_cb, &result), QFS_ESTOPPED);
	line = status_line(N, G1);
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strstr(line, "state stopped err \"") != NULL, "%s", line);
	ck_assert_msg(strstr(line, "corrupt") != NULL || strstr(line, "checksum") != NULL, "%s",
		      line);
	free(line);

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		ck_assert_int_eq(get(N, G2, name, "fine"), 0);
	}
	put_ok(N, G2, "more", "ok");

	/* A stopped group can still be dropped and created again. */
	ck_assert_int_eq(qfs_node_group_drop(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	put_ok(N, G1, "fresh", "start");
	ck_assert_int_eq(get(N, G1, "k0", ""), -ENOENT);
}
END_TEST

START_TEST(test_drop)
{
	char path[512];
	struct stat sb;
	int result;

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G2), 0);
	put_ok(N, G1, "a", "1");
	put_ok(N, G1, "b", "2");
	put_ok(N, G2, "a", "other");
	ck_assert_int_eq(qfs_node_group_drop(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_drop(N, G1), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_node_group_exists(N, G1), 0);
	ck_assert_int_eq(get(N, G1, "a", "1"), QFS_ENOGROUP);
	ck_assert_int_eq(put(N, G1, "c", "3", 0, &result), QFS_ENOGROUP);
	group_wal_dir(G1, path, sizeof(path));
	ck_assert_int_eq(stat(path, &sb), -1);
	ck_assert_ptr_null(status_line(N, G1));
	ck_assert_int_eq(get(N, G2, "a", "other"), 0);

	/* Gone after a reopen too, and a new group of that id starts empty. */
	qfs_node_close(N);
	N = node_open();
	ck_assert_int_eq(qfs_node_group_exists(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(get(N, G1, "a", ""), -ENOENT);
	ck_assert_int_eq(scan_count(N, G1), 0);
	ck_assert_uint_eq(status_field(N, G1, "last"), 0);
	put_ok(N, G1, "a", "new");
	ck_assert_uint_eq(status_field(N, G1, "last"), 1);
}
END_TEST

/* A crash in the middle of a drop leaves a tombstone the next open finishes. */
START_TEST(test_drop_resumed)
{
	char path[512], tomb[600];

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	put_ok(N, G1, "a", "1");
	qfs_node_close(N);
	N = NULL;
	group_wal_dir(G1, path, sizeof(path));
	snprintf(tomb, sizeof(tomb), "%s.drop", path);
	ck_assert_int_eq(rename(path, tomb), 0);
	N = node_open();
	ck_assert_int_eq(qfs_node_group_exists(N, G1), 0);
	ck_assert_int_eq(access(tomb, F_OK), -1);
	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(get(N, G1, "a", ""), -ENOENT);
}
END_TEST

struct dropper {
	pthread_t t;
	int id;
	int bad;
	int ok;
};

static void *drop_worker(void *arg)
{
	struct dropper *d = arg;
	char name[32];

	for (int i = 0; i < 300; i++) {
		int result = 99, rc;

		snprintf(name, sizeof(name), "d%d-%d", d->id, i);
		rc = put(N, G1, name, "v", 0, &result);
		if (rc == 0 && result == 0)
			d->ok++;
		else if (rc != QFS_ENOGROUP)
			d->bad++;
	}
	return NULL;
}

START_TEST(test_drop_racing_proposals)
{
	struct dropper d[4];

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	for (int i = 0; i < 4; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		d[i].id = i;
		ck_assert_int_eq(pthread_create(&d[i].t, NULL, drop_worker, &d[i]), 0);
	}
	usleep(20000);
	ck_assert_int_eq(qfs_node_group_drop(N, G1), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(d[i].t, NULL);
		ck_assert_int_eq(d[i].bad, 0);
	}
	ck_assert_int_eq(qfs_node_group_exists(N, G1), 0);
}
END_TEST

START_TEST(test_format)
{
	char path[600], other[512], buf[64];
	struct qfs_node_opts o = { .id = 1, .az = "a" };
	struct qfs_node *n = (struct qfs_node *)&o;
	int fd;
	ssize_t len;

	snprintf(path, sizeof(path), "%s/FORMAT", nodedir);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	len = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_eq(len, 16);
	ck_assert(memcmp(buf, "quorumfs-node 1\n", 16) == 0);

	snprintf(other, sizeof(other), "%s/n2", tmpdir);
	ck_assert_int_eq(mkdir(other, 0755), 0);
	snprintf(path, sizeof(path), "%s/FORMAT", other);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "quorumfs-node 2\n", 16), 16);
	close(fd);
	o.dir = other;
	ck_assert_int_eq(qfs_node_open(&o, &n), QFS_EFORMAT);
	ck_assert_ptr_eq(n, (struct qfs_node *)&o); /* untouched */

	o.id = 0;
	ck_assert_int_eq(qfs_node_open(&o, &n), -EINVAL);
	qfs_node_close(NULL);
}
END_TEST

/* -ENOSPC from the log: those proposals fail, the group stays open, LSNs stay
 * consecutive, and everything acknowledged survives a reopen. */
START_TEST(test_enospc)
{
	char path[512], name[32], *val, *line;
	size_t vlen = 16 << 10;
	int result, nok = 0, rc = 0, i;

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	qfs_node_close(N);
	N = NULL;
	group_wal_dir(G1, path, sizeof(path));
	if (mount("tmpfs", path, "tmpfs", 0, "size=256k") < 0) {
		fprintf(stderr, "test_enospc skipped: cannot mount tmpfs (%s)\n", strerror(errno));
		N = node_open();
		return;
	}
	snprintf(mounted, sizeof(mounted), "%s", path);
	N = node_open();

	val = malloc(vlen + 1);
	memset(val, 'z', vlen);
	val[vlen] = '\0';
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		rc = put(N, G1, name, val, 0, &result);
		if (rc)
			break;
		ck_assert_int_eq(result, 0);
		nok++;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_gt(nok, 0);
	line = status_line(N, G1);
	ck_assert_msg(strstr(line, "state ok") != NULL, "group stopped on ENOSPC: %s", line);
	free(line);
	ck_assert_uint_eq(status_field(N, G1, "last"), (unsigned long long)nok);
	/* Still full: fails again, nothing changes. */
	ck_assert_int_eq(put(N, G1, "again", val, 0, &result), -ENOSPC);
	ck_assert_int_eq(get(N, G1, "again", ""), -ENOENT);
	snprintf(name, sizeof(name), "k%d", i);
	ck_assert_int_eq(get(N, G1, name, ""), -ENOENT);

	/* Space comes back. */
	ck_assert_int_eq(mount("tmpfs", path, "tmpfs", MS_REMOUNT, "size=8m"), 0);
	put_ok(N, G1, "after", "space");
	ck_assert_uint_eq(status_field(N, G1, "last"), (unsigned long long)nok + 1);

	qfs_node_close(N);
	N = node_open();
	ck_assert_uint_eq(status_field(N, G1, "last"), (unsigned long long)nok + 1);
	ck_assert_int_eq(get(N, G1, "after", "space"), 0);
	for (i = 0; i < nok; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		ck_assert_int_eq(get(N, G1, name, val), 0);
	}
	free(val);
}
END_TEST


/* A failing write (ENOSPC, EDQUOT) fails only its batch; a failing fsync
 * stops the group; reopening recovers it. */
START_TEST(test_wal_faults)
{
	char *line;
	int result;

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	ck_assert_int_eq(qfs_node_group_create(N, G2), 0);
	put_ok(N, G1, "a", "1");

	qfs_wal_fault_write_errno = ENOSPC;
	qfs_wal_fault_write_after = 0;
	ck_assert_int_eq(put(N, G1, "b", "2", 0, &result), -ENOSPC);
	ck_assert_int_eq(get(N, G1, "b", ""), -ENOENT);
	ck_assert_uint_eq(status_field(N, G1, "last"), 1);
	put_ok(N, G1, "c", "3");
	ck_assert_uint_eq(status_field(N, G1, "last"), 2);

	qfs_wal_fault_write_errno = EDQUOT;
	qfs_wal_fault_write_after = 0;
	ck_assert_int_eq(put(N, G1, "d", "4", 0, &result), -EDQUOT);
	put_ok(N, G1, "e", "5");
	ck_assert_uint_eq(status_field(N, G1, "last"), 3);
	ck_assert_uint_eq(status_field(N, G1, "applied"), 3);

	/* fsync fails: sticky in the WAL, the group stops. */
	qfs_wal_fault_sync_errno = EIO;
	qfs_wal_fault_sync_after = 0;
	ck_assert_int_eq(put(N, G1, "f", "6", 0, &result), -EIO);
	ck_assert_int_eq(put(N, G1, "g", "7", 0, &result), QFS_ESTOPPED);
	ck_assert_int_eq(get(N, G1, "a", "1"), QFS_ESTOPPED);
	line = status_line(N, G1);
	ck_assert_msg(strstr(line, "state stopped err \"wal write failed") != NULL, "%s", line);
	free(line);
	put_ok(N, G2, "other", "fine");

	qfs_node_close(N);
	N = node_open();
	ck_assert_int_eq(get(N, G1, "a", "1"), 0);
	ck_assert_int_eq(get(N, G1, "c", "3"), 0);
	ck_assert_int_eq(get(N, G1, "e", "5"), 0);
	ck_assert_int_eq(get(N, G1, "b", ""), -ENOENT);
	ck_assert_int_eq(get(N, G1, "d", ""), -ENOENT);
	ck_assert_int_eq(get(N, G1, "g", ""), -ENOENT);
	put_ok(N, G1, "h", "8");
	ck_assert_int_eq(get(N, G2, "other", "fine"), 0);
}
END_TEST

/* Fail the i-th segment write with ENOSPC during a run of proposals: every
 * proposal either succeeds or fails with -ENOSPC, LSNs stay consecutive,
 * and after a reopen exactly the acknowledged ones are there. */
START_TEST(test_write_fault_loop)
{
	char name[32], val[32];
	int ok[30], nok = 0, result;

	ck_assert_int_eq(qfs_node_group_create(N, G1), 0);
	qfs_wal_fault_write_errno = ENOSPC;
	qfs_wal_fault_write_after = _i;
	for (int k = 0; k < 30; k++) {
		int rc;

		snprintf(name, sizeof(name), "k%d", k);
		snprintf(val, sizeof(val), "v%d", k);
		rc = put(N, G1, name, val, 0, &result);
		ck_assert_msg(rc == 0 || rc == -ENOSPC, "k=%d rc=%d", k, rc);
		ok[k] = rc == 0;
		nok += ok[k];
	}
	qfs_wal_fault_write_after = -1;
	ck_assert_int_ge(nok, 29);
	ck_assert_uint_eq(status_field(N, G1, "last"), (unsigned long long)nok);
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < 30; k++) {
			snprintf(name, sizeof(name), "k%d", k);
			snprintf(val, sizeof(val), "v%d", k);
			ck_assert_int_eq(get(N, G1, name, val), ok[k] ? 0 : -ENOENT);
		}
		qfs_node_close(N);
		N = node_open();
		ck_assert_uint_eq(status_field(N, G1, "last"), (unsigned long long)nok);
	}
}
END_TEST

static Suite *node_suite(void)
{
	Suite *s = suite_create("node");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_propose_read);
	tcase_add_test(tc, test_large_payload);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_replay_store_behind);
	tcase_add_test(tc, test_lost_log);
	tcase_add_test(tc, test_corrupt_wal);
	tcase_add_test(tc, test_drop);
	tcase_add_test(tc, test_drop_resumed);
	tcase_add_test(tc, test_drop_racing_proposals);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_enospc);
	tcase_add_test(tc, test_wal_faults);
	tcase_add_loop_test(tc, test_write_fault_loop, 0, 32);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(node_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
