/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's neighbours under attack on a live link (issue 14,
 * "DPDK neighbours"; the policy itself is unit-tested in
 * tests/test_dpdk_neigh.c).
 *
 * Two DPDK ports made of rings (net_ring's rte_eth_from_rings), with this
 * test as the wire between them.  Host A, on one port, is a server
 * endpoint at 10.0.0.1 and a probe lane at 10.0.0.3; host B, on the other,
 * is a client endpoint at 10.0.0.2 and a probe lane at 10.0.0.4.  Every
 * frame between them passes through wire_pump(), which records what A
 * sends, and the test puts on A's side of the wire what an attacker on the
 * link would: ARP replies and requests from spoofed sources.  Nothing is
 * faked below the ports: A's dataplane receives, judges and answers them.
 *
 * Why not the harness's raw peer: it sends through the ops table, which
 * builds IPv4/UDP frames only, and on the harness's one loopback port every
 * endpoint is local to every other, so the neighbour table is never used.
 * A's probe lane is how the test asks A's table a question: a lane with an
 * empty cache sends to an address, and the wire shows whether A knew the
 * MAC (the frame leaves at once, to that MAC) or asked (an ARP request).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "harness.h"
#include "dataplane/dpdk/frame.h"

#define M_ECHO 1
#define IP_A "10.0.0.1"
#define IP_B "10.0.0.2"
#define LOG_MAX 8192

/* A lane opened straight on the dataplane, to send from and count. */
struct probe {
	const struct ferry_dp_ops *ops;
	struct ferry_dp *dp;
	unsigned got; /* datagrams received */
};

/* One frame A put on the wire. */
struct sent {
	bool arp;
	uint16_t op;  /* ARP */
	uint32_t ip;  /* UDP: destination; ARP: target address */
	uint8_t dst[6], tha[6];
};

static struct {
	/* Each port's receive and transmit ring; wire_pump() moves a_tx to
	 * b_rx and b_tx to a_rx. */
	struct rte_ring *a_rx, *a_tx, *b_rx, *b_tx;
	uint16_t pa, pb;
	uint8_t mac_a[6], mac_b[6];
	struct rte_mempool *pool; /* the attacker's frames */
	struct ferry_endpoint *a, *b;
	struct ferry_session *s;
	struct probe qa, qb;
	uint16_t qb_port;
	struct sent log[LOG_MAX]; /* what A sent */
	unsigned nlog;
} w;

static const uint8_t k_evil[6] = { 0x02, 0xee, 0, 0, 0, 1 };
static const uint8_t k_bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint32_t ip(const char *s)
{
	uint32_t v;

	cr_assert_eq(ferry__addr_parse_ip(s, &v), 0);
	return v;
}

/* 10.<net>.x.y, the @n-th: spoofed sources, unanswered destinations. */
static uint32_t ip_n(unsigned net, unsigned n)
{
	return htonl(0x0a000000u | net << 16 | (n + 1));
}

/* --- the wire ------------------------------------------------------------- */

static void wire_note(const struct rte_mbuf *m)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	struct sent *s = &w.log[w.nlog];
	struct ferry__frame_rx rx;
	struct ferry__arp a;

	cr_assert_lt(w.nlog, LOG_MAX, "the wire's log is full");
	memset(s, 0, sizeof(*s));
	switch (ferry__frame_parse(p, rte_pktmbuf_data_len(m), FERRY__CSUM_GOOD,
				   FERRY__CSUM_GOOD, &rx)) {
	case FERRY__FRAME_UDP:
		s->ip = rx.h.dst_ip;
		memcpy(s->dst, rx.h.dst_mac, 6);
		break;
	case FERRY__FRAME_ARP:
		cr_assert_eq(ferry__arp_parse(p, rte_pktmbuf_data_len(m), &a), 0);
		s->arp = true;
		s->op = a.op;
		s->ip = a.tip;
		memcpy(s->dst, a.dst, 6);
		memcpy(s->tha, a.tha, 6);
		break;
	default:
		cr_assert_fail("A sent a frame that is neither ARP nor UDP");
	}
	/* Whatever else happens, nothing of A's goes to the attacker. */
	cr_assert_neq(memcmp(s->dst, k_evil, 6), 0, "A sent to the attacker");
	w.nlog++;
}

