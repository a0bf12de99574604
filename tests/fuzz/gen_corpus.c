/* SPDX-License-Identifier: MIT */
/*
 * gen_corpus.c - write the seed corpora for fuzz_frame and fuzz_dpdk_frame.
 *
 *   gen_corpus DIR [DPDK_DIR]
 *
 * Writes one valid frame per frame type (plus a few valid variants:
 * checksummed, fragmented, error RESPONSE, CONNECT with trace context or a
 * token, REQUESTs with token tables or trace blocks, RESPONSEs with
 * attribute blocks, PUSHes) and
 * a few near misses that fail one check each, one file per frame, into
 * DIR, which must exist.  The output is deterministic, so the checked-in
 * tests/fuzz/corpus/frame/ can be regenerated and diffed.
 *
 * With DPDK_DIR, it also writes the seeds of fuzz_dpdk_frame there
 * (tests/fuzz/corpus/dpdk_frame/, see gen_dpdk_seeds): Ethernet/IPv4/UDP
 * frames carrying ferry frames, ARP, and near misses of both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "dataplane/dpdk/frame.h"
#include "seed.h"
#include "transport/wire.h"

#define MAX_SEED 1024

static const char *g_dir;
static int g_count;

static const char k_tp[] =
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
static const char k_ts[] = "congo=t61rcWkgMzE";
static const char req_pay[] = "ping? method 0x0102 arguments";
static const char resp_pay[] = "pong! result bytes";

static void write_seed(const char *name, const uint8_t *p, size_t n)
{
	seed_write("gen_corpus", g_dir, name, p, n);
	g_count++;
}

static struct ferry_hdr hdr(uint8_t type)
{
	struct ferry_hdr h;

	memset(&h, 0, sizeof(h));
	h.version = FERRY_WIRE_VERSION;
	h.type = type;
	h.dst_sess = type == FERRY_FT_CONNECT ? 0 : 0x00001001u;
	h.src_sess = 0x00002002u;
	h.ack = 7;
	h.credit = 32;
	return h;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Encode @h and @pay into @out; fills in msg_len for control frames and
 * the checksum when the header asks for one.  Returns the length. */
static size_t frame(uint8_t *out, struct ferry_hdr h, const void *pay,
		    size_t n)
{
	if (!(ferry_ft_is_data(h.type) || h.type == FERRY_FT_PUSH))
		h.msg_len = (uint32_t)n;
	ferry__wire_encode(&h, out);
	if (n)
		memcpy(out + FERRY_WIRE_HDR_LEN, pay, n);
	if (h.flags & FERRY_FF_CSUM)
		put_be32(out + 40,
			 ferry__wire_csum(out, out + FERRY_WIRE_HDR_LEN, n));
	return FERRY_WIRE_HDR_LEN + n;
}

static void seed(const char *name, struct ferry_hdr h, const void *pay,
		 size_t n)
{
	uint8_t buf[MAX_SEED];

	if (FERRY_WIRE_HDR_LEN + n > sizeof(buf))
		abort();
	write_seed(name, buf, frame(buf, h, pay, n));
}

static int connect_body(uint8_t *out, size_t cap, int trace)
{
	struct ferry_connect_body b;

	memset(&b, 0, sizeof(b));
	b.have_params = true;
	b.params.max_msg = 1u << 20;
	b.params.credits = 64;
	b.params.max_frame = 1472;
	b.params.slots = 32;
	if (trace) {
		b.traceparent = k_tp;
		b.traceparent_len = FERRY_TRACEPARENT_LEN;
		b.tracestate = k_ts;
		b.tracestate_len = (uint16_t)strlen(k_ts);
	}
	return ferry__wire_put_connect(out, cap, &b);
}

