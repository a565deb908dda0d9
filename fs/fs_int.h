/*
 * fs_int.h - internals of the FUSE frontend shared by the fs/ sources.
 *
 * Inode table (inode.c): every inode the kernel knows is an entry keyed by
 * its number (the FUSE nodeid is our inode number).  nlookup follows the
 * kernel's lookup count exactly: +1 per reply that hands out an entry,
 * -n per forget; the entry is freed when nlookup and refs are both 0.
 * refs counts our own temporary references (an operation in flight, an open
 * handle), so forget never frees an inode under a running handler.
 *
 * Lock order: fs->itab_mu (the table) may be taken while holding no inode
 * lock or while holding one; inode locks (in->mu) are taken in increasing
 * inode number when an operation needs two.  fs->pend_mu (pending creates,
 * pend.c) comes after an inode's mu and before itab_mu.  No lock is held across
 * qfs_router_* calls except an inode's own mu around its data flush (which
 * is what serialises writers of one file).  A write-back behind a write
 * (data.c) runs its txn holding no lock; the inode's other users wait for
 * it on wb_cv (qfs_fs_ilock), which needs nothing but that inode's mu, so
 * the wait may be entered holding a lower inode's mu.
 */
#ifndef QFS_FS_FS_INT_H
#define QFS_FS_FS_INT_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/item.h"
#include "common/txn.h"
#include "fs/fs.h"
#include "router/avail.h"
#include "router/metrics.h"
#include "router/router.h"

#define QFS_FS_DIRTY_MAX (8u << 20)    /* flush a file's buffered writes past this */
#define QFS_FS_TIMEOUT_DEFAULT 3600.0  /* kernel attr/entry cache, seconds (-o cache_timeout) */
#define QFS_FS_DIRTY_TOTAL_MAX (32u << 20) /* and past this for all files together */
#define QFS_FS_ROOT_WAIT_MS 500       /* root getattr: wait this long for a quorum, then answer
					  the last known attributes */
#define QFS_FS_FILE_MAX (1ull << 44)   /* largest file size: 16 TiB (EFBIG beyond) */
#define QFS_FS_DIR_SIZE 4096          /* st_size of every directory (doc/fs.md) */
#define QFS_FS_INODES_FREE (1ull << 32) /* statfs f_ffree: no real limit (64-bit inos) */
#define QFS_FS_ORPHAN_DIR 0            /* pk of the orphan list: open files with no name left */
#define QFS_FS_LINK_MAX 65000u         /* most hard links of one inode (EMLINK beyond), as ext4 */
#define QFS_FS_DATTR_MS 1000u          /* a directory's attribute changes (chmod, chown, utimens)
					  are written back at most this long after the first one
					  (pend.c, doc/fs.md "Write-back of a directory's attributes") */

/* One buffered chunk of a regular file: the whole chunk's bytes, and which
 * of them differ from the stored chunk (data.c: the write-back sends only
 * those, as a PATCH op, when they are few). */
struct qfs_dchunk {
	uint64_t no;                 /* chunk number */
	uint8_t *data;               /* QFS_CHUNK_SIZE bytes */
	uint32_t dlo, dhi;           /* bytes [dlo, dhi) of data written since it was
					loaded (dlo >= dhi: none); outside them data
					equals the stored chunk unless whole */
	bool whole;                  /* changed outside [dlo, dhi) too (a truncate
					zeroed its tail): write it back whole */
	bool partial;                /* only [dlo, dhi) of data is meaningful: the
					stored bytes were never read (data.c
					chunk_fill reads them when needed) */
	struct qfs_dchunk *next;     /* list; protected by the inode's mu */
};

/* A regular file created and not yet stored (pend.c): the items its first
 * write-back puts, made at create.  Immutable while on the pending list. */
struct qfs_fs_pend {
	qfs_ino_t parent;
	char name[QFS_NAME_MAX + 1];
	struct qfs_buf ib, db;       /* encoded inode (as created) and dentry items */
	struct qfs_ts created;       /* the parent's new mtime and ctime */
	bool has_acl;                /* the inode inherited an access ACL */
	qfs_ino_t ino;               /* the new inode's number */
};

struct qfs_fs_dircookies;
struct dir_handle;

#define QFS_FS_HINTS 16384u /* name hints kept (inode.c), a power of 2; 24 bytes each */

/* One name hint (inode.c): a (parent, name) hash and what it named. */
struct qfs_fs_hint {
	uint64_t h;                  /* hash of (parent, name); 0: empty */
	qfs_ino_t ino;
	uint32_t type;               /* S_IFMT bits */
};

