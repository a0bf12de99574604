/* SPDX-License-Identifier: MIT */
/*
 * Wire format v2: the codec.  docs/wire.md is the specification (section
 * numbers as in the proposal, docs/wire.md); every constant here is
 * named there, and the two must agree.
 *
 * The transport speaks it: the receive path (rx.c, rxopen.c), the datagram
 * builder (tx.c) and the handshake (handshake*.c) build and parse every
 * datagram with it.  The MAC and AEAD trailers are transport/seal.c's:
 * this codec leaves their 16 bytes to the caller and computes only the
 * CRC32C trailer of mode `none`.
 *
 * The parse side reads untrusted bytes only through transport/rd.h, never
 * allocates, and reports the first rule a datagram breaks as an enum
 * ferry_w2_err; ferry__w2_err_counter() names the counter each one counts
 * in (docs/wire.md section 2.4).  Parsed structures point into the
 * datagram.  A receiver runs, in the order of section 2.4:
 *
 *   ferry__w2_parse_hdr()       header form, lengths, mode, CIDs
 *   (session lookup, mode check, pn: ferry__w2_pn_expand())
 *   ferry__w2_crc_ok() or seal.h's tag check; aead decrypts in place
 *   ferry__w2_check_frames()    short header: every frame, before acting
 *   ferry__w2_hs_parse()        long header: the handshake message
 *   ferry__w2_iter_*()          the frames, in order
 */
#ifndef FERRY_WIRE2_H
#define FERRY_WIRE2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rd.h"
#include "wire.h"

#define FERRY_W2_VERSION 2
#define FERRY_W2_VERSIONS_BIT (1u << FERRY_W2_VERSION) /* HELLO versions */
#define FERRY_W2_SHORT_HDR_LEN 13
#define FERRY_W2_LONG_HDR_LEN 18
#define FERRY_W2_FRAME_HDR_LEN 4
#define FERRY_W2_CRC_LEN 4  /* mode none: CRC32C */
#define FERRY_W2_TAG_LEN 16 /* modes mac and aead: a Poly1305 tag */
/* Section 2.4 rule 1: a short header, an empty frame and a CRC. */
#define FERRY_W2_MIN_DGRAM                                                     \
	(FERRY_W2_SHORT_HDR_LEN + FERRY_W2_FRAME_HDR_LEN + FERRY_W2_CRC_LEN)
#define FERRY_W2_MAX_DGRAM 65507u /* the IPv4 UDP payload limit */
#define FERRY_W2_MIN_FRAME 1200u  /* smallest max_frame a peer advertises */
/* A CONNECT datagram is padded to at least this (anti-amplification,
 * section 4.3): a RETRY is 46 bytes, well under a third of it. */
#define FERRY_W2_CONNECT_MIN 512u
#define FERRY_W2_ACK_RANGES_MAX 32
#define FERRY_W2_MAX_MSG (1u << 30)
#define FERRY_W2_KEY_LEN 32    /* X25519 public key in HELLO */
#define FERRY_W2_COOKIE_MAC_LEN 16
#define FERRY_W2_POP_LEN 16
/* The v1 envelope of a CONNECT (section 4.2): a 44-byte v1 header, a
 * 20-byte v1 PARAMS TLV and the 4-byte head of TLV 0x86. */
#define FERRY_W2_ENV_LEN (FERRY_WIRE_HDR_LEN + 4 + FERRY_TLV_PARAMS_LEN + 4)
#define FERRY_TLV_WIRE2 0x86 /* critical: a v1 server refuses it */

/* First-byte forms (section 1). */
#define FERRY_W2_FORM_MASK 0xc0u
#define FERRY_W2_FORM_SHORT 0x80u
#define FERRY_W2_FORM_LONG 0xc0u
#define FERRY_W2_V1_FIRST 0x46u /* 'F', the v1 magic's first byte */
/* Short header first byte: bit 5 key phase, bits 4-2 reserved (sent 0,
 * ignored on receipt), bits 1-0 mode. */
