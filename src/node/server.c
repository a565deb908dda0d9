/*
 * server.c - `quorumfs node`: one storage node as a process (contract:
 * cluster.h; doc/cluster.md).  It hosts one rnode (RocksDB + WALs) whose
 * endpoint is on the authenticated tcp net of the cluster, so its Paxos
 * and snapshot frames go to the other nodes' processes, and it serves the
 * routers' requests (propose, get, scan, group create/drop/exists/list,
 * status) that arrive on the same endpoint.
 *
 * Threads: the rnode's I/O thread hands request frames to the server's
 * queue (it must not block: a proposal waits for a quorum); NWORK workers
 * take them, call the rnode and send the reply to the router, whose
 * address the request carries.  A reconciler thread asks the other nodes
 * every RECONCILE_MS for their groups and members and creates here every
 * group this node is a member of that a majority of its members hosts but
 * this node lacks (one created while it was down), and drops its replica
 * of a group a membership change removed it from while it was down
 * (qfs_node_removed_here); it never recreates a group this process dropped.
 *
 * Log replicas (doc/cluster.md "Log replicas", doc/paxos.md section 7a).
 * With -o heal_after (s->heal_after_ms, 0: off) a healer thread looks every
 * HEAL_TICK_MS at the groups this node leads.  A group of three storage
 * members one of which has not answered for heal_after gets a log replica
 * on a spare node (not a member; the dead member's AZ first), then loses
 * the dead member: two CONFIG entries, one change each, so writes have a
 * quorum of durable copies again when a second member fails.  A group of
 * two storage members and a log replica, all answering, gets a storage
 * replica back on a node of a third AZ (the dead node once it is back and
 * its reconciler dropped its old copy, or a spare), which catches up
 * through the usual path (snapshot + log); once its applied LSN reaches
 * the leader's, the log replica is removed and its replica (WAL included)
 * dropped.  Both joins carry the vote floor this leader gives (a spare
 * or the dead node may have been a member of the group before: doc/paxos.md
 * section 7a).  The healer blocks on one group at a time; every step is
 * logged (`node heal ...`) and a step that fails is tried again on a later
 * round, from the members in force.  Every CONFIG entry the healer proposes
 * is conditional (qfs_rnode_propose_members_if): appended only while this
 * node still leads in the ballot and with the members its decision was
 * computed from, under its lease, so a healer whose view aged (a leader
 * deposed, or deposed and elected again while another leader healed)
 * never undoes another change.  A dead member is removed only when it is
 * the one storage member silent (qfs_node_heal_decide), checked again just
 * before the removal is proposed (qfs_node_heal_still_dead).
 *
 * Orphan replicas (doc/cluster.md "Orphan replicas").  A JOIN creates a
 * replica whose members do not name this node; when the CONFIG entry that
 * should add it never commits (a timeout, a leader change), no
 * configuration ever names it.  The reconciler drops such a replica once
 * it has been in that state for ORPHAN_GRACE_MS since it was first seen or
 * since the last JOIN of its group here, and the group's leader (holding
 * its lease, no CONFIG in flight) answers that this node is in none of its
 * configurations (QFS_RPC_NONMEMBER), and the replica heard from no leader
 * during that question; s->jmu keeps a JOIN (which `member add` may answer
 * with -EEXIST and then adopt the replica) from coming between the check
 * and the drop.
 *
 * WAL release (doc/cluster.md "WAL release").  A node process has no
 * archive, so after each round the reconciler releases every group's
 * sealed WAL segments below qfs_node_wal_point (its own applied LSN minus
 * WAL_KEEP_LSNS, lowered on the leader to the live members' match points),
 * once the WAL holds more than WAL_KEEP_SEGS segments' worth of bytes; never
 * on a log replica.  A member behind the released point is caught up by a
 * snapshot.
 *
 * Full disk (doc/cluster.md "Full disk").  The rnode's admission keeps
 * NODE_RESERVE free on the node directory's disk for data writes (deletes
 * may go down to its floor).  While the disk has less than twice that
 * free ("short"), the WAL release keeps only WAL_SHORT_KEEP_LSNS entries
 * below applied and no bytes (a WAL of large entries would otherwise
 * keep 256 of them: the disk full of WAL and no write admitted even after
 * every file was deleted; a member behind then gets a snapshot), and the
 * reconciler compacts the store (at most every NODE_COMPACT_MS) so that
 * the space of deleted files comes back: the upkeep a cell's keeper does
 * for an embedded mount (cell.c keeper_space), whose archive releases
 * its WALs.
 *
 * Locks: s->mu protects the queue, stop, the dropped list and the orphan
 * list; s->jmu (taken before s->mu) is held across a JOIN and across an
 * orphan's last check and drop.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/glist.h"
#include "common/log.h"
#include "common/sysio.h"
#include "net/frame.h"
#include "node/cluster.h"
#include "node/rnode.h"
#include "store/store.h"
#include "wal/wal.h"

#define NWORK 16               /* request workers */
#define QUEUE_MAX 4096         /* requests queued before new ones are dropped */
#define QUEUE_BYTES (256u << 20) /* and bytes of them (one is always taken) */
#define SCAN_REPLY_BYTES (4u << 20) /* items per scan reply, about */
#define RECONCILE_MS 3000      /* how often the reconciler asks the others */
#define HEAL_TICK_MS 250       /* how often the healer looks at the groups led here */
#define HEAL_STEP_MS 10000     /* one CONFIG step of the healer */
#define WAL_KEEP_SEGS 4        /* WAL release: segments' worth of bytes kept */
#define WAL_KEEP_LSNS 256      /* WAL release: entries kept below applied */
#define WAL_LIVE_MS 10000      /* WAL release: a peer silent longer is not waited for */
#define HEAL_CATCHUP_MS 600000 /* a restored storage replica's catch-up, at most */
/* Disk bytes a data write must leave free: the memtables of up to three
 * stores (nodes of one machine often share a disk, and a store that
 * cannot flush them stops) and room for the compactions that give
 * deleted files' space back; what an embedded mount keeps (cell.c). */
#define NODE_RESERVE (3 * QFS_STORE_MEMTABLE_DEFAULT + (16ull << 20))
#define NODE_COMPACT_MS 10000  /* least time between two disk-short compactions */
/* Free bytes a disk-short compaction needs: one store's memtables and the
 * tables it writes (the values are in blob files it only rewrites when the
 * disk also has room for the live ones: qfs_store_compact).  Less than
 * NODE_RESERVE, which deletes may have gone below. */
#define NODE_COMPACT_ROOM (QFS_STORE_MEMTABLE_DEFAULT + (16ull << 20))
#define WAL_SHORT_KEEP_LSNS 16 /* WAL release on a short disk: entries kept below applied */
#define ORPHAN_GRACE_MS 30000  /* a replica no configuration names is kept this
				  long after it was first seen or joined */

struct job {
	struct job *next;
	struct qfs_net_frame *f;
};

/* A replica here whose own members do not name this node (joined, not
 * added yet; or an orphan), and since when. */
struct orphan {
	qfs_group_t g;
	uint64_t since_ms;           /* monotonic: first seen, or its group's last JOIN */
};

struct qfs_node_server {
	struct qfs_cluster cl;
	uint32_t id;
	struct qfs_net *net;
	struct qfs_rnode *rn;
	pthread_mutex_t mu;          /* protects the queue and stop */
	pthread_cond_t cv;           /* a job was queued, or stop */
	struct job *head, *tail;
	uint32_t queued;
	size_t queued_bytes;         /* frame bytes of the queued requests */
	int stop;
	pthread_t th[NWORK];
	uint32_t nth;
	struct qfs_rcell *peers;     /* the reconciler's client of the others */
	pthread_cond_t rcv;          /* stop, for the reconciler */
	pthread_t rec;
	int rec_started;
	struct qfs_glist dropped;    /* groups dropped by this process; mu */
	uint32_t heal_after_ms;      /* immutable; 0: no healer */
	pthread_t heal;
	int heal_started;
	uint64_t heal_warned_ms;     /* healer thread: last "no spare" line */
	uint64_t heal_join_ms;       /* healer thread: last storage join refused */
	uint64_t wal_keep_bytes;     /* immutable; WAL bytes a group keeps unreleased */
	pthread_mutex_t jmu;         /* a JOIN, or an orphan's last check and drop */
	struct orphan *orph;         /* mu: replicas their members do not name */
	size_t norph, corph;         /* mu: entries, allocated */
	uint32_t orphan_grace_ms;    /* immutable: ORPHAN_GRACE_MS (tests: the
					environment's QFS_TEST_ORPHAN_GRACE_MS) */
	char *dir;                   /* immutable: the node directory */
	uint64_t compact_ms;         /* reconciler thread: last disk-short compaction */
};

