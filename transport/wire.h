/* SPDX-License-Identifier: MIT */
/*
 * Wire format v1: the codec.  docs/wire-v1.md is the specification; every
 * constant here is named there, and the two must agree.  Sessions speak
 * wire v2 (wire2.h); what v2 keeps of v1 goes through here: the v1
 * envelope of a CONNECT and the v1 ERROR a v1 peer gets (docs/wire.md,
 * section 4.2), and the layouts of the messages calls carry (section 10).
 */
#ifndef FERRY_WIRE_H
#define FERRY_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_WIRE_MAGIC 0x4652u /* "FR": rejects stray datagrams early */
#define FERRY_WIRE_VERSION 1
#define FERRY_WIRE_HDR_LEN 44
/* Largest message a v1 frame can describe.  Endpoints set lower limits. */
#define FERRY_WIRE_MAX_MSG (1u << 30)
/* Largest datagram: the IPv4 UDP payload limit. */
#define FERRY_WIRE_MAX_FRAME 65507u
/* Smallest max_frame a peer may advertise: a header plus 64 bytes. */
#define FERRY_WIRE_MIN_FRAME (FERRY_WIRE_HDR_LEN + 64u)

enum ferry_frame_type {
	FERRY_FT_CONNECT = 1,
	FERRY_FT_ACCEPT = 2,
	FERRY_FT_REQUEST = 3,
	FERRY_FT_RESPONSE = 4,
	FERRY_FT_CREDIT = 5,
	FERRY_FT_CLOSE = 6,
	FERRY_FT_ERROR = 7,
	FERRY_FT_PING = 8,
	FERRY_FT_PUSH = 9, /* deferred tokens: an IOU's token (wire-v1.md, 8) */
	FERRY_FT_MAX = FERRY_FT_PUSH,
};

enum ferry_frame_flag {
	FERRY_FF_REPLY = 1u << 0, /* PING reply, CLOSE acknowledgement */
	FERRY_FF_CSUM = 1u << 1,  /* the csum field covers the frame */
	FERRY_FF_ERR = 1u << 2,   /* RESPONSE: payload is an error body */
	FERRY_FF_CAPS = 1u << 3,  /* REQUEST: the message starts with a token
				   * table (docs/wire-v1.md, section 8) */
	FERRY_FF_TRACE = 1u << 4, /* REQUEST: the message starts with a trace
				   * block; RESPONSE: with an attribute block
				   * (docs/wire-v1.md, section 8) */
};
#define FERRY_FF_KNOWN 0x001fu

/* Connect/accept TLV types; bit 7 set marks a TLV the receiver must
 * understand or refuse the connect. */
enum ferry_tlv_type {
	FERRY_TLV_PARAMS = 0x81,
	FERRY_TLV_TRACEPARENT = 0x02,
	FERRY_TLV_TRACESTATE = 0x03,
	FERRY_TLV_TOKEN = 0x84,
	FERRY_TLV_FEATURES = 0x05,
};
/* FEATURES bits: what the sender of a CONNECT or ACCEPT implements beyond
 * the base of v1, so that a peer never sends what the other would drop. */
#define FERRY_FEAT_IOU 0x1u /* PUSH frames and IOU entries in token tables */
#define FERRY_FEAT_TRACE 0x2u /* FF_TRACE on REQUEST and RESPONSE */
#define FERRY_TLV_FEATURES_LEN 4
#define FERRY_TLV_CRITICAL 0x80
#define FERRY_TLV_PARAMS_LEN 16
#define FERRY_TRACEPARENT_LEN 55
#define FERRY_TRACESTATE_MAX 512
#define FERRY_ERROR_MSG_MAX 256

/*
 * The token table a REQUEST with FF_CAPS carries at the start of its
 * message (docs/wire-v1.md, section 8).  The sender puts it in the copied
 * header area of the first fragment, ahead of the zero-copy payload, so
 * the table's bound keeps header + table within FERRY_DP_HDR_MAX (1024).
 */
#define FERRY_CAPS_VERSION 1
#define FERRY_CAPS_HDR_LEN 4   /* version, count, table length */
#define FERRY_CAPS_ENT_HDR_LEN 4 /* kind, reserved, value length */
#define FERRY_WIRE_CAPS_MAX 16       /* entries per table */
#define FERRY_WIRE_CAPS_MAX_LEN 960  /* bytes per table, head included */
#define FERRY_CAPS_IOU_LEN 8    /* an IOU id */

