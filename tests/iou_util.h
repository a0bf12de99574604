/* SPDX-License-Identifier: MIT */
/*
 * iou_util.h - what the IOU tests (tests/test_iou_*.c; ferry/iou.h,
 * docs/wire.md section 8) add to the harness (tests/harness.h): a server
 * whose methods wait on, peek at or hold the IOUs a call names and record
 * what they saw in one global record (g), a client that makes calls with
 * token tables and keeps promises whose hooks count, and raw-peer helpers
 * that send REQUESTs naming IOUs and PUSHes by hand.
 *
 * Each test drives a server and a client endpoint from one thread: the
 * harness's PUMP() loop polls both until what the test waits for happens.
 * Every Criterion test runs in a process of its own, so nothing kept here
 * leaks between tests.  Each file runs its cases on every dataplane built
 * in (HARNESS_BATTERY).
 */
#ifndef FERRY_TESTS_IOU_UTIL_H
#define FERRY_TESTS_IOU_UTIL_H

#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <ferry/token.h>

#include "transport/wire.h"

#include "harness.h"

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

static inline void g_reset(struct ferry_endpoint *srv)
{
	memset(&g, 0, sizeof(g));
	g.srv = srv;
}

static inline void respond_bytes(struct ferry_call *c, const void *p, size_t n)
{
	struct ferry_msgbuf *mb;

	cr_assert_eq(ferry_msgbuf_alloc(g.srv, n, &mb), 0);
	memcpy(ferry_msgbuf_data(mb), p, n);
	ferry_call_respond(c, mb);
}

static inline void record_wait(int res, const void *tok, size_t len)
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
static inline void wait_answer(int res, const void *tok, size_t len, void *ctx)
{
	struct ferry_call *c = ctx;

	record_wait(res, tok, len);
	if (res == 0)
		respond_bytes(c, tok, len);
	else
		ferry_call_respond_error(c, res);
}

/* M_HOLDWAIT's wait: only record. */
static inline void wait_note(int res, const void *tok, size_t len, void *ctx)
{
	(void)ctx;
	record_wait(res, tok, len);
}

static inline void first_look(struct ferry_call *c)
{
	g.dispatched++;
	g.kind0 = ferry_call_cap_kind(c, 0);
	g.peek = ferry_call_cap(c, 0, NULL, NULL);
}

static inline void wait_handler(struct ferry_call *c, void *ctx)
{
	int ret;

	(void)ctx;
	first_look(c);
	ret = ferry_call_cap_wait(c, 0, wait_answer, c);
	cr_assert_eq(ret, 0, "ferry_call_cap_wait: %s", ferry_strerror(ret));
}

static inline void peek_handler(struct ferry_call *c, void *ctx)
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

static inline void hold_handler(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	first_look(c);
	cr_assert_lt(g.nheld, REC_MAX);
	g.held[g.nheld++] = c;
}

static inline void holdwait_handler(struct ferry_call *c, void *ctx)
{
	hold_handler(c, ctx);
	cr_assert_eq(ferry_call_cap_wait(c, 0, wait_note, NULL), 0);
}

/* M_READY's completion: every token, as 2-byte length + bytes. */
static inline void ready_answer(int res, void *ctx)
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

static inline void ready_handler(struct ferry_call *c, void *ctx)
{
	int ret;

	(void)ctx;
	first_look(c);
	g.in_handler = true;
	ret = ferry_call_caps_ready(c, ready_answer, c);
	g.in_handler = false;
	cr_assert_eq(ret, 0, "ferry_call_caps_ready: %s", ferry_strerror(ret));
}

static inline struct ferry_endpoint *
server_make(const struct ferry_ep_config *cfg)
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

static inline struct ferry_endpoint *server_new(void)
{
	struct ferry_ep_config cfg;

	ep_config(&cfg);
	return server_make(&cfg);
}

/* --- the client ---------------------------------------------------------- */

/* The harness's reply recorder, and a continuation that runs twice, or a
 * reply that does not fit, fails the test. */
static inline void iou_on_reply(int res, const void *data, size_t len,
				void *ctx)
{
	struct reply *r = ctx;

	cr_assert_not(r->done, "a continuation ran twice");
	if (res == 0)
		cr_assert_leq(len, sizeof(r->data));
	on_reply(res, data, len, ctx);
}

/* A call of @m with @caps and an 8-byte payload; asserts it started. */
static inline void call(struct ferry_endpoint *cli, struct ferry_session *s,
			uint16_t m, const struct ferry_cap *caps, unsigned n,
			struct reply *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = ferry_call_caps(s, m, msg(cli, 8, 0), caps, n, 0, iou_on_reply,
			      r);
	cr_assert_eq(ret, 0, "ferry_call_caps: %s", ferry_strerror(ret));
}

static inline struct ferry_cap iou_cap(struct ferry_iou *iou)
{
	return (struct ferry_cap){ .kind = FERRY_CAP_IOU, .data = iou };
}

static inline struct ferry_cap tok_cap(const void *p, size_t n)
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

static inline void promise_cancel(void *arg)
{
	struct promise *p = arg;

	p->cancels++;
	if (p->fail_in_cancel)
		p->cancel_ret = ferry_iou_fail(p->iou, -ECANCELED);
}

static inline void promise_release(void *arg)
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

