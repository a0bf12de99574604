/* SPDX-License-Identifier: MIT */
/*
 * ferry error codes.
 *
 * Every fallible ferry call returns 0 (or a count) on success and a negative
 * errno value on failure; asynchronous completions carry the same in their
 * `res` argument.  ferry never reads or writes the global errno for its own
 * results.  Where no errno fits, ferry uses its own codes, numbered from
 * FERRY_ERRNO_BASE upwards so they never collide with the C library's.
 */
#ifndef FERRY_ERROR_H
#define FERRY_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_ERRNO_BASE 4096

enum ferry_errno {
	/* The peer answered a connect with a rejection it did not explain. */
	FERRY_EREJECTED = FERRY_ERRNO_BASE,
	/* The server has no handler registered for the call's method id. */
	FERRY_ENOMETHOD,
	/* The peer speaks a wire version this build does not. */
	FERRY_EVERSION,
	/* The peer broke the wire protocol (malformed or impossible frame). */
	FERRY_EPROTO,
	/* A call's token table is malformed (docs/wire.md, section 8). */
	FERRY_ECAPS,
	/* A call's token table holds an IOU (a deferred token) that the
	 * server cannot take: it does not implement IOUs, or has no room
	 * left to track one. */
	FERRY_EIOU,
	FERRY_ERRNO_MAX
};

/*
 * ferry_strerror - describe an error code.
 * @err: a negative (or positive) errno value, ferry_errno code, or
 *   channel-token code (FERRY_TOKEN_*, include/ferry/token.h: a server's
 *   admission refusal carries one, so a client sees it without the control
 *   plane).
 *
 * Returns a static, NUL-terminated English string; never NULL.  Safe to call
 * from any thread.
 */
const char *ferry_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_ERROR_H */
