/* SPDX-License-Identifier: MIT */
/*
 * The wire v2 handshake (transport/handshake*.c; docs/wire.md section
 * 4): whole exchanges between a client and a server in memory, with retry
 * always and never, with and without a token, in each mode, checking that
 * both sides derive the same keys by sealing with one and opening with the
 * other; section 9.2's CONNECT and RETRY byte for byte; a retransmitted
 * CONNECT answered with the stored ACCEPT; REFUSE with and without a
 * proven holder key; and the v1 refusals both ways.  The negative rules
 * are in test_handshake_rules.c.
 */
#include "hs_util.h"

#include "transport/wire.h"
#include "wire2_util.h"

/* A whole exchange; returns the client's verdict on ACCEPT and checks the
 * keys agree when it was taken. */
static void exchange(enum ferry_hs_retry policy, uint8_t cmode, uint8_t smode,
		     bool token)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(cmode);
	struct ferry_hs_client c;
	struct ferry_hs_server s;
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry_hs_server_cfg sc = hs_scfg(smode);
	struct ferry__seal_keys skeys;
	uint8_t hk[32], tok[200], acc[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con, ad;
	int n;

	randombytes_buf(hk, sizeof(hk));
	randombytes_buf(tok, sizeof(tok));
	if (token) {
		cc.token = tok;
		cc.token_len = sizeof(tok);
		cc.hk = hk;
	}
	cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
	cr_assert_neq(c.cid, 0);
	cr_assert_neq((uint32_t)c.cid, 0);
	cr_assert_eq(ferry__hs_server_init(&s, policy, T0), 0);
	con = hs_until_admit(&c, &s, T0, &sr);
	cr_assert_eq(sr.conn.validated, policy == FERRY_HS_RETRY_ALWAYS);
	cr_assert_eq(sr.cookie, policy == FERRY_HS_RETRY_ALWAYS
					? FERRY_HS_COOKIE_OK
					: FERRY_HS_COOKIE_NONE);
	cr_assert_eq(sr.conn.client_cid, c.cid);
	cr_assert_eq(sr.conn.client_mode, cmode);
	cr_assert_eq(sr.conn.params.max_frame, 1472);
	cr_assert_eq(sr.conn.features, cc.features);
	cr_assert_arr_eq(sr.conn.th, c.th, 32);
	if (token) {
		cr_assert_eq(sr.conn.token_len, sizeof(tok));
		cr_assert_arr_eq(sr.conn.token, tok, sizeof(tok));
		cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, hk), 0);
		cr_assert(sr.conn.pop_ok);
	} else {
		cr_assert_null(sr.conn.token);
	}
	n = ferry__hs_server_accept(&sr.conn, &sc, token ? hk : NULL, &skeys,
				    &mode, acc, sizeof(acc));
	cr_assert_eq(n, FERRY_HS_ACCEPT_LEN);
	cr_assert_eq(mode, cmode > smode ? cmode : smode);
	ad = hs_dg(acc, (size_t)n);
	cr_assert_eq(hs_cli_in(&c, &ad, &cr), FERRY_HS_ACCEPTED, "drop %s",
		     cr.drop ? cr.drop : "-");
	cr_assert_eq(cr.accept.server_cid, sc.cid);
	cr_assert_eq(cr.accept.mode, mode);
	cr_assert_eq(cr.accept.features, sc.features);
	cr_assert_eq(cr.accept.params.slots, 128);
	hs_keys_agree(&cr.accept.keys, &skeys, (enum ferry_seal_mode)mode);
	/* Secrets are gone once the keys exist (4.4 step 7). */
	for (size_t i = 0; i < sizeof(c.sk); i++)
		cr_assert_eq(c.sk[i] | c.hk[i], 0);
	/* The attempt has ended: the same ACCEPT again is stale. */
	cr_assert_eq(hs_cli_in(&c, &ad, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_stale");
	hs_dg_free(&ad);
	hs_dg_free(&con);
	ferry__hs_client_wipe(&c);
}

Test(handshake, retry_always_every_mode_pair)
{
	for (uint8_t cm = 0; cm <= FERRY_W2_MODE_AEAD; cm++)
		for (uint8_t sm = 0; sm <= FERRY_W2_MODE_AEAD; sm++)
			exchange(FERRY_HS_RETRY_ALWAYS, cm, sm, false);
}

Test(handshake, retry_never_every_mode)
{
	for (uint8_t m = 0; m <= FERRY_W2_MODE_AEAD; m++)
		exchange(FERRY_HS_RETRY_NEVER, m, FERRY_W2_MODE_MAC, false);
}

Test(handshake, with_token_and_holder_key)
{
	for (uint8_t m = 0; m <= FERRY_W2_MODE_AEAD; m++) {
		exchange(FERRY_HS_RETRY_ALWAYS, m, FERRY_W2_MODE_NONE, true);
		exchange(FERRY_HS_RETRY_NEVER, m, FERRY_W2_MODE_NONE, true);
	}
}

/* The keys depend on hk: a server that used zeros (no token) for a token
 * session, or another hk, does not match the client, whose ACCEPT check
 * fails. */
Test(handshake, holder_key_enters_the_keys)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_cfg sc = hs_scfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry__seal_keys k;
	struct ferry_hs_client c;
	struct ferry_hs_server s;
	uint8_t hk[32] = {7}, other[32] = {8}, tok[100] = {1};
	uint8_t acc[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con, ad;

	cc.token = tok;
	cc.token_len = sizeof(tok);
	cc.hk = hk;
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
		ferry__hs_server_init(&s, FERRY_HS_RETRY_NEVER, T0);
		con = hs_until_admit(&c, &s, T0, &sr);
		cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc,
						     i ? other : NULL, &k,
						     &mode, acc, sizeof(acc)),
			     FERRY_HS_ACCEPT_LEN);
		ad = hs_dg(acc, FERRY_HS_ACCEPT_LEN);
		cr_assert_eq(hs_cli_in(&c, &ad, &cr), FERRY_HS_DROP);
		cr_assert_str_eq(cr.drop, "drop_auth");
		hs_dg_free(&ad);
		hs_dg_free(&con);
	}
}

