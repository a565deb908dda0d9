/*
 * inode.c - the frontend's inode table: kernel lookup counts and our own
 * references for every inode in use.  Rules and lock order: fs_int.h.
 * Also the name hints: which inode a name was last seen to name (below).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "fs/fs_int.h"

#define ITAB_INITIAL 4096

static size_t bucket(const struct qfs_fs *fs, qfs_ino_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 20) & (fs->itab_size - 1);
}

int qfs_fs_itab_init(struct qfs_fs *fs)
{
	fs->itab_size = ITAB_INITIAL;
	fs->itab = calloc(fs->itab_size, sizeof(*fs->itab));
	if (!fs->itab)
		return -ENOMEM;
	fs->hints = calloc(QFS_FS_HINTS, sizeof(*fs->hints));
	if (!fs->hints) {
		free(fs->itab);
		fs->itab = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&fs->itab_mu, NULL);
	pthread_mutex_init(&fs->hint_mu, NULL);
	return 0;
}

static void ifree(struct qfs_fs_inode *in)
{
	qfs_fs_drop_buffers(in);
	qfs_fs_pend_free(in->pend); /* unmounted while pending: never stored */
	qfs_fs_dir_shared_free(in->dsh);
	qfs_fs_dir_cookies_free(in->dck);
	pthread_cond_destroy(&in->wb_cv);
	pthread_mutex_destroy(&in->mu);
	free(in);
}

void qfs_fs_itab_close(struct qfs_fs *fs)
{
	for (size_t i = 0; i < fs->itab_size; i++) {
		struct qfs_fs_inode *in = fs->itab[i], *next;
		for (; in; in = next) {
			next = in->hnext;
			ifree(in);
		}
	}
	free(fs->itab);
	fs->itab = NULL;
	free(fs->hints);
	fs->hints = NULL;
	pthread_mutex_destroy(&fs->itab_mu);
	pthread_mutex_destroy(&fs->hint_mu);
}

/* ---- name hints ----
 * A direct-mapped table of (parent, name) -> (ino, type), filled where fs/
 * learns a name (lookup, create, mkdir, link, rename, readdirplus) and
 * emptied where it removes one.  A hint is never trusted: unlink uses it
 * for the condition of its txn (the dentry's value must be what the hint
 * says), so a stale or colliding hint only costs a failed txn and a read.
 * That saves the store read of the dentry before each unlink. */

static uint64_t hint_hash(qfs_ino_t parent, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (parent * 0x9e3779b97f4a7c15ull);

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h | 1; /* 0: an empty slot */
}

void qfs_fs_hint_put(struct qfs_fs *fs, qfs_ino_t parent, const char *name, qfs_ino_t ino, uint32_t type)
{
	uint64_t h = hint_hash(parent, name);
	struct qfs_fs_hint *e = &fs->hints[h & (QFS_FS_HINTS - 1)];

	pthread_mutex_lock(&fs->hint_mu);
	e->h = h;
	e->ino = ino;
	e->type = type;
	pthread_mutex_unlock(&fs->hint_mu);
}

void qfs_fs_hint_del(struct qfs_fs *fs, qfs_ino_t parent, const char *name)
{
	uint64_t h = hint_hash(parent, name);
	struct qfs_fs_hint *e = &fs->hints[h & (QFS_FS_HINTS - 1)];

	pthread_mutex_lock(&fs->hint_mu);
	if (e->h == h)
		e->h = 0;
	pthread_mutex_unlock(&fs->hint_mu);
}

int qfs_fs_hint_get(struct qfs_fs *fs, qfs_ino_t parent, const char *name, qfs_ino_t *ino, uint32_t *type)
{
	uint64_t h = hint_hash(parent, name);
	const struct qfs_fs_hint *e = &fs->hints[h & (QFS_FS_HINTS - 1)];
	int rc = -ENOENT;

	pthread_mutex_lock(&fs->hint_mu);
	if (e->h == h) {
		*ino = e->ino;
		*type = e->type;
		rc = 0;
	}
	pthread_mutex_unlock(&fs->hint_mu);
	return rc;
}

