/*
 * check_avail.c - client-side availability (src/router/avail.c): errno
 * classification, option parsing, per table/op counts and windows, the
 * availability and canary alarms, the escapes of the text and of the
 * Prometheus labels.  The window test sleeps past a 0.6 s window; that is
 * a property of the monotonic clock, not a timing assertion.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "router/avail.h"

static char *text_of(struct qfs_avail *a, void (*fn)(struct qfs_avail *, struct qfs_buf *))
{
	struct qfs_buf b;
	size_t len;

	qfs_buf_init(&b);
	fn(a, &b);
	qfs_buf_put_u8(&b, 0);
	ck_assert_int_eq(b.err, 0);
	return (char *)qfs_buf_steal(&b, &len);
}

static struct qfs_avail *mk(uint64_t window_ms, uint64_t min_req)
{
	struct qfs_avail_opts o;
	qfs_avail_opts_default(&o);
	o.window_ms = window_ms;
	o.min_requests = min_req;
	struct qfs_avail *a = qfs_avail_new(&o);
	ck_assert_ptr_nonnull(a);
	return a;
}

START_TEST(test_errno_classes)
{
	int user[] = { ENOENT, EEXIST, ENOTEMPTY, EACCES, EPERM, EINVAL, ENAMETOOLONG, EXDEV, ENODATA, ERANGE };
	int server[] = { EIO, ETIMEDOUT, ENOSPC, EAGAIN, ENOMEM, EPROTO };

	for (size_t i = 0; i < sizeof(user) / sizeof(user[0]); i++)
		ck_assert_int_eq(qfs_avail_server_errno(user[i]), 0);
	for (size_t i = 0; i < sizeof(server) / sizeof(server[0]); i++)
		ck_assert_int_eq(qfs_avail_server_errno(server[i]), 1);
}
END_TEST

START_TEST(test_options)
{
	struct qfs_avail_opts o;

	qfs_avail_opts_default(&o);
	ck_assert(o.error_rate == QFS_AVAIL_RATE_DEFAULT);
	ck_assert_uint_eq(o.canary_ms, QFS_AVAIL_CANARY_DEFAULT_MS);
	ck_assert_int_eq(qfs_avail_opt(&o, "alarm_error_rate=0.05"), 1);
	ck_assert(o.error_rate == 0.05);
	ck_assert_int_eq(qfs_avail_opt(&o, "canary_interval=off"), 1);
	ck_assert_uint_eq(o.canary_ms, 0);
	ck_assert_int_eq(qfs_avail_opt(&o, "canary_interval=2m"), 1);
	ck_assert_uint_eq(o.canary_ms, 120000);
	ck_assert_int_eq(qfs_avail_opt(&o, "alarm_window=10s"), 1);
	ck_assert_uint_eq(o.window_ms, 10000);
	ck_assert_int_eq(qfs_avail_opt(&o, "metrics_listen=127.0.0.1:9100"), 1);
	ck_assert_str_eq(o.metrics_listen, "127.0.0.1:9100");
	ck_assert_int_eq(qfs_avail_opt(&o, "scrub=off"), 0);
	/* bad values: -1, and o unchanged */
	ck_assert_int_eq(qfs_avail_opt(&o, "alarm_error_rate=0"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "alarm_error_rate=1.5"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "alarm_min_requests=x"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "alarm_window=1ms"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "canary_interval=-1"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "metrics_listen=9100"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "metrics_listen=127.0.0.1:99999"), -1); /* would wrap to 34463 */
	ck_assert_int_eq(qfs_avail_opt(&o, "metrics_listen=127.0.0.1:0"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "metrics_listen=127.0.0.1:http"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "metrics_listen=127.0.0.1:91x"), -1);
	ck_assert_int_eq(qfs_avail_opt(&o, "metrics_listen=[::1]:9100"), 1);
	ck_assert(o.error_rate == 0.05);
	ck_assert_uint_eq(o.window_ms, 10000);
}
END_TEST

