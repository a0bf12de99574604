/* SPDX-License-Identifier: MIT */
/*
 * The one bounded reader for untrusted bytes.
 *
 * Every parser of wire bytes (frames, connect TLVs, error bodies) reads
 * through a ferry_rd: a borrowed byte range and a cursor.  Each read checks
 * the remaining length first; a read past the end sets the sticky `err`
 * flag, returns zeros and moves nothing, so a parser can read a whole
 * structure and check `err` once at the end.  Multi-byte integers are
 * big-endian (network byte order), as docs/wire.md specifies.
 */
#ifndef FERRY_RD_H
#define FERRY_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct ferry_rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool err;
};

static inline void ferry_rd_init(struct ferry_rd *r, const void *p, size_t len)
{
	r->p = (const uint8_t *)p;
	r->len = len;
	r->off = 0;
	r->err = false;
}

static inline size_t ferry_rd_left(const struct ferry_rd *r)
{
	return r->len - r->off;
}

/* Reserve @n bytes; NULL (and err set) if fewer remain. */
static inline const uint8_t *ferry_rd_take(struct ferry_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		r->err = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static inline uint8_t ferry_rd_u8(struct ferry_rd *r)
{
	const uint8_t *p = ferry_rd_take(r, 1);

	return p ? p[0] : 0;
}

static inline uint16_t ferry_rd_u16(struct ferry_rd *r)
{
	const uint8_t *p = ferry_rd_take(r, 2);

	return p ? (uint16_t)((uint16_t)p[0] << 8 | p[1]) : 0;
}

static inline uint32_t ferry_rd_u32(struct ferry_rd *r)
{
	const uint8_t *p = ferry_rd_take(r, 4);

	if (!p)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t ferry_rd_u64(struct ferry_rd *r)
{
	uint64_t hi = ferry_rd_u32(r);

	return hi << 32 | ferry_rd_u32(r);
}

/* Sub-reader over the next @n bytes; the parent skips them. */
static inline struct ferry_rd ferry_rd_sub(struct ferry_rd *r, size_t n)
{
	struct ferry_rd s;
	const uint8_t *p = ferry_rd_take(r, n);

	ferry_rd_init(&s, p, p ? n : 0);
	s.err = p == NULL;
	return s;
}

/* Writers for the encoder: the caller sized the buffer, so no checks. */
static inline uint8_t *ferry_wr_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static inline uint8_t *ferry_wr_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static inline uint8_t *ferry_wr_u64(uint8_t *p, uint64_t v)
{
	return ferry_wr_u32(ferry_wr_u32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

#endif /* FERRY_RD_H */
