/* SPDX-License-Identifier: MIT */
/*
 * Reliability: sequence numbers, acknowledgements, retransmission.
 *
 * Every data packet (a fragment of a request or response) carries a
 * per-session, per-direction sequence number.  The receiver keeps a bitmap
 * of the seqs it has from rx_cum on, drops duplicates, and acknowledges:
 * cumulatively in the `ack` field of every frame it sends, and selectively
 * (a 64-bit SACK of the seqs after rx_cum) in CREDIT frames.  The sender
 * keeps a record of every packet in flight and sends again only what was
 * lost:
 *  - fast retransmit: a packet with three or more SACKed packets after it
 *    is lost, and is sent again once it has been out longer than the
 *    smoothed RTT;
 *  - retransmission timeout: when the oldest packet has waited an RTO
 *    (from measured RTT, RFC 6298, with a floor, doubled per timeout),
 *    it and every hole below the highest SACK are sent again.
 * Congestion control (cc.h) is told every first transmission, every
 * acknowledged or forgotten packet with its RTT sample under the same
 * rules, and every loss (a timeout, or acks that trigger fast
 * retransmit), and gates new data in tx.c.
 * A message stays with its call until all its packets are acknowledged:
 * the client keeps its request until the response arrives, the server
 * keeps its response until the client acknowledges it, which is also how a
 * repeated request gets the response it already had.
 */
#include <string.h>

#include "internal.h"

#define RTO_MIN_NS (4ull * 1000000)   /* above the VM's wake-up jitter */
#define RTO_INIT_NS (20ull * 1000000) /* before the first RTT sample */
#define RTO_MAX_NS (1000ull * 1000000)
#define DUPTHRESH 3 /* SACKed packets after a hole that mark it lost */
/* What a data packet of @len payload bytes weighs for congestion control:
 * its header too, so that a window of small calls is not free. */
#define CC_BYTES(len) ((len) + FERRY_WIRE_HDR_LEN)

void ferry__rel_reset(struct ferry_session *s)
{
	memset(s->txr, 0, (size_t)(s->txr_mask + 1) * sizeof(*s->txr));
	memset(s->rxmap, 0, (size_t)(s->rxmap_mask + 1) / 8);
	s->snd_una = s->tx_seq = s->max_sacked = 0;
	s->srtt_ns = s->rttvar_ns = 0;
	s->rto_ns = RTO_INIT_NS;
	s->rto_backoff = 0;
	s->rx_cum = s->ack_adv = 0;
	s->ack_now = false;
	s->ack_due = 0;
	ferry__rel_cc_reset(s);
}

void ferry__rel_cc_reset(struct ferry_session *s)
{
	/* It starts where credit alone would let it (the record ring full
	 * of packets), so that a path without a queue sees no start-up cost,
	 * and comes down as the delay says.  Before the handshake the
	 * endpoint's own frame size stands for the session's. */
	uint32_t mss = s->max_payload ? CC_BYTES(s->max_payload)
				       : s->ep->cfg.max_frame;
	uint64_t max = (uint64_t)(s->txr_mask + 1) * mss;

	ferry__cc_init(&s->cc, s->ep->cc_algo, mss, max, max,
		       s->ep->cc_headroom_ns);
}

static bool bit_get(const uint64_t *map, uint32_t i)
{
	return map[i >> 6] >> (i & 63) & 1;
}

static void bit_set(uint64_t *map, uint32_t i)
{
	map[i >> 6] |= 1ull << (i & 63);
}

static void bit_clear(uint64_t *map, uint32_t i)
{
	map[i >> 6] &= ~(1ull << (i & 63));
}

enum rel_rx ferry__rel_rx_check(struct ferry_session *s, uint32_t seq)
{
	uint32_t d = seq - s->rx_cum;

	if (d > s->rxmap_mask) {
		/* Below rx_cum: had it.  Far above: beyond what we track;
		 * the sender will send it again. */
		if ((int32_t)d < 0) {
			s->ack_now = true; /* our ack may have been lost */
			return REL_DUP;
		}
		return REL_WINDOW;
	}
	if (bit_get(s->rxmap, seq & s->rxmap_mask)) {
		s->ack_now = true;
		return REL_DUP;
	}
	return REL_NEW;
}