struct qfs_fs_inode {
	qfs_ino_t ino;
	qfs_table_t table;           /* table of the inode item (QFS_META_TABLE for the root) */
	uint32_t type;               /* S_IFMT bits */
	qfs_ino_t parent;            /* directories: parent as last seen (for ".."); itab_mu */
	uint64_t nlookup;            /* kernel references; protected by fs->itab_mu */
	uint64_t refs;               /* our references; protected by fs->itab_mu */
	struct qfs_fs_inode *hnext;  /* hash chain; protected by fs->itab_mu */

	pthread_mutex_t mu;          /* protects everything below */
	uint32_t nopen;              /* open file handles */
	bool unlinked;               /* last name removed while open: delete at last close */
	bool loaded;                 /* attr below is authoritative (file has buffered state) */
	struct qfs_attr attr;        /* valid when loaded */
	uint32_t attr_dirty;         /* QFS_SET_* fields changed in memory, not yet stored */
	uint64_t stored_size;        /* size in the store when loaded */
	uint64_t valid_size;         /* stored bytes below this are still file data (truncates) */
	uint32_t stored_flags;       /* flags in the store when loaded */
	struct qfs_dchunk *chunks;   /* buffered chunks */
	uint64_t dirty_bytes;        /* bytes of buffered chunks */
	int wb_err;                  /* last write-back failure; buffers kept for a retry */
	bool nosec;                  /* known: no security.* xattr stored (getxattr answers
					ENODATA without reading the inode) */
	bool noxattr;                /* known: no xattr stored at all (getxattr answers
					ENODATA without reading the inode) */
	uint32_t xgen;               /* bumped by every xattr change; guards setting nosec
					and noxattr */
	bool blocks_est;             /* a reply gave the kernel an estimate of st_blocks
					(qfs_fs_blocks); mu */
	bool acl_drop;               /* write-back removes the access ACL (a deferred
					ACL-equivalent chmod replaced it) */
	struct qfs_fs_pend *pend;    /* created, not stored yet: its first write-back
					stores it (pend.c); implies loaded */
	bool wb_busy;                /* a write-back behind is in flight without mu
					(data.c "Write-back behind"): only a write at
					or past wb_from may change the state below
					meanwhile; everyone else waits (qfs_fs_ilock) */
	uint64_t wb_from;            /* with wb_busy: the first byte no chunk of the
					write-back covers, chunk-aligned */
	pthread_cond_t wb_cv;        /* broadcast (with mu) when wb_busy clears */
	struct qfs_fs_inode *pnext;  /* pending list; protected by fs->pend_mu */
	bool dattr;                  /* on fs's list of directories with pending attribute
					changes (pend.c); this and the two below: fs->dattr_mu */
	uint64_t dattr_due_ms;       /* monotonic ms by which the timer writes them back */
	struct qfs_fs_inode *dnext;  /* that list */
	struct qfs_fs_inode *dtnext; /* entries taken off it to write back: the timer
					thread's own (or the unmount's) list */
	struct qfs_fs_dircookies *dck; /* directories: readdir offsets handed out (dir.c);
					set once by opendir under mu, freed with the inode */
	struct dir_handle *dsh;      /* directories: the handle of the readdirs that come
					without an opendir (fs->no_opendir; dir.c); set
					once under mu, freed with the inode */
	uint64_t dgen;               /* directories: entry changes stored in it, counted
					after each (qfs_fs_dir_changed); a page of dsh
					read before the last one is read again; itab_mu */
	/* Directories with no buffered state: their stored attributes, kept
	 * exact by every txn of fs/ (ops.c "directory attribute cache");
	 * this and the three below: fs->dac_mu */
	struct qfs_attr dac_attr;
	bool dac_ok;                 /* dac_attr equals the stored inode's attributes */
	bool dac_nodef;              /* and, with dac_ok, the stored inode has no default
					ACL (filled from a whole inode read: build_node
					answers from the copy) */
	bool dac_spoiled;            /* txns on it overlapped: their order is unknown */
	uint32_t dac_busy;           /* txns that touch its inode, in flight */
	uint64_t dac_gen;            /* bumped at the start and at the end of each */
};

