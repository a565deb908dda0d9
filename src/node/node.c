/*
 * node.c - a storage node: drives one replication state machine (src/repl)
 * and one WAL (src/wal) per group over one shared store (src/store).
 * Contract: node.h; on-disk layout: doc/format-node.md; protocol and driver
 * contract: doc/replication.md.
 *
 * Driver contract (etcd/raft's, which src/repl assumes):
 *   1. Every entry in an update's persist list is appended to the group's WAL
 *      and fsync'd (qfs_wal_sync) BEFORE the state machine hears PERSISTED
 *      for it, and before any message that depends on it is sent.
 *   2. Only entries up to the update's commit LSN are applied to the store,
 *      in LSN order, each exactly once (the store's applied LSN, written in
 *      the same batch, makes replay after a crash idempotent).
 *   3. A proposer is answered only after its entry is applied, so "propose
 *      returned 0" means durable on the write quorum and visible to reads.
 *   4. Entry memory handed to the state machine stays valid until the entry
 *      is persisted (the proposer blocks until then, so its record buffer is
 *      the entry's memory).
 *
 * Threads.  Proposers queue a struct proposal (on their stack) under n->mu
 * and sleep on n->done_cv.  One I/O thread takes every queued proposal at
 * once (the ones that arrive while it writes and fsyncs wait for the next
 * round: that is the group commit), and for each group: steps PROPOSE per
 * proposal (LSNs assigned), appends hdr+payload records, fsyncs the WAL once,
 * steps PERSISTED, applies the committed entries to the store, steps APPLIED,
 * and wakes the proposers.  The I/O thread alone touches g->wal and g->repl,
 * except group_create/drop and open/close, which exclude it with n->glock.
 *
 * Errors while logging.  -ENOSPC, -EDQUOT and other non-sticky write errors
 * fail the proposals of that batch; the WAL has cut itself back, so the state
 * machine is re-initialised at qfs_wal_last() and LSNs stay consecutive.
 * -EIO, QFS_ECORRUPT, a sticky WAL error or any store failure stop the group:
 * its error string shows in status and every later call on it fails with
 * QFS_ESTOPPED until the node is reopened (which replays the WAL).
 *
 * Sealing by age.  Besides the WAL's own size seal, the I/O thread seals a
 * group's open segment once it holds records older than wal_seal_age_ms, so
 * the archiver (which uploads only sealed segments) lags by a bounded time.
 * It waits on work_cv with a timeout for that; g->unsealed_ms is the
 * monotonic time of the first record logged since the last age seal.
 *
 * Lock order (acquire left before right; never the reverse):
 *     n->glock  ->  g->mu
 *     n->glock  ->  n->mu
 * g->mu and n->mu are never held together.  The I/O thread holds n->glock
 * shared for a whole round; group_create/drop hold it exclusive.  The rwlock
 * prefers writers so a stream of readers cannot starve create/drop.  Store
 * reads run without any node lock held (store reads are thread-safe).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/txn.h"
#include "node/node.h"
#include "node/node_int.h"
#include "repl/repl.h"
#include "wal/wal.h"

#define NODE_FORMAT "quorumfs-node 1\n"
#define NODE_FORMAT_PREFIX "quorumfs-node "
#define NODE_ERR_MAX 256
#define NODE_DROP_SUFFIX ".drop"
#define NODE_PAYLOAD_MAX ((size_t)QFS_WAL_RECORD_MAX - QFS_REPL_ENTRY_HDR)

/* One proposal, on the proposer's stack while it waits. */
struct proposal {
	struct proposal *next; /* queue link; protected by n->mu while queued */
	qfs_group_t group;
	uint8_t *rec;          /* QFS_REPL_ENTRY_HDR + len bytes; owned by the proposer */
	size_t len;            /* payload bytes */
	qfs_lsn_t lsn;         /* assigned by the I/O thread */
	int rc;                /* outcome; written by the I/O thread before done */
	int result;            /* txn result when rc == 0 */
	int done;              /* protected by n->mu */
};

struct group {
	qfs_group_t id;
	struct qfs_wal *wal;   /* NULL if it failed to open; see "Threads" above */
	struct qfs_repl repl;  /* see "Threads" above */
	pthread_mutex_t mu;    /* protects the fields below */
	int stopped;           /* 1 after a fatal error */
	char err[NODE_ERR_MAX];        /* why it stopped; no '"' or newline */
	struct qfs_repl_state snap;    /* state after the last round, for status */
	struct qfs_wal_stat wst;       /* WAL stat after the last round */
	uint64_t unsealed_ms;  /* mono ms of the first record since the last age
	                          seal, 0: none; I/O thread (or open) only */
};

struct qfs_node {
	char *dir;
	char *waldir;          /* dir/wal */
	char *az;
	uint32_t id;
	struct qfs_wal_opts wopts;
	uint64_t seal_age_ms;    /* see "Sealing by age"; UINT64_MAX: never */
	uint64_t next_seal_check_ms; /* mono ms; I/O thread only */
	void (*seal_hook)(qfs_group_t group, void *arg); /* set before use */
	void *seal_hook_arg;
	struct qfs_store *store;

	pthread_rwlock_t glock;  /* protects the group map below */
	struct group **groups;   /* sorted by id */
	size_t ngroups, cap;

	pthread_mutex_t mu;      /* protects the queue and closing */
	pthread_cond_t work_cv;  /* I/O thread: the queue is not empty or closing */
	pthread_cond_t done_cv;  /* proposers: some proposal is done */
	struct proposal *qhead, *qtail;
	int closing;
	pthread_t io;

