/*
 * log.c - one-line-per-event logging (contract in log.h).
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2) to stderr, so concurrent lines never interleave (POSIX makes
 * writes up to PIPE_BUF atomic on pipes; on files and ttys one write call
 * keeps a line in one piece in practice).  After qfs_log_use_syslog() lines
 * go to syslog(3), which is thread-safe, without our timestamp.  Control
 * bytes of the formatted text are written as \ooo, so one call is one line.
 * qfs_log_open_file puts a log file on fd 2; qfs_log_reopen opens it again
 * after logrotate moved it (dup2 swaps it atomically under concurrent
 * writers).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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

static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER; /* serialises open/reopen */
static char file_path[PATH_MAX]; /* log file; "" for none; written under file_mu before use */

static const char *const level_names[] = { "ERR", "WARN", "INFO", "DEBUG" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Copy src into dst[cap] with control bytes as \ooo; returns bytes written
 * (no NUL).  Stops before an escape that would not fit. */
static size_t copy_escaped(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			if (n + 4 > cap)
				break;
			dst[n++] = '\\';
			dst[n++] = (char)('0' + ((*p >> 6) & 7));
			dst[n++] = (char)('0' + ((*p >> 3) & 7));
			dst[n++] = (char)('0' + (*p & 7));
		} else {
			if (n + 1 > cap)
				break;
			dst[n++] = (char)*p;
		}
	}
	return n;
}

/* Format one line and emit it (see qfs_log_write). */
void qfs_log_vwrite(int level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX], msg[LOG_LINE_MAX];
	size_t n = 0;
	int r;

	if (level > qfs_log_level)
		return;
	if (level < QFS_LOG_ERR)
		level = QFS_LOG_ERR;
	if (level > QFS_LOG_DEBUG)
		level = QFS_LOG_DEBUG;

	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (r < 0)
		return;

	if (atomic_load(&use_syslog)) {
		n = copy_escaped(line, sizeof(line) - 1, msg);
		line[n] = '\0';
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
	n += copy_escaped(line + n, sizeof(line) - n - 1, msg); /* room for the newline */
	line[n++] = '\n';

	int saved = errno;
	ssize_t w;
	do {
		w = write(STDERR_FILENO, line, n);
	} while (w < 0 && errno == EINTR);
	errno = saved;
}

/* Format one line and emit it.  Callers normally go through QFS_LOG, which
 * checks the level first; this re-checks so direct calls obey it too.
 * Thread-safe; never fails visibly (a failed write to stderr is dropped). */
void qfs_log_write(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	qfs_log_vwrite(level, fmt, ap);
	va_end(ap);
}

/* Open path for appending and put it on stderr.  Caller holds file_mu. */
static int put_on_stderr(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (fd != STDERR_FILENO) {
		int rc = dup2(fd, STDERR_FILENO) < 0 ? -errno : 0;
		close(fd);
		return rc;
	}
	return 0;
}

/* See log.h. */
int qfs_log_open_file(const char *path)
{
	int rc;

	if (strlen(path) >= sizeof(file_path))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&file_mu);
	rc = put_on_stderr(path);
	if (rc == 0)
		memcpy(file_path, path, strlen(path) + 1);
	pthread_mutex_unlock(&file_mu);
	return rc;
}

/* See log.h. */
int qfs_log_reopen(void)
{
	int rc;

	pthread_mutex_lock(&file_mu);
	rc = file_path[0] ? put_on_stderr(file_path) : -ENOENT;
	pthread_mutex_unlock(&file_mu);
	return rc;
}

/* See log.h. */
const char *qfs_log_file(void)
{
	return file_path[0] ? file_path : NULL;
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
