/* SPDX-License-Identifier: MIT */
/*
 * test_wire_trace.c - Criterion unit tests for the trace blocks of
 * the wire-format v1 codec (transport/wire.c): the trace block of a REQUEST
 * and the attribute block of a RESPONSE with FF_TRACE (docs/wire.md,
 * section 8), with the worked examples of section 10 byte for byte.
 */
#include <criterion/criterion.h>

#include "wire_util.h"

/* --- trace blocks (REQUEST with FF_TRACE; section 8) ---------------------- */

static const char k_tb_tp[] =
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/* Parse a copy of @len bytes at @src from an exact-size heap block. */
static int parse_tb_exact(const uint8_t *src, size_t len, uint32_t *bl,
			  struct ferry_trace_block *tb)
{
	uint8_t *b = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(b);
	if (len)
		memcpy(b, src, len);
	rc = ferry__wire_parse_trace_block(b, len, bl, tb);
	free(b);
	return rc;
}

Test(wire_trace, block_round_trip)
{
	static char ts[FERRY_TRACESTATE_MAX];
	struct ferry_trace_block tb;
	uint8_t b[FERRY_TRACE_BLOCK_MAX + 8];
	uint32_t bl = 0;
	int n;

	/* No tracestate: 59 bytes. */
	n = ferry__wire_put_trace_block(b, sizeof(b), k_tb_tp, NULL, 0);
	cr_assert_eq(n, FERRY_TRACE_BLOCK_MIN);
	cr_assert_eq(b[0], 1);
	cr_assert_eq(b[1], 0);
	cr_assert_eq(b[2] << 8 | b[3], 59);
	memcpy(b + n, "payload", 7);
	cr_assert_eq(ferry__wire_parse_trace_block(b, (size_t)n + 7, &bl, &tb), 0);
	cr_assert_eq(bl, 59);
	cr_assert_eq((const uint8_t *)tb.traceparent, b + 4);
	cr_assert_arr_eq(tb.traceparent, k_tb_tp, 55);
	cr_assert_null(tb.tracestate);
	cr_assert_eq(tb.tracestate_len, 0);
	/* The block alone is a whole message too. */
	cr_assert_eq(parse_tb_exact(b, (size_t)n, &bl, &tb), 0);

	/* The longest tracestate. */
	memset(ts, 'a', sizeof(ts));
	n = ferry__wire_put_trace_block(b, sizeof(b), k_tb_tp, ts, sizeof(ts));
	cr_assert_eq(n, FERRY_TRACE_BLOCK_MAX);
	cr_assert_eq(ferry__wire_parse_trace_block(b, (size_t)n, &bl, &tb), 0);
	cr_assert_eq(bl, FERRY_TRACE_BLOCK_MAX);
	cr_assert_eq(tb.tracestate_len, FERRY_TRACESTATE_MAX);
	cr_assert_eq((const uint8_t *)tb.tracestate, b + 59);
	cr_assert_arr_eq(tb.tracestate, ts, sizeof(ts));

	/* The text is the tracer's to judge, not the codec's. */
	memset(b + 4, 'Z', 55);
	cr_assert_eq(ferry__wire_parse_trace_block(b, (size_t)n, &bl, &tb), 0);
}

Test(wire_trace, block_put_limits)
{
	static char ts[FERRY_TRACESTATE_MAX + 1];
	uint8_t b[FERRY_TRACE_BLOCK_MAX + 8];

	cr_assert_eq(ferry__wire_put_trace_block(b, sizeof(b), NULL, NULL, 0),
		     -EINVAL);
	cr_assert_eq(ferry__wire_put_trace_block(b, sizeof(b), k_tb_tp, ts,
						sizeof(ts)),
		     -EINVAL);
	cr_assert_eq(ferry__wire_put_trace_block(b, sizeof(b), k_tb_tp, NULL, 3),
		     -EINVAL);
	cr_assert_eq(ferry__wire_put_trace_block(b, 58, k_tb_tp, NULL, 0),
		     -EMSGSIZE);
	cr_assert_eq(ferry__wire_put_trace_block(b, 59, k_tb_tp, "x", 1),
		     -EMSGSIZE);
	cr_assert_eq(ferry__wire_put_trace_block(b, 60, k_tb_tp, "x", 1), 60);
}