/* Section 4.1: a retransmitted CONNECT with cookie is the same bytes, is
 * admitted again with the same transcript, and the ACCEPT stored for the
 * first is what the client takes. */
Test(handshake, retransmitted_connect_gets_stored_accept)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_AEAD);
	struct ferry_hs_server_cfg sc = hs_scfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr, sr2;
	struct ferry_hs_client_result cr;
	struct ferry__seal_keys k;
	struct ferry_hs_client c;
	struct ferry_hs_server s;
	uint8_t acc[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con, con2, ad;

	cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
	ferry__hs_server_init(&s, FERRY_HS_RETRY_ALWAYS, T0);
	con = hs_until_admit(&c, &s, T0, &sr);
	cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					     acc, sizeof(acc)),
		     FERRY_HS_ACCEPT_LEN);
	/* The ACCEPT is lost; the client sends CONNECT again, 1 s later. */
	con2 = hs_connect(&c);
	cr_assert_eq(con2.len, con.len);
	cr_assert_arr_eq(con2.p, con.p, con.len);
	cr_assert_eq(hs_srv_in(&s, &con2, CLI, T0 + NS, NULL, &sr2),
		     FERRY_HS_ADMIT);
	cr_assert_eq(sr2.conn.client_cid, sr.conn.client_cid);
	cr_assert_arr_eq(sr2.conn.th, sr.conn.th, 32);
	ad = hs_dg(acc, FERRY_HS_ACCEPT_LEN);
	cr_assert_eq(hs_cli_in(&c, &ad, &cr), FERRY_HS_ACCEPTED);
	hs_keys_agree(&cr.accept.keys, &k, FERRY_SEAL_AEAD);
	hs_dg_free(&ad);
	hs_dg_free(&con);
	hs_dg_free(&con2);
}

/* REFUSE: generic to a peer that proved no holder key, precise to one
 * that did (section 4.5); the client's connect fails with that code. */
Test(handshake, refuse_generic_unless_pop_verified)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry_hs_client c;
	struct ferry_hs_server s;
	uint8_t hk[32] = {1, 2, 3}, tok[64] = {9}, buf[FERRY_HS_REPLY_MAX];
	struct hs_dg con, rf;
	int n;

	cc.token = tok;
	cc.token_len = sizeof(tok);
	cc.hk = hk;
	for (int proven = 0; proven < 2; proven++) {
		cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
		ferry__hs_server_init(&s, FERRY_HS_RETRY_ALWAYS, T0);
		con = hs_until_admit(&c, &s, T0, &sr);
		if (proven)
			cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, hk), 0);
		n = ferry__hs_server_refuse(&sr.conn, 4364 /* a token code */,
					    "token for another channel", buf,
					    sizeof(buf));
		cr_assert_gt(n, 0);
		rf = hs_dg(buf, (size_t)n);
		cr_assert_eq(hs_cli_in(&c, &rf, &cr), FERRY_HS_FAILED);
		cr_assert_eq(cr.err, proven ? -4364 : -FERRY_EREJECTED);
		/* Empty text when generic: 18 + 4 + 6 + 4. */
		if (!proven)
			cr_assert_eq(n, 32);
		hs_dg_free(&rf);
		hs_dg_free(&con);
	}
}

