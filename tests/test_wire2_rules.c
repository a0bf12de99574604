/* SPDX-License-Identifier: MIT */
/*
 * test_wire2_rules.c - the rules of the wire v2 codec (docs/wire.md
 * sections 2 to 4), one case per parse error of enum ferry_w2_err at
 * least, with the boundary each rule draws tested from both sides; packet
 * number reconstruction at the window's edges and across 2^32; ACK ranges
 * walked down to pn 0; and the counter each error counts in.
 */
#include "wire2_util.h"

#include "transport/stats.h"

/* A short-header (or, @is_long, RETRY) datagram in mode none with one raw
 * frame, parsed, CRC checked and its frames checked (rule 7 only). */
static enum ferry_w2_err frame_err_in(bool is_long, uint8_t type,
				      uint8_t flags, const uint8_t *body,
				      size_t blen)
{
	struct ferry_w2_dgram d = is_long ? long_hdr(FERRY_W2_RETRY)
					  : short_hdr(FERRY_W2_MODE_NONE, 1);
	uint8_t *buf = malloc(18 + 4 + blen + 4), *q;
	size_t n = (size_t)ferry__w2_put_hdr(buf, 18, &d);
	enum ferry_w2_err e;

	n += ferry__w2_put_frame_hdr(buf + n, type, flags, (uint16_t)blen);
	if (blen)
		memcpy(buf + n, body, blen);
	n += blen;
	ferry__w2_put_crc(buf, n);
	n += 4;
	q = dup_exact(buf, n);
	free(buf);
	e = ferry__w2_parse_hdr(q, n, &d);
	cr_assert_eq(e, FERRY_W2_OK);
	cr_assert(ferry__w2_crc_ok(&d));
	e = ferry__w2_check_frames(&d);
	free(q);
	return e;
}

static enum ferry_w2_err frame_err(uint8_t type, uint8_t flags,
				   const uint8_t *body, size_t blen)
{
	return frame_err_in(type >= FERRY_W2_HELLO && type <= FERRY_W2_ERROR,
			    type, flags, body, blen);
}

#define ASSERT_FRAME(want, type, flags, body, blen)                            \
	cr_assert_eq(frame_err(type, flags, body, blen), want,                 \
		     "type %#x flags %#x len %zu: got %s", type, flags,          \
		     (size_t)(blen),                                             \
		     ferry__w2_err_name(frame_err(type, flags, body, blen)))

static uint8_t zeros[1024];

/* --- header rules ----------------------------------------------------------- */

Test(wire2_hdr_rules, forms_by_first_byte)
{
	uint8_t b[64] = {0};
	struct ferry_w2_dgram d;

	for (unsigned first = 0; first < 0x80; first++) {
		b[0] = (uint8_t)first;
		cr_assert_eq(ferry__w2_parse_hdr(b, sizeof(b), &d),
			     first == 0x46 ? FERRY_W2_E_V1_FORM
					   : FERRY_W2_E_BAD_FORM,
			     "first byte %#x", first);
	}
	cr_assert_eq(ferry__w2_parse_hdr(b, 0, &d), FERRY_W2_E_TRUNCATED);
}

Test(wire2_hdr_rules, truncated_by_form_and_trailer)
{
	uint8_t b[64] = {0};
	struct ferry_w2_dgram d;

	/* Short: header, an empty frame and the trailer its mode names. */
	b[0] = 0x80;
	cr_assert_eq(ferry__w2_parse_hdr(b, 20, &d), FERRY_W2_E_TRUNCATED);
	cr_assert_eq(ferry__w2_parse_hdr(b, 21, &d), FERRY_W2_OK);
	b[0] = 0x81;
	cr_assert_eq(ferry__w2_parse_hdr(b, 32, &d), FERRY_W2_E_TRUNCATED);
	cr_assert_eq(ferry__w2_parse_hdr(b, 33, &d), FERRY_W2_OK);
	b[0] = 0x82;
	cr_assert_eq(ferry__w2_parse_hdr(b, 32, &d), FERRY_W2_E_TRUNCATED);
	/* Long: RETRY has a CRC, ACCEPT a tag. */
	memcpy(b, "\xc1\x02\x01", 3);
	cr_assert_eq(ferry__w2_parse_hdr(b, 1, &d), FERRY_W2_E_TRUNCATED);
	cr_assert_eq(ferry__w2_parse_hdr(b, 25, &d), FERRY_W2_E_TRUNCATED);
	cr_assert_eq(ferry__w2_parse_hdr(b, 26, &d), FERRY_W2_OK);
	memcpy(b, "\xc2\x02\x01\x00\x00\x00\x00\x00\x00\x00\x02", 11);
	cr_assert_eq(ferry__w2_parse_hdr(b, 37, &d), FERRY_W2_E_TRUNCATED);
	cr_assert_eq(ferry__w2_parse_hdr(b, 38, &d), FERRY_W2_OK);
}

Test(wire2_hdr_rules, oversized_past_65507)
{
	uint8_t *b = calloc(1, 65508);
	struct ferry_w2_dgram d;

	b[0] = 0x80;
	cr_assert_eq(ferry__w2_parse_hdr(b, 65507, &d), FERRY_W2_OK);
	cr_assert_eq(ferry__w2_parse_hdr(b, 65508, &d), FERRY_W2_E_OVERSIZED);
	memcpy(b, "\xc1\x02\x01", 3);
	cr_assert_eq(ferry__w2_parse_hdr(b, 65507, &d), FERRY_W2_OK);
	cr_assert_eq(ferry__w2_parse_hdr(b, 65508, &d), FERRY_W2_E_OVERSIZED);
	free(b);
}

Test(wire2_hdr_rules, short_mode_11_is_invalid)
{
	uint8_t b[64] = {0x83};
	struct ferry_w2_dgram d;

	cr_assert_eq(ferry__w2_parse_hdr(b, sizeof(b), &d), FERRY_W2_E_BAD_MODE);
	/* Reserved bits 4-2 and the key phase are not the codec's to refuse. */
	b[0] = 0xbe;
	cr_assert_eq(ferry__w2_parse_hdr(b, sizeof(b), &d), FERRY_W2_OK);
	cr_assert_eq(d.mode, 2);
	cr_assert_eq(d.reserved, 7);
	cr_assert(d.key_phase);
}

