/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench's report: the counter table made from BENCH_COUNTERS
 * (bench.h), the sums over the workers, the progress line, the text
 * summary and the JSON one.  A counter's row says how it is summed and
 * where it shows; the lines that are prose about several counters (the
 * rates, admission, the deferred issuer) are written here by name.
 */
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "bench.h"

extern char **environ;

enum side { SIDE_RUN, SIDE_ALL, SIDE_MAX, SIDE_SERVER, SIDE_CLIENT };

/* What a group of counters is: a line of the text summary and a set of
 * JSON members, or (NONE) neither. */
enum group {
	GRP_NONE, GRP_CALLS, GRP_DATA, GRP_ZC, GRP_GSO, GRP_WIRE, GRP_DROPS, GRP_VERIFY,
	GRP_FAULTS, GRP_CAPS, GRP_IOU_SERVER, GRP_IOU_CLIENT, GRP_TRACE,
};

struct counter {
	const char *name;
	bool ep;           /* an endpoint counter, at @off in its stats */
	size_t off;
	enum side side;
	enum group group;
	const char *label; /* in the text line; NULL: the name */
	const char *sep;   /* before it in the text line; NULL: ", " */
	bool text_only;
};

#define LIVE .ep = false
/* The one place the bench names endpoint counters: when stats are read by
 * name, this becomes the name. */
#define EP(field) .ep = true, .off = offsetof(struct ferry_ep_stats, field)

