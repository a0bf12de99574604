/* SPDX-License-Identifier: MIT */
/*
 * OTLP export internals (docs/tracing.md, section 6): the protobuf encoder
 * (otlp_pb.c), the exporter's settings from the configuration and the
 * OTEL_* environment (otlp_config.c), the minimal HTTP/1.1 client
 * (otlp_http.c) and the OTLP/HTTP exporter with its queue and sender
 * thread (otlp_exporter.c).  Exposed as ferry__* to the unit tests.  Not
 * installed.
 */
#ifndef FERRY_OTLP_H
#define FERRY_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <ferry/trace.h>

/*
 * ferry__iov_advance - @w bytes of the @n pieces at *@iov went out (a
 * partial write or send): step *@iov and *@n past the pieces written
 * whole, and into the one written in part.  For the export file's writev
 * and the HTTP client's sendmsg alike.
 */
static inline void ferry__iov_advance(struct iovec **iov, int *n, size_t w)
{
	while (*n > 0 && w >= (*iov)->iov_len) {
		w -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + w;
		(*iov)->iov_len -= w;
	}
}

/* --- the protobuf encoder (otlp_pb.c) ------------------------------------
 * Proto3 as protoc writes it: fields in number order, scalars at their
 * default value left out, a oneof member always written.  Strings that are
 * not valid UTF-8 (protobuf strings must be) have each byte >= 0x80 taken
 * as the code point U+0080..U+00FF, as the JSON export writes it (\u00XX),
 * so both exports carry the same text. */

/* Most bytes a varint takes. */
#define FERRY__PB_VARINT_MAX 10

size_t ferry__pb_varint_len(uint64_t v);
uint8_t *ferry__pb_varint(uint8_t *p, uint64_t v);

/* Bytes of the Span message body for @s, and the body itself at @p (which
 * has that much room); returns the new end.  @more: @more_len bytes of
 * attribute fields already encoded (ferry__pb_attr_put()), written after
 * @s's own (NULL, 0: none). */
size_t ferry__pb_span_len(const struct ferry_span_info *s, size_t more_len);
uint8_t *ferry__pb_span_put(uint8_t *p, const struct ferry_span_info *s,
			    const uint8_t *more, size_t more_len);
/* One attribute as a Span.attributes field (tag, length, KeyValue): its
 * size, and its bytes at @p. */
size_t ferry__pb_attr_len(const struct ferry_trace_attr *a);
uint8_t *ferry__pb_attr_put(uint8_t *p, const struct ferry_trace_attr *a);

/* A string key/value pair (resource attributes). */
struct ferry__kv {
	char *key;
	char *val;
};

/* The encoded `resource` (ResourceSpans field 1: string attributes @kv)
 * and `scope` (ScopeSpans field 1: name and version) fields, tag and length
 * included, in one malloc'd buffer: *@res_len bytes of resource then
 * *@scope_len of scope.  NULL when out of memory. */
uint8_t *ferry__pb_prefix(const struct ferry__kv *kv, unsigned n,
			  const char *scope_name, const char *scope_version,
			  size_t *res_len, size_t *scope_len);

/* The bytes of an ExportTraceServiceRequest that come before its spans
 * (@spans_len bytes of ScopeSpans field 2, each span's tag and length
 * included), written at @p: with @framed, preceded by the request's length
 * as a varint (the file's framing).  Returns the new end.  @p needs
 * FERRY__PB_HEAD_MAX + @pre_len bytes of room. */
#define FERRY__PB_HEAD_MAX (4 * FERRY__PB_VARINT_MAX + 2)
uint8_t *ferry__pb_head(uint8_t *p, const uint8_t *pre, size_t res_len,
			size_t scope_len, size_t spans_len, bool framed);

/* --- settings (otlp_config.c) -------------------------------------------- */

/* Where a setting's environment comes from: getenv in the library, a
 * table in the tests. */
typedef const char *(*ferry__env_fn)(const char *name, void *arg);

#define FERRY__RES_ATTRS_MAX 16

