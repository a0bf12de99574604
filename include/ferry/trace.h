/* SPDX-License-Identifier: MIT */
/*
 * Session spans, call spans, W3C trace context and OTLP/JSON export (the
 * control plane's tracing; docs/tracing.md).
 *
 * Three parts:
 *
 *  - Trace context: ferry_traceparent_parse() / _format() and
 *    ferry_tracestate_parse(), strict W3C Trace Context parsers for
 *    untrusted text.
 *
 *  - The producer side, for the endpoint's thread (the fast path): a
 *    struct ferry_trace_ring per endpoint.  Opening, enriching and ending a
 *    span writes one small event into the ring: no lock, no allocation, no
 *    system call, never a wait.  A full ring drops the event and counts it.
 *    A span is named by a ferry_span_t, a generation-checked handle: using
 *    one whose span has ended (or garbage) is a counted no-op, never a crash.
 *
 *  - The consumer side, the control plane: a struct ferry_tracer drains the
 *    rings (on its own thread, or whenever the application calls
 *    ferry_tracer_drain()), keeps the table of open spans, and on each close
 *    exports the span as OTLP/JSON lines to a file and/or streams events to
 *    a callback.
 *
 * Errors: fallible calls return 0 (or a count) or a negative errno value.
 * Threads: each function says which thread may call it.
 */
#ifndef FERRY_TRACE_H
#define FERRY_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- trace context (W3C Trace Context, level 1) ------------------------ */

#define FERRY_TRACE_ID_LEN 16       /* bytes of a trace id */
#define FERRY_SPAN_ID_LEN 8         /* bytes of a span (parent) id */
#define FERRY_TRACEPARENT_TEXT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */
#define FERRY_TRACESTATE_KEEP 512   /* most tracestate bytes kept */
#define FERRY_TRACESTATE_MEMBERS 32 /* most tracestate list members */

/* trace-flags bits. */
#define FERRY_TRACE_FLAG_SAMPLED 0x01u

/* A parsed traceparent: the remote (or enclosing) span's context. */
struct ferry_trace_ctx {
	uint8_t trace_id[FERRY_TRACE_ID_LEN];
	uint8_t span_id[FERRY_SPAN_ID_LEN]; /* the W3C "parent-id" */
	uint8_t flags;                      /* trace-flags as received */
	uint8_t version;                    /* as received; we send 00 */
};

/*
 * ferry_traceparent_parse - parse a W3C traceparent of @len bytes (no NUL
 * needed; @s may be NULL when @len is 0).
 *
 * Strict: version 00 must be exactly 55 bytes "vv-<32 hex>-<16 hex>-<2 hex>",
 * lower-case hex only; a higher version needs at least those 55 bytes and,
 * if longer, a '-' after them (its extra fields are ignored); version ff,
 * all-zero trace or parent ids, and non-hex or upper-case flags are
 * malformed.
 * Returns 0 (@out filled), or -EINVAL (malformed: @out untouched; the
 * caller starts a new trace).  Any thread; reads at most 56 bytes of @s.
 */
int ferry_traceparent_parse(const char *s, size_t len,
			    struct ferry_trace_ctx *out);

/*
 * ferry_traceparent_format - write @ctx as a version-00 traceparent and a
 * NUL into @buf (@cap >= 56).  Only the sampled flag is kept (the other
 * bits are reserved and must be sent as zero).
 * Returns 55, -ENOBUFS (@cap < 56), or -EINVAL (an all-zero id).  Any
 * thread.
 */
int ferry_traceparent_format(const struct ferry_trace_ctx *ctx, char *buf,
			     size_t cap);

/*
 * ferry_tracestate_parse - check a W3C tracestate list and write its
 * canonical form (members joined by ',', no blanks, empty members removed)
 * with a NUL into @out (@cap >= FERRY_TRACESTATE_KEEP + 1 always suffices).
 *
 * At most FERRY_TRACESTATE_MEMBERS members and FERRY_TRACESTATE_KEEP bytes
 * are kept: beyond that, members longer than 128 bytes go first, then
 * members from the end (the W3C truncation rule).
 * Returns the number of members kept (0..32) with *out_len set, or -EINVAL
 * (a member is malformed or a key repeats: nothing may be kept, *out is
 * ""), -ENOBUFS (@cap too small).  @truncated (may be NULL) is set when
 * members were dropped.  Any thread.
 */
