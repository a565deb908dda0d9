/*
 * check_cell.c - unit tests of the mount's storage cell (src/node/cell):
 * three rnodes on the in-process transport, real WALs and RocksDB stores in
 * a private temp directory per test, fast Paxos timers.
 *
 * Covers: groups created on every node, propose + strong read round trip,
 * status and node lines; leader stopped under 4 concurrent proposers (no
 * failure, no timeout), restarted, caught up, its own data checked alone;
 * two nodes stopped (bounded -ETIMEDOUT for proposals and strong reads,
 * eventual reads still answer, nothing acknowledged lost after restart);
 * node stop/start argument errors; reconciliation of a node stopped while a
 * group was created or dropped, and a create without a majority that leaves
 * nothing behind; WAL release bounded by a stopped node's applied LSN;
 * close with a node stopped and reopen; a node that cannot be opened
 * (cell runs on two, keeper starts it once it can); a new group led by its
 * preferred member from its first campaign.
 *
 * "Alone" checks: the cell is opened with eventual reads, the two other
 * nodes are stopped, and the node under test is the only replica a read
 * can reach, so its own store is what is compared.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "common/txn.h"
#include "node/cell.h"
#include "router/route.h"

#define G 0x500ull
#define G2 0x501ull
#define DIR_INO 1024

static char basedir[64];  /* one per run, removed by main (failed tests skip teardown) */
static char tmpdir[256];  /* one per test, under basedir */
static struct qfs_cell *C;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void cell_open(enum qfs_cell_reads reads, uint32_t timeout_ms, uint64_t seal_ms)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = {
		.dir = tmpdir,
		.nodes = 3,
		.timeout_ms = timeout_ms,
		.reads = reads,
		.wal_seal_age_ms = seal_ms,
		.paxos = &prm,
	};

	/* fast timers, as check_rnode and check_router use */
	qfs_paxos_params_default(&prm);
	prm.election_min_ms = 150;
	prm.election_max_ms = 300;
	prm.heartbeat_ms = 30;
	prm.lease_ms = 200;
	ck_assert_ptr_null(C);
	ck_assert_int_eq(qfs_cell_open(&o, &C), 0);
	ck_assert_int_eq(qfs_route_attach(C), 0);
}

static void cell_close(void)
{
	qfs_cell_close(C);
	C = NULL;
}

static void setup(void)
{
	qfs_log_level = QFS_LOG_ERR;
	snprintf(tmpdir, sizeof(tmpdir), "%s/t.XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	cell_close();
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ txns, reads */

/* qfs_cell_propose of [EXPECT_ABSENT name -EEXIST] PUT name=val; safe to call from any thread (no
 * assertion: the caller checks rc and *result). */
static int put_rc(qfs_group_t g, const char *name, const char *val, int expect_absent, int *result)
{
	uint8_t key[QFS_KEY_MAX];
	struct qfs_buf b;
	struct qfs_txn t;
	struct qfs_op *op;
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name));
	int rc;

	qfs_buf_init(&b);
	qfs_txn_init(&t);
	if (expect_absent && (op = qfs_txn_add(&t, QFS_OP_EXPECT_ABSENT))) {
		op->key = key;
		op->key_len = (uint32_t)klen;
		op->err = -EEXIST;
	}
	op = qfs_txn_add(&t, QFS_OP_PUT);
	if (!op) {
		qfs_txn_close(&t);
		qfs_buf_close(&b);
		return -ENOMEM;
	}
	op->key = key;
	op->key_len = (uint32_t)klen;
	op->val = (const uint8_t *)val;
	op->val_len = (uint32_t)strlen(val);
	qfs_txn_encode(&t, &b);
	rc = b.err ? b.err : qfs_cell_propose(C, g, b.data, b.len, result);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	return rc;
}

/* PUT name=val must be acknowledged with result 0. */
static void put_ok(qfs_group_t g, const char *name, const char *val)
{
	int result = 99, rc = put_rc(g, name, val, 0, &result);

	ck_assert_msg(rc == 0, "put %s: %s", name, qfs_strerror(rc));
	ck_assert_int_eq(result, 0);
}

/* 0 if a cell read of name gives want, else its error (-EBADMSG: other value). */
static int get_is(qfs_group_t g, const char *name, const char *want)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, name, strlen(name)), vlen = 0;
	void *val = NULL;
	int rc = qfs_cell_get(C, g, key, klen, &val, &vlen);

	if (rc)
		return rc;
	rc = vlen == strlen(want) && memcmp(val, want, vlen) == 0 ? 0 : -EBADMSG;
	free(val);
	return rc;
}

static void get_ok(qfs_group_t g, const char *name, const char *want)
{
	int rc = get_is(g, name, want);

	ck_assert_msg(rc == 0, "get %s: %s", name, rc == -EBADMSG ? "wrong value" : qfs_strerror(rc));
}

static int count_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		    void *arg)
{
	(void)key, (void)key_len, (void)val, (void)val_len;
	(*(int *)arg)++;
	return 0;
}

/* Items of g as a cell scan sees them. */
static int item_count(qfs_group_t g)
{
	int n = 0;

	ck_assert_int_eq(qfs_cell_scan(C, g, NULL, 0, NULL, 0, count_cb, &n), 0);
	return n;
}

/* ------------------------------------------------------------- status */