Test(wire2_hdr_rules, long_version_reserved_and_type)
{
	uint8_t b[64] = {0};
	struct ferry_w2_dgram d;
	static const uint8_t bad_versions[] = {0, 1, 3, 0xff};

	b[0] = 0xc1;
	b[2] = 1; /* DCID */
	for (size_t i = 0; i < sizeof(bad_versions); i++) {
		b[1] = bad_versions[i];
		cr_assert_eq(ferry__w2_parse_hdr(b, sizeof(b), &d),
			     FERRY_W2_E_BAD_VERSION);
	}
	b[1] = 2;
	/* The version is judged first: a later one may lay out the rest
	 * differently. */
	b[0] = 0xff;
	b[1] = 3;
	cr_assert_eq(ferry__w2_parse_hdr(b, sizeof(b), &d), FERRY_W2_E_BAD_VERSION);
	b[1] = 2;
	for (unsigned r = 1; r < 4; r++) {
		b[0] = (uint8_t)(0xc1 | r << 4);
		cr_assert_eq(ferry__w2_parse_hdr(b, sizeof(b), &d),
			     FERRY_W2_E_LONG_RSVD);
	}
	for (unsigned t = 4; t < 16; t++) {
		b[0] = (uint8_t)(0xc0 | t);
		cr_assert_eq(ferry__w2_parse_hdr(b, sizeof(b), &d),
			     FERRY_W2_E_BAD_LTYPE, "type %u", t);
	}
}

static enum ferry_w2_err cid_err(uint8_t type, uint64_t dcid, uint64_t scid)
{
	struct ferry_w2_dgram d = long_hdr(type);
	uint8_t b[512] = {0};

	d.dcid = dcid;
	d.scid = scid;
	ferry__w2_put_hdr(b, sizeof(b), &d);
	return ferry__w2_parse_hdr(b, sizeof(b), &d);
}

Test(wire2_hdr_rules, cids_as_each_type_requires)
{
	const enum ferry_w2_err bad = FERRY_W2_E_BAD_CID, ok = FERRY_W2_OK;

	cr_assert_eq(cid_err(FERRY_W2_CONNECT, 0, CCID), ok);
	cr_assert_eq(cid_err(FERRY_W2_CONNECT, 1, CCID), bad);
	cr_assert_eq(cid_err(FERRY_W2_CONNECT, 0, 0), bad);
	/* The client CID's low half is its v1 envelope id: never 0. */
	cr_assert_eq(cid_err(FERRY_W2_CONNECT, 0, 0x100000000ull), bad);
	cr_assert_eq(cid_err(FERRY_W2_CONNECT, 0, 1), ok);
	for (uint8_t t = FERRY_W2_RETRY; t <= FERRY_W2_REFUSE; t += 2) {
		cr_assert_eq(cid_err(t, CCID, 0), ok);
		cr_assert_eq(cid_err(t, 0, 0), bad);
		cr_assert_eq(cid_err(t, CCID, DCID), bad);
	}
	cr_assert_eq(cid_err(FERRY_W2_ACCEPT, CCID, DCID), ok);
	cr_assert_eq(cid_err(FERRY_W2_ACCEPT, 0, DCID), bad);
	cr_assert_eq(cid_err(FERRY_W2_ACCEPT, CCID, 0), bad);
}

Test(wire2_hdr_rules, bare_connect_is_at_least_512)
{
	struct ferry_w2_dgram d = long_hdr(FERRY_W2_CONNECT);
	uint8_t b[512] = {0};

	ferry__w2_put_hdr(b, sizeof(b), &d);
	cr_assert_eq(ferry__w2_parse_hdr(b, 511, &d), FERRY_W2_E_CONNECT_SHORT);
	cr_assert_eq(ferry__w2_parse_hdr(b, 512, &d), FERRY_W2_OK);
}

/* --- frame rules (section 2.4 rule 7, section 3) --------------------------- */

Test(wire2_frame_rules, frames_fill_the_space_exactly)
{
	uint8_t b[64];
	size_t n;

	/* A PING then 1..3 stray bytes: no room for a frame header. */
	for (size_t extra = 1; extra < 4; extra++) {
		n = raw_short(b, FERRY_W2_PING, 0, NULL, 0);
		/* Grow the frame area by @extra bytes, re-seal. */
		memset(b + n - 4, 0, extra);
		n += extra - 4;
		ferry__w2_put_crc(b, n);
		cr_assert_eq(parse_all(b, n + 4), FERRY_W2_E_FRAME_TRUNC,
			     "extra %zu", extra);
	}
	/* A length past the trailer. */
	n = raw_short(b, FERRY_W2_CREDIT, 0, zeros, 4);
	b[13 + 3] = 5;
	ferry__w2_put_crc(b, n - 4);
	cr_assert_eq(parse_all(b, n), FERRY_W2_E_FRAME_OVERRUN);
	b[13 + 2] = 0xff;
	ferry__w2_put_crc(b, n - 4);
	cr_assert_eq(parse_all(b, n), FERRY_W2_E_FRAME_OVERRUN);
}

Test(wire2_frame_rules, unknown_types_below_0x80)
{
	static const uint8_t unknown[] = {0x05, 0x06, 0x07, 0x0d, 0x0e, 0x1f,
					  0x29, 0x3f, 0x40, 0x55, 0x7f};

	/* 0x0d (RENEW) has no layout yet; 0x40..0x7f are critical
	 * extensions: a receiver that does not know one cannot go on. */
	for (size_t i = 0; i < sizeof(unknown); i++) {
		cr_assert_eq(frame_err_in(false, unknown[i], 0, NULL, 0),
			     FERRY_W2_E_UNKNOWN_TYPE, "%#x", unknown[i]);
		cr_assert_eq(frame_err_in(true, unknown[i], 0, NULL, 0),
			     FERRY_W2_E_UNKNOWN_TYPE, "%#x", unknown[i]);
	}
}

