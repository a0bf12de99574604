/* SPDX-License-Identifier: MIT */
/*
 * test_token.c - Criterion tests for channel tokens, the keyring and pending
 * issuance (control/): round trips, every rejection ferry_token_verify can
 * return, the keyring file, rotation, and completion from another thread.
 *
 * Tokens under test are copied to heap buffers of exactly their length, so
 * a sanitizer build catches any read past the end.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/internal.h"

#define T0 1700000000ull
#define AUD "host-a.example:31850"

/* The injectable clock: every keyring under test reads g_now. */
static uint64_t g_now = T0;

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return g_now;
}

static struct ferry_keyring *new_kr(uint32_t max_ttl, uint32_t skew)
{
	struct ferry_keyring *kr;

	cr_assert_eq(ferry_keyring_create(max_ttl, skew, &kr), 0);
	ferry_keyring_set_clock(kr, test_clock, NULL);
	return kr;
}

static struct ferry_token_req base_req(int type)
{
	static const uint8_t props[] = { 0x00, 0x01, 0xfe, 0xff, 'p', 'r' };

	return (struct ferry_token_req){
		.type = type,
		.audience = AUD,
		.target = type == FERRY_TOKEN_SUBREQUEST ? "kv.store" : "Counter",
		.entrypoint = type == FERRY_TOKEN_SUBREQUEST ? "get" : "",
		.props = props,
		.props_len = sizeof(props),
		.ttl = 600,
	};
}

/* Seal @req into a fresh heap buffer of exactly the token's length. */
static uint8_t *seal(const struct ferry_keyring *kr,
		     const struct ferry_token_req *req, size_t *len)
{
	uint8_t tmp[FERRY_TOKEN_MAX_LEN];
	uint8_t *t;
	int rc = ferry_token_seal(kr, req, tmp, sizeof(tmp), len);

	cr_assert_eq(rc, 0, "seal: %s", ferry_token_strerror(rc));
	t = malloc(*len);
	cr_assert_not_null(t);
	memcpy(t, tmp, *len);
	return t;
}

static int verify(const struct ferry_keyring *kr, const uint8_t *t, size_t len,
		  int type, const char *aud)
{
	struct ferry_token_info info;

	return ferry_token_verify(kr, t, len, type, aud, &info);
}

/* --- round trips ------------------------------------------------------- */

static void round_trip(int type)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(type);
	struct ferry_token_info info;
	size_t len;
	uint8_t *t;

	g_now = T0;
	req.not_before = T0 + 10;
	t = seal(kr, &req, &len);
	cr_assert_eq(len, FERRY_TOKEN_MIN_LEN - 1 + strlen(req.target) +
				  strlen(req.entrypoint) + req.props_len);
	cr_assert_eq(t[0], 1, "version byte");
	cr_assert_eq(t[1] | t[2] | t[3], 0);
	cr_assert_eq(t[4], 1, "key id 1");
	g_now = T0 + 10;
	cr_assert_eq(ferry_token_verify(kr, t, len, type, AUD, &info), 0);
	cr_assert_eq(info.type, type);
	cr_assert_eq(info.key_id, 1);
	cr_assert_eq(info.issued_at, T0);
	cr_assert_eq(info.not_before, T0 + 10);
	cr_assert_eq(info.expires_at, T0 + 600);
	cr_assert_str_eq(info.target, req.target);
	cr_assert_str_eq(info.entrypoint, req.entrypoint);
	cr_assert_eq(info.props_len, req.props_len);
	cr_assert_arr_eq(info.props, req.props, req.props_len);
	/* A NULL info is allowed. */
	cr_assert_eq(ferry_token_verify(kr, t, len, type, AUD, NULL), 0);
	free(t);
	ferry_keyring_free(kr);
}

Test(token, round_trip_subrequest) { round_trip(FERRY_TOKEN_SUBREQUEST); }
Test(token, round_trip_actor_class) { round_trip(FERRY_TOKEN_ACTOR_CLASS); }

Test(token, ids_and_nonces_differ)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_info a, b;
	size_t la, lb;
	uint8_t *ta, *tb;

	g_now = T0;
	ta = seal(kr, &req, &la);
	tb = seal(kr, &req, &lb);
	cr_assert_eq(la, lb);
	cr_assert_neq(memcmp(ta + 9, tb + 9, 24), 0, "nonce reused");
	cr_assert_eq(ferry_token_verify(kr, ta, la, req.type, AUD, &a), 0);
	cr_assert_eq(ferry_token_verify(kr, tb, lb, req.type, AUD, &b), 0);
	cr_assert_neq(memcmp(a.id, b.id, FERRY_TOKEN_ID_LEN), 0, "id reused");
	free(ta);
	free(tb);
	ferry_keyring_free(kr);
}

