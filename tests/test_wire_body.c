/* SPDX-License-Identifier: MIT */
/*
 * test_wire_body.c - Criterion unit tests for the CONNECT/ACCEPT
 * and ERROR bodies of the wire-format v1 codec (transport/wire.c): the
 * PARAMS, TRACEPARENT, TRACESTATE, TOKEN and FEATURES TLVs, their receiver
 * rules, and error bodies in ERROR frames and error responses.
 */
#include <criterion/criterion.h>

#include "wire_util.h"

/* --- connect / accept TLV bodies ----------------------------------------- */

/* Parse @len bytes copied to the end of an exact-size heap buffer. */
static int parse_connect_exact(const uint8_t *src, size_t len,
			       struct ferry_connect_body *out)
{
	uint8_t *b = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(b);
	if (len)
		memcpy(b, src, len);
	rc = ferry__wire_parse_connect(b, len, out);
	/* Repoint the body's views from the scratch copy into @src. */
	if (out->traceparent)
		out->traceparent = (const char *)src +
				   ((const uint8_t *)out->traceparent - b);
	if (out->tracestate)
		out->tracestate = (const char *)src +
				  ((const uint8_t *)out->tracestate - b);
	if (out->token)
		out->token = src + (out->token - b);
	free(b);
	return rc;
}

static void assert_params_eq(const struct ferry_params *a,
			     const struct ferry_params *b)
{
	cr_assert_eq(a->max_msg, b->max_msg);
	cr_assert_eq(a->credits, b->credits);
	cr_assert_eq(a->max_frame, b->max_frame);
	cr_assert_eq(a->slots, b->slots);
}

Test(wire_connect, round_trip_params_only)
{
	struct ferry_connect_body in, out;
	uint8_t buf[256];
	int n;

	memset(&in, 0, sizeof(in));
	in.have_params = true;
	in.params = good_params();
	n = ferry__wire_put_connect(buf, sizeof(buf), &in);
	cr_assert_eq(n, 4 + FERRY_TLV_PARAMS_LEN);
	cr_assert_eq(ferry__wire_parse_connect(buf, (size_t)n, &out), 0);
	cr_assert(out.have_params);
	assert_params_eq(&out.params, &in.params);
	cr_assert_null(out.traceparent);
	cr_assert_eq(out.traceparent_len, 0);
	cr_assert_null(out.tracestate);
	cr_assert_eq(out.tracestate_len, 0);
	cr_assert_null(out.token);
	cr_assert_eq(out.token_len, 0);
}

Test(wire_connect, round_trip_with_trace)
{
	struct ferry_connect_body in, out;
	uint8_t buf[1024];
	int n;

	memset(&in, 0, sizeof(in));
	in.have_params = true;
	in.params = good_params();
	in.traceparent = k_tp;
	in.traceparent_len = FERRY_TRACEPARENT_LEN;
	cr_assert_eq(strlen(k_tp), FERRY_TRACEPARENT_LEN);

	/* traceparent only */
	n = ferry__wire_put_connect(buf, sizeof(buf), &in);
	cr_assert_eq(n, 4 + 16 + 4 + 55);
	cr_assert_eq(ferry__wire_parse_connect(buf, (size_t)n, &out), 0);
	assert_params_eq(&out.params, &in.params);
	cr_assert_eq(out.traceparent_len, FERRY_TRACEPARENT_LEN);
	cr_assert(out.traceparent >= (const char *)buf &&
		  out.traceparent + 55 <= (const char *)buf + n);
	cr_assert_arr_eq(out.traceparent, k_tp, FERRY_TRACEPARENT_LEN);
	cr_assert_null(out.tracestate);

	/* traceparent and tracestate */
	in.tracestate = k_ts;
	in.tracestate_len = (uint16_t)strlen(k_ts);
	n = ferry__wire_put_connect(buf, sizeof(buf), &in);
	cr_assert_eq(n, 4 + 16 + 4 + 55 + 4 + (int)strlen(k_ts));
	cr_assert_eq(parse_connect_exact(buf, (size_t)n, &out), 0);
	cr_assert_eq(ferry__wire_parse_connect(buf, (size_t)n, &out), 0);
	cr_assert_arr_eq(out.traceparent, k_tp, FERRY_TRACEPARENT_LEN);
	cr_assert_eq(out.tracestate_len, strlen(k_ts));
	cr_assert_arr_eq(out.tracestate, k_ts, strlen(k_ts));

	/* tracestate only, and the largest one allowed */
	{
		static char big[FERRY_TRACESTATE_MAX];

		memset(big, 'a', sizeof(big));
		in.traceparent = NULL;
		in.traceparent_len = 0;
		in.tracestate = big;
		in.tracestate_len = FERRY_TRACESTATE_MAX;
		n = ferry__wire_put_connect(buf, sizeof(buf), &in);
		cr_assert_gt(n, 0);
		cr_assert_eq(ferry__wire_parse_connect(buf, (size_t)n, &out), 0);
		cr_assert_null(out.traceparent);
		cr_assert_eq(out.tracestate_len, FERRY_TRACESTATE_MAX);
		cr_assert_arr_eq(out.tracestate, big, FERRY_TRACESTATE_MAX);
	}
}

