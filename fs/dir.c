/*
 * dir.c - directory handles and readdir.  A handle keeps the entries it has
 * returned, read from the store in pages of DIR_PAGE names in key (= name)
 * order; an offset is an index into that list, so listings stay stable and
 * complete however many getdents calls they take (a 100,000-entry directory
 * is read in pages, never all at once).  ".." is the parent as last seen.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "fs/fs_int.h"

#define DIR_PAGE 1024

struct dirent_rec {
	char *name;
	qfs_ino_t ino;
	qfs_table_t table;        /* table of the entry's inode (its own at the root) */
	uint32_t type;
};

struct dir_handle {
	qfs_ino_t ino;
	qfs_table_t table;
	qfs_ino_t parent;
	struct dirent_rec *ents;  /* entries read so far, in name order */
	size_t n, cap;
	int eof;                  /* no more entries after ents[n-1] */
	pthread_mutex_t mu;       /* readdir calls on one handle may overlap */
	struct dir_handle *prev, *next; /* fs->dirhs; protected by fs->dirh_mu */
};

static void dirh_free(struct dir_handle *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->ents[i].name);
	free(h->ents);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void qfs_fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct dir_handle *h;

	h = calloc(1, sizeof(*h));
	if (!h)
		return qfs_fs_fail(req, FOP_OPENDIR, t0, -ENOMEM, "dir handle");
	h->ino = ino;
	pthread_mutex_init(&h->mu, NULL);
	if (!qfs_fs_is_ctl(ino)) {
		struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
		if (!in) {
			free(h);
			return qfs_fs_fail(req, FOP_OPENDIR, t0, -ESTALE, "unknown ino=%lu", ino);
		}
		h->table = in->table;
		pthread_mutex_lock(&fs->itab_mu);
		h->parent = in->parent ? in->parent : FUSE_ROOT_ID;
		pthread_mutex_unlock(&fs->itab_mu);
		qfs_fs_iput(fs, in);
		/* a listing reads the store: the directory's pending creates first */
		int rc = qfs_fs_pend_flush_dir(fs, ino);
		if (rc) {
			pthread_mutex_destroy(&h->mu);
			free(h);
			return qfs_fs_fail(req, FOP_OPENDIR, t0, rc, "pending creates of ino=%lu", ino);
		}
	}
	pthread_mutex_lock(&fs->dirh_mu);
	h->next = fs->dirhs;
	if (h->next)
		h->next->prev = h;
	fs->dirhs = h;
	pthread_mutex_unlock(&fs->dirh_mu);
	fi->fh = (uintptr_t)h;
	if (!qfs_fs_is_ctl(ino) && fs->timeout > 0) {
		/* the kernel may keep the listing (FOPEN_CACHE_DIR): every
		 * change of a directory passes through it and invalidates it */
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	qfs_fs_done(req, FOP_OPENDIR, t0, 0);
	fuse_reply_open(req, fi);
}

static int dir_add(struct dir_handle *h, const char *name, size_t len, qfs_ino_t ino, qfs_table_t table,
		   uint32_t type)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct dirent_rec *ne = realloc(h->ents, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		h->ents = ne;
		h->cap = cap;
	}
	char *s = malloc(len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, name, len);
	s[len] = '\0';
	h->ents[h->n].name = s;
	h->ents[h->n].ino = ino;
	h->ents[h->n].table = table;
	h->ents[h->n].type = type;
	h->n++;
	return 0;
}

struct page_ctx {
	struct dir_handle *h;
	size_t got;
	int err;
};

static int page_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct page_ctx *c = arg;
	struct qfs_key key;
	struct qfs_dentry d;
	int rc = qfs_key_parse(k, kl, &key);

	if (rc == 0)
		rc = qfs_dentry_decode(v, vl, &d);
	if (rc == 0)
		rc = dir_add(c->h, (const char *)key.name, key.name_len, d.ino, c->h->table, d.type);
	if (rc) {
		c->err = rc;
		return 1;
	}
	return ++c->got >= DIR_PAGE;
}

static int table_page_cb(const struct qfs_table *t, void *arg)
{
	struct page_ctx *c = arg;
	int rc = dir_add(c->h, t->name, strlen(t->name), t->ino, t->id, S_IFDIR);

	if (rc) {
		c->err = rc;
		return 1;
	}
	return ++c->got >= DIR_PAGE;
}

/* Read the next page of entries after the last one held. */
static int dir_load_page(struct qfs_fs *fs, struct dir_handle *h)
{
	struct page_ctx c = { h, 0, 0 };
	const char *after = h->n ? h->ents[h->n - 1].name : "";
	int rc;

	if (h->ino == FUSE_ROOT_ID) {
		rc = qfs_router_table_list(fs->r, after, table_page_cb, &c);
	} else {
		uint8_t lo[QFS_KEY_MAX + 1], hi[QFS_KEY_MAX];
		size_t lol, hil;
		qfs_key_dentry_range(lo, &lol, hi, &hil, h->ino);
		if (h->n) {
			lol = qfs_key_dentry(lo, h->ino, after, strlen(after));
			lo[lol++] = 0; /* first key after the last name held */
		}
		rc = qfs_router_scan(fs->r, h->table, lo, lol, hi, hil, page_cb, &c);
	}
	if (c.err)
		return c.err;
	if (rc < 0)
		return rc;
	if (c.got < DIR_PAGE)
		h->eof = 1;
	return 0;
}