/* The largest token: 255-byte names, full props holding nested tokens. */
Test(token, largest_token_and_nested_props)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_ACTOR_CLASS);
	struct ferry_token_req inner = base_req(FERRY_TOKEN_SUBREQUEST);
	char name[FERRY_TOKEN_NAME_MAX + 1], aud[FERRY_TOKEN_AUDIENCE_MAX + 1];
	uint8_t props[FERRY_TOKEN_PROPS_MAX];
	struct ferry_token_info *info = malloc(sizeof(*info));
	size_t len, ilen, off = 0;
	uint8_t *t;

	g_now = T0;
	memset(name, 'n', FERRY_TOKEN_NAME_MAX);
	name[FERRY_TOKEN_NAME_MAX] = '\0';
	memset(aud, 'a', FERRY_TOKEN_AUDIENCE_MAX);
	aud[FERRY_TOKEN_AUDIENCE_MAX] = '\0';
	memset(props, 0xee, sizeof(props));
	/* Nested tokens, each length-prefixed, as a caller might pack them. */
	while (off + 2 + 200 < sizeof(props)) {
		cr_assert_eq(ferry_token_seal(kr, &inner, props + off + 2,
					      sizeof(props) - off - 2, &ilen), 0);
		props[off] = (uint8_t)(ilen >> 8);
		props[off + 1] = (uint8_t)ilen;
		off += 2 + ilen;
	}
	req.target = name;
	req.entrypoint = name;
	req.audience = aud;
	req.props = props;
	req.props_len = sizeof(props);
	t = seal(kr, &req, &len);
	cr_assert_eq(len, FERRY_TOKEN_MAX_LEN);
	cr_assert_eq(ferry_token_verify(kr, t, len, req.type, aud, info), 0);
	cr_assert_eq(info->props_len, FERRY_TOKEN_PROPS_MAX);
	cr_assert_arr_eq(info->props, props, sizeof(props));
	/* The first nested token verifies on its own. */
	ilen = (size_t)info->props[0] << 8 | info->props[1];
	cr_assert_eq(verify(kr, info->props + 2, ilen, FERRY_TOKEN_SUBREQUEST, AUD), 0);
	free(t);
	free(info);
	ferry_keyring_free(kr);
}

Test(token, seal_rejects_bad_requests)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req r;
	uint8_t out[FERRY_TOKEN_MAX_LEN];
	char longname[FERRY_TOKEN_NAME_MAX + 2];
	size_t len;

	g_now = T0;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
#define BAD(field, value)                                                      \
	do {                                                                   \
		r = base_req(FERRY_TOKEN_SUBREQUEST);                          \
		r.field = value;                                               \
		cr_assert_eq(ferry_token_seal(kr, &r, out, sizeof(out), &len), \
			     -EINVAL, #field " = " #value);                    \
	} while (0)
	BAD(type, 0);
	BAD(type, 3);
	BAD(ttl, 0);
	BAD(ttl, 3601); /* over the keyring's max_ttl */
	BAD(target, "");
	BAD(target, NULL);
	BAD(target, longname);
	BAD(target, "bad\nname");
	BAD(entrypoint, longname);
	BAD(entrypoint, "tab\there");
	BAD(audience, "");
	BAD(audience, NULL);
	BAD(audience, longname);
	BAD(audience, "del\x7f");
	BAD(props_len, FERRY_TOKEN_PROPS_MAX + 1);
	BAD(not_before, T0 - 1);   /* before issue */
	BAD(not_before, T0 + 600); /* at expiry: never valid */
#undef BAD
	r = base_req(FERRY_TOKEN_SUBREQUEST);
	r.props = NULL;
	cr_assert_eq(ferry_token_seal(kr, &r, out, sizeof(out), &len), -EINVAL);
	r = base_req(FERRY_TOKEN_SUBREQUEST);
	cr_assert_eq(ferry_token_seal(kr, &r, out, 10, &len), -ENOBUFS);
	cr_assert_eq(len, FERRY_TOKEN_MIN_LEN - 1 + 8 + 3 + 6, "needed length");
	ferry_keyring_free(kr);
}

/* --- every byte flipped ------------------------------------------------- */

Test(token, every_byte_flip_is_rejected)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t;

	g_now = T0;
	t = seal(kr, &req, &len);
	for (size_t i = 0; i < len; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			int rc;

			t[i] ^= masks[m];
			rc = verify(kr, t, len, req.type, AUD);
			t[i] ^= masks[m];
			if (i == 0) /* version */
				cr_assert_eq(rc, -FERRY_TOKEN_EVERSION, "byte %zu", i);
			else if (i < 5) /* key id: another id, or 0 */
				cr_assert(rc == -FERRY_TOKEN_EUNKNOWNKEY ||
					  rc == -FERRY_TOKEN_EMALFORMED,
					  "byte %zu mask %#x: %d", i, masks[m], rc);
			else if (i < 9) /* audience hint */
				cr_assert_eq(rc, -FERRY_TOKEN_EAUDIENCE, "byte %zu", i);
			else /* nonce, ciphertext, tag */
				cr_assert_eq(rc, -FERRY_TOKEN_EAUTH,
					     "byte %zu mask %#x: %s", i, masks[m],
					     ferry_token_strerror(rc));
		}
	}
	cr_assert_eq(verify(kr, t, len, req.type, AUD), 0, "restored");
	free(t);
	ferry_keyring_free(kr);
}

/* --- lengths ------------------------------------------------------------ */

Test(token, truncated_tokens_are_rejected)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t;

	g_now = T0;
	t = seal(kr, &req, &len);
	cr_assert_eq(verify(kr, NULL, 0, req.type, AUD), -FERRY_TOKEN_EMALFORMED);
	for (size_t n = 0; n < len; n++) {
		uint8_t *c = malloc(n ? n : 1);
		int rc;

		memcpy(c, t, n);
		rc = verify(kr, c, n, req.type, AUD);
		/* Too short to hold a minimal token: malformed; else the tag
		 * no longer matches. */
		if (n < FERRY_TOKEN_MIN_LEN)
			cr_assert_eq(rc, -FERRY_TOKEN_EMALFORMED, "len %zu", n);
		else
			cr_assert_eq(rc, -FERRY_TOKEN_EAUTH, "len %zu", n);
		free(c);
	}
	free(t);
	ferry_keyring_free(kr);
}