Test(wire_connect, round_trip_in_connect_and_accept_frames)
{
	static const uint8_t types[] = {FERRY_FT_CONNECT, FERRY_FT_ACCEPT};

	for (size_t i = 0; i < sizeof(types); i++) {
		struct ferry_connect_body in, out;
		uint8_t body[256];
		struct ferry_frame f;
		struct ferry_hdr h;
		size_t len;
		uint8_t *buf;
		int n;

		memset(&in, 0, sizeof(in));
		in.have_params = true;
		in.params = good_params();
		in.traceparent = k_tp;
		in.traceparent_len = FERRY_TRACEPARENT_LEN;
		n = ferry__wire_put_connect(body, sizeof(body), &in);
		cr_assert_gt(n, 0);
		h = valid_hdr(types[i], (uint32_t)n);
		h.flags = FERRY_FF_CSUM;
		buf = build(&h, body, (size_t)n, &len);
		cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f),
			     FERRY_PARSE_OK);
		cr_assert_eq(ferry__wire_parse_connect(f.payload, f.pay_len, &out),
			     0);
		assert_params_eq(&out.params, &in.params);
		cr_assert_arr_eq(out.traceparent, k_tp, FERRY_TRACEPARENT_LEN);
		free(buf);
	}
}

Test(wire_connect, put_connect_capacity)
{
	struct ferry_connect_body in;
	uint8_t buf[128];
	int need;

	memset(&in, 0, sizeof(in));
	in.have_params = true;
	in.params = good_params();
	in.traceparent = k_tp;
	in.traceparent_len = FERRY_TRACEPARENT_LEN;
	need = ferry__wire_put_connect(buf, sizeof(buf), &in);
	cr_assert_eq(need, 4 + 16 + 4 + 55);
	cr_assert_eq(ferry__wire_put_connect(buf, (size_t)need, &in), need);
	cr_assert_eq(ferry__wire_put_connect(buf, (size_t)need - 1, &in), -1);
	cr_assert_eq(ferry__wire_put_connect(buf, 0, &in), -1);
}

Test(wire_connect, missing_params)
{
	struct ferry_connect_body out;
	uint8_t b[128], *p;

	memset(b, 0, sizeof(b));
	cr_assert_eq(ferry__wire_parse_connect(b, 0, &out), -1);
	cr_assert_eq(ferry__wire_parse_connect(NULL, 0, &out), -1);
	p = tlv(b, FERRY_TLV_TRACEPARENT, 0, 55, k_tp, 55);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	p = tlv(b, 0x10, 0, 3, "abc", 3); /* unknown, skipped */
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
}

Test(wire_connect, params_wrong_length)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t v[32], b[64], *p;

	memset(v, 0, sizeof(v));
	params_bytes(v, &pr);
	for (uint16_t n = 0; n <= 32; n++) {
		p = tlv(b, FERRY_TLV_PARAMS, 0, n, v, n);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out),
			     n == 16 ? 0 : -1, "PARAMS length %u", n);
	}
}

