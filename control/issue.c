/* SPDX-License-Identifier: MIT */
/*
 * Issuance that may complete now or later: pending handles.
 *
 * A handle's state moves one way:
 *
 *   ISSUING --complete--> SYNC_DONE                 (result during ->issue)
 *   ISSUING --issue returned 0--> PENDING
 *   PENDING --complete--> COMPLETING --cb returned--> DONE
 *   PENDING --cancel--> CANCELLED --complete--> DONE (result dropped)
 *
 * All of it under the handle's mutex; the callback and the plug-in's cancel
 * op run without it, so either may call back into this file.  Two
 * references (caller's, plug-in's) decide when the memory goes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "control/internal.h"

enum pend_state {
	ST_ISSUING,
	ST_SYNC_DONE,
	ST_PENDING,
	ST_COMPLETING,
	ST_CANCELLED,
	ST_DONE,
};

struct ferry_token_pending {
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* signalled when COMPLETING becomes DONE */
	enum pend_state state;
	int refs;
	const struct ferry_token_issuer_ops *ops;
	void *ops_arg;
	ferry_token_cb cb;
	void *cb_arg;
	/* The synchronous result, written by a completion during ISSUING;
	 * @out is the issue caller's buffer, valid only while it waits. */
	uint8_t *out;
	size_t cap;
	size_t sync_len;
	int sync_res;
};

/* The handle whose callback this thread is running, so that a cancel from
 * inside the callback does not wait for itself. */
static _Thread_local struct ferry_token_pending *tl_in_cb;

static void pend_put(struct ferry_token_pending *p)
{
	int last;

	pthread_mutex_lock(&p->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (last) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
	}
}

int ferry_token_issue(const struct ferry_token_issuer_ops *ops, void *ops_arg,
		      const struct ferry_token_req *req, void *out, size_t cap,
		      size_t *out_len, ferry_token_cb cb, void *cb_arg,
		      struct ferry_token_pending **pending)
{
	struct ferry_token_pending *p;
	int rc;

	if (pending)
		*pending = NULL;
	if (!ops || !ops->issue || !req || !cb || !pending || !out_len ||
	    (!out && cap))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->state = ST_ISSUING;
	p->refs = 2; /* this call (becomes the caller's), the plug-in's */
	p->ops = ops;
	p->ops_arg = ops_arg;
	p->cb = cb;
	p->cb_arg = cb_arg;
	p->out = out;
	p->cap = cap;

	rc = ops->issue(ops_arg, req, p);

	pthread_mutex_lock(&p->mu);
	if (p->state == ST_SYNC_DONE) {
		/* Completed before we got here, on this thread or another:
		 * the result is synchronous whatever ->issue returned. */
		rc = p->sync_res;
		*out_len = p->sync_len;
		p->out = NULL;
		pthread_mutex_unlock(&p->mu);
		pend_put(p);
		return rc;
	}
	if (rc < 0) {
		/* Refused: by contract the plug-in will not complete, so its
		 * reference is dropped here as well. */
		p->refs--;
		pthread_mutex_unlock(&p->mu);
		pend_put(p);
		return rc;
	}
	p->state = ST_PENDING;
	p->out = NULL; /* the buffer is not ours past this return */
	pthread_mutex_unlock(&p->mu);
	*pending = p;
	return 0;
}

int ferry_token_pending_complete(struct ferry_token_pending *p, int res,
				 const void *token, size_t len)
{
	struct ferry_token_pending *outer;
	int ret = 0;

	if (res > 0 ||
	    (res == 0 && (!token || len == 0 || len > FERRY_TOKEN_MAX_LEN))) {
		res = -EINVAL;
		ret = -EINVAL;
	}
	if (res < 0) {
		token = NULL;
		len = 0;
	}

	pthread_mutex_lock(&p->mu);
	switch (p->state) {
	case ST_ISSUING:
		p->sync_res = res;
		p->sync_len = len;
		if (res == 0 && len > p->cap)
			p->sync_res = -ENOBUFS; /* sync_len says what it needs */
		else if (res == 0)
			memcpy(p->out, token, len);
		p->state = ST_SYNC_DONE;
		pthread_mutex_unlock(&p->mu);
		break;
	case ST_PENDING:
		p->state = ST_COMPLETING;
		pthread_mutex_unlock(&p->mu);
		outer = tl_in_cb;
		tl_in_cb = p;
		p->cb(p->cb_arg, res, token, len);
		tl_in_cb = outer;
		pthread_mutex_lock(&p->mu);
		p->state = ST_DONE;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		break;
	case ST_CANCELLED:
		p->state = ST_DONE;
		pthread_mutex_unlock(&p->mu);
		ret = -ECANCELED;
		break;
	default:
		/* Completed twice: a plug-in bug.  The reference was already
		 * given back, so touching @p further would be unsafe. */
		pthread_mutex_unlock(&p->mu);
		abort();
	}
	pend_put(p);
	return ret;
}

int ferry_token_pending_cancel(struct ferry_token_pending *p)
{
	pthread_mutex_lock(&p->mu);
	if (p->state == ST_PENDING) {
		p->state = ST_CANCELLED;
		pthread_mutex_unlock(&p->mu);
		/* The caller still holds its reference, so @p outlives this
		 * call even if the plug-in completes it right now. */
		if (p->ops->cancel)
			p->ops->cancel(p->ops_arg, p);
		return 0;
	}
	if (p->state == ST_CANCELLED) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	/* Wait out a callback running elsewhere, so the caller may free what
	 * the callback uses once this returns. */
	while (p->state == ST_COMPLETING && tl_in_cb != p)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	return -EALREADY;
}

bool ferry_token_pending_cancelled(struct ferry_token_pending *p)
{
	bool c;

	pthread_mutex_lock(&p->mu);
	c = p->state == ST_CANCELLED;
	pthread_mutex_unlock(&p->mu);
	return c;
}

void ferry_token_pending_release(struct ferry_token_pending *p)
{
	if (p)
		pend_put(p);
}

/* --- the built-in, synchronous issuer ----------------------------------- */

static int local_issue(void *arg, const struct ferry_token_req *req,
		       struct ferry_token_pending *p)
{
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	size_t len;
	int rc = ferry_token_seal(arg, req, tok, sizeof(tok), &len);

	if (rc < 0)
		return rc; /* refused: no completion, by the ops contract */
	ferry_token_pending_complete(p, 0, tok, len);
	return 0;
}

static const struct ferry_token_issuer_ops local_ops = {
	.issue = local_issue,
	.cancel = NULL,
};

const struct ferry_token_issuer_ops *ferry_token_local_issuer(void)
{
	return &local_ops;
}
