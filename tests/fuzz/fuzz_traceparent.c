/* SPDX-License-Identifier: MIT */
/*
 * fuzz_traceparent.c - libFuzzer target for the trace-context parsers and
 * the export-file reader (control/trace_ctx.c, control/trace_json.c;
 * docs/tracing.md).
 *
 * Each input is used three ways:
 *   1. as a traceparent: ferry_traceparent_parse();
 *   2. as a tracestate: ferry_tracestate_parse();
 *   3. as one line of an export file: ferry__otlp_parse_line().
 * Besides the sanitizers' memory checks, it traps on a broken invariant:
 *   - results are only the documented codes;
 *   - an accepted traceparent has non-zero ids, is not version ff, and
 *     formats to 55 bytes that parse back to the same ids and sampled flag;
 *     an accepted version-00 value with flags 00 or 01 formats to exactly
 *     the input;
 *   - an accepted tracestate keeps at most 32 members and 512 bytes, and its
 *     canonical form parses back to itself (the parser is idempotent);
 *   - spans accepted from a line have 32/16 hex ids and start <= end.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/fuzz/meson.build).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/trace_internal.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void traceparent(const char *s, size_t n)
{
	struct ferry_trace_ctx c, d;
	char buf[FERRY_TRACEPARENT_TEXT_LEN + 1];
	int rc = ferry_traceparent_parse(s, n, &c);
	static const uint8_t zero[FERRY_TRACE_ID_LEN];

	CHECK(rc == 0 || rc == -EINVAL);
	if (rc)
		return;
	CHECK(n >= FERRY_TRACEPARENT_TEXT_LEN);
	CHECK(c.version != 0xff);
	CHECK(c.version != 0 || n == FERRY_TRACEPARENT_TEXT_LEN);
	CHECK(memcmp(c.trace_id, zero, FERRY_TRACE_ID_LEN) != 0);
	CHECK(memcmp(c.span_id, zero, FERRY_SPAN_ID_LEN) != 0);
	CHECK(ferry_traceparent_format(&c, buf, sizeof(buf)) ==
	      FERRY_TRACEPARENT_TEXT_LEN);
	CHECK(strlen(buf) == FERRY_TRACEPARENT_TEXT_LEN);
	CHECK(ferry_traceparent_parse(buf, FERRY_TRACEPARENT_TEXT_LEN, &d) == 0);
	CHECK(memcmp(c.trace_id, d.trace_id, FERRY_TRACE_ID_LEN) == 0);
	CHECK(memcmp(c.span_id, d.span_id, FERRY_SPAN_ID_LEN) == 0);
	CHECK(d.flags == (c.flags & FERRY_TRACE_FLAG_SAMPLED));
	if (c.version == 0 && c.flags <= 1)
		CHECK(memcmp(buf, s, FERRY_TRACEPARENT_TEXT_LEN) == 0);
}

static void tracestate(const char *s, size_t n)
{
	char out[FERRY_TRACESTATE_KEEP + 1], again[FERRY_TRACESTATE_KEEP + 1];
	size_t len = 99, len2;
	bool trunc, trunc2;
	int rc = ferry_tracestate_parse(s, n, out, sizeof(out), &len, &trunc);
	int rc2;

	CHECK(rc == -EINVAL || (rc >= 0 && rc <= FERRY_TRACESTATE_MEMBERS));
	if (rc < 0) {
		CHECK(out[0] == '\0');
		return;
	}
	CHECK(len <= FERRY_TRACESTATE_KEEP && strlen(out) == len);
	CHECK(rc > 0 || len == 0);
	rc2 = ferry_tracestate_parse(out, len, again, sizeof(again), &len2, &trunc2);
	CHECK(rc2 == rc && len2 == len && !trunc2);
	CHECK(memcmp(out, again, len) == 0);
}

static void export_line(const char *s, size_t n)
{
	struct ferry__otlp_span *sp = NULL;
	size_t cnt = 0, cap = 0;
	char err[160];
	int rc = ferry__otlp_parse_line(s, n, &sp, &cnt, &cap, err, sizeof(err));

	CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc == 0)
		for (size_t i = 0; i < cnt; i++) {
			CHECK(strlen(sp[i].trace_id) == 32);
			CHECK(strlen(sp[i].span_id) == 16);
			CHECK(sp[i].parent_id[0] == '\0' ||
			      strlen(sp[i].parent_id) == 16);
			CHECK(sp[i].start_ns <= sp[i].end_ns);
		}
	else
		CHECK(cnt == 0 && err[0] != '\0');
	free(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so any over-read is caught. */
	char *s = malloc(size ? size : 1);

	if (!s)
		return 0;
	if (size)
		memcpy(s, data, size);
	traceparent(s, size);
	tracestate(s, size);
	export_line(s, size);
	free(s);
	return 0;
}