Test(wire_trace, block_receiver_rules)
{
	uint8_t good[100], b[100];
	struct ferry_trace_block tb;
	uint32_t bl;
	int len = ferry__wire_put_trace_block(good, sizeof(good), k_tb_tp,
					     "a=1", 3);

	cr_assert_eq(len, 62);
	memcpy(good + len, "xyz", 3);
	/* Shorter than the head, or than block_len: refused (rule 1). */
	for (int cut = 0; cut < len; cut++)
		cr_assert_eq(parse_tb_exact(good, (size_t)cut, &bl, &tb),
			     -FERRY_EPROTO, "cut at %d", cut);
	cr_assert_eq(parse_tb_exact(good, (size_t)len, &bl, &tb), 0);
	cr_assert_eq(parse_tb_exact(good, (size_t)len + 3, &bl, &tb), 0);
	cr_assert_eq(bl, 62);
	cr_assert_eq(tb.tracestate_len, 3);
#define MUT(off, val, want)                                                    \
	do {                                                                   \
		memcpy(b, good, (size_t)len + 3);                              \
		b[off] = (uint8_t)(val);                                       \
		bl = 0;                                                        \
		cr_assert_eq(parse_tb_exact(b, (size_t)len + 3, &bl, &tb),     \
			     want, "byte %d = %d", off, val);                  \
	} while (0)
	/* block_len below 59, above 571, beyond the message (rule 1) */
	MUT(3, 58, -FERRY_EPROTO);
	MUT(3, 0, -FERRY_EPROTO);
	MUT(3, 66, -FERRY_EPROTO);
	b[2] = 0x02;
	b[3] = 0x3c; /* 572 */
	cr_assert_eq(parse_tb_exact(b, (size_t)len + 3, &bl, &tb), -FERRY_EPROTO);
	/* ... and that is checked for every version. */
	MUT(0, 2, -EPROTONOSUPPORT);
	cr_assert_eq(bl, 62, "the block is skipped by its length");
	cr_assert_null(tb.traceparent);
	MUT(0, 0, -EPROTONOSUPPORT);
	MUT(0, 255, -EPROTONOSUPPORT);
	MUT(1, 1, -EPROTONOSUPPORT); /* reserved */
	cr_assert_eq(bl, 62);
	memcpy(b, good, (size_t)len + 3);
	b[0] = 2;
	b[3] = 10;
	cr_assert_eq(parse_tb_exact(b, (size_t)len + 3, &bl, &tb), -FERRY_EPROTO);
	/* block_len 65 takes 3 bytes of the payload as tracestate. */
	MUT(3, 65, 0);
	cr_assert_eq(tb.tracestate_len, 6);
#undef MUT
}

