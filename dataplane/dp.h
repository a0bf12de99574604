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
 *  - Transmit: one datagram is a copied area (tx.hdr), then up to
 *    FERRY_DP_PIECES_MAX lent pieces (tx.piece[]), then a copied trailer
 *    (tx.trailer, e.g. a MAC tag computed over the pieces where they lie).
 *    The copied area and the trailer are copied by the backend before
 *    ->tx_burst returns.  Each piece is lent: the backend reads it until it
 *    calls conf.tx_done(piece.cookie), exactly once per piece with a
 *    non-NULL cookie of an accepted descriptor, on the dataplane's thread
 *    from inside ->rx_burst, ->wait, ->flush or ->close.  A piece with a
 *    NULL cookie must stay readable until the datagram's other pieces are
 *    released (or, with none, until ->close).
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

/*
 * The copied area (tx.hdr) may be as long as the larger of
 * FERRY_DP_HDR_MAX and conf.max_frame: wire v2 coalesces a whole path frame
 * of small frames into it (docs/wire.md, section 6), so a datagram may
 * be all copied area.  FERRY_DP_HDR_MAX (a frame header plus a connect
 * body) is what every instance takes whatever its max_frame.
 */
#define FERRY_DP_HDR_MAX 1024
/* Most lent pieces in one datagram: a DPDK NIC's usual segment limit less
 * the header segment.  A backend with a lower limit says so in
 * ->max_pieces. */
#define FERRY_DP_PIECES_MAX 8
/* Most bytes of tx.trailer: a Poly1305 tag. */
#define FERRY_DP_TRAILER_MAX 16
/* Most datagrams one UDP_SEGMENT send carries (the kernel's
 * UDP_MAX_SEGMENTS in every kernel that has GSO; 6.10 and later allow
 * 128), and the most bytes of UDP payload it may total (an IPv4 datagram's
 * 65535 less the IPv4 and UDP headers). */
#define FERRY_DP_GSO_SEGS_MAX 64
#define FERRY_DP_GSO_BYTES_MAX 65507

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
	/* uring only: do not send trains of datagrams with UDP_SEGMENT
	 * (GSO), do not accept coalesced receives (UDP_GRO).  Both are used
	 * where the kernel offers them unless turned off here. */
	bool no_gso;
	bool no_gro;
	/* Tests only: the first GSO train of over 128 bytes is sent with a
	 * segment size the kernel refuses, so that the fallback runs for
	 * real. */
	bool test_gso_fail;
};

/* One received datagram, lent by ->rx_burst until ->rx_release. */
struct ferry_dp_pkt {
	uint8_t *data;
	uint32_t len;
	uint32_t id; /* the backend's buffer id; give it to ->rx_release */
	struct ferry_addr src;
};

/* A lent part of a datagram: @len bytes at @ptr; non-NULL @cookie:
 * tx_done(cookie) once the backend is done reading them. */
struct ferry_dp_piece {
	const void *ptr;
	uint32_t len;
	void *cookie;
};

/*
 * One datagram to send: hdr (copied), then piece[0..npieces) (lent), then
 * trailer (copied).  npieces 0 reads as 1, so that a descriptor filled the
 * way of the single-body interface (body, body_len, cookie: piece[0]'s
 * other names) still means one lent piece; a piece of length 0 adds no
 * bytes (its cookie, if any, still gets its tx_done).
 */
struct ferry_dp_tx {
	struct ferry_addr dst;
	const void *hdr;
	uint32_t hdr_len; /* see FERRY_DP_HDR_MAX */
	uint32_t npieces; /* <= FERRY_DP_PIECES_MAX */
	union {
		struct ferry_dp_piece piece[FERRY_DP_PIECES_MAX];
		struct {
			const void *body;
			uint32_t body_len;
			void *cookie;
		};
	};
	uint8_t trailer_len; /* <= FERRY_DP_TRAILER_MAX */
	uint8_t trailer[FERRY_DP_TRAILER_MAX];
};

/* The pieces @t uses (npieces, with 0 read as 1). */
static inline unsigned ferry_dp_tx_npieces(const struct ferry_dp_tx *t)
{
	return t->npieces ? t->npieces : 1;
}

/* Bytes of datagram @t: its copied area, its pieces, its trailer. */
static inline uint32_t ferry_dp_tx_len(const struct ferry_dp_tx *t)
{
	uint32_t len = t->hdr_len + t->trailer_len;

	for (unsigned i = 0; i < ferry_dp_tx_npieces(t); i++)
		len += t->piece[i].len;
	return len;
}

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
	uint64_t tx_extbuf;     /* pieces sent from the caller's memory */
	uint64_t tx_copied;     /* pieces copied into the frame */
	/* ARP the DPDK dataplane did not act on (docs/dpdk.md, "Neighbours"). */
	uint64_t arp_ignored;     /* not for us, malformed, or not believable */
	uint64_t arp_unsolicited; /* replies to us for nothing we asked */
	uint64_t neigh_full;      /* transmits dropped: every entry pinned */
	/* UDP GSO and GRO (uring). */
	uint64_t tx_gso_trains;   /* sends of several datagrams (UDP_SEGMENT) */
	uint64_t tx_gso_segments; /* datagrams those sends carried */
	uint64_t gso_fallbacks;   /* trains the kernel refused: GSO off, each
				   * datagram sent again on its own */
	uint64_t rx_gro_bufs;     /* receives that held several datagrams */
	uint64_t rx_gro_segments; /* datagrams those receives held */
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
	/* The most pieces one datagram can lend here without the backend
	 * copying some of them (a NIC's segment limit), at most
	 * FERRY_DP_PIECES_MAX; NULL means FERRY_DP_PIECES_MAX.  Up to
	 * FERRY_DP_PIECES_MAX pieces are always accepted. */
	unsigned (*max_pieces)(const struct ferry_dp *dp);
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
