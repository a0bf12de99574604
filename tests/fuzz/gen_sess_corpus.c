/* SPDX-License-Identifier: MIT */
/*
 * gen_sess_corpus.c - write the seed corpus of fuzz_session (sequences of
 * datagrams of one session to a live server endpoint).
 *
 *   gen_sess_corpus DIR
 *
 * Inputs describe datagrams, not their bytes (sess_fuzz.h: the fuzzer
 * seals them under the keys of its own handshake), so the seeds are
 * written here from the layout: a whole call and its acknowledgement, a
 * message in fragments in order and reversed, a PUSH, an ACK with ranges
 * after a clock jump, credit, ping and close, and the forgeries (a flipped
 * byte, the wrong key, a replay, an old pn, a cut datagram), in mac and
 * aead; and one datagram of more calls than the receiver keeps decoded
 * (transport/rx.c, RX_FRAMES_KEPT), as a raw frames area.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed.h"
#include "sess_fuzz.h"
#include "transport/wire.h"
#include "transport/wire2.h"

static const char *g_dir;
static uint8_t g_seed[4096];
static size_t g_len;

static void put8(unsigned v)
{
	if (g_len + 1 > sizeof(g_seed)) {
		fprintf(stderr, "gen_sess_corpus: seed too long\n");
		exit(1);
	}
	g_seed[g_len++] = (uint8_t)v;
}

static void put16(unsigned v)
{
	put8(v >> 8);
	put8(v);
}

static void put32(uint32_t v)
{
	put16(v >> 16);
	put16(v & 0xffff);
}

static void begin(unsigned setup)
{
	g_len = 0;
	put8(setup);
}

static void end(const char *name)
{
	seed_write("gen_sess_corpus", g_dir, name, g_seed, g_len);
}

/* A datagram of @nframes frames under pn kind @pn, corruption @bad; the
 * caller writes the pn's and the corruption's arguments, then the
 * frames. */
static void dgram(unsigned nframes, unsigned pn, unsigned bad)
{
	put8(SF_OP_DGRAM);
	put8((nframes - 1) | pn << 2 | bad << 5);
}

static void req(unsigned req_id, unsigned method, unsigned len)
{
	put8(SF_F_REQ);
	put8(0);
	put16(req_id);
	put8(method);
	put16(len);
	put8(0x33);
}

static void frag(unsigned req_id, unsigned method, unsigned units,
		 unsigned shortb, unsigned idx)
{
	put8(SF_F_FRAG);
	put8(0);
	put16(req_id);
	put8(method);
	put8(units);
	put8(shortb);
	put8(idx);
	put8(0x5a);
}

/* An ACK of the server's last pn and @first more below it. */
static void ack(unsigned first, unsigned nranges)
{
	put8(SF_F_ACK);
	put8(0);
	put16(first);
	put16(25);
	put8(nranges);
	for (unsigned i = 0; i < nranges; i++) {
		put8(1);
		put8(2);
	}
}

static void poll_n(unsigned n)
{
	put8(SF_OP_POLL);
	put8(n - 1);
}

static void clock_ms(unsigned tenths)
{
	put8(SF_OP_CLOCK);
	put8(128 + tenths);
}

static void a_call(unsigned setup, const char *name)
{
	begin(setup);
	dgram(1, SF_PN_NEXT, SF_BAD_NONE);
	req(1, 1, 100);
	poll_n(2);
	dgram(1, SF_PN_NEXT, SF_BAD_NONE);
	ack(0, 0);
	poll_n(1);
	dgram(1, SF_PN_NEXT, SF_BAD_NONE);
	req(2, 2, 700);
	poll_n(2);
	dgram(1, SF_PN_NEXT, SF_BAD_NONE);
	ack(3, 0);
	end(name);
}

static void frags(unsigned setup, bool reversed, const char *name)
{
	begin(setup);
	for (unsigned i = 0; i < 3; i++) {
		dgram(1, SF_PN_NEXT, SF_BAD_NONE);
		frag(1, 1, 3, 10, reversed ? 2 - i : i);
		poll_n(1);
	}
	dgram(1, SF_PN_NEXT, SF_BAD_NONE);
	ack(5, 0);
	poll_n(1);
	end(name);
}

