/*
 * cell.c - the storage nodes of one mount (cell.h): N rnodes on one
 * in-process transport, per-replica operations for the router's leader
 * routing (router/route.c), node stop/start, group reconciliation and a keeper thread that restarts a
 * node whose replica stopped after an error (a full disk, say) or that
 * could not be opened.  doc/cell.md describes the rules.
 *
 * Locking.  c->mu protects every node's rn pointer, its user count and its
 * state; a call takes a node with node_get() (users++) and gives it back
 * with node_put(); stopping a node marks it busy, waits for users to drain
 * and only then closes it, so no call ever runs inside a closed rnode.
 * c->op_mu serialises stops, starts and group creation/drop (reconciling a
 * starting node must not interleave with a group being created).  Lock
 * order: op_mu -> mu.  op_mu may be held across rnode calls (an rnode calls
 * back only through the seal hook, which must merely signal); c->mu never
 * is.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/bigbuf.h"
#include "common/clock.h"
#include "common/glist.h"
#include "common/log.h"
#include "common/sysio.h"
#include "net/net.h"
#include "node/cell.h"
#include "node/cluster.h"
#include "node/node_int.h"
#include "node/rnode.h"

#define CELL_KEEPER_MS 250       /* keeper period */
#define CELL_VLOG_GC_MS 10000    /* value log collection period (a directory
				    listing when nothing can go or nothing
				    changed; else a scan of the chunk records) */
#define CELL_BACKOFF_MIN_MS 1000 /* first restart delay of a failed node */
#define CELL_BACKOFF_MAX_MS 4000
#define CELL_TRIM_MS 5000        /* malloc_trim period */
#define CELL_COMPACT_MS 10000    /* least time between two disk-short compactions */
#define CELL_RESERVE_SLACK (16ull << 20) /* reserve beyond the memtables */
#define CELL_HEAL_FIRST_MS 1000      /* first rebuild of an untrusted replica */
#define CELL_HEAL_BACKOFF_MAX_MS 60000
#define CELL_HEAL_ATTEMPTS 6         /* then give up until stop/start of the node */
#define CELL_HEAL_QUIET_MS 600000    /* attempts count again after this long healthy */
#define CELL_HEAL_WAIT_LOG_MS 10000  /* log why a rebuild waits once it waited this long */

/* Self-healing of one untrusted replica (doc/cell.md "Self-healing"). */
struct heal {
	qfs_group_t group;
	uint32_t node;
	uint32_t attempts;       /* rebuilds started */
	uint64_t next_ms;        /* next check or attempt (mono ms) */
	uint64_t backoff_ms;     /* after a failed or fruitless attempt */
	uint64_t last_ms;        /* last attempt */
	uint64_t since_ms;       /* first seen untrusted */
	qfs_ballot_t ballot;     /* leader ballot of the safety check in progress */
	qfs_lsn_t need;          /* its commit point: the others must have applied it */
	uint64_t run;            /* the node's cn->starts when first seen: a restart
				    of the node starts the count over (not the
				    rnode's address: a restart often gets the same) */
	int rebuilding;          /* rebuilt, catching up */
	int gave_up;
	char why[96];            /* last reason to wait that was logged */
	uint64_t why_ms;         /* when it was logged (mono ms; at most once a minute) */
};

/* A group and its applied LSN, as a stopped node last reported it. */
struct gseen {
	qfs_group_t group;
	qfs_lsn_t applied;
};

struct cnode {
	uint32_t id;
	char az[8];
	char dir[PATH_MAX];
	struct qfs_rnode *rn;   /* NULL while down; c->mu */
	int users;              /* calls inside rn; c->mu */
	int busy;               /* a stop or start is under way; c->mu */
	int held_down;          /* stopped by the test hook: the keeper leaves it */
	int known;              /* seen[] is what it hosted when it stopped */
	struct gseen *seen;     /* c->mu */
	size_t nseen;
	int err;                /* last open error while down (0: none) */
	uint64_t retry_at_ms;   /* keeper: next restart attempt */
	uint64_t backoff_ms;
	uint64_t restarted_ms;  /* keeper: last restart (backoff resets after a quiet minute) */
	uint64_t starts;        /* opens of the node so far; names one run of it; c->mu */
};

struct qfs_cell {
	struct qfs_rcell *rc;          /* cluster mode: everything else unused */
	struct qfs_cell_opts o;
	char *dir;
	struct qfs_paxos_params prm;
	struct qfs_net *net;
	uint32_t n;
	struct cnode nodes[QFS_CELL_MAX_NODES];
	struct qfs_store_cache *cache; /* block cache of every node's store; freed
					  after the nodes close */
	struct qfs_store_opts sto;     /* every node's store budget; immutable */
	uint64_t hold;                 /* more bytes data changes leave free while the
					  archive copies onto the data disk; atomic */
	uint64_t reserve;              /* disk bytes kept for flushes and deletes
					  (every node's memtables + 16 MiB); immutable */
	uint64_t mem_ms, compact_ms;   /* keeper: last malloc_trim, last compaction */
	uint64_t vlog_ms;              /* keeper: last value log collection */
	uint64_t vlog_sum[8];          /* the nodes' value logs at the last
					  collection, summed (status "vlog"
					  line): segments, bytes, live (last
					  scan), reads, bad, removed, rewritten
					  since open; written by the keeper,
					  atomic */

	pthread_mutex_t op_mu;   /* stop/start/create/drop */
	pthread_mutex_t mu;      /* see the file comment */
	pthread_cond_t cv;       /* users drained, keeper wake */
	int closing;
	pthread_t keeper;
	int keeper_started;

	struct qfs_glist *tomb;      /* groups dropped (DIR/DROPPED); op_mu */
	qfs_group_t pinned[QFS_CELL_PINNED_MAX]; /* never tombstoned; immutable */
	uint32_t npinned;
	struct heal *heals;          /* keeper thread only */
	size_t nheals;
	void (*seal_cb)(qfs_group_t, void *); /* c->mu */
	void *seal_arg;

	const struct qfs_cell_route *route; /* the router's routing (cell.h); set
					       before use, immutable while used */
	void *route_arg;
	uint32_t hint;           /* last node a proposal succeeded at (any group);
				    relaxed atomic */
	uint64_t st_proposals_closed, st_fsyncs_closed, st_beside_closed; /* of nodes since stopped; mu */
};

static int cell_replica_rebuild(struct qfs_cell *c, uint32_t id, qfs_group_t group,
				const char *why);

static uint64_t now_ms(void)
{
	return qfs_clock_mono_ms();
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint32_t majority(const struct qfs_cell *c)
{
	return c->n / 2 + 1;
}

static struct cnode *cnode_of(struct qfs_cell *c, uint32_t id)
{
	return id >= 1 && id <= c->n ? &c->nodes[id - 1] : NULL;
}

/* Take node id for a call: its rnode, or NULL if it is down or changing. */
static struct qfs_rnode *node_get(struct qfs_cell *c, uint32_t id)
{
	struct cnode *cn = cnode_of(c, id);
	struct qfs_rnode *rn = NULL;

	if (!cn)
		return NULL;
	pthread_mutex_lock(&c->mu);
	if (cn->rn && !cn->busy) {
		rn = cn->rn;
		cn->users++;
	}
	pthread_mutex_unlock(&c->mu);
	return rn;
}

static void node_put(struct qfs_cell *c, uint32_t id)
{
	struct cnode *cn = cnode_of(c, id);

	pthread_mutex_lock(&c->mu);
	/* only a stop waits for the users to drain (stop_locked sets busy
	 * first): a broadcast per call would wake the keeper, which shares
	 * the cv, for a whole keeper round per request */
	if (--cn->users == 0 && cn->busy)
		pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* --------------------------------------------------------- groups seen */

static const struct gseen *seen_find(const struct cnode *cn, qfs_group_t g)
{
	for (size_t i = 0; i < cn->nseen; i++)
		if (cn->seen[i].group == g)
			return &cn->seen[i];
	return NULL;
}

/* Does node cn host g?  1 yes, 0 no, -1 unknown (down, never seen). */
static int hosts(struct qfs_cell *c, struct cnode *cn, qfs_group_t g)
{
	struct qfs_rnode *rn = node_get(c, cn->id);
	int r;

	if (rn) {
		r = qfs_rnode_group_exists(rn, g);
		node_put(c, cn->id);
		return r;
	}
	pthread_mutex_lock(&c->mu);
	r = cn->known ? seen_find(cn, g) != NULL : -1;
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Every group the running nodes host, and with_down: also those the
 * stopped nodes hosted when they stopped; ascending, without repeats. */
static int groups_union(struct qfs_cell *c, int with_down, struct qfs_glist *out)
{
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];
		struct qfs_rnode *rn = node_get(c, cn->id);
		struct qfs_glist l = { 0 };

		if (rn) {
			qfs_rnode_groups(rn, qfs_glist_add, &l);
			node_put(c, cn->id);
		} else if (with_down) {
			pthread_mutex_lock(&c->mu);
			for (size_t k = 0; k < cn->nseen; k++)
				qfs_glist_add(cn->seen[k].group, &l);
			pthread_mutex_unlock(&c->mu);
		}
		for (size_t k = 0; k < l.n; k++)
			if (!qfs_glist_has(out, l.v[k]))
				qfs_glist_add(l.v[k], out);
		if (l.err)
			out->err = l.err;
		qfs_glist_free(&l);
	}
	qfs_glist_sort(out);
	return out->err;
}

/* Every group any node hosts (running: asked; down: as last seen). */
static int all_groups(struct qfs_cell *c, struct qfs_glist *out)
{
	return groups_union(c, 1, out);
}

static void members(const struct qfs_cell *c, struct qfs_paxos_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->n = c->n;
	for (uint32_t i = 0; i < c->n; i++)
		cfg->ids[i] = i + 1;
}

/* Tombstones: the ids of dropped groups, one 16-hex line each in
 * DIR/DROPPED (written durably before any replica is dropped).  Group ids
 * are never reused, so a replica whose id is there was dropped while its
 * node was down; nothing is ever dropped merely because other nodes lack
 * it (two blank nodes must not erase the last good replica). */
static int tomb_save(struct qfs_cell *c)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct qfs_buf b;
	int rc;

	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/DROPPED", c->dir)) ||
	    (rc = qfs_node_path_fmt(tmp, sizeof(tmp), "%s/DROPPED.tmp", c->dir)))
		return rc;
	qfs_buf_init(&b);
	for (size_t i = 0; i < c->tomb->n; i++)
		qfs_buf_printf(&b, "%016" PRIx64 "\n", c->tomb->v[i]);
	qfs_buf_put_u8(&b, 0);
	rc = b.err ? b.err : qfs_node_file_put(c->dir, tmp, path, (const char *)b.data);
	qfs_buf_close(&b);
	return rc;
}

static int tomb_load(struct qfs_cell *c)
{
	char path[PATH_MAX], line[64];
	FILE *f;
	int rc;

	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/DROPPED", c->dir)))
		return rc;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char *end;
		unsigned long long g = strtoull(line, &end, 16);

		if (end != line + 16 || *end != '\n') {
			QFS_LOG(QFS_LOG_WARN, "cell tombstone line ignored path=%s", path);
			continue;
		}
		qfs_glist_add((qfs_group_t)g, c->tomb);
	}
	fclose(f);
	return c->tomb->err;
}

