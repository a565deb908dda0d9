/*
 * cluster.h - cluster mode (doc/cluster.md): the cluster file, the request
 * protocol between routers and `quorumfs node` processes, the node server
 * and the remote cell a cluster mount uses.
 *
 * Cluster file, one fact a line ('#' comments and blank lines ignored):
 *   node ID az AZ addr A.B.C.D:PORT     one line per storage node
 *   key PATH                            the cluster key file (mode 0600)
 *
 * Requests (frame type QFS_RPC_REQ) and replies (QFS_RPC_REP) travel as
 * frames of src/net (authenticated tcp) between a router (node id
 * QFS_RPC_ROUTER_MIN.., chosen at random per mount) and a node; wire
 * format: doc/format-net.md section 8.  Every request carries an id the
 * reply repeats and the router's listening address, so that the node can
 * connect back (src/net carries each direction on the connection its
 * sender opened).
 */
#ifndef QFS_NODE_CLUSTER_H
#define QFS_NODE_CLUSTER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"
#include "net/net.h"

#define QFS_CLUSTER_MAX_NODES 5
#define QFS_RPC_REQ 0xe0          /* frame type of a request */
#define QFS_RPC_REP 0xe1          /* frame type of a reply */
#define QFS_RPC_ROUTER_MIN 32768u /* router node ids: 32768..65535: */
#define QFS_RPC_MOUNT_IDS 16384u  /* mounts 32768..49151, from their identity */
#define QFS_RPC_PEER_BASE 49152u  /* a node's own client of the others:
				   * 49152 + node id % 16384 */

struct qfs_cluster_node {
	uint32_t id;     /* 1..32767 */
	char az[32];
	char addr[64];   /* "a.b.c.d:port" */
};

struct qfs_cluster {
	struct qfs_cluster_node nodes[QFS_CLUSTER_MAX_NODES]; /* in file order */
	uint32_t n;
	char key_path[PATH_MAX];
	uint8_t key[QFS_NET_KEY_MAX]; /* loaded by qfs_cluster_load */
	size_t key_len;
};

/* Parse the cluster file at path and load its key file (qfs_net_key_load).
 * Every error is logged with the file and line (`cluster file refused
 * path= line= err=`).  0 and *out, or -EINVAL (syntax, duplicate or bad
 * id, bad address, no node, more than QFS_CLUSTER_MAX_NODES, no key line),
 * errors of the key file (-EPERM: its mode), -errno of the open. */
int qfs_cluster_load(const char *path, struct qfs_cluster *out);

/* The node of id in cl, NULL if none. */
const struct qfs_cluster_node *qfs_cluster_node(const struct qfs_cluster *cl, uint32_t id);

/* ---- placement (doc/cluster.md "Placement") ---- */

#define QFS_CLUSTER_REPLICAS 3  /* replicas of a group, in as many distinct AZs */

/* Number of distinct AZ labels of cl's nodes. */
uint32_t qfs_cluster_azs(const struct qfs_cluster *cl);
/* Choose the QFS_CLUSTER_REPLICAS nodes of a new group: load[i] is the
 * number of replicas node cl->nodes[i] hosts now and up[i] 1 if it
 * answered; nodes are taken by (up first, fewest replicas, lowest id),
 * passing over a node whose AZ is already taken.  out[] gets the ids, in
 * the order taken.  Pure.  0, or -EINVAL (fewer than
 * QFS_CLUSTER_REPLICAS distinct AZs: out untouched). */
int qfs_cluster_place(const struct qfs_cluster *cl, const uint32_t *load, const uint8_t *up,
		      uint32_t out[QFS_CLUSTER_REPLICAS]);

