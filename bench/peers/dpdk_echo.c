/* SPDX-License-Identifier: MIT */
/*
 * A minimal raw DPDK UDP echo, one frame per message: the ceiling for
 * ferry's DPDK dataplane (docs/bench.md, issue 13).  No reliability, no
 * sessions, no ARP: what the port can do with Ethernet/IPv4/UDP frames of
 * --size bytes and nothing else.
 *
 * Driven like ferry's memif runs (bench/figures.py): --eal takes the same
 * EAL arguments (net_memif, --no-huge), the port is the first one, one
 * queue pair of 1024 descriptors, and both roles busy-poll their queue
 * (DPDK has no other mode; --busy-poll is accepted and implied).
 *
 * Server: each received IPv4/UDP frame for --port has its Ethernet, IPv4
 * and UDP addresses swapped in place and goes back in the same mbuf, a
 * burst of up to 32 at a time.  Client: --inflight frames outstanding
 * (from --addr + 1 to --addr); each answer frees its mbuf and starts its
 * slot's next call in a fresh mbuf, copied from a template whose IPv4
 * checksum is computed once.  The UDP checksum is 0 (none, legal on IPv4),
 * where ferry computes one in software on memif: the echo is the cheapest
 * frame there is.  The server's MAC is learnt from its first answer (until
 * then frames go to broadcast).  A slot whose answer does not come within
 * a second counts an error and is sent again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "peer.h"

#define NB_DESC 1024
#define BURST 32
#define HDRS (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
	      sizeof(struct rte_udp_hdr))
#define TIMEOUT_NS 1000000000ull

static uint16_t port;
static struct rte_mempool *pool;
static struct rte_ether_addr mac;

static void die(const char *what, int err)
{
	fprintf(stderr, "dpdk-echo: %s: %s\n", what, rte_strerror(err));
	exit(1);
}

/* Starts the EAL with --eal split at blanks (quotes keep blanks), keeping
 * the thread's CPU: the EAL pins its main thread to its first lcore. */
static void eal_start(const char *args)
{
	size_t len = args ? strlen(args) : 0;
	char *buf = malloc(len + 1), **argv = calloc(len / 2 + 3, sizeof(*argv));
	int argc = 0;
	cpu_set_t cpus;
	char *w = buf;

	if (!buf || !argv)
		die("malloc", ENOMEM);
	argv[argc++] = "dpdk-echo";
	for (const char *r = args ? args : ""; *r;) {
		char q = 0;

		while (*r == ' ' || *r == '\t')
			r++;
		if (!*r)
			break;
		argv[argc++] = w;
		for (; *r && (q || (*r != ' ' && *r != '\t')); r++) {
			if (q && *r == q)
				q = 0;
			else if (!q && (*r == '\'' || *r == '"'))
				q = *r;
			else
				*w++ = *r;
		}
		*w++ = 0;
	}
	pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (rte_eal_init(argc, argv) < 0)
		die("rte_eal_init", rte_errno);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
}

static void port_start(bool client)
{
	struct rte_eth_conf pc;
	struct rte_eth_link link;
	uint16_t nb_rxd = NB_DESC, nb_txd = NB_DESC;
	int ret, socket;

	if (rte_eth_dev_count_avail() == 0)
		die("no DPDK port (check --eal)", ENODEV);
	RTE_ETH_FOREACH_DEV(port)
		break;
	socket = rte_eth_dev_socket_id(port);
	if (socket < 0)
		socket = (int)rte_socket_id();
	memset(&pc, 0, sizeof(pc));
	ret = rte_eth_dev_configure(port, 1, 1, &pc);
	if (ret < 0)
		die("rte_eth_dev_configure", -ret);
	rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	pool = rte_pktmbuf_pool_create("echo", 2 * (nb_rxd + nb_txd) + 4096,
				       256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       socket);
	if (!pool)
		die("rte_pktmbuf_pool_create", rte_errno);
	ret = rte_eth_rx_queue_setup(port, 0, nb_rxd, (unsigned)socket, NULL,
				     pool);
	if (ret == 0)
		ret = rte_eth_tx_queue_setup(port, 0, nb_txd, (unsigned)socket,
					     NULL);
	if (ret == 0)
		ret = rte_eth_dev_start(port);
	if (ret < 0)
		die("port setup", -ret);
	rte_eth_macaddr_get(port, &mac);
	if (!client)
		return;
	/* memif: the link is up once the server has accepted us. */
	for (int i = 0; i < 1000 && !peer_stop; i++) {
		if (rte_eth_link_get_nowait(port, &link) == 0 &&
		    link.link_status)
			return;
		rte_delay_ms(10);
	}
	die("the link did not come up", ETIMEDOUT);
}

