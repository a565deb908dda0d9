/*
 * clock.c - wall and monotonic clocks (contract in clock.h).  Only drivers
 * call these; the consensus core is handed the time in its events.
 */
#include "config.h"

#include <time.h>

#include "common/clock.h"

/* Wall-clock time now (CLOCK_REALTIME).  Thread-safe. */
void qfs_clock_now(struct qfs_ts *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	out->sec = (int64_t)ts.tv_sec;
	out->nsec = (uint32_t)ts.tv_nsec;
}

/* Monotonic nanoseconds since an arbitrary origin.  Thread-safe. */
uint64_t qfs_clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Monotonic milliseconds since an arbitrary origin.  Thread-safe. */
uint64_t qfs_clock_mono_ms(void)
{
	return qfs_clock_mono_ns() / 1000000u;
}

/* See clock.h. */
void qfs_clock_deadline(clockid_t clk, uint64_t ms, struct timespec *out)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	*out = ts;
}
