/* SPDX-License-Identifier: MIT */
/*
 * The OTLP protobuf encoder: closed spans as opentelemetry.proto.trace.v1
 * Span messages, and the ExportTraceServiceRequest around them
 * (docs/tracing.md, section 6, "Protobuf").  Written by hand rather than
 * with protobuf-c: the tracer writes one message shape, sizes are worked
 * out first and the bytes written once, forward, straight into the
 * exporter's buffer (no message objects to fill and free per span), and
 * nothing is added to what the library links.  Field numbers are those
 * of opentelemetry-proto's trace.proto, common.proto, resource.proto and
 * trace_service.proto.
 */
#include <stdlib.h>
#include <string.h>

#include "control/otlp.h"
#include "control/trace_internal.h"

/* Wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

#define TAG(field, wt) ((uint8_t)((field) << 3 | (wt)))

/* Span fields (trace.proto). */
enum {
	SPAN_TRACE_ID = 1,
	SPAN_SPAN_ID = 2,
	SPAN_TRACE_STATE = 3,
	SPAN_PARENT_SPAN_ID = 4,
	SPAN_NAME = 5,
	SPAN_KIND = 6,
	SPAN_START = 7,
	SPAN_END = 8,
	SPAN_ATTRIBUTES = 9,
	SPAN_DROPPED_ATTRS = 10,
	SPAN_STATUS = 15,
	STATUS_MESSAGE = 2,
	STATUS_CODE = 3,
};

/* KeyValue and AnyValue (common.proto). */
enum {
	KV_KEY = 1,
	KV_VALUE = 2,
	AV_STRING = 1,
	AV_BOOL = 2,
	AV_INT = 3,
	AV_DOUBLE = 4,
};

size_t ferry__pb_varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

uint8_t *ferry__pb_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_fixed64(uint8_t *p, uint64_t v)
{
	/* Little-endian whatever the host's order. */
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

/* --- strings --------------------------------------------------------------
 * Protobuf strings are UTF-8.  Text that is not (a peer's attribute, an
 * application's) is sent as the JSON export writes it: each byte >= 0x80
 * as U+0080..U+00FF, two bytes each. */

/* Bytes >= 0x80 in @s, and its length in *@n: one pass.  Text without
 * any (keys, method names, addresses: nearly all of it) needs no more
 * checking. */
static size_t high_bytes(const char *s, size_t *n)
{
	size_t hi = 0, i = 0;

	for (; s[i]; i++)
		hi += (unsigned char)s[i] >= 0x80;
	*n = i;
	return hi;
}

static size_t str_len(const char *s)
{
	size_t n, hi = high_bytes(s, &n);

	if (!hi || ferry__utf8_ok((const unsigned char *)s, n))
		return n;
	return n + hi;
}

static uint8_t *put_str_bytes(uint8_t *p, const char *s)
{
	size_t n, hi = high_bytes(s, &n);

	if (!hi || ferry__utf8_ok((const unsigned char *)s, n)) {
		memcpy(p, s, n);
		return p + n;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80) {
			*p++ = c;
		} else {
			*p++ = (uint8_t)(0xc0 | c >> 6);
			*p++ = (uint8_t)(0x80 | (c & 0x3f));
		}
	}
	return p;
}

/* A length-delimited field's size: tag, length, body. */
static size_t len_field(size_t body)
{
	return 1 + ferry__pb_varint_len(body) + body;
}

static uint8_t *put_str_field(uint8_t *p, unsigned field, const char *s)
{
	*p++ = TAG(field, WT_LEN);
	p = ferry__pb_varint(p, str_len(s));
	return put_str_bytes(p, s);
}

static uint8_t *put_bytes_field(uint8_t *p, unsigned field, const uint8_t *b,
				size_t n)
{
	*p++ = TAG(field, WT_LEN);
	p = ferry__pb_varint(p, n);
	memcpy(p, b, n);
	return p + n;
}

/* --- attributes ---------------------------------------------------------- */

static size_t anyvalue_len(const struct ferry_trace_attr *a)
{
	switch (a->type) {
	case FERRY_ATTR_STRING:
		return len_field(str_len(a->v.s));
	case FERRY_ATTR_INT:
		/* int64 as a varint of its two's complement: 10 bytes when
		 * negative. */
		return 1 + ferry__pb_varint_len((uint64_t)a->v.i);
	case FERRY_ATTR_BOOL:
		return 2;
	default:
		return 9;
	}
}