/* Add entry (name, st) at offset next to buf for readdirplus: with its
 * attributes and one kernel lookup counted when they can be read (ino 0
 * when not: the kernel then links nothing and counts nothing).  Returns
 * the bytes it takes; nothing is added or counted if they exceed room. */
static size_t add_plus(struct qfs_fs *fs, fuse_req_t req, char *buf, size_t room, const char *name,
		       const struct stat *st, const struct dirent_rec *r, qfs_ino_t dir, off_t next)
{
	struct fuse_entry_param e;
	struct qfs_attr a;
	size_t need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);

	memset(&e, 0, sizeof(e));
	e.attr = *st;
	if (need > room)
		return need;
	if (r) {
		struct qfs_fs_inode *in = qfs_fs_iget(fs, r->ino, r->table, r->type, 0);
		if (in && qfs_fs_inode_attr_x(fs, in, &a) == 0 && a.ino == r->ino) {
			qfs_fs_fill_entry(fs, &e, &a);
			pthread_mutex_lock(&fs->itab_mu);
			in->nlookup++; /* the kernel holds it now: add_direntry_plus cannot fail after need fits */
			if (S_ISDIR(a.mode))
				in->parent = dir;
			pthread_mutex_unlock(&fs->itab_mu);
		}
		if (in)
			qfs_fs_iput(fs, in);
	}
	return fuse_add_direntry_plus(req, buf, room, name, &e, next);
}

static void dir_fill(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, int plus)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	qfs_fs_tl_table = h ? h->table : 0; /* this reply's table (avail.c) */
	char *buf;
	size_t pos = 0;
	int rc = 0;

	buf = malloc(size);
	if (!buf)
		return qfs_fs_fail(req, FOP_READDIR, t0, -ENOMEM, "readdir buffer");
	if (qfs_fs_is_ctl(ino)) {
		pos = qfs_fs_ctl_readdir(req, buf, size, off, plus);
		qfs_fs_done(req, FOP_READDIR, t0, 0);
		fuse_reply_buf(req, buf, pos);
		free(buf);
		return;
	}
	if (off == 0 && (rc = qfs_fs_pend_flush_dir(fs, ino))) {
		free(buf);
		return qfs_fs_fail(req, FOP_READDIR, t0, rc, "pending creates of ino=%lu", ino);
	}
	pthread_mutex_lock(&h->mu);
	if (off == 0 && h->n) {
		/* rewinddir: start a fresh listing */
		for (size_t i = 0; i < h->n; i++)
			free(h->ents[i].name);
		h->n = 0;
		h->eof = 0;
	}
	for (off_t i = off < 0 ? 0 : off;; i++) {
		struct stat st;
		const char *name;
		const struct dirent_rec *r = NULL;
		memset(&st, 0, sizeof(st));
		if (i == 0) {
			name = ".";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
		} else if (i == 1) {
			name = "..";
			st.st_ino = h->parent ? h->parent : FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
		} else {
			size_t idx = (size_t)(i - 2);
			while (idx >= h->n && !h->eof) {
				rc = dir_load_page(fs, h);
				if (rc)
					break;
			}
			if (rc || idx >= h->n)
				break;
			r = &h->ents[idx];
			name = r->name;
			st.st_ino = r->ino;
			st.st_mode = r->type;
		}
		size_t n = plus ? add_plus(fs, req, buf + pos, size - pos, name, &st, r, ino, i + 1)
				: fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
		if (n > size - pos)
			break;
		pos += n;
	}
	pthread_mutex_unlock(&h->mu);
	if (rc && pos == 0) {
		free(buf);
		return qfs_fs_fail(req, FOP_READDIR, t0, rc, "ino=%lu off=%lld", ino, (long long)off);
	}
	qfs_fs_done(req, FOP_READDIR, t0, 0);
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

void qfs_fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	dir_fill(req, ino, size, off, fi, 0);
}

void qfs_fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	dir_fill(req, ino, size, off, fi, 1);
}

void qfs_fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	qfs_fs_tl_table = h ? h->table : 0; /* this reply's table (avail.c) */

	pthread_mutex_lock(&fs->dirh_mu);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->dirhs = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->dirh_mu);
	dirh_free(h);
	fuse_reply_err(req, 0);
}

void qfs_fs_dir_close_all(struct qfs_fs *fs)
{
	pthread_mutex_lock(&fs->dirh_mu);
	while (fs->dirhs) {
		struct dir_handle *h = fs->dirhs;
		fs->dirhs = h->next;
		dirh_free(h);
	}
	pthread_mutex_unlock(&fs->dirh_mu);
}

void qfs_fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	/* directory changes are durable when their operation returns, but for
	 * the creates still pending in it: store them (as ext4 makes the
	 * names durable) */
	if (!qfs_fs_is_ctl(ino) && (rc = qfs_fs_pend_flush_dir(fs, ino)))
		return qfs_fs_fail(req, FOP_FSYNC, t0, rc, "pending creates of ino=%lu", ino);
	fuse_reply_err(req, 0);
}

