/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench's RPC roles: a server endpoint with an echo handler, and
 * client endpoints keeping --inflight calls outstanding on each session.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ferry/ferry.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Endpoint settings both roles share: pools sized for the workload. */
static void bench_config(const struct bench_opts *o, struct ferry_ep_config *cfg,
			 uint32_t sessions, bool server)
{
	uint32_t big = max_u32(o->size, o->resp_size);
	uint32_t calls = sessions * o->inflight;

	ferry_ep_config_init(cfg);
	cfg->dataplane = o->dataplane;
	cfg->busy_poll = o->busy_poll;
	cfg->max_sessions = max_u32(sessions, 1);
	cfg->session_slots = max_u32(o->inflight, 1);
	if (o->max_frame)
		cfg->max_frame = o->max_frame;
	cfg->zc_threshold = o->zc_threshold;
	cfg->max_msg = max_u32(cfg->max_msg, big);
	/* Requests and responses in flight, twice over for slack. */
	cfg->pool[0] = (struct ferry_pool_class){ 512, max_u32(4096, 4 * calls) };
	cfg->pool[1] = (struct ferry_pool_class){ 0, 0 };
	cfg->pool[2] = (struct ferry_pool_class){ 0, 0 };
	cfg->pool[3] = (struct ferry_pool_class){ 0, 0 };
	if (big > 512) {
		/* Twice the calls in flight, but at most 256 MiB of big
		 * buffers: the memory is faulted in up front, and io_uring
		 * registers at most 1 GiB as one buffer. */
		uint32_t n = 2 * calls + 8, cap = (uint32_t)((256u << 20) / big);

		cfg->pool[1] = (struct ferry_pool_class){ big,
							  n < cap ? n : max_u32(cap, 4) };
	}
	if (server) {
		cfg->bind_addr = o->addr;
		cfg->port = o->port;
		cfg->reuseport = o->threads > 1;
	}
}

static void worker_stats(struct bench_worker *w, struct ferry_endpoint *ep)
{
	struct ferry_ep_stats st;

	ferry_endpoint_stats(ep, &st);
	w->copied = st.payload_copied;
	w->delivered = st.payload_delivered;
	w->drops = ferry_ep_stats_drops(&st);
	w->retransmits = st.retransmits;
	w->allocs = st.msgbuf_allocs;
	w->st = st;
	w->tx_zc = st.tx_zc;
	w->tx_zc_fixed = st.tx_zc_fixed;
}

/* --- server --------------------------------------------------------------- */

struct rpc_srv {
	struct bench_worker *w;
	struct ferry_endpoint *ep;
};

static void srv_handler(struct ferry_call *c, void *ctx)
{
	struct rpc_srv *sv = ctx;
	struct bench_worker *w = sv->w;
	uint32_t rs = w->o->resp_size;
	struct ferry_msgbuf *mb;
	size_t len;
	const uint8_t *p = ferry_call_req(c, &len);
	int ret;

	if (len >= BENCH_HDR_LEN)
		memcpy(&rs, p, sizeof(rs));
	if (rs == len) {
		/* Echo in place: the request's buffer is the response. */
		mb = ferry_call_take_req(c);
	} else {
		ret = ferry_msgbuf_alloc(sv->ep, rs, &mb);
		if (ret < 0) {
			ferry_call_respond_error(c, ret);
			atomic_fetch_add_explicit(&w->errors, 1,
						  memory_order_relaxed);
			return;
		}
	}
	ferry_call_respond(c, mb);
	if (atomic_load_explicit(&bench_phase, memory_order_relaxed) ==
	    PH_MEASURE) {
		atomic_fetch_add_explicit(&w->completed, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->bytes, len + rs,
					  memory_order_relaxed);
	}
}

void *bench_rpc_server(void *arg)
{
	struct bench_worker *w = arg;
	const struct bench_opts *o = w->o;
	struct ferry_ep_config cfg;
	struct rpc_srv sv = { .w = w };
	int ret;

	bench_pin(w->cpu);
	/* In loop mode the clients are known; a standalone server takes up
	 * to 64 sessions per thread. */
	bench_config(o, &cfg,
		     strcmp(o->mode, "loop") == 0 ? o->sessions * o->threads
						 : 64,
		     true);
	ret = ferry_endpoint_create(&cfg, &sv.ep);
	if (ret == 0)
		ret = ferry_endpoint_register(sv.ep, BENCH_METHOD, srv_handler,
					      &sv);
	if (ret < 0) {
		w->err = ret;
		snprintf(w->errmsg, sizeof(w->errmsg),
			 "server endpoint on %s:%u: %s", o->addr, o->port,
			 ferry_strerror(ret));
		ferry_endpoint_destroy(sv.ep);
		atomic_store(&w->ready, true);
		return NULL;
	}
	atomic_store(&w->ready, true);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP)
		ferry_endpoint_poll(sv.ep, 10);
	worker_stats(w, sv.ep);
	ferry_endpoint_destroy(sv.ep);
	return NULL;
}

/* --- client --------------------------------------------------------------- */

struct rpc_slot {
	struct rpc_cli *cl;
	struct ferry_session *s;
	uint64_t t0;
	bool parked; /* no buffer was free: retry from the poll loop */
};

