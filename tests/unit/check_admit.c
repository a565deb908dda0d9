/*
 * check_admit.c - admission control (src/router/admit.h) under an injected
 * clock: bucket refill and burst accrual (capped at 300 s), burst spent
 * only while the node has headroom, an empty burst for a new table and
 * after a capacity change, on-demand tables following their peak (2x at
 * once) within the partition ceiling, the GAC refilling two routers'
 * local buckets from one table budget, waiting, failing and the wait
 * bound, burst per partition (each its own, bounded by the table's),
 * waiters served in arrival order (threads on an injected clock), and
 * the parsing of table settings.  Deterministic: no real time decides a
 * result (the FIFO test polls real time only to see its threads queue).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/admit.h"

#define S 1000000000ull  /* one second in ns */
#define MS 1000000ull

static uint64_t now;     /* the injected clock, ns */
static struct qfs_admit_gac *gac;
static struct qfs_admit *adm;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return now;
}

static void fake_sleep(void *arg, uint64_t ns)
{
	(void)arg;
	now += ns;
}

static void setup(void)
{
	now = 1000 * S;
	ck_assert_int_eq(qfs_admit_gac_new(&gac), 0);
	ck_assert_int_eq(qfs_admit_new(gac, NULL, fake_clock, fake_sleep, NULL, &adm), 0);
}

static void teardown(void)
{
	qfs_admit_free(adm);
	qfs_admit_gac_free(gac);
	adm = NULL;
	gac = NULL;
}

static void provision(qfs_group_t g, uint32_t rcu, uint32_t wcu)
{
	struct qfs_admit_cap cap = { .mode = QFS_ADMIT_PROVISIONED, .units = { rcu, wcu } };

	ck_assert_int_eq(qfs_admit_set(adm, g, &cap, 1, now), 0);
}