static uint64_t mono_ms(void);

/* The orphan entry of g, or NULL.  s->mu held. */
static struct orphan *orphan_find(struct qfs_node_server *s, qfs_group_t g)
{
	for (size_t i = 0; i < s->norph; i++)
		if (s->orph[i].g == g)
			return &s->orph[i];
	return NULL;
}

/* The orphan entry of g, made at now if absent, its time set to now when
 * reset (a JOIN: the grace starts again); NULL when out of memory (the
 * replica is then kept).  s->mu held. */
static struct orphan *orphan_at(struct qfs_node_server *s, qfs_group_t g, uint64_t now, int reset)
{
	struct orphan *o = orphan_find(s, g);

	if (!o) {
		if (s->norph == s->corph) {
			size_t c = s->corph ? 2 * s->corph : 8;
			struct orphan *v = realloc(s->orph, c * sizeof(*v));

			if (!v)
				return NULL;
			s->orph = v;
			s->corph = c;
		}
		o = &s->orph[s->norph++];
		o->g = g;
		o->since_ms = now;
	}
	if (reset)
		o->since_ms = now;
	return o;
}

/* Forget g's orphan entry.  s->mu held. */
static void orphan_forget(struct qfs_node_server *s, qfs_group_t g)
{
	struct orphan *o = orphan_find(s, g);

	if (o)
		*o = s->orph[--s->norph];
}


/* rnode's on_frame hook, on its I/O thread: queue a request. */
static void on_request(struct qfs_net_frame *f, uint8_t type, void *arg)
{
	struct qfs_node_server *s = arg;
	struct job *j;

	if (type != QFS_RPC_REQ || !(j = malloc(sizeof(*j)))) {
		qfs_net_frame_free(f);
		return;
	}
	j->next = NULL;
	j->f = f;
	pthread_mutex_lock(&s->mu);
	if (s->stop || s->queued >= QUEUE_MAX ||
	    (s->queued && s->queued_bytes + f->len > QUEUE_BYTES)) {
		pthread_mutex_unlock(&s->mu);
		qfs_net_frame_free(f);
		free(j);
		return; /* the router retries at its deadline */
	}
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->queued++;
	s->queued_bytes += f->len;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

struct scan_out {
	struct qfs_buf *b;
	int more;
};

static int scan_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct scan_out *so = arg;

	if (so->b->len >= SCAN_REPLY_BYTES) {
		so->more = 1;
		return 1;
	}
	qfs_buf_put_u32(so->b, (uint32_t)kl);
	qfs_buf_put_u32(so->b, (uint32_t)vl);
	qfs_buf_put(so->b, k, kl);
	qfs_buf_put(so->b, v, vl);
	return 0;
}

static void groups_cb(qfs_group_t g, void *arg)
{
	qfs_buf_put_u64(arg, g);
}

struct members_ctx {
	struct qfs_rnode *rn;
	struct qfs_buf *b;
};

/* GROUPS with QFS_RPC_MEMBERS: a group and its members (cluster.h). */
static void members_cb(qfs_group_t g, void *arg)
{
	struct members_ctx *mc = arg;
	struct qfs_paxos_config cfg;

	if (qfs_rnode_group_members(mc->rn, g, &cfg) != 0)
		return; /* dropped meanwhile */
	qfs_buf_put_u64(mc->b, g);
	qfs_buf_put_u8(mc->b, (uint8_t)cfg.n);
	for (uint32_t i = 0; i < cfg.n; i++) /* (a log replica flagged) */
		qfs_buf_put_u32(mc->b, cfg.ids[i] | (cfg.log >> i & 1 ? QFS_PAXOS_LOG_FLAG : 0));
}

/* EXISTS: 1 and group's members (n x be32) into pb if hosted, else 0. */
static int put_members(struct qfs_rnode *rn, qfs_group_t group, struct qfs_buf *pb)
{
	struct qfs_paxos_config cfg;

	if (qfs_rnode_group_members(rn, group, &cfg) != 0)
		return 0;
	for (uint32_t i = 0; i < cfg.n; i++)
		qfs_buf_put_u32(pb, cfg.ids[i]);
	return 1;
}

/* A strong read is served only by the leader holding its lease. */
static int read_here(struct qfs_node_server *s, const struct qfs_rpc_req *q, struct qfs_rpc_rep *p)
{
	if (!(q->flags & QFS_RPC_STRONG) || qfs_rnode_can_read_strong(s->rn, q->group))
		return 1;
	if (!qfs_rnode_group_exists(s->rn, q->group)) {
		p->err = QFS_ENOGROUP;
		return 0;
	}
	p->err = -EREMOTE;
	p->leader = qfs_rnode_leader(s->rn, q->group);
	return 0;
}

/* Carry out q into p; payload bytes go to pb (p->data points there). */
static void handle(struct qfs_node_server *s, const struct qfs_rpc_req *q, struct qfs_rpc_rep *p,
		   struct qfs_buf *pb)
{
	struct qfs_paxos_config cfg;
	struct scan_out so = { .b = pb };
	void *val = NULL;
	size_t vlen = 0;

