/*
 * check_xact.c - two-phase commit across groups (src/router/xact.c,
 * doc/xact.md) over a real cell of three nodes (RocksDB + WAL in a
 * temporary directory): atomic commit, a failing part, a crash of the
 * coordinator after every step of the protocol (close + reopen the cell,
 * recover, all or nothing; and a child process killed with SIGKILL after
 * every step), concurrent runs on overlapping keys, the lock
 * wait of an ordinary txn, and replicas that stay identical by the
 * scrubber's checksums while a txn is prepared.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/key.h"
#include "common/log.h"
#include "node/cell.h"
#include "router/route.h"
#include "router/xact.h"
#include "scrub/sum.h"
#include "store/store.h"
#include "unit.h"

#define COORD QFS_META_GROUP
#define NG 3
static const qfs_group_t groups[NG] = { 100, 101, 102 };

static char dir[256];
static struct qfs_cell *cell;

static void open_cell(void)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = dir, .nodes = 3, .paxos = &prm, .timeout_ms = 3000 };

	unit_fast_paxos(&prm);
	ck_assert_int_eq(qfs_cell_open(&o, &cell), 0);
	ck_assert_int_eq(qfs_route_attach(cell), 0);
}

static void setup(void)
{
	qfs_log_level = QFS_LOG_WARN;
	qfs_xact_test_stop = 0;
	qfs_xact_test_wall_ms = NULL;
	qfs_xact_abort_keep_ms = QFS_XACT_ABORT_KEEP_MS;
	unit_tmpdir(dir, sizeof(dir), "check_xact");
	open_cell();
	ck_assert_int_eq(qfs_cell_group_create(cell, COORD), 0);
	for (int i = 0; i < NG; i++)
		ck_assert_int_eq(qfs_cell_group_create(cell, groups[i]), 0);
}

static void teardown(void)
{
	qfs_xact_test_stop = 0;
	qfs_cell_close(cell);
	cell = NULL;
	unit_rmdir(dir);
}

/* Key of entry name in directory 10 (pooled per call site by the caller). */
static uint32_t key(uint8_t *out, const char *name)
{
	return (uint32_t)qfs_key_dentry(out, 10, name, strlen(name));
}

static void add_put(struct qfs_txn *t, const uint8_t *k, uint32_t kl, const char *v)
{
	struct qfs_op *op = qfs_txn_add(t, QFS_OP_PUT);
	ck_assert_ptr_nonnull(op);
	op->key = k;
	op->key_len = kl;
	op->val = (const uint8_t *)v;
	op->val_len = (uint32_t)strlen(v);
}

/* Value of name in group as a string, NULL if absent (caller frees). */
static char *get(qfs_group_t g, const char *name)
{
	uint8_t k[QFS_KEY_MAX];
	uint32_t kl = key(k, name);
	void *v;
	size_t vl;
	int rc = qfs_cell_get(cell, g, k, kl, &v, &vl);
	if (rc == -ENOENT)
		return NULL;
	ck_assert_int_eq(rc, 0);
	char *s = malloc(vl + 1);
	memcpy(s, v, vl);
	s[vl] = 0;
	free(v);
	return s;
}

static int has(qfs_group_t g, const char *name, const char *want)
{
	char *s = get(g, name);
	int ok = s && strcmp(s, want) == 0;
	free(s);
	return ok;
}

static int absent(qfs_group_t g, const char *name)
{
	char *s = get(g, name);
	free(s);
	return s == NULL;
}

static int count_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)k; (void)kl; (void)v; (void)vl;
	(*(int *)arg)++;
	return 0;
}

/* Reserved keys of tag in g (prepared records or decisions). */
static int nreserved(qfs_group_t g, uint8_t tag)
{
	uint8_t lo[QFS_KEY_PREFIX_LEN + 2], hi[QFS_KEY_PREFIX_LEN + 2];
	int n = 0;
	qfs_key_xact_range(lo, hi, tag);
	ck_assert_int_eq(qfs_cell_scan(cell, g, lo, sizeof(lo), hi, sizeof(hi), count_cb, &n), 0);
	return n;
}

