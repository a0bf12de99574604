/* SPDX-License-Identifier: MIT */
/*
 * ZeroMQ DEALER/ROUTER echo over TCP: what a user would pick instead of
 * ferry for many small calls in flight (docs/bench.md, issue 13).
 *
 * Server: one ROUTER socket; each message (the DEALER's identity frame and
 * the body) is sent back as it came.  Client: --conns DEALER sockets, each
 * its own TCP connection, each with --inflight requests outstanding; a
 * response starts its slot's next call on the same socket.
 *
 * Each process is pinned to one CPU as a whole (peer.h), so libzmq's I/O
 * thread shares that CPU with the application thread, as ferry's endpoint
 * shares its CPU with the caller.  Waits sleep (in zmq_recv or zmq_poll);
 * there is no busy-poll mode: libzmq's I/O thread sleeps in epoll whatever
 * the application does, and an application thread spinning on its CPU
 * would only starve it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "peer.h"

#define BUF 65536

static void die(const char *what)
{
	fprintf(stderr, "zmq-echo: %s: %s\n", what, zmq_strerror(zmq_errno()));
	exit(1);
}

static char *endpoint(const struct peer_opts *o)
{
	static char ep[128];

	snprintf(ep, sizeof(ep), "tcp://%s:%d", o->addr, o->port);
	return ep;
}

static int run_server(const struct peer_opts *o, void *ctx)
{
	void *s = zmq_socket(ctx, ZMQ_ROUTER);
	int tmo = 100, zero = 0;
	zmq_msg_t id, body;

	if (!s)
		die("zmq_socket");
	/* Wake every 100 ms to see a stop request. */
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(s, endpoint(o)) != 0)
		die("zmq_bind");
	zmq_msg_init(&id);
	zmq_msg_init(&body);
	while (!peer_stop) {
		if (zmq_msg_recv(&id, s, 0) < 0) {
			if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
				continue;
			die("zmq_msg_recv");
		}
		if (zmq_msg_recv(&body, s, 0) < 0)
			die("zmq_msg_recv");
		/* The messages are sent as they came, without a copy. */
		if (zmq_msg_send(&id, s, ZMQ_SNDMORE) < 0 ||
		    zmq_msg_send(&body, s, 0) < 0)
			die("zmq_msg_send");
	}
	zmq_msg_close(&id);
	zmq_msg_close(&body);
	zmq_close(s);
	return 0;
}

struct cli {
	const struct peer_opts *o;
	struct peer_run r;
	void **socks;
	uint32_t *seq;
	uint64_t *t0;
	char buf[BUF];
};

static void cli_send(struct cli *c, uint32_t conn, uint32_t slot)
{
	peer_fill(c->buf, c->o, slot, ++c->seq[slot]);
	c->t0[slot] = peer_now_ns();
	if (zmq_send(c->socks[conn], c->buf, c->o->size, 0) < 0)
		die("zmq_send");
}

/* Take every response waiting on @conn, each starting its slot's next
 * call.  @wait: block (up to the receive timeout) for the first. */
static void cli_drain(struct cli *c, uint32_t conn, bool wait)
{
	int flags = wait ? 0 : ZMQ_DONTWAIT;
	struct peer_msg m;
	int n;

	while ((n = zmq_recv(c->socks[conn], c->buf, BUF, flags)) >= 0) {
		uint64_t now = peer_now_ns();

		flags = ZMQ_DONTWAIT;
		if (n < (int)sizeof(m))
			continue;
		memcpy(&m, c->buf, sizeof(m));
		if (m.slot >= c->o->inflight * c->o->conns ||
		    m.seq != c->seq[m.slot])
			continue;
		if (peer_phase(&c->r, now) == PEER_MEASURE) {
			bench_hist_record(&c->r.hist, now - c->t0[m.slot]);
			c->r.completed++;
		}
		cli_send(c, conn, m.slot);
	}
	if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
		die("zmq_recv");
}

static int run_client(const struct peer_opts *o, void *ctx)
{
	uint32_t nslots = o->inflight * o->conns;
	struct cli *c = calloc(1, sizeof(*c));
	zmq_pollitem_t *items;
	int tmo = 100, zero = 0;

	if (!c)
		die("calloc");
	c->o = o;
	c->socks = calloc(o->conns, sizeof(*c->socks));
	c->seq = calloc(nslots, sizeof(*c->seq));
	c->t0 = calloc(nslots, sizeof(*c->t0));
	items = calloc(o->conns, sizeof(*items));
	if (!c->socks || !c->seq || !c->t0 || !items)
		die("calloc");
	for (uint32_t k = 0; k < o->conns; k++) {
		c->socks[k] = zmq_socket(ctx, ZMQ_DEALER);
		if (!c->socks[k])
			die("zmq_socket");
		zmq_setsockopt(c->socks[k], ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
		zmq_setsockopt(c->socks[k], ZMQ_LINGER, &zero, sizeof(zero));
		if (zmq_connect(c->socks[k], endpoint(o)) != 0)
			die("zmq_connect");
		items[k].socket = c->socks[k];
		items[k].events = ZMQ_POLLIN;
	}
	peer_run_start(&c->r, o);
	for (uint32_t k = 0; k < o->conns; k++)
		for (uint32_t i = 0; i < o->inflight; i++)
			cli_send(c, k, k * o->inflight + i);
	while (peer_phase(&c->r, peer_now_ns()) != PEER_STOP) {
		/* One connection: sleep in its zmq_recv.  More: in
		 * zmq_poll, then take what each has. */
		if (o->conns == 1) {
			cli_drain(c, 0, true);
			continue;
		}
		if (zmq_poll(items, (int)o->conns, 100) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			die("zmq_poll");
		}
		for (uint32_t k = 0; k < o->conns; k++)
			if (items[k].revents & ZMQ_POLLIN)
				cli_drain(c, k, false);
	}
	for (uint32_t k = 0; k < o->conns; k++)
		zmq_close(c->socks[k]);
	return peer_report(o, &c->r);
}

int main(int argc, char **argv)
{
	struct peer_opts o;
	void *ctx;
	int rc;

	peer_parse(&o, "zmq-echo", argc, argv);
	if (o.busy_poll) {
		fprintf(stderr, "zmq-echo: no --busy-poll (see zmq_echo.c)\n");
		return 2;
	}
	/* After peer_parse() pinned this thread: the I/O thread the
	 * context starts inherits the CPU. */
	ctx = zmq_ctx_new();
	if (!ctx)
		die("zmq_ctx_new");
	rc = o.server ? run_server(&o, ctx) : run_client(&o, ctx);
	zmq_ctx_term(ctx);
	return rc;
}