/* Admit 1-unit writes at the current instant until one is refused. */
static int admit_now(struct qfs_admit *a, qfs_group_t g, int most)
{
	uint64_t w;
	int n = 0;

	while (n < most && qfs_admit_try(a, g, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0)
		n++;
	return n;
}

static double burst(qfs_group_t g)
{
	struct qfs_admit_info i;

	ck_assert_int_eq(qfs_admit_info(adm, g, now, &i), 0);
	return i.burst[QFS_ADMIT_WRITE];
}

START_TEST(bucket_refill_and_burst_cap)
{
	struct qfs_admit_bucket b;

	qfs_admit_bucket_init(&b, 10, 1, 0);
	ck_assert(qfs_admit_bucket_ready(&b, 0));
	qfs_admit_bucket_take(&b, 10, 0);
	ck_assert(!qfs_admit_bucket_ready(&b, 0));
	ck_assert_uint_eq(qfs_admit_bucket_wait(&b), 1);         /* 0 tokens: ready in a moment */
	qfs_admit_bucket_take(&b, 5, 0);                         /* a debt of 5 */
	ck_assert_uint_ge(qfs_admit_bucket_wait(&b), S / 2);
	qfs_admit_bucket_refill(&b, S / 2);
	ck_assert(!qfs_admit_bucket_ready(&b, 0));                 /* exactly paid back */
	qfs_admit_bucket_refill(&b, S);
	ck_assert(qfs_admit_bucket_ready(&b, 0));
	ck_assert(b.tokens > 4.99 && b.tokens < 5.01);
	ck_assert(b.burst == 0);                                   /* nothing overflowed yet */
	qfs_admit_bucket_refill(&b, 11 * S);                       /* 10 s idle: 95 overflow */
	ck_assert(b.tokens == 10);
	ck_assert(b.burst > 94.9 && b.burst < 95.1);
	qfs_admit_bucket_refill(&b, 10000 * S);                    /* far past 300 s */
	ck_assert(b.burst == 10.0 * QFS_ADMIT_BURST_S);
	qfs_admit_bucket_refill(&b, 5000 * S);                     /* time going back adds nothing */
	ck_assert(b.burst == 10.0 * QFS_ADMIT_BURST_S);
	/* burst is spent only with headroom */
	qfs_admit_bucket_take(&b, 10, 0);
	ck_assert(!qfs_admit_bucket_ready(&b, 0));
	ck_assert(qfs_admit_bucket_ready(&b, 1));
	qfs_admit_bucket_take(&b, 100, 1);
	ck_assert(b.tokens == 0 && b.burst == 10.0 * QFS_ADMIT_BURST_S - 100);
	/* unlimited */
	qfs_admit_bucket_init(&b, 0, 1, 0);
	qfs_admit_bucket_take(&b, 1e9, 0);
	ck_assert(qfs_admit_bucket_ready(&b, 0));
}
END_TEST

/* Eventually consistent reads (-o reads=eventual) cost half a read unit:
 * a table of 10 RCU serves 20 of them per second (10 strong ones), settles
 * count half too, and consumed_rcu shows the halves; writes are unchanged. */
START_TEST(eventual_reads_cost_half)
{
	struct qfs_admit_cfg cfg = { .eventual_reads = 1 };
	struct qfs_admit_info i;
	uint64_t w, end;
	int n = 0, strong = 0;

	provision(9, 10, 10);
	end = now + 10 * S;
	while (now < end) { /* strong first: ~10 per second */
		now += MS;
		if (qfs_admit_try(adm, 9, QFS_ADMIT_READ, 1, 0, now, &w) == 0)
			strong++;
	}
	ck_assert_int_ge(strong, 99);
	ck_assert_int_le(strong, 111);
	qfs_admit_configure(adm, &cfg);
	provision(10, 10, 10);
	ck_assert_int_eq(qfs_admit_info(adm, 10, now, &i), 0);
	ck_assert_uint_eq(i.consumed[QFS_ADMIT_READ], 0);
	end = now + 10 * S;
	while (now < end) {
		now += MS;
		if (qfs_admit_try(adm, 10, QFS_ADMIT_READ, 1, 0, now, &w) == 0)
			n++;
	}
	ck_assert_int_ge(n, 2 * 99);  /* twice the strong rate */
	ck_assert_int_le(n, 2 * 111);
	ck_assert_int_eq(qfs_admit_info(adm, 10, now, &i), 0);
	ck_assert_uint_eq(i.consumed[QFS_ADMIT_READ], (uint64_t)n / 2);
	/* a settle (a read's size known after it ran) counts half as well */
	qfs_admit_settle(adm, 10, QFS_ADMIT_READ, 8, now);
	ck_assert_int_eq(qfs_admit_info(adm, 10, now, &i), 0);
	ck_assert_uint_eq(i.consumed[QFS_ADMIT_READ], (uint64_t)n / 2 + 4);
	/* writes still cost whole units: 10 per second (once the burst
	 * accrued while only reads ran is spent) */
	admit_now(adm, 10, 100000);
	now += S;
	ck_assert_int_eq(admit_now(adm, 10, 1000), 10);
}
END_TEST

/* Reads placed per group by the test (bit i - 1: node i); writes: every node. */
static uint32_t place_of[16];

static uint32_t test_place(void *arg, qfs_group_t g, enum qfs_admit_kind k)
{
	(void)arg;
	return k == QFS_ADMIT_READ && g < 16 ? place_of[g] : 0;
}

/* Per-node buckets (issue 13 item 2): each node's throughput is shared by
 * every partition whose replica on it a request uses, and no more: two
 * tables read from two nodes get twice a node's rate, two on one node
 * share it; a node no request used stays full; a write draws on every
 * node; burst is spent while the request's own node has unused
 * throughput even when another node is saturated. */
START_TEST(node_buckets_per_node)
{
	struct qfs_admit_cfg cfg = { .nodes = 3, .node_units = { 10, 30 } };
	double tok, rate;
	uint64_t w, end;
	int n1 = 0, n2 = 0, n3 = 0;
	uint32_t lcg = 1;

	qfs_admit_configure(adm, &cfg);
	qfs_admit_set_placement(adm, test_place, NULL);
	place_of[1] = 1u << 0;
	place_of[2] = 1u << 1;
	place_of[3] = 1u << 0;
	/* on-demand tables, unlimited: only the node buckets limit them */
	end = now + 10 * S;
	while (now < end) {
		now += MS;
		n1 += qfs_admit_try(adm, 1, QFS_ADMIT_READ, 1, 0, now, &w) == 0;
		n2 += qfs_admit_try(adm, 2, QFS_ADMIT_READ, 1, 0, now, &w) == 0;
	}
	ck_assert_int_ge(n1, 99);
	ck_assert_int_le(n1, 111);
	ck_assert_int_ge(n2, 99);
	ck_assert_int_le(n2, 111);
	n1 = 0;
	end = now + 10 * S;
	while (now < end) {
		now += MS;
		lcg = lcg * 1103515245u + 12345u;
		if (lcg >> 16 & 1) { /* who asks first: a fixed pseudo-random sequence */
			n1 += qfs_admit_try(adm, 1, QFS_ADMIT_READ, 1, 0, now, &w) == 0;
			n3 += qfs_admit_try(adm, 3, QFS_ADMIT_READ, 1, 0, now, &w) == 0;
		} else {
			n3 += qfs_admit_try(adm, 3, QFS_ADMIT_READ, 1, 0, now, &w) == 0;
			n1 += qfs_admit_try(adm, 1, QFS_ADMIT_READ, 1, 0, now, &w) == 0;
		}
	}
	ck_assert_int_ge(n1 + n3, 99);
	ck_assert_int_le(n1 + n3, 111);
	ck_assert_int_ge(n3, 30); /* shared, not starved */
	ck_assert_int_eq(qfs_admit_node_info(adm, 3, QFS_ADMIT_READ, now, &tok, &rate), 0);
	ck_assert(tok == 10 && rate == 10);
	ck_assert_int_eq(qfs_admit_node_info(adm, 4, QFS_ADMIT_READ, now, &tok, &rate), -EINVAL);
	ck_assert_int_eq(qfs_admit_try(adm, 1, QFS_ADMIT_WRITE, 12, 0, now, &w), 0);
	for (uint32_t id = 1; id <= 3; id++) {
		ck_assert_int_eq(qfs_admit_node_info(adm, id, QFS_ADMIT_WRITE, now, &tok, &rate), 0);
		ck_assert(tok > 17.9 && tok < 18.1 && rate == 30);
	}
	/* burst with the request's node idle while another node is saturated */
	cfg.node_units[QFS_ADMIT_READ] = 100;
	qfs_admit_configure(adm, &cfg);
	place_of[5] = 1u << 0;
	place_of[6] = 1u << 1;
	provision(5, 5, 0);
	now += 20 * S; /* ~95 units of burst accrue */
	n2 = 0;
	while (n2 < 1000 && qfs_admit_try(adm, 6, QFS_ADMIT_READ, 1, 0, now, &w) == 0)
		n2++;
	ck_assert_int_le(n2, 101); /* node 2: one second's worth */
	n1 = 0;
	while (n1 < 1000 && qfs_admit_try(adm, 5, QFS_ADMIT_READ, 1, 0, now, &w) == 0)
		n1++;
	ck_assert_int_gt(n1, 50); /* 5 tokens + burst while node 1 keeps 20% */
	ck_assert_int_le(n1, 81);
}
END_TEST

START_TEST(provisioned_rate_is_kept)
{
	uint64_t w, end;
	int n = 0;

	provision(7, 0, 10);
	ck_assert_int_eq(admit_now(adm, 7, 1000), 10); /* a full bucket: 1 s of tokens */
	end = now + 10 * S;
	while (now < end) {                             /* poll every ms for 10 s */
		now += MS;
		if (qfs_admit_try(adm, 7, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0)
			n++;
		else
			ck_assert_uint_gt(w, 0);
	}
	ck_assert_int_ge(n, 99);
	ck_assert_int_le(n, 101);
	/* reads are not limited on this table (rcu unset) */
	ck_assert_int_eq(qfs_admit_try(adm, 7, QFS_ADMIT_READ, 1e6, 0, now, &w), 0);
	/* a big request passes when the bucket is positive, then the debt waits */
	now += 2 * S;
	ck_assert_int_eq(qfs_admit_try(adm, 7, QFS_ADMIT_WRITE, 50, 0, now, &w), 0);
	ck_assert_int_eq(qfs_admit_try(adm, 7, QFS_ADMIT_WRITE, 1, 0, now, &w), -EAGAIN);
	ck_assert_uint_ge(w, 3 * S);
}
END_TEST

START_TEST(burst_accrues_empty_at_start_and_change)
{
	provision(7, 0, 10);
	ck_assert(burst(7) == 0);                       /* a new table: empty */
	now += 100 * S;
	ck_assert(burst(7) > 985 && burst(7) < 1001);   /* ~ 100 s x 10 less the bucket */
	now += 1000 * S;
	ck_assert(burst(7) == 10.0 * QFS_ADMIT_BURST_S); /* capped at 300 s worth */
	provision(7, 0, 20);                            /* capacity just set: empty again */
	ck_assert(burst(7) == 0);
	now += 10 * S;
	ck_assert(burst(7) > 179 && burst(7) < 201);
	/* an unknown table made on first use is on-demand with nothing to burst */
	uint64_t w;
	ck_assert_int_eq(qfs_admit_try(adm, 8, QFS_ADMIT_WRITE, 1, 0, now, &w), 0);
	ck_assert(burst(8) == 0);
}
END_TEST

START_TEST(burst_only_with_node_headroom)
{
	struct qfs_admit_cfg cfg = { .node_units = { 0, 50 } };

	/* unlimited node: the whole burst is there */
	provision(7, 0, 10);
	now += 100 * S;
	int all = admit_now(adm, 7, 100000);
	ck_assert_int_gt(all, 900);
	/* a node of 50 WCU: burst stops while 20% of the node's second is left */
	qfs_admit_configure(adm, &cfg);
	provision(7, 0, 10);
	now += 100 * S;
	int some = admit_now(adm, 7, 100000);
	ck_assert_int_gt(some, 11);          /* more than the table's own second: burst */
	ck_assert_int_le(some, 42);          /* but not the node's last 10 units */
	/* no headroom left: the burst stays (the partition's, not spent) */
	ck_assert(burst(7) > 900);
	/* the GAC grants tokens only (a second's worth at most): burst lives
	 * in the partitions */
	double none[QFS_ADMIT_NKINDS] = { 0, 10 };
	ck_assert_int_eq(qfs_admit_gac_set(gac, 9, none, 1, now), 0);
	now += 100 * S;
	ck_assert(qfs_admit_gac_grant(gac, 9, QFS_ADMIT_WRITE, 500, now) == 10);
	ck_assert(qfs_admit_gac_grant(gac, 9, QFS_ADMIT_WRITE, 500, now) == 0);
}
END_TEST

START_TEST(on_demand_follows_peak)
{
	struct qfs_admit_cfg cfg = { .ondemand_units = { 0, 100 }, .part_units = { 0, 1000 } };
	struct qfs_admit_cap od = { .mode = QFS_ADMIT_ON_DEMAND };
	struct qfs_admit_info i;
	uint64_t w;
	double prev = 100;

	qfs_admit_configure(adm, &cfg);
	ck_assert_int_eq(qfs_admit_set(adm, 7, &od, 1, now), 0);
	ck_assert_int_eq(qfs_admit_info(adm, 7, now, &i), 0);
	ck_assert(i.limit[QFS_ADMIT_WRITE] == 100);
	/* saturate it, one window after another: the allowance at most doubles */
	for (int round = 0; round < 7; round++) {
		uint64_t end = now + S;
		while (now < end) {
			qfs_admit_try(adm, 7, QFS_ADMIT_WRITE, 1, 0, now, &w);
			now += S / 2000;
		}
		now += 1; /* close the window */
		ck_assert_int_eq(qfs_admit_info(adm, 7, now, &i), 0);
		double lim = i.limit[QFS_ADMIT_WRITE];
		ck_assert(i.peak[QFS_ADMIT_WRITE] > 0);
		ck_assert(lim == 2 * i.peak[QFS_ADMIT_WRITE] || lim == 100);
		/* 2x the previous peak at once, no more */
		ck_assert(lim <= 2 * i.peak[QFS_ADMIT_WRITE] || lim == 100);
		if (round >= 5) /* saturated at the partition ceiling (1000/s), its bucket drained */
			ck_assert(i.rate[QFS_ADMIT_WRITE] > 900 && i.rate[QFS_ADMIT_WRITE] <= 1010);
		prev = lim;
		prev = lim;
	}
	ck_assert(prev >= 1600);                       /* it did grow: 100 -> 400 -> 800 -> ... */
	ck_assert(i.throttled[QFS_ADMIT_WRITE] == 0); /* try() alone counts nothing */
	/* with no allowance configured, on-demand is unlimited */
	struct qfs_admit_cfg none = { .gac_ms = 0 };
	qfs_admit_configure(adm, &none);
	ck_assert_int_eq(qfs_admit_info(adm, 7, now, &i), 0);
	ck_assert(i.limit[QFS_ADMIT_WRITE] == 0);
	ck_assert_int_eq(admit_now(adm, 7, 100000), 100000);
}
END_TEST

START_TEST(gac_refills_two_routers)
{
	struct qfs_admit *b;
	uint64_t w;
	int na = 0, nb = 0;

	ck_assert_int_eq(qfs_admit_new(gac, NULL, fake_clock, fake_sleep, NULL, &b), 0);
	provision(7, 0, 10);
	struct qfs_admit_cap cap = { .mode = QFS_ADMIT_PROVISIONED, .units = { 0, 10 } };
	ck_assert_int_eq(qfs_admit_set(b, 7, &cap, 1, now), 0); /* both routers see the setting */
	uint64_t end = now + 10 * S;
	while (now < end) {
		now += MS;
		if ((now / MS) % 2) { /* take turns at asking first */
			na += qfs_admit_try(adm, 7, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
			nb += qfs_admit_try(b, 7, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
		} else {
			nb += qfs_admit_try(b, 7, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
			na += qfs_admit_try(adm, 7, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
		}
	}
	/* one table budget shared: 10/s for 10 s plus the bucket's first second */
	ck_assert_int_ge(na + nb, 105);
	ck_assert_int_le(na + nb, 115);
	ck_assert_int_gt(na, 20);
	ck_assert_int_gt(nb, 20);
	/* 100 s idle: each router's partition saved ~1000 units of burst, but
	 * the table left only ~1000 unused: together they spend that once */
	now += 100 * S;
	na = nb = 0;
	for (end = now + 10 * S; now < end;) {
		now += MS;
		na += qfs_admit_try(adm, 7, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
		nb += qfs_admit_try(b, 7, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
	}
	ck_assert_int_ge(na + nb, 990 + 100 - 10);          /* 99 s of overflow, 10 s of rate */
	ck_assert_int_le(na + nb, 1000 + 100 + 10 + 15); /* burst, 10 s of rate, the first second */
	ck_assert(qfs_admit_gac_burst(gac, 7, QFS_ADMIT_WRITE, now) < 1);
	qfs_admit_free(b);
}
END_TEST

START_TEST(acquire_waits_fails_and_is_bounded)
{
	struct qfs_admit_cfg fail = { .fail = 1 };
	struct qfs_admit_cfg wait = { .wait_ms = 2000 };
	struct qfs_admit_info i;

	provision(7, 0, 5);
	admit_now(adm, 7, 100);
	uint64_t t0 = now;
	ck_assert_int_eq(qfs_admit_acquire(adm, 7, QFS_ADMIT_WRITE, 1), 0); /* waits */
	ck_assert_uint_gt(now, t0);
	ck_assert_int_eq(qfs_admit_info(adm, 7, now, &i), 0);
	ck_assert_uint_eq(i.throttled[QFS_ADMIT_WRITE], 1);
	ck_assert_uint_gt(i.wait_us[QFS_ADMIT_WRITE], 0);
	ck_assert_uint_eq(i.expired[QFS_ADMIT_WRITE], 0);

	qfs_admit_configure(adm, &fail);
	provision(7, 0, 5);
	admit_now(adm, 7, 100);
	t0 = now;
	ck_assert_int_eq(qfs_admit_acquire(adm, 7, QFS_ADMIT_WRITE, 1), -EAGAIN);
	ck_assert_uint_eq(now, t0);                                 /* no wait */
	ck_assert_int_eq(qfs_admit_info(adm, 7, now, &i), 0);
	ck_assert_uint_eq(i.throttled[QFS_ADMIT_WRITE], 2);

	qfs_admit_configure(adm, &wait);
	provision(7, 0, 1);
	ck_assert_int_eq(qfs_admit_acquire(adm, 7, QFS_ADMIT_WRITE, 100), 0); /* a debt of ~100 s */
	t0 = now;
	ck_assert_int_eq(qfs_admit_acquire(adm, 7, QFS_ADMIT_WRITE, 1), 0);  /* bounded: proceeds */
	ck_assert_uint_ge(now - t0, 2000 * MS);
	ck_assert_uint_lt(now - t0, 2100 * MS);
	ck_assert_int_eq(qfs_admit_info(adm, 7, now, &i), 0);
	ck_assert_uint_eq(i.expired[QFS_ADMIT_WRITE], 1);
	/* the meta-free path: an unknown group is on-demand and unlimited */
	t0 = now;
	ck_assert_int_eq(qfs_admit_acquire(adm, 99, QFS_ADMIT_READ, 1e6), 0);
	ck_assert_uint_eq(now, t0);
}
END_TEST

/* Writes of 1 unit on the partitions in parts[0..n) of table 7, every
 * millisecond for secs seconds (parts[i] first on odd ms, last on even):
 * the counts admitted per partition in got[]. */
static void hammer(const qfs_group_t *parts, size_t n, int secs, int got[])
{
	uint64_t w, end = now + (uint64_t)secs * S;

	for (size_t i = 0; i < n; i++)
		got[i] = 0;
	while (now < end) {
		now += MS;
		for (size_t j = 0; j < n; j++) {
			size_t i = (now / MS) % 2 ? j : n - 1 - j;
			got[i] += qfs_admit_try_part(adm, 7, parts[i], QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
		}
	}
}

static struct qfs_admit_part_info part_info(size_t i)
{
	struct qfs_admit_part_info pi;

	ck_assert_int_eq(qfs_admit_part_info(adm, 7, i, now, &pi), 0);
	return pi;
}

START_TEST(partition_share_of_provisioned)
{
	qfs_group_t two[] = { 7, 8 };
	int got[2];

	provision(7, 0, 100);
	ck_assert(part_info(0).share[QFS_ADMIT_WRITE] == 100); /* one partition: the whole table */
	ck_assert(part_info(0).share[QFS_ADMIT_READ] == 0);    /* rcu unset: unlimited */
	ck_assert_int_eq(qfs_admit_part_info(adm, 7, 1, now, &(struct qfs_admit_part_info){ 0 }), -ENOENT);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, two, 2, now), 0);
	ck_assert(part_info(0).share[QFS_ADMIT_WRITE] == 50);
	ck_assert(part_info(1).share[QFS_ADMIT_WRITE] == 50);
	ck_assert_uint_eq(part_info(1).group, 8);
	/* both busy: each holds its share, nothing to borrow */
	hammer(two, 2, 10, got);
	ck_assert_int_ge(got[0], 480);
	ck_assert_int_le(got[0], 560);
	ck_assert_int_ge(got[1], 480);
	ck_assert_int_le(got[1], 560);
	ck_assert_int_le(got[0] + got[1], 1000 + 110); /* the table's rate, plus its first second */
	ck_assert(part_info(0).borrowed[QFS_ADMIT_WRITE] < 60);
	ck_assert_uint_eq(part_info(0).consumed[QFS_ADMIT_WRITE], (uint64_t)got[0]);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, two, 0, now), -EINVAL);
	ck_assert_int_eq(qfs_admit_known(adm, 7), 1);
	ck_assert_int_eq(qfs_admit_known(adm, 11), 0);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 11, two, 2, now), 0);
	ck_assert_int_eq(qfs_admit_known(adm, 11), 0); /* partitions alone: settings still to load */
}
END_TEST

START_TEST(partition_borrows_unused_share)
{
	qfs_group_t two[] = { 7, 8 };
	int got[2];

	provision(7, 0, 100);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, two, 2, now), 0);
	/* partition 7 alone is busy: it borrows 8's unused share (adaptive
	 * capacity), the table's rate stays the bound */
	hammer(two, 1, 10, got);
	ck_assert_int_ge(got[0], 950);
	ck_assert_int_le(got[0], 1110);
	ck_assert(part_info(0).borrowed[QFS_ADMIT_WRITE] > 400);
	ck_assert(part_info(1).consumed[QFS_ADMIT_WRITE] == 0);
	/* but never beyond its ceiling */
	struct qfs_admit_cfg cfg = { .part_units = { 0, 60 } };
	qfs_admit_configure(adm, &cfg);
	provision(7, 0, 100);
	hammer(two, 1, 10, got);
	ck_assert_int_ge(got[0], 590);
	ck_assert_int_le(got[0], 670);
	ck_assert(part_info(0).ceiling[QFS_ADMIT_WRITE] == 60);
	/* and without a table to borrow from (8 busy too) each keeps 50/s
	 * (re-provisioned: the burst 7 left unused above is emptied) */
	provision(7, 0, 100);
	hammer(two, 2, 10, got);
	ck_assert_int_ge(got[0], 450);
	ck_assert_int_le(got[0], 560);
	ck_assert_int_ge(got[1], 450);
}
END_TEST

START_TEST(partition_ceiling_on_demand)
{
	struct qfs_admit_cfg cfg = { .part_units = { 0, 1000 } };
	struct qfs_admit_cap od = { .mode = QFS_ADMIT_ON_DEMAND };
	qfs_group_t two[] = { 7, 8 };
	struct qfs_admit_info i;
	uint64_t w;
	int got[2];

	qfs_admit_configure(adm, &cfg);
	ck_assert_int_eq(qfs_admit_set(adm, 7, &od, 1, now), 0);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, two, 2, now), 0);
	ck_assert(part_info(0).share[QFS_ADMIT_WRITE] == 0); /* unlimited table: no share */
	/* 4 writes per ms per partition: each capped at its own 1000/s, so
	 * the table takes 2000/s */
	for (size_t k = 0; k < 2; k++)
		got[k] = 0;
	for (uint64_t end = now + 5 * S; now < end;) {
		now += MS;
		for (int n = 0; n < 4; n++)
			for (size_t k = 0; k < 2; k++)
				got[k] += qfs_admit_try_part(adm, 7, two[k], QFS_ADMIT_WRITE, 1, 0, now, &w) == 0;
	}
	ck_assert_int_ge(got[0], 5000);
	ck_assert_int_le(got[0], 6010);
	ck_assert_int_ge(got[1], 5000);
	ck_assert_int_le(got[1], 6010);
	/* the refusals of its ceiling, which the split checks count as load */
	uint64_t hits = qfs_admit_ceiling_hits(adm, 7, 8);
	ck_assert_uint_gt(hits, 1000);
	ck_assert_uint_eq(qfs_admit_ceiling_hits(adm, 7, 99), 0);
	ck_assert_uint_eq(qfs_admit_ceiling_hits(adm, 99, 8), 0);
	/* a hot partition waits (counted on it and its table), the other not */
	uint64_t t0 = now;
	ck_assert_int_eq(qfs_admit_acquire_part(adm, 7, 8, QFS_ADMIT_WRITE, 1), 0);
	ck_assert_uint_gt(now, t0);
	ck_assert_uint_eq(part_info(1).throttled[QFS_ADMIT_WRITE], 1);
	ck_assert_uint_eq(part_info(0).throttled[QFS_ADMIT_WRITE], 0);
	ck_assert_int_eq(qfs_admit_info(adm, 7, now, &i), 0);
	ck_assert_uint_eq(i.throttled[QFS_ADMIT_WRITE], 1);
	/* throttle=fail: EAGAIN at once */
	cfg.fail = 1;
	qfs_admit_configure(adm, &cfg);
	while (qfs_admit_try_part(adm, 7, 8, QFS_ADMIT_WRITE, 1, 0, now, &w) == 0)
		;
	t0 = now;
	ck_assert_int_eq(qfs_admit_acquire_part(adm, 7, 8, QFS_ADMIT_WRITE, 1), -EAGAIN);
	ck_assert_uint_eq(now, t0);
	ck_assert_int_eq(qfs_admit_acquire_part(adm, 7, 7, QFS_ADMIT_WRITE, 1), 0); /* the cold one passes */
	ck_assert_uint_eq(part_info(1).throttled[QFS_ADMIT_WRITE], 2);
}
END_TEST

