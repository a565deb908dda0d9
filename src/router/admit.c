/*
 * admit.c - admission control: token buckets, bursting, GAC and on-demand
 * peaks (contract and bucket order in admit.h, user's view in
 * doc/admission.md).
 *
 * Lock order: a->mu before g->mu.  Neither is held while sleeping.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "router/admit.h"

#define TABLE_BUCKETS 64
#define NS_PER_S 1e9
#define POLL_MIN_NS 200000ull    /* shortest wait hint: 0.2 ms */

static double dmin(double a, double b) { return a < b ? a : b; }
static double dmax(double a, double b) { return a > b ? a : b; }

/* ---- one bucket ---- */

void qfs_admit_bucket_init(struct qfs_admit_bucket *b, double rate, int burst_on, uint64_t now_ns)
{
	b->rate = rate;
	b->tokens = rate;
	b->burst = 0;
	b->burst_on = burst_on;
	b->last_ns = now_ns;
}

void qfs_admit_bucket_refill(struct qfs_admit_bucket *b, uint64_t now_ns)
{
	if (now_ns <= b->last_ns)
		return;
	double dt = (double)(now_ns - b->last_ns) / NS_PER_S;
	b->last_ns = now_ns;
	if (b->rate <= 0)
		return;
	b->tokens += b->rate * dt;
	if (b->tokens > b->rate) {
		if (b->burst_on) {
			b->burst += b->tokens - b->rate;
			if (b->burst > b->rate * QFS_ADMIT_BURST_S)
				b->burst = b->rate * QFS_ADMIT_BURST_S;
		}
		b->tokens = b->rate;
	}
}

int qfs_admit_bucket_ready(const struct qfs_admit_bucket *b, int headroom)
{
	return b->rate <= 0 || b->tokens > 0 || (headroom && b->burst > 0);
}

void qfs_admit_bucket_take(struct qfs_admit_bucket *b, double units, int headroom)
{
	if (b->rate <= 0)
		return;
	double from = b->tokens > 0 ? dmin(units, b->tokens) : 0;
	b->tokens -= from;
	units -= from;
	if (headroom && units > 0 && b->burst > 0) {
		double fb = dmin(units, b->burst);
		b->burst -= fb;
		units -= fb;
	}
	b->tokens -= units;
}

uint64_t qfs_admit_bucket_wait(const struct qfs_admit_bucket *b)
{
	if (b->rate <= 0 || b->tokens > 0)
		return 0;
	return (uint64_t)(-b->tokens / b->rate * NS_PER_S) + 1;
}

/* A forced take may not leave more debt than wait_s seconds' worth. */
static void clamp_debt(struct qfs_admit_bucket *b, double wait_s)
{
	if (b->rate > 0 && b->tokens < -b->rate * wait_s)
		b->tokens = -b->rate * wait_s;
}

/* ---- settings ---- */

#define SETTING_PREFIX "user.quorumfs."

int qfs_admit_is_setting(const char *name)
{
	return strncmp(name, SETTING_PREFIX, sizeof(SETTING_PREFIX) - 1) == 0;
}

int qfs_admit_parse(const char *name, const void *val, size_t len, struct qfs_admit_cap *cap)
{
	char v[32];
	int kind;

	if (!qfs_admit_is_setting(name))
		return 0;
	name += sizeof(SETTING_PREFIX) - 1;
	if (strcmp(name, "capacity") == 0)
		kind = -1;
	else if (strcmp(name, "rcu") == 0)
		kind = QFS_ADMIT_READ;
	else if (strcmp(name, "wcu") == 0)
		kind = QFS_ADMIT_WRITE;
	else
		return 0;
	if (len > 0 && ((const char *)val)[len - 1] == '\n')
		len--;
	if (len == 0 || len >= sizeof(v))
		return -EINVAL;
	memcpy(v, val, len);
	v[len] = '\0';
	if (kind < 0) {
		if (strcmp(v, "on-demand") == 0)
			cap->mode = QFS_ADMIT_ON_DEMAND;
		else if (strcmp(v, "provisioned") == 0)
			cap->mode = QFS_ADMIT_PROVISIONED;
		else
			return -EINVAL;
		return 1;
	}
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		n = n * 10 + (uint64_t)(v[i] - '0');
		if (n > QFS_ADMIT_UNITS_MAX)
			return -EINVAL;
	}
	if (n == 0)
		return -EINVAL;
	cap->units[kind] = (uint32_t)n;
	return 1;
}

double qfs_admit_read_units(size_t len)
{
	return len <= QFS_ADMIT_READ_UNIT ? 1.0 : (double)((len + QFS_ADMIT_READ_UNIT - 1) / QFS_ADMIT_READ_UNIT);
}

double qfs_admit_write_units(size_t len)
{
	return len <= QFS_ADMIT_WRITE_UNIT ? 1.0 : (double)((len + QFS_ADMIT_WRITE_UNIT - 1) / QFS_ADMIT_WRITE_UNIT);
}

/* ---- GAC ---- */

struct gac_table {
	qfs_group_t group;
	struct qfs_admit_bucket b[QFS_ADMIT_NKINDS]; /* the table's global buckets; their burst
							is the table's unused capacity, spent
							only through a partition's burst */
	struct gac_table *next;                      /* hash chain */
};

struct qfs_admit_gac {
	pthread_mutex_t mu;
	struct gac_table *tab[TABLE_BUCKETS]; /* protected by mu */
};

int qfs_admit_gac_new(struct qfs_admit_gac **out)
{
	struct qfs_admit_gac *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->mu, NULL);
	*out = g;
	return 0;
}

