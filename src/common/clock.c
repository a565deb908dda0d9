/*
 * clock.c - wall and monotonic clocks (contract in clock.h).  Only drivers
 * call these; the consensus core is handed the time in its events.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

/* The calling thread's call budget (see clock.h): depth of begin/end
 * nesting and the shared deadline (0: not fixed yet).  Thread-local, so no
 * lock. */
static __thread struct {
	uint32_t depth;
	uint64_t deadline_ms;
} call_budget;

/* See clock.h. */
void qfs_clock_call_begin(void)
{
	if (call_budget.depth++ == 0)
		call_budget.deadline_ms = 0;
}

/* See clock.h. */
void qfs_clock_call_end(void)
{
	if (call_budget.depth && --call_budget.depth == 0)
		call_budget.deadline_ms = 0;
}

/* See clock.h. */
uint64_t qfs_clock_call_deadline(uint64_t now_ms, uint32_t timeout_ms)
{
	if (!call_budget.depth)
		return now_ms + timeout_ms;
	if (!call_budget.deadline_ms)
		call_budget.deadline_ms = now_ms + timeout_ms;
	return call_budget.deadline_ms;
}

/* See clock.h. */
void qfs_clock_call_progress(void)
{
	call_budget.deadline_ms = 0;
}

/* See clock.h. */
void qfs_clock_call_limit(uint32_t ms)
{
	uint64_t d;

	if (!call_budget.depth)
		return;
	d = qfs_clock_mono_ms() + ms;
	if (!call_budget.deadline_ms || call_budget.deadline_ms > d)
		call_budget.deadline_ms = d;
}

/* See clock.h. */
int qfs_clock_call_active(void)
{
	return call_budget.depth > 0;
}

int qfs_clock_parse_ms(const char *s, uint64_t max_ms, uint64_t *out)
{
	char *e;
	double v;

	errno = 0;
	v = strtod(s, &e);
	if (errno || e == s || v <= 0)
		return -1;
	if (!strcmp(e, "ms"))
		;
	else if (!*e || !strcmp(e, "s"))
		v *= 1000;
	else if (!strcmp(e, "m"))
		v *= 60000;
	else if (!strcmp(e, "h"))
		v *= 3600000;
	else if (!strcmp(e, "d"))
		v *= 86400000;
	else
		return -1;
	if (v < 1 || v > (double)max_ms)
		return -1;
	*out = (uint64_t)v;
	return 0;
}
