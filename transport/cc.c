/* SPDX-License-Identifier: MIT */
/*
 * Congestion control: the Swift-like window and pacer of cc.h.
 *
 * Only the published rules carry over from Swift; the constants are
 * chosen here.  What differs: a target that is not configured is 1 ms,
 * or twice the path's smallest RTT (of the last two windows of
 * FERRY__CC_BASE_WIN_NS) where that is longer, because ferry runs on
 * paths it knows nothing about; and the additive increase is ai per
 * round trip of time spent below target, not per window of bytes acknowledged: a
 * flow of small calls acknowledges few bytes per round trip, and would
 * otherwise take far longer than a flow of large ones to regain a window
 * it lost to a moment's delay (on a shared machine, a descheduled
 * thread), and flows of either kind through one bottleneck get the same
 * increase per unit of time, which is what AIMD's fairness rests on.
 */
#include <string.h>

#include "cc.h"

/* Fractions of cwnd in parts per 10,000. */
#define PPM 10000
#define BETA 8000    /* share of the relative excess delay taken off */
#define MAX_MDF 5000 /* most taken off in one decrease */
/* Timeouts in a row (no good sample between) that reset cwnd to its
 * floor: the path is gone or badly overloaded. */
#define TIMEOUT_RESET 5
/* How long a minimum RTT stands for base: long enough that a queue
 * which lasts a moment does not become the new base, short enough that a
 * route that grew longer does. */
#define FERRY__CC_BASE_WIN_NS (10ull * 1000 * 1000 * 1000)
/* Smallest cwnd: one packet per 16 srtt (enough for incast of hundreds
 * of flows; a delay spike on a shared machine costs at most that). */
#define MIN_CWND_DIV 16
/* Pacing above a packet: the rate, in parts per PPM of cwnd per srtt, and
 * the packets an idle sender may send back to back. */
#define PACE_GAIN 12500
#define PACE_BURST 2
/* Flow scaling (flow_scaling()): up to target / FS_RANGE_DIV more delay
 * for a small window, none at FS_MAX_SQRT^2 path frames. */
#define FS_RANGE_DIV 2
#define FS_MAX_SQRT 8
/* A configured target at or below the path's smallest RTT becomes that
 * RTT and this fraction of it more. */
#define TARGET_FLOOR_DIV 4

void ferry__cc_init(struct ferry_cc *cc, enum ferry__cc_algo algo,
		    uint32_t mss, uint64_t init_cwnd, uint64_t max_cwnd,
		    uint64_t target_ns)
{
	memset(cc, 0, sizeof(*cc));
	cc->algo = (uint8_t)algo;
	if (algo == FERRY__CC_NONE)
		return;
	cc->mss = mss ? mss : 1;
	cc->min_cwnd = cc->mss / MIN_CWND_DIV ? cc->mss / MIN_CWND_DIV : 1;
	cc->max_cwnd = max_cwnd ? max_cwnd : UINT64_MAX;
	if (cc->max_cwnd < cc->min_cwnd)
		cc->max_cwnd = cc->min_cwnd;
	cc->cwnd = init_cwnd;
	if (cc->cwnd < cc->min_cwnd)
		cc->cwnd = cc->min_cwnd;
	if (cc->cwnd > cc->max_cwnd)
		cc->cwnd = cc->max_cwnd;
	cc->ai = cc->mss;
	cc->target_cfg_ns = target_ns;
}

static uint64_t base_ns(const struct ferry_cc *cc)
{
	if (!cc->base_prev_ns || cc->base_cur_ns < cc->base_prev_ns)
		return cc->base_cur_ns;
	return cc->base_prev_ns;
}

uint64_t ferry__cc_target_ns(const struct ferry_cc *cc)
{
	uint64_t base = base_ns(cc), room;

	if (cc->target_cfg_ns) {
		/* One round trip for every flow, whatever base each measured:
		 * a flow that started behind a queue takes that queue for its
		 * base, and with base + headroom would hold its share of it
		 * for good against the flows that came first.  A path whose
		 * smallest RTT reaches the target gets a quarter of it more:
		 * no flow is held below a delay it cannot go under. */
		uint64_t floor = base + base / TARGET_FLOOR_DIV;

		return cc->target_cfg_ns > floor ? cc->target_cfg_ns : floor;
	}
	if (!base)
		return 0;
	/* One target for every flow on a short path (so none gains by a
	 * base it took from a queue); a long one tolerates a queue in
	 * proportion. */
	room = base + base * FERRY__CC_HEADROOM_BASE_PCT / 100;
	return room > FERRY__CC_AUTO_TARGET_NS ? room : FERRY__CC_AUTO_TARGET_NS;
}

