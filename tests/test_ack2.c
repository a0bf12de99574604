/* SPDX-License-Identifier: MIT */
/*
 * Wire v2 acknowledgement and loss recovery as units (transport/ackrx.c,
 * transport/sentq.c; docs/wire.md, 5.1 to 5.3): the ACK a receiver
 * builds against a model of what arrived, when an ACK is owed, and the
 * sender's records: acknowledgement, the packet and time thresholds, the
 * retransmission timeout and its back-off, forgetting, ring limits, and a
 * lossy, reordering channel between the two until every frame is
 * acknowledged exactly once.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "transport/ackrx.h"
#include "transport/sentq.h"

#define MS 1000000ull

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* --- the receiver --------------------------------------------------------- */

#define LOG2 11
static uint64_t rbits[FERRY_REPLAY_WORDS(LOG2)];
static struct ferry__ackrx rx;

/* The pns an ACK names, as a bitmap over [0, 4096). */
static void ack_set(const struct ferry_w2_ack *a, uint64_t largest,
		    uint8_t *set)
{
	struct ferry_w2_pn_range r[FERRY_W2_ACK_RANGES_MAX + 1];
	int n = ferry__w2_ack_ranges(a, largest, r);

	cr_assert_gt(n, 0);
	for (int i = 0; i < n; i++)
		for (uint64_t p = r[i].lo; p <= r[i].hi; p++)
			set[p] = 1;
}

Test(ackrx, in_order_delayed_then_due)
{
	struct ferry_w2_ack a;

	cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
	cr_assert_eq(ferry__ackrx_build(&rx, 0, &a), -ENOENT);
	for (uint64_t pn = 0; pn < 5; pn++)
		ferry__ackrx_on_dgram(&rx, pn,
				      FERRY_ACKRX_ELICITING |
					      FERRY_ACKRX_ACKABLE,
				      100 * MS + pn, 1 * MS);
	cr_assert(ferry__ackrx_any(&rx));
	cr_assert(!ferry__ackrx_due(&rx, 100 * MS + 10));
	cr_assert(ferry__ackrx_due(&rx, 101 * MS));
	cr_assert_eq(ferry__ackrx_build(&rx, 100 * MS + 4 + 3000, &a), 0);
	cr_assert_eq(a.largest, 4);
	cr_assert_eq(a.first_range, 4);
	cr_assert_eq(a.nranges, 0);
	cr_assert_eq(a.ack_delay, 3);
	ferry__ackrx_sent(&rx);
	cr_assert(!ferry__ackrx_any(&rx));
}

Test(ackrx, eighth_eliciting_is_owed_now)
{
	cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
	for (uint64_t pn = 0; pn < FERRY_ACKRX_ELICIT_MAX; pn++) {
		cr_assert(!rx.now, "owed at once after %llu",
			  (unsigned long long)pn);
		ferry__ackrx_on_dgram(&rx, pn,
				      FERRY_ACKRX_ELICITING |
					      FERRY_ACKRX_ACKABLE,
				      0, MS);
	}
	cr_assert(ferry__ackrx_due(&rx, 0));
}

Test(ackrx, gap_and_immediate_are_owed_now)
{
	cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
	ferry__ackrx_on_dgram(&rx, 0, FERRY_ACKRX_ELICITING | FERRY_ACKRX_ACKABLE,
			      0, MS);
	cr_assert(!rx.now);
	ferry__ackrx_on_dgram(&rx, 2, FERRY_ACKRX_ELICITING | FERRY_ACKRX_ACKABLE,
			      0, MS);
	cr_assert(rx.now, "a skipped pn is reported at once");
	ferry__ackrx_sent(&rx);
	ferry__ackrx_on_dgram(&rx, 1, FERRY_ACKRX_ELICITING | FERRY_ACKRX_ACKABLE,
			      0, MS);
	cr_assert(rx.now, "a hole filled late is reported at once");
	ferry__ackrx_sent(&rx);
	ferry__ackrx_on_dgram(&rx, 3, FERRY_ACKRX_ELICITING | FERRY_ACKRX_ACKABLE |
					      FERRY_ACKRX_IMMEDIATE,
			      0, MS);
	cr_assert(rx.now);
}

Test(ackrx, non_eliciting_owes_nothing_unackable_not_named)
{
	struct ferry_w2_ack a;
	uint8_t set[4096] = { 0 };

	cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
	ferry__ackrx_on_dgram(&rx, 0, FERRY_ACKRX_ACKABLE, 0, MS);
	cr_assert(!ferry__ackrx_any(&rx), "an ACK-only datagram elicits nothing");
	/* Data that could not be taken: not acknowledged, so it is sent
	 * again. */
	ferry__ackrx_on_dgram(&rx, 1, FERRY_ACKRX_ELICITING, 0, MS);
	ferry__ackrx_on_dgram(&rx, 2, FERRY_ACKRX_ELICITING | FERRY_ACKRX_ACKABLE,
			      0, MS);
	cr_assert_eq(ferry__ackrx_build(&rx, 0, &a), 0);
	ack_set(&a, 2, set);
	cr_assert(set[0] && !set[1] && set[2]);
}

