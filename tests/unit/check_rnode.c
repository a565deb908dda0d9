/*
 * check_rnode.c - unit tests of the replicated storage node (src/node/rnode)
 * with three nodes on one in-process net, real WALs and RocksDB stores in a
 * private temp directory per test, and short election timeouts.
 *
 * Covers: election, replication to every store, conditional txns, -EREMOTE
 * with the leader hint at a follower, status lines, lease reads; leader
 * failover with nothing acknowledged lost and catch-up of the restarted
 * node (stores compared by scan); two nodes down (bounded failure, no hang)
 * then recovery; 4 and 8 concurrent proposers (group commit: fewer fsyncs
 * than proposals); the leader sending an entry before its own sync (the
 * followers make it durable while the leader's sync is held back); 8
 * proposers in flight while the followers' and then the leader's syncs are
 * held back (nothing answered, nothing committed beyond what the leader and
 * one follower can have synced; every answered write read back strongly);
 * a cut-off leader's uncommitted entry replaced (-EAGAIN);
 * a follower whose store was lost rebuilt from its WAL; argument and open
 * errors (bad config, unknown group, duplicate endpoint,
 * corrupt members file, foreign FORMAT) and the promise file on disk; a
 * full restart of all three.  Group drop (with a proposer waiting, after a
 * crash mid-drop, concurrent with readers of every kind), re-create of a
 * dropped id, exists/groups/info; the archive hooks: seal by age, wal_info,
 * snapshot_scan, wal_release (segments gone, catch-up from the retained
 * log), and the reseal after a truncation that deleted whole segments.
 * Snapshot transfer: a follower behind the released logs (and a wiped one)
 * caught up by a multi-chunk snapshot, a crash between the store's flush
 * and the WAL reset finished at open, restarts after it; the snapshot frame
 * codec; qfs_store_install on a live store.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bigbuf.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/key.h"
#include "common/txn.h"
#include "net/net.h"
#include "node/rnode.h"
#include "node/snap.h"
#include "store/store.h"

#define G 0x400ull
#define DIR_INO 1024
#define NN 3

static char tmpdir[256];
static struct qfs_net *NET;
static struct qfs_rnode *RN[NN];
static uint64_t SEAL_MS; /* wal_seal_age_ms of the nodes started next */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

/* The seam of t_quorum_durable: syncs of G held back per node, and the
 * highest LSN each node may have made durable (the last entry of every
 * sync of G whose hook returned: its fdatasync comes after). */
static struct {
	int hold[NN];          /* atomic: 1 = the node's next syncs of G wait */
	int blocked[NN];       /* atomic: 1 = a sync of the node waits now */
	qfs_lsn_t released[NN]; /* atomic: >= the node's durable point in G */
} QD;

static void before_sync(qfs_group_t group, qfs_lsn_t lsn, void *arg);

/* Timers fast enough for tests: a leader in well under a second. */
static void fast_params(struct qfs_paxos_params *prm)
{
	qfs_paxos_params_default(prm);
	prm->election_min_ms = 150;
	prm->election_max_ms = 300;
	prm->heartbeat_ms = 30;
	prm->lease_ms = 200;
	prm->retry_ms = 100;
}

static void node_start(int i, int create)
{
	char dir[300];
	struct qfs_paxos_params prm;
	struct qfs_rnode_opts o;
	static const char *az[] = { "a", "b", "c" };

	fast_params(&prm);
	snprintf(dir, sizeof(dir), "%s/n%d", tmpdir, i + 1);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.id = (uint32_t)i + 1;
	o.az = az[i];
	o.net = NET;
	o.paxos = &prm;
	o.wal_seal_age_ms = SEAL_MS;
	o.test_before_sync = before_sync;
	o.test_arg = (void *)(intptr_t)i;
	ck_assert_ptr_null(RN[i]);
	ck_assert_int_eq(qfs_rnode_open(&o, &RN[i]), 0);
	if (create) {
		struct qfs_paxos_config cfg = { .n = 3, .ids = { 1, 2, 3 } };

		ck_assert_int_eq(qfs_rnode_group_create(RN[i], G, &cfg), 0);
		ck_assert_int_eq(qfs_rnode_group_create(RN[i], G, &cfg), -EEXIST);
	}
}

static void node_stop(int i)
{
	qfs_rnode_close(RN[i]);
	RN[i] = NULL;
}

static void setup(void)
{
	memset(&QD, 0, sizeof(QD));
	SEAL_MS = 0;
	strcpy(tmpdir, "/tmp/check_rnode.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(qfs_net_new(QFS_NET_INPROC, NULL, &NET), 0);
	for (int i = 0; i < NN; i++)
		node_start(i, 1);
}

static void teardown(void)
{
	for (int i = 0; i < NN; i++)
		if (RN[i])
			node_stop(i);
	qfs_net_free(NET);
	NET = NULL;
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Encode [EXPECT_ABSENT name -EEXIST] PUT name=val. */
static void txn_put(struct qfs_buf *out, const char *name, const char *val, int expect_absent)
{
	uint8_t key[QFS_KEY_MAX];
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
	op->val = (const uint8_t *)val;
	op->val_len = (uint32_t)strlen(val);
	qfs_buf_reset(out);
	qfs_txn_encode(&t, out);
	ck_assert_int_eq(out->err, 0);
	qfs_txn_close(&t);
}

static int propose_g(int i, qfs_group_t g, const char *name, const char *val, int expect_absent,
		     uint32_t tmo, int *result, uint32_t *leader)
{
	struct qfs_buf b;
	int rc;

	qfs_buf_init(&b);
	txn_put(&b, name, val, expect_absent);
	rc = qfs_rnode_propose(RN[i], g, b.data, b.len, tmo, result, leader);
	qfs_buf_close(&b);
	return rc;
}

static int propose(int i, const char *name, const char *val, int expect_absent, uint32_t tmo,
		   int *result, uint32_t *leader)
{
	return propose_g(i, G, name, val, expect_absent, tmo, result, leader);
}

/* Index of a node that believes it leads g, waiting up to ms; -1 if none. */
static int find_leader_g(qfs_group_t g, uint32_t ms)
{
	uint64_t end = qfs_clock_mono_ms() + ms;

	do {
		for (int i = 0; i < NN; i++)
			if (RN[i] && qfs_rnode_leader(RN[i], g) == (uint32_t)i + 1)
				return i;
		usleep(10000);
	} while (qfs_clock_mono_ms() < end);
	return -1;
}

static int find_leader(uint32_t ms)
{
	return find_leader_g(G, ms);
}

/* Write name=val in g through whichever node leads, retrying retryable
 * errors for up to 30 s (10 s was short for elections under ASan at load
 * 25-34: "no leader accepted"); fails the test otherwise.  Returns the
 * leader. */
static int put_acked_g(qfs_group_t g, const char *name, const char *val)
{
	uint64_t end = qfs_clock_mono_ms() + 30000;

	while (qfs_clock_mono_ms() < end) {
		int l = find_leader_g(g, 10000), result = 99, rc;

		ck_assert_int_ge(l, 0);
		rc = propose_g(l, g, name, val, 0, 2000, &result, NULL);
		if (rc == 0) {
			ck_assert_int_eq(result, 0);
			return l;
		}
		ck_assert_msg(rc == -EREMOTE || rc == -EAGAIN || rc == -ETIMEDOUT, "rc %d", rc);
		usleep(20000);
	}
	ck_abort_msg("no leader accepted %s", name);
	return -1;
}

static int put_acked(const char *name, const char *val)
{
	return put_acked_g(G, name, val);
}

static int get_is_g(int i, qfs_group_t g, const char *name, const char *want)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name)), vlen;
	void *val = NULL;
	int rc = qfs_rnode_get(RN[i], g, key, klen, &val, &vlen);

	if (rc)
		return rc;
	rc = vlen == strlen(want) && memcmp(val, want, vlen) == 0 ? 0 : -EBADMSG;
	free(val);
	return rc;
}

static int get_is(int i, const char *name, const char *want)
{
	return get_is_g(i, G, name, want);
}

static void wait_key(int i, const char *name, const char *want)
{
	uint64_t end = qfs_clock_mono_ms() + 5000;

	while (get_is(i, name, want) != 0) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "node %d never got %s", i + 1, name);
		usleep(5000);
	}
}

static int scan_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		   void *arg)
{
	struct qfs_buf *b = arg;

	qfs_buf_put_u32(b, (uint32_t)key_len);
	qfs_buf_put(b, key, key_len);
	qfs_buf_put_u32(b, (uint32_t)val_len);
	qfs_buf_put(b, val, val_len);
	return 0;
}

/* 1 if the stores of nodes a and b hold the same items. */
static int stores_equal(int a, int b)
{
	struct qfs_buf x, y;
	int eq;

	qfs_buf_init(&x);
	qfs_buf_init(&y);
	ck_assert_int_eq(qfs_rnode_scan(RN[a], G, NULL, 0, NULL, 0, scan_cb, &x), 0);
	ck_assert_int_eq(qfs_rnode_scan(RN[b], G, NULL, 0, NULL, 0, scan_cb, &y), 0);
	eq = x.len == y.len && x.len > 0 && memcmp(x.data, y.data, x.len) == 0;
	qfs_buf_close(&x);
	qfs_buf_close(&y);
	return eq;
}

static void wait_equal(int a, int b)
{
	uint64_t end = qfs_clock_mono_ms() + 5000;

	while (!stores_equal(a, b)) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "stores of %d and %d differ", a + 1, b + 1);
		usleep(10000);
	}
}

/* ---- membership (doc/paxos.md section 7) ---- */

static struct qfs_rnode *SPARE; /* node 4, az d */

static void spare_start(void)
{
	char dir[300];
	struct qfs_paxos_params prm;
	struct qfs_rnode_opts o;

	fast_params(&prm);
	snprintf(dir, sizeof(dir), "%s/n4", tmpdir);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.id = 4;
	o.az = "d";
	o.net = NET;
	o.paxos = &prm;
	ck_assert_int_eq(qfs_rnode_open(&o, &SPARE), 0);
}

/* The text of a small file into buf: 0 or -1. */
static int file_text(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

static struct qfs_rnode *node_of(uint32_t id)
{
	return id == 4 ? SPARE : id >= 1 && id <= NN ? RN[id - 1] : NULL;
}

/* The node (1-4) that leads G, waiting up to 5 s; 0 if none. */
static uint32_t leader4(void)
{
	uint64_t end = qfs_clock_mono_ms() + 5000;

	do {
		for (uint32_t id = 1; id <= 4; id++)
			if (node_of(id) && qfs_rnode_leader(node_of(id), G) == id)
				return id;
		usleep(10000);
	} while (qfs_clock_mono_ms() < end);
	return 0;
}

/* Propose members through whoever leads, retrying what is retryable. */
static void change_members(uint32_t n, const uint32_t *ids)
{
	struct qfs_paxos_config c = { .n = n };
	uint64_t end = qfs_clock_mono_ms() + 10000;
	int rc = -1;

	memcpy(c.ids, ids, n * sizeof(ids[0]));
	while (qfs_clock_mono_ms() < end) {
		uint32_t l = leader4();

		ck_assert_uint_ne(l, 0);
		rc = qfs_rnode_propose_members(node_of(l), G, &c, 3000, NULL);
		if (rc == 0)
			return;
		ck_assert_msg(rc == -EREMOTE || rc == -EAGAIN || rc == -EBUSY || rc == -ETIMEDOUT, "rc %d", rc);
		usleep(20000);
	}
	ck_abort_msg("members change not committed: rc %d", rc);
}

static void put4(const char *name, const char *val)
{
	uint64_t end = qfs_clock_mono_ms() + 10000;

	while (qfs_clock_mono_ms() < end) {
		uint32_t l = leader4();
		struct qfs_buf b;
		int result = 99, rc;

		ck_assert_uint_ne(l, 0);
		qfs_buf_init(&b);
		txn_put(&b, name, val, 0);
		rc = qfs_rnode_propose(node_of(l), G, b.data, b.len, 2000, &result, NULL);
		qfs_buf_close(&b);
		if (rc == 0) {
			ck_assert_int_eq(result, 0);
			return;
		}
		ck_assert_msg(rc == -EREMOTE || rc == -EAGAIN || rc == -ETIMEDOUT, "rc %d", rc);
		usleep(20000);
	}
	ck_abort_msg("no leader accepted %s", name);
}

static int spare_has(const char *name, const char *want)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name)), vlen;
	void *val = NULL;
	int rc = qfs_rnode_get(SPARE, G, key, klen, &val, &vlen);

	if (rc)
		return 0;
	rc = vlen == strlen(want) && memcmp(val, want, vlen) == 0;
	free(val);
	return rc;
}

/* Replace a stopped node's replica on a spare: node 3 stops, node 4 joins
 * (empty, with the configuration in force), is added, node 3 is removed;
 * every item is on node 4, writes continue, and the group keeps a quorum
 * of {1, 2, 4} when node 1 stops too; changes that are not single are
 * refused. */
START_TEST(t_replace_member)
{
	const uint32_t c1234[] = { 1, 2, 3, 4 }, c124[] = { 1, 2, 4 }, c14[] = { 1, 4 };
	struct qfs_paxos_config m, cur = { .n = 3, .ids = { 1, 2, 3 } };
	struct qfs_paxos_floor fl;
	uint32_t l, hint = 0;
	char name[32], vals[20][32], path[400], text[128], want[128];

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "before%d", i);
		snprintf(vals[i], sizeof(vals[i]), "v%d-%08x", i, (unsigned)random());
		put_acked(name, vals[i]);
	}
	put_acked("marker", "one");
	node_stop(2);
	spare_start();
	ck_assert_int_eq(qfs_rnode_group_create(SPARE, G, &cur), -EINVAL); /* not a member */
	/* the vote floor from the leader (doc/paxos.md section 7), kept in
	 * the promise file and groups/<group>.floor */
	l = leader4();
	ck_assert_uint_ne(l, 0);
	ck_assert_uint_ne(l, 4);
	ck_assert_int_eq(qfs_rnode_join_floor(node_of(l), G, 3, &fl, NULL), -EINVAL); /* a member */
	ck_assert_int_eq(qfs_rnode_join_floor(node_of(l == 1 ? 2 : 1), G, 4, &fl, &hint), -EREMOTE);
	ck_assert_uint_eq(hint, l);
	ck_assert_int_eq(qfs_rnode_join_floor(node_of(l), 0x7777, 4, &fl, NULL), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_rnode_join_floor(node_of(l), G, 4, &fl, NULL), 0);
	ck_assert_uint_ge(fl.lsn, 22);
	ck_assert_uint_ne(fl.ballot, 0);
	ck_assert_uint_ge(fl.promised, fl.ballot);
	ck_assert_int_eq(qfs_rnode_group_join(SPARE, G, &cur, &fl), 0);
	snprintf(path, sizeof(path), "%s/n4/groups/%016llx.floor", tmpdir, (unsigned long long)G);
	ck_assert_int_eq(file_text(path, text, sizeof(text)), 0);
	snprintf(want, sizeof(want), "floor %llu %llu\n", (unsigned long long)fl.lsn,
		 (unsigned long long)fl.ballot);
	ck_assert_str_eq(text, want);
	snprintf(path, sizeof(path), "%s/n4/groups/%016llx.promise", tmpdir, (unsigned long long)G);
	ck_assert_int_eq(file_text(path, text, sizeof(text)), 0);
	snprintf(want, sizeof(want), "promised %llu\n", (unsigned long long)fl.promised);
	ck_assert_str_eq(text, want);
	ck_assert_int_eq(qfs_rnode_group_joining(SPARE, G), 1); /* below its floor */
	ck_assert_int_eq(qfs_rnode_group_joining(RN[0], G), 0);
	ck_assert_int_eq(qfs_rnode_group_members(SPARE, G, &m), 0);
	ck_assert_uint_eq(m.n, 3);
	m.n = 2;
	memcpy(m.ids, c14, sizeof(c14));
	ck_assert_int_eq(qfs_rnode_propose_members(node_of(l), G, &m, 1000, NULL), -EINVAL); /* two changes */
	change_members(4, c1234); /* needs 3 of 4: nodes 1, 2 and the new 4 */
	change_members(3, c124);  /* node 3 removed */
	put4("after", "two");
	for (uint64_t end = qfs_clock_mono_ms() + 5000; !spare_has("after", "two");) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "node 4 never got 'after'");
		usleep(10000);
	}
	ck_assert(spare_has("marker", "one"));
	ck_assert_int_eq(qfs_rnode_group_joining(SPARE, G), 0); /* caught up past it */
	ck_assert_int_eq(qfs_rnode_group_members(SPARE, G, &m), 0);
	ck_assert_uint_eq(m.n, 3);
	ck_assert_uint_eq(m.ids[2], 4);
	/* node 1, if a follower, applies the CONFIG entry when its own I/O
	 * thread learns the commit, maybe after node 4 did (a loaded run saw
	 * it still at {1, 2, 3} here) */
	for (uint64_t end = qfs_clock_mono_ms() + 5000;;) {
		ck_assert_int_eq(qfs_rnode_group_members(RN[0], G, &m), 0);
		if (m.ids[2] == 4 || qfs_clock_mono_ms() >= end)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(m.ids[2], 4);
	/* {1, 2, 4} keeps a quorum without node 1: node 4 votes */
	node_stop(0);
	put4("without1", "three");
	ck_assert_int_eq(get_is(1, "without1", "three") == 0 || spare_has("without1", "three"), 1);
	/* the members file survives a restart of node 4 */
	qfs_rnode_close(SPARE);
	SPARE = NULL;
	spare_start();
	ck_assert_int_eq(qfs_rnode_group_members(SPARE, G, &m), 0);
	ck_assert_uint_eq(m.n, 3);
	ck_assert_uint_eq(m.ids[2], 4);
	put4("restarted", "four");
	for (uint64_t end = qfs_clock_mono_ms() + 5000; !spare_has("restarted", "four");) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "node 4 never got 'restarted'");
		usleep(10000);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "before%d", i);
		ck_assert_msg(spare_has(name, vals[i]), "node 4 lacks %s", name);
	}
	qfs_rnode_close(SPARE);
	SPARE = NULL;
}
END_TEST

