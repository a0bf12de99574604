/* SPDX-License-Identifier: MIT */
/*
 * Deferred tokens, the control plane's side: a token issuance that a call
 * does not wait for.
 *
 * ferry_cap_issue() makes a promise on the session (ferry_iou_new), then
 * starts the issuance.  An issuer that answers at once gives a plain token
 * and the promise is taken back; one that answers later gives the call an
 * IOU, and its completion -- on whatever thread the issuer completes on --
 * keeps the promise, which the transport turns into a PUSH on the session.
 *
 * Lifetime: the record below lives from ferry_cap_issue() until the
 * transport releases the promise (after its PUSH was acknowledged, or the
 * session ended).  It holds the caller's reference to the pending handle,
 * so the transport's cancel hook can always reach the handle; the
 * issuer's own reference is its to give back by completing.
 */
#include <errno.h>
#include <stdlib.h>

#include <ferry/iou.h>
#include <ferry/session.h>
#include <ferry/token.h>

struct cap_issue {
	struct ferry_iou *iou;
	struct ferry_token_pending *p; /* NULL until issue returned */
};

/* The issuer's completion: keep the promise.  Nothing here may touch @arg
 * after the promise is kept, since the endpoint may release it at once. */
static void issue_done(void *arg, int res, const uint8_t *token, size_t len)
{
	struct ferry_iou *iou = ((struct cap_issue *)arg)->iou;

	if (res == 0)
		ferry_iou_resolve(iou, token, len);
	else
		ferry_iou_fail(iou, res);
}

/* The session ended first.  ferry_token_pending_cancel() returns only once
 * the completion cannot run or has run, as the transport requires. */
static void issue_cancel(void *arg)
{
	struct cap_issue *ci = arg;

	if (ci->p)
		ferry_token_pending_cancel(ci->p);
}

static void issue_release(void *arg)
{
	struct cap_issue *ci = arg;

	ferry_token_pending_release(ci->p);
	free(ci);
}

static const struct ferry_iou_hooks issue_hooks = {
	.cancel = issue_cancel,
	.release = issue_release,
};

int ferry_cap_issue(struct ferry_session *s,
		    const struct ferry_token_issuer_ops *ops, void *ops_arg,
		    const struct ferry_token_req *req, void *buf, size_t cap,
		    struct ferry_cap *out)
{
	struct cap_issue *ci;
	struct ferry_token_pending *p;
	size_t len = 0;
	int ret;

	if (!s || !ops || !req || !out)
		return -EINVAL;
	ci = calloc(1, sizeof(*ci));
	if (!ci)
		return -ENOMEM;
	/* The promise comes first: the completion may run on another
	 * thread before ferry_token_issue() has even returned. */
	ret = ferry_iou_new(s, &issue_hooks, ci, &ci->iou);
	if (ret < 0) {
		free(ci);
		return ret;
	}
	ret = ferry_token_issue(ops, ops_arg, req, buf, cap, &len, issue_done,
				ci, &p);
	if (ret < 0 || !p) {
		/* Refused, or answered at once: no promise is needed
		 * (ferry_iou_cancel releases @ci). */
		ferry_iou_cancel(ci->iou);
		if (ret < 0)
			return ret;
		*out = (struct ferry_cap){ .kind = FERRY_CAP_TOKEN,
					   .data = buf,
					   .len = len };
		return 0;
	}
	ci->p = p;
	*out = (struct ferry_cap){ .kind = FERRY_CAP_IOU, .data = ci->iou };
	return 0;
}
