/* SPDX-License-Identifier: MIT */
/*
 * ferry-trace-demo - drive the tracing API the way the transport will, for
 * tests and for measuring.  Not installed.
 *
 *   ferry-trace-demo CLIENT.jsonl SERVER.jsonl
 *       Two tracers (a client and a server process, as it were) write one
 *       export file each: a session closed cleanly with three calls (ok,
 *       FERRY_ENOMETHOD, a client-side deadline), one ended by a dead peer,
 *       one left open at tracer shutdown, enrichment of every kind.
 *
 *   ferry-trace-demo --bench [EVENTS]
 *       The producer's cost per event (ns/event) with a draining thread,
 *       and the cost of an event dropped on a full ring.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry/error.h>
#include <ferry/trace.h>

#define ENCLOSING "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int die(const char *what, int rc)
{
	fprintf(stderr, "ferry-trace-demo: %s: %s\n", what, strerror(-rc));
	return 1;
}

static uint32_t ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static int tracer(const char *service, const char *path,
		  struct ferry_tracer **t, struct ferry_trace_ring **r)
{
	struct ferry_tracer_config c;
	int rc;

	ferry_tracer_config_init(&c);
	c.service_name = service;
	c.export_path = path;
	/* The demo's server and client are one program: the server follows
	 * its client's sampling and keeps its tracestate, as the example in
	 * docs/tracing.md, section 6 shows. */
	c.ignore_remote_sampling = false;
	rc = ferry_tracer_create(&c, t);
	if (rc < 0)
		return rc;
	return ferry_trace_ring_create(*t, r);
}

/* One session: client and server spans, calls, an end. */
struct sess {
	ferry_span_t c, s;
};

static struct sess open_session(struct ferry_trace_ring *rc,
				struct ferry_trace_ring *rs, uint16_t cport)
{
	char tp[FERRY_TRACEPARENT_TEXT_LEN + 1];
	struct ferry_span_session_args a = {
		.kind = FERRY_SPAN_KIND_CLIENT,
		.traceparent = ENCLOSING,
		.traceparent_len = strlen(ENCLOSING),
		.peer_ip = ip("127.0.0.1"),
		.peer_port = 31850,
		.server_ip = ip("127.0.0.1"),
		.server_port = 31850,
	};
	struct sess x;
	static const char tstate[] = "ferry=demo,congo=t61rcWkgMzE";

	x.c = ferry_span_session_open(rc, &a);
	/* What the CONNECT carries: the client session span's context. */
	ferry_span_traceparent(rc, x.c, tp, sizeof(tp));
	a = (struct ferry_span_session_args){
		.kind = FERRY_SPAN_KIND_SERVER,
		.traceparent = tp,
		.traceparent_len = strlen(tp),
		.tracestate = tstate,
		.tracestate_len = strlen(tstate),
		.peer_ip = ip("127.0.0.1"),
		.peer_port = cport,
		.server_port = 31850,
	};
	x.s = ferry_span_session_open(rs, &a);
	return x;
}

static void call(struct ferry_trace_ring *rc, struct ferry_trace_ring *rs,
		 struct sess *x, uint16_t method, int server_res, int client_res)
{
	ferry_span_t c = ferry_span_call_start(rc, x->c, method, NULL);
	ferry_span_t s = ferry_span_call_start(rs, x->s, method, NULL);

	ferry_span_set_int(rs, s, "app.request.bytes", 512);
	ferry_span_call_end(rs, s, server_res);
	/* Enrichment from the continuation. */
	ferry_span_set_bool(rc, c, "app.cached", false);
	ferry_span_call_end(rc, c, client_res);
}

