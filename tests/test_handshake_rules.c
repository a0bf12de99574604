/* SPDX-License-Identifier: MIT */
/*
 * The wire v2 handshake's negative rules (transport/handshake*.c;
 * docs/wire.md sections 4.1 to 4.5), one test or more per rule: cookies
 * (stale, epochs, bound to addresses and CID), the reply rate limits,
 * 3x amplification, CONNECT under 512 bytes, RETRY and REFUSE for another
 * CID, a second RETRY, tampered and downgraded ACCEPTs, a copied token
 * without its holder key, and the client's configuration checks.
 */
#include "hs_util.h"

#include "transport/wire.h"

static struct ferry_hs_client g_c;
static struct ferry_hs_server g_s;

static void init_pair(enum ferry_hs_retry policy, uint8_t cmode)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(cmode);

	cr_assert_eq(ferry__hs_client_init(&g_c, &cc), 0);
	cr_assert_eq(ferry__hs_server_init(&g_s, policy, T0), 0);
}

/* The client's CONNECT with the cookie of a RETRY issued at @t. */
static struct hs_dg connect_with_cookie(uint64_t t)
{
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct hs_dg con = hs_connect(&g_c), rep;

	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, t, &rep, &sr), FERRY_HS_REPLY);
	cr_assert_eq(hs_cli_in(&g_c, &rep, &cr), FERRY_HS_RETRY);
	hs_dg_free(&rep);
	hs_dg_free(&con);
	return hs_connect(&g_c);
}

/* Expect @con at @now from @peer to be answered with a fresh RETRY
 * because its cookie is @why. */
static void expect_bad_cookie(const struct hs_dg *con, struct ferry_addr peer,
			      uint64_t now, enum ferry_hs_cookie why)
{
	struct ferry_hs_server_result sr;
	struct hs_dg rep;

	cr_assert_eq(hs_srv_in(&g_s, con, peer, now, &rep, &sr),
		     FERRY_HS_REPLY, "drop %s cookie %d", sr.drop, sr.cookie);
	cr_assert_eq(sr.cookie, why, "cookie %d, want %d", sr.cookie, why);
	cr_assert_str_eq(sr.drop, "drop_bad_cookie");
	cr_assert_str_eq(sr.sent, "retry_sent");
	cr_assert_eq(rep.p[0], 0xc1);
	hs_dg_free(&rep);
}

/* --- cookies (section 4.3) ---------------------------------------------- */

Test(cookie, valid_for_ten_seconds_then_stale)
{
	struct ferry_hs_server_result sr;
	struct hs_dg con;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = connect_with_cookie(T0);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0 + 10 * NS, NULL, &sr),
		     FERRY_HS_ADMIT);
	expect_bad_cookie(&con, CLI, T0 + 11 * NS, FERRY_HS_COOKIE_STALE);
	/* From the future, beyond the second allowed.  (The buckets are
	 * emptied: a clock stepping back holds replies until it catches up
	 * with them.) */
	memset(g_s.src_tat, 0, sizeof(g_s.src_tat));
	g_s.global_tat = 0;
	expect_bad_cookie(&con, CLI, T0 - 2 * NS, FERRY_HS_COOKIE_STALE);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0 - 1 * NS, NULL, &sr),
		     FERRY_HS_ADMIT);
	hs_dg_free(&con);
}

/* A cookie of the epoch before is taken with the key kept for it. */
Test(cookie, previous_epoch_accepted)
{
	struct ferry_hs_server_result sr;
	uint64_t t = 15000000ull * 120 - 3; /* 3 s before an epoch ends */
	struct hs_dg con;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	ferry__hs_server_init(&g_s, FERRY_HS_RETRY_ALWAYS, t * NS);
	con = connect_with_cookie(t * NS);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, (t + 5) * NS, NULL, &sr),
		     FERRY_HS_ADMIT);
	cr_assert_eq(g_s.epoch, (t + 5) / 120);
	hs_dg_free(&con);
}

/* A cookie two epochs back has no key left: refused even on a clock that
 * stepped back so far that its ts looks fresh. */
