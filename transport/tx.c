/* SPDX-License-Identifier: MIT */
/*
 * The transmit path, for both roles (docs/wire.md, sections 5 and 6):
 * the datagram builder that packs what a session owes into datagrams of
 * up to the path frame (ACK, CREDIT, PING, lost frames, new request or
 * response bytes, PUSHes), seals them, and hands them to the dataplane;
 * the datagrams sent at once (CLOSE); and the flush over every active
 * session, ending in one dataplane submission.
 *
 * Coalescing never waits: what is ready at a flush goes at that flush.
 *
 * Copies.  Frame headers, ACK, CREDIT, message prefixes (trace block,
 * token table, attribute block, error body, PUSH records) and payloads
 * below FERRY__TX_COPY_MAX bytes are copied into the datagram's copied
 * area.  A larger payload is lent from its msgbuf as the datagram's one
 * lent piece, which ends the datagram (nothing can follow a lent piece but
 * the trailer), so a large message goes out zero-copy as in v1.  In `aead`
 * mode everything is copied: the cipher writes the ciphertext into the
 * copied area.
 */
#include <string.h>

#include "internal.h"
#include "rd.h"

/* Payload bytes at or above which a data frame lends its bytes. */
#define FERRY__TX_COPY_MAX 512

void ferry__tx_done(void *ctx, void *cookie)
{
	(void)ctx;
	ferry__msgbuf_put(cookie);
}

/* --- the datagram builder ------------------------------------------------- */

/* A frame of call @c goes in the datagram being built: one more of its
 * frames outstanding, and the datagrams that hold them (sq_lo .. sq_hi)
 * now reach this one. */
static void call_frame_sent(struct ferry_session *s, struct ferry_call *c)
{
	if (c->unacked++ == 0)
		c->sq_lo = s->sq.next_pn;
	c->sq_hi = s->sq.next_pn;
	c->sq_fr = ferry__sentq_last_frame(&s->sq);
}

struct dgb {
	struct ferry_session *s;
	uint8_t *buf;       /* the copied area */
	uint32_t len;       /* bytes in it */
	uint32_t room;      /* the most the copied area and piece may hold */
	struct ferry_dp_tx tx;
	bool closed;        /* a piece was lent: nothing more fits */
	bool eliciting;
	unsigned nframes;
};

static void dgb_begin(struct dgb *b, struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	size_t tl = ferry__seal_trailer_len((enum ferry_seal_mode)s->mode);

	memset(&b->tx, 0, sizeof(b->tx));
	b->s = s;
	b->buf = ep->txbuf;
	b->tx.dst = s->peer;
	b->tx.hdr = b->buf;
	b->room = s->path_frame - (uint32_t)tl;
	b->closed = false;
	b->eliciting = false;
	b->nframes = 0;
	/* The short header (2.1). */
	b->buf[0] = (uint8_t)(FERRY_W2_FORM_SHORT | s->mode);
	ferry_wr_u64(b->buf + 1, s->peer_cid);
	ferry_wr_u32(b->buf + 9, (uint32_t)s->sq.next_pn);
	b->len = FERRY_W2_SHORT_HDR_LEN;
}

static uint32_t dgb_left(const struct dgb *b)
{
	return b->closed ? 0 : b->room - b->len;
}

/* A frame header and @body_len copied bytes of @body (may be NULL with
 * @body_len 0), where room was checked. */
static void dgb_put(struct dgb *b, uint8_t type, uint8_t flags,
		    const void *body, uint32_t body_len)
{
	ferry__w2_put_frame_hdr(b->buf + b->len, type, flags,
				(uint16_t)body_len);
	b->len += FERRY_W2_FRAME_HDR_LEN;
	if (body_len)
		memcpy(b->buf + b->len, body, body_len);
	b->len += body_len;
	b->nframes++;
}

/* Seal the datagram and give it to the dataplane: false if the dataplane
 * has no room (nothing was recorded, and the frames stay owed). */