Test(ackrx, ack_delay_saturates)
{
	struct ferry_w2_ack a;

	cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
	ferry__ackrx_on_dgram(&rx, 7, FERRY_ACKRX_ELICITING | FERRY_ACKRX_ACKABLE,
			      MS, MS);
	cr_assert_eq(ferry__ackrx_build(&rx, 10000 * MS, &a), 0);
	cr_assert_eq(a.ack_delay, UINT16_MAX);
	cr_assert_eq(a.largest, 7);
	cr_assert_eq(a.first_range, 0);
}

/* Random arrivals against a model: the ACK names exactly the pns that
 * arrived, from the largest down to the 33rd range (or the window). */
/* The ACK @rx builds now against the model @got (the pns taken, all
 * below @largest + 1): every pn from the largest down is named as the
 * model says, until the ranges run out; nothing below the window. */
static void check_model(const uint8_t *got, uint64_t largest, int round)
{
	static uint8_t set[4096];
	struct ferry_w2_ack a;
	uint64_t lo, p;
	int ranges_seen = 0;
	bool in = false;

	cr_assert_eq(rx.got.next, largest + 1);
	cr_assert_eq(ferry__ackrx_build(&rx, 0, &a), 0);
	memset(set, 0, sizeof(set));
	ack_set(&a, largest, set);
	lo = largest + 1 > 2048 ? largest + 1 - 2048 : 0;
	/* Walk the model down from the largest, counting ranges, until the
	 * ACK had to stop. */
	for (p = largest + 1; p-- > lo;) {
		if (got[p] && !in) {
			ranges_seen++;
			in = true;
		} else if (!got[p]) {
			in = false;
		}
		if (ranges_seen > 1 + FERRY_W2_ACK_RANGES_MAX)
			break;
		cr_assert_eq(set[p], got[p], "round %d pn %llu", round,
			     (unsigned long long)p);
	}
	for (p = 0; p < lo; p++)
		cr_assert_eq(set[p], 0);
}

/* Random pns, sparse to dense. */
Test(ackrx, ranges_match_model)
{
	for (int round = 0; round < 300; round++) {
		static uint8_t got[4096];
		uint64_t largest = 0;
		unsigned density = 1 + (unsigned)(rng_next() % 15);

		memset(got, 0, sizeof(got));
		cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
		for (int i = 0; i < 600; i++) {
			uint64_t pn = rng_next() % 4000;

			if (rng_next() % 16 >= density)
				continue;
			/* Below the window: the tracker forgets it. */
			if (rx.got.next > 2048 && pn < rx.got.next - 2048)
				continue;
			ferry__ackrx_on_dgram(&rx, pn, FERRY_ACKRX_ACKABLE, 0,
					      MS);
			got[pn] = 1;
			if (pn > largest)
				largest = pn;
			if (round < 20 && i % 4 == 0)
				check_model(got, largest, round);
		}
		if (rx.got.next != 0)
			check_model(got, largest, round);
	}
}

/* Mostly in order, as on a quiet path: runs that grow at the top, jumps
 * over pns (lost, or held back) that arrive later and join runs below,
 * some never; the ACK is built after every datagram (the run at the top
 * is kept as it grows, not counted again each time). */
Test(ackrx, ranges_match_model_in_order)
{
	for (int round = 0; round < 20; round++) {
		static uint8_t got[4096];
		uint64_t next = 0, largest = 0, held[64];
		unsigned nheld = 0;

		memset(got, 0, sizeof(got));
		cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
		while (next < 3900) {
			uint64_t pn = next++;
			unsigned r = (unsigned)(rng_next() % 64);

			if (r < 3 && nheld < 64) {
				held[nheld++] = pn; /* comes later */
				continue;
			}
			if (r < 5)
				continue; /* never comes */
			if (r < 9 && nheld) {
				/* A held one arrives: it may fill the hole
				 * just below the top run, or one further
				 * down. */
				unsigned k = (unsigned)(rng_next() % nheld);

				if (rx.got.next <= 2048 ||
				    held[k] >= rx.got.next - 2048) {
					ferry__ackrx_on_dgram(
						&rx, held[k],
						FERRY_ACKRX_ACKABLE, 0, MS);
					got[held[k]] = 1;
				}
				held[k] = held[--nheld];
			}
			ferry__ackrx_on_dgram(&rx, pn, FERRY_ACKRX_ACKABLE, 0,
					      MS);
			got[pn] = 1;
			largest = pn;
			check_model(got, largest, round);
		}
	}
}