static inline void promise_new(struct ferry_session *s, struct promise *p,
			       const struct ferry_iou_hooks *hooks)
{
	int ret;

	memset(p, 0, sizeof(*p));
	ret = ferry_iou_new(s, hooks, p, &p->iou);
	cr_assert_eq(ret, 0, "ferry_iou_new: %s", ferry_strerror(ret));
}

/* A token-like byte string, unique for @tag. */
static inline size_t fill_tok(uint8_t *out, size_t len, uint32_t tag)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(tag * 131u + i * 7u + (i >> 8));
	if (len >= 4)
		memcpy(out, &tag, 4);
	return len;
}

/* --- the raw peer (harness.h) --------------------------------------------- */

/* A raw client connected to @srv, which must say it takes IOUs. */
static inline void raw_connect_iou(struct raw *r, struct ferry_endpoint *srv)
{
	cr_assert(raw_connect(r, srv, 0x00090001, 0, NULL, 0) & FERRY_FEAT_IOU);
}

/* A one-frame REQUEST of @method whose table names the IOUs @ids (and
 * one payload byte); returns its req_id. */
static inline uint32_t raw_request_ious(struct raw *r, uint16_t method,
					const uint64_t *ids, unsigned n)
{
	struct ferry_cap_ent ents[FERRY_WIRE_CAPS_MAX];
	uint8_t vals[FERRY_WIRE_CAPS_MAX][FERRY_CAPS_IOU_LEN];
	uint8_t m[FERRY_WIRE_CAPS_MAX_LEN + 1];
	int len;

	cr_assert(n >= 1 && n <= FERRY_WIRE_CAPS_MAX);
	for (unsigned i = 0; i < n; i++) {
		/* The id travels big-endian, as ferry_call_caps writes it. */
		for (unsigned k = 0; k < 8; k++)
			vals[i][k] = (uint8_t)(ids[i] >> (56 - 8 * k));
		ents[i] = (struct ferry_cap_ent){ FERRY_CAPK_IOU, vals[i],
						  FERRY_CAPS_IOU_LEN };
	}
	len = ferry__wire_put_caps(m, sizeof(m) - 1, ents, n);
	cr_assert(len > 0);
	m[len++] = 'x';
	return raw_request(r, 0, method, FERRY_FF_CAPS, m, (size_t)len);
}

/* The response to @req_id: its error code (0 for a normal one), and a
 * normal one's payload in @out (IOU_OUT_MAX bytes) and *@len. */
#define IOU_OUT_MAX 2048

static inline uint32_t raw_result(struct raw *r, struct ferry_endpoint *srv,
				  uint32_t req_id, uint8_t *out, size_t *len)
{
	return raw_response(r, srv, req_id, NULL, out, IOU_OUT_MAX, len);
}

/* A PUSH for IOU @id: the token @tok/@len, or the error @code. */
static inline void raw_push(struct raw *r, uint64_t id, uint32_t code,
			    const void *tok, size_t len)
{
	struct ferry_push p = { .iou = id, .code = code, .token = tok,
				.token_len = (uint16_t)len };
	uint8_t body[FERRY_PUSH_HDR_LEN + FERRY_PUSH_TOKEN_MAX];
	struct ferry_hdr h;
	int n = ferry__wire_put_push(body, sizeof(body), &p);

	cr_assert(n > 0);
	raw_data_hdr(r, &h, FERRY_FT_PUSH);
	h.msg_len = (uint32_t)n;
	raw_send(r, &h, body, (size_t)n);
}

/*
 * A PUSH frame under push_id @push_id for IOU @id (the token @tok/@len, or
 * the error @code), in a datagram of its own.  raw_push() numbers its
 * PUSHes 1, 2, 3... (r->push_id, the last one); this sends any number: a
 * retransmission repeats one with the same records (docs/wire.md 3.3),
 * a reordered one comes below the highest yet.
 */
static inline void raw_push_as(struct raw *r, uint32_t push_id, uint64_t id,
			       uint32_t code, const void *tok, size_t len)
{
	struct ferry_push p = { .iou = id, .code = code, .token = tok,
				.token_len = (uint16_t)len };
	uint8_t body[FERRY_PUSH_HDR_LEN + FERRY_PUSH_TOKEN_MAX];
	struct ferry_w2_frame f = { .type = FERRY_W2_PUSH };
	int n = ferry__wire_put_push(body, sizeof(body), &p);

	cr_assert(n > 0);
	f.u.push.push_id = push_id;
	f.u.push.recs = body;
	f.u.push.recs_len = (uint16_t)n;
	raw_send_frames(r, &f, 1);
}

/* --- shared by several files ----------------------------------------- */

/* A wait or readiness callback that records its result and counts. */
static int g_late_res;
static unsigned g_late_calls;

static inline void late_wait(int res, const void *tok, size_t len, void *ctx)
{
	(void)tok;
	(void)len;
	(void)ctx;
	g_late_res = res;
	g_late_calls++;
}

static inline void late_ready(int res, void *ctx)
{
	late_wait(res, NULL, 0, ctx);
}


/* Checks @r holds @n tokens as M_READY answers them. */
static inline void check_ready_reply(const struct reply *r,
				     const uint8_t *const *tok,
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

#endif /* FERRY_TESTS_IOU_UTIL_H */
