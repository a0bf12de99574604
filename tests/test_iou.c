/* SPDX-License-Identifier: MIT */
/*
 * test_iou.c - Criterion tests for deferred tokens (IOUs; ferry/iou.h,
 * docs/wire.md section 8) on real endpoints over the uring dataplane on
 * 127.0.0.1.
 *
 * Each test drives a server and a client endpoint from one thread: the
 * PUMP() loop polls both until what the test waits for happens.  Where a
 * case needs frames no ferry client sends -- a PUSH ahead of its call, two
 * PUSHes for one IOU -- a raw UDP peer speaks the wire by hand.  IOUs are
 * kept from other threads where the API allows it (an issuer plug-in's
 * worker, the randomized test's resolver), as a real token authority would.
 *
 * Server-side observations go to one global record (g); every Criterion
 * test runs in a process of its own, so nothing leaks between tests.
 * The randomized test prints its seed (FERRY_TEST_SEED repeats a run).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <ferry/token.h>

#include "transport/wire.h"

#include "raw_peer.h"

#define AUD "iou-test-server"
#define CHANNEL "svc/iou"

/* Server methods. */
#define M_WAIT 1      /* ferry_call_cap_wait on entry 0; answers from the
		       * wait's callback with the token or its error */
#define M_PEEK 2      /* ferry_call_cap on entry 0 at once; answers the
		       * token or that call's error, without waiting */
#define M_HOLD 3      /* keeps the call in g.held for the test */
#define M_HOLDWAIT 4  /* keeps the call, and waits on entry 0 (the wait
		       * only records) */
#define M_READY 5     /* ferry_call_caps_ready; answers every token, each
		       * as a 2-byte length and the bytes */
#define M_RAND 6      /* the randomized test's handler */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* --- endpoints ------------------------------------------------------------ */

static void cfg_init(struct ferry_ep_config *cfg)
{
	ferry_ep_config_init(cfg);
	cfg->bind_addr = "127.0.0.1";
	cfg->max_sessions = 4;
	/* Small pools: the tests move little data, and each endpoint's
	 * memory is faulted in at creation. */
	cfg->pool[0] = (struct ferry_pool_class){ 512, 512 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 16 };
	cfg->pool[2] = (struct ferry_pool_class){ 0, 0 };
	cfg->pool[3] = (struct ferry_pool_class){ 0, 0 };
}

static struct ferry_endpoint *ep_make(const struct ferry_ep_config *cfg)
{
	struct ferry_endpoint *ep;
	int ret = ferry_endpoint_create(cfg, &ep);

	cr_assert_eq(ret, 0, "ferry_endpoint_create: %s", ferry_strerror(ret));
	return ep;
}

static struct ferry_endpoint *ep_new(void)
{
	struct ferry_ep_config cfg;

	cfg_init(&cfg);
	return ep_make(&cfg);
}

static void pump_once(struct ferry_endpoint *a, struct ferry_endpoint *b)
{
	if (a)
		ferry_endpoint_poll(a, 0);
	if (b)
		ferry_endpoint_poll(b, 1);
}

/* Poll @a and @b until @cond holds or @ms pass (the caller asserts @cond).
 * PUMP(a, b, ms, false) just drives both for @ms. */
#define PUMP(a, b, ms, cond)                                                   \
	for (uint64_t pump_end_ = now_ms() + (ms);                             \
	     !(cond) && now_ms() < pump_end_;)                                 \
	pump_once((a), (b))

static struct ferry_ep_stats stats(const struct ferry_endpoint *ep)
{
	struct ferry_ep_stats st;

	ferry_endpoint_stats(ep, &st);
	return st;
}

/* --- what the server saw ------------------------------------------------ */

#define REC_MAX 64

static struct {
	struct ferry_endpoint *srv;
	unsigned dispatched;
	struct ferry_call *held[REC_MAX];
	unsigned nheld;
	/* The handler's first look at entry 0. */
	int kind0;
	int peek;
	/* Single waits, in completion order. */
	unsigned waits;
	int wait_res[REC_MAX];
	uint8_t wait_tok[FERRY_PUSH_TOKEN_MAX_LEN];
	size_t wait_len;
	/* ferry_call_caps_ready completions. */
	unsigned readies;
	int ready_res[REC_MAX];
	bool in_handler;
	bool ready_in_handler[REC_MAX];
} g;

static void g_reset(struct ferry_endpoint *srv)
{
	memset(&g, 0, sizeof(g));
	g.srv = srv;
}

static void respond_bytes(struct ferry_call *c, const void *p, size_t n)
{
	struct ferry_msgbuf *mb;

	cr_assert_eq(ferry_msgbuf_alloc(g.srv, n, &mb), 0);
	memcpy(ferry_msgbuf_data(mb), p, n);
	ferry_call_respond(c, mb);
}

static void record_wait(int res, const void *tok, size_t len)
{
	if (g.waits < REC_MAX)
		g.wait_res[g.waits] = res;
	g.waits++;
	if (res == 0) {
		cr_assert_not_null(tok);
		cr_assert_leq(len, sizeof(g.wait_tok));
		memcpy(g.wait_tok, tok, len);
		g.wait_len = len;
	} else {
		cr_assert_null(tok, "a failed wait carries no token");
	}
}

/* M_WAIT's wait: answer the call (@ctx) from here. */
static void wait_answer(int res, const void *tok, size_t len, void *ctx)
{
	struct ferry_call *c = ctx;

	record_wait(res, tok, len);
	if (res == 0)
		respond_bytes(c, tok, len);
	else
		ferry_call_respond_error(c, res);
}

/* M_HOLDWAIT's wait: only record. */
static void wait_note(int res, const void *tok, size_t len, void *ctx)
{
	(void)ctx;
	record_wait(res, tok, len);
}

static void first_look(struct ferry_call *c)
{
	g.dispatched++;
	g.kind0 = ferry_call_cap_kind(c, 0);
	g.peek = ferry_call_cap(c, 0, NULL, NULL);
}

static void wait_handler(struct ferry_call *c, void *ctx)
{
	int ret;

	(void)ctx;
	first_look(c);
	ret = ferry_call_cap_wait(c, 0, wait_answer, c);
	cr_assert_eq(ret, 0, "ferry_call_cap_wait: %s", ferry_strerror(ret));
}

static void peek_handler(struct ferry_call *c, void *ctx)
{
	const void *tok;
	size_t len;
	int ret;

	(void)ctx;
	first_look(c);
	ret = ferry_call_cap(c, 0, &tok, &len);
	if (ret == 0)
		respond_bytes(c, tok, len);
	else
		ferry_call_respond_error(c, ret);
}

static void hold_handler(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	first_look(c);
	cr_assert_lt(g.nheld, REC_MAX);
	g.held[g.nheld++] = c;
}

static void holdwait_handler(struct ferry_call *c, void *ctx)
{
	hold_handler(c, ctx);
	cr_assert_eq(ferry_call_cap_wait(c, 0, wait_note, NULL), 0);
}

/* M_READY's completion: every token, as 2-byte length + bytes. */
static void ready_answer(int res, void *ctx)
{
	struct ferry_call *c = ctx;
	uint8_t out[4096];
	size_t n = 0;

	cr_assert_lt(g.readies, REC_MAX);
	g.ready_in_handler[g.readies] = g.in_handler;
	g.ready_res[g.readies++] = res;
	if (res < 0) {
		ferry_call_respond_error(c, res);
		return;
	}
	for (unsigned i = 0; i < ferry_call_ncaps(c); i++) {
		const void *tok;
		size_t len;
		int ret = ferry_call_cap(c, i, &tok, &len);

		cr_assert_eq(ret, 0, "entry %u after ready: %s", i,
			     ferry_strerror(ret));
		cr_assert_leq(n + 2 + len, sizeof(out));
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
		memcpy(out + n, tok, len);
		n += len;
	}
	if (n == 0)
		out[n++] = 0; /* a table-less call: one byte */
	respond_bytes(c, out, n);
}

static void ready_handler(struct ferry_call *c, void *ctx)
{
	int ret;

	(void)ctx;
	first_look(c);
	g.in_handler = true;
	ret = ferry_call_caps_ready(c, ready_answer, c);
	g.in_handler = false;
	cr_assert_eq(ret, 0, "ferry_call_caps_ready: %s", ferry_strerror(ret));
}

static struct ferry_endpoint *server_make(const struct ferry_ep_config *cfg)
{
	struct ferry_endpoint *srv = ep_make(cfg);

	g_reset(srv);
	cr_assert_eq(ferry_endpoint_register(srv, M_WAIT, wait_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_PEEK, peek_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_HOLD, hold_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_HOLDWAIT,
					     holdwait_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_READY, ready_handler,
					     NULL),
		     0);
	return srv;
}

static struct ferry_endpoint *server_new(void)
{
	struct ferry_ep_config cfg;

	cfg_init(&cfg);
	return server_make(&cfg);
}

/* --- the client ---------------------------------------------------------- */

struct conn {
	bool done;
	int res;
};

static void on_connect(struct ferry_session *s, int res, void *ctx)
{
	struct conn *c = ctx;

	(void)s;
	c->done = true;
	c->res = res;
}

static struct ferry_session *open_session(struct ferry_endpoint *cli,
					  struct ferry_endpoint *srv)
{
	struct ferry_session *s;
	struct conn c = { 0 };

	cr_assert_eq(ferry_session_connect(cli, "127.0.0.1",
					   ferry_endpoint_port(srv), NULL,
					   on_connect, &c, &s),
		     0);
	PUMP(cli, srv, 3000, c.done);
	cr_assert(c.done, "connect never ended");
	cr_assert_eq(c.res, 0, "connect: %s", ferry_strerror(c.res));
	return s;
}

struct reply {
	bool done;
	int res;
	uint8_t data[4096];
	size_t len;
};

static void on_reply(int res, const void *data, size_t len, void *ctx)
{
	struct reply *r = ctx;

	cr_assert_not(r->done, "a continuation ran twice");
	r->done = true;
	r->res = res;
	r->len = len;
	if (res == 0) {
		cr_assert_leq(len, sizeof(r->data));
		memcpy(r->data, data, len);
	}
}

