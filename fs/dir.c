/*
 * dir.c - directory handles and readdir.  A listing is in key (= name)
 * order, read from the store in pages of DIR_PAGE names (a 100,000-entry
 * directory is never held at once); a handle holds its current page.  An
 * entry's offset (d_off) is a cookie derived from its name alone (a hash,
 * made unique per directory), recorded in the directory's registry, which
 * lives as long as the inode: any handle of the directory resumes at any
 * offset, including ones the kernel took from its cached listing
 * (FOPEN_CACHE_DIR) that another handle produced, and the offset of an entry
 * deleted since resumes at the next name after it.  So an entry neither
 * added nor removed since opendir is returned exactly once however many
 * getdents calls, unlinks and seekdirs come in between.  Offsets 1 and 2
 * follow "." and ".." (the parent as last seen).  Design: doc/fs.md
 * ("readdir offsets").
 * When the kernel opens directories itself (fs->no_opendir: opendir answers
 * ENOSYS, so a warm walk asks the daemon nothing), readdir comes with no
 * handle (fh 0) and uses the directory inode's own one (in->dsh), made at
 * its first listing; its page is dropped at the end of each listing, and
 * read again when entries changed since it was read (in->dgen).
 * Locks: a handle's mu before its directory's registry mu (dircookies.mu);
 * opendir and the first handle-less readdir take the inode's mu alone, to
 * set in->dck and in->dsh once.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "common/clock.h"
#include "common/log.h"
#include "fs/fs_int.h"

#define DIR_PAGE 1024
#define COOKIE_FIRST 3            /* 1, 2: after ".", ".."; entries from 3 */
#define COOKIE_MAX INT64_MAX      /* d_off is a signed 64-bit offset */

struct dirent_rec {
	char *name;
	qfs_ino_t ino;
	qfs_table_t table;        /* table of the entry's inode (its own at the root) */
	uint32_t type;
	uint64_t cookie;          /* its d_off: resumes after it */
};

struct ck_slot {
	uint64_t cookie;          /* 0: empty */
	char *name;
};

/* Every offset handed out for one directory, name by cookie: open
 * addressing, at most half full.  Names stay when deleted (the kernel may
 * still resume after them). */
struct qfs_fs_dircookies {
	pthread_mutex_t mu;       /* protects the fields below */
	struct ck_slot *slots;
	size_t cap;               /* slots, a power of 2 */
	size_t n;                 /* used slots */
};

struct dir_handle {
	qfs_ino_t ino;
	qfs_table_t table;
	qfs_ino_t parent;
	struct qfs_fs_inode *in;  /* pinned; NULL for the control tree */
	struct qfs_fs_dircookies *ck; /* in->dck */
	struct dirent_rec *ents;  /* current page, in name order */
	size_t n, cap;
	int first;                /* the page starts at the directory's first entry */
	int eof;                  /* no more entries after ents[n-1] */
	size_t hint;              /* index the last reply resumed at or stopped before */
	uint64_t before;          /* cookie of the entry just before ents[0] (0: none) */
	uint64_t gen;             /* in->dsh: the page's entries are those of the store
				     when in->dgen + fs->dgen_all was this */
	pthread_mutex_t mu;       /* readdir calls on one handle may overlap */
	struct dir_handle *prev, *next; /* fs->dirhs; protected by fs->dirh_mu */
};

static struct qfs_fs_dircookies *ck_new(void)
{
	struct qfs_fs_dircookies *ck = calloc(1, sizeof(*ck));

	if (!ck)
		return NULL;
	ck->cap = 256;
	ck->slots = calloc(ck->cap, sizeof(*ck->slots));
	if (!ck->slots) {
		free(ck);
		return NULL;
	}
	pthread_mutex_init(&ck->mu, NULL);
	return ck;
}

void qfs_fs_dir_cookies_free(struct qfs_fs_dircookies *ck)
{
	if (!ck)
		return;
	for (size_t i = 0; i < ck->cap; i++)
		free(ck->slots[i].name);
	free(ck->slots);
	pthread_mutex_destroy(&ck->mu);
	free(ck);
}

/* Slot of cookie c, or the empty slot where it would go; ck->mu held. */
static struct ck_slot *ck_slot(struct ck_slot *slots, size_t cap, uint64_t c)
{
	size_t i = (size_t)(c ^ (c >> 29)) & (cap - 1);

