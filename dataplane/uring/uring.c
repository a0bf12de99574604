/* SPDX-License-Identifier: MIT */
/*
 * The uring dataplane: ferry frames over a UDP socket driven by io_uring.
 *
 *  - Receive: one multishot RECVMSG into a provided-buffer ring that this
 *    file registers itself (liburing 2.3 has no io_uring_setup_buf_ring).
 *    Each buffer holds the io_uring_recvmsg_out header, the source address
 *    and the datagram; ->rx_burst lends it in place, ->rx_release puts it
 *    back in the ring.
 *  - Transmit: one SENDMSG per datagram, header iovec (copied into a
 *    transmit slot) plus body iovec (the caller's buffer, read in place),
 *    all queued SQEs submitted by one io_uring_enter per ->flush.  Bodies
 *    at or above zc_threshold go as SENDMSG_ZC; their buffer is released
 *    on the notification CQE, not the first one.
 *  - The ring runs with DEFER_TASKRUN + SINGLE_ISSUER: completions are only
 *    posted when this thread enters the kernel to ask for them, so a busy
 *    poller is never interrupted by task-work IPIs.
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

#include "../dp.h"

/* user_data: kind in the top byte, a slot index below. */
#define UD_RX (1ull << 56)
#define UD_TX (2ull << 56)
#define UD_WAKE (3ull << 56)
#define UD_KIND(ud) ((ud) & (0xffull << 56))
#define UD_IDX(ud) ((uint32_t)(ud))

/* Newer than liburing 2.3's headers (kernel 6.2 uapi). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define URING_BGID 7
#define URING_SQ_MIN 256

struct uring_tx_slot {
	struct msghdr mh;
	struct iovec iov[2];
	struct sockaddr_in sa;
	void *cookie;
	bool zc;
	bool fixed;       /* zero-copy from the registered region */
	bool retry_plain; /* zero-copy refused: resend without */
	uint8_t *hdr;     /* FERRY_DP_HDR_MAX bytes in the registered region */
};

struct ferry_dp {
	struct io_uring ring;
	struct ferry_dp_conf conf;
	int fd;
	int efd;
	uint64_t efd_val;

	/* Receive: the provided-buffer ring and its memory. */
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint8_t *rx_mem;
	size_t rx_mem_bytes;
	uint32_t buf_size;
	uint32_t nbufs;
	uint32_t br_mask;
	struct msghdr rx_mh; /* the layout multishot writes into each buffer */
	bool rx_armed;
	bool rx_starved; /* the ring ran dry: re-arm on the next release */
	uint32_t rx_out; /* buffers lent to the caller */
	bool wake_armed;
	bool closing;    /* no re-arming while tearing down */

	/* Transmit slots; free ones on a stack. */
	struct uring_tx_slot *slots;
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t nslots;
	unsigned sq_pending; /* SQEs prepared since the last submit */
	/* The last kernel entry already gathered completions: the next
	 * ->rx_burst need not enter again just to look. */
	bool events_fresh;

	/* One region, registered as fixed buffer 0 when the kernel and the
	 * memlock limit allow: the transmit header slots, then the payload
	 * memory handed out by ->mem_alloc.  A zero-copy send whose header
	 * and body both lie in it goes as a fixed-buffer SENDMSG_ZC, so the
	 * kernel need not pin the pages on every send. */
	uint8_t *region;
	size_t region_bytes;
	size_t hdr_bytes;
	bool region_registered;
	bool mem_taken;

	struct ferry_dp_stats st;
};

static struct io_uring_sqe *uring_get_sqe(struct ferry_dp *dp)
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

