/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame.c - libFuzzer target for the wire-format v1 frame parser.
 *
 * Runs ferry__wire_parse() on the input as if it were a received datagram,
 * then the body parser the frame type calls for (connect TLVs for CONNECT
 * and ACCEPT, the error body for ERROR and error RESPONSEs).  Besides the
 * sanitizers' memory checks, it traps on any broken parser invariant:
 *   - a parsed frame's payload lies inside the input, right after the
 *     header, and pay_len == size - 44;
 *   - data frames (and PUSH) satisfy frag_off + pay_len <= msg_len <=
 *     max_msg; control frames have msg_len == pay_len;
 *   - ferry__wire_encode() of the parsed header reproduces input bytes
 *     0..39 exactly (everything but the csum field);
 *   - accepted bodies point inside the payload and respect their limits,
 *     token tables (a whole REQUEST with FF_CAPS) included;
 *   - a whole REQUEST with FF_TRACE: its trace block, then the token table
 *     behind it (with FF_CAPS); a whole RESPONSE with FF_TRACE: its
 *     attribute block.  What they accept encodes back to the same bytes.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/fuzz/meson.build).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ferry/error.h>

#include "transport/wire.h"
#include "fuzz_check.h"

#define FUZZ_MAX_MSG (8u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_connect(const struct ferry_frame *f)
{
	struct ferry_connect_body b;
	int rc = ferry__wire_parse_connect(f->payload, f->pay_len, &b);

	CHECK(rc == 0 || rc == -1 || rc == FERRY_CONNECT_UNSUPPORTED);
	if (rc == -1)
		return;
	/* Accepted, or well formed but refused: either way fully checked. */
	CHECK(b.have_params);
	CHECK(b.params.max_msg != 0 && b.params.max_msg <= FERRY_WIRE_MAX_MSG);
	CHECK(b.params.credits != 0 && b.params.slots != 0);
	CHECK(b.params.max_frame >= FERRY_WIRE_MIN_FRAME);
	if (b.traceparent) {
		CHECK(b.traceparent_len == FERRY_TRACEPARENT_LEN);
		CHECK(inside(b.traceparent, b.traceparent_len, f->payload,
			     f->pay_len));
	} else {
		CHECK(b.traceparent_len == 0);
	}
	if (b.tracestate) {
		CHECK(b.tracestate_len <= FERRY_TRACESTATE_MAX);
		CHECK(inside(b.tracestate, b.tracestate_len, f->payload,
			     f->pay_len));
	} else {
		CHECK(b.tracestate_len == 0);
	}
	if (b.token)
		CHECK(inside(b.token, b.token_len, f->payload, f->pay_len));
}

static void check_error(const struct ferry_frame *f)
{
	uint32_t code;
	const char *msg;
	uint16_t msg_len;

	if (ferry__wire_parse_error(f->payload, f->pay_len, &code, &msg,
				   &msg_len) != 0)
		return;
	CHECK(code != 0 && code <= 0x7fffffffu);
	CHECK(msg_len <= FERRY_ERROR_MSG_MAX);
	CHECK((size_t)msg_len + 6 == f->pay_len);
	CHECK(inside(msg, msg_len, f->payload, f->pay_len));
}

/* A token table at the start of @p (@len: the rest of a whole REQUEST
 * with FF_CAPS). */
static void check_caps(const uint8_t *p, size_t len)
{
	struct ferry_cap_ent e;
	uint32_t tl = 0;
	unsigned n = 0, ni = 0, seen = 0;
	int rc = ferry__wire_parse_caps(p, len, &tl, &n, &ni);

	CHECK(rc == 0 || rc == -FERRY_ECAPS || rc == -EPROTONOSUPPORT);
	if (rc != 0)
		return;
	CHECK(tl >= 4 && tl <= len && tl <= FERRY_WIRE_CAPS_MAX_LEN);
	CHECK(n >= 1 && n <= FERRY_WIRE_CAPS_MAX);
	for (unsigned i = 0; i < n; i++) {
		CHECK(ferry__wire_caps_get(p, tl, i, &e) == 0);
		CHECK((e.kind == FERRY_CAPK_TOKEN && e.len != 0) ||
		      (e.kind == FERRY_CAPK_IOU && e.len == FERRY_CAPS_IOU_LEN));
		seen += e.kind == FERRY_CAPK_IOU;
		CHECK(inside(e.val, e.len, p + 4, tl - 4));
	}
	CHECK(seen == ni);
	CHECK(ferry__wire_caps_get(p, tl, n, &e) == -ENOENT);
}

