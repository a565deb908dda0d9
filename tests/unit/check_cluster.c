/*
 * check_cluster.c - unit tests of cluster mode's pure parts (node/cluster.h;
 * doc/cluster.md, doc/format-net.md section 8): the cluster file parser
 * (good files, every kind of bad line, the key file's mode, relative key
 * paths) and the request/reply codec (round trips; every truncation and
 * bad field rejected), and placement (qfs_cluster_place).  The processes themselves are tested end to end by
 * tests/integration/cluster.sh.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/frame.h"
#include "node/cluster.h"
#include "node/rnode.h"

static char dir[] = "/tmp/check_clusterXXXXXX";

static void setup(void)
{
	char p[PATH_MAX];
	FILE *f;

	strcpy(dir, "/tmp/check_clusterXXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/key", dir);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs("0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(p, 0600), 0);
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write text as dir/cluster and load it. */
static int load(const char *text, struct qfs_cluster *cl)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/cluster", dir);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return qfs_cluster_load(p, cl);
}

START_TEST(test_file_good)
{
	struct qfs_cluster *cl = calloc(1, sizeof(*cl));

	ck_assert_ptr_nonnull(cl);
	ck_assert_int_eq(load("# three nodes\n\n"
			      "node 1 az a addr 127.0.0.1:7001\n"
			      "node 7 az b addr 127.0.0.1:7002   # comment\n"
			      "\tnode 3 az c addr 10.1.2.3:65535\n"
			      "key key\n", cl), 0);
	ck_assert_uint_eq(cl->n, 3);
	ck_assert_uint_eq(cl->nodes[1].id, 7);
	ck_assert_str_eq(cl->nodes[1].az, "b");
	ck_assert_str_eq(cl->nodes[2].addr, "10.1.2.3:65535");
	ck_assert_uint_eq(cl->key_len, 32); /* the newline is not part of it */
	ck_assert_mem_eq(cl->key, "0123456789abcdef", 16);
	ck_assert_ptr_eq(qfs_cluster_node(cl, 3), &cl->nodes[2]);
	ck_assert_ptr_null(qfs_cluster_node(cl, 2));
	free(cl);
}
END_TEST

/* Each bad file is refused with -EINVAL and *out untouched. */
START_TEST(test_file_bad)
{
	static const char *bad[] = {
		"key key\n",                                            /* no node */
		"node 1 az a addr 127.0.0.1:7001\n",                    /* no key */
		"node 1 az a addr 127.0.0.1:7001\nnode 1 az b addr 127.0.0.1:7002\nkey key\n",
		"node 0 az a addr 127.0.0.1:7001\nkey key\n",           /* id 0 */
		"node 32768 az a addr 127.0.0.1:7001\nkey key\n",       /* a router's id */
		"node x az a addr 127.0.0.1:7001\nkey key\n",
		"node 1 az a addr localhost:7001\nkey key\n",           /* IPv4 only */
		"node 1 az a addr 127.0.0.1:0\nkey key\n",              /* port 0 */
		"node 1 az a addr 127.0.0.1:70000\nkey key\n",
		"node 1 az a addr 127.0.0.1\nkey key\n",
		"node 1 zone a addr 127.0.0.1:7001\nkey key\n",
		"node 1 az a addr 127.0.0.1:7001 extra\nkey key\n",
		"node 1 az a addr 127.0.0.1:7001\nkey\n",
		"nodes 1 az a addr 127.0.0.1:7001\nkey key\n",
		"node 1 az a addr 127.0.0.1:7001\nnode 2 az a addr 127.0.0.1:7002\n"
		"node 3 az a addr 127.0.0.1:7003\nnode 4 az a addr 127.0.0.1:7004\n"
		"node 5 az a addr 127.0.0.1:7005\nnode 6 az a addr 127.0.0.1:7006\nkey key\n",
	};
	struct qfs_cluster *cl = calloc(1, sizeof(*cl));

	ck_assert_ptr_nonnull(cl);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cl->n = 99;
		ck_assert_msg(load(bad[i], cl) == -EINVAL, "file %zu accepted", i);
		ck_assert_uint_eq(cl->n, 99);
	}
	/* The key file: missing, then of mode 0644. */
	ck_assert_int_eq(load("node 1 az a addr 127.0.0.1:7001\nkey nokey\n", cl), -ENOENT);
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/key", dir);
		ck_assert_int_eq(chmod(p, 0644), 0);
		ck_assert_int_eq(load("node 1 az a addr 127.0.0.1:7001\nkey key\n", cl), -EPERM);
		ck_assert_int_eq(chmod(p, 0600), 0);
		/* an absolute key path */
		{
			char text[PATH_MAX + 64];

			snprintf(text, sizeof(text), "node 1 az a addr 127.0.0.1:7001\nkey %s\n", p);
			ck_assert_int_eq(load(text, cl), 0);
			ck_assert_uint_eq(cl->n, 1);
		}
	}
	free(cl);
}
END_TEST