Test(token, oversized_tokens_are_rejected)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t, *big;

	g_now = T0;
	t = seal(kr, &req, &len);
	/* One byte appended: the tag is in the wrong place. */
	big = malloc(len + 1);
	memcpy(big, t, len);
	big[len] = 0;
	cr_assert_eq(verify(kr, big, len + 1, req.type, AUD), -FERRY_TOKEN_EAUTH);
	free(big);
	/* Longer than any token: refused before any crypto. */
	big = calloc(1, FERRY_TOKEN_MAX_LEN + 1);
	memcpy(big, t, len);
	cr_assert_eq(verify(kr, big, FERRY_TOKEN_MAX_LEN + 1, req.type, AUD),
		     -FERRY_TOKEN_EMALFORMED);
	cr_assert_eq(verify(kr, big, SIZE_MAX, req.type, AUD),
		     -FERRY_TOKEN_EMALFORMED);
	free(big);
	free(t);
	ferry_keyring_free(kr);
}

/* --- keys --------------------------------------------------------------- */

static const uint8_t k_master[32] = "0123456789abcdef0123456789abcdef";

Test(token, unknown_key_id)
{
	struct ferry_keyring *a, *b = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t;

	cr_assert_eq(ferry__keyring_from_key(7, k_master, 3600, 30, &a), 0);
	ferry_keyring_set_clock(a, test_clock, NULL);
	g_now = T0;
	t = seal(a, &req, &len);
	cr_assert_eq(t[4], 7);
	cr_assert_eq(verify(b, t, len, req.type, AUD), -FERRY_TOKEN_EUNKNOWNKEY);
	cr_assert_eq(verify(a, t, len, req.type, AUD), 0);
	free(t);
	ferry_keyring_free(a);
	ferry_keyring_free(b);
}

Test(token, same_key_id_other_key_fails_authentication)
{
	struct ferry_keyring *a = new_kr(3600, 30), *b = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t;

	g_now = T0;
	cr_assert_eq(ferry_keyring_active_id(a), ferry_keyring_active_id(b));
	t = seal(a, &req, &len);
	/* Same id, other key: the seal does not open. */
	cr_assert_eq(verify(b, t, len, req.type, AUD), -FERRY_TOKEN_EAUTH);
	cr_assert_eq(verify(b, t, len, FERRY_TOKEN_ACTOR_CLASS, AUD),
		     -FERRY_TOKEN_EAUTH);
	free(t);
	ferry_keyring_free(a);
	ferry_keyring_free(b);
}

Test(token, rotate_keeps_old_key_verifying_and_issues_with_new)
{
	const uint32_t ttl = 3600, skew = 30;
	struct ferry_keyring *kr = new_kr(ttl, skew);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_keyring_keyinfo ki;
	struct ferry_token_info info;
	size_t l1, l2;
	uint8_t *t1, *t2;

	g_now = T0;
	req.ttl = ttl; /* the longest-lived token the old key can make */
	t1 = seal(kr, &req, &l1);
	cr_assert_eq(ferry_keyring_rotate(kr), 0);
	cr_assert_eq(ferry_keyring_active_id(kr), 2);
	cr_assert_eq(ferry_keyring_key(kr, 0, &ki), 0);
	cr_assert(ki.active && ki.id == 2 && ki.retire_at == 0);
	cr_assert_eq(ferry_keyring_key(kr, 1, &ki), 0);
	cr_assert(!ki.active && ki.id == 1);
	cr_assert_eq(ki.retire_at, T0 + ttl + skew);
	cr_assert_eq(ferry_keyring_key(kr, 2, &ki), -ENOENT);

	t2 = seal(kr, &req, &l2);
	cr_assert_eq(ferry_token_verify(kr, t2, l2, req.type, AUD, &info), 0);
	cr_assert_eq(info.key_id, 2);
	cr_assert_eq(ferry_token_verify(kr, t1, l1, req.type, AUD, &info), 0);
	cr_assert_eq(info.key_id, 1);

	/* The old key's last token stays valid until the key retires. */
	g_now = T0 + ttl + skew - 1;
	cr_assert_eq(verify(kr, t1, l1, req.type, AUD), 0);
	g_now = T0 + ttl + skew;
	cr_assert_eq(verify(kr, t1, l1, req.type, AUD), -FERRY_TOKEN_EKEYRETIRED);
	/* The next rotation drops it: then it is simply unknown. */
	cr_assert_eq(ferry_keyring_rotate(kr), 0);
	cr_assert_eq(ferry_keyring_active_id(kr), 3);
	cr_assert_eq(ferry_keyring_key(kr, 2, &ki), -ENOENT);
	cr_assert_eq(verify(kr, t1, l1, req.type, AUD), -FERRY_TOKEN_EUNKNOWNKEY);
	free(t1);
	free(t2);
	ferry_keyring_free(kr);
}

Test(token, rotate_until_full)
{
	struct ferry_keyring *kr = new_kr(3600, 30);

	g_now = T0;
	for (int i = 1; i < FERRY_KEYRING_MAX_KEYS; i++)
		cr_assert_eq(ferry_keyring_rotate(kr), 0);
	cr_assert_eq(ferry_keyring_rotate(kr), -ENOSPC);
	/* Once the old keys retire, rotation makes room. */
	g_now = T0 + 3600 + 30;
	cr_assert_eq(ferry_keyring_rotate(kr), 0);
	cr_assert_eq(ferry_keyring_active_id(kr), FERRY_KEYRING_MAX_KEYS + 1);
	ferry_keyring_free(kr);
}

/* --- time --------------------------------------------------------------- */