/* Valid: one per frame type. */
static void seeds_types(void)
{
	uint8_t body[512];
	struct ferry_hdr h;
	size_t n;
	int cn;

	cn = connect_body(body, sizeof(body), 0);
	if (cn < 0)
		abort();
	h = hdr(FERRY_FT_CONNECT);
	seed("connect", h, body, (size_t)cn);

	h = hdr(FERRY_FT_ACCEPT);
	seed("accept", h, body, (size_t)cn);

	h = hdr(FERRY_FT_REQUEST);
	h.method = 0x0102;
	h.seq = 1;
	h.req_id = 1;
	h.msg_len = sizeof(req_pay) - 1;
	seed("request", h, req_pay, sizeof(req_pay) - 1);

	h = hdr(FERRY_FT_RESPONSE);
	h.method = 0x0102;
	h.seq = 1;
	h.req_id = 1;
	h.msg_len = sizeof(resp_pay) - 1;
	seed("response", h, resp_pay, sizeof(resp_pay) - 1);

	h = hdr(FERRY_FT_CREDIT);
	h.credit = 128;
	seed("credit", h, NULL, 0);

	h = hdr(FERRY_FT_CLOSE);
	seed("close", h, NULL, 0);

	n = ferry__wire_put_error(body, sizeof(body), 3, "no such method");
	h = hdr(FERRY_FT_ERROR);
	h.src_sess = 0; /* a server that kept no session */
	seed("error", h, body, n);

	h = hdr(FERRY_FT_PING);
	h.flags = FERRY_FF_REPLY;
	seed("ping_reply", h, NULL, 0);

}

/* PUSH: one IOU resolved with a token, one rejected, both in one frame;
 * and the near miss of a token with an error code. */
static void seeds_push(void)
{
	uint8_t body[512];
	struct ferry_hdr h;
	struct ferry_push p = { .iou = 0x0102030405060708ull,
				.token = (const uint8_t *)"token",
				.token_len = 5 };
	int pn = ferry__wire_put_push(body, sizeof(body), &p);

	if (pn < 0)
		abort();
	h = hdr(FERRY_FT_PUSH);
	h.seq = 9;
	h.msg_len = (uint32_t)pn;
	seed("push", h, body, (size_t)pn);
	p.code = 110;
	pn = ferry__wire_put_push(body, sizeof(body), &p);
	h.msg_len = (uint32_t)pn;
	h.flags = FERRY_FF_CSUM;
	seed("push_error_csum", h, body, (size_t)pn);
	/* Two records, a token and an error, in one frame. */
	p.code = 0;
	pn = ferry__wire_put_push(body, sizeof(body), &p);
	p.iou++;
	p.code = 13;
	pn += ferry__wire_put_push(body + pn, sizeof(body) - (size_t)pn,
				  &p);
	h.msg_len = (uint32_t)pn;
	h.flags = 0;
	seed("push_two_records", h, body, (size_t)pn);
	p.iou--;
	/* Near miss: a token with an error code. */
	p.code = 0;
	pn = ferry__wire_put_push(body, sizeof(body), &p);
	body[11] = 1;
	h.msg_len = (uint32_t)pn;
	h.flags = 0;
	seed("push_code_and_token", h, body, (size_t)pn);
}

/* Valid variants: checksummed, fragmented, error RESPONSE, CONNECT with
 * trace context or a channel token. */
static void seeds_variants(void)
{
	uint8_t body[512];
	struct ferry_hdr h;
	size_t n;
	int cn;

	cn = connect_body(body, sizeof(body), 1);
	if (cn < 0)
		abort();
	h = hdr(FERRY_FT_CONNECT);
	h.flags = FERRY_FF_CSUM;
	seed("connect_trace_csum", h, body, (size_t)cn);

	/* Middle fragment of a 1000-byte request, checksummed. */
	memset(body, 'f', 100);
	h = hdr(FERRY_FT_REQUEST);
	h.flags = FERRY_FF_CSUM;
	h.method = 7;
	h.seq = 2;
	h.req_id = 2;
	h.msg_len = 1000;
	h.frag_off = 400;
	seed("request_frag_csum", h, body, 100);

	n = ferry__wire_put_error(body, sizeof(body), 5, "handler failed");
	h = hdr(FERRY_FT_RESPONSE);
	h.flags = FERRY_FF_ERR;
	h.seq = 3;
	h.req_id = 3;
	h.msg_len = (uint32_t)n;
	seed("response_err", h, body, n);

	/* CONNECT with a channel token (opaque bytes to the codec). */
	{
		struct ferry_connect_body cb;
		uint8_t tok[120];

		for (size_t i = 0; i < sizeof(tok); i++)
			tok[i] = (uint8_t)(i * 37 + 1);
		memset(&cb, 0, sizeof(cb));
		cb.have_params = true;
		cb.params.max_msg = 1u << 20;
		cb.params.credits = 64;
		cb.params.max_frame = 1472;
		cb.params.slots = 32;
		cb.token = tok;
		cb.token_len = sizeof(tok);
		cn = ferry__wire_put_connect(body, sizeof(body), &cb);
		if (cn < 0)
			abort();
		h = hdr(FERRY_FT_CONNECT);
		seed("connect_token", h, body, (size_t)cn);
	}
}