Test(wire2_frame_rules, types_in_the_wrong_header_form)
{
	for (uint8_t t = FERRY_W2_PING; t <= FERRY_W2_PUSH; t++)
		if (t < 0x05 || t > 0x07)
			cr_assert_eq(frame_err_in(true, t, 0, zeros, 64),
				     FERRY_W2_E_WRONG_FORM, "%#x", t);
	for (uint8_t t = FERRY_W2_HELLO; t <= FERRY_W2_ERROR; t++)
		cr_assert_eq(frame_err_in(false, t, 0, zeros, 64),
			     FERRY_W2_E_WRONG_FORM, "%#x", t);
	/* PADDING goes anywhere. */
	cr_assert_eq(frame_err_in(true, FERRY_W2_PADDING, 0, zeros, 3), FERRY_W2_OK);
	cr_assert_eq(frame_err_in(false, FERRY_W2_PADDING, 0, zeros, 3),
		     FERRY_W2_OK);
}

/* A body of @len bytes that every decoder accepts for @type. */
static size_t valid_body(uint8_t type, uint8_t *b)
{
	memset(b, 0, 64);
	switch (type) {
	case FERRY_W2_ACK: return 8;
	case FERRY_W2_CREDIT: return 4;
	case FERRY_W2_CLOSE: return 6;
	case FERRY_W2_REQUEST: b[3] = 1; return 6;
	case FERRY_W2_REQUEST_FRAG: b[3] = 1; b[9] = 1; return 15;
	case FERRY_W2_RESPONSE: b[3] = 1; return 4;
	case FERRY_W2_RESPONSE_FRAG: b[3] = 1; b[7] = 1; return 13;
	case FERRY_W2_PING: return 0;
	default: return 0;
	}
}

Test(wire2_frame_rules, flags_each_type_does_not_define)
{
	static const struct {
		uint8_t type, flags;
	} known[] = {
		{FERRY_W2_PADDING, 0}, {FERRY_W2_PING, 0}, {FERRY_W2_ACK, 1},
		{FERRY_W2_CREDIT, 0}, {FERRY_W2_CLOSE, 1}, {FERRY_W2_REQUEST, 3},
		{FERRY_W2_REQUEST_FRAG, 3}, {FERRY_W2_RESPONSE, 3},
		{FERRY_W2_RESPONSE_FRAG, 2}, {FERRY_W2_PUSH, 0},
	};
	uint8_t body[64];

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		for (unsigned bit = 0; bit < 8; bit++) {
			uint8_t fl = (uint8_t)(1u << bit);
			size_t n = valid_body(known[i].type, body);

			if (fl & known[i].flags)
				continue;
			ASSERT_FRAME(FERRY_W2_E_BAD_FLAGS, known[i].type, fl,
				     body, n);
		}
	for (uint8_t t = FERRY_W2_HELLO; t <= FERRY_W2_ERROR; t++)
		for (unsigned bit = 0; bit < 8; bit++)
			ASSERT_FRAME(FERRY_W2_E_BAD_FLAGS, t, (uint8_t)(1u << bit),
				     zeros, 0);
}

Test(wire2_frame_rules, response_err_never_with_trace)
{
	uint8_t body[16] = {0, 0, 0, 1, 0, 0, 0, 5, 0, 0};

	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_RESPONSE, FERRY_W2_F_ERR, body, 10);
	ASSERT_FRAME(FERRY_W2_E_ERR_TRACE, FERRY_W2_RESPONSE,
		     FERRY_W2_F_ERR | FERRY_W2_F_TRACE, body, 10);
}

Test(wire2_frame_rules, body_lengths_each_type_allows)
{
	static const struct {
		uint8_t type, flags;
		uint16_t bad;
	} cases[] = {
		{FERRY_W2_PING, 0, 1}, {FERRY_W2_ACK, 0, 7}, {FERRY_W2_ACK, 0, 9},
		{FERRY_W2_ACK, 0, 8 + 4 * 33}, {FERRY_W2_ACK, 1, 8},
		{FERRY_W2_ACK, 1, 19}, {FERRY_W2_ACK, 1, 22},
		{FERRY_W2_ACK, 1, 20 + 4 * 33}, {FERRY_W2_CREDIT, 0, 3},
		{FERRY_W2_CREDIT, 0, 5}, {FERRY_W2_CLOSE, 0, 5},
		{FERRY_W2_REQUEST, 0, 5}, {FERRY_W2_REQUEST_FRAG, 0, 13},
		{FERRY_W2_RESPONSE, 0, 3}, {FERRY_W2_RESPONSE, 1, 9},
		{FERRY_W2_RESPONSE_FRAG, 0, 11}, {FERRY_W2_PUSH, 0, 19},
		{FERRY_W2_HELLO, 0, 35}, {FERRY_W2_HELLO, 0, 37},
		{FERRY_W2_PARAMS, 0, 15}, {FERRY_W2_PARAMS, 0, 17},
		{FERRY_W2_FEATURES, 0, 3}, {FERRY_W2_FEATURES, 0, 5},
		{FERRY_W2_COOKIE, 0, 19}, {FERRY_W2_COOKIE, 0, 21},
		{FERRY_W2_TOKEN, 0, 0}, {FERRY_W2_POP, 0, 15},
		{FERRY_W2_POP, 0, 17}, {FERRY_W2_TRACEPARENT, 0, 54},
		{FERRY_W2_TRACEPARENT, 0, 56}, {FERRY_W2_TRACESTATE, 0, 513},
		{FERRY_W2_ERROR, 0, 5},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ASSERT_FRAME(FERRY_W2_E_BAD_LEN, cases[i].type, cases[i].flags,
			     zeros, cases[i].bad);
	/* Both edges of the ACK's range count. */
	ASSERT_FRAME(FERRY_W2_E_ACK_ZERO, FERRY_W2_ACK, 0, zeros, 8 + 4 * 32);
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_ACK, 1, zeros, 20);
}

