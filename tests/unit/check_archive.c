/*
 * check_archive.c - unit tests of the archive's pure code (src/archive/
 * manifest.c): manifest encode/decode and its corruption detection, the
 * snapshot format round trip and corruption, the walk over a real WAL
 * segment written by src/wal, the point-in-time plan, and time parsing.
 * Formats: doc/format-archive.md.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive_int.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "repl/repl.h"
#include "wal/wal.h"

static struct qfs_arch_seg seg(qfs_lsn_t first, qfs_lsn_t last, uint64_t t0, uint64_t t1)
{
	struct qfs_arch_seg s = { first, last, 1000 + first, (uint32_t)(0xabc00000u + first), t0, t1 };
	return s;
}

static void sample(struct qfs_arch_manifest *m)
{
	struct qfs_arch_seg s1 = seg(1, 10, 100, 200), s2 = seg(11, 20, 300, 400), s3 = seg(21, 30, 500, 600);
	struct qfs_arch_snap sn = { .lsn = 20, .size = 77, .crc = 0xdeadbeef, .time_ns = 450, .items = 5 };

	qfs_arch_manifest_init(m, 0x400);
	ck_assert_int_eq(qfs_arch_manifest_add_seg(m, &s1), 0);
	ck_assert_int_eq(qfs_arch_manifest_add_seg(m, &s2), 0);
	ck_assert_int_eq(qfs_arch_manifest_add_seg(m, &s3), 0);
	ck_assert_int_eq(qfs_arch_manifest_add_snap(m, &sn), 0);
}

START_TEST(manifest_roundtrip)
{
	struct qfs_arch_manifest m, d;
	struct qfs_buf b, b2;

	sample(&m);
	qfs_buf_init(&b);
	qfs_arch_manifest_encode(&m, &b);
	ck_assert_int_eq(b.err, 0);
	ck_assert(memmem(b.data, b.len, "quorumfs-manifest 1\ngroup 0000000000000400\n", 43) == b.data);
	qfs_arch_manifest_init(&d, 0x400);
	ck_assert_int_eq(qfs_arch_manifest_decode(b.data, b.len, 0x400, &d), 0);
	ck_assert_uint_eq(d.nsegs, 3);
	ck_assert_uint_eq(d.nsnaps, 1);
	ck_assert_uint_eq(qfs_arch_manifest_last(&d), 30);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(d.segs[i].first, m.segs[i].first);
		ck_assert_uint_eq(d.segs[i].last, m.segs[i].last);
		ck_assert_uint_eq(d.segs[i].size, m.segs[i].size);
		ck_assert_uint_eq(d.segs[i].crc, m.segs[i].crc);
		ck_assert_uint_eq(d.segs[i].t_first, m.segs[i].t_first);
		ck_assert_uint_eq(d.segs[i].t_last, m.segs[i].t_last);
	}
	ck_assert_uint_eq(d.snaps[0].lsn, 20);
	ck_assert_uint_eq(d.snaps[0].size, 77);
	ck_assert_uint_eq(d.snaps[0].crc, 0xdeadbeef);
	ck_assert_uint_eq(d.snaps[0].time_ns, 450);
	ck_assert_uint_eq(d.snaps[0].items, 5);
	/* re-encoding is byte-identical */
	qfs_buf_init(&b2);
	qfs_arch_manifest_encode(&d, &b2);
	ck_assert_uint_eq(b2.len, b.len);
	ck_assert(memcmp(b2.data, b.data, b.len) == 0);
	/* another group's manifest is refused */
	ck_assert_int_eq(qfs_arch_manifest_decode(b.data, b.len, 0x401, &d), QFS_ECORRUPT);
	/* the empty manifest */
	qfs_arch_manifest_close(&m);
	qfs_buf_reset(&b);
	qfs_arch_manifest_encode(&m, &b);
	ck_assert_int_eq(qfs_arch_manifest_decode(b.data, b.len, 0x400, &d), 0);
	ck_assert_uint_eq(d.nsegs, 0);
	qfs_buf_close(&b);
	qfs_buf_close(&b2);
	qfs_arch_manifest_close(&d);
}
END_TEST

START_TEST(manifest_rules)
{
	struct qfs_arch_manifest m;
	struct qfs_arch_seg gap = seg(32, 40, 0, 0), bad = seg(41, 40, 0, 0), next = seg(31, 40, 0, 0);
	struct qfs_arch_snap old = { .lsn = 20 };

	sample(&m);
	ck_assert_int_eq(qfs_arch_manifest_add_seg(&m, &gap), -EINVAL);
	ck_assert_int_eq(qfs_arch_manifest_add_seg(&m, &bad), -EINVAL);
	ck_assert_int_eq(qfs_arch_manifest_add_snap(&m, &old), -EINVAL);
	ck_assert_int_eq(qfs_arch_manifest_add_seg(&m, &next), 0);
	ck_assert_uint_eq(qfs_arch_manifest_last(&m), 40);
	qfs_arch_manifest_close(&m);
}
END_TEST

