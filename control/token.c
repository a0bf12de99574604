/* SPDX-License-Identifier: MIT */
/*
 * Channel tokens: the sealed envelope and its plaintext (docs/tokens.md,
 * sections 2 and 3), sealing and verifying.  Every parse of token bytes goes
 * through the bounded reader (transport/rd.h).
 */
#include <errno.h>
#include <string.h>

#include "control/internal.h"
#include "transport/rd.h"

/* The public limits are spelled out as numbers; keep them honest. */
_Static_assert(FERRY__TOK_OVERHEAD + FERRY__PLAIN_MAX == FERRY_TOKEN_MAX_LEN,
	       "FERRY_TOKEN_MAX_LEN");
_Static_assert(FERRY__TOK_OVERHEAD + FERRY__PLAIN_MIN == FERRY_TOKEN_MIN_LEN,
	       "FERRY_TOKEN_MIN_LEN");

static uint8_t *wr_u64(uint8_t *p, uint64_t v)
{
	p = ferry_wr_u32(p, (uint32_t)(v >> 32));
	return ferry_wr_u32(p, (uint32_t)v);
}

const char *ferry_token_type_name(int type)
{
	switch (type) {
	case FERRY_TOKEN_SUBREQUEST:
		return "subrequest";
	case FERRY_TOKEN_ACTOR_CLASS:
		return "actor-class";
	default:
		return "unknown";
	}
}

static int type_ok(int type)
{
	return type == FERRY_TOKEN_SUBREQUEST || type == FERRY_TOKEN_ACTOR_CLASS;
}

int ferry__token_name_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* --- parsing ------------------------------------------------------------ */

int ferry__token_parse_env(const uint8_t *p, size_t len,
			   struct ferry__token_env *env)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, len);
	/* The version decides the layout, so it is judged first: a token of a
	 * later version gets "bad version" whatever its length. */
	env->version = ferry_rd_u8(&r);
	if (r.err)
		return -FERRY_TOKEN_EMALFORMED;
	if (env->version != FERRY__TOK_VERSION &&
	    env->version != FERRY__TOK_VERSION2)
		return -FERRY_TOKEN_EVERSION;
	if (len < (env->version == FERRY__TOK_VERSION ? FERRY_TOKEN_MIN_LEN
						      : FERRY__TOK2_MIN_LEN) ||
	    len > FERRY_TOKEN_MAX_LEN)
		return -FERRY_TOKEN_EMALFORMED;
	env->hdr = p;
	env->key_id = ferry_rd_u32(&r);
	env->hint = ferry_rd_take(&r, FERRY__TOK_HINT_LEN);
	env->nonce = ferry_rd_take(&r, FERRY__TOK_NONCE_LEN);
	env->ct_len = ferry_rd_left(&r);
	env->ct = ferry_rd_take(&r, env->ct_len);
	if (r.err || env->key_id == 0)
		return -FERRY_TOKEN_EMALFORMED;
	return 0;
}

