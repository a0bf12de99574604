/* SPDX-License-Identifier: MIT */
/*
 * cc.h - congestion control: a delay-based window with pacing, for one
 * flow, in the manner of Swift (Kumar et al., SIGCOMM 2020).
 *
 * Credits are flow control: what the receiver can take.  This is the
 * second gate on a sender: what the network can take.  It knows bytes,
 * RTT samples and times, nothing of sessions, packets or wires: the
 * transport feeds it from its sent queue's acknowledgements and losses
 * (reliable.c) and asks it before each datagram (tx.c) (docs/wire.md,
 * section 7).
 *
 * The controller keeps a congestion window (cwnd) of bytes in flight:
 *  - a target round trip: configured, or 1 ms (the same for every flow
 *    through a bottleneck, which is what keeps them fair), or on a long
 *    path twice base, where base is the smallest RTT seen in a window of
 *    time (the path's propagation and fixed costs);
 *  - a small window tolerates more delay than a large one (Swift's flow
 *    scaling: up to half the target more at one packet, in proportion to
 *    1 / sqrt(cwnd), nothing at 64 packets), so that flows under one queue
 *    converge on equal shares instead of one holding most for a while;
 *  - RTT samples below target grow cwnd additively: by ai bytes (one
 *    packet) per round trip of time;
 *  - a sample above target shrinks it multiplicatively, in proportion to
 *    how far above (1 - beta * (rtt - target) / rtt, at most by
 *    max_mdf), at most once per round trip, so that the reaction to one
 *    queue is not repeated for every packet that queued behind it;
 *  - a loss (retransmission timeout or fast retransmit) shrinks it by
 *    max_mdf, also at most once per round trip; repeated timeouts drop it
 *    to its minimum;
 *  - packets are paced: spaced srtt * bytes / cwnd apart below one packet
 *    (mss), where cwnd is a rate, so that many flows through one
 *    bottleneck can each send less than a packet per round trip; above,
 *    at 1.25 times the window's rate, so that a window is spread over the
 *    round trip instead of reaching the bottleneck as one burst.
 * A sender with nothing in flight may always send (once its pacing time
 * has come): a window never stalls a lone call.
 *
 * FERRY__CC_NONE says yes to everything and keeps no state: with it the
 * transport behaves as if this module did not exist.
 *
 * Every function is called by the one thread that owns the flow; none
 * blocks or allocates.  Times are CLOCK_MONOTONIC nanoseconds.
 */
#ifndef FERRY_TRANSPORT_CC_H
#define FERRY_TRANSPORT_CC_H

#include <stdbool.h>
#include <stdint.h>

enum ferry__cc_algo {
	FERRY__CC_NONE = 0,  /* no limit: credits alone gate the sender */
	FERRY__CC_SWIFT = 1, /* delay-based window with pacing */
};

/* Why ferry__cc_check said no (or that it said yes). */
enum ferry__cc_verdict {
	FERRY__CC_GO = 0,
	FERRY__CC_WINDOW, /* cwnd is full: wait for acknowledgements */
	FERRY__CC_PACED,  /* the packet's time has not come */
};

/* The target when none is configured: FERRY__CC_AUTO_TARGET_NS, or on a
 * path whose smallest RTT is longer than half that, the RTT and
 * FERRY__CC_HEADROOM_BASE_PCT percent of it more.  One round trip for
 * every flow on a short path, as a configured target is, so that none
 * gains by a base it took from a standing queue.  It was base + 150 us:
 * on the test bed's 1 Gbit/s bottleneck a 64 KiB call of 8 KiB frames
 * queues behind itself for 0.5 ms, which that read as congestion
 * (goodput 0.23-0.40 of the link; with 1 ms, 0.97-0.98, session 10).
 * A fabric that wants its queues shorter configures its target. */
#define FERRY__CC_AUTO_TARGET_NS (1000ull * 1000)
#define FERRY__CC_HEADROOM_BASE_PCT 100

/* How early a paced packet may leave: a poll loop that sleeps wakes tens
 * of microseconds late on this VM (and any), so a pacer that waited for
 * each packet's exact time would send one per wake-up and cap a fast
 * path far below its window (session 10: swift's 64 KiB calls on
 * loopback fell from 22 to 16 Gbit/s).  Packets due within this much go
 * now; at 1 Gbit/s it is less than one 8 KiB frame. */