enum qfs_fs_op {
	FOP_LOOKUP, FOP_GETATTR, FOP_SETATTR, FOP_READLINK, FOP_MKNOD, FOP_MKDIR, FOP_UNLINK,
	FOP_RMDIR, FOP_SYMLINK, FOP_RENAME, FOP_LINK, FOP_OPEN, FOP_READ, FOP_WRITE, FOP_FLUSH,
	FOP_RELEASE, FOP_FSYNC, FOP_OPENDIR, FOP_READDIR, FOP_STATFS, FOP_SETXATTR, FOP_GETXATTR,
	FOP_LISTXATTR, FOP_REMOVEXATTR, FOP_CREATE, FOP_FALLOCATE, FOP_NOPS
};

struct qfs_fs {
	struct qfs_router *r;
	const struct qfs_fs_opts *o;
	double timeout;               /* kernel entry/attr/negative-entry cache, seconds */
	bool no_opendir;              /* opendir answers ENOSYS: the kernel opens and
					 releases directories itself, every listing
					 cacheable; set by op_init before any other
					 request (doc/fs.md "Kernel caches") */
	struct fuse_session *se;      /* set once mounted; for cache invalidation */
	/* The mount's read-ahead window (session.c "the kernel's read-ahead
	 * window"): its bdi ("MAJ:MIN", from mountinfo at mount) and the
	 * window to write there, by the first request after INIT; ra_state
	 * RA_READY until then (atomic), RA_NONE once done or not wanted. */
	char ra_bdi[32];
	uint64_t ra_bytes;
	int ra_state;
	pthread_mutex_t itab_mu;
	struct qfs_fs_inode **itab;   /* hash buckets; protected by itab_mu */
	size_t itab_size;             /* buckets */
	uint64_t ninodes;             /* protected by itab_mu */
	uint64_t dgen_all;            /* entry changes of directories not told apart
					 (qfs_fs_dir_changed); protected by itab_mu */
	uint64_t started_ms;
	struct qfs_ts mounted;        /* wall clock at start: the control tree's times */
	struct qfs_hist ops[FOP_NOPS];
	pthread_mutex_t pend_mu;
	struct qfs_fs_inode *pend_head; /* pending creates (pend.c); protected by pend_mu */
	/* Directories whose attribute changes wait for their write-back (pend.c
	 * "directory attributes"): each entry holds a reference; the timer
	 * thread writes back those due. */
	pthread_mutex_t dattr_mu;
	pthread_cond_t dattr_cv;      /* wakes the timer to stop; with dattr_mu */
	struct qfs_fs_inode *dattr_head; /* protected by dattr_mu */
	bool dattr_stop;              /* protected by dattr_mu */
	bool dattr_running;           /* the timer thread was started */
	pthread_t dattr_thread;
	/* The root's last attributes read, so that the kernel can still walk
	 * to .quorumfs (to start a node again, say) while no quorum answers. */
	pthread_mutex_t root_mu;
	struct qfs_attr root_attr;    /* protected by root_mu */
	int root_attr_ok;             /* protected by root_mu */
	/* Open directory handles (dir.c), so that those the kernel never
	 * released (a signal ended the session) are freed at the end. */
	pthread_mutex_t dirh_mu;
	struct dir_handle *dirhs;     /* list head; protected by dirh_mu */
	struct qfs_fs_avail *avail;   /* client-side availability (avail.c); set
					 before mount, cleared after unmount */
	/* The directory attribute cache (ops.c; the inodes' dac_* fields).
	 * A leaf lock: nothing else is taken while it is held. */
	pthread_mutex_t dac_mu;
	uint32_t dac_gbusy;           /* txns in flight with an inode op on an inode
					 not tracked (not in the inode table, or past
					 the directories a txn tracks); dac_mu */
	uint64_t dac_ggen;            /* bumped at the start and end of each; dac_mu */
	int dac_off;                  /* set (atomically, never cleared) once a txn
					 that touched directories failed: its outcome
					 may be unknown (a timeout may still commit),
					 so no copy is trusted again in this mount */
	/* The last negative lookup (ops.c "negative answer"), so that the
	 * create the kernel sends right after it need not read the dentry
	 * again.  A leaf lock. */
	pthread_mutex_t neg_mu;
	uint32_t txn_busy;            /* txns of qfs_fs_item_txn in flight; neg_mu */
	uint64_t txn_gen;             /* bumped at the start and end of each; neg_mu */
	qfs_ino_t neg_parent;         /* the answer's directory, 0: none; neg_mu */
	uint64_t neg_gen;             /* txn_gen when its read started; neg_mu */
	char neg_name[QFS_NAME_MAX + 1]; /* its name; neg_mu */
	int neg_off;                  /* set (atomically, never cleared) once a txn's
					 outcome is unknown (as dac_off) */
	pthread_mutex_t hint_mu;      /* a leaf lock */
	struct qfs_fs_hint *hints;    /* QFS_FS_HINTS name hints (inode.c); hint_mu */
	uint64_t wb_behind;           /* write-backs run behind a write (data.c), and */
	uint64_t wb_behind_failed;    /* those that failed; relaxed atomics, .quorumfs/stats */
};