/* Open a whole frame as a receiver does; returns the body. */
static const uint8_t *open_frame(const struct qfs_buf *b, uint8_t want, size_t *blen)
{
	const uint8_t *body;
	uint8_t type;

	ck_assert_int_eq(qfs_net_frame_open(b->data, b->len, &type, &body, blen), 0);
	ck_assert_uint_eq(type, want);
	return body;
}

START_TEST(test_codec)
{
	struct qfs_rpc_req q = { .id = 77, .from = 40000, .op = QFS_RPC_SCAN,
				 .flags = QFS_RPC_STRONG | QFS_RPC_HI_NULL, .group = 0x400,
				 .timeout_ms = 1234, .addr = "127.0.0.1:5555",
				 .a = (const uint8_t *)"lo", .alen = 2 };
	struct qfs_rpc_rep p = { .id = 77, .err = -EREMOTE, .result = -17, .leader = 3,
				 .data = (const uint8_t *)"payload", .len = 7 };
	struct qfs_rpc_req dq;
	struct qfs_rpc_rep dp;
	const uint8_t *body;
	struct qfs_buf b;
	size_t blen;

	qfs_buf_init(&b);
	ck_assert_int_eq(qfs_rpc_req_encode(&b, &q), 0);
	body = open_frame(&b, QFS_RPC_REQ, &blen);
	ck_assert_int_eq(qfs_rpc_req_decode(body, blen, &dq), 0);
	ck_assert(dq.id == 77 && dq.from == 40000 && dq.op == QFS_RPC_SCAN &&
		  dq.flags == (QFS_RPC_STRONG | QFS_RPC_HI_NULL) && dq.group == 0x400 &&
		  dq.timeout_ms == 1234 && dq.alen == 2 && dq.blen == 0);
	ck_assert_str_eq(dq.addr, "127.0.0.1:5555");
	ck_assert_mem_eq(dq.a, "lo", 2);
	for (size_t n = 0; n < blen; n++) {
		dq.id = 5;
		ck_assert_int_eq(qfs_rpc_req_decode(body, n, &dq), QFS_ECORRUPT);
		ck_assert_uint_eq(dq.id, 5);
	}
	/* a node id as sender, an unknown op, a NUL in the address */
	q.from = 3;
	ck_assert_int_eq(qfs_rpc_req_encode(&b, &q), 0);
	body = open_frame(&b, QFS_RPC_REQ, &blen);
	ck_assert_int_eq(qfs_rpc_req_decode(body, blen, &dq), QFS_ECORRUPT);
	q.from = 40000;
	q.op = 99;
	ck_assert_int_eq(qfs_rpc_req_encode(&b, &q), 0);
	body = open_frame(&b, QFS_RPC_REQ, &blen);
	ck_assert_int_eq(qfs_rpc_req_decode(body, blen, &dq), QFS_ECORRUPT);
	q.op = QFS_RPC_NONMEMBER + 1; /* the last op is NONMEMBER (orphan replicas) */
	ck_assert_int_eq(qfs_rpc_req_encode(&b, &q), 0);
	body = open_frame(&b, QFS_RPC_REQ, &blen);
	ck_assert_int_eq(qfs_rpc_req_decode(body, blen, &dq), QFS_ECORRUPT);
	for (uint8_t op = QFS_RPC_JOIN; op <= QFS_RPC_NONMEMBER; op++) {
		q.op = op;
		ck_assert_int_eq(qfs_rpc_req_encode(&b, &q), 0);
		body = open_frame(&b, QFS_RPC_REQ, &blen);
		ck_assert_int_eq(qfs_rpc_req_decode(body, blen, &dq), 0);
		ck_assert_uint_eq(dq.op, op);
	}
	q.op = QFS_RPC_GET;
	q.addr = "";
	ck_assert_int_eq(qfs_rpc_req_encode(&b, &q), 0);
	body = open_frame(&b, QFS_RPC_REQ, &blen);
	ck_assert_int_eq(qfs_rpc_req_decode(body, blen, &dq), 0);
	ck_assert_str_eq(dq.addr, "");

	ck_assert_int_eq(qfs_rpc_rep_encode(&b, &p), 0);
	body = open_frame(&b, QFS_RPC_REP, &blen);
	ck_assert_int_eq(qfs_rpc_rep_decode(body, blen, &dp), 0);
	ck_assert(dp.id == 77 && dp.err == -EREMOTE && dp.result == -17 && dp.leader == 3 &&
		  dp.len == 7);
	ck_assert_mem_eq(dp.data, "payload", 7);
	for (size_t n = 0; n < blen; n++)
		ck_assert_int_eq(qfs_rpc_rep_decode(body, n, &dp), QFS_ECORRUPT);
	p.err = 5; /* errors are negative */
	ck_assert_int_eq(qfs_rpc_rep_encode(&b, &p), 0);
	body = open_frame(&b, QFS_RPC_REP, &blen);
	ck_assert_int_eq(qfs_rpc_rep_decode(body, blen, &dp), QFS_ECORRUPT);
	qfs_buf_close(&b);
}
END_TEST

