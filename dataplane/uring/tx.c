/* SPDX-License-Identifier: MIT */
/*
 * The uring dataplane's transmit side.
 *
 * Each datagram takes a transmit slot: its copied area and trailer are
 * copied into the slot, its lent pieces are read in place, and its msghdr
 * holds one iovec for each.  ->tx_burst only queues slots; ->flush (and
 * ->wait, ->close) turns the queue into SQEs, one SENDMSG per datagram or
 * per train, all submitted by one io_uring_enter.  Datagrams whose pieces
 * reach zc_threshold go as SENDMSG_ZC; their pieces are released on the
 * notification CQE, not the first one.
 *
 * GSO.  Consecutive datagrams queued since the last flush to one
 * destination, all of one size but a last that may be shorter, form a
 * train: one SENDMSG of all
 * their iovecs with a UDP_SEGMENT control message giving the size, which
 * the kernel (or the NIC) cuts back into the same datagrams.  A train holds
 * at most FERRY_DP_GSO_SEGS_MAX datagrams and FERRY_DP_GSO_BYTES_MAX bytes,
 * and goes plainly (no zero-copy: a train's pages would overflow the skb's
 * fragment list; a datagram that asks for zero-copy goes alone).  Support is probed at open; a train the kernel refuses
 * (EIO: the route's device cannot checksum for it; EINVAL: a segment
 * larger than the route's MTU) is resent datagram by datagram from the
 * slots, which still hold everything, and counted in gso_fallbacks: EIO
 * turns GSO off, EINVAL only for segments that large.  Nothing is lost.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uring.h"

/* Each slot's copied area is followed by room for the trailer. */
#define TRAILER_ROOM 64

int ferry__uring_setup_tx(struct ferry_dp *dp)
{
	struct iovec iov;
	long page = sysconf(_SC_PAGESIZE);
	uint32_t room = dp->conf.max_frame > FERRY_DP_HDR_MAX
				? dp->conf.max_frame
				: FERRY_DP_HDR_MAX;
	size_t per;
	int zero = 0;

	dp->hdr_room = (room + 63) & ~63u;
	per = (size_t)dp->hdr_room + TRAILER_ROOM;
	dp->hdr_bytes = ((size_t)dp->nslots * per + (size_t)page - 1) &
			~((size_t)page - 1);
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
		dp->slots[i].hdr = dp->region + (size_t)i * per;
	/* Registration pins the pages; without CAP_IPC_LOCK it counts
	 * against RLIMIT_MEMLOCK and may fail.  Zero-copy then pins per
	 * send instead: slower, still correct. */
	iov.iov_base = dp->region;
	iov.iov_len = dp->region_bytes;
	dp->region_registered = dp->conf.zc_threshold &&
				io_uring_register_buffers(&dp->ring, &iov, 1) == 0;
	/* GSO: a kernel that knows UDP_SEGMENT takes a socket-wide size of
	 * 0 (none); trains then set theirs per send. */
	dp->gso = !dp->conf.no_gso &&
		  setsockopt(dp->fd, SOL_UDP, UDP_SEGMENT, &zero,
			     sizeof(zero)) == 0;
	dp->gso_fail_next = dp->conf.test_gso_fail;
	dp->gso_seg_limit = UINT32_MAX;
	dp->txq = calloc(dp->nslots, sizeof(*dp->txq));
	if (!dp->txq)
		return -ENOMEM;
	if (dp->gso) {
		dp->trains = calloc(URING_TRAINS, sizeof(*dp->trains));
		if (!dp->trains)
			return -ENOMEM;
		for (uint32_t i = 0; i < URING_TRAINS; i++)
			dp->free_trains[i] = URING_TRAINS - 1 - i;
		dp->ntrains_free = URING_TRAINS;
	}
	return 0;
}

/*
 * A zero-copy datagram's pages become the skb's fragments, at most
 * MAX_SKB_FRAGS (17 unless the kernel was built otherwise); the kernel
 * refuses more with EMSGSIZE.  Count the pieces' pages plus one for the
 * copied area and one for the trailer, and skip zero-copy up front rather
 * than be refused.
 */
