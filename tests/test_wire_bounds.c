/* SPDX-License-Identifier: MIT */
/*
 * test_wire_bounds.c - Criterion tests that no parser of the
 * wire-format v1 codec (transport/wire.c) reads outside its input: random
 * bytes and mutated, truncated valid frames, each parsed from a heap block
 * of exactly its length, through the frame parser and every body parser.
 */
#include <criterion/criterion.h>

#include "wire_util.h"

/* --- bounds: random input never makes a parser read outside it ---------- */

static void check_ok_frame(const uint8_t *buf, size_t len,
			   const struct ferry_frame *f)
{
	cr_assert_eq(f->payload, buf + HDR);
	cr_assert_eq(f->pay_len, len - HDR);
	if (is_fragmented_type(f->h.type))
		cr_assert_leq((uint64_t)f->h.frag_off + f->pay_len, f->h.msg_len);
	else
		cr_assert_eq(f->h.msg_len, f->pay_len);
}

static void parse_all(const uint8_t *buf, size_t len)
{
	struct ferry_frame f;
	struct ferry_connect_body cb;
	uint32_t code;
	const char *m;
	uint16_t ml;
	int rc;

	if (ferry__wire_parse(buf, len, BIG_MAX_MSG, &f) == FERRY_PARSE_OK) {
		check_ok_frame(buf, len, &f);
		if (f.h.type == FERRY_FT_CONNECT || f.h.type == FERRY_FT_ACCEPT)
			(void)ferry__wire_parse_connect(f.payload, f.pay_len, &cb);
		if (f.h.type == FERRY_FT_ERROR ||
		    (f.h.type == FERRY_FT_RESPONSE && (f.h.flags & FERRY_FF_ERR)))
			(void)ferry__wire_parse_error(f.payload, f.pay_len, &code,
						     &m, &ml);
	}
	/* The body parsers take untrusted bytes too. */
	rc = ferry__wire_parse_connect(buf, len, &cb);
	cr_assert(rc == 0 || rc == -1 || rc == FERRY_CONNECT_UNSUPPORTED,
		  "parse_connect returned %d", rc);
	if (rc != -1) {
		cr_assert(cb.have_params);
		if (cb.traceparent)
			cr_assert((const uint8_t *)cb.traceparent >= buf &&
				  (const uint8_t *)cb.traceparent +
						  cb.traceparent_len <=
					  buf + len);
		if (cb.tracestate)
			cr_assert((const uint8_t *)cb.tracestate >= buf &&
				  (const uint8_t *)cb.tracestate +
						  cb.tracestate_len <=
					  buf + len);
		if (cb.token)
			cr_assert(cb.token >= buf && cb.token_len > 0 &&
				  cb.token + cb.token_len <= buf + len);
	}
	/* So does the token table parser, and walking what it accepts. */
	{
		uint32_t tl;
		unsigned n, ni;

		rc = ferry__wire_parse_caps(buf, len, &tl, &n, &ni);
		cr_assert(rc == 0 || rc == -FERRY_ECAPS ||
			  rc == -EPROTONOSUPPORT);
		if (rc == 0) {
			struct ferry_cap_ent e;

			cr_assert(tl <= len && tl <= FERRY_WIRE_CAPS_MAX_LEN);
			cr_assert(n >= 1 && n <= FERRY_WIRE_CAPS_MAX);
			for (unsigned i = 0; i < n; i++) {
				cr_assert_eq(ferry__wire_caps_get(buf, tl, i,
								 &e),
					     0);
				cr_assert(e.val >= buf + 8 &&
					  e.val + e.len <= buf + tl);
			}
			cr_assert_eq(ferry__wire_caps_get(buf, tl, n, &e),
				     -ENOENT);
		}
	}
	if (ferry__wire_parse_error(buf, len, &code, &m, &ml) == 0) {
		cr_assert_neq(code, 0);
		cr_assert_eq((size_t)ml + 6, len);
	}
	/* And the trace and attribute block parsers. */
	{
		struct ferry_trace_block tb;
		struct ferry_attr_ent e;
		uint32_t bl = 0;
		unsigned n;

		rc = ferry__wire_parse_trace_block(buf, len, &bl, &tb);
		cr_assert(rc == 0 || rc == -EPROTONOSUPPORT ||
			  rc == -FERRY_EPROTO);
		if (rc != -FERRY_EPROTO)
			cr_assert(bl >= FERRY_TRACE_BLOCK_MIN &&
				  bl <= FERRY_TRACE_BLOCK_MAX && bl <= len);
		if (rc == 0)
			cr_assert((const uint8_t *)tb.traceparent == buf + 4 &&
				  tb.tracestate_len == bl - 59);
		rc = ferry__wire_parse_resp_attrs(buf, len, &bl, &n);
		cr_assert(rc == 0 || rc == -EBADMSG || rc == -FERRY_EPROTO);
		if (rc == 0) {
			cr_assert(bl <= len && bl <= FERRY_WIRE_ATTRS_MAX_LEN);
			for (unsigned i = 0; i < n; i++) {
				cr_assert_eq(ferry__wire_resp_attr_get(buf, bl, i,
								      &e),
					     0);
				cr_assert((const uint8_t *)e.key >= buf + 8 &&
					  (const uint8_t *)e.key + e.key_len <=
						  buf + bl);
			}
			cr_assert_eq(ferry__wire_resp_attr_get(buf, bl, n, &e),
				     -ENOENT);
		}
	}
}