/* 1 if group was pinned at open (never dropped for good). */
static int is_pinned(const struct qfs_cell *c, qfs_group_t group)
{
	for (uint32_t i = 0; i < c->npinned; i++)
		if (c->pinned[i] == group)
			return 1;
	return 0;
}

/* Drop from node cn (rn) the replicas of dropped groups (tombstones).
 * Caller holds op_mu. */
static void drop_orphans(struct qfs_cell *c, struct cnode *cn, struct qfs_rnode *rn)
{
	struct qfs_glist mine = { 0 };

	qfs_rnode_groups(rn, qfs_glist_add, &mine);
	for (size_t i = 0; i < mine.n; i++) {
		qfs_group_t g = mine.v[i];

		if (!is_pinned(c, g) && qfs_glist_has(c->tomb, g)) {
			int rc = qfs_rnode_group_drop(rn, g);

			QFS_LOG(rc ? QFS_LOG_ERR : QFS_LOG_INFO,
				"cell reconcile drop group=%016" PRIx64 " node=%u rc=%s", g, cn->id,
				rc ? qfs_strerror(rc) : "ok");
		}
	}
	qfs_glist_free(&mine);
}

/* The members of group g as a running replica on a node other than cn
 * applied them (they change through the log: doc/paxos.md section 7).
 * 0 with *out, or -ENOENT when no running replica can tell. */
static int members_of(struct qfs_cell *c, const struct cnode *cn, qfs_group_t g,
		      struct qfs_paxos_config *out)
{
	for (uint32_t k = 0; k < c->n; k++) {
		struct qfs_rnode *rn;
		int rc;

		if (&c->nodes[k] == cn || !(rn = node_get(c, k + 1)))
			continue;
		rc = qfs_rnode_group_members(rn, g, out);
		node_put(c, k + 1);
		if (rc == 0 && out->n)
			return 0;
	}
	return -ENOENT;
}

/* Bring node cn (rn is ours alone, or published with op_mu held) in line:
 * create the groups a majority of the other nodes hosts (the new replica
 * catches up from the leader's log), then drop its orphans.  Caller holds
 * op_mu. */
static void reconcile(struct qfs_cell *c, struct cnode *cn, struct qfs_rnode *rn)
{
	struct qfs_glist all = { 0 }, mine = { 0 };
	struct qfs_paxos_config cfg;

	members(c, &cfg);
	all_groups(c, &all);
	qfs_rnode_groups(rn, qfs_glist_add, &mine);
	for (size_t i = 0; i < all.n; i++) {
		qfs_group_t g = all.v[i];
		uint32_t have = 0;
		int rc;

		if (qfs_glist_has(&mine, g))
			continue;
		for (uint32_t k = 0; k < c->n; k++)
			if (&c->nodes[k] != cn && hosts(c, &c->nodes[k], g) == 1)
				have++;
		if (have < majority(c))
			continue;
		{
			/* the group's own members, when a replica can say: a node
			 * they left out (removed) is not given the group again */
			struct qfs_paxos_config gm;
			int member = 0;

			if (members_of(c, cn, g, &gm) == 0) {
				for (uint32_t k = 0; k < gm.n; k++)
					member |= gm.ids[k] == cn->id;
				if (!member) {
					QFS_LOG(QFS_LOG_INFO, "cell reconcile skip group=%016" PRIx64
						" node=%u why=\"not a member\"", g, cn->id);
					continue;
				}
				rc = qfs_rnode_group_create(rn, g, &gm);
			} else {
				rc = qfs_rnode_group_create(rn, g, &cfg);
			}
		}
		QFS_LOG(rc && rc != -EEXIST ? QFS_LOG_ERR : QFS_LOG_INFO,
			"cell reconcile create group=%016" PRIx64 " node=%u rc=%s", g, cn->id,
			rc ? qfs_strerror(rc) : "ok");
	}
	drop_orphans(c, cn, rn);
	qfs_glist_free(&all);
	qfs_glist_free(&mine);
}

/* ------------------------------------------------------------ start/stop */

/* 1 if dir is missing or holds no entries (a replaced or wiped disk). */
static int dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return errno == ENOENT;
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/* Say that node cn starts from an empty directory while its peers hold
 * data: what happens next and what the operator can do. */
static void warn_empty(const struct cnode *cn)
{
	char ed[QFS_ESC_MAX(sizeof(cn->dir))];

	QFS_LOG(QFS_LOG_WARN,
		"cell node directory empty node=%u az=%s dir=%s action=rebuild "
		"what=\"its replicas are recreated from the other nodes: snapshot, then log catch-up\" "
		"hint=\"keep the other nodes up until .quorumfs/status shows every replica of node %u health ok\"",
		cn->id, cn->az, qfs_esc(cn->dir, ed, sizeof(ed)), cn->id);
}

static int node_open(struct qfs_cell *c, struct cnode *cn, int cold, struct qfs_rnode **out)
{
	struct qfs_rnode_opts ro = {
		.dir = cn->dir,
		.id = cn->id,
		.az = cn->az,
		.net = c->net,
		.paxos = &c->prm,
		.wal_segment_bytes = c->o.wal_segment_bytes,
		.wal_seal_age_ms = c->o.wal_seal_age_ms,
		.wal_zero_ahead = c->o.wal_zero_ahead,
		.store = &c->sto,
		.space_reserve = c->reserve,
		.space_hold = &c->hold,
		.cold_start = cold,
	};
	int rc = qfs_node_mkdir_durable(cn->dir, c->dir);

	if (rc == 0)
		rc = qfs_rnode_open(&ro, out);
	return rc;
}

/* Start a down node: open, reconcile, publish.  Caller holds op_mu. */
static int start_locked(struct qfs_cell *c, struct cnode *cn)
{
	struct qfs_rnode *rn;
	int rc;

	if (dir_empty(cn->dir))
		warn_empty(cn);
	rc = node_open(c, cn, 0, &rn);
	if (rc) {
		pthread_mutex_lock(&c->mu);
		cn->err = rc;
		pthread_mutex_unlock(&c->mu);
		QFS_LOG(QFS_LOG_ERR, "cell node start failed node=%u az=%s dir=%s err=\"%s\"", cn->id, cn->az,
			cn->dir, qfs_strerror(rc));
		return rc;
	}
	reconcile(c, cn, rn);
	pthread_mutex_lock(&c->mu);
	if (c->seal_cb)
		qfs_rnode_set_seal_hook(rn, c->seal_cb, c->seal_arg);
	cn->rn = rn;
	cn->starts++;
	cn->err = 0;
	cn->known = 0;
	free(cn->seen);
	cn->seen = NULL;
	cn->nseen = 0;
	pthread_mutex_unlock(&c->mu);
	/* A node coming back may bring a quorum back: the router's waits from
	 * now on get their whole timeout again (the election takes a moment)
	 * instead of the short wait kept for groups whose last wait timed out. */
	if (c->route && c->route->node_up)
		c->route->node_up(c->route_arg);
	QFS_LOG(QFS_LOG_INFO, "cell node up node=%u az=%s dir=%s", cn->id, cn->az, cn->dir);
	/* What this node hosts may settle another node's orphans. */
	for (uint32_t k = 0; k < c->n; k++) {
		struct qfs_rnode *orn;

		if (&c->nodes[k] == cn || !(orn = node_get(c, k + 1)))
			continue;
		drop_orphans(c, &c->nodes[k], orn);
		node_put(c, k + 1);
	}
	return 0;
}

struct seen_walk {
	struct qfs_rnode *rn;
	struct gseen *v;
	size_t n, cap;
};

static void seen_add(qfs_group_t g, void *arg)
{
	struct seen_walk *w = arg;
	struct qfs_rnode_ginfo gi;

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 32;
		struct gseen *v = realloc(w->v, cap * sizeof(*v));

		if (!v)
			return; /* then it is not "known": release stays conservative */
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n].group = g;
	w->v[w->n].applied = qfs_rnode_group_info(w->rn, g, &gi) == 0 ? gi.applied : 0;
	w->n++;
}

/* Stop a running node: drain its users, remember what it hosts, close it.
 * Caller holds op_mu. */
static void stop_locked(struct qfs_cell *c, struct cnode *cn, const char *why)
{
	struct seen_walk w = { 0 };
	struct qfs_rnode_stat st;
	struct qfs_rnode *rn;

	pthread_mutex_lock(&c->mu);
	cn->busy = 1;
	while (cn->users)
		pthread_cond_wait(&c->cv, &c->mu);
	rn = cn->rn;
	pthread_mutex_unlock(&c->mu);

	w.rn = rn;
	qfs_rnode_groups(rn, seen_add, &w);
	qfs_rnode_stat(rn, &st);
	qfs_rnode_close(rn);

	pthread_mutex_lock(&c->mu);
	cn->rn = NULL;
	cn->busy = 0;
	cn->seen = w.v;
	cn->nseen = w.n;
	cn->known = 1;
	c->st_proposals_closed += st.proposals;
	c->st_fsyncs_closed += st.fsyncs;
	c->st_beside_closed += st.beside;
	pthread_mutex_unlock(&c->mu);
	QFS_LOG(c->closing ? QFS_LOG_INFO : QFS_LOG_WARN, "cell node down node=%u az=%s why=%s", cn->id,
		cn->az, why);
}

/* See cell.h. */
int qfs_cell_node_stop(struct qfs_cell *c, uint32_t id)
{
	struct cnode *cn = cnode_of(c, id);
	int rc = 0;

	if (c->rc)
		return -EOPNOTSUPP;
	if (!cn)
		return -EINVAL;
	pthread_mutex_lock(&c->op_mu);
	if (!cn->rn) {
		rc = -EALREADY;
	} else {
		cn->held_down = 1;
		stop_locked(c, cn, "stopped by the control file (test hook)");
	}
	pthread_mutex_unlock(&c->op_mu);
	return rc;
}

/* See cell.h. */
int qfs_cell_node_start(struct qfs_cell *c, uint32_t id)
{
	struct cnode *cn = cnode_of(c, id);
	int rc;

	if (c->rc)
		return -EOPNOTSUPP;
	if (!cn)
		return -EINVAL;
	pthread_mutex_lock(&c->op_mu);
	if (cn->rn) {
		rc = -EALREADY;
	} else {
		rc = start_locked(c, cn);
		if (rc == 0)
			cn->held_down = 0;
	}
	pthread_mutex_unlock(&c->op_mu);
	return rc;
}

/* ---------------------------------------------------------------- keeper */

/* Does some group of rn sit stopped after an error? */
static int has_stopped_group(struct qfs_rnode *rn, int *err)
{
	struct qfs_glist l = { 0 };
	int found = 0;

	qfs_rnode_groups(rn, qfs_glist_add, &l);
	for (size_t i = 0; i < l.n && !found; i++) {
		struct qfs_rnode_ginfo gi;

		/* A copy that cannot be trusted does not heal by a restart:
		 * heal_round rebuilds it. */
		if (qfs_rnode_group_info(rn, l.v[i], &gi) == 0 && gi.stopped && !gi.untrusted &&
		    gi.err != QFS_ECORRUPT) {
			found = 1;
			*err = gi.err;
		}
	}
	qfs_glist_free(&l);
	return found;
}