Test(cookie, two_epochs_back_refused)
{
	uint64_t t = 15000000ull * 120 - 3;
	struct ferry_hs_server_result sr;
	struct hs_dg con, other;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	ferry__hs_server_init(&g_s, FERRY_HS_RETRY_ALWAYS, t * NS);
	con = connect_with_cookie(t * NS);
	/* Any datagram moves the clock: 2 epochs on, then back. */
	other = hs_dg((const uint8_t *)"x", 1);
	hs_srv_in(&g_s, &other, CLI, (t + 3 + 240) * NS, NULL, &sr);
	cr_assert_eq(g_s.epoch, (t + 3) / 120 + 2);
	expect_bad_cookie(&con, CLI, (t + 1) * NS, FERRY_HS_COOKIE_EPOCH);
	hs_dg_free(&other);
	hs_dg_free(&con);
}

/* A jump of one epoch keeps the key; of two, forgets it even for a cookie
 * whose epoch is the one just before. */
Test(cookie, jump_of_two_epochs_forgets_previous_key)
{
	uint64_t t = 15000000ull * 120 + 60;
	struct ferry_hs_server_result sr;
	uint8_t k0[32];
	struct hs_dg other = hs_dg((const uint8_t *)"x", 1);

	ferry__hs_server_init(&g_s, FERRY_HS_RETRY_ALWAYS, t * NS);
	memcpy(k0, g_s.cookie_key[0], 32);
	hs_srv_in(&g_s, &other, CLI, (t + 120) * NS, NULL, &sr);
	cr_assert_arr_eq(g_s.cookie_key[1], k0, 32);
	memcpy(k0, g_s.cookie_key[0], 32);
	hs_srv_in(&g_s, &other, CLI, (t + 360) * NS, NULL, &sr);
	cr_assert_arr_neq(g_s.cookie_key[1], k0, 32);
	hs_dg_free(&other);
}

/* The cookie binds the client's address and port, the server's address
 * and port, and the client's CID. */
Test(cookie, bound_to_addresses_and_cid)
{
	struct ferry_hs_server_result sr;
	struct ferry_addr local = hs_addr(1, 31851);
	uint8_t buf[FERRY_HS_REPLY_MAX];
	struct hs_dg con;
	struct ferry_addr cli = CLI;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = connect_with_cookie(T0);
	expect_bad_cookie(&con, hs_addr(3, 40000), T0, FERRY_HS_COOKIE_MAC);
	expect_bad_cookie(&con, hs_addr(2, 40001), T0, FERRY_HS_COOKIE_MAC);
	cr_assert_eq(ferry__hs_server_input(&g_s, con.p, con.len, &cli, &local,
					    T0, buf, sizeof(buf), &sr),
		     FERRY_HS_REPLY);
	cr_assert_eq(sr.cookie, FERRY_HS_COOKIE_MAC);
	hs_dg_free(&con);
	/* Another client (CID) with this client's cookie. */
	memcpy(&g_c.cid, &(uint64_t){g_c.cid ^ (1ull << 40)}, 8);
	con = hs_connect(&g_c);
	cr_assert_eq(con.p[0x44 + 18 + 40], FERRY_W2_COOKIE);
	expect_bad_cookie(&con, CLI, T0, FERRY_HS_COOKIE_MAC);
	hs_dg_free(&con);
}

/* Retry never still checks a cookie that is there: a bad one gets RETRY,
 * not admission. */
Test(cookie, retry_never_still_refuses_a_bad_cookie)
{
	struct hs_dg con;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = connect_with_cookie(T0);
	g_s.retry = FERRY_HS_RETRY_NEVER;
	expect_bad_cookie(&con, CLI, T0 + 20 * NS, FERRY_HS_COOKIE_STALE);
	hs_dg_free(&con);
}

/* --- rate limits and amplification (section 4.3) ------------------------- */

/* One source: a burst of 10 RETRYs, then one per 10 ms. */
Test(ratelimit, per_source_burst_then_refill)
{
	struct ferry_hs_server_result sr;
	struct hs_dg con;
	int sent = 0;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	for (int i = 0; i < 15; i++)
		sent += hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr) ==
			FERRY_HS_REPLY;
	cr_assert_eq(sent, 10);
	cr_assert_str_eq(sr.drop, "retry_ratelimited");
	/* Another source is not held back by this one's bucket. */
	cr_assert_eq(hs_srv_in(&g_s, &con, hs_addr(77, 1), T0, NULL, &sr),
		     FERRY_HS_REPLY);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0 + 9 * NS / 1000, NULL, &sr),
		     FERRY_HS_DROP);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0 + 10 * NS / 1000, NULL, &sr),
		     FERRY_HS_REPLY);
	sent = 0;
	for (int i = 0; i < 15; i++)
		sent += hs_srv_in(&g_s, &con, CLI, T0 + NS, NULL, &sr) ==
			FERRY_HS_REPLY;
	cr_assert_eq(sent, 10);
	hs_dg_free(&con);
}