/* Placement (doc/cluster.md "Placement"): 3 nodes of 3 distinct AZs,
 * fewest replicas first, ties by id, nodes that answered before the
 * others; fewer than 3 AZs refused. */
static void cl_set(struct qfs_cluster *cl, const char *azs)
{
	memset(cl, 0, sizeof(*cl));
	for (const char *a = azs; *a; a++, cl->n++) {
		cl->nodes[cl->n].id = cl->n + 1;
		cl->nodes[cl->n].az[0] = *a;
	}
}

/* The reconciler's drop rule (qfs_node_removed_here), node 5 in a cluster
 * of 2, 3, 5; the peers 2 and 3 have applied members {2, 3}. */
START_TEST(test_removed_here)
{
	struct qfs_cluster cl;
	struct qfs_rcell_gm p2 = { .g = 7, .n = 2, .ids = { 2, 3 } }, p3 = p2;
	struct qfs_rcell_gm both = { .g = 7, .n = 3, .ids = { 2, 3, 5 } }, old = both;
	struct qfs_rcell_gm *gm[3] = { &p2, &p3, NULL };
	const size_t ngm[3] = { 1, 1, 0 };

	memset(&cl, 0, sizeof(cl));
	cl.n = 3;
	cl.nodes[0].id = 2;
	cl.nodes[1].id = 3;
	cl.nodes[2].id = 5;
	/* removed while it was down: its replica names it, before and now */
	ck_assert_int_eq(qfs_node_removed_here(5, &cl, &both, &both, 0, gm, ngm), 1);
	/* re-added during the round (`member add`: JOIN, CONFIG, caught up
	 * after the peers answered with the members before the change): it
	 * did not name itself when the round began */
	ck_assert_int_eq(qfs_node_removed_here(5, &cl, NULL, &both, 0, gm, ngm), 0);
	/* it named itself in its old membership, then applied the one that
	 * re-adds it: a change during the round */
	old.ids[0] = 1;
	ck_assert_int_eq(qfs_node_removed_here(5, &cl, &old, &both, 0, gm, ngm), 0);
	/* below its vote floor: replays its old membership */
	ck_assert_int_eq(qfs_node_removed_here(5, &cl, &both, &both, 1, gm, ngm), 0);
	/* a peer still counts it */
	p3.n = 3;
	p3.ids[2] = 5;
	ck_assert_int_eq(qfs_node_removed_here(5, &cl, &both, &both, 0, gm, ngm), 0);
	/* one peer of two answered: no majority */
	gm[1] = NULL;
	ck_assert_int_eq(qfs_node_removed_here(5, &cl, &both, &both, 0, gm, ngm), 0);
	/* its own members do not name it */
	gm[1] = &p2;
	ck_assert_int_eq(qfs_node_removed_here(5, &cl, &both, &p2, 0, gm, ngm), 0);
}
END_TEST

/* The healer's decisions (qfs_node_heal_decide): a leader's view h of a
 * group of nodes 1, 2, 3 (+ log replica 4), heal_after 5000 ms. */
