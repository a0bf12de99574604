/* SPDX-License-Identifier: MIT */
/* ferry-bench: what the roles (rpc.c, floor.c) share with the driver. */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/endpoint.h>
#include <ferry/trace.h>
#include <ferry/session.h>

#include "hist.h"

#define BENCH_METHOD 7
/* Requests of at least 4 bytes start with the response size the server
 * should answer with (little-endian u32), so a separate server process
 * needs no --resp-size of its own. */
#define BENCH_HDR_LEN 4
/* With --verify, requests and responses start with 16 bytes: the response
 * size (requests) or the server's verdict (responses), a flags word, and
 * the call's sequence number on its session; the rest is a pattern made
 * from that number, so any damage shows. */
#define BENCH_VHDR_LEN 16
#define BENCH_V_DUP 1u     /* verdicts the server puts in a response */
#define BENCH_V_OOO 2u
#define BENCH_V_CORRUPT 4u

enum bench_phase { PH_WARMUP = 0, PH_MEASURE, PH_STOP };

/* --keyring: the names tokens are issued for and checked against (fixed,
 * and shown in --help, so separate server and client processes agree). */
#define BENCH_AUDIENCE "ferry-bench"
#define BENCH_CHANNEL "ferry-bench/echo"
#define BENCH_CAP_ENTRY "call"  /* the entrypoint of --caps tokens */
/* Most --caps: eight tokens of these names fill a token table. */
#define BENCH_CAPS_MAX 8
/* With --verify, each call's tokens are sealed for it: their props are the
 * call's sequence number on its session (u64) and the token's index in the
 * call's table (u32), little-endian, so the server can tell a token that
 * belongs to another call.  Props make tokens longer: fewer fit a table. */
#define BENCH_PROPS_LEN 12
/* Most --caps with --verify: 4 + 7 * (4 + 126) bytes fill a table. */
#define BENCH_VCAPS_MAX 7

static inline void bench_props(uint8_t *p, uint64_t seq, uint32_t cap)
{
	__builtin_memcpy(p, &seq, 8);
	__builtin_memcpy(p + 8, &cap, 4);
}

struct ferry_keyring;

/* --keyring: loaded, and tokens issued, once by the driver before any
 * worker starts; read-only afterwards (verifying is thread-safe). */
struct bench_auth {
	struct ferry_keyring *kr;
	uint8_t *chan_tok;    /* the client's channel token */
	size_t chan_tok_len;
	struct ferry_cap caps[BENCH_CAPS_MAX]; /* --caps tokens */
	unsigned ncaps;
	uint32_t call_ttl;    /* --verify: per-call tokens' lifetime */
};

/* --deferred: the delayed token issuer (delayed.c): each client worker's
 * own, or with --issuer-thread one thread for the process. */
struct bench_issuer;
struct ferry_token_issuer_ops;
struct bench_issuer_stats {
	bool thread;       /* --issuer-thread */
	uint64_t issued, completed, cancelled;
	uint64_t wakeups;  /* thread: times it went to sleep */
	uint64_t signals;  /* thread: issues that woke it for an earlier due
			    * time */
	uint64_t passes;   /* worker: poll-loop passes that completed any */
	uint64_t spin_polls; /* worker: polls made with timeout 0 because a
			      * handle was due within 1 ms */
	uint64_t late_ns_sum;
	double late_mean_us, late_max_us; /* completion after its due time */
	/* thread: the issuer thread's CPU time; worker: the time the client
	 * threads spent completing handles (part of their own cpu_s). */
	double cpu_s;
};

struct bench_opts {
	const char *mode;      /* loop, server, client */
	bool floor;            /* raw echo, no RPC layer */
	const char *dataplane;
	const char *addr;      /* server: bind; client: connect */
	uint16_t port;
	uint32_t size;
	uint32_t resp_size;
	uint32_t inflight;     /* per session */
	uint32_t sessions;     /* per client thread */
	uint32_t threads;
	double duration;       /* measured seconds; server: 0 = until signal */
	double warmup;
	bool busy_poll;
	bool pin;
	bool quiet;
	uint32_t max_frame;
	uint32_t zc_threshold;
	const char *json;
	bool verify;
	bool wire_csum;
	uint32_t peer_timeout_ms;
	double loss, dup, reorder, corrupt;
	uint64_t seed;
	/* DPDK: EAL arguments, this process's own address (also the uring
	 * client's bind address), the port and its queue pairs. */
	const char *eal;
	const char *ip;
	int dpdk_port;
	uint32_t dpdk_queues;
	/* --keyring FILE, --caps N; auth is set when a keyring is loaded. */
	const char *keyring;
	uint32_t caps;
	const struct bench_auth *auth;
	/* --deferred F, --deferred-delay-us D, --issuer-thread; issuer (the
	 * process's issuer thread) is set with --issuer-thread when F > 0
	 * and this process runs clients; otherwise each client worker has
	 * its own. */
	double deferred;
	uint32_t deferred_delay_us;
	bool issuer_thread;
	struct bench_issuer *issuer;
	/* --trace-out FILE, --trace-sample F; tracer is set when tracing. */
	const char *trace_out;
	double trace_sample;
	struct ferry_tracer *tracer;
};

/* The command line (opts.c): fills @o, or exits -- 0 after --help, 2
 * after saying what is wrong with it. */
void bench_opts_parse(int argc, char **argv, struct bench_opts *o);

/* On DPDK there is no reuseport: server thread i listens on --port + i,
 * and client thread i calls --port + i % --threads. */
