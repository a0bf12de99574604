/* SPDX-License-Identifier: MIT */
/*
 * Wire format v2 codec: datagram headers, frames, the CRC32C trailer,
 * iteration and packet numbers.  docs/wire.md is the specification; the
 * offsets below are its tables (see wire2.h for who uses them).  Handshake
 * frame bodies, handshake messages and the v1 envelope are in wire2_hs.c.
 */
#include "wire2.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "rd.h"

/* --- errors and their counters ------------------------------------------ */

static const struct {
	const char *name;
	const char *counter;
	bool proto;
} err_info[FERRY_W2_E_COUNT] = {
	[FERRY_W2_OK] = {"ok", "", false},
	[FERRY_W2_E_V1_FORM] = {"v1_form", "", false},
	[FERRY_W2_E_BAD_FORM] = {"bad_form", "drop_bad_magic", false},
	[FERRY_W2_E_TRUNCATED] = {"truncated", "drop_truncated", false},
	[FERRY_W2_E_OVERSIZED] = {"oversized", "drop_oversized", false},
	[FERRY_W2_E_BAD_MODE] = {"bad_mode", "drop_malformed", false},
	[FERRY_W2_E_BAD_VERSION] = {"bad_version", "drop_bad_version", false},
	[FERRY_W2_E_LONG_RSVD] = {"long_reserved", "drop_malformed", false},
	[FERRY_W2_E_BAD_LTYPE] = {"bad_long_type", "drop_bad_type", false},
	[FERRY_W2_E_BAD_CID] = {"bad_cid", "drop_malformed", false},
	[FERRY_W2_E_CONNECT_SHORT] = {"connect_short", "drop_malformed", false},
	[FERRY_W2_E_FRAME_TRUNC] = {"frame_truncated", "drop_malformed", true},
	[FERRY_W2_E_FRAME_OVERRUN] = {"frame_overrun", "drop_malformed", true},
	[FERRY_W2_E_UNKNOWN_TYPE] = {"unknown_type", "drop_malformed", true},
	[FERRY_W2_E_WRONG_FORM] = {"wrong_form", "drop_malformed", true},
	[FERRY_W2_E_BAD_FLAGS] = {"bad_flags", "drop_malformed", true},
	[FERRY_W2_E_ERR_TRACE] = {"err_with_trace", "drop_malformed", true},
	[FERRY_W2_E_BAD_LEN] = {"bad_len", "drop_malformed", true},
	[FERRY_W2_E_ZERO_ID] = {"zero_id", "drop_malformed", true},
	[FERRY_W2_E_FRAG_MSG_LEN] = {"frag_msg_len", "drop_malformed", true},
	[FERRY_W2_E_FRAG_RANGE] = {"frag_range", "drop_malformed", true},
	[FERRY_W2_E_ACK_ZERO] = {"ack_zero_range", "drop_malformed", true},
	[FERRY_W2_E_ERROR_BODY] = {"error_body", "drop_malformed", true},
	[FERRY_W2_E_PUSH_RECORD] = {"push_record", "drop_malformed", true},
	[FERRY_W2_E_RESERVED] = {"reserved", "drop_malformed", true},
	[FERRY_W2_E_HELLO] = {"hello", "drop_malformed", true},
	[FERRY_W2_E_PARAMS] = {"params", "drop_malformed", true},
	[FERRY_W2_E_HS_DUP] = {"hs_duplicate", "drop_malformed", true},
	[FERRY_W2_E_HS_MISSING] = {"hs_missing", "drop_malformed", true},
	[FERRY_W2_E_HS_UNEXPECTED] = {"hs_unexpected", "drop_malformed", true},
	[FERRY_W2_E_HS_ORDER] = {"hs_order", "drop_malformed", true},
	[FERRY_W2_E_HS_POP] = {"hs_pop", "drop_malformed", true},
	[FERRY_W2_E_HS_VERSION] = {"hs_version", "drop_malformed", true},
	[FERRY_W2_E_ENV_V1] = {"envelope_v1", "drop_malformed", false},
	[FERRY_W2_E_ENV_NOT_CONNECT] = {"envelope_not_connect",
					"drop_bad_version", false},
	[FERRY_W2_E_ENV_NOT_V2] = {"envelope_not_v2", "v1_refused", false},
	[FERRY_W2_E_ENV_LAYOUT] = {"envelope_layout", "drop_malformed", false},
	[FERRY_W2_E_ENV_ID] = {"envelope_id", "drop_malformed", false},
	[FERRY_W2_E_ACK_BELOW_ZERO] = {"ack_below_zero", "drop_malformed", true},
};