/* --- section 9.2, byte for byte ------------------------------------------ */

static const char k_ex92_connect_head[] =
	"46 52 01 01 00 00 00 00 00 00 00 00 0b 7d 9e 24"
	"00 00 00 00 00 00 00 00 00 00 00 80 00 00 00 00"
	"00 00 01 d4 00 00 00 00 00 00 00 00 81 00 00 10"
	"00 80 00 00 00 00 00 80 05 c0 00 80 00 00 00 00"
	"86 00 01 bc c0 02 00 00 00 00 00 00 00 00 3c 5e"
	"8a 1f 0b 7d 9e 24 20 00 00 24 00 04 01 00 c1 c9"
	"20 96 b2 47 38 db 2e 3f ab 1f 3c e7 e9 c4 40 a6"
	"2b 40 a8 b6 33 49 d4 15 f4 fc 9e 1f 63 30 21 00"
	"00 10 00 80 00 00 00 10 00 00 05 c0 00 80 03 e8"
	"0b 00 22 00 00 04 00 00 00 03 00 00 01 5e 00 00";
static const char k_ex92_retry_hex[] =
	"c1 02 3c 5e 8a 1f 0b 7d 9e 24 00 00 00 00 00 00"
	"00 00 23 00 00 14 6b 49 d2 00 ce 5a a2 f4 0c 00"
	"20 3f 4c 33 70 4f 63 d1 b1 33 5c 3f d5 1e";

Test(handshake_examples, s9_2_connect_retry_connect)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry_hs_client c;
	struct ferry_hs_server s;
	uint8_t seed[32], want[512], retry[46];
	struct hs_dg con, rep;
	size_t n = unhex(k_ex92_connect_head, want, sizeof(want));

	memset(seed, 0x61, sizeof(seed));
	cc.cid = CCID;
	cc.kx_seed = seed;
	cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
	con = hs_connect(&c);
	cr_assert_eq(con.len, 512);
	cr_assert_arr_eq(con.p, want, n);
	for (size_t i = n; i < 0x1fc; i++)
		cr_assert_eq(con.p[i], 0, "padding byte %zx", i);
	cr_assert_eq(ferry_rd_u32(&(struct ferry_rd){con.p + 0x1fc, 4, 0, false}),
		     0x7633ad04u);
	ferry__hs_server_init(&s, FERRY_HS_RETRY_ALWAYS, T0);
	for (int i = 0; i < 32; i++)
		s.cookie_key[0][i] = (uint8_t)(0x40 + i);
	cr_assert_eq(hs_srv_in(&s, &con, CLI, T0, &rep, &sr), FERRY_HS_REPLY);
	cr_assert_eq(unhex(k_ex92_retry_hex, retry, sizeof(retry)), 46);
	cr_assert_eq(rep.len, 46);
	cr_assert_arr_eq(rep.p, retry, 46);
	cr_assert_eq(hs_cli_in(&c, &rep, &cr), FERRY_HS_RETRY);
	hs_dg_free(&con);
	/* The CONNECT with cookie: still 512 bytes, COOKIE at 0x7e, CRC
	 * 93324b56. */
	con = hs_connect(&c);
	cr_assert_eq(con.len, 512);
	cr_assert_arr_eq(con.p + 0x7e, retry + 18, 24);
	cr_assert_arr_eq(con.p, want, 0x7e);
	cr_assert_eq(ferry_rd_u32(&(struct ferry_rd){con.p + 0x1fc, 4, 0, false}),
		     0x93324b56u);
	cr_assert_eq(hs_srv_in(&s, &con, CLI, T0 + NS / 2, NULL, &sr),
		     FERRY_HS_ADMIT);
	hs_dg_free(&con);
	hs_dg_free(&rep);
}

/* --- v1 peers (section 4.2) --------------------------------------------- */

