/* SPDX-License-Identifier: MIT */
/* ferry-bench: what the roles (rpc.c, floor.c) share with the driver. */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/dpdk.h>
#include <ferry/endpoint.h>
#include <ferry/trace.h>
#include <ferry/session.h>

#include "hist.h"
#include "transport/stats.h"

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
	uint8_t *chan_tok;    /* the client's channel token (version 2) */
	size_t chan_tok_len;
	/* Its holder key: wire v2 admission takes a token only from a client
	 * that proves it holds this (docs/wire.md, section 4.5). */
	uint8_t chan_hk[32]; /* FERRY_TOKEN_HK_LEN */
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
	const char *measure_at_arg; /* --measure-at, as given */
	double measure_at;     /* Unix time measuring starts; 0: after warmup */
	bool busy_poll;
	bool pin;
	bool quiet;
	uint32_t max_frame;
	uint32_t zc_threshold;
	bool no_gso, no_gro; /* uring: no UDP GSO, no UDP GRO */
	const char *json;
	const char *label;     /* --label: the run's name in --json, plots */
	const char *plot;      /* --plot FILE.svg */
	bool verify;
	const char *wire_mode; /* NULL: the library's (mac) */
	bool retry_never;
	uint32_t peer_timeout_ms;
	const char *cc;        /* NULL: the library's default */
	uint32_t cc_target_us;
	double loss, dup, reorder, corrupt;
	double delay;          /* --delay F, each held --delay-us */
	uint32_t delay_us;
	double truncate, garbage, replay; /* a hostile middlebox */
	uint64_t seed;
	/* DPDK: EAL arguments, this process's own address (also the uring
	 * client's bind address), the port and its queue pairs. */
	const char *eal;
	const char *ip;
	int dpdk_port;
	uint32_t dpdk_queues;
	struct ferry_dpdk_config dpdk; /* the three above, for endpoints */
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
	/* --trace-out FILE, --trace-sample F, --trace-max-bytes N,
	 * --trace-budget F, --trace-max-sps N; tracer is set when tracing,
	 * and trace_stats holds its counters once the workers have stopped
	 * (for the JSON summary's "tracer"). */
	const char *trace_out;
	/* --trace-format, --otlp, --otlp-endpoint, --otlp-protocol,
	 * --otlp-gzip: the file's format and the OTLP/HTTP export. */
	const char *trace_format;
	bool otlp;
	const char *otlp_endpoint;
	const char *otlp_protocol;
	bool otlp_gzip;
	double trace_sample;
	uint64_t trace_max_bytes;
	double trace_budget;
	uint32_t trace_max_sps;
	struct ferry_tracer *tracer;
	struct ferry_tracer_stats trace_stats;
	/* --metrics ADDR:PORT; metrics is set while serving, and each RPC
	 * worker adds its endpoint to it (rpc.c). */
	const char *metrics_at;
	struct ferry_metrics *metrics;
};

/* The command line (opts.c): fills @o, or exits -- 0 after --help, 2
 * after saying what is wrong with it. */
void bench_opts_parse(int argc, char **argv, struct bench_opts *o);

static inline bool bench_is_dpdk(const struct bench_opts *o)
{
	return o->dataplane && __builtin_strcmp(o->dataplane, "dpdk") == 0;
}

/* telemetry.c, built with DPDK only: `/ferry/stats` and `/ferry/endpoints`
 * in DPDK telemetry, and the endpoints they show.  Any thread. */
int bench_telemetry_register(void);
void bench_telemetry_add(struct ferry_endpoint *ep, const char *name);
void bench_telemetry_remove(struct ferry_endpoint *ep);

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

/*
 * The counters ferry-bench reports, one row each: adding one here makes it
 * summed over the workers, written to the JSON summary and (for the
 * groups that have a text line) printed.  Rows are
 *   X(id, name, source, side, group, ...)
 * - name: the JSON key (and a metrics exporter's name).
 * - source: LIVE, counted by the roles as they go (bench_count()); or
 *   EP(field), the endpoint's counter from ferry__endpoint_stats(), copied
 *   in by bench_publish() -- the one place that reads endpoint stats.
 * - side: the workers whose sum the summary shows: RUN (the clients when
 *   this process runs any, else the servers), ALL, MAX (the larger side's:
 *   in a loop both ends see the same duplicate), SERVER or CLIENT.
 * - group: the summary line and JSON object it belongs to (report.c);
 *   NONE: summed and used, not shown on its own.
 * - ...: its text label if not its name (.label), the text before it in
 *   its line if not ", " (.sep), .text_only if not in the JSON.
 */