const char *ferry__w2_err_name(enum ferry_w2_err e)
{
	return (unsigned)e < FERRY_W2_E_COUNT ? err_info[e].name : "unknown";
}

const char *ferry__w2_err_counter(enum ferry_w2_err e)
{
	return (unsigned)e < FERRY_W2_E_COUNT ? err_info[e].counter : "";
}

bool ferry__w2_err_is_proto(enum ferry_w2_err e)
{
	return (unsigned)e < FERRY_W2_E_COUNT && err_info[e].proto;
}

/* --- datagram headers ---------------------------------------------------- */

static void set_layout(struct ferry_w2_dgram *d, const uint8_t *buf,
		       size_t len, size_t hdr_len)
{
	d->start = buf;
	d->hdr_len = hdr_len;
	d->trailer_len = ferry__w2_trailer_len(d);
	d->frames = buf + hdr_len;
	d->frames_len = len - hdr_len - d->trailer_len;
	d->trailer = d->frames + d->frames_len;
}

static enum ferry_w2_err parse_short(const uint8_t *buf, size_t len,
				     struct ferry_w2_dgram *d)
{
	struct ferry_rd r;
	uint8_t first;

	/* Rule 1 of section 2.4: a header, an empty frame and a CRC at the
	 * least, then the limit of any UDP payload. */
	if (len < FERRY_W2_MIN_DGRAM)
		return FERRY_W2_E_TRUNCATED;
	if (len > FERRY_W2_MAX_DGRAM)
		return FERRY_W2_E_OVERSIZED;
	ferry_rd_init(&r, buf, len);
	first = ferry_rd_u8(&r);
	memset(d, 0, sizeof(*d));
	d->mode = first & FERRY_W2_SH_MODE_MASK;
	if (d->mode == FERRY_W2_MODE_INVALID)
		return FERRY_W2_E_BAD_MODE;
	d->key_phase = (first & FERRY_W2_SH_KEY_PHASE) != 0;
	d->reserved = (first & FERRY_W2_SH_RSVD_MASK) >> FERRY_W2_SH_RSVD_SHIFT;
	d->dcid = ferry_rd_u64(&r);
	d->pn = ferry_rd_u32(&r);
	/* The trailer the header names must fit after one frame header. */
	if (len < FERRY_W2_SHORT_HDR_LEN + FERRY_W2_FRAME_HDR_LEN +
			  ferry__w2_trailer_len(d))
		return FERRY_W2_E_TRUNCATED;
	set_layout(d, buf, len, FERRY_W2_SHORT_HDR_LEN);
	return FERRY_W2_OK;
}

/* The CIDs each long-header type carries (section 2.2): the client's CID
 * travels as SCID in CONNECT and comes back as DCID in the answers; only
 * ACCEPT names the server's.  A client CID's low 32 bits are its v1
 * envelope id, so they are never 0 (section 4.1). */
static bool long_cids_ok(const struct ferry_w2_dgram *d)
{
	switch (d->type) {
	case FERRY_W2_CONNECT:
		return d->dcid == 0 && (uint32_t)d->scid != 0;
	case FERRY_W2_ACCEPT:
		return d->dcid != 0 && d->scid != 0;
	default: /* RETRY, REFUSE */
		return d->dcid != 0 && d->scid == 0;
	}
}

static enum ferry_w2_err parse_long(const uint8_t *buf, size_t len,
				    struct ferry_w2_dgram *d)
{
	struct ferry_rd r;
	uint8_t first;

