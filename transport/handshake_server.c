/* SPDX-License-Identifier: MIT */
/*
 * The wire v2 handshake, server side (docs/wire.md, sections 4.1 to 4.5;
 * handshake.h): the stateless RETRY and its cookie keys, the v1 ERROR a v1
 * client gets, the reply rate limits, checking CONNECT and its POP, and
 * writing ACCEPT and REFUSE.
 */
#include "handshake.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <sodium.h>

#include <ferry/error.h>

#include "rd.h"
#include "wire.h"

#define NS_PER_S 1000000000ull
#define V1_REFUSAL_TEXT "peer speaks ferry wire v2"

int ferry__hs_server_init(struct ferry_hs_server *srv, enum ferry_hs_retry retry,
			  uint64_t now_ns)
{
	if (ferry__seal_init() != 0)
		return -EIO;
	memset(srv, 0, sizeof(*srv));
	srv->retry = retry;
	ferry__hs_server_set_rates(srv, 0, 0);
	srv->epoch = now_ns / NS_PER_S / FERRY_HS_COOKIE_EPOCH_S;
	randombytes_buf(srv->cookie_key, sizeof(srv->cookie_key));
	randombytes_buf(srv->bucket_key, sizeof(srv->bucket_key));
	return 0;
}

void ferry__hs_server_set_rates(struct ferry_hs_server *srv, uint32_t src_rate,
				uint32_t global_rate)
{
	uint32_t src = src_rate ? src_rate : FERRY_HS_SRC_RATE;
	uint32_t global = global_rate ? global_rate : FERRY_HS_GLOBAL_RATE;

	srv->src_interval = NS_PER_S / src ? NS_PER_S / src : 1;
	srv->global_interval = NS_PER_S / global ? NS_PER_S / global : 1;
	srv->src_burst = src / 10 > FERRY_HS_SRC_BURST ? src / 10
						       : FERRY_HS_SRC_BURST;
	srv->global_burst = global / 100 > FERRY_HS_SRC_BURST
				    ? global / 100
				    : FERRY_HS_SRC_BURST;
}

bool ferry__hs_server_has_cookie(const uint8_t *dg, size_t len)
{
	struct ferry_rd r;
	uint16_t hello_len;

	ferry_rd_init(&r, dg, len);
	/* The inner CONNECT: after the envelope's fixed head (4.2), or the
	 * whole datagram when bare; then its long header. */
	if (len && dg[0] == FERRY_W2_V1_FIRST)
		(void)ferry_rd_take(&r, FERRY_W2_ENV_LEN);
	(void)ferry_rd_take(&r, FERRY_W2_LONG_HDR_LEN);
	if (ferry_rd_u8(&r) != FERRY_W2_HELLO)
		return false;
	(void)ferry_rd_u8(&r); /* flags */
	hello_len = ferry_rd_u16(&r);
	(void)ferry_rd_take(&r, hello_len);
	return ferry_rd_u8(&r) == FERRY_W2_COOKIE && !r.err;
}

/* Replace the cookie keys when @now enters a later epoch: the previous
 * key stays one epoch for the cookies it made; a jump of two or more
 * epochs leaves no key of before.  A clock that steps back keeps them. */
static void rotate(struct ferry_hs_server *srv, uint64_t now_s)
{
	uint64_t e = now_s / FERRY_HS_COOKIE_EPOCH_S;

	if (e <= srv->epoch)
		return;
	if (e == srv->epoch + 1)
		memcpy(srv->cookie_key[1], srv->cookie_key[0], 32);
	else
		randombytes_buf(srv->cookie_key[1], 32);
	randombytes_buf(srv->cookie_key[0], 32);
	srv->epoch = e;
}

