/* SPDX-License-Identifier: MIT */
/*
 * gen_dgram_corpus.c - write the seed corpus of fuzz_dgram (the wire v2
 * codec, transport/wire2.c; docs/wire.md).
 *
 *   gen_dgram_corpus DIR
 *
 * Writes the datagrams of section 9 (9.1 in modes mac, none and aead; 9.2's
 * enveloped CONNECT, RETRY, CONNECT with cookie and ACCEPT), one datagram
 * per frame type (data and control frames in a short header, handshake
 * frames in the long-header message that carries them), a bare CONNECT, a
 * datagram of many frames, and a few near misses that fail one rule each,
 * one file per datagram, into DIR, which must exist.  The output is
 * deterministic, so tests/fuzz/corpus/dgram/ can be regenerated and
 * diffed.  Tags (mac, aead, ACCEPT) are left zero: they are step 2's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed.h"
#include "transport/wire2.h"

static const char *g_dir;
static int g_count;
static uint8_t g_buf[2048];

static const uint8_t k_pk[32] = {
	0xc1, 0xc9, 0x20, 0x96, 0xb2, 0x47, 0x38, 0xdb, 0x2e, 0x3f, 0xab,
	0x1f, 0x3c, 0xe7, 0xe9, 0xc4, 0x40, 0xa6, 0x2b, 0x40, 0xa8, 0xb6,
	0x33, 0x49, 0xd4, 0x15, 0xf4, 0xfc, 0x9e, 0x1f, 0x63, 0x30};
static const uint8_t k_mac[16] = {0xce, 0x5a, 0xa2, 0xf4, 0x0c, 0x00,
				  0x20, 0x3f, 0x4c, 0x33, 0x70, 0x4f,
				  0x63, 0xd1, 0xb1, 0x33};
static const char k_tp[] =
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
static const struct ferry_params k_v1 = {8u << 20, 128, 1472, 128};

#define SCID 0x3c5e8a1f0b7d9e24ull
#define DCID 0x9a4f1c6e2d8b7035ull

static void die(const char *what)
{
	fprintf(stderr, "gen_dgram_corpus: %s\n", what);
	exit(1);
}

static void write_seed(const char *name, const uint8_t *p, size_t n)
{
	seed_write("gen_dgram_corpus", g_dir, name, p, n);
	g_count++;
}

static struct ferry_w2_dgram hdr_short(uint8_t mode, uint32_t pn)
{
	struct ferry_w2_dgram d = {.mode = mode, .dcid = DCID, .pn = pn};

	return d;
}

static struct ferry_w2_dgram hdr_long(uint8_t type)
{
	struct ferry_w2_dgram d = {.is_long = true, .type = type,
				   .version = FERRY_W2_VERSION};

	d.dcid = type == FERRY_W2_CONNECT ? 0 : SCID;
	d.scid = type == FERRY_W2_CONNECT ? SCID
		 : type == FERRY_W2_ACCEPT ? DCID
					   : 0;
	return d;
}

/* Build @n frames under @d into @out (@cap), padded to @pad bytes if
 * non-zero; returns the length. */
static size_t build(uint8_t *out, size_t cap, const struct ferry_w2_dgram *d,
		    const struct ferry_w2_frame *fs, unsigned n, size_t pad)
{
	struct ferry_w2_builder b;
	int len;

	if (ferry__w2_build_begin(&b, out, cap, d) != 0)
		die("build_begin");
	for (unsigned i = 0; i < n; i++)
		if (ferry__w2_build_frame(&b, &fs[i]) != 0)
			die("build_frame");
	if (pad && ferry__w2_build_pad(&b, pad) != 0)
		die("build_pad");
	len = ferry__w2_build_end(&b);
	if (len < 0)
		die("build_end");
	return (size_t)len;
}

static void seed(const char *name, const struct ferry_w2_dgram *d,
		 const struct ferry_w2_frame *fs, unsigned n, size_t pad)
{
	write_seed(name, g_buf, build(g_buf, sizeof(g_buf), d, fs, n, pad));
}