/* The rates are the caller's: an endpoint passes its connect_rate and
 * connect_rate_per_source.  At 1000 a second per source, a burst is 100
 * (0.1 s), then one reply a ms; 0 keeps the constants. */
Test(ratelimit, rates_set_by_the_caller)
{
	struct ferry_hs_server_result sr;
	struct hs_dg con;
	int sent = 0;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	ferry__hs_server_set_rates(&g_s, 1000, 0);
	con = hs_connect(&g_c);
	for (int i = 0; i < 150; i++)
		sent += hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr) ==
			FERRY_HS_REPLY;
	cr_assert_eq(sent, 100);
	cr_assert_str_eq(sr.drop, "retry_ratelimited");
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0 + NS / 1000, NULL, &sr),
		     FERRY_HS_REPLY);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0 + NS / 1000, NULL, &sr),
		     FERRY_HS_DROP);
	/* A global rate of 2000: a burst of 20, whatever the sources. */
	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	ferry__hs_server_set_rates(&g_s, 0, 2000);
	sent = 0;
	for (int i = 0; i < 40; i++)
		sent += hs_srv_in(&g_s, &con, hs_addr((uint8_t)(10 + i), 1),
				  T0, NULL, &sr) == FERRY_HS_REPLY;
	cr_assert_eq(sent, 20);
	hs_dg_free(&con);
}

/* Which budget a CONNECT is charged to, by a peek: a COOKIE right after
 * HELLO, in the envelope or bare; never a read past the datagram. */
Test(connect, cookie_seen_by_a_peek)
{
	struct hs_dg con, ck;
	size_t hello, at;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	ck = connect_with_cookie(T0);
	cr_assert_not(ferry__hs_server_has_cookie(con.p, con.len));
	cr_assert(ferry__hs_server_has_cookie(ck.p, ck.len));
	/* Bare (section 4.2: a v2 server takes it too). */
	cr_assert(ferry__hs_server_has_cookie(ck.p + FERRY_W2_ENV_LEN,
					      ck.len - FERRY_W2_ENV_LEN));
	cr_assert_not(ferry__hs_server_has_cookie(con.p + FERRY_W2_ENV_LEN,
						  con.len - FERRY_W2_ENV_LEN));
	/* Every prefix that ends before the COOKIE's type byte: no. */
	hello = FERRY_W2_ENV_LEN + FERRY_W2_LONG_HDR_LEN;
	at = hello + FERRY_W2_FRAME_HDR_LEN +
	     (size_t)(ck.p[hello + 2] << 8 | ck.p[hello + 3]);
	cr_assert_eq(ck.p[at], FERRY_W2_COOKIE);
	for (size_t n = 0; n <= at; n++) {
		uint8_t *p = malloc(n ? n : 1);

		cr_assert_not_null(p);
		memcpy(p, ck.p, n);
		cr_assert_not(ferry__hs_server_has_cookie(p, n), "%zu", n);
		free(p);
	}
	/* Not a HELLO first: no, whatever follows. */
	ck.p[FERRY_W2_ENV_LEN + FERRY_W2_LONG_HDR_LEN] = FERRY_W2_PADDING;
	cr_assert_not(ferry__hs_server_has_cookie(ck.p, ck.len));
	hs_dg_free(&con);
	hs_dg_free(&ck);
}

/* v1 refusals spend the same buckets. */
Test(ratelimit, v1_refusals_limited_too)
{
	struct ferry_hs_server_result sr;
	struct ferry_hdr h = {.type = FERRY_FT_CONNECT, .src_sess = 5,
			      .credit = 64};
	struct ferry_connect_body cb = {.have_params = true,
					.params = {1u << 20, 64, 1472, 64}};
	uint8_t buf[128];
	struct hs_dg con;
	int sent = 0;

	h.msg_len = (uint32_t)ferry__wire_put_connect(buf + 44, 64, &cb);
	ferry__wire_encode(&h, buf);
	con = hs_dg(buf, 44 + h.msg_len);
	ferry__hs_server_init(&g_s, FERRY_HS_RETRY_ALWAYS, T0);
	for (int i = 0; i < 12; i++)
		sent += hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr) ==
			FERRY_HS_REPLY;
	cr_assert_eq(sent, 10);
	cr_assert_str_eq(sr.drop, "retry_ratelimited");
	hs_dg_free(&con);
}

