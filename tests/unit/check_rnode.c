/*
 * check_rnode.c - unit tests of the replicated storage node (src/node/rnode)
 * with three nodes on one in-process net, real WALs and RocksDB stores in a
 * private temp directory per test, and short election timeouts.
 *
 * Covers: election, replication to every store, conditional txns, -EREMOTE
 * with the leader hint at a follower, status lines, lease reads; leader
 * failover with nothing acknowledged lost and catch-up of the restarted
 * node (stores compared by scan); two nodes down (bounded failure, no hang)
 * then recovery; 4 concurrent proposers (group commit: fewer fsyncs than
 * proposals); a cut-off leader's uncommitted entry replaced (-EAGAIN);
 * a follower whose store was lost rebuilt from its WAL; argument and open
 * errors (bad config, unknown group, duplicate endpoint,
 * corrupt members file, foreign FORMAT) and the promise file on disk; a
 * full restart of all three.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/key.h"
#include "common/txn.h"
#include "net/net.h"
#include "node/rnode.h"

#define G 0x400ull
#define DIR_INO 1024
#define NN 3

static char tmpdir[256];
static struct qfs_net *NET;
static struct qfs_rnode *RN[NN];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void node_start(int i, int create)
{
	char dir[300];
	struct qfs_paxos_params prm;
	struct qfs_rnode_opts o;
	static const char *az[] = { "a", "b", "c" };

	qfs_paxos_params_default(&prm);
	prm.election_min_ms = 150;
	prm.election_max_ms = 300;
	prm.heartbeat_ms = 30;
	prm.lease_ms = 200;
	prm.retry_ms = 100;
	snprintf(dir, sizeof(dir), "%s/n%d", tmpdir, i + 1);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.id = (uint32_t)i + 1;
	o.az = az[i];
	o.net = NET;
	o.paxos = &prm;
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

static int propose(int i, const char *name, const char *val, int expect_absent, uint32_t tmo,
		   int *result, uint32_t *leader)
{
	struct qfs_buf b;
	int rc;

	qfs_buf_init(&b);
	txn_put(&b, name, val, expect_absent);
	rc = qfs_rnode_propose(RN[i], G, b.data, b.len, tmo, result, leader);
	qfs_buf_close(&b);
	return rc;
}

/* Index of a node that believes it leads, waiting up to ms; -1 if none. */
static int find_leader(uint32_t ms)
{
	uint64_t end = qfs_clock_mono_ms() + ms;

	do {
		for (int i = 0; i < NN; i++)
			if (RN[i] && qfs_rnode_leader(RN[i], G) == (uint32_t)i + 1)
				return i;
		usleep(10000);
	} while (qfs_clock_mono_ms() < end);
	return -1;
}

/* Write name=val through whichever node leads, retrying retryable errors
 * for up to 10 s; fails the test otherwise.  Returns the leader used. */
static int put_acked(const char *name, const char *val)
{
	uint64_t end = qfs_clock_mono_ms() + 10000;

	while (qfs_clock_mono_ms() < end) {
		int l = find_leader(3000), result = 99, rc;

		ck_assert_int_ge(l, 0);
		rc = propose(l, name, val, 0, 2000, &result, NULL);
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

static int get_is(int i, const char *name, const char *want)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name)), vlen;
	void *val = NULL;
	int rc = qfs_rnode_get(RN[i], G, key, klen, &val, &vlen);

	if (rc)
		return rc;
	rc = vlen == strlen(want) && memcmp(val, want, vlen) == 0 ? 0 : -EBADMSG;
	free(val);
	return rc;
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
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32];

	for (int k = 0; k < 50; k++) {
		int result = 99;

		snprintf(name, sizeof(name), "w%d-%02d", w->id, k);
		if (propose(w->leader, name, "v", 0, 5000, &result, NULL) == 0 && result == 0)
			w->ok++;
	}
	return NULL;
}

START_TEST(t_concurrent)
{
	struct qfs_rnode_stat s0, s1;
	struct worker w[4];
	pthread_t th[4];
	uint64_t t0, t1;
	int l;

	put_acked("warm", "v");
	l = find_leader(3000);
	ck_assert_int_ge(l, 0);
	qfs_rnode_stat(RN[l], &s0);
	t0 = qfs_clock_mono_ms();
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .leader = l, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	t1 = qfs_clock_mono_ms();
	qfs_rnode_stat(RN[l], &s1);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(w[i].ok, 50);
	ck_assert_uint_eq(s1.proposals - s0.proposals, 200);
	fprintf(stderr, "check_rnode: 200 proposals by 4 threads in %llu ms, leader fsyncs %llu\n",
		(unsigned long long)(t1 - t0), (unsigned long long)(s1.fsyncs - s0.fsyncs));
	ck_assert_uint_lt(s1.fsyncs - s0.fsyncs, 200);
	wait_equal(0, 1);
	wait_equal(0, 2);
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
	/* A corrupt members file or a foreign FORMAT refuses to open. */
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
	ck_assert_int_eq(qfs_rnode_open(&o, &x), QFS_ECORRUPT);
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

static Suite *rnode_suite(void)
{
	Suite *s = suite_create("rnode");
	TCase *tc = tcase_create("three");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_elect_replicate);
	tcase_add_test(tc, t_failover);
	tcase_add_test(tc, t_two_down);
	tcase_add_test(tc, t_concurrent);
	tcase_add_test(tc, t_replaced);
	tcase_add_test(tc, t_errors);
	tcase_add_test(tc, t_store_behind);
	tcase_add_test(tc, t_full_restart);
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
