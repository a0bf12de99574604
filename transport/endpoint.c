/* SPDX-License-Identifier: MIT */
/*
 * Endpoints: the poll loop, frame demultiplexing, server-side dispatch in
 * call order (E-order), credits and the transmit path.
 *
 * One poll does: receive a burst, handle each frame (dispatching handlers
 * and continuations as messages complete), take in work other threads
 * handed over, run timers, then turn every session's transmit queue into
 * datagrams and flush them to the dataplane in one submission.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "rd.h"

#define TIMER_PERIOD_NS 1000000ull /* timers are checked once a millisecond */
#define RX_RING_BYTES (64ull << 20)

uint64_t ferry__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t pow2_ceil(uint32_t v)
{
	uint32_t n = 1;

	while (n < v && n < (1u << 30))
		n <<= 1;
	return n;
}

void ferry_ep_config_init(struct ferry_ep_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->dataplane = "uring";
	cfg->max_sessions = 64;
	cfg->session_slots = 128;
	cfg->session_credits = 128;
	cfg->max_frame = 8192;
	cfg->max_msg = 8u << 20;
	cfg->rx_bufs = 0;
	cfg->zc_threshold = 0;
	cfg->connect_timeout_ms = 5000;
	cfg->keepalive_ms = 1000;
	cfg->peer_timeout_ms = 5000;
	cfg->dpdk_port = -1;
	cfg->iou_max = 0;
	cfg->iou_timeout_ms = FERRY__IOU_TIMEOUT_MS;
	cfg->iou_early_max = FERRY__IOU_EARLY_MAX;
	cfg->iou_early_bytes = FERRY__IOU_EARLY_BYTES;
	cfg->iou_early_ms = FERRY__IOU_EARLY_MS;
	cfg->pool[0] = (struct ferry_pool_class){ 512, 4096 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 128 };
	cfg->pool[2] = (struct ferry_pool_class){ 1u << 20, 16 };
	cfg->pool[3] = (struct ferry_pool_class){ 8u << 20, 2 };
}

/* --- sessions by id ------------------------------------------------------ */

struct ferry_session *ferry__sess_lookup(struct ferry_endpoint *ep, uint32_t id)
{
	uint32_t idx = id & 0xffff;
	struct ferry_session *s;

	if (idx >= ep->nsessions)
		return NULL;
	s = &ep->sessions[idx];
	if (s->id != id || s->state == SESS_FREE)
		return NULL;
	return s;
}

void ferry__sess_activate(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	if (s->active)
		return;
	s->active = true;
	s->next_active = NULL;
	if (ep->active_tail)
		ep->active_tail->next_active = s;
	else
		ep->active_head = s;
	ep->active_tail = s;
}

void ferry__sess_txq_push(struct ferry_session *s, struct ferry_call *c)
{
	c->next = NULL;
	c->tx_off = 0;
	if (s->txq_tail)
		s->txq_tail->next = c;
	else
		s->txq_head = c;
	s->txq_tail = c;
	ferry__sess_activate(s);
}

/* Half a window of credit given back and not yet told to the peer. */
static bool credit_half_owed(const struct ferry_session *s)
{
	return s->rx_released + s->rx_window - s->credit_adv >=
	       s->rx_window / 2;
}

/*
 * A received data packet of session @sess_id was released: the peer may
 * send one more.  Tell it at the next flush once half a window is owed
 * (data frames sent meanwhile carry the credit for free).
 */
void ferry__sess_credit_release(struct ferry_endpoint *ep, uint32_t sess_id,
				uint32_t npkts)
{
	struct ferry_session *s = ferry__sess_lookup(ep, sess_id);

	if (!s || s->state != SESS_OPEN)
		return;
	s->rx_released += npkts;
	if (credit_half_owed(s)) {
		s->pending |= SF_CREDIT;
		ferry__sess_activate(s);
	}
}

/* --- calls --------------------------------------------------------------- */

struct ferry_call *ferry__call_get(struct ferry_endpoint *ep)
{
	struct ferry_call *c = ep->call_free;

	if (!c)
		return NULL;
	ep->call_free = c->next;
	memset(c, 0, sizeof(*c));
	return c;
}

void ferry__call_put(struct ferry_endpoint *ep, struct ferry_call *c)
{
	c->state = CALL_FREE;
	c->next = ep->call_free;
	ep->call_free = c;
}

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
	if (c->n_ious)
		ferry__iou_unclaim(c);
	if (c->req)
		ferry__msgbuf_put(c->req);
	if (c->resp)
		ferry__msgbuf_put(c->resp);
	if (c->pre_mb)
		ferry__msgbuf_put(c->pre_mb);
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
	return 0;
}

void ferry_endpoint_on_session(struct ferry_endpoint *ep, ferry_session_fn fn,
			       void *ctx)
{
	ep->session_fn = fn;
	ep->session_ctx = ctx;
}

void ferry__hook_set(bool on, void (*release)(void *), void *ctx,
		     void (**cur_release)(void *), void **cur_ctx)
{
	/* Hooks run only on the endpoint's thread, which is this one: the
	 * old one is not running now, and its context may go at once. */
	if (*cur_release)
		(*cur_release)(*cur_ctx);
	*cur_release = on ? release : NULL;
	*cur_ctx = on ? ctx : NULL;
	if (!on && release)
		release(ctx);
}

int ferry_endpoint_set_admission(struct ferry_endpoint *ep, ferry_admit_fn fn,
				 ferry_admit_release_fn release, void *ctx)
{
	if (!ep)
		return -EINVAL;
	ferry__hook_set(fn != NULL, release, ctx, &ep->admit_release,
			&ep->admit_ctx);
	ep->admit_fn = fn;
	return 0;
}

/* --- server: requests ---------------------------------------------------- */