static int demo(const char *cpath, const char *spath)
{
	struct ferry_tracer *tc, *ts;
	struct ferry_trace_ring *rc, *rs;
	struct sess a, b, d;
	int rc1;

	if ((rc1 = tracer("demo-client", cpath, &tc, &rc)) < 0)
		return die(cpath, rc1);
	if ((rc1 = tracer("demo-server", spath, &ts, &rs)) < 0)
		return die(spath, rc1);

	a = open_session(rc, rs, 40001);
	ferry_span_set_str(rc, a.c, "app.user", "alice \"quoted\" \xc3\xa9");
	ferry_span_set_double(rs, a.s, "app.load", 0.25);
	call(rc, rs, &a, 7, 0, 0);
	call(rc, rs, &a, 9, -FERRY_ENOMETHOD, -FERRY_ENOMETHOD);
	call(rc, rs, &a, 7, 0, -ETIME);
	ferry_span_session_end(rc, a.c, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_span_session_end(rs, a.s, FERRY_SPAN_END_CLOSE, 0, NULL);

	b = open_session(rc, rs, 40002);
	call(rc, rs, &b, 3, 0, -ETIMEDOUT);
	ferry_span_session_end(rc, b.c, FERRY_SPAN_END_PEER_DEAD, -ETIMEDOUT, NULL);
	ferry_span_session_end(rs, b.s, FERRY_SPAN_END_ERROR, -ECONNRESET,
			       "client went away");
	/* A stale handle: a no-op. */
	ferry_span_call_end(rc, b.c, 0);

	d = open_session(rc, rs, 40003);
	(void)d;
	ferry_tracer_drain(tc);
	ferry_tracer_drain(ts);
	/* d is still open: the shutdown closes it with ERROR. */
	ferry_tracer_destroy(tc);
	ferry_tracer_destroy(ts);
	ferry_trace_ring_destroy(rc);
	ferry_trace_ring_destroy(rs);
	return 0;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Call spans without attributes exported to a file in @format: the
 * producer's and the consumer's cost per span, the consumer's also in
 * CPU time (the drain runs on this thread), and the file's bytes. */
static int bench_calls(const struct ferry_span_session_args *a, int format)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;
	char path[] = "/tmp/ferry-trace-demo-XXXXXX";
	double tp = 0, tc = 0, cpu = 0, t0, c0;
	uint64_t spans = 0, drained = 0;
	const char *name = format == FERRY_TRACE_FORMAT_JSON ? "json" : "protobuf";
	struct stat sb;
	ferry_span_t s;
	int fd = mkstemp(path), rc;

	if (fd < 0)
		return die("mkstemp", -errno);
	close(fd);
	ferry_tracer_config_init(&c);
	c.use_env = false;
	c.ring_bytes = 1u << 20;
	c.export_path = path;
	c.export_format = format;
	rc = ferry_tracer_create(&c, &t);
	if (rc < 0 || (rc = ferry_trace_ring_create(t, &r)) < 0) {
		unlink(path);
		return die("tracer", rc);
	}
	s = ferry_span_session_open(r, a);
	/* Rounds of 8192 spans (720 KiB of records: the ring stays in the
	 * cache, as in a running endpoint), each drained after, timed apart. */
	for (int round = 0; round < 64; round++) {
		t0 = mono();
		for (int i = 0; i < 8192; i++)
			ferry_span_call_end(r, ferry_span_call_start(r, s, 7, NULL), 0);
		tp += mono() - t0;
		spans += 8192;
		t0 = mono();
		c0 = thread_cpu();
		rc = ferry_tracer_drain(t);
		tc += mono() - t0;
		cpu += thread_cpu() - c0;
		drained += rc > 0 ? (uint64_t)rc : 0;
	}
	ferry_tracer_stats(t, &st);
	printf("producer: %.1f ns per call span without attributes (%" PRIu64
	       " spans in rounds of 8192, consumer idle; %" PRIu64
	       " dropped)\n", tp / (double)spans, spans, st.spans_dropped);
	printf("consumer: %.1f ns per call span, %.1f ns of CPU (%" PRIu64
	       " drained, exported to a file in /tmp as %s, no callback)\n",
	       tc / (double)drained, cpu / (double)drained, drained, name);
	if (stat(path, &sb) == 0)
		printf("file: %.1f bytes per call span (%s)\n",
		       (double)sb.st_size / (double)st.spans_exported, name);
	unlink(path);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	return 0;
}

static int bench(uint64_t events)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;
	struct ferry_span_session_args a = { .kind = FERRY_SPAN_KIND_CLIENT,
					     .peer_ip = ip("10.0.0.2"),
					     .peer_port = 31850 };
	ferry_span_t s, cs;
	double t0, dt;
	uint64_t n = 0, calls = events / 3;
	int rc;

	ferry_tracer_config_init(&c);
	c.thread = true;
	c.drain_interval_us = 100;
	c.ring_bytes = 4u << 20;
	if ((rc = ferry_tracer_create(&c, &t)) < 0 ||
	    (rc = ferry_trace_ring_create(t, &r)) < 0)
		return die("tracer", rc);
	s = ferry_span_session_open(r, &a);
	/* A call is three events: open, one attribute, close. */
	t0 = mono();
	for (uint64_t i = 0; i < calls; i++) {
		cs = ferry_span_call_start(r, s, 7, NULL);
		ferry_span_set_int(r, cs, "app.n", (int64_t)i);
		ferry_span_call_end(r, cs, 0);
		n += 3;
	}
	dt = mono() - t0;
	ferry_tracer_drain(t);
	ferry_tracer_stats(t, &st);
	printf("producer: %.1f ns/event (%" PRIu64 " events: call open + int "
	       "attribute + close, drain thread running; %" PRIu64 " dropped)\n",
	       dt / (double)n, n, st.events_dropped);

	/* Producer alone (the consumer idle), then the consumer alone. */
	ferry_tracer_destroy(t);
	ferry_trace_ring_destroy(r);
	ferry_tracer_config_init(&c);
	c.ring_bytes = 64u << 20;
	c.max_spans = 65536;
	if ((rc = ferry_tracer_create(&c, &t)) < 0 ||
	    (rc = ferry_trace_ring_create(t, &r)) < 0)
		return die("tracer", rc);
	s = ferry_span_session_open(r, &a);
	calls = 200000;
	n = 0;
	t0 = mono();
	for (uint64_t i = 0; i < calls; i++) {
		cs = ferry_span_call_start(r, s, 7, NULL);
		ferry_span_set_int(r, cs, "app.n", (int64_t)i);
		ferry_span_call_end(r, cs, 0);
		n += 3;
	}
	dt = mono() - t0;
	ferry_tracer_stats(t, &st);
	printf("producer: %.1f ns/event (%" PRIu64 " events, consumer idle; "
	       "%" PRIu64 " dropped)\n", dt / (double)n, n, st.events_dropped);
	t0 = mono();
	rc = ferry_tracer_drain(t);
	dt = mono() - t0;
	printf("consumer: %.1f ns/event (%d events drained, no file, no "
	       "callback)\n", dt / (double)rc, rc);

	/* Call spans as the transport makes them, nothing set on them: one
	 * CALL record each, exported to a file from it, in each format. */
	ferry_tracer_destroy(t);
	ferry_trace_ring_destroy(r);
	if ((rc = bench_calls(&a, FERRY_TRACE_FORMAT_JSON)) != 0 ||
	    (rc = bench_calls(&a, FERRY_TRACE_FORMAT_PROTOBUF)) != 0)
		return rc;

	/* No consumer: fill the ring, then measure dropped events. */
	ferry_tracer_config_init(&c);
	c.ring_bytes = 64u << 10;
	calls = events / 3;
	if ((rc = ferry_tracer_create(&c, &t)) < 0 ||
	    (rc = ferry_trace_ring_create(t, &r)) < 0)
		return die("tracer", rc);
	s = ferry_span_session_open(r, &a);
	while (ferry_span_set_int(r, s, "fill", 1) == 0)
		;
	t0 = mono();
	for (uint64_t i = 0; i < calls; i++)
		ferry_span_set_int(r, s, "app.n", (int64_t)i);
	dt = mono() - t0;
	printf("producer: %.1f ns/event dropped on a full ring\n",
	       dt / (double)calls);
	ferry_tracer_destroy(t);
	ferry_trace_ring_destroy(r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
		return bench(argc >= 3 ? strtoull(argv[2], NULL, 10) : 3000000);
	if (argc != 3) {
		fprintf(stderr, "usage: ferry-trace-demo CLIENT.jsonl SERVER.jsonl\n"
				"       ferry-trace-demo --bench [EVENTS]\n");
		return 2;
	}
	return demo(argv[1], argv[2]);
}
