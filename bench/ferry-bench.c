/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench: the load-testing tool.  See `ferry-bench --help`.  This is
 * the driver: setup, the worker threads, the measured time; the command
 * line is opts.c's, the summary report.c's, the roles rpc*.c's and
 * floor.c's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/ferry.h>
#ifdef FERRY_BENCH_CONTROL
#include <ferry/metrics.h>
#include <ferry/token.h>
#endif

#include "bench.h"

_Atomic int bench_phase = PH_WARMUP;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull),
			       (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

/*
 * --keyring: load the keyring and issue, once, the client's channel token
 * and the --caps tokens.  Returns 0, or an exit status after saying why.
 */
static int bench_auth_setup(const struct bench_opts *o, struct bench_auth *a)
{
#ifdef FERRY_BENCH_CONTROL
	struct ferry_token_req req = {
		.type = FERRY_TOKEN_SUBREQUEST,
		.audience = BENCH_AUDIENCE,
		.target = BENCH_CHANNEL,
	};
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	size_t len;
	int ret = ferry_keyring_load(o->keyring, &a->kr);

	if (ret < 0) {
		fprintf(stderr, "ferry-bench: --keyring %s: %s\n", o->keyring,
			ferry_strerror(ret));
		return 2;
	}
	/* As long as the keyring lets tokens live: a bench run may be
	 * long, and the tokens are issued only once.  Tokens sealed per
	 * call (--verify) live an hour at most. */
	req.ttl = ferry_keyring_max_ttl(a->kr);
	a->call_ttl = req.ttl < 3600 ? req.ttl : 3600;
	if (o->verify && o->caps) {
		/* A per-call token carries props: check that --caps of
		 * them fit a call's table, and say so now if not. */
		uint8_t props[BENCH_PROPS_LEN] = { 0 };
		struct ferry_token_req vreq = req;

		vreq.entrypoint = BENCH_CAP_ENTRY;
		vreq.props = props;
		vreq.props_len = sizeof(props);
		vreq.ttl = a->call_ttl;
		ret = ferry_token_seal(a->kr, &vreq, tok, sizeof(tok), &len);
		if (ret == 0 && 4 + o->caps * (4 + len) > FERRY_CAPS_MAX_LEN) {
			fprintf(stderr, "ferry-bench: --caps %u with --verify: "
					"%u tokens of %zu bytes do not fit a "
					"token table (%u bytes)\n",
				o->caps, o->caps, len, FERRY_CAPS_MAX_LEN);
			return 2;
		}
	}
	for (unsigned i = 0; i <= o->caps; i++) {
		uint8_t *copy = NULL;

		req.entrypoint = i == 0 ? "" : BENCH_CAP_ENTRY;
		/* The channel token is a version 2 one, with its holder key
		 * (wire v2 refuses a version 1 token at connect); --caps
		 * tokens prove nothing but themselves, and version 1 ones
		 * are 32 bytes shorter in a call's table. */
		if (i == 0)
			ret = ferry_token_seal2(a->kr, &req, tok, sizeof(tok),
						&len, a->chan_hk);
		else
			ret = ferry_token_seal(a->kr, &req, tok, sizeof(tok),
					       &len);
		if (ret == 0 && !(copy = malloc(len)))
			ret = -ENOMEM;
		if (ret < 0) {
			fprintf(stderr, "ferry-bench: issuing a token: %s\n",
				ferry_strerror(ret));
			return 1;
		}
		memcpy(copy, tok, len);
		if (i == 0) {
			a->chan_tok = copy;
			a->chan_tok_len = len;
		} else {
			a->caps[a->ncaps++] = (struct ferry_cap){
				FERRY_CAP_TOKEN, copy, len };
		}
	}
	return 0;
#else
	(void)o;
	(void)a;
	fprintf(stderr, "ferry-bench: --keyring needs the control plane "
			"(libsodium), which this build lacks\n");
	return 2;
#endif
}

static void bench_auth_free(struct bench_auth *a)
{
	free(a->chan_tok);
	for (unsigned i = 0; i < a->ncaps; i++)
		free((void *)a->caps[i].data);
#ifdef FERRY_BENCH_CONTROL
	ferry_keyring_free(a->kr);
#endif
}

/* --trace-out: one tracer for the process (each endpoint gets a ring of
 * it), drained by its own thread.  Returns 0 or an exit status. */
static int bench_trace_setup(struct bench_opts *o)
{
#ifdef FERRY_BENCH_CONTROL
	struct ferry_tracer_config tc;
	int ret;

	char why[256];
	const char *ra = getenv("OTEL_RESOURCE_ATTRIBUTES");

	ferry_tracer_config_init(&tc);
	/* "ferry-bench" unless the environment names the service (the
	 * tracer reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES). */
	if (!getenv("OTEL_SERVICE_NAME") && !(ra && strstr(ra, "service.name=")))
		tc.service_name = "ferry-bench";
	tc.export_path = o->trace_out;
	if (o->trace_format && strcmp(o->trace_format, "protobuf") == 0) {
		tc.export_format = FERRY_TRACE_FORMAT_PROTOBUF;
	} else if (o->trace_format && strcmp(o->trace_format, "json") != 0) {
		fprintf(stderr, "ferry-bench: --trace-format: json or protobuf\n");
		return 2;
	}
	/* Without --otlp the environment's endpoint is not followed: a
	 * benchmark exports only where it is told to. */
	tc.otlp_endpoint = o->otlp_endpoint;
	tc.use_env = o->otlp || o->otlp_endpoint;
	if (o->otlp_protocol && strcmp(o->otlp_protocol, "http/protobuf") == 0) {
		tc.otlp_protocol = FERRY_OTLP_HTTP_PROTOBUF;
	} else if (o->otlp_protocol && strcmp(o->otlp_protocol, "http/json") == 0) {
		tc.otlp_protocol = FERRY_OTLP_HTTP_JSON;
	} else if (o->otlp_protocol) {
		fprintf(stderr, "ferry-bench: --otlp-protocol: http/protobuf "
				"or http/json\n");
		return 2;
	}
	tc.otlp_gzip = o->otlp_gzip;
	tc.export_replace = true; /* this run's spans only */
	tc.sample_rate = o->trace_sample;
	/* A server follows its client's sampling, as --trace-sample says:
	 * the clients are this tool's own. */
	tc.ignore_remote_sampling = false;
	tc.export_max_bytes = o->trace_max_bytes;
	if (o->trace_max_bytes && o->trace_max_bytes < 4096) {
		fprintf(stderr, "ferry-bench: --trace-max-bytes: 0 (no cap) "
				"or at least 4096\n");
		return 2;
	}
	tc.cpu_budget = o->trace_budget;
	tc.max_spans_per_sec = o->trace_max_sps;
	tc.thread = true;
	tc.ring_bytes = 4u << 20;
	tc.max_spans = 65536;
	tc.drain_interval_us = 10000;
	if (ferry_tracer_config_check(&tc, why, sizeof(why)) < 0) {
		fprintf(stderr, "ferry-bench: tracing: %s\n", why);
		return 2;
	}
	if (o->otlp && !o->otlp_endpoint &&
	    !getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") &&
	    !getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) {
		fprintf(stderr, "ferry-bench: --otlp: set OTEL_EXPORTER_OTLP_"
				"ENDPOINT (or ..._TRACES_ENDPOINT), or give "
				"--otlp-endpoint\n");
		return 2;
	}
	ret = ferry_tracer_create(&tc, &o->tracer);
	if (ret < 0) {
		fprintf(stderr, "ferry-bench: --trace-out %s: %s\n",
			o->trace_out ? o->trace_out : "(none)",
			ferry_strerror(ret));
		return 1;
	}
	return 0;
#else
	(void)o;
	fprintf(stderr, "ferry-bench: --trace-out needs the control plane "
			"(libsodium), which this build lacks\n");
	return 2;
#endif
}

/* The tracer's counters once the workers (and so the rings) are gone,
 * for the JSON summary: drained first, so that they balance. */
static void bench_trace_snapshot(struct bench_opts *o)
{
#ifdef FERRY_BENCH_CONTROL
	if (!o->tracer)
		return;
	/* Drained, and the OTLP/HTTP queue sent (or dropped, counted), so
	 * that spans_exported = otlp_spans_sent + otlp_spans_dropped. */
	ferry_tracer_flush(o->tracer, 0);
	ferry_tracer_stats(o->tracer, &o->trace_stats);
#else
	(void)o;
#endif
}

/* Close what is still open, export it, and say what was kept. */
static void bench_trace_end(struct bench_opts *o)
{
#ifdef FERRY_BENCH_CONTROL
	struct ferry_tracer_stats st;

	if (!o->tracer)
		return;
	ferry_tracer_drain(o->tracer);
	ferry_tracer_stats(o->tracer, &st);
	ferry_tracer_destroy(o->tracer);
	o->tracer = NULL;
	/* A result, not progress: printed with --quiet too. */
	fprintf(stderr,
		"trace: %llu spans exported to %s, %llu events dropped "
		"(ring full), %llu of %llu spans dropped (%llu ring full or "
		"no slot, %llu rate limit, %llu CPU budget)\n",
		(unsigned long long)st.spans_exported,
		o->trace_out ? o->trace_out : "OTLP/HTTP",
		(unsigned long long)st.events_dropped,
		(unsigned long long)st.spans_dropped,
		(unsigned long long)st.spans_started,
		(unsigned long long)st.spans_dropped_full,
		(unsigned long long)st.spans_dropped_rate,
		(unsigned long long)st.spans_dropped_budget);
	if (st.otlp_requests || st.otlp_spans_dropped)
		fprintf(stderr,
			"trace: OTLP/HTTP: %llu spans sent, %llu dropped, in %llu "
			"requests (%llu retries, %llu failed)\n",
			(unsigned long long)st.otlp_spans_sent,
			(unsigned long long)st.otlp_spans_dropped,
			(unsigned long long)st.otlp_requests,
			(unsigned long long)st.otlp_retries,
			(unsigned long long)st.otlp_failures);
#else
	(void)o;
#endif
}

/*
 * --metrics ADDR:PORT: serve the endpoints' counters and the tracer's (the
 * workers add their endpoints as they make them), and say where.  ADDR is
 * an IPv4 address or an IPv6 one in brackets.  Returns 0 or an exit status.
 */
static int bench_metrics_setup(struct bench_opts *o)
{
#ifdef FERRY_BENCH_CONTROL
	char addr[64];
	const char *colon = strrchr(o->metrics_at, ':');
	size_t alen = colon ? (size_t)(colon - o->metrics_at) : 0;
	char *end;
	unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
	uint16_t bound = 0;
	bool v6;
	int ret;

	if (!colon || !colon[1] || *end || port > 65535 || alen == 0 ||
	    alen >= sizeof(addr)) {
		fprintf(stderr, "ferry-bench: --metrics %s: want ADDR:PORT, "
				"e.g. 127.0.0.1:9464\n", o->metrics_at);
		return 2;
	}
	v6 = o->metrics_at[0] == '[' && colon[-1] == ']';
	memcpy(addr, o->metrics_at + v6, alen - 2 * v6);
	addr[alen - 2 * v6] = '\0';
	ret = ferry_metrics_create(&o->metrics);
	if (ret == 0 && o->tracer)
		ret = ferry_metrics_set_tracer(o->metrics, o->tracer);
	if (ret == 0)
		ret = ferry_metrics_serve(o->metrics, addr, (uint16_t)port,
					  &bound);
	if (ret < 0) {
		fprintf(stderr, "ferry-bench: --metrics %s: %s\n",
			o->metrics_at, ferry_strerror(ret));
		ferry_metrics_destroy(o->metrics);
		o->metrics = NULL;
		return 1;
	}
	/* Printed with --quiet too: a scraper needs it, above all with
	 * PORT 0. */
	fprintf(stderr, "metrics: http://%s%s%s:%u/metrics\n", v6 ? "[" : "",
		addr, v6 ? "]" : "", (unsigned)bound);
	return 0;
#else
	(void)o;
	fprintf(stderr, "ferry-bench: --metrics needs the control plane "
			"(libsodium), which this build lacks\n");
	return 2;
#endif
}

static void bench_metrics_end(struct bench_opts *o)
{
#ifdef FERRY_BENCH_CONTROL
	ferry_metrics_destroy(o->metrics);
	o->metrics = NULL;
#else
	(void)o;
#endif
}

/* Load the keyring, start the tracer and (--issuer-thread) the process's
 * delayed issuer.  Returns 0, or an exit status after saying why not. */
static int setup(struct bench_opts *o, struct bench_auth *auth)
{
	int rc;

	if (o->keyring) {
		rc = bench_auth_setup(o, auth);
		if (rc)
			return rc;
		o->auth = auth;
	}
	if (o->trace_out || o->otlp || o->otlp_endpoint) {
		rc = bench_trace_setup(o);
		if (rc)
			return rc;
	}
	if (o->metrics_at) {
		rc = bench_metrics_setup(o);
		if (rc)
			return rc;
	}
#ifdef FERRY_BENCH_TELEMETRY
	/* Before the EAL starts (the first DPDK endpoint starts it), so
	 * that its telemetry thread knows the commands from the first. */
	if (bench_is_dpdk(o) && !o->floor &&
	    bench_telemetry_register() < 0)
		fprintf(stderr, "ferry-bench: /ferry/stats not registered "
				"with DPDK telemetry\n");
#endif
	if (o->deferred > 0 && strcmp(o->mode, "server") != 0 &&
	    o->issuer_thread) {
		/* --issuer-thread: one delayed issuer for the process, before
		 * any client thread: sized for every token of every call in
		 * flight, twice over.  (Otherwise each client worker makes
		 * its own.) */
		size_t expect = (size_t)o->threads * o->sessions * o->inflight *
				o->caps * 2;

		rc = bench_issuer_start(o, expect, &o->issuer);
		if (rc < 0) {
			fprintf(stderr, "ferry-bench: starting the delayed "
					"issuer: %s\n", ferry_strerror(rc));
			return 1;
		}
	}
	return 0;
}

/* The process's worker threads: servers first, then clients. */
struct run {
	const struct bench_opts *o;
	struct bench_worker *ws;
	pthread_t *tids;
	int nw;
	bool run_server, run_client;
};

static void stop_workers(struct run *r)
{
	atomic_store(&bench_phase, PH_STOP);
	for (int k = 0; k < r->nw; k++)
		pthread_join(r->tids[k], NULL);
}

/* Start --threads workers of one role, once the earlier ones are ready
 * (clients connect only once the servers listen), and wait until they
 * are.  Returns 0, or 1 after saying why not. */
static int start_role(struct run *r, bool server, int ncpu)
{
	const struct bench_opts *o = r->o;

	for (uint32_t i = 0; i < o->threads; i++) {
		struct bench_worker *w = &r->ws[r->nw];
		void *(*fn)(void *);

		w->o = o;
		w->idx = (int)i;
		w->server = server;
		/* A client-only process counts CPUs down from the last, so
		 * that a server process (counting up from the first) and a
		 * client process on one host do not both spin on CPU 0. */
		if (!o->pin)
			w->cpu = -1;
		else if (!r->run_server)
			w->cpu = ncpu - 1 - r->nw % ncpu;
		else
			w->cpu = r->nw % ncpu;
		bench_hist_init(&w->hist);
		if (server)
			fn = o->floor ? bench_floor_server : bench_rpc_server;
		else
			fn = o->floor ? bench_floor_client : bench_rpc_client;
		if (pthread_create(&r->tids[r->nw], NULL, fn, w) != 0) {
			fprintf(stderr, "ferry-bench: cannot start a thread\n");
			return 1;
		}
		r->nw++;
	}
	for (int k = 0; k < r->nw; k++)
		while (!atomic_load(&r->ws[k].ready))
			sleep_ns(1000000);
	for (int k = 0; k < r->nw; k++) {
		if (r->ws[k].err) {
			fprintf(stderr, "ferry-bench: %s\n", r->ws[k].errmsg);
			stop_workers(r);
			bench_issuer_stop(o->issuer, NULL);
			return 1;
		}
	}
	return 0;
}

/* Servers first, on the first CPUs; clients on the next ones, so that on
 * two cores one server and one client get a core each. */
static int start_workers(struct run *r)
{
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);

	if (ncpu < 1)
		ncpu = 1;
	r->run_server = strcmp(r->o->mode, "client") != 0;
	r->run_client = strcmp(r->o->mode, "server") != 0;
	r->ws = calloc(2 * r->o->threads, sizeof(*r->ws));
	r->tids = calloc(2 * r->o->threads, sizeof(*r->tids));
	if (!r->ws || !r->tids) {
		fprintf(stderr, "ferry-bench: out of memory\n");
		return 1;
	}
	if (r->run_server && start_role(r, true, ncpu))
		return 1;
	if (r->run_client && start_role(r, false, ncpu))
		return 1;
	return 0;
}

