/* SPDX-License-Identifier: MIT */
/*
 * Tracing internals (docs/tracing.md): the ring's event records, the
 * producer's slot table, the consumer's span records, the exporter's and
 * the tracer's state, and the small JSON reader that ferryctl and the
 * tests use on export files.  Shared by the tracing files (trace.c the
 * producer, trace_consumer.c, trace_export.c, tracer.c) and exposed as
 * ferry__* to the unit tests, the fuzz target and ferryctl.  Not installed.
 */
#ifndef FERRY_TRACE_INTERNAL_H
#define FERRY_TRACE_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ferry/trace.h>

#include "control/otlp.h"

/* --- ring records --------------------------------------------------------
 * Every record starts with this header and is padded to a multiple of 8
 * bytes; @size counts the padding.  A record may wrap around the end of the
 * ring's buffer: it is copied in and out in two pieces. */
enum {
	FERRY__EV_OPEN = 1,
	FERRY__EV_ATTR = 2,
	FERRY__EV_END = 3,
	FERRY__EV_CALL = 4, /* a whole call span: OPEN and END in one */
};

struct ferry__ev {
	uint16_t size;  /* whole record, padded */
	uint8_t type;   /* FERRY__EV_* */
	uint8_t flags;  /* per type */
	uint32_t slot;  /* the span's slot in its ring */
	uint32_t gen;   /* the slot's generation when the span opened */
	uint32_t aux;   /* per type */
	uint64_t ts;    /* Unix ns */
};

/* OPEN flags. */
#define FERRY__OF_SESSION 0x01u
#define FERRY__OF_PARENT 0x02u
#define FERRY__OF_SAMPLED 0x04u

struct ferry__ev_open {
	struct ferry__ev h;     /* aux: method (call spans) */
	uint8_t trace_id[FERRY_TRACE_ID_LEN];
	uint8_t span_id[FERRY_SPAN_ID_LEN];
	uint8_t parent_id[FERRY_SPAN_ID_LEN];
	uint32_t peer_ip, server_ip; /* network byte order */
	uint16_t peer_port, server_port;
	uint8_t kind;
	uint8_t pad;
	uint16_t ts_len;        /* tracestate bytes that follow */
	/* char tracestate[ts_len]; */
};

struct ferry__ev_attr {
	struct ferry__ev h;     /* flags: enum ferry_attr_type */
	uint8_t klen;
	uint8_t pad;
	uint16_t vlen;          /* string bytes after the key */
	uint32_t pad2;
	union {
		int64_t i;
		double d;
		uint8_t b;
	} v;
	/* char key[klen]; char str[vlen]; */
};

struct ferry__ev_end {
	struct ferry__ev h;     /* flags: enum ferry_span_end, or 0xff a call */
	int32_t res;
	uint8_t mlen;
	uint8_t pad[3];
	/* char msg[mlen]; */
};

/* A call span that nothing enriched while it was open is written once, when
 * it ends: one record instead of OPEN + END, and no record on the consumer
 * (docs/tracing.md, section 5). */
struct ferry__ev_call {
	struct ferry__ev h;     /* ts: end; aux: method; flags: FERRY__OF_* */
	uint64_t start;         /* Unix ns */
	uint8_t trace_id[FERRY_TRACE_ID_LEN];
	uint8_t span_id[FERRY_SPAN_ID_LEN];
	uint8_t parent_id[FERRY_SPAN_ID_LEN];
	uint32_t peer_ip, server_ip; /* network byte order */
	uint16_t peer_port, server_port;
	int32_t res;
	uint8_t kind;
	uint8_t pad[7];
};

#define FERRY__END_CALL 0xffu
#define FERRY__EV_ALIGN 8u
#define FERRY__EV_PAD(n) (((n) + FERRY__EV_ALIGN - 1) & ~(size_t)(FERRY__EV_ALIGN - 1))
/* Largest END record: what the ring keeps free for every open span. */
#define FERRY__END_MAX FERRY__EV_PAD(sizeof(struct ferry__ev_end) + FERRY_SPAN_MSG_MAX)
_Static_assert(FERRY__EV_PAD(sizeof(struct ferry__ev_call)) <= FERRY__END_MAX,
	       "a call record must fit in the room kept for an END");