static bool dgb_send(struct dgb *b)
{
	struct ferry_session *s = b->s;
	struct ferry_endpoint *ep = s->ep;
	enum ferry_seal_mode mode = (enum ferry_seal_mode)s->seal;
	uint64_t pn = s->sq.next_pn;
	struct ferry_msgbuf *lent = b->tx.npieces ? b->tx.piece[0].cookie
						  : NULL;
	int n;

	if (b->tx.npieces) {
		struct iovec iov[2] = {
			{ b->buf, b->len },
			{ (void *)b->tx.piece[0].ptr, b->tx.piece[0].len },
		};

		if (ferry__seal_iov(mode, s->key_tx, pn, iov, 2,
				    b->tx.trailer) < 0)
			goto fail;
		b->tx.trailer_len = (uint8_t)ferry__seal_trailer_len(mode);
		b->tx.hdr_len = b->len;
	} else {
		n = ferry__seal(mode, s->key_tx, pn, b->buf,
				FERRY_W2_SHORT_HDR_LEN, b->len);
		if (n < 0)
			goto fail;
		b->tx.hdr_len = (uint32_t)n;
	}
	if (ep->dp_ops->tx_burst(ep->dp, &b->tx, 1) != 1)
		goto fail;
	ferry__sentq_commit(&s->sq, ep->now, ferry_dp_tx_len(&b->tx));
	if (b->eliciting)
		ferry__cc_on_sent(&s->cc, ferry_dp_tx_len(&b->tx), ep->now);
	ep->st.tx_pkts++;
	ep->st.tx_bytes += ferry_dp_tx_len(&b->tx);
	ep->st.tx_frames += b->nframes;
	return true;
fail:
	/* The pn is spent and the frames' calls have moved on: the frames
	 * go on the lost queue, to leave first in the next datagram. */
	if (lent)
		lent->refs--;
	ferry__sentq_commit(&s->sq, ep->now, 0);
	ferry__sentq_unsent(&s->sq);
	return false;
}

/* --- ACK, CREDIT, PING, CLOSE --------------------------------------------- */

static void put_ack(struct dgb *b)
{
	struct ferry_session *s = b->s;
	struct ferry_w2_frame f = { .type = FERRY_W2_ACK };
	int n;

	if (ferry__ackrx_build(&s->ackrx, s->ep->now, &f.u.ack) < 0)
		return;
	n = ferry__w2_put_frame(b->buf + b->len, dgb_left(b), &f);
	if (n < 0)
		return;
	b->len += (uint32_t)n;
	b->nframes++;
	ferry__ackrx_sent(&s->ackrx);
}

static void put_credit(struct dgb *b)
{
	struct ferry_session *s = b->s;
	uint8_t body[4];

	s->credit_adv = s->rx_released + s->rx_window;
	ferry_wr_u32(body, s->credit_adv);
	dgb_put(b, FERRY_W2_CREDIT, 0, body, sizeof(body));
	s->pending &= ~(SF_CREDIT | SF_PONG);
}

/* An ack-eliciting control frame, recorded so that its loss is seen (a
 * PING is never sent again as such: a new one is made when needed). */
static bool put_ping(struct dgb *b)
{
	struct ferry_session *s = b->s;

	if (dgb_left(b) < FERRY_W2_FRAME_HDR_LEN ||
	    !ferry__sentq_add(&s->sq, s, FK_PING, 0, 0))
		return false;
	dgb_put(b, FERRY_W2_PING, 0, NULL, 0);
	b->eliciting = true;
	return true;
}

/* --- data frames ------------------------------------------------------------ */

/* The error body of a server call answered with an error. */
static uint32_t err_body(const struct ferry_call *c, uint8_t *out, size_t cap)
{
	return (uint32_t)ferry__wire_put_error(out, cap, (uint32_t)-c->err,
					      ferry_strerror(c->err));
}

/* The message a call sends (its request, or its response), in bytes:
 * what goes ahead of the payload, then the payload; an error response's
 * body. */
static uint32_t call_msg_len(const struct ferry_call *c)
{
	struct ferry_msgbuf *mb = c->is_server ? c->resp : c->req;
	uint8_t eb[6 + FERRY_ERROR_MSG_MAX];

	if (c->is_push)
		return 0;
	return mb ? mb->len + call_pre_len(c) : err_body(c, eb, sizeof(eb));
}

