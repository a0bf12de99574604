/* SPDX-License-Identifier: MIT */
/*
 * Endpoints: one per thread.
 *
 * An endpoint owns one dataplane port (a UDP socket on the uring dataplane),
 * a msgbuf pool, its sessions and its handler table.  Everything it owns is
 * driven by ferry_endpoint_poll() on the thread that created it; the only
 * calls another thread may make are those marked "any thread".
 */
#ifndef FERRY_ENDPOINT_H
#define FERRY_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_endpoint;
struct ferry_session;
struct ferry_call;
struct ferry_dpdk_config;

/* One buffer class of the msgbuf pool: @count buffers of @size bytes. */
struct ferry_pool_class {
	uint32_t size;
	uint32_t count;
};

#define FERRY_POOL_CLASSES 4

struct ferry_ep_config {
	/* Which dataplane: "uring" (the default) or "dpdk". */
	const char *dataplane;
	/* Local IPv4 address to bind, dotted quad; NULL binds all addresses.
	 * On DPDK it is required: the endpoint's own address, answered to ARP
	 * on its port. */
	const char *bind_addr;
	/* Local UDP port; 0 picks an ephemeral one. */
	uint16_t port;
	/* Let several endpoints (one per thread) share @port; the kernel
	 * steers each peer's packets to one of them. */
	bool reuseport;
	/* Spin on completions instead of sleeping in the kernel. */
	bool busy_poll;
	/* Most sessions open at once on this endpoint: 1 to 100,000.  Memory
	 * is taken for each at creation (docs/bench.md has how much). */
	uint32_t max_sessions;
	/* Most calls outstanding on one session (rounded up to a power of 2). */
	uint32_t session_slots;
	/* The receive window each session grants its peer: session_credits
	 * x max_frame BYTES of message data outstanding towards it
	 * (docs/wire.md, section 5.5; at least 4096, at most 2^30).  Also
	 * sizes the receive ring when rx_bufs is 0. */
	uint32_t session_credits;
	/* Largest datagram (UDP payload: header, frames, trailer) this
	 * endpoint sends or accepts; each session uses the smaller of both
	 * sides' values. */
	uint32_t max_frame;
	/* Largest message payload accepted, in bytes. */
	uint32_t max_msg;
	/* Receive buffers in the dataplane's ring (0: derived from sessions). */
	uint32_t rx_bufs;
	/* Zero-copy send (SEND_ZC) for packets whose payload is at least this
	 * many bytes; 0 disables it. */
	uint32_t zc_threshold;
	/* How long a connect may take before it fails with -ETIMEDOUT. */
	uint32_t connect_timeout_ms;
	/* A session quiet this long sends a PING; one whose peer has said
	 * nothing for peer_timeout_ms is declared dead: its calls end with
	 * -ETIMEDOUT and its resources are freed. */
	uint32_t keepalive_ms;
	uint32_t peer_timeout_ms;
	/* Ignored by wire v2 (kept for the ABI): every datagram already
	 * carries a Poly1305 tag (wire_mode MAC, AEAD) or a CRC32C (NONE),
	 * checked before any frame is read (docs/wire.md, section 2.3).  In
	 * wire v1 it asked for a CRC32C on every frame. */
	bool wire_csum;
	/* Fault injection on received datagrams, for testing: each a
	 * probability in [0, 1]; all 0 (the default) is off.  Reproducible
	 * for a given seed and traffic. */
	struct ferry_faults {
		double loss;      /* drop */
		double dup;       /* deliver twice */
		double reorder;   /* hold back behind later datagrams */
		double corrupt;   /* flip one bit */
		double delay;     /* hold back delay_us */
		uint32_t delay_us;
		uint64_t seed;
		/* A hostile middlebox (docs/wire.md, section 8.2): */
		double truncate;  /* cut to a random shorter length */
		double garbage;   /* deliver, besides it, a datagram of
				   * random bytes (half of them behind up
				   * to its whole header, seq random) */
		double replay;    /* deliver a copy again after up to 256
				   * later datagrams */
	} faults;
	/* Options of the DPDK dataplane (ferry/dpdk.h); NULL for its
	 * defaults.  Read during ferry_endpoint_create() only. */
	const struct ferry_dpdk_config *dpdk;
	/* Deferred tokens (ferry/iou.h).  iou_max: IOUs the endpoint tracks
	 * at once -- a client's promises, a server's table entries -- and
	 * twice as many waits on them (0: max_sessions * session_slots).
	 * iou_timeout_ms: how long a server keeps an IOU a call named
	 * waiting for its PUSH before rejecting it with -ETIMEDOUT.
	 * Pushes for an IOU no call has named yet wait for that call, per
	 * session at most iou_early_max of them holding iou_early_bytes of
	 * token, each for iou_early_ms; beyond that they are dropped and
	 * counted (iou_push_dropped). */
	uint32_t iou_max;
	uint32_t iou_timeout_ms;
	uint32_t iou_early_max;
	uint32_t iou_early_bytes;
	uint32_t iou_early_ms;
	/* Reassembly of messages that arrive in several fragments
	 * (docs/wire.md, section 5.6).  reasm_timeout_ms: a message with no new
	 * fragment for this long is dropped and its call ends with
	 * -ETIMEDOUT (0: the default, 3000).  reasm_quota: bytes of pool
	 * buffers one session's incomplete messages may hold, counted by
	 * buffer size; a first fragment beyond it waits, not taken, until
	 * some complete (0: the size of the largest pool class, so that a
	 * message of any size the pool holds fits). */
	uint32_t reasm_timeout_ms;
	uint32_t reasm_quota;
	/* The msgbuf pool: up to FERRY_POOL_CLASSES classes, ascending sizes;
	 * a class with count 0 is unused. */
	struct ferry_pool_class pool[FERRY_POOL_CLASSES];
	/* Who may open a session here (docs/wire.md, section 4).  listen:
	 * accept CONNECT from the start.  An endpoint listens anyway once
	 * it is given a handler (ferry_endpoint_register), an admission
	 * hook or a session notifier, so a server need not set it; one with
	 * none of them and listen false (a client only: the default) drops
	 * every CONNECT without a reply (counted in drop_not_listening), so
	 * that nobody can fill its session table.  Set it for a server that
	 * answers every call with an error (FERRY_ENOMETHOD).
	 * connect_rate, connect_rate_per_source: CONNECT datagrams per
	 * second a listening endpoint looks at, from all sources together
	 * and from any one IPv4 address; each is a token bucket that holds
	 * one second's worth, and 0 is no limit (defaults 10000 and 1000).
	 * A CONNECT beyond either is dropped without a reply (counted in
	 * connects_rate_limited), before anything else is done with it:
	 * before its cookie is checked, before the admission hook, and
	 * before any session is made.  CONNECTs without a retry cookie
	 * are counted apart, at the same rates with smaller bursts (0.01 s
	 * of connect_rate, 0.1 s of connect_rate_per_source, at least 10;
	 * beyond them: retry_ratelimited), and so are the RETRYs they get
	 * (docs/wire.md, sections 4.3 and 4.8). */
	bool listen;
	uint32_t connect_rate;
	uint32_t connect_rate_per_source;
	/* How every datagram of a session is protected (docs/wire.md,
	 * section 2): FERRY_WIRE_MAC (the default: a Poly1305 tag under
	 * the session's key; nobody off the path can inject, replay or
	 * alter a datagram), FERRY_WIRE_AEAD (the same, and the frames are
	 * encrypted), FERRY_WIRE_NONE (a CRC32C only: for a trusted fabric,
	 * where nobody can send to the endpoint but its peers).  A session
	 * runs in the stronger of its two ends' modes. */
	int wire_mode;
	/* retry_never: answer a CONNECT without first proving its source
	 * address with a retry cookie (a round trip less per session; for
	 * trusted fabrics: a spoofed CONNECT then costs the server a key
	 * exchange and a half-open session until connect_timeout_ms). */
	bool retry_never;
	/* uring: trains of same-size datagrams to one peer (a large
	 * message's fragments) go as one send with UDP GSO, and the socket
	 * takes coalesced receives with UDP GRO, wherever the kernel offers
	 * them (the default); these turn either off. */
	bool no_gso;
	bool no_gro;
	/* Congestion control, per session (docs/wire.md, section 7): credits
	 * say what the peer can take, this what the network can.  cc: "none"
	 * (credits alone: ferry before it had congestion control) or "swift"
	 * (a delay-based window with pacing); NULL is the default, "none".
	 * cc_target_us: the round trip swift holds, in microseconds, the
	 * same for every session through one bottleneck (a path whose
	 * smallest RTT reaches it is held a quarter above that RTT); 0:
	 * automatic, 1 ms, or twice the smallest RTT seen on a longer
	 * path. */
	const char *cc;
	uint32_t cc_target_us;
};