/* Every single-byte change and every truncation of a manifest is refused
 * (the end line's CRC and count cover everything before it). */
START_TEST(manifest_corruption)
{
	struct qfs_arch_manifest m, d;
	struct qfs_buf b;

	sample(&m);
	qfs_buf_init(&b);
	qfs_arch_manifest_encode(&m, &b);
	qfs_arch_manifest_init(&d, 0x400);
	for (size_t i = 0; i < b.len; i++) {
		uint8_t saved = b.data[i];

		b.data[i] ^= 0x01;
		ck_assert_msg(qfs_arch_manifest_decode(b.data, b.len, 0x400, &d) != 0, "flip at %zu accepted", i);
		b.data[i] = saved;
	}
	for (size_t n = 0; n < b.len; n++)
		ck_assert_msg(qfs_arch_manifest_decode(b.data, n, 0x400, &d) != 0, "truncation %zu accepted", n);
	/* a newer version is a format error, not corruption */
	b.data[18] = '2';
	ck_assert_int_eq(qfs_arch_manifest_decode(b.data, b.len, 0x400, &d), QFS_EFORMAT);
	ck_assert_uint_eq(d.nsegs, 0); /* untouched on error */
	qfs_buf_close(&b);
	qfs_arch_manifest_close(&m);
	qfs_arch_manifest_close(&d);
}
END_TEST

/* ---------------------------------------------------------------- snapshots */

static void snap_build(struct qfs_buf *b, size_t nitems)
{
	uint8_t h[QFS_ARCH_SNAP_HDR], rh[QFS_ARCH_SNAP_REC_HDR], tr[QFS_ARCH_SNAP_TRAILER];
	uint32_t crc = 0;
	size_t start;

	qfs_arch_snap_header(h, 0x400, 99, 123456789);
	qfs_buf_put(b, h, sizeof(h));
	start = b->len;
	for (size_t i = 0; i < nitems; i++) {
		char k[32], v[64];
		int kl = snprintf(k, sizeof(k), "key%04zu", i), vl = snprintf(v, sizeof(v), "value-%zu", i * 7);

		qfs_arch_snap_rec_header(rh, (uint32_t)kl, (uint32_t)vl);
		qfs_buf_put(b, rh, sizeof(rh));
		qfs_buf_put(b, k, (size_t)kl);
		qfs_buf_put(b, v, (size_t)vl);
	}
	crc = qfs_crc32c(0, b->data + start, b->len - start);
	qfs_arch_snap_trailer(tr, nitems, crc);
	qfs_buf_put(b, tr, sizeof(tr));
}

struct seen {
	size_t n;
	int bad;
};

static int item_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct seen *s = arg;
	char ek[32], ev[64];
	int ekl = snprintf(ek, sizeof(ek), "key%04zu", s->n), evl = snprintf(ev, sizeof(ev), "value-%zu", s->n * 7);

	if ((size_t)ekl != kl || (size_t)evl != vl || memcmp(ek, k, kl) || memcmp(ev, v, vl))
		s->bad = 1;
	s->n++;
	return 0;
}

START_TEST(snapshot_roundtrip)
{
	struct qfs_buf b;
	struct seen s = { 0, 0 };
	qfs_group_t g;
	qfs_lsn_t lsn;
	uint64_t t, items;

	qfs_buf_init(&b);
	snap_build(&b, 50);
	ck_assert_int_eq(qfs_arch_snap_walk(b.data, b.len, item_cb, &s, &g, &lsn, &t, &items, NULL), 0);
	ck_assert_uint_eq(s.n, 50);
	ck_assert_int_eq(s.bad, 0);
	ck_assert_uint_eq(g, 0x400);
	ck_assert_uint_eq(lsn, 99);
	ck_assert_uint_eq(t, 123456789);
	ck_assert_uint_eq(items, 50);
	/* empty snapshot */
	qfs_buf_reset(&b);
	snap_build(&b, 0);
	ck_assert_int_eq(qfs_arch_snap_walk(b.data, b.len, NULL, NULL, &g, &lsn, &t, &items, NULL), 0);
	ck_assert_uint_eq(items, 0);
	qfs_buf_close(&b);
}
END_TEST

/* Any flipped byte or truncation is detected before the first item is
 * handed out (so restore never loads half a snapshot). */
