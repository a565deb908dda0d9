/*
 * check_repl.c - unit tests of the replication state machine (src/repl).
 *
 * Sequences of propose/persist/apply, the batch limit, every rejected event
 * (state must be unchanged), the entry framing, and a seeded random walk of
 * events that checks the invariants after each step.  Set QFS_SEED to replay
 * one walk; a failure prints the seed.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repl/repl.h"

static struct qfs_repl R;

static void setup(void)
{
	qfs_repl_init(&R, 1, 0, 0, 0);
}

static void teardown(void)
{
}

static int propose(struct qfs_repl *r, uint8_t type, const void *p, size_t len,
		   struct qfs_repl_update *up)
{
	struct qfs_repl_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = QFS_REPL_EV_PROPOSE;
	ev.entry.type = type;
	ev.entry.data = p;
	ev.entry.len = len;
	return qfs_repl_step(r, &ev, up);
}

static int lsn_event(struct qfs_repl *r, enum qfs_repl_event_type t, qfs_lsn_t lsn,
		     struct qfs_repl_update *up)
{
	struct qfs_repl_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = t;
	ev.lsn = lsn;
	return qfs_repl_step(r, &ev, up);
}

START_TEST(test_init)
{
	struct qfs_repl_state st;

	qfs_repl_state(&R, &st);
	ck_assert_uint_eq(st.ballot, 1);
	ck_assert_uint_eq(st.leader, 1);
	ck_assert_uint_eq(st.last, 0);
	ck_assert_uint_eq(st.persisted, 0);
	ck_assert_uint_eq(st.commit, 0);
	ck_assert_uint_eq(st.applied, 0);

	/* Recovery: everything durable is committed with one voter. */
	qfs_repl_init(&R, 3, 7, 42, 40);
	qfs_repl_state(&R, &st);
	ck_assert_uint_eq(st.ballot, 7);
	ck_assert_uint_eq(st.leader, 3);
	ck_assert_uint_eq(st.last, 42);
	ck_assert_uint_eq(st.persisted, 42);
	ck_assert_uint_eq(st.commit, 42);
	ck_assert_uint_eq(st.applied, 40);
}
END_TEST

START_TEST(test_sequence)
{
	struct qfs_repl_update up;
	struct qfs_repl_state st;
	const char *a = "alpha", *b = "beta";

	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, a, 5, &up), 0);
	ck_assert_uint_eq(up.npersist, 1);
	ck_assert_uint_eq(up.persist[0].lsn, 1);
	ck_assert_uint_eq(up.persist[0].ballot, 1);
	ck_assert_uint_eq(up.persist[0].type, QFS_REPL_ENTRY_TXN);
	ck_assert_ptr_eq(up.persist[0].data, a);
	ck_assert_uint_eq(up.persist[0].len, 5);
	ck_assert_uint_eq(up.commit, 0);

	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_NOOP, NULL, 0, &up), 0);
	ck_assert_uint_eq(up.npersist, 1);
	ck_assert_uint_eq(up.persist[0].lsn, 2);
	ck_assert_uint_eq(up.persist[0].type, QFS_REPL_ENTRY_NOOP);
	ck_assert_uint_eq(up.commit, 0);

	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, b, 4, &up), 0);
	ck_assert_uint_eq(up.persist[0].lsn, 3);

	/* Nothing commits before it is persisted. */
	qfs_repl_state(&R, &st);
	ck_assert_uint_eq(st.last, 3);
	ck_assert_uint_eq(st.persisted, 0);
	ck_assert_uint_eq(st.commit, 0);

	/* Partial persist: commit follows it. */
	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_PERSISTED, 2, &up), 0);
	ck_assert_uint_eq(up.npersist, 0);
	ck_assert_uint_eq(up.commit, 2);
	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_APPLIED, 2, &up), 0);
	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_PERSISTED, 3, &up), 0);
	ck_assert_uint_eq(up.commit, 3);
	/* Repeating the same PERSISTED is harmless. */
	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_PERSISTED, 3, &up), 0);
	ck_assert_uint_eq(up.commit, 3);
	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_APPLIED, 3, &up), 0);

	qfs_repl_state(&R, &st);
	ck_assert_uint_eq(st.last, 3);
	ck_assert_uint_eq(st.persisted, 3);
	ck_assert_uint_eq(st.commit, 3);
	ck_assert_uint_eq(st.applied, 3);

	/* A TICK changes nothing and asks for no timer. */
	{
		struct qfs_repl_event ev = { .type = QFS_REPL_EV_TICK, .now_ms = 12345 };
		ck_assert_int_eq(qfs_repl_step(&R, &ev, &up), 0);
		ck_assert_uint_eq(up.npersist, 0);
		ck_assert_uint_eq(up.commit, 3);
		ck_assert_uint_eq(up.next_tick_ms, 0);
	}
}
END_TEST

