/* SPDX-License-Identifier: MIT */
/*
 * Message buffers: where payloads live.
 *
 * A msgbuf is a contiguous payload area from its endpoint's registered pool,
 * sized at endpoint creation (no malloc on the fast path).  The sender writes
 * a payload into a msgbuf once; the transport sends it from there without
 * copying, and a receiver reads payloads in place.
 *
 * Ownership, the one rule: a msgbuf has exactly one owner at a time.
 *  - ferry_msgbuf_alloc() makes the caller the owner.
 *  - The owner may read and write the payload and may free it.
 *  - Passing a msgbuf to ferry_call() or ferry_call_respond() hands it to
 *    the transport: from then on the caller must neither touch nor free it.
 *    The transport frees it when the peer no longer needs it (for a request,
 *    once the call has ended; for a response, once it has been sent).
 *  - ferry_call_take_req() hands a received request's buffer to the handler,
 *    which then owns it like any other msgbuf (for example to respond with it
 *    in place).
 */
#ifndef FERRY_MSGBUF_H
#define FERRY_MSGBUF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_endpoint;
struct ferry_msgbuf;

/*
 * ferry_msgbuf_alloc - take a buffer of at least @len payload bytes.
 * @ep: the endpoint whose pool to draw from.
 * @len: the payload length; the buffer's length is set to it.
 * @out: receives the buffer.
 *
 * Returns 0, -EMSGSIZE if @len exceeds the endpoint's largest message or
 * buffer class, or -ENOBUFS if every buffer of a fitting class is in use.
 * Safe to call from any thread.  The endpoint's own thread keeps a few free
 * buffers of each class for itself (a sixteenth of the class, at most 64),
 * so another thread may be refused while that many are still free.  The
 * payload's contents are unspecified:
 * they may be an earlier message's, another session's included, so write
 * every byte you send.
 */
int ferry_msgbuf_alloc(struct ferry_endpoint *ep, size_t len,
		       struct ferry_msgbuf **out);

/*
 * ferry_msgbuf_free - give a buffer back to its pool.
 * @mb: a buffer the caller owns, or NULL (ignored).
 *
 * Safe to call from any thread.
 */
void ferry_msgbuf_free(struct ferry_msgbuf *mb);

/* ferry_msgbuf_data - the payload's first byte; valid while the caller owns @mb. */
void *ferry_msgbuf_data(struct ferry_msgbuf *mb);

/* ferry_msgbuf_len - the payload length in bytes. */
size_t ferry_msgbuf_len(const struct ferry_msgbuf *mb);

/* ferry_msgbuf_cap - the largest length ferry_msgbuf_set_len() accepts. */
size_t ferry_msgbuf_cap(const struct ferry_msgbuf *mb);

/*
 * ferry_msgbuf_set_len - shrink or grow the payload within the capacity.
 *
 * Returns 0, or -EMSGSIZE if @len exceeds ferry_msgbuf_cap().  Bytes beyond
 * the old length are unspecified.
 */
int ferry_msgbuf_set_len(struct ferry_msgbuf *mb, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_MSGBUF_H */
