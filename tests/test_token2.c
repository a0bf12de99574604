/* SPDX-License-Identifier: MIT */
/*
 * Channel tokens version 2 (docs/tokens.md; control/token.c): the holder
 * key sealed in each token, returned by ferry_token_seal2() and
 * ferry_token_verify2(); version 1 tokens still verify with
 * ferry_token_verify() and are refused by ferry_token_verify2(); and a wire
 * v2 handshake (transport/handshake*.c) with a real token: the server finds
 * hk in the token, checks POP with it and both ends derive the same keys,
 * while a copy of the token without hk gets only the generic refusal.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/internal.h"
#include "hs_util.h"

#define NOW 1700000000ull
#define AUD "host-a.example:31850"

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return NOW;
}

static struct ferry_keyring *new_kr(void)
{
	struct ferry_keyring *kr;

	cr_assert_eq(ferry_keyring_create(3600, 30, &kr), 0);
	ferry_keyring_set_clock(kr, test_clock, NULL);
	return kr;
}

static struct ferry_token_req req_of(size_t props_len)
{
	static uint8_t props[FERRY_TOKEN_PROPS_MAX];
	struct ferry_token_req r = {
		.type = FERRY_TOKEN_SUBREQUEST,
		.audience = AUD,
		.target = "kv.store",
		.entrypoint = "get",
		.props = props,
		.props_len = props_len,
		.ttl = 600,
	};

	memset(props, 'p', sizeof(props));
	return r;
}

Test(token2, seal2_verify2_round_trip)
{
	struct ferry_keyring *kr = new_kr();
	struct ferry_token_req req = req_of(8);
	struct ferry_token_info a, b;
	uint8_t t1[FERRY_TOKEN_MAX_LEN], t2[FERRY_TOKEN_MAX_LEN];
	uint8_t hk[32], hk2[32], got[32];
	size_t n1, n2;

	cr_assert_eq(ferry_token_seal2(kr, &req, t1, sizeof(t1), &n1, hk), 0);
	cr_assert_eq(ferry_token_seal(kr, &req, t2, sizeof(t2), &n2), 0);
	cr_assert_eq(t1[0], 2, "version byte");
	cr_assert_eq(t2[0], 1);
	cr_assert_eq(n1, n2 + FERRY_TOKEN_HK_LEN);
	memset(got, 0, sizeof(got));
	cr_assert_eq(ferry_token_verify2(kr, t1, n1, req.type, AUD, &a, got), 0);
	cr_assert_arr_eq(got, hk, 32);
	/* The version 1 API takes both versions, with the same contents. */
	cr_assert_eq(ferry_token_verify(kr, t1, n1, req.type, AUD, &b), 0);
	cr_assert_str_eq(a.target, b.target);
	cr_assert_eq(a.expires_at, b.expires_at);
	cr_assert_arr_eq(a.id, b.id, 16);
	cr_assert_eq(ferry_token_verify(kr, t2, n2, req.type, AUD, &b), 0);
	/* A fresh hk per token. */
	cr_assert_eq(ferry_token_seal2(kr, &req, t1, sizeof(t1), &n1, hk2), 0);
	cr_assert_arr_neq(hk, hk2, 32);
	ferry_keyring_free(kr);
}

Test(token2, version1_has_no_holder_key)
{
	struct ferry_keyring *kr = new_kr();
	struct ferry_token_req req = req_of(0);
	uint8_t t[FERRY_TOKEN_MAX_LEN], hk[32] = {0};
	size_t n;

	cr_assert_eq(ferry_token_seal(kr, &req, t, sizeof(t), &n), 0);
	cr_assert_eq(ferry_token_verify2(kr, t, n, req.type, AUD, NULL, hk),
		     -FERRY_TOKEN_ENOHK);
	cr_assert_str_eq(ferry_strerror(-FERRY_TOKEN_ENOHK),
			 "token has no holder key (version 1)");
	cr_assert_eq(ferry_token_verify2(kr, t, n, req.type, AUD, NULL, NULL),
		     -EINVAL);
	cr_assert_eq(ferry_token_seal2(kr, &req, t, sizeof(t), &n, NULL),
		     -EINVAL);
	ferry_keyring_free(kr);
}

/* The version byte is authenticated: a v2 token relabelled v1 (or the
 * reverse) does not open. */
Test(token2, version_byte_authenticated)
{
	struct ferry_keyring *kr = new_kr();
	struct ferry_token_req req = req_of(40);
	uint8_t t[FERRY_TOKEN_MAX_LEN], hk[32];
	size_t n;

	cr_assert_eq(ferry_token_seal2(kr, &req, t, sizeof(t), &n, hk), 0);
	t[0] = 1;
	cr_assert_eq(ferry_token_verify(kr, t, n, req.type, AUD, NULL),
		     -FERRY_TOKEN_EAUTH);
	cr_assert_eq(ferry_token_seal(kr, &req, t, sizeof(t), &n), 0);
	t[0] = 2;
	cr_assert_eq(ferry_token_verify(kr, t, n, req.type, AUD, NULL),
		     -FERRY_TOKEN_EAUTH);
	t[0] = 3;
	cr_assert_eq(ferry_token_verify(kr, t, n, req.type, AUD, NULL),
		     -FERRY_TOKEN_EVERSION);
	ferry_keyring_free(kr);
}

