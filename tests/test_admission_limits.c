/* SPDX-License-Identifier: MIT */
/*
 * test_admission_limits.c - Criterion tests for what a channel token allows
 * beyond getting in (docs/tokens.md, "Session admission"; docs/wire.md,
 * sections 4.1 to 4.5): a session ends when its token expires, a copied
 * token is no use without its holder key and its holder's sessions are
 * capped however many addresses it connects from, a token for another
 * entrypoint or with a lifetime over the keyring's max TTL is refused, and
 * every refusal looks the same on the wire.  Every case on every dataplane
 * (tests/harness.h).
 *
 * The keyring reads an injectable clock (g_now) that stands still; the
 * transport's timers run on the real monotonic clock.  So a token "about
 * to expire" is one issued so that one second of its life is left at
 * g_now, and the test waits that second out.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/token.h>

#include "control/internal.h"
#include "harness.h"

#define T0 1700000000ull
#define SKEW 30
#define AUD "adm-limits-server"
#define CHANNEL "svc/echo"
#define M_ECHO 1
#define M_HOLD 2 /* never answered by the handler itself */

static uint64_t g_now = T0;

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return g_now;
}

static struct ferry_keyring *g_kr;

static void kr_setup(void)
{
	g_now = T0;
	cr_assert_eq(ferry_keyring_create(3600, SKEW, &g_kr), 0);
	ferry_keyring_set_clock(g_kr, test_clock, NULL);
}

static void kr_teardown(void)
{
	ferry_keyring_free(g_kr);
	g_kr = NULL;
}

/* A channel token v2 and the holder key its issuer gave with it
 * (docs/wire.md, section 4.5). */
struct tok {
	uint8_t b[FERRY_TOKEN_MAX_LEN];
	size_t len;
	uint8_t hk[FERRY_TOKEN_HK_LEN];
};

/* A token for CHANNEL/@entry from @kr, issued at g_now for @ttl s. */
static void seal_entry(const struct ferry_keyring *kr, const char *entry,
		       uint32_t ttl, struct tok *t)
{
	struct ferry_token_req req = {
		.type = FERRY_TOKEN_SUBREQUEST,
		.audience = AUD,
		.target = CHANNEL,
		.entrypoint = entry,
		.ttl = ttl,
	};

	cr_assert_eq(ferry_token_seal2(kr, &req, t->b, sizeof(t->b), &t->len,
				       t->hk),
		     0);
}

static void seal_ok(struct tok *t)
{
	seal_entry(g_kr, "", 600, t);
}

/* A valid token with one second of its life left at g_now: it stops
 * verifying at expires_at + skew = g_now + 1. */
static void seal_last_second(struct tok *t)
{
	g_now = T0 - 600 - SKEW + 1;
	seal_entry(g_kr, "", 600, t);
	g_now = T0;
}

static struct deferred g_held;

/* A server of @max_sessions sessions requiring tokens with options @o. */
static struct ferry_endpoint *
guarded(uint32_t max_sessions, const struct ferry_require_token_opts *o)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv;
	const char *const ch[] = { CHANNEL };

	ep_config(&cfg);
	cfg.max_sessions = max_sessions;
	srv = ep_make(&cfg);
	cr_assert_eq(ferry_endpoint_require_token_opts(srv, g_kr, AUD, ch, 1,
						       o),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_HOLD, defer_handler,
					     &g_held),
		     0);
	return srv;
}

static struct ferry_endpoint *client(uint32_t max_sessions)
{
	struct ferry_ep_config cfg;

	ep_config(&cfg);
	cfg.max_sessions = max_sessions;
	return ep_make(&cfg);
}

static int connect_tok(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		       const struct tok *t, struct ferry_session **out)
{
	struct ferry_connect_opts o = { .token = t->b, .token_len = t->len,
					.holder_key = t->hk };

	return connect_to(cli, srv, &o, out);
}

static void echo_ok(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
		    struct ferry_session *s)
{
	struct reply r = { .seed = 3 };

	cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, 16, 3), on_reply, &r), 0);
	PUMP_UNTIL(cli, srv, r.done, "echo never ended");
	cr_assert_eq(r.res, 0, "echo: %s", ferry_strerror(r.res));
	cr_assert(r.data_ok);
}

/* Answer the calls the server held (their sessions are gone: the answer
 * goes nowhere and frees them). */
static void release_held(void)
{
	for (int i = 0; i < g_held.n; i++)
		ferry_call_respond_error(g_held.calls[i], -EIO);
	g_held.n = 0;
}

/* --- the handshake by hand ------------------------------------------------ */

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
	uint8_t out[FERRY_HS_CONNECT_MAX];

	while (now_ms() < end) {
		struct ferry_hs_client_result res;
		struct ferry_w2_dgram d;
		size_t n;
		int k;

		ferry_endpoint_poll(srv, 0);
		n = raw_take(r, buf, cap, NULL);
		if (!n && (r->hs.have_cookie || now_ms() < again))
			continue;
		if (n) {
			if (ferry__w2_parse_hdr(buf, n, &d) != FERRY_W2_OK ||
			    !d.is_long || d.type != FERRY_W2_RETRY)
				return n;
			memset(&res, 0, sizeof(res));
			cr_assert_eq(ferry__hs_client_input(&r->hs, buf, n,
							    &res),
				     FERRY_HS_RETRY);
		}
		k = ferry__hs_client_build(&r->hs, out, sizeof(out));
		cr_assert_gt(k, 0);
		raw_send_bytes(r, out, (size_t)k);
		again = now_ms() + 50;
	}
	return 0;
}

/* Whether @buf/@n is the long header of @type for @r's handshake. */
static bool is_long_type(const struct raw *r, const uint8_t *buf, size_t n,
			 uint8_t type)
{
	struct ferry_w2_dgram d;

	return ferry__w2_parse_hdr(buf, n, &d) == FERRY_W2_OK && d.is_long &&
	       d.type == type && d.dcid == r->cid;
}

/*
 * @buf/@n must be a REFUSE for @r's handshake: a long header naming our
 * CID from none, an intact CRC, one ERROR frame FERRY_EREJECTED without
 * text (the generic refusal, docs/wire.md section 4.5), which the
 * handshake fails with (and is wiped).  Returns where its frames start,
 * for a test that compares them.
 */
static size_t generic_refuse(struct raw *r, const uint8_t *buf, size_t n)
{
	struct ferry_hs_client_result res;
	struct ferry_w2_frame f, more;
	struct ferry_w2_dgram d;
	struct ferry_w2_iter it;

	cr_assert_eq(ferry__w2_parse_hdr(buf, n, &d), FERRY_W2_OK);
	cr_assert(d.is_long && d.type == FERRY_W2_REFUSE, "not a REFUSE");
	cr_assert_eq(d.dcid, r->cid);
	cr_assert_eq(d.scid, 0);
	cr_assert(ferry__w2_crc_ok(&d));
	ferry__w2_iter_init(&it, &d);
	cr_assert_eq(ferry__w2_iter_next(&it, &f), 1);
	cr_assert_eq(f.type, FERRY_W2_ERROR);
	cr_assert_eq(f.u.err.code, FERRY_EREJECTED);
	cr_assert_eq(f.u.err.msg_len, 0);
	cr_assert_eq(ferry__w2_iter_next(&it, &more), 0, "one frame only");
	memset(&res, 0, sizeof(res));
	cr_assert_eq(ferry__hs_client_input(&r->hs, buf, n, &res),
		     FERRY_HS_FAILED);
	cr_assert_eq(res.err, -FERRY_EREJECTED);
	ferry__hs_client_wipe(&r->hs);
	return (size_t)(d.frames - buf);
}

/* ===================================================================== */
/* Expiry                                                                 */
/* ===================================================================== */

/* A session lives as long as its token and no longer: at expiry its
 * outstanding call fails at the client with the token-expired code (an
 * ERROR, not a reset), a new call cannot start, the server counts it, and
 * a session with a longer-lived token goes on. */
