/*
 * check_meta.c - the partition map (src/meta) over a real one-node cell:
 * record codecs, the legacy single partition, creation, splits (the commit
 * point's conditions), persistence across a reopen, drops, fences.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/glist.h"
#include "common/key.h"
#include "common/log.h"
#include "meta/meta.h"
#include "node/cell.h"
#include "router/route.h"
#include "unit.h"

static char dir[256];
static struct qfs_cell *cell;
static struct qfs_meta *m;

static void open_all(void)
{
	struct qfs_paxos_params prm;
	struct qfs_cell_opts o = { .dir = dir, .nodes = 1, .paxos = &prm };

	unit_fast_paxos(&prm);
	ck_assert_int_eq(qfs_cell_open(&o, &cell), 0);
	ck_assert_int_eq(qfs_route_attach(cell), 0);
	if (!qfs_cell_group_exists(cell, QFS_META_GROUP))
		ck_assert_int_eq(qfs_cell_group_create(cell, QFS_META_GROUP), 0);
	ck_assert_int_eq(qfs_meta_open(cell, &m), 0);
}

static void close_all(void)
{
	qfs_meta_free(m);
	qfs_cell_close(cell);
	m = NULL;
	cell = NULL;
}

static void setup(void)
{
	qfs_log_level = QFS_LOG_WARN;
	unit_tmpdir(dir, sizeof(dir), "check_meta");
	open_all();
}

static void teardown(void)
{
	close_all();
	unit_rmdir(dir);
}

static int run(qfs_group_t g, const struct qfs_txn *t)
{
	struct qfs_buf b;
	int rc, res = 0;

	qfs_buf_init(&b);
	qfs_txn_encode(t, &b);
	ck_assert_int_eq(b.err, 0);
	rc = qfs_cell_propose(cell, g, b.data, b.len, &res);
	qfs_buf_close(&b);
	return rc ? rc : res;
}

/* Create table's first partition (group = table) in the map. */
static void create_table(qfs_table_t table)
{
	struct qfs_meta_part p;
	struct qfs_meta_rec rec;
	struct qfs_txn t;

	qfs_meta_part_first(&p, table, table, 3);
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&t);
	ck_assert_int_eq(qfs_meta_add_put(&t, &rec, &p), 0);
	ck_assert_int_eq(run(QFS_META_GROUP, &t), 0);
	qfs_txn_close(&t);
	qfs_meta_rec_close(&rec);
	ck_assert_int_eq(qfs_meta_reload_table(m, table), 0);
}

START_TEST(test_keycmp_and_ranges)
{
	struct qfs_meta_part p;

	ck_assert_int_lt(qfs_meta_keycmp((const uint8_t *)"a", 1, (const uint8_t *)"ab", 2), 0);
	ck_assert_int_gt(qfs_meta_keycmp((const uint8_t *)"b", 1, (const uint8_t *)"ab", 2), 0);
	ck_assert_int_eq(qfs_meta_keycmp((const uint8_t *)"", 0, (const uint8_t *)"", 0), 0);
	memset(&p, 0, sizeof(p));
	ck_assert(qfs_meta_part_has(&p, (const uint8_t *)"zz", 2)); /* everything */
	memcpy(p.lo, "b", 1);
	p.lo_len = 1;
	memcpy(p.hi, "d", 1);
	p.hi_len = 1;
	ck_assert(!qfs_meta_part_has(&p, (const uint8_t *)"a", 1));
	ck_assert(qfs_meta_part_has(&p, (const uint8_t *)"b", 1));
	ck_assert(qfs_meta_part_has(&p, (const uint8_t *)"c\xff", 2));
	ck_assert(!qfs_meta_part_has(&p, (const uint8_t *)"d", 1)); /* hi is exclusive */
}
END_TEST