Test(wire_connect, duplicate_params)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t b[128], *p = b;

	p = params_tlv(p, &pr);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), 0);
	p = params_tlv(p, &pr);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	/* Separated by another TLV: still a duplicate. */
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACEPARENT, 0, 55, k_tp, 55);
	p = params_tlv(p, &pr);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
}

Test(wire_connect, duplicate_trace_tlvs)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t b[256], *p;

	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACEPARENT, 0, 55, k_tp, 55);
	p = tlv(p, FERRY_TLV_TRACEPARENT, 0, 55, k_tp, 55);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACESTATE, 0, 3, "a=b", 3);
	p = tlv(p, FERRY_TLV_TRACESTATE, 0, 3, "a=b", 3);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	/* An empty tracestate still counts as present. */
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACESTATE, 0, 0, NULL, 0);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), 0);
	p = tlv(p, FERRY_TLV_TRACESTATE, 0, 0, NULL, 0);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
}

Test(wire_connect, tlv_runs_past_end)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t b[256], *p, *end;

	/* Every truncation of a valid body with trace TLVs is rejected. */
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACEPARENT, 0, 55, k_tp, 55);
	p = tlv(p, FERRY_TLV_TRACESTATE, 0, 3, "a=b", 3);
	end = p;
	cr_assert_eq(parse_connect_exact(b, (size_t)(end - b), &out), 0);
	for (size_t n = 0; n < (size_t)(end - b); n++) {
		/* Cut at a TLV boundary after PARAMS the body is whole. */
		bool whole = n == 20 || n == 20 + 4 + 55;

		cr_assert_eq(parse_connect_exact(b, n, &out), whole ? 0 : -1,
			     "len %zu", n);
	}

	/* A length field that claims more than is there. */
	p = params_tlv(b, &pr);
	p = tlv(p, 0x10, 0, 100, "abcd", 4); /* unknown, non-critical */
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	p = params_tlv(b, &pr);
	p = tlv(p, 0x10, 0, 0xffff, "abcd", 4);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	/* PARAMS itself claiming 16 with only 10 present. */
	{
		uint8_t v[16];

		params_bytes(v, &pr);
		p = tlv(b, FERRY_TLV_PARAMS, 0, 16, v, 10);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	}
	/* A partial TLV header after a good body. */
	for (size_t extra = 1; extra < 4; extra++) {
		p = params_tlv(b, &pr);
		memset(p, 0, extra);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b) + extra,
						 &out),
			     -1, "extra %zu", extra);
	}
}

Test(wire_connect, nonzero_reserved)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t b[128], v[16], *p;

	/* The TLV header's reserved byte, on known and unknown TLVs. */
	params_bytes(v, &pr);
	p = tlv(b, FERRY_TLV_PARAMS, 1, 16, v, 16);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	p = params_tlv(b, &pr);
	p = tlv(p, 0x10, 0x80, 1, "x", 1);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACEPARENT, 0xff, 55, k_tp, 55);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	/* PARAMS' own reserved word. */
	for (size_t i = 12; i < 16; i++) {
		params_bytes(v, &pr);
		v[i] = 1;
		p = tlv(b, FERRY_TLV_PARAMS, 0, 16, v, 16);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1,
			     "params byte %zu", i);
	}
}