static const struct counter counters[BENCH_NCTR] = {
#define ROW(id, nm, src, sd, grp, ...)                                      \
	[BC_##id] = { .name = nm, src, .side = SIDE_##sd,                   \
		      .group = GRP_##grp, __VA_ARGS__ },
	BENCH_COUNTERS(ROW)
#undef ROW
};

void bench_publish(struct bench_worker *w, const struct ferry_ep_stats *st)
{
	for (int i = 0; i < BENCH_NCTR; i++) {
		uint64_t v;

		if (!counters[i].ep)
			continue;
		memcpy(&v, (const char *)st + counters[i].off, sizeof(v));
		atomic_store_explicit(&w->ctr[i], v, memory_order_relaxed);
	}
}

/* The workers' counters, summed per side. */
struct sums {
	uint64_t v[2][BENCH_NCTR]; /* [0] servers, [1] clients */
	bool run_server, run_client;
};

static void sum(struct sums *s, const struct bench_opts *o,
		struct bench_worker *ws, int nw)
{
	memset(s, 0, sizeof(*s));
	s->run_server = strcmp(o->mode, "client") != 0;
	s->run_client = strcmp(o->mode, "server") != 0;
	for (int k = 0; k < nw; k++)
		for (int i = 0; i < BENCH_NCTR; i++)
			s->v[!ws[k].server][i] += atomic_load_explicit(
				&ws[k].ctr[i], memory_order_relaxed);
}

static uint64_t val_side(const struct sums *s, enum bench_ctr c,
			 enum side side)
{
	uint64_t sv = s->v[0][c], cl = s->v[1][c];

	switch (side) {
	case SIDE_RUN:
		return s->run_client ? cl : sv;
	case SIDE_ALL:
		return sv + cl;
	case SIDE_MAX:
		return sv > cl ? sv : cl;
	case SIDE_SERVER:
		return sv;
	case SIDE_CLIENT:
		return cl;
	}
	return 0;
}

/* Counter @c as its row says it is shown. */
static uint64_t val(const struct sums *s, enum bench_ctr c)
{
	return val_side(s, c, counters[c].side);
}

static uint64_t group_sum(const struct sums *s, enum group g)
{
	uint64_t t = 0;

	for (int i = 0; i < BENCH_NCTR; i++)
		if (counters[i].group == g)
			t += val(s, (enum bench_ctr)i);
	return t;
}

/* A group's text: "label value" for each counter, without a newline. */
static void text_group(const struct sums *s, enum group g)
{
	bool first = true;

	for (int i = 0; i < BENCH_NCTR; i++) {
		const struct counter *c = &counters[i];

		if (c->group != g)
			continue;
		printf("%s%s %llu", first ? "" : c->sep ? c->sep : ", ",
		       c->label ? c->label : c->name,
		       (unsigned long long)val(s, (enum bench_ctr)i));
		first = false;
	}
}

/* --- the progress line and the timeline ---------------------------------- */

/* Append a sample of @dt seconds to the timeline, growing it by half as
 * needed; out of memory, the timeline ends here and says so. */
static void record_sample(struct bench_progress *p, uint64_t now, double rps,
			  double gbps, double dt)
{
	double t = (double)(now - p->t0_ns) / 1e9;

	if (dt < (double)BENCH_SAMPLE_NS / 2e9 && p->n > 0) {
		/* The last interval, cut short by the end of the run, is
		 * too short for a rate: it is folded into the one before. */
		struct bench_sample *sm = &p->samples[p->n - 1];
		double pdt = sm->t_s - (p->n > 1 ? sm[-1].t_s : 0);

		sm->rps = (sm->rps * pdt + rps * dt) / (pdt + dt);
		sm->gbps = (sm->gbps * pdt + gbps * dt) / (pdt + dt);
		sm->t_s = t;
		return;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap + p->cap / 2 : 64;
		struct bench_sample *ns =
			realloc(p->samples, cap * sizeof(*ns));

		if (!ns) {
			p->record = false;
			p->complete = false;
			return;
		}
		p->samples = ns;
		p->cap = cap;
	}
	p->samples[p->n++] = (struct bench_sample){ t, rps, gbps };
}


void bench_progress(struct bench_progress *p, const struct bench_opts *o,
		    struct bench_worker *ws, int nw, uint64_t now, bool print)
{
	struct sums s;
	uint64_t completed, bytes;
	double dt = (double)(now - p->t_ns) / 1e9;
	char ious[128] = "";

	sum(&s, o, ws, nw);
	completed = val(&s, BC_COMPLETED);
	bytes = val(&s, BC_BYTES);
	/* The IOU counters: the server's table when this process runs a
	 * server, else the client's promises; "" while there are none. */
	if (o->keyring && s.run_server && val(&s, BC_IOU_CREATED))
		snprintf(ious, sizeof(ious),
			 "  IOUs created %llu resolved %llu rejected %llu",
			 (unsigned long long)val(&s, BC_IOU_CREATED),
			 (unsigned long long)val(&s, BC_IOU_RESOLVED),
			 (unsigned long long)val(&s, BC_IOU_REJECTED));
	else if (o->keyring && !s.run_server && val(&s, BC_IOUS_PROMISED))
		snprintf(ious, sizeof(ious),
			 "  IOUs promised %llu pushed %llu dropped %llu "
			 "(client)",
			 (unsigned long long)val(&s, BC_IOUS_PROMISED),
			 (unsigned long long)val(&s, BC_IOUS_PUSHED),
			 (unsigned long long)val(&s, BC_IOUS_DROPPED));
	if (print)
		fprintf(stderr,
			"[%3ds] %10.0f req/s %8.3f Gbit/s  errors %llu%s\n",
			++p->second, (double)(completed - p->completed) / dt,
			(double)(bytes - p->bytes) * 8 / dt / 1e9,
			(unsigned long long)val(&s, BC_ERRORS), ious);
	if (p->record && dt > 0)
		record_sample(p, now, (double)(completed - p->completed) / dt,
			      (double)(bytes - p->bytes) * 8 / dt / 1e9, dt);
	p->completed = completed;
	p->bytes = bytes;
	p->t_ns = now;
}

/* --- the summary ---------------------------------------------------------- */

struct report {
	const struct bench_opts *o;
	struct sums s;
	const struct bench_issuer_stats *ist;
	const struct bench_progress *timeline;
	struct bench_hist hist;
	double secs, rps, gbps, cpb;
	double cpu_server, cpu_client;
	/* The process's peak resident memory (VmHWM), and that per session
	 * and endpoint: a loop holds both ends of every session. */
	uint64_t rss_kb;
	double rss_per_sess_kb;
};

/* The process's peak resident set in KiB (/proc/self/status VmHWM), or 0
 * where there is none. */
static uint64_t rss_peak_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	unsigned long long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

/* Admission, deferred tokens and the IOUs, in the text summary. */
static void text_tokens(const struct report *r)
{
	const struct bench_opts *o = r->o;
	const struct bench_issuer_stats *ist = r->ist;
	const struct sums *s = &r->s;
	uint64_t table = val(s, BC_TABLE_CALLS);
	uint64_t dfr = val(s, BC_DEFERRED_CALLS);

	if (o->keyring && s->run_client)
		printf("admission: channel token presented; %u token(s) "
		       "per call\n", o->caps);
	if (o->keyring && s->run_server)
		printf("admission: channel tokens required; %llu call "
		       "token(s) redeemed (warm-up included)\n",
		       (unsigned long long)val(s, BC_CAPS_REDEEMED));
	if (o->deferred > 0)
		printf("deferred: %llu of %llu calls made carried IOUs "
		       "(%.3f), each token issued after 0..%u us; "
		       "issuer (%s): %llu issued, %llu completed (%llu "
		       "cancelled), late by %.1f us mean, %.1f us max\n",
		       (unsigned long long)dfr, (unsigned long long)table,
		       table ? (double)dfr / (double)table : 0.0,
		       o->deferred_delay_us,
		       o->issuer_thread ? "its own thread"
					: "on the client threads",
		       (unsigned long long)ist->issued,
		       (unsigned long long)ist->completed,
		       (unsigned long long)ist->cancelled, ist->late_mean_us,
		       ist->late_max_us);
	if (s->run_server && o->keyring &&
	    (val(s, BC_IOU_CREATED) || o->deferred > 0)) {
		printf("IOUs (server): ");
		text_group(s, GRP_IOU_SERVER);
		printf("\n");
	}
	if (s->run_client && o->deferred > 0) {
		/* Promises taken back (ferry_iou_cancel) are neither
		 * pushed nor dropped: ferry_cap_issue() takes one back
		 * when the issuer answers before it returns (a delay
		 * near 0; the call then carries the token itself), and
		 * the client takes back a call's IOUs when it cannot
		 * make them all.  Promises cancelled when their
		 * session ends count as dropped. */
		uint64_t gone = val(s, BC_IOUS_PUSHED) +
				val(s, BC_IOUS_DROPPED);

		printf("IOUs (client): ");
		text_group(s, GRP_IOU_CLIENT);
		if (val(s, BC_IOUS_PROMISED) >= gone)
			printf("; %llu neither (taken back: answered "
			       "before their call was made, or their "
			       "call not made)",
			       (unsigned long long)(val(s, BC_IOUS_PROMISED) -
						    gone));
		printf("\n");
	}
}

/* The text summary, on stdout.  Returns 1 if the run failed, else 0. */
static int text_summary(const struct report *r)
{
	const struct bench_opts *o = r->o;
	const struct sums *s = &r->s;
	int rc = 0;

	printf("%s%s: %.0f req/s, %.3f Gbit/s over %.2f s; "
	       "%llu completed, %llu errors\n",
	       o->floor ? "floor " : "rpc ", o->mode, r->rps, r->gbps, r->secs,
	       (unsigned long long)val(s, BC_COMPLETED),
	       (unsigned long long)val(s, BC_ERRORS));
	if (s->run_client)
		printf("latency us: p50 %.2f  p99 %.2f  p99.9 %.2f  "
		       "max %.2f  mean %.2f\n",
		       us(bench_hist_percentile(&r->hist, 50)),
		       us(bench_hist_percentile(&r->hist, 99)),
		       us(bench_hist_percentile(&r->hist, 99.9)),
		       us(bench_hist_max(&r->hist)),
		       bench_hist_mean(&r->hist) / 1000.0);
	if (!o->floor && r->rss_kb)
		printf("resident: peak %.1f MiB, %.1f KiB per session and "
		       "endpoint (%u session(s)%s)\n",
		       (double)r->rss_kb / 1024, r->rss_per_sess_kb,
		       o->sessions * o->threads,
		       strcmp(o->mode, "loop") == 0 ? " x 2 ends" : "");
	if (!o->floor)
		printf("payload bytes copied per byte delivered: %.4f; "
		       "dropped frames %llu; retransmits %llu\n",
		       r->cpb, (unsigned long long)group_sum(s, GRP_DROPS),
		       (unsigned long long)val(s, BC_RETRANSMITS));
	if (!o->floor && o->cc && strcmp(o->cc, "none") != 0)
		printf("congestion control %s: %llu sends held by the window, "
		       "%llu by the pacer\n",
		       o->cc, (unsigned long long)val(s, BC_CC_STALLS),
		       (unsigned long long)val(s, BC_CC_PACED));
	if (!o->floor && group_sum(s, GRP_DROPS)) {
		/* Name the reasons: a drop is a bug or an attack. */
		printf("dropped: ");
		text_group(s, GRP_DROPS);
		printf("\n");
	}
	text_tokens(r);
	if (!o->floor && o->zc_threshold)
		printf("SEND_ZC packets %llu, %llu of them from "
		       "registered memory\n",
		       (unsigned long long)val(s, BC_TX_ZC),
		       (unsigned long long)val(s, BC_TX_ZC_FIXED));
	if (!o->floor) {
		printf("wire: ");
		text_group(s, GRP_WIRE);
		printf("\n");
	}
	if (!o->floor && !bench_is_dpdk(o)) {
		printf("uring: ");
		text_group(s, GRP_GSO);
		printf("\n");
	}
	if (o->verify) {
		/* In a loop the server's own view counts too (the side of
		 * each row). */
		printf("verify: ");
		text_group(s, GRP_VERIFY);
		printf("\n");
		if (group_sum(s, GRP_VERIFY))
			rc = 1;
	}
	if (group_sum(s, GRP_FAULTS)) {
		printf("faults injected: ");
		text_group(s, GRP_FAULTS);
		printf("\n");
	}
	if (val(s, BC_ERRORS))
		rc = 1;
	return rc;
}

/* Where a group's counters go in the JSON summary, in order: members of
 * the top-level object (obj NULL) or an object of their own, inside
 * another (in) or not; shown always, or when this process ran a server
 * (SERVER) or a client (CLIENT). */
static const struct json_view {
	enum group g;
	const char *obj, *in;
	enum side side;    /* SIDE_RUN: each counter's own */
	enum side when;    /* SIDE_ALL: always */
} json_views[] = {
	{ GRP_CALLS, NULL, NULL, SIDE_RUN, SIDE_ALL },
	{ GRP_DATA, NULL, NULL, SIDE_RUN, SIDE_ALL },
	{ GRP_GSO, "uring", NULL, SIDE_RUN, SIDE_ALL },
	/* Wire v2's frames and loss recovery: what the "wire:" line says. */
	{ GRP_WIRE, "wire", NULL, SIDE_RUN, SIDE_ALL },
	{ GRP_VERIFY, NULL, NULL, SIDE_RUN, SIDE_ALL },
	{ GRP_FAULTS, "faults", NULL, SIDE_RUN, SIDE_ALL },
	/* What "dropped" sums, by reason. */
	{ GRP_DROPS, "drops", NULL, SIDE_RUN, SIDE_ALL },
	{ GRP_CAPS, NULL, NULL, SIDE_RUN, SIDE_ALL },
	/* Deferred tokens: the server's IOU table when this process runs
	 * a server, the client's promises when it runs a client;
	 * "iou_counters" says which the summary line shows. */
	{ GRP_IOU_SERVER, NULL, NULL, SIDE_RUN, SIDE_SERVER },
	{ GRP_IOU_CLIENT, NULL, NULL, SIDE_RUN, SIDE_CLIENT },
	/* Per side that ran: their counters mean different things. */
	{ GRP_TRACE, "server", "trace", SIDE_SERVER, SIDE_SERVER },
	{ GRP_TRACE, "client", "trace", SIDE_CLIENT, SIDE_CLIENT },
};

static void json_counters(FILE *f, const struct sums *s)
{
	const char *open = NULL; /* the enclosing object open */

	for (size_t v = 0; v < sizeof(json_views) / sizeof(json_views[0]);
	     v++) {
		const struct json_view *jv = &json_views[v];
		bool first = true;

		if ((jv->when == SIDE_SERVER && !s->run_server) ||
		    (jv->when == SIDE_CLIENT && !s->run_client))
			continue;
		if (open && (!jv->in || strcmp(open, jv->in) != 0)) {
			fprintf(f, "}");
			open = NULL;
		}
		if (jv->in && !open) {
			fprintf(f, ",\"%s\":{", jv->in);
			open = jv->in;
		} else if (jv->in) {
			fprintf(f, ",");
		}
		if (jv->obj)
			fprintf(f, "%s\"%s\":{", jv->in ? "" : ",", jv->obj);
		for (int i = 0; i < BENCH_NCTR; i++) {
			const struct counter *c = &counters[i];

			if (c->group != jv->g || c->text_only)
				continue;
			fprintf(f, "%s\"%s\":%llu",
				jv->obj && first ? "" : ",", c->name,
				(unsigned long long)val_side(
					s, (enum bench_ctr)i,
					jv->side == SIDE_RUN ? c->side
							     : jv->side));
			first = false;
		}
		if (jv->obj)
			fprintf(f, "}");
	}
	if (open)
		fprintf(f, "}");
}

/*
 * The deferred issuer: "thread" (--issuer-thread: sleeps, and the wake-ups
 * an issue signalled) or "worker" (completed on the client threads:
 * poll-loop passes that completed any, polls that spun because a token was
 * due within 1 ms).  Then the CPU time per role, warm-up included: what a
 * figure's ratio is made of.  The worker-mode issuer's time ("issuer") is
 * the client threads' time completing tokens, part of "client";
 * "issuer_in_client" says so.
 */
static void json_issuer(FILE *f, const struct report *r)
{
	const struct bench_issuer_stats *ist = r->ist;
	bool thread = r->o->issuer_thread;

	if (ist->issued)
		fprintf(f,
			",\"issuer\":{\"mode\":\"%s\",\"issued\":%llu,"
			"\"completed\":%llu,\"cancelled\":%llu,"
			"\"late_mean_us\":%.2f,\"late_max_us\":%.2f,"
			"\"%s\":%llu,\"%s\":%llu}",
			thread ? "thread" : "worker",
			(unsigned long long)ist->issued,
			(unsigned long long)ist->completed,
			(unsigned long long)ist->cancelled, ist->late_mean_us,
			ist->late_max_us, thread ? "sleeps" : "passes",
			(unsigned long long)(thread ? ist->wakeups
						    : ist->passes),
			thread ? "signals" : "spin_polls",
			(unsigned long long)(thread ? ist->signals
						    : ist->spin_polls));
	fprintf(f,
		",\"cpu_s\":{\"server\":%.3f,\"client\":%.3f,\"issuer\":%.3f,"
		"\"issuer_in_client\":%s}",
		r->cpu_server, r->cpu_client, ist->cpu_s,
		ist->issued && !thread ? "true" : "false");
}

/* "tracer": the tracer's span counters (--trace-out), taken after the
 * workers stopped: spans_started = spans_exported + spans_dropped. */
static void json_tracer(FILE *f, const struct bench_opts *o)
{
	const struct ferry_tracer_stats *st = &o->trace_stats;

	if (!o->tracer)
		return;
	fprintf(f,
		",\"tracer\":{\"spans_started\":%llu,\"spans_exported\":%llu,"
		"\"spans_dropped\":%llu,\"spans_dropped_full\":%llu,"
		"\"spans_dropped_rate\":%llu,\"spans_dropped_budget\":%llu,"
		"\"events_dropped\":%llu,\"export_errors\":%llu,"
		"\"cpu_budget\":%.4f,\"max_spans_per_sec\":%u,"
		"\"otlp_spans_sent\":%llu,\"otlp_spans_dropped\":%llu,"
		"\"otlp_spans_queued\":%llu,\"otlp_requests\":%llu,"
		"\"otlp_retries\":%llu,\"otlp_failures\":%llu}",
		(unsigned long long)st->spans_started,
		(unsigned long long)st->spans_exported,
		(unsigned long long)st->spans_dropped,
		(unsigned long long)st->spans_dropped_full,
		(unsigned long long)st->spans_dropped_rate,
		(unsigned long long)st->spans_dropped_budget,
		(unsigned long long)st->events_dropped,
		(unsigned long long)st->export_errors, o->trace_budget,
		o->trace_max_sps, (unsigned long long)st->otlp_spans_sent,
		(unsigned long long)st->otlp_spans_dropped,
		(unsigned long long)st->otlp_spans_queued,
		(unsigned long long)st->otlp_requests,
		(unsigned long long)st->otlp_retries,
		(unsigned long long)st->otlp_failures);
}

/* "hist": the client's whole latency histogram, so that the latencies of
 * several processes can be merged (bench/testbed does): the buckets that
 * hold values, each [first ns, last ns, count], lowest first. */
static void json_hist(FILE *f, const struct bench_hist *h)
{
	uint64_t low, high, n;
	unsigned i = 0;
	bool first = true;

	fprintf(f,
		",\"hist\":{\"unit\":\"ns\",\"count\":%llu,\"min\":%llu,"
		"\"max\":%llu,\"sum\":%.0f,\"buckets\":[",
		(unsigned long long)bench_hist_count(h),
		(unsigned long long)bench_hist_min(h),
		(unsigned long long)bench_hist_max(h), bench_hist_sum(h));
	while (bench_hist_next_bucket(h, &i, &low, &high, &n)) {
		fprintf(f, "%s[%llu,%llu,%llu]", first ? "" : ",",
			(unsigned long long)low, (unsigned long long)high,
			(unsigned long long)n);
		first = false;
	}
	fprintf(f, "]}");
}

/* A JSON string: @s with its quotes, backslashes and control bytes
 * escaped (other bytes as they are: a --label is the user's text). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/*
 * "latency_curve": the latency at percentiles spaced evenly on a log scale
 * of 1 - p, ten a decade, as far as the number of calls resolves them (a
 * point's 1 - p is at least one call), then at 100 (the max).  The steps
 * put 50, 95, 99.5, ... on the curve instead of 50.1, 95.0, 99.5: the
 * half is exact.  Every point comes from bench_hist_percentile(), as
 * p50_us and the others do.
 */
static const double tail_steps[10] = {
	1, 0.7943282347, 0.6309573445, 0.5, 0.3981071706, 0.3162277660,
	0.2511886432, 0.1995262315, 0.1584893192, 0.1258925412,
};

static void json_curve(FILE *f, const struct bench_hist *h)
{
	uint64_t n = bench_hist_count(h);
	const char *sep = "";

	fprintf(f, ",\"latency_curve\":{\"count\":%llu,\"points\":[",
		(unsigned long long)n);
	for (double decade = 1; n && decade * (double)n >= 1; decade /= 10) {
		for (int j = 0; j < 10; j++) {
			double q = tail_steps[j] * decade;
			char pct[32];

			if (q * (double)n < 1)
				break;
			/* The percentile as written, 99.9 and not
			 * 99.900000000000006: the rank is taken from
			 * that, as p999_us's is. */
			snprintf(pct, sizeof(pct), "%.10g", 100 * (1 - q));
			fprintf(f, "%s[%s,%.3f]", sep, pct,
				us(bench_hist_percentile(h, strtod(pct, NULL))));
			sep = ",";
		}
	}
	if (n)
		fprintf(f, "%s[100,%.3f]", sep, us(bench_hist_max(h)));
	fprintf(f, "]}");
}

/* One column of the timeline: member @off of each sample, with @prec
 * decimals. */
static void json_column(FILE *f, const char *name,
			const struct bench_progress *tl, size_t off, int prec)
{
	fprintf(f, ",\"%s\":[", name);
	for (size_t i = 0; i < tl->n; i++) {
		double v;

		memcpy(&v, (const char *)&tl->samples[i] + off, sizeof(v));
		fprintf(f, "%s%.*f", i ? "," : "", prec, v);
	}
	fprintf(f, "]");
}

/* "timeline": the rates over each interval of the measured time, as
 * columns; "complete" is false if memory for it ran out. */
static void json_timeline(FILE *f, const struct bench_progress *tl)
{
	fprintf(f, ",\"timeline\":{\"interval_s\":%.3f,\"complete\":%s",
		(double)BENCH_SAMPLE_NS / 1e9, tl->complete ? "true" : "false");
	json_column(f, "t_s", tl, offsetof(struct bench_sample, t_s), 3);
	json_column(f, "rps", tl, offsetof(struct bench_sample, rps), 1);
	json_column(f, "gbps", tl, offsetof(struct bench_sample, gbps), 4);
	fprintf(f, "}");
}

/* --json FILE.  Returns 0, or 1 after saying why it could not. */
static int json_summary(const struct report *r)
{
	const struct bench_opts *o = r->o;
	FILE *f = fopen(o->json, "w");

	if (!f) {
		fprintf(stderr, "ferry-bench: %s: %s\n", o->json,
			strerror(errno));
		return 1;
	}
	fprintf(f,
		"{\"mode\":\"%s%s\",\"dataplane\":\"%s\",\"size\":%u,"
		"\"resp_size\":%u,\"inflight\":%u,\"sessions\":%u,"
		"\"threads\":%u,\"busy_poll\":%s,\"duration_s\":%.3f,"
		"\"rps\":%.1f,\"gbps\":%.4f,\"p50_us\":%.3f,\"p99_us\":%.3f,"
		"\"p999_us\":%.3f,\"max_us\":%.3f,\"mean_us\":%.3f,"
		"\"copies_per_byte\":%.4f,\"dropped\":%llu,\"verify\":%s,"
		"\"admission\":%s,\"caps\":%u,\"deferred\":%.4f,"
		"\"deferred_delay_us\":%u,\"iou_counters\":\"%s\","
		"\"rss_peak_kb\":%llu,\"rss_per_session_kb\":%.2f",
		o->floor ? "floor-" : "", o->mode, o->dataplane, o->size,
		o->resp_size, o->inflight, o->sessions, o->threads,
		o->busy_poll ? "true" : "false", r->secs, r->rps, r->gbps,
		us(bench_hist_percentile(&r->hist, 50)),
		us(bench_hist_percentile(&r->hist, 99)),
		us(bench_hist_percentile(&r->hist, 99.9)),
		us(bench_hist_max(&r->hist)),
		bench_hist_mean(&r->hist) / 1000.0,
		r->cpb, (unsigned long long)group_sum(&r->s, GRP_DROPS),
		o->verify ? "true" : "false", o->keyring ? "true" : "false",
		o->caps, o->deferred, o->deferred_delay_us,
		r->s.run_server ? "server" : "client",
		(unsigned long long)r->rss_kb, r->rss_per_sess_kb);
	json_counters(f, &r->s);
	json_issuer(f, r);
	json_tracer(f, o);
	if (r->s.run_client)
		json_hist(f, &r->hist);
	if (o->label) {
		fprintf(f, ",\"label\":");
		json_str(f, o->label);
	}
	json_curve(f, &r->hist);
	json_timeline(f, r->timeline);
	fprintf(f, "}\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "ferry-bench: %s: %s\n", o->json,
			strerror(errno));
		return 1;
	}
	return 0;
}