/* Status text, NUL-terminated; caller frees. */
static char *status(void)
{
	struct qfs_buf b;

	qfs_buf_init(&b);
	qfs_cell_status(C, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(b.err, 0);
	return (char *)b.data;
}

static char *nodes_text(void)
{
	struct qfs_buf b;

	qfs_buf_init(&b);
	qfs_cell_nodes(C, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(b.err, 0);
	return (char *)b.data;
}

struct grp {
	int present;       /* header line found */
	uint32_t leader, replicas, up;
	uint64_t ballot;   /* the leader's (round << 16 | node) */
	int nrep;          /* replica lines */
	struct {
		int seen;
		char health[16];
		uint64_t last, applied;
	} rep[3];
};

/* Parse what status says about group g. */
static void grp_parse(const char *st, qfs_group_t g, struct grp *out)
{
	char head[64];
	const char *p = st;

	memset(out, 0, sizeof(*out));
	snprintf(head, sizeof(head), "group %016" PRIx64 " ", g);
	while ((p = strstr(p, head)) != NULL) {
		const char *rest = p + strlen(head);
		unsigned id;
		uint64_t ballot, last, durable, commit, applied;
		char az[8], health[16], role[16];

		if (sscanf(rest, "leader %u ballot %" SCNu64 " replicas %u up %u", &out->leader, &ballot,
			   &out->replicas, &out->up) == 4) {
			out->present++;
			out->ballot = ballot;
		} else if (sscanf(rest,
				  "replica node %u az %7s health %15s role %15s last %" SCNu64
				  " durable %" SCNu64 " commit %" SCNu64 " applied %" SCNu64,
				  &id, az, health, role, &last, &durable, &commit, &applied) == 8) {
			out->nrep++;
			if (id >= 1 && id <= 3) {
				out->rep[id - 1].seen++;
				snprintf(out->rep[id - 1].health, sizeof(out->rep[0].health), "%s", health);
				out->rep[id - 1].last = last;
				out->rep[id - 1].applied = applied;
			}
		} else {
			ck_abort_msg("unparsed status line: %.120s", p);
		}
		p = rest;
	}
}

static void grp_now(qfs_group_t g, struct grp *out)
{
	char *st = status();

	grp_parse(st, g, out);
	free(st);
}

/* The running leader of g per status, waiting up to ms (0: none). */
static uint32_t leader_of(qfs_group_t g, uint32_t ms)
{
	uint64_t end = qfs_clock_mono_ms() + ms;
	struct grp s;

	do {
		grp_now(g, &s);
		if (s.leader)
			return s.leader;
		usleep(10000);
	} while (qfs_clock_mono_ms() < end);
	return 0;
}

/* Wait (bounded) until the three replicas of g are up, ok and applied the
 * same LSN (> 0), the last of each one's log.  Equal applied LSNs alone do
 * not say that: a proposal is answered as its entry is applied, a moment
 * before the machine (and so status) counts it, and the followers learn
 * that commit only from the next message, so right after a put all three
 * may still show the LSN before it (a node closed then has not applied
 * the put: t_blank_nodes_keep_last_copy).  Returns the wait in ms. */
static uint64_t wait_caught_up(qfs_group_t g, uint32_t ms)
{
	uint64_t t0 = qfs_clock_mono_ms(), end = t0 + ms;
	struct grp s;
	char *st;

	for (;;) {
		int ok;

		st = status();
		grp_parse(st, g, &s);
		ok = s.present == 1 && s.up == 3 && s.nrep == 3;
		for (int i = 0; ok && i < 3; i++)
			ok = s.rep[i].seen == 1 && strcmp(s.rep[i].health, "ok") == 0 &&
			     s.rep[i].applied > 0 && s.rep[i].applied == s.rep[0].applied &&
			     s.rep[i].applied == s.rep[i].last;
		if (ok)
			break;
		ck_assert_msg(qfs_clock_mono_ms() < end, "group %" PRIx64 " not caught up:\n%s", g, st);
		free(st);
		usleep(10000);
	}
	free(st);
	return qfs_clock_mono_ms() - t0;
}

static int path_exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int path_exists(const char *fmt, ...)
{
	char path[512];
	struct stat sb;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return stat(path, &sb) == 0;
}

/* Does node id's directory hold a replica of g (members file or WAL)? */
static int on_disk(uint32_t id, qfs_group_t g)
{
	return path_exists("%s/n%u/groups/%016" PRIx64, tmpdir, id, g) ||
	       path_exists("%s/n%u/wal/%016" PRIx64, tmpdir, id, g);
}

static int seg_exists(uint32_t id, qfs_group_t g, qfs_lsn_t first)
{
	return path_exists("%s/n%u/wal/%016" PRIx64 "/%016" PRIx64 ".wal", tmpdir, id, g, first);
}

/* WAL segment files of node id's replica of g (-1: no WAL directory). */
static int seg_count(uint32_t id, qfs_group_t g)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/n%u/wal/%016" PRIx64, tmpdir, id, g);
	if (!(d = opendir(path)))
		return -1;
	while ((de = readdir(d)))
		n += strlen(de->d_name) == 20 && strcmp(de->d_name + 16, ".wal") == 0;
	closedir(d);
	return n;
}

/* Wait (10 s at most, then fail) until node id's WAL of g has more than
 * `than` segment files: an age seal is the I/O thread's, which a loaded
 * machine (the sanitizer build, other tests) runs late; a fixed sleep past
 * the seal age alone made the next records join the unsealed segment. */
static void wait_segs(uint32_t id, qfs_group_t g, int than)
{
	uint64_t t0 = qfs_clock_mono_ms();

	while (seg_count(id, g) <= than) {
		ck_assert_msg(qfs_clock_mono_ms() - t0 < 10000, "node %u: group %016" PRIx64
			      " still has %d segments after 10 s, want more than %d (no age seal)",
			      id, g, seg_count(id, g), than);
		usleep(10000);
	}
}

/* Check that node id alone (the other two stopped; eventual reads) holds
 * names prefix00..prefix<n-1> = val in g and exactly n items; restart the
 * other two. */
static void check_alone(uint32_t id, qfs_group_t g, const char *prefix, int n, const char *val)
{
	char name[32];

	for (uint32_t k = 1; k <= 3; k++)
		if (k != id)
			ck_assert_int_eq(qfs_cell_node_stop(C, k), 0);
	for (int k = 0; k < n; k++) {
		snprintf(name, sizeof(name), "%s%02d", prefix, k);
		get_ok(g, name, val);
	}
	ck_assert_int_eq(item_count(g), n);
	for (uint32_t k = 1; k <= 3; k++)
		if (k != id)
			ck_assert_int_eq(qfs_cell_node_start(C, k), 0);
}

static void put_many(qfs_group_t g, const char *prefix, int from, int to, const char *val)
{
	char name[32];

	for (int k = from; k < to; k++) {
		snprintf(name, sizeof(name), "%s%02d", prefix, k);
		put_ok(g, name, val);
	}
}

static void groups_cb(qfs_group_t g, void *arg)
{
	struct qfs_buf *b = arg;

	qfs_buf_put(b, &g, sizeof(g));
}

/* 1 if qfs_cell_groups lists g. */
static int listed(qfs_group_t g)
{
	struct qfs_buf b;
	int found = 0;

	qfs_buf_init(&b);
	qfs_cell_groups(C, groups_cb, &b);
	for (size_t i = 0; i + sizeof(g) <= b.len; i += sizeof(g)) {
		qfs_group_t x;

		memcpy(&x, b.data + i, sizeof(x));
		found |= x == g;
	}
	qfs_buf_close(&b);
	return found;
}

/* ------------------------------------------------------------------ tests */

/* A proposal into a group no node hosts fails with QFS_ENOGROUP at once,
 * not after the timeout. */
START_TEST(t_propose_unknown_group)
{
	struct qfs_cell_stat cs;
	int result = 99, rc;
	uint64_t t0, ms;

	cell_open(QFS_CELL_READ_STRONG, 5000, 0); /* a loaded machine: the first put may take over 1 s */
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_ok(G, "a", "1");
	t0 = qfs_clock_mono_ms();
	rc = put_rc(0x999, "x", "y", 0, &result);
	ms = qfs_clock_mono_ms() - t0;
	ck_assert_int_eq(result, 99);
	ck_assert_msg(rc == QFS_ENOGROUP, "propose into an unknown group: %s after %" PRIu64 " ms",
		      qfs_strerror(rc), ms);
	qfs_cell_stat(C, &cs);
	ck_assert_uint_eq(cs.timeouts, 0);
}
END_TEST

START_TEST(t_basic)
{
	struct qfs_cell_stat cs;
	struct grp s;
	char *st, line[600];
	uint8_t key[QFS_KEY_MAX];
	void *val = NULL;
	size_t vlen = 0;
	int result = 99, nlines = 0;

	cell_open(QFS_CELL_READ_STRONG, 2000, 0);
	ck_assert_int_eq(qfs_cell_group_exists(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), -EEXIST);
	ck_assert_int_eq(qfs_cell_group_exists(C, G), 1);
	ck_assert(listed(G));
	for (uint32_t id = 1; id <= 3; id++)
		ck_assert_msg(on_disk(id, G), "node %u has no replica", id);

	put_ok(G, "a", "1");
	get_ok(G, "a", "1");
	/* a failed condition is a committed outcome with its own result */
	ck_assert_int_eq(put_rc(G, "a", "2", 1, &result), 0);
	ck_assert_int_eq(result, -EEXIST);
	get_ok(G, "a", "1");
	put_ok(G, "a", "3");
	get_ok(G, "a", "3");
	size_t klen = qfs_key_dentry(key, DIR_INO, "nope", 4);
	ck_assert_int_eq(qfs_cell_get(C, G, key, klen, &val, &vlen), -ENOENT);
	ck_assert_int_eq(qfs_cell_get(C, 0x999, key, klen, &val, &vlen), QFS_ENOGROUP);
	ck_assert_int_eq(item_count(G), 1);

	wait_caught_up(G, 5000);
	st = status();
	grp_parse(st, G, &s);
	ck_assert_int_eq(s.present, 1);
	ck_assert_uint_eq(s.replicas, 3);
	ck_assert_uint_eq(s.up, 3);
	ck_assert_msg(s.leader >= 1 && s.leader <= 3, "leader %u", s.leader);
	ck_assert_int_eq(s.nrep, 3);
	ck_assert_ptr_nonnull(strstr(st, "replicas 3 up 3"));
	snprintf(line, sizeof(line), "group %016" PRIx64 " replica node %u az %c health ok role leader ",
		 (qfs_group_t)G, s.leader, 'a' + (int)s.leader - 1);
	ck_assert_msg(strstr(st, line), "no leader line in:\n%s", st);
	for (uint32_t id = 1; id <= 3; id++) {
		snprintf(line, sizeof(line), "node %u az %c state up dir %s/n%u\n", id, 'a' + (int)id - 1,
			 tmpdir, id);
		ck_assert_msg(strstr(st, line), "no '%s' in:\n%s", line, st);
	}
	free(st);

	st = nodes_text();
	for (char *p = st; (p = strchr(p, '\n')); p++)
		nlines++;
	ck_assert_int_eq(nlines, 3);
	snprintf(line, sizeof(line), "node 2 az b state up dir %s/n2\n", tmpdir);
	ck_assert_ptr_nonnull(strstr(st, line));
	ck_assert_ptr_null(strstr(st, "group "));
	free(st);

	qfs_cell_stat(C, &cs);
	ck_assert_uint_ge(cs.proposals, 3);
	ck_assert_uint_ge(cs.fsyncs, 3);
	ck_assert_uint_eq(cs.timeouts, 0);
}
END_TEST

#define NTHREADS 4
#define PER_THREAD 25   /* proposals per thread, at least */
#define AFTER_STOP 5    /* ...of which at least this many start after the stop */
#define MAX_PER_THREAD 400

static int leader_stopped; /* atomic: the stopper's stop returned */

struct worker {
	int idx;
	int ok, fail, last_rc, bad_result, after;
	uint64_t max_ms;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32];

	for (int k = 0; k < MAX_PER_THREAD && (k < PER_THREAD || w->after < AFTER_STOP); k++) {
		int after = __atomic_load_n(&leader_stopped, __ATOMIC_ACQUIRE);
		uint64_t t0 = qfs_clock_mono_ms(), ms;
		int result = 99, rc;

		snprintf(name, sizeof(name), "t%d%03d", w->idx, k);
		rc = put_rc(G, name, "v", 0, &result);
		ms = qfs_clock_mono_ms() - t0;
		if (ms > w->max_ms)
			w->max_ms = ms;
		w->after += after;
		if (rc) {
			w->fail++;
			w->last_rc = rc;
		} else {
			w->ok++;
			w->bad_result += result != 0;
		}
	}
	return NULL;
}

