/* SPDX-License-Identifier: MIT */
/*
 * The wire v2 handshake, what client and server share (see handshake.h):
 * the cookie MAC (docs/wire.md, section 4.3), the holder-key proof POP
 * (section 4.5) and the mapping of codec verdicts to counters.
 */
#include "handshake.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "rd.h"

/* crypto_kdf context and subkey id of k_pop (section 4.5). */
#define POP_KDF_CTX "ferrypop"
#define POP_KDF_ID 1

void ferry__hs_cookie_mac(const uint8_t key[32], const struct ferry_addr *peer,
			  const struct ferry_addr *local, uint64_t cid,
			  uint32_t ts, uint8_t mac[FERRY_W2_COOKIE_MAC_LEN])
{
	uint8_t in[24], *p = in;

	/* ip is in network order already: its bytes go as they are. */
	memcpy(p, &peer->ip, 4);
	p = ferry_wr_u16(p + 4, peer->port);
	memcpy(p, &local->ip, 4);
	p = ferry_wr_u16(p + 4, local->port);
	p = ferry_wr_u64(p, cid);
	ferry_wr_u32(p, ts);
	crypto_generichash(mac, FERRY_W2_COOKIE_MAC_LEN, in, sizeof(in), key,
			   32);
}

int ferry__hs_pop(const uint8_t hk[FERRY_HS_HK_LEN], const uint8_t *covered,
		  size_t len, uint8_t pop[FERRY_W2_POP_LEN])
{
	uint8_t k_pop[32];
	int rc = 0;

	/* A subkey, not hk itself: hk also enters the packet keys (4.4 step
	 * 4), and one key should serve one purpose. */
	if (crypto_kdf_derive_from_key(k_pop, sizeof(k_pop), POP_KDF_ID,
				       POP_KDF_CTX, hk) != 0 ||
	    crypto_generichash(pop, FERRY_W2_POP_LEN, covered, len, k_pop,
			       sizeof(k_pop)) != 0)
		rc = -EIO;
	sodium_memzero(k_pop, sizeof(k_pop));
	return rc;
}

const char *ferry__hs_codec_drop(enum ferry_w2_err e)
{
	const char *c = ferry__w2_err_counter(e);

	return c && *c ? c : "drop_malformed";
}