static enum ferry_hs_cookie cookie_check(const struct ferry_hs_server *srv,
					 const struct ferry_w2_cookie *ck,
					 const struct ferry_addr *peer,
					 const struct ferry_addr *local,
					 uint64_t cid, uint64_t now_s)
{
	uint8_t mac[FERRY_W2_COOKIE_MAC_LEN];
	uint64_t e = ck->ts / FERRY_HS_COOKIE_EPOCH_S;
	const uint8_t *key;

	if ((uint64_t)ck->ts + FERRY_HS_COOKIE_LIFE_S < now_s ||
	    ck->ts > now_s + FERRY_HS_COOKIE_FUTURE_S)
		return FERRY_HS_COOKIE_STALE;
	if (e == srv->epoch)
		key = srv->cookie_key[0];
	else if (e + 1 == srv->epoch)
		key = srv->cookie_key[1];
	else
		return FERRY_HS_COOKIE_EPOCH;
	ferry__hs_cookie_mac(key, peer, local, cid, ck->ts, mac);
	return crypto_verify_16(mac, ck->mac) == 0 ? FERRY_HS_COOKIE_OK
						   : FERRY_HS_COOKIE_MAC;
}

/* One GCRA bucket: a reply at @now is allowed while the theoretical
 * arrival time is at most (burst - 1) intervals ahead of it. */
static bool bucket_take(uint64_t *tat, uint64_t now, uint64_t interval,
			uint64_t burst)
{
	uint64_t t = *tat > now ? *tat : now;

	if (t - now > (burst - 1) * interval)
		return false;
	*tat = t + interval;
	return true;
}

/* Both buckets of section 4.3: the source's first, so that one flooding
 * address spends its own bucket and not the global one. */
static bool reply_allowed(struct ferry_hs_server *srv,
			  const struct ferry_addr *peer, uint64_t now)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t idx, *src;

	crypto_shorthash(h, (const uint8_t *)&peer->ip, sizeof(peer->ip),
			 srv->bucket_key);
	memcpy(&idx, h, sizeof(idx));
	src = &srv->src_tat[idx % FERRY_HS_SRC_BUCKETS];
	if (srv->src_interval &&
	    !bucket_take(src, now, srv->src_interval, srv->src_burst))
		return false;
	return bucket_take(&srv->global_tat, now, srv->global_interval,
			   srv->global_burst);
}

static enum ferry_hs_verdict drop(struct ferry_hs_server_result *res,
				  const char *counter)
{
	res->drop = counter;
	return FERRY_HS_DROP;
}

/* Send @n bytes to an unvalidated address: within 3x and the buckets. */
static enum ferry_hs_verdict reply(struct ferry_hs_server *srv,
				   const struct ferry_addr *peer, uint64_t now,
				   size_t rx_len, int n, const char *sent,
				   struct ferry_hs_server_result *res)
{
	if (n < 0 || (size_t)n > FERRY_HS_AMPLIFICATION * rx_len)
		return drop(res, "unvalidated_suppressed");
	if (!reply_allowed(srv, peer, now))
		return drop(res, "retry_ratelimited");
	res->sent = sent;
	res->reply_len = (size_t)n;
	return FERRY_HS_REPLY;
}

/* The v1 ERROR of section 4.2 for a v1 CONNECT whose src_sess is @id. */
static int v1_refusal(uint32_t id, uint8_t *out, size_t cap)
{
	struct ferry_hdr h = {.type = FERRY_FT_ERROR, .dst_sess = id};
	size_t n;

	if (cap < FERRY_WIRE_HDR_LEN + 6 + sizeof(V1_REFUSAL_TEXT))
		return -EMSGSIZE;
	n = ferry__wire_put_error(out + FERRY_WIRE_HDR_LEN,
				 cap - FERRY_WIRE_HDR_LEN, FERRY_EVERSION,
				 V1_REFUSAL_TEXT);
	h.msg_len = (uint32_t)n;
	ferry__wire_encode(&h, out);
	return (int)(FERRY_WIRE_HDR_LEN + n);
}