static void a_push(void)
{
	struct ferry_push p = { .iou = 1, .code = 0,
				.token = (const uint8_t *)"token-bytes",
				.token_len = 11 };
	uint8_t rec[64];
	int n = ferry__wire_put_push(rec, sizeof(rec), &p);

	if (n < 0) {
		fprintf(stderr, "gen_sess_corpus: push record\n");
		exit(1);
	}
	begin(0);
	/* The push, then the same push_id again: a duplicate. */
	for (int k = 0; k < 2; k++) {
		dgram(1, SF_PN_NEXT, SF_BAD_NONE);
		put8(SF_F_PUSH);
		put16(1);
		put8((unsigned)n);
		for (int i = 0; i < n; i++)
			put8(rec[i]);
		poll_n(1);
	}
	end("push");
}

static void acks(void)
{
	begin(8); /* a small window: the server waits for credit */
	dgram(2, SF_PN_NEXT, SF_BAD_NONE);
	req(1, 1, 900);
	req(2, 2, 900);
	poll_n(2);
	clock_ms(5); /* 0.5 s: retransmissions */
	poll_n(2);
	dgram(2, SF_PN_NEXT, SF_BAD_NONE);
	ack(1, 2);
	put8(SF_F_CREDIT);
	put32(1u << 20);
	poll_n(2);
	end("ack_ranges");
}

static void misc(void)
{
	begin(2);
	dgram(3, SF_PN_NEXT, SF_BAD_NONE);
	put8(SF_F_PING);
	put8(SF_F_PAD);
	put8(40);
	put8(SF_F_CREDIT);
	put32(1u << 21);
	poll_n(1);
	dgram(1, SF_PN_NEXT, SF_BAD_NONE);
	put8(SF_F_CLOSE);
	put8(0);
	put32(0);
	poll_n(1);
	end("ping_close");
}

static void forged(void)
{
	begin(0);
	dgram(1, SF_PN_NEXT, SF_BAD_NONE);
	req(1, 1, 64);
	put8(SF_OP_REPLAY);
	put8(0);
	dgram(1, SF_PN_NEXT, SF_BAD_FLIP);
	req(2, 1, 64);
	put16(20);
	put8(0x40);
	dgram(1, SF_PN_NEXT, SF_BAD_KEY);
	req(3, 1, 64);
	dgram(1, SF_PN_OLD, SF_BAD_NONE);
	put16(0);
	req(4, 1, 64);
	dgram(1, SF_PN_AHEAD, SF_BAD_TRUNC);
	put16(5000);
	req(5, 1, 64);
	put16(30);
	dgram(1, SF_PN_NEXT, SF_BAD_TAG);
	put8(SF_F_PING);
	put8(SF_OP_CONNECT);
	put8(SF_OP_GARBAGE);
	put8(4);
	put32(0x80000000u);
	poll_n(2);
	end("forged");
}

/* 80 requests of 8 bytes in one datagram, more than the 68 frames the
 * receiver keeps from rule 7: the frame loop decodes them again. */
static void many_calls(void)
{
	enum { N = 80, BODY = 8 };

	begin(0);
	put8(SF_OP_RAWDG);
	put16(N * (FERRY_W2_FRAME_HDR_LEN + FERRY_W2_REQUEST_FIXED + BODY));
	for (unsigned i = 0; i < N; i++) {
		put8(FERRY_W2_REQUEST);
		put8(0);
		put16(FERRY_W2_REQUEST_FIXED + BODY);
		put32(i + 1); /* req_id */
		put16(1);     /* method */
		for (unsigned k = 0; k < BODY; k++)
			put8(i + k);
	}
	poll_n(4);
	end("many_calls");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_sess_corpus DIR\n");
		return 2;
	}
	g_dir = argv[1];
	a_call(0, "call_mac");
	a_call(1, "call_aead");
	frags(0, false, "frags_in_order");
	frags(5, true, "frags_reversed");
	a_push();
	acks();
	misc();
	forged();
	many_calls();
	return 0;
}