static void uring_arm_rx(struct ferry_dp *dp)
{
	struct io_uring_sqe *sqe = uring_get_sqe(dp);

	if (!sqe)
		return;
	io_uring_prep_recvmsg_multishot(sqe, dp->fd, &dp->rx_mh, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data64(sqe, UD_RX);
	dp->rx_armed = true;
}

static void uring_arm_wake(struct ferry_dp *dp)
{
	struct io_uring_sqe *sqe = uring_get_sqe(dp);

	if (!sqe)
		return;
	/* A multishot poll: one CQE per wake, no re-arm needed. */
	io_uring_prep_poll_multishot(sqe, dp->efd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
	dp->wake_armed = true;
}

/* Put buffer @bid in ring entry tail + @off; visible after advance(). */
static void uring_buf_add(struct ferry_dp *dp, uint32_t bid, int off)
{
	io_uring_buf_ring_add(dp->br, dp->rx_mem + (size_t)bid * dp->buf_size,
			      dp->buf_size, (unsigned short)bid, dp->br_mask,
			      off);
}

static int uring_setup_rx(struct ferry_dp *dp)
{
	struct io_uring_buf_reg reg;
	uint32_t n = 1;
	int ret;

	/* The buffer ring's size must be a power of two, at most 32768. */
	while (n < dp->conf.rx_bufs)
		n <<= 1;
	if (n > 32768)
		n = 32768;
	dp->nbufs = n;
	dp->br_mask = io_uring_buf_ring_mask(n);
	/* Room for the recvmsg_out header and a sockaddr_in before the
	 * datagram, rounded to a cache line. */
	dp->buf_size = (uint32_t)((dp->conf.max_frame +
				   sizeof(struct io_uring_recvmsg_out) +
				   sizeof(struct sockaddr_in) + 63) & ~63u);
	dp->br_bytes = n * sizeof(struct io_uring_buf);
	dp->br = mmap(NULL, dp->br_bytes, PROT_READ | PROT_WRITE,
		      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (dp->br == MAP_FAILED) {
		dp->br = NULL;
		return -ENOMEM;
	}
	dp->rx_mem_bytes = (size_t)n * dp->buf_size;
	/* Populated now: a first-touch fault per buffer on the receive path
	 * costs more than the copy into it. */
	dp->rx_mem = mmap(NULL, dp->rx_mem_bytes, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
	if (dp->rx_mem == MAP_FAILED) {
		dp->rx_mem = NULL;
		return -ENOMEM;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)dp->br;
	reg.ring_entries = n;
	reg.bgid = URING_BGID;
	ret = io_uring_register_buf_ring(&dp->ring, &reg, 0);
	if (ret < 0)
		return ret;
	io_uring_buf_ring_init(dp->br);
	for (uint32_t i = 0; i < n; i++)
		uring_buf_add(dp, i, (int)i);
	/* Publishing the tail is a release store inside liburing: the
	 * kernel sees every entry written above before it sees the tail. */
	io_uring_buf_ring_advance(dp->br, (int)n);
	memset(&dp->rx_mh, 0, sizeof(dp->rx_mh));
	dp->rx_mh.msg_namelen = sizeof(struct sockaddr_in);
	return 0;
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

static int uring_setup_region(struct ferry_dp *dp)
{
	struct iovec iov;
	long page = sysconf(_SC_PAGESIZE);

	dp->hdr_bytes = ((size_t)dp->nslots * FERRY_DP_HDR_MAX + (size_t)page -
			 1) & ~((size_t)page - 1);
	dp->region_bytes = dp->hdr_bytes + dp->conf.mem_bytes;
	/* Populated now: a first-touch fault on the fast path costs more
	 * than the send it delays. */
	dp->region = mmap(NULL, dp->region_bytes, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
	if (dp->region == MAP_FAILED) {
		dp->region = NULL;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < dp->nslots; i++)
		dp->slots[i].hdr = dp->region + (size_t)i * FERRY_DP_HDR_MAX;
	/* Registration pins the pages; without CAP_IPC_LOCK it counts
	 * against RLIMIT_MEMLOCK and may fail.  Zero-copy then pins per
	 * send instead: slower, still correct. */
	iov.iov_base = dp->region;
	iov.iov_len = dp->region_bytes;
	dp->region_registered = dp->conf.zc_threshold &&
				io_uring_register_buffers(&dp->ring, &iov, 1) == 0;
	return 0;
}

/*
 * A zero-copy datagram's pages become the skb's fragments, at most
 * MAX_SKB_FRAGS (17 unless the kernel was built otherwise); the kernel
 * refuses more with EMSGSIZE.  Count the body's pages plus one for the
 * header and skip zero-copy up front rather than be refused.
 */
#define URING_ZC_MAX_FRAGS 17

static bool uring_zc_fits(const void *body, size_t len)
{
	uintptr_t a = (uintptr_t)body;

	if (len == 0)
		return true;
	return (a + len - 1) / 4096 - a / 4096 + 1 + 1 <= URING_ZC_MAX_FRAGS;
}

static bool uring_in_region(const struct ferry_dp *dp, const void *p,
			    size_t len)
{
	const uint8_t *b = p;

	return b >= dp->region && len <= dp->region_bytes &&
	       (size_t)(b - dp->region) <= dp->region_bytes - len;
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
	ret = uring_setup_rx(dp);
	if (ret < 0)
		goto err;

	dp->nslots = conf->tx_slots;
	dp->slots = calloc(dp->nslots, sizeof(*dp->slots));
	dp->free_slots = calloc(dp->nslots, sizeof(*dp->free_slots));
	if (!dp->slots || !dp->free_slots) {
		ret = -ENOMEM;
		goto err;
	}
	ret = uring_setup_region(dp);
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
	uring_arm_rx(dp);
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

static void uring_tx_complete(struct ferry_dp *dp, uint32_t idx);

static void uring_resend_plain(struct ferry_dp *dp, uint32_t idx)
{
	struct uring_tx_slot *s = &dp->slots[idx];
	struct io_uring_sqe *sqe = uring_get_sqe(dp);

	s->zc = false;
	s->fixed = false;
	s->retry_plain = false;
	if (!sqe) {
		dp->st.tx_errors++;
		uring_tx_complete(dp, idx);
		return;
	}
	io_uring_prep_sendmsg(sqe, dp->fd, &s->mh, 0);
	io_uring_sqe_set_data64(sqe, UD_TX | idx);
}

static void uring_tx_complete(struct ferry_dp *dp, uint32_t idx)
{
	struct uring_tx_slot *s = &dp->slots[idx];

	if (s->cookie)
		dp->conf.tx_done(dp->conf.tx_done_ctx, s->cookie);
	s->cookie = NULL;
	dp->free_slots[dp->nfree++] = idx;
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

	io_uring_for_each_cqe(ring, head, cqe) {
		uint64_t ud = cqe->user_data;

		if (UD_KIND(ud) == UD_RX) {
			struct io_uring_recvmsg_out *o;
			uint32_t bid;
			uint8_t *buf;

			if (got == n)
				break;
			seen++;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				dp->rx_armed = false;
			if (cqe->res == -ENOBUFS)
				dp->rx_starved = true;
			if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
				continue; /* re-armed below */
			bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			buf = dp->rx_mem + (size_t)bid * dp->buf_size;
			o = io_uring_recvmsg_validate(buf, cqe->res, &dp->rx_mh);
			if (!o || (o->flags & MSG_TRUNC) ||
			    o->namelen < sizeof(struct sockaddr_in)) {
				dp->st.rx_truncated++;
				uring_buf_add(dp, bid, 0);
				io_uring_buf_ring_advance(dp->br, 1);
				continue;
			}
			{
				struct sockaddr_in *sa =
					io_uring_recvmsg_name(o);

				pkts[got].data =
					io_uring_recvmsg_payload(o, &dp->rx_mh);
				pkts[got].len = io_uring_recvmsg_payload_length(
					o, cqe->res, &dp->rx_mh);
				pkts[got].id = bid;
				pkts[got].src.ip = sa->sin_addr.s_addr;
				pkts[got].src.port = ntohs(sa->sin_port);
				got++;
				dp->rx_out++;
			}
		} else if (UD_KIND(ud) == UD_TX) {
			struct uring_tx_slot *s = &dp->slots[UD_IDX(ud)];

			seen++;
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				/* Zero-copy: the kernel is done with the
				 * pages only now.  It also says whether it
				 * had to copy after all (loopback does). */
				if ((uint32_t)cqe->res &
				    IORING_NOTIF_USAGE_ZC_COPIED)
					dp->st.tx_zc_copied++;
				if (s->retry_plain)
					uring_resend_plain(dp, UD_IDX(ud));
				else
					uring_tx_complete(dp, UD_IDX(ud));
				continue;
			}
			if (s->fixed && (cqe->res == -EINVAL ||
					 cqe->res == -EFAULT)) {
				/* A kernel without vectored fixed buffers
				 * for SENDMSG_ZC: stop asking for them. */
				dp->region_registered = false;
			}
			if (s->zc && (cqe->res == -EMSGSIZE ||
				      (s->fixed && (cqe->res == -EINVAL ||
						    cqe->res == -EFAULT)))) {
				/* A zero-copy datagram must fit the skb's
				 * page fragments (about 60 KiB unaligned);
				 * send it again the ordinary way, once the
				 * kernel has let go of the pages. */
				dp->st.tx_zc_fallback++;
				s->retry_plain = true;
				if (!(cqe->flags & IORING_CQE_F_MORE))
					uring_resend_plain(dp, UD_IDX(ud));
				continue;
			}
			if (cqe->res < 0)
				dp->st.tx_errors++;
			if (s->zc) {
				if (cqe->flags & IORING_CQE_F_MORE)
					continue; /* a NOTIF follows */
			}
			uring_tx_complete(dp, UD_IDX(ud));
		} else if (UD_KIND(ud) == UD_WAKE) {
			seen++;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				dp->wake_armed = false;
			/* Drain the counter; nonblocking, may race a writer
			 * harmlessly: a later write re-triggers the poll. */
			if (read(dp->efd, &dp->efd_val, sizeof(dp->efd_val)) < 0)
				(void)0;
		} else {
			seen++;
		}
	}
	io_uring_cq_advance(ring, seen);
	if (dp->closing)
		return got;
	/* A multishot receive that ran out of buffers waits for the next
	 * release: re-arming into an empty ring would only fail again. */
	if (!dp->rx_armed && (!dp->rx_starved || dp->rx_out < dp->nbufs)) {
		dp->rx_starved = false;
		dp->st.rx_rearm++;
		uring_arm_rx(dp);
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
	/* The add is published by the release store in advance(). */
	uring_buf_add(dp, id, 0);
	io_uring_buf_ring_advance(dp->br, 1);
	dp->rx_out--;
	if (dp->rx_starved && !dp->rx_armed && !dp->closing) {
		dp->rx_starved = false;
		dp->st.rx_rearm++;
		uring_arm_rx(dp);
	}
}

static unsigned uring_tx_burst(struct ferry_dp *dp,
			       const struct ferry_dp_tx *tx, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct ferry_dp_tx *t = &tx[i];
		struct io_uring_sqe *sqe;
		struct uring_tx_slot *s;
		uint32_t idx;

		if (dp->nfree == 0 || t->hdr_len > FERRY_DP_HDR_MAX)
			break;
		sqe = uring_get_sqe(dp);
		if (!sqe)
			break;
		idx = dp->free_slots[--dp->nfree];
		s = &dp->slots[idx];
		memcpy(s->hdr, t->hdr, t->hdr_len);
		s->iov[0].iov_base = s->hdr;
		s->iov[0].iov_len = t->hdr_len;
		s->iov[1].iov_base = (void *)t->body;
		s->iov[1].iov_len = t->body_len;
		s->sa.sin_family = AF_INET;
		s->sa.sin_port = htons(t->dst.port);
		s->sa.sin_addr.s_addr = t->dst.ip;
		memset(&s->mh, 0, sizeof(s->mh));
		s->mh.msg_name = &s->sa;
		s->mh.msg_namelen = sizeof(s->sa);
		s->mh.msg_iov = s->iov;
		s->mh.msg_iovlen = t->body_len ? 2 : 1;
		s->cookie = t->cookie;
		s->retry_plain = false;
		s->zc = dp->conf.zc_threshold &&
			t->body_len >= dp->conf.zc_threshold &&
			uring_zc_fits(t->body, t->body_len);
		s->fixed = s->zc && dp->region_registered &&
			   uring_in_region(dp, t->body, t->body_len);
		if (s->zc) {
			io_uring_prep_sendmsg_zc(sqe, dp->fd, &s->mh, 0);
			sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
			if (s->fixed) {
				/* Kernel 6.15+: every iovec must lie in
				 * registered buffer 0, as both do here. */
				sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
				sqe->buf_index = 0;
				dp->st.tx_zc_fixed++;
			}
			dp->st.tx_zc++;
		} else {
			io_uring_prep_sendmsg(sqe, dp->fd, &s->mh, 0);
		}
		io_uring_sqe_set_data64(sqe, UD_TX | idx);
	}
	return i;
}

static int uring_flush(struct ferry_dp *dp)
{
	int ret;

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
		struct io_uring_sqe *sqe = io_uring_get_sqe(&dp->ring);

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
