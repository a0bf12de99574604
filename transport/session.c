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
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

/* --- free slots ----------------------------------------------------------- */

static void free_set(struct ferry_endpoint *ep, uint32_t i)
{
	ep->free_map[i / 64] |= 1ull << (i % 64);
	ep->free_sum[i / 4096] |= 1ull << (i / 64 % 64);
}

static void free_clear(struct ferry_endpoint *ep, uint32_t i)
{
	ep->free_map[i / 64] &= ~(1ull << (i % 64));
	if (!ep->free_map[i / 64])
		ep->free_sum[i / 4096] &= ~(1ull << (i / 64 % 64));
}

/* The lowest slot a new session may take, or -1: a few words read, where
 * a scan of the table cost a refused CONNECT 0.2 ms at 65535 sessions.
 * 100,000 slots are 1563 words, 25 summary words. */
static int32_t free_lowest(const struct ferry_endpoint *ep)
{
	for (uint32_t j = 0; j < FERRY__FREE_SUM_WORDS; j++) {
		if (ep->free_sum[j]) {
			uint32_t w = j * 64 +
				     (uint32_t)__builtin_ctzll(ep->free_sum[j]);

			return (int32_t)(w * 64 + (uint32_t)__builtin_ctzll(
							  ep->free_map[w]));
		}
	}
	return -1;
}

int ferry__sess_table_init(struct ferry_endpoint *ep)
{
	_Static_assert(FERRY__FREE_SUM_WORDS * 64 * 64 >= FERRY__SESS_MAX,
		       "free_sum covers every slot");
	_Static_assert(FERRY__SESS_MAX < 1u << FERRY__SESS_IDX_BITS,
		       "an index fits its bits");
	ep->free_map = calloc((ep->nsessions + 63) / 64,
			      sizeof(*ep->free_map));
	ep->wheel = malloc(sizeof(*ep->wheel) << FERRY__WHEEL_LOG2);
	if (!ep->free_map || !ep->wheel)
		return -ENOMEM;
	for (uint32_t i = 0; i < ep->nsessions; i++)
		free_set(ep, i);
	ep->tdirty.next = ep->tdirty.prev = &ep->tdirty;
	for (uint32_t i = 0; i < 1u << FERRY__WHEEL_LOG2; i++)
		ep->wheel[i].next = ep->wheel[i].prev = &ep->wheel[i];
	return 0;
}

void ferry__timers_fini(struct ferry_endpoint *ep)
{
	free(ep->wheel);
	ep->wheel = NULL;
}

void ferry__sess_freed(struct ferry_session *s)
{
	/* A session still on the transmit list is reused only after the
	 * flush has taken it off; the flush calls this again then. */
	if (s->state == SESS_FREE && !s->active)
		free_set(s->ep, (uint32_t)(s - s->ep->sessions));
}

static void tl_unlink(struct ferry_session *s)
{
	if (!s->tq)
		return;
	s->tl.prev->next = s->tl.next;
	s->tl.next->prev = s->tl.prev;
	s->tq = TQ_NONE;
}

/* --- a session's life ----------------------------------------------------- */

/* Sessions take the lowest free slot; the wire knows them only by their
 * random CIDs (docs/wire.md, 2.1), drawn here. */
struct ferry_session *ferry__sess_alloc(struct ferry_endpoint *ep, bool server)
{
	int32_t i;