START_TEST(test_batch_limit)
{
	struct qfs_repl_update up;
	struct qfs_repl_state st;
	struct qfs_repl before;
	static const char x = 'x';

	for (int i = 0; i < QFS_REPL_MAX_BATCH; i++) {
		ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), 0);
		ck_assert_uint_eq(up.persist[0].lsn, (qfs_lsn_t)i + 1);
	}
	memcpy(&before, &R, sizeof(R));
	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), -EAGAIN);
	ck_assert_uint_eq(up.npersist, 0);
	ck_assert(memcmp(&before, &R, sizeof(R)) == 0);

	/* Persisting part of the batch makes room for exactly that many. */
	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_PERSISTED, 10, &up), 0);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), 0);
		ck_assert_uint_eq(up.persist[0].lsn, QFS_REPL_MAX_BATCH + (qfs_lsn_t)i + 1);
	}
	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), -EAGAIN);
	qfs_repl_state(&R, &st);
	ck_assert_uint_eq(st.last, QFS_REPL_MAX_BATCH + 10);
	ck_assert_uint_eq(st.persisted, 10);
	ck_assert_uint_eq(st.commit, 10);

	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_PERSISTED, st.last, &up), 0);
	ck_assert_uint_eq(up.commit, QFS_REPL_MAX_BATCH + 10);
	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), 0);
	ck_assert_uint_eq(up.persist[0].lsn, QFS_REPL_MAX_BATCH + 11);
}
END_TEST

START_TEST(test_errors)
{
	struct qfs_repl_update up;
	struct qfs_repl before;
	struct qfs_repl_event ev;
	static const char x = 'x';

	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), 0);
	ck_assert_int_eq(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), 0);
	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_PERSISTED, 1, &up), 0);
	memcpy(&before, &R, sizeof(R));

#define EXPECT_REJECT(call, err)                                                    \
	do {                                                                            \
		up.npersist = 99;                                                           \
		ck_assert_int_eq((call), (err));                                            \
		ck_assert_uint_eq(up.npersist, 0);                                          \
		ck_assert(memcmp(&before, &R, sizeof(R)) == 0);                             \
	} while (0)

	EXPECT_REJECT(lsn_event(&R, QFS_REPL_EV_PERSISTED, 3, &up), -EINVAL); /* beyond last */
	EXPECT_REJECT(lsn_event(&R, QFS_REPL_EV_PERSISTED, 0, &up), -EINVAL); /* backwards */
	EXPECT_REJECT(lsn_event(&R, QFS_REPL_EV_APPLIED, 2, &up), -EINVAL);   /* beyond commit */
	EXPECT_REJECT(propose(&R, 0, &x, 1, &up), -EINVAL);                    /* bad type */
	EXPECT_REJECT(propose(&R, 77, &x, 1, &up), -EINVAL);
	EXPECT_REJECT(propose(&R, QFS_REPL_ENTRY_TXN, NULL, 5, &up), -EINVAL);
	memset(&ev, 0, sizeof(ev));
	ev.type = (enum qfs_repl_event_type)99;
	EXPECT_REJECT(qfs_repl_step(&R, &ev, &up), -EINVAL);

	ck_assert_int_eq(lsn_event(&R, QFS_REPL_EV_APPLIED, 1, &up), 0);
	memcpy(&before, &R, sizeof(R));
	EXPECT_REJECT(lsn_event(&R, QFS_REPL_EV_APPLIED, 0, &up), -EINVAL);   /* backwards */

	/* LSN space exhausted. */
	qfs_repl_init(&R, 1, 1, UINT64_MAX, 0);
	memcpy(&before, &R, sizeof(R));
	EXPECT_REJECT(propose(&R, QFS_REPL_ENTRY_TXN, &x, 1, &up), -EINVAL);
