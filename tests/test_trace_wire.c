/* SPDX-License-Identifier: MIT */
/*
 * test_trace_wire.c - call trace context on the wire (FF_TRACE; docs/wire.md
 * section 8, docs/tracing.md section 8): a call's own W3C context in its
 * REQUEST's trace block, attributes in its RESPONSE's attribute block, and
 * the client continuation's span, between real endpoints on 127.0.0.1,
 * each with a real tracer, every case on every dataplane (tests/harness.h).
 *
 * The tracer's callback keeps every CLOSE event's span; a test drains the
 * tracer once its calls are done and looks the spans up by kind and by
 * id.  Where a case needs what a ferry peer never does -- a malformed trace
 * block, a peer of the release before trace blocks -- the harness's raw
 * peer speaks the wire by hand: as a client (raw_*) or as a server
 * (rsrv_*).
 *
 * Every Criterion test runs in a process of its own, so the globals below
 * start fresh in each.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/trace.h>

#include "harness.h"

#define M_ECHO 1    /* answers the request's payload */
#define M_ATTRS 2   /* sets g.plan's attributes, then echoes */
#define M_CAP 3     /* answers token 0 of the call's table */
#define M_HOLD 4    /* keeps the call in g.held */
#define M_LIMITS 5  /* tries the attribute setters' limits, then errs */

/* The application's context: trace 4bf9..., its span 00f067aa0ba902b7. */
static const char k_tp[] =
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
static const char k_ts[] = "congo=t61rcWkgMzE";
static const uint8_t k_trace_id[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3,
					0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
					0x0e, 0x0e, 0x47, 0x36 };
static const uint8_t k_span_id[8] = { 0x00, 0xf0, 0x67, 0xaa,
				      0x0b, 0xa9, 0x02, 0xb7 };

/* --- the tracer: every closed span ------------------------------------- */

#define MAXREC 256

struct rec {
	struct ferry_span_info info;
	char name[64], tstate[FERRY_TRACESTATE_KEEP + 1];
	char attrs[2048]; /* "key=value;" for each attribute, in order */
};

static struct rec g_rec[MAXREC];
static unsigned g_nrec;

static void on_event(void *arg, int type, const struct ferry_span_info *s,
		     const struct ferry_trace_attr *a)
{
	struct rec *r;
	size_t o = 0;

	(void)arg;
	(void)a;
	if (type != FERRY_TRACE_EV_CLOSE || g_nrec == MAXREC)
		return;
	r = &g_rec[g_nrec++];
	r->info = *s;
	snprintf(r->name, sizeof(r->name), "%s", s->name);
	snprintf(r->tstate, sizeof(r->tstate), "%s", s->tracestate);
	r->info.name = r->name;
	r->info.tracestate = r->tstate;
	r->info.attrs = NULL;
	r->info.status_msg = "";
	r->attrs[0] = '\0';
	for (unsigned i = 0; i < s->n_attrs && o < sizeof(r->attrs) - 1; i++) {
		const struct ferry_trace_attr *x = &s->attrs[i];
		size_t left = sizeof(r->attrs) - o;
		int n;

		if (x->type == FERRY_ATTR_STRING)
			n = snprintf(r->attrs + o, left, "%s=%s;", x->key, x->v.s);
		else if (x->type == FERRY_ATTR_INT)
			n = snprintf(r->attrs + o, left, "%s=%lld;", x->key,
				     (long long)x->v.i);
		else if (x->type == FERRY_ATTR_BOOL)
			n = snprintf(r->attrs + o, left, "%s=%s;", x->key,
				     x->v.b ? "true" : "false");
		else
			n = snprintf(r->attrs + o, left, "%s=%g;", x->key, x->v.d);
		o += n > 0 ? (size_t)n : 0;
	}
}

static struct ferry_tracer *tracer_new(void)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;

	ferry_tracer_config_init(&c);
	c.on_event = on_event;
	/* These cases check what crosses the wire: the server trusts its
	 * client's sampled flag and tracestate (tests/test_trace_peer.c
	 * checks the default, which ignores them). */
	c.ignore_remote_sampling = false;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	return t;
}

/* The @nth (0-based) closed span of @kind, session or call. */
static struct rec *span_of(int kind, bool session, unsigned nth)
{
	for (unsigned i = 0; i < g_nrec; i++)
		if (g_rec[i].info.kind == kind &&
		    g_rec[i].info.is_session == session && nth-- == 0)
			return &g_rec[i];
	return NULL;
}

static unsigned spans_of(int kind, bool session)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g_nrec; i++)
		n += g_rec[i].info.kind == kind &&
		     g_rec[i].info.is_session == session;
	return n;
}

/* The closed span whose parent is @id, of @kind. */
static struct rec *child_of(const uint8_t id[8], int kind)
{
	for (unsigned i = 0; i < g_nrec; i++)
		if (g_rec[i].info.kind == kind && g_rec[i].info.has_parent &&
		    memcmp(g_rec[i].info.parent_span_id, id, 8) == 0)
			return &g_rec[i];
	return NULL;
}

/* --- endpoints ----------------------------------------------------------- */

/* The harness's endpoint, with four 1 MiB buffers for the large calls. */
static void cfg_init(struct ferry_ep_config *cfg)
{
	ep_config(cfg);
	cfg->pool[2] = (struct ferry_pool_class){ 1u << 20, 4 };
}

/* An endpoint of @cfg with tracer @t (none if NULL). */
static struct ferry_endpoint *ep_traced(const struct ferry_ep_config *cfg,
					struct ferry_tracer *t)
{
	struct ferry_endpoint *ep = ep_make(cfg);

	if (t)
		cr_assert_eq(ferry_endpoint_set_tracer(ep, t), 0);
	return ep;
}

static struct ferry_endpoint *ep_with(struct ferry_tracer *t)
{
	struct ferry_ep_config cfg;

	cfg_init(&cfg);
	return ep_traced(&cfg, t);
}

/* --- what the server saw, what the client got ---------------------------- */

#define NATTR_RET 20