int ferry_tracestate_parse(const char *s, size_t len, char *out, size_t cap,
			   size_t *out_len, bool *truncated);

/* --- the tracer (control plane) ---------------------------------------- */

struct ferry_tracer;
struct ferry_trace_ring;

/* A span handle; 0 (FERRY_SPAN_NONE) names no span. */
typedef uint64_t ferry_span_t;
#define FERRY_SPAN_NONE ((ferry_span_t)0)

/* OTLP SpanKind values. */
enum ferry_span_kind {
	FERRY_SPAN_KIND_INTERNAL = 1,
	FERRY_SPAN_KIND_SERVER = 2,
	FERRY_SPAN_KIND_CLIENT = 3,
};

/* OTLP StatusCode values. */
enum ferry_span_status {
	FERRY_SPAN_STATUS_UNSET = 0,
	FERRY_SPAN_STATUS_OK = 1,
	FERRY_SPAN_STATUS_ERROR = 2,
};

/* Attribute value types. */
enum ferry_attr_type {
	FERRY_ATTR_STRING = 1,
	FERRY_ATTR_INT = 2,
	FERRY_ATTR_BOOL = 3,
	FERRY_ATTR_DOUBLE = 4,
};

/* Attribute limits: longer keys are refused, longer strings truncated. */
#define FERRY_ATTR_KEY_MAX 63
#define FERRY_ATTR_STR_MAX 255
/* Attributes a span keeps; later new keys are dropped (and counted in the
 * export's droppedAttributesCount). */
#define FERRY_SPAN_ATTRS_MAX 32
/* Longest status message kept (session end reasons). */
#define FERRY_SPAN_MSG_MAX 63

struct ferry_trace_attr {
	const char *key;
	int type; /* enum ferry_attr_type */
	union {
		const char *s;
		int64_t i;
		bool b;
		double d;
	} v;
};

/* A span as the control plane knows it; every pointer is borrowed for the
 * duration of the callback that received it. */
struct ferry_span_info {
	uint8_t trace_id[FERRY_TRACE_ID_LEN];
	uint8_t span_id[FERRY_SPAN_ID_LEN];
	uint8_t parent_span_id[FERRY_SPAN_ID_LEN];
	bool has_parent;
	bool is_session;       /* a session span (else a call span) */
	bool sampled;          /* the trace-flags sampled bit it propagates */
	int kind;              /* enum ferry_span_kind */
	const char *name;
	const char *tracestate; /* "" if none */
	uint64_t start_ns;     /* Unix ns */
	uint64_t end_ns;       /* 0 until closed */
	int status;            /* enum ferry_span_status; set on close */
	const char *status_msg; /* "" if none */
	const struct ferry_trace_attr *attrs;
	unsigned n_attrs;
	unsigned dropped_attrs;
};

enum ferry_trace_ev_type {
	FERRY_TRACE_EV_OPEN = 1,  /* @span as opened (its start attributes) */
	FERRY_TRACE_EV_ATTR = 2,  /* @attr was just set on @span */
	FERRY_TRACE_EV_CLOSE = 3, /* @span is final; it is exported after */
};

/*
 * Event callback, run on the draining thread (the tracer's thread, or the
 * caller of ferry_tracer_drain() / ferry_tracer_destroy()), in the order the
 * events happened on each ring.  @attr is NULL except for ATTR events.
 * Must not call back into the tracer.
 */
typedef void (*ferry_trace_event_fn)(void *arg, int type,
				     const struct ferry_span_info *span,
				     const struct ferry_trace_attr *attr);

/* The export file's format (ferry_tracer_config.export_format). */
enum ferry_trace_format {
	FERRY_TRACE_FORMAT_JSON = 0,     /* OTLP/JSON, one TracesData a line */
	FERRY_TRACE_FORMAT_PROTOBUF = 1, /* length-delimited protobuf
					  * ExportTraceServiceRequests */
};

/* OTLP/HTTP encodings (ferry_tracer_config.otlp_protocol), as
 * OTEL_EXPORTER_OTLP_PROTOCOL names them. */
enum ferry_otlp_protocol {
	FERRY_OTLP_HTTP_PROTOBUF = 1,    /* "http/protobuf" */
	FERRY_OTLP_HTTP_JSON = 2,        /* "http/json" */
};

/* Clock: Unix time in ns (for tests); NULL means CLOCK_REALTIME. */
typedef uint64_t (*ferry_trace_clock_fn)(void *arg);