START_TEST(test_counts_and_text)
{
	struct qfs_avail *a = mk(60000, 20);
	uint64_t ids[] = { 1024 };
	const char *names[] = { "a b\\c" };

	qfs_avail_names(a, ids, names, 1);
	for (int i = 0; i < 98; i++)
		qfs_avail_record(a, 1024, "read", 100000000, 0);    /* 100 ms */
	qfs_avail_record(a, 1024, "read", 3000000000ull, ENOENT);
	qfs_avail_record(a, 1024, "read", 3000000000ull, EIO);
	qfs_avail_record(a, 2048, "write", 1000, 0);            /* no name: group-... */
	qfs_avail_record(a, QFS_AVAIL_ROOT, "lookup", 1000, 0);
	char *t = text_of(a, qfs_avail_text);
	ck_assert_msg(strncmp(t, "windows w1 60s w2 300s w3 3600s ", 32) == 0, "%s", t);
	ck_assert_msg(strstr(t, "\ntable a\\040b\\134c op read count 100 ok 98 errors 2 server_errors 1 "
				"err_ENOENT 1 err_EIO 1 w1_count 100 w1_errors 2 w1_server_errors 1 "
				"w1_p50_us 131072 w1_p99_us 4194304 "), "%s", t);
	ck_assert_msg(strstr(t, "\ntable group-0000000000000800 op write count 1 "), "%s", t);
	ck_assert_msg(strstr(t, "\ntable / op lookup count 1 "), "%s", t);
	free(t);
	/* 1 server error in 100 = 0.01: at the threshold, raised; its log
	 * line escapes the name as the control files do (one field) */
	char lp[] = "/tmp/qfs-avail-log-XXXXXX";
	int lfd = mkstemp(lp), saved = dup(STDERR_FILENO);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_ge(dup2(lfd, STDERR_FILENO), 0);
	qfs_log_set_level("warn");
	t = text_of(a, qfs_avail_alarms);
	qfs_log_set_level("err");
	dup2(saved, STDERR_FILENO);
	close(saved);
	char lb[1024] = { 0 };
	ck_assert_int_gt(pread(lfd, lb, sizeof(lb) - 1, 0), 0);
	close(lfd);
	unlink(lp);
	ck_assert_msg(strstr(lb, "WARN alarm raised kind=availability table=a\\040b\\134c text=\"server-side"), "%s",
		      lb);
	ck_assert_msg(strstr(t, "alarm availability raised ") && strstr(t, " table=a\\040b\\134c \"server-side error rate 0.0100"),
		      "%s", t);
	free(t);
	t = text_of(a, qfs_avail_metrics);
	ck_assert_msg(strstr(t, "quorumfs_requests_total{table=\"a b\\\\c\",op=\"read\"} 100\n"), "%s", t);
	ck_assert_msg(strstr(t, "quorumfs_errors_total{table=\"a b\\\\c\",op=\"read\",errno=\"EIO\",server=\"1\"} 1\n"),
		      "%s", t);
	ck_assert_msg(strstr(t, "quorumfs_request_duration_seconds_count{table=\"a b\\\\c\",op=\"read\"} 100\n"), "%s",
		      t);
	ck_assert_msg(strstr(t, "quorumfs_table_alarm{table=\"a b\\\\c\"} 1\n"), "%s", t);
	free(t);
	qfs_avail_free(a);
}
END_TEST

