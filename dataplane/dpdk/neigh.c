/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's neighbours: each port's table of peers' MACs,
 * learnt from ARP, each lane's small cache of it, ARP requests for
 * addresses not resolved yet and replies for the port's own addresses.
 * The ARP bytes themselves are read and written by frame.c.
 */
#include "dpdk.h"

#include <arpa/inet.h>
#include <string.h>

#include <rte_arp.h>

static bool ip_is_local(struct dpdk_port *p, uint32_t ip)
{
	for (unsigned i = 0; i < p->nlanes; i++)
		if (p->lanes[i]->ip == ip)
			return true;
	return false;
}

/* Under p->lock. */
static struct neigh *neigh_slot(struct dpdk_port *p, uint32_t ip, bool add)
{
	struct neigh *oldest = NULL;

	for (unsigned i = 0; i < NEIGH_MAX; i++) {
		struct neigh *n = &p->neigh[i];

		if (n->ip == ip)
			return n;
		if (!oldest || n->ip == 0 ||
		    (oldest->ip != 0 && n->heard_ns < oldest->heard_ns))
			oldest = n;
	}
	if (!add)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	oldest->ip = ip;
	return oldest;
}

static void neigh_learn(struct dpdk_port *p, uint32_t ip,
			const struct rte_ether_addr *mac)
{
	struct neigh *n;

	if (ip == 0)
		return;
	rte_spinlock_lock(&p->lock);
	n = neigh_slot(p, ip, true);
	n->known = true;
	n->mac = *mac;
	n->heard_ns = now_ns();
	rte_spinlock_unlock(&p->lock);
}

static void arp_send(struct lane *l, uint16_t op, uint32_t sip, uint32_t tip,
		     const struct rte_ether_addr *tha)
{
	struct dpdk_port *p = l->port;
	struct rte_mbuf *m = rte_pktmbuf_alloc(p->tx_pool);

	if (!m)
		return;
	ferry__arp_put((uint8_t *)rte_pktmbuf_append(m, FERRY__ARP_FRAME), op,
		       p->mac.addr_bytes, sip, tip, tha ? tha->addr_bytes : NULL);
	if (op == RTE_ARP_OP_REQUEST)
		l->st.arp_requests++;
	else
		l->st.arp_replies++;
	ferry__dpdk_lane_enqueue(l, m);
}

/* A received ARP frame: learn the sender, answer a request for one of the
 * port's addresses (from the polling lane: any lane may answer for the
 * port).  Consumes @m. */
void ferry__dpdk_arp_input(struct lane *l, struct rte_mbuf *m)
{
	struct dpdk_port *p = l->port;
	struct rte_ether_addr sha;
	struct ferry__arp a;
	unsigned act;
	bool ours;

	/* A short ARP, or one for other hardware or protocols: ignored. */
	if (ferry__arp_parse(rte_pktmbuf_mtod(m, const uint8_t *),
			     rte_pktmbuf_data_len(m), &a) < 0)
		goto out;
	rte_spinlock_lock(&p->lock);
	ours = ip_is_local(p, a.tip);
	rte_spinlock_unlock(&p->lock);
	act = ferry__arp_action(&a, ours);
	memcpy(sha.addr_bytes, a.sha, RTE_ETHER_ADDR_LEN);
	if (act & FERRY__ARP_LEARN)
		neigh_learn(p, a.sip, &sha);
	if (act & FERRY__ARP_REPLY)
		arp_send(l, RTE_ARP_OP_REPLY, a.tip, a.sip, &sha);
out:
	rte_pktmbuf_free(m);
}

/* The MAC for @ip: true and *mac if known; else asks (rate-limited). */
bool ferry__dpdk_neigh_resolve(struct lane *l, uint32_t ip,
			       struct rte_ether_addr *mac, uint64_t now)
{
	struct dpdk_port *p = l->port;
	unsigned h = (ntohl(ip) * 2654435761u) >> 28;
	struct neigh *n;
	bool known = false, ask = false;

	if (l->ncache[h].ip == ip && l->ncache[h].until > now) {
		*mac = l->ncache[h].mac;
		return true;
	}
	rte_spinlock_lock(&p->lock);
	if (ip_is_local(p, ip)) {
		/* Another lane of this port: the port's own MAC (on a loopback
		 * device the frame comes straight back). */
		*mac = p->mac;
		known = true;
	} else {
		n = neigh_slot(p, ip, true);
		if (n->known && now - n->heard_ns < NEIGH_TTL_NS) {
			*mac = n->mac;
			known = true;
		} else if (now - n->asked_ns >= NEIGH_ASK_NS) {
			n->asked_ns = now;
			ask = true;
		}
		if (!n->known && n->heard_ns == 0)
			n->heard_ns = now;
	}
	rte_spinlock_unlock(&p->lock);
	if (known) {
		l->ncache[h].ip = ip;
		l->ncache[h].mac = *mac;
		l->ncache[h].until = now + NCACHE_NS;
	} else if (ask) {
		arp_send(l, RTE_ARP_OP_REQUEST, l->ip, ip, NULL);
	}
	return known;
}