/* Propose c (kinds included) through whoever leads (as change_members). */
static void change_cfg(const struct qfs_paxos_config *c)
{
	uint64_t end = qfs_clock_mono_ms() + 10000;
	int rc = -1;

	while (qfs_clock_mono_ms() < end) {
		uint32_t l = leader4();

		ck_assert_uint_ne(l, 0);
		rc = qfs_rnode_propose_members(node_of(l), G, c, 3000, NULL);
		if (rc == 0)
			return;
		ck_assert_msg(rc == -EREMOTE || rc == -EAGAIN || rc == -EBUSY || rc == -ETIMEDOUT, "rc %d", rc);
		usleep(20000);
	}
	ck_abort_msg("members change not committed: rc %d", rc);
}

static int nitems_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len, void *arg)
{
	(void)key, (void)key_len, (void)val, (void)val_len;
	++*(int *)arg;
	return 0;
}

/* A log replica (doc/paxos.md section 7a): node 3 stops, node 4 joins as
 * a log replica with the leader's vote floor and is added, node 3
 * removed; it passes its floor although it applies no txn; node 4 acknowledges (the
 * add needs 3 of 4, the next write with node 1 down needs it too) but
 * holds no item, refuses reads, says "kind log", never leads, and keeps
 * its kind across a restart. */
START_TEST(t_log_replica)
{
	struct qfs_paxos_config m, cur = { .n = 3, .ids = { 1, 2, 3 } };
	struct qfs_paxos_config c1234 = { .n = 4, .ids = { 1, 2, 3, 4 }, .log = 8 };
	struct qfs_paxos_config c124 = { .n = 3, .ids = { 1, 2, 4 }, .log = 4 };
	struct qfs_rnode_ginfo gi;
	struct qfs_paxos_floor fl;
	struct qfs_buf st;
	qfs_lsn_t applied = 0;
	void *val = NULL;
	char path[400], text[128], want[128];
	uint32_t l;
	size_t vlen;
	int items = 0;

	for (int i = 0; i < 10; i++) {
		char name[32];

		snprintf(name, sizeof(name), "before%d", i);
		put_acked(name, "x");
	}
	node_stop(2);
	spare_start();
	/* with the leader's vote floor, as the healer joins it (it may have
	 * been a member before: doc/paxos.md section 7a) */
	l = leader4();
	ck_assert_uint_ne(l, 0);
	ck_assert_int_eq(qfs_rnode_join_floor(node_of(l), G, 4, &fl, NULL), 0);
	ck_assert_int_eq(qfs_rnode_group_join_log(SPARE, G, &c1234, &fl), -EINVAL); /* names it */
	ck_assert_int_eq(qfs_rnode_group_join_log(SPARE, G, &cur, &fl), 0);
	snprintf(path, sizeof(path), "%s/n4/groups/%016llx.floor", tmpdir, (unsigned long long)G);
	ck_assert_int_eq(file_text(path, text, sizeof(text)), 0);
	snprintf(want, sizeof(want), "floor %llu %llu\n", (unsigned long long)fl.lsn,
		 (unsigned long long)fl.ballot);
	ck_assert_str_eq(text, want);
	ck_assert_int_eq(qfs_rnode_group_joining(SPARE, G), 1); /* below its floor */
	change_cfg(&c1234); /* 3 of 4: nodes 1, 2 and the log replica */
	change_cfg(&c124);
	put4("after", "two");
	/* the quorum of the last change need not include the log replica's
	 * apply (accepting is enough): it learns its configuration when it
	 * applies the entries, which may lag under a sanitizer */
	for (uint64_t end = qfs_clock_mono_ms() + 10000;;) {
		ck_assert_int_eq(qfs_rnode_group_members(SPARE, G, &m), 0);
		if (qfs_paxos_config_is_log(&m, 4))
			break;
		ck_assert_msg(qfs_clock_mono_ms() < end, "the log replica never applies its addition");
		usleep(10000);
	}
	/* it applies no txn, yet its applied LSN passes the floor: it stops
	 * being "joining" (the reconciler may judge its membership again) */
	for (uint64_t end = qfs_clock_mono_ms() + 5000; qfs_rnode_group_joining(SPARE, G);) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "the log replica stays below its floor");
		usleep(10000);
	}
	ck_assert_int_eq(qfs_rnode_group_info(SPARE, G, &gi), 0);
	ck_assert_uint_ge(gi.applied, fl.lsn);
	/* node 1 down: 2 and the log replica commit; node 2 leads, never 4 */
	node_stop(0);
	put4("without1", "three");
	ck_assert_uint_eq(leader4(), 2);
	ck_assert_int_eq(qfs_rnode_group_info(SPARE, G, &gi), 0);
	ck_assert_uint_gt(gi.applied, 0);
	ck_assert_int_ne(gi.role, QFS_PAXOS_LEADER);
	{
		uint8_t key[QFS_KEY_MAX];
		size_t klen = qfs_key_dentry(key, DIR_INO, "after", 5);

		ck_assert_int_eq(qfs_rnode_get(SPARE, G, key, klen, &val, &vlen), -EREMOTE);
	}
	ck_assert_int_eq(qfs_rnode_snapshot_scan(SPARE, G, &applied, nitems_cb, &items), 0);
	ck_assert_int_eq(items, 0); /* no store */
	qfs_buf_init(&st);
	qfs_rnode_status(SPARE, &st);
	qfs_buf_put(&st, "", 1);
	ck_assert_msg(strstr((char *)st.data, " kind log\n") != NULL, "%s", (char *)st.data);
	qfs_buf_close(&st);
	/* its kind survives a restart */
	qfs_rnode_close(SPARE);
	SPARE = NULL;
	spare_start();
	ck_assert_int_eq(qfs_rnode_group_members(SPARE, G, &m), 0);
	ck_assert(qfs_paxos_config_is_log(&m, 4));
	ck_assert_int_eq(qfs_rnode_group_joining(SPARE, G), 0); /* floor reloaded, passed */
	put4("restarted", "four");
	{
		uint8_t key[QFS_KEY_MAX];
		size_t klen = qfs_key_dentry(key, DIR_INO, "after", 5);

		ck_assert_int_eq(qfs_rnode_get(SPARE, G, key, klen, &val, &vlen), -EREMOTE);
	}
	ck_assert_uint_eq(leader4(), 2);
	qfs_rnode_close(SPARE);
	SPARE = NULL;
}
END_TEST

/* The leader of G holding its lease (waits up to 10 s). */
static uint32_t leader_leased(void)
{
	uint64_t end = qfs_clock_mono_ms() + 10000;

	for (;;) {
		uint32_t l = leader4();

		if (l && qfs_rnode_can_read_strong(node_of(l), G))
			return l;
		ck_assert_msg(qfs_clock_mono_ms() < end, "no leader with a lease");
		usleep(10000);
	}
}

/* Conditional membership changes (qfs_rnode_propose_members_if: a healer
 * whose view aged must not undo another change, doc/cluster.md section
 * 1c) and the leader's answer to the reconciler of a node that hosts a
 * replica no configuration names (qfs_rnode_nonmember). */
START_TEST(t_config_if)
{
	struct qfs_paxos_config v0 = { .n = 3, .ids = { 1, 2, 3 } }, v1, m;
	struct qfs_rnode_health h;
	uint32_t l, x, hint = 0;
	uint64_t end;
	int rc = -1;

	put_acked("a", "1");
	l = leader_leased();
	ck_assert_int_eq(qfs_rnode_group_health(node_of(l), G, &h), 0);
	ck_assert(h.leader);
	ck_assert_uint_ne(h.ballot, 0);
	x = l % 3 + 1; /* a follower */
	memset(&v1, 0, sizeof(v1));
	for (uint32_t i = 0; i < v0.n; i++)
		if (v0.ids[i] != x)
			v1.ids[v1.n++] = v0.ids[i];
	/* the leader's answers: 4 is no member, x is one; a follower redirects */
	ck_assert_int_eq(qfs_rnode_nonmember(node_of(l), G, 4, NULL), 0);
	ck_assert_int_eq(qfs_rnode_nonmember(node_of(l), G, x, NULL), -EINVAL);
	/* (a follower the acked put did not need may not know the leader
	 * yet: its hint is 0 until the leader's next message) */
	for (end = qfs_clock_mono_ms() + 5000;;) {
		ck_assert_int_eq(qfs_rnode_nonmember(node_of(x), G, 4, &hint), -EREMOTE);
		if (hint || qfs_clock_mono_ms() >= end)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(hint, l);
	ck_assert_int_eq(qfs_rnode_nonmember(node_of(l), 0x7777, 4, NULL), QFS_ENOGROUP);
	/* a view of another configuration or another ballot is refused
	 * before the append; so is a follower, and no view at all */
	ck_assert_int_eq(qfs_rnode_propose_members_if(node_of(l), G, &v1, h.ballot, &v1, 1000, NULL),
			 -ESTALE);
	ck_assert_int_eq(qfs_rnode_propose_members_if(node_of(l), G, &v0, h.ballot + 1, &v1, 1000,
						      NULL), -ESTALE);
	ck_assert_int_eq(qfs_rnode_propose_members_if(node_of(x), G, &v0, h.ballot, &v1, 1000, &hint),
			 -EREMOTE);
	ck_assert_int_eq(qfs_rnode_propose_members_if(node_of(l), G, NULL, h.ballot, &v1, 1000, NULL),
			 -EINVAL);
	ck_assert_int_eq(qfs_rnode_group_members(node_of(l), G, &m), 0);
	ck_assert_uint_eq(m.n, 3); /* nothing appended */
	/* the view holds: x goes (a new leader: its own view, same members) */
	for (end = qfs_clock_mono_ms() + 10000; qfs_clock_mono_ms() < end;) {
		rc = qfs_rnode_propose_members_if(node_of(l), G, &v0, h.ballot, &v1, 3000, NULL);
		if (rc == 0)
			break;
		ck_assert_msg(rc == -EBUSY || rc == -ESTALE || rc == -EREMOTE || rc == -ETIMEDOUT,
			      "rc %d", rc);
		usleep(20000);
		if (rc != -EBUSY) {
			l = leader_leased();
			ck_assert_int_eq(qfs_rnode_group_health(node_of(l), G, &h), 0);
			ck_assert_uint_eq(h.cfg.n, 3);
		}
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(qfs_rnode_group_members(node_of(l), G, &m), 0);
	ck_assert_uint_eq(m.n, 2);
	/* x back in is a single change of the members in force, which an
	 * unconditional proposal would append; computed from the view before
	 * the removal it is stale */
	ck_assert(qfs_paxos_config_one_change(&v1, &v0));
	l = leader_leased();
	ck_assert_int_eq(qfs_rnode_propose_members_if(node_of(l), G, &v0, h.ballot, &v0, 1000, NULL),
			 -ESTALE);
	ck_assert_int_eq(qfs_rnode_group_members(node_of(l), G, &m), 0);
	ck_assert_uint_eq(m.n, 2);
	/* x removed is no member now (once the leader's lease is back) */
	for (end = qfs_clock_mono_ms() + 5000;;) {
		rc = qfs_rnode_nonmember(node_of(leader_leased()), G, x, NULL);
		if (rc != -EBUSY && rc != -EREMOTE)
			break;
		ck_assert_msg(qfs_clock_mono_ms() < end, "rc %d", rc);
		usleep(20000);
	}
	ck_assert_int_eq(rc, 0);
}
END_TEST

START_TEST(t_elect_replicate)
{
	char name[32], val[32], line[256];
	struct qfs_buf st;
	uint32_t hint = 99;
	int l, f, result = 99, found = 0;
	uint64_t end;

	l = find_leader(5000);
	ck_assert_int_ge(l, 0);
	for (int k = 0; k < 20; k++) {
		snprintf(name, sizeof(name), "f%02d", k);
		snprintf(val, sizeof(val), "v%02d", k);
		l = put_acked(name, val);
	}
	for (int i = 0; i < NN; i++)
		for (int k = 0; k < 20; k++) {
			snprintf(name, sizeof(name), "f%02d", k);
			snprintf(val, sizeof(val), "v%02d", k);
			wait_key(i, name, val);
		}
	/* the leader now, not the one of the last put: the waits above are
	 * long enough under load for a re-election (a follower that missed
	 * heartbeats), and the checks below need the node that leads */
	l = find_leader(10000);
	ck_assert_int_ge(l, 0);
	/* A failed condition is a committed outcome with its own result. */
	ck_assert_int_eq(propose(l, "f00", "other", 1, 2000, &result, NULL), 0);
	ck_assert_int_eq(result, -EEXIST);
	ck_assert_int_eq(get_is(l, "f00", "v00"), 0);
	/* A follower redirects to the leader. */
	f = (l + 1) % NN;
	result = 99;
	ck_assert_int_eq(propose(f, "x", "y", 0, 2000, &result, &hint), -EREMOTE);
	ck_assert_uint_eq(hint, (uint32_t)l + 1);
	ck_assert_int_eq(result, 99);
	ck_assert_int_eq(qfs_rnode_can_read_strong(RN[f], G), 0);
	/* The leader gets its lease (heartbeats renew it). */
	end = qfs_clock_mono_ms() + 2000;
	while (!qfs_rnode_can_read_strong(RN[l], G)) {
		ck_assert(qfs_clock_mono_ms() < end);
		usleep(5000);
	}
	ck_assert_int_eq(qfs_rnode_can_read_strong(RN[l], 0x999), 0);
	/* Status. */
	qfs_buf_init(&st);
	qfs_rnode_status(RN[l], &st);
	qfs_buf_put_u8(&st, 0);
	snprintf(line, sizeof(line), "group 0000000000000400 node %d az %c role leader ballot ", l + 1,
		 'a' + l);
	found = strstr((char *)st.data, line) != NULL;
	ck_assert_msg(found, "status: %s", (char *)st.data);
	snprintf(line, sizeof(line), "leader %d last ", l + 1);
	ck_assert_ptr_nonnull(strstr((char *)st.data, line));
	qfs_buf_close(&st);
	ck_assert_int_eq(qfs_rnode_get(RN[l], 0x999, (const uint8_t *)"k", 1, NULL, NULL),
			 QFS_ENOGROUP);
	struct qfs_val pv = { 0 };
	ck_assert_int_eq(qfs_rnode_get_val(RN[l], 0x999, (const uint8_t *)"k", 1, &pv), QFS_ENOGROUP);
	ck_assert(!qfs_val_held(&pv));
}
END_TEST

/* Entries past 1 MiB: each replica applies them from the buffer its WAL
 * sync wrote them from (qfs_wal_read_recent, kept and lent from the pool
 * of common/bigbuf.h).  Every replica stores exactly what was written,
 * also across a failover (the old leader closed with its kept buffer,
 * reopened, caught up) and a drop; once every node is closed the pool
 * counts nothing lent (each kept buffer unlent once, on whichever path). */
static char *big_val(int k)
{
	size_t n = (2u << 20) + (size_t)k * 4099;
	char *v = malloc(n + 1);

	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < n; i++)
		v[i] = (char)('a' + (i * 7 + (size_t)k * 3 + i / 4096) % 26);
	v[n] = '\0';
	return v;
}

START_TEST(t_large_entries)
{
	char name[16], *v[5];
	struct qfs_bigbuf_stats st;
	int l;

	for (int k = 0; k < 5; k++)
		v[k] = big_val(k);
	ck_assert_int_ge(find_leader(5000), 0);
	for (int k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "big%d", k);
		put_acked(name, v[k]);
	}
	for (int i = 0; i < NN; i++)
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "big%d", k);
			wait_key(i, name, v[k]);
		}
	/* the leader goes (closed with whatever it keeps), another takes over */
	l = find_leader(5000);
	ck_assert_int_ge(l, 0);
	put_acked("big3", v[3]);
	node_stop(l);
	put_acked("big3", v[4]);
	node_start(l, 0);
	for (int i = 0; i < NN; i++) {
		wait_key(i, "big3", v[4]);
		wait_key(i, "big0", v[0]);
	}
	wait_equal(0, 1);
	wait_equal(0, 2);
	for (int i = 0; i < NN; i++)
		ck_assert_int_eq(qfs_rnode_group_drop(RN[i], G), 0);
	for (int i = 0; i < NN; i++)
		node_stop(i);
	qfs_bigbuf_stats(&st);
	ck_assert_uint_eq(st.lent_bytes, 0);
	for (int k = 0; k < 5; k++)
		free(v[k]);
}
END_TEST

START_TEST(t_failover)
{
	char name[32];
	int l, l2, o;

	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "a%02d", k);
		put_acked(name, "before");
	}
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	node_stop(l);
	l2 = find_leader(5000);
	ck_assert_int_ge(l2, 0);
	ck_assert_int_ne(l2, l);
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "b%02d", k);
		put_acked(name, "after");
	}
	o = 3 - l - l2; /* the third node */
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "a%02d", k);
		wait_key(l2, name, "before");
		wait_key(o, name, "before");
	}
	node_start(l, 0);
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "b%02d", k);
		wait_key(l, name, "after");
	}
	wait_equal(l, l2);
	wait_equal(l, o);
}
END_TEST

