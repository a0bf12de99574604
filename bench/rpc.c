/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench: what the RPC roles share -- the endpoint settings, the
 * counters they publish, the --verify patterns -- and the clocks and CPU
 * pinning every role uses.  The roles: rpc_server.c, rpc_client.c.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ferry/ferry.h>
#ifdef FERRY_BENCH_CONTROL
#include <ferry/metrics.h>
#endif

#include "rpc.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The clock of every figure: the TSC where the kernel itself keeps time by
 * it (its clocksource is "tsc": a constant rate, in step across CPUs),
 * scaled to CLOCK_MONOTONIC's nanoseconds at start; else CLOCK_MONOTONIC.
 * A client stamps each call twice; through clock_gettime (19 ns here, the
 * TSC 8.5) that was a fifth of a busy-polling client's time, where the
 * peers it is compared with stamp once per burst (docs/bench.md, "The
 * memif fast path").
 */
static struct {
	bool on;
	uint64_t tsc0, ns0;
	uint64_t mult; /* nanoseconds per tick, << 32 */
} bclock;

#if defined(__x86_64__)
#include <x86intrin.h>

static bool kernel_keeps_tsc(void)
{
	char src[32] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
			"current_clocksource", "r");

	if (!f)
		return false;
	if (!fgets(src, sizeof(src), f))
		src[0] = 0;
	fclose(f);
	return strcmp(src, "tsc\n") == 0;
}

void bench_clock_init(void)
{
	uint64_t n0, c0, n1, c1;

	if (bclock.on || !kernel_keeps_tsc())
		return;
	n0 = mono_ns();
	c0 = __rdtsc();
	do
		n1 = mono_ns();
	while (n1 - n0 < 20000000ull); /* 20 ms */
	c1 = __rdtsc();
	if (c1 <= c0)
		return;
	bclock.mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) /
				 (c1 - c0));
	bclock.tsc0 = c1;
	bclock.ns0 = n1;
	bclock.on = bclock.mult != 0;
}

uint64_t bench_now_ns(void)
{
	if (bclock.on) {
		/* A CPU a few ticks behind the one that calibrated reads
		 * the start, not 2^64 ticks on. */
		int64_t t = (int64_t)(__rdtsc() - bclock.tsc0);
		unsigned __int128 d = t > 0 ? (uint64_t)t : 0;

		return bclock.ns0 + (uint64_t)((d * bclock.mult) >> 32);
	}
	return mono_ns();
}
#else
void bench_clock_init(void)
{
}

uint64_t bench_now_ns(void)
{
	return mono_ns();
}
#endif

double bench_thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Byte i of call @seq's pattern: cheap to make, and differs between
 * calls and positions, so reordered, duplicated or flipped bytes show. */
static uint8_t pat(uint64_t seq, size_t i)
{
	uint64_t x = (seq * 0x9e3779b97f4a7c15ull) ^ (i >> 3) * 0xbf58476d1ce4e5b9ull;

	return (uint8_t)(x >> ((i & 7) * 8));
}

void bench_pattern_fill(uint8_t *p, size_t off, size_t len, uint64_t seq)
{
	for (size_t i = off; i < len; i++)
		p[i] = pat(seq, i);
}

bool bench_pattern_ok(const uint8_t *p, size_t off, size_t len, uint64_t seq)
{
	for (size_t i = off; i < len; i++)
		if (p[i] != pat(seq, i))
			return false;
	return true;
}

