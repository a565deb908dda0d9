/*
 * check_drive.c - unit tests of the driver rules (src/node/drive.c,
 * contract in drive.h, doc/rnode.md section 2) over a scripted machine:
 * the step callback hands back prepared updates, and every callback
 * appends to a trace that each test compares with the order the rules
 * require.  Randomised schedules over the real machine: tests/sim.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qfs.h"
#include "node/drive.h"

#define NUP 8

static struct {
	struct qfs_paxos_update ups[NUP]; /* returned by the next steps, in order */
	uint32_t nups, next;
	char trace[2048];
	int depth, max_depth;   /* nesting of the step callback */
	int stopped;
	int sync_rc;
	qfs_lsn_t last, applied;
	qfs_ballot_t ballot_at_last;
} T;

static void tr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tr(const char *fmt, ...)
{
	va_list ap;
	size_t off = strlen(T.trace);

	if (off)
		T.trace[off++] = ' ';
	va_start(ap, fmt);
	vsnprintf(T.trace + off, sizeof(T.trace) - off, fmt, ap);
	va_end(ap);
}

static const char *ev_name(int type)
{
	switch (type) {
	case QFS_PAXOS_EV_PERSISTED: return "PERSISTED";
	case QFS_PAXOS_EV_LOG_ENTRIES: return "LOG";
	case QFS_PAXOS_EV_APPLIED: return "APPLIED";
	case QFS_PAXOS_EV_TICK: return "TICK";
	default: return "EV";
	}
}

static int t_step(void *ctx, const struct qfs_paxos_event *ev, struct qfs_paxos_update *up)
{
	(void)ctx;
	if (++T.depth > T.max_depth)
		T.max_depth = T.depth;
	tr("step:%s(%llu)", ev_name(ev->type), (unsigned long long)ev->lsn);
	if (T.next < T.nups)
		*up = T.ups[T.next++];
	else
		memset(up, 0, sizeof(*up));
	T.depth--;
	return 0;
}

static uint64_t t_now(void *ctx) { (void)ctx; return 1000; }
static int t_stopped(void *ctx) { (void)ctx; return T.stopped; }

static void t_stop(void *ctx, int rc, const char *what)
{
	(void)ctx;
	T.stopped = 1;
	tr("stop:%s(%d)", what, rc);
}

static int t_truncate(void *ctx, qfs_lsn_t after)
{
	(void)ctx;
	tr("truncate:%llu", (unsigned long long)after);
	if (T.last > after)
		T.last = after;
	return 0;
}

static int t_append(void *ctx, const struct qfs_repl_entry *e)
{
	(void)ctx;
	tr("append:%llu", (unsigned long long)e->lsn);
	T.last = e->lsn;
	return 0;
}

static int t_promise(void *ctx, qfs_ballot_t p)
{
	(void)ctx;
	tr("promise:%llu", (unsigned long long)p);
	return 0;
}

static void t_want_sync(void *ctx) { (void)ctx; tr("want_sync"); }

static int t_sync(void *ctx)
{
	(void)ctx;
	tr("sync");
	return T.sync_rc;
}

static qfs_lsn_t t_last(void *ctx) { (void)ctx; return T.last; }

static int t_ballot_at(void *ctx, qfs_lsn_t lsn, qfs_ballot_t *out)
{
	(void)ctx;
	(void)lsn;
	*out = T.ballot_at_last;
	return 0;
}

static int t_read(void *ctx, qfs_lsn_t from, qfs_lsn_t to, struct qfs_drive_log *out)
{
	(void)ctx;
	tr("read:%llu-%llu", (unsigned long long)from, (unsigned long long)to);
	out->n = 0;
	return 0;
}

static int t_apply(void *ctx, qfs_lsn_t commit)
{
	(void)ctx;
	tr("apply:%llu", (unsigned long long)commit);
	T.applied = commit;
	return 0;
}

static qfs_lsn_t t_applied(void *ctx) { (void)ctx; return T.applied; }
static void t_snap(void *ctx, uint32_t to) { (void)ctx; tr("snapshot:%u", to); }

static void t_send(void *ctx, uint32_t to, uint8_t type, const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	ck_assert_uint_gt(len, 0);
	tr("send:%s>%u", type == QFS_PAXOS_ACCEPT ? "ACCEPT" : type == QFS_PAXOS_ACCEPTED ? "ACCEPTED" :
	   type == QFS_PAXOS_PROMISE ? "PROMISE" : "MSG", to);
}

static const struct qfs_drive_ops OPS = {
	.step = t_step, .now_ms = t_now, .stopped = t_stopped, .stop = t_stop,
	.truncate = t_truncate, .append = t_append, .save_promise = t_promise,
	.want_sync = t_want_sync, .sync = t_sync, .last = t_last, .ballot_at = t_ballot_at,
	.read = t_read, .apply = t_apply, .applied = t_applied, .snapshot_to = t_snap,
	.send = t_send,
};

static struct qfs_drive D;
static struct qfs_buf F;
static struct qfs_repl_entry E[4];
static struct qfs_paxos_msg M[4];
static struct qfs_paxos_read R[4];

static void setup(void)
{
	memset(&T, 0, sizeof(T));
	memset(E, 0, sizeof(E));
	memset(M, 0, sizeof(M));
	memset(R, 0, sizeof(R));
	for (int i = 0; i < 4; i++) {
		E[i].lsn = (qfs_lsn_t)i + 1;
		E[i].ballot = QFS_PAXOS_BALLOT(1, 1);
		E[i].type = QFS_REPL_ENTRY_NOOP;
		M[i].from = 1;
		M[i].group = 7;
		M[i].ballot = QFS_PAXOS_BALLOT(1, 1);
	}
	qfs_buf_init(&F);
	qfs_drive_init(&D, &OPS, NULL, &F, 7, 1);
}

