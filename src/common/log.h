/*
 * log.h - one-line-per-event logging with key=value fields.
 *
 * QFS_LOG checks the level before formatting, so a disabled level costs one
 * comparison.  Lines go to stderr or to syslog (after qfs_log_use_syslog()),
 * prefixed with the level.  Thread-safe: one write(2) per line.  A line is
 * always one line: control bytes in the formatted text (a newline in a
 * name, say) are written as \ooo octal escapes.  Names that may hold spaces
 * go through qfs_esc (common/buf.h) at the call site, so that a field never
 * splits.  Group ids are always spelled group=%016llx.
 * Example: QFS_LOG(QFS_LOG_WARN, "wal open failed group=%016llx err=\"%s\"", ...).
 */
#ifndef QFS_COMMON_LOG_H
#define QFS_COMMON_LOG_H

enum qfs_log_level { QFS_LOG_ERR = 0, QFS_LOG_WARN, QFS_LOG_INFO, QFS_LOG_DEBUG };

extern int qfs_log_level; /* lines above this level are dropped; default INFO */

#include <stdarg.h>

void qfs_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* qfs_log_write with a va_list (for libraries' log callbacks). */
void qfs_log_vwrite(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Send further lines to the file at path (appended to, created 0600): it is
 * opened and put on stderr (fd 2), so that anything else the process writes
 * to stderr lands there too.  path is copied (up to PATH_MAX).  0, or
 * -errno with stderr unchanged. */
int qfs_log_open_file(const char *path);
/* Open the file of qfs_log_open_file again (logrotate moved or removed it)
 * and put it on stderr; lines in flight go to the old or the new file,
 * whole.  Thread-safe.  0, -ENOENT if no log file was set (stderr is a
 * terminal or a journal: nothing to do), or -errno with the old file kept. */
int qfs_log_reopen(void);
/* The log file path set by qfs_log_open_file, or NULL. */
const char *qfs_log_file(void);
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