START_TEST(test_record_codec)
{
	struct qfs_meta_part p, q;
	struct qfs_buf b;

	memset(&p, 0, sizeof(p));
	p.table = 5;
	p.group = 9;
	p.epoch = 42;
	memcpy(p.lo, "lo", 2);
	p.lo_len = 2;
	p.nnodes = 3;
	p.nodes[0] = 1;
	p.nodes[1] = 2;
	p.nodes[2] = 3;
	qfs_buf_init(&b);
	qfs_meta_part_encode(&p, &b);
	memset(&q, 0, sizeof(q));
	ck_assert_int_eq(qfs_meta_part_decode(b.data, b.len, &q), 0);
	ck_assert_uint_eq(q.epoch, 42);
	ck_assert_uint_eq(q.lo_len, 2);
	ck_assert_uint_eq(q.hi_len, 0);
	ck_assert_uint_eq(q.nnodes, 3);
	ck_assert_uint_eq(q.nodes[2], 3);
	/* every truncation and a trailing byte are corrupt; a bad version too */
	for (size_t n = 0; n < b.len; n++)
		ck_assert_int_eq(qfs_meta_part_decode(b.data, n, &q), QFS_ECORRUPT);
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(qfs_meta_part_decode(b.data, b.len, &q), QFS_ECORRUPT);
	b.data[0] = 2;
	ck_assert_int_eq(qfs_meta_part_decode(b.data, b.len - 1, &q), QFS_ECORRUPT);
	qfs_buf_close(&b);
}
END_TEST