static void wire_move(struct rte_ring *from, struct rte_ring *to, bool note)
{
	struct rte_mbuf *ms[32];
	unsigned n;

	while ((n = rte_ring_dequeue_burst(from, (void **)ms, 32, NULL)) > 0) {
		for (unsigned i = 0; note && i < n; i++)
			wire_note(ms[i]);
		cr_assert_eq(rte_ring_enqueue_bulk(to, (void **)ms, n, NULL), n,
			     "the wire overflowed");
	}
}

static void wire_pump(void)
{
	wire_move(w.a_tx, w.b_rx, true);
	wire_move(w.b_tx, w.a_rx, false);
}

/* Frames A sent since log entry @from: UDP ones to @dst (to @mac, if not
 * NULL), or ARP requests for @dst. */
static unsigned sent_udp(unsigned from, uint32_t dst, const uint8_t *mac)
{
	unsigned n = 0;

	for (unsigned i = from; i < w.nlog; i++)
		n += !w.log[i].arp && w.log[i].ip == dst &&
		     (!mac || memcmp(w.log[i].dst, mac, 6) == 0);
	return n;
}

static unsigned sent_asks(unsigned from, uint32_t dst)
{
	unsigned n = 0;

	for (unsigned i = from; i < w.nlog; i++)
		n += w.log[i].arp && w.log[i].op == FERRY__ARP_OP_REQUEST &&
		     w.log[i].ip == dst;
	return n;
}

/* --- the attacker --------------------------------------------------------- */

/* An ARP frame onto A's side of the wire: Ethernet @dst from @src, op
 * @op, sender @sha/@sip, target @tha/@tip. */
static void inject(const uint8_t *dst, const uint8_t *src, uint16_t op,
		   const uint8_t *sha, uint32_t sip, const uint8_t *tha,
		   uint32_t tip)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(w.pool);
	uint8_t *p;

	cr_assert_not_null(m);
	p = (uint8_t *)rte_pktmbuf_append(m, FERRY__ARP_FRAME);
	if (!p) {
		cr_assert_fail("no room for an ARP frame in an mbuf");
		return;
	}
	/* Built as a reply (to tha), then made what the attacker wants. */
	ferry__arp_put(p, FERRY__ARP_OP_REPLY, sha, sip, tip, tha);
	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	p[20] = (uint8_t)(op >> 8);
	p[21] = (uint8_t)op;
	cr_assert_eq(rte_ring_enqueue(w.a_rx, m), 0);
}

/* The spoofed source @n's MACs: the frame's, and (different) the one its
 * ARP body names. */
static void spoof_macs(unsigned n, uint8_t *src, uint8_t *sha)
{
	const uint8_t f[6] = { 0x02, 0xaa, 0, 0, (uint8_t)(n >> 8), (uint8_t)n };
	const uint8_t b[6] = { 0x02, 0xbb, 0, 0, (uint8_t)(n >> 8), (uint8_t)n };

	memcpy(src, f, 6);
	memcpy(sha, b, 6);
}

/* --- hosts ---------------------------------------------------------------- */

static void probe_tx_done(void *ctx, void *cookie)
{
	(void)ctx;
	(void)cookie;
}

/* A lane at @addr on DPDK port @port; returns its UDP port. */
static uint16_t probe_open(struct probe *q, const char *addr, uint16_t port)
{
	struct ferry_dp_conf dc = { 0 };
	struct ferry_addr me;

	q->ops = ferry__dp_find("dpdk");
	dc.bind_addr = addr;
	dc.max_frame = 1472;
	dc.rx_bufs = 64;
	dc.tx_slots = 64;
	dc.dpdk_eal = "";
	dc.dpdk_port = port;
	dc.tx_done = probe_tx_done;
	cr_assert_eq(q->ops->open(&dc, &q->dp), 0);
	cr_assert_eq(q->ops->local_addr(q->dp, &me), 0);
	return me.port;
}

/* A datagram (not ferry's: the receiver drops it) from @q to @dst. */
static void probe_send(struct probe *q, uint32_t dst, uint16_t port)
{
	static const char junk[] = "probe";
	struct ferry_dp_tx tx = { .dst = { dst, port }, .hdr = junk,
				  .hdr_len = sizeof(junk) };

	cr_assert_eq(q->ops->tx_burst(q->dp, &tx, 1), 1);
	q->ops->flush(q->dp);
}

static void probe_turn(struct probe *q)
{
	struct ferry_dp_pkt pkts[16];
	unsigned n = q->ops->rx_burst(q->dp, pkts, 16);

	for (unsigned i = 0; i < n; i++)
		q->ops->rx_release(q->dp, pkts[i].id);
	q->got += n;
	q->ops->flush(q->dp);
}

