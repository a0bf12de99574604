/* SPDX-License-Identifier: MIT */
/*
 * trace_util.h - shared fixtures of the tracing unit tests
 * (tests/test_trace_*.c): trace-context text parsed from heap copies of
 * exactly its length (so that a sanitizer build catches any read past the
 * end), and a tracer whose callback records every event it hands over,
 * with helpers to find the CLOSE records and to open client and server
 * session spans.
 *
 * Everything here is static: each test program gets its own recorder, and
 * Criterion runs each case in its own process.
 */
#ifndef FERRY_TESTS_TRACE_UTIL_H
#define FERRY_TESTS_TRACE_UTIL_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/error.h>

#include "control/trace_internal.h"


#define TP_S "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TP_U "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

/* Parse @s from an exact-length heap copy. */
static inline int tp_parse(const char *s, struct ferry_trace_ctx *c)
{
	size_t n = strlen(s);
	char *p = malloc(n ? n : 1);
	int rc;

	memcpy(p, s, n);
	rc = ferry_traceparent_parse(p, n, c);
	free(p);
	return rc;
}

static inline int ts_parse(const char *s, char *out, size_t cap,
			   size_t *len, bool *trunc)
{
	size_t n = strlen(s);
	char *p = malloc(n ? n : 1);
	int rc;

	memcpy(p, s, n);
	rc = ferry_tracestate_parse(p, n, out, cap, len, trunc);
	free(p);
	return rc;
}

static inline void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* --- a tracer that records what it hands over ------------------------------ */

#define MAXREC 4096

struct rec {
	int type;
	struct ferry_span_info info;
	char name[64], msg[80], tstate[FERRY_TRACESTATE_KEEP + 1];
	char attrs[1024];
	unsigned n_attrs, dropped;
};

static struct rec g_rec[MAXREC];
static unsigned g_nrec;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static inline void on_event(void *arg, int type,
			    const struct ferry_span_info *s,
			    const struct ferry_trace_attr *a)
{
	struct rec *r;
	size_t o = 0;

	(void)arg;
	(void)a;
	pthread_mutex_lock(&g_mu);
	if (g_nrec == MAXREC) {
		pthread_mutex_unlock(&g_mu);
		return;
	}
	r = &g_rec[g_nrec++];
	r->type = type;
	r->info = *s;
	snprintf(r->name, sizeof(r->name), "%s", s->name);
	snprintf(r->msg, sizeof(r->msg), "%s", s->status_msg);
	snprintf(r->tstate, sizeof(r->tstate), "%s", s->tracestate);
	r->attrs[0] = '\0';
	for (unsigned i = 0; i < s->n_attrs && o < sizeof(r->attrs) - 1; i++) {
		const struct ferry_trace_attr *x = &s->attrs[i];
		int n;

		if (x->type == FERRY_ATTR_STRING)
			n = snprintf(r->attrs + o, sizeof(r->attrs) - o, "%s=%s;", x->key, x->v.s);
		else if (x->type == FERRY_ATTR_INT)
			n = snprintf(r->attrs + o, sizeof(r->attrs) - o, "%s=%lld;", x->key, (long long)x->v.i);
		else if (x->type == FERRY_ATTR_BOOL)
			n = snprintf(r->attrs + o, sizeof(r->attrs) - o, "%s=%s;", x->key, x->v.b ? "true" : "false");
		else
			n = snprintf(r->attrs + o, sizeof(r->attrs) - o, "%s=%g;", x->key, x->v.d);
		o += n > 0 ? (size_t)n : 0;
	}
	r->n_attrs = s->n_attrs;
	r->dropped = s->dropped_attrs;
	pthread_mutex_unlock(&g_mu);
}

/* The n-th CLOSE record, or NULL. */
static inline struct rec *closed(unsigned nth)
{
	for (unsigned i = 0; i < g_nrec; i++)
		if (g_rec[i].type == FERRY_TRACE_EV_CLOSE && nth-- == 0)
			return &g_rec[i];
	return NULL;
}

static inline unsigned n_closed(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g_nrec; i++)
		n += g_rec[i].type == FERRY_TRACE_EV_CLOSE;
	return n;
}

/* The CLOSE record of the span with id @id. */
static inline struct rec *closed_id(const uint8_t id[8])
{
	for (unsigned i = 0; i < g_nrec; i++)
		if (g_rec[i].type == FERRY_TRACE_EV_CLOSE &&
		    memcmp(g_rec[i].info.span_id, id, 8) == 0)
			return &g_rec[i];
	return NULL;
}

/* A tracer and one ring of it: sample @rate, @ring_bytes (0: default),
 * export to @path (NULL: none), and, with @trust, taking a server span's
 * sampled flag and tracestate from its peer (ignore_remote_sampling
 * false).  mk() is the default: a server samples on its own. */
static inline struct ferry_tracer *mk_with(double rate, uint32_t ring_bytes,
					   const char *path, bool trust,
					   struct ferry_trace_ring **r)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;

	g_nrec = 0;
	ferry_tracer_config_init(&c);
	c.ignore_remote_sampling = !trust;
	c.sample_rate = rate;
	c.on_event = on_event;
	c.export_path = path;
	if (ring_bytes)
		c.ring_bytes = ring_bytes;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, r), 0);
	return t;
}

static inline struct ferry_tracer *mk(double rate, uint32_t ring_bytes,
				      const char *path,
				      struct ferry_trace_ring **r)
{
	return mk_with(rate, ring_bytes, path, false, r);
}

static inline uint32_t ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static inline ferry_span_t client_open(struct ferry_trace_ring *r,
				       const char *tp)
{
	struct ferry_span_session_args a = {
		.kind = FERRY_SPAN_KIND_CLIENT,
		.traceparent = tp,
		.traceparent_len = tp ? strlen(tp) : 0,
		.peer_ip = ip("10.0.0.2"),
		.peer_port = 31850,
		.server_ip = ip("10.0.0.2"),
		.server_port = 31850,
	};

	return ferry_span_session_open(r, &a);
}

static inline ferry_span_t server_open(struct ferry_trace_ring *r,
				       const char *tp, const char *ts)
{
	struct ferry_span_session_args a = {
		.kind = FERRY_SPAN_KIND_SERVER,
		.traceparent = tp,
		.traceparent_len = tp ? strlen(tp) : 0,
		.tracestate = ts,
		.tracestate_len = ts ? strlen(ts) : 0,
		.peer_ip = ip("10.0.0.1"),
		.peer_port = 40000,
		.server_port = 31850,
	};

	return ferry_span_session_open(r, &a);
}

#endif /* FERRY_TESTS_TRACE_UTIL_H */