static void call_respond_local(struct ferry_call *c)
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
	     c->pre_mb->len > s->max_payload ||
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
		struct ferry_call *c = s->slots[s->srv.next_dispatch & s->slot_mask];
		struct ferry_handler_ent *h;

		if (!c || c->req_id != s->srv.next_dispatch ||
		    c->state != CALL_READY || s->state != SESS_OPEN)
			return;
		s->srv.next_dispatch = req_next(s->srv.next_dispatch);
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
		int ret = ferry_wire_parse_trace_block(c->req->data,
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
		int ret = ferry_wire_parse_caps(mb->data, mb->len, &tlen, &n,
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

/*
 * A request packet.  Returns false if it could not be taken now for want of
 * a buffer or call: then it is neither acknowledged nor credited, and the
 * client sends it again later (flow control, not an error).
 */
static bool server_rx_request(struct ferry_session *s,
			      const struct ferry_frame *f,
			      const struct ferry_dp_pkt *pkt, bool *keep)
{
	struct ferry_endpoint *ep = s->ep;
	const struct ferry_hdr *h = &f->h;
	uint32_t slot = h->req_id & s->slot_mask;
	struct ferry_call *c = s->slots[slot];
	bool whole = h->frag_off == 0 && f->pay_len == h->msg_len;

	if (c && c->state == CALL_RESPONDED && c->req_id != h->req_id &&
	    h->req_id - s->srv.next_dispatch <= s->slot_mask) {
		/* The client reuses this slot only once it has the old
		 * call's response: that response is delivered. */
		server_call_end(c);
		c = NULL;
	}
	if (!c) {
		/* A new call must lie in the window the slots cover. */
		if (h->req_id - s->srv.next_dispatch > s->slot_mask) {
			ep->st.drop_stale++;
			return true;
		}
		c = ferry__call_get(ep);
		if (!c) {
			ep->st.drop_no_buffer++;
			return false;
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
		if (whole) {
			/* Zero copy: the handler reads the datagram in place;
			 * its buffer returns to the ring when the request is
			 * released, and only then is the credit given back. */
			c->req = ferry__view_get(ep, pkt, s->id);
			c->rx_got = h->msg_len;
			*keep = true;
		} else {
			int ret = ferry_msgbuf_alloc(ep, h->msg_len, &c->req);

			/* Handlers run in call order, so a buffer given to a
			 * later call is no use until the earlier ones have
			 * theirs: when buffers are scarce, hand them out in
			 * call order, or a later call could hold the last one
			 * while an earlier one waits for it forever. */
			if (ret == 0 && waiting_before(s, h->req_id) >
						ferry__pool_free(ep, h->msg_len)) {
				ferry__msgbuf_put(c->req);
				c->req = NULL;
				ret = -ENOBUFS;
			}

			if (ret == -EMSGSIZE) {
				/* Never fits: refuse the call, in order. */
				c->req = NULL;
				c->err = ret;
				c->state = CALL_READY;
				server_dispatch(s);
				return true;
			}
			if (ret < 0) {
				/* Busy: take it later, when buffers are
				 * back; the client will send again. */
				ep->st.msgbuf_alloc_fail++;
				ep->st.drop_no_buffer++;
				c->req = NULL;
				s->slots[slot] = NULL;
				ferry__call_put(ep, c);
				ferry__sess_unref(s);
				return false;
			}
			ep->st.msgbuf_allocs++;
		}
	} else if (c->req_id != h->req_id || c->state != CALL_RX ||
		   !c->req || h->msg_len != c->req->len ||
		   h->method != c->method ||
		   c->has_caps != ((h->flags & FERRY_FF_CAPS) != 0) ||
		   c->has_trace != ((h->flags & FERRY_FF_TRACE) != 0)) {
		ep->st.drop_stale++;
		return true;
	}
	if (!*keep) {
		/* Reassembly: the one copy the transport makes of a payload. */
		memcpy(c->req->data + h->frag_off, f->payload, f->pay_len);
		c->rx_got += f->pay_len;
	}
	if (c->rx_got == h->msg_len)
		server_req_complete(s, c);
	return true;
}

/* --- frame demultiplexing ------------------------------------------------ */

static void count_parse_drop(struct ferry_endpoint *ep, enum ferry_parse_err e)
{
	switch (e) {
	case FERRY_PARSE_TRUNCATED:
		ep->st.drop_truncated++;
		break;
	case FERRY_PARSE_BAD_MAGIC:
		ep->st.drop_bad_magic++;
		break;
	case FERRY_PARSE_BAD_VERSION:
		ep->st.drop_bad_version++;
		break;
	case FERRY_PARSE_BAD_TYPE:
		ep->st.drop_bad_type++;
		break;
	case FERRY_PARSE_OVERSIZED:
		ep->st.drop_oversized++;
		break;
	default:
		ep->st.drop_malformed++;
		break;
	}
}

static void server_rx_connect(struct ferry_endpoint *ep,
			      const struct ferry_frame *f,
			      const struct ferry_dp_pkt *pkt);

/* Take the peer's credit, acknowledgements and liveness from any frame. */
static void sess_rx_common(struct ferry_session *s, const struct ferry_frame *f)
{
	const struct ferry_hdr *h = &f->h;
	uint64_t sack = 0;

	s->last_rx_ns = s->ep->now;
	if (seq_lt(s->tx_credit, h->credit))
		s->tx_credit = h->credit;
	if (h->type == FERRY_FT_CREDIT && f->pay_len >= 8) {
		struct ferry_rd r;

		ferry_rd_init(&r, f->payload, f->pay_len);
		sack = (uint64_t)ferry_rd_u32(&r) << 32;
		sack |= ferry_rd_u32(&r);
	}
	ferry__rel_on_ack(s, h->ack, sack);
	if (s->txq_head || s->pushq_head)
		ferry__sess_activate(s);
}

static void rx_frame(struct ferry_endpoint *ep, const struct ferry_dp_pkt *pkt)
{
	struct ferry_frame f;
	struct ferry_session *s;
	enum ferry_parse_err e;
	bool keep = false, taken = true;
	uint32_t sid;

	ep->st.rx_pkts++;
	ep->st.rx_bytes += pkt->len;
	e = ferry_wire_parse(pkt->data, pkt->len, ep->cfg.max_msg, &f);
	if (e == FERRY_PARSE_OK && pkt->len > ep->cfg.max_frame)
		e = FERRY_PARSE_OVERSIZED;
	/* An endpoint that checksums its frames takes only checksummed
	 * ones: a corrupted flags byte must not switch the check off. */
	if (e == FERRY_PARSE_OK && ep->cfg.wire_csum &&
	    !(f.h.flags & FERRY_FF_CSUM))
		e = FERRY_PARSE_MALFORMED;
	if (e != FERRY_PARSE_OK) {
		count_parse_drop(ep, e);
		goto out;
	}
	if (f.h.type == FERRY_FT_CONNECT) {
		server_rx_connect(ep, &f, pkt);
		goto out;
	}
	s = ferry__sess_lookup(ep, f.h.dst_sess);
	if (f.h.type == FERRY_FT_CLOSE &&
	    (!s || s->state == SESS_CLOSED || s->peer_id != f.h.src_sess))
		goto out; /* the answer to our own CLOSE, or a repeat */
	if (!s || !ferry_addr_eq(&s->peer, &pkt->src) ||
	    (s->peer_id && f.h.src_sess && s->peer_id != f.h.src_sess)) {
		ep->st.drop_unknown_session++;
		goto out;
	}
	if (s->state == SESS_CLOSED) {
		ep->st.drop_stale++;
		goto out;
	}
	/* Handlers and continuations below may close @s and even reuse its
	 * memory for a new session: credit by the id it had. */
	sid = s->id;
	if (f.h.type != FERRY_FT_ERROR && f.h.type != FERRY_FT_ACCEPT &&
	    s->state != SESS_OPEN) {
		ep->st.drop_stale++;
		goto out;
	}
	/* Requests and pushes go to servers, responses to clients. */
	if (ferry_ft_is_data(f.h.type) &&
	    (f.h.type != FERRY_FT_RESPONSE) != s->is_server) {
		ep->st.drop_malformed++;
		goto out;
	}
	if (ferry_ft_is_data(f.h.type)) {
		enum rel_rx rr = ferry__rel_rx_check(s, f.h.seq);

		if (rr != REL_NEW) {
			/* Sent again, or beyond what we track: the credit
			 * was given (or will be) for the first copy. */
			if (rr == REL_DUP)
				ep->st.drop_duplicate++;
			else
				ep->st.drop_stale++;
			sess_rx_common(s, &f);
			ferry__sess_activate(s); /* re-acknowledge */
			goto out;
		}
	}
	if (s->state == SESS_OPEN)
		sess_rx_common(s, &f);
	switch (f.h.type) {
	case FERRY_FT_REQUEST:
		taken = server_rx_request(s, &f, pkt, &keep);
		break;
	case FERRY_FT_RESPONSE:
	case FERRY_FT_ACCEPT:
	case FERRY_FT_ERROR:
		taken = ferry__client_rx(s, &f);
		break;
	case FERRY_FT_PUSH:
		ferry__iou_rx_push(s, &f);
		break;
	case FERRY_FT_CREDIT:
		break; /* sess_rx_common took the credit */
	case FERRY_FT_CLOSE:
		if (f.h.flags & FERRY_FF_REPLY)
			break;
		ferry__sess_end(s, -ECONNRESET, false);
		ferry__sess_send_close(s, FERRY_FF_REPLY);
		break;
	case FERRY_FT_PING:
		if (!(f.h.flags & FERRY_FF_REPLY)) {
			s->pending |= SF_PONG;
			ferry__sess_activate(s);
		}
		break;
	default:
		ep->st.drop_unsupported++;
		break;
	}
	if (ferry_ft_is_data(f.h.type)) {
		struct ferry_session *cur = ferry__sess_lookup(ep, sid);

		if (!taken) {
			/* Not taken for want of buffers: no ack, no credit;
			 * the peer backs off and sends it again. */
			ep->dp_ops->rx_release(ep->dp, pkt->id);
			return;
		}
		/* The handler or continuation may have ended the session:
		 * acknowledge only for the one still there. */
		if (cur && cur->state == SESS_OPEN)
			ferry__rel_rx_commit(cur, f.h.seq);
		/* A data packet not kept in place is consumed now: credit
		 * it. */
		if (!keep) {
			ep->dp_ops->rx_release(ep->dp, pkt->id);
			ferry__sess_credit_release(ep, sid, 1);
		}
		return;
	}
out:
	if (!keep)
		ep->dp_ops->rx_release(ep->dp, pkt->id);
}

/* An ERROR for a connect we keep no session for.  It names the client's
 * session, so the client's connect fails at once instead of timing out. */
static void send_error_to(struct ferry_endpoint *ep,
			  const struct ferry_addr *to, uint32_t dst_sess,
			  uint32_t code, const char *why)
{
	struct ferry_hdr h = { .type = FERRY_FT_ERROR, .dst_sess = dst_sess };
	uint8_t buf[FERRY_WIRE_HDR_LEN + 6 + FERRY_ERROR_MSG_MAX];
	struct ferry_dp_tx tx = { .dst = *to, .hdr = buf };
	size_t n = ferry_wire_put_error(buf + FERRY_WIRE_HDR_LEN,
					sizeof(buf) - FERRY_WIRE_HDR_LEN, code,
					why);

	h.msg_len = (uint32_t)n;
	ferry_wire_encode(&h, buf);
	tx.hdr_len = (uint32_t)(FERRY_WIRE_HDR_LEN + n);
	if (ep->dp_ops->tx_burst(ep->dp, &tx, 1) == 1) {
		ep->st.tx_pkts++;
		ep->st.tx_bytes += tx.hdr_len;
	}
}

static void server_rx_connect(struct ferry_endpoint *ep,
			      const struct ferry_frame *f,
			      const struct ferry_dp_pkt *pkt)
{
	struct ferry_connect_body b;
	struct ferry_session *s;
	int ret = ferry_wire_parse_connect(f->payload, f->pay_len, &b);

	if (ret == FERRY_CONNECT_UNSUPPORTED) {
		/* Well-formed, but it asks for something we lack: say so,
		 * keep nothing. */
		ep->st.drop_unsupported++;
		ep->st.connects_refused++;
		send_error_to(ep, &pkt->src, f->h.src_sess, FERRY_EVERSION,
			      "connect needs an option this server lacks");
		return;
	}
	if (ret < 0) {
		ep->st.drop_malformed++;
		return;
	}
	/* A retransmitted CONNECT for a session we already made: accept
	 * again (our ACCEPT was lost), do not make a second session. */
	for (uint32_t i = 0; i < ep->nsessions; i++) {
		s = &ep->sessions[i];
		if (s->state == SESS_OPEN && s->is_server &&
		    s->peer_id == f->h.src_sess &&
		    ferry_addr_eq(&s->peer, &pkt->src)) {
			s->pending |= SF_ACCEPT;
			ferry__sess_activate(s);
			return;
		}
	}
	if (ep->destroying)
		return;
	/* Admission comes before anything is allocated, so a refused (or
	 * flooding) client costs one verification and one ERROR, and leaves
	 * no state behind.  Retransmitted CONNECTs of an admitted session
	 * were answered above without asking again; calls never are. */
	if (ep->admit_fn) {
		int res = ep->admit_fn(ep->admit_ctx, b.token, b.token_len);

		if (res != 0) {
			if (res > 0)
				res = -EACCES; /* a hook must refuse with -code */
			ep->st.connects_refused++;
			ep->st.admission_refused++;
			send_error_to(ep, &pkt->src, f->h.src_sess,
				      (uint32_t)-res, ferry_strerror(res));
			return;
		}
	}
	s = ferry__sess_alloc(ep, true);
	if (!s) {
		/* No room: say so, keep nothing. */
		ep->st.connects_refused++;
		send_error_to(ep, &pkt->src, f->h.src_sess, EMFILE,
			      "server session table full");
		return;
	}
	s->peer = pkt->src;
	s->peer_id = f->h.src_sess;
	s->state = SESS_OPEN;
	s->max_payload = (b.params.max_frame < ep->cfg.max_frame ?
			  b.params.max_frame : ep->cfg.max_frame) -
			 FERRY_WIRE_HDR_LEN;
	s->peer_max_msg = b.params.max_msg;
	s->tx_credit = b.params.credits;
	if (seq_lt(s->tx_credit, f->h.credit))
		s->tx_credit = f->h.credit;
	s->peer_feat = b.features;
	if (b.traceparent) {
		memcpy(s->traceparent, b.traceparent, FERRY_TRACEPARENT_LEN);
		s->have_traceparent = true;
	}
	if (ep->tops) {
		struct ferry_span_session_args a = {
			.kind = FERRY_SPAN_KIND_SERVER,
			.traceparent = b.traceparent,
			.traceparent_len = b.traceparent ? b.traceparent_len : 0,
			.tracestate = b.tracestate,
			.tracestate_len = b.tracestate ? b.tracestate_len : 0,
			.peer_ip = pkt->src.ip, .peer_port = pkt->src.port,
			.server_ip = ep->local.ip, .server_port = ep->local.port,
		};

		s->span = ep->tops->session_open(ep->tring, &a);
	}
	s->pending |= SF_ACCEPT;
	ferry__sess_activate(s);
	ep->st.sessions_opened++;
	if (ep->session_fn)
		ep->session_fn(s, FERRY_SESSION_OPENED, 0, ep->session_ctx);
}

/* --- transmit ------------------------------------------------------------ */

static void tx_done(void *ctx, void *cookie)
{
	(void)ctx;
	ferry__msgbuf_put(cookie);
}

static void hdr_init(struct ferry_session *s, struct ferry_hdr *h,
		     uint8_t type)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->dst_sess = s->peer_id;
	h->src_sess = s->id;
	h->credit = s->rx_released + s->rx_window;
	h->ack = s->rx_cum;
	if (s->ep->cfg.wire_csum)
		h->flags |= FERRY_FF_CSUM;
}

/* Encode @h at @buf; seal it with the checksum over @body if asked. */
static void hdr_put(const struct ferry_hdr *h, uint8_t *buf, const void *body,
		    size_t body_len)
{
	ferry_wire_encode(h, buf);
	if (h->flags & FERRY_FF_CSUM)
		ferry_wire_seal(buf, body, body_len);
}

/* As hdr_put, for a frame whose payload begins in @buf after the header
 * (@hdr_len bytes in all) and goes on in @body. */
static void hdr_put_ext(const struct ferry_hdr *h, uint8_t *buf,
			size_t hdr_len, const void *body, size_t body_len)
{
	ferry_wire_encode(h, buf);
	if (h->flags & FERRY_FF_CSUM)
		ferry_wire_seal_ext(buf, hdr_len, body, body_len);
}

/* What every frame we send told the peer: it need not be told again. */
static void sent_state(struct ferry_session *s, const struct ferry_hdr *h)
{
	s->credit_adv = h->credit;
	s->ack_adv = h->ack;
}

/*
 * Send one control frame; false if the dataplane has no room.  @body is
 * copied with the header; @tail, if not NULL, follows it, lent to the
 * dataplane (a CONNECT's token, which may not fit in the copied area).
 */
static bool send_ctrl_tail(struct ferry_session *s, uint8_t type,
			   uint16_t flags, const uint8_t *body,
			   uint32_t body_len, struct ferry_msgbuf *tail)
{
	struct ferry_endpoint *ep = s->ep;
	uint8_t buf[FERRY_DP_HDR_MAX];
	struct ferry_dp_tx tx = { .dst = s->peer, .hdr = buf };
	struct ferry_hdr h;

	if (FERRY_WIRE_HDR_LEN + body_len > sizeof(buf))
		return true; /* cannot happen: bodies are built to fit */
	hdr_init(s, &h, type);
	h.flags |= flags;
	h.msg_len = body_len + (tail ? tail->len : 0);
	if (body_len)
		memcpy(buf + FERRY_WIRE_HDR_LEN, body, body_len);
	tx.hdr_len = FERRY_WIRE_HDR_LEN + body_len;
	if (tail) {
		tx.body = tail->data;
		tx.body_len = tail->len;
		tx.cookie = tail;
		tail->refs++; /* the dataplane's, until tx_done */
	}
	hdr_put_ext(&h, buf, tx.hdr_len, tx.body, tx.body_len);
	if (ep->dp_ops->tx_burst(ep->dp, &tx, 1) != 1) {
		if (tail)
			tail->refs--;
		return false;
	}
	sent_state(s, &h);
	ep->st.tx_pkts++;
	ep->st.tx_bytes += tx.hdr_len + tx.body_len;
	return true;
}

static bool send_ctrl(struct ferry_session *s, uint8_t type, uint16_t flags,
		      const uint8_t *body, uint32_t body_len)
{
	return send_ctrl_tail(s, type, flags, body, body_len, NULL);
}

static void params_of(const struct ferry_endpoint *ep,
		      const struct ferry_session *s, struct ferry_params *p)
{
	p->max_msg = ep->cfg.max_msg;
	p->credits = s->rx_window;
	p->max_frame = (uint16_t)ep->cfg.max_frame;
	p->slots = (uint16_t)(s->slot_mask + 1 > 0xffff ? 0xffff
							: s->slot_mask + 1);
}

/* Emit the control frames @s owes.  False if the dataplane is full. */
static bool flush_ctrl(struct ferry_session *s)
{
	uint8_t body[FERRY_DP_HDR_MAX - FERRY_WIRE_HDR_LEN];
	struct ferry_connect_body cb;
	int n;

	if (s->pending & (SF_CONNECT | SF_ACCEPT)) {
		memset(&cb, 0, sizeof(cb));
		params_of(s->ep, s, &cb.params);
		if (s->have_traceparent && !s->is_server) {
			cb.traceparent = s->traceparent;
			cb.traceparent_len = FERRY_TRACEPARENT_LEN;
		}
		/* A server says it takes IOUs, so that a client never sends
		 * a PUSH an older server would drop unacknowledged; both
		 * sides say they take trace blocks, so that neither sends
		 * FF_TRACE to a peer that would refuse the call for it. */
		cb.features = s->is_server ? FERRY_FEAT_IOU | FERRY_FEAT_TRACE
					   : FERRY_FEAT_TRACE;
		n = ferry_wire_put_connect(body, sizeof(body), &cb);
		if (n < 0)
			n = 0;
		/* The token goes last: its TLV head here, its value lent
		 * from the session's copy (ferry_session_connect checked
		 * that the whole fits in a frame). */
		if (s->cli.token && !s->is_server)
			n += (int)ferry_wire_put_tlv_head(body + n,
							  FERRY_TLV_TOKEN,
							  (uint16_t)s->cli.token->len);
		if (!send_ctrl_tail(s, s->is_server ? FERRY_FT_ACCEPT
						    : FERRY_FT_CONNECT,
				    0, body, (uint32_t)n,
				    s->is_server ? NULL : s->cli.token))
			return false;
		s->pending &= ~(SF_CONNECT | SF_ACCEPT);
	}
	if (s->pending & SF_PONG) {
		if (!send_ctrl(s, FERRY_FT_PING, FERRY_FF_REPLY, NULL, 0))
			return false;
		s->pending &= ~SF_PONG;
	}
	if (s->pending & SF_PING) {
		if (!send_ctrl(s, FERRY_FT_PING, 0, NULL, 0))
			return false;
		s->pending &= ~SF_PING;
	}
	return true;
}

/* The error body of a server call answered with an error. */
static uint32_t err_body(const struct ferry_call *c, uint8_t *out, size_t cap)
{
	return (uint32_t)ferry_wire_put_error(out, cap, (uint32_t)-c->err,
					      ferry_strerror(c->err));
}

/*
 * Send the data packet @seq: bytes [@off, @off + @len) of @c's message
 * (its request on a client, its response on a server).  Used for the first
 * transmission and for every retransmission.  False if the dataplane is
 * full.
 */
bool ferry__emit_data(struct ferry_session *s, struct ferry_call *c,
		      uint32_t seq, uint32_t off, uint32_t len)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_msgbuf *mb = c->is_server ? c->resp : c->req;
	/* Room for an error body or a token table, which travel in the
	 * copied header area. */
	uint8_t hdr[FERRY_DP_HDR_MAX];
	struct ferry_dp_tx tx = { .dst = s->peer,
				  .hdr = hdr,
				  .hdr_len = FERRY_WIRE_HDR_LEN };
	struct ferry_hdr h;
	uint32_t pre = call_pre_len(c);

	if (c->is_push) {
		/* A PUSH is one small frame: its body travels in the copied
		 * header area. */
		hdr_init(s, &h, FERRY_FT_PUSH);
		h.seq = seq;
		h.msg_len = ferry__iou_body(c, hdr + FERRY_WIRE_HDR_LEN,
					    sizeof(hdr) - FERRY_WIRE_HDR_LEN);
		tx.hdr_len += h.msg_len;
		hdr_put(&h, hdr, hdr + FERRY_WIRE_HDR_LEN, h.msg_len);
		if (ep->dp_ops->tx_burst(ep->dp, &tx, 1) != 1)
			return false;
		sent_state(s, &h);
		ep->st.tx_pkts++;
		ep->st.tx_bytes += tx.hdr_len;
		return true;
	}
	hdr_init(s, &h, c->is_server ? FERRY_FT_RESPONSE : FERRY_FT_REQUEST);
	h.method = c->method;
	h.req_id = c->req_id;
	h.seq = seq;
	h.frag_off = off;
	if (mb) {
		/* Offsets are in the message: what goes ahead of the
		 * payload (a request's trace block and token table, a
		 * response's attribute block), then the payload.  The first
		 * fragment holds all of it (ferry_call_with and
		 * call_respond_local see to it): copied here, so that the
		 * payload still goes out from the caller's buffer.  Every
		 * fragment's flags say what the message starts with. */
		h.msg_len = mb->len + pre;
		if (c->is_server ? pre != 0 : c->trace_len != 0)
			h.flags |= FERRY_FF_TRACE;
		if (!c->is_server && c->caps_len)
			h.flags |= FERRY_FF_CAPS;
		if (pre) {
			if (off == 0) {
				memcpy(hdr + FERRY_WIRE_HDR_LEN,
				       c->pre_mb->data, pre);
				tx.hdr_len += pre;
				len -= pre;
			} else {
				off -= pre;
			}
		}
		tx.body = mb->data + off;
		tx.body_len = len;
		tx.cookie = mb;
		hdr_put_ext(&h, hdr, tx.hdr_len, tx.body, len);
		mb->refs++; /* the dataplane's, until tx_done */
	} else {
		/* Error bodies are small: they travel in the copied header
		 * area. */
		h.flags |= FERRY_FF_ERR;
		h.msg_len = err_body(c, hdr + FERRY_WIRE_HDR_LEN,
				     sizeof(hdr) - FERRY_WIRE_HDR_LEN);
		tx.hdr_len += h.msg_len;
		hdr_put(&h, hdr, hdr + FERRY_WIRE_HDR_LEN, h.msg_len);
	}
	if (ep->dp_ops->tx_burst(ep->dp, &tx, 1) != 1) {
		if (mb)
			mb->refs--;
		return false;
	}
	sent_state(s, &h);
	ep->st.tx_pkts++;
	ep->st.tx_bytes += tx.hdr_len + tx.body_len;
	return true;
}

/*
 * Turn the session's transmit queue into datagrams while credit, the
 * in-flight record and dataplane room last.  Returns false if the
 * dataplane is full.
 */
static bool flush_data(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_call *c;

	while ((c = s->txq_head) != NULL) {
		struct ferry_msgbuf *mb = c->is_server ? c->resp : c->req;
		uint8_t errbody[6 + FERRY_ERROR_MSG_MAX];
		/* What goes ahead of the payload counts in the message:
		 * it was made to fit in the first fragment, which takes it
		 * whole. */
		uint32_t msg_len = mb ? mb->len + call_pre_len(c)
				      : err_body(c, errbody, sizeof(errbody));

		if (c->tx_off == 0)
			c->seq0 = s->tx_seq;
		do {
			uint32_t n = msg_len - c->tx_off;

			if (!seq_lt(s->tx_seq, s->tx_credit) ||
			    !ferry__rel_can_send(s)) {
				ep->st.credit_stalls++;
				return true; /* resumes when credit arrives */
			}
			if (n > s->max_payload)
				n = s->max_payload;
			if (!ferry__emit_data(s, c, s->tx_seq, c->tx_off, n))
				return false;
			ferry__rel_sent(s, s->tx_seq, c, c->tx_off, n);
			s->tx_seq++;
			c->tx_off += n;
		} while (c->tx_off < msg_len);

		s->txq_head = c->next;
		if (!s->txq_head)
			s->txq_tail = NULL;
		c->next = NULL;
		if (c->is_server) {
			/* Kept, with its response, until acknowledged. */
			ep->st.resps_sent++;
			c->state = CALL_RESPONDED;
		} else {
			c->state = CALL_WAITING;
			/* The PUSHes that waited for this call follow it. */
			if (c->n_ious && s->cli.ious_held)
				ferry__iou_call_sent(s, c);
		}
	}
	return true;
}

/*
 * Send the queued PUSHes, as many to a frame as fit.  They may go beyond
 * the peer's credit by at most push_slack: a server whose credit window is
 * full of requests waiting for their IOUs (a one-frame request keeps its
 * credit until it is answered) must still get the PUSHes those requests
 * wait for, and it holds no PUSH: each is released, and its credit given
 * back, as soon as it is processed.  Returns false if the dataplane is
 * full.
 */
static bool flush_pushes(struct ferry_session *s)
{
	struct ferry_call *c;

	while ((c = s->pushq_head) != NULL) {
		if (!seq_lt(s->tx_seq, s->tx_credit + s->push_slack) ||
		    !ferry__rel_can_send(s)) {
			s->ep->st.credit_stalls++;
			return true;
		}
		ferry__iou_pack(s);
		c->seq0 = s->tx_seq;
		if (!ferry__emit_data(s, c, s->tx_seq, 0, 0))
			return false;
		ferry__rel_sent(s, s->tx_seq, c, 0, 0);
		s->tx_seq++;
		s->pushq_head = c->next;
		if (!s->pushq_head)
			s->pushq_tail = NULL;
		c->next = NULL;
		c->state = CALL_WAITING; /* until acknowledged */
	}
	return true;
}

/* A CREDIT frame is owed: half a window of credit, a gap or duplicate to
 * report, or an acknowledgement that waited long enough. */
static bool credit_owed(const struct ferry_session *s)
{
	return credit_half_owed(s) || s->ack_now ||
	       (s->ack_due && s->ack_adv != s->rx_cum &&
		s->ep->now >= s->ack_due);
}

/* CREDIT carries the SACK: which packets after rx_cum arrived. */
static bool send_credit(struct ferry_session *s)
{
	uint8_t sack[8];
	uint64_t v = ferry__rel_sack(s);

	ferry_wr_u32(ferry_wr_u32(sack, (uint32_t)(v >> 32)), (uint32_t)v);
	if (!send_ctrl(s, FERRY_FT_CREDIT, 0, sack, sizeof(sack)))
		return false;
	s->ack_now = false;
	s->ack_due = 0;
	return true;
}

static void flush_sessions(struct ferry_endpoint *ep)
{
	struct ferry_session *s, *next;
	struct ferry_session *keep_head = NULL, *keep_tail = NULL;
	bool full = false;

	s = ep->active_head;
	ep->active_head = ep->active_tail = NULL;
	for (; s; s = next) {
		next = s->next_active;
		s->next_active = NULL;
		s->active = false;
		if (!full && s->state != SESS_FREE) {
			full = !flush_ctrl(s);
			if (!full && s->state == SESS_OPEN)
				full = !flush_data(s);
			if (!full && s->state == SESS_OPEN && s->pushq_head)
				full = !flush_pushes(s);
			/* Credit or acknowledgements owed, and nothing
			 * else carried them. */
			if (!full && s->state == SESS_OPEN) {
				if (s->ack_due && s->ack_adv == s->rx_cum &&
				    !s->ack_now)
					s->ack_due = 0; /* data carried it */
				if (credit_owed(s))
					full = !send_credit(s);
				if (!full)
					s->pending &= ~SF_CREDIT;
			}
		}
		if (s->state != SESS_FREE && (full || s->pending)) {
			/* Still owes something: keep it for the next
			 * flush, in order. */
			s->active = true;
			if (keep_tail)
				keep_tail->next_active = s;
			else
				keep_head = s;
			keep_tail = s;
		}
	}
	/* Sessions activated during the loop come after the kept ones. */
	if (keep_head) {
		keep_tail->next_active = ep->active_head;
		if (!ep->active_head)
			ep->active_tail = keep_tail;
		ep->active_head = keep_head;
	}
	ep->dp_ops->flush(ep->dp);
}

/* --- cross-thread work --------------------------------------------------- */

static int drain_cross(struct ferry_endpoint *ep)
{
	struct ferry_call *calls;
	struct ferry_msgbuf *frees;
	struct ferry_iou *ious;
	int n = 0;

	if (!atomic_load_explicit(&ep->xpending, memory_order_acquire))
		return 0;
	ferry__xlock(ep);
	atomic_store_explicit(&ep->xpending, false, memory_order_relaxed);
	calls = ep->xcalls;
	frees = ep->xfrees;
	ious = ep->xious;
	ep->xcalls = NULL;
	ep->xfrees = NULL;
	ep->xious = NULL;
	atomic_flag_clear_explicit(&ep->xlock, memory_order_release);

	/* The queue is LIFO; answer in the order the threads answered. */
	{
		struct ferry_call *rev = NULL;

		while (calls) {
			struct ferry_call *c = calls;

			calls = c->xnext;
			c->xnext = rev;
			rev = c;
		}
		calls = rev;
	}
	while (calls) {
		struct ferry_call *c = calls;

		calls = c->xnext;
		call_respond_local(c);
		n++;
	}
	while (frees) {
		struct ferry_msgbuf *mb = frees;

		frees = mb->next;
		ferry__msgbuf_put(mb);
	}
	while (ious) {
		struct ferry_iou *iou = ious;

		ious = iou->next;
		ferry__iou_kept(iou);
		n++;
	}
	return n;
}

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

		call_respond_local(c);
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
	    !ferry_wire_attr_key_ok(e->key, e->key_len))
		return -EINVAL;
	n = ferry_wire_put_resp_attr(ent, sizeof(ent), e);
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
	ferry_wire_put_resp_attrs_head(mb->data, c->nattrs, mb->len);
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

