/* SPDX-License-Identifier: MIT */
/*
 * The uring dataplane's receive side: one multishot RECVMSG into a
 * provided-buffer ring that this file registers itself (liburing 2.3 has no
 * io_uring_setup_buf_ring).  Each buffer holds the io_uring_recvmsg_out
 * header, the source address, a control message and the datagram;
 * ->rx_burst lends it in place, ->rx_release puts it back in the ring.
 *
 * GRO.  With UDP_GRO on, the kernel may hand over several datagrams of one
 * flow in one buffer (a train sent with UDP_SEGMENT over loopback arrives
 * whole; a NIC's GRO coalesces what it receives), and says their size in a
 * UDP_GRO control message: every datagram has that size but the last,
 * which may be shorter.  The buffer is split in place into one lent
 * datagram each, sharing it; it goes back to the ring when the last of
 * them is released (a count per buffer).  The caller still sees the
 * datagrams the sender made, in order: never more lent at once than it
 * asked buffers for (conf.rx_bufs, which is how many it can hold), the
 * rest waiting in the split state until it releases some.
 *
 * Memory.  A coalesced buffer can be 64 KiB, so with GRO every buffer is
 * that large; their number is the caller's rx_bufs, at most
 * URING_GRO_NBUFS_MAX (64 MiB, the transport's receive-ring budget), and
 * the memory is not populated up front: a buffer that only ever holds
 * small datagrams touches one page of it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "uring.h"

/* Put buffer @bid in ring entry tail + @off; visible after advance(). */
static void buf_add(struct ferry_dp *dp, uint32_t bid, int off)
{
	io_uring_buf_ring_add(dp->br, dp->rx_mem + (size_t)bid * dp->buf_size,
			      dp->buf_size, (unsigned short)bid, dp->br_mask,
			      off);
}

