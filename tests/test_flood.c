/* SPDX-License-Identifier: MIT */
/*
 * test_flood.c - floods and reflection on wire v2 (docs/wire.md,
 * section 4.3; issue 14): what a CONNECT nobody vouches for can get from
 * an endpoint, and what the endpoint sends to an address nobody proved.
 * Raw peers write the CONNECTs with the handshake unit's client half
 * (ferry__hs_client_init/build, a CID of the test's choosing); they
 * cannot forge a source address through the dataplane's ops table, so a
 * flood comes from a few of them, each under many CIDs.
 *  - an endpoint that does not listen answers no CONNECT
 *    (drop_not_listening), and still connects out; one that serves (a
 *    handler, a hook, a notifier) listens;
 *  - a CONNECT without a cookie gets a stateless RETRY: no session, no
 *    buffer; beyond the per-source bucket (FERRY_HS_SRC_RATE/BURST) not
 *    even that (retry_ratelimited), and a session open before the flood
 *    keeps completing calls (v1 made a session per CONNECT, up to
 *    connect_rate);
 *  - CONNECTs beyond connect_rate are dropped before they are read
 *    (retry_ratelimited without a cookie, connects_rate_limited with
 *    one): no RETRY, no CRC, no cookie check; those with a cookie have a
 *    budget of their own, so a flood without cookies does not hold back
 *    a client that has one, and a client connects once the flood ends;
 *  - CONNECTs that carry a valid cookie still meet connect_rate and
 *    connect_rate_per_source (connects_rate_limited);
 *  - with retry_never, a CONNECT from an address that then says nothing
 *    makes a half-open session that gets its ACCEPT and no data, and
 *    expires after connect_timeout_ms (half_open_expired);
 *  - every reply to an unvalidated address is at most 3x the bytes it
 *    sent;
 *  - a peer that grants little credit and goes quiet draws PINGs that back
 *    off, not one every RTO;
 *  - a CONNECT copy that arrives with the client's first datagram leaves
 *    nothing owed behind.
 *
 * Every case runs on each dataplane built in (uring, and DPDK on a
 * net_ring loopback port): HARNESS_BATTERY at the end of the file.
 */
#include <criterion/criterion.h>

#include "harness.h"
#include "transport/internal.h" /* a session's place on the transmit list */

#define M_ECHO 1

/* A flood: how many CONNECTs, from how many raw peers. */
#define FLOOD_CONNECTS 10000
#define FLOOD_PEERS 8

static void no_listen(struct ferry_ep_config *c)
{
	c->listen = false;
}

/* The handshake state of a CONNECT as a client would send it, under CID
 * @cid, taking @window bytes of credit. */
static void hs_init(struct ferry_hs_client *hs, uint64_t cid, uint32_t window)
{
	struct ferry_hs_client_cfg cfg = { .mode = FERRY_W2_MODE_MAC };

	cfg.params = (struct ferry_w2_params){ 1u << 20, window,
					       RAW_PATH_FRAME, 16, 1000,
					       FERRY_REPLAY_LOG2_DEFAULT };
	cfg.features = FERRY_W2_FEAT_TRACE;
	cfg.cid = cid;
	cr_assert_eq(ferry__hs_client_init(hs, &cfg), 0);
}

/* Send @hs's CONNECT (with its cookie once a RETRY came) from @r; its
 * length. */