void qfs_admit_gac_free(struct qfs_admit_gac *g)
{
	if (!g)
		return;
	for (int i = 0; i < TABLE_BUCKETS; i++) {
		while (g->tab[i]) {
			struct gac_table *t = g->tab[i];
			g->tab[i] = t->next;
			free(t);
		}
	}
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static struct gac_table **gac_slot(struct qfs_admit_gac *g, qfs_group_t group)
{
	struct gac_table **p = &g->tab[group % TABLE_BUCKETS];

	while (*p && (*p)->group != group)
		p = &(*p)->next;
	return p;
}

int qfs_admit_gac_set(struct qfs_admit_gac *g, qfs_group_t group, const double rate[QFS_ADMIT_NKINDS],
		      int reset, uint64_t now_ns)
{
	pthread_mutex_lock(&g->mu);
	struct gac_table **p = gac_slot(g, group), *t = *p;
	if (!t) {
		if (!(t = calloc(1, sizeof(*t)))) {
			pthread_mutex_unlock(&g->mu);
			return -ENOMEM;
		}
		t->group = group;
		*p = t;
		reset = 1;
	}
	for (int k = 0; k < QFS_ADMIT_NKINDS; k++) {
		struct qfs_admit_bucket *b = &t->b[k];
		if (reset) {
			qfs_admit_bucket_init(b, rate[k], 1, now_ns);
		} else if (b->rate != rate[k]) {
			qfs_admit_bucket_refill(b, now_ns);
			b->rate = rate[k];
			if (rate[k] > 0 && b->tokens > rate[k])
				b->tokens = rate[k];
			if (rate[k] > 0 && b->burst > rate[k] * QFS_ADMIT_BURST_S)
				b->burst = rate[k] * QFS_ADMIT_BURST_S;
		}
	}
	pthread_mutex_unlock(&g->mu);
	return 0;
}

double qfs_admit_gac_grant(struct qfs_admit_gac *g, qfs_group_t group, enum qfs_admit_kind kind, double want,
			   uint64_t now_ns)
{
	double got = want;

	pthread_mutex_lock(&g->mu);
	struct gac_table *t = *gac_slot(g, group);
	if (t && t->b[kind].rate > 0) {
		struct qfs_admit_bucket *b = &t->b[kind];
		qfs_admit_bucket_refill(b, now_ns);
		got = b->tokens > 0 ? dmin(want, b->tokens) : 0;
		b->tokens -= got;
	}
	pthread_mutex_unlock(&g->mu);
	return got;
}

double qfs_admit_gac_burst(struct qfs_admit_gac *g, qfs_group_t group, enum qfs_admit_kind kind, uint64_t now_ns)
{
	double v = 0;

	pthread_mutex_lock(&g->mu);
	struct gac_table *t = *gac_slot(g, group);
	if (t) {
		qfs_admit_bucket_refill(&t->b[kind], now_ns);
		v = t->b[kind].burst;
	}
	pthread_mutex_unlock(&g->mu);
	return v;
}

double qfs_admit_gac_burst_take(struct qfs_admit_gac *g, qfs_group_t group, enum qfs_admit_kind kind, double want,
				uint64_t now_ns)
{
	double got = 0;

	pthread_mutex_lock(&g->mu);
	struct gac_table *t = *gac_slot(g, group);
	if (t && t->b[kind].rate > 0 && want > 0) {
		qfs_admit_bucket_refill(&t->b[kind], now_ns);
		got = dmin(want, t->b[kind].burst);
		t->b[kind].burst -= got;
	}
	pthread_mutex_unlock(&g->mu);
	return got;
}

void qfs_admit_gac_drop(struct qfs_admit_gac *g, qfs_group_t group)
{
	pthread_mutex_lock(&g->mu);
	struct gac_table **p = gac_slot(g, group), *t = *p;
	if (t) {
		*p = t->next;
		free(t);
	}
	pthread_mutex_unlock(&g->mu);
}

/* ---- the router's side ---- */

struct admit_dim {
	double limit;                  /* the table's rate of this kind, units/s; 0: unlimited */
	double local;                  /* router's local bucket: granted units, may be negative */
	uint64_t next_grant_ns;        /* no GAC grant before this */
	uint64_t win_start_ns;         /* current consumption window */
	double win_units;              /* units charged in it */
	double rate, peak;             /* last full window's rate, highest; units/s */
	uint64_t throttled, wait_ns, expired;
	double consumed;               /* units charged since start (halves of eventual reads) */
};

/* One partition of a table (its replication group). */
struct admit_part {
	qfs_group_t group;
	struct qfs_admit_bucket share[QFS_ADMIT_NKINDS]; /* its share: table rate / partitions
							    (rate 0: unlimited table), and its burst */
	struct qfs_admit_bucket ceil[QFS_ADMIT_NKINDS];  /* the ceiling cfg.part_units (0: none) */
	double consumed[QFS_ADMIT_NKINDS];  /* units charged since start */
	double borrowed[QFS_ADMIT_NKINDS];  /* units taken from the other partitions' shares */
	double bursted[QFS_ADMIT_NKINDS];   /* units taken from its own burst (share[].burst) */
	uint64_t throttled[QFS_ADMIT_NKINDS]; /* its requests that waited or got EAGAIN */
	uint64_t ceil_hits;                 /* tries its ceiling refused (either kind) */
};

struct admit_table {
	qfs_group_t group;
	struct qfs_admit_cap cap;
	struct admit_dim d[QFS_ADMIT_NKINDS];
	int set;                       /* settings given (qfs_admit_set), not only partitions */
	struct admit_part *parts;      /* key order as the router's map; never empty */
	size_t nparts;
	struct admit_table *next;      /* hash chain */
};

/* A request waiting for its turn (qfs_admit_acquire_part), on its stack. */
struct admit_waiter {
	qfs_group_t group, part;       /* its queue: table, partition charged, kind */
	enum qfs_admit_kind kind;
	pthread_cond_t cv;             /* its wakeup (CLOCK_MONOTONIC); with a->mu */
	struct admit_waiter *next;     /* arrival order; protected by a->mu */
};

struct qfs_admit {
	pthread_mutex_t mu;
	struct admit_waiter *wq_head, *wq_tail;          /* waiting requests, oldest first; mu */
	struct qfs_admit_gac *gac;                       /* not owned */
	struct qfs_admit_cfg cfg;                        /* protected by mu */
	struct qfs_admit_bucket node[QFS_ADMIT_NODES_MAX][QFS_ADMIT_NKINDS]; /* per node; mu */
	qfs_admit_place_fn place;                        /* set before traffic; NULL: every node */
	void *place_arg;
	struct admit_table *tab[TABLE_BUCKETS];          /* protected by mu */
	qfs_admit_clock_fn clock;
	qfs_admit_sleep_fn sleep;
	void *clock_arg;
	int injected;                                    /* clock or sleep given (tests) */
};

static uint64_t mono_clock(void *arg)
{
	(void)arg;
	return qfs_clock_mono_ns();
}

static void real_sleep(void *arg, uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
	(void)arg;
	nanosleep(&ts, NULL);
}

/* Wake every waiter (settings changed: their waits may be shorter).
 * a->mu held. */
static void queue_wake_all(struct qfs_admit *a)
{
	for (struct admit_waiter *x = a->wq_head; x; x = x->next)
		pthread_cond_signal(&x->cv);
}

static void make_node(struct qfs_admit *a, uint64_t now_ns)
{
	for (int i = 0; i < QFS_ADMIT_NODES_MAX; i++)
		for (int k = 0; k < QFS_ADMIT_NKINDS; k++)
			qfs_admit_bucket_init(&a->node[i][k], a->cfg.node_units[k], 0, now_ns);
}

/* Number of node buckets in use.  a->mu held. */
static uint32_t nnodes(const struct qfs_admit *a)
{
	uint32_t n = a->cfg.nodes;

	return n == 0 ? 1 : n > QFS_ADMIT_NODES_MAX ? QFS_ADMIT_NODES_MAX : n;
}

/* The node mask of a request (all nodes for 0 or bits out of range).
 * Called before a->mu is taken: the callback may lock the cell. */
static uint32_t place(struct qfs_admit *a, qfs_group_t group, enum qfs_admit_kind kind)
{
	qfs_admit_place_fn fn;
	void *arg;

	pthread_mutex_lock(&a->mu);
	fn = a->cfg.node_units[kind] ? a->place : NULL; /* unlimited nodes: no need */
	arg = a->place_arg;
	pthread_mutex_unlock(&a->mu);
	return fn ? fn(arg, group, kind) : 0;
}

static uint32_t node_mask(const struct qfs_admit *a, uint32_t mask)
{
	uint32_t all = nnodes(a) >= 32 ? UINT32_MAX : (1u << nnodes(a)) - 1;

	return mask & all ? mask & all : all;
}

void qfs_admit_set_placement(struct qfs_admit *a, qfs_admit_place_fn fn, void *arg)
{
	pthread_mutex_lock(&a->mu);
	a->place = fn;
	a->place_arg = arg;
	pthread_mutex_unlock(&a->mu);
}

int qfs_admit_node_info(struct qfs_admit *a, uint32_t id, enum qfs_admit_kind kind, uint64_t now_ns,
			double *tokens, double *rate)
{
	pthread_mutex_lock(&a->mu);
	if (id == 0 || id > nnodes(a) || kind >= QFS_ADMIT_NKINDS) {
		pthread_mutex_unlock(&a->mu);
		return -EINVAL;
	}
	qfs_admit_bucket_refill(&a->node[id - 1][kind], now_ns);
	*tokens = a->node[id - 1][kind].tokens;
	*rate = a->node[id - 1][kind].rate;
	pthread_mutex_unlock(&a->mu);
	return 0;
}

int qfs_admit_new(struct qfs_admit_gac *gac, const struct qfs_admit_cfg *cfg, qfs_admit_clock_fn clock,
		  qfs_admit_sleep_fn sleep, void *clock_arg, struct qfs_admit **out)
{
	struct qfs_admit *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->mu, NULL);
	a->gac = gac;
	a->clock = clock ? clock : mono_clock;
	a->sleep = sleep ? sleep : real_sleep;
	a->clock_arg = clock_arg;
	a->injected = clock || sleep;
	if (cfg)
		a->cfg = *cfg;
	make_node(a, a->clock(a->clock_arg));
	*out = a;
	return 0;
}