static void window_boundaries(uint32_t skew)
{
	struct ferry_keyring *kr = new_kr(3600, skew);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t;

	g_now = T0;
	req.ttl = 100;
	req.not_before = T0 + 50;
	t = seal(kr, &req, &len);
	/* Valid while not_before - skew <= now < expires_at + skew. */
	g_now = T0 + 50 - skew;
	cr_assert_eq(verify(kr, t, len, req.type, AUD), 0, "at nbf - skew");
	g_now = T0 + 50 - skew - 1;
	cr_assert_eq(verify(kr, t, len, req.type, AUD), -FERRY_TOKEN_ENOTYET,
		     "one second before nbf - skew");
	g_now = 0;
	cr_assert_eq(verify(kr, t, len, req.type, AUD), -FERRY_TOKEN_ENOTYET);
	g_now = T0 + 100 + skew - 1;
	cr_assert_eq(verify(kr, t, len, req.type, AUD), 0, "last valid second");
	g_now = T0 + 100 + skew;
	cr_assert_eq(verify(kr, t, len, req.type, AUD), -FERRY_TOKEN_EEXPIRED,
		     "at expires_at + skew");
	g_now = T0 + 100 + skew + 1;
	cr_assert_eq(verify(kr, t, len, req.type, AUD), -FERRY_TOKEN_EEXPIRED);
	free(t);
	ferry_keyring_free(kr);
}

Test(token, validity_window_boundaries_with_skew) { window_boundaries(30); }
Test(token, validity_window_boundaries_without_skew) { window_boundaries(0); }

/* Seal, under @kr's own key, a plaintext issued at T0 that lives @ttl s:
 * what an issuer that ignores the keyring's max TTL would make. */
static size_t seal_lifetime(const struct ferry_keyring *kr, uint32_t ttl,
			    uint8_t *out)
{
	static const uint8_t id[16] = { 9 };
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	uint8_t p[FERRY__PLAIN_MAX];
	size_t len;
	int n;

	req.ttl = ttl;
	n = ferry__token_encode_plain(&req, T0, id, p);
	cr_assert_gt(n, 0);
	cr_assert_eq(ferry__token_seal_plain(kr, req.type, AUD, p, (size_t)n,
					     NULL, out, FERRY_TOKEN_MAX_LEN,
					     &len), 0);
	return len;
}

/* The verifier's max TTL bounds expires_at - issued_at, inside the token's
 * validity window too: exactly max_ttl verifies, one second more does not,
 * and no lifetime, however long, slips past (no overflow). */
Test(token, lifetime_over_max_ttl_is_refused)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	uint8_t t[FERRY_TOKEN_MAX_LEN];
	size_t len;

	g_now = T0 + 10;
	len = seal_lifetime(kr, 3600, t);
	cr_assert_eq(verify(kr, t, len, FERRY_TOKEN_SUBREQUEST, AUD), 0);
	len = seal_lifetime(kr, 3601, t);
	cr_assert_eq(verify(kr, t, len, FERRY_TOKEN_SUBREQUEST, AUD),
		     -FERRY_TOKEN_ETTL);
	len = seal_lifetime(kr, UINT32_MAX, t);
	cr_assert_eq(verify(kr, t, len, FERRY_TOKEN_SUBREQUEST, AUD),
		     -FERRY_TOKEN_ETTL);
	ferry_keyring_free(kr);
}

/* Two keyrings sharing a key with different max TTLs: what the laxer one
 * issues verifies there, and not where the policy is stricter. */
Test(token, max_ttl_is_the_verifiers)
{
	struct ferry_keyring *lax, *strict;
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t;

	cr_assert_eq(ferry__keyring_from_key(3, k_master, 86400, 30, &lax), 0);
	cr_assert_eq(ferry__keyring_from_key(3, k_master, 3600, 30, &strict),
		     0);
	ferry_keyring_set_clock(lax, test_clock, NULL);
	ferry_keyring_set_clock(strict, test_clock, NULL);
	g_now = T0;
	req.ttl = 7200;
	t = seal(lax, &req, &len);
	cr_assert_eq(verify(lax, t, len, req.type, AUD), 0);
	cr_assert_eq(verify(strict, t, len, req.type, AUD), -FERRY_TOKEN_ETTL);
	/* The stricter keyring will not issue it either. */
	cr_assert_eq(ferry_token_seal(strict, &req, NULL, 0, &len), -EINVAL);
	free(t);
	ferry_keyring_free(lax);
	ferry_keyring_free(strict);
}

/* --- context ------------------------------------------------------------ */

Test(token, wrong_type)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req s = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_req a = base_req(FERRY_TOKEN_ACTOR_CLASS);
	size_t ls, la;
	uint8_t *ts, *ta;

	g_now = T0;
	ts = seal(kr, &s, &ls);
	ta = seal(kr, &a, &la);
	cr_assert_eq(verify(kr, ts, ls, FERRY_TOKEN_ACTOR_CLASS, AUD),
		     -FERRY_TOKEN_EWRONGTYPE);
	cr_assert_eq(verify(kr, ta, la, FERRY_TOKEN_SUBREQUEST, AUD),
		     -FERRY_TOKEN_EWRONGTYPE);
	cr_assert_eq(verify(kr, ts, ls, 0, AUD), -EINVAL);
	cr_assert_eq(verify(kr, ts, ls, 3, AUD), -EINVAL);
	/* A tampered token is a forgery whichever type is expected. */
	ts[ls - 1] ^= 1;
	cr_assert_eq(verify(kr, ts, ls, FERRY_TOKEN_ACTOR_CLASS, AUD),
		     -FERRY_TOKEN_EAUTH);
	free(ts);
	free(ta);
	ferry_keyring_free(kr);
}

Test(token, wrong_audience)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	size_t len;
	uint8_t *t;

	g_now = T0;
	t = seal(kr, &req, &len);
	cr_assert_eq(verify(kr, t, len, req.type, "host-b.example:31850"),
		     -FERRY_TOKEN_EAUDIENCE);
	cr_assert_eq(verify(kr, t, len, req.type, AUD "0"), -FERRY_TOKEN_EAUDIENCE);
	cr_assert_eq(verify(kr, t, len, req.type, "host-a.example"),
		     -FERRY_TOKEN_EAUDIENCE);
	cr_assert_eq(verify(kr, t, len, req.type, ""), -EINVAL);
	cr_assert_eq(verify(kr, t, len, req.type, NULL), -EINVAL);
	/* Even with the hint forged for another audience, the AEAD (which
	 * binds the audience itself) refuses. */
	ferry__token_hint("host-b", 6, t + 5);
	cr_assert_eq(verify(kr, t, len, req.type, "host-b"), -FERRY_TOKEN_EAUTH);
	free(t);
	ferry_keyring_free(kr);
}