struct stopper {
	uint32_t id;
	int rc;
};

static void *stopper_main(void *arg)
{
	struct stopper *s = arg;

	usleep(20000); /* proposals in flight at the leader */
	s->rc = qfs_cell_node_stop(C, s->id);
	__atomic_store_n(&leader_stopped, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The leader is stopped while 4 threads propose: every proposal succeeds
 * within its 5 s timeout; the old leader restarts, catches up and its own
 * store holds every item. */
START_TEST(t_leader_failover)
{
	struct worker w[NTHREADS];
	struct stopper sp;
	pthread_t th[NTHREADS], tst;
	struct grp s;
	uint32_t l, l2;
	uint64_t max_ms = 0, catch_ms;
	char name[32], line[200], *st;
	int total = 0;

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_many(G, "p", 0, 10, "v");
	l = leader_of(G, 3000);
	ck_assert_uint_ne(l, 0);

	memset(w, 0, sizeof(w));
	leader_stopped = 0;
	sp.id = l;
	sp.rc = 99;
	for (int i = 0; i < NTHREADS; i++) {
		w[i].idx = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&tst, NULL, stopper_main, &sp), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_join(tst, NULL);
	ck_assert_int_eq(sp.rc, 0);
	for (int i = 0; i < NTHREADS; i++) {
		ck_assert_msg(w[i].fail == 0, "thread %d: %d proposals failed, last %s", i, w[i].fail,
			      qfs_strerror(w[i].last_rc));
		ck_assert_int_ge(w[i].ok, PER_THREAD);
		ck_assert_int_ge(w[i].after, AFTER_STOP);
		ck_assert_int_eq(w[i].bad_result, 0);
		total += w[i].ok;
		if (w[i].max_ms > max_ms)
			max_ms = w[i].max_ms;
	}
	/* a new leader among the two others; the stopped one shows down */
	l2 = leader_of(G, 3000);
	ck_assert_uint_ne(l2, 0);
	ck_assert_uint_ne(l2, l);
	st = status();
	grp_parse(st, G, &s);
	ck_assert_uint_eq(s.up, 2);
	ck_assert_str_eq(s.rep[l - 1].health, "down");
	snprintf(line, sizeof(line), "node %u az %c state down", l, 'a' + (int)l - 1);
	ck_assert_msg(strstr(st, line), "no '%s' in:\n%s", line, st);
	free(st);
	put_many(G, "q", 0, 5, "w");

	ck_assert_int_eq(qfs_cell_node_start(C, l), 0);
	catch_ms = wait_caught_up(G, 5000);
	fprintf(stderr, "check_cell: failover: %d proposals, slowest %" PRIu64
		" ms; restarted node %u caught up in %" PRIu64 " ms\n",
		total, max_ms, l, catch_ms);
	/* the restarted node alone holds everything acknowledged */
	for (uint32_t k = 1; k <= 3; k++)
		if (k != l)
			ck_assert_int_eq(qfs_cell_node_stop(C, k), 0);
	for (int i = 0; i < NTHREADS; i++)
		for (int k = 0; k < w[i].ok; k++) {
			snprintf(name, sizeof(name), "t%d%03d", i, k);
			get_ok(G, name, "v");
		}
	for (int k = 0; k < 5; k++) {
		snprintf(name, sizeof(name), "q%02d", k);
		get_ok(G, name, "w");
	}
	ck_assert_int_eq(item_count(G), 10 + total + 5);
}
END_TEST

/* Two nodes stopped: proposals fail with -ETIMEDOUT after the timeout, not
 * much later; strong reads time out, eventual reads answer; after the
 * restart everything acknowledged is there.  Loop 0: strong, 1: eventual. */
START_TEST(t_two_down)
{
	const uint32_t tmo = 1000;
	int eventual = _i == 1, result = 99, rc;
	uint64_t t0, ms;
	struct qfs_cell_stat cs;
	uint32_t l, f1, f2;
	char name[32];

	cell_open(eventual ? QFS_CELL_READ_EVENTUAL : QFS_CELL_READ_STRONG, tmo, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	/* the short timeout is for the two-down part: on a loaded machine let
	 * the new group elect its leader first */
	ck_assert_uint_ne(leader_of(G, 10000), 0);
	put_many(G, "k", 0, 10, "v");
	wait_caught_up(G, 5000);
	/* stop the two followers: the survivor may still think it leads */
	l = leader_of(G, 3000);
	ck_assert_uint_ne(l, 0);
	f1 = l % 3 + 1;
	f2 = f1 % 3 + 1;
	ck_assert_int_eq(qfs_cell_node_stop(C, f1), 0);
	ck_assert_int_eq(qfs_cell_node_stop(C, f2), 0);

	for (int attempt = 0; attempt < 2; attempt++) {
		t0 = qfs_clock_mono_ms();
		rc = put_rc(G, "lost", "x", 0, &result);
		ms = qfs_clock_mono_ms() - t0;
		ck_assert_msg(rc == -ETIMEDOUT, "propose with 2 down: %s", qfs_strerror(rc));
		ck_assert_int_eq(result, 99);
		ck_assert_msg(ms >= tmo - 50 && ms <= tmo + 1000, "propose gave up after %" PRIu64 " ms",
			      ms);
		fprintf(stderr, "check_cell: two down (%s reads): propose -ETIMEDOUT after %" PRIu64
			" ms (timeout %u)\n", eventual ? "eventual" : "strong", ms, tmo);
	}
	t0 = qfs_clock_mono_ms();
	rc = get_is(G, "k03", "v");
	ms = qfs_clock_mono_ms() - t0;
	if (eventual) {
		ck_assert_msg(rc == 0, "eventual get with 2 down: %s", qfs_strerror(rc));
		ck_assert_int_eq(item_count(G), 10);
	} else {
		int n = 0;

		ck_assert_msg(rc == -ETIMEDOUT, "strong get with 2 down: %s", qfs_strerror(rc));
		ck_assert_msg(ms >= tmo - 50 && ms <= tmo + 1000, "get gave up after %" PRIu64 " ms", ms);
		ck_assert_int_eq(qfs_cell_scan(C, G, NULL, 0, NULL, 0, count_cb, &n), -ETIMEDOUT);
		ck_assert_int_eq(n, 0);
	}
	/* a group create without a majority fails and leaves nothing */
	ck_assert_int_eq(qfs_cell_group_create(C, G2), -ETIMEDOUT);
	ck_assert_int_eq(qfs_cell_group_exists(C, G2), 0);
	ck_assert(!listed(G2));
	ck_assert(!on_disk(l, G2));
	qfs_cell_stat(C, &cs);
	ck_assert_uint_ge(cs.timeouts, 2);

	ck_assert_int_eq(qfs_cell_node_start(C, f1), 0);
	ck_assert_int_eq(qfs_cell_node_start(C, f2), 0);
	wait_caught_up(G, 10000); /* a leader again, and the quorum has it all */
	put_ok(G, "after", "y");
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "k%02d", k);
		get_ok(G, name, "v");
	}
	get_ok(G, "after", "y");
	wait_caught_up(G, 5000);
	/* the group create that failed did not come back with the nodes */
	ck_assert_int_eq(qfs_cell_group_exists(C, G2), 0);
	ck_assert(!listed(G2));
	for (uint32_t id = 1; id <= 3; id++)
		ck_assert_msg(!on_disk(id, G2), "node %u has a replica of the failed group", id);
	{
		char *st = status();
		char head[64];

		snprintf(head, sizeof(head), "group %016" PRIx64, (qfs_group_t)G2);
		ck_assert_msg(!strstr(st, head), "failed group in status:\n%s", st);
		free(st);
	}
}
END_TEST

/* After a wait on a group timed out, waits on it inside FUSE calls are cut
 * to 0.1 s for a second (the kernel's back-to-back calls).  A node that
 * comes back ends that: the read right after the restart waits for the
 * election (it failed after 0.1 s in replicas.sh before). */
START_TEST(t_node_up_ends_short_waits)
{
	const uint32_t tmo = 3000;
	uint64_t t0, ms;
	uint32_t l, f1, f2;
	int rc, result = 99;

	cell_open(QFS_CELL_READ_STRONG, tmo, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	ck_assert_uint_ne(leader_of(G, 10000), 0);
	put_many(G, "k", 0, 3, "v");
	wait_caught_up(G, 5000);
	l = leader_of(G, 3000);
	ck_assert_uint_ne(l, 0);
	f1 = l % 3 + 1;
	f2 = f1 % 3 + 1;
	ck_assert_int_eq(qfs_cell_node_stop(C, f1), 0);
	ck_assert_int_eq(qfs_cell_node_stop(C, f2), 0);
	qfs_clock_call_begin();
	rc = put_rc(G, "lost", "x", 0, &result);
	qfs_clock_call_end();
	ck_assert_msg(rc == -ETIMEDOUT, "propose with 2 down: %s", qfs_strerror(rc));
	/* the short waits are on: a call now gives up at once */
	qfs_clock_call_begin();
	t0 = qfs_clock_mono_ms();
	rc = get_is(G, "k01", "v");
	ms = qfs_clock_mono_ms() - t0;
	qfs_clock_call_end();
	ck_assert_msg(rc == -ETIMEDOUT && ms < tmo / 2, "second get: %s after %" PRIu64 " ms",
		      qfs_strerror(rc), ms);
	ck_assert_int_eq(qfs_cell_node_start(C, f1), 0);
	qfs_clock_call_begin();
	rc = get_is(G, "k01", "v");
	qfs_clock_call_end();
	ck_assert_msg(rc == 0, "get right after a node came back: %s", qfs_strerror(rc));
	ck_assert_int_eq(qfs_cell_node_start(C, f2), 0);
}
END_TEST

START_TEST(t_stop_start_errors)
{
	char *st, line[300];

	cell_open(QFS_CELL_READ_STRONG, 0, 0);
	ck_assert_int_eq(qfs_cell_node_stop(C, 0), -EINVAL);
	ck_assert_int_eq(qfs_cell_node_stop(C, 4), -EINVAL);
	ck_assert_int_eq(qfs_cell_node_stop(C, UINT32_MAX), -EINVAL);
	ck_assert_int_eq(qfs_cell_node_start(C, 0), -EINVAL);
	ck_assert_int_eq(qfs_cell_node_start(C, 4), -EINVAL);
	ck_assert_int_eq(qfs_cell_node_start(C, 1), -EALREADY);
	ck_assert_int_eq(qfs_cell_node_stop(C, 2), 0);
	ck_assert_int_eq(qfs_cell_node_stop(C, 2), -EALREADY);
	st = nodes_text();
	snprintf(line, sizeof(line), "node 2 az b state down dir %s/n2 why stopped-by-control-file\n",
		 tmpdir);
	ck_assert_msg(strstr(st, line), "no '%s' in:\n%s", line, st);
	snprintf(line, sizeof(line), "node 1 az a state up dir %s/n1\n", tmpdir);
	ck_assert_ptr_nonnull(strstr(st, line));
	free(st);
	/* the keeper leaves a node stopped by the hook alone */
	usleep(600000);
	ck_assert_int_eq(qfs_cell_node_stop(C, 2), -EALREADY);
	ck_assert_int_eq(qfs_cell_node_start(C, 2), 0);
	ck_assert_int_eq(qfs_cell_node_start(C, 2), -EALREADY);
	st = nodes_text();
	snprintf(line, sizeof(line), "node 2 az b state up dir %s/n2\n", tmpdir);
	ck_assert_msg(strstr(st, line), "no '%s' in:\n%s", line, st);
	free(st);
}
END_TEST

/* A group created while node 3 is stopped (2 of 3 suffice) is created on
 * node 3 when it starts, which then catches up. */
START_TEST(t_reconcile_create)
{
	struct grp s;

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 50);
	ck_assert_int_eq(qfs_cell_node_stop(C, 3), 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_exists(C, G), 1);
	ck_assert(!on_disk(3, G));
	put_many(G, "r", 0, 10, "v");
	usleep(120000); /* segment 1 sealed by age (50 ms) */
	wait_segs(1, G, 1);
	wait_segs(2, G, 1);
	put_many(G, "r", 10, 20, "v");
	/* node 3 never reported this group: a release frees nothing */
	ck_assert_int_ge(seg_count(1, G), 2);
	ck_assert_int_eq(qfs_cell_wal_release(C, G, UINT64_MAX), 0);
	ck_assert_msg(seg_exists(1, G, 1) && seg_exists(2, G, 1),
		      "released what node 3 (stopped before the group existed) needs");
	grp_now(G, &s);
	ck_assert_int_eq(s.present, 1);
	ck_assert_uint_eq(s.up, 2);
	ck_assert_str_eq(s.rep[2].health, "down");

	ck_assert_int_eq(qfs_cell_node_start(C, 3), 0);
	ck_assert(on_disk(3, G));
	wait_caught_up(G, 5000);
	grp_now(G, &s);
	ck_assert_uint_eq(s.up, 3);
	check_alone(3, G, "r", 20, "v");
	/* and it takes part: with node 1 stopped, 2 and 3 commit */
	ck_assert_int_eq(qfs_cell_node_stop(C, 1), 0);
	put_many(G, "r", 20, 25, "v");
	ck_assert_int_eq(qfs_cell_node_start(C, 1), 0);
	wait_caught_up(G, 5000);
}
END_TEST

/* A group dropped while node 3 is stopped is dropped from node 3 when it
 * starts; the other groups are kept. */
START_TEST(t_reconcile_drop)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, "d00", 3), vlen;
	void *val;

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G2), 0);
	put_many(G, "d", 0, 5, "v");
	put_many(G2, "e", 0, 5, "v");
	wait_caught_up(G, 5000);
	wait_caught_up(G2, 5000);
	ck_assert_int_eq(qfs_cell_node_stop(C, 3), 0);
	ck_assert_int_eq(qfs_cell_group_drop(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_drop(C, G), QFS_ENOGROUP);
	ck_assert_int_eq(qfs_cell_group_exists(C, G), 0);
	ck_assert(!listed(G));
	ck_assert(on_disk(3, G)); /* not yet: node 3 is down */

	ck_assert_int_eq(qfs_cell_node_start(C, 3), 0);
	ck_assert_msg(!on_disk(3, G), "node 3 kept the dropped group");
	ck_assert_int_eq(qfs_cell_group_exists(C, G), 0);
	ck_assert(!listed(G));
	{
		char *st = status();
		char head[64];

		snprintf(head, sizeof(head), "group %016" PRIx64, (qfs_group_t)G);
		ck_assert_msg(!strstr(st, head), "dropped group in status:\n%s", st);
		free(st);
	}
	wait_caught_up(G2, 5000);
	/* node 3 alone: G is gone, G2 is whole */
	ck_assert_int_eq(qfs_cell_node_stop(C, 1), 0);
	ck_assert_int_eq(qfs_cell_node_stop(C, 2), 0);
	ck_assert_int_eq(qfs_cell_get(C, G, key, klen, &val, &vlen), QFS_ENOGROUP);
	for (int k = 0; k < 5; k++) {
		char name[16];

		snprintf(name, sizeof(name), "e%02d", k);
		get_ok(G2, name, "v");
	}
}
END_TEST

