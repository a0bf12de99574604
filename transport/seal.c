/* SPDX-License-Identifier: MIT */
/*
 * Sealing of wire v2 datagrams (docs/wire.md, sections 2.3, 4.4, 5.2):
 * the `none`, `mac` and `aead` trailers, one-shot and scattered; the replay
 * window; the key schedule.  See seal.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "transport/rd.h"
#include "transport/seal.h"
#include "transport/wire.h"

int ferry__seal_init(void)
{
	/* 0 on the first call, 1 on later ones, -1 on failure. */
	return sodium_init() < 0 ? -EIO : 0;
}

size_t ferry__seal_trailer_len(enum ferry_seal_mode mode)
{
	switch (mode) {
	case FERRY_SEAL_NONE:
		return FERRY_SEAL_CRC_LEN;
	case FERRY_SEAL_MAC:
	case FERRY_SEAL_AEAD:
	case FERRY_SEAL_MAC_AES:
	case FERRY_SEAL_AEAD_AES:
		return FERRY_SEAL_TAG_LEN;
	}
	return 0;
}

bool ferry__seal_aes_available(void)
{
	/* libsodium learns the CPU's features in sodium_init(). */
	return ferry__seal_init() == 0 &&
	       crypto_aead_aes256gcm_is_available() == 1;
}

void ferry__seal_aes_key(uint8_t key[FERRY_SEAL_KEY_LEN])
{
	uint8_t k[FERRY_SEAL_KEY_LEN];

	crypto_kdf_derive_from_key(k, sizeof(k), 1, "ferry2ag", key);
	memcpy(key, k, sizeof(k));
	sodium_memzero(k, sizeof(k));
}

void ferry__seal_nonce(uint64_t pn, uint8_t nonce[FERRY_SEAL_NONCE_LEN])
{
	/* The two directions have their own keys (4.4), so a pn that both
	 * directions use never meets the same key twice. */
	memset(nonce, 0, 4);
	ferry_wr_u64(nonce + 4, pn);
}

/* The arguments every sealing call shares; 0 or -EINVAL / -EMSGSIZE. */
static int seal_args_ok(enum ferry_seal_mode mode, const uint8_t *key,
			uint64_t pn, size_t len)
{
	size_t tl = ferry__seal_trailer_len(mode);

	if (tl == 0 || pn > FERRY_SEAL_PN_MAX)
		return -EINVAL;
	if (mode != FERRY_SEAL_NONE && key == NULL)
		return -EINVAL;
	/* Not ferry__seal_aes_available(), whose sodium_init() takes a lock:
	 * whoever chose the suite asked it before. */
	if ((mode & FERRY_SEAL_AES) && !crypto_aead_aes256gcm_is_available())
		return -EINVAL;
	if (len > FERRY_SEAL_DGRAM_MAX - tl)
		return -EMSGSIZE;
	return 0;
}

/* The AES suite has no incremental form in libsodium: a scattered
 * datagram is joined here first, and an `aead` one is decrypted here and
 * copied back only once its tag verified.  One per thread, never on the
 * stack (64 KiB). */
static _Thread_local uint8_t aes_scratch[FERRY_SEAL_DGRAM_MAX];

/* --- AES key schedules, kept ---------------------------------------------- */

/*
 * libsodium expands an AES-256 key on every call that takes the key
 * itself: about 35 ns, half of a small datagram's tag.  Each thread keeps
 * the schedules of the keys it used last, one per slot by a hash of the
 * key's address (a session's two keys sit side by side, so 2^AES_KEPT_LOG2
 * / 2 sessions fit without a clash), each with a copy of its key: a slot
 * serves only while the key at that address is still that key (a session
 * slot reused gets new keys at the old address).  The slots are in locked
 * memory (sodium_malloc), wiped and freed when the thread exits, and a
 * session's are wiped with its keys (ferry__seal_forget) on the thread
 * that ends it.  Without that memory, every call expands its key again.
 */
#define AES_KEPT_LOG2 6

struct aes_kept {
	crypto_aead_aes256gcm_state st; /* libsodium's alignment, first */
	const uint8_t *at;
	uint8_t key[FERRY_SEAL_KEY_LEN];
};