static void assert_clean(void)
{
	for (int i = 0; i < NG; i++)
		ck_assert_int_eq(nreserved(groups[i], QFS_KEY_XACT_PREPARED), 0);
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_DECISION), 0);
}

/* Parts: in group i, PUT name = val (and an EXPECT_ABSENT of missing[i]
 * when given, to make part i fail with -EEXIST if it exists). */
struct plan {
	struct qfs_txn t[NG];
	struct qfs_xact_part p[NG];
	uint8_t k[NG][2][QFS_KEY_MAX];
};

static void plan_init(struct plan *pl, int n, const char *name, const char *val, int fail_part)
{
	for (int i = 0; i < n; i++) {
		qfs_txn_init(&pl->t[i]);
		uint32_t kl = key(pl->k[i][0], name);
		add_put(&pl->t[i], pl->k[i][0], kl, val);
		if (i == fail_part) {
			uint32_t xl = key(pl->k[i][1], "exists");
			struct qfs_op *op = qfs_txn_add(&pl->t[i], QFS_OP_EXPECT_ABSENT);
			op->key = pl->k[i][1];
			op->key_len = xl;
			op->err = -EEXIST;
		}
		pl->p[i].group = groups[i];
		pl->p[i].txn = &pl->t[i];
	}
}

static void plan_close(struct plan *pl, int n)
{
	for (int i = 0; i < n; i++)
		qfs_txn_close(&pl->t[i]);
}

static void put_plain(qfs_group_t g, const char *name, const char *val, int want)
{
	uint8_t k[QFS_KEY_MAX];
	struct qfs_txn t;
	int res = 1;
	qfs_txn_init(&t);
	add_put(&t, k, key(k, name), val);
	ck_assert_int_eq(qfs_xact_propose(cell, g, &t, &res), 0);
	ck_assert_int_eq(res, want);
	qfs_txn_close(&t);
}

START_TEST(test_commit_atomic)
{
	struct plan pl;
	int res = 1;

	plan_init(&pl, NG, "f", "v1", -1);
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, NG, &res), 0);
	ck_assert_int_eq(res, 0);
	for (int i = 0; i < NG; i++)
		ck_assert(has(groups[i], "f", "v1"));
	assert_clean();
	plan_close(&pl, NG);
	/* no lock is left: ordinary txns pass at once */
	put_plain(groups[0], "f", "v2", 0);
	ck_assert(has(groups[0], "f", "v2"));

	/* bad calls */
	plan_init(&pl, 2, "g", "x", -1);
	pl.p[1].group = pl.p[0].group;
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -EINVAL);
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 0, &res), -EINVAL);
	plan_close(&pl, 2);
}
END_TEST

START_TEST(test_failing_part)
{
	struct plan pl;
	int res = 1;

	put_plain(groups[1], "exists", "here", 0);
	plan_init(&pl, NG, "f", "v1", 1);
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, NG, &res), 0);
	ck_assert_int_eq(res, -EEXIST);
	for (int i = 0; i < NG; i++)
		ck_assert(absent(groups[i], "f"));
	assert_clean();
	plan_close(&pl, NG);
	put_plain(groups[0], "f", "free", 0); /* part 1's lock is gone */
}
END_TEST

/* Stop the coordinator after step k (1..2n+2) of a run over n = NG parts,
 * crash (close and reopen the cell), recover: all or nothing, and no 2PC
 * state left. */
START_TEST(test_crash_at_step)
{
	struct plan pl;
	int k = _i, res = 1;

	plan_init(&pl, NG, "f", "v1", -1);
	qfs_xact_test_stop = k;
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, NG, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	plan_close(&pl, NG);
	qfs_cell_close(cell);
	cell = NULL;
	open_cell();
	qfs_xact_abort_keep_ms = 0; /* the crashed coordinator is dead */
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	for (int i = 0; i < NG; i++) {
		if (k <= NG) /* before the decision: nothing */
			ck_assert_msg(absent(groups[i], "f"), "step %d group %d", k, i);
		else
			ck_assert_msg(has(groups[i], "f", "v1"), "step %d group %d", k, i);
	}
	assert_clean();
	for (int i = 0; i < NG; i++)
		put_plain(groups[i], "f", "after", 0);
	/* recovery again finds nothing to do */
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
}
END_TEST