/* --- the sender ------------------------------------------------------------ */

#define DG_LOG2 6
#define FR_LOG2 8
static struct ferry__sent_dg dgs[1u << DG_LOG2];
static struct ferry__sent_frame frs[1u << FR_LOG2], lost[1u << FR_LOG2];
static struct ferry__sentq q;
static unsigned acked_count[1024];
static unsigned acked_total;

static void on_acked(void *ctx, const struct ferry__sent_frame *f)
{
	(void)ctx;
	acked_count[(uintptr_t)f->obj - 1]++;
	acked_total++;
}

static void *obj(unsigned i)
{
	return (void *)(uintptr_t)(i + 1);
}

static void sq_init(uint64_t first)
{
	ferry__sentq_init(&q, dgs, DG_LOG2, frs, lost, FR_LOG2, first);
	memset(acked_count, 0, sizeof(acked_count));
	acked_total = 0;
}

/* Send datagram carrying frame of object @i; returns its pn. */
static uint64_t send1(unsigned i, uint64_t now)
{
	cr_assert(ferry__sentq_room(&q));
	cr_assert(ferry__sentq_add(&q, obj(i), 1, 0, 100));
	return ferry__sentq_commit(&q, now, 120);
}

/* An ACK of the pns in [lo, hi]. */
static struct ferry_w2_ack ack_of(uint64_t lo, uint64_t hi)
{
	struct ferry_w2_ack a = { .largest = (uint32_t)hi,
				  .first_range = (uint16_t)(hi - lo) };
	return a;
}

Test(sentq, ack_all)
{
	struct ferry_w2_ack a;

	sq_init(0);
	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(send1(i, i * MS), i);
	cr_assert_eq(q.in_flight, 10);
	a = ack_of(0, 9);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 20 * MS, on_acked, NULL), 10);
	cr_assert_eq(acked_total, 10);
	cr_assert_eq(q.in_flight, 0);
	cr_assert_eq(q.una, q.next_pn);
	cr_assert_eq(q.bytes_in_flight, 0);
	/* Again: nothing new. */
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 21 * MS, on_acked, NULL), 0);
	cr_assert_eq(acked_total, 10);
	/* RTT from the largest: sent at 9 ms, acknowledged at 20. */
	cr_assert_eq(q.latest_rtt_ns, 11 * MS);
	cr_assert_eq(ferry__sentq_deadline(&q), 0);
}

/* A first round trip of 1 ms (the smallest), then a datagram sent at
 * 10 ms and acknowledged at @acked_at with @delay_us of ack_delay: the
 * sample that second ACK gives. */
static uint64_t second_sample(uint16_t delay_us, uint64_t acked_at)
{
	struct ferry_w2_ack a;

	sq_init(0);
	send1(0, 0);
	a = ack_of(0, 0);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 1 * MS, on_acked, NULL), 1);
	cr_assert_eq(q.min_rtt_ns, 1 * MS);
	send1(1, 10 * MS);
	a = ack_of(1, 1);
	a.ack_delay = delay_us;
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, acked_at, on_acked, NULL), 1);
	return q.latest_rtt_ns;
}

Test(sentq, ack_delay_comes_off_the_sample)
{
	/* 5 ms, of which the peer held the ACK 2. */
	cr_assert_eq(second_sample(2000, 15 * MS), 3 * MS);
}

/* A hold longer than the round trip less the smallest one seen does not
 * come off: the sample would fall below what the path has ever done
 * (clocks are read once per receive burst, so such reports happen).
 * Before this rule a base RTT built on such samples fell to 0 and a
 * congestion controller's automatic target with it. */
Test(sentq, ack_delay_never_takes_a_sample_below_min_rtt)
{
	struct ferry_w2_ack a;

	/* 1.9 ms held of a 2 ms round trip, over a 1 ms minimum. */
	cr_assert_eq(second_sample(1900, 12 * MS), 2 * MS);
	/* The first sample is the minimum, whatever its report says. */
	sq_init(0);
	send1(0, 0);
	a = ack_of(0, 0);
	a.ack_delay = 4000;
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 5 * MS, on_acked, NULL), 1);
	cr_assert_eq(q.latest_rtt_ns, 5 * MS);
}

Test(sentq, ack_only_datagrams_take_pns_but_no_record)
{
	struct ferry_w2_ack a;

	sq_init(1);
	cr_assert_eq(ferry__sentq_commit(&q, 0, 30), 1);
	cr_assert_eq(q.in_flight, 0);
	cr_assert_eq(q.una, 2);
	cr_assert_eq(send1(0, 0), 2);
	/* An ACK that covers the ACK-only pn and the server's pn 0. */
	a = ack_of(0, 2);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, MS, on_acked, NULL), 1);
	cr_assert_eq(acked_total, 1);
}

