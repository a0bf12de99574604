/* SPDX-License-Identifier: MIT */
/*
 * Wire format v2 codec, handshake part: the bodies of the handshake frames
 * (docs/wire.md section 3.3), the rules of each handshake message
 * (section 4.1) and the v1 envelope a CONNECT travels in (section 4.2),
 * for the handshake unit (handshake*.c).
 */
#include "wire2.h"

#include <errno.h>
#include <string.h>

#include "rd.h"

/* --- handshake frame bodies --------------------------------------------- */

#define PARAMS_LEN 16
#define HELLO_LEN (4 + FERRY_W2_KEY_LEN)
#define COOKIE_LEN (4 + FERRY_W2_COOKIE_MAC_LEN)
#define MIN_WINDOW 4096u
#define REPLAY_LOG2_MIN 6
#define REPLAY_LOG2_MAX 16

static enum ferry_w2_err hello_decode(struct ferry_rd *b,
				      struct ferry_w2_hello *h)
{
	uint8_t rsvd;

	if (ferry_rd_left(b) != HELLO_LEN)
		return FERRY_W2_E_BAD_LEN;
	h->versions = ferry_rd_u16(b);
	h->mode = ferry_rd_u8(b);
	rsvd = ferry_rd_u8(b);
	h->pk = ferry_rd_take(b, FERRY_W2_KEY_LEN);
	if (rsvd != 0)
		return FERRY_W2_E_RESERVED;
	/* Whether the versions and the key are acceptable is the
	 * handshake's business; these are never meaningful. */
	if (h->versions == 0 || h->mode > FERRY_W2_MODE_AEAD)
		return FERRY_W2_E_HELLO;
	return FERRY_W2_OK;
}

static enum ferry_w2_err params_decode(struct ferry_rd *b,
				       struct ferry_w2_params *p)
{
	uint8_t rsvd;

	if (ferry_rd_left(b) != PARAMS_LEN)
		return FERRY_W2_E_BAD_LEN;
	p->max_msg = ferry_rd_u32(b);
	p->window = ferry_rd_u32(b);
	p->max_frame = ferry_rd_u16(b);
	p->slots = ferry_rd_u16(b);
	p->max_ack_delay = ferry_rd_u16(b);
	p->replay_log2 = ferry_rd_u8(b);
	rsvd = ferry_rd_u8(b);
	if (rsvd != 0)
		return FERRY_W2_E_RESERVED;
	if (p->max_msg == 0 || p->max_msg > FERRY_W2_MAX_MSG ||
	    p->window < MIN_WINDOW || p->window > FERRY_W2_MAX_MSG ||
	    p->max_frame < FERRY_W2_MIN_FRAME ||
	    p->max_frame > FERRY_W2_MAX_DGRAM || p->slots == 0 ||
	    p->replay_log2 < REPLAY_LOG2_MIN || p->replay_log2 > REPLAY_LOG2_MAX)
		return FERRY_W2_E_PARAMS;
	return FERRY_W2_OK;
}

/* A body of @min..@max bytes, kept in place in @blob. */
static enum ferry_w2_err blob_decode(struct ferry_rd *b, size_t min,
				     size_t max, struct ferry_w2_blob *blob)
{
	size_t n = ferry_rd_left(b);

	if (n < min || n > max)
		return FERRY_W2_E_BAD_LEN;
	blob->len = (uint16_t)n;
	blob->p = ferry_rd_take(b, n);
	return FERRY_W2_OK;
}