enum qfs_rpc_op {
	QFS_RPC_PROPOSE = 1, /* a: txn; reply: result */
	QFS_RPC_GET,         /* a: key; reply: value (err -ENOENT: none) */
	QFS_RPC_SCAN,        /* a: lo, b: hi; reply: n x (be32 klen|be32 vlen|k|v) */
	QFS_RPC_CREATE,      /* a: n x be32 member ids */
	QFS_RPC_DROP,
	QFS_RPC_EXISTS,      /* reply: result 1 or 0 */
	QFS_RPC_GROUPS,      /* reply: n x be64 group ids */
	QFS_RPC_STATUS,      /* reply: qfs_rnode_status text */
	QFS_RPC_JOIN,        /* a: n x be32 members in force (without this node),
			      * b: the vote floor (QFS_RPC_FLOOR's reply; empty:
			      * none): qfs_rnode_group_join */
	QFS_RPC_CONFIG,      /* a: n x be32 new members: qfs_rnode_propose_members
			      * at the leader (err -EREMOTE + leader, -EBUSY) */
	QFS_RPC_FLOOR,       /* a: be32 node about to join; reply data: be64
			      * promised | be64 lsn | be64 ballot, at the leader:
			      * qfs_rnode_join_floor (err -EREMOTE + leader, -EBUSY) */
	QFS_RPC_NONMEMBER,   /* a: be32 node; at the leader: qfs_rnode_nonmember
			      * (0: no configuration names it; err -EREMOTE +
			      * leader, -EBUSY, -EINVAL: a member) */
};

#define QFS_RPC_FLOOR_BYTES 24 /* QFS_RPC_FLOOR's reply, JOIN's b */

#define QFS_RPC_STRONG 0x01 /* flags: GET/SCAN only at a leader with a lease */
#define QFS_RPC_LO_NULL 0x02 /* flags: SCAN from the first key (a ignored) */
#define QFS_RPC_HI_NULL 0x04 /* flags: SCAN to the last key (b ignored) */
#define QFS_RPC_MEMBERS 0x08 /* flags: GROUPS answers each group's members:
			      * be64 UINT64_MAX | n x (be64 group | u8 k |
			      * k x be32 member ids); a node of an older
			      * release ignores it and answers the plain list */
#define QFS_RPC_ADOPT 0x10   /* flags: JOIN from `member add`, which takes an
			      * existing replica over on -EEXIST: its orphan
			      * grace restarts then too (without the flag
			      * only a JOIN that creates the replica restarts
			      * it, so a healer's refused JOINs every 250 ms
			      * never keep an orphan alive) */

struct qfs_rpc_req {
	uint64_t id;          /* chosen by the router, repeated in the reply */
	uint32_t from;        /* the router's node id */
	uint8_t op;           /* enum qfs_rpc_op */
	uint8_t flags;
	qfs_group_t group;
	uint32_t timeout_ms;  /* PROPOSE: how long the node may wait */
	const char *addr;     /* the router's "a.b.c.d:port" (NUL-terminated) */
	const uint8_t *a, *b; /* decode: point into the frame */
	size_t alen, blen;
};

struct qfs_rpc_rep {
	uint64_t id;
	int32_t err;          /* 0 or a negative errno / QFS_E* */
	int32_t result;       /* PROPOSE: the txn's result; EXISTS: 0/1 */
	uint32_t leader;      /* err -EREMOTE: the known leader, 0: none */
	const uint8_t *data;  /* payload; decode: points into the frame */
	size_t len;
};

/* Encode a whole frame (header sealed) into b (reset first).  0, -ENOMEM,
 * -EMSGSIZE (over QFS_NET_FRAME_MAX). */
int qfs_rpc_req_encode(struct qfs_buf *b, const struct qfs_rpc_req *r);
int qfs_rpc_rep_encode(struct qfs_buf *b, const struct qfs_rpc_rep *r);
/* Decode a body (frame opened with qfs_net_frame_open); *out points into
 * it and is written only on success.  0 or QFS_ECORRUPT. */
int qfs_rpc_req_decode(const uint8_t *body, size_t len, struct qfs_rpc_req *out);
int qfs_rpc_rep_decode(const uint8_t *body, size_t len, struct qfs_rpc_rep *out);

/* ---- the node server (`quorumfs node`) ---- */