static bool clients_gone(const struct run *r)
{
	for (int k = 0; k < r->nw; k++)
		if (!r->ws[k].server && !atomic_load(&r->ws[k].gone))
			return false;
	return true;
}

/* The measured time: until --duration is over, a signal comes, or every
 * client session has ended, with a sample in @tl every BENCH_SAMPLE_NS
 * and a progress line each second.  Returns its length in seconds. */
static double measure(struct run *r, struct bench_progress *tl)
{
	const struct bench_opts *o = r->o;
	uint64_t t_start = bench_now_ns();
	uint64_t end = o->duration > 0 ? t_start + (uint64_t)(o->duration * 1e9)
				       : UINT64_MAX;
	struct bench_progress p = { .t_ns = t_start };

	*tl = (struct bench_progress){ .t_ns = t_start, .t0_ns = t_start,
				       .record = true, .complete = true };
	while (!interrupted) {
		uint64_t now = bench_now_ns(), step;

		if (now >= end)
			break;
		if (r->run_client && clients_gone(r)) {
			fprintf(stderr, "ferry-bench: every session has ended; "
					"stopping\n");
			break;
		}
		step = end - now < BENCH_SAMPLE_NS ? end - now : BENCH_SAMPLE_NS;
		sleep_ns(step);
		now = bench_now_ns();
		bench_progress(tl, o, r->ws, r->nw, now, false);
		/* A line for each whole second (within half a sample). */
		if (now - p.t_ns + BENCH_SAMPLE_NS / 2 >= 1000000000ull)
			bench_progress(&p, o, r->ws, r->nw, now, !o->quiet);
	}
	return (double)(bench_now_ns() - t_start) / 1e9;
}

