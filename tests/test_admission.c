/* SPDX-License-Identifier: MIT */
/*
 * test_admission.c - Criterion tests for session admission with channel
 * tokens v2 and for token tables in calls (docs/wire.md, sections 4.1
 * to 4.5; docs/wire.md, section 8), on real endpoints on 127.0.0.1, every
 * case on every dataplane (tests/harness.h).
 *
 * Each test drives a server and a client endpoint from one thread: the
 * harness polls both until what the test waits for happens.  A few tests
 * speak the wire by hand (the harness's raw peer), to see the REFUSE
 * datagram itself or to send what no ferry client sends (a malformed token
 * table).
 *
 * The keyring reads an injectable clock (g_now), so an expired token is
 * simply one issued an hour "ago".
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/token.h>

#include "harness.h"

#define T0 1700000000ull
#define AUD "adm-test-server"
#define CHANNEL "svc/echo"
#define M_ECHO 1  /* echoes the payload */
#define M_CAPS 2  /* redeems every token; answers a struct caps_verdict */

static uint64_t g_now = T0;

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return g_now;
}

/* --- fixtures ------------------------------------------------------------ */

static struct ferry_keyring *g_kr;

/* An endpoint with @max_sessions sessions and a small first pool. */
static struct ferry_endpoint *ep_sessions(uint32_t max_sessions)
{
	struct ferry_ep_config cfg;

	ep_config(&cfg);
	cfg.max_sessions = max_sessions;
	cfg.pool[0] = (struct ferry_pool_class){ 512, 256 };
	return ep_make(&cfg);
}

static void kr_setup(void)
{
	g_now = T0;
	cr_assert_eq(ferry_keyring_create(3600, 30, &g_kr), 0);
	ferry_keyring_set_clock(g_kr, test_clock, NULL);
}

static void kr_teardown(void)
{
	ferry_keyring_free(g_kr);
	g_kr = NULL;
}

/* A channel token v2 and the holder key its issuer gave with it
 * (docs/wire.md, section 4.5): a client presents the token and proves
 * it holds hk. */
struct tok {
	uint8_t b[FERRY_TOKEN_MAX_LEN];
	size_t len;
	uint8_t hk[FERRY_TOKEN_HK_LEN];
};

static void seal_with(const struct ferry_keyring *kr, int type,
		      const char *aud, const char *target, const char *entry,
		      uint32_t ttl, struct tok *t)
{
	struct ferry_token_req req = {
		.type = type,
		.audience = aud,
		.target = target,
		.entrypoint = entry,
		.ttl = ttl,
	};

	cr_assert_eq(ferry_token_seal2(kr, &req, t->b, sizeof(t->b), &t->len,
				       t->hk),
		     0);
}

static void seal_ok(struct tok *t)
{
	seal_with(g_kr, FERRY_TOKEN_SUBREQUEST, AUD, CHANNEL, "", 600, t);
}

/* A valid token of version 1: no holder key inside (t->hk is random, so
 * that a client can still present it).  Wire v2 admission refuses it; in
 * a call's token table it is as good as ever, and 32 bytes shorter. */
static void seal_v1(struct tok *t)
{
	struct ferry_token_req req = {
		.type = FERRY_TOKEN_SUBREQUEST,
		.audience = AUD,
		.target = CHANNEL,
		.entrypoint = "",
		.ttl = 600,
	};

	cr_assert_eq(ferry_token_seal(g_kr, &req, t->b, sizeof(t->b), &t->len),
		     0);
	randombytes_buf(t->hk, sizeof(t->hk));
}

/* --- handlers ------------------------------------------------------------ */

/* What M_CAPS answers: how many tokens came, how many redeemed, and a
 * checksum of the payload so the test sees it arrived intact beside the
 * table. */
struct caps_verdict {
	uint32_t ncaps;
	uint32_t redeemed;
	uint32_t failed;
	int32_t first_err;
	uint32_t pay_len;
	uint32_t pay_sum;
};

static uint32_t sum_bytes(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = s * 31u + p[i];
	return s;
}

static void caps_handler(struct ferry_call *c, void *ctx)
{
	struct ferry_endpoint *ep = ctx;
	struct caps_verdict v = { 0 };
	static struct ferry_token_info info;
	struct ferry_msgbuf *mb;
	const uint8_t *p;
	size_t len;

	p = ferry_call_req(c, &len);
	v.ncaps = ferry_call_ncaps(c);
	for (unsigned i = 0; i < v.ncaps; i++) {
		int ret = ferry_call_redeem(c, i, g_kr, FERRY_TOKEN_SUBREQUEST,
					    AUD, &info);

		if (ret == 0 && strcmp(info.target, CHANNEL) == 0) {
			v.redeemed++;
		} else {
			v.failed++;
			if (!v.first_err)
				v.first_err = ret;
		}
	}
	/* One past the end is no token. */
	cr_assert_eq(ferry_call_cap(c, v.ncaps, NULL, NULL), -ENOENT);
	v.pay_len = (uint32_t)len;
	v.pay_sum = sum_bytes(p, len);
	cr_assert_eq(ferry_msgbuf_alloc(ep, sizeof(v), &mb), 0);
	memcpy(ferry_msgbuf_data(mb), &v, sizeof(v));
	ferry_call_respond(c, mb);
}

