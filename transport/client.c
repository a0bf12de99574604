/* SPDX-License-Identifier: MIT */
/*
 * The client side of a call: connect, calls (with their token tables and
 * trace blocks), the client's receive path (ACCEPT, RESPONSE, ERROR), and
 * the timers of connects and call deadlines.
 *
 * A client numbers its calls 1, 2, 3... (req_id; 0 is never used, so the
 * sequence skips it when it wraps).  Call r lives in slot r & slot_mask
 * until its response arrives; a call whose slot is still busy waits in a
 * FIFO, so calls reach the wire, and the server's handlers, in the order
 * they were made.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "rd.h"

_Static_assert(FERRY_CAPS_MAX == FERRY_WIRE_CAPS_MAX &&
		       FERRY_CAPS_MAX_LEN == FERRY_WIRE_CAPS_MAX_LEN,
	       "session.h and wire.h agree on token table limits");
_Static_assert((int)FERRY_ATTRT_STRING == (int)FERRY_ATTR_STRING &&
		       (int)FERRY_ATTRT_INT == (int)FERRY_ATTR_INT &&
		       (int)FERRY_ATTRT_BOOL == (int)FERRY_ATTR_BOOL &&
		       (int)FERRY_ATTRT_DOUBLE == (int)FERRY_ATTR_DOUBLE &&
		       FERRY_WIRE_ATTR_KEY_MAX == FERRY_ATTR_KEY_MAX &&
		       FERRY_WIRE_ATTR_STR_MAX == FERRY_ATTR_STR_MAX,
	       "wire.h and trace.h agree on attributes");

#define CONNECT_RETRY_NS 100000000ull /* first CONNECT retransmit */
#define CONNECT_RETRY_MAX_NS 1000000000ull

/* --- the end of a call --------------------------------------------------- */

/* End a client call: exactly one continuation, then the call is gone. */
static void client_call_end(struct ferry_session *s, struct ferry_call *c,
			    int res, const void *data, size_t len)
{
	struct ferry_endpoint *ep = s->ep;
	ferry_cont_fn cont = c->cont;
	void *ctx = c->ctx;
	ferry_span_t span = c->span, outer;
	bool abandoned = c->abandoned;

	if (c->n_ious)
		ferry__iou_call_end(s, c);
	if (c->state != CALL_QUEUED && s->slots[c->req_id & s->slot_mask] == c)
		s->slots[c->req_id & s->slot_mask] = NULL;
	/* Its request packets need no more sending: the response (or the
	 * end of the session) says the server has them, or never will. */
	if (c->unacked)
		ferry__rel_forget_call(s, c);
	ferry__reasm_end(s, c);
	ferry__call_put_bufs(c);
	if (res < 0)
		ep->st.payload_copied_discarded += c->rx_got;
	ferry__call_put(ep, c);
	if (abandoned)
		return; /* its deadline passed; the continuation ran then */
	if (res == 0) {
		ep->st.calls_completed++;
		ep->st.payload_delivered += len;
	} else {
		ep->st.calls_failed++;
	}
	/* The continuation may enrich its span (ferry_endpoint_call_span);
	 * one it runs (closing a session ends its calls) names its own, and
	 * gives this one back when it returns. */
	outer = ep->cur_call_span;
	ep->cur_call_span = span;
	if (cont)
		cont(res, data, len, ctx);
	ep->cur_call_span = outer;
	/* After the continuation, which may still enrich the span. */
	if (ep->tops && span)
		ep->tops->call_end(ep->tring, span, res);
}

uint64_t ferry_endpoint_call_span(const struct ferry_endpoint *ep)
{
	return ep ? ep->cur_call_span : FERRY_SPAN_NONE;
}

/* --- connect and calls --------------------------------------------------- */

/* The request's first fragment (and the server's max_msg) can take what
 * @c carries ahead of its payload. */
