/* SPDX-License-Identifier: MIT */
/*
 * Ethernet/IPv4/UDP and ARP frames as bytes (see frame.h): the DPDK
 * dataplane's parser of received frames, the builder of the headers it
 * sends, and the pure part of its ARP.  No DPDK here: received bytes are
 * read through the bounded reader, and the Internet checksum is summed the
 * way DPDK's rte_raw_cksum sums it, so the result is the same bit for bit.
 */
#include <arpa/inet.h>
#include <string.h>

#include "transport/rd.h"

#include "frame.h"

#define IPV4_VHL_DEF 0x45        /* version 4, five 32-bit words */
#define IPV4_DF 0x4000           /* don't fragment */
#define IPV4_MF 0x2000           /* more fragments */
#define IPV4_OFF_MASK 0x1fff     /* fragment offset */
#define IPV4_TTL 64
#define IPPROTO_UDP_ 17
#define ARP_HRD_ETHER 1

/* Offsets in a frame built by ferry__frame_put_udp. */
#define IP_OFF FERRY__ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + 10)
#define UDP_OFF (IP_OFF + FERRY__IPV4_HLEN)
#define UDP_CSUM_OFF (UDP_OFF + 6)

/*
 * The Internet checksum (RFC 1071), summed as DPDK's __rte_raw_cksum sums
 * it: 16-bit words in the machine's order, an odd last byte as a word with
 * a zero second byte.  The 32-bit sum cannot overflow for the lengths
 * summed here (an IPv4 datagram, under 64 KiB).
 */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2) {
		uint16_t v;

		memcpy(&v, p + i, 2);
		sum += v;
	}
	if (n & 1) {
		uint16_t v = 0;

		memcpy(&v, p + i, 1);
		sum += v;
	}
	return sum;
}

/* Fold @sum to 16 bits (not complemented), in host order.  The sum is the
 * same in either byte order up to a swap of its two bytes (RFC 1071, 2.B),
 * so one swap turns the machine's word order into network order. */
static uint16_t csum_fold(uint32_t sum)
{
	sum = (sum >> 16) + (sum & 0xffff);
	sum = (sum >> 16) + (sum & 0xffff);
	return ntohs((uint16_t)sum);
}

/* Add two folded sums (one's complement addition). */
static uint16_t csum_plus(uint16_t a, uint16_t b)
{
	uint32_t all = (uint32_t)a + b;

	all = (all & 0xffff) + (all >> 16);
	all = (all & 0xffff) + (all >> 16);
	return (uint16_t)all;
}

/* The UDP pseudo-header sum (RFC 768) for @len bytes of IPv4 payload from
 * @src to @dst (network order). */
