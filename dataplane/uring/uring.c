/* SPDX-License-Identifier: MIT */
/*
 * The uring dataplane: ferry frames over a UDP socket driven by io_uring.
 *
 * Files: this one holds the ops table, open and close, waiting and the
 * completion loop; rx.c the multishot receive into a provided-buffer ring
 * and the splitting of GRO buffers; tx.c the transmit slots, zero-copy
 * sends and GSO trains; uring.h what they share.
 *
 * The ring runs with DEFER_TASKRUN + SINGLE_ISSUER: completions are only
 * posted when this thread enters the kernel to ask for them, so a busy
 * poller is never interrupted by task-work IPIs.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "uring.h"

struct io_uring_sqe *ferry__uring_get_sqe(struct ferry_dp *dp)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&dp->ring);

	if (!sqe) {
		/* SQ full: submit what is there and take the freed entry. */
		io_uring_submit(&dp->ring);
		dp->st.syscalls++;
		dp->sq_pending = 0;
		sqe = io_uring_get_sqe(&dp->ring);
	}
	if (sqe)
		dp->sq_pending++;
	return sqe;
}

static void uring_arm_wake(struct ferry_dp *dp)
{
	struct io_uring_sqe *sqe = ferry__uring_get_sqe(dp);

	if (!sqe)
		return;
	/* A multishot poll: one CQE per wake, no re-arm needed. */
	io_uring_prep_poll_multishot(sqe, dp->efd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
	dp->wake_armed = true;
}

static int uring_socket(struct ferry_dp *dp)
{
	struct sockaddr_in sa;
	int one = 1;
	/* Deep socket buffers: credits bound what peers send, but a burst
	 * of full-size datagrams still needs room while the ring refills. */
	int bufsz = 64 << 20;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	dp->fd = fd;
	if (dp->conf.reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return -errno;
	/* The FORCE variants need CAP_NET_ADMIN; without it the plain ones
	 * give what net.core.[rw]mem_max allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(dp->conf.port);
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (dp->conf.bind_addr &&
	    ferry__addr_parse_ip(dp->conf.bind_addr, &sa.sin_addr.s_addr))
		return -EINVAL;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

static void uring_close(struct ferry_dp *dp);

static int uring_open(const struct ferry_dp_conf *conf, struct ferry_dp **out)
{
	struct io_uring_params p;
	struct ferry_dp *dp;
	unsigned sq;
	int ret;

	if (conf->max_frame < 64 || conf->max_frame > 65535 ||
	    conf->rx_bufs == 0 || conf->tx_slots == 0 || !conf->tx_done)
		return -EINVAL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->conf = *conf;
	dp->fd = -1;
	dp->efd = -1;
	dp->ring.ring_fd = -1;

	sq = URING_SQ_MIN;
	while (sq < conf->tx_slots + 8 && sq < 4096)
		sq <<= 1;
	memset(&p, 0, sizeof(p));
	/* CQ room for every transmit (two CQEs each when zero-copy) plus a
	 * burst of receives, so the CQ does not overflow between reaps. */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = sq * 8;
	ret = io_uring_queue_init_params(sq, &dp->ring, &p);
	if (ret < 0) {
		/* Kernels before 6.1 lack DEFER_TASKRUN: fall back to the
		 * cooperative mode, which still avoids IPIs. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
			  IORING_SETUP_TASKRUN_FLAG;
		p.cq_entries = sq * 8;
		ret = io_uring_queue_init_params(sq, &dp->ring, &p);
	}
	if (ret < 0) {
		dp->ring.ring_fd = -1;
		goto err;
	}
	/* Saves an fdget per io_uring_enter; harmless if unsupported. */
	io_uring_register_ring_fd(&dp->ring);

	ret = uring_socket(dp);
	if (ret < 0)
		goto err;
	ret = ferry__uring_setup_rx(dp);
	if (ret < 0)
		goto err;

	dp->nslots = conf->tx_slots;
	dp->slots = calloc(dp->nslots, sizeof(*dp->slots));
	dp->free_slots = calloc(dp->nslots, sizeof(*dp->free_slots));
	if (!dp->slots || !dp->free_slots) {
		ret = -ENOMEM;
		goto err;
	}
	ret = ferry__uring_setup_tx(dp);
	if (ret < 0)
		goto err;
	for (uint32_t i = 0; i < dp->nslots; i++)
		dp->free_slots[i] = dp->nslots - 1 - i;
	dp->nfree = dp->nslots;

	dp->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dp->efd < 0) {
		ret = -errno;
		goto err;
	}
	ferry__uring_arm_rx(dp);
	uring_arm_wake(dp);
	ret = io_uring_submit(&dp->ring);
	if (ret < 0)
		goto err;
	dp->sq_pending = 0;
	*out = dp;
	return 0;
err:
	uring_close(dp);
	return ret;
}

/*
 * Reap up to @n datagrams into @pkts, handling transmit and wake
 * completions on the way; stops at the first receive CQE beyond @n.
 * Returns the datagram count.
 */
static unsigned uring_reap(struct ferry_dp *dp, struct ferry_dp_pkt *pkts,
			   unsigned n)
{
	struct io_uring *ring = &dp->ring;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, got = 0;

	/* The rest of a split GRO buffer comes before anything newer. */
	got = ferry__uring_rx_split(dp, pkts, n);
	io_uring_for_each_cqe(ring, head, cqe) {
		uint64_t ud = cqe->user_data;

		if (UD_KIND(ud) == UD_RX) {
			if (!ferry__uring_rx_cqe(dp, cqe, pkts, &got, n))
				break;
		} else if (UD_KIND(ud) == UD_TX || UD_KIND(ud) == UD_TRAIN) {
			ferry__uring_tx_cqe(dp, cqe);
		} else if (UD_KIND(ud) == UD_WAKE) {
			if (!(cqe->flags & IORING_CQE_F_MORE))
				dp->wake_armed = false;
			/* Drain the counter; nonblocking, may race a writer
			 * harmlessly: a later write re-triggers the poll. */
			if (read(dp->efd, &dp->efd_val, sizeof(dp->efd_val)) < 0)
				(void)0;
		}
		seen++;
	}
	io_uring_cq_advance(ring, seen);
	if (dp->closing)
		return got;
	/* A multishot receive that ran out of buffers waits for the next
	 * release: re-arming into an empty ring would only fail again. */
	if (!dp->rx_armed && (!dp->rx_starved || dp->bufs_out < dp->nbufs)) {
		dp->rx_starved = false;
		dp->st.rx_rearm++;
		ferry__uring_arm_rx(dp);
	}
	if (!dp->wake_armed)
		uring_arm_wake(dp);
	return got;
}

static unsigned uring_rx_burst(struct ferry_dp *dp, struct ferry_dp_pkt *pkts,
			       unsigned n)
{
	unsigned got = uring_reap(dp, pkts, n);

	/* With DEFER_TASKRUN, completions are posted only when this thread
	 * asks the kernel for them; with the cooperative fallback, only
	 * when the kernel flagged pending task work.  Ask once when the CQ
	 * looks empty, unless ->flush or ->wait just did. */
	if (got == 0 && !dp->events_fresh) {
		io_uring_get_events(&dp->ring);
		dp->st.syscalls++;
		got = uring_reap(dp, pkts, n);
	}
	dp->events_fresh = false;
	return got;
}

static void uring_rx_release(struct ferry_dp *dp, uint32_t id)
{
	ferry__uring_rx_release(dp, id);
}

static unsigned uring_tx_burst(struct ferry_dp *dp,
			       const struct ferry_dp_tx *tx, unsigned n)
{
	return ferry__uring_tx_burst(dp, tx, n);
}

static int uring_flush(struct ferry_dp *dp)
{
	int ret;

	ferry__uring_tx_prep(dp);
	if (dp->sq_pending == 0)
		return 0;
	/* One kernel entry submits the burst and gathers completions. */
	ret = io_uring_submit_and_get_events(&dp->ring);
	dp->st.syscalls++;
	dp->sq_pending = 0;
	dp->events_fresh = true;
	return ret < 0 ? ret : 0;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int uring_wait(struct ferry_dp *dp, int64_t timeout_ns)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int ret;

	/* Datagrams queued without a flush leave now at the latest. */
	ferry__uring_tx_prep(dp);
	if (io_uring_cq_ready(&dp->ring))
		return 0;
	if (dp->conf.busy_poll) {
		int64_t end = timeout_ns < 0 ? INT64_MAX : mono_ns() + timeout_ns;

		/* Spin: each lap asks the kernel to run pending task work
		 * and post completions, without ever sleeping. */
		do {
			ret = io_uring_submit_and_get_events(&dp->ring);
			dp->st.syscalls++;
			dp->sq_pending = 0;
			if (ret < 0 && ret != -EINTR && ret != -EBUSY)
				return ret;
			if (io_uring_cq_ready(&dp->ring)) {
				dp->events_fresh = true;
				return 0;
			}
		} while (mono_ns() < end);
		return 0;
	}
	dp->sq_pending = 0;
	dp->st.syscalls++;
	if (timeout_ns < 0) {
		ret = io_uring_submit_and_wait(&dp->ring, 1);
	} else {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		ret = io_uring_submit_and_wait_timeout(&dp->ring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY)
		return ret;
	dp->events_fresh = true;
	return 0;
}

static int uring_wake(struct ferry_dp *dp)
{
	uint64_t one = 1;

	if (write(dp->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

static int uring_local_addr(struct ferry_dp *dp, struct ferry_addr *out)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(dp->fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	out->ip = sa.sin_addr.s_addr;
	out->port = ntohs(sa.sin_port);
	return 0;
}

static void *uring_mem_alloc(struct ferry_dp *dp, size_t len)
{
	if (dp->mem_taken || len > dp->conf.mem_bytes)
		return NULL;
	dp->mem_taken = true;
	return dp->region + dp->hdr_bytes;
}

static void uring_stats(const struct ferry_dp *dp, struct ferry_dp_stats *out)
{
	*out = dp->st;
}

static void uring_close(struct ferry_dp *dp)
{
	if (!dp)
		return;
	if (dp->ring.ring_fd >= 0) {
		/* Cancel the receive and wake, then wait for every transmit
		 * so each body's tx_done runs before its memory goes. */
		struct io_uring_sqe *sqe;

		/* Queued datagrams go first, so that each gets its tx_done
		 * from its completion. */
		if (dp->txq)
			ferry__uring_tx_prep(dp);
		sqe = io_uring_get_sqe(&dp->ring);
		if (sqe) {
			io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
			io_uring_sqe_set_data64(sqe, 0);
		}
		io_uring_submit(&dp->ring);
		dp->closing = true;
		/* Reap until the multishot receive and poll have ended and
		 * every transmit completed: an armed request holds the
		 * socket, which would otherwise outlive this process while
		 * the kernel tears the ring down, keeping its port bound. */
		for (int i = 0; i < 2000 &&
				(dp->rx_armed || dp->wake_armed ||
				 (dp->slots && dp->nfree < dp->nslots));
		     i++) {
			struct __kernel_timespec ts = { 0, 1000000 };
			struct io_uring_cqe *cqe;
			struct ferry_dp_pkt pkt;

			io_uring_submit_and_wait_timeout(&dp->ring, &cqe, 1, &ts,
							 NULL);
			while (uring_reap(dp, &pkt, 1))
				; /* late datagrams: drop */
		}
		io_uring_queue_exit(&dp->ring);
	}
	if (dp->fd >= 0)
		close(dp->fd);
	if (dp->efd >= 0)
		close(dp->efd);
	if (dp->br)
		munmap(dp->br, dp->br_bytes);
	if (dp->rx_mem)
		munmap(dp->rx_mem, dp->rx_mem_bytes);
	if (dp->region)
		munmap(dp->region, dp->region_bytes);
	free(dp->slots);
	free(dp->free_slots);
	free(dp->trains);
	free(dp->txq);
	free(dp->bref);
	free(dp);
}

const struct ferry_dp_ops ferry__dp_uring_ops = {
	.name = "uring",
	.open = uring_open,
	.close = uring_close,
	.local_addr = uring_local_addr,
	.mem_alloc = uring_mem_alloc,
	.rx_burst = uring_rx_burst,
	.rx_release = uring_rx_release,
	.tx_burst = uring_tx_burst,
	.flush = uring_flush,
	.wait = uring_wait,
	.wake = uring_wake,
	.stats = uring_stats,
};