static void backoff_next(struct cnode *cn, uint64_t now)
{
	if (!cn->backoff_ms || now - cn->restarted_ms > 60000)
		cn->backoff_ms = CELL_BACKOFF_MIN_MS;
	else if (cn->backoff_ms < CELL_BACKOFF_MAX_MS)
		cn->backoff_ms *= 2;
	cn->retry_at_ms = now + cn->backoff_ms;
}

static void node_heal(struct qfs_cell *c, struct cnode *cn, uint64_t now);

/* Restart nodes with a stopped group, start nodes that are down without
 * the test hook holding them, each with a backoff; rebuild a node whose
 * store is corrupt. */
static void keeper_round(struct qfs_cell *c)
{
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];
		struct qfs_rnode *rn = node_get(c, cn->id);
		uint64_t now = now_ms();
		int err = 0, stopped;

		if (rn) {
			stopped = has_stopped_group(rn, &err);
			node_put(c, cn->id);
			if (!stopped)
				continue;
			if (!cn->retry_at_ms) {
				backoff_next(cn, now);
				QFS_LOG(QFS_LOG_WARN, "cell node restart scheduled node=%u err=\"%s\" in_ms=%" PRIu64,
					cn->id, qfs_strerror(err), cn->backoff_ms);
				continue;
			}
			if (now < cn->retry_at_ms)
				continue;
			pthread_mutex_lock(&c->op_mu);
			if (cn->rn && !cn->held_down) {
				stop_locked(c, cn, "a replica stopped after an error: restarting the node");
				cn->restarted_ms = now;
				if (start_locked(c, cn) == 0)
					cn->retry_at_ms = 0;
				else
					backoff_next(cn, now);
			}
			pthread_mutex_unlock(&c->op_mu);
			continue;
		}
		pthread_mutex_lock(&c->op_mu);
		/* A store that cannot be trusted is rebuilt (node_heal); a
		 * directory of another format is left alone (status says why). */
		if (!cn->rn && !cn->held_down && !c->closing && cn->err == QFS_ECORRUPT) {
			node_heal(c, cn, now);
		} else if (!cn->rn && !cn->held_down && !c->closing && cn->err != QFS_ECORRUPT &&
			   cn->err != QFS_EFORMAT) {
			if (!cn->retry_at_ms) {
				backoff_next(cn, now);
			} else if (now >= cn->retry_at_ms) {
				cn->restarted_ms = now;
				if (start_locked(c, cn) == 0)
					cn->retry_at_ms = 0;
				else
					backoff_next(cn, now);
			}
		}
		pthread_mutex_unlock(&c->op_mu);
	}
}

/* Memory and disk upkeep, from the keeper every CELL_KEEPER_MS at most:
 *  - malloc_trim every CELL_TRIM_MS gives the heap's free pages (glibc keeps
 *    them per arena after a burst of write-back buffers) back to the system;
 *  - when the data disk has less than twice the reserve free (but still
 *    the reserve: a compaction that hits a full disk would stop the store),
 *    every running node's store is compacted (at most every
 *    CELL_COMPACT_MS), so that the space of deleted files returns (RocksDB
 *    frees it only when compaction meets the deletes);
 *  - every CELL_VLOG_GC_MS each store's value log is collected (segments
 *    no chunk uses any more go: doc/format-store.md "Value log"). */
static void keeper_space(struct qfs_cell *c)
{
	uint64_t now = now_ms(), avail;

	if (now - c->mem_ms >= CELL_TRIM_MS) {
		c->mem_ms = now;
		qfs_bigbuf_trim(QFS_BIGBUF_IDLE_MS); /* idle write-back buffers */
		malloc_trim(0);
	}
	if (now - c->vlog_ms >= CELL_VLOG_GC_MS) {
		uint64_t sum[8] = { 0 };
		int scanned = 0;

		c->vlog_ms = now;
		for (uint32_t id = 1; id <= c->n; id++) {
			struct qfs_rnode *rn = node_get(c, id); /* a stop waits for us */
			struct qfs_store_vlog_stat vs;
			int rc;

			if (!rn)
				continue;
			rc = qfs_rnode_store_vlog_gc(rn, &vs);
			node_put(c, id);
			sum[0] += vs.segments;
			sum[1] += vs.bytes;
			sum[2] += vs.live;
			sum[3] += vs.reads;
			sum[4] += vs.bad;
			sum[5] += vs.gc_removed;
			sum[6] += vs.gc_rewritten;
			sum[7] += vs.extents;
			scanned |= vs.scanned;
			if (rc || vs.removed)
				QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "cell vlog collected node=%u removed=%llu "
					"freed=%llu segments=%llu err=\"%s\"", id, (unsigned long long)vs.removed,
					(unsigned long long)vs.freed, (unsigned long long)vs.segments,
					rc ? qfs_strerror(rc) : "none");
		}
		for (int i = 0; i < 8; i++)
			if (i != 2 || scanned)
				__atomic_store_n(&c->vlog_sum[i], sum[i], __ATOMIC_RELAXED);
	}
	if (now - c->compact_ms < CELL_COMPACT_MS || (avail = qfs_sysio_disk_avail(c->dir)) >= 2 * c->reserve)
		return;
	c->compact_ms = now;
	for (uint32_t id = 1; id <= c->n; id++) {
		struct qfs_rnode *rn = node_get(c, id); /* a stop waits for us */
		int rc;

		if (!rn)
			continue;
		rc = qfs_rnode_store_compact(rn, c->reserve);
		node_put(c, id);
		QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "cell store compacted node=%u free=%llu err=\"%s\"", id,
			(unsigned long long)avail, rc ? qfs_strerror(rc) : "none");
	}
}

/* ------------------------------------------------------------ self-healing */

static struct heal *heal_find(struct qfs_cell *c, uint32_t node, qfs_group_t g, int add)
{
	struct heal *h;

	for (size_t i = 0; i < c->nheals; i++)
		if (c->heals[i].node == node && c->heals[i].group == g)
			return &c->heals[i];
	if (!add)
		return NULL;
	h = realloc(c->heals, (c->nheals + 1) * sizeof(*h));
	if (!h)
		return NULL;
	c->heals = h;
	h = &c->heals[c->nheals++];
	memset(h, 0, sizeof(*h));
	h->node = node;
	h->group = g;
	return h;
}

/* Is erasing node bad's replica of g safe now?  The other nodes must all
 * run and host a replica that is not stopped, one of them must lead with a
 * lease (its barrier committed: it holds every chosen entry), and every
 * other one must have applied the commit point that leader had at the
 * previous check (h->need of h->ballot): then every entry chosen so far is
 * on each of them, and any later one needs them both (bad does not vote),
 * so no quorum including the erased replica can lose a chosen entry.  This
 * also means one rebuild at a time: a replica still catching up has not
 * applied the leader's commit point.  0 when safe (*leader set), else 1
 * with why filled. */
static int heal_safe(struct qfs_cell *c, struct heal *h, uint32_t *leader, char *why, size_t wlen)
{
	struct qfs_rnode_ginfo gi[QFS_CELL_MAX_NODES];
	uint32_t l = 0, others = 0;

	for (uint32_t k = 1; k <= c->n; k++) {
		struct qfs_rnode *rn;
		int have, strong = 0;

		if (k == h->node)
			continue;
		others++;
		if (!(rn = node_get(c, k))) {
			snprintf(why, wlen, "node %u is down", k);
			return 1;
		}
		have = qfs_rnode_group_info(rn, h->group, &gi[k - 1]) == 0;
		if (have && gi[k - 1].role == QFS_PAXOS_LEADER && !gi[k - 1].stopped)
			strong = qfs_rnode_can_read_strong(rn, h->group);
		node_put(c, k);
		if (!have) {
			snprintf(why, wlen, "node %u has no replica", k);
			return 1;
		}
		if (gi[k - 1].stopped) {
			snprintf(why, wlen, "node %u's replica is stopped too (%s)", k,
				 qfs_strerror(gi[k - 1].err));
			return 1;
		}
		if (strong)
			l = k;
	}
	if (others < majority(c)) {
		snprintf(why, wlen, "the other replicas are no quorum without it");
		return 1;
	}
	if (!l) {
		snprintf(why, wlen, "no leader with a lease among the other replicas");
		h->ballot = 0;
		return 1;
	}
	if (h->ballot != gi[l - 1].ballot) {
		/* First look at this leader: its commit point must reach the
		 * others before the next check. */
		h->ballot = gi[l - 1].ballot;
		h->need = gi[l - 1].commit;
		snprintf(why, wlen, "waiting for the other replicas to apply lsn %" PRIu64, h->need);
		return 1;
	}
	for (uint32_t k = 1; k <= c->n; k++)
		if (k != h->node && gi[k - 1].applied < h->need) {
			snprintf(why, wlen, "node %u has applied %" PRIu64 " of %" PRIu64, k,
				 gi[k - 1].applied, h->need);
			return 1;
		}
	*leader = l;
	return 0;
}

static void heal_backoff(struct heal *h, uint64_t now)
{
	h->backoff_ms = h->backoff_ms ? 2 * h->backoff_ms : 2000;
	if (h->backoff_ms > CELL_HEAL_BACKOFF_MAX_MS)
		h->backoff_ms = CELL_HEAL_BACKOFF_MAX_MS;
	h->next_ms = now + h->backoff_ms;
}

/* The attempt clock of h (one replica, or a whole node) at now: counts
 * start over after a long healthy spell, and the first look starts the
 * first delay.  1: an attempt is due; 0: not yet (first delay, backoff)
 * or given up; -1: the attempts are spent, h gives up now (the caller
 * says so, once). */
static int heal_due(struct heal *h, uint64_t now)
{
	if (h->last_ms && now - h->last_ms > CELL_HEAL_QUIET_MS)
		h->attempts = 0; /* it stayed healthy a long while */
	if (!h->since_ms) {
		h->since_ms = now;
		h->next_ms = now + CELL_HEAL_FIRST_MS;
		h->why[0] = '\0';
	}
	if (h->gave_up || now < h->next_ms)
		return 0;
	if (h->attempts >= CELL_HEAL_ATTEMPTS) {
		h->gave_up = 1;
		return -1;
	}
	return 1;
}

/* It is not safe yet (why): look again in two keeper rounds.  Returns 1
 * when the caller should log why: leaders take a few seconds after a
 * start, so only when the wait lasts, once per reason, at most once a
 * minute, and never for the routine "waiting for" the others to apply. */
static int heal_wait(struct heal *h, const char *why, uint64_t now)
{
	int say = now - h->since_ms >= CELL_HEAL_WAIT_LOG_MS && strcmp(why, h->why) != 0 &&
		  !strstr(why, "waiting for") && (!h->why_ms || now - h->why_ms >= 60000);

	if (say) {
		snprintf(h->why, sizeof(h->why), "%s", why);
		h->why_ms = now;
	}
	h->next_ms = now + 2 * CELL_KEEPER_MS;
	return say;
}