/* A full disk (qfs_cell_space_hold: every change that writes data must
 * leave more than the disk has): a PREPARE holding data is refused like a
 * write (its record keeps the sub-txn's effects), one that only deletes
 * passes at the floor like a delete, and so do COMMIT, ABORT and DECIDE,
 * so that a run prepared before the disk filled still finishes. */
/* A recovery of some groups only (a run's own, after its timeout) must not
 * forget another run's 'C' whose parts are prepared elsewhere: a later
 * recovery would abort them, and that run's COMMIT would answer 0 for a
 * write that is gone. */
START_TEST(test_partial_recovery_keeps_decision)
{
	struct plan pl;
	int res = 99;

	plan_init(&pl, 2, "f", "v1", -1);
	qfs_xact_test_stop = 3; /* after 'C', before any COMMIT */
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	ck_assert_int_eq(qfs_xact_finish(cell, COORD, &groups[2], 1), 0); /* another run's */
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_DECISION), 1);
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	ck_assert(has(groups[0], "f", "v1"));
	ck_assert(has(groups[1], "f", "v1"));
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_DECISION), 0);
	plan_close(&pl, 2);
}
END_TEST

/* Cluster mode: a split's recovery (or a mount's open) lists the groups,
 * then recovers them while other mounts run txns.  A run whose part is
 * in a group the list does not hold (created by another mount's split
 * after the list, or on nodes that did not answer) and that recorded 'C'
 * with that part still prepared: forgetting the 'C' lets the next
 * recovery of that group abort the part, and the run's late COMMIT
 * answers 0 for a write that is gone (through another mount: a file's
 * entry without its inode, or a listing without the name).  The live
 * recovery keeps every 'C'. */
START_TEST(test_live_recovery_keeps_commit)
{
	const qfs_group_t listed[2] = { groups[0], groups[2] }; /* groups[1] came later */
	struct plan pl;
	int res = 99;

	plan_init(&pl, 2, "f", "v1", -1);
	qfs_xact_test_stop = 4; /* 'C', then the COMMIT of part 0 only */
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	ck_assert(has(groups[0], "f", "v1"));
	ck_assert_int_eq(nreserved(groups[1], QFS_KEY_XACT_PREPARED), 1);
	ck_assert_int_eq(qfs_xact_recover_live(cell, COORD, listed, 2), 0);
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_DECISION), 1); /* the 'C' stays */
	/* the next recovery of groups[1] (a split of it, a stale lock) commits */
	ck_assert_int_eq(qfs_xact_finish(cell, COORD, &groups[1], 1), 0);
	ck_assert(has(groups[1], "f", "v1"));
	/* old aborts still go: a recovery's 'A' of a dead run, once old */
	plan_close(&pl, 2);
	plan_init(&pl, 2, "g", "v2", -1);
	qfs_xact_test_stop = 2; /* prepared, no decision */
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	qfs_xact_abort_keep_ms = 0;
	ck_assert_int_eq(qfs_xact_recover_live(cell, COORD, groups, NG), 0);
	ck_assert(absent(groups[0], "g"));
	ck_assert_int_eq(nreserved(groups[0], QFS_KEY_XACT_PREPARED), 0);
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_DECISION), 1); /* the first run's 'C' only */
	plan_close(&pl, 2);
}
END_TEST

/* A recovery (a stale lock's finisher, a split's, an open's) settles a
 * prepared txid: no decision read, DECIDE 'A', which answers -EALREADY
 * because 'C' was recorded first.  That answer is the decision: read
 * again, the decision may be missed (an eventual read from a replica
 * that has not applied it, the leader gone), and the part was aborted
 * while 'C' stood and another part was committed: half a txn, and the
 * live coordinator's late COMMIT of it answers 0. */