struct ferry_tracer_config {
	/* resource attribute service.name; NULL means "ferry". */
	const char *service_name;
	/* OTLP/JSON lines file, opened for appending (emptied first with
	 * export_replace); NULL: no file.  Created with mode 0600; a symbolic
	 * link or anything but a regular file there is refused. */
	const char *export_path;
	/* Empty the file at creation instead of appending to what is there
	 * (one run's spans only).  Default false. */
	bool export_replace;
	/* Event callback; NULL: none. */
	ferry_trace_event_fn on_event;
	void *on_event_arg;
	/* Probability, 0..1, that a call of a session with no parent context
	 * (a session that starts its trace) is sampled, drawn call by call;
	 * calls of a session with a parent follow it (docs/tracing.md,
	 * "Sampling").  Default 1. */
	double sample_rate;
	/* Record and export session spans even when not sampled (they are one
	 * per session).  Default true. */
	bool record_unsampled_sessions;
	/* Bytes of each ring (rounded up to a power of two, 4 KiB..64 MiB).
	 * Default 256 KiB. */
	uint32_t ring_bytes;
	/* Spans open at once per ring (1..65536).  Default 4096. */
	uint32_t max_spans;
	/* Start a thread that drains every drain_interval_us (default 1000). */
	bool thread;
	uint32_t drain_interval_us;
	/* Clock for timestamps; NULL: CLOCK_REALTIME. */
	ferry_trace_clock_fn clock;
	void *clock_arg;
	/* A SERVER span's parent context comes from the wire (the CONNECT's
	 * TRACEPARENT/TRACESTATE, a REQUEST's trace block): with this set,
	 * its sampled flag and its tracestate are ignored, and server session
	 * and call spans are sampled at this tracer's own sample_rate as if
	 * they started their trace; the remote trace id and parent id are
	 * still their parent (docs/tracing.md, "Sampling").  Clear it only
	 * when every client is trusted to choose what this server records.
	 * CLIENT spans (whose parents the application gives) are not
	 * affected.  Default true. */
	bool ignore_remote_sampling;
	/* Rotate the export file before a line would take it past this many
	 * bytes: the file becomes <export_path>.1 (and .1 becomes .2, ... up
	 * to export_keep files; the oldest is removed).  A line is never
	 * split: one longer than the cap is written alone into a fresh file.
	 * 0: no cap; else at least 4096.  Default 256 MiB. */
	uint64_t export_max_bytes;
	/* Rotated files kept (0..64): with 0 the full file is removed.
	 * Default 2. */
	uint32_t export_keep;
	/* Most of its wall time (0..1) the drain thread may spend on the CPU,
	 * over windows of 100 ms: past it, the thread still empties the rings
	 * (the producer never sees them fill because of it) but drops whole
	 * spans, and call spans that start meanwhile are dropped by their
	 * producer at once, all counted in spans_dropped_budget, until the
	 * next window.
	 * 0: unlimited.  Only the tracer's own thread is held to it.
	 * Default 0.05 (docs/tracing.md, "CPU budget"). */
	double cpu_budget;
	/* Call spans sampled per second at most, per ring (a token bucket
	 * with a tenth of a second's burst, on the producer's clock); calls
	 * past it get no span, counted in spans_dropped_rate.  Session spans
	 * are not limited.  0: no limit.  Default 0. */
	uint32_t max_spans_per_sec;
	/* --- OTLP export (docs/tracing.md, "OTLP/HTTP", "Configuration"),
	 * added 2026-12.  Fields left unset (NULL, 0) are taken from the
	 * OTEL_* environment variables when use_env is set. */
	/* The export file's format: enum ferry_trace_format.  Default JSON. */
	int export_format;
	/* The OTLP/HTTP traces URL, used as it is (http:// only), say
	 * "http://127.0.0.1:4318/v1/traces".  NULL: the environment's
	 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
	 * with "/v1/traces" appended, else no OTLP/HTTP export. */
	const char *otlp_endpoint;
	/* enum ferry_otlp_protocol; 0: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL /
	 * OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. */
	int otlp_protocol;
	/* Compress request bodies (Content-Encoding: gzip).  Default false. */
	bool otlp_gzip;
	/* Bound on each system call of a request, on a request's retries,
	 * and on the sending at shutdown, in ms; 0: the environment's
	 * OTEL_EXPORTER_OTLP_TRACES_TIMEOUT / OTEL_EXPORTER_OTLP_TIMEOUT,
	 * else 10000. */
	uint32_t otlp_timeout_ms;
	/* Request bodies queued for the sender at most (1..4096); past it
	 * new ones are dropped, counted.  0: 64. */
	uint32_t otlp_queue_max;
	/* Resource attributes as OTEL_RESOURCE_ATTRIBUTES writes them:
	 * "k=v,k=v", values percent-encoded.  NULL: that variable. */
	const char *resource_attributes;
	/* Read the OTEL_* variables for what is unset here (also
	 * OTEL_SERVICE_NAME for service_name).  Default true. */
	bool use_env;
};