enum ferry_w2_err ferry__w2_hs_body_decode(struct ferry_rd *b,
					  struct ferry_w2_frame *f)
{
	switch (f->type) {
	case FERRY_W2_HELLO:
		return hello_decode(b, &f->u.hello);
	case FERRY_W2_PARAMS:
		return params_decode(b, &f->u.params);
	case FERRY_W2_FEATURES:
		/* Unknown bits are the sender's: only what both name is
		 * used. */
		if (ferry_rd_left(b) != 4)
			return FERRY_W2_E_BAD_LEN;
		f->u.features = ferry_rd_u32(b);
		return FERRY_W2_OK;
	case FERRY_W2_COOKIE:
		if (ferry_rd_left(b) != COOKIE_LEN)
			return FERRY_W2_E_BAD_LEN;
		f->u.cookie.ts = ferry_rd_u32(b);
		f->u.cookie.mac = ferry_rd_take(b, FERRY_W2_COOKIE_MAC_LEN);
		return FERRY_W2_OK;
	case FERRY_W2_TOKEN: /* opaque here; never empty, as in v1 */
		return blob_decode(b, 1, UINT16_MAX, &f->u.blob);
	case FERRY_W2_POP:
		return blob_decode(b, FERRY_W2_POP_LEN, FERRY_W2_POP_LEN,
				   &f->u.blob);
	case FERRY_W2_TRACEPARENT:
		return blob_decode(b, FERRY_TRACEPARENT_LEN,
				   FERRY_TRACEPARENT_LEN, &f->u.blob);
	case FERRY_W2_TRACESTATE:
		return blob_decode(b, 0, FERRY_TRACESTATE_MAX, &f->u.blob);
	case FERRY_W2_ERROR:
		return ferry__w2_errbody_decode(b, false, &f->u.err);
	default: /* not a handshake type: ferry__w2_frame_decode's table
		  * lets none through */
		return FERRY_W2_E_UNKNOWN_TYPE;
	}
}

int ferry__w2_hs_body_len(const struct ferry_w2_frame *f)
{
	switch (f->type) {
	case FERRY_W2_HELLO:
		return HELLO_LEN;
	case FERRY_W2_PARAMS:
		return PARAMS_LEN;
	case FERRY_W2_FEATURES:
		return 4;
	case FERRY_W2_COOKIE:
		return COOKIE_LEN;
	case FERRY_W2_TOKEN:
	case FERRY_W2_POP:
	case FERRY_W2_TRACEPARENT:
	case FERRY_W2_TRACESTATE:
		return f->u.blob.len;
	case FERRY_W2_ERROR:
		return 6 + f->u.err.msg_len;
	default:
		return -EINVAL;
	}
}

void ferry__w2_hs_body_put(uint8_t *p, const struct ferry_w2_frame *f)
{
	const struct ferry_w2_params *pa = &f->u.params;

	switch (f->type) {
	case FERRY_W2_HELLO:
		p = ferry_wr_u16(p, f->u.hello.versions);
		*p++ = f->u.hello.mode;
		*p++ = 0;
		memcpy(p, f->u.hello.pk, FERRY_W2_KEY_LEN);
		return;
	case FERRY_W2_PARAMS:
		p = ferry_wr_u32(p, pa->max_msg);
		p = ferry_wr_u32(p, pa->window);
		p = ferry_wr_u16(p, pa->max_frame);
		p = ferry_wr_u16(p, pa->slots);
		p = ferry_wr_u16(p, pa->max_ack_delay);
		*p++ = pa->replay_log2;
		*p = 0;
		return;
	case FERRY_W2_FEATURES:
		ferry_wr_u32(p, f->u.features);
		return;
	case FERRY_W2_COOKIE:
		p = ferry_wr_u32(p, f->u.cookie.ts);
		memcpy(p, f->u.cookie.mac, FERRY_W2_COOKIE_MAC_LEN);
		return;
	case FERRY_W2_ERROR:
		p = ferry_wr_u32(p, f->u.err.code);
		p = ferry_wr_u16(p, f->u.err.msg_len);
		if (f->u.err.msg_len)
			memcpy(p, f->u.err.msg, f->u.err.msg_len);
		return;
	default: /* TOKEN, POP, TRACEPARENT, TRACESTATE */
		if (f->u.blob.len)
			memcpy(p, f->u.blob.p, f->u.blob.len);
		return;
	}
}

/* --- handshake messages (section 4.1) ------------------------------------- */