static size_t hs_send(struct raw *r, struct ferry_hs_client *hs)
{
	uint8_t buf[FERRY_HS_CONNECT_MAX];
	int n = ferry__hs_client_build(hs, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	raw_send_bytes(r, buf, (size_t)n);
	return (size_t)n;
}

/* A CONNECT without a cookie under CID @cid, sent from @r; its length. */
static size_t connect_cid(struct raw *r, uint64_t cid)
{
	struct ferry_hs_client hs;
	size_t n;

	hs_init(&hs, cid, 1u << 20);
	n = hs_send(r, &hs);
	ferry__hs_client_wipe(&hs);
	return n;
}

/* The CID of flood CONNECT @i: the low 32 bits never 0. */
static uint64_t cid_of(uint32_t i)
{
	return (uint64_t)0x5eed0000u << 32 | (i + 1);
}

/* The next handshake datagram (long header) for @hs that arrives at @r
 * within 3 s, fed to it: its verdict (FERRY_HS_DROP when none came);
 * its size in *@got when not NULL. */
static enum ferry_hs_verdict hs_wait(struct raw *r, struct ferry_endpoint *ep,
				     struct ferry_hs_client *hs,
				     struct ferry_hs_client_result *res,
				     unsigned ms, size_t *got)
{
	uint8_t buf[RAW_FRAME_MAX];
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		size_t n;
		enum ferry_hs_verdict v;

		ferry_endpoint_poll(ep, 0);
		n = raw_take(r, buf, sizeof(buf), NULL);
		if (!n)
			continue;
		memset(res, 0, sizeof(*res));
		v = ferry__hs_client_input(hs, buf, n, res);
		if (v != FERRY_HS_DROP) {
			if (got)
				*got = n;
			return v;
		}
	}
	return FERRY_HS_DROP;
}

/*
 * A whole handshake from @r (aimed at @srv) under CID @cid, taking
 * @window bytes of credit: CONNECT, RETRY (unless the server admits at
 * once), CONNECT with the cookie, ACCEPT.  @r is then a raw session.
 */
static void hs_open(struct raw *r, struct ferry_endpoint *srv, uint64_t cid,
		    uint32_t window)
{
	struct ferry_hs_client_result res;
	struct ferry_hs_client hs;
	enum ferry_hs_verdict v;

	hs_init(&hs, cid, window);
	hs_send(r, &hs);
	v = hs_wait(r, srv, &hs, &res, 3000, NULL);
	if (v == FERRY_HS_RETRY) {
		hs_send(r, &hs);
		v = hs_wait(r, srv, &hs, &res, 3000, NULL);
	}
	cr_assert_eq(v, FERRY_HS_ACCEPTED, "no ACCEPT");
	raw_take_accept(r, &hs, &res);
}

/* Whether anything arrives at @r within @ms, polling @ep. */
static bool raw_hears(struct raw *r, struct ferry_endpoint *ep, unsigned ms)
{
	uint8_t buf[RAW_FRAME_MAX];
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		ferry_endpoint_poll(ep, 0);
		if (raw_take(r, buf, sizeof(buf), NULL) > 0)
			return true;
	}
	return false;
}

/* Take what @r received (reaping its sends): datagrams in *@n, bytes in
 * *@bytes, each checked to be at most @max bytes. */
static void raw_drain(struct raw *r, unsigned *n, size_t *bytes, size_t max)
{
	uint8_t buf[RAW_FRAME_MAX];
	size_t len;

	while ((len = raw_take(r, buf, sizeof(buf), NULL)) > 0) {
		cr_assert_leq(len, max, "a reply of %zu bytes", len);
		(*n)++;
		*bytes += len;
	}
}

/* One echo call on @s, which must succeed. */
static void echo_ok(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		    struct ferry_session *s, uint32_t seed)
{
	struct reply r = { .seed = seed };

	cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 64, seed), on_reply, &r),
		     0);
	cr_assert(pump(cli, srv, &r.done, WAIT_MS), "call %u never ended",
		  seed);
	cr_assert_eq(r.res, 0, "call %u: %s", seed, ferry_strerror(r.res));
	cr_assert(r.data_ok);
}

/* --- who listens --------------------------------------------------------- */

/* A client-only endpoint takes no CONNECT and answers none, not even with
 * a RETRY, however many come; its own table stays free to connect out. */