/* Entry kinds; the values are the wire values. */
enum ferry_cap_kind_wire {
	FERRY_CAPK_TOKEN = 0, /* the value is token bytes */
	FERRY_CAPK_IOU = 1,   /* the value is an IOU id, resolved by a PUSH */
};

/*
 * Bytes a message may carry ahead of its payload in the first fragment's
 * copied header area (FERRY_DP_HDR_MAX 1024, less the 44-byte header): a
 * REQUEST's trace block and token table together, a RESPONSE's attribute
 * block.  Keeping them there is what lets the payload go out zero-copy.
 */
#define FERRY_WIRE_PRE_MAX 980

/*
 * The trace block a REQUEST with FF_TRACE carries at the start of its
 * message, ahead of any token table (docs/wire-v1.md, section 8): the call's
 * own W3C trace context.  Its text is not checked here: the tracer parses
 * it strictly (a malformed value starts a new trace and is counted).
 */
#define FERRY_TRACE_BLOCK_VERSION 1
#define FERRY_TRACE_BLOCK_HDR_LEN 4 /* version, reserved, block length */
#define FERRY_TRACE_BLOCK_MIN (FERRY_TRACE_BLOCK_HDR_LEN + FERRY_TRACEPARENT_LEN)
#define FERRY_TRACE_BLOCK_MAX (FERRY_TRACE_BLOCK_MIN + FERRY_TRACESTATE_MAX)

struct ferry_trace_block {
	const char *traceparent; /* FERRY_TRACEPARENT_LEN bytes, in place */
	const char *tracestate;  /* in place; NULL when empty */
	uint16_t tracestate_len;
};

/*
 * ferry__wire_parse_trace_block - check the trace block at the start of a
 * message (@p, @len: the whole message, untrusted).
 * @block_len: receives the block's length (what follows it starts there).
 *
 * Returns 0 with @out filled; -EPROTONOSUPPORT if the block's length is
 * in range but its version is not 1 or its reserved byte not 0 (skip
 * *@block_len bytes and ignore the context; @out is zeroed); or
 * -FERRY_EPROTO if the message is shorter than 4 bytes or the block's
 * length is below FERRY_TRACE_BLOCK_MIN, above FERRY_TRACE_BLOCK_MAX or
 * beyond @len (nothing can be found after it: the call is refused).
 * Never reads outside @p.
 */
int ferry__wire_parse_trace_block(const uint8_t *p, size_t len,
				 uint32_t *block_len,
				 struct ferry_trace_block *out);

/*
 * ferry__wire_put_trace_block - encode a version-1 trace block of @tp
 * (exactly FERRY_TRACEPARENT_LEN bytes) and @ts/@ts_len (0..
 * FERRY_TRACESTATE_MAX; @ts may be NULL when @ts_len is 0) into @out
 * (@cap bytes).  Returns its length, -EINVAL, or -EMSGSIZE (@cap).
 */
int ferry__wire_put_trace_block(uint8_t *out, size_t cap, const char *tp,
			       const char *ts, size_t ts_len);

/*
 * The attribute block a RESPONSE with FF_TRACE carries at the start of
 * its message (docs/wire-v1.md, section 8): attributes the server's handler
 * sets on the client's call span.  The limits keep it within the copied
 * header area (44 + 960 <= 1024).
 */
#define FERRY_ATTRS_VERSION 1
#define FERRY_ATTRS_HDR_LEN 4     /* version, count, block length */
#define FERRY_ATTRS_ENT_HDR_LEN 4 /* type, key length, value length */
#define FERRY_WIRE_ATTRS_MAX 16
#define FERRY_WIRE_ATTRS_MAX_LEN 960
#define FERRY_WIRE_ATTR_KEY_MAX 63
#define FERRY_WIRE_ATTR_STR_MAX 255

/* Attribute types; the values are the wire values (and enum
 * ferry_attr_type's, ferry/trace.h). */
enum ferry_attr_type_wire {
	FERRY_ATTRT_STRING = 1, /* 0..255 bytes */
	FERRY_ATTRT_INT = 2,    /* int64, 8 bytes */
	FERRY_ATTRT_BOOL = 3,   /* 1 byte, 0 or 1 */
	FERRY_ATTRT_DOUBLE = 4, /* IEEE-754 binary64 bits, 8 bytes */
};

