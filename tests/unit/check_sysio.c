/*
 * check_sysio.c - unit tests of the system-I/O layer (src/common/sysio.h)
 * and fault-injection loops over the real storage stack through it
 * (doc/sysio.md).
 *
 * "helpers": the durable-file helpers (file_put replaces or leaves the old
 * content, never a mix, and no temp file behind, whichever step fails;
 * mkdir; write-all loops over short writes), the fault table (nth call,
 * kind mask, PERSIST, torn writes, counts, reset, a test override).
 *
 * "cell1": a one-node cell (one real rnode: its WAL, promise and members
 * files, RocksDB store, the cell's DROPPED tombstones).  A clean run of
 * the workload counts the calls of each kind; the loop then fails the
 * i-th write, fsync/fdatasync, rename, open, unlink and mkdir of the
 * workload (i up to plan[], which the count test proves covers every call
 * the workload makes) with ENOSPC or EIO, closes the cell, reopens it with no faults
 * and checks: every acknowledged txn is there and whole, a txn that failed
 * is absent or whole (two puts each: never one of them), nothing that was
 * never proposed appears, an acknowledged create or drop stays, the failure
 * came back to the caller as an error, and after a failed fsync no later
 * proposal was acknowledged before the reopen (no retried fsync
 * "fsyncgate": the group stopped).
 *
 * "cell3": the same workload on the three-node cell, failing the i-th
 * write or fsync of whichever node makes it (a sample of i): the quorum
 * keeps acknowledging, nothing acknowledged is lost after the reopen, a
 * fault shows as an error or a stopped replica.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "common/sysio.h"
#include "common/txn.h"
#include "node/cell.h"
#include "router/route.h"
#include "node/node_int.h"
#include "node/rnode.h"
#include "runner.h"

#define G 0x600ull
#define G2 0x601ull
#define G3 0x602ull
#define DIR_INO 1024
#define NPROP 12     /* txns of one workload */
#define N3_STEP 7    /* cell3: every 7th call ... */
#define N3_ITER 8    /* ... 8 of them per kind */

static char basedir[64];  /* one per run, removed by main */
static char tmpdir[256];  /* one per test, under basedir */
static struct qfs_cell *C;
static uint32_t n_nodes;  /* of the open cell */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void setup(void)
{
	qfs_log_level = getenv("QFS_TEST_LOG") ? QFS_LOG_DEBUG : -1;
	qfs_sysio_reset();
	snprintf(tmpdir, sizeof(tmpdir), "%s/t.XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	qfs_sysio_reset();
	if (C)
		qfs_cell_close(C);
	C = NULL;
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ helpers */

static int tmp_files(void)
{
	char cmd[400];
	FILE *p;
	int n = 0, c;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c '\\.tmp$'", tmpdir);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	while ((c = fgetc(p)) != EOF)
		;
	pclose(p);
	return n;
}

/* Whichever step of file_put fails (open, write, fsync, rename, directory
 * fsync), the file holds the old content or the new one and no temp file
 * is left; the error is returned. */
START_TEST(t_file_put_faults)
{
	static const int kinds[] = { QFS_SYSIO_OPEN, QFS_SYSIO_WRITE, QFS_SYSIO_SYNC, QFS_SYSIO_RENAME };
	char path[400], got[256];

	snprintf(path, sizeof(path), "%s/f", tmpdir);
	ck_assert_int_eq(qfs_sysio_file_put(path, "old\n", 4), 0);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (unsigned long nth = 1; nth <= 3; nth++) {
			int rc;

			qfs_sysio_fault_set(QFS_SYSIO_BIT(kinds[k]), nth, ENOSPC, 0);
			rc = qfs_sysio_file_put(path, "new contents\n", 13);
			ck_assert_int_eq(rc, qfs_sysio_fault_fired() ? -ENOSPC : 0);
			ck_assert_int_eq(qfs_node_file_get(path, got, sizeof(got)), 0);
			if (rc == 0 || nth == 2) /* the directory's open or fsync failed */
				ck_assert_str_eq(got, "new contents\n");
			else
				ck_assert_str_eq(got, "old\n");
			ck_assert_int_eq(tmp_files(), 0);
			qfs_sysio_reset();
			ck_assert_int_eq(qfs_sysio_file_put(path, "old\n", 4), 0);
		}
	}
	/* an explicit temp name, and a path too long for its ".tmp" */
	{
		char tmp[400], lng[PATH_MAX + 8];

		snprintf(tmp, sizeof(tmp), "%s/.f.part", tmpdir);
		ck_assert_int_eq(qfs_sysio_file_put_tmp(path, tmp, "x", 1), 0);
		ck_assert_int_eq(qfs_node_file_get(path, got, sizeof(got)), 0);
		ck_assert_str_eq(got, "x");
		ck_assert_int_eq(access(tmp, F_OK), -1);
		memset(lng, 'a', sizeof(lng) - 1);
		lng[sizeof(lng) - 1] = '\0';
		ck_assert_int_eq(qfs_sysio_file_put(lng, "x", 1), -ENAMETOOLONG);
	}
}
END_TEST

START_TEST(t_mkdir)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/d", tmpdir);
	ck_assert_int_eq(qfs_sysio_mkdir(path, 0700), 0);
	ck_assert_int_eq(qfs_sysio_mkdir(path, 0700), -EEXIST);
	snprintf(path, sizeof(path), "%s/e", tmpdir);
	qfs_sysio_count_start();
	qfs_sysio_fault_set(QFS_SYSIO_BIT(QFS_SYSIO_SYNC), 1, EIO, 0);
	ck_assert_int_eq(qfs_sysio_mkdir(path, 0700), -EIO); /* made, its parent not synced */
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_MKDIR), 1);
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_SYNC), 1);
	qfs_sysio_fault_set(QFS_SYSIO_BIT(QFS_SYSIO_MKDIR), 1, ENOSPC, 0);
	snprintf(path, sizeof(path), "%s/f", tmpdir);
	ck_assert_int_eq(qfs_sysio_mkdir(path, 0700), -ENOSPC);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(qfs_sysio_fsync_dir(path), -ENOENT);
	ck_assert_int_eq(qfs_sysio_fsync_parent("no-slash-here"), 0); /* "." */
}
END_TEST

