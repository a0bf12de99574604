/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench's RPC client: an endpoint keeping --inflight calls
 * outstanding on each of its sessions, with --caps token tables and
 * --deferred IOUs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#ifdef FERRY_BENCH_CONTROL
#include <ferry/token.h>
#endif

#include "rpc.h"

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
	struct ferry_session **sess; /* --sessions */
	uint64_t *seqs;              /* --verify: each session's calls */
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
	/* Connects started and ended, open or not (cli_connect_more). */
	uint32_t conn_started, conn_ended;
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
		bench_count_verdict(w, v);
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
	struct rpc_cli *cl = ctx;
	struct bench_worker *w = cl->w;

	(void)s;
	cl->conn_ended++;
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

/* Record the worker's failure @err, and why; returns @err. */
__attribute__((format(printf, 3, 4)))
static int cli_error(struct bench_worker *w, int err, const char *fmt, ...)
{
	va_list ap;

	w->err = err;
	va_start(ap, fmt);
	vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

/* Handshakes in progress at once: 100,000 CONNECTs sent together would
 * mostly be dropped (the server's reply bucket, docs/wire.md 4.3) and
 * retried on a back-off, and the last would time out. */
#define CLI_CONNECT_WINDOW 2048u

/* Start connects while fewer than CLI_CONNECT_WINDOW are in progress.
 * Returns 0 or a negative error, recorded in the worker. */
static int cli_connect_more(struct rpc_cli *cl)
{
	struct bench_worker *w = cl->w;
	const struct bench_opts *o = w->o;

	while (cl->conn_started < o->sessions &&
	       cl->conn_started - cl->conn_ended < CLI_CONNECT_WINDOW) {
		struct ferry_connect_opts co = { 0 };
		uint32_t i = cl->conn_started++;
		int ret;

		if (o->auth) {
			co.token = o->auth->chan_tok;
			co.token_len = o->auth->chan_tok_len;
			co.holder_key = o->auth->chan_hk;
		}
		ret = ferry_session_connect(cl->ep, o->addr,
					    bench_server_port(o, w->idx), &co,
					    cli_on_connect, cl, &cl->sess[i]);
		if (ret < 0)
			return cli_error(w, ret, "connect to %s:%u: %s",
					 o->addr, bench_server_port(o, w->idx),
					 ferry_strerror(ret));
	}
	return 0;
}

/* Open --sessions sessions to the server (the first CLI_CONNECT_WINDOW;
 * cli_wait_open the rest).  Returns 0 or a negative error, recorded in
 * the worker. */
static int cli_connect(struct rpc_cli *cl)
{
	struct bench_worker *w = cl->w;
	const struct bench_opts *o = w->o;
	uint32_t big = max_u32(o->size, o->resp_size);

	cl->nslots = o->sessions * o->inflight;
	cl->max_inflight = cl->nslots;
	if (big > 512 && cl->max_inflight > bench_big_cap(big) / 2)
		cl->max_inflight = bench_big_cap(big) / 2;
	cl->slots = calloc(cl->nslots, sizeof(*cl->slots));
	cl->sess = calloc(o->sessions, sizeof(*cl->sess));
	if (!cl->slots || !cl->sess)
		return cli_error(w, -ENOMEM, "out of memory");
	return cli_connect_more(cl);
}

static uint32_t cli_open_sessions(const struct rpc_cli *cl)
{
	uint32_t open = 0;

	for (uint32_t i = 0; i < cl->w->o->sessions; i++)
		open += (uint32_t)ferry_session_is_open(cl->sess[i]);
	return open;
}

/* Whether any session is open: stops at the first (the poll loop asks
 * after every poll, and a count of 100,000 sessions would cost more than
 * the poll). */
static bool cli_any_open(const struct rpc_cli *cl)
{
	for (uint32_t i = 0; i < cl->w->o->sessions; i++)
		if (ferry_session_is_open(cl->sess[i]))
			return true;
	return false;
}

/* Wait for every handshake, so the warm-up starts from open sessions and
 * a dead server is reported as such.  Returns 0 or a negative error. */
static int cli_wait_open(struct rpc_cli *cl)
{
	struct bench_worker *w = cl->w;
	const struct bench_opts *o = w->o;
	/* Six seconds without a connect ending: the connect timeout, and
	 * a second more. */
	uint64_t deadline = bench_now_ns() + 6000000000ull;
	uint32_t ended = 0, open;
	int ret;

	while (cl->conn_ended < o->sessions) {
		if (w->err)
			return w->err; /* refused: cli_on_connect said why */
		if (bench_now_ns() > deadline ||
		    atomic_load(&bench_phase) == PH_STOP)
			break;
		ferry_endpoint_poll(cl->ep, 1);
		if (cl->conn_ended != ended) {
			ended = cl->conn_ended;
			deadline = bench_now_ns() + 6000000000ull;
		}
		ret = cli_connect_more(cl);
		if (ret < 0)
			return ret;
	}
	open = cli_open_sessions(cl);
	if (open == 0)
		return cli_error(w, -ETIMEDOUT,
				 "connect to %s:%u: no answer (is a "
				 "server running there?)",
				 o->addr, o->port);
	if (open != o->sessions)
		return cli_error(w, -ETIMEDOUT,
				 "connect to %s:%u: %u of %u sessions did "
				 "not open in time (the server answered the "
				 "others)",
				 o->addr, o->port, o->sessions - open,
				 o->sessions);
	return 0;
}

/* The slots' sessions and call numbers, the --deferred choices and the
 * delayed issuer.  Returns 0 or a negative error. */
static int cli_prepare(struct rpc_cli *cl)
{
	struct bench_worker *w = cl->w;
	const struct bench_opts *o = w->o;
	int ret;

	cl->seqs = calloc(o->sessions, sizeof(*cl->seqs));
	if (!cl->seqs)
		return cli_error(w, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < cl->nslots; i++) {
		cl->slots[i].cl = cl;
		cl->slots[i].s = cl->sess[i / o->inflight];
		cl->slots[i].next_seq = &cl->seqs[i / o->inflight];
	}
	/* --deferred: which calls defer their tokens, and the delays this
	 * thread's issuances get, both from --seed: reproducible per
	 * thread. */
	cl->rng = (o->seed + 1) * 0xd1342543de82ef95ull ^ (uint64_t)w->idx << 40;
#ifdef FERRY_BENCH_CONTROL
	bench_issuer_seed_thread((o->seed + 1) * 0xa0761d6478bd642full ^
				 (uint64_t)w->idx << 40);
#endif
	/* --deferred without --issuer-thread: this worker's own issuer,
	 * sized for every token of every call in flight, twice over. */
	cl->issuer = o->issuer;
	if (o->deferred > 0 && !o->issuer_thread) {
		ret = bench_issuer_new(o, (size_t)cl->nslots * o->caps * 2,
				       &cl->own);
		if (ret < 0)
			return cli_error(w, ret, "delayed issuer: %s",
					 ferry_strerror(ret));
		cl->issuer = cl->own;
	}
	return 0;
}

/* Make calls until the run stops or every session has ended. */
static void cli_run(struct rpc_cli *cl)
{
	struct bench_worker *w = cl->w;
	uint64_t next_pub = 0;

	for (uint32_t i = 0; i < cl->nslots; i++)
		cli_issue(&cl->slots[i]);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		/* The worker's issuer: the poll does not sleep past the
		 * earliest due time, and what is due is completed after
		 * it, on this thread. */
		if (cl->own) {
			ferry_endpoint_poll(cl->ep,
					    bench_issuer_timeout(cl->own, 10));
			bench_issuer_run(cl->own);
		} else {
			ferry_endpoint_poll(cl->ep, 10);
		}
		bench_rpc_publish(w, cl->ep, &next_pub);
		if (cl->parked)
			cli_retry_parked(cl);
		if (!cli_any_open(cl)) {
			/* The server is gone (its calls have failed): say
			 * so, rather than idle until --duration ends. */
			atomic_store(&w->gone, true);
			break;
		}
	}
}