START_TEST(snapshot_corruption)
{
	struct qfs_buf b;
	qfs_group_t g;
	qfs_lsn_t lsn;
	uint64_t t, items;
	const char *why;

	qfs_buf_init(&b);
	snap_build(&b, 10);
	for (size_t i = 0; i < b.len; i++) {
		struct seen s = { 0, 0 };
		uint8_t saved = b.data[i];

		if (i >= 32 && i < 44)
			continue; /* reserved and flags bytes are covered by the header CRC too */
		b.data[i] ^= 0x40;
		why = NULL;
		ck_assert_msg(qfs_arch_snap_walk(b.data, b.len, item_cb, &s, &g, &lsn, &t, &items, &why) != 0,
			      "flip at %zu accepted", i);
		ck_assert_uint_eq(s.n, 0);
		ck_assert(why != NULL);
		b.data[i] = saved;
	}
	for (size_t n = 0; n < b.len; n++) {
		struct seen s = { 0, 0 };
		ck_assert(qfs_arch_snap_walk(b.data, n, item_cb, &s, &g, &lsn, &t, &items, NULL) != 0);
		ck_assert_uint_eq(s.n, 0);
	}
	qfs_buf_close(&b);
}
END_TEST

/* ---------------------------------------------------------------- segments */

static char tmpdir[64];

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_archive.XXXXXX");
	ck_assert(mkdtemp(tmpdir) != NULL);
}

static void tmp_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	*data = malloc((size_t)st.st_size);
	*len = (size_t)read(fd, *data, (size_t)st.st_size);
	close(fd);
	return *len == (size_t)st.st_size ? 0 : -1;
}

struct recs {
	qfs_lsn_t next;
	uint64_t last_time;
	int bad;
};

static int rec_cb(qfs_lsn_t lsn, uint8_t type, uint64_t time_ns, const uint8_t *data, size_t len, void *arg)
{
	struct recs *r = arg;
	char want[32];
	int wl = snprintf(want, sizeof(want), "txn-%llu", (unsigned long long)lsn);

	if (lsn != r->next || type != QFS_REPL_ENTRY_TXN || time_ns != 1000 * lsn || (size_t)wl != len ||
	    memcmp(want, data, len))
		r->bad = 1;
	r->next++;
	r->last_time = time_ns;
	return 0;
}

/* A sealed segment written by the real WAL walks with every record; any
 * flipped payload byte fails a record CRC. */
START_TEST(segment_walk)
{
	struct qfs_wal *w;
	char path[128];
	uint8_t *data;
	size_t len;
	struct qfs_arch_seg s;
	struct recs r = { 5, 0, 0 };
	const char *why;

	ck_assert_int_eq(qfs_wal_open(tmpdir, NULL, &w), 0);
	for (qfs_lsn_t lsn = 5; lsn <= 24; lsn++) {
		uint8_t rec[64];
		struct qfs_repl_entry e = { .lsn = lsn, .ballot = 1, .time_ns = 1000 * lsn, .type = QFS_REPL_ENTRY_TXN };
		size_t h = qfs_repl_entry_encode_hdr(rec, &e);
		int n = snprintf((char *)rec + h, sizeof(rec) - h, "txn-%llu", (unsigned long long)lsn);
		ck_assert_int_eq(qfs_wal_append(w, lsn, rec, h + (size_t)n), 0);
	}
	ck_assert_int_eq(qfs_wal_seal(w), 0);
	qfs_wal_close(w);
	snprintf(path, sizeof(path), "%s/0000000000000005.wal", tmpdir);
	ck_assert_int_eq(read_file(path, &data, &len), 0);

	ck_assert_int_eq(qfs_arch_seg_walk(data, len, rec_cb, &r, &s, NULL), 0);
	ck_assert_int_eq(r.bad, 0);
	ck_assert_uint_eq(r.next, 25);
	ck_assert_uint_eq(s.first, 5);
	ck_assert_uint_eq(s.last, 24);
	ck_assert_uint_eq(s.size, len);
	ck_assert_uint_eq(s.crc, qfs_crc32c(0, data, len));
	ck_assert_uint_eq(s.t_first, 5000);
	ck_assert_uint_eq(s.t_last, 24000);

	for (size_t i = 0; i < len; i++) {
		data[i] ^= 0x10;
		why = NULL;
		ck_assert_msg(qfs_arch_seg_walk(data, len, NULL, NULL, &s, &why) != 0, "flip at %zu accepted", i);
		ck_assert(why != NULL);
		data[i] ^= 0x10;
	}
	/* a torn copy (any proper prefix cut inside a record) is refused */
	for (size_t n = 0; n < len; n += 7) {
		int rc = qfs_arch_seg_walk(data, n, NULL, NULL, &s, NULL);
		if (rc == 0)
			ck_assert_uint_lt(s.last, 24); /* cut exactly at a record boundary */
	}
	free(data);
}
END_TEST

