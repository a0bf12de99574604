/* SPDX-License-Identifier: MIT */
/*
 * The congestion controller alone (transport/cc.c): its reaction to
 * delay below and above target, to loss and to ECN, its target, its
 * pacing below and above one packet, and that "none" limits nothing.  Times are made up: the module
 * is a pure function of what it is told.
 */
#include <criterion/criterion.h>

#include "../transport/cc.h"

#define MSS 1000u
#define US 1000ull
#define TARGET (150 * US)

/* A swift flow whose base RTT is 100 us (target 150 us), with @cwnd. */
static void flow(struct ferry_cc *cc, uint64_t cwnd, uint64_t *now)
{
	ferry__cc_init(cc, FERRY__CC_SWIFT, MSS, cwnd, 1000 * MSS, TARGET);
	*now = 1000 * US;
	ferry__cc_on_sent(cc, MSS, *now);
	*now += 100 * US;
	ferry__cc_on_acked(cc, MSS, 100 * US, *now);
	cr_assert_eq(ferry__cc_target_ns(cc), 150 * US);
	cc->cwnd = cwnd; /* undo that sample's increase */
}

Test(cc, increases_below_target)
{
	struct ferry_cc cc;
	uint64_t now, w;

	flow(&cc, 10 * MSS, &now);
	w = cc.cwnd;
	/* A window's worth acknowledged below target: about one mss more. */
	for (int i = 0; i < 10; i++) {
		ferry__cc_on_sent(&cc, MSS, now);
		now += 10 * US;
		ferry__cc_on_acked(&cc, MSS, 120 * US, now);
	}
	cr_assert_gt(cc.cwnd, w);
	cr_assert_leq(cc.cwnd, w + 2 * MSS);
	cr_assert_geq(cc.cwnd, w + MSS / 2);
}

/* The increase is per round trip of time, whatever the packets weigh:
 * a flow of small calls regains its window as fast as one of big ones. */
Test(cc, increase_is_per_time_not_bytes)
{
	struct ferry_cc a, b;
	uint64_t na, nb;

	flow(&a, 10 * MSS, &na);
	flow(&b, 10 * MSS, &nb);
	for (int i = 0; i < 10; i++) {
		ferry__cc_on_sent(&a, MSS, na);
		ferry__cc_on_sent(&b, MSS / 20, nb);
		na += 10 * US;
		nb += 10 * US;
		ferry__cc_on_acked(&a, MSS, 110 * US, na);
		ferry__cc_on_acked(&b, MSS / 20, 110 * US, nb);
	}
	cr_assert_gt(a.cwnd, 10 * MSS);
	cr_assert_eq(a.cwnd, b.cwnd);
}

Test(cc, decrease_is_proportional_to_excess)
{
	struct ferry_cc a, b;
	uint64_t na, nb;

	flow(&a, 100 * MSS, &na);
	flow(&b, 100 * MSS, &nb);
	ferry__cc_on_sent(&a, MSS, na);
	ferry__cc_on_sent(&b, MSS, nb);
	na += 500 * US;
	nb += 500 * US;
	/* 200 us over a 150 us target: 0.8 * 50/200 = 20% off. */
	ferry__cc_on_acked(&a, MSS, 200 * US, na);
	/* 100 us further over: 0.8 * 150/300 = 40% off. */
	ferry__cc_on_acked(&b, MSS, 300 * US, nb);
	cr_assert_eq(a.cwnd, 80 * MSS);
	cr_assert_eq(b.cwnd, 60 * MSS);
}

Test(cc, decrease_bounded_by_max_mdf)
{
	struct ferry_cc cc;
	uint64_t now;

	flow(&cc, 100 * MSS, &now);
	ferry__cc_on_sent(&cc, MSS, now);
	now += 500 * US;
	ferry__cc_on_acked(&cc, MSS, 100000 * US, now);
	cr_assert_eq(cc.cwnd, 50 * MSS);
}