struct rpc_cli {
	struct bench_worker *w;
	struct ferry_endpoint *ep;
	struct rpc_slot *slots;
	uint32_t nslots;
	uint32_t parked;
};

static void cli_cont(int res, const void *data, size_t len, void *ctx);

static void cli_issue(struct rpc_slot *sl)
{
	struct rpc_cli *cl = sl->cl;
	const struct bench_opts *o = cl->w->o;
	struct ferry_msgbuf *mb;
	int ret;

	ret = ferry_msgbuf_alloc(cl->ep, o->size, &mb);
	if (ret < 0) {
		if (!sl->parked) {
			sl->parked = true;
			cl->parked++;
		}
		return;
	}
	if (o->size >= BENCH_HDR_LEN)
		memcpy(ferry_msgbuf_data(mb), &o->resp_size, BENCH_HDR_LEN);
	sl->t0 = bench_now_ns();
	ret = ferry_call(sl->s, BENCH_METHOD, mb, cli_cont, sl);
	if (ret < 0) {
		ferry_msgbuf_free(mb);
		atomic_fetch_add_explicit(&cl->w->errors, 1,
					  memory_order_relaxed);
	}
}

static void cli_cont(int res, const void *data, size_t len, void *ctx)
{
	struct rpc_slot *sl = ctx;
	struct bench_worker *w = sl->cl->w;
	int phase = atomic_load_explicit(&bench_phase, memory_order_relaxed);

	(void)data;
	if (phase == PH_STOP)
		return;
	if (res < 0) {
		atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
		if (!w->err) {
			w->err = res;
			snprintf(w->errmsg, sizeof(w->errmsg), "call failed: %s",
				 ferry_strerror(res));
		}
	} else if (phase == PH_MEASURE) {
		bench_hist_record(&w->hist, bench_now_ns() - sl->t0);
		atomic_fetch_add_explicit(&w->completed, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->bytes, w->o->size + len,
					  memory_order_relaxed);
	}
	if (ferry_session_is_open(sl->s))
		cli_issue(sl);
}

static void cli_retry_parked(struct rpc_cli *cl)
{
	for (uint32_t i = 0; i < cl->nslots && cl->parked; i++) {
		struct rpc_slot *sl = &cl->slots[i];

		if (!sl->parked)
			continue;
		sl->parked = false;
		cl->parked--;
		cli_issue(sl);
	}
}

void *bench_rpc_client(void *arg)
{
	struct bench_worker *w = arg;
	const struct bench_opts *o = w->o;
	struct ferry_session **sess = NULL;
	struct ferry_ep_config cfg;
	struct rpc_cli cl = { .w = w };
	uint64_t deadline;
	int ret;

	bench_pin(w->cpu);
	bench_config(o, &cfg, o->sessions, false);
	ret = ferry_endpoint_create(&cfg, &cl.ep);
	if (ret < 0) {
		w->err = ret;
		snprintf(w->errmsg, sizeof(w->errmsg), "client endpoint: %s",
			 ferry_strerror(ret));
		atomic_store(&w->ready, true);
		return NULL;
	}
	cl.nslots = o->sessions * o->inflight;
	cl.slots = calloc(cl.nslots, sizeof(*cl.slots));
	sess = calloc(o->sessions, sizeof(*sess));
	if (!cl.slots || !sess) {
		w->err = -ENOMEM;
		snprintf(w->errmsg, sizeof(w->errmsg), "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < o->sessions; i++) {
		ret = ferry_session_connect(cl.ep, o->addr, o->port, NULL, NULL,
					    NULL, &sess[i]);
		if (ret < 0) {
			w->err = ret;
			snprintf(w->errmsg, sizeof(w->errmsg),
				 "connect to %s:%u: %s", o->addr, o->port,
				 ferry_strerror(ret));
			goto out;
		}
	}
	/* Wait for every handshake, so the warm-up starts from open
	 * sessions and a dead server is reported as such. */
	deadline = bench_now_ns() + 6000000000ull;
	for (;;) {
		uint32_t open = 0;

		for (uint32_t i = 0; i < o->sessions; i++)
			open += (uint32_t)ferry_session_is_open(sess[i]);
		if (open == o->sessions)
			break;
		if (bench_now_ns() > deadline ||
		    atomic_load(&bench_phase) == PH_STOP) {
			w->err = -ETIMEDOUT;
			snprintf(w->errmsg, sizeof(w->errmsg),
				 "connect to %s:%u: no answer (is a server "
				 "running there?)",
				 o->addr, o->port);
			goto out;
		}
		ferry_endpoint_poll(cl.ep, 1);
	}
	for (uint32_t i = 0; i < cl.nslots; i++) {
		cl.slots[i].cl = &cl;
		cl.slots[i].s = sess[i / o->inflight];
	}
	atomic_store(&w->ready, true);
	for (uint32_t i = 0; i < cl.nslots; i++)
		cli_issue(&cl.slots[i]);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		ferry_endpoint_poll(cl.ep, 10);
		if (cl.parked)
			cli_retry_parked(&cl);
	}
out:
	atomic_store(&w->ready, true);
	for (uint32_t i = 0; sess && i < o->sessions; i++)
		ferry_session_close(sess[i]);
	worker_stats(w, cl.ep);
	ferry_endpoint_destroy(cl.ep);
	free(cl.slots);
	free(sess);
	return NULL;
}