Test(wire2_frame_rules, ids_are_never_0)
{
	uint8_t b[32] = {0};

	ASSERT_FRAME(FERRY_W2_E_ZERO_ID, FERRY_W2_REQUEST, 0, b, 6);
	ASSERT_FRAME(FERRY_W2_E_ZERO_ID, FERRY_W2_RESPONSE, 0, b, 4);
	b[7] = 1;  /* msg_len 1 */
	ASSERT_FRAME(FERRY_W2_E_ZERO_ID, FERRY_W2_RESPONSE_FRAG, 0, b, 13);
	b[9] = 1;
	ASSERT_FRAME(FERRY_W2_E_ZERO_ID, FERRY_W2_REQUEST_FRAG, 0, b, 15);
	/* push_id 0, then a valid record (code 5, no token). */
	memset(b, 0, sizeof(b));
	b[4 + 11] = 5;
	ASSERT_FRAME(FERRY_W2_E_ZERO_ID, FERRY_W2_PUSH, 0, b, 20);
	b[3] = 1;
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_PUSH, 0, b, 20);
}

/* A REQUEST_FRAG body with @msg_len, @off and @n bytes. */
static size_t frag(uint8_t *b, uint32_t msg_len, uint32_t off, size_t n)
{
	ferry_wr_u32(b, 7);
	ferry_wr_u16(b + 4, 1);
	ferry_wr_u32(b + 6, msg_len);
	ferry_wr_u32(b + 10, off);
	memset(b + 14, 0xab, n);
	return 14 + n;
}

Test(wire2_frame_rules, fragment_msg_len_and_range)
{
	uint8_t b[64];
	const uint8_t t = FERRY_W2_REQUEST_FRAG;

	ASSERT_FRAME(FERRY_W2_E_FRAG_MSG_LEN, t, 0, b, frag(b, 0, 0, 1));
	ASSERT_FRAME(FERRY_W2_E_FRAG_MSG_LEN, t, 0, b,
		     frag(b, (1u << 30) + 1, 0, 1));
	ASSERT_FRAME(FERRY_W2_OK, t, 0, b, frag(b, 1u << 30, 0, 1));
	ASSERT_FRAME(FERRY_W2_E_FRAG_RANGE, t, 0, b, frag(b, 10, 0, 0));
	ASSERT_FRAME(FERRY_W2_E_FRAG_RANGE, t, 0, b, frag(b, 10, 5, 6));
	ASSERT_FRAME(FERRY_W2_OK, t, 0, b, frag(b, 10, 5, 5));
	/* A 32-bit offset near 4 GiB must not wrap past msg_len. */
	ASSERT_FRAME(FERRY_W2_E_FRAG_RANGE, t, 0, b,
		     frag(b, 1u << 30, 0xffffffffu, 1));
	ASSERT_FRAME(FERRY_W2_E_FRAG_RANGE, FERRY_W2_RESPONSE_FRAG, 0, b + 2,
		     frag(b, 10, 5, 6) - 2);
}

Test(wire2_frame_rules, ack_gap_and_count_are_at_least_1)
{
	uint8_t b[32] = {0};

	ferry_wr_u16(b + 8, 1);
	ferry_wr_u16(b + 10, 1);
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_ACK, 0, b, 12);
	ferry_wr_u16(b + 8, 0);
	ASSERT_FRAME(FERRY_W2_E_ACK_ZERO, FERRY_W2_ACK, 0, b, 12);
	ferry_wr_u16(b + 8, 1);
	ferry_wr_u16(b + 10, 0);
	ASSERT_FRAME(FERRY_W2_E_ACK_ZERO, FERRY_W2_ACK, 0, b, 12);
}

/* An error body of @code and @n text bytes, @extra bytes more. */
static size_t errbody(uint8_t *b, uint32_t code, uint16_t n, size_t extra)
{
	ferry_wr_u32(b, code);
	ferry_wr_u16(b + 4, n);
	memset(b + 6, 'x', n + extra);
	return 6 + n + extra;
}

Test(wire2_frame_rules, error_bodies)
{
	uint8_t b[600];
	const enum ferry_w2_err bad = FERRY_W2_E_ERROR_BODY;

	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_CLOSE, 0, b, errbody(b, 0, 0, 0));
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_CLOSE, 1, b,
		     errbody(b, 0x7fffffffu, 256, 0));
	ASSERT_FRAME(bad, FERRY_W2_CLOSE, 0, b, errbody(b, 0x80000000u, 0, 0));
	ASSERT_FRAME(bad, FERRY_W2_CLOSE, 0, b, errbody(b, 1, 257, 0));
	ASSERT_FRAME(bad, FERRY_W2_CLOSE, 0, b, errbody(b, 1, 3, 1));
	ASSERT_FRAME(bad, FERRY_W2_CLOSE, 0, b, errbody(b, 1, 3, 0) - 1);
	/* ERROR and an error RESPONSE fail a call: code 0 is no error. */
	ASSERT_FRAME(bad, FERRY_W2_ERROR, 0, b, errbody(b, 0, 0, 0));
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_ERROR, 0, b, errbody(b, 1, 0, 0));
	ferry_wr_u32(b, 9);
	ASSERT_FRAME(bad, FERRY_W2_RESPONSE, FERRY_W2_F_ERR, b,
		     4 + errbody(b + 4, 0, 2, 0));
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_RESPONSE, FERRY_W2_F_ERR, b,
		     4 + errbody(b + 4, 2, 2, 0));
}

Test(wire2_frame_rules, push_records)
{
	struct ferry_push ok = {.iou = 1, .code = 0,
				.token = (const uint8_t *)"t", .token_len = 1};
	uint8_t b[128] = {0};
	size_t n = 4;

	ferry_wr_u32(b, 1);
	n += (size_t)ferry__wire_put_push(b + n, sizeof(b) - n, &ok);
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_PUSH, 0, b, n);
	/* Records must fill the body exactly. */
	b[n] = 0;
	ASSERT_FRAME(FERRY_W2_E_PUSH_RECORD, FERRY_W2_PUSH, 0, b, n + 1);
	ASSERT_FRAME(FERRY_W2_E_PUSH_RECORD, FERRY_W2_PUSH, 0, b, n + 16);
	/* A record's own rules are v1's: reserved 0, token with code 0. */
	b[4 + 15] = 1;
	ASSERT_FRAME(FERRY_W2_E_PUSH_RECORD, FERRY_W2_PUSH, 0, b, n);
	b[4 + 15] = 0;
	b[4 + 11] = 3; /* code 3 with a token */
	ASSERT_FRAME(FERRY_W2_E_PUSH_RECORD, FERRY_W2_PUSH, 0, b, n);
}