#define URING_ZC_MAX_FRAGS 17

static unsigned pages_of(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;

	return len ? (unsigned)((a + len - 1) / 4096 - a / 4096 + 1) : 0;
}

static bool in_region(const struct ferry_dp *dp, const void *p, size_t len)
{
	const uint8_t *b = p;

	return b >= dp->region && len <= dp->region_bytes &&
	       (size_t)(b - dp->region) <= dp->region_bytes - len;
}

/* Copy datagram @t into slot @s: its iovecs, address, cookies, and
 * whether it is to go zero-copy. */
static void slot_fill(struct ferry_dp *dp, struct uring_tx_slot *s,
		      const struct ferry_dp_tx *t)
{
	unsigned np = ferry_dp_tx_npieces(t), k = 0, pages = 2;
	bool in_reg = true;
	uint32_t lent = 0;

	memcpy(s->hdr, t->hdr, t->hdr_len);
	s->iov[k].iov_base = s->hdr;
	s->iov[k++].iov_len = t->hdr_len;
	s->ncookies = 0;
	for (unsigned i = 0; i < np; i++) {
		const struct ferry_dp_piece *p = &t->piece[i];

		if (p->cookie)
			s->cookie[s->ncookies++] = p->cookie;
		if (!p->len)
			continue;
		s->iov[k].iov_base = (void *)p->ptr;
		s->iov[k++].iov_len = p->len;
		lent += p->len;
		pages += pages_of(p->ptr, p->len);
		if (!in_region(dp, p->ptr, p->len))
			in_reg = false;
	}
	if (t->trailer_len) {
		memcpy(s->hdr + dp->hdr_room, t->trailer, t->trailer_len);
		s->iov[k].iov_base = s->hdr + dp->hdr_room;
		s->iov[k++].iov_len = t->trailer_len;
	}
	s->len = t->hdr_len + lent + t->trailer_len;
	s->sa.sin_family = AF_INET;
	s->sa.sin_port = htons(t->dst.port);
	s->sa.sin_addr.s_addr = t->dst.ip;
	memset(&s->mh, 0, sizeof(s->mh));
	s->mh.msg_name = &s->sa;
	s->mh.msg_namelen = sizeof(s->sa);
	s->mh.msg_iov = s->iov;
	s->mh.msg_iovlen = k;
	s->retry_plain = false;
	s->zc = dp->conf.zc_threshold && lent >= dp->conf.zc_threshold &&
		pages <= URING_ZC_MAX_FRAGS;
	s->fixed = s->zc && in_reg;
}

static void slot_release(struct ferry_dp *dp, uint32_t idx)
{
	struct uring_tx_slot *s = &dp->slots[idx];

	for (unsigned i = 0; i < s->ncookies; i++)
		dp->conf.tx_done(dp->conf.tx_done_ctx, s->cookie[i]);
	s->ncookies = 0;
	dp->free_slots[dp->nfree++] = idx;
}

/* Send slot @idx on its own, plainly. */
static void send_plain(struct ferry_dp *dp, uint32_t idx)
{
	struct uring_tx_slot *s = &dp->slots[idx];
	struct io_uring_sqe *sqe = ferry__uring_get_sqe(dp);

	s->zc = false;
	s->fixed = false;
	s->retry_plain = false;
	if (!sqe) {
		dp->st.tx_errors++;
		slot_release(dp, idx);
		return;
	}
	io_uring_prep_sendmsg(sqe, dp->fd, &s->mh, 0);
	io_uring_sqe_set_data64(sqe, UD_TX | idx);
}

