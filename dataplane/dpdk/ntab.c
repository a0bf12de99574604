/* SPDX-License-Identifier: MIT */
/*
 * The neighbour table's policy (see ntab.h): lookups, which entry a new
 * one replaces, and which replies are believed.  No DPDK, no locks: the
 * caller (neigh.c) holds the port's.
 */
#include "ntab.h"

#include <string.h>

static int ntab_find(const struct ferry__ntab *t, uint32_t ip)
{
	for (int i = 0; i < FERRY__NTAB_MAX; i++)
		if (t->ip[i] == ip)
			return i;
	return -1;
}

/* Time since @t: 0 if @t is later than @now (the callers' clocks are
 * read at different moments, by different lanes). */
static uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

static bool ntab_pinned(const struct ferry__neigh *e, uint64_t now)
{
	return since(now, e->used_ns) < FERRY__NTAB_PIN_NS;
}

/*
 * The entry a new one takes: the oldest incomplete one once that tier is
 * full; else a free one; else the least recently used resolved entry not
 * pinned; else the oldest incomplete one.  -1 if there is none (every
 * entry resolved and pinned).  A resolved entry idle for longer than
 * FERRY__NTAB_PIN_NS goes before an incomplete one: it is asked for again
 * when next needed, whereas an incomplete one pushed out loses the answer
 * it is waiting for.
 */
static int ntab_victim(const struct ferry__ntab *t, uint64_t now)
{
	int free_i = -1, inc = -1, lru = -1;
	unsigned ninc = 0;

	for (int i = 0; i < FERRY__NTAB_MAX; i++) {
		const struct ferry__neigh *e = &t->e[i];

		if (t->ip[i] == 0) {
			if (free_i < 0)
				free_i = i;
		} else if (!e->known) {
			ninc++;
			if (inc < 0 || e->born_ns < t->e[inc].born_ns)
				inc = i;
		} else if (!ntab_pinned(e, now) &&
			   (lru < 0 || e->used_ns < t->e[lru].used_ns)) {
			lru = i;
		}
	}
	if (ninc >= FERRY__NTAB_INCOMPLETE_MAX)
		return inc;
	if (free_i >= 0)
		return free_i;
	return lru >= 0 ? lru : inc;
}

enum ferry__ntab_res ferry__ntab_resolve(struct ferry__ntab *t, uint32_t ip,
					 uint64_t now, bool add, uint8_t *mac,
					 bool *ask)
{
	int i = ntab_find(t, ip);
	struct ferry__neigh *e;

	*ask = false;
	if (ip == 0)
		return FERRY__NTAB_NONE;
	if (i < 0) {
		if (!add)
			return FERRY__NTAB_NONE;
		i = ntab_victim(t, now);
		if (i < 0)
			return FERRY__NTAB_FULL;
		e = &t->e[i];
		memset(e, 0, sizeof(*e));
		t->ip[i] = ip;
		e->born_ns = now;
		e->used_ns = now;
		e->asking = true;
		e->asked_ns = now;
		*ask = true;
		return FERRY__NTAB_WAIT;
	}
	e = &t->e[i];
	if (now > e->used_ns)
		e->used_ns = now;
	/* Unanswered, or stale: ask again, rate-limited per address. */
	if ((!e->known || since(now, e->heard_ns) >= FERRY__NTAB_TTL_NS) &&
	    (!e->asking || since(now, e->asked_ns) >= FERRY__NTAB_ASK_NS)) {
		e->asking = true;
		e->asked_ns = now;
		*ask = true;
	}
	if (!e->known)
		return FERRY__NTAB_WAIT;
	memcpy(mac, e->mac, sizeof(e->mac));
	return FERRY__NTAB_KNOWN;
}

int ferry__ntab_answer(struct ferry__ntab *t, uint32_t ip, const uint8_t *mac,
		       uint64_t now)
{
	int i = ip ? ntab_find(t, ip) : -1;
	struct ferry__neigh *e;

	if (i < 0)
		return -1;
	e = &t->e[i];
	if (!e->asking || since(now, e->asked_ns) >= FERRY__NTAB_ANSWER_NS)
		return -1;
	/* One answer per request: the first is believed, later ones (a
	 * duplicate, or an attacker's race) are unsolicited. */
	e->asking = false;
	e->known = true;
	e->heard_ns = now;
	memcpy(e->mac, mac, sizeof(e->mac));
	return 0;
}

const struct ferry__neigh *ferry__ntab_get(const struct ferry__ntab *t,
					   uint32_t ip)
{
	int i = ip ? ntab_find(t, ip) : -1;

	return i < 0 ? NULL : &t->e[i];
}