START_TEST(test_settle_trusts_ealready)
{
	struct plan pl;
	int res = 99;

	plan_init(&pl, 2, "f", "v1", -1);
	qfs_xact_test_stop = 4; /* 'C', then the COMMIT of part 0 only */
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	ck_assert(has(groups[0], "f", "v1"));
	ck_assert_int_eq(nreserved(groups[1], QFS_KEY_XACT_PREPARED), 1);
	qfs_xact_test_stale_decisions = 1;
	ck_assert_int_eq(qfs_xact_finish(cell, COORD, &groups[1], 1), 0);
	qfs_xact_test_stale_decisions = 0;
	ck_assert_int_eq(nreserved(groups[1], QFS_KEY_XACT_PREPARED), 0);
	ck_assert(has(groups[0], "f", "v1"));
	ck_assert(has(groups[1], "f", "v1")); /* committed, as 'C' says */
	plan_close(&pl, 2);
}
END_TEST

START_TEST(test_prepare_admitted_like_write)
{
	uint8_t k[NG][QFS_KEY_MAX];
	struct qfs_txn t[NG];
	struct qfs_xact_part p[NG];
	struct plan pl;
	int res = 1;

	put_plain(groups[0], "gone", "x", 0);
	put_plain(groups[1], "gone", "y", 0);
	/* a run stopped after its decision (k = n+1), committed on a full disk */
	plan_init(&pl, NG, "f", "v1", -1);
	qfs_xact_test_stop = NG + 1;
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, NG, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	plan_close(&pl, NG);
	ck_assert_int_eq(nreserved(groups[0], QFS_KEY_XACT_PREPARED), 1);

	qfs_cell_space_hold(cell, UINT64_MAX / 4);
	/* a write and a run that writes: ENOSPC, nothing prepared or written */
	uint8_t pk[QFS_KEY_MAX];
	qfs_txn_init(&t[0]);
	add_put(&t[0], pk, key(pk, "w"), "w");
	ck_assert_int_eq(qfs_xact_propose(cell, groups[0], &t[0], &res), -ENOSPC);
	qfs_txn_close(&t[0]);
	plan_init(&pl, 2, "g", "v2", -1);
	pl.p[0].group = groups[2]; /* key g: no lock of run 1 there */
	pl.p[1].group = COORD;
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ENOSPC);
	plan_close(&pl, 2);
	ck_assert_int_eq(nreserved(groups[2], QFS_KEY_XACT_PREPARED), 1); /* run 1's only */
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_PREPARED), 0);
	ck_assert(absent(groups[2], "g"));

	/* the stopped run commits: recovery's COMMITs and forget pass */
	qfs_xact_abort_keep_ms = 0;
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	for (int i = 0; i < NG; i++)
		ck_assert(has(groups[i], "f", "v1"));
	assert_clean();

	/* a run that only deletes passes, like an unlink */
	for (int i = 0; i < 2; i++) {
		qfs_txn_init(&t[i]);
		struct qfs_op *op = qfs_txn_add(&t[i], QFS_OP_DEL);
		op->key = k[i];
		op->key_len = key(k[i], "gone");
		p[i].group = groups[i];
		p[i].txn = &t[i];
	}
	ck_assert_int_eq(qfs_xact_run(cell, COORD, p, 2, &res), 0);
	ck_assert_int_eq(res, 0);
	for (int i = 0; i < 2; i++) {
		qfs_txn_close(&t[i]);
		ck_assert(absent(groups[i], "gone"));
	}
	assert_clean();
	qfs_cell_space_hold(cell, 0);
	put_plain(groups[0], "w", "w", 0);
}
END_TEST

/* The same with a real crash: a child process opens the cell, runs the
 * xact up to step k and is killed with SIGKILL (its RocksDB memtables are
 * lost; the WALs are replayed at the next open).  The test process itself
 * has not touched RocksDB before the fork (no fixture in this tcase), so
 * the child starts clean. */