static struct ferry_msgbuf *msg(struct ferry_endpoint *ep, size_t len)
{
	struct ferry_msgbuf *mb;

	cr_assert_eq(ferry_msgbuf_alloc(ep, len, &mb), 0);
	memset(ferry_msgbuf_data(mb), 0x5a, len);
	return mb;
}

/* A call of @m with @caps and an 8-byte payload; asserts it started. */
static void call(struct ferry_endpoint *cli, struct ferry_session *s,
		 uint16_t m, const struct ferry_cap *caps, unsigned n,
		 struct reply *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = ferry_call_caps(s, m, msg(cli, 8), caps, n, 0, on_reply, r);
	cr_assert_eq(ret, 0, "ferry_call_caps: %s", ferry_strerror(ret));
}

static struct ferry_cap iou_cap(struct ferry_iou *iou)
{
	return (struct ferry_cap){ .kind = FERRY_CAP_IOU, .data = iou };
}

static struct ferry_cap tok_cap(const void *p, size_t n)
{
	return (struct ferry_cap){ .kind = FERRY_CAP_TOKEN, .data = p,
				   .len = n };
}

/* A promise whose hooks count what the transport tells its keeper. */
struct promise {
	struct ferry_iou *iou;
	int cancels;
	int releases;
	/* The cancel hook keeps the promise itself (ferry_iou_fail). */
	bool fail_in_cancel;
	int cancel_ret;
};

static void promise_cancel(void *arg)
{
	struct promise *p = arg;

	p->cancels++;
	if (p->fail_in_cancel)
		p->cancel_ret = ferry_iou_fail(p->iou, -ECANCELED);
}

static void promise_release(void *arg)
{
	struct promise *p = arg;

	p->releases++;
}

static const struct ferry_iou_hooks counted_hooks = {
	.cancel = promise_cancel,
	.release = promise_release,
};

static const struct ferry_iou_hooks release_only_hooks = {
	.release = promise_release,
};

static void promise_new(struct ferry_session *s, struct promise *p,
			const struct ferry_iou_hooks *hooks)
{
	int ret;

	memset(p, 0, sizeof(*p));
	ret = ferry_iou_new(s, hooks, p, &p->iou);
	cr_assert_eq(ret, 0, "ferry_iou_new: %s", ferry_strerror(ret));
}

/* A token-like byte string, unique for @tag. */
static size_t fill_tok(uint8_t *out, size_t len, uint32_t tag)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(tag * 131u + i * 7u + (i >> 8));
	if (len >= 4)
		memcpy(out, &tag, 4);
	return len;
}

/* --- raw UDP peer (raw_peer.h) ---------------------------------------- */

/* A raw client connected to @srv, which must say it takes IOUs. */
static void raw_connect_iou(struct raw *r, struct ferry_endpoint *srv)
{
	cr_assert(raw_connect(r, srv, 0x00090001, 0, NULL, 0) & FERRY_FEAT_IOU);
}

static void raw_data_hdr(struct raw *r, struct ferry_hdr *h, uint8_t type)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->dst_sess = r->srv_sess;
	h->src_sess = r->my_sess;
	h->seq = r->seq++;
	h->credit = 1u << 20;
}

/* A one-frame REQUEST of @method whose table names the IOUs @ids (and
 * one payload byte); returns its req_id. */
static uint32_t raw_request(struct raw *r, uint16_t method,
			    const uint64_t *ids, unsigned n)
{
	struct ferry_cap_ent ents[FERRY_WIRE_CAPS_MAX];
	uint8_t vals[FERRY_WIRE_CAPS_MAX][FERRY_CAPS_IOU_LEN];
	uint8_t m[FERRY_WIRE_CAPS_MAX_LEN + 1];
	struct ferry_hdr h;
	int len;

	cr_assert(n >= 1 && n <= FERRY_WIRE_CAPS_MAX);
	for (unsigned i = 0; i < n; i++) {
		/* The id travels big-endian, as ferry_call_caps writes it. */
		for (unsigned k = 0; k < 8; k++)
			vals[i][k] = (uint8_t)(ids[i] >> (56 - 8 * k));
		ents[i] = (struct ferry_cap_ent){ FERRY_CAPK_IOU, vals[i],
						  FERRY_CAPS_IOU_LEN };
	}
	len = ferry_wire_put_caps(m, sizeof(m) - 1, ents, n);
	cr_assert(len > 0);
	m[len++] = 'x';
	raw_data_hdr(r, &h, FERRY_FT_REQUEST);
	h.flags = FERRY_FF_CAPS;
	h.method = method;
	h.req_id = r->next_req++;
	h.msg_len = (uint32_t)len;
	raw_send(r, &h, m, (size_t)len);
	return h.req_id;
}

/* A PUSH for IOU @id: the token @tok/@len, or the error @code. */
static void raw_push(struct raw *r, uint64_t id, uint32_t code,
		     const void *tok, size_t len)
{
	struct ferry_push p = { .iou = id, .code = code, .token = tok,
				.token_len = (uint16_t)len };
	uint8_t body[FERRY_PUSH_HDR_LEN + FERRY_PUSH_TOKEN_MAX];
	struct ferry_hdr h;
	int n = ferry_wire_put_push(body, sizeof(body), &p);

	cr_assert(n > 0);
	raw_data_hdr(r, &h, FERRY_FT_PUSH);
	h.msg_len = (uint32_t)n;
	raw_send(r, &h, body, (size_t)n);
}

/* The response to @req_id: its error code (0 for a normal one), and its
 * payload in @out/@len. */
static uint32_t raw_response(struct raw *r, struct ferry_endpoint *srv,
			     uint32_t req_id, uint8_t *out, size_t *len)
{
	uint8_t buf[2048];
	struct ferry_frame f;
	uint32_t code;
	const char *m;
	uint16_t mlen;

	cr_assert(raw_recv(r, srv, FERRY_FT_RESPONSE, req_id, &f, buf,
			   sizeof(buf)),
		  "no response to request %u", req_id);
	*len = 0;
	if (!(f.h.flags & FERRY_FF_ERR)) {
		memcpy(out, f.payload, f.pay_len);
		*len = f.pay_len;
		return 0;
	}
	cr_assert_eq(ferry_wire_parse_error(f.payload, f.pay_len, &code, &m,
					    &mlen),
		     0);
	return code;
}

TestSuite(iou, .timeout = 60);

/* ===================================================================== */
/* 1. The PUSH follows the call                                            */
/* ===================================================================== */

Test(iou, push_after_call_completes_the_wait)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_ep_stats st, ct;
	struct promise p;
	struct ferry_cap cap;
	struct reply r;
	uint8_t tok[200];

	fill_tok(tok, sizeof(tok), 1);
	promise_new(s, &p, &counted_hooks);
	cap = iou_cap(p.iou);
	call(cli, s, M_WAIT, &cap, 1, &r);
	/* The handler runs at its turn without the token and waits. */
	PUMP(cli, srv, 3000, g.dispatched == 1);
	cr_assert_eq(g.dispatched, 1, "the handler never ran");
	cr_assert_eq(g.kind0, FERRY_CAP_IOU);
	cr_assert_eq(g.peek, -EINPROGRESS);
	PUMP(cli, srv, 50, false);
	cr_assert_not(r.done);
	cr_assert_eq(g.waits, 0);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 0);

	/* Kept now, after the call went out. */
	cr_assert_eq(ferry_iou_resolve(p.iou, tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done, "the call never ended");
	cr_assert_eq(r.res, 0, "call: %s", ferry_strerror(r.res));
	cr_assert_eq(g.waits, 1);
	cr_assert_eq(g.wait_res[0], 0);
	cr_assert_eq(g.wait_len, sizeof(tok));
	cr_assert_arr_eq(g.wait_tok, tok, sizeof(tok));
	cr_assert_eq(r.len, sizeof(tok));
	cr_assert_arr_eq(r.data, tok, sizeof(tok));

	/* The client lets go of the promise once its PUSH is acknowledged;
	 * no cancel, one release. */
	PUMP(cli, srv, 3000, p.releases == 1);
	cr_assert_eq(p.releases, 1);
	cr_assert_eq(p.cancels, 0);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 1);
	cr_assert_eq(st.iou_rejected, 0);
	cr_assert_eq(st.iou_push_early, 0);
	cr_assert_eq(st.iou_dup_push, 0);
	cr_assert_eq(st.iou_bad_token, 0);
	ct = stats(cli);
	cr_assert_eq(ct.ious_promised, 1);
	cr_assert_eq(ct.ious_pushed, 1);
	cr_assert_eq(ct.ious_dropped, 0);
	ferry_session_close(s);
	cr_assert_eq(p.releases, 1);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 2. The PUSH comes first                                                 */
/* ===================================================================== */

/* A ferry client sends a PUSH only behind its call (a promise may not be
 * named once kept), so a PUSH that overtakes its call -- reordered, or
 * behind a request fragment that was lost -- is played by a raw peer. */
