/*
 * unit.h - helpers shared by the Check unit tests that run over a real
 * cell in a private temporary directory (check_meta, check_router,
 * check_xact): fast Paxos timers, the directory's creation and removal,
 * and the runner of a suite.  Header only: a test includes it after
 * <check.h> and node/cell.h.
 */
#ifndef QFS_TESTS_UNIT_UNIT_H
#define QFS_TESTS_UNIT_UNIT_H

#include <stdio.h>
#include <stdlib.h>

#include "runner.h"

/* Paxos timers for tests (as check_rnode uses): leaders in well under a
 * second. */
static inline void unit_fast_paxos(struct qfs_paxos_params *prm)
{
	qfs_paxos_params_default(prm);
	prm->election_min_ms = 150;
	prm->election_max_ms = 300;
	prm->heartbeat_ms = 30;
	prm->lease_ms = 200;
}

/* Make a fresh directory /tmp/<name>.XXXXXX into dir[size] (asserts). */
static inline void unit_tmpdir(char *dir, size_t size, const char *name)
{
	snprintf(dir, size, "/tmp/%s.XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Remove dir and everything below it (asserts). */
static inline void unit_rmdir(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Run every test of s; the process's exit status (runner.h: in one
 * process in a sanitizer build). */
static inline int unit_run(Suite *s)
{
	return unit_run_one(s);
}

#endif