START_TEST(test_kill9_at_step)
{
	int k = _i, res = 1, status;
	pid_t pid;

	qfs_log_level = QFS_LOG_WARN;
	unit_tmpdir(dir, sizeof(dir), "check_xact");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct plan pl;
		open_cell();
		if (qfs_cell_group_create(cell, COORD) != 0)
			_exit(2);
		for (int i = 0; i < NG; i++)
			if (qfs_cell_group_create(cell, groups[i]) != 0)
				_exit(2);
		plan_init(&pl, NG, "f", "v1", -1);
		qfs_xact_test_stop = k;
		if (qfs_xact_run(cell, COORD, pl.p, NG, &res) != -ECANCELED)
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
	open_cell();
	qfs_xact_abort_keep_ms = 0; /* the killed coordinator is dead */
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	for (int i = 0; i < NG; i++) {
		if (k <= NG)
			ck_assert_msg(absent(groups[i], "f"), "step %d group %d", k, i);
		else
			ck_assert_msg(has(groups[i], "f", "v1"), "step %d group %d", k, i);
	}
	assert_clean();
	qfs_cell_close(cell);
	cell = NULL;
	unit_rmdir(dir);
}
END_TEST

/* A recovery that races a live coordinator (the txn is prepared, not
 * decided): its 'A' wins, is kept while young, and a later recovery
 * forgets it once it is old enough. */
START_TEST(test_recover_keeps_young_abort)
{
	struct plan pl;
	int res = 1;

	plan_init(&pl, 2, "f", "v1", -1);
	qfs_xact_test_stop = 1; /* part 1 prepared */
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	ck_assert_int_eq(nreserved(groups[0], QFS_KEY_XACT_PREPARED), 1);

	/* an ordinary txn on the locked key waits, then gives up with -EBUSY */
	put_plain(groups[0], "f", "blocked", -EBUSY);
	put_plain(groups[0], "other", "fine", 0);

	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	ck_assert_int_eq(nreserved(groups[0], QFS_KEY_XACT_PREPARED), 0);
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_DECISION), 1); /* 'A' kept */
	ck_assert(absent(groups[0], "f"));
	qfs_xact_abort_keep_ms = 0;
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	assert_clean();
	plan_close(&pl, 2);
}
END_TEST

/* The wall clock steps forward by the abort-keep time between a run's
 * PREPAREs and its commit point (NTP, a resumed VM).  A recovery judges a
 * txid's age by that clock, so it may by then have aborted the parts and
 * forgotten its 'A': the run must not record 'C' (its COMMITs would find
 * no record in the aborted groups and commit only the others).  It gives
 * up with -ETIMEDOUT and nothing is applied. */
static int wall_calls;
static uint64_t stepping_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	/* the first call stamps the txid; every later one is after the step */
	return wall_calls++ == 0 ? now : now + QFS_XACT_ABORT_KEEP_MS;
}

START_TEST(test_no_commit_after_clock_step)
{
	struct plan pl;
	int res = 1;

	plan_init(&pl, 2, "f", "v1", -1);
	wall_calls = 0;
	qfs_xact_test_wall_ms = stepping_wall_ms;
	int rc = qfs_xact_run(cell, COORD, pl.p, 2, &res);
	qfs_xact_test_wall_ms = NULL;
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert(absent(groups[0], "f"));
	ck_assert(absent(groups[1], "f"));
	ck_assert_int_eq(nreserved(groups[0], QFS_KEY_XACT_PREPARED), 0);
	ck_assert_int_eq(nreserved(groups[1], QFS_KEY_XACT_PREPARED), 0);
	ck_assert_int_eq(nreserved(COORD, QFS_KEY_XACT_DECISION), 0);
	plan_close(&pl, 2);
	/* no lock is left */
	put_plain(groups[0], "f", "free", 0);
}
END_TEST

/* A run meets the locks of a txn left prepared by a dead coordinator:
 * it backs off and retries (no error) until a recovery aborts the stale
 * txn, then commits. */
struct waiter {
	int rc, res;
};

