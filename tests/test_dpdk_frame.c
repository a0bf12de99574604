/* SPDX-License-Identifier: MIT */
/*
 * test_dpdk_frame.c - Criterion unit tests for the DPDK dataplane's frame
 * bytes (dataplane/dpdk/frame.c), which need no DPDK: Ethernet/IPv4/UDP
 * frames built then parsed, every drop the parser makes (and which counter
 * it names), the checksum hints, and ARP parsed, decided on and built.
 *
 * Every parse runs on a heap copy of exactly the frame's length, so a
 * sanitizer build catches any read past it.  Checksums are checked against
 * a plain big-endian RFC 1071 sum written here, not frame.c's own.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/dpdk/frame.h"

#define HDRS FERRY__FRAME_HDRS
#define IP 14               /* the IPv4 header's offset */
#define UDP (IP + 20)       /* the UDP header's, without IPv4 options */
#define FRAME_MAX 2048

static const uint8_t k_mac_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t k_mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };

/* The reference: RFC 1071's sum of big-endian words, complemented. */
static uint16_t ref_csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i < n; i += 2)
		sum += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The pseudo-header sum (not complemented) of the UDP datagram behind the
 * IPv4 header at @ih, the length taken from the IPv4 header as the parser
 * takes it. */
static uint16_t ref_phdr(const uint8_t *ih)
{
	uint8_t ph[12];
	uint32_t ihl = (ih[0] & 0xfu) * 4;

	memcpy(ph, ih + 12, 8);
	ph[8] = 0;
	ph[9] = ih[9];
	put16(ph + 10, (uint16_t)(get16(ih + 2) - ihl));
	return (uint16_t)~ref_csum(ph, 12, 0);
}

/* Recompute both checksums of the frame at @f the reference way (IPv4
 * options included); @udp: where its UDP header starts. */
static void refix(uint8_t *f, size_t udp)
{
	uint32_t ihl = (f[IP] & 0xfu) * 4;
	uint16_t ulen = get16(f + udp + 4), ck;

	put16(f + IP + 10, 0);
	put16(f + IP + 10, ref_csum(f + IP, ihl, 0));
	put16(f + udp + 6, 0);
	ck = ref_csum(f + udp, ulen, ref_phdr(f + IP));
	put16(f + udp + 6, ck ? ck : 0xffff);
}

static struct ferry__udp_hdrs hdrs(uint16_t len)
{
	struct ferry__udp_hdrs h;

	memset(&h, 0, sizeof(h));
	memcpy(h.dst_mac, k_mac_b, 6);
	memcpy(h.src_mac, k_mac_a, 6);
	h.src_ip = htonl(0x0a090002); /* 10.9.0.2 */
	h.dst_ip = htonl(0x0a090001);
	h.src_port = 49152;
	h.dst_port = 31850;
	h.ip_id = 0x1234;
	h.len = len;
	return h;
}

/* A whole frame: headers for @h, @h->len payload bytes (a pattern), both
 * checksums finished by frame.c.  Returns its length. */
static size_t build(uint8_t *f, const struct ferry__udp_hdrs *h)
{
	ferry__frame_put_udp(f, h);
	for (unsigned i = 0; i < h->len; i++)
		f[HDRS + i] = (uint8_t)(i * 7 + 3);
	ferry__frame_ip_csum(f);
	ferry__frame_udp_csum(f);
	return HDRS + h->len;
}

/* Parse @n bytes of @f from a heap copy of exactly that size. */
static enum ferry__frame_kind parse_hint(const uint8_t *f, size_t n,
					 enum ferry__csum_hint ip,
					 enum ferry__csum_hint l4,
					 struct ferry__frame_rx *rx)
{
	uint8_t *c = malloc(n ? n : 1);
	enum ferry__frame_kind k;

	cr_assert_not_null(c);
	memcpy(c, f, n);
	memset(rx, 0xa5, sizeof(*rx));
	k = ferry__frame_parse(c, n, ip, l4, rx);
	if (k == FERRY__FRAME_UDP) {
		cr_assert_leq((size_t)rx->off + rx->h.len, n);
		cr_assert_eq(memcmp(c + rx->off, f + rx->off, rx->h.len), 0);
	}
	free(c);
	return k;
}

static enum ferry__frame_kind parse(const uint8_t *f, size_t n,
				    struct ferry__frame_rx *rx)
{
	return parse_hint(f, n, FERRY__CSUM_CHECK, FERRY__CSUM_CHECK, rx);
}