static int retry_build(const struct ferry_hs_server *srv,
		       const struct ferry_addr *peer,
		       const struct ferry_addr *local, uint64_t cid,
		       uint64_t now_s, uint8_t *out, size_t cap)
{
	struct ferry_w2_dgram d = {
		.is_long = true,
		.type = FERRY_W2_RETRY,
		.version = FERRY_W2_VERSION,
		.dcid = cid,
	};
	struct ferry_w2_frame f = {.type = FERRY_W2_COOKIE};
	uint8_t mac[FERRY_W2_COOKIE_MAC_LEN];
	struct ferry_w2_builder b;
	int rc;

	/* Cookies are minted under the current epoch's key only. */
	f.u.cookie.ts = (uint32_t)now_s;
	ferry__hs_cookie_mac(srv->cookie_key[0], peer, local, cid,
			     f.u.cookie.ts, mac);
	f.u.cookie.mac = mac;
	rc = ferry__w2_build_begin(&b, out, cap, &d);
	if (rc == 0)
		rc = ferry__w2_build_frame(&b, &f);
	return rc < 0 ? rc : ferry__w2_build_end(&b);
}

/* Fill @conn from a parsed CONNECT. */
static void conn_fill(struct ferry_hs_conn *conn,
		      const struct ferry_w2_dgram *d,
		      const struct ferry_w2_hs *hs, size_t rx_len)
{
	memset(conn, 0, sizeof(*conn));
	conn->client_cid = d->scid;
	memcpy(conn->client_pk, hs->hello.pk, FERRY_W2_KEY_LEN);
	conn->client_mode = hs->hello.mode;
	conn->params = hs->params;
	conn->features = hs->features;
	if (ferry__w2_hs_has(hs, FERRY_W2_TRACEPARENT))
		conn->traceparent = hs->traceparent.p;
	if (ferry__w2_hs_has(hs, FERRY_W2_TRACESTATE)) {
		conn->tracestate = hs->tracestate.p;
		conn->tracestate_len = hs->tracestate.len;
	}
	if (ferry__w2_hs_has(hs, FERRY_W2_TOKEN)) {
		conn->token = hs->token.p;
		conn->token_len = hs->token.len;
		conn->pop = hs->pop;
		conn->pop_covered = hs->pop_covered;
	}
	conn->inner = d->start;
	conn->rx_len = rx_len;
	/* From the first byte up to the CRC trailer (4.4 step 3). */
	ferry__seal_transcript(d->start, (size_t)(d->trailer - d->start),
			       conn->th);
}

/* The inner CONNECT @d of a datagram of @len bytes, its header sound. */
static enum ferry_hs_verdict input_connect(struct ferry_hs_server *srv,
					   const struct ferry_w2_dgram *d,
					   size_t len,
					   const struct ferry_addr *peer,
					   const struct ferry_addr *local,
					   uint64_t now, uint8_t *out,
					   size_t cap,
					   struct ferry_hs_server_result *res)
{
	uint64_t now_s = now / NS_PER_S;
	struct ferry_w2_hs hs;
	enum ferry_w2_err e;
	int n;

