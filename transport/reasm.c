/* SPDX-License-Identifier: MIT */
/*
 * Reassembly: a message that arrives in several fragments is copied into
 * a pool msgbuf, for either role (server.c for requests, client.c for
 * responses), under rules no peer can confuse (docs/wire.md, 5.6).
 *
 * The grid.  A sender cuts a message into fragments of the session's
 * frag_unit, each full-sized but the last, so fragment k starts at
 * k * unit and carries min(unit, msg_len - k * unit) bytes.  A fragment
 * that does not fit the grid ends the message with a protocol error; one
 * whose place is already filled is a retransmitted copy, and is dropped as
 * a duplicate.  A bit per grid place, in the buffer's own map
 * (struct ferry_msgbuf's rmap, sized with the pool), says what arrived;
 * the places tile the message exactly, so the byte count reaches msg_len
 * only when every byte was written once, and no byte of the buffer's
 * earlier use can be handed up.
 *
 * Damage in transit.  Every v2 frame has its own length and every
 * datagram a trailer, so a datagram cut short never reaches reassembly.
 *
 * The bounds.  Buffers of incomplete messages are charged to their
 * session by buffer size, up to reasm_quota: beyond it a first fragment is
 * not taken (flow control, as when the pool is empty; incomplete messages
 * end by completing or by their deadline, so room always comes back).  A
 * message with no new fragment for reasm_timeout_ms is dropped and its
 * call ends with -ETIMEDOUT.  So no peer can pin buffers for long, nor
 * more of them than the quota, and every call ends.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int ferry__reasm_fits(struct ferry_session *s, const struct ferry_frame *f)
{
	uint32_t unit = s->frag_unit;
	uint32_t off = f->h.frag_off;
	/* The parser saw to off + pay_len <= msg_len and pay_len > 0, so
	 * at least one byte is left from off. */
	uint32_t left = f->h.msg_len - off;

	if (off % unit != 0 || f->pay_len != (left < unit ? left : unit)) {
		s->ep->st.reasm_off_grid++;
		return -FERRY_EPROTO;
	}
	return 0;
}

/* A buffer for a message of @len bytes, if the pool and the session's
 * quota (charged by the buffer's size) can hold it: 0, -EMSGSIZE if they
 * never can, -ENOBUFS or -EAGAIN if not now (counted). */
static int reasm_buf(struct ferry_session *s, uint32_t len,
		     struct ferry_msgbuf **out)
{
	struct ferry_endpoint *ep = s->ep;
	uint64_t quota = ep->cfg.reasm_quota;
	uint32_t fit = ferry__pool_fit(ep, len);
	struct ferry_msgbuf *mb;
	int ret;

	if (!fit || len > ep->cfg.max_msg)
		return -EMSGSIZE;
	if (fit > quota) {
		/* Not even alone: waiting would not help. */
		ep->st.reasm_quota_refused++;
		return -EMSGSIZE;
	}
	ret = ferry_msgbuf_alloc(ep, len, &mb);
	if (ret < 0) {
		ep->st.msgbuf_alloc_fail++;
		return ret;
	}
	/* Charged by what it holds, not by what it was asked for: a message
	 * of one byte in an 8 MiB buffer (its class was empty) costs 8 MiB. */
	if (s->reasm_bytes + mb->cap > quota) {
		ferry__msgbuf_put(mb);
		ep->st.reasm_quota_refused++;
		return -EAGAIN;
	}
	ep->st.msgbuf_allocs++;
	*out = mb;
	return 0;
}