static inline uint16_t bench_server_port(const struct bench_opts *o, int idx)
{
	if (o->dataplane && __builtin_strcmp(o->dataplane, "dpdk") == 0)
		return (uint16_t)(o->port + (uint32_t)idx % o->threads);
	return o->port;
}

/* The address an endpoint binds: the server's --ip or --addr, the
 * client's --ip (NULL: any). */
static inline const char *bench_bind_addr(const struct bench_opts *o,
					  bool server)
{
	if (server)
		return o->ip ? o->ip : o->addr;
	return o->ip;
}

/* Per-thread results, written by the worker, read by the driver. */
struct bench_worker {
	const struct bench_opts *o;
	int idx;
	int cpu;              /* -1: not pinned */
	bool server;
	/* Live counters (relaxed atomics: the driver samples them). */
	_Atomic uint64_t completed;
	_Atomic uint64_t errors;
	_Atomic uint64_t bytes;      /* request + response payload */
	/* --verify: what went wrong, as seen by this worker. */
	_Atomic uint64_t lost, dups, ooo, corrupt;
	/* --caps, server: tokens redeemed (verified) in handlers. */
	_Atomic uint64_t caps_redeemed;
	/* IOU counters of the endpoint, published about every 100 ms for
	 * the progress line: a server's table (created, resolved,
	 * rejected), a client's promises (promised, pushed, dropped). */
	_Atomic uint64_t iou_created, iou_resolved, iou_rejected;
	_Atomic uint64_t ious_promised, ious_pushed, ious_dropped;
	/* --caps, client: calls made with a token table, and those of them
	 * made with IOUs (--deferred). */
	_Atomic uint64_t table_calls, deferred_calls;
	/* Filled in when the worker ends. */
	struct bench_hist hist;
	uint64_t copied, delivered;  /* payload bytes, from endpoint stats */
	uint64_t drops, retransmits, allocs;
	uint64_t tx_zc, tx_zc_fixed;
	struct ferry_ep_stats st;    /* the endpoint's, at the end */
	double cpu_s;                /* the thread's CPU time, at the end */
	struct bench_issuer_stats issuer; /* client, worker-mode issuer */
	int err;                     /* setup failure, negative errno */
	char errmsg[160];
	_Atomic bool ready;          /* set up and serving/connected */
	_Atomic bool gone;           /* client: every session has ended */
};

extern _Atomic int bench_phase;

/* Each returns when bench_phase reaches PH_STOP (or on a setup error,
 * recorded in w->err). */
void *bench_rpc_server(void *w);
void *bench_rpc_client(void *w);
void *bench_floor_server(void *w);
void *bench_floor_client(void *w);

uint64_t bench_now_ns(void);
/* The calling thread's CPU time so far, in seconds. */
double bench_thread_cpu_s(void);
/* --verify patterns: fill or check bytes [off, len) for call @seq. */
void bench_pattern_fill(uint8_t *p, size_t off, size_t len, uint64_t seq);
bool bench_pattern_ok(const uint8_t *p, size_t off, size_t len, uint64_t seq);
void bench_pin(int cpu);

/*
 * The delayed issuer (--deferred; needs the control plane).  The ops'
 * argument is the struct bench_issuer *; the request's props must be
 * BENCH_PROPS_LEN bytes (seq, cap index).  bench_issuer_seed_thread()
 * seeds the calling thread's delay generator (issuances draw their delays
 * on the thread that issues).
 *
 * Thread mode (--issuer-thread): start one per process, before any client
 * thread, sized for @expect pending issuances; stop it after every
 * endpoint is destroyed (what is left is completed with -ECANCELED; @st,
 * if not NULL, receives its final counters).
 *
 * Worker mode (default): each client worker makes its own with
 * bench_issuer_new(), used only by its thread.  After each
 * ferry_endpoint_poll(), bench_issuer_run() completes every handle that is
 * due (returns how many); bench_issuer_timeout() is the poll timeout to use
 * instead of @max_ms (0 when the earliest due time is less than 1 ms away,
 * else one that ends by it).  bench_issuer_free(), before the endpoint is
 * destroyed (after its sessions are closed), completes what is left with
 * -ECANCELED.  bench_issuer_stats_add() sums workers' counters.
 */
int bench_issuer_start(const struct bench_opts *o, size_t expect,
		       struct bench_issuer **out);
void bench_issuer_stop(struct bench_issuer *is, struct bench_issuer_stats *st);
void bench_issuer_stats(struct bench_issuer *is, struct bench_issuer_stats *st);
int bench_issuer_new(const struct bench_opts *o, size_t expect,
		     struct bench_issuer **out);
unsigned bench_issuer_run(struct bench_issuer *is);
int bench_issuer_timeout(struct bench_issuer *is, int max_ms);
void bench_issuer_free(struct bench_issuer *is, struct bench_issuer_stats *st);
void bench_issuer_stats_add(struct bench_issuer_stats *sum,
			    const struct bench_issuer_stats *st);
void bench_issuer_seed_thread(uint64_t seed);
const struct ferry_token_issuer_ops *bench_delayed_ops(void);

/* A per-call token's request (--verify, --deferred): the --caps names,
 * the per-call lifetime, and @props, which the caller fills with
 * bench_props(). */
struct ferry_token_req;
void bench_call_req(const struct bench_auth *a, uint8_t *props,
		    struct ferry_token_req *req);

#endif /* FERRY_BENCH_H */