void qfs_admit_free(struct qfs_admit *a)
{
	if (!a)
		return;
	for (int i = 0; i < TABLE_BUCKETS; i++) {
		while (a->tab[i]) {
			struct admit_table *t = a->tab[i];
			a->tab[i] = t->next;
			free(t->parts);
			free(t);
		}
	}
	pthread_mutex_destroy(&a->mu);
	free(a);
}

static double wait_s(const struct qfs_admit *a)
{
	return (a->cfg.wait_ms ? a->cfg.wait_ms : QFS_ADMIT_WAIT_MS) / 1000.0;
}

static uint64_t gac_ns(const struct qfs_admit *a)
{
	return (uint64_t)(a->cfg.gac_ms ? a->cfg.gac_ms : QFS_ADMIT_GAC_MS) * 1000000u;
}

static struct admit_table **slot(struct qfs_admit *a, qfs_group_t group)
{
	struct admit_table **p = &a->tab[group % TABLE_BUCKETS];

	while (*p && (*p)->group != group)
		p = &(*p)->next;
	return p;
}

/* The table's rate of kind k from its settings and (on-demand) its peak. */
static double table_limit(const struct qfs_admit *a, const struct admit_table *t, int k)
{
	if (t->cap.mode == QFS_ADMIT_PROVISIONED)
		return t->cap.units[k];
	double init = a->cfg.ondemand_units[k];
	return init > 0 ? dmax(init, 2 * t->d[k].peak) : 0;
}

/* Give every partition of t its share of the table's rate: limit / n
 * (unlimited for an unlimited table), with its own burst (what overflows
 * its second's worth, up to QFS_ADMIT_BURST_S seconds of its share).
 * reset: full buckets, an empty burst; otherwise the balance and burst
 * carry over, capped at the new rate's second and QFS_ADMIT_BURST_S
 * seconds (a new partition: full, no burst).  a->mu held. */