/* docs/wire.md, section 10: the REQUEST with a trace block. */
Test(wire_trace, doc_example_request)
{
	static const uint8_t want[] = {
		0x46, 0x52, 0x01, 0x03, 0x00, 0x10, 0x00, 0x07, 0x00, 0x02,
		0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00,
		0x00, 0x01, 0x00, 0x00, 0x00, 0x51, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x4c, 0x30, 0x30,
		0x2d, 0x34, 0x62, 0x66, 0x39, 0x32, 0x66, 0x33, 0x35, 0x37,
		0x37, 0x62, 0x33, 0x34, 0x64, 0x61, 0x36, 0x61, 0x33, 0x63,
		0x65, 0x39, 0x32, 0x39, 0x64, 0x30, 0x65, 0x30, 0x65, 0x34,
		0x37, 0x33, 0x36, 0x2d, 0x30, 0x30, 0x66, 0x30, 0x36, 0x37,
		0x61, 0x61, 0x30, 0x62, 0x61, 0x39, 0x30, 0x32, 0x62, 0x37,
		0x2d, 0x30, 0x31, 0x63, 0x6f, 0x6e, 0x67, 0x6f, 0x3d, 0x74,
		0x36, 0x31, 0x72, 0x63, 0x57, 0x6b, 0x67, 0x4d, 0x7a, 0x45,
		0x68, 0x65, 0x6c, 0x6c, 0x6f,
	};
	static const char ts[] = "congo=t61rcWkgMzE";
	struct ferry_hdr h = { .type = FERRY_FT_REQUEST, .flags = FERRY_FF_TRACE,
			       .method = 7, .dst_sess = 0x00020001u,
			       .src_sess = 0x00010000u, .credit = 128,
			       .req_id = 1 };
	struct ferry_trace_block tb;
	struct ferry_frame f;
	uint8_t b[sizeof(want)];
	uint32_t bl;
	int n = ferry__wire_put_trace_block(b + HDR, sizeof(b) - HDR, k_tb_tp,
					   ts, strlen(ts));

	cr_assert_eq(n, 76);
	memcpy(b + HDR + n, "hello", 5);
	h.msg_len = (uint32_t)n + 5;
	ferry__wire_encode(&h, b);
	cr_assert_eq(sizeof(want), 125);
	cr_assert_arr_eq(b, want, sizeof(want));
	cr_assert_eq(ferry__wire_parse(want, sizeof(want), 1u << 20, &f),
		     FERRY_PARSE_OK);
	cr_assert_eq(ferry__wire_parse_trace_block(f.payload, f.pay_len, &bl, &tb),
		     0);
	cr_assert_eq(bl, 76);
	cr_assert_arr_eq(tb.traceparent, k_tb_tp, 55);
	cr_assert_eq(tb.tracestate_len, strlen(ts));
	cr_assert_arr_eq(tb.tracestate, ts, strlen(ts));
	cr_assert_arr_eq(f.payload + bl, "hello", 5);
}

/* --- attribute blocks (RESPONSE with FF_TRACE; section 8) ----------------- */

static int parse_attrs_exact(const uint8_t *src, size_t len, uint32_t *bl,
			     unsigned *n)
{
	uint8_t *b = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(b);
	if (len)
		memcpy(b, src, len);
	rc = ferry__wire_parse_resp_attrs(b, len, bl, n);
	free(b);
	return rc;
}

static struct ferry_attr_ent attr_str(const char *k, const char *v)
{
	return (struct ferry_attr_ent){ .type = FERRY_ATTRT_STRING, .key = k,
					.key_len = (uint8_t)strlen(k), .str = v,
					.str_len = (uint16_t)strlen(v) };
}