/* Fill @c with the defaults (no file, no callback, no thread). */
void ferry_tracer_config_init(struct ferry_tracer_config *c);

/*
 * ferry_tracer_create - a tracer with @c's settings (copied).
 * The export file is opened with O_NOFOLLOW and created with mode 0600.
 * Returns 0, -EINVAL (a setting out of range), -ENOMEM, the -errno of
 * opening export_path (-ELOOP: it is a symbolic link; -EINVAL: it is not
 * a regular file), or of starting the thread.
 */
int ferry_tracer_create(const struct ferry_tracer_config *c,
			struct ferry_tracer **out);

/*
 * ferry_tracer_config_check - whether ferry_tracer_create() would accept
 * @c's settings and, with use_env, the OTEL_* environment (no file is
 * opened).  Returns 0, or -EINVAL with a one-line reason in @err (@errcap
 * bytes, may be 0), such as "OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not
 * supported", or -ENOMEM.
 */
int ferry_tracer_config_check(const struct ferry_tracer_config *c, char *err,
			      size_t errcap);

/*
 * ferry_tracer_flush - drain, then wait until the OTLP/HTTP exporter has
 * sent (or dropped, counted) every request queued, at most @timeout_ms
 * (0: otlp_timeout_ms); what is left stays queued (otlp_spans_queued).
 * Any thread but the event callback, not while the tracer is destroyed.  Returns 0, -ETIMEDOUT, or as
 * ferry_tracer_drain() fails.
 */
int ferry_tracer_flush(struct ferry_tracer *t, uint32_t timeout_ms);

/*
 * ferry_tracer_drain - process every event the rings hold now: update the
 * open-span table, call the callback, export closed spans and flush the
 * file.  Any thread (serialised with the tracer's own thread by a lock);
 * not the endpoint thread's fast path.
 * Returns the number of events processed, or -EIO if writing the export
 * file failed (the spans are lost; counted in export_errors).
 */
int ferry_tracer_drain(struct ferry_tracer *t);

struct ferry_tracer_stats {
	uint64_t events;          /* events processed */
	uint64_t events_dropped;  /* ring full: event lost */
	uint64_t spans_dropped;   /* every reason: spans_dropped_full + _rate
				   * + _budget */
	uint64_t stale;           /* calls with a stale or unknown handle */
	uint64_t unsampled;       /* call spans not sampled */
	uint64_t traceparent_malformed; /* new trace started instead */
	uint64_t tracestate_malformed;  /* dropped */
	uint64_t tracestate_truncated;  /* members dropped to fit */
	uint64_t spans_exported;  /* closed spans written / handed over */
	uint64_t forced_closes;   /* closed by shutdown (endpoint or tracer) */
	uint64_t export_errors;   /* spans lost to a failed file write */
	uint64_t open_spans;      /* in the table now */
	uint64_t export_rotations; /* export file rotated (export_max_bytes) */
	/* Spans to be recorded (sampled, or recorded unsampled sessions) and
	 * opens refused: after a clean stop (rings destroyed, then the
	 * tracer, or ferry_tracer_stats() between), spans_started ==
	 * spans_exported + spans_dropped + open_spans. */
	uint64_t spans_started;
	uint64_t spans_dropped_full;   /* open refused: ring full or no slot */
	uint64_t spans_dropped_rate;   /* over max_spans_per_sec */
	uint64_t spans_dropped_budget; /* drain thread over its cpu_budget */
	/* OTLP/HTTP (added 2026-12): of the spans_exported, those the
	 * collector accepted, those lost (queue full, collector down after
	 * the retries, a request refused), and those still queued; and the
	 * requests made (retries included), the retries, and the requests
	 * that got no answer or not a 2xx. */
	uint64_t otlp_spans_sent;
	uint64_t otlp_spans_dropped;
	uint64_t otlp_spans_queued;
	uint64_t otlp_requests;
	uint64_t otlp_retries;
	uint64_t otlp_failures;
};