/* One keeper look at node cn's replica of g, stopped untrusted (err). */
static void heal_one(struct qfs_cell *c, struct cnode *cn, const struct qfs_rnode *rn,
		     qfs_group_t g, int err, uint64_t now)
{
	struct heal *h = heal_find(c, cn->id, g, 1);
	struct qfs_paxos_config cfg;
	char why[96];
	uint32_t leader = 0;
	uint64_t run;
	int rc;

	if (!h)
		return;
	pthread_mutex_lock(&c->mu);
	run = cn->starts;
	pthread_mutex_unlock(&c->mu);
	if (h->run != run) { /* first seen, or the node was restarted since */
		memset(h, 0, sizeof(*h));
		h->node = cn->id;
		h->group = g;
		h->run = run;
	}
	h->rebuilding = 0;
	if ((rc = heal_due(h, now)) <= 0) {
		if (rc < 0)
			QFS_LOG(QFS_LOG_ERR, "cell replica rebuild given up group=%016" PRIx64 " node=%u attempts=%u"
				" err=\"%s\" operator=\"check the disk of %s; 'stop %u' then 'start %u' in"
				" .quorumfs/nodes tries again, or replace the directory (one node at a time)\"",
				g, cn->id, h->attempts, qfs_strerror(err), cn->dir, cn->id, cn->id);
		return;
	}
	if (heal_safe(c, h, &leader, why, sizeof(why))) {
		if (heal_wait(h, why, now))
			QFS_LOG(QFS_LOG_WARN, "cell replica rebuild waiting group=%016" PRIx64 " node=%u"
				" err=\"%s\" why=\"%s\" operator=\"it is rebuilt once the other replicas"
				" are healthy; start the nodes that are down\"", g, cn->id, qfs_strerror(err), why);
		return;
	}
	h->attempts++;
	h->last_ms = now;
	h->ballot = 0;
	h->why[0] = '\0';
	QFS_LOG(QFS_LOG_WARN, "cell replica rebuild group=%016" PRIx64 " node=%u attempt=%u/%u"
		" err=\"%s\" action=\"erase this replica (its log, items and files in %s) and copy it"
		" from the leader, node %u (log or snapshot); its promise is kept\" operator=\"nothing"
		" to do; if this repeats, check the disk of %s\"", g, cn->id, h->attempts,
		CELL_HEAL_ATTEMPTS, qfs_strerror(err), cn->dir, leader, cn->dir);
	members(c, &cfg);
	pthread_mutex_lock(&c->op_mu);
	rc = QFS_ENOGROUP;
	if (!qfs_glist_has(c->tomb, g)) {
		struct qfs_rnode *r = node_get(c, cn->id);

		if (r == rn)
			rc = qfs_rnode_group_rebuild(r, g, &cfg);
		if (r)
			node_put(c, cn->id);
	}
	pthread_mutex_unlock(&c->op_mu);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "cell replica rebuild failed group=%016" PRIx64 " node=%u attempt=%u"
			" err=\"%s\"", g, cn->id, h->attempts, qfs_strerror(rc));
		heal_backoff(h, now);
		return;
	}
	h->rebuilding = 1;
	heal_backoff(h, now);
}

/* A replica being healed that is no longer stopped: once it applied what
 * the most advanced replica has, say so (once). */
static void heal_progress(struct qfs_cell *c, struct cnode *cn, qfs_group_t g,
			  const struct qfs_rnode_ginfo *gi, uint64_t now)
{
	struct heal *h = heal_find(c, cn->id, g, 0);
	qfs_lsn_t best = 0;

	if (!h || !h->rebuilding)
		return;
	for (uint32_t k = 1; k <= c->n; k++) {
		struct qfs_rnode *rn = node_get(c, k);
		struct qfs_rnode_ginfo o;

		if (!rn)
			continue;
		if (qfs_rnode_group_info(rn, g, &o) == 0 && !o.stopped && o.commit > best)
			best = o.commit;
		node_put(c, k);
	}
	if (gi->applied < best)
		return;
	h->rebuilding = 0;
	QFS_LOG(QFS_LOG_INFO, "cell replica rebuilt group=%016" PRIx64 " node=%u applied=%" PRIu64
		" ms=%" PRIu64 " attempt=%u", g, cn->id, gi->applied, now - h->since_ms, h->attempts);
	h->since_ms = 0;
}

/* Move node directory dir (or, when it is a symlink, the directory it
 * points to) aside to "<real dir>.broken-<unix time>" and create it again
 * empty, durably.  *aside gets the new name.  0 or -errno. */
static int move_aside(const char *dir, char *aside, size_t len)
{
	char real[PATH_MAX], parent[PATH_MAX];
	char *slash;
	int rc;

	if (!realpath(dir, real))
		return -errno;
	if ((rc = qfs_node_path_fmt(aside, len, "%s.broken-%lld", real, (long long)time(NULL))))
		return rc;
	if (qfs_sys_rename(real, aside) < 0)
		return -errno;
	if (qfs_sys_mkdir(real, 0700) < 0)
		return -errno;
	snprintf(parent, sizeof(parent), "%s", real);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	return qfs_node_fsync_dir(parent);
}

/* Keeper, op_mu held: node cn could not be opened because its store is
 * corrupt.  Once it is safe for every group the other nodes host (as for
 * one replica: heal_safe), move its directory aside and start it empty:
 * reconciliation creates its replicas, which catch up from the leaders.
 * Attempts and backoff as for one replica. */
static void node_heal(struct qfs_cell *c, struct cnode *cn, uint64_t now)
{
	struct heal *h = heal_find(c, cn->id, 0, 1); /* group 0: the whole node */
	struct qfs_glist all = { 0 };
	char why[96] = "", aside[PATH_MAX];
	int unsafe = 0, rc;

	if (!h || c->n < 3)
		return;
	if ((rc = heal_due(h, now)) <= 0) {
		if (rc < 0)
			QFS_LOG(QFS_LOG_ERR, "cell node rebuild given up node=%u attempts=%u operator=\"check the"
				" disk of %s, then 'start %u' in .quorumfs/nodes or remount\"", cn->id, h->attempts,
				cn->dir, cn->id);
		return;
	}
	groups_union(c, 0, &all);
	for (size_t i = 0; i < all.n; i++) {
		struct heal *hg = heal_find(c, cn->id, all.v[i], 1);
		char w[96];
		uint32_t l;

		/* every group gets its look (the check takes two) */
		if (!hg || heal_safe(c, hg, &l, w, sizeof(w))) {
			if (!unsafe)
				snprintf(why, sizeof(why), "group %016" PRIx64 ": %s", all.v[i],
					 hg ? w : "out of memory");
			unsafe = 1;
		}
	}
	if (!all.n || all.err) {
		unsafe = 1;
		snprintf(why, sizeof(why), "the other nodes list no group");
	}
	qfs_glist_free(&all);
	/* heal_find above may have moved c->heals (realloc): find h again */
	if (!(h = heal_find(c, cn->id, 0, 0)))
		return;
	if (unsafe) {
		if (heal_wait(h, why, now))
			QFS_LOG(QFS_LOG_WARN, "cell node rebuild waiting node=%u why=\"%s\" operator=\"it is"
				" rebuilt once the other nodes are healthy\"", cn->id, why);
		return;
	}
	h->attempts++;
	h->last_ms = now;
	rc = move_aside(cn->dir, aside, sizeof(aside));
	QFS_LOG(QFS_LOG_WARN, "cell node rebuild node=%u attempt=%u/%u err=\"%s\" action=\"its store"
		" cannot be trusted: move %s aside to %s and rebuild every replica of the node from the"
		" other nodes\" operator=\"check the disk; delete %s once it is not needed\" rc=%s", cn->id,
		h->attempts, CELL_HEAL_ATTEMPTS, qfs_strerror(cn->err), cn->dir, rc ? "-" : aside,
		rc ? "-" : aside, rc ? qfs_strerror(rc) : "ok");
	if (rc == 0)
		rc = start_locked(c, cn);
	if (rc) {
		heal_backoff(h, now);
		return;
	}
	cn->retry_at_ms = 0;
	h->since_ms = 0;
	h->backoff_ms = 0;
}

/* Rebuild the untrusted replicas of the running nodes (keeper thread). */
static void heal_round(struct qfs_cell *c)
{
	if (c->n < 3)
		return;
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];
		struct qfs_rnode *rn = node_get(c, cn->id);
		struct qfs_glist l = { 0 };

		if (!rn)
			continue;
		qfs_rnode_groups(rn, qfs_glist_add, &l);
		node_put(c, cn->id);
		for (size_t k = 0; k < l.n; k++) {
			struct qfs_rnode_ginfo gi;
			int have;

			if (!(rn = node_get(c, cn->id)))
				break;
			have = qfs_rnode_group_info(rn, l.v[k], &gi) == 0;
			node_put(c, cn->id);
			if (!have)
				continue;
			if (gi.stopped && gi.untrusted)
				heal_one(c, cn, rn, l.v[k], gi.err, now_ms());
			else if (!gi.stopped)
				heal_progress(c, cn, l.v[k], &gi, now_ms());
		}
		qfs_glist_free(&l);
	}
}