static struct ferry_dp_stats probe_stats(struct probe *q)
{
	struct ferry_dp_stats st;

	q->ops->stats(q->dp, &st);
	return st;
}

/* One turn of everything: both hosts, then the wire. */
static void turn(void)
{
	ferry_endpoint_poll(w.a, 0);
	ferry_endpoint_poll(w.b, 0);
	probe_turn(&w.qa);
	probe_turn(&w.qb);
	wire_pump();
}

#define RUN_UNTIL(cond, ...)                                                   \
	do {                                                                   \
		uint64_t end_ = now_ms() + WAIT_MS;                            \
		while (!(cond) && now_ms() < end_)                             \
			turn();                                                \
		cr_assert((cond), __VA_ARGS__);                                \
	} while (0)

static void run_turns(unsigned n)
{
	while (n--)
		turn();
}

/* What A's lanes counted (ARP is counted by whichever lane polled it). */
static uint64_t a_unsolicited(void)
{
	return stats(w.a).arp_unsolicited + probe_stats(&w.qa).arp_unsolicited;
}

static uint64_t a_ignored(void)
{
	return stats(w.a).arp_ignored + probe_stats(&w.qa).arp_ignored;
}

/* ARP replies A sent since log entry @from, each checked to go to the
 * frame source spoof_macs() gave the request it answers. */
static unsigned sent_replies(unsigned from)
{
	unsigned n = 0;

	for (unsigned i = from; i < w.nlog; i++) {
		const struct sent *s = &w.log[i];
		uint8_t src[6], sha[6];

		if (!s->arp || s->op != FERRY__ARP_OP_REPLY)
			continue;
		spoof_macs(ntohl(s->ip) - ntohl(ip_n(1, 0)), src, sha);
		cr_assert_eq(memcmp(s->dst, src, 6), 0,
			     "a reply not to the frame's source");
		cr_assert_eq(memcmp(s->tha, src, 6), 0);
		n++;
	}
	return n;
}

/* --- set-up --------------------------------------------------------------- */