static struct ferry_w2_frame fr(uint8_t type)
{
	struct ferry_w2_frame f = {.type = type};

	switch (type) {
	case FERRY_W2_HELLO:
		f.u.hello = (struct ferry_w2_hello){0x0004, 1, k_pk};
		break;
	case FERRY_W2_PARAMS:
		f.u.params = (struct ferry_w2_params){8u << 20, 1u << 20, 1472,
						      128, 1000, 11};
		break;
	case FERRY_W2_FEATURES:
		f.u.features = 3;
		break;
	case FERRY_W2_COOKIE:
		f.u.cookie = (struct ferry_w2_cookie){1800000000u, k_mac};
		break;
	case FERRY_W2_TOKEN:
	case FERRY_W2_POP:
		f.u.blob = (struct ferry_w2_blob){k_mac, 16};
		break;
	case FERRY_W2_TRACEPARENT:
		f.u.blob = (struct ferry_w2_blob){(const uint8_t *)k_tp, 55};
		break;
	case FERRY_W2_TRACESTATE:
		f.u.blob = (struct ferry_w2_blob){(const uint8_t *)"congo=t61", 9};
		break;
	case FERRY_W2_ERROR:
		f.u.err = (struct ferry_w2_errbody){1, "rejected", 8};
		break;
	default:
		break;
	}
	return f;
}

/* --- section 9 ---------------------------------------------------------- */

static void seeds_examples(void)
{
	struct ferry_w2_frame fs[5];
	struct ferry_w2_dgram d;
	size_t n;

	fs[0] = (struct ferry_w2_frame){.type = FERRY_W2_REQUEST};
	fs[0].u.data = (struct ferry_w2_data){
		.req_id = 41, .method = 7, .bytes = (const uint8_t *)"hello",
		.bytes_len = 5};
	fs[1] = fs[0];
	fs[1].u.data.req_id = 42;
	fs[1].u.data.bytes = (const uint8_t *)"world";
	for (uint8_t mode = 0; mode < 3; mode++) {
		static const char *const names[3] = {"s9_1_none", "s9_1_mac",
						     "s9_1_aead"};

		d = hdr_short(mode, 7);
		seed(names[mode], &d, fs, 2, 0);
	}

	/* 9.2: the client's CONNECT in its envelope, without and with the
	 * cookie; the RETRY; the ACCEPT (tag zero). */
	for (int cookie = 0; cookie < 2; cookie++) {
		unsigned k = 0;

		fs[k++] = fr(FERRY_W2_HELLO);
		if (cookie)
			fs[k++] = fr(FERRY_W2_COOKIE);
		fs[k++] = fr(FERRY_W2_PARAMS);
		fs[k++] = fr(FERRY_W2_FEATURES);
		d = hdr_long(FERRY_W2_CONNECT);
		n = build(g_buf + FERRY_W2_ENV_LEN, sizeof(g_buf) - FERRY_W2_ENV_LEN,
			  &d, fs, k, 512 - FERRY_W2_ENV_LEN);
		n = (size_t)ferry__w2_envelope_wrap(g_buf, n, &k_v1);
		write_seed(cookie ? "s9_2_connect_cookie" : "s9_2_connect",
			   g_buf, n);
	}
	fs[0] = fr(FERRY_W2_COOKIE);
	d = hdr_long(FERRY_W2_RETRY);
	seed("s9_2_retry", &d, fs, 1, 0);
	fs[0] = fr(FERRY_W2_HELLO);
	fs[1] = fr(FERRY_W2_PARAMS);
	fs[2] = fr(FERRY_W2_FEATURES);
	d = hdr_long(FERRY_W2_ACCEPT);
	seed("s9_2_accept", &d, fs, 3, 0);
	/* A bare CONNECT (no envelope) with a token and its POP. */
	fs[0] = fr(FERRY_W2_HELLO);
	fs[1] = fr(FERRY_W2_PARAMS);
	fs[2] = fr(FERRY_W2_TOKEN);
	fs[3] = fr(FERRY_W2_POP);
	d = hdr_long(FERRY_W2_CONNECT);
	seed("connect_bare_token", &d, fs, 4, 512);
}

