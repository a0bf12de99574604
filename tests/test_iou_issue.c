/* SPDX-License-Identifier: MIT */
/*
 * test_iou_issue.c - Criterion tests for where IOU tokens come
 * from and how they travel (ferry/iou.h, ferry/token.h, docs/wire.md
 * section 8) on real endpoints: the server's push check, ferry_cap_issue
 * with the local issuer and a plug-in answering from its own thread, many
 * calls and IOUs settled in random order from another thread (the seed is
 * printed; FERRY_TEST_SEED repeats a run), and a lossy network.
 *
 * Every case runs on each dataplane built in (uring, and DPDK on a
 * net_ring loopback port): HARNESS_BATTERY at the end of the file.
 */
#include <criterion/criterion.h>

#include "iou_util.h"

/* ===================================================================== */
/* 8. The push check                                                       */
/* ===================================================================== */

#define T0 1700000000ull

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return T0;
}

static struct ferry_keyring *kr_new(void)
{
	struct ferry_keyring *kr;

	cr_assert_eq(ferry_keyring_create(3600, 30, &kr), 0);
	ferry_keyring_set_clock(kr, test_clock, NULL);
	return kr;
}

static struct ferry_token_req token_req(const char *aud)
{
	return (struct ferry_token_req){ .type = FERRY_TOKEN_SUBREQUEST,
					 .audience = aud,
					 .target = CHANNEL,
					 .entrypoint = "get",
					 .ttl = 600 };
}

static size_t seal(const struct ferry_keyring *kr, const char *aud,
		   uint8_t *out, size_t cap)
{
	struct ferry_token_req req = token_req(aud);
	size_t len;

	cr_assert_eq(ferry_token_seal(kr, &req, out, cap, &len), 0);
	return len;
}

/* One M_WAIT call on @s whose IOU is resolved with @tok; returns the
 * call's result (the reply in @r). */
static int call_resolved_with(struct ferry_endpoint *cli,
			      struct ferry_endpoint *srv,
			      struct ferry_session *s, const void *tok,
			      size_t len, struct reply *r)
{
	struct ferry_iou *iou;
	struct ferry_cap cap;

	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	cap = iou_cap(iou);
	call(cli, s, M_WAIT, &cap, 1, r);
	cr_assert_eq(ferry_iou_resolve(iou, tok, len), 0);
	PUMP(cli, srv, 3000, r->done);
	cr_assert(r->done);
	return r->res;
}

static int g_check_ret, g_check_released;
static size_t g_check_seen;

static int my_check(void *ctx, const void *tok, size_t len)
{
	(void)tok;
	g_check_seen = len;
	return *(int *)ctx;
}

static void my_check_release(void *ctx)
{
	cr_assert_eq(ctx, &g_check_ret);
	g_check_released++;
}

