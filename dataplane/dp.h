/* SPDX-License-Identifier: MIT */
/*
 * The dataplane ops table.
 *
 * A dataplane moves datagrams (ferry frames, the UDP payload) between this
 * host and peers named by IPv4 address and UDP port.  It knows packets, not
 * sessions.  Each backend (uring/, later dpdk/) provides one const
 * struct ferry_dp_ops; the transport calls only through it.
 *
 * Threading: a dataplane instance belongs to one thread (its endpoint's).
 * Only ->wake may be called from another thread.
 *
 * Buffers, who owns what:
 *  - Received datagrams live in the backend's receive buffers.  ->rx_burst
 *    lends them to the caller; each must be handed back exactly once with
 *    ->rx_release, after which the caller must not touch it.  While lent, the
 *    caller may write into it (to answer in place).
 *  - Transmit: the frame header bytes (tx.hdr) are copied by the backend
 *    before ->tx_burst returns.  The body (tx.body) is lent: the backend reads
 *    it until it calls conf.tx_done(tx.cookie), exactly once per accepted
 *    descriptor with a non-NULL cookie, on the dataplane's thread from
 *    inside ->rx_burst, ->wait, ->flush or ->close.
 *  - ->mem_alloc returns the memory the transport's msgbuf pool lives in,
 *    allocated by the backend so that a backend whose device must map
 *    payload memory (DPDK external buffers) can do so once.  It is freed by
 *    ->close.
 */
#ifndef FERRY_DP_H
#define FERRY_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An IPv4 UDP address: @ip in network byte order, @port in host order. */
struct ferry_addr {
	uint32_t ip;
	uint16_t port;
};

static inline bool ferry_addr_eq(const struct ferry_addr *a,
				 const struct ferry_addr *b)
{
	return a->ip == b->ip && a->port == b->port;
}

/* Most bytes of tx.hdr: a frame header plus a connect body. */
#define FERRY_DP_HDR_MAX 1024

typedef void (*ferry_dp_tx_done_fn)(void *ctx, void *cookie);

struct ferry_dp_ops;

/* Fault injection (dataplane/fault.c): probabilities per received datagram.
 * truncate: cut it to a random shorter length; garbage: deliver, besides
 * it, a datagram of random bytes (half of them behind the first bytes of
 * the real one's header); replay: deliver a copy again after up to
 * FERRY_DP_REPLAY_DEPTH later datagrams. */
struct ferry_dp_faults {
	double loss, dup, reorder, corrupt, delay;
	uint32_t delay_us;
	uint64_t seed;
	double truncate, garbage, replay;
};

/* A replayed datagram comes back after 1 to this many later ones. */
#define FERRY_DP_REPLAY_DEPTH 256

struct ferry_dp_conf {
	const char *bind_addr; /* NULL: all addresses */
	uint16_t port;         /* 0: ephemeral */
	bool reuseport;
	bool busy_poll;
	uint32_t max_frame; /* largest datagram received */
	uint32_t rx_bufs;   /* receive buffers */
	uint32_t tx_slots;  /* transmits outstanding at once */
	uint32_t zc_threshold; /* zero-copy send for bodies >= this; 0 off */
	size_t mem_bytes;      /* payload memory ->mem_alloc will be asked for */
	/* DPDK only (see dataplane/dpdk/dpdk.c): the EAL arguments the
	 * process's first DPDK instance starts the EAL with; the port (-1:
	 * the one with the fewest instances); RX/TX queue pairs the first
	 * instance on a port configures it with (0: 1). */
	const char *dpdk_eal;
	int dpdk_port;
	uint16_t dpdk_queues;
	/* The fault-injection wrapper only: the backend it wraps, and what
	 * to inject. */
	const struct ferry_dp_ops *inner;
	struct ferry_dp_faults faults;
	ferry_dp_tx_done_fn tx_done;
	void *tx_done_ctx;
};

/* One received datagram, lent by ->rx_burst until ->rx_release. */
struct ferry_dp_pkt {
	uint8_t *data;
	uint32_t len;
	uint32_t id; /* the backend's buffer id; give it to ->rx_release */
	struct ferry_addr src;
};

/* One datagram to send: hdr (copied) followed by body (lent). */
struct ferry_dp_tx {
	struct ferry_addr dst;
	const void *hdr;
	uint32_t hdr_len; /* <= FERRY_DP_HDR_MAX */
	const void *body;
	uint32_t body_len;
	void *cookie; /* non-NULL: tx_done(cookie) when body is released */
};

