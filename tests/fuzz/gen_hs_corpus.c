/* SPDX-License-Identifier: MIT */
/*
 * gen_hs_corpus.c - write the seed corpus of fuzz_handshake (the wire v2
 * handshake, transport/handshake*.c; docs/wire.md section 4).
 *
 *   gen_hs_corpus DIR
 *
 * Runs real handshakes between hs_fuzz.h's client and server and records
 * what each side received, in fuzz_handshake's input layout: for the
 * server, CONNECT without and with cookie (retry always), with a token
 * (retry never, and with a cookie), a v1 CONNECT and a bare CONNECT; for
 * the client, RETRY then ACCEPT, an ACCEPT of a token session, REFUSE, and
 * a v1 server's ERROR.  The client's state is fixed, so the recorded
 * ACCEPTs verify in the fuzzer; the server's ephemeral key is random, so
 * the ACCEPT bytes (not their meaning) differ between runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "hs_fuzz.h"
#include "seed.h"
#include "transport/wire.h"

static const char *g_dir;
static uint8_t g_seed[16384];
static size_t g_len;

static void seed_begin(unsigned mode)
{
	g_seed[0] = (uint8_t)mode;
	g_len = 1;
}

static void seed_add(const uint8_t *p, size_t n)
{
	if (g_len + 3 + n > sizeof(g_seed)) {
		fprintf(stderr, "gen_hs_corpus: seed too long\n");
		exit(1);
	}
	g_seed[g_len++] = (uint8_t)(n >> 8);
	g_seed[g_len++] = (uint8_t)n;
	g_seed[g_len++] = 0; /* no clock step */
	memcpy(g_seed + g_len, p, n);
	g_len += n;
}

static void seed_end(const char *name)
{
	seed_write("gen_hs_corpus", g_dir, name, g_seed, g_len);
}

static void die(const char *what)
{
	fprintf(stderr, "gen_hs_corpus: %s\n", what);
	exit(1);
}

/* Server input from the fixed client address at the fixed time. */
static enum ferry_hs_verdict srv_in(struct ferry_hs_server *s,
				    const uint8_t *p, size_t n, uint8_t *reply,
				    struct ferry_hs_server_result *res)
{
	struct ferry_addr peer = hsf_cli(), local = hsf_srv();

	return ferry__hs_server_input(s, p, n, &peer, &local, HSF_T0, reply,
				      FERRY_HS_REPLY_MAX, res);
}

/* Handshakes without a token: CONNECT, RETRY, CONNECT with cookie,
 * ACCEPT or REFUSE. */
static void plain(void)
{
	struct ferry_hs_server_cfg sc = hsf_scfg();
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry_hs_client c;
	struct ferry_hs_server s;
	static uint8_t con[FERRY_HS_CONNECT_MAX], con2[FERRY_HS_CONNECT_MAX];
	uint8_t retry[FERRY_HS_REPLY_MAX], acc[FERRY_HS_REPLY_MAX], mode;
	uint8_t ref[FERRY_HS_REPLY_MAX];
	struct ferry__seal_keys k;
	int n1 = -1, n2, nr, na, nf;

	if (hsf_server(&s, 0) || (n1 = hsf_client(&c, 0, con, sizeof(con))) < 0)
		die("init");
	if (srv_in(&s, con, (size_t)n1, retry, &sr) != FERRY_HS_REPLY)
		die("no RETRY");
	nr = (int)sr.reply_len;
	if (ferry__hs_client_input(&c, retry, (size_t)nr, &cr) != FERRY_HS_RETRY)
		die("RETRY not taken");
	n2 = ferry__hs_client_build(&c, con2, sizeof(con2));
	if (n2 < 0 || srv_in(&s, con2, (size_t)n2, acc, &sr) != FERRY_HS_ADMIT)
		die("cookie refused");
	na = ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode, acc,
				     sizeof(acc));
	nf = ferry__hs_server_refuse(&sr.conn, FERRY_EREJECTED, NULL, ref,
				     sizeof(ref));
	if (na < 0 || nf < 0 ||
	    ferry__hs_client_input(&c, acc, (size_t)na, &cr) != FERRY_HS_ACCEPTED)
		die("ACCEPT not taken");
	seed_begin(0), seed_add(con, (size_t)n1), seed_end("srv_connect");
	seed_begin(0), seed_add(con2, (size_t)n2), seed_end("srv_cookie");
	seed_begin(0), seed_add(con, (size_t)n1), seed_add(con2, (size_t)n2);
	seed_end("srv_connect_cookie");
	/* Bare, the inner CONNECT (444 bytes: short on its own). */
	seed_begin(0), seed_add(con + FERRY_W2_ENV_LEN,
				(size_t)n1 - FERRY_W2_ENV_LEN);
	seed_end("srv_bare_short");
	seed_begin(HSF_TO_CLIENT), seed_add(retry, (size_t)nr);
	seed_add(acc, (size_t)na), seed_end("cli_retry_accept");
	seed_begin(HSF_TO_CLIENT), seed_add(retry, (size_t)nr);
	seed_add(ref, (size_t)nf), seed_end("cli_retry_refuse");
	ferry__hs_client_wipe(&c);
}

