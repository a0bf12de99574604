/* SPDX-License-Identifier: MIT */
/*
 * ferry - kernel-bypass RPC transport.  The umbrella header.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#define FERRY_VERSION_MAJOR 0
#define FERRY_VERSION_MINOR 1

#include <ferry/error.h>
#include <ferry/msgbuf.h>
#include <ferry/endpoint.h>
#include <ferry/dpdk.h>
#include <ferry/session.h>
#include <ferry/iou.h>

#endif /* FERRY_FERRY_H */