static bool pre_fits(const struct ferry_session *s, const struct ferry_call *c)
{
	uint32_t pre = call_pre_len(c);

	return pre <= s->frag_unit &&
	       (uint64_t)c->req->len + pre <= s->peer_max_msg;
}

/*
 * Shorten @c's trace block to @len bytes: FERRY_TRACE_BLOCK_MIN drops its
 * tracestate, 0 the whole block.  The token table behind it moves up.
 */
static void trace_block_cut(struct ferry_call *c, uint16_t len)
{
	struct ferry_msgbuf *mb = c->pre_mb;

	memmove(mb->data + len, mb->data + c->trace_len, c->caps_len);
	if (len)
		ferry_wr_u16(mb->data + 2, len); /* block_len */
	c->trace_len = len;
	mb->len = len + c->caps_len;
	if (!mb->len) {
		ferry__msgbuf_put(mb);
		c->pre_mb = NULL;
	}
}

/* The server's features and limits are known: keep @c's trace block if
 * it takes trace blocks and there is room, else go without (the context
 * is optional), the tracestate first. */
static void trace_block_fit(struct ferry_session *s, struct ferry_call *c)
{
	if (!c->trace_len)
		return;
	if ((s->peer_feat & FERRY_FEAT_TRACE) && !pre_fits(s, c) &&
	    c->trace_len > FERRY_TRACE_BLOCK_MIN)
		trace_block_cut(c, FERRY_TRACE_BLOCK_MIN);
	if (!(s->peer_feat & FERRY_FEAT_TRACE) || !pre_fits(s, c)) {
		trace_block_cut(c, 0);
		s->ep->st.trace_ctx_unsent++;
	}
}

void ferry__sess_start_waiting(struct ferry_session *s)
{
	struct ferry_call *c;

	while (s->state == SESS_OPEN && (c = s->cli.wait_head) != NULL) {
		uint32_t slot = s->cli.next_req & s->slot_mask;

		if (s->slots[slot])
			return; /* in order: the head waits, so all wait */
		s->cli.wait_head = c->next;
		if (!s->cli.wait_head)
			s->cli.wait_tail = NULL;
		/* Now the server's limits are known: the message (table
		 * and payload) must fit its max_msg, and the table must fit
		 * in one fragment.  A trace block gives way if need be. */
		if ((uint64_t)c->req->len + c->caps_len > s->peer_max_msg ||
		    c->caps_len > s->frag_unit) {
			client_call_end(s, c, -EMSGSIZE, NULL, 0);
			continue;
		}
		trace_block_fit(s, c);
		/* A server that takes no IOUs would refuse the call. */
		if (c->n_ious && !(s->peer_feat & FERRY_FEAT_IOU)) {
			client_call_end(s, c, -FERRY_EIOU, NULL, 0);
			continue;
		}
		c->req_id = s->cli.next_req;
		s->cli.next_req = req_next(s->cli.next_req);
		s->slots[slot] = c;
		c->state = CALL_SENDING;
		ferry__sess_txq_push(s, c);
	}
}

int ferry_session_connect(struct ferry_endpoint *ep, const char *host,
			  uint16_t port, const struct ferry_connect_opts *opts,
			  ferry_connect_fn cb, void *ctx,
			  struct ferry_session **out)
{
	struct ferry_session *s;
	struct ferry_msgbuf *tok = NULL;
	uint32_t ip;
	int ret;