/* inode.c */
int qfs_fs_itab_init(struct qfs_fs *fs);
void qfs_fs_itab_close(struct qfs_fs *fs);
/* Find or add ino with +1 ref (and +1 nlookup if kernel != 0).  NULL on ENOMEM. */
struct qfs_fs_inode *qfs_fs_iget(struct qfs_fs *fs, qfs_ino_t ino, qfs_table_t table, uint32_t type,
				 int kernel);
/* Find ino with +1 ref, NULL if the kernel never looked it up. */
struct qfs_fs_inode *qfs_fs_ifind(struct qfs_fs *fs, qfs_ino_t ino);
/* Name hints (inode.c): remember that name in parent names ino (of type's
 * S_IFMT bits), forget it, or get it (0, or -ENOENT: no hint).  A hint may
 * be stale or another name's: only use it where the store checks it (a
 * txn's condition).  Any thread; takes fs->hint_mu, a leaf. */
void qfs_fs_hint_put(struct qfs_fs *fs, qfs_ino_t parent, const char *name, qfs_ino_t ino, uint32_t type);
void qfs_fs_hint_del(struct qfs_fs *fs, qfs_ino_t parent, const char *name);
int qfs_fs_hint_get(struct qfs_fs *fs, qfs_ino_t parent, const char *name, qfs_ino_t *ino, uint32_t *type);
void qfs_fs_iput(struct qfs_fs *fs, struct qfs_fs_inode *in);
void qfs_fs_forget(struct qfs_fs *fs, qfs_ino_t ino, uint64_t n);
void qfs_fs_ipin(struct qfs_fs *fs, struct qfs_fs_inode *in); /* +1 ref */
/* The entries of directory dir changed in the store (just stored; dir 0:
 * of any directory): a readdir page read before is stale (in->dgen). */
void qfs_fs_dir_changed(struct qfs_fs *fs, qfs_ino_t dir);

/* data.c: regular-file data; all called with in->mu held but data_read. */
int qfs_fs_load(struct qfs_fs *fs, struct qfs_fs_inode *in);
/* Lock in->mu for any use of the inode but a write: waits out a write-back
 * behind (data.c "Write-back behind").  Unlock with pthread_mutex_unlock. */
void qfs_fs_ilock(struct qfs_fs_inode *in);
/* A write-back started behind a write (data.c): the caller replies to the
 * write first, then runs it with qfs_fs_wb_run (in->mu not held). */
struct qfs_fs_wb;
/* Buffer a write (in->mu taken with pthread_mutex_lock, not qfs_fs_ilock:
 * a write past the write-back in flight goes on beside it).  When the write
 * fills the file's buffer and behind is not NULL, the write-back it starts
 * is returned in *behind instead of being waited for. */
int qfs_fs_data_write(struct qfs_fs *fs, struct qfs_fs_inode *in, const char *buf, size_t size, off_t off,
		      struct qfs_fs_wb **behind);
void qfs_fs_wb_run(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_fs_wb *w);
/* Read up to size bytes at off into buf (*got: bytes, short only at the end
 * of the file).  Takes in->mu itself, and holds it only when the file has
 * buffered state; a clean file is read from the store without it, so reads
 * of one file run in parallel.  0, -ENOMEM, or the router's read errors. */
int qfs_fs_data_read(struct qfs_fs *fs, struct qfs_fs_inode *in, char *buf, size_t size, off_t off, size_t *got);
/* A read's reply as segments (qfs_fs_data_read_vec): iov[0..n) in order,
 * pointing into the values own[0..nown) (the store's pinned values or
 * malloc'd buffers, released by qfs_fs_rvec_free) or into a static zero
 * chunk. */
struct qfs_fs_rvec {
	struct iovec *iov;
	int n;
	struct qfs_val *own;    /* empty where nothing is held */
	int nown;
};
/* As qfs_fs_data_read, the bytes as segments for fuse_reply_iov: a clean
 * chunked file's chunks are the store's values themselves (RocksDB's
 * pinned slices: no copy into a malloc'd value nor into a reply buffer), holes and trimmed tails the zero chunk; a clean inline
 * file's bytes, or a file with buffered state, one flat buffer.  n == 0:
 * nothing (at or past the end).  On success the caller frees v with
 * qfs_fs_rvec_free after the reply; on failure v holds nothing.  0,
 * -ENOMEM or the router's read errors.  Same locking as qfs_fs_data_read. */
