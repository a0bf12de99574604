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

/* The endpoint's counters for the progress line (its IOU counters, with
 * --keyring), about every 100 ms. */
static void publish_iou(struct bench_worker *w, struct ferry_endpoint *ep,
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
	ferry_endpoint_stats(ep, &st);
	bench_publish(w, &st);
}

static void worker_stats(struct bench_worker *w, struct ferry_endpoint *ep)
{
	struct ferry_ep_stats st;

	ferry_endpoint_stats(ep, &st);
	bench_publish(w, &st);
	w->cpu_s = bench_thread_cpu_s();
}

/* --- server --------------------------------------------------------------- */

/* What a handler learned from a request at dispatch, kept while the call
 * waits for its deferred tokens. */
struct srv_req {
	uint64_t seq;      /* --verify: the call's number on its session */
	uint32_t verdict;  /* --verify: what dispatch found wrong */
	uint32_t rs;       /* response size */
	size_t len;        /* request size */
	bool verify;
};

/* A call waiting for its IOUs (ferry_call_caps_ready). */
struct srv_wait {
	struct rpc_srv *sv;
	struct ferry_call *c;
	struct srv_req r;
	struct srv_wait *next; /* free list */
};

struct rpc_srv {
	struct bench_worker *w;
	struct ferry_endpoint *ep;
	/* One wait record per call the endpoint can hold at once: no
	 * allocation per call. */
	struct srv_wait *waits, *wait_free;
#ifdef FERRY_BENCH_CONTROL
	/* Where redeemed tokens' contents go: 4.6 KiB, kept off the stack
	 * of the handler and written only by this server's thread. */
	struct ferry_token_info info;
#endif
};

/*
 * --caps: redeem (verify) the call's tokens, as the handler of a real
 * service would before acting on them.  Every token is verified exactly
 * once: a token in the table here; a deferred one (an IOU) by the push
 * check when its PUSH arrived (ferry_endpoint_check_pushes) -- except with
 * --verify, where every token is verified here too, and its props must
 * name this call (@seq) and its place in the table, or the call is
 * counted corrupt in @verdict.  Returns 0, or the first failure, with
 * which the call is then refused.
 */
static int srv_redeem(struct rpc_srv *sv, struct ferry_call *c, bool verify,
		      uint64_t seq, uint32_t *verdict)
{
#ifdef FERRY_BENCH_CONTROL
	const struct bench_auth *a = sv->w->o->auth;
	unsigned n = ferry_call_ncaps(c), redeemed = 0;

	for (unsigned i = 0; i < n; i++) {
		uint8_t props[BENCH_PROPS_LEN];
		int ret;

		if (!a)
			return -EPERM; /* tokens, but nothing to check them */
		if (!verify && ferry_call_cap_kind(c, i) == FERRY_CAP_IOU)
			continue;
		ret = ferry_call_redeem(c, i, a->kr, FERRY_TOKEN_SUBREQUEST,
					BENCH_AUDIENCE, &sv->info);
		if (ret < 0)
			return ret;
		redeemed++;
		if (!verify)
			continue;
		bench_props(props, seq, i);
		if (sv->info.props_len != sizeof(props) ||
		    memcmp(sv->info.props, props, sizeof(props)) != 0)
			*verdict |= BENCH_V_CORRUPT;
	}
	if (redeemed)
		bench_count(sv->w, BC_CAPS_REDEEMED, redeemed);
	return 0;
#else
	(void)sv;
	(void)verify;
	(void)seq;
	(void)verdict;
	return ferry_call_ncaps(c) ? -EPERM : 0;
#endif
}