/* Global: 2000 at once from many sources, then 200 per millisecond. */
Test(ratelimit, global_burst_then_refill)
{
	struct ferry_hs_server_result sr;
	struct hs_dg con;
	int sent = 0;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	for (uint32_t i = 0; i < 3000; i++) {
		struct ferry_addr a = {htonl(0x0a000000u + i), 1};

		sent += hs_srv_in(&g_s, &con, a, T0, NULL, &sr) ==
			FERRY_HS_REPLY;
	}
	cr_assert_eq(sent, FERRY_HS_GLOBAL_BURST);
	sent = 0;
	for (uint32_t i = 0; i < 400; i++) {
		struct ferry_addr a = {htonl(0x0b000000u + i), 1};

		sent += hs_srv_in(&g_s, &con, a, T0 + NS / 1000, NULL, &sr) ==
			FERRY_HS_REPLY;
	}
	cr_assert_eq(sent, FERRY_HS_GLOBAL_RATE / 1000);
	hs_dg_free(&con);
}

/* Retry never: admissions without a cookie spend the buckets as RETRYs
 * would, since their ACCEPT or REFUSE goes to an unproven address. */
Test(ratelimit, retry_never_admissions_limited)
{
	struct ferry_hs_server_result sr;
	struct hs_dg con;
	int admitted = 0;

	init_pair(FERRY_HS_RETRY_NEVER, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	for (int i = 0; i < 12; i++)
		admitted += hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr) ==
			    FERRY_HS_ADMIT;
	cr_assert_eq(admitted, 10);
	cr_assert_str_eq(sr.drop, "retry_ratelimited");
	hs_dg_free(&con);
}

/* An answer to an unproven address stays within 3x its CONNECT. */
Test(amplification, answers_to_unproven_addresses)
{
	struct ferry_hs_server_cfg sc = hs_scfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry__seal_keys k;
	uint8_t buf[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con;

	init_pair(FERRY_HS_RETRY_NEVER, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_ADMIT);
	cr_assert_not(sr.conn.validated);
	cr_assert_leq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					      buf, sizeof(buf)),
		      3 * (int)con.len);
	/* Pretend the CONNECT was tiny: neither answer may go. */
	sr.conn.rx_len = 10;
	cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					     buf, sizeof(buf)),
		     -EMSGSIZE);
	cr_assert_eq(ferry__hs_server_refuse(&sr.conn, FERRY_EREJECTED, NULL,
					     buf, sizeof(buf)),
		     -EMSGSIZE);
	/* Validated by a cookie: the cap is the buffer's. */
	sr.conn.validated = true;
	cr_assert_eq(ferry__hs_server_refuse(&sr.conn, FERRY_EREJECTED, NULL,
					     buf, sizeof(buf)),
		     32);
	hs_dg_free(&con);
}

/* --- CONNECT's own rules -------------------------------------------------- */

/* The same CONNECT without its padding: under 512 bytes, dropped, in the
 * envelope and bare. */