/* --- create / destroy / poll -------------------------------------------- */

int ferry_endpoint_create(const struct ferry_ep_config *cfg,
			  struct ferry_endpoint **out)
{
	struct ferry_dp_conf dc;
	struct ferry_endpoint *ep;
	uint32_t slots, nslots_total, rel;
	int ret;

	if (!cfg || !out || cfg->max_sessions == 0 ||
	    cfg->max_sessions > 0xffff || cfg->session_slots == 0 ||
	    cfg->session_slots > 4096 || cfg->session_credits == 0 ||
	    cfg->max_frame < FERRY_WIRE_MIN_FRAME ||
	    cfg->max_frame > FERRY_WIRE_MAX_FRAME || cfg->max_msg == 0 ||
	    cfg->max_msg > FERRY_WIRE_MAX_MSG || cfg->keepalive_ms == 0 ||
	    cfg->peer_timeout_ms < cfg->keepalive_ms)
		return -EINVAL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	ep->cfg = *cfg;
	ep->owner = pthread_self();
	atomic_flag_clear(&ep->xlock);
	ep->dp_ops = ferry_dp_find(cfg->dataplane);
	if (!ep->dp_ops || !cfg->dataplane) {
		free(ep);
		return -ENODEV;
	}
	slots = pow2_ceil(cfg->session_slots);
	ep->cfg.session_slots = slots;
	/* Enough receive buffers for every session's full window, so that
	 * credits, not the ring, hold a sender back; but at most about
	 * RX_RING_BYTES of memory: beyond that, datagrams wait in the
	 * socket's (deep) queue until the ring refills. */
	if (ep->cfg.rx_bufs == 0) {
		uint64_t want = (uint64_t)cfg->max_sessions *
				cfg->session_credits;
		uint64_t cap = RX_RING_BYTES / cfg->max_frame;

		if (want > cap)
			want = cap;
		ep->cfg.rx_bufs = (uint32_t)(want < 256 ? 256 : want);
	}
	ep->cfg.rx_bufs = pow2_ceil(ep->cfg.rx_bufs);
	if (ep->cfg.rx_bufs > 32768)
		ep->cfg.rx_bufs = 32768;