void ferry__rel_rx_commit(struct ferry_session *s, uint32_t seq)
{
	struct ferry_endpoint *ep = s->ep;

	if (seq != s->rx_cum)
		s->ack_now = true; /* a gap: tell the sender which ones */
	bit_set(s->rxmap, seq & s->rxmap_mask);
	while (bit_get(s->rxmap, s->rx_cum & s->rxmap_mask)) {
		bit_clear(s->rxmap, s->rx_cum & s->rxmap_mask);
		s->rx_cum++;
	}
	/* Delayed acknowledgement: a frame going back soon carries it for
	 * free; otherwise a CREDIT goes within a millisecond. */
	if (!s->ack_due)
		s->ack_due = ep->now + 1000000;
	ferry__sess_activate(s);
}

uint64_t ferry__rel_sack(const struct ferry_session *s)
{
	uint64_t sack = 0;

	for (uint32_t i = 0; i < 64 && i < s->rxmap_mask; i++)
		if (bit_get(s->rxmap, (s->rx_cum + 1 + i) & s->rxmap_mask))
			sack |= 1ull << i;
	return sack;
}

void ferry__rel_sent(struct ferry_session *s, uint32_t seq,
		     struct ferry_call *c, uint32_t off, uint32_t len)
{
	struct ferry_txpkt *p = &s->txr[seq & s->txr_mask];

	p->c = c;
	p->off = off;
	p->len = len;
	p->sent_ns = s->ep->now;
	p->retx = 0;
	p->sacked = false;
	c->unacked++;
	ferry__cc_on_sent(&s->cc, CC_BYTES(len), s->ep->now);
}

bool ferry__rel_can_send(const struct ferry_session *s)
{
	/* Never more in flight than the record ring holds. */
	return s->tx_seq - s->snd_una <= s->txr_mask;
}

bool ferry__rel_busy(const struct ferry_session *s)
{
	return s->snd_una != s->tx_seq || s->ack_due;
}

static void rtt_sample(struct ferry_session *s, uint64_t r)
{
	if (s->srtt_ns == 0) {
		s->srtt_ns = r;
		s->rttvar_ns = r / 2;
	} else {
		uint64_t d = s->srtt_ns > r ? s->srtt_ns - r : r - s->srtt_ns;

		s->rttvar_ns = (3 * s->rttvar_ns + d) / 4;
		s->srtt_ns = (7 * s->srtt_ns + r) / 8;
	}
	s->rto_ns = s->srtt_ns + 4 * s->rttvar_ns;
	if (s->rto_ns < RTO_MIN_NS)
		s->rto_ns = RTO_MIN_NS;
	if (s->rto_ns > RTO_MAX_NS)
		s->rto_ns = RTO_MAX_NS;
}

/* The peer has packet @seq: its call may be done with it.  @sample: this
 * packet's arrival is what the ack reports (the newest it covers, or a
 * SACK bit), so its age is a round trip. */
static void pkt_acked(struct ferry_session *s, uint32_t seq, bool sample)
{
	struct ferry_txpkt *p = &s->txr[seq & s->txr_mask];
	struct ferry_call *c = p->c;
	uint64_t r = 0;

	if (!c)
		return;
	p->c = NULL;
	/* Karn: a packet sent twice gives no RTT sample.  Nor does one
	 * acknowledged late because a hole below it held the cumulative
	 * ack back. */
	if (sample && !p->retx && !p->sacked) {
		r = s->ep->now - p->sent_ns;
		rtt_sample(s, r);
	}
	ferry__cc_on_acked(&s->cc, CC_BYTES(p->len), r, s->ep->now);
	if (--c->unacked == 0 && c->is_server && c->state == CALL_RESPONDED)
		ferry__server_call_acked(c);
	else if (c->unacked == 0 && c->is_push && c->state == CALL_WAITING)
		ferry__iou_acked(c);
}

