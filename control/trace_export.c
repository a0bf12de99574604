/* SPDX-License-Identifier: MIT */
/*
 * The tracer's exporter: closed spans as OTLP/JSON text (one TracesData
 * per line, docs/tracing.md, section 6) or OTLP protobuf (control/otlp_pb.c,
 * length-delimited in the file), and the file it goes to, or the OTLP/HTTP
 * exporter's queue (control/otlp_exporter.c) that takes its batches.  Spans
 * come from the consumer (control/trace_consumer.c) as records, or, for a
 * call span that nothing enriched, straight from its CALL record
 * (export_call()).  Everything here runs under the tracer's lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef __SSSE3__
#include <tmmintrin.h>
#endif

#include "control/otlp.h"
#include "control/trace_internal.h"
#include "ferry_config.h"

/* Flush the export buffer as one line when it grows past this. */
#define EXPORT_FLUSH (256u << 10)
/* Room for a rotated file's name: the path, '.', and a number. */
#define NAME_CAP (PATH_MAX + 16)

/* --- JSON text ----------------------------------------------------------- */

static void xput(struct ferry__export *x, const char *s, size_t n)
{
	if (x->oom)
		return;
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		char *p;

		while (cap < x->len + n + 1)
			cap *= 2;
		p = realloc(x->buf, cap);
		if (!p) {
			x->oom = true;
			return;
		}
		x->buf = p;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, s, n);
	x->len += n;
	x->buf[x->len] = '\0';
}

static void xputs(struct ferry__export *x, const char *s)
{
	xput(x, s, strlen(s));
}

/* A string literal, its length known at compile time. */
#define XLIT(x, lit) xput((x), "" lit, sizeof(lit) - 1)

/* Decimal integers by hand: the exporter writes several per span, and
 * printf's machinery was most of its time (perf, issue 7). */
static void xu64(struct ferry__export *x, uint64_t v)
{
	char buf[20];
	size_t i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	xput(x, buf + i, sizeof(buf) - i);
}

static void xi64(struct ferry__export *x, int64_t v)
{
	if (v < 0) {
		xput(x, "-", 1);
		xu64(x, (uint64_t)0 - (uint64_t)v);
	} else {
		xu64(x, (uint64_t)v);
	}
}

static void xprintf(struct ferry__export *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void xprintf(struct ferry__export *x, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		xput(x, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

bool ferry__utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1
			 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 4;

		if (k == 4 || k > n - i - 1)
			return false;
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		if ((k == 1 && c < 0xc2) || (c == 0xe0 && s[i + 1] < 0xa0) ||
		    (c == 0xed && s[i + 1] >= 0xa0) ||
		    (c == 0xf0 && s[i + 1] < 0x90) || c > 0xf4 ||
		    (c == 0xf4 && s[i + 1] >= 0x90))
			return false;
		i += k + 1;
	}
	return true;
}

/* A JSON string.  Text that is not valid UTF-8 has each byte >= 0x80
 * written as \u00XX, so the line is always valid JSON. */
static void xstr(struct ferry__export *x, const char *s)
{
	size_t n = 0, run = 0;
	bool raw, plain = true;
	char esc[8];

	/* Most strings (keys, method names, addresses) are plain ASCII with
	 * nothing to escape: one pass to see that, one copy. */
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f)
			plain = false;
	}
	if (plain) {
		xput(x, "\"", 1);
		xput(x, s, n);
		xput(x, "\"", 1);
		return;
	}
	raw = ferry__utf8_ok((const unsigned char *)s, n);

	xput(x, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\' || c < 0x20 || c == 0x7f ||
		    (c >= 0x80 && !raw)) {
			xput(x, s + i - run, run);
			run = 0;
			if (c == '"' || c == '\\') {
				esc[0] = '\\';
				esc[1] = (char)c;
				xput(x, esc, 2);
			} else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				xput(x, esc, 6);
			}
		} else {
			run++;
		}
	}
	xput(x, s + n - run, run);
	xput(x, "\"", 1);
}

