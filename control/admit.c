/* SPDX-License-Identifier: MIT */
/*
 * The control plane's side of session admission and of tokens in calls.
 *
 * The transport knows nothing of keys: it runs an admission hook for each
 * new CONNECT (ferry_endpoint_set_admission) and hands handlers the token
 * bytes a call carries (ferry_call_cap).  This file supplies the hook that
 * verifies channel tokens against a keyring, and the redeem call for
 * handlers.  Both verify offline; neither runs after a session is open
 * except when a handler asks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <ferry/endpoint.h>
#include <ferry/iou.h>
#include <ferry/session.h>
#include <ferry/token.h>

#include "control/internal.h"
#include "transport/admit_hook.h"

/* Live sessions of one token, by the first 8 bytes of its id (random, and
 * sealed: nobody without the key can choose or forge one). */
struct admit_tok {
	uint64_t tag;
	uint32_t live; /* 0: the slot is free */
};

/* One endpoint's admission policy.  Owned by the endpoint once set (freed
 * through the hook's release); used only on the endpoint's thread. */
struct admit_ctx {
	const struct ferry_keyring *kr; /* borrowed */
	int type;                       /* pushes: the type, 0 for either */
	char *audience;
	char **channels;
	size_t nchannels;
	char **entrypoints;             /* NULL: any entrypoint */
	size_t nentrypoints;
	uint32_t per_token;             /* sessions one token may hold */
	struct ferry_endpoint *ep;      /* the endpoint that owns this */
	/* Open addressing, linear probing, at most half full: a token in
	 * it holds a session, and the endpoint has at most half as many
	 * sessions as the table has slots, so it can never fill. */
	struct admit_tok *toks;
	uint32_t tok_mask;
	/* Scratch for the verified contents: a token's props may be 4 KiB,
	 * too much for the stack of a poll loop called from anywhere. */
	struct ferry_token_info info;
};

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void admit_free(void *arg)
{
	struct admit_ctx *a = arg;

	if (!a)
		return;
	strv_free(a->channels, a->nchannels);
	strv_free(a->entrypoints, a->nentrypoints);
	free(a->toks);
	free(a->audience);
	free(a);
}

/* --- live sessions per token -------------------------------------------- */

static uint32_t tok_home(const struct admit_ctx *a, uint64_t tag)
{
	return (uint32_t)((tag * 0x9e3779b97f4a7c15ull) >> 32) & a->tok_mask;
}

/* The slot of @tag, or the free slot where it would go. */
static struct admit_tok *tok_find(struct admit_ctx *a, uint64_t tag)
{
	uint32_t i = tok_home(a, tag);

	while (a->toks[i].live && a->toks[i].tag != tag)
		i = (i + 1) & a->tok_mask;
	return &a->toks[i];
}

/* A session of @tag ended.  A token whose last session ended leaves the
 * table; the entries after it in its probe run move back to close the
 * gap (backward-shift deletion: no tombstones to slow lookups). */
static void tok_untag(void *arg, uint64_t tag)
{
	struct admit_ctx *a = arg;
	struct admit_tok *t = tok_find(a, tag);
	uint32_t hole, i;

	if (!t->live)
		return; /* not ours: never happens */
	if (--t->live)
		return;
	hole = (uint32_t)(t - a->toks);
	for (i = (hole + 1) & a->tok_mask; a->toks[i].live;
	     i = (i + 1) & a->tok_mask) {
		uint32_t home = tok_home(a, a->toks[i].tag);

		/* Move it into the hole unless its home lies cyclically in
		 * (hole, i]: then the hole is not on its probe path. */
		if (((i - home) & a->tok_mask) >= ((i - hole) & a->tok_mask)) {
			a->toks[hole] = a->toks[i];
			a->toks[i].live = 0;
			hole = i;
		}
	}
}

static uint64_t tok_tag(const struct ferry_token_info *info)
{
	uint64_t tag = 0;

	for (int i = 0; i < 8; i++)
		tag = tag << 8 | info->id[i];
	return tag;
}

/* Verify as a token of @type, or of either type when @type is 0, and
 * take its holder key (a wire v2 session needs one: docs/wire.md,
 * 4.5).  The AEAD binds the type, so the other type is tried only when
 * the token says it is one. */