static void assert_hdrs_eq(const struct ferry__udp_hdrs *a,
			   const struct ferry__udp_hdrs *b)
{
	cr_assert_eq(memcmp(a->dst_mac, b->dst_mac, 6), 0);
	cr_assert_eq(memcmp(a->src_mac, b->src_mac, 6), 0);
	cr_assert_eq(a->src_ip, b->src_ip);
	cr_assert_eq(a->dst_ip, b->dst_ip);
	cr_assert_eq(a->src_port, b->src_port);
	cr_assert_eq(a->dst_port, b->dst_port);
	cr_assert_eq(a->ip_id, b->ip_id);
	cr_assert_eq(a->len, b->len);
}

/* --- built then parsed --------------------------------------------------- */

Test(dpdk_frame, round_trip)
{
	static const uint16_t lens[] = { 0, 1, 2, 3, 44, 45, 255, 1000, 1471,
					 1472, 1999 };
	uint8_t f[FRAME_MAX];

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct ferry__udp_hdrs h = hdrs(lens[i]);
		struct ferry__frame_rx rx;
		size_t n = build(f, &h);

		cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_UDP, "len %u",
			     lens[i]);
		assert_hdrs_eq(&rx.h, &h);
		cr_assert_eq(rx.off, HDRS);
		cr_assert(!rx.csum_unfinished);
	}
}

/* The fields on the wire, where other stacks read them. */
Test(dpdk_frame, built_bytes)
{
	struct ferry__udp_hdrs h = hdrs(100);
	uint8_t f[FRAME_MAX];

	build(f, &h);
	cr_assert_eq(memcmp(f, k_mac_b, 6), 0);
	cr_assert_eq(memcmp(f + 6, k_mac_a, 6), 0);
	cr_assert_eq(get16(f + 12), 0x0800);
	cr_assert_eq(f[IP], 0x45);
	cr_assert_eq(f[IP + 1], 0);
	cr_assert_eq(get16(f + IP + 2), 128);
	cr_assert_eq(get16(f + IP + 4), 0x1234);
	cr_assert_eq(get16(f + IP + 6), 0x4000, "DF, never fragmented");
	cr_assert_eq(f[IP + 8], 64);
	cr_assert_eq(f[IP + 9], 17);
	cr_assert_eq(memcmp(f + IP + 12, "\x0a\x09\x00\x02\x0a\x09\x00\x01", 8),
		     0);
	cr_assert_eq(get16(f + UDP), 49152);
	cr_assert_eq(get16(f + UDP + 2), 31850);
	cr_assert_eq(get16(f + UDP + 4), 108);
	/* Both checksums agree with the reference. */
	cr_assert_eq(ref_csum(f + IP, 20, 0), 0);
	cr_assert_eq(ref_csum(f + UDP, 108, ref_phdr(f + IP)), 0);
}

/* The IPv4 header of RFC 1071's usual worked example (192.168.0.1 to
 * 192.168.0.199, 115 bytes, DF, TTL 64, UDP): checksum 0xb861. */
Test(dpdk_frame, ip_csum_known_value)
{
	struct ferry__udp_hdrs h = hdrs(115 - 28);
	uint8_t f[FRAME_MAX];

	h.src_ip = htonl(0xc0a80001);
	h.dst_ip = htonl(0xc0a800c7);
	h.ip_id = 0;
	ferry__frame_put_udp(f, &h);
	ferry__frame_ip_csum(f);
	cr_assert_eq(get16(f + IP + 10), 0xb861);
}

/* RFC 768: a UDP checksum that computes to 0 is sent as all ones, and the
 * receiver takes it. */
Test(dpdk_frame, udp_csum_zero_sent_as_ones)
{
	struct ferry__udp_hdrs h = hdrs(2);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	uint16_t ck0;

	ferry__frame_put_udp(f, &h);
	put16(f + HDRS, 0);
	ferry__frame_udp_csum(f);
	ck0 = get16(f + UDP + 6);
	/* A payload word of ck0 brings the sum to 0xffff: checksum 0. */
	put16(f + HDRS, ck0);
	ferry__frame_ip_csum(f);
	ferry__frame_udp_csum(f);
	cr_assert_eq(get16(f + UDP + 6), 0xffff);
	cr_assert_eq(parse(f, HDRS + 2, &rx), FERRY__FRAME_UDP);
}

/* A sender that sends no UDP checksum (0) is taken at its word. */
Test(dpdk_frame, udp_csum_none)
{
	struct ferry__udp_hdrs h = hdrs(33);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	put16(f + UDP + 6, 0);
	f[HDRS + 5] ^= 0xff;
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_UDP);
	cr_assert(!rx.csum_unfinished);
}