static void *keeper_main(void *arg)
{
	struct qfs_cell *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->closing) {
		struct timespec ts;

		qfs_clock_deadline(CLOCK_MONOTONIC, CELL_KEEPER_MS, &ts);
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		if (c->closing)
			break;
		pthread_mutex_unlock(&c->mu);
		keeper_round(c);
		keeper_space(c);
		heal_round(c);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---------------------------------------------------------------- open */

static void cell_free(struct qfs_cell *c)
{
	free(c->heals);
	for (uint32_t i = 0; i < c->n; i++)
		free(c->nodes[i].seen);
	if (c->tomb)
		qfs_glist_free(c->tomb);
	free(c->tomb);
	qfs_net_free(c->net);
	qfs_store_cache_free(c->cache);
	free(c->dir);
	free(c);
}

static int can_read_strong(struct qfs_cell *c, qfs_group_t group);
static int fail_fast(struct qfs_cell *c, qfs_group_t group);
static uint32_t find_leader(struct qfs_cell *c, qfs_group_t group, struct qfs_rnode **out);

/* After a restart every replica first honours the leases it may have
 * granted (one lease) and then waits an election timeout: wait, bounded,
 * until every group has a leader that can serve, so that the mount is
 * usable when open returns.  Groups still without one are logged. */
static void wait_leaders(struct qfs_cell *c)
{
	uint64_t t0 = now_ms(), deadline = t0 + (c->o.timeout_ms > 15000 ? c->o.timeout_ms : 15000);
	struct qfs_glist all = { 0 };
	size_t ready = 0;

	all_groups(c, &all);
	while (ready < all.n && now_ms() < deadline) {
		if (can_read_strong(c, all.v[ready]) || fail_fast(c, all.v[ready]) ||
		    !qfs_cell_group_exists(c, all.v[ready]))
			ready++;
		else
			sleep_ms(10);
	}
	if (ready < all.n)
		QFS_LOG(QFS_LOG_WARN, "cell open no leader yet group=%016" PRIx64 " waited_ms=%" PRIu64,
			all.v[ready], now_ms() - t0);
	else
		QFS_LOG(QFS_LOG_INFO, "cell leaders ready groups=%zu ms=%" PRIu64, all.n, now_ms() - t0);
	qfs_glist_free(&all);
}

/* See cell.h. */
int qfs_cell_open(const struct qfs_cell_opts *o, struct qfs_cell **out)
{
	pthread_condattr_t ca;
	struct qfs_cell *c;
	uint32_t up = 0;
	int rc, first_err = 0;

	if (o && o->cluster) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		rc = qfs_rcell_open(o->cluster, qfs_rcell_mount_id(o->dir ? o->dir : o->cluster),
				    o->timeout_ms ? o->timeout_ms :
				    QFS_CELL_TIMEOUT_DEFAULT_MS, o->reads == QFS_CELL_READ_STRONG,
				    &c->rc);
		if (rc) {
			free(c);
			return rc;
		}
		c->n = qfs_rcell_node_count(c->rc);
		c->o.timeout_ms = o->timeout_ms ? o->timeout_ms : QFS_CELL_TIMEOUT_DEFAULT_MS;
		c->o.reads = o->reads;
		*out = c;
		return 0;
	}
	if (!o || !o->dir || !*o->dir || o->nodes > QFS_CELL_MAX_NODES || o->npinned > QFS_CELL_PINNED_MAX ||
	    (o->npinned && !o->pinned))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *o;
	c->o.pinned = NULL; /* copied: */
	c->npinned = o->npinned;
	for (uint32_t i = 0; i < o->npinned; i++)
		c->pinned[i] = o->pinned[i];
	c->n = o->nodes ? o->nodes : 3;
	if (!c->o.timeout_ms)
		c->o.timeout_ms = QFS_CELL_TIMEOUT_DEFAULT_MS;
	if (o->paxos)
		c->prm = *o->paxos;
	else
		qfs_paxos_params_default(&c->prm);
	c->dir = strdup(o->dir);
	if (!c->dir) {
		free(c);
		return -ENOMEM;
	}
	c->o.dir = c->dir;
	c->o.paxos = NULL;
	if ((rc = qfs_store_cache_new(o->cache_bytes, &c->cache))) {
		cell_free(c);
		return rc;
	}
	/* shared by the nodes and freed after them: a READ's pinned value
	 * (qfs_cell_get_at_val) may hold one of its blocks across a node stop */
	c->sto.cache = c->cache;
	c->sto.memtable_bytes = o->memtable_bytes ? o->memtable_bytes / c->n : 0;
	c->sto.vlog_min_bytes = o->vlog_off ? UINT32_MAX : 0;
	c->reserve = c->n * (c->sto.memtable_bytes > QFS_STORE_MEMTABLE_MIN ? c->sto.memtable_bytes
			     : c->sto.memtable_bytes ? QFS_STORE_MEMTABLE_MIN : QFS_STORE_MEMTABLE_DEFAULT) +
		     CELL_RESERVE_SLACK;
	if ((rc = qfs_sysio_mkdir(c->dir, 0700)) < 0 && rc != -EEXIST) {
		QFS_LOG(QFS_LOG_ERR, "cell open failed dir=%s err=\"%s\"", c->dir, qfs_strerror(rc));
		cell_free(c);
		return rc;
	}
	c->tomb = calloc(1, sizeof(*c->tomb));
	rc = c->tomb ? tomb_load(c) : -ENOMEM;
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "cell open failed dir=%s what=DROPPED err=\"%s\"", c->dir, qfs_strerror(rc));
		cell_free(c);
		return rc;
	}
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];

		cn->id = i + 1;
		snprintf(cn->az, sizeof(cn->az), "%c", 'a' + (int)i);
		if ((rc = qfs_node_path_fmt(cn->dir, sizeof(cn->dir), "%s/n%u", c->dir, cn->id))) {
			cell_free(c);
			return rc;
		}
	}
	if ((rc = qfs_net_new(QFS_NET_INPROC, NULL, &c->net))) {
		cell_free(c);
		return rc;
	}
	pthread_mutex_init(&c->op_mu, NULL);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);

	/* A node directory found empty while another holds data is a replaced
	 * disk: say so (all empty is a new data directory). */
	int empty[QFS_CELL_MAX_NODES], nempty = 0;
	for (uint32_t i = 0; i < c->n; i++)
		nempty += empty[i] = dir_empty(c->nodes[i].dir);
	pthread_mutex_lock(&c->op_mu);
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];
		struct qfs_rnode *rn;

		if (empty[i] && nempty < (int)c->n)
			warn_empty(cn);
		rc = node_open(c, cn, o->cold_start, &rn);
		if (rc) {
			cn->err = rc;
			if (!first_err)
				first_err = rc;
			QFS_LOG(QFS_LOG_ERR, "cell node open failed node=%u az=%s dir=%s err=\"%s\"", cn->id,
				cn->az, cn->dir, qfs_strerror(rc));
			continue;
		}
		cn->rn = rn;
		cn->starts++;
		up++;
	}
	if (up < majority(c)) {
		pthread_mutex_unlock(&c->op_mu);
		rc = first_err ? first_err : -EIO;
		goto err_close;
	}
	/* Every node is published; now bring each in line with the others (a
	 * node's own groups count for its peers, never against itself). */
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];

		if (cn->rn)
			reconcile(c, cn, cn->rn);
	}
	/* A cold start: every replica runs now and promises at once, so each
	 * group's preferred member may campaign (with a node down its groups
	 * elect after the usual timeout). */
	for (uint32_t i = 0; o->cold_start && up == c->n && i < c->n; i++)
		qfs_rnode_elect(c->nodes[i].rn);
	pthread_mutex_unlock(&c->op_mu);
	rc = -pthread_create(&c->keeper, NULL, keeper_main, c);
	if (rc)
		goto err_close;
	c->keeper_started = 1;
	wait_leaders(c);
	QFS_LOG(QFS_LOG_INFO, "cell open dir=%s nodes=%u up=%u timeout_ms=%u reads=%s", c->dir, c->n, up,
		c->o.timeout_ms, c->o.reads == QFS_CELL_READ_EVENTUAL ? "eventual" : "strong");
	*out = c;
	return 0;

err_close:
	for (uint32_t i = 0; i < c->n; i++)
		qfs_rnode_close(c->nodes[i].rn);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->op_mu);
	cell_free(c);
	return rc;
}

/* Release the routing hook (qfs_cell_close, once no thread of the cell
 * can call it any more). */
static void route_release(struct qfs_cell *c)
{
	if (c->route && c->route->release)
		c->route->release(c->route_arg);
	c->route = NULL;
}

/* See cell.h. */
void qfs_cell_close(struct qfs_cell *c)
{
	if (!c)
		return;
	if (c->rc) {
		route_release(c);
		qfs_rcell_close(c->rc);
		free(c);
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->closing = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->keeper_started)
		pthread_join(c->keeper, NULL);
	pthread_mutex_lock(&c->op_mu);
	for (uint32_t i = 0; i < c->n; i++)
		if (c->nodes[i].rn)
			stop_locked(c, &c->nodes[i], "closing");
	pthread_mutex_unlock(&c->op_mu);
	/* only now: the keeper (joined above) calls node_up when it starts a
	 * node */
	route_release(c);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->op_mu);
	cell_free(c);
}

/* ---------------------------------------------------------------- groups */

/* See cell.h. */
int qfs_cell_group_create(struct qfs_cell *c, qfs_group_t group)
{
	struct qfs_paxos_config cfg;
	uint32_t made = 0, had = 0, created[QFS_CELL_MAX_NODES], pref;
	int rc = 0, err = 0;

	if (c->rc)
		return qfs_rcell_group_create(c->rc, group);
	members(c, &cfg);
	pthread_mutex_lock(&c->op_mu);
	for (size_t k = 0; k < c->tomb->n; k++)
		if (c->tomb->v[k] == group) { /* ids are not reused, but be exact */
			c->tomb->v[k] = c->tomb->v[--c->tomb->n];
			if ((rc = tomb_save(c)) != 0) {
				pthread_mutex_unlock(&c->op_mu);
				return rc;
			}
			break;
		}
	/* The group's preferred member (doc/paxos.md section 6; rnode sets
	 * the machine's preference to qfs_paxos_preferred) last: it campaigns
	 * as soon as its replica exists, and its PREPAREs must find the
	 * others' replicas (else they are lost, and the group waits an
	 * election timeout for a campaign that finds them). */
	pref = qfs_paxos_preferred(group, &cfg);
	for (uint32_t k = 0, i; k < c->n; k++) {
		struct qfs_rnode *rn;

		/* the others from the last node down, then pref - 1 */
		i = c->n - 1 - k;
		if (pref && i + 1 <= pref)
			i = k == c->n - 1 ? pref - 1 : i - 1;
		rn = node_get(c, i + 1);

		if (!rn)
			continue;
		rc = qfs_rnode_group_create(rn, group, &cfg);
		node_put(c, i + 1);
		if (rc == 0)
			created[made++] = i + 1;
		else if (rc == -EEXIST)
			had++;
		else if (!err)
			err = rc;
		if (rc && rc != -EEXIST) /* the reconciliation at its next start makes it */
			QFS_LOG(QFS_LOG_WARN, "cell group create failed on a node group=%016" PRIx64 " node=%u err=\"%s\"",
				group, i + 1, qfs_strerror(rc));
	}
	if (had >= majority(c)) {
		rc = -EEXIST;
	} else if (made + had >= majority(c)) {
		rc = 0;
	} else {
		rc = err ? err : -ETIMEDOUT;
		QFS_LOG(QFS_LOG_ERR, "cell group create failed group=%016" PRIx64 " made=%u of %u err=\"%s\"",
			group, made, c->n, qfs_strerror(rc));
		for (uint32_t k = 0; k < made; k++) {
			struct qfs_rnode *rn = node_get(c, created[k]);

			if (rn) {
				(void)qfs_rnode_group_drop(rn, group);
				node_put(c, created[k]);
			}
		}
	}
	pthread_mutex_unlock(&c->op_mu);
	return rc;
}

/* See cell.h. */
size_t qfs_cell_pinned(const struct qfs_cell *c, qfs_group_t *out, size_t max)
{
	for (uint32_t i = 0; i < c->npinned && i < max; i++)
		out[i] = c->pinned[i];
	return c->npinned;
}