/* ---------------------------------------------------------------- plan */

START_TEST(plan_cut)
{
	struct qfs_arch_manifest m;
	struct qfs_arch_plan p;

	sample(&m); /* segs 1-10 [100,200], 11-20 [300,400], 21-30 [500,600]; snap lsn 20 @450 */
	/* before everything: no snapshot, nothing to replay */
	ck_assert_int_eq(qfs_arch_plan(&m, 50, &p), 0);
	ck_assert_int_eq(p.snap, -1);
	ck_assert_uint_eq(p.seg_lo, 0);
	ck_assert_uint_eq(p.seg_hi, 0);
	/* inside segment 2, before the snapshot's time: replay 1..2 */
	ck_assert_int_eq(qfs_arch_plan(&m, 350, &p), 0);
	ck_assert_int_eq(p.snap, -1);
	ck_assert_uint_eq(p.from, 0);
	ck_assert_uint_eq(p.seg_lo, 0);
	ck_assert_uint_eq(p.seg_hi, 2);
	/* after the snapshot: start there, replay only segment 3 */
	ck_assert_int_eq(qfs_arch_plan(&m, 550, &p), 0);
	ck_assert_int_eq(p.snap, 0);
	ck_assert_uint_eq(p.from, 20);
	ck_assert_uint_eq(p.seg_lo, 2);
	ck_assert_uint_eq(p.seg_hi, 3);
	/* between the snapshot and segment 3: snapshot alone */
	ck_assert_int_eq(qfs_arch_plan(&m, 460, &p), 0);
	ck_assert_int_eq(p.snap, 0);
	ck_assert_uint_eq(p.seg_lo, 2);
	ck_assert_uint_eq(p.seg_hi, 2);
	/* latest */
	ck_assert_int_eq(qfs_arch_plan(&m, UINT64_MAX, &p), 0);
	ck_assert_uint_eq(p.seg_hi, 3);
	qfs_arch_manifest_close(&m);

	/* segments starting past LSN 1 with no snapshot cannot be restored */
	struct qfs_arch_seg s = seg(11, 20, 300, 400);
	qfs_arch_manifest_init(&m, 1);
	ck_assert_int_eq(qfs_arch_manifest_add_seg(&m, &s), 0);
	ck_assert_int_eq(qfs_arch_plan(&m, UINT64_MAX, &p), -ENODATA);
	/* ... but a snapshot at 10 bridges it */
	struct qfs_arch_snap sn = { .lsn = 10, .time_ns = 250 };
	ck_assert_int_eq(qfs_arch_manifest_add_snap(&m, &sn), 0);
	ck_assert_int_eq(qfs_arch_plan(&m, UINT64_MAX, &p), 0);
	ck_assert_int_eq(p.snap, 0);
	ck_assert_uint_eq(p.seg_lo, 0);
	ck_assert_uint_eq(p.seg_hi, 1);
	/* a snapshot at 5 does not (hole 6..10) */
	qfs_arch_manifest_close(&m);
	struct qfs_arch_snap sn5 = { .lsn = 5, .time_ns = 250 };
	ck_assert_int_eq(qfs_arch_manifest_add_seg(&m, &s), 0);
	ck_assert_int_eq(qfs_arch_manifest_add_snap(&m, &sn5), 0);
	ck_assert_int_eq(qfs_arch_plan(&m, UINT64_MAX, &p), -ENODATA);
	qfs_arch_manifest_close(&m);
}
END_TEST

