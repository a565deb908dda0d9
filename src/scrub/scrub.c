/*
 * scrub.c - the scrubber: passes over every group comparing its replicas at
 * one LSN, narrowing differences to items, repairing a minority replica,
 * stopping and rebuilding a node whose RocksDB is corrupt, alarms and the
 * control-file text (contract in scrub.h, design in doc/scrub.md).
 *
 * One pass, per group (scrub_group):
 *   1. ask every node for its replica's state; L = the highest commit LSN
 *      any of them knows (every running replica applies up to it soon);
 *   2. one thread per replica asks its node for a store snapshot taken
 *      right after applying L (qfs_cell_replica_snap); -ESTALE (it applied
 *      past L before the request arrived) retries the group with a new L;
 *      a replica that does not reach L in time is left out of this pass;
 *   3. the first replica's snapshot is summed while it cuts the key
 *      ranges, the others over the same ranges (sum.h), each read with
 *      RocksDB checksums verified and paced to the rate; the applied LSN
 *      must equal L in each;
 *   4. replicas whose summaries differ are narrowed: the items of each
 *      differing range are listed and merged against a replica of the
 *      majority, each difference one finding line;
 *   5. a replica that differs alone from two that agree is rebuilt
 *      (qfs_cell_replica_rebuild) and verified again; a replica whose read
 *      reported corruption gets its whole node rebuilt (one RocksDB holds
 *      all the node's replicas).
 * After the groups every node's whole RocksDB is read with checksums
 * (qfs_cell_node_verify), which covers keys outside the groups' items.
 *
 * Locking: s->mu protects counters, results, alarms and the run state; it
 * is never held across a cell call.  The pass runs on the scrub thread (or
 * the offline caller's); snapshot requests on short-lived helper threads.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/rnode.h"
#include "scrub/scrub.h"
#include "scrub/sum.h"
#include "store/store.h"

#define SCRUB_RETRIES 20           /* new L after -ESTALE */
#define SCRUB_REVERIFY_MS 60000u   /* wait for a rebuilt replica to reach L */
#define SCRUB_FINDINGS_MAX 16      /* item lines per replica and group */
#define SCRUB_ALARMS_MAX 256
#define SCRUB_CANCELED 1000        /* scan callback: stop requested */
#define SCRUB_WAL_MAX (16ull << 20) /* local WALs read back only up to this size */

struct gres {
	qfs_group_t group;
	qfs_lsn_t lsn;           /* last LSN verified at */
	uint64_t wall_ns;        /* when */
	char result[96];
};

/* The majority's sums of a group at lsn, kept until the archive reaches
 * lsn and the reference replica is compared with them. */
struct pend {
	qfs_group_t group;
	qfs_lsn_t lsn;
	struct qfs_scrub_sum sum;
};

struct alarm {
	char kind[24];
	char subject[48];        /* "group=G node=N", "node=N", ... */
	char text[200];
	uint64_t raised_ns;      /* wall */
	int hit;                 /* raised again in this pass */
};

struct qfs_scrub {
	struct qfs_cell *c;
	struct qfs_scrub_opts o;
	pthread_t th;
	int started;

	pthread_mutex_t mu;      /* everything below */
	pthread_cond_t cv;       /* kick, stop; CLOCK_MONOTONIC */
	int stop, kick, running;
	unsigned progress;       /* percent of the current pass */
	uint64_t passes;
	struct qfs_scrub_counts total;
	struct gres *res;
	size_t nres, capres;
	struct alarm al[SCRUB_ALARMS_MAX];
	size_t nal;
	size_t waiting;          /* npend, for status */

	/* scrub thread only */
	struct pend *pend;
	size_t npend, cappend;
	/* pass state: scrub thread only */
	uint64_t pace_t0_ns, pace_bytes;
	struct qfs_scrub_counts pass;
};

static uint64_t wall_ns(void)
{
	struct qfs_ts t;

	qfs_clock_now(&t);
	return (uint64_t)t.sec * 1000000000ull + t.nsec;
}

static void fmt_time(uint64_t ns, char *out, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!gmtime_r(&sec, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "@%lld", (long long)sec);
}

static int stopping(struct qfs_scrub *s)
{
	int st;

	pthread_mutex_lock(&s->mu);
	st = s->stop;
	pthread_mutex_unlock(&s->mu);
	return st;
}

/* ------------------------------------------------------------- alarms */

static void alarm_raise(struct qfs_scrub *s, const char *kind, const char *subject,
			const char *text)
{
	size_t i;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nal; i++)
		if (!strcmp(s->al[i].kind, kind) && !strcmp(s->al[i].subject, subject))
			break;
	if (i == s->nal && s->nal < SCRUB_ALARMS_MAX) {
		memset(&s->al[i], 0, sizeof(s->al[i]));
		snprintf(s->al[i].kind, sizeof(s->al[i].kind), "%s", kind);
		snprintf(s->al[i].subject, sizeof(s->al[i].subject), "%s", subject);
		s->al[i].raised_ns = wall_ns();
		s->nal++;
	}
	if (i < s->nal) {
		snprintf(s->al[i].text, sizeof(s->al[i].text), "%s", text);
		s->al[i].hit = 1;
	}
	pthread_mutex_unlock(&s->mu);
}