Test(sentq, ack_of_unsent_is_protocol_error)
{
	struct ferry_w2_ack a = ack_of(0, 5);

	sq_init(0);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 0, on_acked, NULL), -EPROTO);
	send1(0, 0);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 0, on_acked, NULL), -EPROTO);
	a = ack_of(0, 0);
	a.nranges = 1;
	a.ranges[0].gap = 1;
	a.ranges[0].count = 1;
	cr_assert_lt(ferry__sentq_on_ack(&q, &a, 0, on_acked, NULL), 0,
		     "a range below pn 0");
	cr_assert_eq(acked_total, 0);
}

Test(sentq, packet_threshold)
{
	struct ferry_w2_ack a;
	const struct ferry__sent_frame *f;

	sq_init(0);
	for (unsigned i = 0; i < 5; i++)
		send1(i, 0);
	/* 1 and 2 arrive: two later datagrams, so pn 0 is not lost yet
	 * (and an RTT of 0 would meet the time threshold: the ACK comes
	 * at 1 ms, the sample 1 ms, and pn 0 was sent at 0). */
	a = ack_of(1, 2);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, MS, on_acked, NULL), 2);
	cr_assert_null(ferry__sentq_lost_peek(&q));
	a = ack_of(1, 3);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, MS, on_acked, NULL), 1);
	f = ferry__sentq_lost_peek(&q);
	cr_assert_not_null(f, "three later datagrams acknowledged: lost");
	cr_assert_eq(f->obj, obj(0));
	cr_assert_eq(q.lost_dgrams, 1);
	/* It goes again in a new datagram, under a new pn. */
	cr_assert(ferry__sentq_add_lost(&q));
	cr_assert_null(ferry__sentq_lost_peek(&q));
	cr_assert_eq(ferry__sentq_commit(&q, MS, 120), 5);
	a = ack_of(4, 5);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 2 * MS, on_acked, NULL), 2);
	cr_assert_eq(acked_count[0], 1);
	cr_assert_eq(acked_total, 5);
	cr_assert_eq(q.in_flight, 0);
}

Test(sentq, time_threshold)
{
	struct ferry_w2_ack a;

	sq_init(0);
	send1(0, 0);
	send1(1, 1 * MS);
	a = ack_of(1, 1);
	/* RTT 10 ms: pn 0 is lost once 9/8 of it has passed since it was
	 * sent, not before. */
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 11 * MS, on_acked, NULL), 1);
	cr_assert_null(ferry__sentq_lost_peek(&q));
	cr_assert_eq(ferry__sentq_deadline(&q), 11 * MS + MS / 4);
	cr_assert_eq(ferry__sentq_timer(&q, 11 * MS + MS / 5, NULL), 0);
	cr_assert_eq(ferry__sentq_timer(&q, 11 * MS + MS / 4, NULL), 1);
	cr_assert_not_null(ferry__sentq_lost_peek(&q));
}

Test(sentq, rto_and_backoff)
{
	uint64_t rto;

	sq_init(0);
	send1(0, 0);
	send1(1, 0);
	rto = ferry__sentq_rto(&q);
	cr_assert_eq(rto, FERRY_SENTQ_RTO_INIT_NS);
	cr_assert_eq(ferry__sentq_deadline(&q), rto);
	cr_assert_eq(ferry__sentq_timer(&q, rto - 1, NULL), 0);
	/* Nothing acknowledged below: only the oldest goes. */
	cr_assert_eq(ferry__sentq_timer(&q, rto, NULL), 1);
	cr_assert_eq(q.rto_fired, 1);
	cr_assert_eq(ferry__sentq_rto(&q), 2 * rto, "backed off");
	cr_assert(ferry__sentq_add_lost(&q));
	ferry__sentq_commit(&q, rto, 120);
	/* Progress resets the back-off. */
	{
		struct ferry_w2_ack a = ack_of(2, 2);

		cr_assert_eq(ferry__sentq_on_ack(&q, &a, rto + MS, on_acked,
						 NULL), 1);
	}
	cr_assert_eq(q.backoff, 0);
}

Test(sentq, handshake_seeds_the_rtt)
{
	sq_init(0);
	/* The handshake took 10 ms: the first RTO is RFC 6298's for one
	 * sample (srtt + 4 * srtt / 2), not FERRY_SENTQ_RTO_INIT_NS. */
	ferry__sentq_seed_rtt(&q, 10 * MS);
	cr_assert_eq(q.srtt_ns, 10 * MS);
	cr_assert_eq(ferry__sentq_rto(&q), 30 * MS);
	send1(0, 0);
	cr_assert_eq(ferry__sentq_deadline(&q), 30 * MS);
	/* A second seed (or one after a real sample) changes nothing. */
	ferry__sentq_seed_rtt(&q, 100 * MS);
	cr_assert_eq(q.srtt_ns, 10 * MS);
	/* A fast handshake still leaves the RTO at its floor. */
	sq_init(0);
	ferry__sentq_seed_rtt(&q, 100000);
	cr_assert_eq(ferry__sentq_rto(&q), FERRY_SENTQ_RTO_MIN_NS);
}