/* A v1 client's CONNECT (header and PARAMS), src_sess @id. */
static size_t v1_connect(uint8_t *buf, uint32_t id)
{
	struct ferry_connect_body cb = {.have_params = true,
					.params = {1u << 20, 64, 1472, 64}};
	struct ferry_hdr h = {.type = FERRY_FT_CONNECT, .src_sess = id,
			      .credit = 64};
	int n = ferry__wire_put_connect(buf + FERRY_WIRE_HDR_LEN, 64, &cb);

	cr_assert_gt(n, 0);
	h.msg_len = (uint32_t)n;
	ferry__wire_encode(&h, buf);
	return FERRY_WIRE_HDR_LEN + (size_t)n;
}

Test(handshake_v1, v1_client_gets_version_error)
{
	struct ferry_hs_server_result sr;
	struct ferry_hs_server s;
	struct ferry_frame fr;
	uint8_t buf[128];
	const char *msg;
	uint32_t code;
	uint16_t mlen;
	struct hs_dg con, rep;

	con = hs_dg(buf, v1_connect(buf, 0x1234));
	ferry__hs_server_init(&s, FERRY_HS_RETRY_ALWAYS, T0);
	cr_assert_eq(hs_srv_in(&s, &con, CLI, T0, &rep, &sr), FERRY_HS_REPLY);
	cr_assert_str_eq(sr.sent, "v1_refused");
	/* About 80 bytes: a 44-byte header and the error body. */
	cr_assert_eq(rep.len, 44 + 6 + strlen("peer speaks ferry wire v2"));
	cr_assert_eq(ferry__wire_parse(rep.p, rep.len, 1u << 20, &fr),
		     FERRY_PARSE_OK);
	cr_assert_eq(fr.h.type, FERRY_FT_ERROR);
	cr_assert_eq(fr.h.dst_sess, 0x1234);
	cr_assert_eq(fr.h.src_sess, 0);
	cr_assert_eq(ferry__wire_parse_error(fr.payload, fr.pay_len, &code,
					    &msg, &mlen),
		     0);
	cr_assert_eq(code, FERRY_EVERSION);
	cr_assert_eq(mlen, 25);
	cr_assert_eq(memcmp(msg, "peer speaks ferry wire v2", 25), 0);
	hs_dg_free(&rep);
	hs_dg_free(&con);
}

/* What a v1 server answers to the envelope: an ERROR FERRY_EVERSION to our
 * envelope id.  The connect fails with -FERRY_EVERSION; the same ERROR
 * for another id is stale. */
Test(handshake_v1, v1_server_error_fails_connect)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_client_result cr;
	struct ferry_hs_client c;
	uint8_t buf[128];
	struct ferry_hdr h = {.type = FERRY_FT_ERROR};
	size_t n;
	struct hs_dg e;

	cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
	for (int mine = 0; mine < 2; mine++) {
		h.dst_sess = (uint32_t)c.cid + (mine ? 0 : 1);
		n = ferry__wire_put_error(buf + 44, sizeof(buf) - 44,
					  FERRY_EVERSION, "unknown TLV");
		h.msg_len = (uint32_t)n;
		ferry__wire_encode(&h, buf);
		e = hs_dg(buf, 44 + n);
		if (mine) {
			cr_assert_eq(hs_cli_in(&c, &e, &cr), FERRY_HS_FAILED);
			cr_assert_eq(cr.err, -FERRY_EVERSION);
		} else {
			cr_assert_eq(hs_cli_in(&c, &e, &cr), FERRY_HS_DROP);
			cr_assert_str_eq(cr.drop, "drop_stale");
		}
		hs_dg_free(&e);
	}
	cr_assert_eq(ferry__hs_client_build(&c, buf, sizeof(buf)), -EINVAL);
}

/* Only FERRY_EVERSION means "a v1 server": another code from a v1 ERROR
 * for our id is dropped, and the connect goes on. */
Test(handshake_v1, other_v1_error_dropped)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_client_result cr;
	struct ferry_hs_client c;
	uint8_t buf[128];
	struct ferry_hdr h = {.type = FERRY_FT_ERROR};
	size_t n;
	struct hs_dg e;

	cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
	h.dst_sess = (uint32_t)c.cid;
	n = ferry__wire_put_error(buf + 44, sizeof(buf) - 44, FERRY_EREJECTED,
				  "no");
	h.msg_len = (uint32_t)n;
	ferry__wire_encode(&h, buf);
	e = hs_dg(buf, 44 + n);
	cr_assert_eq(hs_cli_in(&c, &e, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_bad_version");
	cr_assert_not(c.done);
	hs_dg_free(&e);
}
