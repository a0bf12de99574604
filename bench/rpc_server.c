/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench's RPC server: an endpoint with an echo handler that checks
 * --verify requests, redeems --caps tokens and waits for deferred ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#ifdef FERRY_BENCH_CONTROL
#include <ferry/token.h>
#endif

#include "rpc.h"

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
		bench_count_verdict(sv->w, r->verdict);
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
		bench_count_verdict(w, verdict);
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
	bench_rpc_config(o, &cfg,
		     strcmp(o->mode, "loop") == 0 ? o->sessions * o->threads
						 : 64,
		     true, w->idx);
	ret = ferry_endpoint_create(&cfg, &sv->ep);
	if (ret == 0)
		/* One client address opens every session: without this,
		 * the RETRY bucket lets in 100 a second (docs/wire.md,
		 * 4.3) and 10,000 sessions would take 100 s to open. */
		ferry__endpoint_hs_src_rate(sv->ep, false);
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
		 * channel get a session.  A bench client presents its one
		 * channel token on every session it opens (--threads x
		 * --sessions of them), so the per-token cap is off. */
		static const char *const chans[] = { BENCH_CHANNEL };
		const struct ferry_require_token_opts ro = {
			.max_sessions_per_token = UINT32_MAX,
		};

		ret = ferry_endpoint_require_token_opts(
			sv->ep, o->auth->kr, BENCH_AUDIENCE, chans, 1, &ro);
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
	bench_rpc_export(w, sv->ep);
	atomic_store(&w->ready, true);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		ferry_endpoint_poll(sv->ep, 10);
		bench_rpc_publish(w, sv->ep, &next_pub);
	}
	/* Clients close their sessions as they stop: give their CLOSE up to
	 * half a second to arrive, so those sessions end cleanly (and their
	 * spans say so) rather than with the endpoint. */
	for (uint64_t end = bench_now_ns() + 500000000ull;
	     bench_now_ns() < end;) {
		struct ferry_ep_stats st;

		ferry__endpoint_stats(sv->ep, &st);
		if (st.sessions_closed >= st.sessions_opened)
			break;
		ferry_endpoint_poll(sv->ep, 1);
	}
	bench_rpc_stats(w, sv->ep);
	bench_rpc_unexport(w, sv->ep);
	/* Calls still waiting for tokens end with their sessions here. */
	ferry_endpoint_destroy(sv->ep);
	free(sv->waits);
	free(sv);
	return NULL;
}
