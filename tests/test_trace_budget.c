/* SPDX-License-Identifier: MIT */
/*
 * What a tracer may cost (issue 16, item 1; docs/tracing.md, "CPU budget"
 * and "Rate limit"): the drain thread's CPU budget, which drops whole
 * spans rather than let the thread take more than its share, the head
 * rate limit (max_spans_per_sec), and the counters that account for every
 * span: spans_started = spans_exported + spans_dropped after a clean stop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "trace_util.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Every span accounted for, and the drop reasons add up. */
static void assert_balanced(const struct ferry_tracer_stats *st)
{
	cr_assert_eq(st->spans_dropped, st->spans_dropped_full +
		     st->spans_dropped_rate + st->spans_dropped_budget);
	cr_assert_eq(st->open_spans, 0);
	cr_assert_eq(st->spans_started, st->spans_exported + st->spans_dropped,
		     "started %llu exported %llu dropped %llu "
		     "(full %llu rate %llu budget %llu)",
		     (unsigned long long)st->spans_started,
		     (unsigned long long)st->spans_exported,
		     (unsigned long long)st->spans_dropped,
		     (unsigned long long)st->spans_dropped_full,
		     (unsigned long long)st->spans_dropped_rate,
		     (unsigned long long)st->spans_dropped_budget);
}

/* --- the CPU budget ------------------------------------------------------ */

struct busy {
	struct ferry_trace_ring *r;
	uint64_t run_ns;
	unsigned long long calls, handles;
	uint64_t shed; /* call spans dropped as they started */
};

/* A producer busy for @run_ns: sessions of calls, one call in four with an
 * attribute (an OPEN and an END record), the rest one CALL record each.
 * Paced (a short sleep every 100 calls) so that the ring never fills for
 * want of the consumer's time alone: a full ring here is the budget's
 * fault. */
static void *busy_producer(void *arg)
{
	struct busy *b = arg;
	uint64_t end = mono_ns() + b->run_ns;

	while (mono_ns() < end) {
		ferry_span_t s = client_open(b->r, NULL);

		b->handles += s != FERRY_SPAN_NONE;
		for (unsigned k = 0; k < 100; k++) {
			ferry_span_t c = ferry_span_call_start(b->r, s,
							       (uint16_t)k, NULL);

			b->calls++;
			b->handles += c != FERRY_SPAN_NONE;
			if (k % 4 == 0)
				ferry_span_set_int(b->r, c, "k", k);
			ferry_span_call_end(b->r, c, k % 8 == 0 ? -ETIMEDOUT : 0);
		}
		ferry_span_session_end(b->r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
		sleep_us(200);
	}
	return NULL;
}

/* Run busy_producer() for @run_ms against a threaded tracer exporting to
 * a file, with @budget; the stats after a clean stop. */
static void run_busy(double budget, unsigned run_ms, struct busy *b,
		     struct ferry_tracer_stats *st)
{
	char path[] = "/tmp/ferry-budget-XXXXXX";
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	pthread_t th;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	close(fd);
	unlink(path);
	ferry_tracer_config_init(&c);
	c.thread = true;
	c.drain_interval_us = 100;
	c.ring_bytes = 8u << 20;
	c.export_path = path;
	c.cpu_budget = budget;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	memset(b, 0, sizeof(*b));
	b->run_ns = (uint64_t)run_ms * 1000000u;
	cr_assert_eq(ferry_trace_ring_create(t, &b->r), 0);
	pthread_create(&th, NULL, busy_producer, b);
	pthread_join(th, NULL);
	b->shed = atomic_load(&b->r->dropped_shed);
	ferry_trace_ring_destroy(b->r);
	ferry_tracer_stats(t, st);
	ferry_tracer_destroy(t);
	unlink(path);
}

Test(budget, tiny_budget_drops_spans_not_the_ring)
{
	struct ferry_tracer_stats st;
	struct busy b;

	run_busy(0.0001, 400, &b, &st);
	cr_assert_gt(b.calls, 1000);
	/* 10 us of CPU per 100 ms: most spans are shed, some are exported
	 * (each window's first pass), all are accounted for. */
	cr_assert_gt(st.spans_dropped_budget, 0);
	cr_assert_gt(st.spans_exported, 0);
	assert_balanced(&st);
	/* The drain told the producer it was shedding, and call spans were
	 * dropped as they started.  Every other span got a handle: the
	 * consumer kept emptying the ring while it shed, so nothing was
	 * refused. */
	cr_assert_gt(b.shed, 0);
	cr_assert_leq(b.shed, st.spans_dropped_budget);
	cr_assert_eq(st.spans_dropped_full, 0);
	cr_assert_eq(st.events_dropped, 0);
	cr_assert_eq(b.handles + b.shed, st.spans_started);
	cr_assert_eq(st.spans_dropped_rate, 0);
}

/* While the drain thread sheds, a call span costs its producer no record:
 * no handle, nothing written, counted as started and dropped for the
 * budget; a session span is still recorded; once the flag is down, call
 * spans record again. */
Test(budget, shed_call_spans_write_nothing)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;
	ferry_span_t s, k;
	uint64_t used;

	ferry_tracer_config_init(&c);
	c.ring_bytes = 1u << 20;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	atomic_store(&r->shed, true);
	s = client_open(r, NULL);
	cr_assert_neq(s, FERRY_SPAN_NONE, "session spans are not shed");
	used = ferry__ring_used(r);
	for (unsigned i = 0; i < 100; i++) {
		k = ferry_span_call_start(r, s, 1, NULL);
		cr_assert_eq(k, FERRY_SPAN_NONE);
		ferry_span_call_end(r, k, 0);
	}
	cr_assert_eq(ferry__ring_used(r), used, "nothing written");
	cr_assert_eq(atomic_load(&r->dropped_shed), 100);
	atomic_store(&r->shed, false);
	k = ferry_span_call_start(r, s, 1, NULL);
	cr_assert_neq(k, FERRY_SPAN_NONE);
	ferry_span_call_end(r, k, 0);
	cr_assert_gt(ferry__ring_used(r), used);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_trace_ring_destroy(r);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.spans_started, 102);
	cr_assert_eq(st.spans_exported, 2);
	cr_assert_eq(st.spans_dropped_budget, 100);
	assert_balanced(&st);
	ferry_tracer_destroy(t);
}