static void xhex(struct ferry__export *x, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char buf[2 * FERRY_TRACE_ID_LEN + 2];

	buf[0] = '"';
	for (size_t i = 0; i < n; i++) {
		buf[1 + 2 * i] = digits[b[i] >> 4];
		buf[2 + 2 * i] = digits[b[i] & 15];
	}
	buf[1 + 2 * n] = '"';
	xput(x, buf, 2 * n + 2);
}

static void xattr(struct ferry__export *x, const struct ferry_trace_attr *a)
{
	xputs(x, "{\"key\":");
	xstr(x, a->key);
	xputs(x, ",\"value\":{");
	switch (a->type) {
	case FERRY_ATTR_STRING:
		xputs(x, "\"stringValue\":");
		xstr(x, a->v.s);
		break;
	case FERRY_ATTR_INT:
		/* int64 is a decimal string in the protobuf JSON mapping. */
		XLIT(x, "\"intValue\":\"");
		xi64(x, a->v.i);
		XLIT(x, "\"");
		break;
	case FERRY_ATTR_BOOL:
		xputs(x, a->v.b ? "\"boolValue\":true" : "\"boolValue\":false");
		break;
	default:
		/* JSON has no NaN or infinities; the mapping spells them. */
		if (isnan(a->v.d))
			xputs(x, "\"doubleValue\":\"NaN\"");
		else if (isinf(a->v.d))
			xputs(x, a->v.d > 0 ? "\"doubleValue\":\"Infinity\""
					    : "\"doubleValue\":\"-Infinity\"");
		else
			xprintf(x, "\"doubleValue\":%.17g", a->v.d);
		break;
	}
	xputs(x, "}}");
}

/* Append one closed span to the pending "spans" array. */
static void export_span(struct ferry__export *x,
			const struct ferry_span_info *s)
{
	if (x->spans)
		xput(x, ",", 1);
	xputs(x, "{\"traceId\":");
	xhex(x, s->trace_id, FERRY_TRACE_ID_LEN);
	xputs(x, ",\"spanId\":");
	xhex(x, s->span_id, FERRY_SPAN_ID_LEN);
	if (s->has_parent) {
		xputs(x, ",\"parentSpanId\":");
		xhex(x, s->parent_span_id, FERRY_SPAN_ID_LEN);
	}
	if (s->tracestate[0]) {
		xputs(x, ",\"traceState\":");
		xstr(x, s->tracestate);
	}
	xputs(x, ",\"name\":");
	xstr(x, s->name);
	XLIT(x, ",\"kind\":");
	xi64(x, s->kind);
	XLIT(x, ",\"startTimeUnixNano\":\"");
	xu64(x, s->start_ns);
	XLIT(x, "\",\"endTimeUnixNano\":\"");
	xu64(x, s->end_ns);
	XLIT(x, "\"");
	xputs(x, ",\"attributes\":[");
	for (unsigned i = 0; i < s->n_attrs; i++) {
		if (i)
			xput(x, ",", 1);
		xattr(x, &s->attrs[i]);
	}
	xput(x, "]", 1);
	if (s->dropped_attrs)
		xprintf(x, ",\"droppedAttributesCount\":%u", s->dropped_attrs);
	XLIT(x, ",\"status\":{\"code\":");
	xi64(x, s->status);
	if (s->status_msg[0]) {
		xputs(x, ",\"message\":");
		xstr(x, s->status_msg);
	}
	xputs(x, "}}");
	x->spans++;
}

/* Shared with the consumer, which names a span's addresses the same way. */
void ferry__trace_ip_text(uint32_t ip, char *buf, size_t cap)
{
	struct in_addr a = { .s_addr = ip };

	if (!inet_ntop(AF_INET, &a, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
}

/* --- a call span straight from its record -------------------------------- */

/* Two decimal digits at a time, for the exporter's timestamps. */
static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233"
	"34353637383940414243444546474849505152535455565758596061626364656667"
	"6869707172737475767778798081828384858687888990919293949596979899";

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;

		v /= 100;
		tmp[--i] = digit_pairs[d + 1];
		tmp[--i] = digit_pairs[d];
	}
	if (v >= 10) {
		tmp[--i] = digit_pairs[v * 2 + 1];
		tmp[--i] = digit_pairs[v * 2];
	} else {
		tmp[--i] = (char)('0' + v);
	}
	memcpy(p, tmp + i, sizeof(tmp) - i);
	return p + (sizeof(tmp) - i);
}

