/* SPDX-License-Identifier: MIT */
/*
 * test_trace_span.c - Criterion tests for the life of spans
 * (control/trace*.c, docs/tracing.md): parenting across the handshake,
 * parent-based and per-call sampling, how spans end (status, reasons,
 * forced closes), ring overflow and the slot table, stale handles,
 * enrichment, a drain thread racing two producers, and the producer's cost
 * per event (printed, not asserted).
 */
#include <criterion/criterion.h>

#include "trace_util.h"

/* --- parenting -------------------------------------------------------------- */

/* A server that trusts its peers' sampling (ignore_remote_sampling false)
 * keeps the tracestate; tests/test_trace_peer.c and sampling::remote_*
 * below cover the default. */
Test(span, parenting_across_the_handshake)
{
	struct ferry_trace_ring *rc, *rs;
	struct ferry_tracer *t = mk_with(1.0, 0, NULL, true, &rc);
	struct ferry_trace_ctx enc, cctx, sctx;
	char tp[56];
	ferry_span_t c, s, cc, sc;
	struct rec *x;

	cr_assert_eq(ferry_trace_ring_create(t, &rs), 0);
	cr_assert_eq(tp_parse(TP_S, &enc), 0);
	c = client_open(rc, TP_S);
	cr_assert_neq(c, FERRY_SPAN_NONE);
	cr_assert_eq(ferry_span_traceparent(rc, c, tp, sizeof(tp)), 55);
	s = server_open(rs, tp, "congo=t61rcWkgMzE");
	cr_assert_neq(s, FERRY_SPAN_NONE);
	cr_assert_eq(ferry_span_context(rc, c, &cctx), 0);
	cr_assert_eq(ferry_span_context(rs, s, &sctx), 0);
	/* Same trace as the caller's enclosing span, all the way down. */
	cr_assert_eq(memcmp(cctx.trace_id, enc.trace_id, 16), 0);
	cr_assert_eq(memcmp(sctx.trace_id, enc.trace_id, 16), 0);
	cr_assert_neq(memcmp(cctx.span_id, sctx.span_id, 8), 0);
	cc = ferry_span_call_start(rc, c, 7, NULL);
	sc = ferry_span_call_start(rs, s, 7, NULL);
	ferry_span_call_end(rs, sc, 0);
	ferry_span_call_end(rc, cc, 0);
	ferry_span_session_end(rs, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_span_session_end(rc, c, FERRY_SPAN_END_CLOSE, 0, NULL);
	/* Two OPENs and two ENDs for the session spans; a call span that
	 * nothing enriched is one record (a CALL). */
	cr_assert_eq(ferry_tracer_drain(t), 6);
	cr_assert_eq(n_closed(), 4);

	x = closed_id(cctx.span_id);
	cr_assert(x && x->info.is_session && x->info.has_parent);
	cr_assert_eq(x->info.kind, FERRY_SPAN_KIND_CLIENT);
	cr_assert_eq(memcmp(x->info.parent_span_id, enc.span_id, 8), 0);
	cr_assert_eq(x->info.status, FERRY_SPAN_STATUS_UNSET);
	cr_assert(strstr(x->attrs, "network.peer.address=10.0.0.2;network.peer.port=31850;"));
	cr_assert(strstr(x->attrs, "server.address=10.0.0.2;server.port=31850;"));

	x = closed_id(sctx.span_id);
	cr_assert(x && x->info.is_session && x->info.has_parent);
	cr_assert_eq(x->info.kind, FERRY_SPAN_KIND_SERVER);
	/* The server session span is the client session span's child. */
	cr_assert_eq(memcmp(x->info.parent_span_id, cctx.span_id, 8), 0);
	cr_assert_eq(memcmp(x->info.trace_id, cctx.trace_id, 16), 0);
	cr_assert_str_eq(x->tstate, "congo=t61rcWkgMzE");

	/* Call spans: children of their side's session span. */
	for (unsigned i = 0; i < 4; i++) {
		x = closed(i);
		if (x->info.is_session)
			continue;
		cr_assert_str_eq(x->name, "ferry/7");
		cr_assert(strstr(x->attrs, "rpc.system=ferry;rpc.method=7;"));
		cr_assert_eq(memcmp(x->info.trace_id, enc.trace_id, 16), 0);
		cr_assert_eq(memcmp(x->info.parent_span_id,
				    x->info.kind == FERRY_SPAN_KIND_CLIENT ? cctx.span_id
									   : sctx.span_id, 8), 0);
	}
	ferry_trace_ring_destroy(rs);
	ferry_trace_ring_destroy(rc);
	ferry_tracer_destroy(t);
}

Test(span, new_trace_without_parent)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	struct ferry_trace_ctx a, b;
	struct ferry_tracer_stats st;
	ferry_span_t x = client_open(r, NULL);
	ferry_span_t y = client_open(r, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");

	cr_assert_eq(ferry_span_context(r, x, &a), 0);
	cr_assert_eq(ferry_span_context(r, y, &b), 0);
	/* Random, distinct, never zero; the malformed parent is counted. */
	cr_assert_neq(memcmp(a.trace_id, b.trace_id, 16), 0);
	cr_assert_neq(memcmp(a.span_id, b.span_id, 8), 0);
	cr_assert_eq(a.flags, FERRY_TRACE_FLAG_SAMPLED);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.traceparent_malformed, 1);
	ferry_span_session_end(r, x, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_span_session_end(r, y, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), 2);
	cr_assert_not(closed(0)->info.has_parent);
	cr_assert_not(closed(1)->info.has_parent);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* A peer's attributes (a RESPONSE's attribute block, through the
 * transport's hook) go under "peer.": a key chosen to look like a
 * built-in cannot replace it.  The longest key a peer may send still fits
 * with its prefix.  Issue 14. */
Test(span, peer_attributes_prefixed)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	ferry_span_t s = client_open(r, NULL);
	ferry_span_t c = ferry_span_call_start(r, s, 2, NULL);
	struct ferry_trace_attr a = { .key = "rpc.system", .type = FERRY_ATTR_STRING,
				      .v.s = "evil" };
	char key[FERRY_ATTR_KEY_MAX + 2], want[160];
	struct rec *x;

	cr_assert_eq(ferry__span_set_peer_attr(r, c, &a), 0);
	a.key = "server.address";
	a.v.s = "6.6.6.6";
	cr_assert_eq(ferry__span_set_peer_attr(r, c, &a), 0);
	a = (struct ferry_trace_attr){ .key = "rpc.method", .type = FERRY_ATTR_INT,
				       .v.i = 99 };
	cr_assert_eq(ferry__span_set_peer_attr(r, c, &a), 0);
	a = (struct ferry_trace_attr){ .key = "error.type", .type = FERRY_ATTR_BOOL,
				       .v.b = true };
	cr_assert_eq(ferry__span_set_peer_attr(r, c, &a), 0);
	memset(key, 'k', sizeof(key));
	key[FERRY_ATTR_KEY_MAX] = '\0';
	a = (struct ferry_trace_attr){ .key = key, .type = FERRY_ATTR_DOUBLE,
				       .v.d = 0.5 };
	cr_assert_eq(ferry__span_set_peer_attr(r, c, &a), 0);
	key[FERRY_ATTR_KEY_MAX] = 'k';
	key[FERRY_ATTR_KEY_MAX + 1] = '\0';
	cr_assert_eq(ferry__span_set_peer_attr(r, c, &a), -EINVAL);
	ferry_span_call_end(r, c, -ETIMEDOUT);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	x = closed(0);
	cr_assert(strstr(x->attrs, "rpc.system=ferry;rpc.method=2;"
			 "server.address=10.0.0.2;"), "%s", x->attrs);
	cr_assert(strstr(x->attrs, "peer.rpc.system=evil;peer.server.address=6.6.6.6;"
			 "peer.rpc.method=99;peer.error.type=true;"), "%s", x->attrs);
	cr_assert(strstr(x->attrs, "error.type=ETIMEDOUT;"), "%s", x->attrs);
	key[FERRY_ATTR_KEY_MAX] = '\0';
	snprintf(want, sizeof(want), ";peer.%s=0.5;", key);
	cr_assert(strstr(x->attrs, want), "%s", x->attrs);
	/* Each built-in once. */
	cr_assert_null(strstr(x->attrs, ";rpc.system="));
	cr_assert_null(strstr(strstr(x->attrs, ";server.address=") + 1,
			      ";server.address="));
	cr_assert_eq(x->n_attrs, 6 + 5 + 1);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* --- sampling --------------------------------------------------------------- */

Test(sampling, parent_based)
{
	struct ferry_trace_ring *r;
	/* Rate 0: only the parent's flag can make a call sampled. */
	struct ferry_tracer *t = mk(0.0, 0, NULL, &r);
	struct ferry_trace_ctx sampled, unsampled;
	struct ferry_tracer_stats st;
	ferry_span_t ss = client_open(r, TP_S), su = client_open(r, TP_U);
	ferry_span_t sn = client_open(r, NULL), c;

	cr_assert_eq(tp_parse(TP_S, &sampled), 0);
	cr_assert_eq(tp_parse(TP_U, &unsampled), 0);
	/* Parent says sampled: every call is. */
	for (int i = 0; i < 10; i++) {
		c = ferry_span_call_start(r, ss, 1, NULL);
		cr_assert_neq(c, FERRY_SPAN_NONE);
		ferry_span_call_end(r, c, 0);
	}
	/* Parent says not sampled: none is. */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ferry_span_call_start(r, su, 1, NULL), FERRY_SPAN_NONE);
	/* No parent: the rate (0 here). */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ferry_span_call_start(r, sn, 1, NULL), FERRY_SPAN_NONE);
	/* A call's own context wins over its session's. */
	cr_assert_eq(ferry_span_call_start(r, ss, 1, &unsampled), FERRY_SPAN_NONE);
	c = ferry_span_call_start(r, su, 1, &sampled);
	cr_assert_neq(c, FERRY_SPAN_NONE);
	ferry_span_call_end(r, c, 0);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.unsampled, 21);
	/* The propagated flag says what was decided. */
	{
		char tp[56];

		cr_assert_eq(ferry_span_traceparent(r, su, tp, sizeof(tp)), 55);
		cr_assert_eq(tp[54], '0');
		cr_assert_eq(ferry_span_traceparent(r, ss, tp, sizeof(tp)), 55);
		cr_assert_eq(tp[54], '1');
	}
	ferry_span_session_end(r, ss, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_span_session_end(r, su, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_span_session_end(r, sn, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	/* 3 session spans (recorded even when unsampled) + 11 calls. */
	cr_assert_eq(n_closed(), 14);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

Test(sampling, rate_for_new_traces)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(0.25, 1u << 20, NULL, &r);
	unsigned yes = 0, n = 4000;

	for (unsigned i = 0; i < n; i++) {
		ferry_span_t s = client_open(r, NULL);
		ferry_span_t c = ferry_span_call_start(r, s, 1, NULL);

		yes += c != FERRY_SPAN_NONE;
		ferry_span_call_end(r, c, 0);
		ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
		if (i % 256 == 0)
			ferry_tracer_drain(t);
	}
	/* 25 % +- 5 sigma (sigma ~ 27 of 4000). */
	cr_assert(yes > 860 && yes < 1140, "sampled %u of %u", yes, n);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	t = mk(1.0, 0, NULL, &r);
	for (unsigned i = 0; i < 100; i++) {
		ferry_span_t s = client_open(r, NULL);

		cr_assert_neq(ferry_span_call_start(r, s, 1, NULL), FERRY_SPAN_NONE);
		ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	}
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* A session that starts its trace samples each call on its own, and a
 * call sampled while its session propagates "not sampled" must carry its
 * own context on the wire (the transport's call_context hook). */
Test(sampling, per_call_draw_and_own_context)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(0.25, 1u << 22, NULL, &r);
	struct ferry_trace_ctx sx, cx;
	ferry_span_t s = client_open(r, NULL), c;
	unsigned yes = 0, n = 4000;
	char tp[56];

	/* Below rate 1 the session propagates "not sampled"... */
	cr_assert_eq(ferry_span_context(r, s, &sx), 0);
	cr_assert_eq(sx.flags, 0);
	for (unsigned i = 0; i < n; i++) {
		c = ferry_span_call_start(r, s, 1, NULL);
		if (c == FERRY_SPAN_NONE)
			continue;
		yes++;
		/* ...so a sampled call names itself, sampled. */
		cr_assert_eq(ferry__span_call_context(r, c, tp, sizeof(tp)), 55);
		cr_assert_eq(tp_parse(tp, &cx), 0);
		cr_assert_eq(cx.flags, FERRY_TRACE_FLAG_SAMPLED);
		cr_assert_eq(memcmp(cx.trace_id, sx.trace_id, 16), 0);
		ferry_span_call_end(r, c, 0);
		if (yes % 256 == 0)
			ferry_tracer_drain(t);
	}
	/* 25 % +- 5 sigma (sigma ~ 27 of 4000), within one session. */
	cr_assert(yes > 860 && yes < 1140, "sampled %u of %u", yes, n);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), yes + 1);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);

	/* Rate 1: the session says "sampled" and covers its calls. */
	t = mk(1.0, 0, NULL, &r);
	s = client_open(r, NULL);
	cr_assert_eq(ferry_span_context(r, s, &sx), 0);
	cr_assert_eq(sx.flags, FERRY_TRACE_FLAG_SAMPLED);
	c = ferry_span_call_start(r, s, 1, NULL);
	cr_assert_neq(c, FERRY_SPAN_NONE);
	cr_assert_eq(ferry__span_call_context(r, c, tp, sizeof(tp)), 0);
	ferry_span_call_end(r, c, 0);
	/* A session with a parent follows it, whatever the rate. */
	s = client_open(r, TP_S);
	c = ferry_span_call_start(r, s, 1, NULL);
	cr_assert_eq(ferry__span_call_context(r, c, tp, sizeof(tp)), 0);
	ferry_span_call_end(r, c, 0);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* The transport's entry: a call's own context as text, as a REQUEST's trace
 * block brings it (or the application gives it), on a server that trusts
 * its peers' sampling. */
Test(sampling, call_context_from_text)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk_with(1.0, 0, NULL, true, &r);
	struct ferry_tracer_stats st;
	struct ferry_trace_ctx own, got;
	static const char ts[] = "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7";
	ferry_span_t s = server_open(r, TP_S, NULL), c;
	char tp[56];
	struct rec *x;

	cr_assert_eq(tp_parse(TP_U, &own), 0);
	/* Its own unsampled context wins over a sampled session. */
	cr_assert_eq(ferry__span_call_start_text(r, s, 3, TP_U, 55, NULL, 0),
		     FERRY_SPAN_NONE);
	/* Its own sampled context: the parent, with the tracestate kept. */
	c = ferry__span_call_start_text(r, s, 3, TP_S, 55, ts, strlen(ts));
	cr_assert_neq(c, FERRY_SPAN_NONE);
	cr_assert_eq(ferry__span_call_context(r, c, tp, sizeof(tp)), 55);
	cr_assert_eq(ferry_span_context(r, c, &got), 0);
	ferry_span_call_end(r, c, 0);
	/* Malformed text: counted, and the session is the parent. */
	c = ferry__span_call_start_text(r, s, 4,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 55,
		ts, strlen(ts));
	cr_assert_neq(c, FERRY_SPAN_NONE);
	ferry_span_call_end(r, c, 0);
	c = ferry__span_call_start_text(r, s, 5, TP_S, 54, NULL, 0);
	ferry_span_call_end(r, c, 0);
	/* A good traceparent with a bad tracestate: the state is dropped. */
	c = ferry__span_call_start_text(r, s, 6, TP_S, 55, "a=1,a=2", 7);
	cr_assert_neq(c, FERRY_SPAN_NONE);
	ferry_span_call_end(r, c, 0);
	ferry_tracer_drain(t);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.traceparent_malformed, 2);
	cr_assert_eq(st.tracestate_malformed, 1);
	cr_assert_eq(st.unsampled, 1);
	x = closed_id(got.span_id);
	cr_assert(x);
	cr_assert_str_eq(x->tstate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
	cr_assert_eq(memcmp(x->info.parent_span_id, own.span_id, 8), 0);
	cr_assert_str_eq(x->name, "ferry/3");
	for (unsigned i = 0; i < n_closed(); i++) {
		x = closed(i);
		if (!strcmp(x->name, "ferry/4") || !strcmp(x->name, "ferry/5")) {
			cr_assert_eq(memcmp(x->info.parent_span_id,
					    g_rec[0].info.span_id, 8), 0);
			cr_assert_str_eq(x->tstate, "");
		}
		if (!strcmp(x->name, "ferry/6"))
			cr_assert_str_eq(x->tstate, "");
	}
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* A server's parent context comes from its peer.  By default
 * (ignore_remote_sampling) its sampled flag and tracestate are ignored: at
 * rate 0 a peer saying "sampled" on CONNECT and on every call gets no call
 * span recorded, and the session span (recorded as unsampled) carries no
 * tracestate; its ids are still the parent.  A client's parent (the
 * application's) is still followed.  Issue 14. */
Test(sampling, remote_flag_ignored_at_rate_0)
{
	static const char ts[] = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(0.0, 0, NULL, &r);
	struct ferry_tracer_stats st;
	struct ferry_trace_ctx remote, x;
	ferry_span_t s = server_open(r, TP_S, ts), c;

	cr_assert_eq(tp_parse(TP_S, &remote), 0);
	cr_assert_neq(s, FERRY_SPAN_NONE);
	cr_assert_eq(ferry_span_context(r, s, &x), 0);
	cr_assert_eq(x.flags, 0, "the server propagates its own decision");
	cr_assert_eq(memcmp(x.trace_id, remote.trace_id, 16), 0);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(ferry_span_call_start(r, s, 7, NULL), FERRY_SPAN_NONE);
		cr_assert_eq(ferry__span_call_start_text(r, s, 7, TP_S, 55, ts,
							 strlen(ts)),
			     FERRY_SPAN_NONE);
	}
	/* A client's parent is the application's: followed. */
	c = ferry_span_call_start(r, client_open(r, TP_S), 7, NULL);
	cr_assert_neq(c, FERRY_SPAN_NONE);
	ferry_span_call_end(r, c, 0);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.unsampled, 20);
	cr_assert_eq(st.tracestate_malformed + st.tracestate_truncated, 0);
	cr_assert_eq(n_closed(), 2, "the server session span and the client call");
	cr_assert(closed(1)->info.is_session);
	cr_assert_eq(closed(1)->info.kind, FERRY_SPAN_KIND_SERVER);
	cr_assert_not(closed(1)->info.sampled);
	cr_assert_str_eq(closed(1)->tstate, "");
	cr_assert_eq(memcmp(closed(1)->info.parent_span_id, remote.span_id, 8), 0);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);

	/* The option off: the peer's flag decides, and its tracestate is
	 * kept (the behaviour before issue 14). */
	t = mk_with(0.0, 0, NULL, true, &r);
	s = server_open(r, TP_S, ts);
	cr_assert_eq(ferry_span_context(r, s, &x), 0);
	cr_assert_eq(x.flags, FERRY_TRACE_FLAG_SAMPLED);
	for (int i = 0; i < 10; i++) {
		c = ferry_span_call_start(r, s, 7, NULL);
		cr_assert_neq(c, FERRY_SPAN_NONE);
		ferry_span_call_end(r, c, 0);
		c = ferry__span_call_start_text(r, s, 7, TP_S, 55, ts, strlen(ts));
		cr_assert_neq(c, FERRY_SPAN_NONE);
		ferry_span_call_end(r, c, 0);
	}
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), 21);
	for (unsigned i = 0, n = 0; i < 21; i++)
		if (strcmp(closed(i)->tstate, ts) == 0)
			cr_assert_leq(++n, 11, "10 calls and the session");
	cr_assert_str_eq(closed(20)->tstate, ts);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* Ignoring the peer's flag cuts both ways: at rate 1 a server records its
 * calls though its peer says "not sampled", each a child of the peer's
 * context when the call carried one (the remote parent is kept when the
 * local decision is to sample); at rate 0.25 it draws call by call. */
