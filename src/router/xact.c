/*
 * xact.c - two-phase commit across groups: the coordinator's run, the
 * recovery of prepared txns, and an ordinary propose that waits out locks
 * (contracts in xact.h, protocol and crash cases in doc/xact.md).
 *
 * A txid is be64(coordinator group) be64(id), id = (wall-clock ms << 20) |
 * a 20-bit counter that starts at a random value in each process: unique
 * across restarts (the clock moves on) and across routers (the counter),
 * and it carries its creation time, which bounds how long a recovery must
 * keep an abort decision (xact.h qfs_xact_abort_keep_ms).
 *
 * The coordinator keeps no state of its own: everything a recovery needs is
 * in the groups (prepared records) and in the coordinator group (the
 * decision), so a crash of the coordinator's process loses nothing.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bigbuf.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "node/cell.h"
#include "router/xact.h"

#define ID_COUNTER_BITS 20
#define BACKOFF_MAX_MS 64

uint32_t qfs_xact_abort_keep_ms = QFS_XACT_ABORT_KEEP_MS;
int qfs_xact_test_stop; /* test hook, see xact.h */
int qfs_xact_test_stale_decisions; /* test hook, see xact.h */
uint64_t (*qfs_xact_test_wall_ms)(void); /* test hook, see xact.h */

static struct qfs_xact_stat stats; /* fields atomic */

#define STAT_INC(f) __atomic_add_fetch(&stats.f, 1, __ATOMIC_RELAXED)

/* See xact.h. */
void qfs_xact_stat(struct qfs_xact_stat *out)
{
	out->runs = __atomic_load_n(&stats.runs, __ATOMIC_RELAXED);
	out->committed = __atomic_load_n(&stats.committed, __ATOMIC_RELAXED);
	out->retries = __atomic_load_n(&stats.retries, __ATOMIC_RELAXED);
	out->busy_waits = __atomic_load_n(&stats.busy_waits, __ATOMIC_RELAXED);
	out->rec_commits = __atomic_load_n(&stats.rec_commits, __ATOMIC_RELAXED);
	out->rec_aborts = __atomic_load_n(&stats.rec_aborts, __ATOMIC_RELAXED);
}

static pthread_once_t id_once = PTHREAD_ONCE_INIT;
static uint64_t id_counter; /* atomic */

static uint64_t wall_ms(void)
{
	struct timespec ts;

	if (qfs_xact_test_wall_ms)
		return qfs_xact_test_wall_ms();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void id_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	id_counter = ((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 7)) * 0x9e3779b97f4a7c15ull >> 44;
}

static void txid_new(uint8_t txid[QFS_TXID_LEN], qfs_group_t coord)
{
	pthread_once(&id_once, id_seed);
	uint64_t n = __atomic_fetch_add(&id_counter, 1, __ATOMIC_RELAXED);
	uint64_t id = (wall_ms() << ID_COUNTER_BITS) | (n & ((1u << ID_COUNTER_BITS) - 1));
	qfs_be64_put(txid, coord);
	qfs_be64_put(txid + 8, id);
}

/* Age of txid in ms by the wall clock (0 if it seems to come from the future). */
static uint64_t txid_age_ms(const uint8_t *txid)
{
	uint64_t born = qfs_be64_get(txid + 8) >> ID_COUNTER_BITS, now = wall_ms();
	return now > born ? now - born : 0;
}

