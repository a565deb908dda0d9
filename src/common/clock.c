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