	switch (q->op) {
	case QFS_RPC_PROPOSE:
		p->err = qfs_rnode_propose(s->rn, q->group, q->a, q->alen,
					   q->timeout_ms ? q->timeout_ms : 5000, &p->result, &p->leader);
		break;
	case QFS_RPC_GET:
		if (!read_here(s, q, p))
			break;
		p->err = qfs_rnode_get(s->rn, q->group, q->a, q->alen, &val, &vlen);
		if (p->err == -EREMOTE) /* a log replica */
			p->leader = qfs_rnode_leader(s->rn, q->group);
		if (!p->err)
			qfs_buf_put(pb, val, vlen);
		free(val);
		break;
	case QFS_RPC_SCAN:
		if (!read_here(s, q, p))
			break;
		p->err = qfs_rnode_scan(s->rn, q->group, (q->flags & QFS_RPC_LO_NULL) ? NULL : q->a,
					q->alen, (q->flags & QFS_RPC_HI_NULL) ? NULL : q->b, q->blen,
					scan_cb, &so);
		if (p->err == 1)
			p->err = 0;
		if (p->err == -EREMOTE) /* a log replica */
			p->leader = qfs_rnode_leader(s->rn, q->group);
		p->result = so.more;
		break;
	case QFS_RPC_CREATE:
		memset(&cfg, 0, sizeof(cfg));
		if (q->alen % 4 || !q->alen || q->alen / 4 > QFS_PAXOS_MAX_NODES) {
			p->err = -EINVAL;
			break;
		}
		cfg.n = (uint32_t)(q->alen / 4);
		for (uint32_t i = 0; i < cfg.n; i++)
			cfg.ids[i] = qfs_be32_get(q->a + 4 * i);
		p->err = qfs_rnode_group_create(s->rn, q->group, &cfg);
		break;
	case QFS_RPC_DROP:
		pthread_mutex_lock(&s->mu);
		qfs_glist_add(q->group, &s->dropped);
		pthread_mutex_unlock(&s->mu);
		p->err = qfs_rnode_group_drop(s->rn, q->group);
		break;
	case QFS_RPC_EXISTS:
		/* the data names the members (routers of an older release
		 * ignore it): which nodes host the group */
		p->result = put_members(s->rn, q->group, pb);
		break;
	case QFS_RPC_GROUPS:
		if (q->flags & QFS_RPC_MEMBERS) {
			struct members_ctx mc = { s->rn, pb };

			qfs_buf_put_u64(pb, UINT64_MAX);
			qfs_rnode_groups(s->rn, members_cb, &mc);
		} else {
			qfs_rnode_groups(s->rn, groups_cb, pb);
		}
		break;
	case QFS_RPC_STATUS:
		qfs_rnode_status(s->rn, pb);
		break;
	case QFS_RPC_FLOOR: {
		struct qfs_paxos_floor fl;

		if (q->alen != 4) {
			p->err = -EINVAL;
			break;
		}
		p->err = qfs_rnode_join_floor(s->rn, q->group, qfs_be32_get(q->a), &fl, &p->leader);
		if (p->err == 0) {
			qfs_buf_put_u64(pb, fl.promised);
			qfs_buf_put_u64(pb, fl.lsn);
			qfs_buf_put_u64(pb, fl.ballot);
		}
		break;
	}
	case QFS_RPC_JOIN:
	case QFS_RPC_CONFIG: {
		int join_log = 0;

		memset(&cfg, 0, sizeof(cfg));
		if (q->alen % 4 || !q->alen || q->alen / 4 > QFS_PAXOS_MAX_NODES) {
			p->err = -EINVAL;
			break;
		}
		/* a log replica's word carries QFS_PAXOS_LOG_FLAG; a JOIN
		 * whose list ends with our own flagged id makes one here */
		for (uint32_t i = 0; i < q->alen / 4; i++) {
			uint32_t w = qfs_be32_get(q->a + 4 * i);

			if (q->op == QFS_RPC_JOIN && w == (s->id | QFS_PAXOS_LOG_FLAG)) {
				join_log = 1;
				continue;
			}
			if (w & QFS_PAXOS_LOG_FLAG)
				cfg.log |= 1u << cfg.n;
			cfg.ids[cfg.n++] = w & ~QFS_PAXOS_LOG_FLAG;
		}
		if (!cfg.n) {
			p->err = -EINVAL;
		} else if (q->op == QFS_RPC_JOIN) {
			struct qfs_paxos_floor fl;

			/* b: the floor from the leader (an older router sends
			 * none: the replica joins without one, as before) */
			if (q->blen && q->blen != QFS_RPC_FLOOR_BYTES) {
				p->err = -EINVAL;
				break;
			}
			if (q->blen) {
				fl.promised = qfs_be64_get(q->b);
				fl.lsn = qfs_be64_get(q->b + 8);
				fl.ballot = qfs_be64_get(q->b + 16);
			}
			/* an orphan's grace starts again when the CONFIG that
			 * adds this replica follows: it was created now, or it
			 * was already here and `member add` adopts it
			 * (QFS_RPC_ADOPT); a healer's JOIN refused -EEXIST
			 * leaves the grace alone, or its retries every 250 ms
			 * would keep an orphan from ever being dropped.  Under
			 * jmu, so no drop comes between the join and this. */
			pthread_mutex_lock(&s->jmu);
			if (join_log)
				p->err = qfs_rnode_group_join_log(s->rn, q->group, &cfg,
								  q->blen ? &fl : NULL);
			else
				p->err = qfs_rnode_group_join(s->rn, q->group, &cfg, q->blen ? &fl : NULL);
			if (p->err == 0 || (p->err == -EEXIST && (q->flags & QFS_RPC_ADOPT))) {
				pthread_mutex_lock(&s->mu);
				(void)orphan_at(s, q->group, mono_ms(), 1);
				pthread_mutex_unlock(&s->mu);
			}
			pthread_mutex_unlock(&s->jmu);
		} else {
			p->err = qfs_rnode_propose_members(s->rn, q->group, &cfg,
							   q->timeout_ms ? q->timeout_ms : 5000,
							   &p->leader);
		}
		QFS_LOG(p->err ? QFS_LOG_WARN : QFS_LOG_INFO, "node member %s group=%016llx node=%u "
			"members=%u%s err=\"%s\"", q->op == QFS_RPC_JOIN ? "join" : "config",
			(unsigned long long)q->group, s->id, cfg.n, join_log ? " kind=log" : "",
			p->err ? qfs_strerror(p->err) : "none");
		break;
	}
	case QFS_RPC_NONMEMBER:
		if (q->alen != 4) {
			p->err = -EINVAL;
			break;
		}
		p->err = qfs_rnode_nonmember(s->rn, q->group, qfs_be32_get(q->a), &p->leader);
		break;
	default:
		p->err = -EOPNOTSUPP;
	}
	if (pb->err)
		p->err = -ENOMEM;
	p->data = pb->data;
	p->len = p->err ? 0 : pb->len;
}

static void *worker_main(void *arg)
{
	struct qfs_node_server *s = arg;
	struct qfs_buf pb, out;
	struct job *j;

	qfs_buf_init(&pb);
	qfs_buf_init(&out);
	for (;;) {
		struct qfs_rpc_req q;
		struct qfs_rpc_rep p;
		const uint8_t *body;
		size_t blen;
		uint8_t type;
		int rc;

		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		j = s->head;
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		s->queued_bytes -= j->f->len;
		pthread_mutex_unlock(&s->mu);

		if (qfs_net_frame_open(j->f->data, j->f->len, &type, &body, &blen) != 0 ||
		    qfs_rpc_req_decode(body, blen, &q) != 0 || q.from != j->f->from) {
			QFS_LOG(QFS_LOG_WARN, "node request rejected node=%u from=%u err=malformed", s->id,
				j->f->from);
			goto next;
		}
		/* The router listens there; its connection back to it. */
		if (q.addr[0] && (rc = qfs_net_set_addr(s->net, q.from, q.addr)) < 0) {
			QFS_LOG(QFS_LOG_WARN, "node request rejected node=%u from=%u addr=%s err=\"%s\"", s->id,
				q.from, q.addr, qfs_strerror(rc));
			goto next;
		}
		memset(&p, 0, sizeof(p));
		p.id = q.id;
		qfs_buf_reset(&pb);
		handle(s, &q, &p, &pb);
		if (qfs_rpc_rep_encode(&out, &p) == 0)
			(void)qfs_net_send(qfs_rnode_ep(s->rn), q.from, out.data, out.len);
next:
		qfs_net_frame_free(j->f);
		free(j);
		if (pb.cap > SCAN_REPLY_BYTES * 2) {
			qfs_buf_close(&pb);
			qfs_buf_init(&pb);
		}
	}
	qfs_buf_close(&pb);
	qfs_buf_close(&out);
	return NULL;
}

static int has_id(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* The members of group g as a peer that hosts it says (gm[i], ngm[i]:
 * peer i's answer), one that is a member of its own list first; NULL if
 * no peer said (older releases). */
static const struct qfs_rcell_gm *members_of(struct qfs_node_server *s, struct qfs_rcell_gm **gm,
					     const size_t *ngm, qfs_group_t g)
{
	const struct qfs_rcell_gm *any = NULL;

	for (uint32_t i = 0; i < s->cl.n; i++)
		for (size_t k = 0; gm[i] && k < ngm[i]; k++)
			if (gm[i][k].g == g && gm[i][k].n) {
				/* a joining replica's list lacks its own node */
				if (has_id(gm[i][k].ids, gm[i][k].n, s->cl.nodes[i].id))
					return &gm[i][k];
				any = &gm[i][k];
			}
	return any;
}

/* See cluster.h.  A membership change removed this node from the group
 * while it was down: its own members file still names it (a replica that
 * is joining does not, nor does a re-added one below its vote floor
 * count: the members it applied there are its old membership), it did so
 * already when the round began, before the peers were asked (a replica
 * re-added meanwhile applies the CONFIG that re-adds it after the peers
 * answered with the members before it), and a majority of the members
 * the peers have applied host the group, each naming members without
 * this node (a member list is taken only from a peer in it: an applied,
 * hence committed, configuration).  The caller passes no start for a
 * group this process dropped: its replica now is a JOIN's. */
int qfs_node_removed_here(uint32_t self, const struct qfs_cluster *cl,
			  const struct qfs_rcell_gm *start, const struct qfs_rcell_gm *own,
			  int joining, struct qfs_rcell_gm *const *gm, const size_t *ngm)
{
	const struct qfs_rcell_gm *ref = NULL;
	uint32_t hosts = 0;

	if (!start || !has_id(own->ids, own->n, self) || start->g != own->g)
		return 0;
	if (joining)
		return 0; /* re-added: it replays its old membership below its floor */
	if (start->n != own->n || memcmp(start->ids, own->ids, own->n * sizeof(own->ids[0])))
		return 0; /* it applied a change during the round: next round */
	for (uint32_t i = 0; i < cl->n; i++)
		for (size_t k = 0; gm[i] && k < ngm[i]; k++) {
			const struct qfs_rcell_gm *e = &gm[i][k];

			if (e->g != own->g)
				continue;
			if (!e->n || has_id(e->ids, e->n, self))
				return 0; /* an older peer, or one that still counts us */
			if (!has_id(e->ids, e->n, cl->nodes[i].id))
				continue; /* joining there */
			if (ref && (ref->n != e->n || memcmp(ref->ids, e->ids, e->n * sizeof(e->ids[0]))))
				return 0; /* a change in flight: next round */
			ref = e;
			hosts++;
		}
	return ref && hosts >= ref->n / 2 + 1;
}

/* This node's replica of g as the members it applied (out->n 0: none, or
 * joining), for qfs_node_removed_here; *joining: below its vote floor. */
static void own_members(struct qfs_node_server *s, qfs_group_t g, struct qfs_rcell_gm *out,
			int *joining)
{
	struct qfs_paxos_config own;

	memset(out, 0, sizeof(*out));
	out->g = g;
	*joining = qfs_rnode_group_joining(s->rn, g);
	if (qfs_rnode_group_members(s->rn, g, &own) != 0)
		return;
	out->n = own.n < QFS_CLUSTER_MAX_NODES ? own.n : QFS_CLUSTER_MAX_NODES;
	memcpy(out->ids, own.ids, out->n * sizeof(out->ids[0]));
}

/* Drop this node's replica of g, removed from its members (see above). */
static void drop_removed(struct qfs_node_server *s, qfs_group_t g)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	qfs_glist_add(g, &s->dropped);
	pthread_mutex_unlock(&s->mu);
	rc = qfs_rnode_group_drop(s->rn, g);
	QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "node reconcile dropped group=%016llx node=%u "
		"err=\"%s\" why=\"no longer a member\"", (unsigned long long)g, s->id,
		rc ? qfs_strerror(rc) : "none");
}