static void *wait_run(void *arg)
{
	struct waiter *w = arg;
	struct plan pl;

	plan_init(&pl, 2, "f", "winner", -1);
	w->rc = qfs_xact_run(cell, COORD, pl.p, 2, &w->res);
	plan_close(&pl, 2);
	return NULL;
}

START_TEST(test_waits_out_stale_lock)
{
	struct qfs_xact_stat before, after;
	struct waiter w = { 1, 1 };
	struct plan pl;
	pthread_t th;
	int res = 1;

	plan_init(&pl, 2, "f", "stale", -1);
	qfs_xact_test_stop = 1; /* part 1 prepared, then the coordinator dies */
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	plan_close(&pl, 2);
	qfs_xact_stat(&before);
	ck_assert_int_eq(pthread_create(&th, NULL, wait_run, &w), 0);
	struct timespec ts = { 0, 400 * 1000000L };
	nanosleep(&ts, NULL);
	/* ...and has met the stale lock (a retry counted): on a loaded machine
	 * its first prepare can come after 400 ms, and a recovery before it
	 * cleared the lock first (no retry: a false failure below) */
	for (int i = 0; i < 1000; i++) {
		qfs_xact_stat(&after);
		if (after.retries > before.retries)
			break;
		usleep(10000);
	}
	ck_assert_msg(after.retries > before.retries, "the live run met no stale lock within 10 s");
	/* the live run is waiting, not failing; recovery keeps its 'A'
	 * decisions (young), so it cannot hurt the live run */
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, 0);
	ck_assert_int_eq(w.res, 0);
	ck_assert(has(groups[0], "f", "winner"));
	ck_assert(has(groups[1], "f", "winner"));
	qfs_xact_stat(&after);
	ck_assert_uint_gt(after.retries, before.retries);
	ck_assert_uint_ge(after.rec_aborts, before.rec_aborts + 1);
	qfs_xact_abort_keep_ms = 0;
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	assert_clean();
}
END_TEST

/* Every replica of a group holds the same items, prepared record included,
 * by the scrubber's checksums at one LSN. */
static void assert_replicas_equal(qfs_group_t g)
{
	struct qfs_scrub_sum sum[3];
	struct qfs_store_snap *sn[3] = { NULL, NULL, NULL };
	int rc = -ESTALE;

	/* snapshots at one LSN; -ESTALE (a replica applied past it, e.g. a
	 * new leader's first entry): again with a fresh LSN, as the scrubber */
	for (int attempt = 0; attempt < 20 && rc == -ESTALE; attempt++) {
		qfs_lsn_t lsn = qfs_cell_group_applied(cell, g);
		rc = 0;
		for (uint32_t id = 1; id <= 3 && !rc; id++)
			rc = qfs_cell_replica_snap(cell, id, g, lsn, 5000, &sn[id - 1]);
		if (rc)
			for (uint32_t id = 1; id <= 3; id++)
				if (sn[id - 1]) {
					qfs_cell_replica_snap_done(cell, id, sn[id - 1]);
					sn[id - 1] = NULL;
				}
	}
	ck_assert_int_eq(rc, 0);
	for (uint32_t id = 1; id <= 3; id++) {
		if (id == 1)
			ck_assert_int_eq(qfs_scrub_sum_init(&sum[0]), 0);
		else
			ck_assert_int_eq(qfs_scrub_sum_like(&sum[id - 1], &sum[0]), 0);
		ck_assert_int_eq(qfs_store_snap_scan(sn[id - 1], g, NULL, 0, NULL, 0, qfs_scrub_sum_add,
						     &sum[id - 1]), 0);
		qfs_scrub_sum_finish(&sum[id - 1]);
		qfs_cell_replica_snap_done(cell, id, sn[id - 1]);
	}
	for (int i = 1; i < 3; i++) {
		ck_assert_uint_eq(sum[i].n, sum[0].n);
		ck_assert_uint_eq(sum[i].items, sum[0].items);
		for (size_t r = 0; r < sum[0].n; r++)
			ck_assert_uint_eq(sum[i].r[r].hash, sum[0].r[r].hash);
	}
	for (int i = 0; i < 3; i++)
		qfs_scrub_sum_close(&sum[i]);
}