/* An id in lower-case hex: @n is 8 or 16 bytes. */
static char *put_hex(char *p, const uint8_t *b, size_t n)
{
#ifdef __SSSE3__
	/* Each nibble looked up in one shuffle (the exporter writes 32 bytes
	 * of ids per span). */
	const __m128i lut = _mm_setr_epi8('0', '1', '2', '3', '4', '5', '6',
					  '7', '8', '9', 'a', 'b', 'c', 'd',
					  'e', 'f');
	const __m128i mask = _mm_set1_epi8(0x0f);
	__m128i v = n == 16 ? _mm_loadu_si128((const __m128i *)(const void *)b)
			    : _mm_loadl_epi64((const __m128i *)(const void *)b);
	__m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(v, 4),
							 mask));
	__m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(v, mask));

	_mm_storeu_si128((__m128i *)(void *)p, _mm_unpacklo_epi8(hi, lo));
	if (n == 16)
		_mm_storeu_si128((__m128i *)(void *)(p + 16),
				 _mm_unpackhi_epi8(hi, lo));
	return p + 2 * n;
#else
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*p++ = digits[b[i] >> 4];
		*p++ = digits[b[i] & 15];
	}
	return p;
#endif
}

/* A Unix time in ns, in decimal: the seconds as text kept from the last
 * call (they seldom change), then nine digits of nanoseconds.  Writes up
 * to 29 bytes at @p, whatever the number's length. */
static char *put_ns(struct ferry__export *x, char *p, uint64_t v)
{
	uint64_t sec = v / 1000000000u;
	uint32_t ns = (uint32_t)(v % 1000000000u);

	if (sec == 0) {
		/* No leading zeros: the plain number. */
		return put_u64(p, v);
	}
	if (sec != x->ns_sec || !x->ns_sec_len) {
		x->ns_sec = sec;
		x->ns_sec_len = (uint8_t)(put_u64(x->ns_sec_text, sec) -
					  x->ns_sec_text);
	}
	/* A fixed-size copy (the caller has room past the number). */
	memcpy(p, x->ns_sec_text, sizeof(x->ns_sec_text));
	p += x->ns_sec_len;
	/* Nine digits, as four pairs and one, each quotient independent of
	 * the others' remainders. */
	memcpy(p, digit_pairs + 2 * (ns / 10000000), 2);
	memcpy(p + 2, digit_pairs + 2 * (ns / 100000 % 100), 2);
	memcpy(p + 4, digit_pairs + 2 * (ns / 1000 % 100), 2);
	memcpy(p + 6, digit_pairs + 2 * (ns / 10 % 100), 2);
	p[8] = (char)('0' + ns % 10);
	return p + 9;
}

#define PUT_LIT(p, lit) (memcpy((p), "" lit, sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* Room for @need more bytes (and a NUL) past the buffer's end, for the
 * unchecked writes that follow.  False when out of memory. */
static bool call_room(struct ferry__export *x, size_t need)
{
	if (x->len + need + 1 > x->cap) {
		/* Grow through xput (which keeps its own bookkeeping). */
		xput(x, "", 0);
		if (x->oom || x->len + need + 1 > x->cap) {
			size_t cap = x->cap ? x->cap : 4096;
			char *nb;

			while (cap < x->len + need + 1)
				cap *= 2;
			nb = realloc(x->buf, cap);
			if (!nb) {
				x->oom = true;
				return false;
			}
			x->buf = nb;
			x->cap = cap;
		}
	}
	return true;
}

/* A call span's text at @p, up to its address attributes: ids, name, kind,
 * times, rpc.system and rpc.method.  Returns the new end. */
