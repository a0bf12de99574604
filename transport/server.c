/* SPDX-License-Identifier: MIT */
/*
 * The server side of a call: a client's CONNECT and its admission, request
 * reassembly, dispatch to handlers in call order (E-order), the response
 * (from any thread) and its attributes, and the end of a server session's
 * calls.
 *
 * A request that arrives in one datagram is read by its handler in place;
 * a larger one is reassembled into a pool msgbuf.  Either way handlers run
 * in req_id order: a complete request waits in its slot (CALL_READY) until
 * every earlier one has been dispatched.  An answered call keeps its
 * response until the client acknowledges every packet of it.
 */
#include <errno.h>
#include <string.h>

#include <ferry/token.h>

#include <sodium.h>

#include "internal.h"

/* --- calls --------------------------------------------------------------- */

/* Server: the call is over (answered, or its session died).  Frees the
 * request, the slot and the call, and drops the call's session ref. */
static void server_call_end(struct ferry_call *c)
{
	struct ferry_session *s = c->s;
	struct ferry_endpoint *ep = s->ep;

	/* 0 or the error it answered with; a call the session's end cut
	 * short says so. */
	ferry__span_call_end(ep, c, c->err ? c->err :
				    c->state == CALL_SENDING ||
				    c->state == CALL_RESPONDED ? 0 : -ECONNRESET);

	if (c->unacked)
		ferry__rel_forget_call(s, c);
	ferry__reasm_end(s, c);
	if (c->n_ious)
		ferry__iou_unclaim(c);
	ferry__call_put_bufs(c);
	if (s->slots && s->slots[c->req_id & s->slot_mask] == c)
		s->slots[c->req_id & s->slot_mask] = NULL;
	ferry__call_put(ep, c);
	ferry__sess_unref(s);
}

/* Every packet of a sent response is acknowledged: the call is over. */
void ferry__server_call_acked(struct ferry_call *c)
{
	server_call_end(c);
}

/* --- handlers ------------------------------------------------------------ */

static struct ferry_handler_ent *handler_find(struct ferry_endpoint *ep,
					      uint16_t method, bool insert)
{
	uint32_t i = (method * 0x9e37u) & ep->handler_mask;

	for (uint32_t n = 0; n <= ep->handler_mask; n++) {
		struct ferry_handler_ent *h = &ep->handlers[i];

		if (!h->used)
			return insert ? h : NULL;
		if (h->method == method)
			return h;
		i = (i + 1) & ep->handler_mask;
	}
	return NULL;
}

int ferry_endpoint_register(struct ferry_endpoint *ep, uint16_t method,
			    ferry_handler_fn fn, void *ctx)
{
	struct ferry_handler_ent *h;

	if (!ep || !fn)
		return -EINVAL;
	h = handler_find(ep, method, true);
	if (!h)
		return -ENOSPC;
	if (h->used)
		return -EEXIST;
	h->used = true;
	h->method = method;
	h->fn = fn;
	h->ctx = ctx;
	ep->listening = true; /* only a server has handlers */
	return 0;
}

void ferry_endpoint_on_session(struct ferry_endpoint *ep, ferry_session_fn fn,
			       void *ctx)
{
	ep->session_fn = fn;
	ep->session_ctx = ctx;
	if (fn)
		ep->listening = true;
}

int ferry_endpoint_set_admission(struct ferry_endpoint *ep, ferry_admit_fn fn,
				 ferry_admit_release_fn release, void *ctx)
{
	if (!ep)
		return -EINVAL;
	/* Tags belong to the old hook's context, which goes now: its
	 * sessions will not give them back.  Their expiry stays: it is
	 * the token's, not the hook's. */
	ep->admit_untag = NULL;
	for (uint32_t i = 0; i < ep->nsessions; i++)
		ep->sessions[i].srv.admit_tagged = false;
	ferry__hook_set(fn != NULL, release, ctx, &ep->admit_release,
			&ep->admit_ctx);
	ep->admit_fn = fn;
	if (fn)
		ep->listening = true;
	return 0;
}

