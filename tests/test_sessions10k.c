/* SPDX-License-Identifier: MIT */
/*
 * 10,000 sessions between two endpoints (issue 15, item 3), on the uring
 * dataplane over loopback: every one opens and carries a call, and the
 * timers of single sessions among them still fire on time (a call's
 * deadline, and a peer gone silent), though a poll no longer looks at every
 * session (transport/session.c, the timer wheel).
 *
 * Calls go in waves, as connects do: the test is about how many sessions an
 * endpoint holds, not about 10,000 calls in flight at once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include <ferry/ferry.h>

#include "harness.h"

#define NSESS 10000
#define WAVE 500

#define M_ECHO 1
#define M_DEFER 2

/* Both ends: room for every session and one more (the silent peer's), a
 * call at a time on each, small windows, and buffers for a wave. */
static void many(struct ferry_ep_config *c)
{
	c->max_sessions = NSESS + 1;
	c->session_slots = 1;
	c->session_credits = 16;
	c->pool[0] = (struct ferry_pool_class){ 512, 4 * WAVE + 64 };
	c->pool[1] = (struct ferry_pool_class){ 0, 0 };
	/* One client address opens them all, as fast as it can. */
	c->connect_rate = 0;
	c->connect_rate_per_source = 0;
	c->connect_timeout_ms = 10000;
	c->keepalive_ms = 1000;
	c->peer_timeout_ms = 3000;
}

Test(sessions10k, open_call_and_timers, .init = harness_use_uring,
     .timeout = 120)
{
	struct ferry_endpoint *srv = ep_new(many), *cli = ep_new(many);
	struct ferry_endpoint *ghost = ep_new(NULL);
	struct ferry_session **s = calloc(NSESS, sizeof(*s)), *gs;
	struct conn *cn = calloc(NSESS, sizeof(*cn));
	struct reply *r = calloc(WAVE, sizeof(*r)), late = { 0 };
	struct deferred d = { 0 };
	struct ferry_ep_stats st;
	uint32_t open = 0;

	cr_assert(s && cn && r);
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_DEFER, defer_handler, &d),
		     0);
	/* Without this the RETRY bucket lets one address open 100 sessions
	 * a second (docs/wire.md, 4.3). */
	ferry__endpoint_hs_src_rate(srv, false);

	/* A peer that will go silent: from here on it is never polled. */
	gs = open_session(cli, ghost);

	for (uint32_t i = 0; i < NSESS; i += WAVE * 2) {
		uint32_t n = NSESS - i < WAVE * 2 ? NSESS - i : WAVE * 2;
		uint32_t done = 0;

		for (uint32_t k = i; k < i + n; k++)
			cr_assert_eq(ferry_session_connect(
					     cli, "127.0.0.1",
					     ferry_endpoint_port(srv), NULL,
					     on_connect, &cn[k], &s[k]),
				     0, "connect %u", k);
		for (uint64_t end = now_ms() + WAIT_MS;
		     done < n && now_ms() < end;) {
			pump_once(cli, srv);
			done = 0;
			for (uint32_t k = i; k < i + n; k++)
				done += cn[k].done;
		}
		cr_assert_eq(done, n, "connects %u.. ended: %u of %u", i, done,
			     n);
		for (uint32_t k = i; k < i + n; k++)
			cr_assert_eq(cn[k].res, 0, "connect %u: %s", k,
				     ferry_strerror(cn[k].res));
	}
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.sessions_opened, NSESS);

	/* A call on every session, WAVE at a time, each echoed. */
	for (uint32_t i = 0; i < NSESS; i += WAVE) {
		memset(r, 0, WAVE * sizeof(*r));
		for (uint32_t k = 0; k < WAVE; k++) {
			r[k].seed = i + k;
			cr_assert_eq(ferry_call(s[i + k], M_ECHO,
						msg(cli, 24, i + k), on_reply,
						&r[k]),
				     0, "call on session %u", i + k);
		}
		cr_assert(pump_replies(cli, srv, r, WAVE),
			  "wave at %u: replies missing", i);
		for (uint32_t k = 0; k < WAVE; k++) {
			cr_assert_eq(r[k].calls, 1);
			cr_assert(r[k].data_ok, "session %u: res %d", i + k,
				  r[k].res);
		}
	}

	/* A deadline on one session among them all: it fires, once. */
	cr_assert_eq(ferry_call_deadline(s[NSESS / 2], M_DEFER,
					 msg(cli, 8, 0), 100, on_reply, &late),
		     0);
	PUMP_UNTIL(cli, srv, late.done, "the deadline never fired");
	cr_assert_eq(late.res, -ETIME);
	cr_assert_eq(late.calls, 1);
	cr_assert_eq(d.n, 1, "the server holds the call");

	/* The silent peer is found dead (peer_timeout_ms, 3 s after its
	 * last datagram), while the others keep alive. */
	PUMP_UNTIL(cli, srv, !ferry_session_is_open(gs),
		   "the silent peer was never found dead");
	ferry__endpoint_stats(cli, &st);
	cr_assert_eq(st.peers_dead, 1);
	for (uint32_t k = 0; k < NSESS; k++)
		open += (uint32_t)ferry_session_is_open(s[k]);
	cr_assert_eq(open, NSESS, "sessions still open: %u", open);

	/* The held call is answered late (the client has given up on it). */
	cr_assert_eq(ferry_call_respond(d.calls[0], msg(srv, 8, 0)), 0);
	pump_for(cli, srv, 20);
	cr_assert_eq(late.calls, 1);

	ferry_session_close(gs);
	for (uint32_t k = 0; k < NSESS; k++)
		ferry_session_close(s[k]);
	pump_for(cli, srv, 200);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	ferry_endpoint_destroy(ghost);
	free(s);
	free(cn);
	free(r);
}