/* --- driving endpoints --------------------------------------------------- */

/* Connect @cli to @srv presenting @t (NULL: no token); returns the
 * connect's result, and the session in *@out (closed by the caller). */
static int connect_with(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
			const struct tok *t, struct ferry_session **out)
{
	struct ferry_connect_opts o = { 0 };

	if (t) {
		o.token = t->b;
		o.token_len = t->len;
		o.holder_key = t->hk;
	}
	return connect_to(cli, srv, &o, out);
}

/* One echo call of 32 bytes on @s; asserts it comes back intact. */
static void echo_ok(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		    struct ferry_session *s)
{
	struct reply r = { 0 };
	struct ferry_msgbuf *mb = msg(cli, 32, 5);
	uint8_t want[32];

	memcpy(want, ferry_msgbuf_data(mb), 32);
	cr_assert_eq(ferry_call(s, M_ECHO, mb, on_reply, &r), 0);
	cr_assert(pump(cli, srv, &r.done, 3000), "echo call never ended");
	cr_assert_eq(r.res, 0, "echo failed: %s", ferry_strerror(r.res));
	cr_assert_eq(r.len, 32);
	cr_assert_arr_eq(r.data, want, 32);
}

/* A server that requires tokens for CHANNEL, audience AUD. */
static struct ferry_endpoint *guarded_server(uint32_t max_sessions)
{
	struct ferry_endpoint *srv = ep_sessions(max_sessions);
	const char *const ch[] = { "svc/other-a", CHANNEL };

	cr_assert_eq(ferry_endpoint_require_token(srv, g_kr, AUD, ch, 2), 0);
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_CAPS, caps_handler, srv),
		     0);
	return srv;
}

/* ===================================================================== */
/* Admission                                                              */
/* ===================================================================== */

static void t_valid_token_connects_and_calls(void)
{
	struct ferry_endpoint *srv = guarded_server(4), *cli = ep_sessions(4);
	struct ferry_ep_stats st;
	struct ferry_session *s;
	struct tok t;

	seal_ok(&t);
	cr_assert_eq(connect_with(cli, srv, &t, &s), 0);
	cr_assert(ferry_session_is_open(s));
	for (int i = 0; i < 5; i++)
		echo_ok(cli, srv, s);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.sessions_opened, 1);
	cr_assert_eq(st.connects_refused, 0);
	cr_assert_eq(st.admission_refused, 0);
	cr_assert_eq(st.reqs_dispatched, 5);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* An actor-class token is a channel token too. */
