/* SPDX-License-Identifier: MIT */
/*
 * A plain io_uring UDP echo, one datagram per message: what a user would
 * write with liburing instead of ferry (docs/bench.md, issue 13).
 *
 * The ring is set up as ferry's uring dataplane sets up its own
 * (SINGLE_ISSUER + DEFER_TASKRUN, or the cooperative fallback), and the
 * sockets get the same 64 MiB buffers, so the comparison is about what
 * each sends, not about ring flags.  Each loop pass reaps every completion
 * there is and submits what they caused with one io_uring_enter, which
 * also gathers the next completions: sleeping in it (by default) or
 * spinning on it (--busy-poll).
 *
 * Receiving is done as liburing's documentation suggests for many
 * datagrams on one socket: one multishot receive into a ring of provided
 * buffers.  (One-shot receives, one per buffer, all armed on the same
 * socket, are woken together by every datagram; the losers are punted to
 * io-wq worker threads, and the echo then runs at a fraction of the
 * speed: measured 2-4x slower, with hundreds of iou-wrk threads.)
 *
 * Server: a multishot RECVMSG; each datagram is sent back from its
 * receive buffer to its source (one SENDMSG per datagram), and the buffer
 * goes back to the ring when that send completes.
 * Client: a connected socket, a multishot RECV; --inflight requests
 * outstanding, each a SEND from its slot's buffer; a response starts its
 * slot's next call, and its buffer goes straight back.  A slot whose
 * answer does not come within a second (UDP may drop) counts an error and
 * is sent again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

#define NBUFS 1024         /* provided receive buffers (a power of two) */
#define BUF 2048           /* bytes per buffer (--size at most ~1.9 KiB) */
#define BGID 0
#define TIMEOUT_NS 1000000000ull

/* user_data: the kind in bits 32 and up, a buffer or slot index below. */
#define UD_RECV (1ull << 32)
#define UD_SEND (2ull << 32)

/* The provided-buffer ring both roles receive into. */
struct bufs {
	struct io_uring_buf_ring *br;
	char *mem;
	bool armed; /* the multishot receive is posted */
};

static void die(const char *what, int err)
{
	fprintf(stderr, "uring-echo: %s: %s\n", what, strerror(err));
	exit(1);
}

static void ring_init(struct io_uring *ring)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = 4096;
	ret = io_uring_queue_init_params(1024, ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
			  IORING_SETUP_TASKRUN_FLAG;
		p.cq_entries = 4096;
		ret = io_uring_queue_init_params(1024, ring, &p);
	}
	if (ret < 0)
		die("io_uring_queue_init", -ret);
}

static int udp_socket(const struct peer_opts *o, struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int bufsz = 64 << 20;

	if (fd < 0)
		die("socket", errno);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)o->port);
	if (inet_pton(AF_INET, o->addr, &sa->sin_addr) != 1)
		die("--addr", EINVAL);
	return fd;
}

