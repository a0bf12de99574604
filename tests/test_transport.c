/* SPDX-License-Identifier: MIT */
/*
 * The transport battery, part one: calls, sessions and ordering, between
 * real endpoints on a real dataplane over loopback.  Every test is written
 * once and instantiated for each dataplane built in (tests/harness.h, nng's
 * way), so a new backend runs the same battery.  Part two, recovery from
 * loss, duplication, reordering, corruption and dead peers, is
 * test_reliability.c.
 *
 * Some tests speak the wire directly through the harness's raw peer to do
 * what a well-behaved ferry client never does: send requests out of order,
 * twice, or malformed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "transport/internal.h" /* the server's dataplane ops, wrapped */

#define M_ECHO 1
#define M_DEFER 2
#define M_RECORD 3
#define M_THREAD 4
#define M_IOU 5
#define M_TRACE 6

/* --- calls and sessions -------------------------------------------------- */

static void t_handshake(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_ep_stats st;

	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.sessions_opened, 1);
	/* Each end timed the handshake (the client CONNECT to ACCEPT, the
	 * server ACCEPT to the client's first datagram): the first RTO
	 * comes from that round trip (docs/wire.md, 5.3). */
	pump_for(cli, srv, 20);
	cr_assert_gt(s->sq.srtt_ns, 0);
	cr_assert_eq(srv->sessions[0].state, SESS_OPEN);
	cr_assert(srv->sessions[0].srv.confirmed);
	cr_assert_gt(srv->sessions[0].sq.srtt_ns, 0);
	ferry_session_close(s);
	pump_for(cli, srv, 20);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.sessions_closed, 1, "server saw the close");
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

static void short_connect(struct ferry_ep_config *c)
{
	ep_big(c);
	c->connect_timeout_ms = 300;
}

static void t_connect_timeout(void)
{
	struct ferry_endpoint *cli = ep_new(short_connect);
	struct ferry_endpoint *dead = ep_new(ep_big);
	uint16_t port = ferry_endpoint_port(dead);
	struct conn cr = { 0 };
	struct ferry_session *s;
	struct reply r = { 0 };

	/* A port nobody serves: destroy the endpoint that had it. */
	ferry_endpoint_destroy(dead);
	cr_assert_eq(ferry_session_connect(cli, "127.0.0.1", port, NULL,
					   on_connect, &cr, &s), 0);
	/* A call made before the handshake fails with it. */
	cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 8, 1), on_reply, &r), 0);
	cr_assert(pump(cli, NULL, &cr.done, WAIT_MS));
	cr_assert_eq(cr.res, -ETIMEDOUT);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.res, -ETIMEDOUT);
	cr_assert_not(ferry_session_is_open(s));
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
}

static void one_session(struct ferry_ep_config *c)
{
	ep_big(c);
	c->max_sessions = 1;
}

static void t_connect_rejected_when_full(void)
{
	struct ferry_endpoint *srv = ep_new(one_session);
	struct ferry_endpoint *c1 = ep_new(ep_big), *c2 = ep_new(ep_big);
	struct ferry_session *s1 = open_session(c1, srv), *s2;
	struct conn cr = { 0 };

	cr_assert_eq(ferry_session_connect(c2, "127.0.0.1",
					   ferry_endpoint_port(srv), NULL,
					   on_connect, &cr, &s2), 0);
	cr_assert(pump(c2, srv, &cr.done, WAIT_MS));
	cr_assert_eq(cr.res, -FERRY_EREJECTED, "got %s", ferry_strerror(cr.res));
	ferry_session_close(s2);
	ferry_session_close(s1);
	ferry_endpoint_destroy(c1);
	ferry_endpoint_destroy(c2);
	ferry_endpoint_destroy(srv);
}

static void t_echo_sizes(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	struct ferry_session *s;
	/* Around the packet boundary (8192 - 44 = 8148 payload bytes),
	 * and up to the 8 MiB limit. */
	const size_t sizes[] = { 0, 1, 32, 8147, 8148, 8149, 16296, 16297,
				 65536, 1u << 20, (8u << 20) - 1, 8u << 20 };
	struct ferry_ep_stats st;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	s = open_session(cli, srv);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct reply r = { .seed = (uint32_t)i };

		cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, sizes[i], (uint32_t)i),
					on_reply, &r), 0);
		cr_assert(pump(cli, srv, &r.done, WAIT_MS),
			  "size %zu: no reply", sizes[i]);
		cr_assert_eq(r.calls, 1);
		cr_assert_eq(r.res, 0, "size %zu: %s", sizes[i],
			     ferry_strerror(r.res));
		cr_assert_eq(r.len, sizes[i]);
		cr_assert(r.data_ok, "size %zu: payload differs", sizes[i]);
	}
	/* Reassembly is the only copy: one per delivered byte at most. */
	ferry__endpoint_stats(cli, &st);
	cr_assert_leq(st.payload_copied, st.payload_delivered);
	ferry__endpoint_stats(srv, &st);
	cr_assert_leq(st.payload_copied, st.payload_delivered);
	cr_assert_eq(ferry__ep_stats_drops(&st), 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

static void t_too_large(void)
{
	struct ferry_endpoint *cli = ep_new(ep_big);
	struct ferry_msgbuf *mb;

	cr_assert_eq(ferry_msgbuf_alloc(cli, (8u << 20) + 1, &mb), -EMSGSIZE);
	ferry_endpoint_destroy(cli);
}

/* E-order with many calls in flight, sizes mixed so that multi-packet
 * requests sit between single-packet ones. */
static void t_eorder_mixed(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	static struct order_log log;
	static struct reply r[1000];
	struct ferry_session *s;
	const uint32_t N = 1000;
	bool all = false;

	memset(&log, 0, sizeof(log));
	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_RECORD, record_handler, &log), 0);
	s = open_session(cli, srv);
	/* Issue in waves of 100: more than fits in the 128 slots is fine
	 * too (calls wait in order), but the pool is small. */
	for (uint32_t base = 0; base < N; base += 100) {
		for (uint32_t i = base; i < base + 100; i++) {
			size_t len = (i % 7 == 3) ? 20000 + i : 4 + i % 50;
			struct ferry_msgbuf *mb = msg(cli, len, i);

			memcpy(ferry_msgbuf_data(mb), &i, 4);
			r[i].seed = i;
			cr_assert_eq(ferry_call(s, M_RECORD, mb, on_reply, &r[i]), 0);
		}
		all = false;
		for (uint64_t end = now_ms() + 10000; !all && now_ms() < end;) {
			ferry_endpoint_poll(cli, 0);
			ferry_endpoint_poll(srv, 0);
			all = true;
			for (uint32_t i = base; i < base + 100; i++)
				all = all && r[i].done;
		}
		cr_assert(all, "wave %u did not complete", base);
	}
	cr_assert_eq(log.n, N, "each call ran exactly once");
	for (uint32_t i = 0; i < N; i++) {
		cr_assert_eq(log.seen[i], i, "handler order at %u", i);
		cr_assert_eq(r[i].calls, 1);
		cr_assert_eq(r[i].res, 0);
	}
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Credits: a server that grants 4 packets per session still completes
 * calls much larger than that, with the client held back, not flooding. */