/* Reconciliation at open: a group dropped while node 3 was stopped, then a
 * close and a reopen: node 3 does not keep the dropped group, and the open
 * does not wait for a leader of it. */
START_TEST(t_drop_then_reopen)
{
	uint64_t t0, ms;

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G2), 0);
	put_many(G, "d", 0, 3, "v");
	put_many(G2, "e", 0, 3, "v");
	wait_caught_up(G, 5000);
	ck_assert_int_eq(qfs_cell_node_stop(C, 3), 0);
	ck_assert_int_eq(qfs_cell_group_drop(C, G), 0);
	cell_close();
	t0 = qfs_clock_mono_ms();
	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	ms = qfs_clock_mono_ms() - t0;
	ck_assert_int_eq(qfs_cell_group_exists(C, G), 0);
	wait_caught_up(G2, 5000);
	ck_assert_msg(!listed(G) && !on_disk(3, G) && ms < 5000,
		      "after a reopen node 3 still hosts the dropped group: listed %d, on disk %d, "
		      "open took %" PRIu64 " ms", listed(G), on_disk(3, G), ms);
}
END_TEST

/* A new group is led by its preferred member (doc/paxos.md section 6) from
 * its very first campaign: the cell creates that member's replica last, so
 * its PREPAREs, sent on its first tick, find the others' replicas, and the
 * rnode runs that tick as the replica is created (not at the end of its I/O
 * thread's idle wait).  The election timeouts are long here (5-6 s): no other
 * member campaigns, and a first campaign lost (PREPAREs sent before the
 * others had the group) would show as a leader of round 2, after 5 s. */