struct qfs_node_server_opts {
	const char *dir;           /* node directory (rnode.h) */
	const char *cluster;       /* cluster file */
	uint32_t id;               /* this node's id in it */
	uint32_t heal_after_ms;    /* a leader adds a log replica for a member
				      silent this long (-o heal_after=); 0: off */
	uint64_t wal_segment_bytes; /* WAL seal size (-o seal_size=); 0: the
				      WAL default (64 MiB) */
};

struct qfs_node_server;

/* Load the cluster file, open the tcp net with the key, open this node's
 * rnode listening on its address, and start the request workers.  0 and
 * *out, or -EINVAL (id not in the file), errors of qfs_cluster_load,
 * qfs_rnode_open (-EADDRINUSE...).  Logs why. */
int qfs_node_server_start(const struct qfs_node_server_opts *o, struct qfs_node_server **out);
/* Stop the workers, close the rnode (durable) and the net.  NULL: nothing. */
void qfs_node_server_stop(struct qfs_node_server *s);

/* ---- the remote cell (cell.c's cluster mode) ----
 *
 * Each qfs_rcell_X has the contract of cell.h's qfs_cell_X (the cell
 * forwards to it), with these differences: a call gives up with
 * -ETIMEDOUT when no node answered as needed within the cell timeout;
 * group_create succeeds once a majority of the nodes created the group;
 * get_node answers -EHOSTDOWN for a node that does not answer within 1 s;
 * node_up is 1 for a node that answered within 2 s (it is asked if not);
 * status and nodes print "node ID az AZ state up|down addr A" lines, then
 * the replica lines of every node that answered.  Thread-safe; the
 * callbacks of scan and groups run with no lock held.  qfs_rcell_open:
 * 0 and *out, errors of qfs_cluster_load, -ENOMEM, socket errors. */

struct qfs_rcell;

/* Connect a router to the cluster of file path: tcp net with its key, an
 * endpoint on the local address that routes to the first node, at a free
 * port, with router id self (QFS_RPC_ROUTER_MIN..65535; a node keeps a
 * peer entry per id it answered until it restarts, so a mount's id is
 * stable: see qfs_rcell_mount_id).  timeout_ms bounds each call; strong:
 * reads only at a leader under its lease. */
int qfs_rcell_open(const char *path, uint32_t self, uint32_t timeout_ms, int strong,
		   struct qfs_rcell **out);
/* The router id of a mount: QFS_RPC_ROUTER_MIN + a hash of the host name
 * and ident (the mount's state directory) modulo QFS_RPC_MOUNT_IDS. */
uint32_t qfs_rcell_mount_id(const char *ident);
/* Stop the receiver and close the net.  NULL: nothing. */
void qfs_rcell_close(struct qfs_rcell *rc);
uint32_t qfs_rcell_node_count(struct qfs_rcell *rc);
int qfs_rcell_get_node(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const uint8_t *key,
		       size_t key_len, void **val, size_t *val_len);

/* Per-replica attempts, the remote cell's side of the router's routing
 * (router/route.c decides where to send and when to retry; cell.h's
 * qfs_cell_*_at forward here in cluster mode).  Each sends one request to
 * node id and waits at most wait_ms (the node gets wait_ms - 200 ms, or
 * half of it when short, to answer within).  They return the node's
 * answer: 0 or its error (-EREMOTE with *leader = its hint, -EAGAIN,
 * -ETIMEDOUT: the node's quorum wait ran out, QFS_ESTOPPED, ...), or
 * -EHOSTDOWN when no answer came in time (node id is then passed over by
 * qfs_rcell_silent for 6 s), -EINVAL (no such node).
 *
 * qfs_rcell_prepare: out = what every attempt of one proposal sends: txn
 * with this router's retry token in front (file comment of cellnet.c), or
 * a two-phase-commit txn as is.  0, -EINVAL (not a txn), -ENOMEM.
 * qfs_rcell_propose_at: *result the txn's result (-EALREADY, an earlier
 * copy applied, reads as 0).  qfs_rcell_get_at: a GET (strong if the
 * cell was opened so): the value malloc'd into *val.
 * qfs_rcell_scan_page_at: one page (about 4 MiB) of [lo, hi) (NULL: open
 * end), cb for each pair, no lock held; *more 1 when the range goes on,
 * then resume holds the key the next page starts from (empty: ask the
 * same page again); a page is one consistent read, a scan across pages is
 * not one snapshot.  Returns cb's non-zero value when it stops. */