/* A fresh queue with pn 0 sent at 1 ms: when its RTO (in *@rto) expires. */
static uint64_t one_sent_at_1ms(uint64_t *rto)
{
	sq_init(0);
	send1(0, 1 * MS);
	*rto = ferry__sentq_rto(&q);
	return 1 * MS + *rto;
}

/* The RTO of pn 0, sent at 1 ms, held while the peer works through what
 * was sent before it. */
Test(sentq, rto_held_while_the_peer_has_a_backlog)
{
	struct ferry__sentq_peer p = { 0 };
	uint64_t rto, t;

	t = one_sent_at_1ms(&rto);
	/* The peer acknowledged, just now, a datagram (of another session)
	 * sent before pn 0: it has not reached pn 0 yet. */
	p.acked_sent_ns = 1 * MS - 1;
	p.progress_ns = t - 1;
	p.read_up_ns = t; /* and this end has read all it received */
	cr_assert_eq(ferry__sentq_timer(&q, t, &p), 0);
	cr_assert_eq(q.rto_held, 1);
	cr_assert_eq(q.rto_fired, 0);
	cr_assert_eq(q.backoff, 0, "a hold is not a timeout");
	cr_assert_null(ferry__sentq_lost_peek(&q));
	cr_assert_eq(ferry__sentq_deadline(&q), t + rto);
	cr_assert_eq(ferry__sentq_timer(&q, t + rto - 1, &p), 0);
	cr_assert_eq(q.rto_held, 1, "nothing to do before the hold ends");
	/* It acknowledged one sent with pn 0 (one flush, one send time):
	 * it reached pn 0's train, so pn 0 is lost. */
	p.acked_sent_ns = 1 * MS;
	p.progress_ns = t + rto - 1;
	p.read_up_ns = t + rto;
	cr_assert_eq(ferry__sentq_timer(&q, t + rto, &p), 1);
	cr_assert_eq(q.rto_fired, 1);
	cr_assert_not_null(ferry__sentq_lost_peek(&q));
}

Test(sentq, rto_fires_for_a_quiet_or_unknown_peer)
{
	struct ferry__sentq_peer p = { 0 };
	uint64_t rto, t;

	/* Unknown: nothing held. */
	t = one_sent_at_1ms(&rto);
	cr_assert_eq(ferry__sentq_timer(&q, t, NULL), 1);
	/* Quiet: its last progress is a quarter RTO old (it answered what
	 * came before pn 0, then nothing: pn 0 is lost, not queued), and
	 * this end has read all it received. */
	t = one_sent_at_1ms(&rto);
	p.progress_ns = t - rto / 4;
	p.read_up_ns = t;
	cr_assert_eq(ferry__sentq_timer(&q, t, &p), 1);
	cr_assert_eq(q.rto_held, 0);
}

/* The same quiet peer, but this end last read its receive queue empty
 * when that peer was still acknowledging: what it has not read yet may
 * acknowledge pn 0, so the RTO waits; once it has read up, it fires. */
Test(sentq, rto_held_while_this_end_has_a_backlog)
{
	struct ferry__sentq_peer p = { 0 };
	uint64_t rto, t;

	t = one_sent_at_1ms(&rto);
	p.progress_ns = 2 * MS;
	p.read_up_ns = 2 * MS + 1;
	cr_assert_eq(ferry__sentq_timer(&q, t, &p), 0);
	cr_assert_eq(q.rto_held, 1);
	p.read_up_ns = t + rto;
	cr_assert_eq(ferry__sentq_timer(&q, t + rto, &p), 1);
	cr_assert_eq(q.rto_fired, 1);
}

Test(sentq, rto_hold_is_bounded)
{
	struct ferry__sentq_peer p = { 0 };
	uint64_t t;

	sq_init(0);
	send1(0, 1 * MS);
	/* A peer that keeps acknowledging older datagrams holds the RTO
	 * back for at most FERRY_SENTQ_HOLD_MAX_NS. */
	for (t = 1 * MS + ferry__sentq_rto(&q);
	     t < 1 * MS + FERRY_SENTQ_HOLD_MAX_NS;
	     t = ferry__sentq_deadline(&q)) {
		p.progress_ns = p.read_up_ns = t;
		cr_assert_eq(ferry__sentq_timer(&q, t, &p), 0);
	}
	cr_assert_gt(q.rto_held, 100);
	p.progress_ns = p.read_up_ns = t;
	cr_assert_eq(ferry__sentq_timer(&q, t, &p), 1);
	cr_assert_eq(q.rto_fired, 1);
}

