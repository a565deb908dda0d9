/*
 * check_common.c - unit tests of src/common (Check suite "common"): error
 * codes, logging, buffers, key ordering and parsing, item and txn codecs
 * (round trips, every truncated prefix, version bumps) and xattr semantics.
 * crc32c has its own tests elsewhere.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include "common/bigbuf.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/item.h"
#include "common/key.h"
#include "common/glist.h"
#include "common/log.h"
#include "common/qfs.h"
#include "common/txn.h"

/* ---- bigbuf.c ---- */

static struct qfs_bigbuf_stats bb_stats(void)
{
	struct qfs_bigbuf_stats st;

	qfs_bigbuf_stats(&st);
	return st;
}

/* A large buffer given back is reused by the next get that fits (the
 * smallest such), with its contents still there (not reallocated); a
 * small one is plain malloc and never held. */
START_TEST(test_bigbuf_reuse)
{
	size_t cap, cap2, cap3;
	uint8_t *p, *q, *r, *s;

	qfs_bigbuf_trim(0);
	p = qfs_bigbuf_get(100, &cap);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(cap, 100);
	qfs_bigbuf_put(p, cap);
	ck_assert_uint_eq(bb_stats().held, 0);

	p = qfs_bigbuf_get(3 * QFS_BIGBUF_ROUND + 1, &cap);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(cap, 4 * QFS_BIGBUF_ROUND);
	ck_assert_uint_eq(bb_stats().misses, 1);
	memset(p, 0xa5, cap);
	r = qfs_bigbuf_get(8 * QFS_BIGBUF_ROUND, &cap3);
	ck_assert_ptr_nonnull(r);
	qfs_bigbuf_put(r, cap3);
	qfs_bigbuf_put(p, cap);
	ck_assert_uint_eq(bb_stats().held, 2);
	ck_assert_uint_eq(bb_stats().held_bytes, cap + cap3);

	q = qfs_bigbuf_get(2 * QFS_BIGBUF_ROUND, &cap2);
	ck_assert_ptr_eq(q, p); /* the smallest that fits, not r */
	ck_assert_uint_eq(cap2, cap);
	ck_assert_uint_eq(q[cap - 1], 0xa5);
	ck_assert_uint_eq(bb_stats().hits, 1);
	ck_assert_uint_eq(bb_stats().held, 1);
	s = qfs_bigbuf_get(5 * QFS_BIGBUF_ROUND, &cap3);
	ck_assert_ptr_eq(s, r);
	ck_assert_uint_eq(bb_stats().held, 0);
	ck_assert_uint_eq(bb_stats().held_bytes, 0);
	/* nothing held fits: a new one */
	r = qfs_bigbuf_get(QFS_BIGBUF_MIN, &cap);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(bb_stats().misses, 3);
	free(r); /* plain free is allowed */
	qfs_bigbuf_put(q, cap2);
	qfs_bigbuf_put(s, cap3);
	qfs_bigbuf_put(NULL, 0);
	ck_assert_uint_eq(bb_stats().held, 2);
	qfs_bigbuf_trim(0);
}
END_TEST

/* At most QFS_BIGBUF_KEEP buffers and QFS_BIGBUF_KEEP_BYTES are held: the
 * rest are freed by the put (counted); a larger buffer displaces the
 * smallest held one; one above the byte bound is never held. */
START_TEST(test_bigbuf_bound)
{
	void *v[QFS_BIGBUF_KEEP + 3], *big;
	size_t caps[QFS_BIGBUF_KEEP + 3], cap;
	struct qfs_bigbuf_stats st;

	qfs_bigbuf_trim(0);
	for (unsigned i = 0; i < QFS_BIGBUF_KEEP + 3; i++) {
		v[i] = qfs_bigbuf_get(QFS_BIGBUF_MIN, &caps[i]);
		ck_assert_ptr_nonnull(v[i]);
	}
	for (unsigned i = 0; i < QFS_BIGBUF_KEEP + 3; i++)
		qfs_bigbuf_put(v[i], caps[i]);
	st = bb_stats();
	ck_assert_uint_eq(st.held, QFS_BIGBUF_KEEP);
	ck_assert_uint_eq(st.drops, 3);
	ck_assert_uint_le(st.held_bytes, QFS_BIGBUF_KEEP_BYTES);

	/* a larger one displaces a smaller one */
	big = qfs_bigbuf_get(4 * QFS_BIGBUF_MIN, &cap);
	ck_assert_ptr_nonnull(big);
	qfs_bigbuf_put(big, cap);
	st = bb_stats();
	ck_assert_uint_eq(st.held, QFS_BIGBUF_KEEP);
	ck_assert_uint_eq(st.drops, 4);
	ck_assert_uint_eq(st.held_bytes, (QFS_BIGBUF_KEEP - 1) * (size_t)QFS_BIGBUF_MIN + cap);
	ck_assert_ptr_eq(qfs_bigbuf_get(3 * QFS_BIGBUF_MIN, &cap), big);
	qfs_bigbuf_put(big, cap);

	/* the byte bound: buffers of a third of it, at most two held (plus
	 * nothing else, the small ones displaced) */
	qfs_bigbuf_trim(0);
	for (unsigned i = 0; i < 4; i++) {
		v[i] = qfs_bigbuf_get(QFS_BIGBUF_KEEP_BYTES / 3, &caps[i]);
		ck_assert_ptr_nonnull(v[i]);
	}
	for (unsigned i = 0; i < 4; i++)
		qfs_bigbuf_put(v[i], caps[i]);
	st = bb_stats();
	ck_assert_uint_le(st.held_bytes, QFS_BIGBUF_KEEP_BYTES);
	ck_assert_uint_eq(st.held, QFS_BIGBUF_KEEP_BYTES / caps[0]);

	/* above the byte bound: freed at once */
	qfs_bigbuf_trim(0);
	big = qfs_bigbuf_get(QFS_BIGBUF_KEEP_BYTES + 1, &cap);
	ck_assert_ptr_nonnull(big);
	qfs_bigbuf_put(big, cap);
	ck_assert_uint_eq(bb_stats().held, 0);
}
END_TEST

/* A lent buffer (kept by its caller, qfs_bigbuf_lend) lowers the byte
 * bound of the held ones: lending frees the largest held buffers past the
 * lowered bound, puts respect it, unlend gives the room back. */
START_TEST(test_bigbuf_lend)
{
	void *v[3], *kept;
	size_t caps[3], kcap, third = QFS_BIGBUF_KEEP_BYTES / 3;
	struct qfs_bigbuf_stats st;

	qfs_bigbuf_trim(0);
	for (unsigned i = 0; i < 3; i++) {
		v[i] = qfs_bigbuf_get(third, &caps[i]);
		ck_assert_ptr_nonnull(v[i]);
	}
	kept = qfs_bigbuf_get(third, &kcap);
	ck_assert_ptr_nonnull(kept);
	for (unsigned i = 0; i < 3; i++)
		qfs_bigbuf_put(v[i], caps[i]);
	st = bb_stats();
	ck_assert_uint_eq(st.held, 3);
	ck_assert_uint_eq(st.lent_bytes, 0);
	qfs_bigbuf_lend(kcap);
	st = bb_stats();
	ck_assert_uint_eq(st.lent_bytes, kcap);
	ck_assert_uint_eq(st.held, 2); /* held + lent within the bound */
	ck_assert_uint_le(st.held_bytes + st.lent_bytes, QFS_BIGBUF_KEEP_BYTES);
	/* a put while lent: not held past the lowered bound */
	v[0] = qfs_bigbuf_get(third, &caps[0]);
	ck_assert_ptr_nonnull(v[0]);
	v[1] = qfs_bigbuf_get(third, &caps[1]);
	ck_assert_ptr_nonnull(v[1]);
	ck_assert_uint_eq(bb_stats().held, 0);
	qfs_bigbuf_put(v[0], caps[0]);
	qfs_bigbuf_put(v[1], caps[1]);
	v[2] = qfs_bigbuf_get(third, &caps[2]);
	ck_assert_ptr_nonnull(v[2]);
	qfs_bigbuf_put(v[2], caps[2]);
	st = bb_stats();
	ck_assert_uint_eq(st.held, 2);
	ck_assert_uint_le(st.held_bytes + st.lent_bytes, QFS_BIGBUF_KEEP_BYTES);
	/* unlent and put back: held again up to the full bound */
	qfs_bigbuf_unlend(kcap);
	qfs_bigbuf_put(kept, kcap);
	st = bb_stats();
	ck_assert_uint_eq(st.lent_bytes, 0);
	ck_assert_uint_eq(st.held, 3);
	/* lending more than the bound holds nothing */
	qfs_bigbuf_lend(QFS_BIGBUF_KEEP_BYTES + 1);
	ck_assert_uint_eq(bb_stats().held, 0);
	qfs_bigbuf_unlend(QFS_BIGBUF_KEEP_BYTES + 1);
	ck_assert_uint_eq(bb_stats().lent_bytes, 0);
	qfs_bigbuf_trim(0);
}
END_TEST

/* A held buffer unused for the idle time is freed by trim (and by the
 * next get or put); a recent one stays; trim(0) frees all. */
