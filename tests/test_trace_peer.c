/* SPDX-License-Identifier: MIT */
/*
 * test_trace_peer.c - what a peer may make a tracer record (issue 14;
 * docs/tracing.md, sections 4 and 6), between real endpoints on 127.0.0.1,
 * every case on every dataplane (tests/harness.h):
 *
 *  - a client that says "sampled", with a tracestate, on its CONNECT and
 *    on every call, against a server tracing at rate 0: by default
 *    (ignore_remote_sampling) the server records no call span and keeps
 *    no tracestate; with the option off it follows the client, as before;
 *  - a server that answers with attributes named like the client span's
 *    built-ins (rpc.system, server.address, ...): they land under "peer."
 *    and the built-ins stay.
 *
 * The attacking client needs no tracer: an untraced client forwards the
 * application's context as given, which is what any peer can send.
 */
#include <criterion/criterion.h>

#include <ferry/ferry.h>
#include <ferry/trace.h>

#include "harness.h"
#include "trace_util.h"

#define M_ECHO 1
#define M_SPOOF 2 /* answers with attributes named like built-ins */
#define NCALLS 8

/* A long tracestate, as an amplifying peer sends it (canonical form). */
static const char k_ts[] =
	"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,"
	"pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

static struct ferry_tracer *tracer_with(const char *path, double rate,
					bool ignore, bool record_unsampled,
					bool callback)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;

	ferry_tracer_config_init(&c);
	c.export_path = path;
	c.export_replace = true;
	c.sample_rate = rate;
	c.ignore_remote_sampling = ignore;
	c.record_unsampled_sessions = record_unsampled;
	c.on_event = callback ? on_event : NULL;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	return t;
}

static struct ferry_endpoint *ep_traced(struct ferry_tracer *t)
{
	struct ferry_endpoint *ep = ep_new(NULL);

	if (t)
		cr_assert_eq(ferry_endpoint_set_tracer(ep, t), 0);
	return ep;
}

static char *file_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static unsigned count_of(const char *text, const char *what)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, what)); p++)
		n++;
	return n;
}

/* --- a peer's sampled flag ------------------------------------------------- */

/*
 * An untraced client connects with a sampled traceparent and makes NCALLS
 * calls, each with its own sampled context and k_ts, to a server whose
 * tracer (rate 0, ignoring remote sampling as @ignore says) exports to
 * @path.  Returns the server tracer's counters and the file's text.
 */
static char *attack_rate_0(const char *path, bool ignore, bool record_unsampled,
			   struct ferry_tracer_stats *st, size_t *len)
{
	struct ferry_tracer *t = tracer_with(path, 0.0, ignore, record_unsampled,
					     false);
	struct ferry_endpoint *srv = ep_traced(t), *cli = ep_traced(NULL);
	struct ferry_connect_opts co = { .traceparent = TP_S };
	struct ferry_call_opts o = { .traceparent = TP_S, .tracestate = k_ts };
	struct ferry_session *s = NULL;
	struct reply r[NCALLS] = { 0 };

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	cr_assert_eq(connect_to(cli, srv, &co, &s), 0);
	for (int i = 0; i < NCALLS; i++)
		cr_assert_eq(ferry_call_with(s, M_ECHO, msg_of(cli, "x", 1), &o,
					     on_reply, &r[i]),
			     0);
	cr_assert(pump_replies(cli, srv, r, NCALLS));
	for (int i = 0; i < NCALLS; i++)
		cr_assert_eq(r[i].res, 0);
	cr_assert_eq(stats(srv).trace_blocks_received, NCALLS,
		     "each call carried its context");
	ferry_session_close(s);
	PUMP(cli, srv, 50, false);
	cr_assert_geq(ferry_tracer_drain(t), 0);
	ferry_tracer_stats(t, st);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	ferry_tracer_destroy(t);
	return file_text(path, len);
}

static void t_remote_sampled_flag_at_rate_0(void)
{
	char path[] = "/tmp/test_trace_peer_XXXXXX";
	int fd = mkstemp(path);
	struct ferry_tracer_stats st;
	size_t len;
	char *text;

	cr_assert_geq(fd, 0);
	close(fd);
	/* The default, and only sampled sessions recorded: nothing at all
	 * is exported. */
	text = attack_rate_0(path, true, false, &st, &len);
	cr_assert_eq(len, 0, "%s", text);
	cr_assert_eq(st.spans_exported, 0);
	cr_assert_eq(st.unsampled, NCALLS);
	cr_assert_eq(st.tracestate_malformed + st.tracestate_truncated, 0);
	free(text);
	/* Recording unsampled sessions (the default): the session span, one
	 * per session, without the peer's tracestate, and no call span. */
	text = attack_rate_0(path, true, true, &st, &len);
	cr_assert_eq(st.spans_exported, 1);
	cr_assert_eq(count_of(text, "\"name\":\"ferry.session\""), 1);
	cr_assert_eq(count_of(text, "traceState"), 0, "%s", text);
	cr_assert_eq(count_of(text, "\"parentSpanId\":\"00f067aa0ba902b7\""), 1,
		     "the peer's span is still the parent: %s", text);
	free(text);
	/* The option off: the peer decides (the behaviour before issue 14):
	 * every call recorded, each with the peer's tracestate. */
	text = attack_rate_0(path, false, false, &st, &len);
	cr_assert_eq(st.spans_exported, NCALLS + 1);
	cr_assert_eq(st.unsampled, 0);
	cr_assert_eq(count_of(text, "\"name\":\"ferry/1\""), NCALLS);
	cr_assert_eq(count_of(text, k_ts), NCALLS);
	free(text);
	unlink(path);
}

