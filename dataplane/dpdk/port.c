/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's process-wide part: the EAL (started once per
 * process, with the first lane's arguments), the ports (configured,
 * given their queues and mempools, and started by the first lane opened on
 * each; up until the process exits), and a lane's place on its port: its
 * UDP port, its TX queue, its RX queue with a flow rule or a place in
 * queue 0's software steering.
 */
#include "dpdk.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_eal_up;
/* The EAL keeps pointers into its argv for the life of the process. */
static char *g_eal_buf;
static char **g_eal_argv;
static struct dpdk_port *g_ports[MAX_PORTS];
static unsigned g_mem_seq;

static void dpdk_atexit(void)
{
	pthread_mutex_lock(&g_lock);
	for (unsigned i = 0; i < MAX_PORTS; i++) {
		struct dpdk_port *p = g_ports[i];

		if (p && p->up) {
			rte_eth_dev_stop(p->id);
			rte_eth_dev_close(p->id);
			p->up = false;
		}
	}
	if (g_eal_up)
		rte_eal_cleanup();
	g_eal_up = false;
	pthread_mutex_unlock(&g_lock);
}

/*
 * Start the EAL with @args, split at white space (single or double quotes
 * group words).  The EAL keeps pointers into argv, so it is never freed.
 * The caller's CPU affinity is restored afterwards: the EAL pins the
 * calling thread to its main lcore, but ferry runs on the application's
 * threads, placed where the application put them.
 */
static int eal_start(const char *args)
{
	size_t len = strlen(args);
	char *buf = malloc(len + 1);
	char **argv = calloc(len / 2 + 3, sizeof(*argv));
	int argc = 0, ret;
	cpu_set_t cpus;
	bool have_cpus;
	char *w, *r;

	if (!buf || !argv) {
		free(buf);
		free(argv);
		return -ENOMEM;
	}
	free(g_eal_buf);
	free(g_eal_argv);
	g_eal_buf = buf;
	g_eal_argv = argv;
	argv[argc++] = "ferry";
	for (r = (char *)args, w = buf; *r;) {
		char q = 0;

		while (*r == ' ' || *r == '\t' || *r == '\n')
			r++;
		if (!*r)
			break;
		argv[argc++] = w;
		for (; *r; r++) {
			if (q) {
				if (*r == q)
					q = 0;
				else
					*w++ = *r;
			} else if (*r == '\'' || *r == '"') {
				q = *r;
			} else if (*r == ' ' || *r == '\t' || *r == '\n') {
				break;
			} else {
				*w++ = *r;
			}
		}
		*w++ = 0;
	}
	argv[argc] = NULL;
	have_cpus = pthread_getaffinity_np(pthread_self(), sizeof(cpus),
					   &cpus) == 0;
	ret = rte_eal_init(argc, argv);
	if (have_cpus)
		pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (ret < 0) {
		if (rte_errno == EALREADY)
			return 0; /* the application started it */
		log_err("EAL did not start (%s): check the EAL arguments \"%s\"",
			rte_strerror(rte_errno), args);
		return -rte_errno ? -rte_errno : -EINVAL;
	}
	atexit(dpdk_atexit);
	return 0;
}

/* The MTU max_frame needs, but no less than the port has now, and no more
 * than it takes (its max_mtu, or its largest frame less the Ethernet
 * overhead ethdev assumes). */
static uint16_t port_mtu(struct dpdk_port *p, const struct rte_eth_dev_info *info,
			 const struct ferry_dp_conf *conf)
{
	uint32_t want_mtu = conf->max_frame + 28;
	uint32_t cap = 9000, over = RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
	uint16_t mtu = 1500;

	rte_eth_dev_get_mtu(p->id, &mtu);
	if (info->max_mtu != UINT16_MAX && info->max_rx_pktlen > info->max_mtu)
		over = info->max_rx_pktlen - info->max_mtu;
	if (info->max_mtu < cap)
		cap = info->max_mtu;
	if (info->max_rx_pktlen && info->max_rx_pktlen - over < cap)
		cap = info->max_rx_pktlen - over;
	if (want_mtu < mtu)
		want_mtu = mtu;
	mtu = (uint16_t)(want_mtu < cap ? want_mtu : cap);
	if (mtu < 576)
		mtu = 576;
	return mtu;
}