/* When the next paced packet may leave: its time less the allowance for
 * a late wake-up (cc.h); 0 when the pacer holds nothing back. */
static uint64_t paced_until(const struct ferry_cc *cc)
{
	return cc->next_send_ns > FERRY__CC_PACE_AHEAD_NS
		       ? cc->next_send_ns - FERRY__CC_PACE_AHEAD_NS
		       : 0;
}

enum ferry__cc_verdict ferry__cc_check(const struct ferry_cc *cc,
				       uint32_t bytes, uint64_t now)
{
	if (cc->algo == FERRY__CC_NONE)
		return FERRY__CC_GO;
	/* Below a packet, cwnd is a rate, and the pacer alone gates: a
	 * packet never fits such a window. */
	if (cc->inflight && cc->cwnd >= cc->mss &&
	    cc->inflight + bytes > cc->cwnd)
		return FERRY__CC_WINDOW;
	if (now < paced_until(cc))
		return FERRY__CC_PACED;
	return FERRY__CC_GO;
}

void ferry__cc_on_sent(struct ferry_cc *cc, uint32_t bytes, uint64_t now)
{
	if (cc->algo == FERRY__CC_NONE)
		return;
	cc->inflight += bytes;
	if (!cc->srtt_ns) {
		cc->next_send_ns = 0;
		return;
	}
	/* A rate of cwnd bytes per srtt: this packet's share of it, after
	 * the share of the one before (a packet the pacer did not gate,
	 * a PUSH say, may leave before its time).  Below a packet, exactly
	 * that rate; above, PACE_GAIN times it, so that the pacer spreads a
	 * window over the round trip without being what limits it, and a
	 * sender that was idle may send PACE_BURST packets' worth at once. */
	if (cc->cwnd < cc->mss) {
		uint64_t t = cc->next_send_ns > now ? cc->next_send_ns : now;

		cc->next_send_ns = t + cc->srtt_ns * bytes / cc->cwnd;
	} else {
		uint64_t gap = cc->srtt_ns * bytes * PPM /
			       (cc->cwnd * PACE_GAIN);
		uint64_t slack = gap * PACE_BURST;
		uint64_t t = now > slack ? now - slack : 0;

		if (cc->next_send_ns > t)
			t = cc->next_send_ns;
		cc->next_send_ns = t + gap;
	}
}

static void clamp(struct ferry_cc *cc)
{
	if (cc->cwnd < cc->min_cwnd)
		cc->cwnd = cc->min_cwnd;
	if (cc->cwnd > cc->max_cwnd)
		cc->cwnd = cc->max_cwnd;
}

/* At most one decrease per round trip: the packets behind the one that
 * showed a queue saw the same queue, and the sender has not yet seen the
 * effect of its last decrease. */
static bool may_decrease(const struct ferry_cc *cc, uint64_t now)
{
	return !cc->last_decrease_ns ||
	       now - cc->last_decrease_ns >= cc->srtt_ns;
}

/* Take @f parts per PPM (at most MAX_MDF) off cwnd. */
static void decrease(struct ferry_cc *cc, uint64_t f, uint64_t now)
{
	if (f > MAX_MDF)
		f = MAX_MDF;
	cc->cwnd -= cc->cwnd * f / PPM;
	cc->last_decrease_ns = now;
	clamp(cc);
}

static void rtt_update(struct ferry_cc *cc, uint64_t rtt, uint64_t now)
{
	if (!cc->base_epoch_ns || now - cc->base_epoch_ns >=
					  FERRY__CC_BASE_WIN_NS) {
		cc->base_prev_ns = cc->base_cur_ns;
		cc->base_cur_ns = rtt;
		cc->base_epoch_ns = now;
	} else if (rtt < cc->base_cur_ns) {
		cc->base_cur_ns = rtt;
	}
	cc->srtt_ns = cc->srtt_ns ? (7 * cc->srtt_ns + rtt) / 8 : rtt;
}