	memset(&dc, 0, sizeof(dc));
	dc.bind_addr = cfg->bind_addr;
	dc.port = cfg->port;
	dc.reuseport = cfg->reuseport;
	dc.busy_poll = cfg->busy_poll;
	dc.max_frame = cfg->max_frame;
	dc.rx_bufs = ep->cfg.rx_bufs;
	dc.tx_slots = 1024;
	dc.zc_threshold = cfg->zc_threshold;
	dc.mem_bytes = ferry__pool_bytes(cfg);
	dc.dpdk_eal = cfg->dpdk_eal;
	dc.dpdk_port = cfg->dpdk_port;
	dc.dpdk_queues = cfg->dpdk_queues;
	if (cfg->faults.loss > 0 || cfg->faults.dup > 0 ||
	    cfg->faults.reorder > 0 || cfg->faults.corrupt > 0 ||
	    cfg->faults.delay > 0) {
		/* Fault injection wraps the chosen backend. */
		dc.inner = ep->dp_ops;
		dc.faults.loss = cfg->faults.loss;
		dc.faults.dup = cfg->faults.dup;
		dc.faults.reorder = cfg->faults.reorder;
		dc.faults.corrupt = cfg->faults.corrupt;
		dc.faults.delay = cfg->faults.delay;
		dc.faults.delay_us = cfg->faults.delay_us;
		dc.faults.seed = cfg->faults.seed;
		ep->dp_ops = &ferry__dp_fault_ops;
	}
	dc.tx_done = tx_done;
	dc.tx_done_ctx = ep;
	ret = ep->dp_ops->open(&dc, &ep->dp);
	if (ret < 0) {
		ep->dp = NULL;
		goto err;
	}
	ret = ep->dp_ops->local_addr(ep->dp, &ep->local);
	if (ret < 0)
		goto err;
	/* A link with a smaller MTU (DPDK) lowers what we accept, and so what
	 * each session negotiates. */
	if (ep->dp_ops->max_frame) {
		uint32_t mf = ep->dp_ops->max_frame(ep->dp);

		if (mf < FERRY_WIRE_MIN_FRAME) {
			ret = -EMSGSIZE;
			goto err;
		}
		if (mf < ep->cfg.max_frame)
			ep->cfg.max_frame = mf;
	}
	ret = ferry__pool_init(ep);
	if (ret < 0)
		goto err;