#define FERRY_W2_SH_KEY_PHASE 0x20u
#define FERRY_W2_SH_RSVD_SHIFT 2
#define FERRY_W2_SH_RSVD_MASK 0x1cu
#define FERRY_W2_SH_MODE_MASK 0x03u
/* Long header first byte: bits 5-4 reserved, must be 0; bits 3-0 type. */
#define FERRY_W2_LH_RSVD_MASK 0x30u
#define FERRY_W2_LH_TYPE_MASK 0x0fu

enum ferry_w2_mode {
	FERRY_W2_MODE_NONE = 0, /* CRC32C trailer: trusted fabrics only */
	FERRY_W2_MODE_MAC = 1,  /* Poly1305 tag over the cleartext datagram */
	FERRY_W2_MODE_AEAD = 2, /* frames encrypted, tag over all */
};
#define FERRY_W2_MODE_INVALID 3

/* Long header types (section 2.2). */
enum ferry_w2_ltype {
	FERRY_W2_CONNECT = 0,
	FERRY_W2_RETRY = 1,
	FERRY_W2_ACCEPT = 2,
	FERRY_W2_REFUSE = 3,
};

/* Frame types (section 3.2).  0x00..0x3f core, 0x40..0x7f critical
 * extensions (unknown: a protocol error), 0x80..0xff ignorable
 * extensions (unknown: skipped by their length). */
enum ferry_w2_ftype {
	FERRY_W2_PADDING = 0x00,
	FERRY_W2_PING = 0x01,
	FERRY_W2_ACK = 0x02,
	FERRY_W2_CREDIT = 0x03,
	FERRY_W2_CLOSE = 0x04,
	FERRY_W2_REQUEST = 0x08,
	FERRY_W2_REQUEST_FRAG = 0x09,
	FERRY_W2_RESPONSE = 0x0a,
	FERRY_W2_RESPONSE_FRAG = 0x0b,
	FERRY_W2_PUSH = 0x0c,
	FERRY_W2_RENEW = 0x0d, /* reserved, no layout yet: refused */
	FERRY_W2_HELLO = 0x20,
	FERRY_W2_PARAMS = 0x21,
	FERRY_W2_FEATURES = 0x22,
	FERRY_W2_COOKIE = 0x23,
	FERRY_W2_TOKEN = 0x24,
	FERRY_W2_POP = 0x25,
	FERRY_W2_TRACEPARENT = 0x26,
	FERRY_W2_TRACESTATE = 0x27,
	FERRY_W2_ERROR = 0x28,
	FERRY_W2_TIMESTAMP = 0x80,     /* reserved, ignorable */
	FERRY_W2_ACK_FREQUENCY = 0x81, /* reserved, ignorable */
	FERRY_W2_ADDRESS_TOKEN = 0x82, /* reserved, ignorable */
};
#define FERRY_W2_FT_IGNORABLE 0x80u

/* Frame flags, per type (section 3.2). */
#define FERRY_W2_F_ECN 0x01u   /* ACK: ECN counts follow first_range */
#define FERRY_W2_F_REPLY 0x01u /* CLOSE: the answer to a CLOSE */
#define FERRY_W2_F_CAPS 0x01u  /* REQUEST*: the message has a token table */
#define FERRY_W2_F_ERR 0x01u   /* RESPONSE: the body is an error body */
#define FERRY_W2_F_TRACE 0x02u /* REQUEST*: trace block; RESPONSE*:
				* attribute block */

/* FEATURES bits (section 3.3); 0 and 1 keep their v1 meaning. */
#define FERRY_W2_FEAT_IOU 0x01u
#define FERRY_W2_FEAT_TRACE 0x02u
#define FERRY_W2_FEAT_ECN 0x04u
#define FERRY_W2_FEAT_TIMESTAMP 0x08u
#define FERRY_W2_FEAT_KEY_UPDATE 0x10u
#define FERRY_W2_FEAT_RENEW 0x20u
/* Seals short-header datagrams with AES-256-GCM, and prefers it (2.3). */
#define FERRY_W2_FEAT_AESGCM 0x40u