static size_t kv_len(const struct ferry_trace_attr *a)
{
	return len_field(str_len(a->key)) + len_field(anyvalue_len(a));
}

static uint8_t *put_kv(uint8_t *p, unsigned field,
		       const struct ferry_trace_attr *a)
{
	uint64_t bits;

	*p++ = TAG(field, WT_LEN);
	p = ferry__pb_varint(p, kv_len(a));
	p = put_str_field(p, KV_KEY, a->key);
	*p++ = TAG(KV_VALUE, WT_LEN);
	p = ferry__pb_varint(p, anyvalue_len(a));
	/* A oneof member is written even at its default value (false, 0,
	 * ""): its presence is the value's type. */
	switch (a->type) {
	case FERRY_ATTR_STRING:
		return put_str_field(p, AV_STRING, a->v.s);
	case FERRY_ATTR_INT:
		*p++ = TAG(AV_INT, WT_VARINT);
		return ferry__pb_varint(p, (uint64_t)a->v.i);
	case FERRY_ATTR_BOOL:
		*p++ = TAG(AV_BOOL, WT_VARINT);
		*p++ = a->v.b ? 1 : 0;
		return p;
	default:
		*p++ = TAG(AV_DOUBLE, WT_I64);
		memcpy(&bits, &a->v.d, sizeof(bits));
		return put_fixed64(p, bits);
	}
}

/* --- spans --------------------------------------------------------------- */

static size_t status_len(const struct ferry_span_info *s)
{
	size_t n = 0;

	if (s->status_msg && s->status_msg[0])
		n += len_field(str_len(s->status_msg));
	if (s->status)
		n += 1 + ferry__pb_varint_len((uint64_t)s->status);
	return n;
}

size_t ferry__pb_span_len(const struct ferry_span_info *s, size_t more_len)
{
	size_t n = len_field(FERRY_TRACE_ID_LEN) + len_field(FERRY_SPAN_ID_LEN) +
		   more_len;

	if (s->tracestate && s->tracestate[0])
		n += len_field(str_len(s->tracestate));
	if (s->has_parent)
		n += len_field(FERRY_SPAN_ID_LEN);
	if (s->name && s->name[0])
		n += len_field(str_len(s->name));
	if (s->kind)
		n += 1 + ferry__pb_varint_len((uint64_t)s->kind);
	if (s->start_ns)
		n += 9;
	if (s->end_ns)
		n += 9;
	for (unsigned i = 0; i < s->n_attrs; i++)
		n += len_field(kv_len(&s->attrs[i]));
	if (s->dropped_attrs)
		n += 1 + ferry__pb_varint_len(s->dropped_attrs);
	/* Always there, as in the JSON export ("status":{"code":0}): an
	 * empty Status is a message present, and says UNSET. */
	n += len_field(status_len(s));
	return n;
}

uint8_t *ferry__pb_span_put(uint8_t *p, const struct ferry_span_info *s,
			    const uint8_t *more, size_t more_len)
{
	p = put_bytes_field(p, SPAN_TRACE_ID, s->trace_id, FERRY_TRACE_ID_LEN);
	p = put_bytes_field(p, SPAN_SPAN_ID, s->span_id, FERRY_SPAN_ID_LEN);
	if (s->tracestate && s->tracestate[0])
		p = put_str_field(p, SPAN_TRACE_STATE, s->tracestate);
	if (s->has_parent)
		p = put_bytes_field(p, SPAN_PARENT_SPAN_ID, s->parent_span_id,
				    FERRY_SPAN_ID_LEN);
	if (s->name && s->name[0])
		p = put_str_field(p, SPAN_NAME, s->name);
	if (s->kind) {
		*p++ = TAG(SPAN_KIND, WT_VARINT);
		p = ferry__pb_varint(p, (uint64_t)s->kind);
	}
	if (s->start_ns) {
		*p++ = TAG(SPAN_START, WT_I64);
		p = put_fixed64(p, s->start_ns);
	}
	if (s->end_ns) {
		*p++ = TAG(SPAN_END, WT_I64);
		p = put_fixed64(p, s->end_ns);
	}
	for (unsigned i = 0; i < s->n_attrs; i++)
		p = put_kv(p, SPAN_ATTRIBUTES, &s->attrs[i]);
	if (more_len) {
		memcpy(p, more, more_len);
		p += more_len;
	}
	if (s->dropped_attrs) {
		*p++ = TAG(SPAN_DROPPED_ATTRS, WT_VARINT);
		p = ferry__pb_varint(p, s->dropped_attrs);
	}
	*p++ = TAG(SPAN_STATUS, WT_LEN);
	p = ferry__pb_varint(p, status_len(s));
	if (s->status_msg && s->status_msg[0])
		p = put_str_field(p, STATUS_MESSAGE, s->status_msg);
	if (s->status) {
		*p++ = TAG(STATUS_CODE, WT_VARINT);
		p = ferry__pb_varint(p, (uint64_t)s->status);
	}
	return p;
}

