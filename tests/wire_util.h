/* SPDX-License-Identifier: MIT */
/*
 * wire_util.h - shared fixtures of the wire codec unit tests
 * (tests/test_wire_*.c): a deterministic random source, the spec's flag
 * rules restated independently of transport/wire.c, valid headers of every
 * type, frames built into heap buffers of exactly their length (so that a
 * sanitizer build catches any read past the datagram), and CONNECT TLV
 * builders.
 *
 * Everything here is static: each test program gets its own copy, and
 * Criterion runs each case in its own process, so the random source starts
 * from the same state in every case, as it did when the tests were one file.
 */
#ifndef FERRY_TESTS_WIRE_UTIL_H
#define FERRY_TESTS_WIRE_UTIL_H

#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include <ferry/error.h>

#include "transport/wire.h"


#define HDR FERRY_WIRE_HDR_LEN
#define OFF_CSUM 40
#define BIG_MAX_MSG (8u << 20)

/* Deterministic xorshift64* so failures reproduce. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static inline uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Flags the spec allows per type (independent copy of the rule). */
static inline uint16_t allowed_flags(uint8_t type)
{
	switch (type) {
	case FERRY_FT_REQUEST:
		return FERRY_FF_CSUM | FERRY_FF_CAPS | FERRY_FF_TRACE;
	case FERRY_FT_RESPONSE:
		/* ... but never FF_ERR with FF_TRACE (flags_ok). */
		return FERRY_FF_CSUM | FERRY_FF_ERR | FERRY_FF_TRACE;
	case FERRY_FT_CLOSE:
	case FERRY_FT_PING:
		return FERRY_FF_CSUM | FERRY_FF_REPLY;
	default:
		return FERRY_FF_CSUM;
	}
}

/* A set of allowed flags that also passes the one rule across flags: an
 * error response carries no attribute block. */
static inline bool flags_ok(uint8_t type, uint16_t fl)
{
	return (fl & ~allowed_flags(type)) == 0 &&
	       (type != FERRY_FT_RESPONSE ||
		(fl & (FERRY_FF_ERR | FERRY_FF_TRACE)) !=
			(FERRY_FF_ERR | FERRY_FF_TRACE));
}

static inline bool is_fragmented_type(uint8_t type)
{
	return type == FERRY_FT_REQUEST || type == FERRY_FT_RESPONSE;
}

/*
 * A valid header of @type for a complete message of @pay_len bytes.  Every
 * field a type may legitimately carry is made nonzero, so a round trip
 * proves each one survives.
 */
static inline struct ferry_hdr valid_hdr(uint8_t type, uint32_t pay_len)
{
	struct ferry_hdr h;

	memset(&h, 0, sizeof(h));
	h.version = FERRY_WIRE_VERSION;
	h.type = type;
	h.dst_sess = type == FERRY_FT_CONNECT ? 0 : 0x11223344u;
	h.src_sess = 0x55667788u;
	h.ack = 0x0a0b0c0du;
	h.credit = 0x01020304u;
	h.msg_len = pay_len;
	if (is_fragmented_type(type)) {
		h.method = 0xbeefu;
		h.seq = 0xdeadbeefu;
		h.req_id = 0xcafef00du;
	}
	if (type == FERRY_FT_PUSH)
		h.seq = 0xdeadbeefu; /* a data frame, but one, of no call */
	return h;
}

/* Write the csum field (big-endian) for the frame in @buf. */
static inline void set_csum(uint8_t *buf, size_t len)
{
	uint32_t c = ferry__wire_csum(buf, buf + HDR, len - HDR);

	buf[OFF_CSUM + 0] = (uint8_t)(c >> 24);
	buf[OFF_CSUM + 1] = (uint8_t)(c >> 16);
	buf[OFF_CSUM + 2] = (uint8_t)(c >> 8);
	buf[OFF_CSUM + 3] = (uint8_t)c;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * Build header + payload into a fresh heap buffer of exactly the frame's
 * length; the checksum is filled in when the header asks for one.
 */
static inline uint8_t *build(const struct ferry_hdr *h, const void *pay,
			     size_t pay_len, size_t *len_out)
{
	size_t len = HDR + pay_len;
	uint8_t *buf = malloc(len);

	cr_assert_not_null(buf);
	ferry__wire_encode(h, buf);
	if (pay_len)
		memcpy(buf + HDR, pay, pay_len);
	if (h->flags & FERRY_FF_CSUM)
		set_csum(buf, len);
	*len_out = len;
	return buf;
}

/* Build and parse in one go; returns the parse result. */
static inline enum ferry_parse_err build_parse(const struct ferry_hdr *h,
					       const void *pay, size_t pay_len,
					       uint32_t max_msg)
{
	struct ferry_frame f;
	size_t len;
	uint8_t *buf = build(h, pay, pay_len, &len);
	enum ferry_parse_err e = ferry__wire_parse(buf, len, max_msg, &f);

	free(buf);
	return e;
}

static inline void assert_hdr_eq(const struct ferry_hdr *a,
				 const struct ferry_hdr *b, const char *what)
{
	cr_assert_eq(a->version, b->version, "%s: version", what);
	cr_assert_eq(a->type, b->type, "%s: type", what);
	cr_assert_eq(a->flags, b->flags, "%s: flags", what);
	cr_assert_eq(a->method, b->method, "%s: method", what);
	cr_assert_eq(a->dst_sess, b->dst_sess, "%s: dst_sess", what);
	cr_assert_eq(a->src_sess, b->src_sess, "%s: src_sess", what);
	cr_assert_eq(a->seq, b->seq, "%s: seq", what);
	cr_assert_eq(a->ack, b->ack, "%s: ack", what);
	cr_assert_eq(a->credit, b->credit, "%s: credit", what);
	cr_assert_eq(a->req_id, b->req_id, "%s: req_id", what);
	cr_assert_eq(a->msg_len, b->msg_len, "%s: msg_len", what);
	cr_assert_eq(a->frag_off, b->frag_off, "%s: frag_off", what);
}

static const char k_pay[] = "The quick brown fox jumps over the lazy dog";

/* --- CONNECT / ACCEPT TLV builders ---------------------------------------- */

static const char k_tp[] =
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
static const char k_ts[] = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

static inline struct ferry_params good_params(void)
{
	struct ferry_params p = {
		.max_msg = 1u << 20,
		.credits = 64,
		.max_frame = 9000,
		.slots = 128,
	};
	return p;
}

/* Append one TLV; returns the new end. */
static inline uint8_t *tlv(uint8_t *p, uint8_t type, uint8_t rsvd,
			   uint16_t len, const void *v, size_t vlen)
{
	*p++ = type;
	*p++ = rsvd;
	put_be16(p, len);
	p += 2;
	if (vlen)
		memcpy(p, v, vlen);
	return p + vlen;
}

static inline void params_bytes(uint8_t out[16],
				const struct ferry_params *pr)
{
	put_be32(out, pr->max_msg);
	put_be32(out + 4, pr->credits);
	put_be16(out + 8, pr->max_frame);
	put_be16(out + 10, pr->slots);
	put_be32(out + 12, 0);
}

static inline uint8_t *params_tlv(uint8_t *p, const struct ferry_params *pr)
{
	uint8_t v[16];

	params_bytes(v, pr);
	return tlv(p, FERRY_TLV_PARAMS, 0, 16, v, 16);
}

#endif /* FERRY_TESTS_WIRE_UTIL_H */
