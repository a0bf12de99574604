/* SPDX-License-Identifier: MIT */
/*
 * Congestion control in the transport (transport/cc.c through tx.c and
 * reliable.c), over every dataplane built in: when the path's delay rises
 * (the fault injector holds datagrams back), swift keeps fewer packets in
 * flight than credit would allow, and every call still runs exactly once,
 * in order, intact.  The same run with cc "none" is the comparison: credit
 * alone lets it fill the window.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "transport/internal.h"

#define M_RECORD 3
#define NCALLS 24
#define WARMUP 6 /* bursts that teach the controller the path */
#define CALL_LEN 30000 /* four packets each at the default frame */

static const char *g_cc;

static void with_delay(struct ferry_ep_config *c)
{
	static uint64_t seed = 7;

	ep_big(c);
	c->cc = g_cc;
	/* A tenth of all datagrams held back 1 ms: RTT samples far above
	 * a loopback's, as a queue at a bottleneck would make them. */
	c->faults = (struct ferry_faults){ .delay = 0.1, .delay_us = 1000,
					   .seed = seed++ };
}

/* on_reply, and the echo must be the request whole: its number in the
 * first four bytes, the pattern of its seed after them. */
static void on_echo(int res, const void *data, size_t len, void *ctx)
{
	struct reply *r = ctx;
	const uint8_t *p = data;

	on_reply(res, data, len, ctx);
	r->data_ok = res == 0 && len == CALL_LEN &&
		     memcmp(p, &r->seed, 4) == 0;
	for (size_t k = 4; r->data_ok && k < len; k++)
		r->data_ok = p[k] == pattern_byte(r->seed, k);
}

/* Calls @from..@to-1 on @s, all at once; returns the most packets the
 * client had in flight (sent, not yet acknowledged) while they ran. */
static uint32_t burst(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		      struct ferry_session *s, struct reply *r, uint32_t from,
		      uint32_t to)
{
	uint32_t peak = 0;
	uint64_t end = now_ms() + WAIT_MS;
	uint32_t done;

	for (uint32_t i = from; i < to; i++) {
		struct ferry_msgbuf *mb = msg(cli, CALL_LEN, i);

		memcpy(ferry_msgbuf_data(mb), &i, 4);
		r[i].seed = i;
		cr_assert_eq(ferry_call(s, M_RECORD, mb, on_echo, &r[i]), 0);
	}
	do {
		pump_once(cli, srv);
		/* Datagrams in flight (the sent queue's live records). */
		if (s->sq.in_flight > peak)
			peak = s->sq.in_flight;
		done = 0;
		for (uint32_t i = from; i < to; i++)
			done += r[i].done;
		cr_assert_lt(now_ms(), end, "calls %u.. did not complete",
			     from);
	} while (done < to - from);
	return peak;
}

/* WARMUP + 1 bursts, each call checked; returns the last burst's peak,
 * and the client's counters. */
static uint32_t run(const char *cc, struct ferry_ep_stats *cst)
{
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	static struct order_log log;
	static struct reply r[(WARMUP + 1) * NCALLS];
	uint32_t peak;

	g_cc = cc;
	srv = ep_new(with_delay);
	cli = ep_new(with_delay);
	memset(&log, 0, sizeof(log));
	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_RECORD, record_handler,
					     &log), 0);
	s = open_session(cli, srv);
	for (uint32_t k = 0; k < WARMUP; k++)
		burst(cli, srv, s, r, k * NCALLS, (k + 1) * NCALLS);
	peak = burst(cli, srv, s, r, WARMUP * NCALLS, (WARMUP + 1) * NCALLS);
	cr_assert_eq(log.n, (WARMUP + 1) * NCALLS,
		     "each call ran exactly once (%u)", log.n);
	for (uint32_t i = 0; i < (WARMUP + 1) * NCALLS; i++) {
		cr_assert_eq(log.seen[i], i, "handler order at %u", i);
		cr_assert_eq(r[i].calls, 1);
		cr_assert_eq(r[i].res, 0, "call %u: %s", i,
			     ferry_strerror(r[i].res));
		cr_assert(r[i].data_ok, "call %u came back damaged", i);
	}
	ferry__endpoint_stats(cli, cst);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	return peak;
}

static void t_swift_holds_back_under_delay(void)
{
	struct ferry_ep_stats none_st, swift_st;
	uint32_t none_peak = run("none", &none_st);
	uint32_t swift_peak = run("swift", &swift_st);

	fprintf(stderr, "peak in flight: none %u, swift %u (credits %u); "
		"swift cc_stalls %llu cc_paced %llu\n",
		none_peak, swift_peak, 128u,
		(unsigned long long)swift_st.cc_stalls,
		(unsigned long long)swift_st.cc_paced);
	cr_assert_gt(none_st.fault_delay + swift_st.fault_delay, 0);
	/* Credit alone lets the whole burst out; swift does not. */
	cr_assert_eq(none_st.cc_stalls + none_st.cc_paced, 0);
	cr_assert_gt(swift_st.cc_stalls + swift_st.cc_paced, 0);
	cr_assert_lt(swift_peak, none_peak);
}

static void t_unknown_cc_refused(void)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *ep = NULL;

	ep_config(&cfg);
	cfg.cc = "cubic";
	cr_assert_eq(ferry_endpoint_create(&cfg, &ep), -EINVAL);
	cr_assert_null(ep);
}

#define CC_CASES(CASE, s)                                                     \
	CASE(s, swift_holds_back_under_delay)                                 \
	CASE(s, unknown_cc_refused)

HARNESS_BATTERY(cc_transport, CC_CASES, .timeout = 120)