static char *call_fields(struct ferry__export *x, char *p,
			 const struct ferry__ev_call *ev)
{
	uint64_t start = ev->start, end = ev->h.ts < start ? start : ev->h.ts;
	char method[12], *m0;
	size_t mlen;

	m0 = put_u64(method, ev->h.aux & 0xffff);
	mlen = (size_t)(m0 - method);
	if (x->spans)
		*p++ = ',';
	p = PUT_LIT(p, "{\"traceId\":\"");
	p = put_hex(p, ev->trace_id, sizeof(ev->trace_id));
	p = PUT_LIT(p, "\",\"spanId\":\"");
	p = put_hex(p, ev->span_id, sizeof(ev->span_id));
	p = PUT_LIT(p, "\",\"parentSpanId\":\"");
	p = put_hex(p, ev->parent_id, sizeof(ev->parent_id));
	p = PUT_LIT(p, "\",\"name\":\"ferry/");
	memcpy(p, method, mlen);
	p += mlen;
	p = PUT_LIT(p, "\",\"kind\":");
	p = put_u64(p, ev->kind);
	p = PUT_LIT(p, ",\"startTimeUnixNano\":\"");
	p = put_ns(x, p, start);
	p = PUT_LIT(p, "\",\"endTimeUnixNano\":\"");
	p = put_ns(x, p, end);
	p = PUT_LIT(p, "\",\"attributes\":[{\"key\":\"rpc.system\",\"value\":"
		       "{\"stringValue\":\"ferry\"}},{\"key\":\"rpc.method\","
		       "\"value\":{\"stringValue\":\"");
	memcpy(p, method, mlen);
	p += mlen;
	p = PUT_LIT(p, "\"}}");
	return p;
}

/* A call span's address attributes at @p, the buffer's end: copied from
 * the memo if it holds this connection's, else formatted the general way
 * and kept there.  Returns the new end, or NULL when out of memory. */
static char *call_addrs(struct ferry__export *x, char *p,
			const struct ferry__ev_call *ev)
{
	unsigned h = (ev->peer_ip ^ ev->server_ip ^ ev->peer_port ^
		      (uint32_t)ev->server_port << 7) * 0x9e3779b1u >> 28;
	struct ferry__addr_memo *m = &x->memo[h];
	size_t mark;

	if (!m->len || m->server_ip != ev->server_ip ||
	    m->peer_ip != ev->peer_ip || m->server_port != ev->server_port ||
	    m->peer_port != ev->peer_port) {
		/* Format them the general way, then keep the text. */
		char sip[16], pip[16];
		const struct ferry_trace_attr as[] = {
			{ .key = "server.address", .type = FERRY_ATTR_STRING,
			  .v.s = sip },
			{ .key = "server.port", .type = FERRY_ATTR_INT,
			  .v.i = ev->server_port },
			{ .key = "network.peer.address",
			  .type = FERRY_ATTR_STRING, .v.s = pip },
			{ .key = "network.peer.port", .type = FERRY_ATTR_INT,
			  .v.i = ev->peer_port },
		};
		/* As rec_fill() leaves them out: a zero address or port. */
		const bool have[] = { ev->server_ip, ev->server_port,
				      ev->peer_ip, ev->peer_port };

		ferry__trace_ip_text(ev->server_ip, sip, sizeof(sip));
		ferry__trace_ip_text(ev->peer_ip, pip, sizeof(pip));
		mark = x->len;
		for (size_t i = 0; i < sizeof(as) / sizeof(as[0]); i++) {
			if (!have[i])
				continue;
			xput(x, ",", 1);
			xattr(x, &as[i]);
		}
		if (x->oom)
			return NULL;
		m->len = 0;
		if (x->len - mark < sizeof(m->text)) {
			memcpy(m->text, x->buf + mark, x->len - mark);
			m->len = (uint16_t)(x->len - mark);
			m->server_ip = ev->server_ip;
			m->peer_ip = ev->peer_ip;
			m->server_port = ev->server_port;
			m->peer_port = ev->peer_port;
		}
		p = x->buf + x->len;
	} else {
		memcpy(p, m->text, m->len);
		p += m->len;
	}
	return p;
}

/*
 * Export a call span that ended well and that nothing enriched, straight
 * from its CALL record: the same bytes export_span() writes for it, with
 * the connection's attributes copied from a memo instead of formatted.
 */