static struct io_uring_sqe *sqe_get(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		/* SQ full: submit what is there and take the freed entry. */
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

/* Submit what is queued and gather completions: spinning, or sleeping
 * until one comes (at most 100 ms, so a stop request is seen). */
static void ring_enter(struct io_uring *ring, bool busy)
{
	struct __kernel_timespec ts = { 0, 100000000 };
	struct io_uring_cqe *cqe;
	int ret;

	if (busy) {
		uint64_t end = peer_now_ns() + 100000000ull;

		do
			ret = io_uring_submit_and_get_events(ring);
		while (ret >= 0 && !io_uring_cq_ready(ring) && !peer_stop &&
		       peer_now_ns() < end);
	} else {
		ret = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY)
		die("io_uring_enter", -ret);
}

static void bufs_init(struct io_uring *ring, struct bufs *b)
{
	struct io_uring_buf_reg reg;
	int ret;

	b->br = mmap(NULL, NBUFS * sizeof(struct io_uring_buf),
		     PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	b->mem = mmap(NULL, (size_t)NBUFS * BUF, PROT_READ | PROT_WRITE,
		      MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
	if (b->br == MAP_FAILED || b->mem == MAP_FAILED)
		die("mmap", errno);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)b->br;
	reg.ring_entries = NBUFS;
	reg.bgid = BGID;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0)
		die("io_uring_register_buf_ring", -ret);
	io_uring_buf_ring_init(b->br);
	for (int i = 0; i < NBUFS; i++)
		io_uring_buf_ring_add(b->br, b->mem + (size_t)i * BUF, BUF,
				      (unsigned short)i,
				      io_uring_buf_ring_mask(NBUFS), i);
	io_uring_buf_ring_advance(b->br, NBUFS);
}

static void bufs_put(struct bufs *b, uint32_t bid)
{
	io_uring_buf_ring_add(b->br, b->mem + (size_t)bid * BUF, BUF,
			      (unsigned short)bid,
			      io_uring_buf_ring_mask(NBUFS), 0);
	io_uring_buf_ring_advance(b->br, 1);
}

/* (Re-)posts the multishot receive: RECVMSG on the server (it needs the
 * source), RECV on the connected client. */
static void arm_recv(struct io_uring *ring, struct bufs *b,
		     struct msghdr *mh)
{
	struct io_uring_sqe *sqe = sqe_get(ring);

	if (mh)
		io_uring_prep_recvmsg_multishot(sqe, 0, mh, 0);
	else
		io_uring_prep_recv_multishot(sqe, 0, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, UD_RECV);
	b->armed = true;
}

/* A receive CQE: its buffer id, or -1 (and the receive re-armed later
 * if the multishot ended). */
static int recv_bid(struct bufs *b, const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		b->armed = false;
	if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
		return -1;
	return (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
}

/* What a server's send of buffer @bid needs until it completes. */
struct srv_tx {
	struct msghdr mh;
	struct iovec iov;
};

static void srv_echo(struct io_uring *ring, struct bufs *b,
		     struct msghdr *rmh, struct srv_tx *tx, int bid, int len)
{
	struct io_uring_recvmsg_out *out;
	struct io_uring_sqe *sqe;
	struct srv_tx *t = &tx[bid];
	char *buf = b->mem + (size_t)bid * BUF;

	out = io_uring_recvmsg_validate(buf, len, rmh);
	if (!out || out->namelen > sizeof(struct sockaddr_in) ||
	    (out->flags & MSG_TRUNC)) {
		bufs_put(b, (uint32_t)bid);
		return;
	}
	t->iov.iov_base = io_uring_recvmsg_payload(out, rmh);
	t->iov.iov_len = io_uring_recvmsg_payload_length(out, len, rmh);
	memset(&t->mh, 0, sizeof(t->mh));
	t->mh.msg_name = io_uring_recvmsg_name(out);
	t->mh.msg_namelen = out->namelen;
	t->mh.msg_iov = &t->iov;
	t->mh.msg_iovlen = 1;
	sqe = sqe_get(ring);
	io_uring_prep_sendmsg(sqe, 0, &t->mh, 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD_SEND | (uint32_t)bid);
}

static int run_server(const struct peer_opts *o)
{
	struct srv_tx *tx = calloc(NBUFS, sizeof(*tx));
	struct io_uring ring;
	struct sockaddr_in sa;
	struct msghdr rmh;
	struct bufs b;
	int fd;

	if (!tx)
		die("calloc", ENOMEM);
	ring_init(&ring);
	fd = udp_socket(o, &sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind", errno);
	/* A registered file saves an fget per operation, as ferry's does. */
	if (io_uring_register_files(&ring, &fd, 1) < 0)
		die("io_uring_register_files", errno);
	bufs_init(&ring, &b);
	memset(&rmh, 0, sizeof(rmh));
	rmh.msg_namelen = sizeof(struct sockaddr_in);
	arm_recv(&ring, &b, &rmh);
	while (!peer_stop) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ring_enter(&ring, o->busy_poll);
		io_uring_for_each_cqe(&ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			int bid;

			n++;
			if (ud & UD_SEND) {
				bufs_put(&b, (uint32_t)ud);
				continue;
			}
			bid = recv_bid(&b, cqe);
			if (bid >= 0)
				srv_echo(&ring, &b, &rmh, tx, bid, cqe->res);
		}
		io_uring_cq_advance(&ring, n);
		/* Ended (out of buffers, or an error): post it again, once
		 * sends have given buffers back. */
		if (!b.armed)
			arm_recv(&ring, &b, &rmh);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	free(tx);
	return 0;
}

struct cli_slot {
	uint32_t seq;
	uint64_t t0;
	char buf[BUF];
};

static void cli_send(struct io_uring *ring, const struct peer_opts *o,
		     struct peer_run *r, struct cli_slot *s, uint32_t i)
{
	struct io_uring_sqe *sqe = sqe_get(ring);

	peer_fill(s->buf, o, i, ++s->seq);
	s->t0 = peer_now_ns();
	io_uring_prep_send(sqe, 0, s->buf, o->size, 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD_SEND | i);
	if (peer_phase(r, s->t0) == PEER_MEASURE)
		r->tx_pkts++;
}

/* A response: complete its slot's call and start the next. */
static void cli_answer(struct io_uring *ring, const struct peer_opts *o,
		       struct peer_run *r, struct cli_slot *slots,
		       const char *buf, int len)
{
	uint64_t now = peer_now_ns();
	struct peer_msg m;

	if (len < (int)sizeof(m))
		return;
	memcpy(&m, buf, sizeof(m));
	if (m.slot >= o->inflight || m.seq != slots[m.slot].seq)
		return; /* late, after its slot timed out */
	if (peer_phase(r, now) == PEER_MEASURE) {
		bench_hist_record(&r->hist, now - slots[m.slot].t0);
		r->completed++;
		r->rx_pkts++;
	}
	cli_send(ring, o, r, &slots[m.slot], m.slot);
}

/* Sends again the slots whose answer is a second late. */
static void cli_expire(struct io_uring *ring, const struct peer_opts *o,
		       struct peer_run *r, struct cli_slot *slots,
		       uint64_t now)
{
	for (uint32_t i = 0; i < o->inflight; i++)
		if (now - slots[i].t0 > TIMEOUT_NS) {
			r->errors++;
			cli_send(ring, o, r, &slots[i], i);
		}
}

static int run_client(const struct peer_opts *o)
{
	struct cli_slot *slots = calloc(o->inflight, sizeof(*slots));
	uint64_t next_check;
	struct io_uring ring;
	struct sockaddr_in sa;
	struct peer_run r;
	struct bufs b;
	int fd;

	if (!slots)
		die("calloc", ENOMEM);
	if (o->size > BUF - 256)
		die("--size", EMSGSIZE);
	ring_init(&ring);
	fd = udp_socket(o, &sa);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect", errno);
	if (io_uring_register_files(&ring, &fd, 1) < 0)
		die("io_uring_register_files", errno);
	bufs_init(&ring, &b);
	arm_recv(&ring, &b, NULL);
	peer_run_start(&r, o);
	for (uint32_t i = 0; i < o->inflight; i++)
		cli_send(&ring, o, &r, &slots[i], i);
	next_check = r.t_start + TIMEOUT_NS / 4;
	while (peer_phase(&r, peer_now_ns()) != PEER_STOP) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		uint64_t now;

		ring_enter(&ring, o->busy_poll);
		io_uring_for_each_cqe(&ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			int bid;

			n++;
			if (ud & UD_SEND) {
				if (cqe->res < 0)
					r.errors++;
				continue;
			}
			bid = recv_bid(&b, cqe);
			if (bid < 0)
				continue;
			cli_answer(&ring, o, &r, slots,
				   b.mem + (size_t)bid * BUF, cqe->res);
			bufs_put(&b, (uint32_t)bid);
		}
		io_uring_cq_advance(&ring, n);
		if (!b.armed)
			arm_recv(&ring, &b, NULL);
		now = peer_now_ns();
		if (now >= next_check) {
			next_check = now + TIMEOUT_NS / 4;
			cli_expire(&ring, o, &r, slots, now);
		}
	}
	io_uring_queue_exit(&ring);
	close(fd);
	free(slots);
	return peer_report(o, &r);
}

int main(int argc, char **argv)
{
	struct peer_opts o;

	peer_parse(&o, "uring-echo", argc, argv);
	return o.server ? run_server(&o) : run_client(&o);
}