/* Clear alarms of kind (NULL: any) whose subject starts with prefix. */
static void alarm_clear(struct qfs_scrub *s, const char *kind, const char *prefix)
{
	size_t n = strlen(prefix);

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nal;) {
		struct alarm *a = &s->al[i];
		if ((!kind || !strcmp(a->kind, kind)) && !strncmp(a->subject, prefix, n) &&
		    (a->subject[n] == '\0' || a->subject[n] == ' ')) {
			QFS_LOG(QFS_LOG_INFO, "scrub alarm cleared kind=%s %s", a->kind, a->subject);
			memmove(a, a + 1, (s->nal - i - 1) * sizeof(*a));
			s->nal--;
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

/* --------------------------------------------------------- findings */

/* One finding (or repair) line: logged at level and handed to o.finding. */
static void report(struct qfs_scrub *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define finding(s, ...) report(s, QFS_LOG_ERR, __VA_ARGS__)
static void report(struct qfs_scrub *s, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	QFS_LOG(level, "scrub %s", line);
	if (s->o.finding)
		(*s->o.finding)(s->o.arg, line);
}

static void group_result(struct qfs_scrub *s, qfs_group_t g, qfs_lsn_t lsn, const char *result)
{
	size_t i;

	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nres; i++)
		if (s->res[i].group == g)
			break;
	if (i == s->nres) {
		if (s->nres == s->capres) {
			size_t cap = s->capres ? s->capres * 2 : 16;
			struct gres *r = realloc(s->res, cap * sizeof(*r));
			if (!r) {
				pthread_mutex_unlock(&s->mu);
				return;
			}
			s->res = r;
			s->capres = cap;
		}
		/* keep them sorted by group */
		while (i > 0 && s->res[i - 1].group > g)
			i--;
		memmove(s->res + i + 1, s->res + i, (s->nres - i) * sizeof(*s->res));
		s->nres++;
		s->res[i].group = g;
	}
	s->res[i].lsn = lsn;
	s->res[i].wall_ns = wall_ns();
	snprintf(s->res[i].result, sizeof(s->res[i].result), "%s", result);
	pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------- pacing scan */

struct paced {
	struct qfs_scrub *s;
	qfs_store_scan_cb cb;
	void *arg;
	uint64_t since;          /* bytes since the last pacing check */
};

/* Hold the pass's reads to o.rate_bytes per second (sleeping here), and
 * stop early when asked to. */
static int pace(struct qfs_scrub *s, uint64_t bytes)
{
	s->pace_bytes += bytes;
	if (stopping(s))
		return SCRUB_CANCELED;
	if (s->o.rate_bytes == UINT64_MAX)
		return 0;
	uint64_t due_ns = s->pace_bytes * 1000000000ull / s->o.rate_bytes;
	uint64_t el = qfs_clock_mono_ns() - s->pace_t0_ns;
	if (due_ns > el) {
		uint64_t d = due_ns - el;
		struct timespec ts = { .tv_sec = (time_t)(d / 1000000000ull), .tv_nsec = (long)(d % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int paced_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct paced *p = arg;
	int rc;

	p->since += kl + vl + 16;
	if (p->since >= (256u << 10)) {
		if ((rc = pace(p->s, p->since)))
			return rc;
		p->since = 0;
	}
	return p->cb(k, kl, v, vl, p->arg);
}

static int scan(struct qfs_scrub *s, struct qfs_store_snap *sn, qfs_group_t g, const uint8_t *lo,
		size_t lo_len, const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg)
{
	struct paced p = { .s = s, .cb = cb, .arg = arg };
	int rc = qfs_store_snap_scan(sn, g, lo, lo_len, hi, hi_len, paced_cb, &p);

	if (rc == 0 && p.since)
		rc = pace(s, p.since);
	return rc;
}

/* ------------------------------------------------------ snapshots at L */

struct rep {
	uint32_t id;
	int rc;                  /* of the snapshot request */
	struct qfs_store_snap *sn;
	struct qfs_scrub_sum sum;
	int summed;              /* sum valid */
	int corrupt;             /* its RocksDB reported corruption */
	qfs_lsn_t applied;       /* in the snapshot */
	/* request arguments */
	struct qfs_cell *c;
	qfs_group_t g;
	qfs_lsn_t lsn;
	uint32_t timeout_ms;
	pthread_t th;
};

static void *snap_thread(void *arg)
{
	struct rep *r = arg;

	r->rc = qfs_cell_replica_snap(r->c, r->id, r->g, r->lsn, r->timeout_ms, &r->sn);
	return NULL;
}

static void reps_release(struct qfs_scrub *s, struct rep *reps, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (reps[i].sn)
			qfs_cell_replica_snap_done(s->c, reps[i].id, reps[i].sn);
		reps[i].sn = NULL;
		if (reps[i].summed)
			qfs_scrub_sum_close(&reps[i].sum);
		reps[i].summed = 0;
	}
}

/* Snapshots of every running replica of g at one LSN.  Returns the number
 * of replicas in reps (each with rc and, on 0, sn) and *lsn. */
static uint32_t take_snaps(struct qfs_scrub *s, qfs_group_t g, uint32_t timeout_ms,
			   struct rep *reps, qfs_lsn_t *lsn)
{
	uint32_t n = qfs_cell_node_count(s->c), nr = 0;

	for (int attempt = 0; attempt < SCRUB_RETRIES; attempt++) {
		qfs_lsn_t L = 0;
		int stale = 0;

		nr = 0;
		for (uint32_t id = 1; id <= n; id++) {
			struct qfs_rnode_ginfo gi;
			if (qfs_cell_replica_info(s->c, id, g, &gi) || gi.stopped)
				continue;
			memset(&reps[nr], 0, sizeof(reps[nr]));
			reps[nr].id = id;
			nr++;
			if (gi.commit > L)
				L = gi.commit;
			if (gi.applied > L)
				L = gi.applied;
		}
		for (uint32_t i = 0; i < nr; i++) {
			reps[i].c = s->c;
			reps[i].g = g;
			reps[i].lsn = L;
			reps[i].timeout_ms = timeout_ms;
			if (pthread_create(&reps[i].th, NULL, snap_thread, &reps[i]) != 0) {
				reps[i].th = 0;
				snap_thread(&reps[i]);
			}
		}
		for (uint32_t i = 0; i < nr; i++) {
			if (reps[i].th)
				pthread_join(reps[i].th, NULL);
			if (reps[i].rc == -ESTALE)
				stale = 1;
		}
		*lsn = L;
		if (!stale)
			return nr;
		reps_release(s, reps, nr);
	}
	return nr;
}

/* ------------------------------------------------------------ narrowing */

struct diff_ctx {
	struct qfs_scrub *s;
	qfs_group_t g;
	uint32_t id;
	qfs_lsn_t lsn;
	const char *lo_hex, *hi_hex;
	unsigned shown;
};

static void diff_line(const uint8_t *key, size_t key_len, enum qfs_scrub_diff kind, void *arg)
{
	struct diff_ctx *d = arg;
	char kh[2 * 48 + 4];

	if (d->shown++ >= SCRUB_FINDINGS_MAX)
		return;
	finding(d->s, "mismatch group=%016" PRIx64 " node=%u lsn=%" PRIu64 " range=[%s,%s) key=%s item=%s",
		d->g, d->id, d->lsn, d->lo_hex, d->hi_hex, qfs_scrub_hex(key, key_len, 48, kh),
		kind == QFS_SCRUB_DIFF_VALUE ? "differs" : kind == QFS_SCRUB_DIFF_MISSING ? "missing" : "extra");
}

/* Narrow replica b's difference from a (a of the majority, or the first)
 * in range i to items, one finding line each. */
static void narrow(struct qfs_scrub *s, qfs_group_t g, qfs_lsn_t L, struct rep *a, struct rep *b,
		   size_t i)
{
	struct qfs_scrub_items ia = { 0 }, ib = { 0 };
	size_t hi_len;
	const uint8_t *hi = qfs_scrub_sum_hi(&a->sum, i, &hi_len);
	const struct qfs_scrub_range *r = &a->sum.r[i];
	char lo_hex[2 * 32 + 4], hi_hex[2 * 32 + 4];
	struct diff_ctx d = { .s = s, .g = g, .id = b->id, .lsn = L, .lo_hex = lo_hex, .hi_hex = hi_hex };

	qfs_scrub_hex(r->lo, r->lo_len, 32, lo_hex);
	if (hi)
		qfs_scrub_hex(hi, hi_len, 32, hi_hex);
	else
		snprintf(hi_hex, sizeof(hi_hex), "end");
	if (scan(s, a->sn, g, r->lo, r->lo_len, hi, hi_len, qfs_scrub_items_add, &ia) ||
	    scan(s, b->sn, g, r->lo, r->lo_len, hi, hi_len, qfs_scrub_items_add, &ib)) {
		finding(s, "mismatch group=%016" PRIx64 " node=%u lsn=%" PRIu64 " range=[%s,%s) items=unread",
			g, b->id, L, lo_hex, hi_hex);
	} else if (qfs_scrub_items_diff(&ia, &ib, diff_line, &d) == 0) {
		/* same items, different range hash: cannot happen unless the
		 * reads differ; report the range */
		finding(s, "mismatch group=%016" PRIx64 " node=%u lsn=%" PRIu64 " range=[%s,%s)", g, b->id,
			L, lo_hex, hi_hex);
	}
	qfs_scrub_items_close(&ia);
	qfs_scrub_items_close(&ib);
}

static int same_sum(const struct rep *a, const struct rep *b)
{
	if (a->applied != b->applied || a->sum.n != b->sum.n)
		return 0;
	for (size_t i = 0; i < a->sum.n; i++)
		if (a->sum.r[i].hash != b->sum.r[i].hash || a->sum.r[i].items != b->sum.r[i].items)
			return 0;
	return 1;
}

/* ------------------------------------------------------------- one group */

enum gout { G_OK, G_SKIPPED, G_MISMATCH, G_REPAIRED, G_CORRUPT_REBUILT };

/* Node id's RocksDB reported corruption: alarm, and with repair on, stop the
 * node and rebuild all its replicas from the healthy ones. */
static int corrupt_node(struct qfs_scrub *s, qfs_group_t g, uint32_t id, int *rebuilt)
{
	char subj[48], text[200];
	int rc;

	*rebuilt = 0;
	s->pass.corrupt++;
	snprintf(subj, sizeof(subj), "node=%u", id);
	snprintf(text, sizeof(text), "RocksDB of node %u failed its checksums reading group %016" PRIx64
		 "; %s", id, g, s->o.repair ? "rebuilding it from the other replicas" :
		 "rebuild it: quorumfs scrub --repair DATA_DIR");
	alarm_raise(s, "replica-corrupt", subj, text);
	finding(s, "corrupt node=%u group=%016" PRIx64 " store=rocksdb-checksum", id, g);
	if (!s->o.repair)
		return 0;
	rc = qfs_cell_replica_rebuild(s->c, id, QFS_CELL_ALL_GROUPS, "scrub: RocksDB corruption");
	if (rc) {
		finding(s, "repair failed node=%u group=all err=\"%s\"", id, qfs_strerror(rc));
		return rc;
	}
	report(s, QFS_LOG_WARN, "repaired node=%u group=all why=corruption", id);
	s->pass.repaired++;
	*rebuilt = 1;
	return 0;
}

static enum gout group_once(struct qfs_scrub *s, qfs_group_t g, uint32_t timeout_ms, uint32_t *odd_out,
			    qfs_lsn_t *lsn_out)
{
	struct rep reps[QFS_CELL_MAX_NODES];
	uint32_t nr, ok = 0, n = qfs_cell_node_count(s->c);
	qfs_lsn_t L = 0;
	struct rep *model = NULL;
	enum gout out = G_OK;
	char subj[48];
	int rc, rebuilt;

	*odd_out = 0;
	nr = take_snaps(s, g, timeout_ms, reps, &L);
	*lsn_out = L;
	for (uint32_t i = 0; i < nr; i++) {
		if (reps[i].rc) {
			QFS_LOG(QFS_LOG_INFO, "scrub replica left out group=%016" PRIx64 " node=%u lsn=%" PRIu64
				" err=\"%s\"", g, reps[i].id, L, qfs_strerror(reps[i].rc));
			continue;
		}
		ok++;
		rc = qfs_store_snap_applied(reps[i].sn, g, &reps[i].applied);
		if (rc == QFS_ECORRUPT) {
			reps[i].corrupt = 1;
			continue;
		}
		if (rc == 0 && reps[i].applied != L)
			finding(s, "mismatch group=%016" PRIx64 " node=%u lsn=%" PRIu64 " applied=%" PRIu64,
				g, reps[i].id, L, reps[i].applied);
		if (!model) {
			rc = qfs_scrub_sum_init(&reps[i].sum);
		} else {
			rc = qfs_scrub_sum_like(&reps[i].sum, &model->sum);
		}
		if (rc)
			goto out_release;
		reps[i].summed = 1;
		rc = scan(s, reps[i].sn, g, NULL, 0, NULL, 0, qfs_scrub_sum_add, &reps[i].sum);
		if (rc == SCRUB_CANCELED)
			goto out_release;
		if (rc == QFS_ECORRUPT) {
			reps[i].corrupt = 1;
			qfs_scrub_sum_close(&reps[i].sum);
			reps[i].summed = 0;
			continue;
		}
		if (rc) {
			finding(s, "unreadable group=%016" PRIx64 " node=%u err=\"%s\"", g, reps[i].id,
				qfs_strerror(rc));
			qfs_scrub_sum_close(&reps[i].sum);
			reps[i].summed = 0;
			continue;
		}
		qfs_scrub_sum_finish(&reps[i].sum);
		if (!model)
			model = &reps[i];
	}
	if (ok < n)
		s->pass.skipped++;

	/* majority: the largest set of summed replicas that agree */
	struct rep *ref = NULL;
	uint32_t best = 0, summed = 0;
	for (uint32_t i = 0; i < nr; i++) {
		uint32_t agree = 0;
		if (!reps[i].summed)
			continue;
		summed++;
		for (uint32_t j = 0; j < nr; j++)
			if (reps[j].summed && same_sum(&reps[i], &reps[j]))
				agree++;
		if (agree > best) {
			best = agree;
			ref = &reps[i];
		}
	}
	int has_majority = ref && best >= n / 2 + 1;
	int differ = 0;
	for (uint32_t i = 0; i < nr; i++) {
		struct rep *r = &reps[i];
		if (!r->summed || same_sum(r, ref))
			continue;
		differ++;
		s->pass.mismatches++;
		struct rep *a = has_majority ? ref : model;
		if (a == r)
			a = ref;
		for (size_t k = 0; k < r->sum.n && k < a->sum.n; k++)
			if (r->sum.r[k].hash != a->sum.r[k].hash || r->sum.r[k].items != a->sum.r[k].items)
				narrow(s, g, L, a, r, k);
		snprintf(subj, sizeof(subj), "group=%016" PRIx64 " node=%u", g, r->id);
		char text[200];
		snprintf(text, sizeof(text), "replica differs from %s at lsn %" PRIu64 "%s", has_majority ?
			 "the majority" : "another replica", L, has_majority ?
			 (s->o.repair ? "; rebuilding it" : "; rebuild: quorumfs scrub --repair DATA_DIR") :
			 "; no majority: nothing overwritten, compare the replicas' items (scrub log) and"
			 " rebuild the table from the archive: quorumfs restore --time latest");
		alarm_raise(s, "scrub-mismatch", subj, text);
		if (has_majority && summed - best == 1)
			*odd_out = r->id;
		out = G_MISMATCH;
	}
	if (has_majority && s->o.reference && ref->applied == L) {
		size_t k;
		for (k = 0; k < s->npend && s->pend[k].group != g; k++)
			;
		if (k == s->npend) {
			if (s->npend == s->cappend) {
				size_t cap = s->cappend ? s->cappend * 2 : 8;
				struct pend *v = realloc(s->pend, cap * sizeof(*v));
				if (v) {
					s->pend = v;
					s->cappend = cap;
				}
			}
			if (s->npend < s->cappend) {
				s->pend[k].group = g;
				s->pend[k].lsn = L;
				s->pend[k].sum = ref->sum; /* moved: reps_release must not close it */
				ref->summed = 0;
				s->npend++;
				pthread_mutex_lock(&s->mu);
				s->waiting = s->npend;
				pthread_mutex_unlock(&s->mu);
			}
		}
	}
	if (differ == 0 && summed == n) {
		snprintf(subj, sizeof(subj), "group=%016" PRIx64, g);
		alarm_clear(s, "scrub-mismatch", subj);
	}
	/* corruption: rebuild the node (after releasing every snapshot) */
	reps_release(s, reps, nr);
	for (uint32_t i = 0; i < nr; i++)
		if (reps[i].corrupt && corrupt_node(s, g, reps[i].id, &rebuilt) == 0 && rebuilt)
			out = G_CORRUPT_REBUILT;
	if (ok == 0)
		out = G_SKIPPED;
	return out;

out_release:
	reps_release(s, reps, nr);
	return G_SKIPPED;
}

/* A replica of g stopped after a store error (RocksDB may have met a
 * corrupt block in a flush or compaction before the scrub read it): check
 * its node's checksums now.  Returns 1 if a node was rebuilt. */
static int stopped_replicas(struct qfs_scrub *s, qfs_group_t g)
{
	uint32_t n = qfs_cell_node_count(s->c);
	int any = 0, rebuilt;

	for (uint32_t id = 1; id <= n; id++) {
		struct qfs_rnode_ginfo gi;
		if (qfs_cell_replica_info(s->c, id, g, &gi) || !gi.stopped)
			continue;
		int vrc = qfs_cell_node_verify(s->c, id);
		if (vrc == QFS_ECORRUPT) {
			if (corrupt_node(s, g, id, &rebuilt) == 0 && rebuilt)
				any = 1;
		} else if (vrc == 0 && gi.err == QFS_ECORRUPT) {
			/* its RocksDB reads clean: the replica's own files (WAL,
			 * members, promise) failed their checks at open */
			s->pass.corrupt++;
			finding(s, "corrupt group=%016" PRIx64 " node=%u log=unreadable", g, id);
			if (!s->o.repair)
				continue;
			int rc = qfs_cell_replica_rebuild(s->c, id, g, "scrub: replica log corrupt");
			if (rc) {
				finding(s, "repair failed group=%016" PRIx64 " node=%u err=\"%s\"", g, id,
					qfs_strerror(rc));
				continue;
			}
			report(s, QFS_LOG_WARN, "repaired group=%016" PRIx64 " node=%u why=log", g, id);
			s->pass.repaired++;
			any = 1;
		}
	}
	return any;
}

/* Every replica's local WAL of g read back with its CRCs: a damaged log
 * gets that replica of the group rebuilt (a replica must not vote with a log
 * it cannot read back).  Returns 1 if a replica was rebuilt. */
static int wal_check(struct qfs_scrub *s, qfs_group_t g)
{
	uint32_t n = qfs_cell_node_count(s->c);
	char subj[48], text[200];
	int any = 0;

	for (uint32_t id = 1; id <= n; id++) {
		struct qfs_rnode_ginfo gi;
		int rc;

		/* the read-back runs on the node's I/O thread, which stalls its
		 * other groups meanwhile: bounded (doc/scrub.md) */
		if (qfs_cell_replica_info(s->c, id, g, &gi) || gi.stopped || gi.wal_bytes > SCRUB_WAL_MAX)
			continue;
		rc = qfs_cell_replica_wal_verify(s->c, id, g);
		snprintf(subj, sizeof(subj), "group=%016" PRIx64 " node=%u wal", g, id);
		if (rc == 0) {
			alarm_clear(s, "wal-corrupt", subj);
			continue;
		}
		if (rc != QFS_ECORRUPT)
			continue;
		s->pass.corrupt++;
		finding(s, "corrupt group=%016" PRIx64 " node=%u wal=crc", g, id);
		snprintf(text, sizeof(text), "the replica's local log fails its CRC; %s",
			 s->o.repair ? "rebuilding the replica from the others" :
			 "rebuild it: quorumfs scrub --repair DATA_DIR");
		alarm_raise(s, "wal-corrupt", subj, text);
		if (!s->o.repair)
			continue;
		rc = qfs_cell_replica_rebuild(s->c, id, g, "scrub: WAL corruption");
		if (rc) {
			finding(s, "repair failed group=%016" PRIx64 " node=%u err=\"%s\"", g, id, qfs_strerror(rc));
			continue;
		}
		report(s, QFS_LOG_WARN, "repaired group=%016" PRIx64 " node=%u why=wal", g, id);
		s->pass.repaired++;
		alarm_clear(s, "wal-corrupt", subj);
		any = 1;
	}
	return any;
}

static void scrub_group(struct qfs_scrub *s, qfs_group_t g)
{
	uint32_t odd = 0;
	qfs_lsn_t L = 0;
	char res[96];
	int pre = stopped_replicas(s, g) | wal_check(s, g);
	enum gout r = group_once(s, g, pre ? SCRUB_REVERIFY_MS : QFS_SCRUB_SNAP_TIMEOUT_MS, &odd, &L);

	if (pre && r == G_OK)
		r = G_REPAIRED;

	s->pass.groups++;
	if (r == G_MISMATCH && odd && s->o.repair && !stopping(s)) {
		int rc = qfs_cell_replica_rebuild(s->c, odd, g, "scrub: replica differs from the majority");
		if (rc) {
			finding(s, "repair failed group=%016" PRIx64 " node=%u err=\"%s\"", g, odd, qfs_strerror(rc));
		} else {
			uint32_t odd2;
			report(s, QFS_LOG_WARN, "repaired group=%016" PRIx64 " node=%u", g, odd);
			s->pass.repaired++;
			/* verify the rebuilt replica (its snapshot install may take a while) */
			uint64_t mis = s->pass.mismatches;
			r = group_once(s, g, SCRUB_REVERIFY_MS, &odd2, &L);
			s->pass.mismatches = mis; /* counted once, when found */
			r = r == G_OK ? G_REPAIRED : r;
		}
	} else if (r == G_CORRUPT_REBUILT) {
		uint32_t odd2;
		enum gout r2 = group_once(s, g, SCRUB_REVERIFY_MS, &odd2, &L);
		r = r2 == G_OK ? G_REPAIRED : r2;
	}
	snprintf(res, sizeof(res), "%s",
		 r == G_OK ? "ok" : r == G_REPAIRED ? "repaired" : r == G_MISMATCH ? "mismatch" :
		 r == G_CORRUPT_REBUILT ? "corrupt" : "skipped");
	group_result(s, g, L, res);
}

/* ---------------------------------------------------- against the archive */

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st;
	(void)f;
	(void)w;
	return remove(p);
}

/* Compare pending sums with reference replicas the archive can now build. */
static void reference_pass(struct qfs_scrub *s)
{
	const char *tmp = s->o.tmp_dir ? s->o.tmp_dir : getenv("TMPDIR");

	for (size_t k = 0; k < s->npend && !stopping(s);) {
		struct pend *p = &s->pend[k];
		char dir[4096], db[4200], err[512], subj[48], text[200];
		struct qfs_store *st = NULL;
		struct qfs_store_snap *sn = NULL;
		struct qfs_scrub_sum rs;
		qfs_lsn_t applied = 0;
		int rc, differ = 0;

		snprintf(dir, sizeof(dir), "%s/qfs-scrub-ref.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			QFS_LOG(QFS_LOG_WARN, "scrub reference scratch dir=%s err=\"%s\"", dir, strerror(errno));
			return;
		}
		snprintf(db, sizeof(db), "%s/db", dir);
		rc = qfs_store_open(db, &st);
		if (rc == 0)
			rc = s->o.reference(s->o.archive_arg, p->group, p->lsn, st, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "scratch store: %s", qfs_strerror(rc));
		snprintf(subj, sizeof(subj), "group=%016" PRIx64, p->group);
		if (rc == -EAGAIN) {
			QFS_LOG(QFS_LOG_DEBUG, "scrub reference waits for the archive group=%016" PRIx64
				" lsn=%" PRIu64 " why=\"%s\"", p->group, p->lsn, err);
			qfs_store_close(st);
			nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
			k++;
			continue;
		}
		if (rc == 0 && (rc = qfs_store_snap_take(st, &sn)) == 0 &&
		    (rc = qfs_store_snap_applied(sn, p->group, &applied)) == 0 &&
		    (rc = qfs_scrub_sum_like(&rs, &p->sum)) == 0) {
			rc = qfs_store_snap_scan(sn, p->group, NULL, 0, NULL, 0, qfs_scrub_sum_add, &rs);
			qfs_scrub_sum_finish(&rs);
			if (rc == 0) {
				char lo[68], hi[68];
				if (applied != p->lsn)
					differ++;
				for (size_t i = 0; i < rs.n; i++) {
					size_t hl;
					const uint8_t *h = qfs_scrub_sum_hi(&rs, i, &hl);
					if (rs.r[i].hash == p->sum.r[i].hash && rs.r[i].items == p->sum.r[i].items)
						continue;
					if (differ++ >= SCRUB_FINDINGS_MAX)
						continue;
					qfs_scrub_hex(rs.r[i].lo, rs.r[i].lo_len, 32, lo);
					if (h)
						qfs_scrub_hex(h, hl, 32, hi);
					else
						snprintf(hi, sizeof(hi), "end");
					finding(s, "reference-mismatch group=%016" PRIx64 " lsn=%" PRIu64
						" range=[%s,%s) live_items=%" PRIu64 " reference_items=%" PRIu64,
						p->group, p->lsn, lo, hi, p->sum.r[i].items, rs.r[i].items);
				}
			}
			qfs_scrub_sum_close(&rs);
		}
		if (rc) {
			finding(s, "reference unavailable group=%016" PRIx64 " lsn=%" PRIu64 " err=\"%s\"",
				p->group, p->lsn, err[0] ? err : qfs_strerror(rc));
			s->pass.skipped++;
		} else {
			s->pass.reference++;
		}
		if (rc == 0 && differ) {
			s->pass.mismatches++;
			snprintf(text, sizeof(text), "all live replicas agree at lsn %" PRIu64 " but differ from "
				 "the archive; nothing overwritten: compare a restore of the table from the archive"
				 " (quorumfs restore) with the mount and copy back what is right", p->lsn);
			alarm_raise(s, "reference-mismatch", subj, text);
		} else if (rc == 0) {
			alarm_clear(s, "reference-mismatch", subj);
		}
		qfs_store_snap_release(sn);
		qfs_store_close(st);
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		qfs_scrub_sum_close(&p->sum);
		memmove(p, p + 1, (s->npend - k - 1) * sizeof(*p));
		s->npend--;
	}
	pthread_mutex_lock(&s->mu);
	s->waiting = s->npend;
	pthread_mutex_unlock(&s->mu);
}

/* Re-read and check every archived object of every group. */
static void archive_pass(struct qfs_scrub *s, const qfs_group_t *gs, size_t n)
{
	for (size_t i = 0; i < n && !stopping(s); i++) {
		char err[512], subj[48], text[200];
		uint64_t objects = 0;
		int rc = s->o.archive_verify(s->o.archive_arg, gs[i], &objects, err, sizeof(err));

		snprintf(subj, sizeof(subj), "group=%016" PRIx64, gs[i]);
		if (rc == 0) {
			alarm_clear(s, "archive-corrupt", subj);
			QFS_LOG(QFS_LOG_DEBUG, "scrub archive verified group=%016" PRIx64 " objects=%" PRIu64,
				gs[i], objects);
		} else if (rc == QFS_ECORRUPT || rc == -ENODATA) {
			s->pass.archive_bad++;
			finding(s, "archive-corrupt group=%016" PRIx64 " err=\"%s\"", gs[i], err);
			snprintf(text, sizeof(text), "%s; restore cannot rely on it: take a new archive snapshot "
				 "(the archiver uploads one every snapshot_segments) and keep the live replicas", err);
			alarm_raise(s, "archive-corrupt", subj, text);
		} else if (rc != -EAGAIN) {
			QFS_LOG(QFS_LOG_WARN, "scrub archive verify failed group=%016" PRIx64 " err=\"%s\"",
				gs[i], err);
		}
	}
}

/* ------------------------------------------------------------- one pass */

struct glist {
	qfs_group_t *v;
	size_t n, cap;
};

static void glist_add(qfs_group_t g, void *arg)
{
	struct glist *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		qfs_group_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = g;
}

static void set_progress(struct qfs_scrub *s, unsigned pct)
{
	pthread_mutex_lock(&s->mu);
	s->progress = pct;
	pthread_mutex_unlock(&s->mu);
	if (s->o.progress)
		s->o.progress(s->o.arg, pct);
}

/* After a whole pass over the groups of gl: clear the alarms of groups no
 * longer in it that no node hosts any more (a deleted table): no later
 * pass would clear them. */
static void clear_gone(struct qfs_scrub *s, const struct glist *gl)
{
	qfs_group_t gone[SCRUB_ALARMS_MAX];
	size_t ngone = 0;
	char subj[32];

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nal && ngone < SCRUB_ALARMS_MAX; i++) {
		unsigned long long g;
		int found = 0;

		if (sscanf(s->al[i].subject, "group=%16llx", &g) != 1)
			continue;
		for (size_t k = 0; k < gl->n && !found; k++)
			found = gl->v[k] == (qfs_group_t)g;
		for (size_t k = 0; k < ngone && !found; k++)
			found = gone[k] == (qfs_group_t)g;
		if (!found)
			gone[ngone++] = (qfs_group_t)g;
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t k = 0; k < ngone; k++) {
		if (qfs_cell_group_exists(s->c, gone[k]))
			continue;
		snprintf(subj, sizeof(subj), "group=%016" PRIx64, gone[k]);
		QFS_LOG(QFS_LOG_INFO, "scrub alarms of a group that is gone %s why=\"table deleted\"", subj);
		alarm_clear(s, NULL, subj);
	}
}

static void run_pass(struct qfs_scrub *s)
{
	struct glist gl = { 0 };
	uint32_t n = qfs_cell_node_count(s->c);
	char subj[32];

	memset(&s->pass, 0, sizeof(s->pass));
	s->pace_t0_ns = qfs_clock_mono_ns();
	s->pace_bytes = 0;
	QFS_LOG(QFS_LOG_INFO, "scrub pass started");
	qfs_cell_groups(s->c, glist_add, &gl);
	for (size_t i = 0; i < gl.n && !stopping(s); i++) {
		set_progress(s, (unsigned)(i * 100 / (gl.n + 1)));
		scrub_group(s, gl.v[i]);
	}
	if (s->o.reference && !stopping(s))
		reference_pass(s);
	if (s->o.archive_verify && !stopping(s))
		archive_pass(s, gl.v, gl.n);
	if (gl.n && !stopping(s))
		clear_gone(s, &gl);
	free(gl.v);
	/* every block of every node's RocksDB, keys outside groups included */
	for (uint32_t id = 1; id <= n && !stopping(s); id++) {
		int rc = qfs_cell_node_verify(s->c, id), rebuilt;
		snprintf(subj, sizeof(subj), "node=%u", id);
		if (rc == 0)
			alarm_clear(s, "replica-corrupt", subj);
		else if (rc == QFS_ECORRUPT)
			corrupt_node(s, 0, id, &rebuilt);
	}
	set_progress(s, 100);
	QFS_LOG(QFS_LOG_INFO, "scrub pass done groups=%" PRIu64 " mismatches=%" PRIu64 " corrupt=%" PRIu64
		" repaired=%" PRIu64 " skipped=%" PRIu64 " reference=%" PRIu64 " archive_bad=%" PRIu64,
		s->pass.groups, s->pass.mismatches, s->pass.corrupt, s->pass.repaired, s->pass.skipped,
		s->pass.reference, s->pass.archive_bad);
	pthread_mutex_lock(&s->mu);
	s->total.groups += s->pass.groups;
	s->total.mismatches += s->pass.mismatches + s->pass.corrupt + s->pass.archive_bad;
	s->total.reference += s->pass.reference;
	s->total.archive_bad += s->pass.archive_bad;
	s->total.corrupt += s->pass.corrupt;
	s->total.repaired += s->pass.repaired;
	s->total.skipped += s->pass.skipped;
	if (!s->stop)
		s->passes++;
	pthread_mutex_unlock(&s->mu);
}

static void *scrub_main(void *arg)
{
	struct qfs_scrub *s = arg;
	uint64_t next = qfs_clock_mono_ms() + (s->o.interval_ms == UINT64_MAX ? 0 : s->o.interval_ms);

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->stop && !s->kick &&
		       (s->o.interval_ms == UINT64_MAX || qfs_clock_mono_ms() < next)) {
			struct timespec ts;
			uint64_t wait = s->o.interval_ms == UINT64_MAX ? 1000 : next - qfs_clock_mono_ms();
			qfs_clock_deadline(CLOCK_MONOTONIC, wait > 1000 ? 1000 : wait, &ts);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
		if (s->stop)
			break;
		s->kick = 0;
		s->running = 1;
		s->progress = 0;
		pthread_mutex_unlock(&s->mu);
		run_pass(s);
		pthread_mutex_lock(&s->mu);
		s->running = 0;
		if (s->o.interval_ms != UINT64_MAX)
			next = qfs_clock_mono_ms() + s->o.interval_ms;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void opts_fill(struct qfs_scrub *s, const struct qfs_scrub_opts *o)
{
	s->o = *o;
	if (!s->o.interval_ms)
		s->o.interval_ms = QFS_SCRUB_INTERVAL_DEFAULT_MS;
	if (!s->o.rate_bytes)
		s->o.rate_bytes = QFS_SCRUB_RATE_DEFAULT;
}

static struct qfs_scrub *scrub_new(struct qfs_cell *c, const struct qfs_scrub_opts *o)
{
	struct qfs_scrub *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (!s)
		return NULL;
	s->c = c;
	opts_fill(s, o);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	return s;
}

static void scrub_free(struct qfs_scrub *s)
{
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	for (size_t i = 0; i < s->npend; i++)
		qfs_scrub_sum_close(&s->pend[i].sum);
	free(s->pend);
	free(s->res);
	free(s);
}

/* ------------------------------------------------------------- public */

/* See scrub.h. */
int qfs_scrub_start(struct qfs_cell *c, const struct qfs_scrub_opts *o, struct qfs_scrub **out)
{
	struct qfs_scrub *s = scrub_new(c, o);
	int rc;

	if (!s)
		return -ENOMEM;
	rc = pthread_create(&s->th, NULL, scrub_main, s);
	if (rc) {
		scrub_free(s);
		return -rc;
	}
	s->started = 1;
	QFS_LOG(QFS_LOG_INFO, "scrub started interval_ms=%" PRIu64 " rate_bytes=%" PRIu64 " repair=%d",
		s->o.interval_ms, s->o.rate_bytes, s->o.repair);
	*out = s;
	return 0;
}

/* See scrub.h. */
void qfs_scrub_stop(struct qfs_scrub *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->th, NULL);
	scrub_free(s);
}

/* See scrub.h.  The state reads "running" from the moment this returns. */
int qfs_scrub_kick(struct qfs_scrub *s)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (s->running || s->kick) {
		rc = -EBUSY;
	} else {
		s->kick = 1;
		s->running = 1;
		s->progress = 0;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* See scrub.h. */
void qfs_scrub_status(struct qfs_scrub *s, struct qfs_buf *out)
{
	char ts[40];

	pthread_mutex_lock(&s->mu);
	qfs_buf_printf(out, "state %s\n", s->running ? "running" : "idle");
	qfs_buf_printf(out, "passes %" PRIu64 "\n", s->passes);
	qfs_buf_printf(out, "mismatches %" PRIu64 "\n", s->total.mismatches);
	qfs_buf_printf(out, "repaired %" PRIu64 "\n", s->total.repaired);
	qfs_buf_printf(out, "progress %u\n", s->running ? s->progress : s->passes ? 100u : 0u);
	for (size_t i = 0; i < s->nres; i++) {
		fmt_time(s->res[i].wall_ns, ts, sizeof(ts));
		qfs_buf_printf(out, "group %016" PRIx64 " lsn %" PRIu64 " time %s result %s\n",
			       s->res[i].group, s->res[i].lsn, ts, s->res[i].result);
	}
	qfs_buf_printf(out, "interval_s %" PRIu64 " rate_bytes %" PRIu64 " repair %s reference %s "
		       "reference_compared %" PRIu64 " reference_waiting %zu archive_failures %" PRIu64 "\n",
		       s->o.interval_ms == UINT64_MAX ? 0 : s->o.interval_ms / 1000,
		       s->o.rate_bytes == UINT64_MAX ? 0 : s->o.rate_bytes, s->o.repair ? "on" : "off",
		       s->o.reference ? "on" : "off", s->total.reference, s->waiting, s->total.archive_bad);
	pthread_mutex_unlock(&s->mu);
}

/* See scrub.h. */
void qfs_scrub_alarms(struct qfs_scrub *s, struct qfs_buf *out)
{
	char ts[40];

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nal; i++) {
		fmt_time(s->al[i].raised_ns, ts, sizeof(ts));
		qfs_buf_printf(out, "alarm %s raised %s %s \"%s\"\n", s->al[i].kind, ts, s->al[i].subject,
			       s->al[i].text);
	}
	pthread_mutex_unlock(&s->mu);
}

/* See scrub.h. */
int qfs_scrub_run(struct qfs_cell *c, const struct qfs_scrub_opts *o, struct qfs_scrub_counts *out)
{
	struct qfs_scrub *s = scrub_new(c, o);

	if (!s)
		return -ENOMEM;
	run_pass(s);
	*out = s->pass;
	scrub_free(s);
	return 0;
}