int ferry__admit_set_untag(struct ferry_endpoint *ep,
			   ferry__admit_untag_fn untag)
{
	if (!ep || !ep->admit_fn)
		return -EINVAL;
	ep->admit_untag = untag;
	return 0;
}

void ferry__admit_grant(struct ferry_endpoint *ep, uint64_t tag,
			uint64_t expires_in_ms)
{
	ep->grant_tagged = true;
	ep->grant_tag = tag;
	/* A token may live up to the keyring's max TTL (a year at most),
	 * far below where nanoseconds of the monotonic clock wrap. */
	ep->grant_expires_ns = expires_in_ms ? ep->now + expires_in_ms *
							       1000000ull
					     : 0;
}

void ferry__admit_holder_key(struct ferry_endpoint *ep, const uint8_t *hk)
{
	memcpy(ep->grant_hk, hk, sizeof(ep->grant_hk));
	ep->grant_has_hk = true;
}

uint32_t ferry__admit_max_sessions(const struct ferry_endpoint *ep)
{
	return ep->nsessions;
}

/* Give the tag of the CONNECT just judged back, if it got one and no
 * session took it. */
void ferry__server_ungrant(struct ferry_endpoint *ep)
{
	if (ep->grant_tagged && ep->admit_untag)
		ep->admit_untag(ep->admit_ctx, ep->grant_tag);
	ep->grant_tagged = false;
	ep->grant_expires_ns = 0;
	ep->grant_has_hk = false;
	sodium_memzero(ep->grant_hk, sizeof(ep->grant_hk));
}

/* --- requests: reassembly and dispatch ---------------------------------- */

void ferry__server_respond_local(struct ferry_call *c)
{
	struct ferry_session *s = c->s;
	struct ferry_endpoint *ep = s->ep;

	if (c->resp && c->resp->len > s->peer_max_msg) {
		/* The client could not take it: tell it why instead. */
		ferry__msgbuf_put(c->resp);
		c->resp = NULL;
		c->err = -EMSGSIZE;
	}
	/* Attributes go with a normal response whose first fragment, and
	 * the client's max_msg, have room for them; else they are dropped,
	 * never the response. */
	if (c->pre_mb &&
	    (s->state != SESS_OPEN || !c->resp || c->err ||
	     c->pre_mb->len > s->frag_unit ||
	     (uint64_t)c->resp->len + c->pre_mb->len > s->peer_max_msg)) {
		c->attrs_unsent += c->nattrs;
		ferry__msgbuf_put(c->pre_mb);
		c->pre_mb = NULL;
		c->nattrs = 0;
	}
	ep->st.trace_attrs_unsent += c->attrs_unsent;
	c->attrs_unsent = 0;
	if (s->state != SESS_OPEN) {
		server_call_end(c);
		return;
	}
	/* The request is no longer needed once the handler has answered:
	 * hand its buffer (and its credit) back now, not after sending.  The
	 * token table lives in it and goes with it, and so do the call's
	 * holds on its IOUs (waits on them hold their own). */
	if (c->n_ious)
		ferry__iou_unclaim(c);
	if (c->req) {
		ferry__msgbuf_put(c->req);
		c->req = NULL;
	}
	c->caps = NULL;
	c->ncaps = 0;
	c->state = CALL_SENDING;
	ferry__sess_txq_push(s, c);
}

