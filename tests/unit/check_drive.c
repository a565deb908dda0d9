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

#include "common/buf.h"
#include "common/qfs.h"
#include "net/frame.h"
#include "node/drive.h"

#define NUP 8

static struct qfs_paxos_read R[4]; /* reads of the updates a test hands over */

static struct {
	struct qfs_paxos_update ups[NUP]; /* returned by the next steps, in order */
	uint32_t nups, next;
	char trace[2048];
	int depth, max_depth;   /* nesting of the step callback */
	int stopped;
	int sync_rc;
	int read_rc;            /* returned by t_read */
	int read_empty;         /* t_read finds nothing of its range */
	int read_again;         /* a LOG step asks for the same read (R[0]) again */
	uint32_t nread;         /* t_read calls */
	qfs_lsn_t last, applied;
	qfs_lsn_t apply_max;    /* t_apply stops here (0: no limit) */
	uint32_t napply;        /* t_apply calls */
	qfs_ballot_t ballot_at_last;
	int begin_rc;           /* t_apply_begin's answer */
	qfs_lsn_t beside_to;    /* the prefix it takes (0: up to commit) */
	qfs_lsn_t beside_at;    /* what t_apply_end leaves applied */
	int end_rc;             /* t_apply_end's answer */
} T;

static void tr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tr(const char *fmt, ...)
{
	va_list ap;
	size_t off = strlen(T.trace);

	if (off + 2 >= sizeof(T.trace))
		return; /* full: the rest is cut (never past the array) */
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
	if (T.read_again && ev->type == QFS_PAXOS_EV_LOG_ENTRIES) {
		/* the machine's answer to an empty LOG_ENTRIES: read again */
		up->reads = R;
		up->nreads = 1;
	}
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
	T.nread++;
	if (T.read_again && T.nread > 100)
		T.stopped = 1; /* the test's own brake: a driver that loops */
	out->n = 0;
	for (qfs_lsn_t l = from; l <= to && !T.read_empty && out->n < QFS_PAXOS_MAX_BATCH; l++)
		out->ents[out->n++] = (struct qfs_repl_entry){ .lsn = l, .ballot = QFS_PAXOS_BALLOT(1, 1) };
	return T.read_rc;
}