Test(sentq, progress_ends_a_hold)
{
	struct ferry__sentq_peer p = { 0 };
	struct ferry_w2_ack a;
	uint64_t rto;

	sq_init(0);
	send1(0, 1 * MS);
	send1(1, 2 * MS);
	rto = ferry__sentq_rto(&q);
	p.progress_ns = p.read_up_ns = MS + rto;
	cr_assert_eq(ferry__sentq_timer(&q, MS + rto, &p), 0);
	cr_assert_eq(q.hold_ns, MS + 2 * rto);
	/* pn 0 acknowledged: the hold was for it; pn 1's RTO is its own. */
	a = ack_of(0, 0);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 2 * MS + rto, on_acked,
					 NULL), 1);
	cr_assert_eq(q.hold_ns, 0);
	cr_assert_eq(q.acked_sent_ns, 1 * MS,
		     "the send time of what it acknowledged");
	cr_assert_eq(ferry__sentq_deadline(&q), 2 * MS + ferry__sentq_rto(&q));
}

Test(sentq, forget)
{
	struct ferry_w2_ack a;

	sq_init(0);
	send1(0, 0);
	send1(1, 0);
	cr_assert(ferry__sentq_add(&q, obj(0), 1, 100, 100));
	cr_assert(ferry__sentq_add(&q, obj(2), 1, 0, 100));
	ferry__sentq_commit(&q, 0, 300);
	cr_assert_eq(ferry__sentq_forget(&q, obj(0)), 2);
	a = ack_of(0, 2);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, MS, on_acked, NULL), 3);
	cr_assert_eq(acked_count[0], 0, "a forgotten object is never named");
	cr_assert_eq(acked_count[1], 1);
	cr_assert_eq(acked_count[2], 1);
}

/* Forgetting within the datagrams that hold an object's frames finds them
 * all there (in flight and lost), and looks at nothing outside. */
Test(sentq, forget_range)
{
	uint64_t p0, p2;

	sq_init(0);
	p0 = send1(0, 0);       /* pn 0: obj 0 */
	send1(1, 0);            /* pn 1: obj 1 */
	p2 = send1(0, 0);       /* pn 2: obj 0 */
	send1(3, 0);            /* pn 3: obj 3 */
	/* Outside the range: nothing found. */
	cr_assert_eq(ferry__sentq_forget_range(&q, obj(0), 3, 3), 0);
	cr_assert_eq(ferry__sentq_forget_range(&q, obj(1), 2, 3), 0);
	/* A range past what was sent, and one below una, are clipped. */
	cr_assert_eq(ferry__sentq_forget_range(&q, obj(0), p0, p2 + 100), 2);
	cr_assert_eq(ferry__sentq_forget_range(&q, obj(0), p0, p2), 0);
	/* A lost frame is found on the lost queue whatever the range. */
	send1(3, 0);            /* pn 4 */
	send1(3, 0);            /* pn 5 */
	struct ferry_w2_ack a = ack_of(3, 5);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, MS, on_acked, NULL), 3);
	cr_assert_not_null(ferry__sentq_lost_peek(&q), "pn 1 judged lost");
	cr_assert_eq(ferry__sentq_forget_range(&q, obj(1), 5, 5), 1);
	cr_assert_eq(acked_count[0], 0);
	cr_assert_eq(acked_count[1], 0);
	cr_assert_eq(acked_count[3], 3);
}

/* The record an owner saw its one frame added at: forgotten in place while
 * it is there, and refused (nothing changed) once it has moved: acked,
 * judged lost, sent again, or the index names another object's frame. */