static void tiny_window(struct ferry_ep_config *c)
{
	ep_big(c);
	c->session_credits = 4;
}

static void t_credits(void)
{
	struct ferry_endpoint *srv = ep_new(tiny_window);
	struct ferry_endpoint *cli = ep_new(tiny_window);
	static struct reply r[16];
	struct ferry_ep_stats st;
	struct ferry_session *s;
	bool all = false;

	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	s = open_session(cli, srv);
	for (uint32_t i = 0; i < 16; i++) {
		r[i].seed = i;
		/* ~13 packets each, 16 calls: 200 packets into a window of 4. */
		cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 100000, i), on_reply,
					&r[i]), 0);
	}
	all = pump_replies(cli, srv, r, 16);
	cr_assert(all);
	for (int i = 0; i < 16; i++) {
		cr_assert_eq(r[i].res, 0);
		cr_assert(r[i].data_ok);
	}
	ferry__endpoint_stats(cli, &st);
	cr_assert_gt(st.credit_stalls, 0, "the client was held back");
	ferry__endpoint_stats(srv, &st);
	cr_assert_gt(st.credit_stalls, 0, "the server was held back");
	cr_assert_eq(ferry__ep_stats_drops(&st), 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Close with calls outstanding: each ends once, -ECANCELED, in order. */
static void t_close_outstanding(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	static struct deferred d;
	static struct reply r[20];
	struct ferry_session *s;
	bool seen = false;

	memset(&d, 0, sizeof(d));
	memset(r, 0, sizeof(r));
	reply_order = 0;
	cr_assert_eq(ferry_endpoint_register(srv, M_DEFER, defer_handler, &d), 0);
	s = open_session(cli, srv);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(ferry_call(s, M_DEFER, msg(cli, 16, (uint32_t)i),
					on_reply, &r[i]), 0);
	for (uint64_t end = now_ms() + 5000; !seen && now_ms() < end;) {
		ferry_endpoint_poll(cli, 0);
		ferry_endpoint_poll(srv, 0);
		seen = d.n == 20;
	}
	cr_assert(seen, "server got all 20 calls");
	ferry_session_close(s);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(r[i].calls, 1, "call %d ended once", i);
		cr_assert_eq(r[i].res, -ECANCELED);
		cr_assert_eq(r[i].order, i, "in call order");
	}
	/* The server hears the close; late answers go nowhere, safely. */
	pump_for(cli, srv, 20);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(ferry_call_respond(d.calls[i], msg(srv, 8, 0)),
			     -ENOTCONN);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* The server going away: outstanding calls end with -ECONNRESET. */
static void t_peer_closes(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	static struct deferred d;
	struct reply r[5] = { 0 };
	struct ferry_session *s;
	bool all = false;

	memset(&d, 0, sizeof(d));
	cr_assert_eq(ferry_endpoint_register(srv, M_DEFER, defer_handler, &d), 0);
	s = open_session(cli, srv);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ferry_call(s, M_DEFER, msg(cli, 16, 0), on_reply,
					&r[i]), 0);
	pump_for(cli, srv, 20);
	cr_assert_eq(d.n, 5);
	ferry_endpoint_destroy(srv); /* sends CLOSE */
	for (uint64_t end = now_ms() + 5000; !all && now_ms() < end;) {
		ferry_endpoint_poll(cli, 0);
		all = true;
		for (int i = 0; i < 5; i++)
			all = all && r[i].done;
	}
	cr_assert(all);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(r[i].calls, 1);
		cr_assert_eq(r[i].res, -ECONNRESET);
	}
	cr_assert_not(ferry_session_is_open(s));
	cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 1, 0), on_reply, &r[0]),
		     -ENOTCONN);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
}

