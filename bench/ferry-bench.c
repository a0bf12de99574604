/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench: the load-testing tool.  See `ferry-bench --help`.
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
#include <ferry/token.h>
#endif

#include "../dataplane/dp.h"
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

struct totals {
	uint64_t completed, errors, bytes;
	uint64_t lost, dups, ooo, corrupt;
	/* The endpoints' IOU counters as last published: a server's table,
	 * a client's promises. */
	uint64_t iou_created, iou_resolved, iou_rejected;
	uint64_t ious_promised, ious_pushed, ious_dropped;
	uint64_t deferred_calls, table_calls;
};

static struct totals sum(struct bench_worker *ws, int n, bool server)
{
	struct totals t = { 0 };

	for (int i = 0; i < n; i++) {
		if (ws[i].server != server)
			continue;
		t.completed += atomic_load_explicit(&ws[i].completed,
						    memory_order_relaxed);
		t.errors += atomic_load_explicit(&ws[i].errors,
						 memory_order_relaxed);
		t.bytes += atomic_load_explicit(&ws[i].bytes,
						memory_order_relaxed);
		t.lost += atomic_load(&ws[i].lost);
		t.dups += atomic_load(&ws[i].dups);
		t.ooo += atomic_load(&ws[i].ooo);
		t.corrupt += atomic_load(&ws[i].corrupt);
		t.iou_created += atomic_load(&ws[i].iou_created);
		t.iou_resolved += atomic_load(&ws[i].iou_resolved);
		t.iou_rejected += atomic_load(&ws[i].iou_rejected);
		t.ious_promised += atomic_load(&ws[i].ious_promised);
		t.ious_pushed += atomic_load(&ws[i].ious_pushed);
		t.ious_dropped += atomic_load(&ws[i].ious_dropped);
		t.deferred_calls += atomic_load(&ws[i].deferred_calls);
		t.table_calls += atomic_load(&ws[i].table_calls);
	}
	return t;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
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
		ret = ferry_token_seal(a->kr, &req, tok, sizeof(tok), &len);
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

	ferry_tracer_config_init(&tc);
	tc.service_name = "ferry-bench";
	tc.export_path = o->trace_out;
	tc.export_replace = true; /* this run's spans only */
	tc.sample_rate = o->trace_sample;
	tc.thread = true;
	tc.ring_bytes = 4u << 20;
	tc.max_spans = 65536;
	tc.drain_interval_us = 10000;
	ret = ferry_tracer_create(&tc, &o->tracer);
	if (ret < 0) {
		fprintf(stderr, "ferry-bench: --trace-out %s: %s\n",
			o->trace_out, ferry_strerror(ret));
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
		"(ring full), %llu spans dropped\n",
		(unsigned long long)st.spans_exported, o->trace_out,
		(unsigned long long)st.events_dropped,
		(unsigned long long)st.spans_dropped);
#else
	(void)o;
#endif
}

/* The progress line's IOU counters: the server's table when this process
 * runs a server, else the client's promises; "" while there are none. */
static void iou_progress(struct bench_worker *ws, int nw, bool server,
			 char *buf, size_t len)
{
	struct totals t = sum(ws, nw, server);

	if (server && t.iou_created)
		snprintf(buf, len, "  IOUs created %llu resolved %llu "
				   "rejected %llu",
			 (unsigned long long)t.iou_created,
			 (unsigned long long)t.iou_resolved,
			 (unsigned long long)t.iou_rejected);
	else if (!server && t.ious_promised)
		snprintf(buf, len, "  IOUs promised %llu pushed %llu "
				   "dropped %llu (client)",
			 (unsigned long long)t.ious_promised,
			 (unsigned long long)t.ious_pushed,
			 (unsigned long long)t.ious_dropped);
}

/* Add @b's trace-block counters (FF_TRACE) to @a's. */
static void trace_stats_add(struct ferry_ep_stats *a,
			    const struct ferry_ep_stats *b)
{
	a->trace_blocks_received += b->trace_blocks_received;
	a->trace_blocks_bad += b->trace_blocks_bad;
	a->trace_attrs_received += b->trace_attrs_received;
	a->trace_ctx_unsent += b->trace_ctx_unsent;
	a->trace_attrs_unsent += b->trace_attrs_unsent;
}