static void eal_up(void)
{
	static char buf[256];
	char *argv[16];
	int argc = 0;

	snprintf(buf, sizeof(buf),
		 "test --no-huge -m 256 --no-pci --no-telemetry "
		 "--log-level=error -l 0 --file-prefix ferry-arp-%d",
		 (int)getpid());
	for (char *t = strtok(buf, " "); t && argc < 15; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	cr_assert_geq(rte_eal_init(argc, argv), 0, "EAL: %s",
		      rte_strerror(rte_errno));
}

/* A port made of two rings; its MAC into @mac.  A ring port's MAC is all
 * zeros, and the driver takes no other: A and B share it, which no check
 * here needs to tell apart (the attacker's MACs are others). */
static uint16_t port_make(const char *name, struct rte_ring **rx,
			  struct rte_ring **tx, uint8_t *mac)
{
	struct rte_ether_addr ea;
	char rn[RTE_RING_NAMESIZE];
	int id;

	snprintf(rn, sizeof(rn), "%s_rx", name);
	*rx = rte_ring_create(rn, 4096, SOCKET_ID_ANY, 0);
	snprintf(rn, sizeof(rn), "%s_tx", name);
	*tx = rte_ring_create(rn, 4096, SOCKET_ID_ANY, 0);
	cr_assert(*rx && *tx);
	id = rte_eth_from_rings(name, rx, 1, tx, 1, rte_socket_id());
	cr_assert_geq(id, 0, "rte_eth_from_rings: %s", rte_strerror(rte_errno));
	cr_assert_eq(rte_eth_macaddr_get((uint16_t)id, &ea), 0);
	memcpy(mac, ea.addr_bytes, 6);
	return (uint16_t)id;
}

static void call_ok(uint32_t seed)
{
	struct reply r = { .seed = seed };

	cr_assert_eq(ferry_call(w.s, M_ECHO, msg(w.b, 64, seed), on_reply, &r),
		     0);
	RUN_UNTIL(r.done, "call %u: no reply", seed);
	cr_assert_eq(r.res, 0, "call %u: %s", seed, ferry_strerror(r.res));
	cr_assert(r.data_ok);
}

/* Both hosts up, B connected to A, a call answered: A knows B's MAC,
 * from the answer to its own request. */
static void setup(void)
{
	struct ferry_ep_config cfg;
	struct conn c = { 0 };

	memset(&w, 0, sizeof(w));
	eal_up();
	w.pa = port_make("arp_a", &w.a_rx, &w.a_tx, w.mac_a);
	w.pb = port_make("arp_b", &w.b_rx, &w.b_tx, w.mac_b);
	w.pool = rte_pktmbuf_pool_create("arp_atk", 4095, 0, 0,
					 RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	cr_assert_not_null(w.pool);
	/* The endpoints find the EAL started (eal ""). */
	dp_name = "dpdk";
	dp_eal = "";
	ferry_dpdk_config_init(&dp_dpdk);
	dp_dpdk.eal = "";
	ep_config(&cfg);
	cfg.bind_addr = IP_A;
	dp_dpdk.port = w.pa;
	w.a = ep_make(&cfg);
	cr_assert_eq(ferry_endpoint_register(w.a, M_ECHO, echo_handler, NULL),
		     0);
	cfg.bind_addr = IP_B;
	dp_dpdk.port = w.pb;
	w.b = ep_make(&cfg);
	probe_open(&w.qa, "10.0.0.3", w.pa);
	w.qb_port = probe_open(&w.qb, "10.0.0.4", w.pb);
	cr_assert_eq(ferry_session_connect(w.b, IP_A, ferry_endpoint_port(w.a),
					   NULL, on_connect, &c, &w.s),
		     0);
	RUN_UNTIL(c.done, "connect never ended");
	cr_assert_eq(c.res, 0, "connect: %s", ferry_strerror(c.res));
	call_ok(1);
	cr_assert_geq(sent_asks(0, ip(IP_B)), 1);
	cr_assert_geq(sent_udp(0, ip(IP_B), w.mac_b), 1);
}

static void teardown(void)
{
	if (w.s)
		ferry_session_close(w.s);
	if (w.a)
		ferry_endpoint_destroy(w.a);
	if (w.b)
		ferry_endpoint_destroy(w.b);
	if (w.qa.dp)
		w.qa.ops->close(w.qa.dp);
	if (w.qb.dp)
		w.qb.ops->close(w.qb.dp);
	rte_eth_dev_stop(w.pa);
	rte_eth_dev_stop(w.pb);
	rte_eal_cleanup();
}

TestSuite(dpdk_arp, .init = setup, .fini = teardown, .timeout = 120);

/* --- the attacks ---------------------------------------------------------- */

/*
 * Replies to A nobody asked for, addressed to its address and MAC: that B
 * is at the attacker's MAC, and that 200 other addresses are.  And
 * gratuitous ones, broadcast.  None is believed: B's entry keeps B's MAC,
 * and the other addresses get no entry (A asks when it needs one).
 */
Test(dpdk_arp, unsolicited_replies_change_nothing)
{
	static const uint8_t zero[6];
	uint64_t unsol = a_unsolicited(), ign = a_ignored();
	uint32_t b = ip(IP_B), a = ip(IP_A);
	unsigned mark;

	for (unsigned i = 0; i < 100; i++)
		inject(w.mac_a, k_evil, FERRY__ARP_OP_REPLY, k_evil, b,
		       w.mac_a, a);
	for (unsigned i = 0; i < 200; i++)
		inject(w.mac_a, k_evil, FERRY__ARP_OP_REPLY, k_evil,
		       ip_n(1, i), w.mac_a, a);
	for (unsigned i = 0; i < 10; i++) {
		inject(k_bcast, k_evil, FERRY__ARP_OP_REPLY, k_evil, b, k_bcast,
		       b);
		inject(k_bcast, k_evil, FERRY__ARP_OP_REQUEST, k_evil, b, zero,
		       b);
	}
	RUN_UNTIL(a_unsolicited() - unsol >= 300 && a_ignored() - ign >= 20,
		  "the attacker's frames were not all seen");
	cr_assert_eq(a_unsolicited() - unsol, 300);
	cr_assert_eq(a_ignored() - ign, 20);

	/* B: known, at its own MAC (wire_note fails the test on any frame
	 * of A's to the attacker). */
	mark = w.nlog;
	probe_send(&w.qa, b, 9);
	RUN_UNTIL(sent_udp(mark, b, NULL) == 1, "the probe never left");
	cr_assert_eq(sent_udp(mark, b, w.mac_b), 1);
	cr_assert_eq(sent_asks(mark, b), 0);
	/* The claimed addresses: unknown. */
	probe_send(&w.qa, ip_n(1, 7), 9);
	RUN_UNTIL(sent_asks(mark, ip_n(1, 7)) == 1, "A did not ask");
	run_turns(200);
	cr_assert_eq(sent_udp(mark, ip_n(1, 7), NULL), 0);
	call_ok(2);
}

/*
 * 1000 ARP requests for A's address from 1000 spoofed sources (each
 * frame's source MAC differs from the MAC its ARP body names), while B
 * calls.  Each is answered, to the frame's source; none is learnt from, so
 * none pushes B's entry out, and B's calls keep working.
 */
Test(dpdk_arp, request_flood_keeps_live_peer)
{
	static const uint8_t zero[6];
	uint32_t b = ip(IP_B);
	uint8_t src[6], sha[6];
	unsigned mark = w.nlog;

	for (unsigned i = 0; i < 1000; i++) {
		spoof_macs(i, src, sha);
		inject(k_bcast, src, FERRY__ARP_OP_REQUEST, sha, ip_n(1, i),
		       zero, ip(IP_A));
		if (i % 50 == 49)
			call_ok(100 + i);
	}
	RUN_UNTIL(sent_replies(mark) >= 1000, "A did not answer every request");
	cr_assert_eq(sent_replies(mark), 1000);

	mark = w.nlog;
	probe_send(&w.qa, b, 9);
	RUN_UNTIL(sent_udp(mark, b, NULL) == 1, "the probe never left");
	cr_assert_eq(sent_udp(mark, b, w.mac_b), 1);
	cr_assert_eq(sent_asks(mark, b), 0, "B's entry was pushed out");
	/* Nothing learnt from the requests: the latest source is unknown. */
	probe_send(&w.qa, ip_n(1, 999), 9);
	RUN_UNTIL(sent_asks(mark, ip_n(1, 999)) == 1, "A did not ask");
	run_turns(200);
	cr_assert_eq(sent_udp(mark, ip_n(1, 999), NULL), 0);
	call_ok(2);
}

/*
 * A sends to 1000 addresses nobody answers for (as it would answer 1000
 * spoofed sources), while B calls.  B's entry is in use, so pinned: B's
 * calls keep working and A sends to B without asking.  The places for
 * datagrams waiting for ARP are all taken by then; a new peer that does
 * answer (B's probe lane) still gets its datagram: the oldest waiting one
 * makes room.
 */
Test(dpdk_arp, unanswered_flood_keeps_live_peer)
{
	uint64_t drops = probe_stats(&w.qa).tx_no_neigh;
	uint32_t b = ip(IP_B), nb = ip("10.0.0.4");
	unsigned mark, got;

	for (unsigned i = 0; i < 1000; i++) {
		probe_send(&w.qa, ip_n(2, i), 9);
		if (i % 50 == 49 && i < 900)
			call_ok(100 + i);
	}
	mark = w.nlog;
	got = w.qb.got;
	probe_send(&w.qa, nb, w.qb_port);
	RUN_UNTIL(w.qb.got > got, "the new peer's datagram never arrived");
	cr_assert_eq(sent_asks(mark, nb), 1);
	cr_assert_geq(probe_stats(&w.qa).tx_no_neigh - drops, 1000 - 64);

	mark = w.nlog;
	probe_send(&w.qa, b, 9);
	RUN_UNTIL(sent_udp(mark, b, NULL) == 1, "the probe never left");
	cr_assert_eq(sent_udp(mark, b, w.mac_b), 1);
	cr_assert_eq(sent_asks(mark, b), 0, "B's entry was pushed out");
	call_ok(2);
}

/*
 * A first burst to a new peer waits whole for the one ARP answer: 64
 * datagrams to B's probe lane, unresolved, all arrive and none is dropped
 * (a floor or an echo at 64 in flight sends just this, and nothing would
 * send the dropped ones again).
 */
Test(dpdk_arp, first_burst_waits_whole)
{
	uint64_t drops = probe_stats(&w.qa).tx_no_neigh;
	uint32_t nb = ip("10.0.0.4");
	unsigned mark = w.nlog, got = w.qb.got;

	for (unsigned i = 0; i < 64; i++)
		probe_send(&w.qa, nb, w.qb_port);
	RUN_UNTIL(w.qb.got >= got + 64, "%u of 64 datagrams arrived",
		  w.qb.got - got);
	cr_assert_eq(w.qb.got - got, 64);
	cr_assert_eq(sent_asks(mark, nb), 1, "one ARP request for the burst");
	cr_assert_eq(probe_stats(&w.qa).tx_no_neigh, drops, "none dropped");
}