/* Run handlers for every complete request that is next in call order. */
static void server_dispatch(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	for (;;) {
		uint32_t r = s->srv.next_dispatch;
		struct ferry_call *c = s->slots[r & s->slot_mask];
		struct ferry_handler_ent *h;

		if (!c || c->req_id != r || c->state != CALL_READY ||
		    s->state != SESS_OPEN)
			return;
		s->srv.next_dispatch = req_next(r);
		c->state = CALL_DISPATCHED;
		ep->st.reqs_dispatched++;
		/* The request's own context, if its trace block had one: the
		 * tracer judges the text (a malformed one is counted, and the
		 * session's context is the parent). */
		ferry__span_call_start(ep, c, c->tctx_tp,
				       c->tctx_tp ? FERRY_TRACEPARENT_LEN : 0,
				       c->tctx_ts, c->tctx_ts_len);
		c->tctx_tp = c->tctx_ts = NULL;
		if (c->err) {
			/* Refused on arrival, answered at its turn. */
			ferry_call_respond_error(c, c->err);
			continue;
		}
		if (c->req) {
			ep->st.payload_delivered += c->req->len;
			if (c->req->kind == MB_KIND_POOL)
				ep->st.payload_copied += c->req->len;
		}
		h = handler_find(ep, c->method, false);
		if (!h) {
			ferry_call_respond_error(c, -FERRY_ENOMETHOD);
			continue;
		}
		h->fn(c, h->ctx);
	}
}

/* Refuse @c, whose request is complete, with @err at its turn: its
 * buffer (and the trace context and table in it) goes now. */
static void server_req_refuse(struct ferry_call *c, int err)
{
	ferry__msgbuf_put(c->req);
	c->req = NULL;
	c->err = err;
	c->tctx_tp = c->tctx_ts = NULL;
	c->tctx_ts_len = 0;
}

/* Narrow @c's request buffer past @n bytes of what precedes the payload
 * (they stay readable in front of it, as long as the request is). */
static void req_skip(struct ferry_call *c, uint32_t n)
{
	c->req->data += n;
	c->req->len -= n;
	c->req->cap -= n;
}

/*
 * A request is complete: split its trace block and token table off the
 * front of the message, then run what is next in call order.  The payload
 * stays where it arrived (in the datagram, or the reassembly buffer); the
 * request's msgbuf is narrowed to it, and block and table stay readable
 * in front of it.  A block or table the transport cannot take refuses the
 * call, still in order.
 */
static void server_req_complete(struct ferry_session *s, struct ferry_call *c)
{
	struct ferry_endpoint *ep = s->ep;

	if (c->has_trace && c->req) {
		struct ferry_trace_block tb;
		uint32_t blen;
		int ret = ferry__wire_parse_trace_block(c->req->data,
						       c->req->len, &blen, &tb);

		ep->st.trace_blocks_received++;
		if (ret == -FERRY_EPROTO) {
			/* No length to trust: nothing after it can be
			 * found. */
			ep->st.trace_blocks_bad++;
			server_req_refuse(c, ret);
		} else {
			/* A version this build does not know is stepped
			 * over: the context is optional. */
			if (ret < 0) {
				ep->st.trace_blocks_bad++;
			} else {
				c->tctx_tp = tb.traceparent;
				c->tctx_ts = tb.tracestate;
				c->tctx_ts_len = tb.tracestate_len;
			}
			req_skip(c, blen);
		}
	}
	if (c->has_caps && c->req) {
		struct ferry_msgbuf *mb = c->req;
		uint32_t tlen;
		unsigned n, nious;
		int ret = ferry__wire_parse_caps(mb->data, mb->len, &tlen, &n,
						&nious);

		if (ret < 0) {
			ep->st.caps_refused++;
			server_req_refuse(c, ret);
		} else {
			c->caps = mb->data;
			c->caps_len = tlen;
			c->ncaps = (uint16_t)n;
			req_skip(c, tlen);
			ep->st.caps_received += n;
			/* Its IOUs join the session's table now, so that a
			 * PUSH from here on finds them named. */
			if (nious)
				c->err = ferry__iou_claim(s, c);
		}
	}
	c->state = CALL_READY;
	server_dispatch(s);
}