START_TEST(test_bigbuf_idle)
{
	size_t c1, c2;
	void *a = qfs_bigbuf_get(QFS_BIGBUF_MIN, &c1), *b = qfs_bigbuf_get(QFS_BIGBUF_MIN, &c2);

	qfs_bigbuf_trim(0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	qfs_bigbuf_put(a, c1);
	qfs_bigbuf_trim(QFS_BIGBUF_IDLE_MS);
	ck_assert_uint_eq(bb_stats().held, 1); /* not idle yet */
	/* a idle 300 ms, b a moment: a trim of what is idle 250 ms frees a
	 * only (was 60 and 50 ms: b, put just before, was freed too if the
	 * test lost the CPU for 50 ms between the two calls, as a loaded
	 * machine can) */
	usleep(300 * 1000);
	qfs_bigbuf_put(b, c2);
	qfs_bigbuf_trim(250);
	ck_assert_uint_eq(bb_stats().held, 1); /* a went, b stays */
	ck_assert_uint_eq(bb_stats().idle_frees, 1);
	ck_assert_ptr_eq(qfs_bigbuf_get(QFS_BIGBUF_MIN, &c1), b);
	qfs_bigbuf_put(b, c1);
	qfs_bigbuf_trim(0);
	ck_assert_uint_eq(bb_stats().held, 0);
	ck_assert_uint_eq(bb_stats().held_bytes, 0);
	ck_assert_uint_eq(bb_stats().idle_frees, 2);
}
END_TEST

/* A request the size of the address space is refused (NULL, *cap left
 * alone), never served by a held buffer: rounding it up to the pool's
 * step wrapped to 0, so any held buffer "fitted" and was handed out, far
 * smaller than asked (and with nothing held, malloc(0)). */
START_TEST(test_bigbuf_huge)
{
	size_t cap, cap2 = 7;
	void *p;

	qfs_bigbuf_trim(0);
	p = qfs_bigbuf_get(QFS_BIGBUF_MIN, &cap);
	ck_assert_ptr_nonnull(p);
	qfs_bigbuf_put(p, cap);
	ck_assert_uint_eq(bb_stats().held, 1);
	ck_assert_ptr_null(qfs_bigbuf_get(SIZE_MAX, &cap2));
	ck_assert_ptr_null(qfs_bigbuf_get(SIZE_MAX - QFS_BIGBUF_ROUND + 2, &cap2));
	ck_assert_uint_eq(cap2, 7);
	ck_assert_uint_eq(bb_stats().held, 1); /* still there */
	qfs_bigbuf_trim(0);
	ck_assert_ptr_null(qfs_bigbuf_get(SIZE_MAX, &cap2));
	ck_assert_uint_eq(cap2, 7);
}
END_TEST

/* Several threads get, stamp, check and put buffers of 1-5 MiB while one
 * of them trims now and then: no buffer is handed to two owners at once
 * (each page's stamp survives until its put), none is smaller than asked,
 * and the bounds hold after. */
#define BB_THREADS 4
#define BB_ROUNDS 150

static int bb_bad; /* atomic: stamps or capacities found wrong */

static void *bb_worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, seed = id * 7919u + 1;

	for (unsigned r = 0; r < BB_ROUNDS; r++) {
		size_t size = QFS_BIGBUF_MIN + (size_t)(rand_r(&seed) % (4u * QFS_BIGBUF_ROUND)), cap = 0;
		uint8_t *p = qfs_bigbuf_get(size, &cap), stamp = (uint8_t)(id * 16 + r % 16 + 1);

		if (!p || cap < size) {
			__atomic_add_fetch(&bb_bad, 1, __ATOMIC_RELAXED);
			free(p);
			continue;
		}
		for (size_t o = 0; o < size; o += 4096)
			p[o] = stamp;
		p[size - 1] = stamp;
		sched_yield();
		for (size_t o = 0; o < size; o += 4096)
			if (p[o] != stamp)
				__atomic_add_fetch(&bb_bad, 1, __ATOMIC_RELAXED);
		if (p[size - 1] != stamp)
			__atomic_add_fetch(&bb_bad, 1, __ATOMIC_RELAXED);
		if (id == 0 && r % 10 == 0)
			qfs_bigbuf_trim(r % 20 ? 0 : 1);
		qfs_bigbuf_put(p, cap);
	}
	return NULL;
}