/* Frame type and flags of @c's message bytes [off, off + n) of @msg_len. */
static void data_kind(const struct ferry_call *c, uint32_t msg_len,
		      uint32_t frag_unit, uint8_t *type, uint8_t *flags,
		      uint32_t *fixed)
{
	bool whole = msg_len <= frag_unit;

	*flags = 0;
	if (c->is_server) {
		*type = whole ? FERRY_W2_RESPONSE : FERRY_W2_RESPONSE_FRAG;
		*fixed = whole ? FERRY_W2_RESPONSE_FIXED
			       : FERRY_W2_RESPONSE_FRAG_FIXED;
		if (!c->resp)
			*flags |= FERRY_W2_F_ERR;
		else if (call_pre_len(c))
			*flags |= FERRY_W2_F_TRACE;
	} else {
		*type = whole ? FERRY_W2_REQUEST : FERRY_W2_REQUEST_FRAG;
		*fixed = whole ? FERRY_W2_REQUEST_FIXED
			       : FERRY_W2_REQUEST_FRAG_FIXED;
		if (c->trace_len)
			*flags |= FERRY_W2_F_TRACE;
		if (c->caps_len)
			*flags |= FERRY_W2_F_CAPS;
	}
}

/* Bytes the data frame of @n message bytes of @c takes in a datagram. */
static uint32_t data_need(const struct ferry_session *s,
			  const struct ferry_call *c, uint32_t n)
{
	uint8_t type, flags;
	uint32_t fixed;

	data_kind(c, call_msg_len(c), s->frag_unit, &type, &flags, &fixed);
	return FERRY_W2_FRAME_HDR_LEN + fixed + n;
}

/*
 * Put bytes [@off, @off + @n) of @c's message in the datagram as one data
 * frame (the whole message when it fits one fragment, else a fragment on
 * the grid).  The caller checked the room (data_need).
 */
static void put_data(struct dgb *b, struct ferry_call *c, uint32_t off,
		     uint32_t n)
{
	struct ferry_session *s = b->s;
	struct ferry_msgbuf *mb = c->is_server ? c->resp : c->req;
	uint32_t msg_len = call_msg_len(c), pre = call_pre_len(c), fixed;
	uint32_t from_pay, pay_off = 0, copy;
	uint8_t type, flags, *p = b->buf + b->len;

	data_kind(c, msg_len, s->frag_unit, &type, &flags, &fixed);
	ferry__w2_put_frame_hdr(p, type, flags, (uint16_t)(fixed + n));
	p += FERRY_W2_FRAME_HDR_LEN;
	p = ferry_wr_u32(p, c->req_id);
	if (!c->is_server)
		p = ferry_wr_u16(p, c->method);
	if (type == FERRY_W2_REQUEST_FRAG || type == FERRY_W2_RESPONSE_FRAG) {
		p = ferry_wr_u32(p, msg_len);
		p = ferry_wr_u32(p, off);
	}
	b->nframes++;
	if (!mb) {
		/* An error body: small, copied whole. */
		p += err_body(c, p, n);
		b->len = (uint32_t)(p - b->buf);
		return;
	}
	/* The prefix part, copied. */
	if (off < pre) {
		copy = pre - off < n ? pre - off : n;
		memcpy(p, c->pre_mb->data + off, copy);
		p += copy;
		from_pay = n - copy;
	} else {
		pay_off = off - pre;
		from_pay = n;
	}
	b->len = (uint32_t)(p - b->buf);
	if (from_pay >= FERRY__TX_COPY_MAX && s->mode != FERRY_W2_MODE_AEAD) {
		/* Lent from the msgbuf: the datagram's one piece, after
		 * which only the trailer may come. */
		b->tx.npieces = 1;
		b->tx.piece[0].ptr = mb->data + pay_off;
		b->tx.piece[0].len = from_pay;
		b->tx.piece[0].cookie = mb;
		mb->refs++; /* the dataplane's, until tx_done */
		b->closed = true;
		return;
	}
	memcpy(p, mb->data + pay_off, from_pay);
	b->len += from_pay;
	s->ep->st.payload_tx_copied += from_pay;
}

/* The byte count of the data frame at @off of @c's message. */
static uint32_t frag_len(const struct ferry_session *s,
			 const struct ferry_call *c, uint32_t off)
{
	uint32_t left = call_msg_len(c) - off;

	return left < s->frag_unit ? left : s->frag_unit;
}