/* Calls before @req_id (not yet dispatched) still without a buffer. */
static uint32_t waiting_before(const struct ferry_session *s, uint32_t req_id)
{
	uint32_t n = 0;

	for (uint32_t r = s->srv.next_dispatch; r != req_id; r = req_next(r)) {
		const struct ferry_call *c = s->slots[r & s->slot_mask];

		if (!c || c->req_id != r || (!c->req && !c->err))
			n++;
	}
	return n;
}

/* Refuse @c, still being received, with @err at its turn: the partial
 * message goes now (its bytes are never handed up). */
static void server_rx_fail(struct ferry_session *s, struct ferry_call *c,
			   int err)
{
	struct ferry_endpoint *ep = s->ep;

	ferry__reasm_end(s, c);
	if (c->req) {
		ep->st.payload_copied_discarded += c->rx_got;
		ferry__msgbuf_put(c->req);
		c->req = NULL;
	}
	c->err = err;
	c->state = CALL_READY;
	server_dispatch(s);
}

void ferry__server_reasm_fail(struct ferry_call *c, int err)
{
	server_rx_fail(c->s, c, err);
}

/*
 * A reassembly buffer for new call @c, whose first fragment to arrive is
 * @f: 0; -EMSGSIZE or -FERRY_EPROTO to refuse the call; else -errno when
 * it cannot be taken now.
 */
static int server_reasm_begin(struct ferry_session *s, struct ferry_call *c,
			      const struct ferry_frame *f)
{
	struct ferry_endpoint *ep = s->ep;
	int ret;

	if (f->h.frag_off == 0 && f->pay_len == f->h.msg_len) {
		ret = ferry__reasm_whole(s, c, f, &c->req);
	} else {
		ret = ferry__reasm_fits(s, f);
		if (ret == 0)
			ret = ferry__reasm_start(s, c, f->h.msg_len, &c->req);
	}
	/* Handlers run in call order, so a buffer given to a later call is
	 * no use until the earlier ones have theirs: when buffers are scarce,
	 * hand them out in call order, or a later call could hold the last
	 * one while an earlier one waits for it forever. */
	if (ret == 0 && waiting_before(s, c->req_id) >
				ferry__pool_free(ep, f->h.msg_len)) {
		ferry__reasm_end(s, c);
		ferry__msgbuf_put(c->req);
		ep->st.msgbuf_alloc_fail++;
		ret = -ENOBUFS;
	}
	if (ret < 0)
		c->req = NULL;
	return ret;
}

/*
 * The first frame of call @h->req_id: a new call in its slot, in place if
 * the frame holds the whole request and may stay in its datagram, else
 * with a reassembly buffer.  A call refused on arrival is answered at its
 * turn and *@out is NULL.  Returns RXD_*.
 */
static int server_call_new(struct ferry_session *s, const struct ferry_frame *f,
			   const struct ferry_dp_pkt *pkt, bool *keep,
			   struct ferry_call **out)
{
	struct ferry_endpoint *ep = s->ep;
	const struct ferry_hdr *h = &f->h;
	uint32_t slot = h->req_id & s->slot_mask;
	struct ferry_call *c;
	int ret;

