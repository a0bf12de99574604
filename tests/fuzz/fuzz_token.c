/* SPDX-License-Identifier: MIT */
/*
 * fuzz_token.c - libFuzzer target for the channel token parsers.
 *
 * Each input is used three ways, against a keyring with a fixed, public test
 * key (token_fuzz.h):
 *   1. as a sealed token: the envelope parser, then ferry_token_verify();
 *   2. as a decrypted plaintext, straight into ferry__token_parse_plain();
 *   3. sealed as a plaintext under the test key and verified, so the
 *      plaintext parser is also reached through the real decrypt path.
 * Besides the sanitizers' memory checks, it traps on a broken invariant:
 *   - results are only ever the documented codes;
 *   - a parsed envelope lies inside the input with the documented layout;
 *   - accepted contents respect every limit (names NUL-terminated, no
 *     control characters, props within bounds, a sane window);
 *   - an accepted plaintext re-encodes to exactly the input bytes;
 *   - path 3 agrees with path 2.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/fuzz/meson.build).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/internal.h"
#include "token_fuzz.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ferry_keyring *g_kr;
static struct ferry_token_info g_info;

static struct ferry_keyring *keyring(void)
{
	if (!g_kr) {
		CHECK(ferry__keyring_from_key(FUZZ_KEY_ID, fuzz_master, FUZZ_MAX_TTL,
					      FUZZ_SKEW, &g_kr) == 0);
		ferry_keyring_set_clock(g_kr, fuzz_clock, NULL);
	}
	return g_kr;
}

static void check_name(const char *s, size_t min)
{
	size_t n = strnlen(s, FERRY_TOKEN_NAME_MAX + 1);

	CHECK(n >= min && n <= FERRY_TOKEN_NAME_MAX);
	CHECK(ferry__token_name_ok(s, n));
}

static void check_info(const struct ferry_token_info *i)
{
	CHECK(i->type == FERRY_TOKEN_SUBREQUEST || i->type == FERRY_TOKEN_ACTOR_CLASS);
	CHECK(i->issued_at <= i->not_before && i->not_before < i->expires_at);
	check_name(i->target, 1);
	check_name(i->entrypoint, 0);
	CHECK(i->props_len <= FERRY_TOKEN_PROPS_MAX);
}

static int is_verify_code(int rc)
{
	switch (rc) {
	case 0:
	case -FERRY_TOKEN_EMALFORMED:
	case -FERRY_TOKEN_EVERSION:
	case -FERRY_TOKEN_EUNKNOWNKEY:
	case -FERRY_TOKEN_EAUTH:
	case -FERRY_TOKEN_EEXPIRED:
	case -FERRY_TOKEN_ENOTYET:
	case -FERRY_TOKEN_EWRONGTYPE:
	case -FERRY_TOKEN_EAUDIENCE:
	case -FERRY_TOKEN_ETTL:
		return 1; /* no EKEYRETIRED: the one key is active */
	default:
		return 0;
	}
}

static void as_token(const uint8_t *data, size_t size)
{
	struct ferry__token_env env;
	int rc = ferry__token_parse_env(data, size, &env);

	CHECK(rc == 0 || rc == -FERRY_TOKEN_EMALFORMED ||
	      rc == -FERRY_TOKEN_EVERSION);
	if (rc == 0) {
		CHECK(size >= FERRY_TOKEN_MIN_LEN && size <= FERRY_TOKEN_MAX_LEN);
		/* Tokens v1 and v2 share the envelope (docs/tokens.md). */
		CHECK((env.version == FERRY__TOK_VERSION ||
		       env.version == FERRY__TOK_VERSION2) &&
		      env.key_id != 0);
		CHECK(env.hdr == data && env.hint == data + 5);
		CHECK(env.nonce == data + FERRY__TOK_HDR_LEN);
		CHECK(env.ct == env.nonce + FERRY__TOK_NONCE_LEN);
		CHECK(env.ct + env.ct_len == data + size);
	}
	rc = ferry_token_verify(keyring(), data, size, FERRY_TOKEN_SUBREQUEST,
				FUZZ_AUD, &g_info);
	CHECK(is_verify_code(rc));
	if (rc == 0) {
		check_info(&g_info);
		CHECK(g_info.expires_at - g_info.issued_at <= FUZZ_MAX_TTL);
		CHECK(g_info.type == FERRY_TOKEN_SUBREQUEST);
		CHECK(g_info.key_id == FUZZ_KEY_ID);
		CHECK(ferry_token_verify(keyring(), data, size,
					 FERRY_TOKEN_ACTOR_CLASS, FUZZ_AUD,
					 NULL) == -FERRY_TOKEN_EWRONGTYPE);
	}
}

