/* SPDX-License-Identifier: MIT */
/*
 * ferry/metrics.h - every endpoint counter (and a tracer's) in the
 * Prometheus text format, written into a buffer or served over HTTP at
 * `GET /metrics` from a thread of its own (docs/api.md, "Metrics").
 *
 * A struct ferry_metrics is a set of sources: endpoints, each with a label,
 * and at most one tracer.  Any thread may add, remove, write or serve; a
 * mutex guards the set (never taken by an endpoint's fast path).  The
 * values come from the snapshot each endpoint publishes from its own poll
 * loop about every 10 ms, so they are that old at most while the endpoint
 * is polled, and reading them never touches the endpoint's thread.
 *
 * Names follow Prometheus's conventions: `ferry_<counter>_total` for the
 * counters of ferry_endpoint_stat_at() (with `_bytes` where they count
 * bytes), the drop_* counters as one family `ferry_drops_total` with a
 * `reason` label, the gauge `ferry_sessions_open`, the tracer's counters as
 * `ferry_tracer_<counter>_total`; every endpoint series is labelled
 * `endpoint="<label>"` and `dataplane="uring|dpdk"`.
 *
 * Built with the control plane (libsodium), like ferry/trace.h.
 */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_endpoint;
struct ferry_tracer;
struct ferry_metrics;

/*
 * ferry_metrics_create - an empty set of sources.  Returns 0, -EINVAL
 * (NULL @out) or -ENOMEM.
 */
int ferry_metrics_create(struct ferry_metrics **out);

/*
 * ferry_metrics_add_endpoint - export @ep's counters, labelled
 * endpoint="@name" (NULL: its UDP port, as a decimal number; at most 63
 * bytes, escaped on output).  Any thread; @ep must stay alive until it is
 * removed or @m destroyed.  Returns 0, -EINVAL (NULL @m or @ep, or a
 * longer name), -EEXIST (already added) or -ENOMEM.
 */
int ferry_metrics_add_endpoint(struct ferry_metrics *m,
			       struct ferry_endpoint *ep, const char *name);

/*
 * ferry_metrics_remove_endpoint - stop exporting @ep.  Once it returns, no
 * writer or server reads @ep any more, so it may be destroyed.  Any
 * thread.  Returns 0, -EINVAL or -ENOENT (not added).
 */
int ferry_metrics_remove_endpoint(struct ferry_metrics *m,
				  struct ferry_endpoint *ep);

/*
 * ferry_metrics_set_tracer - export @t's counters too (NULL: no tracer).
 * @t must outlive @m or be unset first.  Any thread.  Returns 0 or -EINVAL.
 */
int ferry_metrics_set_tracer(struct ferry_metrics *m, struct ferry_tracer *t);

/*
 * ferry_metrics_write - the exposition (text format 0.0.4) of every source
 * into @buf, NUL-terminated.  Any thread.  Returns 0 with its length (no
 * NUL) in *@len; -ENOSPC if @cap bytes were too few, with *@len the length
 * needed (retry with at least *@len + 1); or -EINVAL.
 */
int ferry_metrics_write(struct ferry_metrics *m, char *buf, size_t cap,
			size_t *len);

/*
 * ferry_metrics_serve - answer `GET /metrics` with ferry_metrics_write()'s
 * text on @addr (an IPv4 or IPv6 literal; NULL: 127.0.0.1, loopback only)
 * and TCP @port (0: any free port), from a thread of its own, one
 * connection at a time: a request is at most 8 KiB and must arrive within
 * 2 s; other paths get 404, other methods 405; each answer closes its
 * connection.  Stores the bound port in *@bound if not NULL.  Returns 0,
 * -EINVAL, -EALREADY (already serving), or the -errno of socket(),
 * bind() or listen() (-EADDRINUSE...).
 */
int ferry_metrics_serve(struct ferry_metrics *m, const char *addr,
			uint16_t port, uint16_t *bound);

/*
 * ferry_metrics_stop - stop serving: closes the socket and joins the
 * thread (at most one answer in progress finishes or times out first).
 * Any thread but the server's.  No-op if not serving or NULL.
 */
void ferry_metrics_stop(struct ferry_metrics *m);

/* ferry_metrics_destroy - stop serving and free @m (not its sources).
 * NULL is a no-op. */
void ferry_metrics_destroy(struct ferry_metrics *m);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_METRICS_H */
