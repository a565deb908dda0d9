/*
 * log.c - one-line-per-event logging (contract in log.h).
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2) to stderr, so concurrent lines never interleave (POSIX makes
 * writes up to PIPE_BUF atomic on pipes; on files and ttys one write call
 * keeps a line in one piece in practice).  After qfs_log_use_syslog() lines
 * go to syslog(3), which is thread-safe, without our timestamp.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LOG_LINE_MAX 4096 /* bytes of one line, newline included; longer lines are cut */

int qfs_log_level = QFS_LOG_INFO;

static atomic_int use_syslog; /* 1 once qfs_log_use_syslog() ran */

static const char *const level_names[] = { "ERR", "WARN", "INFO", "DEBUG" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Format one line and emit it.  Callers normally go through QFS_LOG, which
 * checks the level first; this re-checks so direct calls obey it too.
 * Thread-safe; never fails visibly (a failed write to stderr is dropped). */
void qfs_log_write(int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	va_list ap;
	int r;

	if (level > qfs_log_level)
		return;
	if (level < QFS_LOG_ERR)
		level = QFS_LOG_ERR;
	if (level > QFS_LOG_DEBUG)
		level = QFS_LOG_DEBUG;

	if (atomic_load(&use_syslog)) {
		va_start(ap, fmt);
		r = vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		if (r < 0)
			return;
		syslog(syslog_prio[level], "%s %s", level_names[level], line);
		return;
	}

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%06ldZ %s ", ts.tv_nsec / 1000,
		     level_names[level]);
	if (r > 0)
		n += (size_t)r;

	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if ((size_t)r >= sizeof(line) - n - 1)
		n = sizeof(line) - 2; /* truncated: keep room for the newline */
	else
		n += (size_t)r;
	line[n++] = '\n';

	int saved = errno;
	ssize_t w;
	do {
		w = write(STDERR_FILENO, line, n);
	} while (w < 0 && errno == EINTR);
	errno = saved;
}

/* Switch to syslog (daemon facility) with ident (kept by syslog: must stay
 * valid).  Call once at startup; lines logged concurrently may go to either. */
void qfs_log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&use_syslog, 1);
}

/* Set qfs_log_level from "err|warn|info|debug" (case-insensitive).
 * Returns 0, or -EINVAL with the level unchanged. */
int qfs_log_set_level(const char *name)
{
	for (int i = QFS_LOG_ERR; i <= QFS_LOG_DEBUG; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			qfs_log_level = i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0 || strcasecmp(name, "error") == 0) {
		qfs_log_level = name[0] == 'w' || name[0] == 'W' ? QFS_LOG_WARN : QFS_LOG_ERR;
		return 0;
	}
	return -EINVAL;
}
