/*
 * node_int.h - file helpers shared by the sources of src/node: the
 * replicated node (rnode.c) and the cell of nodes of a mount (cell.c).
 * Everything here is durable-on-return where it says so, returns 0 or a
 * negative errno, and is safe from any thread.
 */
#ifndef QFS_NODE_NODE_INT_H
#define QFS_NODE_NODE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A router's retry token key (cellnet.c "Retries without double
 * application"; doc/format-keys.md): 16 bytes 0xff, 1, 't', the router's
 * be64 nonce, the be64 proposal number.  Every proposal of a cluster
 * mount PUTs one (no value), which the full-disk admission (rnode.c
 * txn_frees) does not count as writing data. */
#define QFS_NODE_TOKEN_KEY_LEN (16 + 2 + 8 + 8)
static inline int qfs_node_is_token_key(const uint8_t *k, size_t len)
{
	static const uint8_t ff[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	return len == QFS_NODE_TOKEN_KEY_LEN && memcmp(k, ff, 16) == 0 && k[16] == 1 && k[17] == 't';
}

/* snprintf into out[size]; -ENAMETOOLONG if it does not fit. */
int qfs_node_path_fmt(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* fsync the directory at path. */
int qfs_node_fsync_dir(const char *path);
/* mkdir path (0755), accepting an existing one; fsyncs parent when it made one. */
int qfs_node_mkdir_durable(const char *path, const char *parent);
/* Replace path with text durably: write tmp, fsync, rename to path, fsync
 * dir (path's directory).  On error tmp is removed and path is untouched. */
int qfs_node_file_put(const char *dir, const char *tmp, const char *path, const char *text);
/* Read a small file into buf[size], NUL-terminated.  0, -ENOENT, -errno. */
int qfs_node_file_get(const char *path, char *buf, size_t size);
/* DIR/FORMAT must hold exactly format; it is created (durably) when missing.
 * QFS_EFORMAT with a log line when it holds anything else. */
int qfs_node_format_check(const char *dir, const char *format);

#endif