Test(sampling, remote_flag_ignored_rate_decides)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	struct ferry_trace_ctx remote;
	ferry_span_t s = server_open(r, TP_U, "a=1"), c;
	unsigned yes = 0;
	struct rec *x;

	cr_assert_eq(tp_parse(TP_U, &remote), 0);
	c = ferry__span_call_start_text(r, s, 3, TP_U, 55, "b=2", 3);
	cr_assert_neq(c, FERRY_SPAN_NONE);
	ferry_span_call_end(r, c, 0);
	c = ferry_span_call_start(r, s, 4, NULL);
	cr_assert_neq(c, FERRY_SPAN_NONE);
	ferry_span_call_end(r, c, 0);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), 3);
	x = closed(0);
	cr_assert_str_eq(x->name, "ferry/3");
	cr_assert_str_eq(x->tstate, "");
	cr_assert_eq(memcmp(x->info.parent_span_id, remote.span_id, 8), 0);
	cr_assert_eq(memcmp(x->info.trace_id, remote.trace_id, 16), 0);
	cr_assert_eq(memcmp(closed(1)->info.parent_span_id,
			    closed(2)->info.span_id, 8), 0,
		     "a call without its own context: the session's child");
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);

	t = mk(0.25, 1u << 20, NULL, &r);
	s = server_open(r, TP_S, NULL);
	for (unsigned i = 0; i < 4000; i++) {
		c = ferry__span_call_start_text(r, s, 1, TP_S, 55, NULL, 0);
		if (c == FERRY_SPAN_NONE)
			continue;
		yes++;
		ferry_span_call_end(r, c, 0);
		if (yes % 256 == 0)
			ferry_tracer_drain(t);
	}
	/* 25 % +- 5 sigma, as sampling::per_call_draw_and_own_context. */
	cr_assert(yes > 860 && yes < 1140, "sampled %u of 4000", yes);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