Test(cc, decreases_at_most_once_per_rtt)
{
	struct ferry_cc cc;
	uint64_t now, w;

	flow(&cc, 100 * MSS, &now);
	for (int i = 0; i < 4; i++)
		ferry__cc_on_sent(&cc, MSS, now);
	now += 500 * US;
	ferry__cc_on_acked(&cc, MSS, 300 * US, now);
	w = cc.cwnd;
	cr_assert_lt(w, 100 * MSS);
	/* The packets that queued behind it, within one srtt: no more. */
	now += 10 * US;
	ferry__cc_on_acked(&cc, MSS, 300 * US, now);
	ferry__cc_on_acked(&cc, MSS, 300 * US, now + 20 * US);
	cr_assert_eq(cc.cwnd, w);
	/* A round trip later (srtt grows with this sample), the queue
	 * still there: again. */
	now += 2 * cc.srtt_ns;
	ferry__cc_on_acked(&cc, MSS, 300 * US, now);
	cr_assert_lt(cc.cwnd, w);
}

Test(cc, loss_decreases_more)
{
	struct ferry_cc cc;
	uint64_t now;

	flow(&cc, 100 * MSS, &now);
	now += 500 * US;
	ferry__cc_on_loss(&cc, false, now);
	cr_assert_eq(cc.cwnd, 50 * MSS);
	/* Within the round trip: no second decrease. */
	ferry__cc_on_loss(&cc, false, now + 1);
	cr_assert_eq(cc.cwnd, 50 * MSS);
	/* Timeouts in a row, each a round trip apart: halving, then down
	 * to the floor. */
	for (int i = 0; i < 5; i++) {
		now += 1000 * US;
		ferry__cc_on_loss(&cc, true, now);
	}
	cr_assert_eq(cc.cwnd, cc.min_cwnd);
	cr_assert_lt(cc.min_cwnd, MSS);
}

Test(cc, ecn_decreases_by_marked_fraction)
{
	struct ferry_cc cc;
	uint64_t now;

	flow(&cc, 100 * MSS, &now);
	now += 500 * US;
	/* Half the bytes marked: a quarter off (DCTCP's F / 2). */
	ferry__cc_on_ecn(&cc, 5 * MSS, 10 * MSS, now);
	cr_assert_eq(cc.cwnd, 75 * MSS);
	ferry__cc_on_ecn(&cc, 5 * MSS, 10 * MSS, now + 1);
	cr_assert_eq(cc.cwnd, 75 * MSS);
	ferry__cc_on_ecn(&cc, 0, 10 * MSS, now + 1000 * US);
	cr_assert_eq(cc.cwnd, 75 * MSS);
}

Test(cc, window_limits_inflight)
{
	struct ferry_cc cc;
	uint64_t now;

	flow(&cc, 4 * MSS, &now);
	/* Each after the pacer's gap: the window alone says no. */
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ferry__cc_check(&cc, MSS, now), FERRY__CC_GO);
		ferry__cc_on_sent(&cc, MSS, now);
		now += cc.srtt_ns;
	}
	cr_assert_eq(ferry__cc_check(&cc, MSS, now), FERRY__CC_WINDOW);
	ferry__cc_on_acked(&cc, MSS, 0, now + 1);
	cr_assert_eq(ferry__cc_check(&cc, MSS, now + 1), FERRY__CC_GO);
	/* A packet forgotten (its call ended) leaves flight too. */
	ferry__cc_on_sent(&cc, MSS, now + 1);
	ferry__cc_on_forgot(&cc, MSS);
	cr_assert_eq(ferry__cc_check(&cc, MSS, now + 1), FERRY__CC_GO);
}

Test(cc, nothing_in_flight_always_sends)
{
	struct ferry_cc cc;
	uint64_t now;

	flow(&cc, 100 * MSS, &now);
	/* The smallest window still lets a lone packet of any size go. */
	for (int i = 0; i < 5; i++) {
		now += 1000 * US;
		ferry__cc_on_loss(&cc, true, now);
	}
	cr_assert_eq(cc.cwnd, cc.min_cwnd);
	cr_assert_eq(cc.inflight, 0);
	cr_assert_eq(ferry__cc_check(&cc, 64 * MSS, now), FERRY__CC_GO);
}

