/* SPDX-License-Identifier: MIT */
/*
 * Two things a listening endpoint keeps for CONNECTs (docs/wire.md,
 * section 4.8), used by connect.c:
 *
 * - The CONNECT rate limits (connect_rate, connect_rate_per_source): every
 *   CONNECT datagram is looked at only within them, before anything else
 *   is done with it: before its CRC, its frames, its cookie's MAC or a
 *   RETRY, so that a flood beyond them costs the endpoint's thread its
 *   receive and a compare (and, within the global limit, a hash), and
 *   nothing is sent.  CONNECTs come in two classes, by whether a COOKIE
 *   frame follows HELLO (ferry__hs_server_has_cookie, a peek): without
 *   one, a RETRY's work; with one, an admission's.  Each class has its
 *   own pair of buckets at the same rates, so that a flood of spoofed
 *   CONNECTs, which cannot carry a valid cookie, does not hold back the
 *   clients that came back with theirs.  A CONNECT over its class's
 *   limits is dropped silently: retry_ratelimited without a cookie,
 *   connects_rate_limited with one.
 * - The half-open server sessions by (client CID, address, port), so that
 *   a retransmitted CONNECT finds its session, and gets the same ACCEPT
 *   again, without a scan of the session table.  A session leaves it when
 *   the client's first authenticated datagram confirms it.
 *
 * Both tables index by SipHash (libsodium's crypto_shorthash) under a key
 * drawn at the endpoint's creation: a peer cannot aim its addresses or
 * ids at one bucket or chain.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "rd.h"
#include "seal.h"

#define NS_PER_SEC 1000000000ull

static uint64_t hash_bytes(const struct ferry_endpoint *ep, const uint8_t *p,
			   size_t n)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(out, p, n, ep->hash_key);
	memcpy(&v, out, sizeof(v));
	return v;
}

/* --- rate limits --------------------------------------------------------- */

/*
 * One token bucket, as a generic cell rate algorithm: *@tat is the time at
 * which the bucket would be full again, one token is @gap ns of it, and
 * the bucket holds @tol / @gap + 1 tokens.  Whether a token is there now;
 * taken only if @take.
 */
static bool bucket_ok(uint64_t *tat, uint64_t now, uint64_t gap,
		      uint64_t tol, bool take)
{
	uint64_t t = *tat > now ? *tat : now;

	if (t - now > tol)
		return false;
	if (take)
		*tat = t + gap;
	return true;
}

static uint64_t rate_gap(uint32_t per_sec)
{
	uint64_t gap;

	if (!per_sec)
		return 0;
	gap = NS_PER_SEC / per_sec;
	return gap ? gap : 1;
}

/* Class @cls's per-source bucket of IPv4 address @ip. */
static uint64_t *src_bucket(struct ferry_endpoint *ep, unsigned cls,
			    uint32_t ip)
{
	uint8_t b[4];

	ferry_wr_u32(b, ip);
	return &ep->rate_src[cls * FERRY__RATE_SRC_BUCKETS +
			     (hash_bytes(ep, b, sizeof(b)) &
			      (FERRY__RATE_SRC_BUCKETS - 1))];
}

bool ferry__listen_admit(struct ferry_endpoint *ep,
			 const struct ferry_dp_pkt *pkt)
{
	unsigned cls = ferry__hs_server_has_cookie(pkt->data, pkt->len)
			       ? FERRY__CLASS_COOKIE
			       : FERRY__CLASS_RETRY;
	uint64_t *gb = &ep->rate_tat[cls], *sb = NULL;
	uint64_t now = ep->now;

	/* The global bucket first, which needs no hash: in a flood of
	 * spoofed sources it is the one that is empty.  A token is taken
	 * from each bucket only if both have one: a CONNECT the global
	 * limit drops does not use up its source's. */
	if (ep->rate_gap &&
	    !bucket_ok(gb, now, ep->rate_gap, ep->rate_tol[cls], false))
		goto over;
	if (ep->rate_src) {
		sb = src_bucket(ep, cls, pkt->src.ip);
		if (!bucket_ok(sb, now, ep->rate_src_gap,
			       ep->rate_src_tol[cls], true))
			goto over;
	}
	if (ep->rate_gap)
		bucket_ok(gb, now, ep->rate_gap, ep->rate_tol[cls], true);
	return true;
over:
	if (cls == FERRY__CLASS_COOKIE)
		ep->st.connects_rate_limited++;
	else
		ep->st.retry_ratelimited++;
	return false;
}

/* --- half-open server sessions by (client CID, peer) ---------------------- */

