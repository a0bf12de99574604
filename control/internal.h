/* SPDX-License-Identifier: MIT */
/*
 * Control plane internals: the keyring's layout and the token parsers,
 * exposed (as ferry__*) for the unit tests, the fuzz target and the corpus
 * generator.  Not installed.
 */
#ifndef FERRY_CONTROL_INTERNAL_H
#define FERRY_CONTROL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include <ferry/token.h>

/* Token envelope layout (docs/tokens.md, section 2).  Version 2 has the
 * same envelope; its plaintext holds a holder key after the id. */
#define FERRY__TOK_VERSION 1
#define FERRY__TOK_VERSION2 2
#define FERRY__TOK_HDR_LEN 9 /* version 1, key id 4, audience hint 4 */
#define FERRY__TOK_HINT_LEN 4
#define FERRY__TOK_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define FERRY__TOK_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
/* Plaintext: type 1, id 16, three times 8, target len 1, entry len 1,
 * props len 2, and at least one byte of target. */
#define FERRY__PLAIN_FIXED 41
#define FERRY__PLAIN_MIN (FERRY__PLAIN_FIXED + 1 + 1 + 1 + 2)
#define FERRY__PLAIN_MAX                                                       \
	(FERRY__PLAIN_FIXED + 1 + FERRY_TOKEN_NAME_MAX + 1 +                   \
	 FERRY_TOKEN_NAME_MAX + 2 + FERRY_TOKEN_PROPS_MAX)
#define FERRY__TOK_OVERHEAD                                                    \
	(FERRY__TOK_HDR_LEN + FERRY__TOK_NONCE_LEN + FERRY__TOK_TAG_LEN)
/* Shortest version 2 token: the holder key on top of version 1's least. */
#define FERRY__TOK2_MIN_LEN (FERRY_TOKEN_MIN_LEN + FERRY_TOKEN_HK_LEN)

/* crypto_kdf_derive_from_key() context; the subkey ids are the token
 * types' wire values (1, 2).  Changing either breaks every token. */
#define FERRY__KDF_CTX "ferrytok"
/* BLAKE2b key of the audience hint: public, for domain separation only. */
#define FERRY__HINT_KEY "ferry-token-aud1"

#define FERRY__KEY_LEN 32

struct ferry__key {
	uint32_t id;
	uint64_t created_at;
	uint64_t retire_at; /* 0: the active key */
	uint8_t master[FERRY__KEY_LEN];
	/* AEAD keys of the two types, [type - 1]; derived once at load. */
	uint8_t sub[2][FERRY__KEY_LEN];
};

/* Allocated with sodium_malloc (guarded, locked pages where allowed),
 * freed with sodium_free, which wipes it. */
struct ferry_keyring {
	uint32_t max_ttl;
	uint32_t skew;
	unsigned n;          /* keys[0] is the active key */
	ferry_clock_fn now;  /* never NULL */
	void *now_arg;
	struct ferry__key keys[FERRY_KEYRING_MAX_KEYS];
};

/* A parsed (not yet opened) envelope; pointers into the token. */
struct ferry__token_env {
	uint8_t version;
	uint32_t key_id;
	const uint8_t *hdr;   /* FERRY__TOK_HDR_LEN bytes */
	const uint8_t *hint;  /* FERRY__TOK_HINT_LEN bytes */
	const uint8_t *nonce; /* FERRY__TOK_NONCE_LEN bytes */
	const uint8_t *ct;    /* ciphertext and tag */
	size_t ct_len;        /* includes the tag */
};

/* Parse the envelope.  0, -FERRY_TOKEN_EVERSION or -FERRY_TOKEN_EMALFORMED. */
int ferry__token_parse_env(const uint8_t *p, size_t len,
			   struct ferry__token_env *env);

/* Parse a decrypted plaintext into @info.  0 or -FERRY_TOKEN_EMALFORMED. */
int ferry__token_parse_plain(const uint8_t *p, size_t len,
			     struct ferry_token_info *info);
/* The same for a version 2 plaintext, whose holder key goes to @hk. */
int ferry__token_parse_plain2(const uint8_t *p, size_t len,
			      struct ferry_token_info *info,
			      uint8_t hk[FERRY_TOKEN_HK_LEN]);

/*
 * Seal @plain (any bytes, up to FERRY__PLAIN_MAX) as a token of @type for
 * @audience under the keyring's active key.  @nonce NULL means random; the
 * corpus generator passes a fixed one so its output is reproducible.
 * 0, -EINVAL or -ENOBUFS.
 */
int ferry__token_seal_plain(const struct ferry_keyring *kr, int type,
			    const char *audience, const uint8_t *plain,
			    size_t plain_len, const uint8_t *nonce, void *out,
			    size_t cap, size_t *out_len);
/* The same with version byte @version (1 or 2) in the envelope. */
int ferry__token_seal_plain_v(const struct ferry_keyring *kr, int version,
			      int type, const char *audience,
			      const uint8_t *plain, size_t plain_len,
			      const uint8_t *nonce, void *out, size_t cap,
			      size_t *out_len);

/* Encode a request's plaintext; returns its length, or -EINVAL. */
int ferry__token_encode_plain(const struct ferry_token_req *req,
			      uint64_t now, const uint8_t id[16],
			      uint8_t out[FERRY__PLAIN_MAX]);
/* A version 2 plaintext, holding @hk after the id (props up to
 * FERRY_TOKEN2_PROPS_MAX); its length, or -EINVAL. */
int ferry__token_encode_plain2(const struct ferry_token_req *req,
			       uint64_t now, const uint8_t id[16],
			       const uint8_t hk[FERRY_TOKEN_HK_LEN],
			       uint8_t out[FERRY__PLAIN_MAX]);

/* A keyring with one key of the given id and master key bytes (tests,
 * fuzzing and the corpus generator need a known key). */
int ferry__keyring_from_key(uint32_t key_id,
			    const uint8_t master[FERRY__KEY_LEN],
			    uint32_t max_ttl, uint32_t skew,
			    struct ferry_keyring **out);

const struct ferry__key *ferry__keyring_find(const struct ferry_keyring *kr,
					     uint32_t id);

/* The audience hint of @audience (len bytes). */
void ferry__token_hint(const char *audience, size_t len,
		       uint8_t hint[FERRY__TOK_HINT_LEN]);

/* Valid name/audience bytes: no control characters. */
int ferry__token_name_ok(const char *s, size_t len);

/* ferryctl bench wire (control/ferryctl_wire.c): the cost of wire v2
 * sealing.  @argv[0] is "wire"; returns the exit status. */
int ferry__ctl_bench_wire(int argc, char **argv);

#endif /* FERRY_CONTROL_INTERNAL_H */