Test(iou, push_before_call_is_buffered)
{
	struct ferry_endpoint *srv = server_new();
	struct ferry_ep_stats st;
	struct raw r;
	uint8_t tok[77], tok2[33], out[2048];
	uint64_t ids[2];
	uint32_t req;
	size_t len;

	fill_tok(tok, sizeof(tok), 2);
	fill_tok(tok2, sizeof(tok2), 3);
	raw_connect_iou(&r, srv);
	raw_push(&r, 7, 0, tok, sizeof(tok));
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 1);
	st = stats(srv);
	cr_assert_eq(st.iou_push_early, 1);
	/* Buffered, not yet an IOU of any call. */
	cr_assert_eq(st.iou_created, 0);
	cr_assert_eq(st.iou_resolved, 0);

	/* The call that names it finds the token there at once. */
	ids[0] = 7;
	req = raw_request(&r, M_PEEK, ids, 1);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), 0);
	cr_assert_eq(g.kind0, FERRY_CAP_IOU);
	cr_assert_eq(g.peek, 0);
	cr_assert_eq(len, sizeof(tok));
	cr_assert_arr_eq(out, tok, sizeof(tok));
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 1);
	cr_assert_eq(st.iou_push_dropped, 0);

	/* A PUSH whose body breaks the rules (a nonzero reserved field) is
	 * dropped as malformed, and buffers nothing. */
	{
		uint8_t body[FERRY_PUSH_HDR_LEN + 4];
		struct ferry_push bp = { .iou = 8, .token = tok2,
					 .token_len = 4 };
		struct ferry_hdr h;

		cr_assert_eq(ferry_wire_put_push(body, sizeof(body), &bp),
			     (int)sizeof(body));
		body[15] = 1;
		raw_data_hdr(&r, &h, FERRY_FT_PUSH);
		h.msg_len = sizeof(body);
		raw_send(&r, &h, body, sizeof(body));
		PUMP(NULL, srv, 2000, stats(srv).drop_malformed == 1);
		cr_assert_eq(stats(srv).drop_malformed, 1);
		cr_assert_eq(stats(srv).iou_push_early, 1);
	}

	/* Several records in one PUSH are taken in order, all or none: a
	 * frame whose second record is malformed takes neither; a good
	 * one of two records buffers both. */
	{
		uint8_t body[2 * FERRY_PUSH_HDR_LEN + 8];
		struct ferry_push bp = { .iou = 20, .token = tok2,
					 .token_len = 4 };
		struct ferry_hdr h;
		int n = ferry_wire_put_push(body, sizeof(body), &bp);

		bp.iou = 21;
		n += ferry_wire_put_push(body + n, sizeof(body) - (size_t)n,
					 &bp);
		cr_assert_eq(n, (int)sizeof(body));
		body[sizeof(body) - 5] = 1; /* the second record's reserved */
		raw_data_hdr(&r, &h, FERRY_FT_PUSH);
		h.msg_len = sizeof(body);
		raw_send(&r, &h, body, sizeof(body));
		PUMP(NULL, srv, 2000, stats(srv).drop_malformed == 2);
		cr_assert_eq(stats(srv).drop_malformed, 2);
		cr_assert_eq(stats(srv).iou_push_early, 1);
		body[sizeof(body) - 5] = 0;
		raw_data_hdr(&r, &h, FERRY_FT_PUSH);
		h.msg_len = sizeof(body);
		raw_send(&r, &h, body, sizeof(body));
		PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 3);
		cr_assert_eq(stats(srv).iou_push_early, 3);
		ids[0] = 21;
		req = raw_request(&r, M_PEEK, ids, 1);
		cr_assert_eq(raw_response(&r, srv, req, out, &len), 0);
		cr_assert_eq(len, 4);
		cr_assert_arr_eq(out, tok2, 4);
		ids[0] = 20;
		req = raw_request(&r, M_PEEK, ids, 1);
		cr_assert_eq(raw_response(&r, srv, req, out, &len), 0);
		cr_assert_eq(len, 4);
	}

	/* Two more early: one token, one error.  Resolve-before-forward
	 * then completes before ferry_call_caps_ready returns, with the
	 * error. */
	raw_push(&r, 8, 0, tok2, sizeof(tok2));
	raw_push(&r, 9, EPERM, NULL, 0);
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 5);
	cr_assert_eq(stats(srv).iou_push_early, 5);
	ids[0] = 8;
	ids[1] = 9;
	req = raw_request(&r, M_READY, ids, 2);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), EPERM);
	cr_assert_eq(g.readies, 1);
	cr_assert_eq(g.ready_res[0], -EPERM);
	cr_assert(g.ready_in_handler[0], "it should complete at once");
	st = stats(srv);
	cr_assert_eq(st.iou_created, 5);
	cr_assert_eq(st.iou_resolved, 4);
	cr_assert_eq(st.iou_rejected, 1);
	cr_assert_eq(st.iou_push_dropped, 0);
	cr_assert_eq(ferry_ep_stats_drops(&st), 2); /* the malformed PUSHes */
	close(r.fd);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 3. The PUSH comes after the call was answered                           */
/* ===================================================================== */

/* The handler answers without waiting; the later PUSH still settles the
 * IOU.  Small IOU pools on both sides, used many times over, show that
 * promises and table entries are given back. */
Test(iou, push_after_answer_still_settles)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st, ct;
	enum { IOU_MAX = 4, ROUNDS = 3 * IOU_MAX };

	cfg_init(&cfg);
	cfg.iou_max = IOU_MAX;
	srv = server_make(&cfg);
	cli = ep_make(&cfg);
	s = open_session(cli, srv);
	for (unsigned i = 0; i < ROUNDS; i++) {
		struct promise p;
		struct ferry_cap cap;
		struct reply r;
		uint8_t tok[40];

		fill_tok(tok, sizeof(tok), 100 + i);
		promise_new(s, &p, &release_only_hooks);
		cap = iou_cap(p.iou);
		call(cli, s, M_PEEK, &cap, 1, &r);
		PUMP(cli, srv, 3000, r.done);
		cr_assert(r.done);
		cr_assert_eq(r.res, -EINPROGRESS, "round %u: %s", i,
			     ferry_strerror(r.res));
		cr_assert_eq(stats(srv).iou_resolved, i);
		cr_assert_eq(ferry_iou_resolve(p.iou, tok, sizeof(tok)), 0);
		PUMP(cli, srv, 3000,
		     stats(srv).iou_resolved == i + 1 && p.releases == 1);
		cr_assert_eq(stats(srv).iou_resolved, i + 1, "round %u", i);
		cr_assert_eq(p.releases, 1, "round %u", i);
	}
	st = stats(srv);
	cr_assert_eq(st.iou_created, ROUNDS);
	cr_assert_eq(st.iou_resolved, ROUNDS);
	cr_assert_eq(st.iou_rejected, 0);
	cr_assert_eq(st.iou_push_early, 0);
	cr_assert_eq(st.iou_push_dropped, 0);
	cr_assert_eq(st.calls_iou_refused, 0);
	ct = stats(cli);
	cr_assert_eq(ct.ious_promised, ROUNDS);
	cr_assert_eq(ct.ious_pushed, ROUNDS);
	/* Every promise came back: the pool holds IOU_MAX again. */
	{
		struct ferry_iou *ious[IOU_MAX + 1];

		for (unsigned i = 0; i < IOU_MAX; i++)
			cr_assert_eq(ferry_iou_new(s, NULL, NULL, &ious[i]), 0);
		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &ious[IOU_MAX]),
			     -ENOBUFS);
		for (unsigned i = 0; i < IOU_MAX; i++)
			cr_assert_eq(ferry_iou_cancel(ious[i]), 0);
	}
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 4. Never resolved                                                       */
/* ===================================================================== */

static int g_late_res;
static unsigned g_late_calls;

static void late_wait(int res, const void *tok, size_t len, void *ctx)
{
	(void)tok;
	(void)len;
	(void)ctx;
	g_late_res = res;
	g_late_calls++;
}

static void late_ready(int res, void *ctx)
{
	late_wait(res, NULL, 0, ctx);
}

Test(iou, never_resolved_times_out)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st;
	struct ferry_call *c;
	struct promise p;
	struct ferry_cap cap;
	struct reply r;
	uint64_t t0, waited;

	cfg_init(&cfg);
	cfg.iou_timeout_ms = 200;
	srv = server_make(&cfg);
	cli = ep_new();
	s = open_session(cli, srv);
	promise_new(s, &p, &counted_hooks);
	cap = iou_cap(p.iou);
	call(cli, s, M_HOLDWAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.nheld == 1);
	cr_assert_eq(g.nheld, 1);
	t0 = now_ms();
	PUMP(cli, srv, 3000, g.waits == 1);
	waited = now_ms() - t0;
	cr_assert_eq(g.waits, 1, "the wait never ended");
	cr_assert_eq(g.wait_res[0], -ETIMEDOUT, "wait: %s",
		     ferry_strerror(g.wait_res[0]));
	/* Not before its time (the deadline counts from the call's
	 * arrival, a little before t0), nor much after. */
	cr_assert_geq(waited, 150, "timed out after %llu ms",
		      (unsigned long long)waited);
	cr_assert_leq(waited, 1000, "timed out after %llu ms",
		      (unsigned long long)waited);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_rejected, 1);
	cr_assert_eq(st.iou_timed_out, 1);
	cr_assert_eq(st.iou_resolved, 0);

	/* Later uses report it, at once. */
	c = g.held[0];
	cr_assert_eq(ferry_call_cap(c, 0, NULL, NULL), -ETIMEDOUT);
	g_late_calls = 0;
	cr_assert_eq(ferry_call_cap_wait(c, 0, late_wait, NULL), 0);
	cr_assert_eq(g_late_calls, 1, "a wait on a rejected IOU ends at once");
	cr_assert_eq(g_late_res, -ETIMEDOUT);
	cr_assert_eq(ferry_call_caps_ready(c, late_ready, NULL), 0);
	cr_assert_eq(g_late_calls, 2);
	cr_assert_eq(g_late_res, -ETIMEDOUT);
	cr_assert_eq(ferry_call_respond_error(c, -ETIMEDOUT), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(r.res, -ETIMEDOUT);

	/* The promise is named: it cannot be taken back, only kept.  Kept
	 * late, it changes nothing on the server. */
	cr_assert_eq(ferry_iou_cancel(p.iou), -EBUSY);
	cr_assert_eq(ferry_iou_resolve(p.iou, "late", 4), 0);
	PUMP(cli, srv, 3000, p.releases == 1);
	cr_assert_eq(p.releases, 1);
	cr_assert_eq(p.cancels, 0);
	st = stats(srv);
	cr_assert_eq(st.iou_resolved, 0);
	cr_assert_eq(st.iou_rejected, 1);
	cr_assert_eq(st.iou_timed_out, 1);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 5. Resolved twice                                                       */
/* ===================================================================== */

/* Two PUSHes (two seqs: not a network duplicate) for one IOU, with
 * different tokens, while the call that names it is still unanswered:
 * the first stands, the second is counted as a protocol error. */
Test(iou, second_push_is_counted_and_ignored)
{
	struct ferry_endpoint *srv = server_new();
	struct ferry_ep_stats st;
	struct raw r;
	uint8_t first[50], second[50], out[2048];
	const void *tok;
	size_t len;
	uint64_t id = 0x0102030405060708ull;
	uint32_t req;

	fill_tok(first, sizeof(first), 10);
	fill_tok(second, sizeof(second), 11);
	raw_connect_iou(&r, srv);
	req = raw_request(&r, M_HOLDWAIT, &id, 1);
	PUMP(NULL, srv, 2000, g.nheld == 1);
	cr_assert_eq(g.nheld, 1);
	raw_push(&r, id, 0, first, sizeof(first));
	raw_push(&r, id, 0, second, sizeof(second));
	PUMP(NULL, srv, 2000, stats(srv).iou_dup_push == 1);
	st = stats(srv);
	cr_assert_eq(st.iou_dup_push, 1);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 1);
	cr_assert_eq(st.iou_rejected, 0);
	cr_assert_eq(st.iou_push_early, 0);
	/* The wait got the first; so does every later use. */
	cr_assert_eq(g.waits, 1);
	cr_assert_eq(g.wait_res[0], 0);
	cr_assert_eq(g.wait_len, sizeof(first));
	cr_assert_arr_eq(g.wait_tok, first, sizeof(first));
	cr_assert_eq(ferry_call_cap(g.held[0], 0, &tok, &len), 0);
	cr_assert_eq(len, sizeof(first));
	cr_assert_arr_eq(tok, first, sizeof(first));
	respond_bytes(g.held[0], tok, len);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), 0);
	cr_assert_eq(len, sizeof(first));
	cr_assert_arr_eq(out, first, sizeof(first));
	close(r.fd);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 6. Early pushes: the limits                                             */