static uint16_t udp_phdr(uint32_t src, uint32_t dst, uint16_t len)
{
	uint8_t ph[12];

	memcpy(ph, &src, 4);
	memcpy(ph + 4, &dst, 4);
	ph[8] = 0;
	ph[9] = IPPROTO_UDP_;
	ferry_wr_u16(ph + 10, len);
	return csum_fold(csum_add(0, ph, sizeof(ph)));
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Four bytes of address, kept in network order. */
static uint32_t rd_ip(struct ferry_rd *r)
{
	const uint8_t *p = ferry_rd_take(r, 4);
	uint32_t ip = 0;

	if (p)
		memcpy(&ip, p, 4);
	return ip;
}

static void rd_mac(struct ferry_rd *r, uint8_t *mac)
{
	const uint8_t *p = ferry_rd_take(r, FERRY__ETH_ALEN);

	if (p)
		memcpy(mac, p, FERRY__ETH_ALEN);
	else
		memset(mac, 0, FERRY__ETH_ALEN);
}

/*
 * The UDP datagram at the start of @pkt, the rest of an IPv4 packet from
 * @src to @dst (network order): its length, then its checksum.  A
 * checksum that does not add up is still accepted when it equals the
 * pseudo-header sum and the datagram fills the IPv4 payload: a kernel
 * sender that leaves the checksum to offload (veth does, under af_packet)
 * sends just that.
 */
static enum ferry__frame_kind frame_udp(struct ferry_rd *pkt, uint32_t src,
					uint32_t dst, enum ferry__csum_hint l4,
					struct ferry__frame_rx *out)
{
	/* The IPv4 payload's length, which the pseudo-header sums. */
	uint16_t plen = (uint16_t)ferry_rd_left(pkt), ulen, ck, phdr;
	const uint8_t *uh, *dg;
	struct ferry_rd peek = *pkt;

	/* The header first, to learn the datagram's length. */
	uh = ferry_rd_take(&peek, FERRY__UDP_HLEN);
	if (!uh)
		return FERRY__FRAME_NOT_OURS;
	ulen = be16(uh + 4);
	ck = be16(uh + 6);
	if (ulen < FERRY__UDP_HLEN || ulen > plen)
		return FERRY__FRAME_NOT_OURS;
	dg = ferry_rd_take(pkt, ulen);
	if (!dg)
		return FERRY__FRAME_NOT_OURS;
	if (l4 == FERRY__CSUM_BAD)
		return FERRY__FRAME_BAD_CSUM;
	out->csum_unfinished = false;
	if (l4 != FERRY__CSUM_GOOD && ck != 0) {
		phdr = udp_phdr(src, dst, plen);
		/* The pseudo-header length is the IP payload's; a UDP length
		 * shorter than it would be malformed anyway. */
		if (csum_plus(csum_fold(csum_add(0, dg, ulen)), phdr) != 0xffff) {
			/* Unfinished by a kernel sender's offload?  Then the
			 * field holds the folded pseudo-header sum. */
			if (ulen != plen || ck != phdr)
				return FERRY__FRAME_BAD_CSUM;
			out->csum_unfinished = true;
		}
	}
	out->h.src_port = be16(uh);
	out->h.dst_port = be16(uh + 2);
	out->h.len = (uint16_t)(ulen - FERRY__UDP_HLEN);
	return FERRY__FRAME_UDP;
}

/* The IPv4 packet at @r (the rest of the frame): its header, then its UDP
 * datagram. */
static enum ferry__frame_kind frame_ipv4(struct ferry_rd *r,
					 enum ferry__csum_hint ip,
					 enum ferry__csum_hint l4,
					 struct ferry__frame_rx *out)
{
	struct ferry_rd peek = *r, pkt;
	const uint8_t *ih;
	uint32_t ihl, src, dst;
	uint16_t tot;

	/* The fixed header first, to learn the packet's lengths. */
	ih = ferry_rd_take(&peek, FERRY__IPV4_HLEN);
	if (!ih)
		return FERRY__FRAME_NOT_OURS;
	ihl = (uint32_t)(ih[0] & 0xf) * 4;
	tot = be16(ih + 2);
	if ((ih[0] >> 4) != 4 || ihl < FERRY__IPV4_HLEN ||
	    ih[9] != IPPROTO_UDP_ || tot < ihl + FERRY__UDP_HLEN ||
	    tot > ferry_rd_left(r))
		return FERRY__FRAME_NOT_OURS;
	if (be16(ih + 6) & (IPV4_MF | IPV4_OFF_MASK))
		return FERRY__FRAME_FRAGMENT;
	/* The packet without the Ethernet padding behind it, and its header
	 * with the options. */
	pkt = ferry_rd_sub(r, tot);
	ih = ferry_rd_take(&pkt, ihl);
	if (!ih)
		return FERRY__FRAME_NOT_OURS;
	if (ip == FERRY__CSUM_BAD ||
	    (ip == FERRY__CSUM_CHECK && csum_fold(csum_add(0, ih, ihl)) != 0xffff))
		return FERRY__FRAME_BAD_CSUM;
	memcpy(&src, ih + 12, 4);
	memcpy(&dst, ih + 16, 4);
	out->h.src_ip = src;
	out->h.dst_ip = dst;
	out->h.ip_id = be16(ih + 4);
	out->off = (uint16_t)(FERRY__ETH_HLEN + ihl + FERRY__UDP_HLEN);
	return frame_udp(&pkt, src, dst, l4, out);
}

enum ferry__frame_kind ferry__frame_parse(const uint8_t *p, size_t len,
					  enum ferry__csum_hint ip,
					  enum ferry__csum_hint l4,
					  struct ferry__frame_rx *out)
{
	struct ferry_rd r;
	const uint8_t *eh;
	enum ferry__frame_kind k;
	uint16_t type;

	ferry_rd_init(&r, p, len);
	eh = ferry_rd_take(&r, FERRY__ETH_HLEN);
	if (!eh)
		return FERRY__FRAME_NOT_OURS;
	type = be16(eh + 2 * FERRY__ETH_ALEN);
	if (type == FERRY__ETHERTYPE_ARP)
		return FERRY__FRAME_ARP;
	if (type != FERRY__ETHERTYPE_IPV4)
		return FERRY__FRAME_NOT_OURS;
	k = frame_ipv4(&r, ip, l4, out);
	if (k == FERRY__FRAME_UDP) {
		memcpy(out->h.dst_mac, eh, FERRY__ETH_ALEN);
		memcpy(out->h.src_mac, eh + FERRY__ETH_ALEN, FERRY__ETH_ALEN);
	}
	return k;
}

void ferry__frame_put_udp(uint8_t *d, const struct ferry__udp_hdrs *h)
{
	uint8_t *p = d;

	memcpy(p, h->dst_mac, FERRY__ETH_ALEN);
	memcpy(p + FERRY__ETH_ALEN, h->src_mac, FERRY__ETH_ALEN);
	p = ferry_wr_u16(p + 2 * FERRY__ETH_ALEN, FERRY__ETHERTYPE_IPV4);
	*p++ = IPV4_VHL_DEF;
	*p++ = 0; /* type of service */
	p = ferry_wr_u16(p, (uint16_t)(FERRY__IPV4_HLEN + FERRY__UDP_HLEN +
				       h->len));
	p = ferry_wr_u16(p, h->ip_id);
	/* Never fragmented: ferry's frames fit the path by construction. */
	p = ferry_wr_u16(p, IPV4_DF);
	*p++ = IPV4_TTL;
	*p++ = IPPROTO_UDP_;
	p = ferry_wr_u16(p, 0); /* header checksum: the caller's */
	memcpy(p, &h->src_ip, 4);
	memcpy(p + 4, &h->dst_ip, 4);
	p = ferry_wr_u16(p + 8, h->src_port);
	p = ferry_wr_u16(p, h->dst_port);
	p = ferry_wr_u16(p, (uint16_t)(FERRY__UDP_HLEN + h->len));
	ferry_wr_u16(p, 0); /* UDP checksum: the caller's */
}

void ferry__frame_ip_csum(uint8_t *d)
{
	ferry_wr_u16(d + IP_CSUM_OFF, 0);
	ferry_wr_u16(d + IP_CSUM_OFF,
		     (uint16_t)~csum_fold(csum_add(0, d + IP_OFF,
						   FERRY__IPV4_HLEN)));
}

/* The pseudo-header sum of the frame ferry__frame_put_udp wrote at @d. */
static uint16_t put_phdr(const uint8_t *d)
{
	uint32_t src, dst;

	memcpy(&src, d + IP_OFF + 12, 4);
	memcpy(&dst, d + IP_OFF + 16, 4);
	return udp_phdr(src, dst,
			(uint16_t)((d[IP_OFF + 2] << 8 | d[IP_OFF + 3]) -
				   FERRY__IPV4_HLEN));
}

void ferry__frame_udp_phdr(uint8_t *d)
{
	ferry_wr_u16(d + UDP_CSUM_OFF, put_phdr(d));
}

void ferry__frame_udp_csum(uint8_t *d)
{
	uint16_t ulen = (uint16_t)(d[UDP_OFF + 4] << 8 | d[UDP_OFF + 5]), ck;

	ferry_wr_u16(d + UDP_CSUM_OFF, 0);
	ck = (uint16_t)~csum_plus(csum_fold(csum_add(0, d + UDP_OFF, ulen)),
				  put_phdr(d));
	/* RFC 768: a computed 0 is sent as all ones. */
	ferry_wr_u16(d + UDP_CSUM_OFF, ck ? ck : 0xffff);
}

int ferry__arp_parse(const uint8_t *p, size_t len, struct ferry__arp *out)
{
	struct ferry_rd r;
	uint16_t type, hrd, pro;
	uint8_t hln, pln;

	ferry_rd_init(&r, p, len);
	rd_mac(&r, out->dst);
	rd_mac(&r, out->src);
	type = ferry_rd_u16(&r);
	hrd = ferry_rd_u16(&r);
	pro = ferry_rd_u16(&r);
	hln = ferry_rd_u8(&r);
	pln = ferry_rd_u8(&r);
	out->op = ferry_rd_u16(&r);
	rd_mac(&r, out->sha);
	out->sip = rd_ip(&r);
	rd_mac(&r, out->tha);
	out->tip = rd_ip(&r);
	if (r.err || type != FERRY__ETHERTYPE_ARP || hrd != ARP_HRD_ETHER ||
	    pro != FERRY__ETHERTYPE_IPV4 || hln != FERRY__ETH_ALEN || pln != 4)
		return -1;
	return 0;
}

/* A MAC a station may have: not a group (multicast or broadcast).  All
 * zeros is allowed: DPDK's ring ports have no other. */
static bool mac_unicast(const uint8_t *m)
{
	return !(m[0] & 1);
}

enum ferry__arp_verdict ferry__arp_action(const struct ferry__arp *a,
					  bool ours, const uint8_t *mac)
{
	/* The answer goes to the frame's source: never to a group, which
	 * would broadcast our answer for whoever forged the request. */
	if (!ours || !mac_unicast(a->src))
		return FERRY__ARP_IGNORE;
	if (a->op == FERRY__ARP_OP_REQUEST)
		return FERRY__ARP_ANSWER;
	/* A reply to a request of ours comes to our MAC, names it as its
	 * target, and names a station at an address: gratuitous replies
	 * (broadcast, or target = sender) and probes are not answers. */
	if (a->op == FERRY__ARP_OP_REPLY &&
	    memcmp(a->dst, mac, FERRY__ETH_ALEN) == 0 &&
	    memcmp(a->tha, mac, FERRY__ETH_ALEN) == 0 &&
	    mac_unicast(a->sha) && a->sip != 0)
		return FERRY__ARP_ANSWERED;
	return FERRY__ARP_IGNORE;
}

void ferry__arp_put(uint8_t *d, uint16_t op, const uint8_t *sha, uint32_t sip,
		    uint32_t tip, const uint8_t *tha)
{
	bool req = op == FERRY__ARP_OP_REQUEST;
	uint8_t *p = d;

	if (req)
		memset(p, 0xff, FERRY__ETH_ALEN);
	else
		memcpy(p, tha, FERRY__ETH_ALEN);
	memcpy(p + FERRY__ETH_ALEN, sha, FERRY__ETH_ALEN);
	p = ferry_wr_u16(p + 2 * FERRY__ETH_ALEN, FERRY__ETHERTYPE_ARP);
	p = ferry_wr_u16(p, ARP_HRD_ETHER);
	p = ferry_wr_u16(p, FERRY__ETHERTYPE_IPV4);
	*p++ = FERRY__ETH_ALEN;
	*p++ = 4;
	p = ferry_wr_u16(p, op);
	memcpy(p, sha, FERRY__ETH_ALEN);
	memcpy(p + FERRY__ETH_ALEN, &sip, 4);
	p += FERRY__ETH_ALEN + 4;
	if (req)
		memset(p, 0, FERRY__ETH_ALEN);
	else
		memcpy(p, tha, FERRY__ETH_ALEN);
	memcpy(p + FERRY__ETH_ALEN, &tip, 4);
}
