/* SPDX-License-Identifier: MIT */
/*
 * test_wire_frame.c - Criterion unit tests for the wire-format v1
 * frame codec (transport/wire.c): header encode/parse round trips of every
 * type and flag, every rejection ferry__wire_parse can return, and the CRC32C
 * checksum (checked against a bitwise reference), sealed in one piece or
 * split.
 */
#include <criterion/criterion.h>

#include "wire_util.h"

/* --- encode / parse round trips ----------------------------------------- */

Test(wire_frame, encode_layout_is_big_endian)
{
	struct ferry_hdr h = valid_hdr(FERRY_FT_REQUEST, 0x10);
	uint8_t b[HDR];
	static const uint8_t want[HDR] = {
		0x46, 0x52, 0x01, 0x03, 0x00, 0x00, 0xbe, 0xef, /* magic..method */
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* dst, src */
		0xde, 0xad, 0xbe, 0xef, 0x0a, 0x0b, 0x0c, 0x0d, /* seq, ack */
		0x01, 0x02, 0x03, 0x04, 0xca, 0xfe, 0xf0, 0x0d, /* credit, req */
		0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, /* len, off */
		0x00, 0x00, 0x00, 0x00,                         /* csum */
	};

	memset(b, 0xa5, sizeof(b));
	ferry__wire_encode(&h, b);
	cr_assert_arr_eq(b, want, HDR);

	/* With FERRY_FF_CSUM the csum field is still left zero. */
	h.flags = FERRY_FF_CSUM;
	memset(b, 0xa5, sizeof(b));
	ferry__wire_encode(&h, b);
	cr_assert_eq(b[5], FERRY_FF_CSUM);
	cr_assert_eq(b[40] | b[41] | b[42] | b[43], 0);
}

static void round_trip_type(uint8_t type, uint16_t flags, size_t pay_len)
{
	struct ferry_hdr h = valid_hdr(type, (uint32_t)pay_len);
	struct ferry_frame f;
	size_t len;
	uint8_t *buf;
	char what[64];

	h.flags = flags;
	buf = build(&h, k_pay, pay_len, &len);
	snprintf(what, sizeof(what), "%s flags %#x len %zu", ferry__ft_name(type),
		 flags, pay_len);
	cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f), FERRY_PARSE_OK,
		     "%s", what);
	assert_hdr_eq(&f.h, &h, what);
	cr_assert_eq(f.payload, buf + HDR, "%s: payload pointer", what);
	cr_assert_eq(f.pay_len, pay_len, "%s: pay_len", what);
	if (pay_len)
		cr_assert_arr_eq(f.payload, k_pay, pay_len, "%s", what);
	if (flags & FERRY_FF_CSUM)
		cr_assert_eq(f.h.csum, ferry__wire_csum(buf, f.payload, f.pay_len),
			     "%s: csum", what);
	free(buf);
}

Test(wire_frame, round_trip_every_type)
{
	for (uint8_t t = 1; t <= FERRY_FT_MAX; t++) {
		round_trip_type(t, 0, 0);
		round_trip_type(t, 0, 1);
		round_trip_type(t, 0, sizeof(k_pay) - 1);
	}
}

Test(wire_frame, round_trip_every_type_every_allowed_flag_set)
{
	for (uint8_t t = 1; t <= FERRY_FT_MAX; t++) {
		uint16_t a = allowed_flags(t);

		/* Every subset of the allowed flags that may go together. */
		for (uint16_t s = a;; s = (uint16_t)((s - 1) & a)) {
			if (flags_ok(t, s))
				round_trip_type(t, s, 7);
			if (s == 0)
				break;
		}
	}
}

Test(wire_frame, ft_name)
{
	cr_assert_str_eq(ferry__ft_name(FERRY_FT_CONNECT), "CONNECT");
	cr_assert_str_eq(ferry__ft_name(FERRY_FT_PUSH), "PUSH");
	cr_assert_str_eq(ferry__ft_name(0), "UNKNOWN");
	cr_assert_str_eq(ferry__ft_name(FERRY_FT_MAX + 1), "UNKNOWN");
	cr_assert_str_eq(ferry__ft_name(255), "UNKNOWN");
	cr_assert(ferry_ft_is_data(FERRY_FT_REQUEST));
	cr_assert(ferry_ft_is_data(FERRY_FT_RESPONSE));
	cr_assert(ferry_ft_is_data(FERRY_FT_PUSH));
	cr_assert_not(ferry_ft_is_data(FERRY_FT_CONNECT));
}

