/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's transmit frames: one mbuf chain per datagram.
 *
 * The header segment holds the Ethernet/IPv4/UDP headers, the datagram's
 * copied area and the copied pieces up to the first chained one.  A piece
 * of more than COPY_MAX bytes that lies in the payload memory the lane
 * handed out (->mem_alloc, registered with the EAL as external memory) is
 * chained as an external-buffer mbuf, read in place by the driver; every
 * other piece (small ones, ones from elsewhere) and the trailer are copied,
 * into the header segment or, after a chained piece, into a segment of
 * their own.  The port's segment limit (dev_info's nb_seg_max and
 * nb_mtu_seg_max) is respected by copying the last chained pieces instead
 * while a frame would need more.
 *
 * All chained pieces of a frame share its slot's shared info: its count is
 * the number of pieces, and its free callback, run by whoever frees the
 * last of them (our driver's TX clean-up, or a receiver on a loopback
 * port), posts the slot on the lane's completion ring; the lane's own
 * thread gives the cookies their tx_done (dpdk.c).
 */
#include "dpdk.h"

#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_udp.h>

/* The extbuf free callback: any thread, whoever frees the mbuf.  Only
 * posts the slot; tx_done runs on the lane's thread. */
static void extbuf_free(void *addr, void *opaque)
{
	struct tx_slot *s = opaque;
	struct lane *l = s->lane;

	(void)addr;
	/* The ring is multi-producer: a loopback receiver may free on
	 * another thread while our own driver frees here. */
	while (rte_ring_mp_enqueue(l->done, s) != 0)
		rte_pause(); /* sized for every slot: never full for long */
}

/*
 * The UDP checksum of frame @m (IPv4 header @ih, UDP header at @l4_off),
 * in software, over every segment.  Not rte_ipv4_udptcp_cksum_mbuf(): in
 * DPDK 22.11 its rte_raw_cksum_mbuf() truncates a segment's partial sum
 * to 16 bits before byte-swapping it when an odd number of bytes precede
 * the segment, so a chained frame whose first segment carries an odd
 * number of UDP bytes (an odd-length token table or attribute block in
 * the copied header area) went out with a wrong checksum, and the
 * receiver dropped it.  Here each partial sum is folded first.
 */
static uint16_t udp_cksum_chain(const struct rte_mbuf *m,
				const struct rte_ipv4_hdr *ih, uint32_t l4_off)
{
	uint32_t left = rte_be_to_cpu_16(ih->total_length) -
			rte_ipv4_hdr_len(ih);
	uint32_t sum = rte_ipv4_phdr_cksum(ih, 0), done = 0;
	uint16_t ck;

	for (const struct rte_mbuf *seg = m; seg && left; seg = seg->next) {
		const uint8_t *p = rte_pktmbuf_mtod(seg, const uint8_t *);
		uint32_t n = rte_pktmbuf_data_len(seg), part;

		if (seg == m) {
			p += l4_off;
			n -= l4_off;
		}
		if (n > left)
			n = left;
		part = __rte_raw_cksum_reduce(__rte_raw_cksum(p, n, 0));
		/* Bytes after an odd count pair up the other way round. */
		if (done & 1)
			part = rte_bswap16((uint16_t)part);
		sum += part;
		done += n;
		left -= n;
	}
	ck = (uint16_t)~__rte_raw_cksum_reduce(sum);
	/* RFC 768: a computed 0 is sent as all ones. */
	return ck ? ck : 0xffff;
}

/* Whether piece @pc of a datagram may be chained, read in place. */
static bool piece_chainable(const struct lane *l,
			    const struct ferry_dp_piece *pc)
{
	return pc->len > COPY_MAX && (const uint8_t *)pc->ptr >= l->mem &&
	       (const uint8_t *)pc->ptr + pc->len <= l->mem + l->mem_len;
}

/* Segments of @tx's frame when the pieces in @mask are chained: the
 * header segment, one per chained piece, and one per run of copied bytes
 * (pieces, trailer) that follows a chained piece. */