int qfs_rcell_prepare(struct qfs_rcell *rc, qfs_group_t group, const void *txn, size_t len,
		      struct qfs_buf *out);
int qfs_rcell_propose_at(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const void *wire,
			 size_t len, uint32_t wait_ms, int *result, uint32_t *leader);
int qfs_rcell_get_at(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const uint8_t *key,
		     size_t key_len, uint32_t wait_ms, void **val, size_t *val_len, uint32_t *leader);
int qfs_rcell_scan_page_at(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const uint8_t *lo,
			   size_t lo_len, const uint8_t *hi, size_t hi_len, uint32_t wait_ms,
			   qfs_scan_cb cb, void *arg, int *more, struct qfs_buf *resume,
			   uint32_t *leader);
/* The id of the idx-th node of the cluster file (0 past the end). */
uint32_t qfs_rcell_node_id(struct qfs_rcell *rc, uint32_t idx);
/* 1 if an attempt at node id went unanswered within the last 6 s (and no
 * answer of it came since), or id is no node of the cluster. */
int qfs_rcell_silent(struct qfs_rcell *rc, uint32_t id);
int qfs_rcell_group_create(struct qfs_rcell *rc, qfs_group_t group);
int qfs_rcell_group_drop(struct qfs_rcell *rc, qfs_group_t group);
int qfs_rcell_group_exists(struct qfs_rcell *rc, qfs_group_t group);
void qfs_rcell_groups(struct qfs_rcell *rc, void (*cb)(qfs_group_t group, void *arg), void *arg);
void qfs_rcell_status(struct qfs_rcell *rc, struct qfs_buf *out);
void qfs_rcell_nodes(struct qfs_rcell *rc, struct qfs_buf *out);
int qfs_rcell_node_up(struct qfs_rcell *rc, uint32_t id);
/* Proposals a node accepted (answered 0) since open. */
uint64_t qfs_rcell_proposals(struct qfs_rcell *rc);
/* The groups node id hosts, into out (initialised, empty).  0, -ETIMEDOUT
 * (no answer within wait_ms), -ENOMEM. */
struct qfs_glist;
int qfs_rcell_node_groups(struct qfs_rcell *rc, uint32_t id, uint32_t wait_ms,
			  struct qfs_glist *out);

/* A group and its members as a node's members file says (n 0: the node,
 * of an older release, did not say). */
struct qfs_rcell_gm {
	qfs_group_t g;
	uint32_t n;
	uint32_t ids[QFS_CLUSTER_MAX_NODES];
	uint32_t log;            /* bit i: ids[i] is a log replica (its word on
				    the wire carries QFS_PAXOS_LOG_FLAG) */
};
/* The groups node id hosts with their members (QFS_RPC_MEMBERS): *out
 * malloc'd (the caller frees), *n.  0, -ETIMEDOUT (no answer within
 * wait_ms), QFS_ECORRUPT (bad reply), -ENOMEM, the node's error. */
int qfs_rcell_node_members(struct qfs_rcell *rc, uint32_t id, uint32_t wait_ms,
			   struct qfs_rcell_gm **out, size_t *n);
/* The reconciler's rule for dropping this node's replica of a group (its
 * own->g) that a membership change removed it from while it was down
 * (doc/cluster.md "Membership"; `quorumfs node`, server.c): 1 if its
 * members name self now (own) and named it already when the round began,
 * before the peers were asked (start: those members then; NULL: not
 * hosted, not naming self, or joining then), unchanged since, the replica
 * is not joining (below its vote floor: qfs_rnode_group_joining), and the
 * peers' answers gm[i], ngm[i] (node cl->nodes[i]) show a majority of the
 * members they applied hosting the group, each naming the same members
 * without self.  Else 0.  Pure. */
int qfs_node_removed_here(uint32_t self, const struct qfs_cluster *cl,
			  const struct qfs_rcell_gm *start, const struct qfs_rcell_gm *own,
			  int joining, struct qfs_rcell_gm *const *gm, const size_t *ngm);