Test(wire_connect, unknown_tlvs)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t b[512], filler[200], *p;

	memset(filler, 0x81, sizeof(filler)); /* looks like PARAMS inside */
	/* Non-critical unknown types are skipped, before or after PARAMS. */
	static const uint8_t skip[] = {0x00, 0x01, 0x04, 0x10, 0x7f};

	for (size_t i = 0; i < sizeof(skip); i++) {
		p = tlv(b, skip[i], 0, 5, "hello", 5);
		p = params_tlv(p, &pr);
		p = tlv(p, skip[i], 0, 0, NULL, 0);
		p = tlv(p, FERRY_TLV_TRACEPARENT, 0, 55, k_tp, 55);
		p = tlv(p, skip[i], 0, 200, filler, 200);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), 0,
			     "type %#x", skip[i]);
		assert_params_eq(&out.params, &pr);
		cr_assert_arr_eq(out.traceparent, k_tp, 55);
	}

	/* Critical unknown types refuse the connect: a well-formed body
	 * says FERRY_CONNECT_UNSUPPORTED.  (TOKEN, 0x84, is known.) */
	static const uint8_t crit[] = {0x80, 0x82, 0x83, 0x85, 0x90, 0xff};

	for (size_t i = 0; i < sizeof(crit); i++) {
		p = params_tlv(b, &pr);
		p = tlv(p, crit[i], 0, 2, "hi", 2);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out),
			     FERRY_CONNECT_UNSUPPORTED, "type %#x", crit[i]);
		cr_assert(out.have_params);
		assert_params_eq(&out.params, &pr);
		p = tlv(b, crit[i], 0, 0, NULL, 0);
		p = params_tlv(p, &pr);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out),
			     FERRY_CONNECT_UNSUPPORTED, "type %#x first",
			     crit[i]);
	}
}

Test(wire_connect, critical_tlv_in_malformed_body_is_malformed)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t b[256], *p;

	/* Malformed wins over unsupported, whatever the order. */
	p = tlv(b, 0x90, 0, 2, "hi", 2); /* no PARAMS */
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	pr.slots = 0; /* PARAMS out of range */
	p = tlv(b, 0x90, 0, 2, "hi", 2);
	p = params_tlv(p, &pr);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	pr = good_params();
	p = tlv(b, 0x90, 0, 2, "hi", 2);
	p = params_tlv(p, &pr);
	p = tlv(p, FERRY_TLV_TRACEPARENT, 0, 54, k_tp, 54); /* bad length */
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	p = params_tlv(b, &pr);
	p = tlv(p, 0x90, 0, 2, "hi", 2);
	p = tlv(p, 0x10, 1, 0, NULL, 0); /* nonzero reserved byte */
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	p = params_tlv(b, &pr);
	p = tlv(p, 0x90, 0, 2, "hi", 2);
	p = params_tlv(p, &pr); /* duplicate PARAMS */
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);

	p = params_tlv(b, &pr);
	p = tlv(p, 0x90, 0, 8, "hi", 2); /* runs past the end */
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
}

static int parse_params(const struct ferry_params *pr)
{
	struct ferry_connect_body out;
	uint8_t b[32], *p;

	p = params_tlv(b, pr);
	return parse_connect_exact(b, (size_t)(p - b), &out);
}

Test(wire_connect, params_out_of_range)
{
	struct ferry_params pr;

	pr = good_params();
	cr_assert_eq(parse_params(&pr), 0);

	pr = good_params();
	pr.max_frame = FERRY_WIRE_MIN_FRAME;
	cr_assert_eq(parse_params(&pr), 0);
	pr.max_frame = FERRY_WIRE_MIN_FRAME - 1;
	cr_assert_eq(parse_params(&pr), -1);
	pr.max_frame = 0;
	cr_assert_eq(parse_params(&pr), -1);

	pr = good_params();
	pr.credits = 0;
	cr_assert_eq(parse_params(&pr), -1);
	pr.credits = 1;
	cr_assert_eq(parse_params(&pr), 0);

	pr = good_params();
	pr.slots = 0;
	cr_assert_eq(parse_params(&pr), -1);
	pr.slots = 1;
	cr_assert_eq(parse_params(&pr), 0);

	pr = good_params();
	pr.max_msg = 0;
	cr_assert_eq(parse_params(&pr), -1);
	pr.max_msg = 1;
	cr_assert_eq(parse_params(&pr), 0);
	pr.max_msg = FERRY_WIRE_MAX_MSG;
	cr_assert_eq(parse_params(&pr), 0);
	pr.max_msg = FERRY_WIRE_MAX_MSG + 1;
	cr_assert_eq(parse_params(&pr), -1);
	pr.max_msg = UINT32_MAX;
	cr_assert_eq(parse_params(&pr), -1);
}

