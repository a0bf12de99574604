/* SPDX-License-Identifier: MIT */
/*
 * The wire v2 handshake, client side (docs/wire.md, sections 4.1 to 4.5;
 * handshake.h): CONNECT in its v1 envelope, taking one RETRY, verifying
 * ACCEPT under the derived key, REFUSE, and a v1 server's ERROR.
 */
#include "handshake.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include <ferry/error.h>

#include "rd.h"
#include "wire.h"

/* The inner CONNECT's share of the 512 bytes: the envelope takes 68. */
#define INNER_MIN (FERRY_W2_CONNECT_MIN - FERRY_W2_ENV_LEN)

/* True if the codec would take @p as a PARAMS body: encode it and decode
 * it again, so that the rules live in one place (wire2_hs.c). */
static bool params_ok(const struct ferry_w2_params *p)
{
	struct ferry_w2_frame f = {.type = FERRY_W2_PARAMS}, g;
	uint8_t buf[32];
	size_t used;
	int n;

	f.u.params = *p;
	n = ferry__w2_put_frame(buf, sizeof(buf), &f);
	return n > 0 && ferry__w2_frame_decode(buf, (size_t)n, true, &g,
					      &used) == FERRY_W2_OK;
}

static int cfg_check(const struct ferry_hs_client_cfg *cfg)
{
	if (cfg->mode > FERRY_W2_MODE_AEAD || !params_ok(&cfg->params))
		return -EINVAL;
	if (cfg->tracestate &&
	    (cfg->tracestate_len > FERRY_TRACESTATE_MAX || !cfg->traceparent))
		return -EINVAL;
	if (cfg->traceparent &&
	    strnlen(cfg->traceparent, FERRY_TRACEPARENT_LEN + 1) !=
		    FERRY_TRACEPARENT_LEN)
		return -EINVAL;
	if (!cfg->token != !cfg->hk ||
	    (cfg->token && (cfg->token_len == 0 || cfg->token_len > UINT16_MAX)))
		return -EINVAL;
	if (cfg->cid && (uint32_t)cfg->cid == 0)
		return -EINVAL;
	return 0;
}

int ferry__hs_client_init(struct ferry_hs_client *c,
			  const struct ferry_hs_client_cfg *cfg)
{
	int rc = cfg_check(cfg);

	if (rc)
		return rc;
	if (ferry__seal_init() != 0)
		return -EIO;
	memset(c, 0, sizeof(*c));
	c->cid = cfg->cid;
	/* 64 random bits, never 0, and the low 32 (the envelope id, section
	 * 4.2, which v1's parser refuses as 0) never 0 either. */
	while ((uint32_t)c->cid == 0)
		randombytes_buf(&c->cid, sizeof(c->cid));
	if (cfg->kx_seed)
		crypto_kx_seed_keypair(c->pk, c->sk, cfg->kx_seed);
	else
		crypto_kx_keypair(c->pk, c->sk);
	c->mode = cfg->mode;
	c->params = cfg->params;
	c->features = cfg->features;
	c->traceparent = cfg->traceparent;
	c->tracestate = cfg->tracestate;
	c->tracestate_len = (uint16_t)cfg->tracestate_len;
	c->token = cfg->token;
	c->token_len = (uint16_t)cfg->token_len;
	if (cfg->hk) {
		memcpy(c->hk, cfg->hk, FERRY_HS_HK_LEN);
		c->have_hk = true;
	}
	return 0;
}

void ferry__hs_client_wipe(struct ferry_hs_client *c)
{
	sodium_memzero(c, sizeof(*c));
}

/* Append a frame of @type with the blob @p/@len. */
static int put_blob(struct ferry_w2_builder *b, uint8_t type, const void *p,
		    size_t len)
{
	struct ferry_w2_frame f = {.type = type};

	f.u.blob.p = p;
	f.u.blob.len = (uint16_t)len;
	return ferry__w2_build_frame(b, &f);
}

/* HELLO, COOKIE, PARAMS, FEATURES and the trace context: everything
 * before TOKEN. */
static int build_head(const struct ferry_hs_client *c,
		      struct ferry_w2_builder *b)
{
	struct ferry_w2_frame f = {.type = FERRY_W2_HELLO};
	int rc;

	f.u.hello = (struct ferry_w2_hello){FERRY_W2_VERSIONS_BIT, c->mode,
					    c->pk};
	rc = ferry__w2_build_frame(b, &f);
	if (rc == 0 && c->have_cookie) {
		/* Second, as RETRY sent it (section 4.1). */
		f.type = FERRY_W2_COOKIE;
		f.u.cookie = (struct ferry_w2_cookie){c->cookie_ts,
						      c->cookie_mac};
		rc = ferry__w2_build_frame(b, &f);
	}
	if (rc == 0) {
		f.type = FERRY_W2_PARAMS;
		f.u.params = c->params;
		rc = ferry__w2_build_frame(b, &f);
	}
	if (rc == 0) {
		f.type = FERRY_W2_FEATURES;
		f.u.features = c->features;
		rc = ferry__w2_build_frame(b, &f);
	}
	if (rc == 0 && c->traceparent)
		rc = put_blob(b, FERRY_W2_TRACEPARENT, c->traceparent,
			      FERRY_TRACEPARENT_LEN);
	if (rc == 0 && c->tracestate)
		rc = put_blob(b, FERRY_W2_TRACESTATE, c->tracestate,
			      c->tracestate_len);
	return rc;
}