Test(wire_bounds, random_inputs_stay_in_bounds, .timeout = 100)
{
	uint8_t tmpl[200];

	for (int iter = 0; iter < 200000; iter++) {
		size_t len = (size_t)(rng_next() % 201);
		/* Exactly @len bytes: the input ends where the block ends. */
		uint8_t *buf = malloc(len ? len : 1);
		unsigned mode = (unsigned)(rng_next() % 4);

		cr_assert_not_null(buf);
		for (size_t i = 0; i < len; i++)
			tmpl[i] = (uint8_t)rng_next();
		if (mode >= 1 && len >= HDR) {
			/* Mostly-plausible header, so the deeper checks and the
			 * body parsers get exercised, not just the magic. */
			uint8_t t = (uint8_t)(1 + rng_next() % FERRY_FT_MAX);
			struct ferry_hdr h = valid_hdr(t, (uint32_t)(len - HDR));

			if (mode >= 2)
				h.flags = (uint16_t)(rng_next() & allowed_flags(t) &
						     ~FERRY_FF_CSUM);
			if (mode == 3) {
				/* Random fields that other rules check. */
				h.msg_len = (uint32_t)rng_next() %
					    (uint32_t)(len + 1);
				h.frag_off = (uint32_t)(rng_next() % 4) == 0
						     ? (uint32_t)rng_next()
						     : 0;
			}
			ferry__wire_encode(&h, tmpl);
			if (t == FERRY_FT_CONNECT || t == FERRY_FT_ACCEPT) {
				struct ferry_params pr = good_params();
				uint8_t *p = tmpl + HDR;

				if (len - HDR >= 20 && rng_next() % 2)
					params_tlv(p, &pr);
			}
		}
		memcpy(buf, tmpl, len);
		parse_all(buf, len);
		free(buf);
	}
}

Test(wire_bounds, mutated_valid_frames_stay_in_bounds, .timeout = 100)
{
	/* Valid frames of every type with random byte mutations and random
	 * truncations, each parsed from an exact-size heap block. */
	uint8_t body[256];
	struct ferry_connect_body cb;
	int cn;

	memset(&cb, 0, sizeof(cb));
	cb.have_params = true;
	cb.params = good_params();
	cb.traceparent = k_tp;
	cb.traceparent_len = FERRY_TRACEPARENT_LEN;
	cb.tracestate = k_ts;
	cb.tracestate_len = (uint16_t)strlen(k_ts);
	cn = ferry__wire_put_connect(body, sizeof(body), &cb);
	cr_assert_gt(cn, 0);

	for (int iter = 0; iter < 100000; iter++) {
		uint8_t t = (uint8_t)(1 + rng_next() % FERRY_FT_MAX);
		size_t pay_len;
		struct ferry_hdr h;
		uint8_t *full, *buf;
		size_t len, cut;

		if (t == FERRY_FT_CONNECT || t == FERRY_FT_ACCEPT) {
			pay_len = (size_t)cn;
		} else if (t == FERRY_FT_ERROR) {
			pay_len = ferry__wire_put_error(body, sizeof(body), 5,
						       "some error");
		} else {
			pay_len = (size_t)(rng_next() % 64);
			memset(body, 0x42, pay_len);
		}
		h = valid_hdr(t, (uint32_t)pay_len);
		full = build(&h, body, pay_len, &len);
		for (int k = (int)(rng_next() % 4); k > 0; k--)
			full[rng_next() % len] ^= (uint8_t)(1 + rng_next() % 255);
		cut = rng_next() % 3 == 0 ? (size_t)(rng_next() % (len + 1)) : len;
		buf = malloc(cut ? cut : 1);
		cr_assert_not_null(buf);
		memcpy(buf, full, cut);
		parse_all(buf, cut);
		free(buf);
		free(full);
	}
}