static unsigned long n_override;

static ssize_t short_write(int fd, const void *buf, size_t len)
{
	n_override++;
	return qfs_sysio_default.write(fd, buf, len > 3 ? 3 : len);
}

/* The table: counts only once hooked, nth / mask / PERSIST, a torn write,
 * a test's override of one entry (the helpers loop over short writes),
 * reset. */
START_TEST(t_table)
{
	char path[400], got[64];
	int fd;

	snprintf(path, sizeof(path), "%s/w", tmpdir);
	ck_assert_ptr_eq(qfs_sysio.write, qfs_sysio_default.write);
	fd = qfs_sys_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_OPEN), 0); /* not counting */
	qfs_sysio_count_start();
	ck_assert_ptr_ne(qfs_sysio.write, qfs_sysio_default.write);
	ck_assert_int_eq(qfs_sysio_pwrite_all(fd, "abcd", 4, 0), 0);
	ck_assert_int_eq(qfs_sysio_fdatasync(fd), 0);
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_WRITE), 1);
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_SYNC), 1);
	/* the 2nd write or sync from now, and every later one */
	qfs_sysio_fault_set(QFS_SYSIO_BIT(QFS_SYSIO_WRITE) | QFS_SYSIO_BIT(QFS_SYSIO_SYNC), 2, EIO,
			    QFS_SYSIO_PERSIST);
	ck_assert_int_eq(qfs_sysio_pwrite_all(fd, "efgh", 4, 4), 0);
	ck_assert_int_eq(qfs_sysio_pwrite_all(fd, "ijklmnop", 8, 8), -EIO);
	ck_assert_int_eq(qfs_sysio_fsync(fd), -EIO);
	ck_assert_int_eq(qfs_sysio_fdatasync(fd), -EIO);
	ck_assert_uint_eq(qfs_sysio_fault_fired(), 3);
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_WRITE), 3);
	ck_assert_int_eq(pread(fd, got, sizeof(got), 0), 12); /* half of the failed write landed */
	ck_assert_int_eq(memcmp(got, "abcdefghijkl", 12), 0);
	/* a kind outside the mask is not touched */
	ck_assert_int_eq(qfs_sys_ftruncate(fd, 4), 0);
	qfs_sysio_fault_set(0, 1, EIO, 0); /* disarmed */
	ck_assert_int_eq(qfs_sysio_fsync(fd), 0);
	close(fd);
	qfs_sysio_reset();
	ck_assert_ptr_eq(qfs_sysio.write, qfs_sysio_default.write);
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_WRITE), 0);
	/* an override: short writes, which file_put must loop over */
	__atomic_store_n(&qfs_sysio.write, short_write, __ATOMIC_RELEASE);
	ck_assert_int_eq(qfs_sysio_file_put(path, "0123456789", 10), 0);
	ck_assert_uint_eq(n_override, 4);
	/* hooks installed over an override call it */
	qfs_sysio_count_start();
	ck_assert_int_eq(qfs_sysio_file_put(path, "0123456789", 10), 0);
	ck_assert_uint_eq(n_override, 8);
	ck_assert_uint_eq(qfs_sysio_count(QFS_SYSIO_WRITE), 4);
	qfs_sysio_reset();
	ck_assert_ptr_eq(qfs_sysio.write, qfs_sysio_default.write);
	ck_assert_int_eq(qfs_node_file_get(path, got, sizeof(got)), 0);
	ck_assert_str_eq(got, "0123456789");
}
END_TEST

