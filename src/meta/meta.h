/*
 * meta.h - the partition map (DESIGN.md section 3, "src/meta"; formats in
 * doc/format-keys.md "Partition map").
 *
 * A table (id = its directory's inode) is cut into key-range partitions
 * [lo, hi) of its item keys (common/key.h: hash-ordered, so one directory
 * is a contiguous range that a split may still cut).  Every partition is
 * its own replication group, whose id is also the partition's id.  The map
 * lives in the meta group (QFS_META_GROUP) as one record per partition and
 * is served from memory: qfs_meta_lookup is a binary search, no I/O (the
 * MemDS role).  Table creation, drop and splits are meta-group txns built
 * here; the commit of a split's txn is the split's commit point.
 *
 * Each partition's own group also holds a fence record (key "\0", one
 * byte, which no item uses) with its epoch and range; every txn the router
 * sends carries QFS_OP_RANGE with the epoch it believes in, so a txn routed
 * with a stale map fails with QFS_ESTALE instead of writing a moved range.
 *
 * A table without any record (a data directory from before partitions) is
 * one partition: group = table id, epoch 0, every key, no fence record.
 *
 * Thread-safety: every function may be called from any thread; the map is
 * under one rwlock (lookups share it).  Txn builders do no locking.
 */
#ifndef QFS_META_META_H
#define QFS_META_META_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/glist.h"
#include "common/key.h"
#include "common/qfs.h"
#include "common/txn.h"

struct qfs_cell;
struct qfs_meta;

#define QFS_META_REPLICAS 3
#define QFS_META_FENCE_KEY ((const uint8_t *)"")  /* the fence record's key: one byte 0 */
#define QFS_META_FENCE_KEY_LEN 1                   /* (below every item key: >= 17 bytes) */
#define QFS_META_ITEMS_FIRST ((const uint8_t *)"\0") /* two bytes 0: below every item key, */
#define QFS_META_ITEMS_FIRST_LEN 2                 /* above the fence key */
/* 1 if (k, kl) is the fence key. */
static inline int qfs_meta_is_fence(const uint8_t *k, size_t kl)
{
	return kl == 1 && k[0] == 0;
}
#define QFS_META_KEY_END_LEN 16                    /* end of item keys: 16 x 0xff (key.h) */

struct qfs_meta_part {
	qfs_table_t table;
	qfs_group_t group;              /* the partition's group; also its id */
	uint64_t epoch;                 /* 0 for a legacy table, 1 at creation, +1 per split */
	uint32_t lo_len;                /* bytes in lo; 0: from the first key */
	uint32_t hi_len;                /* bytes in hi; 0: to the end */
	uint8_t lo[QFS_KEY_MAX];
	uint8_t hi[QFS_KEY_MAX];
	uint32_t nnodes;                /* replica nodes (ids), in the order given at creation:
					   the cell's placement (qfs_cell_group_nodes) */
	uint32_t nodes[QFS_META_REPLICAS];
};

/* A record being written: key and value storage that a txn op borrows. */
struct qfs_meta_rec {
	uint8_t key[64];
	size_t key_len;
	uint8_t key2[64];               /* DEL_RANGE end when a range is deleted */
	size_t key2_len;
	struct qfs_buf val;
};

/* Open the map over the cell and load every record of the meta group.
 * *out set only on success.  -ENOMEM, QFS_ECORRUPT (a bad record), read errors. */
int qfs_meta_open(struct qfs_cell *cell, struct qfs_meta **out);
void qfs_meta_free(struct qfs_meta *m); /* NULL: nothing */
/* Re-read table's records (after a commit that changed them, or to
 * refresh) and install them unless the map in memory is newer (a higher
 * version: the sum of the epochs, which every split raises), as when a
 * split's reload installed its commit while this read ran.  A read that
 * finds no record where memory has some (a drop) is read once more and
 * installed if still empty.  0 (also when memory was newer: kept),
 * QFS_ECORRUPT, read errors (the old entries stay). */
int qfs_meta_reload_table(struct qfs_meta *m, qfs_table_t table);

/* The partition of (table, key): memory only.  Always 0 (a table without
 * records is its own single legacy partition). */
int qfs_meta_lookup(struct qfs_meta *m, qfs_table_t table, const uint8_t *key, size_t key_len,
		    struct qfs_meta_part *out);