/* See cell.h. */
int qfs_cell_group_drop(struct qfs_cell *c, qfs_group_t group)
{
	uint32_t dropped = 0;
	int rc = 0, err = 0;

	if (c->rc)
		return qfs_rcell_group_drop(c->rc, group);
	pthread_mutex_lock(&c->op_mu);
	/* The tombstone first: a node down now drops its replica when it
	 * starts (reconcile), even after a restart of the mount. */
	if (!is_pinned(c, group) && !qfs_glist_has(c->tomb, group)) {
		qfs_glist_add(group, c->tomb);
		if ((rc = c->tomb->err ? c->tomb->err : tomb_save(c)) != 0) {
			c->tomb->n--;
			pthread_mutex_unlock(&c->op_mu);
			QFS_LOG(QFS_LOG_ERR, "cell group drop failed group=%016" PRIx64 " what=DROPPED err=\"%s\"",
				group, qfs_strerror(rc));
			return rc;
		}
	}
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];
		struct qfs_rnode *rn = node_get(c, i + 1);

		if (!rn) {
			/* Forget it for a stopped node: it is dropped there when
			 * the node starts (reconcile). */
			pthread_mutex_lock(&c->mu);
			for (size_t k = 0; k < cn->nseen; k++)
				if (cn->seen[k].group == group)
					cn->seen[k] = cn->seen[--cn->nseen];
			pthread_mutex_unlock(&c->mu);
			continue;
		}
		rc = qfs_rnode_group_drop(rn, group);
		node_put(c, i + 1);
		if (rc == 0)
			dropped++;
		else if (rc != QFS_ENOGROUP && !err)
			err = rc;
	}
	pthread_mutex_unlock(&c->op_mu);
	if (err)
		return err;
	return dropped ? 0 : QFS_ENOGROUP;
}

/* See cell.h. */
int qfs_cell_group_exists(struct qfs_cell *c, qfs_group_t group)
{
	uint32_t have = 0;

	if (c->rc)
		return qfs_rcell_group_exists(c->rc, group);
	for (uint32_t i = 0; i < c->n; i++)
		have += hosts(c, &c->nodes[i], group) == 1;
	return have >= majority(c);
}

/* See cell.h. */
void qfs_cell_groups(struct qfs_cell *c, void (*cb)(qfs_group_t group, void *arg), void *arg)
{
	struct qfs_glist l = { 0 };

	if (c->rc) {
		qfs_rcell_groups(c->rc, cb, arg);
		return;
	}
	groups_union(c, 0, &l);
	for (size_t i = 0; i < l.n; i++)
		cb(l.v[i], arg);
	qfs_glist_free(&l);
}

/* ---------------------------------------------------------------- routing */

/* The leader some running node knows for group, if that leader runs: its
 * id, with *out taken (node_get; the caller puts it), or 0.  The last
 * leader seen is asked first, and usually answers for itself. */
static uint32_t find_leader(struct qfs_cell *c, qfs_group_t group, struct qfs_rnode **out)
{
	uint32_t hint = __atomic_load_n(&c->hint, __ATOMIC_RELAXED);

	for (uint32_t k = 0; k <= c->n; k++) {
		uint32_t id = k == 0 ? hint : k, l;
		struct qfs_rnode *rn;

		if (!id || !(rn = node_get(c, id)))
			continue;
		l = qfs_rnode_leader(rn, group);
		if (l == id) {
			*out = rn;
			return l;
		}
		node_put(c, id);
		if (l && cnode_of(c, l) && (rn = node_get(c, l)) != NULL) {
			*out = rn;
			return l;
		}
	}
	return 0;
}

/* See cell.h. */
uint32_t qfs_cell_leader_node(struct qfs_cell *c, qfs_group_t group)
{
	struct qfs_rnode *rn = NULL;
	uint32_t id = find_leader(c, group, &rn);

	if (id)
		node_put(c, id);
	return id;
}

/* Count group's replicas stopped after an error on the running nodes; *why
 * gets -ENOSPC if one stopped for lack of space, else QFS_ESTOPPED. */
static uint32_t stopped_count(struct qfs_cell *c, qfs_group_t group, int *why)
{
	uint32_t n = 0;

	*why = QFS_ESTOPPED;
	for (uint32_t i = 0; i < c->n; i++) {
		struct qfs_rnode *rn = node_get(c, i + 1);
		struct qfs_rnode_ginfo gi;

		if (!rn)
			continue;
		if (qfs_rnode_group_info(rn, group, &gi) == 0 && gi.stopped) {
			n++;
			if (gi.err == -ENOSPC)
				*why = -ENOSPC;
		}
		node_put(c, i + 1);
	}
	return n;
}

/* 0, or the error to fail with at once: a majority of group's replicas
 * stopped after an error, so no leader can be elected until they restart. */
static int fail_fast(struct qfs_cell *c, qfs_group_t group)
{
	int why;

	return stopped_count(c, group, &why) >= majority(c) ? why : 0;
}

/* 1 if a strong read of group could be served now: the leader the nodes
 * know holds a read lease (wait_leaders at open). */
static int can_read_strong(struct qfs_cell *c, qfs_group_t group)
{
	struct qfs_rnode *rn;
	uint32_t l = find_leader(c, group, &rn);
	int ok;

	if (!l)
		return 0;
	ok = qfs_rnode_can_read_strong(rn, group);
	node_put(c, l);
	return ok;
}

/* See cell.h. */
void qfs_cell_set_route(struct qfs_cell *c, const struct qfs_cell_route *ops, void *arg)
{
	c->route = ops;
	c->route_arg = ops ? arg : NULL;
}

/* See cell.h. */
enum qfs_cell_reads qfs_cell_read_mode(const struct qfs_cell *c)
{
	return c->o.reads;
}

/* See cell.h. */
int qfs_cell_replica_view(struct qfs_cell *c, uint32_t id, qfs_group_t group, int info,
			  struct qfs_cell_view *out)
{
	struct qfs_cell_view v = { 0 };
	struct qfs_rnode *rn;

	if (c->rc)
		return -EOPNOTSUPP;
	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return -EHOSTDOWN;
	v.leader = qfs_rnode_leader(rn, group);
	v.lease = qfs_rnode_can_read_strong(rn, group);
	if (info) {
		struct qfs_rnode_ginfo gi;

		if (qfs_rnode_group_info(rn, group, &gi) == 0) {
			v.hosted = 1;
			v.stopped = gi.stopped;
			v.err = gi.err;
			v.applied = gi.applied;
		}
	}
	node_put(c, id);
	*out = v;
	return 0;
}

/* See cell.h. */
int qfs_cell_propose_prepare(struct qfs_cell *c, qfs_group_t group, const void *txn, size_t len,
			     struct qfs_buf *out)
{
	int rc;

	if (!c->rc)
		return 0;
	rc = qfs_rcell_prepare(c->rc, group, txn, len, out);
	return rc ? rc : 1;
}

/* See cell.h.  A success makes id the first node find_leader asks. */
int qfs_cell_propose_at(struct qfs_cell *c, uint32_t id, qfs_group_t group, const void *txn,
			size_t len, uint32_t wait_ms, int *result, uint32_t *leader)
{
	struct qfs_rnode *rn;
	int rc;

	if (c->rc)
		return qfs_rcell_propose_at(c->rc, id, group, txn, len, wait_ms, result, leader);
	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return -EHOSTDOWN;
	rc = qfs_rnode_propose(rn, group, txn, len, wait_ms, result, leader);
	node_put(c, id);
	if (rc == 0)
		__atomic_store_n(&c->hint, id, __ATOMIC_RELAXED);
	return rc;
}

/* Embedded, strong reads: 0 if rn (node id) leads group with its read
 * lease, else -EREMOTE with *leader (if not NULL) the leader rn knows.
 * Checked on the very replica that reads: the route's view came from an
 * earlier node_get, and a node restarted since is a fresh replica. */
static int strong_ok(struct qfs_cell *c, struct qfs_rnode *rn, qfs_group_t group, uint32_t *leader)
{
	if (c->o.reads != QFS_CELL_READ_STRONG || qfs_rnode_can_read_strong(rn, group))
		return 0;
	if (leader)
		*leader = qfs_rnode_leader(rn, group);
	return -EREMOTE;
}

/* See cell.h. */
int qfs_cell_get_at(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *key,
		    size_t key_len, uint32_t wait_ms, void **val, size_t *val_len, uint32_t *leader)
{
	struct qfs_val v = { 0 };
	int rc;

	if (c->rc) /* the answer's buffer itself: no copy */
		return qfs_rcell_get_at(c->rc, id, group, key, key_len, wait_ms, val, val_len, leader);
	rc = qfs_cell_get_at_val(c, id, group, key, key_len, wait_ms, &v, leader);
	return rc ? rc : qfs_val_copy_out(&v, val, val_len);
}

/* See cell.h. */
int qfs_cell_get_at_val(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *key,
			size_t key_len, uint32_t wait_ms, struct qfs_val *out, uint32_t *leader)
{
	struct qfs_rnode *rn;
	int rc;

	if (c->rc) {
		void *val;
		size_t len;

		rc = qfs_rcell_get_at(c->rc, id, group, key, key_len, wait_ms, &val, &len, leader);
		if (rc == 0)
			qfs_val_adopt(out, val, len);
		return rc;
	}
	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return -EHOSTDOWN;
	rc = strong_ok(c, rn, group, leader);
	if (!rc)
		rc = qfs_rnode_get_val(rn, group, key, key_len, out);
	node_put(c, id);
	return rc;
}

/* See cell.h. */
int qfs_cell_scan_at(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *lo,
		     size_t lo_len, const uint8_t *hi, size_t hi_len, uint32_t wait_ms,
		     qfs_store_scan_cb cb, void *arg, int *more, struct qfs_buf *resume,
		     uint32_t *leader)
{
	struct qfs_rnode *rn;
	int rc;

	if (c->rc)
		return qfs_rcell_scan_page_at(c->rc, id, group, lo, lo_len, hi, hi_len, wait_ms, cb,
					      arg, more, resume, leader);
	*more = 0;
	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return -EHOSTDOWN;
	rc = strong_ok(c, rn, group, leader);
	if (!rc)
		rc = qfs_rnode_scan(rn, group, lo, lo_len, hi, hi_len, cb, arg);
	node_put(c, id);
	return rc;
}

/* See cell.h. */
int qfs_cell_remote(const struct qfs_cell *c)
{
	return c->rc != NULL;
}

/* See cell.h. */
uint32_t qfs_cell_node_id(struct qfs_cell *c, uint32_t idx)
{
	if (c->rc)
		return qfs_rcell_node_id(c->rc, idx);
	return idx < c->n ? idx + 1 : 0;
}

/* See cell.h. */
int qfs_cell_node_silent(struct qfs_cell *c, uint32_t id)
{
	return c->rc ? qfs_rcell_silent(c->rc, id) : 0;
}

/* See cell.h: the routing is the router's (qfs_cell_set_route). */
int qfs_cell_propose(struct qfs_cell *c, qfs_group_t group, const void *txn, size_t len,
		     int *result)
{
	if (!c->route)
		return -ENOSYS;
	return c->route->propose(c->route_arg, group, txn, len, result);
}

/* See cell.h. */
int qfs_cell_get(struct qfs_cell *c, qfs_group_t group, const uint8_t *key, size_t key_len,
		 void **val, size_t *val_len)
{
	if (!c->route)
		return -ENOSYS;
	return c->route->get(c->route_arg, group, key, key_len, val, val_len);
}

/* See cell.h. */
int qfs_cell_get_val(struct qfs_cell *c, qfs_group_t group, const uint8_t *key, size_t key_len,
		     struct qfs_val *out)
{
	void *val;
	size_t len;
	int rc;

	if (!c->route)
		return -ENOSYS;
	if (c->route->get_val)
		return c->route->get_val(c->route_arg, group, key, key_len, out);
	rc = c->route->get(c->route_arg, group, key, key_len, &val, &len);
	if (rc == 0)
		qfs_val_adopt(out, val, len);
	return rc;
}