/* ------------------------------------------------------------ the cell workload */

static void cell_open(uint32_t nodes)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = {
		.dir = tmpdir,
		.nodes = nodes,
		.timeout_ms = 3000,
		.paxos = &prm,
		/* no zeros ahead: a failed write of zeros fails nothing by
		 * design (check_wal's "zeros" case tests that), where this
		 * loop asserts that every failed call surfaces; and written a
		 * page per call they would multiply the writes to fail */
		.wal_zero_ahead = UINT64_MAX,
	};

	qfs_paxos_params_default(&prm);
	prm.election_min_ms = nodes == 1 ? 20 : 150;
	prm.election_max_ms = nodes == 1 ? 40 : 300;
	prm.heartbeat_ms = nodes == 1 ? 5 : 30;
	prm.lease_ms = nodes == 1 ? 15 : 200;
	ck_assert_ptr_null(C);
	ck_assert_int_eq(qfs_cell_open(&o, &C), 0);
	n_nodes = nodes;
	ck_assert_int_eq(qfs_route_attach(C), 0);
}

static void cell_close(void)
{
	qfs_cell_close(C);
	C = NULL;
}

/* The txn of step j: PUT j/a=v, PUT j/b=v (all or nothing). */
static void val_of(int j, char *v, size_t len)
{
	snprintf(v, len, "value-%d-%08x", j, (unsigned)(j * 2654435761u));
}

static int propose_j(int j, int *result)
{
	uint8_t ka[QFS_KEY_MAX], kb[QFS_KEY_MAX];
	char na[16], nb[16], v[40];
	struct qfs_buf b;
	struct qfs_txn t;
	struct qfs_op *op;
	size_t la, lb;
	int rc;

	snprintf(na, sizeof(na), "%d-a", j);
	snprintf(nb, sizeof(nb), "%d-b", j);
	val_of(j, v, sizeof(v));
	la = qfs_key_dentry(ka, DIR_INO, na, strlen(na));
	lb = qfs_key_dentry(kb, DIR_INO, nb, strlen(nb));
	qfs_buf_init(&b);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_PUT);
	ck_assert_ptr_nonnull(op);
	op->key = ka;
	op->key_len = (uint32_t)la;
	op->val = (const uint8_t *)v;
	op->val_len = (uint32_t)strlen(v);
	op = qfs_txn_add(&t, QFS_OP_PUT);
	ck_assert_ptr_nonnull(op);
	op->key = kb;
	op->key_len = (uint32_t)lb;
	op->val = (const uint8_t *)v;
	op->val_len = (uint32_t)strlen(v);
	qfs_txn_encode(&t, &b);
	ck_assert_int_eq(b.err, 0);
	rc = qfs_cell_propose(C, G, b.data, b.len, result);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	return rc;
}

/* 1 if j/<half> holds step j's value, 0 if absent; fails on anything else. */
static int item_state(int j, char half)
{
	uint8_t key[QFS_KEY_MAX];
	char name[16], v[40];
	size_t klen, vlen = 0;
	void *val = NULL;
	int rc;

	snprintf(name, sizeof(name), "%d-%c", j, half);
	klen = qfs_key_dentry(key, DIR_INO, name, strlen(name));
	rc = qfs_cell_get(C, G, key, klen, &val, &vlen);
	if (rc == -ENOENT)
		return 0;
	ck_assert_msg(rc == 0, "get %s: %s", name, qfs_strerror(rc));
	val_of(j, v, sizeof(v));
	ck_assert_msg(vlen == strlen(v) && memcmp(val, v, vlen) == 0, "item %s holds another value", name);
	free(val);
	return 1;
}