/* Largest record of any type (an OPEN with a full tracestate). */
#define FERRY__EV_MAX                                                          \
	FERRY__EV_PAD(sizeof(struct ferry__ev_open) + FERRY_TRACESTATE_KEEP)

/* --- the producer's slot table ------------------------------------------ */

struct ferry__pslot {
	uint32_t gen;           /* a handle names this slot iff gens match */
	uint32_t next_free;     /* free list link */
	uint8_t open;
	uint8_t recording;      /* events are written (else context only) */
	uint8_t sampled;
	uint8_t is_session;
	uint8_t kind;
	/* Session: no parent context, so each call is sampled on its own
	 * (at the tracer's rate).  Call: its own context must go on the wire
	 * (it has its own parent, or was sampled when the session's
	 * propagated flag says not).  Call: no OPEN written yet. */
	uint8_t root;
	uint8_t own_ctx;
	uint8_t lazy;
	uint8_t has_parent;
	uint16_t method;
	uint8_t trace_id[FERRY_TRACE_ID_LEN];
	uint8_t span_id[FERRY_SPAN_ID_LEN];
	uint8_t parent_id[FERRY_SPAN_ID_LEN]; /* lazy calls */
	uint64_t start;                       /* lazy calls */
	/* A session's addresses, copied into its calls' records. */
	uint32_t peer_ip, server_ip;
	uint16_t peer_port, server_port;
};

/* --- the consumer's span record ----------------------------------------- */

struct ferry__crec {
	uint32_t gen;
	struct ferry_span_info info;  /* pointers into the fields below */
	char name[32];
	char *tracestate;             /* heap, or NULL */
	char msg[FERRY_SPAN_MSG_MAX + 1];
	struct ferry_trace_attr attrs[FERRY_SPAN_ATTRS_MAX];
	/* Bit i: attrs[i]'s key / string value is on the heap.  The built-in
	 * attributes set at open point at literals and at the buffers below:
	 * no allocation per call span (issue 7, the consumer's cost). */
	uint32_t own_key, own_val;
	char server_ip[16], peer_ip[16], method[8];
	/* Opened while the drain thread was over its CPU budget: only @gen
	 * is kept; no events, no export, counted when it closes. */
	bool dropped;
};

#define FERRY__NO_SLOT UINT32_MAX
#define FERRY__RNG_POOL 4096

struct ferry_trace_ring {
	/* Producer-only state, on its own cache lines. */
	alignas(64) uint64_t head;     /* bytes written (private copy) */
	uint64_t tail_cache;           /* the consumer's tail, last seen */
	uint64_t reserved;             /* bytes kept for END records */
	struct ferry__pslot *slots;
	uint32_t free_head;            /* FERRY__NO_SLOT: none free */
	uint32_t rng_off;
	uint8_t rng[FERRY__RNG_POOL];  /* random bytes for ids, refilled */
	uint8_t rng_key[32];           /* the pool's ChaCha20 key */
	uint64_t rng_nonce;            /* and its nonce, one per refill */
	uint64_t sample_threshold;     /* of 2^64: a call's draw below it */
	uint64_t draw;                 /* xorshift state for those draws */
	bool sample_all;
	bool sample_none;
	bool record_unsampled;
	bool ignore_remote;            /* SERVER spans sample on their own */
	/* max_spans_per_sec as a GCRA token bucket: @rl_tat is the bucket's
	 * theoretical arrival time (Unix ns), @rl_interval ns per span (0: no
	 * limit), @rl_tau the burst's slack. */
	uint64_t rl_tat, rl_interval, rl_tau;
	ferry_trace_clock_fn clock;
	void *clock_arg;

	/* Producer-written counters (relaxed atomics: one writer). */
	alignas(64) _Atomic uint64_t ev_dropped;
	_Atomic uint64_t spans_dropped;
	_Atomic uint64_t stale;
	_Atomic uint64_t unsampled;
	_Atomic uint64_t tp_malformed;
	_Atomic uint64_t ts_malformed;
	_Atomic uint64_t ts_truncated;
	_Atomic uint64_t started;
	_Atomic uint64_t dropped_rate;
	_Atomic uint64_t dropped_shed; /* call spans not started: @shed */

