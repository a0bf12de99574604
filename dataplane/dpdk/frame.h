/* SPDX-License-Identifier: MIT */
/*
 * Ethernet/IPv4/UDP and ARP frames as bytes: what the DPDK dataplane puts
 * on the wire and how it reads what arrives.
 *
 * Everything here works on plain byte ranges, with no DPDK header and no
 * mbuf, so it builds and is tested (tests/test_dpdk_frame.c) and fuzzed
 * (tests/fuzz/fuzz_dpdk_frame.c) without the EAL.  Received bytes are
 * untrusted: they are read only through the bounded reader (transport/rd.h).
 * The mbuf glue (segments, offload flags, the chained UDP checksum) stays in
 * dpdk.c.
 *
 * Byte orders: IPv4 addresses are kept in network order (as struct
 * ferry_addr has them), UDP ports, lengths and checksums in host order.
 */
#ifndef FERRY_DPDK_FRAME_H
#define FERRY_DPDK_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dp.h"

#define FERRY__ETH_ALEN 6
#define FERRY__ETH_HLEN 14          /* dst MAC, src MAC, EtherType */
#define FERRY__ETHERTYPE_IPV4 0x0800
#define FERRY__ETHERTYPE_ARP 0x0806
#define FERRY__IPV4_HLEN 20         /* without options */
#define FERRY__UDP_HLEN 8
/* Ethernet + IPv4 (no options) + UDP: the headers of every frame we send. */
#define FERRY__FRAME_HDRS (FERRY__ETH_HLEN + FERRY__IPV4_HLEN + FERRY__UDP_HLEN)
#define FERRY__ARP_LEN 28           /* an Ethernet/IPv4 ARP body */
#define FERRY__ARP_FRAME (FERRY__ETH_HLEN + FERRY__ARP_LEN)
#define FERRY__ARP_OP_REQUEST 1
#define FERRY__ARP_OP_REPLY 2

/* What a received frame is, and for a drop, which counter it goes to. */
enum ferry__frame_kind {
	FERRY__FRAME_UDP,       /* an IPv4/UDP datagram, checked */
	FERRY__FRAME_ARP,       /* EtherType ARP (its body not yet checked) */
	FERRY__FRAME_NOT_OURS,  /* not IPv4/UDP, or malformed (rx_not_ours) */
	FERRY__FRAME_FRAGMENT,  /* an IPv4 fragment (rx_fragments) */
	FERRY__FRAME_BAD_CSUM,  /* IPv4 or UDP checksum wrong (rx_bad_csum) */
};

/*
 * What the port already knows of a received frame's checksum (DPDK's
 * RX_*_CKSUM flags, and for IPv4 whether the port checks it at all):
 * CHECK sums it in software, GOOD trusts it, BAD drops the frame.
 */
enum ferry__csum_hint {
	FERRY__CSUM_CHECK,
	FERRY__CSUM_GOOD,
	FERRY__CSUM_BAD,
};

/* The headers of one IPv4/UDP frame: what the parser reads, what the
 * builder writes. */
struct ferry__udp_hdrs {
	uint8_t dst_mac[FERRY__ETH_ALEN], src_mac[FERRY__ETH_ALEN];
	uint32_t src_ip, dst_ip;     /* network order */
	uint16_t src_port, dst_port; /* host order */
	uint16_t ip_id;
	uint16_t len;                /* UDP payload bytes */
};

/* A received IPv4/UDP frame. */
struct ferry__frame_rx {
	struct ferry__udp_hdrs h;
	uint16_t off;         /* the UDP payload's offset in the frame */
	bool csum_unfinished; /* accepted with a kernel sender's unfinished
			       * UDP checksum (rx_csum_unfinished) */
};

/* A received ARP frame (Ethernet/IPv4 only): its Ethernet addresses and
 * its body. */
struct ferry__arp {
	uint8_t dst[FERRY__ETH_ALEN], src[FERRY__ETH_ALEN]; /* Ethernet */
	uint16_t op;
	uint8_t sha[FERRY__ETH_ALEN], tha[FERRY__ETH_ALEN];
	uint32_t sip, tip; /* network order */
};

/*
 * Classify the @len bytes of frame @p.  FERRY__FRAME_UDP fills *out (the
 * payload is p[out->off, out->off + out->h.len), inside the frame); every
 * other kind leaves *out undefined.  @ip and @l4 say what the port knows of
 * the IPv4 and UDP checksums.  A UDP checksum of 0 (none sent) is accepted.
 */
enum ferry__frame_kind ferry__frame_parse(const uint8_t *p, size_t len,
					  enum ferry__csum_hint ip,
					  enum ferry__csum_hint l4,
					  struct ferry__frame_rx *out);

/*
 * Write the FERRY__FRAME_HDRS bytes of Ethernet, IPv4 (no options, DF,
 * TTL 64) and UDP headers for @h at @d, both checksums 0: the caller
 * finishes them (ferry__frame_ip_csum, ferry__frame_udp_phdr, or in
 * software over the payload).
 */
void ferry__frame_put_udp(uint8_t *d, const struct ferry__udp_hdrs *h);

/* Fill in the IPv4 header checksum of the frame ferry__frame_put_udp wrote
 * at @d. */
void ferry__frame_ip_csum(uint8_t *d);

/* Put the UDP pseudo-header sum (not complemented) in the UDP checksum
 * field of the frame at @d: what a port offloading the UDP checksum
 * expects there. */
void ferry__frame_udp_phdr(uint8_t *d);

/* Fill in the UDP checksum of the frame at @d, whose payload follows its
 * headers in the same buffer, in software. */
void ferry__frame_udp_csum(uint8_t *d);

/*
 * Read an ARP frame's body: 0 and *out for an Ethernet/IPv4 ARP of any
 * opcode; -1 for a short frame or other hardware or protocol types.
 */
int ferry__arp_parse(const uint8_t *p, size_t len, struct ferry__arp *out);

/* What to do with a received ARP frame, as far as its bytes tell. */
enum ferry__arp_verdict {
	/* Not for us, or not to be believed (counted arp_ignored). */
	FERRY__ARP_IGNORE,
	/* A request for one of our addresses from a unicast source: answer
	 * it, to the frame's Ethernet source.  Nothing is learnt from it. */
	FERRY__ARP_ANSWER,
	/* A reply addressed to us (our address, our MAC in the Ethernet and
	 * ARP target): believed only if we asked (ferry__ntab_answer). */
	FERRY__ARP_ANSWERED,
};

/*
 * Judge a received ARP @a.  @ours: its target address is one of this
 * port's; @mac: the port's MAC.  Frames from a group (multicast or
 * broadcast) source; replies not to @mac, or with a group sender MAC or
 * sender address 0 (gratuitous and probe forms); other hosts' traffic and
 * other opcodes: FERRY__ARP_IGNORE.
 */
enum ferry__arp_verdict ferry__arp_action(const struct ferry__arp *a,
					  bool ours, const uint8_t *mac);

/*
 * Write the FERRY__ARP_FRAME bytes of an ARP frame at @d: a request
 * (broadcast, target MAC zero; @tha unused and may be NULL) or a reply to
 * @tha, from @sha/@sip about @tip.
 */
void ferry__arp_put(uint8_t *d, uint16_t op, const uint8_t *sha, uint32_t sip,
		    uint32_t tip, const uint8_t *tha);

#endif /* FERRY_DPDK_FRAME_H */
