/* SPDX-License-Identifier: MIT */
/*
 * The DPDK dataplane's shared state, private to dataplane/dpdk/: its
 * limits, a port and a lane (dpdk.c's header comment describes them), and
 * what its files call of one another:
 *  - dpdk.c: the ops table, receive, transmit, open and close of a lane;
 *  - port.c: the EAL, ports (queues, mempools) and a lane's place on its
 *    port (queues, flow rule, steering list);
 *  - neigh.c: the port's neighbour table and ARP;
 *  - ntab.c: the neighbour table's policy (no DPDK there);
 *  - frame.c: frame bytes, parsed and built (no DPDK there).
 */
#ifndef FERRY_DPDK_DPDK_H
#define FERRY_DPDK_DPDK_H

/* rte_dev_dma_map is still marked experimental in 22.11. */
#define ALLOW_EXPERIMENTAL_API 1

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <rte_ether.h>
#include <rte_flow.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_spinlock.h>

#include "../dp.h"
#include "frame.h"
#include "ntab.h"

#define BURST 32
#define PUSH_AT 8       /* frames queued that go to the port at once */
#define MAX_PORTS 8
#define MAX_LANES 16     /* per port */
#define NCACHE 16        /* per lane, direct-mapped */
#define NCACHE_NS 1000000000ull      /* a cached MAC is checked again after */
#define PENDING_MAX 64   /* datagrams waiting for ARP, per lane */
/* Of which for one address: all of them.  A first burst to a new peer (64
 * calls in flight, or the floor's 64 echoes, which nothing retransmits)
 * must all wait for its one ARP answer; the lane's total bounds memory, and
 * a flood of new addresses pushes out the oldest waiting datagram. */
#define PENDING_PER_IP PENDING_MAX
#define PENDING_NS 3000000000ull
/* Datagrams waiting for ARP are looked up again when an answer arrives,
 * and otherwise this often (to send requests again, and expire them). */
#define PENDING_CHECK_NS 50000000ull
#define COPY_MAX 256     /* pieces up to this are copied, not chained */
#define STASH 128        /* frames received ahead of ->rx_burst */
#define TXBUF 512        /* frames queued ahead of ->flush */
#define INBOX 4096       /* software-steered frames waiting, per lane */
#define NB_DESC 1024     /* RX and TX ring descriptors asked for */
#define HDRS FERRY__FRAME_HDRS /* Ethernet + IPv4 + UDP */
#define EPHEMERAL 49152

struct lane;

struct dpdk_port {
	uint16_t id;
	bool up;
	uint16_t nb_q;
	uint16_t mtu;
	struct rte_ether_addr mac;
	struct rte_mempool *rx_pool; /* frames up to the MTU */
	struct rte_mempool *tx_pool; /* headers, copied small bodies */
	uint32_t tx_room;            /* data room of a tx_pool mbuf */
	uint16_t seg_max;            /* segments per frame the port sends */
	bool tx_ip_csum, tx_udp_csum, rx_ip_csum, rx_udp_csum, multi_seg;
	bool flow_ok;                /* rte_flow steering worked once */
	uint16_t next_ephemeral;
	rte_spinlock_t lock; /* lanes[], queue membership, neigh */
	struct lane *lanes[MAX_LANES];
	unsigned nlanes;
	/* Per queue: who polls it (steered lanes), and TX sharing. */
	struct {
		rte_spinlock_t rx_lock, tx_lock;
		struct lane *members[MAX_LANES];
		unsigned nmembers;
		unsigned tx_users;
		bool owned; /* a flow rule steers one lane's frames here */
	} q[MAX_LANES];
	struct ferry__ntab neigh;
	/* Bumped (under lock) whenever an answer is believed: lanes with
	 * datagrams waiting look them up again. */
	uint32_t neigh_gen;
};

/* A datagram in flight whose pieces have cookies: all its chained pieces
 * share @shinfo, whose free callback posts the slot when the last is
 * freed. */
struct tx_slot {
	struct rte_mbuf_ext_shared_info shinfo;
	struct lane *lane;
	void *cookie[FERRY_DP_PIECES_MAX];
	uint8_t ncookies;
};