/* REQUESTs with a token table ahead of the payload (section 8): two
 * tokens; an IOU entry; a table whose entry overruns it. */
static void seeds_caps(void)
{
	uint8_t body[512];
	struct ferry_hdr h;
	struct ferry_cap_ent e[2] = {
		{ FERRY_CAPK_TOKEN, (const uint8_t *)"token-one", 9 },
		{ FERRY_CAPK_TOKEN, (const uint8_t *)"token-two!", 10 },
	};
	static const uint8_t iou[8] = { 0, 0, 0, 0, 0, 0, 1, 2 };
	int tl = ferry__wire_put_caps(body, sizeof(body), e, 2);

	if (tl < 0)
		abort();
	memcpy(body + tl, req_pay, sizeof(req_pay) - 1);
	h = hdr(FERRY_FT_REQUEST);
	h.flags = FERRY_FF_CAPS;
	h.method = 9;
	h.seq = 6;
	h.req_id = 6;
	h.msg_len = (uint32_t)tl + sizeof(req_pay) - 1;
	seed("request_caps", h, body, h.msg_len);

	e[1] = (struct ferry_cap_ent){ FERRY_CAPK_IOU, iou, 8 };
	tl = ferry__wire_put_caps(body, sizeof(body), e, 2);
	if (tl < 0)
		abort();
	h.msg_len = (uint32_t)tl;
	seed("request_caps_iou", h, body, (size_t)tl);

	tl = ferry__wire_put_caps(body, sizeof(body), e, 1);
	body[7] = 200; /* the entry now runs past the table */
	h.msg_len = (uint32_t)tl;
	seed("request_caps_overrun", h, body, (size_t)tl);
}

/*
 * A REQUEST with a trace block (section 8); with a token table behind it;
 * with a block of an unknown version (skipped); with a block whose length
 * runs past the message (refused).  RESPONSEs with an attribute block of
 * every type; with a malformed entry (ignored); and the near miss of
 * FF_TRACE with FF_ERR.
 */