/* 1 if g's leader says this node is in none of g's configurations
 * (QFS_RPC_NONMEMBER), asked from the members own names, then every node,
 * following the leaders' hints; *leader: the one that said so.  A leader
 * that counts it, or cannot tell yet (no lease, a change in flight), ends
 * the question with 0, as does no answer (a node of an older release
 * does not know the request). */
static int orphan_confirmed(struct qfs_node_server *s, qfs_group_t g, const struct qfs_rcell_gm *own,
			    uint32_t *leader)
{
	uint32_t ask[QFS_CLUSTER_MAX_NODES], n = 0;

	for (uint32_t i = 0; i < own->n; i++)
		if (own->ids[i] != s->id && qfs_cluster_node(&s->cl, own->ids[i]))
			ask[n++] = own->ids[i];
	for (uint32_t i = 0; i < s->cl.n; i++)
		if (s->cl.nodes[i].id != s->id && !has_id(ask, n, s->cl.nodes[i].id))
			ask[n++] = s->cl.nodes[i].id;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t hint = 0;
		int r = qfs_rcell_nonmember_at(s->peers, ask[k], g, s->id, &hint);

		if (r == 0) {
			*leader = ask[k];
			return 1;
		}
		if (r == -EINVAL || r == -EBUSY)
			return 0;
		for (uint32_t j = k + 2; r == -EREMOTE && hint && j < n; j++)
			if (ask[j] == hint) { /* the leader next */
				memmove(ask + k + 2, ask + k + 1, (j - k - 1) * sizeof(ask[0]));
				ask[k + 1] = hint;
				break;
			}
	}
	return 0;
}

/* The orphan rule for this node's replica of g (see the file comment):
 * one that its members name is forgotten; one that they do not is dropped
 * once its grace passed and its group's leader confirms (one INFO line). */
static void orphan_check(struct qfs_node_server *s, qfs_group_t g)
{
	struct qfs_rnode_ginfo before, after;
	struct qfs_rcell_gm own;
	const struct orphan *o;
	uint64_t now = mono_ms(), since;
	uint32_t leader = 0;
	int joining, rc, fresh;

	own_members(s, g, &own, &joining);
	pthread_mutex_lock(&s->mu);
	if (!own.n || has_id(own.ids, own.n, s->id)) {
		orphan_forget(s, g);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	o = orphan_at(s, g, now, 0);
	since = o ? o->since_ms : now;
	pthread_mutex_unlock(&s->mu);
	if (now - since < s->orphan_grace_ms || qfs_rnode_group_info(s->rn, g, &before) != 0 ||
	    !orphan_confirmed(s, g, &own, &leader))
		return;
	pthread_mutex_lock(&s->jmu);
	pthread_mutex_lock(&s->mu);
	o = orphan_find(s, g);
	fresh = !o || o->since_ms != since; /* a JOIN came meanwhile */
	pthread_mutex_unlock(&s->mu);
	/* a leader's entries or snapshot reached it during the question: a
	 * CONFIG that adds it may be in flight after all */
	if (fresh || qfs_rnode_group_info(s->rn, g, &after) != 0 || after.last != before.last ||
	    after.commit != before.commit || after.applied != before.applied ||
	    after.ballot != before.ballot || after.leader != before.leader) {
		pthread_mutex_unlock(&s->jmu);
		return;
	}
	pthread_mutex_lock(&s->mu);
	qfs_glist_add(g, &s->dropped);
	orphan_forget(s, g);
	pthread_mutex_unlock(&s->mu);
	rc = qfs_rnode_group_drop(s->rn, g);
	pthread_mutex_unlock(&s->jmu);
	QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "node reconcile dropped group=%016llx node=%u "
		"leader=%u members=%u age_ms=%llu err=\"%s\" why=\"an orphan: no configuration names it\"",
		(unsigned long long)g, s->id, leader, own.n, (unsigned long long)(now - since),
		rc ? qfs_strerror(rc) : "none");
}

/* One reconciliation round: see the file comment.  A group is created
 * here only if this node is one of its members (placement, doc/cluster.md)
 * and a majority of its members host it; a peer of an older release does
 * not name members: every node of the file is then a member. */
static void reconcile(struct qfs_node_server *s)
{
	struct qfs_glist gl[QFS_CLUSTER_MAX_NODES], mine, before;
	struct qfs_rcell_gm *gm[QFS_CLUSTER_MAX_NODES], *start;
	size_t ngm[QFS_CLUSTER_MAX_NODES];
	struct qfs_paxos_config all;
	uint32_t asked = 0;

	memset(gl, 0, sizeof(gl));
	memset(gm, 0, sizeof(gm));
	memset(ngm, 0, sizeof(ngm));
	memset(&mine, 0, sizeof(mine));
	memset(&all, 0, sizeof(all));
	memset(&before, 0, sizeof(before));
	/* this node's replicas that name it, as the round begins: only
	 * those may be found removed (qfs_node_removed_here) */
	qfs_rnode_groups(s->rn, qfs_glist_add, &before);
	start = calloc(before.n ? before.n : 1, sizeof(*start));
	for (size_t k = 0; start && k < before.n; k++) {
		int joining;

		own_members(s, before.v[k], &start[k], &joining);
		if (joining || !has_id(start[k].ids, start[k].n, s->id))
			start[k].n = 0;
	}
	all.n = s->cl.n;
	for (uint32_t i = 0; i < s->cl.n; i++) {
		all.ids[i] = s->cl.nodes[i].id;
		if (s->cl.nodes[i].id == s->id ||
		    qfs_rcell_node_members(s->peers, s->cl.nodes[i].id, 1000, &gm[i], &ngm[i]) != 0)
			continue;
		for (size_t k = 0; k < ngm[i]; k++)
			qfs_glist_add(gm[i][k].g, &gl[i]);
		asked++;
	}
	qfs_rnode_groups(s->rn, qfs_glist_add, &mine);
	for (uint32_t i = 0; asked && i < s->cl.n; i++)
		for (size_t k = 0; k < gl[i].n; k++) {
			qfs_group_t g = gl[i].v[k];
			const struct qfs_rcell_gm *m = members_of(s, gm, ngm, g);
			struct qfs_paxos_config cfg = all;
			uint32_t hosts = 0;
			int dropped, rc;

			if (qfs_glist_has(&mine, g))
				continue;
			if (m) {
				cfg.n = m->n;
				cfg.log = m->log; /* (a log replica is created as one) */
				memcpy(cfg.ids, m->ids, m->n * sizeof(m->ids[0]));
			}
			if (!has_id(cfg.ids, cfg.n, s->id))
				continue; /* placed on other nodes */
			for (uint32_t j = 0; j < s->cl.n; j++)
				hosts += qfs_glist_has(&gl[j], g) && has_id(cfg.ids, cfg.n, s->cl.nodes[j].id);
			pthread_mutex_lock(&s->mu);
			dropped = qfs_glist_has(&s->dropped, g);
			pthread_mutex_unlock(&s->mu);
			if (hosts < cfg.n / 2 + 1 || dropped)
				continue;
			rc = qfs_rnode_group_create(s->rn, g, &cfg);
			QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "node reconcile created group=%016llx "
				"node=%u hosts=%u members=%u err=\"%s\"", (unsigned long long)g, s->id, hosts,
				cfg.n, rc ? qfs_strerror(rc) : "none");
			qfs_glist_add(g, &mine);
		}
	for (size_t k = 0; asked && start && k < mine.n; k++) {
		const struct qfs_rcell_gm *st = NULL;
		struct qfs_rcell_gm own;
		int joining;

		for (size_t j = 0; j < before.n && !st; j++)
			st = before.v[j] == mine.v[k] && start[j].n ? &start[j] : NULL;
		/* a replica of a group this process dropped was re-created
		 * by a JOIN (`member add` drops an earlier one first, maybe
		 * during this round, and the new one may name the same
		 * members): never the replica the round began with */
		pthread_mutex_lock(&s->mu);
		if (qfs_glist_has(&s->dropped, mine.v[k]))
			st = NULL;
		pthread_mutex_unlock(&s->mu);
		own_members(s, mine.v[k], &own, &joining);
		if (qfs_node_removed_here(s->id, &s->cl, st, &own, joining, gm, ngm))
			drop_removed(s, mine.v[k]);
	}
	for (size_t k = 0; asked && k < mine.n; k++)
		orphan_check(s, mine.v[k]);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->norph;) /* groups gone (or joined during the
					     round: their grace starts later) */
		if (!qfs_glist_has(&mine, s->orph[i].g))
			s->orph[i] = s->orph[--s->norph];
		else
			i++;
	pthread_mutex_unlock(&s->mu);
	for (uint32_t i = 0; i < s->cl.n; i++) {
		qfs_glist_free(&gl[i]);
		free(gm[i]);
	}
	free(start);
	qfs_glist_free(&before);
	qfs_glist_free(&mine);
}