START_TEST(t_two_down)
{
	char name[32];
	uint32_t hint = 0;
	int l, result = 99, rc;
	uint64_t t0, ms;

	for (int k = 0; k < 5; k++) {
		snprintf(name, sizeof(name), "c%02d", k);
		l = put_acked(name, "v");
	}
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	node_stop((l + 1) % NN);
	node_stop((l + 2) % NN);
	t0 = qfs_clock_mono_ms();
	rc = propose(l, "lonely", "v", 0, 1000, &result, &hint);
	ms = qfs_clock_mono_ms() - t0;
	ck_assert_msg(rc == -ETIMEDOUT || rc == -EREMOTE, "rc %d", rc);
	ck_assert_msg(ms < 3000, "took %llu ms", (unsigned long long)ms);
	/* Without a quorum the lone node stops leading: redirect, bounded. */
	usleep(700000);
	t0 = qfs_clock_mono_ms();
	rc = propose(l, "lonely2", "v", 0, 1000, &result, &hint);
	ck_assert_msg(rc == -ETIMEDOUT || rc == -EREMOTE, "rc %d", rc);
	ck_assert(qfs_clock_mono_ms() - t0 < 3000);
	node_start((l + 1) % NN, 0);
	node_start((l + 2) % NN, 0);
	put_acked("back", "v");
	for (int i = 0; i < NN; i++) {
		for (int k = 0; k < 5; k++) {
			snprintf(name, sizeof(name), "c%02d", k);
			wait_key(i, name, "v");
		}
		wait_key(i, "back", "v");
	}
	wait_equal(0, 1);
	wait_equal(0, 2);
}
END_TEST

struct worker {
	int leader, id, ok;
	int moved; /* a proposal met another leader than the first one */
	int gap_us; /* pause after each answer (0: propose again at once) */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32];

	for (int k = 0; k < 50; k++) {
		uint64_t end = qfs_clock_mono_ms() + 10000;
		int result = 99, rc;
		uint32_t hint;

		snprintf(name, sizeof(name), "w%d-%02d", w->id, k);
		/* The leader may hand over to the group's preferred member
		 * meanwhile (doc/paxos.md section 6): follow its hint, retry a
		 * refusal (a PUT applied twice is the same PUT). */
		for (;;) {
			hint = 0;
			rc = propose(w->leader, name, "v", 0, 5000, &result, &hint);
			if (rc == 0 || qfs_clock_mono_ms() >= end)
				break;
			if (rc == -EREMOTE && hint >= 1 && hint <= NN)
				w->leader = (int)hint - 1;
			else if (rc != -EAGAIN && rc != -EREMOTE)
				break;
			else
				usleep(10000);
			w->moved = 1;
		}
		if (rc == 0 && result == 0)
			w->ok++;
		if (w->gap_us)
			usleep((useconds_t)w->gap_us);
	}
	return NULL;
}

/* 4 and 8 proposer threads x 50 proposals on the leader: all applied; the
 * leader's and the followers' WAL fsyncs are printed (group commit: fewer
 * than proposals; how many fewer depends on the scheduling, so only "fewer"
 * is asserted). */
START_TEST(t_concurrent)
{
	struct qfs_rnode_stat s0[NN], s1[NN];
	struct worker w[8];
	pthread_t th[8];
	uint64_t t0, t1, nf = 0;
	int l, nw = _i ? 8 : 4;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	for (int i = 0; i < NN; i++)
		qfs_rnode_stat(RN[i], &s0[i]);
	t0 = qfs_clock_mono_ms();
	for (int i = 0; i < nw; i++) {
		w[i] = (struct worker){ .leader = l, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < nw; i++)
		pthread_join(th[i], NULL);
	t1 = qfs_clock_mono_ms();
	for (int i = 0; i < NN; i++)
		qfs_rnode_stat(RN[i], &s1[i]);
	for (int i = 0; i < nw; i++)
		ck_assert_int_eq(w[i].ok, 50);
	for (int i = 0; i < nw; i++)
		if (w[i].moved) {
			/* leadership moved during the run: every proposal was
			 * applied (above) and the replicas agree (below); the
			 * per-leader counts no longer describe one leader */
			fprintf(stderr, "check_rnode: leadership moved during t_concurrent\n");
			wait_equal(0, 1);
			wait_equal(0, 2);
			return;
		}
	ck_assert_uint_eq(s1[l].proposals - s0[l].proposals, 50u * (unsigned)nw);
	for (int i = 0; i < NN; i++)
		if (i != l)
			nf += s1[i].fsyncs - s0[i].fsyncs;
	fprintf(stderr, "check_rnode: %d proposals by %d threads in %llu ms, %llu batches, leader "
		"fsyncs %llu (%.2f proposals each), follower fsyncs %llu\n", 50 * nw, nw,
		(unsigned long long)(t1 - t0), (unsigned long long)(s1[l].batches - s0[l].batches),
		(unsigned long long)(s1[l].fsyncs - s0[l].fsyncs),
		50.0 * nw / (double)(s1[l].fsyncs - s0[l].fsyncs), (unsigned long long)nf);
	ck_assert_uint_lt(s1[l].fsyncs - s0[l].fsyncs, 50u * (unsigned)nw);
	/* the followers applied beside their syncs (their ACCEPTs carry
	 * new entries and the commit of older ones), the leader never */
	ck_assert_uint_eq(s1[l].beside - s0[l].beside, 0);
	nf = 0;
	for (int i = 0; i < NN; i++)
		if (i != l)
			nf += s1[i].beside - s0[i].beside;
	fprintf(stderr, "check_rnode: follower applies beside a sync %llu\n", (unsigned long long)nf);
	ck_assert_uint_ge(nf, 1);
	wait_equal(0, 1);
	wait_equal(0, 2);
}
END_TEST

/* A proposal carried out by the proposer's own thread (the I/O thread
 * idle: doc/rnode.md section 2) still needs the quorum: with one follower
 * stopped the entries commit on the leader and the other follower; with
 * both stopped none is acknowledged (the deadline or a redirect), and the
 * lone leader applies none of them. */
START_TEST(t_direct_quorum)
{
	struct qfs_rnode_stat s0, s1;
	char name[32];
	uint32_t hint = 0;
	int l, f1, f2, result = 99, rc;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	f1 = (l + 1) % NN;
	f2 = (l + 2) % NN;
	node_stop(f1);
	/* the 10 proposals to one leader; if the leadership moved meanwhile
	 * (-EREMOTE: under ASan at load 25 the other follower missed enough
	 * heartbeats to win an election), again on the new leader, 5 times
	 * at most */
	for (int attempt = 0;; attempt++) {
		qfs_rnode_stat(RN[l], &s0);
		for (int k = 0; k < 10; k++) {
			snprintf(name, sizeof(name), "d%02d", k);
			rc = propose(l, name, "v", 0, 5000, &result, &hint);
			if (rc == -EREMOTE && attempt < 5)
				break;
			ck_assert_msg(rc == 0 && result == 0, "rc %d result %d", rc, result);
			usleep(20000); /* let the I/O thread go idle */
		}
		if (rc != -EREMOTE)
			break;
		for (uint64_t end = qfs_clock_mono_ms() + 10000; qfs_rnode_leader(RN[f2], G) != (uint32_t)f2 + 1 &&
		     qfs_rnode_leader(RN[l], G) != (uint32_t)l + 1;) {
			ck_assert_msg(qfs_clock_mono_ms() < end, "no leader with node %d stopped", f1 + 1);
			usleep(10000);
		}
		if (qfs_rnode_leader(RN[f2], G) == (uint32_t)f2 + 1) {
			int was = l;

			l = f2;
			f2 = was;
		}
	}
	qfs_rnode_stat(RN[l], &s1);
	ck_assert_uint_eq(s1.proposals - s0.proposals, 10);
	ck_assert_uint_ge(s1.direct - s0.direct, 1);
	fprintf(stderr, "check_rnode: one follower down: %llu of 10 proposals direct\n",
		(unsigned long long)(s1.direct - s0.direct));
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "d%02d", k);
		wait_key(f2, name, "v");
	}
	node_stop(f2);
	qfs_rnode_stat(RN[l], &s0);
	for (int k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "lone%d", k);
		rc = propose(l, name, "v", 0, 500, &result, &hint);
		ck_assert_msg(rc == -ETIMEDOUT || rc == -EREMOTE, "rc %d", rc);
		ck_assert_int_eq(get_is(l, name, "v"), -ENOENT);
		usleep(20000);
	}
	qfs_rnode_stat(RN[l], &s1);
	ck_assert_uint_ge(s1.direct - s0.direct, 1);
	node_start(f1, 0);
	node_start(f2, 0);
	put_acked("back", "v");
	for (int i = 0; i < NN; i++) {
		wait_key(i, "d09", "v");
		wait_key(i, "back", "v");
	}
	wait_equal(0, 1);
	wait_equal(0, 2);
}
END_TEST

/* Two proposers racing each other and the I/O thread (heartbeats, the
 * followers' answers): every proposal applied exactly where it belongs,
 * some carried out by the proposers' own threads, the replicas equal.
 * Each pauses 10 ms after its answer, longer than a gathering window
 * (RNODE_GATHER_MAX_US): proposing again at once, the two were gathered
 * into one batch after the first rounds, and the direct rounds this test
 * races (at least one asserted) did not happen at all in about one run
 * of four. */
START_TEST(t_direct_race)
{
	struct qfs_rnode_stat s0, s1;
	struct worker w[2];
	pthread_t th[2];
	int l;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	qfs_rnode_stat(RN[l], &s0);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker){ .leader = l, .id = i, .gap_us = 10000 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	qfs_rnode_stat(RN[l], &s1);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(w[i].ok, 50);
	if (!w[0].moved && !w[1].moved) {
		ck_assert_uint_eq(s1.proposals - s0.proposals, 100);
		ck_assert_uint_ge(s1.direct - s0.direct, 1);
	}
	fprintf(stderr, "check_rnode: 2 racing proposers: %llu of %llu proposals direct, %llu leader fsyncs\n",
		(unsigned long long)(s1.direct - s0.direct), (unsigned long long)(s1.proposals - s0.proposals),
		(unsigned long long)(s1.fsyncs - s0.fsyncs));
	for (int i = 0; i < NN; i++)
		for (int k = 0; k < 50; k += 7)
			for (int j = 0; j < 2; j++) {
				char name[32];

				snprintf(name, sizeof(name), "w%d-%02d", j, k);
				wait_key(i, name, "v");
			}
	wait_equal(0, 1);
	wait_equal(0, 2);
}
END_TEST

/* The seam of t_send_while_sync: the I/O thread of node arg about to sync. */
static struct {
	int armed;            /* 1 + index of the node whose next sync of G waits */
	qfs_lsn_t lsn;        /* the last entry of that sync */
	int followers_durable; /* 1: both others had it durable before it */
	int slow;             /* 1 + index of the node whose syncs of G take
				 slow_ms longer (t_gather) */
	int slow_ms;
} SYNCT;


static void before_sync(qfs_group_t group, qfs_lsn_t lsn, void *arg)
{
	int i = (int)(intptr_t)arg;
	uint64_t end = qfs_clock_mono_ms() + 5000;

	if (group == G) {
		while (__atomic_load_n(&QD.hold[i], __ATOMIC_SEQ_CST) && qfs_clock_mono_ms() < end) {
			__atomic_store_n(&QD.blocked[i], 1, __ATOMIC_SEQ_CST);
			usleep(500);
		}
		__atomic_store_n(&QD.blocked[i], 0, __ATOMIC_SEQ_CST);
		if (lsn > __atomic_load_n(&QD.released[i], __ATOMIC_SEQ_CST))
			__atomic_store_n(&QD.released[i], lsn, __ATOMIC_SEQ_CST);
		end = qfs_clock_mono_ms() + 5000;
	}

	if (group == G && __atomic_load_n(&SYNCT.slow, __ATOMIC_SEQ_CST) == i + 1)
		usleep((useconds_t)SYNCT.slow_ms * 1000);
	if (group != G || __atomic_load_n(&SYNCT.armed, __ATOMIC_SEQ_CST) != i + 1)
		return;
	SYNCT.lsn = lsn;
	__atomic_store_n(&SYNCT.armed, 0, __ATOMIC_SEQ_CST);
	/* Hold this sync until the followers have the entry durable: they can
	 * only if the leader sent it before its own sync. */
	while (qfs_clock_mono_ms() < end) {
		int ok = 1;

		for (int k = 0; k < NN; k++) {
			struct qfs_rnode_ginfo gi;

			if (k != i && (qfs_rnode_group_info(RN[k], G, &gi) != 0 || gi.durable < lsn))
				ok = 0;
		}
		if (ok) {
			SYNCT.followers_durable = 1;
			return;
		}
		usleep(1000);
	}
}

/* The leader sends an entry while it syncs it itself: with its sync held
 * back, both followers make the entry durable; it is acknowledged only
 * after the leader's sync (the proposer waits meanwhile). */