Test(wire2_frame_rules, hello_fields)
{
	uint8_t b[36] = {0, 4, 1, 0};

	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_HELLO, 0, b, 36);
	b[3] = 1;
	ASSERT_FRAME(FERRY_W2_E_RESERVED, FERRY_W2_HELLO, 0, b, 36);
	b[3] = 0;
	b[2] = 3;
	ASSERT_FRAME(FERRY_W2_E_HELLO, FERRY_W2_HELLO, 0, b, 36);
	b[2] = 2;
	ASSERT_FRAME(FERRY_W2_OK, FERRY_W2_HELLO, 0, b, 36);
	b[1] = 0;
	ASSERT_FRAME(FERRY_W2_E_HELLO, FERRY_W2_HELLO, 0, b, 36);
}

static void params(uint8_t *b, uint32_t max_msg, uint32_t window,
		   uint16_t max_frame, uint16_t slots, uint8_t log2)
{
	ferry_wr_u32(b, max_msg);
	ferry_wr_u32(b + 4, window);
	ferry_wr_u16(b + 8, max_frame);
	ferry_wr_u16(b + 10, slots);
	ferry_wr_u16(b + 12, 1000);
	b[14] = log2;
	b[15] = 0;
}

Test(wire2_frame_rules, params_ranges_both_edges)
{
	static const struct {
		uint32_t max_msg, window;
		uint16_t max_frame, slots;
		uint8_t log2;
		bool ok;
	} cases[] = {
		{1, 4096, 1200, 1, 6, true},
		{1u << 30, 1u << 30, 65507, 65535, 16, true},
		{0, 4096, 1200, 1, 6, false},
		{(1u << 30) + 1, 4096, 1200, 1, 6, false},
		{1, 4095, 1200, 1, 6, false},
		{1, (1u << 30) + 1, 1200, 1, 6, false},
		{1, 4096, 1199, 1, 6, false},
		{1, 4096, 65508, 1, 6, false},
		{1, 4096, 1200, 0, 6, false},
		{1, 4096, 1200, 1, 5, false},
		{1, 4096, 1200, 1, 17, false},
	};
	uint8_t b[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		params(b, cases[i].max_msg, cases[i].window, cases[i].max_frame,
		       cases[i].slots, cases[i].log2);
		ASSERT_FRAME(cases[i].ok ? FERRY_W2_OK : FERRY_W2_E_PARAMS,
			     FERRY_W2_PARAMS, 0, b, 16);
	}
	params(b, 1, 4096, 1200, 1, 6);
	b[15] = 1;
	ASSERT_FRAME(FERRY_W2_E_RESERVED, FERRY_W2_PARAMS, 0, b, 16);
}

/* --- handshake message rules (section 4.1) ---------------------------------- */

static const uint8_t k_pk[32] = {9};

static struct ferry_w2_frame hsf(uint8_t type)
{
	static const uint8_t mac[16] = {1};
	struct ferry_w2_frame f = {.type = type};

	switch (type) {
	case FERRY_W2_HELLO:
		f.u.hello = (struct ferry_w2_hello){4, 1, k_pk};
		break;
	case FERRY_W2_PARAMS:
		f.u.params = (struct ferry_w2_params){1 << 20, 1 << 20, 1472, 8,
						      1000, 11};
		break;
	case FERRY_W2_COOKIE:
		f.u.cookie = (struct ferry_w2_cookie){1, mac};
		break;
	case FERRY_W2_TOKEN:
	case FERRY_W2_POP:
		f.u.blob = (struct ferry_w2_blob){mac, 16};
		break;
	case FERRY_W2_ERROR:
		f.u.err = (struct ferry_w2_errbody){1, NULL, 0};
		break;
	case FERRY_W2_TRACEPARENT:
		f.u.blob = (struct ferry_w2_blob){zeros, FERRY_TRACEPARENT_LEN};
		break;
	default:
		break;
	}
	return f;
}

/* The message of @ltype with frames of @types (0xff: a 3-byte padding),
 * padded to 512; returns ferry__w2_hs_parse()'s verdict. */
static enum ferry_w2_err hs_err(uint8_t ltype, const uint8_t *types,
				unsigned n, struct ferry_w2_hs *hs)
{
	struct ferry_w2_dgram d = long_hdr(ltype), o;
	struct ferry_w2_builder b;
	uint8_t buf[512];
	enum ferry_w2_err e;
	int len;

	cr_assert_eq(ferry__w2_build_begin(&b, buf, sizeof(buf), &d), 0);
	for (unsigned i = 0; i < n; i++) {
		struct ferry_w2_frame f = hsf(types[i]);

		if (types[i] == 0xff) {
			f.type = FERRY_W2_PADDING;
			f.u.blob.len = 3;
		}
		cr_assert_eq(ferry__w2_build_frame(&b, &f), 0);
	}
	cr_assert_eq(ferry__w2_build_pad(&b, 512), 0);
	len = ferry__w2_build_end(&b);
	cr_assert_eq(ferry__w2_parse_hdr(buf, (size_t)len, &o), FERRY_W2_OK);
	e = ferry__w2_hs_parse(&o, hs);
	if (e == FERRY_W2_OK)
		cr_assert_eq(hs->pop == NULL ? 0 : hs->pop - buf - 4,
			     (long)hs->pop_covered);
	return e;
}

#define HS(ltype, want, ...)                                                   \
	do {                                                                   \
		static const uint8_t t_[] = {__VA_ARGS__};                     \
		struct ferry_w2_hs hs_;                                        \
		enum ferry_w2_err e_ = hs_err(ltype, t_, sizeof(t_), &hs_);    \
		cr_assert_eq(e_, want, "line %d: got %s", __LINE__,            \
			     ferry__w2_err_name(e_));                          \
	} while (0)

enum {
	HE = FERRY_W2_HELLO, PA = FERRY_W2_PARAMS, FE = FERRY_W2_FEATURES,
	CO = FERRY_W2_COOKIE, TO = FERRY_W2_TOKEN, PO = FERRY_W2_POP,
	TP = FERRY_W2_TRACEPARENT, TS = FERRY_W2_TRACESTATE,
	ER = FERRY_W2_ERROR, PD = 0xff, EX = 0x80,
};