#define HS_BIT(t) (1u << ((t) - FERRY_W2_HELLO))

/* What each long-header type may and must carry, besides PADDING and
 * ignorable extensions. */
static const uint32_t hs_may[4] = {
	[FERRY_W2_CONNECT] = HS_BIT(FERRY_W2_HELLO) | HS_BIT(FERRY_W2_COOKIE) |
			     HS_BIT(FERRY_W2_PARAMS) |
			     HS_BIT(FERRY_W2_FEATURES) |
			     HS_BIT(FERRY_W2_TRACEPARENT) |
			     HS_BIT(FERRY_W2_TRACESTATE) |
			     HS_BIT(FERRY_W2_TOKEN) | HS_BIT(FERRY_W2_POP),
	[FERRY_W2_RETRY] = HS_BIT(FERRY_W2_COOKIE),
	[FERRY_W2_ACCEPT] = HS_BIT(FERRY_W2_HELLO) | HS_BIT(FERRY_W2_PARAMS) |
			    HS_BIT(FERRY_W2_FEATURES),
	[FERRY_W2_REFUSE] = HS_BIT(FERRY_W2_ERROR),
};
static const uint32_t hs_must[4] = {
	[FERRY_W2_CONNECT] = HS_BIT(FERRY_W2_HELLO) | HS_BIT(FERRY_W2_PARAMS),
	[FERRY_W2_RETRY] = HS_BIT(FERRY_W2_COOKIE),
	[FERRY_W2_ACCEPT] = HS_BIT(FERRY_W2_HELLO) | HS_BIT(FERRY_W2_PARAMS),
	[FERRY_W2_REFUSE] = HS_BIT(FERRY_W2_ERROR),
};

static void hs_store(struct ferry_w2_hs *hs, const struct ferry_w2_frame *f)
{
	switch (f->type) {
	case FERRY_W2_HELLO:
		hs->hello = f->u.hello;
		break;
	case FERRY_W2_PARAMS:
		hs->params = f->u.params;
		break;
	case FERRY_W2_FEATURES:
		hs->features = f->u.features;
		break;
	case FERRY_W2_COOKIE:
		hs->cookie = f->u.cookie;
		break;
	case FERRY_W2_TOKEN:
		hs->token = f->u.blob;
		break;
	case FERRY_W2_POP:
		hs->pop = f->u.blob.p;
		break;
	case FERRY_W2_TRACEPARENT:
		hs->traceparent = f->u.blob;
		break;
	case FERRY_W2_TRACESTATE:
		hs->tracestate = f->u.blob;
		break;
	default: /* FERRY_W2_ERROR */
		hs->error = f->u.err;
		break;
	}
}

/* The placement rules of one frame, the @idx-th that is not PADDING. */
static enum ferry_w2_err hs_place(const struct ferry_w2_dgram *d,
				  struct ferry_w2_hs *hs,
				  const struct ferry_w2_frame *f, unsigned idx)
{
	uint32_t bit;

	if (f->type >= FERRY_W2_FT_IGNORABLE)
		return FERRY_W2_OK;
	bit = HS_BIT(f->type);
	if (!(hs_may[d->type] & bit))
		return FERRY_W2_E_HS_UNEXPECTED;
	if (hs->have & bit)
		return FERRY_W2_E_HS_DUP;
	/* HELLO opens the message; a CONNECT's COOKIE comes right after it,
	 * where a client can insert RETRY's frame as it is. */
	if ((f->type == FERRY_W2_HELLO && idx != 0) ||
	    (f->type == FERRY_W2_COOKIE && d->type == FERRY_W2_CONNECT &&
	     idx != 1))
		return FERRY_W2_E_HS_ORDER;
	hs->have |= bit;
	hs_store(hs, f);
	return FERRY_W2_OK;
}