Test(connect, under_512_bytes_dropped)
{
	struct ferry_hs_server_result sr;
	struct ferry_w2_dgram d;
	uint8_t buf[FERRY_HS_CONNECT_MAX], inner[600];
	struct ferry_w2_iter it;
	struct ferry_w2_frame f;
	struct ferry_params v1 = {8u << 20, 128, 1472, 128};
	struct hs_dg con, small;
	uint32_t id;
	size_t n = 18;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	cr_assert_eq(ferry__w2_envelope_open(con.p, con.len, &d, &id),
		     FERRY_W2_OK);
	memcpy(inner, d.start, 18);
	ferry__w2_iter_init(&it, &d);
	while (ferry__w2_iter_next(&it, &f) > 0)
		if (f.type != FERRY_W2_PADDING) {
			memcpy(inner + n, f.body - 4, 4u + f.len);
			n += 4u + f.len;
		}
	ferry__w2_put_crc(inner, n);
	n += 4;
	memcpy(buf + FERRY_W2_ENV_LEN, inner, n);
	small = hs_dg(buf, (size_t)ferry__w2_envelope_wrap(buf, n, &v1));
	cr_assert_lt(small.len, 512);
	cr_assert_eq(hs_srv_in(&g_s, &small, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_malformed");
	hs_dg_free(&small);
	small = hs_dg(inner, n);
	cr_assert_eq(hs_srv_in(&g_s, &small, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_malformed");
	hs_dg_free(&small);
	/* Bare, the inner CONNECT of a 512-byte envelope is 444 bytes: too
	 * short on its own. */
	small = hs_dg(d.start, con.len - FERRY_W2_ENV_LEN);
	cr_assert_eq(hs_srv_in(&g_s, &small, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	hs_dg_free(&small);
	hs_dg_free(&con);
}

/* Change the byte at @off of @con's inner CONNECT to @v and fix the CRC, as
 * an on-path attacker can. */
static void patch_inner(struct hs_dg *con, size_t off, uint8_t v)
{
	uint8_t *inner = con->p + FERRY_W2_ENV_LEN;
	size_t n = con->len - FERRY_W2_ENV_LEN - 4;

	inner[off] = v;
	ferry__w2_put_crc(inner, n);
}

Test(connect, rules_before_any_state)
{
	struct ferry_hs_server_result sr;
	struct hs_dg con, x;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	/* A flipped bit anywhere in the inner CONNECT: drop_bad_crc. */
	con.p[300] ^= 1;
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_bad_crc");
	con.p[300] ^= 1;
	/* HELLO that does not name v2. */
	patch_inner(&con, 18 + 5, 0x02);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_bad_version");
	patch_inner(&con, 18 + 5, 0x04);
	/* HELLO's reserved byte. */
	patch_inner(&con, 18 + 7, 1);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_malformed");
	patch_inner(&con, 18 + 7, 0);
	/* The envelope id must be the SCID's low 32 bits. */
	con.p[15] ^= 1;
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_malformed");
	con.p[15] ^= 1;
	/* Long headers other than CONNECT, a short header, garbage. */
	x = hs_dg(con.p + FERRY_W2_ENV_LEN, con.len - FERRY_W2_ENV_LEN);
	x.p[0] = 0xc1;
	cr_assert_eq(hs_srv_in(&g_s, &x, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_malformed"); /* RETRY with SCID */
	x.p[0] = 0xc5;
	cr_assert_eq(hs_srv_in(&g_s, &x, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_bad_type");
	x.p[0] = 0x81;
	cr_assert_eq(hs_srv_in(&g_s, &x, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_unknown_session");
	x.p[0] = 0x12;
	cr_assert_eq(hs_srv_in(&g_s, &x, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_bad_magic");
	x.p[0] = 0xc0;
	x.p[1] = 3;
	cr_assert_eq(hs_srv_in(&g_s, &x, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	cr_assert_str_eq(sr.drop, "drop_bad_version");
	hs_dg_free(&x);
	/* A v1 frame other than CONNECT. */
	con.p[3] = 2; /* ACCEPT */
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_DROP);
	hs_dg_free(&con);
}

/* --- the client's rules ---------------------------------------------------- */

/* A RETRY built by a server for @cid. */
static struct hs_dg retry_for(uint64_t cid)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client other;
	struct hs_dg con, rep;

	cc.cid = cid;
	cr_assert_eq(ferry__hs_client_init(&other, &cc), 0);
	con = hs_connect(&other);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, &rep, &sr), FERRY_HS_REPLY);
	hs_dg_free(&con);
	return rep;
}

Test(client, takes_only_its_first_retry)
{
	struct ferry_hs_client_result cr;
	struct hs_dg r;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	r = retry_for(g_c.cid ^ 0x100000000ull);
	cr_assert_eq(hs_cli_in(&g_c, &r, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_stale");
	cr_assert_not(g_c.have_cookie);
	hs_dg_free(&r);
	r = retry_for(g_c.cid);
	r.p[30] ^= 1;
	cr_assert_eq(hs_cli_in(&g_c, &r, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_bad_crc");
	r.p[30] ^= 1;
	cr_assert_eq(hs_cli_in(&g_c, &r, &cr), FERRY_HS_RETRY);
	cr_assert_eq(hs_cli_in(&g_c, &r, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_stale");
	hs_dg_free(&r);
}

Test(client, refuse_and_odd_datagrams)
{
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	uint8_t buf[FERRY_HS_REPLY_MAX];
	struct hs_dg con, x;
	int n;

	init_pair(FERRY_HS_RETRY_NEVER, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_ADMIT);
	/* The client's own CONNECT, a short header, garbage, nothing. */
	x = hs_dg(con.p + FERRY_W2_ENV_LEN, con.len - FERRY_W2_ENV_LEN);
	cr_assert_eq(hs_cli_in(&g_c, &x, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_bad_type");
	x.p[0] = 0x81;
	cr_assert_eq(hs_cli_in(&g_c, &x, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_unknown_session");
	x.p[0] = 0x00;
	cr_assert_eq(hs_cli_in(&g_c, &x, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_bad_magic");
	cr_assert_eq(ferry__hs_client_input(&g_c, x.p, 0, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_truncated");
	hs_dg_free(&x);
	/* The client's own v1 envelope: a v1 frame, not an ERROR. */
	cr_assert_eq(hs_cli_in(&g_c, &con, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_bad_version");
	/* REFUSE for another CID, then for ours. */
	n = ferry__hs_server_refuse(&sr.conn, 1, NULL, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	x = hs_dg(buf, (size_t)n);
	x.p[9] ^= 1;
	cr_assert_eq(hs_cli_in(&g_c, &x, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_stale");
	x.p[9] ^= 1;
	cr_assert_eq(hs_cli_in(&g_c, &x, &cr), FERRY_HS_FAILED);
	cr_assert_eq(cr.err, -FERRY_EREJECTED);
	hs_dg_free(&x);
	hs_dg_free(&con);
}

/* Every byte of ACCEPT matters: each flipped, the client drops it (the
 * tag, or rules before it) and still takes the genuine one after. */
Test(client, modified_accept_dropped)
{
	struct ferry_hs_server_cfg sc = hs_scfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry__seal_keys k;
	uint8_t acc[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con, a;
	int auth = 0;

	init_pair(FERRY_HS_RETRY_ALWAYS, FERRY_W2_MODE_MAC);
	con = connect_with_cookie(T0);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_ADMIT);
	cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					     acc, sizeof(acc)),
		     FERRY_HS_ACCEPT_LEN);
	for (size_t i = 0; i < FERRY_HS_ACCEPT_LEN; i++) {
		a = hs_dg(acc, FERRY_HS_ACCEPT_LEN);
		a.p[i] ^= 0x01;
		cr_assert_eq(hs_cli_in(&g_c, &a, &cr), FERRY_HS_DROP,
			     "byte %zu", i);
		auth += strcmp(cr.drop, "drop_auth") == 0;
		hs_dg_free(&a);
	}
	/* All but the bytes that break a rule checked before the tag fail on
	 * it: the type, version and DCID (10 bytes), the three frame headers
	 * (12), HELLO's versions and reserved byte (3) and PARAMS's reserved
	 * byte (1). */
	cr_assert_eq(auth, FERRY_HS_ACCEPT_LEN - 26);
	a = hs_dg(acc, FERRY_HS_ACCEPT_LEN);
	cr_assert_eq(hs_cli_in(&g_c, &a, &cr), FERRY_HS_ACCEPTED);
	hs_dg_free(&a);
	hs_dg_free(&con);
}

/* An on-path attacker lowers the client's HELLO mode (and fixes the CRC):
 * the server derives from another transcript, and the client drops the
 * ACCEPT (drop_auth), so the weaker mode is never used. */
Test(client, mode_downgrade_in_connect_fails_auth)
{
	struct ferry_hs_server_cfg sc = hs_scfg(FERRY_W2_MODE_NONE);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct ferry__seal_keys k;
	uint8_t acc[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con, a;

	init_pair(FERRY_HS_RETRY_NEVER, FERRY_W2_MODE_AEAD);
	con = hs_connect(&g_c);
	cr_assert_eq(con.p[FERRY_W2_ENV_LEN + 18 + 6], FERRY_W2_MODE_AEAD);
	patch_inner(&con, 18 + 6, FERRY_W2_MODE_NONE);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_ADMIT);
	cr_assert_eq(sr.conn.client_mode, FERRY_W2_MODE_NONE);
	cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					     acc, sizeof(acc)),
		     FERRY_HS_ACCEPT_LEN);
	cr_assert_eq(mode, FERRY_W2_MODE_NONE);
	a = hs_dg(acc, FERRY_HS_ACCEPT_LEN);
	cr_assert_eq(hs_cli_in(&g_c, &a, &cr), FERRY_HS_DROP);
	cr_assert_str_eq(cr.drop, "drop_auth");
	hs_dg_free(&a);
	hs_dg_free(&con);
}

/* An ACCEPT made honestly (so its tag verifies) by a server that says
 * @versions and @mode, for the client of a CONNECT admitted in @conn. */
static struct hs_dg honest_accept(const struct ferry_hs_conn *conn,
				  uint16_t versions, uint8_t mode)
{
	struct ferry__seal_keys k;
	uint8_t spk[32], ssk[32], buf[FERRY_HS_REPLY_MAX];
	struct ferry_w2_dgram d = {.is_long = true, .type = FERRY_W2_ACCEPT,
				   .version = FERRY_W2_VERSION,
				   .scid = 0x1122334455667788ull};
	struct ferry_w2_frame fs[2] = {{.type = FERRY_W2_HELLO},
				       {.type = FERRY_W2_PARAMS}};
	struct ferry_w2_builder b;
	int n;

	crypto_kx_keypair(spk, ssk);
	cr_assert_eq(ferry__seal_keys_server(spk, ssk, conn->client_pk,
					     conn->th, NULL, &k),
		     0);
	d.dcid = conn->client_cid;
	fs[0].u.hello = (struct ferry_w2_hello){versions, mode, spk};
	fs[1].u.params = hs_params();
	cr_assert_eq(ferry__w2_build_begin(&b, buf, sizeof(buf), &d), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry__w2_build_frame(&b, &fs[i]), 0);
	n = ferry__w2_build_end(&b);
	n = ferry__seal(FERRY_SEAL_MAC, k.s2c, 0, buf, 18, (size_t)n - 16);
	return hs_dg(buf, (size_t)n);
}

/* A server that picks a mode weaker than the client's, or another wire
 * version, in an authentic ACCEPT: the client refuses the session. */
Test(client, weaker_mode_or_other_version_in_authentic_accept_refused)
{
	static const struct {
		uint16_t versions;
		uint8_t mode;
		int err;
	} cases[] = {
		{FERRY_W2_VERSIONS_BIT, FERRY_W2_MODE_MAC, -FERRY_EPROTO},
		{FERRY_W2_VERSIONS_BIT, FERRY_W2_MODE_NONE, -FERRY_EPROTO},
		{1u << 3, FERRY_W2_MODE_AEAD, -FERRY_EVERSION},
		{FERRY_W2_VERSIONS_BIT, FERRY_W2_MODE_AEAD, 0},
	};
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	struct hs_dg con, a;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		init_pair(FERRY_HS_RETRY_NEVER, FERRY_W2_MODE_AEAD);
		con = hs_connect(&g_c);
		cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr),
			     FERRY_HS_ADMIT);
		a = honest_accept(&sr.conn, cases[i].versions, cases[i].mode);
		if (cases[i].err) {
			cr_assert_eq(hs_cli_in(&g_c, &a, &cr), FERRY_HS_FAILED,
				     "case %zu", i);
			cr_assert_eq(cr.err, cases[i].err);
		} else {
			cr_assert_eq(hs_cli_in(&g_c, &a, &cr),
				     FERRY_HS_ACCEPTED);
		}
		hs_dg_free(&a);
		hs_dg_free(&con);
	}
}

/* A copied token without its holder key: the copier's POP (made with a
 * guessed hk) fails, and it is refused with the generic code only. */
Test(client, copied_token_without_hk_refused_generically)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry_hs_client_result cr;
	uint8_t hk[32], guess[32] = {0}, tok[150], buf[FERRY_HS_REPLY_MAX];
	struct hs_dg con, rf;
	int n;

	randombytes_buf(hk, sizeof(hk));
	randombytes_buf(tok, sizeof(tok));
	cc.token = tok;
	cc.token_len = sizeof(tok);
	cc.hk = guess;
	cr_assert_eq(ferry__hs_client_init(&g_c, &cc), 0);
	ferry__hs_server_init(&g_s, FERRY_HS_RETRY_ALWAYS, T0);
	con = connect_with_cookie(T0);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_ADMIT);
	/* The server opens the token and finds the issuer's hk inside. */
	cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, hk), -EBADMSG);
	cr_assert_not(sr.conn.pop_ok);
	n = ferry__hs_server_refuse(&sr.conn, 4357, "token expired", buf,
				    sizeof(buf));
	rf = hs_dg(buf, (size_t)n);
	cr_assert_eq(hs_cli_in(&g_c, &rf, &cr), FERRY_HS_FAILED);
	cr_assert_eq(cr.err, -FERRY_EREJECTED);
	hs_dg_free(&rf);
	hs_dg_free(&con);
}

/* POP covers the cookie: the bytes of another cookie under the same POP
 * do not pass. */
Test(client, pop_covers_the_cookie)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	uint8_t hk[32] = {5}, tok[100] = {6};
	struct hs_dg con;

	cc.token = tok;
	cc.token_len = sizeof(tok);
	cc.hk = hk;
	cr_assert_eq(ferry__hs_client_init(&g_c, &cc), 0);
	ferry__hs_server_init(&g_s, FERRY_HS_RETRY_ALWAYS, T0);
	con = connect_with_cookie(T0);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_ADMIT);
	cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, hk), 0);
	cr_assert(sr.conn.pop_ok);
	/* A byte of the cookie's MAC, in the bytes the conn points to. */
	cr_assert_eq(con.p[FERRY_W2_ENV_LEN + 18 + 40], FERRY_W2_COOKIE);
	con.p[FERRY_W2_ENV_LEN + 18 + 40 + 10] ^= 1;
	cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, hk), -EBADMSG);
	cr_assert_not(sr.conn.pop_ok);
	hs_dg_free(&con);
}

Test(client, config_checked)
{
	struct ferry_hs_client_cfg cc = hs_ccfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_client c;
	uint8_t hk[32] = {0}, tok[4] = {1};

	cc.mode = 3;
	cr_assert_eq(ferry__hs_client_init(&c, &cc), -EINVAL);
	cc = hs_ccfg(FERRY_W2_MODE_MAC);
	cc.params.max_frame = 1199;
	cr_assert_eq(ferry__hs_client_init(&c, &cc), -EINVAL);
	cc = hs_ccfg(FERRY_W2_MODE_MAC);
	cc.traceparent = "00-short";
	cr_assert_eq(ferry__hs_client_init(&c, &cc), -EINVAL);
	cc = hs_ccfg(FERRY_W2_MODE_MAC);
	cc.token = tok;
	cc.token_len = sizeof(tok);
	cr_assert_eq(ferry__hs_client_init(&c, &cc), -EINVAL); /* no hk */
	cc.hk = hk;
	cc.token_len = 0;
	cr_assert_eq(ferry__hs_client_init(&c, &cc), -EINVAL);
	cc = hs_ccfg(FERRY_W2_MODE_MAC);
	cc.cid = 0x1234567800000000ull;
	cr_assert_eq(ferry__hs_client_init(&c, &cc), -EINVAL);
}

Test(server, accept_and_refuse_arguments)
{
	struct ferry_hs_server_cfg sc = hs_scfg(FERRY_W2_MODE_MAC);
	struct ferry_hs_server_result sr;
	struct ferry__seal_keys k;
	uint8_t buf[FERRY_HS_REPLY_MAX], mode;
	struct hs_dg con;

	init_pair(FERRY_HS_RETRY_NEVER, FERRY_W2_MODE_MAC);
	con = hs_connect(&g_c);
	cr_assert_eq(hs_srv_in(&g_s, &con, CLI, T0, NULL, &sr), FERRY_HS_ADMIT);
	cr_assert_eq(ferry__hs_server_check_pop(&sr.conn, buf), -EINVAL);
	sc.cid = 0;
	cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					     buf, sizeof(buf)),
		     -EINVAL);
	sc = hs_scfg(FERRY_W2_MODE_MAC);
	cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					     buf, 101),
		     -EMSGSIZE);
	/* A low-order public key (all zeros): X25519 refuses it. */
	memset(sr.conn.client_pk, 0, 32);
	cr_assert_eq(ferry__hs_server_accept(&sr.conn, &sc, NULL, &k, &mode,
					     buf, sizeof(buf)),
		     -EINVAL);
	cr_assert_eq(ferry__hs_server_refuse(&sr.conn, 0, NULL, buf,
					     sizeof(buf)),
		     -EINVAL);
	hs_dg_free(&con);
}
