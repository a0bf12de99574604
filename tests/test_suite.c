/* SPDX-License-Identifier: MIT */
/*
 * The session's suite (docs/wire.md, 2.3): AES-256-GCM when both ends
 * offer it (FEATURES bit 6) in a mode that seals, ChaCha20-Poly1305
 * otherwise; calls small and large (fragmented, with lent payload buffers
 * sealed in pieces) arrive whole either way.  Written once and run on each
 * dataplane built in (tests/harness.h).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "transport/internal.h"

#define M_ECHO 1

/* The seal mode of @ep's one open session. */
static uint8_t seal_of(struct ferry_endpoint *ep)
{
	for (uint32_t i = 0; i < ep->nsessions; i++)
		if (ep->sessions[i].state == SESS_OPEN)
			return ep->sessions[i].seal;
	cr_assert_fail("no open session");
	return 0;
}

static int g_mode;

static void with_mode(struct ferry_ep_config *c)
{
	ep_big(c);
	c->wire_mode = g_mode;
}

/* Echo 32 small calls and two of 200,000 bytes (fragments: a lent buffer's
 * datagrams are sealed in pieces) over a session whose client and server
 * offer AES as given (-1: as the endpoint was made); the suite each end
 * settled on. */
static void run(int mode, int cli_aes, int srv_aes, uint8_t *cs, uint8_t *ss)
{
	struct ferry_endpoint *srv, *cli;
	static struct reply r[34];
	struct ferry_session *s;

	g_mode = mode;
	srv = ep_new(with_mode);
	cli = ep_new(with_mode);
	if (srv_aes >= 0)
		ferry__endpoint_offer_aes(srv, srv_aes);
	if (cli_aes >= 0)
		ferry__endpoint_offer_aes(cli, cli_aes);
	memset(r, 0, sizeof(r));
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	s = open_session(cli, srv);
	for (uint32_t i = 0; i < 34; i++) {
		r[i].seed = i;
		cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, i < 32 ? 40 + i :
						       200000, i),
					on_reply, &r[i]), 0);
	}
	cr_assert(pump_replies(cli, srv, r, 34), "calls never ended");
	for (int i = 0; i < 34; i++) {
		cr_assert_eq(r[i].res, 0, "call %d: %s", i,
			     ferry_strerror(r[i].res));
		cr_assert(r[i].data_ok, "call %d: payload", i);
	}
	*cs = seal_of(cli);
	*ss = seal_of(srv);
	cr_assert_eq(stats(srv).drop_auth, 0);
	cr_assert_eq(stats(cli).drop_auth, 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

static void t_aes_when_both_offer(void)
{
	uint8_t cs, ss;

	if (!ferry__seal_aes_available())
		cr_skip_test("no AES-NI/PCLMULQDQ: the AES suite is never offered");
	run(FERRY_WIRE_MAC, -1, -1, &cs, &ss); /* the default */
	cr_assert_eq(cs, FERRY_SEAL_MAC_AES);
	cr_assert_eq(ss, FERRY_SEAL_MAC_AES);
	run(FERRY_WIRE_AEAD, true, true, &cs, &ss);
	cr_assert_eq(cs, FERRY_SEAL_AEAD_AES);
	cr_assert_eq(ss, FERRY_SEAL_AEAD_AES);
}

/* Either end not offering it: ChaCha20-Poly1305 on both. */
static void t_chacha_unless_both_offer(void)
{
	uint8_t cs, ss;

	run(FERRY_WIRE_MAC, false, true, &cs, &ss);
	cr_assert_eq(cs, FERRY_SEAL_MAC);
	cr_assert_eq(ss, FERRY_SEAL_MAC);
	run(FERRY_WIRE_AEAD, true, false, &cs, &ss);
	cr_assert_eq(cs, FERRY_SEAL_AEAD);
	cr_assert_eq(ss, FERRY_SEAL_AEAD);
	/* FERRY_NO_AESGCM in the environment: every endpoint made then. */
	setenv("FERRY_NO_AESGCM", "1", 1);
	run(FERRY_WIRE_MAC, -1, -1, &cs, &ss);
	unsetenv("FERRY_NO_AESGCM");
	cr_assert_eq(cs, FERRY_SEAL_MAC);
	cr_assert_eq(ss, FERRY_SEAL_MAC);
}

/* `none` seals nothing: no suite. */
static void t_none_has_no_suite(void)
{
	uint8_t cs, ss;

	run(FERRY_WIRE_NONE, true, true, &cs, &ss);
	cr_assert_eq(cs, FERRY_SEAL_NONE);
	cr_assert_eq(ss, FERRY_SEAL_NONE);
}

#define SUITE_CASES(CASE, s)                                                   \
	CASE(s, aes_when_both_offer)                                           \
	CASE(s, chacha_unless_both_offer)                                      \
	CASE(s, none_has_no_suite)

HARNESS_BATTERY(suite, SUITE_CASES, .timeout = 120)