Test(sampling, unsampled_sessions_not_recorded_when_asked)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_trace_ctx x;
	ferry_span_t s;

	g_nrec = 0;
	ferry_tracer_config_init(&c);
	c.on_event = on_event;
	c.record_unsampled_sessions = false;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	s = client_open(r, TP_U);
	/* Not recorded, but its context still propagates. */
	cr_assert_neq(s, FERRY_SPAN_NONE);
	cr_assert_eq(ferry_span_context(r, s, &x), 0);
	cr_assert_eq(x.flags, 0);
	cr_assert_eq(ferry_span_set_str(r, s, "k", "v"), 0);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	cr_assert_eq(ferry_tracer_drain(t), 0);
	cr_assert_eq(g_nrec, 0);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* --- how spans end --------------------------------------------------------- */

Test(span, end_status_and_reasons)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	ferry_span_t a = client_open(r, NULL), b = client_open(r, NULL);
	ferry_span_t c = client_open(r, NULL), d = client_open(r, NULL);
	ferry_span_t k1 = ferry_span_call_start(r, a, 3, NULL);
	ferry_span_t k2 = ferry_span_call_start(r, a, 4, NULL);
	struct rec *x;

	ferry_span_call_end(r, k1, -ETIMEDOUT);
	ferry_span_call_end(r, k2, -FERRY_ENOMETHOD);
	ferry_span_session_end(r, a, FERRY_SPAN_END_ERROR, -ECONNRESET, NULL);
	ferry_span_session_end(r, b, FERRY_SPAN_END_PEER_DEAD, -ETIMEDOUT, NULL);
	ferry_span_session_end(r, c, FERRY_SPAN_END_SHUTDOWN, 0, NULL);
	ferry_span_session_end(r, d, FERRY_SPAN_END_ERROR, -EPROTO,
			       "a reason longer than sixty-three bytes is cut to fit in the record");
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), 6);
	x = closed(0);
	cr_assert_eq(x->info.status, FERRY_SPAN_STATUS_ERROR);
	cr_assert(strstr(x->attrs, "error.type=ETIMEDOUT;"), "%s", x->attrs);
	cr_assert_str_eq(x->msg, ferry_strerror(-ETIMEDOUT));
	x = closed(1);
	cr_assert(strstr(x->attrs, "error.type=FERRY_ENOMETHOD;"));
	x = closed(2);
	cr_assert_eq(x->info.status, FERRY_SPAN_STATUS_ERROR);
	cr_assert(strstr(x->attrs, "error.type=ECONNRESET;"));
	x = closed(3);
	cr_assert_str_eq(x->msg, "peer timed out");
	cr_assert(strstr(x->attrs, "error.type=ETIMEDOUT;"));
	x = closed(4);
	cr_assert_str_eq(x->msg, "endpoint shut down");
	x = closed(5);
	cr_assert_eq(strlen(x->msg), FERRY_SPAN_MSG_MAX);
	cr_assert(strstr(x->attrs, "error.type=EPROTO;"));
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