static pthread_key_t aes_kept_key;
static pthread_once_t aes_kept_once = PTHREAD_ONCE_INIT;
static bool aes_kept_nokey; /* written once, under aes_kept_once */
static _Thread_local struct aes_kept *aes_kept;
static _Thread_local bool aes_kept_failed;

static void aes_kept_free(void *base)
{
	sodium_free(base); /* wipes it first */
}

static void aes_kept_init(void)
{
	aes_kept_nokey = pthread_key_create(&aes_kept_key, aes_kept_free) != 0;
}

/* This thread's slots, allocated on first use; NULL without memory. */
static struct aes_kept *aes_kept_slots(void)
{
	size_t align = _Alignof(struct aes_kept);
	size_t size = sizeof(struct aes_kept) << AES_KEPT_LOG2;
	uint8_t *base;

	if (aes_kept || aes_kept_failed)
		return aes_kept;
	pthread_once(&aes_kept_once, aes_kept_init);
	base = aes_kept_nokey ? NULL : sodium_malloc(size + align);
	if (!base || pthread_setspecific(aes_kept_key, base) != 0) {
		if (base)
			sodium_free(base);
		aes_kept_failed = true;
		return NULL;
	}
	memset(base, 0, size + align);
	aes_kept = (struct aes_kept *)(void *)(base + align -
					       (uintptr_t)base % align);
	return aes_kept;
}

static struct aes_kept *aes_slot(const uint8_t *key)
{
	return &aes_kept[((uintptr_t)key / FERRY_SEAL_KEY_LEN) &
			 ((1u << AES_KEPT_LOG2) - 1)];
}

/* @key's schedule: kept, or expanded into *@tmp (the caller wipes *@tmp
 * when that is what it got). */
static const crypto_aead_aes256gcm_state *
aes_schedule(const uint8_t *key, crypto_aead_aes256gcm_state *tmp)
{
	struct aes_kept *k;

	if (!aes_kept_slots()) {
		crypto_aead_aes256gcm_beforenm(tmp, key);
		return tmp;
	}
	k = aes_slot(key);
	if (k->at != key || memcmp(k->key, key, FERRY_SEAL_KEY_LEN) != 0) {
		crypto_aead_aes256gcm_beforenm(&k->st, key);
		memcpy(k->key, key, FERRY_SEAL_KEY_LEN);
		k->at = key;
	}
	return &k->st;
}

static void aes_done(const crypto_aead_aes256gcm_state *st,
		     crypto_aead_aes256gcm_state *tmp)
{
	if (st == tmp)
		sodium_memzero(tmp, sizeof(*tmp));
}

void ferry__seal_forget(const uint8_t *key)
{
	struct aes_kept *k;

	if (!aes_kept)
		return;
	k = aes_slot(key);
	if (k->at == key)
		sodium_memzero(k, sizeof(*k));
}