/* ===================================================================== */

Test(iou, early_pushes_within_limits_else_dropped)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv;
	struct ferry_ep_stats st;
	struct raw r;
	uint8_t t[8][60], out[2048];
	uint64_t id;
	uint32_t req;
	size_t len;

	cfg_init(&cfg);
	cfg.iou_early_max = 2;
	cfg.iou_early_bytes = 100;
	cfg.iou_early_ms = 300;
	srv = server_make(&cfg);
	for (unsigned i = 0; i < 8; i++)
		fill_tok(t[i], sizeof(t[i]), 200 + i);
	raw_connect_iou(&r, srv);

	/* Count: two fit, the third is dropped. */
	raw_push(&r, 101, 0, t[1], 10);
	raw_push(&r, 102, 0, t[2], 10);
	raw_push(&r, 103, 0, t[3], 10);
	PUMP(NULL, srv, 2000,
	     stats(srv).iou_push_early + stats(srv).iou_push_dropped == 3);
	st = stats(srv);
	cr_assert_eq(st.iou_push_early, 2);
	cr_assert_eq(st.iou_push_dropped, 1, "over iou_early_max");
	/* The ones kept meet their calls; the dropped one is pending. */
	id = 101;
	req = raw_request(&r, M_PEEK, &id, 1);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), 0);
	cr_assert_eq(len, 10);
	cr_assert_arr_eq(out, t[1], 10);
	id = 103;
	req = raw_request(&r, M_PEEK, &id, 1);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), EINPROGRESS);
	id = 102;
	req = raw_request(&r, M_PEEK, &id, 1);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), 0);
	cr_assert_eq(len, 10);
	cr_assert_arr_eq(out, t[2], 10);

	/* Bytes: 60 fit, 60 more do not, 40 more fill it exactly; then the
	 * count is full again, even for an error push of no bytes. */
	raw_push(&r, 104, 0, t[4], 60);
	raw_push(&r, 105, 0, t[5], 60);
	raw_push(&r, 106, 0, t[6], 40);
	PUMP(NULL, srv, 2000,
	     stats(srv).iou_push_early + stats(srv).iou_push_dropped == 6);
	st = stats(srv);
	cr_assert_eq(st.iou_push_early, 4, "100 bytes of 100 fit");
	cr_assert_eq(st.iou_push_dropped, 2, "over iou_early_bytes");
	raw_push(&r, 107, EACCES, NULL, 0);
	PUMP(NULL, srv, 2000,
	     stats(srv).iou_push_early + stats(srv).iou_push_dropped == 7);
	st = stats(srv);
	cr_assert_eq(st.iou_push_early, 4);
	cr_assert_eq(st.iou_push_dropped, 3, "over iou_early_max");

	/* Time: no call names 104 and 106 within iou_early_ms. */
	PUMP(NULL, srv, 2000, stats(srv).iou_push_dropped == 5);
	st = stats(srv);
	cr_assert_eq(st.iou_push_dropped, 5, "not dropped after iou_early_ms");
	cr_assert_eq(st.iou_push_early, 4);
	id = 104;
	req = raw_request(&r, M_PEEK, &id, 1);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), EINPROGRESS);

	/* Room again: a push within the limits meets its call. */
	raw_push(&r, 108, 0, t[7], 60);
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 5);
	cr_assert_eq(stats(srv).iou_push_early, 5);
	id = 108;
	req = raw_request(&r, M_PEEK, &id, 1);
	cr_assert_eq(raw_response(&r, srv, req, out, &len), 0);
	cr_assert_eq(len, 60);
	cr_assert_arr_eq(out, t[7], 60);
	st = stats(srv);
	cr_assert_eq(st.iou_push_dropped, 5);
	/* 101, 102, 108 met their calls resolved; 103 and 104 are named and
	 * pending. */
	cr_assert_eq(st.iou_created, 5);
	cr_assert_eq(st.iou_resolved, 3);

	/* The session ends with a push still buffered: dropped and
	 * counted; the two named and pending are rejected. */
	raw_push(&r, 109, 0, t[0], 10);
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 6);
	cr_assert_eq(stats(srv).iou_push_early, 6);
	{
		struct ferry_hdr h = { .type = FERRY_FT_CLOSE };

		h.dst_sess = r.srv_sess;
		h.src_sess = r.my_sess;
		raw_send(&r, &h, NULL, 0);
	}
	PUMP(NULL, srv, 2000, stats(srv).sessions_closed == 1);
	st = stats(srv);
	cr_assert_eq(st.sessions_closed, 1);
	cr_assert_eq(st.iou_push_dropped, 6);
	cr_assert_eq(st.iou_rejected, 2);
	cr_assert_eq(st.iou_created, st.iou_resolved + st.iou_rejected);
	close(r.fd);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 7. The session ends with IOUs pending                                   */
/* ===================================================================== */

struct keep_job {
	struct ferry_iou *iou;
	int ret;
};

static void *keep_thread(void *arg)
{
	struct keep_job *j = arg;

	j->ret = ferry_iou_resolve(j->iou, "from-a-thread", 13);
	return NULL;
}