/* See cluster.h. */
qfs_lsn_t qfs_node_wal_point(uint32_t self, const struct qfs_rnode_ginfo *gi,
			     const struct qfs_paxos_config *members,
			     const struct qfs_rnode_health *h, uint64_t keep_bytes,
			     qfs_lsn_t keep_lsns, uint64_t live_ms)
{
	qfs_lsn_t pt;

	if (gi->stopped || gi->untrusted || gi->wal_bytes <= keep_bytes || gi->applied <= keep_lsns)
		return 0;
	for (uint32_t i = 0; i < members->n; i++)
		if (members->ids[i] == self && (members->log >> i & 1))
			return 0; /* a log replica: the group may need all of it */
	pt = gi->applied + 1 - keep_lsns;
	for (uint32_t i = 0; h && h->leader && i < h->n; i++)
		if (h->ids[i] != self && h->answered[i] && h->silent_ms[i] < live_ms &&
		    h->match[i] + 1 < pt)
			pt = h->match[i] + 1;
	return pt > gi->first ? pt : 0;
}

/* 1 if a sealed segment of the WAL in dir is wholly below pt: two segment
 * files (named by their first LSN: 16 hex digits + ".wal") start at or
 * below pt.  Keeps a release (which flushes the store first) from running
 * every round while pt is still inside the oldest segment.  0 when the directory cannot be
 * read (the release waits). */
static int wal_whole_below(const char *dir, qfs_lsn_t pt)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while (n < 2 && (e = readdir(d)) != NULL) {
		unsigned long long first;
		char *end;

		if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".wal"))
			continue;
		first = strtoull(e->d_name, &end, 16);
		if (end == e->d_name + 16 && first <= pt)
			n++;
	}
	closedir(d);
	return n >= 2;
}

/* Release group g's WAL below qfs_node_wal_point (see the file comment);
 * one INFO line when segments went, one WARN when the release failed. */
static void wal_release_group(struct qfs_node_server *s, qfs_group_t g, int short_disk)
{
	struct qfs_rnode_ginfo gi, after;
	struct qfs_rnode_health h;
	struct qfs_paxos_config members;
	char dir[PATH_MAX];
	qfs_lsn_t pt, applied;
	int rc;

	if (qfs_rnode_group_info(s->rn, g, &gi) != 0 ||
	    qfs_rnode_group_members(s->rn, g, &members) != 0)
		return;
	if (qfs_rnode_group_health(s->rn, g, &h) != 0)
		h.leader = 0;
	pt = qfs_node_wal_point(s->id, &gi, &members, &h, short_disk ? 0 : s->wal_keep_bytes,
				short_disk ? WAL_SHORT_KEEP_LSNS : WAL_KEEP_LSNS, WAL_LIVE_MS);
	if (!pt || qfs_rnode_wal_info(s->rn, g, dir, sizeof(dir), &applied) != 0 ||
	    !wal_whole_below(dir, pt))
		return;
	rc = qfs_rnode_wal_release(s->rn, g, pt);
	if (rc) {
		if (rc != QFS_ENOGROUP && rc != QFS_ESTOPPED)
			QFS_LOG(QFS_LOG_WARN, "node wal release failed group=%016llx node=%u lsn=%llu err=\"%s\"",
				(unsigned long long)g, s->id, (unsigned long long)pt, qfs_strerror(rc));
		return;
	}
	if (qfs_rnode_group_info(s->rn, g, &after) == 0 && after.wal_bytes < gi.wal_bytes)
		QFS_LOG(QFS_LOG_INFO, "node wal released group=%016llx node=%u below=%llu "
			"applied=%llu first=%llu bytes_freed=%llu bytes_kept=%llu",
			(unsigned long long)g, s->id, (unsigned long long)pt,
			(unsigned long long)gi.applied, (unsigned long long)after.first,
			(unsigned long long)(gi.wal_bytes - after.wal_bytes),
			(unsigned long long)after.wal_bytes);
}

/* Free bytes of the node directory's disk; UINT64_MAX if unknown. */
static uint64_t disk_avail(struct qfs_node_server *s)
{
	return qfs_sysio_disk_avail(s->dir);
}

static void wal_release_round(struct qfs_node_server *s)
{
	struct qfs_glist mine;
	int short_disk = disk_avail(s) < 2 * NODE_RESERVE;

	memset(&mine, 0, sizeof(mine));
	qfs_rnode_groups(s->rn, qfs_glist_add, &mine);
	for (size_t k = 0; k < mine.n; k++)
		wal_release_group(s, mine.v[k], short_disk);
	qfs_glist_free(&mine);
}

/* The store compacted when the node directory's disk has less than twice
 * NODE_RESERVE free (but still NODE_COMPACT_ROOM: a compaction that meets
 * a full disk would stop the store), at most every NODE_COMPACT_MS:
 * RocksDB gives a deleted file's space back only when a compaction meets
 * the delete.  Reconciler thread, after the WAL release. */
static void disk_upkeep(struct qfs_node_server *s)
{
	uint64_t now = mono_ms(), avail;
	int rc;

	if (now - s->compact_ms < NODE_COMPACT_MS || (avail = disk_avail(s)) >= 2 * NODE_RESERVE)
		return;
	s->compact_ms = now;
	rc = qfs_rnode_store_compact(s->rn, NODE_COMPACT_ROOM);
	QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "node store compacted node=%u free=%llu err=\"%s\"", s->id,
		(unsigned long long)avail, rc ? qfs_strerror(rc) : "none");
}