static void t_destroy_outstanding(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	static struct deferred d;
	struct reply r[3] = { 0 };
	struct ferry_session *s;

	memset(&d, 0, sizeof(d));
	cr_assert_eq(ferry_endpoint_register(srv, M_DEFER, defer_handler, &d), 0);
	s = open_session(cli, srv);
	(void)s;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ferry_call(s, M_DEFER, msg(cli, 16, 0), on_reply,
					&r[i]), 0);
	pump_for(cli, srv, 20);
	ferry_endpoint_destroy(cli);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(r[i].calls, 1);
		cr_assert_eq(r[i].res, -ECANCELED);
	}
	ferry_endpoint_destroy(srv);
}

static void t_unknown_method(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	struct ferry_session *s = open_session(cli, srv);
	struct reply r = { 0 };

	cr_assert_eq(ferry_call(s, 999, msg(cli, 8, 0), on_reply, &r), 0);
	cr_assert(pump(cli, srv, &r.done, WAIT_MS));
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.res, -FERRY_ENOMETHOD, "got %s", ferry_strerror(r.res));
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Deferred responses from another thread. */
struct thread_work {
	struct ferry_call *calls[64];
	_Atomic int n;
	_Atomic bool stop;
	struct ferry_endpoint *srv;
};

static void thread_handler(struct ferry_call *c, void *ctx)
{
	struct thread_work *tw = ctx;
	int i = atomic_load(&tw->n);

	tw->calls[i] = c;
	atomic_store(&tw->n, i + 1);
}

static void *responder(void *arg)
{
	struct thread_work *tw = arg;
	int done = 0;

	while (!atomic_load(&tw->stop)) {
		while (done < atomic_load(&tw->n)) {
			struct ferry_call *c = tw->calls[done++];
			size_t len;
			const void *req = ferry_call_req(c, &len);
			struct ferry_msgbuf *mb;

			/* Buffers may be taken and given from any thread. */
			cr_assert_eq(ferry_msgbuf_alloc(tw->srv, len, &mb), 0);
			memcpy(ferry_msgbuf_data(mb), req, len);
			usleep(200);
			cr_assert_eq(ferry_call_respond(c, mb), 0);
		}
		usleep(100);
	}
	return NULL;
}

static void t_deferred_other_thread(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	static struct thread_work tw;
	static struct reply r[64];
	struct ferry_session *s;
	pthread_t th;
	bool all = false;

	memset(&tw, 0, sizeof(tw));
	memset(r, 0, sizeof(r));
	tw.srv = srv;
	cr_assert_eq(ferry_endpoint_register(srv, M_THREAD, thread_handler, &tw), 0);
	s = open_session(cli, srv);
	pthread_create(&th, NULL, responder, &tw);
	for (uint32_t i = 0; i < 64; i++) {
		r[i].seed = i;
		cr_assert_eq(ferry_call(s, M_THREAD, msg(cli, 100 + i, i),
					on_reply, &r[i]), 0);
	}
	for (uint64_t end = now_ms() + 10000; !all && now_ms() < end;) {
		ferry_endpoint_poll(cli, 0);
		/* The server sleeps in the kernel: a cross-thread answer
		 * must wake it. */
		ferry_endpoint_poll(srv, 50);
		all = true;
		for (int i = 0; i < 64; i++)
			all = all && r[i].done;
	}
	atomic_store(&tw.stop, true);
	pthread_join(th, NULL);
	cr_assert(all);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(r[i].res, 0);
		cr_assert(r[i].data_ok);
	}
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/*
 * Deferred tokens on this dataplane: more calls than the session's credit
 * window, each naming an IOU that another thread keeps, in reverse order,
 * after the calls are made.  Handlers run 1..N in order and each waits for
 * its token (a one-frame request keeps its credit meanwhile, so the PUSHes
 * must get past a full window); every call gets back exactly its token.
 */
#define IOU_N 160

struct iou_work {
	struct order_log log;
	struct ferry_iou *ious[IOU_N];
	uint32_t waited;
};

/* Call @i's token: the reply's pattern for seed @i (see msg()), so that
 * on_reply checks each call got its own. */
static void iou_token(uint32_t i, uint8_t tok[8])
{
	for (uint32_t k = 0; k < 8; k++)
		tok[k] = (uint8_t)(i * 31 + k * 7);
}

/* The token came: answer with it, in the request's own buffer. */
static void iou_ready(int res, const void *tok, size_t len, void *ctx)
{
	struct ferry_call *c = ctx;
	struct ferry_msgbuf *mb;

	if (res < 0) {
		ferry_call_respond_error(c, res);
		return;
	}
	mb = ferry_call_take_req(c);
	cr_assert_not_null(mb);
	cr_assert_eq(ferry_msgbuf_set_len(mb, len), 0);
	memcpy(ferry_msgbuf_data(mb), tok, len);
	cr_assert_eq(ferry_call_respond(c, mb), 0);
}

static void iou_handler(struct ferry_call *c, void *ctx)
{
	struct iou_work *w = ctx;
	size_t len;
	const uint8_t *p = ferry_call_req(c, &len);
	uint32_t seq;

	cr_assert_geq(len, 8);
	memcpy(&seq, p, 4);
	w->log.seen[w->log.n++] = seq;
	cr_assert_eq(ferry_call_cap_kind(c, 0), FERRY_CAP_IOU);
	w->waited += ferry_call_cap(c, 0, NULL, NULL) == -EINPROGRESS;
	cr_assert_eq(ferry_call_cap_wait(c, 0, iou_ready, c), 0);
}

static void *iou_keeper(void *arg)
{
	struct iou_work *w = arg;

	/* Last made, first kept. */
	for (uint32_t i = IOU_N; i-- > 0;) {
		uint8_t tok[8];

		iou_token(i, tok);
		cr_assert_eq(ferry_iou_resolve(w->ious[i], tok, sizeof(tok)),
			     0);
	}
	return NULL;
}