/* Open the cell with slow timers: elections after election_ms (to 1.2x),
 * leases of lease_ms; cold: opts.cold_start. */
static void cell_open_slow(uint32_t election_ms, uint32_t lease_ms, int cold)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = tmpdir, .nodes = 3, .reads = QFS_CELL_READ_STRONG,
				   .timeout_ms = 10000, .paxos = &prm, .cold_start = cold };

	qfs_paxos_params_default(&prm);
	prm.election_min_ms = election_ms;
	prm.election_max_ms = election_ms + election_ms / 5;
	prm.heartbeat_ms = 30;
	prm.lease_ms = lease_ms;
	ck_assert_ptr_null(C);
	ck_assert_int_eq(qfs_cell_open(&o, &C), 0);
	ck_assert_int_eq(qfs_route_attach(C), 0);
}

/* g is led by its preferred member (group % 3 over members 1 2 3) in
 * ballot round `round`, within ms. */
static void preferred_leads(qfs_group_t g, uint64_t round, uint32_t ms)
{
	struct qfs_paxos_config cfg = { .n = 3, .ids = { 1, 2, 3 } };
	uint32_t pref = qfs_paxos_preferred(g, &cfg), l = leader_of(g, ms);
	struct grp s;

	grp_now(g, &s);
	ck_assert_msg(l == pref && s.ballot == (round << 16 | pref),
		      "group %" PRIx64 ": leader %u ballot %" PRIu64 ".%u, want node %u in round %" PRIu64,
		      g, l, s.ballot >> 16, (unsigned)(s.ballot & 0xffff), pref, round);
}

START_TEST(t_new_group_first_campaign)
{
	cell_open_slow(5000, 200, 0);
	/* groups preferring node 3, 1 and 2 */
	for (qfs_group_t g = G; g < G + 3; g++) {
		ck_assert_int_eq(qfs_cell_group_create(C, g), 0);
		preferred_leads(g, 1, 4000);
		put_ok(g, "x", "1");
		get_ok(g, "x", "1");
	}
}
END_TEST

/* A cold start (opts.cold_start: the mount holds the data directory's
 * lock) reopens with each group's preferred member leading at once, in the
 * round after the one before: leases and election timeouts of 30 s, longer
 * than qfs_cell_open's own wait for leaders (15 s), would leave every
 * group without a leader at open's return otherwise (the restart block). */
START_TEST(t_cold_start_elects_at_once)
{
	cell_open_slow(30000, 30000, 0);
	for (qfs_group_t g = G; g < G + 3; g++) {
		ck_assert_int_eq(qfs_cell_group_create(C, g), 0); /* (a new group: round 1) */
		put_ok(g, "x", "1");
	}
	cell_close();
	cell_open_slow(30000, 30000, 1);
	for (qfs_group_t g = G; g < G + 3; g++) {
		preferred_leads(g, 2, 2000);
		get_ok(g, "x", "1");
		put_ok(g, "y", "2");
	}
}
END_TEST

/* Two blank nodes (their disks replaced) next to one good replica: nothing
 * is dropped for lack of copies elsewhere, only tombstones drop replicas.
 * The good replica of G stays on node 1 with its items (no quorum can form
 * for it, so it is read alone, with eventual reads, after the two others
 * are stopped). */
