/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the endpoint's counters, read whole (for the project's tests
 * and tools) or one by name (the public API: ferry/endpoint.h).  The list
 * itself is in stats.h.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include <ferry/endpoint.h>

#include "internal.h"

/* One row per counter, in FERRY_EP_STATS order: its name, description and
 * where it sits in struct ferry_ep_stats. */
static const struct stat_desc {
	const char *name;
	const char *help;
	size_t off;
} stat_descs[] = {
#define FERRY__STAT_DESC(f, h) { #f, h, offsetof(struct ferry_ep_stats, f) },
	FERRY_EP_STATS(FERRY__STAT_DESC)
#undef FERRY__STAT_DESC
};

#define NSTATS (sizeof(stat_descs) / sizeof(stat_descs[0]))
_Static_assert(NSTATS == FERRY__NSTATS,
	       "struct ferry_ep_stats holds only the listed counters");

void ferry__endpoint_stats(const struct ferry_endpoint *ep,
			   struct ferry_ep_stats *out)
{
	struct ferry_dp_stats ds;

	*out = ep->st;
	/* The dataplane keeps the counters of what happens below the
	 * transport (zero-copy sends, send errors, injected faults). */
	ep->dp_ops->stats(ep->dp, &ds);
	out->tx_zc = ds.tx_zc;
	out->tx_zc_fixed = ds.tx_zc_fixed;
	out->tx_errors = ds.tx_errors;
	out->fault_loss = ds.fault_loss;
	out->fault_dup = ds.fault_dup;
	out->fault_reorder = ds.fault_reorder;
	out->fault_corrupt = ds.fault_corrupt;
	out->fault_delay = ds.fault_delay;
	out->fault_truncate = ds.fault_truncate;
	out->fault_garbage = ds.fault_garbage;
	out->fault_replay = ds.fault_replay;
	out->arp_ignored = ds.arp_ignored;
	out->arp_unsolicited = ds.arp_unsolicited;
	out->neigh_full = ds.neigh_full;
	out->tx_gso_trains = ds.tx_gso_trains;
	out->tx_gso_segments = ds.tx_gso_segments;
	out->gso_fallbacks = ds.gso_fallbacks;
	out->rx_gro_bufs = ds.rx_gro_bufs;
	out->rx_gro_segments = ds.rx_gro_segments;
	out->dp_syscalls = ds.syscalls;
}

uint64_t ferry__ep_stats_drops(const struct ferry_ep_stats *st)
{
	return st->drop_truncated + st->drop_bad_magic + st->drop_bad_version +
	       st->drop_bad_type + st->drop_malformed + st->drop_oversized +
	       st->drop_unknown_session + st->drop_unsupported +
	       st->drop_stale + st->drop_no_buffer + st->drop_short_frag +
	       st->drop_not_listening + st->drop_auth + st->drop_bad_crc +
	       st->drop_replay_old + st->drop_bad_cookie + st->drop_bad_pop;
}

void ferry__stat_inc(struct ferry_endpoint *ep, const char *name)
{
	if (!name || !*name)
		return;
	/* Drops come in runs of one kind (a flood is one kind of datagram),
	 * so the last name's counter is kept by the name's address: a scan
	 * of the ~110 names by strcmp cost a forged datagram more than its
	 * tag check did (forge_sweep (b), perf). */
	if (name == ep->stat_last_name) {
		(*ep->stat_last)++;
		return;
	}
	for (size_t i = 0; i < NSTATS; i++) {
		if (strcmp(stat_descs[i].name, name) == 0) {
			uint64_t *v = (uint64_t *)(void *)((char *)&ep->st +
							   stat_descs[i].off);

			ep->stat_last_name = name;
			ep->stat_last = v;
			(*v)++;
			return;
		}
	}
}

static uint64_t stat_value(const struct ferry_ep_stats *st, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)st + stat_descs[i].off, sizeof(v));
	return v;
}

int ferry_endpoint_stat(const struct ferry_endpoint *ep, const char *name,
			uint64_t *value)
{
	struct ferry_ep_stats st;

	if (!ep || !name || !value)
		return -EINVAL;
	for (size_t i = 0; i < NSTATS; i++) {
		if (strcmp(stat_descs[i].name, name) == 0) {
			ferry__endpoint_stats(ep, &st);
			*value = stat_value(&st, i);
			return 0;
		}
	}
	return -ENOENT;
}

int ferry_endpoint_stat_at(const struct ferry_endpoint *ep, unsigned i,
			   const char **name, const char **help,
			   uint64_t *value)
{
	struct ferry_ep_stats st;

	if (!ep)
		return -EINVAL;
	if (i >= NSTATS)
		return -ENOENT;
	if (name)
		*name = stat_descs[i].name;
	if (help)
		*help = stat_descs[i].help;
	if (value) {
		ferry__endpoint_stats(ep, &st);
		*value = stat_value(&st, i);
	}
	return 0;
}

int ferry__ep_stat_get(const struct ferry_ep_stats *st, unsigned i,
		       const char **name, const char **help, uint64_t *value)
{
	if (i >= NSTATS)
		return -ENOENT;
	if (name)
		*name = stat_descs[i].name;
	if (help)
		*help = stat_descs[i].help;
	if (value)
		*value = stat_value(st, i);
	return 0;
}

const char *ferry__endpoint_dp_name(const struct ferry_endpoint *ep)
{
	return ep->dp_name;
}

/* The writer of the sequence lock (stats.h): one thread, the endpoint's. */
void ferry__endpoint_stats_publish(struct ferry_endpoint *ep)
{
	struct ferry__stats_pub *p = &ep->pub;
	struct ferry_ep_stats st;
	uint32_t seq = atomic_load_explicit(&p->seq, memory_order_relaxed);

	ferry__endpoint_stats(ep, &st);
	/* Odd first, and the release fence keeps the slots' stores from
	 * being seen before it: a reader that sees any new value also sees
	 * the odd count, or a count that changed, and retries. */
	atomic_store_explicit(&p->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (size_t i = 0; i < NSTATS; i++)
		atomic_store_explicit(&p->v[i], stat_value(&st, i),
				      memory_order_relaxed);
	/* Even again, released after every slot. */
	atomic_store_explicit(&p->seq, seq + 2, memory_order_release);
	p->next_ns = ep->now + FERRY__STATS_PUBLISH_NS;
}

/* The readers' side: any thread, any number of them, never writing. */
int ferry__endpoint_stats_read(const struct ferry_endpoint *ep,
			       struct ferry_ep_stats *out)
{
	const struct ferry__stats_pub *p = &ep->pub;
	uint64_t v[NSTATS];

	for (int tries = 0; tries < 10000; tries++) {
		uint32_t s1 = atomic_load_explicit(&p->seq,
						   memory_order_acquire);

		if (s1 & 1) {
			sched_yield();
			continue;
		}
		for (size_t i = 0; i < NSTATS; i++)
			v[i] = atomic_load_explicit(&p->v[i],
						    memory_order_relaxed);
		/* The slots' loads complete before the second look at the
		 * count: if the writer touched any of them, the count moved. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&p->seq, memory_order_relaxed) == s1) {
			memcpy(out, v, sizeof(*out));
			return 0;
		}
	}
	return -EBUSY;
}