/* --- the plaintext parser ----------------------------------------------- */

static size_t plain_of(const struct ferry_token_req *req, uint8_t *out)
{
	static const uint8_t id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
					13, 14, 15, 16 };
	int n = ferry__token_encode_plain(req, T0, id, out);

	cr_assert_gt(n, 0);
	return (size_t)n;
}

Test(token, plaintext_parser_rejects)
{
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_info info;
	uint8_t p[FERRY__PLAIN_MAX + 1];
	size_t n = plain_of(&req, p);

	cr_assert_eq(ferry__token_parse_plain(p, n, &info), 0);
	cr_assert_eq(info.issued_at, T0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ferry__token_parse_plain(p, i, &info),
			     -FERRY_TOKEN_EMALFORMED, "truncated to %zu", i);
	p[n] = 0;
	cr_assert_eq(ferry__token_parse_plain(p, n + 1, &info),
		     -FERRY_TOKEN_EMALFORMED, "trailing byte");
#define MUT(off, val)                                                          \
	do {                                                                   \
		uint8_t keep = p[off];                                         \
		p[off] = (val);                                                \
		cr_assert_eq(ferry__token_parse_plain(p, n, &info),            \
			     -FERRY_TOKEN_EMALFORMED, "p[%d] = %#x", off, val);     \
		p[off] = keep;                                                 \
	} while (0)
	MUT(0, 0);          /* type 0 */
	MUT(0, 3);          /* type 3 */
	MUT(37, 0);         /* expires_at < not_before */
	MUT(25, 0xff);      /* not_before > expires_at */
	MUT(17, 0x7f);      /* issued_at > not_before */
	MUT(41, 0);         /* empty target */
	MUT(41, 200);       /* target runs past the end */
	MUT(42, '\n');      /* control character in target */
	MUT(42 + 8, 255);   /* entrypoint runs past the end */
	MUT(42 + 8 + 1, 0x7f);
	MUT(42 + 8 + 1 + 3, 0x10); /* props_len 4096 + 6 > what is there */
#undef MUT
	/* props_len over the limit even if the bytes are there. */
	{
		uint8_t *q = calloc(1, FERRY__PLAIN_MAX + 64);

		memcpy(q, p, n - 8);
		q[n - 8] = (FERRY_TOKEN_PROPS_MAX + 1) >> 8;
		q[n - 7] = (FERRY_TOKEN_PROPS_MAX + 1) & 0xff;
		cr_assert_eq(ferry__token_parse_plain(
				     q, n - 6 + FERRY_TOKEN_PROPS_MAX + 1, &info),
			     -FERRY_TOKEN_EMALFORMED);
		free(q);
	}
}

/* An authentic token whose plaintext is malformed (an issuer bug) is
 * refused as malformed, not trusted. */
Test(token, authentic_but_malformed_plaintext)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	uint8_t out[FERRY_TOKEN_MAX_LEN], junk[60];
	size_t len;

	g_now = T0;
	memset(junk, 0, sizeof(junk));
	junk[0] = FERRY_TOKEN_SUBREQUEST;
	cr_assert_eq(ferry__token_seal_plain(kr, FERRY_TOKEN_SUBREQUEST, AUD, junk,
					     sizeof(junk), NULL, out, sizeof(out),
					     &len), 0);
	cr_assert_eq(verify(kr, out, len, FERRY_TOKEN_SUBREQUEST, AUD),
		     -FERRY_TOKEN_EMALFORMED);
	/* Plaintext type disagreeing with the sealing type. */
	{
		struct ferry_token_req req = base_req(FERRY_TOKEN_ACTOR_CLASS);
		uint8_t p[FERRY__PLAIN_MAX];
		size_t n = plain_of(&req, p);

		cr_assert_eq(ferry__token_seal_plain(kr, FERRY_TOKEN_SUBREQUEST, AUD,
						     p, n, NULL, out, sizeof(out),
						     &len), 0);
		cr_assert_eq(verify(kr, out, len, FERRY_TOKEN_SUBREQUEST, AUD),
			     -FERRY_TOKEN_EWRONGTYPE);
	}
	ferry_keyring_free(kr);
}

/* --- the keyring file --------------------------------------------------- */

static char g_dir[64];

