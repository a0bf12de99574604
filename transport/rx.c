/* SPDX-License-Identifier: MIT */
/*
 * The receive path (docs/wire.md, 2.4 and 5): each datagram is told
 * apart by its first byte; handshake datagrams go to handshake.c through
 * the client or server side (client.c, server.c), short-header datagrams
 * through rules 1 to 8 (rxopen.c) and then frame by frame: ACK to the
 * sent queue, CREDIT, PING, CLOSE, and the data frames to their role.
 *
 * The roles keep their v1 logic: a data frame is handed to them as the
 * struct ferry_frame they always took (req_id, method, msg_len, offset,
 * flags, bytes), and they say whether they took it, found it a duplicate,
 * or could not take it now (no buffer): then the datagram is not
 * acknowledged, and its frames come again (5.2).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "rd.h"
#include "rxopen.h"

/* --- the acknowledgement callback ----------------------------------------- */

/* The peer has frame @f of a datagram we sent. */
static void frame_acked(void *ctx, const struct ferry__sent_frame *f)
{
	struct ferry_call *c;

	switch (f->kind) {
	case FK_DATA:
		c = f->obj;
		if (--c->unacked == 0 && c->is_server &&
		    c->state == CALL_RESPONDED)
			ferry__server_call_acked(c);
		break;
	case FK_PUSH:
		c = f->obj;
		if (--c->unacked == 0 && c->state == CALL_WAITING)
			ferry__iou_acked(c);
		break;
	default:
		break;
	}
	(void)ctx;
}

/* --- data frames ------------------------------------------------------------ */

/* Today's frame of a v2 data frame, for the roles' receive paths. */
static void frame_of(const struct ferry_session *s,
		     const struct ferry_w2_frame *w, struct ferry_frame *f)
{
	const struct ferry_w2_data *d = &w->u.data;
	bool frag = w->type == FERRY_W2_REQUEST_FRAG ||
		    w->type == FERRY_W2_RESPONSE_FRAG;
	bool req = w->type == FERRY_W2_REQUEST ||
		   w->type == FERRY_W2_REQUEST_FRAG;

	memset(f, 0, sizeof(*f));
	f->h.type = req ? FERRY_FT_REQUEST : FERRY_FT_RESPONSE;
	f->h.req_id = d->req_id;
	f->h.method = d->method;
	f->h.msg_len = frag ? d->msg_len : d->bytes_len;
	f->h.frag_off = frag ? d->offset : 0;
	if (req && (w->flags & FERRY_W2_F_CAPS))
		f->h.flags |= FERRY_FF_CAPS;
	if (w->flags & FERRY_W2_F_TRACE)
		f->h.flags |= FERRY_FF_TRACE;
	if (!req && (w->flags & FERRY_W2_F_ERR))
		f->h.flags |= FERRY_FF_ERR;
	f->payload = d->bytes;
	f->pay_len = d->bytes_len;
	if (!req) {
		/* v2 does not echo the method: the call has it. */
		const struct ferry_call *c = s->slots[d->req_id & s->slot_mask];

		if (c && c->req_id == d->req_id)
			f->h.method = c->method;
	}
}

/* A PUSH frame: the first of its push_id, or a copy of one taken
 * (docs/wire.md, 5.4). */
static bool push_dup(struct ferry_session *s, uint32_t id)
{
	struct ferry_sess_server *v = &s->srv;
	uint32_t d = id - v->push_hi;

	if (d == 0 || (int32_t)d < 0)
		return true;
	if (d > 64)
		return false; /* far ahead: taken, the map forgets */
	return v->push_map >> (d - 1) & 1;
}

static void push_mark(struct ferry_session *s, uint32_t id)
{
	struct ferry_sess_server *v = &s->srv;
	uint32_t d = id - v->push_hi;

	if (d > 64) {
		v->push_hi = id - 64;
		v->push_map = 0;
		d = 64;
	}
	v->push_map |= 1ull << (d - 1);
	/* Slide over what is now contiguous. */
	while (v->push_map & 1) {
		v->push_map >>= 1;
		v->push_hi++;
	}
}