Test(wire_attrs, round_trip_every_type)
{
	static char key63[64], s255[256];
	struct ferry_attr_ent in[7], out;
	uint8_t b[FERRY_WIRE_ATTRS_MAX_LEN];
	uint64_t nan_bits = 0x7ff8000000000123ull, bits;
	uint32_t bl;
	unsigned n;
	int len;

	memset(key63, '~', 63);
	memset(s255, 'v', 255);
	in[0] = attr_str("db.system", "postgresql");
	in[1] = attr_str(key63, s255);
	in[2] = attr_str("empty", "");
	in[3] = (struct ferry_attr_ent){ .type = FERRY_ATTRT_INT, .key = "rows",
					 .key_len = 4, .i = INT64_MIN };
	in[4] = (struct ferry_attr_ent){ .type = FERRY_ATTRT_BOOL, .key = "hit",
					 .key_len = 3, .b = true };
	in[5] = (struct ferry_attr_ent){ .type = FERRY_ATTRT_DOUBLE, .key = "ratio",
					 .key_len = 5, .d = -0.0 };
	in[6] = (struct ferry_attr_ent){ .type = FERRY_ATTRT_DOUBLE, .key = "nan",
					 .key_len = 3 };
	memcpy(&in[6].d, &nan_bits, 8);
	len = ferry__wire_put_resp_attrs(b, sizeof(b), in, 7);
	cr_assert_eq(len, 4 + (4 + 9 + 10) + (4 + 63 + 255) + (4 + 5) +
				  (4 + 4 + 8) + (4 + 3 + 1) + (4 + 5 + 8) +
				  (4 + 3 + 8));
	cr_assert_eq(parse_attrs_exact(b, (size_t)len, &bl, &n), 0);
	cr_assert_eq(bl, (uint32_t)len);
	cr_assert_eq(n, 7);
	for (unsigned i = 0; i < 7; i++) {
		cr_assert_eq(ferry__wire_resp_attr_get(b, bl, i, &out), 0);
		cr_assert_eq(out.type, in[i].type);
		cr_assert_eq(out.key_len, in[i].key_len);
		cr_assert_arr_eq(out.key, in[i].key, in[i].key_len);
		switch (out.type) {
		case FERRY_ATTRT_STRING:
			cr_assert_eq(out.str_len, in[i].str_len);
			cr_assert_arr_eq(out.str, in[i].str, in[i].str_len);
			break;
		case FERRY_ATTRT_INT:
			cr_assert_eq(out.i, in[i].i);
			break;
		case FERRY_ATTRT_BOOL:
			cr_assert_eq(out.b, in[i].b);
			break;
		default:
			/* The bits survive: -0.0 and a NaN payload. */
			cr_assert_arr_eq(&out.d, &in[i].d, 8);
			break;
		}
	}
	cr_assert_eq(ferry__wire_resp_attr_get(b, bl, 7, &out), -ENOENT);
	memcpy(&bits, &out.d, 8);
	cr_assert_eq(bits, nan_bits);
	/* The double's bits go big-endian: 0x8000000000000000 for -0.0. */
	{
		uint8_t one[32];
		static const uint8_t want[] = { 4, 1, 0, 8, 'x', 0x80, 0, 0, 0,
						0, 0, 0, 0 };
		struct ferry_attr_ent d = { .type = FERRY_ATTRT_DOUBLE,
					    .key = "x", .key_len = 1, .d = -0.0 };

		cr_assert_eq(ferry__wire_put_resp_attr(one, sizeof(one), &d), 13);
		cr_assert_arr_eq(one, want, 13);
		d.d = 1.0; /* 0x3ff0000000000000 */
		ferry__wire_put_resp_attr(one, sizeof(one), &d);
		cr_assert_eq(one[5], 0x3f);
		cr_assert_eq(one[6], 0xf0);
	}
}

Test(wire_attrs, put_limits)
{
	static char k64[65], s256[257];
	struct ferry_attr_ent e[FERRY_WIRE_ATTRS_MAX + 1];
	uint8_t b[2048];

	memset(k64, 'k', 64);
	memset(s256, 's', 256);
	for (unsigned i = 0; i <= FERRY_WIRE_ATTRS_MAX; i++)
		e[i] = attr_str("k", "v");
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 0), -EINVAL);
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e,
					       FERRY_WIRE_ATTRS_MAX + 1),
		     -EINVAL);
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e,
					       FERRY_WIRE_ATTRS_MAX),
		     4 + 16 * 6);
	/* Keys: empty, 64 bytes, a blank, DEL, a byte >= 0x80. */
	e[0] = attr_str("", "v");
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), -EINVAL);
	e[0] = attr_str(k64, "v");
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), -EINVAL);
	e[0].key_len = 63;
	cr_assert_gt(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), 0);
	e[0] = attr_str("a b", "v");
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), -EINVAL);
	e[0] = attr_str("a\x7f", "v");
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), -EINVAL);
	e[0] = attr_str("\xc3\xa9", "v");
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), -EINVAL);
	cr_assert_not(ferry__wire_attr_key_ok(NULL, 1));
	cr_assert(ferry__wire_attr_key_ok("!~", 2));
	/* A string of 256 bytes; an unknown type. */
	e[0] = attr_str("k", s256);
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), -EINVAL);
	e[0] = attr_str("k", "v");
	e[0].type = 5;
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 1), -EINVAL);
	/* 960 bytes exactly, and one more. */
	s256[255] = '\0';
	for (unsigned i = 0; i < 3; i++)
		e[i] = attr_str("k", s256); /* 4 + 1 + 255 = 260 each */
	e[3] = attr_str("k", "");
	e[3].str = s256;
	e[3].str_len = 960 - 4 - 3 * 260 - 5;
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 4), 960);
	e[3].str_len++;
	cr_assert_eq(ferry__wire_put_resp_attrs(b, sizeof(b), e, 4), -EMSGSIZE);
	/* Short room. */
	e[0] = attr_str("k", "v");
	cr_assert_eq(ferry__wire_put_resp_attrs(b, 9, e, 1), -EMSGSIZE);
	cr_assert_eq(ferry__wire_put_resp_attrs(b, 10, e, 1), 10);
	cr_assert_eq(ferry__wire_put_resp_attr(b, 5, e), -EMSGSIZE);
}

