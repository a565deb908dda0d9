/*
 * admit.h - admission control (DESIGN.md section 6, doc/admission.md):
 * token buckets per table partition, per node and at the router, with a
 * global admission control (GAC) component that refills the router's local
 * buckets at intervals, bursting from unused capacity and on-demand tables
 * that adapt to their observed peak.
 *
 * Units are DynamoDB's: a read unit is up to 4 KiB read (strongly
 * consistent; an eventually consistent read, cfg.eventual_reads, is
 * charged half of it), a write unit up to 1 KiB written.  A table's capacity is
 * set by xattrs on its directory (user.quorumfs.capacity, .rcu, .wcu,
 * parsed here, stored by fs/ in the directory's inode, loaded by the
 * router); the state below is in memory only.
 *
 * Buckets per (table, kind), checked in this order for every request:
 *   node       one per storage node and kind, at the node's throughput,
 *              shared by every partition whose replica on that node the
 *              request uses (the placement callback says which: a write
 *              every replica's node, a read the serving node); no burst.
 *   partition  two buckets per partition (its replication group): its
 *              ceiling (cfg.part_units, every table; no burst) and its
 *              share of the table's rate (rate / partitions), whose
 *              overflow is the partition's own burst (up to
 *              QFS_ADMIT_BURST_S seconds of its share).  A partition
 *              whose share is spent borrows the unused share of the
 *              table's other partitions (adaptive capacity: what their
 *              balance holds above QFS_ADMIT_LEND_KEEP s) or spends its
 *              own burst, never beyond its ceiling.  The router tells
 *              the partitions (qfs_admit_set_parts) whenever it
 *              refreshes its map.
 *   local      the router's bucket for the table, fed only by GAC grants:
 *              once per gac interval an interval's worth (the refill), and
 *              when empty what the waiting request lacks; may hold a debt.
 *   GAC        the table's global bucket: refills at the table's rate up
 *              to one second's worth; what overflows is the table's
 *              unused capacity (its burst, up to QFS_ADMIT_BURST_S
 *              seconds' worth), never granted as tokens: a request on a
 *              partition's burst takes the same units from it, so the
 *              routers together spend no more than the table left
 *              unused.
 * A request is admitted when every bucket is positive; it then takes its
 * full cost from each (a bucket may go negative: the next request waits
 * for the debt to be refilled), so any request size passes eventually.
 * Or on burst: when its share or the table's rate is spent, while its
 * partition's balance with its burst is positive, the table's burst is
 * not empty and the nodes the request uses have headroom (more than
 * QFS_ADMIT_HEADROOM of a second of their throughput unused).
 * Waiting requests (qfs_admit_acquire*) queue in arrival order per
 * (table, partition, kind); only the first of a queue tries.
 *
 * Clock: every entry point takes now_ns (monotonic), so tests drive time;
 * qfs_admit_acquire reads the injected clock and sleeps through it.
 * Thread-safety: all functions may be called from any thread (one mutex per
 * struct qfs_admit, one per struct qfs_admit_gac; admit's before gac's).
 */
#ifndef QFS_ROUTER_ADMIT_H
#define QFS_ROUTER_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/item.h"

#define QFS_ADMIT_BURST_S 300          /* burst: up to this many seconds of unused capacity */
#define QFS_ADMIT_READ_UNIT 4096       /* bytes per read unit (strongly consistent) */
#define QFS_ADMIT_WRITE_UNIT 1024      /* bytes per write unit */
#define QFS_ADMIT_UNITS_MAX 40000      /* largest rcu/wcu setting (DynamoDB's table quota) */
#define QFS_ADMIT_PART_RCU 3000        /* DynamoDB's partition ceilings (doc/admission.md) */
#define QFS_ADMIT_PART_WCU 1000
#define QFS_ADMIT_WAIT_MS 5000         /* default bound of one request's wait */
#define QFS_ADMIT_GAC_MS 100           /* default GAC refill interval */
#define QFS_ADMIT_HEADROOM 0.2         /* node headroom: this share of a second's worth unused */
#define QFS_ADMIT_WINDOW_NS 1000000000ull /* consumed-rate and peak window: 1 s */
#define QFS_ADMIT_NODES_MAX 16         /* node buckets (node ids 1..16) */
#define QFS_ADMIT_LEND_KEEP 0.5        /* a partition lends its share's balance above this
					  many seconds' worth (adaptive capacity) */

enum qfs_admit_kind { QFS_ADMIT_READ = 0, QFS_ADMIT_WRITE, QFS_ADMIT_NKINDS };
enum qfs_admit_mode { QFS_ADMIT_ON_DEMAND = 0, QFS_ADMIT_PROVISIONED };

