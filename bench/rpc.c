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
#ifdef FERRY_BENCH_CONTROL
#include <ferry/token.h>
#endif

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

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Big buffers an endpoint gets at most, for messages of @big bytes. */
#define BENCH_BIG_BYTES (1ull << 30)
static uint32_t bench_big_cap(uint32_t big)
{
	return (uint32_t)(BENCH_BIG_BYTES / big);
}

/* Endpoint settings both roles share: pools sized for the workload. */
static void bench_config(const struct bench_opts *o, struct ferry_ep_config *cfg,
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

		cfg->pool[1] = (struct ferry_pool_class){ big,
							  n < cap ? n : max_u32(cap, 4) };
	}
	cfg->bind_addr = bench_bind_addr(o, server);
	cfg->dpdk_eal = o->eal;
	cfg->dpdk_port = o->dpdk_port;
	cfg->dpdk_queues = (uint16_t)o->dpdk_queues;
	if (server) {
		cfg->port = bench_server_port(o, idx);
		cfg->reuseport = o->threads > 1;
	}
	cfg->wire_csum = o->wire_csum;
	if (o->peer_timeout_ms) {
		cfg->peer_timeout_ms = o->peer_timeout_ms;
		cfg->keepalive_ms = o->peer_timeout_ms / 5 ? o->peer_timeout_ms / 5 : 1;
	}
	cfg->faults.loss = o->loss;
	cfg->faults.dup = o->dup;
	cfg->faults.reorder = o->reorder;
	cfg->faults.corrupt = o->corrupt;
	/* One seed per endpoint, derived from --seed: reproducible, and
	 * the endpoints do not inject in lockstep. */
	cfg->faults.seed = (o->seed + 1) * 0x9e3779b97f4a7c15ull ^
			   (uint64_t)(server ? 0x5e5e : 0xc1c1) << 32 ^
			   (uint64_t)idx;
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
	w->retransmits = st.retransmits;
	w->tx_zc = st.tx_zc;
	w->tx_zc_fixed = st.tx_zc_fixed;
}

/* --- server --------------------------------------------------------------- */

struct rpc_srv {
	struct bench_worker *w;
	struct ferry_endpoint *ep;
#ifdef FERRY_BENCH_CONTROL
	/* Where redeemed tokens' contents go: 4.6 KiB, kept off the stack
	 * of the handler and written only by this server's thread. */
	struct ferry_token_info info;
#endif
};

/*
 * --caps: redeem (verify) every token the call carries, as the handler of
 * a real service would before acting on them.  Returns 0, or the first
 * failure, with which the call is then refused.
 */
static int srv_redeem(struct rpc_srv *sv, struct ferry_call *c)
{
#ifdef FERRY_BENCH_CONTROL
	const struct bench_auth *a = sv->w->o->auth;
	unsigned n = ferry_call_ncaps(c);

	for (unsigned i = 0; i < n; i++) {
		int ret;

		if (!a)
			return -EPERM; /* tokens, but nothing to check them */
		ret = ferry_call_redeem(c, i, a->kr, FERRY_TOKEN_SUBREQUEST,
					BENCH_AUDIENCE, &sv->info);
		if (ret < 0)
			return ret;
	}
	if (n)
		atomic_fetch_add_explicit(&sv->w->caps_redeemed, n,
					  memory_order_relaxed);
	return 0;
#else
	(void)sv;
	return ferry_call_ncaps(c) ? -EPERM : 0;
#endif
}

/* --verify: count what a verdict says went wrong. */
static void count_verdict(struct bench_worker *w, uint32_t v)
{
	if (v & BENCH_V_DUP)
		atomic_fetch_add_explicit(&w->dups, 1, memory_order_relaxed);
	if (v & BENCH_V_OOO)
		atomic_fetch_add_explicit(&w->ooo, 1, memory_order_relaxed);
	if (v & BENCH_V_CORRUPT)
		atomic_fetch_add_explicit(&w->corrupt, 1, memory_order_relaxed);
}