static int t_apply(void *ctx, qfs_lsn_t commit)
{
	(void)ctx;
	tr("apply:%llu", (unsigned long long)commit);
	if (++T.napply > 100)
		T.stopped = 1; /* the test's own brake: a driver that loops */
	T.applied = T.apply_max && commit > T.apply_max ? T.apply_max : commit;
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

static int t_apply_begin(void *ctx, qfs_lsn_t commit)
{
	(void)ctx;
	tr("begin:%llu", (unsigned long long)commit);
	if (T.begin_rc)
		return T.begin_rc;
	T.beside_at = T.beside_to && T.beside_to < commit ? T.beside_to : commit;
	return 0;
}

static int t_apply_end(void *ctx)
{
	(void)ctx;
	tr("end:%llu", (unsigned long long)T.beside_at);
	T.applied = T.beside_at;
	return T.end_rc;
}

/* The callbacks every ops table of these tests has. */
#define T_OPS \
	.step = t_step, .now_ms = t_now, .stopped = t_stopped, .stop = t_stop, \
	.truncate = t_truncate, .append = t_append, .save_promise = t_promise, \
	.want_sync = t_want_sync, .sync = t_sync, .last = t_last, .ballot_at = t_ballot_at, \
	.read = t_read, .apply = t_apply, .applied = t_applied, .snapshot_to = t_snap, \
	.send = t_send

static const struct qfs_drive_ops OPS = { T_OPS };

/* The transport's own frames (frame_new / frame_send): each frame sent
 * is checked (sealed without its CRC, which the transport sets: drive.h;
 * once set as qfs_net_send_frame does on tcp, the header and its CRC
 * check; the body decodes to the type) and freed here. */
static int frame_fail; /* t_frame_new returns NULL */

static void *t_frame_new(void *ctx, size_t len, uint8_t **data)
{
	uint8_t *f;

	(void)ctx;
	if (frame_fail)
		return NULL;
	f = malloc(sizeof(size_t) + len);
	ck_assert_ptr_nonnull(f);
	memcpy(f, &len, sizeof(len));
	*data = f + sizeof(size_t);
	return f;
}

static void t_frame_send(void *ctx, uint32_t to, uint8_t type, void *frame)
{
	static struct qfs_repl_entry ents[QFS_PAXOS_MAX_BATCH];
	struct qfs_paxos_msg m;
	const uint8_t *body;
	size_t len, blen;
	uint8_t t;

	(void)ctx;
	memcpy(&len, frame, sizeof(len));
	ck_assert_uint_eq(qfs_be32_get((uint8_t *)frame + sizeof(size_t) + 12), 0); /* no CRC yet */
	ck_assert_int_eq(qfs_net_frame_open((uint8_t *)frame + sizeof(size_t), len, &t, &body, &blen),
			 QFS_ECORRUPT);
	qfs_net_frame_crc_set((uint8_t *)frame + sizeof(size_t), len - QFS_NET_FRAME_HDR);
	ck_assert_int_eq(qfs_net_frame_open((uint8_t *)frame + sizeof(size_t), len, &t, &body, &blen), 0);
	ck_assert_uint_eq(t, type);
	ck_assert_int_eq(qfs_paxos_msg_decode(t, body, blen, &m, ents), 0);
	ck_assert_uint_eq(m.to, to);
	free(frame);
	tr("frame:%s>%u", type == QFS_PAXOS_ACCEPT ? "ACCEPT" : type == QFS_PAXOS_PROMISE ? "PROMISE" : "MSG", to);
}

static const struct qfs_drive_ops OPS_FRAMES = { T_OPS, .frame_new = t_frame_new, .frame_send = t_frame_send };

static const struct qfs_drive_ops OPS_BESIDE = { T_OPS, .apply_begin = t_apply_begin, .apply_end = t_apply_end };

static struct qfs_drive D;
static struct qfs_buf F;
static struct qfs_repl_entry E[4];
static struct qfs_paxos_msg M[4];

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

/* With the transport's frames: a message sent at once is encoded into
 * one (frame_send, no copy through send), a held one still goes through
 * the scratch frame and send after the sync; a frame the transport
 * cannot give is a lost message. */
START_TEST(test_frame_handover)
{
	struct qfs_paxos_update up;
	uint8_t payload[3000];

	qfs_drive_init(&D, &OPS_FRAMES, NULL, &F, 7, 1);
	memset(payload, 0x5a, sizeof(payload));
	E[0].type = QFS_REPL_ENTRY_TXN;
	E[0].data = payload;
	E[0].len = sizeof(payload);
	memset(&up, 0, sizeof(up));
	up.persist = E;
	up.npersist = 2;
	msg(0, QFS_PAXOS_ACCEPT, 2);
	M[0].entries = E;
	M[0].n = 2;
	msg(1, QFS_PAXOS_ACCEPTED, 3);
	up.msgs = M;
	up.nmsgs = 2;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "append:1 append:2 want_sync frame:ACCEPT>2");
	T.trace[0] = 0;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "sync send:ACCEPTED>3 step:PERSISTED(2)");
	T.trace[0] = 0;
	memset(&up, 0, sizeof(up));
	msg(2, QFS_PAXOS_PROMISE, 3);
	up.msgs = M + 2;
	up.nmsgs = 1;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "frame:PROMISE>3");
	T.trace[0] = 0;
	frame_fail = 1;
	qfs_drive_handle(&D, &up);
	frame_fail = 0;
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

/* A queue full of reads does not crowd out the apply: the last slot is
 * kept for it, so a commit is applied in the same call even though no
 * local step steps again (the reads fail) and no further update comes.
 * The read beyond the others is dropped (the leader asks again). */
START_TEST(test_apply_not_crowded_out)
{
	static struct qfs_paxos_read many[QFS_DRIVE_QUEUE];
	struct qfs_paxos_update up;

	for (uint32_t i = 0; i < QFS_DRIVE_QUEUE; i++)
		many[i] = (struct qfs_paxos_read){ .peer = 2, .from = 1, .to = 1 };
	memset(&up, 0, sizeof(up));
	up.reads = many;
	up.nreads = QFS_DRIVE_QUEUE;
	up.commit = 5;
	T.read_rc = -EIO; /* skipped: no LOG_ENTRIES step, no update */
	qfs_drive_handle(&D, &up);
	ck_assert_uint_eq(T.applied, 5);
	ck_assert_uint_eq(T.nread, QFS_DRIVE_QUEUE - 1);
	ck_assert_ptr_nonnull(strstr(T.trace, "apply:5 step:APPLIED(5)"));
	ck_assert_uint_eq(D.qlen, 0);
	ck_assert_int_eq(D.apply_queued, 0);
}
END_TEST

/* An apply that cannot reach the commit (the log lacks committed entries:
 * the caller's storage disagrees with the machine) stops the group as
 * untrusted instead of applying again forever: the APPLIED step's update
 * asks for the same commit, which queued the same apply behind it. */