/* Ethernet pads short frames to 60 bytes: the padding is no payload. */
Test(dpdk_frame, ethernet_padding)
{
	struct ferry__udp_hdrs h = hdrs(4);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	memset(f + n, 0xee, 60 - n);
	cr_assert_eq(parse(f, 60, &rx), FERRY__FRAME_UDP);
	cr_assert_eq(rx.h.len, 4);
}

/* IPv4 options are stepped over: the payload starts after them. */
Test(dpdk_frame, ipv4_options)
{
	struct ferry__udp_hdrs h = hdrs(20);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	/* Four bytes of options (NOPs) between the IPv4 and UDP headers. */
	memmove(f + UDP + 4, f + UDP, n - UDP);
	memset(f + UDP, 1, 4);
	f[IP] = 0x46;
	put16(f + IP + 2, (uint16_t)(get16(f + IP + 2) + 4));
	refix(f, UDP + 4);
	cr_assert_eq(parse(f, n + 4, &rx), FERRY__FRAME_UDP);
	cr_assert_eq(rx.off, HDRS + 4);
	cr_assert_eq(rx.h.len, 20);
	cr_assert_eq(memcmp(f + rx.off, f + HDRS + 4, 20), 0);
	/* ... and summed into the header checksum. */
	f[UDP] = 0;
	cr_assert_eq(parse(f, n + 4, &rx), FERRY__FRAME_BAD_CSUM);
}

/* --- drops ---------------------------------------------------------------- */

/* Cut anywhere short of the IPv4 total length: never a datagram, always
 * "not ours" (Ethernet, IPv4 header, UDP header, payload). */
Test(dpdk_frame, truncated_everywhere)
{
	struct ferry__udp_hdrs h = hdrs(64);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	for (size_t cut = 0; cut < n; cut++)
		cr_assert_eq(parse(f, cut, &rx), FERRY__FRAME_NOT_OURS,
			     "cut at %zu", cut);
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_UDP);
}

Test(dpdk_frame, other_ethertypes)
{
	static const uint16_t types[] = { 0x86dd /* IPv6 */, 0x8100 /* VLAN */,
					  0x88a8 /* QinQ */, 0x0000, 0xffff };
	struct ferry__udp_hdrs h = hdrs(8);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	/* VLAN tags are not read: a tagged frame is not ours. */
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		put16(f + 12, types[i]);
		cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_NOT_OURS, "0x%04x",
			     types[i]);
	}
}

Test(dpdk_frame, bad_version_ihl_protocol)
{
	struct ferry__udp_hdrs h = hdrs(40);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX], g[FRAME_MAX];
	size_t n = build(f, &h);

	/* IHL below five words, for every such value. */
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		memcpy(g, f, n);
		g[IP] = (uint8_t)(0x40 | ihl);
		cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	}
	/* Options longer than the packet leaves room for a UDP header. */
	memcpy(g, f, n);
	g[IP] = 0x4f;
	put16(g + IP + 2, 60 + 7);
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	/* IPv6 in an IPv4 EtherType, and IPv4 that is not version 4. */
	for (uint8_t v = 0; v < 16; v++) {
		if (v == 4)
			continue;
		memcpy(g, f, n);
		g[IP] = (uint8_t)(v << 4 | 5);
		cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	}
	/* TCP, ICMP. */
	memcpy(g, f, n);
	g[IP + 9] = 6;
	refix(g, UDP);
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	g[IP + 9] = 1;
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
}

Test(dpdk_frame, ip_total_length)
{
	struct ferry__udp_hdrs h = hdrs(40);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX], g[FRAME_MAX];
	size_t n = build(f, &h);

	/* Longer than the frame. */
	memcpy(g, f, n);
	put16(g + IP + 2, (uint16_t)(n - 14 + 1));
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	/* Too short for a UDP header, and 0. */
	put16(g + IP + 2, 20 + 7);
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	put16(g + IP + 2, 0);
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
}

Test(dpdk_frame, udp_length)
{
	struct ferry__udp_hdrs h = hdrs(40);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX], g[FRAME_MAX];
	size_t n = build(f, &h);

	/* Below its own header, for every such value. */
	for (uint16_t ulen = 0; ulen < 8; ulen++) {
		memcpy(g, f, n);
		put16(g + UDP + 4, ulen);
		cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	}
	/* Past the IPv4 payload. */
	memcpy(g, f, n);
	put16(g + UDP + 4, 48 + 1);
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_NOT_OURS);
	/* Shorter than the IPv4 payload: the rest is not the datagram's. */
	memcpy(g, f, n);
	put16(g + UDP + 4, 8 + 30);
	refix(g, UDP);
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_UDP);
	cr_assert_eq(rx.h.len, 30);
}