	if (!ep || !out || port == 0 || ferry__addr_parse_ip(host, &ip) < 0)
		return -EINVAL;
	if (opts && opts->traceparent &&
	    strlen(opts->traceparent) != FERRY_TRACEPARENT_LEN)
		return -EINVAL;
	if (opts && (opts->token_len != 0) != (opts->token != NULL))
		return -EINVAL;
	/* Wire v2 sends a token only with the proof of its holder key
	 * (docs/wire.md, section 4.5): a token without one is an option
	 * the handshake cannot carry. */
	if (opts && opts->token && !opts->holder_key)
		return -EINVAL;
	if (ep->destroying)
		return -ESHUTDOWN;
	if (opts && opts->token_len) {
		/* The CONNECT is one datagram of at most
		 * FERRY_HS_CONNECT_MAX bytes (handshake.h). */
		if (opts->token_len > FERRY_HS_CONNECT_MAX - 1024)
			return -EMSGSIZE;
		/* A copy the connect owns: retransmitted CONNECTs need it
		 * until the server answers. */
		ret = ferry_msgbuf_alloc(ep, opts->token_len, &tok);
		if (ret < 0)
			return ret == -EMSGSIZE ? -EMSGSIZE : -ENOBUFS;
		memcpy(tok->data, opts->token, opts->token_len);
	}
	s = ferry__sess_alloc(ep, false);
	if (!s) {
		if (tok)
			ferry__msgbuf_put(tok);
		return -EMFILE;
	}
	s->cli.token = tok;
	s->peer.ip = ip;
	s->peer.port = port;
	s->state = SESS_CONNECTING;
	s->cli.user_ref = true;
	s->cli.connect_cb = cb;
	s->cli.connect_ctx = ctx;
	ep->now = ferry__now_ns();
	s->cli.connect_deadline = ep->now +
				  ep->cfg.connect_timeout_ms * 1000000ull;
	s->cli.connect_gap = CONNECT_RETRY_NS;
	s->cli.connect_retry = ep->now + s->cli.connect_gap;
	if (opts && opts->traceparent) {
		memcpy(s->traceparent, opts->traceparent, FERRY_TRACEPARENT_LEN);
		s->have_traceparent = true;
	}
	if (ep->tops) {
		struct ferry_span_session_args a = {
			.kind = FERRY_SPAN_KIND_CLIENT,
			.traceparent = s->have_traceparent ? s->traceparent
							   : NULL,
			.traceparent_len = s->have_traceparent
						   ? FERRY_TRACEPARENT_LEN : 0,
			.peer_ip = ip, .peer_port = port,
			.server_ip = ip, .server_port = port,
		};
		char tp[FERRY_TRACEPARENT_LEN + 1];

		/* The server's span is a child of this session's span, not
		 * of the caller's: the CONNECT carries ours. */
		s->span = ep->tops->session_open(ep->tring, &a);
		if (ep->tops->traceparent(ep->tring, s->span, tp, sizeof(tp)) ==
		    FERRY_TRACEPARENT_LEN) {
			memcpy(s->traceparent, tp, FERRY_TRACEPARENT_LEN);
			s->have_traceparent = true;
		}
	}
	ret = ferry__connect_start(s, opts);
	if (ret < 0) {
		ferry__sess_end(s, ret, false);
		s->cli.user_ref = false;
		ferry__sess_unref(s);
		return ret;
	}
	*out = s;
	return 0;
}

int ferry_call(struct ferry_session *s, uint16_t method,
	       struct ferry_msgbuf *req, ferry_cont_fn cont, void *ctx)
{
	return ferry_call_deadline(s, method, req, 0, cont, ctx);
}

int ferry_call_deadline(struct ferry_session *s, uint16_t method,
			struct ferry_msgbuf *req, uint32_t timeout_ms,
			ferry_cont_fn cont, void *ctx)
{
	struct ferry_call_opts o = { .timeout_ms = timeout_ms };

	return ferry_call_with(s, method, req, &o, cont, ctx);
}

int ferry_call_caps(struct ferry_session *s, uint16_t method,
		    struct ferry_msgbuf *req, const struct ferry_cap *caps,
		    unsigned ncaps, uint32_t timeout_ms, ferry_cont_fn cont,
		    void *ctx)
{
	struct ferry_call_opts o = { .caps = caps, .ncaps = ncaps,
				     .timeout_ms = timeout_ms };

	/* 0 entries is plain ferry_call(), whatever @caps points at. */
	if (!ncaps)
		o.caps = NULL;
	return ferry_call_with(s, method, req, &o, cont, ctx);
}