static void *reconcile_main(void *arg)
{
	struct qfs_node_server *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += RECONCILE_MS / 1000;
		pthread_cond_timedwait(&s->rcv, &s->mu, &ts);
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->mu);
		reconcile(s);
		wal_release_round(s);
		disk_upkeep(s);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- the healer: log replicas (see the file comment) ---- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int heal_stopping(struct qfs_node_server *s)
{
	int stop;

	pthread_mutex_lock(&s->mu);
	stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

static const char *node_az(struct qfs_node_server *s, uint32_t id)
{
	const struct qfs_cluster_node *n = qfs_cluster_node(&s->cl, id);

	return n ? n->az : "";
}

/* The member words of c for the node RPCs (QFS_PAXOS_LOG_FLAG on a log
 * replica's id). */
static void cfg_words(const struct qfs_paxos_config *c, uint32_t *w)
{
	for (uint32_t i = 0; i < c->n; i++)
		w[i] = c->ids[i] | (c->log >> i & 1 ? QFS_PAXOS_LOG_FLAG : 0);
}

/* Propose to = one change of from, the configuration the decision was
 * computed from in ballot (this node leading), only while both are still
 * in force and this node holds its lease (qfs_rnode_propose_members_if);
 * retried while another change, a new leader's barrier or the lease after
 * a change is pending.  0 or the error (-ESTALE: the view aged, one INFO
 * line; the next round decides again). */
static int heal_config(struct qfs_node_server *s, qfs_group_t g, const struct qfs_paxos_config *from,
		       qfs_ballot_t ballot, const struct qfs_paxos_config *to)
{
	uint64_t dl = mono_ms() + HEAL_STEP_MS;
	uint32_t leader = 0;
	int rc;

	do {
		rc = qfs_rnode_propose_members_if(s->rn, g, from, ballot, to, HEAL_STEP_MS, &leader);
		if (rc != -EBUSY && rc != -EAGAIN)
			break;
		usleep(100 * 1000);
	} while (mono_ms() < dl && !heal_stopping(s));
	if (rc == -ESTALE)
		QFS_LOG(QFS_LOG_INFO, "node heal stale group=%016llx node=%u members=%u ballot=%llu "
			"err=\"the members in force or the ballot changed since the decision (the next "
			"round decides again)\"", (unsigned long long)g, s->id, from->n,
			(unsigned long long)ballot);
	return rc;
}

/* The level of a step's log line: level when it failed, INFO when it
 * succeeded or its view aged (-ESTALE: heal_config said why). */
static int heal_level(int rc, int level)
{
	return rc && rc != -ESTALE ? level : QFS_LOG_INFO;
}

/* Ask node id to host an empty replica of g (a log replica when log)
 * joining the members in force w[n], with the vote floor this node gives
 * as g's leader (doc/paxos.md sections 7 and 7a: id may have been a
 * member of g before, as a spare or as the dead member back, and its
 * empty replica must not vote for a stale log).  0; a floor error
 * (-EREMOTE: not the leader any more, -EBUSY: a barrier or id's removal
 * uncommitted) with *nofloor set; or the error of qfs_rcell_join_at. */
static int heal_join(struct qfs_node_server *s, qfs_group_t g, uint32_t id, const uint32_t *w,
		     uint32_t n, int log, int *nofloor)
{
	struct qfs_paxos_floor fl;
	int rc = qfs_rnode_join_floor(s->rn, g, id, &fl, NULL);

	*nofloor = rc != 0;
	if (rc) {
		QFS_LOG(QFS_LOG_INFO, "node heal floor group=%016llx node=%u err=\"%s\""
			" action=\"tried again in the next round\"",
			(unsigned long long)g, id, qfs_strerror(rc));
		return rc;
	}
	return qfs_rcell_join_at(s->peers, id, g, w, n, log, &fl);
}

/* The second step of phase 1: dead out of c (which holds log replica lr,
 * added since t0; ballot: this leader's when c was in force), once the
 * leader's view taken now still shows dead as the one silent storage
 * member (qfs_node_heal_still_dead): it may have answered again, or
 * another member may have gone silent, since the decision. */
static void heal_remove_dead(struct qfs_node_server *s, qfs_group_t g,
			     const struct qfs_paxos_config *c, qfs_ballot_t ballot, uint32_t dead,
			     uint32_t lr, uint64_t t0)
{
	struct qfs_paxos_config rm;
	struct qfs_rnode_health h;
	int rc;

	if (qfs_rnode_group_health(s->rn, g, &h) != 0 ||
	    !qfs_node_heal_still_dead(&h, dead, s->heal_after_ms)) {
		QFS_LOG(QFS_LOG_INFO, "node heal member kept group=%016llx node=%u log=%u (it answers "
			"again, another storage member is silent, or this node no longer leads: the "
			"next round decides)", (unsigned long long)g, dead, lr);
		return;
	}
	memset(&rm, 0, sizeof(rm));
	for (uint32_t i = 0; i < c->n; i++)
		if (c->ids[i] != dead) {
			if (c->log >> i & 1)
				rm.log |= 1u << rm.n;
			rm.ids[rm.n++] = c->ids[i];
		}
	rc = heal_config(s, g, c, ballot, &rm);
	QFS_LOG(heal_level(rc, QFS_LOG_ERR), "node heal member removed group=%016llx node=%u "
		"members=%u log=%u took_ms=%llu err=\"%s\"", (unsigned long long)g, dead, rm.n, lr,
		(unsigned long long)(mono_ms() - t0), rc ? qfs_strerror(rc) : "none");
}

/* Phase 1: member dead (silent for heal_after) of a group of three storage
 * replicas c (in force in ballot): a log replica on a spare node, then
 * dead removed. */
static void heal_add_log(struct qfs_node_server *s, qfs_group_t g, const struct qfs_paxos_config *c,
			 qfs_ballot_t ballot, uint32_t dead, uint64_t silent_ms)
{
	uint32_t cand[QFS_CLUSTER_MAX_NODES], nc = 0, w[QFS_PAXOS_MAX_NODES];
	struct qfs_paxos_config add = *c;
	uint64_t t0 = mono_ms();
	uint32_t spare = 0;
	int rc = -ENODEV, nofloor = 0;

	/* spares: not members, the dead member's AZ first */
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < s->cl.n; i++) {
			uint32_t id = s->cl.nodes[i].id;
			int same = !strcmp(s->cl.nodes[i].az, node_az(s, dead));
			int member = 0;

			for (uint32_t k = 0; k < c->n; k++)
				member |= c->ids[k] == id;
			if (!member && same == !pass)
				cand[nc++] = id;
		}
	cfg_words(c, w);
	for (uint32_t i = 0; i < nc && !heal_stopping(s); i++) {
		if (!qfs_rcell_node_up(s->peers, cand[i]))
			continue;
		rc = heal_join(s, g, cand[i], w, c->n, 1, &nofloor);
		if (nofloor)
			return; /* (the same for every spare) */
		QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "node heal join group=%016llx node=%u "
			"kind=log dead=%u err=\"%s\"", (unsigned long long)g, cand[i], dead,
			rc ? qfs_strerror(rc) : "none");
		if (rc == 0) {
			spare = cand[i];
			break;
		}
	}
	if (!spare) {
		if (mono_ms() - s->heal_warned_ms >= 60000) {
			s->heal_warned_ms = mono_ms();
			QFS_LOG(QFS_LOG_WARN, "node heal no spare group=%016llx dead=%u err=\"%s\" "
				"(no node outside the group answers and takes a log replica)",
				(unsigned long long)g, dead, qfs_strerror(rc));
		}
		return;
	}
	add.ids[add.n] = spare;
	add.log |= 1u << add.n;
	add.n++;
	rc = heal_config(s, g, c, ballot, &add);
	QFS_LOG(heal_level(rc, QFS_LOG_ERR), "node heal log replica added group=%016llx node=%u "
		"az=%s dead=%u silent_ms=%llu took_ms=%llu err=\"%s\"", (unsigned long long)g, spare,
		node_az(s, spare), dead, (unsigned long long)silent_ms,
		(unsigned long long)(mono_ms() - t0), rc ? qfs_strerror(rc) : "none");
	if (rc) {
		/* the next round starts over; after a timeout the entry may
		 * still commit: the replica stays (a later round goes on, or
		 * the spare's reconciler drops it as an orphan) */
		if (rc != -ETIMEDOUT)
			qfs_rcell_drop_at(s->peers, spare, g);
		return;
	}
	heal_remove_dead(s, g, &add, ballot, dead, spare, t0);
}

/* Wait until node applied what this leader had applied when asked (or
 * HEAL_CATCHUP_MS); node is this leader itself when the restored replica
 * took the lead: until it applied what it had committed when asked.  0 or
 * -ETIMEDOUT. */