/* The PUSH frame of @c (a client's IOU call): push_id, then its records,
 * built into @body; returns its length. */
static uint32_t push_body(struct ferry_call *c, uint8_t *body, size_t cap)
{
	ferry_wr_u32(body, c->push_id);
	return 4 + ferry__iou_body(c, body + 4, cap - 4);
}

/* Lost frames first, re-encoded from what their call still holds. */
static void put_lost(struct dgb *b)
{
	struct ferry_session *s = b->s;
	const struct ferry__sent_frame *f;
	uint8_t body[4 + FERRY_DP_HDR_MAX];

	while (!b->closed && (f = ferry__sentq_lost_peek(&s->sq)) != NULL) {
		struct ferry__sent_frame fr = *f;
		uint32_t n = 0, need;

		if (!fr.obj || fr.kind == FK_PING) {
			/* Forgotten, or a PING: the timers make a new one
			 * when one is needed. */
			ferry__sentq_lost_pop(&s->sq);
			continue;
		}
		if (fr.kind == FK_PUSH) {
			n = push_body(fr.obj, body, sizeof(body));
			need = FERRY_W2_FRAME_HDR_LEN + n;
		} else {
			need = data_need(s, fr.obj, fr.len);
		}
		if (dgb_left(b) < need || !ferry__sentq_add_lost(&s->sq))
			return;
		if (fr.kind == FK_PUSH)
			dgb_put(b, FERRY_W2_PUSH, 0, body, n);
		else
			put_data(b, fr.obj, fr.off, fr.len);
		/* Still outstanding (unacked unchanged), one datagram on. */
		((struct ferry_call *)fr.obj)->sq_hi = s->sq.next_pn;
		((struct ferry_call *)fr.obj)->sq_fr =
			ferry__sentq_last_frame(&s->sq);
		b->eliciting = true;
		s->ep->st.retransmits++;
	}
}

/*
 * New message bytes from the transmit queue, while credit, the sent queue
 * and the datagram's room last.  *@stalled: credit holds the next frame
 * back (the queue waits for a CREDIT).
 */
static void put_new(struct dgb *b, bool *stalled)
{
	struct ferry_session *s = b->s;
	struct ferry_endpoint *ep = s->ep;
	struct ferry_call *c;

	while (!b->closed && (c = s->txq_head) != NULL) {
		uint32_t msg_len = call_msg_len(c);

		do {
			uint32_t n = frag_len(s, c, c->tx_off);

			if (seq_lt(s->tx_limit, s->tx_sent + n)) {
				ep->st.credit_stalls++;
				s->credit_stalled = true;
				*stalled = true;
				return;
			}
			if (dgb_left(b) < data_need(s, c, n) ||
			    !ferry__sentq_add(&s->sq, c, FK_DATA, c->tx_off, n))
				return;
			put_data(b, c, c->tx_off, n);
			b->eliciting = true;
			call_frame_sent(s, c);
			s->tx_sent += n;
			c->tx_off += n;
		} while (c->tx_off < msg_len && !b->closed);
		if (c->tx_off < msg_len)
			return;
		s->txq_head = c->next;
		if (!s->txq_head)
			s->txq_tail = NULL;
		c->next = NULL;
		if (c->is_server) {
			/* Kept, with its response, until acknowledged. */
			ep->st.resps_sent++;
			c->state = CALL_RESPONDED;
			if (c->unacked == 0)
				ferry__server_call_acked(c);
		} else {
			c->state = CALL_WAITING;
			/* The PUSHes that waited for this call follow it. */
			if (c->n_ious && s->cli.ious_held)
				ferry__iou_call_sent(s, c);
		}
	}
}

/*
 * The queued PUSHes, as many records to a frame as fit.  They may go
 * beyond the peer's credit by push_slack: a server whose window is full
 * of requests waiting for their IOUs must still get the PUSHes those
 * requests wait for, and it holds no PUSH (each is released, and its
 * credit given back, as soon as it is processed).
 */