START_TEST(test_replicas_identical)
{
	struct plan pl;
	int res = 1;

	put_plain(groups[0], "a", "1", 0);
	plan_init(&pl, 2, "f", "v1", -1);
	qfs_xact_test_stop = 2; /* both parts prepared */
	ck_assert_int_eq(qfs_xact_run(cell, COORD, pl.p, 2, &res), -ECANCELED);
	qfs_xact_test_stop = 0;
	ck_assert_int_eq(nreserved(groups[0], QFS_KEY_XACT_PREPARED), 1);
	assert_replicas_equal(groups[0]);
	assert_replicas_equal(groups[1]);
	ck_assert_int_eq(qfs_xact_recover(cell, COORD, groups, NG), 0);
	assert_replicas_equal(groups[0]);
	assert_replicas_equal(COORD);
	plan_close(&pl, 2);
}
END_TEST

/* Two threads run xacts writing the same two keys X (group 0) and Y
 * (group 1), each also its own key per round: none deadlocks, every run
 * commits, and X == Y after every round (no half of another run). */
struct racer {
	int id;
	int rounds;
	int failures;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < r->rounds; i++) {
		uint8_t kx[QFS_KEY_MAX], ky[QFS_KEY_MAX], ko[QFS_KEY_MAX];
		char val[32], own[32];
		struct qfs_txn t0, t1;
		struct qfs_xact_part p[2];
		int res = 1;

		snprintf(val, sizeof(val), "t%d-r%d", r->id, i);
		snprintf(own, sizeof(own), "own-%d-%d", r->id, i);
		qfs_txn_init(&t0);
		qfs_txn_init(&t1);
		add_put(&t0, kx, key(kx, "X"), val);
		add_put(&t0, ko, key(ko, own), val);
		add_put(&t1, ky, key(ky, "Y"), val);
		p[0] = (struct qfs_xact_part){ groups[0], &t0 };
		p[1] = (struct qfs_xact_part){ groups[1], &t1 };
		if (qfs_xact_run(cell, COORD, p, 2, &res) != 0 || res != 0)
			r->failures++;
		qfs_txn_close(&t0);
		qfs_txn_close(&t1);
	}
	return NULL;
}

START_TEST(test_concurrent_serialise)
{
	struct racer r[2] = { { 1, 6, 0 }, { 2, 6, 0 } };
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(r[0].failures, 0);
	ck_assert_int_eq(r[1].failures, 0);
	char *x = get(groups[0], "X"), *y = get(groups[1], "Y");
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	ck_assert_str_eq(x, y);
	free(x);
	free(y);
	for (int t = 1; t <= 2; t++)
		for (int i = 0; i < 6; i++) {
			char own[32], val[32];
			snprintf(own, sizeof(own), "own-%d-%d", t, i);
			snprintf(val, sizeof(val), "t%d-r%d", t, i);
			ck_assert(has(groups[0], own, val));
		}
	assert_clean();
}
END_TEST

static Suite *xact_suite(void)
{
	Suite *s = suite_create("xact");
	TCase *tc = tcase_create("xact");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_commit_atomic);
	tcase_add_test(tc, test_failing_part);
	tcase_add_loop_test(tc, test_crash_at_step, 1, 2 * NG + 3);
	tcase_add_test(tc, test_recover_keeps_young_abort);
	tcase_add_test(tc, test_no_commit_after_clock_step);
	tcase_add_test(tc, test_replicas_identical);
	tcase_add_test(tc, test_concurrent_serialise);
	tcase_add_test(tc, test_waits_out_stale_lock);
	tcase_add_test(tc, test_prepare_admitted_like_write);
	tcase_add_test(tc, test_partial_recovery_keeps_decision);
	tcase_add_test(tc, test_live_recovery_keeps_commit);
	tcase_add_test(tc, test_settle_trusts_ealready);
	suite_add_tcase(s, tc);
	tc = tcase_create("kill");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_kill9_at_step, 1, 2 * NG + 3);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(xact_suite());
}
