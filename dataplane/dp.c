/* SPDX-License-Identifier: MIT */
/* The registry of built-in dataplane backends. */
#include "dp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "ferry_config.h"

extern const struct ferry_dp_ops ferry__dp_uring_ops;
extern const struct ferry_dp_ops ferry__dp_dpdk_ops;

/* Registered explicitly, in order of preference (nng's way): no
 * constructor tricks, and a backend left out of the build is simply absent. */
static const struct ferry_dp_ops *const backends[] = {
#if FERRY_HAVE_URING
	&ferry__dp_uring_ops,
#endif
#if FERRY_HAVE_DPDK
	&ferry__dp_dpdk_ops,
#endif
	NULL,
};

const struct ferry_dp_ops *ferry__dp_find(const char *name)
{
	for (size_t i = 0; backends[i]; i++)
		if (!name || strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

const char *ferry__dp_names(void)
{
	return FERRY_DP_NAMES;
}

int ferry__addr_parse_ip(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*out = a.s_addr;
	return 0;
}