	if (len < 2)
		return FERRY_W2_E_TRUNCATED;
	ferry_rd_init(&r, buf, len);
	first = ferry_rd_u8(&r);
	memset(d, 0, sizeof(*d));
	d->is_long = true;
	d->version = ferry_rd_u8(&r);
	/* The version first: a later version may lay out the rest of its
	 * long header differently, and is dropped without a reply. */
	if (d->version != FERRY_W2_VERSION)
		return FERRY_W2_E_BAD_VERSION;
	if (first & FERRY_W2_LH_RSVD_MASK)
		return FERRY_W2_E_LONG_RSVD;
	d->type = first & FERRY_W2_LH_TYPE_MASK;
	if (d->type > FERRY_W2_REFUSE)
		return FERRY_W2_E_BAD_LTYPE;
	d->mode = d->type == FERRY_W2_ACCEPT ? FERRY_W2_MODE_MAC
					      : FERRY_W2_MODE_NONE;
	if (len < FERRY_W2_LONG_HDR_LEN + FERRY_W2_FRAME_HDR_LEN +
			  ferry__w2_trailer_len(d))
		return FERRY_W2_E_TRUNCATED;
	if (len > FERRY_W2_MAX_DGRAM)
		return FERRY_W2_E_OVERSIZED;
	d->dcid = ferry_rd_u64(&r);
	d->scid = ferry_rd_u64(&r);
	if (!long_cids_ok(d))
		return FERRY_W2_E_BAD_CID;
	set_layout(d, buf, len, FERRY_W2_LONG_HDR_LEN);
	/* Last, with @d complete: ferry__w2_envelope_open() accepts a
	 * shorter inner CONNECT, since the 512 bytes are the envelope's. */
	if (d->type == FERRY_W2_CONNECT && len < FERRY_W2_CONNECT_MIN)
		return FERRY_W2_E_CONNECT_SHORT;
	return FERRY_W2_OK;
}

enum ferry_w2_err ferry__w2_parse_hdr(const uint8_t *buf, size_t len,
				     struct ferry_w2_dgram *d)
{
	if (len == 0)
		return FERRY_W2_E_TRUNCATED;
	if (buf[0] == FERRY_W2_V1_FIRST)
		return FERRY_W2_E_V1_FORM;
	if (ferry__w2_is_short(buf[0]))
		return parse_short(buf, len, d);
	if (ferry__w2_is_long(buf[0]))
		return parse_long(buf, len, d);
	return FERRY_W2_E_BAD_FORM;
}

int ferry__w2_put_hdr(uint8_t *out, size_t cap, const struct ferry_w2_dgram *d)
{
	uint8_t *p = out;

	if (d->is_long) {
		if (d->type > FERRY_W2_REFUSE)
			return -EINVAL;
		if (cap < FERRY_W2_LONG_HDR_LEN)
			return -EMSGSIZE;
		*p++ = (uint8_t)(FERRY_W2_FORM_LONG | d->type);
		*p++ = d->version;
		p = ferry_wr_u64(p, d->dcid);
		ferry_wr_u64(p, d->scid);
		return FERRY_W2_LONG_HDR_LEN;
	}
	if (d->mode >= FERRY_W2_MODE_INVALID ||
	    d->reserved > (FERRY_W2_SH_RSVD_MASK >> FERRY_W2_SH_RSVD_SHIFT))
		return -EINVAL;
	if (cap < FERRY_W2_SHORT_HDR_LEN)
		return -EMSGSIZE;
	*p++ = (uint8_t)(FERRY_W2_FORM_SHORT |
			 (d->key_phase ? FERRY_W2_SH_KEY_PHASE : 0) |
			 d->reserved << FERRY_W2_SH_RSVD_SHIFT | d->mode);
	p = ferry_wr_u64(p, d->dcid);
	ferry_wr_u32(p, d->pn);
	return FERRY_W2_SHORT_HDR_LEN;
}

/* --- the CRC32C trailer --------------------------------------------------- */

uint32_t ferry__w2_crc(const struct ferry_w2_dgram *d)
{
	return ferry__crc32c(0, d->start, (size_t)(d->trailer - d->start));
}

bool ferry__w2_crc_ok(const struct ferry_w2_dgram *d)
{
	struct ferry_rd r;

	if (d->trailer_len != FERRY_W2_CRC_LEN)
		return false;
	ferry_rd_init(&r, d->trailer, d->trailer_len);
	return ferry_rd_u32(&r) == ferry__w2_crc(d);
}

void ferry__w2_put_crc(uint8_t *dgram, size_t len)
{
	ferry_wr_u32(dgram + len, ferry__crc32c(0, dgram, len));
}

/* --- frame bodies ---------------------------------------------------------- */

/* Where each core type may appear and which flags it defines (section
 * 3.2); a zero `where` is a type no v2.0 receiver knows. */
