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

#include <ferry/endpoint.h>
#include <ferry/iou.h>
#include <ferry/session.h>
#include <ferry/token.h>

/* One endpoint's admission policy.  Owned by the endpoint once set (freed
 * through the hook's release); used only on the endpoint's thread. */
struct admit_ctx {
	const struct ferry_keyring *kr; /* borrowed */
	int type;                       /* pushes: the type, 0 for either */
	char *audience;
	char **channels;
	size_t nchannels;
	/* Scratch for the verified contents: a token's props may be 4 KiB,
	 * too much for the stack of a poll loop called from anywhere. */
	struct ferry_token_info info;
};

static void admit_free(void *arg)
{
	struct admit_ctx *a = arg;

	if (!a)
		return;
	for (size_t i = 0; i < a->nchannels; i++)
		free(a->channels[i]);
	free(a->channels);
	free(a->audience);
	free(a);
}

/* Verify as a token of @type, or of either type when @type is 0.  The
 * AEAD binds the type, so the other type is tried only when the token
 * says it is one. */
static int verify_typed(const struct ferry_keyring *kr, const void *token,
			size_t len, int type, const char *audience,
			struct ferry_token_info *info)
{
	int ret = ferry_token_verify(kr, token, len,
				     type ? type : FERRY_TOKEN_SUBREQUEST,
				     audience, info);

	if (ret == -FERRY_TOKEN_EWRONGTYPE && !type)
		ret = ferry_token_verify(kr, token, len,
					 FERRY_TOKEN_ACTOR_CLASS, audience,
					 info);
	return ret;
}

static int admit_check(void *arg, const void *token, size_t len)
{
	struct admit_ctx *a = arg;
	int ret;

	if (!token || len == 0)
		return -FERRY_TOKEN_EMISSING;
	/* Both token types are channel tokens (a service entrypoint or an
	 * actor class). */
	ret = verify_typed(a->kr, token, len, 0, a->audience, &a->info);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < a->nchannels; i++)
		if (strcmp(a->info.target, a->channels[i]) == 0)
			return 0;
	return -FERRY_TOKEN_ECHANNEL;
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

int ferry_endpoint_require_token(struct ferry_endpoint *ep,
				 const struct ferry_keyring *kr,
				 const char *audience,
				 const char *const *channels, size_t nchannels)
{
	struct admit_ctx *a;
	int ret;

	if (!ep || !kr || !channels || nchannels == 0 ||
	    !name_ok(audience, FERRY_TOKEN_AUDIENCE_MAX))
		return -EINVAL;
	for (size_t i = 0; i < nchannels; i++)
		if (!name_ok(channels[i], FERRY_TOKEN_NAME_MAX))
			return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->kr = kr;
	a->audience = strdup(audience);
	a->channels = calloc(nchannels, sizeof(*a->channels));
	if (!a->audience || !a->channels)
		goto nomem;
	for (size_t i = 0; i < nchannels; i++) {
		a->channels[i] = strdup(channels[i]);
		if (!a->channels[i])
			goto nomem;
		a->nchannels = i + 1;
	}
	ret = ferry_endpoint_set_admission(ep, admit_check, admit_free, a);
	if (ret < 0)
		admit_free(a);
	return ret;
nomem:
	admit_free(a);
	return -ENOMEM;
}

/* The push check: a pushed token must verify like one in a table. */
static int push_check(void *arg, const void *token, size_t len)
{
	struct admit_ctx *a = arg;

	return verify_typed(a->kr, token, len, a->type, a->audience,
			    &a->info);
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