START_TEST(test_bigbuf_threads)
{
	pthread_t th[BB_THREADS];
	struct qfs_bigbuf_stats st;

	for (unsigned i = 0; i < BB_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, bb_worker, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < BB_THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(bb_bad, 0);
	st = bb_stats();
	ck_assert_uint_le(st.held, QFS_BIGBUF_KEEP);
	ck_assert_uint_le(st.held_bytes, QFS_BIGBUF_KEEP_BYTES);
	ck_assert_uint_eq(st.hits + st.misses, BB_THREADS * BB_ROUNDS);
	qfs_bigbuf_trim(0);
	st = bb_stats();
	ck_assert_uint_eq(st.held, 0);
	ck_assert_uint_eq(st.held_bytes, 0);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
/* Under ASan a held buffer is poisoned: touching one after its put is
 * reported like a use after free; the get that hands it out again
 * unpoisons all of its capacity. */
START_TEST(test_bigbuf_poison)
{
	size_t cap, cap2;
	uint8_t *p;

	qfs_bigbuf_trim(0);
	p = qfs_bigbuf_get(2 * QFS_BIGBUF_ROUND, &cap);
	ck_assert_ptr_nonnull(p);
	ck_assert(!__asan_region_is_poisoned(p, cap));
	qfs_bigbuf_put(p, cap);
	ck_assert(__asan_address_is_poisoned(p));
	ck_assert(__asan_address_is_poisoned(p + cap - 1));
	ck_assert_ptr_eq(qfs_bigbuf_get(QFS_BIGBUF_MIN + 1, &cap2), p);
	ck_assert_uint_eq(cap2, cap);
	ck_assert(!__asan_region_is_poisoned(p, cap2));
	p[cap2 - 1] = 1;
	qfs_bigbuf_put(p, cap2);
	qfs_bigbuf_trim(0); /* frees a poisoned buffer: fine for ASan */
	ck_assert_uint_eq(bb_stats().held, 0);
}
END_TEST
#endif

/* ---- qfs.c ---- */

START_TEST(test_strerror)
{
	const int codes[] = { QFS_ECORRUPT, QFS_ESTOPPED, QFS_ENOGROUP,
			      QFS_ECONFLICT, QFS_EFORMAT, QFS_ETORN };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *m = qfs_strerror(codes[i]);
		ck_assert_ptr_nonnull(m);
		ck_assert_str_ne(m, "Unknown error");
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(m, qfs_strerror(codes[j]));
	}
	ck_assert_str_eq(qfs_strerror(-ENOENT), strerror(ENOENT));
	ck_assert_str_eq(qfs_strerror(-QFS_ERR_BASE - 99), "Unknown error");
	ck_assert_ptr_nonnull(qfs_strerror(12345));
}
END_TEST

START_TEST(test_err_to_errno)
{
	ck_assert_int_eq(qfs_err_to_errno(-ENOENT), ENOENT);
	ck_assert_int_eq(qfs_err_to_errno(-ENOSPC), ENOSPC);
	ck_assert_int_eq(qfs_err_to_errno(QFS_ECORRUPT), EIO);
	ck_assert_int_eq(qfs_err_to_errno(QFS_ESTOPPED), EIO);
	ck_assert_int_eq(qfs_err_to_errno(QFS_ECONFLICT), EAGAIN);
	ck_assert_int_eq(qfs_err_to_errno(-QFS_ERR_BASE - 77), EIO);
}
END_TEST

/* ---- log.c ---- */

START_TEST(test_log_level_parse)
{
	int saved = qfs_log_level;
	ck_assert_int_eq(saved, QFS_LOG_INFO);
	ck_assert_int_eq(qfs_log_set_level("debug"), 0);
	ck_assert_int_eq(qfs_log_level, QFS_LOG_DEBUG);
	ck_assert_int_eq(qfs_log_set_level("ERR"), 0);
	ck_assert_int_eq(qfs_log_level, QFS_LOG_ERR);
	ck_assert_int_eq(qfs_log_set_level("warn"), 0);
	ck_assert_int_eq(qfs_log_level, QFS_LOG_WARN);
	ck_assert_int_eq(qfs_log_set_level("loud"), -EINVAL);
	ck_assert_int_eq(qfs_log_level, QFS_LOG_WARN);
	qfs_log_level = saved;
}
END_TEST

/* Lines go to stderr with an ISO-8601 UTC timestamp and the level; lines
 * above the level are dropped. */
START_TEST(test_log_line)
{
	char path[] = "/tmp/qfs-log-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	int saved = dup(STDERR_FILENO);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	QFS_LOG(QFS_LOG_WARN, "hello group=%d err=%s", 7, "x");
	QFS_LOG(QFS_LOG_DEBUG, "dropped");
	qfs_log_write(QFS_LOG_DEBUG, "dropped too");
	QFS_LOG(QFS_LOG_INFO, "second");
	dup2(saved, STDERR_FILENO);
	close(saved);

	char buf[512] = { 0 };
	ck_assert_int_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
	close(fd);
	unlink(path);
	regex_t re;
	ck_assert_int_eq(regcomp(&re,
				 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z "
				 "WARN hello group=7 err=x\n"
				 "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z INFO second\n$",
				 REG_EXTENDED),
			 0);
	ck_assert_msg(regexec(&re, buf, 0, NULL, 0) == 0, "log output: %s", buf);
	regfree(&re);
}
END_TEST

/* A newline in a logged value is escaped (one event, one line); the log
 * file can be reopened after it was moved away (logrotate). */
START_TEST(test_log_escape_reopen)
{
	char dir[] = "/tmp/qfs-logdir-XXXXXX", path[64], moved[80], buf[1024] = { 0 };
	int saved = dup(STDERR_FILENO), fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/q.log", dir);
	snprintf(moved, sizeof(moved), "%s/q.log.1", dir);
	ck_assert_int_eq(qfs_log_open_file(path), 0);
	ck_assert_str_eq(qfs_log_file(), path);
	QFS_LOG(QFS_LOG_WARN, "forged name=%s", "x\nINFO y\tz");
	ck_assert_int_eq(rename(path, moved), 0);
	ck_assert_int_eq(qfs_log_reopen(), 0);
	QFS_LOG(QFS_LOG_WARN, "after");
	dup2(saved, STDERR_FILENO);
	close(saved);

	fd = open(moved, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	ck_assert_msg(strstr(buf, "WARN forged name=x\\012INFO y\\011z\n") != NULL, "log: %s", buf);
	ck_assert_ptr_null(strstr(buf, "after"));
	ck_assert_int_eq((int)(strchr(buf, '\n') - buf + 1), (int)strlen(buf)); /* one line */
	memset(buf, 0, sizeof(buf));
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	ck_assert_ptr_nonnull(strstr(buf, "WARN after\n"));
	unlink(path);
	unlink(moved);
	rmdir(dir);
}
END_TEST

/* ---- buf.c ---- */

/* Names escaped as /proc/mounts does. */
START_TEST(test_esc)
{
	struct qfs_buf b;
	char out[QFS_ESC_MAX(16)], small[6];

	qfs_buf_init(&b);
	qfs_buf_put_esc(&b, "a b\tc\nd\\e\x7f\xc3\xa9");
	qfs_buf_put_u8(&b, 0);
	ck_assert_str_eq((char *)b.data, "a\\040b\\011c\\012d\\134e\\177\xc3\xa9");
	qfs_buf_close(&b);
	ck_assert_str_eq(qfs_esc("x y", out, sizeof(out)), "x\\040y");
	ck_assert_str_eq(qfs_esc("plain", out, sizeof(out)), "plain");
	/* cut at a whole escape */
	ck_assert_str_eq(qfs_esc("ab cd", small, sizeof(small)), "ab");
	ck_assert_str_eq(QFS_ESC_NAME("n\n"), "n\\012");
	/* and undone (mountinfo's fields): every escape, nothing else */
	qfs_buf_init(&b);
	qfs_buf_put_esc(&b, "a b\tc\nd\\e\x7f\xc3\xa9");
	qfs_buf_put_u8(&b, 0);
	qfs_unesc((char *)b.data);
	ck_assert_str_eq((char *)b.data, "a b\tc\nd\\e\x7f\xc3\xa9");
	qfs_buf_close(&b);
	char kept[] = "\\9 \\04 \\x41 end\\";
	struct qfs_mountinfo m;
	char mi[] = "36 35 0:43 / /mnt/a\\040b rw,noatime shared:1 master:2 - fuse.quorumfs /var/lib/q\\040d rw\n";
	char mi_short[] = "36 35 0:43 / /mnt/c rw\n";
	char mi_bad[] = "36 35 0:43 /\n";

	ck_assert_int_eq(qfs_mountinfo_split(mi, &m), 0);
	ck_assert_str_eq(m.devno, "0:43");
	ck_assert_str_eq(m.mountpoint, "/mnt/a b");
	ck_assert_str_eq(m.fstype, "fuse.quorumfs");
	ck_assert_str_eq(m.source, "/var/lib/q d");
	ck_assert_int_eq(qfs_mountinfo_split(mi_short, &m), 0); /* no " - ": no type, no source */
	ck_assert_str_eq(m.mountpoint, "/mnt/c");
	ck_assert_ptr_null(m.fstype);
	ck_assert_ptr_null(m.source);
	ck_assert_int_eq(qfs_mountinfo_split(mi_bad, &m), -1);

	qfs_unesc(kept);
	ck_assert_str_eq(kept, "\\9 \\04 \\x41 end\\");
}
END_TEST

static int val_released; /* test_val: release calls */
static void *val_released_own;

static void val_count_release(void *own)
{
	val_released++;
	val_released_own = own;
}

/* qfs_val: its owner gets it back exactly once; adopt frees its buffer. */
START_TEST(test_val)
{
	struct qfs_val v = { 0 };
	static uint8_t bytes[3] = { 1, 2, 3 };
	int token;

	ck_assert(!qfs_val_held(&v));
	qfs_val_release(&v); /* empty: nothing */
	v.data = bytes;
	v.len = sizeof(bytes);
	v.release = val_count_release;
	v.own = &token;
	ck_assert(qfs_val_held(&v));
	qfs_val_release(&v);
	ck_assert_int_eq(val_released, 1);
	ck_assert_ptr_eq(val_released_own, &token);
	ck_assert(!qfs_val_held(&v));
	ck_assert_ptr_null(v.data);
	ck_assert_uint_eq(v.len, 0);
	qfs_val_release(&v);
	ck_assert_int_eq(val_released, 1); /* not twice */

	char *p = strdup("abc"); /* freed by the release (ASan: no leak, no double free) */
	ck_assert_ptr_nonnull(p);
	qfs_val_adopt(&v, p, 3);
	ck_assert(qfs_val_held(&v));
	ck_assert_ptr_eq(v.data, (const uint8_t *)p);
	ck_assert_uint_eq(v.len, 3);
	qfs_val_release(&v);
	ck_assert(!qfs_val_held(&v));
	qfs_val_release(&v);
	qfs_val_adopt(&v, NULL, 0); /* nothing held */
	ck_assert(!qfs_val_held(&v));
	qfs_val_release(&v);
}
END_TEST

START_TEST(test_buf_roundtrip)
{
	struct qfs_buf b;
	struct qfs_rd r;
	size_t n;

	qfs_buf_init(&b);
	qfs_buf_put_u8(&b, 0xab);
	qfs_buf_put_u16(&b, 0x1234);
	qfs_buf_put_u32(&b, 0xdeadbeef);
	qfs_buf_put_u64(&b, 0x0102030405060708ull);
	qfs_buf_put_bytes(&b, "xyz", 3);
	qfs_buf_put_bytes(&b, NULL, 0);
	for (int i = 0; i < 1000; i++)
		qfs_buf_put_u32(&b, (uint32_t)i);
	ck_assert_int_eq(b.err, 0);
	ck_assert_uint_eq(b.len, 1 + 2 + 4 + 8 + 7 + 4 + 4000);
	ck_assert_uint_eq(b.data[1], 0x12); /* big-endian */

	qfs_rd_init(&r, b.data, b.len);
	ck_assert_uint_eq(qfs_rd_u8(&r), 0xab);
	ck_assert_uint_eq(qfs_rd_u16(&r), 0x1234);
	ck_assert_uint_eq(qfs_rd_u32(&r), 0xdeadbeef);
	ck_assert_uint_eq(qfs_rd_u64(&r), 0x0102030405060708ull);
	const uint8_t *p = qfs_rd_bytes(&r, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(p, "xyz", 3);
	qfs_rd_bytes(&r, &n);
	ck_assert_uint_eq(n, 0);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(qfs_rd_u32(&r), (uint32_t)i);
	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(qfs_rd_left(&r), 0);
	/* overrun latches and returns zeros */
	ck_assert_uint_eq(qfs_rd_u64(&r), 0);
	ck_assert_int_eq(r.err, QFS_ECORRUPT);
	ck_assert_ptr_null(qfs_rd_raw(&r, 0));

	uint8_t *d = qfs_buf_steal(&b, &n);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(n, 4026);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	free(d);
	qfs_buf_put_u8(&b, 1);
	qfs_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	qfs_buf_close(&b);
	qfs_buf_close(&b);
}
END_TEST

START_TEST(test_rd_bytes_overrun)
{
	const uint8_t enc[] = { 0, 0, 0, 9, 'a', 'b' }; /* says 9, has 2 */
	struct qfs_rd r;
	size_t n = 5;
	qfs_rd_init(&r, enc, sizeof(enc));
	ck_assert_ptr_null(qfs_rd_bytes(&r, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(r.err, QFS_ECORRUPT);
}
END_TEST

/* ---- key.c ---- */

struct tkey {
	uint8_t k[QFS_KEY_MAX];
	size_t len;
	enum qfs_key_kind kind;
	uint64_t pk;
	const char *name;
	size_t name_len;
	uint64_t chunk;
};

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static int tkey_qsort_cmp(const void *a, const void *b)
{
	const struct tkey *x = a, *y = b;
	return key_cmp(x->k, x->len, y->k, y->len);
}

static const uint64_t test_pks[] = { 1, 2, 3, 1024, 1025, 0xffffffffull, UINT64_MAX - 1, UINT64_MAX };
static const char *const test_names[] = { "\x01", "a", "ab", "abc", "b", "B", ".", "..",
					  "\xff", "\xff\xff", "z\x01", "zz" };
static const uint64_t test_chunks[] = { 0, 1, 2, 255, 256, 65536, 1ull << 40, UINT64_MAX - 1,
					UINT64_MAX };

#define NPKS (sizeof(test_pks) / sizeof(test_pks[0]))
#define NNAMES (sizeof(test_names) / sizeof(test_names[0]))
#define NCHUNKS (sizeof(test_chunks) / sizeof(test_chunks[0]))
#define NTKEYS (NPKS * (1 + NNAMES + NCHUNKS))

static struct tkey *make_keys(void)
{
	struct tkey *ks = calloc(NTKEYS, sizeof(*ks));
	size_t n = 0;
	ck_assert_ptr_nonnull(ks);
	for (size_t p = 0; p < NPKS; p++) {
		ks[n].kind = QFS_KEY_INODE;
		ks[n].pk = test_pks[p];
		ks[n].len = qfs_key_inode(ks[n].k, test_pks[p]);
		n++;
		for (size_t i = 0; i < NNAMES; i++) {
			ks[n].kind = QFS_KEY_DENTRY;
			ks[n].pk = test_pks[p];
			ks[n].name = test_names[i];
			ks[n].name_len = strlen(test_names[i]);
			ks[n].len = qfs_key_dentry(ks[n].k, test_pks[p], test_names[i], ks[n].name_len);
			n++;
		}
		for (size_t i = 0; i < NCHUNKS; i++) {
			ks[n].kind = QFS_KEY_CHUNK;
			ks[n].pk = test_pks[p];
			ks[n].chunk = test_chunks[i];
			ks[n].len = qfs_key_chunk(ks[n].k, test_pks[p], test_chunks[i]);
			n++;
		}
	}
	ck_assert_uint_eq(n, NTKEYS);
	return ks;
}

/* "\0c" < "\0i" < names: chunks, then the inode, then dentries. */
static int kind_rank(enum qfs_key_kind k)
{
	return k == QFS_KEY_CHUNK ? 0 : k == QFS_KEY_INODE ? 1 : 2;
}

START_TEST(test_key_layout)
{
	uint8_t k[QFS_KEY_MAX];
	ck_assert_uint_eq(qfs_key_prefix(k, 42), QFS_KEY_PREFIX_LEN);
	ck_assert_uint_eq(qfs_be64_get(k + 8), 42);
	ck_assert_uint_eq(qfs_key_inode(k, 42), 18);
	ck_assert_uint_eq(k[16], 0);
	ck_assert_uint_eq(k[17], 'i');
	ck_assert_uint_eq(qfs_key_chunk(k, 42, 7), 26);
	ck_assert_uint_eq(k[17], 'c');
	ck_assert_uint_eq(qfs_be64_get(k + 18), 7);
	char name[QFS_NAME_MAX];
	memset(name, 'n', sizeof(name));
	ck_assert_uint_eq(qfs_key_dentry(k, 42, name, QFS_NAME_MAX), 16 + QFS_NAME_MAX);
	/* different pks spread: hashes differ */
	uint8_t k2[QFS_KEY_MAX];
	qfs_key_prefix(k, 1024);
	qfs_key_prefix(k2, 1025);
	ck_assert(memcmp(k, k2, 8) != 0);
}
END_TEST

/* Sorted bytewise, every pk's keys are contiguous: chunks by number, the
 * inode, then dentries by name bytewise. */
START_TEST(test_key_order)
{
	struct tkey *ks = make_keys();
	qsort(ks, NTKEYS, sizeof(*ks), tkey_qsort_cmp);
	for (size_t i = 1; i < NTKEYS; i++) {
		const struct tkey *a = &ks[i - 1], *b = &ks[i];
		ck_assert_int_lt(key_cmp(a->k, a->len, b->k, b->len), 0); /* all distinct */
		if (a->pk != b->pk) {
			/* a pk is never seen again once left: contiguous */
			for (size_t j = i; j < NTKEYS; j++)
				ck_assert_uint_ne(ks[j].pk, a->pk);
			continue;
		}
		ck_assert_int_le(kind_rank(a->kind), kind_rank(b->kind));
		if (a->kind == QFS_KEY_CHUNK && b->kind == QFS_KEY_CHUNK)
			ck_assert_uint_lt(a->chunk, b->chunk);
		if (a->kind == QFS_KEY_DENTRY && b->kind == QFS_KEY_DENTRY)
			ck_assert_int_lt(key_cmp((const uint8_t *)a->name, a->name_len,
						 (const uint8_t *)b->name, b->name_len),
					 0);
	}
	free(ks);
}
END_TEST

static int in_range(const struct tkey *k, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
		    size_t hi_len)
{
	return key_cmp(lo, lo_len, k->k, k->len) <= 0 && key_cmp(k->k, k->len, hi, hi_len) < 0;
}

START_TEST(test_key_dentry_range)
{
	struct tkey *ks = make_keys();
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lo_len, hi_len;
	for (size_t p = 0; p < NPKS; p++) {
		qfs_key_dentry_range(lo, &lo_len, hi, &hi_len, test_pks[p]);
		ck_assert_uint_le(lo_len, QFS_KEY_MAX);
		ck_assert_uint_le(hi_len, QFS_KEY_MAX);
		for (size_t i = 0; i < NTKEYS; i++) {
			int want = ks[i].pk == test_pks[p] && ks[i].kind == QFS_KEY_DENTRY;
			ck_assert_msg(in_range(&ks[i], lo, lo_len, hi, hi_len) == want,
				      "pk %zu key %zu", p, i);
		}
		/* the longest name of all 0xff bytes is inside too */
		struct tkey big;
		char name[QFS_NAME_MAX];
		memset(name, 0xff, sizeof(name));
		big.len = qfs_key_dentry(big.k, test_pks[p], name, sizeof(name));
		ck_assert(in_range(&big, lo, lo_len, hi, hi_len));
	}
	free(ks);
}
END_TEST

START_TEST(test_key_chunk_range)
{
	struct tkey *ks = make_keys();
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lo_len, hi_len;
	const uint64_t bounds[][2] = { { 0, UINT64_MAX }, { 0, 1 }, { 1, 256 }, { 2, 2 },
				       { 255, UINT64_MAX }, { UINT64_MAX - 1, UINT64_MAX },
				       { 0, UINT64_MAX - 1 } };
	for (size_t p = 0; p < NPKS; p++) {
		for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
			uint64_t from = bounds[b][0], to = bounds[b][1];
			qfs_key_chunk_range(lo, &lo_len, hi, &hi_len, test_pks[p], from, to);
			for (size_t i = 0; i < NTKEYS; i++) {
				int want = ks[i].pk == test_pks[p] && ks[i].kind == QFS_KEY_CHUNK &&
					   ks[i].chunk >= from &&
					   (to == UINT64_MAX || ks[i].chunk < to);
				ck_assert_msg(in_range(&ks[i], lo, lo_len, hi, hi_len) == want,
					      "pk %zu bounds %zu key %zu", p, b, i);
			}
		}
	}
	free(ks);
}
END_TEST

START_TEST(test_key_parse_roundtrip)
{
	struct tkey *ks = make_keys();
	for (size_t i = 0; i < NTKEYS; i++) {
		struct qfs_key k;
		ck_assert_int_eq(qfs_key_parse(ks[i].k, ks[i].len, &k), 0);
		ck_assert_int_eq(k.kind, ks[i].kind);
		ck_assert_uint_eq(k.pk, ks[i].pk);
		if (k.kind == QFS_KEY_DENTRY) {
			ck_assert_uint_eq(k.name_len, ks[i].name_len);
			ck_assert_mem_eq(k.name, ks[i].name, k.name_len);
			ck_assert_ptr_eq(k.name, ks[i].k + QFS_KEY_PREFIX_LEN);
		}
		if (k.kind == QFS_KEY_CHUNK)
			ck_assert_uint_eq(k.chunk, ks[i].chunk);
	}
	free(ks);
}
END_TEST

START_TEST(test_key_parse_rejects)
{
	uint8_t k[QFS_KEY_MAX + 8];
	struct qfs_key out = { .kind = 99 };
	size_t n;

	/* too short: a bare prefix, empty, partial prefix */
	n = qfs_key_prefix(k, 5);
	ck_assert_int_eq(qfs_key_parse(k, n, &out), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_key_parse(k, 0, &out), QFS_ECORRUPT);
	ck_assert_int_eq(qfs_key_parse(k, 9, &out), QFS_ECORRUPT);
	/* bad hash */
	n = qfs_key_dentry(k, 5, "x", 1);
	k[3] ^= 1;
	ck_assert_int_eq(qfs_key_parse(k, n, &out), QFS_ECORRUPT);
	/* pk changed under the same hash */
	n = qfs_key_dentry(k, 5, "x", 1);
	k[15] ^= 1;
	ck_assert_int_eq(qfs_key_parse(k, n, &out), QFS_ECORRUPT);
	/* unknown "\0" sort keys */
	n = qfs_key_inode(k, 5);
	k[17] = 'x';
	ck_assert_int_eq(qfs_key_parse(k, n, &out), QFS_ECORRUPT);
	n = qfs_key_inode(k, 5);
	ck_assert_int_eq(qfs_key_parse(k, n - 1, &out), QFS_ECORRUPT); /* lone "\0" */
	k[n] = 'z';
	ck_assert_int_eq(qfs_key_parse(k, n + 1, &out), QFS_ECORRUPT); /* "\0iz" */
	n = qfs_key_chunk(k, 5, 3);
	ck_assert_int_eq(qfs_key_parse(k, n - 1, &out), QFS_ECORRUPT);
	k[n] = 0;
	ck_assert_int_eq(qfs_key_parse(k, n + 1, &out), QFS_ECORRUPT);
	/* a name with a NUL inside, a name too long */
	n = qfs_key_dentry(k, 5, "ab", 2);
	k[n - 1] = 0;
	ck_assert_int_eq(qfs_key_parse(k, n, &out), QFS_ECORRUPT);
	char name[QFS_NAME_MAX];
	memset(name, 'q', sizeof(name));
	n = qfs_key_dentry(k, 5, name, sizeof(name));
	k[n] = 'q';
	ck_assert_int_eq(qfs_key_parse(k, n + 1, &out), QFS_ECORRUPT);
	ck_assert_int_eq(out.kind, 99); /* untouched on error */

	/* random garbage never parses (hash mismatch) */
	unsigned seed = 12345;
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)rand_r(&seed) % (QFS_KEY_MAX + 1);
		for (size_t j = 0; j < len; j++)
			k[j] = (uint8_t)rand_r(&seed);
		ck_assert_int_eq(qfs_key_parse(k, len, &out), QFS_ECORRUPT);
	}
}
END_TEST

/* ---- item.c ---- */

static void sample_inode(struct qfs_inode *in)
{
	qfs_inode_init(in);
	in->a.ino = 4242;
	in->a.mode = S_IFREG | 0640;
	in->a.uid = 1000;
	in->a.gid = 100;
	in->a.nlink = 1;
	in->a.flags = QFS_ATTR_INLINE;
	in->a.size = 11;
	in->a.rdev = 0;
	in->a.atime = (struct qfs_ts){ 1700000000, 1 };
	in->a.mtime = (struct qfs_ts){ -5, 999999999 };
	in->a.ctime = (struct qfs_ts){ 1700000002, 3 };
	in->a.btime = (struct qfs_ts){ 1, 0 };
	ck_assert_int_eq(qfs_inode_set_data(in, "hello world", 11), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(in, "user.z", "zz", 2, 0), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(in, "user.a", "", 0, 0), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(in, "user.color", "red", 3, XATTR_CREATE), 0);
}

static void assert_attr_eq(const struct qfs_attr *a, const struct qfs_attr *b)
{
	ck_assert_uint_eq(a->ino, b->ino);
	ck_assert_uint_eq(a->mode, b->mode);
	ck_assert_uint_eq(a->uid, b->uid);
	ck_assert_uint_eq(a->gid, b->gid);
	ck_assert_uint_eq(a->nlink, b->nlink);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_uint_eq(a->rdev, b->rdev);
	const struct qfs_ts *ta[] = { &a->atime, &a->mtime, &a->ctime, &a->btime };
	const struct qfs_ts *tb[] = { &b->atime, &b->mtime, &b->ctime, &b->btime };
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(ta[i]->sec, tb[i]->sec);
		ck_assert_uint_eq(ta[i]->nsec, tb[i]->nsec);
	}
}

START_TEST(test_dentry_roundtrip)
{
	struct qfs_dentry d = { .ino = 0x1122334455667788ull, .type = S_IFDIR, .group = 9 }, e;
	struct qfs_buf b;
	qfs_buf_init(&b);
	qfs_dentry_encode(&d, &b);
	ck_assert_int_eq(b.err, 0);
	ck_assert_uint_eq(b.data[0], QFS_ITEM_VERSION);
	ck_assert_int_eq(qfs_dentry_decode(b.data, b.len, &e), 0);
	ck_assert_uint_eq(e.ino, d.ino);
	ck_assert_uint_eq(e.type, d.type);
	ck_assert_uint_eq(e.group, d.group);
	/* trailing garbage */
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(qfs_dentry_decode(b.data, b.len, &e), QFS_ECORRUPT);
	qfs_buf_close(&b);
}
END_TEST

START_TEST(test_inode_roundtrip)
{
	struct qfs_inode in, out;
	struct qfs_attr a;
	struct qfs_buf b;

	sample_inode(&in);
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	ck_assert_int_eq(b.err, 0);

	qfs_inode_init(&out);
	ck_assert_int_eq(qfs_inode_set_data(&out, "old", 3), 0); /* freed by decode */
	ck_assert_int_eq(qfs_inode_decode(b.data, b.len, &out), 0);
	assert_attr_eq(&out.a, &in.a);
	ck_assert_uint_eq(out.data_len, 11);
	ck_assert_mem_eq(out.data, "hello world", 11);
	ck_assert_uint_eq(out.nxattrs, 3);
	ck_assert_str_eq(out.xattrs[0].name, "user.a");
	ck_assert_uint_eq(out.xattrs[0].len, 0);
	ck_assert_str_eq(out.xattrs[1].name, "user.color");
	ck_assert_uint_eq(out.xattrs[1].len, 3);
	ck_assert_mem_eq(out.xattrs[1].value, "red", 3);
	ck_assert_str_eq(out.xattrs[2].name, "user.z");

	ck_assert_int_eq(qfs_inode_decode_attr(b.data, b.len, &a), 0);
	assert_attr_eq(&a, &in.a);

	/* re-encoding the decoded inode gives the same bytes */
	struct qfs_buf b2;
	qfs_buf_init(&b2);
	qfs_inode_encode(&out, &b2);
	ck_assert_uint_eq(b2.len, b.len);
	ck_assert_mem_eq(b2.data, b.data, b.len);

	/* an empty inode round-trips too */
	qfs_inode_close(&in);
	qfs_buf_reset(&b);
	qfs_inode_encode(&in, &b);
	ck_assert_int_eq(qfs_inode_decode(b.data, b.len, &out), 0);
	ck_assert_ptr_null(out.data);
	ck_assert_uint_eq(out.nxattrs, 0);

	qfs_buf_close(&b2);
	qfs_buf_close(&b);
	qfs_inode_close(&out);
	qfs_inode_close(&out);
}
END_TEST

/* Version 2 keeps the counts; version 1 values (no counts) still decode,
 * with the chunk count unknown for a chunked file and 0 for an inline one,
 * and st_blocks derived from what is known. */
START_TEST(test_inode_counts_and_v1)
{
	struct qfs_inode in, out;
	struct qfs_attr a;
	struct qfs_buf b;
	const size_t attr_block = 8 + 5 * 4 + 8 + 8 + 4 * 12;

	qfs_inode_init(&in);
	in.a.ino = 5000;
	in.a.mode = S_IFREG | 0644;
	in.a.size = 10 << 20;
	in.chunk_bytes = 4096 + 1;
	in.ninodes = 77;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	ck_assert_int_eq(b.err, 0);
	ck_assert_uint_eq(b.data[0], QFS_INODE_VERSION);
	qfs_inode_init(&out);
	ck_assert_int_eq(qfs_inode_decode(b.data, b.len, &out), 0);
	ck_assert_uint_eq(out.chunk_bytes, 4097);
	ck_assert_uint_eq(out.ninodes, 77);
	ck_assert_uint_eq(out.a.blocks, 9); /* 4097 bytes stored, not 10 MiB */
	ck_assert_int_eq(qfs_inode_decode_attr(b.data, b.len, &a), 0);
	ck_assert_uint_eq(a.blocks, 9);

	/* the same value as version 1 wrote it: no counts */
	struct qfs_buf v1;
	qfs_buf_init(&v1);
	qfs_buf_put_u8(&v1, 1);
	qfs_buf_put(&v1, b.data + 1, attr_block);
	qfs_buf_put(&v1, b.data + 1 + attr_block + 16, b.len - 1 - attr_block - 16);
	ck_assert_int_eq(qfs_inode_decode(v1.data, v1.len, &out), 0);
	ck_assert_uint_eq(out.chunk_bytes, QFS_COUNT_UNKNOWN);
	ck_assert_uint_eq(out.ninodes, QFS_COUNT_UNKNOWN);
	ck_assert_uint_eq(out.a.blocks, (10 << 20) / 512); /* from the size, as version 1 did */
	ck_assert_uint_eq(out.a.size, 10 << 20);

	/* an inline version 1 file: its data is all there is */
	qfs_buf_reset(&b);
	in.a.flags = QFS_ATTR_INLINE;
	in.a.size = 1000;
	ck_assert_int_eq(qfs_inode_set_data(&in, "xyz", 3), 0);
	qfs_inode_encode(&in, &b);
	qfs_buf_reset(&v1);
	qfs_buf_put_u8(&v1, 1);
	qfs_buf_put(&v1, b.data + 1, attr_block);
	qfs_buf_put(&v1, b.data + 1 + attr_block + 16, b.len - 1 - attr_block - 16);
	ck_assert_int_eq(qfs_inode_decode(v1.data, v1.len, &out), 0);
	ck_assert_uint_eq(out.chunk_bytes, 0);
	ck_assert_uint_eq(out.a.blocks, 1);
	ck_assert_mem_eq(out.data, "xyz", 3);

	/* a version 3 value is refused */
	b.data[0] = 3;
	ck_assert_int_eq(qfs_inode_decode(b.data, b.len, &out), QFS_EFORMAT);

	qfs_buf_close(&v1);
	qfs_buf_close(&b);
	qfs_inode_close(&in);
	qfs_inode_close(&out);
}
END_TEST

/* Encoded samples for the truncation and version tests. */
enum { SAMPLE_DENTRY, SAMPLE_INODE, SAMPLE_TXN, SAMPLE_N };

static void sample_txn_encode(struct qfs_buf *b);

static void sample_encode(int which, struct qfs_buf *b)
{
	qfs_buf_init(b);
	if (which == SAMPLE_DENTRY) {
		struct qfs_dentry d = { .ino = 5, .type = S_IFREG, .group = 0 };
		qfs_dentry_encode(&d, b);
	} else if (which == SAMPLE_INODE) {
		struct qfs_inode in;
		sample_inode(&in);
		qfs_inode_encode(&in, b);
		qfs_inode_close(&in);
	} else {
		sample_txn_encode(b);
	}
	ck_assert_int_eq(b->err, 0);
}

/* Decode with the decoder for which; returns its result. */
static int sample_decode(int which, const uint8_t *p, size_t len)
{
	int rc;
	if (which == SAMPLE_DENTRY) {
		struct qfs_dentry d;
		rc = qfs_dentry_decode(p, len, &d);
	} else if (which == SAMPLE_INODE) {
		struct qfs_inode in;
		struct qfs_attr a;
		qfs_inode_init(&in);
		rc = qfs_inode_decode(p, len, &in);
		if (rc)
			ck_assert_ptr_null(in.data); /* untouched on error */
		qfs_inode_close(&in);
		int rc2 = qfs_inode_decode_attr(p, len, &a);
		ck_assert_int_eq(rc, rc2);
	} else {
		struct qfs_txn t;
		qfs_txn_init(&t);
		rc = qfs_txn_decode(p, len, &t);
		if (rc)
			ck_assert_uint_eq(t.nops, 0);
		qfs_txn_close(&t);
	}
	return rc;
}

/* Loop test: _i = sample.  Every strict prefix of the sample's encoding
 * is copied to a heap block of exactly its length, so ASan catches any
 * read past it, and must decode as QFS_ECORRUPT; the whole encoding must
 * decode.  (One forked test per sample, not per prefix: under ASan a fork
 * costs ~0.1 s, and 3000 of them made check_common take 5 minutes.) */
START_TEST(test_truncated_prefix)
{
	int which = _i;
	struct qfs_buf b;
	sample_encode(which, &b);
	for (size_t plen = 0; plen < b.len; plen++) {
		uint8_t *copy = malloc(plen ? plen : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, b.data, plen);
		int rc = sample_decode(which, copy, plen);
		ck_assert_msg(rc == QFS_ECORRUPT, "sample %d, prefix %zu of %zu bytes: %d, not QFS_ECORRUPT",
			      which, plen, b.len, rc);
		free(copy);
	}
	ck_assert_int_eq(sample_decode(which, b.data, b.len), 0);
	qfs_buf_close(&b);
}
END_TEST

START_TEST(test_sample_sizes)
{
	/* the samples stay small: the loop test above decodes every prefix */
	for (int w = 0; w < SAMPLE_N; w++) {
		struct qfs_buf b;
		sample_encode(w, &b);
		ck_assert_uint_lt(b.len, 1000);
		qfs_buf_close(&b);
	}
}
END_TEST

START_TEST(test_version_bump)
{
	for (int w = 0; w < SAMPLE_N; w++) {
		struct qfs_buf b;
		sample_encode(w, &b);
		/* a newer version than this build reads (a txn's encoder writes
		 * the lowest version it needs, so jump past the newest) */
		b.data[0] = w == SAMPLE_TXN ? QFS_TXN_VERSION + 1 : b.data[0] + 1;
		ck_assert_int_eq(sample_decode(w, b.data, b.len), QFS_EFORMAT);
		b.data[0] = 0;
		ck_assert_int_eq(sample_decode(w, b.data, b.len), QFS_EFORMAT);
		qfs_buf_close(&b);
	}
}
END_TEST

START_TEST(test_inode_decode_rejects)
{
	struct qfs_inode in;
	struct qfs_buf b;
	struct qfs_attr a;

	/* nanoseconds out of range */
	qfs_inode_init(&in);
	in.a.mtime.nsec = 1000000000u;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	ck_assert_int_eq(qfs_inode_decode_attr(b.data, b.len, &a), QFS_ECORRUPT);

	/* unsorted xattrs (built by hand) */
	qfs_inode_init(&in);
	struct qfs_xattr xs[2] = { { "user.b", (uint8_t *)"1", 1 }, { "user.a", (uint8_t *)"2", 1 } };
	in.xattrs = xs;
	in.nxattrs = 2;
	qfs_buf_reset(&b);
	qfs_inode_encode(&in, &b);
	ck_assert_int_eq(qfs_inode_decode_attr(b.data, b.len, &a), QFS_ECORRUPT);
	/* duplicate names */
	xs[1].name = "user.b";
	qfs_buf_reset(&b);
	qfs_inode_encode(&in, &b);
	ck_assert_int_eq(qfs_inode_decode_attr(b.data, b.len, &a), QFS_ECORRUPT);
	/* a huge xattr count cannot make it allocate */
	qfs_inode_init(&in);
	qfs_buf_reset(&b);
	qfs_inode_encode(&in, &b);
	qfs_be32_put(b.data + b.len - 4, 0xffffffffu);
	qfs_inode_init(&in);
	ck_assert_int_eq(qfs_inode_decode(b.data, b.len, &in), QFS_ECORRUPT);
	qfs_buf_close(&b);
}
END_TEST

/* ---- xattrs ---- */

START_TEST(test_xattr_semantics)
{
	struct qfs_inode in;
	const struct qfs_xattr *x;
	qfs_inode_init(&in);

	ck_assert_ptr_null(qfs_inode_xattr_find(&in, "user.a"));
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", "1", 1, XATTR_REPLACE), -ENODATA);
	ck_assert_uint_eq(in.nxattrs, 0);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", "1", 1, XATTR_CREATE), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", "2", 1, XATTR_CREATE), -EEXIST);
	x = qfs_inode_xattr_find(&in, "user.a");
	ck_assert_ptr_nonnull(x);
	ck_assert_mem_eq(x->value, "1", 1);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", "22", 2, XATTR_REPLACE), 0);
	x = qfs_inode_xattr_find(&in, "user.a");
	ck_assert_uint_eq(x->len, 2);
	ck_assert_mem_eq(x->value, "22", 2);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", "333", 3, 0), 0);
	ck_assert_uint_eq(in.nxattrs, 1);

	/* inserts at front, middle, end stay sorted */
	const char *names[] = { "user.m", "trusted.x", "user.zz", "security.s", "user.b", "user.\xff" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_int_eq(qfs_inode_xattr_set(&in, names[i], "v", 1, 0), 0);
	ck_assert_uint_eq(in.nxattrs, 7);
	for (uint32_t i = 1; i < in.nxattrs; i++)
		ck_assert_int_lt(strcmp(in.xattrs[i - 1].name, in.xattrs[i].name), 0);

	ck_assert_int_eq(qfs_inode_xattr_del(&in, "user.m"), 0);
	ck_assert_int_eq(qfs_inode_xattr_del(&in, "user.m"), -ENODATA);
	ck_assert_ptr_null(qfs_inode_xattr_find(&in, "user.m"));
	ck_assert_uint_eq(in.nxattrs, 6);
	for (uint32_t i = 1; i < in.nxattrs; i++)
		ck_assert_int_lt(strcmp(in.xattrs[i - 1].name, in.xattrs[i].name), 0);
	while (in.nxattrs)
		ck_assert_int_eq(qfs_inode_xattr_del(&in, in.xattrs[0].name), 0);
	ck_assert_ptr_null(in.xattrs);

	/* bad arguments */
	char longname[QFS_XATTR_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname));
	longname[QFS_XATTR_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(qfs_inode_xattr_set(&in, longname, "v", 1, 0), -ERANGE);
	longname[QFS_XATTR_NAME_MAX] = '\0';
	ck_assert_int_eq(qfs_inode_xattr_set(&in, longname, "v", 1, 0), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "", "v", 1, 0), -ERANGE);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.q", "v", 1, 0x40), -EINVAL);
	qfs_inode_close(&in);
}
END_TEST