/* See cell.h. */
int qfs_cell_get_node(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *key, size_t key_len,
		      void **val, size_t *val_len)
{
	struct qfs_rnode *rn;
	int rc;

	if (c->rc)
		return qfs_rcell_get_node(c->rc, id, group, key, key_len, val, val_len);
	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return -EHOSTDOWN;
	rc = qfs_rnode_get(rn, group, key, key_len, val, val_len);
	node_put(c, id);
	return rc;
}

/* See cell.h. */
int qfs_cell_scan(struct qfs_cell *c, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		  const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg)
{
	if (!c->route)
		return -ENOSYS;
	return c->route->scan(c->route_arg, group, lo, lo_len, hi, hi_len, cb, arg);
}

/* ---------------------------------------------------------------- status */

/* See cell.h. */
int qfs_cell_node_up(struct qfs_cell *c, uint32_t id)
{
	struct qfs_rnode *rn = node_get(c, id);

	if (c->rc)
		return qfs_rcell_node_up(c->rc, id);
	if (!rn)
		return 0;
	node_put(c, id);
	return 1;
}

/* See cell.h. */
uint64_t qfs_cell_node_starts(struct qfs_cell *c, uint32_t id)
{
	uint64_t n;

	if (c->rc || id < 1 || id > c->n)
		return 0;
	pthread_mutex_lock(&c->mu);
	n = c->nodes[id - 1].starts;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* See cell.h. */
void qfs_cell_nodes(struct qfs_cell *c, struct qfs_buf *out)
{
	if (c->rc) {
		qfs_rcell_nodes(c->rc, out);
		return;
	}
	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];
		int up, held, err;

		pthread_mutex_lock(&c->mu);
		up = cn->rn != NULL && !cn->busy;
		held = cn->held_down;
		err = cn->err;
		pthread_mutex_unlock(&c->mu);
		qfs_buf_printf(out, "node %u az %s state %s dir ", cn->id, cn->az, up ? "up" : "down");
		qfs_buf_put_esc(out, cn->dir);
		qfs_buf_printf(out, "%s%s\n", up ? "" : held ? " why stopped-by-control-file" : err ? " why open-failed " : "",
			 !up && !held && err ? qfs_strerror(err) : "");
	}
}

static const char *role_str(enum qfs_paxos_role r)
{
	return r == QFS_PAXOS_LEADER ? "leader" : r == QFS_PAXOS_CANDIDATE ? "candidate" : "follower";
}

/* See cell.h. */
void qfs_cell_status(struct qfs_cell *c, struct qfs_buf *out)
{
	struct qfs_glist all = { 0 };
	uint64_t mem = 0, cache = 0;
	uint32_t nlead[QFS_CELL_MAX_NODES + 1], npref[QFS_CELL_MAX_NODES + 1];
	uint64_t avail;

	if (c->rc) {
		qfs_rcell_status(c->rc, out);
		return;
	}
	qfs_cell_nodes(c, out);
	for (uint32_t k = 0; k < c->n; k++) {
		struct qfs_rnode *rn = node_get(c, k + 1);
		uint64_t m, ca;

		if (!rn)
			continue;
		if (qfs_rnode_store_mem(rn, &m, &ca) == 0) {
			mem += m;
			cache = ca; /* one cache, shared */
		}
		node_put(c, k + 1);
	}
	if ((avail = qfs_sysio_disk_avail(c->dir)) != UINT64_MAX)
		qfs_buf_printf(out, "disk free_bytes %llu reserve_bytes %llu\n", (unsigned long long)avail,
			       (unsigned long long)c->reserve);
	qfs_buf_printf(out, "memory memtables_bytes %llu cache_bytes %llu\n", (unsigned long long)mem,
		       (unsigned long long)cache);
	{ /* the value log (doc/format-store.md "Value log"), every node's */
		uint64_t v[8];

		for (int i = 0; i < 8; i++)
			v[i] = __atomic_load_n(&c->vlog_sum[i], __ATOMIC_RELAXED);
		qfs_buf_printf(out, "vlog segments %llu bytes %llu live_bytes %llu reads %llu bad %llu "
			       "gc_removed %llu gc_rewritten %llu extents %llu\n", (unsigned long long)v[0],
			       (unsigned long long)v[1], (unsigned long long)v[2], (unsigned long long)v[3],
			       (unsigned long long)v[4], (unsigned long long)v[5], (unsigned long long)v[6],
			       (unsigned long long)v[7]);
	}
	all_groups(c, &all);
	memset(nlead, 0, sizeof(nlead));
	memset(npref, 0, sizeof(npref));
	for (size_t i = 0; i < all.n; i++) {
		qfs_group_t g = all.v[i];
		struct qfs_rnode_ginfo gi[QFS_CELL_MAX_NODES];
		int have[QFS_CELL_MAX_NODES];
		uint32_t leader = 0, up = 0, pref = 0;
		qfs_ballot_t ballot = 0;
		qfs_lsn_t max_applied = 0;

		for (uint32_t k = 0; k < c->n; k++) {
			struct qfs_rnode *rn = node_get(c, k + 1);

			have[k] = 0;
			if (!rn)
				continue;
			have[k] = qfs_rnode_group_info(rn, g, &gi[k]) == 0;
			node_put(c, k + 1);
			if (!have[k])
				continue;
			if (!gi[k].stopped)
				up++;
			if (!pref)
				pref = gi[k].preferred;
			if (gi[k].role == QFS_PAXOS_LEADER && !gi[k].stopped) {
				leader = k + 1;
				ballot = gi[k].ballot;
			}
			if (gi[k].applied > max_applied)
				max_applied = gi[k].applied;
		}
		qfs_buf_printf(out, "group %016" PRIx64 " leader %u ballot %" PRIu64 " replicas %u up %u preferred %u\n",
			 g, leader, ballot, c->n, up, pref);
		if (leader <= QFS_CELL_MAX_NODES)
			nlead[leader]++;
		if (pref <= QFS_CELL_MAX_NODES)
			npref[pref]++;
		for (uint32_t k = 0; k < c->n; k++) {
			struct cnode *cn = &c->nodes[k];

			if (!have[k]) {
				const struct gseen *s;
				qfs_lsn_t applied = 0;

				pthread_mutex_lock(&c->mu);
				if ((s = seen_find(cn, g)) != NULL)
					applied = s->applied;
				pthread_mutex_unlock(&c->mu);
				qfs_buf_printf(out,
					 "group %016" PRIx64 " replica node %u az %s health down role - last 0 durable 0 commit 0 applied %" PRIu64 "\n",
					 g, cn->id, cn->az, applied);
				continue;
			}
			qfs_buf_printf(out,
				 "group %016" PRIx64 " replica node %u az %s health %s role %s last %" PRIu64
				 " durable %" PRIu64 " commit %" PRIu64 " applied %" PRIu64 " wal_bytes %" PRIu64 "%s%s\n",
				 g, cn->id, cn->az,
				 gi[k].stopped ? "stopped" : gi[k].applied < max_applied ? "behind" : "ok",
				 gi[k].stopped ? "-" : role_str(gi[k].role), gi[k].last, gi[k].durable,
				 gi[k].commit, gi[k].applied, gi[k].wal_bytes, gi[k].stopped ? " err " : "",
				 gi[k].stopped ? qfs_strerror(gi[k].err) : "");
		}
	}
	/* Leadership balance: groups each node leads and should lead. */
	for (uint32_t k = 0; k < c->n; k++)
		qfs_buf_printf(out, "leaders node %u groups %u preferred %u\n", k + 1, nlead[k + 1],
			       npref[k + 1]);
	qfs_glist_free(&all);
}

/* See cell.h. */
void qfs_cell_stat(struct qfs_cell *c, struct qfs_cell_stat *out)
{
	struct qfs_cell_stat s = { 0 };

	if (c->route && c->route->stat)
		c->route->stat(c->route_arg, &s.redirects, &s.timeouts);
	if (c->rc) {
		s.proposals = qfs_rcell_proposals(c->rc);
		*out = s;
		return;
	}
	pthread_mutex_lock(&c->mu);
	s.proposals = c->st_proposals_closed;
	s.fsyncs = c->st_fsyncs_closed;
	s.beside = c->st_beside_closed;
	pthread_mutex_unlock(&c->mu);
	for (uint32_t i = 0; i < c->n; i++) {
		struct qfs_rnode *rn = node_get(c, i + 1);
		struct qfs_rnode_stat st;

		if (!rn)
			continue;
		qfs_rnode_stat(rn, &st);
		node_put(c, i + 1);
		s.proposals += st.proposals;
		s.fsyncs += st.fsyncs;
		s.beside += st.beside;
	}
	*out = s;
}

/* See cell.h.  Immutable after open. */
uint32_t qfs_cell_timeout_ms(struct qfs_cell *c)
{
	return c->o.timeout_ms;
}

/* ---------------------------------------------------------------- archive */

#define ARCHIVE_SOURCE 1 /* the node whose replica the archiver reads */

/* See cell.h. */
int qfs_cell_wal_info(struct qfs_cell *c, qfs_group_t group, char *dir, size_t dir_len,
		      qfs_lsn_t *applied)
{
	return qfs_cell_node_wal_info(c, ARCHIVE_SOURCE, group, dir, dir_len, applied);
}

/* See cell.h. */
int qfs_cell_snapshot_scan(struct qfs_cell *c, qfs_group_t group, qfs_lsn_t *applied,
			   qfs_store_scan_cb cb, void *arg)
{
	struct qfs_rnode *rn = node_get(c, ARCHIVE_SOURCE);
	int rc;

	if (!rn)
		return QFS_ESTOPPED;
	rc = qfs_rnode_snapshot_scan(rn, group, applied, cb, arg);
	node_put(c, ARCHIVE_SOURCE);
	return rc;
}

/* See cell.h.  The bound is the lowest applied LSN over every node: a
 * running node's from its machine, a stopped one's as it last reported (0
 * when unknown or when it did not host the group: nothing is released). */
int qfs_cell_wal_release(struct qfs_cell *c, qfs_group_t group, qfs_lsn_t lsn)
{
	qfs_lsn_t bound = lsn;
	int rc = 0, err = 0;

	for (uint32_t i = 0; i < c->n; i++) {
		struct cnode *cn = &c->nodes[i];
		struct qfs_rnode *rn = node_get(c, i + 1);
		qfs_lsn_t applied = 0;

		if (rn) {
			struct qfs_rnode_ginfo gi;

			if (qfs_rnode_group_info(rn, group, &gi) == 0)
				applied = gi.applied;
			node_put(c, i + 1);
		} else {
			const struct gseen *s;

			pthread_mutex_lock(&c->mu);
			if (cn->known && (s = seen_find(cn, group)) != NULL)
				applied = s->applied;
			pthread_mutex_unlock(&c->mu);
		}
		if (applied + 1 < bound)
			bound = applied + 1;
	}
	if (bound <= 1)
		return 0;
	for (uint32_t i = 0; i < c->n; i++) {
		struct qfs_rnode *rn = node_get(c, i + 1);

		if (!rn)
			continue;
		rc = qfs_rnode_wal_release(rn, group, bound);
		node_put(c, i + 1);
		if (rc && rc != QFS_ENOGROUP && !err)
			err = rc;
	}
	return err;
}

