/* SPDX-License-Identifier: MIT */
/*
 * raw_peer.h - a client that speaks ferry's wire by hand over a UDP socket,
 * for Criterion tests that need a peer the transport would never be: one
 * that sends malformed blocks, leaves out FEATURES, never acknowledges, or
 * whose frames the test must read byte by byte.  The endpoint under test is
 * polled while the peer waits, so one thread drives both.
 *
 * Shared by test_admission.c, test_iou.c and test_trace_wire.c, which
 * include it after their own headers.  Also the millisecond clock those
 * tests poll with.
 */
#ifndef FERRY_TESTS_RAW_PEER_H
#define FERRY_TESTS_RAW_PEER_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <ferry/ferry.h>

#include "transport/wire.h"

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct raw {
	int fd;
	struct sockaddr_in to;
	uint32_t my_sess, srv_sess, seq, next_req;
};

/* A socket on loopback aimed at @srv; @my_sess is the peer's session id. */
static inline void raw_open(struct raw *r, struct ferry_endpoint *srv,
			    uint32_t my_sess)
{
	struct sockaddr_in me = { .sin_family = AF_INET };

	memset(r, 0, sizeof(*r));
	r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	cr_assert(r->fd >= 0);
	me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(r->fd, (struct sockaddr *)&me, sizeof(me)), 0);
	r->to.sin_family = AF_INET;
	r->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->to.sin_port = htons(ferry_endpoint_port(srv));
	r->my_sess = my_sess;
	r->next_req = 1;
}

/* Header @h (encoded here) and @n bytes of @body as one datagram. */
static inline void raw_send(struct raw *r, const struct ferry_hdr *h,
			    const void *body, size_t n)
{
	uint8_t buf[4096];

	cr_assert_leq(FERRY_WIRE_HDR_LEN + n, sizeof(buf));
	ferry_wire_encode(h, buf);
	if (n)
		memcpy(buf + FERRY_WIRE_HDR_LEN, body, n);
	cr_assert_eq(sendto(r->fd, buf, FERRY_WIRE_HDR_LEN + n, 0,
			    (struct sockaddr *)&r->to, sizeof(r->to)),
		     (ssize_t)(FERRY_WIRE_HDR_LEN + n));
}

/* Poll @srv until a frame of @type arrives (a RESPONSE: to @req_id, unless
 * @req_id is 0); false after 2 s.  Other frames (retransmissions: this
 * peer never acknowledges) are skipped.  @f points into @buf. */
static inline bool raw_recv(struct raw *r, struct ferry_endpoint *srv,
			    uint8_t type, uint32_t req_id,
			    struct ferry_frame *f, uint8_t *buf, size_t cap)
{
	uint64_t end = now_ms() + 2000;

	while (now_ms() < end) {
		ssize_t n;

		ferry_endpoint_poll(srv, 1);
		n = recv(r->fd, buf, cap, 0);
		if (n < 0)
			continue;
		if (ferry_wire_parse(buf, (size_t)n, 1u << 30, f) !=
			    FERRY_PARSE_OK ||
		    f->h.type != type)
			continue;
		if (type == FERRY_FT_RESPONSE && req_id && f->h.req_id != req_id)
			continue;
		return true;
	}
	return false;
}

/* Send a CONNECT with FEATURES @features (none if 0) and @tok as its TOKEN
 * (none if NULL). */
static inline void raw_connect_send(struct raw *r, uint32_t features,
				    const void *tok, size_t tok_len)
{
	struct ferry_connect_body b = { .params = { 1u << 20, 64, 8192, 16 } };
	struct ferry_hdr h = { .type = FERRY_FT_CONNECT };
	uint8_t body[4096];
	int n;

	b.have_params = true;
	b.features = features;
	if (tok) {
		b.token = tok;
		b.token_len = (uint16_t)tok_len;
	}
	n = ferry_wire_put_connect(body, sizeof(body), &b);
	cr_assert(n > 0);
	h.src_sess = r->my_sess;
	h.credit = 1u << 20;
	h.msg_len = (uint32_t)n;
	raw_send(r, &h, body, (size_t)n);
}

/* A whole handshake: raw_open(), the CONNECT, the server's ACCEPT.
 * Returns the FEATURES the ACCEPT announced. */
static inline uint32_t raw_connect(struct raw *r, struct ferry_endpoint *srv,
				   uint32_t my_sess, uint32_t features,
				   const void *tok, size_t tok_len)
{
	struct ferry_connect_body acc;
	struct ferry_frame f;
	uint8_t buf[2048];

	raw_open(r, srv, my_sess);
	raw_connect_send(r, features, tok, tok_len);
	cr_assert(raw_recv(r, srv, FERRY_FT_ACCEPT, 0, &f, buf, sizeof(buf)),
		  "no ACCEPT");
	r->srv_sess = f.h.src_sess;
	cr_assert_eq(ferry_wire_parse_connect(f.payload, f.pay_len, &acc), 0);
	return acc.features;
}

#endif /* FERRY_TESTS_RAW_PEER_H */