static void seeds_trace(void)
{
	uint8_t body[512];
	struct ferry_hdr h;
	size_t n;
	struct ferry_cap_ent ce = { FERRY_CAPK_TOKEN,
				    (const uint8_t *)"token-one", 9 };
	struct ferry_attr_ent ae[4] = {
		{ .type = FERRY_ATTRT_STRING, .key = "db.system",
		  .key_len = 9, .str = "postgresql", .str_len = 10 },
		{ .type = FERRY_ATTRT_INT, .key = "rows", .key_len = 4,
		  .i = -42 },
		{ .type = FERRY_ATTRT_BOOL, .key = "cache.hit",
		  .key_len = 9, .b = true },
		{ .type = FERRY_ATTRT_DOUBLE, .key = "ratio",
		  .key_len = 5, .d = 0.25 },
	};
	int tl = ferry__wire_put_trace_block(body, sizeof(body), k_tp,
					    k_ts, strlen(k_ts)), cl, al;

	if (tl < 0)
		abort();
	memcpy(body + tl, req_pay, sizeof(req_pay) - 1);
	h = hdr(FERRY_FT_REQUEST);
	h.flags = FERRY_FF_TRACE;
	h.method = 9;
	h.seq = 10;
	h.req_id = 10;
	h.msg_len = (uint32_t)tl + sizeof(req_pay) - 1;
	seed("request_trace", h, body, h.msg_len);

	cl = ferry__wire_put_caps(body + tl, sizeof(body) - (size_t)tl,
				 &ce, 1);
	if (cl < 0)
		abort();
	memcpy(body + tl + cl, req_pay, sizeof(req_pay) - 1);
	h.flags = FERRY_FF_TRACE | FERRY_FF_CAPS | FERRY_FF_CSUM;
	h.msg_len = (uint32_t)(tl + cl) + sizeof(req_pay) - 1;
	seed("request_trace_caps_csum", h, body, h.msg_len);

	tl = ferry__wire_put_trace_block(body, sizeof(body), k_tp, NULL, 0);
	body[0] = 2;
	memcpy(body + tl, req_pay, sizeof(req_pay) - 1);
	h.flags = FERRY_FF_TRACE;
	h.msg_len = (uint32_t)tl + sizeof(req_pay) - 1;
	seed("request_trace_v2", h, body, h.msg_len);

	body[0] = 1;
	body[3] = 200; /* block_len past the message */
	h.msg_len = (uint32_t)tl;
	seed("request_trace_overrun", h, body, (size_t)tl);

	al = ferry__wire_put_resp_attrs(body, sizeof(body), ae, 4);
	if (al < 0)
		abort();
	memcpy(body + al, resp_pay, sizeof(resp_pay) - 1);
	h = hdr(FERRY_FT_RESPONSE);
	h.flags = FERRY_FF_TRACE;
	h.method = 9;
	h.seq = 11;
	h.req_id = 10;
	h.msg_len = (uint32_t)al + sizeof(resp_pay) - 1;
	seed("response_attrs", h, body, h.msg_len);

	body[4 + (4 + 9 + 10) + (4 + 4 + 8) + 4 + 9] = 2; /* a bool of 2 */
	seed("response_attrs_bad_bool", h, body, h.msg_len);

	n = ferry__wire_put_error(body, sizeof(body), 5, "failed");
	h.flags = FERRY_FF_TRACE | FERRY_FF_ERR;
	h.msg_len = (uint32_t)n;
	seed("response_err_trace", h, body, n);
}

/* Near misses: each fails exactly one check. */
static void seeds_near_misses(void)
{
	uint8_t body[512], buf[MAX_SEED];
	struct ferry_hdr h;
	size_t n, len;
	int cn;

	/* Checksum off by one bit. */
	h = hdr(FERRY_FT_REQUEST);
	h.flags = FERRY_FF_CSUM;
	h.seq = 4;
	h.req_id = 4;
	h.msg_len = sizeof(req_pay) - 1;
	len = frame(buf, h, req_pay, sizeof(req_pay) - 1);
	buf[43] ^= 1;
	write_seed("bad_csum", buf, len);

	/* frag_off + pay_len wraps past 2^32 to below msg_len. */
	h = hdr(FERRY_FT_RESPONSE);
	h.seq = 5;
	h.req_id = 5;
	h.msg_len = 100;
	h.frag_off = 0xfffffff0u;
	seed("frag_wrap", h, resp_pay, sizeof(resp_pay) - 1);

	/* Header one byte short. */
	h = hdr(FERRY_FT_PING);
	len = frame(buf, h, NULL, 0);
	write_seed("truncated", buf, len - 1);

	/* CONNECT with an unknown critical TLV after PARAMS: refused. */
	cn = connect_body(body, sizeof(body), 0);
	if (cn < 0)
		abort();
	memcpy(body + cn, "\x90\x00\x00\x02hi", 6);
	h = hdr(FERRY_FT_CONNECT);
	seed("connect_critical_tlv", h, body, (size_t)cn + 6);

	/* ACCEPT with PARAMS twice. */
	cn = connect_body(body, sizeof(body), 0);
	memcpy(body + cn, body, (size_t)cn);
	h = hdr(FERRY_FT_ACCEPT);
	seed("accept_dup_params", h, body, 2 * (size_t)cn);

	/* ERROR body with a trailing byte. */
	n = ferry__wire_put_error(body, sizeof(body), 3, "trailing");
	body[n++] = 0;
	h = hdr(FERRY_FT_ERROR);
	seed("error_trailing", h, body, n);

}

