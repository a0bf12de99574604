/* SPDX-License-Identifier: MIT */
/*
 * fuzz_dpdk_frame.c - libFuzzer target for the DPDK dataplane's frame
 * parser (dataplane/dpdk/frame.c), which needs no DPDK.
 *
 * Runs ferry__frame_parse() on the input as if a port had received it,
 * with every checksum hint the port can give, and ferry__arp_parse().
 * Besides the sanitizers' memory checks, it traps on any broken invariant:
 *   - a parsed datagram lies inside the input, right after the IPv4 header
 *     (options included) and the UDP header, and its fields are the
 *     input's bytes;
 *   - the hints only ever turn a checksum verdict: a port vouching for
 *     both checksums gets the same datagram (never a bad checksum), a port
 *     calling them bad never gets a datagram;
 *   - re-building what was parsed (ferry__frame_put_udp and the
 *     checksums) gives equal headers, byte for byte where the input used
 *     the builder's own choices, and parses back to the same datagram;
 *   - an accepted ARP's fields are the input's bytes, and re-building it
 *     gives the same frame (up to what a request leaves out);
 *   - headers built from the input's first bytes parse back to themselves.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/fuzz/meson.build).
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/dpdk/frame.h"
#include "fuzz_check.h"

/* Headers and the largest UDP payload an IPv4 packet carries. */
#define FRAME_MAX (FERRY__FRAME_HDRS + 65535)
#define IP FERRY__ETH_HLEN

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t g_re[FRAME_MAX];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int hdrs_eq(const struct ferry__udp_hdrs *a,
		   const struct ferry__udp_hdrs *b)
{
	return memcmp(a->dst_mac, b->dst_mac, FERRY__ETH_ALEN) == 0 &&
	       memcmp(a->src_mac, b->src_mac, FERRY__ETH_ALEN) == 0 &&
	       a->src_ip == b->src_ip && a->dst_ip == b->dst_ip &&
	       a->src_port == b->src_port && a->dst_port == b->dst_port &&
	       a->ip_id == b->ip_id && a->len == b->len;
}

/* An accepted datagram: where it lies, and that its fields are the
 * input's bytes. */
static void check_udp(const uint8_t *data, size_t size,
		      const struct ferry__frame_rx *rx)
{
	uint32_t ihl = (uint32_t)(data[IP] & 0xf) * 4;
	const uint8_t *uh = data + IP + ihl;

	CHECK(size >= FERRY__FRAME_HDRS);
	CHECK(ihl >= 20);
	CHECK(rx->off == IP + ihl + FERRY__UDP_HLEN);
	CHECK((size_t)rx->off + rx->h.len <= size);
	CHECK((size_t)rx->off + rx->h.len <= IP + (size_t)get16(data + IP + 2));
	CHECK(get16(data + 12) == FERRY__ETHERTYPE_IPV4);
	CHECK(data[IP] >> 4 == 4 && data[IP + 9] == 17);
	CHECK((get16(data + IP + 6) & 0x3fff) == 0);
	CHECK(memcmp(rx->h.dst_mac, data, 6) == 0);
	CHECK(memcmp(rx->h.src_mac, data + 6, 6) == 0);
	CHECK(memcmp(&rx->h.src_ip, data + IP + 12, 4) == 0);
	CHECK(memcmp(&rx->h.dst_ip, data + IP + 16, 4) == 0);
	CHECK(rx->h.ip_id == get16(data + IP + 4));
	CHECK(rx->h.src_port == get16(uh));
	CHECK(rx->h.dst_port == get16(uh + 2));
	CHECK(rx->h.len + 8u == get16(uh + 4));
	if (rx->csum_unfinished)
		CHECK(get16(uh + 4) == get16(data + IP + 2) - ihl);
}

