/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c - the Prometheus text writer (control/metrics.c,
 * ferry/metrics.h) and the snapshot it reads (transport/stats.c): the
 * format (HELP, then TYPE, then the family's samples, each family once),
 * label escaping, every counter present once per endpoint under the name
 * the conventions give it, values equal to ferry_endpoint_stat()'s once
 * published and not before, the tracer's counters, the set's add and
 * remove, and -ENOSPC with the size needed.  The HTTP server is
 * tests/metrics_check.py's (through ferry-bench --metrics).
 *
 * The test parses the text with its own strict reader, so that what it
 * checks does not lean on the writer's idea of the format.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/metrics.h>
#include <ferry/trace.h>

#include "harness.h"

#define M_ECHO 1
#define TEXT_MAX (256u << 10)
#define SAMPLES_MAX 1024

struct sample {
	char metric[96];
	char ep[128];      /* the endpoint label, unescaped */
	char dp[16];
	char reason[32];
	bool has_ep;
	uint64_t v;
};

static struct sample samples[SAMPLES_MAX];
static unsigned nsamples;

/* A label value after its opening quote: unescape into @out, return what
 * follows the closing quote. */
static const char *label_value(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	for (; *p != '"'; p++) {
		char c = *p;

		cr_assert(c != '\0' && c != '\n', "unterminated label value");
		if (c == '\\') {
			p++;
			cr_assert(*p == '\\' || *p == '"' || *p == 'n',
				  "bad escape \\%c in a label value", *p);
			c = *p == 'n' ? '\n' : *p;
		}
		cr_assert_lt(n + 1, cap);
		out[n++] = c;
	}
	out[n] = '\0';
	return p + 1;
}

static bool name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     c == '_' || c == ':';

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return n > 0;
}

/* One sample line of family @fam. */
static void parse_sample(const char *line, const char *fam)
{
	struct sample *s = &samples[nsamples++];
	const char *p = line;
	char *end;

	cr_assert_lt(nsamples, SAMPLES_MAX);
	memset(s, 0, sizeof(*s));
	while (*p && *p != '{' && *p != ' ')
		p++;
	cr_assert(name_ok(line, (size_t)(p - line)), "bad name: %s", line);
	memcpy(s->metric, line, (size_t)(p - line));
	cr_assert_str_eq(s->metric, fam, "sample outside its family: %s", line);
	if (*p == '{') {
		p++;
		while (*p != '}') {
			const char *k = p;
			char val[128];

			while (*p && *p != '=')
				p++;
			cr_assert(name_ok(k, (size_t)(p - k)) && p[1] == '"',
				  "bad label in %s", line);
			p = label_value(p + 2, val, sizeof(val));
			if (strncmp(k, "endpoint=", 9) == 0) {
				strcpy(s->ep, val);
				s->has_ep = true;
			} else if (strncmp(k, "dataplane=", 10) == 0) {
				strcpy(s->dp, val);
			} else if (strncmp(k, "reason=", 7) == 0) {
				strcpy(s->reason, val);
			} else {
				cr_assert_fail("unexpected label in %s", line);
			}
			if (*p == ',')
				p++;
			else
				cr_assert_eq(*p, '}', "bad label list: %s", line);
		}
		p++;
	}
	cr_assert_eq(*p, ' ', "no value: %s", line);
	s->v = strtoull(p + 1, &end, 10);
	cr_assert(end > p + 1 && *end == '\0', "bad value: %s", line);
}

/* Parse @text strictly: "# HELP f ...", then "# TYPE f counter|gauge",
 * then f's samples; every family once; the text ends with a newline. */