/* The values of ferry_ep_config.wire_mode. */
enum ferry_wire_mode {
	FERRY_WIRE_NONE = 0,
	FERRY_WIRE_MAC = 1,
	FERRY_WIRE_AEAD = 2,
};

/*
 * ferry_ep_config_init - fill @cfg with the defaults documented in
 * docs/api.md.  Always succeeds.
 */
void ferry_ep_config_init(struct ferry_ep_config *cfg);

/*
 * ferry_endpoint_create - open an endpoint.
 *
 * Returns 0 and stores the endpoint in @out, or -EINVAL for a bad config,
 * -ENODEV for an unknown or unavailable dataplane, -EADDRINUSE if the port
 * is taken, -ENOMEM, or another -errno from the dataplane.  The calling
 * thread becomes the endpoint's thread.
 */
int ferry_endpoint_create(const struct ferry_ep_config *cfg,
			  struct ferry_endpoint **out);

/*
 * ferry_endpoint_destroy - close every session and free the endpoint.
 *
 * Every outstanding call's continuation runs, with -ECANCELED, before this
 * returns; peers are sent a CLOSE.  Buffers the application still owns stay
 * valid until this call, and must not be used after it.
 */
void ferry_endpoint_destroy(struct ferry_endpoint *ep);

/*
 * ferry_endpoint_poll - do the endpoint's work: receive, dispatch handlers
 * and continuations, send.
 * @timeout_ms: how long to wait for something to do when nothing is ready;
 *   0 returns at once, a negative value waits without limit.
 *
 * Returns the number of events handled (packets, continuations), 0 on
 * timeout, or -errno from the dataplane.  Only the endpoint's thread.
 */
