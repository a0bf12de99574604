/* SPDX-License-Identifier: MIT */
/*
 * fuzz_dgram.c - libFuzzer target for the wire v2 codec (transport/wire2.c,
 * wire2_hs.c; docs/wire.md), which the transport does not use yet.
 *
 * Runs the input through what a v2 receiver would: the v1 envelope for a
 * first byte 0x46 (ferry__w2_envelope_open), else ferry__w2_parse_hdr; then
 * the frames (ferry__w2_check_frames for a short header, ferry__w2_hs_parse
 * for a long one).  Besides the sanitizers' checks, it traps on any broken
 * invariant:
 *   - header, frames and trailer lie within the input, back to back, and
 *     the trailer is as long as the header says;
 *   - every frame lies within the frame area, and the frames fill it;
 *     its decoded body lies within the frame;
 *   - every accepted datagram re-encodes to the same bytes: the header,
 *     each frame, and (rebuilt with the builder) the whole datagram, CRC
 *     included when the input's CRC is right; a tag is the caller's, so
 *     only the bytes before it are compared.  An envelope re-wraps to the
 *     same 68 bytes;
 *   - the iterator and ferry__w2_check_frames agree on the error, and
 *     so does ferry__w2_check_frames_into, whose kept frames (decoded
 *     into slots of garbage) encode back to their own bytes;
 *   - ACK ranges walk strictly down from the largest; pn reconstruction
 *     keeps the low 32 bits and stays in the window.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/fuzz/meson.build).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "transport/wire2.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t g_out[65536];

static void check_ack(const struct ferry_w2_ack *a, uint64_t expected)
{
	struct ferry_w2_pn_range r[FERRY_W2_ACK_RANGES_MAX + 1];
	uint64_t largest = ferry__w2_pn_expand(expected, a->largest);
	int n = ferry__w2_ack_ranges(a, largest, r);

	CHECK((uint32_t)largest == a->largest);
	if (n < 0) {
		CHECK(n == -FERRY_W2_E_ACK_BELOW_ZERO);
		return;
	}
	CHECK(n == 1 + a->nranges);
	CHECK(r[0].hi == largest);
	for (int i = 0; i < n; i++) {
		CHECK(r[i].lo <= r[i].hi);
		/* Strictly below the previous range, with a gap. */
		if (i > 0)
			CHECK(r[i].hi + 1 < r[i - 1].lo);
	}
}

/* One decoded frame @f at @p (@used bytes). */
static void check_frame(const struct ferry_w2_frame *f, const uint8_t *p,
			size_t used, uint64_t expected)
{
	int n;

	CHECK(used == FERRY_W2_FRAME_HDR_LEN + (size_t)f->len);
	CHECK(f->body == p + FERRY_W2_FRAME_HDR_LEN);
	switch (f->type) {
	case FERRY_W2_REQUEST:
	case FERRY_W2_REQUEST_FRAG:
	case FERRY_W2_RESPONSE:
	case FERRY_W2_RESPONSE_FRAG:
		CHECK(inside(f->u.data.bytes, f->u.data.bytes_len, f->body,
			     f->len));
		CHECK(f->u.data.req_id != 0);
		CHECK((uint64_t)f->u.data.offset + f->u.data.bytes_len <=
		      f->u.data.msg_len);
		break;
	case FERRY_W2_PUSH:
		CHECK(inside(f->u.push.recs, f->u.push.recs_len, f->body, f->len));
		CHECK(f->u.push.nrecs >= 1);
		break;
	case FERRY_W2_ACK:
		CHECK(f->u.ack.nranges <= FERRY_W2_ACK_RANGES_MAX);
		check_ack(&f->u.ack, expected);
		break;
	case FERRY_W2_HELLO:
		CHECK(inside(f->u.hello.pk, FERRY_W2_KEY_LEN, f->body, f->len));
		break;
	default:
		break;
	}
	/* The frame encodes back to its own bytes. */
	n = ferry__w2_put_frame(g_out, sizeof(g_out), f);
	CHECK(n >= 0 && (size_t)n == used);
	CHECK(memcmp(g_out, p, used) == 0);
}