/* Write @st's trace-block counters as the JSON member @side. */
static void trace_stats_json(FILE *f, const char *side,
			     const struct ferry_ep_stats *st)
{
	fprintf(f,
		"\"%s\":{\"trace_blocks_received\":%llu,"
		"\"trace_blocks_bad\":%llu,\"trace_attrs_received\":%llu,"
		"\"trace_ctx_unsent\":%llu,\"trace_attrs_unsent\":%llu}",
		side, (unsigned long long)st->trace_blocks_received,
		(unsigned long long)st->trace_blocks_bad,
		(unsigned long long)st->trace_attrs_received,
		(unsigned long long)st->trace_ctx_unsent,
		(unsigned long long)st->trace_attrs_unsent);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_worker *ws;
	pthread_t *tids;
	int nw = 0, ncpu, first = 1;
	bool run_server, run_client;
	struct bench_hist hist;
	struct totals cl, sv;
	struct bench_auth auth = { 0 };
	uint64_t caps_redeemed = 0;
	uint64_t t_start, t_end, copied = 0, delivered = 0, drops = 0;
	uint64_t retrans = 0, zc = 0, zc_fixed = 0;
	struct bench_issuer_stats ist = { 0 };
	struct ferry_ep_stats isv = { 0 }, icl = { 0 };
	double secs;
	int rc = 0;

	bench_opts_parse(argc, argv, &o);
	if (o.keyring) {
		rc = bench_auth_setup(&o, &auth);
		if (rc)
			return rc;
		o.auth = &auth;
	}
	if (o.trace_out) {
		rc = bench_trace_setup(&o);
		if (rc)
			return rc;
	}
	run_server = strcmp(o.mode, "client") != 0;
	run_client = strcmp(o.mode, "server") != 0;

	if (o.deferred > 0 && run_client && o.issuer_thread) {
		/* --issuer-thread: one delayed issuer for the process, before
		 * any client thread: sized for every token of every call in
		 * flight, twice over.  (Otherwise each client worker makes
		 * its own.) */
		size_t expect = (size_t)o.threads * o.sessions * o.inflight *
				o.caps * 2;

		rc = bench_issuer_start(&o, expect, &o.issuer);
		if (rc < 0) {
			fprintf(stderr, "ferry-bench: starting the delayed "
					"issuer: %s\n", ferry_strerror(rc));
			return 1;
		}
		rc = 0;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	ws = calloc(2 * o.threads, sizeof(*ws));
	tids = calloc(2 * o.threads, sizeof(*tids));
	if (!ws || !tids) {
		fprintf(stderr, "ferry-bench: out of memory\n");
		return 1;
	}

	/* Servers first, on the first CPUs; clients on the next ones, so
	 * that on two cores one server and one client get a core each. */
	for (int role = 0; role < 2; role++) {
		bool server = role == 0;

		if ((server && !run_server) || (!server && !run_client))
			continue;
		for (uint32_t i = 0; i < o.threads; i++) {
			struct bench_worker *w = &ws[nw];
			void *(*fn)(void *);

			w->o = &o;
			w->idx = (int)i;
			w->server = server;
			/* A client-only process counts CPUs down from the
			 * last, so that a server process (counting up from
			 * the first) and a client process on one host do not
			 * both spin on CPU 0. */
			if (!o.pin)
				w->cpu = -1;
			else if (!run_server)
				w->cpu = ncpu - 1 - nw % ncpu;
			else
				w->cpu = nw % ncpu;
			bench_hist_init(&w->hist);
			fn = server ? (o.floor ? bench_floor_server
					       : bench_rpc_server)
				    : (o.floor ? bench_floor_client
					       : bench_rpc_client);
			if (pthread_create(&tids[nw], NULL, fn, w) != 0) {
				fprintf(stderr,
					"ferry-bench: cannot start a thread\n");
				return 1;
			}
			nw++;
		}
		/* Clients connect only once the servers listen. */
		for (int k = 0; k < nw; k++)
			while (!atomic_load(&ws[k].ready))
				sleep_ns(1000000);
		for (int k = 0; k < nw; k++) {
			if (ws[k].err) {
				fprintf(stderr, "ferry-bench: %s\n",
					ws[k].errmsg);
				atomic_store(&bench_phase, PH_STOP);
				for (int j = 0; j < nw; j++)
					pthread_join(tids[j], NULL);
				bench_issuer_stop(o.issuer, NULL);
				return 1;
			}
		}
	}

	if (!o.quiet)
		fprintf(stderr,
			"ferry-bench %s%s: %s dataplane, %s:%u, %u B requests, "
			"%u B responses, %u thread(s) x %u session(s) x %u in "
			"flight%s\n",
			o.floor ? "floor " : "", o.mode, o.dataplane, o.addr,
			o.port, o.size, o.resp_size, o.threads, o.sessions,
			o.inflight, o.busy_poll ? ", busy-poll" : "");
	sleep_ns((uint64_t)(o.warmup * 1e9));
	atomic_store(&bench_phase, PH_MEASURE);
	t_start = bench_now_ns();
	{
		struct totals prev = { 0 };
		uint64_t t_prev = t_start;
		uint64_t end = o.duration > 0
				       ? t_start + (uint64_t)(o.duration * 1e9)
				       : UINT64_MAX;

		while (!interrupted) {
			uint64_t now = bench_now_ns(), step;
			struct totals cur;
			double dt;

			if (now >= end)
				break;
			if (run_client) {
				bool all_gone = true;

				for (int k = 0; k < nw; k++)
					if (!ws[k].server && !atomic_load(&ws[k].gone))
						all_gone = false;
				if (all_gone) {
					fprintf(stderr, "ferry-bench: every session "
							"has ended; stopping\n");
					break;
				}
			}
			step = end - now < 1000000000ull ? end - now
							  : 1000000000ull;
			sleep_ns(step);
			now = bench_now_ns();
			cur = sum(ws, nw, !run_client);
			dt = (double)(now - t_prev) / 1e9;
			if (!o.quiet && step == 1000000000ull) {
				char ious[128] = "";

				if (o.keyring)
					iou_progress(ws, nw, run_server, ious,
						     sizeof(ious));
				fprintf(stderr,
					"[%3ds] %10.0f req/s %8.3f Gbit/s  "
					"errors %llu%s\n",
					first++,
					(double)(cur.completed - prev.completed) /
						dt,
					(double)(cur.bytes - prev.bytes) * 8 /
						dt / 1e9,
					(unsigned long long)cur.errors, ious);
			}
			prev = cur;
			t_prev = now;
		}
	}
	t_end = bench_now_ns();
	atomic_store(&bench_phase, PH_STOP);
	for (int k = 0; k < nw; k++)
		pthread_join(tids[k], NULL);
	/* Every endpoint is gone: what the issuer still holds was
	 * cancelled with its session. */
	if (o.issuer) {
		bench_issuer_stop(o.issuer, &ist);
		o.issuer = NULL;
	} else {
		/* Worker mode: each client worker's own issuer. */
		for (int k = 0; k < nw; k++)
			if (!ws[k].server)
				bench_issuer_stats_add(&ist, &ws[k].issuer);
	}

	bench_hist_init(&hist);
	for (int k = 0; k < nw; k++) {
		bench_hist_merge(&hist, &ws[k].hist);
		copied += ws[k].copied;
		delivered += ws[k].delivered;
		drops += ws[k].drops;
		retrans += ws[k].retransmits;
		zc += ws[k].tx_zc;
		zc_fixed += ws[k].tx_zc_fixed;
		caps_redeemed += atomic_load(&ws[k].caps_redeemed);
		/* The endpoints' final IOU counters, per side. */
		if (ws[k].server) {
			isv.iou_created += ws[k].st.iou_created;
			isv.iou_resolved += ws[k].st.iou_resolved;
			isv.iou_rejected += ws[k].st.iou_rejected;
			isv.iou_timed_out += ws[k].st.iou_timed_out;
			isv.iou_bad_token += ws[k].st.iou_bad_token;
			isv.iou_dup_push += ws[k].st.iou_dup_push;
			isv.iou_push_early += ws[k].st.iou_push_early;
			isv.iou_push_dropped += ws[k].st.iou_push_dropped;
			isv.calls_iou_refused += ws[k].st.calls_iou_refused;
		} else {
			icl.ious_promised += ws[k].st.ious_promised;
			icl.ious_pushed += ws[k].st.ious_pushed;
			icl.ious_dropped += ws[k].st.ious_dropped;
		}
		/* And their trace-block counters, all five per side: each
		 * side's meaning differs (ferry/endpoint.h). */
		trace_stats_add(ws[k].server ? &isv : &icl, &ws[k].st);
	}
	cl = sum(ws, nw, false);
	sv = sum(ws, nw, true);
	secs = (double)(t_end - t_start) / 1e9;
	{
		struct totals t = run_client ? cl : sv;
		double rps = (double)t.completed / secs;
		double gbps = (double)t.bytes * 8 / secs / 1e9;
		double cpb = delivered ? (double)copied / (double)delivered : 0;
		struct ferry_ep_stats fl;

		memset(&fl, 0, sizeof(fl));
		for (int k = 0; k < nw; k++) {
			fl.fault_loss += ws[k].st.fault_loss;
			fl.fault_dup += ws[k].st.fault_dup;
			fl.fault_reorder += ws[k].st.fault_reorder;
			fl.fault_corrupt += ws[k].st.fault_corrupt;
		}

		printf("%s%s: %.0f req/s, %.3f Gbit/s over %.2f s; "
		       "%llu completed, %llu errors\n",
		       o.floor ? "floor " : "rpc ", o.mode, rps, gbps, secs,
		       (unsigned long long)t.completed,
		       (unsigned long long)t.errors);
		if (run_client)
			printf("latency us: p50 %.2f  p99 %.2f  p99.9 %.2f  "
			       "max %.2f  mean %.2f\n",
			       us(bench_hist_percentile(&hist, 50)),
			       us(bench_hist_percentile(&hist, 99)),
			       us(bench_hist_percentile(&hist, 99.9)),
			       us(bench_hist_max(&hist)),
			       bench_hist_mean(&hist) / 1000.0);
		if (!o.floor)
			printf("payload bytes copied per byte delivered: %.4f; "
			       "dropped frames %llu; retransmits %llu\n",
			       cpb, (unsigned long long)drops,
			       (unsigned long long)retrans);
		if (!o.floor && drops) {
			/* Name the reasons: a drop is a bug or an attack. */
			struct ferry_ep_stats a;

			memset(&a, 0, sizeof(a));
			for (int k = 0; k < nw; k++) {
				const struct ferry_ep_stats *b = &ws[k].st;

				a.drop_truncated += b->drop_truncated;
				a.drop_bad_magic += b->drop_bad_magic;
				a.drop_bad_version += b->drop_bad_version;
				a.drop_bad_type += b->drop_bad_type;
				a.drop_malformed += b->drop_malformed;
				a.drop_oversized += b->drop_oversized;
				a.drop_unknown_session += b->drop_unknown_session;
				a.drop_unsupported += b->drop_unsupported;
				a.drop_stale += b->drop_stale;
				a.drop_no_buffer += b->drop_no_buffer;
			}
			printf("dropped: truncated %llu, bad magic %llu, bad "
			       "version %llu, bad type %llu, malformed %llu, "
			       "oversized %llu, unknown session %llu, "
			       "unsupported %llu, stale %llu, no buffer %llu\n",
			       (unsigned long long)a.drop_truncated,
			       (unsigned long long)a.drop_bad_magic,
			       (unsigned long long)a.drop_bad_version,
			       (unsigned long long)a.drop_bad_type,
			       (unsigned long long)a.drop_malformed,
			       (unsigned long long)a.drop_oversized,
			       (unsigned long long)a.drop_unknown_session,
			       (unsigned long long)a.drop_unsupported,
			       (unsigned long long)a.drop_stale,
			       (unsigned long long)a.drop_no_buffer);
		}
		if (o.keyring && run_client)
			printf("admission: channel token presented; %u token(s) "
			       "per call\n", o.caps);
		if (o.keyring && run_server)
			printf("admission: channel tokens required; %llu call "
			       "token(s) redeemed (warm-up included)\n",
			       (unsigned long long)caps_redeemed);
		if (o.deferred > 0)
			printf("deferred: %llu of %llu calls made carried IOUs "
			       "(%.3f), each token issued after 0..%u us; "
			       "issuer (%s): %llu issued, %llu completed (%llu "
			       "cancelled), late by %.1f us mean, %.1f us max\n",
			       (unsigned long long)cl.deferred_calls,
			       (unsigned long long)cl.table_calls,
			       cl.table_calls ? (double)cl.deferred_calls /
							(double)cl.table_calls
					      : 0.0,
			       o.deferred_delay_us,
			       o.issuer_thread ? "its own thread"
					       : "on the client threads",
			       (unsigned long long)ist.issued,
			       (unsigned long long)ist.completed,
			       (unsigned long long)ist.cancelled,
			       ist.late_mean_us, ist.late_max_us);
		if (run_server && o.keyring &&
		    (isv.iou_created || o.deferred > 0))
			printf("IOUs (server): created %llu, resolved %llu, "
			       "rejected %llu (timed out %llu, bad token %llu); "
			       "pushes early %llu, dropped %llu, duplicate "
			       "%llu; calls refused %llu\n",
			       (unsigned long long)isv.iou_created,
			       (unsigned long long)isv.iou_resolved,
			       (unsigned long long)isv.iou_rejected,
			       (unsigned long long)isv.iou_timed_out,
			       (unsigned long long)isv.iou_bad_token,
			       (unsigned long long)isv.iou_push_early,
			       (unsigned long long)isv.iou_push_dropped,
			       (unsigned long long)isv.iou_dup_push,
			       (unsigned long long)isv.calls_iou_refused);
		if (run_client && o.deferred > 0) {
			/* Promises taken back (ferry_iou_cancel) are neither
			 * pushed nor dropped: ferry_cap_issue() takes one back
			 * when the issuer answers before it returns (a delay
			 * near 0; the call then carries the token itself), and
			 * the client takes back a call's IOUs when it cannot
			 * make them all.  Promises cancelled when their
			 * session ends count as dropped. */
			uint64_t back = icl.ious_promised - icl.ious_pushed -
					icl.ious_dropped;

			printf("IOUs (client): promised %llu, pushed %llu, "
			       "dropped %llu",
			       (unsigned long long)icl.ious_promised,
			       (unsigned long long)icl.ious_pushed,
			       (unsigned long long)icl.ious_dropped);
			if (icl.ious_promised >= icl.ious_pushed + icl.ious_dropped)
				printf("; %llu neither (taken back: answered "
				       "before their call was made, or their "
				       "call not made)",
				       (unsigned long long)back);
			printf("\n");
		}
		if (!o.floor && o.zc_threshold)
			printf("SEND_ZC packets %llu, %llu of them from "
			       "registered memory\n",
			       (unsigned long long)zc,
			       (unsigned long long)zc_fixed);
		if (o.verify) {
			/* In loop mode the server's own view counts too. */
			struct totals both = t;

			if (run_client && run_server) {
				both.dups = cl.dups > sv.dups ? cl.dups : sv.dups;
				both.ooo = cl.ooo > sv.ooo ? cl.ooo : sv.ooo;
				both.corrupt = cl.corrupt + sv.corrupt;
			}
			t.lost = both.lost;
			t.dups = both.dups;
			t.ooo = both.ooo;
			t.corrupt = both.corrupt;
			printf("verify: lost %llu, duplicates %llu, out_of_order "
			       "%llu, corrupt %llu\n",
			       (unsigned long long)t.lost,
			       (unsigned long long)t.dups,
			       (unsigned long long)t.ooo,
			       (unsigned long long)t.corrupt);
			if (t.lost || t.dups || t.ooo || t.corrupt)
				rc = 1;
		}
		if (fl.fault_loss + fl.fault_dup + fl.fault_reorder +
		    fl.fault_corrupt)
			printf("faults injected: loss %llu, dup %llu, reorder "
			       "%llu, corrupt %llu\n",
			       (unsigned long long)fl.fault_loss,
			       (unsigned long long)fl.fault_dup,
			       (unsigned long long)fl.fault_reorder,
			       (unsigned long long)fl.fault_corrupt);
		if (t.errors)
			rc = 1;
		if (run_client && t.completed == 0) {
			fprintf(stderr, "ferry-bench: no call completed\n");
			rc = 1;
		}
		for (int k = 0; k < nw; k++)
			if (ws[k].err && ws[k].errmsg[0])
				fprintf(stderr, "ferry-bench: %s\n",
					ws[k].errmsg);
		/* Both ends are ferry: a malformed trace or attribute block
		 * between them is a bug, even when no call failed for it. */
		if (isv.trace_blocks_bad + icl.trace_blocks_bad)
			fprintf(stderr,
				"ferry-bench: malformed trace blocks: %llu "
				"received by the server, %llu by the client\n",
				(unsigned long long)isv.trace_blocks_bad,
				(unsigned long long)icl.trace_blocks_bad);
		if (o.json) {
			FILE *f = fopen(o.json, "w");

			if (!f) {
				fprintf(stderr, "ferry-bench: %s: %s\n", o.json,
					strerror(errno));
				return 1;
			}
			fprintf(f,
				"{\"mode\":\"%s%s\",\"dataplane\":\"%s\","
				"\"size\":%u,\"resp_size\":%u,\"inflight\":%u,"
				"\"sessions\":%u,\"threads\":%u,"
				"\"busy_poll\":%s,\"duration_s\":%.3f,"
				"\"rps\":%.1f,\"gbps\":%.4f,"
				"\"p50_us\":%.3f,\"p99_us\":%.3f,"
				"\"p999_us\":%.3f,\"max_us\":%.3f,"
				"\"mean_us\":%.3f,\"completed\":%llu,"
				"\"errors\":%llu,\"copies_per_byte\":%.4f,"
				"\"payload_copied\":%llu,"
				"\"payload_delivered\":%llu,"
				"\"dropped\":%llu,\"retransmits\":%llu,"
				"\"verify\":%s,\"lost\":%llu,\"duplicates\":%llu,"
				"\"out_of_order\":%llu,\"corrupt\":%llu,"
				"\"faults\":{\"loss\":%llu,\"dup\":%llu,"
				"\"reorder\":%llu,\"corrupt\":%llu},"
				"\"admission\":%s,\"caps\":%u,"
				"\"caps_redeemed\":%llu,",
				o.floor ? "floor-" : "", o.mode, o.dataplane,
				o.size, o.resp_size, o.inflight, o.sessions,
				o.threads, o.busy_poll ? "true" : "false", secs,
				rps, gbps, us(bench_hist_percentile(&hist, 50)),
				us(bench_hist_percentile(&hist, 99)),
				us(bench_hist_percentile(&hist, 99.9)),
				us(bench_hist_max(&hist)),
				bench_hist_mean(&hist) / 1000.0,
				(unsigned long long)t.completed,
				(unsigned long long)t.errors, cpb,
				(unsigned long long)copied,
				(unsigned long long)delivered,
				(unsigned long long)drops,
				(unsigned long long)retrans,
				o.verify ? "true" : "false",
				(unsigned long long)t.lost,
				(unsigned long long)t.dups,
				(unsigned long long)t.ooo,
				(unsigned long long)t.corrupt,
				(unsigned long long)fl.fault_loss,
				(unsigned long long)fl.fault_dup,
				(unsigned long long)fl.fault_reorder,
				(unsigned long long)fl.fault_corrupt,
				o.keyring ? "true" : "false", o.caps,
				(unsigned long long)caps_redeemed);
			/* Deferred tokens: the server's IOU table when this
			 * process runs a server, the client's promises when
			 * it runs a client; "iou_counters" says which the
			 * summary line shows. */
			fprintf(f,
				"\"deferred\":%.4f,\"deferred_delay_us\":%u,"
				"\"deferred_calls\":%llu,\"table_calls\":%llu,"
				"\"iou_counters\":\"%s\"",
				o.deferred, o.deferred_delay_us,
				(unsigned long long)cl.deferred_calls,
				(unsigned long long)cl.table_calls,
				run_server ? "server" : "client");
			if (run_server)
				fprintf(f,
					",\"iou_created\":%llu,"
					"\"iou_resolved\":%llu,"
					"\"iou_rejected\":%llu,"
					"\"iou_timed_out\":%llu,"
					"\"iou_bad_token\":%llu,"
					"\"iou_push_early\":%llu,"
					"\"iou_push_dropped\":%llu",
					(unsigned long long)isv.iou_created,
					(unsigned long long)isv.iou_resolved,
					(unsigned long long)isv.iou_rejected,
					(unsigned long long)isv.iou_timed_out,
					(unsigned long long)isv.iou_bad_token,
					(unsigned long long)isv.iou_push_early,
					(unsigned long long)isv.iou_push_dropped);
			if (run_client)
				fprintf(f,
					",\"ious_promised\":%llu,"
					"\"ious_pushed\":%llu,"
					"\"ious_dropped\":%llu",
					(unsigned long long)icl.ious_promised,
					(unsigned long long)icl.ious_pushed,
					(unsigned long long)icl.ious_dropped);
			/* Trace blocks (FF_TRACE), per side that ran; the
			 * server's and the client's counters mean different
			 * things (ferry/endpoint.h). */
			fprintf(f, ",\"trace\":{");
			if (run_server)
				trace_stats_json(f, "server", &isv);
			if (run_server && run_client)
				fprintf(f, ",");
			if (run_client)
				trace_stats_json(f, "client", &icl);
			fprintf(f, "}");
			/* The issuer: "thread" (--issuer-thread: sleeps,
			 * and the wake-ups an issue signalled) or "worker"
			 * (completed on the client threads: poll-loop passes
			 * that completed any, polls that spun because a
			 * token was due within 1 ms). */
			if (ist.issued && o.issuer_thread)
				fprintf(f,
					",\"issuer\":{\"mode\":\"thread\","
					"\"issued\":%llu,"
					"\"completed\":%llu,"
					"\"cancelled\":%llu,"
					"\"late_mean_us\":%.2f,"
					"\"late_max_us\":%.2f,"
					"\"sleeps\":%llu,\"signals\":%llu}",
					(unsigned long long)ist.issued,
					(unsigned long long)ist.completed,
					(unsigned long long)ist.cancelled,
					ist.late_mean_us, ist.late_max_us,
					(unsigned long long)ist.wakeups,
					(unsigned long long)ist.signals);
			else if (ist.issued)
				fprintf(f,
					",\"issuer\":{\"mode\":\"worker\","
					"\"issued\":%llu,"
					"\"completed\":%llu,"
					"\"cancelled\":%llu,"
					"\"late_mean_us\":%.2f,"
					"\"late_max_us\":%.2f,"
					"\"passes\":%llu,"
					"\"spin_polls\":%llu}",
					(unsigned long long)ist.issued,
					(unsigned long long)ist.completed,
					(unsigned long long)ist.cancelled,
					ist.late_mean_us, ist.late_max_us,
					(unsigned long long)ist.passes,
					(unsigned long long)ist.spin_polls);
			/* CPU time per role and datagrams, warm-up
			 * included: what a figure's ratio is made of.  The
			 * worker-mode issuer's time ("issuer") is the client
			 * threads' time completing tokens, part of
			 * "client"; "issuer_in_client" says so. */
			{
				double cs = 0, cc = 0;
				uint64_t tx = 0, rx = 0;

				for (int k = 0; k < nw; k++) {
					if (ws[k].server)
						cs += ws[k].cpu_s;
					else
						cc += ws[k].cpu_s;
					tx += ws[k].st.tx_pkts;
					rx += ws[k].st.rx_pkts;
				}
				fprintf(f,
					",\"cpu_s\":{\"server\":%.3f,"
					"\"client\":%.3f,\"issuer\":%.3f,"
					"\"issuer_in_client\":%s},"
					"\"tx_pkts\":%llu,\"rx_pkts\":%llu",
					cs, cc, ist.cpu_s,
					ist.issued && !o.issuer_thread
						? "true"
						: "false",
					(unsigned long long)tx,
					(unsigned long long)rx);
			}
			fprintf(f, "}\n");
			if (fclose(f) != 0) {
				fprintf(stderr, "ferry-bench: %s: %s\n", o.json,
					strerror(errno));
				return 1;
			}
		}
	}
	free(ws);
	free(tids);
	bench_auth_free(&auth);
	bench_trace_end(&o);
	return rc;
}