static void shares(struct admit_table *t, int reset, uint64_t now_ns)
{
	for (size_t i = 0; i < t->nparts; i++)
		for (int k = 0; k < QFS_ADMIT_NKINDS; k++) {
			struct qfs_admit_bucket *b = &t->parts[i].share[k];
			double r = t->d[k].limit > 0 ? t->d[k].limit / (double)t->nparts : 0;
			if (reset) {
				qfs_admit_bucket_init(b, r, 1, now_ns);
			} else if (b->rate != r || !b->burst_on) {
				qfs_admit_bucket_refill(b, now_ns);
				if (b->rate <= 0) {
					b->tokens = r;
					b->burst = 0;
				}
				b->rate = r;
				b->burst_on = 1;
				if (b->tokens > r)
					b->tokens = r;
				if (b->burst > r * QFS_ADMIT_BURST_S)
					b->burst = r * QFS_ADMIT_BURST_S;
			}
		}
}

/* Push t's limits to the GAC (reset: full tokens, empty burst) and to the
 * partitions' shares. */
static int publish(struct qfs_admit *a, struct admit_table *t, int reset, uint64_t now_ns)
{
	double rate[QFS_ADMIT_NKINDS];

	for (int k = 0; k < QFS_ADMIT_NKINDS; k++) {
		t->d[k].limit = table_limit(a, t, k);
		rate[k] = t->d[k].limit;
	}
	shares(t, reset, now_ns);
	return qfs_admit_gac_set(a->gac, t->group, rate, reset, now_ns);
}

/* Start partition p's ceilings (full) for the current settings. */
static void make_ceil(struct qfs_admit *a, struct admit_part *p, uint64_t now_ns)
{
	for (int k = 0; k < QFS_ADMIT_NKINDS; k++)
		qfs_admit_bucket_init(&p->ceil[k], a->cfg.part_units[k], 0, now_ns);
}

/* Build t's per-partition state for the current settings (a->mu held). */
static void make_parts(struct qfs_admit *a, struct admit_table *t, uint64_t now_ns)
{
	for (size_t i = 0; i < t->nparts; i++)
		make_ceil(a, &t->parts[i], now_ns);
	for (int k = 0; k < QFS_ADMIT_NKINDS; k++) {
		struct admit_dim *d = &t->d[k];
		d->local = 0;
		d->next_grant_ns = 0;
	}
}

/* The partition of group in t; an unknown group (0, or a map the router
 * has not told yet) is the first partition. */
static struct admit_part *part_of(struct admit_table *t, qfs_group_t part)
{
	for (size_t i = 0; i < t->nparts; i++)
		if (t->parts[i].group == part)
			return &t->parts[i];
	return &t->parts[0];
}

/* t for group, made (on-demand) if unknown.  a->mu held.  NULL: -ENOMEM. */
static struct admit_table *table_get(struct qfs_admit *a, qfs_group_t group, uint64_t now_ns)
{
	struct admit_table **p = slot(a, group), *t = *p;

	if (t)
		return t;
	if (!(t = calloc(1, sizeof(*t))))
		return NULL;
	if (!(t->parts = calloc(1, sizeof(*t->parts)))) {
		free(t);
		return NULL;
	}
	t->nparts = 1; /* a new table is one partition in the table's group */
	t->parts[0].group = group;
	t->group = group;
	t->cap.mode = QFS_ADMIT_ON_DEMAND;
	for (int k = 0; k < QFS_ADMIT_NKINDS; k++)
		t->d[k].win_start_ns = now_ns;
	make_parts(a, t, now_ns);
	if (publish(a, t, 1, now_ns)) {
		free(t->parts);
		free(t);
		return NULL;
	}
	*p = t;
	return t;
}

void qfs_admit_configure(struct qfs_admit *a, const struct qfs_admit_cfg *cfg)
{
	uint64_t now = a->clock(a->clock_arg);

	pthread_mutex_lock(&a->mu);
	a->cfg = *cfg;
	make_node(a, now);
	for (int i = 0; i < TABLE_BUCKETS; i++)
		for (struct admit_table *t = a->tab[i]; t; t = t->next) {
			make_parts(a, t, now);
			publish(a, t, 1, now);
		}
	queue_wake_all(a);
	pthread_mutex_unlock(&a->mu);
}

const struct qfs_admit_cfg *qfs_admit_config(const struct qfs_admit *a)
{
	return &a->cfg;
}

int qfs_admit_known(struct qfs_admit *a, qfs_group_t group)
{
	pthread_mutex_lock(&a->mu);
	struct admit_table *t = *slot(a, group);
	int known = t && t->set;
	pthread_mutex_unlock(&a->mu);
	return known;
}