#define IN_S 1u
#define IN_H 2u
static const struct {
	uint8_t where;
	uint8_t flags;
} type_info[FERRY_W2_FT_IGNORABLE] = {
	[FERRY_W2_PADDING] = {IN_S | IN_H, 0},
	[FERRY_W2_PING] = {IN_S, 0},
	[FERRY_W2_ACK] = {IN_S, FERRY_W2_F_ECN},
	[FERRY_W2_CREDIT] = {IN_S, 0},
	[FERRY_W2_CLOSE] = {IN_S, FERRY_W2_F_REPLY},
	[FERRY_W2_REQUEST] = {IN_S, FERRY_W2_F_CAPS | FERRY_W2_F_TRACE},
	[FERRY_W2_REQUEST_FRAG] = {IN_S, FERRY_W2_F_CAPS | FERRY_W2_F_TRACE},
	[FERRY_W2_RESPONSE] = {IN_S, FERRY_W2_F_ERR | FERRY_W2_F_TRACE},
	[FERRY_W2_RESPONSE_FRAG] = {IN_S, FERRY_W2_F_TRACE},
	[FERRY_W2_PUSH] = {IN_S, 0},
	/* RENEW (0x0d) has no layout yet: unknown until section 11 gives it
	 * one, so a peer cannot send it. */
	[FERRY_W2_HELLO] = {IN_H, 0},
	[FERRY_W2_PARAMS] = {IN_H, 0},
	[FERRY_W2_FEATURES] = {IN_H, 0},
	[FERRY_W2_COOKIE] = {IN_H, 0},
	[FERRY_W2_TOKEN] = {IN_H, 0},
	[FERRY_W2_POP] = {IN_H, 0},
	[FERRY_W2_TRACEPARENT] = {IN_H, 0},
	[FERRY_W2_TRACESTATE] = {IN_H, 0},
	[FERRY_W2_ERROR] = {IN_H, 0},
};

enum ferry_w2_err ferry__w2_errbody_decode(struct ferry_rd *b, bool zero_ok,
					  struct ferry_w2_errbody *e)
{
	if (ferry_rd_left(b) < 6)
		return FERRY_W2_E_BAD_LEN;
	e->code = ferry_rd_u32(b);
	e->msg_len = ferry_rd_u16(b);
	e->msg = (const char *)ferry_rd_take(b, e->msg_len);
	/* The v1 body's rules (docs/wire.md section 10.2), but a CLOSE's code
	 * may be 0: a normal close. */
	if (b->err || ferry_rd_left(b) != 0 || e->code > INT_MAX ||
	    (e->code == 0 && !zero_ok) || e->msg_len > FERRY_ERROR_MSG_MAX)
		return FERRY_W2_E_ERROR_BODY;
	return FERRY_W2_OK;
}

static bool is_frag(uint8_t type)
{
	return type == FERRY_W2_REQUEST_FRAG || type == FERRY_W2_RESPONSE_FRAG;
}

static bool is_req(uint8_t type)
{
	return type == FERRY_W2_REQUEST || type == FERRY_W2_REQUEST_FRAG;
}

static size_t data_fixed(uint8_t type)
{
	static const uint8_t fixed[4] = {
		FERRY_W2_REQUEST_FIXED, FERRY_W2_REQUEST_FRAG_FIXED,
		FERRY_W2_RESPONSE_FIXED, FERRY_W2_RESPONSE_FRAG_FIXED};

	return fixed[type - FERRY_W2_REQUEST];
}

static enum ferry_w2_err data_decode(struct ferry_rd *b, uint8_t type,
				     uint8_t flags, struct ferry_w2_data *d)
{
	bool err = type == FERRY_W2_RESPONSE && (flags & FERRY_W2_F_ERR);

	/* An error response holds a whole error body, at least 6 bytes. */
	if (ferry_rd_left(b) < data_fixed(type) + (err ? 6 : 0))
		return FERRY_W2_E_BAD_LEN;
	/* Every field set (frame_decode does not clear the frame). */
	memset(&d->err, 0, sizeof(d->err));
	d->req_id = ferry_rd_u32(b);
	d->method = is_req(type) ? ferry_rd_u16(b) : 0;
	d->offset = 0;
	if (is_frag(type)) {
		d->msg_len = ferry_rd_u32(b);
		d->offset = ferry_rd_u32(b);
	}
	d->bytes_len = (uint32_t)ferry_rd_left(b);
	d->bytes = ferry_rd_take(b, d->bytes_len);
	if (!is_frag(type))
		d->msg_len = d->bytes_len;
	/* v1's numbering skips 0 (section 3.3). */
	if (d->req_id == 0)
		return FERRY_W2_E_ZERO_ID;
	if (is_frag(type)) {
		/* Section 5.6 rule 1, and the part of rule 2 that needs no
		 * frag_unit: a fragment holds bytes, all within msg_len. */
		if (d->msg_len == 0 || d->msg_len > FERRY_W2_MAX_MSG)
			return FERRY_W2_E_FRAG_MSG_LEN;
		if (d->bytes_len == 0 ||
		    (uint64_t)d->offset + d->bytes_len > d->msg_len)
			return FERRY_W2_E_FRAG_RANGE;
	}
	if (err) {
		struct ferry_rd e;

		ferry_rd_init(&e, d->bytes, d->bytes_len);
		return ferry__w2_errbody_decode(&e, false, &d->err);
	}
	return FERRY_W2_OK;
}