/* Sleep a random time of up to 2^attempt ms (at most BACKOFF_MAX_MS). */
static void backoff(unsigned attempt, unsigned *seed)
{
	unsigned cap = attempt >= 6 ? BACKOFF_MAX_MS : 1u << attempt;
	struct timespec ts = { 0, (long)(1 + (unsigned)rand_r(seed) % cap) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Propose one 2PC op (kind, txid, val) on group. */
static int propose_op(struct qfs_cell *c, qfs_group_t group, enum qfs_op_kind kind,
		      const uint8_t *txid, const void *val, size_t val_len, int *result)
{
	struct qfs_txn t;
	struct qfs_buf b;
	int rc;

	qfs_txn_init(&t);
	qfs_buf_init(&b);
	struct qfs_op *op = qfs_txn_add(&t, kind);
	if (!op) {
		rc = -ENOMEM;
		goto out;
	}
	op->key = txid;
	op->key_len = QFS_TXID_LEN;
	op->val = val;
	op->val_len = (uint32_t)val_len;
	qfs_txn_encode(&t, &b);
	if (b.err) {
		rc = -ENOMEM;
		goto out;
	}
	rc = qfs_cell_propose(c, group, b.data, b.len, result);
out:
	qfs_buf_close(&b);
	qfs_txn_close(&t);
	return rc;
}

static int decide(struct qfs_cell *c, qfs_group_t coord, const uint8_t *txid, uint8_t d, int *result)
{
	return propose_op(c, coord, QFS_OP_DECIDE, txid, &d, 1, result);
}

/* One proposal of a phase, run on its own thread. */
struct prop {
	struct qfs_cell *c;
	qfs_group_t group;
	enum qfs_op_kind kind;
	const uint8_t *txid;
	const void *val;
	size_t val_len;
	int rc;          /* propose_op's return */
	int res;         /* the op's result when rc == 0 */
	pthread_t th;
	int started;     /* th runs it */
};

static void *prop_main(void *arg)
{
	struct prop *p = arg;
	p->res = 0;
	p->rc = propose_op(p->c, p->group, p->kind, p->txid, p->val, p->val_len, &p->res);
	return NULL;
}

/* Run the proposals p[0, m) at once (one round for the phase): p[0] on
 * this thread, the others on a thread each (one that cannot start runs
 * here afterwards).  Returns when all are done. */
static void phase(struct prop *p, size_t m)
{
	for (size_t i = 1; i < m; i++)
		p[i].started = pthread_create(&p[i].th, NULL, prop_main, &p[i]) == 0;
	if (m)
		prop_main(&p[0]);
	for (size_t i = 1; i < m; i++) {
		if (p[i].started)
			pthread_join(p[i].th, NULL);
		else
			prop_main(&p[i]);
	}
}

/* Number of proposals of a phase of n that the test hook lets run when
 * the phase starts after step `done` (n if the hook is off or later). */
static size_t hook_cut(int done, size_t n)
{
	if (qfs_xact_test_stop <= 0 || (size_t)qfs_xact_test_stop <= (size_t)done)
		return n;
	size_t left = (size_t)qfs_xact_test_stop - (size_t)done;
	return left < n ? left : n;
}

/* Abort, at once, the parts of p whose PREPARE may have left a record
 * (rc != 0: unknown; res == 0: prepared).  Best effort: a part that
 * cannot be aborted is left to recovery. */
static void abort_prepared(struct prop *p, size_t n)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i].rc == 0 && p[i].res != 0)
			continue;
		p[m] = p[i];
		p[m].kind = QFS_OP_ABORT;
		p[m].val = NULL;
		p[m].val_len = 0;
		m++;
	}
	phase(p, m);
	for (size_t i = 0; i < m; i++)
		if (p[i].rc)
			QFS_LOG(QFS_LOG_WARN, "xact abort failed group=%016llx txid=%016llx err=\"%s\"",
				(unsigned long long)p[i].group,
				(unsigned long long)qfs_be64_get(p[i].txid + 8), qfs_strerror(p[i].rc));
}

/* One attempt with a fresh txid.  0 with *result (-EBUSY and -EALREADY:
 * nothing applied, try again), or a propose error / -ECANCELED (hook). */