	*out = NULL;
	/* A new call must lie in the window the slots cover; behind it is
	 * a call dispatched and answered long ago: a late copy. */
	if (h->req_id - s->srv.next_dispatch > s->slot_mask)
		return RXD_DUP;
	c = ferry__call_get(ep);
	if (!c) {
		ep->st.drop_no_buffer++;
		return RXD_NOT_TAKEN;
	}
	c->s = s;
	c->is_server = true;
	c->req_id = h->req_id;
	c->method = h->method;
	c->state = CALL_RX;
	c->has_caps = (h->flags & FERRY_FF_CAPS) != 0;
	c->has_trace = (h->flags & FERRY_FF_TRACE) != 0;
	s->refs++;
	s->slots[slot] = c;
	if (h->frag_off == 0 && f->pay_len == h->msg_len && ep->rx_may_keep) {
		/* Zero copy: the handler reads the datagram in place; its
		 * buffer returns to the ring when the request is released,
		 * and only then is the credit given back.  Only for a
		 * datagram that holds this one data frame: frames sharing a
		 * buffer are copied out (rx_detach_copies). */
		c->req = ferry__view_get(ep, pkt, s->id, f->payload,
					 f->pay_len);
		c->rx_got = h->msg_len;
		*keep = true;
		*out = c;
		return RXD_TAKEN;
	}
	if (h->frag_off == 0 && f->pay_len == h->msg_len)
		ep->st.rx_detach_copies++;
	ret = server_reasm_begin(s, c, f);
	if (ret == -EMSGSIZE || ret == -FERRY_EPROTO) {
		/* Never fits, or not a message we can take: refuse the
		 * call, in order. */
		server_rx_fail(s, c, ret);
		return RXD_TAKEN;
	}
	if (ret < 0) {
		/* Busy (the pool, or the session's quota): take it later,
		 * when buffers are back; the client will send again. */
		ep->st.drop_no_buffer++;
		s->slots[slot] = NULL;
		ferry__call_put(ep, c);
		ferry__sess_unref(s);
		return RXD_NOT_TAKEN;
	}
	*out = c;
	return RXD_TAKEN;
}

/*
 * A request frame.  Returns RXD_NOT_TAKEN if it could not be taken now for
 * want of a buffer or call: then its datagram is not acknowledged, and the
 * client sends it again later (flow control, not an error).  A copy of
 * bytes already taken, or of a call that is over, is RXD_DUP.
 */
int ferry__server_rx_request(struct ferry_session *s,
			     const struct ferry_frame *f,
			     const struct ferry_dp_pkt *pkt, bool *keep)
{
	struct ferry_endpoint *ep = s->ep;
	const struct ferry_hdr *h = &f->h;
	struct ferry_call *c = s->slots[h->req_id & s->slot_mask];
	int ret;

	if (c && c->state == CALL_RESPONDED && c->req_id != h->req_id &&
	    h->req_id - s->srv.next_dispatch <= s->slot_mask) {
		/* The client reuses this slot only once it has the old
		 * call's response: that response is delivered. */
		server_call_end(c);
		c = NULL;
	}
	if (!c) {
		ret = server_call_new(s, f, pkt, keep, &c);
		if (!c)
			return ret;
	} else if (c->req_id == h->req_id && c->state != CALL_RX) {
		return RXD_DUP; /* the whole request is in already */
	} else if (c->req_id != h->req_id || !c->req ||
		   h->msg_len != c->req->len || h->method != c->method ||
		   c->has_caps != ((h->flags & FERRY_FF_CAPS) != 0) ||
		   c->has_trace != ((h->flags & FERRY_FF_TRACE) != 0)) {
		/* Fragments of one message must agree (docs/wire.md,
		 * 5.6 rule 3). */
		ep->st.drop_stale++;
		return RXD_DUP;
	}
	/* A whole message copied (reasm_whole) is in already. */
	if (!*keep && c->rx_got < h->msg_len) {
		ret = ferry__reasm_put(s, c, c->req, f);
		if (ret == 2)
			return RXD_DUP;
		if (ret < 0) {
			server_rx_fail(s, c, ret);
			return RXD_TAKEN;
		}
	}
	if (c->rx_got == h->msg_len)
		server_req_complete(s, c);
	return RXD_TAKEN;
}

/* --- connect and admission ----------------------------------------------- */

/* Count an admission refusal by the reason the hook gave: the reason stays
 * here, the client is told only that it was refused.  connects_refused is
 * not counted here: the caller answers with REFUSE (connect.c, refuse()),
 * which counts every refused CONNECT once, whatever refused it. */