/* One attribute, as parsed or to encode. */
struct ferry_attr_ent {
	uint8_t type;       /* enum ferry_attr_type_wire */
	uint8_t key_len;    /* 1..FERRY_WIRE_ATTR_KEY_MAX */
	const char *key;    /* printable ASCII (0x21..0x7e); parsed: in place */
	const char *str;    /* FERRY_ATTRT_STRING; parsed: in place */
	uint16_t str_len;   /* 0..FERRY_WIRE_ATTR_STR_MAX */
	int64_t i;          /* FERRY_ATTRT_INT */
	bool b;             /* FERRY_ATTRT_BOOL */
	double d;           /* FERRY_ATTRT_DOUBLE */
};

/* True if @key/@len is a valid attribute key (1..63 bytes, 0x21..0x7e). */
bool ferry__wire_attr_key_ok(const char *key, size_t len);

/*
 * ferry__wire_parse_resp_attrs - check the attribute block at the start of
 * a response message (@p, @len: the whole message, untrusted).
 * @block_len: receives the block's length (the payload follows it).
 * @count: receives the number of attributes.
 *
 * Returns 0; -EBADMSG if the block's length is in range (so the payload
 * can still be found at *@block_len) but anything inside breaks a rule:
 * version, count, an entry's type, key or value, entries that do not fill
 * the block exactly (*@count is then 0); or -FERRY_EPROTO if the message
 * is shorter than 4 bytes or the block length is below 4, above
 * FERRY_WIRE_ATTRS_MAX_LEN or beyond @len.  Never reads outside @p.
 */
int ferry__wire_parse_resp_attrs(const uint8_t *p, size_t len,
				uint32_t *block_len, unsigned *count);

/*
 * ferry__wire_resp_attr_get - attribute @i of a block that
 * ferry__wire_parse_resp_attrs() accepted.  Returns 0, or -ENOENT if there
 * is no attribute @i.
 */
int ferry__wire_resp_attr_get(const uint8_t *blk, uint32_t block_len,
			     unsigned i, struct ferry_attr_ent *out);

/*
 * ferry__wire_put_resp_attr - encode one entry (no block head) into @out
 * (@cap bytes).  Returns its length, -EINVAL (@e breaks a rule), or
 * -EMSGSIZE (@cap).
 */
int ferry__wire_put_resp_attr(uint8_t *out, size_t cap,
			     const struct ferry_attr_ent *e);

/* ferry__wire_put_resp_attrs_head - write a block's 4-byte head: version 1,
 * @count entries, @block_len bytes in all. */
void ferry__wire_put_resp_attrs_head(uint8_t *out, unsigned count,
				    uint32_t block_len);

/*
 * ferry__wire_put_resp_attrs - encode a whole block of @n attributes into
 * @out (@cap bytes).  Returns its length, -EINVAL (no attributes, more
 * than FERRY_WIRE_ATTRS_MAX, or an entry breaks a rule), or -EMSGSIZE
 * (longer than FERRY_WIRE_ATTRS_MAX_LEN or @cap).
 */
int ferry__wire_put_resp_attrs(uint8_t *out, size_t cap,
			      const struct ferry_attr_ent *ents, unsigned n);

/* A decoded header.  Field meanings are in docs/wire-v1.md. */
struct ferry_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint16_t method;
	uint32_t dst_sess;
	uint32_t src_sess;
	uint32_t seq;
	uint32_t ack;
	uint32_t credit;
	uint32_t req_id;
	uint32_t msg_len;
	uint32_t frag_off;
	uint32_t csum;
};

/* A parsed frame: the header, and the payload in place. */
struct ferry_frame {
	struct ferry_hdr h;
	const uint8_t *payload;
	uint32_t pay_len;
};

enum ferry_parse_err {
	FERRY_PARSE_OK = 0,
	FERRY_PARSE_TRUNCATED,
	FERRY_PARSE_BAD_MAGIC,
	FERRY_PARSE_BAD_VERSION,
	FERRY_PARSE_BAD_TYPE,
	FERRY_PARSE_MALFORMED,
	FERRY_PARSE_OVERSIZED,
};