Test(cc, paces_below_one_packet)
{
	struct ferry_cc cc;
	uint64_t now, gap, ahead = FERRY__CC_PACE_AHEAD_NS;

	flow(&cc, 100 * MSS, &now);
	cc.cwnd = MSS / 4; /* a quarter packet per srtt */
	cr_assert_eq(ferry__cc_next_send_ns(&cc), 0);
	ferry__cc_on_sent(&cc, MSS, now);
	gap = cc.srtt_ns * 4;
	cr_assert_gt(gap, 2 * ahead);
	/* It may go a little ahead of its time, for a poll loop's late
	 * wake-up, no more. */
	cr_assert_eq(ferry__cc_next_send_ns(&cc), now + gap - ahead);
	/* Acknowledged at once, still the pacer holds the next back. */
	ferry__cc_on_acked(&cc, MSS, 0, now + 10);
	cr_assert_eq(cc.inflight, 0);
	cr_assert_eq(ferry__cc_check(&cc, MSS, now + gap - ahead - 1),
		     FERRY__CC_PACED);
	cr_assert_eq(ferry__cc_check(&cc, MSS, now + gap - ahead),
		     FERRY__CC_GO);
	/* A smaller packet's share of the rate is smaller, and counts from
	 * when the one before was due. */
	ferry__cc_on_sent(&cc, MSS / 2, now + gap - ahead);
	cr_assert_eq(ferry__cc_next_send_ns(&cc), now + gap + gap / 2 - ahead);
}

/* Above a packet, a window goes out spread over the round trip, at 1.25
 * times its rate, not as one burst; an idle sender may send three
 * packets back to back (two gaps' worth of slack, and the one whose
 * time it is). */
Test(cc, paces_a_window_over_the_round_trip)
{
	struct ferry_cc cc;
	uint64_t now = 1000 * US, t0, gap, ahead = FERRY__CC_PACE_AHEAD_NS;
	int n = 0;

	/* srtt 2 ms, 10 packets a round trip, at 1.25: 160 us apart. */
	ferry__cc_init(&cc, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 5000 * US);
	ferry__cc_on_sent(&cc, MSS, now);
	now += 2000 * US;
	ferry__cc_on_acked(&cc, MSS, 2000 * US, now);
	cc.cwnd = 10 * MSS;
	gap = cc.srtt_ns * MSS * 4 / (10 * MSS * 5);
	cr_assert_eq(gap, 160 * US);
	cr_assert_lt(ahead, gap);
	now += 10000 * US;
	t0 = now;
	while (ferry__cc_check(&cc, MSS, now) == FERRY__CC_GO) {
		ferry__cc_on_sent(&cc, MSS, now);
		n++;
	}
	cr_assert_eq(n, 3, "%d back to back after idle", n);
	cr_assert_eq(ferry__cc_check(&cc, MSS, now), FERRY__CC_PACED);
	cr_assert_eq(ferry__cc_next_send_ns(&cc), t0 + gap - ahead);
	/* Then one per gap: the window (10) is not what holds them. */
	for (int i = 0; i < 5; i++) {
		now = ferry__cc_next_send_ns(&cc);
		cr_assert_eq(ferry__cc_check(&cc, MSS, now - 1),
			     FERRY__CC_PACED);
		cr_assert_eq(ferry__cc_check(&cc, MSS, now), FERRY__CC_GO);
		ferry__cc_on_sent(&cc, MSS, now);
	}
	cr_assert_eq(ferry__cc_next_send_ns(&cc), t0 + 6 * gap - ahead);
	cr_assert_eq(cc.inflight, 8 * MSS);
}

Test(cc, base_is_windowed_min)
{
	struct ferry_cc cc;
	uint64_t now = 1000 * US;

	/* The automatic target shows base where it is long: twice it. */
	ferry__cc_init(&cc, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 0);
	ferry__cc_on_acked(&cc, 0, 800 * US, now + 1);
	cr_assert_eq(ferry__cc_target_ns(&cc), 1600 * US);
	ferry__cc_on_acked(&cc, 0, 1200 * US, now + 2);
	cr_assert_eq(ferry__cc_target_ns(&cc), 1600 * US);
	/* Two windows on, the old minimum is forgotten. */
	ferry__cc_on_acked(&cc, 0, 1000 * US, now + 11000000000ull);
	ferry__cc_on_acked(&cc, 0, 1000 * US, now + 22000000000ull);
	cr_assert_eq(ferry__cc_target_ns(&cc), 2000 * US);
}

/* A configured target is one round trip for every flow, whatever base
 * each measured: one that came up behind a standing queue, and took it
 * for its base, holds no larger share than one that saw the path empty.
 * Only a path whose base reaches the target is held at base and a
 * quarter instead. */