	/* Set by the drain thread while it is over its CPU budget: call
	 * spans are dropped as they start, before they cost the producer a
	 * clock read, an id and a record the drain would only throw away.
	 * Written twice a window at most, read at every call span: a line
	 * of its own, which stays in the producer's cache. */
	alignas(64) _Atomic bool shed;

	/* Published positions.  head_pub is stored (release) by the producer
	 * after a record is fully written, so the consumer that loads it
	 * (acquire) sees the bytes; tail likewise the other way, so the
	 * producer never overwrites bytes the consumer still reads. */
	alignas(64) _Atomic uint64_t head_pub;
	alignas(64) _Atomic uint64_t tail;

	/* Fixed after creation. */
	alignas(64) uint8_t *buf;
	uint64_t cap;                  /* power of two */
	uint32_t nslots;

	/* Consumer state: only under the tracer's lock. */
	struct ferry_tracer *tracer;
	struct ferry__crec **recs;     /* [nslots] */
	struct ferry_trace_ring *next; /* the tracer's list */
};

/* Producer-side helpers the tests use. */
uint64_t ferry__ring_used(const struct ferry_trace_ring *r);

/* The producer's clock (the tracer's, or CLOCK_REALTIME), for the
 * consumer's closes at a ring's end. */
uint64_t ferry__ring_now(const struct ferry_trace_ring *r);
/* The OPEN record the lazy call span in slot @i has not written, built from
 * the slot: for the forced close of a ring whose producer has stopped. */
void ferry__span_lazy_open_ev(const struct ferry_trace_ring *r, uint32_t i,
			      struct ferry__ev_open *ev);

/* --- the exporter (control/trace_export.c) ------------------------------ */

/* The address attributes of a recent call span, as JSON text: a call
 * span's export copies them (export_call()). */
struct ferry__addr_memo {
	uint32_t server_ip, peer_ip;
	uint16_t server_port, peer_port;
	uint16_t len;     /* 0: empty entry */
	char text[320];
};

/* The export file and the line being built for it.  Under the tracer's
 * lock. */
struct ferry__export {
	int fd;              /* the export file, or -1 */
	int format;          /* enum ferry_trace_format */
	/* Instead of a file, each flush is one request body queued for the
	 * OTLP/HTTP exporter (control/otlp_exporter.c). */
	struct ferry__otlp *http;
	char *head;          /* JSON: each line's text before its spans */
	/* Protobuf: the encoded resource and scope fields (ferry__pb_prefix). */
	uint8_t *pb_pre;
	size_t pb_res_len, pb_scope_len;

	/* Closed spans waiting to be written, as the text of a "spans" array
	 * (without the brackets), or in protobuf as ScopeSpans.spans fields. */
	char *buf;
	size_t len, cap;
	unsigned spans;
	bool oom;

	struct ferry__addr_memo memo[16];

	/* put_ns()'s seconds, as text. */
	uint64_t ns_sec;
	char ns_sec_text[20];
	uint8_t ns_sec_len;

	uint64_t errors;     /* spans a failed write lost */

	/* The size cap and rotation (export_max_bytes, export_keep). */
	char *path;          /* the export file's name */
	uint64_t size;       /* bytes in the file now */
	uint64_t max_bytes;  /* 0: no cap */
	uint32_t keep;       /* rotated files kept: path.1 .. path.keep */
	bool reopen;         /* rotated, but the new file is not open yet */
	uint64_t rotations;
};

/* Most rotated files kept (export_keep); export_replace removes this many
 * whatever a run keeps. */
#define FERRY__EXPORT_KEEP_MAX 64u

/*
 * Open @path (appending; emptied first with @replace, which also removes
 * rotated files path.1 .. path.@keep) safely: O_NOFOLLOW, O_CLOEXEC, mode
 * 0600 when created, a regular file only.  Lines are kept
 * under @max_bytes (0: no cap) per file by rotation.  Returns 0, -errno
 * from open(2) (-ELOOP for a symbolic link), -EINVAL (not a regular
 * file), or -ENOMEM; ferry__export_close() closes what was opened either
 * way.
 */