static void t_ious(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	static struct iou_work w;
	static struct reply r[IOU_N];
	struct ferry_ep_stats st;
	struct ferry_session *s;
	pthread_t th;

	memset(&w, 0, sizeof(w));
	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_IOU, iou_handler, &w), 0);
	s = open_session(cli, srv);
	for (uint32_t i = 0; i < IOU_N; i++) {
		struct ferry_msgbuf *mb = msg(cli, 8, i);
		struct ferry_cap cap;

		memcpy(ferry_msgbuf_data(mb), &i, 4);
		r[i].seed = i;
		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &w.ious[i]), 0);
		cap = (struct ferry_cap){ FERRY_CAP_IOU, w.ious[i], 0 };
		cr_assert_eq(ferry_call_caps(s, M_IOU, mb, &cap, 1, 0, on_reply,
					     &r[i]),
			     0);
	}
	/* Let the calls reach the server (and fill its window) first. */
	pump_for(cli, srv, 50);
	cr_assert_eq(pthread_create(&th, NULL, iou_keeper, &w), 0);
	cr_assert(pump_replies(cli, srv, r, IOU_N), "calls did not complete");
	pthread_join(th, NULL);
	cr_assert_eq(w.log.n, IOU_N, "each call ran exactly once");
	cr_assert_gt(w.waited, 0, "some handler ran before its token came");
	for (uint32_t i = 0; i < IOU_N; i++) {
		cr_assert_eq(w.log.seen[i], i, "handler order at %u", i);
		cr_assert_eq(r[i].res, 0, "call %u: %s", i,
			     ferry_strerror(r[i].res));
		cr_assert_eq(r[i].calls, 1);
		cr_assert_eq(r[i].len, 8);
		cr_assert(r[i].data_ok, "call %u got its own token", i);
	}
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.iou_created, IOU_N);
	cr_assert_eq(st.iou_resolved, IOU_N);
	cr_assert_eq(st.iou_rejected, 0);
	ferry__endpoint_stats(cli, &st);
	cr_assert_eq(st.ious_pushed, IOU_N);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Ownership: after a workload every buffer is back in the pool. */
static uint32_t drain_pool(struct ferry_endpoint *ep, size_t len)
{
	static struct ferry_msgbuf *held[4096];
	uint32_t n = 0;

	while (n < 4096 && ferry_msgbuf_alloc(ep, len, &held[n]) == 0)
		n++;
	cr_assert_eq(n < 4096 ? ferry_msgbuf_alloc(ep, len, &held[0]) : -ENOBUFS,
		     -ENOBUFS);
	for (uint32_t i = 0; i < n; i++)
		ferry_msgbuf_free(held[i]);
	return n;
}

static void t_msgbuf_ownership(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	uint32_t small_c = drain_pool(cli, 100), big_c = drain_pool(cli, 1u << 20);
	uint32_t small_s = drain_pool(srv, 100), big_s = drain_pool(srv, 1u << 20);
	struct ferry_session *s;
	static struct reply r[40];
	struct ferry_msgbuf *mb;
	bool all = false;

	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	s = open_session(cli, srv);
	for (uint32_t i = 0; i < 40; i++) {
		r[i].seed = i;
		cr_assert_eq(ferry_call(s, M_ECHO,
					msg(cli, i % 2 ? 100 : 200000, i),
					on_reply, &r[i]), 0);
	}
	all = pump_replies(cli, srv, r, 40);
	cr_assert(all);
	/* Transmit completions and the peer's acknowledgements (due 1 ms
	 * after the last data) return the last buffers a moment after the
	 * last reply, later on a loaded machine; a leaked buffer never
	 * comes back. */
	for (uint64_t end = now_ms() + 2000; now_ms() < end;) {
		pump_for(cli, srv, 10);
		if (drain_pool(cli, 100) == small_c &&
		    drain_pool(cli, 1u << 20) == big_c &&
		    drain_pool(srv, 100) == small_s &&
		    drain_pool(srv, 1u << 20) == big_s)
			break;
	}
	cr_assert_eq(drain_pool(cli, 100), small_c, "client small buffers leaked");
	cr_assert_eq(drain_pool(cli, 1u << 20), big_c, "client big buffers leaked");
	cr_assert_eq(drain_pool(srv, 100), small_s, "server small buffers leaked");
	cr_assert_eq(drain_pool(srv, 1u << 20), big_s, "server big buffers leaked");
	/* A failed call leaves the request with the caller. */
	ferry_session_close(s);
	mb = msg(cli, 10, 0);
	cr_assert_eq(ferry_call(s, M_ECHO, mb, on_reply, &r[0]), -ENOTCONN);
	ferry_msgbuf_free(mb);
	cr_assert_eq(ferry_msgbuf_set_len(mb = msg(cli, 10, 0), 1u << 20),
		     -EMSGSIZE);
	ferry_msgbuf_free(mb);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* --- the raw peer -------------------------------------------------------- */

/* Requests arriving out of order, and twice, still run in call order,
 * each exactly once. */
static void t_eorder_raw_reordered(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big);
	static struct order_log log;
	const uint32_t order[] = { 3, 1, 5, 2, 2, 4, 1, 6, 5, 8, 7, 3 };
	struct raw rp;

	memset(&log, 0, sizeof(log));
	cr_assert_eq(ferry_endpoint_register(srv, M_RECORD, record_handler, &log), 0);
	raw_connect(&rp, srv, 0x00070001, 0, NULL, 0);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		uint32_t v = order[i];

		raw_request(&rp, order[i], M_RECORD, 0, &v, 4);
		pump_for(srv, NULL, 2);
	}
	pump_for(srv, NULL, 20);
	cr_assert_eq(log.n, 8, "8 distinct calls ran (got %u)", log.n);
	for (uint32_t i = 0; i < 8; i++)
		cr_assert_eq(log.seen[i], i + 1, "position %u ran call %u", i,
			     log.seen[i]);
	raw_close(&rp);
	ferry_endpoint_destroy(srv);
}

