/* SPDX-License-Identifier: MIT */
/*
 * The transmit path, for both roles: frame headers (with the credit and
 * acknowledgement every frame carries), control frames, data packets of
 * requests and responses, PUSH frames, CREDIT, and the flush that turns
 * every active session's queues into datagrams in one dataplane
 * submission.
 *
 * Payloads are not copied: a data packet's header and what goes ahead of
 * the payload are built in a small copied area, and the payload is lent
 * to the dataplane from its msgbuf, whose reference the dataplane drops
 * through ferry__tx_done.
 */
#include <string.h>

#include "internal.h"
#include "rd.h"

_Static_assert(FERRY_WIRE_HDR_LEN + FERRY_WIRE_CAPS_MAX_LEN <=
		       FERRY_DP_HDR_MAX,
	       "a token table fits in the copied header area");
_Static_assert(FERRY_WIRE_HDR_LEN + 6 + FERRY_ERROR_MSG_MAX <=
		       FERRY_DP_HDR_MAX,
	       "an error body fits in the copied header area");
_Static_assert(FERRY_WIRE_HDR_LEN + FERRY_WIRE_PRE_MAX <= FERRY_DP_HDR_MAX &&
		       FERRY_WIRE_ATTRS_MAX_LEN <= FERRY_WIRE_PRE_MAX,
	       "what goes ahead of a payload fits in the copied header area");

/* --- headers and control frames ------------------------------------------ */

void ferry__tx_done(void *ctx, void *cookie)
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
	ferry__wire_encode(h, buf);
	if (h->flags & FERRY_FF_CSUM)
		ferry__wire_seal(buf, body, body_len);
}

/* As hdr_put, for a frame whose payload begins in @buf after the header
 * (@hdr_len bytes in all) and goes on in @body. */
static void hdr_put_ext(const struct ferry_hdr *h, uint8_t *buf,
			size_t hdr_len, const void *body, size_t body_len)
{
	ferry__wire_encode(h, buf);
	if (h->flags & FERRY_FF_CSUM)
		ferry__wire_seal_ext(buf, hdr_len, body, body_len);
}

/*
 * Whether a datagram of @len bytes may go to @s's peer.  A server's peer
 * that has sent nothing but CONNECT has not shown that it is at its
 * address (anyone may write any source address on a CONNECT), so it gets
 * at most FERRY__UNVALIDATED_FACTOR times the bytes it sent (QUIC's rule,
 * RFC 9000, section 8): a spoofed CONNECT cannot turn the server into an
 * amplifier against that address.  What is held back is counted, and
 * never sent later.  Only control frames can be owed to such a peer
 * (ACCEPT, PING, CLOSE, ERROR): data follows a request, which proves the
 * address as well as v1 can (docs/wire.md, section 4).
 */
