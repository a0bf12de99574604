/* SPDX-License-Identifier: MIT */
/*
 * test_wire_caps.c - Criterion unit tests for the section 8
 * bodies of the wire-format v1 codec (transport/wire.c) that carry tokens:
 * token tables (FF_CAPS) and IOU PUSH records, with the PUSH worked example
 * of docs/wire.md, section 10, byte for byte.
 */
#include <criterion/criterion.h>

#include "wire_util.h"

/* --- token tables (section 8) --------------------------------------------- */

/* Parse @len bytes copied to an exact-size heap buffer. */
static int parse_caps_exact(const uint8_t *src, size_t len, uint32_t *tl,
			    unsigned *n)
{
	uint8_t *b = malloc(len ? len : 1);
	unsigned ni;
	int rc;

	cr_assert_not_null(b);
	if (len)
		memcpy(b, src, len);
	rc = ferry__wire_parse_caps(b, len, tl, n, &ni);
	free(b);
	return rc;
}

Test(wire_caps, round_trip)
{
	static const uint8_t a[] = "first-token", c[300] = { 7 };
	static const uint8_t iou[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct ferry_cap_ent in[3] = {
		{ FERRY_CAPK_TOKEN, a, sizeof(a) },
		{ FERRY_CAPK_TOKEN, c, sizeof(c) },
		{ FERRY_CAPK_TOKEN, a, 1 },
	}, e;
	uint8_t buf[1024];
	uint32_t tl;
	unsigned n;
	int len;

	len = ferry__wire_put_caps(buf, sizeof(buf), in, 3);
	cr_assert_eq(len, 4 + 3 * 4 + (int)sizeof(a) + (int)sizeof(c) + 1);
	cr_assert_eq(buf[0], FERRY_CAPS_VERSION);
	cr_assert_eq(buf[1], 3);
	cr_assert_eq(buf[2] << 8 | buf[3], len);
	/* The payload follows the table in the message. */
	memcpy(buf + len, "payload", 7);
	cr_assert_eq(parse_caps_exact(buf, (size_t)len + 7, &tl, &n), 0);
	cr_assert_eq(tl, (uint32_t)len);
	cr_assert_eq(n, 3);
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(ferry__wire_caps_get(buf, tl, i, &e), 0);
		cr_assert_eq(e.kind, FERRY_CAPK_TOKEN);
		cr_assert_eq(e.len, in[i].len);
		cr_assert_arr_eq(e.val, in[i].val, e.len);
	}
	cr_assert_eq(ferry__wire_caps_get(buf, tl, 3, &e), -ENOENT);
	/* A table with nothing after it is a whole message too. */
	cr_assert_eq(parse_caps_exact(buf, (size_t)len, &tl, &n), 0);

	/* An IOU entry encodes and parses, its id in place. */
	in[1] = (struct ferry_cap_ent){ FERRY_CAPK_IOU, iou, 8 };
	len = ferry__wire_put_caps(buf, sizeof(buf), in, 2);
	cr_assert_gt(len, 0);
	{
		unsigned ni;

		cr_assert_eq(ferry__wire_parse_caps(buf, (size_t)len, &tl, &n,
						   &ni),
			     0);
		cr_assert_eq(n, 2);
		cr_assert_eq(ni, 1);
	}
	cr_assert_eq(ferry__wire_caps_get(buf, tl, 1, &e), 0);
	cr_assert_eq(e.kind, FERRY_CAPK_IOU);
	cr_assert_arr_eq(e.val, iou, 8);
}

/* --- PUSH bodies (section 8) ----------------------------------------------- */

static int parse_push_exact(const uint8_t *src, size_t len,
			    struct ferry_push *out)
{
	uint8_t *b = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(b);
	if (len)
		memcpy(b, src, len);
	rc = ferry__wire_parse_push(b, len, out);
	/* A record's length, within the body; what it points at lies
	 * inside it. */
	if (rc >= 0)
		cr_assert(rc >= FERRY_PUSH_HDR_LEN && (size_t)rc <= len);
	if (rc >= 0 && out->token)
		cr_assert(out->token >= b && out->token + out->token_len <=
						     b + len);
	free(b);
	return rc;
}

