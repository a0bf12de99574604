/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - the Prometheus text exposition (format 0.0.4) of a set of
 * endpoints and a tracer, and the set itself (ferry/metrics.h).  The
 * counters come from each endpoint's published snapshot
 * (transport/stats.h: a sequence lock the endpoint's thread refreshes every
 * 10 ms), so writing never touches an endpoint's thread.  The HTTP server
 * that serves this text is control/metrics_http.c.
 *
 * The names are made from the counters' list, so a counter added to
 * FERRY_EP_STATS is exported with nothing to do here, unless it counts
 * bytes without saying so in its name (add it to byte_counters[]).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/endpoint.h>
#include <ferry/metrics.h>
#include <ferry/trace.h>

#include "control/metrics_internal.h"
#include "transport/stats.h"

/* Counters of bytes whose name does not say so: their metric gets the
 * unit, `_bytes_total`, as Prometheus's conventions ask. */
static const char *const byte_counters[] = {
	"payload_delivered",
	"payload_copied",
	"payload_copied_discarded",
	"payload_tx_copied",
};

/* The drop_* counters are one family with a reason label. */
#define DROP_PREFIX "drop_"
#define DROPS_HELP                                                            \
	"datagrams dropped on receive, by reason (reason=\"duplicate\": data " \
	"packets received twice)."

/* The tracer's counters (ferry_tracer_stats in ferry/trace.h). */
static const struct tracer_row {
	const char *name;
	size_t off;
	bool gauge;
	const char *help;
} tracer_rows[] = {
#define T(f, g, h) { #f, offsetof(struct ferry_tracer_stats, f), g, h }
	T(events, false, "trace events processed"),
	T(events_dropped, false, "trace events lost: the ring was full"),
	T(spans_dropped, false,
	  "spans dropped: ring full, no free slot, rate limit or CPU budget"),
	T(stale, false, "trace events with a stale or unknown span handle"),
	T(unsampled, false, "call spans not sampled"),
	T(traceparent_malformed, false,
	  "malformed traceparents received: a new trace was started"),
	T(tracestate_malformed, false, "malformed tracestates dropped"),
	T(tracestate_truncated, false, "tracestates cut to fit"),
	T(spans_exported, false, "closed spans exported"),
	T(forced_closes, false, "spans closed by a shutdown"),
	T(export_errors, false, "spans lost to a failed export write"),
	T(open_spans, true, "spans open now"),
	T(export_rotations, false, "export files rotated"),
	T(spans_started, false, "spans to record, and opens refused"),
	T(spans_dropped_full, false, "spans not opened: ring full or no free slot"),
	T(spans_dropped_rate, false, "call spans over max_spans_per_sec"),
	T(spans_dropped_budget, false,
	  "spans dropped: the drain thread was over its CPU budget"),
	T(otlp_spans_sent, false, "spans the OTLP/HTTP collector accepted"),
	T(otlp_spans_dropped, false,
	  "spans lost on the way to the OTLP/HTTP collector"),
	T(otlp_spans_queued, true, "spans queued for the OTLP/HTTP collector"),
	T(otlp_requests, false, "OTLP/HTTP requests made, retries included"),
	T(otlp_retries, false, "OTLP/HTTP requests that were retries"),
	T(otlp_failures, false, "OTLP/HTTP requests with no answer or not 2xx"),
#undef T
};

/* --- output into the caller's buffer, counting what did not fit --------- */