static void parse(char *text)
{
	static char fams[256][96];
	unsigned nfams = 0;
	char fam[96] = "";
	bool typed = false;
	size_t len = strlen(text);

	nsamples = 0;
	cr_assert(len > 0 && text[len - 1] == '\n', "text ends without \\n");
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			char *sp = strchr(line + 7, ' ');

			cr_assert(sp && sp[1], "HELP without text: %s", line);
			*sp = '\0';
			cr_assert(name_ok(line + 7, strlen(line + 7)));
			for (unsigned i = 0; i < nfams; i++)
				cr_assert_str_neq(fams[i], line + 7,
						  "family %s twice", line + 7);
			cr_assert_lt(nfams, 256);
			strcpy(fams[nfams++], line + 7);
			strcpy(fam, line + 7);
			typed = false;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			size_t n = strlen(fam);

			cr_assert(!typed && strncmp(line + 7, fam, n) == 0 &&
					  line[7 + n] == ' ',
				  "TYPE not after its HELP: %s", line);
			cr_assert(strcmp(line + 8 + n, "counter") == 0 ||
					  strcmp(line + 8 + n, "gauge") == 0,
				  "bad type: %s", line);
			if (strcmp(line + 8 + n, "counter") == 0) {
				cr_assert(n > 6 &&
					  strcmp(fam + n - 6, "_total") == 0,
					  "counter %s without _total", fam);
			}
			typed = true;
		} else {
			cr_assert(line[0] != '#', "stray comment: %s", line);
			cr_assert(typed, "sample before TYPE: %s", line);
			parse_sample(line, fam);
		}
	}
}

/* The metric and reason label a counter is exported as: the spec the
 * writer must follow (docs/api.md, "Metrics"). */
static void expected_name(const char *name, char *metric, size_t cap,
			  const char **reason)
{
	static const char *const bytes[] = { "payload_delivered",
					     "payload_copied",
					     "payload_copied_discarded",
					     "payload_tx_copied" };
	bool b = false;

	*reason = NULL;
	if (strncmp(name, "drop_", 5) == 0) {
		snprintf(metric, cap, "ferry_drops_total");
		*reason = name + 5;
		return;
	}
	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++)
		b = b || strcmp(name, bytes[i]) == 0;
	snprintf(metric, cap, "ferry_%s%s_total", name, b ? "_bytes" : "");
}

static const struct sample *find(const char *metric, const char *ep,
				 const char *reason, unsigned *count)
{
	const struct sample *hit = NULL;

	*count = 0;
	for (unsigned i = 0; i < nsamples; i++) {
		const struct sample *s = &samples[i];

		if (strcmp(s->metric, metric) != 0 ||
		    (ep && strcmp(s->ep, ep) != 0) ||
		    strcmp(s->reason, reason ? reason : "") != 0)
			continue;
		(*count)++;
		hit = s;
	}
	return hit;
}

static char *write_all(struct ferry_metrics *m)
{
	char *text = malloc(TEXT_MAX);
	size_t len = 0;

	cr_assert(text);
	cr_assert_eq(ferry_metrics_write(m, text, TEXT_MAX, &len), 0);
	cr_assert_eq(strlen(text), len);
	return text;
}

/* Every counter of @ep, once, under its name, with ferry_endpoint_stat's
 * value (or, with @stale, the given snapshot's). */
static void check_endpoint(struct ferry_endpoint *ep, const char *label)
{
	const char *name, *help, *reason;
	uint64_t v, live;
	char metric[128];

	for (unsigned i = 0;
	     ferry_endpoint_stat_at(ep, i, &name, &help, &v) == 0; i++) {
		const struct sample *s;
		unsigned n;

		expected_name(name, metric, sizeof(metric), &reason);
		s = find(metric, label, reason, &n);
		cr_assert_eq(n, 1, "%s (%s) for endpoint %s: %u samples",
			     metric, name, label, n);
		cr_assert_eq(ferry_endpoint_stat(ep, name, &live), 0);
		cr_assert_eq(s->v, live, "%s: %llu exported, %llu counted",
			     name, (unsigned long long)s->v,
			     (unsigned long long)live);
		cr_assert_str_eq(s->dp, dp_name);
		/* A counter of bytes says so in its name. */
		if (strstr(help, "bytes"))
			cr_assert(strstr(metric, "_bytes_total"),
				  "%s counts bytes: %s", name, metric);
	}
}

/* A client and a server with @ncalls echoed calls between them. */
static void traffic(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		    int ncalls)
{
	struct ferry_session *s;

	ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL);
	s = open_session(cli, srv);
	for (int i = 0; i < ncalls; i++) {
		struct reply r = { .seed = (uint32_t)i };

		cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 100, (uint32_t)i),
					on_reply, &r), 0);
		cr_assert(pump_replies(cli, srv, &r, 1));
		cr_assert_eq(r.res, 0);
	}
}