/*
 * ferry__wire_parse - check and decode one datagram.
 * @buf, @len: the datagram (UDP payload), untrusted.
 * @max_msg: the largest message this receiver accepts.
 *
 * Returns FERRY_PARSE_OK with @f filled (payload points into @buf), or the
 * reason the datagram must be dropped.  Never reads outside @buf.  Checks
 * everything that can be checked without session state: magic, version,
 * type, flags, lengths, fragment bounds, and the checksum when present.
 */
enum ferry_parse_err ferry__wire_parse(const void *buf, size_t len,
				      uint32_t max_msg, struct ferry_frame *f);

/*
 * ferry__wire_encode - write @h as the 44-byte header at @out.  If
 * FERRY_FF_CSUM is set the csum field is left 0; see ferry__wire_csum().
 */
void ferry__wire_encode(const struct ferry_hdr *h, uint8_t *out);

/* Write the checksum of the encoded header at @hdr (FERRY_FF_CSUM set) and
 * @payload into the header's csum field. */
void ferry__wire_seal(uint8_t *hdr, const void *payload, size_t pay_len);

/* CRC32C (Castagnoli) of the header, with csum zero, and the payload. */
uint32_t ferry__wire_csum(const uint8_t *hdr, const void *payload,
			 size_t pay_len);

/*
 * ferry__crc32c - CRC32C (Castagnoli) of @n bytes at @p, continued from
 * @crc: 0 to start, or the result of an earlier call over the bytes before
 * @p, so that ferry__crc32c(ferry__crc32c(0, a), b) is the CRC of a || b.
 * Wire v2's `none` trailer (transport/wire2.c, transport/seal.c) is this
 * CRC.
 */
uint32_t ferry__crc32c(uint32_t crc, const void *p, size_t n);

/*
 * ferry__wire_seal_ext - ferry__wire_seal() for a frame whose payload starts
 * in the header buffer: @hdr holds the 44-byte header and then @hdr_len - 44
 * payload bytes (a connect body, a token table), and @body the rest.  The
 * checksum is the same as over one contiguous payload.
 */
void ferry__wire_seal_ext(uint8_t *hdr, size_t hdr_len, const void *body,
			 size_t body_len);

/* Connect and accept parameters (the PARAMS TLV). */
struct ferry_params {
	uint32_t max_msg;   /* largest message the sender accepts */
	uint32_t credits;   /* data packets the peer may have in flight */
	uint16_t max_frame; /* largest datagram the sender accepts */
	uint16_t slots;     /* calls outstanding the sender accepts */
};

struct ferry_connect_body {
	bool have_params;
	struct ferry_params params;
	const char *traceparent; /* points into the frame, not terminated */
	uint16_t traceparent_len;
	const char *tracestate;
	uint16_t tracestate_len;
	const uint8_t *token; /* TOKEN value, points into the frame */
	uint16_t token_len;   /* 1..65535 when token is set */
	uint32_t features;    /* FERRY_FEAT_*; 0 when absent */
};

/*
 * ferry__wire_parse_connect - parse a CONNECT or ACCEPT payload.
 *
 * Returns 0; FERRY_CONNECT_UNSUPPORTED if the body is well formed but has a
 * critical TLV this build does not implement (the receiver must refuse the
 * connect); or -1 if the TLV list is malformed, a known TLV has a bad
 * length (an empty TOKEN included), appears twice, or PARAMS is missing or
 * out of range.
 */
#define FERRY_CONNECT_UNSUPPORTED (-2)
int ferry__wire_parse_connect(const uint8_t *p, size_t len,
			     struct ferry_connect_body *out);

/*
 * ferry__wire_put_connect - encode a CONNECT/ACCEPT payload into @out, which
 * has @cap bytes: PARAMS, TRACEPARENT, TRACESTATE, then TOKEN (last, so that
 * a sender may instead write only its TLV head with ferry__wire_put_tlv_head
 * and send the value from elsewhere).  Returns the length written or -1 if
 * it does not fit.
 */
int ferry__wire_put_connect(uint8_t *out, size_t cap,
			   const struct ferry_connect_body *b);

/* Write a TLV head (type, reserved 0, @len) at @out; returns 4. */
size_t ferry__wire_put_tlv_head(uint8_t *out, uint8_t type, uint16_t len);