Test(iou, session_end_rejects_pending_and_cancels_promises)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st, ct;
	/* a: M_WAIT; b, c: M_READY; d: M_HOLDWAIT; e: M_PEEK (answered).
	 * f: no hooks, g2: its cancel hook keeps it, h: kept on another
	 * thread and still on its way to the endpoint at the close. */
	struct promise a, b, c, d, e, f, g2, h, i;
	struct ferry_cap caps[2];
	struct reply ra, rb, rd, re;
	struct keep_job job;
	pthread_t tid;
	enum { IOU_MAX = 9 };

	cfg_init(&cfg);
	cfg.iou_max = IOU_MAX;
	srv = server_make(&cfg);
	cli = ep_make(&cfg);
	s = open_session(cli, srv);
	promise_new(s, &a, &counted_hooks);
	promise_new(s, &b, &counted_hooks);
	promise_new(s, &c, &counted_hooks);
	promise_new(s, &d, &counted_hooks);
	promise_new(s, &e, &counted_hooks);
	caps[0] = iou_cap(a.iou);
	call(cli, s, M_WAIT, caps, 1, &ra);
	caps[0] = iou_cap(b.iou);
	caps[1] = iou_cap(c.iou);
	call(cli, s, M_READY, caps, 2, &rb);
	caps[0] = iou_cap(d.iou);
	call(cli, s, M_HOLDWAIT, caps, 1, &rd);
	caps[0] = iou_cap(e.iou);
	call(cli, s, M_PEEK, caps, 1, &re);
	PUMP(cli, srv, 3000, g.dispatched == 4 && re.done);
	cr_assert_eq(g.dispatched, 4);
	cr_assert(re.done);
	cr_assert_eq(re.res, -EINPROGRESS);
	cr_assert_eq(stats(srv).iou_created, 5);

	memset(&f, 0, sizeof(f));
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &f.iou), 0);
	promise_new(s, &g2, &counted_hooks);
	g2.fail_in_cancel = true;
	promise_new(s, &h, &counted_hooks);
	job.iou = h.iou;
	cr_assert_eq(pthread_create(&tid, NULL, keep_thread, &job), 0);
	cr_assert_eq(pthread_join(tid, NULL), 0);
	cr_assert_eq(job.ret, 0);

	/* i is kept here, unnamed: its PUSH waits for a call to name it. */
	promise_new(s, &i, &counted_hooks);
	cr_assert_eq(ferry_iou_resolve(i.iou, "queued", 6), 0);
	cr_assert_eq(i.releases, 0);

	/* No poll since h was kept: it is still queued for the endpoint. */
	ferry_session_close(s);
	/* A PUSH the session never sent (held: no call named it):
	 * released, not cancelled. */
	cr_assert_eq(i.releases, 1);
	cr_assert_eq(i.cancels, 0);
	cr_assert(ra.done && rb.done && rd.done);
	cr_assert_eq(ra.res, -ECANCELED);
	cr_assert_eq(rb.res, -ECANCELED);
	cr_assert_eq(rd.res, -ECANCELED);
	/* Every unkept promise with hooks is cancelled, then released. */
	cr_assert_eq(a.cancels, 1);
	cr_assert_eq(b.cancels, 1);
	cr_assert_eq(c.cancels, 1);
	cr_assert_eq(d.cancels, 1);
	cr_assert_eq(e.cancels, 1);
	cr_assert_eq(g2.cancels, 1);
	cr_assert_eq(g2.cancel_ret, -ENOTCONN);
	cr_assert_eq(a.releases, 1);
	cr_assert_eq(b.releases, 1);
	cr_assert_eq(c.releases, 1);
	cr_assert_eq(d.releases, 1);
	cr_assert_eq(e.releases, 1);
	cr_assert_eq(g2.releases, 1);
	/* The one already kept is released when the endpoint takes it in. */
	cr_assert_leq(h.releases, 1);
	/* Without a cancel hook the promise must still be kept. */
	cr_assert_eq(ferry_iou_resolve(f.iou, "x", 1), -ENOTCONN);

	/* The server hears the CLOSE: every waiting use fails with the
	 * session's error, and every pending IOU is rejected. */
	PUMP(cli, srv, 3000, g.waits == 2 && g.readies == 1);
	cr_assert_eq(h.releases, 1, "released once, when taken in");
	cr_assert_leq(h.cancels, 1);
	cr_assert_eq(g.waits, 2);
	cr_assert_eq(g.wait_res[0], -ECONNRESET);
	cr_assert_eq(g.wait_res[1], -ECONNRESET);
	cr_assert_eq(g.readies, 1);
	cr_assert_eq(g.ready_res[0], -ECONNRESET);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 5);
	cr_assert_eq(st.iou_rejected, 5);
	cr_assert_eq(st.iou_resolved, 0);
	cr_assert_eq(st.iou_timed_out, 0);
	cr_assert_eq(st.sessions_closed, 1);
	/* A call the handler still holds: its IOU is gone with the session,
	 * and its answer goes nowhere. */
	cr_assert_eq(g.nheld, 1);
	cr_assert_eq(ferry_call_cap(g.held[0], 0, NULL, NULL), -ENOTCONN);
	cr_assert_eq(ferry_call_respond_error(g.held[0], -EIO), -ENOTCONN);
	ct = stats(cli);
	cr_assert_eq(ct.ious_promised, 9);
	cr_assert_eq(ct.ious_pushed, 0);
	/* a..e were cancelled unkept; f, g2, h and i were kept for nobody. */
	cr_assert_eq(ct.ious_dropped, 9, "dropped %lu", (unsigned long)ct.ious_dropped);

	/* Nothing was kept back: a new session uses every promise and every
	 * table entry of both pools, and each resolves. */
	s = open_session(cli, srv);
	{
		struct promise p[IOU_MAX];
		struct reply rr[IOU_MAX];
		uint8_t tok[IOU_MAX][16];

		for (unsigned i = 0; i < IOU_MAX; i++) {
			promise_new(s, &p[i], &counted_hooks);
			caps[0] = iou_cap(p[i].iou);
			call(cli, s, M_WAIT, caps, 1, &rr[i]);
		}
		for (unsigned i = 0; i < IOU_MAX; i++) {
			fill_tok(tok[i], sizeof(tok[i]), 300 + i);
			cr_assert_eq(ferry_iou_resolve(p[i].iou, tok[i],
						       sizeof(tok[i])),
				     0);
		}
		for (unsigned i = 0; i < IOU_MAX; i++) {
			PUMP(cli, srv, 3000, rr[i].done);
			cr_assert(rr[i].done);
			cr_assert_eq(rr[i].res, 0, "call %u: %s", i,
				     ferry_strerror(rr[i].res));
			cr_assert_arr_eq(rr[i].data, tok[i], sizeof(tok[i]));
		}
		PUMP(cli, srv, 3000, p[IOU_MAX - 1].releases == 1);
		st = stats(srv);
		cr_assert_eq(st.iou_resolved, IOU_MAX);
		cr_assert_eq(st.calls_iou_refused, 0);
	}
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

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

Test(iou, push_check_rejects_bad_tokens)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
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
/* 9. A broken promise                                                     */
/* ===================================================================== */

Test(iou, fail_reaches_the_wait)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_iou *iou;
	struct ferry_cap cap;
	struct reply r;

	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	cap = iou_cap(iou);
	call(cli, s, M_WAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.dispatched == 1);
	cr_assert_eq(ferry_iou_fail(iou, -EACCES), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.waits, 1);
	cr_assert_eq(g.wait_res[0], -EACCES);
	cr_assert_eq(r.res, -EACCES);

	/* Not a negative code: -EIO. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	cap = iou_cap(iou);
	call(cli, s, M_WAIT, &cap, 1, &r);
	cr_assert_eq(ferry_iou_fail(iou, 5), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.wait_res[1], -EIO);
	cr_assert_eq(r.res, -EIO);
	cr_assert_eq(stats(srv).iou_rejected, 2);
	cr_assert_eq(stats(srv).iou_resolved, 0);
	cr_assert_eq(stats(srv).iou_bad_token, 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 10. Resolve before forward                                              */
/* ===================================================================== */

/* Checks @r holds @n tokens as M_READY answers them. */
static void check_ready_reply(const struct reply *r, const uint8_t *const *tok,
			      const size_t *len, unsigned n)
{
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t l;

		cr_assert_leq(off + 2, r->len);
		l = (size_t)r->data[off] << 8 | r->data[off + 1];
		off += 2;
		cr_assert_eq(l, len[i], "token %u: length %zu", i, l);
		cr_assert_leq(off + l, r->len);
		cr_assert_arr_eq(r->data + off, tok[i], l, "token %u", i);
		off += l;
	}
	cr_assert_eq(off, r->len);
}