/* --deferred: let the calls in flight finish (no new ones are made)
 * before closing: a call closed while waiting for its deferred tokens
 * would leave the server an IOU to reject, and the counters a run reports
 * would not balance. */
static void cli_drain(struct rpc_cli *cl)
{
	uint64_t end = bench_now_ns() + 2000000000ull +
		       cl->w->o->deferred_delay_us * 1000ull;

	while (cl->inflight && bench_now_ns() < end) {
		ferry_endpoint_poll(cl->ep, cl->own ? bench_issuer_timeout(
							      cl->own, 1)
						    : 1);
		if (cl->own)
			bench_issuer_run(cl->own);
	}
}

void *bench_rpc_client(void *arg)
{
	struct bench_worker *w = arg;
	const struct bench_opts *o = w->o;
	struct ferry_ep_config cfg;
	struct rpc_cli cl = { .w = w };
	int ret;

	bench_pin(w->cpu);
	bench_rpc_config(o, &cfg, o->sessions, false, w->idx);
	ret = ferry_endpoint_create(&cfg, &cl.ep);
#ifdef FERRY_BENCH_CONTROL
	if (ret == 0 && o->tracer) {
		ret = ferry_endpoint_set_tracer(cl.ep, o->tracer);
		if (ret < 0)
			ferry_endpoint_destroy(cl.ep);
	}
#endif
	if (ret < 0) {
		cli_error(w, ret, "client endpoint: %s", ferry_strerror(ret));
		atomic_store(&w->ready, true);
		return NULL;
	}
	bench_rpc_export(w, cl.ep);
	if (cli_connect(&cl) == 0 && cli_wait_open(&cl) == 0 &&
	    cli_prepare(&cl) == 0) {
		atomic_store(&w->ready, true);
		cli_run(&cl);
		if (o->deferred > 0)
			cli_drain(&cl);
	}
	atomic_store(&w->ready, true);
	for (uint32_t i = 0; cl.sess && i < o->sessions; i++)
		ferry_session_close(cl.sess[i]);
	/* The worker's issuer: what is left is completed (-ECANCELED)
	 * while the endpoint still exists; the sessions were closed, so
	 * the completions only give the references back. */
	if (cl.own)
		bench_issuer_free(cl.own, &w->issuer);
	bench_rpc_stats(w, cl.ep);
	bench_rpc_unexport(w, cl.ep);
	ferry_endpoint_destroy(cl.ep);
	free(cl.slots);
	free(cl.sess);
	free(cl.seqs);
	return NULL;
}