/* A length-prefixed name into a NUL-terminated buffer of @cap bytes. */
static int rd_name(struct ferry_rd *r, size_t min, char *out, size_t cap)
{
	size_t n = ferry_rd_u8(r);
	const uint8_t *s = ferry_rd_take(r, n);

	if (!s || n < min || n >= cap || !ferry__token_name_ok((const char *)s, n))
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* A plaintext of version 1 (@hk NULL) or 2 (the holder key to @hk). */
static int parse_plain(const uint8_t *p, size_t len,
		       struct ferry_token_info *info, uint8_t *hk)
{
	struct ferry_rd r;
	const uint8_t *id, *props, *h = NULL;

	ferry_rd_init(&r, p, len);
	info->type = ferry_rd_u8(&r);
	id = ferry_rd_take(&r, FERRY_TOKEN_ID_LEN);
	if (hk)
		h = ferry_rd_take(&r, FERRY_TOKEN_HK_LEN);
	info->issued_at = ferry_rd_u64(&r);
	info->not_before = ferry_rd_u64(&r);
	info->expires_at = ferry_rd_u64(&r);
	if (r.err || !type_ok(info->type))
		return -FERRY_TOKEN_EMALFORMED;
	memcpy(info->id, id, FERRY_TOKEN_ID_LEN);
	/* The window is what ferry_token_seal() can produce. */
	if (info->not_before < info->issued_at ||
	    info->not_before >= info->expires_at)
		return -FERRY_TOKEN_EMALFORMED;
	if (rd_name(&r, 1, info->target, sizeof(info->target)) != 0 ||
	    rd_name(&r, 0, info->entrypoint, sizeof(info->entrypoint)) != 0)
		return -FERRY_TOKEN_EMALFORMED;
	info->props_len = ferry_rd_u16(&r);
	props = ferry_rd_take(&r, info->props_len);
	if (!props ||
	    info->props_len > (hk ? FERRY_TOKEN2_PROPS_MAX
				  : FERRY_TOKEN_PROPS_MAX) ||
	    ferry_rd_left(&r) != 0)
		return -FERRY_TOKEN_EMALFORMED;
	memcpy(info->props, props, info->props_len);
	if (hk)
		memcpy(hk, h, FERRY_TOKEN_HK_LEN);
	return 0;
}

int ferry__token_parse_plain(const uint8_t *p, size_t len,
			     struct ferry_token_info *info)
{
	return parse_plain(p, len, info, NULL);
}

int ferry__token_parse_plain2(const uint8_t *p, size_t len,
			      struct ferry_token_info *info,
			      uint8_t hk[FERRY_TOKEN_HK_LEN])
{
	return parse_plain(p, len, info, hk);
}

/* --- sealing ------------------------------------------------------------ */

/* A plaintext of version 1 (@hk NULL) or 2 (@hk after the id). */
static int encode_plain(const struct ferry_token_req *req, uint64_t now,
			const uint8_t id[16], const uint8_t *hk,
			uint8_t out[FERRY__PLAIN_MAX])
{
	const char *entry = req->entrypoint ? req->entrypoint : "";
	size_t tlen, elen;
	uint64_t nbf, exp;
	uint8_t *p = out;

	if (!type_ok(req->type) || !req->target || req->ttl == 0 ||
	    req->props_len > (hk ? FERRY_TOKEN2_PROPS_MAX
				 : FERRY_TOKEN_PROPS_MAX) ||
	    (req->props_len && !req->props))
		return -EINVAL;
	tlen = strnlen(req->target, FERRY_TOKEN_NAME_MAX + 1);
	elen = strnlen(entry, FERRY_TOKEN_NAME_MAX + 1);
	if (tlen == 0 || tlen > FERRY_TOKEN_NAME_MAX ||
	    elen > FERRY_TOKEN_NAME_MAX ||
	    !ferry__token_name_ok(req->target, tlen) ||
	    !ferry__token_name_ok(entry, elen))
		return -EINVAL;
	exp = now + req->ttl;
	nbf = req->not_before ? req->not_before : now;
	if (nbf < now || nbf >= exp)
		return -EINVAL;

	*p++ = (uint8_t)req->type;
	memcpy(p, id, FERRY_TOKEN_ID_LEN);
	p += FERRY_TOKEN_ID_LEN;
	if (hk) {
		memcpy(p, hk, FERRY_TOKEN_HK_LEN);
		p += FERRY_TOKEN_HK_LEN;
	}
	p = wr_u64(p, now);
	p = wr_u64(p, nbf);
	p = wr_u64(p, exp);
	*p++ = (uint8_t)tlen;
	memcpy(p, req->target, tlen);
	p += tlen;
	*p++ = (uint8_t)elen;
	memcpy(p, entry, elen);
	p += elen;
	p = ferry_wr_u16(p, (uint16_t)req->props_len);
	if (req->props_len)
		memcpy(p, req->props, req->props_len);
	p += req->props_len;
	return (int)(p - out);
}

int ferry__token_encode_plain(const struct ferry_token_req *req,
			      uint64_t now, const uint8_t id[16],
			      uint8_t out[FERRY__PLAIN_MAX])
{
	return encode_plain(req, now, id, NULL, out);
}

int ferry__token_encode_plain2(const struct ferry_token_req *req,
			       uint64_t now, const uint8_t id[16],
			       const uint8_t hk[FERRY_TOKEN_HK_LEN],
			       uint8_t out[FERRY__PLAIN_MAX])
{
	return encode_plain(req, now, id, hk, out);
}

void ferry__token_hint(const char *audience, size_t len,
		       uint8_t hint[FERRY__TOK_HINT_LEN])
{
	uint8_t h[crypto_generichash_BYTES_MIN];

	/* Not keyed by the token's key: then a token sealed under another key
	 * with the same id would be mistaken for one for another audience.
	 * The audience is the server the token is shown to, no secret. */
	crypto_generichash(h, sizeof(h), (const uint8_t *)audience, len,
			   (const uint8_t *)FERRY__HINT_KEY,
			   sizeof(FERRY__HINT_KEY) - 1);
	memcpy(hint, h, FERRY__TOK_HINT_LEN);
}

/*
 * The associated data: the header as sent, then the implicit context,
 * which is never sent: type (1 byte), audience length (1), audience.
 * The length prefix keeps ("ab", type) and ("a", ...) from colliding.
 */
static size_t build_ad(uint8_t *ad, const uint8_t *hdr, int type,
		       const char *audience, size_t alen)
{
	memcpy(ad, hdr, FERRY__TOK_HDR_LEN);
	ad[FERRY__TOK_HDR_LEN] = (uint8_t)type;
	ad[FERRY__TOK_HDR_LEN + 1] = (uint8_t)alen;
	memcpy(ad + FERRY__TOK_HDR_LEN + 2, audience, alen);
	return FERRY__TOK_HDR_LEN + 2 + alen;
}

#define AD_MAX (FERRY__TOK_HDR_LEN + 2 + FERRY_TOKEN_AUDIENCE_MAX)

static int audience_len(const char *audience, size_t *alen)
{
	if (!audience)
		return -EINVAL;
	*alen = strnlen(audience, FERRY_TOKEN_AUDIENCE_MAX + 1);
	if (*alen == 0 || *alen > FERRY_TOKEN_AUDIENCE_MAX ||
	    !ferry__token_name_ok(audience, *alen))
		return -EINVAL;
	return 0;
}

int ferry__token_seal_plain(const struct ferry_keyring *kr, int type,
			    const char *audience, const uint8_t *plain,
			    size_t plain_len, const uint8_t *nonce, void *out,
			    size_t cap, size_t *out_len)
{
	return ferry__token_seal_plain_v(kr, FERRY__TOK_VERSION, type, audience,
					 plain, plain_len, nonce, out, cap,
					 out_len);
}

int ferry__token_seal_plain_v(const struct ferry_keyring *kr, int version,
			      int type, const char *audience,
			      const uint8_t *plain, size_t plain_len,
			      const uint8_t *nonce, void *out, size_t cap,
			      size_t *out_len)
{
	const struct ferry__key *k = &kr->keys[0];
	uint8_t ad[AD_MAX];
	uint8_t *o = out, *p;
	size_t alen, adlen;
	unsigned long long clen;

	if (!type_ok(type) || audience_len(audience, &alen) != 0 ||
	    plain_len > FERRY__PLAIN_MAX ||
	    (version != FERRY__TOK_VERSION && version != FERRY__TOK_VERSION2))
		return -EINVAL;
	*out_len = FERRY__TOK_OVERHEAD + plain_len;
	if (cap < *out_len)
		return -ENOBUFS;
	p = o;
	*p++ = (uint8_t)version;
	p = ferry_wr_u32(p, k->id);
	ferry__token_hint(audience, alen, p);
	p += FERRY__TOK_HINT_LEN;
	/* A random 192-bit nonce: no counter to keep across processes or
	 * restarts, and collisions are negligible at any issue rate. */
	if (nonce)
		memcpy(p, nonce, FERRY__TOK_NONCE_LEN);
	else
		randombytes_buf(p, FERRY__TOK_NONCE_LEN);
	adlen = build_ad(ad, o, type, audience, alen);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		p + FERRY__TOK_NONCE_LEN, &clen, plain, plain_len, ad, adlen,
		NULL, p, k->sub[type - 1]);
	return 0;
}

