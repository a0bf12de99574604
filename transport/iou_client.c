/* SPDX-License-Identifier: MIT */
/*
 * Deferred tokens (IOUs), the client's side: promises and their PUSH
 * frames (include/ferry/iou.h; docs/wire.md, section 8).  The server's
 * table of IOUs is in iou_server.c.
 *
 * A promise is made on the endpoint's thread and kept on any: the keeping
 * thread copies the token into a pool msgbuf and hands the promise over
 * through the endpoint's cross-thread queue.  Its PUSH goes on the
 * session's transmit queue once the call naming it has been sent, so on
 * the wire a PUSH follows its call unless the network reorders them; a
 * PUSH is a data frame, sent again until acknowledged like any request
 * fragment.  The PUSH travels in a call object embedded in the promise,
 * because retransmission records point at calls.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

static struct ferry_iou *iou_of(struct ferry_call *vc)
{
	return (struct ferry_iou *)((char *)vc - offsetof(struct ferry_iou, vc));
}

/* --- client: promises ------------------------------------------------------ */

static void iou_unlink(struct ferry_iou *iou)
{
	struct ferry_session *s = iou->s;

	if (iou->sprev)
		iou->sprev->snext = iou->snext;
	else if (s && s->cli.ious == iou)
		s->cli.ious = iou->snext;
	if (iou->snext)
		iou->snext->sprev = iou->sprev;
	iou->snext = iou->sprev = NULL;
}

/* Done with @iou: give back its token copy and the keeper's argument. */
static void iou_free(struct ferry_iou *iou)
{
	struct ferry_endpoint *ep = iou->ep;
	const struct ferry_iou_hooks *hooks = iou->hooks;
	void *arg = iou->arg;

	iou_unlink(iou);
	if (iou->state == IOU_HELD)
		iou->s->cli.ious_held--;
	if (iou->tok)
		ferry__msgbuf_put(iou->tok);
	iou->tok = NULL;
	iou->state = IOU_FREE;
	iou->s = NULL;
	iou->next = ep->iou_free;
	ep->iou_free = iou;
	if (hooks && hooks->release)
		hooks->release(arg);
}

int ferry_iou_new(struct ferry_session *s, const struct ferry_iou_hooks *hooks,
		  void *arg, struct ferry_iou **out)
{
	struct ferry_endpoint *ep;
	struct ferry_iou *iou;

	if (!s || !out || s->is_server)
		return -EINVAL;
	ep = s->ep;
	if (s->state != SESS_OPEN && s->state != SESS_CONNECTING)
		return -ENOTCONN;
	if (s->state == SESS_OPEN && !(s->peer_feat & FERRY_FEAT_IOU))
		return -EPROTONOSUPPORT;
	iou = ep->iou_free;
	if (!iou)
		return -ENOBUFS;
	ep->iou_free = iou->next;
	memset(iou, 0, sizeof(*iou));
	iou->ep = ep;
	iou->s = s;
	iou->id = ++s->cli.next_iou_id;
	iou->state = IOU_PROMISED;
	iou->hooks = hooks;
	iou->arg = arg;
	iou->snext = s->cli.ious;
	if (s->cli.ious)
		s->cli.ious->sprev = iou;
	s->cli.ious = iou;
	ep->st.ious_promised++;
	*out = iou;
	return 0;
}

uint64_t ferry_iou_id(const struct ferry_iou *iou)
{
	return iou ? iou->id : 0;
}

/*
 * Give up on an unkept promise: the keeper is told through the cancel hook
 * (after which its result has come in or never will), then the promise
 * goes -- or, if the result did come in meanwhile from another thread, it
 * is marked dead and the cross-thread drain frees it.  Without a hook, a
 * promise whose keeper may still keep it (@keeper_may_keep) waits for that,
 * dead.  Returns false when it did not go now.
 */
static bool iou_give_up(struct ferry_iou *iou, bool keeper_may_keep)
{
	iou_unlink(iou);
	iou->state = IOU_DEAD;
	if (iou->hooks && iou->hooks->cancel)
		iou->hooks->cancel(iou->arg);
	else if (keeper_may_keep && !atomic_load(&iou->kept))
		return false; /* its keeper's result frees it */
	if (iou->state == IOU_FREE)
		return true; /* kept on this thread, from the hook: gone */
	if (atomic_load(&iou->kept))
		return false; /* on the cross-thread queue */
	iou_free(iou);
	return true;
}

int ferry_iou_cancel(struct ferry_iou *iou)
{
	if (!iou || iou->state == IOU_FREE || iou->state == IOU_DEAD)
		return -EINVAL;
	if (iou->named || atomic_load(&iou->kept))
		return -EBUSY;
	iou_give_up(iou, false);
	return 0;
}