static size_t iov_join(const struct iovec *iov, size_t iovcnt, uint8_t *out)
{
	size_t n = 0;

	/* The caller checked the total (iov_total) against the limit. */
	for (size_t i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	return n;
}

static size_t iov_total(const struct iovec *iov, size_t iovcnt)
{
	size_t n = 0;

	for (size_t i = 0; i < iovcnt; i++) {
		/* Saturate: a sum past the limit is refused, never wrapped. */
		if (iov[i].iov_len > FERRY_SEAL_DGRAM_MAX - n)
			return (size_t)FERRY_SEAL_DGRAM_MAX + 1;
		n += iov[i].iov_len;
	}
	return n;
}

/* --- none: CRC32C ------------------------------------------------------- */

static uint32_t crc_iov(const struct iovec *iov, size_t iovcnt)
{
	uint32_t c = 0;

	for (size_t i = 0; i < iovcnt; i++)
		c = ferry__crc32c(c, iov[i].iov_base, iov[i].iov_len);
	return c;
}

/* --- mac: the AEAD of an empty plaintext ---------------------------------- */

/* libsodium's AEAD reads its message and writes its ciphertext through
 * these even when their length is 0; a real address keeps UBSan quiet. */
static uint8_t empty_msg[1];

/* The tag of an empty plaintext with @dg as associated data (under AES:
 * GMAC). */
static void mac_oneshot(enum ferry_seal_mode mode, const uint8_t *key,
			uint64_t pn, const uint8_t *dg, size_t len,
			uint8_t tag[FERRY_SEAL_TAG_LEN])
{
	uint8_t nonce[FERRY_SEAL_NONCE_LEN];
	uint8_t scratch[1];

	ferry__seal_nonce(pn, nonce);
	if (mode & FERRY_SEAL_AES) {
		crypto_aead_aes256gcm_state tmp;
		const crypto_aead_aes256gcm_state *st = aes_schedule(key, &tmp);

		crypto_aead_aes256gcm_encrypt_detached_afternm(
			scratch, tag, NULL, empty_msg, 0, dg, len, NULL, nonce,
			st);
		aes_done(st, &tmp);
		return;
	}
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(
		scratch, tag, NULL, empty_msg, 0, dg, len, NULL, nonce, key);
}

/*
 * The same tag over pieces, as RFC 8439 section 2.8 builds it: the Poly1305
 * one-time key is the first 32 bytes of the ChaCha20 block with counter 0;
 * Poly1305 then runs over the associated data, zeros to a multiple of 16,
 * the (empty) ciphertext, and the two lengths as little-endian 64-bit
 * words.  crypto_onetimeauth_update() buffers partial blocks itself, so the
 * pieces may have any length.
 */
static void mac_iov(const uint8_t *key, uint64_t pn, const struct iovec *iov,
		    size_t iovcnt, uint8_t tag[FERRY_SEAL_TAG_LEN])
{
	static const uint8_t zeros[16];
	uint8_t nonce[FERRY_SEAL_NONCE_LEN];
	uint8_t otk[crypto_onetimeauth_KEYBYTES];
	uint8_t lens[16] = { 0 };
	crypto_onetimeauth_state st;
	uint64_t adlen = 0;

	ferry__seal_nonce(pn, nonce);
	crypto_stream_chacha20_ietf(otk, sizeof(otk), nonce, key);
	crypto_onetimeauth_init(&st, otk);
	for (size_t i = 0; i < iovcnt; i++) {
		crypto_onetimeauth_update(&st, iov[i].iov_base, iov[i].iov_len);
		adlen += iov[i].iov_len;
	}
	crypto_onetimeauth_update(&st, zeros, (16 - (adlen & 15)) & 15);
	/* No ciphertext, so no ciphertext padding; lens[8..15] stay 0. */
	for (int b = 0; b < 8; b++)
		lens[b] = (uint8_t)(adlen >> (8 * b));
	crypto_onetimeauth_update(&st, lens, sizeof(lens));
	crypto_onetimeauth_final(&st, tag);
	/* The one-time key forges any tag under this nonce: wipe it. */
	sodium_memzero(otk, sizeof(otk));
	sodium_memzero(&st, sizeof(st));
}

/* --- seal ---------------------------------------------------------------- */

int ferry__seal(enum ferry_seal_mode mode, const uint8_t *key, uint64_t pn,
		uint8_t *dg, size_t hdr_len, size_t len)
{
	uint8_t nonce[FERRY_SEAL_NONCE_LEN];
	int rc = seal_args_ok(mode, key, pn, len);

	if (rc < 0)
		return rc;
	if (hdr_len > len)
		return -EINVAL;
	switch (mode) {
	case FERRY_SEAL_NONE:
		ferry_wr_u32(dg + len, ferry__crc32c(0, dg, len));
		break;
	case FERRY_SEAL_MAC:
	case FERRY_SEAL_MAC_AES:
		mac_oneshot(mode, key, pn, dg, len, dg + len);
		break;
	case FERRY_SEAL_AEAD:
		/* In place: libsodium XORs the key stream (ChaCha20, or
		 * AES-CTR below) into the frames, then authenticates the
		 * ciphertext it wrote. */
		ferry__seal_nonce(pn, nonce);
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(
			dg + hdr_len, dg + len, NULL, dg + hdr_len,
			len - hdr_len, dg, hdr_len, NULL, nonce, key);
		break;
	case FERRY_SEAL_AEAD_AES: {
		crypto_aead_aes256gcm_state tmp;
		const crypto_aead_aes256gcm_state *st = aes_schedule(key, &tmp);

		ferry__seal_nonce(pn, nonce);
		crypto_aead_aes256gcm_encrypt_detached_afternm(
			dg + hdr_len, dg + len, NULL, dg + hdr_len,
			len - hdr_len, dg, hdr_len, NULL, nonce, st);
		aes_done(st, &tmp);
		break;
	}
	}
	return (int)(len + ferry__seal_trailer_len(mode));
}

int ferry__seal_iov(enum ferry_seal_mode mode, const uint8_t *key,
		    uint64_t pn, const struct iovec *iov, size_t iovcnt,
		    uint8_t *trailer)
{
	int rc = seal_args_ok(mode, key, pn, iov_total(iov, iovcnt));

	if (rc < 0)
		return rc;
	if (mode == FERRY_SEAL_NONE)
		ferry_wr_u32(trailer, crc_iov(iov, iovcnt));
	else if (mode == FERRY_SEAL_MAC)
		mac_iov(key, pn, iov, iovcnt, trailer);
	else if (mode == FERRY_SEAL_MAC_AES)
		mac_oneshot(mode, key, pn, aes_scratch,
			    iov_join(iov, iovcnt, aes_scratch), trailer);
	else
		return -EINVAL;
	return 0;
}

/* --- open ---------------------------------------------------------------- */

/* The AES suite's open of @dg (@body bytes, then the tag): 0 or -1. */
static int open_aes(enum ferry_seal_mode mode, const uint8_t *key,
		    const uint8_t *nonce, uint8_t *dg, size_t hdr_len,
		    size_t body)
{
	crypto_aead_aes256gcm_state tmp;
	const crypto_aead_aes256gcm_state *st = aes_schedule(key, &tmp);
	int rc;

	if (mode == FERRY_SEAL_MAC_AES) {
		/* Nothing to decrypt: the tag alone, compared in constant
		 * time by libsodium. */
		rc = crypto_aead_aes256gcm_decrypt_detached_afternm(
			aes_scratch, NULL, empty_msg, 0, dg + body, dg, body,
			nonce, st);
	} else {
		/* libsodium decrypts as it authenticates and wipes its
		 * output on a bad tag: into the scratch, copied back only
		 * once the tag verified, so that a forgery is left as it
		 * came. */
		rc = crypto_aead_aes256gcm_decrypt_detached_afternm(
			aes_scratch, NULL, dg + hdr_len, body - hdr_len,
			dg + body, dg, hdr_len, nonce, st);
		if (rc == 0 && body > hdr_len)
			memcpy(dg + hdr_len, aes_scratch, body - hdr_len);
	}
	aes_done(st, &tmp);
	return rc;
}

int ferry__seal_open(enum ferry_seal_mode mode, const uint8_t *key,
		     uint64_t pn, uint8_t *dg, size_t hdr_len, size_t len)
{
	uint8_t nonce[FERRY_SEAL_NONCE_LEN];
	size_t tl = ferry__seal_trailer_len(mode), body;
	struct ferry_rd r;
	int rc;

	if (tl == 0 || pn > FERRY_SEAL_PN_MAX ||
	    (mode != FERRY_SEAL_NONE && key == NULL) ||
	    ((mode & FERRY_SEAL_AES) && !crypto_aead_aes256gcm_is_available()))
		return -EINVAL;
	/* Written so that no sum can wrap, whatever @hdr_len is. */
	if (len > FERRY_SEAL_DGRAM_MAX || hdr_len > len || len - hdr_len < tl)
		return -EMSGSIZE;
	body = len - tl;
	ferry__seal_nonce(pn, nonce);
	switch (mode) {
	case FERRY_SEAL_NONE:
		/* A CRC guards against accidents, not attackers, so an
		 * ordinary compare is enough. */
		ferry_rd_init(&r, dg + body, tl);
		rc = ferry_rd_u32(&r) == ferry__crc32c(0, dg, body) ? 0 : -1;
		break;
	case FERRY_SEAL_MAC:
		/* With m == NULL libsodium only verifies the tag, with
		 * crypto_verify_16 (constant time). */
		rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
			NULL, NULL, empty_msg, 0, dg + body, dg, body, nonce,
			key);
		break;
	case FERRY_SEAL_MAC_AES:
	case FERRY_SEAL_AEAD_AES:
		rc = open_aes(mode, key, nonce, dg, hdr_len, body);
		break;
	default:
		/* Verify (m == NULL: tag only), then decrypt with the key
		 * stream from block 1 on, as the AEAD does.  Not one call:
		 * on a bad tag libsodium's decrypt zeroes its output, which
		 * in place would wipe the datagram; this way a forgery is
		 * left as it came, at the same cost. */
		rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
			NULL, NULL, dg + hdr_len, body - hdr_len, dg + body,
			dg, hdr_len, nonce, key);
		if (rc == 0)
			crypto_stream_chacha20_ietf_xor_ic(
				dg + hdr_len, dg + hdr_len, body - hdr_len,
				nonce, 1, key);
		break;
	}
	return rc == 0 ? (int)body : -EBADMSG;
}

