/* SPDX-License-Identifier: MIT */
/*
 * What the uring dataplane's files share: uring.c (the ops table, open,
 * close, waiting, the completion loop), rx.c (the multishot receive and
 * splitting GRO buffers) and tx.c (transmit slots, GSO trains and their
 * fallback).
 */
#ifndef FERRY_DP_URING_H
#define FERRY_DP_URING_H

#include <liburing.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../dp.h"

/* user_data: kind in the top byte, a slot or train index below. */
#define UD_RX (1ull << 56)
#define UD_TX (2ull << 56)
#define UD_WAKE (3ull << 56)
#define UD_TRAIN (4ull << 56)
#define UD_KIND(ud) ((ud) & (0xffull << 56))
#define UD_IDX(ud) ((uint32_t)(ud))

/* Newer than liburing 2.3's headers (kernel 6.2 uapi). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
/* linux/udp.h's socket options, which glibc's netinet/udp.h may lack. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define URING_BGID 7
#define URING_SQ_MIN 256
/* One datagram's iovecs: the copied area, the pieces, the trailer. */
#define URING_IOV (FERRY_DP_PIECES_MAX + 2)
/* GSO trains in flight at once; a burst that finds none free sends its
 * datagrams one by one. */
#define URING_TRAINS 32
/* A GRO receive buffer holds a whole coalesced train: the largest UDP
 * payload plus the recvmsg_out header, the address and the control
 * message in front of it. */
#define URING_GRO_BUF (64u << 10)
#define URING_GRO_BUF_ROOM (URING_GRO_BUF + 256u)
/* GRO buffers at most: the transport's receive-ring budget (64 MiB). */
#define URING_GRO_NBUFS_MAX 1024u

struct uring_tx_slot {
	struct msghdr mh;
	struct iovec iov[URING_IOV];
	struct sockaddr_in sa;
	void *cookie[FERRY_DP_PIECES_MAX];
	uint8_t ncookies;
	bool zc;
	bool fixed;       /* zero-copy from the registered region */
	bool retry_plain; /* zero-copy refused: resend without */
	uint32_t len;     /* the datagram's bytes */
	uint8_t *hdr;     /* hdr_room bytes in the registered region, then
			   * the trailer's FERRY_DP_TRAILER_MAX */
};

/* Datagrams of one burst sent as one UDP_SEGMENT sendmsg. */
struct uring_train {
	struct msghdr mh;
	struct iovec iov[FERRY_DP_GSO_SEGS_MAX * URING_IOV];
	/* The UDP_SEGMENT control message, aligned as a cmsghdr (not a
	 * union with one: glibc's ends in a flexible array, which clang
	 * refuses inside a struct but at its end). */
	struct {
		char buf[CMSG_SPACE(sizeof(uint16_t))]
			__attribute__((aligned(__alignof__(struct cmsghdr))));
	} cmsg;
	uint32_t slot[FERRY_DP_GSO_SEGS_MAX];
	uint32_t nslots;
	uint32_t seg; /* the segment size */
};

/* A received datagram not yet handed out: the rest of a GRO buffer. */
struct uring_rx_split {
	uint8_t *next;    /* the next datagram */
	uint32_t left;    /* bytes from next to the buffer's end */
	uint32_t seg;     /* each datagram's size, the last's at most */
	uint32_t bid;
	struct ferry_addr src;
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
	uint32_t rx_out; /* datagrams lent to the caller */
	uint32_t rx_lend_max; /* ... at most (the caller's conf.rx_bufs) */
	uint32_t bufs_out; /* buffers out of the ring, lent or split */
	bool gro;        /* UDP_GRO is on: buffers may hold several */
	uint16_t *bref;  /* per buffer: its datagrams still lent */
	struct uring_rx_split split;
	bool wake_armed;
	bool closing;    /* no re-arming while tearing down */

	/* Transmit slots; free ones on a stack. */
	struct uring_tx_slot *slots;
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t nslots;
	uint32_t hdr_room; /* copied-area bytes per slot */
	uint32_t *txq;     /* slots queued by ->tx_burst, not yet in SQEs */
	uint32_t ntxq;
	unsigned sq_pending; /* SQEs prepared since the last submit */
	/* The last kernel entry already gathered completions: the next
	 * ->rx_burst need not enter again just to look. */
	bool events_fresh;
	/* GSO: on while the kernel takes it; trains and their free stack. */
	bool gso;
	bool gso_fail_next; /* conf.test_gso_fail, until the first train */
	uint32_t gso_seg_limit; /* trains only of segments smaller than this */
	struct uring_train *trains;
	uint32_t free_trains[URING_TRAINS];
	uint32_t ntrains_free;

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

/* uring.c */
struct io_uring_sqe *ferry__uring_get_sqe(struct ferry_dp *dp);

/* rx.c */
int ferry__uring_setup_rx(struct ferry_dp *dp);
void ferry__uring_arm_rx(struct ferry_dp *dp);
/* Take receive CQE @cqe into pkts[*got..n); false: the caller must stop
 * (pkts full) and look at this CQE again later. */
bool ferry__uring_rx_cqe(struct ferry_dp *dp, const struct io_uring_cqe *cqe,
			 struct ferry_dp_pkt *pkts, unsigned *got, unsigned n);
/* Hand out what is left of a split GRO buffer; returns the count. */
unsigned ferry__uring_rx_split(struct ferry_dp *dp, struct ferry_dp_pkt *pkts,
			       unsigned n);
void ferry__uring_rx_release(struct ferry_dp *dp, uint32_t id);

/* tx.c */
int ferry__uring_setup_tx(struct ferry_dp *dp);
void ferry__uring_tx_cqe(struct ferry_dp *dp, const struct io_uring_cqe *cqe);
unsigned ferry__uring_tx_burst(struct ferry_dp *dp,
			       const struct ferry_dp_tx *tx, unsigned n);
/* Turn the queued slots into SQEs (trains where they form). */
void ferry__uring_tx_prep(struct ferry_dp *dp);

#endif /* FERRY_DP_URING_H */