struct out {
	char *buf;
	size_t cap;
	size_t len; /* what the whole text needs, fitting or not */
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (o->len < o->cap)
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	else
		n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void put_c(struct out *o, char c)
{
	if (o->len + 1 < o->cap) {
		o->buf[o->len] = c;
		o->buf[o->len + 1] = '\0';
	}
	o->len++;
}

/* A label value: backslash, double quote and line feed escaped (the text
 * format's rules); @help: a HELP text, where only \ and \n are. */
static void put_escaped(struct out *o, const char *s, bool help)
{
	for (; *s; s++) {
		if (*s == '\\') {
			put(o, "\\\\");
		} else if (*s == '\n') {
			put(o, "\\n");
		} else if (*s == '"' && !help) {
			put(o, "\\\"");
		} else {
			put_c(o, *s);
		}
	}
}

static void put_family(struct out *o, const char *metric, const char *help,
		       const char *type)
{
	put(o, "# HELP %s ", metric);
	put_escaped(o, help, true);
	put(o, "\n# TYPE %s %s\n", metric, type);
}

static void put_labels(struct out *o, const struct ferry__metrics_ep *e)
{
	put(o, "{endpoint=\"");
	put_escaped(o, e->name, false);
	put(o, "\",dataplane=\"");
	put_escaped(o, ferry__endpoint_dp_name(e->ep), false);
	put_c(o, '"');
}

/* --- the families -------------------------------------------------------- */

static bool is_bytes(const char *name)
{
	for (size_t i = 0; i < sizeof(byte_counters) / sizeof(*byte_counters);
	     i++)
		if (strcmp(name, byte_counters[i]) == 0)
			return true;
	return false;
}

static uint64_t stat_of(const struct ferry_ep_stats *st, unsigned i)
{
	uint64_t v = 0;

	ferry__ep_stat_get(st, i, NULL, NULL, &v);
	return v;
}

/* One family per counter but the drops, in the list's order. */
static void put_counters(struct out *o, const struct ferry_metrics *m,
			 const struct ferry_ep_stats *st)
{
	const char *name, *help;
	char metric[128];

	for (unsigned i = 0; ferry__ep_stat_get(st, i, &name, &help, NULL) == 0;
	     i++) {
		if (strncmp(name, DROP_PREFIX, strlen(DROP_PREFIX)) == 0)
			continue;
		snprintf(metric, sizeof(metric), "ferry_%s%s_total", name,
			 is_bytes(name) ? "_bytes" : "");
		put_family(o, metric, help, "counter");
		for (unsigned k = 0; k < m->neps; k++) {
			put(o, "%s", metric);
			put_labels(o, &m->eps[k]);
			put(o, "} %llu\n",
			    (unsigned long long)stat_of(&st[k], i));
		}
	}
}

static void put_drops(struct out *o, const struct ferry_metrics *m,
		      const struct ferry_ep_stats *st)
{
	const size_t plen = strlen(DROP_PREFIX);
	const char *name;

	put_family(o, "ferry_drops_total", DROPS_HELP, "counter");
	for (unsigned k = 0; k < m->neps; k++) {
		for (unsigned i = 0;
		     ferry__ep_stat_get(st, i, &name, NULL, NULL) == 0; i++) {
			if (strncmp(name, DROP_PREFIX, plen) != 0)
				continue;
			put(o, "ferry_drops_total");
			put_labels(o, &m->eps[k]);
			put(o, ",reason=\"%s\"} %llu\n", name + plen,
			    (unsigned long long)stat_of(&st[k], i));
		}
	}
}

/* Gauges: what is not monotonic, derived from the counters. */
static void put_gauges(struct out *o, const struct ferry_metrics *m,
		       const struct ferry_ep_stats *st)
{
	put_family(o, "ferry_sessions_open",
		   "sessions open now (opened less ended)", "gauge");
	for (unsigned k = 0; k < m->neps; k++) {
		put(o, "ferry_sessions_open");
		put_labels(o, &m->eps[k]);
		put(o, "} %llu\n", (unsigned long long)(st[k].sessions_opened -
							st[k].sessions_closed));
	}
}

static void put_tracer(struct out *o, struct ferry_tracer *t)
{
	struct ferry_tracer_stats ts;
	char metric[128];

	ferry_tracer_stats(t, &ts);
	for (size_t i = 0; i < sizeof(tracer_rows) / sizeof(*tracer_rows); i++) {
		const struct tracer_row *r = &tracer_rows[i];
		uint64_t v;

		memcpy(&v, (const char *)&ts + r->off, sizeof(v));
		snprintf(metric, sizeof(metric), "ferry_tracer_%s%s", r->name,
			 r->gauge ? "" : "_total");
		put_family(o, metric, r->help, r->gauge ? "gauge" : "counter");
		put(o, "%s %llu\n", metric, (unsigned long long)v);
	}
}

int ferry_metrics_write(struct ferry_metrics *m, char *buf, size_t cap,
			size_t *len)
{
	struct out o = { buf, cap, 0 };
	struct ferry_ep_stats *st = NULL;
	int ret = 0;

	if (!m || !len || (cap && !buf))
		return -EINVAL;
	if (cap)
		buf[0] = '\0';
	pthread_mutex_lock(&m->lock);
	if (m->neps) {
		/* One snapshot per endpoint, so that every family of an
		 * endpoint shows the same moment. */
		st = calloc(m->neps, sizeof(*st));
		if (!st) {
			ret = -ENOMEM;
			goto out;
		}
		for (unsigned k = 0; k < m->neps && ret == 0; k++)
			ret = ferry__endpoint_stats_read(m->eps[k].ep, &st[k]);
		if (ret < 0)
			goto out;
		put_counters(&o, m, st);
		put_drops(&o, m, st);
		put_gauges(&o, m, st);
	}
	if (m->tracer)
		put_tracer(&o, m->tracer);
	*len = o.len;
	if (o.len >= cap)
		ret = -ENOSPC;
out:
	pthread_mutex_unlock(&m->lock);
	free(st);
	return ret;
}

/* --- the set of sources -------------------------------------------------- */

int ferry_metrics_create(struct ferry_metrics **out)
{
	struct ferry_metrics *m;

	if (!out)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->srv_lock, NULL);
	*out = m;
	return 0;
}