START_TEST(test_xattr_limits)
{
	struct qfs_inode in;
	uint8_t *big = calloc(1, QFS_XATTR_VALUE_MAX + 1);
	ck_assert_ptr_nonnull(big);
	qfs_inode_init(&in);

	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", big, QFS_XATTR_VALUE_MAX + 1, 0), -E2BIG);
	/* "user.a" (6) + value fills the total exactly */
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", big, QFS_XATTR_TOTAL_MAX - 6, 0), 0);
	/* any other xattr, even empty, goes over: -ENOSPC and nothing changes */
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.b", "", 0, 0), -ENOSPC);
	ck_assert_uint_eq(in.nxattrs, 1);
	/* replacing counts the new value instead of the old one */
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", big, QFS_XATTR_TOTAL_MAX - 5, 0), -ENOSPC);
	ck_assert_uint_eq(in.xattrs[0].len, QFS_XATTR_TOTAL_MAX - 6);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.a", big, 100, XATTR_REPLACE), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.b", big, QFS_XATTR_TOTAL_MAX - 112, 0), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.c", "", 0, 0), -ENOSPC);
	ck_assert_int_eq(qfs_inode_xattr_del(&in, "user.b"), 0);
	ck_assert_int_eq(qfs_inode_xattr_set(&in, "user.c", "", 0, 0), 0);

	/* a full inode still encodes and decodes */
	struct qfs_buf b;
	struct qfs_inode out;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	qfs_inode_init(&out);
	ck_assert_int_eq(qfs_inode_decode(b.data, b.len, &out), 0);
	ck_assert_uint_eq(out.nxattrs, 2);
	qfs_inode_close(&out);
	qfs_buf_close(&b);
	qfs_inode_close(&in);
	free(big);
}
END_TEST

