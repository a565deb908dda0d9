/*
 * qfs.c - messages and kernel errnos for quorumfs error codes (see qfs.h for
 * the error convention: 0 or a negative errno, QFS_E* below -QFS_ERR_BASE).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/qfs.h"

/* Message for err (negative errno or QFS_E*).  Never NULL; the string is
 * static (strerror's table for errnos, which glibc keeps immutable). */
const char *qfs_strerror(int err)
{
	switch (err) {
	case 0:
		return "Success";
	case QFS_ECORRUPT:
		return "Corrupt data (checksum or format error)";
	case QFS_ESTOPPED:
		return "Replication group stopped after a fatal error";
	case QFS_ENOGROUP:
		return "No such replication group on this node";
	case QFS_ECONFLICT:
		return "Condition failed; retry";
	case QFS_EFORMAT:
		return "Unsupported on-disk format version";
	case QFS_ETORN:
		return "Torn record at the tail of a log";
	case QFS_ESTALE:
		return "Partition map changed (stale epoch)";
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "Unknown error";
}

/* Positive errno for the kernel: errnos map to themselves, QFS_ECONFLICT to
 * EAGAIN, every other QFS_E* code and anything unknown to EIO. */
int qfs_err_to_errno(int err)
{
	if (err < 0 && err > -4096)
		return -err;
	switch (err) {
	case QFS_ECONFLICT:
		return EAGAIN;
	default:
		return EIO;
	}
}
