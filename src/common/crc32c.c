/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82f63b78).
 *
 * Two implementations behind one entry point (contract in crc32c.h):
 *  - x86-64 with SSE4.2: the crc32 instruction, 8 bytes per step, on three
 *    independent streams at once for long buffers (the instruction's
 *    latency is three times its issue rate, so one dependent stream used a
 *    third of it); the three partial CRCs are joined by the linear map
 *    "append CRC_BLK zero bytes" (tables built at first use);
 *  - everywhere else: slicing-by-8 over tables built once at first use.
 * The choice is made once, under pthread_once, so qfs_crc32c() is thread-safe
 * and costs one well-predicted indirect call after the first use.
 *
 * Convention (same as iSCSI, ext4, RocksDB's crc32c::Extend): the running
 * value passed in and returned is the finished CRC, so extending works by
 * feeding the previous result back: crc(a||b) == qfs_crc32c(qfs_crc32c(0, a), b).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "common/crc32c.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#define QFS_CRC32C_HW 1
#endif

#define POLY 0x82f63b78u

static uint32_t crc_table[8][256]; /* written once under crc_once */
#define CRC_BLK 4096u                /* bytes per stream in crc_hw's 3-way loop */
static uint32_t crc_shift[4][256];   /* raw register x -> x advanced over CRC_BLK
					zero bytes, one table per byte of x;
					written once under crc_once */
static uint32_t (*crc_impl)(uint32_t crc, const uint8_t *p, size_t len);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Slicing-by-8: crc is the raw (non-inverted) register. */
static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t v = load_le64(p) ^ crc;

		crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len > 0) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	return crc;
}

#ifdef QFS_CRC32C_HW
/* The raw register x carried over CRC_BLK zero bytes (linear in x). */
static inline uint32_t crc_blk_shift(uint32_t x)
{
	return crc_shift[0][x & 0xff] ^ crc_shift[1][(x >> 8) & 0xff] ^ crc_shift[2][(x >> 16) & 0xff] ^
	       crc_shift[3][x >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	/* CRC is linear over GF(2): the register after A||B||C (each CRC_BLK
	 * bytes) from c is shift(shift(crc(A, c)) ^ crc(B, 0)) ^ crc(C, 0), so
	 * the three streams run independently and are joined at the end. */
	while (len >= 3 * CRC_BLK) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < CRC_BLK; i += 8) {
			uint64_t v0, v1, v2;

			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + CRC_BLK + i, 8);
			memcpy(&v2, p + 2 * CRC_BLK + i, 8);
			c = _mm_crc32_u64(c, v0);
			c1 = _mm_crc32_u64(c1, v1);
			c2 = _mm_crc32_u64(c2, v2);
		}
		c = crc_blk_shift(crc_blk_shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * CRC_BLK;
		len -= 3 * CRC_BLK;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	while (len > 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	return (uint32_t)c;
}
#endif

static void crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		crc_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = crc_table[0][n];

		for (int k = 1; k < 8; k++) {
			c = crc_table[0][c & 0xff] ^ (c >> 8);
			crc_table[k][n] = c;
		}
	}
	crc_impl = crc_sw;
#ifdef QFS_CRC32C_HW
	/* crc_shift: the images of the 32 unit registers over CRC_BLK zero
	 * bytes (table steps, as crc_sw does with zeros), then per byte of x
	 * the XOR of the images of its set bits */
	uint32_t unit[32];
	for (int b = 0; b < 32; b++) {
		uint32_t r = 1u << b;

		for (uint32_t i = 0; i < CRC_BLK; i++)
			r = crc_table[0][r & 0xff] ^ (r >> 8);
		unit[b] = r;
	}
	for (int k = 0; k < 4; k++) {
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t r = 0;

			for (int b = 0; b < 8; b++)
				if (v & (1u << b))
					r ^= unit[8 * k + b];
			crc_shift[k][v] = r;
		}
	}
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		crc_impl = crc_hw;
#endif
}

/*
 * Extend crc (0 to start) over len bytes of buf and return the new CRC-32C.
 * buf may be NULL when len is 0.  Thread-safe; never fails.
 */
uint32_t qfs_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	if (len == 0)
		return crc;
	return ~crc_impl(~crc, buf, len);
}