int ferry__seal_verify_iov(enum ferry_seal_mode mode, const uint8_t *key,
			   uint64_t pn, const struct iovec *iov, size_t iovcnt,
			   const uint8_t *trailer)
{
	uint8_t tag[FERRY_SEAL_TAG_LEN];
	struct ferry_rd r;
	int rc = seal_args_ok(mode, key, pn, iov_total(iov, iovcnt));

	if (rc < 0)
		return rc;
	if (mode == FERRY_SEAL_NONE) {
		ferry_rd_init(&r, trailer, FERRY_SEAL_CRC_LEN);
		return ferry_rd_u32(&r) == crc_iov(iov, iovcnt) ? 0 : -EBADMSG;
	}
	if (mode == FERRY_SEAL_MAC_AES) {
		/* Open a copy with its trailer: the tag check alone.
		 * seal_args_ok() held the pieces to the limit less the
		 * trailer, so both fit the scratch buffer. */
		size_t n = iov_join(iov, iovcnt, aes_scratch);

		memcpy(aes_scratch + n, trailer, FERRY_SEAL_TAG_LEN);
		rc = ferry__seal_open(mode, key, pn, aes_scratch, n,
				      n + FERRY_SEAL_TAG_LEN);
		return rc < 0 ? rc : 0;
	}
	if (mode != FERRY_SEAL_MAC)
		return -EINVAL;
	mac_iov(key, pn, iov, iovcnt, tag);
	rc = crypto_verify_16(tag, trailer) == 0 ? 0 : -EBADMSG;
	sodium_memzero(tag, sizeof(tag));
	return rc;
}

