/* SPDX-License-Identifier: MIT */
/*
 * hs_util.h - shared fixtures of the wire v2 handshake tests
 * (tests/test_handshake*.c): the addresses and parameters of
 * docs/wire.md section 9.2, a client and a server, and the steps of an
 * exchange between them in memory.  Every received datagram is copied into
 * a heap buffer of exactly its length, so a sanitizer build catches a read
 * past its end.
 */
#ifndef FERRY_TESTS_HS_UTIL_H
#define FERRY_TESTS_HS_UTIL_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <ferry/error.h>

#include "transport/handshake.h"
#include "transport/seal.h"

#define NS 1000000000ull
#define T0_S 1800000000ull /* section 9.2's clock */
#define T0 (T0_S * NS)

/* 192.0.2.@host:@port, ip in network order as ferry_addr has it. */
static inline struct ferry_addr hs_addr(uint8_t host, uint16_t port)
{
	struct ferry_addr a = {htonl(0xc0000200u | host), port};

	return a;
}

#define CLI hs_addr(2, 40000)
#define SRV hs_addr(1, 31850)

static inline struct ferry_w2_params hs_params(void)
{
	return (struct ferry_w2_params){8u << 20, 1u << 20, 1472, 128, 1000,
					11};
}

static inline struct ferry_hs_client_cfg hs_ccfg(uint8_t mode)
{
	struct ferry_hs_client_cfg c;

	memset(&c, 0, sizeof(c));
	c.mode = mode;
	c.params = hs_params();
	c.features = FERRY_W2_FEAT_IOU | FERRY_W2_FEAT_TRACE;
	return c;
}

static inline struct ferry_hs_server_cfg hs_scfg(uint8_t mode)
{
	struct ferry_hs_server_cfg s = {
		.cid = 0x9a4f1c6e2d8b7035ull,
		.mode = mode,
		.params = hs_params(),
		.features = FERRY_W2_FEAT_IOU,
	};

	return s;
}

/* A datagram as the network delivers it: a heap buffer of exactly its
 * length. */
struct hs_dg {
	uint8_t *p;
	size_t len;
};

static inline struct hs_dg hs_dg(const uint8_t *p, size_t len)
{
	struct hs_dg d = {malloc(len ? len : 1), len};

	cr_assert_not_null(d.p);
	memcpy(d.p, p, len);
	return d;
}

static inline void hs_dg_free(struct hs_dg *d)
{
	free(d->p);
	d->p = NULL;
}

/* The client's CONNECT now. */
static inline struct hs_dg hs_connect(struct ferry_hs_client *c)
{
	uint8_t buf[FERRY_HS_CONNECT_MAX];
	int n = ferry__hs_client_build(c, buf, sizeof(buf));

	cr_assert_gt(n, 0, "build: %d", n);
	return hs_dg(buf, (size_t)n);
}

/* Server input of @d from @peer at @now; the reply, if any, in @reply. */
static inline enum ferry_hs_verdict
hs_srv_in(struct ferry_hs_server *s, const struct hs_dg *d,
	  struct ferry_addr peer, uint64_t now, struct hs_dg *reply,
	  struct ferry_hs_server_result *res)
{
	uint8_t buf[FERRY_HS_REPLY_MAX];
	struct ferry_addr local = SRV;
	enum ferry_hs_verdict v;

	v = ferry__hs_server_input(s, d->p, d->len, &peer, &local, now, buf,
				   sizeof(buf), res);
	if (reply) {
		reply->p = NULL;
		reply->len = 0;
		if (v == FERRY_HS_REPLY) {
			/* Section 4.3: never more than 3x to an address
			 * that has not proved itself. */
			cr_assert_leq(res->reply_len, 3 * d->len);
			*reply = hs_dg(buf, res->reply_len);
		}
	}
	return v;
}

static inline enum ferry_hs_verdict
hs_cli_in(struct ferry_hs_client *c, const struct hs_dg *d,
	  struct ferry_hs_client_result *res)
{
	return ferry__hs_client_input(c, d->p, d->len, res);
}

/*
 * Run CONNECT (and RETRY, with the server's policy) until the server
 * admits: returns the admitted CONNECT's datagram (the caller frees it;
 * @conn points into it).
 */
static inline struct hs_dg hs_until_admit(struct ferry_hs_client *c,
					  struct ferry_hs_server *s,
					  uint64_t now,
					  struct ferry_hs_server_result *res)
{
	struct hs_dg con = hs_connect(c), rep;
	struct ferry_hs_client_result cr;
	enum ferry_hs_verdict v;

	v = hs_srv_in(s, &con, CLI, now, &rep, res);
	if (v == FERRY_HS_REPLY) {
		cr_assert_str_eq(res->sent, "retry_sent");
		cr_assert_eq(rep.len, FERRY_HS_RETRY_LEN);
		cr_assert_eq(hs_cli_in(c, &rep, &cr), FERRY_HS_RETRY);
		hs_dg_free(&rep);
		hs_dg_free(&con);
		con = hs_connect(c);
		v = hs_srv_in(s, &con, CLI, now, NULL, res);
	}
	cr_assert_eq(v, FERRY_HS_ADMIT, "verdict %d drop %s", v,
		     res->drop ? res->drop : "-");
	return con;
}

/* Both directions open what the other sealed: the keys agree. */
static inline void hs_keys_agree(const struct ferry__seal_keys *cli,
				 const struct ferry__seal_keys *srv,
				 enum ferry_seal_mode mode)
{
	static const uint8_t frames[] = {0x01, 0x00, 0x00, 0x00}; /* PING */
	uint8_t dg[13 + sizeof(frames) + 16];
	int n;

	cr_assert_arr_eq(cli->c2s, srv->c2s, 32);
	cr_assert_arr_eq(cli->s2c, srv->s2c, 32);
	cr_assert_arr_neq(cli->c2s, cli->s2c, 32);
	for (int dir = 0; dir < 2; dir++) {
		const uint8_t *tx = dir ? srv->s2c : cli->c2s;
		const uint8_t *rx = dir ? cli->s2c : srv->c2s;

		memset(dg, 0x80 | mode, 13);
		memcpy(dg + 13, frames, sizeof(frames));
		n = ferry__seal(mode, tx, 1, dg, 13, 13 + sizeof(frames));
		cr_assert_gt(n, 0);
		cr_assert_eq(ferry__seal_open(mode, rx, 1, dg, 13, (size_t)n),
			     13 + (int)sizeof(frames));
		cr_assert_arr_eq(dg + 13, frames, sizeof(frames));
	}
}

#endif /* FERRY_TESTS_HS_UTIL_H */