/* Why a datagram, a frame or a handshake message was refused.  Every
 * pure byte rule of sections 2, 3 and 4 has its own value. */
enum ferry_w2_err {
	FERRY_W2_OK = 0,
	/* datagram headers (ferry__w2_parse_hdr) */
	FERRY_W2_E_V1_FORM,     /* first byte 0x46: v1, or the envelope */
	FERRY_W2_E_BAD_FORM,    /* first byte 0x00..0x7f but 0x46 */
	FERRY_W2_E_TRUNCATED,   /* shorter than header + frame header +
				 * trailer */
	FERRY_W2_E_OVERSIZED,   /* longer than 65507 */
	FERRY_W2_E_BAD_MODE,    /* short header mode bits 11 */
	FERRY_W2_E_BAD_VERSION, /* long header version not 2 */
	FERRY_W2_E_LONG_RSVD,   /* long header bits 5-4 not 0 */
	FERRY_W2_E_BAD_LTYPE,   /* long header type above REFUSE */
	FERRY_W2_E_BAD_CID,     /* DCID/SCID not as the type requires */
	FERRY_W2_E_CONNECT_SHORT, /* CONNECT datagram under 512 bytes */
	/* frames (section 2.4 rule 7: protocol errors) */
	FERRY_W2_E_FRAME_TRUNC,   /* 1..3 bytes left: no room for a header */
	FERRY_W2_E_FRAME_OVERRUN, /* the body runs into the trailer */
	FERRY_W2_E_UNKNOWN_TYPE,  /* unknown type below 0x80 */
	FERRY_W2_E_WRONG_FORM,    /* S type in a long header, or H in short */
	FERRY_W2_E_BAD_FLAGS,     /* a flag the type does not define */
	FERRY_W2_E_ERR_TRACE,     /* RESPONSE with both ERR and TRACE */
	FERRY_W2_E_BAD_LEN,       /* a body length the type does not allow */
	FERRY_W2_E_ZERO_ID,       /* req_id or push_id 0 */
	FERRY_W2_E_FRAG_MSG_LEN,  /* fragment's msg_len 0 or above 2^30 */
	FERRY_W2_E_FRAG_RANGE,    /* fragment empty or past msg_len */
	FERRY_W2_E_ACK_ZERO,      /* ACK gap or count 0 */
	FERRY_W2_E_ERROR_BODY,    /* bad error body (CLOSE, ERR, ERROR) */
	FERRY_W2_E_PUSH_RECORD,   /* bad PUSH record, or records not exact */
	FERRY_W2_E_RESERVED,      /* HELLO's or PARAMS's reserved byte not 0 */
	FERRY_W2_E_HELLO,         /* HELLO versions 0 or mode above aead */
	FERRY_W2_E_PARAMS,        /* a PARAMS field out of range */
	/* handshake messages (ferry__w2_hs_parse) */
	FERRY_W2_E_HS_DUP,        /* a handshake frame twice */
	FERRY_W2_E_HS_MISSING,    /* a frame the message needs is absent */
	FERRY_W2_E_HS_UNEXPECTED, /* a frame this message may not carry */
	FERRY_W2_E_HS_ORDER,      /* HELLO not first, COOKIE not second, or
				   * a frame other than PADDING after POP */
	FERRY_W2_E_HS_POP,        /* TOKEN without POP, or POP without it */
	FERRY_W2_E_HS_VERSION,    /* ACCEPT's HELLO not exactly one version */
	/* the v1 envelope (ferry__w2_envelope_open) */
	FERRY_W2_E_ENV_V1,          /* not a well-formed v1 frame */
	FERRY_W2_E_ENV_NOT_CONNECT, /* a v1 frame other than CONNECT */
	FERRY_W2_E_ENV_NOT_V2,      /* a v1 CONNECT without TLV 0x86 */
	FERRY_W2_E_ENV_LAYOUT,      /* not the envelope layout of 4.2 */
	FERRY_W2_E_ENV_ID,          /* src_sess not the inner SCID's low
				     * 32 bits */
	/* ACK ranges against the reconstructed largest (ferry__w2_ack_ranges) */
	FERRY_W2_E_ACK_BELOW_ZERO,
	FERRY_W2_E_COUNT
};

