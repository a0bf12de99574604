/* SPDX-License-Identifier: MIT */
/*
 * Deferred tokens (IOUs): the client's promises and their PUSH frames, and
 * the server's per-session table of IOUs with the waits on them
 * (include/ferry/iou.h; docs/wire.md, section 8).
 *
 * Client.  A promise is made on the endpoint's thread and kept on any:
 * the keeping thread copies the token into a pool msgbuf and hands the
 * promise over through the endpoint's cross-thread queue.  Its PUSH goes
 * on the session's transmit queue once the call naming it has been sent,
 * so on the wire a PUSH follows its call unless the network reorders
 * them; a PUSH is a data frame, sent again until acknowledged like any
 * request fragment.  The PUSH travels in a call object embedded in the
 * promise, because retransmission records point at calls.
 *
 * Server.  A call's IOU entries are claimed when its request is complete:
 * each becomes an entry of the session's table (or meets the entry an
 * early PUSH made).  Handlers still run in call order; waits on an entry
 * complete when it settles -- resolved by a PUSH with a token, or
 * rejected by an error PUSH, the push check, its deadline or the
 * session's end.  An entry lives while a call or a wait holds it, or
 * while it is pending; the session's end frees them all.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct ferry_iou *iou_of(struct ferry_call *vc)
{
	return (struct ferry_iou *)((char *)vc - offsetof(struct ferry_iou, vc));
}

int ferry__iou_init(struct ferry_endpoint *ep)
{
	uint32_t n = ep->cfg.iou_max, h = 1;

	if (n == 0)
		n = ep->cfg.max_sessions * ep->cfg.session_slots;
	ep->cfg.iou_max = n;
	/* Zero would reject every IOU at once: take the defaults. */
	if (!ep->cfg.iou_timeout_ms)
		ep->cfg.iou_timeout_ms = FERRY__IOU_TIMEOUT_MS;
	if (!ep->cfg.iou_early_ms)
		ep->cfg.iou_early_ms = FERRY__IOU_EARLY_MS;
	while (h < 2 * n && h < (1u << 30))
		h <<= 1;
	ep->ious = calloc(n, sizeof(*ep->ious));
	ep->ents = calloc(n, sizeof(*ep->ents));
	/* Twice as many waits: a call naming iou_max IOUs can still wait
	 * for them all (a member each, and the aggregate). */
	ep->waits = calloc(2 * (size_t)n, sizeof(*ep->waits));
	ep->ent_hash = calloc(h, sizeof(*ep->ent_hash));
	ep->call_ents = calloc((size_t)ep->ncalls * FERRY_CAPS_MAX,
			       sizeof(*ep->call_ents));
	if (!ep->ious || !ep->ents || !ep->waits || !ep->ent_hash ||
	    !ep->call_ents)
		return -ENOMEM;
	ep->ent_hash_mask = h - 1;
	for (uint32_t i = n; i-- > 0;) {
		ep->ious[i].next = ep->iou_free;
		ep->iou_free = &ep->ious[i];
		ep->ents[i].hnext = ep->ent_free;
		ep->ent_free = &ep->ents[i];
	}
	for (uint32_t i = 2 * n; i-- > 0;) {
		ep->waits[i].next = ep->wait_free;
		ep->wait_free = &ep->waits[i];
	}
	return 0;
}

void ferry__iou_fini(struct ferry_endpoint *ep)
{
	if (ep->push_check_release)
		ep->push_check_release(ep->push_check_ctx);
	free(ep->ious);
	free(ep->ents);
	free(ep->waits);
	free(ep->ent_hash);
	free(ep->call_ents);
}