#define FERRY__CC_PACE_AHEAD_NS (50ull * 1000)

struct ferry_cc {
	uint8_t algo;       /* enum ferry__cc_algo */
	uint32_t mss;       /* bytes of the largest packet */
	uint64_t cwnd;      /* bytes allowed in flight */
	uint64_t min_cwnd;  /* floor: a rate of min_cwnd per srtt */
	uint64_t max_cwnd;  /* ceiling */
	uint64_t ai;        /* additive increase: bytes per round trip */
	uint64_t inflight;  /* bytes sent, not yet acknowledged or lost */
	uint64_t last_sample_ns; /* when the last RTT sample came */
	/* Delay: the target's parts, a windowed minimum for base (the
	 * smaller of this window's and the last one's), and the smoothed
	 * RTT that spaces paced packets and times decreases. */
	uint64_t target_cfg_ns; /* 0: automatic */
	uint64_t base_cur_ns, base_prev_ns, base_epoch_ns;
	uint64_t srtt_ns;
	uint64_t last_decrease_ns;
	uint32_t timeouts; /* in a row, without a sample in between */
	uint64_t next_send_ns; /* pacing: the next packet's time, 0: none */
};

/*
 * ferry__cc_init - set @cc up for a new flow.  @mss: the largest packet's
 * bytes; @init_cwnd and @max_cwnd: the window at start and at most, in
 * bytes (0 for max_cwnd: no ceiling).  @target_ns: the round trip to
 * hold (at least base and a quarter), or 0 for the automatic target
 * (FERRY__CC_AUTO_TARGET_NS, more on a long path).
 * Always succeeds.
 */
void ferry__cc_init(struct ferry_cc *cc, enum ferry__cc_algo algo,
		    uint32_t mss, uint64_t init_cwnd, uint64_t max_cwnd,
		    uint64_t target_ns);

/* Whether a packet of @bytes may leave at @now, and if not, why. */
enum ferry__cc_verdict ferry__cc_check(const struct ferry_cc *cc,
				       uint32_t bytes, uint64_t now);

static inline bool ferry__cc_can_send(const struct ferry_cc *cc,
				      uint32_t bytes, uint64_t now)
{
	return ferry__cc_check(cc, bytes, now) == FERRY__CC_GO;
}

/* A packet of @bytes left (its first transmission: a retransmission
 * replaces bytes already counted in flight). */
void ferry__cc_on_sent(struct ferry_cc *cc, uint32_t bytes, uint64_t now);

/*
 * @bytes left the network, acknowledged.  @rtt_ns: the round trip of the
 * packet that this acknowledgement reports, if it is a valid sample
 * (Karn's rules: never of a packet sent twice), else 0.  The window
 * reacts only to samples.
 */
void ferry__cc_on_acked(struct ferry_cc *cc, uint32_t bytes, uint64_t rtt_ns,
			uint64_t now);

/* @bytes left the network without an acknowledgement (their sender
 * gave up on them): no longer in flight, no signal. */
void ferry__cc_on_forgot(struct ferry_cc *cc, uint32_t bytes);

/* A loss: @timeout for a retransmission timeout, else a fast
 * retransmit.  The lost bytes stay in flight until acknowledged. */
void ferry__cc_on_loss(struct ferry_cc *cc, bool timeout, uint64_t now);

/*
 * ECN: of @bytes acknowledged, @ce_bytes carried a congestion mark.  A
 * hook for a wire that reports marks (v2's ACK ECN counts); v1 has none.
 * Shrinks cwnd in proportion to the marked fraction (by at most max_mdf),
 * at most once per round trip.
 */
void ferry__cc_on_ecn(struct ferry_cc *cc, uint64_t ce_bytes, uint64_t bytes,
		      uint64_t now);

/* When a sender held back by pacing may send (its next packet's time
 * less FERRY__CC_PACE_AHEAD_NS), or 0 if pacing holds nothing back: for
 * the poll loop's timer. */
uint64_t ferry__cc_next_send_ns(const struct ferry_cc *cc);

/* The target delay at the moment, before flow scaling (0 before the
 * first sample with an automatic target). */
uint64_t ferry__cc_target_ns(const struct ferry_cc *cc);

#endif /* FERRY_TRANSPORT_CC_H */
