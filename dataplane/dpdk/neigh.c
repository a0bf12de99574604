/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's neighbours: each port's table of peers' MACs,
 * learnt from answers to our own ARP requests, each lane's small cache of
 * it, ARP requests for addresses not resolved yet and replies for the
 * port's own addresses.  What is believed and kept is ntab.c's policy;
 * the ARP bytes are read and written, and judged, by frame.c.
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

/*
 * A received ARP frame (from the polling lane: any lane may answer for
 * the port, and counts what it saw).  A request for one of the port's
 * addresses is answered to the frame's source MAC and teaches nothing; a
 * reply addressed to us is believed only if we asked (ntab.h); the rest is
 * ignored.  Consumes @m.
 */
void ferry__dpdk_arp_input(struct lane *l, struct rte_mbuf *m)
{
	struct dpdk_port *p = l->port;
	struct rte_ether_addr to;
	struct ferry__arp a;
	int rc;

	/* A short ARP, or one for other hardware or protocols. */
	if (ferry__arp_parse(rte_pktmbuf_mtod(m, const uint8_t *),
			     rte_pktmbuf_data_len(m), &a) < 0) {
		l->st.arp_ignored++;
		goto out;
	}
	rte_spinlock_lock(&p->lock);
	switch (ferry__arp_action(&a, ip_is_local(p, a.tip),
				  p->mac.addr_bytes)) {
	case FERRY__ARP_ANSWER:
		rte_spinlock_unlock(&p->lock);
		memcpy(to.addr_bytes, a.src, RTE_ETHER_ADDR_LEN);
		arp_send(l, RTE_ARP_OP_REPLY, a.tip, a.sip, &to);
		break;
	case FERRY__ARP_ANSWERED:
		rc = ferry__ntab_answer(&p->neigh, a.sip, a.sha, now_ns());
		if (rc == 0)
			p->neigh_gen++;
		rte_spinlock_unlock(&p->lock);
		if (rc < 0)
			l->st.arp_unsolicited++;
		break;
	default:
		rte_spinlock_unlock(&p->lock);
		l->st.arp_ignored++;
	}
out:
	rte_pktmbuf_free(m);
}

/*
 * The MAC for our transmit to @ip (ntab.h): FERRY__NTAB_KNOWN and *mac;
 * FERRY__NTAB_WAIT, asking for it (rate-limited); FERRY__NTAB_NONE without
 * @add when the table holds no entry; FERRY__NTAB_FULL when it has no room.
 */
enum ferry__ntab_res ferry__dpdk_neigh_resolve(struct lane *l, uint32_t ip,
					       bool add,
					       struct rte_ether_addr *mac,
					       uint64_t now)
{
	struct dpdk_port *p = l->port;
	unsigned h = (ntohl(ip) * 2654435761u) >> 28;
	enum ferry__ntab_res res;
	bool ask = false;

	if (l->ncache[h].ip == ip && l->ncache[h].until > now) {
		*mac = l->ncache[h].mac;
		return FERRY__NTAB_KNOWN;
	}
	rte_spinlock_lock(&p->lock);
	if (ip_is_local(p, ip)) {
		/* Another lane of this port: the port's own MAC (on a loopback
		 * device the frame comes straight back). */
		*mac = p->mac;
		res = FERRY__NTAB_KNOWN;
	} else {
		res = ferry__ntab_resolve(&p->neigh, ip, now, add,
					  mac->addr_bytes, &ask);
	}
	rte_spinlock_unlock(&p->lock);
	if (res == FERRY__NTAB_KNOWN) {
		/* Checked against the table again within NCACHE_NS: that is
		 * also what keeps a peer in use pinned there. */
		l->ncache[h].ip = ip;
		l->ncache[h].mac = *mac;
		l->ncache[h].until = now + NCACHE_NS;
	}
	if (ask)
		arp_send(l, RTE_ARP_OP_REQUEST, l->ip, ip, NULL);
	if (res == FERRY__NTAB_FULL)
		l->st.neigh_full++;
	return res;
}