static unsigned frame_segs(const struct ferry_dp_tx *tx, unsigned mask)
{
	unsigned segs = 1;
	bool tail_copy = true;

	for (unsigned k = 0; k < ferry_dp_tx_npieces(tx); k++) {
		if (!tx->piece[k].len)
			continue;
		if (mask & (1u << k)) {
			segs++;
			tail_copy = false;
		} else if (!tail_copy) {
			segs++;
			tail_copy = true;
		}
	}
	return segs + (tx->trailer_len && !tail_copy);
}

/* The pieces of @tx to chain (bit k: piece k): the large ones in the
 * lane's registered memory, the last of them copied instead while the
 * frame would have more segments than the port takes. */
static unsigned chain_plan(const struct lane *l, const struct ferry_dp_tx *tx)
{
	unsigned mask = 0;

	for (unsigned k = 0; k < ferry_dp_tx_npieces(tx); k++)
		if (piece_chainable(l, &tx->piece[k]))
			mask |= 1u << k;
	while (mask && frame_segs(tx, mask) > l->port->seg_max)
		mask &= ~(1u << (31 - __builtin_clz(mask)));
	return mask;
}

/* Copied bytes from piece @k on, up to the next chained one (and the
 * trailer, if none follows). */
static uint32_t copy_run(const struct ferry_dp_tx *tx, unsigned k,
			 unsigned mask)
{
	uint32_t n = 0;

	for (; k < ferry_dp_tx_npieces(tx); k++) {
		if (mask & (1u << k))
			return n;
		n += tx->piece[k].len;
	}
	return n + tx->trailer_len;
}

/* An empty mbuf with room for @bytes: a small transmit one, or a
 * frame-sized receive one. */
static struct rte_mbuf *seg_alloc(struct dpdk_port *p, uint32_t bytes)
{
	return rte_pktmbuf_alloc(bytes <= p->tx_room ? p->tx_pool : p->rx_pool);
}

/* Append @len bytes of @src to frame @m: into its last segment if that
 * is a copy segment, else into a new one for the copied run from piece
 * @k on.  Returns 0 or -ENOMEM. */
static int frame_copy(struct lane *l, struct rte_mbuf *m,
		      const struct ferry_dp_tx *tx, unsigned k, unsigned mask,
		      const void *src, uint32_t len, bool *tail_copy)
{
	uint8_t *d;

	if (!*tail_copy) {
		struct rte_mbuf *c = seg_alloc(l->port, copy_run(tx, k, mask));

		if (!c || rte_pktmbuf_chain(m, c) < 0) {
			rte_pktmbuf_free(c);
			return -ENOMEM;
		}
		*tail_copy = true;
	}
	d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	if (!d)
		return -ENOMEM;
	memcpy(d, src, len);
	return 0;
}

/* Chain piece @pc to frame @m as an external buffer of @slot. */
static int frame_chain(struct lane *l, struct rte_mbuf *m,
		       const struct ferry_dp_piece *pc, struct tx_slot *slot)
{
	struct rte_mbuf *b = rte_pktmbuf_alloc(l->port->tx_pool);

	if (!b)
		return -ENOMEM;
	/* IOVA as VA (checked at mem_alloc): the address is the IOVA.  All
	 * pieces of a frame share the slot's shared info, whose count the
	 * caller set; the free callback runs when the last is freed. */
	rte_pktmbuf_attach_extbuf(b, (void *)(uintptr_t)pc->ptr,
				  (rte_iova_t)(uintptr_t)pc->ptr,
				  (uint16_t)pc->len, &slot->shinfo);
	b->data_off = 0;
	b->data_len = (uint16_t)pc->len;
	b->pkt_len = pc->len;
	if (rte_pktmbuf_chain(m, b) < 0) {
		rte_pktmbuf_free(b);
		return -ENOMEM;
	}
	return 0;
}

/* The pieces and trailer of @tx after the header segment @m, chaining
 * those in @mask.  Returns 0 or -ENOMEM. */
static int frame_pieces(struct lane *l, struct rte_mbuf *m,
			const struct ferry_dp_tx *tx, unsigned mask,
			struct tx_slot *slot)
{
	bool tail_copy = true;
	int ret = 0;

