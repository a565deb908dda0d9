/*
 * clock.h - the two clocks quorumfs reads: wall time for file timestamps and
 * a monotonic clock for latencies, timeouts and ticks.  Only drivers read
 * clocks; src/repl is handed the time in events.
 */
#ifndef QFS_COMMON_CLOCK_H
#define QFS_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

#include "common/item.h"

/* Current wall-clock time (CLOCK_REALTIME) with nanoseconds. */
void qfs_clock_now(struct qfs_ts *out);
/* Monotonic time in nanoseconds / milliseconds (CLOCK_MONOTONIC). */
uint64_t qfs_clock_mono_ns(void);
uint64_t qfs_clock_mono_ms(void);
/* *out = now on clock clk + ms: an absolute deadline for
 * pthread_cond_timedwait (clk must be the condition variable's clock). */
void qfs_clock_deadline(clockid_t clk, uint64_t ms, struct timespec *out);

#endif