int bench_report(const struct bench_opts *o, struct bench_worker *ws, int nw,
		 double secs, const struct bench_issuer_stats *ist,
		 const struct bench_progress *timeline)
{
	struct report r = { .o = o, .ist = ist, .timeline = timeline,
			    .secs = secs };
	const struct sums *s = &r.s;
	uint64_t delivered;
	int rc;

	sum(&r.s, o, ws, nw);
	bench_hist_init(&r.hist);
	for (int k = 0; k < nw; k++) {
		bench_hist_merge(&r.hist, &ws[k].hist);
		*(ws[k].server ? &r.cpu_server : &r.cpu_client) += ws[k].cpu_s;
	}
	r.rps = (double)val(s, BC_COMPLETED) / secs;
	r.gbps = (double)val(s, BC_BYTES) * 8 / secs / 1e9;
	delivered = val(s, BC_DELIVERED);
	r.cpb = delivered ? (double)val(s, BC_COPIED) / (double)delivered : 0;
	r.rss_kb = rss_peak_kb();
	r.rss_per_sess_kb = (double)r.rss_kb /
			    ((double)o->sessions * o->threads *
			     (strcmp(o->mode, "loop") == 0 ? 2 : 1));

	rc = text_summary(&r);
	if (s->run_client && val(s, BC_COMPLETED) == 0) {
		fprintf(stderr, "ferry-bench: no call completed\n");
		rc = 1;
	}
	for (int k = 0; k < nw; k++)
		if (ws[k].err && ws[k].errmsg[0])
			fprintf(stderr, "ferry-bench: %s\n", ws[k].errmsg);
	/* Both ends are ferry: a malformed trace or attribute block
	 * between them is a bug, even when no call failed for it. */
	if (val_side(s, BC_TRACE_BLOCKS_BAD, SIDE_ALL))
		fprintf(stderr,
			"ferry-bench: malformed trace blocks: %llu "
			"received by the server, %llu by the client\n",
			(unsigned long long)s->v[0][BC_TRACE_BLOCKS_BAD],
			(unsigned long long)s->v[1][BC_TRACE_BLOCKS_BAD]);
	if (o->json && json_summary(&r))
		rc = 1;
	return rc;
}

