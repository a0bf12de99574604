/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane: ferry frames in Ethernet/IPv4/UDP, straight from and
 * to a poll-mode driver, no kernel on the path.
 *
 * Files: this one holds the ops table, receive, transmit and a lane's open
 * and close; txframe.c builds the frames sent (a datagram's copied area
 * and lent pieces as one mbuf chain); port.c the EAL, the ports and a lane's place on its port;
 * neigh.c the neighbour table and ARP; frame.c the frames' bytes (parsed
 * and built without DPDK); dpdk.h what they share.
 *
 * Process-wide state.  The EAL starts once per process, with the arguments
 * of the first instance opened (conf.dpdk_eal).  A port is configured and
 * started by the first instance opened on it, with conf.dpdk_queues queue
 * pairs, and stays up until the process exits.
 *
 * Instances ("lanes").  Each ferry_dp is one lane: an IPv4 address and UDP
 * port on one DPDK port, owned by one thread, with its own TX queue when
 * the port has one to spare.  Received frames reach the right lane by
 *  - a flow rule (IPv4 dst + UDP dst -> the lane's own RX queue) where the
 *    port has free queues and supports rte_flow, or else
 *  - software steering: the lanes left share RX queue 0; whichever of them
 *    polls it (under a trylock) keeps its own frames and puts the others'
 *    on their inboxes (single-producer rings, the queue lock orders the
 *    producers).  A lane alone on its queue skips the inbox entirely.
 *
 * Buffers.
 *  - Receive: the datagram is lent in place, inside its mbuf; ->rx_release
 *    frees the mbuf.  A frame that arrives in several segments is copied
 *    into one first (counted in rx_linearized).
 *  - Transmit: one mbuf chain per datagram (txframe.c): the headers,
 *    the copied area and small pieces in one segment, each large piece
 *    that lies in the payload memory this lane handed out (->mem_alloc,
 *    registered with the EAL as external memory) chained as an
 *    external-buffer mbuf, read in place by the driver, within the
 *    port's segment limit (->max_pieces reports it).  The free callback
 *    of a frame's chained pieces, run by whoever frees the last (our
 *    driver's TX clean-up, or a receiver on a loopback port), posts the
 *    slot on the lane's completion ring; the lane's own thread calls
 *    tx_done for each cookie from ->rx_burst, ->flush, ->wait or ->close.
 *    A datagram with nothing chained has its tx_done at the next of those.
 *
 * Addresses.  Each lane answers ARP for its address, to the asking frame's
 * source MAC, and learns nothing from the request.  Peers' MACs are learnt
 * only from answers to our own requests, sent while a destination is
 * unresolved; the datagrams wait, copied, for up to PENDING_NS (at most
 * PENDING_PER_IP per address; when all PENDING_MAX places are taken the
 * oldest is dropped).  The neighbour table belongs to the port (its policy,
 * pins included, is ntab.c's); each lane keeps a small cache of it.
 *
 * Checksums: IPv4 and UDP checksums go to the port where it offers the
 * offload, and are computed in software where it does not.  Received UDP
 * checksums are checked by the port or in software.  One software check is
 * relaxed, on purpose: a kernel sender that leaves its UDP checksum to
 * offload (veth does, under af_packet) delivers a frame whose checksum
 * field holds only the pseudo-header sum; that value is accepted and
 * counted (rx_csum_unfinished).
 */
#include "dpdk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_udp.h>


#if defined(__SANITIZE_ADDRESS__)
#define FERRY__LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FERRY__LSAN 1
#endif
#endif
#ifdef FERRY__LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Memory kept alive on purpose, with everything it points to: not a leak
 * for LeakSanitizer (no-op in builds without it). */
static void dpdk_lsan_keep(const void *p)
{
#ifdef FERRY__LSAN
	__lsan_ignore_object(p);
#else
	(void)p;
#endif
}

/* --- transmit ------------------------------------------------------------- */

static void slot_put(struct lane *l, uint32_t i)
{
	l->slots[i].ncookies = 0;
	l->slot_free[l->slot_top++] = i;
}

/* Slot @i's pieces are released: give each cookie its tx_done. */
static void slot_done(struct lane *l, uint32_t i)
{
	struct tx_slot *s = &l->slots[i];
	unsigned n = s->ncookies;

	slot_put(l, i);
	for (unsigned k = 0; k < n; k++)
		l->conf.tx_done(l->conf.tx_done_ctx, s->cookie[k]);
}

/* Take a slot for @tx's cookies (none: NULL, and *ok stays true); *ok
 * false when every slot is in flight. */
static struct tx_slot *slot_take(struct lane *l, const struct ferry_dp_tx *tx,
				 uint32_t *k, bool *ok)
{
	struct tx_slot *s;
	unsigned n = 0;

	*ok = true;
	for (unsigned i = 0; i < ferry_dp_tx_npieces(tx); i++)
		n += tx->piece[i].cookie != NULL;
	if (!n)
		return NULL;
	if (l->slot_top == 0) {
		*ok = false;
		return NULL;
	}
	*k = l->slot_free[--l->slot_top];
	s = &l->slots[*k];
	s->ncookies = 0;
	for (unsigned i = 0; i < ferry_dp_tx_npieces(tx); i++)
		if (tx->piece[i].cookie)
			s->cookie[s->ncookies++] = tx->piece[i].cookie;
	return s;
}

/* Give tx_done for every body released since the last call. */
static unsigned lane_reap(struct lane *l)
{
	void *sl[BURST];
	unsigned n, total = 0;

	for (uint32_t i = 0; i < l->ncopied; i++) {
		uint32_t k = l->copied[i];
		slot_done(l, k);
	}
	total += l->ncopied;
	l->ncopied = 0;
	while ((n = rte_ring_sc_dequeue_burst(l->done, sl, BURST, NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct tx_slot *s = sl[i];

			slot_done(l, (uint32_t)(s - l->slots));
		}
		total += n;
	}
	return total;
}

/* Push queued frames to the port; what it does not take stays queued. */
static void lane_push(struct lane *l)
{
	struct dpdk_port *p = l->port;
	uint16_t sent;

	if (l->tx_n == 0)
		return;
	/* Always locked: another lane may come to share the queue at any
	 * time, and an uncontended lock costs little next to a burst. */
	rte_spinlock_lock(&p->q[l->txq].tx_lock);
	sent = rte_eth_tx_burst(p->id, l->txq, l->txbuf, (uint16_t)l->tx_n);
	queue_unlock(&p->q[l->txq].tx_lock);
	if (sent < l->tx_n)
		memmove(l->txbuf, l->txbuf + sent,
			(l->tx_n - sent) * sizeof(l->txbuf[0]));
	l->tx_n -= sent;
}

void ferry__dpdk_lane_enqueue(struct lane *l, struct rte_mbuf *m)
{
	/* A burst's worth goes at once: the peer starts on it while we build
	 * the next (a poll-mode port costs nothing extra per push). */
	if (l->tx_n >= PUSH_AT)
		lane_push(l);
	if (l->tx_n == TXBUF) {
		/* The port takes nothing: drop, as a full NIC queue would. */
		l->st.tx_errors++;
		rte_pktmbuf_free(m);
		return;
	}
	l->txbuf[l->tx_n++] = m;
}

static void set_dst(struct rte_mbuf *m, const struct rte_ether_addr *mac)
{
	rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->dst_addr = *mac;
}

/*
 * Datagrams waiting for ARP: send those resolved, drop the expired and
 * those whose address lost its entry (pushed out by newer ones: ntab.h).
 * Looked up when an answer was believed since the last look, or every
 * PENDING_CHECK_NS, not at every flush: during a flood of unresolvable
 * destinations that would be a table scan per datagram per flush.
 */
static void pend_service(struct lane *l, uint64_t now)
{
	uint32_t gen = __atomic_load_n(&l->port->neigh_gen, __ATOMIC_RELAXED);
	unsigned keep = 0;

	if (gen == l->pend_gen && now < l->pend_next)
		return;
	l->pend_gen = gen;
	l->pend_next = now + PENDING_CHECK_NS;
	for (unsigned i = 0; i < l->npend; i++) {
		struct rte_ether_addr mac;

		switch (ferry__dpdk_neigh_resolve(l, l->pend[i].ip, false, &mac,
						  now)) {
		case FERRY__NTAB_KNOWN:
			set_dst(l->pend[i].m, &mac);
			ferry__dpdk_lane_enqueue(l, l->pend[i].m);
			continue;
		case FERRY__NTAB_WAIT:
			if (now - l->pend[i].since <= PENDING_NS) {
				l->pend[keep++] = l->pend[i];
				continue;
			}
			break;
		default:
			break;
		}
		l->st.tx_no_neigh++;
		rte_pktmbuf_free(l->pend[i].m);
	}
	l->npend = keep;
}

/*
 * Room to hold a datagram for @ip until it resolves: none if PENDING_PER_IP
 * already wait for it; else a free place, or the oldest datagram's (dropped),
 * so that destinations that never answer cannot hold every place for
 * PENDING_NS.  Returns the place, or -1.
 */
static int pend_room(struct lane *l, uint32_t ip)
{
	unsigned same = 0;

	for (unsigned i = 0; i < l->npend; i++)
		same += l->pend[i].ip == ip;
	if (same >= PENDING_PER_IP)
		return -1;
	if (l->npend == PENDING_MAX) {
		/* Kept in arrival order: the first is the oldest. */
		l->st.tx_no_neigh++;
		rte_pktmbuf_free(l->pend[0].m);
		memmove(l->pend, l->pend + 1, --l->npend * sizeof(l->pend[0]));
	}
	return (int)l->npend;
}

static unsigned dpdk_tx_burst(struct ferry_dp *dp, const struct ferry_dp_tx *tx,
			      unsigned n)
{
	struct lane *l = &dp->l;
	uint64_t now = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		struct rte_ether_addr mac;
		struct tx_slot *slot;
		enum ferry__ntab_res res;
		struct rte_mbuf *m;
		bool known, chained = false, ok, refuse = false;
		uint32_t k = 0;
		int pend = 0;

		if (ferry_dp_tx_npieces(&tx[i]) > FERRY_DP_PIECES_MAX ||
		    tx[i].trailer_len > FERRY_DP_TRAILER_MAX ||
		    ferry_dp_tx_len(&tx[i]) > l->max_dgram) {
			/* Larger than the link carries: the transport never
			 * asks; count and consume it. */
			l->st.tx_errors++;
			refuse = true;
		}
		if (!refuse && l->tx_n == TXBUF) {
			lane_push(l);
			if (l->tx_n == TXBUF)
				break;
		}
		if (!refuse) {
			if (!now)
				now = l->now;
			res = ferry__dpdk_neigh_resolve(l, tx[i].dst.ip, true,
							&mac, now);
			known = res == FERRY__NTAB_KNOWN;
			if (!known &&
			    (res != FERRY__NTAB_WAIT ||
			     (pend = pend_room(l, tx[i].dst.ip)) < 0)) {
				l->st.tx_no_neigh++;
				refuse = true;
			}
		}
		slot = slot_take(l, &tx[i], &k, &ok);
		if (!ok)
			break; /* every slot in flight: retry after reaping */
		if (refuse) {
			/* Refused outright, but the pieces still need their
			 * tx_done. */
			if (slot)
				l->copied[l->ncopied++] = k;
			continue;
		}
		m = ferry__dpdk_frame_build(l, &tx[i], known ? &mac : &l->port->mac, !known,
				slot, &chained);
		if (!m) {
			if (slot)
				slot_put(l, k);
			break; /* out of mbufs: retry later */
		}
		if (slot && !chained)
			l->copied[l->ncopied++] = k;
		if (known) {
			ferry__dpdk_lane_enqueue(l, m);
		} else {
			l->pend[pend].m = m;
			l->pend[pend].ip = tx[i].dst.ip;
			l->pend[pend].since = now;
			l->npend++;
		}
	}
	return i;
}

static int dpdk_flush(struct ferry_dp *dp)
{
	struct lane *l = &dp->l;

	if (l->npend)
		pend_service(l, now_ns());
	lane_push(l);
	lane_reap(l);
	return 0;
}

/* --- receive -------------------------------------------------------------- */

/* A multi-segment frame as one segment (a copy); NULL if out of mbufs. */
static struct rte_mbuf *linearize(struct lane *l, struct rte_mbuf *m)
{
	struct rte_mbuf *n;
	uint8_t *d;

	if (m->pkt_len > l->port->mtu + RTE_ETHER_HDR_LEN + 4u)
		goto drop;
	n = rte_pktmbuf_alloc(l->port->rx_pool);
	if (!n)
		goto drop;
	d = (uint8_t *)rte_pktmbuf_append(n, (uint16_t)m->pkt_len);
	if (!d) {
		rte_pktmbuf_free(n);
		goto drop;
	}
	rte_pktmbuf_read(m, 0, m->pkt_len, d);
	n->ol_flags = m->ol_flags & (RTE_MBUF_F_RX_IP_CKSUM_MASK |
				     RTE_MBUF_F_RX_L4_CKSUM_MASK);
	rte_pktmbuf_free(m);
	l->st.rx_linearized++;
	return n;
drop:
	rte_pktmbuf_free(m);
	l->st.rx_dropped++;
	return NULL;
}

enum { RX_DROP, RX_ARP, RX_UDP };

/* What the port says of @m's checksums, as frame.c takes it.  A port that
 * checks IPv4 checksums and gave no verdict has no bad one to report. */
static void csum_hints(const struct lane *l, const struct rte_mbuf *m,
		       enum ferry__csum_hint *ip, enum ferry__csum_hint *l4)
{
	uint64_t ipf = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

	if (ipf == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		*ip = FERRY__CSUM_BAD;
	else if (ipf == RTE_MBUF_F_RX_IP_CKSUM_GOOD || l->port->rx_ip_csum)
		*ip = FERRY__CSUM_GOOD;
	else
		*ip = FERRY__CSUM_CHECK;
	if (l4f == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		*l4 = FERRY__CSUM_BAD;
	else if (l4f == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		*l4 = FERRY__CSUM_GOOD;
	else
		*l4 = FERRY__CSUM_CHECK;
}

/*
 * Classify frame @m (frame.c reads its bytes): RX_UDP fills *s (payload
 * offset/length, source) and *dst_ip / *dst_port; RX_ARP; RX_DROP
 * (counted, not freed).
 */
static int frame_parse(struct lane *l, struct rte_mbuf *m, struct stashed *s,
		       uint32_t *dst_ip, uint16_t *dst_port)
{
	enum ferry__csum_hint ip, l4;
	struct ferry__frame_rx rx;

	csum_hints(l, m, &ip, &l4);
	switch (ferry__frame_parse(rte_pktmbuf_mtod(m, const uint8_t *),
				   rte_pktmbuf_data_len(m), ip, l4, &rx)) {
	case FERRY__FRAME_UDP:
		break;
	case FERRY__FRAME_ARP:
		return RX_ARP;
	case FERRY__FRAME_FRAGMENT:
		l->st.rx_fragments++;
		return RX_DROP;
	case FERRY__FRAME_BAD_CSUM:
		l->st.rx_bad_csum++;
		return RX_DROP;
	default:
		l->st.rx_not_ours++;
		return RX_DROP;
	}
	if (rx.csum_unfinished)
		l->st.rx_csum_unfinished++;
	/* Checked: a frame steered to another lane's inbox is parsed again
	 * there (for its offsets) without another pass over its bytes. */
	m->ol_flags = (m->ol_flags & ~(RTE_MBUF_F_RX_IP_CKSUM_MASK |
				       RTE_MBUF_F_RX_L4_CKSUM_MASK)) |
		      RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	s->m = m;
	s->off = rx.off;
	s->len = rx.h.len;
	s->src.ip = rx.h.src_ip;
	s->src.port = rx.h.src_port;
	*dst_ip = rx.h.dst_ip;
	*dst_port = rx.h.dst_port;
	return RX_UDP;
}

static void stash_push(struct lane *l, const struct stashed *s)
{
	l->stash[(l->stash_head + l->stash_n) % STASH] = *s;
	l->stash_n++;
}

/* The lane of this port for @ip:@port, or NULL; under the queue lock. */
static struct lane *steer(struct dpdk_port *p, uint16_t q, uint32_t ip,
			  uint16_t port)
{
	for (unsigned i = 0; i < p->q[q].nmembers; i++) {
		struct lane *o = p->q[q].members[i];

		if (o->udp_port == port && o->ip == ip)
			return o;
	}
	return NULL;
}

/* Receive up to @room frames of ours from queue @q, steering the others';
 * under the queue group's lock.  Returns frames stashed. */
static unsigned rx_queue(struct lane *l, uint16_t q, unsigned room)
{
	struct dpdk_port *p = l->port;
	struct rte_mbuf *ms[BURST];
	unsigned n, got = 0;

	n = rte_eth_rx_burst(p->id, q, ms, (uint16_t)(room < BURST ? room : BURST));
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = ms[i];
		struct stashed s;
		struct lane *to;
		uint32_t dip;
		uint16_t dport;

		if (m->nb_segs > 1) {
			m = linearize(l, m);
			if (!m)
				continue;
		}
		switch (frame_parse(l, m, &s, &dip, &dport)) {
		case RX_UDP:
			if (dport == l->udp_port && dip == l->ip) {
				stash_push(l, &s);
				got++;
				break;
			}
			to = steer(p, l->rxq, dip, dport);
			if (!to) {
				l->st.rx_not_ours++;
				rte_pktmbuf_free(m);
			} else if (rte_ring_sp_enqueue(to->inbox, m) != 0) {
				l->st.rx_dropped++;
				rte_pktmbuf_free(m);
			}
			break;
		case RX_ARP:
			ferry__dpdk_arp_input(l, m);
			break;
		default:
			rte_pktmbuf_free(m);
		}
	}
	return got;
}

/* Take frames for this lane: its inbox, then its RX queue (when no other
 * member is polling it).  Fills the stash; returns frames stashed. */
static unsigned lane_poll(struct lane *l)
{
	struct dpdk_port *p = l->port;
	struct rte_mbuf *ms[BURST];
	unsigned got = 0, room, n;
	rte_spinlock_t *lock = &p->q[l->rxq].rx_lock;

	room = STASH - l->stash_n;
	if (room > BURST)
		room = BURST;
	if (room == 0)
		return 0;
	n = rte_ring_sc_dequeue_burst(l->inbox, (void **)ms, room, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct stashed s;
		uint32_t dip;
		uint16_t dport;

		/* Steered here already parsed and checksummed once (the
		 * poller marked it good); parse again for the offsets. */
		if (frame_parse(l, ms[i], &s, &dip, &dport) == RX_UDP) {
			stash_push(l, &s);
			got++;
		} else {
			rte_pktmbuf_free(ms[i]);
		}
	}
	room -= n;
	if (room == 0 || !rte_spinlock_trylock(lock))
		return got;
	/* Frames are steered to inboxes only under this lock: what reached
	 * ours before we took it is older than anything still in the queue,
	 * and must be stashed first to keep the order. */
	if (rte_ring_count(l->inbox)) {
		queue_unlock(lock);
		return got;
	}
	/* A lane with a flow-steered queue of its own polls just that; the
	 * lanes sharing queue 0 also poll every queue no rule claims (a peer,
	 * or RSS, may deliver there), all under queue 0's lock. */
	if (l->rxq != 0) {
		got += rx_queue(l, l->rxq, room);
	} else {
		for (uint16_t q = 0; q < p->nb_q && got < room; q++)
			if (q == 0 || !p->q[q].owned)
				got += rx_queue(l, q, room - got);
	}
	queue_unlock(lock);
	return got;
}

static unsigned dpdk_rx_burst(struct ferry_dp *dp, struct ferry_dp_pkt *pkts,
			      unsigned n)
{
	struct lane *l = &dp->l;
	unsigned out = 0;

	l->now = now_ns();
	lane_reap(l);
	if (l->stash_n < n)
		lane_poll(l);
	while (out < n && l->stash_n) {
		struct stashed *s = &l->stash[l->stash_head];
		uint32_t id;

		if (l->lent_top == 0) {
			/* Every receive slot is lent: leave the rest stashed
			 * until the transport gives some back. */
			break;
		}
		id = l->lent_free[--l->lent_top];
		l->lent[id] = s->m;
		pkts[out].data = rte_pktmbuf_mtod_offset(s->m, uint8_t *, s->off);
		pkts[out].len = s->len;
		pkts[out].id = id;
		pkts[out].src = s->src;
		out++;
		l->stash_head = (l->stash_head + 1) % STASH;
		l->stash_n--;
	}
	if (l->tx_n)
		lane_push(l); /* ARP replies, and what waited for the port */
	return out;
}

static void dpdk_rx_release(struct ferry_dp *dp, uint32_t id)
{
	struct lane *l = &dp->l;

	rte_pktmbuf_free(l->lent[id]);
	l->lent[id] = NULL;
	l->lent_free[l->lent_top++] = id;
}

static int dpdk_wait(struct ferry_dp *dp, int64_t timeout_ns)
{
	struct lane *l = &dp->l;
	uint64_t start = now_ns(), now = start;

	l->now = start;
	uint64_t end = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
	unsigned idle = 0;

	/* Poll-mode: nothing to sleep on.  Spin; when not busy-polling,
	 * back off to short sleeps after 200 us of silence so an idle
	 * endpoint does not hold a core. */
	while (!atomic_exchange_explicit(&l->woken, false, memory_order_acq_rel)) {
		if (l->stash_n || lane_poll(l))
			break;
		if (lane_reap(l))
			break;
		if (l->npend || l->tx_n)
			dpdk_flush(dp);
		if ((++idle & 63) == 0) {
			now = l->now = now_ns();
			if (now >= end)
				break;
			if (!l->conf.busy_poll && now - start > 200000) {
				struct timespec ts = { 0, 50000 };

				nanosleep(&ts, NULL);
			} else {
				rte_pause();
			}
		}
	}
	return 0;
}

static int dpdk_wake(struct ferry_dp *dp)
{
	atomic_store_explicit(&dp->l.woken, true, memory_order_release);
	return 0;
}


/* --- open / close --------------------------------------------------------- */

static void dpdk_close(struct ferry_dp *dp)
{
	struct lane *l;
	uint64_t end;

	if (!dp)
		return;
	l = &dp->l;
	if (l->port) {
		ferry__dpdk_lane_detach(l);
		/* Let the port finish what it holds of our memory. */
		end = now_ns() + 1000000000ull;
		for (;;) {
			for (unsigned i = 0; i < l->npend; i++)
				rte_pktmbuf_free(l->pend[i].m);
			l->npend = 0;
			lane_push(l);
			rte_spinlock_lock(&l->port->q[l->txq].tx_lock);
			rte_eth_tx_done_cleanup(l->port->id, l->txq, 0);
			rte_spinlock_unlock(&l->port->q[l->txq].tx_lock);
			lane_reap(l);
			if ((l->slot_top == l->nslots && l->tx_n == 0) ||
			    now_ns() > end)
				break;
			rte_pause();
		}
		for (unsigned i = 0; i < l->tx_n; i++)
			rte_pktmbuf_free(l->txbuf[i]);
		l->tx_n = 0;
		lane_reap(l);
		while (l->stash_n) {
			rte_pktmbuf_free(l->stash[l->stash_head].m);
			l->stash_head = (l->stash_head + 1) % STASH;
			l->stash_n--;
		}
		for (uint32_t i = 0; l->lent && i < l->nlent; i++)
			if (l->lent[i])
				rte_pktmbuf_free(l->lent[i]);
		if (l->slot_top != l->nslots) {
			/* The driver still holds bodies in our memory: keep
			 * the memory and this lane (its completion ring) alive
			 * rather than let the driver read freed pages. */
			log_err("port %u: %u transmits never completed; their "
				"memory is kept", l->port->id,
				l->nslots - l->slot_top);
			/* On purpose: tell LeakSanitizer, which would report
			 * it at exit (a frame whose receiver in this process
			 * never read it again: a closed endpoint on net_ring,
			 * or one whose fault injection holds it). */
			dpdk_lsan_keep(dp);
			return;
		}
	}
	if (l->mem) {
		if (l->dma_dev)
			rte_dev_dma_unmap(l->dma_dev, l->mem,
					  (uint64_t)(uintptr_t)l->mem, l->mem_len);
		if (l->mem_registered)
			rte_extmem_unregister(l->mem, l->mem_len);
		munmap(l->mem, l->mem_len);
	}
	rte_ring_free(l->inbox);
	rte_ring_free(l->done);
	free(l->lent);
	free(l->lent_free);
	free(l->slots);
	free(l->slot_free);
	free(l->copied);
	free(dp);
}

static int dpdk_open(const struct ferry_dp_conf *conf, struct ferry_dp **out)
{
	struct ferry_dp *dp;
	struct lane *l;
	int ret;

	if (!conf->bind_addr) {
		log_err("a DPDK endpoint needs its own IPv4 address "
			"(bind_addr / --ip)");
		return -EINVAL;
	}
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	l = &dp->l;
	l->conf = *conf;
	if (ferry__addr_parse_ip(conf->bind_addr, &l->ip) < 0 || l->ip == 0) {
		log_err("'%s' is not an IPv4 address of this host",
			conf->bind_addr);
		free(dp);
		return -EINVAL;
	}
	l->udp_port = conf->port;
	atomic_init(&l->woken, false);
	/* Receive slots are not what limits us (mbufs are): the transport
	 * may hold more frames than its rx_bufs for a while (a server keeps
	 * a request it echoes until the response is acknowledged), and a
	 * frame refused here would wait in the stash with the very acks that
	 * release the others behind it. */
	l->nlent = rx_slots(conf);
	l->nslots = conf->tx_slots ? conf->tx_slots : 1024;
	l->lent = calloc(l->nlent, sizeof(*l->lent));
	l->lent_free = calloc(l->nlent, sizeof(*l->lent_free));
	l->slots = calloc(l->nslots, sizeof(*l->slots));
	l->slot_free = calloc(l->nslots, sizeof(*l->slot_free));
	l->copied = calloc(l->nslots, sizeof(*l->copied));
	if (!l->lent || !l->lent_free || !l->slots || !l->slot_free ||
	    !l->copied) {
		dpdk_close(dp);
		return -ENOMEM;
	}
	for (uint32_t i = l->nlent; i-- > 0;)
		l->lent_free[l->lent_top++] = i;
	for (uint32_t i = l->nslots; i-- > 0;) {
		l->slots[i].lane = l;
		l->slot_free[l->slot_top++] = i;
	}

	ret = ferry__dpdk_join(l, conf);
	if (ret < 0) {
		dpdk_close(dp);
		return ret;
	}
	l->max_dgram = l->port->mtu - 28u;
	if (l->max_dgram > conf->max_frame)
		l->max_dgram = conf->max_frame;
	*out = dp;
	return 0;
}

static int dpdk_local_addr(struct ferry_dp *dp, struct ferry_addr *out)
{
	out->ip = dp->l.ip;
	out->port = dp->l.udp_port;
	return 0;
}

/*
 * Payload memory: anonymous pages registered with the EAL as external
 * memory (and DMA-mapped for the port's device, where it has an IOMMU to
 * map), so that bodies in it can be chained to frames as external buffers.
 * Zero copy needs IOVA as VA; in physical-address mode bodies are copied.
 */
static void *dpdk_mem_alloc(struct ferry_dp *dp, size_t len)
{
	struct lane *l = &dp->l;
	size_t pg = 4096;
	struct rte_eth_dev_info info;

	if (l->mem || len == 0)
		return NULL;
	len = (len + pg - 1) & ~(pg - 1);
	l->mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (l->mem == MAP_FAILED) {
		l->mem = NULL;
		return NULL;
	}
	l->mem_len = len;
	if (rte_extmem_register(l->mem, len, NULL, 0, pg) == 0) {
		l->mem_registered = true;
		/* Devices without an IOMMU to program (the virtual ones)
		 * refuse; that is fine. */
		if (rte_eth_dev_info_get(l->port->id, &info) == 0 &&
		    info.device &&
		    rte_dev_dma_map(info.device, l->mem,
				    (uint64_t)(uintptr_t)l->mem, len) == 0)
			l->dma_dev = info.device;
	}
	l->zc = l->mem_registered && l->port->multi_seg &&
		rte_eal_iova_mode() == RTE_IOVA_VA;
	return l->mem;
}

static void dpdk_stats(const struct ferry_dp *dp, struct ferry_dp_stats *out)
{
	*out = dp->l.st;
	/* Bodies chained from registered memory are this backend's
	 * zero-copy sends. */
	out->tx_zc = out->tx_zc_fixed = dp->l.st.tx_extbuf;
}

static uint32_t dpdk_max_frame(const struct ferry_dp *dp)
{
	return dp->l.max_dgram;
}

/* The pieces a frame can chain within the port's segment limit: one
 * segment goes to the headers and one to a trailer after a chained piece.
 * More pieces are still taken; the excess is copied. */
static unsigned dpdk_max_pieces(const struct ferry_dp *dp)
{
	uint16_t segs = dp->l.port->seg_max;

	if (!dp->l.port->multi_seg || segs < 3)
		return 1;
	return segs - 2u < FERRY_DP_PIECES_MAX ? segs - 2u
					       : FERRY_DP_PIECES_MAX;
}

const struct ferry_dp_ops ferry__dp_dpdk_ops = {
	.name = "dpdk",
	.open = dpdk_open,
	.close = dpdk_close,
	.local_addr = dpdk_local_addr,
	.mem_alloc = dpdk_mem_alloc,
	.rx_burst = dpdk_rx_burst,
	.rx_release = dpdk_rx_release,
	.tx_burst = dpdk_tx_burst,
	.flush = dpdk_flush,
	.wait = dpdk_wait,
	.wake = dpdk_wake,
	.stats = dpdk_stats,
	.max_frame = dpdk_max_frame,
	.max_pieces = dpdk_max_pieces,
};