static void t_actor_class_token_connects(void)
{
	struct ferry_endpoint *srv = guarded_server(4), *cli = ep_sessions(4);
	struct ferry_session *s;
	struct tok t;

	seal_with(g_kr, FERRY_TOKEN_ACTOR_CLASS, AUD, CHANNEL, "", 600, &t);
	cr_assert_eq(connect_with(cli, srv, &t, &s), 0);
	echo_ok(cli, srv, s);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Every way to be refused, one client each: the connect fails with the
 * one generic code (the reason is not the client's to know), the server
 * counts it under its reason and keeps nothing, and afterwards valid
 * clients still fill every session slot and call. */
static void t_refusals_match_and_leave_no_state(void)
{
	/* Two session slots only: a refused connect that kept a slot would
	 * make the last valid connect below fail. */
	struct ferry_endpoint *srv = guarded_server(2), *cli = ep_sessions(16);
	struct ferry_keyring *other;
	struct ferry_ep_stats st;
	struct ferry_session *s, *ok[2];
	struct {
		const char *what;
		struct tok t;
		bool none;
		const char *ctr; /* the reason's counter */
	} *cases = calloc(9, sizeof(*cases));
	unsigned n = 0;

	cr_assert(cases);
	cases[n].what = "no token";
	cases[n].none = true;
	cases[n++].ctr = "admission_refused_missing";

	cases[n].what = "forged (a ciphertext byte flipped)";
	seal_ok(&cases[n].t);
	cases[n].t.b[cases[n].t.len - 20] ^= 0x01;
	cases[n++].ctr = "admission_refused_auth";

	/* Another keyring's key 1: the same key id, another key. */
	cases[n].what = "forged (sealed under another key)";
	cr_assert_eq(ferry_keyring_create(3600, 30, &other), 0);
	seal_with(other, FERRY_TOKEN_SUBREQUEST, AUD, CHANNEL, "", 600,
		  &cases[n].t);
	ferry_keyring_free(other);
	cases[n++].ctr = "admission_refused_auth";

	cases[n].what = "expired";
	g_now = T0 - 3600; /* issued an hour ago, for a minute */
	seal_with(g_kr, FERRY_TOKEN_SUBREQUEST, AUD, CHANNEL, "", 60,
		  &cases[n].t);
	g_now = T0;
	cases[n++].ctr = "admission_refused_expired";

	cases[n].what = "wrong audience";
	seal_with(g_kr, FERRY_TOKEN_SUBREQUEST, "another-server", CHANNEL, "",
		  600, &cases[n].t);
	cases[n++].ctr = "admission_refused_audience";

	cases[n].what = "another channel";
	seal_with(g_kr, FERRY_TOKEN_SUBREQUEST, AUD, "svc/not-served", "",
		  600, &cases[n].t);
	cases[n++].ctr = "admission_refused_channel";

	cases[n].what = "garbage";
	memset(cases[n].t.b, 0x01, 100);
	cases[n].t.len = 100;
	cases[n++].ctr = "admission_refused_auth";

	/* Wire v2: a token of version 1 holds no holder key to prove. */
	cases[n].what = "version 1 token";
	seal_v1(&cases[n].t);
	cases[n++].ctr = "admission_refused_auth";

	/* A copied token: valid, but its copier does not know the holder
	 * key sealed in it, so its POP fails (the last case: the only one
	 * that counts drop_bad_pop). */
	cases[n].what = "copied (holder key unknown)";
	seal_ok(&cases[n].t);
	randombytes_buf(cases[n].t.hk, sizeof(cases[n].t.hk));
	cases[n++].ctr = "drop_bad_pop";

	for (unsigned i = 0; i < n; i++) {
		uint64_t before = 0, after = 0;
		int res;

		cr_assert_eq(ferry_endpoint_stat(srv, cases[i].ctr, &before),
			     0);
		res = connect_with(cli, srv, cases[i].none ? NULL
							   : &cases[i].t,
				   &s);
		cr_assert_eq(res, -FERRY_EREJECTED, "%s: got %d (%s)",
			     cases[i].what, res, ferry_strerror(res));
		cr_assert_eq(ferry_endpoint_stat(srv, cases[i].ctr, &after), 0);
		cr_assert_eq(after, before + 1, "%s: %s", cases[i].what,
			     cases[i].ctr);
		cr_assert_not(ferry_session_is_open(s), "%s", cases[i].what);
		/* The session has ended: no call can start on it. */
		{
			struct ferry_msgbuf *mb = msg(cli, 8, 0);
			struct reply r = { 0 };

			cr_assert_eq(ferry_call(s, M_ECHO, mb, on_reply, &r),
				     -ENOTCONN);
			ferry_msgbuf_free(mb);
		}
		ferry_session_close(s);
		ferry__endpoint_stats(srv, &st);
		cr_assert_eq(st.connects_refused, i + 1, "%s: %lu",
			     cases[i].what, (unsigned long)st.connects_refused);
		cr_assert_eq(st.admission_refused, i + 1, "%s", cases[i].what);
		cr_assert_eq(st.sessions_opened, 0, "%s", cases[i].what);
	}
	/* The refusals were answered, not dropped; the one drop counter is
	 * the copied token's failed proof. */
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.drop_bad_pop, 1);
	cr_assert_eq(st.admission_refused_auth, 5);
	cr_assert_eq(ferry__ep_stats_drops(&st), st.drop_bad_pop);
	cr_assert_eq(st.reqs_dispatched, 0);

	/* Nothing was kept: both slots are still free. */
	for (int i = 0; i < 2; i++) {
		struct tok t;

		seal_ok(&t);
		cr_assert_eq(connect_with(cli, srv, &t, &ok[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		echo_ok(cli, srv, ok[i]);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.sessions_opened, 2);
	cr_assert_eq(st.admission_refused, n);
	for (int i = 0; i < 2; i++)
		ferry_session_close(ok[i]);
	free(cases);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Calls made before a refused connect completes end with its error. */
static void t_queued_calls_fail_with_the_refusal(void)
{
	struct ferry_endpoint *srv = guarded_server(2), *cli = ep_sessions(2);
	struct ferry_connect_opts o = { 0 };
	struct conn c = { 0 };
	struct reply r = { 0 };
	struct ferry_session *s;

	cr_assert_eq(ferry_session_connect(cli, "127.0.0.1",
					   ferry_endpoint_port(srv), &o,
					   on_connect, &c, &s),
		     0);
	cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 8, 1), on_reply, &r), 0);
	cr_assert(pump(cli, srv, &c.done, 3000));
	cr_assert_eq(c.res, -FERRY_EREJECTED);
	cr_assert(r.done);
	cr_assert_eq(r.res, -FERRY_EREJECTED);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* The last CONNECT raw_answer() sent (with its cookie), for a test that
 * sends it again as a retransmitting client would. */
static uint8_t g_connect[FERRY_HS_CONNECT_MAX];
static size_t g_connect_len;

static void send_connect(struct raw *r)
{
	int n = ferry__hs_client_build(&r->hs, g_connect, sizeof(g_connect));

	cr_assert_gt(n, 0);
	g_connect_len = (size_t)n;
	raw_send_bytes(r, g_connect, g_connect_len);
}

/*
 * The server's answer to the handshake raw_connect_send() began on @r,
 * past the RETRY: the cookie is taken and the CONNECT sent again with it.
 * Until a RETRY comes, the CONNECT is sent again every 50 ms (a RETRY is
 * rate limited per source address, and every peer here is 127.0.0.1).
 * The first other datagram is copied to @buf; returns its length, or 0
 * after 3 s.
 */
static size_t raw_answer(struct raw *r, struct ferry_endpoint *srv,
			 uint8_t *buf, size_t cap)
{
	uint64_t end = now_ms() + 3000, again = now_ms() + 50;

	while (now_ms() < end) {
		struct ferry_hs_client_result res;
		struct ferry_w2_dgram d;
		size_t n;

		ferry_endpoint_poll(srv, 0);
		n = raw_take(r, buf, cap, NULL);
		if (!n) {
			if (!r->hs.have_cookie && now_ms() >= again) {
				send_connect(r);
				again = now_ms() + 50;
			}
			continue;
		}
		if (ferry__w2_parse_hdr(buf, n, &d) == FERRY_W2_OK &&
		    d.is_long && d.type == FERRY_W2_RETRY) {
			memset(&res, 0, sizeof(res));
			cr_assert_eq(ferry__hs_client_input(&r->hs, buf, n,
							    &res),
				     FERRY_HS_RETRY);
			send_connect(r);
			continue;
		}
		return n;
	}
	return 0;
}

/*
 * @buf/@n must be a REFUSE for @r's handshake: a long header naming our
 * CID from none (the server made no session), an intact CRC, and one
 * ERROR frame.  Returns its code, its text's length in *@text_len; the
 * handshake fails with the code, negated (and is wiped).
 */
static uint32_t refuse_code(struct raw *r, const uint8_t *buf, size_t n,
			    uint16_t *text_len)
{
	struct ferry_hs_client_result res;
	struct ferry_w2_frame f, more;
	struct ferry_w2_dgram d;
	struct ferry_w2_iter it;

	cr_assert_eq(ferry__w2_parse_hdr(buf, n, &d), FERRY_W2_OK);
	cr_assert(d.is_long);
	cr_assert_eq(d.type, FERRY_W2_REFUSE, "long header type %u", d.type);
	cr_assert_eq(d.dcid, r->cid);
	cr_assert_eq(d.scid, 0);
	cr_assert(ferry__w2_crc_ok(&d));
	ferry__w2_iter_init(&it, &d);
	cr_assert_eq(ferry__w2_iter_next(&it, &f), 1);
	cr_assert_eq(f.type, FERRY_W2_ERROR);
	cr_assert_eq(ferry__w2_iter_next(&it, &more), 0, "one frame only");
	*text_len = f.u.err.msg_len;
	memset(&res, 0, sizeof(res));
	cr_assert_eq(ferry__hs_client_input(&r->hs, buf, n, &res),
		     FERRY_HS_FAILED);
	cr_assert_eq(res.err, -(int)f.u.err.code);
	ferry__hs_client_wipe(&r->hs);
	return f.u.err.code;
}

/* How many datagrams the server sends @r within @ms. */
static unsigned raw_datagrams(struct raw *r, struct ferry_endpoint *srv,
			      unsigned ms)
{
	uint64_t end = now_ms() + ms;
	uint8_t buf[RAW_FRAME_MAX];
	unsigned k = 0;

	while (now_ms() < end) {
		ferry_endpoint_poll(srv, 0);
		k += raw_take(r, buf, sizeof(buf), NULL) != 0;
	}
	return k;
}

/* The refusal on the wire (docs/wire.md, sections 4.1 and 4.5): after
 * the RETRY, one REFUSE per CONNECT, naming the client's CID, from no
 * session, with the generic code and no text whatever the reason (v1 sent
 * an ERROR frame with the text "connect refused"). */
static void t_refusal_is_one_refuse(void)
{
	struct ferry_endpoint *srv = guarded_server(2);
	struct ferry_ep_stats st;
	uint8_t buf[2048];
	uint16_t mlen;
	size_t n;
	struct raw r;
	struct tok t;

	raw_open(&r, srv, 0x00070001);
	raw_connect_send(&r, 0, NULL, 0);
	n = raw_answer(&r, srv, buf, sizeof(buf));
	cr_assert(n, "no answer");
	cr_assert_eq(refuse_code(&r, buf, n, &mlen), FERRY_EREJECTED);
	cr_assert_eq(mlen, 0);
	cr_assert_eq(raw_datagrams(&r, srv, 100), 0, "one REFUSE per CONNECT");

	/* A bad token, its CONNECT sent twice (a client retransmitting):
	 * each copy is judged and answered once, and nothing is made. */
	seal_with(g_kr, FERRY_TOKEN_SUBREQUEST, "someone-else", CHANNEL, "",
		  600, &t);
	r.hk = t.hk;
	raw_connect_send(&r, 0, t.b, t.len);
	n = raw_answer(&r, srv, buf, sizeof(buf));
	cr_assert(n, "no answer");
	cr_assert_eq(refuse_code(&r, buf, n, &mlen), FERRY_EREJECTED,
		     "the audience is not told");
	cr_assert_eq(mlen, 0);
	raw_send_bytes(&r, g_connect, g_connect_len);
	cr_assert_eq(raw_datagrams(&r, srv, 300), 1);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.retry_sent, 2, "one RETRY per connect");
	cr_assert_eq(st.connects_refused, 3);
	cr_assert_eq(st.admission_refused, 3);
	cr_assert_eq(st.admission_refused_missing, 1);
	cr_assert_eq(st.admission_refused_audience, 2);
	cr_assert_eq(st.sessions_opened, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* Without admission, an endpoint takes a connect without a token, and
 * understands one with TOKEN and POP (no drop counter moves).  Wire v2
 * changed the rest: a client that presents a token mixes its holder key
 * into the session's keys (docs/wire.md, key schedule), so it can take
 * only an ACCEPT from a server that opened the token; one that does not
 * check tokens refuses such a connect at once (the generic refusal),
 * rather than let it fall back to an unauthenticated session or time
 * out.  (In v1 such a connect succeeded.) */
static void t_no_admission_takes_no_token_only(void)
{
	struct ferry_endpoint *srv = ep_sessions(4), *cli;
	struct ferry_ep_config cfg;
	struct ferry_session *a, *b;
	struct ferry_ep_stats st;
	struct tok t;

	ep_config(&cfg);
	cfg.connect_timeout_ms = 300;
	cli = ep_make(&cfg);
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	cr_assert_eq(connect_with(cli, srv, NULL, &b), 0);
	echo_ok(cli, srv, b);
	seal_ok(&t);
	cr_assert_eq(connect_with(cli, srv, &t, &a), -FERRY_EREJECTED);
	cr_assert_not(ferry_session_is_open(a));
	cr_assert_eq(stats(cli).drop_auth, 0, "refused, not an ACCEPT");
	echo_ok(cli, srv, b);
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.connects_refused, 1);
	cr_assert_eq(st.admission_refused_other, 1);
	cr_assert_eq(st.drop_unsupported, 0);
	cr_assert_eq(st.drop_malformed, 0);
	cr_assert_eq(st.drop_bad_pop, 0, "no hook: POP is not checked");
	ferry_session_close(a);
	ferry_session_close(b);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* A hook can be replaced and cleared; its context is released each time,
 * and at destroy. */
static int g_released;

static int refuse_all(void *ctx, const void *token, size_t len)
{
	(void)ctx;
	(void)token;
	(void)len;
	return -EPERM;
}

static void count_release(void *ctx)
{
	(void)ctx;
	g_released++;
}

static void t_custom_hook_and_release(void)
{
	struct ferry_endpoint *srv = ep_sessions(2), *cli = ep_sessions(2);
	struct ferry_session *s;

	g_released = 0;
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_set_admission(srv, refuse_all,
						  count_release, NULL),
		     0);
	cr_assert_eq(connect_with(cli, srv, NULL, &s), -FERRY_EREJECTED);
	cr_assert_eq(stats(srv).admission_refused_other, 1);
	ferry_session_close(s);
	cr_assert_eq(ferry_endpoint_set_admission(srv, NULL, NULL, NULL), 0);
	cr_assert_eq(g_released, 1);
	cr_assert_eq(connect_with(cli, srv, NULL, &s), 0);
	ferry_session_close(s);
	cr_assert_eq(ferry_endpoint_set_admission(srv, refuse_all,
						  count_release, NULL),
		     0);
	ferry_endpoint_destroy(srv);
	cr_assert_eq(g_released, 2);
	ferry_endpoint_destroy(cli);
}

static void t_bad_arguments(void)
{
	struct ferry_endpoint *ep = ep_sessions(2);
	const char *const ch[] = { CHANNEL };
	const char *const bad[] = { "tab\there" };
	struct ferry_connect_opts o = { .token = "x", .token_len = 0 };
	struct ferry_session *s;
	static uint8_t huge[9000];

	cr_assert_eq(ferry_endpoint_require_token(NULL, g_kr, AUD, ch, 1),
		     -EINVAL);
	cr_assert_eq(ferry_endpoint_require_token(ep, NULL, AUD, ch, 1),
		     -EINVAL);
	cr_assert_eq(ferry_endpoint_require_token(ep, g_kr, "", ch, 1),
		     -EINVAL);
	cr_assert_eq(ferry_endpoint_require_token(ep, g_kr, AUD, ch, 0),
		     -EINVAL);
	cr_assert_eq(ferry_endpoint_require_token(ep, g_kr, AUD, bad, 1),
		     -EINVAL);
	/* A token pointer without a length, or the reverse. */
	cr_assert_eq(ferry_session_connect(ep, "127.0.0.1", 9, &o, NULL, NULL,
					   &s),
		     -EINVAL);
	o.token = NULL;
	o.token_len = 5;
	cr_assert_eq(ferry_session_connect(ep, "127.0.0.1", 9, &o, NULL, NULL,
					   &s),
		     -EINVAL);
	/* Wire v2: a token without its holder key cannot be presented. */
	o.token = "abcde";
	cr_assert_eq(ferry_session_connect(ep, "127.0.0.1", 9, &o, NULL, NULL,
					   &s),
		     -EINVAL);
	o.holder_key = huge;
	/* Larger than a CONNECT can carry within max_frame (8192). */
	o.token = huge;
	o.token_len = sizeof(huge);
	cr_assert_eq(ferry_session_connect(ep, "127.0.0.1", 9, &o, NULL, NULL,
					   &s),
		     -EMSGSIZE);
	ferry_endpoint_destroy(ep);
}

static void t_strerror_covers_token_codes(void)
{
	for (int e = FERRY_TOKEN_ERRNO_BASE; e < FERRY_TOKEN_ERRNO_MAX; e++) {
		const char *m = ferry_strerror(-e);

		cr_assert(m && *m);
		cr_assert_str_neq(m, "unknown ferry error", "code %d", e);
		cr_assert_str_eq(m, ferry_token_strerror(-e));
	}
	cr_assert_str_eq(ferry_strerror(-FERRY_TOKEN_EEXPIRED),
			 "token expired");
	cr_assert_str_neq(ferry_strerror(-FERRY_ECAPS), "unknown ferry error");
	cr_assert_str_neq(ferry_strerror(-FERRY_EIOU), "unknown ferry error");
	cr_assert_str_eq(ferry_strerror(-(FERRY_TOKEN_ERRNO_MAX)),
			 "unknown ferry error");
}

/* ===================================================================== */
/* Tokens in calls                                                        */
/* ===================================================================== */

/* A call of @method with @n copies of @t and a payload of @len bytes;
 * returns the continuation's result, and the verdict in *@v. */
static int call_caps(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		     struct ferry_session *s, const struct ferry_cap *caps,
		     unsigned n, size_t len, struct caps_verdict *v)
{
	struct reply r = { 0 };
	struct ferry_msgbuf *mb = msg(cli, len, 11);
	uint32_t want = sum_bytes(ferry_msgbuf_data(mb), len);
	int ret = ferry_call_caps(s, M_CAPS, mb, caps, n, 0, on_reply, &r);

	cr_assert_eq(ret, 0, "ferry_call_caps: %s", ferry_strerror(ret));
	cr_assert(pump(cli, srv, &r.done, 5000), "call never ended");
	if (r.res == 0) {
		cr_assert_eq(r.len, sizeof(*v));
		memcpy(v, r.data, sizeof(*v));
		cr_assert_eq(v->pay_len, len, "payload length");
		cr_assert_eq(v->pay_sum, want, "payload intact");
	}
	return r.res;
}

static struct ferry_session *open_guarded(struct ferry_endpoint *cli,
					  struct ferry_endpoint *srv)
{
	struct ferry_session *s;
	struct tok t;

	seal_ok(&t);
	cr_assert_eq(connect_with(cli, srv, &t, &s), 0);
	return s;
}

static void t_zero_one_several_round_trip_and_redeem(void)
{
	struct ferry_endpoint *srv = guarded_server(2), *cli = ep_sessions(2);
	struct ferry_session *s = open_guarded(cli, srv);
	struct ferry_cap caps[7];
	struct tok t[7];
	struct caps_verdict v;
	struct ferry_ep_stats st;
	static const unsigned counts[] = { 0, 1, 2, 7 };
	/* One frame, several fragments (the table rides in the first), and
	 * a payload-less message. */
	static const size_t sizes[] = { 32, 20000, 0 };
	uint64_t total = 0;

	/* Tokens in a call prove nothing but themselves: version 1 ones, so
	 * that seven still fit in FERRY_CAPS_MAX_LEN. */
	for (unsigned i = 0; i < 7; i++) {
		seal_v1(&t[i]);
		caps[i] = (struct ferry_cap){ FERRY_CAP_TOKEN, t[i].b,
					      t[i].len };
	}
	for (unsigned k = 0; k < 3; k++) {
		for (unsigned i = 0; i < 4; i++) {
			memset(&v, 0xee, sizeof(v));
			cr_assert_eq(call_caps(cli, srv, s, caps, counts[i],
					       sizes[k], &v),
				     0, "%u caps, %zu bytes", counts[i],
				     sizes[k]);
			cr_assert_eq(v.ncaps, counts[i]);
			cr_assert_eq(v.redeemed, counts[i]);
			cr_assert_eq(v.failed, 0);
			total += counts[i];
		}
	}
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.caps_received, total);
	cr_assert_eq(st.caps_refused, 0);
	cr_assert_eq(ferry__ep_stats_drops(&st), 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* The handler sees each token as sent; a bad one fails to redeem (the
 * transport carries tokens, the handler judges them). */
static void t_handler_sees_bad_tokens_fail(void)
{
	struct ferry_endpoint *srv = guarded_server(2), *cli = ep_sessions(2);
	struct ferry_session *s = open_guarded(cli, srv);
	struct ferry_cap caps[3];
	struct tok good, expired, aud;
	struct caps_verdict v;

	seal_ok(&good);
	g_now = T0 - 3600;
	seal_with(g_kr, FERRY_TOKEN_SUBREQUEST, AUD, CHANNEL, "", 60,
		  &expired);
	g_now = T0;
	seal_with(g_kr, FERRY_TOKEN_SUBREQUEST, "elsewhere", CHANNEL, "", 60,
		  &aud);
	caps[0] = (struct ferry_cap){ FERRY_CAP_TOKEN, good.b, good.len };
	caps[1] = (struct ferry_cap){ FERRY_CAP_TOKEN, expired.b, expired.len };
	caps[2] = (struct ferry_cap){ FERRY_CAP_TOKEN, aud.b, aud.len };
	cr_assert_eq(call_caps(cli, srv, s, caps, 3, 16, &v), 0);
	cr_assert_eq(v.ncaps, 3);
	cr_assert_eq(v.redeemed, 1);
	cr_assert_eq(v.failed, 2);
	cr_assert_eq(v.first_err, -FERRY_TOKEN_EEXPIRED);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* An IOU entry is refused, at the call's turn, with a clear error; the
 * handler does not run, and the session carries on. */
static void t_iou_entry_names_a_promise_of_its_session(void)
{
	struct ferry_endpoint *srv = guarded_server(2), *cli = ep_sessions(2);
	struct ferry_session *s = open_guarded(cli, srv);
	struct ferry_session *s2 = open_guarded(cli, srv);
	struct ferry_msgbuf *mb = msg(cli, 8, 0);
	struct ferry_iou *iou, *other;
	struct ferry_cap caps[2];
	struct reply r = { 0 };

	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	cr_assert_eq(ferry_iou_new(s2, NULL, NULL, &other), 0);
	/* A promise made on another session. */
	caps[0] = (struct ferry_cap){ FERRY_CAP_IOU, other, 0 };
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, 1, 0, on_reply, &r),
		     -EINVAL);
	/* The same promise twice in one table. */
	caps[0] = (struct ferry_cap){ FERRY_CAP_IOU, iou, 0 };
	caps[1] = caps[0];
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, 2, 0, on_reply, &r),
		     -EBUSY);
	cr_assert_not(r.done);
	/* Neither was named: both can be taken back. */
	cr_assert_eq(ferry_iou_cancel(iou), 0);
	cr_assert_eq(ferry_iou_cancel(other), 0);
	ferry_msgbuf_free(mb);
	ferry_session_close(s);
	ferry_session_close(s2);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

static void t_client_side_limits(void)
{
	struct ferry_endpoint *srv = guarded_server(2), *cli = ep_sessions(2);
	struct ferry_session *s = open_guarded(cli, srv);
	struct ferry_cap caps[FERRY_CAPS_MAX + 1];
	static uint8_t big[FERRY_CAPS_MAX_LEN];
	struct ferry_msgbuf *mb = msg(cli, 8, 0);
	struct reply r = { 0 };
	struct tok t;

	seal_ok(&t);
	for (unsigned i = 0; i <= FERRY_CAPS_MAX; i++)
		caps[i] = (struct ferry_cap){ FERRY_CAP_TOKEN, "ab", 2 };
	/* Too many entries. */
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, FERRY_CAPS_MAX + 1,
				     0, on_reply, &r),
		     -EINVAL);
	/* The most entries. */
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, FERRY_CAPS_MAX, 0,
				     on_reply, &r),
		     0);
	cr_assert(pump(cli, srv, &r.done, 3000));
	cr_assert_eq(r.res, 0);
	mb = msg(cli, 8, 0);
	/* Unknown kind; empty value; an IOU id of the wrong size. */
	caps[0].kind = 7;
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, 1, 0, on_reply, &r),
		     -EINVAL);
	caps[0] = (struct ferry_cap){ FERRY_CAP_TOKEN, "", 0 };
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, 1, 0, on_reply, &r),
		     -EINVAL);
	caps[0] = (struct ferry_cap){ FERRY_CAP_IOU, NULL, 0 }; /* no promise */
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, 1, 0, on_reply, &r),
		     -EINVAL);
	/* A table longer than FERRY_CAPS_MAX_LEN. */
	caps[0] = (struct ferry_cap){ FERRY_CAP_TOKEN, big, sizeof(big) };
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, caps, 1, 0, on_reply, &r),
		     -EMSGSIZE);
	caps[0] = (struct ferry_cap){ FERRY_CAP_TOKEN, t.b, t.len };
	cr_assert_eq(ferry_call_caps(s, M_CAPS, mb, NULL, 1, 0, on_reply, &r),
		     -EINVAL);
	ferry_msgbuf_free(mb);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Tables no ferry client sends, by raw UDP: each call is refused with an
 * error response at its turn and counted, later calls are served in
 * order, and nothing crashes. */