Test(span, forced_close_at_tracer_shutdown)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	ferry_span_t s = client_open(r, TP_S);
	ferry_span_t c = ferry_span_call_start(r, s, 1, NULL);
	ferry_span_t quiet = ferry_span_call_start(r, s, 2, NULL);
	struct rec *x;

	cr_assert_neq(c, FERRY_SPAN_NONE);
	cr_assert_neq(quiet, FERRY_SPAN_NONE);
	/* An attribute makes the consumer hold the call span. */
	cr_assert_eq(ferry_span_set_int(r, c, "k", 1), 0);
	/* Not drained yet: the shutdown drains first, then closes.  The
	 * call span nothing enriched is still only in the producer's slot,
	 * which the tracer cannot read while the producer lives: it is not
	 * exported (docs/tracing.md, section 5, "Shutdown"). */
	ferry_tracer_destroy(t);
	cr_assert_eq(n_closed(), 2);
	for (unsigned i = 0; i < 2; i++) {
		x = closed(i);
		cr_assert_eq(x->info.status, FERRY_SPAN_STATUS_ERROR);
		cr_assert_str_eq(x->msg, "tracer shut down");
		cr_assert_geq(x->info.end_ns, x->info.start_ns);
	}
	/* The producer carries on safely; nothing more is handed over. */
	ferry_span_call_end(r, c, 0);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_trace_ring_destroy(r);
	cr_assert_eq(n_closed(), 2);
}