START_TEST(t_send_while_sync)
{
	struct qfs_rnode_ginfo gi;
	int l, result = 99;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	memset(&SYNCT, 0, sizeof(SYNCT));
	__atomic_store_n(&SYNCT.armed, l + 1, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(propose(l, "early", "v", 0, 5000, &result, NULL), 0);
	ck_assert_int_eq(result, 0);
	ck_assert_int_eq(__atomic_load_n(&SYNCT.armed, __ATOMIC_SEQ_CST), 0);
	ck_assert_int_eq(SYNCT.followers_durable, 1);
	ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
	ck_assert_uint_ge(gi.durable, SYNCT.lsn);
	for (int i = 0; i < NN; i++)
		wait_key(i, "early", "v");
}
END_TEST

/* t_quorum_durable's proposers and checker. */
struct qd_worker {
	int leader, id, ok;
	qfs_ballot_t ballot;     /* the leader's, at the start */
	uint32_t answered;       /* bit k: proposal k answered with success */
};

static int QD_OK;    /* atomic: proposals answered with success */
static int QD_STOP;  /* atomic: the checker ends */
static int QD_VIOL;  /* atomic: commits or answers beyond a durable quorum */
static int QD_MOVED; /* atomic: leadership moved (the checks stop) */

/* The highest LSN a quorum containing leader l can have durable now: l's
 * own bound and the best follower's, the lower of the two. */
static qfs_lsn_t qd_quorum(int l)
{
	qfs_lsn_t own = __atomic_load_n(&QD.released[l], __ATOMIC_SEQ_CST), best = 0;

	for (int k = 0; k < NN; k++) {
		qfs_lsn_t r = __atomic_load_n(&QD.released[k], __ATOMIC_SEQ_CST);

		if (k != l && r > best)
			best = r;
	}
	return own < best ? own : best;
}

/* Read leader l's state, then the bounds (which only grow): the commit and
 * the applied point may never pass what l and one follower may have synced.
 * Returns the applied point, or 0 if l no longer leads in ballot b. */
static qfs_lsn_t qd_check(int l, qfs_ballot_t b, const char *who)
{
	struct qfs_rnode_ginfo gi;
	qfs_lsn_t q;

	if (qfs_rnode_group_info(RN[l], G, &gi) != 0 || gi.role != QFS_PAXOS_LEADER || gi.ballot != b) {
		__atomic_store_n(&QD_MOVED, 1, __ATOMIC_SEQ_CST);
		return 0;
	}
	q = qd_quorum(l);
	if (gi.commit > q || gi.applied > q) {
		fprintf(stderr, "check_rnode: %s: commit %" PRIu64 " applied %" PRIu64
			" beyond the durable quorum %" PRIu64 "\n", who, gi.commit, gi.applied, q);
		__atomic_add_fetch(&QD_VIOL, 1, __ATOMIC_SEQ_CST);
	}
	return gi.applied;
}

static void *qd_writer(void *arg)
{
	struct qd_worker *w = arg;
	char name[32];

	for (int k = 0; k < 30; k++) {
		int result = 99, rc;

		snprintf(name, sizeof(name), "qd%d-%02d", w->id, k);
		rc = propose(w->leader, name, "v", 0, 10000, &result, NULL);
		if (rc != 0 || result != 0)
			continue;
		/* answered after the apply of its entry: the leader's applied
		 * point covers it, so it must be durable on a quorum */
		(void)qd_check(w->leader, w->ballot, "answer");
		w->ok++;
		w->answered |= 1u << k;
		__atomic_add_fetch(&QD_OK, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

struct qd_checker {
	int leader;
	qfs_ballot_t ballot;
	uint64_t samples;
};

static void *qd_checker_main(void *arg)
{
	struct qd_checker *c = arg;

	while (!__atomic_load_n(&QD_STOP, __ATOMIC_SEQ_CST) && !__atomic_load_n(&QD_MOVED, __ATOMIC_SEQ_CST)) {
		(void)qd_check(c->leader, c->ballot, "sample");
		c->samples++;
		usleep(200);
	}
	return NULL;
}

/* Wait up to 5 s until a sync of node i waits in the seam; 0 if it does. */
static int qd_wait_blocked(int i)
{
	uint64_t end = qfs_clock_mono_ms() + 5000;

	while (!__atomic_load_n(&QD.blocked[i], __ATOMIC_SEQ_CST))
		if (qfs_clock_mono_ms() >= end)
			return -1;
		else
			usleep(500);
	return 0;
}

/* An answer means durable on 2 of 3, the leader's own sync counted (the
 * rule any overlap of rounds must keep): 8 proposer threads keep proposals
 * in flight (30 each) while the followers' syncs are held back by the test
 * seam: for 50 ms nothing is answered although the leader synced entries
 * of its own (durable > commit there).  Then one follower syncs again: the
 * proposals go on with it, the other one still held.  Then the leader's
 * own syncs are held too for 50 ms.  All along, a checker thread and
 * every proposer after its answer check that the leader's commit and
 * applied points never pass what the leader and one follower may have
 * made durable (each node's bound: the last entry of every sync whose
 * seam returned).  At the end every answered write is read back by a
 * strong read on the leader.  Holds are shorter than an election timeout
 * (150 ms here); if leadership moves anyway, the checks stop there and
 * only what was checked until then is asserted. */
START_TEST(t_quorum_durable)
{
	struct qd_worker w[8];
	struct qd_checker ck;
	struct qfs_rnode_ginfo gi;
	pthread_t th[8], ct;
	int l, f1, f2, ok = 0;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	f1 = (l + 1) % NN;
	f2 = (l + 2) % NN;
	ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
	QD_OK = QD_STOP = QD_VIOL = QD_MOVED = 0;
	ck = (struct qd_checker){ .leader = l, .ballot = gi.ballot };
	for (int i = 0; i < 8; i++)
		w[i] = (struct qd_worker){ .leader = l, .id = i, .ballot = gi.ballot };
	__atomic_store_n(&QD.hold[f1], 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&QD.hold[f2], 1, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(pthread_create(&ct, NULL, qd_checker_main, &ck), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, qd_writer, &w[i]), 0);
	/* 1. both followers held: nothing may be answered */
	ck_assert_int_eq(qd_wait_blocked(f1), 0);
	ck_assert_int_eq(qd_wait_blocked(f2), 0);
	usleep(50000);
	for (uint64_t end = qfs_clock_mono_ms() + 5000;; usleep(1000)) {
		ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
		if (gi.durable > gi.commit || qfs_clock_mono_ms() >= end)
			break;
	}
	ck_assert_int_eq(__atomic_load_n(&QD_OK, __ATOMIC_SEQ_CST), 0);
	ck_assert_msg(gi.durable > gi.commit, "leader durable %" PRIu64 " commit %" PRIu64, gi.durable,
		      gi.commit);
	/* 2. one follower syncs again: the quorum is the leader and it */
	__atomic_store_n(&QD.hold[f1], 0, __ATOMIC_SEQ_CST);
	for (uint64_t end = qfs_clock_mono_ms() + 5000;
	     __atomic_load_n(&QD_OK, __ATOMIC_SEQ_CST) < 40 && qfs_clock_mono_ms() < end;)
		usleep(1000);
	/* 3. the leader's own syncs held as well */
	__atomic_store_n(&QD.hold[l], 1, __ATOMIC_SEQ_CST);
	if (qd_wait_blocked(l) == 0)
		usleep(50000);
	__atomic_store_n(&QD.hold[l], 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&QD.hold[f2], 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&QD_STOP, 1, __ATOMIC_SEQ_CST);
	pthread_join(ct, NULL);
	for (int i = 0; i < 8; i++)
		ok += w[i].ok;
	fprintf(stderr, "check_rnode: t_quorum_durable: %d of 240 answered, %llu samples%s\n", ok,
		(unsigned long long)ck.samples, QD_MOVED ? ", leadership moved" : "");
	ck_assert_int_eq(__atomic_load_n(&QD_VIOL, __ATOMIC_SEQ_CST), 0);
	if (!QD_MOVED)
		ck_assert_int_eq(ok, 240);
	/* every answered write, read back by a strong read on the leader */
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	for (int i = 0; i < 8; i++)
		for (int k = 0; k < 30; k++) {
			char name[32];
			uint64_t end = qfs_clock_mono_ms() + 5000;

			if (!(w[i].answered & (1u << k)))
				continue;
			snprintf(name, sizeof(name), "qd%d-%02d", i, k);
			while (!qfs_rnode_can_read_strong(RN[l], G) && qfs_clock_mono_ms() < end)
				usleep(1000);
			ck_assert(qfs_rnode_can_read_strong(RN[l], G));
			ck_assert_int_eq(get_is(l, name, "v"), 0);
		}
}
END_TEST

/* Group commit across rounds (doc/rnode.md section 2, "Gathering"): 8
 * proposer threads x 50 proposals, each thread proposing again as soon as
 * it is answered (an fsync loop), the leader's syncs made 5 ms long.  The
 * threads come back within microseconds of their answers, far inside the
 * gathering window (about one sync), so each round carries all 8: at most
 * 75 leader syncs for 400 proposals (50 if every round is full; without the
 * gathering the first thread back ran a round of its own and the threads
 * split into cohorts, about 100).  A count, not a rate: the window is
 * fixed at 200 ms here (qfs_rnode_gather_test_us; it ends as soon as all 8
 * are back), so a thread descheduled for longer than one sync under load
 * (90 syncs seen with the adaptive 0.5-4 ms window and 6 busy loops on 2
 * CPUs) does not end a batch early; the slack is for longer ones, and the
 * best of up to 3 runs is asserted. */
START_TEST(t_gather)
{
	struct qfs_rnode_stat s0, s1;
	struct worker w[8];
	pthread_t th[8];
	uint64_t syncs = 0, batches;
	int l;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	SYNCT.slow_ms = 5;
	qfs_rnode_gather_test_us = 200000;
	/* Up to 3 runs, the first one with at most 75 syncs passes: on a
	 * loaded machine a run saw 82 (threads descheduled longer than the
	 * window); without the gathering every run takes about 100. */
	for (int run = 0; run < 3; run++) {
		__atomic_store_n(&SYNCT.slow, l + 1, __ATOMIC_SEQ_CST);
		qfs_rnode_stat(RN[l], &s0);
		for (int i = 0; i < 8; i++) {
			w[i] = (struct worker){ .leader = l, .id = i };
			ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
		}
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
		qfs_rnode_stat(RN[l], &s1);
		__atomic_store_n(&SYNCT.slow, 0, __ATOMIC_SEQ_CST);
		for (int i = 0; i < 8; i++)
			ck_assert_int_eq(w[i].ok, 50);
		wait_equal(0, 1);
		wait_equal(0, 2);
		for (int i = 0; i < 8; i++)
			if (w[i].moved) {
				fprintf(stderr, "check_rnode: leadership moved during t_gather\n");
				qfs_rnode_gather_test_us = 0;
				return;
			}
		syncs = s1.fsyncs - s0.fsyncs;
		batches = s1.batches - s0.batches;
		fprintf(stderr, "check_rnode: t_gather: run %d: 400 proposals by 8 threads, %llu batches, %llu leader syncs\n",
			run, (unsigned long long)batches, (unsigned long long)syncs);
		ck_assert_uint_eq(s1.proposals - s0.proposals, 400);
		ck_assert_uint_ge(syncs, 50);
		if (syncs <= 75)
			break;
	}
	qfs_rnode_gather_test_us = 0;
	ck_assert_uint_le(syncs, 75);
}
END_TEST


/* Read-your-writes under group commit (doc/rnode.md section 2, "Answers
 * after the apply's end"): 6 writer threads each put their own key 40
 * times (values 0..39), each proposing again as soon as it is answered,
 * and a reader thread reads every writer's key meanwhile.  A writer that
 * got its answer and whose strong read is allowed (qfs_rnode_can_read_strong)
 * must read exactly its value; the reader, once a writer published k and
 * the strong read is allowed, must read k or a later value.  Asserts
 * these values only; how often the strong read was allowed is printed. */
#define RYW_W 6
#define RYW_N 40
static int RYW_LAST[RYW_W];  /* atomic: the last value answered to writer i */
static int RYW_DONE;         /* atomic: writers finished */
static int RYW_BAD;          /* atomic: reads that missed an answered write */

/* The value of key ryw<id> on node l as a number; -1 if absent or not read. */
static int ryw_get(int l, int id)
{
	uint8_t key[QFS_KEY_MAX];
	char name[16], txt[16];
	size_t klen, vlen = 0;
	void *val = NULL;
	int v = -1;

	snprintf(name, sizeof(name), "ryw%d", id);
	klen = qfs_key_dentry(key, DIR_INO, name, strlen(name));
	if (qfs_rnode_get(RN[l], G, key, klen, &val, &vlen) == 0 && vlen < sizeof(txt)) {
		memcpy(txt, val, vlen);
		txt[vlen] = 0;
		v = atoi(txt);
	}
	free(val);
	return v;
}

struct ryw_worker {
	int leader, id, ok, strong;
};

static void *ryw_writer(void *arg)
{
	struct ryw_worker *w = arg;
	char name[16], v[16];

	snprintf(name, sizeof(name), "ryw%d", w->id);
	for (int k = 0; k < RYW_N; k++) {
		int result = 99, rc, got;

		snprintf(v, sizeof(v), "%d", k);
		rc = propose(w->leader, name, v, 0, 5000, &result, NULL);
		if (rc != 0 || result != 0)
			break; /* (leadership moved: the test is skipped) */
		w->ok++;
		__atomic_store_n(&RYW_LAST[w->id], k, __ATOMIC_SEQ_CST);
		if (!qfs_rnode_can_read_strong(RN[w->leader], G))
			continue;
		w->strong++;
		got = ryw_get(w->leader, w->id);
		if (got != k) {
			fprintf(stderr, "check_rnode: writer %d answered %d, read %d\n", w->id, k, got);
			__atomic_add_fetch(&RYW_BAD, 1, __ATOMIC_SEQ_CST);
		}
	}
	__atomic_add_fetch(&RYW_DONE, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *ryw_reader(void *arg)
{
	int l = *(int *)arg;

	while (__atomic_load_n(&RYW_DONE, __ATOMIC_SEQ_CST) < RYW_W) {
		for (int id = 0; id < RYW_W; id++) {
			int k = __atomic_load_n(&RYW_LAST[id], __ATOMIC_SEQ_CST), got;

			if (k < 0 || !qfs_rnode_can_read_strong(RN[l], G))
				continue;
			got = ryw_get(l, id);
			if (got < k) {
				fprintf(stderr, "check_rnode: writer %d answered %d, reader read %d\n", id, k, got);
				__atomic_add_fetch(&RYW_BAD, 1, __ATOMIC_SEQ_CST);
			}
		}
	}
	return NULL;
}

START_TEST(t_read_own_write)
{
	struct ryw_worker w[RYW_W];
	pthread_t th[RYW_W], rt;
	int l, strong = 0;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	SYNCT.slow_ms = 2;
	__atomic_store_n(&SYNCT.slow, l + 1, __ATOMIC_SEQ_CST);
	RYW_DONE = 0;
	RYW_BAD = 0;
	for (int i = 0; i < RYW_W; i++)
		RYW_LAST[i] = -1;
	ck_assert_int_eq(pthread_create(&rt, NULL, ryw_reader, &l), 0);
	for (int i = 0; i < RYW_W; i++) {
		w[i] = (struct ryw_worker){ .leader = l, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, ryw_writer, &w[i]), 0);
	}
	for (int i = 0; i < RYW_W; i++)
		pthread_join(th[i], NULL);
	pthread_join(rt, NULL);
	__atomic_store_n(&SYNCT.slow, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < RYW_W; i++)
		strong += w[i].strong;
	fprintf(stderr, "check_rnode: t_read_own_write: %d writes, %d own strong reads allowed\n",
		RYW_W * RYW_N, strong);
	ck_assert_int_eq(__atomic_load_n(&RYW_BAD, __ATOMIC_SEQ_CST), 0);
	for (int i = 0; i < RYW_W; i++)
		if (w[i].ok != RYW_N) {
			fprintf(stderr, "check_rnode: leadership moved during t_read_own_write\n");
			return;
		}
}
END_TEST


struct heal_arg {
	int l;
};

/* Wait for a new leader among the others, write through it, then heal. */
static void *heal_main(void *arg)
{
	struct heal_arg *h = arg;
	uint64_t end = qfs_clock_mono_ms() + 5000;
	int done = 0;

	while (!done && qfs_clock_mono_ms() < end) {
		for (int i = 0; i < NN && !done; i++) {
			int result = 99;

			if (i == h->l || qfs_rnode_leader(RN[i], G) != (uint32_t)i + 1)
				continue;
			done = propose(i, "during", "v", 0, 1000, &result, NULL) == 0;
		}
		usleep(10000);
	}
	for (int i = 0; i < NN; i++)
		if (i != h->l) {
			qfs_net_set_link(NET, (uint32_t)h->l + 1, (uint32_t)i + 1, 1);
			qfs_net_set_link(NET, (uint32_t)i + 1, (uint32_t)h->l + 1, 1);
		}
	return NULL;
}

/* An entry the old leader appended but could not commit (it was cut off)
 * is replaced by the new leader's log when the partition heals: its
 * proposer gets -EAGAIN (never committed), not another entry's result. */
START_TEST(t_replaced)
{
	uint64_t t0;
	int l, l2, result = 99, rc;

	put_acked("base", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	for (int i = 0; i < NN; i++)
		if (i != l) {
			ck_assert_int_eq(qfs_net_set_link(NET, (uint32_t)l + 1, (uint32_t)i + 1, 0), 0);
			ck_assert_int_eq(qfs_net_set_link(NET, (uint32_t)i + 1, (uint32_t)l + 1, 0), 0);
		}
	t0 = qfs_clock_mono_ms();
	/* The other two elect a new leader and write while l is cut off; heal
	 * from a helper thread while l's proposal waits. */
	pthread_t th;
	struct heal_arg h = { l };
	ck_assert_int_eq(pthread_create(&th, NULL, heal_main, &h), 0);
	rc = propose(l, "lost", "v", 0, 6000, &result, NULL);
	pthread_join(th, NULL);
	ck_assert_msg(rc == -EAGAIN, "rc %d after %llu ms", rc,
		      (unsigned long long)(qfs_clock_mono_ms() - t0));
	ck_assert_int_eq(result, 99);
	l2 = find_leader(3000);
	ck_assert_int_ge(l2, 0);
	put_acked("final", "v");
	for (int i = 0; i < NN; i++) {
		wait_key(i, "final", "v");
		wait_key(i, "during", "v");
		ck_assert_int_eq(get_is(i, "lost", "v"), -ENOENT);
	}
	wait_equal(0, 1);
	wait_equal(0, 2);
}
END_TEST

/* Argument and open errors; the promise file holds the leader's ballot. */
START_TEST(t_errors)
{
	struct qfs_paxos_config bad = { .n = 2, .ids = { 7, 8 } };
	struct qfs_paxos_config dup = { .n = 3, .ids = { 1, 1, 2 } };
	struct qfs_rnode_opts o;
	struct qfs_rnode *x = (void *)0x1;
	char path[400], text[64];
	int l, result = 99;
	FILE *f;
	unsigned long long promised = 0;

	ck_assert_int_eq(qfs_rnode_group_create(RN[0], 0x401, &bad), -EINVAL);
	ck_assert_int_eq(qfs_rnode_group_create(RN[0], 0x401, &dup), -EINVAL);
	ck_assert_int_eq(qfs_rnode_propose(RN[0], 0x401, "x", 1, 100, &result, NULL), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_rnode_propose(RN[0], G, "x", 1, 100, NULL, NULL), -EINVAL);
	/* The same node id twice in one net. */
	memset(&o, 0, sizeof(o));
	snprintf(path, sizeof(path), "%s/other", tmpdir);
	o.dir = path;
	o.id = 1;
	o.net = NET;
	ck_assert_int_eq(qfs_rnode_open(&o, &x), -EEXIST);
	ck_assert_ptr_eq(x, (void *)0x1);
	o.net = NULL;
	ck_assert_int_eq(qfs_rnode_open(&o, &x), -EINVAL);
	/* The promise is on disk once a leader is elected. */
	put_acked("p", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	snprintf(path, sizeof(path), "%s/n%d/groups/0000000000000400.promise", tmpdir, l + 1);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(text, sizeof(text), f));
	fclose(f);
	ck_assert_int_eq(sscanf(text, "promised %llu", &promised), 1);
	ck_assert_uint_eq(qfs_paxos_ballot_node(promised), (uint32_t)l + 1);
	/* A corrupt members file stops that group's replica only (the node
	 * opens, the group is there, stopped, with the reason); a foreign
	 * FORMAT refuses to open. */
	node_stop(l);
	snprintf(path, sizeof(path), "%s/n%d/groups/0000000000000400", tmpdir, l + 1);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("members 1 x\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/n%d", tmpdir, l + 1);
	o.dir = path;
	o.id = (uint32_t)l + 1;
	o.net = NET;
	ck_assert_int_eq(qfs_rnode_open(&o, &x), 0);
	{
		struct qfs_rnode_ginfo gi;
		int res = 0;
		uint32_t hint = 0;

		ck_assert_int_eq(qfs_rnode_group_exists(x, 0x400), 1);
		ck_assert_int_eq(qfs_rnode_group_info(x, 0x400, &gi), 0);
		ck_assert_int_eq(gi.stopped, 1);
		ck_assert_int_eq(gi.err, QFS_ECORRUPT);
		ck_assert_int_eq(qfs_rnode_can_read_strong(x, 0x400), 0);
		ck_assert_int_eq(qfs_rnode_propose(x, 0x400, "", 0, 200, &res, &hint), QFS_ESTOPPED);
		qfs_rnode_close(x);
		x = (void *)0x1;
	}
	snprintf(path, sizeof(path), "%s/n%d/FORMAT", tmpdir, l + 1);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("quorumfs-node 1\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/n%d", tmpdir, l + 1);
	ck_assert_int_eq(qfs_rnode_open(&o, &x), QFS_EFORMAT);
	ck_assert_ptr_eq(x, (void *)0x1);
}
END_TEST

/* A store that lost what it applied (as after a crash: RocksDB's own WAL is
 * off) is rebuilt from the node's WAL once the leader tells it the commit
 * point again; nothing is applied at open on the node's own authority. */
START_TEST(t_store_behind)
{
	char name[32], path[400];
	int l, f;

	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "s%02d", k);
		put_acked(name, "v");
	}
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	f = (l + 1) % NN;
	wait_key(f, "s09", "v");
	node_stop(f);
	snprintf(path, sizeof(path), "%s/n%d/store", tmpdir, f + 1);
	ck_assert_int_eq(nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
	/* Alone, f cannot know what committed: it applies nothing. */
	node_stop(l);
	node_stop(3 - l - f);
	node_start(f, 0);
	usleep(500000);
	ck_assert_int_eq(get_is(f, "s00", "v"), -ENOENT);
	node_start(l, 0);
	node_start(3 - l - f, 0);
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "s%02d", k);
		wait_key(f, name, "v");
	}
	put_acked("s10", "v");
	wait_key(f, "s10", "v");
	wait_equal(f, l);
}
END_TEST

START_TEST(t_full_restart)
{
	char name[32];

	for (int k = 0; k < 15; k++) {
		snprintf(name, sizeof(name), "r%02d", k);
		put_acked(name, "kept");
	}
	for (int i = 0; i < NN; i++) {
		snprintf(name, sizeof(name), "r%02d", 14);
		wait_key(i, name, "kept");
	}
	for (int i = 0; i < NN; i++)
		node_stop(i);
	for (int i = 0; i < NN; i++)
		node_start(i, 0);
	/* Applied state survives close; nothing past it is applied at open. */
	for (int i = 0; i < NN; i++)
		for (int k = 0; k < 15; k++) {
			snprintf(name, sizeof(name), "r%02d", k);
			ck_assert_int_eq(get_is(i, name, "kept"), 0);
		}
	put_acked("after-restart", "v");
	for (int i = 0; i < NN; i++)
		wait_key(i, "after-restart", "v");
	wait_equal(0, 1);
	wait_equal(0, 2);
}
END_TEST

/* ------------------------------------------------ group drop, WAL hooks */

static const struct qfs_paxos_config CFG3 = { .n = 3, .ids = { 1, 2, 3 } };

/* Does node i's DIR/dir/<g 16hex>suffix exist? */
static int exists_path(int i, const char *dir, qfs_group_t g, const char *suffix)
{
	char path[400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/n%d/%s/%016" PRIx64 "%s", tmpdir, i + 1, dir, g, suffix);
	return stat(path, &sb) == 0;
}

/* Segment files in node i's WAL of g; -1 if the directory is missing. */
static int seg_count(int i, qfs_group_t g)
{
	char path[400];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/n%d/wal/%016" PRIx64, tmpdir, i + 1, g);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strlen(de->d_name) == 20 && strcmp(de->d_name + 16, ".wal") == 0;
	closedir(d);
	return n;
}

static int seg_exists(int i, qfs_group_t g, qfs_lsn_t first)
{
	char path[400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/n%d/wal/%016" PRIx64 "/%016" PRIx64 ".wal", tmpdir, i + 1, g,
		 first);
	return stat(path, &sb) == 0;
}

/* Wait up to 5 s until node i's log of G has more than n segments (a
 * segment sealed by age: the timer's pace follows the machine's load, so
 * the tests poll instead of sleeping a fixed time). */
static void wait_segs_above(int i, int n)
{
	uint64_t end = qfs_clock_mono_ms() + 5000;

	while (seg_count(i, G) <= n) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "node %d: still %d segments after 5 s", i + 1, n);
		usleep(5000);
	}
}

static void restart_all(uint64_t seal_ms)
{
	for (int i = 0; i < NN; i++)
		node_stop(i);
	SEAL_MS = seal_ms;
	for (int i = 0; i < NN; i++)
		node_start(i, 0);
}

struct waiter {
	int node;
	const char *name;
	uint32_t tmo;
	int rc, result;
	uint64_t ms;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = qfs_clock_mono_ms();

	w->result = 99;
	w->rc = propose(w->node, w->name, "v", 0, w->tmo, &w->result, NULL);
	w->ms = qfs_clock_mono_ms() - t0;
	return NULL;
}

static void cut(int l, int up)
{
	for (int i = 0; i < NN; i++)
		if (i != l) {
			ck_assert_int_eq(qfs_net_set_link(NET, (uint32_t)l + 1, (uint32_t)i + 1, up), 0);
			ck_assert_int_eq(qfs_net_set_link(NET, (uint32_t)i + 1, (uint32_t)l + 1, up), 0);
		}
}

/* A drop on all three while the leader's proposer waits (its entry cannot
 * commit: the leader is cut off) fails it with QFS_ENOGROUP at once; every
 * file of the group goes; the id can be created again, empty, and used. */
START_TEST(t_drop_waiting)
{
	struct qfs_rnode_ginfo gi;
	struct waiter w;
	pthread_t th;
	int l, result = 99;

	for (int k = 0; k < 5; k++) {
		char name[16];

		snprintf(name, sizeof(name), "d%d", k);
		put_acked(name, "old");
	}
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	cut(l, 0);
	w = (struct waiter){ .node = l, .name = "stuck", .tmo = 20000 };
	ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
	usleep(100000);
	for (int i = 0; i < NN; i++)
		ck_assert_int_eq(qfs_rnode_group_drop(RN[(l + i) % NN], G), 0);
	pthread_join(th, NULL);
	ck_assert_msg(w.rc == QFS_ENOGROUP, "rc %d", w.rc);
	ck_assert_int_eq(w.result, 99);
	ck_assert_msg(w.ms < 3000, "waited %llu ms", (unsigned long long)w.ms);
	cut(l, 1);
	for (int i = 0; i < NN; i++) {
		memset(&gi, 0x5a, sizeof(gi));
		ck_assert_int_eq(qfs_rnode_group_exists(RN[i], G), 0);
		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi), QFS_ENOGROUP);
		ck_assert_uint_eq(gi.last, 0x5a5a5a5a5a5a5a5aull);
		ck_assert_int_eq(qfs_rnode_group_drop(RN[i], G), QFS_ENOGROUP);
		ck_assert_int_eq(get_is(i, "d0", "old"), QFS_ENOGROUP);
		ck_assert_int_eq(propose(i, "x", "v", 0, 500, &result, NULL), QFS_ENOGROUP);
		ck_assert_int_eq(qfs_rnode_leader(RN[i], G), 0);
		ck_assert(!exists_path(i, "wal", G, ""));
		ck_assert(!exists_path(i, "groups", G, ""));
		ck_assert(!exists_path(i, "groups", G, ".promise"));
	}
	/* Frames of the old incarnation still queued are dropped meanwhile. */
	usleep(100000);
	for (int i = 0; i < NN; i++)
		ck_assert_int_eq(qfs_rnode_group_create(RN[i], G, &CFG3), 0);
	put_acked("new", "v");
	for (int i = 0; i < NN; i++) {
		wait_key(i, "new", "v");
		ck_assert_int_eq(get_is(i, "d0", "old"), -ENOENT);
		ck_assert_int_eq(get_is(i, "stuck", "v"), -ENOENT);
	}
	/* The new incarnation survives a restart; nothing of the old comes back. */
	restart_all(0);
	put_acked("new2", "v");
	for (int i = 0; i < NN; i++) {
		wait_key(i, "new2", "v");
		ck_assert_int_eq(get_is(i, "d1", "old"), -ENOENT);
	}
	wait_equal(0, 1);
	wait_equal(0, 2);
}
END_TEST