/* Any thread: take the result in, then hand the promise to its endpoint. */
static int iou_keep(struct ferry_iou *iou, int res, const void *tok,
		    size_t len)
{
	struct ferry_endpoint *ep;
	bool was = false;
	int ret = 0; /* the token could not be taken: the error goes */

	if (!iou)
		return -EINVAL;
	if (!atomic_compare_exchange_strong(&iou->kept, &was, true))
		return -EALREADY;
	ep = iou->ep;
	if (res == 0 && (len == 0 || len > FERRY_PUSH_TOKEN_MAX_LEN || !tok))
		res = ret = -EMSGSIZE;
	if (res == 0) {
		/* A copy in the pool: the PUSH is sent again from it until
		 * acknowledged, long after the caller's buffer is gone. */
		if (ferry_msgbuf_alloc(ep, len, &iou->tok) < 0) {
			iou->tok = NULL;
			res = ret = -ENOBUFS;
		} else {
			memcpy(iou->tok->data, tok, len);
		}
	}
	iou->res = res;
	if (ferry__on_owner(ep)) {
		bool alive = iou->state != IOU_DEAD;

		ferry__iou_kept(iou);
		return alive ? ret : -ENOTCONN;
	}
	/* Whether the session still lives is the endpoint thread's to know;
	 * a promise for a dead one is dropped there. */
	ferry__xlock(ep);
	iou->next = ep->xious;
	ep->xious = iou;
	ferry__xunlock_signal(ep);
	return ret;
}

int ferry_iou_resolve(struct ferry_iou *iou, const void *tok, size_t len)
{
	return iou_keep(iou, 0, tok, len);
}

int ferry_iou_fail(struct ferry_iou *iou, int err)
{
	return iou_keep(iou, err < 0 ? err : -EIO, NULL, 0);
}

/* Put @iou's PUSH on the session's transmit queue. */
static void iou_push(struct ferry_iou *iou)
{
	struct ferry_session *s = iou->s;
	struct ferry_call *vc = &iou->vc;

	/* A token that cannot go in one frame of this session: tell the
	 * server so rather than leave its IOU hanging. */
	if (iou->res == 0 &&
	    FERRY_PUSH_HDR_LEN + iou->tok->len > s->frag_unit) {
		ferry__msgbuf_put(iou->tok);
		iou->tok = NULL;
		iou->res = -EMSGSIZE;
	}
	memset(vc, 0, sizeof(*vc));
	vc->s = s;
	vc->is_push = true;
	vc->state = CALL_SENDING;
	iou->bnext = NULL;
	iou->state = IOU_PUSHING;
	s->ep->st.ious_pushed++;
	if (s->pushq_tail)
		s->pushq_tail->next = vc;
	else
		s->pushq_head = vc;
	s->pushq_tail = vc;
	ferry__sess_activate(s);
}

/* Not yet: the PUSH waits (ferry__iou_call_sent releases it). */
static void iou_hold(struct ferry_iou *iou)
{
	iou->state = IOU_HELD;
	iou->s->cli.ious_held++;
}

/* The endpoint's thread takes in a kept promise. */
void ferry__iou_kept(struct ferry_iou *iou)
{
	struct ferry_session *s = iou->s;

	if (iou->state == IOU_DEAD || iou->orphan) {
		/* The session ended, or the call naming it went unsent:
		 * nobody is owed this token. */
		iou->ep->st.ious_dropped++;
		iou_free(iou);
		return;
	}
	/* The PUSH follows its call onto the wire, so that the server
	 * meets the call first unless the network reorders them: it waits
	 * while no call names the promise yet, while that call is still
	 * queued or being sent, and while the session is connecting. */
	if (!iou->named || s->state != SESS_OPEN ||
	    (iou->named_by && (iou->named_by->state == CALL_QUEUED ||
			       iou->named_by->state == CALL_SENDING))) {
		iou_hold(iou);
		return;
	}
	iou->named_by = NULL;
	iou_push(iou);
}

void ferry__iou_name(struct ferry_call *c, const struct ferry_cap *caps,
		     unsigned ncaps)
{
	for (unsigned i = 0; i < ncaps; i++) {
		struct ferry_iou *iou;

		if (caps[i].kind != FERRY_CAP_IOU)
			continue;
		iou = (struct ferry_iou *)caps[i].data;
		iou->named = true;
		iou->named_by = c;
		c->n_ious++;
	}
}

/* The call @c is all on the wire (NULL: the handshake is done): the kept
 * promises it names follow it (NULL: those whose call has ended). */