/* Check @caps and fill @ents (values in place, IOU ids written to @ids)
 * for ferry__wire_put_caps; *@len gets the table's length.  An IOU entry
 * names a promise made on @s that no other call names yet. */
static int caps_prepare(struct ferry_session *s, const struct ferry_cap *caps,
			unsigned ncaps, struct ferry_cap_ent *ents,
			uint8_t (*ids)[FERRY_CAPS_IOU_LEN], uint32_t *len)
{
	size_t need = FERRY_CAPS_HDR_LEN;

	if (ncaps > FERRY_CAPS_MAX || !caps)
		return -EINVAL;
	for (unsigned i = 0; i < ncaps; i++) {
		if (caps[i].kind == FERRY_CAP_IOU) {
			const struct ferry_iou *iou = caps[i].data;

			if (!iou || iou->s != s || iou->state == IOU_FREE ||
			    iou->state == IOU_DEAD)
				return -EINVAL;
			if (iou->named)
				return -EBUSY;
			for (unsigned k = 0; k < i; k++)
				if (caps[k].kind == FERRY_CAP_IOU &&
				    caps[k].data == iou)
					return -EBUSY;
			ferry_wr_u64(ids[i], iou->id);
			ents[i].kind = FERRY_CAPK_IOU;
			ents[i].val = ids[i];
			ents[i].len = FERRY_CAPS_IOU_LEN;
		} else if (caps[i].kind == FERRY_CAP_TOKEN) {
			if (!caps[i].data || caps[i].len == 0)
				return -EINVAL;
			if (caps[i].len > FERRY_CAPS_MAX_LEN)
				return -EMSGSIZE;
			ents[i].kind = FERRY_CAPK_TOKEN;
			ents[i].val = caps[i].data;
			ents[i].len = (uint16_t)caps[i].len;
		} else {
			return -EINVAL;
		}
		need += FERRY_CAPS_ENT_HDR_LEN + ents[i].len;
	}
	if (need > FERRY_CAPS_MAX_LEN)
		return -EMSGSIZE;
	*len = (uint32_t)need;
	return 0;
}

/*
 * The context @c's request carries (client rule, docs/tracing.md section
 * 8): the call span's, when the tracer says the server cannot infer it
 * from the session; else, for a call with no span of its own (no tracer,
 * or not sampled), the application's, as it is.  Writes the traceparent
 * to @tp (56 bytes) and returns true, or returns false for no block.
 */
static bool call_block_context(struct ferry_endpoint *ep, struct ferry_call *c,
			       const char *app_tp, char *tp)
{
	if (c->span)
		return ep->tops->call_context(ep->tring, c->span, tp,
					      FERRY_TRACEPARENT_LEN + 1) ==
		       FERRY_TRACEPARENT_LEN;
	if (!app_tp)
		return false;
	memcpy(tp, app_tp, FERRY_TRACEPARENT_LEN);
	return true;
}

/*
 * Put a trace block of @tp and @ts/@ts_len in front of @c's token table,
 * if any.  Block and table share the copied header area
 * (FERRY_WIRE_PRE_MAX), and the block gives way rather than fail the
 * call: its tracestate first, then the whole block (counted, like a
 * block with no msgbuf free to hold it).
 */