int ferry__export_open(struct ferry__export *x, const char *path,
		       bool replace, uint64_t max_bytes, uint32_t keep);
/* Make the text (JSON) or bytes (protobuf) that come before each batch of
 * spans in @format: the resource (service.name and @s's attributes) and
 * the scope.  Before the first span.  Returns 0 or -ENOMEM. */
int ferry__export_head(struct ferry__export *x, int format,
		       const struct ferry__otlp_settings *s);
/* Append a closed span, or a call span whole from its CALL record (one
 * that succeeded, nothing set on it), to the pending line; the line is
 * written when it grows large.  Nothing without a file. */
void ferry__export_span(struct ferry__export *x,
			const struct ferry_span_info *s);
void ferry__export_call(struct ferry__export *x,
			const struct ferry__ev_call *ev);
/* Write the pending spans as one line.  Returns 0, or -EIO / -ENOMEM
 * (the spans are counted in @x->errors and dropped). */
int ferry__export_flush(struct ferry__export *x);
void ferry__export_close(struct ferry__export *x);
void ferry__export_free(struct ferry__export *x);
/* @ip (network byte order) as dotted text, or "?". */
void ferry__trace_ip_text(uint32_t ip, char *buf, size_t cap);

/* --- the tracer (control/tracer.c) -------------------------------------- */

/* Producer counters per ring that ferry_tracer_stats() sums. */
#define FERRY__RING_COUNTS 10
/* The window the drain thread's CPU budget is measured over. */
#define FERRY__BUDGET_WINDOW_NS 100000000u

struct ferry_tracer {
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* wakes the thread to stop */
	_Atomic int refs;          /* the creator's, plus one per ring */
	bool stopping;             /* destroy has begun (under lock) */
	bool has_thread;
	pthread_t thread;
	uint32_t interval_us;

	struct ferry_tracer_config cfg;
	struct ferry__export x;
	/* OTLP/HTTP: its pending batch (as x's, with its own format), the
	 * exporter (NULL: none), its settings, and its counters once it has
	 * stopped. */
	struct ferry__export hx;
	struct ferry__otlp *otlp;
	struct ferry__otlp_settings set;
	struct ferry__otlp_stats otlp_last;
	uint64_t hx_last;          /* CLOCK_MONOTONIC ns of its last flush */
	struct ferry_trace_ring *rings;

	/* Counters kept by the consumer, and those of rings gone. */
	uint64_t events, exported, forced, open;
	uint64_t gone[FERRY__RING_COUNTS];
	/* The CPU budget: @shed while the drain thread is over it (new spans
	 * are dropped); the window it is measured over began at @win_wall
	 * (CLOCK_MONOTONIC ns) with @win_cpu ns of the thread's CPU time. */
	bool shed;
	/* In a pass of the drain thread, which looks at the budget again
	 * every FERRY__BUDGET_RECHECK records (a pass may be long). */
	bool budgeted;
	uint64_t win_wall, win_cpu;
	uint64_t dropped_budget;
};

/* --- the consumer (control/trace_consumer.c) ---------------------------- */

#define FERRY__BUDGET_RECHECK 256

/* The drain thread's budget looked at again (control/tracer.c): @t->shed
 * set if it is spent, and every ring's producer told. */
void ferry__tracer_budget(struct ferry_tracer *t);

/* Process every record @r holds now.  Returns how many.  Under the
 * tracer's lock, like the rest. */
int ferry__ring_drain(struct ferry_tracer *t, struct ferry_trace_ring *r);
/* Close every span of @r still open with @why at @ts.  With
 * @producer_done, also the lazy call spans only the producer knows. */
void ferry__ring_force_close(struct ferry_tracer *t, struct ferry_trace_ring *r,
			     const char *why, uint64_t ts, bool producer_done);
/* Free the records of @r's open spans without closing them. */
void ferry__ring_drop_recs(struct ferry_tracer *t, struct ferry_trace_ring *r);