/* Seal a token of version 1 (@hk NULL) or 2 (a fresh holder key, also
 * written to @hk). */
static int seal(const struct ferry_keyring *kr, const struct ferry_token_req *req,
		void *out, size_t cap, size_t *out_len, uint8_t *hk)
{
	uint8_t plain[FERRY__PLAIN_MAX];
	/* Id, nonce and holder key from one call: the random source is most
	 * of the cost of sealing a small token. */
	uint8_t rnd[FERRY_TOKEN_ID_LEN + FERRY__TOK_NONCE_LEN +
		    FERRY_TOKEN_HK_LEN];
	const uint8_t *h = hk ? rnd + FERRY_TOKEN_ID_LEN + FERRY__TOK_NONCE_LEN
			      : NULL;
	uint64_t now;
	int n, rc;

	if (!kr || !req || !out_len || (!out && cap))
		return -EINVAL;
	now = kr->now(kr->now_arg);
	if (req->ttl > kr->max_ttl)
		return -EINVAL;
	randombytes_buf(rnd, sizeof(rnd));
	n = encode_plain(req, now, rnd, h, plain);
	if (n < 0) {
		sodium_memzero(rnd, sizeof(rnd));
		return n;
	}
	rc = ferry__token_seal_plain_v(kr,
				       hk ? FERRY__TOK_VERSION2
					  : FERRY__TOK_VERSION,
				       req->type, req->audience, plain,
				       (size_t)n, rnd + FERRY_TOKEN_ID_LEN, out,
				       cap, out_len);
	if (rc == 0 && hk)
		memcpy(hk, h, FERRY_TOKEN_HK_LEN);
	sodium_memzero(plain, (size_t)n);
	sodium_memzero(rnd, sizeof(rnd));
	return rc;
}