Test(cc, configured_target_is_the_same_for_every_base)
{
	struct ferry_cc early, late, far;

	ferry__cc_init(&early, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 1000 * US);
	ferry__cc_init(&late, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 1000 * US);
	ferry__cc_init(&far, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 1000 * US);
	cr_assert_eq(ferry__cc_target_ns(&early), 1000 * US);
	ferry__cc_on_acked(&early, 0, 50 * US, 1);
	ferry__cc_on_acked(&late, 0, 700 * US, 1);
	ferry__cc_on_acked(&far, 0, 2000 * US, 1);
	cr_assert_eq(ferry__cc_target_ns(&early), 1000 * US);
	cr_assert_eq(ferry__cc_target_ns(&late), 1000 * US);
	cr_assert_eq(ferry__cc_target_ns(&far), 2500 * US);
}

/* Swift's flow scaling: under one queue, a sample a little above target
 * shrinks a large window and still grows a small one (up to half the
 * target more at one path frame, nothing at 64 or more). */
Test(cc, small_window_tolerates_more_delay)
{
	struct ferry_cc small, large;
	uint64_t now = 10000 * US;

	ferry__cc_init(&small, FERRY__CC_SWIFT, MSS, 2 * MSS, 0, 1000 * US);
	ferry__cc_init(&large, FERRY__CC_SWIFT, MSS, 64 * MSS, 0, 1000 * US);
	ferry__cc_on_acked(&small, 0, 100 * US, now);
	ferry__cc_on_acked(&large, 0, 100 * US, now);
	small.cwnd = 2 * MSS;
	large.cwnd = 64 * MSS;
	now += 1000 * US;
	ferry__cc_on_acked(&small, 0, 1200 * US, now);
	ferry__cc_on_acked(&large, 0, 1200 * US, now);
	cr_assert_gt(small.cwnd, 2 * MSS);
	cr_assert_lt(large.cwnd, 64 * MSS);
	/* At one frame it tolerates half the target more, and no more. */
	small.cwnd = MSS;
	now += 1000 * US;
	ferry__cc_on_acked(&small, 0, 1499 * US, now);
	cr_assert_gt(small.cwnd, MSS);
	small.cwnd = MSS;
	now += 5000 * US;
	ferry__cc_on_acked(&small, 0, 1600 * US, now);
	cr_assert_lt(small.cwnd, MSS);
}

/* Not configured: 1 ms for every flow on a short path, whatever base
 * each measured; twice base on a long one. */
Test(cc, auto_target)
{
	struct ferry_cc cc;

	ferry__cc_init(&cc, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 0);
	cr_assert_eq(ferry__cc_target_ns(&cc), 0);
	ferry__cc_on_acked(&cc, 0, 20 * US, 1);
	cr_assert_eq(ferry__cc_target_ns(&cc), FERRY__CC_AUTO_TARGET_NS);
	ferry__cc_init(&cc, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 0);
	ferry__cc_on_acked(&cc, 0, 400 * US, 1);
	cr_assert_eq(ferry__cc_target_ns(&cc), FERRY__CC_AUTO_TARGET_NS);
	/* A long path tolerates a queue in proportion. */
	ferry__cc_init(&cc, FERRY__CC_SWIFT, MSS, 10 * MSS, 0, 0);
	ferry__cc_on_acked(&cc, 0, 10000 * US, 1);
	cr_assert_eq(ferry__cc_target_ns(&cc),
		     10000 * US * (100 + FERRY__CC_HEADROOM_BASE_PCT) / 100);
}

Test(cc, none_limits_nothing)
{
	struct ferry_cc cc;

	ferry__cc_init(&cc, FERRY__CC_NONE, MSS, MSS, MSS, TARGET);
	for (int i = 0; i < 1000; i++)
		ferry__cc_on_sent(&cc, MSS, 1);
	ferry__cc_on_acked(&cc, MSS, 1000000 * US, 2);
	ferry__cc_on_loss(&cc, true, 3);
	ferry__cc_on_ecn(&cc, MSS, MSS, 4);
	cr_assert_eq(ferry__cc_check(&cc, 1u << 20, 5), FERRY__CC_GO);
	cr_assert_eq(ferry__cc_next_send_ns(&cc), 0);
}