/* The warm-up: --warmup seconds, or until --measure-at (a wall-clock time,
 * the one clock every process on a machine shares), or a signal. */
static void warm_up(const struct bench_opts *o)
{
	struct timespec now;
	double left = o->warmup;

	if (o->measure_at > 0) {
		clock_gettime(CLOCK_REALTIME, &now);
		left = o->measure_at - ((double)now.tv_sec +
					(double)now.tv_nsec / 1e9);
		if (left < 0)
			fprintf(stderr, "ferry-bench: --measure-at was %.3f s "
					"ago; measuring now\n", -left);
	}
	while (left > 0 && !interrupted) {
		double step = left < 0.1 ? left : 0.1;

		sleep_ns((uint64_t)(step * 1e9));
		left -= step;
	}
}

/* --plot without --json: the JSON goes to a file of its own, removed
 * after.  Returns 0, or an exit status after saying why not. */
static int plot_json(struct bench_opts *o, char *tmp, size_t len)
{
	int fd;

	if (!o->plot || o->json)
		return 0;
	snprintf(tmp, len, "/tmp/ferry-bench-XXXXXX.json");
	fd = mkstemps(tmp, 5);
	if (fd < 0) {
		fprintf(stderr, "ferry-bench: --plot: a file for the JSON: "
				"%s\n", strerror(errno));
		return 1;
	}
	close(fd);
	o->json = tmp;
	return 0;
}

