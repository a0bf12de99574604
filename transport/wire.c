/* SPDX-License-Identifier: MIT */
/*
 * Wire format v1 codec.  See docs/wire-v1.md; the offsets below are the table
 * there, and every read of received bytes goes through struct ferry_rd.
 */
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <ferry/error.h>

#include "rd.h"

/* Header field offsets (docs/wire-v1.md, "Frame header"). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 2,
	OFF_TYPE = 3,
	OFF_FLAGS = 4,
	OFF_METHOD = 6,
	OFF_DST = 8,
	OFF_SRC = 12,
	OFF_SEQ = 16,
	OFF_ACK = 20,
	OFF_CREDIT = 24,
	OFF_REQ = 28,
	OFF_MSGLEN = 32,
	OFF_FRAGOFF = 36,
	OFF_CSUM = 40,
};

_Static_assert(OFF_CSUM + 4 == FERRY_WIRE_HDR_LEN, "header layout");

/* Flags each frame type may carry; anything else is malformed. */
static const uint16_t allowed_flags[FERRY_FT_MAX + 1] = {
	[FERRY_FT_CONNECT] = FERRY_FF_CSUM,
	[FERRY_FT_ACCEPT] = FERRY_FF_CSUM,
	[FERRY_FT_REQUEST] = FERRY_FF_CSUM | FERRY_FF_CAPS | FERRY_FF_TRACE,
	/* FF_ERR and FF_TRACE exclude each other (ferry__wire_parse). */
	[FERRY_FT_RESPONSE] = FERRY_FF_CSUM | FERRY_FF_ERR | FERRY_FF_TRACE,
	[FERRY_FT_CREDIT] = FERRY_FF_CSUM,
	[FERRY_FT_CLOSE] = FERRY_FF_CSUM | FERRY_FF_REPLY,
	[FERRY_FT_ERROR] = FERRY_FF_CSUM,
	[FERRY_FT_PING] = FERRY_FF_CSUM | FERRY_FF_REPLY,
	[FERRY_FT_PUSH] = FERRY_FF_CSUM,
};

static const char *const ft_names[FERRY_FT_MAX + 1] = {
	[FERRY_FT_CONNECT] = "CONNECT", [FERRY_FT_ACCEPT] = "ACCEPT",
	[FERRY_FT_REQUEST] = "REQUEST", [FERRY_FT_RESPONSE] = "RESPONSE",
	[FERRY_FT_CREDIT] = "CREDIT",   [FERRY_FT_CLOSE] = "CLOSE",
	[FERRY_FT_ERROR] = "ERROR",     [FERRY_FT_PING] = "PING",
	[FERRY_FT_PUSH] = "PUSH",
};

const char *ferry__ft_name(uint8_t type)
{
	if (type == 0 || type > FERRY_FT_MAX)
		return "UNKNOWN";
	return ft_names[type];
}