static int heal_caught_up(struct qfs_node_server *s, qfs_group_t g, uint32_t node)
{
	struct qfs_rnode_ginfo gi;
	uint64_t dl = mono_ms() + HEAL_CATCHUP_MS;
	qfs_lsn_t got = 0;

	if (qfs_rnode_group_info(s->rn, g, &gi) != 0)
		return QFS_ENOGROUP;
	if (node == s->id) {
		qfs_lsn_t want = gi.commit;

		while (qfs_rnode_group_info(s->rn, g, &gi) == 0 && gi.applied < want) {
			if (mono_ms() >= dl || heal_stopping(s))
				return -ETIMEDOUT;
			usleep(200 * 1000);
		}
		return 0;
	}
	while (qfs_rcell_applied_at(s->peers, node, g, &got) != 0 || got < gi.applied) {
		if (mono_ms() >= dl || heal_stopping(s))
			return -ETIMEDOUT;
		usleep(200 * 1000);
	}
	return 0;
}

static void heal_retire(struct qfs_node_server *s, qfs_group_t g, const struct qfs_paxos_config *c,
			qfs_ballot_t ballot, uint32_t lr);

/* Phase 2: a group of two storage members and log replica lr (c, in force
 * in ballot): a storage replica on a node of a third AZ, its catch-up,
 * then lr removed and dropped.  add: a storage member already added (a
 * round that stopped after the add; c is then the members before it),
 * else 0. */
static void heal_restore(struct qfs_node_server *s, qfs_group_t g, const struct qfs_paxos_config *c,
			 qfs_ballot_t ballot, uint32_t lr, uint32_t added)
{
	struct qfs_paxos_config to = *c;
	uint32_t w[QFS_PAXOS_MAX_NODES], nw = added;
	uint64_t t0 = mono_ms();
	int rc, nofloor = 0;

	if (!nw && mono_ms() - s->heal_join_ms < RECONCILE_MS / 3)
		return; /* a join was refused (an old copy there): not every tick */
	if (!nw) {
		cfg_words(c, w);
		for (uint32_t i = 0; i < s->cl.n && !nw && !heal_stopping(s); i++) {
			uint32_t id = s->cl.nodes[i].id;
			int taken = 0;

			for (uint32_t k = 0; k < c->n; k++)
				taken |= c->ids[k] == id ||
					 (!(c->log >> k & 1) && !strcmp(node_az(s, c->ids[k]),
									s->cl.nodes[i].az));
			if (taken || !qfs_rcell_node_up(s->peers, id))
				continue;
			/* -EEXIST: it still holds an old copy (its reconciler
			 * drops it within RECONCILE_MS): a later round */
			rc = heal_join(s, g, id, w, c->n, 0, &nofloor);
			if (nofloor) {
				s->heal_join_ms = mono_ms();
				return;
			}
			QFS_LOG(rc ? QFS_LOG_DEBUG : QFS_LOG_INFO, "node heal join group=%016llx node=%u "
				"kind=storage err=\"%s\"", (unsigned long long)g, id,
				rc ? qfs_strerror(rc) : "none");
			if (rc == 0)
				nw = id;
		}
		if (!nw) {
			s->heal_join_ms = mono_ms();
			return;
		}
		to.ids[to.n++] = nw;
	} else {
		to.ids[to.n++] = nw;
	}
	if (!added) {
		rc = heal_config(s, g, c, ballot, &to);
		QFS_LOG(heal_level(rc, QFS_LOG_ERR), "node heal storage replica added group=%016llx "
			"node=%u az=%s err=\"%s\"", (unsigned long long)g, nw, node_az(s, nw),
			rc ? qfs_strerror(rc) : "none");
		if (rc) {
			if (rc != -ETIMEDOUT) /* (see heal_add_log) */
				qfs_rcell_drop_at(s->peers, nw, g);
			return;
		}
	}
	rc = heal_caught_up(s, g, nw);
	QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "node heal storage replica caught up group=%016llx "
		"node=%u took_ms=%llu err=\"%s\"", (unsigned long long)g, nw,
		(unsigned long long)(mono_ms() - t0), rc ? qfs_strerror(rc) : "none");
	if (rc)
		return; /* the log replica stays; a later round waits again */
	/* (the catch-up may take minutes: the retirement is proposed only if
	 * the members and the ballot are still those of the add) */
	heal_retire(s, g, &to, ballot, lr);
}

/* Log replica lr out of c (one change; in force in ballot), then its
 * replica dropped. */
static void heal_retire(struct qfs_node_server *s, qfs_group_t g, const struct qfs_paxos_config *c,
			qfs_ballot_t ballot, uint32_t lr)
{
	struct qfs_paxos_config rm;
	int rc;

	memset(&rm, 0, sizeof(rm));
	for (uint32_t i = 0; i < c->n; i++)
		if (c->ids[i] != lr) {
			if (c->log >> i & 1)
				rm.log |= 1u << rm.n;
			rm.ids[rm.n++] = c->ids[i];
		}
	rc = heal_config(s, g, c, ballot, &rm);
	if (rc == 0)
		rc = qfs_rcell_drop_at(s->peers, lr, g);
	QFS_LOG(heal_level(rc, QFS_LOG_WARN), "node heal log replica retired group=%016llx "
		"node=%u members=%u err=\"%s\"", (unsigned long long)g, lr, rm.n,
		rc == -ETIMEDOUT ? "no answer: its copy is dropped by its reconciler" :
		rc ? qfs_strerror(rc) : "none");
}

/* Storage peers of h silent for heal_after_ms (no answer for that long, or
 * none since this leader's election or last change for that long); *first:
 * the first of them, *silent_ms its silence. */
static uint32_t heal_silent(const struct qfs_rnode_health *h, uint32_t heal_after_ms,
			    uint32_t *first, uint64_t *silent_ms)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < h->n; i++)
		if (!qfs_paxos_config_is_log(&h->cfg, h->ids[i]) && h->silent_ms[i] >= heal_after_ms &&
		    n++ == 0) {
			*first = h->ids[i];
			*silent_ms = h->silent_ms[i];
		}
	return n;
}

/* See cluster.h.  The decision of heal_group, apart from its I/O. */
int qfs_node_heal_decide(uint32_t self, const struct qfs_rnode_health *h, uint32_t heal_after_ms,
			 struct qfs_node_heal_step *out)
{
	uint32_t nlog = 0, nsilent;
	int all_up = 1;

	memset(out, 0, sizeof(*out));
	if (!h->leader || h->changing)
		return QFS_NODE_HEAL_NONE;
	for (uint32_t i = 0; i < h->cfg.n; i++)
		if (h->cfg.log >> i & 1) {
			nlog++;
			out->lr = h->cfg.ids[i];
		}
	for (uint32_t i = 0; i < h->n; i++)
		/* (up: it answered this leader; one silent since the
		 * election only may be the dead old leader: no restore, which
		 * would make a fourth member that every write quorum then
		 * needs, until it caught up) */
		if (!h->answered[i] || h->silent_ms[i] >= heal_after_ms)
			all_up = 0;
	nsilent = heal_silent(h, heal_after_ms, &out->dead, &out->silent_ms);
	if (nsilent > 1) {
		/* which one died first (the one the log replica stands for)
		 * is not known here: a new leader counts both from its
		 * election, e.g. the restarting old leader and the member
		 * that really died.  A removal could take the wrong one, the
		 * group then left with one storage copy and the other never
		 * back; wait until one answers (the group has no write quorum
		 * meanwhile anyway: two of three, or of four, are silent) */
		out->dead = 0;
		out->silent_ms = 0;
	}
	if (h->cfg.n == 3 && nlog == 0 && out->dead)
		return QFS_NODE_HEAL_ADD_LOG;
	if (h->cfg.n == 3 && nlog == 1 && all_up)
		return QFS_NODE_HEAL_RESTORE;
	if (h->cfg.n == 4 && nlog == 1) {
		/* a round that stopped half-way: the member added last (the
		 * highest index) is the log replica (phase 1: the dead member
		 * is still to go) or a storage replica (phase 2: the log
		 * replica is still to go once it caught up) */
		out->added = h->cfg.ids[h->cfg.n - 1];
		if (qfs_paxos_config_is_log(&h->cfg, out->added))
			return out->dead ? QFS_NODE_HEAL_REMOVE_DEAD
			       : all_up  ? QFS_NODE_HEAL_RETIRE_LOG /* (the dead came back) */
					 : QFS_NODE_HEAL_NONE;
		/* (also when the added replica leads now, self: a leader holds
		 * every committed entry, and it was handed the lead or elected
		 * before the one that added it retired the log replica) */
		(void)self;
		return QFS_NODE_HEAL_FINISH_RESTORE;
	}
	return QFS_NODE_HEAL_NONE;
}

