/* SPDX-License-Identifier: MIT */
/*
 * Sessions and calls.
 *
 * A session is a client's ordered channel to one server endpoint.  Calls on
 * a session reach the server's handlers in the order the client made them,
 * each exactly once (E-order): requests that arrive out of order wait for
 * their turn and duplicates are dropped.  Every call ends in exactly one
 * continuation: a response or an error.
 *
 * Datagrams the network loses, duplicates or reorders are sent again,
 * dropped or put back in order by the transport; a peer that stops
 * answering is declared dead after ferry_ep_config.peer_timeout_ms, and
 * every call outstanding on it ends with -ETIMEDOUT.
 */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_endpoint;
struct ferry_session;
struct ferry_call;
struct ferry_msgbuf;

/*
 * Connect completion: @res is 0 once the server accepted, or -ETIMEDOUT (no
 * answer), -FERRY_EREJECTED (the server's session table is full, or its
 * admission refused the connect: the reason, such as a missing or expired
 * token, stays in the server's counters), -FERRY_EVERSION (the server
 * lacks an option the connect requires), or another error the server's
 * ERROR frame named (servers of earlier releases named the admission
 * hook's code, e.g. -FERRY_TOKEN_EMISSING).  After a failure
 * the session is closed and every call made on it has already ended with
 * the same error; the application still releases its handle with
 * ferry_session_close().
 */
typedef void (*ferry_connect_fn)(struct ferry_session *s, int res, void *ctx);

/* Optional connect parameters; NULL means all defaults. */
struct ferry_connect_opts {
	/* W3C traceparent of the caller's enclosing span, or NULL. */
	const char *traceparent;
	/* The channel token to present (opaque bytes, e.g. from
	 * ferry_token_seal()), or NULL/0 for none.  Copied during
	 * ferry_session_connect(); sent in the CONNECT's TOKEN frame. */
	const void *token;
	size_t token_len;
	/* The token's holder key (32 bytes, given with a channel token v2
	 * by its issuer: docs/tokens.md); required with a token, else NULL.
	 * Never sent: the CONNECT
	 * carries a proof of it, and it enters the session's keys, so that
	 * a copied token is no use without it. */
	const void *holder_key;
};

/*
 * ferry_session_connect - open a session to @host:@port.
 * @host: an IPv4 address in dotted-quad form.
 * @cb: run on the endpoint's thread when the handshake ends; may be NULL.
 * @out: receives the session handle, owned by the caller until
 *   ferry_session_close().
 *
 * Returns 0 (the handshake then runs during ferry_endpoint_poll()), or
 * -EINVAL for a bad address or option (a token without its holder key
 * among them), -EMFILE if the endpoint has no free
 * session, -EMSGSIZE if the token is over 5,120 bytes (the room the
 * CONNECT datagram, at most 6,144 bytes, leaves for it) or over the msgbuf
 * pool's largest class, -ENOBUFS if no msgbuf is free to hold the token.
 * Calls may be made at once; they are sent, in order, when the handshake
 * completes.  Only the endpoint's thread.
 */
int ferry_session_connect(struct ferry_endpoint *ep, const char *host,
			  uint16_t port, const struct ferry_connect_opts *opts,
			  ferry_connect_fn cb, void *ctx,
			  struct ferry_session **out);

/*
 * ferry_session_close - end the session and release the caller's handle.
 *
 * Every outstanding call ends with -ECANCELED (in call order) before this
 * returns, and the peer is told.  The handle must not be used afterwards.
 * Only the endpoint's thread.
 */
void ferry_session_close(struct ferry_session *s);

/*
 * ferry_session_is_open - 1 once the handshake completed and until the
 * session ends, else 0.
 */
int ferry_session_is_open(const struct ferry_session *s);

/*
 * A call's continuation.  @res is 0 with the response's payload in
 * @data/@len (valid only until the continuation returns; read in place), or
 * a negative error with @data NULL: -ECANCELED (session closed locally),
 * -ECONNRESET (the peer closed the session), -FERRY_TOKEN_EEXPIRED (the
 * server ended the session when the token it was admitted with expired),
 * -ETIMEDOUT (the peer stopped
 * answering, or the connect timed out), -ETIME (the call's own deadline
 * passed), -FERRY_ENOMETHOD, -FERRY_EPROTO (the server refused the
 * request's trace block as malformed, or the response broke the wire
 * protocol: a malformed error frame, an attribute block whose length is out
 * of range), or an error the server's handler chose.  While it runs, ferry_endpoint_call_span()
 * names the call's span, for enrichment.
 */
typedef void (*ferry_cont_fn)(int res, const void *data, size_t len,
			      void *ctx);

/*
 * ferry_call - start a call of @method carrying @req.
 *
 * Returns 0: @req now belongs to the transport, and @cont runs exactly once,
 * later, from ferry_endpoint_poll() (or from ferry_session_close()).
 * Returns -ENOTCONN if the session has ended, or -EINVAL for a NULL
 * argument; then no continuation runs and @req stays the caller's.
 * Only the endpoint's thread.
 */