	while (slots[i].cookie && slots[i].cookie != c)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int ck_grow(struct qfs_fs_dircookies *ck)
{
	size_t cap = ck->cap * 2;
	struct ck_slot *ns = calloc(cap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < ck->cap; i++)
		if (ck->slots[i].cookie)
			*ck_slot(ns, cap, ck->slots[i].cookie) = ck->slots[i];
	free(ck->slots);
	ck->slots = ns;
	ck->cap = cap;
	return 0;
}

/* The cookie of name in this directory: its hash, or the next free value
 * after it if another name holds that (recorded: always the same one);
 * ck->mu held.  Returns 0 when out of memory. */
static uint64_t ck_issue(struct qfs_fs_dircookies *ck, const char *name, size_t len)
{
	uint64_t c = XXH3_64bits(name, len) & COOKIE_MAX;

	if (c < COOKIE_FIRST)
		c += COOKIE_FIRST;
	for (;;) {
		struct ck_slot *s = ck_slot(ck->slots, ck->cap, c);
		if (!s->cookie)
			break;
		if (strlen(s->name) == len && memcmp(s->name, name, len) == 0)
			return c;
		c = c == COOKIE_MAX ? COOKIE_FIRST : c + 1; /* another name's: collision */
	}
	if ((ck->n + 1) * 2 > ck->cap && ck_grow(ck))
		return 0;
	struct ck_slot *s = ck_slot(ck->slots, ck->cap, c);
	s->name = strndup(name, len);
	if (!s->name)
		return 0;
	s->cookie = c;
	ck->n++;
	return c;
}

static void page_clear(struct dir_handle *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->ents[i].name);
	h->n = 0;
	h->eof = 0;
	h->first = 0;
	h->hint = 0;
	h->before = 0;
}