Test(wire_connect, traceparent_wrong_length)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	char v[64];
	uint8_t b[128], *p;

	memset(v, '0', sizeof(v));
	for (uint16_t n = 0; n <= 64; n++) {
		p = params_tlv(b, &pr);
		p = tlv(p, FERRY_TLV_TRACEPARENT, 0, n, v, n);
		cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out),
			     n == FERRY_TRACEPARENT_LEN ? 0 : -1, "len %u", n);
	}
}

Test(wire_connect, tracestate_too_long)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	static char v[FERRY_TRACESTATE_MAX + 1];
	static uint8_t b[1024];
	uint8_t *p;

	memset(v, 'k', sizeof(v));
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACESTATE, 0, FERRY_TRACESTATE_MAX, v,
		FERRY_TRACESTATE_MAX);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), 0);
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TRACESTATE, 0, FERRY_TRACESTATE_MAX + 1, v,
		FERRY_TRACESTATE_MAX + 1);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
}

/* --- error bodies -------------------------------------------------------- */

static int parse_error_exact(const uint8_t *src, size_t len, uint32_t *code,
			     const char **msg, uint16_t *msg_len, uint8_t **keep)
{
	uint8_t *b = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(b);
	if (len)
		memcpy(b, src, len);
	rc = ferry__wire_parse_error(b, len, code, msg, msg_len);
	if (rc == 0 && *msg_len)
		cr_assert(*msg >= (const char *)b &&
			  *msg + *msg_len <= (const char *)b + len);
	if (keep)
		*keep = b;
	else
		free(b);
	return rc;
}

Test(wire_error, round_trip)
{
	static const char *const msgs[] = {"", "x", "no such method"};
	uint8_t b[512];

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		uint32_t code = 0;
		const char *m = NULL;
		uint16_t ml = 0xffff;
		uint8_t *keep;
		size_t n = ferry__wire_put_error(b, sizeof(b), 42 + (uint32_t)i,
						msgs[i]);

		cr_assert_eq(n, 6 + strlen(msgs[i]));
		cr_assert_eq(parse_error_exact(b, n, &code, &m, &ml, &keep), 0);
		cr_assert_eq(code, 42 + i);
		cr_assert_eq(ml, strlen(msgs[i]));
		if (ml)
			cr_assert_arr_eq(m, msgs[i], ml);
		free(keep);
	}

	/* NULL message: empty body. */
	{
		uint32_t code;
		const char *m;
		uint16_t ml;
		size_t n = ferry__wire_put_error(b, sizeof(b), 0x7fffffffu, NULL);

		cr_assert_eq(n, 6);
		cr_assert_eq(ferry__wire_parse_error(b, n, &code, &m, &ml), 0);
		cr_assert_eq(code, 0x7fffffffu);
		cr_assert_eq(ml, 0);
		/* A code that would not negate into a negative int is
		 * malformed. */
		n = ferry__wire_put_error(b, sizeof(b), 0x80000000u, NULL);
		cr_assert_eq(ferry__wire_parse_error(b, n, &code, &m, &ml), -1);
		n = ferry__wire_put_error(b, sizeof(b), 0xffffffffu, NULL);
		cr_assert_eq(ferry__wire_parse_error(b, n, &code, &m, &ml), -1);
	}

	/* The longest message, and one the encoder must cut to it. */
	{
		char big[FERRY_ERROR_MSG_MAX + 50];
		uint32_t code;
		const char *m;
		uint16_t ml;
		size_t n;

		memset(big, 'e', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		n = ferry__wire_put_error(b, sizeof(b), 7, big);
		cr_assert_eq(n, 6 + FERRY_ERROR_MSG_MAX);
		cr_assert_eq(ferry__wire_parse_error(b, n, &code, &m, &ml), 0);
		cr_assert_eq(ml, FERRY_ERROR_MSG_MAX);
		cr_assert_arr_eq(m, big, FERRY_ERROR_MSG_MAX);
	}
}