START_TEST(test_legacy_table)
{
	struct qfs_meta_part p;
	struct qfs_meta_part *v;
	size_t n;

	/* a table without records (a data directory from before partitions) */
	ck_assert_int_eq(qfs_meta_lookup(m, 4242, (const uint8_t *)"k", 1, &p), 0);
	ck_assert_uint_eq(p.group, 4242);
	ck_assert_uint_eq(p.epoch, 0);
	ck_assert_uint_eq(p.lo_len + p.hi_len, 0);
	ck_assert_int_eq(qfs_meta_parts(m, 4242, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(v[0].group, 4242);
	free(v);
	ck_assert_int_eq(qfs_meta_group_used(m, 4242), 0); /* no record uses it */
	ck_assert_uint_ge(qfs_meta_lookups(m), 1);
}
END_TEST

START_TEST(test_create_split_reopen)
{
	uint8_t k1[QFS_KEY_MAX], k2[QFS_KEY_MAX];
	size_t l1 = qfs_key_inode(k1, 2000), l2 = qfs_key_inode(k2, 3000);
	const uint8_t *lo = qfs_meta_keycmp(k1, l1, k2, l2) < 0 ? k1 : k2;
	const uint8_t *hi = lo == k1 ? k2 : k1;
	size_t lol = lo == k1 ? l1 : l2, hil = lo == k1 ? l2 : l1;
	struct qfs_meta_part p, left, right, *v;
	size_t n;

	create_table(1500);
	create_table(1400); /* a neighbour, so lookups must not cross tables */
	ck_assert_int_eq(qfs_meta_lookup(m, 1500, lo, lol, &p), 0);
	ck_assert_uint_eq(p.group, 1500);
	ck_assert_uint_eq(p.epoch, 1);
	ck_assert_int_eq(qfs_meta_group_used(m, 1500), 1);

	/* split at hi: [.., hi) stays in 1500, [hi, ..) goes to 1600 */
	ck_assert_int_eq(qfs_meta_split(m, &p, hi, hil, 1600, &left, &right), 0);
	ck_assert_uint_eq(left.epoch, 2);
	ck_assert_uint_eq(right.epoch, 2);
	ck_assert_uint_eq(right.group, 1600);
	ck_assert_int_eq(qfs_meta_lookup(m, 1500, lo, lol, &p), 0);
	ck_assert_uint_eq(p.group, 1500);
	ck_assert_int_eq(qfs_meta_lookup(m, 1500, hi, hil, &p), 0);
	ck_assert_uint_eq(p.group, 1600);
	ck_assert_int_eq(qfs_meta_lookup(m, 1400, hi, hil, &p), 0);
	ck_assert_uint_eq(p.group, 1400);

	/* the old view of the partition can no longer split (the commit
	 * point's condition), nor can a key outside or at its start */
	struct qfs_meta_part old = left;
	old.epoch = 1;
	old.hi_len = 0;
	ck_assert_int_eq(qfs_meta_split(m, &old, lo, lol, 1700, &left, &right), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_meta_lookup(m, 1500, lo, lol, &p), 0);
	ck_assert_int_eq(qfs_meta_split(m, &p, hi, hil, 1700, &left, &right), -EINVAL);
	ck_assert_int_eq(qfs_meta_split(m, &p, p.lo, p.lo_len, 1700, &left, &right), -EINVAL);
	ck_assert_int_eq(qfs_meta_group_used(m, 1700), 0);

	/* persisted: a reopen serves the same map */
	close_all();
	open_all();
	ck_assert_int_eq(qfs_meta_parts(m, 1500, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(v[0].group, 1500);
	ck_assert_uint_eq(v[0].lo_len, 0);
	ck_assert_int_eq(qfs_meta_keycmp(v[0].hi, v[0].hi_len, hi, hil), 0);
	ck_assert_uint_eq(v[1].group, 1600);
	ck_assert_int_eq(qfs_meta_keycmp(v[1].lo, v[1].lo_len, hi, hil), 0);
	ck_assert_uint_eq(v[1].hi_len, 0);
	free(v);
}
END_TEST

/* qfs_meta_set_nodes records a group's new replica nodes, and
 * qfs_meta_groups_on names the groups the map places on a node: how a
 * rerun of `quorumfs member replace OLD NEW` finds a group whose replace
 * stopped half-way (OLD already removed from its members, NEW not yet
 * added: the members files no longer name OLD, the map still does). */
START_TEST(test_set_nodes_groups_on)
{
	const uint32_t moved[] = { 2, 3, 5 }, four[] = { 2, 3, 5, 6 };
	struct qfs_glist gl;
	struct qfs_meta_part p, *v;
	size_t n;

	create_table(1500); /* nodes 1, 2, 3 */
	create_table(1400);
	memset(&gl, 0, sizeof(gl));
	ck_assert_int_eq(qfs_meta_groups_on(m, 1, &gl), 0);
	ck_assert_uint_eq(gl.n, 2);
	ck_assert_int_eq(qfs_glist_has(&gl, 1500), 1);
	ck_assert_int_eq(qfs_glist_has(&gl, 1400), 1);
	qfs_glist_free(&gl);

	ck_assert_int_eq(qfs_meta_set_nodes(m, 1500, four, 4), -EINVAL);
	ck_assert_int_eq(qfs_meta_set_nodes(m, 1500, moved, 0), -EINVAL);
	ck_assert_int_eq(qfs_meta_set_nodes(m, 1500, moved, 3), 0);
	ck_assert_int_eq(qfs_meta_set_nodes(m, 4242, moved, 3), 0); /* no partition: nothing */
	ck_assert_int_eq(qfs_meta_lookup(m, 1500, (const uint8_t *)"k", 1, &p), 0);
	ck_assert_uint_eq(p.nnodes, 3);
	ck_assert_int_eq(memcmp(p.nodes, moved, sizeof(moved)), 0);
	ck_assert_uint_eq(p.epoch, 1);

	memset(&gl, 0, sizeof(gl));
	ck_assert_int_eq(qfs_meta_groups_on(m, 1, &gl), 0);
	ck_assert_uint_eq(gl.n, 1);
	ck_assert_uint_eq(gl.v[0], 1400);
	qfs_glist_free(&gl);
	memset(&gl, 0, sizeof(gl));
	ck_assert_int_eq(qfs_meta_groups_on(m, 5, &gl), 0);
	ck_assert_uint_eq(gl.n, 1);
	ck_assert_uint_eq(gl.v[0], 1500);
	qfs_glist_free(&gl);

	/* persisted: a reopen reads the new nodes */
	close_all();
	open_all();
	ck_assert_int_eq(qfs_meta_parts(m, 1500, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(v[0].nnodes, 3);
	ck_assert_int_eq(memcmp(v[0].nodes, moved, sizeof(moved)), 0);
	free(v);
}
END_TEST

/* A map in memory older than the record (another router moved the group
 * meanwhile): qfs_meta_set_nodes fails QFS_ECONFLICT and reloads, so the
 * caller's retry (`quorumfs member` tries 3 times) goes through instead of
 * failing the same way each time. */
START_TEST(test_set_nodes_conflict_reloads)
{
	const uint32_t a[] = { 2, 3, 5 }, b[] = { 3, 5, 6 };
	struct qfs_meta *m2;
	struct qfs_meta_part p;

	create_table(1500);
	ck_assert_int_eq(qfs_meta_open(cell, &m2), 0);
	ck_assert_int_eq(qfs_meta_set_nodes(m, 1500, a, 3), 0);
	ck_assert_int_eq(qfs_meta_set_nodes(m2, 1500, b, 3), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_meta_set_nodes(m2, 1500, b, 3), 0);
	ck_assert_int_eq(qfs_meta_lookup(m2, 1500, (const uint8_t *)"k", 1, &p), 0);
	ck_assert_int_eq(memcmp(p.nodes, b, sizeof(b)), 0);
	ck_assert_int_eq(qfs_meta_reload_table(m, 1500), 0);
	ck_assert_int_eq(qfs_meta_lookup(m, 1500, (const uint8_t *)"k", 1, &p), 0);
	ck_assert_int_eq(memcmp(p.nodes, b, sizeof(b)), 0);
	qfs_meta_free(m2);
}
END_TEST

START_TEST(test_split_legacy_and_drop)
{
	uint8_t k[QFS_KEY_MAX];
	size_t kl = qfs_key_inode(k, 77);
	struct qfs_meta_part p, left, right, *v;
	struct qfs_meta_rec rec;
	struct qfs_txn t;
	size_t n;

	/* a legacy table's first split writes its first records */
	ck_assert_int_eq(qfs_meta_lookup(m, 900, k, kl, &p), 0);
	ck_assert_int_eq(qfs_meta_split(m, &p, k, kl, 901, &left, &right), 0);
	ck_assert_uint_eq(left.epoch, 1);
	ck_assert_int_eq(qfs_meta_parts(m, 900, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(v);
	/* a second split of the same legacy view conflicts */
	ck_assert_int_eq(qfs_meta_split(m, &p, k, kl, 902, &left, &right), QFS_ECONFLICT);

	/* drop: every record of the table goes */
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&t);
	ck_assert_int_eq(qfs_meta_add_drop(&t, &rec, 900), 0);
	ck_assert_int_eq(run(QFS_META_GROUP, &t), 0);
	qfs_txn_close(&t);
	qfs_meta_rec_close(&rec);
	ck_assert_int_eq(qfs_meta_reload_table(m, 900), 0);
	ck_assert_int_eq(qfs_meta_group_used(m, 901), 0);
	ck_assert_int_eq(qfs_meta_parts(m, 900, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(v);
}
END_TEST

START_TEST(test_fence_record)
{
	struct qfs_meta_part p, f;
	struct qfs_meta_rec rec;
	struct qfs_txn t;
	void *val;
	size_t vl;

	ck_assert_int_eq(qfs_cell_group_create(cell, 1500), 0);
	qfs_meta_part_first(&p, 1500, 1500, 1);
	memcpy(p.hi, "hh", 2);
	p.hi_len = 2;
	p.epoch = 7;
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&t);
	ck_assert_int_eq(qfs_meta_add_fence(&t, &rec, &p), 0);
	ck_assert_int_eq(run(1500, &t), 0);
	qfs_txn_close(&t);
	qfs_meta_rec_close(&rec);
	ck_assert_int_eq(qfs_cell_get(cell, 1500, QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, &val, &vl), 0);
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(qfs_meta_fence_decode(val, vl, &f), 0);
	ck_assert_uint_eq(f.epoch, 7);
	ck_assert_uint_eq(f.table, 1500);
	ck_assert_uint_eq(f.hi_len, 2);
	ck_assert_uint_eq(qfs_be64_get(val), 7); /* what QFS_OP_RANGE compares */
	ck_assert_int_eq(qfs_meta_fence_decode(val, vl - 1, &f), QFS_ECORRUPT);
	free(val);
}
END_TEST

/* A reload that read the map before a split's commit and installs it
 * after the split's own reload must not put the old map back: the moved
 * range would be routed to the old group, which the split emptied. */
static pthread_mutex_t hk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hk_cv = PTHREAD_COND_INITIALIZER;
static pthread_t hk_thread;   /* the reload the hook delays */
static int hk_state;          /* 1: it has read, waits; 2: go on */

static void hold_reload(qfs_table_t table)
{
	(void)table;
	if (!pthread_equal(pthread_self(), hk_thread))
		return;
	pthread_mutex_lock(&hk_mu);
	if (hk_state == 0) {
		hk_state = 1;
		pthread_cond_broadcast(&hk_cv);
		while (hk_state != 2)
			pthread_cond_wait(&hk_cv, &hk_mu);
	}
	pthread_mutex_unlock(&hk_mu);
}

static void *reload_main(void *arg)
{
	return (void *)(intptr_t)qfs_meta_reload_table(m, *(qfs_table_t *)arg);
}

/* Reload table in a thread held between its read and its install while
 * split() runs, then let it install. */
static void delayed_reload(qfs_table_t table, void (*split)(void))
{
	void *ret;

	hk_state = 0;
	qfs_meta_test_reload_hook = hold_reload;
	pthread_mutex_lock(&hk_mu); /* hk_thread is set before the hook reads it */
	ck_assert_int_eq(pthread_create(&hk_thread, NULL, reload_main, &table), 0);
	while (hk_state != 1)
		pthread_cond_wait(&hk_cv, &hk_mu);
	pthread_mutex_unlock(&hk_mu);
	split();
	pthread_mutex_lock(&hk_mu);
	hk_state = 2;
	pthread_cond_broadcast(&hk_cv);
	pthread_mutex_unlock(&hk_mu);
	ck_assert_int_eq(pthread_join(hk_thread, &ret), 0);
	qfs_meta_test_reload_hook = NULL;
	ck_assert_int_eq((int)(intptr_t)ret, 0);
}

static uint8_t sk[QFS_KEY_MAX];
static size_t skl;
static qfs_table_t st;

static void split_now(void)
{
	struct qfs_meta_part p, left, right;

	ck_assert_int_eq(qfs_meta_lookup(m, st, sk, skl, &p), 0);
	ck_assert_int_eq(qfs_meta_split(m, &p, sk, skl, st + 100, &left, &right), 0);
	ck_assert_int_eq(qfs_meta_lookup(m, st, sk, skl, &p), 0);
	ck_assert_uint_eq(p.group, st + 100);
}

START_TEST(test_stale_reload_kept_out)
{
	struct qfs_meta_part p, *v;
	size_t n;

	skl = qfs_key_inode(sk, 77);
	/* a table with records (epoch 1 -> 2) */
	st = 1500;
	create_table(st);
	delayed_reload(st, split_now);
	ck_assert_int_eq(qfs_meta_lookup(m, st, sk, skl, &p), 0);
	ck_assert_uint_eq(p.group, st + 100); /* not the old map's group */
	ck_assert_uint_eq(p.epoch, 2);
	ck_assert_int_eq(qfs_meta_parts(m, st, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(v);
	/* a legacy table (no record -> two at epoch 1): the old read is empty */
	st = 900;
	delayed_reload(st, split_now);
	ck_assert_int_eq(qfs_meta_lookup(m, st, sk, skl, &p), 0);
	ck_assert_uint_eq(p.group, st + 100);
	ck_assert_uint_eq(p.epoch, 1);
	/* a fresh reload still installs what is stored */
	ck_assert_int_eq(qfs_meta_reload_table(m, st), 0);
	ck_assert_int_eq(qfs_meta_parts(m, st, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(v);
}
END_TEST

/* Split intents (cluster mode): one claim wins, a second conflicts; a
 * beat is a conditional swap; a split with a stale intent (taken over)
 * cannot commit; the commit deletes the intent; the map's loader and the
 * table's records never see intents. */
START_TEST(test_split_intents)
{
	uint8_t k[QFS_KEY_MAX];
	size_t kl = qfs_key_inode(k, 77), n = 9;
	struct qfs_meta_part p, left, right, *v;
	struct qfs_meta_intent a = { 1600, 1600, 11, 1, 1601, 1 }, b = { 1600, 1600, 22, 1, 1602, 1 };
	struct qfs_meta_intent a2 = a, got[4];
	struct qfs_meta *m2;

	create_table(1600);
	create_table(1700);
	ck_assert_int_eq(qfs_meta_lookup(m, 1600, k, kl, &p), 0);
	ck_assert_int_eq(qfs_meta_intents(m, 1600, got, 4, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(qfs_meta_intent_claim(m, &p, &a), 0);
	ck_assert_int_eq(qfs_meta_intent_claim(m, &p, &b), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_meta_intents(m, 1600, got, 4, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(memcmp(&got[0], &a, sizeof(a)), 0);
	ck_assert_int_eq(qfs_meta_intents(m, 1700, got, 4, &n), 0); /* another table's: none */
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(qfs_meta_intents(m, 0, got, 4, &n), 0);    /* all tables */
	ck_assert_uint_eq(n, 1);
	/* a beat, then a takeover by b over the value it saw */
	a2.beat = 2;
	ck_assert_int_eq(qfs_meta_intent_swap(m, &a, &a2), 0);
	ck_assert_int_eq(qfs_meta_intent_swap(m, &a, &b), QFS_ECONFLICT); /* stale view */
	ck_assert_int_eq(qfs_meta_intent_swap(m, &a2, &b), 0);
	/* the old holder's commit fails, and writes nothing */
	ck_assert_int_eq(qfs_meta_split_claimed(m, &p, k, kl, 1601, &a2, &left, &right), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_meta_group_used(m, 1601), 0);
	/* the holder's commit: map and the intent's deletion in one txn */
	ck_assert_int_eq(qfs_meta_split_claimed(m, &p, k, kl, 1602, &b, &left, &right), 0);
	ck_assert_int_eq(qfs_meta_intents(m, 0, got, 4, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(qfs_meta_parts(m, 1600, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(v);
	/* a claim on a partition record that changed conflicts */
	ck_assert_int_eq(qfs_meta_intent_claim(m, &p, &a), QFS_ECONFLICT);
	/* an intent left behind does not disturb a fresh map load */
	ck_assert_int_eq(qfs_meta_intent_claim(m, &left, &a), 0);
	ck_assert_int_eq(qfs_meta_open(cell, &m2), 0);
	ck_assert_int_eq(qfs_meta_parts(m2, 1600, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(v);
	qfs_meta_free(m2);
	ck_assert_int_eq(qfs_meta_intent_swap(m, &a, NULL), 0);
	ck_assert_int_eq(qfs_meta_intents(m, 0, got, 4, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* An undone cluster split (qfs_meta_bump_claimed): the partition's epoch
 * rises, range and group unchanged, and the intent goes in the same txn,
 * only for the intent's holder as it holds it (a taken-over holder, or a
 * stale record, changes nothing); an epoch not above the record's is
 * refused. */
START_TEST(test_bump_claimed)
{
	uint8_t k[QFS_KEY_MAX];
	size_t kl = qfs_key_inode(k, 77), n = 9;
	struct qfs_meta_part p, q, got;
	struct qfs_meta_intent a = { 1800, 1800, 11, 1, 1801, 1 }, b = a, iv[4];

	create_table(1800);
	ck_assert_int_eq(qfs_meta_lookup(m, 1800, k, kl, &p), 0);
	ck_assert_int_eq(qfs_meta_intent_claim(m, &p, &a), 0);
	b.owner = 22; /* a takeover */
	b.beat = 2;
	ck_assert_int_eq(qfs_meta_intent_swap(m, &a, &b), 0);
	ck_assert_int_eq(qfs_meta_bump_claimed(m, &p, p.epoch + 1, &a, &q), QFS_ECONFLICT); /* the late holder */
	ck_assert_int_eq(qfs_meta_lookup(m, 1800, k, kl, &got), 0);
	ck_assert_uint_eq(got.epoch, p.epoch);
	ck_assert_int_eq(qfs_meta_bump_claimed(m, &p, p.epoch, &b, &q), -EINVAL);
	ck_assert_int_eq(qfs_meta_bump_claimed(m, &p, p.epoch + 1, &b, &q), 0);
	ck_assert_uint_eq(q.epoch, p.epoch + 1);
	ck_assert_int_eq(qfs_meta_lookup(m, 1800, k, kl, &got), 0);
	ck_assert_uint_eq(got.epoch, p.epoch + 1);
	ck_assert_uint_eq(got.group, p.group);
	ck_assert_uint_eq(got.lo_len, p.lo_len);
	ck_assert_uint_eq(got.hi_len, p.hi_len);
	ck_assert_int_eq(qfs_meta_intents(m, 1800, iv, 4, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* the record moved on: a claim or a bump over the old one conflicts */
	ck_assert_int_eq(qfs_meta_intent_claim(m, &p, &a), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_meta_intent_claim(m, &q, &a), 0);
	ck_assert_int_eq(qfs_meta_bump_claimed(m, &p, q.epoch + 1, &a, &got), QFS_ECONFLICT);
	ck_assert_int_eq(qfs_meta_intent_swap(m, &a, NULL), 0);
}
END_TEST

static Suite *meta_suite(void)
{
	Suite *s = suite_create("meta");
	TCase *tc = tcase_create("map");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_keycmp_and_ranges);
	tcase_add_test(tc, test_record_codec);
	tcase_add_test(tc, test_legacy_table);
	tcase_add_test(tc, test_create_split_reopen);
	tcase_add_test(tc, test_split_legacy_and_drop);
	tcase_add_test(tc, test_fence_record);
	tcase_add_test(tc, test_stale_reload_kept_out);
	tcase_add_test(tc, test_set_nodes_groups_on);
	tcase_add_test(tc, test_set_nodes_conflict_reloads);
	tcase_add_test(tc, test_split_intents);
	tcase_add_test(tc, test_bump_claimed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(meta_suite());
}