START_TEST(t_blank_nodes_keep_last_copy)
{
	char path[512];

	/* nothing here is about timeouts: the puts get the default 10 s (the
	 * first one waits for the new group's election and a few fsync
	 * rounds; it failed with ETIMEDOUT at 2 s on a loaded machine while
	 * the election of a new group came up to 1 s late:
	 * t_new_group_first_campaign), and the eventual reads after the
	 * reopen do not wait for a leader */
	cell_open(QFS_CELL_READ_EVENTUAL, 10000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_many(G, "b", 0, 5, "v");
	wait_caught_up(G, 5000);
	cell_close();
	for (uint32_t id = 2; id <= 3; id++) {
		snprintf(path, sizeof(path), "%s/n%u", tmpdir, id);
		ck_assert_int_eq(nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
	}
	cell_open(QFS_CELL_READ_EVENTUAL, 10000, 0);
	ck_assert_msg(on_disk(1, G), "the last good replica of G was dropped from node 1");
	ck_assert_int_eq(qfs_cell_node_stop(C, 2), 0);
	ck_assert_int_eq(qfs_cell_node_stop(C, 3), 0);
	ck_assert_int_eq(item_count(G), 5);
	get_ok(G, "b00", "v");
	ck_assert_int_eq(qfs_cell_node_start(C, 2), 0);
	ck_assert_int_eq(qfs_cell_node_start(C, 3), 0);
	ck_assert_msg(on_disk(1, G), "the last good replica of G was dropped when the others started");
}
END_TEST

/* Node 3 stopped, group dropped, node 1 stopped, node 3 started: the
 * tombstone of the drop makes node 3 drop its copy. */
START_TEST(t_drop_then_partial_start)
{
	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_many(G, "d", 0, 3, "v");
	wait_caught_up(G, 5000);
	ck_assert_int_eq(qfs_cell_node_stop(C, 3), 0);
	ck_assert_int_eq(qfs_cell_group_drop(C, G), 0);
	ck_assert_int_eq(qfs_cell_node_stop(C, 1), 0);
	ck_assert_int_eq(qfs_cell_node_start(C, 3), 0);
	ck_assert_int_eq(qfs_cell_node_start(C, 1), 0);
	ck_assert_int_eq(qfs_cell_group_exists(C, G), 0);
	ck_assert_msg(!listed(G) && !on_disk(3, G),
		      "node 3 keeps the dropped group: listed %d, on disk %d", listed(G), on_disk(3, G));
}
END_TEST

/* A pinned group (opts.pinned; the mount pins the meta group) is never
 * dropped for good: its drop writes no tombstone, so a node that was
 * stopped during the drop keeps its replica when it starts, while a
 * plain group dropped the same way goes.  The open refuses too many pins. */
START_TEST(t_pinned_group_kept)
{
	const qfs_group_t pins[] = { 0x7, G + 1 };
	qfs_group_t got[4] = { 0 };
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = tmpdir, .nodes = 3, .reads = QFS_CELL_READ_EVENTUAL,
				   .timeout_ms = 5000, .paxos = &prm, .pinned = pins, .npinned = 2 };
	struct qfs_cell *bad = NULL;
	char path[512];
	FILE *f;

	qfs_paxos_params_default(&prm);
	prm.election_min_ms = 150;
	prm.election_max_ms = 300;
	prm.heartbeat_ms = 30;
	prm.lease_ms = 200;
	o.npinned = QFS_CELL_PINNED_MAX + 1;
	ck_assert_int_eq(qfs_cell_open(&o, &bad), -EINVAL);
	o.npinned = 1;
	o.pinned = NULL;
	ck_assert_int_eq(qfs_cell_open(&o, &bad), -EINVAL);
	ck_assert_ptr_null(bad);
	o.pinned = pins;
	o.npinned = 2;
	ck_assert_int_eq(qfs_cell_open(&o, &C), 0);
	ck_assert_int_eq(qfs_route_attach(C), 0);
	ck_assert_uint_eq(qfs_cell_pinned(C, got, 1), 2);
	ck_assert_uint_eq(got[0], 0x7);
	ck_assert_uint_eq(got[1], 0);
	ck_assert_uint_eq(qfs_cell_pinned(C, got, 4), 2);
	ck_assert_uint_eq(got[1], G + 1);

	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G + 1), 0);
	put_many(G, "p", 0, 3, "v");
	put_many(G + 1, "p", 0, 3, "v");
	wait_caught_up(G, 5000);
	wait_caught_up(G + 1, 5000);
	ck_assert_int_eq(qfs_cell_node_stop(C, 3), 0);
	ck_assert_int_eq(qfs_cell_group_drop(C, G), 0);
	ck_assert_int_eq(qfs_cell_group_drop(C, G + 1), 0);
	/* the tombstones name G, not the pinned group */
	snprintf(path, sizeof(path), "%s/DROPPED", tmpdir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	{
		char line[64];
		int g = 0, pin = 0;

		while (fgets(line, sizeof(line), f)) {
			g += strtoull(line, NULL, 16) == G;
			pin += strtoull(line, NULL, 16) == G + 1;
		}
		fclose(f);
		ck_assert_int_eq(g, 1);
		ck_assert_int_eq(pin, 0);
	}
	ck_assert_int_eq(qfs_cell_node_start(C, 3), 0);
	ck_assert_msg(!on_disk(3, G), "node 3 keeps the dropped group");
	ck_assert_msg(on_disk(3, G + 1), "node 3 dropped its replica of a pinned group");
}
END_TEST

/* Release with node 2 stopped: nodes 1 and 3 free what everyone applied
 * (segment 1 goes) but keep what node 2 still needs; node 2 restarts and
 * catches up from their logs (there is no snapshot transfer). */
START_TEST(t_wal_release)
{
	char dir[512], want[512];
	qfs_lsn_t applied;
	struct grp s;
	uint64_t a2;
	int n0[3] = { 0, 0, 0 };

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 50);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	for (int k = 0; k < 20; k++) {
		char name[16];

		if (k % 5 == 0)
			for (uint32_t id = 1; id <= 3; id++)
				n0[id - 1] = seg_count(id, G);
		snprintf(name, sizeof(name), "w%02d", k);
		put_ok(G, name, "v");
		if (k % 5 == 4) {
			usleep(120000); /* the open segment ages out: sealed */
			for (uint32_t id = 1; id <= 3; id++)
				wait_segs(id, G, n0[id - 1]);
		}
	}
	wait_caught_up(G, 5000);
	ck_assert_int_eq(qfs_cell_wal_info(C, G, dir, sizeof(dir), &applied), 0);
	snprintf(want, sizeof(want), "%s/n1/wal/%016" PRIx64, tmpdir, (qfs_group_t)G);
	ck_assert_str_eq(dir, want);
	ck_assert_uint_ge(applied, 20);
	ck_assert_int_eq(qfs_cell_wal_info(C, 0x999, dir, sizeof(dir), &applied), QFS_ENOGROUP);

	ck_assert_int_eq(qfs_cell_node_stop(C, 2), 0);
	grp_now(G, &s);
	a2 = s.rep[1].applied; /* status shows node 2's last known applied LSN */
	ck_assert_uint_ge(a2, 20);
	for (int k = 20; k < 50; k++) {
		char name[16];

		if (k % 5 == 0)
			for (uint32_t id = 1; id <= 3; id += 2)
				n0[id - 1] = seg_count(id, G);
		snprintf(name, sizeof(name), "w%02d", k);
		put_ok(G, name, "v");
		if (k % 5 == 4) {
			usleep(120000);
			for (uint32_t id = 1; id <= 3; id += 2)
				wait_segs(id, G, n0[id - 1]);
		}
	}
	for (uint32_t id = 1; id <= 3; id += 2)
		ck_assert_msg(seg_exists(id, G, 1), "node %u: no segment 1 before the release", id);
	ck_assert_int_eq(qfs_cell_wal_release(C, G, UINT64_MAX), 0);
	/* something below node 2's point was released... */
	for (uint32_t id = 1; id <= 3; id += 2)
		ck_assert_msg(!seg_exists(id, G, 1), "node %u: segment 1 not released", id);
	/* ...and node 2 still finds everything past it */
	ck_assert_int_eq(qfs_cell_node_start(C, 2), 0);
	wait_caught_up(G, 8000);
	check_alone(2, G, "w", 50, "v");
	/* with every node up the release may go further; nothing breaks */
	ck_assert_int_eq(qfs_cell_wal_release(C, G, UINT64_MAX), 0);
	put_ok(G, "w50", "v");
	wait_caught_up(G, 5000);
	/* node 1 stopped: the archiver's source is gone */
	ck_assert_int_eq(qfs_cell_node_stop(C, 1), 0);
	ck_assert_int_eq(qfs_cell_wal_info(C, G, dir, sizeof(dir), &applied), QFS_ESTOPPED);
	ck_assert_int_eq(qfs_cell_node_start(C, 1), 0);
}
END_TEST

/* Close with node 2 stopped, reopen: all three come up, node 2 catches up
 * and nothing acknowledged is lost. */
START_TEST(t_close_stopped_reopen)
{
	char *st, line[300];

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_many(G, "c", 0, 10, "v");
	ck_assert_int_eq(qfs_cell_node_stop(C, 2), 0);
	put_many(G, "c", 10, 20, "v");
	ck_assert_int_eq(qfs_cell_group_create(C, G2), 0);
	put_many(G2, "c", 0, 5, "x");
	cell_close();

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	st = nodes_text();
	for (uint32_t id = 1; id <= 3; id++) {
		snprintf(line, sizeof(line), "node %u az %c state up dir %s/n%u\n", id, 'a' + (int)id - 1,
			 tmpdir, id);
		ck_assert_msg(strstr(st, line), "no '%s' in:\n%s", line, st);
	}
	free(st);
	ck_assert_int_eq(qfs_cell_group_exists(C, G2), 1);
	wait_caught_up(G, 5000);
	wait_caught_up(G2, 5000);
	check_alone(2, G, "c", 20, "v");
	check_alone(2, G2, "c", 5, "x");
	put_ok(G, "c20", "v");
}
END_TEST