static void put_pushes(struct dgb *b)
{
	struct ferry_session *s = b->s;
	uint8_t body[4 + FERRY_DP_HDR_MAX];
	struct ferry_call *c;

	while (!b->closed && (c = s->pushq_head) != NULL) {
		uint32_t n;

		ferry__iou_pack(s);
		if (!c->push_id) {
			c->push_id = s->cli.next_push_id;
			s->cli.next_push_id = req_next(s->cli.next_push_id);
		}
		n = push_body(c, body, sizeof(body));
		if (seq_lt(s->tx_limit + s->push_slack, s->tx_sent + n - 4)) {
			s->ep->st.credit_stalls++;
			s->credit_stalled = true;
			return;
		}
		if (dgb_left(b) < FERRY_W2_FRAME_HDR_LEN + n ||
		    !ferry__sentq_add(&s->sq, c, FK_PUSH, 0, n))
			return;
		dgb_put(b, FERRY_W2_PUSH, 0, body, n);
		b->eliciting = true;
		call_frame_sent(s, c);
		s->tx_sent += n - 4;
		s->pushq_head = c->next;
		if (!s->pushq_head)
			s->pushq_tail = NULL;
		c->next = NULL;
		c->state = CALL_WAITING; /* until acknowledged */
	}
}

/* Whether @s has ack-eliciting frames it may send now. */
static bool has_data(const struct ferry_session *s)
{
	if (!ferry__sentq_room(&s->sq))
		return false;
	/* A queue that credit holds back counts: put_new() finds out, and
	 * counts the stall. */
	return (s->pending & SF_PING) || ferry__sentq_lost_peek(&s->sq) ||
	       s->pushq_head || s->txq_head;
}

/*
 * Whether congestion control lets a datagram of data go now (judged for a
 * full path frame); if not, count why once, and if it is the pacer, keep
 * the session on the transmit list until its time (the poll loop sleeps no
 * longer).
 */
