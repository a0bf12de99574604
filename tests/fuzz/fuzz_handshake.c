/* SPDX-License-Identifier: MIT */
/*
 * fuzz_handshake.c - libFuzzer target for the wire v2 handshake
 * (transport/handshake*.c; docs/wire.md section 4), which the transport
 * does not use yet.
 *
 * Feeds a sequence of datagrams (hs_fuzz.h: the input's layout) to the
 * server or to a connecting client, with the clock stepping between them,
 * and follows every verdict as the engine will: a server's admitted CONNECT
 * is POP-checked, accepted and refused; a client's RETRY makes it build
 * CONNECT again.  Besides the sanitizers' checks it traps on a broken
 * invariant:
 *   - every verdict is one of its side's, and a drop names its counter;
 *   - a reply is at most 3x the datagram it answers, fits its buffer, and
 *     names what it is; an admitted CONNECT's pointers lie in the datagram;
 *   - ACCEPT is 102 bytes and parses as an ACCEPT for the client's CID;
 *     REFUSE parses, and carries FERRY_EREJECTED unless POP verified;
 *   - a client that took ACCEPT holds a mode at least its own and a
 *     non-zero server CID, and after ACCEPTED or FAILED builds nothing.
 * Each datagram is copied to a heap buffer of exactly its length.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/fuzz/meson.build).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "hs_fuzz.h"
#include "transport/rd.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ferry_hs_server g_s;
static struct ferry_hs_client g_c;
static uint8_t g_con[FERRY_HS_CONNECT_MAX];

/* A long-header answer of @type: parse it as the client would. */
static void check_answer(const uint8_t *p, int n, uint8_t type, uint64_t dcid,
			 struct ferry_w2_hs *hs)
{
	struct ferry_w2_dgram d;

	CHECK(n > 0);
	CHECK(ferry__w2_parse_hdr(p, (size_t)n, &d) == FERRY_W2_OK);
	CHECK(d.type == type && d.dcid == dcid);
	CHECK(ferry__w2_hs_parse(&d, hs) == FERRY_W2_OK);
}

static void admitted(struct ferry_hs_conn *conn, const uint8_t *dg,
		     size_t len)
{
	struct ferry_hs_server_cfg sc = hsf_scfg();
	uint8_t out[FERRY_HS_REPLY_MAX], mode;
	struct ferry__seal_keys k;
	struct ferry_w2_hs hs;
	int n;

	CHECK(conn->client_cid != 0 && (uint32_t)conn->client_cid != 0);
	CHECK(conn->client_mode <= FERRY_W2_MODE_AEAD);
	CHECK(inside(conn->inner, conn->pop_covered, dg, len));
	CHECK(!conn->token || inside(conn->token, conn->token_len, dg, len));
	CHECK(!conn->pop || inside(conn->pop, FERRY_W2_POP_LEN, dg, len));
	CHECK(!conn->traceparent || inside(conn->traceparent, 55, dg, len));
	CHECK(!conn->tracestate ||
	      inside(conn->tracestate, conn->tracestate_len, dg, len));
	if (conn->token) {
		n = ferry__hs_server_check_pop(conn, hsf_hk());
		CHECK(n == 0 || n == -EBADMSG);
		CHECK(conn->pop_ok == (n == 0));
	}
	n = ferry__hs_server_accept(conn, &sc, conn->pop_ok ? hsf_hk() : NULL,
				    &k, &mode, out, sizeof(out));
	CHECK(n == FERRY_HS_ACCEPT_LEN || n == -EINVAL);
	if (n > 0) {
		CHECK(mode >= sc.mode && mode >= conn->client_mode);
		CHECK(conn->validated || (size_t)n <= 3 * len);
		check_answer(out, n, FERRY_W2_ACCEPT, conn->client_cid, &hs);
		CHECK(hs.hello.mode == mode);
	}
	n = ferry__hs_server_refuse(conn, FERRY_EVERSION, "why", out,
				    sizeof(out));
	check_answer(out, n, FERRY_W2_REFUSE, conn->client_cid, &hs);
	CHECK(conn->validated || (size_t)n <= 3 * len);
	CHECK(hs.error.code ==
	      (conn->pop_ok ? (uint32_t)FERRY_EVERSION : FERRY_EREJECTED));
}

static void to_server(const uint8_t *dg, size_t len, uint64_t now)
{
	struct ferry_addr peer = hsf_cli(), local = hsf_srv();
	struct ferry_hs_server_result res;
	uint8_t reply[FERRY_HS_REPLY_MAX];
	enum ferry_hs_verdict v;

	/* The peek an endpoint makes first (transport/listen.c): it reads
	 * within the datagram, whatever the bytes. */
	(void)ferry__hs_server_has_cookie(dg, len);
	v = ferry__hs_server_input(&g_s, dg, len, &peer, &local, now, reply,
				   sizeof(reply), &res);
	switch (v) {
	case FERRY_HS_DROP:
		CHECK(res.drop && *res.drop);
		break;
	case FERRY_HS_REPLY:
		CHECK(res.sent && res.reply_len <= sizeof(reply));
		CHECK(res.reply_len <= FERRY_HS_AMPLIFICATION * len);
		break;
	case FERRY_HS_ADMIT:
		CHECK(!res.drop);
		admitted(&res.conn, dg, len);
		break;
	default:
		CHECK(0);
	}
}

static void to_client(const uint8_t *dg, size_t len)
{
	struct ferry_hs_client_result res;
	enum ferry_hs_verdict v;

	v = ferry__hs_client_input(&g_c, dg, len, &res);
	switch (v) {
	case FERRY_HS_DROP:
		CHECK(res.drop && *res.drop);
		break;
	case FERRY_HS_RETRY:
		CHECK(g_c.have_cookie);
		CHECK(ferry__hs_client_build(&g_c, g_con, sizeof(g_con)) >=
		      (int)FERRY_W2_CONNECT_MIN);
		break;
	case FERRY_HS_ACCEPTED:
		CHECK(res.accept.mode >= FERRY_W2_MODE_MAC &&
		      res.accept.mode <= FERRY_W2_MODE_AEAD);
		CHECK(res.accept.server_cid != 0);
		CHECK(ferry__hs_client_build(&g_c, g_con, sizeof(g_con)) ==
		      -EINVAL);
		break;
	case FERRY_HS_FAILED:
		CHECK(res.err < 0);
		CHECK(ferry__hs_client_build(&g_c, g_con, sizeof(g_con)) ==
		      -EINVAL);
		break;
	default:
		CHECK(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t now = HSF_T0;
	struct ferry_rd r;
	unsigned mode;

	if (size < 1)
		return 0;
	mode = data[0];
	CHECK(hsf_server(&g_s, mode) == 0);
	CHECK(hsf_client(&g_c, mode, g_con, sizeof(g_con)) >=
	      (int)FERRY_W2_CONNECT_MIN);
	ferry_rd_init(&r, data + 1, size - 1);
	while (ferry_rd_left(&r) >= 3) {
		size_t n = ferry_rd_u16(&r);
		const uint8_t *p;
		uint8_t *dg;

		now += ferry_rd_u8(&r) * HSF_STEP_NS;
		if (n > ferry_rd_left(&r))
			n = ferry_rd_left(&r);
		p = ferry_rd_take(&r, n);
		dg = malloc(n ? n : 1);
		CHECK(dg != NULL);
		if (n)
			memcpy(dg, p, n);
		if (mode & HSF_TO_CLIENT)
			to_client(dg, n);
		else
			to_server(dg, n, now);
		free(dg);
	}
	ferry__hs_client_wipe(&g_c);
	return 0;
}
