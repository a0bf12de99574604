/* SPDX-License-Identifier: MIT */
/*
 * The first eight rules of wire v2's receive pipeline (docs/wire.md,
 * 2.4) for a short-header datagram: lengths, the CID table, the peer's
 * address, the mode, the replay window, the trailer, and every frame
 * parsed before any is acted on; then the pn is marked seen.  What comes
 * back is a datagram whose frames may be processed (rule 9), or the one
 * reason it was dropped, which names the counter it counts in.
 *
 * Nothing about a session is written before rule 8: a forged, truncated,
 * replayed or misaddressed datagram leaves every window as it was.
 */
#ifndef FERRY_TRANSPORT_RXOPEN_H
#define FERRY_TRANSPORT_RXOPEN_H

#include <stddef.h>
#include <stdint.h>

#include "../dataplane/dp.h"
#include "cidtab.h"
#include "seal.h"
#include "wire2.h"

enum ferry__rx_res {
	FERRY_RX_OK = 0,
	FERRY_RX_TRUNCATED,  /* drop_truncated */
	FERRY_RX_OVERSIZED,  /* drop_oversized: above own max_frame */
	FERRY_RX_UNKNOWN,    /* drop_unknown_session: CID or address */
	FERRY_RX_MALFORMED,  /* drop_malformed: not a short header, the
			      * session's mode, or a key phase it lacks */
	FERRY_RX_REPLAY_OLD, /* drop_replay_old */
	FERRY_RX_DUPLICATE,  /* drop_duplicate */
	FERRY_RX_AUTH,       /* drop_auth: the tag */
	FERRY_RX_BAD_CRC,    /* drop_bad_crc: mode none */
	FERRY_RX_PROTO,      /* authenticated, but a frame broke a rule
			      * (out->err): the session ends (rule 10) */
};

/* What rules 3 to 8 need of a session. */
struct ferry__rx_sess {
	struct ferry_addr peer;
	uint8_t mode;              /* enum ferry_w2_mode */
	uint8_t seal;              /* enum ferry_seal_mode (suite bit too) */
	const uint8_t *key;        /* the peer-to-us packet key */
	struct ferry__replay *seen;
};

/* The session a CID table value names (never NULL for a value in it). */
typedef const struct ferry__rx_sess *(*ferry__rx_sess_fn)(void *ctx,
							   uint32_t val);

struct ferry__rx_dgram {
	uint32_t sess;       /* the CID table's value */
	uint64_t pn;         /* reconstructed */
	struct ferry_w2_dgram d; /* frames decrypted in place in aead */
	enum ferry_w2_err err;   /* FERRY_RX_PROTO: the rule */
	unsigned nframes;    /* FERRY_RX_OK: frames in d */
};

/*
 * ferry__rx_open - apply rules 1 to 8 to the short-header datagram @buf
 * (@len bytes, from @src; untrusted; the caller has told the forms apart
 * by the first byte).  @max_frame is this endpoint's own.  On
 * FERRY_RX_OK @out describes the datagram and its pn is marked seen; on
 * FERRY_RX_PROTO @out->sess and ->err say whose session must end and why;
 * otherwise nothing is written but @out.  The first @cap frames rule 7
 * decodes are kept in @fr (NULL with 0: none): all of them when
 * out->nframes <= @cap, for the caller to act on without decoding them
 * again.
 */
enum ferry__rx_res ferry__rx_open(uint8_t *buf, size_t len,
				  uint32_t max_frame,
				  const struct ferry_addr *src,
				  const struct ferry__cidtab *cids,
				  ferry__rx_sess_fn sess_of, void *ctx,
				  struct ferry__rx_dgram *out,
				  struct ferry_w2_frame *fr, unsigned cap);

/* The FERRY_EP_STATS counter @r counts in ("" for FERRY_RX_OK). */
const char *ferry__rx_res_counter(enum ferry__rx_res r);

#endif /* FERRY_TRANSPORT_RXOPEN_H */