static void export_call(struct ferry__export *x,
			const struct ferry__ev_call *ev)
{
	/* Every part but the address attributes is bounded by this. */
	const size_t fixed = 512;
	char *p;

	if (x->oom)
		return;
	if (!call_room(x, fixed + sizeof(x->memo[0].text)))
		return;
	p = call_fields(x, x->buf + x->len, ev);
	x->len = (size_t)(p - x->buf);
	p = call_addrs(x, p, ev);
	if (!p)
		return;
	p = PUT_LIT(p, "],\"status\":{\"code\":0}}");
	*p = '\0';
	x->len = (size_t)(p - x->buf);
	x->spans++;
}

/* --- protobuf ------------------------------------------------------------ */

/* Append @s, and @more_len bytes of attributes already encoded, as a
 * ScopeSpans.spans field (tag 2, its length, the Span). */
static void pb_span(struct ferry__export *x, const struct ferry_span_info *s,
		    const uint8_t *more, size_t more_len)
{
	size_t n = ferry__pb_span_len(s, more_len);
	uint8_t *p;

	if (x->oom || !call_room(x, 1 + FERRY__PB_VARINT_MAX + n))
		return;
	p = (uint8_t *)x->buf + x->len;
	*p++ = 2 << 3 | 2;
	p = ferry__pb_varint(p, n);
	p = ferry__pb_span_put(p, s, more, more_len);
	x->len = (size_t)(p - (uint8_t *)x->buf);
	x->spans++;
}

/* A call span's address attributes as protobuf fields, from the memo
 * (which holds protobuf in a protobuf export) if it has this
 * connection's, else encoded and kept there.  *@len: their bytes. */
static const uint8_t *pb_call_addrs(struct ferry__export *x,
				    const struct ferry__ev_call *ev, size_t *len)
{
	unsigned h = (ev->peer_ip ^ ev->server_ip ^ ev->peer_port ^
		      (uint32_t)ev->server_port << 7) * 0x9e3779b1u >> 28;
	struct ferry__addr_memo *m = &x->memo[h];
	char sip[16], pip[16];
	uint8_t *p = (uint8_t *)m->text;
	struct ferry_trace_attr as[4];
	unsigned n = 0;

	if (m->len && m->server_ip == ev->server_ip &&
	    m->peer_ip == ev->peer_ip && m->server_port == ev->server_port &&
	    m->peer_port == ev->peer_port) {
		*len = m->len;
		return (const uint8_t *)m->text;
	}
	/* As rec_fill() sets them: a zero address or port is left out. */
	ferry__trace_ip_text(ev->server_ip, sip, sizeof(sip));
	ferry__trace_ip_text(ev->peer_ip, pip, sizeof(pip));
	if (ev->server_ip)
		as[n++] = (struct ferry_trace_attr){ "server.address",
						     FERRY_ATTR_STRING, { .s = sip } };
	if (ev->server_port)
		as[n++] = (struct ferry_trace_attr){ "server.port", FERRY_ATTR_INT,
						     { .i = ev->server_port } };
	if (ev->peer_ip)
		as[n++] = (struct ferry_trace_attr){ "network.peer.address",
						     FERRY_ATTR_STRING, { .s = pip } };
	if (ev->peer_port)
		as[n++] = (struct ferry_trace_attr){ "network.peer.port",
						     FERRY_ATTR_INT,
						     { .i = ev->peer_port } };
	/* At most 4 x 40 bytes: always within the memo's text. */
	for (unsigned i = 0; i < n; i++)
		p = ferry__pb_attr_put(p, &as[i]);
	m->len = (uint16_t)(p - (uint8_t *)m->text);
	m->server_ip = ev->server_ip;
	m->peer_ip = ev->peer_ip;
	m->server_port = ev->server_port;
	m->peer_port = ev->peer_port;
	*len = m->len;
	return (const uint8_t *)m->text;
}

/* A call span straight from its CALL record, in protobuf: the span the
 * consumer's general path makes of it (rec_fill(): the same attributes in
 * the same order), its addresses copied from the memo. */