static void admit_count_refusal(struct ferry_endpoint *ep, int res)
{
	struct ferry_ep_stats *st = &ep->st;

	st->admission_refused++;
	switch (-res) {
	case FERRY_TOKEN_EMISSING:
		st->admission_refused_missing++;
		break;
	case FERRY_TOKEN_EMALFORMED:
	case FERRY_TOKEN_EVERSION:
	case FERRY_TOKEN_EUNKNOWNKEY:
	case FERRY_TOKEN_EKEYRETIRED:
	case FERRY_TOKEN_EAUTH:
	case FERRY_TOKEN_EWRONGTYPE:
	case FERRY_TOKEN_ENOHK:
		st->admission_refused_auth++;
		break;
	case FERRY_TOKEN_EEXPIRED:
	case FERRY_TOKEN_ENOTYET:
		st->admission_refused_expired++;
		break;
	case FERRY_TOKEN_ETTL:
		st->admission_refused_ttl++;
		break;
	case FERRY_TOKEN_EAUDIENCE:
		st->admission_refused_audience++;
		break;
	case FERRY_TOKEN_ECHANNEL:
		st->admission_refused_channel++;
		break;
	case FERRY_TOKEN_EENTRYPOINT:
		st->admission_refused_entrypoint++;
		break;
	case FERRY_TOKEN_ESESSIONS:
		st->token_sessions_capped++;
		break;
	default:
		st->admission_refused_other++;
		break;
	}
}

/*
 * Run the admission hook on a new CONNECT's token.  0 if admitted (with
 * what the hook granted in ep->grant_*); else the refusal, counted: the
 * caller answers with the one generic refusal, so that a peer that has
 * proved nothing learns nothing about why (which keys, audiences or
 * channels the server knows).
 */
int ferry__server_admit(struct ferry_endpoint *ep, const void *token,
			size_t token_len)
{
	int res;

	ep->grant_tagged = false;
	ep->grant_expires_ns = 0;
	ep->grant_has_hk = false;
	if (!ep->admit_fn)
		return 0;
	res = ep->admit_fn(ep->admit_ctx, token, token_len);
	if (res == 0)
		return 0;
	ferry__server_ungrant(ep);
	if (res > 0)
		res = -EACCES; /* a hook must refuse with -code */
	admit_count_refusal(ep, res);
	return res;
}

void ferry__server_sess_open(struct ferry_endpoint *ep,
			     struct ferry_session *s,
			     const struct ferry_hs_conn *conn,
			     const struct ferry_addr *peer)
{
	s->state = SESS_OPEN;
	s->srv.expires_ns = ep->grant_expires_ns;
	s->srv.admit_tagged = ep->grant_tagged;
	s->srv.admit_tag = ep->grant_tag;
	ep->grant_tagged = false;
	if (conn->traceparent) {
		memcpy(s->traceparent, conn->traceparent,
		       FERRY_TRACEPARENT_LEN);
		s->have_traceparent = true;
	}
	if (ep->tops) {
		struct ferry_span_session_args a = {
			.kind = FERRY_SPAN_KIND_SERVER,
			.traceparent = (const char *)conn->traceparent,
			.traceparent_len = conn->traceparent
						   ? FERRY_TRACEPARENT_LEN
						   : 0,
			.tracestate = (const char *)conn->tracestate,
			.tracestate_len = conn->tracestate_len,
			.peer_ip = peer->ip, .peer_port = peer->port,
			.server_ip = ep->local.ip, .server_port = ep->local.port,
		};

		s->span = ep->tops->session_open(ep->tring, &a);
	}
	ferry__sess_activate(s);
	ep->st.sessions_opened++;
	if (ep->session_fn)
		ep->session_fn(s, FERRY_SESSION_OPENED, 0, ep->session_ctx);
}

/* --- respond ------------------------------------------------------------- */

