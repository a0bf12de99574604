/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's neighbour table as policy: which peers' MACs a port
 * holds, which entries a new one may push out, and which ARP replies it
 * believes.  Like frame.c it has no DPDK in it, so it is tested
 * (tests/test_dpdk_neigh.c) without the EAL; neigh.c holds the port's lock
 * around it, sends the ARP frames it asks for and keeps the counters.
 *
 * The rules (docs/dpdk.md, "Neighbours"), each against an attacker on the
 * link who sends whatever ARP it likes from whatever address it likes:
 *  - Only our own transmit to an address the table does not hold makes an
 *    entry (ferry__ntab_resolve): an incomplete one, and a request to send.
 *    Nothing received ever makes one; a received ARP request is answered
 *    (frame.c decides) and changes nothing here.
 *  - A reply is believed only for an address we have a request outstanding
 *    for (sent within FERRY__NTAB_ANSWER_NS), and only once: believing it
 *    ends the request, so a second answer, or an attacker's, changes
 *    nothing (ferry__ntab_answer).  Unsolicited and gratuitous replies are
 *    never learnt from.
 *  - An entry we transmitted to within FERRY__NTAB_PIN_NS is pinned: no new
 *    entry pushes it out.  Incomplete entries are a tier of at most
 *    FERRY__NTAB_INCOMPLETE_MAX: past that, a new one pushes out the oldest
 *    incomplete one, so a flood of destinations that never answer churns
 *    only that tier.
 *  - A MAC not confirmed for FERRY__NTAB_TTL_NS is stale: still used, and
 *    asked for again (at most every FERRY__NTAB_ASK_NS) so that a peer's
 *    new MAC is learnt from the answer to our own request.
 *
 * Times are CLOCK_MONOTONIC nanoseconds; addresses are in network order.
 */
#ifndef FERRY_DPDK_NTAB_H
#define FERRY_DPDK_NTAB_H

#include <stdbool.h>
#include <stdint.h>

#define FERRY__NTAB_MAX 256             /* entries per port */
#define FERRY__NTAB_INCOMPLETE_MAX 64   /* of which waiting for an answer */
#define FERRY__NTAB_ASK_NS 200000000ull /* between requests for one address */
/* A request is outstanding this long after it was sent (on a link, an
 * answer takes microseconds; unanswered ones are sent again meanwhile). */
#define FERRY__NTAB_ANSWER_NS 1000000000ull
#define FERRY__NTAB_TTL_NS 60000000000ull /* a MAC is confirmed again after */
/* Transmitted to within this: pinned.  Longer than the transport's
 * keepalive (1 s by default), so a live session's peer stays pinned. */
#define FERRY__NTAB_PIN_NS 30000000000ull

struct ferry__neigh {
	bool known;  /* mac holds an answer */
	bool asking; /* a request is outstanding, sent at asked_ns */
	uint8_t mac[6];
	uint64_t born_ns;  /* made (by our transmit) */
	uint64_t heard_ns; /* the last answer believed */
	uint64_t asked_ns; /* the last request sent */
	uint64_t used_ns;  /* the last transmit to it */
};

/* Zeroed: empty.  The addresses sit apart from the rest so that a lookup
 * scans 1 KiB. */
struct ferry__ntab {
	uint32_t ip[FERRY__NTAB_MAX]; /* 0: a free entry */
	struct ferry__neigh e[FERRY__NTAB_MAX];
};

enum ferry__ntab_res {
	FERRY__NTAB_KNOWN, /* *mac filled: send */
	FERRY__NTAB_WAIT,  /* not resolved yet: hold the datagram */
	FERRY__NTAB_NONE,  /* no entry (lookup only): drop what waits for it */
	FERRY__NTAB_FULL,  /* no entry and no room (every entry pinned): drop */
};

/*
 * Our transmit to @ip at @now: marks the entry used (pins it) and returns
 * its MAC in @mac (6 bytes) if known, even stale.  With @add, an address
 * the table does not hold gets an incomplete entry, pushing out another
 * (see above) or, if all are pinned, none (FERRY__NTAB_FULL); without it,
 * FERRY__NTAB_NONE.  *@ask: send an ARP request for @ip now (a new entry,
 * an unanswered or stale one, at most every FERRY__NTAB_ASK_NS).
 */
enum ferry__ntab_res ferry__ntab_resolve(struct ferry__ntab *t, uint32_t ip,
					 uint64_t now, bool add, uint8_t *mac,
					 bool *ask);

/*
 * An ARP reply addressed to us (frame.c checked that) says @ip is at @mac:
 * believed, 0, only while a request of ours for @ip is outstanding; else
 * -1 (unsolicited: nothing changes).
 */
int ferry__ntab_answer(struct ferry__ntab *t, uint32_t ip, const uint8_t *mac,
		       uint64_t now);

/* The entry for @ip, or NULL (for tests and tools). */
const struct ferry__neigh *ferry__ntab_get(const struct ferry__ntab *t,
					   uint32_t ip);

#endif /* FERRY_DPDK_NTAB_H */
