/* SPDX-License-Identifier: MIT */
/*
 * The receive side of wire v2 acknowledgement (docs/wire.md, 5.2): which
 * packet numbers this end will acknowledge, when an ACK is owed, and the
 * ACK frame that says so.
 *
 * Beside it the session keeps the replay window (seal.h), the pns *seen*.
 * The two differ for a datagram whose data frames could not all be taken
 * for want of receive resources: it is seen (its other frames took effect
 * and a replay of it must be refused) but not acknowledged, so the sender
 * re-sends its frames and those already taken come back as duplicates.
 *
 * Nothing here allocates: the session gives the bitmap, as for the replay
 * window.  All times are monotonic nanoseconds.
 */
#ifndef FERRY_TRANSPORT_ACKRX_H
#define FERRY_TRANSPORT_ACKRX_H

#include <stdbool.h>
#include <stdint.h>

#include "seal.h"
#include "wire2.h"

/* Ack-eliciting datagrams received that make an ACK owed at once. */
#define FERRY_ACKRX_ELICIT_MAX 8

struct ferry__ackrx {
	/* The pns this end acknowledges: a window like the replay window,
	 * over the same number of pns, marked only for datagrams whose data
	 * frames were all taken. */
	struct ferry__replay got;
	/* The lowest pn of the run of acknowledged pns that ends at the
	 * largest: kept as pns arrive, so that an ACK need not count it
	 * down the window each time (it may lie below the window). */
	uint64_t top_lo;
	uint64_t largest_rx_ns; /* when the largest arrived: ack_delay */
	uint64_t due_ns;        /* an ACK must leave by then (0: none owed) */
	uint32_t unacked;       /* ack-eliciting datagrams since the last ACK */
	bool now;               /* owed at this flush, without delay */
};

/*
 * ferry__ackrx_init - an empty tracker for 2^@log2 pns over @bits
 * (FERRY_REPLAY_WORDS(@log2) words, caller-owned).  Returns 0 or -EINVAL
 * (@log2 outside FERRY_REPLAY_LOG2_MIN..MAX).
 */
int ferry__ackrx_init(struct ferry__ackrx *a, unsigned log2, uint64_t *bits);

/* Flags for ferry__ackrx_on_dgram(). */
#define FERRY_ACKRX_ELICITING 0x1u /* it held an ack-eliciting frame */
#define FERRY_ACKRX_ACKABLE 0x2u   /* every data frame in it was taken */
#define FERRY_ACKRX_IMMEDIATE 0x4u /* a PING, or only duplicate frames:
				    * the peer evidently missed an ACK */

/*
 * ferry__ackrx_on_dgram - an authenticated datagram @pn arrived at @now and
 * its frames were processed, with @flags (FERRY_ACKRX_*).  @max_delay_ns
 * is how long this end may hold an ACK it owes (its max_ack_delay).  An
 * ACK becomes owed at once for a gap (a pn other than the next expected),
 * FERRY_ACKRX_IMMEDIATE, or the FERRY_ACKRX_ELICIT_MAX-th ack-eliciting
 * datagram since the last ACK; after @max_delay_ns for any other
 * ack-eliciting datagram; never for one that elicits nothing.  A pn below
 * the window is not recorded.
 */
void ferry__ackrx_on_dgram(struct ferry__ackrx *a, uint64_t pn,
			   unsigned flags, uint64_t now,
			   uint64_t max_delay_ns);

/* Is an ACK owed by @now?  (A datagram going out anyway may carry one that
 * is not yet due: ferry__ackrx_any().) */
static inline bool ferry__ackrx_due(const struct ferry__ackrx *a,
				    uint64_t now)
{
	return a->now || (a->due_ns != 0 && now >= a->due_ns);
}

/* Is anything acknowledgeable not yet acknowledged? */
static inline bool ferry__ackrx_any(const struct ferry__ackrx *a)
{
	return a->now || a->due_ns != 0;
}

/*
 * ferry__ackrx_build - fill @out with an ACK of what has arrived: the
 * largest pn, the run below it, and up to FERRY_W2_ACK_RANGES_MAX further
 * ranges walking down, most recent first (older ones are left out; the
 * sender's loss detection has judged them by then).  ack_delay is @now less
 * the largest's arrival, in microseconds, saturating.  Returns 0, or
 * -ENOENT if nothing has arrived.  Does not clear what is owed:
 * ferry__ackrx_sent() does, once the datagram carrying it is built.
 */
int ferry__ackrx_build(const struct ferry__ackrx *a, uint64_t now,
		       struct ferry_w2_ack *out);

/* The ACK just built went out: nothing is owed until more arrives. */
void ferry__ackrx_sent(struct ferry__ackrx *a);

#endif /* FERRY_TRANSPORT_ACKRX_H */