int qfs_admit_set(struct qfs_admit *a, qfs_group_t group, const struct qfs_admit_cap *cap, int reset,
		  uint64_t now_ns)
{
	int rc = -ENOMEM;

	pthread_mutex_lock(&a->mu);
	int existed = *slot(a, group) != NULL;
	struct admit_table *t = table_get(a, group, now_ns);
	if (t) {
		t->cap = *cap;
		t->set = 1;
		if (reset || !existed) {
			make_parts(a, t, now_ns);
			for (int k = 0; k < QFS_ADMIT_NKINDS; k++)
				t->d[k].peak = 0;
		}
		rc = publish(a, t, 1, now_ns); /* new settings: an empty burst */
	}
	queue_wake_all(a); /* waits may be shorter now */
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void qfs_admit_drop(struct qfs_admit *a, qfs_group_t group)
{
	pthread_mutex_lock(&a->mu);
	struct admit_table **p = slot(a, group), *t = *p;
	if (t) {
		*p = t->next;
		free(t->parts);
		free(t);
	}
	pthread_mutex_unlock(&a->mu);
	qfs_admit_gac_drop(a->gac, group);
}

int qfs_admit_set_parts(struct qfs_admit *a, qfs_group_t group, const qfs_group_t *parts, size_t n,
			uint64_t now_ns)
{
	struct admit_part *v;

	if (n == 0)
		return -EINVAL;
	if (!(v = calloc(n, sizeof(*v))))
		return -ENOMEM;
	pthread_mutex_lock(&a->mu);
	struct admit_table *t = table_get(a, group, now_ns);
	if (!t) {
		pthread_mutex_unlock(&a->mu);
		free(v);
		return -ENOMEM;
	}
	size_t was = t->nparts;
	for (size_t i = 0; i < n; i++) {
		struct admit_part *old = NULL;
		for (size_t j = 0; j < t->nparts && !old; j++)
			if (t->parts[j].group == parts[i])
				old = &t->parts[j];
		if (old) { /* a partition that stays keeps its buckets and counts */
			v[i] = *old;
		} else { /* a new one (a split's upper half): full ceilings */
			v[i].group = parts[i];
			make_ceil(a, &v[i], now_ns);
		}
	}
	free(t->parts);
	t->parts = v;
	t->nparts = n;
	shares(t, 0, now_ns); /* limit / n each; a new partition starts full */
	queue_wake_all(a);
	pthread_mutex_unlock(&a->mu);
	if (was != n)
		QFS_LOG(QFS_LOG_INFO, "partition shares table=%llu parts=%zu", (unsigned long long)group, n);
	return 0;
}

/* Close the consumption windows that ended by now; an on-demand table's
 * allowance follows its peak (2x at once). */
static void roll(struct qfs_admit *a, struct admit_table *t, uint64_t now_ns)
{
	int changed = 0;

	for (int k = 0; k < QFS_ADMIT_NKINDS; k++) {
		struct admit_dim *d = &t->d[k];
		if (now_ns < d->win_start_ns + QFS_ADMIT_WINDOW_NS)
			continue;
		uint64_t n = (now_ns - d->win_start_ns) / QFS_ADMIT_WINDOW_NS;
		double r = d->win_units * NS_PER_S / QFS_ADMIT_WINDOW_NS;
		if (r > d->peak) {
			d->peak = r;
			changed = 1;
		}
		d->rate = n == 1 ? r : 0; /* windows after the first passed idle */
		d->win_units = 0;
		d->win_start_ns += n * QFS_ADMIT_WINDOW_NS;
	}
	if (changed && t->cap.mode == QFS_ADMIT_ON_DEMAND)
		publish(a, t, 0, now_ns);
}

/* Is the router's local bucket of d positive?  If not, ask the GAC for
 * what this request lacks, and, once per gac interval, for an interval's
 * worth more: the refill.  a->mu held. */
static int local_ready(struct qfs_admit *a, struct admit_table *t, int k, double units, uint64_t now_ns)
{
	struct admit_dim *d = &t->d[k];

	if (d->limit <= 0 || d->local > 0)
		return 1;
	double want = -d->local + units;
	if (now_ns >= d->next_grant_ns) {
		want += d->limit * (double)gac_ns(a) / NS_PER_S;
		d->next_grant_ns = now_ns + gac_ns(a);
	}
	d->local += qfs_admit_gac_grant(a->gac, t->group, k, want, now_ns);
	return d->local > 0;
}

/* What share bucket b may lend: its balance above QFS_ADMIT_LEND_KEEP of
 * a second's worth, so a partition that uses its share (its balance
 * hovers near 0) lends nothing and an idle one (full) lends its rate. */
static double lendable(const struct qfs_admit_bucket *b)
{
	return b->rate > 0 ? dmax(0, b->tokens - b->rate * QFS_ADMIT_LEND_KEEP) : 0;
}

/* Refill the shares of kind k of t's partitions; the units the partitions
 * other than p hold unused (adaptive capacity may lend them).  a->mu held. */
static double unused_shares(struct admit_table *t, struct admit_part *p, int k, uint64_t now_ns)
{
	double spare = 0;

	for (size_t i = 0; i < t->nparts; i++) {
		struct qfs_admit_bucket *b = &t->parts[i].share[k];
		qfs_admit_bucket_refill(b, now_ns);
		if (&t->parts[i] != p)
			spare += lendable(b);
	}
	return spare;
}

/* Take units from p's share: its own tokens, then the other partitions'
 * unused ones (borrowed, counted; as of their last refill), the rest as
 * p's debt.  a->mu held. */
static void take_share(struct admit_table *t, struct admit_part *p, int k, double units)
{
	struct qfs_admit_bucket *own = &p->share[k];

	if (own->rate <= 0)
		return;
	double from = own->tokens > 0 ? dmin(units, own->tokens) : 0;
	own->tokens -= from;
	units -= from;
	for (size_t i = 0; i < t->nparts && units > 0; i++) {
		struct qfs_admit_bucket *b = &t->parts[i].share[k];
		if (&t->parts[i] == p || lendable(b) <= 0)
			continue;
		double lend = dmin(units, lendable(b));
		b->tokens -= lend;
		units -= lend;
		p->borrowed[k] += lend;
	}
	own->tokens -= units;
}

/* Take units of kind k from the buckets of the nodes in mask, partition
 * p's ceiling and share, the local bucket, and count them; force (a wait
 * ran out, or a settle) caps the debt left.  by_burst: the request is
 * admitted on p's burst (its share or the table's rate spent): the burst
 * of p, as far as the table's in the GAC goes too, pays what the share
 * and the local bucket (the table's rate) lack to cover the request, one
 * unit of burst a unit at both; the rest is their debt.  a->mu held. */
static void charge(struct qfs_admit *a, struct admit_table *t, struct admit_part *p, int k, double units,
		   int force, int by_burst, uint32_t mask, uint64_t now_ns)
{
	struct admit_dim *d = &t->d[k];

	for (uint32_t i = 0; i < nnodes(a); i++)
		if (mask & 1u << i) {
			qfs_admit_bucket_take(&a->node[i][k], units, 0);
			if (force)
				clamp_debt(&a->node[i][k], wait_s(a));
		}
	qfs_admit_bucket_take(&p->ceil[k], units, 0);
	if (by_burst) { /* the burst pays the share's debt and this request,
			   as far as it goes, and as far as the table's does */
		struct qfs_admit_bucket *b = &p->share[k];
		double need = dmax(units - b->tokens, d->limit > 0 ? units - d->local : 0);
		double pay = dmin(b->burst, dmax(need, 0));
		pay = qfs_admit_gac_burst_take(a->gac, t->group, k, pay, now_ns);
		b->burst -= pay; /* a unit of burst pays a unit at both levels */
		b->tokens += pay - units;
		p->bursted[k] += pay;
		if (d->limit > 0) /* what the table's burst did not pay, its rate does */
			d->local += pay - units;
	} else {
		take_share(t, p, k, units);
		if (d->limit > 0)
			d->local -= units;
	}
	p->consumed[k] += units;
	if (force) {
		clamp_debt(&p->ceil[k], wait_s(a));
		clamp_debt(&p->share[k], wait_s(a));
		if (d->local < -d->limit * wait_s(a))
			d->local = -d->limit * wait_s(a);
	}
	d->win_units += units;
	d->consumed += units;
}

/* What units of kind cost: an eventually consistent read half a strong
 * one (DynamoDB).  Caller holds a->mu. */
static double cost(const struct qfs_admit *a, enum qfs_admit_kind kind, double units)
{
	return kind == QFS_ADMIT_READ && a->cfg.eventual_reads ? units / 2 : units;
}

/* qfs_admit_try_part with a->mu held and the node mask known (already
 * passed through node_mask); units already at their cost.  *rpart: the
 * group of the partition charged (the queue key of a waiting request). */
static int try_locked(struct qfs_admit *a, qfs_group_t group, qfs_group_t part, enum qfs_admit_kind kind,
		      double units, int force, uint64_t now_ns, uint32_t mask, uint64_t *wait_ns,
		      qfs_group_t *rpart)
{
	struct admit_table *t = table_get(a, group, now_ns);
	if (!t)
		return -ENOMEM;
	roll(a, t, now_ns);
	struct admit_dim *d = &t->d[kind];
	struct admit_part *p = part_of(t, part);
	*rpart = p->group;
	/* every node the request uses: ready, and with unused throughput
	 * (more than QFS_ADMIT_HEADROOM of a second's worth left after this
	 * request) for the burst */
	int headroom = 1, nodes_ready = 1;
	uint64_t w = 0;
	for (uint32_t i = 0; i < nnodes(a); i++) {
		struct qfs_admit_bucket *node = &a->node[i][kind];
		uint64_t wn;

		if (!(mask & 1u << i))
			continue;
		qfs_admit_bucket_refill(node, now_ns);
		if (node->rate > 0 && node->tokens - units <= node->rate * QFS_ADMIT_HEADROOM)
			headroom = 0;
		if (!qfs_admit_bucket_ready(node, 0))
			nodes_ready = 0;
		if ((wn = qfs_admit_bucket_wait(node)) > w)
			w = wn;
	}
	qfs_admit_bucket_refill(&p->ceil[kind], now_ns);
	int ceil_ok = qfs_admit_bucket_ready(&p->ceil[kind], 0);
	/* within the table's rate: its share, else the others' unused shares
	 * (adaptive capacity), and the router's local bucket (GAC); else above
	 * it: the partition's own burst, while the nodes have headroom */
	double spare = unused_shares(t, p, kind, now_ns); /* refills every share: borrowing
							    below lends balances as of now */
	int share_in = qfs_admit_bucket_ready(&p->share[kind], 0) || spare > 0;
	int pre = nodes_ready && ceil_ok;
	int in_rate = pre && share_in && local_ready(a, t, kind, units, now_ns);
	/* burst: the partition's balance with its burst positive, and the
	 * table's (the local bucket with the table's unused capacity, the
	 * GAC's burst, that other partitions and routers may spend too) */
	struct qfs_admit_bucket *sb = &p->share[kind];
	double gb = !in_rate && headroom && sb->rate > 0 && sb->burst > 0 ? qfs_admit_gac_burst(a->gac, group, kind, now_ns)
									  : 0;
	int by_burst = !in_rate && pre && gb > 0 && sb->tokens + sb->burst > 0 && d->local + gb > 0;
	if (!force && !in_rate && !by_burst) {
		if (!ceil_ok)
			p->ceil_hits++;
		uint64_t wp = qfs_admit_bucket_wait(&p->ceil[kind]);
		if (wp > w)
			w = wp;
		/* the sooner of: the share and the local bucket positive, or
		 * the share's balance with its burst positive */
		uint64_t wr = share_in ? 0 : qfs_admit_bucket_wait(sb);
		if (d->limit > 0 && d->local <= 0) {
			uint64_t wl = (uint64_t)(-d->local / d->limit * NS_PER_S) + 1;
			if (wl > wr)
				wr = wl;
		}
		if (headroom && sb->rate > 0 && sb->burst > 0 && gb > 0) {
			double bal = dmin(sb->tokens + sb->burst, d->local + gb);
			uint64_t wb = bal > 0 ? 0 : (uint64_t)(-bal / sb->rate * NS_PER_S) + 1;
			if (wb < wr)
				wr = wb;
		}
		if (wr > w)
			w = wr;
		*wait_ns = w > POLL_MIN_NS ? w : POLL_MIN_NS;
		return -EAGAIN;
	}
	charge(a, t, p, kind, units, force, by_burst && !in_rate, mask, now_ns);
	return 0;
}

int qfs_admit_try(struct qfs_admit *a, qfs_group_t group, enum qfs_admit_kind kind, double units, int force,
		  uint64_t now_ns, uint64_t *wait_ns)
{
	return qfs_admit_try_part(a, group, 0, kind, units, force, now_ns, wait_ns);
}

int qfs_admit_try_part(struct qfs_admit *a, qfs_group_t group, qfs_group_t part, enum qfs_admit_kind kind,
		       double units, int force, uint64_t now_ns, uint64_t *wait_ns)
{
	uint32_t mask = place(a, part ? part : group, kind);
	qfs_group_t rp;

	pthread_mutex_lock(&a->mu);
	int rc = try_locked(a, group, part, kind, cost(a, kind, units), force, now_ns, node_mask(a, mask), wait_ns,
			    &rp);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void qfs_admit_settle(struct qfs_admit *a, qfs_group_t group, enum qfs_admit_kind kind, double units,
		      uint64_t now_ns)
{
	qfs_admit_settle_part(a, group, 0, kind, units, now_ns);
}

void qfs_admit_settle_part(struct qfs_admit *a, qfs_group_t group, qfs_group_t part, enum qfs_admit_kind kind,
			   double units, uint64_t now_ns)
{
	if (units <= 0)
		return;
	uint32_t mask = place(a, part ? part : group, kind);

	pthread_mutex_lock(&a->mu);
	struct admit_table *t = table_get(a, group, now_ns);
	if (t) {
		struct admit_part *p = part_of(t, part);
		if (p->share[kind].rate > 0)
			unused_shares(t, p, kind, now_ns); /* refill before borrowing */
		charge(a, t, p, kind, cost(a, kind, units), 1, 0, node_mask(a, mask), now_ns);
	}
	pthread_mutex_unlock(&a->mu);
}

/* ---- waiting: FIFO per (table, partition, kind) ----
 * A request that finds others of its queue waiting joins the end without
 * trying (no newcomer takes the tokens refilled for the first); only the
 * first of a queue tries, sleeping until the moment its buckets say
 * (pthread_cond_timedwait on CLOCK_MONOTONIC to an absolute deadline, or
 * the injected sleep), and wakes the next when it leaves.  Every waiter
 * leaves at its own bound (forced).  Queues of different partitions or
 * tables do not wait for each other. */

static int same_queue(const struct admit_waiter *x, const struct admit_waiter *y)
{
	return x->group == y->group && x->part == y->part && x->kind == y->kind;
}

/* The first waiter of w's queue.  a->mu held. */
static struct admit_waiter *queue_first(struct qfs_admit *a, const struct admit_waiter *w)
{
	for (struct admit_waiter *x = a->wq_head; x; x = x->next)
		if (same_queue(x, w))
			return x;
	return NULL;
}

static void queue_add(struct qfs_admit *a, struct admit_waiter *w)
{
	w->next = NULL;
	*(a->wq_head ? &a->wq_tail->next : &a->wq_head) = w;
	a->wq_tail = w;
}

/* Take w off the list and wake the next of its queue.  a->mu held. */
static void queue_remove(struct qfs_admit *a, struct admit_waiter *w)
{
	struct admit_waiter **pp = &a->wq_head, *prev = NULL;

	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = w->next;
	if (a->wq_tail == w)
		a->wq_tail = prev;
	struct admit_waiter *n = queue_first(a, w);
	if (n)
		pthread_cond_signal(&n->cv);
}

/* Sleep until now + ns (the first of a queue) or until woken (the others,
 * who wait for their turn, at most until ns), with a->mu held on entry
 * and on return.  The injected sleep (tests) runs without a->mu; the
 * others of a queue then look again every POLL_MIN_NS of real time. */
static void queue_wait(struct qfs_admit *a, struct admit_waiter *w, int first, uint64_t now, uint64_t ns)
{
	if (a->injected) {
		if (first) {
			pthread_mutex_unlock(&a->mu);
			a->sleep(a->clock_arg, ns);
			pthread_mutex_lock(&a->mu);
			return;
		}
		ns = POLL_MIN_NS;
		now = qfs_clock_mono_ns();
	}
	uint64_t at = now + ns;
	struct timespec ts = { .tv_sec = (time_t)(at / 1000000000u), .tv_nsec = (long)(at % 1000000000u) };
	pthread_cond_timedwait(&w->cv, &a->mu, &ts);
}

int qfs_admit_acquire(struct qfs_admit *a, qfs_group_t group, enum qfs_admit_kind kind, double units)
{
	return qfs_admit_acquire_part(a, group, 0, kind, units);
}

int qfs_admit_acquire_part(struct qfs_admit *a, qfs_group_t group, qfs_group_t part, enum qfs_admit_kind kind,
			   double units)
{
	uint64_t t0 = a->clock(a->clock_arg), now = t0, w = 0;
	uint32_t mask = place(a, part ? part : group, kind);
	struct admit_waiter me = { .group = group, .kind = kind };
	int forced = 0, rc;

	pthread_mutex_lock(&a->mu);
	uint64_t bound = (uint64_t)(wait_s(a) * NS_PER_S);
	double c = cost(a, kind, units);
	/* the queue's key: the partition charged (an unknown one is the first) */
	struct admit_table *t = table_get(a, group, now);
	me.part = t ? part_of(t, part)->group : part;
	rc = queue_first(a, &me) ? -EAGAIN
				 : try_locked(a, group, part, kind, c, 0, now, node_mask(a, mask), &w, &me.part);
	if (rc != -EAGAIN) {
		pthread_mutex_unlock(&a->mu);
		return rc;
	}
	if (!a->cfg.fail) {
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&me.cv, &ca);
		pthread_condattr_destroy(&ca);
		queue_add(a, &me);
		for (;;) {
			int first = queue_first(a, &me) == &me;
			uint64_t left = bound - (now - t0);
			uint64_t ns = first && w < left ? w : left;
			queue_wait(a, &me, first, now, ns);
			now = a->clock(a->clock_arg);
			forced = now - t0 >= bound;
			if (!forced && queue_first(a, &me) != &me)
				continue; /* not our turn yet */
			if (a->cfg.node_units[kind]) { /* where it goes may have moved */
				pthread_mutex_unlock(&a->mu);
				mask = place(a, part ? part : group, kind);
				pthread_mutex_lock(&a->mu);
			}
			qfs_group_t rp;
			rc = try_locked(a, group, part, kind, c, forced, now, node_mask(a, mask), &w, &rp);
			if (rc != -EAGAIN)
				break;
		}
		queue_remove(a, &me);
		pthread_cond_destroy(&me.cv);
	}
	/* counted once, with its wait */
	if ((t = *slot(a, group))) {
		part_of(t, me.part)->throttled[kind]++;
		t->d[kind].throttled++;
		t->d[kind].wait_ns += now - t0;
		t->d[kind].expired += (uint64_t)forced;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int qfs_admit_info(struct qfs_admit *a, qfs_group_t group, uint64_t now_ns, struct qfs_admit_info *out)
{
	struct qfs_admit_info i;

	memset(&i, 0, sizeof(i));
	pthread_mutex_lock(&a->mu);
	struct admit_table *t = *slot(a, group);
	if (!t) {
		pthread_mutex_unlock(&a->mu);
		return -ENOENT;
	}
	roll(a, t, now_ns);
	i.cap = t->cap;
	for (int k = 0; k < QFS_ADMIT_NKINDS; k++) {
		const struct admit_dim *d = &t->d[k];
		i.limit[k] = d->limit;
		i.rate[k] = d->rate;
		i.peak[k] = d->peak;
		i.throttled[k] = d->throttled;
		i.wait_us[k] = d->wait_ns / 1000u;
		i.expired[k] = d->expired;
		i.consumed[k] = (uint64_t)d->consumed;
		for (const struct admit_waiter *x = a->wq_head; x; x = x->next)
			i.waiting[k] += x->group == group && x->kind == (enum qfs_admit_kind)k;
		for (size_t j = 0; j < t->nparts; j++) { /* the partitions' bursts */
			qfs_admit_bucket_refill(&t->parts[j].share[k], now_ns);
			i.burst[k] += t->parts[j].share[k].burst;
		}
		i.burst[k] = dmin(i.burst[k], qfs_admit_gac_burst(a->gac, group, k, now_ns)); /* spendable */
	}
	pthread_mutex_unlock(&a->mu);
	*out = i;
	return 0;
}

void qfs_admit_format(const struct qfs_admit_info *i, struct qfs_buf *out)
{
	qfs_buf_printf(out,
		       " mode %s rcu %u wcu %u read_limit %.0f write_limit %.0f read_rate %.1f write_rate %.1f"
		       " read_peak %.1f write_peak %.1f read_burst %.1f write_burst %.1f"
		       " consumed_rcu %llu consumed_wcu %llu read_wait_ms %llu write_wait_ms %llu"
		       " read_wait_expired %llu write_wait_expired %llu throttled_reads %llu throttled_writes %llu",
		       i->cap.mode == QFS_ADMIT_PROVISIONED ? "provisioned" : "on-demand",
		       i->cap.units[QFS_ADMIT_READ], i->cap.units[QFS_ADMIT_WRITE], i->limit[QFS_ADMIT_READ],
		       i->limit[QFS_ADMIT_WRITE], i->rate[QFS_ADMIT_READ], i->rate[QFS_ADMIT_WRITE],
		       i->peak[QFS_ADMIT_READ], i->peak[QFS_ADMIT_WRITE], i->burst[QFS_ADMIT_READ],
		       i->burst[QFS_ADMIT_WRITE], (unsigned long long)i->consumed[QFS_ADMIT_READ],
		       (unsigned long long)i->consumed[QFS_ADMIT_WRITE],
		       (unsigned long long)(i->wait_us[QFS_ADMIT_READ] / 1000),
		       (unsigned long long)(i->wait_us[QFS_ADMIT_WRITE] / 1000),
		       (unsigned long long)i->expired[QFS_ADMIT_READ], (unsigned long long)i->expired[QFS_ADMIT_WRITE],
		       (unsigned long long)i->throttled[QFS_ADMIT_READ],
		       (unsigned long long)i->throttled[QFS_ADMIT_WRITE]);
}

uint64_t qfs_admit_ceiling_hits(struct qfs_admit *a, qfs_group_t group, qfs_group_t part)
{
	uint64_t n = 0;

	pthread_mutex_lock(&a->mu);
	struct admit_table *t = *slot(a, group);
	for (size_t i = 0; t && i < t->nparts; i++)
		if (t->parts[i].group == part)
			n = t->parts[i].ceil_hits;
	pthread_mutex_unlock(&a->mu);
	return n;
}

int qfs_admit_part_info(struct qfs_admit *a, qfs_group_t group, size_t i, uint64_t now_ns,
			struct qfs_admit_part_info *out)
{
	struct qfs_admit_part_info pi;

	memset(&pi, 0, sizeof(pi));
	pthread_mutex_lock(&a->mu);
	struct admit_table *t = *slot(a, group);
	if (!t || i >= t->nparts) {
		pthread_mutex_unlock(&a->mu);
		return -ENOENT;
	}
	struct admit_part *p = &t->parts[i];
	pi.group = p->group;
	pi.nparts = t->nparts;
	for (int k = 0; k < QFS_ADMIT_NKINDS; k++) {
		qfs_admit_bucket_refill(&p->share[k], now_ns);
		qfs_admit_bucket_refill(&p->ceil[k], now_ns);
		pi.share[k] = p->share[k].rate;
		pi.share_tokens[k] = p->share[k].tokens;
		pi.ceiling[k] = p->ceil[k].rate;
		pi.consumed[k] = (uint64_t)p->consumed[k];
		pi.borrowed[k] = (uint64_t)p->borrowed[k];
		pi.burst[k] = p->share[k].burst;
		pi.bursted[k] = (uint64_t)p->bursted[k];
		pi.throttled[k] = p->throttled[k];
	}
	pthread_mutex_unlock(&a->mu);
	*out = pi;
	return 0;
}

void qfs_admit_format_part(const struct qfs_admit_part_info *i, struct qfs_buf *out)
{
	qfs_buf_printf(out,
		       " group %016llx share_rcu %.1f share_wcu %.1f ceiling_rcu %.0f ceiling_wcu %.0f"
		       " consumed_rcu %llu consumed_wcu %llu borrowed_rcu %llu borrowed_wcu %llu"
		       " throttled_reads %llu throttled_writes %llu read_burst %.1f write_burst %.1f"
		       " bursted_rcu %llu bursted_wcu %llu",
		       (unsigned long long)i->group, i->share[QFS_ADMIT_READ], i->share[QFS_ADMIT_WRITE],
		       i->ceiling[QFS_ADMIT_READ], i->ceiling[QFS_ADMIT_WRITE],
		       (unsigned long long)i->consumed[QFS_ADMIT_READ],
		       (unsigned long long)i->consumed[QFS_ADMIT_WRITE],
		       (unsigned long long)i->borrowed[QFS_ADMIT_READ],
		       (unsigned long long)i->borrowed[QFS_ADMIT_WRITE],
		       (unsigned long long)i->throttled[QFS_ADMIT_READ],
		       (unsigned long long)i->throttled[QFS_ADMIT_WRITE], i->burst[QFS_ADMIT_READ],
		       i->burst[QFS_ADMIT_WRITE], (unsigned long long)i->bursted[QFS_ADMIT_READ],
		       (unsigned long long)i->bursted[QFS_ADMIT_WRITE]);
}
