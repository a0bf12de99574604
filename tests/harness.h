/* SPDX-License-Identifier: MIT */
/*
 * harness.h - the one harness of ferry's integration tests (nng's nuts.h is
 * the model): which dataplane a test runs on, endpoints made the same way
 * everywhere, pump-until, a connect helper, a reply recorder, a few common
 * handlers, and a raw peer that speaks the wire by hand through the
 * dataplane's own ops table.  A test file includes it after its own headers
 * and reads like a list of behaviours.
 *
 * Header-only, every function `static inline` (so a file pays nothing for
 * what it does not use): each test is one translation unit and one
 * executable, so nothing is gained by a harness.c, and a header needs no
 * build-system line in each test's registration.  Its globals (the
 * dataplane's name, the completion counter) are per test file, and
 * Criterion runs every case in a process of its own, so they start fresh.
 *
 * A battery: a file writes each case once as `static void t_NAME(void)`,
 * lists them in an X-macro and asks for one suite per built dataplane:
 *
 *	#define CASES(CASE, s) CASE(s, handshake) CASE(s, echo_sizes)
 *	HARNESS_BATTERY(transport, CASES, .timeout = 60)
 *
 * which gives the suites transport_uring and transport_dpdk (DPDK on a
 * loopback ring port, one EAL per test process).  The trailing arguments
 * are the suites' Criterion options (.init, .fini, .timeout).
 */
#ifndef FERRY_TESTS_HARNESS_H
#define FERRY_TESTS_HARNESS_H

#include <criterion/criterion.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "dataplane/dp.h"
#include "ferry_config.h"
#include "transport/stats.h"
#include "transport/wire.h"

/* --- the dataplane under test -------------------------------------------- */

/* The dataplane every endpoint and raw peer of this test opens ("uring",
 * "dpdk"); a battery case sets it before its body runs. */
static const char *dp_name = "uring";
/* DPDK: the EAL arguments every instance of a test process passes (the
 * first starts the EAL); NULL elsewhere. */
static const char *dp_eal;
/* ... and the endpoints' DPDK options that carry them. */
static struct ferry_dpdk_config dp_dpdk;

static inline void harness_use_uring(void)
{
	dp_name = "uring";
	dp_eal = NULL;
}

/* One EAL per test process (Criterion runs each case in its own), on a
 * loopback ring port: every endpoint of the test is a lane of it, steered
 * in software, so endpoints and raw peers reach each other at 127.0.0.1
 * without a kernel.  The file prefix keeps concurrent processes' EAL
 * runtime files apart. */
static inline void harness_use_dpdk(void)
{
	static char eal[256];

	snprintf(eal, sizeof(eal),
		 "--no-huge -m 256 --no-pci --no-telemetry --log-level=error "
		 "-l 0 --file-prefix ferry-test-%d --vdev=net_ring0",
		 (int)getpid());
	dp_name = "dpdk";
	dp_eal = eal;
	ferry_dpdk_config_init(&dp_dpdk);
	dp_dpdk.eal = eal;
}