/* Endpoint settings both roles share: pools sized for the workload. */
void bench_rpc_config(const struct bench_opts *o, struct ferry_ep_config *cfg,
		      uint32_t sessions, bool server, int idx)
{
	/* With --keyring a request's message may hold a token table before
	 * its payload (--caps), and a server reassembles both in one buffer:
	 * leave room for the largest table. */
	uint32_t req = o->size + (o->keyring ? FERRY_CAPS_MAX_LEN : 0);
	uint32_t big = max_u32(req, o->resp_size);
	uint32_t calls = sessions * o->inflight;

	ferry_ep_config_init(cfg);
	cfg->dataplane = o->dataplane;
	cfg->busy_poll = o->busy_poll;
	cfg->max_sessions = max_u32(sessions, 1);
	/* A standalone server does not know its clients' --inflight: it
	 * offers 256 slots per session (or more if asked), and each session
	 * uses the smaller of both sides' counts. */
	cfg->session_slots = max_u32(o->inflight, 1);
	if (server && strcmp(o->mode, "loop") != 0)
		cfg->session_slots = max_u32(o->inflight, 256);
	if (o->max_frame)
		cfg->max_frame = o->max_frame;
	cfg->zc_threshold = o->zc_threshold;
	cfg->no_gso = o->no_gso;
	cfg->no_gro = o->no_gro;
	if (o->cc)
		cfg->cc = o->cc;
	cfg->cc_target_us = o->cc_target_us;
	cfg->max_msg = max_u32(cfg->max_msg, big);
	/* Requests and responses in flight, twice over for slack. */
	cfg->pool[0] = (struct ferry_pool_class){ 512, max_u32(4096, 4 * calls) };
	cfg->pool[1] = (struct ferry_pool_class){ 0, 0 };
	cfg->pool[2] = (struct ferry_pool_class){ 0, 0 };
	cfg->pool[3] = (struct ferry_pool_class){ 0, 0 };
	if (big > 512) {
		/* Twice the calls in flight (a request and a response
		 * each), but at most BENCH_BIG_BYTES of big buffers: the
		 * memory is faulted in up front. */
		uint32_t n = 2 * calls + 8, cap = bench_big_cap(big);
		uint64_t quota;

		cfg->pool[1] = (struct ferry_pool_class){ big,
							  n < cap ? n : max_u32(cap, 4) };
		/* A session may reassemble as many large messages as it has
		 * calls in flight (the library's default is one buffer of
		 * the largest class: with one class, one message at a time,
		 * and the others' fragments refused and sent again). */
		quota = (uint64_t)big * cfg->session_slots;
		cfg->reasm_quota = quota > UINT32_MAX ? UINT32_MAX
						      : (uint32_t)quota;
	}
	if (o->keyring) {
		/* Deferred tokens.  A server keeps a table entry per IOU a
		 * call names, and one wait per pending entry plus one per
		 * call waiting (ferry_call_caps_ready); it does not know its
		 * clients' --caps (2 if not given).  A client keeps a promise
		 * until its PUSH is acknowledged, which may be after its call
		 * ended and the slot made a new one: twice over, and twice
		 * again for acknowledgements held up by loss. */
		uint32_t k = o->caps ? o->caps : 2;
		uint32_t slots = 1;

		while (slots < cfg->session_slots)
			slots <<= 1;
		if (server)
			cfg->iou_max = cfg->max_sessions * slots * (k + 1) +
				       64 * cfg->max_sessions;
		else if (o->deferred > 0)
			cfg->iou_max = calls * k * 4 + 64;
		/* Each IOU's token sits in a pool buffer: the client's copy
		 * until acknowledged, the server's until the call ends. */
		cfg->pool[0].count += 2 * calls * k;
	}
	cfg->bind_addr = bench_bind_addr(o, server);
	cfg->dpdk = &o->dpdk;
	if (server) {
		cfg->port = bench_server_port(o, idx);
		cfg->reuseport = o->threads > 1;
		/* Every client thread's --sessions (up to 100,000 each)
		 * come from one address at once: the bench measures calls,
		 * not how fast a flood of CONNECTs is let in (the per-source
		 * RETRY bucket is lifted too: bench_rpc_server). */
		cfg->connect_rate = 0;
		cfg->connect_rate_per_source = 0;
	}
	if (o->wire_mode)
		cfg->wire_mode = strcmp(o->wire_mode, "none") == 0 ? FERRY_WIRE_NONE
				 : strcmp(o->wire_mode, "aead") == 0
					 ? FERRY_WIRE_AEAD
					 : FERRY_WIRE_MAC;
	cfg->retry_never = o->retry_never;
	if (o->peer_timeout_ms) {
		cfg->peer_timeout_ms = o->peer_timeout_ms;
		cfg->keepalive_ms = o->peer_timeout_ms / 5 ? o->peer_timeout_ms / 5 : 1;
	}
	cfg->faults.loss = o->loss;
	cfg->faults.dup = o->dup;
	cfg->faults.reorder = o->reorder;
	cfg->faults.corrupt = o->corrupt;
	cfg->faults.delay = o->delay;
	cfg->faults.delay_us = o->delay_us;
	cfg->faults.truncate = o->truncate;
	cfg->faults.garbage = o->garbage;
	cfg->faults.replay = o->replay;
	/* One seed per endpoint, derived from --seed: reproducible, and
	 * the endpoints do not inject in lockstep. */
	cfg->faults.seed = (o->seed + 1) * 0x9e3779b97f4a7c15ull ^
			   (uint64_t)(server ? 0x5e5e : 0xc1c1) << 32 ^
			   (uint64_t)idx;
}

/* The endpoint's counters for the progress line (its IOU counters, with
 * --keyring), about every 100 ms. */
void bench_rpc_publish(struct bench_worker *w, struct ferry_endpoint *ep,
		       uint64_t *next)
{
	struct ferry_ep_stats st;
	uint64_t now;

	if (!w->o->keyring)
		return;
	now = bench_now_ns();
	if (now < *next)
		return;
	*next = now + 100000000ull;
	ferry__endpoint_stats(ep, &st);
	bench_publish(w, &st);
}

void bench_rpc_stats(struct bench_worker *w, struct ferry_endpoint *ep)
{
	struct ferry_ep_stats st;

	ferry__endpoint_stats(ep, &st);
	bench_publish(w, &st);
	w->cpu_s = bench_thread_cpu_s();
}

void bench_rpc_export(struct bench_worker *w, struct ferry_endpoint *ep)
{
	char name[32];

	snprintf(name, sizeof(name), "%s%d", w->server ? "server" : "client",
		 w->idx);
#ifdef FERRY_BENCH_TELEMETRY
	if (bench_is_dpdk(w->o))
		bench_telemetry_add(ep, name);
#endif
#ifdef FERRY_BENCH_CONTROL
	/* Only -ENOMEM can fail here: the endpoint then goes uncounted. */
	if (w->o->metrics)
		ferry_metrics_add_endpoint(w->o->metrics, ep, name);
#endif
	(void)ep;
}

void bench_rpc_unexport(struct bench_worker *w, struct ferry_endpoint *ep)
{
#ifdef FERRY_BENCH_TELEMETRY
	if (bench_is_dpdk(w->o))
		bench_telemetry_remove(ep);
#endif
#ifdef FERRY_BENCH_CONTROL
	if (w->o->metrics)
		ferry_metrics_remove_endpoint(w->o->metrics, ep);
#endif
	(void)w;
	(void)ep;
}

/* --verify: count what a verdict says went wrong. */
void bench_count_verdict(struct bench_worker *w, uint32_t v)
{
	if (v & BENCH_V_DUP)
		bench_count(w, BC_DUPS, 1);
	if (v & BENCH_V_OOO)
		bench_count(w, BC_OOO, 1);
	if (v & BENCH_V_CORRUPT)
		bench_count(w, BC_CORRUPT, 1);
}