Test(wire_attrs, receiver_rules)
{
	struct ferry_attr_ent e[2] = {
		{ .type = FERRY_ATTRT_BOOL, .key = "ok", .key_len = 2, .b = true },
		{ .type = FERRY_ATTRT_STRING, .key = "s", .key_len = 1, .str = "ab",
		  .str_len = 2 },
	};
	uint8_t good[64], b[64];
	uint32_t bl;
	unsigned n;
	/* 4 + (4 + 2 + 1) + (4 + 1 + 2) = 18, then 2 payload bytes. */
	int len = ferry__wire_put_resp_attrs(good, sizeof(good), e, 2);

	cr_assert_eq(len, 18);
	memcpy(good + len, "pp", 2);
	cr_assert_eq(parse_attrs_exact(good, 20, &bl, &n), 0);
	cr_assert_eq(bl, 18);
	cr_assert_eq(n, 2);
	/* Shorter than the head or than block_len: the call fails. */
	for (int cut = 0; cut < len; cut++)
		cr_assert_eq(parse_attrs_exact(good, (size_t)cut, &bl, &n),
			     -FERRY_EPROTO, "cut at %d", cut);
#define MUT(off, val, want)                                                    \
	do {                                                                   \
		memcpy(b, good, 20);                                           \
		b[off] = (uint8_t)(val);                                       \
		bl = 0;                                                        \
		cr_assert_eq(parse_attrs_exact(b, 20, &bl, &n), want,          \
			     "byte %d = %d", off, val);                        \
	} while (0)
	/* block_len out of range (rule 1) */
	MUT(3, 3, -FERRY_EPROTO);
	MUT(3, 0, -FERRY_EPROTO);
	MUT(3, 21, -FERRY_EPROTO);
	memcpy(b, good, 20);
	b[2] = 0x03;
	b[3] = 0xc1; /* 961 */
	cr_assert_eq(ferry__wire_parse_resp_attrs(b, 20, &bl, &n), -FERRY_EPROTO);
	/* In range, but broken inside (rule 2): skipped by block_len. */
	MUT(0, 2, -EBADMSG);        /* version */
	cr_assert_eq(bl, 18);
	cr_assert_eq(n, 0);
	MUT(0, 0, -EBADMSG);
	MUT(1, 0, -EBADMSG);        /* count 0 */
	MUT(1, 1, -EBADMSG);        /* entries beyond the count */
	MUT(1, 3, -EBADMSG);        /* count beyond the entries */
	MUT(1, 17, -EBADMSG);       /* count beyond the limit */
	MUT(3, 4, -EBADMSG);        /* a block of no entries */
	MUT(3, 19, -EBADMSG);       /* entries end before block_len */
	MUT(3, 17, -EBADMSG);       /* the last entry runs past it */
	MUT(4, 0, -EBADMSG);        /* type 0 */
	MUT(4, 5, -EBADMSG);        /* type 5 */
	MUT(4, 1, 0);               /* bool -> 1-byte string: still valid */
	MUT(5, 0, -EBADMSG);        /* key_len 0 */
	MUT(5, 64, -EBADMSG);       /* key_len 64 */
	MUT(8, ' ', -EBADMSG);      /* a blank in the key */
	MUT(8, 0x7f, -EBADMSG);     /* DEL */
	MUT(8, 0x80, -EBADMSG);
	MUT(8, 0, -EBADMSG);
	MUT(10, 2, -EBADMSG);       /* a bool of 2 */
	MUT(7, 2, -EBADMSG);        /* a bool of 2 bytes */
	MUT(6, 1, -EBADMSG);        /* a value past the block */
	memcpy(b, good, 20);
	b[4] = FERRY_ATTRT_INT;     /* an int of 1 byte */
	cr_assert_eq(parse_attrs_exact(b, 20, &bl, &n), -EBADMSG);
	b[4] = FERRY_ATTRT_DOUBLE;  /* a double of 1 byte */
	cr_assert_eq(parse_attrs_exact(b, 20, &bl, &n), -EBADMSG);
#undef MUT
	/* A string value of 256 bytes. */
	{
		uint8_t big[4 + 4 + 1 + 256];

		memset(big, 'x', sizeof(big));
		ferry__wire_put_resp_attrs_head(big, 1, sizeof(big));
		big[4] = FERRY_ATTRT_STRING;
		big[5] = 1;
		big[6] = 1;
		big[7] = 0;
		cr_assert_eq(parse_attrs_exact(big, sizeof(big), &bl, &n),
			     -EBADMSG);
		big[7] = 0xff; /* 511: past the block */
		big[6] = 0x01;
		cr_assert_eq(parse_attrs_exact(big, sizeof(big), &bl, &n),
			     -EBADMSG);
	}
	/* Up to 16 entries. */
	{
		struct ferry_attr_ent m[FERRY_WIRE_ATTRS_MAX];
		uint8_t blk[FERRY_WIRE_ATTRS_MAX_LEN];
		int l;

		for (unsigned i = 0; i < FERRY_WIRE_ATTRS_MAX; i++)
			m[i] = attr_str("k", "");
		l = ferry__wire_put_resp_attrs(blk, sizeof(blk), m,
					      FERRY_WIRE_ATTRS_MAX);
		cr_assert_eq(parse_attrs_exact(blk, (size_t)l, &bl, &n), 0);
		cr_assert_eq(n, 16);
	}
}