/* --- a peer's attributes --------------------------------------------------- */

static void h_spoof(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	cr_assert_eq(ferry_call_resp_attr_str(c, "rpc.system", "evil"), 0);
	cr_assert_eq(ferry_call_resp_attr_str(c, "server.address", "6.6.6.6"), 0);
	cr_assert_eq(ferry_call_resp_attr_int(c, "server.port", 1), 0);
	cr_assert_eq(ferry_call_resp_attr_str(c, "rpc.method", "999"), 0);
	cr_assert_eq(ferry_call_resp_attr_str(c, "network.peer.address",
					      "6.6.6.6"), 0);
	cr_assert_eq(ferry_call_resp_attr_str(c, "error.type", "none"), 0);
	cr_assert_eq(ferry_call_resp_attr_int(c, "db.rows", 3), 0);
	cr_assert_eq(ferry_call_respond(c, ferry_call_take_req(c)), 0);
}

/* The value of attribute @key in a recorded "k=v;" list ("" if none);
 * the key must be there at most once. */
static const char *attr_of(const struct rec *x, const char *key, char *buf,
			   size_t cap)
{
	char pat[80];
	size_t n = (size_t)snprintf(pat, sizeof(pat), "%s=", key);
	unsigned found = 0;

	buf[0] = '\0';
	for (const char *p = x->attrs; (p = strstr(p, pat)); p++) {
		if (p != x->attrs && p[-1] != ';')
			continue;
		found++;
		snprintf(buf, cap, "%.*s", (int)strcspn(p + n, ";"), p + n);
	}
	cr_assert_leq(found, 1, "%s twice: %s", key, x->attrs);
	return buf;
}

static void t_peer_attributes_prefixed(void)
{
	char path[] = "/tmp/test_trace_peer_XXXXXX";
	int fd = mkstemp(path);
	struct ferry_tracer *t;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct reply r = { 0 };
	char v[64], port[8];
	struct rec *x = NULL;
	size_t len;
	char *text;

	cr_assert_geq(fd, 0);
	close(fd);
	g_nrec = 0;
	t = tracer_with(path, 1.0, true, true, true);
	srv = ep_traced(NULL);
	cli = ep_traced(t);
	cr_assert_eq(ferry_endpoint_register(srv, M_SPOOF, h_spoof, NULL), 0);
	s = open_session(cli, srv);
	cr_assert_eq(ferry_call(s, M_SPOOF, msg_of(cli, "x", 1), on_reply, &r), 0);
	cr_assert(pump_replies(cli, srv, &r, 1));
	cr_assert_eq(r.res, 0);
	cr_assert_eq(stats(cli).trace_attrs_received, 7);
	ferry_session_close(s);
	PUMP(cli, srv, 50, false);
	cr_assert_geq(ferry_tracer_drain(t), 0);
	for (unsigned i = 0; i < n_closed(); i++)
		if (!closed(i)->info.is_session)
			x = closed(i);
	cr_assert_not_null(x);
	snprintf(port, sizeof(port), "%u", ferry_endpoint_port(srv));
	/* The built-ins, as the tracer wrote them... */
	cr_assert_str_eq(attr_of(x, "rpc.system", v, sizeof(v)), "ferry");
	cr_assert_str_eq(attr_of(x, "rpc.method", v, sizeof(v)), "2");
	cr_assert_str_eq(attr_of(x, "server.address", v, sizeof(v)), "127.0.0.1");
	cr_assert_str_eq(attr_of(x, "server.port", v, sizeof(v)), port);
	cr_assert_str_eq(attr_of(x, "network.peer.address", v, sizeof(v)),
			 "127.0.0.1");
	cr_assert_str_eq(attr_of(x, "error.type", v, sizeof(v)), "");
	/* ...and the peer's beside them. */
	cr_assert_str_eq(attr_of(x, "peer.rpc.system", v, sizeof(v)), "evil");
	cr_assert_str_eq(attr_of(x, "peer.server.address", v, sizeof(v)), "6.6.6.6");
	cr_assert_str_eq(attr_of(x, "peer.server.port", v, sizeof(v)), "1");
	cr_assert_str_eq(attr_of(x, "peer.rpc.method", v, sizeof(v)), "999");
	cr_assert_str_eq(attr_of(x, "peer.network.peer.address", v, sizeof(v)),
			 "6.6.6.6");
	cr_assert_str_eq(attr_of(x, "peer.error.type", v, sizeof(v)), "none");
	cr_assert_str_eq(attr_of(x, "peer.db.rows", v, sizeof(v)), "3");
	cr_assert_eq(x->info.status, FERRY_SPAN_STATUS_UNSET);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	ferry_tracer_destroy(t);
	/* The file says the same: one rpc.system, "ferry". */
	text = file_text(path, &len);
	cr_assert_eq(count_of(text, "{\"key\":\"rpc.system\",\"value\":"
				    "{\"stringValue\":\"ferry\"}}"), 2);
	cr_assert_eq(count_of(text, "{\"key\":\"rpc.system\""), 2);
	cr_assert_eq(count_of(text, "{\"key\":\"peer.rpc.system\",\"value\":"
				    "{\"stringValue\":\"evil\"}}"), 1);
	free(text);
	unlink(path);
}

/* ===================================================================== */

#define TRACE_PEER_CASES(CASE, s)                                              \
	CASE(s, remote_sampled_flag_at_rate_0)                                 \
	CASE(s, peer_attributes_prefixed)

HARNESS_BATTERY(trace_peer, TRACE_PEER_CASES, .timeout = 60)