/* See cluster.h. */
int qfs_node_heal_still_dead(const struct qfs_rnode_health *h, uint32_t dead,
			     uint32_t heal_after_ms)
{
	int found = 0;

	if (!h->leader || h->changing || !dead || qfs_paxos_config_is_log(&h->cfg, dead))
		return 0;
	for (uint32_t i = 0; i < h->n; i++) {
		int silent = !h->answered[i] || h->silent_ms[i] >= heal_after_ms;

		if (h->ids[i] == dead)
			found = silent;
		else if (silent && !qfs_paxos_config_is_log(&h->cfg, h->ids[i]))
			return 0; /* not the only storage member silent */
	}
	return found;
}

/* One group led here (see the file comment). */
static void heal_group(struct qfs_node_server *s, qfs_group_t g)
{
	struct qfs_rnode_health h;
	struct qfs_node_heal_step st;
	struct qfs_paxos_config c3;

	if (qfs_rnode_group_health(s->rn, g, &h) != 0)
		return;
	switch (qfs_node_heal_decide(s->id, &h, s->heal_after_ms, &st)) {
	case QFS_NODE_HEAL_ADD_LOG:
		heal_add_log(s, g, &h.cfg, h.ballot, st.dead, st.silent_ms);
		break;
	case QFS_NODE_HEAL_RESTORE:
		heal_restore(s, g, &h.cfg, h.ballot, st.lr, 0);
		break;
	case QFS_NODE_HEAL_REMOVE_DEAD:
		heal_remove_dead(s, g, &h.cfg, h.ballot, st.dead, st.added, mono_ms());
		break;
	case QFS_NODE_HEAL_RETIRE_LOG:
		heal_retire(s, g, &h.cfg, h.ballot, st.lr);
		break;
	case QFS_NODE_HEAL_FINISH_RESTORE:
		c3 = h.cfg;
		c3.n--;
		heal_restore(s, g, &c3, h.ballot, st.lr, st.added);
		break;
	default:
		break;
	}
}

static void *heal_main(void *arg)
{
	struct qfs_node_server *s = arg;
	struct qfs_glist mine;
	struct timespec ts;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += HEAL_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->rcv, &s->mu, &ts);
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->mu);
		memset(&mine, 0, sizeof(mine));
		qfs_rnode_groups(s->rn, qfs_glist_add, &mine);
		for (size_t k = 0; k < mine.n && !heal_stopping(s); k++)
			heal_group(s, mine.v[k]);
		qfs_glist_free(&mine);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* See cluster.h. */
int qfs_node_server_start(const struct qfs_node_server_opts *o, struct qfs_node_server **out)
{
	const struct qfs_cluster_node *me;
	struct qfs_node_server *s;
	struct qfs_rnode_opts ro;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->jmu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->rcv, NULL);
	s->orphan_grace_ms = ORPHAN_GRACE_MS;
	s->dir = strdup(o->dir);
	if (!s->dir) {
		rc = -ENOMEM;
		goto err_free;
	}
	{
		/* tests only (logrep.sh): a shorter grace */
		const char *e = getenv("QFS_TEST_ORPHAN_GRACE_MS");
		char *end;
		unsigned long v = e ? strtoul(e, &end, 10) : 0;

		if (e && *e && !*end && v >= 1000 && v <= ORPHAN_GRACE_MS)
			s->orphan_grace_ms = (uint32_t)v;
	}
	rc = qfs_cluster_load(o->cluster, &s->cl);
	if (rc)
		goto err_free;
	me = qfs_cluster_node(&s->cl, o->id);
	if (!me) {
		QFS_LOG(QFS_LOG_ERR, "node refused id=%u cluster=%s err=\"no such node in the cluster file\"",
			o->id, o->cluster);
		rc = -EINVAL;
		goto err_free;
	}
	s->id = o->id;
	if ((rc = qfs_net_new(QFS_NET_TCP, NULL, &s->net)) ||
	    (rc = qfs_net_set_key(s->net, s->cl.key, s->cl.key_len)))
		goto err_free;
	for (uint32_t i = 0; i < s->cl.n; i++)
		if (s->cl.nodes[i].id != o->id &&
		    (rc = qfs_net_set_addr(s->net, s->cl.nodes[i].id, s->cl.nodes[i].addr)))
			goto err_net;
	memset(&ro, 0, sizeof(ro));
	ro.dir = o->dir;
	ro.id = o->id;
	ro.az = me->az;
	ro.net = s->net;
	ro.addr = me->addr;
	ro.on_frame = on_request;
	ro.frame_arg = s;
	ro.wal_segment_bytes = o->wal_segment_bytes;
	ro.space_reserve = NODE_RESERVE;
	/* no value log on a cluster node: nothing bumps its directory's
	 * format and no keeper collects (doc/format-store.md "Value log") */
	static const struct qfs_store_opts node_sto = { .vlog_min_bytes = UINT32_MAX };
	ro.store = &node_sto;
	s->wal_keep_bytes = WAL_KEEP_SEGS * (o->wal_segment_bytes ? o->wal_segment_bytes :
					     QFS_WAL_SEGMENT_DEFAULT);
	rc = qfs_rnode_open(&ro, &s->rn);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "node open failed id=%u dir=%s addr=%s err=\"%s\"", o->id, o->dir,
			me->addr, qfs_strerror(rc));
		goto err_net;
	}
	for (; s->nth < NWORK; s->nth++)
		if (pthread_create(&s->th[s->nth], NULL, worker_main, s) != 0) {
			rc = -EAGAIN;
			goto err_stop;
		}
	if (s->cl.n > 1) {
		rc = qfs_rcell_open(o->cluster, QFS_RPC_PEER_BASE + o->id % QFS_RPC_MOUNT_IDS, 5000, 0,
				    &s->peers);
		if (rc)
			goto err_stop;
		if (pthread_create(&s->rec, NULL, reconcile_main, s) != 0) {
			rc = -EAGAIN;
			goto err_stop;
		}
		s->rec_started = 1;
		s->heal_after_ms = o->heal_after_ms;
		if (s->heal_after_ms && pthread_create(&s->heal, NULL, heal_main, s) != 0) {
			rc = -EAGAIN;
			goto err_stop;
		}
		s->heal_started = s->heal_after_ms != 0;
	}
	QFS_LOG(QFS_LOG_INFO, "node serving id=%u az=%s addr=%s nodes=%u dir=%s heal_after_ms=%u",
		o->id, me->az, me->addr, s->cl.n, o->dir, s->heal_after_ms);
	*out = s;
	return 0;

err_stop:
	qfs_node_server_stop(s);
	return rc;
err_net:
	qfs_net_free(s->net);
err_free:
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->rcv);
	pthread_mutex_destroy(&s->jmu);
	pthread_mutex_destroy(&s->mu);
	memset(&s->cl, 0, sizeof(s->cl));
	free(s->dir);
	free(s);
	return rc;
}

/* See cluster.h. */
void qfs_node_server_stop(struct qfs_node_server *s)
{
	struct job *j;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_cond_broadcast(&s->rcv);
	pthread_mutex_unlock(&s->mu);
	/* Workers finish the request in hand (a proposal waits at most its
	 * timeout, which the router keeps short), then the node closes. */
	for (uint32_t i = 0; i < s->nth; i++)
		pthread_join(s->th[i], NULL);
	if (s->rec_started)
		pthread_join(s->rec, NULL);
	if (s->heal_started)
		pthread_join(s->heal, NULL);
	qfs_rcell_close(s->peers);
	qfs_rnode_close(s->rn);
	while ((j = s->head)) {
		s->head = j->next;
		qfs_net_frame_free(j->f);
		free(j);
	}
	qfs_net_free(s->net);
	QFS_LOG(QFS_LOG_INFO, "node stopped id=%u", s->id);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->rcv);
	pthread_mutex_destroy(&s->jmu);
	pthread_mutex_destroy(&s->mu);
	qfs_glist_free(&s->dropped);
	free(s->orph);
	free(s->dir);
	memset(&s->cl, 0, sizeof(s->cl));
	free(s);
}