/* Every partition of table in key order: *out malloc'd (caller frees), *n.
 * 0 or -ENOMEM. */
int qfs_meta_parts(struct qfs_meta *m, qfs_table_t table, struct qfs_meta_part **out, size_t *n);
/* 1 if some partition (or a table's legacy partition: pass the table ids
 * in tables) uses group. */
int qfs_meta_group_used(struct qfs_meta *m, qfs_group_t group);
/* Add to out (initialised) the groups of the partitions whose recorded
 * replica nodes include node, each once: memory only.  A membership
 * change records its nodes only once it is whole (qfs_meta_set_nodes),
 * so this still names a group whose replace stopped half-way.  0 or
 * -ENOMEM (out->err). */
int qfs_meta_groups_on(struct qfs_meta *m, uint32_t node, struct qfs_glist *out);
/* Number of qfs_meta_lookup calls served (the metadata load). */
uint64_t qfs_meta_lookups(struct qfs_meta *m);

/* Key comparison helpers: 1 if key is inside p's range. */
int qfs_meta_part_has(const struct qfs_meta_part *p, const uint8_t *key, size_t key_len);
/* Compare byte strings (memcmp order, shorter first on a tie). */
int qfs_meta_keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

/* ---- txn builders (the caller proposes; rec must outlive the encoding) ---- */

void qfs_meta_rec_init(struct qfs_meta_rec *rec);
void qfs_meta_rec_close(struct qfs_meta_rec *rec);
/* Append to t (a meta-group txn) the PUT of p's record.  0 or -ENOMEM. */
int qfs_meta_add_put(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_part *p);
/* Append to t a condition that p's record is stored exactly as encoded
 * (absent for a legacy partition, epoch 0), failing with QFS_ECONFLICT. */
int qfs_meta_add_expect(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_part *p);
/* Append to t the deletion of every record of table.  0 or -ENOMEM. */
int qfs_meta_add_drop(struct qfs_txn *t, struct qfs_meta_rec *rec, qfs_table_t table);
/* Append to t (a txn of p's own group) the PUT of p's fence record. */
int qfs_meta_add_fence(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_part *p);
/* Fill p as the first partition of a new table (everything, epoch 1) on
 * nodes 1..nnodes (at most QFS_META_REPLICAS). */
void qfs_meta_part_first(struct qfs_meta_part *p, qfs_table_t table, qfs_group_t group,
			 uint32_t nnodes);
/* Fill p's replica nodes with the nodes that host its group (placement:
 * qfs_cell_group_nodes; at most QFS_META_REPLICAS).  Any thread. */
void qfs_meta_part_place(struct qfs_meta *m, struct qfs_meta_part *p);

/* The split's commit point: one meta-group txn that replaces old's record
 * by [old.lo, key) and [key, old.hi) in group newg (its replica nodes:
 * qfs_meta_part_place), both at old.epoch + 1,
 * conditional on old's record being unchanged.  On 0 the map in memory
 * holds both and *left, *right are set.  Errors: -EINVAL (key not strictly
 * inside old), QFS_ECONFLICT (old changed), propose errors, and the
 * errors of reloading the map after the commit: on any error but -EINVAL
 * and QFS_ECONFLICT the commit may have happened (the caller reloads the
 * map to know). */
int qfs_meta_split(struct qfs_meta *m, const struct qfs_meta_part *old, const uint8_t *key,
		   size_t key_len, qfs_group_t newg, struct qfs_meta_part *left,
		   struct qfs_meta_part *right);

/* ---- split intents (cluster mode, doc/cluster.md "Splits") ----
 *
 * Several routers of a cluster may see one partition's split trigger.
 * Before it touches the partition's fence, a router claims the partition
 * with an intent record in the meta group: one txn, conditional on the
 * partition's record being unchanged and no intent existing, so exactly
 * one claim wins (the others get QFS_ECONFLICT and drop their attempt).
 * The intent is a lock on the partition's fence: only its holder changes
 * the fence while it exists.  The holder raises its beat while it works;
 * another router that sees the same intent unchanged for a lease takes it
 * over (a swap conditional on the value it saw) and undoes the split.  The
 * split's commit deletes the intent in the same txn, so a taken-over split
 * can never commit. */