#define BENCH_COUNTERS(X)                                                    \
	X(COMPLETED, "completed", LIVE, RUN, CALLS)                          \
	X(ERRORS, "errors", LIVE, RUN, CALLS)                                \
	X(BYTES, "bytes", LIVE, RUN, NONE)  /* request + response payload */ \
	X(COPIED, "payload_copied", EP(payload_copied), ALL, DATA)           \
	X(DELIVERED, "payload_delivered", EP(payload_delivered), ALL, DATA)  \
	X(RETRANSMITS, "retransmits", EP(retransmits), ALL, DATA)            \
	X(TX_PKTS, "tx_pkts", EP(tx_pkts), ALL, DATA)                        \
	X(RX_PKTS, "rx_pkts", EP(rx_pkts), ALL, DATA)                        \
	X(CC_STALLS, "cc_stalls", EP(cc_stalls), ALL, DATA)                  \
	X(CC_PACED, "cc_paced", EP(cc_paced), ALL, DATA)                     \
	X(TX_ZC, "tx_zc", EP(tx_zc), ALL, ZC)                                \
	X(TX_ZC_FIXED, "tx_zc_fixed", EP(tx_zc_fixed), ALL, ZC)              \
	/* uring: GSO trains, GRO receives, kernel entries. */               \
	X(TX_GSO_TRAINS, "tx_gso_trains", EP(tx_gso_trains), ALL, GSO)       \
	X(TX_GSO_SEGMENTS, "tx_gso_segments", EP(tx_gso_segments), ALL, GSO) \
	X(GSO_FALLBACKS, "gso_fallbacks", EP(gso_fallbacks), ALL, GSO)       \
	X(RX_GRO_BUFS, "rx_gro_bufs", EP(rx_gro_bufs), ALL, GSO)             \
	X(RX_GRO_SEGMENTS, "rx_gro_segments", EP(rx_gro_segments), ALL, GSO) \
	X(SYSCALLS, "syscalls", EP(dp_syscalls), ALL, GSO)                   \
	/* Wire v2: frames and datagrams, loss recovery. */                  \
	X(TX_FRAMES, "tx_frames", EP(tx_frames), ALL, WIRE)                  \
	X(RX_FRAMES, "rx_frames", EP(rx_frames), ALL, WIRE)                  \
	X(LOST_DGRAMS, "lost_datagrams", EP(lost_datagrams), ALL, WIRE)      \
	X(RTO_FIRED, "rto_fired", EP(rto_fired), ALL, WIRE)                  \
	X(RTO_HELD, "rto_held", EP(rto_held), ALL, WIRE)                     \
	X(DUP_FRAMES, "drop_duplicate", EP(drop_duplicate), ALL, WIRE)       \
	X(TX_COPIED, "payload_tx_copied", EP(payload_tx_copied), ALL, WIRE)  \
	X(DETACH, "rx_detach_copies", EP(rx_detach_copies), ALL, WIRE)       \
	X(CREDIT_STALLS, "credit_stalls", EP(credit_stalls), ALL, WIRE)      \
	/* Dropped frames, by reason: a drop is a bug or an attack. */       \
	X(DROP_TRUNCATED, "drop_truncated", EP(drop_truncated), ALL, DROPS,  \
	  .label = "truncated")                                              \
	X(DROP_BAD_MAGIC, "drop_bad_magic", EP(drop_bad_magic), ALL, DROPS,  \
	  .label = "bad magic")                                              \
	X(DROP_BAD_VERSION, "drop_bad_version", EP(drop_bad_version), ALL,   \
	  DROPS, .label = "bad version")                                     \
	X(DROP_BAD_TYPE, "drop_bad_type", EP(drop_bad_type), ALL, DROPS,     \
	  .label = "bad type")                                               \
	X(DROP_MALFORMED, "drop_malformed", EP(drop_malformed), ALL, DROPS,  \
	  .label = "malformed")                                              \
	X(DROP_OVERSIZED, "drop_oversized", EP(drop_oversized), ALL, DROPS,  \
	  .label = "oversized")                                              \
	X(DROP_UNKNOWN_SESSION, "drop_unknown_session",                      \
	  EP(drop_unknown_session), ALL, DROPS, .label = "unknown session")  \
	X(DROP_UNSUPPORTED, "drop_unsupported", EP(drop_unsupported), ALL,   \
	  DROPS, .label = "unsupported")                                     \
	X(DROP_STALE, "drop_stale", EP(drop_stale), ALL, DROPS,              \
	  .label = "stale")                                                  \
	X(DROP_NO_BUFFER, "drop_no_buffer", EP(drop_no_buffer), ALL, DROPS,  \
	  .label = "no buffer")                                              \
	X(DROP_SHORT_FRAG, "drop_short_frag", EP(drop_short_frag), ALL,      \
	  DROPS, .label = "cut short")                                       \
	X(DROP_AUTH, "drop_auth", EP(drop_auth), ALL, DROPS,                 \
	  .label = "bad tag")                                                \
	X(DROP_BAD_CRC, "drop_bad_crc", EP(drop_bad_crc), ALL, DROPS,        \
	  .label = "bad crc")                                                \
	X(DROP_REPLAY_OLD, "drop_replay_old", EP(drop_replay_old), ALL,      \
	  DROPS, .label = "replay (old)")                                    \
	/* --verify: what went wrong, as seen by each worker. */             \
	X(LOST, "lost", LIVE, ALL, VERIFY)                                   \
	X(DUPS, "duplicates", LIVE, MAX, VERIFY)                             \
	X(OOO, "out_of_order", LIVE, MAX, VERIFY)                            \
	X(CORRUPT, "corrupt", LIVE, ALL, VERIFY)                             \
	/* --loss, --dup, --reorder, --corrupt, --delay, --truncate,         \
	 * --garbage, --replay: faults injected. */                          \
	X(FAULT_LOSS, "loss", EP(fault_loss), ALL, FAULTS)                   \
	X(FAULT_DUP, "dup", EP(fault_dup), ALL, FAULTS)                      \
	X(FAULT_REORDER, "reorder", EP(fault_reorder), ALL, FAULTS)          \
	X(FAULT_CORRUPT, "corrupt", EP(fault_corrupt), ALL, FAULTS)          \
	X(FAULT_DELAY, "delay", EP(fault_delay), ALL, FAULTS)                \
	X(FAULT_TRUNCATE, "truncate", EP(fault_truncate), ALL, FAULTS)       \
	X(FAULT_GARBAGE, "garbage", EP(fault_garbage), ALL, FAULTS)          \
	X(FAULT_REPLAY, "replay", EP(fault_replay), ALL, FAULTS)             \
	/* --caps: tokens redeemed (verified) in server handlers; calls made \
	 * with a token table, and those of them made with IOUs. */          \
	X(CAPS_REDEEMED, "caps_redeemed", LIVE, ALL, CAPS)                   \
	X(DEFERRED_CALLS, "deferred_calls", LIVE, CLIENT, CAPS)              \
	X(TABLE_CALLS, "table_calls", LIVE, CLIENT, CAPS)                    \
	/* Deferred tokens: a server's IOU table, a client's promises. */    \
	X(IOU_CREATED, "iou_created", EP(iou_created), SERVER, IOU_SERVER,   \
	  .label = "created")                                                \
	X(IOU_RESOLVED, "iou_resolved", EP(iou_resolved), SERVER,            \
	  IOU_SERVER, .label = "resolved")                                   \
	X(IOU_REJECTED, "iou_rejected", EP(iou_rejected), SERVER,            \
	  IOU_SERVER, .label = "rejected")                                   \
	X(IOU_TIMED_OUT, "iou_timed_out", EP(iou_timed_out), SERVER,         \
	  IOU_SERVER, .label = "timed out", .sep = " (")                     \
	X(IOU_BAD_TOKEN, "iou_bad_token", EP(iou_bad_token), SERVER,         \
	  IOU_SERVER, .label = "bad token")                                  \
	X(IOU_PUSH_EARLY, "iou_push_early", EP(iou_push_early), SERVER,      \
	  IOU_SERVER, .label = "pushes early", .sep = "); ")                 \
	X(IOU_PUSH_DROPPED, "iou_push_dropped", EP(iou_push_dropped),        \
	  SERVER, IOU_SERVER, .label = "dropped")                            \
	X(IOU_DUP_PUSH, "iou_dup_push", EP(iou_dup_push), SERVER,            \
	  IOU_SERVER, .label = "duplicate", .text_only = true)               \
	X(CALLS_IOU_REFUSED, "calls_iou_refused", EP(calls_iou_refused),     \
	  SERVER, IOU_SERVER, .label = "calls refused", .sep = "; ",         \
	  .text_only = true)                                                 \
	X(IOUS_PROMISED, "ious_promised", EP(ious_promised), CLIENT,         \
	  IOU_CLIENT, .label = "promised")                                   \
	X(IOUS_PUSHED, "ious_pushed", EP(ious_pushed), CLIENT, IOU_CLIENT,   \
	  .label = "pushed")                                                 \
	X(IOUS_DROPPED, "ious_dropped", EP(ious_dropped), CLIENT,            \
	  IOU_CLIENT, .label = "dropped")                                    \
	/* Trace blocks (FF_TRACE), shown per side: a server's and a         \
	 * client's mean different things (ferry/endpoint.h). */             \
	X(TRACE_BLOCKS_RECEIVED, "trace_blocks_received",                    \
	  EP(trace_blocks_received), ALL, TRACE)                             \
	X(TRACE_BLOCKS_BAD, "trace_blocks_bad", EP(trace_blocks_bad), ALL,   \
	  TRACE)                                                             \
	X(TRACE_ATTRS_RECEIVED, "trace_attrs_received",                      \
	  EP(trace_attrs_received), ALL, TRACE)                              \
	X(TRACE_CTX_UNSENT, "trace_ctx_unsent", EP(trace_ctx_unsent), ALL,   \
	  TRACE)                                                             \
	X(TRACE_ATTRS_UNSENT, "trace_attrs_unsent", EP(trace_attrs_unsent),  \
	  ALL, TRACE)