/* A token session, retry never, and the token CONNECT with a cookie. */
static void with_token(void)
{
	struct ferry_hs_server_cfg sc = hsf_scfg();
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry_hs_client c;
	struct ferry_hs_server s, always;
	static uint8_t con[FERRY_HS_CONNECT_MAX], con2[FERRY_HS_CONNECT_MAX];
	uint8_t acc[FERRY_HS_REPLY_MAX], retry[FERRY_HS_REPLY_MAX], mode;
	struct ferry__seal_keys k;
	int n1 = -1, n2, na;

	if (hsf_server(&s, HSF_TOKEN) || hsf_server(&always, 0) ||
	    (n1 = hsf_client(&c, HSF_TOKEN, con, sizeof(con))) < 0)
		die("init");
	if (srv_in(&s, con, (size_t)n1, acc, &sr) != FERRY_HS_ADMIT ||
	    ferry__hs_server_check_pop(&sr.conn, hsf_hk()) != 0)
		die("token CONNECT refused");
	na = ferry__hs_server_accept(&sr.conn, &sc, hsf_hk(), &k, &mode, acc,
				     sizeof(acc));
	if (na < 0)
		die("accept");
	seed_begin(HSF_TOKEN), seed_add(con, (size_t)n1);
	seed_end("srv_token_never");
	seed_begin(HSF_TO_CLIENT | HSF_TOKEN), seed_add(acc, (size_t)na);
	seed_end("cli_token_accept");
	/* The same client taking a RETRY: its CONNECT with cookie and POP. */
	if (srv_in(&always, con, (size_t)n1, retry, &sr) != FERRY_HS_REPLY ||
	    ferry__hs_client_input(&c, retry, sr.reply_len, &cr) !=
		    FERRY_HS_RETRY)
		die("token RETRY");
	n2 = ferry__hs_client_build(&c, con2, sizeof(con2));
	if (n2 < 0)
		die("build");
	seed_begin(HSF_TOKEN), seed_add(con2, (size_t)n2);
	seed_end("srv_token_cookie");
	ferry__hs_client_wipe(&c);
}

/* v1 peers: a v1 client's CONNECT, a v1 server's ERROR. */
static void v1(void)
{
	struct ferry_connect_body cb = {.have_params = true,
					.params = {1u << 20, 64, 1472, 64}};
	struct ferry_hdr h = {.type = FERRY_FT_CONNECT, .src_sess = 0x1234,
			      .credit = 64};
	uint8_t buf[256];
	size_t n;

	h.msg_len = (uint32_t)ferry__wire_put_connect(buf + FERRY_WIRE_HDR_LEN,
						      64, &cb);
	ferry__wire_encode(&h, buf);
	seed_begin(0), seed_add(buf, FERRY_WIRE_HDR_LEN + h.msg_len);
	seed_end("srv_v1_connect");
	memset(&h, 0, sizeof(h));
	h.type = FERRY_FT_ERROR;
	h.dst_sess = 0x0b7d9e24u; /* the fixed client's envelope id */
	n = ferry__wire_put_error(buf + FERRY_WIRE_HDR_LEN,
				  sizeof(buf) - FERRY_WIRE_HDR_LEN,
				  FERRY_EVERSION, "unknown TLV");
	h.msg_len = (uint32_t)n;
	ferry__wire_encode(&h, buf);
	seed_begin(HSF_TO_CLIENT), seed_add(buf, FERRY_WIRE_HDR_LEN + n);
	seed_end("cli_v1_error");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_hs_corpus DIR\n");
		return 2;
	}
	g_dir = argv[1];
	plain();
	with_token();
	v1();
	return 0;
}