/* Sum of the counters of every ring attached now or before.  Any thread. */
void ferry_tracer_stats(struct ferry_tracer *t, struct ferry_tracer_stats *s);

/*
 * ferry_tracer_destroy - stop the thread, drain, close every span still open
 * with status ERROR "tracer shut down", export them, close the file, free.
 * Rings still attached keep accepting (and dropping) events until their
 * owners destroy them; their spans are gone.  Not from the event callback.
 * NULL is a no-op.
 */
void ferry_tracer_destroy(struct ferry_tracer *t);

/* --- the producer side: one ring per endpoint --------------------------- */

/*
 * ferry_trace_ring_create - a ring for one producer thread (an endpoint).
 * Any thread.  Returns 0, -EINVAL (NULL tracer), -ENOMEM, or -ESHUTDOWN
 * (the tracer is being destroyed).
 */
int ferry_trace_ring_create(struct ferry_tracer *t,
			    struct ferry_trace_ring **out);

/*
 * ferry_trace_ring_destroy - the producer is done (its endpoint is being
 * destroyed).  Drains what the ring holds, closes its spans still open with
 * status ERROR "endpoint shut down", exports them, frees the ring.  Any
 * thread, once the producer no longer uses @r.  NULL is a no-op.
 */
void ferry_trace_ring_destroy(struct ferry_trace_ring *r);

/* What opening a session span needs: what the transport knows then. */
struct ferry_span_session_args {
	int kind; /* FERRY_SPAN_KIND_CLIENT or FERRY_SPAN_KIND_SERVER */
	/* The parent context as text: client, the caller's enclosing span
	 * (ferry_connect_opts.traceparent); server, the CONNECT's TRACEPARENT
	 * and TRACESTATE TLVs.  NULL (or length 0): none.  Malformed values
	 * are counted and ignored: the span then starts a new trace. */
	const char *traceparent;
	size_t traceparent_len;
	const char *tracestate;
	size_t tracestate_len;
	/* The remote end (network.peer.*): IPv4 in network byte order, port
	 * in host order (struct ferry_addr). */
	uint32_t peer_ip;
	uint16_t peer_port;
	/* The server (server.*): client, the same as peer; server, the local
	 * address (ip 0 when bound to all addresses: left out). */
	uint32_t server_ip;
	uint16_t server_port;
};

/*
 * ferry_span_session_open - open a session span: kind CLIENT or SERVER, a
 * random span id, the parent's trace id and a parentSpanId if the parent
 * context is valid, else a new random trace id.  Sampled as the parent says,
 * or by the tracer's sample_rate for a new trace.
 * Returns the handle for the session to keep, or FERRY_SPAN_NONE (@r NULL,
 * ring full or no free slot: counted in spans_dropped_full; every call with
 * FERRY_SPAN_NONE is a no-op).  Only @r's producer thread.
 */
ferry_span_t ferry_span_session_open(struct ferry_trace_ring *r,
				     const struct ferry_span_session_args *a);

/* How a session ended. */
enum ferry_span_end {
	FERRY_SPAN_END_CLOSE = 0,    /* clean close, either side: UNSET */
	FERRY_SPAN_END_ERROR = 1,    /* error: ERROR, message = reason */
	FERRY_SPAN_END_PEER_DEAD = 2, /* peer timed out: ERROR */
	FERRY_SPAN_END_SHUTDOWN = 3, /* endpoint destroyed: ERROR */
};

/*
 * ferry_span_session_end - close a session span.
 * @how: enum ferry_span_end.
 * @res: the error that ended the session (negative errno or ferry code;
 *   0 if none): it becomes the error.type attribute.
 * @reason: status message (copied, at most FERRY_SPAN_MSG_MAX bytes kept);
 *   NULL: ferry_strerror(@res), or a default for @how.
 * A stale @span is a counted no-op.  Only @r's producer thread.  Never
 * dropped: a ring keeps room for the close of every span it opened.
 */
void ferry_span_session_end(struct ferry_trace_ring *r, ferry_span_t span,
			    int how, int res, const char *reason);

