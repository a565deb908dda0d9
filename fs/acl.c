/*
 * acl.c - POSIX ACLs in their xattr form (system.posix_acl_access and
 * system.posix_acl_default), as the kernel hands them to a FUSE daemon that
 * asked for FUSE_CAP_POSIX_ACL.
 *
 * With that capability the kernel enforces the ACLs (it reads them with
 * getxattr and caches them) but leaves three things to the filesystem
 * (libfuse's fuse_common.h): keeping the mode bits in step with a new access
 * ACL (as the kernel's posix_acl_update_mode does for ext4), keeping the ACL
 * in step with chmod (posix_acl_chmod), and inheriting a directory's default
 * ACL into new entries (posix_acl_create).  Those are the three functions
 * here; xattr.c and ops.c call them.  The value layout is the kernel's
 * (include/uapi/linux/posix_acl_xattr.h): a little-endian 4-byte version (2)
 * and 8-byte entries { u16 tag, u16 perm, u32 id }.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fs_int.h"

#define ACL_VERSION 2
#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static size_t nentries(size_t len) { return (len - 4) / 8; }
static uint8_t *entry(uint8_t *v, size_t i) { return v + 4 + 8 * i; }
static const uint8_t *centry(const uint8_t *v, size_t i) { return v + 4 + 8 * i; }

int qfs_fs_acl_check(const void *value, size_t len)
{
	const uint8_t *v = value;
	int state = TAG_USER_OBJ, needs_mask = 0;
	uint32_t prev_id = 0;
	int have_prev = 0;

	if (len < 4 || (len - 4) % 8)
		return -EINVAL;
	if (get32(v) != ACL_VERSION)
		return -EOPNOTSUPP; /* what the kernel's posix_acl_from_xattr answers */
	if (nentries(len) == 0)
		return -EINVAL;
	for (size_t i = 0; i < nentries(len); i++) {
		const uint8_t *e = centry(v, i);
		uint16_t tag = get16(e), perm = get16(e + 2);
		uint32_t id = get32(e + 4);
		if (perm & ~7u)
			return -EINVAL;
		switch (tag) {
		case TAG_USER_OBJ:
			if (state != TAG_USER_OBJ)
				return -EINVAL;
			state = TAG_USER;
			have_prev = 0;
			break;
		case TAG_USER:
		case TAG_GROUP:
			if (state != tag || (have_prev && id <= prev_id))
				return -EINVAL; /* out of order or a duplicate qualifier */
			prev_id = id;
			have_prev = 1;
			needs_mask = 1;
			break;
		case TAG_GROUP_OBJ:
			if (state != TAG_USER)
				return -EINVAL;
			state = TAG_GROUP;
			have_prev = 0;
			break;
		case TAG_MASK:
			if (state != TAG_GROUP)
				return -EINVAL;
			state = TAG_OTHER;
			break;
		case TAG_OTHER:
			if (state != TAG_OTHER && !(state == TAG_GROUP && !needs_mask))
				return -EINVAL;
			state = 0;
			break;
		default:
			return -EINVAL;
		}
	}
	return state == 0 ? 0 : -EINVAL;
}

int qfs_fs_acl_mode(const void *value, size_t len, uint32_t *mode)
{
	const uint8_t *v = value;
	uint32_t u = 0, g = 0, o = 0;
	int equiv = 1, have_mask = 0;

	for (size_t i = 0; i < nentries(len); i++) {
		const uint8_t *e = centry(v, i);
		uint32_t perm = get16(e + 2) & 7u;
		switch (get16(e)) {
		case TAG_USER_OBJ:
			u = perm;
			break;
		case TAG_GROUP_OBJ:
			if (!have_mask)
				g = perm;
			break;
		case TAG_MASK:
			g = perm; /* with a mask, the group bits are the mask */
			have_mask = 1;
			break;
		case TAG_OTHER:
			o = perm;
			break;
		default:
			equiv = 0; /* named users or groups: the mode cannot say it */
		}
	}
	*mode = (*mode & ~0777u) | u << 6 | g << 3 | o;
	return equiv;
}

void qfs_fs_acl_chmod(void *value, size_t len, uint32_t mode)
{
	uint8_t *v = value, *group_obj = NULL, *mask = NULL;

	for (size_t i = 0; i < nentries(len); i++) {
		uint8_t *e = entry(v, i);
		switch (get16(e)) {
		case TAG_USER_OBJ:
			put16(e + 2, (uint16_t)((mode >> 6) & 7u));
			break;
		case TAG_GROUP_OBJ:
			group_obj = e;
			break;
		case TAG_MASK:
			mask = e;
			break;
		case TAG_OTHER:
			put16(e + 2, (uint16_t)(mode & 7u));
			break;
		}
	}
	if (mask)
		put16(mask + 2, (uint16_t)((mode >> 3) & 7u));
	else if (group_obj)
		put16(group_obj + 2, (uint16_t)((mode >> 3) & 7u));
}

int qfs_fs_acl_create(void *value, size_t len, uint32_t *mode)
{
	uint8_t *v = value, *group_obj = NULL, *mask = NULL;
	uint32_t m = *mode & 07777u;
	int not_equiv = 0;

	for (size_t i = 0; i < nentries(len); i++) {
		uint8_t *e = entry(v, i);
		uint32_t perm = get16(e + 2);
		switch (get16(e)) {
		case TAG_USER_OBJ:
			perm &= (m >> 6) & 7u;
			put16(e + 2, (uint16_t)perm);
			m = (m & ~0700u) | (m & (perm << 6));
			break;
		case TAG_USER:
		case TAG_GROUP:
			not_equiv = 1;
			break;
		case TAG_GROUP_OBJ:
			group_obj = e;
			break;
		case TAG_MASK:
			mask = e;
			not_equiv = 1;
			break;
		case TAG_OTHER:
			perm &= m & 7u;
			put16(e + 2, (uint16_t)perm);
			m = (m & ~07u) | (m & perm);
			break;
		}
	}
	uint8_t *g = mask ? mask : group_obj;
	if (g) {
		uint32_t perm = get16(g + 2) & ((m >> 3) & 7u);
		put16(g + 2, (uint16_t)perm);
		m = (m & ~070u) | (m & (perm << 3));
	}
	*mode = (*mode & ~07777u) | m;
	return not_equiv;
}