Test(wire_frame, data_fragments_round_trip)
{
	/* A 100-byte message in fragments: first, middle, exact last. */
	static const uint32_t offs[] = {0, 30, 90, 99};
	static const uint32_t lens[] = {30, 60, 10, 1};
	uint8_t pay[100];

	memset(pay, 0x5a, sizeof(pay));
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		struct ferry_hdr h = valid_hdr(FERRY_FT_RESPONSE, 100);
		struct ferry_frame f;
		size_t len;
		uint8_t *buf;

		h.frag_off = offs[i];
		buf = build(&h, pay, lens[i], &len);
		cr_assert_eq(ferry__wire_parse(buf, len, 100, &f), FERRY_PARSE_OK,
			     "frag %zu", i);
		cr_assert_eq(f.h.frag_off, offs[i]);
		cr_assert_eq(f.pay_len, lens[i]);
		free(buf);
	}
}

Test(wire_frame, largest_datagram_parses)
{
	size_t pay_len = FERRY_WIRE_MAX_FRAME - HDR;
	uint8_t *pay = calloc(1, pay_len);
	struct ferry_hdr h = valid_hdr(FERRY_FT_REQUEST, (uint32_t)pay_len);

	cr_assert_not_null(pay);
	cr_assert_eq(build_parse(&h, pay, pay_len, BIG_MAX_MSG), FERRY_PARSE_OK);
	h = valid_hdr(FERRY_FT_PING, (uint32_t)pay_len);
	cr_assert_eq(build_parse(&h, pay, pay_len, BIG_MAX_MSG), FERRY_PARSE_OK);
	free(pay);
}

/* --- rejections ---------------------------------------------------------- */

Test(wire_parse, truncated_every_length)
{
	struct ferry_hdr h = valid_hdr(FERRY_FT_REQUEST, 0);
	uint8_t full[HDR];

	ferry__wire_encode(&h, full);
	for (size_t n = 0; n < HDR; n++) {
		/* Exactly n bytes on the heap: any over-read is an ASan error. */
		uint8_t *b = malloc(n ? n : 1);
		struct ferry_frame f;

		cr_assert_not_null(b);
		memcpy(b, full, n);
		cr_assert_eq(ferry__wire_parse(b, n, BIG_MAX_MSG, &f),
			     FERRY_PARSE_TRUNCATED, "len %zu", n);
		free(b);
	}
	{
		struct ferry_frame f;

		cr_assert_eq(ferry__wire_parse(NULL, 0, BIG_MAX_MSG, &f),
			     FERRY_PARSE_TRUNCATED);
	}
}

Test(wire_parse, bad_magic)
{
	static const uint16_t bad[] = {0x0000, 0x5246, 0x4653, 0x4752, 0xffff};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_hdr h = valid_hdr(FERRY_FT_PING, 0);
		struct ferry_frame f;
		size_t len;
		uint8_t *buf = build(&h, NULL, 0, &len);

		put_be16(buf, bad[i]);
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     FERRY_PARSE_BAD_MAGIC, "magic %#x", bad[i]);
		free(buf);
	}
}

Test(wire_parse, bad_version)
{
	static const uint8_t bad[] = {0, 2, 3, 0x81, 0xff};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_hdr h = valid_hdr(FERRY_FT_PING, 0);
		struct ferry_frame f;
		size_t len;
		uint8_t *buf = build(&h, NULL, 0, &len);

		buf[2] = bad[i];
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     FERRY_PARSE_BAD_VERSION, "version %u", bad[i]);
		free(buf);
	}
}

Test(wire_parse, bad_type)
{
	for (unsigned t = 0; t <= 255; t++) {
		struct ferry_hdr h = valid_hdr(FERRY_FT_PING, 0);
		struct ferry_frame f;
		size_t len;
		uint8_t *buf;

		if (t >= 1 && t <= FERRY_FT_MAX)
			continue;
		buf = build(&h, NULL, 0, &len);
		buf[3] = (uint8_t)t;
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     FERRY_PARSE_BAD_TYPE, "type %u", t);
		free(buf);
	}
}