int qfs_fs_data_read_vec(struct qfs_fs *fs, struct qfs_fs_inode *in, size_t size, off_t off,
			 struct qfs_fs_rvec *v);
/* Free what v owns and reset it; v may be empty.  Any thread. */
void qfs_fs_rvec_free(struct qfs_fs_rvec *v);
int qfs_fs_data_truncate(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t size);
/* fallocate of [off, off + len) (checked by the caller: off >= 0, len > 0,
 * off + len <= QFS_FS_FILE_MAX) on a regular file.  Buffered writes are
 * written back first (their failure is returned and changes nothing
 * else); then the change is one txn, durable when this returns:
 *   punch != 0: the bytes of the range below the size read as zeros from
 *     now on: chunk items wholly inside are deleted, partial ones rewritten
 *     (deleted if all zeros), inline data zeroed.  A range at or past the
 *     end of the file changes no byte.
 *   punch == 0: nothing is reserved (there is no preallocation); unless
 *     keep_size, a range past the end grows the size.
 * Either way mtime and ctime move (to the same time), in the same txn as
 * the change, as ext4 does for every fallocate that succeeds; not atime.
 * On failure the file is as before.  0, -ENOMEM, or the errors of the
 * router (-ETIMEDOUT, -ENOSPC, -EIO...). */
int qfs_fs_data_fallocate(struct qfs_fs *fs, struct qfs_fs_inode *in, int punch, int keep_size, uint64_t off,
			  uint64_t len);
/* fallocate ZERO_RANGE of [off, off + len) (checked as above): buffered
 * writes are written back first; then the bytes of the range below the
 * size read as zeros (as a punch: one txn), and unless keep_size a range
 * past the end also grows the size to off + len (one txn: the file cut at
 * off, then grown).  Nothing is reserved.  mtime, ctime in the same txn,
 * also for a range that changes no byte (as ext4).  Durable when
 * this returns; on failure the file is as before.  Errors as above. */
int qfs_fs_data_zero_range(struct qfs_fs *fs, struct qfs_fs_inode *in, int keep_size, uint64_t off, uint64_t len);
/* st_blocks of in's attributes for a reply to the kernel (in->mu held): as
 * stored when clean; with buffered state the stored count plus what is
 * buffered, at most the size rounded up, an estimate (zeros are stored as
 * holes): then in->blocks_est is set, and the write-back that stores the
 * buffers has the kernel forget the attributes it cached. */
uint64_t qfs_fs_blocks(struct qfs_fs_inode *in);
/* Write buffered state back as one txn.  On failure the buffered state is
 * kept (and in->wb_err set) so that a later call can retry it. */
int qfs_fs_flush_locked(struct qfs_fs *fs, struct qfs_fs_inode *in);
/* Give up on buffered state after a failed write-back (last close): drop it,
 * log it, and invalidate the kernel's cached pages of the file. */
void qfs_fs_discard(struct qfs_fs *fs, struct qfs_fs_inode *in);
void qfs_fs_drop_buffers(struct qfs_fs_inode *in);
/* Delete an inode item and its chunks (last link gone, not open). */
int qfs_fs_destroy_inode(struct qfs_fs *fs, qfs_table_t table, qfs_ino_t ino);

/* pend.c: pending creates (doc/fs.md "One round per file"). */
/* The pending file (parent, name) with a reference (qfs_fs_iput), or NULL. */
struct qfs_fs_inode *qfs_fs_pend_find(struct qfs_fs *fs, qfs_ino_t parent, const char *name);
/* Make in (loaded, open, mu held) pending with p, which it then owns. */
void qfs_fs_pend_add(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_fs_pend *p);
/* End in's pending state (stored, or given up); mu held.  No-op if not pending. */
void qfs_fs_pend_remove(struct qfs_fs *fs, struct qfs_fs_inode *in);
void qfs_fs_pend_free(struct qfs_fs_pend *p);
/* Write back every pending create in directory dir (each with what it has
 * buffered), before a namespace operation on dir reads or changes the
 * store, and dir's own pending attribute changes (qfs_fs_dattr_flush).
 * Takes the inodes' mu: call with no inode lock held.  0 or the first
 * write-back's error (that file, or those attributes, stay pending). */