/* The issuer's counters: the process's thread, stopped now that every
 * endpoint is gone (what it still holds was cancelled with its session),
 * or each client worker's own. */
static void issuer_end(struct bench_opts *o, const struct run *r,
		       struct bench_issuer_stats *ist)
{
	if (o->issuer) {
		bench_issuer_stop(o->issuer, ist);
		o->issuer = NULL;
		return;
	}
	for (int k = 0; k < r->nw; k++)
		if (!r->ws[k].server)
			bench_issuer_stats_add(ist, &r->ws[k].issuer);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_auth auth = { 0 };
	struct bench_issuer_stats ist = { 0 };
	struct run r = { .o = &o };
	struct bench_progress tl;
	char tmp_json[64] = "";
	double secs;
	int rc;

	bench_opts_parse(argc, argv, &o);
	bench_clock_init();
	rc = setup(&o, &auth);
	if (rc)
		return rc;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (start_workers(&r))
		return 1;
	if (!o.quiet)
		fprintf(stderr,
			"ferry-bench %s%s: %s dataplane, %s:%u, %u B requests, "
			"%u B responses, %u thread(s) x %u session(s) x %u in "
			"flight%s\n",
			o.floor ? "floor " : "", o.mode, o.dataplane, o.addr,
			o.port, o.size, o.resp_size, o.threads, o.sessions,
			o.inflight, o.busy_poll ? ", busy-poll" : "");
	warm_up(&o);
	atomic_store(&bench_phase, PH_MEASURE);
	secs = measure(&r, &tl);
	stop_workers(&r);
	issuer_end(&o, &r, &ist);
	bench_trace_snapshot(&o);
	rc = plot_json(&o, tmp_json, sizeof(tmp_json));
	rc |= bench_report(&o, r.ws, r.nw, secs, &ist, &tl);
	if (rc == 0 && o.plot)
		rc = bench_plot(&o);
	if (tmp_json[0])
		unlink(tmp_json);
	free(tl.samples);
	free(r.ws);
	free(r.tids);
	bench_auth_free(&auth);
	/* Before the tracer it reads goes. */
	bench_metrics_end(&o);
	bench_trace_end(&o);
	return rc;
}