/* Sends @n frames, retrying while the ring is full; what cannot go in a
 * while is freed (its slot times out).  Returns the frames sent. */
static uint16_t tx_all(struct rte_mbuf **m, uint16_t n)
{
	uint16_t sent = 0;

	for (int tries = 0; sent < n && tries < 100000; tries++)
		sent += rte_eth_tx_burst(port, 0, m + sent, n - sent);
	if (sent < n)
		rte_pktmbuf_free_bulk(m + sent, n - sent);
	return sent;
}

static int run_server(const struct peer_opts *o)
{
	uint16_t want = htons((uint16_t)o->port);
	struct rte_mbuf *m[BURST], *out[BURST];

	while (!peer_stop) {
		uint16_t n = rte_eth_rx_burst(port, 0, m, BURST), k = 0;

		for (uint16_t i = 0; i < n; i++) {
			struct rte_ether_hdr *eh =
				rte_pktmbuf_mtod(m[i], struct rte_ether_hdr *);
			struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
			struct rte_udp_hdr *uh = (struct rte_udp_hdr *)(ip + 1);
			uint32_t a;
			uint16_t p;

			if (rte_pktmbuf_data_len(m[i]) < HDRS ||
			    eh->ether_type != htons(RTE_ETHER_TYPE_IPV4) ||
			    ip->version_ihl != RTE_IPV4_VHL_DEF ||
			    ip->next_proto_id != IPPROTO_UDP ||
			    uh->dst_port != want) {
				rte_pktmbuf_free(m[i]);
				continue;
			}
			rte_ether_addr_copy(&eh->src_addr, &eh->dst_addr);
			rte_ether_addr_copy(&mac, &eh->src_addr);
			a = ip->src_addr;
			ip->src_addr = ip->dst_addr;
			ip->dst_addr = a;
			p = uh->src_port;
			uh->src_port = uh->dst_port;
			uh->dst_port = p;
			out[k++] = m[i];
		}
		if (k)
			tx_all(out, k);
	}
	return 0;
}

struct cli {
	const struct peer_opts *o;
	struct peer_run r;
	uint8_t tmpl[HDRS];
	uint32_t *seq;
	uint64_t *t0;
	uint32_t queue[BURST * 4]; /* slots to send this pass */
	uint16_t nq;
};

static void cli_template(struct cli *c)
{
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)c->tmpl;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	struct rte_udp_hdr *uh = (struct rte_udp_hdr *)(ip + 1);
	uint32_t dst;

	if (inet_pton(AF_INET, c->o->addr, &dst) != 1)
		die("--addr", EINVAL);
	memset(&eh->dst_addr, 0xff, sizeof(eh->dst_addr));
	rte_ether_addr_copy(&mac, &eh->src_addr);
	eh->ether_type = htons(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = htons((uint16_t)(sizeof(*ip) + sizeof(*uh) +
					    c->o->size));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->dst_addr = dst;
	ip->src_addr = htonl(ntohl(dst) + 1);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	uh->src_port = htons((uint16_t)(c->o->port + 1));
	uh->dst_port = htons((uint16_t)c->o->port);
	uh->dgram_len = htons((uint16_t)(sizeof(*uh) + c->o->size));
	uh->dgram_cksum = 0;
}