Test(iou, caps_ready_resolves_before_forward)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_iou *a, *b, *c, *d;
	struct ferry_cap caps[3];
	struct reply r;
	uint8_t t0[30], ta[31], tb[32], tc[33];
	const uint8_t *want[3] = { t0, ta, tb };
	const size_t wlen[3] = { sizeof(t0), sizeof(ta), sizeof(tb) };

	fill_tok(t0, sizeof(t0), 20);
	fill_tok(ta, sizeof(ta), 21);
	fill_tok(tb, sizeof(tb), 22);
	fill_tok(tc, sizeof(tc), 23);

	/* A ready token and two IOUs: complete only once both resolve. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &a), 0);
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &b), 0);
	caps[0] = tok_cap(t0, sizeof(t0));
	caps[1] = iou_cap(a);
	caps[2] = iou_cap(b);
	call(cli, s, M_READY, caps, 3, &r);
	PUMP(cli, srv, 3000, g.dispatched == 1);
	cr_assert_eq(g.dispatched, 1);
	cr_assert_eq(g.readies, 0);
	cr_assert_eq(ferry_iou_resolve(b, tb, sizeof(tb)), 0);
	PUMP(cli, srv, 3000, stats(srv).iou_resolved == 1);
	cr_assert_eq(stats(srv).iou_resolved, 1);
	PUMP(cli, srv, 50, false);
	cr_assert_eq(g.readies, 0, "completed with an IOU still pending");
	cr_assert_eq(ferry_iou_resolve(a, ta, sizeof(ta)), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.readies, 1);
	cr_assert_eq(g.ready_res[0], 0);
	cr_assert_not(g.ready_in_handler[0]);
	cr_assert_eq(r.res, 0);
	check_ready_reply(&r, want, wlen, 3);

	/* The first rejection completes it at once, the other IOU still
	 * pending; that one settling later changes nothing. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &c), 0);
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &d), 0);
	caps[0] = iou_cap(c);
	caps[1] = iou_cap(d);
	call(cli, s, M_READY, caps, 2, &r);
	PUMP(cli, srv, 3000, g.dispatched == 2);
	cr_assert_eq(ferry_iou_fail(d, -EPERM), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.readies, 2);
	cr_assert_eq(g.ready_res[1], -EPERM);
	cr_assert_eq(r.res, -EPERM);
	cr_assert_eq(stats(srv).iou_resolved, 2);
	cr_assert_eq(ferry_iou_resolve(c, tc, sizeof(tc)), 0);
	PUMP(cli, srv, 3000, stats(srv).iou_resolved == 3);
	cr_assert_eq(stats(srv).iou_resolved, 3);
	PUMP(cli, srv, 50, false);
	cr_assert_eq(g.readies, 2, "completed twice");

	/* No IOU in the table, or no table: complete before returning. */
	caps[0] = tok_cap(t0, sizeof(t0));
	call(cli, s, M_READY, caps, 1, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(g.readies, 3);
	cr_assert_eq(g.ready_res[2], 0);
	cr_assert(g.ready_in_handler[2]);
	check_ready_reply(&r, want, wlen, 1);
	call(cli, s, M_READY, NULL, 0, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(g.readies, 4);
	cr_assert_eq(g.ready_res[3], 0);
	cr_assert(g.ready_in_handler[3]);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
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

Test(iou, cap_issue_sync_async_and_failing)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_keyring *kr = kr_new();
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_token_req req = token_req(AUD);
	struct slow_issuer is = { .kr = kr, .delay_ms = 200 };
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

Test(iou, randomized_calls_and_ious)
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
	cfg_init(&cfg);
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

		for (; burst && k <= RAND_N; burst--, k++) {
			struct ferry_cap caps[RAND_CAPS];
			uint8_t toks[RAND_CAPS][256];
			struct ferry_iou *ious[RAND_CAPS];
			struct ferry_msgbuf *mb;
			unsigned n = (unsigned)(rng() % (RAND_CAPS + 1));
			uint8_t *p;
			int ret;

			rs.ncaps[k] = n;
			for (unsigned j = 0; j < n; j++) {
				ious[j] = NULL;
				if (rng() % 2) {
					int r = ferry_iou_new(s, NULL, NULL,
							      &ious[j]);

					cr_assert_eq(r, 0);
					caps[j] = iou_cap(ious[j]);
					rs.kinds[k][j] = FERRY_CAP_IOU;
				} else {
					caps[j] = tok_cap(toks[j],
							  rand_tok(k, j,
								   toks[j]));
					rs.kinds[k][j] = FERRY_CAP_TOKEN;
				}
			}
			cr_assert_eq(ferry_msgbuf_alloc(cli, 4, &mb), 0);
			p = ferry_msgbuf_data(mb);
			p[0] = (uint8_t)(k >> 24);
			p[1] = (uint8_t)(k >> 16);
			p[2] = (uint8_t)(k >> 8);
			p[3] = (uint8_t)k;
			ret = ferry_call_caps(s, M_RAND, mb, caps, n, 0,
					      rand_cont, (void *)(uintptr_t)k);
			cr_assert_eq(ret, 0, "call %u: %s", k,
				     ferry_strerror(ret));
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
		}
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
/* 13. Client-side errors                                                  */
/* ===================================================================== */

static struct ferry_session *g_srv_sess;

static void on_session(struct ferry_session *s, enum ferry_session_event ev,
		       int res, void *ctx)
{
	(void)res;
	(void)ctx;
	if (ev == FERRY_SESSION_OPENED)
		g_srv_sess = s;
}

Test(iou, client_side_errors)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s, *s2;
	struct ferry_iou *iou, *other, *x, *y;
	struct ferry_cap caps[2];
	struct reply r;
	static uint8_t big[FERRY_PUSH_TOKEN_MAX_LEN + 1];
	struct ferry_msgbuf *mb;

	cfg_init(&cfg);
	cfg.iou_max = 6;
	srv = server_make(&cfg);
	cli = ep_make(&cfg);
	ferry_endpoint_on_session(srv, on_session, NULL);
	s = open_session(cli, srv);
	s2 = open_session(cli, srv);
	fill_tok(big, sizeof(big), 40);

	/* Arguments. */
	cr_assert_eq(ferry_iou_new(NULL, NULL, NULL, &iou), -EINVAL);
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, NULL), -EINVAL);
	cr_assert_not_null(g_srv_sess);
	cr_assert_eq(ferry_iou_new(g_srv_sess, NULL, NULL, &iou), -EINVAL,
		     "a server session promises nothing");
	cr_assert_eq(ferry_iou_resolve(NULL, "x", 1), -EINVAL);
	cr_assert_eq(ferry_iou_fail(NULL, -EIO), -EINVAL);
	cr_assert_eq(ferry_iou_cancel(NULL), -EINVAL);

	/* Kept twice: -EALREADY, and the first stands. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	cr_assert_neq(ferry_iou_id(iou), 0);
	caps[0] = iou_cap(iou);
	call(cli, s, M_WAIT, caps, 1, &r);
	cr_assert_eq(ferry_iou_resolve(iou, "first", 5), 0);
	cr_assert_eq(ferry_iou_resolve(iou, "second", 6), -EALREADY);
	cr_assert_eq(ferry_iou_fail(iou, -EIO), -EALREADY);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(r.len, 5);
	cr_assert_arr_eq(r.data, "first", 5);

	/* Too long: -EMSGSIZE, and the server's wait gets -EMSGSIZE. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	caps[0] = iou_cap(iou);
	call(cli, s, M_WAIT, caps, 1, &r);
	cr_assert_eq(ferry_iou_resolve(iou, big, sizeof(big)), -EMSGSIZE);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.wait_res[g.waits - 1], -EMSGSIZE);
	cr_assert_eq(r.res, -EMSGSIZE);
	/* Empty: the same. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	caps[0] = iou_cap(iou);
	call(cli, s, M_WAIT, caps, 1, &r);
	cr_assert_eq(ferry_iou_resolve(iou, big, 0), -EMSGSIZE);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, -EMSGSIZE);
	/* The longest that goes: FERRY_PUSH_TOKEN_MAX_LEN. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	caps[0] = iou_cap(iou);
	call(cli, s, M_WAIT, caps, 1, &r);
	cr_assert_eq(ferry_iou_resolve(iou, big, FERRY_PUSH_TOKEN_MAX_LEN), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
	cr_assert_eq(r.len, FERRY_PUSH_TOKEN_MAX_LEN);
	cr_assert_arr_eq(r.data, big, FERRY_PUSH_TOKEN_MAX_LEN);

	/* Naming: an IOU of another session; the same IOU twice; an IOU
	 * already named; none of them starts a call. */
	PUMP(cli, srv, 200, false); /* PUSHes acknowledged, IOUs back */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &x), 0);
	cr_assert_eq(ferry_iou_new(s2, NULL, NULL, &other), 0);
	mb = msg(cli, 8);
	memset(&r, 0, sizeof(r));
	caps[0] = iou_cap(other);
	cr_assert_eq(ferry_call_caps(s, M_WAIT, mb, caps, 1, 0, on_reply, &r),
		     -EINVAL);
	caps[0] = iou_cap(x);
	caps[1] = iou_cap(x);
	cr_assert_eq(ferry_call_caps(s, M_WAIT, mb, caps, 2, 0, on_reply, &r),
		     -EBUSY);
	caps[0] = (struct ferry_cap){ .kind = FERRY_CAP_IOU, .data = NULL };
	cr_assert_eq(ferry_call_caps(s, M_WAIT, mb, caps, 1, 0, on_reply, &r),
		     -EINVAL);
	ferry_msgbuf_free(mb);
	caps[0] = iou_cap(x);
	call(cli, s, M_WAIT, caps, 1, &r);
	mb = msg(cli, 8);
	{
		struct reply r2 = { 0 };

		cr_assert_eq(ferry_call_caps(s, M_WAIT, mb, caps, 1, 0,
					     on_reply, &r2),
			     -EBUSY);
		cr_assert_not(r2.done);
	}
	ferry_msgbuf_free(mb);
	/* Named: not to be taken back.  Unnamed: taken back. */
	cr_assert_eq(ferry_iou_cancel(x), -EBUSY);
	cr_assert_eq(ferry_iou_cancel(other), 0);
	cr_assert_eq(ferry_iou_resolve(x, "x", 1), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(r.len, 1);

	/* The pool: iou_max promises at once, then -ENOBUFS. */
	PUMP(cli, srv, 200, false);
	{
		struct ferry_iou *all[6];

		for (unsigned i = 0; i < 6; i++)
			cr_assert_eq(ferry_iou_new(s, NULL, NULL, &all[i]), 0,
				     "promise %u", i);
		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &y), -ENOBUFS);
		for (unsigned i = 0; i < 6; i++)
			cr_assert_eq(ferry_iou_cancel(all[i]), 0);
	}
	/* Server-side misuse, from a held call. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &y), 0);
	caps[0] = iou_cap(y);
	call(cli, s, M_HOLD, caps, 1, &r);
	PUMP(cli, srv, 3000, g.nheld == 1);
	cr_assert_eq(g.nheld, 1);
	cr_assert_eq(ferry_call_cap_wait(g.held[0], 1, wait_note, NULL),
		     -ENOENT);
	cr_assert_eq(ferry_call_cap_wait(g.held[0], 0, NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_call_cap_wait(NULL, 0, wait_note, NULL), -EINVAL);
	cr_assert_eq(ferry_call_caps_ready(g.held[0], NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_call_cap_kind(g.held[0], 1), -ENOENT);
	cr_assert_eq(ferry_call_cap_kind(NULL, 0), -ENOENT);
	cr_assert_eq(ferry_call_respond_error(g.held[0], -EIO), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, -EIO);
	cr_assert_eq(ferry_iou_fail(y, -EIO), 0);
	PUMP(cli, srv, 500, false);
	cr_assert_eq(stats(srv).calls_iou_refused, 0);

	/* Wait records are twice iou_max (12): resolve-before-forward on
	 * six pending IOUs needs seven, all or nothing.  With six single
	 * waits taken, it does not fit; a single wait still does. */
	{
		struct ferry_iou *six[6];
		struct ferry_cap c6[6];
		struct reply r6;

		for (unsigned i = 0; i < 6; i++) {
			cr_assert_eq(ferry_iou_new(s, NULL, NULL, &six[i]), 0);
			c6[i] = iou_cap(six[i]);
		}
		call(cli, s, M_HOLD, c6, 6, &r6);
		PUMP(cli, srv, 3000, g.nheld == 2);
		cr_assert_eq(g.nheld, 2);
		g_late_calls = 0;
		for (unsigned i = 0; i < 6; i++)
			cr_assert_eq(ferry_call_cap_wait(g.held[1], 5, late_wait,
							 NULL),
				     0);
		cr_assert_eq(ferry_call_caps_ready(g.held[1], late_ready, NULL),
			     -ENOBUFS);
		cr_assert_eq(ferry_call_cap_wait(g.held[1], 4, late_wait, NULL),
			     0);
		for (unsigned i = 0; i < 6; i++)
			cr_assert_eq(ferry_iou_resolve(six[i], "t", 1), 0);
		PUMP(cli, srv, 3000, g_late_calls == 7);
		cr_assert_eq(g_late_calls, 7);
		cr_assert_eq(g_late_res, 0);
		cr_assert_eq(ferry_call_respond_error(g.held[1], -EIO), 0);
		PUMP(cli, srv, 3000, r6.done);
		cr_assert_eq(r6.res, -EIO);
	}
	ferry_session_close(s);
	ferry_session_close(s2);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* A promise kept while its call waits                                     */
/* ===================================================================== */

/* Two session slots, both held by the handler: the third call waits in
 * the client for a slot.  Its promise, kept meanwhile, waits with it: the
 * PUSH goes behind the call, never ahead (no early push on the server).
 * A waiting call that ends by its deadline takes its promises with it. */