static bool tx_allowed(struct ferry_session *s, uint32_t len)
{
	struct ferry_sess_server *v = &s->srv;

	if (!s->is_server || v->validated)
		return true;
	if ((uint64_t)v->unval_tx + len >
	    (uint64_t)FERRY__UNVALIDATED_FACTOR * v->unval_rx) {
		s->ep->st.unvalidated_suppressed++;
		return false;
	}
	v->unval_tx += len;
	return true;
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
 * dataplane (a CONNECT's token, which may not fit in the copied area).  A
 * frame an unproven peer may not have (tx_allowed) counts as sent.
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
	if (!tx_allowed(s, FERRY_WIRE_HDR_LEN + body_len +
				   (tail ? tail->len : 0)))
		return true;
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
		/* A client's channel token, if it has one. */
		struct ferry_msgbuf *tok = s->is_server ? NULL : s->cli.token;

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
		n = ferry__wire_put_connect(body, sizeof(body), &cb);
		if (n < 0)
			n = 0;
		/* The token goes last: its TLV head here, its value lent
		 * from the session's copy (ferry_session_connect checked
		 * that the whole fits in a frame). */
		if (tok)
			n += (int)ferry__wire_put_tlv_head(body + n,
							  FERRY_TLV_TOKEN,
							  (uint16_t)tok->len);
		if (!send_ctrl_tail(s, s->is_server ? FERRY_FT_ACCEPT
						    : FERRY_FT_CONNECT,
				    0, body, (uint32_t)n, tok))
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

/* --- frames sent at once ------------------------------------------------ */

/* Tell the peer we are gone: best effort, one datagram, sent now because
 * the session may be reused before the next flush. */
void ferry__sess_send_close(struct ferry_session *s, uint16_t flags)
{
	struct ferry_endpoint *ep = s->ep;
	uint8_t buf[FERRY_WIRE_HDR_LEN];
	struct ferry_hdr h = { .type = FERRY_FT_CLOSE,
			       .flags = flags,
			       .dst_sess = s->peer_id,
			       .src_sess = s->id };
	struct ferry_dp_tx tx = { .dst = s->peer,
				  .hdr = buf,
				  .hdr_len = sizeof(buf) };

	if (!s->peer_id || !tx_allowed(s, sizeof(buf)))
		return;
	h.credit = s->rx_released + s->rx_window;
	/* A peer that checksums takes only checksummed frames: without the
	 * flag it would drop the CLOSE as malformed. */
	if (ep->cfg.wire_csum)
		h.flags |= FERRY_FF_CSUM;
	hdr_put(&h, buf, NULL, 0);
	if (ep->dp_ops->tx_burst(ep->dp, &tx, 1) == 1) {
		ep->st.tx_pkts++;
		ep->st.tx_bytes += sizeof(buf);
	}
}

/* One ERROR frame @h (type, ids and credit set) to @to, sent now, unless
 * it is longer than @max bytes (counted). */
static void send_error(struct ferry_endpoint *ep, const struct ferry_addr *to,
		       struct ferry_hdr *h, uint64_t max, uint32_t code,
		       const char *why)
{
	uint8_t buf[FERRY_WIRE_HDR_LEN + 6 + FERRY_ERROR_MSG_MAX];
	struct ferry_dp_tx tx = { .dst = *to, .hdr = buf };
	size_t n = ferry__wire_put_error(buf + FERRY_WIRE_HDR_LEN,
					sizeof(buf) - FERRY_WIRE_HDR_LEN, code,
					why);

	h->type = FERRY_FT_ERROR;
	h->msg_len = (uint32_t)n;
	if (ep->cfg.wire_csum)
		h->flags |= FERRY_FF_CSUM;
	hdr_put(h, buf, buf + FERRY_WIRE_HDR_LEN, n);
	tx.hdr_len = (uint32_t)(FERRY_WIRE_HDR_LEN + n);
	if (tx.hdr_len > max) {
		ep->st.unvalidated_suppressed++;
		return;
	}
	if (ep->dp_ops->tx_burst(ep->dp, &tx, 1) == 1) {
		ep->st.tx_pkts++;
		ep->st.tx_bytes += tx.hdr_len;
	}
}

/* An ERROR for a connect we keep no session for.  It names the client's
 * session, so the client's connect fails at once instead of timing out.
 * One per CONNECT, at most 3x its size: its address is unproven. */
void ferry__send_error_to(struct ferry_endpoint *ep,
			  const struct ferry_addr *to, uint32_t dst_sess,
			  uint32_t rx_len, uint32_t code, const char *why)
{
	struct ferry_hdr h = { .dst_sess = dst_sess };

	send_error(ep, to, &h, (uint64_t)FERRY__UNVALIDATED_FACTOR * rx_len,
		   code, why);
}

/* A client takes an ERROR on an open session only from the session's
 * peer id (docs/wire.md, section 4), so this one carries ours; the credit
 * is the current one, as a CLOSE's. */
void ferry__sess_send_error(struct ferry_session *s, uint32_t code,
			    const char *why)
{
	struct ferry_hdr h = { .dst_sess = s->peer_id, .src_sess = s->id };
	/* Encoded once here for its length: an unproven peer's budget
	 * (tx_allowed) counts every byte. */
	uint8_t body[6 + FERRY_ERROR_MSG_MAX];
	size_t n = ferry__wire_put_error(body, sizeof(body), code, why);

	if (!s->peer_id || !tx_allowed(s, FERRY_WIRE_HDR_LEN + (uint32_t)n))
		return;
	h.credit = s->rx_released + s->rx_window;
	send_error(s->ep, &s->peer, &h, UINT64_MAX, code, why);
}


/* --- data and PUSH frames ------------------------------------------------ */

/* The error body of a server call answered with an error. */
static uint32_t err_body(const struct ferry_call *c, uint8_t *out, size_t cap)
{
	return (uint32_t)ferry__wire_put_error(out, cap, (uint32_t)-c->err,
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
		 * ferry__server_respond_local see to it): copied here, so
		 * that the payload still goes out from the caller's buffer.
		 * Every fragment's flags say what the message starts with. */
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
 * Whether congestion control lets a data packet of @n bytes go now; if
 * not, count why, and if it is the pacer, keep the session on the
 * transmit list until its time (the poll loop sleeps no longer).
 */
static bool cc_allows(struct ferry_session *s, uint32_t n)
{
	struct ferry_endpoint *ep = s->ep;
	enum ferry__cc_verdict v = ferry__cc_check(&s->cc, n, ep->now);
	/* Each packet counts once, however often the flush finds it held. */
	bool first = s->cc_held != s->tx_seq + 1;
	uint64_t t;

	if (v != FERRY__CC_GO)
		s->cc_held = s->tx_seq + 1;
	switch (v) {
	case FERRY__CC_GO:
		return true;
	case FERRY__CC_WINDOW:
		ep->st.cc_stalls += first; /* resumes when acks arrive */
		return false;
	case FERRY__CC_PACED:
		ep->st.cc_paced += first;
		s->pending |= SF_PACE;
		t = ferry__cc_next_send_ns(&s->cc);
		if (!ep->pace_ns || t < ep->pace_ns)
			ep->pace_ns = t;
		return false;
	}
	return false;
}

/*
 * Turn the session's transmit queue into datagrams while credit, the
 * in-flight record, congestion control and dataplane room last.  Returns
 * false if the dataplane is full.
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
			if (!cc_allows(s, n + FERRY_WIRE_HDR_LEN))
				return true;
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

/* --- credit and the flush ------------------------------------------------ */

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

void ferry__flush_sessions(struct ferry_endpoint *ep)
{
	struct ferry_session *s, *next;
	struct ferry_session *keep_head = NULL, *keep_tail = NULL;
	bool full = false;

	s = ep->active_head;
	ep->active_head = ep->active_tail = NULL;
	ep->pace_ns = 0; /* flush_data says again who waits for the pacer */
	for (; s; s = next) {
		next = s->next_active;
		s->next_active = NULL;
		s->active = false;
		s->pending &= ~SF_PACE;
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
		} else {
			ferry__sess_freed(s); /* a new session may take it */
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