static uint32_t *peer_bucket(struct ferry_endpoint *ep,
			     const struct ferry_addr *a, uint64_t cid)
{
	uint8_t b[14];

	ferry_wr_u64(ferry_wr_u16(ferry_wr_u32(b, a->ip), a->port), cid);
	return &ep->peer_hash[hash_bytes(ep, b, sizeof(b)) & ep->peer_mask];
}

struct ferry_session *ferry__peer_find(struct ferry_endpoint *ep,
				       const struct ferry_addr *a,
				       uint64_t cid)
{
	/* Chains link sessions by index + 1 (0 ends a chain); a chain is
	 * about one session long, the table having a bucket per session. */
	for (uint32_t i = *peer_bucket(ep, a, cid); i;) {
		struct ferry_session *s = &ep->sessions[i - 1];

		if (s->srv.client_cid == cid && ferry_addr_eq(&s->peer, a))
			return s;
		i = s->srv.hnext;
	}
	return NULL;
}

void ferry__peer_add(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	uint32_t *b = peer_bucket(ep, &s->peer, s->srv.client_cid);

	s->srv.hnext = *b;
	*b = (uint32_t)(s - ep->sessions) + 1;
	s->srv.hashed = true;
}

void ferry__peer_del(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;
	uint32_t me = (uint32_t)(s - ep->sessions) + 1;
	uint32_t *link;

	if (!s->srv.hashed)
		return;
	s->srv.hashed = false;
	for (link = peer_bucket(ep, &s->peer, s->srv.client_cid); *link;
	     link = &ep->sessions[*link - 1].srv.hnext) {
		if (*link == me) {
			*link = s->srv.hnext;
			break;
		}
	}
	s->srv.hnext = 0;
}

/* --- life ---------------------------------------------------------------- */

int ferry__listen_init(struct ferry_endpoint *ep)
{
	uint32_t n = 1;

	if (ferry__seal_init() < 0)
		return -EIO;
	randombytes_buf(ep->hash_key, sizeof(ep->hash_key));
	ep->listening = ep->cfg.listen;
	ep->rate_gap = rate_gap(ep->cfg.connect_rate);
	ep->rate_src_gap = rate_gap(ep->cfg.connect_rate_per_source);
	/* CONNECTs with a cookie: buckets of one second's worth (the
	 * documented terms of connect_rate).  Without: the bursts of the
	 * handshake unit's reply buckets, which these rates set too
	 * (0.01 s of the global rate, 0.1 s of the per-source one, at
	 * least FERRY_HS_SRC_BURST), so that a burst of spoofed CONNECTs
	 * is cut here, unparsed, not after its CRC and frames. */
	ferry__hs_server_set_rates(&ep->hs, ep->cfg.connect_rate_per_source,
				   ep->cfg.connect_rate);
	ep->rate_tol[FERRY__CLASS_COOKIE] = NS_PER_SEC - ep->rate_gap;
	ep->rate_src_tol[FERRY__CLASS_COOKIE] = NS_PER_SEC - ep->rate_src_gap;
	ep->rate_tol[FERRY__CLASS_RETRY] =
		(uint64_t)(ep->hs.global_burst - 1) * ep->rate_gap;
	ep->rate_src_tol[FERRY__CLASS_RETRY] =
		(uint64_t)(ep->hs.src_burst - 1) * ep->rate_src_gap;
	if (ep->rate_src_gap) {
		ep->rate_src = calloc(FERRY__CLASSES * FERRY__RATE_SRC_BUCKETS,
				      sizeof(*ep->rate_src));
		if (!ep->rate_src)
			return -ENOMEM;
	}
	while (n < ep->nsessions)
		n <<= 1;
	ep->peer_mask = n - 1;
	ep->peer_hash = calloc(n, sizeof(*ep->peer_hash));
	return ep->peer_hash ? 0 : -ENOMEM;
}

void ferry__listen_fini(struct ferry_endpoint *ep)
{
	free(ep->rate_src);
	free(ep->peer_hash);
	sodium_memzero(ep->hash_key, sizeof(ep->hash_key));
}

void ferry__endpoint_offer_aes(struct ferry_endpoint *ep, bool on)
{
	ep->offer_aes = on && ferry__seal_aes_available();
}

void ferry__endpoint_hs_src_rate(struct ferry_endpoint *ep, bool on)
{
	if (on)
		ferry__hs_server_set_rates(&ep->hs,
					   ep->cfg.connect_rate_per_source,
					   ep->cfg.connect_rate);
	else
		ep->hs.src_interval = 0; /* no per-source bucket */
}