#undef EXPECT_REJECT
}
END_TEST

START_TEST(test_entry_framing)
{
	uint8_t rec[QFS_REPL_ENTRY_HDR + 3];
	struct qfs_repl_entry e = { .lsn = 5, .ballot = 0x0102030405060708ull,
				    .time_ns = 0x1112131415161718ull, .type = QFS_REPL_ENTRY_TXN };
	struct qfs_repl_entry d;

	ck_assert_uint_eq(qfs_repl_entry_encode_hdr(rec, &e), QFS_REPL_ENTRY_HDR);
	ck_assert_uint_eq(rec[0], QFS_REPL_ENTRY_TXN);
	ck_assert_uint_eq(rec[1], 0x01);
	ck_assert_uint_eq(rec[8], 0x08);
	memcpy(rec + QFS_REPL_ENTRY_HDR, "abc", 3);

	ck_assert_int_eq(qfs_repl_entry_decode(9, rec, sizeof(rec), &d), 0);
	ck_assert_uint_eq(d.lsn, 9);
	ck_assert_uint_eq(d.ballot, e.ballot);
	ck_assert_uint_eq(d.time_ns, e.time_ns);
	ck_assert_uint_eq(rec[9], 0x11);
	ck_assert_uint_eq(d.type, QFS_REPL_ENTRY_TXN);
	ck_assert_uint_eq(d.len, 3);
	ck_assert_ptr_eq(d.data, rec + QFS_REPL_ENTRY_HDR);

	/* Header only: an empty entry (a NOOP). */
	e.type = QFS_REPL_ENTRY_NOOP;
	qfs_repl_entry_encode_hdr(rec, &e);
	ck_assert_int_eq(qfs_repl_entry_decode(1, rec, QFS_REPL_ENTRY_HDR, &d), 0);
	ck_assert_uint_eq(d.type, QFS_REPL_ENTRY_NOOP);
	ck_assert_uint_eq(d.len, 0);

	/* Short and unknown type: corrupt, out untouched. */
	memset(&d, 0xaa, sizeof(d));
	ck_assert_int_eq(qfs_repl_entry_decode(1, rec, QFS_REPL_ENTRY_HDR - 1, &d), QFS_ECORRUPT);
	ck_assert_uint_eq(d.lsn, 0xaaaaaaaaaaaaaaaaull);
	rec[0] = 9;
	ck_assert_int_eq(qfs_repl_entry_decode(1, rec, sizeof(rec), &d), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_repl_entry_decode(1, rec, 0, &d), QFS_ECORRUPT);
}
END_TEST

/* xorshift64*: the test's own PRNG so that a seed replays everywhere. */
static uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