START_TEST(test_alarm_thresholds_and_window)
{
	struct qfs_avail *a = mk(600, 5);   /* w1 = 0.6 s */
	char *t;

	/* few requests: never raise, whatever the rate */
	for (int i = 0; i < 4; i++)
		qfs_avail_record(a, 7777, "mkdir", 1000, ETIMEDOUT);
	t = text_of(a, qfs_avail_alarms);
	ck_assert_str_eq(t, "");
	free(t);
	/* user errors: never raise */
	for (int i = 0; i < 50; i++)
		qfs_avail_record(a, 8888, "lookup", 1000, ENOENT);
	qfs_avail_tick(a);
	t = text_of(a, qfs_avail_alarms);
	ck_assert_str_eq(t, "");
	free(t);
	/* the fifth server error: raised for 7777 only */
	qfs_avail_record(a, 7777, "mkdir", 1000, EIO);
	t = text_of(a, qfs_avail_alarms);
	ck_assert_msg(strstr(t, "table=group-0000000000001e61 ") && !strstr(t, "22b8"), "%s", t);
	free(t);
	/* once the window slid past, cleared */
	usleep(1300 * 1000);
	qfs_avail_tick(a);
	t = text_of(a, qfs_avail_alarms);
	ck_assert_str_eq(t, "");
	free(t);
	t = text_of(a, qfs_avail_text);
	ck_assert_msg(strstr(t, " op mkdir count 5 ok 0 errors 5 server_errors 5 err_ETIMEDOUT 4 err_EIO 1 w1_count 0 "),
		      "%s", t);
	free(t);
	qfs_avail_free(a);
}
END_TEST

START_TEST(test_canary_alarm)
{
	struct qfs_avail *a = mk(60000, 20);
	char *t;

	qfs_avail_canary_result(a, 0, "canary write failed: Connection timed out");
	qfs_avail_canary_result(a, 0, "canary create failed: Connection timed out");
	t = text_of(a, qfs_avail_alarms);
	ck_assert_msg(strstr(t, "alarm canary raised ") && strstr(t, "table=/canary \"canary create failed"), "%s", t);
	ck_assert_msg(strchr(t, '\n') == t + strlen(t) - 1, "one line: %s", t);
	free(t);
	qfs_avail_canary_result(a, 1, NULL);
	t = text_of(a, qfs_avail_alarms);
	ck_assert_str_eq(t, "");
	free(t);
	t = text_of(a, qfs_avail_metrics);
	ck_assert_msg(strstr(t, "quorumfs_canary_rounds_total{result=\"ok\"} 1\n") &&
			      strstr(t, "quorumfs_canary_rounds_total{result=\"failed\"} 2\n"),
		      "%s", t);
	free(t);
	qfs_avail_free(a);
	qfs_avail_free(NULL);
}
END_TEST

START_TEST(test_label_escapes)
{
	struct qfs_avail *a = mk(60000, 20);
	uint64_t ids[] = { 5000 };
	const char *names[] = { "q\"x\ny" };
	char *t;

	qfs_avail_names(a, ids, names, 1);
	qfs_avail_record(a, 5000, "read", 1000, 0);
	t = text_of(a, qfs_avail_metrics);
	ck_assert_msg(strstr(t, "quorumfs_requests_total{table=\"q\\\"x\\ny\",op=\"read\"} 1\n"), "%s", t);
	free(t);
	t = text_of(a, qfs_avail_text);
	ck_assert_msg(strstr(t, "\ntable q\"x\\012y op read "), "%s", t);
	free(t);
	qfs_avail_free(a);
}
END_TEST

/* A deleted table: once two name refreshes in a row do not list it, its
 * entries and its alarm go (else the frontend's ticker, seeing an unnamed
 * table, would list every table every second for the rest of the mount,
 * and the control files would show the deleted table for ever). */