int ferry_endpoint_set_push_check(struct ferry_endpoint *ep,
				  ferry_push_check_fn fn,
				  void (*release)(void *ctx), void *ctx)
{
	if (!ep)
		return -EINVAL;
	ferry__hook_set(fn != NULL, release, ctx, &ep->push_check_release,
			&ep->push_check_ctx);
	ep->push_check = fn;
	return 0;
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
	    FERRY_PUSH_HDR_LEN + iou->tok->len > s->max_payload) {
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
	uint32_t room = s->max_payload, used = rec_len(head);
	struct ferry_call *vc;

	if (room > FERRY_DP_HDR_MAX - FERRY_WIRE_HDR_LEN)
		room = FERRY_DP_HDR_MAX - FERRY_WIRE_HDR_LEN;
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
		n = ferry_wire_put_push(out + len, cap - len, &p);
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

/* --- server: the table ----------------------------------------------------- */

static uint32_t ent_hash(const struct ferry_endpoint *ep, uint32_t sid,
			 uint64_t id)
{
	uint64_t x = (id ^ (uint64_t)sid << 32) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(x >> 32) & ep->ent_hash_mask;
}

static struct ferry_iou_ent *ent_find(struct ferry_session *s, uint64_t id)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_iou_ent *e = ep->ent_hash[ent_hash(ep, s->id, id)];

	while (e && (e->s != s || e->id != id))
		e = e->hnext;
	return e;
}

static struct ferry_iou_ent *ent_new(struct ferry_session *s, uint64_t id)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_iou_ent *e = ep->ent_free;
	uint32_t h;

	if (!e)
		return NULL;
	ep->ent_free = e->hnext;
	memset(e, 0, sizeof(*e));
	e->s = s;
	e->id = id;
	h = ent_hash(ep, s->id, id);
	e->hnext = ep->ent_hash[h];
	ep->ent_hash[h] = e;
	e->snext = s->srv.ents;
	if (s->srv.ents)
		s->srv.ents->sprev = e;
	s->srv.ents = e;
	return e;
}

static void ent_free(struct ferry_iou_ent *e)
{
	struct ferry_session *s = e->s;
	struct ferry_endpoint *ep = s->ep;
	struct ferry_iou_ent **pp = &ep->ent_hash[ent_hash(ep, s->id, e->id)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->sprev)
		e->sprev->snext = e->snext;
	else
		s->srv.ents = e->snext;
	if (e->snext)
		e->snext->sprev = e->sprev;
	if (e->early) {
		s->srv.early_count--;
		s->srv.early_bytes -= e->tok ? e->tok->len : 0;
	}
	if (e->tok)
		ferry__msgbuf_put(e->tok);
	e->s = NULL;
	e->hnext = ep->ent_free;
	ep->ent_free = e;
}

/* Free @e if nothing holds it any more: settled, named (or dropped), and
 * neither a call nor a wait refers to it. */
static void ent_maybe_free(struct ferry_iou_ent *e)
{
	if (e->refs == 0 && e->state != ENT_PENDING && !e->early)
		ent_free(e);
}

static void wait_put(struct ferry_endpoint *ep, struct ferry_iou_wait *w)
{
	w->next = ep->wait_free;
	ep->wait_free = w;
}

static struct ferry_iou_wait *wait_get(struct ferry_endpoint *ep)
{
	struct ferry_iou_wait *w = ep->wait_free;

	if (w) {
		ep->wait_free = w->next;
		memset(w, 0, sizeof(*w));
	}
	return w;
}

/* A member of an aggregate fired with @res. */
static void agg_member(struct ferry_endpoint *ep, struct ferry_iou_wait *a,
		       int res)
{
	bool fire = !a->done && (res < 0 || a->left == 1);

	if (fire)
		a->done = true;
	/* The aggregate goes before its completion runs, which may start
	 * another wait. */
	if (--a->left == 0)
		wait_put(ep, a);
	if (fire)
		a->rfn(res, a->ctx);
}

/* @e has settled: complete every wait on it, then free it if unheld. */
static void ent_settled(struct ferry_iou_ent *e)
{
	struct ferry_endpoint *ep = e->s->ep;
	struct ferry_iou_wait *w = e->waits;

	/* Hold it while the completions run: they may start new waits or
	 * answer the call that names it. */
	e->waits = NULL;
	e->refs++;
	while (w) {
		struct ferry_iou_wait *next = w->next;
		int res = e->state == ENT_RESOLVED ? 0 : e->err;

		e->refs--;
		if (w->agg) {
			struct ferry_iou_wait *a = w->agg;

			wait_put(ep, w);
			agg_member(ep, a, res);
		} else {
			ferry_cap_fn fn = w->fn;
			void *ctx = w->ctx;

			wait_put(ep, w);
			if (res == 0)
				fn(0, e->tok->data, e->tok->len, ctx);
			else
				fn(res, NULL, 0, ctx);
		}
		w = next;
	}
	e->refs--;
	ent_maybe_free(e);
}

