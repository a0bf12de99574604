/* SPDX-License-Identifier: MIT */
/*
 * Wire v2's receive pipeline, rules 1 to 8: see rxopen.h.
 */
#include <errno.h>

#include "transport/rd.h"
#include "transport/rxopen.h"

/* The smallest short-header datagram: a header, an empty frame, a CRC. */
#define RX_MIN (FERRY_W2_SHORT_HDR_LEN + FERRY_W2_FRAME_HDR_LEN + FERRY_W2_CRC_LEN)

static enum ferry__rx_res open_err(int rc, uint8_t mode)
{
	if (rc == -EBADMSG)
		return mode == FERRY_W2_MODE_NONE ? FERRY_RX_BAD_CRC
						  : FERRY_RX_AUTH;
	return rc == -EMSGSIZE ? FERRY_RX_TRUNCATED : FERRY_RX_MALFORMED;
}

enum ferry__rx_res ferry__rx_open(uint8_t *buf, size_t len,
				  uint32_t max_frame,
				  const struct ferry_addr *src,
				  const struct ferry__cidtab *cids,
				  ferry__rx_sess_fn sess_of, void *ctx,
				  struct ferry__rx_dgram *out,
				  struct ferry_w2_frame *fr, unsigned cap)
{
	const struct ferry__rx_sess *s;
	struct ferry_w2_dgram *d = &out->d;
	struct ferry_rd r;
	enum ferry_w2_err e;
	int64_t v;
	int rc;

	out->err = FERRY_W2_OK;
	out->nframes = 0;
	/* Rule 1. */
	if (len < RX_MIN)
		return FERRY_RX_TRUNCATED;
	if (len > max_frame)
		return FERRY_RX_OVERSIZED;
	if (!ferry__w2_is_short(buf[0]))
		return FERRY_RX_MALFORMED;
	/* Rules 2 and 3: the DCID is at a fixed place, so the session is
	 * found before anything else is decoded. */
	ferry_rd_init(&r, buf + 1, 8);
	v = ferry__cidtab_find(cids, ferry_rd_u64(&r));
	if (v < 0)
		return FERRY_RX_UNKNOWN;
	out->sess = (uint32_t)v;
	s = sess_of(ctx, out->sess);
	if (!ferry_addr_eq(src, &s->peer))
		return FERRY_RX_UNKNOWN;
	/* Rule 4. */
	e = ferry__w2_parse_hdr(buf, len, d);
	if (e == FERRY_W2_E_TRUNCATED)
		return FERRY_RX_TRUNCATED;
	if (e != FERRY_W2_OK || d->mode != s->mode || d->key_phase)
		return FERRY_RX_MALFORMED;
	/* Rule 5. */
	out->pn = ferry__w2_pn_expand(s->seen->next, d->pn);
	rc = ferry__replay_check(s->seen, out->pn);
	if (rc == -ESTALE)
		return FERRY_RX_REPLAY_OLD;
	if (rc == -EALREADY)
		return FERRY_RX_DUPLICATE;
	if (rc)
		return FERRY_RX_MALFORMED;
	/* Rule 6: in aead the frames are plaintext from here on. */
	rc = ferry__seal_open((enum ferry_seal_mode)s->seal, s->key, out->pn,
			      buf, d->hdr_len, len);
	if (rc < 0)
		return open_err(rc, s->mode);
	/* Rule 7. */
	e = ferry__w2_check_frames_into(d, fr, cap, &out->nframes);
	if (e != FERRY_W2_OK) {
		out->err = e;
		return FERRY_RX_PROTO;
	}
	/* Rule 8. */
	ferry__replay_commit(s->seen, out->pn);
	return FERRY_RX_OK;
}

const char *ferry__rx_res_counter(enum ferry__rx_res r)
{
	static const char *const names[] = {
		[FERRY_RX_OK] = "",
		[FERRY_RX_TRUNCATED] = "drop_truncated",
		[FERRY_RX_OVERSIZED] = "drop_oversized",
		[FERRY_RX_UNKNOWN] = "drop_unknown_session",
		[FERRY_RX_MALFORMED] = "drop_malformed",
		[FERRY_RX_REPLAY_OLD] = "drop_replay_old",
		[FERRY_RX_DUPLICATE] = "drop_duplicate",
		[FERRY_RX_AUTH] = "drop_auth",
		[FERRY_RX_BAD_CRC] = "drop_bad_crc",
		[FERRY_RX_PROTO] = "drop_malformed",
	};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "";
}