Test(span, forced_close_at_endpoint_shutdown)
{
	struct ferry_trace_ring *r, *r2;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	ferry_span_t s = client_open(r, NULL);
	ferry_span_t s2;

	cr_assert_eq(ferry_trace_ring_create(t, &r2), 0);
	s2 = client_open(r2, NULL);
	/* A call span still open that nothing enriched lives only in the
	 * producer's slot: destroying the ring closes it from there. */
	cr_assert_neq(ferry_span_call_start(r, s, 5, NULL), FERRY_SPAN_NONE);
	ferry_trace_ring_destroy(r);
	cr_assert_eq(n_closed(), 2);
	for (unsigned i = 0; i < 2; i++) {
		cr_assert_str_eq(closed(i)->msg, "endpoint shut down");
		cr_assert_eq(closed(i)->info.status, FERRY_SPAN_STATUS_ERROR);
		cr_assert(strstr(closed(i)->attrs, "error.type=shutdown;"));
	}
	cr_assert(closed(0)->info.is_session != closed(1)->info.is_session);
	ferry_span_session_end(r2, s2, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), 3);
	cr_assert_eq(closed(2)->info.status, FERRY_SPAN_STATUS_UNSET);
	ferry_trace_ring_destroy(r2);
	ferry_tracer_destroy(t);
}

