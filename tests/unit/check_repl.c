/*
 * check_repl.c - unit tests of the log entry framing (src/repl/repl.c):
 * u8 type | be64 ballot | be64 time_ns | data.
 *
 * The exact bytes of the header, encode/decode round trips (fixed edge
 * values and a seeded walk of random entries in exactly-sized heap buffers,
 * so that ASan catches any read past the record), and every rejected record:
 * each length shorter than the header and each unknown type byte give
 * QFS_ECORRUPT with the output untouched.  The protocol itself is tested by
 * check_paxos, tests/sim and check_rnode.  Set QFS_SEED to replay one walk;
 * a failure prints the seed.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "repl/repl.h"

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

/* Encode e (header + e->data) into a heap record of exactly the right size. */
static uint8_t *frame(const struct qfs_repl_entry *e, size_t *len)
{
	uint8_t *rec = malloc(QFS_REPL_ENTRY_HDR + e->len + 1); /* +1: never 0 */

	ck_assert_ptr_nonnull(rec);
	ck_assert_uint_eq(qfs_repl_entry_encode_hdr(rec, e), QFS_REPL_ENTRY_HDR);
	if (e->len)
		memcpy(rec + QFS_REPL_ENTRY_HDR, e->data, e->len);
	*len = QFS_REPL_ENTRY_HDR + e->len;
	return rec;
}

START_TEST(test_header_bytes)
{
	uint8_t hdr[QFS_REPL_ENTRY_HDR + 1];
	struct qfs_repl_entry e = { .lsn = 5, .ballot = 0x0102030405060708ull,
				    .time_ns = 0x1112131415161718ull, .type = QFS_REPL_ENTRY_TXN,
				    .data = (const uint8_t *)"abc", .len = 3 };
	static const uint8_t want[QFS_REPL_ENTRY_HDR] = {
		0x01,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
	};

	ck_assert_uint_eq(QFS_REPL_ENTRY_HDR, 17);
	memset(hdr, 0xee, sizeof(hdr));
	ck_assert_uint_eq(qfs_repl_entry_encode_hdr(hdr, &e), QFS_REPL_ENTRY_HDR);
	ck_assert_mem_eq(hdr, want, QFS_REPL_ENTRY_HDR);
	ck_assert_uint_eq(hdr[QFS_REPL_ENTRY_HDR], 0xee); /* nothing written past it */

	/* The LSN is not framed: another LSN gives the same bytes. */
	e.lsn = 999;
	memset(hdr, 0, sizeof(hdr));
	qfs_repl_entry_encode_hdr(hdr, &e);
	ck_assert_mem_eq(hdr, want, QFS_REPL_ENTRY_HDR);

	e.type = QFS_REPL_ENTRY_NOOP;
	qfs_repl_entry_encode_hdr(hdr, &e);
	ck_assert_uint_eq(hdr[0], 0x02);
}
END_TEST

START_TEST(test_round_trip)
{
	static const uint64_t vals[] = { 0, 1, 0xff, 0x100, 0x8000000000000000ull, UINT64_MAX };
	static const uint8_t types[] = { QFS_REPL_ENTRY_TXN, QFS_REPL_ENTRY_NOOP };
	static const char payload[] = "a transaction\0with a zero byte";

	for (size_t t = 0; t < sizeof(types); t++)
		for (size_t b = 0; b < sizeof(vals) / sizeof(vals[0]); b++)
			for (size_t c = 0; c < sizeof(vals) / sizeof(vals[0]); c++) {
				struct qfs_repl_entry e = { .ballot = vals[b], .time_ns = vals[c],
							    .type = types[t],
							    .data = (const uint8_t *)payload,
							    .len = (b + c) % 2 ? sizeof(payload) : 0 };
				struct qfs_repl_entry d;
				qfs_lsn_t lsn = vals[(b + c) % 6] ? vals[(b + c) % 6] : 1;
				size_t len;
				uint8_t *rec = frame(&e, &len);

				memset(&d, 0xaa, sizeof(d));
				ck_assert_int_eq(qfs_repl_entry_decode(lsn, rec, len, &d), 0);
				ck_assert_uint_eq(d.lsn, lsn);
				ck_assert_uint_eq(d.type, e.type);
				ck_assert_uint_eq(d.ballot, e.ballot);
				ck_assert_uint_eq(d.time_ns, e.time_ns);
				ck_assert_uint_eq(d.len, e.len);
				ck_assert_ptr_eq(d.data, rec + QFS_REPL_ENTRY_HDR);
				if (e.len)
					ck_assert_mem_eq(d.data, payload, e.len);
				free(rec);
			}
}
END_TEST

