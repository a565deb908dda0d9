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

/* One time budget per call (thread-local).  The FUSE session runs every
 * request between qfs_clock_call_begin and qfs_clock_call_end on its
 * thread; the cell asks qfs_clock_call_deadline for the deadline of each
 * wait for a leader or quorum.  Inside a call the first wait fixes the
 * deadline at now + timeout_ms and every later wait of the same call shares
 * it, until a wait succeeds (qfs_clock_call_progress): then the next wait
 * gets a fresh budget (work that makes progress is not cut, a call with no
 * quorum fails after one timeout however many lookups it makes).  Outside a
 * call (archiver, keeper, tests) every wait gets now + timeout_ms.  Monotonic
 * milliseconds.  Calls nest: the outermost begin/end pair counts. */
void qfs_clock_call_begin(void);
void qfs_clock_call_end(void);
uint64_t qfs_clock_call_deadline(uint64_t now_ms, uint32_t timeout_ms);
void qfs_clock_call_progress(void);
/* Inside a call: its next waits end at most ms from now (a caller with a
 * fallback for a missing quorum); outside a call: nothing. */
void qfs_clock_call_limit(uint32_t ms);
/* 1 inside a call (between begin and end), else 0. */
int qfs_clock_call_active(void);

/* Parse a duration for an option: "2" (seconds), "0.5", "500ms", "2s",
 * "1m", "1h", "1d".  *out (ms) is set on success only.  0, or -1 when s is
 * not a positive duration of at least 1 ms and at most max_ms. */
int qfs_clock_parse_ms(const char *s, uint64_t max_ms, uint64_t *out);

#endif