/* --- the ring ---------------------------------------------------------------- */

Test(ring, overflow_drops_and_counts)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 4096, NULL, &r);
	struct ferry_tracer_stats st;
	ferry_span_t s = client_open(r, NULL);
	struct timespec a, b;
	unsigned ok = 0, dropped = 0;

	clock_gettime(CLOCK_MONOTONIC, &a);
	/* Nobody drains: the ring fills, and the producer keeps going. */
	for (int i = 0; i < 10000; i++) {
		int rc = ferry_span_set_int(r, s, "n", i);

		cr_assert(rc == 0 || rc == -ENOBUFS);
		ok += rc == 0;
		dropped += rc == -ENOBUFS;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	cr_assert_gt(ok, 10);
	cr_assert_gt(dropped, 9000);
	cr_assert_leq(ferry__ring_used(r), 4096);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.events_dropped, dropped);
	/* Never blocked: 10000 calls well under a second even on a slow box. */
	cr_assert_lt((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec),
		     1000000000L);
	/* The close still fits (room was kept for it). */
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	cr_assert_eq(ferry_tracer_drain(t), (int)ok + 2);
	cr_assert_eq(n_closed(), 1);
	/* Drained: events fit again. */
	s = client_open(r, NULL);
	cr_assert_eq(ferry_span_set_int(r, s, "n", 1), 0);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

