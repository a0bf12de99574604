/* SPDX-License-Identifier: MIT */
/*
 * OTLP export (docs/tracing.md, "Protobuf", "Configuration"): the protobuf
 * encoder byte for byte, the protobuf export file's framing and its call
 * spans, and the settings from the configuration and the OTEL_*
 * environment, bad values included.  The OTLP/HTTP exporter against a real
 * receiver is tests/otlp_http.py.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/otlp.h"
#include "control/trace_internal.h"

/* "0a10..." into bytes; returns their count. */
static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
	return n;
}

static void assert_bytes(const uint8_t *got, size_t n, const char *want_hex)
{
	uint8_t want[1024];
	size_t m = unhex(want_hex, want);

	cr_assert_eq(n, m, "length %zu, want %zu", n, m);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(got[i], want[i], "byte %zu: %02x, want %02x", i,
			     got[i], want[i]);
}

Test(otlp_pb, varints)
{
	const struct { uint64_t v; const char *hex; } cases[] = {
		{ 0, "00" }, { 1, "01" }, { 127, "7f" }, { 128, "8001" },
		{ 300, "ac02" }, { 31850, "eaf801" },
		{ UINT64_MAX, "ffffffffffffffffff01" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[FERRY__PB_VARINT_MAX];
		uint8_t *e = ferry__pb_varint(buf, cases[i].v);

		cr_assert_eq(ferry__pb_varint_len(cases[i].v), (size_t)(e - buf));
		assert_bytes(buf, (size_t)(e - buf), cases[i].hex);
	}
}

/*
 * The expected bytes are what `protoc --encode=opentelemetry.proto.trace.v1.Span`
 * writes for this span's text format with the official opentelemetry-proto
 * definitions (commit ac2c4b5; the text is in docs/tracing.md, "Protobuf"):
 * every field type the tracer writes, a negative int (10-byte varint), a
 * oneof bool at false (written), and text that is not UTF-8 ("caf\xe9",
 * sent as "café", as the JSON export writes it).
 */
Test(otlp_pb, span_matches_protoc)
{
	const struct ferry_trace_attr attrs[] = {
		{ "rpc.system", FERRY_ATTR_STRING, { .s = "ferry" } },
		{ "server.port", FERRY_ATTR_INT, { .i = 31850 } },
		{ "neg", FERRY_ATTR_INT, { .i = -1 } },
		{ "ok", FERRY_ATTR_BOOL, { .b = false } },
		{ "d", FERRY_ATTR_DOUBLE, { .d = 0.5 } },
		{ "latin", FERRY_ATTR_STRING, { .s = "caf\xe9" } },
	};
	struct ferry_span_info s = {
		.trace_id = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
		.span_id = { 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18 },
		.parent_span_id = { 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28 },
		.has_parent = true, .kind = FERRY_SPAN_KIND_CLIENT,
		.name = "ferry/7", .tracestate = "k=v",
		.start_ns = 1700000000000000000ull,
		.end_ns = 1700000000000000500ull,
		.status = FERRY_SPAN_STATUS_ERROR, .status_msg = "boom",
		.attrs = attrs, .n_attrs = 6, .dropped_attrs = 2,
	};
	uint8_t buf[512], *e;
	size_t n = ferry__pb_span_len(&s, 0);

	cr_assert_lt(n, sizeof(buf));
	e = ferry__pb_span_put(buf, &s, NULL, 0);
	cr_assert_eq((size_t)(e - buf), n);
	assert_bytes(buf, n,
		"0a100102030405060708090a0b0c0d0e0f10120811121314151617181a036b"
		"3d76220821222324252627282a0766657272792f3730033900002a36fe9c97"
		"1741f4012a36fe9c97174a150a0a7270632e73797374656d12070a05666572"
		"72794a130a0b7365727665722e706f7274120418eaf8014a120a036e656712"
		"0b18ffffffffffffffffff014a080a026f6b120210004a0e0a016412092100"
		"0000000000e03f4a100a056c6174696e12070a05636166c3a950027a081204"
		"626f6f6d1802");
}

/* A whole request: resource (service.name and one more), scope, one
 * root span with UNSET status (an empty Status, still written), as
 * protoc --encode=...ExportTraceServiceRequest writes it. */
Test(otlp_pb, request_matches_protoc)
{
	struct ferry__kv kv[] = { { "service.name", "svc" }, { "team", "a,b" } };
	struct ferry_span_info s = {
		.trace_id = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
		.span_id = { 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18 },
		.kind = FERRY_SPAN_KIND_SERVER, .name = "ferry.session",
		.tracestate = "", .status_msg = "", .start_ns = 5, .end_ns = 6,
	};
	size_t res_len, scope_len, sl = ferry__pb_span_len(&s, 0);
	uint8_t *pre = ferry__pb_prefix(kv, 2, "ferry", "0.1.0", &res_len,
					&scope_len);
	uint8_t spans[256], buf[512], *e, *p = spans;
	size_t n;

	cr_assert_not_null(pre);
	*p++ = 0x12; /* ScopeSpans.spans, length-delimited */
	p = ferry__pb_varint(p, sl);
	p = ferry__pb_span_put(p, &s, NULL, 0);
	e = ferry__pb_head(buf, pre, res_len, scope_len, (size_t)(p - spans),
			   false);
	memcpy(e, spans, (size_t)(p - spans));
	n = (size_t)(e - buf) + (size_t)(p - spans);
	assert_bytes(buf, n,
		"0a7d0a260a150a0c736572766963652e6e616d6512050a037376630a0d0a04"
		"7465616d12050a03612c6212530a0e0a0566657272791205302e312e301241"
		"0a100102030405060708090a0b0c0d0e0f10120811121314151617182a0d66"
		"657272792e73657373696f6e300239050000000000000041060000000000"
		"00007a00");
	/* Framed, as in the file: the same bytes after their length. */
	e = ferry__pb_head(buf, pre, res_len, scope_len, (size_t)(p - spans),
			   true);
	cr_assert_eq(buf[0], 0x7f);
	cr_assert_eq(buf[1], 0x0a);
	free(pre);
}

/* --- the protobuf export file -------------------------------------------- */

static uint64_t fixed_clock(void *arg)
{
	uint64_t *tick = arg;

	return 1700000000000000000ull + (*tick += 1000);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	uint8_t *b;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	cr_assert_eq(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static uint64_t rd_varint(const uint8_t *b, size_t len, size_t *i)
{
	uint64_t v = 0;

	for (int shift = 0; *i < len && shift < 64; shift += 7) {
		uint8_t c = b[(*i)++];

		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	cr_assert_fail("truncated varint");
	return 0;
}

/* The spans of a length-delimited file (each frame one request with one
 * ResourceSpans of one ScopeSpans), their ids zeroed (they are random),
 * appended to @out; returns the count.  Also checks the framing. */
static unsigned file_spans(const uint8_t *b, size_t len, uint8_t *out,
			   size_t *outlen)
{
	unsigned spans = 0;
	size_t i = 0;

	while (i < len) {
		size_t n = rd_varint(b, len, &i), end = i + n;

		cr_assert_leq(end, len, "frame past the end");
		/* request: 0a LEN ResourceSpans { 0a resource, 12 scope_spans } */
		cr_assert_eq(b[i++], 0x0a);
		rd_varint(b, len, &i);
		cr_assert_eq(b[i++], 0x0a);
		i += rd_varint(b, len, &i);
		cr_assert_eq(b[i++], 0x12);
		rd_varint(b, len, &i);
		cr_assert_eq(b[i++], 0x0a); /* scope */
		i += rd_varint(b, len, &i);
		while (i < end) {
			size_t sl, s0;

			cr_assert_eq(b[i++], 0x12); /* a span */
			sl = rd_varint(b, len, &i);
			s0 = *outlen;
			memcpy(out + *outlen, b + i, sl);
			*outlen += sl;
			/* trace_id, span_id: the first two fields, then a
			 * parent_span_id (tag 0x22) if there is one. */
			memset(out + s0 + 2, 0, 16);
			memset(out + s0 + 20, 0, 8);
			if (out[s0 + 28] == 0x22)
				memset(out + s0 + 30, 0, 8);
			i += sl;
			spans++;
		}
		cr_assert_eq(i, end);
	}
	return spans;
}

static void on_event(void *arg, int type, const struct ferry_span_info *s,
		     const struct ferry_trace_attr *a)
{
	(void)arg;
	(void)type;
	(void)s;
	(void)a;
}

/* A call span written straight from its CALL record (no callback) and one
 * that went the general way (a callback) encode to the same bytes; the
 * file is length-delimited requests. */
Test(otlp_pb, call_record_export_matches_the_general_path)
{
	uint8_t *out[2];
	size_t outlen[2];
	unsigned spans[2];

	for (int k = 0; k < 2; k++) {
		char path[] = "/tmp/test_otlp_XXXXXX";
		struct ferry_tracer_config c;
		struct ferry_tracer *t;
		struct ferry_trace_ring *r;
		struct ferry_span_session_args sa = {
			.kind = FERRY_SPAN_KIND_SERVER, .peer_ip = htonl(0x7f000001),
			.peer_port = 4000, .server_port = 31850,
		};
		uint64_t tick = 0;
		ferry_span_t s, cs;
		uint8_t *b;
		size_t len;
		int fd = mkstemp(path);

		cr_assert_geq(fd, 0);
		close(fd);
		ferry_tracer_config_init(&c);
		c.use_env = false;
		c.export_path = path;
		c.export_format = FERRY_TRACE_FORMAT_PROTOBUF;
		c.on_event = k ? on_event : NULL;
		c.clock = fixed_clock;
		c.clock_arg = &tick;
		cr_assert_eq(ferry_tracer_create(&c, &t), 0);
		cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
		s = ferry_span_session_open(r, &sa);
		for (unsigned m = 0; m < 3; m++) {
			cs = ferry_span_call_start(r, s, m ? 7 * m : 65535, NULL);
			ferry_span_call_end(r, cs, 0);
		}
		ferry_tracer_drain(t);
		ferry_trace_ring_destroy(r);
		ferry_tracer_destroy(t);
		b = slurp(path, &len);
		unlink(path);
		out[k] = malloc(len);
		outlen[k] = 0;
		spans[k] = file_spans(b, len, out[k], &outlen[k]);
		free(b);
	}
	/* Three calls and their session. */
	cr_assert_eq(spans[0], 4);
	cr_assert_eq(spans[1], 4);
	cr_assert_eq(outlen[0], outlen[1]);
	cr_assert_eq(memcmp(out[0], out[1], outlen[0]), 0);
	cr_assert(memmem(out[0], outlen[0], "ferry/65535", 11));
	free(out[0]);
	free(out[1]);
}

/* --- settings: the configuration and the OTEL_* environment -------------- */

/* A fake environment: NAME=value pairs, NULL-terminated. */
static const char *env_tab(const char *name, void *arg)
{
	const char *const *kv = arg;

	for (; kv[0]; kv += 2)
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	return NULL;
}

static int resolve(const char *const *env, struct ferry__otlp_settings *s,
		   char *err, size_t cap)
{
	struct ferry_tracer_config c;

	ferry_tracer_config_init(&c);
	return ferry__otlp_resolve(&c, env_tab, (void *)env, s, err, cap);
}

Test(otlp_env, endpoints)
{
	const char *base[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/", NULL };
	const char *path[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/otel", NULL };
	const char *both[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318",
			       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/x", NULL };
	const char *empty[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "", NULL };
	const char *none[] = { NULL };
	struct ferry__otlp_settings s;
	struct ferry__url u;
	char err[256];

	/* The base URL gets /v1/traces (one slash); the traces URL is used
	 * as it is, and wins; an empty variable is unset. */
	cr_assert_eq(resolve(base, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(s.endpoint, "http://c:4318/v1/traces");
	cr_assert_eq(s.protocol, FERRY_OTLP_HTTP_PROTOBUF);
	cr_assert_eq(s.timeout_ms, 10000);
	ferry__otlp_settings_free(&s);
	cr_assert_eq(resolve(path, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(s.endpoint, "http://c:4318/otel/v1/traces");
	ferry__otlp_settings_free(&s);
	cr_assert_eq(resolve(both, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(s.endpoint, "http://t:1/x");
	ferry__otlp_settings_free(&s);
	cr_assert_eq(resolve(empty, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(s.endpoint);
	ferry__otlp_settings_free(&s);
	cr_assert_eq(resolve(none, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(s.endpoint);
	cr_assert_str_eq(s.service, "ferry");
	ferry__otlp_settings_free(&s);

	cr_assert_eq(ferry__url_parse("http://[::1]:4318", &u, err, sizeof(err)), 0);
	cr_assert_str_eq(u.host, "::1");
	cr_assert_str_eq(u.port, "4318");
	cr_assert_str_eq(u.path, "/");
	cr_assert_str_eq(u.authority, "[::1]:4318");
	cr_assert_eq(ferry__url_parse("http://h?q=1", &u, err, sizeof(err)), 0);
	cr_assert_str_eq(u.port, "80");
	cr_assert_str_eq(u.path, "/?q=1");
}

Test(otlp_env, bad_urls_are_refused_with_a_reason)
{
	const char *bad[] = {
		"https://c:4318", "ftp://c", "c:4318", "http://", "http://:80",
		"http://c:", "http://c:0", "http://c:65536", "http://c:12a",
		"http://c:123456", "http://[::1", "http://[::1]x", "http://u@c",
		"http://c/a b", "http://c/#f", "http://c\x01/", "http://c_d",
		"HTTP://c", "http://c/\x7f", "",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *env[] = { "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad[i],
				      NULL };
		struct ferry__otlp_settings s;
		char err[256] = "";
		int rc = resolve(env, &s, err, sizeof(err));

		ferry__otlp_settings_free(&s);
		if (!bad[i][0]) {
			/* Empty: unset, not an error. */
			cr_assert_eq(rc, 0);
			continue;
		}
		cr_assert_eq(rc, -EINVAL, "\"%s\" accepted", bad[i]);
		cr_assert(strstr(err, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
			  "\"%s\": %s", bad[i], err);
	}
	{
		const char *env[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "https://c", NULL };
		struct ferry__otlp_settings s;
		char err[256];

		cr_assert_eq(resolve(env, &s, err, sizeof(err)), -EINVAL);
		cr_assert(strstr(err, "https is not supported"), "%s", err);
		ferry__otlp_settings_free(&s);
	}
}

Test(otlp_env, protocols)
{
	const char *good[][2] = { { "http/protobuf", "1" }, { "http/json", "2" } };
	const char *bad[] = { "grpc", "HTTP/PROTOBUF", "http/protobuf ",
			      "http/json2", "json", "http" };
	struct ferry__otlp_settings s;
	char err[256];

	for (size_t i = 0; i < 2; i++) {
		const char *env[] = { "OTEL_EXPORTER_OTLP_PROTOCOL", good[i][0], NULL };

		cr_assert_eq(resolve(env, &s, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(s.protocol, atoi(good[i][1]));
		ferry__otlp_settings_free(&s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *env[] = { "OTEL_EXPORTER_OTLP_PROTOCOL", bad[i], NULL };

		cr_assert_eq(resolve(env, &s, err, sizeof(err)), -EINVAL,
			     "\"%s\" accepted", bad[i]);
		cr_assert(strstr(err, "OTEL_EXPORTER_OTLP_PROTOCOL"), "%s", err);
		ferry__otlp_settings_free(&s);
	}
	{
		/* The traces variable wins over the general one. */
		const char *env[] = { "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc",
				      "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json",
				      NULL };

		cr_assert_eq(resolve(env, &s, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(s.protocol, FERRY_OTLP_HTTP_JSON);
		ferry__otlp_settings_free(&s);
	}
	{
		const char *env[] = { "OTEL_EXPORTER_OTLP_TIMEOUT", "10s", NULL };

		cr_assert_eq(resolve(env, &s, err, sizeof(err)), -EINVAL);
		ferry__otlp_settings_free(&s);
	}
}

Test(otlp_env, resource_attributes_and_service_name)
{
	const char *env[] = {
		"OTEL_RESOURCE_ATTRIBUTES",
		" team = a%2Cb%20c ,service.name=from-attrs,x=1,x=2,e=",
		NULL };
	const char *named[] = { "OTEL_RESOURCE_ATTRIBUTES", "service.name=a",
				"OTEL_SERVICE_NAME", "from-env", NULL };
	const char *bad[] = { "k", "=v", "k=%zz", "k=%4", "k=%00", "k=v,,m",
			      "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,"
			      "l=12,m=13,n=14,o=15,p=16,q=17" };
	struct ferry__otlp_settings s;
	char err[256];

	cr_assert_eq(resolve(env, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(s.service, "from-attrs");
	cr_assert_eq(s.n_res, 3);
	cr_assert_str_eq(s.res[0].key, "team");
	cr_assert_str_eq(s.res[0].val, "a,b c");
	cr_assert_str_eq(s.res[1].key, "x");
	cr_assert_str_eq(s.res[1].val, "2");
	cr_assert_str_eq(s.res[2].val, "");
	ferry__otlp_settings_free(&s);
	/* OTEL_SERVICE_NAME before the attributes' service.name. */
	cr_assert_eq(resolve(named, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(s.service, "from-env");
	ferry__otlp_settings_free(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *e2[] = { "OTEL_RESOURCE_ATTRIBUTES", bad[i], NULL };

		cr_assert_eq(resolve(e2, &s, err, sizeof(err)), -EINVAL,
			     "\"%s\" accepted", bad[i]);
		cr_assert(strstr(err, "OTEL_RESOURCE_ATTRIBUTES"), "%s", err);
		ferry__otlp_settings_free(&s);
	}
}

/* The configuration's fields come before the environment, and without
 * use_env the environment is not read at all. */
Test(otlp_env, config_fields_win)
{
	const char *env[] = { "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env/x",
			      "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc",
			      "OTEL_SERVICE_NAME", "env", NULL };
	struct ferry_tracer_config c;
	struct ferry__otlp_settings s;
	char err[256];

	ferry_tracer_config_init(&c);
	c.otlp_endpoint = "http://cfg:1/t";
	c.otlp_protocol = FERRY_OTLP_HTTP_JSON;
	c.service_name = "cfg";
	cr_assert_eq(ferry__otlp_resolve(&c, env_tab, (void *)env, &s, err,
					 sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(s.endpoint, "http://cfg:1/t");
	cr_assert_eq(s.protocol, FERRY_OTLP_HTTP_JSON);
	cr_assert_str_eq(s.service, "cfg");
	ferry__otlp_settings_free(&s);
	ferry_tracer_config_init(&c);
	c.use_env = false;
	cr_assert_eq(ferry__otlp_resolve(&c, env_tab, (void *)env, &s, err,
					 sizeof(err)), 0, "%s", err);
	cr_assert_null(s.endpoint);
	cr_assert_str_eq(s.service, "ferry");
	ferry__otlp_settings_free(&s);
	c.otlp_protocol = 7;
	cr_assert_eq(ferry__otlp_resolve(&c, NULL, NULL, &s, err, sizeof(err)),
		     -EINVAL);
	ferry__otlp_settings_free(&s);
	/* The public check says why, from the real environment. */
	ferry_tracer_config_init(&c);
	cr_assert_eq(setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1), 0);
	cr_assert_eq(ferry_tracer_config_check(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "grpc"), "%s", err);
	cr_assert_eq(ferry_tracer_create(&c, &(struct ferry_tracer *){ 0 }), -EINVAL);
	unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
}

/* --- the exporter's queue ------------------------------------------------ */

/* A collector that takes the connection and never answers (a listening
 * socket nobody accepts from): the sender waits on its first body, the
 * queue (of 1) fills, and what does not fit is dropped at once and
 * counted; at the stop, after the timeout, the rest too.  Nothing is
 * lost uncounted and the enqueue never waits. */
Test(otlp_exporter, full_queue_drops_and_counts)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct ferry__otlp_settings s = { .protocol = FERRY_OTLP_HTTP_PROTOBUF,
					  .timeout_ms = 300, .queue_max = 1 };
	struct ferry__otlp_stats st;
	struct ferry__otlp *o;
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/traces",
		 ntohs(sa.sin_port));
	s.endpoint = url;
	cr_assert_eq(ferry__otlp_start(&s, 0, &o), 0);
	/* One in flight at most, one queued: of three, one is dropped. */
	for (int i = 0; i < 3; i++)
		ferry__otlp_enqueue(o, &iov, 1, 10);
	ferry__otlp_stats(o, &st);
	cr_assert_geq(st.spans_dropped, 10);
	cr_assert_eq(st.spans_sent, 0);
	cr_assert_eq(st.spans_dropped + st.queued_spans, 30);
	ferry__otlp_stop(o, &st);
	cr_assert_eq(st.spans_sent, 0);
	cr_assert_eq(st.spans_dropped, 30);
	cr_assert_eq(st.queued_spans, 0);
	cr_assert_geq(st.requests, 1);
	close(fd);
}

/* With a cap, a protobuf file is rotated between messages, never inside
 * one: every file is whole length-delimited messages, and together they
 * hold every span. */
Test(otlp_pb, rotation_keeps_messages_whole)
{
	char path[] = "/tmp/test_otlp_XXXXXX", name[64];
	struct ferry_tracer_config c;
	struct ferry_tracer *t;
	struct ferry_trace_ring *r;
	struct ferry_tracer_stats st;
	struct ferry_span_session_args sa = { .kind = FERRY_SPAN_KIND_CLIENT,
					      .peer_port = 1 };
	uint64_t tick = 0;
	unsigned total = 0, files = 0;
	ferry_span_t s;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	close(fd);
	ferry_tracer_config_init(&c);
	c.use_env = false;
	c.export_path = path;
	c.export_format = FERRY_TRACE_FORMAT_PROTOBUF;
	c.export_max_bytes = 4096;
	c.export_keep = 64;
	c.clock = fixed_clock;
	c.clock_arg = &tick;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	s = ferry_span_session_open(r, &sa);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 40; i++)
			ferry_span_call_end(r, ferry_span_call_start(r, s, 3, NULL), 0);
		ferry_tracer_drain(t);
	}
	ferry_trace_ring_destroy(r);
	ferry_tracer_stats(t, &st);
	ferry_tracer_destroy(t);
	for (unsigned k = 0; k <= 64; k++) {
		uint8_t *b, *out;
		size_t len, outlen = 0;

		if (k)
			snprintf(name, sizeof(name), "%s.%u", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		if (access(name, F_OK) != 0)
			continue;
		b = slurp(name, &len);
		cr_assert_leq(len, 4096, "%s: %zu bytes", name, len);
		out = malloc(len + 1);
		total += file_spans(b, len, out, &outlen);
		files++;
		free(out);
		free(b);
		unlink(name);
	}
	cr_assert_gt(st.export_rotations, 0);
	cr_assert_gt(files, 1);
	cr_assert_eq(total, st.spans_exported);
	cr_assert_eq(total, 201);
}