/*
 * --plot FILE.svg: ferry-bench-plot draws the file --json wrote.  It is
 * bench/plot, a Python script, copied beside ferry-bench in a build tree
 * and installed beside it: one drawing for every run, whether plotted
 * now or later from saved --json files, where SVG written here would be a
 * second one to keep in step.
 */
int bench_plot(const struct bench_opts *o)
{
	char dir[PATH_MAX], tool[PATH_MAX + 32];
	char *argv[] = { tool, "-o", (char *)o->plot, (char *)o->json, NULL };
	ssize_t len = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	char *slash;
	pid_t pid;
	int st, ret;

	if (len <= 0) {
		fprintf(stderr, "ferry-bench: --plot: cannot tell where "
				"ferry-bench is: %s\n", strerror(errno));
		return 1;
	}
	dir[len] = '\0';
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	snprintf(tool, sizeof(tool), "%s/ferry-bench-plot", dir);
	if (access(tool, X_OK) != 0) {
		fprintf(stderr, "ferry-bench: --plot: %s: %s (bench/plot, "
				"built and installed beside ferry-bench)\n",
			tool, strerror(errno));
		return 1;
	}
	fflush(stdout);
	ret = posix_spawn(&pid, tool, NULL, NULL, argv, environ);
	if (ret != 0) {
		fprintf(stderr, "ferry-bench: --plot: %s: %s\n", tool,
			strerror(ret));
		return 1;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "ferry-bench: --plot: ferry-bench-plot "
				"failed\n");
		return 1;
	}
	return 0;
}