static void t_every_counter_matches(void)
{
	struct ferry_endpoint *cli = ep_new(NULL), *srv = ep_new(NULL);
	struct ferry_metrics *m;
	char *text;
	unsigned n;

	cr_assert_eq(ferry_metrics_create(&m), 0);
	cr_assert_eq(ferry_metrics_add_endpoint(m, cli, "client"), 0);
	cr_assert_eq(ferry_metrics_add_endpoint(m, srv, NULL), 0);
	traffic(cli, srv, 5);
	ferry__endpoint_stats_publish(cli);
	ferry__endpoint_stats_publish(srv);
	text = write_all(m);
	parse(text);
	check_endpoint(cli, "client");
	{
		char port[16];

		snprintf(port, sizeof(port), "%u",
			 (unsigned)ferry_endpoint_port(srv));
		check_endpoint(srv, port);
	}
	/* The traffic shows, and the gauge is opened less closed. */
	cr_assert_eq(find("ferry_calls_completed_total", "client", NULL, &n)->v,
		     5);
	cr_assert_eq(find("ferry_sessions_open", "client", NULL, &n)->v, 1);
	cr_assert_eq(n, 1);
	/* No tracer, no tracer families. */
	cr_assert_null(find("ferry_tracer_events_total", NULL, NULL, &n));
	free(text);
	ferry_metrics_destroy(m);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* The writer reads the published snapshot: what happened since is not in
 * it until the endpoint's poll loop publishes again. */
static void t_reads_the_snapshot(void)
{
	struct ferry_endpoint *cli = ep_new(NULL), *srv = ep_new(NULL);
	struct ferry_metrics *m;
	uint64_t live;
	char *text;
	unsigned n;

	cr_assert_eq(ferry_metrics_create(&m), 0);
	cr_assert_eq(ferry_metrics_add_endpoint(m, cli, "c"), 0);
	ferry__endpoint_stats_publish(cli);
	traffic(cli, srv, 3);
	cr_assert_eq(ferry_endpoint_stat(cli, "calls_completed", &live), 0);
	cr_assert_eq(live, 3);
	/* Publish by hand, then call again without polling past a tick. */
	ferry__endpoint_stats_publish(cli);
	text = write_all(m);
	parse(text);
	free(text);
	cr_assert_eq(find("ferry_calls_completed_total", "c", NULL, &n)->v, 3);
	/* The poll loop publishes on its own within a few ticks. */
	traffic(cli, srv, 2);
	{
		uint64_t end = now_ms() + WAIT_MS;
		uint64_t seen = 0;

		while (seen != 5 && now_ms() < end) {
			pump_once(cli, srv);
			text = write_all(m);
			parse(text);
			free(text);
			seen = find("ferry_calls_completed_total", "c", NULL,
				    &n)->v;
		}
		cr_assert_eq(seen, 5, "the poll loop never published");
	}
	ferry_metrics_destroy(m);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

static void t_labels_escaped(void)
{
	static const char label[] = "a\"b\\c\nd";
	struct ferry_endpoint *ep = ep_new(NULL);
	struct ferry_metrics *m;
	char *text;
	unsigned n;

	cr_assert_eq(ferry_metrics_create(&m), 0);
	cr_assert_eq(ferry_metrics_add_endpoint(m, ep, label), 0);
	text = write_all(m);
	cr_assert(strstr(text, "endpoint=\"a\\\"b\\\\c\\nd\""),
		  "label not escaped");
	parse(text);
	cr_assert_not_null(find("ferry_rx_pkts_total", label, NULL, &n));
	cr_assert_eq(n, 1);
	free(text);
	ferry_metrics_destroy(m);
	ferry_endpoint_destroy(ep);
}

static void t_set_add_remove(void)
{
	struct ferry_endpoint *a = ep_new(NULL), *b = ep_new(NULL);
	char longname[80];
	struct ferry_metrics *m;
	char *text;
	unsigned n;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(ferry_metrics_create(&m), 0);
	cr_assert_eq(ferry_metrics_add_endpoint(m, a, "a"), 0);
	cr_assert_eq(ferry_metrics_add_endpoint(m, a, "again"), -EEXIST);
	cr_assert_eq(ferry_metrics_add_endpoint(m, b, longname), -EINVAL);
	cr_assert_eq(ferry_metrics_add_endpoint(m, b, "b"), 0);
	cr_assert_eq(ferry_metrics_remove_endpoint(m, a), 0);
	cr_assert_eq(ferry_metrics_remove_endpoint(m, a), -ENOENT);
	text = write_all(m);
	parse(text);
	free(text);
	cr_assert_null(find("ferry_rx_pkts_total", "a", NULL, &n));
	cr_assert_not_null(find("ferry_rx_pkts_total", "b", NULL, &n));
	/* An empty set writes an empty text. */
	cr_assert_eq(ferry_metrics_remove_endpoint(m, b), 0);
	{
		char buf[4] = "zz";
		size_t len = 99;

		cr_assert_eq(ferry_metrics_write(m, buf, sizeof(buf), &len),
			     0);
		cr_assert_eq(len, 0);
		cr_assert_str_eq(buf, "");
	}
	ferry_metrics_destroy(m);
	ferry_endpoint_destroy(a);
	ferry_endpoint_destroy(b);
}

static void t_too_small(void)
{
	struct ferry_endpoint *ep = ep_new(NULL);
	struct ferry_metrics *m;
	size_t need = 0, len = 0;
	char small[100], *buf;

	cr_assert_eq(ferry_metrics_create(&m), 0);
	cr_assert_eq(ferry_metrics_add_endpoint(m, ep, NULL), 0);
	cr_assert_eq(ferry_metrics_write(m, small, sizeof(small), &need),
		     -ENOSPC);
	cr_assert_gt(need, sizeof(small));
	cr_assert_eq(strlen(small), sizeof(small) - 1, "not NUL-terminated");
	/* Exactly the length is one byte short: the NUL. */
	buf = malloc(need + 1);
	cr_assert_eq(ferry_metrics_write(m, buf, need, &len), -ENOSPC);
	cr_assert_eq(ferry_metrics_write(m, buf, need + 1, &len), 0);
	cr_assert_eq(len, need);
	cr_assert_eq(strlen(buf), need);
	cr_assert_eq(ferry_metrics_write(NULL, buf, need + 1, &len), -EINVAL);
	cr_assert_eq(ferry_metrics_write(m, NULL, 10, &len), -EINVAL);
	free(buf);
	ferry_metrics_destroy(m);
	ferry_endpoint_destroy(ep);
}

static void t_tracer_counters(void)
{
	struct ferry_endpoint *cli = ep_new(NULL), *srv = ep_new(NULL);
	struct ferry_tracer_config tc;
	struct ferry_tracer_stats ts;
	struct ferry_tracer *t;
	struct ferry_metrics *m;
	char *text;
	unsigned n;

	ferry_tracer_config_init(&tc);
	cr_assert_eq(ferry_tracer_create(&tc, &t), 0);
	cr_assert_eq(ferry_endpoint_set_tracer(cli, t), 0);
	cr_assert_eq(ferry_metrics_create(&m), 0);
	cr_assert_eq(ferry_metrics_set_tracer(m, t), 0);
	traffic(cli, srv, 2);
	ferry_tracer_drain(t);
	ferry_tracer_stats(t, &ts);
	cr_assert_gt(ts.events, 0);
	text = write_all(m);
	parse(text);
	free(text);
	cr_assert_eq(find("ferry_tracer_events_total", NULL, NULL, &n)->v,
		     ts.events);
	cr_assert_eq(n, 1);
	cr_assert_eq(find("ferry_tracer_open_spans", NULL, NULL, &n)->v,
		     ts.open_spans);
	cr_assert_eq(find("ferry_tracer_spans_exported_total", NULL, NULL,
			  &n)->v, ts.spans_exported);
	ferry_metrics_destroy(m);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	ferry_tracer_destroy(t);
}

#define METRICS_CASES(X, suite)                                                \
	X(suite, every_counter_matches)                                        \
	X(suite, reads_the_snapshot)                                           \
	X(suite, labels_escaped)                                               \
	X(suite, set_add_remove)                                               \
	X(suite, too_small)                                                    \
	X(suite, tracer_counters)

HARNESS_BATTERY(metrics, METRICS_CASES, .timeout = 60)