static int verify_one(const struct ferry_keyring *kr, const void *token,
		      size_t len, int type, const char *audience,
		      struct ferry_token_info *info,
		      uint8_t hk[FERRY_TOKEN_HK_LEN])
{
	return hk ? ferry_token_verify2(kr, token, len, type, audience, info,
					hk)
		  : ferry_token_verify(kr, token, len, type, audience, info);
}

/* @hk: NULL for a token that proves nothing but itself (a capability in
 * a call), else where its holder key goes (a token must then be v2). */
static int verify_typed(const struct ferry_keyring *kr, const void *token,
			size_t len, int type, const char *audience,
			struct ferry_token_info *info,
			uint8_t hk[FERRY_TOKEN_HK_LEN])
{
	int ret = verify_one(kr, token, len,
			     type ? type : FERRY_TOKEN_SUBREQUEST, audience,
			     info, hk);

	if (ret == -FERRY_TOKEN_EWRONGTYPE && !type)
		ret = verify_one(kr, token, len, FERRY_TOKEN_ACTOR_CLASS,
				 audience, info, hk);
	return ret;
}

static bool str_in(const char *s, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, v[i]) == 0)
			return true;
	return false;
}

/* Milliseconds from now (the keyring's clock) until the verified token
 * stops verifying: now >= expires_at + skew (docs/tokens.md, section 4).
 * At least 1: the token verified just now. */
static uint64_t ms_left(const struct admit_ctx *a)
{
	uint64_t now = a->kr->now(a->kr->now_arg);
	uint64_t skew = a->kr->skew, end = a->info.expires_at;

	end = end > UINT64_MAX - skew ? UINT64_MAX : end + skew;
	if (end <= now)
		return 1;
	/* A token that verified lives at most max TTL + 2 x skew from now
	 * (a year and two days); the cap, 136 years, is there only so that
	 * neither this product nor the transport's nanoseconds can wrap. */
	return end - now > (1ull << 32) ? (1ull << 32) * 1000 :
					  (end - now) * 1000;
}

/*
 * The admission hook.  The reason for a refusal is what it returns; the
 * transport counts it and tells the client only that it was refused.  An
 * admitted session is tagged with its token (counted until it ends) and
 * ends when its token expires.
 */
static int admit_check(void *arg, const void *token, size_t len)
{
	struct admit_ctx *a = arg;
	uint8_t hk[FERRY_TOKEN_HK_LEN];
	struct admit_tok *t;
	uint64_t tag;
	int ret;

	if (!token || len == 0)
		return -FERRY_TOKEN_EMISSING;
	/* Both token types are channel tokens (a service entrypoint or an
	 * actor class). */
	ret = verify_typed(a->kr, token, len, 0, a->audience, &a->info, hk);
	if (ret < 0)
		return ret;
	/* The client must prove it holds hk, and hk enters the session's
	 * keys: the transport checks the proof after this hook. */
	ferry__admit_holder_key(a->ep, hk);
	sodium_memzero(hk, sizeof(hk));
	if (!str_in(a->info.target, a->channels, a->nchannels))
		return -FERRY_TOKEN_ECHANNEL;
	/* An empty entrypoint is the whole channel, which includes ours. */
	if (a->entrypoints && a->info.entrypoint[0] &&
	    !str_in(a->info.entrypoint, a->entrypoints, a->nentrypoints))
		return -FERRY_TOKEN_EENTRYPOINT;
	tag = tok_tag(&a->info);
	t = tok_find(a, tag);
	if (t->live >= a->per_token)
		return -FERRY_TOKEN_ESESSIONS;
	t->tag = tag;
	t->live++;
	ferry__admit_grant(a->ep, tag, ms_left(a));
	return 0;
}

/* A name the token format can carry: 1..@max bytes, no control bytes. */
static bool name_ok(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max + 1);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Copy @n names of at most @max bytes each; NULL on a bad name (*@err
 * -EINVAL) or out of memory (*@err -ENOMEM). */