Test(iou, promise_kept_while_its_call_waits_for_a_slot)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st, ct;
	struct promise p, q, q2;
	struct ferry_cap cap;
	struct reply ra, rb, rc, rd, re, rf, rg;
	uint8_t tok[64];
	int ret;

	cfg_init(&cfg);
	cfg.session_slots = 2;
	srv = server_make(&cfg);
	cli = ep_new();
	s = open_session(cli, srv);
	fill_tok(tok, sizeof(tok), 50);

	call(cli, s, M_HOLD, NULL, 0, &ra);
	call(cli, s, M_HOLD, NULL, 0, &rb);
	promise_new(s, &p, &counted_hooks);
	cap = iou_cap(p.iou);
	call(cli, s, M_WAIT, &cap, 1, &rc);
	PUMP(cli, srv, 3000, g.nheld == 2);
	cr_assert_eq(g.nheld, 2);
	cr_assert_eq(ferry_iou_resolve(p.iou, tok, sizeof(tok)), 0);
	PUMP(cli, srv, 100, false);
	st = stats(srv);
	cr_assert_eq(g.dispatched, 2);
	cr_assert_eq(st.iou_push_early, 0, "the PUSH overtook its call");
	cr_assert_eq(st.iou_push_dropped, 0);
	cr_assert_eq(stats(cli).ious_pushed, 0);
	/* Slots free: the call goes, and its PUSH right behind it. */
	cr_assert_eq(ferry_call_respond_error(g.held[0], -EIO), 0);
	cr_assert_eq(ferry_call_respond_error(g.held[1], -EIO), 0);
	PUMP(cli, srv, 3000, rc.done);
	cr_assert(rc.done);
	cr_assert_eq(rc.res, 0, "%s", ferry_strerror(rc.res));
	cr_assert_eq(rc.len, sizeof(tok));
	cr_assert_arr_eq(rc.data, tok, sizeof(tok));
	cr_assert_eq(g.waits, 1);
	st = stats(srv);
	cr_assert_eq(st.iou_push_early, 0);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 1);
	PUMP(cli, srv, 3000, p.releases == 1);
	cr_assert_eq(p.releases, 1);
	cr_assert_eq(p.cancels, 0);

	/* Deadlines: two calls wait for a slot, one with its promise kept
	 * already, one not; both end by their deadline unsent. */
	g.nheld = 0;
	call(cli, s, M_HOLD, NULL, 0, &rd);
	call(cli, s, M_HOLD, NULL, 0, &re);
	promise_new(s, &q, &counted_hooks);
	promise_new(s, &q2, &counted_hooks);
	cap = iou_cap(q.iou);
	memset(&rf, 0, sizeof(rf));
	ret = ferry_call_caps(s, M_WAIT, msg(cli, 8), &cap, 1, 100, on_reply,
			      &rf);
	cr_assert_eq(ret, 0);
	cap = iou_cap(q2.iou);
	memset(&rg, 0, sizeof(rg));
	ret = ferry_call_caps(s, M_WAIT, msg(cli, 8), &cap, 1, 100, on_reply,
			      &rg);
	cr_assert_eq(ret, 0);
	cr_assert_eq(ferry_iou_resolve(q2.iou, tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, rf.done && rg.done);
	cr_assert(rf.done && rg.done);
	cr_assert_eq(rf.res, -ETIME);
	cr_assert_eq(rg.res, -ETIME);
	/* Kept and unsent: dropped with its call. */
	cr_assert_eq(q2.releases, 1);
	cr_assert_eq(q2.cancels, 0);
	/* Not kept yet: still the keeper's to keep, then dropped. */
	cr_assert_eq(q.releases, 0);
	cr_assert_eq(ferry_iou_resolve(q.iou, tok, sizeof(tok)), 0);
	cr_assert_eq(q.releases, 1);
	cr_assert_eq(q.cancels, 0);
	ct = stats(cli);
	cr_assert_eq(ct.ious_dropped, 2);
	cr_assert_eq(ct.ious_pushed, 1);
	cr_assert_eq(ferry_call_respond_error(g.held[0], -EIO), 0);
	cr_assert_eq(ferry_call_respond_error(g.held[1], -EIO), 0);
	PUMP(cli, srv, 3000, rd.done && re.done);
	PUMP(cli, srv, 100, false);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1, "the server never saw the dropped");
	cr_assert_eq(st.iou_push_early, 0);
	cr_assert_eq(g.dispatched, 5);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Promises on a session still connecting                                  */
/* ===================================================================== */

static int refuse_all(void *ctx, const void *token, size_t len)
{
	(void)ctx;
	(void)token;
	(void)len;
	return -EPERM;
}

Test(iou, promises_while_connecting)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_endpoint *shut = ep_new();
	struct ferry_session *s;
	struct promise p, q, k;
	struct ferry_cap cap;
	struct conn c = { 0 };
	struct reply r, rq, rk;
	uint8_t tok[48];

	fill_tok(tok, sizeof(tok), 60);
	/* Promised, named and kept before the ACCEPT: the call goes when
	 * the session opens, its PUSH behind it. */
	cr_assert_eq(ferry_session_connect(cli, "127.0.0.1",
					   ferry_endpoint_port(srv), NULL,
					   on_connect, &c, &s),
		     0);
	promise_new(s, &p, &counted_hooks);
	cap = iou_cap(p.iou);
	call(cli, s, M_WAIT, &cap, 1, &r);
	cr_assert_eq(ferry_iou_resolve(p.iou, tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(c.done);
	cr_assert_eq(c.res, 0);
	cr_assert(r.done);
	cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
	cr_assert_arr_eq(r.data, tok, sizeof(tok));
	cr_assert_eq(stats(srv).iou_push_early, 0);
	cr_assert_eq(stats(srv).iou_resolved, 1);
	PUMP(cli, srv, 3000, p.releases == 1);
	cr_assert_eq(p.releases, 1);
	ferry_session_close(s);

	/* A connect that is refused: the waiting calls fail with the
	 * refusal, the unkept promise is cancelled, the kept one dropped;
	 * each released once. */
	cr_assert_eq(ferry_endpoint_set_admission(shut, refuse_all, NULL,
						  NULL),
		     0);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(ferry_session_connect(cli, "127.0.0.1",
					   ferry_endpoint_port(shut), NULL,
					   on_connect, &c, &s),
		     0);
	promise_new(s, &q, &counted_hooks);
	promise_new(s, &k, &counted_hooks);
	cap = iou_cap(q.iou);
	call(cli, s, M_WAIT, &cap, 1, &rq);
	cap = iou_cap(k.iou);
	call(cli, s, M_WAIT, &cap, 1, &rk);
	cr_assert_eq(ferry_iou_resolve(k.iou, tok, sizeof(tok)), 0);
	PUMP(cli, shut, 3000, c.done);
	cr_assert(c.done);
	cr_assert_eq(c.res, -EPERM);
	cr_assert(rq.done && rk.done);
	cr_assert_eq(rq.res, -EPERM);
	cr_assert_eq(rk.res, -EPERM);
	cr_assert_eq(q.cancels, 1);
	cr_assert_eq(q.releases, 1);
	cr_assert_eq(k.cancels, 0);
	cr_assert_eq(k.releases, 1);
	/* The session has ended: no promise on it. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &q.iou), -ENOTCONN);
	ferry_session_close(s);
	cr_assert_eq(stats(cli).ious_pushed, 1);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(shut);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* A lossy network                                                         */
/* ===================================================================== */

/* Loss, duplication, reordering and corruption (caught by checksums) on
 * both sides: PUSHes are sent again until acknowledged, a network
 * duplicate dies by its seq (never an iou_dup_push), a PUSH reordered
 * ahead of its call waits for it, and every call gets its tokens. */
Test(iou, lossy_network)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st, ct;
	enum { N = 60 };
	static struct reply r[N];
	static uint8_t toks[N][2][40];
	unsigned nious = 0;

	cfg_init(&cfg);
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

/* ===================================================================== */
/* Waits: several on one IOU, and outliving their call                     */
/* ===================================================================== */

struct wrec {
	unsigned n;
	int res;
	uint8_t tok[64];
	size_t len;
};

static void wrec_fn(int res, const void *tok, size_t len, void *ctx)
{
	struct wrec *w = ctx;

	w->n++;
	w->res = res;
	w->len = len;
	if (res == 0 && tok) {
		cr_assert_leq(len, sizeof(w->tok));
		memcpy(w->tok, tok, len);
	}
}

static void wrec_ready(int res, void *ctx)
{
	wrec_fn(res, NULL, 0, ctx);
}

Test(iou, waits_share_an_iou_and_outlive_the_call)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_session *s = open_session(cli, srv);
	struct wrec w1 = { 0 }, w2 = { 0 }, w3 = { 0 }, w4 = { 0 };
	struct ferry_iou *a, *b;
	struct ferry_cap cap;
	struct reply r;
	uint8_t tok[20];

	fill_tok(tok, sizeof(tok), 70);
	/* Three waits on one pending IOU, the call answered at once: every
	 * wait still completes, once, with the token. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &a), 0);
	cap = iou_cap(a);
	call(cli, s, M_HOLD, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.nheld == 1);
	cr_assert_eq(g.nheld, 1);
	cr_assert_eq(ferry_call_cap_wait(g.held[0], 0, wrec_fn, &w1), 0);
	cr_assert_eq(ferry_call_cap_wait(g.held[0], 0, wrec_fn, &w2), 0);
	cr_assert_eq(ferry_call_caps_ready(g.held[0], wrec_ready, &w3), 0);
	cr_assert_eq(ferry_call_respond_error(g.held[0], -EIO), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, -EIO);
	cr_assert_eq(w1.n + w2.n + w3.n, 0);
	cr_assert_eq(ferry_iou_resolve(a, tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, w1.n && w2.n && w3.n);
	PUMP(cli, srv, 20, false);
	cr_assert_eq(w1.n, 1);
	cr_assert_eq(w2.n, 1);
	cr_assert_eq(w3.n, 1);
	cr_assert_eq(w1.res, 0);
	cr_assert_eq(w2.res, 0);
	cr_assert_eq(w3.res, 0);
	cr_assert_eq(w1.len, sizeof(tok));
	cr_assert_arr_eq(w1.tok, tok, sizeof(tok));
	cr_assert_arr_eq(w2.tok, tok, sizeof(tok));
	cr_assert_eq(stats(srv).iou_resolved, 1);

	/* A wait that outlives its call, and then its session. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &b), 0);
	cap = iou_cap(b);
	call(cli, s, M_HOLD, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.nheld == 2);
	cr_assert_eq(ferry_call_cap_wait(g.held[1], 0, wrec_fn, &w4), 0);
	cr_assert_eq(ferry_call_respond_error(g.held[1], -EIO), 0);
	PUMP(cli, srv, 3000, r.done);
	ferry_session_close(s);
	PUMP(cli, srv, 3000, w4.n == 1);
	cr_assert_eq(w4.n, 1);
	cr_assert_eq(w4.res, -ECONNRESET);
	cr_assert_eq(stats(srv).iou_rejected, 1);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Destroying the endpoints                                                */
/* ===================================================================== */

/* The server goes first with waits pending (they end with -ECANCELED,
 * their callbacks answering into the void), then the client with
 * promises unkept (cancelled, released). */
Test(iou, destroy_settles_waits_and_promises)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_session *s = open_session(cli, srv);
	struct promise a, b, c;
	struct ferry_cap caps[2];
	struct reply ra, rb;

	promise_new(s, &a, &counted_hooks);
	promise_new(s, &b, &counted_hooks);
	promise_new(s, &c, &counted_hooks);
	caps[0] = iou_cap(a.iou);
	call(cli, s, M_WAIT, caps, 1, &ra);
	caps[0] = iou_cap(b.iou);
	caps[1] = iou_cap(c.iou);
	call(cli, s, M_READY, caps, 2, &rb);
	PUMP(cli, srv, 3000, g.dispatched == 2);
	cr_assert_eq(g.dispatched, 2);
	ferry_endpoint_destroy(srv);
	cr_assert_eq(g.waits, 1);
	cr_assert_eq(g.wait_res[0], -ECANCELED);
	cr_assert_eq(g.readies, 1);
	cr_assert_eq(g.ready_res[0], -ECANCELED);
	/* The server said goodbye: the calls end with it. */
	PUMP(cli, NULL, 3000, ra.done && rb.done);
	cr_assert(ra.done && rb.done);
	cr_assert_eq(ra.res, -ECONNRESET);
	cr_assert_eq(rb.res, -ECONNRESET);
	cr_assert_eq(a.cancels + b.cancels + c.cancels, 3);
	cr_assert_eq(a.releases + b.releases + c.releases, 3);
	ferry_session_close(s);
	/* And a client destroyed with promises unkept on an open session. */
	srv = server_new();
	s = open_session(cli, srv);
	promise_new(s, &a, &counted_hooks);
	promise_new(s, &b, &release_only_hooks);
	caps[0] = iou_cap(a.iou);
	call(cli, s, M_WAIT, caps, 1, &ra);
	PUMP(cli, srv, 3000, g.dispatched == 1);
	ferry_endpoint_destroy(cli);
	cr_assert(ra.done);
	cr_assert_eq(ra.res, -ECANCELED);
	cr_assert_eq(a.cancels, 1);
	cr_assert_eq(a.releases, 1);
	/* b has no cancel hook: ferry/iou.h asks its keeper to keep it
	 * before the destroy, so what becomes of it here is not checked. */
	PUMP(NULL, srv, 3000, g.waits == 1);
	cr_assert_eq(g.wait_res[0], -ECONNRESET);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Known issue: held requests can starve the PUSHes they wait for          */
/* ===================================================================== */

/*
 * A one-frame request is kept in its receive buffer until answered, and
 * its credit comes back only then.  A handler waiting for a PUSH holds its
 * request, so with as many session slots as credits (both 128 by default)
 * a client can fill the whole window with requests whose handlers wait.
 * The PUSHes they wait for must still get through (they may exceed the
 * credit, docs/wire.md section 7), or every IOU would time out
 * (iou_timeout_ms) instead of resolving.
 */
Test(iou, held_requests_leave_credit_for_pushes)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	enum { N = 140 };
	static struct reply r[N];
	static struct ferry_iou *ious[N];
	unsigned ok = 0;

	cfg_init(&cfg);
	cfg.iou_max = 512;
	cfg.iou_timeout_ms = 3000;
	cfg.pool[0] = (struct ferry_pool_class){ 512, 2048 };
	srv = server_make(&cfg);
	cli = ep_make(&cfg);
	s = open_session(cli, srv);
	for (unsigned i = 0; i < N; i++) {
		struct ferry_cap cap;

		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &ious[i]), 0);
		cap = iou_cap(ious[i]);
		call(cli, s, M_WAIT, &cap, 1, &r[i]);
	}
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(ferry_iou_resolve(ious[i], "tok", 3), 0);
	for (unsigned i = 0; i < N; i++) {
		PUMP(cli, srv, 6000, r[i].done);
		ok += r[i].done && r[i].res == 0;
	}
	cr_assert_eq(ok, N, "%u of %u calls got their token; IOUs timed out: "
			    "%llu; client credit stalls: %llu",
		     ok, N, (unsigned long long)stats(srv).iou_timed_out,
		     (unsigned long long)stats(cli).credit_stalls);
	/* PUSHes kept together share frames: 140 of them (19-byte records)
	 * take a handful of datagrams, not 140. */
	{
		struct ferry_ep_stats st = stats(srv);

		cr_assert_eq(stats(cli).ious_pushed, N);
		cr_assert_lt(st.rx_pkts, 2 * N,
			     "server took %llu datagrams for %u requests and "
			     "%u PUSHes",
			     (unsigned long long)st.rx_pkts, N, N);
	}
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Untrusted PUSH codes                                                    */
/* ===================================================================== */