Test(budget, zero_is_unlimited)
{
	struct ferry_tracer_stats st;
	struct busy b;

	run_busy(0.0, 200, &b, &st);
	cr_assert_gt(b.calls, 100);
	cr_assert_eq(st.spans_dropped_budget, 0);
	cr_assert_eq(st.spans_dropped, 0);
	cr_assert_eq(st.spans_exported, st.spans_started);
	cr_assert_eq(b.handles, st.spans_started);
	assert_balanced(&st);
}

/* An explicit ferry_tracer_drain() is the caller's time, not the thread's:
 * it never sheds, whatever the budget. */
Test(budget, explicit_drain_not_held_to_it)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;

	ferry_tracer_config_init(&c);
	c.cpu_budget = 0.0001;
	c.ring_bytes = 1u << 20;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	for (int round = 0; round < 20; round++) {
		ferry_span_t s = client_open(r, NULL);

		for (unsigned k = 0; k < 200; k++)
			ferry_span_call_end(r, ferry_span_call_start(r, s, 1, NULL), 0);
		ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
		ferry_tracer_drain(t);
	}
	ferry_trace_ring_destroy(r);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.spans_started, 20 * 201);
	cr_assert_eq(st.spans_exported, 20 * 201);
	assert_balanced(&st);
	ferry_tracer_destroy(t);
}

/* --- the rate limit ------------------------------------------------------ */

static _Atomic uint64_t g_now;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return atomic_load(&g_now);
}

/* @n calls under session @s; returns how many got a span. */
static unsigned calls(struct ferry_trace_ring *r, ferry_span_t s, unsigned n)
{
	unsigned got = 0;

	for (unsigned i = 0; i < n; i++) {
		ferry_span_t c = ferry_span_call_start(r, s, 7, NULL);

		got += c != FERRY_SPAN_NONE;
		ferry_span_call_end(r, c, 0);
	}
	return got;
}

/* 100/s on a clock the test moves: a burst of a tenth of a second (10),
 * then one per 10 ms; a clock stepped back restarts the bucket. */