/* A crash right after a drop removed the members file (the first step):
 * the next open finishes the drop (WAL, promise, store items). */
START_TEST(t_drop_crash)
{
	char path[400];
	int f;

	put_acked("c0", "old");
	f = find_leader(3000);
	ck_assert_int_ge(f, 0);
	f = (f + 1) % NN;
	wait_key(f, "c0", "old");
	for (int i = 0; i < NN; i++)
		if (i != f)
			ck_assert_int_eq(qfs_rnode_group_drop(RN[i], G), 0);
	node_stop(f);
	snprintf(path, sizeof(path), "%s/n%d/groups/%016" PRIx64, tmpdir, f + 1, (qfs_group_t)G);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert(exists_path(f, "wal", G, ""));
	node_start(f, 0);
	ck_assert_int_eq(qfs_rnode_group_exists(RN[f], G), 0);
	ck_assert(!exists_path(f, "wal", G, ""));
	ck_assert(!exists_path(f, "groups", G, ".promise"));
	usleep(100000);
	for (int i = 0; i < NN; i++)
		ck_assert_int_eq(qfs_rnode_group_create(RN[i], G, &CFG3), 0);
	/* Its store items went too: the new incarnation starts empty there. */
	ck_assert_int_eq(get_is(f, "c0", "old"), -ENOENT);
	put_acked("c1", "new");
	for (int i = 0; i < NN; i++) {
		wait_key(i, "c1", "new");
		ck_assert_int_eq(get_is(i, "c0", "old"), -ENOENT);
	}
}
END_TEST

#define G2 0x401ull

struct reader {
	int stop;            /* atomic */
	uint64_t reads, g2_ok, bad;
};

static int count_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		    void *arg)
{
	(void)key, (void)key_len, (void)val, (void)val_len;
	(*(int *)arg)++;
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, "k0", 2);

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		for (int i = 0; i < NN; i++) {
			struct qfs_rnode_ginfo gi;
			struct qfs_buf st;
			char dir[300];
			qfs_lsn_t a;
			void *val;
			size_t vlen;
			int rc, n = 0;

			rc = qfs_rnode_get(RN[i], G, key, klen, &val, &vlen);
			if (rc == 0)
				free(val);
			r->bad += rc != 0 && rc != -ENOENT && rc != QFS_ENOGROUP;
			rc = qfs_rnode_scan(RN[i], G, NULL, 0, NULL, 0, count_cb, &n);
			r->bad += rc != 0 && rc != QFS_ENOGROUP;
			rc = qfs_rnode_snapshot_scan(RN[i], G, &a, count_cb, &n);
			r->bad += rc != 0 && rc != QFS_ENOGROUP;
			rc = qfs_rnode_wal_info(RN[i], G, dir, sizeof(dir), &a);
			r->bad += rc != 0 && rc != QFS_ENOGROUP;
			rc = qfs_rnode_group_info(RN[i], G, &gi);
			r->bad += rc != 0 && rc != QFS_ENOGROUP;
			(void)qfs_rnode_can_read_strong(RN[i], G);
			(void)qfs_rnode_leader(RN[i], G);
			(void)qfs_rnode_group_exists(RN[i], G);
			qfs_buf_init(&st);
			qfs_rnode_status(RN[i], &st);
			qfs_buf_close(&st);
			/* The other group is never disturbed. */
			rc = qfs_rnode_scan(RN[i], G2, NULL, 0, NULL, 0, count_cb, &n);
			r->g2_ok += rc == 0;
			r->bad += rc != 0;
			r->reads++;
		}
		usleep(500); /* leave the two cores to the I/O threads too */
	}
	return NULL;
}

/* Drops and re-creates of G on all three while two threads read G and G2
 * on every node (run under ASan: a use after free shows there). */
START_TEST(t_drop_concurrent)
{
	struct reader r[2];
	pthread_t th[2];

	for (int i = 0; i < NN; i++)
		ck_assert_int_eq(qfs_rnode_group_create(RN[i], G2, &CFG3), 0);
	put_acked_g(G2, "g2", "v");
	put_acked("k0", "v");
	memset(r, 0, sizeof(r));
	for (int t = 0; t < 2; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, reader_main, &r[t]), 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < NN; i++)
			ck_assert_int_eq(qfs_rnode_group_drop(RN[i], G), 0);
		usleep(50000);
		for (int i = 0; i < NN; i++)
			ck_assert_int_eq(qfs_rnode_group_create(RN[i], G, &CFG3), 0);
		put_acked("k0", "v");
	}
	put_acked_g(G2, "g2b", "v");
	for (int t = 0; t < 2; t++) {
		__atomic_store_n(&r[t].stop, 1, __ATOMIC_RELAXED);
		pthread_join(th[t], NULL);
		ck_assert_uint_eq(r[t].bad, 0);
		ck_assert_uint_gt(r[t].reads, 10);
		ck_assert_uint_eq(r[t].g2_ok, r[t].reads);
	}
	for (int i = 0; i < NN; i++) {
		wait_key(i, "k0", "v");
		ck_assert_int_eq(get_is_g(i, G2, "g2b", "v") == 0 || get_is_g(i, G2, "g2", "v") == 0, 1);
	}
	fprintf(stderr, "check_rnode: 3 drop/create rounds during %llu reads\n",
		(unsigned long long)(r[0].reads + r[1].reads));
}
END_TEST

struct idlist {
	qfs_group_t ids[8];
	int n;
};

static void ids_cb(qfs_group_t g, void *arg)
{
	struct idlist *l = arg;

	if (l->n < 8)
		l->ids[l->n++] = g;
}

/* exists, groups (ascending) and the info fields on leader and followers. */
START_TEST(t_info)
{
	struct qfs_rnode_ginfo gi;
	struct idlist ids = { .n = 0 };
	int l, f;
	uint64_t end;

	/* Created after G but with a lower id: groups() sorts. */
	for (int i = 0; i < NN; i++)
		ck_assert_int_eq(qfs_rnode_group_create(RN[i], 0x3ff, &CFG3), 0);
	for (int k = 0; k < 10; k++) {
		char name[16];

		snprintf(name, sizeof(name), "i%d", k);
		l = put_acked(name, "v");
	}
	ck_assert_int_eq(qfs_rnode_group_exists(RN[l], G), 1);
	ck_assert_int_eq(qfs_rnode_group_exists(RN[l], 0x3ff), 1);
	ck_assert_int_eq(qfs_rnode_group_exists(RN[l], 0x999), 0);
	qfs_rnode_groups(RN[l], ids_cb, &ids);
	ck_assert_int_eq(ids.n, 2);
	ck_assert_uint_eq(ids.ids[0], 0x3ff);
	ck_assert_uint_eq(ids.ids[1], G);
	end = qfs_clock_mono_ms() + 3000;
	for (;;) { /* between two steps commit may be ahead of applied */
		ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
		if (gi.applied == gi.commit && gi.commit == gi.last)
			break;
		ck_assert(qfs_clock_mono_ms() < end);
		usleep(5000);
	}
	ck_assert_int_eq(gi.stopped, 0);
	ck_assert_int_eq(gi.role, QFS_PAXOS_LEADER);
	ck_assert_uint_eq(gi.leader, (uint32_t)l + 1);
	ck_assert_uint_eq(qfs_paxos_ballot_node(gi.ballot), (uint32_t)l + 1);
	ck_assert_uint_ge(gi.last, 10);
	ck_assert_uint_eq(gi.durable, gi.last);
	ck_assert_uint_eq(gi.applied, gi.commit);
	ck_assert_uint_ge(gi.applied, 10);
	ck_assert_uint_eq(gi.first, 1);
	ck_assert_uint_gt(gi.wal_bytes, 10 * 20);
	f = (l + 1) % NN;
	end = qfs_clock_mono_ms() + 3000;
	for (;;) {
		struct qfs_rnode_ginfo fi;

		ck_assert_int_eq(qfs_rnode_group_info(RN[f], G, &fi), 0);
		/* a follower that missed heartbeats on a loaded machine knows
		 * no leader for a moment (leader 0): wait for it, up to end */
		if (fi.leader != 0) {
			ck_assert_int_eq(fi.role, QFS_PAXOS_FOLLOWER);
			ck_assert_uint_eq(fi.leader, (uint32_t)l + 1);
		}
		if (fi.leader != 0 && fi.applied == gi.applied && fi.last == gi.last) {
			ck_assert_uint_eq(fi.ballot, gi.ballot);
			ck_assert_uint_eq(fi.first, 1);
			break;
		}
		ck_assert(qfs_clock_mono_ms() < end);
		usleep(10000);
	}
}
END_TEST

static int seals; /* atomic */

static void seal_hook(qfs_group_t g, void *arg)
{
	ck_assert_uint_eq(g, G);
	ck_assert_ptr_eq(arg, &seals);
	__atomic_fetch_add(&seals, 1, __ATOMIC_RELAXED);
}

/* With a 100 ms seal age the open segment is sealed after each burst of
 * writes (the hook runs); with the default age nothing is sealed. */
START_TEST(t_seal_age)
{
	qfs_lsn_t last[NN];
	int n0[NN], n1[NN], l;

	l = put_acked("s0", "v");
	usleep(300000);
	ck_assert_int_eq(seg_count(l, G), 1); /* default age: 60 s */
	restart_all(100);
	for (int i = 0; i < NN; i++) {
		qfs_rnode_set_seal_hook(RN[i], seal_hook, &seals);
		n0[i] = seg_count(i, G);
		ck_assert_int_ge(n0[i], 1);
	}
	for (int burst = 0; burst < 3; burst++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", burst + 1);
		n1[0] = seg_count(0, G);
		n1[1] = seg_count(1, G);
		n1[2] = seg_count(2, G);
		put_acked(name, "v");
		for (int i = 0; i < NN; i++) /* sealed 100 ms after the burst */
			wait_segs_above(i, n1[i]);
	}
	for (int i = 0; i < NN; i++) {
		struct qfs_rnode_ginfo gi;

		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi), 0);
		last[i] = gi.last;
		n1[i] = seg_count(i, G);
		ck_assert_msg(n1[i] >= n0[i] + 3, "node %d: %d -> %d segments", i + 1, n0[i], n1[i]);
	}
	/* the hook runs right after the new segment appears: poll for it
	 * too.  Only a seal by age runs it; under load a leader change may
	 * seal a tail through the truncate path instead (no hook), so at
	 * least one seal by age per burst is what is certain. */
	for (uint64_t end = qfs_clock_mono_ms() + 5000;
	     __atomic_load_n(&seals, __ATOMIC_RELAXED) < 3 * NN && qfs_clock_mono_ms() < end;)
		usleep(5000);
	ck_assert_int_ge(__atomic_load_n(&seals, __ATOMIC_RELAXED), 3);
	for (int i = 0; i < NN; i++)
		qfs_rnode_set_seal_hook(RN[i], NULL, NULL);
	/* Quiet: no records, no more seals.  A leadership handover to the
	 * preferred member (doc/paxos.md section 6: 500 ms after a restart
	 * that another member won, with these timers) appends a NOOP that is
	 * rightly sealed by age.  Each node's point is taken once its open
	 * segment holds no record (a segment starting right after its last
	 * LSN exists: a seal makes it), waited for (10 s at most), not
	 * assumed after a fixed 150 ms: a NOOP appended up to 100 ms before
	 * the counts above was sealed after them, with its LSN already in
	 * last[], and failed the count below (as did a seal late on a loaded
	 * machine). */
	for (int i = 0; i < NN; i++) {
		uint64_t end = qfs_clock_mono_ms() + 10000;

		for (;;) {
			struct qfs_rnode_ginfo gi, gj;
			int n = seg_count(i, G), sealed;

			ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi), 0);
			sealed = seg_exists(i, G, gi.last + 1);
			ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gj), 0);
			if (sealed && gj.last == gi.last && seg_count(i, G) == n) {
				if (gi.last != last[i])
					fprintf(stderr, "check_rnode: t_seal_age: node %d logged %llu -> %llu "
						"after the bursts (a leader change)\n", i + 1,
						(unsigned long long)last[i], (unsigned long long)gi.last);
				last[i] = gi.last;
				n1[i] = n;
				break;
			}
			ck_assert_msg(qfs_clock_mono_ms() < end, "node %d: records at %llu never sealed",
				      i + 1, (unsigned long long)gi.last);
			usleep(5000);
		}
	}
	usleep(300000);
	for (int i = 0; i < NN; i++) {
		struct qfs_rnode_ginfo gi;

		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi), 0);
		if (gi.last == last[i])
			ck_assert_int_eq(seg_count(i, G), n1[i]);
	}
	fprintf(stderr, "check_rnode: seal age 100 ms: segments %d -> %d on node 1\n", n0[0], n1[0]);
}
END_TEST

