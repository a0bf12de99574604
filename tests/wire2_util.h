/* SPDX-License-Identifier: MIT */
/*
 * wire2_util.h - shared fixtures of the wire v2 codec tests
 * (tests/test_wire2*.c): hex dumps as in docs/wire.md section 9,
 * datagrams copied into heap buffers of exactly their length (so that a
 * sanitizer build catches any read past the end), and a short-header
 * datagram builder for one or more frames.
 */
#ifndef FERRY_TESTS_WIRE2_UTIL_H
#define FERRY_TESTS_WIRE2_UTIL_H

#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/wire2.h"

#define DCID 0x9a4f1c6e2d8b7035ull
#define CCID 0x3c5e8a1f0b7d9e24ull

/* Parse the hex digits in @hex (spaces and newlines ignored) into @out
 * (@cap bytes); returns the byte count. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (; *hex; hex++) {
		int v;

		if (isspace((unsigned char)*hex))
			continue;
		v = isdigit((unsigned char)*hex) ? *hex - '0'
						 : tolower((unsigned char)*hex) - 'a' + 10;
		cr_assert(v >= 0 && v < 16, "bad hex digit %c", *hex);
		if (hi < 0) {
			hi = v;
			continue;
		}
		cr_assert(n < cap);
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	cr_assert(hi < 0, "odd number of hex digits");
	return n;
}

/* A heap copy of exactly @n bytes; the caller frees it. */
static inline uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	cr_assert_not_null(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

static inline struct ferry_w2_dgram short_hdr(uint8_t mode, uint32_t pn)
{
	struct ferry_w2_dgram d;

	memset(&d, 0, sizeof(d));
	d.mode = mode;
	d.dcid = DCID;
	d.pn = pn;
	return d;
}

static inline struct ferry_w2_dgram long_hdr(uint8_t type)
{
	struct ferry_w2_dgram d;

	memset(&d, 0, sizeof(d));
	d.is_long = true;
	d.type = type;
	d.version = FERRY_W2_VERSION;
	d.dcid = type == FERRY_W2_CONNECT ? 0 : CCID;
	d.scid = type == FERRY_W2_CONNECT  ? CCID
		 : type == FERRY_W2_ACCEPT ? DCID
					   : 0;
	return d;
}

/* Build a datagram with header @d and the @n frames @fs into @buf (@cap);
 * returns its length.  Mode none gets its CRC. */
static inline size_t build(uint8_t *buf, size_t cap,
			   const struct ferry_w2_dgram *d,
			   const struct ferry_w2_frame *fs, unsigned n)
{
	struct ferry_w2_builder b;
	int len;

	cr_assert_eq(ferry__w2_build_begin(&b, buf, cap, d), 0);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(ferry__w2_build_frame(&b, &fs[i]), 0, "frame %u", i);
	len = ferry__w2_build_end(&b);
	cr_assert_gt(len, 0);
	return (size_t)len;
}

/* Put a raw frame (header @type/@flags, body @body/@blen) after a short
 * header in mode none and seal it; returns the datagram's length. */
static inline size_t raw_short(uint8_t *buf, uint8_t type, uint8_t flags,
			       const uint8_t *body, size_t blen)
{
	struct ferry_w2_dgram d = short_hdr(FERRY_W2_MODE_NONE, 1);
	size_t n = (size_t)ferry__w2_put_hdr(buf, 64, &d);

	n += ferry__w2_put_frame_hdr(buf + n, type, flags, (uint16_t)blen);
	if (blen)
		memcpy(buf + n, body, blen);
	n += blen;
	ferry__w2_put_crc(buf, n);
	return n + FERRY_W2_CRC_LEN;
}

/* Parse the header of @buf/@len (an exact heap copy) and check its frames;
 * returns the first error. */
static inline enum ferry_w2_err parse_all(const uint8_t *buf, size_t len)
{
	uint8_t *q = dup_exact(buf, len);
	struct ferry_w2_dgram d;
	struct ferry_w2_hs hs;
	enum ferry_w2_err e = ferry__w2_parse_hdr(q, len, &d);

	if (e == FERRY_W2_OK)
		e = d.is_long ? ferry__w2_hs_parse(&d, &hs)
			      : ferry__w2_check_frames(&d);
	free(q);
	return e;
}

#endif /* FERRY_TESTS_WIRE2_UTIL_H */