/* A table's settings (its directory's xattrs). */
struct qfs_admit_cap {
	enum qfs_admit_mode mode;
	uint32_t units[QFS_ADMIT_NKINDS]; /* rcu, wcu; 0: not set (no limit of that kind) */
};

/* Mount-wide settings (-o options, doc/quorumfs.8).  0 means "none". */
struct qfs_admit_cfg {
	uint32_t part_units[QFS_ADMIT_NKINDS];     /* per-partition ceiling, units/s; 0: none */
	uint32_t node_units[QFS_ADMIT_NKINDS];     /* node throughput, units/s; 0: unlimited */
	uint32_t ondemand_units[QFS_ADMIT_NKINDS]; /* on-demand allowance before any peak; 0: unlimited */
	uint32_t gac_ms;                           /* GAC grant interval; 0: QFS_ADMIT_GAC_MS */
	uint32_t wait_ms;                          /* bound of one wait; 0: QFS_ADMIT_WAIT_MS */
	int fail;                                  /* throttle=fail: -EAGAIN instead of waiting */
	int eventual_reads;                        /* reads are eventually consistent (-o
						      reads=eventual): read units cost half */
	uint32_t nodes;                            /* storage nodes, one bucket each
						      (1..QFS_ADMIT_NODES_MAX); 0: 1 */
};

/* One token bucket.  rate 0 is an unlimited bucket (always ready). */
struct qfs_admit_bucket {
	double rate;      /* units per second */
	double tokens;    /* balance, units; at most rate * 1 s; negative: a debt */
	double burst;     /* accrued unused capacity, units; <= rate * QFS_ADMIT_BURST_S */
	int burst_on;     /* overflow accrues as burst */
	uint64_t last_ns; /* time of the last refill */
};

/* Start b at rate units/s, full (one second's worth), with an empty burst. */
void qfs_admit_bucket_init(struct qfs_admit_bucket *b, double rate, int burst_on, uint64_t now_ns);
/* Add rate * elapsed; the excess over one second's worth goes to burst (if
 * burst_on, capped at QFS_ADMIT_BURST_S seconds' worth).  Time going
 * backwards adds nothing. */
void qfs_admit_bucket_refill(struct qfs_admit_bucket *b, uint64_t now_ns);
/* Nonzero if a request may start: unlimited, tokens > 0, or (headroom and
 * burst > 0). */
int qfs_admit_bucket_ready(const struct qfs_admit_bucket *b, int headroom);
/* Take units: tokens first, then burst if headroom, the rest as a debt. */
void qfs_admit_bucket_take(struct qfs_admit_bucket *b, double units, int headroom);
/* Nanoseconds until the bucket is ready again without burst (0 if ready). */
uint64_t qfs_admit_bucket_wait(const struct qfs_admit_bucket *b);

/* Parse a table setting.  name is a full xattr name: returns 0 (and leaves
 * cap alone) if it is not one of user.quorumfs.capacity/rcu/wcu, 1 and
 * applies it to cap if its value is valid ("on-demand" | "provisioned";
 * a decimal 1..QFS_ADMIT_UNITS_MAX; one trailing newline allowed), or
 * -EINVAL for a bad value (cap unchanged). */
int qfs_admit_parse(const char *name, const void *val, size_t len, struct qfs_admit_cap *cap);
/* Nonzero if name is in the table settings' namespace user.quorumfs. */
int qfs_admit_is_setting(const char *name);

/* ---- GAC: the tables' global buckets, shared by the routers ----
 * In-process now; the calls are the messages a GAC service would answer
 * (set a table's rate, grant tokens to a router), so several routers can
 * share one later. */
struct qfs_admit_gac;
/* *out set only on success; -ENOMEM. */
int qfs_admit_gac_new(struct qfs_admit_gac **out);
void qfs_admit_gac_free(struct qfs_admit_gac *g); /* NULL: nothing */
/* Set table group's rates (units/s; 0 unlimited).  reset != 0: full
 * tokens and an empty burst (new table, capacity just set); otherwise the
 * balance and burst carry over (an on-demand table's allowance moving).
 * -ENOMEM. */
int qfs_admit_gac_set(struct qfs_admit_gac *g, qfs_group_t group, const double rate[QFS_ADMIT_NKINDS],
		      int reset, uint64_t now_ns);
/* Grant up to want units of kind to a router from the tokens on hand.
 * Returns the units granted (want for an unlimited or unknown table, 0 if
 * empty).  What overflows the table's bucket is its unused capacity, its
 * burst (up to QFS_ADMIT_BURST_S seconds' worth), never granted as
 * tokens: a router spends it only through a partition's own burst, with
 * qfs_admit_gac_burst_take, so the routers of a table together spend no
 * more than the table left unused. */
