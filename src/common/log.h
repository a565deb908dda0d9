/*
 * log.h - one-line-per-event logging with key=value fields.
 *
 * QFS_LOG checks the level before formatting, so a disabled level costs one
 * comparison.  Lines go to stderr or to syslog (after qfs_log_use_syslog()),
 * prefixed with the level.  Thread-safe: one write(2) per line.
 * Example: QFS_LOG(QFS_LOG_WARN, "wal open failed group=%llu err=%s", ...).
 */
#ifndef QFS_COMMON_LOG_H
#define QFS_COMMON_LOG_H

enum qfs_log_level { QFS_LOG_ERR = 0, QFS_LOG_WARN, QFS_LOG_INFO, QFS_LOG_DEBUG };

extern int qfs_log_level; /* lines above this level are dropped; default INFO */

void qfs_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send further lines to syslog (daemon facility) instead of stderr. */
void qfs_log_use_syslog(const char *ident);
/* Parse "err|warn|info|debug"; returns 0 or -EINVAL. */
int qfs_log_set_level(const char *name);

#define QFS_LOG(lvl, ...)                                                        \
	do {                                                                         \
		if ((lvl) <= qfs_log_level)                                              \
			qfs_log_write((lvl), __VA_ARGS__);                                   \
	} while (0)

#endif