/* Short name of @e ("truncated", "frame_overrun"...), for logs. */
const char *ferry__w2_err_name(enum ferry_w2_err e);
/*
 * The counter @e counts in (docs/wire.md sections 2.4, 4.2): a name
 * from FERRY_EP_STATS (transport/stats.h), or one the v2 transport adds
 * (`v1_refused`).  ferry__w2_err_is_proto() is true for the frame and
 * handshake rules: in an authenticated datagram (or, in mode none, one
 * whose CRC passed) they end the session with FERRY_EPROTO and count
 * `sessions_proto_error` too (section 2.4 rule 10).
 */
const char *ferry__w2_err_counter(enum ferry_w2_err e);
bool ferry__w2_err_is_proto(enum ferry_w2_err e);

/* --- datagram headers (sections 2.1, 2.2) ------------------------------- */

/* A datagram's header, and where its frames and trailer lie.  To encode,
 * fill the header fields (is_long and then the form's own fields). */
struct ferry_w2_dgram {
	bool is_long;
	/* short header */
	uint8_t mode;     /* enum ferry_w2_mode; long: the trailer's kind */
	bool key_phase;   /* bit 5; only with KEY_UPDATE (session's rule) */
	uint8_t reserved; /* bits 4-2 as received; senders put 0 */
	uint32_t pn;      /* low 32 bits of the packet number */
	/* long header */
	uint8_t type;     /* enum ferry_w2_ltype */
	uint8_t version;  /* FERRY_W2_VERSION */
	uint64_t scid;
	/* both */
	uint64_t dcid;
	/* parse side: pointers into the datagram */
	const uint8_t *start; /* first byte (the inner one in an envelope) */
	size_t hdr_len;
	const uint8_t *frames;
	size_t frames_len;
	const uint8_t *trailer;
	size_t trailer_len;
};

/* Form of a datagram by its first byte (section 1). */
static inline bool ferry__w2_is_short(uint8_t first)
{
	return (first & FERRY_W2_FORM_MASK) == FERRY_W2_FORM_SHORT;
}

static inline bool ferry__w2_is_long(uint8_t first)
{
	return (first & FERRY_W2_FORM_MASK) == FERRY_W2_FORM_LONG;
}

/* Trailer length of a datagram with header @d: CRC32C in mode none and in
 * CONNECT, RETRY and REFUSE; a tag in modes mac and aead and in ACCEPT. */
static inline size_t ferry__w2_trailer_len(const struct ferry_w2_dgram *d)
{
	if (d->is_long)
		return d->type == FERRY_W2_ACCEPT ? FERRY_W2_TAG_LEN
						  : FERRY_W2_CRC_LEN;
	return d->mode == FERRY_W2_MODE_NONE ? FERRY_W2_CRC_LEN
					     : FERRY_W2_TAG_LEN;
}

/*
 * ferry__w2_parse_hdr - check and decode the header of one datagram (@buf,
 * @len: the UDP payload, untrusted) and find its frames and trailer.
 *
 * Returns FERRY_W2_OK with @d filled, or the first rule broken: the form
 * (V1_FORM: hand the datagram to ferry__w2_envelope_open() or the v1
 * parser), the lengths (at least a header, one frame header and the
 * trailer the header names; at most 65507; a bare CONNECT at least 512),
 * short: the mode bits; long: version, reserved bits, type, CIDs.  Does
 * not look at the frames or the trailer, and not at what needs session
 * state (own max_frame, the session's mode and key phase).  Never reads
 * outside @buf.
 */