/* --- replay window ------------------------------------------------------- */

int ferry__replay_init(struct ferry__replay *w, unsigned log2, uint64_t *bits)
{
	if (log2 < FERRY_REPLAY_LOG2_MIN || log2 > FERRY_REPLAY_LOG2_MAX)
		return -EINVAL;
	w->next = 0;
	w->bits = bits;
	w->size = (uint64_t)1 << log2;
	memset(bits, 0, FERRY_REPLAY_WORDS(log2) * sizeof(*bits));
	return 0;
}

static int replay_seen(const struct ferry__replay *w, uint64_t pn)
{
	uint64_t i = pn & (w->size - 1);

	return (int)((w->bits[i >> 6] >> (i & 63)) & 1);
}

int ferry__replay_check(const struct ferry__replay *w, uint64_t pn)
{
	if (pn > FERRY_SEAL_PN_MAX)
		return -ERANGE;
	if (pn >= w->next)
		return 0;
	/* The window is [next - size, next): the largest and size - 1
	 * below it. */
	if (w->next - pn > w->size)
		return -ESTALE;
	return replay_seen(w, pn) ? -EALREADY : 0;
}

/* Forget @count pns from @from on, whose slots are about to stand for new
 * pns.  Word by word: a jump of 2^16 costs 1024 stores, not 65536. */
static void replay_clear(struct ferry__replay *w, uint64_t from,
			 uint64_t count)
{
	if (count >= w->size) {
		memset(w->bits, 0, (size_t)(w->size / 64) * sizeof(*w->bits));
		return;
	}
	while (count) {
		uint64_t i = from & (w->size - 1);
		unsigned bit = (unsigned)(i & 63);
		uint64_t n = 64 - bit < count ? 64 - bit : count;
		uint64_t mask = n == 64 ? ~0ull : ((1ull << n) - 1) << bit;

		/* The window size is a multiple of 64, so a word never
		 * straddles the wrap of the index. */
		w->bits[i >> 6] &= ~mask;
		from += n;
		count -= n;
	}
}