static void t_push_check_rejects_bad_tokens(void)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new(NULL);
	struct ferry_keyring *kr = kr_new();
	struct ferry_session *s;
	struct ferry_ep_stats st;
	struct ferry_token_info info;
	uint8_t garbage[100], other[FERRY_TOKEN_MAX_LEN],
		good[FERRY_TOKEN_MAX_LEN];
	size_t olen, glen;
	struct reply r;
	int res;

	cr_assert_eq(ferry_endpoint_check_pushes(srv, kr,
						 FERRY_TOKEN_SUBREQUEST, AUD),
		     0);
	s = open_session(cli, srv);
	memset(garbage, 0x01, sizeof(garbage));
	olen = seal(kr, "another-server", other, sizeof(other));
	glen = seal(kr, AUD, good, sizeof(good));
	cr_assert_leq(glen, FERRY_PUSH_TOKEN_MAX_LEN);

	res = call_resolved_with(cli, srv, s, garbage, sizeof(garbage), &r);
	cr_assert_eq(res, -FERRY_TOKEN_EUNKNOWNKEY, "garbage: %s",
		     ferry_strerror(res));
	cr_assert_eq(g.wait_res[0], -FERRY_TOKEN_EUNKNOWNKEY);
	res = call_resolved_with(cli, srv, s, other, olen, &r);
	cr_assert_eq(res, -FERRY_TOKEN_EAUDIENCE, "other audience: %s",
		     ferry_strerror(res));
	cr_assert_eq(g.wait_res[1], -FERRY_TOKEN_EAUDIENCE);
	st = stats(srv);
	cr_assert_eq(st.iou_bad_token, 2);
	cr_assert_eq(st.iou_rejected, 2);
	cr_assert_eq(st.iou_resolved, 0);

	/* A valid token resolves, intact. */
	res = call_resolved_with(cli, srv, s, good, glen, &r);
	cr_assert_eq(res, 0, "valid token: %s", ferry_strerror(res));
	cr_assert_eq(g.wait_res[2], 0);
	cr_assert_eq(r.len, glen);
	cr_assert_arr_eq(r.data, good, glen);
	cr_assert_eq(ferry_token_verify(kr, r.data, r.len,
					FERRY_TOKEN_SUBREQUEST, AUD, &info),
		     0);
	cr_assert_str_eq(info.target, CHANNEL);
	st = stats(srv);
	cr_assert_eq(st.iou_bad_token, 2);
	cr_assert_eq(st.iou_resolved, 1);

	/* A check of one's own; one that refuses with a positive value
	 * refuses with -EACCES.  Replacing a check releases the old one's
	 * context. */
	g_check_ret = 5;
	g_check_released = 0;
	cr_assert_eq(ferry_endpoint_set_push_check(srv, my_check,
						   my_check_release,
						   &g_check_ret),
		     0);
	res = call_resolved_with(cli, srv, s, good, glen, &r);
	cr_assert_eq(res, -EACCES, "%s", ferry_strerror(res));
	cr_assert_eq(g_check_seen, glen);
	cr_assert_eq(stats(srv).iou_bad_token, 3);

	/* Cleared, no check judges: garbage resolves. */
	cr_assert_eq(ferry_endpoint_set_push_check(srv, NULL, NULL, NULL), 0);
	cr_assert_eq(g_check_released, 1);
	res = call_resolved_with(cli, srv, s, garbage, sizeof(garbage), &r);
	cr_assert_eq(res, 0);
	cr_assert_eq(stats(srv).iou_bad_token, 3);
	/* The endpoint releases a check it still holds when destroyed. */
	cr_assert_eq(ferry_endpoint_set_push_check(srv, my_check,
						   my_check_release,
						   &g_check_ret),
		     0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	cr_assert_eq(g_check_released, 2);
	ferry_keyring_free(kr);
}

/* ===================================================================== */
/* 11. ferry_cap_issue                                                     */
/* ===================================================================== */

/* An issuer plug-in that answers later, from a thread of its own: after
 * @delay_ms, with a token sealed by @kr, or with @fail if not 0. */
struct slow_issuer {
	struct ferry_keyring *kr;
	unsigned delay_ms;
	int fail;
	atomic_int cancels;
	atomic_int completed;      /* results the handle took */
	atomic_int complete_cancelled; /* results dropped (-ECANCELED) */
	pthread_t tids[8];
	unsigned ntids;
};

struct slow_job {
	struct slow_issuer *is;
	struct ferry_token_pending *p;
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	size_t len;
	int res;
};

static void *slow_worker(void *arg)
{
	struct slow_job *j = arg;
	struct slow_issuer *is = j->is;
	int ret;

	sleep_ms(is->delay_ms);
	ret = ferry_token_pending_complete(j->p, j->res, j->res ? NULL : j->tok,
					   j->res ? 0 : j->len);
	if (ret == -ECANCELED)
		atomic_fetch_add(&is->complete_cancelled, 1);
	else if (ret == 0)
		atomic_fetch_add(&is->completed, 1);
	free(j);
	return NULL;
}

static int slow_issue(void *arg, const struct ferry_token_req *req,
		      struct ferry_token_pending *p)
{
	struct slow_issuer *is = arg;
	struct slow_job *j;
	int ret = 0;

	if (is->ntids == 8)
		return -EAGAIN;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->is = is;
	j->p = p;
	j->res = is->fail;
	/* @req is borrowed: do the work that needs it now, deliver later. */
	if (!j->res)
		ret = ferry_token_seal(is->kr, req, j->tok, sizeof(j->tok),
				       &j->len);
	if (ret == 0)
		ret = -pthread_create(&is->tids[is->ntids], NULL, slow_worker,
				      j);
	if (ret < 0) {
		free(j);
		return ret;
	}
	is->ntids++;
	return 0;
}