/* --verify, server side: the next sequence number each session owes. */
static void srv_on_session(struct ferry_session *s,
			   enum ferry_session_event ev, int res, void *ctx)
{
	(void)res;
	(void)ctx;
	if (ev == FERRY_SESSION_OPENED)
		ferry_session_set_data(s, calloc(1, sizeof(uint64_t)));
	else
		free(ferry_session_data(s));
}

/* Check a request: in order, once, intact.  Returns the verdict bits. */
static uint32_t srv_verify(struct ferry_call *c, const uint8_t *p, size_t len,
			   uint64_t *seq)
{
	uint64_t *next = ferry_session_data(ferry_call_session(c));
	uint32_t v = 0;

	*seq = get_u64(p + 8);
	if (!next)
		return BENCH_V_CORRUPT;
	if (*seq < *next + 1)
		v |= BENCH_V_DUP;
	else if (*seq > *next + 1)
		v |= BENCH_V_OOO;
	if (*seq > *next)
		*next = *seq;
	if (!bench_pattern_ok(p, BENCH_VHDR_LEN, len, *seq))
		v |= BENCH_V_CORRUPT;
	return v;
}

static void srv_handler(struct ferry_call *c, void *ctx)
{
	struct rpc_srv *sv = ctx;
	struct bench_worker *w = sv->w;
	uint32_t rs = w->o->resp_size, verdict = 0;
	struct ferry_msgbuf *mb;
	size_t len;
	const uint8_t *p = ferry_call_req(c, &len);
	uint64_t seq = 0;
	bool verify = len >= BENCH_VHDR_LEN && get_u32(p + 4) == 1;
	int ret;

	if (len >= BENCH_HDR_LEN)
		memcpy(&rs, p, sizeof(rs));
	ret = srv_redeem(sv, c);
	if (ret < 0) {
		/* A token that does not verify is an error, and the call is
		 * refused with it, as a real service would. */
		ferry_call_respond_error(c, ret);
		atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
		return;
	}
	if (verify) {
		verdict = srv_verify(c, p, len, &seq);
		count_verdict(w, verdict);
	}
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
	if (verify && rs >= BENCH_VHDR_LEN) {
		/* The same pattern back (in place when echoing), under a
		 * header with the verdict. */
		uint8_t *q = ferry_msgbuf_data(mb);

		put_u32(q, verdict);
		put_u32(q + 4, 1);
		memcpy(q + 8, &seq, 8);
		if (rs != len)
			bench_pattern_fill(q, BENCH_VHDR_LEN, rs, seq);
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
	struct rpc_srv *sv = calloc(1, sizeof(*sv));
	int ret;

	if (!sv) {
		w->err = -ENOMEM;
		snprintf(w->errmsg, sizeof(w->errmsg), "out of memory");
		atomic_store(&w->ready, true);
		return NULL;
	}
	sv->w = w;

	bench_pin(w->cpu);
	/* In loop mode the clients are known; a standalone server takes up
	 * to 64 sessions per thread. */
	bench_config(o, &cfg,
		     strcmp(o->mode, "loop") == 0 ? o->sessions * o->threads
						 : 64,
		     true, w->idx);
	ret = ferry_endpoint_create(&cfg, &sv->ep);
#ifdef FERRY_BENCH_CONTROL
	if (ret == 0 && o->tracer)
		ret = ferry_endpoint_set_tracer(sv->ep, o->tracer);
#endif
	if (ret == 0)
		ret = ferry_endpoint_register(sv->ep, BENCH_METHOD, srv_handler,
					      sv);
	if (ret == 0)
		ferry_endpoint_on_session(sv->ep, srv_on_session, NULL);
#ifdef FERRY_BENCH_CONTROL
	if (ret == 0 && o->auth) {
		/* Only clients with a channel token for the bench's echo
		 * channel get a session. */
		static const char *const chans[] = { BENCH_CHANNEL };

		ret = ferry_endpoint_require_token(sv->ep, o->auth->kr,
						   BENCH_AUDIENCE, chans, 1);
	}
#endif
	if (ret < 0) {
		w->err = ret;
		snprintf(w->errmsg, sizeof(w->errmsg),
			 "server endpoint on %s:%u: %s",
			 bench_bind_addr(o, true), bench_server_port(o, w->idx),
			 ferry_strerror(ret));
		ferry_endpoint_destroy(sv->ep);
		free(sv);
		atomic_store(&w->ready, true);
		return NULL;
	}
	atomic_store(&w->ready, true);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP)
		ferry_endpoint_poll(sv->ep, 10);
	/* Clients close their sessions as they stop: give their CLOSE up to
	 * half a second to arrive, so those sessions end cleanly (and their
	 * spans say so) rather than with the endpoint. */
	for (uint64_t end = bench_now_ns() + 500000000ull;
	     bench_now_ns() < end;) {
		struct ferry_ep_stats st;

		ferry_endpoint_stats(sv->ep, &st);
		if (st.sessions_closed >= st.sessions_opened)
			break;
		ferry_endpoint_poll(sv->ep, 1);
	}
	worker_stats(w, sv->ep);
	ferry_endpoint_destroy(sv->ep);
	free(sv);
	return NULL;
}