/* A named entry settles: count how. */
static void ent_count(struct ferry_endpoint *ep, const struct ferry_iou_ent *e)
{
	if (e->state == ENT_RESOLVED)
		ep->st.iou_resolved++;
	else
		ep->st.iou_rejected++;
}

static void sess_next_deadline(struct ferry_session *s, uint64_t t)
{
	if (!s->srv.iou_next_ns || t < s->srv.iou_next_ns)
		s->srv.iou_next_ns = t;
}

int ferry__iou_claim(struct ferry_session *s, struct ferry_call *c)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_iou_ent **ce = &ep->call_ents[(size_t)(c - ep->calls) *
						    FERRY_CAPS_MAX];

	c->n_ious = 0;
	for (unsigned i = 0; i < c->ncaps; i++) {
		struct ferry_cap_ent ent;
		struct ferry_iou_ent *e;
		uint64_t id;

		ce[i] = NULL;
		if (ferry_wire_caps_get(c->caps, c->caps_len, i, &ent) < 0 ||
		    ent.kind != FERRY_CAPK_IOU)
			continue;
		id = (uint64_t)ent.val[0] << 56 | (uint64_t)ent.val[1] << 48 |
		     (uint64_t)ent.val[2] << 40 | (uint64_t)ent.val[3] << 32 |
		     (uint64_t)ent.val[4] << 24 | (uint64_t)ent.val[5] << 16 |
		     (uint64_t)ent.val[6] << 8 | ent.val[7];
		e = ent_find(s, id);
		if (!e) {
			e = ent_new(s, id);
			if (!e) {
				/* No room to track it: refuse the call
				 * rather than run it without its token. */
				ferry__iou_unclaim(c);
				ep->st.calls_iou_refused++;
				return -FERRY_EIOU;
			}
			e->deadline = ep->now +
				      ep->cfg.iou_timeout_ms * 1000000ull;
			sess_next_deadline(s, e->deadline);
			ep->st.iou_created++;
		} else if (e->early) {
			/* Its PUSH came first and waited for this call. */
			e->early = false;
			s->srv.early_count--;
			s->srv.early_bytes -= e->tok ? e->tok->len : 0;
			ep->st.iou_created++;
			ent_count(ep, e);
		}
		e->refs++;
		ce[i] = e;
		c->n_ious++;
	}
	return 0;
}

void ferry__iou_unclaim(struct ferry_call *c)
{
	struct ferry_endpoint *ep = c->s->ep;
	struct ferry_iou_ent **ce = &ep->call_ents[(size_t)(c - ep->calls) *
						    FERRY_CAPS_MAX];

	for (unsigned i = 0; c->n_ious && i < FERRY_CAPS_MAX; i++) {
		struct ferry_iou_ent *e = ce[i];

		if (!e)
			continue;
		ce[i] = NULL;
		c->n_ious--;
		e->refs--;
		ent_maybe_free(e);
	}
	c->n_ious = 0;
}

/* One PUSH record: settle its entry, or keep it for a call to come. */
static void rx_push_one(struct ferry_session *s, const struct ferry_push *pp)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_push p = *pp;
	struct ferry_iou_ent *e;
	int err = 0;

	e = ent_find(s, p.iou);
	if (e && e->state != ENT_PENDING) {
		/* The client keeps each promise once; a second PUSH for it
		 * (not a network duplicate: those die by seq) is a
		 * protocol error.  The first value stands. */
		ep->st.iou_dup_push++;
		return;
	}
	if (!e) {
		/* No call has named it yet (its request is late or still
		 * arriving): keep it for that call, within bounds. */
		if (s->srv.early_count >= ep->cfg.iou_early_max ||
		    s->srv.early_bytes + p.token_len > ep->cfg.iou_early_bytes ||
		    !(e = ent_new(s, p.iou))) {
			ep->st.iou_push_dropped++;
			return;
		}
		e->early = true;
		e->deadline = ep->now + ep->cfg.iou_early_ms * 1000000ull;
		sess_next_deadline(s, e->deadline);
		s->srv.early_count++;
		s->srv.early_bytes += p.token_len;
		ep->st.iou_push_early++;
	}
	if (p.code != 0) {
		/* The peer's code, untrusted: one that is no positive int
		 * must still reject, never negate into a success. */
		err = p.code <= INT_MAX ? -(int)p.code : -FERRY_EPROTO;
	} else if (ep->push_check &&
		   (err = ep->push_check(ep->push_check_ctx, p.token,
					 p.token_len)) != 0) {
		if (err > 0)
			err = -EACCES; /* a check refuses with -code */
		ep->st.iou_bad_token++;
	} else if (ferry_msgbuf_alloc(ep, p.token_len, &e->tok) < 0) {
		/* The PUSH was taken (and will be acknowledged): with no
		 * room for its token, the IOU fails rather than hangs. */
		e->tok = NULL;
		ep->st.msgbuf_alloc_fail++;
		err = -ENOBUFS;
	} else {
		memcpy(e->tok->data, p.token, p.token_len);
	}
	if (err) {
		if (e->early)
			s->srv.early_bytes -= p.token_len;
		e->state = ENT_REJECTED;
		e->err = err;
	} else {
		e->state = ENT_RESOLVED;
	}
	if (e->early)
		return;
	ent_count(ep, e);
	ent_settled(e);
}