double qfs_admit_gac_grant(struct qfs_admit_gac *g, qfs_group_t group, enum qfs_admit_kind kind, double want,
			   uint64_t now_ns);
/* The table's burst of kind in units (0 if unknown or unlimited). */
double qfs_admit_gac_burst(struct qfs_admit_gac *g, qfs_group_t group, enum qfs_admit_kind kind, uint64_t now_ns);
/* Take up to want units from the table's burst; returns the units taken
 * (0 for an unknown or unlimited table). */
double qfs_admit_gac_burst_take(struct qfs_admit_gac *g, qfs_group_t group, enum qfs_admit_kind kind, double want,
				uint64_t now_ns);
void qfs_admit_gac_drop(struct qfs_admit_gac *g, qfs_group_t group);

/* ---- the router's admission control ---- */
struct qfs_admit;
typedef uint64_t (*qfs_admit_clock_fn)(void *arg);             /* monotonic ns */
typedef void (*qfs_admit_sleep_fn)(void *arg, uint64_t ns);

/* New admission control over gac (not owned; shared by routers), with
 * the mount's settings cfg (copied).  clock/sleep NULL: the monotonic clock
 * and nanosleep.  *out set only on success; -ENOMEM. */
int qfs_admit_new(struct qfs_admit_gac *gac, const struct qfs_admit_cfg *cfg, qfs_admit_clock_fn clock,
		  qfs_admit_sleep_fn sleep, void *clock_arg, struct qfs_admit **out);
void qfs_admit_free(struct qfs_admit *a); /* NULL: nothing */
/* Replace the mount-wide settings (before traffic; buckets re-made). */
void qfs_admit_configure(struct qfs_admit *a, const struct qfs_admit_cfg *cfg);
const struct qfs_admit_cfg *qfs_admit_config(const struct qfs_admit *a);

/* Which nodes' buckets a request of kind on group draws from: a mask with
 * bit i - 1 for node i (0: every node).  Called with no admission lock
 * held, before each try and settle. */
typedef uint32_t (*qfs_admit_place_fn)(void *arg, qfs_group_t group, enum qfs_admit_kind kind);
/* Set the placement (NULL: every node, the default). */
void qfs_admit_set_placement(struct qfs_admit *a, qfs_admit_place_fn fn, void *arg);
/* Node id's bucket of kind at now_ns: balance (units) and rate (units/s, 0
 * unlimited).  -EINVAL for an id out of range. */
int qfs_admit_node_info(struct qfs_admit *a, uint32_t id, enum qfs_admit_kind kind, uint64_t now_ns,
			double *tokens, double *rate);

/* Nonzero if group's settings are known (qfs_admit_set since start;
 * requests and qfs_admit_set_parts alone do not make them known). */
int qfs_admit_known(struct qfs_admit *a, qfs_group_t group);
/* Set table group's capacity.  reset != 0 (created, or capacity just set):
 * the burst starts empty; a first load at mount also starts empty.
 * -ENOMEM. */
int qfs_admit_set(struct qfs_admit *a, qfs_group_t group, const struct qfs_admit_cap *cap, int reset,
		  uint64_t now_ns);
/* Forget a dropped table. */
void qfs_admit_drop(struct qfs_admit *a, qfs_group_t group);

/* Table group's partitions are now parts[0..n) (their groups, the
 * router's map order): partitions that stay keep their buckets and counts,
 * new ones start with full buckets, and every share becomes the table's
 * rate / n.  Until called, a table is one partition in group itself.
 * -EINVAL (n == 0), -ENOMEM (nothing changed). */
int qfs_admit_set_parts(struct qfs_admit *a, qfs_group_t group, const qfs_group_t *parts, size_t n,
			uint64_t now_ns);

/* The _part variants below charge partition part (its group) of table
 * group; part 0 or one not among the table's partitions is its first. */

/* Try to admit a request of units of kind on group at now_ns (read units
 * count half with cfg.eventual_reads, here and in settle).  force: admit
 * even if over capacity (a wait ran out).  0: admitted and charged;
 * -EAGAIN: over capacity, nothing charged, *wait_ns = a hint of when to
 * try again.  -ENOMEM. */
int qfs_admit_try(struct qfs_admit *a, qfs_group_t group, enum qfs_admit_kind kind, double units, int force,
		  uint64_t now_ns, uint64_t *wait_ns);
int qfs_admit_try_part(struct qfs_admit *a, qfs_group_t group, qfs_group_t part, enum qfs_admit_kind kind,
		       double units, int force, uint64_t now_ns, uint64_t *wait_ns);
/* Charge units more to an admitted request (a read's size known after it
 * ran); never waits. */
void qfs_admit_settle(struct qfs_admit *a, qfs_group_t group, enum qfs_admit_kind kind, double units,
		      uint64_t now_ns);