START_TEST(test_short_apply_stops)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	up.commit = 5;
	T.apply_max = 3;
	qfs_drive_handle(&D, &up);
	ck_assert_uint_eq(T.napply, 1);
	ck_assert_int_eq(T.stopped, 1);
	ck_assert_str_eq(T.trace, "apply:5 stop:apply short(-10001)");
}
END_TEST

/* A read that finds nothing of the range the machine asked for (the log
 * is shorter than the machine thinks) is skipped as a failed read: the
 * machine answers an empty LOG_ENTRIES by asking for the same read at
 * once, which the FIFO would run again without end. */
START_TEST(test_empty_read_skipped)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	R[0] = (struct qfs_paxos_read){ .peer = 2, .from = 3, .to = 4 };
	up.reads = R;
	up.nreads = 1;
	T.read_empty = 1;
	T.read_again = 1;
	qfs_drive_handle(&D, &up);
	ck_assert_uint_eq(T.nread, 1);
	ck_assert_str_eq(T.trace, "read:3-4");
	ck_assert_int_eq(T.stopped, 0);
	/* entries found: stepped as before */
	T.read_empty = 0;
	T.read_again = 0;
	T.trace[0] = 0;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "read:3-4 step:LOG(2)");
}
END_TEST

/* A leader's update appending E[i] and committing commit: its trace must
 * be want, its apply never waits; then the sync (its trace left in
 * T.trace). */
static void leader_round(int i, qfs_lsn_t commit, const char *want)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	up.persist = E + i;
	up.npersist = 1;
	up.commit = commit;
	up.is_leader = 1;
	T.trace[0] = 0;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, want);
	ck_assert_int_eq(D.apply_wait, 0);
	T.trace[0] = 0;
	qfs_drive_sync(&D);
}

/* apply_after_sync (the rnode's choice): a follower's ACCEPT that appends
 * entries and commits earlier ones has its sync and its ACCEPTED first,
 * the apply right after the sync; without appends waiting the apply runs
 * at once; a sync with nothing appended (no PERSISTED step) still runs an
 * apply that waited; a reset forgets it.  Without the flag (the default)
 * the apply runs before the sync, as before. */
START_TEST(test_apply_after_sync)
{
	struct qfs_paxos_update up;

	D.apply_after_sync = 1;
	memset(&up, 0, sizeof(up));
	up.persist = E + 2;
	up.npersist = 1; /* entry 3 */
	up.commit = 2;
	msg(0, QFS_PAXOS_ACCEPTED, 2);
	up.msgs = M;
	up.nmsgs = 1;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "append:3 want_sync");
	ck_assert_uint_eq(T.napply, 0);
	T.trace[0] = 0;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "sync send:ACCEPTED>2 step:PERSISTED(3) apply:2 step:APPLIED(2)");
	ck_assert_uint_eq(T.applied, 2);
	/* nothing appended: applied at once */
	memset(&up, 0, sizeof(up));
	up.commit = 3;
	T.trace[0] = 0;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "apply:3 step:APPLIED(3)");
	/* a waiting apply and a sync that steps no PERSISTED (the log was
	 * cut to nothing meanwhile) */
	memset(&up, 0, sizeof(up));
	up.persist = E + 3;
	up.npersist = 1; /* entry 4 */
	up.commit = 4;
	T.trace[0] = 0;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "append:4 want_sync");
	T.last = 0;
	T.trace[0] = 0;
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, "sync apply:4 step:APPLIED(4)");
	/* a leader's apply never waits for the sync of a later append: its
	 * proposers wait for the answers the apply gives */
	T.last = 4;
	leader_round(3, 5, "append:4 want_sync apply:5 step:APPLIED(5)"); /* entry 4 again */
	ck_assert_ptr_null(strstr(T.trace, "apply:"));
	/* a reset forgets a waiting apply */
	memset(&up, 0, sizeof(up));
	up.persist = E;
	up.npersist = 1;
	up.commit = 6;
	qfs_drive_handle(&D, &up);
	ck_assert_int_eq(D.apply_wait, 1);
	qfs_drive_reset(&D);
	ck_assert_int_eq(D.apply_wait, 0);
	ck_assert_int_eq(D.apply_after_sync, 1);
	/* the default: the apply before the sync */
	qfs_drive_init(&D, &OPS, NULL, &F, 7, 1);
	T.applied = 0;
	memset(&up, 0, sizeof(up));
	up.persist = E + 2;
	up.npersist = 1;
	up.commit = 2;
	T.trace[0] = 0;
	qfs_drive_handle(&D, &up);
	ck_assert_str_eq(T.trace, "append:3 want_sync apply:2 step:APPLIED(2)");
}
END_TEST