/* Send @seq again; false if it was not. */
static bool resend(struct ferry_session *s, uint32_t seq)
{
	struct ferry_txpkt *p = &s->txr[seq & s->txr_mask];

	if (!p->c || p->sacked)
		return false;
	if (!ferry__emit_data(s, p->c, seq, p->off, p->len))
		return false; /* dataplane full: the next timeout tries again */
	p->sent_ns = s->ep->now;
	p->retx++;
	s->ep->st.retransmits++;
	return true;
}

void ferry__rel_on_ack(struct ferry_session *s, uint32_t ack, uint64_t sack)
{
	uint32_t after = 0;
	bool lost = false;

	/* An ack beyond what we sent is from a confused or hostile peer. */
	if (ack - s->snd_una > s->tx_seq - s->snd_una)
		return;
	if (ack != s->snd_una) {
		s->rto_backoff = 0; /* progress */
		while (s->snd_una != ack) {
			pkt_acked(s, s->snd_una, s->snd_una + 1 == ack);
			s->snd_una++;
		}
	}
	if (seq_lt(s->max_sacked, s->snd_una))
		s->max_sacked = s->snd_una;
	if (!sack)
		return;
	for (uint32_t i = 0; i < 64; i++) {
		uint32_t seq = ack + 1 + i;

		if (!(sack >> i & 1) || !seq_lt(seq, s->tx_seq))
			continue;
		if (s->txr[seq & s->txr_mask].c)
			pkt_acked(s, seq, true);
		s->txr[seq & s->txr_mask].sacked = true;
		if (!seq_lt(seq, s->max_sacked))
			s->max_sacked = seq + 1;
	}
	/* Fast retransmit: walk down from the highest SACK; a hole with
	 * DUPTHRESH SACKed packets above it is lost. */
	for (uint32_t seq = s->max_sacked; seq_lt(s->snd_una, seq);) {
		struct ferry_txpkt *p;

		seq--;
		p = &s->txr[seq & s->txr_mask];
		if (p->sacked || !p->c) {
			after++;
			continue;
		}
		if (after >= DUPTHRESH &&
		    s->ep->now - p->sent_ns >
			    (s->srtt_ns ? s->srtt_ns : RTO_MIN_NS / 2))
			lost |= resend(s, seq);
	}
	if (lost)
		ferry__cc_on_loss(&s->cc, false, s->ep->now);
}

void ferry__rel_forget_call(struct ferry_session *s, struct ferry_call *c)
{
	/* A call's packets are consecutive seqs from seq0; forget them so a
	 * late ack or timeout never touches the freed call. */
	for (uint32_t seq = c->seq0; c->unacked && seq_lt(seq, s->tx_seq);
	     seq++) {
		struct ferry_txpkt *p = &s->txr[seq & s->txr_mask];

		if (p->c == c) {
			p->c = NULL;
			c->unacked--;
			ferry__cc_on_forgot(&s->cc, CC_BYTES(p->len));
		}
	}
	c->unacked = 0;
}

void ferry__rel_timers(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_txpkt *p;
	uint64_t rto;

	/* Skip the acknowledged and forgotten at the front. */
	while (s->snd_una != s->tx_seq && !s->txr[s->snd_una & s->txr_mask].c)
		s->snd_una++;
	if (s->snd_una == s->tx_seq)
		return;
	p = &s->txr[s->snd_una & s->txr_mask];
	rto = s->rto_ns << (s->rto_backoff < 6 ? s->rto_backoff : 6);
	if (rto > RTO_MAX_NS)
		rto = RTO_MAX_NS;
	if (ep->now - p->sent_ns < rto)
		return;
	/* Timeout: every packet unacknowledged (and not SACKed) for an RTO
	 * is lost: the oldest, the holes below the highest SACK, and a run
	 * the receiver dropped whole (out of buffers, say). */
	s->rto_backoff++;
	ferry__cc_on_loss(&s->cc, true, ep->now);
	for (uint32_t seq = s->snd_una; seq_lt(seq, s->tx_seq); seq++) {
		p = &s->txr[seq & s->txr_mask];
		if (!p->c || p->sacked || ep->now - p->sent_ns < rto)
			continue;
		resend(s, seq);
	}
}