static void t_malformed_tables_refused_and_counted(void)
{
	struct ferry_endpoint *srv = guarded_server(2);
	struct ferry_ep_stats st;
	struct ferry_frame f;
	struct raw r;
	uint8_t buf[2048];
	struct tok t;
	/* Each a whole message: table, then (maybe) payload. */
	static const struct {
		const char *what;
		uint8_t m[16];
		size_t n;
		uint32_t code;
	} bad[] = {
		{ "entry runs past the table", { 1, 1, 0, 8, 0, 0, 0, 9, 1, 2, 3, 4 },
		  12, FERRY_ECAPS },
		{ "table longer than the message", { 1, 1, 0, 40, 0, 0, 0, 1, 7 },
		  9, FERRY_ECAPS },
		{ "count 0", { 1, 0, 0, 4 }, 4, FERRY_ECAPS },
		{ "count beyond 16", { 1, 17, 0, 12, 0, 0, 0, 1, 7, 0, 0, 0 },
		  12, FERRY_ECAPS },
		{ "nonzero reserved byte", { 1, 1, 0, 9, 0, 1, 0, 1, 7 }, 9,
		  FERRY_ECAPS },
		{ "empty value", { 1, 1, 0, 8, 0, 0, 0, 0 }, 8, FERRY_ECAPS },
		{ "unknown kind", { 1, 1, 0, 9, 5, 0, 0, 1, 7 }, 9, FERRY_ECAPS },
		{ "IOU id of 1 byte", { 1, 1, 0, 9, 1, 0, 0, 1, 7 }, 9,
		  FERRY_ECAPS },
		{ "entries short of the table length",
		  { 1, 1, 0, 12, 0, 0, 0, 1, 7, 0, 0, 0 }, 12, FERRY_ECAPS },
		{ "empty message", { 0 }, 0, FERRY_ECAPS },
		{ "unknown table version", { 2, 1, 0, 9, 0, 0, 0, 1, 7 }, 9,
		  EPROTONOSUPPORT },
	};
	const size_t nbad = sizeof(bad) / sizeof(bad[0]);
	uint32_t id = 1;
	uint8_t good[4 + 4 + FERRY_TOKEN_MAX_LEN + 5];
	size_t glen;

	seal_ok(&t);
	r.hk = t.hk;
	raw_connect(&r, srv, 0x00070001, 0, t.b, t.len);
	for (size_t i = 0; i < nbad; i++, id++) {
		raw_request(&r, id, M_CAPS, FERRY_FF_CAPS, bad[i].m, bad[i].n);
		cr_assert(raw_recv(&r, srv, FERRY_FT_RESPONSE, 0, &f, buf,
				   sizeof(buf)),
			  "%s: no response", bad[i].what);
		cr_assert_eq(f.h.req_id, id, "%s", bad[i].what);
		cr_assert_eq(resp_code(&f), bad[i].code, "%s: code %u",
			     bad[i].what, resp_code(&f));
	}
	/* A well-formed table by hand, then 5 payload bytes: served. */
	good[0] = 1;
	good[1] = 1;
	glen = 4 + 4 + t.len;
	good[2] = (uint8_t)(glen >> 8);
	good[3] = (uint8_t)glen;
	good[4] = 0;
	good[5] = 0;
	good[6] = (uint8_t)(t.len >> 8);
	good[7] = (uint8_t)t.len;
	memcpy(good + 8, t.b, t.len);
	memcpy(good + glen, "hello", 5);
	raw_request(&r, id, M_CAPS, FERRY_FF_CAPS, good, glen + 5);
	cr_assert(raw_recv(&r, srv, FERRY_FT_RESPONSE, 0, &f, buf, sizeof(buf)));
	cr_assert_eq(f.h.req_id, id);
	cr_assert_eq(resp_code(&f), 0);
	{
		struct caps_verdict v;

		cr_assert_eq(f.pay_len, sizeof(v));
		memcpy(&v, f.payload, sizeof(v));
		cr_assert_eq(v.ncaps, 1);
		cr_assert_eq(v.redeemed, 1);
		cr_assert_eq(v.pay_len, 5);
		cr_assert_eq(v.pay_sum, sum_bytes((const uint8_t *)"hello", 5));
	}
	ferry__endpoint_stats(srv, &st);
	cr_assert_eq(st.caps_refused, nbad);
	cr_assert_eq(st.caps_received, 1);
	cr_assert_eq(st.reqs_dispatched, nbad + 1);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Every case on every dataplane                                          */

#define ADMISSION_CASES(CASE, s)                                               \
	CASE(s, valid_token_connects_and_calls)                                \
	CASE(s, actor_class_token_connects)                                    \
	CASE(s, refusals_match_and_leave_no_state)                             \
	CASE(s, queued_calls_fail_with_the_refusal)                            \
	CASE(s, refusal_is_one_refuse)                                    \
	CASE(s, no_admission_takes_no_token_only)                              \
	CASE(s, custom_hook_and_release)                                       \
	CASE(s, bad_arguments)                                                 \
	CASE(s, strerror_covers_token_codes)

#define CAPS_CASES(CASE, s)                                                    \
	CASE(s, zero_one_several_round_trip_and_redeem)                        \
	CASE(s, handler_sees_bad_tokens_fail)                                  \
	CASE(s, iou_entry_names_a_promise_of_its_session)                      \
	CASE(s, client_side_limits)                                            \
	CASE(s, malformed_tables_refused_and_counted)

HARNESS_BATTERY(admission, ADMISSION_CASES, .init = kr_setup,
		.fini = kr_teardown, .timeout = 60)
HARNESS_BATTERY(caps, CAPS_CASES, .init = kr_setup, .fini = kr_teardown,
		.timeout = 60)