/* --- the frame loop ---------------------------------------------------------- */

#define RX_FRAMES_KEPT 68

struct dg_state {
	const struct ferry_dp_pkt *pkt;
	bool keep;      /* a request reads the datagram in place */
	bool eliciting;
	bool all_taken;
	bool new_data;  /* some data frame was not a duplicate */
	bool any_data;
	bool immediate; /* a PING */
	unsigned ndata;
};

/* Protocol error from an authenticated peer (rule 10): the session
 * ends with FERRY_EPROTO, and the peer is told. */
static void proto_error(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	ep->st.drop_malformed++;
	ep->st.sessions_proto_error++;
	ferry__sess_send_close(s, 0, FERRY_EPROTO);
	ferry__sess_end(s, -FERRY_EPROTO, false);
}

static void rx_data(struct ferry_session *s, const struct ferry_w2_frame *w,
		    struct dg_state *st)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_frame f;
	bool req = w->type == FERRY_W2_REQUEST ||
		   w->type == FERRY_W2_REQUEST_FRAG;
	bool kept;
	uint32_t sid;
	int r;

	st->eliciting = true;
	st->any_data = true;
	if (req != s->is_server) {
		/* Requests go to servers, responses to clients. */
		proto_error(s);
		return;
	}
	frame_of(s, w, &f);
	/* In place only when the datagram holds this one data frame: a
	 * buffer several calls share must not wait on the slowest; and
	 * while receive buffers are plenty (msgbuf.c, views_keep_max). */
	ep->rx_may_keep = st->ndata == 1 && !st->keep &&
			  ep->views_held < ep->views_keep_max;
	kept = st->keep;
	sid = s->id;
	r = req ? ferry__server_rx_request(s, &f, st->pkt, &st->keep)
		: ferry__client_rx_response(s, &f);
	ep->rx_may_keep = false;
	/* Kept in place: the view now owns the datagram's release, even if
	 * a later frame ends the session before the datagram's end. */
	if (st->keep)
		ep->rx_kept = true;
	/* Bytes taken and not kept in place hold no memory of ours any
	 * more (copied, or read by the continuation): credit them now.  A
	 * view credits them when it is freed. */
	if (r == RXD_TAKEN && st->keep == kept)
		ferry__sess_credit_release(ep, sid, f.pay_len);
	if (r == RXD_NOT_TAKEN) {
		st->all_taken = false;
		return;
	}
	if (r == RXD_DUP) {
		ep->st.drop_duplicate++;
		return;
	}
	st->new_data = true;
}

static void rx_push(struct ferry_session *s, const struct ferry_w2_frame *w,
		    struct dg_state *st)
{
	struct ferry_frame f;

	st->eliciting = true;
	st->any_data = true;
	if (!s->is_server) {
		proto_error(s);
		return;
	}
	if (push_dup(s, w->u.push.push_id)) {
		s->ep->st.drop_duplicate++;
		return;
	}
	push_mark(s, w->u.push.push_id);
	memset(&f, 0, sizeof(f));
	f.h.type = FERRY_FT_PUSH;
	f.h.msg_len = w->u.push.recs_len;
	f.payload = w->u.push.recs;
	f.pay_len = w->u.push.recs_len;
	ferry__iou_rx_push(s, &f);
	/* Processed: its bytes hold no memory. */
	ferry__sess_credit_release(s->ep, s->id, w->u.push.recs_len);
	st->new_data = true;
}

static void rx_close(struct ferry_session *s, const struct ferry_w2_frame *w)
{
	uint32_t code = w->u.err.code;

	if (w->flags & FERRY_W2_F_REPLY)
		return; /* our CLOSE was heard */
	ferry__sess_send_close(s, FERRY_W2_F_REPLY, 0);
	ferry__sess_end(s, code ? -(int)code : -ECONNRESET, false);
}