/* A whole REQUEST with FF_TRACE: a trace block, then (with FF_CAPS) the
 * token table from its end on, as the server reads them. */
static void check_trace_request(const struct ferry_frame *f)
{
	uint8_t re[FERRY_TRACE_BLOCK_MAX];
	struct ferry_trace_block tb;
	uint32_t bl = 0;
	int rc = ferry__wire_parse_trace_block(f->payload, f->pay_len, &bl, &tb);

	CHECK(rc == 0 || rc == -EPROTONOSUPPORT || rc == -FERRY_EPROTO);
	if (rc == -FERRY_EPROTO)
		return; /* the call is refused: nothing after it is read */
	CHECK(bl >= FERRY_TRACE_BLOCK_MIN && bl <= FERRY_TRACE_BLOCK_MAX &&
	      bl <= f->pay_len);
	if (rc == 0) {
		CHECK(tb.traceparent == (const char *)f->payload + 4);
		CHECK(tb.tracestate_len == bl - FERRY_TRACE_BLOCK_MIN);
		CHECK(tb.tracestate_len == 0
			      ? tb.tracestate == NULL
			      : inside(tb.tracestate, tb.tracestate_len,
				       f->payload, bl));
		/* What parses encodes back to the same bytes. */
		CHECK(ferry__wire_put_trace_block(re, sizeof(re), tb.traceparent,
						 tb.tracestate,
						 tb.tracestate_len) == (int)bl);
		CHECK(memcmp(re, f->payload, bl) == 0);
	} else {
		CHECK(tb.traceparent == NULL && tb.tracestate == NULL);
	}
	if (f->h.flags & FERRY_FF_CAPS)
		check_caps(f->payload + bl, f->pay_len - bl);
}

/* A whole RESPONSE with FF_TRACE: its attribute block. */
static void check_resp_attrs(const struct ferry_frame *f)
{
	struct ferry_attr_ent ents[FERRY_WIRE_ATTRS_MAX], e;
	uint8_t re[FERRY_WIRE_ATTRS_MAX_LEN];
	uint32_t bl = 0;
	unsigned n = 7;
	int rc = ferry__wire_parse_resp_attrs(f->payload, f->pay_len, &bl, &n);

	CHECK(rc == 0 || rc == -EBADMSG || rc == -FERRY_EPROTO);
	if (rc == -FERRY_EPROTO)
		return;
	CHECK(bl >= FERRY_ATTRS_HDR_LEN && bl <= FERRY_WIRE_ATTRS_MAX_LEN &&
	      bl <= f->pay_len);
	if (rc != 0) {
		CHECK(n == 0);
		return;
	}
	CHECK(n >= 1 && n <= FERRY_WIRE_ATTRS_MAX);
	for (unsigned i = 0; i < n; i++) {
		CHECK(ferry__wire_resp_attr_get(f->payload, bl, i, &ents[i]) == 0);
		e = ents[i];
		CHECK(e.type >= FERRY_ATTRT_STRING && e.type <= FERRY_ATTRT_DOUBLE);
		CHECK(ferry__wire_attr_key_ok(e.key, e.key_len));
		CHECK(inside(e.key, e.key_len, f->payload + 4, bl - 4));
		if (e.type == FERRY_ATTRT_STRING)
			CHECK(e.str_len <= FERRY_WIRE_ATTR_STR_MAX &&
			      inside(e.str, e.str_len, f->payload + 4, bl - 4));
	}
	CHECK(ferry__wire_resp_attr_get(f->payload, bl, n, &e) == -ENOENT);
	CHECK(ferry__wire_put_resp_attrs(re, sizeof(re), ents, n) == (int)bl);
	CHECK(memcmp(re, f->payload, bl) == 0);
}