START_TEST(partition_shares_after_split)
{
	qfs_group_t one[] = { 7 }, two[] = { 7, 8 }, three[] = { 7, 9, 8 };
	struct qfs_admit_cfg cfg = { .part_units = { 0, 40 } };
	uint64_t w;
	int got[3];

	qfs_admit_configure(adm, &cfg);
	provision(7, 0, 90);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, one, 1, now), 0);
	/* the one partition is held at its ceiling, 40 of the table's 90 */
	hammer(one, 1, 10, got);
	ck_assert_int_ge(got[0], 390);
	ck_assert_int_le(got[0], 450);
	uint64_t before = part_info(0).consumed[QFS_ADMIT_WRITE];
	/* the split: shares of 45, the new partition with full buckets, the
	 * old one keeping its counts; together they take 80/s */
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, two, 2, now), 0);
	ck_assert(part_info(0).share[QFS_ADMIT_WRITE] == 45);
	ck_assert(part_info(1).share[QFS_ADMIT_WRITE] == 45);
	ck_assert_uint_eq(part_info(0).consumed[QFS_ADMIT_WRITE], before);
	ck_assert_uint_eq(part_info(1).consumed[QFS_ADMIT_WRITE], 0);
	ck_assert(part_info(1).ceiling[QFS_ADMIT_WRITE] == 40);
	ck_assert_int_eq(qfs_admit_try_part(adm, 7, 8, QFS_ADMIT_WRITE, 40, 0, now, &w), 0); /* full */
	now += S;
	hammer(two, 2, 10, got);
	ck_assert_int_ge(got[0] + got[1], 780);
	ck_assert_int_le(got[0] + got[1], 900);
	/* another split: 30 each, the table's 90/s is the bound */
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, three, 3, now), 0);
	for (size_t k = 0; k < 3; k++)
		ck_assert(part_info(k).share[QFS_ADMIT_WRITE] == 30);
	ck_assert_uint_eq(part_info(1).group, 9);
	ck_assert_uint_eq(part_info(1).consumed[QFS_ADMIT_WRITE], 0);
	ck_assert_uint_eq(part_info(2).group, 8);
	ck_assert_uint_gt(part_info(2).consumed[QFS_ADMIT_WRITE], 300);
	double b0 = burst(7); /* the 10/s and 50/s the ceilings left unused */
	ck_assert(b0 > 500);
	hammer(three, 3, 10, got);
	ck_assert_int_ge(got[0] + got[1] + got[2], 880);
	ck_assert_int_le(got[0] + got[1] + got[2], 1000 + b0); /* the table's rate and burst */
	ck_assert(burst(7) < b0);
	for (size_t k = 0; k < 3; k++)
		ck_assert_int_ge(got[k], 270);
	/* capacity raised: the shares follow */
	provision(7, 0, 300);
	ck_assert(part_info(0).share[QFS_ADMIT_WRITE] == 100);
}
END_TEST