static void put_file(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_file(const char *text, const char *fmt, ...)
{
	char path[512];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* A node that cannot be opened (its directory is a file) leaves the cell
 * running on two, status says why; the keeper starts it once it can be
 * opened (backoff from 1 s) and it gets the group created meanwhile.  Two
 * such nodes: open fails with the first node's error, *out untouched. */
START_TEST(t_open_failed_node)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = tmpdir, .nodes = 3, .paxos = &prm };
	struct qfs_cell *c = (struct qfs_cell *)&o;
	char path[512], *st, line[600];
	uint64_t end, t0;

	qfs_paxos_params_default(&prm);
	for (int id = 1; id <= 3; id++) {
		snprintf(path, sizeof(path), "%s/n%d", tmpdir, id);
		ck_assert_int_eq(mkdir(path, 0755), 0);
	}
	put_file("not-quorumfs 7\n", "%s/n2/FORMAT", tmpdir);
	put_file("not-quorumfs 7\n", "%s/n3/FORMAT", tmpdir);
	ck_assert_int_eq(qfs_cell_open(&o, &c), QFS_EFORMAT);
	ck_assert_ptr_eq(c, (struct qfs_cell *)&o); /* untouched */
	snprintf(path, sizeof(path), "%s/n3/FORMAT", tmpdir);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/n2/FORMAT", tmpdir);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/n2", tmpdir);
	ck_assert_int_eq(rmdir(path), 0);
	put_file("a file where node 2's directory should be\n", "%s", path);

	cell_open(QFS_CELL_READ_STRONG, 5000, 0);
	st = nodes_text();
	snprintf(line, sizeof(line), "node 2 az b state down dir %s/n2 why open-failed %s\n", tmpdir,
		 qfs_strerror(-ENOTDIR));
	ck_assert_msg(strstr(st, line), "no '%s' in:\n%s", line, st);
	free(st);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_many(G, "o", 0, 5, "v");
	ck_assert_int_eq(unlink(path), 0);
	t0 = qfs_clock_mono_ms();
	end = t0 + 8000;
	snprintf(line, sizeof(line), "node 2 az b state up dir %s/n2\n", tmpdir);
	for (;;) {
		int up;

		st = nodes_text();
		up = strstr(st, line) != NULL;
		free(st);
		if (up)
			break;
		ck_assert_msg(qfs_clock_mono_ms() < end, "the keeper never started node 2");
		usleep(20000);
	}
	fprintf(stderr, "check_cell: keeper started node 2 %" PRIu64 " ms after its directory healed\n",
		qfs_clock_mono_ms() - t0);
	wait_caught_up(G, 5000);
	ck_assert(on_disk(2, G));
}
END_TEST

/* qfs_cell_get_at / _scan_at of a strong cell read a replica only while
 * it leads with its lease (checked on the replica that reads, as the
 * cluster's nodes do): the route's view and its read are two calls, and a
 * node restarted between them is a fresh replica without the lease (a
 * stale read); a follower answers -EREMOTE with the leader. */
START_TEST(t_strong_read_at_needs_lease)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, "s00", 3), vlen = 0;
	uint64_t end;
	void *val = NULL;
	uint32_t l, f, hint = 0;
	int more = 1, n = 0, rc;

	cell_open(QFS_CELL_READ_STRONG, 5000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_many(G, "s", 0, 2, "v");
	wait_caught_up(G, 5000);
	/* a follower refuses (asked again should the leader move meanwhile
	 * on this loaded machine: a new leader reads) */
	end = qfs_clock_mono_ms() + 5000;
	do {
		l = qfs_cell_leader_node(C, G);
		ck_assert_uint_ne(l, 0);
		f = l % 3 + 1;
		rc = qfs_cell_get_at(C, f, G, key, klen, 1000, &val, &vlen, &hint);
		if (rc == 0)
			free(val);
	} while (rc == 0 && qfs_clock_mono_ms() < end);
	ck_assert_msg(rc == -EREMOTE, "strong get_at a follower: %s", qfs_strerror(rc));
	do {
		l = qfs_cell_leader_node(C, G);
		f = l % 3 + 1;
		n = 0;
		more = 1;
		rc = qfs_cell_scan_at(C, f, G, NULL, 0, NULL, 0, 1000, count_cb, &n, &more, NULL,
				      &hint);
	} while (rc == 0 && qfs_clock_mono_ms() < end);
	ck_assert_msg(rc == -EREMOTE, "strong scan_at a follower: %s", qfs_strerror(rc));
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(more, 0);
	/* the leader reads (its lease may lapse a moment: retried) */
	end = qfs_clock_mono_ms() + 5000;
	while ((l = qfs_cell_leader_node(C, G)) == 0 ||
	       ((rc = qfs_cell_get_at(C, l, G, key, klen, 1000, &val, &vlen, &hint)) == -EREMOTE &&
		qfs_clock_mono_ms() < end)) {
		ck_assert(qfs_clock_mono_ms() < end);
		usleep(10000);
	}
	ck_assert_msg(rc == 0, "strong get_at the leader: %s", qfs_strerror(rc));
	ck_assert_uint_eq(vlen, 1);
	free(val);
	/* the same for the pinned read: the leader's value held (released
	 * once), a follower's refusal and an unknown node hold nothing */
	struct qfs_val pv = { 0 };
	while ((l = qfs_cell_leader_node(C, G)) == 0 ||
	       ((rc = qfs_cell_get_at_val(C, l, G, key, klen, 1000, &pv, &hint)) == -EREMOTE &&
		qfs_clock_mono_ms() < end)) {
		ck_assert(qfs_clock_mono_ms() < end);
		usleep(10000);
	}
	ck_assert_msg(rc == 0, "strong get_at_val the leader: %s", qfs_strerror(rc));
	ck_assert(qfs_val_held(&pv));
	ck_assert_uint_eq(pv.len, 1);
	ck_assert_mem_eq(pv.data, "v", 1);
	qfs_val_release(&pv);
	ck_assert(!qfs_val_held(&pv));
	rc = qfs_cell_get_at_val(C, l % 3 + 1, G, key, klen, 1000, &pv, &hint);
	ck_assert(rc == -EREMOTE || rc == 0); /* 0: the leader moved there meanwhile */
	if (rc == 0)
		qfs_val_release(&pv);
	ck_assert(!qfs_val_held(&pv));
	ck_assert_int_eq(qfs_cell_get_at_val(C, 99, G, key, klen, 1000, &pv, &hint), -EINVAL);
	ck_assert(!qfs_val_held(&pv));
}
END_TEST

/* A value held by qfs_cell_get_at_val outlives the node it came from: the
 * node's users drain at a stop (node_put) but a READ still holds its
 * value until fuse_reply_iov, so a stop by the keeper or the control file
 * closes that replica's RocksDB under it.  The value read here comes from
 * an SST block in the block cache (the nodes were stopped, which flushes,
 * and started again), the case where RocksDB's pinned slice holds a
 * cache handle, not a copy: its bytes stay intact after the stop and the
 * release after the close is clean (the cell's shared cache outlives its
 * stores; ASan build: no use after free). */
