/* SPDX-License-Identifier: MIT */
/*
 * gen_token_corpus.c - write the seed corpus for fuzz_token.
 *
 *   gen_token_corpus DIR
 *
 * Writes, one file each, into DIR (which must exist): valid tokens of both
 * types under the fuzzer's fixed test key (token_fuzz.h), the largest
 * token, tokens that fail one check each (expired, not yet valid, another
 * audience, wrong type, bad version, truncated), and bare plaintexts for
 * the plaintext parser.  Ids and nonces are fixed, so the output is
 * deterministic and tests/fuzz/corpus/token/ can be regenerated and diffed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed.h"
#include "control/internal.h"
#include "token_fuzz.h"

static const char *g_dir;
static int g_count;
static struct ferry_keyring *g_kr;

static void write_seed(const char *name, const uint8_t *p, size_t n)
{
	seed_write("gen_token_corpus", g_dir, name, p, n);
	g_count++;
}

static struct ferry_token_req req_of(int type)
{
	static const uint8_t props[] = "tenant=7;trace=on";

	return (struct ferry_token_req){
		.type = type,
		.audience = FUZZ_AUD,
		.target = type == FERRY_TOKEN_SUBREQUEST ? "kv.store" : "Counter",
		.entrypoint = type == FERRY_TOKEN_SUBREQUEST ? "get" : "",
		.props = props,
		.props_len = sizeof(props) - 1,
		.ttl = 600,
	};
}

/* Encode @req's plaintext issued at @iat; returns its length. */
static size_t plain(const struct ferry_token_req *req, uint64_t iat,
		    uint8_t *out)
{
	uint8_t id[FERRY_TOKEN_ID_LEN];
	int n;

	memset(id, 0x5a, sizeof(id));
	n = ferry__token_encode_plain(req, iat, id, out);
	if (n < 0) {
		fprintf(stderr, "gen_token_corpus: bad request\n");
		exit(1);
	}
	return (size_t)n;
}

/* Seal a plaintext as @type for @aud with a fixed nonce. */
static size_t seal(int type, const char *aud, const uint8_t *p, size_t n,
		   uint8_t *out)
{
	uint8_t nonce[FERRY__TOK_NONCE_LEN];
	size_t len;

	memset(nonce, 0xa5, sizeof(nonce));
	if (ferry__token_seal_plain(g_kr, type, aud, p, n, nonce, out,
				    FERRY_TOKEN_MAX_LEN, &len) != 0) {
		fprintf(stderr, "gen_token_corpus: seal failed\n");
		exit(1);
	}
	return len;
}

int main(int argc, char **argv)
{
	static uint8_t p[FERRY__PLAIN_MAX], t[FERRY_TOKEN_MAX_LEN];
	static uint8_t big_props[FERRY_TOKEN_PROPS_MAX];
	static char big_name[FERRY_TOKEN_NAME_MAX + 1];
	struct ferry_token_req req;
	size_t n, len;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_token_corpus DIR\n");
		return 2;
	}
	g_dir = argv[1];
	if (ferry__keyring_from_key(FUZZ_KEY_ID, fuzz_master, FUZZ_MAX_TTL,
				    FUZZ_SKEW, &g_kr) != 0) {
		fprintf(stderr, "gen_token_corpus: keyring failed\n");
		return 1;
	}

	/* Valid now, one of each type. */
	req = req_of(FERRY_TOKEN_SUBREQUEST);
	n = plain(&req, FUZZ_NOW - 10, p);
	write_seed("plain_subrequest", p, n);
	len = seal(req.type, FUZZ_AUD, p, n, t);
	write_seed("subrequest", t, len);
	write_seed("truncated", t, len - 1);
	t[0] = 2;
	write_seed("bad_version", t, len);
	len = seal(req.type, "host-b.example:31850", p, n, t);
	write_seed("other_audience", t, len);
	len = seal(FERRY_TOKEN_ACTOR_CLASS, FUZZ_AUD, p, n, t);
	write_seed("sealed_as_other_type", t, len);

	req = req_of(FERRY_TOKEN_ACTOR_CLASS);
	n = plain(&req, FUZZ_NOW - 10, p);
	write_seed("plain_actor_class", p, n);
	len = seal(req.type, FUZZ_AUD, p, n, t);
	write_seed("actor_class", t, len);

	/* Outside the window. */
	req = req_of(FERRY_TOKEN_SUBREQUEST);
	n = plain(&req, FUZZ_NOW - 600 - FUZZ_SKEW, p);
	len = seal(req.type, FUZZ_AUD, p, n, t);
	write_seed("expired", t, len);
	req.not_before = FUZZ_NOW + FUZZ_SKEW + 1;
	n = plain(&req, FUZZ_NOW, p);
	len = seal(req.type, FUZZ_AUD, p, n, t);
	write_seed("not_yet_valid", t, len);

	/* The largest token: every field at its limit. */
	memset(big_name, 'n', FERRY_TOKEN_NAME_MAX);
	memset(big_props, 0xee, sizeof(big_props));
	req = req_of(FERRY_TOKEN_SUBREQUEST);
	req.target = big_name;
	req.entrypoint = big_name;
	req.props = big_props;
	req.props_len = sizeof(big_props);
	n = plain(&req, FUZZ_NOW, p);
	len = seal(req.type, FUZZ_AUD, p, n, t);
	write_seed("largest", t, len);

	/* The smallest plaintext: one-byte target, nothing else. */
	req = req_of(FERRY_TOKEN_SUBREQUEST);
	req.target = "x";
	req.entrypoint = NULL;
	req.props_len = 0;
	n = plain(&req, FUZZ_NOW, p);
	write_seed("plain_smallest", p, n);
	len = seal(req.type, FUZZ_AUD, p, n, t);
	write_seed("smallest", t, len);

	ferry_keyring_free(g_kr);
	printf("gen_token_corpus: wrote %d seeds to %s\n", g_count, g_dir);
	return 0;
}