static void mk_dir(void)
{
	strcpy(g_dir, "/tmp/ferry-test-token.XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir));
}

static void rm_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(keyfile, .init = mk_dir, .fini = rm_dir);

Test(keyfile, save_load_round_trip)
{
	struct ferry_keyring *kr = new_kr(7200, 60), *kr2;
	struct ferry_token_req req = base_req(FERRY_TOKEN_ACTOR_CLASS);
	struct ferry_keyring_keyinfo a, b;
	char path[128];
	struct stat st;
	size_t len;
	uint8_t *t;

	snprintf(path, sizeof(path), "%s/kr", g_dir);
	g_now = T0;
	t = seal(kr, &req, &len);
	cr_assert_eq(ferry_keyring_rotate(kr), 0);
	/* A permissive umask must not widen the file. */
	umask(0);
	cr_assert_eq(ferry_keyring_save(kr, path, FERRY_KEYRING_NOREPLACE), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(ferry_keyring_save(kr, path, FERRY_KEYRING_NOREPLACE), -EEXIST);
	cr_assert_eq(ferry_keyring_save(kr, path, 0), 0);
	cr_assert_eq(ferry_keyring_save(kr, path, 2), -EINVAL);

	cr_assert_eq(ferry_keyring_load(path, &kr2), 0);
	ferry_keyring_set_clock(kr2, test_clock, NULL);
	cr_assert_eq(ferry_keyring_max_ttl(kr2), 7200);
	cr_assert_eq(ferry_keyring_skew(kr2), 60);
	cr_assert_eq(ferry_keyring_active_id(kr2), 2);
	for (unsigned i = 0; i < 2; i++) {
		cr_assert_eq(ferry_keyring_key(kr, i, &a), 0);
		cr_assert_eq(ferry_keyring_key(kr2, i, &b), 0);
		cr_assert(a.id == b.id && a.active == b.active &&
			  a.created_at == b.created_at && a.retire_at == b.retire_at);
	}
	cr_assert_eq(verify(kr2, t, len, req.type, AUD), 0);
	free(t);
	t = seal(kr2, &req, &len);
	cr_assert_eq(verify(kr, t, len, req.type, AUD), 0);
	free(t);
	ferry_keyring_free(kr);
	ferry_keyring_free(kr2);
}

Test(keyfile, refuses_group_or_other_access)
{
	static const mode_t bad[] = { 0640, 0604, 0660, 0620, 0602, 0610, 0601,
				      0644, 0666, 0700 | 0070 };
	struct ferry_keyring *kr = new_kr(3600, 30), *kr2;
	char path[128];

	snprintf(path, sizeof(path), "%s/kr", g_dir);
	cr_assert_eq(ferry_keyring_save(kr, path, 0), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(chmod(path, bad[i]), 0);
		kr2 = (void *)1;
		cr_assert_eq(ferry_keyring_load(path, &kr2), -FERRY_KEYRING_EMODE,
			     "mode %o", (unsigned)bad[i]);
		cr_assert_null(kr2);
	}
	cr_assert_str_eq(ferry_token_strerror(-FERRY_KEYRING_EMODE),
			 "keyring file is accessible by group or others (chmod 600)");
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(ferry_keyring_load(path, &kr2), 0);
	ferry_keyring_free(kr2);
	ferry_keyring_free(kr);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, 0600), 0);
}

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = malloc(4096);

	cr_assert_not_null(f);
	*n = fread(p, 1, 4096, f);
	fclose(f);
	return p;
}

Test(keyfile, refuses_damaged_files)
{
	struct ferry_keyring *kr = new_kr(3600, 30), *kr2;
	char path[128], bad[140], link_path[140];
	size_t n;
	uint8_t *img;

	snprintf(path, sizeof(path), "%s/kr", g_dir);
	snprintf(bad, sizeof(bad), "%s/bad", g_dir);
	snprintf(link_path, sizeof(link_path), "%s/link", g_dir);
	g_now = T0;
	cr_assert_eq(ferry_keyring_rotate(kr), 0);
	cr_assert_eq(ferry_keyring_save(kr, path, 0), 0);
	img = read_file(path, &n);
	cr_assert_eq(n, 18 + 2 * 52);

	/* Every truncation, and one byte too many. */
	for (size_t i = 0; i < n; i++) {
		write_file(bad, img, i);
		cr_assert_eq(ferry_keyring_load(bad, &kr2), -FERRY_KEYRING_EFORMAT,
			     "len %zu", i);
	}
	img[n] = 0;
	write_file(bad, img, n + 1);
	cr_assert_eq(ferry_keyring_load(bad, &kr2), -FERRY_KEYRING_EFORMAT);
	/* Header fields and the per-key rules. */
#define MUT(off, val, want)                                                    \
	do {                                                                   \
		uint8_t keep = img[off];                                       \
		img[off] = (val);                                              \
		write_file(bad, img, n);                                       \
		cr_assert_eq(ferry_keyring_load(bad, &kr2), (want),            \
			     "img[%d] = %#x", off, val);                         \
		if ((want) == 0)                                               \
			ferry_keyring_free(kr2);                               \
		img[off] = keep;                                               \
	} while (0)
	MUT(0, 'X', -FERRY_KEYRING_EFORMAT);  /* magic */
	MUT(4, 2, -FERRY_KEYRING_EFORMAT);    /* file version */
	MUT(5, 3, -FERRY_KEYRING_EFORMAT);    /* key count vs length */
	MUT(5, 0, -FERRY_KEYRING_EFORMAT);
	MUT(6, 0xff, -FERRY_KEYRING_EFORMAT); /* max_ttl over the limit */
	MUT(10, 0xff, -FERRY_KEYRING_EFORMAT); /* skew over the limit */
	MUT(17, 1, -FERRY_KEYRING_EFORMAT);   /* active id names key 1 */
	MUT(18 + 3, 1, -FERRY_KEYRING_EFORMAT); /* duplicate id, wrong order */
	MUT(18 + 3, 0, -FERRY_KEYRING_EFORMAT); /* id 0 */
	MUT(18 + 19, 1, -FERRY_KEYRING_EFORMAT); /* active key retiring */
	MUT(18 + 52 + 3, 2, -FERRY_KEYRING_EFORMAT); /* duplicate id 2 */
	MUT(18 + 52 + 3, 9, 0);                 /* another id is fine */
#undef MUT
	cr_assert_eq(symlink(path, link_path), 0);
	cr_assert_eq(ferry_keyring_load(link_path, &kr2), -ELOOP);
	cr_assert_eq(ferry_keyring_load(g_dir, &kr2), -EINVAL, "a directory");
	snprintf(bad, sizeof(bad), "%s/none", g_dir);
	cr_assert_eq(ferry_keyring_load(bad, &kr2), -ENOENT);
	free(img);
	ferry_keyring_free(kr);
}