Test(rate, token_bucket_on_the_producer_clock)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;
	ferry_span_t s;

	atomic_store(&g_now, 1700000000ull * 1000000000u);
	ferry_tracer_config_init(&c);
	c.max_spans_per_sec = 100;
	c.clock = fake_clock;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	/* Session spans are not limited. */
	for (int i = 0; i < 20; i++) {
		s = client_open(r, NULL);
		cr_assert_neq(s, FERRY_SPAN_NONE);
		if (i < 19)
			ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	}
	cr_assert_eq(calls(r, s, 1000), 10);
	atomic_fetch_add(&g_now, 50000000u); /* 50 ms: 5 more */
	cr_assert_eq(calls(r, s, 1000), 5);
	atomic_fetch_add(&g_now, 9000000u);  /* 9 ms: none */
	cr_assert_eq(calls(r, s, 1000), 0);
	atomic_fetch_add(&g_now, 1000000u);  /* 10 ms: one */
	cr_assert_eq(calls(r, s, 1000), 1);
	atomic_fetch_sub(&g_now, 10000000000ull); /* stepped back 10 s */
	cr_assert_eq(calls(r, s, 1000), 10);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_trace_ring_destroy(r);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.spans_dropped_rate, 5000 - 26);
	cr_assert_eq(st.spans_exported, 20 + 26);
	assert_balanced(&st);
	ferry_tracer_destroy(t);
}

/* On the real clock: 100/s over half a second gives about 50 call spans
 * (bounds, not timing). */
Test(rate, hundred_per_second_for_half_a_second)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;
	uint64_t end;
	unsigned got = 0, n = 0;
	ferry_span_t s;

	ferry_tracer_config_init(&c);
	c.max_spans_per_sec = 100;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	s = client_open(r, NULL);
	end = mono_ns() + 500000000u;
	while (mono_ns() < end) {
		got += calls(r, s, 10);
		n += 10;
		sleep_us(100);
	}
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_trace_ring_destroy(r);
	ferry_tracer_stats(t, &st);
	cr_assert_gt(n, 500);
	cr_assert(got >= 1 && got <= 200, "%u call spans", got);
	cr_assert_eq(st.spans_exported, got + 1);
	cr_assert_eq(st.spans_dropped_rate, n - got);
	assert_balanced(&st);
	ferry_tracer_destroy(t);
}

/* --- the invariant ------------------------------------------------------- */

/* Every reason at once (a full ring, no free slot, the rate limit, spans
 * force-closed at the ring's end, unsampled calls that are not spans): the
 * books still balance after the rings and then the tracer stop. */
Test(invariant, every_reason_balances)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r, *r2;
	struct ferry_tracer_stats st;
	ferry_span_t s, open[8];

	ferry_tracer_config_init(&c);
	c.ring_bytes = 4096;
	c.max_spans = 16;
	c.max_spans_per_sec = 1000;
	c.sample_rate = 0.5;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r2), 0);
	s = client_open(r, NULL);
	/* Calls left open until the slots or the ring run out. */
	for (int i = 0; i < 8; i++)
		open[i] = ferry_span_call_start(r, s, 1, NULL);
	calls(r, s, 2000);
	for (int i = 0; i < 30; i++)
		client_open(r, TP_S); /* slots run out */
	ferry_tracer_drain(t);
	for (int i = 0; i < 8; i++)
		ferry_span_call_end(r, open[i], 0);
	/* r2: a session still open when its ring goes. */
	client_open(r2, TP_S);
	ferry_trace_ring_destroy(r2);
	ferry_trace_ring_destroy(r);
	ferry_tracer_stats(t, &st);
	cr_assert_gt(st.spans_dropped_full, 0);
	cr_assert_gt(st.spans_dropped_rate, 0);
	cr_assert_gt(st.unsampled, 0);
	cr_assert_gt(st.forced_closes, 0);
	assert_balanced(&st);
	ferry_tracer_destroy(t);
}

Test(config, defaults_and_range)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;

	ferry_tracer_config_init(&c);
	cr_assert_float_eq(c.cpu_budget, 0.05, 1e-12);
	cr_assert_eq(c.max_spans_per_sec, 0);
	c.cpu_budget = -0.01;
	cr_assert_eq(ferry_tracer_create(&c, &t), -EINVAL);
	c.cpu_budget = 1.01;
	cr_assert_eq(ferry_tracer_create(&c, &t), -EINVAL);
	c.cpu_budget = 1.0;
	c.max_spans_per_sec = 2000000000u;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	ferry_tracer_destroy(t);
}