	while ((i = free_lowest(ep)) >= 0) {
		struct ferry_session *s = &ep->sessions[i];
		struct ferry_call **slots = s->slots;
		uint32_t mask = s->slot_mask;
		uint64_t cid;

		free_clear(ep, (uint32_t)i);
		/* Marked free, then put back on the transmit list: the
		 * flush marks it again once it takes it off. */
		if (s->state != SESS_FREE || s->active)
			continue;
		cid = ferry__cidtab_draw(&ep->cids);
		if (!cid || ferry__cidtab_add(&ep->cids, cid, (uint32_t)i) < 0) {
			free_set(ep, (uint32_t)i);
			return NULL;
		}
		/* The session before may still be on a timer list, and
		 * hold sent-queue rings. */
		tl_unlink(s);
		ferry__sentq_drop(&s->sq);
		memset(s, 0, sizeof(*s));
		s->slots = slots;
		s->slot_mask = mask;
		s->ep = ep;
		s->cid = cid;
		s->key_tx = ep->keys + (size_t)i * 2 * FERRY_SEAL_KEY_LEN;
		s->key_rx = s->key_tx + FERRY_SEAL_KEY_LEN;
		/* A server's first short-header pn is 1: its ACCEPT was 0. */
		ferry__rel_reset(s, server ? 1 : 0);
		s->last_rx_ns = s->last_ping_ns = ep->now;
		ep->sess_gen = (ep->sess_gen + 1) &
			       ((1u << (32 - FERRY__SESS_IDX_BITS)) - 1);
		if (ep->sess_gen == 0)
			ep->sess_gen = 1;
		s->id = (uint32_t)ep->sess_gen << FERRY__SESS_IDX_BITS |
			(uint32_t)i;
		s->is_server = server;
		s->refs = 1;
		if (server)
			s->srv.next_dispatch = 1;
		else
			s->cli.next_req = 1;
		s->cli.next_push_id = 1;
		s->rx_window = ferry__rx_window(&ep->cfg);
		s->credit_adv = s->rx_window;
		s->path_frame = ep->cfg.max_frame;
		s->frag_unit = ferry__frag_unit(s->path_frame, FERRY_W2_MODE_MAC);
		ferry__rel_cc_reset(s);
		s->peer_max_msg = FERRY_WIRE_MAX_MSG;
		ferry__sess_touch(s);
		return s;
	}
	return NULL;
}

const struct ferry__rx_sess *ferry__rx_sess_of(void *ctx, uint32_t val)
{
	struct ferry_endpoint *ep = ctx;
	const struct ferry_session *s = &ep->sessions[val];
	struct ferry__rx_sess *r = &ep->rx_scratch;

	r->peer = s->peer;
	r->mode = s->mode;
	r->seal = s->seal;
	r->key = s->key_rx;
	/* Rules 5 and 8 read and write the session's own window. */
	r->seen = (struct ferry__replay *)&s->seen;
	return r;
}

/* The session is over on the wire: its CID names nothing from now on,
 * and its keys are wiped. */
static void sess_forget_wire(struct ferry_session *s)
{
	if (s->cid) {
		ferry__cidtab_del(&s->ep->cids, s->cid);
		s->cid = 0;
	}
	ferry__seal_forget(s->key_tx);
	ferry__seal_forget(s->key_rx);
	sodium_memzero(s->key_tx, 2 * FERRY_SEAL_KEY_LEN);
}

void ferry__sess_unref(struct ferry_session *s)
{
	if (--s->refs > 0)
		return;
	s->state = SESS_FREE;
	ferry__sess_freed(s);
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
	/* A clean close: the peer's calls end with ECONNRESET.  Those with
	 * a reason to give (a protocol error, a token's expiry) send their
	 * own CLOSE first. */
	if (tell_peer)
		ferry__sess_send_close(s, 0, 0);
	sess_forget_wire(s);
	ep->st.sessions_closed++;
	if (s->is_server)
		ferry__server_sess_end(s, res);
	else
		ferry__client_sess_end(s, res, was_connecting);
}

/*
 * How long after the last PING one more may go while credit holds our
 * sending back.  A peer that grants little credit and answers nothing
 * must not draw a PING every RTO for as long as the session lives (issue
 * 14 measured 73 times the bytes it sent): the gap doubles with each PING
 * that brought no credit, as retransmission backs off, up to the
 * keepalive interval.  New credit starts it again at an RTO.
 */
