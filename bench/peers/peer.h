/* SPDX-License-Identifier: MIT */
/*
 * What the comparison peers share (bench/peers/, docs/bench.md): the
 * command line, pinning, the clock, the run's phases and the JSON report,
 * whose keys are ferry-bench's (rps, p50_us, p99_us, ...) so that one table
 * holds both.  Latencies go into ferry-bench's own histogram (bench/hist.c),
 * so percentiles are computed the same way.
 *
 * Every peer is one program with two roles:
 *
 *   PEER server [--addr A] [--port P] [--busy-poll] [--cpu N] [--eal ARGS]
 *   PEER client [--addr A] [--port P] [--size B] [--inflight N] [--conns N]
 *               [--duration S] [--warmup S] [--busy-poll] [--cpu N]
 *               [--json FILE] [--eal ARGS]
 *
 * A server echoes until SIGINT or SIGTERM.  A client keeps --inflight calls
 * outstanding on each of its --conns connections (per connection, as
 * ferry-bench's --inflight is per session), warms up, measures, and
 * reports.  Like ferry-bench, a server pins itself to CPU 0 and a client to
 * the last CPU, unless --cpu says otherwise (-1: not pinned).
 *
 * Every request carries its slot and sequence number in its first 8 bytes
 * (so --size is at least 8), and the server sends it back unchanged.
 */
#ifndef FERRY_PEER_H
#define FERRY_PEER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Inside: hist.h has no C++ linkage of its own. */
#include "../hist.h"

struct peer_opts {
	const char *name;  /* the peer's name in reports ("uring-echo") */
	bool server;
	const char *addr;
	int port;
	uint32_t size;
	uint32_t inflight; /* per connection */
	uint32_t conns;
	double duration, warmup;
	bool busy_poll;
	int cpu;
	const char *json;
	const char *eal;   /* DPDK EAL arguments, one string */
};

/* The request header: which slot, which of its calls. */
struct peer_msg {
	uint32_t slot;
	uint32_t seq;
};

enum { PEER_WARMUP, PEER_MEASURE, PEER_STOP };

/* Counts and latencies of the measured phase, and what the report says. */
struct peer_run {
	uint64_t t_start, t_measure, t_end; /* ns, CLOCK_MONOTONIC */
	uint64_t completed, errors;
	uint64_t tx_pkts, rx_pkts; /* datagrams or frames; 0: not counted */
	struct bench_hist hist;
};

/* Set by SIGINT and SIGTERM once peer_parse() has run. */
extern volatile sig_atomic_t peer_stop;

/* Parses argv (exits with a usage message on error), installs the stop
 * handlers and pins the calling thread (threads made later inherit it). */
void peer_parse(struct peer_opts *o, const char *name, int argc,
		char **argv);

uint64_t peer_now_ns(void);

/* Starts the clock of a client run: warm-up, then the measured time. */
void peer_run_start(struct peer_run *r, const struct peer_opts *o);

/* The phase at @now: PEER_STOP also when a signal asked to stop. */
int peer_phase(const struct peer_run *r, uint64_t now);

/* Prints a summary line and writes --json; returns the exit status. */
int peer_report(const struct peer_opts *o, struct peer_run *r);

/* Fills a request of o->size bytes for @slot's call @seq. */
void peer_fill(void *buf, const struct peer_opts *o, uint32_t slot,
	       uint32_t seq);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_PEER_H */