/*
 * ferry_span_call_start - open a call span, child of the session span
 * @session, kind CLIENT or SERVER like its session, name "ferry/<method>",
 * attributes rpc.system "ferry", rpc.method "<method>" and the session's
 * server.* / network.peer.*.
 * @parent: a call's own trace context, if it carried one; NULL: the
 *   session's.
 * Sampled as @parent says; else as the session's parent said; else (a
 * session that starts its trace) drawn at the tracer's sample_rate.
 * Returns the handle, or FERRY_SPAN_NONE (not sampled, @session stale, or
 * dropped).  Only @r's producer thread.
 */
ferry_span_t ferry_span_call_start(struct ferry_trace_ring *r,
				   ferry_span_t session, uint16_t method,
				   const struct ferry_trace_ctx *parent);

/*
 * ferry_span_call_end - close a call span.  @res 0: status UNSET; negative
 * (errno or ferry code): status ERROR with message ferry_strerror(@res) and
 * attribute error.type (e.g. "ETIMEDOUT", "FERRY_ENOMETHOD").  A stale
 * @span is a counted no-op.  Only @r's producer thread; never dropped.
 */
void ferry_span_call_end(struct ferry_trace_ring *r, ferry_span_t span,
			 int res);

/*
 * Enrichment: set an attribute on an open span (session or call), from a
 * handler or a continuation.  @key: 1..FERRY_ATTR_KEY_MAX bytes; a string
 * value is truncated to FERRY_ATTR_STR_MAX bytes.  Setting a key again
 * replaces its value.
 * Returns 0, -ESTALE (the span ended, or no such span: nothing happens),
 * -EINVAL (bad key, or @r/@key NULL), or -ENOBUFS (ring full: dropped and
 * counted).  Only @r's producer thread.
 */
int ferry_span_set_str(struct ferry_trace_ring *r, ferry_span_t span,
		       const char *key, const char *value);
int ferry_span_set_int(struct ferry_trace_ring *r, ferry_span_t span,
		       const char *key, int64_t value);
int ferry_span_set_bool(struct ferry_trace_ring *r, ferry_span_t span,
			const char *key, bool value);
int ferry_span_set_double(struct ferry_trace_ring *r, ferry_span_t span,
			  const char *key, double value);

/*
 * ferry_span_context - the context to propagate for an open span (its trace
 * id, its span id, its sampled flag): the client formats it with
 * ferry_traceparent_format() into the CONNECT's TRACEPARENT.
 * Returns 0, or -ESTALE.  Only @r's producer thread.
 */
int ferry_span_context(struct ferry_trace_ring *r, ferry_span_t span,
		       struct ferry_trace_ctx *out);

/*
 * ferry_span_traceparent - ferry_span_context() then
 * ferry_traceparent_format() into @buf (@cap >= 56).
 * Returns 55, -ESTALE or -ENOBUFS.  Only @r's producer thread.
 */
int ferry_span_traceparent(struct ferry_trace_ring *r, ferry_span_t span,
			   char *buf, size_t cap);

/* ferry_span_is_open - true while @span names an open span of @r. */
bool ferry_span_is_open(struct ferry_trace_ring *r, ferry_span_t span);

/* --- the transport's spans -------------------------------------------- */

struct ferry_endpoint;
struct ferry_session;
struct ferry_call;

/*
 * ferry_endpoint_set_tracer - trace @ep's sessions and calls with @t (NULL:
 * stop): a ring of @t's for this endpoint, a session span per session
 * (CLIENT, parented to ferry_connect_opts.traceparent; SERVER, child of the
 * client's through the CONNECT's TRACEPARENT), a call span per sampled
 * call.  Call it on the endpoint's thread before any session opens.
 * Returns 0, -EBUSY if a session exists, -EINVAL, or -ENOMEM.
 */
int ferry_endpoint_set_tracer(struct ferry_endpoint *ep, struct ferry_tracer *t);

/* The endpoint's ring (NULL when not traced), for ferry_span_set_*() from
 * handlers and continuations on the endpoint's thread. */
struct ferry_trace_ring *ferry_endpoint_trace_ring(struct ferry_endpoint *ep);

/* A session's span and, in a handler, its call's (FERRY_SPAN_NONE when not
 * traced or not sampled).  Handles outliving their span are harmless. */
ferry_span_t ferry_session_span(const struct ferry_session *s);
ferry_span_t ferry_call_span(const struct ferry_call *c);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_TRACE_H */