static enum ferry_w2_err ack_decode(struct ferry_rd *b, uint8_t flags,
				    struct ferry_w2_ack *a)
{
	size_t base = (flags & FERRY_W2_F_ECN) ? 20 : 8;
	size_t left = ferry_rd_left(b);

	/* The length tells how many ranges follow, at most 32. */
	if (left < base || (left - base) % 4 != 0 ||
	    (left - base) / 4 > FERRY_W2_ACK_RANGES_MAX)
		return FERRY_W2_E_BAD_LEN;
	a->largest = ferry_rd_u32(b);
	a->ack_delay = ferry_rd_u16(b);
	a->first_range = ferry_rd_u16(b);
	a->ect0 = a->ect1 = a->ce = 0;
	if (flags & FERRY_W2_F_ECN) {
		a->ect0 = ferry_rd_u32(b);
		a->ect1 = ferry_rd_u32(b);
		a->ce = ferry_rd_u32(b);
	}
	a->nranges = (uint8_t)((left - base) / 4);
	for (unsigned i = 0; i < a->nranges; i++) {
		a->ranges[i].gap = ferry_rd_u16(b);
		a->ranges[i].count = ferry_rd_u16(b);
		if (a->ranges[i].gap == 0 || a->ranges[i].count == 0)
			return FERRY_W2_E_ACK_ZERO;
	}
	return FERRY_W2_OK;
}

static enum ferry_w2_err push_decode(struct ferry_rd *b,
				     struct ferry_w2_push *p)
{
	struct ferry_push rec;

	if (ferry_rd_left(b) < 4 + FERRY_PUSH_HDR_LEN)
		return FERRY_W2_E_BAD_LEN;
	p->push_id = ferry_rd_u32(b);
	p->recs_len = (uint16_t)ferry_rd_left(b);
	p->recs = b->p + b->off;
	p->nrecs = 0;
	if (p->push_id == 0)
		return FERRY_W2_E_ZERO_ID;
	/* One or more v1 records that fill the rest exactly. */
	while (ferry_rd_left(b) > 0) {
		int n = ferry__wire_parse_push(b->p + b->off, ferry_rd_left(b),
					       &rec);

		if (n < 0)
			return FERRY_W2_E_PUSH_RECORD;
		ferry_rd_take(b, (size_t)n);
		p->nrecs++;
	}
	return FERRY_W2_OK;
}

static enum ferry_w2_err body_decode(struct ferry_rd *b,
				     struct ferry_w2_frame *f)
{
	switch (f->type) {
	case FERRY_W2_PADDING:
		/* Sent as zeros, ignored whatever they are. */
		f->u.blob.p = ferry_rd_take(b, f->len);
		f->u.blob.len = f->len;
		return FERRY_W2_OK;
	case FERRY_W2_PING:
		return f->len == 0 ? FERRY_W2_OK : FERRY_W2_E_BAD_LEN;
	case FERRY_W2_ACK:
		return ack_decode(b, f->flags, &f->u.ack);
	case FERRY_W2_CREDIT:
		if (f->len != 4)
			return FERRY_W2_E_BAD_LEN;
		f->u.credit_limit = ferry_rd_u32(b);
		return FERRY_W2_OK;
	case FERRY_W2_CLOSE:
		return ferry__w2_errbody_decode(b, true, &f->u.err);
	case FERRY_W2_REQUEST:
	case FERRY_W2_REQUEST_FRAG:
	case FERRY_W2_RESPONSE:
	case FERRY_W2_RESPONSE_FRAG:
		return data_decode(b, f->type, f->flags, &f->u.data);
	case FERRY_W2_PUSH:
		return push_decode(b, &f->u.push);
	default:
		memset(&f->u, 0, sizeof(f->u));
		return ferry__w2_hs_body_decode(b, f);
	}
}