	/* statistics; atomics, relaxed */
	uint64_t st_proposals, st_commits, st_fsyncs, st_bytes;
};

static void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- paths */

static int group_path(const struct qfs_node *n, qfs_group_t id, const char *suffix, char *out)
{
	return qfs_node_path_fmt(out, PATH_MAX, "%s/%016llx%s", n->waldir, (unsigned long long)id, suffix);
}

/* Parse "<16 hex>" (or "<16 hex>.drop" when drop is set). */
static int parse_group_name(const char *name, int drop, qfs_group_t *out)
{
	qfs_group_t v = 0;
	int i;

	for (i = 0; i < 16; i++) {
		char c = name[i];
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = (v << 4) | (qfs_group_t)d;
	}
	if (strcmp(name + 16, drop ? NODE_DROP_SUFFIX : "") != 0)
		return -1;
	*out = v;
	return 0;
}

/* ---------------------------------------------------------------- FORMAT */

/* ---------------------------------------------------------------- groups */

/* Index of id in the map, or -(insertion point) - 1.  Caller holds glock. */
static ssize_t group_index(const struct qfs_node *n, qfs_group_t id)
{
	size_t lo = 0, hi = n->ngroups;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n->groups[mid]->id == id)
			return (ssize_t)mid;
		if (n->groups[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(ssize_t)lo - 1;
}

static struct group *group_find(const struct qfs_node *n, qfs_group_t id)
{
	ssize_t i = group_index(n, id);

	return i >= 0 ? n->groups[i] : NULL;
}

/* Caller holds glock exclusive (or is open). id must be absent. */
static int group_insert(struct qfs_node *n, struct group *g)
{
	ssize_t i = group_index(n, g->id);
	size_t at;

	if (i >= 0)
		return -EEXIST;
	at = (size_t)(-i - 1);
	if (n->ngroups == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 16;
		struct group **a = realloc(n->groups, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		n->groups = a;
		n->cap = cap;
	}
	memmove(n->groups + at + 1, n->groups + at, (n->ngroups - at) * sizeof(*n->groups));
	n->groups[at] = g;
	n->ngroups++;
	return 0;
}

static struct group *group_alloc(struct qfs_node *n, qfs_group_t id)
{
	struct group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->id = id;
	pthread_mutex_init(&g->mu, NULL);
	qfs_repl_init(&g->repl, n->id, 0, 0, 0);
	qfs_repl_state(&g->repl, &g->snap);
	return g;
}

static void group_free(struct group *g)
{
	if (!g)
		return;
	qfs_wal_close(g->wal);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* Publish the state machine and WAL state for status.  Owner thread only. */
static void group_snapshot(struct group *g)
{
	struct qfs_repl_state st;
	struct qfs_wal_stat ws;

	qfs_repl_state(&g->repl, &st);
	memset(&ws, 0, sizeof(ws));
	if (g->wal)
		qfs_wal_stat(g->wal, &ws);
	pthread_mutex_lock(&g->mu);
	g->snap = st;
	g->wst = ws;
	pthread_mutex_unlock(&g->mu);
}

static void group_stop(struct group *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void group_stop(struct group *g, const char *fmt, ...)
{
	char msg[NODE_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *c = msg; *c; c++)
		if (*c == '"' || *c == '\n' || *c == '\r')
			*c = '\'';
	QFS_LOG(QFS_LOG_ERR, "group stopped group=%016llx err=\"%s\"", (unsigned long long)g->id, msg);
	pthread_mutex_lock(&g->mu);
	if (!g->stopped) {
		g->stopped = 1;
		memcpy(g->err, msg, sizeof(msg));
	}
	pthread_mutex_unlock(&g->mu);
}

static int group_stopped(struct group *g)
{
	int s;

	pthread_mutex_lock(&g->mu);
	s = g->stopped;
	pthread_mutex_unlock(&g->mu);
	return s;
}

/* 0 if the node serves group now, else QFS_ENOGROUP or QFS_ESTOPPED. */
static int group_check(struct qfs_node *n, qfs_group_t id)
{
	struct group *g;
	int rc = 0;

	pthread_rwlock_rdlock(&n->glock);
	g = group_find(n, id);
	if (!g)
		rc = QFS_ENOGROUP;
	else if (group_stopped(g))
		rc = QFS_ESTOPPED;
	pthread_rwlock_unlock(&n->glock);
	return rc;
}

/* Finish a drop interrupted by a crash: items, then the WAL tombstone. */
static int group_finish_drop(struct qfs_node *n, qfs_group_t id, const char *tomb)
{
	int rc = qfs_store_drop_group(n->store, id);

	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "group drop failed group=%016llx step=store err=%s",
			(unsigned long long)id, qfs_strerror(rc));
		return rc;
	}
	rc = qfs_wal_destroy(tomb);
	if (rc && rc != -ENOENT) {
		QFS_LOG(QFS_LOG_ERR, "group drop failed group=%016llx step=wal dir=%s err=%s",
			(unsigned long long)id, tomb, qfs_strerror(rc));
		return rc;
	}
	return qfs_node_fsync_dir(n->waldir);
}

/* ---------------------------------------------------------------- recovery */

struct replay {
	struct qfs_node *n;
	struct group *g;
	qfs_lsn_t applied;  /* store's applied LSN, advanced as we replay */
	uint64_t ballot;    /* ballot of the last record read */
	qfs_lsn_t at;       /* LSN being handled, for the error message */
	int store_rc;       /* the store's error, if it stopped the walk */
};

static int replay_cb(qfs_lsn_t lsn, const void *p, size_t len, void *arg)
{
	struct replay *rp = arg;
	struct qfs_repl_entry e;
	int rc, result;

	rp->at = lsn;
	rc = qfs_repl_entry_decode(lsn, p, len, &e);
	if (rc)
		return rc;
	rp->ballot = e.ballot;
	if (lsn <= rp->applied)
		return 0;
	if (e.type == QFS_REPL_ENTRY_NOOP)
		rc = qfs_store_apply_noop(rp->n->store, rp->g->id, lsn);
	else
		rc = qfs_store_apply(rp->n->store, rp->g->id, lsn, e.data, e.len, &result);
	if (rc) {
		rp->store_rc = rc;
		return rc;
	}
	rp->applied = lsn;
	return 0;
}

/* Open the WAL of group id and bring the store up to its last LSN.  A WAL or
 * store that cannot be trusted leaves the group stopped (still returned in
 * *out); only resource errors fail. */
static int group_recover(struct qfs_node *n, qfs_group_t id, struct group **out)
{
	char path[PATH_MAX];
	struct replay rp;
	struct group *g;
	qfs_lsn_t first = 0, last = 0, applied = 0;
	int rc;

	if ((rc = group_path(n, id, "", path)))
		return rc;
	g = group_alloc(n, id);
	if (!g)
		return -ENOMEM;

	rc = qfs_wal_open(path, &n->wopts, &g->wal);
	if (rc == QFS_ECORRUPT || rc == -EIO) {
		group_stop(g, "wal open failed: %s (see the log for file and offset)",
			   qfs_strerror(rc));
		goto out;
	}
	if (rc)
		goto err_free_group;
	first = qfs_wal_first(g->wal);
	last = qfs_wal_last(g->wal);

	rc = qfs_store_applied(n->store, id, &applied);
	if (rc) {
		group_stop(g, "store applied read failed: %s", qfs_strerror(rc));
		applied = 0;
		goto out;
	}
	if (applied > last) {
		group_stop(g, "lost log: store applied %llu beyond wal last %llu",
			   (unsigned long long)applied, (unsigned long long)last);
		applied = last;
		goto out;
	}
	if (last > applied && first > applied + 1) {
		group_stop(g, "lost log: wal starts at %llu but store applied only %llu",
			   (unsigned long long)first, (unsigned long long)applied);
		goto out;
	}

	memset(&rp, 0, sizeof(rp));
	rp.n = n;
	rp.g = g;
	rp.applied = applied;
	if (last) {
		/* Read at least the last record, for its ballot. */
		rc = qfs_wal_read(g->wal, applied < last ? applied + 1 : last, last, replay_cb, &rp);
		if (rc) {
			group_stop(g, "replay failed at lsn %llu: %s%s", (unsigned long long)rp.at,
				   rp.store_rc ? "store: " : "", qfs_strerror(rc));
			applied = rp.applied;
			goto out;
		}
	}
	if (rp.applied > applied)
		QFS_LOG(QFS_LOG_INFO, "group replayed group=%016llx from=%llu to=%llu",
			(unsigned long long)id, (unsigned long long)applied + 1,
			(unsigned long long)rp.applied);
	applied = rp.applied;
	qfs_repl_init(&g->repl, n->id, rp.ballot, last, applied);
	if (last)
		g->unsealed_ms = qfs_clock_mono_ms(); /* the tail may hold records */
	group_snapshot(g);
	*out = g;
	return 0;

out:
	/* Stopped: keep what we know for status. */
	qfs_repl_init(&g->repl, n->id, 0, last, applied <= last ? applied : last);
	group_snapshot(g);
	*out = g;
	return 0;

err_free_group:
	group_free(g);
	return rc;
}

static int cmp_group(const void *a, const void *b)
{
	const struct group *x = *(struct group *const *)a, *y = *(struct group *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Recover every group under waldir; finish interrupted drops first. */
static int node_load_groups(struct qfs_node *n)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	d = opendir(n->waldir);
	if (!d)
		return -errno;
	/* Pass 1: tombstones of interrupted drops. */
	while ((de = readdir(d)) != NULL) {
		qfs_group_t id;

		if (parse_group_name(de->d_name, 1, &id) < 0)
			continue;
		if ((rc = group_path(n, id, NODE_DROP_SUFFIX, path)))
			goto out_close;
		QFS_LOG(QFS_LOG_INFO, "group drop resumed group=%016llx", (unsigned long long)id);
		if ((rc = group_finish_drop(n, id, path)))
			goto out_close;
	}
	/* Pass 2: live groups. */
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct group *g;
		qfs_group_t id;

		if (de->d_name[0] == '.')
			continue;
		if (parse_group_name(de->d_name, 0, &id) < 0) {
			if (parse_group_name(de->d_name, 1, &id) < 0)
				QFS_LOG(QFS_LOG_WARN, "node ignoring entry dir=%s name=%s", n->waldir,
					de->d_name);
			continue;
		}
		if ((rc = group_recover(n, id, &g)))
			goto out_close;
		if (n->ngroups == n->cap) {
			size_t cap = n->cap ? n->cap * 2 : 16;
			struct group **a = realloc(n->groups, cap * sizeof(*a));

			if (!a) {
				group_free(g);
				rc = -ENOMEM;
				goto out_close;
			}
			n->groups = a;
			n->cap = cap;
		}
		n->groups[n->ngroups++] = g;
	}
	if (n->ngroups)
		qsort(n->groups, n->ngroups, sizeof(*n->groups), cmp_group);
out_close:
	closedir(d);
	return rc;
}

/* ---------------------------------------------------------------- I/O thread */

/* Mark proposals done and wake their proposers.  After this the I/O thread
 * must not touch them: they live on the proposers' stacks. */
static void publish(struct qfs_node *n, struct proposal **ps, size_t k)
{
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < k; i++)
		ps[i]->done = 1;
	pthread_cond_broadcast(&n->done_cv);
	pthread_mutex_unlock(&n->mu);
}

static int wal_fatal(struct group *g, int rc)
{
	struct qfs_wal_stat ws;

	if (rc == -EIO || rc == QFS_ECORRUPT || rc == -EINVAL)
		return 1; /* -EINVAL: LSN order broken between repl and wal, a bug */
	qfs_wal_stat(g->wal, &ws);
	return ws.err != 0;
}

/* Log, fsync and apply one batch of at most QFS_REPL_MAX_BATCH proposals of
 * group g (not stopped).  Sets every ps[i]->rc.  Returns 1 if it fsync'd. */
static int commit_batch(struct qfs_node *n, struct group *g, struct proposal **ps, size_t k)
{
	struct qfs_repl_event ev;
	struct qfs_repl_update up;
	struct qfs_repl_state st;
	size_t nlogged = 0, i;
	int err = 0, synced = 0, applying_failed = 0, rc;

	/* 1. Assign LSNs and append (buffered in the WAL). */
	struct qfs_ts now;
	qfs_clock_now(&now);
	uint64_t now_ns = (uint64_t)now.sec * 1000000000ull + now.nsec;
	for (i = 0; i < k; i++) {
		struct proposal *p = ps[i];

		memset(&ev, 0, sizeof(ev));
		ev.type = QFS_REPL_EV_PROPOSE;
		ev.entry.type = QFS_REPL_ENTRY_TXN;
		ev.entry.time_ns = now_ns;
		ev.entry.data = p->rec + QFS_REPL_ENTRY_HDR;
		ev.entry.len = p->len;
		if ((err = qfs_repl_step(&g->repl, &ev, &up)) != 0)
			break; /* -EAGAIN cannot happen: the batch starts empty */
		qfs_repl_entry_encode_hdr(p->rec, &up.persist[0]);
		p->lsn = up.persist[0].lsn;
		if ((err = qfs_wal_append(g->wal, p->lsn, p->rec, QFS_REPL_ENTRY_HDR + p->len)) != 0)
			break;
		nlogged++;
	}
	for (i = nlogged; i < k; i++)
		ps[i]->rc = err;

	/* 2. One fsync for the whole batch: the group commit. */
	if (nlogged) {
		stat_add(&n->st_fsyncs, 1);
		rc = qfs_wal_sync(g->wal);
		if (rc) {
			for (i = 0; i < nlogged; i++)
				ps[i]->rc = rc;
			nlogged = 0;
			err = rc;
		} else {
			synced = 1;
		}
	}
	/* Entries that did get fsync'd are applied below even if the group
	 * stops now: they are committed. */
	if (err && wal_fatal(g, err))
		group_stop(g, "wal write failed: %s", qfs_strerror(err));

	/* 3. Durable: tell the state machine, apply what it commits. */
	if (nlogged) {
		memset(&ev, 0, sizeof(ev));
		ev.type = QFS_REPL_EV_PERSISTED;
		ev.lsn = ps[nlogged - 1]->lsn;
		rc = qfs_repl_step(&g->repl, &ev, &up);
		if (rc) {
			group_stop(g, "state machine refused persisted lsn %llu: %s",
				   (unsigned long long)ev.lsn, qfs_strerror(rc));
			for (i = 0; i < nlogged; i++)
				ps[i]->rc = QFS_ESTOPPED;
			nlogged = 0;
		}
		stat_add(&n->st_proposals, nlogged);
		for (i = 0; i < nlogged; i++) {
			struct proposal *p = ps[i];

			stat_add(&n->st_bytes, QFS_REPL_ENTRY_HDR + p->len);
			if (applying_failed || p->lsn > up.commit) {
				/* In order only; not committed cannot happen with one voter.
				 * Durable, so the next open replays it. */
				p->rc = QFS_ESTOPPED;
				continue;
			}
			rc = qfs_store_apply(n->store, g->id, p->lsn, p->rec + QFS_REPL_ENTRY_HDR, p->len,
					     &p->result);
			if (rc) {
				group_stop(g, "store apply failed at lsn %llu: %s",
					   (unsigned long long)p->lsn, qfs_strerror(rc));
				p->rc = rc;
				applying_failed = 1;
				continue;
			}
			memset(&ev, 0, sizeof(ev));
			ev.type = QFS_REPL_EV_APPLIED;
			ev.lsn = p->lsn;
			rc = qfs_repl_step(&g->repl, &ev, &up);
			if (rc) {
				group_stop(g, "state machine refused applied lsn %llu: %s",
					   (unsigned long long)p->lsn, qfs_strerror(rc));
				applying_failed = 1;
			}
			p->rc = 0; /* the store applied it: that is the outcome */
		}
	}

	/* 4. After a non-fatal write error the WAL went back to its durable
	 * tail: restart the state machine there so LSNs stay consecutive. */
	if (err && !group_stopped(g)) {
		qfs_lsn_t wlast = qfs_wal_last(g->wal);

		qfs_repl_state(&g->repl, &st);
		if (wlast < st.applied || wlast > st.persisted) {
			group_stop(g, "wal last %llu inconsistent after write error (persisted %llu)",
				   (unsigned long long)wlast, (unsigned long long)st.persisted);
		} else {
			qfs_repl_init(&g->repl, n->id, st.ballot, wlast, st.applied);
			QFS_LOG(QFS_LOG_WARN, "wal write failed group=%016llx err=%s failed=%zu last=%llu",
				(unsigned long long)g->id, qfs_strerror(err), k - nlogged,
				(unsigned long long)wlast);
		}
	}
	return synced;
}

/* Handle every proposal of one group (list linked by next). */
static int commit_group(struct qfs_node *n, qfs_group_t id, struct proposal *list)
{
	struct proposal *ps[QFS_REPL_MAX_BATCH];
	struct group *g = group_find(n, id);
	int fail = 0, synced = 0;

	if (!g)
		fail = QFS_ENOGROUP;
	while (list) {
		size_t k = 0;

		while (list && k < QFS_REPL_MAX_BATCH) {
			ps[k++] = list;
			list = list->next;
		}
		if (!fail && group_stopped(g))
			fail = QFS_ESTOPPED;
		if (fail) {
			for (size_t i = 0; i < k; i++)
				ps[i]->rc = fail;
		} else {
			synced |= commit_batch(n, g, ps, k);
			if (!g->unsealed_ms)
				g->unsealed_ms = qfs_clock_mono_ms();
			group_snapshot(g);
		}
		publish(n, ps, k);
	}
	return synced;
}

static void io_round(struct qfs_node *n, struct proposal *list)
{
	int synced = 0;

	pthread_rwlock_rdlock(&n->glock);
	while (list) {
		qfs_group_t id = list->group;
		struct proposal *mine = NULL, **mt = &mine, *rest = NULL, **rt = &rest, *p, *next;

		/* Split off this group's proposals, keeping arrival order. */
		for (p = list; p; p = next) {
			next = p->next;
			p->next = NULL;
			if (p->group == id) {
				*mt = p;
				mt = &p->next;
			} else {
				*rt = p;
				rt = &p->next;
			}
		}
		list = rest;
		synced |= commit_group(n, id, mine);
	}
	pthread_rwlock_unlock(&n->glock);
	if (synced)
		stat_add(&n->st_commits, 1);
}

/* How often the I/O thread looks for segments to seal: a tenth of the age,
 * between 10 ms and 1 s. */
static uint64_t seal_check_period(const struct qfs_node *n)
{
	uint64_t p = n->seal_age_ms / 10;

	return p < 10 ? 10 : p > 1000 ? 1000 : p;
}

/* Seal the open segment of every group whose oldest unsealed record is
 * older than the seal age.  I/O thread, between rounds. */
static void seal_old(struct qfs_node *n)
{
	uint64_t now = qfs_clock_mono_ms();
	void (*hook)(qfs_group_t group, void *arg);
	void *hook_arg;

	if (n->seal_age_ms == UINT64_MAX || now < n->next_seal_check_ms)
		return;
	pthread_mutex_lock(&n->mu);
	hook = n->seal_hook;
	hook_arg = n->seal_hook_arg;
	pthread_mutex_unlock(&n->mu);
	n->next_seal_check_ms = now + seal_check_period(n);
	pthread_rwlock_rdlock(&n->glock);
	for (size_t i = 0; i < n->ngroups; i++) {
		struct group *g = n->groups[i];
		int rc;

		if (!g->unsealed_ms || now - g->unsealed_ms < n->seal_age_ms || !g->wal ||
		    group_stopped(g))
			continue;
		rc = qfs_wal_seal(g->wal);
		if (rc) {
			QFS_LOG(QFS_LOG_WARN, "wal seal failed group=%016llx err=%s",
				(unsigned long long)g->id, qfs_strerror(rc));
			g->unsealed_ms = now; /* try again one age later */
			continue;
		}
		g->unsealed_ms = 0;
		group_snapshot(g);
		if (hook)
			hook(g->id, hook_arg);
	}
	pthread_rwlock_unlock(&n->glock);
}

static void *io_main(void *arg)
{
	struct qfs_node *n = arg;

	pthread_mutex_lock(&n->mu);
	for (;;) {
		struct proposal *list;

		while (!n->qhead && !n->closing) {
			struct timespec ts;
			uint64_t wait_ms = seal_check_period(n);

			if (n->seal_age_ms == UINT64_MAX) {
				pthread_cond_wait(&n->work_cv, &n->mu);
				continue;
			}
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(wait_ms / 1000);
			ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&n->work_cv, &n->mu, &ts) == ETIMEDOUT) {
				pthread_mutex_unlock(&n->mu);
				seal_old(n);
				pthread_mutex_lock(&n->mu);
			}
		}
		if (!n->qhead)
			break; /* closing and drained */
		list = n->qhead;
		n->qhead = n->qtail = NULL;
		pthread_mutex_unlock(&n->mu);
		io_round(n, list);
		seal_old(n);
		pthread_mutex_lock(&n->mu);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

/* ---------------------------------------------------------------- public */

static void node_free(struct qfs_node *n)
{
	for (size_t i = 0; i < n->ngroups; i++)
		group_free(n->groups[i]);
	free(n->groups);
	qfs_store_close(n->store);
	free(n->dir);
	free(n->waldir);
	free(n->az);
	free(n);
}

/* See node.h.  Runs on the caller's thread; the I/O thread starts last, so on
 * error nothing is left running and *out is untouched.  Besides node.h's
 * errors: -EINVAL (no dir, or id 0), -ENAMETOOLONG. */
int qfs_node_open(const struct qfs_node_opts *o, struct qfs_node **out)
{
	pthread_rwlockattr_t ra;
	char path[PATH_MAX];
	struct qfs_node *n;
	int rc;

	if (!o || !o->dir || !*o->dir || o->id == 0)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->id = o->id;
	n->wopts.segment_bytes = o->wal_segment_bytes;
	n->seal_age_ms = o->wal_seal_age_ms ? o->wal_seal_age_ms : QFS_NODE_SEAL_AGE_DEFAULT_MS;
	n->dir = strdup(o->dir);
	n->az = strdup(o->az && *o->az ? o->az : "-");
	if (!n->dir || !n->az) {
		rc = -ENOMEM;
		goto err_free;
	}
	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/wal", o->dir)))
		goto err_free;
	if (!(n->waldir = strdup(path))) {
		rc = -ENOMEM;
		goto err_free;
	}
	if (mkdir(o->dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		QFS_LOG(QFS_LOG_ERR, "node open failed dir=%s err=%s", o->dir, qfs_strerror(rc));
		goto err_free;
	}
	if ((rc = qfs_node_format_check(o->dir, NODE_FORMAT)))
		goto err_free;
	if ((rc = qfs_node_mkdir_durable(n->waldir, o->dir)))
		goto err_free;
	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/store", o->dir)))
		goto err_free;
	if ((rc = qfs_store_open(path, &n->store)))
		goto err_free;
	if ((rc = node_load_groups(n)))
		goto err_free;

	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&n->glock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&n->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&n->done_cv, NULL);
	rc = -pthread_create(&n->io, NULL, io_main, n);
	if (rc)
		goto err_destroy_locks;

	QFS_LOG(QFS_LOG_INFO, "node open dir=%s node=%u az=%s groups=%zu", n->dir, n->id, n->az,
		n->ngroups);
	*out = n;
	return 0;

err_destroy_locks:
	pthread_cond_destroy(&n->done_cv);
	pthread_cond_destroy(&n->work_cv);
	pthread_mutex_destroy(&n->mu);
	pthread_rwlock_destroy(&n->glock);
err_free:
	node_free(n);
	return rc;
}

/* See node.h.  Proposals already queued are logged and applied first; no
 * other call may run concurrently or after. */
void qfs_node_close(struct qfs_node *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->closing = 1;
	pthread_cond_signal(&n->work_cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->io, NULL);
	pthread_cond_destroy(&n->done_cv);
	pthread_cond_destroy(&n->work_cv);
	pthread_mutex_destroy(&n->mu);
	pthread_rwlock_destroy(&n->glock);
	node_free(n);
}

/* See node.h.  Holds glock exclusive (waits for the I/O round in progress).
 * Errors: -EEXIST, -ENOMEM, -ENAMETOOLONG, -errno of mkdir/fsync/WAL open,
 * -EIO from the store when clearing leftovers; nothing created on error. */
int qfs_node_group_create(struct qfs_node *n, qfs_group_t group)
{
	char path[PATH_MAX], tomb[PATH_MAX];
	struct group *g;
	qfs_lsn_t applied = 0;
	int rc;

	if ((rc = group_path(n, group, "", path)) ||
	    (rc = group_path(n, group, NODE_DROP_SUFFIX, tomb)))
		return rc;
	pthread_rwlock_wrlock(&n->glock);
	if (group_find(n, group)) {
		rc = -EEXIST;
		goto out_unlock;
	}
	/* Leftovers of a drop that failed half-way must not leak in. */
	if (access(tomb, F_OK) == 0 && (rc = group_finish_drop(n, group, tomb)))
		goto out_unlock;
	if ((rc = qfs_store_applied(n->store, group, &applied)))
		goto out_unlock;
	if (applied && (rc = qfs_store_drop_group(n->store, group)))
		goto out_unlock;

	g = group_alloc(n, group);
	if (!g) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	if (mkdir(path, 0755) < 0) {
		rc = -errno;
		goto err_free_group;
	}
	if ((rc = qfs_node_fsync_dir(n->waldir)))
		goto err_rmdir;
	if ((rc = qfs_wal_open(path, &n->wopts, &g->wal)))
		goto err_rmdir;
	group_snapshot(g);
	if ((rc = group_insert(n, g)))
		goto err_rmdir;
	pthread_rwlock_unlock(&n->glock);
	QFS_LOG(QFS_LOG_INFO, "group created group=%016llx", (unsigned long long)group);
	return 0;

err_rmdir:
	qfs_wal_close(g->wal);
	g->wal = NULL;
	qfs_wal_destroy(path);
	qfs_node_fsync_dir(n->waldir);
err_free_group:
	group_free(g);
out_unlock:
	pthread_rwlock_unlock(&n->glock);
	return rc;
}

/* See node.h.  Holds glock exclusive.  The WAL directory is first renamed to
 * a ".drop" tombstone (durably), so a crash part-way is finished by the next
 * open.  Errors: QFS_ENOGROUP; -errno of rename/fsync (nothing done); -EIO
 * from the store or -errno from removing the WAL (the group is gone from the
 * node, the rest of the drop is retried at the next open or create). */
int qfs_node_group_drop(struct qfs_node *n, qfs_group_t group)
{
	char path[PATH_MAX], tomb[PATH_MAX];
	struct proposal **pp, *p, *prev = NULL;
	struct group *g;
	ssize_t i;
	int rc;

	if ((rc = group_path(n, group, "", path)) ||
	    (rc = group_path(n, group, NODE_DROP_SUFFIX, tomb)))
		return rc;
	pthread_rwlock_wrlock(&n->glock);
	i = group_index(n, group);
	if (i < 0) {
		rc = QFS_ENOGROUP;
		goto out_unlock;
	}
	g = n->groups[i];
	if (rename(path, tomb) < 0) {
		rc = -errno;
		goto out_unlock;
	}
	if ((rc = qfs_node_fsync_dir(n->waldir))) {
		if (rename(tomb, path) == 0)
			goto out_unlock;
		/* cannot undo: go on, the tombstone will be finished later */
	}
	memmove(n->groups + i, n->groups + i + 1, (n->ngroups - (size_t)i - 1) * sizeof(*n->groups));
	n->ngroups--;

	/* Fail the proposals still queued for it. */
	pthread_mutex_lock(&n->mu);
	for (pp = &n->qhead; (p = *pp) != NULL;) {
		if (p->group == group) {
			*pp = p->next;
			p->rc = QFS_ENOGROUP;
			p->done = 1;
		} else {
			prev = p;
			pp = &p->next;
		}
	}
	n->qtail = prev;
	pthread_cond_broadcast(&n->done_cv);
	pthread_mutex_unlock(&n->mu);

	group_free(g);
	rc = group_finish_drop(n, group, tomb);
	if (rc == 0)
		QFS_LOG(QFS_LOG_INFO, "group dropped group=%016llx", (unsigned long long)group);
out_unlock:
	pthread_rwlock_unlock(&n->glock);
	return rc;
}

/* See node.h.  Takes glock shared. */
int qfs_node_group_exists(struct qfs_node *n, qfs_group_t group)
{
	int found;

	pthread_rwlock_rdlock(&n->glock);
	found = group_find(n, group) != NULL;
	pthread_rwlock_unlock(&n->glock);
	return found;
}

/* See node.h.  cb runs without node locks held (it may call the node) on a
 * copy of the id list; on -ENOMEM for the copy it runs under glock shared. */
void qfs_node_groups(struct qfs_node *n, void (*cb)(qfs_group_t group, void *arg), void *arg)
{
	qfs_group_t *ids;
	size_t k;

	pthread_rwlock_rdlock(&n->glock);
	k = n->ngroups;
	ids = malloc((k ? k : 1) * sizeof(*ids));
	if (!ids) {
		for (size_t i = 0; i < k; i++)
			cb(n->groups[i]->id, arg);
		pthread_rwlock_unlock(&n->glock);
		return;
	}
	for (size_t i = 0; i < k; i++)
		ids[i] = n->groups[i]->id;
	pthread_rwlock_unlock(&n->glock);
	for (size_t i = 0; i < k; i++)
		cb(ids[i], arg);
	free(ids);
}

/* See node.h.  Copies txn (the caller's buffer is free on return), checks it
 * decodes (-EINVAL if not, or if len is 0 or above QFS_WAL_RECORD_MAX -
 * QFS_REPL_ENTRY_HDR), queues it for the I/O thread and sleeps until it is
 * applied or failed.  Also QFS_ESTOPPED if the node is closing. */
int qfs_node_propose(struct qfs_node *n, qfs_group_t group, const void *txn, size_t len,
		     int *result)
{
	struct proposal p;
	struct qfs_txn t;
	int rc;

	if (!txn || len == 0 || len > NODE_PAYLOAD_MAX)
		return -EINVAL;
	/* Never log what the store could not apply: that would stop the group
	 * for good at every replay. */
	qfs_txn_init(&t);
	rc = qfs_txn_decode(txn, len, &t);
	qfs_txn_close(&t);
	if (rc)
		return rc == -ENOMEM ? -ENOMEM : -EINVAL;

	memset(&p, 0, sizeof(p));
	p.group = group;
	p.len = len;
	p.rec = malloc(QFS_REPL_ENTRY_HDR + len);
	if (!p.rec)
		return -ENOMEM;
	memcpy(p.rec + QFS_REPL_ENTRY_HDR, txn, len);

	pthread_mutex_lock(&n->mu);
	if (n->closing) {
		pthread_mutex_unlock(&n->mu);
		free(p.rec);
		return QFS_ESTOPPED;
	}
	if (n->qtail)
		n->qtail->next = &p;
	else
		n->qhead = &p;
	n->qtail = &p;
	pthread_cond_signal(&n->work_cv);
	while (!p.done)
		pthread_cond_wait(&n->done_cv, &n->mu);
	pthread_mutex_unlock(&n->mu);
	free(p.rec);
	if (p.rc == 0)
		*result = p.result;
	return p.rc;
}

/* See node.h and qfs_store_get.  Takes glock shared for the check only. */
int qfs_node_get(struct qfs_node *n, qfs_group_t group, const uint8_t *key, size_t key_len,
		 void **val, size_t *val_len)
{
	int rc = group_check(n, group);

	if (rc)
		return rc;
	return qfs_store_get(n->store, group, key, key_len, val, val_len);
}

/* See node.h and qfs_store_scan.  cb runs with no node lock held. */
int qfs_node_scan(struct qfs_node *n, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		  const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg)
{
	int rc = group_check(n, group);

	if (rc)
		return rc;
	return qfs_store_scan(n->store, group, lo, lo_len, hi, hi_len, cb, arg);
}

/* See node.h.  Takes glock shared and each g->mu in turn; a failed growth of
 * out latches out->err as qfs_buf does. */
void qfs_node_status(struct qfs_node *n, struct qfs_buf *out)
{
	char line[PATH_MAX + 128];

	snprintf(line, sizeof(line), "node %u az %s state ok dir %s\n", n->id, n->az, n->dir);
	qfs_buf_put(out, line, strlen(line));
	pthread_rwlock_rdlock(&n->glock);
	for (size_t i = 0; i < n->ngroups; i++) {
		struct group *g = n->groups[i];
		struct qfs_repl_state st;
		struct qfs_wal_stat ws;
		char err[NODE_ERR_MAX + 16];
		int stopped;

		pthread_mutex_lock(&g->mu);
		st = g->snap;
		ws = g->wst;
		stopped = g->stopped;
		if (stopped)
			snprintf(err, sizeof(err), "stopped err \"%s\"", g->err);
		pthread_mutex_unlock(&g->mu);
		snprintf(line, sizeof(line),
			 "group %016llx state %s leader %u ballot %llu last %llu durable %llu commit %llu "
			 "applied %llu wal_segments %u wal_bytes %llu\n",
			 (unsigned long long)g->id, stopped ? err : "ok", st.leader,
			 (unsigned long long)st.ballot, (unsigned long long)st.last,
			 (unsigned long long)st.persisted, (unsigned long long)st.commit,
			 (unsigned long long)st.applied, ws.segments, (unsigned long long)ws.bytes);
		qfs_buf_put(out, line, strlen(line));
	}
	pthread_rwlock_unlock(&n->glock);
}

/* See node.h.  Counters since open; lock-free, each read atomically. */
void qfs_node_stat(struct qfs_node *n, struct qfs_node_stat *out)
{
	out->proposals = __atomic_load_n(&n->st_proposals, __ATOMIC_RELAXED);
	out->commits = __atomic_load_n(&n->st_commits, __ATOMIC_RELAXED);
	out->fsyncs = __atomic_load_n(&n->st_fsyncs, __ATOMIC_RELAXED);
	out->bytes_logged = __atomic_load_n(&n->st_bytes, __ATOMIC_RELAXED);
}

/* See node.h.  Takes glock shared for the lookup. */
int qfs_node_wal_info(struct qfs_node *n, qfs_group_t group, char *dir, size_t dir_len,
		      qfs_lsn_t *applied)
{
	char path[PATH_MAX];
	qfs_lsn_t a;
	int rc = group_check(n, group);

	if (rc)
		return rc;
	if ((rc = group_path(n, group, "", path)))
		return rc;
	if (strlen(path) >= dir_len)
		return -ENAMETOOLONG;
	if ((rc = qfs_store_applied(n->store, group, &a)))
		return rc;
	memcpy(dir, path, strlen(path) + 1);
	*applied = a;
	return 0;
}

/* See node.h.  The applied LSN is read before the store sync, so every record
 * whose segment is deleted is in the synced store.  glock exclusive around
 * the WAL call: the I/O thread owns g->wal between rounds. */
int qfs_node_wal_release(struct qfs_node *n, qfs_group_t group, qfs_lsn_t lsn)
{
	struct group *g;
	qfs_lsn_t applied;
	int rc = group_check(n, group);

	if (rc)
		return rc;
	if ((rc = qfs_store_applied(n->store, group, &applied)))
		return rc;
	if (lsn > applied + 1)
		lsn = applied + 1;
	if ((rc = qfs_store_sync(n->store)))
		return rc;
	pthread_rwlock_wrlock(&n->glock);
	g = group_find(n, group);
	if (!g)
		rc = QFS_ENOGROUP;
	else if (group_stopped(g) || !g->wal)
		rc = QFS_ESTOPPED;
	else
		rc = qfs_wal_truncate_before(g->wal, lsn);
	if (g && g->wal)
		group_snapshot(g);
	pthread_rwlock_unlock(&n->glock);
	if (rc == 0)
		QFS_LOG(QFS_LOG_DEBUG, "wal released group=%016llx below=%llu", (unsigned long long)group,
			(unsigned long long)lsn);
	return rc;
}

/* See node.h.  cb runs with no node lock held. */
int qfs_node_snapshot_scan(struct qfs_node *n, qfs_group_t group, qfs_lsn_t *applied,
			   qfs_store_scan_cb cb, void *arg)
{
	int rc = group_check(n, group);

	if (rc)
		return rc;
	return qfs_store_snapshot_scan(n->store, group, applied, cb, arg);
}

/* See node.h.  Stored under n->mu so the I/O thread sees it at its next wait. */
void qfs_node_set_seal_hook(struct qfs_node *n, void (*cb)(qfs_group_t group, void *arg), void *arg)
{
	pthread_mutex_lock(&n->mu);
	n->seal_hook = cb;
	n->seal_hook_arg = arg;
	pthread_mutex_unlock(&n->mu);
}