/* A follower's ACCEPT that appends entry k and commits earlier ones
 * (apply_after_sync), with apply_begin/apply_end: the apply starts before
 * the sync and is waited for after it; the ACCEPTED, PERSISTED and
 * APPLIED come in the order they come without them, and no apply runs
 * after the sync (the rnode's applier did it).  A prefix taken beside
 * leaves the rest to the apply after the sync; a refused begin is the
 * apply after the sync; an apply that fails stops the group before the
 * ACCEPTED goes out; a failed sync still waits for the apply and stops;
 * a leader never applies beside. */
static void beside_accept(qfs_lsn_t append, qfs_lsn_t commit)
{
	struct qfs_paxos_update up;

	memset(&up, 0, sizeof(up));
	up.persist = E + append - 1;
	up.npersist = 1;
	up.commit = commit;
	msg(0, QFS_PAXOS_ACCEPTED, 2);
	up.msgs = M;
	up.nmsgs = 1;
	T.trace[0] = 0;
	qfs_drive_handle(&D, &up);
	ck_assert_ptr_nonnull(strstr(T.trace, "want_sync"));
	ck_assert_ptr_null(strstr(T.trace, "apply:"));
	T.trace[0] = 0;
}

/* beside_accept, then the sync: its trace must be want. */
static void beside_round(qfs_lsn_t append, qfs_lsn_t commit, const char *want)
{
	beside_accept(append, commit);
	qfs_drive_sync(&D);
	ck_assert_str_eq(T.trace, want);
}

START_TEST(test_apply_beside)
{
	qfs_drive_init(&D, &OPS_BESIDE, NULL, &F, 7, 1);
	D.apply_after_sync = 1;
	/* the whole commit beside the sync */
	beside_round(3, 1, "begin:1 sync end:1 send:ACCEPTED>2 step:PERSISTED(3) step:APPLIED(1)");
	ck_assert_uint_eq(T.applied, 1);
	ck_assert_uint_eq(T.napply, 0);
	ck_assert_int_eq(D.beside, 0);
	/* a prefix beside, the rest after the sync */
	T.beside_to = 2;
	beside_round(4, 3, "begin:3 sync end:2 send:ACCEPTED>2 step:PERSISTED(4) apply:3 step:APPLIED(3)");
	ck_assert_uint_eq(T.applied, 3);
	ck_assert_uint_eq(T.napply, 1);
	/* refused: the apply after the sync */
	T.beside_to = 0;
	T.begin_rc = -EAGAIN;
	T.last = 0;
	E[0].lsn = 5;
	beside_round(1, 5, "begin:5 sync send:ACCEPTED>2 step:PERSISTED(5) apply:5 step:APPLIED(5)");
	/* the apply fails: stopped, the ACCEPTED never sent */
	T.begin_rc = 0;
	T.end_rc = -EIO;
	E[1].lsn = 6;
	beside_round(2, 6, "begin:6 sync end:6 stop:apply(-5)");
	ck_assert_int_eq(T.stopped, 1);
	/* the sync fails: the apply is waited for, then the stop */
	T.stopped = 0;
	T.end_rc = 0;
	T.sync_rc = -EIO;
	qfs_drive_init(&D, &OPS_BESIDE, NULL, &F, 7, 1);
	D.apply_after_sync = 1;
	E[2].lsn = 7;
	beside_round(3, 7, "begin:7 sync end:7 stop:wal sync(-5)");
	/* a leader applies at once, never beside */
	T.stopped = 0;
	T.sync_rc = 0;
	qfs_drive_init(&D, &OPS_BESIDE, NULL, &F, 7, 1);
	D.apply_after_sync = 1;
	E[3].lsn = 8;
	leader_round(3, 8, "append:8 want_sync apply:8 step:APPLIED(8)");
	ck_assert_ptr_null(strstr(T.trace, "begin:"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("drive");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hold_until_sync);
	tcase_add_test(tc, test_clean_sends_at_once);
	tcase_add_test(tc, test_frame_handover);
	tcase_add_test(tc, test_local_fifo);
	tcase_add_test(tc, test_sync_fails);
	tcase_add_test(tc, test_truncated_before_sync);
	tcase_add_test(tc, test_reset_drops);
	tcase_add_test(tc, test_apply_not_crowded_out);
	tcase_add_test(tc, test_short_apply_stops);
	tcase_add_test(tc, test_empty_read_skipped);
	tcase_add_test(tc, test_apply_after_sync);
	tcase_add_test(tc, test_apply_beside);
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