static void t_not_listening_drops_connect(void)
{
	struct ferry_endpoint *cli = ep_new(no_listen), *srv = ep_new(NULL);
	struct ferry_session *s;
	struct ferry_ep_stats st;
	struct raw r;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	raw_open(&r, cli, 0);
	for (uint32_t i = 0; i < 8; i++)
		connect_cid(&r, cid_of(i));
	cr_assert_not(raw_hears(&r, cli, 300), "a client answered CONNECT");
	st = stats(cli);
	cr_assert_eq(st.drop_not_listening, 8);
	cr_assert_eq(st.sessions_opened, 0);
	cr_assert_eq(st.retry_sent, 0);
	cr_assert_eq(st.tx_pkts, 0);
	s = open_session(cli, srv);
	echo_ok(cli, srv, s, 1);
	ferry_session_close(s);
	raw_close(&r);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

static int admit_all(void *ctx, const void *tok, size_t len)
{
	(void)ctx;
	(void)tok;
	(void)len;
	return 0;
}

static void on_sess(struct ferry_session *s, enum ferry_session_event ev,
		    int res, void *ctx)
{
	(void)s;
	(void)ev;
	(void)res;
	(void)ctx;
}

/* An endpoint that serves listens without being told: a handler, an
 * admission hook or a session notifier each make it a server. */
static void t_serving_endpoint_listens(void)
{
	for (int how = 0; how < 3; how++) {
		struct ferry_endpoint *ep = ep_new(no_listen);
		struct raw r;

		if (how == 0)
			cr_assert_eq(ferry_endpoint_register(ep, M_ECHO,
							     echo_handler,
							     NULL),
				     0);
		else if (how == 1)
			cr_assert_eq(ferry_endpoint_set_admission(
					     ep, admit_all, NULL, NULL),
				     0);
		else
			ferry_endpoint_on_session(ep, on_sess, NULL);
		raw_open(&r, ep, 0);
		hs_open(&r, ep, cid_of(how), 1u << 20);
		cr_assert_eq(stats(ep).sessions_opened, 1, "way %d", how);
		cr_assert_eq(stats(ep).drop_not_listening, 0);
		raw_close(&r);
		ferry_endpoint_destroy(ep);
	}
}

/* --- a flood of CONNECTs without cookies ---------------------------------- */

static void flood_cfg(struct ferry_ep_config *c)
{
	/* Room for far more sessions than a flood would make in v1: the
	 * table is not what stops it. */
	c->max_sessions = 256;
	c->session_slots = 4;
	c->session_credits = 16;
	c->connect_rate = 0;
	c->connect_rate_per_source = 0;
}

/*
 * FLOOD_CONNECTS CONNECTs without a cookie from FLOOD_PEERS raw peers
 * (one source address), each its own CID, while a session opened before
 * them makes calls, one at a time.  Each gets at most a RETRY of at most
 * 3x its bytes, and no session or buffer; RETRYs stop at the source's
 * bucket (FERRY_HS_SRC_BURST, then FERRY_HS_SRC_RATE a second), the rest
 * counted in retry_ratelimited.
 */
static void t_flood_stateless_retry(void)
{
	struct ferry_endpoint *srv = ep_new(flood_cfg), *cli = ep_new(NULL);
	struct raw peers[FLOOD_PEERS];
	struct ferry_ep_stats st0, st;
	struct reply r = { 0 };
	unsigned calls = 0, calls_ok = 0, replies = 0;
	size_t sent = 0, got = 0, len = 0;
	struct ferry_session *s;
	bool busy = false;
	uint64_t t0, ms;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	s = open_session(cli, srv);
	st0 = stats(srv);
	for (int p = 0; p < FLOOD_PEERS; p++)
		raw_open(&peers[p], srv, 0);
	t0 = now_ms();
	for (uint32_t i = 0; i < FLOOD_CONNECTS; i++) {
		len = connect_cid(&peers[i % FLOOD_PEERS], cid_of(i));
		sent += len;
		if (i % 16)
			continue;
		for (int p = 0; p < FLOOD_PEERS; p++)
			raw_drain(&peers[p], &replies, &got, 3 * len);
		if (busy && r.done) {
			calls_ok += r.res == 0 && r.data_ok;
			busy = false;
		}
		if (!busy) {
			memset(&r, 0, sizeof(r));
			r.seed = calls;
			cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 64, calls),
						on_reply, &r),
				     0);
			calls++;
			busy = true;
		}
		pump_once(srv, cli);
	}
	ms = now_ms() - t0;
	pump_for(srv, cli, 200);
	for (int p = 0; p < FLOOD_PEERS; p++)
		raw_drain(&peers[p], &replies, &got, 3 * len);
	if (busy) {
		cr_assert(pump(cli, srv, &r.done, WAIT_MS));
		calls_ok += r.res == 0 && r.data_ok;
	}
	st = stats(srv);
	cr_log_info("flood: %u CONNECTs in %llu ms: %llu RETRYs, %llu rate "
		    "limited, %u calls", FLOOD_CONNECTS,
		    (unsigned long long)ms, (unsigned long long)st.retry_sent,
		    (unsigned long long)st.retry_ratelimited, calls);
	cr_assert_eq(st.sessions_opened, st0.sessions_opened,
		     "a CONNECT without a cookie made a session");
	cr_assert_eq(st.msgbuf_allocs, st0.msgbuf_allocs);
	cr_assert_eq(st.connects_rate_limited, 0);
	st.retry_sent -= st0.retry_sent;
	st.retry_ratelimited -= st0.retry_ratelimited;
	cr_assert_gt(st.retry_sent, 0);
	cr_assert_leq(st.retry_sent, FERRY_HS_SRC_BURST +
				(FERRY_HS_SRC_RATE * (ms + 200) + 999) / 1000,
		      "%llu RETRYs in %llu ms",
		      (unsigned long long)st.retry_sent,
		      (unsigned long long)ms);
	cr_assert_gt(st.retry_ratelimited, FLOOD_CONNECTS / 2);
	cr_assert_leq(st.retry_sent + st.retry_ratelimited, FLOOD_CONNECTS);
	cr_assert_leq(replies, st.retry_sent);
	cr_assert_leq(got, 3 * sent);
	/* The session opened before the flood still works. */
	for (uint32_t i = 0; i < 10; i++)
		echo_ok(cli, srv, s, 1000 + i);
	cr_assert_eq(calls_ok, calls, "%u of %u calls failed",
		     calls - calls_ok, calls);
	ferry_session_close(s);
	for (int p = 0; p < FLOOD_PEERS; p++)
		raw_close(&peers[p]);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* --- a flood beyond the budget: refused unread ---------------------------- */

