/* SPDX-License-Identifier: MIT */
/*
 * Reading export files back: a small JSON parser (RFC 8259) over the
 * bounded reader, and the OTLP/JSON checks ferryctl spans and the tests
 * apply to each line (docs/tracing.md, section 6).  An export file may have
 * been edited or truncated, so it is untrusted input like any other.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/trace_internal.h"
#include "transport/rd.h"

#define JSON_DEPTH_MAX 64

struct jp {
	struct ferry_rd r;
	char *err;
	size_t errcap;
	bool oom;
};

static int jfail(struct jp *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int jfail(struct jp *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err && p->errcap && !p->err[0]) {
		int n = snprintf(p->err, p->errcap, "byte %zu: ", p->r.off);

		va_start(ap, fmt);
		if (n >= 0 && (size_t)n < p->errcap)
			vsnprintf(p->err + n, p->errcap - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* The next byte without taking it; -1 at the end. */
static int peek(const struct jp *p)
{
	return ferry_rd_left(&p->r) ? p->r.p[p->r.off] : -1;
}

static void skip_ws(struct jp *p)
{
	int c;

	while ((c = peek(p)) == ' ' || c == '\t' || c == '\n' || c == '\r')
		ferry_rd_take(&p->r, 1);
}

static bool lit(struct jp *p, const char *w)
{
	size_t n = strlen(w);
	const uint8_t *s;

	if (ferry_rd_left(&p->r) < n || memcmp(p->r.p + p->r.off, w, n) != 0)
		return false;
	s = ferry_rd_take(&p->r, n);
	return s != NULL;
}

/* Append code point @cp as UTF-8. */
static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int hex4(struct jp *p, uint32_t *v)
{
	const uint8_t *s = ferry_rd_take(&p->r, 4);

	if (!s)
		return jfail(p, "truncated \\u escape");
	*v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t c = s[i];
		uint32_t d = c >= '0' && c <= '9' ? (uint32_t)(c - '0')
			   : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
			   : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10) : 16;

		if (d == 16)
			return jfail(p, "bad \\u escape");
		*v = *v << 4 | d;
	}
	return 0;
}

/* A string (the opening quote already taken) into a new heap buffer.  The
 * decoded text is never longer than the encoded one. */