Test(wire_parse, flags_not_allowed_for_type)
{
	for (uint8_t t = 1; t <= FERRY_FT_MAX; t++) {
		for (unsigned bit = 0; bit < 16; bit++) {
			uint16_t fl = (uint16_t)(1u << bit);
			struct ferry_hdr h = valid_hdr(t, 3);

			h.flags = fl;
			if (allowed_flags(t) & fl) {
				cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
					     FERRY_PARSE_OK, "%s flag %#x",
					     ferry__ft_name(t), fl);
				continue;
			}
			cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
				     FERRY_PARSE_MALFORMED, "%s flag %#x",
				     ferry__ft_name(t), fl);
			/* A bad flag next to a good one is still bad. */
			h.flags |= FERRY_FF_CSUM;
			cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
				     FERRY_PARSE_MALFORMED, "%s flags %#x",
				     ferry__ft_name(t), h.flags);
		}
	}
}

Test(wire_parse, error_response_with_trace_flag)
{
	struct ferry_hdr h = valid_hdr(FERRY_FT_RESPONSE, 3);

	h.flags = FERRY_FF_ERR | FERRY_FF_TRACE;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
		     FERRY_PARSE_MALFORMED);
	h.flags |= FERRY_FF_CSUM;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
		     FERRY_PARSE_MALFORMED);
	h.flags = FERRY_FF_TRACE | FERRY_FF_CSUM;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_OK);
	h = valid_hdr(FERRY_FT_REQUEST, 3);
	h.flags = FERRY_FF_TRACE | FERRY_FF_CAPS | FERRY_FF_CSUM;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_OK);
}

Test(wire_parse, connect_with_dst_sess)
{
	struct ferry_hdr h = valid_hdr(FERRY_FT_CONNECT, 0);

	h.dst_sess = 1;
	cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
	h.dst_sess = 0xffffffffu;
	cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
}

Test(wire_parse, non_connect_without_dst_sess)
{
	for (uint8_t t = FERRY_FT_CONNECT + 1; t <= FERRY_FT_MAX; t++) {
		struct ferry_hdr h = valid_hdr(t, 0);

		h.dst_sess = 0;
		cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s", ferry__ft_name(t));
	}
}

Test(wire_parse, zero_src_sess)
{
	for (uint8_t t = 1; t <= FERRY_FT_MAX; t++) {
		struct ferry_hdr h = valid_hdr(t, 0);

		h.src_sess = 0;
		/* Only an ERROR from a server that kept no session may. */
		cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG),
			     t == FERRY_FT_ERROR ? FERRY_PARSE_OK
						 : FERRY_PARSE_MALFORMED,
			     "%s", ferry__ft_name(t));
	}
}

Test(wire_parse, data_frame_req_id_zero)
{
	struct ferry_hdr h;

	h = valid_hdr(FERRY_FT_REQUEST, 3);
	h.req_id = 0;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
	h = valid_hdr(FERRY_FT_RESPONSE, 3);
	h.req_id = 0;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
	/* PUSH is not a call: it has no request id, no method, and is one
	 * frame. */
	h = valid_hdr(FERRY_FT_PUSH, 3);
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_OK);
	h.req_id = 1;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
	h = valid_hdr(FERRY_FT_PUSH, 3);
	h.method = 7;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
	h = valid_hdr(FERRY_FT_PUSH, 6);
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
	h.frag_off = 3;
	cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_MALFORMED);
	h = valid_hdr(FERRY_FT_PUSH, 3);
	h.msg_len = 1001;
	cr_assert_eq(build_parse(&h, "abc", 3, 1000), FERRY_PARSE_OVERSIZED);
}