static int attempt(struct qfs_cell *c, qfs_group_t coord, const struct qfs_xact_part *parts,
		   size_t n, const struct qfs_buf *enc, struct prop *p, uint64_t t0_ms, int *result)
{
	uint8_t txid[QFS_TXID_LEN];
	size_t m;
	int rc = 0, res = 0;

	txid_new(txid, coord);
	/* 1. PREPARE every part (steps 1..n) */
	for (size_t i = 0; i < n; i++)
		p[i] = (struct prop){ .c = c, .group = parts[i].group, .kind = QFS_OP_PREPARE,
				      .txid = txid, .val = enc[i].data, .val_len = enc[i].len };
	m = hook_cut(0, n);
	phase(p, m);
	if (m < n || qfs_xact_test_stop == (int)n)
		return -ECANCELED;
	for (size_t i = 0; i < n && !rc; i++)
		rc = p[i].rc;
	if (rc) {
		/* unknown whether that part is prepared: record the abort so
		 * that no one commits it, undo what we can; recovery finishes
		 * the rest */
		int r2 = 0;
		if (decide(c, coord, txid, QFS_DECIDE_ABORT, &r2) == 0 && r2 == 0)
			abort_prepared(p, n);
		return rc;
	}
	for (size_t i = 0; i < n && !res; i++)
		res = p[i].res;
	if (res) {
		abort_prepared(p, n); /* never decided: no decision to record */
		*result = res;
		return 0;
	}
	if (qfs_xact_abort_keep_ms &&
	    (qfs_clock_mono_ms() - t0_ms > qfs_xact_abort_keep_ms / 2 ||
	     txid_age_ms(txid) > qfs_xact_abort_keep_ms / 2)) {
		/* too old to commit: a recovery may have aborted it and
		 * forgotten.  Recoveries judge a txid's age by the wall clock
		 * (txid_age_ms), so that clock is asked too: a step of it
		 * (NTP, a resumed VM) must not let 'C' follow a forgotten 'A' */
		abort_prepared(p, n);
		return -ETIMEDOUT;
	}
	/* 2. the commit point (step n+1) */
	rc = decide(c, coord, txid, QFS_DECIDE_COMMIT, &res);
	if (rc)
		return rc; /* recorded or not: recovery reads the decision */
	if (qfs_xact_test_stop == (int)n + 1)
		return -ECANCELED;
	if (res) {
		/* -EALREADY: a recovery decided 'A' first and aborts the parts */
		abort_prepared(p, n);
		*result = res;
		return 0;
	}
	/* 3. COMMIT every part (steps n+2..2n+1) */
	for (size_t i = 0; i < n; i++)
		p[i] = (struct prop){ .c = c, .group = parts[i].group, .kind = QFS_OP_COMMIT,
				      .txid = txid };
	m = hook_cut((int)n + 1, n);
	phase(p, m);
	if (m < n || qfs_xact_test_stop == 2 * (int)n + 1)
		return -ECANCELED;
	for (size_t i = 0; i < n; i++)
		if (p[i].rc)
			return p[i].rc; /* committed by decision: recovery makes it visible */
	/* 4. forget (step 2n+2) */
	rc = decide(c, coord, txid, QFS_DECIDE_FORGET, &res);
	if (rc)
		QFS_LOG(QFS_LOG_WARN, "xact forget failed group=%016llx txid=%016llx err=\"%s\"",
			(unsigned long long)coord, (unsigned long long)qfs_be64_get(txid + 8),
			qfs_strerror(rc));
	if (qfs_xact_test_stop == 2 * (int)n + 2)
		return -ECANCELED;
	*result = 0;
	return 0; /* a decision left by a failed forget goes at the next recovery */
}

/* See xact.h. */
int qfs_xact_run(struct qfs_cell *c, qfs_group_t coord, const struct qfs_xact_part *parts,
		 size_t n, int *result)
{
	return qfs_xact_run_wait(c, coord, parts, n, 0, result);
}

/* See xact.h. */
int qfs_xact_run_wait(struct qfs_cell *c, qfs_group_t coord, const struct qfs_xact_part *parts,
		      size_t n, uint32_t busy_ms, int *result)
{
	uint64_t t0 = qfs_clock_mono_ms(), budget = busy_ms ? busy_ms : qfs_cell_timeout_ms(c);
	unsigned seed = (unsigned)(t0 ^ (uintptr_t)parts);
	struct qfs_buf *enc;
	struct prop *p;
	int rc = 0, res = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			if (parts[j].group == parts[i].group)
				return -EINVAL;
		for (uint32_t k = 0; k < parts[i].txn->nops; k++)
			if (qfs_op_is_2pc(parts[i].txn->ops[k].kind))
				return -EINVAL;
	}
	enc = calloc(n, sizeof(*enc));
	p = calloc(n, sizeof(*p));
	if (!enc || !p) {
		free(enc);
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		qfs_buf_init(&enc[i]);
		qfs_txn_encode(parts[i].txn, &enc[i]);
		if (enc[i].err)
			rc = -ENOMEM;
	}
	if (!rc)
		STAT_INC(runs);
	for (unsigned a = 0; !rc; a++) {
		rc = attempt(c, coord, parts, n, enc, p, t0, &res);
		if (rc || (res != -EBUSY && res != -EALREADY))
			break;
		if (qfs_clock_mono_ms() - t0 >= budget) {
			res = -EBUSY; /* locked all along: nothing applied */
			break;
		}
		STAT_INC(retries);
		backoff(a, &seed);
	}
	if (!rc && res == 0)
		STAT_INC(committed);
	for (size_t i = 0; i < n; i++)
		qfs_buf_close(&enc[i]);
	free(enc);
	free(p);
	if (rc)
		return rc;
	*result = res;
	return 0;
}