Test(ring, every_opened_span_gets_its_close)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 4096, NULL, &r);
	struct ferry_tracer_stats st;
	ferry_span_t s[256];
	unsigned n = 0;

	/* Open until refused: opens are dropped, never a close. */
	while (n < 256 && (s[n] = client_open(r, NULL)) != FERRY_SPAN_NONE)
		n++;
	cr_assert_gt(n, 3);
	cr_assert_lt(n, 256);
	while (ferry_span_set_str(r, s[0], "fill", "x") == 0)
		;
	for (unsigned i = 0; i < n; i++)
		ferry_span_session_end(r, s[i], FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.spans_dropped, 1);
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), n);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

Test(ring, slot_table_full)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;
	ferry_span_t a, b;

	ferry_tracer_config_init(&c);
	c.max_spans = 1;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	a = client_open(r, NULL);
	cr_assert_neq(a, FERRY_SPAN_NONE);
	cr_assert_eq(client_open(r, NULL), FERRY_SPAN_NONE);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.spans_dropped, 1);
	ferry_span_session_end(r, a, FERRY_SPAN_END_CLOSE, 0, NULL);
	b = client_open(r, NULL);
	/* The same slot, a new generation: the old handle stays dead. */
	cr_assert_neq(b, FERRY_SPAN_NONE);
	cr_assert_neq(a, b);
	cr_assert_eq((uint32_t)a, (uint32_t)b);
	cr_assert_eq(ferry_span_set_str(r, a, "k", "v"), -ESTALE);
	cr_assert(ferry_span_is_open(r, b));
	ferry_span_session_end(r, a, FERRY_SPAN_END_ERROR, -EIO, NULL);
	cr_assert(ferry_span_is_open(r, b));
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* --- stale handles ------------------------------------------------------- */

Test(span, stale_handle_is_a_safe_no_op)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	struct ferry_tracer_stats st;
	struct ferry_trace_ctx x;
	ferry_span_t s = client_open(r, NULL);
	ferry_span_t c = ferry_span_call_start(r, s, 1, NULL);
	char tp[56];

	/* The session is freed (its span ended) before the call's span. */
	ferry_span_session_end(r, s, FERRY_SPAN_END_ERROR, -ECONNRESET, NULL);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	cr_assert_eq(ferry_span_set_str(r, s, "late", "x"), -ESTALE);
	cr_assert_eq(ferry_span_set_int(r, s, "late", 1), -ESTALE);
	cr_assert_eq(ferry_span_call_start(r, s, 1, NULL), FERRY_SPAN_NONE);
	cr_assert_eq(ferry_span_context(r, s, &x), -ESTALE);
	cr_assert_eq(ferry_span_traceparent(r, s, tp, sizeof(tp)), -ESTALE);
	cr_assert_not(ferry_span_is_open(r, s));
	/* The call span outlives it and still closes. */
	ferry_span_call_end(r, c, 0);
	ferry_span_call_end(r, c, 0);
	/* Garbage and NONE handles; a call handle used as a session's. */
	ferry_span_call_end(r, 0xdeadbeefcafef00dull, 0);
	ferry_span_session_end(r, (ferry_span_t)1 << 32 | 0xffffffffu, 0, 0, NULL);
	cr_assert_eq(ferry_span_set_bool(r, FERRY_SPAN_NONE, "k", true), -ESTALE);
	ferry_span_call_end(NULL, c, 0);
	ferry_tracer_stats(t, &st);
	cr_assert_eq(st.stale, 9);
	ferry_tracer_drain(t);
	cr_assert_eq(n_closed(), 2);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* --- enrichment ------------------------------------------------------------ */