int qfs_fs_pend_flush_dir(struct qfs_fs *fs, qfs_ino_t dir);
/* Write back in if it is pending (takes in->mu).  0 or the error. */
int qfs_fs_pend_flush_ino(struct qfs_fs *fs, struct qfs_fs_inode *in);
/* Directory attributes (doc/fs.md "Write-back of a directory's
 * attributes"): a chmod, chown or utimens of a directory (not the root)
 * changes in->attr only (loaded, attr_dirty) and queues in here; the
 * timer stores it QFS_FS_DATTR_MS after at the latest, and so does any
 * operation that reads or changes the directory's stored inode first
 * (qfs_fs_pend_flush_dir, qfs_fs_dattr_flush), fsyncdir and unmount.
 * Queue in (mu held, loaded, S_ISDIR); no-op if already queued. */
void qfs_fs_dattr_queue(struct qfs_fs *fs, struct qfs_fs_inode *in);
/* Store the pending attribute changes of directory ino, if any.  Takes
 * the inode's mu: call with no inode lock held.  0 or the txn's error
 * (the changes stay pending and queued). */
int qfs_fs_dattr_flush(struct qfs_fs *fs, qfs_ino_t ino);
/* Start the timer thread (0 or -errno); stop it, write back what is still
 * queued and drop the queue's references (after the FUSE loop, before
 * the unmount's flush of open files). */
int qfs_fs_dattr_start(struct qfs_fs *fs);
void qfs_fs_dattr_stop(struct qfs_fs *fs);
/* Write back dir's pending creates only, not its own attributes (for a
 * setattr of dir, which joins them).  As qfs_fs_pend_flush_dir. */
int qfs_fs_pend_flush_creates(struct qfs_fs *fs, qfs_ino_t dir);
/* The same, for the operations a full disk must not stop (doc/fs.md "One
 * round per file", full disk): a listing, an unlink (only: its name) and
 * an rmdir in dir.  A pending create whose write-back is refused for lack
 * of space (ENOSPC, EDQUOT) stays pending, is logged and passed over,
 * unless it is named only (NULL: none); 0 or another error. */
int qfs_fs_pend_flush_spare(struct qfs_fs *fs, qfs_ino_t dir, const char *only);
/* A write-back refused for lack of space (the store's, or a quota). */
static inline bool qfs_fs_is_nospc(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT;
}
/* Whether dir has a pending create. */
bool qfs_fs_pend_in_dir(struct qfs_fs *fs, qfs_ino_t dir);
/* Add to t the ops that store p (parent present, name absent, dentry,
 * inode, parent times); values point into p.  0 or -ENOMEM. */
int qfs_fs_pend_add_ops(struct qfs_router_itxn *t, struct qfs_fs_pend *p);

/* ctl.c: the .quorumfs control tree (inodes 2..1023), read-only but for the
 * nodes file (QFS_CTL_NODES_INO). */
#define QFS_CTL_DIR_INO 2
#define QFS_CTL_NODES_INO 6 /* writable by root: stop/start N */
#define QFS_CTL_SCRUB_INO 7 /* writable by root: start */
#define QFS_CTL_ALARMS_INO 8
#define QFS_CTL_AVAIL_INO 9   /* availability */
#define QFS_CTL_METRICS_INO 10 /* metrics (Prometheus text) */
#define QFS_FS_CANARY_INO 1000 /* the canary's items (avail.c): reserved, never a file */
static inline int qfs_fs_ctl_writable(unsigned long ino)
{
	return ino == QFS_CTL_NODES_INO || ino == QFS_CTL_SCRUB_INO;
}
#define QFS_CTL_CAPACITY_INO 12 /* .quorumfs/capacity (admission control) */
#define QFS_CTL_PARTITIONS_INO 21 /* .quorumfs/partitions (branch parts; doc/partitions.md) */
/* Attributes of a control entry (times: the mount time); -ENOENT, -ENOTDIR. */
int qfs_fs_ctl_lookup(const struct qfs_fs *fs, qfs_ino_t parent, const char *name, struct stat *st);
int qfs_fs_ctl_getattr(const struct qfs_fs *fs, qfs_ino_t ino, struct stat *st);
int qfs_fs_ctl_read_file(struct qfs_fs *fs, qfs_ino_t ino, char **text, size_t *len);
/* A write of buf[size] to control file ino: "stop N" / "start N" to nodes,
 * "start" to scrub (trailing newline allowed).  0, -EROFS (another file),
 * -EINVAL (bad command or node), or the error of the node_ctl / scrub_ctl
 * callback (fs.h; the cell's qfs_cell_node_stop/start: -EALREADY...; the
 * scrubber's -EBUSY). */