struct ferry__otlp_settings {
	char *service;         /* service.name, resolved */
	struct ferry__kv res[FERRY__RES_ATTRS_MAX]; /* other resource attrs */
	unsigned n_res;
	char *endpoint;        /* the traces URL; NULL: no OTLP/HTTP export */
	int protocol;          /* enum ferry_otlp_protocol, resolved */
	bool gzip;
	uint32_t timeout_ms;
	uint32_t queue_max;
};

/*
 * Work out the exporter's settings from @c, the fields it leaves unset
 * taken from the environment (@env; NULL: no environment) as
 * docs/tracing.md, "Configuration", says.  Returns 0, -EINVAL with a
 * one-line reason in @err (a bad URL, protocol, timeout or resource
 * attribute), or -ENOMEM.  ferry__otlp_settings_free() frees what it
 * filled, either way.
 */
int ferry__otlp_resolve(const struct ferry_tracer_config *c, ferry__env_fn env,
			void *arg, struct ferry__otlp_settings *out, char *err,
			size_t errcap);
void ferry__otlp_settings_free(struct ferry__otlp_settings *s);

/* An http:// URL taken apart. */
struct ferry__url {
	char host[256];        /* without brackets for IPv6 */
	char port[6];          /* decimal; "80" if none */
	char authority[264];   /* for the Host header, as written */
	char path[1024];       /* "/" if none */
};

/* Parse an http:// URL (no user info, no fragment).  Returns 0 or
 * -EINVAL with a reason in @err. */
int ferry__url_parse(const char *url, struct ferry__url *u, char *err,
		     size_t errcap);

/* --- the HTTP client (otlp_http.c) --------------------------------------- */

struct ferry__http {
	struct ferry__url url;
	int fd;                /* kept alive between requests, or -1 */
	uint32_t timeout_ms;
};

struct ferry__http_resp {
	int status;            /* HTTP status; 0: no response */
	int64_t retry_after_ms; /* Retry-After in ms, or -1 if none */
};

/*
 * POST @body to @h's URL with @ctype (and Content-Encoding: gzip with
 * @gzip), reading the response.  Blocking, each system call bounded by
 * the timeout: for the sender thread only.  Returns 0 with @r filled (any
 * status), or -errno when there was no answer (connection refused, reset,
 * timed out, a malformed response): the connection is then closed.
 */
int ferry__http_post(struct ferry__http *h, const char *ctype, bool gzip,
		     const void *body, size_t len, struct ferry__http_resp *r);
void ferry__http_close(struct ferry__http *h);

/* --- the OTLP/HTTP exporter (otlp_exporter.c) ---------------------------- */

struct ferry__otlp;

struct ferry__otlp_stats {
	uint64_t spans_sent;      /* accepted by the collector (2xx) */
	uint64_t spans_dropped;   /* queue full, rejected or given up */
	uint64_t requests;        /* POSTs made, retries included */
	uint64_t retries;         /* POSTs that were retries */
	uint64_t failures;        /* POSTs with no answer or not 2xx */
	uint64_t queued_spans;    /* waiting now */
};

/* Start the exporter and its sender thread for @s (endpoint set).  Its
 * thread is held to @cpu_budget as the drain thread is.  Returns 0,
 * -EINVAL (bad URL), -ENOMEM or pthread_create's -errno. */
int ferry__otlp_start(const struct ferry__otlp_settings *s, double cpu_budget,
		      struct ferry__otlp **out);
/* Queue one request body of @spans spans, the @n pieces of @iov copied.
 * Never blocks: a full queue drops it, counted. */
void ferry__otlp_enqueue(struct ferry__otlp *o, const struct iovec *iov,
			 int n, uint64_t spans);
/* Wait until every queued body has been sent or dropped, at most
 * @timeout_ms (0: the exporter's timeout).  Returns 0 or -ETIMEDOUT. */
int ferry__otlp_flush(struct ferry__otlp *o, uint32_t timeout_ms);
void ferry__otlp_stats(struct ferry__otlp *o, struct ferry__otlp_stats *st);
/* Send what is queued (retrying for at most the timeout), stop the thread,
 * count what is left as dropped, free.  NULL is a no-op. */
void ferry__otlp_stop(struct ferry__otlp *o, struct ferry__otlp_stats *last);

#endif /* FERRY_OTLP_H */