struct qfs_rnode_health;
struct qfs_rnode_ginfo;
struct qfs_paxos_config;

/* The healer's next step for one group (doc/cluster.md section 1c;
 * `quorumfs node -o heal_after=`, server.c). */
enum qfs_node_heal {
	QFS_NODE_HEAL_NONE = 0,
	QFS_NODE_HEAL_ADD_LOG,        /* a storage member is dead: a log replica */
	QFS_NODE_HEAL_REMOVE_DEAD,    /* log replica added: the dead member out */
	QFS_NODE_HEAL_RESTORE,        /* all up again: a storage replica back */
	QFS_NODE_HEAL_FINISH_RESTORE, /* storage replica added: its catch-up,
					 then the log replica out */
	QFS_NODE_HEAL_RETIRE_LOG      /* log replica added, the dead member
					 back before it went: the log replica out */
};
struct qfs_node_heal_step {
	uint32_t dead;       /* the first storage member silent heal_after_ms */
	uint64_t silent_ms;  /* how long it has been silent */
	uint32_t lr;         /* the log replica, 0: none */
	uint32_t added;      /* the member added last of a 4-member group */
};
/* What the healer of node self does for a group whose leader's view is *h
 * (qfs_rnode_group_health): the step, *out filled (zeroed first).  Only a
 * leader with no CONFIG in flight heals.  A member is dead when silent for
 * heal_after_ms as this leader sees it (since its last answer, or since
 * this leader's election or last change when it has not answered since);
 * while two storage members are silent nothing is removed or added (which
 * one died first is not known here: e.g. a new leader cannot tell the
 * restarting old leader from the member whose loss the log replica
 * replaces).  Pure. */
int qfs_node_heal_decide(uint32_t self, const struct qfs_rnode_health *h, uint32_t heal_after_ms,
			 struct qfs_node_heal_step *out);
/* The healer's check just before the CONFIG entry that removes dead
 * (doc/cluster.md section 1c): 1 if *h (taken now, at the leader) shows no
 * CONFIG in flight, dead a storage member of h->cfg still silent (no answer
 * to this leader, or none for heal_after_ms) and every other storage
 * member answering (answered, silent less than heal_after_ms), so that the
 * removal leaves every storage replica this leader hears from; else 0.
 * Pure. */
int qfs_node_heal_still_dead(const struct qfs_rnode_health *h, uint32_t dead,
			     uint32_t heal_after_ms);
/* WAL release of a node process (it has no archive; server.c, doc/cluster.md
 * "WAL release"): the LSN below which node self may release group's sealed
 * WAL segments (qfs_rnode_wal_release), or 0 for none.  None when the
 * replica is stopped, when self is a log replica of members (it holds no
 * store: the group may need its whole log), or while the WAL holds at most
 * keep_bytes.  Otherwise applied + 1 - keep_lsns (so a member that lags by
 * fewer entries needs no snapshot), lowered on a leader (h->leader) to
 * match + 1 of every peer that answered within live_ms (a silent or dead
 * member is caught up by snapshot later); 0 if that is not past gi->first
 * (nothing to free).  h may be NULL.  Pure. */
qfs_lsn_t qfs_node_wal_point(uint32_t self, const struct qfs_rnode_ginfo *gi,
			     const struct qfs_paxos_config *members,
			     const struct qfs_rnode_health *h, uint64_t keep_bytes,
			     qfs_lsn_t keep_lsns, uint64_t live_ms);
/* Which nodes host group: its members as the nodes hosting it say (cached
 * per group; in a cluster of at most QFS_CLUSTER_REPLICAS nodes, or when
 * no node answers, every node of the file).  Writes min(count, max) ids to
 * out and returns the count (always >= 1).  May wait ASK_MS (1 s) for the
 * nodes on a miss. */
uint32_t qfs_rcell_group_nodes(struct qfs_rcell *rc, qfs_group_t group, uint32_t *out,
			       uint32_t max);