enum ferry_w2_err ferry__w2_hs_parse(const struct ferry_w2_dgram *d,
				    struct ferry_w2_hs *hs)
{
	struct ferry_w2_iter it;
	struct ferry_w2_frame f;
	enum ferry_w2_err e;
	bool after_pop = false;
	unsigned idx = 0;
	int rc;

	memset(hs, 0, sizeof(*hs));
	if (!d->is_long || d->type > FERRY_W2_REFUSE)
		return FERRY_W2_E_BAD_LTYPE;
	/* Every frame's own rules first (section 2.4 rule 7), so that the
	 * verdict on a datagram does not depend on which rule a walk in
	 * message order meets first. */
	e = ferry__w2_check_frames(d);
	if (e != FERRY_W2_OK)
		return e;
	ferry__w2_iter_init(&it, d);
	while ((rc = ferry__w2_iter_next(&it, &f)) > 0) {
		if (f.type == FERRY_W2_PADDING)
			continue;
		/* POP covers everything before it: only padding may follow
		 * (section 4.5). */
		if (after_pop)
			return FERRY_W2_E_HS_ORDER;
		e = hs_place(d, hs, &f, idx++);
		if (e != FERRY_W2_OK)
			return e;
		if (f.type == FERRY_W2_POP) {
			after_pop = true;
			hs->pop_covered = (size_t)(f.body - d->start) -
					  FERRY_W2_FRAME_HDR_LEN;
		}
	}
	if (rc < 0)
		return (enum ferry_w2_err)-rc;
	if (hs_must[d->type] & ~hs->have)
		return FERRY_W2_E_HS_MISSING;
	if (ferry__w2_hs_has(hs, FERRY_W2_TOKEN) !=
	    ferry__w2_hs_has(hs, FERRY_W2_POP))
		return FERRY_W2_E_HS_POP;
	/* The server answers with the one version it chose. */
	if (d->type == FERRY_W2_ACCEPT &&
	    (hs->hello.versions & (hs->hello.versions - 1)) != 0)
		return FERRY_W2_E_HS_VERSION;
	return FERRY_W2_OK;
}

/* --- the v1 envelope (section 4.2) ----------------------------------------- */

#define ENV_PARAMS_TLV_LEN (4 + FERRY_TLV_PARAMS_LEN)

/* True if the v1 CONNECT body @p/@len holds a TLV 0x86.  The body is one
 * ferry__wire_parse_connect() walked, so the TLV heads are sound. */
static bool env_has_wire2(const uint8_t *p, size_t len)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, len);
	while (ferry_rd_left(&r) >= 4) {
		uint8_t type = ferry_rd_u8(&r);

		ferry_rd_u8(&r);
		ferry_rd_take(&r, ferry_rd_u16(&r));
		if (!r.err && type == FERRY_TLV_WIRE2)
			return true;
	}
	return false;
}

/* Section 4.2's layout: header fields as a v2 client writes them, PARAMS
 * first, then TLV 0x86 to the end of the datagram. */
static bool env_layout_ok(const struct ferry_frame *fr,
			  const struct ferry_connect_body *cb)
{
	const uint8_t *p = fr->payload;

	/* Without FF_CSUM v1 ignores the csum field; the envelope's is 0,
	 * as everything a v2 client does not set. */
	if (fr->h.flags != 0 || fr->h.ack != 0 || fr->h.csum != 0 ||
	    fr->h.credit != cb->params.credits ||
	    fr->pay_len < ENV_PARAMS_TLV_LEN + 4)
		return false;
	return p[0] == FERRY_TLV_PARAMS && p[2] == 0 &&
	       p[3] == FERRY_TLV_PARAMS_LEN &&
	       p[ENV_PARAMS_TLV_LEN] == FERRY_TLV_WIRE2 &&
	       (size_t)(p[ENV_PARAMS_TLV_LEN + 2] << 8 |
			p[ENV_PARAMS_TLV_LEN + 3]) ==
		       fr->pay_len - ENV_PARAMS_TLV_LEN - 4;
}