void ferry__replay_commit(struct ferry__replay *w, uint64_t pn)
{
	uint64_t i;

	if (ferry__replay_check(w, pn) != 0)
		return;
	if (pn >= w->next) {
		/* The pns skipped were not seen; pn's own slot is set
		 * below.  pn <= FERRY_SEAL_PN_MAX, so pn + 1 does not wrap. */
		replay_clear(w, w->next, pn - w->next);
		w->next = pn + 1;
	}
	i = pn & (w->size - 1);
	w->bits[i >> 6] |= 1ull << (i & 63);
}

bool ferry__replay_has(const struct ferry__replay *w, uint64_t pn)
{
	return pn < w->next && w->next - pn <= w->size && replay_seen(w, pn);
}

/* --- key schedule -------------------------------------------------------- */

void ferry__seal_transcript(const void *connect, size_t len, uint8_t th[32])
{
	crypto_generichash(th, 32, connect, len, NULL, 0);
}

/* secret_d = BLAKE2b-256(key = kx_d, label || th || bk), then
 * k_d = crypto_kdf_derive_from_key(32, 1, "ferry2pk", secret_d).  Subkey
 * ids 2, 3, ... are kept for key phases (KEY_UPDATE). */
static int derive_one(const uint8_t kx[32], const char *label,
		      const uint8_t th[32], const uint8_t bk[32],
		      uint8_t out[FERRY_SEAL_KEY_LEN])
{
	crypto_generichash_state st;
	uint8_t secret[32];
	int rc;

	rc = crypto_generichash_init(&st, kx, 32, sizeof(secret));
	rc |= crypto_generichash_update(&st, (const uint8_t *)label,
					strlen(label));
	rc |= crypto_generichash_update(&st, th, 32);
	rc |= crypto_generichash_update(&st, bk, 32);
	rc |= crypto_generichash_final(&st, secret, sizeof(secret));
	if (rc == 0)
		rc = crypto_kdf_derive_from_key(out, FERRY_SEAL_KEY_LEN, 1,
						"ferry2pk", secret);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(secret, sizeof(secret));
	return rc == 0 ? 0 : -EIO;
}

int ferry__seal_derive(const uint8_t kx_c2s[32], const uint8_t kx_s2c[32],
		       const uint8_t th[32], const uint8_t *hk,
		       struct ferry__seal_keys *out)
{
	static const uint8_t no_token[32];
	const uint8_t *bk = hk ? hk : no_token;

	/* The labels are 15 ASCII bytes each, without a terminator. */
	if (derive_one(kx_c2s, "ferry wire2 c2s", th, bk, out->c2s) < 0 ||
	    derive_one(kx_s2c, "ferry wire2 s2c", th, bk, out->s2c) < 0) {
		sodium_memzero(out, sizeof(*out));
		return -EIO;
	}
	return 0;
}

int ferry__seal_keys_client(const uint8_t cpk[32], const uint8_t csk[32],
			    const uint8_t spk[32], const uint8_t th[32],
			    const uint8_t *hk, struct ferry__seal_keys *out)
{
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	int rc = -EINVAL;

	/* The client sends with tx (kx_c2s) and receives with rx. */
	if (crypto_kx_client_session_keys(rx, tx, cpk, csk, spk) == 0)
		rc = ferry__seal_derive(tx, rx, th, hk, out);
	sodium_memzero(rx, sizeof(rx));
	sodium_memzero(tx, sizeof(tx));
	return rc;
}

int ferry__seal_keys_server(const uint8_t spk[32], const uint8_t ssk[32],
			    const uint8_t cpk[32], const uint8_t th[32],
			    const uint8_t *hk, struct ferry__seal_keys *out)
{
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	int rc = -EINVAL;

	/* The server receives with rx, which is the client's tx: kx_c2s. */
	if (crypto_kx_server_session_keys(rx, tx, spk, ssk, cpk) == 0)
		rc = ferry__seal_derive(rx, tx, th, hk, out);
	sodium_memzero(rx, sizeof(rx));
	sodium_memzero(tx, sizeof(tx));
	return rc;
}
