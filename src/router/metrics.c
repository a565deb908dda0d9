/*
 * metrics.c - histograms for client-side metrics; see metrics.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "router/metrics.h"

void qfs_hist_record(struct qfs_hist *h, uint64_t ns, int failed)
{
	uint64_t us = ns / 1000;
	unsigned b = 0;

	while (b < QFS_HIST_BUCKETS - 1 && (1ull << b) <= us)
		b++;
	__atomic_fetch_add(&h->bucket[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
	if (failed)
		__atomic_fetch_add(&h->errors, 1, __ATOMIC_RELAXED);
	uint64_t old = __atomic_load_n(&h->max_us, __ATOMIC_RELAXED);
	while (us > old &&
	       !__atomic_compare_exchange_n(&h->max_us, &old, us, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

uint64_t qfs_hist_pct(const struct qfs_hist *h, double pct)
{
	uint64_t total = 0, seen = 0;

	for (unsigned i = 0; i < QFS_HIST_BUCKETS; i++)
		total += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
	if (total == 0)
		return 0;
	uint64_t max = __atomic_load_n(&h->max_us, __ATOMIC_RELAXED);
	uint64_t want = (uint64_t)((double)total * pct / 100.0 + 0.5);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < QFS_HIST_BUCKETS; i++) {
		seen += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
		if (seen >= want)
			return (1ull << i) < max ? (1ull << i) : max; /* a bucket bound, never above the max */
	}
	return max;
}

void qfs_hist_format(const struct qfs_hist *h, struct qfs_buf *out)
{
	qfs_buf_printf(out, " count %llu errors %llu p50_us %llu p99_us %llu max_us %llu",
		       (unsigned long long)__atomic_load_n(&h->count, __ATOMIC_RELAXED),
		       (unsigned long long)__atomic_load_n(&h->errors, __ATOMIC_RELAXED),
		       (unsigned long long)qfs_hist_pct(h, 50), (unsigned long long)qfs_hist_pct(h, 99),
		       (unsigned long long)__atomic_load_n(&h->max_us, __ATOMIC_RELAXED));
}