/* Bad input is dropped and counted, never fatal: damage, strangers,
 * forgeries and replays change nothing; only the authenticated peer can end
 * its own session, by breaking a rule (a protocol error). */
static void t_malformed_counted(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	struct ferry_ep_stats st;
	struct ferry_session *s;
	struct raw rp;
	struct reply r = { .seed = 9 };
	static uint8_t buf[9000];
	uint8_t other_key[FERRY_SEAL_KEY_LEN];
	struct ferry_w2_frame ping = { .type = FERRY_W2_PING };
	struct ferry_w2_frame ack = { .type = FERRY_W2_ACK };
	struct ferry_frame f;
	struct ferry_hdr h;
	uint64_t pn;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	raw_connect(&rp, srv, 0x00070001, 0, NULL, 0);
	memset(buf, 0xab, sizeof(buf));
	raw_send_bytes(&rp, buf, 10);   /* truncated */
	raw_send_bytes(&rp, buf, 100);  /* a short header, a CID nobody has */
	raw_send_bytes(&rp, buf, 8300); /* larger than max_frame */
	buf[0] = 0x12;
	raw_send_bytes(&rp, buf, 100);  /* no form at all */
	/* A v1 frame other than CONNECT. */
	memset(&h, 0, sizeof(h));
	h.version = FERRY_WIRE_VERSION;
	h.type = FERRY_FT_PING;
	h.dst_sess = 0x00010001;
	h.src_sess = 0x00070001;
	ferry__wire_encode(&h, buf);
	raw_send_bytes(&rp, buf, FERRY_WIRE_HDR_LEN);
	/* The session's CID under another key: a forgery. */
	memset(other_key, 0x5c, sizeof(other_key));
	raw_send_frames_as(&rp, rp.srv_cid, rp.pn++, other_key, &ping, 1);
	/* A real datagram, then the same bytes again: a replay. */
	pn = rp.pn++;
	raw_send_frames_as(&rp, rp.srv_cid, pn, rp.key_tx, &ping, 1);
	raw_send_frames_as(&rp, rp.srv_cid, pn, rp.key_tx, &ping, 1);
	pump_for(srv, NULL, 30);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.drop_truncated, 1);
	cr_assert_eq(st.drop_unknown_session, 1);
	/* A DPDK port drops what exceeds its MTU before the transport
	 * sees it. */
	if (strcmp(dp_name, "dpdk") != 0)
		cr_assert_eq(st.drop_oversized, 1);
	cr_assert_eq(st.drop_bad_magic, 1);
	cr_assert_eq(st.drop_bad_version, 1);
	cr_assert_eq(st.drop_auth, 1);
	cr_assert_eq(st.drop_duplicate, 1);
	cr_assert_eq(st.sessions_closed, 0, "none of it touched the session");
	cr_assert_eq(st.reqs_dispatched, 0);
	/* The peer itself acknowledges a datagram never sent: a protocol
	 * error, which ends its session and tells it why. */
	ack.u.ack.largest = 1000;
	raw_send_frames(&rp, &ack, 1);
	cr_assert(raw_recv(&rp, srv, FERRY_FT_CLOSE, 0, &f, buf, sizeof(buf)),
		  "no CLOSE");
	cr_assert_eq(f.h.msg_len, FERRY_EPROTO, "CLOSE's code");
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.sessions_proto_error, 1);
	cr_assert_eq(st.sessions_closed, 1);
	/* And the server still serves. */
	s = open_session(cli, srv);
	cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 64, 9), on_reply, &r), 0);
	cr_assert(pump(cli, srv, &r.done, WAIT_MS));
	cr_assert_eq(r.res, 0);
	cr_assert(r.data_ok);
	raw_close(&rp);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* The server's dataplane, wrapped: datagrams lent and handed back, and
 * each handed-back datagram overwritten at once, as a kernel refilling
 * the buffer would. */
static const struct ferry_dp_ops *rel_inner;
static struct ferry_dp_ops rel_ops;
static unsigned rel_lent, rel_back;
static struct { uint8_t *data; uint32_t len; } rel_pk[4096];

static unsigned rel_burst(struct ferry_dp *dp, struct ferry_dp_pkt *pkts,
			  unsigned n)
{
	unsigned got = rel_inner->rx_burst(dp, pkts, n);

	for (unsigned i = 0; i < got; i++) {
		rel_pk[pkts[i].id % 4096].data = pkts[i].data;
		rel_pk[pkts[i].id % 4096].len = pkts[i].len;
	}
	rel_lent += got;
	return got;
}

static void rel_release(struct ferry_dp *dp, uint32_t id)
{
	rel_back++;
	memset(rel_pk[id % 4096].data, 0xff, rel_pk[id % 4096].len);
	rel_inner->rx_release(dp, id);
}

static void answer_at_once(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	ferry_call_respond_error(c, -FERRY_EREJECTED);
}