Test(wire_parse, fragment_past_message_end)
{
	static const uint8_t types[] = {FERRY_FT_REQUEST, FERRY_FT_RESPONSE};
	uint8_t pay[20];

	memset(pay, 1, sizeof(pay));
	for (size_t i = 0; i < sizeof(types); i++) {
		struct ferry_hdr h = valid_hdr(types[i], 100);
		const char *n = ferry__ft_name(types[i]);

		h.frag_off = 80; /* 80 + 20 == 100: fits exactly */
		cr_assert_eq(build_parse(&h, pay, 20, BIG_MAX_MSG), FERRY_PARSE_OK,
			     "%s", n);
		h.frag_off = 81;
		cr_assert_eq(build_parse(&h, pay, 20, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s", n);
		h.frag_off = 100;
		cr_assert_eq(build_parse(&h, pay, 1, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s", n);
		h.frag_off = 0;
		h.msg_len = 19;
		cr_assert_eq(build_parse(&h, pay, 20, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s", n);

		/* frag_off + pay_len wraps to a small number in 32 bits. */
		h.msg_len = 100;
		h.frag_off = UINT32_MAX - 9; /* + 20 == 10 mod 2^32 */
		cr_assert_eq(build_parse(&h, pay, 20, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s wrap", n);
		h.frag_off = UINT32_MAX;
		cr_assert_eq(build_parse(&h, pay, 1, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s wrap to 0", n);
		h.frag_off = UINT32_MAX - 18; /* + 20 == 1 mod 2^32 */
		h.msg_len = 1;
		cr_assert_eq(build_parse(&h, pay, 20, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s wrap to 1", n);
		/* Large but honest msg_len with frag_off near it: fine. */
		h.msg_len = FERRY_WIRE_MAX_MSG;
		h.frag_off = FERRY_WIRE_MAX_MSG - 20;
		cr_assert_eq(build_parse(&h, pay, 20, UINT32_MAX), FERRY_PARSE_OK,
			     "%s at max msg", n);
		h.frag_off = UINT32_MAX - 9;
		cr_assert_eq(build_parse(&h, pay, 20, UINT32_MAX),
			     FERRY_PARSE_MALFORMED, "%s wrap at max msg", n);
	}
}

Test(wire_parse, empty_fragment_of_nonempty_message)
{
	static const uint8_t types[] = {FERRY_FT_REQUEST, FERRY_FT_RESPONSE,
					FERRY_FT_PUSH};

	for (size_t i = 0; i < sizeof(types); i++) {
		struct ferry_hdr h = valid_hdr(types[i], 0);

		cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG), FERRY_PARSE_OK);
		h.msg_len = 1;
		cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s", ferry__ft_name(types[i]));
		h.msg_len = 50;
		h.frag_off = 50;
		cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s", ferry__ft_name(types[i]));
	}
}

Test(wire_parse, message_larger_than_max_msg)
{
	static const uint8_t types[] = {FERRY_FT_REQUEST, FERRY_FT_RESPONSE};

	for (size_t i = 0; i < sizeof(types); i++) {
		struct ferry_hdr h = valid_hdr(types[i], 1000);
		uint8_t pay[10] = {0};

		cr_assert_eq(build_parse(&h, pay, 10, 1000), FERRY_PARSE_OK);
		h.msg_len = 1001;
		cr_assert_eq(build_parse(&h, pay, 10, 1000), FERRY_PARSE_OVERSIZED,
			     "%s", ferry__ft_name(types[i]));
		h.msg_len = UINT32_MAX;
		cr_assert_eq(build_parse(&h, pay, 10, 1000), FERRY_PARSE_OVERSIZED);
		/* The protocol limit holds even if the receiver's is higher. */
		h.msg_len = FERRY_WIRE_MAX_MSG;
		cr_assert_eq(build_parse(&h, pay, 10, UINT32_MAX), FERRY_PARSE_OK);
		h.msg_len = FERRY_WIRE_MAX_MSG + 1;
		cr_assert_eq(build_parse(&h, pay, 10, UINT32_MAX),
			     FERRY_PARSE_OVERSIZED);
	}
}

Test(wire_parse, control_frame_field_rules)
{
	static const uint8_t types[] = {FERRY_FT_CONNECT, FERRY_FT_ACCEPT,
					FERRY_FT_CREDIT,  FERRY_FT_CLOSE,
					FERRY_FT_ERROR,   FERRY_FT_PING};

	for (size_t i = 0; i < sizeof(types); i++) {
		const char *n = ferry__ft_name(types[i]);
		struct ferry_hdr h;

		h = valid_hdr(types[i], 3);
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG), FERRY_PARSE_OK,
			     "%s", n);
		h.msg_len = 4;
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s msg_len > pay", n);
		h.msg_len = 2;
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s msg_len < pay", n);
		h.msg_len = 0;
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s msg_len 0", n);
		h = valid_hdr(types[i], 0);
		h.msg_len = 1;
		cr_assert_eq(build_parse(&h, NULL, 0, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s empty, msg_len 1", n);

		h = valid_hdr(types[i], 3);
		h.frag_off = 1;
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s frag_off", n);
		h = valid_hdr(types[i], 3);
		h.req_id = 1;
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s req_id", n);
		h = valid_hdr(types[i], 3);
		h.method = 1;
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s method", n);
		h = valid_hdr(types[i], 3);
		h.seq = 1;
		cr_assert_eq(build_parse(&h, "abc", 3, BIG_MAX_MSG),
			     FERRY_PARSE_MALFORMED, "%s seq", n);
	}
}

Test(wire_parse, datagram_longer_than_max_frame)
{
	size_t len = FERRY_WIRE_MAX_FRAME + 1;
	uint8_t *buf = calloc(1, len + 100);
	struct ferry_hdr h = valid_hdr(FERRY_FT_REQUEST, (uint32_t)(len - HDR));
	struct ferry_frame f;

	cr_assert_not_null(buf);
	ferry__wire_encode(&h, buf);
	cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
		     FERRY_PARSE_OVERSIZED);
	cr_assert_eq(ferry__wire_parse(buf, len + 100, BIG_MAX_MSG, &f),
		     FERRY_PARSE_OVERSIZED);
	/* One byte less is a legal datagram. */
	h.msg_len = (uint32_t)(len - 1 - HDR);
	ferry__wire_encode(&h, buf);
	cr_assert_eq(ferry__wire_parse(buf, len - 1, BIG_MAX_MSG, &f),
		     FERRY_PARSE_OK);
	/* Same for a control frame. */
	h = valid_hdr(FERRY_FT_PING, (uint32_t)(len - HDR));
	ferry__wire_encode(&h, buf);
	cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
		     FERRY_PARSE_OVERSIZED);
	free(buf);
}

/* --- checksum ------------------------------------------------------------ */

/* Bitwise CRC32C, independent of the table/hardware code under test. */
static uint32_t ref_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (crc & 1 ? 0x82f63b78u : 0);
	}
	return crc;
}

static uint32_t ref_frame_csum(const uint8_t *hdr, const uint8_t *pay,
			       size_t n)
{
	static const uint8_t zero[4];
	uint32_t c = ~0u;

	c = ref_crc32c(c, hdr, OFF_CSUM);
	c = ref_crc32c(c, zero, 4);
	c = ref_crc32c(c, pay, n);
	return ~c;
}

Test(wire_csum, is_crc32c)
{
	/* The reference itself: the standard CRC32C check value. */
	cr_assert_eq(~ref_crc32c(~0u, (const uint8_t *)"123456789", 9),
		     0xe3069283u);

	/* Every payload length 0..300 (covers the 8-byte and tail loops),
	 * at every alignment of the payload. */
	uint8_t hdr[HDR];
	uint8_t pay[300 + 8];

	for (size_t i = 0; i < sizeof(hdr); i++)
		hdr[i] = (uint8_t)rng_next();
	for (size_t i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)rng_next();
	for (size_t n = 0; n <= 300; n++)
		for (size_t a = 0; a < 8; a++)
			cr_assert_eq(ferry__wire_csum(hdr, pay + a, n),
				     ref_frame_csum(hdr, pay + a, n),
				     "len %zu align %zu", n, a);
}

Test(wire_csum, ignores_csum_field)
{
	uint8_t hdr[HDR];
	uint32_t c;

	memset(hdr, 0x33, sizeof(hdr));
	c = ferry__wire_csum(hdr, "x", 1);
	memset(hdr + OFF_CSUM, 0xee, 4);
	cr_assert_eq(ferry__wire_csum(hdr, "x", 1), c);
}

Test(wire_csum, correct_csum_parses)
{
	for (uint8_t t = 1; t <= FERRY_FT_MAX; t++) {
		struct ferry_hdr h = valid_hdr(t, sizeof(k_pay) - 1);
		struct ferry_frame f;
		size_t len;
		uint8_t *buf;
		uint32_t want;

		h.flags = FERRY_FF_CSUM;
		buf = build(&h, k_pay, sizeof(k_pay) - 1, &len);
		want = ref_frame_csum(buf, buf + HDR, len - HDR);
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     FERRY_PARSE_OK, "%s", ferry__ft_name(t));
		cr_assert_eq(f.h.csum, want);
		/* Written little-endian it must fail. */
		buf[40] = (uint8_t)want;
		buf[41] = (uint8_t)(want >> 8);
		buf[42] = (uint8_t)(want >> 16);
		buf[43] = (uint8_t)(want >> 24);
		if (want != __builtin_bswap32(want))
			cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
				     FERRY_PARSE_MALFORMED);
		/* A zero csum field with the flag set fails too. */
		memset(buf + 40, 0, 4);
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     want == 0 ? FERRY_PARSE_OK : FERRY_PARSE_MALFORMED);
		free(buf);
	}
}

Test(wire_csum, any_single_byte_flip_rejected)
{
	static const uint8_t xors[] = {0x01, 0x02, 0x10, 0x80, 0xff};
	static const uint8_t types[] = {FERRY_FT_REQUEST, FERRY_FT_CONNECT,
					FERRY_FT_CREDIT};

	for (size_t ti = 0; ti < sizeof(types); ti++) {
		struct ferry_hdr h = valid_hdr(types[ti], sizeof(k_pay) - 1);
		struct ferry_frame f;
		size_t len;
		uint8_t *buf;

		h.flags = FERRY_FF_CSUM;
		buf = build(&h, k_pay, sizeof(k_pay) - 1, &len);
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     FERRY_PARSE_OK);
		for (size_t i = 0; i < len; i++) {
			for (size_t x = 0; x < sizeof(xors); x++) {
				enum ferry_parse_err e;

				buf[i] ^= xors[x];
				/*
				 * A flip that clears FERRY_FF_CSUM itself turns
				 * the checksum off: no checksum can cover the
				 * bit that enables it (a limitation of the v1
				 * format, not of the codec), so skip it.
				 */
				if (i == 5 && !(buf[5] & FERRY_FF_CSUM) &&
				    !(buf[5] & ~allowed_flags(types[ti]))) {
					buf[i] ^= xors[x];
					continue;
				}
				e = ferry__wire_parse(buf, len, BIG_MAX_MSG, &f);
				cr_assert_neq(e, FERRY_PARSE_OK,
					      "%s byte %zu ^ %#x accepted",
					      ferry__ft_name(types[ti]), i,
					      xors[x]);
				/* Fields no other rule checks: only the
				 * checksum can catch these (ack, credit,
				 * the csum itself, the payload). */
				if ((i >= 20 && i < 28) || i >= 40)
					cr_assert_eq(e, FERRY_PARSE_MALFORMED,
						     "byte %zu", i);
				buf[i] ^= xors[x];
			}
		}
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     FERRY_PARSE_OK);
		free(buf);
	}
}

/* The checksum over a payload split between header area and body equals
 * the one over the same payload in one piece. */
Test(wire_csum, seal_ext_matches_contiguous)
{
	uint8_t a[FERRY_WIRE_HDR_LEN + 100], b[FERRY_WIRE_HDR_LEN + 100];
	struct ferry_hdr h;
	struct ferry_frame f;

	memset(&h, 0, sizeof(h));
	h.type = FERRY_FT_REQUEST;
	h.flags = FERRY_FF_CSUM | FERRY_FF_CAPS;
	h.dst_sess = 1;
	h.src_sess = 2;
	h.req_id = 3;
	h.msg_len = 100;
	for (int i = 0; i < 100; i++)
		a[FERRY_WIRE_HDR_LEN + i] = (uint8_t)(i * 3);
	memcpy(b, a, sizeof(a));
	for (size_t split = 0; split <= 100; split += 25) {
		ferry__wire_encode(&h, a);
		ferry__wire_seal(a, a + FERRY_WIRE_HDR_LEN, 100);
		ferry__wire_encode(&h, b);
		ferry__wire_seal_ext(b, FERRY_WIRE_HDR_LEN + split,
				    b + FERRY_WIRE_HDR_LEN + split, 100 - split);
		cr_assert_arr_eq(a, b, sizeof(a), "split %zu", split);
		cr_assert_eq(ferry__wire_parse(b, sizeof(b), 1u << 20, &f),
			     FERRY_PARSE_OK);
	}
}