static int jstring(struct jp *p, char **out, size_t *len)
{
	size_t start = p->r.off, o = 0;
	char *s;
	const uint8_t *c;

	/* Find the end first to size the buffer. */
	for (;;) {
		c = ferry_rd_take(&p->r, 1);
		if (!c)
			return jfail(p, "unterminated string");
		if (*c == '"')
			break;
		if (*c == '\\' && !ferry_rd_take(&p->r, 1))
			return jfail(p, "unterminated string");
	}
	s = malloc(p->r.off - start);
	if (!s) {
		p->oom = true;
		return -ENOMEM;
	}
	p->r.off = start;
	for (;;) {
		c = ferry_rd_take(&p->r, 1);
		if (*c == '"')
			break;
		if (*c < 0x20) {
			free(s);
			return jfail(p, "control character in string");
		}
		if (*c != '\\') {
			s[o++] = (char)*c;
			continue;
		}
		c = ferry_rd_take(&p->r, 1);
		switch (*c) {
		case '"': case '\\': case '/':
			s[o++] = (char)*c;
			break;
		case 'b': s[o++] = '\b'; break;
		case 'f': s[o++] = '\f'; break;
		case 'n': s[o++] = '\n'; break;
		case 'r': s[o++] = '\r'; break;
		case 't': s[o++] = '\t'; break;
		case 'u': {
			uint32_t cp, lo;

			if (hex4(p, &cp) < 0)
				goto bad;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (!lit(p, "\\u") || hex4(p, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff) {
					jfail(p, "unpaired surrogate");
					goto bad;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				jfail(p, "unpaired surrogate");
				goto bad;
			}
			/* \uXXXX is 6 bytes in, at most 3 out; a pair 12, 4. */
			o += put_utf8(s + o, cp);
			break;
		}
		default:
			jfail(p, "bad escape");
			goto bad;
		}
	}
	s[o] = '\0';
	*out = s;
	*len = o;
	return 0;
bad:
	free(s);
	return -EINVAL;
}

static int jnumber(struct jp *p, struct ferry__json *j)
{
	size_t start = p->r.off, n;
	int c;

	if (peek(p) == '-')
		ferry_rd_take(&p->r, 1);
	c = peek(p);
	if (c == '0') {
		ferry_rd_take(&p->r, 1);
	} else if (c >= '1' && c <= '9') {
		while ((c = peek(p)) >= '0' && c <= '9')
			ferry_rd_take(&p->r, 1);
	} else {
		return jfail(p, "bad number");
	}
	if (peek(p) == '.') {
		ferry_rd_take(&p->r, 1);
		if (!((c = peek(p)) >= '0' && c <= '9'))
			return jfail(p, "bad number");
		while ((c = peek(p)) >= '0' && c <= '9')
			ferry_rd_take(&p->r, 1);
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		ferry_rd_take(&p->r, 1);
		if (peek(p) == '+' || peek(p) == '-')
			ferry_rd_take(&p->r, 1);
		if (!((c = peek(p)) >= '0' && c <= '9'))
			return jfail(p, "bad number");
		while ((c = peek(p)) >= '0' && c <= '9')
			ferry_rd_take(&p->r, 1);
	}
	n = p->r.off - start;
	j->s = strndup((const char *)p->r.p + start, n);
	if (!j->s) {
		p->oom = true;
		return -ENOMEM;
	}
	j->slen = n;
	j->num = strtod(j->s, NULL);
	j->type = FERRY__J_NUM;
	return 0;
}

static int jvalue(struct jp *p, struct ferry__json *j, int depth);

/* Elements of an array or members of an object, up to @close. */
static int jlist(struct jp *p, struct ferry__json *j, int close, int depth)
{
	struct ferry__json **tail = &j->child;
	int rc;

	skip_ws(p);
	if (peek(p) == close) {
		ferry_rd_take(&p->r, 1);
		return 0;
	}
	for (;;) {
		struct ferry__json *k = calloc(1, sizeof(*k));
		char *key = NULL;
		size_t klen;

		if (!k) {
			p->oom = true;
			return -ENOMEM;
		}
		*tail = k;
		tail = &k->next;
		skip_ws(p);
		if (close == '}') {
			if (!lit(p, "\""))
				return jfail(p, "expected a member name");
			if ((rc = jstring(p, &key, &klen)) < 0)
				return rc;
			k->key = key;
			skip_ws(p);
			if (!lit(p, ":"))
				return jfail(p, "expected ':'");
		}
		if ((rc = jvalue(p, k, depth + 1)) < 0)
			return rc;
		skip_ws(p);
		if (lit(p, ","))
			continue;
		if (peek(p) == close) {
			ferry_rd_take(&p->r, 1);
			return 0;
		}
		return jfail(p, "expected ',' or '%c'", close);
	}
}

static int jvalue(struct jp *p, struct ferry__json *j, int depth)
{
	int c;

	if (depth > JSON_DEPTH_MAX)
		return jfail(p, "nested too deeply");
	skip_ws(p);
	c = peek(p);
	switch (c) {
	case '{':
		ferry_rd_take(&p->r, 1);
		j->type = FERRY__J_OBJ;
		return jlist(p, j, '}', depth);
	case '[':
		ferry_rd_take(&p->r, 1);
		j->type = FERRY__J_ARR;
		return jlist(p, j, ']', depth);
	case '"':
		ferry_rd_take(&p->r, 1);
		j->type = FERRY__J_STR;
		return jstring(p, &j->s, &j->slen);
	case 't':
		j->type = FERRY__J_TRUE;
		return lit(p, "true") ? 0 : jfail(p, "bad literal");
	case 'f':
		j->type = FERRY__J_FALSE;
		return lit(p, "false") ? 0 : jfail(p, "bad literal");
	case 'n':
		j->type = FERRY__J_NULL;
		return lit(p, "null") ? 0 : jfail(p, "bad literal");
	case -1:
		return jfail(p, "unexpected end");
	default:
		return jnumber(p, j);
	}
}

void ferry__json_free(struct ferry__json *j)
{
	while (j) {
		struct ferry__json *next = j->next;

		ferry__json_free(j->child);
		free(j->key);
		free(j->s);
		free(j);
		j = next;
	}
}

int ferry__json_parse(const char *text, size_t len, struct ferry__json **out,
		      char *err, size_t errcap)
{
	struct jp p = { .err = err, .errcap = errcap };
	struct ferry__json *j;
	int rc;

	if (err && errcap)
		err[0] = '\0';
	ferry_rd_init(&p.r, text, len);
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	rc = jvalue(&p, j, 0);
	if (rc == 0) {
		skip_ws(&p);
		if (ferry_rd_left(&p.r))
			rc = jfail(&p, "text after the value");
	}
	if (rc < 0) {
		ferry__json_free(j);
		return p.oom ? -ENOMEM : -EINVAL;
	}
	*out = j;
	return 0;
}

const struct ferry__json *ferry__json_get(const struct ferry__json *o,
					  const char *key)
{
	if (!o || o->type != FERRY__J_OBJ)
		return NULL;
	for (const struct ferry__json *k = o->child; k; k = k->next)
		if (strcmp(k->key, key) == 0)
			return k;
	return NULL;
}

/* --- OTLP/JSON --------------------------------------------------------- */

struct oc {
	char *err;
	size_t errcap;
};

static int ofail(struct oc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int ofail(struct oc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (c->err && c->errcap)
		vsnprintf(c->err, c->errcap, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct ferry__json *get_type(const struct ferry__json *o,
					  const char *key, int type)
{
	const struct ferry__json *v = ferry__json_get(o, key);

	return v && v->type == type ? v : NULL;
}

static bool lower_hex(const struct ferry__json *v, size_t n)
{
	bool nonzero = false;

	if (!v || v->type != FERRY__J_STR || v->slen != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v->s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		nonzero |= c != '0';
	}
	return nonzero;
}

/* A uint64 nanosecond time: a decimal string (the mapping of fixed64). */
static bool ns_string(const struct ferry__json *v, uint64_t *out)
{
	uint64_t x = 0;

	if (!v || v->type != FERRY__J_STR || v->slen < 1 || v->slen > 20)
		return false;
	for (size_t i = 0; i < v->slen; i++) {
		unsigned d = (unsigned)(v->s[i] - '0');

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*out = x;
	return true;
}

/* A JSON integer (no fraction, no exponent) in [lo, hi]. */
static bool int_in(const struct ferry__json *v, int lo, int hi, int *out)
{
	if (!v || v->type != FERRY__J_NUM || strpbrk(v->s, ".eE") ||
	    v->num < lo || v->num > hi)
		return false;
	*out = (int)v->num;
	return true;
}

static int check_attrs(struct oc *c, const struct ferry__json *arr,
		       const char *where, struct ferry__otlp_span *sp)
{
	if (!arr)
		return 0;
	if (arr->type != FERRY__J_ARR)
		return ofail(c, "%s: attributes is not an array", where);
	for (const struct ferry__json *a = arr->child; a; a = a->next) {
		const struct ferry__json *k = get_type(a, "key", FERRY__J_STR);
		const struct ferry__json *v = get_type(a, "value", FERRY__J_OBJ);
		const struct ferry__json *x;

		if (!k || !v || !v->child || v->child->next)
			return ofail(c, "%s: an attribute needs a key and one value",
				     where);
		x = v->child;
		if (strcmp(x->key, "stringValue") == 0) {
			if (x->type != FERRY__J_STR)
				return ofail(c, "%s: %s: stringValue is not a string",
					     where, k->s);
		} else if (strcmp(x->key, "intValue") == 0) {
			/* int64: a decimal string (a number is accepted too). */
			if (x->type != FERRY__J_STR && x->type != FERRY__J_NUM)
				return ofail(c, "%s: %s: bad intValue", where, k->s);
		} else if (strcmp(x->key, "boolValue") == 0) {
			if (x->type != FERRY__J_TRUE && x->type != FERRY__J_FALSE)
				return ofail(c, "%s: %s: bad boolValue", where, k->s);
		} else if (strcmp(x->key, "doubleValue") == 0) {
			if (x->type != FERRY__J_NUM && x->type != FERRY__J_STR)
				return ofail(c, "%s: %s: bad doubleValue", where, k->s);
		} else {
			return ofail(c, "%s: %s: unknown value type %s", where,
				     k->s, x->key);
		}
		if (!sp)
			continue;
		sp->n_attrs++;
		if (x->type == FERRY__J_STR) {
			if (strcmp(k->s, "rpc.method") == 0)
				snprintf(sp->rpc_method, sizeof(sp->rpc_method),
					 "%s", x->s);
			else if (strcmp(k->s, "error.type") == 0)
				snprintf(sp->error_type, sizeof(sp->error_type),
					 "%s", x->s);
		}
	}
	return 0;
}

static int check_span(struct oc *c, const struct ferry__json *s,
		      struct ferry__otlp_span *o, const char *service)
{
	const struct ferry__json *v;
	char where[64];

	memset(o, 0, sizeof(*o));
	snprintf(o->service, sizeof(o->service), "%s", service);
	v = get_type(s, "spanId", FERRY__J_STR);
	snprintf(where, sizeof(where), "span %.16s", v ? v->s : "?");
	if (s->type != FERRY__J_OBJ)
		return ofail(c, "a span is not an object");
	if (!lower_hex(ferry__json_get(s, "traceId"), 32))
		return ofail(c, "%s: traceId is not 32 lower-case hex digits", where);
	if (!lower_hex(ferry__json_get(s, "spanId"), 16))
		return ofail(c, "%s: spanId is not 16 lower-case hex digits", where);
	memcpy(o->trace_id, ferry__json_get(s, "traceId")->s, 33);
	memcpy(o->span_id, ferry__json_get(s, "spanId")->s, 17);
	v = ferry__json_get(s, "parentSpanId");
	if (v && !(v->type == FERRY__J_STR && v->slen == 0)) {
		if (!lower_hex(v, 16))
			return ofail(c, "%s: parentSpanId is not 16 lower-case hex digits",
				     where);
		memcpy(o->parent_id, v->s, 17);
	}
	v = get_type(s, "name", FERRY__J_STR);
	if (!v || v->slen == 0)
		return ofail(c, "%s: no name", where);
	snprintf(o->name, sizeof(o->name), "%s", v->s);
	v = ferry__json_get(s, "kind");
	if (v && !int_in(v, 0, 5, &o->kind))
		return ofail(c, "%s: kind is not an integer 0..5", where);
	if (!ns_string(ferry__json_get(s, "startTimeUnixNano"), &o->start_ns) ||
	    !ns_string(ferry__json_get(s, "endTimeUnixNano"), &o->end_ns))
		return ofail(c, "%s: start/endTimeUnixNano are not decimal strings",
			     where);
	if (o->start_ns > o->end_ns)
		return ofail(c, "%s: ends before it starts", where);
	if (check_attrs(c, ferry__json_get(s, "attributes"), where, o) < 0)
		return -EINVAL;
	v = ferry__json_get(s, "status");
	if (v) {
		const struct ferry__json *m;

		if (v->type != FERRY__J_OBJ)
			return ofail(c, "%s: status is not an object", where);
		if (ferry__json_get(v, "code") &&
		    !int_in(ferry__json_get(v, "code"), 0, 2, &o->status))
			return ofail(c, "%s: status.code is not an integer 0..2",
				     where);
		m = ferry__json_get(v, "message");
		if (m && m->type != FERRY__J_STR)
			return ofail(c, "%s: status.message is not a string", where);
		if (m)
			snprintf(o->status_msg, sizeof(o->status_msg), "%s", m->s);
	}
	return 0;
}

static int push(struct ferry__otlp_span **spans, size_t *n, size_t *cap,
		const struct ferry__otlp_span *s)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		struct ferry__otlp_span *p = realloc(*spans, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*spans = p;
		*cap = nc;
	}
	(*spans)[(*n)++] = *s;
	return 0;
}

int ferry__otlp_parse_line(const char *line, size_t len,
			   struct ferry__otlp_span **spans, size_t *n,
			   size_t *cap, char *err, size_t errcap)
{
	struct oc c = { .err = err, .errcap = errcap };
	struct ferry__json *root;
	const struct ferry__json *rs;
	struct ferry__otlp_span sp;
	char jerr[96];
	size_t n0 = *n;
	int rc = ferry__json_parse(line, len, &root, jerr, sizeof(jerr));

	if (rc == -ENOMEM)
		return ofail(&c, "out of memory"), -ENOMEM;
	if (rc < 0)
		return ofail(&c, "not JSON: %s", jerr);
	rs = get_type(root, "resourceSpans", FERRY__J_ARR);
	if (!rs) {
		rc = ofail(&c, "no resourceSpans array");
		goto out;
	}
	for (const struct ferry__json *r = rs->child; r; r = r->next) {
		const struct ferry__json *res = ferry__json_get(r, "resource");
		const struct ferry__json *ss = get_type(r, "scopeSpans", FERRY__J_ARR);
		char service[64] = "";

		if (r->type != FERRY__J_OBJ || !ss) {
			rc = ofail(&c, "a resourceSpans entry has no scopeSpans array");
			goto out;
		}
		if (res) {
			const struct ferry__json *attrs = ferry__json_get(res, "attributes");

			if (res->type != FERRY__J_OBJ ||
			    check_attrs(&c, attrs, "resource", NULL) < 0) {
				rc = c.err && c.err[0] ? -EINVAL
					: ofail(&c, "resource is not an object");
				goto out;
			}
			for (const struct ferry__json *a = attrs ? attrs->child : NULL;
			     a; a = a->next) {
				const struct ferry__json *k = ferry__json_get(a, "key");
				const struct ferry__json *v = ferry__json_get(
					ferry__json_get(a, "value"), "stringValue");

				if (strcmp(k->s, "service.name") == 0 && v &&
				    v->type == FERRY__J_STR)
					snprintf(service, sizeof(service), "%s", v->s);
			}
		}
		for (const struct ferry__json *s = ss->child; s; s = s->next) {
			const struct ferry__json *sl = get_type(s, "spans", FERRY__J_ARR);

			if (s->type != FERRY__J_OBJ ||
			    (ferry__json_get(s, "spans") && !sl)) {
				rc = ofail(&c, "scopeSpans.spans is not an array");
				goto out;
			}
			for (const struct ferry__json *x = sl ? sl->child : NULL; x;
			     x = x->next) {
				if ((rc = check_span(&c, x, &sp, service)) < 0)
					goto out;
				if ((rc = push(spans, n, cap, &sp)) < 0) {
					ofail(&c, "out of memory");
					goto out;
				}
			}
		}
	}
	rc = 0;
out:
	if (rc < 0)
		*n = n0;
	ferry__json_free(root);
	return rc;
}