void qfs_admit_settle_part(struct qfs_admit *a, qfs_group_t group, qfs_group_t part, enum qfs_admit_kind kind,
			   double units, uint64_t now_ns);
/* Admit a request, waiting while over capacity, at most cfg.wait_ms;
 * after that the request proceeds (counted as wait_expired).  Waiters
 * are served in arrival order per (table, partition, kind): a request
 * that finds its queue non-empty joins its end without trying; the first
 * sleeps until its buckets say (a condition variable on CLOCK_MONOTONIC
 * to an absolute deadline; with an injected clock or sleep, the injected
 * sleep, the others looking again every 0.2 ms of real time) and wakes
 * the next when it leaves.  qfs_admit_set, _configure and _set_parts wake
 * every waiter to look again.  With cfg.fail: -EAGAIN at once instead of
 * waiting.  Counts a throttled request once, and its wait time.  0,
 * -EAGAIN, -ENOMEM. */
int qfs_admit_acquire(struct qfs_admit *a, qfs_group_t group, enum qfs_admit_kind kind, double units);
int qfs_admit_acquire_part(struct qfs_admit *a, qfs_group_t group, qfs_group_t part, enum qfs_admit_kind kind,
			   double units);

/* Per-table figures, for the control tree. */
struct qfs_admit_info {
	struct qfs_admit_cap cap;
	double limit[QFS_ADMIT_NKINDS];  /* table rate now, units/s (0: unlimited) */
	double rate[QFS_ADMIT_NKINDS];   /* consumed in the last full window, units/s */
	double peak[QFS_ADMIT_NKINDS];   /* highest window rate seen, units/s */
	double burst[QFS_ADMIT_NKINDS];  /* burst balance, units */
	uint64_t throttled[QFS_ADMIT_NKINDS]; /* requests that waited or got EAGAIN */
	uint64_t wait_us[QFS_ADMIT_NKINDS];   /* total time waited, microseconds */
	uint64_t expired[QFS_ADMIT_NKINDS];   /* waits that ran out (request proceeded) */
	uint64_t consumed[QFS_ADMIT_NKINDS];  /* units charged since start (rounded down) */
	uint32_t waiting[QFS_ADMIT_NKINDS];   /* requests waiting now (queued in acquire) */
};
/* Figures of group at now_ns; -ENOENT if unknown. */
int qfs_admit_info(struct qfs_admit *a, qfs_group_t group, uint64_t now_ns, struct qfs_admit_info *out);
/* Read units of a read of len bytes (at least 1), write units of a write. */
double qfs_admit_read_units(size_t len);
double qfs_admit_write_units(size_t len);
/* Append " mode M rcu N wcu N ... throttled_writes N" for info. */
void qfs_admit_format(const struct qfs_admit_info *i, struct qfs_buf *out);

/* Per-partition figures, for the control tree. */
struct qfs_admit_part_info {
	qfs_group_t group;                     /* the partition's replication group */
	size_t nparts;                         /* partitions of its table */
	double share[QFS_ADMIT_NKINDS];        /* its share of the table's rate, units/s (0: unlimited) */
	double share_tokens[QFS_ADMIT_NKINDS]; /* its share's balance, units (may be a debt) */
	double ceiling[QFS_ADMIT_NKINDS];      /* its ceiling, units/s (0: none) */
	uint64_t consumed[QFS_ADMIT_NKINDS];   /* units charged to it since start */
	uint64_t borrowed[QFS_ADMIT_NKINDS];   /* of those, units borrowed from other partitions' shares */
	double burst[QFS_ADMIT_NKINDS];        /* its burst balance, units */
	uint64_t bursted[QFS_ADMIT_NKINDS];    /* units charged to it paid from its burst */
	uint64_t throttled[QFS_ADMIT_NKINDS];  /* its requests that waited or got EAGAIN */
};
/* Figures of table group's i-th partition (0-based, map order) at now_ns;
 * -ENOENT if the table is unknown or has no i-th partition. */
int qfs_admit_part_info(struct qfs_admit *a, qfs_group_t group, size_t i, uint64_t now_ns,
			struct qfs_admit_part_info *out);
/* How many tries partition part of table group had refused by its
 * ceiling since start (0 if unknown): the split checks count a partition
 * whose count moved in a second as hot (doc/partitions.md). */
uint64_t qfs_admit_ceiling_hits(struct qfs_admit *a, qfs_group_t group, qfs_group_t part);
/* Append " group G share_rcu X ... throttled_writes N read_burst X
 * write_burst X bursted_rcu N bursted_wcu N" for i. */
void qfs_admit_format_part(const struct qfs_admit_part_info *i, struct qfs_buf *out);

#endif