Test(sentq, forget_at)
{
	struct ferry_w2_ack a;
	uint32_t fr0, fr1, fr2;
	uint64_t p0, p1, p2;

	sq_init(0);
	cr_assert(ferry__sentq_add(&q, obj(0), 1, 0, 100));
	fr0 = ferry__sentq_last_frame(&q);
	cr_assert(ferry__sentq_add(&q, obj(1), 1, 0, 100));
	fr1 = ferry__sentq_last_frame(&q);
	p0 = ferry__sentq_commit(&q, 0, 240);
	cr_assert(ferry__sentq_add(&q, obj(2), 1, 0, 100));
	fr2 = ferry__sentq_last_frame(&q);
	p2 = ferry__sentq_commit(&q, 0, 120);
	/* Wrong datagram, wrong object, a pn never sent: refused. */
	cr_assert(!ferry__sentq_forget_at(&q, obj(0), p2, fr0));
	cr_assert(!ferry__sentq_forget_at(&q, obj(0), p0, fr1));
	cr_assert(!ferry__sentq_forget_at(&q, obj(0), p2 + 1, fr0));
	/* In place: forgotten, and never named by the ACK. */
	cr_assert(ferry__sentq_forget_at(&q, obj(0), p0, fr0));
	cr_assert(!ferry__sentq_forget_at(&q, obj(0), p0, fr0), "only once");
	a = ack_of(p0, p0);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, MS, on_acked, NULL), 1);
	cr_assert_eq(acked_count[0], 0);
	cr_assert_eq(acked_count[1], 1);
	/* Acknowledged: refused. */
	cr_assert(!ferry__sentq_forget_at(&q, obj(1), p0, fr1));
	/* Judged lost (three later datagrams acknowledged): the record is
	 * on the lost queue, not in its datagram; refused, and the range
	 * forget finds it there. */
	send1(3, 0);
	send1(3, 0);
	p1 = send1(3, 0);
	a = ack_of(p2 + 1, p1);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, MS, on_acked, NULL), 3);
	cr_assert_not_null(ferry__sentq_lost_peek(&q), "pn %lu judged lost",
			   (unsigned long)p2);
	cr_assert(!ferry__sentq_forget_at(&q, obj(2), p2, fr2));
	/* Sent again: in place at its new record. */
	cr_assert(ferry__sentq_add_lost(&q));
	fr2 = ferry__sentq_last_frame(&q);
	p2 = ferry__sentq_commit(&q, MS, 120);
	cr_assert(ferry__sentq_forget_at(&q, obj(2), p2, fr2));
	a = ack_of(p2, p2);
	ferry__sentq_on_ack(&q, &a, 2 * MS, on_acked, NULL);
	cr_assert_eq(acked_count[2], 0, "a forgotten object is never named");
}

Test(sentq, rings_bound_what_is_held)
{
	sq_init(0);
	/* Record slots. */
	for (unsigned i = 0; i < (1u << DG_LOG2); i++)
		send1(i, 0);
	cr_assert(!ferry__sentq_room(&q), "every record slot held");
	/* Frame slots: one datagram of many frames. */
	sq_init(0);
	for (unsigned i = 0; i < (1u << FR_LOG2); i++)
		cr_assert(ferry__sentq_add(&q, obj(i), 1, 0, 1));
	cr_assert(!ferry__sentq_add(&q, obj(0), 1, 0, 1));
	ferry__sentq_abort(&q);
	cr_assert_eq(q.building, 0);
	cr_assert(ferry__sentq_add(&q, obj(0), 1, 0, 1));
}

/* Pooled rings (sentq.h): none until the first datagram, the smallest
 * then, doubling as datagrams and lost frames pile up, every record and
 * frame where the new masks find it; given back once nothing is held. */
Test(sentq, pooled_rings_grow_and_go_back)
{
	struct ferry__sentq_pool pool;
	struct ferry_w2_ack a;
	unsigned n = 0;

	cr_assert_eq(ferry__sentq_pool_init(&pool, 1, 6), 0);
	ferry__sentq_init_pooled(&q, &pool, 0);
	memset(acked_count, 0, sizeof(acked_count));
	acked_total = 0;
	cr_assert_null(q.dg);
	cr_assert(ferry__sentq_room(&q));
	for (; n < 20; n++)
		send1(n, n * MS);
	cr_assert_eq(q.log2, 5, "8, then 16, then 32 records");
	/* 0, 1 and 2 are lost by the packet threshold. */
	a = ack_of(3, 19);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 30 * MS, on_acked, NULL), 17);
	cr_assert_eq(q.lost_head - q.lost_tail, 3);
	/* New datagrams, the lost frames first, until the largest rings. */
	for (; n < 60; n++) {
		if (ferry__sentq_lost_peek(&q))
			cr_assert(ferry__sentq_add_lost(&q));
		cr_assert(ferry__sentq_room(&q), "room at %u", n);
		cr_assert(ferry__sentq_add(&q, obj(n), 1, 0, 100));
		ferry__sentq_commit(&q, 31 * MS + n, 120);
	}
	cr_assert_eq(q.log2, 6);
	cr_assert(ferry__sentq_room(&q));
	cr_assert(!ferry__sentq_release(&q), "held: not given back");
	a = ack_of(20, q.next_pn - 1);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 40 * MS, on_acked, NULL), 40);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(acked_count[i], 1, "frame %u acked %u times", i,
			     acked_count[i]);
	cr_assert(ferry__sentq_release(&q));
	cr_assert_eq(pool.held_bytes, 0);
	cr_assert_null(q.dg);
	/* And again from the smallest. */
	send1(0, 50 * MS);
	cr_assert_eq(q.log2, FERRY_SENTQ_POOL_MIN_LOG2);
	ferry__sentq_drop(&q);
	cr_assert_eq(pool.held_bytes, 0);
	ferry__sentq_pool_fini(&pool);
}

/* At the pool's largest rings, a full queue has no room, as a queue over
 * the caller's rings has none. */
