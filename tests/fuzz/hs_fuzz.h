/* SPDX-License-Identifier: MIT */
/*
 * hs_fuzz.h - the fixed handshake state fuzz_handshake.c and
 * gen_hs_corpus.c share, so that seeds recorded from real handshakes mean
 * the same thing to the fuzzer: one client (fixed CID, ephemeral key seed,
 * token and holder key), one server (fixed cookie and bucket keys), the
 * addresses and clock of docs/wire-v2.md section 9.2.
 *
 * An input is a mode byte, then records of a 2-byte big-endian length, a
 * 1-byte clock step in units of 100 ms and that many datagram bytes.  Mode
 * bit 0: the datagrams go to the client (else to the server); bit 1: the
 * client carries a token, the server admits without a cookie (retry
 * never).
 */
#ifndef FERRY_FUZZ_HS_FUZZ_H
#define FERRY_FUZZ_HS_FUZZ_H

#include <arpa/inet.h>
#include <string.h>

#include "transport/handshake.h"

#define HSF_T0 (1800000000ull * 1000000000ull)
#define HSF_STEP_NS 100000000ull
#define HSF_TO_CLIENT 1u
#define HSF_TOKEN 2u

static const uint8_t hsf_token[120] = {2, 0, 0, 0, 1}; /* opaque here */

static inline struct ferry_addr hsf_cli(void)
{
	return (struct ferry_addr){htonl(0xc0000202u), 40000};
}

static inline struct ferry_addr hsf_srv(void)
{
	return (struct ferry_addr){htonl(0xc0000201u), 31850};
}

static inline const uint8_t *hsf_hk(void)
{
	static uint8_t hk[32];

	memset(hk, 0x68, sizeof(hk));
	return hk;
}

static inline struct ferry_w2_params hsf_params(void)
{
	return (struct ferry_w2_params){8u << 20, 1u << 20, 1472, 128, 1000,
					11};
}

/* The client of every input; its CONNECT is built once (the transcript). */
static inline int hsf_client(struct ferry_hs_client *c, unsigned mode,
			     uint8_t *buf, size_t cap)
{
	static uint8_t seed[32];
	struct ferry_hs_client_cfg cc;

	memset(seed, 0x61, sizeof(seed));
	memset(&cc, 0, sizeof(cc));
	cc.mode = FERRY_W2_MODE_MAC;
	cc.params = hsf_params();
	cc.features = FERRY_W2_FEAT_IOU | FERRY_W2_FEAT_TRACE;
	cc.cid = 0x3c5e8a1f0b7d9e24ull;
	cc.kx_seed = seed;
	if (mode & HSF_TOKEN) {
		cc.token = hsf_token;
		cc.token_len = sizeof(hsf_token);
		cc.hk = hsf_hk();
	}
	if (ferry__hs_client_init(c, &cc) != 0)
		return -1;
	return ferry__hs_client_build(c, buf, cap);
}

/* The server of every input: fixed keys, so recorded cookies pass. */
static inline int hsf_server(struct ferry_hs_server *s, unsigned mode)
{
	if (ferry__hs_server_init(s, (mode & HSF_TOKEN) ? FERRY_HS_RETRY_NEVER
							: FERRY_HS_RETRY_ALWAYS,
				  HSF_T0) != 0)
		return -1;
	for (int i = 0; i < 32; i++) {
		s->cookie_key[0][i] = (uint8_t)(0x40 + i);
		s->cookie_key[1][i] = (uint8_t)(0x80 + i);
	}
	memset(s->bucket_key, 0x5b, sizeof(s->bucket_key));
	return 0;
}

static inline struct ferry_hs_server_cfg hsf_scfg(void)
{
	return (struct ferry_hs_server_cfg){
		.cid = 0x9a4f1c6e2d8b7035ull,
		.mode = FERRY_W2_MODE_MAC,
		.params = hsf_params(),
		.features = FERRY_W2_FEAT_IOU,
	};
}

#endif /* FERRY_FUZZ_HS_FUZZ_H */