static void trace_block_add(struct ferry_call *c, const char *tp,
			    const char *ts, size_t ts_len)
{
	struct ferry_endpoint *ep = c->s->ep;
	struct ferry_msgbuf *mb = c->pre_mb;
	uint32_t len = FERRY_TRACE_BLOCK_MIN + (uint32_t)ts_len;

	if (len + c->caps_len > FERRY_WIRE_PRE_MAX) {
		len = FERRY_TRACE_BLOCK_MIN;
		ts_len = 0;
	}
	if (len + c->caps_len > FERRY_WIRE_PRE_MAX) {
		ep->st.trace_ctx_unsent++;
		return;
	}
	if (!mb || mb->cap < len + c->caps_len) {
		struct ferry_msgbuf *nb;

		if (ferry_msgbuf_alloc(ep, len + c->caps_len, &nb) < 0) {
			ep->st.trace_ctx_unsent++;
			return;
		}
		if (mb) {
			memcpy(nb->data + len, mb->data, c->caps_len);
			ferry__msgbuf_put(mb);
		}
		c->pre_mb = mb = nb;
	} else {
		memmove(mb->data + len, mb->data, c->caps_len);
	}
	ferry__wire_put_trace_block(mb->data, len, tp, ts, ts_len);
	c->trace_len = (uint16_t)len;
	mb->len = len + c->caps_len;
}

int ferry_call_with(struct ferry_session *s, uint16_t method,
		    struct ferry_msgbuf *req, const struct ferry_call_opts *o,
		    ferry_cont_fn cont, void *ctx)
{
	static const struct ferry_call_opts none;
	struct ferry_cap_ent ents[FERRY_CAPS_MAX];
	uint8_t ids[FERRY_CAPS_MAX][FERRY_CAPS_IOU_LEN];
	char tp[FERRY_TRACEPARENT_LEN + 1];
	struct ferry_endpoint *ep;
	struct ferry_msgbuf *pre = NULL;
	struct ferry_call *c;
	uint32_t caps_len = 0;
	size_t ts_len = 0;
	int ret;

	if (!o)
		o = &none;
	if (!s || !req || !cont || s->is_server)
		return -EINVAL;
	if (o->traceparent &&
	    strnlen(o->traceparent, FERRY_TRACEPARENT_LEN + 1) !=
		    FERRY_TRACEPARENT_LEN)
		return -EINVAL;
	if (o->tracestate &&
	    (ts_len = strnlen(o->tracestate, FERRY_TRACESTATE_MAX + 1)) >
		    FERRY_TRACESTATE_MAX)
		return -EINVAL;
	if (s->state != SESS_OPEN && s->state != SESS_CONNECTING)
		return -ENOTCONN;
	ep = s->ep;
	if (o->ncaps) {
		ret = caps_prepare(s, o->caps, o->ncaps, ents, ids, &caps_len);
		if (ret < 0)
			return ret;
	}
	/* Both limits are checked again once the session is open
	 * (ferry__sess_start_waiting), when the server's are known. */
	if (s->state == SESS_OPEN &&
	    ((uint64_t)req->len + caps_len > s->peer_max_msg ||
	     caps_len > s->frag_unit))
		return -EMSGSIZE;
	if (caps_len) {
		/* Sized to the table, so that it comes from the smallest
		 * class that fits. */
		ret = ferry_msgbuf_alloc(ep, caps_len, &pre);
		if (ret < 0)
			return ret;
		ferry__wire_put_caps(pre->data, caps_len, ents, o->ncaps);
	}
	c = ferry__call_get(ep);
	if (!c) {
		if (pre)
			ferry__msgbuf_put(pre);
		return -ENOBUFS;
	}
	c->s = s;
	c->method = method;
	c->req = req;
	c->cont = cont;
	c->ctx = ctx;
	c->state = CALL_QUEUED;
	c->caps_len = caps_len;
	c->pre_mb = pre;
	ferry__span_call_start(ep, c, o->traceparent,
			       o->traceparent ? FERRY_TRACEPARENT_LEN : 0,
			       o->tracestate, ts_len);
	if (call_block_context(ep, c, o->traceparent, tp))
		trace_block_add(c, tp, o->tracestate, ts_len);
	if (o->ncaps)
		ferry__iou_name(c, o->caps, o->ncaps);
	if (o->timeout_ms) {
		c->deadline = ferry__now_ns() + o->timeout_ms * 1000000ull;
		if (!s->cli.next_deadline || c->deadline < s->cli.next_deadline)
			s->cli.next_deadline = c->deadline;
		ferry__sess_touch(s);
	}
	if (s->cli.wait_tail)
		s->cli.wait_tail->next = c;
	else
		s->cli.wait_head = c;
	s->cli.wait_tail = c;
	ep->st.calls_sent++;
	ferry__sess_start_waiting(s);
	return 0;
}