/* The bare inner CONNECT at @buf (@cap bytes); returns its length. */
static int build_inner(struct ferry_hs_client *c, uint8_t *buf, size_t cap)
{
	struct ferry_w2_dgram d = {
		.is_long = true,
		.type = FERRY_W2_CONNECT,
		.version = FERRY_W2_VERSION,
		.scid = c->cid,
	};
	struct ferry_w2_builder b;
	uint8_t pop[FERRY_W2_POP_LEN];
	size_t total;
	int rc;

	rc = ferry__w2_build_begin(&b, buf, cap, &d);
	if (rc == 0)
		rc = build_head(c, &b);
	if (rc == 0 && c->token) {
		rc = put_blob(&b, FERRY_W2_TOKEN, c->token, c->token_len);
		/* POP covers every byte before its own frame header, the
		 * cookie included, so a POP made for another cookie (another
		 * address) is worthless (section 4.5). */
		if (rc == 0)
			rc = ferry__hs_pop(c->hk, buf, b.len, pop);
		if (rc == 0)
			rc = put_blob(&b, FERRY_W2_POP, pop, sizeof(pop));
	}
	total = b.len + b.trailer_len;
	/* Padding makes the whole datagram 512 bytes; a PADDING frame is
	 * at least its 4-byte header, so a CONNECT 1..3 bytes short ends a
	 * little longer. */
	if (rc == 0 && total < INNER_MIN)
		rc = ferry__w2_build_pad(&b, total + FERRY_W2_FRAME_HDR_LEN >
						     INNER_MIN
					      ? total + FERRY_W2_FRAME_HDR_LEN
					      : INNER_MIN);
	return rc < 0 ? rc : ferry__w2_build_end(&b);
}

int ferry__hs_client_build(struct ferry_hs_client *c, uint8_t *out,
			   size_t cap)
{
	struct ferry_params v1 = {
		.max_msg = c->params.max_msg,
		/* v1 counts credit in frames: one per call slot is what a v1
		 * server would expect, and it never sees more (it refuses
		 * the envelope). */
		.credits = c->params.slots,
		.max_frame = c->params.max_frame,
		.slots = c->params.slots,
	};
	int n;

	if (c->done)
		return -EINVAL;
	if (cap < FERRY_W2_CONNECT_MIN)
		return -EMSGSIZE;
	n = build_inner(c, out + FERRY_W2_ENV_LEN, cap - FERRY_W2_ENV_LEN);
	if (n < 0)
		return n;
	/* The transcript is the inner CONNECT without its CRC (4.4 step 3);
	 * the server hashes the same bytes of the one it accepts. */
	ferry__seal_transcript(out + FERRY_W2_ENV_LEN,
			       (size_t)n - FERRY_W2_CRC_LEN, c->th);
	c->have_th = true;
	return ferry__w2_envelope_wrap(out, (size_t)n, &v1);
}

/* --- input ---------------------------------------------------------------- */

static enum ferry_hs_verdict drop(struct ferry_hs_client_result *res,
				  const char *counter)
{
	res->drop = counter;
	return FERRY_HS_DROP;
}

static enum ferry_hs_verdict fail(struct ferry_hs_client *c,
				  struct ferry_hs_client_result *res, int err)
{
	res->err = err;
	c->done = true;
	sodium_memzero(c->sk, sizeof(c->sk));
	sodium_memzero(c->hk, sizeof(c->hk));
	return FERRY_HS_FAILED;
}

/* A v1 frame: only a v1 server's ERROR FERRY_EVERSION naming our envelope
 * id means something (section 4.2); it aborts this attempt only. */
static enum ferry_hs_verdict input_v1(struct ferry_hs_client *c,
				      const uint8_t *dg, size_t len,
				      struct ferry_hs_client_result *res)
{
	struct ferry_frame fr;
	const char *msg;
	uint32_t code;
	uint16_t mlen;

	if (ferry__wire_parse(dg, len, FERRY_WIRE_MAX_MSG, &fr) !=
		    FERRY_PARSE_OK ||
	    fr.h.type != FERRY_FT_ERROR)
		return drop(res, "drop_bad_version");
	if (fr.h.dst_sess != (uint32_t)c->cid)
		return drop(res, "drop_stale");
	if (ferry__wire_parse_error(fr.payload, fr.pay_len, &code, &msg,
				   &mlen) != 0)
		return drop(res, "drop_malformed");
	if (code != FERRY_EVERSION)
		return drop(res, "drop_bad_version");
	return fail(c, res, -FERRY_EVERSION);
}