Test(wire_error, put_error_small_buffer)
{
	uint8_t b[16];
	uint32_t code;
	const char *m;
	uint16_t ml;

	cr_assert_eq(ferry__wire_put_error(b, 0, 1, "abc"), 0);
	cr_assert_eq(ferry__wire_put_error(b, 5, 1, "abc"), 0);
	cr_assert_eq(ferry__wire_put_error(b, 6, 1, "abc"), 6);
	cr_assert_eq(ferry__wire_put_error(b, 8, 1, "abcdef"), 8);
	cr_assert_eq(ferry__wire_parse_error(b, 8, &code, &m, &ml), 0);
	cr_assert_eq(ml, 2);
	cr_assert_arr_eq(m, "ab", 2);
}

Test(wire_error, truncated)
{
	uint8_t b[64];
	size_t n = ferry__wire_put_error(b, sizeof(b), 9, "timed out");
	uint32_t code;
	const char *m;
	uint16_t ml;

	for (size_t k = 0; k < n; k++)
		cr_assert_eq(parse_error_exact(b, k, &code, &m, &ml, NULL), -1,
			     "len %zu", k);
	cr_assert_eq(ferry__wire_parse_error(NULL, 0, &code, &m, &ml), -1);
}

Test(wire_error, trailing_bytes)
{
	uint8_t b[64];
	size_t n = ferry__wire_put_error(b, sizeof(b), 9, "timed out");
	uint32_t code;
	const char *m;
	uint16_t ml;

	for (size_t extra = 1; extra < 8; extra++) {
		memset(b + n, 0, extra);
		cr_assert_eq(parse_error_exact(b, n + extra, &code, &m, &ml, NULL),
			     -1, "extra %zu", extra);
	}
}

Test(wire_error, code_zero)
{
	uint8_t b[64];
	size_t n = ferry__wire_put_error(b, sizeof(b), 0, "zero");
	uint32_t code;
	const char *m;
	uint16_t ml;

	cr_assert_eq(n, 10);
	cr_assert_eq(parse_error_exact(b, n, &code, &m, &ml, NULL), -1);
	n = ferry__wire_put_error(b, sizeof(b), 0, "");
	cr_assert_eq(parse_error_exact(b, n, &code, &m, &ml, NULL), -1);
}

Test(wire_error, message_too_long)
{
	static uint8_t b[6 + 1024];
	uint32_t code;
	const char *m;
	uint16_t ml;

	memset(b, 'z', sizeof(b));
	put_be32(b, 5);
	put_be16(b + 4, FERRY_ERROR_MSG_MAX);
	cr_assert_eq(parse_error_exact(b, 6 + FERRY_ERROR_MSG_MAX, &code, &m, &ml,
				       NULL),
		     0);
	put_be16(b + 4, FERRY_ERROR_MSG_MAX + 1);
	cr_assert_eq(parse_error_exact(b, 6 + FERRY_ERROR_MSG_MAX + 1, &code, &m,
				       &ml, NULL),
		     -1);
	put_be16(b + 4, 1024);
	cr_assert_eq(parse_error_exact(b, 6 + 1024, &code, &m, &ml, NULL), -1);
}

Test(wire_error, in_error_frame_and_error_response)
{
	uint8_t body[64];
	size_t n = ferry__wire_put_error(body, sizeof(body), 3, "bad method");
	struct ferry_hdr h;
	struct ferry_frame f;
	size_t len;
	uint8_t *buf;
	uint32_t code;
	const char *m;
	uint16_t ml;

	/* ERROR from a server that kept no session: src_sess 0. */
	h = valid_hdr(FERRY_FT_ERROR, (uint32_t)n);
	h.src_sess = 0;
	buf = build(&h, body, n, &len);
	cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f), FERRY_PARSE_OK);
	cr_assert_eq(ferry__wire_parse_error(f.payload, f.pay_len, &code, &m, &ml),
		     0);
	cr_assert_eq(code, 3);
	cr_assert_arr_eq(m, "bad method", ml);
	free(buf);

	h = valid_hdr(FERRY_FT_RESPONSE, (uint32_t)n);
	h.flags = FERRY_FF_ERR | FERRY_FF_CSUM;
	buf = build(&h, body, n, &len);
	cr_assert_eq(ferry__wire_parse(buf, len, BIG_MAX_MSG, &f), FERRY_PARSE_OK);
	cr_assert(f.h.flags & FERRY_FF_ERR);
	cr_assert_eq(ferry__wire_parse_error(f.payload, f.pay_len, &code, &m, &ml),
		     0);
	cr_assert_eq(code, 3);
	free(buf);
}