/* docs/wire.md, section 10: the RESPONSE with an attribute block. */
Test(wire_trace, doc_example_response)
{
	static const uint8_t want[] = {
		0x46, 0x52, 0x01, 0x04, 0x00, 0x10, 0x00, 0x07, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00,
		0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x1c, 0x01, 0x02,
		0x00, 0x02, 0x64, 0x62, 0x70, 0x67, 0x02, 0x04, 0x00, 0x08,
		0x72, 0x6f, 0x77, 0x73, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x03, 0x6f, 0x6b,
	};
	struct ferry_attr_ent e[2] = {
		attr_str("db", "pg"),
		{ .type = FERRY_ATTRT_INT, .key = "rows", .key_len = 4, .i = 3 },
	};
	struct ferry_hdr h = { .type = FERRY_FT_RESPONSE,
			       .flags = FERRY_FF_TRACE, .method = 7,
			       .dst_sess = 0x00010000u, .src_sess = 0x00020001u,
			       .ack = 1, .credit = 128, .req_id = 1 };
	struct ferry_attr_ent out;
	struct ferry_frame f;
	uint8_t b[sizeof(want)];
	uint32_t bl;
	unsigned n;
	int len = ferry__wire_put_resp_attrs(b + HDR, sizeof(b) - HDR, e, 2);

	cr_assert_eq(len, 28);
	memcpy(b + HDR + len, "ok", 2);
	h.msg_len = (uint32_t)len + 2;
	ferry__wire_encode(&h, b);
	cr_assert_eq(sizeof(want), 74);
	cr_assert_arr_eq(b, want, sizeof(want));
	cr_assert_eq(ferry__wire_parse(want, sizeof(want), 1u << 20, &f),
		     FERRY_PARSE_OK);
	cr_assert_eq(ferry__wire_parse_resp_attrs(f.payload, f.pay_len, &bl, &n),
		     0);
	cr_assert_eq(bl, 28);
	cr_assert_eq(n, 2);
	cr_assert_eq(ferry__wire_resp_attr_get(f.payload, bl, 1, &out), 0);
	cr_assert_eq(out.i, 3);
	cr_assert_arr_eq(f.payload + bl, "ok", 2);
}