static enum ferry_hs_verdict input_accept(struct ferry_hs_client *c,
					  const struct ferry_w2_dgram *d,
					  const struct ferry_w2_hs *hs,
					  struct ferry_hs_client_result *res)
{
	struct ferry_hs_accept *a = &res->accept;
	struct iovec iov = {
		.iov_base = (void *)d->start,
		.iov_len = (size_t)(d->trailer - d->start),
	};
	int rc;

	if (!c->have_th)
		return drop(res, "drop_stale");
	rc = ferry__seal_keys_client(c->pk, c->sk, hs->hello.pk, c->th,
				     c->have_hk ? c->hk : NULL, &a->keys);
	if (rc == -EINVAL)
		return drop(res, "drop_malformed");
	/* ACCEPT is sealed in mac form under k_s2c, pn 0 (4.4 step 6): the
	 * tag proves the server derived what we did from what we sent. */
	if (rc == 0 && ferry__seal_verify_iov(FERRY_SEAL_MAC, a->keys.s2c, 0,
					      &iov, 1, d->trailer) != 0)
		rc = -EBADMSG;
	if (rc != 0) {
		sodium_memzero(&a->keys, sizeof(a->keys));
		return drop(res, rc == -EBADMSG ? "drop_auth" : "drop_malformed");
	}
	/* Authentic from here: these are the server's own words. */
	if (hs->hello.versions != FERRY_W2_VERSIONS_BIT ||
	    hs->hello.mode < c->mode) {
		sodium_memzero(&a->keys, sizeof(a->keys));
		return fail(c, res,
			    hs->hello.versions != FERRY_W2_VERSIONS_BIT
				    ? -FERRY_EVERSION
				    : -FERRY_EPROTO);
	}
	a->server_cid = d->scid;
	a->mode = hs->hello.mode;
	a->params = hs->params;
	a->features = hs->features;
	c->done = true;
	sodium_memzero(c->sk, sizeof(c->sk));
	sodium_memzero(c->hk, sizeof(c->hk));
	return FERRY_HS_ACCEPTED;
}

static enum ferry_hs_verdict input_long(struct ferry_hs_client *c,
					const uint8_t *dg, size_t len,
					struct ferry_hs_client_result *res)
{
	struct ferry_w2_dgram d;
	struct ferry_w2_hs hs;
	enum ferry_w2_err e;

	e = ferry__w2_parse_hdr(dg, len, &d);
	/* A CONNECT is for servers, whatever its size (the codec checks its
	 * 512 bytes last, with the header decoded). */
	if ((e == FERRY_W2_OK || e == FERRY_W2_E_CONNECT_SHORT) &&
	    d.type == FERRY_W2_CONNECT)
		return drop(res, "drop_bad_type");
	if (e != FERRY_W2_OK)
		return drop(res, ferry__hs_codec_drop(e));
	/* Everything a server sends names our CID; nothing is taken once the
	 * attempt has ended, and only one RETRY per attempt (section 4.1). */
	if (d.dcid != c->cid || c->done ||
	    (d.type == FERRY_W2_RETRY && c->have_cookie))
		return drop(res, "drop_stale");
	if (d.type != FERRY_W2_ACCEPT && !ferry__w2_crc_ok(&d))
		return drop(res, "drop_bad_crc");
	e = ferry__w2_hs_parse(&d, &hs);
	if (e != FERRY_W2_OK)
		return drop(res, ferry__hs_codec_drop(e));
	switch (d.type) {
	case FERRY_W2_RETRY:
		c->cookie_ts = hs.cookie.ts;
		memcpy(c->cookie_mac, hs.cookie.mac, sizeof(c->cookie_mac));
		c->have_cookie = true;
		return FERRY_HS_RETRY;
	case FERRY_W2_REFUSE:
		/* Unauthenticated, like v1's ERROR: it can only end this
		 * attempt, whose CID an off-path attacker does not know. */
		return fail(c, res, -(int)hs.error.code);
	default:
		return input_accept(c, &d, &hs, res);
	}
}

enum ferry_hs_verdict ferry__hs_client_input(struct ferry_hs_client *c,
					     const uint8_t *dg, size_t len,
					     struct ferry_hs_client_result *res)
{
	memset(res, 0, sizeof(*res));
	if (len == 0)
		return drop(res, "drop_truncated");
	if (dg[0] == FERRY_W2_V1_FIRST) {
		if (c->done)
			return drop(res, "drop_stale");
		return input_v1(c, dg, len, res);
	}
	if (!ferry__w2_is_long(dg[0]))
		return drop(res, ferry__w2_is_short(dg[0])
					 ? "drop_unknown_session"
					 : "drop_bad_magic");
	return input_long(c, dg, len, res);
}
