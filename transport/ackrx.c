/* SPDX-License-Identifier: MIT */
/*
 * The receive side of wire v2 acknowledgement: see ackrx.h.
 */
#include <errno.h>
#include <string.h>

#include "transport/ackrx.h"

int ferry__ackrx_init(struct ferry__ackrx *a, unsigned log2, uint64_t *bits)
{
	int rc = ferry__replay_init(&a->got, log2, bits);

	if (rc)
		return rc;
	a->top_lo = a->largest_rx_ns = a->due_ns = 0;
	a->unacked = 0;
	a->now = false;
	return 0;
}

static uint64_t run_down(const struct ferry__replay *w, uint64_t p,
			 uint64_t lo, bool v);

/* The window's lowest pn: what lies below is forgotten. */
static uint64_t window_lo(const struct ferry__replay *w)
{
	return w->next > w->size ? w->next - w->size : 0;
}

/* @pn was taken, the window's next being @next before: the run at the
 * top grows by it, starts afresh at it (it jumped ahead), or, when it
 * fills the hole just below the run, reaches down over the run below. */
static void top_run(struct ferry__ackrx *a, uint64_t pn, uint64_t next)
{
	const struct ferry__replay *w = &a->got;

	if (pn > next || next == 0)
		a->top_lo = pn;
	else if (pn < next && pn + 1 == a->top_lo &&
		 ferry__replay_has(w, pn))
		a->top_lo = pn + 1 - run_down(w, pn, window_lo(w), true);
}

void ferry__ackrx_on_dgram(struct ferry__ackrx *a, uint64_t pn,
			   unsigned flags, uint64_t now,
			   uint64_t max_delay_ns)
{
	struct ferry__replay *w = &a->got;

	if (flags & FERRY_ACKRX_ACKABLE) {
		uint64_t next = w->next;

		/* A gap: a pn skipped ahead, or one filling a hole late.
		 * Either way the sender learns sooner what to resend. */
		if (pn != next)
			a->now = true;
		if (pn >= next)
			a->largest_rx_ns = now;
		ferry__replay_commit(w, pn);
		top_run(a, pn, next);
	}
	if (flags & FERRY_ACKRX_IMMEDIATE)
		a->now = true;
	if (!(flags & FERRY_ACKRX_ELICITING))
		return;
	if (++a->unacked >= FERRY_ACKRX_ELICIT_MAX)
		a->now = true;
	if (a->due_ns == 0)
		a->due_ns = now + (max_delay_ns ? max_delay_ns : 1);
}

/*
 * The length of the run of pns from @p down, all marked (@v true) or all
 * unmarked, stopping at @lo (inclusive).  Word by word: a window of 2^16
 * pns costs at most 1024 word reads per run.
 */
static uint64_t run_down(const struct ferry__replay *w, uint64_t p,
			 uint64_t lo, bool v)
{
	uint64_t n = 0;

	for (;;) {
		uint64_t i = p & (w->size - 1);
		unsigned bit = (unsigned)(i & 63);
		uint64_t word = w->bits[i >> 6];
		uint64_t low = bit == 63 ? ~0ull : (2ull << bit) - 1;
		/* Bits 0..bit that break the run, as ones. */
		uint64_t brk = (v ? ~word : word) & low;
		uint64_t take = brk ? bit - (63 - (unsigned)__builtin_clzll(brk))
				    : bit + 1ull;

		if (take > p - lo + 1)
			take = p - lo + 1;
		n += take;
		if (brk || p - lo + 1 == take)
			return n;
		p -= take;
	}
}

int ferry__ackrx_build(const struct ferry__ackrx *a, uint64_t now,
		       struct ferry_w2_ack *out)
{
	const struct ferry__replay *w = &a->got;
	uint64_t largest, lo, p, n, d;

	if (w->next == 0)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	largest = w->next - 1;
	lo = window_lo(w);
	d = now > a->largest_rx_ns ? (now - a->largest_rx_ns) / 1000 : 0;
	out->largest = (uint32_t)largest;
	out->ack_delay = d > UINT16_MAX ? UINT16_MAX : (uint16_t)d;
	/* The largest is always marked (only an acknowledgeable pn moves
	 * next), and the run down from it is kept (top_run). */
	n = largest + 1 - (a->top_lo > lo ? a->top_lo : lo);
	out->first_range = (uint16_t)(n - 1);
	p = largest - n + 1; /* the lowest pn of the range just taken */
	while (p > lo && out->nranges < FERRY_W2_ACK_RANGES_MAX) {
		uint64_t gap = run_down(w, p - 1, lo, false), cnt;

		if (gap >= p - lo)
			break; /* nothing marked below: done */
		p -= gap;
		cnt = run_down(w, p - 1, lo, true);
		out->ranges[out->nranges].gap = (uint16_t)gap;
		out->ranges[out->nranges].count = (uint16_t)cnt;
		out->nranges++;
		p -= cnt;
	}
	return 0;
}

void ferry__ackrx_sent(struct ferry__ackrx *a)
{
	a->now = false;
	a->due_ns = 0;
	a->unacked = 0;
}