START_TEST(test_deleted_table_pruned)
{
	struct qfs_avail *a = mk(60000, 5);
	uint64_t ids[] = { 1024, 5000 };
	const char *names[] = { "kept", "gone" };
	char *t;

	qfs_avail_names(a, ids, names, 2);
	for (int i = 0; i < 10; i++) {
		qfs_avail_record(a, 1024, "read", 1000, 0);
		qfs_avail_record(a, 5000, "write", 1000, EIO);
	}
	qfs_avail_tick(a);
	t = text_of(a, qfs_avail_alarms);
	ck_assert_msg(strstr(t, "table=gone "), "%s", t);
	free(t);
	ck_assert_int_eq(qfs_avail_unnamed(a), 0);
	/* 5000 is deleted: the next listing lacks it */
	qfs_avail_names(a, ids, names, 1);
	ck_assert_int_eq(qfs_avail_unnamed(a), 1); /* maybe a table the listing missed: look again */
	qfs_avail_names(a, ids, names, 1);
	ck_assert_int_eq(qfs_avail_unnamed(a), 0);
	t = text_of(a, qfs_avail_text);
	ck_assert_msg(!strstr(t, "group-0000000000001388") && !strstr(t, "table gone "), "%s", t);
	ck_assert_msg(strstr(t, "\ntable kept op read count 10 "), "%s", t);
	free(t);
	t = text_of(a, qfs_avail_alarms);
	ck_assert_str_eq(t, "");
	free(t);
	/* a table listed again after one miss keeps its entries */
	qfs_avail_record(a, 6000, "read", 1000, 0);
	qfs_avail_names(a, ids, names, 1);
	uint64_t ids2[] = { 1024, 6000 };
	const char *names2[] = { "kept", "new" };
	qfs_avail_names(a, ids2, names2, 2);
	qfs_avail_names(a, ids2, names2, 2);
	t = text_of(a, qfs_avail_text);
	ck_assert_msg(strstr(t, "table new op read count 1 "), "%s", t);
	free(t);
	qfs_avail_free(a);
}
END_TEST

/* The frontend's own name entries (qfs_avail_name_add: a table it
 * created; qfs_avail_table_id: a failed lookup of a known name).  A name
 * belongs to one table: a table created under the name of one dropped (or
 * renamed) a moment ago takes it, so that the old id neither answers for
 * the name nor shows a second series with the same labels until the next
 * refresh (up to 30 s). */
START_TEST(test_name_add)
{
	struct qfs_avail *a = mk(60000, 20);
	const char *p, *q;
	char *t;

	qfs_avail_name_add(a, 7000, "t");
	qfs_avail_record(a, 7000, "read", 1000, 0);
	ck_assert_int_eq(qfs_avail_unnamed(a), 0);
	ck_assert_uint_eq(qfs_avail_table_id(a, "t"), 7000);
	ck_assert_uint_eq(qfs_avail_table_id(a, "x"), 0);
	qfs_avail_name_add(a, 7000, "u"); /* renamed */
	ck_assert_uint_eq(qfs_avail_table_id(a, "u"), 7000);
	ck_assert_uint_eq(qfs_avail_table_id(a, "t"), 0);
	/* u dropped, and a new table u created at once */
	qfs_avail_name_add(a, 8000, "u");
	qfs_avail_record(a, 8000, "read", 1000, 0);
	ck_assert_uint_eq(qfs_avail_table_id(a, "u"), 8000);
	ck_assert_int_eq(qfs_avail_unnamed(a), 1); /* 7000: the next refresh prunes it */
	t = text_of(a, qfs_avail_metrics);
	p = strstr(t, "quorumfs_requests_total{table=\"u\",op=\"read\"}");
	ck_assert_msg(p, "%s", t);
	q = strstr(p + 1, "quorumfs_requests_total{table=\"u\",op=\"read\"}");
	ck_assert_msg(!q, "two series with the same labels:\n%s", t);
	free(t);
	qfs_avail_free(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("avail");
	TCase *tc = tcase_create("avail");

	qfs_log_set_level("err");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_errno_classes);
	tcase_add_test(tc, test_options);
	tcase_add_test(tc, test_counts_and_text);
	tcase_add_test(tc, test_alarm_thresholds_and_window);
	tcase_add_test(tc, test_canary_alarm);
	tcase_add_test(tc, test_label_escapes);
	tcase_add_test(tc, test_deleted_table_pruned);
	tcase_add_test(tc, test_name_add);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