Test(wire_push, round_trip)
{
	static const uint8_t tok[] = "a-token";
	struct ferry_push in = { .iou = 0x0102030405060708ull, .code = 0,
				 .token = tok, .token_len = 7 }, out;
	uint8_t buf[64];
	int len = ferry__wire_put_push(buf, sizeof(buf), &in);

	cr_assert_eq(len, FERRY_PUSH_HDR_LEN + 7);
	cr_assert_arr_eq(buf, "\x01\x02\x03\x04\x05\x06\x07\x08"
			      "\0\0\0\0\0\x07\0\0a-token", (size_t)len);
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out), len);
	cr_assert_eq(out.iou, in.iou);
	cr_assert_eq(out.code, 0);
	cr_assert_eq(out.token_len, 7);

	/* An error: no token. */
	in.code = 110;
	len = ferry__wire_put_push(buf, sizeof(buf), &in);
	cr_assert_eq(len, FERRY_PUSH_HDR_LEN);
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out), len);
	cr_assert_eq(out.code, 110);
	cr_assert_null(out.token);
	cr_assert_eq(out.token_len, 0);

	/* Records back to back: each parse gives one and its length. */
	in.code = 0;
	len = ferry__wire_put_push(buf, sizeof(buf), &in);
	in.iou = 5;
	in.code = 13;
	len += ferry__wire_put_push(buf + len, sizeof(buf) - (size_t)len, &in);
	cr_assert_eq(len, 2 * FERRY_PUSH_HDR_LEN + 7);
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out),
		     FERRY_PUSH_HDR_LEN + 7);
	cr_assert_eq(out.iou, 0x0102030405060708ull);
	cr_assert_eq(parse_push_exact(buf + FERRY_PUSH_HDR_LEN + 7,
				      FERRY_PUSH_HDR_LEN, &out),
		     FERRY_PUSH_HDR_LEN);
	cr_assert_eq(out.iou, 5);
	cr_assert_eq(out.code, 13);
}

Test(wire_push, malformed)
{
	static uint8_t big[FERRY_PUSH_TOKEN_MAX + 1];
	struct ferry_push in = { .iou = 9, .token = big, .token_len = 4 }, out;
	uint8_t buf[FERRY_PUSH_HDR_LEN + sizeof(big)];
	int len = ferry__wire_put_push(buf, sizeof(buf), &in);

	cr_assert_eq(len, FERRY_PUSH_HDR_LEN + 4);
	/* Every length short of the record; longer ones leave the rest to
	 * the next record. */
	for (int n = 0; n < len; n++)
		cr_assert_eq(parse_push_exact(buf, (size_t)n, &out), -1,
			     "len %d", n);
	cr_assert_eq(parse_push_exact(buf, (size_t)len + 3, &out), len);
	/* Reserved bytes. */
	buf[14] = 1;
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out), -1);
	buf[14] = 0;
	buf[15] = 0x80;
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out), -1);
	buf[15] = 0;
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out), len);
	/* An error code with a token, and success without one. */
	buf[11] = 5;
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out), -1);
	buf[11] = 0;
	buf[13] = 0;
	cr_assert_eq(parse_push_exact(buf, FERRY_PUSH_HDR_LEN, &out), -1);
	/* The longest token, and one byte more. */
	in.token_len = FERRY_PUSH_TOKEN_MAX;
	len = ferry__wire_put_push(buf, sizeof(buf), &in);
	cr_assert_eq(len, FERRY_PUSH_HDR_LEN + FERRY_PUSH_TOKEN_MAX);
	cr_assert_eq(parse_push_exact(buf, (size_t)len, &out), len);
	in.token_len = FERRY_PUSH_TOKEN_MAX + 1;
	cr_assert_eq(ferry__wire_put_push(buf, sizeof(buf), &in), -1);
	buf[12] = (FERRY_PUSH_TOKEN_MAX + 1) >> 8;
	buf[13] = (FERRY_PUSH_TOKEN_MAX + 1) & 0xff;
	cr_assert_eq(parse_push_exact(buf, (size_t)len + 1, &out), -1);
	/* Encoding refuses what parsing refuses, and short room. */
	in.token_len = 0;
	cr_assert_eq(ferry__wire_put_push(buf, sizeof(buf), &in), -1);
	in.token_len = 4;
	cr_assert_eq(ferry__wire_put_push(buf, FERRY_PUSH_HDR_LEN + 3, &in), -1);
}