/* --- pending issuance --------------------------------------------------- */

/* A plug-in that answers later, from a thread of its own. */
struct remote {
	struct ferry_keyring *kr;
	struct ferry_token_req req; /* copied: the original is borrowed */
	struct ferry_token_pending *p;
	pthread_t thr;
	int fail_with;      /* complete with this error instead */
	int cancels;        /* times the cancel op ran */
	int complete_rc;
	int refuse;         /* return this from ->issue at once */
	int sync;           /* complete inside ->issue */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go;             /* the thread completes once this is set */
};

static void *remote_thread(void *arg)
{
	struct remote *r = arg;
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	size_t len;
	int rc;

	pthread_mutex_lock(&r->mu);
	while (!r->go)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	rc = r->fail_with ? r->fail_with
			  : ferry_token_seal(r->kr, &r->req, tok, sizeof(tok), &len);
	r->complete_rc = ferry_token_pending_complete(r->p, rc, rc ? NULL : tok,
						      rc ? 0 : len);
	return NULL;
}

static int remote_issue(void *arg, const struct ferry_token_req *req,
			struct ferry_token_pending *p)
{
	struct remote *r = arg;
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	size_t len;

	if (r->refuse)
		return r->refuse;
	if (r->sync) {
		cr_assert_eq(ferry_token_seal(r->kr, req, tok, sizeof(tok), &len), 0);
		ferry_token_pending_complete(p, 0, tok, len);
		return 0;
	}
	r->req = *req; /* the strings are static in these tests */
	r->p = p;
	cr_assert_eq(pthread_create(&r->thr, NULL, remote_thread, r), 0);
	return 0;
}

static void remote_cancel(void *arg, struct ferry_token_pending *p)
{
	struct remote *r = arg;

	cr_assert_eq(p, r->p);
	cr_assert(ferry_token_pending_cancelled(p));
	r->cancels++;
}

static const struct ferry_token_issuer_ops remote_ops = {
	.issue = remote_issue,
	.cancel = remote_cancel,
};

static void remote_init(struct remote *r, struct ferry_keyring *kr)
{
	memset(r, 0, sizeof(*r));
	r->kr = kr;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static void remote_go(struct remote *r)
{
	pthread_mutex_lock(&r->mu);
	r->go = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* What the callback saw. */
struct done {
	int calls;
	int res;
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	size_t len;
	pthread_t thread;
	struct ferry_token_pending *release; /* release from inside the cb */
	int cancel_rc;                       /* cancel from inside the cb */
};

static void done_cb(void *arg, int res, const uint8_t *token, size_t len)
{
	struct done *d = arg;

	d->calls++;
	d->res = res;
	d->len = len;
	d->thread = pthread_self();
	if (res == 0)
		memcpy(d->tok, token, len);
	else
		cr_assert_null(token);
	if (d->release) {
		d->cancel_rc = ferry_token_pending_cancel(d->release);
		ferry_token_pending_release(d->release);
	}
}

Test(pending, completes_from_another_thread)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_pending *p;
	struct remote r;
	struct done d = { 0 };
	uint8_t out[FERRY_TOKEN_MAX_LEN];
	size_t len = 0;

	g_now = T0;
	remote_init(&r, kr);
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, out, sizeof(out),
				       &len, done_cb, &d, &p), 0);
	cr_assert_not_null(p);
	cr_assert_eq(d.calls, 0);
	remote_go(&r);
	pthread_join(r.thr, NULL);
	cr_assert_eq(r.complete_rc, 0);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.res, 0);
	cr_assert(pthread_equal(d.thread, r.thr), "ran on the completing thread");
	cr_assert_eq(verify(kr, d.tok, d.len, req.type, AUD), 0);
	cr_assert_eq(ferry_token_pending_cancel(p), -EALREADY);
	cr_assert(!ferry_token_pending_cancelled(p));
	ferry_token_pending_release(p);
	ferry_keyring_free(kr);
}

Test(pending, error_from_another_thread)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_pending *p;
	struct remote r;
	struct done d = { 0 };
	size_t len;

	remote_init(&r, kr);
	r.fail_with = -ETIMEDOUT;
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, NULL, 0, &len,
				       done_cb, &d, &p), 0);
	/* The caller may let go first; the callback still comes. */
	ferry_token_pending_release(p);
	remote_go(&r);
	pthread_join(r.thr, NULL);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.res, -ETIMEDOUT);
	cr_assert_eq(d.len, 0);
	ferry_keyring_free(kr);
}

Test(pending, cancel_before_completion_drops_result)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_pending *p;
	struct remote r;
	struct done d = { 0 };
	size_t len;

	g_now = T0;
	remote_init(&r, kr);
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, NULL, 0, &len,
				       done_cb, &d, &p), 0);
	cr_assert_eq(ferry_token_pending_cancel(p), 0);
	cr_assert_eq(r.cancels, 1);
	cr_assert(ferry_token_pending_cancelled(p));
	cr_assert_eq(ferry_token_pending_cancel(p), 0, "cancel is idempotent");
	cr_assert_eq(r.cancels, 1);
	ferry_token_pending_release(p);
	remote_go(&r);
	pthread_join(r.thr, NULL);
	cr_assert_eq(r.complete_rc, -ECANCELED);
	cr_assert_eq(d.calls, 0);
	ferry_keyring_free(kr);
}

Test(pending, release_and_cancel_from_inside_the_callback)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_pending *p;
	struct remote r;
	struct done d = { 0 };
	size_t len;

	g_now = T0;
	remote_init(&r, kr);
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, NULL, 0, &len,
				       done_cb, &d, &p), 0);
	d.release = p;
	remote_go(&r);
	pthread_join(r.thr, NULL);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.cancel_rc, -EALREADY, "no self-deadlock");
	ferry_keyring_free(kr);
}