/* --- the session's end --------------------------------------------------- */

/* The session ended (ferry__sess_end has told the peer and the IOUs):
 * every call ends with @res, then a connect still pending fails. */
void ferry__client_sess_end(struct ferry_session *s, int res,
			    bool was_connecting)
{
	struct ferry_call *c;
	uint32_t r;

	ferry__connect_end(s);
	s->txq_head = s->txq_tail = NULL;
	s->pushq_head = s->pushq_tail = NULL;
	/* Calls with a slot are the oldest; end them in call order,
	 * then the ones still waiting. */
	r = s->cli.next_req - (s->slot_mask + 1);
	for (uint32_t n = 0; n <= s->slot_mask; n++, r++) {
		c = s->slots[r & s->slot_mask];
		if (c && c->req_id == r)
			client_call_end(s, c, res, NULL, 0);
	}
	while ((c = s->cli.wait_head) != NULL) {
		s->cli.wait_head = c->next;
		client_call_end(s, c, res, NULL, 0);
	}
	s->cli.wait_tail = NULL;
	if (was_connecting && s->cli.connect_cb)
		s->cli.connect_cb(s, res, s->cli.connect_ctx);
}

void ferry_session_close(struct ferry_session *s)
{
	if (!s || !s->cli.user_ref)
		return;
	ferry__sess_end(s, -ECANCELED, true);
	s->cli.user_ref = false;
	ferry__sess_unref(s);
}

/* --- receive ------------------------------------------------------------- */

/* The handshake is done (connect.c took the terms): the session opens,
 * and the calls made meanwhile go. */
void ferry__client_opened(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	s->state = SESS_OPEN;
	ep->st.sessions_opened++;
	ferry__sess_activate(s); /* the ACK of ACCEPT goes at once */
	if (s->cli.connect_cb)
		s->cli.connect_cb(s, 0, s->cli.connect_ctx);
	ferry__sess_start_waiting(s);
	/* Promises kept while connecting whose calls have ended. */
	if (s->state == SESS_OPEN && s->cli.ious_held)
		ferry__iou_call_sent(s, NULL);
}

/* Set the attributes of a block ferry__wire_parse_resp_attrs() accepted on
 * call span @span: each key and string copied out with its NUL. */
static void resp_attrs_apply(struct ferry_endpoint *ep, ferry_span_t span,
			     const uint8_t *blk, uint32_t blen, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char key[FERRY_WIRE_ATTR_KEY_MAX + 1];
		char str[FERRY_WIRE_ATTR_STR_MAX + 1];
		struct ferry_trace_attr a = { .key = key };
		struct ferry_attr_ent e;

		if (ferry__wire_resp_attr_get(blk, blen, i, &e) < 0)
			return;
		memcpy(key, e.key, e.key_len);
		key[e.key_len] = '\0';
		a.type = e.type;
		switch (e.type) {
		case FERRY_ATTRT_STRING:
			memcpy(str, e.str, e.str_len);
			str[e.str_len] = '\0';
			a.v.s = str;
			break;
		case FERRY_ATTRT_INT:
			a.v.i = e.i;
			break;
		case FERRY_ATTRT_BOOL:
			a.v.b = e.b;
			break;
		default:
			a.v.d = e.d;
			break;
		}
		ep->tops->set_attr(ep->tring, span, &a);
	}
}