/* Any thread.  Takes ownership of @resp. */
static int call_respond(struct ferry_call *c, struct ferry_msgbuf *resp,
			int err)
{
	struct ferry_endpoint *ep;

	if (!c) {
		ferry_msgbuf_free(resp);
		return -EINVAL;
	}
	ep = c->s->ep;
	c->resp = resp;
	c->err = err;
	if (ferry__on_owner(ep)) {
		int alive = c->s->state == SESS_OPEN;

		ferry__server_respond_local(c);
		return alive ? 0 : -ENOTCONN;
	}
	ferry__xlock(ep);
	c->xnext = ep->xcalls;
	ep->xcalls = c;
	ferry__xunlock_signal(ep);
	/* Whether the session still lives is the endpoint thread's to
	 * know; a response for a dead one is discarded there. */
	return 0;
}

int ferry_call_respond(struct ferry_call *c, struct ferry_msgbuf *resp)
{
	if (!resp)
		return call_respond(c, NULL, -EINVAL);
	return call_respond(c, resp, 0);
}

int ferry_call_respond_error(struct ferry_call *c, int err)
{
	if (err >= 0)
		err = -EIO;
	return call_respond(c, NULL, err);
}

const void *ferry_call_req(const struct ferry_call *c, size_t *len)
{
	if (!c->req) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = c->req->len;
	return c->req->data;
}

uint16_t ferry_call_method(const struct ferry_call *c)
{
	return c->method;
}

struct ferry_session *ferry_call_session(const struct ferry_call *c)
{
	return c->s;
}

unsigned ferry_call_ncaps(const struct ferry_call *c)
{
	return c ? c->ncaps : 0;
}

/* --- response attributes ------------------------------------------------- */

/*
 * Append attribute @e to the response's attribute block, a pool msgbuf of
 * the call's: made on the first attribute, moved to a larger class when
 * it outgrows its own.  Any thread that may answer the call: the pool
 * takes frees and allocations from any, and the call is that thread's
 * until it answers.
 */
static int resp_attr_add(struct ferry_call *c, struct ferry_attr_ent *e)
{
	uint8_t ent[FERRY_ATTRS_ENT_HDR_LEN + FERRY_WIRE_ATTR_KEY_MAX +
		    FERRY_WIRE_ATTR_STR_MAX];
	struct ferry_msgbuf *mb;
	uint32_t len;
	int n;

	if (!c || !c->is_server || !e->key)
		return -EINVAL;
	e->key_len = (uint8_t)strnlen(e->key, FERRY_WIRE_ATTR_KEY_MAX + 1);
	if (e->key_len > FERRY_WIRE_ATTR_KEY_MAX ||
	    !ferry__wire_attr_key_ok(e->key, e->key_len))
		return -EINVAL;
	n = ferry__wire_put_resp_attr(ent, sizeof(ent), e);
	if (n < 0)
		return -EINVAL;
	/* A client that did not say it takes attribute blocks would not
	 * know where the payload starts. */
	if (!(c->s->peer_feat & FERRY_FEAT_TRACE)) {
		c->attrs_unsent++;
		return -EOPNOTSUPP;
	}
	mb = c->pre_mb;
	len = mb ? mb->len : FERRY_ATTRS_HDR_LEN;
	if (c->nattrs == FERRY_WIRE_ATTRS_MAX ||
	    len + (uint32_t)n > FERRY_WIRE_ATTRS_MAX_LEN)
		return -ENOSPC;
	if (!mb || len + (uint32_t)n > mb->cap) {
		struct ferry_msgbuf *nb;

		if (ferry_msgbuf_alloc(c->s->ep, len + (uint32_t)n, &nb) < 0)
			return -ENOBUFS;
		if (mb) {
			memcpy(nb->data, mb->data, mb->len);
			ferry_msgbuf_free(mb);
		}
		c->pre_mb = mb = nb;
	}
	memcpy(mb->data + len, ent, (size_t)n);
	mb->len = len + (uint32_t)n;
	c->nattrs++;
	ferry__wire_put_resp_attrs_head(mb->data, c->nattrs, mb->len);
	return 0;
}

