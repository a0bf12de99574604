/* SPDX-License-Identifier: MIT */
/*
 * Reliability, session side (docs/wire.md, 5.1 to 5.3): the glue between
 * a session and its replay window (seal.c), its acknowledgement tracker
 * (ackrx.c) and its sent queue (sentq.c), over the memory the endpoint
 * gives each session (endpoint.c, tables_alloc) and the rings the sent
 * queue borrows from the endpoint's pool while it has something in flight;
 * and the timers that judge
 * datagrams lost and see ACKs out on time.
 *
 * A message stays with its call until every frame of it is acknowledged:
 * the client keeps its request until the response arrives, the server
 * keeps its response until the client acknowledges it, which is also how a
 * repeated request finds the response it already had.
 */
#include <string.h>

#include "internal.h"

void ferry__rel_reset(struct ferry_session *s, uint64_t first_pn)
{
	struct ferry_endpoint *ep = s->ep;
	size_t i = (size_t)(s - ep->sessions);
	size_t words = FERRY_REPLAY_WORDS(FERRY__REPLAY_LOG2);

	ferry__replay_init(&s->seen, FERRY__REPLAY_LOG2,
			   ep->seen_mem + i * words);
	ferry__ackrx_init(&s->ackrx, FERRY__REPLAY_LOG2,
			  ep->acked_mem + i * words);
	ferry__sentq_init_pooled(&s->sq, &ep->sq_pool, first_pn);
}

void ferry__rel_forget_call(struct ferry_session *s, struct ferry_call *c)
{
	/* One frame outstanding, where it was sent (a call of one datagram's
	 * size whose client reused its slot before its ACK came): no scan. */
	if (c->unacked == 1 &&
	    ferry__sentq_forget_at(&s->sq, c, c->sq_hi, c->sq_fr))
		c->unacked = 0;
	if (c->unacked)
		ferry__sentq_forget_range(&s->sq, c, c->sq_lo, c->sq_hi);
	c->unacked = 0;
}

void ferry__rel_cc_reset(struct ferry_session *s)
{
	/* It starts where credit and the sent queue alone would let it, so
	 * that a path without a queue sees no start-up cost, and comes down
	 * as the delay says.  Before the handshake the endpoint's own frame
	 * size stands for the session's. */
	uint32_t mss = s->path_frame ? s->path_frame : s->ep->cfg.max_frame;
	/* The most the sent queue's rings grow to hold (sentq.h). */
	uint64_t max = ((uint64_t)1 << s->ep->sq_log2) * mss;

	ferry__cc_init(&s->cc, s->ep->cc_algo, mss, max, max,
		       s->ep->cc_target_ns);
}

/* What the sent queue learnt since @acked0 / @lost0 bytes, for congestion
 * control: acknowledged bytes with the RTT sample of the ACK, losses. */
void ferry__rel_cc_feed(struct ferry_session *s, uint64_t acked0,
			uint64_t lost0, bool timeout)
{
	struct ferry_endpoint *ep = s->ep;
	uint64_t acked = s->sq.acked_bytes - acked0;
	uint64_t lost = s->sq.lost_bytes - lost0;

	if (acked)
		ferry__cc_on_acked(&s->cc, (uint32_t)acked,
				   s->sq.last_sample_ns, ep->now);
	if (lost) {
		/* They left the network; their frames go again as new
		 * bytes. */
		ferry__cc_on_forgot(&s->cc, (uint32_t)lost);
		ferry__cc_on_loss(&s->cc, timeout, ep->now);
	}
}

uint64_t ferry__rel_rto(const struct ferry_session *s)
{
	return ferry__sentq_rto(&s->sq);
}

/*
 * Peer progress.  Sessions to one peer address reach one receive queue
 * there, read in order; what the peer acknowledged on any of them says how
 * far through that queue it is.  One slot per address hash, taken over by
 * another address only once its owner has been quiet for
 * FERRY__PEER_STALE_NS: a peer can only ever hold back the timeouts of
 * sessions to itself (and then by at most FERRY_SENTQ_HOLD_MAX_NS).
 */
#define FERRY__PEER_STALE_NS (1000ull * 1000000)

static struct ferry__peer_progress *peer_slot(struct ferry_endpoint *ep,
					      const struct ferry_addr *a)
{
	uint64_t h = ((uint64_t)a->ip << 16 | a->port) * 0x9e3779b97f4a7c15ull;

	return &ep->peers[h >> (64 - FERRY__PEERS_LOG2)];
}

void ferry__rel_peer_progress(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry__peer_progress *p = peer_slot(ep, &s->peer);

	if (!ferry_addr_eq(&p->addr, &s->peer)) {
		if (p->progress_ns &&
		    ep->now - p->progress_ns < FERRY__PEER_STALE_NS)
			return;
		p->addr = s->peer;
		p->acked_sent_ns = 0;
	}
	p->progress_ns = ep->now;
	if (s->sq.acked_sent_ns > p->acked_sent_ns)
		p->acked_sent_ns = s->sq.acked_sent_ns;
}

/* What @s's peer showed, into @v; NULL when its slot is another's. */
static const struct ferry__sentq_peer *peer_view(struct ferry_session *s,
						 struct ferry__sentq_peer *v)
{
	struct ferry__peer_progress *p = peer_slot(s->ep, &s->peer);

	if (!ferry_addr_eq(&p->addr, &s->peer))
		return NULL;
	v->acked_sent_ns = p->acked_sent_ns;
	v->progress_ns = p->progress_ns;
	v->read_up_ns = s->ep->read_up_ns;
	return v;
}

bool ferry__rel_busy(const struct ferry_session *s)
{
	return s->sq.in_flight || ferry__ackrx_any(&s->ackrx);
}

void ferry__rel_timers(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	uint64_t lost0 = s->sq.lost_dgrams, rto0 = s->sq.rto_fired;
	uint64_t held0 = s->sq.rto_held;
	uint64_t t = ferry__sentq_deadline(&s->sq);

	if (t && ep->now >= t) {
		uint64_t acked_b = s->sq.acked_bytes, lost_b = s->sq.lost_bytes;
		struct ferry__sentq_peer v;

		ferry__sentq_timer(&s->sq, ep->now, peer_view(s, &v));
		ep->st.lost_datagrams += s->sq.lost_dgrams - lost0;
		ep->st.rto_fired += s->sq.rto_fired - rto0;
		ep->st.rto_held += s->sq.rto_held - held0;
		ferry__rel_cc_feed(s, acked_b, lost_b,
				   s->sq.rto_fired != rto0);
		if (ferry__sentq_lost_peek(&s->sq))
			ferry__sess_activate(s);
	}
	if (ferry__ackrx_due(&s->ackrx, ep->now))
		ferry__sess_activate(s);
}