	for (unsigned k = 0; k < ferry_dp_tx_npieces(tx) && !ret; k++) {
		const struct ferry_dp_piece *pc = &tx->piece[k];

		if (!pc->len)
			continue;
		if (mask & (1u << k)) {
			ret = frame_chain(l, m, pc, slot);
			tail_copy = false;
			l->st.tx_extbuf++;
		} else {
			ret = frame_copy(l, m, tx, k, mask, pc->ptr, pc->len,
					 &tail_copy);
			l->st.tx_copied++;
		}
	}
	if (!ret && tx->trailer_len)
		ret = frame_copy(l, m, tx, ferry_dp_tx_npieces(tx), mask,
				 tx->trailer, tx->trailer_len, &tail_copy);
	return ret;
}

/* The Ethernet, IPv4 and UDP headers of frame @m (at @d) for @dlen bytes
 * of datagram, and their checksums (offloaded where the port can). */
static void frame_headers(struct lane *l, struct rte_mbuf *m, uint8_t *d,
			  const struct ferry_dp_tx *tx,
			  const struct rte_ether_addr *dmac, uint32_t dlen)
{
	struct dpdk_port *p = l->port;
	struct ferry__udp_hdrs h;
	struct rte_ipv4_hdr *ih;
	struct rte_udp_hdr *uh;

	memcpy(h.dst_mac, dmac->addr_bytes, RTE_ETHER_ADDR_LEN);
	memcpy(h.src_mac, p->mac.addr_bytes, RTE_ETHER_ADDR_LEN);
	h.src_ip = l->ip;
	h.dst_ip = tx->dst.ip;
	h.src_port = l->udp_port;
	h.dst_port = tx->dst.port;
	h.ip_id = l->ip_id++;
	h.len = (uint16_t)dlen;
	ferry__frame_put_udp(d, &h);
	ih = (struct rte_ipv4_hdr *)(d + RTE_ETHER_HDR_LEN);
	uh = (struct rte_udp_hdr *)(ih + 1);
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = sizeof(*ih);
	if (p->tx_ip_csum)
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
	else
		ferry__frame_ip_csum(d);
	if (p->tx_udp_csum) {
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
		ferry__frame_udp_phdr(d);
	} else {
		uh->dgram_cksum = udp_cksum_chain(
			m, ih, RTE_ETHER_HDR_LEN + sizeof(*ih));
	}
}

/*
 * Build one frame: a header segment with the Ethernet/IPv4/UDP headers,
 * the copied area and the copied pieces up to the first chained one; then
 * each chained piece as an external-buffer segment and each later run of
 * copied bytes (small pieces, pieces from elsewhere, the trailer) in a
 * segment of its own.  @copy: chain nothing.  @slot: where chained pieces'
 * release is posted (NULL: chain nothing).  Returns the frame, or NULL
 * when out of mbufs; *chained says whether any piece is chained (the
 * slot is then released by whoever frees the frame).
 */
struct rte_mbuf *ferry__dpdk_frame_build(struct lane *l,
					 const struct ferry_dp_tx *tx,
					 const struct rte_ether_addr *dmac,
					 bool copy, struct tx_slot *slot,
					 bool *chained)
{
	uint32_t dlen = ferry_dp_tx_len(tx);
	unsigned mask = 0;
	struct rte_mbuf *m;
	uint8_t *d;

	if (!copy && slot && l->zc)
		mask = chain_plan(l, tx);
	if (mask) {
		/* One count per chained piece, plus one held while the
		 * frame is built, so that freeing a half-built frame does
		 * not run the callback. */
		slot->shinfo.free_cb = extbuf_free;
		slot->shinfo.fcb_opaque = slot;
		rte_mbuf_ext_refcnt_set(&slot->shinfo,
					(uint16_t)(__builtin_popcount(mask) + 1));
	}
	m = seg_alloc(l->port, HDRS + tx->hdr_len + copy_run(tx, 0, mask));
	if (!m)
		return NULL;
	d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(HDRS + tx->hdr_len));
	if (!d || frame_pieces(l, m, tx, mask, slot) < 0) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memcpy(d + HDRS, tx->hdr, tx->hdr_len);
	frame_headers(l, m, d, tx, dmac, dlen);
	if (mask)
		rte_mbuf_ext_refcnt_update(&slot->shinfo, -1);
	*chained = mask != 0;
	return m;
}