enum ferry_w2_err ferry__w2_parse_hdr(const uint8_t *buf, size_t len,
				     struct ferry_w2_dgram *d);

/*
 * ferry__w2_put_hdr - encode @d's header (short or long by d->is_long) at
 * @out (@cap bytes).  Returns its length, -EINVAL (a mode, type or version
 * out of range), or -EMSGSIZE.
 */
int ferry__w2_put_hdr(uint8_t *out, size_t cap, const struct ferry_w2_dgram *d);

/* --- the CRC32C trailer (mode none; section 2.3) ------------------------- */

/* The CRC32C of everything before @d's trailer. */
uint32_t ferry__w2_crc(const struct ferry_w2_dgram *d);
/* True if @d has a CRC trailer and it matches (drop_bad_crc if not). */
bool ferry__w2_crc_ok(const struct ferry_w2_dgram *d);
/* Write the CRC32C of @dgram[0..@len) at @dgram + @len, big-endian. */
void ferry__w2_put_crc(uint8_t *dgram, size_t len);

/* --- frames (section 3) -------------------------------------------------- */

/* An error body (v1 layout, docs/wire.md section 10.2): CLOSE (code may be
 * 0), RESPONSE with ERR and ERROR (code 1..INT_MAX). */
struct ferry_w2_errbody {
	uint32_t code;
	const char *msg; /* not terminated; may be NULL when msg_len is 0 */
	uint16_t msg_len; /* <= FERRY_ERROR_MSG_MAX */
};

/* REQUEST, REQUEST_FRAG, RESPONSE, RESPONSE_FRAG. */
struct ferry_w2_data {
	uint32_t req_id;
	uint16_t method;  /* REQUEST* only */
	uint32_t msg_len; /* *_FRAG only (whole frames: bytes_len) */
	uint32_t offset;  /* *_FRAG only */
	const uint8_t *bytes;
	uint32_t bytes_len;
	struct ferry_w2_errbody err; /* RESPONSE with ERR: bytes, decoded */
};

struct ferry_w2_ack_range {
	uint16_t gap;   /* pns missing below the previous range, >= 1 */
	uint16_t count; /* pns acknowledged below them, >= 1 */
};

struct ferry_w2_ack {
	uint32_t largest; /* low 32 bits; ferry__w2_pn_expand() */
	uint16_t ack_delay; /* microseconds, saturating */
	uint16_t first_range;
	uint32_t ect0, ect1, ce; /* with FERRY_W2_F_ECN */
	uint8_t nranges;
	struct ferry_w2_ack_range ranges[FERRY_W2_ACK_RANGES_MAX];
};

struct ferry_w2_push {
	uint32_t push_id;
	const uint8_t *recs; /* v1 PUSH records: ferry__wire_parse_push() */
	uint16_t recs_len;
	uint16_t nrecs;      /* parse side */
};

struct ferry_w2_hello {
	uint16_t versions; /* bit v: speaks wire version v */
	uint8_t mode;      /* enum ferry_w2_mode */
	const uint8_t *pk; /* FERRY_W2_KEY_LEN bytes */
};

struct ferry_w2_params {
	uint32_t max_msg;  /* 1..2^30 */
	uint32_t window;   /* initial credit in bytes, 4096..2^30 */
	uint16_t max_frame; /* 1200..65507 */
	uint16_t slots;    /* != 0 */
	uint16_t max_ack_delay; /* microseconds */
	uint8_t replay_log2; /* 6..16 */
};

struct ferry_w2_cookie {
	uint32_t ts;
	const uint8_t *mac; /* FERRY_W2_COOKIE_MAC_LEN bytes */
};