struct qfs_meta_intent {
	qfs_table_t table;
	qfs_group_t group;      /* the claimed partition's group */
	uint64_t owner;         /* the holder's router nonce */
	uint64_t beat;          /* raised by the holder while it works */
	qfs_group_t newg;       /* the split's new group (0: a fence repair) */
	uint64_t epoch;         /* the partition's epoch at the claim */
};

/* Claim p (its record as given) with in (in->table/group are p's): one
 * meta txn.  0, QFS_ECONFLICT (p's record changed, or an intent exists),
 * propose errors (the claim may have happened: the holder's beat or a
 * takeover settles it). */
int qfs_meta_intent_claim(struct qfs_meta *m, const struct qfs_meta_part *p,
			  const struct qfs_meta_intent *in);
/* Replace intent cur (stored exactly so) by nw (NULL: delete it).  0,
 * QFS_ECONFLICT (cur is not what is stored), propose errors. */
int qfs_meta_intent_swap(struct qfs_meta *m, const struct qfs_meta_intent *cur,
			 const struct qfs_meta_intent *nw);
/* Read the stored intents of table (0: of every table) from the meta
 * group into out[max]; *n set to how many (at most max).  0 or read
 * errors (QFS_ECORRUPT for an undecodable record). */
int qfs_meta_intents(struct qfs_meta *m, qfs_table_t table, struct qfs_meta_intent *out, size_t max,
		     size_t *n);
/* qfs_meta_split whose txn also requires intent in (stored exactly so)
 * and deletes it: a split that lost its intent fails with QFS_ECONFLICT.
 * Errors as qfs_meta_split. */
int qfs_meta_split_claimed(struct qfs_meta *m, const struct qfs_meta_part *old, const uint8_t *key,
			   size_t key_len, qfs_group_t newg, const struct qfs_meta_intent *in,
			   struct qfs_meta_part *left, struct qfs_meta_part *right);

/* Undo a split before its commit without moving a fence backwards
 * (doc/cluster.md "Splits"): set p's record (as stored) to epoch (greater
 * than p->epoch; range, group and nodes unchanged) and delete intent in
 * (stored exactly so), in one meta txn conditional on both, then reload
 * p's table.  Routers move to the new epoch; the caller then moves the
 * group's fence forward to it.  0 with *out (p at epoch), -EINVAL (epoch
 * not above p's), QFS_ECONFLICT (the record or the intent changed: a
 * takeover, or a later split, moved first), propose and reload errors
 * (the txn may have applied: the next repair judges by the stored map). */
int qfs_meta_bump_claimed(struct qfs_meta *m, const struct qfs_meta_part *p, uint64_t epoch,
			  const struct qfs_meta_intent *in, struct qfs_meta_part *out);

/* A membership change moved group (doc/cluster.md "Membership"): set the
 * replica nodes of the partition whose group it is to ids[n] (n at most
 * QFS_META_REPLICAS), by one meta-group txn conditional on the record
 * being unchanged, then reload its table.  0 (also when no partition has
 * that group: the meta group, a legacy table), -EINVAL (n), QFS_ECONFLICT
 * (the record changed meanwhile: the table is reloaded, call again),
 * propose and reload errors. */
int qfs_meta_set_nodes(struct qfs_meta *m, qfs_group_t group, const uint32_t *ids, uint32_t n);

/* TEST HOOK (fault injection, never set in production): when nonzero,
 * qfs_meta_split returns -ETIMEDOUT right after its commit applied, as a
 * proposal whose answer was lost would. */
extern int qfs_meta_test_split_lost;
/* TEST HOOK (never set in production): when set, qfs_meta_reload_table
 * calls it after reading table's records and before installing them, on
 * the reloading thread, no lock held (a test delays a reload there). */
extern void (*qfs_meta_test_reload_hook)(qfs_table_t table);

/* Decode a fence record (epoch, table, lo, hi) into p (group untouched).
 * 0 or QFS_ECORRUPT. */
int qfs_meta_fence_decode(const void *val, size_t len, struct qfs_meta_part *p);
/* Encode a partition record (the value) / decode one. */
void qfs_meta_part_encode(const struct qfs_meta_part *p, struct qfs_buf *out);
int qfs_meta_part_decode(const void *val, size_t len, struct qfs_meta_part *p);

#endif