static void pb_call(struct ferry__export *x, const struct ferry__ev_call *ev)
{
	char name[16] = "ferry/", *method = name + 6;
	struct ferry_trace_attr a[2] = {
		{ "rpc.system", FERRY_ATTR_STRING, { .s = "ferry" } },
		{ "rpc.method", FERRY_ATTR_STRING, { .s = method } },
	};
	struct ferry_span_info s = { .kind = ev->kind, .name = name,
				     .tracestate = "", .status_msg = "",
				     .has_parent = true, .attrs = a,
				     .n_attrs = 2 };
	const uint8_t *more;
	size_t more_len;

	*put_u64(method, ev->h.aux & 0xffff) = '\0';
	memcpy(s.trace_id, ev->trace_id, sizeof(s.trace_id));
	memcpy(s.span_id, ev->span_id, sizeof(s.span_id));
	memcpy(s.parent_span_id, ev->parent_id, sizeof(s.parent_span_id));
	s.start_ns = ev->start;
	s.end_ns = ev->h.ts < ev->start ? ev->start : ev->h.ts;
	more = pb_call_addrs(x, ev, &more_len);
	pb_span(x, &s, more, more_len);
}

/* --- the export file ----------------------------------------------------- */

/* All of @n bytes of @iov to @fd (a partial write is continued). */
static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ferry__iov_advance(&iov, &n, (size_t)w);
	}
	return 0;
}

static const char line_tail[] = "]}]}]}\n";

/* The protobuf bytes before the pending spans, into @buf (room for
 * FERRY__PB_HEAD_MAX + the prefix); returns their length. */
static size_t pb_head(const struct ferry__export *x, uint8_t *buf, bool framed)
{
	return (size_t)(ferry__pb_head(buf, x->pb_pre, x->pb_res_len,
				       x->pb_scope_len, x->len, framed) - buf);
}

/* The length of the line (JSON) or framed message (protobuf) the pending
 * spans make. */
static size_t line_len(const struct ferry__export *x)
{
	size_t ss, rs, req;

	if (x->format == FERRY_TRACE_FORMAT_JSON)
		return strlen(x->head) + x->len + sizeof(line_tail) - 1;
	ss = x->pb_scope_len + x->len;
	rs = x->pb_res_len + 1 + ferry__pb_varint_len(ss) + ss;
	req = 1 + ferry__pb_varint_len(rs) + rs;
	return ferry__pb_varint_len(req) + req;
}

/* "<path>.<i>", or "<path>" for 0, into @buf of @cap bytes. */
static void rot_name(const struct ferry__export *x, unsigned i, char *buf,
		     size_t cap)
{
	if (i)
		snprintf(buf, cap, "%s.%u", x->path, i);
	else
		snprintf(buf, cap, "%s", x->path);
}

/* Open the export file.  O_NOFOLLOW: a symbolic link planted at the path
 * must not send spans (or O_TRUNC) somewhere else; 0600: spans name
 * peers, methods and errors, for their owner only.  O_NONBLOCK for the
 * open only, so that a FIFO there fails instead of waiting for a reader;
 * anything but a regular file is refused. */
static int file_open(const char *path, int extra)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
				    O_NOFOLLOW | O_NONBLOCK | extra,
		      0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	(void)fcntl(fd, F_SETFL, O_APPEND);
	return fd;
}

/*
 * Rotate: path.(keep-1) -> path.keep, ..., path -> path.1 (rename replaces
 * the oldest), or, keeping none, remove path; then a new path, created
 * (O_EXCL: whatever appears there between the two is not ours).  If the
 * new file cannot be made, the old descriptor stays and only the open is
 * tried again at the next line.
 */
static int export_rotate(struct ferry__export *x)
{
	char from[NAME_CAP], to[NAME_CAP];
	int fd;

	if (!x->reopen) {
		for (unsigned i = x->keep; i >= 1; i--) {
			rot_name(x, i - 1, from, sizeof(from));
			rot_name(x, i, to, sizeof(to));
			if (rename(from, to) < 0 && errno != ENOENT)
				return -errno;
		}
		if (!x->keep && unlink(x->path) < 0 && errno != ENOENT)
			return -errno;
		x->reopen = true;
	}
	fd = file_open(x->path, O_EXCL);
	if (fd < 0)
		return fd;
	close(x->fd);
	x->fd = fd;
	x->size = 0;
	x->reopen = false;
	x->rotations++;
	return 0;
}