/*
 * A whole response message for @c: with FF_TRACE (@trace), its attribute
 * block first, set on the call's span before the continuation sees the
 * payload that follows.  A block whose length is out of range leaves no
 * payload to find: the call fails.  One that is malformed inside is only
 * ignored.  A client that is not tracing still checks it.
 */
static void client_resp_done(struct ferry_session *s, struct ferry_call *c,
			     const uint8_t *data, uint32_t len, bool trace)
{
	struct ferry_endpoint *ep = s->ep;

	if (trace) {
		uint32_t blen = 0;
		unsigned n;
		int ret = ferry__wire_parse_resp_attrs(data, len, &blen, &n);

		if (ret == -FERRY_EPROTO) {
			ep->st.trace_blocks_bad++;
			client_call_end(s, c, ret, NULL, 0);
			return;
		}
		if (ret < 0) {
			ep->st.trace_blocks_bad++;
		} else {
			ep->st.trace_attrs_received += n;
			if (ep->tops && c->span)
				resp_attrs_apply(ep, c->span, data, blen, n);
		}
		data += blen;
		len -= blen;
	}
	client_call_end(s, c, 0, data, len);
}

/* A response frame: RXD_* (not taken for want of a buffer: the server
 * sends it again). */
int ferry__client_rx_response(struct ferry_session *s,
			      const struct ferry_frame *f)
{
	struct ferry_endpoint *ep = s->ep;
	const struct ferry_hdr *h = &f->h;
	struct ferry_call *c = s->slots[h->req_id & s->slot_mask];
	int ret;

	/* Responses are read in place during the continuation and released
	 * right after it, never kept longer. */
	if (c && c->req_id == h->req_id && c->state == CALL_SENDING &&
	    (h->flags & FERRY_FF_ERR) && s->txq_head == c) {
		/* The server refused the call before we finished sending
		 * it (say, no buffer for it): stop sending the rest. */
		s->txq_head = c->next;
		if (!s->txq_head)
			s->txq_tail = NULL;
		c->state = CALL_WAITING;
	}
	if (!c || c->req_id != h->req_id || c->state != CALL_WAITING)
		return RXD_DUP; /* a copy, for a call that has its answer */
	if (h->flags & FERRY_FF_ERR) {
		uint32_t code;
		const char *msg;
		uint16_t mlen;

		if (h->frag_off != 0 || f->pay_len != h->msg_len ||
		    ferry__wire_parse_error(f->payload, f->pay_len, &code, &msg,
					   &mlen) < 0) {
			ep->st.drop_malformed++;
			code = FERRY_EPROTO;
		}
		client_call_end(s, c, -(int)code, NULL, 0);
		ferry__sess_start_waiting(s);
		return RXD_TAKEN;
	}
	if (!c->resp && h->frag_off == 0 && f->pay_len == h->msg_len) {
		/* One packet: the continuation reads it in place. */
		client_resp_done(s, c, f->payload, f->pay_len,
				 (h->flags & FERRY_FF_TRACE) != 0);
		ferry__sess_start_waiting(s);
		return RXD_TAKEN;
	}
	if (c->resp && c->has_trace != ((h->flags & FERRY_FF_TRACE) != 0)) {
		/* Every fragment says what the message starts with. */
		ep->st.drop_stale++;
		return RXD_DUP;
	}
	if (!c->resp) {
		ret = ferry__reasm_fits(s, f);
		if (ret == 0)
			ret = ferry__reasm_start(s, c, h->msg_len, &c->resp);
		if (ret == -EMSGSIZE || ret == -FERRY_EPROTO) {
			c->resp = NULL;
			ferry__client_reasm_fail(c, ret);
			return RXD_TAKEN;
		}
		if (ret < 0) {
			/* Busy (the pool, or the session's quota): the
			 * server sends it again later. */
			ep->st.drop_no_buffer++;
			c->resp = NULL;
			return RXD_NOT_TAKEN;
		}
		c->has_trace = (h->flags & FERRY_FF_TRACE) != 0;
	} else if (c->resp->len != h->msg_len) {
		ep->st.drop_malformed++;
		return RXD_TAKEN;
	}
	ret = ferry__reasm_put(s, c, c->resp, f);
	if (ret == 2)
		return RXD_DUP;
	if (ret < 0) {
		ferry__client_reasm_fail(c, ret);
	} else if (ret == 1) {
		struct ferry_msgbuf *mb = c->resp;

		ep->st.payload_copied += mb->len;
		/* client_call_end frees the buffer after the continuation
		 * has read it. */
		client_resp_done(s, c, mb->data, mb->len, c->has_trace);
		ferry__sess_start_waiting(s);
	}
	return RXD_TAKEN;
}