/* See cell.h. */
int qfs_cell_node_wal_info(struct qfs_cell *c, uint32_t id, qfs_group_t group, char *dir,
			   size_t dir_len, qfs_lsn_t *applied)
{
	struct qfs_rnode *rn = node_get(c, id);
	int rc;

	if (!rn)
		return QFS_ESTOPPED;
	rc = qfs_rnode_wal_info(rn, group, dir, dir_len, applied);
	node_put(c, id);
	return rc;
}

/* See cell.h. */
int qfs_cell_node_wal_seal(struct qfs_cell *c, uint32_t id, qfs_group_t group)
{
	struct qfs_rnode *rn = node_get(c, id);
	int rc;

	if (!rn)
		return QFS_ESTOPPED;
	rc = qfs_rnode_wal_seal(rn, group);
	node_put(c, id);
	return rc;
}

/* See cell.h. */
int qfs_cell_wal_distrust(struct qfs_cell *c, qfs_group_t group)
{
	struct qfs_rnode *rn = node_get(c, ARCHIVE_SOURCE);
	int rc;

	if (!rn)
		return QFS_ESTOPPED;
	rc = qfs_rnode_group_distrust(rn, group);
	node_put(c, ARCHIVE_SOURCE);
	return rc;
}

/* See cell.h. */
int qfs_cell_wal_seal(struct qfs_cell *c, qfs_group_t group)
{
	return qfs_cell_node_wal_seal(c, ARCHIVE_SOURCE, group);
}

/* See cell.h. */
qfs_lsn_t qfs_cell_group_applied(struct qfs_cell *c, qfs_group_t group)
{
	qfs_lsn_t best = 0;

	for (uint32_t i = 1; i <= c->n; i++) {
		struct qfs_rnode *rn = node_get(c, i);
		struct qfs_rnode_ginfo gi;

		if (!rn)
			continue;
		if (qfs_rnode_group_info(rn, group, &gi) == 0 && gi.applied > best)
			best = gi.applied;
		node_put(c, i);
	}
	return best;
}

/* See cell.h. */
void qfs_cell_set_seal_hook(struct qfs_cell *c, void (*cb)(qfs_group_t group, void *arg), void *arg)
{
	if (c->rc)
		return; /* no local WAL in cluster mode */
	pthread_mutex_lock(&c->op_mu);
	pthread_mutex_lock(&c->mu);
	c->seal_cb = cb;
	c->seal_arg = arg;
	pthread_mutex_unlock(&c->mu);
	for (uint32_t i = 0; i < c->n; i++) {
		struct qfs_rnode *rn = node_get(c, i + 1);

		if (!rn)
			continue;
		qfs_rnode_set_seal_hook(rn, cb, arg);
		node_put(c, i + 1);
	}
	pthread_mutex_unlock(&c->op_mu);
}

/* ------------------------------------------------------------ scrub hooks */

/* See cell.h. */
uint32_t qfs_cell_node_count(struct qfs_cell *c)
{
	if (c->rc)
		return qfs_rcell_node_count(c->rc);
	return c->n;
}

/* See cell.h.  Embedded: every node hosts every group. */
uint32_t qfs_cell_group_nodes(struct qfs_cell *c, qfs_group_t group, uint32_t *out, uint32_t max)
{
	if (c->rc)
		return qfs_rcell_group_nodes(c->rc, group, out, max);
	for (uint32_t i = 0; i < c->n && i < max; i++)
		out[i] = i + 1;
	return c->n;
}

/* See cell.h. */
struct qfs_rcell *qfs_cell_rcell(struct qfs_cell *c)
{
	return c->rc;
}

/* See cell.h. */
void qfs_cell_group_forget(struct qfs_cell *c, qfs_group_t group)
{
	if (c->rc)
		qfs_rcell_group_forget(c->rc, group);
}

/* See cell.h. */
void qfs_cell_group_hint(struct qfs_cell *c, qfs_group_t group, const uint32_t *ids, uint32_t n)
{
	if (c->rc && n)
		qfs_rcell_group_hint(c->rc, group, ids, n);
}

/* See cell.h. */
int qfs_cell_replica_info(struct qfs_cell *c, uint32_t id, qfs_group_t group,
			  struct qfs_rnode_ginfo *out)
{
	struct qfs_rnode *rn;
	int rc;

	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return QFS_ESTOPPED;
	rc = qfs_rnode_group_info(rn, group, out);
	node_put(c, id);
	return rc;
}

/* See cell.h.  On success the node stays taken (users) until
 * qfs_cell_replica_snap_done, so a stop waits for the scrub's reads. */
int qfs_cell_replica_snap(struct qfs_cell *c, uint32_t id, qfs_group_t group, qfs_lsn_t lsn,
			  uint32_t timeout_ms, struct qfs_store_snap **out)
{
	struct qfs_rnode *rn;
	int rc;

	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return QFS_ESTOPPED;
	rc = qfs_rnode_snap_at(rn, group, lsn, timeout_ms, out);
	if (rc)
		node_put(c, id);
	return rc;
}

/* See cell.h. */
void qfs_cell_replica_snap_done(struct qfs_cell *c, uint32_t id, struct qfs_store_snap *sn)
{
	if (!sn)
		return;
	qfs_store_snap_release(sn);
	node_put(c, id);
}

/* See cell.h. */
int qfs_cell_node_verify(struct qfs_cell *c, uint32_t id)
{
	struct qfs_rnode *rn;
	int rc;

	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return QFS_ESTOPPED;
	rc = qfs_rnode_verify(rn);
	node_put(c, id);
	return rc;
}

/* See cell.h. */
int qfs_cell_replica_wal_verify(struct qfs_cell *c, uint32_t id, qfs_group_t group)
{
	struct qfs_rnode *rn;
	int rc;

	if (!cnode_of(c, id))
		return -EINVAL;
	if (!(rn = node_get(c, id)))
		return QFS_ESTOPPED;
	rc = qfs_rnode_wal_verify(rn, group);
	node_put(c, id);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0)
		return 0; /* the node directory itself stays (it may be a mount point or a symlink) */
	if (flag == FTW_DP || flag == FTW_D || flag == FTW_DNR)
		return qfs_sys_rmdir(path) ? -errno : 0;
	return qfs_sys_unlink(path) ? -errno : 0;
}

struct last_walk {
	struct qfs_rnode *rn;
	qfs_group_t only;        /* QFS_CELL_ALL_GROUPS: every group */
	qfs_group_t g[QFS_RNODE_MAX_GROUPS];
	qfs_lsn_t last[QFS_RNODE_MAX_GROUPS];
	size_t n;
};

static void last_add(qfs_group_t group, void *arg)
{
	struct last_walk *w = arg;
	struct qfs_rnode_ginfo gi;

	if (w->only != QFS_CELL_ALL_GROUPS && group != w->only)
		return;
	if (w->n == QFS_RNODE_MAX_GROUPS || qfs_rnode_group_info(w->rn, group, &gi))
		return;
	w->g[w->n] = group;
	w->last[w->n++] = gi.last;
}

/* Every other running node has made durable what the stopped replica had
 * logged (so wiping it loses no acknowledged entry even if one more node
 * fails); waits up to timeout_ms.  Caller holds op_mu. */
static int others_hold(struct qfs_cell *c, uint32_t id, const struct last_walk *w,
		       uint32_t timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	for (;;) {
		int ok = 1;
		uint32_t up = 0;

		for (uint32_t o = 1; o <= c->n; o++) {
			struct qfs_rnode *rn;

			if (o == id || !(rn = node_get(c, o)))
				continue;
			up++;
			for (size_t i = 0; i < w->n && ok; i++) {
				struct qfs_rnode_ginfo gi;
				if (qfs_rnode_group_info(rn, w->g[i], &gi) || gi.stopped ||
				    gi.durable < w->last[i])
					ok = 0;
			}
			node_put(c, o);
		}
		if (ok && up >= majority(c))
			return 0;
		if (now_ms() >= end)
			return -EAGAIN;
		sleep_ms(20);
	}
}

/* See cell.h. */
int qfs_cell_replica_rebuild(struct qfs_cell *c, uint32_t id, qfs_group_t group, const char *why)
{
	if (c->rc)
		return -EOPNOTSUPP;
	return cell_replica_rebuild(c, id, group, why);
}

static int cell_replica_rebuild(struct qfs_cell *c, uint32_t id, qfs_group_t group, const char *why)
{
	struct cnode *cn = cnode_of(c, id);
	struct last_walk *w;
	char path[PATH_MAX];
	int rc = 0;

	if (!cn)
		return -EINVAL;
	if (c->n < 3)
		return -EOPNOTSUPP;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->only = group;
	pthread_mutex_lock(&c->op_mu);
	if (cn->rn) {
		w->rn = cn->rn; /* op_mu: no stop or start can run */
		qfs_rnode_groups(cn->rn, last_add, w);
		stop_locked(c, cn, why);
	} else if (cn->held_down) {
		rc = -EALREADY; /* held down by the test hook: leave it */
		goto out;
	}
	cn->held_down = 1; /* the keeper must not restart it half wiped */
	rc = others_hold(c, id, w, 10000);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "cell replica rebuild refused node=%u group=%016" PRIx64
			" err=\"the other replicas do not hold its log yet\"", id, group);
		goto restart;
	}
	if (group == QFS_CELL_ALL_GROUPS) {
		/* the whole node: its RocksDB, WALs, members and promises */
		if (nftw(cn->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
			rc = errno ? -errno : -EIO;
	} else {
		/* one group: without its members file the next open finishes it
		 * as an interrupted drop (store items, promise, WAL) and the
		 * reconciliation creates it again empty; it then catches up from
		 * the leader's log or a snapshot */
		if (!(rc = qfs_node_path_fmt(path, sizeof(path), "%s/groups/%016" PRIx64, cn->dir,
					      group))) {
			if (qfs_sys_unlink(path) != 0 && errno != ENOENT)
				rc = -errno;
			else
				(void)qfs_node_path_fmt(path, sizeof(path), "%s/groups", cn->dir),
					rc = qfs_node_fsync_dir(path);
		}
	}
	QFS_LOG(rc ? QFS_LOG_ERR : QFS_LOG_WARN, "cell replica wiped for rebuild node=%u group=%016" PRIx64
		" why=\"%s\" err=\"%s\"", id, group, why, rc ? qfs_strerror(rc) : "-");
restart:
	{
		int src = start_locked(c, cn);

		cn->held_down = 0; /* on failure the keeper retries the start */
		if (src && !rc)
			rc = src;
	}
out:
	pthread_mutex_unlock(&c->op_mu);
	free(w);
	return rc;
}

/* See cell.h. */
uint64_t qfs_cell_space_reserve(const struct qfs_cell *c)
{
	return c->reserve;
}

/* See cell.h.  Read by every node's admission of each batch. */
void qfs_cell_space_hold(struct qfs_cell *c, uint64_t bytes)
{
	__atomic_store_n(&c->hold, bytes, __ATOMIC_RELAXED);
}
