/* SPDX-License-Identifier: MIT */
/*
 * The tracer's side of the transport's trace hook (transport/trace_hook.h):
 * the transport calls these through a table, so it links without control/.
 */
#include <errno.h>

#include <ferry/trace.h>

#include "control/trace_internal.h"
#include "transport/trace_hook.h"

static const struct ferry__trace_ops trace_ops = {
	.session_open = ferry_span_session_open,
	.session_end = ferry_span_session_end,
	.traceparent = ferry_span_traceparent,
	.call_start = ferry__span_call_start_text,
	.call_context = ferry__span_call_context,
	.set_attr = ferry__span_set_peer_attr,
	.call_end = ferry_span_call_end,
	.ring_destroy = ferry_trace_ring_destroy,
};

int ferry_endpoint_set_tracer(struct ferry_endpoint *ep, struct ferry_tracer *t)
{
	struct ferry_trace_ring *r = NULL;
	int ret;

	if (!ep)
		return -EINVAL;
	if (!t)
		return ferry__endpoint_set_trace(ep, NULL, NULL);
	ret = ferry_trace_ring_create(t, &r);
	if (ret < 0)
		return ret;
	ret = ferry__endpoint_set_trace(ep, &trace_ops, r);
	if (ret < 0)
		ferry_trace_ring_destroy(r);
	return ret;
}