/* Ask the socket for UDP_GRO unless told not to; true if it took it. */
static bool gro_enable(struct ferry_dp *dp)
{
	int one = 1;

	if (dp->conf.no_gro)
		return false;
	return setsockopt(dp->fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
}

int ferry__uring_setup_rx(struct ferry_dp *dp)
{
	struct io_uring_buf_reg reg;
	uint32_t n = 1, want = dp->conf.rx_bufs;
	int ret, mflags = MAP_ANONYMOUS | MAP_PRIVATE;

	dp->gro = gro_enable(dp);
	if (dp->gro && want > URING_GRO_NBUFS_MAX)
		want = URING_GRO_NBUFS_MAX;
	/* The buffer ring's size must be a power of two, at most 32768. */
	while (n < want)
		n <<= 1;
	if (n > 32768)
		n = 32768;
	dp->nbufs = n;
	dp->rx_lend_max = dp->conf.rx_bufs;
	dp->br_mask = io_uring_buf_ring_mask(n);
	/* Room for the recvmsg_out header, a sockaddr_in and the control
	 * message before the datagram, rounded to a cache line. */
	if (dp->gro)
		dp->buf_size = URING_GRO_BUF_ROOM;
	else
		dp->buf_size = (uint32_t)((dp->conf.max_frame + 128 + 63) &
					  ~63u);
	dp->bref = calloc(n, sizeof(*dp->bref));
	if (!dp->bref)
		return -ENOMEM;
	dp->br_bytes = n * sizeof(struct io_uring_buf);
	dp->br = mmap(NULL, dp->br_bytes, PROT_READ | PROT_WRITE, mflags, -1,
		      0);
	if (dp->br == MAP_FAILED) {
		dp->br = NULL;
		return -ENOMEM;
	}
	dp->rx_mem_bytes = (size_t)n * dp->buf_size;
	/* Populated now when every buffer is one datagram's: a first-touch
	 * fault per buffer on the receive path costs more than the copy
	 * into it.  GRO buffers are touched only as far as they fill. */
	dp->rx_mem = mmap(NULL, dp->rx_mem_bytes, PROT_READ | PROT_WRITE,
			  mflags | (dp->gro ? 0 : MAP_POPULATE), -1, 0);
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
		buf_add(dp, i, (int)i);
	/* Publishing the tail is a release store inside liburing: the
	 * kernel sees every entry written above before it sees the tail. */
	io_uring_buf_ring_advance(dp->br, (int)n);
	memset(&dp->rx_mh, 0, sizeof(dp->rx_mh));
	dp->rx_mh.msg_namelen = sizeof(struct sockaddr_in);
	/* Multishot copies up to this much control data into each buffer;
	 * only the UDP_GRO message (an int) is asked for. */
	dp->rx_mh.msg_controllen = dp->gro ? CMSG_SPACE(sizeof(int)) : 0;
	return 0;
}

void ferry__uring_arm_rx(struct ferry_dp *dp)
{
	struct io_uring_sqe *sqe = ferry__uring_get_sqe(dp);

	if (!sqe)
		return;
	io_uring_prep_recvmsg_multishot(sqe, dp->fd, &dp->rx_mh, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data64(sqe, UD_RX);
	dp->rx_armed = true;
}

/* Back to the ring: buffer @bid, whose datagrams are all released. */
static void buf_recycle(struct ferry_dp *dp, uint32_t bid)
{
	/* The add is published by the release store in advance(). */
	buf_add(dp, bid, 0);
	io_uring_buf_ring_advance(dp->br, 1);
	if (dp->rx_starved && !dp->rx_armed && !dp->closing) {
		dp->rx_starved = false;
		dp->st.rx_rearm++;
		ferry__uring_arm_rx(dp);
	}
}

/* The UDP_GRO segment size in @o's control data; 0 if there is none. */
static uint32_t gro_seg(struct io_uring_recvmsg_out *o, struct msghdr *mh)
{
	struct cmsghdr *c;

	for (c = io_uring_recvmsg_cmsg_firsthdr(o, mh); c;
	     c = io_uring_recvmsg_cmsg_nexthdr(o, mh, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int v;

			memcpy(&v, CMSG_DATA(c), sizeof(v));
			return v > 0 ? (uint32_t)v : 0;
		}
	}
	return 0;
}

unsigned ferry__uring_rx_split(struct ferry_dp *dp, struct ferry_dp_pkt *pkts,
			       unsigned n)
{
	struct uring_rx_split *sp = &dp->split;
	unsigned got = 0;

	while (sp->left && got < n &&
	       (dp->rx_out < dp->rx_lend_max || dp->closing)) {
		uint32_t len = sp->left < sp->seg ? sp->left : sp->seg;

		pkts[got].data = sp->next;
		pkts[got].len = len;
		pkts[got].id = sp->bid;
		pkts[got].src = sp->src;
		got++;
		dp->rx_out++;
		sp->next += len;
		sp->left -= len;
	}
	return got;
}

bool ferry__uring_rx_cqe(struct ferry_dp *dp, const struct io_uring_cqe *cqe,
			 struct ferry_dp_pkt *pkts, unsigned *got, unsigned n)
{
	struct io_uring_recvmsg_out *o;
	struct sockaddr_in *sa;
	uint32_t bid, len, seg, segs;
	uint8_t *buf;

	if (*got == n || dp->split.left ||
	    (dp->rx_out >= dp->rx_lend_max && !dp->closing))
		return false;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		dp->rx_armed = false;
	if (cqe->res == -ENOBUFS)
		dp->rx_starved = true;
	if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
		return true; /* re-armed by the caller */
	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	buf = dp->rx_mem + (size_t)bid * dp->buf_size;
	o = io_uring_recvmsg_validate(buf, cqe->res, &dp->rx_mh);
	if (!o || (o->flags & MSG_TRUNC) ||
	    o->namelen < sizeof(struct sockaddr_in)) {
		dp->st.rx_truncated++;
		buf_recycle(dp, bid);
		return true;
	}
	dp->bufs_out++;
	sa = io_uring_recvmsg_name(o);
	len = io_uring_recvmsg_payload_length(o, cqe->res, &dp->rx_mh);
	seg = dp->gro ? gro_seg(o, &dp->rx_mh) : 0;
	if (seg == 0 || seg >= len)
		seg = len;
	segs = len ? (len + seg - 1) / seg : 1;
	if (segs > 1) {
		dp->st.rx_gro_bufs++;
		dp->st.rx_gro_segments += segs;
	}
	dp->bref[bid] = (uint16_t)segs;
	dp->split.next = io_uring_recvmsg_payload(o, &dp->rx_mh);
	dp->split.left = len;
	dp->split.seg = seg;
	dp->split.bid = bid;
	dp->split.src.ip = sa->sin_addr.s_addr;
	dp->split.src.port = ntohs(sa->sin_port);
	if (len == 0) {
		/* An empty datagram is still one. */
		pkts[*got].data = dp->split.next;
		pkts[*got].len = 0;
		pkts[*got].id = bid;
		pkts[*got].src = dp->split.src;
		(*got)++;
		dp->rx_out++;
		return true;
	}
	*got += ferry__uring_rx_split(dp, pkts + *got, n - *got);
	return true;
}

void ferry__uring_rx_release(struct ferry_dp *dp, uint32_t id)
{
	dp->rx_out--;
	if (--dp->bref[id] == 0) {
		dp->bufs_out--;
		buf_recycle(dp, id);
	}
}