int qfs_fs_ctl_command(struct qfs_fs *fs, qfs_ino_t ino, const char *buf, size_t size);
/* Fill a readdir (plus != 0: readdirplus, no lookup counted) buffer for
 * the control dir from offset off; returns the bytes used. */
size_t qfs_fs_ctl_readdir(fuse_req_t req, char *buf, size_t size, off_t off, int plus);
static inline int qfs_fs_is_ctl(qfs_ino_t ino) { return ino >= QFS_CTL_DIR_INO && ino <= QFS_CTL_INO_LAST; }

/* avail.c: client-side availability (doc/availability.md).  The table of
 * the inode a handler found last (qfs_fs_iget/ifind set it) and the errno
 * qfs_fs_fail replies, both per thread, reset by qfs_fs_avail_record. */
extern __thread qfs_table_t qfs_fs_tl_table;
extern __thread int qfs_fs_tl_errno;
/* Record one reply of op (ns latency; failed: the errno is qfs_fs_tl_errno,
 * EIO if unset; not failed but qfs_fs_tl_errno set: a reply the user sees
 * as that error, a negative lookup entry as ENOENT).  Any FUSE thread; no lock held by the caller needed. */
void qfs_fs_avail_record(struct qfs_fs *fs, const char *op, uint64_t ns, int failed);
/* Start the recorder, the ticker/canary thread and the metrics listener
 * (fs->o->avail; NULL: defaults with the canary off).  0, -ENOMEM, or the
 * error of binding metrics_listen (logged).  Stop joins them all; stop of
 * a never-started fs does nothing. */
int qfs_fs_avail_start(struct qfs_fs *fs);
void qfs_fs_avail_stop(struct qfs_fs *fs);
/* The recorder, or NULL before start. */
struct qfs_avail *qfs_fs_avail_of(struct qfs_fs *fs);
/* A table was renamed: the ticker re-reads the table names at its next
 * tick (else they are re-read every 30 s).  Any thread; nothing before start. */
void qfs_fs_avail_names_changed(struct qfs_fs *fs);
/* The inode of an open file handle, noting its table for this reply. */
static inline struct qfs_fs_inode *qfs_fs_fh_inode(struct fuse_file_info *fi)
{
	struct qfs_fs_inode *in = (struct qfs_fs_inode *)(uintptr_t)fi->fh;

	qfs_fs_tl_table = in ? in->table : 0;
	return in;
}

/* ops.c: replies and helpers shared by the handlers (ops.c, dir.c, xattr.c).
 * Every handler ends in exactly one reply: qfs_fs_fail (logs why, records the
 * error, replies the errno of err), qfs_fs_ok (replies 0) or a
 * fuse_reply_* preceded by qfs_fs_done. */