void ferry__iou_rx_push(struct ferry_session *s, const struct ferry_frame *f)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_push p;
	uint32_t off = 0;
	int n;

	/* The whole body first: a malformed record anywhere drops the
	 * frame, and no record of it is taken. */
	do {
		n = ferry_wire_parse_push(f->payload + off, f->pay_len - off,
					  &p);
		if (n < 0) {
			ep->st.drop_malformed++;
			return;
		}
		off += (uint32_t)n;
	} while (off < f->pay_len);
	for (off = 0; off < f->pay_len; off += (uint32_t)n) {
		n = ferry_wire_parse_push(f->payload + off, f->pay_len - off,
					  &p);
		rx_push_one(s, &p);
	}
}

/* Reject a pending entry with @err (a deadline, the session's end). */
static void ent_reject(struct ferry_iou_ent *e, int err)
{
	struct ferry_endpoint *ep = e->s->ep;

	e->state = ENT_REJECTED;
	e->err = err;
	ep->st.iou_rejected++;
	ent_settled(e);
}

void ferry__iou_timers(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_iou_ent *e, *next;
	uint64_t nxt = 0;

	if (!s->srv.iou_next_ns || ep->now < s->srv.iou_next_ns)
		return;
	s->srv.iou_next_ns = 0;
	for (e = s->srv.ents; e; e = next) {
		next = e->snext;
		if (e->state != ENT_PENDING && !e->early)
			continue;
		if (ep->now < e->deadline) {
			if (!nxt || e->deadline < nxt)
				nxt = e->deadline;
			continue;
		}
		if (e->early) {
			/* No call came for it. */
			ep->st.iou_push_dropped++;
			ent_free(e);
			continue;
		}
		ep->st.iou_timed_out++;
		/* Completions may free other entries of this session:
		 * start the walk again after each. */
		ent_reject(e, -ETIMEDOUT);
		next = s->srv.ents;
		nxt = 0;
	}
	if (nxt)
		sess_next_deadline(s, nxt);
}

void ferry__iou_sess_end(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	int err = s->end_res < 0 ? s->end_res : -ECONNRESET;
	struct ferry_iou *iou;
	struct ferry_iou_ent *e;

	/* Client: promises not yet kept are told to stop; the rest go. */
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
	/* Server: calls a handler still holds keep no hold on entries, which
	 * all go now; pending ones are first rejected with the session's
	 * error. */
	if (s->is_server)
		for (uint32_t i = 0; i <= s->slot_mask; i++)
			if (s->slots[i])
				s->slots[i]->n_ious = 0;
	for (e = s->srv.ents; e; e = s->srv.ents) {
		if (e->state == ENT_PENDING && !e->early) {
			ent_reject(e, err);
			if (s->srv.ents != e)
				continue; /* freed: nothing held it */
		}
		if (e->early)
			ep->st.iou_push_dropped++;
		/* Waits completed; calls still holding it let go here. */
		e->early = false;
		e->refs = 0;
		ent_free(e);
	}
	s->srv.early_count = s->srv.early_bytes = 0;
	s->srv.iou_next_ns = 0;
}