/* Re-build what was parsed: equal headers, and it parses back. */
static void check_rebuild(const uint8_t *data,
			  const struct ferry__frame_rx *rx)
{
	struct ferry__frame_rx again;
	size_t n = FERRY__FRAME_HDRS + rx->h.len;
	uint16_t tot = get16(data + IP + 2);

	ferry__frame_put_udp(g_re, &rx->h);
	memcpy(g_re + FERRY__FRAME_HDRS, data + rx->off, rx->h.len);
	ferry__frame_ip_csum(g_re);
	ferry__frame_udp_csum(g_re);
	/* The fields parsed are the same bytes. */
	CHECK(memcmp(g_re, data, 14) == 0);
	CHECK(memcmp(g_re + IP + 4, data + IP + 4, 2) == 0);
	CHECK(memcmp(g_re + IP + 12, data + IP + 12, 8) == 0);
	CHECK(memcmp(g_re + 34, data + rx->off - 8, 6) == 0);
	/* An input that made the builder's choices (no options, DF, TTL 64,
	 * a datagram filling the packet) differs in its checksums at most. */
	if (data[IP] == 0x45 && data[IP + 1] == 0 &&
	    get16(data + IP + 6) == 0x4000 && data[IP + 8] == 64 &&
	    (size_t)tot == 20 + 8 + rx->h.len) {
		CHECK(memcmp(g_re + IP, data + IP, 10) == 0);
		CHECK(memcmp(g_re + IP + 12, data + IP + 12, 8 + 6) == 0);
	}
	CHECK(ferry__frame_parse(g_re, n, FERRY__CSUM_CHECK, FERRY__CSUM_CHECK,
				 &again) == FERRY__FRAME_UDP);
	CHECK(hdrs_eq(&again.h, &rx->h));
	CHECK(again.off == FERRY__FRAME_HDRS && !again.csum_unfinished);
	CHECK(memcmp(g_re + again.off, data + rx->off, rx->h.len) == 0);
}

/* What the hints may change, and what they may not. */
static void check_hints(const uint8_t *data, size_t size,
			enum ferry__frame_kind k, const struct ferry__frame_rx *rx)
{
	struct ferry__frame_rx good, bad;
	enum ferry__frame_kind kg, kb;

	kg = ferry__frame_parse(data, size, FERRY__CSUM_GOOD, FERRY__CSUM_GOOD,
				&good);
	kb = ferry__frame_parse(data, size, FERRY__CSUM_BAD, FERRY__CSUM_BAD,
				&bad);
	CHECK(kg != FERRY__FRAME_BAD_CSUM);
	CHECK(kb != FERRY__FRAME_UDP);
	if (k == FERRY__FRAME_UDP) {
		CHECK(kg == FERRY__FRAME_UDP && kb == FERRY__FRAME_BAD_CSUM);
		CHECK(hdrs_eq(&good.h, &rx->h) && good.off == rx->off);
		CHECK(!good.csum_unfinished);
	}
	if (k == FERRY__FRAME_ARP || k == FERRY__FRAME_FRAGMENT)
		CHECK(kg == k && kb == k);
	if (kg == FERRY__FRAME_UDP)
		CHECK(k == FERRY__FRAME_UDP || k == FERRY__FRAME_BAD_CSUM);
	if (kg == FERRY__FRAME_NOT_OURS)
		CHECK(k == FERRY__FRAME_NOT_OURS || k == FERRY__FRAME_BAD_CSUM);
}

static void check_arp(const uint8_t *data, size_t size,
		      enum ferry__frame_kind k)
{
	static const uint8_t zero[FERRY__ETH_ALEN];
	struct ferry__arp a;
	enum ferry__arp_verdict act;
	uint8_t re[FERRY__ARP_FRAME];