Test(sentq, pooled_rings_bound_what_is_held)
{
	struct ferry__sentq_pool pool;

	cr_assert_eq(ferry__sentq_pool_init(&pool, 1, 4), 0);
	ferry__sentq_init_pooled(&q, &pool, 0);
	for (unsigned i = 0; i < 16; i++)
		send1(i, 0);
	cr_assert_eq(q.log2, 4);
	cr_assert(!ferry__sentq_room(&q), "every record slot held");
	ferry__sentq_drop(&q);
	ferry__sentq_pool_fini(&pool);
}

/*
 * An ACK-only datagram sent while every record slot is held takes the
 * oldest record's slot: that datagram counts as lost and its frame waits
 * on the lost queue, never forgotten (a forgotten fragment left a 1 MiB
 * call waiting for ever under loss).
 */
Test(sentq, ack_only_on_a_full_ring_keeps_the_oldest_frames)
{
	const struct ferry__sent_frame *f;
	uint64_t pn;

	sq_init(0);
	for (unsigned i = 0; i < (1u << DG_LOG2); i++)
		send1(i, 0);
	cr_assert(!ferry__sentq_room(&q));
	cr_assert_eq(q.in_flight, 1u << DG_LOG2);
	pn = ferry__sentq_commit(&q, MS, 30);
	cr_assert_eq(pn, 1u << DG_LOG2);
	cr_assert_eq(q.in_flight, (1u << DG_LOG2) - 1,
		     "in flight: the live records, none overwritten");
	cr_assert_eq(q.lost_dgrams, 1);
	f = ferry__sentq_lost_peek(&q);
	cr_assert_not_null(f, "the oldest datagram's frame waits to go again");
	cr_assert_eq(f->obj, obj(0));
	/* Every other frame is still acknowledged by its own pn. */
	struct ferry_w2_ack a = ack_of(1, (1u << DG_LOG2) - 1);
	cr_assert_eq(ferry__sentq_on_ack(&q, &a, 2 * MS, on_acked, NULL),
		     (1u << DG_LOG2) - 1);
	cr_assert_eq(acked_count[0], 0);
	cr_assert_eq(q.in_flight, 0);
}

/*
 * A channel that loses a third of the datagrams both ways and reorders
 * the rest, a receiver with an ack tracker, and a sender that re-sends
 * lost frames first: every one of 500 frames is acknowledged exactly once,
 * and the rings never overflow.
 */
Test(sentq, lossy_channel_model)
{
	enum { N = 500 };
	struct wire {
		uint64_t pn;
		uint64_t at;
	} inflight[256];
	unsigned nin = 0, next_obj = 0;
	uint64_t now = 0;

	sq_init(0);
	cr_assert_eq(ferry__ackrx_init(&rx, LOG2, rbits), 0);
	while (acked_total < N) {
		cr_assert_lt(now, 100000 * MS, "no progress");
		now += MS / 4;
		ferry__sentq_timer(&q, now, NULL);
		/* Send: lost frames first, then new ones, 1 to 3 a datagram. */
		while (ferry__sentq_room(&q) && nin < 256) {
			unsigned k = 1 + (unsigned)(rng_next() % 3), put = 0;

			while (put < k && ferry__sentq_lost_peek(&q)) {
				if (!ferry__sentq_add_lost(&q))
					break;
				put++;
			}
			while (put < k && !ferry__sentq_lost_peek(&q) &&
			       next_obj < N) {
				if (!ferry__sentq_add(&q, obj(next_obj), 1, 0, 1))
					break;
				next_obj++;
				put++;
			}
			if (!put)
				break;
			inflight[nin].pn = ferry__sentq_commit(&q, now, 100);
			inflight[nin].at =
				now + MS + (rng_next() % 4) * MS;
			if (rng_next() % 3 == 0)
				inflight[nin].at = UINT64_MAX; /* lost */
			nin++;
		}
		/* Deliver what is due; the receiver acks each, and a third
		 * of the ACKs are lost. */
		for (unsigned i = 0; i < nin;) {
			struct ferry_w2_ack a;

			if (inflight[i].at > now) {
				if (inflight[i].at == UINT64_MAX &&
				    rng_next() % 64 == 0)
					inflight[i] = inflight[--nin];
				else
					i++;
				continue;
			}
			ferry__ackrx_on_dgram(&rx, inflight[i].pn,
					      FERRY_ACKRX_ELICITING |
						      FERRY_ACKRX_ACKABLE,
					      now, MS);
			inflight[i] = inflight[--nin];
			cr_assert_eq(ferry__ackrx_build(&rx, now, &a), 0);
			if (rng_next() % 3 == 0)
				continue;
			cr_assert_geq(ferry__sentq_on_ack(&q, &a, now,
							  on_acked, NULL),
				      0);
		}
	}
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(acked_count[i], 1, "frame %u acknowledged %u times",
			     i, acked_count[i]);
	cr_assert_gt(q.lost_dgrams, 0);
}