Test(dpdk_frame, fragments)
{
	static const uint16_t frag[] = { 0x2000 /* MF */, 0x0001, 0x1fff,
					 0x6000 /* DF and MF */, 0x20b9 };
	struct ferry__udp_hdrs h = hdrs(40);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX], g[FRAME_MAX];
	size_t n = build(f, &h);

	for (unsigned i = 0; i < sizeof(frag) / sizeof(frag[0]); i++) {
		memcpy(g, f, n);
		put16(g + IP + 6, frag[i]);
		refix(g, UDP);
		cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_FRAGMENT, "0x%04x",
			     frag[i]);
		/* Counted as a fragment before any checksum is looked at. */
		g[IP + 10] ^= 1;
		cr_assert_eq(parse_hint(g, n, FERRY__CSUM_BAD, FERRY__CSUM_BAD,
					&rx),
			     FERRY__FRAME_FRAGMENT);
	}
	/* DF alone, or no flags at all, is a whole datagram. */
	memcpy(g, f, n);
	put16(g + IP + 6, 0);
	refix(g, UDP);
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_UDP);
}

/* --- checksums and the port's hints --------------------------------------- */

Test(dpdk_frame, ip_csum_bad)
{
	struct ferry__udp_hdrs h = hdrs(40);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	f[IP + 10] ^= 0x10;
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_BAD_CSUM);
	/* The port checked it (or checks all IPv4 checksums itself). */
	cr_assert_eq(parse_hint(f, n, FERRY__CSUM_GOOD, FERRY__CSUM_CHECK, &rx),
		     FERRY__FRAME_UDP);
	/* The port says bad, whatever the bytes say. */
	f[IP + 10] ^= 0x10;
	cr_assert_eq(parse_hint(f, n, FERRY__CSUM_BAD, FERRY__CSUM_CHECK, &rx),
		     FERRY__FRAME_BAD_CSUM);
}

/* A bad IPv4 checksum is reported before a bad UDP length. */
Test(dpdk_frame, ip_csum_before_udp_length)
{
	struct ferry__udp_hdrs h = hdrs(40);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	f[IP + 10] ^= 0x10;
	put16(f + UDP + 4, 3);
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_BAD_CSUM);
	f[IP + 10] ^= 0x10;
	cr_assert_eq(parse_hint(f, n, FERRY__CSUM_CHECK, FERRY__CSUM_BAD, &rx),
		     FERRY__FRAME_NOT_OURS);
}

Test(dpdk_frame, udp_csum_bad)
{
	struct ferry__udp_hdrs h = hdrs(41);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX];
	size_t n = build(f, &h);

	/* A payload bit flipped, the last (odd) byte included. */
	for (size_t i = HDRS; i < n; i += 13) {
		f[i] ^= 0x40;
		cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_BAD_CSUM, "at %zu",
			     i);
		cr_assert_eq(parse_hint(f, n, FERRY__CSUM_CHECK,
					FERRY__CSUM_GOOD, &rx),
			     FERRY__FRAME_UDP);
		f[i] ^= 0x40;
	}
	f[n - 1] ^= 1;
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_BAD_CSUM);
	f[n - 1] ^= 1;
	/* The addresses are in the pseudo-header: another source, with its
	 * IPv4 checksum made good, fails the UDP checksum. */
	f[IP + 15] ^= 1;
	ferry__frame_ip_csum(f);
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_BAD_CSUM);
	f[IP + 15] ^= 1;
	ferry__frame_ip_csum(f);
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_UDP);
	cr_assert_eq(parse_hint(f, n, FERRY__CSUM_CHECK, FERRY__CSUM_BAD, &rx),
		     FERRY__FRAME_BAD_CSUM);
}

/* A kernel sender that leaves the UDP checksum to offload (veth under
 * af_packet) sends the pseudo-header sum: taken, and said so. */
