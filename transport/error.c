/* SPDX-License-Identifier: MIT */
/*
 * Error strings for every code ferry returns: the transport's and the
 * channel-token codes of the control plane (include/ferry/token.h).  The
 * token strings live here, not in control/, because a server's admission
 * refusal carries a token code to a client that may not link the control
 * plane at all.
 */
#include <ferry/error.h>
#include <ferry/token.h>

#include <string.h>

static const char *const ferry_msgs[] = {
	[FERRY_EREJECTED - FERRY_ERRNO_BASE] = "connect rejected by peer",
	[FERRY_ENOMETHOD - FERRY_ERRNO_BASE] = "no handler for method",
	[FERRY_EVERSION - FERRY_ERRNO_BASE] = "unsupported wire version",
	[FERRY_EPROTO - FERRY_ERRNO_BASE] = "wire protocol violation",
	[FERRY_ECAPS - FERRY_ERRNO_BASE] = "malformed token table in call",
	[FERRY_EIOU - FERRY_ERRNO_BASE] =
		"deferred token (IOU) not taken by the server",
};

static const char *const token_msgs[] = {
	[FERRY_TOKEN_EMALFORMED - FERRY_TOKEN_ERRNO_BASE] = "malformed token",
	[FERRY_TOKEN_EVERSION - FERRY_TOKEN_ERRNO_BASE] =
		"unsupported token version",
	[FERRY_TOKEN_EUNKNOWNKEY - FERRY_TOKEN_ERRNO_BASE] =
		"token key id not in keyring",
	[FERRY_TOKEN_EKEYRETIRED - FERRY_TOKEN_ERRNO_BASE] =
		"token key has retired",
	[FERRY_TOKEN_EAUTH - FERRY_TOKEN_ERRNO_BASE] =
		"token authentication failed",
	[FERRY_TOKEN_EEXPIRED - FERRY_TOKEN_ERRNO_BASE] = "token expired",
	[FERRY_TOKEN_ENOTYET - FERRY_TOKEN_ERRNO_BASE] = "token not yet valid",
	[FERRY_TOKEN_EWRONGTYPE - FERRY_TOKEN_ERRNO_BASE] =
		"token is of the wrong type",
	[FERRY_TOKEN_EAUDIENCE - FERRY_TOKEN_ERRNO_BASE] =
		"token is for another audience",
	[FERRY_KEYRING_EMODE - FERRY_TOKEN_ERRNO_BASE] =
		"keyring file is accessible by group or others (chmod 600)",
	[FERRY_KEYRING_EFORMAT - FERRY_TOKEN_ERRNO_BASE] =
		"not a ferry keyring file, or damaged",
	[FERRY_TOKEN_EMISSING - FERRY_TOKEN_ERRNO_BASE] =
		"server requires a channel token",
	[FERRY_TOKEN_ECHANNEL - FERRY_TOKEN_ERRNO_BASE] =
		"token is for a channel this server does not serve",
	[FERRY_TOKEN_ETTL - FERRY_TOKEN_ERRNO_BASE] =
		"token lifetime exceeds the keyring's max TTL",
	[FERRY_TOKEN_EENTRYPOINT - FERRY_TOKEN_ERRNO_BASE] =
		"token is for an entrypoint this server does not serve",
	[FERRY_TOKEN_ESESSIONS - FERRY_TOKEN_ERRNO_BASE] =
		"too many sessions for this token",
	[FERRY_TOKEN_ENOHK - FERRY_TOKEN_ERRNO_BASE] =
		"token has no holder key (version 1)",
};

_Static_assert(sizeof(ferry_msgs) / sizeof(ferry_msgs[0]) ==
		       FERRY_ERRNO_MAX - FERRY_ERRNO_BASE,
	       "a ferry_errno code without a string");
_Static_assert(sizeof(token_msgs) / sizeof(token_msgs[0]) ==
		       FERRY_TOKEN_ERRNO_MAX - FERRY_TOKEN_ERRNO_BASE,
	       "a token code without a string");

const char *ferry_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	if (err >= FERRY_ERRNO_BASE && err < FERRY_ERRNO_MAX)
		return ferry_msgs[err - FERRY_ERRNO_BASE];
	if (err >= FERRY_TOKEN_ERRNO_BASE && err < FERRY_TOKEN_ERRNO_MAX)
		return token_msgs[err - FERRY_TOKEN_ERRNO_BASE];
	if (err >= FERRY_ERRNO_BASE)
		return "unknown ferry error";
	/* strerror() may format into a shared buffer; strerrordesc_np()
	 * only returns constant strings, so it is safe from any thread. */
	{
		const char *d = strerrordesc_np(err);

		return d ? d : "unknown error";
	}
}