/* --- one datagram per frame type ------------------------------------------ */

static void seeds_short_frames(void)
{
	static const uint8_t msg[] = "arguments of a call";
	struct ferry_push rec = {.iou = 7, .code = 0,
				 .token = (const uint8_t *)"tok", .token_len = 3};
	struct ferry_w2_dgram d = hdr_short(FERRY_W2_MODE_NONE, 3);
	struct ferry_w2_frame f;
	uint8_t recs[64];
	int rn;

	f = (struct ferry_w2_frame){.type = FERRY_W2_PADDING};
	f.u.blob.len = 40;
	seed("padding", &d, &f, 1, 0);
	f = (struct ferry_w2_frame){.type = FERRY_W2_PING};
	seed("ping", &d, &f, 1, 0);
	f = (struct ferry_w2_frame){.type = FERRY_W2_ACK};
	f.u.ack = (struct ferry_w2_ack){.largest = 100, .ack_delay = 25,
					.first_range = 2, .nranges = 2,
					.ranges = {{1, 3}, {4, 1}}};
	seed("ack", &d, &f, 1, 0);
	f.flags = FERRY_W2_F_ECN;
	f.u.ack.ect0 = 10;
	f.u.ack.ce = 1;
	seed("ack_ecn", &d, &f, 1, 0);
	f = (struct ferry_w2_frame){.type = FERRY_W2_CREDIT};
	f.u.credit_limit = 1u << 20;
	seed("credit", &d, &f, 1, 0);
	f = (struct ferry_w2_frame){.type = FERRY_W2_CLOSE,
				    .flags = FERRY_W2_F_REPLY};
	seed("close_reply", &d, &f, 1, 0);
	f = (struct ferry_w2_frame){.type = FERRY_W2_REQUEST,
				    .flags = FERRY_W2_F_CAPS};
	f.u.data = (struct ferry_w2_data){.req_id = 1, .method = 2,
					  .bytes = msg, .bytes_len = sizeof(msg)};
	seed("request", &d, &f, 1, 0);
	f.type = FERRY_W2_REQUEST_FRAG;
	f.flags = FERRY_W2_F_TRACE;
	f.u.data.msg_len = 3000;
	f.u.data.offset = 1401;
	seed("request_frag", &d, &f, 1, 0);
	f.type = FERRY_W2_RESPONSE_FRAG;
	seed("response_frag", &d, &f, 1, 0);
	f.type = FERRY_W2_RESPONSE;
	f.flags = 0;
	seed("response", &d, &f, 1, 0);
	f.flags = FERRY_W2_F_ERR;
	f.u.data.err = (struct ferry_w2_errbody){22, "bad argument", 12};
	seed("response_err", &d, &f, 1, 0);
	rn = ferry__wire_put_push(recs, sizeof(recs), &rec);
	if (rn < 0)
		die("put_push");
	f = (struct ferry_w2_frame){.type = FERRY_W2_PUSH};
	f.u.push = (struct ferry_w2_push){.push_id = 1, .recs = recs,
					  .recs_len = (uint16_t)rn};
	seed("push", &d, &f, 1, 0);
	f = (struct ferry_w2_frame){.type = FERRY_W2_TIMESTAMP};
	f.u.blob = (struct ferry_w2_blob){msg, 8};
	seed("ignorable_timestamp", &d, &f, 1, 0);
}

static void seeds_handshake_frames(void)
{
	static const uint8_t extra[] = {FERRY_W2_TOKEN, FERRY_W2_TRACEPARENT,
					FERRY_W2_TRACESTATE};
	static const char *const names[] = {"hs_token_pop", "hs_traceparent",
					    "hs_tracestate"};
	struct ferry_w2_frame fs[4];
	struct ferry_w2_dgram d = hdr_long(FERRY_W2_CONNECT);

	/* HELLO, PARAMS, FEATURES and COOKIE are in the section 9 seeds. */
	for (size_t i = 0; i < sizeof(extra); i++) {
		unsigned k = 0;

		fs[k++] = fr(FERRY_W2_HELLO);
		fs[k++] = fr(FERRY_W2_PARAMS);
		fs[k++] = fr(extra[i]);
		if (extra[i] == FERRY_W2_TOKEN)
			fs[k++] = fr(FERRY_W2_POP);
		seed(names[i], &d, fs, k, 512);
	}
	fs[0] = fr(FERRY_W2_ERROR);
	d = hdr_long(FERRY_W2_REFUSE);
	seed("hs_refuse_error", &d, fs, 1, 0);
}