enum bench_ctr {
#define BENCH_CTR_ID(id, ...) BC_##id,
	BENCH_COUNTERS(BENCH_CTR_ID)
#undef BENCH_CTR_ID
	BENCH_NCTR
};

/* Per-thread results, written by the worker, read by the driver. */
struct bench_worker {
	const struct bench_opts *o;
	int idx;
	int cpu;              /* -1: not pinned */
	bool server;
	/* The counters (relaxed atomics: the driver samples them).  The
	 * endpoint's (EP rows) are published about every 100 ms for the
	 * progress line with --keyring (its IOU counters), and when the
	 * worker ends. */
	_Atomic uint64_t ctr[BENCH_NCTR];
	/* Filled in when the worker ends. */
	struct bench_hist hist;
	double cpu_s;                /* the thread's CPU time, at the end */
	struct bench_issuer_stats issuer; /* client, worker-mode issuer */
	int err;                     /* setup failure, negative errno */
	char errmsg[160];
	_Atomic bool ready;          /* set up and serving/connected */
	_Atomic bool gone;           /* client: every session has ended */
};

/* Only the worker's own thread counts (the driver only reads), so a
 * relaxed load and store will do: an atomic add is a locked instruction,
 * a full barrier on x86, and two per call cost the bench more than the
 * peers it is compared with pay for their plain counters. */
