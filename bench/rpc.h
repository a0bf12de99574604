/* SPDX-License-Identifier: MIT */
/* ferry-bench: what the two RPC roles (rpc_server.c, rpc_client.c) share
 * (rpc.c). */
#ifndef FERRY_BENCH_RPC_H
#define FERRY_BENCH_RPC_H

#include <string.h>

#include <ferry/ferry.h>

#include "bench.h"

static inline void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Big buffers an endpoint gets at most, for messages of @big bytes. */
#define BENCH_BIG_BYTES (1ull << 30)
static inline uint32_t bench_big_cap(uint32_t big)
{
	return (uint32_t)(BENCH_BIG_BYTES / big);
}

/* Endpoint settings both roles share: pools sized for the workload.
 * @sessions: the most the endpoint holds; @idx: the worker's. */
void bench_rpc_config(const struct bench_opts *o, struct ferry_ep_config *cfg,
		      uint32_t sessions, bool server, int idx);
/* With --keyring, about every 100 ms (@next: when next), the endpoint's
 * counters into the worker's, for the progress line. */
void bench_rpc_publish(struct bench_worker *w, struct ferry_endpoint *ep,
		       uint64_t *next);
/* When the worker ends: the endpoint's counters and the thread's CPU
 * time. */
void bench_rpc_stats(struct bench_worker *w, struct ferry_endpoint *ep);

/* --metrics: export @ep's counters, labelled "server0", "client1"...
 * (its role and worker index), until bench_rpc_unexport(), which must
 * come before the endpoint is destroyed.  No-ops without --metrics. */
void bench_rpc_export(struct bench_worker *w, struct ferry_endpoint *ep);
void bench_rpc_unexport(struct bench_worker *w, struct ferry_endpoint *ep);
/* --verify: count what a verdict (BENCH_V_*) says went wrong. */
void bench_count_verdict(struct bench_worker *w, uint32_t v);

#endif /* FERRY_BENCH_RPC_H */