/* --- the request around the spans ---------------------------------------- */

/* ExportTraceServiceRequest.resource_spans, ResourceSpans.resource and
 * .scope_spans, Resource.attributes, ScopeSpans.scope and .spans,
 * InstrumentationScope.name and .version: each is field 1 or 2 of its
 * message. */
enum {
	REQ_RESOURCE_SPANS = 1,
	RS_RESOURCE = 1,
	RS_SCOPE_SPANS = 2,
	RES_ATTRIBUTES = 1,
	SS_SCOPE = 1,
	SCOPE_NAME = 1,
	SCOPE_VERSION = 2,
};

uint8_t *ferry__pb_attr_put(uint8_t *p, const struct ferry_trace_attr *a)
{
	return put_kv(p, SPAN_ATTRIBUTES, a);
}

size_t ferry__pb_attr_len(const struct ferry_trace_attr *a)
{
	return len_field(kv_len(a));
}

uint8_t *ferry__pb_prefix(const struct ferry__kv *kv, unsigned n,
			  const char *scope_name, const char *scope_version,
			  size_t *res_len, size_t *scope_len)
{
	size_t res = 0, scope = 0;
	uint8_t *buf, *p;

	for (unsigned i = 0; i < n; i++) {
		struct ferry_trace_attr a = { .key = kv[i].key,
					      .type = FERRY_ATTR_STRING,
					      .v.s = kv[i].val };

		res += len_field(kv_len(&a));
	}
	if (scope_name[0])
		scope += len_field(str_len(scope_name));
	if (scope_version[0])
		scope += len_field(str_len(scope_version));
	*res_len = len_field(res);
	*scope_len = len_field(scope);
	buf = malloc(*res_len + *scope_len);
	if (!buf)
		return NULL;
	p = buf;
	*p++ = TAG(RS_RESOURCE, WT_LEN);
	p = ferry__pb_varint(p, res);
	for (unsigned i = 0; i < n; i++) {
		struct ferry_trace_attr a = { .key = kv[i].key,
					      .type = FERRY_ATTR_STRING,
					      .v.s = kv[i].val };

		p = put_kv(p, RES_ATTRIBUTES, &a);
	}
	*p++ = TAG(SS_SCOPE, WT_LEN);
	p = ferry__pb_varint(p, scope);
	if (scope_name[0])
		p = put_str_field(p, SCOPE_NAME, scope_name);
	if (scope_version[0])
		p = put_str_field(p, SCOPE_VERSION, scope_version);
	return buf;
}

uint8_t *ferry__pb_head(uint8_t *p, const uint8_t *pre, size_t res_len,
			size_t scope_len, size_t spans_len, bool framed)
{
	size_t ss = scope_len + spans_len;
	size_t rs = res_len + len_field(ss);
	size_t req = len_field(rs);

	if (framed)
		p = ferry__pb_varint(p, req);
	*p++ = TAG(REQ_RESOURCE_SPANS, WT_LEN);
	p = ferry__pb_varint(p, rs);
	memcpy(p, pre, res_len);
	p += res_len;
	*p++ = TAG(RS_SCOPE_SPANS, WT_LEN);
	p = ferry__pb_varint(p, ss);
	memcpy(p, pre + res_len, scope_len);
	return p + scope_len;
}