/* --- fuzz_dpdk_frame: Ethernet/IPv4/UDP and ARP ---------------------------- */

#define IP FERRY__ETH_HLEN /* the IPv4 header's offset */

static const uint8_t k_mac_a[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t k_mac_b[6] = { 0x02, 0, 0, 0, 0, 0x0b };

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The Internet checksum of @n bytes at @p (RFC 1071), over IPv4 options
 * too, which frame.c's builder never writes. */
static uint16_t inet_csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i < n; i += 2)
		sum += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Both checksums of the frame at @f again, after an edit; @udp: the UDP
 * header's offset. */
static void refix(uint8_t *f, size_t udp)
{
	size_t ihl = (f[IP] & 0xfu) * 4;
	uint16_t ulen = (uint16_t)(f[udp + 4] << 8 | f[udp + 5]), ck;
	uint8_t ph[12];

	put_be16(f + IP + 10, 0);
	put_be16(f + IP + 10, inet_csum(f + IP, ihl, 0));
	memcpy(ph, f + IP + 12, 8);
	ph[8] = 0;
	ph[9] = f[IP + 9];
	put_be16(ph + 10, (uint16_t)((f[IP + 2] << 8 | f[IP + 3]) - ihl));
	put_be16(f + udp + 6, 0);
	ck = inet_csum(f + udp, ulen, (uint16_t)~inet_csum(ph, 12, 0));
	put_be16(f + udp + 6, ck ? ck : 0xffff);
}

/* An Ethernet/IPv4/UDP frame from 10.9.0.2:49152 to 10.9.0.1:31850
 * carrying a ferry REQUEST (@csum: with its checksums).  Returns its
 * length. */
static size_t udp_frame(uint8_t *f, int csum)
{
	struct ferry__udp_hdrs u;
	struct ferry_hdr h = hdr(FERRY_FT_REQUEST);
	size_t n;

	h.method = 0x0102;
	h.seq = 1;
	h.req_id = 1;
	h.msg_len = sizeof(req_pay) - 1;
	n = frame(f + FERRY__FRAME_HDRS, h, req_pay, sizeof(req_pay) - 1);
	memset(&u, 0, sizeof(u));
	memcpy(u.dst_mac, k_mac_b, 6);
	memcpy(u.src_mac, k_mac_a, 6);
	u.src_ip = htonl(0x0a090002);
	u.dst_ip = htonl(0x0a090001);
	u.src_port = 49152;
	u.dst_port = 31850;
	u.ip_id = 77;
	u.len = (uint16_t)n;
	ferry__frame_put_udp(f, &u);
	if (csum) {
		ferry__frame_ip_csum(f);
		ferry__frame_udp_csum(f);
	}
	return FERRY__FRAME_HDRS + n;
}

/* Datagrams the parser takes. */
static void dpdk_seeds_valid(void)
{
	uint8_t f[MAX_SEED];
	size_t n = udp_frame(f, 1);

	write_seed("udp_request", f, n);
	ferry__frame_udp_phdr(f); /* a kernel sender's, left to offload */
	write_seed("udp_csum_unfinished", f, n);
	put_be16(f + IP + 20 + 6, 0);
	write_seed("udp_csum_none", f, n);

	n = udp_frame(f, 1);
	memset(f + n, 0, 6); /* Ethernet padding, or any trailer */
	write_seed("udp_trailer", f, n + 6);

	n = udp_frame(f, 0);
	put_be16(f + IP + 20 + 4, (uint16_t)(n - IP - 20 - 3));
	refix(f, IP + 20);
	write_seed("udp_shorter_than_packet", f, n);

	/* Four bytes of IPv4 options (NOPs) ahead of the UDP header. */
	n = udp_frame(f, 0);
	memmove(f + IP + 24, f + IP + 20, n - IP - 20);
	memset(f + IP + 20, 1, 4);
	f[IP] = 0x46;
	put_be16(f + IP + 2, (uint16_t)(n + 4 - IP));
	refix(f, IP + 24);
	write_seed("udp_ip_options", f, n + 4);
}