static void t_session_ends_when_its_token_expires(void)
{
	struct ferry_endpoint *srv = guarded(4, NULL), *cli = client(4);
	struct ferry_session *s, *other;
	struct reply held = { 0 };
	struct tok t, lasting;
	struct ferry_msgbuf *mb;

	g_held.n = 0;
	seal_last_second(&t);
	seal_ok(&lasting);
	cr_assert_eq(connect_tok(cli, srv, &t, &s), 0);
	cr_assert_eq(connect_tok(cli, srv, &lasting, &other), 0);
	echo_ok(cli, srv, s);
	cr_assert_eq(ferry_call(s, M_HOLD, msg(cli, 8, 1), on_reply, &held),
		     0);
	PUMP_UNTIL(cli, srv, held.done, "the session outlived its token");
	cr_assert_eq(held.res, -FERRY_TOKEN_EEXPIRED, "got %d (%s)", held.res,
		     ferry_strerror(held.res));
	cr_assert_eq(held.calls, 1);
	cr_assert_not(ferry_session_is_open(s));
	mb = msg(cli, 8, 2);
	cr_assert_eq(ferry_call(s, M_ECHO, mb, on_reply, &held), -ENOTCONN);
	ferry_msgbuf_free(mb);
	cr_assert_eq(stats(srv).sessions_token_expired, 1);
	cr_assert_eq(stats(cli).drop_malformed, 0);
	/* Its neighbour's token lives on, and so does its session. */
	cr_assert(ferry_session_is_open(other));
	echo_ok(cli, srv, other);
	cr_assert_eq(stats(srv).sessions_token_expired, 1);
	release_held();
	ferry_session_close(s);
	ferry_session_close(other);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* The expiry on the wire: one CLOSE in the session (v1 sent an ERROR
 * naming both session ids; in v2 the datagram names the client's CID and
 * carries the session's tag, which raw_recv checks), with code
 * FERRY_TOKEN_EEXPIRED. */
static void t_expiry_close_in_the_session(void)
{
	struct ferry_endpoint *srv = guarded(4, NULL);
	uint8_t buf[RAW_FRAME_MAX];
	struct ferry_frame f;
	struct ferry_hdr h;
	struct raw r;
	struct tok t;

	seal_last_second(&t);
	r.hk = t.hk;
	raw_connect(&r, srv, 0x00090001, FERRY_FEAT_TRACE, t.b, t.len);
	/* A datagram of the session confirms it (a half-open session ends
	 * at connect_timeout_ms instead, without a CLOSE). */
	raw_data_hdr(&r, &h, FERRY_FT_PING);
	raw_send(&r, &h, NULL, 0);
	cr_assert(raw_recv(&r, srv, FERRY_FT_CLOSE, 0, &f, buf, sizeof(buf)),
		  "no CLOSE at expiry");
	cr_assert_eq(f.h.msg_len, FERRY_TOKEN_EEXPIRED, "CLOSE code %u",
		     f.h.msg_len);
	cr_assert_eq(stats(srv).sessions_token_expired, 1);
	cr_assert_eq(stats(srv).sessions_closed, 1);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Sessions per token                                                     */
/* ===================================================================== */

#define REPLAYS 63

/* One handshake from a fresh raw peer (@i-th, its own port) presenting @t
 * with holder key @hk: true if ACCEPTed, false if refused (generically). */
static bool replay_once(struct raw *r, struct ferry_endpoint *srv,
			unsigned i, const struct tok *t, const uint8_t *hk)
{
	uint8_t buf[RAW_FRAME_MAX];
	size_t n;

	raw_open(r, srv, 0x00100001 + i);
	r->hk = hk;
	raw_connect_send(r, 0, t->b, t->len);
	n = raw_answer(r, srv, buf, sizeof(buf));
	cr_assert(n, "replay %u: no answer", i);
	if (is_long_type(r, buf, n, FERRY_W2_ACCEPT)) {
		ferry__hs_client_wipe(&r->hs);
		return true;
	}
	generic_refuse(r, buf, n);
	return false;
}

/*
 * The attack: one valid token replayed from 63 addresses into a table of
 * 64.  In v1 the cap alone held it; in v2 a copier who lacks the holder
 * key gets nothing at all: its POP fails (drop_bad_pop) and the REFUSE is
 * the generic one.  The holder itself, connecting from 63 addresses, gets
 * at most the cap (default 4) of sessions; the rest get the generic
 * refusal and are counted as capped.  The table keeps room, and a client
 * with another token still gets in and calls.  (On DPDK a port has 16
 * lanes, so there the peers take turns; each gets a fresh port.)
 */
static void t_replayed_token_is_capped(void)
{
	struct ferry_endpoint *srv = guarded(64, NULL), *cli = client(4);
	bool keep_open = strcmp(dp_name, "dpdk") != 0;
	static struct raw r[REPLAYS];
	uint16_t ports[REPLAYS];
	unsigned accepted = 0;
	uint8_t guess[FERRY_TOKEN_HK_LEN];
	struct ferry_session *s;
	struct ferry_ep_stats st;
	struct tok t, mine;

	seal_ok(&t);
	/* Copies without the holder key (a copier can only guess it). */
	for (unsigned i = 0; i < REPLAYS; i++) {
		randombytes_buf(guess, sizeof(guess));
		cr_assert_not(replay_once(&r[i], srv, i, &t, guess),
			      "copy %u: a session without the holder key", i);
		ports[i] = raw_port(&r[i]);
		for (unsigned j = 0; j < i; j++)
			cr_assert_neq(ports[j], ports[i], "two peers, one port");
		if (!keep_open)
			raw_close(&r[i]);
	}
	for (unsigned i = 0; keep_open && i < REPLAYS; i++)
		raw_close(&r[i]);
	st = stats(srv);
	cr_assert_eq(st.drop_bad_pop, REPLAYS);
	cr_assert_eq(st.admission_refused, REPLAYS);
	cr_assert_eq(st.admission_refused_auth, REPLAYS);
	cr_assert_eq(st.token_sessions_capped, 0);
	cr_assert_eq(st.sessions_opened, 0);
	/* The holder, from as many addresses: capped per token. */
	for (unsigned i = 0; i < REPLAYS; i++) {
		accepted += replay_once(&r[i], srv, i, &t, t.hk);
		ports[i] = raw_port(&r[i]);
		for (unsigned j = 0; j < i; j++)
			cr_assert_neq(ports[j], ports[i], "two peers, one port");
		if (!keep_open)
			raw_close(&r[i]);
	}
	cr_assert_eq(accepted, FERRY_ADMIT_SESSIONS_PER_TOKEN);
	st = stats(srv);
	cr_assert_eq(st.sessions_opened, FERRY_ADMIT_SESSIONS_PER_TOKEN);
	cr_assert_eq(st.token_sessions_capped,
		     REPLAYS - FERRY_ADMIT_SESSIONS_PER_TOKEN);
	cr_assert_eq(st.admission_refused,
		     REPLAYS + st.token_sessions_capped);
	cr_assert_eq(st.drop_bad_pop, REPLAYS);
	/* The table is not full: another token's holder gets in. */
	seal_ok(&mine);
	cr_assert_eq(connect_tok(cli, srv, &mine, &s), 0);
	echo_ok(cli, srv, s);
	cr_assert_eq(stats(srv).sessions_opened,
		     FERRY_ADMIT_SESSIONS_PER_TOKEN + 1);
	ferry_session_close(s);
	for (unsigned i = 0; keep_open && i < REPLAYS; i++)
		raw_close(&r[i]);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* The cap is configurable, and a session that ends gives its place back:
 * with a cap of 2, a third session of one token is refused until one of
 * the first two closes. */
static void t_cap_is_configurable_and_released(void)
{
	const struct ferry_require_token_opts o = {
		.max_sessions_per_token = 2,
	};
	struct ferry_endpoint *srv = guarded(8, &o), *cli = client(8);
	struct ferry_session *s[3];
	struct tok t;

	seal_ok(&t);
	cr_assert_eq(connect_tok(cli, srv, &t, &s[0]), 0);
	cr_assert_eq(connect_tok(cli, srv, &t, &s[1]), 0);
	cr_assert_eq(connect_tok(cli, srv, &t, &s[2]), -FERRY_EREJECTED);
	ferry_session_close(s[2]);
	cr_assert_eq(stats(srv).token_sessions_capped, 1);
	ferry_session_close(s[0]);
	PUMP_UNTIL(cli, srv, stats(srv).sessions_closed == 1,
		   "the server never saw the CLOSE");
	cr_assert_eq(connect_tok(cli, srv, &t, &s[2]), 0);
	echo_ok(cli, srv, s[2]);
	cr_assert_eq(stats(srv).token_sessions_capped, 1);
	ferry_session_close(s[1]);
	ferry_session_close(s[2]);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* A token the hook admitted, for which no session was free, holds no
 * place: table of 2, cap of 2; token A fills one slot, B the other, A's
 * next connect is admitted but finds the table full; once B's session
 * closes, A gets its second session.  (Wire v2: A proved its holder key,
 * so it is told the precise reason, -EMFILE, where v1 said only
 * -FERRY_EREJECTED: docs/wire.md, section 4.5.) */
static void t_no_free_session_gives_the_place_back(void)
{
	const struct ferry_require_token_opts o = {
		.max_sessions_per_token = 2,
	};
	struct ferry_endpoint *srv = guarded(2, &o), *cli = client(8);
	struct ferry_session *a1, *a2, *b;
	struct tok ta, tb;

	seal_ok(&ta);
	seal_ok(&tb);
	cr_assert_eq(connect_tok(cli, srv, &ta, &a1), 0);
	cr_assert_eq(connect_tok(cli, srv, &tb, &b), 0);
	cr_assert_eq(connect_tok(cli, srv, &ta, &a2), -EMFILE);
	ferry_session_close(a2);
	cr_assert_eq(stats(srv).token_sessions_capped, 0);
	cr_assert_eq(stats(srv).admission_refused, 0, "refused for room");
	ferry_session_close(b);
	PUMP_UNTIL(cli, srv, stats(srv).sessions_closed == 1,
		   "the server never saw the CLOSE");
	cr_assert_eq(connect_tok(cli, srv, &ta, &a2), 0);
	echo_ok(cli, srv, a2);
	ferry_session_close(a1);
	ferry_session_close(a2);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* Replacing the hook forgets the old one's sessions: they end later
 * without touching the old context (freed at the replacement: a sanitizer
 * build would catch it), and the new hook counts only its own. */
static void t_replaced_hook_forgets_its_sessions(void)
{
	const struct ferry_require_token_opts one = {
		.max_sessions_per_token = 1,
	};
	const char *const ch[] = { CHANNEL };
	struct ferry_endpoint *srv = guarded(8, &one), *cli = client(8);
	struct ferry_session *s[3];
	struct tok t;

	seal_ok(&t);
	cr_assert_eq(connect_tok(cli, srv, &t, &s[0]), 0);
	cr_assert_eq(ferry_endpoint_require_token_opts(srv, g_kr, AUD, ch, 1,
						       &one),
		     0);
	cr_assert_eq(connect_tok(cli, srv, &t, &s[1]), 0);
	cr_assert_eq(connect_tok(cli, srv, &t, &s[2]), -FERRY_EREJECTED);
	ferry_session_close(s[2]);
	ferry_session_close(s[0]);
	PUMP_UNTIL(cli, srv, stats(srv).sessions_closed == 1,
		   "the server never saw the CLOSE");
	/* The old session's end did not free the new hook's place. */
	cr_assert_eq(connect_tok(cli, srv, &t, &s[0]), -FERRY_EREJECTED);
	ferry_session_close(s[0]);
	cr_assert_eq(stats(srv).token_sessions_capped, 2);
	ferry_session_close(s[1]);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Entrypoint, max TTL, one refusal                                       */
/* ===================================================================== */

/* A server that serves entrypoint "get" of its channel admits tokens for
 * "get" and for the whole channel, and refuses one for "put"; a server
 * that names no entrypoint serves them all. */
static void t_entrypoint_is_enforced(void)
{
	const char *const eps[] = { "get", "scan" };
	const struct ferry_require_token_opts o = {
		.entrypoints = eps,
		.nentrypoints = 2,
	};
	struct ferry_endpoint *srv = guarded(8, &o), *any = guarded(8, NULL);
	struct ferry_endpoint *cli = client(8);
	struct ferry_session *s[4];
	struct tok get, whole, put;

	seal_entry(g_kr, "get", 600, &get);
	seal_entry(g_kr, "", 600, &whole);
	seal_entry(g_kr, "put", 600, &put);
	cr_assert_eq(connect_tok(cli, srv, &get, &s[0]), 0);
	cr_assert_eq(connect_tok(cli, srv, &whole, &s[1]), 0);
	cr_assert_eq(connect_tok(cli, srv, &put, &s[2]), -FERRY_EREJECTED);
	cr_assert_eq(stats(srv).admission_refused_entrypoint, 1);
	cr_assert_eq(stats(srv).admission_refused, 1);
	echo_ok(cli, srv, s[0]);
	cr_assert_eq(connect_tok(cli, any, &put, &s[3]), 0);
	echo_ok(cli, any, s[3]);
	for (int i = 0; i < 4; i++)
		ferry_session_close(s[i]);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(any);
	ferry_endpoint_destroy(srv);
}

/* A token sealed with the server's key by an issuer with a longer max TTL
 * than the server's keyring is refused at admission, counted as such. */
static void t_lifetime_over_max_ttl_is_refused(void)
{
	static const uint8_t master[32] = "admission-limits-test-master-key";
	struct ferry_keyring *lax, *strict;
	const char *const ch[] = { CHANNEL };
	struct ferry_endpoint *srv, *cli = client(4);
	struct ferry_session *s;
	struct tok t;

	cr_assert_eq(ferry__keyring_from_key(5, master, 86400, SKEW, &lax), 0);
	cr_assert_eq(ferry__keyring_from_key(5, master, 3600, SKEW, &strict),
		     0);
	srv = guarded(4, NULL);
	cr_assert_eq(ferry_endpoint_require_token(srv, strict, AUD, ch, 1), 0);
	seal_entry(lax, "", 7200, &t);
	cr_assert_eq(connect_tok(cli, srv, &t, &s), -FERRY_EREJECTED);
	ferry_session_close(s);
	cr_assert_eq(stats(srv).admission_refused_ttl, 1);
	seal_entry(lax, "", 3600, &t);
	cr_assert_eq(connect_tok(cli, srv, &t, &s), 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	ferry_keyring_free(lax);
	ferry_keyring_free(strict);
}

/* Every refusal reason gives the same REFUSE on the wire: a peer cannot
 * tell a missing token from a forged, expired, foreign, capped, version 1
 * or copied one.  Only the client's own CID (and so the CRC) differs from
 * one connect to the next; everything else is the same bytes. */
static void t_every_refusal_looks_the_same(void)
{
	const char *const eps[] = { "get" };
	const struct ferry_require_token_opts o = {
		.entrypoints = eps,
		.nentrypoints = 1,
		.max_sessions_per_token = 1,
	};
	const struct ferry_token_req v1 = {
		.type = FERRY_TOKEN_SUBREQUEST,
		.audience = AUD,
		.target = CHANNEL,
		.entrypoint = "",
		.ttl = 600,
	};
	struct ferry_endpoint *srv = guarded(8, &o);
	uint8_t first[RAW_FRAME_MAX], buf[RAW_FRAME_MAX];
	size_t first_len = 0;
	struct tok t[8];
	struct raw r;
	unsigned n = 0;

	n++; /* t[0]: none */
	seal_ok(&t[n]);
	t[n++].b[60] ^= 1;                           /* forged */
	g_now = T0 - 7200;
	seal_ok(&t[n++]);                            /* expired */
	g_now = T0;
	seal_entry(g_kr, "put", 600, &t[n++]);       /* entrypoint */
	seal_ok(&t[n]);                              /* capped, below */
	r.hk = t[n].hk;
	raw_connect(&r, srv, 0x00200001, 0, t[n].b, t[n].len);
	raw_close(&r);
	n++;
	cr_assert_eq(ferry_token_seal(g_kr, &v1, t[n].b, sizeof(t[n].b),
				      &t[n].len),
		     0);
	randombytes_buf(t[n++].hk, FERRY_TOKEN_HK_LEN); /* version 1 */
	seal_ok(&t[n]);
	randombytes_buf(t[n++].hk, FERRY_TOKEN_HK_LEN); /* copied */
	for (unsigned i = 0; i < n; i++) {
		size_t len, at;

		raw_open(&r, srv, 0x00300001);
		r.hk = i ? t[i].hk : NULL;
		raw_connect_send(&r, 0, i ? t[i].b : NULL, i ? t[i].len : 0);
		len = raw_answer(&r, srv, buf, sizeof(buf));
		cr_assert(len, "case %u: no answer", i);
		at = generic_refuse(&r, buf, len);
		if (!first_len) {
			memcpy(first, buf, len);
			first_len = len;
		}
		cr_assert_eq(len, first_len, "case %u", i);
		/* The first byte and the version; then the frames. */
		cr_assert_arr_eq(buf, first, 2, "case %u", i);
		cr_assert_arr_eq(buf + at, first + at,
				 len - at - FERRY_W2_CRC_LEN, "case %u", i);
		raw_close(&r);
	}
	{
		struct ferry_ep_stats st = stats(srv);

		cr_assert_eq(st.admission_refused, n);
		cr_assert_eq(st.connects_refused, n);
		cr_assert_eq(st.admission_refused_missing, 1);
		cr_assert_eq(st.admission_refused_auth, 3);
		cr_assert_eq(st.admission_refused_expired, 1);
		cr_assert_eq(st.admission_refused_entrypoint, 1);
		cr_assert_eq(st.token_sessions_capped, 1);
		cr_assert_eq(st.drop_bad_pop, 1);
	}
	ferry_endpoint_destroy(srv);
}

static void t_bad_options(void)
{
	struct ferry_endpoint *ep = client(2);
	const char *const ch[] = { CHANNEL };
	const char *const bad[] = { "" };
	struct ferry_require_token_opts o = { .nentrypoints = 1 };

	cr_assert_eq(ferry_endpoint_require_token_opts(ep, g_kr, AUD, ch, 1,
						       &o),
		     -EINVAL, "entrypoints NULL with a count");
	o.entrypoints = bad;
	cr_assert_eq(ferry_endpoint_require_token_opts(ep, g_kr, AUD, ch, 1,
						       &o),
		     -EINVAL, "an empty entrypoint name");
	ferry_endpoint_destroy(ep);
}

#define LIMITS_CASES(CASE, s)                                                  \
	CASE(s, session_ends_when_its_token_expires)                           \
	CASE(s, expiry_close_in_the_session)                                  \
	CASE(s, replayed_token_is_capped)                                      \
	CASE(s, cap_is_configurable_and_released)                              \
	CASE(s, no_free_session_gives_the_place_back)                          \
	CASE(s, replaced_hook_forgets_its_sessions)                            \
	CASE(s, entrypoint_is_enforced)                                        \
	CASE(s, lifetime_over_max_ttl_is_refused)                              \
	CASE(s, every_refusal_looks_the_same)                                  \
	CASE(s, bad_options)

HARNESS_BATTERY(admission_limits, LIMITS_CASES, .init = kr_setup,
		.fini = kr_teardown, .timeout = 60)