/* Walk the frames of @d; returns the iterator's verdict. */
static enum ferry_w2_err walk(const struct ferry_w2_dgram *d,
			      uint64_t expected)
{
	struct ferry_w2_iter it;
	struct ferry_w2_frame f;
	const uint8_t *p = d->frames;
	size_t used;
	int rc;

	ferry__w2_iter_init(&it, d);
	while ((rc = ferry__w2_iter_next(&it, &f)) == 1) {
		used = FERRY_W2_FRAME_HDR_LEN + (size_t)f.len;
		CHECK(inside(p, used, d->frames, d->frames_len));
		check_frame(&f, p, used, expected);
		p += used;
	}
	if (rc == 0)
		CHECK(p == d->frames + d->frames_len);
	CHECK(rc <= 0 && -rc < FERRY_W2_E_COUNT);
	return (enum ferry_w2_err)-rc;
}

/* Rule 7 as the receiver runs it (ferry__w2_check_frames_into): the
 * verdict and the frame count of the plain check, and every kept frame,
 * decoded into a slot full of garbage (the decoder sets only what a
 * frame's type uses), encodes back to its own bytes. */
#define KEPT 4
static enum ferry_w2_err check_kept(const struct ferry_w2_dgram *d)
{
	static struct ferry_w2_frame kept[KEPT];
	const uint8_t *p = d->frames;
	enum ferry_w2_err e;
	unsigned n, i;

	memset(kept, 0xa5, sizeof(kept));
	e = ferry__w2_check_frames_into(d, kept, KEPT, &n);
	CHECK(e == ferry__w2_check_frames(d));
	for (i = 0; e == FERRY_W2_OK && i < n && i < KEPT; i++) {
		size_t used = FERRY_W2_FRAME_HDR_LEN + (size_t)kept[i].len;

		CHECK(kept[i].body == p + FERRY_W2_FRAME_HDR_LEN);
		CHECK(ferry__w2_put_frame(g_out, sizeof(g_out), &kept[i]) ==
		      (int)used);
		CHECK(memcmp(g_out, p, used) == 0);
		p += used;
	}
	if (e == FERRY_W2_OK) {
		struct ferry_w2_iter it;
		struct ferry_w2_frame f;

		ferry__w2_iter_init(&it, d);
		for (i = 0; ferry__w2_iter_next(&it, &f) == 1; i++)
			;
		CHECK(i == n);
	}
	return e;
}

/* Rebuild the datagram from its parsed header and frames. */
static void rebuild(const struct ferry_w2_dgram *d)
{
	struct ferry_w2_builder b;
	struct ferry_w2_iter it;
	struct ferry_w2_frame f;
	size_t len = (size_t)(d->trailer - d->start) + d->trailer_len;
	int n;

	CHECK(ferry__w2_build_begin(&b, g_out, sizeof(g_out), d) == 0);
	ferry__w2_iter_init(&it, d);
	while (ferry__w2_iter_next(&it, &f) == 1)
		CHECK(ferry__w2_build_frame(&b, &f) == 0);
	n = ferry__w2_build_end(&b);
	CHECK(n >= 0 && (size_t)n == len);
	CHECK(memcmp(g_out, d->start, len - d->trailer_len) == 0);
	if (d->trailer_len == FERRY_W2_CRC_LEN)
		CHECK((memcmp(g_out, d->start, len) == 0) == ferry__w2_crc_ok(d));
}

