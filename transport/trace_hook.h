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
	ferry_span_t (*call_start)(struct ferry_trace_ring *r,
				   ferry_span_t session, uint16_t method,
				   const struct ferry_trace_ctx *parent);
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