START_TEST(test_set_data)
{
	struct qfs_inode in;
	qfs_inode_init(&in);
	ck_assert_int_eq(qfs_inode_set_data(&in, "abc", 3), 0);
	ck_assert_uint_eq(in.data_len, 3);
	ck_assert_int_eq(qfs_inode_set_data(&in, NULL, 0), 0);
	ck_assert_ptr_null(in.data);
	ck_assert_uint_eq(in.data_len, 0);
	qfs_inode_close(&in);
}
END_TEST

/* ---- txn.c ---- */

static const uint8_t K1[] = "key-one", K2[] = "key-two";

static void build_sample_txn(struct qfs_txn *t)
{
	struct qfs_op *op;
	qfs_txn_init(t);
	op = qfs_txn_add(t, QFS_OP_PUT);
	op->key = K1, op->key_len = 7, op->val = (const uint8_t *)"value", op->val_len = 5;
	op = qfs_txn_add(t, QFS_OP_DEL);
	op->key = K2, op->key_len = 7;
	op = qfs_txn_add(t, QFS_OP_DEL_RANGE);
	op->key = K1, op->key_len = 7, op->key2 = K2, op->key2_len = 7;
	op = qfs_txn_add(t, QFS_OP_EXPECT_ABSENT);
	op->key = K1, op->key_len = 7, op->err = -EEXIST;
	op = qfs_txn_add(t, QFS_OP_EXPECT_PRESENT);
	op->key = K2, op->key_len = 7, op->err = -ENOENT;
	op = qfs_txn_add(t, QFS_OP_EXPECT_VALUE);
	op->key = K1, op->key_len = 7, op->val = (const uint8_t *)"v", op->val_len = 1;
	op->err = QFS_ECONFLICT;
	op = qfs_txn_add(t, QFS_OP_EXPECT_EMPTY);
	op->key = K1, op->key_len = 7, op->key2 = K2, op->key2_len = 7, op->err = -ENOTEMPTY;
	op = qfs_txn_add(t, QFS_OP_SETATTR);
	op->key = K1, op->key_len = 7, op->mask = QFS_SET_MODE | QFS_SET_MTIME;
	op->attr.mode = 0755, op->attr.mtime = (struct qfs_ts){ 123, 456 }, op->attr.size = 99;
	op = qfs_txn_add(t, QFS_OP_NLINK);
	op->key = K1, op->key_len = 7, op->delta = -1;
	op = qfs_txn_add(t, QFS_OP_SETDATA);
	op->key = K1, op->key_len = 7, op->val = NULL, op->val_len = 0;
	op = qfs_txn_add(t, QFS_OP_XSET);
	op->key = K1, op->key_len = 7, op->name = "user.color", op->val = (const uint8_t *)"red";
	op->val_len = 3, op->flags = XATTR_CREATE;
	op = qfs_txn_add(t, QFS_OP_XDEL);
	op->key = K1, op->key_len = 7, op->name = "user.gone";
	op = qfs_txn_add(t, QFS_OP_LINK_ADD);
	op->key = K1, op->key_len = 7, op->limit = 65000;
	op = qfs_txn_add(t, QFS_OP_LINK_DROP);
	op->key = K1, op->key_len = 7, op->key2 = K2, op->key2_len = 7;
	op->val = (const uint8_t *)"orphan", op->val_len = 6;
	op = qfs_txn_add(t, QFS_OP_LINK_DROP); /* destroy form: no orphan key */
	op->key = K2, op->key_len = 7;
	/* the 2PC ops (version 3): the decoder does not look inside the
	 * sub-txn nor check the txid's length (the store does) */
	op = qfs_txn_add(t, QFS_OP_PREPARE);
	op->key = K1, op->key_len = 7, op->val = (const uint8_t *)"subtxn", op->val_len = 6;
	op = qfs_txn_add(t, QFS_OP_COMMIT);
	op->key = K2, op->key_len = 7;
	op = qfs_txn_add(t, QFS_OP_ABORT);
	op->key = K1, op->key_len = 7;
	op = qfs_txn_add(t, QFS_OP_DECIDE);
	op->key = K2, op->key_len = 7, op->val = (const uint8_t *)"C", op->val_len = 1;
	op = qfs_txn_add(t, QFS_OP_PATCH); /* version 3 */
	op->key = K2, op->key_len = 7, op->offset = 4096, op->val = (const uint8_t *)"patch";
	op->val_len = 5;
}

