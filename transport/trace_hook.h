/* SPDX-License-Identifier: MIT */
/*
 * How the transport reaches the tracer (control/trace.c) without linking
 * it: control/trace_wire.c installs this table and a ring on an endpoint
 * (ferry_endpoint_set_tracer()); with none installed every hook is skipped.
 * All calls run on the endpoint's thread, and none can fail in a way the
 * transport must handle (docs/tracing.md, section 8).
 */
#ifndef FERRY_TRACE_HOOK_H
#define FERRY_TRACE_HOOK_H

#include <ferry/trace.h>

struct ferry_endpoint;

struct ferry__trace_ops {
	ferry_span_t (*session_open)(struct ferry_trace_ring *r,
				     const struct ferry_span_session_args *a);
	void (*session_end)(struct ferry_trace_ring *r, ferry_span_t span,
			    int how, int res, const char *reason);
	int (*traceparent)(struct ferry_trace_ring *r, ferry_span_t span,
			   char *buf, size_t cap);
	/* Start a call span, child of @session's span, or of the call's own
	 * context when it has one: @tp/@ts are the text of that context
	 * (server: the REQUEST's trace block; client: the application's
	 * ferry_call_opts.traceparent/.tracestate), NULL/0 for none.  A
	 * malformed @tp is counted and ignored (the session's context is the
	 * parent); a malformed @ts is counted and dropped.  Returns
	 * FERRY_SPAN_NONE when the call is not sampled. */
	ferry_span_t (*call_start)(struct ferry_trace_ring *r,
				   ferry_span_t session, uint16_t method,
				   const char *tp, size_t tp_len,
				   const char *ts, size_t ts_len);
	/* Client: the context a REQUEST must carry for call span @span.
	 * Writes the call span's traceparent (55 bytes and a NUL) into @buf
	 * (@cap >= 56) and returns 55 when the server cannot infer it from the
	 * session (the call has its own parent, or its sampling decision
	 * differs from the one its session propagated); returns 0 when the
	 * session's context covers the call (send no trace block). */
	int (*call_context)(struct ferry_trace_ring *r, ferry_span_t span,
			    char *buf, size_t cap);
	/* Set the peer's attribute @a on open span @span (a RESPONSE's
	 * attributes on the client's call span): the tracer writes it as
	 * "peer.<key>", so nothing from the wire replaces an attribute it
	 * writes itself.  Returns as ferry_span_set_*(). */
	int (*set_attr)(struct ferry_trace_ring *r, ferry_span_t span,
			const struct ferry_trace_attr *a);
	void (*call_end)(struct ferry_trace_ring *r, ferry_span_t span, int res);
	void (*ring_destroy)(struct ferry_trace_ring *r);
};

/* Install @ops and @ring (NULLs: none); the endpoint destroys @ring with
 * ops->ring_destroy when it is destroyed or the tracer replaced.  Returns
 * 0, or -EBUSY if the endpoint already has a session. */
int ferry__endpoint_set_trace(struct ferry_endpoint *ep,
			      const struct ferry__trace_ops *ops,
			      struct ferry_trace_ring *ring);

#endif /* FERRY_TRACE_HOOK_H */