Test(wire2_hs_rules, valid_messages)
{
	struct ferry_w2_hs hs;
	static const uint8_t full[] = {HE, CO, PD, PA, FE, EX, TP, TS, TO, PO};

	HS(FERRY_W2_CONNECT, FERRY_W2_OK, HE, PA);
	HS(FERRY_W2_CONNECT, FERRY_W2_OK, HE, CO, PA, FE, TO, PO);
	HS(FERRY_W2_RETRY, FERRY_W2_OK, CO);
	HS(FERRY_W2_ACCEPT, FERRY_W2_OK, HE, PA, FE);
	HS(FERRY_W2_ACCEPT, FERRY_W2_OK, HE, PD, FE, PA);
	HS(FERRY_W2_REFUSE, FERRY_W2_OK, ER);
	cr_assert_eq(hs_err(FERRY_W2_CONNECT, full, sizeof(full), &hs),
		     FERRY_W2_OK);
	cr_assert_eq(hs.have, 0x1ffu & ~(1u << (ER - HE)));
	/* POP covers every byte before its own frame header. */
	cr_assert_eq(hs.pop_covered, 18 + 40 + 24 + 7 + 20 + 8 + 4 + 59 + 4 + 20);
	cr_assert_not_null(hs.pop);
}

Test(wire2_hs_rules, each_frame_at_most_once)
{
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_DUP, HE, PA, PA);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_DUP, HE, PA, FE, FE);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_DUP, HE, CO, PA, CO);
	HS(FERRY_W2_REFUSE, FERRY_W2_E_HS_DUP, ER, ER);
}

Test(wire2_hs_rules, required_frames)
{
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_MISSING, HE);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_MISSING, PD);
	HS(FERRY_W2_RETRY, FERRY_W2_E_HS_MISSING, PD);
	HS(FERRY_W2_ACCEPT, FERRY_W2_E_HS_MISSING, HE, FE);
	HS(FERRY_W2_REFUSE, FERRY_W2_E_HS_MISSING, PD);
}

Test(wire2_hs_rules, frames_a_message_may_not_carry)
{
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_UNEXPECTED, HE, PA, ER);
	HS(FERRY_W2_RETRY, FERRY_W2_E_HS_UNEXPECTED, CO, HE);
	HS(FERRY_W2_ACCEPT, FERRY_W2_E_HS_UNEXPECTED, HE, PA, CO);
	HS(FERRY_W2_ACCEPT, FERRY_W2_E_HS_UNEXPECTED, HE, PA, TO);
	HS(FERRY_W2_ACCEPT, FERRY_W2_E_HS_UNEXPECTED, HE, PA, TP);
	HS(FERRY_W2_REFUSE, FERRY_W2_E_HS_UNEXPECTED, ER, PA);
}

Test(wire2_hs_rules, order_hello_cookie_pop)
{
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_ORDER, PA, HE);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_ORDER, EX, HE, PA);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_ORDER, HE, PA, CO);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_ORDER, HE, PA, TO, PO, FE);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_ORDER, HE, PA, TO, PO, EX);
	/* Padding may come anywhere, before HELLO and after POP too. */
	HS(FERRY_W2_CONNECT, FERRY_W2_OK, PD, HE, PD, CO, PA, TO, PO, PD);
}

Test(wire2_hs_rules, frame_rules_before_message_rules)
{
	struct ferry_w2_dgram d = long_hdr(FERRY_W2_REFUSE), o;
	struct ferry_w2_frame fs[2] = {hsf(CO), hsf(ER)};
	struct ferry_w2_hs hs;
	uint8_t buf[128];
	size_t n = build(buf, sizeof(buf), &d, fs, 2);

	/* A COOKIE REFUSE may not carry, then a bad ERROR: the frame rule
	 * decides, whatever the order. */
	cr_assert_eq(ferry__w2_parse_hdr(buf, n, &o), FERRY_W2_OK);
	cr_assert_eq(ferry__w2_hs_parse(&o, &hs), FERRY_W2_E_HS_UNEXPECTED);
	buf[18 + 24 + 4 + 3] = 0; /* ERROR code 0 */
	ferry__w2_put_crc(buf, n - 4);
	cr_assert_eq(ferry__w2_parse_hdr(buf, n, &o), FERRY_W2_OK);
	cr_assert_eq(ferry__w2_hs_parse(&o, &hs), FERRY_W2_E_ERROR_BODY);
}

Test(wire2_hs_rules, pop_exactly_with_token)
{
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_POP, HE, PA, TO);
	HS(FERRY_W2_CONNECT, FERRY_W2_E_HS_POP, HE, PA, PO);
}

Test(wire2_hs_rules, accept_names_one_version)
{
	struct ferry_w2_dgram d = long_hdr(FERRY_W2_ACCEPT), o;
	struct ferry_w2_frame fs[3] = {hsf(HE), hsf(PA), hsf(PD)};
	struct ferry_w2_hs hs;
	uint8_t buf[512];
	size_t n;

	fs[0].u.hello.versions = 0x0006;
	n = build(buf, sizeof(buf), &d, fs, 2);
	cr_assert_eq(ferry__w2_parse_hdr(buf, n, &o), FERRY_W2_OK);
	cr_assert_eq(ferry__w2_hs_parse(&o, &hs), FERRY_W2_E_HS_VERSION);
	fs[0].u.hello.versions = 0x0004;
	n = build(buf, sizeof(buf), &d, fs, 2);
	cr_assert_eq(ferry__w2_parse_hdr(buf, n, &o), FERRY_W2_OK);
	cr_assert_eq(ferry__w2_hs_parse(&o, &hs), FERRY_W2_OK);
	/* A client offers several. */
	d = long_hdr(FERRY_W2_CONNECT);
	fs[0].u.hello.versions = 0x0006;
	fs[2].type = FERRY_W2_PADDING;
	fs[2].u.blob = (struct ferry_w2_blob){NULL, 512 - 18 - 40 - 20 - 4 - 4};
	n = build(buf, sizeof(buf), &d, fs, 3);
	cr_assert_eq(ferry__w2_parse_hdr(buf, n, &o), FERRY_W2_OK);
	cr_assert_eq(ferry__w2_hs_parse(&o, &hs), FERRY_W2_OK);
}