static void dirh_free(struct dir_handle *h)
{
	page_clear(h);
	free(h->ents);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void qfs_fs_dir_shared_free(struct dir_handle *h)
{
	if (h)
		dirh_free(h);
}

/* The inode's handle for readdirs without opendir (in->dsh), made at the
 * first; with in's reference held by the caller.  NULL when out of memory. */
static struct dir_handle *dir_shared(struct qfs_fs_inode *in)
{
	struct dir_handle *h;

	qfs_fs_ilock(in);
	if (!in->dck)
		in->dck = ck_new();
	if (!in->dsh && in->dck && (in->dsh = calloc(1, sizeof(*in->dsh)))) {
		in->dsh->ino = in->ino;
		in->dsh->table = in->table;
		in->dsh->ck = in->dck;
		pthread_mutex_init(&in->dsh->mu, NULL);
	}
	h = in->dsh;
	pthread_mutex_unlock(&in->mu);
	return h;
}

void qfs_fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct dir_handle *h;

	if (fs->no_opendir) {
		/* the kernel opens the directory itself, FOPEN_CACHE_DIR and
		 * KEEP_CACHE set, and sends no releasedir; its readdirs use
		 * the inode's handle (dir_fill), the first of a listing stores
		 * the pending creates */
		qfs_fs_done(req, FOP_OPENDIR, t0, 0);
		fuse_reply_err(req, ENOSYS);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return qfs_fs_fail(req, FOP_OPENDIR, t0, -ENOMEM, "dir handle");
	h->ino = ino;
	pthread_mutex_init(&h->mu, NULL);
	if (!qfs_fs_is_ctl(ino)) {
		struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
		int rc;
		if (!in) {
			pthread_mutex_destroy(&h->mu);
			free(h);
			return qfs_fs_fail(req, FOP_OPENDIR, t0, -ESTALE, "unknown ino=%lu", ino);
		}
		h->in = in; /* its reference is the handle's: released by releasedir */
		h->table = in->table;
		pthread_mutex_lock(&fs->itab_mu);
		h->parent = in->parent ? in->parent : FUSE_ROOT_ID;
		pthread_mutex_unlock(&fs->itab_mu);
		qfs_fs_ilock(in);
		if (!in->dck)
			in->dck = ck_new();
		h->ck = in->dck;
		pthread_mutex_unlock(&in->mu);
		/* a listing reads the store: the directory's pending creates first
		 * (but for those a full disk refuses); not its own attributes */
		rc = h->ck ? qfs_fs_pend_flush_spare(fs, ino, NULL) : -ENOMEM;
		if (rc) {
			qfs_fs_iput(fs, in);
			pthread_mutex_destroy(&h->mu);
			free(h);
			return qfs_fs_fail(req, FOP_OPENDIR, t0, rc, "%s of ino=%lu",
					   rc == -ENOMEM ? "offset registry" : "pending creates", ino);
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
		 * change of a directory passes through it and invalidates it;
		 * its offsets resume on any handle (the registry) */
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
	h->ents[h->n].cookie = 0;
	h->n++;
	return 0;
}

struct page_ctx {
	struct dir_handle *h;
	size_t got;
	int err;
};

static int page_cb(const struct qfs_router_key *k, const void *v, size_t vl, void *arg)
{
	struct page_ctx *c = arg;
	struct qfs_dentry d;
	int rc = qfs_dentry_decode(v, vl, &d);

	if (rc == 0)
		rc = dir_add(c->h, k->name, k->name_len, d.ino, c->h->table, d.type);
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

/* Replace the page by the next DIR_PAGE entries after name (NULL: from the
 * first; else its cookie is before), each with its cookie. */
static int dir_load_page(struct qfs_fs *fs, struct dir_handle *h, const char *name, uint64_t before)
{
	struct page_ctx c = { h, 0, 0 };
	char *after = name ? strdup(name) : NULL; /* name may be in the page */
	int rc;

	if (name && !after)
		return -ENOMEM;
	page_clear(h);
	h->first = !name;
	if (h->ino == FUSE_ROOT_ID) {
		rc = qfs_router_table_list(fs->r, after ? after : "", table_page_cb, &c);
	} else {
		struct qfs_router_range rg = qfs_router_range_dentries(h->ino, after, after ? strlen(after) : 0);
		rc = qfs_router_item_scan(fs->r, h->table, &rg, page_cb, &c);
	}
	free(after);
	if (!c.err && rc >= 0) {
		pthread_mutex_lock(&h->ck->mu);
		for (size_t i = 0; i < h->n && !c.err; i++)
			if (!(h->ents[i].cookie = ck_issue(h->ck, h->ents[i].name, strlen(h->ents[i].name))))
				c.err = -ENOMEM;
		pthread_mutex_unlock(&h->ck->mu);
	}
	if (c.err || rc < 0) {
		page_clear(h);
		return c.err ? c.err : rc;
	}
	if (c.got < DIR_PAGE)
		h->eof = 1;
	h->before = before;
	return 0;
}

/* Point the handle at the entry that follows offset off (an entry's cookie):
 * in the page when it holds that entry, else a page read after its name
 * (the registry's), else (an offset of before the inode was last loaded)
 * the page after the current name of that cookie.  Sets *idx.  -EINVAL for
 * an offset of no name handed out since and of no current name. */
static int dir_seek(struct qfs_fs *fs, struct dir_handle *h, uint64_t off, size_t *idx)
{
	char *name = NULL;
	int rc;

	if (h->hint > 0 && h->hint <= h->n && h->ents[h->hint - 1].cookie == off) {
		*idx = h->hint;
		return 0;
	}
	if (h->before == off) { /* the reply that crossed into this page stopped there */
		*idx = 0;
		return 0;
	}
	for (size_t i = 0; i < h->n; i++)
		if (h->ents[i].cookie == off) {
			*idx = i + 1;
			return 0;
		}
	pthread_mutex_lock(&h->ck->mu);
	struct ck_slot *s = ck_slot(h->ck->slots, h->ck->cap, off);
	if (s->cookie)
		name = strdup(s->name);
	rc = s->cookie && !name ? -ENOMEM : 0;
	pthread_mutex_unlock(&h->ck->mu);
	if (rc)
		return rc;
	if (!name) {
		/* not handed out since this inode was loaded (the kernel forgot
		 * the directory, e.g. drop_caches, and a caller kept an offset):
		 * the cookie of a name still there is found among the names */
		for (rc = dir_load_page(fs, h, NULL, 0); rc == 0;) {
			for (size_t i = 0; i < h->n; i++)
				if (h->ents[i].cookie == off) {
					*idx = i + 1;
					return 0;
				}
			if (h->eof || h->n == 0)
				break;
			rc = dir_load_page(fs, h, h->ents[h->n - 1].name, h->ents[h->n - 1].cookie);
		}
		if (rc)
			return rc;
		QFS_LOG(QFS_LOG_WARN, "readdir offset unknown ino=%llu off=%llu err=EINVAL",
			(unsigned long long)h->ino, (unsigned long long)off);
		return -EINVAL;
	}
	rc = dir_load_page(fs, h, name, off);
	free(name);
	*idx = 0;
	return rc;
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
		bool known = false;
		if (in && fs->timeout > 0) {
			/* the kernel holds this inode (a lookup or an earlier
			 * listing gave it, with attributes it keeps up to date:
			 * every change passes through it): no store read, an
			 * entry with ino 0 leaves its dentry and attributes as
			 * they are (rm -rf lists each directory twice) */
			pthread_mutex_lock(&fs->itab_mu);
			known = in->nlookup > 0;
			if (known && S_ISDIR(r->type))
				in->parent = dir;
			pthread_mutex_unlock(&fs->itab_mu);
			if (known && dir != FUSE_ROOT_ID)
				qfs_fs_hint_put(fs, dir, name, r->ino, r->type);
		}
		if (!known && in && qfs_fs_inode_attr_x(fs, in, &a) == 0 && a.ino == r->ino) {
			qfs_fs_fill_entry(fs, &e, &a);
			pthread_mutex_lock(&fs->itab_mu);
			in->nlookup++; /* the kernel holds it now: add_direntry_plus cannot fail after need fits */
			if (S_ISDIR(a.mode))
				in->parent = dir;
			pthread_mutex_unlock(&fs->itab_mu);
			if (dir != FUSE_ROOT_ID)
				qfs_fs_hint_put(fs, dir, name, r->ino, r->type);
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
	struct qfs_fs_inode *in = NULL; /* referenced while its own handle is used */
	char *buf;
	size_t pos = 0;
	int rc = 0;

	if (!h && !qfs_fs_is_ctl(ino)) {
		in = qfs_fs_get_inode(fs, ino);
		if (!in)
			return qfs_fs_fail(req, FOP_READDIR, t0, -ESTALE, "unknown ino=%lu", ino);
		if (!(h = dir_shared(in))) {
			qfs_fs_iput(fs, in);
			return qfs_fs_fail(req, FOP_READDIR, t0, -ENOMEM, "dir handle of ino=%lu", ino);
		}
	}
	qfs_fs_tl_table = h ? h->table : 0; /* this reply's table (avail.c) */
	buf = malloc(size);
	if (!buf) {
		if (in)
			qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_READDIR, t0, -ENOMEM, "readdir buffer");
	}
	if (qfs_fs_is_ctl(ino)) {
		pos = qfs_fs_ctl_readdir(req, buf, size, off, plus);
		qfs_fs_done(req, FOP_READDIR, t0, 0);
		fuse_reply_buf(req, buf, pos);
		free(buf);
		return;
	}
	if (off == 0 && (rc = qfs_fs_pend_flush_spare(fs, ino, NULL))) {
		free(buf);
		if (in)
			qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_READDIR, t0, rc, "pending creates of ino=%lu", ino);
	}
	pthread_mutex_lock(&h->mu);
	if (in) { /* ".." as the inode last saw it */
		pthread_mutex_lock(&fs->itab_mu);
		h->parent = in->parent ? in->parent : FUSE_ROOT_ID;
		uint64_t gen = in->dgen + fs->dgen_all; /* read before any page below */
		pthread_mutex_unlock(&fs->itab_mu);
		/* a page another listing read before entries changed: a new
		 * open resuming at an offset (it sends no opendir) must not
		 * see it; dir_seek reads again after the offset's name */
		if (h->gen != gen) {
			page_clear(h);
			h->gen = gen;
		}
	}
	size_t idx = 0;
	off_t i = off < 0 ? 0 : off; /* 0: ".", 1: "..", 2: the entries */
	if (i >= COOKIE_FIRST)
		rc = dir_seek(fs, h, (uint64_t)i, &idx);
	else if (i == 0 || !h->first)
		rc = dir_load_page(fs, h, NULL, 0); /* opendir, rewinddir: a fresh listing */
	while (rc == 0) {
		struct stat st;
		const char *name;
		const struct dirent_rec *r = NULL;
		off_t next;
		memset(&st, 0, sizeof(st));
		if (i == 0) {
			name = ".";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
			next = 1;
		} else if (i == 1) {
			name = "..";
			st.st_ino = h->parent ? h->parent : FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
			next = 2;
		} else {
			if (idx == h->n) {
				if (h->eof || h->n == 0)
					break;
				rc = dir_load_page(fs, h, h->ents[h->n - 1].name, h->ents[h->n - 1].cookie);
				idx = 0;
				if (rc || h->n == 0)
					break;
			}
			r = &h->ents[idx];
			name = r->name;
			st.st_ino = r->ino;
			st.st_mode = r->type;
			next = (off_t)r->cookie;
		}
		size_t n = plus ? add_plus(fs, req, buf + pos, size - pos, name, &st, r, ino, next)
				: fuse_add_direntry(req, buf + pos, size - pos, name, &st, next);
		if (n > size - pos)
			break;
		pos += n;
		if (i < 2)
			i++;
		else
			idx++;
	}
	h->hint = idx;
	if (in && rc == 0 && pos == 0) {
		/* the end of a listing (the kernel reads up to an empty reply):
		 * the inode's handle keeps no page while no listing runs */
		page_clear(h);
		free(h->ents);
		h->ents = NULL;
		h->cap = 0;
	}
	pthread_mutex_unlock(&h->mu);
	if (in)
		qfs_fs_iput(fs, in);
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

	if (!h) { /* not ours: a directory the kernel opened itself (fs->no_opendir) */
		fuse_reply_err(req, 0);
		return;
	}
	pthread_mutex_lock(&fs->dirh_mu);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->dirhs = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->dirh_mu);
	qfs_fs_iput(fs, h->in);
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