/* --verify: count what a verdict says went wrong. */
static void count_verdict(struct bench_worker *w, uint32_t v)
{
	if (v & BENCH_V_DUP)
		bench_count(w, BC_DUPS, 1);
	if (v & BENCH_V_OOO)
		bench_count(w, BC_OOO, 1);
	if (v & BENCH_V_CORRUPT)
		bench_count(w, BC_CORRUPT, 1);
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

/* Refuse the call with @err (a token that does not verify, an IOU that
 * was rejected), as a real service would. */
static void srv_fail(struct rpc_srv *sv, struct ferry_call *c,
		     const struct srv_req *r, int err)
{
	if (r->verify)
		count_verdict(sv->w, r->verdict);
	ferry_call_respond_error(c, err);
	bench_count(sv->w, BC_ERRORS, 1);
}

/* Redeem the call's tokens and answer it: in the handler, or once its
 * deferred tokens are in. */
static void srv_finish(struct rpc_srv *sv, struct ferry_call *c,
		       const struct srv_req *r)
{
	struct bench_worker *w = sv->w;
	uint32_t verdict = r->verdict;
	struct ferry_msgbuf *mb;
	int ret;

	ret = srv_redeem(sv, c, r->verify, r->seq, &verdict);
	if (ret < 0) {
		srv_fail(sv, c, r, ret);
		return;
	}
	if (r->verify)
		count_verdict(w, verdict);
	if (r->rs == r->len) {
		/* Echo in place: the request's buffer is the response. */
		mb = ferry_call_take_req(c);
	} else {
		ret = ferry_msgbuf_alloc(sv->ep, r->rs, &mb);
		if (ret < 0) {
			ferry_call_respond_error(c, ret);
			bench_count(w, BC_ERRORS, 1);
			return;
		}
	}
	if (r->verify && r->rs >= BENCH_VHDR_LEN) {
		/* The same pattern back (in place when echoing), under a
		 * header with the verdict. */
		uint8_t *q = ferry_msgbuf_data(mb);

		put_u32(q, verdict);
		put_u32(q + 4, 1);
		memcpy(q + 8, &r->seq, 8);
		if (r->rs != r->len)
			bench_pattern_fill(q, BENCH_VHDR_LEN, r->rs, r->seq);
	}
	ferry_call_respond(c, mb);
	if (atomic_load_explicit(&bench_phase, memory_order_relaxed) ==
	    PH_MEASURE) {
		bench_count(w, BC_COMPLETED, 1);
		bench_count(w, BC_BYTES, r->len + r->rs);
	}
}

/* Every IOU of the call is resolved (@res 0), or one was rejected. */
static void srv_caps_ready(int res, void *ctx)
{
	struct srv_wait *wt = ctx;
	struct rpc_srv *sv = wt->sv;
	struct ferry_call *c = wt->c;
	struct srv_req r = wt->r;

	wt->next = sv->wait_free;
	sv->wait_free = wt;
	if (res < 0)
		srv_fail(sv, c, &r, res);
	else
		srv_finish(sv, c, &r);
}

static bool srv_has_iou(const struct ferry_call *c)
{
	unsigned n = ferry_call_ncaps(c);

	for (unsigned i = 0; i < n; i++)
		if (ferry_call_cap_kind(c, i) == FERRY_CAP_IOU)
			return true;
	return false;
}

static void srv_handler(struct ferry_call *c, void *ctx)
{
	struct rpc_srv *sv = ctx;
	struct srv_req r = { .rs = sv->w->o->resp_size };
	const uint8_t *p = ferry_call_req(c, &r.len);
	struct srv_wait *wt;
	int ret;

	r.verify = r.len >= BENCH_VHDR_LEN && get_u32(p + 4) == 1;
	if (r.len >= BENCH_HDR_LEN)
		memcpy(&r.rs, p, sizeof(r.rs));
	/* Order is checked at dispatch, where E-order applies: a call
	 * waiting for its tokens below does not hold up the next. */
	if (r.verify)
		r.verdict = srv_verify(c, p, r.len, &r.seq);
	if (!srv_has_iou(c)) {
		srv_finish(sv, c, &r);
		return;
	}
	/* Deferred tokens: the handler has run in order; the call is
	 * answered once they are all in (or one is rejected). */
	wt = sv->wait_free;
	if (!wt) {
		srv_fail(sv, c, &r, -ENOBUFS);
		return;
	}
	sv->wait_free = wt->next;
	wt->sv = sv;
	wt->c = c;
	wt->r = r;
	ret = ferry_call_caps_ready(c, srv_caps_ready, wt);
	if (ret < 0) {
		wt->next = sv->wait_free;
		sv->wait_free = wt;
		srv_fail(sv, c, &r, ret);
	}
}

void *bench_rpc_server(void *arg)
{
	struct bench_worker *w = arg;
	const struct bench_opts *o = w->o;
	struct ferry_ep_config cfg;
	struct rpc_srv *sv = calloc(1, sizeof(*sv));
	uint64_t next_pub = 0;
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
	if (ret == 0) {
		/* A wait record for every call the endpoint can hold. */
		uint32_t slots = 1, n;

		while (slots < cfg.session_slots)
			slots <<= 1;
		n = cfg.max_sessions * slots;
		sv->waits = calloc(n, sizeof(*sv->waits));
		if (!sv->waits)
			ret = -ENOMEM;
		for (uint32_t i = n; sv->waits && i-- > 0;) {
			sv->waits[i].next = sv->wait_free;
			sv->wait_free = &sv->waits[i];
		}
	}
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
		/* Deferred tokens are verified as their PUSH arrives: a
		 * resolved IOU always holds a token that verified. */
		if (ret == 0)
			ret = ferry_endpoint_check_pushes(
				sv->ep, o->auth->kr, FERRY_TOKEN_SUBREQUEST,
				BENCH_AUDIENCE);
	}
#endif
	if (ret < 0) {
		w->err = ret;
		snprintf(w->errmsg, sizeof(w->errmsg),
			 "server endpoint on %s:%u: %s",
			 bench_bind_addr(o, true), bench_server_port(o, w->idx),
			 ferry_strerror(ret));
		ferry_endpoint_destroy(sv->ep);
		free(sv->waits);
		free(sv);
		atomic_store(&w->ready, true);
		return NULL;
	}
	atomic_store(&w->ready, true);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		ferry_endpoint_poll(sv->ep, 10);
		publish_iou(w, sv->ep, &next_pub);
	}
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
	/* Calls still waiting for tokens end with their sessions here. */
	ferry_endpoint_destroy(sv->ep);
	free(sv->waits);
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
	/* --deferred: which calls get IOUs, drawn from --seed. */
	uint64_t rng;
	/* --deferred: the issuer the calls' tokens are asked of: this
	 * worker's own (own, completed from the poll loop) or, with
	 * --issuer-thread, the process's thread. */
	struct bench_issuer *issuer, *own;
	/* Tokens of the call being made (sealed per call with --verify),
	 * until ferry_call_caps() has copied them. */
	uint8_t tok[BENCH_CAPS_MAX][FERRY_PUSH_TOKEN_MAX_LEN];
};