/* --- client --------------------------------------------------------------- */

struct rpc_slot {
	struct rpc_cli *cl;
	struct ferry_session *s;
	uint64_t *next_seq; /* --verify: the session's call counter */
	uint64_t seq;       /* this slot's call in flight */
	uint64_t t0;
	bool parked; /* no buffer was free: retry from the poll loop */
};

struct rpc_cli {
	struct bench_worker *w;
	struct ferry_endpoint *ep;
	struct rpc_slot *slots;
	uint32_t nslots;
	uint32_t parked;
	/* Calls in flight, and how many may be: a call holds its request
	 * buffer until its response is in, and that response needs a
	 * buffer too, so at most half the big buffers are requests. */
	uint32_t inflight, max_inflight;
};

static void cli_cont(int res, const void *data, size_t len, void *ctx);

static void cli_issue(struct rpc_slot *sl)
{
	struct rpc_cli *cl = sl->cl;
	const struct bench_opts *o = cl->w->o;
	struct ferry_msgbuf *mb;
	int ret;

	ret = cl->inflight >= cl->max_inflight
		      ? -ENOBUFS
		      : ferry_msgbuf_alloc(cl->ep, o->size, &mb);
	if (ret < 0) {
		if (!sl->parked) {
			sl->parked = true;
			cl->parked++;
		}
		return;
	}
	if (o->size >= BENCH_HDR_LEN)
		memcpy(ferry_msgbuf_data(mb), &o->resp_size, BENCH_HDR_LEN);
	if (o->verify) {
		uint8_t *p = ferry_msgbuf_data(mb);

		/* Numbered in the order the calls are made on the session:
		 * the order the server must see them in. */
		sl->seq = ++*sl->next_seq;
		put_u32(p + 4, 1);
		memcpy(p + 8, &sl->seq, 8);
		bench_pattern_fill(p, BENCH_VHDR_LEN, o->size, sl->seq);
	}
	sl->t0 = bench_now_ns();
	if (o->auth && o->auth->ncaps)
		/* The tokens are copied into the call's table: issued once,
		 * sent with every call. */
		ret = ferry_call_caps(sl->s, BENCH_METHOD, mb, o->auth->caps,
				      o->auth->ncaps, 0, cli_cont, sl);
	else
		ret = ferry_call(sl->s, BENCH_METHOD, mb, cli_cont, sl);
	if (ret == 0)
		cl->inflight++;
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

	sl->cl->inflight--;
	if (phase == PH_STOP)
		return;
	if (res == 0 && w->o->verify) {
		const uint8_t *p = data;
		uint32_t v = len >= BENCH_VHDR_LEN ? get_u32(p) : BENCH_V_CORRUPT;

		/* The server's verdict on the request, and ours on the
		 * response. */
		if (len != w->o->resp_size || get_u64(p + 8) != sl->seq ||
		    !bench_pattern_ok(p, BENCH_VHDR_LEN, len, sl->seq))
			v |= BENCH_V_CORRUPT;
		count_verdict(w, v);
	}
	if (res < 0) {
		if (w->o->verify)
			atomic_fetch_add_explicit(&w->lost, 1,
						  memory_order_relaxed);
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

/* A refused connect (say, a token the server does not take) is reported
 * with the server's reason at once.  Silence is left to the wait below,
 * which says "no answer". */
static void cli_on_connect(struct ferry_session *s, int res, void *ctx)
{
	struct bench_worker *w = ctx;

	(void)s;
	if (res < 0 && res != -ETIMEDOUT && !w->err) {
		w->err = res;
		snprintf(w->errmsg, sizeof(w->errmsg), "connect refused: %s",
			 ferry_strerror(res));
	}
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
	uint64_t deadline, *seqs = NULL;
	int ret;

	bench_pin(w->cpu);
	bench_config(o, &cfg, o->sessions, false, w->idx);
	ret = ferry_endpoint_create(&cfg, &cl.ep);
#ifdef FERRY_BENCH_CONTROL
	if (ret == 0 && o->tracer) {
		ret = ferry_endpoint_set_tracer(cl.ep, o->tracer);
		if (ret < 0)
			ferry_endpoint_destroy(cl.ep);
	}
#endif
	if (ret < 0) {
		w->err = ret;
		snprintf(w->errmsg, sizeof(w->errmsg), "client endpoint: %s",
			 ferry_strerror(ret));
		atomic_store(&w->ready, true);
		return NULL;
	}
	cl.nslots = o->sessions * o->inflight;
	cl.max_inflight = cl.nslots;
	if (max_u32(o->size, o->resp_size) > 512 &&
	    cl.max_inflight > bench_big_cap(max_u32(o->size, o->resp_size)) / 2)
		cl.max_inflight =
			bench_big_cap(max_u32(o->size, o->resp_size)) / 2;
	cl.slots = calloc(cl.nslots, sizeof(*cl.slots));
	sess = calloc(o->sessions, sizeof(*sess));
	if (!cl.slots || !sess) {
		w->err = -ENOMEM;
		snprintf(w->errmsg, sizeof(w->errmsg), "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < o->sessions; i++) {
		struct ferry_connect_opts co = { 0 };

		if (o->auth) {
			co.token = o->auth->chan_tok;
			co.token_len = o->auth->chan_tok_len;
		}
		ret = ferry_session_connect(cl.ep, o->addr,
					    bench_server_port(o, w->idx), &co,
					    cli_on_connect, w, &sess[i]);
		if (ret < 0) {
			w->err = ret;
			snprintf(w->errmsg, sizeof(w->errmsg),
				 "connect to %s:%u: %s", o->addr,
				 bench_server_port(o, w->idx),
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
		if (w->err)
			goto out; /* refused: cli_on_connect said why */
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
	seqs = calloc(o->sessions, sizeof(*seqs));
	if (!seqs) {
		w->err = -ENOMEM;
		snprintf(w->errmsg, sizeof(w->errmsg), "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < cl.nslots; i++) {
		cl.slots[i].cl = &cl;
		cl.slots[i].s = sess[i / o->inflight];
		cl.slots[i].next_seq = &seqs[i / o->inflight];
	}
	atomic_store(&w->ready, true);
	for (uint32_t i = 0; i < cl.nslots; i++)
		cli_issue(&cl.slots[i]);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		uint32_t open = 0;

		ferry_endpoint_poll(cl.ep, 10);
		if (cl.parked)
			cli_retry_parked(&cl);
		for (uint32_t i = 0; i < o->sessions; i++)
			open += (uint32_t)ferry_session_is_open(sess[i]);
		if (open == 0) {
			/* The server is gone (its calls have failed): say
			 * so, rather than idle until --duration ends. */
			atomic_store(&w->gone, true);
			break;
		}
	}
out:
	atomic_store(&w->ready, true);
	for (uint32_t i = 0; sess && i < o->sessions; i++)
		ferry_session_close(sess[i]);
	worker_stats(w, cl.ep);
	ferry_endpoint_destroy(cl.ep);
	free(cl.slots);
	free(sess);
	free(seqs);
	return NULL;
}
