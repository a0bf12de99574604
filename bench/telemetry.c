/* SPDX-License-Identifier: MIT */
/*
 * telemetry.c - on the DPDK dataplane, ferry-bench's endpoints' counters in
 * DPDK telemetry as well (`dpdk-telemetry.py`): `/ferry/endpoints` lists
 * their names, `/ferry/stats,NAME` gives one endpoint's counters by name
 * (no NAME: the first).  Built only with DPDK.  Here rather than in the
 * library: the transport knows no backend and the DPDK dataplane knows no
 * counters above it, while a DPDK application knows both, as the bench
 * does.  The values come from the snapshot each endpoint publishes
 * (transport/stats.h), so DPDK's telemetry thread never touches an
 * endpoint's own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <rte_telemetry.h>

#include <ferry/ferry.h>

#include "bench.h"

#define TEL_EPS_MAX 128

static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tel_ep {
	char name[32];
	struct ferry_endpoint *ep;
} tel_eps[TEL_EPS_MAX];
static unsigned tel_neps;

static int tel_endpoints(const char *cmd, const char *params,
			 struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	pthread_mutex_lock(&tel_lock);
	for (unsigned i = 0; i < tel_neps; i++)
		rte_tel_data_add_array_string(d, tel_eps[i].name);
	pthread_mutex_unlock(&tel_lock);
	return 0;
}

static int tel_stats(const char *cmd, const char *params,
		     struct rte_tel_data *d)
{
	struct ferry_ep_stats st;
	const char *name;
	uint64_t v;
	int ret = -ENOENT;

	(void)cmd;
	pthread_mutex_lock(&tel_lock);
	for (unsigned i = 0; i < tel_neps; i++) {
		if (params && *params && strcmp(params, tel_eps[i].name) != 0)
			continue;
		ret = ferry__endpoint_stats_read(tel_eps[i].ep, &st);
		break;
	}
	/* Under the lock: the endpoint cannot be removed, and so not
	 * destroyed, while it is read. */
	pthread_mutex_unlock(&tel_lock);
	if (ret < 0)
		return -EINVAL; /* telemetry answers null */
	rte_tel_data_start_dict(d);
	for (unsigned i = 0; ferry__ep_stat_get(&st, i, &name, NULL, &v) == 0;
	     i++)
		rte_tel_data_add_dict_u64(d, name, v);
	return 0;
}

int bench_telemetry_register(void)
{
	int ret = rte_telemetry_register_cmd(
		"/ferry/stats", tel_stats,
		"Returns a ferry endpoint's counters. Parameter: its name "
		"(see /ferry/endpoints; default: the first)");

	if (ret == 0)
		ret = rte_telemetry_register_cmd(
			"/ferry/endpoints", tel_endpoints,
			"Returns the names of ferry-bench's endpoints. "
			"Takes no parameters");
	return ret;
}

void bench_telemetry_add(struct ferry_endpoint *ep, const char *name)
{
	pthread_mutex_lock(&tel_lock);
	if (tel_neps < TEL_EPS_MAX) {
		snprintf(tel_eps[tel_neps].name, sizeof(tel_eps[0].name), "%s",
			 name);
		tel_eps[tel_neps++].ep = ep;
	}
	pthread_mutex_unlock(&tel_lock);
}

void bench_telemetry_remove(struct ferry_endpoint *ep)
{
	pthread_mutex_lock(&tel_lock);
	for (unsigned i = 0; i < tel_neps; i++) {
		if (tel_eps[i].ep == ep) {
			tel_eps[i] = tel_eps[--tel_neps];
			break;
		}
	}
	pthread_mutex_unlock(&tel_lock);
}