START_TEST(parse_time)
{
	uint64_t t;

	ck_assert_int_eq(qfs_arch_parse_time("latest", &t), 0);
	ck_assert_uint_eq(t, UINT64_MAX);
	ck_assert_int_eq(qfs_arch_parse_time("@1700000000", &t), 0);
	ck_assert_uint_eq(t, 1700000000ull * 1000000000ull);
	ck_assert_int_eq(qfs_arch_parse_time("@1700000000.123456789", &t), 0);
	ck_assert_uint_eq(t, 1700000000123456789ull);
	ck_assert_int_eq(qfs_arch_parse_time("2023-11-14T22:13:20Z", &t), 0);
	ck_assert_uint_eq(t, 1700000000ull * 1000000000ull);
	ck_assert_int_eq(qfs_arch_parse_time("2023-11-14T22:13:20.5Z", &t), 0);
	ck_assert_uint_eq(t, 1700000000500000000ull);
	ck_assert_int_eq(qfs_arch_parse_time("2023-11-14 22:13:20.123+00:00", &t), 0);
	ck_assert_uint_eq(t, 1700000000123000000ull);
	ck_assert_int_eq(qfs_arch_parse_time("2026-11-25T12:34:56.123Z", &t), 0);
	const char *bad[] = { "", "@", "@-1", "@12x", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
			      "2023-11-14T22:13:20+01:00", "2023-11-14T25:13:20Z", "yesterday", "2023-11-14T22:13:20.Z" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(qfs_arch_parse_time(bad[i], &t) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(keys)
{
	char k[QFS_ARCH_KEY_MAX];

	qfs_arch_key_manifest(k, 0x400);
	ck_assert_str_eq(k, "groups/0000000000000400/manifest");
	qfs_arch_key_seg(k, 1, 1, 0x3e8);
	ck_assert_str_eq(k, "groups/0000000000000001/wal/0000000000000001-00000000000003e8.seg");
	qfs_arch_key_snap(k, 0x400, 0x2b);
	ck_assert_str_eq(k, "groups/0000000000000400/snap/000000000000002b.snap");
}
END_TEST

/* Retention keeps exactly what restores to any time >= the window's start
 * need: every plan inside the window still works on the shortened
 * manifest, and the earliest restorable time is the kept snapshot's. */
START_TEST(retention)
{
	struct qfs_arch_manifest m, k;
	struct qfs_arch_plan p;
	size_t ds, dn;

	sample(&m); /* segs 1-10 [100,200], 11-20 [300,400], 21-30 [500,600]; snap lsn 20 @450 */
	ck_assert_uint_eq(qfs_arch_earliest(&m), 0);
	/* window starting before the snapshot: nothing may go */
	qfs_arch_retain(&m, 449, &ds, &dn);
	ck_assert_uint_eq(ds, 0);
	ck_assert_uint_eq(dn, 0);
	/* window starting after it: segments 1-10 and 11-20 go, the snapshot stays */
	qfs_arch_retain(&m, 451, &ds, &dn);
	ck_assert_uint_eq(ds, 2);
	ck_assert_uint_eq(dn, 0);
	qfs_arch_manifest_init(&k, m.group);
	for (size_t i = ds; i < m.nsegs; i++)
		ck_assert_int_eq(qfs_arch_manifest_add_seg(&k, &m.segs[i]), 0);
	for (size_t i = dn; i < m.nsnaps; i++)
		ck_assert_int_eq(qfs_arch_manifest_add_snap(&k, &m.snaps[i]), 0);
	ck_assert_uint_eq(qfs_arch_earliest(&k), 450);
	for (uint64_t t = 451; t < 700; t += 7) {
		struct qfs_arch_plan q;
		ck_assert_int_eq(qfs_arch_plan(&k, t, &p), 0);
		ck_assert_int_eq(qfs_arch_plan(&m, t, &q), 0);
		ck_assert_uint_eq(p.from, q.from); /* same starting point, same replay */
	}
	ck_assert_int_eq(qfs_arch_plan(&k, 300, &p), -ENODATA); /* before the window: refused */
	qfs_arch_manifest_close(&k);
	/* the last segment always stays */
	struct qfs_arch_snap late = { .lsn = 30, .time_ns = 700 };
	ck_assert_int_eq(qfs_arch_manifest_add_snap(&m, &late), 0);
	qfs_arch_retain(&m, 800, &ds, &dn);
	ck_assert_uint_eq(ds, 2);
	ck_assert_uint_eq(dn, 1);
	qfs_arch_manifest_close(&m);
}
END_TEST

static Suite *archive_suite(void)
{
	Suite *s = suite_create("archive");
	TCase *tc = tcase_create("manifest");

	tcase_add_test(tc, manifest_roundtrip);
	tcase_add_test(tc, manifest_rules);
	tcase_add_test(tc, manifest_corruption);
	tcase_add_test(tc, keys);
	suite_add_tcase(s, tc);
	tc = tcase_create("snapshot");
	tcase_add_test(tc, snapshot_roundtrip);
	tcase_add_test(tc, snapshot_corruption);
	suite_add_tcase(s, tc);
	tc = tcase_create("segment");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, segment_walk);
	suite_add_tcase(s, tc);
	tc = tcase_create("pitr");
	tcase_add_test(tc, plan_cut);
	tcase_add_test(tc, retention);
	tcase_add_test(tc, parse_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(archive_suite());
	int failed;

	qfs_log_level = QFS_LOG_ERR;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