/* Queue slot @idx alone, zero-copy if it was found to qualify. */
static void send_one(struct ferry_dp *dp, struct io_uring_sqe *sqe,
		     uint32_t idx)
{
	struct uring_tx_slot *s = &dp->slots[idx];

	s->fixed = s->fixed && dp->region_registered;
	if (s->zc) {
		io_uring_prep_sendmsg_zc(sqe, dp->fd, &s->mh, 0);
		sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
		if (s->fixed) {
			/* Kernel 6.15+: every iovec must lie in registered
			 * buffer 0, as all do here. */
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

/* How many of the queued slots @q[0..n) can go as one train with q[0]:
 * the same destination, each the size of the first but a shorter last,
 * within the kernel's limits, none asked to go zero-copy.  1 means no
 * train. */
static unsigned train_len(const struct ferry_dp *dp, const uint32_t *q,
			  unsigned n)
{
	const struct uring_tx_slot *s0 = &dp->slots[q[0]];
	uint32_t seg = s0->len, total = seg;
	unsigned k;

	if (!dp->gso || dp->ntrains_free == 0 || n < 2 || s0->zc ||
	    seg == 0 || seg >= dp->gso_seg_limit)
		return 1;
	for (k = 1; k < n && k < FERRY_DP_GSO_SEGS_MAX; k++) {
		const struct uring_tx_slot *s = &dp->slots[q[k]];

		if (s->sa.sin_addr.s_addr != s0->sa.sin_addr.s_addr ||
		    s->sa.sin_port != s0->sa.sin_port || s->zc ||
		    s->len > seg || s->len == 0 ||
		    total + s->len > FERRY_DP_GSO_BYTES_MAX)
			break;
		total += s->len;
		if (s->len < seg) {
			k++; /* a shorter datagram ends the train */
			break;
		}
	}
	return k;
}

/* Queue slots @idx[0..n) as one UDP_SEGMENT send. */
static void send_train(struct ferry_dp *dp, struct io_uring_sqe *sqe,
		       const uint32_t *idx, unsigned n)
{
	uint32_t ti = dp->free_trains[--dp->ntrains_free];
	struct uring_train *tr = &dp->trains[ti];
	uint32_t seg = dp->slots[idx[0]].len;
	uint16_t size = (uint16_t)seg;
	struct cmsghdr *c;
	size_t k = 0;

	for (unsigned i = 0; i < n; i++) {
		struct uring_tx_slot *s = &dp->slots[idx[i]];

		memcpy(&tr->iov[k], s->iov, s->mh.msg_iovlen * sizeof(*s->iov));
		k += s->mh.msg_iovlen;
		tr->slot[i] = idx[i];
	}
	tr->nslots = n;
	tr->seg = seg;
	memset(&tr->mh, 0, sizeof(tr->mh));
	tr->mh.msg_name = &dp->slots[idx[0]].sa;
	tr->mh.msg_namelen = sizeof(struct sockaddr_in);
	tr->mh.msg_iov = tr->iov;
	tr->mh.msg_iovlen = k;
	tr->mh.msg_control = tr->cmsg.buf;
	tr->mh.msg_controllen = sizeof(tr->cmsg.buf);
	c = CMSG_FIRSTHDR(&tr->mh);
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(size));
	if (dp->gso_fail_next && seg * (n - 1) > 128) {
		/* The test hook: segments so small that the train would be
		 * more than any kernel's UDP_MAX_SEGMENTS (64, or 128 since
		 * 6.10), which it refuses with EINVAL. */
		dp->gso_fail_next = false;
		size = 1;
	}
	memcpy(CMSG_DATA(c), &size, sizeof(size));
	io_uring_prep_sendmsg(sqe, dp->fd, &tr->mh, 0);
	io_uring_sqe_set_data64(sqe, UD_TRAIN | ti);
	dp->st.tx_gso_trains++;
	dp->st.tx_gso_segments += n;
}

/*
 * Accept datagrams into slots and queue them; SQEs are prepared at
 * ->flush (ferry__uring_tx_prep), so that datagrams queued by several
 * calls (the transport sends one datagram per call) still form trains.
 */
unsigned ferry__uring_tx_burst(struct ferry_dp *dp,
			       const struct ferry_dp_tx *tx, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct ferry_dp_tx *t = &tx[i];
		uint32_t idx;

		if (t->hdr_len > dp->hdr_room ||
		    ferry_dp_tx_npieces(t) > FERRY_DP_PIECES_MAX ||
		    t->trailer_len > FERRY_DP_TRAILER_MAX)
			break;
		if (dp->nfree == 0) {
			/* Send what is queued, so that slots come back. */
			ferry__uring_tx_prep(dp);
			break;
		}
		idx = dp->free_slots[--dp->nfree];
		slot_fill(dp, &dp->slots[idx], t);
		dp->txq[dp->ntxq++] = idx;
	}
	return i;
}

void ferry__uring_tx_prep(struct ferry_dp *dp)
{
	unsigned i = 0;

	while (i < dp->ntxq) {
		unsigned k = train_len(dp, &dp->txq[i], dp->ntxq - i);
		struct io_uring_sqe *sqe = ferry__uring_get_sqe(dp);

		if (!sqe)
			break;
		if (k == 1)
			send_one(dp, sqe, dp->txq[i]);
		else
			send_train(dp, sqe, &dp->txq[i], k);
		i += k;
	}
	/* What found no SQE waits for the next call. */
	memmove(dp->txq, dp->txq + i, (dp->ntxq - i) * sizeof(*dp->txq));
	dp->ntxq -= i;
}

/* A train's completion: done, or refused and resent one by one. */
static void train_cqe(struct ferry_dp *dp, const struct io_uring_cqe *cqe)
{
	uint32_t ti = UD_IDX(cqe->user_data);
	struct uring_train *tr = &dp->trains[ti];
	int res = cqe->res;

	if (res == -EIO || res == -EINVAL || res == -EMSGSIZE) {
		/* EIO: the device cannot take GSO at all.  EINVAL or
		 * EMSGSIZE: not segments this large (larger than the route's
		 * MTU); trains of smaller ones may still go. */
		if (res == -EIO)
			dp->gso = false;
		else if (tr->seg < dp->gso_seg_limit)
			dp->gso_seg_limit = tr->seg;
		dp->st.gso_fallbacks++;
		for (uint32_t i = 0; i < tr->nslots; i++)
			send_plain(dp, tr->slot[i]);
	} else {
		if (res < 0)
			dp->st.tx_errors += tr->nslots;
		for (uint32_t i = 0; i < tr->nslots; i++)
			slot_release(dp, tr->slot[i]);
	}
	dp->free_trains[dp->ntrains_free++] = ti;
}

void ferry__uring_tx_cqe(struct ferry_dp *dp, const struct io_uring_cqe *cqe)
{
	uint32_t idx = UD_IDX(cqe->user_data);
	struct uring_tx_slot *s = &dp->slots[idx];

	if (UD_KIND(cqe->user_data) == UD_TRAIN) {
		train_cqe(dp, cqe);
		return;
	}
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		/* Zero-copy: the kernel is done with the pages only now.
		 * It also says whether it had to copy after all (loopback
		 * does). */
		if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
			dp->st.tx_zc_copied++;
		if (s->retry_plain)
			send_plain(dp, idx);
		else
			slot_release(dp, idx);
		return;
	}
	if (s->fixed && (cqe->res == -EINVAL || cqe->res == -EFAULT)) {
		/* A kernel without vectored fixed buffers for SENDMSG_ZC:
		 * stop asking for them. */
		dp->region_registered = false;
	}
	if (s->zc && (cqe->res == -EMSGSIZE ||
		      (s->fixed &&
		       (cqe->res == -EINVAL || cqe->res == -EFAULT)))) {
		/* A zero-copy datagram must fit the skb's page fragments
		 * (about 60 KiB unaligned); send it again the ordinary way,
		 * once the kernel has let go of the pages. */
		dp->st.tx_zc_fallback++;
		s->retry_plain = true;
		if (!(cqe->flags & IORING_CQE_F_MORE))
			send_plain(dp, idx);
		return;
	}
	if (cqe->res < 0)
		dp->st.tx_errors++;
	if (s->zc && (cqe->flags & IORING_CQE_F_MORE))
		return; /* a NOTIF follows */
	slot_release(dp, idx);
}