enum ferry_w2_err ferry__w2_frame_decode(const uint8_t *p, size_t len,
					bool is_long, struct ferry_w2_frame *f,
					size_t *used)
{
	struct ferry_rd r, b;
	enum ferry_w2_err e;

	/* Not the whole frame (168 bytes, for every frame received): the
	 * header here, the body member its type uses in body_decode(). */
	f->type = f->flags = 0;
	f->len = 0;
	f->body = NULL;
	*used = 0;
	/* Frames fill the space exactly: 1..3 bytes are no frame. */
	if (len < FERRY_W2_FRAME_HDR_LEN)
		return FERRY_W2_E_FRAME_TRUNC;
	ferry_rd_init(&r, p, len);
	f->type = ferry_rd_u8(&r);
	f->flags = ferry_rd_u8(&r);
	f->len = ferry_rd_u16(&r);
	b = ferry_rd_sub(&r, f->len);
	if (b.err)
		return FERRY_W2_E_FRAME_OVERRUN;
	f->body = b.p;
	*used = FERRY_W2_FRAME_HDR_LEN + (size_t)f->len;
	if (f->type >= FERRY_W2_FT_IGNORABLE) {
		/* An extension the receiver may not know: its length is
		 * all the codec can vouch for (section 3.1). */
		f->u.blob.p = f->body;
		f->u.blob.len = f->len;
		return FERRY_W2_OK;
	}
	if (type_info[f->type].where == 0)
		return FERRY_W2_E_UNKNOWN_TYPE;
	if (!(type_info[f->type].where & (is_long ? IN_H : IN_S)))
		return FERRY_W2_E_WRONG_FORM;
	if (f->flags & ~type_info[f->type].flags)
		return FERRY_W2_E_BAD_FLAGS;
	/* An error body has no room for attributes (as in v1). */
	if (f->type == FERRY_W2_RESPONSE &&
	    (f->flags & (FERRY_W2_F_ERR | FERRY_W2_F_TRACE)) ==
		    (FERRY_W2_F_ERR | FERRY_W2_F_TRACE))
		return FERRY_W2_E_ERR_TRACE;
	e = body_decode(&b, f);
	if (e == FERRY_W2_OK && (b.err || ferry_rd_left(&b) != 0))
		e = FERRY_W2_E_BAD_LEN; /* every decoder reads its body whole */
	return e;
}

/* --- encoding frames ---------------------------------------------------- */

/* Body length of @f, or -EINVAL if it cannot be encoded. */
static long body_len(const struct ferry_w2_frame *f)
{
	switch (f->type) {
	case FERRY_W2_PING:
		return 0;
	case FERRY_W2_ACK:
		if (f->u.ack.nranges > FERRY_W2_ACK_RANGES_MAX)
			return -EINVAL;
		return ((f->flags & FERRY_W2_F_ECN) ? 20 : 8) +
		       4L * f->u.ack.nranges;
	case FERRY_W2_CREDIT:
		return 4;
	case FERRY_W2_CLOSE:
		return 6L + f->u.err.msg_len;
	case FERRY_W2_REQUEST:
	case FERRY_W2_REQUEST_FRAG:
	case FERRY_W2_RESPONSE:
	case FERRY_W2_RESPONSE_FRAG:
		if (f->type == FERRY_W2_RESPONSE && (f->flags & FERRY_W2_F_ERR))
			return FERRY_W2_RESPONSE_FIXED + 6L +
			       f->u.data.err.msg_len;
		return (long)data_fixed(f->type) + (long)f->u.data.bytes_len;
	case FERRY_W2_PUSH:
		return 4L + f->u.push.recs_len;
	default:
		if (f->type == FERRY_W2_PADDING ||
		    f->type >= FERRY_W2_FT_IGNORABLE)
			return f->u.blob.len;
		return ferry__w2_hs_body_len(f);
	}
}

static uint8_t *put_errbody(uint8_t *p, const struct ferry_w2_errbody *e)
{
	p = ferry_wr_u32(p, e->code);
	p = ferry_wr_u16(p, e->msg_len);
	if (e->msg_len)
		memcpy(p, e->msg, e->msg_len);
	return p + e->msg_len;
}

/* Checks @f's type and length against @cap; returns the body length. */
static long frame_size_check(const struct ferry_w2_frame *f, size_t cap)
{
	long n;

	if (f->type < FERRY_W2_FT_IGNORABLE && type_info[f->type].where == 0)
		return -EINVAL;
	n = body_len(f);
	if (n < 0 || n > UINT16_MAX)
		return -EINVAL;
	if ((size_t)n + FERRY_W2_FRAME_HDR_LEN > cap)
		return -EMSGSIZE;
	return n;
}