/* A uniform double in [0, 1) (splitmix64). */
static double cli_rand(struct rpc_cli *cl)
{
	uint64_t z = (cl->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

/*
 * The token table for the call @sl is making.  Throughput mode: the
 * --caps tokens issued at start.  --verify: tokens sealed now, whose props
 * name the call (its number, their index).  Deferred: each token asked of
 * the delayed issuer through ferry_cap_issue(), which gives an IOU entry.
 * Returns 0 with *@tab set; -EAGAIN if an IOU was not free (those made for
 * the call are taken back: try again later); or another negative error.
 */
static int cli_table(struct rpc_cli *cl, struct rpc_slot *sl, bool deferred,
		     struct ferry_cap *caps, const struct ferry_cap **tab)
{
#ifdef FERRY_BENCH_CONTROL
	const struct bench_opts *o = cl->w->o;
	const struct bench_auth *a = o->auth;
	uint8_t props[BENCH_PROPS_LEN];
	struct ferry_token_req req;

	if (!deferred && !o->verify) {
		*tab = a->caps;
		return 0;
	}
	bench_call_req(a, props, &req);
	for (unsigned i = 0; i < a->ncaps; i++) {
		int ret;

		bench_props(props, sl->seq, i);
		if (deferred) {
			ret = ferry_cap_issue(sl->s, bench_delayed_ops(),
					      cl->issuer, &req, cl->tok[i],
					      sizeof(cl->tok[i]), &caps[i]);
		} else {
			size_t len = 0;

			ret = ferry_token_seal(a->kr, &req, cl->tok[i],
					       sizeof(cl->tok[i]), &len);
			caps[i] = (struct ferry_cap){ FERRY_CAP_TOKEN,
						      cl->tok[i], len };
		}
		if (ret < 0) {
			/* No call: take back the IOUs already made for it
			 * (their issuances are cancelled). */
			for (unsigned k = 0; k < i; k++)
				if (caps[k].kind == FERRY_CAP_IOU)
					ferry_iou_cancel((struct ferry_iou *)
								 caps[k].data);
			return ret == -ENOBUFS ? -EAGAIN : ret;
		}
	}
	*tab = caps;
	return 0;
#else
	(void)cl;
	(void)sl;
	(void)deferred;
	(void)caps;
	(void)tab;
	return -ENOTSUP;
#endif
}

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
	if (o->auth && o->auth->ncaps) {
		struct ferry_cap caps[BENCH_CAPS_MAX];
		const struct ferry_cap *tab = NULL;
		bool deferred = o->deferred > 0 && cli_rand(cl) < o->deferred;

		ret = cli_table(cl, sl, deferred, caps, &tab);
		/* An issuer that answered before ferry_cap_issue() returned
		 * gave a plain token: the call is deferred only if an IOU
		 * is left in its table. */
		if (ret == 0 && deferred) {
			deferred = false;
			for (unsigned i = 0; i < o->auth->ncaps; i++)
				deferred |= tab[i].kind == FERRY_CAP_IOU;
		}
		if (ret == -EAGAIN) {
			/* Every IOU is in use: like a buffer shortage, the
			 * slot waits for the poll loop, and gives its
			 * number back (nothing else took one since). */
			if (o->verify)
				--*sl->next_seq;
			ferry_msgbuf_free(mb);
			if (!sl->parked) {
				sl->parked = true;
				cl->parked++;
			}
			return;
		}
		if (ret < 0 && !cl->w->err) {
			cl->w->err = ret;
			snprintf(cl->w->errmsg, sizeof(cl->w->errmsg),
				 "call tokens: %s", ferry_strerror(ret));
		}
		/* The table is copied into the call: the tokens are sent
		 * with it, and the IOUs' tokens follow in PUSHes. */
		if (ret == 0)
			ret = ferry_call_caps(sl->s, BENCH_METHOD, mb, tab,
					      o->auth->ncaps, 0, cli_cont, sl);
		if (ret == 0)
			bench_count(cl->w, BC_TABLE_CALLS, 1);
		if (ret == 0 && deferred)
			bench_count(cl->w, BC_DEFERRED_CALLS, 1);
	} else {
		ret = ferry_call(sl->s, BENCH_METHOD, mb, cli_cont, sl);
	}
	if (ret == 0)
		cl->inflight++;
	if (ret < 0) {
		ferry_msgbuf_free(mb);
		bench_count(cl->w, BC_ERRORS, 1);
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
			bench_count(w, BC_LOST, 1);
		bench_count(w, BC_ERRORS, 1);
		if (!w->err) {
			w->err = res;
			snprintf(w->errmsg, sizeof(w->errmsg), "call failed: %s",
				 ferry_strerror(res));
		}
	} else if (phase == PH_MEASURE) {
		bench_hist_record(&w->hist, bench_now_ns() - sl->t0);
		bench_count(w, BC_COMPLETED, 1);
		bench_count(w, BC_BYTES, w->o->size + len);
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
	uint64_t deadline, *seqs = NULL, next_pub = 0;
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
	/* --deferred: which calls defer their tokens, and the delays this
	 * thread's issuances get, both from --seed: reproducible per
	 * thread. */
	cl.rng = (o->seed + 1) * 0xd1342543de82ef95ull ^ (uint64_t)w->idx << 40;
#ifdef FERRY_BENCH_CONTROL
	bench_issuer_seed_thread((o->seed + 1) * 0xa0761d6478bd642full ^
				 (uint64_t)w->idx << 40);
#endif
	/* --deferred without --issuer-thread: this worker's own issuer,
	 * sized for every token of every call in flight, twice over. */
	cl.issuer = o->issuer;
	if (o->deferred > 0 && !o->issuer_thread) {
		ret = bench_issuer_new(o, (size_t)cl.nslots * o->caps * 2,
				       &cl.own);
		if (ret < 0) {
			w->err = ret;
			snprintf(w->errmsg, sizeof(w->errmsg),
				 "delayed issuer: %s", ferry_strerror(ret));
			goto out;
		}
		cl.issuer = cl.own;
	}
	atomic_store(&w->ready, true);
	for (uint32_t i = 0; i < cl.nslots; i++)
		cli_issue(&cl.slots[i]);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		uint32_t open = 0;

		/* The worker's issuer: the poll does not sleep past the
		 * earliest due time, and what is due is completed after
		 * it, on this thread. */
		if (cl.own) {
			ferry_endpoint_poll(cl.ep,
					    bench_issuer_timeout(cl.own, 10));
			bench_issuer_run(cl.own);
		} else {
			ferry_endpoint_poll(cl.ep, 10);
		}
		publish_iou(w, cl.ep, &next_pub);
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
	if (o->deferred > 0) {
		/* Let the calls in flight finish (no new ones are made)
		 * before closing: a call closed while waiting for its
		 * deferred tokens would leave the server an IOU to reject,
		 * and the counters a run reports would not balance. */
		uint64_t end = bench_now_ns() + 2000000000ull +
			       o->deferred_delay_us * 1000ull;

		while (cl.inflight && bench_now_ns() < end) {
			ferry_endpoint_poll(cl.ep, cl.own ? bench_issuer_timeout(
								    cl.own, 1)
							  : 1);
			if (cl.own)
				bench_issuer_run(cl.own);
		}
	}
out:
	atomic_store(&w->ready, true);
	for (uint32_t i = 0; sess && i < o->sessions; i++)
		ferry_session_close(sess[i]);
	/* The worker's issuer: what is left is completed (-ECANCELED)
	 * while the endpoint still exists; the sessions were closed, so
	 * the completions only give the references back. */
	if (cl.own)
		bench_issuer_free(cl.own, &w->issuer);
	worker_stats(w, cl.ep);
	ferry_endpoint_destroy(cl.ep);
	free(cl.slots);
	free(sess);
	free(seqs);
	return NULL;
}
