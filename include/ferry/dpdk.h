/* SPDX-License-Identifier: MIT */
/*
 * DPDK dataplane options (docs/dpdk.md).
 *
 * Options only the DPDK dataplane reads live here, behind a pointer in
 * struct ferry_ep_config (its member dpdk), so that the common config
 * does not change when a backend gains an option, and so that including
 * ferry's headers never needs DPDK's.
 */
#ifndef FERRY_DPDK_H
#define FERRY_DPDK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_dpdk_config {
	/* The EAL arguments, used by the process's first DPDK endpoint to
	 * start the EAL (for example "--no-huge -m 512 --no-pci
	 * --file-prefix a --vdev=net_memif0"); NULL or "" if the
	 * application started the EAL itself. */
	const char *eal;
	/* The DPDK port id, or -1 for the port with the fewest endpoints. */
	int port;
	/* RX/TX queue pairs the first endpoint on a port configures it with
	 * (0: 1); later endpoints get queues of their own while any is
	 * free. */
	uint16_t queues;
};

/*
 * ferry_dpdk_config_init - fill @cfg with the defaults: no EAL arguments
 * (the application started the EAL), port -1, queues 0.  Always succeeds.
 * A NULL ferry_ep_config.dpdk means the same.
 */
void ferry_dpdk_config_init(struct ferry_dpdk_config *cfg);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_DPDK_H */