static void heal_view(struct qfs_rnode_health *h, uint32_t self, const uint32_t *ids, uint32_t n,
		      uint32_t log)
{
	memset(h, 0, sizeof(*h));
	h->leader = 1;
	h->cfg.n = n;
	h->cfg.log = log;
	memcpy(h->cfg.ids, ids, n * sizeof(ids[0]));
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] != self)
			h->ids[h->n++] = ids[i];
}

START_TEST(test_heal_decide)
{
	static const uint32_t three[3] = { 1, 2, 3 }, phase1[4] = { 1, 2, 3, 4 },
			      two_log[3] = { 1, 2, 4 }, phase2[4] = { 1, 2, 4, 3 };
	struct qfs_rnode_health h;
	struct qfs_node_heal_step st;

	/* all up: nothing */
	heal_view(&h, 1, three, 3, 0);
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	/* member 3 silent heal_after: a log replica */
	h.silent_ms[1] = 5000;
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_ADD_LOG);
	ck_assert_uint_eq(st.dead, 3);
	/* not a leader, or a CONFIG in flight: nothing */
	h.leader = 0;
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	h.leader = 1;
	h.changing = 1;
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	/* log replica 4 added, 3 still dead: 3 goes */
	heal_view(&h, 1, phase1, 4, 1u << 3);
	h.silent_ms[1] = 6000;
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_REMOVE_DEAD);
	ck_assert_uint_eq(st.dead, 3);
	ck_assert_uint_eq(st.lr, 4);
	/* ... unless 3 came back before it went (the step was cut short):
	 * the log replica goes, else the group keeps four members (three of
	 * them in every write quorum) for good */
	h.silent_ms[1] = 100;
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	h.answered[0] = h.answered[1] = h.answered[2] = 1;
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_RETIRE_LOG);
	ck_assert_uint_eq(st.lr, 4);
	/* 2 storage + log replica, all up: a storage replica back */
	heal_view(&h, 2, two_log, 3, 1u << 2);
	h.answered[0] = h.answered[1] = 1;
	ck_assert_int_eq(qfs_node_heal_decide(2, &h, 5000, &st), QFS_NODE_HEAL_RESTORE);
	ck_assert_uint_eq(st.lr, 4);
	/* but not while member 1 has not answered since this leader's
	 * election (its silence counts from there): 1 is the old leader,
	 * maybe dead, and a fourth member then needs the new storage replica
	 * in every write quorum, which has the whole partition to copy first:
	 * writes would stop for the rebuild */
	h.answered[0] = 0;
	h.silent_ms[0] = 300;
	ck_assert_int_eq(qfs_node_heal_decide(2, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	/* storage replica 3 added; the leader (1) waits for its catch-up,
	 * then retires 4 */
	heal_view(&h, 1, phase2, 4, 1u << 2);
	ck_assert_int_eq(qfs_node_heal_decide(1, &h, 5000, &st), QFS_NODE_HEAL_FINISH_RESTORE);
	ck_assert_uint_eq(st.added, 3);
	ck_assert_uint_eq(st.lr, 4);
	/* the same after the added replica became leader (it is the
	 * preferred member of {1, 2, 3} for 1 group in 3, so the old leader
	 * hands over to it as soon as it holds the log, maybe before the old
	 * leader's healer retired the log replica): the new leader finishes,
	 * else the group keeps four members and its log replica for good */
	heal_view(&h, 3, phase2, 4, 1u << 2);
	ck_assert_int_eq(qfs_node_heal_decide(3, &h, 5000, &st), QFS_NODE_HEAL_FINISH_RESTORE);
	ck_assert_uint_eq(st.added, 3);
	ck_assert_uint_eq(st.lr, 4);
}
END_TEST

/* A leader change in the middle of phase 1 (issue 14, healer review B):
 * node 1 led {1, 2, 3}, 3 died, 1 added log replica 4 and was restarted
 * before it removed 3; node 2 leads now and has heard from neither 1 nor 3
 * since its election (both silent heal_after, counted from there).  Which
 * one the log replica stands for is not known to 2: removing 1 (the first
 * silent one, as before) would leave {2, 3, 4L} with one live storage copy
 * and 3 never back, 1's copy dropped by its reconciler.  Nothing is
 * removed until one of them answers. */
START_TEST(test_heal_decide_two_silent)
{
	static const uint32_t three[3] = { 1, 2, 3 }, phase1[4] = { 1, 2, 3, 4 };
	struct qfs_rnode_health h;
	struct qfs_node_heal_step st;

	heal_view(&h, 2, phase1, 4, 1u << 3); /* peers 1, 3, 4 */
	h.answered[2] = 1;                    /* the log replica answers */
	h.silent_ms[2] = 100;
	h.silent_ms[0] = h.silent_ms[1] = 5200;
	ck_assert_int_eq(qfs_node_heal_decide(2, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	ck_assert_uint_eq(st.dead, 0);
	/* also when one of them answered 2 once, long ago */
	h.answered[0] = 1;
	h.silent_ms[0] = 9000;
	ck_assert_int_eq(qfs_node_heal_decide(2, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	/* 1 answers again: 3 is the dead one, and goes */
	h.silent_ms[0] = 150;
	ck_assert_int_eq(qfs_node_heal_decide(2, &h, 5000, &st), QFS_NODE_HEAL_REMOVE_DEAD);
	ck_assert_uint_eq(st.dead, 3);
	ck_assert_uint_eq(st.lr, 4);
	/* the same in a group of three storage members: no log replica for
	 * a dead member that is not known (the leader has no quorum anyway) */
	heal_view(&h, 2, three, 3, 0);
	h.silent_ms[0] = h.silent_ms[1] = 6000;
	ck_assert_int_eq(qfs_node_heal_decide(2, &h, 5000, &st), QFS_NODE_HEAL_NONE);
	h.silent_ms[0] = 0;
	h.answered[0] = 1;
	ck_assert_int_eq(qfs_node_heal_decide(2, &h, 5000, &st), QFS_NODE_HEAL_ADD_LOG);
	ck_assert_uint_eq(st.dead, 3);
}
END_TEST

/* The check just before the removal of the dead member is proposed
 * (qfs_node_heal_still_dead): leader 1 of {1, 2, 3, 4L}, 3 dead. */
START_TEST(test_heal_still_dead)
{
	static const uint32_t phase1[4] = { 1, 2, 3, 4 };
	struct qfs_rnode_health h;

	heal_view(&h, 1, phase1, 4, 1u << 3); /* peers 2, 3, 4 */
	/* just after the log replica was added: the change restarts the
	 * silence of a member that never answered this leader (3's is
	 * short), and it is still dead */
	h.answered[0] = h.answered[2] = 1;
	h.silent_ms[0] = h.silent_ms[2] = 50;
	h.silent_ms[1] = 300;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 1);
	/* it answered meanwhile: kept (the next round retires the log replica) */
	h.answered[1] = 1;
	h.silent_ms[1] = 40;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 0);
	/* silent for heal_after after an answer: dead */
	h.silent_ms[1] = 5000;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 1);
	/* the other storage member silent too, or not heard from since this
	 * leader's election: kept */
	h.silent_ms[0] = 5000;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 0);
	h.silent_ms[0] = 50;
	h.answered[0] = 0;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 0);
	h.answered[0] = 1;
	/* a silent log replica does not count */
	h.silent_ms[2] = 9000;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 1);
	/* no longer the leader, a change in flight, the log replica itself,
	 * a node that is no member */
	h.leader = 0;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 0);
	h.leader = 1;
	h.changing = 1;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 0);
	h.changing = 0;
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 4, 5000), 0);
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 9, 5000), 0);
	ck_assert_int_eq(qfs_node_heal_still_dead(&h, 3, 5000), 1);
}
END_TEST