int ferry__w2_put_data_head(uint8_t *out, size_t cap,
			   const struct ferry_w2_frame *f)
{
	const struct ferry_w2_data *d = &f->u.data;
	uint8_t *p = out;
	long n;

	if (f->type < FERRY_W2_REQUEST || f->type > FERRY_W2_RESPONSE_FRAG ||
	    (f->type == FERRY_W2_RESPONSE && (f->flags & FERRY_W2_F_ERR)))
		return -EINVAL;
	n = frame_size_check(f, SIZE_MAX);
	if (n < 0)
		return (int)n;
	if (FERRY_W2_FRAME_HDR_LEN + data_fixed(f->type) > cap)
		return -EMSGSIZE;
	p += ferry__w2_put_frame_hdr(p, f->type, f->flags, (uint16_t)n);
	p = ferry_wr_u32(p, d->req_id);
	if (is_req(f->type))
		p = ferry_wr_u16(p, d->method);
	if (is_frag(f->type)) {
		p = ferry_wr_u32(p, d->msg_len);
		p = ferry_wr_u32(p, d->offset);
	}
	return (int)(p - out);
}

static void put_body(uint8_t *p, const struct ferry_w2_frame *f)
{
	const struct ferry_w2_ack *a = &f->u.ack;

	switch (f->type) {
	case FERRY_W2_PING:
		return;
	case FERRY_W2_ACK:
		p = ferry_wr_u32(p, a->largest);
		p = ferry_wr_u16(p, a->ack_delay);
		p = ferry_wr_u16(p, a->first_range);
		if (f->flags & FERRY_W2_F_ECN) {
			p = ferry_wr_u32(p, a->ect0);
			p = ferry_wr_u32(p, a->ect1);
			p = ferry_wr_u32(p, a->ce);
		}
		for (unsigned i = 0; i < a->nranges; i++) {
			p = ferry_wr_u16(p, a->ranges[i].gap);
			p = ferry_wr_u16(p, a->ranges[i].count);
		}
		return;
	case FERRY_W2_CREDIT:
		ferry_wr_u32(p, f->u.credit_limit);
		return;
	case FERRY_W2_CLOSE:
		put_errbody(p, &f->u.err);
		return;
	case FERRY_W2_RESPONSE:
		if (f->flags & FERRY_W2_F_ERR) {
			put_errbody(ferry_wr_u32(p, f->u.data.req_id),
				    &f->u.data.err);
			return;
		}
		/* Not an error: a data frame like the others. */
		__attribute__((fallthrough));
	case FERRY_W2_REQUEST:
	case FERRY_W2_REQUEST_FRAG:
	case FERRY_W2_RESPONSE_FRAG: {
		size_t fixed = data_fixed(f->type);

		ferry__w2_put_data_head(p - FERRY_W2_FRAME_HDR_LEN, SIZE_MAX, f);
		if (f->u.data.bytes_len)
			memcpy(p + fixed, f->u.data.bytes, f->u.data.bytes_len);
		return;
	}
	case FERRY_W2_PUSH:
		p = ferry_wr_u32(p, f->u.push.push_id);
		if (f->u.push.recs_len)
			memcpy(p, f->u.push.recs, f->u.push.recs_len);
		return;
	default:
		if (f->type == FERRY_W2_PADDING ||
		    f->type >= FERRY_W2_FT_IGNORABLE) {
			if (f->u.blob.p)
				memcpy(p, f->u.blob.p, f->u.blob.len);
			else
				memset(p, 0, f->u.blob.len);
			return;
		}
		ferry__w2_hs_body_put(p, f);
	}
}

int ferry__w2_put_frame(uint8_t *out, size_t cap, const struct ferry_w2_frame *f)
{
	long n = frame_size_check(f, cap);

	if (n < 0)
		return (int)n;
	ferry__w2_put_frame_hdr(out, f->type, f->flags, (uint16_t)n);
	put_body(out + FERRY_W2_FRAME_HDR_LEN, f);
	return FERRY_W2_FRAME_HDR_LEN + (int)n;
}

/* --- iteration ------------------------------------------------------------ */

int ferry__w2_iter_next(struct ferry_w2_iter *it, struct ferry_w2_frame *f)
{
	enum ferry_w2_err e;
	size_t used;

	if (ferry_rd_left(&it->r) == 0)
		return 0;
	e = ferry__w2_frame_decode(it->r.p + it->r.off, ferry_rd_left(&it->r),
				   it->is_long, f, &used);
	if (e != FERRY_W2_OK)
		return -(int)e;
	ferry_rd_take(&it->r, used);
	return 1;
}