#define BUDGET_RATE 50
#define BUDGET_FLOOD 4000
#define BUDGET_BAD_CRC 200

static void budget_cfg(struct ferry_ep_config *c)
{
	flood_cfg(c);
	c->connect_rate = BUDGET_RATE;
	c->connect_rate_per_source = 0;
}

/* The bytes of a CONNECT without a cookie under CID @cid, at @buf (room
 * for FERRY_HS_CONNECT_MAX); its length. */
static size_t connect_bytes(uint8_t *buf, uint64_t cid)
{
	struct ferry_hs_client hs;
	int n;

	hs_init(&hs, cid, 1u << 20);
	n = ferry__hs_client_build(&hs, buf, FERRY_HS_CONNECT_MAX);
	ferry__hs_client_wipe(&hs);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

/*
 * BUDGET_FLOOD CONNECTs without a cookie, far beyond connect_rate
 * (BUDGET_RATE a second, the RETRY budget too), from FLOOD_PEERS raw
 * peers.  The first few get a RETRY (the bucket's burst, then its rate);
 * every other one is dropped before it is read: retry_ratelimited moves,
 * and nothing else (no CRC, frame or cookie counter, no session, no
 * buffer, no reply).  That it is not read: right after the flood,
 * BUDGET_BAD_CRC CONNECTs with a broken CRC mostly count
 * retry_ratelimited, not drop_bad_crc.  CONNECTs with a cookie have a
 * budget of their own: a client that had its RETRY before the flood gets
 * its ACCEPT at once after it; and once the budget has refilled, a new
 * client connects and calls.
 */
static void t_flood_beyond_budget(void)
{
	struct ferry_endpoint *srv = ep_new(budget_cfg), *cli = ep_new(NULL);
	static uint8_t bad[BUDGET_BAD_CRC][FERRY_HS_CONNECT_MAX];
	size_t bad_len[BUDGET_BAD_CRC], sent = 0, got = 0, len = 0;
	struct ferry_hs_client_result res;
	struct raw peers[FLOOD_PEERS], early;
	struct ferry_hs_client hs;
	struct ferry_ep_stats st0, st;
	uint8_t buf[FERRY_HS_CONNECT_MAX];
	unsigned replies = 0;
	struct ferry_session *s;
	uint64_t t0, ms;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	for (uint32_t i = 0; i < BUDGET_BAD_CRC; i++) {
		bad_len[i] = connect_bytes(bad[i], cid_of(BUDGET_FLOOD + i));
		bad[i][bad_len[i] - 1] ^= 0x5a; /* the CRC32C trailer */
	}
	/* A client that has its cookie before the flood. */
	raw_open(&early, srv, 0);
	hs_init(&hs, cid_of(2 * BUDGET_FLOOD), 1u << 20);
	hs_send(&early, &hs);
	cr_assert_eq(hs_wait(&early, srv, &hs, &res, 3000, NULL),
		     FERRY_HS_RETRY);
	for (int p = 0; p < FLOOD_PEERS; p++)
		raw_open(&peers[p], srv, 0);
	st0 = stats(srv);
	t0 = now_ms();
	for (uint32_t i = 0; i < BUDGET_FLOOD; i++) {
		len = connect_bytes(buf, cid_of(i));
		raw_send_bytes(&peers[i % FLOOD_PEERS], buf, len);
		sent += len;
		if (i % 16 == 15) {
			ferry_endpoint_poll(srv, 0);
			for (int p = 0; p < FLOOD_PEERS; p++)
				raw_drain(&peers[p], &replies, &got, 3 * len);
		}
	}
	pump_for(srv, NULL, 50);
	ms = now_ms() - t0;
	for (int p = 0; p < FLOOD_PEERS; p++)
		raw_drain(&peers[p], &replies, &got, 3 * len);
	st = stats(srv);
	cr_log_info("budget: %u CONNECTs in %llu ms: %llu RETRYs, %llu "
		    "dropped unread", BUDGET_FLOOD, (unsigned long long)ms,
		    (unsigned long long)(st.retry_sent - st0.retry_sent),
		    (unsigned long long)(st.retry_ratelimited -
					 st0.retry_ratelimited));
	cr_assert_eq(st.retry_sent - st0.retry_sent +
			     st.retry_ratelimited - st0.retry_ratelimited,
		     BUDGET_FLOOD);
	cr_assert_gt(st.retry_sent, st0.retry_sent);
	cr_assert_leq(st.retry_sent - st0.retry_sent,
		      FERRY_HS_SRC_BURST + (BUDGET_RATE * ms + 999) / 1000,
		      "%llu RETRYs in %llu ms",
		      (unsigned long long)(st.retry_sent - st0.retry_sent),
		      (unsigned long long)ms);
	cr_assert_leq(replies, st.retry_sent - st0.retry_sent);
	cr_assert_leq(got, 3 * sent);
	cr_assert_eq(st.drop_bad_cookie, st0.drop_bad_cookie);
	cr_assert_eq(st.drop_bad_crc, st0.drop_bad_crc);
	cr_assert_eq(st.drop_malformed, st0.drop_malformed);
	cr_assert_eq(st.connects_rate_limited, st0.connects_rate_limited);
	cr_assert_eq(st.unvalidated_suppressed, st0.unvalidated_suppressed);
	cr_assert_eq(st.sessions_opened, st0.sessions_opened);
	cr_assert_eq(st.msgbuf_allocs, st0.msgbuf_allocs);
	/* The client with its cookie: its own budget, not the flood's. */
	hs_send(&early, &hs);
	cr_assert_eq(hs_wait(&early, srv, &hs, &res, 3000, NULL),
		     FERRY_HS_ACCEPTED, "a cookie held back by the flood");
	sodium_memzero(&res, sizeof(res));
	ferry__hs_client_wipe(&hs);
	/* Not read: a broken CRC right after the flood is not seen. */
	st0 = stats(srv);
	for (uint32_t i = 0; i < BUDGET_BAD_CRC; i++)
		raw_send_bytes(&peers[i % FLOOD_PEERS], bad[i], bad_len[i]);
	pump_for(srv, NULL, 20);
	st = stats(srv);
	cr_assert_eq(st.drop_bad_crc - st0.drop_bad_crc +
			     st.retry_ratelimited - st0.retry_ratelimited,
		     BUDGET_BAD_CRC);
	cr_assert_lt(st.drop_bad_crc - st0.drop_bad_crc, BUDGET_BAD_CRC / 2,
		     "%llu of %u broken CRCs were checked",
		     (unsigned long long)(st.drop_bad_crc - st0.drop_bad_crc),
		     BUDGET_BAD_CRC);
	cr_assert_eq(st.retry_sent, st0.retry_sent);
	/* The budget refills: a new client connects. */
	pump_for(srv, NULL, 300);
	s = open_session(cli, srv);
	echo_ok(cli, srv, s, 1);
	ferry_session_close(s);
	for (int p = 0; p < FLOOD_PEERS; p++)
		raw_close(&peers[p]);
	raw_close(&early);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* --- CONNECTs with cookies meet connect_rate ------------------------------ */

#define COOKIED 40

static uint32_t g_rate, g_rate_per_source;

static void rate_cfg(struct ferry_ep_config *c)
{
	flood_cfg(c);
	c->connect_rate = g_rate;
	c->connect_rate_per_source = g_rate_per_source;
}

/*
 * A cookie proves an address, not a right to a session: COOKIED clients
 * each get their RETRY (paced within the RETRY bucket), then send their
 * CONNECTs with cookies all at once.  At most what connect_rate (or
 * connect_rate_per_source) lets in over that time makes a session; the
 * rest are dropped unanswered (connects_rate_limited).
 */
static void cookied_flood(uint32_t rate)
{
	static struct ferry_hs_client hs[COOKIED];
	struct ferry_endpoint *srv = ep_new(rate_cfg);
	struct ferry_hs_client_result res;
	struct ferry_ep_stats st;
	struct raw r;
	uint64_t t0, ms;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	raw_open(&r, srv, 0);
	for (uint32_t i = 0; i < COOKIED; i++) {
		enum ferry_hs_verdict v = FERRY_HS_DROP;

		hs_init(&hs[i], cid_of(i), 1u << 20);
		/* A RETRY the bucket held back: ask again, as a client
		 * would. */
		for (int k = 0; k < 50 && v != FERRY_HS_RETRY; k++) {
			hs_send(&r, &hs[i]);
			v = hs_wait(&r, srv, &hs[i], &res, 30, NULL);
		}
		cr_assert_eq(v, FERRY_HS_RETRY, "no RETRY for client %u", i);
	}
	cr_assert_eq(stats(srv).sessions_opened, 0);
	t0 = now_ms();
	for (uint32_t i = 0; i < COOKIED; i++) {
		hs_send(&r, &hs[i]);
		ferry_endpoint_poll(srv, 0);
	}
	PUMP(NULL, srv, 100, false);
	ms = now_ms() - t0;
	st = stats(srv);
	cr_log_info("cookied: %u CONNECTs in %llu ms: %llu sessions, %llu "
		    "rate limited", COOKIED, (unsigned long long)ms,
		    (unsigned long long)st.sessions_opened,
		    (unsigned long long)st.connects_rate_limited);
	cr_assert_gt(st.sessions_opened, 0);
	cr_assert_leq(st.sessions_opened, rate + (rate * ms + 999) / 1000);
	cr_assert_eq(st.sessions_opened + st.connects_rate_limited, COOKIED);
	cr_assert_eq(st.drop_bad_cookie, 0);
	for (uint32_t i = 0; i < COOKIED; i++)
		ferry__hs_client_wipe(&hs[i]);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

static void t_cookied_per_source(void)
{
	g_rate = 0;
	g_rate_per_source = 5;
	cookied_flood(g_rate_per_source);
}

static void t_cookied_global(void)
{
	g_rate = 5;
	g_rate_per_source = 0;
	cookied_flood(g_rate);
}

/* --- retry never: half-open sessions -------------------------------------- */

static void never_cfg(struct ferry_ep_config *c)
{
	c->max_sessions = 16;
	c->retry_never = true;
	c->connect_timeout_ms = 300;
	c->keepalive_ms = 50;
}

/*
 * retry_never admits a CONNECT at once: from an address that then says
 * nothing (a spoofed one), each makes a half-open session that gets its
 * ACCEPT (again for a retransmitted CONNECT, and nothing new) and no
 * data: no PING, no keepalive.  Each expires after connect_timeout_ms,
 * and what went to the address stays within 3x what came from it.
 */
static void t_half_open_expires(void)
{
	struct ferry_endpoint *srv = ep_new(never_cfg);
	struct ferry_ep_stats st;
	uint8_t buf[RAW_FRAME_MAX];
	size_t sent = 0, got = 0, n;
	unsigned accepts = 0, other = 0;
	bool again = false;
	struct raw r;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	raw_open(&r, srv, 0);
	for (uint32_t i = 0; i < 3; i++)
		sent += connect_cid(&r, cid_of(i));
	for (uint64_t end = now_ms() + WAIT_MS;
	     now_ms() < end && stats(srv).half_open_expired < 3;) {
		ferry_endpoint_poll(srv, 0);
		/* The first CONNECT again, once the ACCEPTs are out. */
		if (accepts == 3 && !again) {
			sent += connect_cid(&r, cid_of(0));
			again = true;
		}
		while ((n = raw_take(&r, buf, sizeof(buf), NULL)) > 0) {
			got += n;
			/* Long headers: ACCEPTs (again, until
			 * confirmed); short ones would be data. */
			if (ferry__w2_is_long(buf[0]))
				accepts++;
			else
				other++;
		}
	}
	pump_for(srv, NULL, 200);
	while ((n = raw_take(&r, buf, sizeof(buf), NULL)) > 0) {
		got += n;
		other++;
	}
	st = stats(srv);
	cr_assert_eq(st.half_open_expired, 3, "half-open sessions never "
		     "expired");
	cr_assert_eq(st.sessions_opened, 3);
	cr_assert_eq(st.retry_sent, 0);
	cr_assert_geq(accepts, 4, "an ACCEPT each, and one again: %u, %u other", accepts, other);
	cr_assert_eq(other, 0, "%u datagrams besides ACCEPTs", other);
	cr_assert_leq(got, 3 * sent, "%zu bytes sent for %zu received", got,
		      sent);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/*
 * A copy of the CONNECT (a retransmission that crossed the ACCEPT) that
 * reaches the server in one burst with the client's first datagram: the
 * copy asks for the ACCEPT again, the datagram confirms the session, and
 * then nothing is owed.  The session must leave the transmit list; one
 * left there was walked at every flush for the rest of its life (at
 * 10,000 sessions, tens of such sessions made a third of the calls'
 * cost).
 */
static void t_connect_copy_with_first_datagram(void)
{
	struct ferry_endpoint *srv = ep_new(NULL);
	struct ferry_w2_frame ping = { .type = FERRY_W2_PING };
	struct ferry_hs_client_result res;
	struct ferry_hs_client hs;
	uint8_t copy[FERRY_HS_CONNECT_MAX];
	struct ferry_session *s = &srv->sessions[0];
	struct raw r;
	int n;

	raw_open(&r, srv, 0);
	hs_init(&hs, cid_of(0), 1u << 20);
	hs_send(&r, &hs);
	cr_assert_eq(hs_wait(&r, srv, &hs, &res, 3000, NULL), FERRY_HS_RETRY);
	n = ferry__hs_client_build(&hs, copy, sizeof(copy));
	cr_assert_gt(n, 0);
	raw_send_bytes(&r, copy, (size_t)n);
	cr_assert_eq(hs_wait(&r, srv, &hs, &res, 3000, NULL),
		     FERRY_HS_ACCEPTED);
	raw_take_accept(&r, &hs, &res);
	cr_assert_not(s->srv.confirmed);
	/* Both wait in the server's receive queue: one burst. */
	raw_send_bytes(&r, copy, (size_t)n);
	raw_send_frames(&r, &ping, 1);
	pump_for(srv, NULL, 50);
	cr_assert(s->srv.confirmed);
	cr_assert_eq(stats(srv).sessions_opened, 1);
	cr_assert_not(s->active, "a confirmed session stays on the transmit "
		      "list (pending %#x)", (unsigned)s->pending);
	cr_assert_null(srv->active_head);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* --- what goes to an unproven address ------------------------------------ */

static int refuse_all(void *ctx, const void *tok, size_t len)
{
	(void)ctx;
	(void)tok;
	(void)len;
	return -EACCES;
}

/* A refused CONNECT (after its cookie) gets one REFUSE, within 3x; one
 * without a cookie gets its RETRY within 3x, never more. */
static void t_refusal_one_each(void)
{
	struct ferry_endpoint *srv = ep_new(NULL);
	struct ferry_hs_client_result res;
	struct ferry_hs_client hs;
	struct raw r;
	size_t len, n;

	cr_assert_eq(ferry_endpoint_set_admission(srv, refuse_all, NULL, NULL),
		     0);
	raw_open(&r, srv, 0);
	for (uint32_t i = 0; i < 5; i++) {
		hs_init(&hs, cid_of(i), 1u << 20);
		len = hs_send(&r, &hs);
		cr_assert_eq(hs_wait(&r, srv, &hs, &res, 3000, &n),
			     FERRY_HS_RETRY);
		cr_assert_leq(n, 3 * len);
		len = hs_send(&r, &hs);
		cr_assert_eq(hs_wait(&r, srv, &hs, &res, 3000, &n),
			     FERRY_HS_FAILED);
		cr_assert_eq(res.err, -FERRY_EREJECTED);
		cr_assert_leq(n, 3 * len);
		ferry__hs_client_wipe(&hs);
	}
	cr_assert_not(raw_hears(&r, srv, 200), "more than a REFUSE each");
	cr_assert_eq(stats(srv).connects_refused, 5);
	cr_assert_eq(stats(srv).retry_sent, 5);
	cr_assert_eq(stats(srv).sessions_opened, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* --- credit-starved PINGs ------------------------------------------------ */

/* Keepalives out of the way: the PINGs counted are the credit's. */
static void slow_keepalive(struct ferry_ep_config *c)
{
	c->keepalive_ms = 5000;
	c->peer_timeout_ms = 20000;
}

/* A peer that grants 4096 bytes of credit (the least PARAMS allows) and
 * then answers nothing: the second 3000-byte response does not fit, and
 * the server's PINGs for credit back off to one a keepalive (v1 sent one
 * every RTO, 20 ms).  Credit, when it comes, frees the response. */
static void t_credit_starved_pings_back_off(void)
{
	struct ferry_endpoint *srv = ep_new(slow_keepalive);
	static uint8_t body[3000], buf[RAW_FRAME_MAX];
	struct ferry_frame f;
	struct ferry_hdr h;
	struct raw r;
	unsigned pings;
	uint32_t req2;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	raw_open(&r, srv, 0);
	hs_open(&r, srv, cid_of(0), 4096);
	raw_request(&r, 0, M_ECHO, 0, body, sizeof(body));
	req2 = raw_request(&r, 0, M_ECHO, 0, body, sizeof(body));
	pings = raw_count(&r, srv, FERRY_FT_PING, 3000);
	cr_log_info("credit-starved: %u PINGs in 3 s (%llu stalls, %llu resps, %llu keepalives)", pings,
		    (unsigned long long)stats(srv).credit_stalls,
		    (unsigned long long)stats(srv).resps_sent,
		    (unsigned long long)stats(srv).keepalives);
	cr_assert_geq(pings, 2, "no PING asked for credit");
	cr_assert_leq(pings, 12, "%u PINGs in 3 s", pings);
	cr_assert_geq(stats(srv).credit_pings, 2);
	/* Credit comes: the second response goes. */
	raw_data_hdr(&r, &h, FERRY_FT_CREDIT);
	h.credit = 1u << 20;
	raw_send(&r, &h, NULL, 0);
	cr_assert(raw_recv(&r, srv, FERRY_FT_RESPONSE, req2, &f, buf,
			   sizeof(buf)),
		  "the credit did not free the response");
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

#define FLOOD_CASES(CASE, s)                                                   \
	CASE(s, not_listening_drops_connect)                                   \
	CASE(s, serving_endpoint_listens)                                      \
	CASE(s, flood_stateless_retry)                                         \
	CASE(s, flood_beyond_budget)                                           \
	CASE(s, cookied_per_source)                                            \
	CASE(s, cookied_global)                                                \
	CASE(s, half_open_expires)                                             \
	CASE(s, connect_copy_with_first_datagram)                              \
	CASE(s, refusal_one_each)                                              \
	CASE(s, credit_starved_pings_back_off)

HARNESS_BATTERY(flood, FLOOD_CASES, .timeout = 120)