static void teardown(void)
{
	qfs_drive_reset(&D);
	qfs_buf_close(&F);
}

static struct qfs_paxos_msg *msg(int i, uint8_t type, uint32_t to)
{
	M[i].type = type;
	M[i].to = to;
	return &M[i];
}

/* A leader's ACCEPT leaves at once, an ACCEPTED waits for the sync, then
 * PERSISTED with the last entry appended. */
START_TEST(test_hold_until_sync)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	up.persist = E;
	up.npersist = 2;
	msg(0, QFS_PAXOS_ACCEPT, 2);
	msg(1, QFS_PAXOS_ACCEPTED, 3);
	up.msgs = M;
	up.nmsgs = 2;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "append:1 append:2 want_sync send:ACCEPT>2");
	ck_assert_int_eq(qfs_drive_dirty(&D), 1);
	T.trace[0] = 0;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "sync send:ACCEPTED>3 step:PERSISTED(2)");
	ck_assert_int_eq(qfs_drive_dirty(&D), 0);
	/* nothing left: a second sync does nothing */
	T.trace[0] = 0;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "");
}
END_TEST

/* Nothing unsynced: a PROMISE leaves at once, after the promise is saved;
 * group commit: two updates, one sync. */
START_TEST(test_clean_sends_at_once)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	up.save_promise = 1;
	up.promised = 9;
	msg(0, QFS_PAXOS_PROMISE, 2);
	up.msgs = M;
	up.nmsgs = 1;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "promise:9 send:PROMISE>2");
	T.trace[0] = 0;
	memset(&up, 0, sizeof(up));
	up.persist = E;
	up.npersist = 1;
	qfs_drive_handle(&D, &up);
	up.persist = E + 1;
	msg(1, QFS_PAXOS_ACCEPTED, 2);
	up.msgs = M + 1;
	up.nmsgs = 1;
	qfs_drive_handle(&D, &up);
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "append:1 want_sync append:2 sync send:ACCEPTED>2 step:PERSISTED(2)");
}
END_TEST

/* Local steps run in FIFO order after the update, never nested: the
 * update of a read's LOG_ENTRIES queues its own read behind the apply. */
START_TEST(test_local_fifo)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	R[0] = (struct qfs_paxos_read){ .peer = 2, .from = 1, .to = 2 };
	R[1] = (struct qfs_paxos_read){ .peer = 3, .from = 3, .to = 4 };
	R[2] = (struct qfs_paxos_read){ .peer = 2, .from = 5, .to = 5 };
	up.reads = R;
	up.nreads = 2;
	up.snapshot_to = 3;
	up.commit = 5;
	/* the first LOG_ENTRIES step asks for another read and commit 6 */
	T.ups[0].reads = R + 2;
	T.ups[0].nreads = 1;
	T.ups[0].commit = 6;
	T.nups = 1;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "read:1-2 step:LOG(0) read:3-4 step:LOG(2) snapshot:3 apply:6 "
			 "step:APPLIED(6) read:5-5 step:LOG(4)");
	ck_assert_int_eq(T.max_depth, 1);
}
END_TEST

/* A failed sync stops the group: the held message is never sent, no
 * PERSISTED, later steps refused. */
START_TEST(test_sync_fails)
{
	struct qfs_paxos_update up;
	struct qfs_paxos_event ev = { .type = QFS_PAXOS_EV_TICK };

	memset(&up, 0, sizeof(up));
	up.persist = E;
	up.npersist = 1;
	msg(0, QFS_PAXOS_ACCEPTED, 2);
	up.msgs = M;
	up.nmsgs = 1;
	qfs_drive_handle(&D, &up);
	T.sync_rc = -EIO;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "append:1 want_sync sync stop:wal sync(-5)");
	ck_assert_int_eq(qfs_drive_step(&D, &ev), QFS_ESTOPPED);
	ck_assert_ptr_null(D.held);
}
END_TEST

/* A truncation between the append and the sync: PERSISTED reports the
 * entry the log ends with. */
START_TEST(test_truncated_before_sync)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	up.persist = E;
	up.npersist = 4;
	qfs_drive_handle(&D, &up);
	memset(&up, 0, sizeof(up));
	up.truncate = 1;
	up.truncate_after = 2;
	qfs_drive_handle(&D, &up);
	T.ballot_at_last = 77;
	T.trace[0] = 0;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "sync step:PERSISTED(2)");
}
END_TEST

/* A crash (reset) drops the held messages and the pending sync. */
START_TEST(test_reset_drops)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	up.persist = E;
	up.npersist = 1;
	msg(0, QFS_PAXOS_ACCEPTED, 2);
	up.msgs = M;
	up.nmsgs = 1;
	qfs_drive_handle(&D, &up);
	qfs_drive_reset(&D);
	T.trace[0] = 0;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "");
	ck_assert_int_eq(qfs_drive_dirty(&D), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("drive");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hold_until_sync);
	tcase_add_test(tc, test_clean_sends_at_once);
	tcase_add_test(tc, test_local_fifo);
	tcase_add_test(tc, test_sync_fails);
	tcase_add_test(tc, test_truncated_before_sync);
	tcase_add_test(tc, test_reset_drops);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