struct stashed {
	struct rte_mbuf *m;
	uint16_t off, len;
	struct ferry_addr src;
};

struct lane {
	struct dpdk_port *port;
	struct ferry_dp_conf conf;
	uint32_t ip;       /* network order */
	uint16_t udp_port; /* host order */
	uint16_t rxq, txq;
	uint32_t max_dgram;
	struct rte_ring *inbox; /* frames steered here by another lane */
	struct rte_ring *done;  /* tx slots whose body the driver released */
	struct rte_flow *flow;
	atomic_bool woken;
	uint16_t ip_id;
	/* The time at the last receive or wait: transmits read it instead of
	 * the clock (the transport sends one datagram per ->tx_burst). */
	uint64_t now;

	/* Receive. */
	struct stashed stash[STASH];
	unsigned stash_head, stash_n;
	struct rte_mbuf **lent;
	uint32_t *lent_free;
	uint32_t nlent, lent_top;

	/* Transmit. */
	struct rte_mbuf *txbuf[TXBUF];
	unsigned tx_n;
	struct tx_slot *slots;
	uint32_t *slot_free;
	uint32_t nslots, slot_top;
	uint32_t *copied;  /* slots with nothing chained: done at once */
	uint32_t ncopied;
	struct {
		struct rte_mbuf *m;
		uint32_t ip;
		uint64_t since;
	} pend[PENDING_MAX];
	unsigned npend;
	uint32_t pend_gen;  /* port->neigh_gen at the last full look */
	uint64_t pend_next; /* the next full look, at the latest */
	struct {
		uint32_t ip;
		struct rte_ether_addr mac;
		uint64_t until;
	} ncache[NCACHE];

	/* Payload memory (->mem_alloc), registered for external buffers. */
	uint8_t *mem;
	size_t mem_len;
	bool mem_registered;
	struct rte_device *dma_dev; /* mem is DMA-mapped for it */
	bool zc; /* chain bodies from mem instead of copying */

	struct ferry_dp_stats st;
};

/* struct ferry_dp is a lane. */
struct ferry_dp {
	struct lane l;
};

/*
 * Release a queue lock with a plain release store.  DPDK's x86
 * rte_spinlock_unlock is an xchg, a full barrier: right after a burst it
 * waits for every store the driver made to the shared ring (memif's are
 * lines the peer's core is reading) to reach the cache, which was most of
 * what a push cost (perf annotate; docs/bench.md, "The memif fast
 * path").  Release order is all unlocking needs.
 */
static inline void queue_unlock(rte_spinlock_t *sl)
{
	__atomic_store_n(&sl->locked, 0, __ATOMIC_RELEASE);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void log_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static inline void log_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferry dpdk: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
/* Receive slots per lane: twice rx_bufs, at least 4096. */
static inline uint32_t rx_slots(const struct ferry_dp_conf *conf)
{
	uint64_t n = 2ull * conf->rx_bufs;

	return n < 4096 ? 4096 : n > 65536 ? 65536 : (uint32_t)n;
}

/* port.c */
int ferry__dpdk_join(struct lane *l, const struct ferry_dp_conf *conf);
void ferry__dpdk_lane_detach(struct lane *l);

/* neigh.c */
void ferry__dpdk_arp_input(struct lane *l, struct rte_mbuf *m);
enum ferry__ntab_res ferry__dpdk_neigh_resolve(struct lane *l, uint32_t ip,
					       bool add,
					       struct rte_ether_addr *mac,
					       uint64_t now);

/* dpdk.c */
void ferry__dpdk_lane_enqueue(struct lane *l, struct rte_mbuf *m);

/* txframe.c: the frame for @tx to @dmac; @copy: chain nothing; @slot:
 * where chained pieces' release is posted (NULL: chain nothing).  NULL
 * when out of mbufs; *chained says whether any piece was chained. */
struct rte_mbuf *ferry__dpdk_frame_build(struct lane *l,
					 const struct ferry_dp_tx *tx,
					 const struct rte_ether_addr *dmac,
					 bool copy, struct tx_slot *slot,
					 bool *chained);

#endif /* FERRY_DPDK_DPDK_H */