/* See xact.h. */
int qfs_xact_propose(struct qfs_cell *c, qfs_group_t group, const struct qfs_txn *txn,
		     int *result)
{
	return qfs_xact_propose_wait(c, group, txn, 0, result);
}

/* See xact.h. */
int qfs_xact_propose_wait(struct qfs_cell *c, qfs_group_t group, const struct qfs_txn *txn,
			  uint32_t busy_ms, int *result)
{
	uint64_t t0 = qfs_clock_mono_ms(), budget = busy_ms ? busy_ms : qfs_cell_timeout_ms(c);
	unsigned seed = (unsigned)(t0 ^ group);
	struct qfs_buf b;
	int rc, res = 0;

	size_t need = qfs_txn_encoded_len(txn);

	qfs_buf_init(&b);
	/* the whole entry at once (no growth by doubling), and a large one
	 * (a write-back of up to 8 MiB) in a buffer of the pool, already
	 * faulted in (common/bigbuf.h; doc/perf.md AFTER 34) */
	b.data = qfs_bigbuf_get(need ? need : 1, &b.cap);
	if (!b.data)
		return -ENOMEM;
	qfs_txn_encode(txn, &b);
	if (b.err) {
		qfs_bigbuf_put(b.data, b.cap);
		return -ENOMEM;
	}
	for (unsigned a = 0;; a++) {
		rc = qfs_cell_propose(c, group, b.data, b.len, &res);
		if (rc || res != -EBUSY || qfs_clock_mono_ms() - t0 >= budget)
			break;
		STAT_INC(busy_waits);
		backoff(a, &seed);
	}
	qfs_bigbuf_put(b.data, b.cap); /* the capacity it has (a growth reallocs and says so) */
	if (!rc)
		*result = res;
	return rc;
}

/* ---- recovery ---- */

struct txids {
	uint8_t (*id)[QFS_TXID_LEN];
	uint8_t *dec;     /* per txid: decision applied ('C'/'A'), 0: none yet */
	size_t n, cap;
};

static int txids_add(struct txids *l, const uint8_t *txid)
{
	for (size_t i = 0; i < l->n; i++)
		if (memcmp(l->id[i], txid, QFS_TXID_LEN) == 0)
			return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		void *p = realloc(l->id, cap * sizeof(*l->id));
		if (!p)
			return -ENOMEM;
		l->id = p;
		p = realloc(l->dec, cap);
		if (!p)
			return -ENOMEM;
		l->dec = p;
		l->cap = cap;
	}
	memcpy(l->id[l->n], txid, QFS_TXID_LEN);
	l->dec[l->n++] = 0;
	return 0;
}

/* Scan callback: txids of reserved keys (tag p or x). */
static int collect_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)v;
	(void)vl;
	if (kl != QFS_KEY_XACT_LEN)
		return 0;
	return txids_add(arg, k + QFS_KEY_PREFIX_LEN + 2);
}

static int list_tag(struct qfs_cell *c, qfs_group_t group, uint8_t tag, struct txids *out)
{
	uint8_t lo[QFS_KEY_PREFIX_LEN + 2], hi[QFS_KEY_PREFIX_LEN + 2];

	qfs_key_xact_range(lo, hi, tag);
	return qfs_cell_scan(c, group, lo, sizeof(lo), hi, sizeof(hi), collect_cb, out);
}

/* The decision of txid in coord: 'C', 'A' or 0. */
static int decision_get(struct qfs_cell *c, qfs_group_t coord, const uint8_t *txid, uint8_t *out)
{
	uint8_t k[QFS_KEY_XACT_LEN];
	void *v;
	size_t vl;
	int rc;

	if (qfs_xact_test_stale_decisions) {
		*out = 0;
		return 0;
	}
	qfs_key_xact(k, QFS_KEY_XACT_DECISION, txid);
	rc = qfs_cell_get(c, coord, k, sizeof(k), &v, &vl);
	if (rc == -ENOENT) {
		*out = 0;
		return 0;
	}
	if (rc)
		return rc;
	*out = vl == 1 ? *(uint8_t *)v : 0;
	free(v);
	return 0;
}

/* Decide txid: the recorded decision, else 'A' (or 'C' if one wins).
 * DECIDE 'A' answers -EALREADY only when 'C' is stored: that answer is
 * the decision, not read again (a read may miss it: an eventual read
 * from a replica that has not applied it yet, the leader gone; or the
 * run's forget since, its parts committed; a read of 0 here aborted a
 * part whose 'C' was recorded: half a transaction). */