/* --- the envelope (section 4.2) ----------------------------------------------- */

static const struct ferry_params k_v1 = {8u << 20, 128, 1472, 128};

/* A valid enveloped CONNECT of @total bytes into @buf. */
static size_t envelope(uint8_t *buf, size_t total)
{
	static const uint8_t types[] = {HE, PA};
	struct ferry_w2_dgram d = long_hdr(FERRY_W2_CONNECT);
	struct ferry_w2_builder b;
	int n;

	cr_assert_eq(ferry__w2_build_begin(&b, buf + FERRY_W2_ENV_LEN,
					   1024 - FERRY_W2_ENV_LEN, &d), 0);
	for (size_t i = 0; i < sizeof(types); i++) {
		struct ferry_w2_frame f = hsf(types[i]);

		cr_assert_eq(ferry__w2_build_frame(&b, &f), 0);
	}
	cr_assert_eq(ferry__w2_build_pad(&b, total - FERRY_W2_ENV_LEN), 0);
	n = ferry__w2_build_end(&b);
	return (size_t)ferry__w2_envelope_wrap(buf, (size_t)n, &k_v1);
}

static enum ferry_w2_err env_err(const uint8_t *buf, size_t len)
{
	uint8_t *q = dup_exact(buf, len);
	struct ferry_w2_dgram d;
	uint32_t id;
	enum ferry_w2_err e = ferry__w2_envelope_open(q, len, &d, &id);

	if (e == FERRY_W2_OK)
		cr_assert_eq(id, (uint32_t)CCID);
	free(q);
	return e;
}

/* Re-seal a v1 header edited in place: nothing to do (no FF_CSUM). */
Test(wire2_envelope_rules, v1_frames_that_are_not_an_envelope)
{
	struct ferry_connect_body cb = {.have_params = true, .params = k_v1};
	struct ferry_hdr h = {.type = FERRY_FT_PING, .dst_sess = 5, .src_sess = 6};
	uint8_t buf[1024];
	int n;

	cr_assert_eq(env_err(buf, envelope(buf, 512)), FERRY_W2_OK);
	cr_assert_eq(env_err(buf, 40), FERRY_W2_E_ENV_V1);
	buf[3] = 0x77; /* a v1 type that does not exist */
	cr_assert_eq(env_err(buf, 512), FERRY_W2_E_ENV_V1);
	ferry__wire_encode(&h, buf);
	cr_assert_eq(env_err(buf, 44), FERRY_W2_E_ENV_NOT_CONNECT);
	/* A v1 client's CONNECT: answered with a v1 ERROR FERRY_EVERSION. */
	n = ferry__wire_put_connect(buf + 44, 512, &cb);
	h = (struct ferry_hdr){.type = FERRY_FT_CONNECT, .src_sess = 6,
			       .msg_len = (uint32_t)n};
	ferry__wire_encode(&h, buf);
	cr_assert_eq(env_err(buf, 44 + (size_t)n), FERRY_W2_E_ENV_NOT_V2);
	/* ... also with a critical TLV other than 0x86. */
	ferry__wire_put_tlv_head(buf + 44 + n, 0x87, 0);
	h.msg_len += 4;
	ferry__wire_encode(&h, buf);
	cr_assert_eq(env_err(buf, 48 + (size_t)n), FERRY_W2_E_ENV_NOT_V2);
	/* A malformed v1 body. */
	buf[44 + 1] = 1; /* PARAMS reserved byte */
	cr_assert_eq(env_err(buf, 48 + (size_t)n), FERRY_W2_E_ENV_V1);
}

Test(wire2_envelope_rules, exact_layout)
{
	uint8_t buf[1024];
	size_t n = envelope(buf, 512);

	buf[21] = 1; /* ack */
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_ENV_LAYOUT);
	buf[21] = 0;
	buf[43] = 1; /* csum, which v1 ignores without FF_CSUM */
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_ENV_LAYOUT);
	buf[43] = 0;
	buf[27] = 127; /* credit != PARAMS.credits */
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_ENV_LAYOUT);
	buf[27] = 128;
	buf[5] = FERRY_FF_CSUM;
	ferry__wire_seal(buf, buf + 44, n - 44);
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_ENV_LAYOUT);
	buf[5] = 0;
	memset(buf + 40, 0, 4);
	cr_assert_eq(env_err(buf, n), FERRY_W2_OK);
	/* TLV 0x86 first, PARAMS second: a v1 server accepts it, but it is
	 * not what a v2 client sends. */
	{
		uint8_t sw[1024];

		memcpy(sw, buf, 44);
		memcpy(sw + 44, buf + 64, n - 64);
		memcpy(sw + 44 + n - 64, buf + 44, 20);
		cr_assert_eq(env_err(sw, n), FERRY_W2_E_ENV_LAYOUT);
	}
}

Test(wire2_envelope_rules, id_size_and_inner_header)
{
	uint8_t buf[1024];
	size_t n = envelope(buf, 512);

	buf[15] ^= 1; /* src_sess */
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_ENV_ID);
	buf[15] ^= 1;
	cr_assert_eq(env_err(buf, envelope(buf, 511)), FERRY_W2_E_CONNECT_SHORT);
	n = envelope(buf, 512);
	buf[FERRY_W2_ENV_LEN + 1] = 3;
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_BAD_VERSION);
	buf[FERRY_W2_ENV_LEN + 1] = 2;
	buf[FERRY_W2_ENV_LEN] = 0x46;
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_BAD_FORM);
	/* An inner RETRY or short header is no CONNECT. */
	buf[FERRY_W2_ENV_LEN] = 0xc1;
	memset(buf + FERRY_W2_ENV_LEN + 2, 1, 8);
	memset(buf + FERRY_W2_ENV_LEN + 10, 0, 8);
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_BAD_LTYPE);
	buf[FERRY_W2_ENV_LEN] = 0x80;
	cr_assert_eq(env_err(buf, n), FERRY_W2_E_BAD_LTYPE);
}

/* --- packet numbers and ACK ranges ------------------------------------------ */