	if (!ferry__w2_crc_ok(d))
		return drop(res, "drop_bad_crc");
	e = ferry__w2_hs_parse(d, &hs);
	if (e != FERRY_W2_OK)
		return drop(res, ferry__hs_codec_drop(e));
	if (!(hs.hello.versions & FERRY_W2_VERSIONS_BIT))
		return drop(res, "drop_bad_version");
	if (ferry__w2_hs_has(&hs, FERRY_W2_COOKIE)) {
		res->cookie = cookie_check(srv, &hs.cookie, peer, local,
					   d->scid, now_s);
		if (res->cookie != FERRY_HS_COOKIE_OK)
			res->drop = "drop_bad_cookie";
	}
	if (res->cookie == FERRY_HS_COOKIE_OK) {
		conn_fill(&res->conn, d, &hs, len);
		res->conn.validated = true;
		return FERRY_HS_ADMIT;
	}
	if (srv->retry == FERRY_HS_RETRY_NEVER && !res->drop) {
		/* No round trip to prove the address: the buckets bound what
		 * the ACCEPT or REFUSE to come may reflect. */
		if (!reply_allowed(srv, peer, now))
			return drop(res, "retry_ratelimited");
		conn_fill(&res->conn, d, &hs, len);
		return FERRY_HS_ADMIT;
	}
	/* Nothing allocated, no token opened, no X25519: a RETRY costs one
	 * BLAKE2b (section 4.3), and only once the 3x bound and the buckets
	 * allow it to go. */
	if (cap < FERRY_HS_RETRY_LEN ||
	    FERRY_HS_RETRY_LEN > FERRY_HS_AMPLIFICATION * len)
		return drop(res, "unvalidated_suppressed");
	if (!reply_allowed(srv, peer, now))
		return drop(res, "retry_ratelimited");
	n = retry_build(srv, peer, local, d->scid, now_s, out, cap);
	if (n < 0 || (size_t)n > FERRY_HS_AMPLIFICATION * len)
		return drop(res, "unvalidated_suppressed");
	res->sent = "retry_sent";
	res->reply_len = (size_t)n;
	return FERRY_HS_REPLY;
}

enum ferry_hs_verdict ferry__hs_server_input(struct ferry_hs_server *srv,
					     const uint8_t *dg, size_t len,
					     const struct ferry_addr *peer,
					     const struct ferry_addr *local,
					     uint64_t now_ns, uint8_t *reply_buf,
					     size_t cap,
					     struct ferry_hs_server_result *res)
{
	struct ferry_w2_dgram d;
	enum ferry_w2_err e;
	uint32_t env_id;

	memset(res, 0, sizeof(*res));
	rotate(srv, now_ns / NS_PER_S);
	if (len == 0)
		return drop(res, "drop_truncated");
	if (dg[0] == FERRY_W2_V1_FIRST) {
		e = ferry__w2_envelope_open(dg, len, &d, &env_id);
		if (e == FERRY_W2_E_ENV_NOT_V2) {
			struct ferry_frame fr;

			/* A v1 client: tell it why, once, within limits. */
			(void)ferry__wire_parse(dg, len, FERRY_WIRE_MAX_MSG,
						&fr);
			return reply(srv, peer, now_ns, len,
				     v1_refusal(fr.h.src_sess, reply_buf, cap),
				     "v1_refused", res);
		}
	} else if (ferry__w2_is_long(dg[0])) {
		e = ferry__w2_parse_hdr(dg, len, &d);
		if (e == FERRY_W2_OK && d.type != FERRY_W2_CONNECT)
			e = FERRY_W2_E_BAD_LTYPE;
	} else {
		return drop(res, ferry__w2_is_short(dg[0])
					 ? "drop_unknown_session"
					 : "drop_bad_magic");
	}
	if (e != FERRY_W2_OK)
		return drop(res, ferry__hs_codec_drop(e));
	return input_connect(srv, &d, len, peer, local, now_ns, reply_buf, cap,
			     res);
}

int ferry__hs_server_check_pop(struct ferry_hs_conn *conn,
			       const uint8_t hk[FERRY_HS_HK_LEN])
{
	uint8_t pop[FERRY_W2_POP_LEN];
	int rc;

	conn->pop_ok = false;
	if (!conn->token || !conn->pop)
		return -EINVAL;
	rc = ferry__hs_pop(hk, conn->inner, conn->pop_covered, pop);
	if (rc == 0 && crypto_verify_16(pop, conn->pop) != 0)
		rc = -EBADMSG;
	conn->pop_ok = rc == 0;
	return rc;
}

/* What an answer to @conn may weigh: 3x its CONNECT while the address is
 * unproven (retry never), else @cap. */