static int settle(struct qfs_cell *c, qfs_group_t coord, const uint8_t *txid, uint8_t *out)
{
	int rc, res;

	rc = decision_get(c, coord, txid, out);
	if (rc || *out)
		return rc;
	rc = decide(c, coord, txid, QFS_DECIDE_ABORT, &res);
	if (rc)
		return rc;
	if (res == 0) {
		*out = QFS_DECIDE_ABORT;
		return 0;
	}
	if (res != -EALREADY)
		return res;
	*out = QFS_DECIDE_COMMIT; /* 'C' came first */
	return 0;
}

/* See xact.h. */
int qfs_xact_finish(struct qfs_cell *c, qfs_group_t coord, const qfs_group_t *groups, size_t n)
{
	int rc = 0, res;

	for (size_t g = 0; g < n && !rc; g++) {
		struct txids prep = { 0 };
		rc = list_tag(c, groups[g], QFS_KEY_XACT_PREPARED, &prep);
		for (size_t i = 0; i < prep.n && !rc; i++) {
			const uint8_t *txid = prep.id[i];
			uint8_t d = 0;
			if (qfs_be64_get(txid) != coord) {
				QFS_LOG(QFS_LOG_INFO, "xact recover skips txid of another coordinator group=%016llx coord=%016llx",
					(unsigned long long)groups[g], (unsigned long long)qfs_be64_get(txid));
				continue;
			}
			rc = settle(c, coord, txid, &d);
			if (rc)
				break;
			rc = propose_op(c, groups[g], d == QFS_DECIDE_COMMIT ? QFS_OP_COMMIT : QFS_OP_ABORT,
					txid, NULL, 0, &res);
			if (!rc && d == QFS_DECIDE_COMMIT)
				STAT_INC(rec_commits);
			else if (!rc)
				STAT_INC(rec_aborts);
			QFS_LOG(QFS_LOG_INFO, "xact recovered group=%016llx txid=%016llx decision=%c err=\"%s\"",
				(unsigned long long)groups[g], (unsigned long long)qfs_be64_get(txid + 8),
				d ? d : '?', qfs_strerror(rc));
		}
		free(prep.id);
		free(prep.dec);
	}
	return rc;
}

/* qfs_xact_recover; with keep_commits, every 'C' stays (the groups given
 * may not be all a live run touched: qfs_xact_recover_live). */
static int recover(struct qfs_cell *c, qfs_group_t coord, const qfs_group_t *groups, size_t n,
		   int keep_commits)
{
	int rc = qfs_xact_finish(c, coord, groups, n), res;

	/* Forget the decisions whose parts are all finished: every 'C' that
	 * no group holds prepared any more (read after the decision: a 'C'
	 * is recorded only once every part is prepared, and a part leaves
	 * only by COMMIT), and the 'A's old enough that no coordinator can
	 * still be preparing them. */
	struct txids dec = { 0 }, still = { 0 };
	if (!rc)
		rc = list_tag(c, coord, QFS_KEY_XACT_DECISION, &dec);
	for (size_t i = 0; i < dec.n && !rc; i++)
		rc = decision_get(c, coord, dec.id[i], &dec.dec[i]);
	for (size_t g = 0; g < n && !rc && dec.n; g++)
		rc = list_tag(c, groups[g], QFS_KEY_XACT_PREPARED, &still);
	for (size_t i = 0; i < dec.n && !rc; i++) {
		int held = 0;
		for (size_t j = 0; j < still.n && !held; j++)
			held = memcmp(still.id[j], dec.id[i], QFS_TXID_LEN) == 0;
		if (held || !dec.dec[i] || (keep_commits && dec.dec[i] == QFS_DECIDE_COMMIT))
			continue;
		if (dec.dec[i] == QFS_DECIDE_ABORT && txid_age_ms(dec.id[i]) < qfs_xact_abort_keep_ms)
			continue;
		rc = decide(c, coord, dec.id[i], QFS_DECIDE_FORGET, &res);
	}
	free(dec.id);
	free(dec.dec);
	free(still.id);
	free(still.dec);
	return rc;
}

/* See xact.h. */
int qfs_xact_recover(struct qfs_cell *c, qfs_group_t coord, const qfs_group_t *groups, size_t n)
{
	return recover(c, coord, groups, n, 0);
}

/* See xact.h. */
int qfs_xact_recover_live(struct qfs_cell *c, qfs_group_t coord, const qfs_group_t *groups, size_t n)
{
	return recover(c, coord, groups, n, 1);
}