/* PADDING, TOKEN, POP, TRACEPARENT, TRACESTATE, ignorable types.  To
 * encode PADDING, p may be NULL (zeros are sent). */
struct ferry_w2_blob {
	const uint8_t *p;
	uint16_t len;
};

/* One frame: its header, and its body decoded by type. */
struct ferry_w2_frame {
	uint8_t type;
	uint8_t flags;
	uint16_t len;        /* parse side: body bytes */
	const uint8_t *body; /* parse side: in the datagram */
	union {
		struct ferry_w2_data data;
		struct ferry_w2_ack ack;
		uint32_t credit_limit;
		struct ferry_w2_errbody err; /* CLOSE, ERROR */
		struct ferry_w2_push push;
		struct ferry_w2_hello hello;
		struct ferry_w2_params params;
		uint32_t features;
		struct ferry_w2_cookie cookie;
		struct ferry_w2_blob blob;
	} u;
};

/* Fixed body bytes before the message bytes of each data frame type. */
#define FERRY_W2_REQUEST_FIXED 6
#define FERRY_W2_REQUEST_FRAG_FIXED 14
#define FERRY_W2_RESPONSE_FIXED 4
#define FERRY_W2_RESPONSE_FRAG_FIXED 12

/*
 * ferry__w2_frame_decode - decode the frame at the start of @p (@len bytes
 * left before the trailer, untrusted) as found in a long (@is_long) or
 * short header datagram.  Returns FERRY_W2_OK with @f filled and *@used
 * set to the frame's size, or the first rule it breaks.  Types 0x80..0xff
 * decode as a blob with any flags.
 */
enum ferry_w2_err ferry__w2_frame_decode(const uint8_t *p, size_t len,
					bool is_long, struct ferry_w2_frame *f,
					size_t *used);

/*
 * ferry__w2_put_frame - encode @f (type, flags and the body member its
 * type uses; len and body are ignored) at @out (@cap bytes).  Returns the
 * frame's size, -EINVAL (a body that does not fit its length field, more
 * than 32 ACK ranges, an unknown core type), or -EMSGSIZE.  It writes what
 * it is given: the rules are the receiver's.
 */
int ferry__w2_put_frame(uint8_t *out, size_t cap, const struct ferry_w2_frame *f);

/*
 * ferry__w2_put_data_head - the frame header and fixed fields of a data
 * frame (@f: REQUEST* or RESPONSE*), with len counting d.bytes_len message
 * bytes that the caller sends from elsewhere (a lent msgbuf).  Returns the
 * bytes written, -EINVAL or -EMSGSIZE.
 */
int ferry__w2_put_data_head(uint8_t *out, size_t cap,
			   const struct ferry_w2_frame *f);

/* Write a frame header at @out; returns 4. */
static inline size_t ferry__w2_put_frame_hdr(uint8_t *out, uint8_t type,
					    uint8_t flags, uint16_t len)
{
	out[0] = type;
	out[1] = flags;
	ferry_wr_u16(out + 2, len);
	return FERRY_W2_FRAME_HDR_LEN;
}

/* --- iterating over a datagram's frames ------------------------------------ */

struct ferry_w2_iter {
	struct ferry_rd r;
	bool is_long;
};

static inline void ferry__w2_iter_init(struct ferry_w2_iter *it,
				       const struct ferry_w2_dgram *d)
{
	ferry_rd_init(&it->r, d->frames, d->frames_len);
	it->is_long = d->is_long;
}

/*
 * ferry__w2_iter_next - the next frame of the datagram into @f.  Returns
 * 1, 0 after the last (the frames filled the space exactly), or
 * -(enum ferry_w2_err) for the frame that breaks a rule (iteration stops
 * there: the reader does not move past it).
 */
int ferry__w2_iter_next(struct ferry_w2_iter *it, struct ferry_w2_frame *f);