static int items_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		    void *arg)
{
	(void)key, (void)key_len;
	ck_assert(val_len == 1 && val[0] == 'v');
	(*(int *)arg)++;
	return 0;
}

struct writer {
	int from, n;
	int done; /* atomic */
	const int *rounds; /* atomic; the last put waits (30 s at most) until */
	int min_rounds;    /* *rounds reaches min_rounds */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	for (int k = w->from; k < w->from + w->n; k++) {
		char name[16];

		/* the releases counted as "while the leader writes" happen
		 * before the writer is done, whatever the two threads' pace on
		 * a loaded machine (30 quick puts once ended within 2 rounds) */
		for (uint64_t end = qfs_clock_mono_ms() + 30000;
		     k == w->from + w->n - 1 && w->rounds &&
		     __atomic_load_n(w->rounds, __ATOMIC_ACQUIRE) < w->min_rounds && qfs_clock_mono_ms() < end;)
			usleep(1000);
		snprintf(name, sizeof(name), "w%02d", k);
		put_acked(name, "v");
		usleep(5000);
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Segments sealed by age and released below the applied point are gone,
 * the machine still works (a follower down meanwhile catches up from the
 * retained log), and the hooks report the WAL directory and applied LSN. */
START_TEST(t_wal_release)
{
	struct qfs_rnode_ginfo gi[NN];
	char dir[400], want[400], name[16];
	int before[NN], segs[NN], l, f, items = 0;
	qfs_lsn_t applied, snap_applied, rel;

	restart_all(50);
	/* Count from a log that holds a record on every node (the new
	 * leader's barrier): a node that had none at the restart (setup's
	 * election need not have reached it) gets its first segment from an
	 * append, not a seal, so its first wait passed without one and it
	 * could end a segment short, depending on when its seals ran against
	 * the other nodes' (5 runs in 120 with main's code, 8 in 120 with this
	 * branch's: node 3 ended with 3). */
	for (int i = 0; i < NN; i++)
		wait_segs_above(i, 0);
	for (int i = 0; i < NN; i++)
		segs[i] = seg_count(i, G);
	for (int k = 0; k < 30; k++) {
		snprintf(name, sizeof(name), "w%02d", k);
		put_acked(name, "v");
		if (k % 10 == 9) { /* let the segment age out on every node */
			for (int i = 0; i < NN; i++)
				wait_key(i, name, "v");
			for (int i = 0; i < NN; i++)
				wait_segs_above(i, segs[i]);
			for (int i = 0; i < NN; i++)
				segs[i] = seg_count(i, G);
		}
	}
	for (int i = 0; i < NN; i++)
		wait_key(i, "w29", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	/* wal_info and snapshot_scan. */
	ck_assert_int_eq(qfs_rnode_wal_info(RN[l], G, dir, sizeof(dir), &applied), 0);
	snprintf(want, sizeof(want), "%s/n%d/wal/%016" PRIx64, tmpdir, l + 1, (qfs_group_t)G);
	ck_assert_str_eq(dir, want);
	ck_assert_int_eq(qfs_rnode_wal_info(RN[l], G, dir, 5, &applied), -ENAMETOOLONG);
	ck_assert_int_eq(qfs_rnode_wal_info(RN[l], 0x999, dir, sizeof(dir), &applied), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_rnode_snapshot_scan(RN[l], G, &snap_applied, items_cb, &items), 0);
	ck_assert_int_eq(items, 30);
	ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi[l]), 0);
	ck_assert_uint_eq(snap_applied, gi[l].applied);
	ck_assert_uint_ge(applied, 30);
	ck_assert_int_eq(qfs_rnode_wal_release(RN[l], 0x999, 5), QFS_ENOGROUP);
	/* Release up to what every member applied. */
	rel = UINT64_MAX;
	for (int i = 0; i < NN; i++) {
		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi[i]), 0);
		if (gi[i].applied + 1 < rel)
			rel = gi[i].applied + 1;
		before[i] = seg_count(i, G);
		ck_assert_msg(before[i] >= 4, "node %d has %d segments", i + 1, before[i]);
		ck_assert_uint_eq(gi[i].first, 1);
	}
	for (int i = 0; i < NN; i++) {
		struct qfs_rnode_ginfo x;

		ck_assert_int_eq(qfs_rnode_wal_release(RN[i], G, rel), 0);
		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &x), 0);
		ck_assert_msg(seg_count(i, G) < before[i], "node %d: %d segments", i + 1, seg_count(i, G));
		ck_assert_uint_gt(x.first, 1);
		ck_assert_uint_le(x.first, rel);
		ck_assert_uint_lt(x.wal_bytes, gi[i].wal_bytes);
		ck_assert(!seg_exists(i, G, 1));
		ck_assert(seg_exists(i, G, x.first));
	}
	/* A release past the applied point keeps every unapplied record. */
	ck_assert_int_eq(qfs_rnode_wal_release(RN[l], G, UINT64_MAX), 0);
	ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi[l]), 0);
	ck_assert_uint_le(gi[l].first, gi[l].applied + 1);
	/* Releases while the leader writes (and segments keep aging out). */
	{
		int releases = 0; /* atomic: read by the writer */
		struct writer wr = { .from = 100, .n = 30, .rounds = &releases, .min_rounds = 4 };
		qfs_lsn_t first0[NN];
		pthread_t th;

		for (int i = 0; i < NN; i++) {
			ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi[i]), 0);
			first0[i] = gi[i].first;
		}

		ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &wr), 0);
		while (!__atomic_load_n(&wr.done, __ATOMIC_ACQUIRE)) {
			rel = UINT64_MAX;
			for (int i = 0; i < NN; i++) {
				ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi[i]), 0);
				if (gi[i].applied + 1 < rel)
					rel = gi[i].applied + 1;
			}
			for (int i = 0; i < NN; i++)
				ck_assert_int_eq(qfs_rnode_wal_release(RN[i], G, rel), 0);
			__atomic_add_fetch(&releases, 1, __ATOMIC_RELEASE);
			usleep(20000);
		}
		pthread_join(th, NULL);
		ck_assert_int_gt(releases, 3);
		/* One last release once all applied everything. */
		for (int i = 0; i < NN; i++)
			wait_key(i, "w129", "v");
		rel = UINT64_MAX;
		for (int i = 0; i < NN; i++) {
			ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi[i]), 0);
			if (gi[i].applied + 1 < rel)
				rel = gi[i].applied + 1;
		}
		for (int i = 0; i < NN; i++) {
			ck_assert_int_eq(qfs_rnode_wal_release(RN[i], G, rel), 0);
			ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi[i]), 0);
			ck_assert_msg(gi[i].first > first0[i], "node %d first %llu -> %llu", i + 1,
				      (unsigned long long)first0[i], (unsigned long long)gi[i].first);
		}
	}
	/* A follower down while the leader writes catches up from the log. */
	f = (l + 1) % NN;
	node_stop(f);
	for (int k = 30; k < 40; k++) {
		snprintf(name, sizeof(name), "w%02d", k);
		put_acked(name, "v");
	}
	node_start(f, 0);
	for (int k = 0; k < 40; k++) {
		snprintf(name, sizeof(name), "w%02d", k);
		wait_key(f, name, "v");
	}
	put_acked("w40", "v");
	for (int i = 0; i < NN; i++) {
		wait_key(i, "w40", "v");
		wait_key(i, "w129", "v");
	}
	wait_equal(0, 1);
	wait_equal(0, 2);
	/* And everyone restarts on the released logs. */
	restart_all(50);
	put_acked("w41", "v");
	for (int i = 0; i < NN; i++)
		wait_key(i, "w41", "v");
}
END_TEST

/* A cut-off leader appends an entry, seals it by age, appends another into
 * the new segment; the new leader's log replaces both, which deletes that
 * segment and makes the sealed one the tail again: the driver seals again,
 * so the new entries start a segment of their own (an archived segment
 * never grows). */
START_TEST(t_truncate_sealed)
{
	struct qfs_rnode_ginfo gi;
	struct waiter w1, w2;
	struct heal_arg h;
	pthread_t t1, t2, th;
	qfs_lsn_t c;
	uint64_t end;
	int l;

	restart_all(50);
	put_acked("base", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	end = qfs_clock_mono_ms() + 3000;
	for (;;) {
		ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
		if (gi.applied == gi.last)
			break;
		ck_assert(qfs_clock_mono_ms() < end);
		usleep(5000);
	}
	c = gi.last;
	cut(l, 0);
	w1 = (struct waiter){ .node = l, .name = "lost1", .tmo = 6000 };
	w2 = (struct waiter){ .node = l, .name = "lost2", .tmo = 6000 };
	ck_assert_int_eq(pthread_create(&t1, NULL, waiter_main, &w1), 0);
	/* lost1 at c+1 is sealed by age: a segment at c+2 (polled: the
	 * timer's pace follows the machine's load) */
	end = qfs_clock_mono_ms() + 3000;
	while (!seg_exists(l, G, c + 2)) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "no segment at c+2 after 3 s");
		usleep(5000);
	}
	ck_assert_int_eq(pthread_create(&t2, NULL, waiter_main, &w2), 0);
	end = qfs_clock_mono_ms() + 3000;
	for (;;) {
		ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
		if (gi.last >= c + 2)
			break;
		ck_assert_msg(qfs_clock_mono_ms() < end, "lost2 not appended after 3 s");
		usleep(5000);
	}
	ck_assert_uint_eq(gi.last, c + 2);
	h.l = l;
	ck_assert_int_eq(pthread_create(&th, NULL, heal_main, &h), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_join(th, NULL);
	ck_assert_msg(w1.rc == -EAGAIN && w2.rc == -EAGAIN, "rc %d %d", w1.rc, w2.rc);
	put_acked("final", "v");
	for (int i = 0; i < NN; i++)
		wait_key(i, "final", "v");
	ck_assert_int_eq(get_is(l, "lost1", "v"), -ENOENT);
	ck_assert_int_eq(get_is(l, "lost2", "v"), -ENOENT);
	/* Truncated back to c, then resealed: the new entries begin at c+1. */
	ck_assert_msg(seg_exists(l, G, c + 1), "no segment at %llu", (unsigned long long)c + 1);
	wait_equal(l, (l + 1) % NN);
}
END_TEST

/* Open a snapshot frame as rnode does: the net header, then the body. */
static int snap_open(const uint8_t *buf, size_t len, struct qfs_snap_chunk *d)
{
	const uint8_t *body;
	size_t blen;
	uint8_t type;
	int rc = qfs_net_frame_open(buf, len, &type, &body, &blen);

	if (rc)
		return rc;
	if (type != QFS_SNAP_FRAME_TYPE)
		return QFS_ECORRUPT;
	return qfs_snap_decode(body, blen, d);
}

/* The snapshot frame codec: round trip of a chunk with items and of a last
 * chunk; every bit flip and every truncation rejected; another body version
 * (CRC resealed) is QFS_EFORMAT. */
START_TEST(t_snap_codec)
{
	struct qfs_snap_chunk c = { .from = 1, .to = 3, .group = G, .xfer = 77, .seq = 2 }, d;
	const uint8_t *k, *v;
	size_t pos = 0, kl, vl, len;
	struct qfs_buf b;
	uint8_t *copy;

	qfs_buf_init(&b);
	qfs_snap_start(&b);
	qfs_snap_add(&b, (const uint8_t *)"k1", 2, (const uint8_t *)"val1", 4);
	qfs_snap_add(&b, (const uint8_t *)"k2", 2, (const uint8_t *)"", 0);
	c.n = 2;
	c.lsn = 9; /* ignored: not the last chunk */
	ck_assert_int_eq(qfs_snap_finish(&b, &c), 0);
	ck_assert_uint_eq(b.data[5], QFS_SNAP_FRAME_TYPE);
	ck_assert_int_eq(snap_open(b.data, b.len, &d), 0);
	ck_assert(d.from == 1 && d.to == 3 && d.group == G && d.xfer == 77 && d.seq == 2 &&
		  d.n == 2 && !d.last && d.lsn == 0);
	ck_assert(qfs_snap_next(&d, &pos, &k, &kl, &v, &vl) && kl == 2 && !memcmp(k, "k1", 2) &&
		  vl == 4 && !memcmp(v, "val1", 4));
	ck_assert(qfs_snap_next(&d, &pos, &k, &kl, &v, &vl) && kl == 2 && vl == 0);
	ck_assert(!qfs_snap_next(&d, &pos, &k, &kl, &v, &vl));
	len = b.len;
	copy = malloc(len + 1);
	ck_assert_ptr_nonnull(copy);
	for (size_t i = 0; i < len * 8; i++) {
		memcpy(copy, b.data, len);
		copy[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_int_ne(snap_open(copy, len, &d), 0);
	}
	memcpy(copy, b.data, len);
	for (size_t n = 0; n < len; n++) {
		ck_assert_int_eq(snap_open(copy, n, &d), QFS_ECORRUPT);
		if (n >= QFS_NET_FRAME_HDR) /* the body decoder alone too */
			ck_assert_int_eq(qfs_snap_decode(copy + QFS_NET_FRAME_HDR,
							 n - QFS_NET_FRAME_HDR, &d), QFS_ECORRUPT);
	}
	copy[len] = 0;
	ck_assert_int_eq(snap_open(copy, len + 1, &d), QFS_ECORRUPT);
	/* Another body version, frame resealed. */
	copy[QFS_NET_FRAME_HDR + 4] = 2;
	qfs_net_frame_seal(copy, QFS_SNAP_FRAME_TYPE, len - QFS_NET_FRAME_HDR);
	ck_assert_int_eq(snap_open(copy, len, &d), QFS_EFORMAT);
	/* The last chunk carries the snapshot point. */
	qfs_snap_start(&b);
	c = (struct qfs_snap_chunk){ .from = 2, .to = 1, .group = G, .xfer = 5, .seq = 0, .last = 1,
				     .lsn = 1234, .ballot = QFS_PAXOS_BALLOT(7, 2), .total = 0 };
	ck_assert_int_eq(qfs_snap_finish(&b, &c), 0);
	ck_assert_int_eq(snap_open(b.data, b.len, &d), 0);
	ck_assert(d.last && d.lsn == 1234 && d.ballot == QFS_PAXOS_BALLOT(7, 2) && d.n == 0);
	ck_assert(!d.ack);
	/* An ACK: no items, never with LAST. */
	qfs_snap_start(&b);
	c = (struct qfs_snap_chunk){ .from = 3, .to = 1, .group = G, .xfer = 5, .seq = 9, .ack = 1 };
	ck_assert_int_eq(qfs_snap_finish(&b, &c), 0);
	ck_assert_int_eq(snap_open(b.data, b.len, &d), 0);
	ck_assert(d.ack && !d.last && d.seq == 9 && d.xfer == 5 && d.from == 3 && d.n == 0);
	qfs_snap_start(&b);
	qfs_snap_add(&b, (const uint8_t *)"k1", 2, (const uint8_t *)"v", 1);
	c.n = 1;
	ck_assert_int_eq(qfs_snap_finish(&b, &c), 0);
	ck_assert_int_eq(snap_open(b.data, b.len, &d), QFS_ECORRUPT);
	qfs_snap_start(&b);
	c = (struct qfs_snap_chunk){ .from = 3, .to = 1, .group = G, .xfer = 5, .seq = 9, .ack = 1,
				     .last = 1, .lsn = 1 };
	ck_assert_int_eq(qfs_snap_finish(&b, &c), 0);
	ck_assert_int_eq(snap_open(b.data, b.len, &d), QFS_ECORRUPT);
	free(copy);
	qfs_buf_close(&b);
}
END_TEST

static int store_eq_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		       void *arg)
{
	int *n = arg;

	ck_assert(key_len == 2 && key[0] == 'n' && val_len == 1 && val[0] == key[1]);
	(*n)++;
	return 0;
}

/* qfs_store_install on a store that holds a group: abort changes nothing;
 * commit replaces every item, the applied LSN and the snapshot point, and
 * leaves other groups alone; drop removes the snapshot point too. */
