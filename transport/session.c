/* SPDX-License-Identifier: MIT */
/*
 * Sessions, what both roles share: a session's slot in the endpoint's
 * table, its end, and its timers (liveness, retransmission, and each
 * role's own: client.c, server.c).
 *
 * A session is freed when its last reference drops: the application's
 * handle on a client, and on a server every call still unanswered.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

struct ferry_session *ferry__sess_alloc(struct ferry_endpoint *ep, bool server)
{
	for (uint32_t i = 0; i < ep->nsessions; i++) {
		struct ferry_session *s = &ep->sessions[i];
		struct ferry_call **slots = s->slots;
		uint32_t mask = s->slot_mask;

		/* A session still on the transmit list is reused only after
		 * the flush has taken it off. */
		if (s->state != SESS_FREE || s->active)
			continue;
		struct ferry_txpkt *txr = s->txr;
		uint64_t *rxmap = s->rxmap;
		uint32_t txr_mask = s->txr_mask, rxmap_mask = s->rxmap_mask;

		memset(s, 0, sizeof(*s));
		s->slots = slots;
		s->slot_mask = mask;
		s->txr = txr;
		s->txr_mask = txr_mask;
		s->rxmap = rxmap;
		s->rxmap_mask = rxmap_mask;
		s->ep = ep;
		ferry__rel_reset(s);
		s->last_rx_ns = s->last_ping_ns = ep->now;
		if (++ep->sess_gen == 0)
			ep->sess_gen = 1;
		s->id = (uint32_t)ep->sess_gen << 16 | i;
		s->is_server = server;
		s->refs = 1;
		if (server)
			s->srv.next_dispatch = 1;
		else
			s->cli.next_req = 1;
		s->rx_window = ep->cfg.session_credits;
		s->credit_adv = s->rx_window;
		s->max_payload = ep->cfg.max_frame - FERRY_WIRE_HDR_LEN;
		s->peer_max_msg = FERRY_WIRE_MAX_MSG;
		return s;
	}
	return NULL;
}

void ferry__sess_unref(struct ferry_session *s)
{
	if (--s->refs > 0)
		return;
	s->state = SESS_FREE;
}

int ferry_session_is_open(const struct ferry_session *s)
{
	return s && s->state == SESS_OPEN;
}

void ferry__sess_end(struct ferry_session *s, int res, bool tell_peer)
{
	struct ferry_endpoint *ep = s->ep;
	bool was_connecting = s->state == SESS_CONNECTING;

	if (s->state != SESS_CONNECTING && s->state != SESS_OPEN)
		return;
	s->state = SESS_CLOSED;
	s->end_res = res;
	if (ep->tops && s->span) {
		int how = FERRY_SPAN_END_ERROR;

		/* Either side closing is a clean end; the rest are not. */
		if (ep->destroying)
			how = FERRY_SPAN_END_SHUTDOWN;
		else if (res == 0 || res == -ECANCELED || res == -ECONNRESET)
			how = FERRY_SPAN_END_CLOSE;
		else if (res == -ETIMEDOUT && !was_connecting)
			how = FERRY_SPAN_END_PEER_DEAD;
		ep->tops->session_end(ep->tring, s->span, how,
				      how == FERRY_SPAN_END_CLOSE ? 0 : res,
				      NULL);
		s->span = FERRY_SPAN_NONE;
	}
	s->pending = 0;
	/* Before the calls end: their IOUs need not wait for them. */
	if (s->is_server)
		ferry__iou_server_sess_end(s);
	else
		ferry__iou_client_sess_end(s);
	if (tell_peer)
		ferry__sess_send_close(s, 0);
	ep->st.sessions_closed++;
	if (s->is_server)
		ferry__server_sess_end(s, res);
	else
		ferry__client_sess_end(s, res, was_connecting);
}

void ferry__session_timers(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	uint64_t idle;

	if (s->state == SESS_CONNECTING)
		ferry__client_connecting_timers(s);
	if (s->state != SESS_OPEN)
		return;
	if (s->is_server) {
		ferry__server_timers(s);
		if (s->state != SESS_OPEN)
			return;
	}
	/* A peer silent for peer_timeout_ms is gone: every call ends. */
	idle = ep->now - s->last_rx_ns;
	if (idle >= ep->cfg.peer_timeout_ms * 1000000ull) {
		ep->st.peers_dead++;
		ferry__sess_end(s, -ETIMEDOUT, true);
		return;
	}
	/* Quiet for a keepalive interval: ask.  Any frame back counts. */
	if (idle >= ep->cfg.keepalive_ms * 1000000ull &&
	    ep->now - s->last_ping_ns >= ep->cfg.keepalive_ms * 1000000ull) {
		s->last_ping_ns = ep->now;
		s->pending |= SF_PING;
		ep->st.keepalives++;
		ferry__sess_activate(s);
	}
	/* Held back by credit for a whole RTO: the CREDIT that would free
	 * us may have been lost, and a PING's answer carries the credit. */
	if ((s->txq_head || s->pushq_head) &&
	    !seq_lt(s->tx_seq, s->tx_credit) &&
	    ep->now - s->last_ping_ns >= s->rto_ns) {
		s->last_ping_ns = ep->now;
		s->pending |= SF_PING;
		ferry__sess_activate(s);
	}
	ferry__rel_timers(s);
	ferry__reasm_timers(s);
	if (s->state != SESS_OPEN)
		return; /* a client's continuation closed it */
	if (s->is_server) {
		ferry__iou_timers(s);
		if (s->state != SESS_OPEN)
			return;
	}
	if (s->ack_due && ep->now >= s->ack_due)
		ferry__sess_activate(s);
	if (!s->is_server)
		ferry__client_call_timers(s);
}

void ferry_session_set_data(struct ferry_session *s, void *data)
{
	s->user_data = data;
}

void *ferry_session_data(const struct ferry_session *s)
{
	return s->user_data;
}