	ep->nsessions = cfg->max_sessions;
	ep->sessions = calloc(ep->nsessions, sizeof(*ep->sessions));
	nslots_total = ep->nsessions * slots;
	ep->slot_mem = calloc(nslots_total, sizeof(*ep->slot_mem));
	/* Every slot of every session can hold a call, and as many again
	 * may wait for a slot on the client side. */
	ep->ncalls = nslots_total * 2;
	ep->calls = calloc(ep->ncalls, sizeof(*ep->calls));
	/* In flight per session: twice the credit window, so that packets
	 * released out of order do not stall the sender. */
	rel = pow2_ceil(2 * cfg->session_credits);
	if (rel < 64)
		rel = 64;
	ep->txr_mem = calloc((size_t)ep->nsessions * rel, sizeof(*ep->txr_mem));
	ep->rxmap_mem = calloc((size_t)ep->nsessions * rel / 64,
			       sizeof(*ep->rxmap_mem));
	ep->handler_mask = 255;
	ep->handlers = calloc(ep->handler_mask + 1, sizeof(*ep->handlers));
	if (!ep->sessions || !ep->slot_mem || !ep->calls || !ep->handlers ||
	    !ep->txr_mem || !ep->rxmap_mem) {
		ret = -ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < ep->nsessions; i++) {
		struct ferry_session *s = &ep->sessions[i];

		s->slots = ep->slot_mem + (size_t)i * slots;
		s->slot_mask = slots - 1;
		s->txr = ep->txr_mem + (size_t)i * rel;
		s->txr_mask = rel - 1;
		s->rxmap = ep->rxmap_mem + (size_t)i * rel / 64;
		s->rxmap_mask = rel - 1;
	}
	for (uint32_t i = ep->ncalls; i-- > 0;)
		ferry__call_put(ep, &ep->calls[i]);
	ret = ferry__iou_init(ep);
	if (ret < 0)
		goto err;
	ep->sess_gen = 1;
	ep->now = ferry__now_ns();
	*out = ep;
	return 0;
err:
	ferry_endpoint_destroy(ep);
	return ret;
}