/* Sends the queued slots' next calls, each in a fresh mbuf. */
static void cli_flush(struct cli *c)
{
	struct rte_mbuf *m[BURST * 4];
	uint16_t n = c->nq;
	uint64_t now = peer_now_ns();

	if (n == 0)
		return;
	c->nq = 0;
	if (rte_pktmbuf_alloc_bulk(pool, m, n) != 0) {
		c->r.errors += n; /* those slots time out and go again */
		return;
	}
	for (uint16_t i = 0; i < n; i++) {
		uint32_t slot = c->queue[i];
		char *d = rte_pktmbuf_append(m[i], (uint16_t)(HDRS +
							      c->o->size));

		memcpy(d, c->tmpl, HDRS);
		peer_fill(d + HDRS, c->o, slot, ++c->seq[slot]);
		c->t0[slot] = now;
	}
	n = tx_all(m, n);
	if (peer_phase(&c->r, now) == PEER_MEASURE)
		c->r.tx_pkts += n;
}

static void cli_queue(struct cli *c, uint32_t slot)
{
	if (c->nq == sizeof(c->queue) / sizeof(c->queue[0]))
		cli_flush(c);
	c->queue[c->nq++] = slot;
}

static void cli_rx(struct cli *c)
{
	struct rte_mbuf *m[BURST];
	uint16_t n = rte_eth_rx_burst(port, 0, m, BURST);
	uint64_t now = peer_now_ns();
	int phase = peer_phase(&c->r, now);

	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *d = rte_pktmbuf_mtod(m[i], const uint8_t *);
		const struct rte_ether_hdr *eh = (const void *)d;
		struct peer_msg pm;

		if (rte_pktmbuf_data_len(m[i]) < HDRS + sizeof(pm) ||
		    eh->ether_type != htons(RTE_ETHER_TYPE_IPV4)) {
			rte_pktmbuf_free(m[i]);
			continue;
		}
		memcpy(&pm, d + HDRS, sizeof(pm));
		/* The server's MAC, from now on. */
		memcpy(c->tmpl, &eh->src_addr, sizeof(eh->src_addr));
		rte_pktmbuf_free(m[i]);
		if (pm.slot >= c->o->inflight || pm.seq != c->seq[pm.slot])
			continue;
		if (phase == PEER_MEASURE) {
			bench_hist_record(&c->r.hist, now - c->t0[pm.slot]);
			c->r.completed++;
			c->r.rx_pkts++;
		}
		cli_queue(c, pm.slot);
	}
}

static int run_client(const struct peer_opts *o)
{
	struct cli *c = calloc(1, sizeof(*c));
	uint64_t next_check;

	if (!c)
		die("calloc", ENOMEM);
	c->o = o;
	c->seq = calloc(o->inflight, sizeof(*c->seq));
	c->t0 = calloc(o->inflight, sizeof(*c->t0));
	if (!c->seq || !c->t0)
		die("calloc", ENOMEM);
	cli_template(c);
	peer_run_start(&c->r, o);
	for (uint32_t i = 0; i < o->inflight; i++)
		cli_queue(c, i);
	cli_flush(c);
	next_check = c->r.t_start + TIMEOUT_NS / 4;
	while (peer_phase(&c->r, peer_now_ns()) != PEER_STOP) {
		uint64_t now;

		cli_rx(c);
		cli_flush(c);
		now = peer_now_ns();
		if (now < next_check)
			continue;
		next_check = now + TIMEOUT_NS / 4;
		for (uint32_t i = 0; i < o->inflight; i++)
			if (now - c->t0[i] > TIMEOUT_NS) {
				c->r.errors++;
				cli_queue(c, i);
			}
		cli_flush(c);
	}
	return peer_report(o, &c->r);
}

int main(int argc, char **argv)
{
	struct peer_opts o;
	int rc;

	peer_parse(&o, "dpdk-echo", argc, argv);
	if (o.conns != 1) {
		fprintf(stderr, "dpdk-echo: one connection only\n");
		return 2;
	}
	o.busy_poll = true;
	eal_start(o.eal);
	port_start(!o.server);
	rc = o.server ? run_server(&o) : run_client(&o);
	rte_eth_dev_stop(port);
	rte_eth_dev_close(port);
	rte_eal_cleanup();
	return rc;
}