/* The WAL release point of a node process (qfs_node_wal_point): keep 1000
 * bytes and 10 entries, peers silent 10 s are not waited for. */
START_TEST(test_wal_point)
{
	static const uint32_t three[3] = { 1, 2, 3 };
	struct qfs_rnode_ginfo gi;
	struct qfs_rnode_health h;
	struct qfs_paxos_config m;

	memset(&gi, 0, sizeof(gi));
	memset(&m, 0, sizeof(m));
	m.n = 3;
	memcpy(m.ids, three, sizeof(three));
	gi.applied = 100;
	gi.first = 1;
	gi.wal_bytes = 5000;
	/* a follower: its own applied minus the margin */
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, NULL, 1000, 10, 10000), 91);
	/* a small WAL, a short log, a stopped replica: nothing */
	gi.wal_bytes = 1000;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, NULL, 1000, 10, 10000), 0);
	gi.wal_bytes = 5000;
	gi.applied = 10;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, NULL, 1000, 10, 10000), 0);
	gi.applied = 100;
	gi.stopped = 1;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, NULL, 1000, 10, 10000), 0);
	gi.stopped = 0;
	/* already released up to there: nothing */
	gi.first = 91;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, NULL, 1000, 10, 10000), 0);
	gi.first = 1;
	/* a log replica never releases */
	m.log = 1u << 0;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, NULL, 1000, 10, 10000), 0);
	ck_assert_uint_eq(qfs_node_wal_point(2, &gi, &m, NULL, 1000, 10, 10000), 91);
	m.log = 0;
	/* a leader keeps what a live lagging peer needs ... */
	heal_view(&h, 1, three, 3, 0);
	h.answered[0] = h.answered[1] = 1;
	h.match[0] = 100;
	h.match[1] = 40;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, &h, 1000, 10, 10000), 41);
	/* ... but not for one silent too long (it gets a snapshot) */
	h.silent_ms[1] = 10000;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, &h, 1000, 10, 10000), 91);
	/* nor for one that never answered this leader */
	h.silent_ms[1] = 0;
	h.answered[1] = 0;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, &h, 1000, 10, 10000), 91);
	/* a peer at LSN 0 keeps everything */
	h.answered[1] = 1;
	h.match[1] = 0;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, &h, 1000, 10, 10000), 0);
	/* not the leader: the view is ignored */
	h.leader = 0;
	ck_assert_uint_eq(qfs_node_wal_point(1, &gi, &m, &h, 1000, 10, 10000), 91);
}
END_TEST