static void sample_txn_encode(struct qfs_buf *b)
{
	struct qfs_txn t;
	build_sample_txn(&t);
	qfs_txn_encode(&t, b);
	qfs_txn_close(&t);
}

static void assert_bytes(const uint8_t *p, uint32_t n, const void *want, uint32_t wn)
{
	ck_assert_uint_eq(n, wn);
	if (n)
		ck_assert_mem_eq(p, want, n);
}

START_TEST(test_txn_roundtrip)
{
	struct qfs_txn t, d;
	struct qfs_buf b;
	build_sample_txn(&t);
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	ck_assert_int_eq(b.err, 0);
	ck_assert_uint_eq(qfs_txn_encoded_len(&t), b.len); /* counted, not encoded */
	qfs_txn_init(&d);
	ck_assert_int_eq(qfs_txn_decode(b.data, b.len, &d), 0);
	ck_assert_uint_eq(d.nops, t.nops);
	for (uint32_t i = 0; i < t.nops; i++) {
		const struct qfs_op *x = &t.ops[i], *y = &d.ops[i];
		ck_assert_int_eq(x->kind, y->kind);
		ck_assert_int_eq(x->err, y->err);
		assert_bytes(y->key, y->key_len, x->key, x->key_len);
		assert_bytes(y->key2, y->key2_len, x->key2, x->key2_len);
		assert_bytes(y->val, y->val_len, x->val, x->val_len);
		/* decoded pointers are into the buffer */
		ck_assert(y->key >= b.data && y->key + y->key_len <= b.data + b.len);
		if (x->name) {
			ck_assert_str_eq(y->name, x->name);
			ck_assert((const uint8_t *)y->name >= b.data &&
				  (const uint8_t *)y->name < b.data + b.len);
		} else {
			ck_assert_ptr_null(y->name);
		}
		ck_assert_uint_eq(x->mask, y->mask);
		ck_assert_int_eq(x->delta, y->delta);
		ck_assert_int_eq(x->flags, y->flags);
		ck_assert_uint_eq(x->limit, y->limit);
		ck_assert_uint_eq(x->offset, y->offset);
		if (x->kind == QFS_OP_SETATTR)
			assert_attr_eq(&x->attr, &y->attr);
	}
	qfs_txn_close(&d);

	/* empty txn */
	qfs_txn_close(&t);
	qfs_buf_reset(&b);
	qfs_txn_encode(&t, &b);
	ck_assert_uint_eq(qfs_txn_encoded_len(&t), b.len);
	ck_assert_int_eq(qfs_txn_decode(b.data, b.len, &d), 0);
	ck_assert_uint_eq(d.nops, 0);
	qfs_buf_close(&b);
	qfs_txn_close(&d);
}
END_TEST