int ferry_call_resp_attr_str(struct ferry_call *c, const char *key,
			     const char *v)
{
	struct ferry_attr_ent e = { .type = FERRY_ATTRT_STRING, .key = key };

	if (!v)
		return -EINVAL;
	/* Truncated as the tracer truncates a local one. */
	e.str = v;
	e.str_len = (uint16_t)strnlen(v, FERRY_WIRE_ATTR_STR_MAX);
	return resp_attr_add(c, &e);
}

int ferry_call_resp_attr_int(struct ferry_call *c, const char *key, int64_t v)
{
	struct ferry_attr_ent e = { .type = FERRY_ATTRT_INT, .key = key,
				    .i = v };

	return resp_attr_add(c, &e);
}

int ferry_call_resp_attr_bool(struct ferry_call *c, const char *key, bool v)
{
	struct ferry_attr_ent e = { .type = FERRY_ATTRT_BOOL, .key = key,
				    .b = v };

	return resp_attr_add(c, &e);
}

int ferry_call_resp_attr_double(struct ferry_call *c, const char *key,
				double v)
{
	struct ferry_attr_ent e = { .type = FERRY_ATTRT_DOUBLE, .key = key,
				    .d = v };

	return resp_attr_add(c, &e);
}

struct ferry_msgbuf *ferry_call_take_req(struct ferry_call *c)
{
	struct ferry_msgbuf *mb = c->req;

	c->req = NULL;
	return mb;
}

/* --- the session's end --------------------------------------------------- */

/* The session ended (ferry__sess_end has told the peer and the IOUs). */
void ferry__server_sess_end(struct ferry_session *s, int res)
{
	struct ferry_endpoint *ep = s->ep;

	/* A CONNECT from its peer now makes a new session. */
	ferry__peer_del(s);
	/* Drop requests not yet handed to a handler and responses not yet
	 * sent; a handler still holding a call answers into the void
	 * (ferry_call_respond returns -ENOTCONN) and frees it then. */
	s->refs++; /* hold the session while its calls go */
	for (uint32_t i = 0; i <= s->slot_mask; i++) {
		struct ferry_call *c = s->slots[i];

		if (!c || c->state == CALL_DISPATCHED)
			continue;
		/* A call answered, but not yet acknowledged, ends as it was
		 * answered; one not dispatched has no span. */
		ferry__span_call_end(ep, c, c->err);
		s->slots[i] = NULL;
		c->unacked = 0;
		if (c->state == CALL_RX && c->req &&
		    c->req->kind == MB_KIND_POOL)
			ep->st.payload_copied_discarded += c->rx_got;
		ferry__call_put_bufs(c);
		ferry__call_put(ep, c);
		ferry__sess_unref(s);
	}
	s->txq_head = s->txq_tail = NULL;
	/* The hook that admitted it counts it no more. */
	if (s->srv.admit_tagged && ep->admit_untag)
		ep->admit_untag(ep->admit_ctx, s->srv.admit_tag);
	s->srv.admit_tagged = false;
	if (ep->session_fn)
		ep->session_fn(s, FERRY_SESSION_CLOSED, res, ep->session_ctx);
	ferry__sess_unref(s); /* the hold above */
	ferry__sess_unref(s); /* the session's own reference */
}

/* The token that admitted the session has expired: the session ends, and
 * its client is told why (CLOSE with FERRY_TOKEN_EEXPIRED), so that its
 * calls fail with that code rather than with a bare reset.  Best effort:
 * if the CLOSE is lost, the client's calls end by its peer timeout.  A
 * session its client never confirmed ends at connect_timeout_ms. */
void ferry__server_timers(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	if (!s->srv.confirmed) {
		ferry__halfopen_timers(s);
		return;
	}
	if (!s->srv.expires_ns || ep->now < s->srv.expires_ns)
		return;
	ep->st.sessions_token_expired++;
	ferry__sess_send_close(s, 0, FERRY_TOKEN_EEXPIRED);
	ferry__sess_end(s, -FERRY_TOKEN_EEXPIRED, false);
}