/* Near misses: each fails one check of the parser. */
static void dpdk_seeds_near_misses(void)
{
	uint8_t f[MAX_SEED];
	size_t n = udp_frame(f, 1);

	write_seed("truncated_eth", f, FERRY__ETH_HLEN - 1);
	write_seed("truncated_ip", f, IP + 19);
	write_seed("truncated_udp", f, FERRY__FRAME_HDRS - 1);
	write_seed("truncated_payload", f, n - 1);
	f[IP + 10] ^= 0x01;
	write_seed("bad_ip_csum", f, n);
	f[IP + 10] ^= 0x01;
	f[n - 1] ^= 0x01;
	write_seed("bad_udp_csum", f, n);
	f[n - 1] ^= 0x01;

	put_be16(f + 12, 0x8100); /* a VLAN tag: not read */
	write_seed("vlan_tagged", f, n);
	put_be16(f + 12, 0x86dd);
	write_seed("ipv6_ethertype", f, n);
	put_be16(f + 12, FERRY__ETHERTYPE_IPV4);

	n = udp_frame(f, 0);
	put_be16(f + IP + 6, 0x2000); /* more fragments */
	refix(f, IP + 20);
	write_seed("fragment_first", f, n);
	put_be16(f + IP + 6, 0x00b9);
	refix(f, IP + 20);
	write_seed("fragment_offset", f, n);

	n = udp_frame(f, 1);
	f[IP] = 0x44; /* IHL below five words */
	write_seed("ihl_4", f, n);
	f[IP] = 0x65;
	write_seed("ip_version_6", f, n);
	f[IP] = 0x45;
	f[IP + 9] = 6; /* TCP */
	refix(f, IP + 20);
	write_seed("tcp", f, n);

	n = udp_frame(f, 1);
	put_be16(f + IP + 20 + 4, 7);
	write_seed("udp_len_7", f, n);
	put_be16(f + IP + 20 + 4, (uint16_t)(n - IP - 20 + 1));
	write_seed("udp_len_past_packet", f, n);
	put_be16(f + IP + 20 + 4, (uint16_t)(n - IP - 20));
	put_be16(f + IP + 2, (uint16_t)(n - IP + 1));
	write_seed("ip_len_past_frame", f, n);
}

/* ARP: a request and a reply, and near misses. */
static void dpdk_seeds_arp(void)
{
	uint8_t f[64];

	ferry__arp_put(f, FERRY__ARP_OP_REQUEST, k_mac_a, htonl(0x0a090002),
		       htonl(0x0a090001), NULL);
	write_seed("arp_request", f, FERRY__ARP_FRAME);
	memset(f + FERRY__ARP_FRAME, 0, 60 - FERRY__ARP_FRAME);
	write_seed("arp_request_padded", f, 60);
	write_seed("arp_short", f, FERRY__ARP_FRAME - 1);
	put_be16(f + 14, 6); /* IEEE 802 hardware */
	write_seed("arp_ieee802", f, FERRY__ARP_FRAME);
	ferry__arp_put(f, FERRY__ARP_OP_REPLY, k_mac_b, htonl(0x0a090001),
		       htonl(0x0a090002), k_mac_a);
	write_seed("arp_reply", f, FERRY__ARP_FRAME);
	put_be16(f + 20, 3); /* RARP's request */
	write_seed("arp_op_3", f, FERRY__ARP_FRAME);
}

static void gen_dpdk_seeds(const char *dir)
{
	g_dir = dir;
	g_count = 0;
	dpdk_seeds_valid();
	dpdk_seeds_near_misses();
	dpdk_seeds_arp();
	printf("gen_corpus: wrote %d seeds to %s\n", g_count, g_dir);
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s DIR [DPDK_DIR]\n", argv[0]);
		return 2;
	}
	g_dir = argv[1];
	seeds_types();
	seeds_push();
	seeds_variants();
	seeds_caps();
	seeds_trace();
	seeds_near_misses();
	printf("gen_corpus: wrote %d seeds to %s\n", g_count, g_dir);
	if (argc == 3)
		gen_dpdk_seeds(argv[2]);
	return 0;
}