/* A request read in place and answered at once, with a CLOSE after it in
 * the same datagram: the datagram is handed back to the dataplane once,
 * and only after its last frame was read (the CLOSE ends the session).
 * Before the fix its view gave the buffer back under the frame loop, and
 * the end of the datagram gave it back a second time. */
static void t_inplace_answered_then_close(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big);
	struct ferry_ep_stats st;
	struct raw rp;
	uint8_t body[32];
	struct ferry_w2_frame f[2];

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, answer_at_once, NULL),
		     0);
	rel_inner = srv->dp_ops;
	rel_ops = *rel_inner;
	rel_ops.rx_burst = rel_burst;
	rel_ops.rx_release = rel_release;
	srv->dp_ops = &rel_ops;
	rel_lent = rel_back = 0;
	raw_connect(&rp, srv, 0x00070001, 0, NULL, 0);
	memset(body, 7, sizeof(body));
	memset(f, 0, sizeof(f));
	f[0].type = FERRY_W2_REQUEST;
	f[0].u.data.req_id = 1;
	f[0].u.data.method = M_ECHO;
	f[0].u.data.bytes = body;
	f[0].u.data.bytes_len = sizeof(body);
	f[1].type = FERRY_W2_CLOSE;
	raw_send_frames(&rp, f, 2);
	pump_for(srv, NULL, 50);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.reqs_dispatched, 1);
	cr_assert_eq(st.sessions_closed, 1, "the CLOSE after it was read");
	cr_assert_eq(rel_back, rel_lent, "%u datagrams lent, %u handed back",
		     rel_lent, rel_back);
	raw_close(&rp);
	ferry_endpoint_destroy(srv);
}

/* A call the server cannot serve (a token table of version 0, which no
 * version defines) is answered with an error at its turn; the next call is
 * not held up behind it. */
static void t_refused_call_keeps_order(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big);
	static struct order_log log;
	struct raw rp;
	struct ferry_hdr h;
	struct ferry_frame f;
	uint8_t buf[2048];
	uint32_t v = 2, code;
	const char *m;
	uint16_t mlen;

	memset(&log, 0, sizeof(log));
	cr_assert_eq(ferry_endpoint_register(srv, M_RECORD, record_handler, &log), 0);
	raw_connect(&rp, srv, 0x00070001, 0, NULL, 0);
	memset(&h, 0, sizeof(h));
	h.type = FERRY_FT_REQUEST;
	h.flags = FERRY_FF_CAPS;
	h.method = M_RECORD;
	h.dst_sess = rp.srv_sess;
	h.src_sess = rp.my_sess;
	h.seq = rp.seq++;
	h.credit = 1u << 20;
	h.req_id = 1;
	h.msg_len = 4;
	raw_send(&rp, &h, &v, 4);
	raw_request(&rp, 2, M_RECORD, 0, &v, 4);
	cr_assert(raw_recv(&rp, srv, FERRY_FT_RESPONSE, 0, &f, buf,
			   sizeof(buf)));
	cr_assert_eq(f.h.req_id, 1, "call 1 is answered first");
	cr_assert(f.h.flags & FERRY_FF_ERR);
	cr_assert_eq(ferry__wire_parse_error(f.payload, f.pay_len, &code, &m,
					    &mlen), 0);
	cr_assert_eq(code, EPROTONOSUPPORT);
	cr_assert(raw_recv(&rp, srv, FERRY_FT_RESPONSE, 0, &f, buf,
			   sizeof(buf)));
	cr_assert_eq(f.h.req_id, 2);
	cr_assert_not(f.h.flags & FERRY_FF_ERR);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.seen[0], 2);
	raw_close(&rp);
	ferry_endpoint_destroy(srv);
}

/* A wire v1 client is told, at once and in v1, that this server speaks v2
 * (docs/wire.md, section 4.2), and leaves no session behind. */
static void t_v1_client_refused(void)
{
	struct ferry_endpoint *srv = ep_new(ep_big);
	struct ferry_hdr h = { .type = FERRY_FT_CONNECT };
	struct ferry_connect_body b = { .params = { 8u << 20, 64, 2048, 16 } };
	struct ferry_ep_stats st;
	struct raw rp;
	struct ferry_frame f;
	uint8_t body[128], buf[2048];
	uint32_t code;
	const char *m;
	uint16_t mlen;
	int n;

	raw_open(&rp, srv, 0);
	b.have_params = true;
	n = ferry__wire_put_connect(body, sizeof(body), &b);
	cr_assert_gt(n, 0);
	h.version = FERRY_WIRE_VERSION;
	h.src_sess = 0x00090002;
	h.msg_len = (uint32_t)n;
	ferry__wire_encode(&h, buf);
	memcpy(buf + FERRY_WIRE_HDR_LEN, body, (size_t)n);
	raw_send_bytes(&rp, buf, FERRY_WIRE_HDR_LEN + (size_t)n);
	cr_assert(raw_recv(&rp, srv, FERRY_FT_ERROR, 0, &f, buf,
			   sizeof(buf)), "no ERROR");
	cr_assert_eq(f.h.dst_sess, 0x00090002);
	cr_assert_eq(ferry__wire_parse_error(f.payload, f.pay_len, &code, &m,
					    &mlen), 0);
	cr_assert_eq(code, FERRY_EVERSION);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.sessions_opened, 0);
	cr_assert_eq(st.v1_refused, 1);
	raw_close(&rp);
	ferry_endpoint_destroy(srv);
}

/* Call trace context (FF_TRACE, docs/wire.md section 8) with no tracer on
 * either side: the client forwards the application's context as it is,
 * the server's handler sends attributes back, and the counters say what
 * crossed.  A raw peer's block with an out-of-range length refuses its
 * call, in order, with FERRY_EPROTO. */