START_TEST(test_place)
{
	struct qfs_cluster cl;
	uint32_t load[5] = { 0 }, out[3] = { 7, 7, 7 };
	uint8_t up[5] = { 1, 1, 1, 1, 1 };

	cl_set(&cl, "abcab");
	ck_assert_uint_eq(qfs_cluster_azs(&cl), 3);
	ck_assert_int_eq(qfs_cluster_place(&cl, load, up, out), 0); /* ties: by id */
	ck_assert_uint_eq(out[0], 1);
	ck_assert_uint_eq(out[1], 2);
	ck_assert_uint_eq(out[2], 3);
	load[0] = load[1] = load[2] = 1;                            /* fewest first */
	ck_assert_int_eq(qfs_cluster_place(&cl, load, up, out), 0);
	ck_assert_uint_eq(out[0], 4);
	ck_assert_uint_eq(out[1], 5);
	ck_assert_uint_eq(out[2], 3);                               /* the only c */
	load[0] = 0;
	load[3] = 5;
	up[0] = 0;                                                  /* down: last */
	ck_assert_int_eq(qfs_cluster_place(&cl, load, up, out), 0);
	ck_assert_uint_eq(out[0], 5);
	ck_assert_uint_eq(out[1], 3);
	ck_assert_uint_eq(out[2], 4);
	up[3] = 0;                                                  /* both a's down */
	ck_assert_int_eq(qfs_cluster_place(&cl, load, up, out), 0);
	ck_assert_uint_eq(out[0], 5);
	ck_assert_uint_eq(out[1], 3);
	ck_assert_uint_eq(out[2], 1);
	cl_set(&cl, "abab");                                        /* 2 AZs */
	out[0] = 9;
	ck_assert_uint_eq(qfs_cluster_azs(&cl), 2);
	ck_assert_int_eq(qfs_cluster_place(&cl, load, up, out), -EINVAL);
	ck_assert_uint_eq(out[0], 9);                               /* untouched */
	cl_set(&cl, "abc");
	memset(load, 0, sizeof(load));
	memset(up, 1, sizeof(up));
	ck_assert_int_eq(qfs_cluster_place(&cl, load, up, out), 0);
	ck_assert_uint_eq(out[0] + out[1] + out[2], 6);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = tcase_create("file");
	TCase *tk = tcase_create("codec");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_file_good);
	tcase_add_test(tc, test_file_bad);
	suite_add_tcase(s, tc);
	tcase_add_test(tk, test_codec);
	tcase_add_test(tk, test_place);
	tcase_add_test(tk, test_removed_here);
	tcase_add_test(tk, test_heal_decide);
	tcase_add_test(tk, test_heal_decide_two_silent);
	tcase_add_test(tk, test_heal_still_dead);
	tcase_add_test(tk, test_wal_point);
	suite_add_tcase(s, tk);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