static char **strv_dup(const char *const *v, size_t n, size_t max, int *err)
{
	char **out;

	*err = -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!name_ok(v[i], max))
			return NULL;
	*err = -ENOMEM;
	out = calloc(n, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i]) {
			strv_free(out, i);
			return NULL;
		}
	}
	return out;
}

/* The per-token table: twice the endpoint's sessions, a power of two. */
static int toks_alloc(struct admit_ctx *a)
{
	uint32_t max = ferry__admit_max_sessions(a->ep), n = 8;

	while (n < 2 * (uint64_t)max)
		n *= 2;
	a->toks = calloc(n, sizeof(*a->toks));
	if (!a->toks)
		return -ENOMEM;
	a->tok_mask = n - 1;
	return 0;
}

int ferry_endpoint_require_token_opts(struct ferry_endpoint *ep,
				      const struct ferry_keyring *kr,
				      const char *audience,
				      const char *const *channels,
				      size_t nchannels,
				      const struct ferry_require_token_opts *o)
{
	static const struct ferry_require_token_opts none;
	struct admit_ctx *a;
	int ret;

	if (!o)
		o = &none;
	if (!ep || !kr || !channels || nchannels == 0 ||
	    !name_ok(audience, FERRY_TOKEN_AUDIENCE_MAX) ||
	    (o->nentrypoints && !o->entrypoints))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->kr = kr;
	a->ep = ep;
	a->per_token = o->max_sessions_per_token ?
			       o->max_sessions_per_token :
			       FERRY_ADMIT_SESSIONS_PER_TOKEN;
	a->audience = strdup(audience);
	ret = -ENOMEM;
	if (!a->audience)
		goto err;
	a->channels = strv_dup(channels, nchannels, FERRY_TOKEN_NAME_MAX, &ret);
	if (!a->channels)
		goto err;
	a->nchannels = nchannels;
	if (o->nentrypoints) {
		a->entrypoints = strv_dup(o->entrypoints, o->nentrypoints,
					  FERRY_TOKEN_NAME_MAX, &ret);
		if (!a->entrypoints)
			goto err;
		a->nentrypoints = o->nentrypoints;
	}
	ret = toks_alloc(a);
	if (ret < 0)
		goto err;
	ret = ferry_endpoint_set_admission(ep, admit_check, admit_free, a);
	if (ret < 0)
		goto err;
	/* Installed: the endpoint owns @a now, and gives tags back. */
	return ferry__admit_set_untag(ep, tok_untag);
err:
	admit_free(a);
	return ret;
}

int ferry_endpoint_require_token(struct ferry_endpoint *ep,
				 const struct ferry_keyring *kr,
				 const char *audience,
				 const char *const *channels, size_t nchannels)
{
	return ferry_endpoint_require_token_opts(ep, kr, audience, channels,
						 nchannels, NULL);
}

/* The push check: a pushed token must verify like one in a table. */
static int push_check(void *arg, const void *token, size_t len)
{
	struct admit_ctx *a = arg;

	return verify_typed(a->kr, token, len, a->type, a->audience,
			    &a->info, NULL);
}

int ferry_endpoint_check_pushes(struct ferry_endpoint *ep,
				const struct ferry_keyring *kr, int type,
				const char *audience)
{
	struct admit_ctx *a;
	int ret;

	if (!ep || !kr || !name_ok(audience, FERRY_TOKEN_AUDIENCE_MAX) ||
	    (type != 0 && type != FERRY_TOKEN_SUBREQUEST &&
	     type != FERRY_TOKEN_ACTOR_CLASS))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->kr = kr;
	a->type = type;
	a->audience = strdup(audience);
	if (!a->audience) {
		admit_free(a);
		return -ENOMEM;
	}
	ret = ferry_endpoint_set_push_check(ep, push_check, admit_free, a);
	if (ret < 0)
		admit_free(a);
	return ret;
}

int ferry_call_redeem(const struct ferry_call *c, unsigned i,
		      const struct ferry_keyring *kr, int type,
		      const char *audience, struct ferry_token_info *info)
{
	const void *tok;
	size_t len;
	int ret;

	if (!c || !kr)
		return -EINVAL;
	ret = ferry_call_cap(c, i, &tok, &len);
	if (ret < 0)
		return ret;
	return ferry_token_verify(kr, tok, len, type, audience, info);
}