static bool cc_allows(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	enum ferry__cc_verdict v = ferry__cc_check(&s->cc, s->path_frame,
						   ep->now);
	bool first = !s->cc_held;
	uint64_t t;

	s->cc_held = v != FERRY__CC_GO;
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

/* Everything open session @s owes, in as few datagrams as it fits.  False
 * if the dataplane is full. */
static bool flush_open(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	bool stalled = false;

	for (;;) {
		struct dgb b;
		bool data = !stalled && has_data(s);

		dgb_begin(&b, s);
		/* An ACK rides along with data, or goes alone when due. */
		if (ferry__ackrx_any(&s->ackrx) &&
		    (data || (s->pending & SF_PONG) ||
		     ferry__ackrx_due(&s->ackrx, ep->now)))
			put_ack(&b);
		if ((s->pending & (SF_CREDIT | SF_PONG)) || credit_owed(s))
			put_credit(&b);
		if ((s->pending & SF_PING) && ferry__sentq_room(&s->sq) &&
		    put_ping(&b))
			s->pending &= ~SF_PING;
		if (data && ferry__sentq_room(&s->sq) && !cc_allows(s)) {
			data = false;
			stalled = true;
		}
		if (data && ferry__sentq_room(&s->sq)) {
			s->pending &= ~SF_PACE;
			put_lost(&b);
			if (!ferry__sentq_lost_peek(&s->sq))
				put_new(&b, &stalled);
			if (!ferry__sentq_lost_peek(&s->sq))
				put_pushes(&b);
		}
		if (b.nframes == 0)
			return true;
		if (!dgb_send(&b))
			return false;
		if (stalled || !has_data(s))
			return true;
	}
}

/* --- handshake datagrams and CLOSE ---------------------------------------- */

/* Bytes as they are (a handshake datagram) to @to; false if the dataplane
 * is full. */
bool ferry__send_raw(struct ferry_endpoint *ep, const struct ferry_addr *to,
		     const void *buf, uint32_t len)
{
	struct ferry_dp_tx tx = { .dst = *to, .hdr = buf, .hdr_len = len };

	if (ep->dp_ops->tx_burst(ep->dp, &tx, 1) != 1)
		return false;
	ep->st.tx_pkts++;
	ep->st.tx_bytes += len;
	return true;
}

/*
 * Whether @len more bytes may go to server session @s's peer.  With
 * `retry never` a CONNECT's address is unproven until the client's first
 * short-header datagram, so what goes there is held to
 * FERRY__UNVALIDATED_FACTOR times what it sent (QUIC's rule, RFC 9000,
 * section 8).  What is held back is counted, and never sent later.
 */
static bool tx_allowed(struct ferry_session *s, uint32_t len)
{
	struct ferry_sess_server *v = &s->srv;

	if (!s->is_server || v->validated || v->confirmed)
		return true;
	if ((uint64_t)v->unval_tx + len >
	    (uint64_t)FERRY__UNVALIDATED_FACTOR * v->unval_rx) {
		s->ep->st.unvalidated_suppressed++;
		return false;
	}
	v->unval_tx += len;
	return true;
}

/* The handshake datagram @s owes.  False if the dataplane is full. */
static bool flush_handshake(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	/* An ACCEPT owed to a session confirmed since (accept_len 0) is
	 * owed no more. */
	if ((s->pending & SF_ACCEPT) && !s->srv.accept_len)
		s->pending &= ~SF_ACCEPT;
	if (s->pending & SF_ACCEPT) {
		if (tx_allowed(s, s->srv.accept_len)) {
			if (!ferry__send_raw(ep, &s->peer, s->srv.accept,
					     s->srv.accept_len))
				return false;
			s->srv.accept_resent = s->srv.accept_sent_ns != 0;
			s->srv.accept_sent_ns = ep->now;
		}
		s->pending &= ~SF_ACCEPT;
	}
	if ((s->pending & SF_CONNECT) && s->cli.hs) {
		int n = ferry__hs_client_build(s->cli.hs, ep->txbuf,
					       ep->txbuf_len);

		if (n > 0 && !ferry__send_raw(ep, &s->peer, ep->txbuf,
					      (uint32_t)n))
			return false;
		s->cli.hs_resent = s->cli.hs_sent_ns != 0;
		s->cli.hs_sent_ns = ep->now;
		s->pending &= ~SF_CONNECT;
	}
	return true;
}

/*
 * Tell the peer we are gone (@flags 0) or that we heard it go
 * (FERRY_W2_F_REPLY), with @code (0: a clean close): best effort, one
 * datagram, sent now, because the session may be reused before the next
 * flush.  A CLOSE that is lost ends the peer's side by its peer timeout.
 */
void ferry__sess_send_close(struct ferry_session *s, uint8_t flags,
			    uint32_t code)
{
	uint8_t body[6 + FERRY_ERROR_MSG_MAX];
	struct dgb b;
	size_t n;

	if (!s->peer_cid || !s->key_tx)
		return;
	n = ferry__wire_put_error(body, sizeof(body), code,
				  code ? ferry_strerror(-(int)code) : "");
	dgb_begin(&b, s);
	if (dgb_left(&b) < FERRY_W2_FRAME_HDR_LEN + n ||
	    !tx_allowed(s, (uint32_t)(FERRY_W2_SHORT_HDR_LEN +
				      FERRY_W2_FRAME_HDR_LEN + n + 16)))
		return;
	dgb_put(&b, FERRY_W2_CLOSE, flags, body, (uint32_t)n);
	dgb_send(&b);
}

/* --- the flush ---------------------------------------------------------------- */

void ferry__flush_sessions(struct ferry_endpoint *ep)
{
	struct ferry_session *s, *next, *tail = ep->active_tail;
	struct ferry_session *keep_head = NULL, *keep_tail = NULL;
	bool full = false;

	s = ep->active_head;
	ep->active_head = ep->active_tail = NULL;
	ep->txq_new = 0;
	ep->pace_ns = 0; /* cc_allows says again who waits for the pacer */
	for (; s; s = next) {
		if (full) {
			/* The dataplane is full: the rest of the list stays
			 * as it is, in order, unwalked (at 10^5 sessions a
			 * walk per poll was most of the poll's time). */
			if (keep_tail)
				keep_tail->next_active = s;
			else
				keep_head = s;
			keep_tail = tail;
			break;
		}
		next = s->next_active;
		s->next_active = NULL;
		s->active = false;
		if (s->state != SESS_FREE)
			full = !flush_handshake(s);
		if (!full && s->state == SESS_OPEN && s->peer_cid)
			full = !flush_open(s);
		if (s->state == SESS_OPEN && !full)
			s->pending &= ~(SF_CREDIT | SF_PONG);
		if (s->state != SESS_FREE &&
		    (full || (s->pending & (SF_CONNECT | SF_ACCEPT | SF_PING |
					    SF_PACE)))) {
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