/* The code is a peer's 32-bit value: one that is no positive int (bit 31
 * set) must still reject the IOU with a negative error, never pass for a
 * resolution, and never overflow. */
Test(iou, push_code_out_of_range_still_rejects)
{
	struct ferry_endpoint *srv = server_new();
	static const uint32_t codes[] = { 0xffffffffu, 0x80000000u,
					  0x80000001u };
	struct ferry_ep_stats st;
	struct raw r;
	uint8_t out[2048];
	size_t len;

	raw_connect_iou(&r, srv);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t id = 500 + i;
		uint32_t req = raw_request(&r, M_READY, &id, 1);
		uint32_t code;

		PUMP(NULL, srv, 2000, g.dispatched == i + 1);
		cr_assert_eq(g.dispatched, i + 1);
		raw_push(&r, id, codes[i], NULL, 0);
		code = raw_response(&r, srv, req, out, &len);
		cr_assert_eq(g.readies, i + 1);
		cr_assert_lt(g.ready_res[i], 0, "code 0x%x: ready with %d",
			     codes[i], g.ready_res[i]);
		cr_assert_neq(code, 0, "code 0x%x: answered as resolved",
			      codes[i]);
	}
	st = stats(srv);
	cr_assert_eq(st.iou_rejected, 3);
	cr_assert_eq(st.iou_resolved, 0);
	close(r.fd);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* IOU ids are per session                                                 */
/* ===================================================================== */

/* Two sessions of one client number their IOUs alike; the server keeps
 * each session's apart. */
Test(iou, ious_are_per_session)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new();
	struct ferry_session *s1 = open_session(cli, srv);
	struct ferry_session *s2 = open_session(cli, srv);
	struct ferry_iou *a, *b;
	struct ferry_cap cap;
	struct reply ra, rb;
	uint8_t ta[24], tb[24];

	fill_tok(ta, sizeof(ta), 80);
	fill_tok(tb, sizeof(tb), 81);
	cr_assert_eq(ferry_iou_new(s1, NULL, NULL, &a), 0);
	cr_assert_eq(ferry_iou_new(s2, NULL, NULL, &b), 0);
	cr_assert_eq(ferry_iou_id(a), ferry_iou_id(b));
	cap = iou_cap(a);
	call(cli, s1, M_WAIT, &cap, 1, &ra);
	cap = iou_cap(b);
	call(cli, s2, M_WAIT, &cap, 1, &rb);
	PUMP(cli, srv, 3000, g.dispatched == 2);
	cr_assert_eq(g.dispatched, 2);
	cr_assert_eq(ferry_iou_resolve(b, tb, sizeof(tb)), 0);
	PUMP(cli, srv, 3000, rb.done);
	cr_assert(rb.done);
	cr_assert_not(ra.done, "s2's PUSH resolved s1's IOU");
	cr_assert_eq(ferry_iou_resolve(a, ta, sizeof(ta)), 0);
	PUMP(cli, srv, 3000, ra.done);
	cr_assert_eq(ra.res, 0);
	cr_assert_eq(rb.res, 0);
	cr_assert_arr_eq(ra.data, ta, sizeof(ta));
	cr_assert_arr_eq(rb.data, tb, sizeof(tb));
	cr_assert_eq(stats(srv).iou_resolved, 2);
	cr_assert_eq(stats(srv).iou_push_early, 0);
	ferry_session_close(s1);
	ferry_session_close(s2);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* The server's table is full                                              */
/* ===================================================================== */

/* A call naming more IOUs than the server has entries free is refused at
 * its turn with -FERRY_EIOU (its handler never runs); what it claimed is
 * given back, so the next call that fits is served. */
Test(iou, full_table_refuses_the_call)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_iou *x[4], *y[2];
	struct ferry_cap caps[4];
	struct reply r;
	uint8_t tok[16];

	cfg_init(&cfg);
	cfg.iou_max = 3; /* entries, and waits: 2 IOUs + their aggregate */
	srv = server_make(&cfg);
	cfg.iou_max = 8;
	cli = ep_make(&cfg);
	s = open_session(cli, srv);
	fill_tok(tok, sizeof(tok), 90);
	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &x[i]), 0);
		caps[i] = iou_cap(x[i]);
	}
	call(cli, s, M_READY, caps, 4, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(r.res, -FERRY_EIOU, "%s", ferry_strerror(r.res));
	cr_assert_eq(g.dispatched, 0);
	cr_assert_eq(stats(srv).calls_iou_refused, 1);
	/* Named, so still to be kept; the server settles or drops them. */
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(ferry_iou_resolve(x[i], tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, stats(cli).ious_pushed == 4);
	/* Early pushes live iou_early_ms (1 s): wait for any to go. */
	PUMP(cli, srv, 1500, false);
	for (unsigned i = 0; i < 2; i++) {
		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &y[i]), 0);
		caps[i] = iou_cap(y[i]);
	}
	call(cli, s, M_READY, caps, 2, &r);
	PUMP(cli, srv, 3000, g.dispatched == 1);
	cr_assert_eq(g.dispatched, 1);
	for (unsigned i = 0; i < 2; i++)
		cr_assert_eq(ferry_iou_resolve(y[i], tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0, "%s", ferry_strerror(r.res));
	cr_assert_eq(g.ready_res[0], 0);
	cr_assert_eq(stats(srv).calls_iou_refused, 1);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}
