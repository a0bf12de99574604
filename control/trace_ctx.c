/* SPDX-License-Identifier: MIT */
/*
 * W3C Trace Context: traceparent and tracestate (docs/tracing.md, section
 * 2).  Both arrive from the wire or from the application as untrusted
 * text; every byte is read through the bounded reader (transport/rd.h).
 */
#include <errno.h>
#include <string.h>

#include "control/trace_internal.h"
#include "transport/rd.h"
#include "transport/wire.h"

/* The handshake TLV limits (docs/wire.md, section 9) are the same numbers. */
_Static_assert(FERRY_TRACEPARENT_TEXT_LEN == FERRY_TRACEPARENT_LEN,
	       "traceparent length");
_Static_assert(FERRY_TRACESTATE_KEEP == FERRY_TRACESTATE_MAX,
	       "tracestate limit");

/* Lower-case hex digit value, or -1: upper case is malformed (W3C). */
static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* @n bytes from 2 * @n hex digits; false if short or not lower-case hex. */
static bool rd_hex(struct ferry_rd *r, uint8_t *out, size_t n)
{
	const uint8_t *p = ferry_rd_take(r, 2 * n);

	if (!p)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static bool rd_dash(struct ferry_rd *r)
{
	const uint8_t *p = ferry_rd_take(r, 1);

	return p && *p == '-';
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

int ferry_traceparent_parse(const char *s, size_t len,
			    struct ferry_trace_ctx *out)
{
	struct ferry_trace_ctx c;
	struct ferry_rd r;

	if (!out || (!s && len))
		return -EINVAL;
	ferry_rd_init(&r, s, len);
	if (!rd_hex(&r, &c.version, 1) || c.version == 0xff)
		return -EINVAL;
	/* Version 00 has exactly four fields; a later version may append
	 * fields, each after a '-', and we read only the first four. */
	if (c.version == 0 && len != FERRY_TRACEPARENT_TEXT_LEN)
		return -EINVAL;
	if (!rd_dash(&r) || !rd_hex(&r, c.trace_id, sizeof(c.trace_id)) ||
	    !rd_dash(&r) || !rd_hex(&r, c.span_id, sizeof(c.span_id)) ||
	    !rd_dash(&r) || !rd_hex(&r, &c.flags, 1))
		return -EINVAL;
	if (ferry_rd_left(&r) != 0 && !rd_dash(&r))
		return -EINVAL;
	if (all_zero(c.trace_id, sizeof(c.trace_id)) ||
	    all_zero(c.span_id, sizeof(c.span_id)))
		return -EINVAL;
	*out = c;
	return 0;
}

static char *put_hex(char *p, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*p++ = digits[b[i] >> 4];
		*p++ = digits[b[i] & 15];
	}
	return p;
}

int ferry_traceparent_format(const struct ferry_trace_ctx *ctx, char *buf,
			     size_t cap)
{
	char *p = buf;

	if (!ctx || !buf)
		return -EINVAL;
	if (cap < FERRY_TRACEPARENT_TEXT_LEN + 1)
		return -ENOBUFS;
	if (all_zero(ctx->trace_id, sizeof(ctx->trace_id)) ||
	    all_zero(ctx->span_id, sizeof(ctx->span_id)))
		return -EINVAL;
	*p++ = '0';
	*p++ = '0';
	*p++ = '-';
	p = put_hex(p, ctx->trace_id, sizeof(ctx->trace_id));
	*p++ = '-';
	p = put_hex(p, ctx->span_id, sizeof(ctx->span_id));
	*p++ = '-';
	/* Reserved flag bits must be sent as zero; only sampled is ours. */
	*p++ = '0';
	*p++ = ctx->flags & FERRY_TRACE_FLAG_SAMPLED ? '1' : '0';
	*p = '\0';
	return FERRY_TRACEPARENT_TEXT_LEN;
}

/* --- tracestate ---------------------------------------------------------- */

static bool lcalpha(uint8_t c)
{
	return c >= 'a' && c <= 'z';
}

static bool keychar(uint8_t c)
{
	return lcalpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '*' || c == '/';
}

/*
 * key = simple-key / multi-tenant-key
 * simple-key = lcalpha 0*255(keychar)
 * multi-tenant-key = tenant-id "@" system-id
 * tenant-id = (lcalpha / DIGIT) 0*240(keychar)
 * system-id = lcalpha 0*13(keychar)
 */
static bool key_ok(const uint8_t *k, size_t n)
{
	const uint8_t *at = memchr(k, '@', n);

	if (!at) {
		if (n < 1 || n > 256 || !lcalpha(k[0]))
			return false;
		for (size_t i = 1; i < n; i++)
			if (!keychar(k[i]))
				return false;
		return true;
	}
	size_t tn = (size_t)(at - k), sn = n - tn - 1;

	if (tn < 1 || tn > 241 || sn < 1 || sn > 14)
		return false;
	if (!lcalpha(k[0]) && !(k[0] >= '0' && k[0] <= '9'))
		return false;
	for (size_t i = 1; i < tn; i++)
		if (!keychar(k[i]))
			return false;
	if (!lcalpha(at[1]))
		return false;
	for (size_t i = 1; i < sn; i++)
		if (!keychar(at[1 + i]))
			return false;
	return true;
}

/* value = 0*255(chr) nblk-chr; chr = 0x20 / nblk-chr;
 * nblk-chr = 0x21-0x2b / 0x2d-0x3c / 0x3e-0x7e (no ',' or '='). */
static bool value_ok(const uint8_t *v, size_t n)
{
	if (n < 1 || n > 256 || v[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = v[i];

		if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
			return false;
	}
	return true;
}

struct member {
	const uint8_t *p;
	size_t len;  /* key=value, blanks trimmed */
	size_t klen;
	bool keep;
};

/* Members beyond the kept ones are still checked, but only this many
 * (of any length) are looked at: more is malformed. */
#define TS_SCAN_MAX 128

int ferry_tracestate_parse(const char *s, size_t len, char *out, size_t cap,
			   size_t *out_len, bool *truncated)
{
	struct member m[TS_SCAN_MAX];
	size_t nm = 0, kept = 0, total = 0, o = 0;
	struct ferry_rd r;
	bool trunc = false;

	if (truncated)
		*truncated = false;
	if (!out || !out_len || (!s && len))
		return -EINVAL;
	if (cap < 1)
		return -ENOBUFS;
	out[0] = '\0';
	*out_len = 0;
	ferry_rd_init(&r, s, len);
	while (ferry_rd_left(&r) > 0) {
		/* One list member: up to the next ',' or the end. */
		size_t start = r.off, end;
		const uint8_t *p, *eq;

		while (ferry_rd_left(&r) > 0) {
			const uint8_t *c = ferry_rd_take(&r, 1);

			if (*c == ',')
				break;
		}
		end = r.off;
		if (end > start && r.p[end - 1] == ',')
			end--;
		p = r.p + start;
		/* OWS around the member. */
		while (start < end && (*p == ' ' || *p == '\t'))
			p++, start++;
		while (end > start && (r.p[end - 1] == ' ' || r.p[end - 1] == '\t'))
			end--;
		if (end == start)
			continue; /* empty members are allowed and dropped */
		eq = memchr(p, '=', end - start);
		if (!eq || !key_ok(p, (size_t)(eq - p)) ||
		    !value_ok(eq + 1, end - start - (size_t)(eq - p) - 1))
			return -EINVAL;
		if (nm == TS_SCAN_MAX)
			return -EINVAL;
		m[nm].p = p;
		m[nm].len = end - start;
		m[nm].klen = (size_t)(eq - p);
		for (size_t i = 0; i < nm; i++)
			if (m[i].klen == m[nm].klen &&
			    memcmp(m[i].p, p, m[nm].klen) == 0)
				return -EINVAL; /* duplicate key */
		m[nm].keep = nm < FERRY_TRACESTATE_MEMBERS;
		if (m[nm].keep) {
			kept++;
			total += m[nm].len + (kept > 1);
		} else {
			trunc = true;
		}
		nm++;
	}
	/* Over the byte limit: first drop members longer than 128 bytes (from
	 * the end), then members from the end. */
	for (size_t pass = 0; pass < 2 && total > FERRY_TRACESTATE_KEEP; pass++) {
		for (size_t i = nm; i-- > 0 && total > FERRY_TRACESTATE_KEEP;) {
			if (!m[i].keep || (pass == 0 && m[i].len <= 128))
				continue;
			m[i].keep = false;
			kept--;
			total -= m[i].len + (kept > 0);
			trunc = true;
		}
	}
	if (total + 1 > cap)
		return -ENOBUFS;
	for (size_t i = 0; i < nm; i++) {
		if (!m[i].keep)
			continue;
		if (o)
			out[o++] = ',';
		memcpy(out + o, m[i].p, m[i].len);
		o += m[i].len;
	}
	out[o] = '\0';
	*out_len = o;
	if (truncated)
		*truncated = trunc;
	return (int)kept;
}