/* Configure @nq queue pairs, the MTU and the checksum offloads the port
 * has; sets p->mtu. */
static int port_configure(struct dpdk_port *p,
			  const struct rte_eth_dev_info *info, uint16_t nq,
			  uint16_t mtu)
{
	struct rte_eth_conf pc;
	int ret;

	memset(&pc, 0, sizeof(pc));
	pc.rxmode.mtu = mtu;
	pc.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	pc.rxmode.offloads = info->rx_offload_capa &
			     (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM |
			      RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
	pc.txmode.offloads = info->tx_offload_capa &
			     (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM |
			      RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
			      RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
	p->rx_ip_csum = pc.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	p->rx_udp_csum = pc.rxmode.offloads & RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	p->tx_ip_csum = pc.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	p->tx_udp_csum = pc.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	p->multi_seg = pc.txmode.offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	ret = rte_eth_dev_configure(p->id, nq, nq, &pc);
	if (ret < 0) {
		/* Some virtual devices refuse an MTU in the configuration:
		 * keep theirs. */
		pc.rxmode.mtu = 0;
		ret = rte_eth_dev_configure(p->id, nq, nq, &pc);
		if (ret < 0) {
			log_err("port %u: configure: %s", p->id,
				rte_strerror(-ret));
			return ret;
		}
		rte_eth_dev_get_mtu(p->id, &mtu);
	}
	p->mtu = mtu;
	return 0;
}

/* The port's receive and transmit mempools, for @nq queues of @nb_rxd and
 * @nb_txd descriptors. */
static int port_pools(struct dpdk_port *p, const struct ferry_dp_conf *conf,
		      uint16_t nq, uint16_t nb_rxd, uint16_t nb_txd, int socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	uint32_t n, room;

	/* Receive mbufs: the rings' worth per queue, plus what the lanes
	 * may hold lent and stashed. */
	n = nq * (nb_rxd + 2 * STASH + INBOX / 4 + rx_slots(conf)) + 1024;
	/* A whole frame per mbuf (so it is lent in place), and never less
	 * than the default data room: some drivers (af_packet) size their
	 * frames from it and refuse smaller mbufs. */
	room = p->mtu + RTE_ETHER_HDR_LEN + 4;
	if (room < RTE_MBUF_DEFAULT_DATAROOM)
		room = RTE_MBUF_DEFAULT_DATAROOM;
	room += RTE_PKTMBUF_HEADROOM;
	snprintf(name, sizeof(name), "ferry_rx%u_%d", p->id, getpid());
	p->rx_pool = rte_pktmbuf_pool_create(name, n, 256, 0, (uint16_t)room,
					     socket);
	if (!p->rx_pool) {
		log_err("port %u: %u receive mbufs of %u bytes: %s", p->id, n,
			room, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* Transmit mbufs: a header and a chained body per frame in flight. */
	p->tx_room = RTE_PKTMBUF_HEADROOM + HDRS + FERRY_DP_HDR_MAX + COPY_MAX;
	n = nq * 2 * (nb_txd + TXBUF + conf->tx_slots) + 1024;
	snprintf(name, sizeof(name), "ferry_tx%u_%d", p->id, getpid());
	p->tx_pool = rte_pktmbuf_pool_create(name, n, 256, 0,
					     (uint16_t)p->tx_room, socket);
	if (!p->tx_pool) {
		log_err("port %u: %u transmit mbufs: %s", p->id, n,
			rte_strerror(rte_errno));
		return -ENOMEM;
	}
	p->tx_room -= RTE_PKTMBUF_HEADROOM;
	return 0;
}

static int port_start(struct dpdk_port *p, const struct ferry_dp_conf *conf)
{
	struct rte_eth_dev_info info;
	uint16_t nb_rxd = NB_DESC, nb_txd = NB_DESC;
	uint16_t nq = conf->dpdk_queues ? conf->dpdk_queues : 1;
	int ret, socket = rte_eth_dev_socket_id(p->id);

	if (socket < 0)
		socket = (int)rte_socket_id();
	ret = rte_eth_dev_info_get(p->id, &info);
	if (ret < 0)
		return ret;
	if (nq > info.max_rx_queues)
		nq = info.max_rx_queues;
	if (nq > info.max_tx_queues)
		nq = info.max_tx_queues;
	if (nq > MAX_LANES)
		nq = MAX_LANES;
	if (nq == 0)
		nq = 1;
	p->nb_q = nq;
	/* Segments per frame: a driver's limit per packet (nb_seg_max) and
	 * per MTU-sized packet (nb_mtu_seg_max); 0 is no limit. */
	p->seg_max = info.tx_desc_lim.nb_mtu_seg_max;
	if (info.tx_desc_lim.nb_seg_max &&
	    (!p->seg_max || info.tx_desc_lim.nb_seg_max < p->seg_max))
		p->seg_max = info.tx_desc_lim.nb_seg_max;
	if (!p->seg_max)
		p->seg_max = RTE_MBUF_MAX_NB_SEGS;
	ret = port_configure(p, &info, nq, port_mtu(p, &info, conf));
	if (ret < 0)
		return ret;
	rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &nb_rxd, &nb_txd);
	ret = port_pools(p, conf, nq, nb_rxd, nb_txd, socket);
	if (ret < 0)
		return ret;
	for (uint16_t q = 0; q < nq; q++) {
		ret = rte_eth_rx_queue_setup(p->id, q, nb_rxd, (unsigned)socket,
					     NULL, p->rx_pool);
		if (ret == 0)
			ret = rte_eth_tx_queue_setup(p->id, q, nb_txd,
						     (unsigned)socket, NULL);
		if (ret < 0) {
			log_err("port %u: queue %u setup: %s", p->id, q,
				rte_strerror(-ret));
			return ret;
		}
		rte_spinlock_init(&p->q[q].rx_lock);
		rte_spinlock_init(&p->q[q].tx_lock);
	}
	ret = rte_eth_dev_start(p->id);
	if (ret < 0) {
		log_err("port %u: start: %s", p->id, rte_strerror(-ret));
		return ret;
	}
	/* Broadcast ARP must reach us; unicast to our MAC does anyway. */
	rte_eth_promiscuous_disable(p->id);
	rte_eth_allmulticast_enable(p->id);
	rte_eth_macaddr_get(p->id, &p->mac);
	p->next_ephemeral = EPHEMERAL;
	p->up = true;
	return 0;
}

/* The port @want (or the least used), started; under g_lock. */
static int port_get(const struct ferry_dp_conf *conf, struct dpdk_port **out)
{
	uint16_t nports = rte_eth_dev_count_avail();
	int id = conf->dpdk_port;
	struct dpdk_port *p;
	int ret;

	if (nports == 0) {
		log_err("no DPDK port: give the EAL a device (for example "
			"--vdev=net_memif0 or --vdev=net_ring0, or a NIC bound "
			"to vfio-pci)");
		return -ENODEV;
	}
	if (id < 0) {
		unsigned best = ~0u;

		for (uint16_t i = 0; i < nports && i < MAX_PORTS; i++) {
			unsigned used = g_ports[i] ? g_ports[i]->nlanes : 0;

			if (used < best) {
				best = used;
				id = i;
			}
		}
	}
	if (id >= MAX_PORTS || !rte_eth_dev_is_valid_port((uint16_t)id)) {
		log_err("port %d does not exist (%u ports)", id, nports);
		return -ENODEV;
	}
	p = g_ports[id];
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->id = (uint16_t)id;
		rte_spinlock_init(&p->lock);
		g_ports[id] = p;
	}
	if (!p->up) {
		ret = port_start(p, conf);
		if (ret < 0)
			return ret;
	}
	*out = p;
	return 0;
}

static int flow_steer(struct lane *l)
{
	struct rte_flow_attr attr = { .ingress = 1 };
	struct rte_flow_item_ipv4 ip = { .hdr.dst_addr = l->ip };
	struct rte_flow_item_ipv4 ipm = { .hdr.dst_addr = 0xffffffff };
	struct rte_flow_item_udp udp = {
		.hdr.dst_port = rte_cpu_to_be_16(l->udp_port) };
	struct rte_flow_item_udp udpm = { .hdr.dst_port = 0xffff };
	struct rte_flow_item pat[] = {
		{ .type = RTE_FLOW_ITEM_TYPE_ETH },
		{ .type = RTE_FLOW_ITEM_TYPE_IPV4, .spec = &ip, .mask = &ipm },
		{ .type = RTE_FLOW_ITEM_TYPE_UDP, .spec = &udp, .mask = &udpm },
		{ .type = RTE_FLOW_ITEM_TYPE_END },
	};
	struct rte_flow_action_queue qa = { .index = l->rxq };
	struct rte_flow_action act[] = {
		{ .type = RTE_FLOW_ACTION_TYPE_QUEUE, .conf = &qa },
		{ .type = RTE_FLOW_ACTION_TYPE_END },
	};
	struct rte_flow_error fe;

	l->flow = rte_flow_create(l->port->id, &attr, pat, act, &fe);
	return l->flow ? 0 : -ENOTSUP;
}

/* Join the port: an address, a UDP port, queues.  Under g_lock. */
static int lane_attach(struct lane *l)
{
	struct dpdk_port *p = l->port;
	uint16_t q;

	rte_spinlock_lock(&p->lock);
	if (p->nlanes == MAX_LANES) {
		rte_spinlock_unlock(&p->lock);
		return -EBUSY;
	}
	if (l->udp_port == 0) {
		for (unsigned tries = 0; tries < 16384; tries++) {
			uint16_t cand = p->next_ephemeral++;
			bool used = false;

			if (p->next_ephemeral == 0)
				p->next_ephemeral = EPHEMERAL;
			for (unsigned i = 0; i < p->nlanes; i++)
				used |= p->lanes[i]->udp_port == cand &&
					p->lanes[i]->ip == l->ip;
			if (!used) {
				l->udp_port = cand;
				break;
			}
		}
	}
	for (unsigned i = 0; i < p->nlanes; i++) {
		if (p->lanes[i]->udp_port == l->udp_port &&
		    p->lanes[i]->ip == l->ip) {
			rte_spinlock_unlock(&p->lock);
			return -EADDRINUSE;
		}
	}
	/* TX: the queue with the fewest users (one of our own while any is
	 * free). */
	l->txq = 0;
	for (q = 1; q < p->nb_q; q++)
		if (p->q[q].tx_users < p->q[l->txq].tx_users)
			l->txq = q;
	p->q[l->txq].tx_users++;
	p->lanes[p->nlanes++] = l;
	rte_spinlock_unlock(&p->lock);

	/* RX: a queue of our own, steered by a flow rule, where one is free
	 * (queue 0 takes everything the rules do not claim); else software
	 * steering on queue 0. */
	l->rxq = 0;
	for (q = 1; q < p->nb_q; q++) {
		if (p->q[q].nmembers == 0) {
			l->rxq = q;
			if (flow_steer(l) == 0) {
				/* Under queue 0's lock: its pollers stop taking
				 * this queue before its owner starts. */
				rte_spinlock_lock(&p->q[0].rx_lock);
				p->q[q].owned = true;
				rte_spinlock_unlock(&p->q[0].rx_lock);
				break;
			}
			l->rxq = 0;
			break;
		}
	}
	rte_spinlock_lock(&p->q[l->rxq].rx_lock);
	rte_spinlock_lock(&p->lock);
	p->q[l->rxq].members[p->q[l->rxq].nmembers++] = l;
	rte_spinlock_unlock(&p->lock);
	rte_spinlock_unlock(&p->q[l->rxq].rx_lock);
	return 0;
}

/*
 * dpdk_open's part under the process-wide lock: start the EAL (the first
 * lane of the process) and the port (the first lane on it), make the
 * lane's rings and attach it to the port.  Returns 0, or -errno with
 * l->port NULL (nothing to detach).
 */
int ferry__dpdk_join(struct lane *l, const struct ferry_dp_conf *conf)
{
	struct dpdk_port *port = NULL;
	char name[RTE_RING_NAMESIZE];
	unsigned seq;
	int ret;

	pthread_mutex_lock(&g_lock);
	if (!g_eal_up) {
		ret = eal_start(conf->dpdk_eal ? conf->dpdk_eal : "");
		if (ret < 0) {
			pthread_mutex_unlock(&g_lock);
			return ret;
		}
		g_eal_up = true;
	}
	/* Per-lcore mempool caches need an lcore id on this thread. */
	if (rte_lcore_id() == LCORE_ID_ANY)
		rte_thread_register();
	ret = port_get(conf, &port);
	if (ret == 0) {
		seq = g_mem_seq++;
		snprintf(name, sizeof(name), "fi%d_%u", getpid(), seq);
		l->inbox = rte_ring_create(name, INBOX, SOCKET_ID_ANY,
					   RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "fd%d_%u", getpid(), seq);
		l->done = rte_ring_create(name, rte_align32pow2(l->nslots + 1),
					  SOCKET_ID_ANY, RING_F_SC_DEQ);
		if (!l->inbox || !l->done)
			ret = -ENOMEM;
	}
	if (ret == 0) {
		/* Attached last: until then the lane is nobody's to steer
		 * to, and close need not detach it. */
		l->port = port;
		ret = lane_attach(l);
		if (ret < 0)
			l->port = NULL;
	}
	pthread_mutex_unlock(&g_lock);
	if (ret == -EADDRINUSE)
		log_err("%s:%u is taken on port %u", conf->bind_addr,
			conf->port, port->id);
	return ret;
}

/* Leave the port: out of its steering lists and queues, the flow rule
 * destroyed, the inbox drained. */
void ferry__dpdk_lane_detach(struct lane *l)
{
	struct dpdk_port *p = l->port;
	rte_spinlock_t *lock = &p->q[l->rxq].rx_lock;
	struct rte_mbuf *m;
	unsigned i;

	/* Out of the steering list first, under the queue lock, so no
	 * poller puts frames on our inbox after we drained it. */
	rte_spinlock_lock(lock);
	rte_spinlock_lock(&p->lock);
	for (i = 0; i < p->q[l->rxq].nmembers; i++)
		if (p->q[l->rxq].members[i] == l)
			break;
	if (i < p->q[l->rxq].nmembers)
		p->q[l->rxq].members[i] =
			p->q[l->rxq].members[--p->q[l->rxq].nmembers];
	for (i = 0; i < p->nlanes; i++)
		if (p->lanes[i] == l)
			break;
	if (i < p->nlanes)
		p->lanes[i] = p->lanes[--p->nlanes];
	p->q[l->txq].tx_users--;
	rte_spinlock_unlock(&p->lock);
	rte_spinlock_unlock(lock);
	if (l->flow) {
		struct rte_flow_error fe;

		rte_flow_destroy(p->id, l->flow, &fe);
		rte_spinlock_lock(&p->q[0].rx_lock);
		p->q[l->rxq].owned = false;
		rte_spinlock_unlock(&p->q[0].rx_lock);
	}
	while (l->inbox && rte_ring_sc_dequeue(l->inbox, (void **)&m) == 0)
		rte_pktmbuf_free(m);
}