int ferry_endpoint_poll(struct ferry_endpoint *ep, int timeout_ms);

/*
 * ferry_endpoint_wake - make a concurrent or next ferry_endpoint_poll()
 * return promptly.  Any thread.  Returns 0 or -errno.
 */
int ferry_endpoint_wake(struct ferry_endpoint *ep);

/*
 * ferry_endpoint_port - the local UDP port the endpoint is bound to.
 */
uint16_t ferry_endpoint_port(const struct ferry_endpoint *ep);

/*
 * A request handler.  It runs on the endpoint's thread, once per call, in
 * the order the client made the calls on that session.  It answers with
 * ferry_call_respond() or ferry_call_respond_error(), either before it
 * returns or later from any thread (a deferred response).
 */
typedef void (*ferry_handler_fn)(struct ferry_call *call, void *ctx);

/*
 * ferry_endpoint_register - route calls for @method to @fn.  The endpoint
 * listens from then on (it accepts CONNECT: cfg.listen).
 *
 * Returns 0, -EEXIST if @method already has a handler, or -ENOSPC if the
 * handler table is full.  Only the endpoint's thread.
 */
int ferry_endpoint_register(struct ferry_endpoint *ep, uint16_t method,
			    ferry_handler_fn fn, void *ctx);

enum ferry_session_event {
	FERRY_SESSION_OPENED = 1, /* a peer's connect was accepted */
	FERRY_SESSION_CLOSED,     /* a session ended; @res says how */
};