/* The pending spans as one request body for the OTLP/HTTP exporter: the
 * same bytes as a file's line or message, without the newline or the
 * length in front. */
static void flush_http(struct ferry__export *x)
{
	struct iovec iov[3];
	uint8_t *head = NULL;

	if (x->format == FERRY_TRACE_FORMAT_JSON) {
		iov[0] = (struct iovec){ x->head, strlen(x->head) };
		iov[1] = (struct iovec){ x->buf, x->len };
		iov[2] = (struct iovec){ (void *)line_tail,
					 sizeof(line_tail) - 2 };
		ferry__otlp_enqueue(x->http, iov, 3, x->spans);
		return;
	}
	head = malloc(FERRY__PB_HEAD_MAX + x->pb_res_len + x->pb_scope_len);
	if (!head) {
		x->errors += x->spans;
		return;
	}
	iov[0] = (struct iovec){ head, pb_head(x, head, false) };
	iov[1] = (struct iovec){ x->buf, x->len };
	ferry__otlp_enqueue(x->http, iov, 2, x->spans);
	free(head);
}

/* The line's (or message's) first piece into @iov, and the count of its
 * pieces; @scratch has room for a protobuf head. */
static int file_iov(const struct ferry__export *x, struct iovec *iov,
		    uint8_t *scratch)
{
	if (x->format == FERRY_TRACE_FORMAT_JSON) {
		iov[0] = (struct iovec){ x->head, strlen(x->head) };
		iov[1] = (struct iovec){ x->buf, x->len };
		iov[2] = (struct iovec){ (void *)line_tail,
					 sizeof(line_tail) - 1 };
		return 3;
	}
	iov[0] = (struct iovec){ scratch, pb_head(x, scratch, true) };
	iov[1] = (struct iovec){ x->buf, x->len };
	return 2;
}

/* Write the pending spans as one TracesData line (or one length-delimited
 * ExportTraceServiceRequest): one writev of the line's head, the spans as
 * they are in the buffer, and its tail.  A line that would take the file
 * past the cap goes into a new file (rotation); one line is never split
 * between files. */
int ferry__export_flush(struct ferry__export *x)
{
	struct iovec iov[3];
	uint8_t *scratch = NULL;
	size_t n;
	int rc = 0, k;

	if (!x->spans)
		return 0;
	if (x->http && !x->oom) {
		flush_http(x);
	} else if (x->fd >= 0 && !x->oom) {
		n = line_len(x);
		if (x->max_bytes && (x->reopen ||
				     (x->size && x->size + n > x->max_bytes)))
			rc = export_rotate(x) < 0 ? -EIO : 0;
		if (x->format != FERRY_TRACE_FORMAT_JSON) {
			scratch = malloc(FERRY__PB_HEAD_MAX + x->pb_res_len +
					 x->pb_scope_len);
			if (!scratch)
				rc = -ENOMEM;
		}
		k = rc == 0 ? file_iov(x, iov, scratch) : 0;
		if (rc == 0 && write_all(x->fd, iov, k) < 0) {
			struct stat st;

			rc = -EIO;
			/* Part of it may be there: count what is. */
			if (fstat(x->fd, &st) == 0)
				x->size = (uint64_t)st.st_size;
		} else if (rc == 0) {
			x->size += n;
		}
		free(scratch);
	} else if (x->fd >= 0 || x->http) {
		rc = -ENOMEM;
	}
	if (rc < 0)
		x->errors += x->spans;
	x->len = 0;
	x->spans = 0;
	x->oom = false;
	return rc;
}

int ferry__export_open(struct ferry__export *x, const char *path,
		       bool replace, uint64_t max_bytes, uint32_t keep)
{
	struct stat st;
	int fd;

	x->max_bytes = max_bytes;
	x->keep = keep;
	if (strnlen(path, PATH_MAX) >= PATH_MAX)
		return -ENAMETOOLONG;
	x->path = strdup(path);
	if (!x->path)
		return -ENOMEM;
	fd = file_open(path, replace ? O_TRUNC : 0);
	if (fd < 0)
		return fd;
	x->fd = fd;
	x->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	if (replace) {
		/* One run's spans only: no rotated files of an earlier run
		 * beside them. */
		char name[NAME_CAP];

		for (unsigned i = 1; i <= FERRY__EXPORT_KEEP_MAX; i++) {
			rot_name(x, i, name, sizeof(name));
			unlink(name);
		}
	}
	return 0;
}