int ferry_call(struct ferry_session *s, uint16_t method,
	       struct ferry_msgbuf *req, ferry_cont_fn cont, void *ctx);

/*
 * ferry_call_deadline - ferry_call() with a deadline: if no response has
 * arrived @timeout_ms after this call, the continuation runs with -ETIME
 * (0: no deadline).  The server may still run the call (in order); a
 * response that arrives later is discarded.
 */
int ferry_call_deadline(struct ferry_session *s, uint16_t method,
			struct ferry_msgbuf *req, uint32_t timeout_ms,
			ferry_cont_fn cont, void *ctx);

/*
 * Capabilities: a call may carry a table of up to FERRY_CAPS_MAX tokens
 * beside its payload (docs/wire.md, section 10.3), which the server's handler
 * reads with ferry_call_cap() and redeems through the control plane
 * (ferry_call_redeem(), ferry/token.h).  The payload stays zero-copy; the
 * table is copied once, into the transport's keeping, by the call.
 */
#define FERRY_CAPS_MAX 16
/* Most bytes a table takes on the wire: 4 + the sum of (4 + len). */
#define FERRY_CAPS_MAX_LEN 960

enum ferry_cap_kind {
	FERRY_CAP_TOKEN = 0, /* @data is token bytes */
	/* @data is a struct ferry_iou * from ferry_iou_new() on the same
	 * session (ferry/iou.h), not yet named by another call; @len is
	 * ignored.  The table carries the IOU's id, and its token follows
	 * in a PUSH. */
	FERRY_CAP_IOU = 1,
};

struct ferry_cap {
	int kind;         /* enum ferry_cap_kind */
	const void *data; /* borrowed for the duration of ferry_call_caps() */
	size_t len;       /* tokens: 1..FERRY_CAPS_MAX_LEN - 8 */
};

/*
 * ferry_call_caps - ferry_call() with a token table.
 * @caps, @ncaps: the entries (0..FERRY_CAPS_MAX); copied before this
 *   returns.  0 entries is plain ferry_call().
 * @timeout_ms: as in ferry_call_deadline() (0: none).
 *
 * Returns as ferry_call(), and also -EINVAL (bad entries), -EMSGSIZE (the
 * table is longer than FERRY_CAPS_MAX_LEN or than the session's first
 * fragment can hold, or payload + table exceed the server's max_msg),
 * -ENOBUFS (no msgbuf free for the table), -EBUSY (an IOU is already named
 * by another call).  The continuation gets, besides the usual results,
 * -FERRY_ECAPS if the server refused the table, or -FERRY_EIOU if it holds
 * an IOU and the server takes none, or has no room to track it.  Only the
 * endpoint's thread.
 */
int ferry_call_caps(struct ferry_session *s, uint16_t method,
		    struct ferry_msgbuf *req, const struct ferry_cap *caps,
		    unsigned ncaps, uint32_t timeout_ms, ferry_cont_fn cont,
		    void *ctx);

/*
 * Per-call options for ferry_call_with(); zero-initialise and set what is
 * needed.
 */
struct ferry_call_opts {
	/* A token table, as in ferry_call_caps() (NULL/0: none). */
	const struct ferry_cap *caps;
	unsigned ncaps;
	/* A deadline, as in ferry_call_deadline() (0: none). */
	uint32_t timeout_ms;
	/* The call's own W3C trace context (docs/tracing.md): @traceparent,
	 * NUL-terminated, exactly 55 characters, the caller's enclosing
	 * span; @tracestate, NUL-terminated, at most 512 characters (NULL:
	 * none).  With a tracer, the call's span is a child of this context
	 * instead of the session's, and the request carries the call span's
	 * context to the server (the TRACE flag, docs/wire.md section 10.7); without
	 * one (or when the call is not sampled) the request carries these
	 * strings as they are.  The context is optional on the wire: a
	 * server that did not announce trace blocks, or a request whose
	 * first fragment has no room for it, gets the call without it
	 * (counted in the endpoint's trace_ctx_unsent), never an error.
	 * Both are copied before ferry_call_with() returns. */
	const char *traceparent;
	const char *tracestate;
};

/*
 * ferry_call_with - start a call of @method carrying @req, with the
 * options @o (NULL: none, the same as ferry_call()).
 *
 * Returns as ferry_call_caps(), and also -EINVAL for a traceparent whose
 * length is not 55 or a tracestate longer than 512 characters.
 * ferry_call(), ferry_call_deadline() and ferry_call_caps() are this with
 * fewer options.  Only the endpoint's thread.
 */
int ferry_call_with(struct ferry_session *s, uint16_t method,
		    struct ferry_msgbuf *req, const struct ferry_call_opts *o,
		    ferry_cont_fn cont, void *ctx);