/* Burst is per partition: each accrues its own from its unused share
 * (up to 300 s of the share), spends only its own, and starts empty when
 * it is new (a split's new half) or the capacity is set; the table's
 * figure is their sum. */
START_TEST(burst_per_partition)
{
	qfs_group_t two[] = { 7, 8 }, three[] = { 7, 9, 8 };
	int got[2];

	provision(7, 0, 100);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, two, 2, now), 0);
	ck_assert(part_info(0).burst[QFS_ADMIT_WRITE] == 0 && part_info(1).burst[QFS_ADMIT_WRITE] == 0);
	now += 100 * S; /* both idle (and full): 50/s each overflows */
	double b0 = part_info(0).burst[QFS_ADMIT_WRITE], b1 = part_info(1).burst[QFS_ADMIT_WRITE];
	ck_assert(b0 > 4990 && b0 < 5001);
	ck_assert(b1 > 4990 && b1 < 5001);
	ck_assert(burst(7) > b0 + b1 - 0.01 && burst(7) < b0 + b1 + 0.01);
	now += 1000 * S; /* capped at 300 s of the share, not of the table */
	ck_assert(part_info(0).burst[QFS_ADMIT_WRITE] == 50.0 * QFS_ADMIT_BURST_S);
	provision(7, 0, 100); /* capacity set: every partition empty again */
	ck_assert(part_info(0).burst[QFS_ADMIT_WRITE] == 0 && part_info(1).burst[QFS_ADMIT_WRITE] == 0);
	now += 100 * S;
	/* partition 7 alone is hot: its share, 8's unused share and its own
	 * burst, never 8's burst */
	hammer(two, 1, 10, got);
	/* 7's balance with its burst is spent (its burst pays its debt first) */
	ck_assert(part_info(0).burst[QFS_ADMIT_WRITE] + part_info(0).share_tokens[QFS_ADMIT_WRITE] < 2);
	ck_assert(part_info(0).burst[QFS_ADMIT_WRITE] < 50);
	ck_assert_uint_ge(part_info(0).bursted[QFS_ADMIT_WRITE], 4900);
	ck_assert_uint_eq(part_info(1).bursted[QFS_ADMIT_WRITE], 0);
	ck_assert(part_info(1).burst[QFS_ADMIT_WRITE] > 4990); /* 8 lent its share, kept its burst */
	ck_assert_int_ge(got[0], 50 + 500 + 450 + 4990);         /* first second, share, borrowed, burst */
	ck_assert_int_le(got[0], 50 + 500 + 550 + 5000 + 10);
	/* 8 spends its own burst */
	qfs_group_t eight[] = { 8 };
	int g8;
	hammer(eight, 1, 1, &g8);
	ck_assert_int_ge(g8, 900);
	ck_assert(part_info(1).burst[QFS_ADMIT_WRITE] < b1);
	/* a split: the new partition starts with an empty burst, the others
	 * keep theirs (capped at 300 s of the smaller share) */
	now += 50 * S;
	double keep = part_info(1).burst[QFS_ADMIT_WRITE];
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, three, 3, now), 0);
	ck_assert(part_info(1).burst[QFS_ADMIT_WRITE] == 0); /* 9, new */
	ck_assert(part_info(2).burst[QFS_ADMIT_WRITE] > keep - 1 && part_info(2).burst[QFS_ADMIT_WRITE] < keep + 1);
	/* no burst without headroom on the node: the request waits */
	struct qfs_admit_cfg cfg = { .node_units = { 0, 40 } };
	qfs_admit_configure(adm, &cfg);
	provision(7, 0, 30);
	ck_assert_int_eq(qfs_admit_set_parts(adm, 7, three, 3, now), 0);
	now += 100 * S;
	uint64_t w, c0 = part_info(2).consumed[QFS_ADMIT_WRITE];
	for (int n = 0; n < 100; n++)
		(void)qfs_admit_try_part(adm, 7, 8, QFS_ADMIT_WRITE, 1, 0, now, &w);
	/* 10 of its share, 10 borrowed, and burst only until less than 8 of
	 * the node's 40 would be left */
	uint64_t c = part_info(2).consumed[QFS_ADMIT_WRITE] - c0;
	ck_assert_uint_le(c, 33);
	ck_assert_uint_gt(c, 20);
	ck_assert_uint_gt(part_info(2).bursted[QFS_ADMIT_WRITE], 0);
	ck_assert(part_info(2).burst[QFS_ADMIT_WRITE] > 900);
}
END_TEST