static struct {
	struct ferry_endpoint *cli; /* for ferry_endpoint_call_span */
	struct ferry_endpoint *srv; /* for response buffers */
	unsigned dispatched;
	uint8_t req[1u << 17];
	size_t req_len;
	int attr_ret[NATTR_RET];
	unsigned nattr_ret;
	bool plan_dup;              /* M_ATTRS: set "db.system" twice */
	struct ferry_call *held[8];
	unsigned nheld;
	const void *cap;
	size_t cap_len;
} g;

static void record_req(struct ferry_call *c)
{
	size_t len;
	const void *p = ferry_call_req(c, &len);

	g.dispatched++;
	g.req_len = len;
	if (len <= sizeof(g.req))
		memcpy(g.req, p, len);
}

static void h_echo(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	record_req(c);
	cr_assert_eq(ferry_call_respond(c, ferry_call_take_req(c)), 0);
}

static void h_attrs(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	record_req(c);
	g.nattr_ret = 0;
	g.attr_ret[g.nattr_ret++] =
		ferry_call_resp_attr_str(c, "db.system", "postgresql");
	g.attr_ret[g.nattr_ret++] = ferry_call_resp_attr_int(c, "db.rows", -42);
	g.attr_ret[g.nattr_ret++] = ferry_call_resp_attr_bool(c, "cache.hit",
							      true);
	g.attr_ret[g.nattr_ret++] = ferry_call_resp_attr_double(c, "ratio",
								0.25);
	if (g.plan_dup)
		g.attr_ret[g.nattr_ret++] =
			ferry_call_resp_attr_str(c, "db.system", "sqlite");
	cr_assert_eq(ferry_call_respond(c, ferry_call_take_req(c)), 0);
}

static void h_cap(struct ferry_call *c, void *ctx)
{
	const void *tok;
	size_t len;

	(void)ctx;
	record_req(c);
	cr_assert_eq(ferry_call_ncaps(c), 1);
	cr_assert_eq(ferry_call_cap(c, 0, &tok, &len), 0);
	cr_assert_eq(ferry_call_respond(c, msg_of(g.srv, tok, len)), 0);
}

static void h_hold(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	record_req(c);
	g.held[g.nheld++] = c;
}

/* The setters' refusals; then an error response drops what was set. */
static void h_limits(struct ferry_call *c, void *ctx)
{
	static char k64[65];
	char key[8];

	(void)ctx;
	record_req(c);
	memset(k64, 'k', 64);
	cr_assert_eq(ferry_call_resp_attr_str(c, "", "v"), -EINVAL);
	cr_assert_eq(ferry_call_resp_attr_str(c, k64, "v"), -EINVAL);
	cr_assert_eq(ferry_call_resp_attr_str(c, "a b", "v"), -EINVAL);
	cr_assert_eq(ferry_call_resp_attr_str(c, "\x01", "v"), -EINVAL);
	cr_assert_eq(ferry_call_resp_attr_str(c, NULL, "v"), -EINVAL);
	cr_assert_eq(ferry_call_resp_attr_str(c, "k", NULL), -EINVAL);
	cr_assert_eq(ferry_call_resp_attr_int(NULL, "k", 1), -EINVAL);
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(ferry_call_resp_attr_int(c, key, i), 0);
	}
	cr_assert_eq(ferry_call_resp_attr_bool(c, "one.more", true), -ENOSPC);
	cr_assert_eq(ferry_call_respond_error(c, -EIO), 0);
}

/* One continuation record per call: the harness's reply recorder, and
 * what the continuation saw of its span. */
struct call_rec {
	bool done;
	int res, calls;
	size_t len;
	uint8_t data[1u << 17];
	/* In the continuation: ferry_endpoint_call_span(), and whether the
	 * continuation's own attribute went on. */
	ferry_span_t span;
	int set_ret;
	/* Run in the continuation: close this session (ending the calls
	 * still on it, whose continuations run inside this one). */
	struct ferry_session *close;
	ferry_span_t span_after;
};

static void on_call_done(int res, const void *data, size_t len, void *ctx)
{
	struct call_rec *r = ctx;
	struct ferry_trace_ring *ring = ferry_endpoint_trace_ring(g.cli);

	r->calls++;
	r->done = true;
	r->res = res;
	r->len = len;
	if (data && len <= sizeof(r->data))
		memcpy(r->data, data, len);
	r->span = ferry_endpoint_call_span(g.cli);
	r->set_ret = ferry_span_set_str(ring, r->span, "cont.seen", "yes");
	if (r->close)
		ferry_session_close(r->close);
	r->span_after = ferry_endpoint_call_span(g.cli);
}

static void call_with(struct ferry_session *s, uint16_t method, const void *p,
		      size_t n, const struct ferry_call_opts *o, struct call_rec *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = ferry_call_with(s, method, msg_of(g.cli, p, n), o, on_call_done, r);
	cr_assert_eq(ret, 0, "ferry_call_with: %s", ferry_strerror(ret));
}

static struct ferry_endpoint *server_make(const struct ferry_ep_config *cfg,
					  struct ferry_tracer *t)
{
	struct ferry_endpoint *srv = ep_traced(cfg, t);

	g.srv = srv;
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, h_echo, NULL), 0);
	cr_assert_eq(ferry_endpoint_register(srv, M_ATTRS, h_attrs, NULL), 0);
	cr_assert_eq(ferry_endpoint_register(srv, M_CAP, h_cap, NULL), 0);
	cr_assert_eq(ferry_endpoint_register(srv, M_HOLD, h_hold, NULL), 0);
	cr_assert_eq(ferry_endpoint_register(srv, M_LIMITS, h_limits, NULL), 0);
	return srv;
}

static struct ferry_endpoint *server_new(struct ferry_tracer *t)
{
	struct ferry_ep_config cfg;

	cfg_init(&cfg);
	return server_make(&cfg, t);
}

/* Close @s, let the last acknowledgements through, and hand every span
 * the tracer holds to the callback. */
static void finish(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		   struct ferry_session *s, struct ferry_tracer *t)
{
	if (s)
		ferry_session_close(s);
	PUMP(cli, srv, 50, false);
	cr_assert_geq(ferry_tracer_drain(t), 0);
}

static void destroy(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		    struct ferry_tracer *t)
{
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	ferry_tracer_destroy(t);
}

/* ===================================================================== */
/* Per-call context                                                        */