/* --- CRC32C ------------------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		crc_table[i] = c;
	}
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	/* Built once; pthread_once also orders the writes before any use
	 * on another thread. */
	pthread_once(&crc_once, crc_table_init);
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc,
							      const uint8_t *p,
							      size_t n)
{
	uint64_t c = crc;

	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	for (; n; n--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

static uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_hw(crc, p, n);
#endif
	return crc32c_sw(crc, p, n);
}

uint32_t ferry__crc32c(uint32_t crc, const void *p, size_t n)
{
	/* The running value is kept inverted inside, as the CRC is defined;
	 * inverting at both ends lets a caller continue a finished CRC. */
	return ~crc32c(~crc, p, n);
}

uint32_t ferry__wire_csum(const uint8_t *hdr, const void *payload,
			 size_t pay_len)
{
	static const uint8_t zero[4];
	uint32_t c = ~0u;

	c = crc32c(c, hdr, OFF_CSUM);
	c = crc32c(c, zero, sizeof(zero));
	c = crc32c(c, payload, pay_len);
	return ~c;
}

void ferry__wire_seal(uint8_t *hdr, const void *payload, size_t pay_len)
{
	ferry_wr_u32(hdr + OFF_CSUM, ferry__wire_csum(hdr, payload, pay_len));
}

void ferry__wire_seal_ext(uint8_t *hdr, size_t hdr_len, const void *body,
			 size_t body_len)
{
	static const uint8_t zero[4];
	uint32_t c = ~0u;

	/* CRC32C runs on: the payload's two pieces give the same value as
	 * one contiguous payload, which is what the receiver checks. */
	c = crc32c(c, hdr, OFF_CSUM);
	c = crc32c(c, zero, sizeof(zero));
	c = crc32c(c, hdr + FERRY_WIRE_HDR_LEN, hdr_len - FERRY_WIRE_HDR_LEN);
	c = crc32c(c, body, body_len);
	ferry_wr_u32(hdr + OFF_CSUM, ~c);
}

/* --- frames ------------------------------------------------------------ */

enum ferry_parse_err ferry__wire_parse(const void *buf, size_t len,
				      uint32_t max_msg, struct ferry_frame *f)
{
	struct ferry_rd r;
	struct ferry_hdr *h = &f->h;
	uint16_t magic;
	uint16_t allowed;

	if (len < FERRY_WIRE_HDR_LEN)
		return FERRY_PARSE_TRUNCATED;
	if (len > FERRY_WIRE_MAX_FRAME)
		return FERRY_PARSE_OVERSIZED;
	ferry_rd_init(&r, buf, len);
	magic = ferry_rd_u16(&r);
	h->version = ferry_rd_u8(&r);
	h->type = ferry_rd_u8(&r);
	h->flags = ferry_rd_u16(&r);
	h->method = ferry_rd_u16(&r);
	h->dst_sess = ferry_rd_u32(&r);
	h->src_sess = ferry_rd_u32(&r);
	h->seq = ferry_rd_u32(&r);
	h->ack = ferry_rd_u32(&r);
	h->credit = ferry_rd_u32(&r);
	h->req_id = ferry_rd_u32(&r);
	h->msg_len = ferry_rd_u32(&r);
	h->frag_off = ferry_rd_u32(&r);
	h->csum = ferry_rd_u32(&r);
	if (r.err)
		return FERRY_PARSE_TRUNCATED;
	f->payload = (const uint8_t *)buf + FERRY_WIRE_HDR_LEN;
	f->pay_len = (uint32_t)(len - FERRY_WIRE_HDR_LEN);

	if (magic != FERRY_WIRE_MAGIC)
		return FERRY_PARSE_BAD_MAGIC;
	if (h->version != FERRY_WIRE_VERSION)
		return FERRY_PARSE_BAD_VERSION;
	if (h->type == 0 || h->type > FERRY_FT_MAX)
		return FERRY_PARSE_BAD_TYPE;
	allowed = allowed_flags[h->type];
	if (h->flags & ~allowed)
		return FERRY_PARSE_MALFORMED;
	/* An error body has no room for attributes: they go with a normal
	 * response only. */
	if ((h->flags & (FERRY_FF_ERR | FERRY_FF_TRACE)) ==
	    (FERRY_FF_ERR | FERRY_FF_TRACE))
		return FERRY_PARSE_MALFORMED;

	/* Every frame but CONNECT is addressed to a session the receiver
	 * handed out; every frame names the sender's session except an ERROR
	 * from a server that kept none. */
	if (h->type == FERRY_FT_CONNECT ? h->dst_sess != 0 : h->dst_sess == 0)
		return FERRY_PARSE_MALFORMED;
	if (h->src_sess == 0 && h->type != FERRY_FT_ERROR)
		return FERRY_PARSE_MALFORMED;

	if (ferry_ft_is_data(h->type)) {
		if (h->msg_len > max_msg || h->msg_len > FERRY_WIRE_MAX_MSG)
			return FERRY_PARSE_OVERSIZED;
		/* A PUSH is one frame and belongs to no call. */
		if (h->type == FERRY_FT_PUSH
			    ? h->req_id != 0 || h->method != 0 ||
				      h->frag_off != 0 || h->msg_len != f->pay_len
			    : h->req_id == 0)
			return FERRY_PARSE_MALFORMED;
		/* 64-bit sum: a u32 frag_off near 4 GiB must not wrap. */
		if ((uint64_t)h->frag_off + f->pay_len > h->msg_len)
			return FERRY_PARSE_MALFORMED;
		/* Only an empty message may have an empty fragment. */
		if (f->pay_len == 0 && h->msg_len != 0)
			return FERRY_PARSE_MALFORMED;
	} else {
		if (h->frag_off != 0 || h->msg_len != f->pay_len ||
		    h->req_id != 0 || h->method != 0 || h->seq != 0)
			return FERRY_PARSE_MALFORMED;
	}
	if ((h->flags & FERRY_FF_CSUM) &&
	    ferry__wire_csum(buf, f->payload, f->pay_len) != h->csum)
		return FERRY_PARSE_MALFORMED;
	return FERRY_PARSE_OK;
}

void ferry__wire_encode(const struct ferry_hdr *h, uint8_t *out)
{
	uint8_t *p = out;

	p = ferry_wr_u16(p, FERRY_WIRE_MAGIC);
	*p++ = FERRY_WIRE_VERSION;
	*p++ = h->type;
	p = ferry_wr_u16(p, h->flags);
	p = ferry_wr_u16(p, h->method);
	p = ferry_wr_u32(p, h->dst_sess);
	p = ferry_wr_u32(p, h->src_sess);
	p = ferry_wr_u32(p, h->seq);
	p = ferry_wr_u32(p, h->ack);
	p = ferry_wr_u32(p, h->credit);
	p = ferry_wr_u32(p, h->req_id);
	p = ferry_wr_u32(p, h->msg_len);
	p = ferry_wr_u32(p, h->frag_off);
	ferry_wr_u32(p, 0);
}

/* --- connect / accept TLVs --------------------------------------------- */

int ferry__wire_parse_connect(const uint8_t *p, size_t len,
			     struct ferry_connect_body *out)
{
	struct ferry_rd r;
	bool unsupported = false, have_features = false;

	memset(out, 0, sizeof(*out));
	ferry_rd_init(&r, p, len);
	while (ferry_rd_left(&r) > 0) {
		uint8_t type = ferry_rd_u8(&r);
		uint8_t rsvd = ferry_rd_u8(&r);
		uint16_t tlen = ferry_rd_u16(&r);
		struct ferry_rd v = ferry_rd_sub(&r, tlen);

		if (r.err || rsvd != 0)
			return -1;
		switch (type) {
		case FERRY_TLV_PARAMS:
			if (tlen != FERRY_TLV_PARAMS_LEN || out->have_params)
				return -1;
			out->have_params = true;
			out->params.max_msg = ferry_rd_u32(&v);
			out->params.credits = ferry_rd_u32(&v);
			out->params.max_frame = ferry_rd_u16(&v);
			out->params.slots = ferry_rd_u16(&v);
			if (ferry_rd_u32(&v) != 0) /* reserved */
				return -1;
			break;
		case FERRY_TLV_TRACEPARENT:
			if (tlen != FERRY_TRACEPARENT_LEN || out->traceparent)
				return -1;
			out->traceparent = (const char *)ferry_rd_take(&v, tlen);
			out->traceparent_len = tlen;
			break;
		case FERRY_TLV_TRACESTATE:
			if (tlen > FERRY_TRACESTATE_MAX || out->tracestate)
				return -1;
			out->tracestate = (const char *)ferry_rd_take(&v, tlen);
			out->tracestate_len = tlen;
			break;
		case FERRY_TLV_TOKEN:
			/* Opaque here: the admission hook judges it. */
			if (tlen == 0 || out->token)
				return -1;
			out->token = ferry_rd_take(&v, tlen);
			out->token_len = tlen;
			break;
		case FERRY_TLV_FEATURES:
			/* Bits this build does not know are the sender's
			 * business: a peer only uses what both sides name. */
			if (tlen != FERRY_TLV_FEATURES_LEN || have_features)
				return -1;
			have_features = true;
			out->features = ferry_rd_u32(&v);
			break;
		default:
			/* Unknown: skip it, but if the sender said the
			 * receiver must understand it, the connect is refused
			 * once the rest is known to be well formed. */
			if (type & FERRY_TLV_CRITICAL)
				unsupported = true;
			break;
		}
		if (v.err)
			return -1;
	}
	if (!out->have_params)
		return -1;
	if (out->params.max_frame < FERRY_WIRE_MIN_FRAME ||
	    out->params.max_frame > FERRY_WIRE_MAX_FRAME ||
	    out->params.credits == 0 || out->params.slots == 0 ||
	    out->params.max_msg == 0 || out->params.max_msg > FERRY_WIRE_MAX_MSG)
		return -1;
	return unsupported ? FERRY_CONNECT_UNSUPPORTED : 0;
}

static uint8_t *put_tlv(uint8_t *p, uint8_t type, const void *v, uint16_t len)
{
	*p++ = type;
	*p++ = 0;
	p = ferry_wr_u16(p, len);
	if (len)
		memcpy(p, v, len);
	return p + len;
}

int ferry__wire_put_connect(uint8_t *out, size_t cap,
			   const struct ferry_connect_body *b)
{
	uint8_t params[FERRY_TLV_PARAMS_LEN];
	size_t need = 4 + FERRY_TLV_PARAMS_LEN;
	uint8_t *p = out, *q;

	if ((b->traceparent && b->traceparent_len != FERRY_TRACEPARENT_LEN) ||
	    (b->tracestate && b->tracestate_len > FERRY_TRACESTATE_MAX) ||
	    (b->token && b->token_len == 0))
		return -1;
	if (b->traceparent)
		need += 4u + b->traceparent_len;
	if (b->tracestate)
		need += 4u + b->tracestate_len;
	if (b->token)
		need += 4u + b->token_len;
	if (b->features)
		need += 4u + FERRY_TLV_FEATURES_LEN;
	if (need > cap)
		return -1;
	q = ferry_wr_u32(params, b->params.max_msg);
	q = ferry_wr_u32(q, b->params.credits);
	q = ferry_wr_u16(q, b->params.max_frame);
	q = ferry_wr_u16(q, b->params.slots);
	ferry_wr_u32(q, 0);
	p = put_tlv(p, FERRY_TLV_PARAMS, params, sizeof(params));
	if (b->traceparent)
		p = put_tlv(p, FERRY_TLV_TRACEPARENT, b->traceparent,
			    b->traceparent_len);
	if (b->tracestate)
		p = put_tlv(p, FERRY_TLV_TRACESTATE, b->tracestate,
			    b->tracestate_len);
	if (b->features) {
		uint8_t f[FERRY_TLV_FEATURES_LEN];

		ferry_wr_u32(f, b->features);
		p = put_tlv(p, FERRY_TLV_FEATURES, f, sizeof(f));
	}
	if (b->token)
		p = put_tlv(p, FERRY_TLV_TOKEN, b->token, b->token_len);
	return (int)(p - out);
}

size_t ferry__wire_put_tlv_head(uint8_t *out, uint8_t type, uint16_t len)
{
	out[0] = type;
	out[1] = 0;
	ferry_wr_u16(out + 2, len);
	return 4;
}

/* --- token tables ------------------------------------------------------ */

int ferry__wire_parse_caps(const uint8_t *p, size_t len, uint32_t *tab_len,
			  unsigned *count, unsigned *nious)
{
	struct ferry_rd r, t;
	uint8_t version;
	unsigned n, ious = 0;
	uint16_t tlen;

	ferry_rd_init(&r, p, len);
	/* An empty message cannot hold a table; its first byte is the
	 * version, checked first so that a later layout can change the
	 * rest. */
	version = ferry_rd_u8(&r);
	if (r.err)
		return -FERRY_ECAPS;
	if (version != FERRY_CAPS_VERSION)
		return -EPROTONOSUPPORT;
	n = ferry_rd_u8(&r);
	tlen = ferry_rd_u16(&r);
	if (r.err || n == 0 || n > FERRY_WIRE_CAPS_MAX ||
	    tlen < FERRY_CAPS_HDR_LEN + n * FERRY_CAPS_ENT_HDR_LEN ||
	    tlen > FERRY_WIRE_CAPS_MAX_LEN || tlen > len)
		return -FERRY_ECAPS;
	/* The entries fill the table exactly. */
	ferry_rd_init(&t, p + FERRY_CAPS_HDR_LEN, tlen - FERRY_CAPS_HDR_LEN);
	for (unsigned i = 0; i < n; i++) {
		uint8_t kind = ferry_rd_u8(&t);
		uint8_t rsvd = ferry_rd_u8(&t);
		uint16_t vlen = ferry_rd_u16(&t);

		ferry_rd_take(&t, vlen);
		if (t.err || rsvd != 0 || vlen == 0)
			return -FERRY_ECAPS;
		if (kind == FERRY_CAPK_IOU) {
			if (vlen != FERRY_CAPS_IOU_LEN)
				return -FERRY_ECAPS;
			ious++;
		} else if (kind != FERRY_CAPK_TOKEN) {
			return -FERRY_ECAPS;
		}
	}
	if (ferry_rd_left(&t) != 0)
		return -FERRY_ECAPS;
	*tab_len = tlen;
	*count = n;
	*nious = ious;
	return 0;
}

int ferry__wire_caps_get(const uint8_t *tab, uint32_t tab_len, unsigned i,
			struct ferry_cap_ent *out)
{
	struct ferry_rd r;
	unsigned n;

	ferry_rd_init(&r, tab, tab_len);
	ferry_rd_u8(&r); /* version */
	n = ferry_rd_u8(&r);
	ferry_rd_u16(&r);
	if (r.err || i >= n)
		return -ENOENT;
	for (unsigned k = 0;; k++) {
		uint8_t kind = ferry_rd_u8(&r);
		uint16_t vlen;
		const uint8_t *v;

		ferry_rd_u8(&r);
		vlen = ferry_rd_u16(&r);
		v = ferry_rd_take(&r, vlen);
		if (r.err)
			return -ENOENT; /* not a table parse_caps accepted */
		if (k == i) {
			out->kind = kind;
			out->val = v;
			out->len = vlen;
			return 0;
		}
	}
}

int ferry__wire_put_caps(uint8_t *out, size_t cap,
			const struct ferry_cap_ent *ents, unsigned n)
{
	size_t need = FERRY_CAPS_HDR_LEN;
	uint8_t *p = out;

	if (n == 0 || n > FERRY_WIRE_CAPS_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		const struct ferry_cap_ent *e = &ents[i];

		if (e->len == 0 || !e->val ||
		    (e->kind != FERRY_CAPK_TOKEN && e->kind != FERRY_CAPK_IOU) ||
		    (e->kind == FERRY_CAPK_IOU && e->len != FERRY_CAPS_IOU_LEN))
			return -EINVAL;
		need += FERRY_CAPS_ENT_HDR_LEN + (size_t)e->len;
	}
	if (need > FERRY_WIRE_CAPS_MAX_LEN || need > cap)
		return -EMSGSIZE;
	*p++ = FERRY_CAPS_VERSION;
	*p++ = (uint8_t)n;
	p = ferry_wr_u16(p, (uint16_t)need);
	for (unsigned i = 0; i < n; i++) {
		*p++ = ents[i].kind;
		*p++ = 0;
		p = ferry_wr_u16(p, ents[i].len);
		memcpy(p, ents[i].val, ents[i].len);
		p += ents[i].len;
	}
	return (int)need;
}

/* --- trace blocks (REQUEST with FF_TRACE) ----------------------------- */

int ferry__wire_parse_trace_block(const uint8_t *p, size_t len,
				 uint32_t *block_len,
				 struct ferry_trace_block *out)
{
	struct ferry_rd r;
	uint8_t version, rsvd;
	uint16_t blen;

	memset(out, 0, sizeof(*out));
	ferry_rd_init(&r, p, len);
	version = ferry_rd_u8(&r);
	rsvd = ferry_rd_u8(&r);
	blen = ferry_rd_u16(&r);
	/* The length comes first, whatever the version: a receiver must be
	 * able to step over a block it does not understand, and without a
	 * length it can trust it cannot find what follows. */
	if (r.err || blen < FERRY_TRACE_BLOCK_MIN ||
	    blen > FERRY_TRACE_BLOCK_MAX || blen > len)
		return -FERRY_EPROTO;
	*block_len = blen;
	if (version != FERRY_TRACE_BLOCK_VERSION || rsvd != 0)
		return -EPROTONOSUPPORT;
	out->traceparent = (const char *)ferry_rd_take(&r, FERRY_TRACEPARENT_LEN);
	out->tracestate_len = (uint16_t)(blen - FERRY_TRACE_BLOCK_MIN);
	out->tracestate = out->tracestate_len
				  ? (const char *)ferry_rd_take(&r, out->tracestate_len)
				  : NULL;
	if (r.err) { /* cannot happen: blen <= len was checked */
		memset(out, 0, sizeof(*out));
		return -FERRY_EPROTO;
	}
	return 0;
}

int ferry__wire_put_trace_block(uint8_t *out, size_t cap, const char *tp,
			       const char *ts, size_t ts_len)
{
	size_t need = FERRY_TRACE_BLOCK_MIN + ts_len;
	uint8_t *p = out;

	if (!tp || ts_len > FERRY_TRACESTATE_MAX || (ts_len && !ts))
		return -EINVAL;
	if (need > cap)
		return -EMSGSIZE;
	*p++ = FERRY_TRACE_BLOCK_VERSION;
	*p++ = 0;
	p = ferry_wr_u16(p, (uint16_t)need);
	memcpy(p, tp, FERRY_TRACEPARENT_LEN);
	p += FERRY_TRACEPARENT_LEN;
	if (ts_len)
		memcpy(p, ts, ts_len);
	return (int)need;
}

/* --- attribute blocks (RESPONSE with FF_TRACE) -------------------------- */

bool ferry__wire_attr_key_ok(const char *key, size_t len)
{
	if (!key || len == 0 || len > FERRY_WIRE_ATTR_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((uint8_t)key[i] < 0x21 || (uint8_t)key[i] > 0x7e)
			return false;
	return true;
}

/* Read one entry at @r into @e; false if it breaks a rule. */
static bool attr_read(struct ferry_rd *r, struct ferry_attr_ent *e)
{
	const uint8_t *v;
	uint16_t vlen;

	memset(e, 0, sizeof(*e));
	e->type = ferry_rd_u8(r);
	e->key_len = ferry_rd_u8(r);
	vlen = ferry_rd_u16(r);
	e->key = (const char *)ferry_rd_take(r, e->key_len);
	v = ferry_rd_take(r, vlen);
	if (r->err || !ferry__wire_attr_key_ok(e->key, e->key_len))
		return false;
	switch (e->type) {
	case FERRY_ATTRT_STRING:
		if (vlen > FERRY_WIRE_ATTR_STR_MAX)
			return false;
		e->str = (const char *)v;
		e->str_len = vlen;
		return true;
	case FERRY_ATTRT_INT:
	case FERRY_ATTRT_DOUBLE: {
		struct ferry_rd vr;
		uint64_t bits;

		if (vlen != 8)
			return false;
		ferry_rd_init(&vr, v, 8);
		bits = ferry_rd_u64(&vr);
		if (e->type == FERRY_ATTRT_INT)
			e->i = (int64_t)bits;
		else
			memcpy(&e->d, &bits, sizeof(e->d));
		return true;
	}
	case FERRY_ATTRT_BOOL:
		if (vlen != 1 || v[0] > 1)
			return false;
		e->b = v[0] == 1;
		return true;
	default:
		return false;
	}
}

int ferry__wire_parse_resp_attrs(const uint8_t *p, size_t len,
				uint32_t *block_len, unsigned *count)
{
	struct ferry_rd r, t;
	struct ferry_attr_ent e;
	uint8_t version;
	unsigned n;
	uint16_t blen;

	*count = 0;
	ferry_rd_init(&r, p, len);
	version = ferry_rd_u8(&r);
	n = ferry_rd_u8(&r);
	blen = ferry_rd_u16(&r);
	/* Whether the payload can be found decides between a call that
	 * fails and attributes that are merely ignored. */
	if (r.err || blen < FERRY_ATTRS_HDR_LEN ||
	    blen > FERRY_WIRE_ATTRS_MAX_LEN || blen > len)
		return -FERRY_EPROTO;
	*block_len = blen;
	if (version != FERRY_ATTRS_VERSION || n == 0 ||
	    n > FERRY_WIRE_ATTRS_MAX)
		return -EBADMSG;
	/* The entries fill the block exactly. */
	ferry_rd_init(&t, p + FERRY_ATTRS_HDR_LEN, blen - FERRY_ATTRS_HDR_LEN);
	for (unsigned i = 0; i < n; i++)
		if (!attr_read(&t, &e))
			return -EBADMSG;
	if (ferry_rd_left(&t) != 0)
		return -EBADMSG;
	*count = n;
	return 0;
}

int ferry__wire_resp_attr_get(const uint8_t *blk, uint32_t block_len,
			     unsigned i, struct ferry_attr_ent *out)
{
	struct ferry_rd r;
	unsigned n;

	ferry_rd_init(&r, blk, block_len);
	ferry_rd_u8(&r); /* version */
	n = ferry_rd_u8(&r);
	ferry_rd_u16(&r);
	if (r.err || i >= n)
		return -ENOENT;
	for (unsigned k = 0; k <= i; k++)
		if (!attr_read(&r, out))
			return -ENOENT; /* not a block parse accepted */
	return 0;
}

int ferry__wire_put_resp_attr(uint8_t *out, size_t cap,
			     const struct ferry_attr_ent *e)
{
	size_t vlen, need;
	uint8_t *p = out;

	if (!ferry__wire_attr_key_ok(e->key, e->key_len))
		return -EINVAL;
	switch (e->type) {
	case FERRY_ATTRT_STRING:
		if (e->str_len > FERRY_WIRE_ATTR_STR_MAX ||
		    (e->str_len && !e->str))
			return -EINVAL;
		vlen = e->str_len;
		break;
	case FERRY_ATTRT_INT:
	case FERRY_ATTRT_DOUBLE:
		vlen = 8;
		break;
	case FERRY_ATTRT_BOOL:
		vlen = 1;
		break;
	default:
		return -EINVAL;
	}
	need = FERRY_ATTRS_ENT_HDR_LEN + e->key_len + vlen;
	if (need > cap)
		return -EMSGSIZE;
	*p++ = e->type;
	*p++ = e->key_len;
	p = ferry_wr_u16(p, (uint16_t)vlen);
	memcpy(p, e->key, e->key_len);
	p += e->key_len;
	switch (e->type) {
	case FERRY_ATTRT_STRING:
		if (vlen)
			memcpy(p, e->str, vlen);
		break;
	case FERRY_ATTRT_INT:
		ferry_wr_u64(p, (uint64_t)e->i);
		break;
	case FERRY_ATTRT_DOUBLE: {
		uint64_t bits;

		/* The bits as they are: NaN payloads and -0.0 survive. */
		memcpy(&bits, &e->d, sizeof(bits));
		ferry_wr_u64(p, bits);
		break;
	}
	default:
		*p = e->b ? 1 : 0;
		break;
	}
	return (int)need;
}

void ferry__wire_put_resp_attrs_head(uint8_t *out, unsigned count,
				    uint32_t block_len)
{
	out[0] = FERRY_ATTRS_VERSION;
	out[1] = (uint8_t)count;
	ferry_wr_u16(out + 2, (uint16_t)block_len);
}

int ferry__wire_put_resp_attrs(uint8_t *out, size_t cap,
			      const struct ferry_attr_ent *ents, unsigned n)
{
	size_t room = cap < FERRY_WIRE_ATTRS_MAX_LEN ? cap
						     : FERRY_WIRE_ATTRS_MAX_LEN;
	size_t off = FERRY_ATTRS_HDR_LEN;

	if (n == 0 || n > FERRY_WIRE_ATTRS_MAX)
		return -EINVAL;
	/* Every entry is checked before the size is: -EINVAL wins. */
	for (unsigned i = 0; i < n; i++) {
		uint8_t tmp[FERRY_ATTRS_ENT_HDR_LEN + FERRY_WIRE_ATTR_KEY_MAX +
			    FERRY_WIRE_ATTR_STR_MAX];

		if (ferry__wire_put_resp_attr(tmp, sizeof(tmp), &ents[i]) < 0)
			return -EINVAL;
	}
	if (room < FERRY_ATTRS_HDR_LEN)
		return -EMSGSIZE;
	for (unsigned i = 0; i < n; i++) {
		int m = ferry__wire_put_resp_attr(out + off, room - off, &ents[i]);

		if (m < 0)
			return m;
		off += (size_t)m;
	}
	ferry__wire_put_resp_attrs_head(out, n, (uint32_t)off);
	return (int)off;
}

/* --- PUSH bodies ------------------------------------------------------- */

int ferry__wire_parse_push(const uint8_t *p, size_t len, struct ferry_push *out)
{
	struct ferry_rd r;
	uint16_t rsvd;

	ferry_rd_init(&r, p, len);
	out->iou = ferry_rd_u64(&r);
	out->code = ferry_rd_u32(&r);
	out->token_len = ferry_rd_u16(&r);
	rsvd = ferry_rd_u16(&r);
	out->token = ferry_rd_take(&r, out->token_len);
	if (r.err || rsvd != 0)
		return -1;
	/* A token with success, none with an error. */
	if (out->code == 0 ? out->token_len == 0 ||
				     out->token_len > FERRY_PUSH_TOKEN_MAX
			   : out->token_len != 0)
		return -1;
	if (out->code != 0)
		out->token = NULL;
	return FERRY_PUSH_HDR_LEN + out->token_len;
}

int ferry__wire_put_push(uint8_t *out, size_t cap, const struct ferry_push *push)
{
	uint8_t *p = out;
	size_t tl = push->code == 0 ? push->token_len : 0;

	if ((push->code == 0 &&
	     (tl == 0 || tl > FERRY_PUSH_TOKEN_MAX || !push->token)) ||
	    FERRY_PUSH_HDR_LEN + tl > cap)
		return -1;
	p = ferry_wr_u32(p, (uint32_t)(push->iou >> 32));
	p = ferry_wr_u32(p, (uint32_t)push->iou);
	p = ferry_wr_u32(p, push->code);
	p = ferry_wr_u16(p, (uint16_t)tl);
	p = ferry_wr_u16(p, 0);
	if (tl)
		memcpy(p, push->token, tl);
	return (int)(FERRY_PUSH_HDR_LEN + tl);
}

/* --- error bodies ------------------------------------------------------ */

int ferry__wire_parse_error(const uint8_t *p, size_t len, uint32_t *code,
			   const char **msg, uint16_t *msg_len)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, len);
	*code = ferry_rd_u32(&r);
	*msg_len = ferry_rd_u16(&r);
	*msg = (const char *)ferry_rd_take(&r, *msg_len);
	/* A code is negated into a result: 1..INT_MAX, never 0. */
	if (r.err || ferry_rd_left(&r) != 0 || *code == 0 ||
	    *code > INT_MAX || *msg_len > FERRY_ERROR_MSG_MAX)
		return -1;
	return 0;
}

size_t ferry__wire_put_error(uint8_t *out, size_t cap, uint32_t code,
			    const char *msg)
{
	size_t n = msg ? strnlen(msg, FERRY_ERROR_MSG_MAX) : 0;
	uint8_t *p;

	if (cap < 6)
		return 0;
	if (n > cap - 6)
		n = cap - 6;
	p = ferry_wr_u32(out, code);
	p = ferry_wr_u16(p, (uint16_t)n);
	if (n)
		memcpy(p, msg, n);
	return 6 + n;
}