static void trace_handler(struct ferry_call *c, void *ctx)
{
	size_t len;

	(void)ctx;
	ferry_call_req(c, &len);
	cr_assert_eq(ferry_call_resp_attr_str(c, "handler", "trace"), 0);
	cr_assert_eq(ferry_call_resp_attr_int(c, "req.len", (int64_t)len), 0);
	cr_assert_eq(ferry_call_respond(c, ferry_call_take_req(c)), 0);
}

static void t_trace_blocks(void)
{
	static const char tp[] =
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct ferry_endpoint *srv = ep_new(ep_big), *cli = ep_new(ep_big);
	static struct order_log log;
	struct ferry_call_opts o = { .traceparent = tp,
				     .tracestate = "congo=t61rcWkgMzE" };
	/* Around the packet boundary, and several fragments. */
	const size_t sizes[] = { 0, 1, 100, 8000, 8200, 30000 };
	const uint32_t n = sizeof(sizes) / sizeof(sizes[0]);
	static struct reply r[8];
	struct ferry_ep_stats st;
	struct ferry_session *s;
	struct raw rp;
	struct ferry_frame f;
	uint8_t m[256], buf[2048];
	uint32_t v = 7, code;
	const char *em;
	uint16_t mlen;
	int bl;

	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_TRACE, trace_handler, NULL), 0);
	cr_assert_eq(ferry_endpoint_register(srv, M_RECORD, record_handler, &log),
		     0);
	s = open_session(cli, srv);
	for (uint32_t i = 0; i < n; i++) {
		r[i].seed = i;
		cr_assert_eq(ferry_call_with(s, M_TRACE, msg(cli, sizes[i], i),
					     i % 2 ? &o : NULL, on_reply, &r[i]),
			     0);
	}
	cr_assert(pump_replies(cli, srv, r, (int)n));
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(r[i].res, 0, "call %u: %s", i,
			     ferry_strerror(r[i].res));
		cr_assert_eq(r[i].len, sizes[i], "call %u", i);
		cr_assert(r[i].data_ok, "call %u: the payload alone", i);
	}
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.trace_blocks_received, n / 2);
	cr_assert_eq(st.trace_blocks_bad, 0);
	cr_assert_eq(st.trace_attrs_unsent, 0);
	cr_assert_eq(ferry__ep_stats_drops(&st), 0);
	ferry__endpoint_stats(cli, &st);
	cr_assert_eq(st.trace_attrs_received, 2 * n);
	cr_assert_eq(st.trace_ctx_unsent, 0);
	cr_assert_eq(st.trace_blocks_bad, 0);
	ferry_session_close(s);

	/* The raw peer announced no trace blocks, but the server takes
	 * them from anyone. */
	raw_connect(&rp, srv, 0x00070001, 0, NULL, 0);
	bl = ferry__wire_put_trace_block(m, sizeof(m), tp, NULL, 0);
	cr_assert_eq(bl, 59);
	memcpy(m + bl, &v, 4);
	m[3] = 200; /* block_len past the message */
	memset(&f, 0, sizeof(f));
	{
		struct ferry_hdr h = { .type = FERRY_FT_REQUEST,
				       .flags = FERRY_FF_TRACE,
				       .method = M_RECORD,
				       .dst_sess = rp.srv_sess,
				       .src_sess = rp.my_sess,
				       .seq = rp.seq++,
				       .credit = 1u << 20,
				       .req_id = 1,
				       .msg_len = (uint32_t)bl + 4 };

		raw_send(&rp, &h, m, (size_t)bl + 4);
		m[3] = 59;
		h.seq = rp.seq++;
		h.req_id = 2;
		raw_send(&rp, &h, m, (size_t)bl + 4);
	}
	cr_assert(raw_recv(&rp, srv, FERRY_FT_RESPONSE, 0, &f, buf,
			   sizeof(buf)));
	cr_assert_eq(f.h.req_id, 1, "call 1 is answered first");
	cr_assert(f.h.flags & FERRY_FF_ERR);
	cr_assert_eq(ferry__wire_parse_error(f.payload, f.pay_len, &code, &em,
					    &mlen), 0);
	cr_assert_eq(code, FERRY_EPROTO);
	cr_assert(raw_recv(&rp, srv, FERRY_FT_RESPONSE, 0, &f, buf,
			   sizeof(buf)));
	cr_assert_eq(f.h.req_id, 2);
	cr_assert_not(f.h.flags & (FERRY_FF_ERR | FERRY_FF_TRACE));
	cr_assert_eq(f.pay_len, 4, "the handler got the payload alone");
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.seen[0], 7);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.trace_blocks_received, n / 2 + 2);
	cr_assert_eq(st.trace_blocks_bad, 1);
	raw_close(&rp);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* A client with more slots than the server keeps no more calls in flight
 * than the server can hold. */
static void few_slots(struct ferry_ep_config *c)
{
	ep_big(c);
	c->session_slots = 4;
}