static void slow_cancel(void *arg, struct ferry_token_pending *p)
{
	struct slow_issuer *is = arg;

	(void)p;
	atomic_fetch_add(&is->cancels, 1);
}

static const struct ferry_token_issuer_ops slow_ops = {
	.issue = slow_issue,
	.cancel = slow_cancel,
};

static void slow_join(struct slow_issuer *is)
{
	for (unsigned i = 0; i < is->ntids; i++)
		cr_assert_eq(pthread_join(is->tids[i], NULL), 0);
	is->ntids = 0;
}

/* ferry_cap_issue with the built-in issuer, which answers at once. */
static void issue_local(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
			struct ferry_session *s, struct ferry_keyring *kr)
{
	struct ferry_token_req req = token_req(AUD);
	struct ferry_token_info info;
	uint8_t buf[FERRY_TOKEN_MAX_LEN];
	struct ferry_cap cap;
	struct reply r;
	int ret;

	/* (a) The built-in issuer answers at once: a plain token entry. */
	ret = ferry_cap_issue(s, ferry_token_local_issuer(), kr, &req, buf,
			      sizeof(buf), &cap);
	cr_assert_eq(ret, 0, "local issue: %s", ferry_strerror(ret));
	cr_assert_eq(cap.kind, FERRY_CAP_TOKEN);
	cr_assert_eq(cap.data, buf);
	cr_assert(cap.len >= FERRY_TOKEN_MIN_LEN);
	call(cli, s, M_WAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(g.kind0, FERRY_CAP_TOKEN);
	cr_assert_eq(g.peek, 0);
	cr_assert_eq(r.len, cap.len);
	cr_assert_arr_eq(r.data, buf, cap.len);
	cr_assert_eq(ferry_token_verify(kr, r.data, r.len,
					FERRY_TOKEN_SUBREQUEST, AUD, &info),
		     0);
	cr_assert_eq(stats(srv).iou_created, 0);
	/* A synchronous refusal comes back as the call's error (ttl beyond
	 * the keyring's max), and a buffer too small as -ENOBUFS; neither
	 * leaves a promise behind. */
	req.ttl = 7200;
	cr_assert_eq(ferry_cap_issue(s, ferry_token_local_issuer(), kr, &req,
				     buf, sizeof(buf), &cap),
		     -EINVAL);
	req.ttl = 600;
	cr_assert_eq(ferry_cap_issue(s, ferry_token_local_issuer(), kr, &req,
				     buf, 10, &cap),
		     -ENOBUFS);
	cr_assert_eq(ferry_cap_issue(NULL, ferry_token_local_issuer(), kr,
				     &req, buf, sizeof(buf), &cap),
		     -EINVAL);
}

static void t_cap_issue_sync_async_and_failing(void)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new(NULL);
	struct ferry_keyring *kr = kr_new();
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_token_req req = token_req(AUD);
	struct slow_issuer is = { .kr = kr, .delay_ms = 200 };
	struct ferry_token_info info;
	uint8_t buf[FERRY_TOKEN_MAX_LEN];
	struct ferry_cap cap;
	struct reply r;
	int ret;

	issue_local(cli, srv, s, kr);