void ferry_endpoint_destroy(struct ferry_endpoint *ep)
{
	if (!ep)
		return;
	ep->destroying = true;
	if (ep->sessions) {
		drain_cross(ep);
		for (uint32_t i = 0; i < ep->nsessions; i++) {
			struct ferry_session *s = &ep->sessions[i];

			if (s->state == SESS_CONNECTING || s->state == SESS_OPEN)
				ferry__sess_end(s, -ECANCELED, true);
		}
		/* Say goodbye to the peers, then let the dataplane finish
		 * every transmit (its tx_done frees the buffers). */
		flush_sessions(ep);
		drain_cross(ep);
	}
	if (ep->tops)
		ep->tops->ring_destroy(ep->tring);
	if (ep->dp)
		ep->dp_ops->close(ep->dp);
	if (ep->admit_release)
		ep->admit_release(ep->admit_ctx);
	ferry__iou_fini(ep);
	ferry__pool_fini(ep);
	free(ep->sessions);
	free(ep->slot_mem);
	free(ep->txr_mem);
	free(ep->rxmap_mem);
	free(ep->calls);
	free(ep->handlers);
	free(ep);
}

static int poll_once(struct ferry_endpoint *ep)
{
	struct ferry_dp_pkt pkts[FERRY_RX_BURST];
	int events = 0;

	/* A few bursts, then send: keeps latency bounded under load. */
	for (int round = 0; round < 4; round++) {
		unsigned n = ep->dp_ops->rx_burst(ep->dp, pkts, FERRY_RX_BURST);

		for (unsigned i = 0; i < n; i++)
			rx_frame(ep, &pkts[i]);
		events += (int)n;
		if (n < FERRY_RX_BURST)
			break;
	}
	events += drain_cross(ep);
	ep->now = ferry__now_ns();
	if (ep->now >= ep->next_timer) {
		bool busy = false;

		ep->next_timer = ep->now + TIMER_PERIOD_NS;
		for (uint32_t i = 0; i < ep->nsessions; i++) {
			struct ferry_session *s = &ep->sessions[i];

			if (s->state == SESS_OPEN || s->state == SESS_CONNECTING) {
				ferry__session_timers(s);
				busy = busy || ferry__rel_busy(s);
			}
		}
		ep->rel_busy = busy;
	}
	flush_sessions(ep);
	return events;
}