/* One case of a battery: t_NAME on dataplane DP, in suite SUITE_DP. */
#define HARNESS_CASE_(dp, suite, name)                                         \
	Test(suite##_##dp, name)                                               \
	{                                                                      \
		harness_use_##dp();                                            \
		t_##name();                                                    \
	}
#define HARNESS_CASE_URING_(suite, name) HARNESS_CASE_(uring, suite, name)
#define HARNESS_CASE_DPDK_(suite, name) HARNESS_CASE_(dpdk, suite, name)

#if FERRY_HAVE_URING
#define HARNESS_BATTERY_URING_(suite, cases, ...)                              \
	TestSuite(suite##_uring, ##__VA_ARGS__);                               \
	cases(HARNESS_CASE_URING_, suite)
#else
#define HARNESS_BATTERY_URING_(suite, cases, ...)
#endif

#if FERRY_HAVE_DPDK
#define HARNESS_BATTERY_DPDK_(suite, cases, ...)                               \
	TestSuite(suite##_dpdk, ##__VA_ARGS__);                                \
	cases(HARNESS_CASE_DPDK_, suite)
#else
#define HARNESS_BATTERY_DPDK_(suite, cases, ...)
#endif

/* Every case of @cases (an X-macro: cases(CASE, s) expands CASE(s, name)
 * once per case) in a suite @suite_<dataplane>, for each dataplane built
 * in; the trailing arguments are the suites' options. */
#define HARNESS_BATTERY(suite, cases, ...)                                     \
	HARNESS_BATTERY_URING_(suite, cases, ##__VA_ARGS__)                    \
	HARNESS_BATTERY_DPDK_(suite, cases, ##__VA_ARGS__)

/* --- time ---------------------------------------------------------------- */

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* How long a test waits for what should take milliseconds before it calls
 * it lost: generous, for a loaded machine and sanitizers. */
#define WAIT_MS 10000u

/* --- endpoints ----------------------------------------------------------- */

/* The harness's endpoint: the dataplane under test on 127.0.0.1, four
 * sessions, and small pools (the tests move little data, and each
 * endpoint's memory is faulted in at creation).  It listens, handlers or
 * not, so that any endpoint of a test can be its server (a test of who
 * listens clears it).  A file tweaks from here. */
static inline void ep_config(struct ferry_ep_config *cfg)
{
	ferry_ep_config_init(cfg);
	cfg->dataplane = dp_name;
	cfg->dpdk = dp_eal ? &dp_dpdk : NULL;
	cfg->bind_addr = "127.0.0.1";
	cfg->listen = true;
	cfg->max_sessions = 4;
	cfg->pool[0] = (struct ferry_pool_class){ 512, 512 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 16 };
	cfg->pool[2] = (struct ferry_pool_class){ 0, 0 };
	cfg->pool[3] = (struct ferry_pool_class){ 0, 0 };
	/* The congestion controller a battery runs under (tests/meson.build
	 * runs reliability twice: with the default, and with swift). */
	if (getenv("FERRY_TEST_CC"))
		cfg->cc = getenv("FERRY_TEST_CC");
}

/* On top of ep_config(): eight sessions, and pools for many calls in
 * flight and messages up to the 8 MiB limit (the transport battery's). */
static inline void ep_big(struct ferry_ep_config *cfg)
{
	cfg->max_sessions = 8;
	cfg->pool[0] = (struct ferry_pool_class){ 512, 1024 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 64 };
	cfg->pool[2] = (struct ferry_pool_class){ 1u << 20, 24 };
	cfg->pool[3] = (struct ferry_pool_class){ 8u << 20, 2 };
}

static inline struct ferry_endpoint *ep_make(const struct ferry_ep_config *cfg)
{
	struct ferry_endpoint *ep = NULL;
	int ret = ferry_endpoint_create(cfg, &ep);

	cr_assert_eq(ret, 0, "ferry_endpoint_create: %s", ferry_strerror(ret));
	return ep;
}

/* ep_config(), then @tweak (if any) on top. */
static inline struct ferry_endpoint *
ep_new(void (*tweak)(struct ferry_ep_config *))
{
	struct ferry_ep_config cfg;

	ep_config(&cfg);
	if (tweak)
		tweak(&cfg);
	return ep_make(&cfg);
}

static inline struct ferry_ep_stats stats(const struct ferry_endpoint *ep)
{
	struct ferry_ep_stats st;

	ferry__endpoint_stats(ep, &st);
	return st;
}

/* --- pumping ------------------------------------------------------------- */

/* One turn of both endpoints (either may be NULL), without sleeping. */
static inline void pump_once(struct ferry_endpoint *a, struct ferry_endpoint *b)
{
	if (a)
		ferry_endpoint_poll(a, 0);
	if (b)
		ferry_endpoint_poll(b, 0);
}

/* Poll @a and @b until @cond holds or @ms pass; the caller checks @cond.
 * PUMP(a, b, ms, false) just drives both for @ms. */
#define PUMP(a, b, ms, cond)                                                   \
	for (uint64_t pump_end_ = now_ms() + (ms);                             \
	     !(cond) && now_ms() < pump_end_;)                                 \
	pump_once((a), (b))

/* Poll until @cond holds; fail the test with the message that follows if
 * WAIT_MS pass first. */
#define PUMP_UNTIL(a, b, cond, ...)                                            \
	do {                                                                   \
		PUMP((a), (b), WAIT_MS, (cond));                               \
		cr_assert((cond), __VA_ARGS__);                                \
	} while (0)

static inline void pump_for(struct ferry_endpoint *a, struct ferry_endpoint *b,
			    unsigned ms)
{
	PUMP(a, b, ms, false);
}

/* Poll until *@flag or @ms pass; returns *@flag. */
static inline bool pump(struct ferry_endpoint *a, struct ferry_endpoint *b,
			const volatile bool *flag, unsigned ms)
{
	PUMP(a, b, ms, *flag);
	return *flag;
}

/* --- sessions ------------------------------------------------------------ */

struct conn {
	bool done;
	int res;
};

static inline void on_connect(struct ferry_session *s, int res, void *ctx)
{
	struct conn *c = ctx;

	(void)s;
	c->done = true;
	c->res = res;
}

/* Connect @cli to @srv with @o (NULL: none); returns the connect's result
 * and the session in *@out (the caller closes it).  Fails the test if the
 * connect never ends. */
static inline int connect_to(struct ferry_endpoint *cli,
			     struct ferry_endpoint *srv,
			     const struct ferry_connect_opts *o,
			     struct ferry_session **out)
{
	struct conn c = { 0 };
	int ret;

	ret = ferry_session_connect(cli, "127.0.0.1", ferry_endpoint_port(srv),
				    o, on_connect, &c, out);
	cr_assert_eq(ret, 0, "ferry_session_connect: %s", ferry_strerror(ret));
	PUMP_UNTIL(cli, srv, c.done, "connect never ended");
	return c.res;
}

/* A session from @cli to @srv, open, or the test fails. */
static inline struct ferry_session *open_session(struct ferry_endpoint *cli,
						 struct ferry_endpoint *srv)
{
	struct ferry_session *s = NULL;
	int res = connect_to(cli, srv, NULL, &s);

	cr_assert_eq(res, 0, "connect: %s", ferry_strerror(res));
	cr_assert(ferry_session_is_open(s));
	return s;
}

/* --- messages and replies ------------------------------------------------ */

/* Byte @i of the pattern for @seed: what msg() writes and pattern_ok()
 * checks. */
static inline uint8_t pattern_byte(uint32_t seed, size_t i)
{
	return (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

static inline bool pattern_ok(const uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern_byte(seed, i))
			return false;
	return true;
}

/* A message of @len bytes of the pattern for @seed. */
static inline struct ferry_msgbuf *msg(struct ferry_endpoint *ep, size_t len,
				       uint32_t seed)
{
	struct ferry_msgbuf *mb;
	uint8_t *p;
	int ret = ferry_msgbuf_alloc(ep, len, &mb);

	cr_assert_eq(ret, 0, "msgbuf_alloc(%zu): %s", len, ferry_strerror(ret));
	p = ferry_msgbuf_data(mb);
	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(seed, i);
	return mb;
}

/* A message holding @n bytes of @p. */
static inline struct ferry_msgbuf *msg_of(struct ferry_endpoint *ep,
					  const void *p, size_t n)
{
	struct ferry_msgbuf *mb;
	int ret = ferry_msgbuf_alloc(ep, n, &mb);

	cr_assert_eq(ret, 0, "msgbuf_alloc(%zu): %s", n, ferry_strerror(ret));
	if (n)
		memcpy(ferry_msgbuf_data(mb), p, n);
	return mb;
}

/* The reply recorder: one per call, given as on_reply's context. */
#define REPLY_DATA_MAX 4096

struct reply {
	bool done;
	int res;
	int calls;    /* how many times the continuation ran: must be 1 */
	int order;    /* completion position (reply_order), for ordering */
	size_t len;
	uint32_t seed; /* set before the call: the pattern data_ok checks */
	bool data_ok;  /* a success whose payload is seed's pattern */
	bool whole;    /* all of the payload is in data */
	uint8_t data[REPLY_DATA_MAX];
};

/* Completions so far, in this test process. */
static int reply_order;

static inline void on_reply(int res, const void *data, size_t len, void *ctx)
{
	struct reply *r = ctx;

	r->calls++;
	r->done = true;
	r->res = res;
	r->len = len;
	r->order = reply_order++;
	r->data_ok = res == 0 && pattern_ok(data, len, r->seed);
	r->whole = res == 0 && len <= sizeof(r->data);
	if (r->whole && len)
		memcpy(r->data, data, len);
}

/* Poll until replies @r[0..n) are all in, or WAIT_MS pass. */
static inline bool pump_replies(struct ferry_endpoint *a,
				struct ferry_endpoint *b,
				const struct reply *r, int n)
{
	uint64_t end = now_ms() + WAIT_MS;

	for (;;) {
		int done = 0;

		for (int i = 0; i < n; i++)
			done += r[i].done;
		if (done == n)
			return true;
		if (now_ms() >= end)
			return false;
		pump_once(a, b);
	}
}

/* --- common handlers ----------------------------------------------------- */

/* Answers with the request itself. */
static inline void echo_handler(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	cr_assert_eq(ferry_call_respond(c, ferry_call_take_req(c)), 0);
}

/* Handler order: each request starts with a 4-byte sequence number,
 * logged as its handler runs; then echoed. */
struct order_log {
	uint32_t seen[4096];
	uint32_t n;
};

static inline void record_handler(struct ferry_call *c, void *ctx)
{
	struct order_log *log = ctx;
	size_t len;
	const uint8_t *p = ferry_call_req(c, &len);
	uint32_t seq;

	cr_assert_geq(len, 4);
	memcpy(&seq, p, 4);
	log->seen[log->n++] = seq;
	ferry_call_respond(c, ferry_call_take_req(c));
}

/* Keeps each call to be answered later, or never. */
struct deferred {
	struct ferry_call *calls[64];
	int n;
};

static inline void defer_handler(struct ferry_call *c, void *ctx)
{
	struct deferred *d = ctx;

	d->calls[d->n++] = c;
}

#include "raw_peer.h"

#endif /* FERRY_TESTS_HARNESS_H */