	/* (b) A plug-in that answers later, from its own thread: an IOU,
	 * and the server gets the token it issued. */
	ret = ferry_cap_issue(s, &slow_ops, &is, &req, buf, sizeof(buf), &cap);
	cr_assert_eq(ret, 0, "slow issue: %s", ferry_strerror(ret));
	cr_assert_eq(cap.kind, FERRY_CAP_IOU);
	call(cli, s, M_WAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(r.res, 0, "async issue: %s", ferry_strerror(r.res));
	cr_assert_eq(g.kind0, FERRY_CAP_IOU);
	cr_assert_eq(g.peek, -EINPROGRESS, "the token came before its time");
	cr_assert_eq(ferry_token_verify(kr, r.data, r.len,
					FERRY_TOKEN_SUBREQUEST, AUD, &info),
		     0);
	cr_assert_str_eq(info.target, CHANNEL);
	cr_assert_str_eq(info.entrypoint, "get");
	cr_assert_eq(stats(srv).iou_resolved, 1);

	/* (c) One that fails later: the server's wait fails with its
	 * error. */
	is.fail = -FERRY_TOKEN_EKEYRETIRED;
	ret = ferry_cap_issue(s, &slow_ops, &is, &req, buf, sizeof(buf), &cap);
	cr_assert_eq(ret, 0);
	cr_assert_eq(cap.kind, FERRY_CAP_IOU);
	call(cli, s, M_WAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(r.res, -FERRY_TOKEN_EKEYRETIRED, "got %s",
		     ferry_strerror(r.res));
	cr_assert_eq(g.wait_res[g.waits - 1], -FERRY_TOKEN_EKEYRETIRED);
	cr_assert_eq(stats(srv).iou_rejected, 1);
	slow_join(&is);
	cr_assert_eq(atomic_load(&is.completed), 2);
	cr_assert_eq(atomic_load(&is.cancels), 0);
	PUMP(cli, srv, 200, false); /* let the last PUSH be acknowledged */

	/* (d) The session ends first: the issuance is cancelled, and the
	 * result that comes later is dropped. */
	is.fail = 0;
	is.delay_ms = 300;
	ret = ferry_cap_issue(s, &slow_ops, &is, &req, buf, sizeof(buf), &cap);
	cr_assert_eq(ret, 0);
	call(cli, s, M_WAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.dispatched == 4);
	cr_assert_eq(g.dispatched, 4);
	ferry_session_close(s);
	cr_assert_eq(r.res, -ECANCELED);
	cr_assert_eq(atomic_load(&is.cancels), 1);
	slow_join(&is);
	cr_assert_eq(atomic_load(&is.complete_cancelled), 1);
	cr_assert_eq(atomic_load(&is.completed), 2);
	PUMP(cli, srv, 3000, g.waits == 4);
	cr_assert_eq(g.wait_res[3], -ECONNRESET);
	cr_assert_eq(stats(cli).ious_pushed, 2);

	/* (e) The caller takes an IOU back before naming it: the issuance
	 * is cancelled first, so its later result touches nothing freed
	 * (ASan watches), and nothing is pushed. */
	s = open_session(cli, srv);
	ret = ferry_cap_issue(s, &slow_ops, &is, &req, buf, sizeof(buf), &cap);
	cr_assert_eq(ret, 0);
	cr_assert_eq(cap.kind, FERRY_CAP_IOU);
	cr_assert_eq(ferry_iou_cancel((struct ferry_iou *)cap.data), 0);
	cr_assert_eq(atomic_load(&is.cancels), 2);
	slow_join(&is);
	cr_assert_eq(atomic_load(&is.complete_cancelled), 2);
	PUMP(cli, srv, 100, false);
	cr_assert_eq(stats(cli).ious_pushed, 2);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	ferry_keyring_free(kr);
}

/* ===================================================================== */
/* 12. Randomized                                                          */
/* ===================================================================== */

#define RAND_N 256
#define RAND_CAPS 3

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: reproducible from the printed seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* The token meant for cap @j of call @k: unique bytes, varied length. */
static size_t rand_tok(uint32_t k, uint32_t j, uint8_t *out)
{
	size_t len = 8 + (k * 13u + j * 7u) % 120u;

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(k * 31u + j * 17u + i);
	out[0] = (uint8_t)(k >> 8);
	out[1] = (uint8_t)k;
	out[2] = (uint8_t)j;
	out[3] = 0xa5;
	return len;
}

static struct {
	unsigned ncaps[RAND_N + 1];
	uint8_t kinds[RAND_N + 1][RAND_CAPS];
	uint32_t order[RAND_N];
	unsigned norder;
	unsigned ok, bad;
	/* Client side. */
	unsigned done, failed, mismatched;
} rs;

/* The resolver: keeps promises from its own thread, each at its due
 * time, so they settle in an order unrelated to the calls'. */
struct rjob {
	struct ferry_iou *iou;
	uint64_t due_ms;
	uint32_t k, j;
};

static struct {
	pthread_mutex_t mu;
	struct rjob jobs[RAND_N * RAND_CAPS];
	unsigned n;
	bool stop;
	atomic_uint resolved;
	atomic_uint errors;
} rv = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *resolver(void *arg)
{
	(void)arg;
	for (;;) {
		struct rjob job;
		unsigned best = UINT32_MAX;
		uint64_t now = now_ms();
		uint8_t tok[256];
		size_t len;

		pthread_mutex_lock(&rv.mu);
		for (unsigned i = 0; i < rv.n; i++)
			if (rv.jobs[i].due_ms <= now &&
			    (best == UINT32_MAX ||
			     rv.jobs[i].due_ms < rv.jobs[best].due_ms))
				best = i;
		if (best == UINT32_MAX) {
			bool stop = rv.stop && rv.n == 0;

			pthread_mutex_unlock(&rv.mu);
			if (stop)
				return NULL;
			sleep_ms(1);
			continue;
		}
		job = rv.jobs[best];
		rv.jobs[best] = rv.jobs[--rv.n];
		pthread_mutex_unlock(&rv.mu);
		len = rand_tok(job.k, job.j, tok);
		if (ferry_iou_resolve(job.iou, tok, len) != 0)
			atomic_fetch_add(&rv.errors, 1);
		atomic_fetch_add(&rv.resolved, 1);
	}
}

static void rand_ready(int res, void *ctx)
{
	struct ferry_call *c = ctx;
	const uint8_t *p;
	size_t plen;
	uint32_t k, verdict = 0;
	uint8_t out[8];

	p = ferry_call_req(c, &plen);
	cr_assert_eq(plen, 4);
	k = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    p[3];
	if (res < 0) {
		rs.bad++;
		ferry_call_respond_error(c, res);
		return;
	}
	for (unsigned j = 0; j < rs.ncaps[k]; j++) {
		uint8_t want[256];
		size_t wlen = rand_tok(k, j, want);
		const void *tok;
		size_t len;

		if (ferry_call_cap(c, j, &tok, &len) != 0 || len != wlen ||
		    memcmp(tok, want, wlen) != 0)
			verdict |= 1u << j;
	}
	if (ferry_call_cap(c, rs.ncaps[k], NULL, NULL) != -ENOENT)
		verdict |= 0x100;
	if (verdict)
		rs.bad++;
	else
		rs.ok++;
	memcpy(out, p, 4);
	memcpy(out + 4, &verdict, 4);
	respond_bytes(c, out, sizeof(out));
}

static void rand_handler(struct ferry_call *c, void *ctx)
{
	const uint8_t *p;
	size_t plen;
	uint32_t k;
	int ret;

	(void)ctx;
	p = ferry_call_req(c, &plen);
	cr_assert_eq(plen, 4);
	k = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    p[3];
	cr_assert(k >= 1 && k <= RAND_N);
	cr_assert_lt(rs.norder, RAND_N);
	rs.order[rs.norder++] = k;
	cr_assert_eq(ferry_call_ncaps(c), rs.ncaps[k], "call %u", k);
	for (unsigned j = 0; j < rs.ncaps[k]; j++)
		cr_assert_eq(ferry_call_cap_kind(c, j), rs.kinds[k][j],
			     "call %u cap %u", k, j);
	ret = ferry_call_caps_ready(c, rand_ready, c);
	cr_assert_eq(ret, 0, "call %u: ferry_call_caps_ready: %s", k,
		     ferry_strerror(ret));
}

static void rand_cont(int res, const void *data, size_t len, void *ctx)
{
	uint32_t k = (uint32_t)(uintptr_t)ctx, verdict;
	const uint8_t *p = data;

	rs.done++;
	if (res != 0) {
		rs.failed++;
		fprintf(stderr, "call %u failed: %s\n", k, ferry_strerror(res));
		return;
	}
	if (len != 8 ||
	    ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	     (uint32_t)p[2] << 8 | p[3]) != k) {
		rs.mismatched++;
		return;
	}
	memcpy(&verdict, p + 4, 4);
	if (verdict) {
		rs.mismatched++;
		fprintf(stderr, "call %u: tokens wrong (0x%x)\n", k, verdict);
	}
}

/* Call @k of the randomized test: up to RAND_CAPS entries, each a token
 * or an IOU at random; the IOUs go to the resolver once the call is made.
 * Returns how many. */
static unsigned rand_call(struct ferry_endpoint *cli, struct ferry_session *s,
			  uint32_t k)
{
	struct ferry_cap caps[RAND_CAPS];
	uint8_t toks[RAND_CAPS][256];
	struct ferry_iou *ious[RAND_CAPS];
	struct ferry_msgbuf *mb;
	unsigned n = (unsigned)(rng() % (RAND_CAPS + 1));
	unsigned nious = 0;
	uint8_t *p;
	int ret;

	rs.ncaps[k] = n;
	for (unsigned j = 0; j < n; j++) {
		ious[j] = NULL;
		if (rng() % 2) {
			int r = ferry_iou_new(s, NULL, NULL, &ious[j]);

			cr_assert_eq(r, 0);
			caps[j] = iou_cap(ious[j]);
			rs.kinds[k][j] = FERRY_CAP_IOU;
		} else {
			caps[j] = tok_cap(toks[j], rand_tok(k, j, toks[j]));
			rs.kinds[k][j] = FERRY_CAP_TOKEN;
		}
	}
	cr_assert_eq(ferry_msgbuf_alloc(cli, 4, &mb), 0);
	p = ferry_msgbuf_data(mb);
	p[0] = (uint8_t)(k >> 24);
	p[1] = (uint8_t)(k >> 16);
	p[2] = (uint8_t)(k >> 8);
	p[3] = (uint8_t)k;
	ret = ferry_call_caps(s, M_RAND, mb, caps, n, 0, rand_cont,
			      (void *)(uintptr_t)k);
	cr_assert_eq(ret, 0, "call %u: %s", k, ferry_strerror(ret));
	pthread_mutex_lock(&rv.mu);
	for (unsigned j = 0; j < n; j++) {
		if (!ious[j])
			continue;
		rv.jobs[rv.n++] = (struct rjob){
			.iou = ious[j],
			.due_ms = now_ms() + rng() % 30,
			.k = k,
			.j = j,
		};
		nious++;
	}
	pthread_mutex_unlock(&rv.mu);
	return nious;
}

static void t_randomized_calls_and_ious(void)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st, ct;
	const char *env = getenv("FERRY_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	unsigned nious = 0;
	uint32_t k = 1;
	pthread_t tid;

	fprintf(stderr, "randomized_calls_and_ious: seed %llu "
			"(FERRY_TEST_SEED to repeat)\n",
		(unsigned long long)seed);
	rng_state = seed ? seed : 1;
	memset(&rs, 0, sizeof(rs));
	ep_config(&cfg);
	cfg.iou_max = 1024;
	/* Every request and table may wait in the client at once. */
	cfg.pool[0] = (struct ferry_pool_class){ 512, 4096 };
	srv = server_make(&cfg);
	cli = ep_make(&cfg);
	cr_assert_eq(ferry_endpoint_register(srv, M_RAND, rand_handler, NULL),
		     0);
	s = open_session(cli, srv);
	cr_assert_eq(pthread_create(&tid, NULL, resolver, NULL), 0);

	/* Calls in bursts of random size, the endpoints polled a random
	 * while between bursts; each burst's IOUs go to the resolver once
	 * the calls naming them are made. */
	while (k <= RAND_N) {
		unsigned burst = 1 + (unsigned)(rng() % 40);

		for (; burst && k <= RAND_N; burst--, k++)
			nious += rand_call(cli, s, k);
		PUMP(cli, srv, (unsigned)(rng() % 5), false);
	}
	pthread_mutex_lock(&rv.mu);
	rv.stop = true;
	pthread_mutex_unlock(&rv.mu);
	PUMP(cli, srv, 30000, rs.done == RAND_N);
	cr_assert_eq(pthread_join(tid, NULL), 0);
	cr_assert_eq(rs.done, RAND_N, "seed %llu: %u of %u calls ended",
		     (unsigned long long)seed, rs.done, RAND_N);
	cr_assert_eq(atomic_load(&rv.errors), 0, "seed %llu",
		     (unsigned long long)seed);
	cr_assert_eq(atomic_load(&rv.resolved), nious);
	cr_assert_eq(rs.failed, 0, "seed %llu", (unsigned long long)seed);
	cr_assert_eq(rs.mismatched, 0, "seed %llu", (unsigned long long)seed);
	cr_assert_eq(rs.bad, 0);
	cr_assert_eq(rs.ok, RAND_N);
	cr_assert_eq(rs.norder, RAND_N);
	for (unsigned i = 0; i < RAND_N; i++)
		cr_assert_eq(rs.order[i], i + 1,
			     "seed %llu: dispatch %u was call %u",
			     (unsigned long long)seed, i + 1, rs.order[i]);
	st = stats(srv);
	cr_assert_eq(st.iou_created, nious);
	cr_assert_eq(st.iou_resolved, nious);
	cr_assert_eq(st.iou_rejected, 0);
	ct = stats(cli);
	cr_assert_eq(ct.ious_promised, nious);
	cr_assert_eq(ct.ious_pushed, nious);
	cr_assert_eq(ct.ious_dropped, 0);
	fprintf(stderr, "randomized_calls_and_ious: %u calls, %u IOUs\n",
		RAND_N, nious);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* A lossy network                                                         */
/* ===================================================================== */

/* Loss, duplication, reordering and corruption (caught by checksums) on
 * both sides: PUSHes are sent again until acknowledged, a network
 * duplicate dies by its seq (never an iou_dup_push), a PUSH reordered
 * ahead of its call waits for it, and every call gets its tokens. */
static void t_lossy_network(void)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st, ct;
	enum { N = 60 };
	static struct reply r[N];
	static uint8_t toks[N][2][40];
	unsigned nious = 0;

	ep_config(&cfg);
	cfg.wire_csum = true;
	cfg.faults = (struct ferry_faults){ .loss = 0.1, .dup = 0.1,
					    .reorder = 0.1, .corrupt = 0.05,
					    .seed = 77 };
	srv = server_make(&cfg);
	cfg.faults.seed = 78;
	cli = ep_make(&cfg);
	s = open_session(cli, srv);
	for (unsigned i = 0; i < N; i++) {
		struct ferry_iou *a, *b;
		struct ferry_cap caps[2];
		unsigned n = 1 + i % 2;

		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &a), 0);
		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &b), 0);
		caps[0] = iou_cap(a);
		caps[1] = iou_cap(b);
		call(cli, s, M_READY, caps, n, &r[i]);
		fill_tok(toks[i][0], 40, 1000 + 2 * i);
		fill_tok(toks[i][1], 40, 1001 + 2 * i);
		cr_assert_eq(ferry_iou_resolve(a, toks[i][0], 40), 0);
		if (n == 2)
			cr_assert_eq(ferry_iou_resolve(b, toks[i][1], 40), 0);
		else
			cr_assert_eq(ferry_iou_cancel(b), 0);
		nious += n;
		if (i % 8 == 7)
			PUMP(cli, srv, 5, false);
	}
	for (unsigned i = 0; i < N; i++) {
		const uint8_t *want[2] = { toks[i][0], toks[i][1] };
		const size_t wlen[2] = { 40, 40 };

		PUMP(cli, srv, 10000, r[i].done);
		cr_assert(r[i].done, "call %u never ended", i);
		cr_assert_eq(r[i].res, 0, "call %u: %s", i,
			     ferry_strerror(r[i].res));
		check_ready_reply(&r[i], want, wlen, 1 + i % 2);
	}
	st = stats(srv);
	ct = stats(cli);
	/* The faults did happen. */
	cr_assert_gt(st.fault_loss + st.fault_dup + st.fault_reorder +
			     st.fault_corrupt,
		     0);
	cr_assert_gt(ct.retransmits, 0);
	cr_assert_eq(st.iou_created, nious);
	cr_assert_eq(st.iou_resolved, nious);
	cr_assert_eq(st.iou_rejected, 0);
	cr_assert_eq(st.iou_dup_push, 0, "a network duplicate counted");
	cr_assert_eq(st.iou_push_dropped, 0);
	cr_assert_eq(ct.ious_pushed, nious);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* --- the battery, per dataplane ------------------------------------------ */

#define IOU_ISSUE_CASES(CASE, s)                                               \
	CASE(s, push_check_rejects_bad_tokens)                                 \
	CASE(s, cap_issue_sync_async_and_failing)                              \
	CASE(s, randomized_calls_and_ious)                                     \
	CASE(s, lossy_network)

HARNESS_BATTERY(iou_issue, IOU_ISSUE_CASES, .timeout = 60)