int ferry_endpoint_poll(struct ferry_endpoint *ep, int timeout_ms)
{
	uint64_t deadline;
	int events, ret;

	if (!ep)
		return -EINVAL;
	events = poll_once(ep);
	if (events || timeout_ms == 0)
		return events;
	deadline = timeout_ms < 0 ? UINT64_MAX
				  : ep->now + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		/* Wait in slices so that timers run on time: short ones
		 * while packets await acknowledgement. */
		int64_t slice = (int64_t)TIMER_PERIOD_NS * (ep->rel_busy ? 1 : 10);

		if (deadline - ep->now < (uint64_t)slice)
			slice = (int64_t)(deadline - ep->now);
		ret = ep->dp_ops->wait(ep->dp, slice);
		if (ret < 0)
			return ret;
		events = poll_once(ep);
		if (events || ep->now >= deadline)
			return events;
	}
}

int ferry__endpoint_set_trace(struct ferry_endpoint *ep,
			      const struct ferry__trace_ops *ops,
			      struct ferry_trace_ring *ring)
{
	/* Sessions opened untraced would end without spans: set it first. */
	for (uint32_t i = 0; i < ep->nsessions; i++)
		if (ep->sessions[i].state != SESS_FREE)
			return -EBUSY;
	if (ep->tops)
		ep->tops->ring_destroy(ep->tring);
	ep->tops = ops;
	ep->tring = ring;
	return 0;
}