	if (ferry__arp_parse(data, size, &a) != 0) {
		CHECK(size < FERRY__ARP_FRAME || k != FERRY__FRAME_ARP ||
		      memcmp(data + 14, "\x00\x01\x08\x00\x06\x04", 6) != 0);
		return;
	}
	CHECK(k == FERRY__FRAME_ARP && size >= FERRY__ARP_FRAME);
	CHECK(a.op == get16(data + 20));
	CHECK(memcmp(a.sha, data + 22, 6) == 0 && memcmp(a.tha, data + 32, 6) == 0);
	CHECK(memcmp(&a.sip, data + 28, 4) == 0 && memcmp(&a.tip, data + 38, 4) == 0);
	/* An answer needs a request about one of ours from a unicast frame;
	 * a reply is considered only if it is about one of ours and to the
	 * MAC we pass; nothing is acted on otherwise. */
	for (int ours = 0; ours < 2; ours++) {
		act = ferry__arp_action(&a, ours, a.tha);
		CHECK(act == FERRY__ARP_IGNORE || ours);
		CHECK(act != FERRY__ARP_ANSWER ||
		      (a.op == FERRY__ARP_OP_REQUEST && !(a.src[0] & 1)));
		CHECK(act != FERRY__ARP_ANSWERED ||
		      (a.op == FERRY__ARP_OP_REPLY && a.sip != 0 &&
		       memcmp(a.dst, a.tha, 6) == 0 && !(a.sha[0] & 1)));
	}
	CHECK(memcmp(a.dst, data, 6) == 0 && memcmp(a.src, data + 6, 6) == 0);
	/* Re-built: our frames come from the MAC they announce. */
	ferry__arp_put(re, a.op, a.sha, a.sip, a.tip, a.tha);
	CHECK(memcmp(re + 6, a.sha, 6) == 0);
	CHECK(memcmp(re + 12, data + 12, 32 - 12) == 0);
	CHECK(memcmp(re + 38, data + 38, 4) == 0);
	if (a.op == FERRY__ARP_OP_REQUEST) {
		CHECK(memcmp(re, "\xff\xff\xff\xff\xff\xff", 6) == 0);
		CHECK(memcmp(re + 32, zero, 6) == 0);
	} else {
		CHECK(memcmp(re, a.tha, 6) == 0 &&
		      memcmp(re + 32, data + 32, 6) == 0);
	}
}

/* Headers made of the input's first bytes parse back to themselves. */
static void check_build(const uint8_t *data, size_t size)
{
	struct ferry__udp_hdrs h;
	struct ferry__frame_rx rx;

	if (size < sizeof(h))
		return;
	memcpy(&h, data, sizeof(h));
	h.len %= 2048;
	memset(g_re + FERRY__FRAME_HDRS, 0x5a, h.len);
	ferry__frame_put_udp(g_re, &h);
	ferry__frame_ip_csum(g_re);
	ferry__frame_udp_csum(g_re);
	CHECK(ferry__frame_parse(g_re, FERRY__FRAME_HDRS + h.len,
				 FERRY__CSUM_CHECK, FERRY__CSUM_CHECK,
				 &rx) == FERRY__FRAME_UDP);
	CHECK(hdrs_eq(&rx.h, &h) && rx.off == FERRY__FRAME_HDRS &&
	      !rx.csum_unfinished);
	/* The offload's pseudo-header sum is what a kernel sender leaves. */
	ferry__frame_udp_phdr(g_re);
	CHECK(ferry__frame_parse(g_re, FERRY__FRAME_HDRS + h.len,
				 FERRY__CSUM_CHECK, FERRY__CSUM_CHECK,
				 &rx) == FERRY__FRAME_UDP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry__frame_rx rx;
	enum ferry__frame_kind k;

	k = ferry__frame_parse(data, size, FERRY__CSUM_CHECK,
			       FERRY__CSUM_CHECK, &rx);
	CHECK((unsigned)k <= (unsigned)FERRY__FRAME_BAD_CSUM);
	if (size < FERRY__ETH_HLEN)
		CHECK(k == FERRY__FRAME_NOT_OURS);
	else if (get16(data + 12) == FERRY__ETHERTYPE_ARP)
		CHECK(k == FERRY__FRAME_ARP);
	else if (get16(data + 12) != FERRY__ETHERTYPE_IPV4 ||
		 size < FERRY__FRAME_HDRS)
		CHECK(k == FERRY__FRAME_NOT_OURS);
	if (k == FERRY__FRAME_UDP) {
		check_udp(data, size, &rx);
		check_rebuild(data, &rx);
	}
	check_hints(data, size, k, &rx);
	check_arp(data, size, k);
	check_build(data, size);
	return 0;
}