int ferry__reasm_start(struct ferry_session *s, struct ferry_call *c,
		       uint32_t msg_len, struct ferry_msgbuf **out)
{
	struct ferry_endpoint *ep = s->ep;
	uint32_t units = (msg_len + s->frag_unit - 1) / s->frag_unit;
	struct ferry_msgbuf *mb;
	int ret = reasm_buf(s, msg_len, &mb);

	if (ret < 0)
		return ret;
	memset(mb->rmap, 0, (size_t)(units + 63) / 64 * sizeof(uint64_t));
	c->rx_charge = mb->cap;
	c->rx_last_ns = ep->now;
	s->reasm_bytes += mb->cap;
	s->reasm_n++;
	/* The earliest deadline can only move later (fragments push it), so
	 * the timer looks again then and finds the true one. */
	if (!s->reasm_next_ns ||
	    ep->now + ep->cfg.reasm_timeout_ms * 1000000ull < s->reasm_next_ns)
		s->reasm_next_ns = ep->now +
				   ep->cfg.reasm_timeout_ms * 1000000ull;
	ferry__sess_touch(s);
	*out = mb;
	return 0;
}

int ferry__reasm_whole(struct ferry_session *s, struct ferry_call *c,
		       const struct ferry_frame *f, struct ferry_msgbuf **out)
{
	struct ferry_msgbuf *mb;
	int ret;

	/* Larger than a fragment: off the grid, as reasm_fits says. */
	if (f->pay_len > s->frag_unit)
		return ferry__reasm_fits(s, f);
	/* The quota as reasm_start charges it, for the moment the message
	 * takes: the same answer, though nothing stays charged. */
	ret = reasm_buf(s, f->pay_len, &mb);
	if (ret < 0)
		return ret;
	/* The one copy the transport makes of a payload. */
	memcpy(mb->data, f->payload, f->pay_len);
	c->rx_got = f->pay_len;
	*out = mb;
	return 0;
}

void ferry__reasm_end(struct ferry_session *s, struct ferry_call *c)
{
	if (!c->rx_charge)
		return;
	s->reasm_bytes -= c->rx_charge;
	s->reasm_n--;
	c->rx_charge = 0;
}

int ferry__reasm_put(struct ferry_session *s, struct ferry_call *c,
		     struct ferry_msgbuf *mb, const struct ferry_frame *f)
{
	struct ferry_endpoint *ep = s->ep;
	uint32_t u;
	int ret = ferry__reasm_fits(s, f);

	if (ret < 0)
		return ret;
	u = f->h.frag_off / s->frag_unit;
	if (mb->rmap[u / 64] >> (u % 64) & 1) {
		/* Its bytes are written already: a retransmitted copy (the
		 * grid makes overlap impossible, so a filled place can only
		 * be that).  Counting them twice would complete the message
		 * with a hole in it; nothing is written. */
		return 2;
	}
	mb->rmap[u / 64] |= 1ull << (u % 64);
	/* The one copy the transport makes of a payload. */
	memcpy(mb->data + f->h.frag_off, f->payload, f->pay_len);
	c->rx_got += f->pay_len;
	c->rx_last_ns = ep->now;
	if (c->rx_got < f->h.msg_len)
		return 0;
	ferry__reasm_end(s, c);
	return 1;
}

void ferry__reasm_timers(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	uint64_t tmo = ep->cfg.reasm_timeout_ms * 1000000ull, next = 0;

	if (!s->reasm_n || ep->now < s->reasm_next_ns)
		return;
	for (uint32_t i = 0; i <= s->slot_mask && s->reasm_n; i++) {
		struct ferry_call *c = s->slots[i];

		if (!c || !c->rx_charge)
			continue;
		if (ep->now - c->rx_last_ns < tmo) {
			if (!next || c->rx_last_ns + tmo < next)
				next = c->rx_last_ns + tmo;
			continue;
		}
		ep->st.reasm_timed_out++;
		/* Handlers (server) or the continuation (client) run from
		 * here, and a continuation may close the session. */
		if (s->is_server)
			ferry__server_reasm_fail(c, -ETIMEDOUT);
		else
			ferry__client_reasm_fail(c, -ETIMEDOUT);
		if (s->state != SESS_OPEN)
			return;
	}
	s->reasm_next_ns = next;
}