/* The response being reassembled for @c is dropped: the call fails. */
void ferry__client_reasm_fail(struct ferry_call *c, int err)
{
	struct ferry_session *s = c->s;

	client_call_end(s, c, err, NULL, 0);
	ferry__sess_start_waiting(s);
}

/* --- timers -------------------------------------------------------------- */

/* A connecting session: give up at the deadline, else ask again. */
static void connect_timer(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	if (ep->now >= s->cli.connect_deadline) {
		ferry__sess_end(s, -ETIMEDOUT, false);
		return;
	}
	if (ep->now < s->cli.connect_retry)
		return;
	/* CONNECT or ACCEPT was lost: ask again, backing off. */
	s->cli.connect_gap = s->cli.connect_gap * 2 > CONNECT_RETRY_MAX_NS
				 ? CONNECT_RETRY_MAX_NS
				 : s->cli.connect_gap * 2;
	s->cli.connect_retry = ep->now + s->cli.connect_gap;
	s->pending |= SF_CONNECT;
	ferry__sess_activate(s);
}

/* Calls whose deadline passed end now with -ETIME.  A call already sent
 * keeps its slot (the server may still run it, in order) until its
 * response or the session's end; one still waiting to be sent is dropped. */
static void call_deadlines(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_call *c, **pp;
	uint64_t next = 0;

	for (uint32_t i = 0; i <= s->slot_mask; i++) {
		c = s->slots[i];
		if (!c || !c->deadline || c->abandoned)
			continue;
		if (ep->now < c->deadline) {
			if (!next || c->deadline < next)
				next = c->deadline;
			continue;
		}
		c->abandoned = true;
		ep->st.calls_failed++;
		ep->st.calls_timed_out++;
		/* Ended before the continuation: it may close the session,
		 * which frees the call. */
		ferry__span_call_end(ep, c, -ETIME);
		c->cont(-ETIME, NULL, 0, c->ctx);
		if (s->state != SESS_OPEN)
			return; /* the continuation closed the session */
	}
	for (pp = &s->cli.wait_head; (c = *pp) != NULL;) {
		if (!c->deadline || ep->now < c->deadline) {
			if (c->deadline && (!next || c->deadline < next))
				next = c->deadline;
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		if (s->cli.wait_tail == c) {
			struct ferry_call *t = s->cli.wait_head;

			while (t && t->next)
				t = t->next;
			s->cli.wait_tail = t;
		}
		ep->st.calls_timed_out++;
		client_call_end(s, c, -ETIME, NULL, 0);
		if (s->state != SESS_OPEN && s->state != SESS_CONNECTING)
			return;
	}
	s->cli.next_deadline = next;
}

void ferry__client_connecting_timers(struct ferry_session *s)
{
	connect_timer(s);
	if (s->state == SESS_CONNECTING)
		ferry__client_call_timers(s);
}

void ferry__client_call_timers(struct ferry_session *s)
{
	if (s->cli.next_deadline && s->ep->now >= s->cli.next_deadline)
		call_deadlines(s);
}