/* A PUSH body: records, each an IOU's token or error. */
static void check_push(const struct ferry_frame *f)
{
	uint8_t re[FERRY_PUSH_HDR_LEN + FERRY_PUSH_TOKEN_MAX];
	uint32_t off = 0;

	while (off < f->pay_len) {
		const uint8_t *rec = f->payload + off;
		struct ferry_push p;
		int n = ferry__wire_parse_push(rec, f->pay_len - off, &p), m;

		if (n < 0)
			return;
		CHECK(n == FERRY_PUSH_HDR_LEN + p.token_len &&
		      (uint32_t)n <= f->pay_len - off);
		CHECK(p.code == 0 ? p.token_len >= 1 &&
					    p.token_len <= FERRY_PUSH_TOKEN_MAX &&
					    inside(p.token, p.token_len, rec,
						   (size_t)n)
				  : p.token == NULL && p.token_len == 0);
		/* What parses encodes back to the same bytes. */
		m = ferry__wire_put_push(re, sizeof(re), &p);
		CHECK(m == n && memcmp(re, rec, (size_t)n) == 0);
		off += (uint32_t)n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_frame f;
	enum ferry_parse_err e;
	uint8_t re[FERRY_WIRE_HDR_LEN];
	const struct ferry_hdr *h = &f.h;

	e = ferry__wire_parse(data, size, FUZZ_MAX_MSG, &f);
	CHECK((unsigned)e <= (unsigned)FERRY_PARSE_OVERSIZED);
	if (size < FERRY_WIRE_HDR_LEN)
		CHECK(e == FERRY_PARSE_TRUNCATED);
	if (size > FERRY_WIRE_MAX_FRAME)
		CHECK(e == FERRY_PARSE_OVERSIZED);
	if (e != FERRY_PARSE_OK)
		return 0;

	/* The frame. */
	CHECK(size >= FERRY_WIRE_HDR_LEN && size <= FERRY_WIRE_MAX_FRAME);
	CHECK(f.payload == data + FERRY_WIRE_HDR_LEN);
	CHECK(f.pay_len == size - FERRY_WIRE_HDR_LEN);
	CHECK(inside(f.payload, f.pay_len, data, size));
	CHECK(h->version == FERRY_WIRE_VERSION);
	CHECK(h->type >= 1 && h->type <= FERRY_FT_MAX);
	CHECK((h->flags & ~FERRY_FF_KNOWN) == 0);
	CHECK(h->type == FERRY_FT_CONNECT ? h->dst_sess == 0
					  : h->dst_sess != 0);
	CHECK(h->src_sess != 0 || h->type == FERRY_FT_ERROR);
	if (ferry_ft_is_data(h->type)) {
		CHECK((uint64_t)h->frag_off + f.pay_len <= h->msg_len);
		CHECK(h->msg_len <= FUZZ_MAX_MSG);
		CHECK(f.pay_len != 0 || h->msg_len == 0);
		if (h->type == FERRY_FT_PUSH)
			CHECK(h->req_id == 0 && h->method == 0 &&
			      h->frag_off == 0 && h->msg_len == f.pay_len);
		else
			CHECK(h->req_id != 0);
	} else {
		CHECK(h->msg_len == f.pay_len);
		CHECK(h->frag_off == 0 && h->req_id == 0 && h->method == 0 &&
		      h->seq == 0);
	}
	if (h->flags & FERRY_FF_CSUM)
		CHECK(ferry__wire_csum(data, f.payload, f.pay_len) == h->csum);

	/* Re-encoding reproduces the header up to the csum field. */
	memset(re, 0xa5, sizeof(re));
	ferry__wire_encode(h, re);
	CHECK(memcmp(re, data, 40) == 0);
	CHECK(re[40] == 0 && re[41] == 0 && re[42] == 0 && re[43] == 0);

	/* The body. */
	if (h->type == FERRY_FT_CONNECT || h->type == FERRY_FT_ACCEPT)
		check_connect(&f);
	if (h->type == FERRY_FT_ERROR ||
	    (h->type == FERRY_FT_RESPONSE && (h->flags & FERRY_FF_ERR)))
		check_error(&f);
	if (h->type == FERRY_FT_REQUEST && h->frag_off == 0 &&
	    f.pay_len == h->msg_len) {
		if (h->flags & FERRY_FF_TRACE)
			check_trace_request(&f);
		else if (h->flags & FERRY_FF_CAPS)
			check_caps(f.payload, f.pay_len);
	}
	if (h->type == FERRY_FT_RESPONSE && (h->flags & FERRY_FF_TRACE)) {
		CHECK(!(h->flags & FERRY_FF_ERR));
		if (h->frag_off == 0 && f.pay_len == h->msg_len)
			check_resp_attrs(&f);
	}
	if (h->type == FERRY_FT_PUSH)
		check_push(&f);
	return 0;
}