static void t_slots_negotiated(void)
{
	struct ferry_endpoint *srv = ep_new(few_slots), *cli = ep_new(ep_big);
	static struct reply r[60];
	struct ferry_ep_stats st;
	struct ferry_session *s;
	bool all = false;

	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	s = open_session(cli, srv);
	for (uint32_t i = 0; i < 60; i++) {
		r[i].seed = i;
		cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 40, i), on_reply,
					&r[i]), 0);
	}
	all = pump_replies(cli, srv, r, 60);
	cr_assert(all);
	for (int i = 0; i < 60; i++)
		cr_assert(r[i].data_ok);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(ferry__ep_stats_drops(&st), 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Zero-copy send: payloads from the registered pool go as fixed-buffer
 * SENDMSG_ZC, and arrive intact; the buffers come back only after the
 * kernel's notification. */
static void zc_on(struct ferry_ep_config *c)
{
	ep_big(c);
	c->zc_threshold = 1024;
	c->max_frame = 65000;
}

static void t_zero_copy_send(void)
{
	struct ferry_endpoint *srv = ep_new(zc_on), *cli = ep_new(zc_on);
	const size_t sizes[] = { 1000, 4096, 60000, 64956, 200000, 1u << 20 };
	struct ferry_ep_stats st;
	struct ferry_session *s;
	uint32_t small = drain_pool(cli, 100), big = drain_pool(cli, 1u << 20);

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	s = open_session(cli, srv);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct reply r = { .seed = (uint32_t)i + 40 };

		cr_assert_eq(ferry_call(s, M_ECHO,
					msg(cli, sizes[i], (uint32_t)i + 40),
					on_reply, &r), 0);
		cr_assert(pump(cli, srv, &r.done, WAIT_MS),
			  "size %zu", sizes[i]);
		cr_assert_eq(r.res, 0, "size %zu: %s", sizes[i],
			     ferry_strerror(r.res));
		cr_assert(r.data_ok, "size %zu: payload differs", sizes[i]);
	}
	pump_for(cli, srv, 20);
	ferry__endpoint_stats(cli, &st);
	cr_assert_gt(st.tx_zc, 0, "zero-copy sends happened");
	/* Registering the pool needs CAP_IPC_LOCK or a memlock limit above
	 * its size; root has the first. */
	if (geteuid() == 0)
		cr_assert_eq(st.tx_zc_fixed, st.tx_zc,
			     "every zero-copy send came from registered memory");
	cr_assert_eq(st.tx_errors, 0);
	ferry__endpoint_stats(srv, &st);
	cr_assert_gt(st.tx_zc, 0);
	cr_assert_eq(st.tx_errors, 0);
	/* Every buffer came back once its notification arrived. */
	cr_assert_eq(drain_pool(cli, 100), small);
	cr_assert_eq(drain_pool(cli, 1u << 20), big);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}


/* --- the battery, per dataplane ------------------------------------------ */

/* Counters by name, the public way to read them: every counter of the
 * internal list has a unique name and a description, reads the same by
 * name as by index and as the internal struct, and unknown names fail. */
static void t_stats_by_name(void)
{
	struct ferry_endpoint *srv = ep_new(NULL), *cli = ep_new(NULL);
	struct ferry_session *s;
	struct reply r = { 0 };
	struct ferry_ep_stats st;
	const char *name, *help, *seen[256];
	uint64_t v, w;
	unsigned n;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	s = open_session(cli, srv);
	cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 32, 0), on_reply, &r), 0);
	cr_assert(pump(cli, srv, &r.done, WAIT_MS), "no reply");
	cr_assert_eq(ferry_endpoint_stat(cli, "calls_completed", &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(ferry_endpoint_stat(srv, "reqs_dispatched", &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(ferry_endpoint_stat(srv, "no_such_counter", &v), -ENOENT);
	cr_assert_eq(ferry_endpoint_stat(srv, NULL, &v), -EINVAL);
	cr_assert_eq(ferry_endpoint_stat_at(NULL, 0, &name, NULL, &v), -EINVAL);

	ferry__endpoint_stats(srv, &st);
	for (n = 0; ferry_endpoint_stat_at(srv, n, &name, &help, &v) == 0; n++) {
		cr_assert_lt(n, 256);
		cr_assert(name && *name && help && *help, "counter %u", n);
		for (unsigned i = 0; i < n; i++)
			cr_assert_str_neq(seen[i], name);
		seen[n] = name;
		cr_assert_eq(ferry_endpoint_stat(srv, name, &w), 0, "%s", name);
		cr_assert_eq(v, w, "%s", name);
	}
	/* The list is the struct, field for field. */
	cr_assert_eq(n, sizeof(st) / sizeof(uint64_t));
	cr_assert_eq(ferry_endpoint_stat_at(srv, n, &name, &help, &v), -ENOENT);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

#define TRANSPORT_CASES(CASE, s)                                               \
	CASE(s, handshake)                                                     \
	CASE(s, connect_timeout)                                               \
	CASE(s, connect_rejected_when_full)                                    \
	CASE(s, echo_sizes)                                                    \
	CASE(s, too_large)                                                     \
	CASE(s, eorder_mixed)                                                  \
	CASE(s, eorder_raw_reordered)                                          \
	CASE(s, credits)                                                       \
	CASE(s, close_outstanding)                                             \
	CASE(s, peer_closes)                                                   \
	CASE(s, destroy_outstanding)                                           \
	CASE(s, unknown_method)                                                \
	CASE(s, deferred_other_thread)                                         \
	CASE(s, ious)                                                          \
	CASE(s, msgbuf_ownership)                                              \
	CASE(s, malformed_counted)                                             \
	CASE(s, inplace_answered_then_close)                                   \
	CASE(s, refused_call_keeps_order)                                      \
	CASE(s, trace_blocks)                                                  \
	CASE(s, v1_client_refused)                                    \
	CASE(s, slots_negotiated)                                              \
	CASE(s, zero_copy_send)                                                \
	CASE(s, stats_by_name)

HARNESS_BATTERY(transport, TRANSPORT_CASES)