/*
 * ferry__w2_check_frames - section 2.4 rule 7: decode every frame of @d
 * before any is acted on.  Returns FERRY_W2_OK (the frames fill the space
 * between header and trailer exactly, and there is at least one) or the
 * first rule broken.  For a long header, ferry__w2_hs_parse() does this
 * and the message's own rules.
 */
enum ferry_w2_err ferry__w2_check_frames(const struct ferry_w2_dgram *d);

/* ferry__w2_check_frames(), keeping the first @cap frames decoded in @out
 * (in order) and saying in *@n how many there are, so that a receiver
 * with room for them all decodes each frame once. */
enum ferry_w2_err ferry__w2_check_frames_into(const struct ferry_w2_dgram *d,
					     struct ferry_w2_frame *out,
					     unsigned cap, unsigned *n);

/* --- building datagrams -------------------------------------------------- */

/* A datagram under construction in one buffer.  Frames are appended while
 * they fit before the trailer's room. */
struct ferry_w2_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;         /* header and frames so far */
	size_t trailer_len;
	unsigned nframes;
};

/* Start a datagram with header @d in @buf (@cap bytes, the trailer
 * included).  Returns 0, -EINVAL or -EMSGSIZE. */
int ferry__w2_build_begin(struct ferry_w2_builder *b, uint8_t *buf, size_t cap,
			 const struct ferry_w2_dgram *d);
/* Append @f.  Returns 0, -EINVAL, or -EMSGSIZE if it does not fit before
 * the trailer (the datagram is unchanged). */
int ferry__w2_build_frame(struct ferry_w2_builder *b,
			 const struct ferry_w2_frame *f);
/* Append a PADDING frame that makes the datagram @total bytes with its
 * trailer.  Returns 0, or -EMSGSIZE if @total is beyond @cap or leaves
 * less than a frame header of room. */
int ferry__w2_build_pad(struct ferry_w2_builder *b, size_t total);
/*
 * ferry__w2_build_end - close the datagram: returns its length, trailer
 * included, or -EINVAL if it has no frame.  A CRC trailer is written
 * here; a tag's 16 bytes are zeroed and left to the caller (seal.h's
 * sealing computes them over buf[0 .. length - 16)).
 */
int ferry__w2_build_end(struct ferry_w2_builder *b);

/* --- packet numbers (sections 2.1, 5.2) ----------------------------------- */

/*
 * ferry__w2_pn_expand - the 64-bit pn whose low 32 bits are @low and that
 * is closest to @expected: the largest authenticated pn + 1 (0 before
 * any), or for an ACK's largest, the ACK receiver's largest pn sent
 * (RFC 9000 appendix A with a 32-bit window).  Ties go to the larger pn;
 * results below 0 or above 2^64 - 1 are not produced.
 */
uint64_t ferry__w2_pn_expand(uint64_t expected, uint32_t low);

/* One acknowledged range, inclusive. */
struct ferry_w2_pn_range {
	uint64_t lo, hi;
};

/*
 * ferry__w2_ack_ranges - the pn ranges @a acknowledges, highest first,
 * given @largest, the expanded a->largest.  Writes 1 + a->nranges entries
 * to @out.  Returns their number, or -FERRY_W2_E_ACK_BELOW_ZERO if a
 * range would reach below pn 0 (a protocol error).
 */
int ferry__w2_ack_ranges(const struct ferry_w2_ack *a, uint64_t largest,
			 struct ferry_w2_pn_range out[FERRY_W2_ACK_RANGES_MAX + 1]);

/* --- handshake messages (section 4.1; transport/wire2_hs.c) ----------------- */

/* What a long-header datagram's frames say, by frame; pointers into the
 * datagram. */