static inline void bench_count(struct bench_worker *w, enum bench_ctr c,
			       uint64_t n)
{
	atomic_store_explicit(&w->ctr[c],
			      atomic_load_explicit(&w->ctr[c],
						   memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Copy the endpoint's counters (the EP rows) into @w's (report.c). */
void bench_publish(struct bench_worker *w, const struct ferry_ep_stats *st);

/*
 * The report (report.c).  bench_progress() prints (if @print) the rates
 * since its last call, from the workers' counters at @now; start @p with
 * its t_ns at the start of the measured time.  bench_report() prints the
 * summary of a run of @secs measured seconds, after every worker has
 * ended, and writes --json; returns the exit status (1: the run failed).
 */
struct bench_progress {
	uint64_t completed, bytes, t_ns;
	int second;
	/* The timeline (--json "timeline"): with @record set, each call
	 * appends the rates since the last one, at its time since @t0_ns.
	 * @complete turns false if memory for a sample ran out (the
	 * samples end there). */
	bool record, complete;
	uint64_t t0_ns;
	struct bench_sample { double t_s, rps, gbps; } *samples;
	size_t n, cap;
};
/* The timeline's interval: fine enough to show a stall in a plot, coarse
 * enough that sampling costs the workers nothing measurable. */
#define BENCH_SAMPLE_NS 100000000ull
void bench_progress(struct bench_progress *p, const struct bench_opts *o,
		    struct bench_worker *ws, int nw, uint64_t now, bool print);
int bench_report(const struct bench_opts *o, struct bench_worker *ws, int nw,
		 double secs, const struct bench_issuer_stats *ist,
		 const struct bench_progress *timeline);
/* --plot: draw --json's file with ferry-bench-plot (report.c).  Returns
 * 0, or 1 after saying why not. */
int bench_plot(const struct bench_opts *o);

extern _Atomic int bench_phase;

/* Each returns when bench_phase reaches PH_STOP (or on a setup error,
 * recorded in w->err). */
void *bench_rpc_server(void *w);
void *bench_rpc_client(void *w);
void *bench_floor_server(void *w);
void *bench_floor_client(void *w);

/* Monotonic nanoseconds (rpc.c: the TSC where the kernel keeps time by
 * it); bench_clock_init() once, before any thread starts, picks it. */
void bench_clock_init(void);
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