Test(dpdk_frame, udp_csum_unfinished)
{
	struct ferry__udp_hdrs h = hdrs(57);
	struct ferry__frame_rx rx;
	uint8_t f[FRAME_MAX], g[FRAME_MAX];
	size_t n = build(f, &h);

	ferry__frame_udp_phdr(f);
	cr_assert_eq(get16(f + UDP + 6), ref_phdr(f + IP));
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_UDP);
	cr_assert(rx.csum_unfinished);
	/* Not with a port that vouched for it. */
	cr_assert_eq(parse_hint(f, n, FERRY__CSUM_CHECK, FERRY__CSUM_GOOD, &rx),
		     FERRY__FRAME_UDP);
	cr_assert(!rx.csum_unfinished);
	/* Any other value is a bad checksum. */
	memcpy(g, f, n);
	put16(g + UDP + 6, (uint16_t)(get16(g + UDP + 6) + 1));
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_BAD_CSUM);
	/* And only for a datagram that fills the IPv4 payload (the pseudo-
	 * header sum is the IPv4 payload's length). */
	memcpy(g, f, n);
	put16(g + UDP + 4, (uint16_t)(get16(g + UDP + 4) - 1));
	cr_assert_eq(parse(g, n, &rx), FERRY__FRAME_BAD_CSUM);
}

/* --- ARP ------------------------------------------------------------------ */

static size_t arp_frame(uint8_t *f, uint16_t op)
{
	ferry__arp_put(f, op, k_mac_a, htonl(0x0a090002), htonl(0x0a090001),
		       op == FERRY__ARP_OP_REQUEST ? NULL : k_mac_b);
	return FERRY__ARP_FRAME;
}

static int arp_parse(const uint8_t *f, size_t n, struct ferry__arp *a)
{
	uint8_t *c = malloc(n ? n : 1);
	int rc;

	cr_assert_not_null(c);
	memcpy(c, f, n);
	rc = ferry__arp_parse(c, n, a);
	free(c);
	return rc;
}

Test(dpdk_frame, arp_request_bytes)
{
	static const uint8_t zero[6];
	uint8_t f[64];
	struct ferry__frame_rx rx;
	struct ferry__arp a;
	size_t n = arp_frame(f, FERRY__ARP_OP_REQUEST);

	cr_assert_eq(n, 42);
	cr_assert_eq(memcmp(f, "\xff\xff\xff\xff\xff\xff", 6), 0, "broadcast");
	cr_assert_eq(memcmp(f + 6, k_mac_a, 6), 0);
	cr_assert_eq(memcmp(f + 12, "\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01",
			    10),
		     0);
	cr_assert_eq(memcmp(f + 22, k_mac_a, 6), 0);
	cr_assert_eq(memcmp(f + 28, "\x0a\x09\x00\x02", 4), 0);
	cr_assert_eq(memcmp(f + 32, zero, 6), 0, "target MAC unknown");
	cr_assert_eq(memcmp(f + 38, "\x0a\x09\x00\x01", 4), 0);
	cr_assert_eq(parse(f, n, &rx), FERRY__FRAME_ARP);
	cr_assert_eq(arp_parse(f, n, &a), 0);
	cr_assert_eq(a.op, FERRY__ARP_OP_REQUEST);
	cr_assert_eq(memcmp(a.dst, "\xff\xff\xff\xff\xff\xff", 6), 0);
	cr_assert_eq(memcmp(a.src, k_mac_a, 6), 0);
	cr_assert_eq(memcmp(a.sha, k_mac_a, 6), 0);
	cr_assert_eq(a.sip, htonl(0x0a090002));
	cr_assert_eq(a.tip, htonl(0x0a090001));
}

Test(dpdk_frame, arp_reply_bytes)
{
	uint8_t f[64];
	struct ferry__arp a;
	size_t n = arp_frame(f, FERRY__ARP_OP_REPLY);

	cr_assert_eq(memcmp(f, k_mac_b, 6), 0, "to the asker");
	cr_assert_eq(get16(f + 20), FERRY__ARP_OP_REPLY);
	cr_assert_eq(memcmp(f + 32, k_mac_b, 6), 0);
	cr_assert_eq(arp_parse(f, n, &a), 0);
	cr_assert_eq(a.op, FERRY__ARP_OP_REPLY);
	cr_assert_eq(memcmp(a.dst, k_mac_b, 6), 0);
	cr_assert_eq(memcmp(a.src, k_mac_a, 6), 0);
	cr_assert_eq(memcmp(a.tha, k_mac_b, 6), 0);
}

/* A request for one of ours is answered (to its frame's source); a reply
 * counts only if it is addressed to us; nothing else is acted on. */