static size_t answer_cap(const struct ferry_hs_conn *conn, size_t cap)
{
	size_t lim = FERRY_HS_AMPLIFICATION * conn->rx_len;

	return !conn->validated && lim < cap ? lim : cap;
}

int ferry__hs_server_accept(const struct ferry_hs_conn *conn,
			    const struct ferry_hs_server_cfg *cfg,
			    const uint8_t *hk, struct ferry__seal_keys *keys,
			    uint8_t *mode, uint8_t *out, size_t cap)
{
	struct ferry_w2_dgram d = {
		.is_long = true,
		.type = FERRY_W2_ACCEPT,
		.version = FERRY_W2_VERSION,
		.dcid = conn->client_cid,
		.scid = cfg->cid,
	};
	uint8_t spk[FERRY_W2_KEY_LEN], ssk[FERRY_W2_KEY_LEN];
	struct ferry_w2_frame f = {.type = FERRY_W2_HELLO};
	struct ferry_w2_builder b;
	int rc, n;

	if (cfg->cid == 0 || cfg->mode > FERRY_W2_MODE_AEAD)
		return -EINVAL;
	if (answer_cap(conn, cap) < FERRY_HS_ACCEPT_LEN)
		return -EMSGSIZE;
	*mode = cfg->mode > conn->client_mode ? cfg->mode : conn->client_mode;
	crypto_kx_keypair(spk, ssk);
	rc = ferry__seal_keys_server(spk, ssk, conn->client_pk, conn->th, hk,
				     keys);
	sodium_memzero(ssk, sizeof(ssk));
	if (rc != 0)
		return rc;
	f.u.hello = (struct ferry_w2_hello){FERRY_W2_VERSIONS_BIT, *mode, spk};
	rc = ferry__w2_build_begin(&b, out, cap, &d);
	if (rc == 0)
		rc = ferry__w2_build_frame(&b, &f);
	if (rc == 0) {
		f.type = FERRY_W2_PARAMS;
		f.u.params = cfg->params;
		rc = ferry__w2_build_frame(&b, &f);
	}
	if (rc == 0) {
		f.type = FERRY_W2_FEATURES;
		f.u.features = cfg->features;
		rc = ferry__w2_build_frame(&b, &f);
	}
	n = rc < 0 ? rc : ferry__w2_build_end(&b);
	/* The one datagram ever sealed under (k_s2c, pn 0) (4.4 step 6). */
	if (n > 0)
		n = ferry__seal(FERRY_SEAL_MAC, keys->s2c, 0, out,
				FERRY_W2_LONG_HDR_LEN,
				(size_t)n - FERRY_W2_TAG_LEN);
	if (n < 0)
		sodium_memzero(keys, sizeof(*keys));
	return n;
}

int ferry__hs_server_refuse(const struct ferry_hs_conn *conn, uint32_t code,
			    const char *text, uint8_t *out, size_t cap)
{
	struct ferry_w2_dgram d = {
		.is_long = true,
		.type = FERRY_W2_REFUSE,
		.version = FERRY_W2_VERSION,
		.dcid = conn->client_cid,
	};
	struct ferry_w2_frame f = {.type = FERRY_W2_ERROR};
	struct ferry_w2_builder b;
	int rc;

	if (code == 0 || code > INT32_MAX)
		return -EINVAL;
	/* Reasons are for peers that proved a holder key; strangers learn
	 * only that they were refused (section 4.5). */
	if (!conn->pop_ok) {
		code = FERRY_EREJECTED;
		text = NULL;
	}
	f.u.err.code = code;
	f.u.err.msg = text;
	f.u.err.msg_len = text ? (uint16_t)strnlen(text, FERRY_ERROR_MSG_MAX)
			       : 0;
	rc = ferry__w2_build_begin(&b, out, answer_cap(conn, cap), &d);
	if (rc == 0)
		rc = ferry__w2_build_frame(&b, &f);
	return rc < 0 ? rc : ferry__w2_build_end(&b);
}