int ferry_token_seal(const struct ferry_keyring *kr,
		     const struct ferry_token_req *req, void *out, size_t cap,
		     size_t *out_len)
{
	return seal(kr, req, out, cap, out_len, NULL);
}

int ferry_token_seal2(const struct ferry_keyring *kr,
		      const struct ferry_token_req *req, void *out, size_t cap,
		      size_t *out_len, uint8_t hk[FERRY_TOKEN_HK_LEN])
{
	if (!hk)
		return -EINVAL;
	return seal(kr, req, out, cap, out_len, hk);
}

/* --- verifying ---------------------------------------------------------- */

static int open_as(const struct ferry__key *k, const struct ferry__token_env *env,
		   int type, const char *audience, size_t alen, uint8_t *plain,
		   size_t *plain_len)
{
	uint8_t ad[AD_MAX];
	size_t adlen = build_ad(ad, env->hdr, type, audience, alen);
	unsigned long long n;

	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    plain, &n, NULL, env->ct, env->ct_len, ad, adlen,
		    env->nonce, k->sub[type - 1]) != 0)
		return -1;
	*plain_len = (size_t)n;
	return 0;
}

/* The keyring's policy on an authentic token: its lifetime and its
 * validity window at @now. */
static int check_policy(const struct ferry_keyring *kr,
			const struct ferry_token_info *info, uint64_t now)
{
	uint64_t skew = kr->skew;

	/* A lifetime longer than the keyring allows is an issuer this
	 * keyring's policy does not cover (a copy of the key with another
	 * max_ttl, or a bug): refused however well sealed, since the key
	 * retirement rule (docs/tokens.md, section 5) counts on it.  With
	 * issued_at <= not_before <= now + skew (checked next), it also
	 * bounds expires_at to now + skew + max_ttl. */
	if (info->expires_at - info->issued_at > kr->max_ttl)
		return -FERRY_TOKEN_ETTL;
	/* Valid while not_before - skew <= now < expires_at + skew, computed
	 * without underflow or overflow. */
	if (now + skew < info->not_before)
		return -FERRY_TOKEN_ENOTYET;
	if (info->expires_at <= UINT64_MAX - skew &&
	    now >= info->expires_at + skew)
		return -FERRY_TOKEN_EEXPIRED;
	return 0;
}