/* A cancel racing a running callback waits for it to return. */
struct slow {
	struct done d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int in_cb, may_return, returned;
};

static void slow_cb(void *arg, int res, const uint8_t *token, size_t len)
{
	struct slow *s = arg;

	done_cb(&s->d, res, token, len);
	pthread_mutex_lock(&s->mu);
	s->in_cb = 1;
	pthread_cond_broadcast(&s->cv);
	while (!s->may_return)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	usleep(20000); /* give a non-waiting cancel the chance to be wrong */
	s->returned = 1;
}

Test(pending, cancel_waits_for_running_callback)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_pending *p;
	struct remote r;
	struct slow s;
	size_t len;

	g_now = T0;
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	remote_init(&r, kr);
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, NULL, 0, &len,
				       slow_cb, &s, &p), 0);
	remote_go(&r);
	pthread_mutex_lock(&s.mu);
	while (!s.in_cb)
		pthread_cond_wait(&s.cv, &s.mu);
	s.may_return = 1;
	pthread_cond_broadcast(&s.cv);
	pthread_mutex_unlock(&s.mu);
	cr_assert_eq(ferry_token_pending_cancel(p), -EALREADY);
	cr_assert_eq(s.returned, 1, "cancel returned while the callback ran");
	pthread_join(r.thr, NULL);
	ferry_token_pending_release(p);
	ferry_keyring_free(kr);
}

Test(pending, synchronous_results)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_ACTOR_CLASS);
	struct ferry_token_pending *p = (void *)1;
	struct remote r;
	struct done d = { 0 };
	uint8_t out[FERRY_TOKEN_MAX_LEN];
	size_t len = 0;

	g_now = T0;
	/* The built-in issuer: always synchronous. */
	cr_assert_eq(ferry_token_issue(ferry_token_local_issuer(), kr, &req, out,
				       sizeof(out), &len, done_cb, &d, &p), 0);
	cr_assert_null(p);
	cr_assert_eq(d.calls, 0);
	cr_assert_eq(verify(kr, out, len, req.type, AUD), 0);
	/* A plug-in completing inside ->issue. */
	remote_init(&r, kr);
	r.sync = 1;
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, out, sizeof(out),
				       &len, done_cb, &d, &p), 0);
	cr_assert_null(p);
	cr_assert_eq(verify(kr, out, len, req.type, AUD), 0);
	/* Too small a buffer: -ENOBUFS with the length needed. */
	cr_assert_eq(ferry_token_issue(ferry_token_local_issuer(), kr, &req, out,
				       10, &len, done_cb, &d, &p), -ENOBUFS);
	cr_assert_null(p);
	cr_assert_eq(len, FERRY_TOKEN_MIN_LEN - 1 + 7 + 6);
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, out, 10, &len,
				       done_cb, &d, &p), -ENOBUFS);
	/* Refusals. */
	req.ttl = 0;
	cr_assert_eq(ferry_token_issue(ferry_token_local_issuer(), kr, &req, out,
				       sizeof(out), &len, done_cb, &d, &p), -EINVAL);
	r.sync = 0;
	r.refuse = -EPERM;
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, out, sizeof(out),
				       &len, done_cb, &d, &p), -EPERM);
	cr_assert_null(p);
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, out, sizeof(out),
				       &len, NULL, &d, &p), -EINVAL, "no callback");
	cr_assert_eq(ferry_token_issue(NULL, &r, &req, out, sizeof(out), &len,
				       done_cb, &d, &p), -EINVAL);
	cr_assert_eq(d.calls, 0);
	ferry_keyring_free(kr);
}

/* Bad results from a plug-in reach the callback as -EINVAL. */
Test(pending, bad_completion_becomes_einval)
{
	struct ferry_keyring *kr = new_kr(3600, 30);
	struct ferry_token_req req = base_req(FERRY_TOKEN_SUBREQUEST);
	struct ferry_token_pending *p;
	struct remote r;
	struct done d = { 0 };
	size_t len;

	remote_init(&r, kr);
	r.fail_with = 5; /* positive: not a result */
	cr_assert_eq(ferry_token_issue(&remote_ops, &r, &req, NULL, 0, &len,
				       done_cb, &d, &p), 0);
	remote_go(&r);
	pthread_join(r.thr, NULL);
	cr_assert_eq(r.complete_rc, -EINVAL);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.res, -EINVAL);
	ferry_token_pending_release(p);
	ferry_keyring_free(kr);
}

/* --- error strings ------------------------------------------------------ */

Test(token, error_strings_are_distinct)
{
	for (int a = FERRY_TOKEN_ERRNO_BASE; a < FERRY_TOKEN_ERRNO_MAX; a++) {
		const char *sa = ferry_token_strerror(-a);

		cr_assert_not_null(sa);
		cr_assert_str_eq(sa, ferry_token_strerror(a));
		cr_assert_neq(strncmp(sa, "unknown", 7), 0, "code %d", a);
		for (int b = a + 1; b < FERRY_TOKEN_ERRNO_MAX; b++)
			cr_assert_str_neq(sa, ferry_token_strerror(-b));
	}
	cr_assert_str_eq(ferry_token_strerror(-FERRY_TOKEN_EEXPIRED), "token expired");
	cr_assert_str_eq(ferry_token_strerror(-EINVAL), ferry_strerror(-EINVAL));
	cr_assert_str_eq(ferry_token_strerror(-FERRY_EPROTO),
			 ferry_strerror(-FERRY_EPROTO));
	cr_assert_str_eq(ferry_token_strerror(0), "success");
	cr_assert_str_eq(ferry_token_type_name(FERRY_TOKEN_ACTOR_CLASS), "actor-class");
	cr_assert_str_eq(ferry_token_type_name(9), "unknown");
}