static void check_dgram(const struct ferry_w2_dgram *d, const uint8_t *data,
			size_t size, uint64_t expected)
{
	struct ferry_w2_hs hs;
	enum ferry_w2_err e, walked;
	uint8_t hdr[FERRY_W2_LONG_HDR_LEN];

	CHECK(inside(d->start, d->hdr_len, data, size));
	CHECK(d->frames == d->start + d->hdr_len);
	CHECK(inside(d->frames, d->frames_len, data, size));
	CHECK(d->trailer == d->frames + d->frames_len);
	CHECK(inside(d->trailer, d->trailer_len, data, size));
	CHECK(d->trailer_len == ferry__w2_trailer_len(d));
	CHECK(d->frames_len >= FERRY_W2_FRAME_HDR_LEN);
	CHECK(ferry__w2_put_hdr(hdr, sizeof(hdr), d) == (int)d->hdr_len);
	CHECK(memcmp(hdr, d->start, d->hdr_len) == 0);

	e = check_kept(d);
	walked = walk(d, expected);
	CHECK(e == walked);
	if (d->is_long) {
		enum ferry_w2_err h = ferry__w2_hs_parse(d, &hs);

		/* The message's rules come after every frame's. */
		if (e != FERRY_W2_OK)
			CHECK(h == e);
		if (h == FERRY_W2_OK) {
			CHECK(inside(d->start, hs.pop_covered, data, size));
			CHECK(!hs.pop || hs.pop == d->start + hs.pop_covered + 4);
		}
	}
	if (e == FERRY_W2_OK)
		rebuild(d);
}

static void check_envelope(const uint8_t *data, size_t size,
			   const struct ferry_w2_dgram *d)
{
	struct ferry_connect_body cb;
	struct ferry_frame fr;
	uint8_t *out = g_out;
	size_t inner = size - FERRY_W2_ENV_LEN;

	CHECK(size >= FERRY_W2_CONNECT_MIN);
	CHECK(d->start == data + FERRY_W2_ENV_LEN);
	CHECK(ferry__wire_parse(data, size, FERRY_WIRE_MAX_MSG, &fr) ==
	      FERRY_PARSE_OK);
	CHECK(ferry__wire_parse_connect(fr.payload, fr.pay_len, &cb) ==
	      FERRY_CONNECT_UNSUPPORTED);
	/* Re-wrap the inner datagram: the same 68 bytes in front. */
	memcpy(out + FERRY_W2_ENV_LEN, d->start, inner);
	CHECK(ferry__w2_envelope_wrap(out, inner, &cb.params) == (int)size);
	CHECK(memcmp(out, data, FERRY_W2_ENV_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_w2_dgram d;
	enum ferry_w2_err e;
	uint64_t expected = 0;
	uint32_t id;

	if (size > FERRY_W2_MAX_DGRAM + 1)
		return 0;
	/* A reference pn from the input itself, to test reconstruction. */
	if (size >= 8)
		memcpy(&expected, data + size - 8, 8);
	{
		uint64_t pn = ferry__w2_pn_expand(expected, (uint32_t)size);
		uint64_t dist = pn > expected ? pn - expected : expected - pn;

		CHECK((uint32_t)pn == (uint32_t)size);
		/* In the window, unless pushed in by either end of 2^64. */
		CHECK(dist <= (1ull << 31) || pn < (1ull << 32) ||
		      pn > UINT64_MAX - (1ull << 32));
	}
	if (size > 0 && data[0] == FERRY_W2_V1_FIRST) {
		e = ferry__w2_envelope_open(data, size, &d, &id);
		CHECK((unsigned)e < FERRY_W2_E_COUNT && e != FERRY_W2_E_V1_FORM);
		if (e != FERRY_W2_OK)
			return 0;
		CHECK(id != 0 && id == (uint32_t)d.scid);
		check_envelope(data, size, &d);
	} else {
		e = ferry__w2_parse_hdr(data, size, &d);
		CHECK((unsigned)e < FERRY_W2_E_COUNT);
		if (size < FERRY_W2_MIN_DGRAM && e == FERRY_W2_OK)
			__builtin_trap();
		if (e != FERRY_W2_OK)
			return 0;
		CHECK(d.start == data);
		CHECK((size_t)(d.trailer - data) + d.trailer_len == size);
	}
	check_dgram(&d, data, size, expected);
	return 0;
}