/* --- many frames, and near misses -------------------------------------------- */

static void seeds_mixed_and_misses(void)
{
	struct ferry_w2_dgram d = hdr_short(FERRY_W2_MODE_MAC, 0xfffffffe);
	struct ferry_w2_frame fs[6];
	size_t n;

	fs[0] = (struct ferry_w2_frame){.type = FERRY_W2_ACK};
	fs[0].u.ack.largest = 9;
	fs[1] = (struct ferry_w2_frame){.type = FERRY_W2_CREDIT};
	fs[1].u.credit_limit = 4096;
	for (int i = 2; i < 5; i++) {
		fs[i] = (struct ferry_w2_frame){.type = FERRY_W2_RESPONSE};
		fs[i].u.data = (struct ferry_w2_data){
			.req_id = (uint32_t)i, .bytes = (const uint8_t *)"ok",
			.bytes_len = 2};
	}
	fs[5] = (struct ferry_w2_frame){.type = FERRY_W2_PING};
	seed("mixed_mac", &d, fs, 6, 0);

	/* One rule broken each: stray bytes after the last frame, a frame
	 * running into the trailer, an unknown core type, ERR with TRACE. */
	d.mode = FERRY_W2_MODE_NONE;
	n = build(g_buf, sizeof(g_buf), &d, fs + 5, 1, 0);
	memmove(g_buf + n - 2, g_buf + n - 4, 4);
	g_buf[n - 4] = 0;
	g_buf[n - 3] = 0;
	ferry__w2_put_crc(g_buf, n - 2);
	write_seed("miss_stray_bytes", g_buf, n + 2);
	n = build(g_buf, sizeof(g_buf), &d, fs + 1, 1, 0);
	g_buf[13 + 3] = 9;
	ferry__w2_put_crc(g_buf, n - 4);
	write_seed("miss_overrun", g_buf, n);
	g_buf[13] = 0x05;
	g_buf[13 + 3] = 4;
	ferry__w2_put_crc(g_buf, n - 4);
	write_seed("miss_unknown_type", g_buf, n);
	fs[2].flags = FERRY_W2_F_ERR | FERRY_W2_F_TRACE;
	fs[2].u.data.err = (struct ferry_w2_errbody){5, NULL, 0};
	seed("miss_err_trace", &d, fs + 2, 1, 0);
	/* A short CONNECT, and a v1 CONNECT without the envelope's TLV. */
	fs[0] = fr(FERRY_W2_HELLO);
	fs[1] = fr(FERRY_W2_PARAMS);
	d = hdr_long(FERRY_W2_CONNECT);
	seed("miss_connect_short", &d, fs, 2, 0);
	{
		struct ferry_connect_body cb = {.have_params = true,
						.params = k_v1};
		struct ferry_hdr h = {.type = FERRY_FT_CONNECT,
				      .src_sess = 0x0b7d9e24u,
				      .credit = 128};
		int m = ferry__wire_put_connect(g_buf + FERRY_WIRE_HDR_LEN,
						sizeof(g_buf) - FERRY_WIRE_HDR_LEN,
						&cb);

		if (m < 0)
			die("put_connect");
		h.msg_len = (uint32_t)m;
		ferry__wire_encode(&h, g_buf);
		write_seed("miss_v1_connect", g_buf,
			   FERRY_WIRE_HDR_LEN + (size_t)m);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	g_dir = argv[1];
	seeds_examples();
	seeds_short_frames();
	seeds_handshake_frames();
	seeds_mixed_and_misses();
	printf("gen_dgram_corpus: wrote %d seeds to %s\n", g_count, g_dir);
	return 0;
}
