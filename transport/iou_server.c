/* SPDX-License-Identifier: MIT */
/*
 * Deferred tokens (IOUs), the server's side: the per-session table of
 * IOUs and the waits on them (include/ferry/iou.h; docs/wire.md, section
 * 8); also the endpoint's IOU pools, which both roles draw on.  The
 * client's promises are in iou_client.c.
 *
 * A call's IOU entries are claimed when its request is complete: each
 * becomes an entry of the session's table (or meets the entry an early
 * PUSH made).  Handlers still run in call order; waits on an entry
 * complete when it settles -- resolved by a PUSH with a token, or
 * rejected by an error PUSH, the push check, its deadline or the
 * session's end.  An entry lives while a call or a wait holds it, or
 * while it is pending; the session's end frees them all.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
		s->srv.early_bytes -= e->tok ? e->tok->cap : 0;
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
	ferry__sess_touch(s);
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
		if (ferry__wire_caps_get(c->caps, c->caps_len, i, &ent) < 0 ||
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
			s->srv.early_bytes -= e->tok ? e->tok->cap : 0;
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

/* The value of PUSH record @p: 0 with its token copied to *@tok, or the
 * error it settles its IOU with. */
static int push_value(struct ferry_endpoint *ep, const struct ferry_push *p,
		      struct ferry_msgbuf **tok)
{
	int err;

	*tok = NULL;
	if (p->code != 0) {
		/* The peer's code, untrusted: one that is no positive int
		 * must still reject, never negate into a success. */
		return p->code <= INT_MAX ? -(int)p->code : -FERRY_EPROTO;
	}
	if (ep->push_check &&
	    (err = ep->push_check(ep->push_check_ctx, p->token,
				  p->token_len)) != 0) {
		ep->st.iou_bad_token++;
		return err > 0 ? -EACCES : err; /* a check refuses with -code */
	}
	if (ferry_msgbuf_alloc(ep, p->token_len, tok) < 0) {
		/* The PUSH was taken (and will be acknowledged): with no
		 * room for its token, the IOU fails rather than hangs. */
		*tok = NULL;
		ep->st.msgbuf_alloc_fail++;
		return -ENOBUFS;
	}
	memcpy((*tok)->data, p->token, p->token_len);
	return 0;
}

/* One PUSH record: settle its entry, or keep it for a call to come. */
static void rx_push_one(struct ferry_session *s, const struct ferry_push *p)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_msgbuf *tok;
	struct ferry_iou_ent *e;
	int err;

	e = ent_find(s, p->iou);
	if (e && e->state != ENT_PENDING) {
		/* The client keeps each promise once; a second PUSH for it
		 * (not a network duplicate: those die by seq) is a
		 * protocol error.  The first value stands. */
		ep->st.iou_dup_push++;
		return;
	}
	/* No call has named it yet (its request is late or still arriving):
	 * keep it for that call, within bounds.  The token's length is a
	 * first, cheap bound on the buffer it will take. */
	if (!e && (s->srv.early_count >= ep->cfg.iou_early_max ||
		   s->srv.early_bytes + p->token_len > ep->cfg.iou_early_bytes)) {
		ep->st.iou_push_dropped++;
		return;
	}
	err = push_value(ep, p, &tok);
	if (!e) {
		/* Charged by the buffer it holds, not its token's length: a
		 * one-byte token still pins a whole buffer (and a larger
		 * one when its class is empty). */
		uint32_t charge = tok ? tok->cap : 0;

		if (s->srv.early_bytes + charge > ep->cfg.iou_early_bytes ||
		    !(e = ent_new(s, p->iou))) {
			if (tok)
				ferry__msgbuf_put(tok);
			ep->st.iou_push_dropped++;
			return;
		}
		e->early = true;
		e->deadline = ep->now + ep->cfg.iou_early_ms * 1000000ull;
		sess_next_deadline(s, e->deadline);
		s->srv.early_count++;
		s->srv.early_bytes += charge;
		ep->st.iou_push_early++;
	}
	e->tok = tok;
	e->err = err;
	e->state = err ? ENT_REJECTED : ENT_RESOLVED;
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
		n = ferry__wire_parse_push(f->payload + off, f->pay_len - off,
					  &p);
		if (n < 0) {
			ep->st.drop_malformed++;
			return;
		}
		off += (uint32_t)n;
	} while (off < f->pay_len);
	for (off = 0; off < f->pay_len; off += (uint32_t)n) {
		n = ferry__wire_parse_push(f->payload + off, f->pay_len - off,
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

/* The session ended: calls a handler still holds keep no hold on
 * entries, which all go now; pending ones are first rejected with the
 * session's error. */
void ferry__iou_server_sess_end(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	int err = s->end_res < 0 ? s->end_res : -ECONNRESET;
	struct ferry_iou_ent *e;

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
	    ferry__wire_caps_get(c->caps, c->caps_len, i, &e) < 0)
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
	    ferry__wire_caps_get(c->caps, c->caps_len, i, &ce) < 0)
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