enum { ST_NONE, ST_ACKED, ST_FAILED };

struct run {
	int st[NPROP];        /* outcome of each step's txn */
	int drop_rc;          /* of the drop of G2 (1: not tried) */
	int create_rc;        /* of the create of G3 (1: not tried) */
	int errors;           /* calls that returned an error */
	int first_err;
	int after_sync_fail;  /* proposals acknowledged after an fsync error
				 failed a txn or a seal of G */
	int g2_stopped;       /* G2's stopped replicas just before its drop */
	uint64_t starts[4];   /* qfs_cell_node_starts of nodes 1..3 before */
};

/* Group G (and G2, to drop) created and led, one txn through: the state
 * every run starts from, made before any fault is armed. */
static void prepare(uint32_t nodes)
{
	int result = 99;

	cell_open(nodes);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G2), 0);
	/* a reopen elects at once (a created group waits for the I/O
	 * thread's next idle wakeup, up to a second) */
	cell_close();
	cell_open(nodes);
	ck_assert_int_eq(propose_j(NPROP, &result), 0); /* step NPROP: the warm-up */
	ck_assert_int_eq(result, 0);
}

static int group_stopped(qfs_group_t g);

static void note_err(struct run *r, int rc)
{
	if (!r->errors++)
		r->first_err = rc;
}

/* NPROP txns; a seal of G's WAL after every 4th; the create of G3 after
 * the 3rd and the drop of G2 after the 6th (their errors are noted, G goes
 * on).  Stops at the first error of a txn
 * or a seal of G, after one more proposal (kept in st[]) to see whether
 * the group still acknowledges. */
static void workload(struct run *r, int sync_fault)
{
	memset(r, 0, sizeof(*r));
	r->drop_rc = r->create_rc = 1;
	for (uint32_t id = 1; id <= n_nodes; id++)
		r->starts[id] = qfs_cell_node_starts(C, id);
	for (int j = 0; j < NPROP; j++) {
		int result = 99, rc = propose_j(j, &result);

		if (rc == 0 && result == 0) {
			r->st[j] = ST_ACKED;
		} else {
			r->st[j] = ST_FAILED;
			note_err(r, rc ? rc : result);
		}
		if (r->errors && j + 1 < NPROP && r->st[j] == ST_FAILED) {
			/* one more, to see the group refuse */
			rc = propose_j(j + 1, &result);
			r->st[j + 1] = rc == 0 && result == 0 ? ST_ACKED : ST_FAILED;
			if (r->st[j + 1] == ST_ACKED && sync_fault && qfs_sysio_fault_fired())
				r->after_sync_fail++;
			return;
		}
		if (j % 4 == 3 && (rc = qfs_cell_wal_seal(C, G)) != 0) {
			note_err(r, rc);
			if (j + 1 < NPROP) {
				rc = propose_j(j + 1, &result);
				r->st[j + 1] = rc == 0 && result == 0 ? ST_ACKED : ST_FAILED;
				if (r->st[j + 1] == ST_ACKED && sync_fault && qfs_sysio_fault_fired())
					r->after_sync_fail++;
			}
			return;
		}
		if (j == 2) {
			r->create_rc = qfs_cell_group_create(C, G3);
			if (r->create_rc)
				note_err(r, r->create_rc);
		}
		if (j == 5) {
			/* a fault in G2's own I/O (a promise of an election under
			 * load) stops its replica, which the drop then removes */
			r->g2_stopped = group_stopped(G2);
			r->drop_rc = qfs_cell_group_drop(C, G2);
			if (r->drop_rc)
				note_err(r, r->drop_rc);
		}
	}
}

/* Debugging aid: QFS_TEST_ONLY=i runs only iteration i of a loop. */
static int skip(int i)
{
	const char *only = getenv("QFS_TEST_ONLY");

	return only && atoi(only) != i;
}