enum ferry_w2_err ferry__w2_envelope_open(const uint8_t *buf, size_t len,
					 struct ferry_w2_dgram *d,
					 uint32_t *env_id)
{
	struct ferry_connect_body cb;
	struct ferry_frame fr;
	enum ferry_w2_err e;
	int rc;

	memset(d, 0, sizeof(*d));
	*env_id = 0;
	if (ferry__wire_parse(buf, len, FERRY_WIRE_MAX_MSG, &fr) !=
	    FERRY_PARSE_OK)
		return FERRY_W2_E_ENV_V1;
	if (fr.h.type != FERRY_FT_CONNECT)
		return FERRY_W2_E_ENV_NOT_CONNECT;
	rc = ferry__wire_parse_connect(fr.payload, fr.pay_len, &cb);
	if (rc == -1)
		return FERRY_W2_E_ENV_V1;
	if (!env_has_wire2(fr.payload, fr.pay_len))
		return FERRY_W2_E_ENV_NOT_V2;
	if (!env_layout_ok(&fr, &cb))
		return FERRY_W2_E_ENV_LAYOUT;
	if (len < FERRY_W2_CONNECT_MIN)
		return FERRY_W2_E_CONNECT_SHORT;
	buf = fr.payload + ENV_PARAMS_TLV_LEN + 4;
	len = fr.pay_len - ENV_PARAMS_TLV_LEN - 4;
	e = ferry__w2_parse_hdr(buf, len, d);
	/* The 512 bytes are the whole datagram's, checked above; the inner
	 * CONNECT is that much shorter.  parse_hdr checks this last, with
	 * @d complete. */
	if (e == FERRY_W2_E_CONNECT_SHORT)
		e = FERRY_W2_OK;
	if (e == FERRY_W2_E_V1_FORM)
		e = FERRY_W2_E_BAD_FORM;
	if (e != FERRY_W2_OK)
		return e;
	if (!d->is_long || d->type != FERRY_W2_CONNECT)
		return FERRY_W2_E_BAD_LTYPE;
	if ((uint32_t)d->scid != fr.h.src_sess)
		return FERRY_W2_E_ENV_ID;
	*env_id = fr.h.src_sess;
	return FERRY_W2_OK;
}

int ferry__w2_envelope_wrap(uint8_t *out, size_t inner_len,
			    const struct ferry_params *v1)
{
	const uint8_t *in = out + FERRY_W2_ENV_LEN;
	struct ferry_connect_body cb;
	struct ferry_hdr h;
	struct ferry_rd r;
	uint64_t scid;

	if (inner_len < FERRY_W2_LONG_HDR_LEN || inner_len > UINT16_MAX ||
	    FERRY_W2_ENV_LEN + inner_len > FERRY_W2_MAX_DGRAM ||
	    in[0] != (FERRY_W2_FORM_LONG | FERRY_W2_CONNECT))
		return -EINVAL;
	ferry_rd_init(&r, in + 10, 8);
	scid = ferry_rd_u64(&r);
	if ((uint32_t)scid == 0)
		return -EINVAL;
	memset(&h, 0, sizeof(h));
	h.type = FERRY_FT_CONNECT;
	h.src_sess = (uint32_t)scid;
	h.credit = v1->credits;
	h.msg_len = (uint32_t)(FERRY_W2_ENV_LEN - FERRY_WIRE_HDR_LEN + inner_len);
	ferry__wire_encode(&h, out);
	memset(&cb, 0, sizeof(cb));
	cb.params = *v1;
	if (ferry__wire_put_connect(out + FERRY_WIRE_HDR_LEN,
				    ENV_PARAMS_TLV_LEN, &cb) !=
	    ENV_PARAMS_TLV_LEN)
		return -EINVAL;
	ferry__wire_put_tlv_head(out + FERRY_WIRE_HDR_LEN + ENV_PARAMS_TLV_LEN,
				 FERRY_TLV_WIRE2, (uint16_t)inner_len);
	return (int)(FERRY_W2_ENV_LEN + inner_len);
}