/* Returns the parse result, for path 3 to agree with. */
static int as_plaintext(const uint8_t *data, size_t size)
{
	static uint8_t re[FERRY__PLAIN_MAX];
	struct ferry_token_info *i = &g_info;
	struct ferry_token_req req;
	int rc = ferry__token_parse_plain(data, size, i);
	int n;

	CHECK(rc == 0 || rc == -FERRY_TOKEN_EMALFORMED);
	if (rc != 0)
		return rc;
	CHECK(size >= FERRY__PLAIN_MIN && size <= FERRY__PLAIN_MAX);
	check_info(i);
	/* Re-encode, where the window is one the encoder can express. */
	if (i->expires_at - i->issued_at <= UINT32_MAX) {
		req = (struct ferry_token_req){
			.type = i->type,
			.audience = FUZZ_AUD,
			.target = i->target,
			.entrypoint = i->entrypoint,
			.props = i->props,
			.props_len = i->props_len,
			.ttl = (uint32_t)(i->expires_at - i->issued_at),
			.not_before = i->not_before,
		};
		n = ferry__token_encode_plain(&req, i->issued_at, i->id, re);
		CHECK(n > 0 && (size_t)n == size && memcmp(re, data, size) == 0);
	}
	return rc;
}

static void sealed_plaintext(const uint8_t *data, size_t size, int parsed)
{
	static const uint8_t nonce[FERRY__TOK_NONCE_LEN];
	static uint8_t tok[FERRY_TOKEN_MAX_LEN];
	/* What as_plaintext parsed (when @parsed is 0), before verify
	 * writes g_info again. */
	uint64_t life = g_info.expires_at - g_info.issued_at;
	size_t len;
	int rc;

	if (size > FERRY__PLAIN_MAX)
		return;
	CHECK(ferry__token_seal_plain(keyring(), FERRY_TOKEN_SUBREQUEST, FUZZ_AUD,
				      data, size, nonce, tok, sizeof(tok),
				      &len) == 0);
	CHECK(len == size + FERRY__TOK_OVERHEAD);
	rc = ferry_token_verify(keyring(), tok, len, FERRY_TOKEN_SUBREQUEST,
				FUZZ_AUD, &g_info);
	if (len < FERRY_TOKEN_MIN_LEN) {
		CHECK(rc == -FERRY_TOKEN_EMALFORMED); /* envelope too short */
	} else if (parsed != 0) {
		CHECK(rc == -FERRY_TOKEN_EMALFORMED);
	} else if (data[0] != FERRY_TOKEN_SUBREQUEST) {
		CHECK(rc == -FERRY_TOKEN_EWRONGTYPE);
	} else if (life > FUZZ_MAX_TTL) {
		/* Sealed under the key, but living longer than the keyring
		 * allows: refused however well sealed. */
		CHECK(rc == -FERRY_TOKEN_ETTL);
	} else {
		CHECK(rc == 0 || rc == -FERRY_TOKEN_ENOTYET ||
		      rc == -FERRY_TOKEN_EEXPIRED);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int parsed;

	as_token(data, size);
	parsed = as_plaintext(data, size);
	sealed_plaintext(data, size, parsed);
	return 0;
}
