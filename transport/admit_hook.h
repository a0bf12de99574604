/* SPDX-License-Identifier: MIT */
/*
 * What the control plane's admission hook (control/admit.c, behind
 * ferry_endpoint_require_token) tells the transport beyond the public
 * ferry_admit_fn's verdict.  That typedef is ABI, so the extra is a side
 * channel of internal calls instead: during the hook, the hook says when
 * the session it admits must end (its token's expiry) and which tag it
 * counts the session under; the transport hands the tag back when the
 * session ends, so that the hook can keep live sessions per token.
 *
 * Everything here runs on the endpoint's thread.
 */
#ifndef FERRY_ADMIT_HOOK_H
#define FERRY_ADMIT_HOOK_H

#include <stdint.h>

struct ferry_endpoint;

/*
 * Gives back a tag granted with ferry__admit_grant(): exactly once per
 * grant, when the session ends however it ends, or at once when no session
 * was made after all (the hook refused the connect, or no session was
 * free).  Called with the admission hook's context.
 */
typedef void (*ferry__admit_untag_fn)(void *ctx, uint64_t tag);

/*
 * Install @untag for the endpoint's current admission hook; call it right
 * after ferry_endpoint_set_admission().  Setting another hook removes it,
 * and the sessions tagged under the old hook are forgotten (their tags
 * are never given back: the old hook's context is gone).
 * Returns 0, or -EINVAL (NULL @ep or no hook set).
 */
int ferry__admit_set_untag(struct ferry_endpoint *ep,
			   ferry__admit_untag_fn untag);

/*
 * Only from inside the admission hook, about the CONNECT it is judging: if
 * the connect is admitted, its session holds @tag until it ends (handed
 * back through the untag function), and ends @expires_in_ms from now
 * (0: never), telling the client with ERROR FERRY_TOKEN_EEXPIRED.
 */
void ferry__admit_grant(struct ferry_endpoint *ep, uint64_t tag,
			uint64_t expires_in_ms);

/*
 * Only from inside the admission hook: the token it judges holds holder
 * key @hk (32 bytes; a channel token v2, docs/tokens.md), which the
 * client must prove it has and which enters the session's keys
 * (docs/wire.md, 4.5).  A token-admitted CONNECT whose hook gives no
 * holder key is refused.
 */
void ferry__admit_holder_key(struct ferry_endpoint *ep, const uint8_t *hk);

/* How many sessions the endpoint holds at most: a bound on how many tags
 * a hook can have granted and not yet had back. */
uint32_t ferry__admit_max_sessions(const struct ferry_endpoint *ep);

#endif /* FERRY_ADMIT_HOOK_H */