/* --- TOKEN TLV (section 5) ------------------------------------------------ */

Test(wire_connect, token_round_trip)
{
	struct ferry_connect_body in, out;
	uint8_t tok[300], buf[1024];
	int n;

	for (size_t i = 0; i < sizeof(tok); i++)
		tok[i] = (uint8_t)(i * 13 + 1);
	memset(&in, 0, sizeof(in));
	in.params = good_params();
	in.traceparent = k_tp;
	in.traceparent_len = 55;
	in.token = tok;
	in.token_len = sizeof(tok);
	n = ferry__wire_put_connect(buf, sizeof(buf), &in);
	cr_assert_eq(n, 4 + 16 + 4 + 55 + 4 + (int)sizeof(tok));
	/* TOKEN goes last, so a sender may lend its value separately. */
	cr_assert_eq(buf[n - (int)sizeof(tok) - 4], FERRY_TLV_TOKEN);
	cr_assert_eq(parse_connect_exact(buf, (size_t)n, &out), 0);
	cr_assert_eq(out.token_len, sizeof(tok));
	cr_assert_arr_eq(out.token, tok, sizeof(tok));
	/* Too small a buffer. */
	cr_assert_eq(ferry__wire_put_connect(buf, (size_t)n - 1, &in), -1);
	/* The TLV head helper writes what put_connect writes. */
	{
		uint8_t head[4];

		cr_assert_eq(ferry__wire_put_tlv_head(head, FERRY_TLV_TOKEN,
						     sizeof(tok)),
			     4);
		cr_assert_arr_eq(head, buf + n - (int)sizeof(tok) - 4, 4);
	}
}

Test(wire_connect, token_empty_or_twice_is_malformed)
{
	struct ferry_params pr = good_params();
	struct ferry_connect_body out;
	uint8_t b[256], *p;

	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TOKEN, 0, 0, NULL, 0);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TOKEN, 0, 3, "abc", 3);
	p = tlv(p, FERRY_TLV_TOKEN, 0, 3, "abc", 3);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
	/* Once, any length, anywhere: fine. */
	p = tlv(b, FERRY_TLV_TOKEN, 0, 1, "z", 1);
	p = params_tlv(p, &pr);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), 0);
	cr_assert_eq(out.token_len, 1);
	cr_assert_eq(out.token, b + 4);
	/* A TOKEN that runs past the body. */
	p = params_tlv(b, &pr);
	p = tlv(p, FERRY_TLV_TOKEN, 0, 9, "abc", 3);
	cr_assert_eq(parse_connect_exact(b, (size_t)(p - b), &out), -1);
}

/* --- FEATURES TLV ----------------------------------------------------------- */

Test(wire_connect, features)
{
	struct ferry_connect_body in, out;
	uint8_t b[256];
	int n;

	memset(&in, 0, sizeof(in));
	in.params = (struct ferry_params){ 1000, 8, 1500, 4 };
	in.features = FERRY_FEAT_IOU | 0x80000000u;
	n = ferry__wire_put_connect(b, sizeof(b), &in);
	cr_assert_eq(n, 4 + FERRY_TLV_PARAMS_LEN + 4 + FERRY_TLV_FEATURES_LEN);
	cr_assert_eq(ferry__wire_parse_connect(b, (size_t)n, &out), 0);
	/* Bits this build does not know pass through untouched. */
	cr_assert_eq(out.features, FERRY_FEAT_IOU | 0x80000000u);
	/* Twice, or of the wrong length: malformed. */
	memcpy(b + n, b + n - 8, 8);
	cr_assert_eq(ferry__wire_parse_connect(b, (size_t)n + 8, &out), -1);
	b[n - 8 + 3] = 3;
	cr_assert_eq(ferry__wire_parse_connect(b, (size_t)n - 1, &out), -1);
}
