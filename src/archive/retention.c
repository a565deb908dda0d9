/*
 * retention.c - archive retention (doc/archive.md "Retention"): which
 * archived segments and snapshots no restore inside the window needs
 * (pure, qfs_arch_retain), the earliest restorable time, and the
 * process-wide lock that keeps deletions away from the scrubber's reads.
 */
#include "config.h"

#include <pthread.h>

#include "archive/archive_int.h"

/* Readers (the scrubber's reference and verification) share it; the
 * archiver takes it exclusively while it deletes objects. */
static pthread_rwlock_t retain_lock = PTHREAD_RWLOCK_INITIALIZER;

void qfs_arch_read_lock(void)
{
	pthread_rwlock_rdlock(&retain_lock);
}

void qfs_arch_read_unlock(void)
{
	pthread_rwlock_unlock(&retain_lock);
}

void qfs_arch_delete_lock(void)
{
	pthread_rwlock_wrlock(&retain_lock);
}

void qfs_arch_delete_unlock(void)
{
	pthread_rwlock_unlock(&retain_lock);
}

/* See archive_int.h. */
void qfs_arch_retain(const struct qfs_arch_manifest *m, uint64_t start_ns, size_t *nsegs,
		     size_t *nsnaps)
{
	long k = -1;

	*nsegs = 0;
	*nsnaps = 0;
	for (size_t i = 0; i < m->nsnaps; i++)
		if (m->snaps[i].time_ns <= start_ns)
			k = (long)i;
	if (k < 0)
		return; /* no snapshot old enough: the window needs the log from its start */
	*nsnaps = (size_t)k;
	/* segments wholly at or below the snapshot, but never the last one
	 * (it carries the archived LSN the archiver continues from) */
	while (*nsegs + 1 < m->nsegs && m->segs[*nsegs].last <= m->snaps[k].lsn)
		(*nsegs)++;
}

/* See archive_int.h. */
uint64_t qfs_arch_earliest(const struct qfs_arch_manifest *m)
{
	if (m->nsegs == 0 || m->segs[0].first <= 1)
		return 0;
	for (size_t i = 0; i < m->nsnaps; i++)
		if (m->snaps[i].lsn + 1 >= m->segs[0].first)
			return m->snaps[i].time_ns;
	return UINT64_MAX; /* no snapshot bridges to the first segment: nothing restorable */
}