static int find_ep(const struct ferry_metrics *m,
		   const struct ferry_endpoint *ep)
{
	for (unsigned k = 0; k < m->neps; k++)
		if (m->eps[k].ep == ep)
			return (int)k;
	return -1;
}

int ferry_metrics_add_endpoint(struct ferry_metrics *m,
			       struct ferry_endpoint *ep, const char *name)
{
	struct ferry__metrics_ep e = { .ep = ep };
	int ret = 0;

	if (!m || !ep || (name && strlen(name) > FERRY__METRICS_NAME_MAX))
		return -EINVAL;
	if (name)
		strcpy(e.name, name);
	else
		snprintf(e.name, sizeof(e.name), "%u",
			 (unsigned)ferry_endpoint_port(ep));
	pthread_mutex_lock(&m->lock);
	if (find_ep(m, ep) >= 0) {
		ret = -EEXIST;
	} else if (m->neps == m->cap) {
		unsigned cap = m->cap ? 2 * m->cap : 4;
		struct ferry__metrics_ep *n =
			realloc(m->eps, cap * sizeof(*n));

		if (!n)
			ret = -ENOMEM;
		else {
			m->eps = n;
			m->cap = cap;
		}
	}
	if (ret == 0)
		m->eps[m->neps++] = e;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int ferry_metrics_remove_endpoint(struct ferry_metrics *m,
				  struct ferry_endpoint *ep)
{
	int k;

	if (!m || !ep)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	k = find_ep(m, ep);
	if (k >= 0) {
		/* Keep the order: the series keep theirs. */
		memmove(&m->eps[k], &m->eps[k + 1],
			(m->neps - (unsigned)k - 1) * sizeof(*m->eps));
		m->neps--;
	}
	pthread_mutex_unlock(&m->lock);
	return k >= 0 ? 0 : -ENOENT;
}

int ferry_metrics_set_tracer(struct ferry_metrics *m, struct ferry_tracer *t)
{
	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->tracer = t;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void ferry_metrics_stop(struct ferry_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->srv_lock);
	ferry__metrics_srv_stop(m);
	pthread_mutex_unlock(&m->srv_lock);
}

void ferry_metrics_destroy(struct ferry_metrics *m)
{
	if (!m)
		return;
	ferry_metrics_stop(m);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->srv_lock);
	free(m->eps);
	free(m);
}