Test(span, enrichment)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t = mk(1.0, 0, NULL, &r);
	ferry_span_t s = client_open(r, NULL);
	ferry_span_t c = ferry_span_call_start(r, s, 2, NULL);
	char key[80], val[300];
	struct rec *x;

	cr_assert_eq(ferry_span_set_str(r, s, "app.user", "alice"), 0);
	cr_assert_eq(ferry_span_set_str(r, s, "app.user", "bob"), 0);
	cr_assert_eq(ferry_span_set_int(r, c, "app.bytes", -42), 0);
	cr_assert_eq(ferry_span_set_bool(r, c, "app.hit", true), 0);
	cr_assert_eq(ferry_span_set_double(r, c, "app.ratio", 0.5), 0);
	memset(key, 'k', sizeof(key));
	key[FERRY_ATTR_KEY_MAX + 1] = '\0';
	cr_assert_eq(ferry_span_set_str(r, s, key, "v"), -EINVAL);
	cr_assert_eq(ferry_span_set_str(r, s, "", "v"), -EINVAL);
	key[FERRY_ATTR_KEY_MAX] = '\0';
	memset(val, 'v', sizeof(val));
	val[sizeof(val) - 1] = '\0';
	cr_assert_eq(ferry_span_set_str(r, s, key, val), 0);
	for (int i = 0; i < 40; i++) {
		char k[16];

		snprintf(k, sizeof(k), "extra.%d", i);
		cr_assert_eq(ferry_span_set_int(r, s, k, i), 0);
	}
	ferry_span_call_end(r, c, 0);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	x = closed(0);
	cr_assert(strstr(x->attrs, "app.bytes=-42;app.hit=true;app.ratio=0.5;"), "%s", x->attrs);
	x = closed(1);
	cr_assert(strstr(x->attrs, "app.user=bob;"));
	cr_assert_null(strstr(x->attrs, "alice"));
	cr_assert_eq(x->n_attrs, FERRY_SPAN_ATTRS_MAX);
	/* rpc.system, 4 address attributes, app.user, the long one: 7; then
	 * 25 of the 40 extras fit. */
	cr_assert_eq(x->dropped, 15);
	{
		const char *p = strstr(x->attrs, key);

		cr_assert(p);
		cr_assert_eq(strspn(p + strlen(key) + 1, "v"), FERRY_ATTR_STR_MAX);
	}
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}

/* --- threads ---------------------------------------------------------------- */

struct prod {
	struct ferry_trace_ring *r;
	unsigned sessions, calls;
	unsigned long long opened; /* spans that got a handle */
};

static void *producer(void *arg)
{
	struct prod *p = arg;

	for (unsigned i = 0; i < p->sessions; i++) {
		ferry_span_t s = client_open(p->r, NULL);

		p->opened += s != FERRY_SPAN_NONE;
		for (unsigned k = 0; k < p->calls; k++) {
			ferry_span_t c = ferry_span_call_start(p->r, s, (uint16_t)k, NULL);

			p->opened += c != FERRY_SPAN_NONE;
			ferry_span_set_int(p->r, c, "k", k);
			ferry_span_call_end(p->r, c, 0);
		}
		ferry_span_session_end(p->r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	}
	return NULL;
}

Test(ring, drain_thread_races_two_producers)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct prod p[2];
	pthread_t th[2];
	struct ferry_tracer_stats st;

	g_nrec = 0;
	ferry_tracer_config_init(&c);
	c.thread = true;
	c.drain_interval_us = 50;
	c.ring_bytes = 1u << 20;
	/* Every span is to be delivered: no CPU budget to shed them
	 * (tests/test_trace_budget.c tests that). */
	c.cpu_budget = 0;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	for (int i = 0; i < 2; i++) {
		p[i].sessions = 200;
		p[i].calls = 50;
		p[i].opened = 0;
		cr_assert_eq(ferry_trace_ring_create(t, &p[i].r), 0);
		pthread_create(&th[i], NULL, producer, &p[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		ferry_trace_ring_destroy(p[i].r);
	}
	ferry_tracer_stats(t, &st);
	/* Every span that got a handle is exported, closed normally; what
	 * did not fit was counted. */
	cr_assert_eq(st.spans_exported, p[0].opened + p[1].opened,
		     "exported %llu opened %llu", (unsigned long long)st.spans_exported,
		     p[0].opened + p[1].opened);
	cr_assert_gt(st.spans_exported, 0);
	cr_assert_eq(st.spans_started, st.spans_exported + st.spans_dropped);
	cr_assert_eq(st.forced_closes, 0);
	cr_assert_eq(st.open_spans, 0);
	ferry_tracer_destroy(t);
}

/* --- cost per event (printed) ---------------------------------------------- */

Test(bench, producer_ns_per_event)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct timespec a, b;
	ferry_span_t s;
	unsigned n = 0;
	double ns;

	ferry_tracer_config_init(&c);
	c.thread = true;
	c.drain_interval_us = 100;
	c.ring_bytes = 4u << 20;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	s = client_open(r, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned i = 0; i < 200000; i++) {
		ferry_span_t k = ferry_span_call_start(r, s, 1, NULL);

		ferry_span_set_int(r, k, "i", i);
		ferry_span_call_end(r, k, 0);
		n += 3;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ns = (double)((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec)) / n;
	cr_log_info("producer: %.1f ns/event (call open + int attribute + close)", ns);
	fprintf(stderr, "producer: %.1f ns/event (call open + int attribute + close)\n", ns);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
}