START_TEST(test_short_record)
{
	uint8_t rec[QFS_REPL_ENTRY_HDR];
	struct qfs_repl_entry e = { .ballot = 7, .time_ns = 8, .type = QFS_REPL_ENTRY_NOOP };
	struct qfs_repl_entry d, untouched;

	qfs_repl_entry_encode_hdr(rec, &e);
	memset(&untouched, 0xaa, sizeof(untouched));
	for (size_t len = 0; len < QFS_REPL_ENTRY_HDR; len++) {
		/* Exactly len bytes on the heap: a read past them trips ASan. */
		uint8_t *p = malloc(len ? len : 1);

		ck_assert_ptr_nonnull(p);
		memcpy(p, rec, len);
		memcpy(&d, &untouched, sizeof(d));
		ck_assert_msg(qfs_repl_entry_decode(1, p, len, &d) == QFS_ECORRUPT, "len=%zu", len);
		ck_assert_msg(memcmp(&d, &untouched, sizeof(d)) == 0, "len=%zu: out written", len);
		free(p);
	}
	/* Header only is a valid empty entry (a NOOP barrier). */
	ck_assert_int_eq(qfs_repl_entry_decode(3, rec, QFS_REPL_ENTRY_HDR, &d), 0);
	ck_assert_uint_eq(d.type, QFS_REPL_ENTRY_NOOP);
	ck_assert_uint_eq(d.lsn, 3);
	ck_assert_uint_eq(d.ballot, 7);
	ck_assert_uint_eq(d.time_ns, 8);
	ck_assert_uint_eq(d.len, 0);
}
END_TEST

START_TEST(test_unknown_type)
{
	uint8_t rec[QFS_REPL_ENTRY_HDR + 4];
	struct qfs_repl_entry e = { .ballot = 1, .time_ns = 2, .type = QFS_REPL_ENTRY_TXN };
	struct qfs_repl_entry d, untouched;
	int accepted = 0;

	qfs_repl_entry_encode_hdr(rec, &e);
	memcpy(rec + QFS_REPL_ENTRY_HDR, "data", 4);
	memset(&untouched, 0xaa, sizeof(untouched));
	for (unsigned t = 0; t < 256; t++) {
		int rc;

		rec[0] = (uint8_t)t;
		memcpy(&d, &untouched, sizeof(d));
		rc = qfs_repl_entry_decode(1, rec, sizeof(rec), &d);
		if (t == QFS_REPL_ENTRY_TXN || t == QFS_REPL_ENTRY_NOOP || t == QFS_REPL_ENTRY_CONFIG) {
			ck_assert_msg(rc == 0, "type=%u", t);
			ck_assert_uint_eq(d.type, t);
			accepted++;
		} else {
			ck_assert_msg(rc == QFS_ECORRUPT, "type=%u rc=%d", t, rc);
			ck_assert_msg(memcmp(&d, &untouched, sizeof(d)) == 0, "type=%u: out written", t);
		}
	}
	ck_assert_int_eq(accepted, 3);
}
END_TEST

START_TEST(test_random_round_trip)
{
	const char *env = getenv("QFS_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed0000ull + (uint64_t)_i;
	uint64_t s = seed ? seed : 1;
	uint8_t data[300];

	for (int step = 0; step < 2000; step++) {
		struct qfs_repl_entry e, d;
		qfs_lsn_t lsn = rnd_next(&s);
		size_t len;
		uint8_t *rec;

		memset(&e, 0, sizeof(e));
		e.type = rnd_next(&s) % 2 ? QFS_REPL_ENTRY_TXN : QFS_REPL_ENTRY_NOOP;
		e.ballot = rnd_next(&s);
		e.time_ns = rnd_next(&s);
		e.len = rnd_next(&s) % (sizeof(data) + 1);
		for (size_t i = 0; i < e.len; i++)
			data[i] = (uint8_t)rnd_next(&s);
		e.data = data;
		rec = frame(&e, &len);
		ck_assert_msg(qfs_repl_entry_decode(lsn, rec, len, &d) == 0, "seed=%#llx step=%d",
			      (unsigned long long)seed, step);
		ck_assert_msg(d.lsn == lsn && d.type == e.type && d.ballot == e.ballot &&
			      d.time_ns == e.time_ns && d.len == e.len &&
			      d.data == rec + QFS_REPL_ENTRY_HDR &&
			      (e.len == 0 || memcmp(d.data, data, e.len) == 0),
			      "seed=%#llx step=%d: round trip differs", (unsigned long long)seed, step);
		free(rec);
	}
}
END_TEST

static Suite *repl_suite(void)
{
	Suite *s = suite_create("repl");
	TCase *tc = tcase_create("framing");

	tcase_add_test(tc, test_header_bytes);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_short_record);
	tcase_add_test(tc, test_unknown_type);
	tcase_add_loop_test(tc, test_random_round_trip, 0, 4);
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