/* A JSON string for the line's head (resource attributes may need
 * escaping). */
static void head_kv(struct ferry__export *x, const char *k, const char *v,
		    bool first)
{
	if (!first)
		xput(x, ",", 1);
	XLIT(x, "{\"key\":");
	xstr(x, k);
	XLIT(x, ",\"value\":{\"stringValue\":");
	xstr(x, v);
	XLIT(x, "}}");
}

int ferry__export_head(struct ferry__export *x, int format,
		       const struct ferry__otlp_settings *s)
{
	struct ferry__kv kv[1 + FERRY__RES_ATTRS_MAX];

	x->format = format;
	if (format != FERRY_TRACE_FORMAT_JSON) {
		kv[0] = (struct ferry__kv){ "service.name", s->service };
		for (unsigned i = 0; i < s->n_res; i++)
			kv[1 + i] = s->res[i];
		x->pb_pre = ferry__pb_prefix(kv, 1 + s->n_res, "ferry",
					     FERRY_VERSION, &x->pb_res_len,
					     &x->pb_scope_len);
		return x->pb_pre ? 0 : -ENOMEM;
	}
	/* Built in the span buffer (empty still), then taken from it. */
	XLIT(x, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
	head_kv(x, "service.name", s->service, true);
	for (unsigned i = 0; i < s->n_res; i++)
		head_kv(x, s->res[i].key, s->res[i].val, false);
	XLIT(x, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"ferry\","
		"\"version\":\"" FERRY_VERSION "\"},\"spans\":[");
	if (x->oom) {
		x->oom = false;
		return -ENOMEM;
	}
	x->head = x->buf;
	x->buf = NULL;
	x->len = x->cap = 0;
	return 0;
}

/*
 * With a cap, a span that would make the pending line longer than the
 * cap is held back: the spans before it are written as a line of their
 * own first (@mark: where the new span's text begins, after a ',').
 */
static void export_fit(struct ferry__export *x, size_t mark, unsigned before)
{
	size_t n, sep;

	if (!x->max_bytes || !before || x->oom || line_len(x) <= x->max_bytes)
		return;
	/* JSON spans are separated by a ',', protobuf ones are not. */
	sep = x->format == FERRY_TRACE_FORMAT_JSON;
	n = x->len - mark - sep;
	x->len = mark;
	x->spans = before;
	ferry__export_flush(x);
	memmove(x->buf, x->buf + mark + sep, n);
	x->len = n;
	x->buf[n] = '\0';
	x->spans = 1;
}

void ferry__export_span(struct ferry__export *x,
			const struct ferry_span_info *s)
{
	size_t mark = x->len;
	unsigned before = x->spans;

	if (x->fd < 0 && !x->http)
		return;
	if (x->format == FERRY_TRACE_FORMAT_JSON)
		export_span(x, s);
	else
		pb_span(x, s, NULL, 0);
	export_fit(x, mark, before);
	if (x->len >= EXPORT_FLUSH)
		ferry__export_flush(x);
}

void ferry__export_call(struct ferry__export *x,
			const struct ferry__ev_call *ev)
{
	size_t mark = x->len;
	unsigned before = x->spans;

	if (x->fd < 0 && !x->http)
		return;
	if (x->format == FERRY_TRACE_FORMAT_JSON)
		export_call(x, ev);
	else
		pb_call(x, ev);
	export_fit(x, mark, before);
	if (x->len >= EXPORT_FLUSH)
		ferry__export_flush(x);
}

void ferry__export_close(struct ferry__export *x)
{
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
	}
}

void ferry__export_free(struct ferry__export *x)
{
	free(x->pb_pre);
	free(x->buf);
	free(x->head);
	free(x->path);
}