Test(dpdk_frame, arp_action)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
	static const uint8_t zero[6];
	const uint8_t *me = k_mac_b;
	struct ferry__arp a, r;

	memset(&a, 0, sizeof(a));
	a.op = FERRY__ARP_OP_REQUEST;
	memcpy(a.dst, bcast, 6);
	memcpy(a.src, k_mac_a, 6);
	memcpy(a.sha, k_mac_a, 6);
	a.sip = htonl(0x0a090002);
	a.tip = htonl(0x0a090001);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_ANSWER);
	cr_assert_eq(ferry__arp_action(&a, false, me), FERRY__ARP_IGNORE,
		     "another host's request");
	/* Answered whatever its sender field says (the answer goes to the
	 * frame's source), but never to a group. */
	memcpy(a.sha, mcast, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_ANSWER);
	memcpy(a.src, bcast, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE);
	memcpy(a.src, mcast, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE);
	/* All zeros is a ring port's MAC: answered. */
	memcpy(a.src, zero, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_ANSWER);

	/* A reply to us: our address, our MAC as Ethernet and ARP target. */
	memset(&r, 0, sizeof(r));
	r.op = FERRY__ARP_OP_REPLY;
	memcpy(r.dst, me, 6);
	memcpy(r.src, k_mac_a, 6);
	memcpy(r.sha, k_mac_a, 6);
	memcpy(r.tha, me, 6);
	r.sip = htonl(0x0a090002);
	r.tip = htonl(0x0a090001);
	cr_assert_eq(ferry__arp_action(&r, true, me), FERRY__ARP_ANSWERED);
	cr_assert_eq(ferry__arp_action(&r, false, me), FERRY__ARP_IGNORE,
		     "a reply to another address");
	a = r;
	memcpy(a.dst, bcast, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE,
		     "broadcast: gratuitous");
	a = r;
	memcpy(a.tha, k_mac_a, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE,
		     "target MAC not ours (gratuitous: target = sender)");
	a = r;
	memcpy(a.sha, bcast, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE,
		     "a group as the sender's MAC");
	a = r;
	a.sip = 0;
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE,
		     "sender address 0");
	a = r;
	memcpy(a.src, mcast, 6);
	cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE);
	/* Other opcodes (RARP's 3 and 4, junk): never acted on. */
	for (uint16_t op = 0; op < 10; op++) {
		if (op == FERRY__ARP_OP_REQUEST || op == FERRY__ARP_OP_REPLY)
			continue;
		a = r;
		a.op = op;
		cr_assert_eq(ferry__arp_action(&a, true, me), FERRY__ARP_IGNORE,
			     "op %u", op);
	}
}

Test(dpdk_frame, arp_short)
{
	uint8_t f[64];
	struct ferry__frame_rx rx;
	struct ferry__arp a;
	size_t n = arp_frame(f, FERRY__ARP_OP_REQUEST);

	for (size_t cut = 0; cut < n; cut++) {
		cr_assert_eq(arp_parse(f, cut, &a), -1, "cut at %zu", cut);
		/* The EtherType alone makes it ARP for the classifier. */
		cr_assert_eq(parse(f, cut, &rx),
			     cut < 14 ? FERRY__FRAME_NOT_OURS : FERRY__FRAME_ARP);
	}
	/* Padded to Ethernet's 60 bytes: fine. */
	memset(f + n, 0, 60 - n);
	cr_assert_eq(arp_parse(f, 60, &a), 0);
}

Test(dpdk_frame, arp_other_types)
{
	/* Offset in the frame and a value that is not Ethernet/IPv4. */
	static const struct {
		unsigned off, len;
		uint16_t val;
	} bad[] = {
		{ 12, 2, 0x0800 }, /* not an ARP EtherType */
		{ 14, 2, 6 },      /* IEEE 802 hardware */
		{ 14, 2, 0 },
		{ 16, 2, 0x86dd }, /* IPv6 protocol */
		{ 18, 1, 8 },      /* hardware address length */
		{ 18, 1, 0 },
		{ 19, 1, 16 },     /* protocol address length */
		{ 19, 1, 0 },
	};
	uint8_t f[64], g[64];
	struct ferry__arp a;
	size_t n = arp_frame(f, FERRY__ARP_OP_REPLY);

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(g, f, n);
		if (bad[i].len == 2)
			put16(g + bad[i].off, bad[i].val);
		else
			g[bad[i].off] = (uint8_t)bad[i].val;
		cr_assert_eq(arp_parse(g, n, &a), -1, "case %u", i);
	}
	cr_assert_eq(arp_parse(f, n, &a), 0);
}