/* One line per run on stderr when QFS_TEST_VERBOSE is set. */
static void trace(const char *tc, int kind, unsigned long nth, const struct run *r)
{
	char st[NPROP + 1];

	if (!getenv("QFS_TEST_VERBOSE"))
		return;
	for (int j = 0; j < NPROP; j++)
		st[j] = ".AF"[r->st[j]];
	st[NPROP] = '\0';
	fprintf(stderr, "check_sysio %s kind=%d nth=%lu fired=%lu errors=%d err=\"%s\" steps=%s create=%d drop=%d\n",
		tc, kind, nth, qfs_sysio_fault_fired(), r->errors, r->errors ? qfs_strerror(r->first_err) : "-", st,
		r->create_rc, r->drop_rc);
}

/* Replicas of g stopped after an error, on the running nodes. */
static int group_stopped(qfs_group_t g)
{
	int n = 0;

	for (uint32_t id = 1; id <= n_nodes; id++) {
		struct qfs_rnode_ginfo gi;

		if (qfs_cell_replica_info(C, id, g, &gi) == 0 && gi.stopped)
			n++;
	}
	return n;
}

/* Stopped replicas of the workload's groups (G, G3 created by it, G2
 * before its drop, which removes a stopped replica too) on the running
 * nodes, and restarts of nodes since the workload began: a fault in a
 * group's own I/O (a follower's WAL append, a new group's first WAL
 * segment, a promise of an election under load) stops it without failing
 * the call that led there. */
static int stopped_replicas(const struct run *r)
{
	int n = group_stopped(G) + group_stopped(G2) + group_stopped(G3) + r->g2_stopped;

	/* the keeper restarts a node with a stopped replica about a second
	 * later (a slow run: ASan, a loaded machine), and the reloaded
	 * replica runs again: that restart counts as the stop it answered */
	for (uint32_t id = 1; id <= n_nodes; id++)
		n += (int)(qfs_cell_node_starts(C, id) - r->starts[id]);
	return n;
}

/* Nodes without a replica of G3 although its create was acknowledged (a
 * minority replica whose create failed: logged, and made again by the
 * reconciliation when the node starts). */
static int missing_g3(uint32_t nodes, const struct run *r)
{
	int n = 0;

	for (uint32_t id = 1; r->create_rc == 0 && id <= nodes; id++) {
		struct qfs_rnode_ginfo gi;

		if (qfs_cell_replica_info(C, id, G3, &gi) == QFS_ENOGROUP)
			n++;
	}
	return n;
}

/* After the reopen: acknowledged steps whole, failed ones whole or absent,
 * untried ones absent, an acknowledged drop kept; the group takes writes. */
static void verify(const struct run *r)
{
	int result = 99;

	/* a txn through the leader: it then applied everything before it */
	ck_assert_int_eq(propose_j(NPROP + 1, &result), 0);
	ck_assert_int_eq(result, 0);
	for (int j = 0; j < NPROP; j++) {
		int a = item_state(j, 'a'), b = item_state(j, 'b');

		ck_assert_msg(a == b, "step %d half applied (a=%d b=%d)", j, a, b);
		if (r->st[j] == ST_ACKED)
			ck_assert_msg(a == 1, "acknowledged step %d lost", j);
		else if (r->st[j] == ST_NONE)
			ck_assert_msg(a == 0, "step %d never proposed but present", j);
	}
	ck_assert_int_eq(item_state(NPROP, 'a'), 1);
	if (r->drop_rc == 0)
		ck_assert_int_eq(qfs_cell_group_exists(C, G2), 0);
	if (r->create_rc == 0)
		ck_assert_int_eq(qfs_cell_group_exists(C, G3), 1);
}

/* The kinds the cell1 loop fails, and how many calls of each (the clean
 * workload makes 19 writes, 31 fsyncs, 6 renames, 17 opens, 5 unlinks and
 * 1 mkdir; QFS_TEST_VERBOSE=1 prints the counts). */
static const struct {
	int kind;
	int n;
} plan[] = {
	{ QFS_SYSIO_WRITE, 22 }, { QFS_SYSIO_SYNC, 34 },  { QFS_SYSIO_RENAME, 8 },
	{ QFS_SYSIO_OPEN, 20 },  { QFS_SYSIO_UNLINK, 8 }, { QFS_SYSIO_MKDIR, 3 },
};
#define NPLAN ((int)(sizeof(plan) / sizeof(plan[0])))

static int plan_len(void)
{
	int n = 0;

	for (int k = 0; k < NPLAN; k++)
		n += plan[k].n;
	return n;
}

/* A clean run: nothing fails, and the loop's plan[] covers every call of
 * each kind the workload makes (raise it when the workload grows). */