/* The transport's hooks (transport/trace_hook.h; control/trace_wire.c). */
ferry_span_t ferry__span_call_start_text(struct ferry_trace_ring *r,
					 ferry_span_t session, uint16_t method,
					 const char *tp, size_t tp_len,
					 const char *ts, size_t ts_len);
int ferry__span_call_context(struct ferry_trace_ring *r, ferry_span_t span,
			     char *buf, size_t cap);
/* A peer's attribute (a RESPONSE's attribute block): set as
 * FERRY__PEER_PREFIX "<key>", so that nothing from the wire can replace an
 * attribute the tracer writes itself (rpc.system, server.address, ...). */
int ferry__span_set_peer_attr(struct ferry_trace_ring *r, ferry_span_t span,
			      const struct ferry_trace_attr *a);
#define FERRY__PEER_PREFIX "peer."
#define FERRY__PEER_PREFIX_LEN (sizeof(FERRY__PEER_PREFIX) - 1)
/* Longest key in a ring's ATTR record: a peer's, with its prefix. */
#define FERRY__ATTR_KEY_MAX (FERRY_ATTR_KEY_MAX + FERRY__PEER_PREFIX_LEN)
_Static_assert(FERRY__EV_PAD(sizeof(struct ferry__ev_attr) + FERRY__ATTR_KEY_MAX +
			     FERRY_ATTR_STR_MAX) <= FERRY__EV_MAX,
	       "the consumer's record buffer holds the largest ATTR");

/* error.type for @res (negative): "ETIMEDOUT", "FERRY_ENOMETHOD", ... */
const char *ferry__trace_error_type(int res);

/* --- JSON reader (export files) ----------------------------------------- */

enum {
	FERRY__J_NULL,
	FERRY__J_FALSE,
	FERRY__J_TRUE,
	FERRY__J_NUM,
	FERRY__J_STR,
	FERRY__J_ARR,
	FERRY__J_OBJ,
};

struct ferry__json {
	int type;
	char *key;                 /* member name, in an object */
	char *s;                   /* STR: decoded, NUL-terminated; NUM: text */
	size_t slen;
	double num;
	struct ferry__json *child; /* ARR, OBJ: first element */
	struct ferry__json *next;  /* next sibling */
};

/*
 * Parse one JSON text of @len bytes (through the bounded reader).  Returns
 * 0 and *out, or -EINVAL with a reason in @err, or -ENOMEM.  Nesting depth
 * is limited to 64.
 */
int ferry__json_parse(const char *p, size_t len, struct ferry__json **out,
		      char *err, size_t errcap);
void ferry__json_free(struct ferry__json *j);
/* The member @key of object @o, or NULL. */
const struct ferry__json *ferry__json_get(const struct ferry__json *o,
					  const char *key);

/* --- OTLP/JSON lines (ferryctl spans, tests) ---------------------------- */

struct ferry__otlp_span {
	char trace_id[33];
	char span_id[17];
	char parent_id[17];       /* "" for a root */
	char name[128];
	int kind;
	uint64_t start_ns, end_ns;
	int status;
	char status_msg[128];
	char service[64];
	char rpc_method[32];
	char error_type[64];
	unsigned n_attrs;
};

/*
 * Parse one export line (one TracesData) and append its spans to *spans
 * (realloc'd; *n, *cap updated).  Checks the OTLP/JSON mapping: required
 * fields, 32/16 lower-case hex ids, integer kind and status code, decimal
 * string timestamps, start <= end, typed attribute values.
 * Returns 0, -EINVAL with a one-line reason in @err, or -ENOMEM.
 */
int ferry__otlp_parse_line(const char *line, size_t len,
			   struct ferry__otlp_span **spans, size_t *n,
			   size_t *cap, char *err, size_t errcap);

/* ferryctl spans FILE... (control/ferryctl_spans.c). */
int ferry__ctl_spans(int argc, char **argv);

/* Whether @s[0..n) is valid UTF-8 (JSON strings pass it through as is);
 * shared by the exporter and ferryctl. */
bool ferry__utf8_ok(const unsigned char *s, size_t n);

#endif /* FERRY_TRACE_INTERNAL_H */