START_TEST(t_store_install)
{
	char dir[300];
	struct qfs_store *st;
	struct qfs_store_install *in;
	qfs_lsn_t lsn;
	uint64_t ballot;
	void *val;
	size_t vl;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/st", tmpdir);
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
	ck_assert_int_eq(qfs_store_load_item(st, 7, (const uint8_t *)"old", 3,
					     (const uint8_t *)"x", 1), 0);
	ck_assert_int_eq(qfs_store_load_item(st, 8, (const uint8_t *)"g8", 2,
					     (const uint8_t *)"y", 1), 0);
	ck_assert_int_eq(qfs_store_load_applied(st, 7, 3), 0);
	ck_assert_int_eq(qfs_store_install_begin(st, 7, &in), 0);
	ck_assert_int_eq(qfs_store_install_item(in, (const uint8_t *)"na", 2,
						(const uint8_t *)"a", 1), 0);
	qfs_store_install_abort(in);
	ck_assert_int_eq(qfs_store_get(st, 7, (const uint8_t *)"old", 3, &val, &vl), 0);
	free(val);
	ck_assert_int_eq(qfs_store_snap_point(st, 7, &lsn, &ballot), 0);
	ck_assert(lsn == 0 && ballot == 0);
	ck_assert_int_eq(qfs_store_install_begin(st, 7, &in), 0);
	for (char c = 'a'; c <= 'e'; c++) {
		uint8_t k[2] = { 'n', (uint8_t)c };

		ck_assert_int_eq(qfs_store_install_item(in, k, 2, k + 1, 1), 0);
	}
	ck_assert_int_eq(qfs_store_install_commit(in, 40, 99), 0);
	ck_assert_int_eq(qfs_store_get(st, 7, (const uint8_t *)"old", 3, &val, &vl), -ENOENT);
	ck_assert_int_eq(qfs_store_scan(st, 7, NULL, 0, NULL, 0, store_eq_cb, &n), 0);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(qfs_store_applied(st, 7, &lsn), 0);
	ck_assert_uint_eq(lsn, 40);
	ck_assert_int_eq(qfs_store_snap_point(st, 7, &lsn, &ballot), 0);
	ck_assert(lsn == 40 && ballot == 99);
	ck_assert_int_eq(qfs_store_get(st, 8, (const uint8_t *)"g8", 2, &val, &vl), 0);
	free(val);
	/* Durable: reopen. */
	qfs_store_close(st);
	ck_assert_int_eq(qfs_store_open(dir, &st), 0);
	n = 0;
	ck_assert_int_eq(qfs_store_scan(st, 7, NULL, 0, NULL, 0, store_eq_cb, &n), 0);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(qfs_store_drop_group(st, 7), 0);
	ck_assert_int_eq(qfs_store_snap_point(st, 7, &lsn, &ballot), 0);
	ck_assert(lsn == 0 && ballot == 0);
	qfs_store_close(st);
}
END_TEST

/* Wait until node i applied as far as the leader l (nothing being written). */
static void wait_applied_eq(int i, int l)
{
	struct qfs_rnode_ginfo a, b;
	uint64_t end = qfs_clock_mono_ms() + 8000;

	for (;;) {
		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &a), 0);
		ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &b), 0);
		if (a.applied == b.applied && a.applied == b.commit)
			return;
		ck_assert_msg(qfs_clock_mono_ms() < end, "node %d applied %llu, leader %llu", i + 1,
			      (unsigned long long)a.applied, (unsigned long long)b.applied);
		usleep(10000);
	}
}

/* Write n items "<prefix>NNN" of 3 KiB each through the leader (sealing by
 * age between bursts), then release the logs of the running nodes up to
 * what both applied. */
static void write_release(const char *prefix, int n, int down)
{
	static char val[3001];
	struct qfs_rnode_ginfo gi;
	char name[32];
	qfs_lsn_t rel = UINT64_MAX;

	for (int k = 0; k < n; k++) {
		memset(val, 'a' + k % 26, 3000);
		snprintf(name, sizeof(name), "%s%03d", prefix, k);
		put_acked(name, val);
		if (k % 40 == 39)
			usleep(80000); /* the segment ages out and is sealed */
	}
	usleep(80000);
	for (int i = 0; i < NN; i++) {
		if (i == down)
			continue;
		snprintf(name, sizeof(name), "%s%03d", prefix, n - 1);
		wait_key(i, name, val);
		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, &gi), 0);
		if (gi.applied + 1 < rel)
			rel = gi.applied + 1;
	}
	for (int i = 0; i < NN; i++)
		if (i != down)
			ck_assert_int_eq(qfs_rnode_wal_release(RN[i], G, rel), 0);
}

/* Copy (or restore) node 3's WAL of G. */
static void wal_copy(const char *from, const char *to)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s' && cp -a '%s/%s' '%s/%s'", tmpdir, to, tmpdir, from,
		 tmpdir, to);
	ck_assert_int_eq(system(cmd), 0);
}

/* Node 3 is down while the others write ~1 MiB and release their logs past
 * its applied LSN: the leader must ship a snapshot (several chunks).  Node
 * 3 installs it (its log restarts after the snapshot), equals the leader by
 * scan and applied LSN, takes new entries, and survives restarts: right
 * after the install (empty log), and with its pre-snapshot WAL put back
 * (a crash between the store's flush and the WAL reset).  Then a node whose
 * directory was wiped catches up by snapshot too. */
START_TEST(t_snapshot)
{
	struct qfs_rnode_ginfo gi, gl;
	char walg[64], name[32];
	qfs_lsn_t old;
	int l;

	restart_all(50);
	for (int k = 0; k < 5; k++) {
		snprintf(name, sizeof(name), "a%02d", k);
		put_acked(name, "v");
	}
	wait_key(2, "a04", "v");
	ck_assert_int_eq(qfs_rnode_group_info(RN[2], G, &gi), 0);
	old = gi.applied;
	node_stop(2);
	snprintf(walg, sizeof(walg), "n3/wal/%016" PRIx64, (qfs_group_t)G);
	wal_copy(walg, "n3-wal-old");
	write_release("s", 300, 2);
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gl), 0);
	ck_assert_msg(gl.first > old + 1, "leader first %llu", (unsigned long long)gl.first);
	/* Node 3 catches up from a snapshot: its log restarts after it. */
	node_start(2, 0);
	wait_applied_eq(2, l);
	wait_equal(l, 2);
	ck_assert_int_eq(get_is(2, "a04", "v"), 0);
	ck_assert_int_eq(qfs_rnode_group_info(RN[2], G, &gi), 0);
	ck_assert_uint_ge(gi.applied, gl.applied);
	ck_assert_msg(gi.first == 0 || gi.first > old + 1, "node 3 first %llu",
		      (unsigned long long)gi.first);
	/* A crash between the store's flush and the WAL reset leaves the new
	 * store with the old log: open finishes the install.  (Only a valid
	 * crash state while nothing followed the snapshot: a leader change
	 * may have appended its barrier meanwhile.) */
	node_stop(2);
	if (gi.first == 0) {
		qfs_lsn_t at = gi.applied;

		wal_copy("n3-wal-old", walg);
		node_start(2, 0);
		ck_assert_int_eq(qfs_rnode_group_info(RN[2], G, &gi), 0);
		ck_assert_int_eq(gi.stopped, 0);
		ck_assert_uint_eq(gi.applied, at);
		ck_assert_uint_eq(gi.last, at);
		ck_assert_uint_eq(gi.first, 0); /* the old log is gone */
	} else {
		fprintf(stderr, "check_rnode: crash state after install not tested (first %llu)\n",
			(unsigned long long)gi.first);
		node_start(2, 0);
	}
	put_acked("b1", "v");
	wait_key(2, "b1", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	wait_applied_eq(2, l);
	wait_equal(l, 2);
	/* And a plain restart on the log that starts after the snapshot. */
	node_stop(2);
	node_start(2, 0);
	put_acked("b2", "v");
	wait_key(2, "b2", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	wait_applied_eq(2, l);
	wait_equal(l, 2);
	/* A wiped node (members re-created) catches up by snapshot too. */
	node_stop(2);
	{
		char path[400];

		snprintf(path, sizeof(path), "%s/n3", tmpdir);
		ck_assert_int_eq(nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
	}
	write_release("t", 40, 2);
	node_start(2, 1);
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	wait_applied_eq(2, l);
	wait_equal(l, 2);
	ck_assert_int_eq(get_is(2, "a04", "v"), 0);
	put_acked("b3", "v");
	for (int i = 0; i < NN; i++)
		wait_key(i, "b3", "v");
	wait_equal(0, 2);
	wait_equal(1, 2);
}
END_TEST

/* Files in node n's snapshot staging directory (store/qfs-install). */
static int staging_files(int n)
{
	char path[400];
	struct dirent *de;
	int c = 0;

	snprintf(path, sizeof(path), "%s/n%d/store/qfs-install", tmpdir, n);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		c += de->d_name[0] != '.';
	closedir(d);
	return c;
}

/* A snapshot several times the receiver's inbox (512 KiB here; the default
 * is 64 MiB) gets through: the leader streams it with a window of chunks
 * the follower acknowledges, instead of sending every chunk at once into
 * an inbox that drops what does not fit (doc/rnode.md section 6). */
START_TEST(t_snapshot_big)
{
	struct qfs_net_params np;
	static char val[30001];
	char name[32];
	int l;

	/* QFS_TEST_SNAP_ITEMS=N (a manual run): N items through the default
	 * 64 MiB inbox instead, e.g. 2400 for a group of 69 MiB */
	const char *env = getenv("QFS_TEST_SNAP_ITEMS");
	int nitems = env ? atoi(env) : 150;

	for (int i = 0; i < NN; i++)
		node_stop(i);
	qfs_net_free(NET);
	qfs_net_params_default(&np);
	if (!env)
		np.inbox_bytes = 512u << 10;
	ck_assert_int_eq(qfs_net_new(QFS_NET_INPROC, &np, &NET), 0);
	SEAL_MS = 50;
	for (int i = 0; i < NN; i++)
		node_start(i, 0);
	put_acked("a00", "v");
	wait_key(2, "a00", "v");
	node_stop(2);
	/* about 4.5 MiB of items, then the logs released past node 3 */
	for (int k = 0; k < nitems; k++) {
		memset(val, 'a' + k % 26, 30000);
		snprintf(name, sizeof(name), "big%03d", k);
		put_acked(name, val);
		if (k % 20 == 19)
			usleep(80000); /* the segment ages out and is sealed */
	}
	usleep(80000);
	{
		struct qfs_rnode_ginfo a, b;

		wait_key(0, name, val);
		wait_key(1, name, val);
		ck_assert_int_eq(qfs_rnode_group_info(RN[0], G, &a), 0);
		ck_assert_int_eq(qfs_rnode_group_info(RN[1], G, &b), 0);
		qfs_lsn_t rel = (a.applied < b.applied ? a.applied : b.applied) + 1;
		ck_assert_int_eq(qfs_rnode_wal_release(RN[0], G, rel), 0);
		ck_assert_int_eq(qfs_rnode_wal_release(RN[1], G, rel), 0);
	}
	node_start(2, 0);
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	wait_applied_eq(2, l);
	wait_equal(l, 2);
	snprintf(name, sizeof(name), "big%03d", nitems - 1);
	ck_assert_int_eq(get_is(2, name, val), 0);
	/* nothing was dropped at node 3's inbox: the stream never overran it */
	{
		struct qfs_net_stats ns;

		ck_assert_int_eq(qfs_net_stats(qfs_rnode_ep(RN[2]), 0, &ns), 0);
		ck_assert_uint_eq(ns.drop_in_frames, 0);
		ck_assert_uint_gt(ns.recv_bytes, (uint64_t)nitems * 28000);
	}
	/* node 3 wrote the items out as they came: it never held more than
	 * two of them in memory, not the 4.5 MiB group */
	{
		struct qfs_rnode_ginfo gi;

		ck_assert_int_eq(qfs_rnode_group_info(RN[2], G, &gi), 0);
		ck_assert_uint_gt(gi.snap_in_peak, 0);
		ck_assert_uint_le(gi.snap_in_peak, 2 * 30100);
		/* none is left for good: on a loaded machine a transfer may be
		 * retried (attempt 2 after 2 s without progress); a chunk 0 of
		 * the abandoned attempt, late in node 3's inbox, is dropped now
		 * (t_snapshot_not_leader), but a partial of a transfer that a
		 * leader change cut is freed only once idle for
		 * RNODE_SNAP_IDLE_MS (10 s): waited for, 30 s at most */
		for (uint64_t end = qfs_clock_mono_ms() + 30000;
		     staging_files(3) != 0 && qfs_clock_mono_ms() < end;)
			usleep(20000);
		ck_assert_int_eq(staging_files(3), 0);
	}
	put_acked("after", "v");
	wait_key(2, "after", "v");
}
END_TEST

/* Index of a node other than l that follows l as the leader of G, waiting
 * up to 10 s (the test fails otherwise). */
static int follower_of(int l)
{
	struct qfs_rnode_ginfo gi;
	uint64_t end = qfs_clock_mono_ms() + 10000;

	do {
		for (int i = 0; i < NN; i++)
			if (i != l && RN[i] && qfs_rnode_group_info(RN[i], G, &gi) == 0 &&
			    gi.role == QFS_PAXOS_FOLLOWER && gi.leader == (uint32_t)l + 1)
				return i;
		usleep(10000);
	} while (qfs_clock_mono_ms() < end);
	ck_abort_msg("no node follows node %d", l + 1);
	return -1;
}

/* Index of the leader of G once it is the preferred member (leadership
 * balance hands leadership to it soon after any other member wins an
 * election), waiting up to 10 s (the test fails otherwise): a test that
 * forges frames in the leader's name or waits for one leader's transfers
 * must not pick a leader that is about to hand over (t_snapshot_idle lost
 * its leader to the handoff in 1 of 18 runs at load 11-18; an election
 * under load can still move it). */
static int preferred_leader(void)
{
	uint64_t end = qfs_clock_mono_ms() + 10000;

	for (;;) {
		struct qfs_rnode_ginfo gi;
		int l = find_leader(3000);

		ck_assert_int_ge(l, 0);
		ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
		if (gi.preferred == (uint32_t)l + 1)
			return l;
		ck_assert_msg(qfs_clock_mono_ms() < end, "the preferred member %u never led",
			      gi.preferred);
		usleep(50000);
	}
}

/* Send chunk c with one item (name, "v") from endpoint ep: a chunk forged
 * with any c->from (the node checks the chunk's sender, not the frame's). */
static void snap_forge(struct qfs_net_ep *ep, struct qfs_snap_chunk *c, const char *name)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name));
	struct qfs_buf b;

	qfs_buf_init(&b);
	qfs_snap_start(&b);
	qfs_snap_add(&b, key, klen, (const uint8_t *)"v", 1);
	c->n = 1;
	ck_assert_int_eq(qfs_snap_finish(&b, c), 0);
	ck_assert_int_eq(qfs_net_send(ep, c->to, b.data, b.len), 0);
	qfs_buf_close(&b);
}

/* Node i's G info once its snapshot counters reach chunks held / dropped
 * (either one, 10 s at most: then as they are). */
static void snap_in_wait(int i, uint32_t chunks, uint64_t dropped, struct qfs_rnode_ginfo *gi)
{
	uint64_t end = qfs_clock_mono_ms() + 10000;

	do {
		ck_assert_int_eq(qfs_rnode_group_info(RN[i], G, gi), 0);
		if (gi->snap_in_chunks == chunks || gi->snap_in_dropped == dropped)
			return;
		usleep(10000);
	} while (qfs_clock_mono_ms() < end);
}

/* Forge chunk 0 of a transfer (xfer, one item name) from the leader to a
 * node that follows it, until that follower holds it: *c, *l, *fo, *gi
 * as taken.  An election between find_leader and the chunk's arrival
 * (CI, load 15) makes the follower drop it (not from the leader it
 * follows: t_snapshot_not_leader), so up to 5 tries, each a new transfer
 * (xfer + try), each from the preferred member once it leads. */
static void snap_forge_taken(struct qfs_net_ep *ep, uint64_t xfer, const char *name, struct qfs_snap_chunk *c,
			     int *l, int *fo, struct qfs_rnode_ginfo *gi)
{
	for (int a = 0; a < 5; a++) {
		*l = preferred_leader();
		*fo = follower_of(*l);
		*c = (struct qfs_snap_chunk){ .from = (uint32_t)*l + 1, .to = (uint32_t)*fo + 1, .group = G,
					      .xfer = xfer + (uint64_t)a, .seq = 0 };
		snap_forge(ep, c, name);
		snap_in_wait(*fo, 1, UINT64_MAX, gi);
		if (gi->snap_in_chunks == 1)
			return;
	}
}

/* A follower takes snapshot chunks only of the current transfer of the
 * leader it follows (doc/rnode.md section 6).  Forged by a bare endpoint
 * (node 9) for follower F of leader L: chunk 0 from the third member D (a
 * deposed leader whose window was still in flight, which made two
 * transfers overrun F's inbox in t_snapshot_big at load 25-34) is dropped
 * and counted, no partial is started; chunk 0 of transfer X from L is
 * taken; a late chunk 0 of an older transfer of L (abandoned, retried as
 * X) is dropped too and does not replace X, whose chunk 1 is then taken. */
START_TEST(t_snapshot_not_leader)
{
	struct qfs_rnode_ginfo gi;
	struct qfs_snap_chunk c;
	struct qfs_net_ep *ep;
	int l, fo, d;
	uint64_t x = 1ull << 62;

	put_acked("a00", "v");
	l = preferred_leader();
	fo = follower_of(l);
	d = 3 - l - fo;
	wait_key(fo, "a00", "v");
	ck_assert_int_eq(qfs_net_endpoint_open(NET, 9, NULL, NULL, NULL, &ep), 0);
	c = (struct qfs_snap_chunk){ .from = (uint32_t)d + 1, .to = (uint32_t)fo + 1, .group = G,
				     .xfer = x + 5, .seq = 0 };
	snap_forge(ep, &c, "k1");
	snap_in_wait(fo, 1, 1, &gi);
	ck_assert_uint_eq(gi.snap_in_chunks, 0);
	ck_assert_uint_eq(gi.snap_in_dropped, 1);
	ck_assert_int_eq(staging_files(fo + 1), 0);
	c = (struct qfs_snap_chunk){ .from = (uint32_t)l + 1, .to = (uint32_t)fo + 1, .group = G,
				     .xfer = x, .seq = 0 };
	snap_forge(ep, &c, "k2");
	snap_in_wait(fo, 1, 99, &gi);
	ck_assert_uint_eq(gi.snap_in_chunks, 1);
	/* a late chunk 0 of L's previous transfer */
	c.xfer = x - 1;
	snap_forge(ep, &c, "k3");
	snap_in_wait(fo, 99, 2, &gi);
	ck_assert_uint_eq(gi.snap_in_dropped, 2);
	ck_assert_uint_eq(gi.snap_in_chunks, 1);
	/* X goes on: its chunk 1 is in order */
	c.xfer = x;
	c.seq = 1;
	snap_forge(ep, &c, "k4");
	snap_in_wait(fo, 2, 99, &gi);
	ck_assert_uint_eq(gi.snap_in_chunks, 2);
	ck_assert_uint_eq(gi.snap_in_dropped, 2);
	qfs_net_endpoint_close(ep);
	put_acked("a01", "v");
	wait_key(fo, "a01", "v");
	ck_assert_int_eq(get_is(fo, "k1", "v"), -ENOENT);
}
END_TEST