extern const struct fuse_lowlevel_ops qfs_fs_ops;
struct qfs_fs *qfs_fs_of(fuse_req_t req);
void qfs_fs_attr_to_stat(const struct qfs_attr *a, struct stat *st);
/* An entry reply for a (ino, generation, attributes, fs->timeout). */
void qfs_fs_fill_entry(const struct qfs_fs *fs, struct fuse_entry_param *e, const struct qfs_attr *a);
void qfs_fs_done(fuse_req_t req, enum qfs_fs_op op, uint64_t t0, int failed);
void qfs_fs_fail(fuse_req_t req, enum qfs_fs_op op, uint64_t t0, int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void qfs_fs_ok(fuse_req_t req, enum qfs_fs_op op, uint64_t t0);
/* Current attributes of in: memory if it has buffered state, else the
 * store.  Takes in->mu.  0 or the router's error. */
int qfs_fs_inode_attr(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_attr *out);
/* Run t on table's partitions (qfs_router_item_txn) and keep the directory
 * attribute cache in step with what it changed: a directory inode that t
 * touches is marked busy while t runs, gets t's SETATTR and NLINK ops
 * applied if t committed, and is dropped from the cache otherwise (a
 * failure, an unknown outcome, an overlap with another txn on it, any other
 * op on it).  Returns the router's error (<0), else *res as
 * qfs_router_item_txn sets it.  Any thread; no lock held (the caller may
 * hold inode mutexes, never fs->dac_mu). */
int qfs_fs_item_txn(struct qfs_fs *fs, qfs_table_t table, struct qfs_router_itxn *t, int *res);
/* Drop ino's copy in the directory attribute cache, if it has one, and
 * keep a read in flight from filling it: for a change to its stored
 * attributes made other than by qfs_fs_item_txn (a table deleted or
 * replaced by the router).  Call it after the change.  Any thread; takes
 * fs->itab_mu and fs->dac_mu (no lock held). */
void qfs_fs_dac_drop(struct qfs_fs *fs, qfs_ino_t ino);

/* The inode the kernel calls ino, with a reference (qfs_fs_iput); NULL if unknown. */
struct qfs_fs_inode *qfs_fs_get_inode(struct qfs_fs *fs, fuse_ino_t ino);
/* Item keys (router.h): an inode, a dentry (name NUL-terminated), a chunk. */
#define IKEY(ino) qfs_router_key_inode(ino)
#define DKEY(dir, name) qfs_router_key_dentry((dir), (name), strlen(name))
#define CKEY(ino, no) qfs_router_key_chunk((ino), (no))
/* Append an op of kind on item k to t; NULL on -ENOMEM (qfs_router_itxn_add). */
struct qfs_op *qfs_fs_add_op(struct qfs_router_itxn *t, enum qfs_op_kind kind, struct qfs_router_key k);
/* Run t on table: the propose error, else the txn's result. */
int qfs_fs_run_txn(struct qfs_fs *fs, qfs_table_t table, struct qfs_router_itxn *t);

/* acl.c: POSIX ACL xattr values (the kernel's layout); see acl.c. */
#define QFS_ACL_ACCESS "system.posix_acl_access"
#define QFS_ACL_DEFAULT "system.posix_acl_default"
/* 0 if value[len] is a well-formed ACL (entries in the kernel's order, one
 * of each base entry, a mask when named entries exist); -EINVAL if not,
 * -EOPNOTSUPP for a version other than 2. */
int qfs_fs_acl_check(const void *value, size_t len);
/* The permission bits an access ACL gives (*mode's other bits kept): owner,
 * mask (or group), other.  1 if the ACL says no more than the mode (no named
 * entries: it need not be stored), else 0.  value must have passed check. */
int qfs_fs_acl_mode(const void *value, size_t len, uint32_t *mode);
/* Rewrite an access ACL in place after chmod to mode (posix_acl_chmod):
 * owner, other, and the mask (or the group entry when there is no mask). */
void qfs_fs_acl_chmod(void *value, size_t len, uint32_t mode);
/* Turn a copy of a parent's default ACL, in place, into the access ACL of a
 * new entry created with *mode (posix_acl_create): entries limited by the
 * mode, and *mode's permission bits limited by the ACL.  1 if the result
 * must be stored (named entries or a mask), 0 if the mode says it all. */
int qfs_fs_acl_create(void *value, size_t len, uint32_t *mode);

/* dir.c */
void qfs_fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void qfs_fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
/* readdir with each entry's attributes; every entry but "." and ".." that
 * fits counts one kernel lookup (nlookup), as a lookup reply does. */
void qfs_fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void qfs_fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void qfs_fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
/* Free the directory handles still open (the session loop has ended: no
 * request runs any more). */
void qfs_fs_dir_close_all(struct qfs_fs *fs);
/* Free a directory's readdir offset registry (NULL: nothing); the inode is
 * being freed, so the kernel holds none of its offsets any more. */
void qfs_fs_dir_cookies_free(struct qfs_fs_dircookies *ck);
/* Free an inode's handle of readdirs without opendir (in->dsh; NULL: nothing). */
void qfs_fs_dir_shared_free(struct dir_handle *h);

/* xattr.c */
void qfs_fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags);
void qfs_fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void qfs_fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void qfs_fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
/* The attributes of in as qfs_fs_inode_attr gives them (memory when it
 * has buffered state); when they come from the store, the whole inode is
 * read and what it says about xattrs is remembered (nosec, noxattr), so
 * that the getxattr calls that follow a lookup (ls -l asks for
 * security.selinux, the kernel for the ACLs) are answered without another
 * store read.  Takes in->mu.  0 or the router's error. */
int qfs_fs_inode_attr_x(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_attr *out);
/* Before a chmod of in to mode (permission bits) is written back: if in has
 * an access ACL, rewrite it and store it with the new mode in one txn.
 * Called with in->mu held.  0 (also when there is no ACL) or the error of
 * reading the inode or of the txn; nothing changed on error. */
int qfs_fs_acl_chmod_locked(struct qfs_fs *fs, struct qfs_fs_inode *in, uint32_t mode);

#endif