/* Membership changes through the log (doc/cluster.md "Membership"), one
 * member at a time (doc/paxos.md section 7), driven from a router:
 *
 * QFS_MEMBER_ADD: new joins (an empty replica created with the members in
 * force), a CONFIG entry adds it, then the call waits until it applied
 * what the others had (log or snapshot).  QFS_MEMBER_REMOVE: a CONFIG
 * entry removes old, then old's replica is dropped (if old answers; a
 * node that comes back keeps an unused copy until dropped or wiped).
 * QFS_MEMBER_REPLACE: old by new, new in old's place in the AZs: add then
 * remove when old answers (three copies throughout), remove then add when
 * old is down (so that the add needs no quorum with the dead node).
 * Each step is skipped when the nodes' members files show it done, so an
 * interrupted call can be run again (a replace that finds new added and
 * old still a member waits for new's catch-up before it removes old).  Every step is logged (`cluster
 * member ...`).  On 0 the members now in force are written to out
 * (*nout of them).  Errors: -EINVAL (old not a member, new already one
 * or not in the file, new's AZ already taken by another member, a
 * removal that leaves no member), QFS_ENOGROUP (no node hosts group),
 * -ETIMEDOUT (a step did not finish within timeout_ms; what is done
 * stays done), the nodes' errors.  Any thread; blocks. */
enum qfs_member_op { QFS_MEMBER_ADD = 1, QFS_MEMBER_REMOVE, QFS_MEMBER_REPLACE };
int qfs_rcell_member_change(struct qfs_rcell *rc, qfs_group_t group, enum qfs_member_op op,
			    uint32_t old, uint32_t new, uint32_t timeout_ms, uint32_t *out,
			    uint32_t *nout);
/* The groups whose members (as the answering nodes' members files say)
 * include node id, into out (initialised, empty).  0 or -ENOMEM. */
int qfs_rcell_groups_of(struct qfs_rcell *rc, uint32_t id, struct qfs_glist *out);

struct qfs_paxos_floor;

/* Log replicas (doc/cluster.md "Log replicas"; the node's healer,
 * server.c).  Ask node to host an empty replica of group joining the
 * configuration in force ids[n] (words: id | QFS_PAXOS_LOG_FLAG for a log
 * member), as a log replica when log (the list then ends with the node's
 * own id | QFS_PAXOS_LOG_FLAG, which a release without log replicas
 * refuses -EINVAL), starting with the vote floor *floor (the JOIN's b;
 * from qfs_rnode_join_floor at the leader; NULL: none, doc/paxos.md
 * sections 7 and 7a).  0, -EEXIST (it still hosts one), -ETIMEDOUT (no
 * answer), the node's error. */
int qfs_rcell_join_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group, const uint32_t *words,
		      uint32_t n, int log, const struct qfs_paxos_floor *floor);
/* Ask node, as group's leader, whether id is no member of group
 * (QFS_RPC_NONMEMBER, qfs_rnode_nonmember there): 0 (no configuration
 * names id), -EREMOTE (*leader: its hint, 0 if none), -EINVAL (a member),
 * -EBUSY, -ETIMEDOUT (no answer), -EOPNOTSUPP (an older node), QFS_ENOGROUP. */
int qfs_rcell_nonmember_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group, uint32_t id,
			   uint32_t *leader);
/* Drop node's replica of group: 0, QFS_ENOGROUP, -ETIMEDOUT, its error. */
int qfs_rcell_drop_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group);
/* Node's applied LSN of group (its status lines): 0 and *lsn,
 * -ETIMEDOUT, QFS_ENOGROUP. */
int qfs_rcell_applied_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group, qfs_lsn_t *lsn);

/* Forget which nodes host group (qfs_cell_group_forget). */
void qfs_rcell_group_forget(struct qfs_rcell *rc, qfs_group_t group);
/* The partition map says group lives on ids[n] (qfs_cell_group_hint):
 * remembered unless the nodes already told where it lives. */
void qfs_rcell_group_hint(struct qfs_rcell *rc, qfs_group_t group, const uint32_t *ids,
			  uint32_t n);

#endif