/*
 * ferry_endpoint_call_span - inside a client continuation, the span of the
 * call whose continuation is running: a ferry_span_t (ferry/trace.h) for
 * ferry_span_set_*() on ferry_endpoint_trace_ring(@ep), still open until
 * the continuation returns.  FERRY_SPAN_NONE (0) anywhere else, and for a
 * call that is not traced or not sampled, or whose deadline ended it.
 * Only the endpoint's thread.
 */
uint64_t ferry_endpoint_call_span(const struct ferry_endpoint *ep);

/* ferry_session_set_data, ferry_session_data - one pointer of the
 * application's per session, for example set in the server's
 * FERRY_SESSION_OPENED notification.  Only the endpoint's thread. */
void ferry_session_set_data(struct ferry_session *s, void *data);
void *ferry_session_data(const struct ferry_session *s);

/* --- server side: inside a handler, or later for a deferred response --- */

/*
 * ferry_call_req - the request payload, read in place.
 *
 * Valid until the call is answered or ferry_call_take_req() is called.
 */
const void *ferry_call_req(const struct ferry_call *c, size_t *len);

/* ferry_call_method - the call's method id. */
uint16_t ferry_call_method(const struct ferry_call *c);

/* ferry_call_session - the server-side session the call arrived on. */
struct ferry_session *ferry_call_session(const struct ferry_call *c);

/*
 * ferry_call_take_req - take ownership of the request's buffer, for example
 * to overwrite it in place and respond with it.  Returns the buffer (the
 * caller now owns it and must respond with it or free it), or NULL if it was
 * already taken.  Only the endpoint's thread.
 */
struct ferry_msgbuf *ferry_call_take_req(struct ferry_call *c);

/*
 * ferry_call_ncaps - how many tokens the call carries (0 without a table).
 */
unsigned ferry_call_ncaps(const struct ferry_call *c);

/*
 * ferry_call_cap - token @i (0-based) of the call's table, read in place.
 * @tok, @len: receive the token bytes.  They are valid as long as the
 *   request payload is (see ferry_call_req()): until the call is answered,
 *   or, once the request buffer was taken, until that buffer is freed --
 *   whichever comes first.  Copy what must live longer.  For an IOU entry
 *   (ferry/iou.h) they are the pushed token, valid until the call is
 *   answered.
 *
 * Returns 0, -ENOENT if the call has no token @i, or for an IOU entry
 * -EINPROGRESS (no PUSH yet: see ferry_call_cap_wait()) or the error the
 * IOU was rejected with.
 */
int ferry_call_cap(const struct ferry_call *c, unsigned i, const void **tok,
		   size_t *len);

/*
 * Response attributes: set, before answering, attributes that the response
 * carries to the client's call span (docs/tracing.md; on the wire, an
 * attribute block: the TRACE flag, docs/wire.md section 10.7).  Call them where the
 * call may be answered from -- in the handler, or on the thread that will
 * answer a deferred call -- before ferry_call_respond().
 * @key: 1..63 printable ASCII characters (0x21..0x7e), NUL-terminated.
 * @v: the value; a string is NUL-terminated, and truncated to 255 bytes.
 * The client's tracer sets each as "peer.<key>" (a server cannot replace
 * the client span's own attributes, such as rpc.system).
 * A key set twice is sent twice: the client's tracer keeps the last value.
 * At most 16 attributes, 960 bytes on the wire, per response.  They go
 * only with a normal response: an error response (ferry_call_respond_error)
 * drops them, and so does a response whose first fragment, or the client's
 * max_msg, has no room for them (each dropped attribute is counted in the
 * endpoint's trace_attrs_unsent; the response itself is unaffected).
 *
 * Returns 0; -EINVAL (bad key, NULL @c or string); -ENOSPC (16 attributes
 * or 960 bytes reached: nothing stored); -ENOBUFS (no msgbuf free to hold
 * them); -EOPNOTSUPP (the client did not announce trace blocks in its
 * CONNECT: nothing stored, counted in trace_attrs_unsent).  Any thread
 * that may answer the call, one at a time.
 */
int ferry_call_resp_attr_str(struct ferry_call *c, const char *key,
			     const char *v);
int ferry_call_resp_attr_int(struct ferry_call *c, const char *key,
			     int64_t v);
int ferry_call_resp_attr_bool(struct ferry_call *c, const char *key, bool v);
int ferry_call_resp_attr_double(struct ferry_call *c, const char *key,
				double v);

/*
 * ferry_call_respond - answer the call with @resp and end it.
 *
 * Takes ownership of @resp in every case.  Returns 0, or -ENOTCONN if the
 * session ended in the meantime (the response is discarded).  Any thread;
 * from another thread the response is handed to the endpoint's thread,
 * which sends it at its next poll.  @c must not be used afterwards.
 */
int ferry_call_respond(struct ferry_call *c, struct ferry_msgbuf *resp);

/*
 * ferry_call_respond_error - end the call with error @err (negative errno
 * or negated ferry_errno); the client's continuation gets @err.
 * Same threading and return values as ferry_call_respond().
 */
int ferry_call_respond_error(struct ferry_call *c, int err);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_SESSION_H */