/* Double the bucket array; with itab_mu held.  Failure just keeps chains long. */
static void grow(struct qfs_fs *fs)
{
	size_t nsize = fs->itab_size * 2;
	struct qfs_fs_inode **n = calloc(nsize, sizeof(*n));

	if (!n)
		return;
	struct qfs_fs_inode **old = fs->itab;
	size_t osize = fs->itab_size;
	fs->itab = n;
	fs->itab_size = nsize;
	for (size_t i = 0; i < osize; i++) {
		struct qfs_fs_inode *in = old[i], *next;
		for (; in; in = next) {
			next = in->hnext;
			size_t b = bucket(fs, in->ino);
			in->hnext = n[b];
			n[b] = in;
		}
	}
	free(old);
}

static struct qfs_fs_inode *lookup_locked(struct qfs_fs *fs, qfs_ino_t ino)
{
	struct qfs_fs_inode *in;

	for (in = fs->itab[bucket(fs, ino)]; in; in = in->hnext)
		if (in->ino == ino)
			return in;
	return NULL;
}

struct qfs_fs_inode *qfs_fs_iget(struct qfs_fs *fs, qfs_ino_t ino, qfs_table_t table, uint32_t type,
				 int kernel)
{
	struct qfs_fs_inode *in;

	pthread_mutex_lock(&fs->itab_mu);
	in = lookup_locked(fs, ino);
	if (!in) {
		in = calloc(1, sizeof(*in));
		if (!in) {
			pthread_mutex_unlock(&fs->itab_mu);
			return NULL;
		}
		in->ino = ino;
		in->table = table;
		in->type = type;
		pthread_mutex_init(&in->mu, NULL);
		pthread_cond_init(&in->wb_cv, NULL);
		if (fs->ninodes >= fs->itab_size)
			grow(fs);
		size_t b = bucket(fs, ino);
		in->hnext = fs->itab[b];
		fs->itab[b] = in;
		fs->ninodes++;
	}
	in->refs++;
	if (kernel)
		in->nlookup++;
	qfs_fs_tl_table = in->table; /* this reply's table (avail.c) */
	pthread_mutex_unlock(&fs->itab_mu);
	return in;
}

struct qfs_fs_inode *qfs_fs_ifind(struct qfs_fs *fs, qfs_ino_t ino)
{
	struct qfs_fs_inode *in;

	pthread_mutex_lock(&fs->itab_mu);
	in = lookup_locked(fs, ino);
	if (in) {
		in->refs++;
		qfs_fs_tl_table = in->table; /* this reply's table (avail.c) */
	}
	pthread_mutex_unlock(&fs->itab_mu);
	return in;
}

void qfs_fs_ipin(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	pthread_mutex_lock(&fs->itab_mu);
	in->refs++;
	pthread_mutex_unlock(&fs->itab_mu);
}

void qfs_fs_dir_changed(struct qfs_fs *fs, qfs_ino_t dir)
{
	struct qfs_fs_inode *in;

	pthread_mutex_lock(&fs->itab_mu);
	if (!dir)
		fs->dgen_all++;
	else if ((in = lookup_locked(fs, dir)))
		in->dgen++;
	pthread_mutex_unlock(&fs->itab_mu);
}

/* Unlink in from the table and free it if nobody holds it; itab_mu held. */
static void maybe_free_locked(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	if (in->refs || in->nlookup || in->ino == FUSE_ROOT_ID)
		return;
	struct qfs_fs_inode **pp = &fs->itab[bucket(fs, in->ino)];
	while (*pp != in)
		pp = &(*pp)->hnext;
	*pp = in->hnext;
	fs->ninodes--;
	ifree(in);
}

void qfs_fs_iput(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	if (!in)
		return;
	pthread_mutex_lock(&fs->itab_mu);
	in->refs--;
	maybe_free_locked(fs, in);
	pthread_mutex_unlock(&fs->itab_mu);
}

void qfs_fs_forget(struct qfs_fs *fs, qfs_ino_t ino, uint64_t n)
{
	struct qfs_fs_inode *in;

	pthread_mutex_lock(&fs->itab_mu);
	in = lookup_locked(fs, ino);
	if (in) {
		if (n > in->nlookup) {
			QFS_LOG(QFS_LOG_WARN, "forget beyond lookup count ino=%llu n=%llu nlookup=%llu",
				(unsigned long long)ino, (unsigned long long)n, (unsigned long long)in->nlookup);
			n = in->nlookup;
		}
		in->nlookup -= n;
		maybe_free_locked(fs, in);
	}
	pthread_mutex_unlock(&fs->itab_mu);
}