Test(wire2_pn, expand_near_zero_and_across_2_32)
{
	const uint64_t W = 1ull << 32;

	cr_assert_eq(ferry__w2_pn_expand(0, 0), 0);
	cr_assert_eq(ferry__w2_pn_expand(0, 5), 5);
	/* Nothing below 0: far "behind" 0 is ahead. */
	cr_assert_eq(ferry__w2_pn_expand(0, 0xffffffffu), 0xffffffffull);
	cr_assert_eq(ferry__w2_pn_expand(3, 0xfffffff0u), 0xfffffff0ull);
	/* Across the wrap of the low 32 bits, both ways. */
	cr_assert_eq(ferry__w2_pn_expand(0xfffffff0ull, 5), W + 5);
	cr_assert_eq(ferry__w2_pn_expand(W + 5, 0xfffffff0u), 0xfffffff0ull);
	cr_assert_eq(ferry__w2_pn_expand(7 * W + 1, 0), 7 * W);
	cr_assert_eq(ferry__w2_pn_expand(7 * W - 1, 2), 7 * W + 2);
}

Test(wire2_pn, expand_window_edges)
{
	const uint64_t W = 1ull << 32, H = W / 2, E = 5 * W + 1000;

	/* The window is (E - H, E + H]: E - H and E + H share their low 32
	 * bits, and the tie goes to the larger pn. */
	cr_assert_eq(ferry__w2_pn_expand(E, (uint32_t)(E + H)), E + H);
	cr_assert_eq(ferry__w2_pn_expand(E, (uint32_t)(E - H)), E + H);
	cr_assert_eq(ferry__w2_pn_expand(E, (uint32_t)(E + H + 1)), E - H + 1);
	cr_assert_eq(ferry__w2_pn_expand(E, (uint32_t)(E - H + 1)), E - H + 1);
	cr_assert_eq(ferry__w2_pn_expand(E, (uint32_t)(E - H - 1)), E + H - 1);
	/* Every distance within the window comes back exactly. */
	for (int64_t delta = -(int64_t)H + 1; delta <= (int64_t)H;
	     delta += (int64_t)(H / 97) + 1)
		cr_assert_eq(ferry__w2_pn_expand(E, (uint32_t)(E + (uint64_t)delta)),
			     E + (uint64_t)delta, "delta %lld", (long long)delta);
}

Test(wire2_pn, expand_at_the_top_does_not_wrap)
{
	const uint64_t top = UINT64_MAX;

	cr_assert_eq(ferry__w2_pn_expand(top, 0xffffffffu), top);
	/* The larger candidate would pass 2^64: the smaller one stands. */
	cr_assert_eq(ferry__w2_pn_expand(top - 5, 3), top - 0xffffffffull + 3);
	cr_assert_eq(ferry__w2_pn_expand(top - 0x7fffffffull, 0), top - 0xffffffffull);
}

Test(wire2_pn, ack_ranges_walk_down)
{
	struct ferry_w2_ack a = {.first_range = 2, .nranges = 2,
				 .ranges = {{1, 3}, {4, 1}}};
	struct ferry_w2_pn_range r[33];

	/* 100..98 acked, 97 missing, 96..94 acked, 93..90 missing, 89. */
	cr_assert_eq(ferry__w2_ack_ranges(&a, 100, r), 3);
	cr_assert_eq(r[0].hi, 100);
	cr_assert_eq(r[0].lo, 98);
	cr_assert_eq(r[1].hi, 96);
	cr_assert_eq(r[1].lo, 94);
	cr_assert_eq(r[2].hi, 89);
	cr_assert_eq(r[2].lo, 89);
	/* Down to pn 0 exactly, and one past it. */
	cr_assert_eq(ferry__w2_ack_ranges(&a, 11, r), 3);
	cr_assert_eq(r[2].lo, 0);
	cr_assert_eq(ferry__w2_ack_ranges(&a, 10, r), -FERRY_W2_E_ACK_BELOW_ZERO);
	a.nranges = 0;
	cr_assert_eq(ferry__w2_ack_ranges(&a, 2, r), 1);
	cr_assert_eq(r[0].lo, 0);
	cr_assert_eq(ferry__w2_ack_ranges(&a, 1, r), -FERRY_W2_E_ACK_BELOW_ZERO);
}

/* --- errors and counters ---------------------------------------------------- */

#define STAT_NAME(f, d) #f,
static const char *const k_stats[] = {FERRY_EP_STATS(STAT_NAME)};

Test(wire2_errors, every_error_has_a_name_and_a_counter)
{
	for (int e = FERRY_W2_E_V1_FORM; e < FERRY_W2_E_COUNT; e++) {
		const char *name = ferry__w2_err_name((enum ferry_w2_err)e);
		const char *ctr = ferry__w2_err_counter((enum ferry_w2_err)e);
		bool found = !strcmp(ctr, "v1_refused"); /* step 3 adds it */

		cr_assert(name && *name && strcmp(name, "unknown"), "err %d", e);
		for (int k = FERRY_W2_E_V1_FORM; k < e; k++)
			cr_assert_str_neq(name, ferry__w2_err_name((enum ferry_w2_err)k));
		for (size_t i = 0; i < sizeof(k_stats) / sizeof(k_stats[0]); i++)
			found |= !strcmp(ctr, k_stats[i]);
		/* V1_FORM is no drop: the datagram goes to the v1 parser. */
		cr_assert(found || e == FERRY_W2_E_V1_FORM, "%s counts in '%s'",
			  name, ctr);
		/* Frame and handshake rules are protocol errors (rule 10). */
		cr_assert_eq(ferry__w2_err_is_proto((enum ferry_w2_err)e),
			     (e >= FERRY_W2_E_FRAME_TRUNC &&
			      e <= FERRY_W2_E_HS_VERSION) ||
				     e == FERRY_W2_E_ACK_BELOW_ZERO,
			     "%s", name);
	}
	cr_assert_str_eq(ferry__w2_err_name(FERRY_W2_E_COUNT), "unknown");
	cr_assert_str_eq(ferry__w2_err_counter(FERRY_W2_E_BAD_FORM),
			 "drop_bad_magic");
	cr_assert_str_eq(ferry__w2_err_counter(FERRY_W2_E_BAD_VERSION),
			 "drop_bad_version");
	cr_assert_str_eq(ferry__w2_err_counter(FERRY_W2_E_BAD_LTYPE),
			 "drop_bad_type");
}