void ferry__iou_call_sent(struct ferry_session *s, struct ferry_call *c)
{
	struct ferry_iou *iou, *next;

	for (iou = s->cli.ious; iou && s->cli.ious_held; iou = next) {
		next = iou->snext;
		if (iou->state != IOU_HELD || !iou->named ||
		    iou->named_by != c)
			continue;
		iou->named_by = NULL;
		s->cli.ious_held--;
		iou_push(iou);
	}
}

void ferry__iou_call_end(struct ferry_session *s, struct ferry_call *c)
{
	bool unsent = c->state == CALL_QUEUED;
	struct ferry_iou *iou, *next;

	for (iou = s->cli.ious; iou && c->n_ious; iou = next) {
		next = iou->snext;
		if (iou->named_by != c)
			continue;
		c->n_ious--;
		iou->named_by = NULL;
		if (!unsent) {
			/* Part of it may be there: the token goes. */
			if (iou->state == IOU_HELD && s->state == SESS_OPEN) {
				s->cli.ious_held--;
				iou_push(iou);
			}
			continue;
		}
		/* The call never went out: the server will never look
		 * for its token. */
		if (iou->state == IOU_HELD) {
			s->ep->st.ious_dropped++;
			iou_free(iou);
		} else {
			iou->orphan = true;
		}
	}
	c->n_ious = 0;
}

static uint32_t rec_len(const struct ferry_iou *iou)
{
	return FERRY_PUSH_HDR_LEN + (iou->res == 0 ? iou->tok->len : 0);
}

/*
 * The PUSH at the head of the queue takes the PUSHes queued behind it into
 * its frame while their records fit (in one frame of the session, and in
 * the copied header area): at 64 calls in flight, one datagram carries
 * the tokens of several calls.  The head stays queued until it is sent.
 */
void ferry__iou_pack(struct ferry_session *s)
{
	struct ferry_iou *head = iou_of(s->pushq_head), *tail = head;
	uint32_t room = s->frag_unit, used = rec_len(head);
	struct ferry_call *vc;

	/* The records are built in a copied area of FERRY_DP_HDR_MAX, after
	 * the PUSH frame's header and push_id. */
	if (room > FERRY_DP_HDR_MAX - 8)
		room = FERRY_DP_HDR_MAX - 8;
	while (tail->bnext) {
		tail = tail->bnext;
		used += rec_len(tail);
	}
	while ((vc = head->vc.next) != NULL &&
	       used + rec_len(iou_of(vc)) <= room) {
		head->vc.next = vc->next;
		if (s->pushq_tail == vc)
			s->pushq_tail = &head->vc;
		tail->bnext = iou_of(vc);
		tail = tail->bnext;
		tail->bnext = NULL;
		used += rec_len(tail);
	}
}

/* The records of the frame @vc heads, back to back. */
uint32_t ferry__iou_body(struct ferry_call *vc, uint8_t *out, size_t cap)
{
	uint32_t len = 0;

	for (struct ferry_iou *iou = iou_of(vc); iou; iou = iou->bnext) {
		struct ferry_push p = {
			.iou = iou->id,
			.code = iou->res < 0 ? (uint32_t)-iou->res : 0,
		};
		int n;

		if (iou->res == 0) {
			p.token = iou->tok->data;
			p.token_len = (uint16_t)iou->tok->len;
		}
		n = ferry__wire_put_push(out + len, cap - len, &p);
		if (n < 0)
			break; /* cannot happen: packed to fit */
		len += (uint32_t)n;
	}
	return len;
}

/* The frame @vc heads was acknowledged: every promise in it is kept. */
void ferry__iou_acked(struct ferry_call *vc)
{
	struct ferry_iou *iou = iou_of(vc);

	while (iou) {
		struct ferry_iou *next = iou->bnext;

		iou_free(iou);
		iou = next;
	}
}

/* The session ended: promises not yet kept are told to stop; the rest
 * go. */
void ferry__iou_client_sess_end(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_iou *iou;

	while ((iou = s->cli.ious) != NULL) {
		iou_unlink(iou);
		if (iou->state == IOU_HELD)
			s->cli.ious_held--;
		if (iou->state != IOU_PROMISED) {
			if (iou->state == IOU_HELD)
				ep->st.ious_dropped++;
			iou->state = IOU_PROMISED; /* not held any more */
			iou_free(iou);
			continue;
		}
		/* Cancelled unkept: dropped now; kept meanwhile: dropped
		 * when the endpoint takes the result in. */
		if (iou_give_up(iou, true) && !atomic_load(&iou->kept))
			ep->st.ious_dropped++;
	}
	s->cli.ious_held = 0;
}