/* --- server: waits --------------------------------------------------------- */

static struct ferry_iou_ent *call_ent(const struct ferry_call *c, unsigned i)
{
	struct ferry_endpoint *ep = c->s->ep;

	if (!c->n_ious)
		return NULL;
	return ep->call_ents[(size_t)(c - ep->calls) * FERRY_CAPS_MAX + i];
}

int ferry_call_cap_kind(const struct ferry_call *c, unsigned i)
{
	struct ferry_cap_ent e;

	if (!c || !c->caps || i >= c->ncaps ||
	    ferry_wire_caps_get(c->caps, c->caps_len, i, &e) < 0)
		return -ENOENT;
	return e.kind == FERRY_CAPK_IOU ? FERRY_CAP_IOU : FERRY_CAP_TOKEN;
}

int ferry_call_cap(const struct ferry_call *c, unsigned i, const void **tok,
		   size_t *len)
{
	struct ferry_cap_ent ce;
	struct ferry_iou_ent *e;

	/* The table was checked on arrival; this only walks it. */
	if (!c || !c->caps || i >= c->ncaps ||
	    ferry_wire_caps_get(c->caps, c->caps_len, i, &ce) < 0)
		return -ENOENT;
	if (ce.kind == FERRY_CAPK_TOKEN) {
		if (tok)
			*tok = ce.val;
		if (len)
			*len = ce.len;
		return 0;
	}
	e = call_ent(c, i);
	if (!e)
		return c->s->state == SESS_OPEN ? -ENOENT : -ENOTCONN;
	if (e->state == ENT_PENDING)
		return -EINPROGRESS;
	if (e->state == ENT_REJECTED)
		return e->err;
	if (tok)
		*tok = e->tok->data;
	if (len)
		*len = e->tok->len;
	return 0;
}

int ferry_call_cap_wait(struct ferry_call *c, unsigned i, ferry_cap_fn fn,
			void *ctx)
{
	struct ferry_iou_ent *e;
	struct ferry_iou_wait *w;
	const void *tok;
	size_t len;
	int ret;

	if (!c || !fn)
		return -EINVAL;
	ret = ferry_call_cap(c, i, &tok, &len);
	if (ret == 0) {
		fn(0, tok, len, ctx);
		return 0;
	}
	if (ret == -ENOENT)
		return ret;
	if (ret != -EINPROGRESS) {
		fn(ret, NULL, 0, ctx); /* rejected, or the session is gone */
		return 0;
	}
	e = call_ent(c, i);
	w = wait_get(c->s->ep);
	if (!w)
		return -ENOBUFS;
	w->ent = e;
	w->fn = fn;
	w->ctx = ctx;
	w->next = e->waits;
	e->waits = w;
	e->refs++;
	return 0;
}

int ferry_call_caps_ready(struct ferry_call *c, ferry_caps_ready_fn fn,
			  void *ctx)
{
	struct ferry_endpoint *ep;
	struct ferry_iou_wait *a;
	unsigned pending = 0, free_waits = 0;

	if (!c || !fn)
		return -EINVAL;
	ep = c->s->ep;
	for (unsigned i = 0; i < c->ncaps; i++) {
		int ret = ferry_call_cap(c, i, NULL, NULL);

		if (ret == -EINPROGRESS) {
			pending++;
		} else if (ret < 0) {
			fn(ret, ctx);
			return 0;
		}
	}
	if (!pending) {
		fn(0, ctx);
		return 0;
	}
	/* One record for the aggregate and one per pending entry: all or
	 * nothing. */
	for (a = ep->wait_free; a && free_waits <= pending; a = a->next)
		free_waits++;
	if (free_waits < pending + 1)
		return -ENOBUFS;
	a = wait_get(ep);
	a->rfn = fn;
	a->ctx = ctx;
	a->left = pending;
	for (unsigned i = 0; i < c->ncaps; i++) {
		struct ferry_iou_ent *e = call_ent(c, i);
		struct ferry_iou_wait *w;

		if (!e || e->state != ENT_PENDING)
			continue;
		w = wait_get(ep);
		w->ent = e;
		w->agg = a;
		w->next = e->waits;
		e->waits = w;
		e->refs++;
	}
	return 0;
}
