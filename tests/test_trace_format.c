/* SPDX-License-Identifier: MIT */
/*
 * test_trace_format.c - Criterion tests for the text tracing reads
 * and writes (control/trace_ctx.c, control/trace_json.c, docs/tracing.md):
 * traceparent and tracestate parsing (every malformed case, valid ones,
 * format/parse round trips), and OTLP/JSON export read back and checked
 * against the protobuf JSON mapping, with the checker's own JSON parser.
 */
#include <criterion/criterion.h>

#include "trace_util.h"

/* --- traceparent ----------------------------------------------------------- */

Test(traceparent, valid)
{
	struct ferry_trace_ctx c;
	char t[33], s[17];

	cr_assert_eq(tp_parse(TP_S, &c), 0);
	hex(c.trace_id, 16, t);
	hex(c.span_id, 8, s);
	cr_assert_str_eq(t, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_assert_str_eq(s, "00f067aa0ba902b7");
	cr_assert_eq(c.flags, 1);
	cr_assert_eq(c.version, 0);
	cr_assert_eq(tp_parse(TP_U, &c), 0);
	cr_assert_eq(c.flags, 0);
	/* Unknown flag bits are accepted (and not forwarded). */
	cr_assert_eq(tp_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", &c), 0);
	cr_assert_eq(c.flags, 0xff);
	/* A later version: same 55 bytes, or more after a '-'. */
	cr_assert_eq(tp_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
	cr_assert_eq(c.version, 0xcc);
	cr_assert_eq(tp_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds", &c), 0);
	cr_assert_eq(c.flags, 1);
	cr_assert_eq(tp_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-", &c), 0);
}

Test(traceparent, malformed)
{
	static const char *const bad[] = {
		"",
		"00",
		/* wrong length for version 00 */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
		" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		/* non-hex */
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
		"0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		/* upper case */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
		"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		/* all-zero ids */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		/* version ff */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		/* unknown version, bad layout */
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"cc_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		/* wrong delimiters */
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
		/* bad flags */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-.1",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7--1",
	};
	struct ferry_trace_ctx c;

	memset(&c, 0x5a, sizeof(c));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(tp_parse(bad[i], &c), -EINVAL, "accepted '%s'", bad[i]);
	/* A NUL inside is just a bad byte. */
	cr_assert_eq(ferry_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736\0"
					     "00f067aa0ba902b7-01", 55, &c), -EINVAL);
	cr_assert_eq(ferry_traceparent_parse(NULL, 0, &c), -EINVAL);
	cr_assert_eq(ferry_traceparent_parse(NULL, 55, &c), -EINVAL);
	/* Failure leaves @out alone. */
	cr_assert_eq(c.flags, 0x5a);
}

Test(traceparent, round_trip)
{
	struct ferry_trace_ctx c, d;
	char buf[FERRY_TRACEPARENT_TEXT_LEN + 1];

	cr_assert_eq(tp_parse(TP_S, &c), 0);
	cr_assert_eq(ferry_traceparent_format(&c, buf, sizeof(buf)), 55);
	cr_assert_str_eq(buf, TP_S);
	cr_assert_eq(tp_parse(TP_U, &c), 0);
	cr_assert_eq(ferry_traceparent_format(&c, buf, sizeof(buf)), 55);
	cr_assert_str_eq(buf, TP_U);
	/* Reserved flag bits and a later version are not forwarded. */
	cr_assert_eq(tp_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fb-x", &c), 0);
	cr_assert_eq(ferry_traceparent_format(&c, buf, sizeof(buf)), 55);
	cr_assert_str_eq(buf, TP_S);
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen("/dev/urandom", "r");

		cr_assert(f && fread(&c, sizeof(c), 1, f) == 1);
		fclose(f);
		c.trace_id[0] |= 1;
		c.span_id[0] |= 1;
		cr_assert_eq(ferry_traceparent_format(&c, buf, sizeof(buf)), 55);
		cr_assert_eq(tp_parse(buf, &d), 0);
		cr_assert_eq(memcmp(c.trace_id, d.trace_id, 16), 0);
		cr_assert_eq(memcmp(c.span_id, d.span_id, 8), 0);
		cr_assert_eq(d.flags, c.flags & 1);
	}
	cr_assert_eq(ferry_traceparent_format(&c, buf, 55), -ENOBUFS);
	memset(c.span_id, 0, 8);
	cr_assert_eq(ferry_traceparent_format(&c, buf, sizeof(buf)), -EINVAL);
}

/* --- tracestate ------------------------------------------------------------ */

Test(tracestate, valid_and_canonical)
{
	char out[FERRY_TRACESTATE_KEEP + 1];
	size_t n;
	bool t;

	cr_assert_eq(ts_parse("congo=t61rcWkgMzE", out, sizeof(out), &n, &t), 1);
	cr_assert_str_eq(out, "congo=t61rcWkgMzE");
	cr_assert_eq(n, strlen(out));
	cr_assert_eq(ts_parse(" rojo=00f067aa0ba902b7 ,\t,congo=t61rcWkgMzE,, "
			      "tenant1@ferry=a b", out, sizeof(out), &n, &t), 3);
	cr_assert_str_eq(out, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant1@ferry=a b");
	cr_assert_not(t);
	cr_assert_eq(ts_parse("", out, sizeof(out), &n, &t), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(ts_parse(" , ", out, sizeof(out), &n, &t), 0);
}

Test(tracestate, malformed)
{
	static const char *const bad[] = {
		"Congo=1",            /* upper-case key */
		"1abc=1",             /* simple key must start with a letter */
		"congo",              /* no '=' */
		"congo=",             /* empty value */
		"congo=a=b",          /* '=' in value */
		"congo=a,congo=b",    /* duplicate key */
		"a@=1",               /* empty system id */
		"@sys=1",             /* empty tenant id */
		"t@Sys=1",            /* system id starts upper case */
		"t@sys567890123456=1", /* system id longer than 14 */
		"co ngo=1",           /* blank in key */
		"congo=\x01",         /* control character */
		"congo=\xc3\xa9",     /* beyond 0x7e */
	};
	char out[FERRY_TRACESTATE_KEEP + 1];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(ts_parse(bad[i], out, sizeof(out), &n, NULL), -EINVAL,
			     "accepted '%s'", bad[i]);
		cr_expect_str_eq(out, "");
	}
}

Test(tracestate, limits)
{
	char in[4096], out[FERRY_TRACESTATE_KEEP + 1], big[200];
	size_t n, o = 0;
	bool t;

	/* 40 members: the first 32 are kept. */
	for (int i = 0; i < 40; i++)
		o += (size_t)sprintf(in + o, "%sk%d=v", i ? "," : "", i);
	cr_assert_eq(ts_parse(in, out, sizeof(out), &n, &t), 32);
	cr_assert(t);
	cr_assert(strstr(out, "k31=v"));
	cr_assert_null(strstr(out, "k32=v"));
	/* Over 512 bytes: the long (> 128) member goes first. */
	memset(big, 'x', 150);
	big[150] = '\0';
	o = (size_t)sprintf(in, "a=1,long=%s", big);
	for (int i = 0; i < 4; i++)
		o += (size_t)sprintf(in + o, ",m%d=%.100s", i, big);
	cr_assert_gt(o, 512);
	cr_assert_eq(ts_parse(in, out, sizeof(out), &n, &t), 5);
	cr_assert(t);
	cr_assert_null(strstr(out, "long="));
	cr_assert(strstr(out, "m3="));
	cr_assert_leq(n, 512);
	/* Then from the end. */
	o = 0;
	for (int i = 0; i < 8; i++)
		o += (size_t)sprintf(in + o, "%sm%d=%.100s", i ? "," : "", i, big);
	cr_assert_eq(ts_parse(in, out, sizeof(out), &n, &t), 4);
	cr_assert(strstr(out, "m3=") && !strstr(out, "m4="));
	cr_assert_eq(ts_parse(in, out, 8, &n, &t), -ENOBUFS);
}

/* --- OTLP/JSON export --------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	cr_assert(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

Test(otlp, export_file_follows_the_mapping)
{
	char path[] = "/tmp/test_trace_XXXXXX";
	int fd = mkstemp(path);
	struct ferry_trace_ring *r;
	struct ferry_tracer *t;
	struct ferry__otlp_span *sp = NULL;
	size_t n = 0, cap = 0, len, lines = 0;
	char *text, *line, *save = NULL, err[160];
	ferry_span_t s, c;

	cr_assert_geq(fd, 0);
	close(fd);
	t = mk(1.0, 0, path, &r);
	s = client_open(r, TP_S);
	c = ferry_span_call_start(r, s, 5, NULL);
	ferry_span_set_str(r, c, "weird", "q\"uote\\ nl\n ctl\x01 bad\xff utf8\xc3\xa9");
	ferry_span_set_double(r, c, "nan", 0.0 / 0.0);
	ferry_span_set_int(r, c, "big", INT64_MIN);
	ferry_span_call_end(r, c, -ETIME);
	ferry_tracer_drain(t);
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	ferry_tracer_drain(t);
	s = server_open(r, NULL, NULL);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);

	text = slurp(path, &len);
	cr_assert_gt(len, 0);
	cr_assert_eq(text[len - 1], '\n');
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cr_assert_eq(ferry__otlp_parse_line(line, strlen(line), &sp, &n, &cap,
						    err, sizeof(err)), 0, "%s", err);
		lines++;
	}
	/* One TracesData per drain that closed something. */
	cr_assert_eq(lines, 3);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(sp[0].name, "ferry/5");
	cr_assert_eq(sp[0].kind, 3);
	cr_assert_eq(sp[0].status, 2);
	cr_assert_str_eq(sp[0].error_type, "ETIME");
	cr_assert_str_eq(sp[0].rpc_method, "5");
	cr_assert_str_eq(sp[0].parent_id, sp[1].span_id);
	cr_assert_str_eq(sp[1].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_assert_str_eq(sp[1].parent_id, "00f067aa0ba902b7");
	cr_assert_str_eq(sp[1].service, "ferry");
	cr_assert_eq(sp[1].status, 0);
	cr_assert_eq(sp[2].kind, 2);
	cr_assert_str_eq(sp[2].parent_id, "");
	cr_assert_str_eq(sp[2].status_msg, "endpoint shut down");
	for (size_t i = 0; i < n; i++)
		cr_assert_leq(sp[i].start_ns, sp[i].end_ns);
	free(sp);
	free(text);
	/* And the raw text: the mapping's spellings. */
	text = slurp(path, &len);
	cr_assert(strstr(text, "\"kind\":3,\"startTimeUnixNano\":\""));
	cr_assert(strstr(text, "{\"intValue\":\"-9223372036854775808\"}"));
	cr_assert(strstr(text, "{\"doubleValue\":\"NaN\"}"));
	cr_assert(strstr(text, "\"status\":{\"code\":2,\"message\":\"Timer expired\"}"));
	cr_assert(strstr(text, "\\\"uote\\\\ nl\\u000a ctl\\u0001 bad\\u00ff"));
	free(text);
	unlink(path);
}

static uint64_t fixed_clock(void *arg)
{
	return (*(uint64_t *)arg)++ * 1000 + 1700000000000000000ull;
}

/* Blank the hex of every id in @s, which are random. */
static void blank_ids(char *s)
{
	static const struct { const char *key; size_t n; } ids[] = {
		{ "\"traceId\":\"", 32 },
		{ "\"spanId\":\"", 16 },
		{ "\"parentSpanId\":\"", 16 },
	};

	for (size_t k = 0; k < 3; k++)
		for (char *p = s; (p = strstr(p, ids[k].key)) != NULL;) {
			p += strlen(ids[k].key);
			memset(p, 'x', ids[k].n);
		}
}

/* A call span that nothing enriched is exported straight from its one
 * record (no callback); with a callback it goes the general way.  The
 * bytes must be the same. */
Test(otlp, call_record_export_matches_the_general_path)
{
	char path[2][32];
	char *text[2];
	size_t len[2];

	for (int k = 0; k < 2; k++) {
		struct ferry_tracer_config c;
		struct ferry_tracer *t;
		struct ferry_trace_ring *r;
		uint64_t tick = 0;
		ferry_span_t s, cs[3];
		int fd;

		snprintf(path[k], sizeof(path[k]), "/tmp/test_trace_XXXXXX");
		fd = mkstemp(path[k]);
		cr_assert_geq(fd, 0);
		close(fd);
		ferry_tracer_config_init(&c);
		c.export_path = path[k];
		c.on_event = k ? on_event : NULL;
		c.clock = fixed_clock;
		c.clock_arg = &tick;
		cr_assert_eq(ferry_tracer_create(&c, &t), 0);
		cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
		s = server_open(r, TP_S, NULL);
		cs[0] = ferry_span_call_start(r, s, 7, NULL);
		cs[1] = ferry_span_call_start(r, s, 65535, NULL);
		cs[2] = ferry_span_call_start(r, s, 0, NULL);
		for (int i = 0; i < 3; i++)
			ferry_span_call_end(r, cs[i], 0);
		s = client_open(r, NULL);
		cs[0] = ferry_span_call_start(r, s, 12, NULL);
		ferry_span_call_end(r, cs[0], 0);
		ferry_tracer_drain(t);
		ferry_trace_ring_destroy(r);
		ferry_tracer_destroy(t);
		text[k] = slurp(path[k], &len[k]);
		unlink(path[k]);
		blank_ids(text[k]);
	}
	cr_assert_eq(len[0], len[1]);
	cr_assert_str_eq(text[0], text[1]);
	cr_assert(strstr(text[0], "\"name\":\"ferry/65535\""));
	free(text[0]);
	free(text[1]);
}

/* The file is appended to, or emptied first with export_replace. */
Test(otlp, export_appends_or_replaces)
{
	char path[] = "/tmp/test_trace_XXXXXX";
	int fd = mkstemp(path);
	size_t len;
	char *text;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "old\n", 4), 4);
	close(fd);
	for (int replace = 0; replace < 2; replace++) {
		struct ferry_tracer_config c;
		struct ferry_tracer *t;
		struct ferry_trace_ring *r;

		ferry_tracer_config_init(&c);
		c.export_path = path;
		c.export_replace = replace;
		cr_assert_eq(ferry_tracer_create(&c, &t), 0);
		cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
		ferry_span_session_end(r, client_open(r, NULL),
				       FERRY_SPAN_END_CLOSE, 0, NULL);
		ferry_trace_ring_destroy(r);
		ferry_tracer_destroy(t);
		text = slurp(path, &len);
		if (replace)
			cr_assert_eq(strncmp(text, "{\"resourceSpans\"", 16), 0);
		else
			cr_assert_eq(strncmp(text, "old\n{\"resourceSpans\"", 20), 0);
		cr_assert_eq(text[len - 1], '\n');
		free(text);
	}
	unlink(path);
}

Test(otlp, checker_rejects_bad_lines)
{
	static const char good[] =
		"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
		"\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
		"\"spanId\":\"00f067aa0ba902b7\",\"name\":\"x\",\"kind\":2,"
		"\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\","
		"\"status\":{\"code\":0}}]}]}]}";
	static const struct {
		const char *from, *to;
	} bad[] = {
		{ "\"4bf92f3577b34da6a3ce929d0e0e4736\"", "\"4BF92F3577B34DA6A3CE929D0E0E4736\"" },
		{ "\"4bf92f3577b34da6a3ce929d0e0e4736\"", "\"4bf92f3577b34da6a3ce929d0e0e47\"" },
		{ "\"00f067aa0ba902b7\"", "\"AA8G\"" },
		{ "\"00f067aa0ba902b7\"", "\"0000000000000000\"" },
		{ "\"kind\":2", "\"kind\":\"SPAN_KIND_SERVER\"" },
		{ "\"kind\":2", "\"kind\":2.5" },
		{ "\"startTimeUnixNano\":\"1\"", "\"startTimeUnixNano\":1" },
		{ "\"startTimeUnixNano\":\"1\"", "\"startTimeUnixNano\":\"3\"" },
		{ "\"endTimeUnixNano\":\"2\",", "" },
		{ "\"code\":0", "\"code\":\"STATUS_CODE_OK\"" },
		{ "\"code\":0", "\"code\":7" },
		{ "\"name\":\"x\",", "" },
		{ "{\"resourceSpans\"", "[{\"resourceSpans\"" },
		{ "}]}]}]}", "}]}]}]" },
	};
	struct ferry__otlp_span *sp = NULL;
	size_t n = 0, cap = 0;
	char err[160], line[1024];

	cr_assert_eq(ferry__otlp_parse_line(good, strlen(good), &sp, &n, &cap, err,
					    sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = strstr(good, bad[i].from);

		cr_assert(p);
		snprintf(line, sizeof(line), "%.*s%s%s", (int)(p - good), good,
			 bad[i].to, p + strlen(bad[i].from));
		err[0] = '\0';
		cr_expect_eq(ferry__otlp_parse_line(line, strlen(line), &sp, &n, &cap,
						    err, sizeof(err)), -EINVAL,
			     "accepted: %s", line);
		cr_expect_neq(err[0], '\0');
		cr_assert_eq(n, 1);
	}
	free(sp);
}

Test(json, parser_edges)
{
	static const char *const bad[] = {
		"", "{", "[1,]", "{\"a\" 1}", "\"\\x\"", "\"\\ud800\"", "01",
		"1.", "-", "tru", "\"a\nb\"", "[] []", "{\"a\":1,}",
	};
	struct ferry__json *j;
	char err[96], deep[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ferry__json_parse(bad[i], strlen(bad[i]), &j, err,
					       sizeof(err)), -EINVAL, "%s", bad[i]);
	memset(deep, '[', sizeof(deep));
	cr_assert_eq(ferry__json_parse(deep, sizeof(deep), &j, err, sizeof(err)), -EINVAL);
	static const char ok[] = "{\"k\":\"\\u00e9\\ud83d\\ude00\",\"n\":-1.5e3}";

	cr_assert_eq(ferry__json_parse(ok, strlen(ok), &j, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(ferry__json_get(j, "k")->s, "\xc3\xa9\xf0\x9f\x98\x80");
	cr_assert_eq(ferry__json_get(j, "n")->num, -1500.0);
	ferry__json_free(j);
}