static void rx_ack(struct ferry_session *s, const struct ferry_w2_frame *w)
{
	struct ferry_endpoint *ep = s->ep;
	uint64_t lost0 = s->sq.lost_dgrams;
	uint64_t acked_b = s->sq.acked_bytes, lost_b = s->sq.lost_bytes;
	int n = ferry__sentq_on_ack(&s->sq, &w->u.ack, ep->now, frame_acked, s);

	if (n < 0) {
		proto_error(s); /* acknowledges what was never sent */
		return;
	}
	ep->st.lost_datagrams += s->sq.lost_dgrams - lost0;
	if (n > 0)
		ferry__rel_peer_progress(s);
	if (s->state == SESS_OPEN)
		ferry__rel_cc_feed(s, acked_b, lost_b, false);
	if (s->state == SESS_OPEN &&
	    (ferry__sentq_lost_peek(&s->sq) || s->txq_head || s->pushq_head))
		ferry__sess_activate(s);
}

/* One frame of an opened datagram; false once the session has ended (a
 * CLOSE, or a handler or continuation that ended it): the rest of the
 * datagram is not for it any more. */
static bool rx_frame(struct ferry_session *s, uint32_t sid,
		     const struct ferry_w2_frame *w, struct dg_state *st)
{
	struct ferry_endpoint *ep = s->ep;

	if (s->id != sid || s->state != SESS_OPEN)
		return false;
	ep->st.rx_frames++;
	switch (w->type) {
	case FERRY_W2_ACK:
		rx_ack(s, w);
		break;
	case FERRY_W2_CREDIT:
		if (seq_lt(s->tx_limit, w->u.credit_limit)) {
			s->tx_limit = w->u.credit_limit;
			s->credit_pings = 0;
			s->credit_stalled = false;
			if (s->txq_head || s->pushq_head)
				ferry__sess_activate(s);
		}
		break;
	case FERRY_W2_PING:
		st->eliciting = true;
		st->immediate = true;
		s->pending |= SF_PONG;
		ferry__sess_activate(s);
		break;
	case FERRY_W2_CLOSE:
		st->eliciting = true;
		rx_close(s, w);
		return false;
	case FERRY_W2_REQUEST:
	case FERRY_W2_REQUEST_FRAG:
	case FERRY_W2_RESPONSE:
	case FERRY_W2_RESPONSE_FRAG:
		rx_data(s, w, st);
		if (ep->txq_new >= ep->pipe_chunk)
			ferry__flush_sessions(ep);
		break;
	case FERRY_W2_PUSH:
		rx_push(s, w, st);
		break;
	default:
		break; /* PADDING, ignorable extensions */
	}
	return true;
}

static bool is_data(const struct ferry_w2_frame *w)
{
	return w->type >= FERRY_W2_REQUEST && w->type <= FERRY_W2_RESPONSE_FRAG;
}

/* The frames of @rd, in order: from @fr, where rule 7 kept them all
 * decoded (@nfr of them), else decoded again one by one. */
static void rx_frames(struct ferry_session *s, const struct ferry__rx_dgram *rd,
		      const struct ferry_w2_frame *fr, unsigned nfr,
		      struct dg_state *st)
{
	uint32_t sid = s->id;
	struct ferry_w2_iter it;
	struct ferry_w2_frame w;

	/* Data frames first counted, up to two: whether the one there is
	 * may be read in place. */
	if (rd->nframes <= nfr) {
		for (unsigned i = 0; i < rd->nframes && st->ndata < 2; i++)
			st->ndata += is_data(&fr[i]);
		for (unsigned i = 0; i < rd->nframes; i++)
			if (!rx_frame(s, sid, &fr[i], st))
				return;
		return;
	}
	ferry__w2_iter_init(&it, &rd->d);
	while (st->ndata < 2 && ferry__w2_iter_next(&it, &w) == 1)
		st->ndata += is_data(&w);
	ferry__w2_iter_init(&it, &rd->d);
	while (ferry__w2_iter_next(&it, &w) == 1)
		if (!rx_frame(s, sid, &w, st))
			return;
}

