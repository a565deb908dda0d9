/*
 * avail.h - availability as the client saw it (doc/availability.md):
 * per table and operation, successes, errors by errno and latency over
 * sliding windows (1 min, 5 min, 1 h by default), the customer-facing
 * alarms computed from them, and the Prometheus text of it all.
 *
 * The frontend records every reply (table id, op name, latency, errno);
 * this module keeps the windows and evaluates alarms.  It does no I/O: the
 * table names come from a cache the caller refreshes (qfs_avail_names), so
 * that formatting and alarm evaluation never wait on a quorum.
 *
 * One mutex (a->mu) protects everything; no other lock is taken under it.
 */
#ifndef QFS_ROUTER_AVAIL_H
#define QFS_ROUTER_AVAIL_H

#include <stdint.h>

#include "common/buf.h"

/* Pseudo-table ids (never a group id: those are inode numbers). */
#define QFS_AVAIL_ROOT UINT64_MAX          /* "/": the root and the control tree */
#define QFS_AVAIL_CANARY (UINT64_MAX - 1)  /* "/canary": the canary's own ops */
#define QFS_AVAIL_ROOT_NAME "/"
#define QFS_AVAIL_CANARY_NAME "/canary"

#define QFS_AVAIL_RATE_DEFAULT 0.01
#define QFS_AVAIL_MIN_REQ_DEFAULT 20
#define QFS_AVAIL_WINDOW_DEFAULT_MS 60000
#define QFS_AVAIL_CANARY_DEFAULT_MS 30000

struct qfs_avail_opts {
	double error_rate;        /* -o alarm_error_rate: raise at or above this */
	uint64_t min_requests;    /* -o alarm_min_requests: fewer in the window never raise */
	uint64_t window_ms;       /* -o alarm_window: the short window (1 min); the
				     others are 5x and 60x it (tests shorten it) */
	uint64_t canary_ms;       /* -o canary_interval; 0 = off */
	const char *metrics_listen; /* -o metrics_listen=HOST:PORT; NULL = none */
};

struct qfs_avail;

/* Fill o with the documented defaults. */
void qfs_avail_opts_default(struct qfs_avail_opts *o);

/* Handle one -o token if it is ours: 1 handled, 0 not ours, -1 bad value
 * (a message on stderr says which).  tok must outlive o (metrics_listen
 * points into it). */
int qfs_avail_opt(struct qfs_avail_opts *o, const char *tok);

/* New recorder with a copy of o, NULL on -ENOMEM.  qfs_avail_free(NULL)
 * does nothing. */
struct qfs_avail *qfs_avail_new(const struct qfs_avail_opts *o);
void qfs_avail_free(struct qfs_avail *a);

/* Whether errno e (> 0) is the service's fault (counts against
 * availability) rather than the user's (ENOENT, EEXIST, EACCES...). */
int qfs_avail_server_errno(int e);

/* Record one reply: table id (a group id or QFS_AVAIL_*), op (a string
 * that lives as long as a, e.g. a literal), latency ns, err 0 or an errno
 * (> 0).  Any thread.  Out of memory: the sample is dropped. */
void qfs_avail_record(struct qfs_avail *a, uint64_t table, const char *op, uint64_t ns, int err);

/* Replace the id -> name cache with n pairs (names are copied).  Ids not
 * in it show as "group-%016llx"; a table id missing from two calls in a
 * row is a deleted table: its entries and its availability alarm are
 * dropped. */
void qfs_avail_names(struct qfs_avail *a, const uint64_t *ids, const char *const *names, size_t n);

/* Add (or rename) one table in the id -> name cache (name copied): the
 * frontend knows a table's name when it creates it, so its first requests
 * never show as "group-...".  Nothing on ENOMEM. */
void qfs_avail_name_add(struct qfs_avail *a, uint64_t id, const char *name);

/* The id of the table named name in the cache, 0 if none. */
uint64_t qfs_avail_table_id(struct qfs_avail *a, const char *name);

/* Whether some recorded table id has no name in the cache (a new table). */
int qfs_avail_unnamed(struct qfs_avail *a);

/* Evaluate the availability alarms now (raise / clear, one log line each);
 * called by a ticker and before every read of the alarms. */
void qfs_avail_tick(struct qfs_avail *a);

/* The canary's verdict on one round: ok != 0 clears the canary alarm,
 * else raises it with why. */
void qfs_avail_canary_result(struct qfs_avail *a, int ok, const char *why);

/* Append .quorumfs/availability, the active alarms (the format of
 * .quorumfs/alarms), and the Prometheus text exposition, to out. */
void qfs_avail_text(struct qfs_avail *a, struct qfs_buf *out);
void qfs_avail_alarms(struct qfs_avail *a, struct qfs_buf *out);
void qfs_avail_metrics(struct qfs_avail *a, struct qfs_buf *out);

/* Append s to out with the escapes of the control files (qfs_buf_put_esc:
 * space \040, tab \011, newline \012, backslash \134, other control
 * bytes \ooo), as /proc/mounts does. */
void qfs_avail_escape(struct qfs_buf *out, const char *s);

#endif