START_TEST(test_random_walk)
{
	const char *env = getenv("QFS_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed0000ull + (uint64_t)_i;
	uint64_t s = seed ? seed : 1;
	struct qfs_repl r;
	struct qfs_repl_state st, prev;
	struct qfs_repl_update up;
	qfs_lsn_t handed = 0; /* highest LSN handed out in a persist list */
	static const char x = 'x';

	qfs_repl_init(&r, 1, 0, 0, 0);
	qfs_repl_state(&r, &prev);
	for (int step = 0; step < 20000; step++) {
		uint64_t v = rnd_next(&s);
		qfs_lsn_t lsn;
		int rc;

		qfs_repl_state(&r, &st);
		switch (v % 8) {
		case 0: case 1: case 2: case 3:
			rc = propose(&r, (v >> 8) % 5 ? QFS_REPL_ENTRY_TXN : QFS_REPL_ENTRY_NOOP, &x,
				     1, &up);
			if (st.last - st.persisted == QFS_REPL_MAX_BATCH) {
				ck_assert_msg(rc == -EAGAIN, "seed=%#llx step=%d", (unsigned long long)seed, step);
			} else {
				ck_assert_msg(rc == 0, "seed=%#llx step=%d", (unsigned long long)seed, step);
				ck_assert_msg(up.npersist == 1 && up.persist[0].lsn == handed + 1,
					      "seed=%#llx step=%d: lsn not consecutive",
					      (unsigned long long)seed, step);
				handed = up.persist[0].lsn;
			}
			break;
		case 4: case 5:
			/* Sometimes out of range on either side. */
			lsn = st.persisted + (v >> 8) % (st.last - st.persisted + 3);
			if ((v >> 20) % 8 == 0 && st.persisted > 0)
				lsn = st.persisted - 1;
			rc = lsn_event(&r, QFS_REPL_EV_PERSISTED, lsn, &up);
			ck_assert_msg(rc == ((lsn > st.last || lsn < st.persisted) ? -EINVAL : 0),
				      "seed=%#llx step=%d", (unsigned long long)seed, step);
			break;
		case 6:
			lsn = st.applied + (v >> 8) % (st.commit - st.applied + 3);
			if ((v >> 20) % 8 == 0 && st.applied > 0)
				lsn = st.applied - 1;
			rc = lsn_event(&r, QFS_REPL_EV_APPLIED, lsn, &up);
			ck_assert_msg(rc == ((lsn > st.commit || lsn < st.applied) ? -EINVAL : 0),
				      "seed=%#llx step=%d", (unsigned long long)seed, step);
			break;
		default: {
			struct qfs_repl_event ev = { .type = QFS_REPL_EV_TICK, .now_ms = (uint64_t)step };
			rc = qfs_repl_step(&r, &ev, &up);
			ck_assert_int_eq(rc, 0);
			break;
		}
		}
		qfs_repl_state(&r, &st);
		if (rc)
			ck_assert_msg(memcmp(&st, &prev, sizeof(st)) == 0,
				      "seed=%#llx step=%d: state changed on error",
				      (unsigned long long)seed, step);
		ck_assert_msg(st.applied <= st.commit && st.commit <= st.persisted &&
			      st.persisted <= st.last,
			      "seed=%#llx step=%d: order violated", (unsigned long long)seed, step);
		ck_assert_msg(st.commit >= prev.commit && st.applied >= prev.applied &&
			      st.persisted >= prev.persisted && st.last >= prev.last,
			      "seed=%#llx step=%d: went backwards", (unsigned long long)seed, step);
		ck_assert_msg(st.last == handed, "seed=%#llx step=%d", (unsigned long long)seed, step);
		ck_assert_msg(st.last - st.persisted <= QFS_REPL_MAX_BATCH, "seed=%#llx step=%d",
			      (unsigned long long)seed, step);
		ck_assert_msg(up.commit == st.commit, "seed=%#llx step=%d", (unsigned long long)seed,
			      step);
		prev = st;
	}
}
END_TEST

static Suite *repl_suite(void)
{
	Suite *s = suite_create("repl");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_sequence);
	tcase_add_test(tc, test_batch_limit);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_entry_framing);
	tcase_add_loop_test(tc, test_random_walk, 0, 8);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(repl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