/* Version 2 gives 32 bytes of props room to hk: every token still fits
 * FERRY_TOKEN_MAX_LEN. */
Test(token2, props_limit_keeps_max_len)
{
	struct ferry_keyring *kr = new_kr();
	struct ferry_token_req req = req_of(FERRY_TOKEN2_PROPS_MAX);
	uint8_t t[FERRY_TOKEN_MAX_LEN], hk[32];
	size_t n;
	static char name[FERRY_TOKEN_NAME_MAX + 1];

	/* The longest names too: the largest plaintext there is. */
	memset(name, 'n', FERRY_TOKEN_NAME_MAX);
	req.target = req.entrypoint = name;
	cr_assert_eq(ferry_token_seal2(kr, &req, t, sizeof(t), &n, hk), 0);
	cr_assert_eq(n, FERRY_TOKEN_MAX_LEN);
	cr_assert_eq(ferry_token_verify2(kr, t, n, req.type, AUD, NULL, hk), 0);
	req.props_len++;
	cr_assert_eq(ferry_token_seal2(kr, &req, t, sizeof(t), &n, hk),
		     -EINVAL);
	req.props_len = FERRY_TOKEN_PROPS_MAX;
	cr_assert_eq(ferry_token_seal(kr, &req, t, sizeof(t), &n), 0);
	cr_assert_eq(n, FERRY_TOKEN_MAX_LEN);
	ferry_keyring_free(kr);
}

/* The plaintext parser of version 2: hk after the id; short or with a
 * props length over the v2 limit, malformed. */
Test(token2, plain2_parse)
{
	struct ferry_token_req req = req_of(3);
	uint8_t p[FERRY__PLAIN_MAX], id[16] = {1}, hk[32], got[32];
	struct ferry_token_info info;
	int n;

	memset(hk, 0xab, sizeof(hk));
	n = ferry__token_encode_plain2(&req, NOW, id, hk, p);
	cr_assert_eq(n, FERRY__PLAIN_MIN - 1 + 8 + 3 + 3 + 32);
	cr_assert_arr_eq(p + 17, hk, 32);
	cr_assert_eq(ferry__token_parse_plain2(p, (size_t)n, &info, got), 0);
	cr_assert_arr_eq(got, hk, 32);
	cr_assert_eq(info.props_len, 3);
	for (int i = 0; i < n; i++)
		cr_assert_eq(ferry__token_parse_plain2(p, (size_t)i, &info, got),
			     -FERRY_TOKEN_EMALFORMED, "at %d", i);
	/* Read as version 1, the hk bytes land in the times: not this
	 * token. */
	cr_assert_neq(ferry__token_parse_plain(p, (size_t)n, &info), 0);
}

/* --- a wire v2 handshake with a real token ------------------------------- */

static void handshake_with(const uint8_t *tok, size_t tlen,
			   const uint8_t *client_hk, struct ferry_keyring *kr,
			   bool expect_ok)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_cfg sc = hs_scfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry_token_info info;
	struct ferry__seal_keys k;
	struct ferry_hs_client c;
	struct ferry_hs_server s;
	uint8_t hk[32], out[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con, ans;
	int n;

	cc.token = tok;
	cc.token_len = tlen;
	cc.hk = client_hk;
	cr_assert_eq(ferry__hs_client_init(&c, &cc), 0);
	cr_assert_eq(ferry__hs_server_init(&s, FERRY_HS_RETRY_ALWAYS, T0), 0);
	con = hs_until_admit(&c, &s, T0, &sr);
	cr_assert_eq(ferry_token_verify2(kr, sr.conn.token, sr.conn.token_len,
					 FERRY_TOKEN_SUBREQUEST, AUD, &info, hk),
		     0);
	if (expect_ok) {
		cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, hk), 0);
		n = ferry__hs_server_accept(&sr.conn, &sc, hk, &k, &mode, out,
					    sizeof(out));
	} else {
		cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, hk),
			     -EBADMSG);
		n = ferry__hs_server_refuse(&sr.conn, FERRY_TOKEN_ECHANNEL,
					    "no such channel", out,
					    sizeof(out));
	}
	cr_assert_gt(n, 0);
	ans = hs_dg(out, (size_t)n);
	if (expect_ok) {
		cr_assert_eq(hs_cli_in(&c, &ans, &cr), FERRY_HS_ACCEPTED);
		hs_keys_agree(&cr.accept.keys, &k, FERRY_SEAL_MAC);
	} else {
		cr_assert_eq(hs_cli_in(&c, &ans, &cr), FERRY_HS_FAILED);
		cr_assert_eq(cr.err, -FERRY_EREJECTED);
	}
	hs_dg_free(&ans);
	hs_dg_free(&con);
	ferry__hs_client_wipe(&c);
}

Test(token2, handshake_holder_and_copier)
{
	struct ferry_keyring *kr = new_kr();
	struct ferry_token_req req = req_of(8);
	uint8_t t[FERRY_TOKEN_MAX_LEN], hk[32], stolen[32] = {0};
	size_t n;

	cr_assert_eq(ferry_token_seal2(kr, &req, t, sizeof(t), &n, hk), 0);
	handshake_with(t, n, hk, kr, true);
	/* The copier has the token's bytes, not hk. */
	handshake_with(t, n, stolen, kr, false);
	ferry_keyring_free(kr);
}