struct ferry_trace_ring *ferry_endpoint_trace_ring(struct ferry_endpoint *ep)
{
	return ep ? ep->tring : NULL;
}

uint64_t ferry_session_span(const struct ferry_session *s)
{
	return s ? s->span : 0;
}

uint64_t ferry_call_span(const struct ferry_call *c)
{
	return c ? c->span : 0;
}

int ferry_endpoint_wake(struct ferry_endpoint *ep)
{
	return ep->dp_ops->wake(ep->dp);
}

uint16_t ferry_endpoint_port(const struct ferry_endpoint *ep)
{
	return ep->local.port;
}

void ferry_endpoint_stats(const struct ferry_endpoint *ep,
			  struct ferry_ep_stats *out)
{
	struct ferry_dp_stats ds;

	*out = ep->st;
	ep->dp_ops->stats(ep->dp, &ds);
	out->tx_zc = ds.tx_zc;
	out->tx_zc_fixed = ds.tx_zc_fixed;
	out->tx_errors = ds.tx_errors;
	out->fault_loss = ds.fault_loss;
	out->fault_dup = ds.fault_dup;
	out->fault_reorder = ds.fault_reorder;
	out->fault_corrupt = ds.fault_corrupt;
	out->fault_delay = ds.fault_delay;
}

uint64_t ferry_ep_stats_drops(const struct ferry_ep_stats *st)
{
	return st->drop_truncated + st->drop_bad_magic + st->drop_bad_version +
	       st->drop_bad_type + st->drop_malformed + st->drop_oversized +
	       st->drop_unknown_session + st->drop_unsupported +
	       st->drop_stale + st->drop_no_buffer;
}