/* ferry_token_verify(), and with @hk (ferry_token_verify2) only for a
 * version 2 token, whose holder key goes there. */
static int verify(const struct ferry_keyring *kr, const void *token,
		  size_t len, int type, const char *audience,
		  struct ferry_token_info *info, uint8_t *hk)
{
	uint8_t hk_tmp[FERRY_TOKEN_HK_LEN];
	struct ferry_token_info scratch;
	struct ferry__token_env env;
	const struct ferry__key *k;
	uint8_t plain[FERRY__PLAIN_MAX];
	uint8_t hint[FERRY__TOK_HINT_LEN];
	size_t alen, plain_len = 0;
	uint64_t now;
	int rc;

	if (!kr || (!token && len) || !type_ok(type) ||
	    audience_len(audience, &alen) != 0)
		return -EINVAL;
	if (!info)
		info = &scratch;
	rc = ferry__token_parse_env(token, len, &env);
	if (rc < 0)
		return rc;
	/* No AEAD work for a token that cannot serve: a version 1 token has
	 * no holder key to prove. */
	if (hk && env.version != FERRY__TOK_VERSION2)
		return -FERRY_TOKEN_ENOHK;
	k = ferry__keyring_find(kr, env.key_id);
	if (!k)
		return -FERRY_TOKEN_EUNKNOWNKEY;
	now = kr->now(kr->now_arg);
	if (k->retire_at && now >= k->retire_at)
		return -FERRY_TOKEN_EKEYRETIRED;
	/* The audience itself is never sent; the hint lets a mismatch be
	 * named as such.  The AEAD below is what actually binds it. */
	ferry__token_hint(audience, alen, hint);
	if (sodium_memcmp(hint, env.hint, sizeof(hint)) != 0)
		return -FERRY_TOKEN_EAUDIENCE;
	if (open_as(k, &env, type, audience, alen, plain, &plain_len) != 0) {
		/* Only two types exist, so trying the other one tells an
		 * authentic token of the wrong type from a forgery. */
		int other = type == FERRY_TOKEN_SUBREQUEST ? FERRY_TOKEN_ACTOR_CLASS
							   : FERRY_TOKEN_SUBREQUEST;

		rc = open_as(k, &env, other, audience, alen, plain, &plain_len);
		sodium_memzero(plain, sizeof(plain));
		return rc == 0 ? -FERRY_TOKEN_EWRONGTYPE : -FERRY_TOKEN_EAUTH;
	}
	rc = parse_plain(plain, plain_len, info,
			 env.version == FERRY__TOK_VERSION2 ? hk_tmp : NULL);
	sodium_memzero(plain, plain_len);
	if (rc < 0)
		goto out;
	if (info->type != type)
		rc = -FERRY_TOKEN_EWRONGTYPE;
	else
		rc = check_policy(kr, info, now);
	info->key_id = k->id;
out:
	if (rc == 0 && hk)
		memcpy(hk, hk_tmp, FERRY_TOKEN_HK_LEN);
	sodium_memzero(hk_tmp, sizeof(hk_tmp));
	return rc;
}

int ferry_token_verify(const struct ferry_keyring *kr, const void *token,
		       size_t len, int type, const char *audience,
		       struct ferry_token_info *info)
{
	return verify(kr, token, len, type, audience, info, NULL);
}

int ferry_token_verify2(const struct ferry_keyring *kr, const void *token,
			size_t len, int type, const char *audience,
			struct ferry_token_info *info,
			uint8_t hk[FERRY_TOKEN_HK_LEN])
{
	if (!hk)
		return -EINVAL;
	return verify(kr, token, len, type, audience, info, hk);
}

/* --- errors ------------------------------------------------------------- */

/* The strings live in transport/error.c, with the transport's: a client
 * refused at connect gets a token code from the server and describes it
 * with ferry_strerror(), without linking the control plane. */
const char *ferry_token_strerror(int err)
{
	return ferry_strerror(err);
}