START_TEST(t_pinned_value_outlives_node_stop)
{
	char big[200];
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, DIR_INO, "p03", 3);
	struct qfs_val pv = { 0 };
	uint32_t l = 0, hint = 0;
	uint64_t end;
	int rc = -EREMOTE;

	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cell_open(QFS_CELL_READ_STRONG, 5000, 0);
	ck_assert_int_eq(qfs_cell_group_create(C, G), 0);
	put_many(G, "p", 0, 8, big);
	wait_caught_up(G, 5000);
	for (uint32_t k = 1; k <= 3; k++) /* flushed to SSTs */
		ck_assert_int_eq(qfs_cell_node_stop(C, k), 0);
	for (uint32_t k = 1; k <= 3; k++)
		ck_assert_int_eq(qfs_cell_node_start(C, k), 0);
	end = qfs_clock_mono_ms() + 10000;
	while ((l = qfs_cell_leader_node(C, G)) == 0 ||
	       (rc = qfs_cell_get_at_val(C, l, G, key, klen, 1000, &pv, &hint)) != 0) {
		ck_assert_msg(qfs_clock_mono_ms() < end, "pinned read after restart: %s", qfs_strerror(rc));
		usleep(10000);
	}
	ck_assert(qfs_val_held(&pv));
	ck_assert_uint_eq(pv.len, strlen(big));
	ck_assert_mem_eq(pv.data, big, pv.len);
	/* the node stops (its store closed) while the value is held */
	ck_assert_int_eq(qfs_cell_node_stop(C, l), 0);
	ck_assert_mem_eq(pv.data, big, pv.len);
	qfs_val_release(&pv);
	ck_assert(!qfs_val_held(&pv));
	ck_assert_int_eq(qfs_cell_node_start(C, l), 0);
	get_ok(G, "p03", big);
}
END_TEST

/* A routing hook that records whether it was released while the keeper
 * was inside its node_up (route.c's node_up touches the route's mutex:
 * a release before the keeper stopped is a use after free). */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int in_up;             /* the keeper entered node_up */
	int released;          /* release was called */
	int released_in_up;    /* ... while node_up ran */
} HK = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static void hk_node_up(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&HK.mu);
	HK.in_up = 1;
	pthread_cond_broadcast(&HK.cv);
	/* stay a while: a close that releases the hook now is caught */
	qfs_clock_deadline(CLOCK_REALTIME, 1000, &ts);
	while (!HK.released && pthread_cond_timedwait(&HK.cv, &HK.mu, &ts) == 0)
		;
	if (HK.released)
		HK.released_in_up = 1;
	pthread_mutex_unlock(&HK.mu);
}

static void hk_release(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&HK.mu);
	HK.released = 1;
	pthread_cond_broadcast(&HK.cv);
	pthread_mutex_unlock(&HK.mu);
}

static const struct qfs_cell_route hk_route = { .release = hk_release, .node_up = hk_node_up };

/* qfs_cell_close while the keeper starts a node: the routing hook is
 * released only after the keeper stopped (it calls node_up when a node
 * comes back), never while it runs. */
START_TEST(t_close_while_keeper_starts)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = tmpdir, .nodes = 3, .paxos = &prm };
	char path[512];
	struct timespec ts;
	int rc = 0;

	qfs_paxos_params_default(&prm);
	snprintf(path, sizeof(path), "%s/n2", tmpdir);
	put_file("a file where node 2's directory should be\n", "%s", path);
	ck_assert_int_eq(qfs_cell_open(&o, &C), 0);
	qfs_cell_set_route(C, &hk_route, NULL);
	ck_assert_int_eq(unlink(path), 0);
	pthread_mutex_lock(&HK.mu);
	qfs_clock_deadline(CLOCK_REALTIME, 10000, &ts);
	while (!HK.in_up && rc == 0)
		rc = pthread_cond_timedwait(&HK.cv, &HK.mu, &ts);
	pthread_mutex_unlock(&HK.mu);
	ck_assert_msg(HK.in_up, "the keeper never started node 2");
	cell_close();
	ck_assert_int_eq(HK.released, 1);
	ck_assert_msg(!HK.released_in_up, "the routing hook was released while the keeper used it");
}
END_TEST

/* A node whose RocksDB cannot be opened (manifest garbled) while the cell
 * holds several groups: the keeper moves its directory aside and starts it
 * empty (node_heal), and every group catches up on it.  node_heal adds one
 * heal record per group while it holds the node's own record: this test
 * under valgrind or ASan caught it writing through the stale pointer after
 * the array grew. */
#define NHEAL_GROUPS 12
START_TEST(t_corrupt_store_node_rebuilt)
{
	char path[600], cmd[900];
	uint64_t end;

	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	for (int i = 0; i < NHEAL_GROUPS; i++) {
		ck_assert_int_eq(qfs_cell_group_create(C, G + (qfs_group_t)i), 0);
		put_many(G + (qfs_group_t)i, "h", 0, 3, "v");
	}
	for (int i = 0; i < NHEAL_GROUPS; i++)
		wait_caught_up(G + (qfs_group_t)i, 10000);
	cell_close();
	/* garble every RocksDB manifest of node 2 (as heal.sh does) */
	snprintf(cmd, sizeof(cmd),
		 "for m in %s/n2/store/MANIFEST-*; do python3 -c 'import sys\n"
		 "p = sys.argv[1]; b = bytearray(open(p, \"rb\").read())\n"
		 "for i in range(10, min(len(b), 200)): b[i] ^= 0x55\n"
		 "open(p, \"r+b\").write(b)' \"$m\" || exit 1; done", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	cell_open(QFS_CELL_READ_EVENTUAL, 5000, 0);
	snprintf(path, sizeof(path), "%s/n2", tmpdir);
	end = qfs_clock_mono_ms() + 40000;
	for (;;) {
		char *st = nodes_text();
		char line[700];
		int up;

		snprintf(line, sizeof(line), "node 2 az b state up dir %s\n", path);
		up = strstr(st, line) != NULL;
		if (!up && qfs_clock_mono_ms() >= end)
			ck_abort_msg("node 2 with a corrupt store was not rebuilt:\n%s", st);
		free(st);
		if (up)
			break;
		usleep(50000);
	}
	for (int i = 0; i < NHEAL_GROUPS; i++) {
		wait_caught_up(G + (qfs_group_t)i, 20000);
		ck_assert(on_disk(2, G + (qfs_group_t)i));
	}
	check_alone(2, G, "h", 3, "v");
	check_alone(2, G + NHEAL_GROUPS - 1, "h", 3, "v");
}
END_TEST

static Suite *cell_suite(void)
{
	Suite *s = suite_create("cell");
	TCase *tc = tcase_create("cell"), *tk;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_basic);
	tcase_add_test(tc, t_propose_unknown_group);
	tcase_add_test(tc, t_stop_start_errors);
	tcase_add_test(tc, t_node_up_ends_short_waits);
	tcase_add_test(tc, t_leader_failover);
	tcase_add_loop_test(tc, t_two_down, 0, 2);
	tcase_add_test(tc, t_reconcile_create);
	tcase_add_test(tc, t_reconcile_drop);
	tcase_add_test(tc, t_drop_then_reopen);
	tcase_add_test(tc, t_drop_then_partial_start);
	tcase_add_test(tc, t_pinned_group_kept);
	tcase_add_test(tc, t_blank_nodes_keep_last_copy);
	tcase_add_test(tc, t_new_group_first_campaign);
	tcase_add_test(tc, t_cold_start_elects_at_once);
	tcase_add_test(tc, t_wal_release);
	tcase_add_test(tc, t_close_stopped_reopen);
	tcase_add_test(tc, t_open_failed_node);
	tcase_add_test(tc, t_corrupt_store_node_rebuilt);
	suite_add_tcase(s, tc);
	tk = tcase_create("replica");
	tcase_add_checked_fixture(tk, setup, teardown);
	tcase_set_timeout(tk, 60);
	tcase_add_test(tk, t_close_while_keeper_starts);
	tcase_add_test(tk, t_strong_read_at_needs_lease);
	tcase_add_test(tk, t_pinned_value_outlives_node_stop);
	suite_add_tcase(s, tk);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	strcpy(basedir, "/tmp/check_cell.XXXXXX");
	if (!mkdtemp(basedir)) {
		perror("check_cell: mkdtemp");
		return EXIT_FAILURE;
	}
	sr = srunner_create(cell_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(basedir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