/* One entry of a token table, as parsed or to encode. */
struct ferry_cap_ent {
	uint8_t kind;         /* enum ferry_cap_kind_wire */
	const uint8_t *val;   /* parsed: points into the table */
	uint16_t len;
};

/*
 * ferry__wire_parse_caps - check the token table at the start of a
 * message (@p, @len: the whole message, untrusted).
 * @tab_len: receives the table's length (the payload follows it).
 * @count: receives the number of entries.
 * @nious: receives how many of them are IOU entries.
 *
 * Returns 0; -EPROTONOSUPPORT for a table version this build does not
 * know; -FERRY_ECAPS if the table is malformed (section 8's rules).
 * Never reads outside @p.
 */
int ferry__wire_parse_caps(const uint8_t *p, size_t len, uint32_t *tab_len,
			  unsigned *count, unsigned *nious);

/*
 * ferry__wire_caps_get - entry @i of a table that ferry__wire_parse_caps()
 * accepted.  Returns 0, or -ENOENT if there is no entry @i.
 */
int ferry__wire_caps_get(const uint8_t *tab, uint32_t tab_len, unsigned i,
			struct ferry_cap_ent *out);

/*
 * ferry__wire_put_caps - encode a table of @n entries into @out (@cap
 * bytes).  Returns its length, or -EINVAL (no entries, more than
 * FERRY_WIRE_CAPS_MAX, an unknown kind, an empty value, an IOU value not
 * FERRY_CAPS_IOU_LEN bytes), or -EMSGSIZE (longer than
 * FERRY_WIRE_CAPS_MAX_LEN or @cap).
 */
int ferry__wire_put_caps(uint8_t *out, size_t cap,
			const struct ferry_cap_ent *ents, unsigned n);

/*
 * The PUSH body (docs/wire-v1.md, section 8): one or more records back to
 * back, each an IOU id, a result code, and the token when the code is 0.
 * A pushed token is held to the bound of a token carried in a table, so
 * that a record always fits in the copied header area with the frame's
 * header (44 + 16 + 952 <= FERRY_DP_HDR_MAX), and a sender packs records
 * while they fit there.
 */
#define FERRY_PUSH_HDR_LEN 16
#define FERRY_PUSH_TOKEN_MAX                                                   \
	(FERRY_WIRE_CAPS_MAX_LEN - FERRY_CAPS_HDR_LEN - FERRY_CAPS_ENT_HDR_LEN)

struct ferry_push {
	uint64_t iou;
	uint32_t code;       /* 0: resolved with @token; else an error code */
	const uint8_t *token; /* points into the frame; NULL unless code 0 */
	uint16_t token_len;
};

/*
 * ferry__wire_parse_push - parse the PUSH record at the start of @p (@len
 * bytes of the body left, untrusted).  Returns the record's length (the
 * next one, if any, follows), or -1 if it runs past @len, its reserved
 * field is not 0, or its token length does not match its code
 * (1..FERRY_PUSH_TOKEN_MAX with code 0, none otherwise).  Never reads
 * outside @p.
 */
int ferry__wire_parse_push(const uint8_t *p, size_t len, struct ferry_push *out);

/* ferry__wire_put_push - encode a PUSH record into @out (@cap bytes);
 * returns its length, or -1 if @push breaks the rules above or does not
 * fit. */
int ferry__wire_put_push(uint8_t *out, size_t cap, const struct ferry_push *push);

/*
 * ferry__wire_parse_error - parse an ERROR frame or error-RESPONSE body into
 * @code (positive) and a message pointing into @p.  Returns 0 or -1.
 */
int ferry__wire_parse_error(const uint8_t *p, size_t len, uint32_t *code,
			   const char **msg, uint16_t *msg_len);

/* ferry__wire_put_error - encode an error body; returns its length. */
size_t ferry__wire_put_error(uint8_t *out, size_t cap, uint32_t code,
			    const char *msg);

/* True for frame types that carry a sequence number and use credit. */
static inline bool ferry_ft_is_data(uint8_t type)
{
	return type == FERRY_FT_REQUEST || type == FERRY_FT_RESPONSE ||
	       type == FERRY_FT_PUSH;
}

const char *ferry__ft_name(uint8_t type);

#endif /* FERRY_WIRE_H */