static uint64_t credit_ping_gap(const struct ferry_session *s)
{
	uint64_t cap = s->ep->cfg.keepalive_ms * 1000000ull;
	uint64_t gap = ferry__rel_rto(s) << (s->credit_pings < 16
						     ? s->credit_pings
						     : 16);

	return gap < cap ? gap : cap;
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
		/* Half-open: nothing goes to an address that has not
		 * confirmed the session (it may be spoofed) but the ACCEPT
		 * its CONNECTs ask for; the session waits for its first
		 * datagram or for connect_timeout_ms. */
		if (s->state != SESS_OPEN || !s->srv.confirmed)
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
	if (s->credit_stalled &&
	    ep->now - s->last_ping_ns >= credit_ping_gap(s)) {
		s->last_ping_ns = ep->now;
		s->pending |= SF_PING;
		if (s->credit_pings < 255)
			s->credit_pings++;
		ep->st.credit_pings++;
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
	if (!s->is_server)
		ferry__client_call_timers(s);
}

/* --- the timer wheel ------------------------------------------------------- */

/*
 * Each live session sits in the wheel slot of the earliest time one of its
 * timers may fire, worked out from its state (sess_deadline); a poll runs
 * the slots whose ticks have come, so an idle session costs nothing until
 * its keepalive.  Whatever may bring a deadline nearer touches the session
 * (ferry__sess_touch: it is activated to send, a datagram of it arrives, a
 * call with a deadline is made, a reassembly or an IOU starts), which puts
 * it on the dirty list; the next tick works its deadline out again.  A
 * deadline worked out too early only runs the timers for nothing (each
 * looks at its own condition, as they did when every session was looked at
 * every tick); one never runs later than a tick after it falls.
 */

static uint64_t tmin(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

static struct ferry_session *tl_sess(struct ferry__tlink *l)
{
	return (struct ferry_session *)((char *)l -
					offsetof(struct ferry_session, tl));
}

static void tl_push(struct ferry__tlink *h, struct ferry_session *s, int tq)
{
	s->tl.next = h;
	s->tl.prev = h->prev;
	h->prev->next = &s->tl;
	h->prev = &s->tl;
	s->tq = (uint8_t)tq;
}

/* The earliest time a timer of @s may have something to do: what
 * ferry__session_timers and the roles' timers look at, each condition's
 * own time; 0 for none. */
static uint64_t sess_deadline(const struct ferry_session *s)
{
	const struct ferry_endpoint *ep = s->ep;
	uint64_t ka = ep->cfg.keepalive_ms * 1000000ull;
	uint64_t t, quiet;

	if (s->state == SESS_CONNECTING)
		return tmin(tmin(s->cli.connect_deadline, s->cli.connect_retry),
			    s->cli.next_deadline);
	if (s->is_server && !s->srv.confirmed)
		return tmin(s->srv.half_open_deadline, s->srv.expires_ns);
	/* Peer dead; keepalive (quiet for an interval since both the last
	 * datagram and the last PING). */
	t = s->last_rx_ns + ep->cfg.peer_timeout_ms * 1000000ull;
	quiet = s->last_rx_ns > s->last_ping_ns ? s->last_rx_ns
						 : s->last_ping_ns;
	t = tmin(t, quiet + ka);
	if (s->credit_stalled)
		t = tmin(t, s->last_ping_ns + credit_ping_gap(s));
	/* Loss detection, and an ACK owed. */
	t = tmin(t, ferry__sentq_deadline(&s->sq));
	t = tmin(t, s->ackrx.now ? ep->now : s->ackrx.due_ns);
	if (s->reasm_n)
		t = tmin(t, s->reasm_next_ns ? s->reasm_next_ns : ep->now);
	if (s->is_server)
		return tmin(tmin(t, s->srv.expires_ns), s->srv.iou_next_ns);
	return tmin(t, s->cli.next_deadline);
}

/* Put @s where its timers belong: nowhere once it is over; on the dirty
 * list while it waits on the transmit list (the flush may put datagrams in
 * flight: its deadline is worked out after it); else in the wheel. */
static void sess_arm(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	uint64_t t, tick, last;

	tl_unlink(s);
	if (s->state != SESS_OPEN && s->state != SESS_CONNECTING)
		return;
	if (s->active) {
		tl_push(&ep->tdirty, s, TQ_DIRTY);
		return;
	}
	/* Nothing in flight: its sent queue's rings go back to the pool. */
	ferry__sentq_release(&s->sq);
	t = sess_deadline(s);
	tick = (t + FERRY__TICK_NS - 1) / FERRY__TICK_NS;
	last = ep->wheel_tick + (1u << FERRY__WHEEL_LOG2) - 1;
	if (tick <= ep->wheel_tick)
		tick = ep->wheel_tick + 1;
	if (tick > last || !t)
		tick = last; /* looked at again then */
	tl_push(&ep->wheel[tick & ((1u << FERRY__WHEEL_LOG2) - 1)], s,
		TQ_WHEEL);
}

/* Run the timers of every session in @h (a list it empties) -- @fire: all
 * of them (a wheel slot); else those on the transmit list whose deadline
 * has come (the dirty list: a session the pacer or a full dataplane keeps
 * there stays dirty for many ticks, and its RTO and ACK must not wait for
 * the flush to let it go) -- putting each back where it then belongs.
 * Timers may run continuations, which may touch, end or open other
 * sessions: the list is taken from its head each time, never walked by a
 * saved next. */
static void run_list(struct ferry__tlink *h, bool fire)
{
	while (h->next != h) {
		struct ferry_session *s = tl_sess(h->next);
		bool due = fire;
		uint64_t t;

		tl_unlink(s);
		if (s->state != SESS_OPEN && s->state != SESS_CONNECTING) {
			sess_arm(s);
			continue;
		}
		if (!due && s->active) {
			t = sess_deadline(s);
			due = t && t <= s->ep->now;
		}
		if (due)
			ferry__session_timers(s);
		sess_arm(s);
	}
}

void ferry__timers_run(struct ferry_endpoint *ep)
{
	const uint64_t mask = (1u << FERRY__WHEEL_LOG2) - 1;
	uint64_t cur = ep->now / FERRY__TICK_NS;
	struct ferry__tlink dirty;
	bool busy = false;

	if (!ep->wheel_tick)
		ep->wheel_tick = cur - 1;
	/* A poll late by more than a round runs every slot once. */
	if (cur - ep->wheel_tick > mask + 1)
		ep->wheel_tick = cur - (mask + 1);
	/* Deadlines to work out again, from a list of its own: what they
	 * touch meanwhile waits for the next tick. */
	if (ep->tdirty.next != &ep->tdirty) {
		dirty.next = ep->tdirty.next;
		dirty.prev = ep->tdirty.prev;
		dirty.next->prev = dirty.prev->next = &dirty;
		ep->tdirty.next = ep->tdirty.prev = &ep->tdirty;
		run_list(&dirty, false);
	}
	while (ep->wheel_tick < cur) {
		ep->wheel_tick++;
		run_list(&ep->wheel[ep->wheel_tick & mask], true);
	}
	/* Whether the poll may sleep 10 ms: nothing falls due before. */
	busy = ep->tdirty.next != &ep->tdirty;
	for (uint64_t k = 1; k <= 10 && !busy; k++) {
		struct ferry__tlink *h = &ep->wheel[(cur + k) & mask];

		busy = h->next != h;
	}
	ep->rel_busy = busy;
}

void ferry_session_set_data(struct ferry_session *s, void *data)
{
	s->user_data = data;
}

void *ferry_session_data(const struct ferry_session *s)
{
	return s->user_data;
}