/* Waiting requests are served in arrival order, one queue per (table,
 * partition, kind), and a newcomer joins the end even when tokens are
 * back.  Only the first of a queue sleeps through the injected clock (the
 * others wait for their turn), so the writers that sleep are the heads,
 * one after the other: their ids must come in arrival order.  The first
 * one's sleep is held at a gate until all four are queued. */
static uint64_t fnow;                 /* the FIFO test's clock, ns; atomic */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;                 /* with gate_mu */
static int sleepers[64], nsleep;      /* ids of the writers that slept, in order; gate_mu */
static int done;                      /* writers admitted; gate_mu */
static __thread int writer_id;
static struct qfs_admit *fifo_adm;

static uint64_t fifo_clock(void *arg)
{
	(void)arg;
	return __atomic_load_n(&fnow, __ATOMIC_SEQ_CST);
}

static void fifo_sleep(void *arg, uint64_t ns)
{
	(void)arg;
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	if (nsleep < 64)
		sleepers[nsleep++] = writer_id;
	pthread_mutex_unlock(&gate_mu);
	__atomic_fetch_add(&fnow, ns, __ATOMIC_SEQ_CST);
}

static void *fifo_writer(void *arg)
{
	writer_id = (int)(intptr_t)arg;
	int rc = qfs_admit_acquire(fifo_adm, 7, QFS_ADMIT_WRITE, 1);

	pthread_mutex_lock(&gate_mu);
	done += rc == 0;
	pthread_mutex_unlock(&gate_mu);
	return NULL;
}