enum ferry_w2_err ferry__w2_check_frames_into(const struct ferry_w2_dgram *d,
					     struct ferry_w2_frame *out,
					     unsigned cap, unsigned *n)
{
	struct ferry_w2_iter it;
	struct ferry_w2_frame f;
	unsigned k = 0;
	int rc;

	ferry__w2_iter_init(&it, d);
	while ((rc = ferry__w2_iter_next(&it, k < cap ? &out[k] : &f)) > 0)
		k++;
	*n = k;
	return (enum ferry_w2_err)-rc;
}

enum ferry_w2_err ferry__w2_check_frames(const struct ferry_w2_dgram *d)
{
	unsigned n;

	return ferry__w2_check_frames_into(d, NULL, 0, &n);
}

/* --- building datagrams ------------------------------------------------- */

int ferry__w2_build_begin(struct ferry_w2_builder *b, uint8_t *buf, size_t cap,
			 const struct ferry_w2_dgram *d)
{
	int n;

	memset(b, 0, sizeof(*b));
	if (cap > FERRY_W2_MAX_DGRAM)
		cap = FERRY_W2_MAX_DGRAM;
	n = ferry__w2_put_hdr(buf, cap, d);
	if (n < 0)
		return n;
	b->buf = buf;
	b->cap = cap;
	b->len = (size_t)n;
	b->trailer_len = ferry__w2_trailer_len(d);
	if (b->len + FERRY_W2_FRAME_HDR_LEN + b->trailer_len > cap)
		return -EMSGSIZE;
	return 0;
}

int ferry__w2_build_frame(struct ferry_w2_builder *b,
			 const struct ferry_w2_frame *f)
{
	int n = ferry__w2_put_frame(b->buf + b->len,
				    b->cap - b->trailer_len - b->len, f);

	if (n < 0)
		return n;
	b->len += (size_t)n;
	b->nframes++;
	return 0;
}

int ferry__w2_build_pad(struct ferry_w2_builder *b, size_t total)
{
	struct ferry_w2_frame f = {.type = FERRY_W2_PADDING};

	if (total > b->cap ||
	    total < b->len + b->trailer_len + FERRY_W2_FRAME_HDR_LEN)
		return -EMSGSIZE;
	f.u.blob.len = (uint16_t)(total - b->trailer_len - b->len -
				  FERRY_W2_FRAME_HDR_LEN);
	return ferry__w2_build_frame(b, &f);
}

int ferry__w2_build_end(struct ferry_w2_builder *b)
{
	if (b->nframes == 0)
		return -EINVAL;
	if (b->trailer_len == FERRY_W2_CRC_LEN)
		ferry__w2_put_crc(b->buf, b->len);
	else
		memset(b->buf + b->len, 0, b->trailer_len);
	return (int)(b->len + b->trailer_len);
}

/* --- packet numbers and ACK ranges ---------------------------------------- */

uint64_t ferry__w2_pn_expand(uint64_t expected, uint32_t low)
{
	const uint64_t win = 1ull << 32, hwin = win / 2;
	uint64_t cand = (expected & ~(win - 1)) | low;

	/* The candidate in the 2^32 window around @expected (RFC 9000,
	 * appendix A), written so that nothing wraps at either end of the
	 * 64-bit space. */
	if (cand < expected && expected - cand >= hwin &&
	    cand <= UINT64_MAX - win)
		return cand + win;
	if (cand > expected && cand - expected > hwin && cand >= win)
		return cand - win;
	return cand;
}

int ferry__w2_ack_ranges(const struct ferry_w2_ack *a, uint64_t largest,
			 struct ferry_w2_pn_range out[FERRY_W2_ACK_RANGES_MAX + 1])
{
	uint64_t lo;

	if (a->first_range > largest || a->nranges > FERRY_W2_ACK_RANGES_MAX)
		return -FERRY_W2_E_ACK_BELOW_ZERO;
	lo = largest - a->first_range;
	out[0].hi = largest;
	out[0].lo = lo;
	for (unsigned i = 0; i < a->nranges; i++) {
		uint64_t gap = a->ranges[i].gap, count = a->ranges[i].count;

		/* `gap` pns missing below lo, then `count` acknowledged:
		 * the lowest of them is lo - gap - count, which must be
		 * a pn (>= 0).  A zero gap or count was refused by the
		 * frame's decoder. */
		if (gap == 0 || count == 0 || lo < gap + count)
			return -FERRY_W2_E_ACK_BELOW_ZERO;
		out[i + 1].hi = lo - gap - 1;
		out[i + 1].lo = lo - gap - count;
		lo = out[i + 1].lo;
	}
	return 1 + a->nranges;
}