struct ferry_w2_hs {
	uint32_t have; /* bit (type - 0x20) per handshake frame seen */
	struct ferry_w2_hello hello;
	struct ferry_w2_params params;
	uint32_t features; /* 0 when absent */
	struct ferry_w2_cookie cookie;
	struct ferry_w2_blob token;
	const uint8_t *pop;
	/* Bytes from the datagram's first byte to the POP frame's header:
	 * what POP covers (section 4.5). */
	size_t pop_covered;
	struct ferry_w2_blob traceparent;
	struct ferry_w2_blob tracestate;
	struct ferry_w2_errbody error;
};

static inline bool ferry__w2_hs_has(const struct ferry_w2_hs *hs, uint8_t type)
{
	return type >= FERRY_W2_HELLO && type <= FERRY_W2_ERROR &&
	       (hs->have >> (type - FERRY_W2_HELLO) & 1u);
}

/*
 * ferry__w2_hs_parse - check every frame of the long-header datagram @d
 * (rule 7, as ferry__w2_check_frames, all of them first) and then the
 * rules of its message type
 * (section 4.1): which frames it must and may carry, each at most once,
 * HELLO first, COOKIE right after it, only PADDING after POP, POP exactly
 * with TOKEN, one version in ACCEPT's HELLO.  Returns FERRY_W2_OK with
 * @hs filled, or the first rule broken.
 */
enum ferry_w2_err ferry__w2_hs_parse(const struct ferry_w2_dgram *d,
				    struct ferry_w2_hs *hs);

/* Decode and encode the bodies of the handshake frames (0x20..0x28);
 * ferry__w2_frame_decode and ferry__w2_put_frame call these. */
enum ferry_w2_err ferry__w2_hs_body_decode(struct ferry_rd *b,
					  struct ferry_w2_frame *f);
int ferry__w2_hs_body_len(const struct ferry_w2_frame *f);
void ferry__w2_hs_body_put(uint8_t *out, const struct ferry_w2_frame *f);

/* Decode an error body of @len bytes at @b, code 0 allowed only with
 * @zero_ok (CLOSE). */
enum ferry_w2_err ferry__w2_errbody_decode(struct ferry_rd *b, bool zero_ok,
					  struct ferry_w2_errbody *e);

/* --- the v1 envelope of a CONNECT (section 4.2; wire2_hs.c) -------------- */

/*
 * ferry__w2_envelope_open - find the v2 CONNECT inside a v1 CONNECT (@buf,
 * @len: the datagram, first byte 0x46, untrusted) and parse its long
 * header into @d (d->start is the inner datagram's first byte).  The
 * layout is exactly section 4.2's: a v1 header (CONNECT, flags 0, ack 0,
 * credit = the v1 PARAMS' credits, src_sess = the low 32 bits of the inner
 * SCID), the v1 PARAMS TLV, then TLV 0x86 holding the inner datagram to
 * the end.  *@env_id gets src_sess.  Returns FERRY_W2_OK, ENV_V1 (a v1
 * frame that ferry__wire_parse refuses: count its reason), ENV_NOT_CONNECT
 * (drop_bad_version), ENV_NOT_V2 (a v1 CONNECT: answer with a v1 ERROR
 * FERRY_EVERSION), ENV_LAYOUT, ENV_ID, CONNECT_SHORT (under 512 in all), or
 * the inner header's error (its type must be CONNECT: BAD_LTYPE).
 */
enum ferry_w2_err ferry__w2_envelope_open(const uint8_t *buf, size_t len,
					 struct ferry_w2_dgram *d,
					 uint32_t *env_id);

/*
 * ferry__w2_envelope_wrap - write the 68-byte envelope head at @out, in
 * front of a finished bare CONNECT of @inner_len bytes already at @out +
 * FERRY_W2_ENV_LEN, with the v1 PARAMS @v1.  Returns the whole datagram's
 * length, or -EINVAL (not a CONNECT, an SCID whose low 32 bits are 0, or
 * inner too long for a TLV).
 */
int ferry__w2_envelope_wrap(uint8_t *out, size_t inner_len,
			    const struct ferry_params *v1);

#endif /* FERRY_WIRE2_H */