START_TEST(t_cell1_counts)
{
	struct run r;
	prepare(1);
	qfs_sysio_count_start();
	workload(&r, 0);
	for (int k = 0; k < NPLAN; k++) {
		unsigned long n = qfs_sysio_count(plan[k].kind);

		if (getenv("QFS_TEST_VERBOSE"))
			fprintf(stderr, "check_sysio clean workload kind=%d calls=%lu\n", plan[k].kind, n);
		ck_assert_uint_ge(n, 1);
		ck_assert_msg(n <= (unsigned long)plan[k].n, "kind %d: %lu calls, the loop fails only %d (raise plan[])",
			      plan[k].kind, n, plan[k].n);
	}
	ck_assert_int_eq(r.errors, 0);
	for (int j = 0; j < NPROP; j++)
		ck_assert_int_eq(r.st[j], ST_ACKED);
	ck_assert_int_eq(r.drop_rc, 0);
	ck_assert_int_eq(r.create_rc, 0);
	qfs_sysio_reset();
	cell_close();
	cell_open(1);
	verify(&r);
}
END_TEST

/* _i counts through plan[]: kind plan[k].kind, call nth. */
START_TEST(t_cell1_fault)
{
	int k = 0, i = _i, kind;
	unsigned long nth;
	int err;
	struct run r;

	if (skip(_i))
		return;
	while (i >= plan[k].n)
		i -= plan[k++].n;
	kind = plan[k].kind;
	nth = (unsigned long)i + 1;
	err = kind == QFS_SYSIO_WRITE && nth % 2 ? ENOSPC : EIO;
	prepare(1);
	qfs_sysio_fault_set(QFS_SYSIO_BIT(kind), nth, err, 0);
	workload(&r, kind == QFS_SYSIO_SYNC);
	trace("cell1", kind, nth, &r);
	if (qfs_sysio_fault_fired()) {
		/* surfaced, never swallowed */
		ck_assert_msg(r.errors > 0 || stopped_replicas(&r) > 0,
			      "kind %d call %lu failed and nobody was told", kind, nth);
		/* a failed fsync stops the group: nothing more acknowledged */
		ck_assert_int_eq(r.after_sync_fail, 0);
	} else {
		ck_assert_int_eq(r.errors, 0);
	}
	qfs_sysio_reset();
	cell_close();
	cell_open(1);
	verify(&r);
}
END_TEST

/* _i = kind (0 write, 1 sync) * N3_ITER + k: fail call 1 + k * N3_STEP. */
START_TEST(t_cell3_fault)
{
	int kind = _i / N3_ITER ? QFS_SYSIO_SYNC : QFS_SYSIO_WRITE;
	unsigned long nth = 1 + (unsigned long)(_i % N3_ITER) * N3_STEP;
	struct run r;

	if (skip(_i))
		return;

	prepare(3);
	qfs_sysio_fault_set(QFS_SYSIO_BIT(kind), nth, kind == QFS_SYSIO_SYNC ? EIO : ENOSPC, 0);
	workload(&r, 0);
	trace("cell3", kind, nth, &r);
	if (qfs_sysio_fault_fired())
		ck_assert_msg(r.errors > 0 || stopped_replicas(&r) > 0 || missing_g3(3, &r) > 0,
			      "kind %d call %lu failed and nobody was told", kind, nth);
	qfs_sysio_reset();
	cell_close();
	cell_open(3);
	verify(&r);
	ck_assert_int_eq(missing_g3(3, &r), 0); /* reconciled at the reopen */
}
END_TEST

static Suite *sysio_suite(void)
{
	Suite *s = suite_create("sysio");
	TCase *tc;

	tc = tcase_create("helpers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_file_put_faults);
	tcase_add_test(tc, t_mkdir);
	tcase_add_test(tc, t_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("cell1");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_cell1_counts);
	tcase_add_loop_test(tc, t_cell1_fault, 0, plan_len());
	suite_add_tcase(s, tc);

	tc = tcase_create("cell3");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, t_cell3_fault, 0, 2 * N3_ITER);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int failed;

	strcpy(basedir, "/tmp/check_sysio.XXXXXX");
	if (!mkdtemp(basedir)) {
		perror("check_sysio: mkdtemp");
		return EXIT_FAILURE;
	}
	failed = unit_run_failed(sysio_suite());
	nftw(basedir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