/* A partial snapshot whose sender stops (leader change, abandoned
 * transfer) is freed by the follower once idle for 2 x the abandon time
 * (RNODE_SNAP_IDLE_MS, 10 s), not held until the next transfer: a bare
 * endpoint (node 9) sends follower F chunk 0 of a transfer in the name of
 * its leader L, and nothing more.  Then a crash between two chunks of
 * another transfer. */
START_TEST(t_snapshot_idle)
{
	struct qfs_rnode_ginfo gi;
	struct qfs_snap_chunk c;
	struct qfs_net_ep *ep;
	struct qfs_buf b;
	uint8_t key[QFS_KEY_MAX];
	size_t klen;
	int l, fo;

	put_acked("a00", "v");
	for (int i = 0; i < NN; i++)
		wait_key(i, "a00", "v");
	ck_assert_int_eq(qfs_net_endpoint_open(NET, 9, NULL, NULL, NULL, &ep), 0);
	qfs_buf_init(&b);
	snap_forge_taken(ep, 1ull << 62, "k1", &c, &l, &fo, &gi);
	/* F takes it: the chunk is held */
	ck_assert_uint_eq(gi.snap_in_chunks, 1);
	ck_assert_int_gt(staging_files(fo + 1), 0); /* on disk, not in memory */
	/* nothing more comes: freed after about 10 s (poll up to 40 s) */
	for (int t = 0; t < 400; t++) {
		ck_assert_int_eq(qfs_rnode_group_info(RN[fo], G, &gi), 0);
		if (!gi.snap_in_chunks)
			break;
		usleep(100000);
	}
	ck_assert_uint_eq(gi.snap_in_chunks, 0);
	ck_assert_int_eq(staging_files(fo + 1), 0); /* its staging files went with it */
	ck_assert_int_eq(get_is(fo, "k1", "v"), -ENOENT); /* never installed */
	ck_assert_int_eq(get_is(fo, "a00", "v"), 0);
	/* chunk 1 of the freed transfer is refused: nothing held again */
	qfs_snap_start(&b);
	klen = qfs_key_dentry(key, DIR_INO, "k2", 2);
	qfs_snap_add(&b, key, klen, (const uint8_t *)"v", 1);
	c.seq = 1;
	c.last = 1;
	c.lsn = 1000;
	c.ballot = QFS_PAXOS_BALLOT(99, 1);
	c.total = 2;
	ck_assert_int_eq(qfs_snap_finish(&b, &c), 0);
	ck_assert_int_eq(qfs_net_send(ep, (uint32_t)fo + 1, b.data, b.len), 0);
	/* A crash between two chunks of another transfer: F stops with
	 * chunk 0 taken (close removes its staging files; they are put back
	 * as a crash would leave them) and reopens: open removes them, the
	 * old state is intact and nothing of the transfer shows. */
	snap_forge_taken(ep, (1ull << 62) + 16, "k3", &c, &l, &fo, &gi);
	ck_assert_uint_eq(gi.snap_in_chunks, 1);
	{
		char from[32], to[32];

		snprintf(from, sizeof(from), "n%d/store/qfs-install", fo + 1);
		snprintf(to, sizeof(to), "n%d-staging", fo + 1);
		ck_assert_int_gt(staging_files(fo + 1), 0);
		wal_copy(from, to);
		node_stop(fo);
		ck_assert_int_eq(staging_files(fo + 1), 0);
		wal_copy(to, from);
		ck_assert_int_gt(staging_files(fo + 1), 0);
		node_start(fo, 0);
	}
	ck_assert_int_eq(staging_files(fo + 1), 0);
	ck_assert_int_eq(get_is(fo, "k3", "v"), -ENOENT);
	ck_assert_int_eq(get_is(fo, "a00", "v"), 0);
	qfs_buf_close(&b);
	qfs_net_endpoint_close(ep);
	put_acked("a01", "v");
	wait_key(fo, "a01", "v");
	ck_assert_int_eq(qfs_rnode_group_info(RN[fo], G, &gi), 0);
	ck_assert_uint_eq(gi.snap_in_chunks, 0);
	ck_assert_int_eq(get_is(fo, "k2", "v"), -ENOENT);
}
END_TEST

/* Node 3's log end when snap_behind_setup stopped it (its applied LSN):
 * what its bare endpoint answers with (bare_answer). */
static qfs_lsn_t SNAP3_LAST;

/* The bare endpoint ep that stands for node 3 answers the leader's ACCEPT
 * in frame f as node 3 would, a replica whose log ends (committed) at
 * SNAP3_LAST: a heartbeat with ok and its commit, entries after its end
 * with a refusal naming it, both carrying its last LSN.  A real member
 * always answers, and a leader elected after it went silent sends it
 * nothing but the log until it does (doc/paxos.md, catch-up): without an
 * answer node 3 would get no snapshot.  A PREPARE goes unanswered (the two
 * others elect); any other frame is left alone.  Does not free f. */
static void bare_answer(struct qfs_net_ep *ep, const struct qfs_net_frame *f)
{
	struct qfs_repl_entry ents[QFS_PAXOS_MAX_BATCH];
	uint8_t frame[QFS_NET_FRAME_HDR + 512];
	struct qfs_paxos_msg in, m;
	const uint8_t *body;
	size_t blen;
	uint8_t type;
	ssize_t n;

	if (qfs_net_frame_open_rx(f, &type, &body, &blen) != 0 || type != QFS_PAXOS_ACCEPT ||
	    qfs_paxos_msg_decode(type, body, blen, &in, ents) != 0 || in.to != 3 || in.group != G)
		return;
	memset(&m, 0, sizeof(m));
	m.type = QFS_PAXOS_ACCEPTED;
	m.from = 3;
	m.to = in.from;
	m.group = G;
	m.ballot = in.ballot;
	m.promised = in.ballot;
	m.ok = in.n == 0; /* (entries: the leader's next is past our end) */
	m.match = SNAP3_LAST;
	m.last_lsn = SNAP3_LAST;
	m.time_ms = in.time_ms;
	n = qfs_paxos_msg_encode(&m, frame + QFS_NET_FRAME_HDR, sizeof(frame) - QFS_NET_FRAME_HDR);
	ck_assert_int_gt(n, 0);
	qfs_net_frame_seal(frame, m.type, (size_t)n);
	(void)qfs_net_send(ep, m.to, frame, QFS_NET_FRAME_HDR + (size_t)n);
}

/* Node 3 (index 2) behind the released logs of a group of about 1.8 MiB
 * (7 or 8 chunks), stopped, and nodes 1 and 2 restarted after it stopped,
 * so that the leader which sends the transfers was elected after node 3
 * went silent (it learns where node 3's log ends from bare_answer, as from
 * a real node 3; without the restart only a run with a leader change
 * since node 3 stopped took that path); the preferred member leads
 * (leadership balance), so one leader sends the transfers.  Returns its
 * index. */
static int snap_behind_setup(void)
{
	static char val[30001];
	char name[32];

	for (int i = 0; i < NN; i++)
		node_stop(i);
	SEAL_MS = 50;
	for (int i = 0; i < NN; i++)
		node_start(i, 0);
	put_acked("a00", "v");
	wait_key(2, "a00", "v");
	{
		struct qfs_rnode_ginfo gi;

		ck_assert_int_eq(qfs_rnode_group_info(RN[2], G, &gi), 0);
		SNAP3_LAST = gi.applied;
	}
	node_stop(2);
	/* every leader from now on is elected after node 3 went silent (the
	 * restart before the writes: leadership settles while they go on) */
	node_stop(0);
	node_stop(1);
	node_start(0, 0);
	node_start(1, 0);
	/* about 1.8 MiB of items: 7 or 8 chunks; the logs released past node 3 */
	for (int k = 0; k < 60; k++) {
		memset(val, 'a' + k % 26, 30000);
		snprintf(name, sizeof(name), "big%03d", k);
		put_acked(name, val);
		if (k % 20 == 19)
			usleep(80000);
	}
	usleep(80000);
	{
		struct qfs_rnode_ginfo gi0, gi1;

		wait_key(0, name, val);
		wait_key(1, name, val);
		ck_assert_int_eq(qfs_rnode_group_info(RN[0], G, &gi0), 0);
		ck_assert_int_eq(qfs_rnode_group_info(RN[1], G, &gi1), 0);
		qfs_lsn_t rel = (gi0.applied < gi1.applied ? gi0.applied : gi1.applied) + 1;
		ck_assert_int_eq(qfs_rnode_wal_release(RN[0], G, rel), 0);
		ck_assert_int_eq(qfs_rnode_wal_release(RN[1], G, rel), 0);
		ck_assert_uint_gt(rel, SNAP3_LAST + 1); /* node 3 needs a snapshot */
	}
	/* the preferred member leads first (leadership balance), so one leader
	 * sends all three transfers */
	return preferred_leader();
}

/* A follower that ever sent an ACK frame keeps the window even when a
 * later transfer to it stalls without one (its group stopped, a slow I/O
 * thread): node 3 is replaced by a bare endpoint that ACKs a whole first
 * transfer, ACKs nothing of the second (abandoned after 5 s), and must get
 * only 2 chunks of the third (a burst would send all of them). */
START_TEST(t_snapshot_window_kept)
{
	struct qfs_net_ep *ep;
	struct qfs_net_frame *f;
	struct qfs_snap_chunk d, a;
	struct qfs_buf b;
	uint64_t xa = 0, xb = 0, xc = 0, end, c_end = 0;
	uint32_t a_chunks = 0, c_chunks = 0;
	int a_done = 0;

	(void)snap_behind_setup();
	ck_assert_int_eq(qfs_net_endpoint_open(NET, 3, NULL, NULL, NULL, &ep), 0);
	qfs_buf_init(&b);
	end = qfs_clock_mono_ms() + 45000;
	while (qfs_clock_mono_ms() < end && !(c_end && qfs_clock_mono_ms() >= c_end)) {
		if (qfs_net_recv_wait(ep, 100, &f) != 0)
			continue;
		bare_answer(ep, f);
		if (snap_open(f->data, f->len, &d) != 0 || d.ack || d.to != 3 || d.group != G) {
			qfs_net_frame_free(f);
			continue;
		}
		qfs_net_frame_free(f);
		if (!xa)
			xa = d.xfer;
		if (d.xfer == xa) {
			/* the first transfer: every chunk acknowledged */
			ck_assert_uint_eq(d.seq, a_chunks);
			a_chunks++;
			a_done |= d.last;
			a = (struct qfs_snap_chunk){ .from = 3, .to = d.from, .group = G,
						     .xfer = d.xfer, .seq = d.seq, .ack = 1 };
			qfs_snap_start(&b);
			ck_assert_int_eq(qfs_snap_finish(&b, &a), 0);
			ck_assert_int_eq(qfs_net_send(ep, d.from, b.data, b.len), 0);
		} else if (!xb || d.xfer == xb) {
			xb = d.xfer; /* the second: not acknowledged, abandoned */
		} else {
			if (!xc) {
				xc = d.xfer;
				c_end = qfs_clock_mono_ms() + 1500;
			}
			if (d.xfer == xc)
				c_chunks++;
		}
	}
	qfs_buf_close(&b);
	qfs_net_endpoint_close(ep);
	ck_assert(a_done);
	ck_assert_uint_ge(a_chunks, 4);
	ck_assert_uint_ne(xb, 0);
	ck_assert_uint_ne(xc, 0);
	ck_assert_uint_eq(c_chunks, 2); /* the window, not a burst */
	node_start(2, 0);
}
END_TEST

/* A deposed leader stops its transfer (doc/rnode.md section 6): node 3,
 * behind the released logs, is a bare endpoint that takes the first
 * window (chunks 0 and 1) of leader L's transfer X without acknowledging
 * it; then L is deposed (a refused ACCEPTED in node 3's name names a
 * higher promise: L steps down) and only then are chunks 0 and 1
 * acknowledged.  L must send no further chunk of X (before the rule the
 * ACK opened the window again: two leaders' windows could overrun the
 * follower's inbox); a new leader's transfer may come. */
START_TEST(t_snapshot_deposed)
{
	struct qfs_rnode_ginfo gi;
	struct qfs_net_ep *ep;
	struct qfs_net_frame *f;
	struct qfs_snap_chunk d, a;
	struct qfs_paxos_msg m;
	struct qfs_buf b;
	uint8_t frame[QFS_NET_FRAME_HDR + 512];
	uint64_t x = 0, end;
	uint32_t got = 0, late = 0;
	qfs_ballot_t b0;
	ssize_t n;
	int l = snap_behind_setup();

	ck_assert_int_eq(qfs_net_endpoint_open(NET, 3, NULL, NULL, NULL, &ep), 0);
	qfs_buf_init(&b);
	/* the first window of L's transfer */
	for (end = qfs_clock_mono_ms() + 10000; got < 2 && qfs_clock_mono_ms() < end;) {
		if (qfs_net_recv_wait(ep, 100, &f) != 0)
			continue;
		bare_answer(ep, f);
		if (snap_open(f->data, f->len, &d) == 0 && !d.ack && d.to == 3 && d.group == G &&
		    d.from == (uint32_t)l + 1 && (!x || d.xfer == x)) {
			x = d.xfer;
			ck_assert_uint_eq(d.seq, got);
			got++;
		}
		qfs_net_frame_free(f);
	}
	ck_assert_uint_eq(got, 2);
	/* depose L */
	ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
	ck_assert_int_eq(gi.role, QFS_PAXOS_LEADER);
	b0 = gi.ballot;
	memset(&m, 0, sizeof(m));
	m.type = QFS_PAXOS_ACCEPTED;
	m.ok = 0;
	m.from = 3;
	m.to = (uint32_t)l + 1;
	m.group = G;
	m.ballot = b0;
	m.promised = QFS_PAXOS_BALLOT(qfs_paxos_ballot_round(b0) + 1000, 3);
	n = qfs_paxos_msg_encode(&m, frame + QFS_NET_FRAME_HDR, sizeof(frame) - QFS_NET_FRAME_HDR);
	ck_assert_int_gt(n, 0);
	qfs_net_frame_seal(frame, m.type, (size_t)n);
	ck_assert_int_eq(qfs_net_send(ep, m.to, frame, QFS_NET_FRAME_HDR + (size_t)n), 0);
	for (end = qfs_clock_mono_ms() + 10000; qfs_clock_mono_ms() < end; usleep(10000)) {
		ck_assert_int_eq(qfs_rnode_group_info(RN[l], G, &gi), 0);
		if (gi.role != QFS_PAXOS_LEADER || gi.ballot != b0)
			break;
	}
	ck_assert(gi.role != QFS_PAXOS_LEADER || gi.ballot != b0);
	/* now the window's ACKs */
	for (uint32_t seq = 0; seq < 2; seq++) {
		a = (struct qfs_snap_chunk){ .from = 3, .to = (uint32_t)l + 1, .group = G, .xfer = x,
					     .seq = seq, .ack = 1 };
		qfs_snap_start(&b);
		ck_assert_int_eq(qfs_snap_finish(&b, &a), 0);
		ck_assert_int_eq(qfs_net_send(ep, a.to, b.data, b.len), 0);
	}
	/* no more of X: watched for 2 s (the old rule sent chunk 2 at once) */
	for (end = qfs_clock_mono_ms() + 2000; qfs_clock_mono_ms() < end;) {
		if (qfs_net_recv_wait(ep, 100, &f) != 0)
			continue;
		bare_answer(ep, f);
		if (snap_open(f->data, f->len, &d) == 0 && !d.ack && d.xfer == x)
			late++;
		qfs_net_frame_free(f);
	}
	qfs_buf_close(&b);
	qfs_net_endpoint_close(ep);
	ck_assert_uint_eq(late, 0);
	node_start(2, 0);
}
END_TEST

static Suite *rnode_suite(void)
{
	Suite *s = suite_create("rnode");
	TCase *tc = tcase_create("three");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_elect_replicate);
	tcase_add_test(tc, t_large_entries);
	tcase_add_test(tc, t_failover);
	tcase_add_test(tc, t_replace_member);
	tcase_add_test(tc, t_log_replica);
	tcase_add_test(tc, t_config_if);
	tcase_add_test(tc, t_two_down);
	tcase_add_loop_test(tc, t_concurrent, 0, 2);
	tcase_add_test(tc, t_send_while_sync);
	tcase_add_test(tc, t_gather);
	tcase_add_test(tc, t_read_own_write);
	tcase_add_test(tc, t_direct_quorum);
	tcase_add_test(tc, t_direct_race);
	tcase_add_test(tc, t_replaced);
	tcase_add_test(tc, t_errors);
	tcase_add_test(tc, t_store_behind);
	tcase_add_test(tc, t_full_restart);
	tcase_add_test(tc, t_drop_waiting);
	tcase_add_test(tc, t_drop_crash);
	tcase_add_test(tc, t_drop_concurrent);
	tcase_add_test(tc, t_info);
	tcase_add_test(tc, t_seal_age);
	tcase_add_test(tc, t_wal_release);
	tcase_add_test(tc, t_truncate_sealed);
	tcase_add_test(tc, t_snapshot);
	tcase_add_test(tc, t_snap_codec);
	tcase_add_test(tc, t_store_install);
	suite_add_tcase(s, tc);
	tc = tcase_create("quorum");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_quorum_durable);
	suite_add_tcase(s, tc);
	tc = tcase_create("big");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_snapshot_big);
	suite_add_tcase(s, tc);
	tc = tcase_create("idle");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, t_snapshot_idle);
	suite_add_tcase(s, tc);
	tc = tcase_create("not_leader");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, t_snapshot_not_leader);
	suite_add_tcase(s, tc);
	tc = tcase_create("window");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_snapshot_window_kept);
	suite_add_tcase(s, tc);
	tc = tcase_create("deposed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_snapshot_deposed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rnode_suite());
	int nf;

	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