/* A datagram of an established session, from rule 1 to the last frame. */
static void rx_short(struct ferry_endpoint *ep, const struct ferry_dp_pkt *pkt)
{
	/* Rule 7 decodes every frame; this many are kept, decoded, for the
	 * frame loop (64 calls, an ACK, a CREDIT; 11 KiB of stack). */
	struct ferry_w2_frame fr[RX_FRAMES_KEPT];
	struct dg_state st = { .pkt = pkt, .all_taken = true };
	struct ferry__rx_dgram rd;
	struct ferry_session *s;
	enum ferry__rx_res r;
	unsigned flags = 0;
	uint32_t sid;

	r = ferry__rx_open(pkt->data, pkt->len, ep->cfg.max_frame, &pkt->src,
			   &ep->cids, ferry__rx_sess_of, ep, &rd, fr,
			   RX_FRAMES_KEPT);
	if (r != FERRY_RX_OK) {
		if (r == FERRY_RX_PROTO) {
			s = &ep->sessions[rd.sess];
			if (s->state == SESS_OPEN) {
				proto_error(s);
				return;
			}
		}
		ferry__stat_inc(ep, ferry__rx_res_counter(r));
		return;
	}
	s = &ep->sessions[rd.sess];
	if (s->state != SESS_OPEN) {
		ep->st.drop_stale++;
		return;
	}
	sid = s->id;
	s->last_rx_ns = ep->now;
	/* An ACK it may now owe, acknowledgements that move its RTO. */
	ferry__sess_touch(s);
	if (s->is_server && !s->srv.confirmed)
		ferry__server_confirm(s);
	rx_frames(s, &rd, fr, RX_FRAMES_KEPT, &st);
	if (s->id != sid || s->state != SESS_OPEN)
		return;
	if (st.eliciting)
		flags |= FERRY_ACKRX_ELICITING;
	if (st.all_taken)
		flags |= FERRY_ACKRX_ACKABLE;
	if (st.immediate || (st.any_data && !st.new_data && st.all_taken))
		flags |= FERRY_ACKRX_IMMEDIATE;
	ferry__ackrx_on_dgram(&s->ackrx, rd.pn, flags, ep->now,
			      FERRY__MAX_ACK_DELAY_NS);
	if (ferry__ackrx_any(&s->ackrx))
		ferry__sess_activate(s);
}

/* --- the demultiplexer ------------------------------------------------------- */

void ferry__rx_dgram(struct ferry_endpoint *ep, const struct ferry_dp_pkt *pkt)
{
	uint32_t n;
	uint8_t first;

	ep->st.rx_pkts++;
	ep->st.rx_bytes += pkt->len;
	ep->rx_kept = false;
	ep->rx_busy = true;
	ep->rx_cur_id = pkt->id;
	if (pkt->len == 0) {
		ep->st.drop_truncated++;
	} else if (pkt->len > ep->cfg.max_frame) {
		ep->st.drop_oversized++;
	} else {
		first = pkt->data[0];
		if (ferry__w2_is_short(first))
			rx_short(ep, pkt);
		else if (ferry__w2_is_long(first) || first == FERRY_W2_V1_FIRST)
			ferry__rx_handshake(ep, pkt);
		else
			ep->st.drop_bad_magic++;
	}
	/* A request read in place may have been answered, and its view
	 * freed, while later frames of its datagram were still to be read:
	 * its buffer goes back only now (msgbuf.c, view_release). */
	ep->rx_busy = false;
	n = ep->rx_deferred + !ep->rx_kept;
	ep->rx_deferred = 0;
	while (n--)
		ep->dp_ops->rx_release(ep->dp, pkt->id);
}