/*
 * Session notifications for the server side.  @res is 0 for an orderly
 * open or close, or the -errno that ended the session.
 */
typedef void (*ferry_session_fn)(struct ferry_session *s,
				 enum ferry_session_event ev, int res,
				 void *ctx);

/* ferry_endpoint_on_session - set (or clear, with NULL) the notifier.
 * Setting one makes the endpoint listen from then on (cfg.listen). */
void ferry_endpoint_on_session(struct ferry_endpoint *ep, ferry_session_fn fn,
			       void *ctx);

/*
 * Session admission.  With a hook set, the endpoint runs it for every new
 * CONNECT (never for a retransmitted one, nor for calls on an open
 * session), before it allocates anything.  @token/@len are the token the
 * client presented in its CONNECT (its TOKEN frame, docs/wire.md section
 * 4.5), read in place and valid only during the call; NULL and 0 if it
 * presented none.
 *
 * Returns 0 to admit, or a negative ferry error code to refuse: no session
 * is made, the client is sent one REFUSE with the generic
 * FERRY_EREJECTED whatever the code (a peer that proved nothing learns
 * nothing of why), its connect fails with -FERRY_EREJECTED, and the code
 * is counted in the endpoint's admission_refused_* counters (docs/api.md;
 * a code that is not a token code in admission_refused_other).
 * Runs on the endpoint's thread; must not call back into the endpoint.
 */
typedef int (*ferry_admit_fn)(void *ctx, const void *token, size_t len);

/* Frees an admission hook's @ctx when the endpoint lets go of it. */
typedef void (*ferry_admit_release_fn)(void *ctx);

/*
 * ferry_endpoint_set_admission - require every new session to pass @fn
 * (NULL: admit every connect, the default).  @release, if not NULL, is
 * called with @ctx once the endpoint no longer uses it: when the hook is
 * replaced, or in ferry_endpoint_destroy().  The control plane provides a
 * keyring-backed hook: ferry_endpoint_require_token() (ferry/token.h).  A
 * hook makes the endpoint listen from then on (cfg.listen).  CONNECTs
 * beyond the rate limits (cfg.connect_rate*) never reach the hook.
 *
 * Returns 0 or -EINVAL (NULL @ep).  Only the endpoint's thread.
 */
int ferry_endpoint_set_admission(struct ferry_endpoint *ep, ferry_admit_fn fn,
				 ferry_admit_release_fn release, void *ctx);

/*
 * Counters, by name.  Every counter is a uint64_t, monotonic since the
 * endpoint's creation: datagrams and bytes, calls, retransmits, drops by
 * reason, sessions, tokens, IOUs, trace blocks.  ferry_endpoint_stat_at()
 * lists them all with a description of each (the list is
 * transport/stats.h in ferry's source).
 * They are read by name so that a release can add counters without
 * changing any struct a user compiled against; a name, once released,
 * keeps its meaning.
 */

/*
 * ferry_endpoint_stat - read the counter @name (e.g. "retransmits") into
 * *@value.  Returns 0, -ENOENT for a name this release does not have, or
 * -EINVAL for a NULL argument.  Only the endpoint's thread.
 */
int ferry_endpoint_stat(const struct ferry_endpoint *ep, const char *name,
			uint64_t *value);

/*
 * ferry_endpoint_stat_at - the @i-th counter, for listing them all: a loop
 * from 0 until -ENOENT visits every counter once, in a fixed order.
 * Stores its name and a one-line description (static strings) in *@name
 * and *@help, and its value in *@value; any of the three may be NULL.
 * Returns 0, -ENOENT once @i is past the last counter, or -EINVAL for a
 * NULL @ep.  Only the endpoint's thread.
 */
int ferry_endpoint_stat_at(const struct ferry_endpoint *ep, unsigned i,
			   const char **name, const char **help,
			   uint64_t *value);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_ENDPOINT_H */
