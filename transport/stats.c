/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the endpoint's counters, read whole (for the project's tests
 * and tools) or one by name (the public API: ferry/endpoint.h).  The list
 * itself is in stats.h.
 */
#include <errno.h>
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
	out->arp_ignored = ds.arp_ignored;
	out->arp_unsolicited = ds.arp_unsolicited;
	out->neigh_full = ds.neigh_full;
}

uint64_t ferry__ep_stats_drops(const struct ferry_ep_stats *st)
{
	return st->drop_truncated + st->drop_bad_magic + st->drop_bad_version +
	       st->drop_bad_type + st->drop_malformed + st->drop_oversized +
	       st->drop_unknown_session + st->drop_unsupported +
	       st->drop_stale + st->drop_no_buffer + st->drop_not_listening;
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