/* ferry_call_with's traceparent: the client call span is its child, and
 * the server call span the client call span's child, through the
 * REQUEST's trace block; the tracestate goes along.  Session spans are
 * as they were. */
static void t_per_call_context(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t), *cli = ep_with(t);
	struct ferry_call_opts o = { .traceparent = k_tp, .tracestate = k_ts };
	struct ferry_session *s;
	struct rec *cc, *sc, *cs, *ss, *plain;
	struct ferry_ep_stats st;
	struct call_rec r;

	g.cli = cli;
	s = open_session(cli, srv);
	call_with(s, M_ECHO, "hello", 5, &o, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
	/* The handler saw only the payload. */
	cr_assert_eq(g.req_len, 5);
	cr_assert_arr_eq(g.req, "hello", 5);
	cr_assert_eq(r.len, 5);
	cr_assert_arr_eq(r.data, "hello", 5);
	/* A call without its own context: no block, the session's context
	 * covers it. */
	call_with(s, M_ECHO, "plain", 5, NULL, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	finish(cli, srv, s, t);

	st = stats(srv);
	cr_assert_eq(st.trace_blocks_received, 1);
	cr_assert_eq(st.trace_blocks_bad, 0);
	st = stats(cli);
	cr_assert_eq(st.trace_ctx_unsent, 0);

	cr_assert_eq(spans_of(FERRY_SPAN_KIND_CLIENT, false), 2);
	cr_assert_eq(spans_of(FERRY_SPAN_KIND_SERVER, false), 2);
	cs = span_of(FERRY_SPAN_KIND_CLIENT, true, 0);
	ss = span_of(FERRY_SPAN_KIND_SERVER, true, 0);
	cr_assert(cs && ss);
	/* The client call span: a child of the application's context. */
	cc = child_of(k_span_id, FERRY_SPAN_KIND_CLIENT);
	cr_assert_not_null(cc, "no client call span under the app's span");
	cr_assert_arr_eq(cc->info.trace_id, k_trace_id, 16);
	cr_assert_str_eq(cc->name, "ferry/1");
	cr_assert_str_eq(cc->tstate, k_ts);
	/* The server call span: the client call span's child. */
	sc = child_of(cc->info.span_id, FERRY_SPAN_KIND_SERVER);
	cr_assert_not_null(sc, "no server call span under the client's");
	cr_assert_not(sc->info.is_session);
	cr_assert_arr_eq(sc->info.trace_id, k_trace_id, 16);
	cr_assert_str_eq(sc->tstate, k_ts);
	/* Session spans unchanged: a new trace, and the server's the
	 * client's child through CONNECT. */
	cr_assert_not(cs->info.has_parent);
	cr_assert(ss->info.has_parent);
	cr_assert_arr_eq(ss->info.parent_span_id, cs->info.span_id, 8);
	cr_assert_arr_eq(ss->info.trace_id, cs->info.trace_id, 16);
	cr_assert(memcmp(cs->info.trace_id, k_trace_id, 16) != 0);
	/* The plain call's spans hang off the sessions. */
	plain = child_of(ss->info.span_id, FERRY_SPAN_KIND_SERVER);
	cr_assert_not_null(plain);
	cr_assert_not(plain->info.is_session);
	cr_assert_not_null(child_of(cs->info.span_id, FERRY_SPAN_KIND_CLIENT));
	destroy(cli, srv, t);
}

/* A client that does not trace forwards the application's context as it
 * is: the server call span is the application's span's child. */
static void t_untraced_client_propagates(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t), *cli = ep_with(NULL);
	struct ferry_call_opts o = { .traceparent = k_tp, .tracestate = k_ts };
	struct ferry_session *s;
	struct rec *sc;
	struct call_rec r;

	g.cli = cli;
	s = open_session(cli, srv);
	call_with(s, M_ECHO, "x", 1, &o, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(r.span, FERRY_SPAN_NONE, "an untraced call has no span");
	finish(cli, srv, s, t);
	cr_assert_eq(stats(srv).trace_blocks_received, 1);
	sc = child_of(k_span_id, FERRY_SPAN_KIND_SERVER);
	cr_assert_not_null(sc);
	cr_assert_not(sc->info.is_session);
	cr_assert_arr_eq(sc->info.trace_id, k_trace_id, 16);
	cr_assert_str_eq(sc->tstate, k_ts);
	destroy(cli, srv, t);
}

/* The options are checked, and copied before ferry_call_with returns. */
static void t_call_opts_checked_and_copied(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t), *cli = ep_with(t);
	static char ts_long[FERRY_TRACESTATE_MAX + 2];
	char tp[sizeof(k_tp)], ts[sizeof(k_ts)];
	struct ferry_call_opts o = { 0 };
	struct ferry_msgbuf *mb;
	struct ferry_session *s;
	struct call_rec r;
	struct rec *sc;

	g.cli = cli;
	s = open_session(cli, srv);
	mb = msg_of(cli, "x", 1);
	o.traceparent = "00-short";
	cr_assert_eq(ferry_call_with(s, M_ECHO, mb, &o, on_call_done, &r), -EINVAL);
	memset(ts_long, 'a', FERRY_TRACESTATE_MAX + 1);
	o.traceparent = k_tp;
	o.tracestate = ts_long;
	cr_assert_eq(ferry_call_with(s, M_ECHO, mb, &o, on_call_done, &r), -EINVAL);
	ts_long[FERRY_TRACESTATE_MAX] = '\0'; /* exactly 512: fine */
	memset(&r, 0, sizeof(r));
	cr_assert_eq(ferry_call_with(s, M_ECHO, mb, &o, on_call_done, &r), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	/* NULL options: a plain call. */
	call_with(s, M_ECHO, "y", 1, NULL, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	/* Copied: the caller's strings are gone before the call goes. */
	memcpy(tp, k_tp, sizeof(tp));
	memcpy(ts, k_ts, sizeof(ts));
	o.traceparent = tp;
	o.tracestate = ts;
	call_with(s, M_ECHO, "z", 1, &o, &r);
	memset(tp, 'f', sizeof(tp) - 1);
	memset(ts, '!', sizeof(ts) - 1);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	finish(cli, srv, s, t);
	sc = NULL;
	for (unsigned i = 0; i < g_nrec; i++)
		if (g_rec[i].info.kind == FERRY_SPAN_KIND_SERVER &&
		    !g_rec[i].info.is_session && strcmp(g_rec[i].tstate, k_ts) == 0)
			sc = &g_rec[i];
	cr_assert_not_null(sc, "the copied tracestate arrived");
	cr_assert_arr_eq(sc->info.trace_id, k_trace_id, 16);
	destroy(cli, srv, t);
}

/* ===================================================================== */
/* Response attributes and the continuation's span                         */

static void t_response_attributes(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t), *cli = ep_with(t);
	struct ferry_trace_ctx ctx;
	struct ferry_session *s;
	struct ferry_ep_stats st;
	struct call_rec r;
	struct rec *cc, *sc;

	g.cli = cli;
	g.plan_dup = true;
	s = open_session(cli, srv);
	cr_assert_eq(ferry_endpoint_call_span(cli), FERRY_SPAN_NONE,
		     "no continuation runs");
	call_with(s, M_ATTRS, "payload", 7, NULL, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
	cr_assert_eq(r.calls, 1);
	/* The continuation sees the payload after the block. */
	cr_assert_eq(r.len, 7);
	cr_assert_arr_eq(r.data, "payload", 7);
	for (unsigned i = 0; i < g.nattr_ret; i++)
		cr_assert_eq(g.attr_ret[i], 0, "attribute %u: %d", i,
			     g.attr_ret[i]);
	/* Its span, open while it ran, and enrichable. */
	cr_assert_neq(r.span, FERRY_SPAN_NONE);
	cr_assert_eq(r.set_ret, 0);
	cr_assert_eq(r.span_after, r.span);
	cr_assert_eq(ferry_endpoint_call_span(cli), FERRY_SPAN_NONE,
		     "outside a continuation: none");
	cr_assert_eq(ferry_span_context(ferry_endpoint_trace_ring(cli), r.span,
					&ctx),
		     -ESTALE, "the span ended after the continuation");
	finish(cli, srv, s, t);

	st = stats(cli);
	cr_assert_eq(st.trace_attrs_received, 5);
	cr_assert_eq(st.trace_blocks_bad, 0);
	st = stats(srv);
	cr_assert_eq(st.trace_attrs_unsent, 0);
	cr_assert_eq(st.trace_blocks_received, 0, "the session's context sufficed");

	cc = span_of(FERRY_SPAN_KIND_CLIENT, false, 0);
	cr_assert_not_null(cc);
	cr_assert(strstr(cc->attrs, "db.rows=-42;"), "%s", cc->attrs);
	cr_assert(strstr(cc->attrs, "cache.hit=true;"), "%s", cc->attrs);
	cr_assert(strstr(cc->attrs, "ratio=0.25;"), "%s", cc->attrs);
	cr_assert(strstr(cc->attrs, "cont.seen=yes;"), "%s", cc->attrs);
	/* A key set twice: the last value stays. */
	cr_assert(strstr(cc->attrs, "db.system=sqlite;"), "%s", cc->attrs);
	cr_assert_null(strstr(cc->attrs, "db.system=postgresql;"));
	/* The server's span does not get them. */
	sc = span_of(FERRY_SPAN_KIND_SERVER, false, 0);
	cr_assert_not_null(sc);
	cr_assert_null(strstr(sc->attrs, "db.rows"));
	destroy(cli, srv, t);
}

/* The setters refuse bad keys and a 17th attribute; an error response
 * drops what was set (counted), and the call still fails with the
 * handler's error. */
static void t_response_attribute_limits(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t), *cli = ep_with(t);
	struct ferry_session *s;
	struct call_rec r;

	g.cli = cli;
	s = open_session(cli, srv);
	call_with(s, M_LIMITS, "x", 1, NULL, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(g.dispatched, 1);
	cr_assert_eq(r.res, -EIO);
	cr_assert_eq(stats(srv).trace_attrs_unsent, 16);
	cr_assert_eq(stats(cli).trace_attrs_received, 0);
	finish(cli, srv, s, t);
	destroy(cli, srv, t);
}

/* A continuation that closes its session runs the other calls'
 * continuations inside it: each names its own span, and the outer one's
 * comes back after. */
static void t_call_span_nesting(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t), *cli = ep_with(t);
	struct ferry_session *s;
	static struct call_rec a, b;

	g.cli = cli;
	s = open_session(cli, srv);
	call_with(s, M_HOLD, "b", 1, NULL, &b);
	PUMP(cli, srv, 3000, g.nheld == 1);
	call_with(s, M_ECHO, "a", 1, NULL, &a);
	a.close = s;
	PUMP(cli, srv, 3000, a.done);
	cr_assert_eq(a.res, 0);
	cr_assert(b.done);
	cr_assert_eq(b.res, -ECANCELED);
	cr_assert_neq(a.span, FERRY_SPAN_NONE);
	cr_assert_neq(b.span, FERRY_SPAN_NONE);
	cr_assert_neq(a.span, b.span);
	cr_assert_eq(a.span_after, a.span, "the outer span is back");
	cr_assert_eq(ferry_endpoint_call_span(cli), FERRY_SPAN_NONE);
	finish(cli, srv, NULL, t);
	/* The server saw the close: the held call answers into the void. */
	cr_assert_eq(ferry_call_respond_error(g.held[0], -EIO), -ENOTCONN);
	destroy(cli, srv, t);
}

/* ===================================================================== */
/* Raw peers                                                               */

/* A raw client (the harness's) connected to @srv with FEATURES @features;
 * every server announces trace blocks (and IOUs). */
static void raw_connect_feat(struct raw *r, struct ferry_endpoint *srv,
			     uint32_t features)
{
	cr_assert_eq(raw_connect(r, srv, 0x00090001, features, NULL, 0) &
			     (FERRY_FEAT_IOU | FERRY_FEAT_TRACE),
		     FERRY_FEAT_IOU | FERRY_FEAT_TRACE);
}

/* A trace block of @tp and @ts, then @pay: into @out; returns the length. */
static size_t block_msg(uint8_t *out, const char *tp, const char *ts,
			const char *pay)
{
	int n = ferry__wire_put_trace_block(out, FERRY_TRACE_BLOCK_MAX, tp, ts,
					   ts ? strlen(ts) : 0);

	cr_assert_gt(n, 0);
	memcpy(out + n, pay, strlen(pay));
	return (size_t)n + strlen(pay);
}

/* Blocks a ferry client never sends: a length out of range refuses the
 * call, in order, with FERRY_EPROTO; an unknown version is skipped; a
 * malformed traceparent is the tracer's to count, and the call span's
 * parent is then the session span. */
static void t_raw_peer_bad_blocks(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t);
	struct ferry_tracer_stats ts0, ts1;
	struct ferry_ep_stats st;
	struct rec *ss, *sc;
	uint8_t m[1024], out[1024];
	uint32_t id1, id2, id3, id4, id5;
	uint16_t fl;
	size_t n, len;
	struct raw r;

	raw_connect_feat(&r, srv, FERRY_FEAT_TRACE);
	ferry_tracer_stats(t, &ts0);
	/* 1: block_len 40 (below 59) -- refused. */
	n = block_msg(m, k_tp, NULL, "one");
	m[3] = 40;
	id1 = raw_request(&r, 0, M_ECHO, FERRY_FF_TRACE, m, n);
	/* 2: no block -- runs after 1's refusal. */
	id2 = raw_request(&r, 0, M_ECHO, 0, "two", 3);
	/* 3: version 2 -- skipped, runs, sees only its payload. */
	n = block_msg(m, k_tp, k_ts, "three");
	m[0] = 2;
	id3 = raw_request(&r, 0, M_ECHO, FERRY_FF_TRACE, m, n);
	/* 4: upper-case hex in the traceparent -- the tracer's to judge. */
	n = block_msg(m, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
		      NULL, "four");
	id4 = raw_request(&r, 0, M_ECHO, FERRY_FF_TRACE, m, n);
	/* 5: a message shorter than a block head -- refused. */
	id5 = raw_request(&r, 0, M_ECHO, FERRY_FF_TRACE, "ab", 2);

	cr_assert_eq(raw_response(&r, srv, id1, &fl, out, sizeof(out), &len), FERRY_EPROTO);
	cr_assert_eq(raw_response(&r, srv, id2, &fl, out, sizeof(out), &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_arr_eq(out, "two", 3);
	cr_assert_eq(raw_response(&r, srv, id3, &fl, out, sizeof(out), &len), 0);
	cr_assert_eq(len, 5);
	cr_assert_arr_eq(out, "three", 5);
	cr_assert_eq(raw_response(&r, srv, id4, &fl, out, sizeof(out), &len), 0);
	cr_assert_eq(len, 4);
	cr_assert_arr_eq(out, "four", 4);
	cr_assert_eq(raw_response(&r, srv, id5, &fl, out, sizeof(out), &len), FERRY_EPROTO);
	/* Handlers ran for 2, 3 and 4 only, in call order. */
	cr_assert_eq(g.dispatched, 3);
	st = stats(srv);
	cr_assert_eq(st.trace_blocks_received, 4);
	cr_assert_eq(st.trace_blocks_bad, 3);
	cr_assert_eq(st.reqs_dispatched, 5);

	ferry_tracer_stats(t, &ts1);
	cr_assert_eq(ts1.traceparent_malformed, ts0.traceparent_malformed + 1);
	ferry_endpoint_destroy(srv); /* ends the session span */
	cr_assert_geq(ferry_tracer_drain(t), 0);
	ss = span_of(FERRY_SPAN_KIND_SERVER, true, 0);
	cr_assert_not_null(ss);
	/* Every call span (the refused ones too) hangs off the session. */
	cr_assert_eq(spans_of(FERRY_SPAN_KIND_SERVER, false), 5);
	for (unsigned i = 0; i < 5; i++) {
		sc = span_of(FERRY_SPAN_KIND_SERVER, false, i);
		cr_assert(sc->info.has_parent);
		cr_assert_arr_eq(sc->info.parent_span_id, ss->info.span_id, 8);
		cr_assert_arr_eq(sc->info.trace_id, ss->info.trace_id, 16);
	}
	raw_close(&r);
	ferry_tracer_destroy(t);
}

/* A raw client that announced trace blocks gets the attributes on the
 * wire; one that did not gets none, and the setters say so. */
static void t_raw_client_features(void)
{
	struct ferry_endpoint *srv = server_new(NULL);
	struct ferry_attr_ent e;
	uint8_t out[1024];
	uint32_t id, bl;
	unsigned n;
	uint16_t fl;
	size_t len;
	struct raw r;

	/* With bit 1: an attribute block, then the payload. */
	raw_connect_feat(&r, srv, FERRY_FEAT_TRACE);
	id = raw_request(&r, 0, M_ATTRS, 0, "pay", 3);
	cr_assert_eq(raw_response(&r, srv, id, &fl, out, sizeof(out), &len), 0);
	for (unsigned i = 0; i < g.nattr_ret; i++)
		cr_assert_eq(g.attr_ret[i], 0);
	cr_assert(fl & FERRY_FF_TRACE);
	cr_assert_eq(ferry__wire_parse_resp_attrs(out, len, &bl, &n), 0);
	cr_assert_eq(n, 4);
	cr_assert_eq(ferry__wire_resp_attr_get(out, bl, 0, &e), 0);
	cr_assert_eq(e.type, FERRY_ATTRT_STRING);
	cr_assert_arr_eq(e.key, "db.system", 9);
	cr_assert_arr_eq(e.str, "postgresql", 10);
	cr_assert_eq(ferry__wire_resp_attr_get(out, bl, 3, &e), 0);
	cr_assert_eq(e.type, FERRY_ATTRT_DOUBLE);
	cr_assert(e.d == 0.25);
	cr_assert_eq(len - bl, 3);
	cr_assert_arr_eq(out + bl, "pay", 3);
	raw_close(&r);

	/* Without: -EOPNOTSUPP, a plain response, and counted. */
	raw_connect_feat(&r, srv, 0);
	id = raw_request(&r, 0, M_ATTRS, 0, "pay", 3);
	cr_assert_eq(raw_response(&r, srv, id, &fl, out, sizeof(out), &len), 0);
	cr_assert_eq(g.nattr_ret, 4);
	for (unsigned i = 0; i < g.nattr_ret; i++)
		cr_assert_eq(g.attr_ret[i], -EOPNOTSUPP);
	cr_assert_not(fl & FERRY_FF_TRACE);
	cr_assert_eq(len, 3);
	cr_assert_arr_eq(out, "pay", 3);
	cr_assert_eq(stats(srv).trace_attrs_unsent, 4);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* A raw server, speaking wire v2 by hand: the handshake unit's server
 * side (transport/handshake.h, no RETRY) answers the client's CONNECT
 * with an ACCEPT announcing the features a test chooses, and each whole
 * REQUEST gets a RESPONSE carrying the request's message.  It keeps what
 * the CONNECT carried (FEATURES, TRACEPARENT, TRACESTATE).  It never
 * acknowledges: the client sends again what it does not hear
 * acknowledged, and a copy is answered again but is no new request. */
struct rsrv {
	struct raw raw;
	struct ferry_hs_server hs;
	uint16_t port;
	bool open;
	uint8_t accept[FERRY_HS_ACCEPT_LEN];
	size_t accept_len;
	uint32_t cli_features; /* what the client's CONNECT announced */
	char cli_tp[FERRY_TRACEPARENT_LEN + 1]; /* "" if none */
	bool cli_ts;           /* the CONNECT carried a TRACESTATE */
	unsigned nreq;
	uint32_t req_ids[8];
	uint16_t req_flags[8]; /* as v1 flags: FERRY_FF_TRACE */
	size_t req_len[8];
	uint8_t req_msg[8][64];
};

static uint64_t unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void rsrv_open(struct rsrv *r)
{
	memset(r, 0, sizeof(*r));
	raw_bind(&r->raw);
	r->port = raw_port(&r->raw);
	cr_assert_eq(ferry__hs_server_init(&r->hs, FERRY_HS_RETRY_NEVER,
					   unix_ns()),
		     0);
}

/* A handshake datagram @dg/@n from the client: admit its CONNECT with an
 * ACCEPT announcing @features (a copy of the CONNECT gets the same
 * ACCEPT again, as a ferry server does). */
static void rsrv_handshake(struct rsrv *r, const uint8_t *dg, size_t n,
			   uint32_t features)
{
	struct ferry_hs_server_cfg sc = { .mode = FERRY_W2_MODE_MAC,
					  .features = features };
	struct ferry_addr local = { .ip = r->raw.to.ip, .port = r->port };
	struct ferry_hs_server_result res;
	uint8_t reply[FERRY_HS_REPLY_MAX], mode;
	struct ferry__seal_keys keys;
	struct ferry_hs_conn *c = &res.conn;
	int len;

	memset(&res, 0, sizeof(res));
	if (ferry__hs_server_input(&r->hs, dg, n, &r->raw.to, &local, unix_ns(),
				   reply, sizeof(reply), &res) != FERRY_HS_ADMIT)
		return;
	if (r->open) {
		raw_send_bytes(&r->raw, r->accept, r->accept_len);
		return;
	}
	r->cli_features = c->features;
	if (c->traceparent)
		memcpy(r->cli_tp, c->traceparent, FERRY_TRACEPARENT_LEN);
	r->cli_ts = c->tracestate != NULL;
	randombytes_buf(&sc.cid, sizeof(sc.cid));
	sc.cid |= 1; /* != 0, and so are its low 32 bits */
	sc.params = (struct ferry_w2_params){ 1u << 20, 1u << 20,
					      RAW_PATH_FRAME, 16, 1000,
					      FERRY_REPLAY_LOG2_DEFAULT };
	len = ferry__hs_server_accept(c, &sc, NULL, &keys, &mode, r->accept,
				      sizeof(r->accept));
	cr_assert_gt(len, 0);
	r->accept_len = (size_t)len;
	/* The session, as raw_connect() leaves it on the client's side:
	 * short headers to us name our CID, ours name the client's. */
	r->raw.cid = sc.cid;
	r->raw.srv_cid = c->client_cid;
	r->raw.mode = mode;
	memcpy(r->raw.key_tx, keys.s2c, sizeof(r->raw.key_tx));
	memcpy(r->raw.key_rx, keys.c2s, sizeof(r->raw.key_rx));
	sodium_memzero(&keys, sizeof(keys));
	r->raw.pn = 1; /* the ACCEPT was pn 0 */
	ferry__replay_init(&r->raw.seen, FERRY_REPLAY_LOG2_DEFAULT,
			   r->raw.seen_bits);
	r->open = true;
	raw_send_bytes(&r->raw, r->accept, r->accept_len);
}

/* Answer one whole REQUEST @w with its own message, and keep what came. */
static void rsrv_answer(struct rsrv *r, const struct ferry_w2_frame *w)
{
	const struct ferry_w2_data *d = &w->u.data;
	struct ferry_w2_frame f = { .type = FERRY_W2_RESPONSE };
	unsigned i;

	for (i = 0; i < r->nreq && r->req_ids[i] != d->req_id; i++)
		;
	if (i == r->nreq) {
		if (r->nreq == 8)
			return;
		r->nreq++;
		r->req_ids[i] = d->req_id;
		r->req_flags[i] = (w->flags & FERRY_W2_F_TRACE) ? FERRY_FF_TRACE
							       : 0;
		r->req_len[i] = d->bytes_len;
		memcpy(r->req_msg[i], d->bytes,
		       d->bytes_len < 64 ? d->bytes_len : 64);
	}
	f.u.data.req_id = d->req_id;
	f.u.data.bytes = d->bytes;
	f.u.data.bytes_len = d->bytes_len;
	raw_send_frames(&r->raw, &f, 1);
}

/* Take what arrived: the handshake (announcing @features), then
 * REQUESTs. */
static void rsrv_poll(struct rsrv *r, uint32_t features)
{
	struct ferry_w2_frame w;
	size_t n;

	while ((n = raw_take(&r->raw, r->raw.rbuf, sizeof(r->raw.rbuf),
			     &r->raw.to)) > 0) {
		if (!ferry__w2_is_short(r->raw.rbuf[0])) {
			rsrv_handshake(r, r->raw.rbuf, n, features);
			continue;
		}
		if (!r->open || !raw_open_dgram(&r->raw, n))
			continue;
		while (ferry__w2_iter_next(&r->raw.it, &w) == 1)
			if (w.type == FERRY_W2_REQUEST)
				rsrv_answer(r, &w);
	}
}

/* A server of the release before trace blocks (no FEATURES bit 1): the
 * client sends it no FF_TRACE, for a call made while connecting or after,
 * and counts each context it kept back.  The CONNECT itself carries the
 * client session span's context in its TRACEPARENT frame (the span a child
 * of ferry_connect_opts.traceparent), and no TRACESTATE: a client session
 * has none (docs/wire.md 3.3; the CONNECT's trace context, as v1's
 * TLVs). */
static void t_server_without_trace_feature(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *cli = ep_with(t);
	struct ferry_call_opts o = { .traceparent = k_tp, .tracestate = k_ts };
	struct ferry_connect_opts co = { .traceparent = k_tp };
	struct ferry_trace_ctx ctx;
	struct ferry_session *s;
	static struct call_rec r1, r2;
	struct conn c = { 0 };
	struct rsrv rs;
	struct rec *cs;
	uint64_t end;

	g.cli = cli;
	rsrv_open(&rs);
	cr_assert_eq(ferry_session_connect(cli, "127.0.0.1", rs.port, &co,
					   on_connect, &c, &s),
		     0);
	call_with(s, M_ECHO, "early", 5, &o, &r1);
	for (end = now_ms() + 3000; !r1.done && now_ms() < end;) {
		ferry_endpoint_poll(cli, 1);
		rsrv_poll(&rs, FERRY_FEAT_IOU);
	}
	cr_assert(c.done && c.res == 0, "connect: %s", ferry_strerror(c.res));
	cr_assert(rs.cli_features & FERRY_FEAT_TRACE,
		  "the client announced trace blocks");
	cr_assert_eq(r1.res, 0);
	call_with(s, M_ECHO, "later", 5, &o, &r2);
	for (end = now_ms() + 3000; !r2.done && now_ms() < end;) {
		ferry_endpoint_poll(cli, 1);
		rsrv_poll(&rs, FERRY_FEAT_IOU);
	}
	cr_assert_eq(r2.res, 0);
	cr_assert_eq(rs.nreq, 2);
	for (unsigned i = 0; i < 2; i++) {
		cr_assert_not(rs.req_flags[i] & FERRY_FF_TRACE);
		cr_assert_eq(rs.req_len[i], 5, "the payload alone");
	}
	cr_assert_arr_eq(rs.req_msg[0], "early", 5);
	cr_assert_arr_eq(rs.req_msg[1], "later", 5);
	cr_assert_eq(r1.len, 5);
	cr_assert_arr_eq(r2.data, "later", 5);
	cr_assert_eq(stats(cli).trace_ctx_unsent, 2);
	ferry_session_close(s);
	cr_assert_geq(ferry_tracer_drain(t), 0);
	/* The CONNECT's context: the client session span's, in the
	 * application's trace. */
	cs = span_of(FERRY_SPAN_KIND_CLIENT, true, 0);
	cr_assert_not_null(cs);
	cr_assert(cs->info.has_parent);
	cr_assert_arr_eq(cs->info.parent_span_id, k_span_id, 8);
	cr_assert_eq(strlen(rs.cli_tp), FERRY_TRACEPARENT_LEN,
		     "the CONNECT carried no TRACEPARENT");
	cr_assert_eq(ferry_traceparent_parse(rs.cli_tp, FERRY_TRACEPARENT_LEN,
					     &ctx),
		     0, "%s", rs.cli_tp);
	cr_assert_arr_eq(ctx.trace_id, k_trace_id, 16);
	cr_assert_arr_eq(ctx.span_id, cs->info.span_id, 8, "%s", rs.cli_tp);
	cr_assert_not(rs.cli_ts, "a client session has no tracestate to send");
	ferry_endpoint_destroy(cli);
	raw_close(&rs.raw);
	ferry_tracer_destroy(t);
}

/* ===================================================================== */
/* Trace blocks beside token tables, in fragments, and short of room        */

/* FF_TRACE and FF_CAPS together: the table follows the block. */
static void t_trace_and_caps(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_endpoint *srv = server_new(t), *cli = ep_with(t);
	static const char tok[] = "a-channel-token";
	struct ferry_cap cap = { FERRY_CAP_TOKEN, tok, sizeof(tok) - 1 };
	struct ferry_call_opts o = { .caps = &cap, .ncaps = 1,
				     .traceparent = k_tp, .tracestate = k_ts };
	struct ferry_session *s;
	struct ferry_ep_stats st;
	struct rec *cc, *sc;
	struct call_rec r;

	g.cli = cli;
	s = open_session(cli, srv);
	call_with(s, M_CAP, "payload", 7, &o, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
	cr_assert_eq(r.len, sizeof(tok) - 1);
	cr_assert_arr_eq(r.data, tok, sizeof(tok) - 1);
	cr_assert_eq(g.req_len, 7);
	cr_assert_arr_eq(g.req, "payload", 7);
	/* ferry_call_caps is the same call without the context. */
	memset(&r, 0, sizeof(r));
	cr_assert_eq(ferry_call_caps(s, M_CAP, msg_of(cli, "p", 1), &cap, 1, 0,
				     on_call_done, &r),
		     0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	finish(cli, srv, s, t);
	st = stats(srv);
	cr_assert_eq(st.trace_blocks_received, 1);
	cr_assert_eq(st.caps_received, 2);
	cr_assert_eq(st.caps_refused, 0);
	cc = child_of(k_span_id, FERRY_SPAN_KIND_CLIENT);
	cr_assert_not_null(cc);
	sc = child_of(cc->info.span_id, FERRY_SPAN_KIND_SERVER);
	cr_assert_not_null(sc);
	cr_assert_str_eq(sc->tstate, k_ts);
	destroy(cli, srv, t);
}

/* The smallest max_frame wire v2 allows (docs/wire.md 3.3: PARAMS
 * max_frame 1200..65507; v1 went down to 1 KiB and less). */
static void small_frames(struct ferry_ep_config *c)
{
	cfg_init(c);
	c->max_frame = FERRY_W2_MIN_FRAME;
}

/* A 64 KiB request in fragments of its smallest datagrams, its block in
 * the first; and its 64 KiB response, with attributes, the same way. */
static void t_fragmented(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_call_opts o = { .traceparent = k_tp, .tracestate = k_ts };
	static uint8_t big[64u << 10];
	struct ferry_session *s;
	struct ferry_ep_stats st;
	static struct call_rec r;
	struct rec *cc, *sc;

	small_frames(&cfg);
	srv = server_make(&cfg, t);
	cli = ep_traced(&cfg, t);
	g.cli = cli;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + (i >> 9));
	s = open_session(cli, srv);
	call_with(s, M_ATTRS, big, sizeof(big), &o, &r);
	PUMP(cli, srv, 5000, r.done);
	cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
	cr_assert_eq(g.req_len, sizeof(big));
	cr_assert_arr_eq(g.req, big, sizeof(big));
	cr_assert_eq(r.len, sizeof(big));
	cr_assert_arr_eq(r.data, big, sizeof(big));
	finish(cli, srv, s, t);
	st = stats(srv);
	cr_assert_eq(st.trace_blocks_received, 1);
	cr_assert_eq(st.trace_blocks_bad, 0);
	cr_assert_eq(st.drop_stale, 0);
	cr_assert_eq(stats(cli).trace_attrs_received, 4);
	cc = child_of(k_span_id, FERRY_SPAN_KIND_CLIENT);
	cr_assert_not_null(cc);
	cr_assert(strstr(cc->attrs, "db.rows=-42;"), "%s", cc->attrs);
	sc = child_of(cc->info.span_id, FERRY_SPAN_KIND_SERVER);
	cr_assert_not_null(sc);
	destroy(cli, srv, t);
}

/* The tracestate of the server call span whose parent is the client
 * call span of the @nth call (in CLOSE order) under the app's context. */
static const char *server_tstate_of(unsigned nth)
{
	for (unsigned i = 0; i < g_nrec; i++) {
		struct rec *cc = &g_rec[i], *sc;

		if (cc->info.kind != FERRY_SPAN_KIND_CLIENT ||
		    cc->info.is_session ||
		    memcmp(cc->info.parent_span_id, k_span_id, 8) != 0 ||
		    nth-- != 0)
			continue;
		sc = child_of(cc->info.span_id, FERRY_SPAN_KIND_SERVER);
		return sc ? sc->tstate : NULL;
	}
	return NULL;
}

/*
 * No room: the block gives way -- its tracestate first, then all of it --
 * and the call goes on.
 *
 * Wire v2: the room that runs short is the header area that block and
 * token table share (FERRY_WIRE_PRE_MAX, 980 bytes), never the first
 * fragment.  v1's first case (a 64-byte first fragment at the smallest
 * max_frame, with a CONNECT larger than that max_frame, so uring only) is
 * gone: v2's smallest max_frame, 1200, leaves a first fragment of more than
 * 1100 bytes (frag_unit), beyond the 980 of the area, and the traced
 * CONNECT (512 bytes padded, about 600 with a TRACEPARENT; at most
 * FERRY_HS_CONNECT_MAX with a token) fits it, so DPDK runs this too.  In
 * its place: at the smallest max_frame the whole block still goes.
 */
static void t_block_gives_way(void)
{
	struct ferry_tracer *t = tracer_new();
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_call_opts o = { .traceparent = k_tp, .tracestate = k_ts };
	static uint8_t tok[952];
	struct ferry_cap cap = { FERRY_CAP_TOKEN, tok, 0 };
	struct ferry_session *s;
	/* Tokens whose tables (8 + token bytes) leave the 980 bytes ahead
	 * of the payload room for the 76-byte block, for its 59 bytes
	 * without the tracestate, and for no block. */
	static const size_t toks[] = { 896, 913, 914 };
	static const char *const want[] = { k_ts, "", NULL };
	struct call_rec r;

	srv = server_new(t);
	small_frames(&cfg);
	cli = ep_traced(&cfg, t);
	g.cli = cli;
	s = open_session(cli, srv);
	call_with(s, M_ECHO, "x", 1, &o, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(stats(cli).trace_ctx_unsent, 0);
	cr_assert_eq(stats(srv).trace_blocks_received, 1);
	ferry_session_close(s);
	PUMP(cli, srv, 50, false);
	ferry_endpoint_destroy(cli);

	cfg_init(&cfg);
	cli = ep_traced(&cfg, t);
	g.cli = cli;
	s = open_session(cli, srv);
	o.caps = &cap;
	o.ncaps = 1;
	for (unsigned i = 0; i < 3; i++) {
		cap.len = toks[i];
		call_with(s, M_CAP, "x", 1, &o, &r);
		PUMP(cli, srv, 3000, r.done);
		cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
		cr_assert_eq(r.len, toks[i], "the table arrived whole");
	}
	cr_assert_eq(stats(cli).trace_ctx_unsent, 1);
	cr_assert_eq(stats(srv).trace_blocks_received, 3);
	finish(cli, srv, s, t);
	cr_assert_str_eq(server_tstate_of(0), k_ts,
			 "the first client's, whole at max_frame 1200");
	for (unsigned i = 0; i < 3; i++) {
		const char *ts = server_tstate_of(1 + i);

		if (want[i])
			cr_assert(ts && strcmp(ts, want[i]) == 0, "call %u: %s",
				  i, ts ? ts : "(no server span under it)");
		else
			cr_assert_null(ts, "call %u went without its block", i);
	}
	destroy(cli, srv, t);
}

/* ===================================================================== */
/* Every case on every dataplane                                          */

#define TRACE_WIRE_CASES(CASE, s)                                              \
	CASE(s, per_call_context)                                              \
	CASE(s, untraced_client_propagates)                                    \
	CASE(s, call_opts_checked_and_copied)                                  \
	CASE(s, response_attributes)                                           \
	CASE(s, response_attribute_limits)                                     \
	CASE(s, call_span_nesting)                                             \
	CASE(s, raw_peer_bad_blocks)                                           \
	CASE(s, raw_client_features)                                           \
	CASE(s, server_without_trace_feature)                                  \
	CASE(s, trace_and_caps)                                                \
	CASE(s, fragmented)                                                    \
	CASE(s, block_gives_way)

HARNESS_BATTERY(trace_wire, TRACE_WIRE_CASES, .timeout = 60)

