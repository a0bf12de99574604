/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's neighbour-table policy (dataplane/dpdk/ntab.c), with
 * no DPDK: which entries exist, which replies are believed, what a new
 * entry may push out.  Each attack of issue 14's "DPDK neighbours" has a
 * case here; tests/test_dpdk_arp.c plays the same attacks on a live port.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <string.h>

#include "dataplane/dpdk/ntab.h"

#define S 1000000000ull /* one second, in ns */

static const uint8_t k_peer[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t k_evil[6] = { 0x02, 0, 0, 0, 0, 0xee };

static struct ferry__ntab *tab(void)
{
	static struct ferry__ntab t;

	memset(&t, 0, sizeof(t));
	return &t;
}

/* 10.0.<n / 256>.<n % 256>, network order, never 0. */
static uint32_t ip_of(unsigned n)
{
	return htonl(0x0a000000u + n + 1);
}

static enum ferry__ntab_res resolve(struct ferry__ntab *t, uint32_t ip,
				    uint64_t now, bool add, uint8_t *mac,
				    bool *ask)
{
	uint8_t m[6];
	bool a;

	return ferry__ntab_resolve(t, ip, now, add, mac ? mac : m,
				   ask ? ask : &a);
}

/* @ip resolved to @mac at @now, by our request and its answer. */
static void learn(struct ferry__ntab *t, uint32_t ip, const uint8_t *mac,
		  uint64_t now)
{
	bool ask;

	cr_assert_eq(resolve(t, ip, now, true, NULL, &ask), FERRY__NTAB_WAIT);
	cr_assert(ask);
	cr_assert_eq(ferry__ntab_answer(t, ip, mac, now), 0);
}

static unsigned count(const struct ferry__ntab *t, bool known)
{
	unsigned n = 0;

	for (unsigned i = 0; i < FERRY__NTAB_MAX; i++)
		n += t->ip[i] != 0 && t->e[i].known == known;
	return n;
}

/* A transmit to an unknown address makes an incomplete entry and asks;
 * it asks again at most every FERRY__NTAB_ASK_NS. */
Test(dpdk_neigh, transmit_asks)
{
	struct ferry__ntab *t = tab();
	uint64_t now = 100 * S;
	bool ask;

	cr_assert_eq(resolve(t, ip_of(1), now, true, NULL, &ask),
		     FERRY__NTAB_WAIT);
	cr_assert(ask);
	cr_assert_not_null(ferry__ntab_get(t, ip_of(1)));
	cr_assert_eq(resolve(t, ip_of(1), now + FERRY__NTAB_ASK_NS - 1, true,
			     NULL, &ask),
		     FERRY__NTAB_WAIT);
	cr_assert(!ask, "asked again too soon");
	cr_assert_eq(resolve(t, ip_of(1), now + FERRY__NTAB_ASK_NS, false,
			     NULL, &ask),
		     FERRY__NTAB_WAIT);
	cr_assert(ask);
	/* Address 0 is nobody's. */
	cr_assert_eq(resolve(t, 0, now, true, NULL, &ask), FERRY__NTAB_NONE);
	cr_assert(!ask);
}

/* A lookup without add (datagrams already waiting) makes nothing. */
Test(dpdk_neigh, lookup_makes_nothing)
{
	struct ferry__ntab *t = tab();
	bool ask;

	cr_assert_eq(resolve(t, ip_of(1), S, false, NULL, &ask),
		     FERRY__NTAB_NONE);
	cr_assert(!ask);
	cr_assert_null(ferry__ntab_get(t, ip_of(1)));
}

/* The answer to our request is believed, once: a second reply, however
 * quick, changes nothing. */
Test(dpdk_neigh, answer_believed_once)
{
	struct ferry__ntab *t = tab();
	uint8_t mac[6];

	learn(t, ip_of(1), k_peer, S);
	cr_assert_eq(resolve(t, ip_of(1), S + 1, true, mac, NULL),
		     FERRY__NTAB_KNOWN);
	cr_assert_eq(memcmp(mac, k_peer, 6), 0);
	cr_assert_eq(ferry__ntab_answer(t, ip_of(1), k_evil, S + 2), -1);
	cr_assert_eq(resolve(t, ip_of(1), S + 3, true, mac, NULL),
		     FERRY__NTAB_KNOWN);
	cr_assert_eq(memcmp(mac, k_peer, 6), 0, "the second reply won");
}

/* Replies for addresses we never asked for make no entry; for an address
 * we know, they change nothing. */
Test(dpdk_neigh, unsolicited_replies)
{
	struct ferry__ntab *t = tab();
	uint8_t mac[6];

	for (unsigned i = 2; i < 1000; i++)
		cr_assert_eq(ferry__ntab_answer(t, ip_of(i), k_evil, S), -1);
	cr_assert_eq(count(t, true) + count(t, false), 0);
	learn(t, ip_of(1), k_peer, S);
	for (uint64_t d = 0; d < 2 * FERRY__NTAB_TTL_NS; d += S)
		cr_assert_eq(ferry__ntab_answer(t, ip_of(1), k_evil, S + d),
			     -1);
	cr_assert_eq(resolve(t, ip_of(1), 2 * S, true, mac, NULL),
		     FERRY__NTAB_KNOWN);
	cr_assert_eq(memcmp(mac, k_peer, 6), 0);
	cr_assert_eq(ferry__ntab_answer(t, 0, k_evil, S), -1);
}

/* A request is outstanding for FERRY__NTAB_ANSWER_NS; a reply after that
 * is unsolicited (the entry waits for the next request's answer). */
Test(dpdk_neigh, answer_window)
{
	struct ferry__ntab *t = tab();
	uint64_t now = 10 * S;

	cr_assert_eq(resolve(t, ip_of(1), now, true, NULL, NULL),
		     FERRY__NTAB_WAIT);
	cr_assert_eq(ferry__ntab_answer(t, ip_of(1), k_evil,
					now + FERRY__NTAB_ANSWER_NS),
		     -1);
	cr_assert(!ferry__ntab_get(t, ip_of(1))->known);
	/* A clock read on another lane a little behind ours: still inside. */
	cr_assert_eq(ferry__ntab_answer(t, ip_of(1), k_peer, now - 5), 0);
}

/* A MAC not confirmed for FERRY__NTAB_TTL_NS is still used, and asked for
 * again: the answer to that request may change it. */
Test(dpdk_neigh, stale_asked_again)
{
	struct ferry__ntab *t = tab();
	uint64_t now = S + FERRY__NTAB_TTL_NS;
	uint8_t mac[6];
	bool ask;

	learn(t, ip_of(1), k_peer, S);
	cr_assert_eq(resolve(t, ip_of(1), now - 1, true, mac, &ask),
		     FERRY__NTAB_KNOWN);
	cr_assert(!ask);
	cr_assert_eq(resolve(t, ip_of(1), now, true, mac, &ask),
		     FERRY__NTAB_KNOWN);
	cr_assert(ask, "a stale MAC is confirmed again");
	cr_assert_eq(memcmp(mac, k_peer, 6), 0, "and used meanwhile");
	cr_assert_eq(resolve(t, ip_of(1), now + 1, true, mac, &ask),
		     FERRY__NTAB_KNOWN);
	cr_assert(!ask);
	cr_assert_eq(ferry__ntab_answer(t, ip_of(1), k_evil, now + 2), 0);
	cr_assert_eq(resolve(t, ip_of(1), now + 3, true, mac, &ask),
		     FERRY__NTAB_KNOWN);
	cr_assert_eq(memcmp(mac, k_evil, 6), 0);
	cr_assert(!ask);
}

/* Every entry resolved and transmitted to within FERRY__NTAB_PIN_NS: a
 * new destination gets no entry rather than push one out; once one is
 * idle for longer, it goes (the least recently used first). */
Test(dpdk_neigh, pinned_never_pushed_out)
{
	struct ferry__ntab *t = tab();
	uint64_t now = 100 * S;

	for (unsigned i = 0; i < FERRY__NTAB_MAX; i++)
		learn(t, ip_of(i), k_peer, now + i);
	now += FERRY__NTAB_MAX;
	cr_assert_eq(resolve(t, ip_of(1000), now, true, NULL, NULL),
		     FERRY__NTAB_FULL);
	cr_assert_null(ferry__ntab_get(t, ip_of(1000)));
	/* Keep all but entries 7 and 9 in use; 7 idles longest. */
	now += FERRY__NTAB_PIN_NS / 2;
	for (unsigned i = 0; i < FERRY__NTAB_MAX; i++)
		if (i != 7 && i != 9)
			resolve(t, ip_of(i), now, true, NULL, NULL);
	now += FERRY__NTAB_PIN_NS / 2;
	cr_assert_eq(resolve(t, ip_of(1000), now, true, NULL, NULL),
		     FERRY__NTAB_WAIT);
	cr_assert_null(ferry__ntab_get(t, ip_of(7)));
	cr_assert_not_null(ferry__ntab_get(t, ip_of(9)));
	cr_assert_eq(resolve(t, ip_of(1001), now + 1, true, NULL, NULL),
		     FERRY__NTAB_WAIT);
	cr_assert_null(ferry__ntab_get(t, ip_of(9)));
	cr_assert_eq(resolve(t, ip_of(1002), now + 2, true, NULL, NULL),
		     FERRY__NTAB_WAIT, "an incomplete entry gives way");
	cr_assert_null(ferry__ntab_get(t, ip_of(1000)));
	cr_assert_eq(count(t, true), FERRY__NTAB_MAX - 2);
}

/* Destinations that never answer (our answers to spoofed sources) churn
 * only the incomplete tier: oldest first, and never a resolved entry,
 * pinned or idle. */
Test(dpdk_neigh, unanswered_flood_churns_its_tier)
{
	struct ferry__ntab *t = tab();
	uint64_t now = 100 * S;
	uint8_t mac[6];

	/* 150 peers resolved long ago and idle; one in use now. */
	for (unsigned i = 0; i < 150; i++)
		learn(t, ip_of(i), k_peer, S);
	learn(t, ip_of(500), k_peer, now);
	for (unsigned i = 0; i < 1000; i++) {
		cr_assert_eq(resolve(t, ip_of(10000 + i), now + i, true, NULL,
				     NULL),
			     FERRY__NTAB_WAIT);
		cr_assert_leq(count(t, false), FERRY__NTAB_INCOMPLETE_MAX);
	}
	cr_assert_eq(count(t, true), 151);
	cr_assert_eq(count(t, false), FERRY__NTAB_INCOMPLETE_MAX);
	for (unsigned i = 0; i < 1000; i++)
		cr_assert_eq(ferry__ntab_get(t, ip_of(10000 + i)) != NULL,
			     i >= 1000 - FERRY__NTAB_INCOMPLETE_MAX, "%u", i);
	cr_assert_eq(resolve(t, ip_of(500), now + S, true, mac, NULL),
		     FERRY__NTAB_KNOWN);
	cr_assert_eq(memcmp(mac, k_peer, 6), 0);
	/* Its answer still arrives in time for the newest. */
	cr_assert_eq(ferry__ntab_answer(t, ip_of(10999), k_peer, now + 1000),
		     0);
}

/* A full table of resolved entries, none pinned but one: the flood pushes
 * idle ones out (up to its tier), never the one in use. */
Test(dpdk_neigh, flood_spares_the_pinned)
{
	struct ferry__ntab *t = tab();
	uint64_t now = 100 * S;
	uint8_t mac[6];

	for (unsigned i = 0; i < FERRY__NTAB_MAX - 1; i++)
		learn(t, ip_of(i), k_peer, S);
	learn(t, ip_of(500), k_peer, now - 1);
	for (unsigned i = 0; i < 1000; i++)
		cr_assert_eq(resolve(t, ip_of(10000 + i), now + i, true, NULL,
				     NULL),
			     FERRY__NTAB_WAIT);
	cr_assert_eq(count(t, false), FERRY__NTAB_INCOMPLETE_MAX);
	cr_assert_eq(count(t, true),
		     FERRY__NTAB_MAX - FERRY__NTAB_INCOMPLETE_MAX);
	cr_assert_eq(resolve(t, ip_of(500), now + S, true, mac, NULL),
		     FERRY__NTAB_KNOWN);
	cr_assert_eq(memcmp(mac, k_peer, 6), 0);
}