static uint32_t fifo_waiting(void)
{
	struct qfs_admit_info i;

	ck_assert_int_eq(qfs_admit_info(fifo_adm, 7, fifo_clock(NULL), &i), 0);
	return i.waiting[QFS_ADMIT_WRITE];
}

START_TEST(acquire_fifo_order)
{
	struct qfs_admit_cfg cfg = { .wait_ms = 600000 };
	struct qfs_admit_cap cap = { .mode = QFS_ADMIT_PROVISIONED, .units = { 0, 1 } };
	struct qfs_admit_info i;
	pthread_t th[4];
	uint64_t w;

	fnow = 1000 * S;
	gate_open = 0;
	nsleep = done = 0;
	ck_assert_int_eq(qfs_admit_new(gac, &cfg, fifo_clock, fifo_sleep, NULL, &fifo_adm), 0);
	ck_assert_int_eq(qfs_admit_set(fifo_adm, 7, &cap, 1, fnow), 0);
	while (qfs_admit_try(fifo_adm, 7, QFS_ADMIT_WRITE, 1, 0, fnow, &w) == 0)
		;
	ck_assert_int_eq(qfs_admit_try(fifo_adm, 7, QFS_ADMIT_WRITE, 1, 1, fnow, &w), 0); /* a debt of 1 s */
	for (int k = 0; k < 4; k++) {
		if (k == 1) { /* tokens are back (no burst yet), but one waits: the newcomers queue */
			__atomic_fetch_add(&fnow, 1500 * MS, __ATOMIC_SEQ_CST);
			ck_assert_int_eq(qfs_admit_info(fifo_adm, 7, fnow, &i), 0);
			ck_assert(i.burst[QFS_ADMIT_WRITE] == 0);
		}
		ck_assert_int_eq(pthread_create(&th[k], NULL, fifo_writer, (void *)(intptr_t)k), 0);
		for (int spin = 0; fifo_waiting() < (uint32_t)k + 1; spin++) {
			ck_assert_int_lt(spin, 100000); /* 10 s of real time: it never queued */
			usleep(100);
		}
	}
	pthread_mutex_lock(&gate_mu);
	ck_assert_int_eq(done, 0); /* all four queued, none passed */
	pthread_mutex_unlock(&gate_mu);
	/* another table's queue does not wait behind table 7's */
	ck_assert_int_eq(qfs_admit_acquire(fifo_adm, 9, QFS_ADMIT_WRITE, 1), 0);
	pthread_mutex_lock(&gate_mu);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	for (int k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	ck_assert_int_eq(done, 4);
	/* the heads slept in arrival order: 0 first (the others may pass on
	 * what the one before left), never an earlier one after a later one */
	ck_assert_int_ge(nsleep, 1);
	ck_assert_int_eq(sleepers[0], 0);
	for (int k = 1; k < nsleep; k++)
		ck_assert_int_ge(sleepers[k], sleepers[k - 1]);
	ck_assert_int_eq(qfs_admit_info(fifo_adm, 7, fnow, &i), 0);
	ck_assert_uint_eq(i.throttled[QFS_ADMIT_WRITE], 4);
	ck_assert_uint_eq(i.expired[QFS_ADMIT_WRITE], 0);
	ck_assert_uint_eq(i.waiting[QFS_ADMIT_WRITE], 0);
	qfs_admit_free(fifo_adm);
	fifo_adm = NULL;
}
END_TEST

START_TEST(settings_parse)
{
	struct qfs_admit_cap c = { .mode = QFS_ADMIT_ON_DEMAND };

	ck_assert_int_eq(qfs_admit_parse("user.color", "red", 3, &c), 0);
	ck_assert_int_eq(qfs_admit_parse("user.quorumfs.other", "1", 1, &c), 0);
	ck_assert_int_eq(qfs_admit_parse("user.quorumfs.capacity", "provisioned", 11, &c), 1);
	ck_assert_int_eq(c.mode, QFS_ADMIT_PROVISIONED);
	ck_assert_int_eq(qfs_admit_parse("user.quorumfs.capacity", "on-demand\n", 10, &c), 1);
	ck_assert_int_eq(c.mode, QFS_ADMIT_ON_DEMAND);
	ck_assert_int_eq(qfs_admit_parse("user.quorumfs.rcu", "25", 2, &c), 1);
	ck_assert_int_eq(qfs_admit_parse("user.quorumfs.wcu", "40000", 5, &c), 1);
	ck_assert_uint_eq(c.units[QFS_ADMIT_READ], 25);
	ck_assert_uint_eq(c.units[QFS_ADMIT_WRITE], 40000);
	static const char *const bad[] = { "", "0", "-1", "40001", "1e3", " 5", "5 ", "99999999999999999999", "x" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		ck_assert_int_eq(qfs_admit_parse("user.quorumfs.wcu", bad[k], strlen(bad[k]), &c), -EINVAL);
	ck_assert_int_eq(qfs_admit_parse("user.quorumfs.capacity", "Provisioned", 11, &c), -EINVAL);
	ck_assert_int_eq(qfs_admit_parse("user.quorumfs.capacity", "on-demand\n\n", 11, &c), -EINVAL);
	ck_assert_int_eq(c.mode, QFS_ADMIT_ON_DEMAND);                 /* unchanged by the failures */
	ck_assert_uint_eq(c.units[QFS_ADMIT_WRITE], 40000);
	ck_assert(qfs_admit_read_units(0) == 1 && qfs_admit_read_units(4096) == 1 && qfs_admit_read_units(4097) == 2);
	ck_assert(qfs_admit_write_units(1) == 1 && qfs_admit_write_units(1024) == 1 && qfs_admit_write_units(1025) == 2);
}
END_TEST

static Suite *admit_suite(void)
{
	Suite *s = suite_create("admit");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, bucket_refill_and_burst_cap);
	tcase_add_test(tc, provisioned_rate_is_kept);
	tcase_add_test(tc, node_buckets_per_node);
	tcase_add_test(tc, eventual_reads_cost_half);
	tcase_add_test(tc, burst_accrues_empty_at_start_and_change);
	tcase_add_test(tc, burst_only_with_node_headroom);
	tcase_add_test(tc, on_demand_follows_peak);
	tcase_add_test(tc, gac_refills_two_routers);
	tcase_add_test(tc, acquire_waits_fails_and_is_bounded);
	tcase_add_test(tc, partition_share_of_provisioned);
	tcase_add_test(tc, partition_borrows_unused_share);
	tcase_add_test(tc, partition_ceiling_on_demand);
	tcase_add_test(tc, partition_shares_after_split);
	tcase_add_test(tc, burst_per_partition);
	tcase_add_test(tc, acquire_fifo_order);
	tcase_add_test(tc, settings_parse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(admit_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