Test(wire_caps, put_limits)
{
	static const uint8_t big[FERRY_WIRE_CAPS_MAX_LEN] = { 0 };
	struct ferry_cap_ent e[FERRY_WIRE_CAPS_MAX + 1];
	uint8_t buf[2048];

	for (unsigned i = 0; i <= FERRY_WIRE_CAPS_MAX; i++)
		e[i] = (struct ferry_cap_ent){ FERRY_CAPK_TOKEN, big, 1 };
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e, 0), -EINVAL);
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e,
					 FERRY_WIRE_CAPS_MAX + 1),
		     -EINVAL);
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e,
					 FERRY_WIRE_CAPS_MAX),
		     4 + FERRY_WIRE_CAPS_MAX * 5);
	/* Exactly the largest table, and one byte more. */
	e[0].len = FERRY_WIRE_CAPS_MAX_LEN - 8;
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e, 1),
		     FERRY_WIRE_CAPS_MAX_LEN);
	e[0].len++;
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e, 1), -EMSGSIZE);
	e[0].len = 10;
	cr_assert_eq(ferry__wire_put_caps(buf, 17, e, 1), -EMSGSIZE);
	e[0].len = 0;
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e, 1), -EINVAL);
	e[0] = (struct ferry_cap_ent){ 2, big, 1 };
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e, 1), -EINVAL);
	e[0] = (struct ferry_cap_ent){ FERRY_CAPK_IOU, big, 7 };
	cr_assert_eq(ferry__wire_put_caps(buf, sizeof(buf), e, 1), -EINVAL);
}

Test(wire_caps, malformed_tables)
{
	uint8_t good[64], b[64];
	struct ferry_cap_ent e = { FERRY_CAPK_TOKEN, (const uint8_t *)"tok", 3 };
	uint32_t tl;
	unsigned n;
	int len = ferry__wire_put_caps(good, sizeof(good), &e, 1);

	cr_assert_eq(len, 11);
	/* Every truncation of the table is malformed. */
	for (int cut = 0; cut < len; cut++)
		cr_assert_eq(parse_caps_exact(good, (size_t)cut, &tl, &n),
			     -FERRY_ECAPS,
			     "cut at %d", cut);
#define MUT(off, val, want)                                                    \
	do {                                                                   \
		memcpy(b, good, (size_t)len);                                  \
		b[off] = (val);                                                \
		cr_assert_eq(parse_caps_exact(b, (size_t)len, &tl, &n), want,  \
			     "byte %d = %d", off, val);                        \
	} while (0)
	MUT(0, 0, -EPROTONOSUPPORT);  /* version */
	MUT(0, 2, -EPROTONOSUPPORT);
	MUT(1, 0, -FERRY_ECAPS);      /* count 0 */
	MUT(1, 2, -FERRY_ECAPS);      /* count beyond the entries */
	MUT(1, 17, -FERRY_ECAPS);     /* count beyond the limit */
	MUT(3, 10, -FERRY_ECAPS);     /* table length short of the entry */
	MUT(3, 12, -FERRY_ECAPS);     /* beyond the message */
	MUT(2, 4, -FERRY_ECAPS);      /* beyond FERRY_WIRE_CAPS_MAX_LEN */
	MUT(4, 2, -FERRY_ECAPS);      /* unknown kind */
	MUT(4, 1, -FERRY_ECAPS);      /* IOU of 3 bytes */
	MUT(5, 1, -FERRY_ECAPS);      /* reserved */
	MUT(7, 0, -FERRY_ECAPS);      /* empty value */
	MUT(7, 4, -FERRY_ECAPS);      /* value past the table */
	MUT(7, 2, -FERRY_ECAPS);      /* entries short of the table */
#undef MUT
	cr_assert_eq(parse_caps_exact(good, (size_t)len, &tl, &n), 0);
}

/* docs/wire.md, section 10: the PUSH example's bytes. */
Test(wire_push, doc_example)
{
	static const uint8_t want[] = {
		0x46, 0x52, 0x01, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
		0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
		0x74, 0x6f, 0x6b,
	};
	struct ferry_push p = { .iou = 1, .token = (const uint8_t *)"tok",
				.token_len = 3 };
	struct ferry_hdr h = { .type = FERRY_FT_PUSH, .dst_sess = 0x00020001u,
			       .src_sess = 0x00010000u, .seq = 1,
			       .credit = 128 };
	struct ferry_frame f;
	uint8_t b[sizeof(want)];
	int n = ferry__wire_put_push(b + HDR, sizeof(b) - HDR, &p);

	cr_assert_eq(n, (int)sizeof(want) - HDR);
	h.msg_len = (uint32_t)n;
	ferry__wire_encode(&h, b);
	cr_assert_arr_eq(b, want, sizeof(want));
	cr_assert_eq(ferry__wire_parse(b, sizeof(b), 1u << 20, &f),
		     FERRY_PARSE_OK);
	cr_assert(ferry_ft_is_data(f.h.type));
}