static uint64_t isqrt(uint64_t x)
{
	uint64_t r = 0, bit = 1ull << 62;

	while (bit > x)
		bit >>= 2;
	for (; bit; bit >>= 2) {
		if (x >= r + bit) {
			x -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
	}
	return r;
}

/*
 * Swift's flow scaling: a flow with a small window tolerates more delay
 * than one with a large window, up to @target / FS_RANGE_DIV more at one
 * path frame, in proportion to 1 / sqrt(cwnd), nothing at FS_MAX_SQRT^2
 * frames or more.  With one queue between them, the large flow then
 * shrinks while the small one still grows, and they meet sooner than by
 * additive increase and proportional decrease alone: without it, one flow
 * of three held most of a test bed's bottleneck for 0.3 to 0.8 s at a time
 * (session 10), and calls on the others waited.
 */
static uint64_t flow_scaling(const struct ferry_cc *cc, uint64_t target)
{
	uint64_t range = target / FS_RANGE_DIV, s;

	if (cc->cwnd >= (uint64_t)cc->mss * FS_MAX_SQRT * FS_MAX_SQRT)
		return 0;
	/* sqrt(cwnd in path frames), times 256. */
	s = isqrt(cc->cwnd * 65536 / cc->mss);
	if (s <= 256)
		return range;
	/* range * (1/sqrt(x) - 1/sqrt(max)) / (1 - 1/sqrt(max)) */
	return range * (256 * FS_MAX_SQRT - s) / ((FS_MAX_SQRT - 1) * s);
}

void ferry__cc_on_acked(struct ferry_cc *cc, uint32_t bytes, uint64_t rtt_ns,
			uint64_t now)
{
	uint64_t target;

	if (cc->algo == FERRY__CC_NONE)
		return;
	cc->inflight -= bytes < cc->inflight ? bytes : cc->inflight;
	if (!rtt_ns)
		return;
	rtt_update(cc, rtt_ns, now);
	cc->timeouts = 0;
	target = ferry__cc_target_ns(cc);
	target += flow_scaling(cc, target);
	if (rtt_ns < target) {
		/* ai per srtt since the last sample, at most ai: below a
		 * packet, where a sample comes less than once per round
		 * trip, ai per sample, as Swift. */
		uint64_t dt = cc->last_sample_ns ? now - cc->last_sample_ns : 0;

		if (dt > cc->srtt_ns)
			dt = cc->srtt_ns;
		cc->cwnd += cc->ai * dt / cc->srtt_ns;
		clamp(cc);
	} else if (may_decrease(cc, now)) {
		decrease(cc, BETA * (rtt_ns - target) / rtt_ns, now);
	}
	cc->last_sample_ns = now;
}

void ferry__cc_on_forgot(struct ferry_cc *cc, uint32_t bytes)
{
	if (cc->algo == FERRY__CC_NONE)
		return;
	cc->inflight -= bytes < cc->inflight ? bytes : cc->inflight;
}

void ferry__cc_on_loss(struct ferry_cc *cc, bool timeout, uint64_t now)
{
	if (cc->algo == FERRY__CC_NONE)
		return;
	if (timeout && ++cc->timeouts >= TIMEOUT_RESET) {
		cc->cwnd = cc->min_cwnd;
		cc->last_decrease_ns = now;
		return;
	}
	if (may_decrease(cc, now))
		decrease(cc, MAX_MDF, now);
}

void ferry__cc_on_ecn(struct ferry_cc *cc, uint64_t ce_bytes, uint64_t bytes,
		      uint64_t now)
{
	if (cc->algo == FERRY__CC_NONE || !ce_bytes || !bytes)
		return;
	if (ce_bytes > bytes)
		ce_bytes = bytes;
	/* DCTCP's reaction to a marked fraction F: take F / 2 off. */
	if (may_decrease(cc, now))
		decrease(cc, PPM / 2 * ce_bytes / bytes, now);
}

uint64_t ferry__cc_next_send_ns(const struct ferry_cc *cc)
{
	return cc->algo == FERRY__CC_NONE ? 0 : paced_until(cc);
}
