/*
 * metrics.h - lock-free counters and latency histograms for client-side
 * metrics (DESIGN.md section 7).
 *
 * A histogram has one bucket per power of two of microseconds; percentiles
 * are reported as the upper bound of the bucket that holds them, so p99 is
 * exact to within a factor of two, which is what an operator needs to see a
 * regression.  Recording is a few relaxed atomic adds: safe from any thread.
 */
#ifndef QFS_ROUTER_METRICS_H
#define QFS_ROUTER_METRICS_H

#include <stdint.h>

#include "common/buf.h"

#define QFS_HIST_BUCKETS 40

struct qfs_hist {
	uint64_t count;                      /* operations recorded */
	uint64_t errors;                     /* of which failed */
	uint64_t max_us;                     /* slowest, microseconds */
	uint64_t bucket[QFS_HIST_BUCKETS];   /* bucket i: latency < 2^i us */
};

/* Record one operation that took ns nanoseconds; failed != 0 counts an error. */
void qfs_hist_record(struct qfs_hist *h, uint64_t ns, int failed);

/* Latency at percentile pct (0 < pct <= 100), in microseconds: the upper
 * bound of its bucket, capped at the maximum seen; 0 if empty. */
uint64_t qfs_hist_pct(const struct qfs_hist *h, double pct);

/* Append " count N errors N p50_us N p99_us N max_us N" to out. */
void qfs_hist_format(const struct qfs_hist *h, struct qfs_buf *out);


#endif
