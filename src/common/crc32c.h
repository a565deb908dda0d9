/*
 * crc32c.h - CRC-32C (Castagnoli), as used by iSCSI, ext4 and RocksDB.
 *
 * Debian 12 ships no C library for CRC-32C, so this is ours: SSE4.2 crc32
 * instructions when the CPU has them, a slicing table otherwise.  Check value:
 * qfs_crc32c(0, "123456789", 9) == 0xe3069283.
 */
#ifndef QFS_COMMON_CRC32C_H
#define QFS_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over len bytes of buf. Thread-safe. */
uint32_t qfs_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