/* Backend counters, monotonic. */
struct ferry_dp_stats {
	uint64_t rx_truncated; /* datagram larger than a receive buffer */
	uint64_t rx_rearm;     /* receive re-armed after running dry */
	uint64_t tx_errors;    /* sends the kernel or NIC failed */
	uint64_t tx_zc;        /* zero-copy sends */
	uint64_t tx_zc_copied; /* zero-copy sends the kernel copied anyway */
	uint64_t tx_zc_fallback; /* zero-copy refused, sent again plainly */
	uint64_t tx_zc_fixed;    /* zero-copy sends from registered memory */
	/* Injected by the fault wrapper. */
	uint64_t fault_loss, fault_dup, fault_reorder, fault_corrupt;
	uint64_t fault_delay;
	uint64_t fault_truncate, fault_garbage, fault_replay;
	uint64_t syscalls;     /* kernel entries (submit / wait) */
	/* Raw-frame backends (DPDK). */
	uint64_t rx_not_ours;   /* frames for no address of ours, or not IPv4/UDP */
	uint64_t rx_bad_csum;   /* IPv4 or UDP checksum wrong */
	uint64_t rx_csum_unfinished; /* UDP checksum left to offload by a
					 * kernel sender (veth): accepted */
	uint64_t rx_fragments;  /* IPv4 fragments (never reassembled) */
	uint64_t rx_linearized; /* multi-segment frames copied into one */
	uint64_t rx_dropped;    /* no receive slot or inbox room */
	uint64_t arp_requests, arp_replies; /* sent */
	uint64_t tx_no_neigh;   /* dropped: the peer's MAC did not resolve */
	uint64_t tx_extbuf;     /* bodies sent from the caller's memory */
	uint64_t tx_copied;     /* bodies copied into the frame */
	/* ARP the DPDK dataplane did not act on (docs/dpdk.md, "Neighbours"). */
	uint64_t arp_ignored;     /* not for us, malformed, or not believable */
	uint64_t arp_unsolicited; /* replies to us for nothing we asked */
	uint64_t neigh_full;      /* transmits dropped: every entry pinned */
};

struct ferry_dp;

struct ferry_dp_ops {
	const char *name;
	/* Open an instance.  May block.  Returns 0 or -errno. */
	int (*open)(const struct ferry_dp_conf *conf, struct ferry_dp **out);
	/* Release everything; pending bodies get their tx_done first. */
	void (*close)(struct ferry_dp *dp);
	/* The bound address.  Returns 0 or -errno. */
	int (*local_addr)(struct ferry_dp *dp, struct ferry_addr *out);
	/* Payload memory of @len bytes (see above), at most conf.mem_bytes,
	 * once per instance; NULL on failure. */
	void *(*mem_alloc)(struct ferry_dp *dp, size_t len);
	/* Up to @n received datagrams into @pkts.  Never blocks.  Returns
	 * the count. */
	unsigned (*rx_burst)(struct ferry_dp *dp, struct ferry_dp_pkt *pkts,
			     unsigned n);
	/* Hand a received buffer back. */
	void (*rx_release)(struct ferry_dp *dp, uint32_t id);
	/* Queue up to @n datagrams; returns how many were accepted (fewer
	 * when transmit slots run out: retry after ->flush / ->rx_burst).
	 * Datagrams leave at ->flush at the latest (earlier if the backend's
	 * own queue fills). */
	unsigned (*tx_burst)(struct ferry_dp *dp, const struct ferry_dp_tx *tx,
			     unsigned n);
	/* Push queued work to the kernel or NIC.  Never blocks for long.
	 * Returns 0 or -errno. */
	int (*flush)(struct ferry_dp *dp);
	/* Wait until something may be received, ->wake is called, or
	 * @timeout_ns passes (negative: no limit).  Spins instead of sleeping
	 * when the instance was opened with busy_poll.  Returns 0 or -errno. */
	int (*wait)(struct ferry_dp *dp, int64_t timeout_ns);
	/* Interrupt ->wait.  Any thread.  Returns 0 or -errno. */
	int (*wake)(struct ferry_dp *dp);
	void (*stats)(const struct ferry_dp *dp, struct ferry_dp_stats *out);
	/* The largest datagram this instance can carry (its link's MTU less
	 * the IPv4 and UDP headers), at most conf.max_frame; NULL means
	 * conf.max_frame. */
	uint32_t (*max_frame)(const struct ferry_dp *dp);
};

/* The fault-injection wrapper: opened with conf.inner set to any backend,
 * it behaves as that backend plus the faults in conf.faults. */
extern const struct ferry_dp_ops ferry__dp_fault_ops;

/* The backend named @name ("uring", "dpdk"), or NULL if it is not built
 * in. */
const struct ferry_dp_ops *ferry__dp_find(const char *name);

/* Names of the built-in backends, comma separated, for messages. */
const char *ferry__dp_names(void);

/* Parse "a.b.c.d" into @out (network order).  Returns 0 or -EINVAL. */
int ferry__addr_parse_ip(const char *s, uint32_t *out);

#endif /* FERRY_DP_H */