START_TEST(test_txn_many_ops)
{
	struct qfs_txn t, d;
	struct qfs_buf b;
	qfs_txn_init(&t);
	for (int i = 0; i < 1000; i++) {
		struct qfs_op *op = qfs_txn_add(&t, QFS_OP_NLINK);
		ck_assert_ptr_nonnull(op);
		op->key = K1, op->key_len = 7, op->delta = i;
	}
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	qfs_txn_init(&d);
	ck_assert_int_eq(qfs_txn_decode(b.data, b.len, &d), 0);
	ck_assert_uint_eq(d.nops, 1000);
	ck_assert_int_eq(d.ops[999].delta, 999);
	qfs_txn_close(&d);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
}
END_TEST

/* qfs_txn_encoded_len (the admission's size, the proposer's reserve) is
 * the bytes qfs_txn_encode appends, for a txn of each single op kind
 * (versions 1, 2 and 3, the optional forms) and onto a buffer not empty. */
START_TEST(test_txn_encoded_len)
{
	struct qfs_txn all, t;
	struct qfs_buf b, cb;
	uint8_t be[8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	struct qfs_op *op;

	build_sample_txn(&all);
	op = qfs_txn_add(&all, QFS_OP_RANGE);
	ck_assert_ptr_nonnull(op);
	op->key = K1, op->key_len = 7, op->val = be, op->val_len = 8, op->err = -ESTALE;
	qfs_buf_init(&b);
	qfs_buf_put(&b, "junk", 4); /* encode appends: the length is what it adds */
	for (uint32_t i = 0; i <= all.nops; i++) {
		qfs_txn_init(&t);
		if (i < all.nops) { /* one op; i == nops: the empty txn */
			op = qfs_txn_add(&t, all.ops[i].kind);
			ck_assert_ptr_nonnull(op);
			*op = all.ops[i];
		}
		qfs_buf_reset(&b);
		qfs_buf_put(&b, "junk", 4);
		qfs_txn_encode(&t, &b);
		ck_assert_int_eq(b.err, 0);
		ck_assert_uint_eq(qfs_txn_encoded_len(&t), b.len - 4);
		qfs_txn_close(&t);
	}
	qfs_buf_reset(&b);
	qfs_txn_encode(&all, &b);
	ck_assert_uint_eq(qfs_txn_encoded_len(&all), b.len);
	/* the counting buffer allocates nothing */
	qfs_buf_init_count(&cb);
	qfs_txn_encode(&all, &cb);
	ck_assert_uint_eq(cb.len, b.len);
	ck_assert_ptr_null(cb.data);
	qfs_buf_close(&b);
	qfs_txn_close(&all);
}
END_TEST

/* Encode one op by hand-crafted fields and return the decode result. */
static int decode_one(struct qfs_op *proto, size_t patch_at, uint8_t patch_val, int append)
{
	struct qfs_txn t, d;
	struct qfs_buf b;
	qfs_txn_init(&t);
	struct qfs_op *op = qfs_txn_add(&t, proto->kind);
	*op = *proto;
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	if (patch_at)
		b.data[patch_at] = patch_val;
	if (append)
		qfs_buf_put_u8(&b, 0);
	qfs_txn_init(&d);
	int rc = qfs_txn_decode(b.data, b.len, &d);
	qfs_txn_close(&d);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	return rc;
}

START_TEST(test_txn_decode_rejects)
{
	struct qfs_op op = { .kind = QFS_OP_EXPECT_ABSENT, .key = K1, .key_len = 7, .err = -EEXIST };
	ck_assert_int_eq(decode_one(&op, 0, 0, 0), 0);
	ck_assert_int_eq(decode_one(&op, 0, 0, 1), QFS_ECORRUPT); /* trailing byte */
	/* version 1, nops 4 bytes, kind at 5, key len 6..9, key 10..16, err 17..20 */
	ck_assert_int_eq(decode_one(&op, 17, 0x00, 0), QFS_ECORRUPT); /* err >= 0 */
	ck_assert_int_eq(decode_one(&op, 5, 0, 0), QFS_ECORRUPT);       /* kind 0 */
	ck_assert_int_eq(decode_one(&op, 5, QFS_OP_LINK_DROP + 1, 0), QFS_ECORRUPT);
	/* a txn without link ops is written as version 1, which knows no LINK_* */
	ck_assert_int_eq(decode_one(&op, 5, QFS_OP_LINK_ADD, 0), QFS_ECORRUPT);
	ck_assert_int_eq(decode_one(&op, 4, 200, 0), QFS_ECORRUPT);     /* too many ops */

	struct qfs_op x = { .kind = QFS_OP_XDEL, .key = K1, .key_len = 7, .name = "user.x" };
	ck_assert_int_eq(decode_one(&x, 0, 0, 0), 0);
	/* name bytes at 21..27 ("user.x\0"): lose the NUL, or put one inside */
	ck_assert_int_eq(decode_one(&x, 27, 'y', 0), QFS_ECORRUPT);
	ck_assert_int_eq(decode_one(&x, 23, 0, 0), QFS_ECORRUPT);
	/* SETATTR with nanoseconds out of range */
	struct qfs_op s = { .kind = QFS_OP_SETATTR, .key = K1, .key_len = 7 };
	s.attr.ctime.nsec = 1000000000u;
	ck_assert_int_eq(decode_one(&s, 0, 0, 0), QFS_ECORRUPT);
	/* LINK_ADD: version 2, nops, kind at 5, key 6..16, limit 17..20 */
	struct qfs_op l = { .kind = QFS_OP_LINK_ADD, .key = K1, .key_len = 7, .limit = 3 };
	ck_assert_int_eq(decode_one(&l, 0, 0, 0), 0);
	ck_assert_int_eq(decode_one(&l, 0, 0, 1), QFS_ECORRUPT); /* trailing byte */
	struct qfs_txn lt, ld;
	struct qfs_buf lb;
	qfs_txn_init(&lt);
	*qfs_txn_add(&lt, QFS_OP_LINK_ADD) = l;
	qfs_buf_init(&lb);
	qfs_txn_encode(&lt, &lb);
	ck_assert_uint_eq(lb.data[0], 2);
	qfs_txn_init(&ld);
	lb.data[0] = 1; /* claims version 1, which has no LINK_ADD */
	ck_assert_int_eq(qfs_txn_decode(lb.data, lb.len, &ld), QFS_ECORRUPT);
	lb.data[0] = QFS_TXN_VERSION + 1; /* a newer version */
	ck_assert_int_eq(qfs_txn_decode(lb.data, lb.len, &ld), QFS_EFORMAT);
	qfs_txn_close(&lt);
	qfs_buf_close(&lb);
	/* COMMIT: version 3; a version-2 txn with kind 16 is corrupt */
	struct qfs_op cm = { .kind = QFS_OP_COMMIT, .key = K1, .key_len = 7 };
	qfs_txn_init(&lt);
	*qfs_txn_add(&lt, QFS_OP_COMMIT) = cm;
	qfs_buf_init(&lb);
	qfs_txn_encode(&lt, &lb);
	ck_assert_uint_eq(lb.data[0], 3);
	ck_assert_int_eq(qfs_txn_decode(lb.data, lb.len, &ld), 0);
	qfs_txn_close(&ld);
	lb.data[0] = 2;
	ck_assert_int_eq(qfs_txn_decode(lb.data, lb.len, &ld), QFS_ECORRUPT);
	qfs_txn_close(&lt);
	qfs_buf_close(&lb);
	/* RANGE (the partition fence) is version 3: written as such, refused
	 * in a version-2 txn, round-trips with its epoch and error */
	static const uint8_t ep[8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	struct qfs_op rg = { .kind = QFS_OP_RANGE, .key = K1, .key_len = 0, .val = ep, .val_len = 8,
			     .err = QFS_ESTALE };
	qfs_txn_init(&lt);
	*qfs_txn_add(&lt, QFS_OP_RANGE) = rg;
	qfs_buf_init(&lb);
	qfs_txn_encode(&lt, &lb);
	ck_assert_uint_eq(lb.data[0], 3);
	qfs_txn_init(&ld);
	ck_assert_int_eq(qfs_txn_decode(lb.data, lb.len, &ld), 0);
	ck_assert_uint_eq(ld.nops, 1);
	ck_assert_int_eq(ld.ops[0].kind, QFS_OP_RANGE);
	ck_assert_int_eq(ld.ops[0].err, QFS_ESTALE);
	ck_assert_uint_eq(ld.ops[0].val_len, 8);
	ck_assert_int_eq(memcmp(ld.ops[0].val, ep, 8), 0);
	qfs_txn_close(&ld);
	lb.data[0] = 2;
	ck_assert_int_eq(qfs_txn_decode(lb.data, lb.len, &ld), QFS_ECORRUPT);
	qfs_txn_close(&lt);
	qfs_buf_close(&lb);
}
END_TEST

/* PATCH: version 3, its offset and bytes round-trip; an older version
 * claiming it is corrupt, as is a short one. */
START_TEST(test_txn_patch)
{
	struct qfs_txn t, d;
	struct qfs_buf b;
	struct qfs_op *op;

	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_NLINK);
	op->key = K1, op->key_len = 7, op->delta = 1;
	op = qfs_txn_add(&t, QFS_OP_PATCH);
	op->key = K2, op->key_len = 7, op->offset = 123456, op->val = (const uint8_t *)"bytes";
	op->val_len = 5;
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	ck_assert_int_eq(b.err, 0);
	ck_assert_uint_eq(b.data[0], 3);
	qfs_txn_init(&d);
	ck_assert_int_eq(qfs_txn_decode(b.data, b.len, &d), 0);
	ck_assert_uint_eq(d.nops, 2);
	ck_assert_int_eq(d.ops[1].kind, QFS_OP_PATCH);
	ck_assert_uint_eq(d.ops[1].offset, 123456);
	assert_bytes(d.ops[1].key, d.ops[1].key_len, K2, 7);
	assert_bytes(d.ops[1].val, d.ops[1].val_len, "bytes", 5);
	qfs_txn_close(&d);
	for (uint8_t v = 1; v <= 2; v++) {
		b.data[0] = v; /* a version before PATCH */
		ck_assert_int_eq(qfs_txn_decode(b.data, b.len, &d), QFS_ECORRUPT);
	}
	b.data[0] = 3;
	ck_assert_int_eq(qfs_txn_decode(b.data, b.len - 1, &d), QFS_ECORRUPT); /* short */
	ck_assert_uint_eq(d.nops, 0);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
}
END_TEST

/* ---- clock.c ---- */

START_TEST(test_clock)
{
	struct qfs_ts ts;
	qfs_clock_now(&ts);
	ck_assert_int_gt(ts.sec, 1600000000);
	ck_assert_uint_lt(ts.nsec, 1000000000u);
	uint64_t a = qfs_clock_mono_ns();
	uint64_t b = qfs_clock_mono_ns();
	ck_assert_uint_ge(b, a);
	ck_assert_uint_le(qfs_clock_mono_ms(), qfs_clock_mono_ns() / 1000000u);
}
END_TEST

/* The call budget: outside a call every wait gets a full timeout; inside,
 * waits share the first deadline until progress; limit only shortens;
 * nesting counts the outermost pair. */
START_TEST(test_call_budget)
{
	uint64_t d, now;

	ck_assert_uint_eq(qfs_clock_call_deadline(1000, 50), 1050);
	ck_assert_uint_eq(qfs_clock_call_deadline(2000, 50), 2050);
	ck_assert(!qfs_clock_call_active());
	qfs_clock_call_begin();
	ck_assert(qfs_clock_call_active());
	ck_assert_uint_eq(qfs_clock_call_deadline(1000, 50), 1050);
	ck_assert_uint_eq(qfs_clock_call_deadline(1040, 50), 1050); /* shared */
	qfs_clock_call_begin(); /* nested: same budget */
	ck_assert_uint_eq(qfs_clock_call_deadline(1045, 50), 1050);
	qfs_clock_call_end();
	ck_assert_uint_eq(qfs_clock_call_deadline(1049, 50), 1050);
	qfs_clock_call_progress(); /* a wait succeeded: fresh budget */
	ck_assert_uint_eq(qfs_clock_call_deadline(1100, 50), 1150);
	qfs_clock_call_progress();
	now = qfs_clock_mono_ms();
	qfs_clock_call_limit(20);
	d = qfs_clock_call_deadline(now, 5000);
	ck_assert_uint_ge(d, now + 20);
	ck_assert_uint_le(d, qfs_clock_mono_ms() + 20);
	qfs_clock_call_limit(60000); /* never lengthens */
	ck_assert_uint_eq(qfs_clock_call_deadline(now, 5000), d);
	qfs_clock_call_end();
	ck_assert_uint_eq(qfs_clock_call_deadline(1000, 50), 1050); /* no call */
	qfs_clock_call_limit(1); /* outside a call: nothing */
	ck_assert_uint_eq(qfs_clock_call_deadline(1000, 50), 1050);
	qfs_clock_call_end(); /* unbalanced end: harmless */
	ck_assert_uint_eq(qfs_clock_call_deadline(3000, 50), 3050);
}
END_TEST

START_TEST(test_glist)
{
	struct qfs_glist l = { 0 };

	for (qfs_group_t g = 100; g > 0; g--)
		qfs_glist_add(g * 7 % 101, &l);
	ck_assert_int_eq(l.err, 0);
	ck_assert_uint_eq(l.n, 100);
	ck_assert(qfs_glist_has(&l, 7));
	ck_assert(!qfs_glist_has(&l, 0));
	qfs_glist_sort(&l);
	for (size_t i = 1; i < l.n; i++)
		ck_assert_uint_lt(l.v[i - 1], l.v[i]);
	qfs_glist_free(&l);
	ck_assert_uint_eq(l.n, 0);
	ck_assert(!qfs_glist_has(&l, 7));
}
END_TEST

static Suite *common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc;

	tc = tcase_create("errors");
	tcase_add_test(tc, test_strerror);
	tcase_add_test(tc, test_err_to_errno);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_test(tc, test_log_level_parse);
	tcase_add_test(tc, test_log_line);
	tcase_add_test(tc, test_log_escape_reopen);
	suite_add_tcase(s, tc);

	tc = tcase_create("buf");
	tcase_add_test(tc, test_esc);
	tcase_add_test(tc, test_buf_roundtrip);
	tcase_add_test(tc, test_val);
	tcase_add_test(tc, test_rd_bytes_overrun);
	suite_add_tcase(s, tc);

	tc = tcase_create("key");
	tcase_add_test(tc, test_key_layout);
	tcase_add_test(tc, test_key_order);
	tcase_add_test(tc, test_key_dentry_range);
	tcase_add_test(tc, test_key_chunk_range);
	tcase_add_test(tc, test_key_parse_roundtrip);
	tcase_add_test(tc, test_key_parse_rejects);
	suite_add_tcase(s, tc);

	tc = tcase_create("item");
	tcase_add_test(tc, test_dentry_roundtrip);
	tcase_add_test(tc, test_inode_roundtrip);
	tcase_add_test(tc, test_inode_counts_and_v1);
	tcase_add_test(tc, test_inode_decode_rejects);
	tcase_add_test(tc, test_xattr_semantics);
	tcase_add_test(tc, test_xattr_limits);
	tcase_add_test(tc, test_set_data);
	suite_add_tcase(s, tc);

	tc = tcase_create("codec");
	tcase_add_test(tc, test_sample_sizes);
	tcase_add_loop_test(tc, test_truncated_prefix, 0, SAMPLE_N);
	tcase_add_test(tc, test_version_bump);
	suite_add_tcase(s, tc);

	tc = tcase_create("txn");
	tcase_add_test(tc, test_txn_roundtrip);
	tcase_add_test(tc, test_txn_encoded_len);
	tcase_add_test(tc, test_txn_many_ops);
	tcase_add_test(tc, test_txn_decode_rejects);
	tcase_add_test(tc, test_txn_patch);
	suite_add_tcase(s, tc);

	tc = tcase_create("clock");
	tcase_add_test(tc, test_clock);
	tcase_add_test(tc, test_call_budget);
	tcase_add_test(tc, test_glist);
	suite_add_tcase(s, tc);

	tc = tcase_create("bigbuf");
	tcase_add_test(tc, test_bigbuf_reuse);
	tcase_add_test(tc, test_bigbuf_bound);
	tcase_add_test(tc, test_bigbuf_lend);
	tcase_add_test(tc, test_bigbuf_idle);
	tcase_add_test(tc, test_bigbuf_threads);
	tcase_add_test(tc, test_bigbuf_huge);
#if defined(__SANITIZE_ADDRESS__)
	tcase_add_test(tc, test_bigbuf_poison);
#endif
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(common_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
