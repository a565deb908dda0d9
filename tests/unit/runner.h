/*
 * runner.h - the runner of a Check suite whose tests are independent of
 * the process's state, so that a sanitizer build can run them all in one
 * process.  Header only: a test includes it after <check.h>.
 *
 * Check forks a child per test by default.  Under AddressSanitizer each
 * child runs LeakSanitizer's leak check at its exit: 50 ms for an empty
 * program on this 2-vCPU VM and more the larger the heap (about 150 ms a
 * test in check_wal), so check_wal's 534 tests took 93 s under ASan
 * against 13 s in one process.  A suite run with unit_run_one therefore
 * runs without forking in a sanitizer build: its leaks are found by one
 * leak check at the process's exit (every test's allocations are still
 * in that process), a crash or a sanitizer report ends the whole run
 * (which fails it), and the per-test timeouts (CK_DEFAULT_TIMEOUT) do
 * not apply; the plain build (build/) runs the same tests forked, with
 * their timeouts.  CK_FORK=yes in the environment forks anyway (to find
 * which test a crash is in).
 *
 * A suite whose tests share process state on purpose (check_common's
 * buffer pool counters) must not use it.
 */
#ifndef QFS_TESTS_UNIT_RUNNER_H
#define QFS_TESTS_UNIT_RUNNER_H

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNIT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNIT_SANITIZED 1
#endif
#endif

/* Run every test of s (in one process in a sanitizer build unless
 * CK_FORK=yes); how many failed. */
static inline int unit_run_failed(Suite *s)
{
	SRunner *sr = srunner_create(s);
	const char *fork_env = getenv("CK_FORK");
	int failed;

#ifdef UNIT_SANITIZED
	if (!fork_env || strcmp(fork_env, "yes") != 0)
		srunner_set_fork_status(sr, CK_NOFORK);
#else
	(void)fork_env;
#endif
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

/* As unit_run_failed; the process's exit status. */
static inline int unit_run_one(Suite *s)
{
	return unit_run_failed(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
