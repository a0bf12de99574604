/* SPDX-License-Identifier: MIT */
/*
 * seal.h - sealing of wire v2 datagrams: the trailer of each mode, the
 * replay window and the key schedule (docs/wire.md, sections 2.3, 4.4
 * and 5.2).
 *
 * A unit with its own tests (tests/test_seal.c) and cost figures
 * (`ferryctl bench wire`, docs/bench.md), used by the transport for every
 * datagram of a session: tx.c seals, rxopen.c opens and checks the replay
 * window, handshake*.c derive the keys and seal ACCEPT.
 *
 * What it knows of the wire is only what sealing needs: where the header
 * ends (the associated data in `aead` mode), the 64-bit packet number (the
 * nonce) and the trailer's size.  It never parses a header: the codec
 * (transport/wire2.c) finds the mode, reconstructs the full pn from the
 * low 32 bits on the wire and passes it here.
 *
 * Every function is pure computation on caller-owned memory: no allocation,
 * no locks, safe on any thread once ferry__seal_init() has returned 0.
 */
#ifndef FERRY_SEAL_H
#define FERRY_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FERRY_SEAL_KEY_LEN 32
#define FERRY_SEAL_TAG_LEN 16 /* the `mac` and `aead` trailer */
#define FERRY_SEAL_CRC_LEN 4  /* the `none` trailer */
#define FERRY_SEAL_NONCE_LEN 12

/*
 * The largest packet number that may be sealed or committed.  A 64-bit pn
 * never wraps in practice (2^64 datagrams take 584 years at 10^9 per
 * second), but the replay window stores "largest + 1", so the one value
 * 2^64 - 1 is refused everywhere to keep that sum defined.
 */
#define FERRY_SEAL_PN_MAX (UINT64_MAX - 1)

/* Largest datagram sealed or opened: the IPv4 UDP payload limit. */
#define FERRY_SEAL_DGRAM_MAX 65507

/*
 * The mode: bits 1-0 are the short header's (section 2.1); bit 2 is the
 * session's suite, FERRY_SEAL_AES, which the header does not carry (the
 * handshake settles it: FEATURES bit 6, section 2.3).  Without it the
 * suite is ChaCha20-Poly1305-IETF.
 */
enum ferry_seal_mode {
	FERRY_SEAL_NONE = 0, /* CRC32C: integrity against corruption only */
	FERRY_SEAL_MAC = 1,  /* Poly1305 tag over the cleartext datagram */
	FERRY_SEAL_AEAD = 2, /* frames encrypted, tag over header and frames */
	/* The same two under AES-256-GCM (GMAC over the datagram; AES-GCM
	 * with the header as associated data). */
	FERRY_SEAL_MAC_AES = 4 | 1,
	FERRY_SEAL_AEAD_AES = 4 | 2,
};
#define FERRY_SEAL_AES 4
#define FERRY_SEAL_WIRE_MASK 3 /* the header's bits of a mode */

/*
 * ferry__seal_aes_available - whether this CPU runs libsodium's AES-256-GCM
 * (AES-NI and PCLMULQDQ): only then does an endpoint offer the AES suite.
 * Calls ferry__seal_init() (libsodium learns the CPU there).
 */
bool ferry__seal_aes_available(void);

/*
 * ferry__seal_aes_key - the AES suite's packet key of one direction from
 * the ChaCha20-Poly1305 one the key schedule made (section 4.4, step 8):
 * crypto_kdf_derive_from_key(32, 1, "ferry2ag", @key), written over @key.
 * One key never serves two algorithms: ACCEPT is sealed under the ChaCha20
 * key, short-header datagrams of an AES session under this one.  Cannot
 * fail: libsodium's KDF refuses only lengths out of its range.
 */
void ferry__seal_aes_key(uint8_t key[FERRY_SEAL_KEY_LEN]);

/*
 * ferry__seal_forget - the key at @key is about to be wiped: wipe the AES
 * key schedule this thread keeps for it, if any (seal.c keeps the last
 * ones it used, per thread).
 */
void ferry__seal_forget(const uint8_t *key);

/*
 * ferry__seal_init - initialise libsodium (idempotent, thread-safe: it
 * picks the fastest ChaCha20 and Poly1305 code for this CPU).  Returns 0,
 * or -EIO if libsodium cannot start.
 */
int ferry__seal_init(void);

/* Trailer size of @mode: 4 (none) or 16; 0 for a value that is no mode. */
size_t ferry__seal_trailer_len(enum ferry_seal_mode mode);

/* The 12-byte nonce of @pn: 4 zero bytes, then pn big-endian (2.1). */
void ferry__seal_nonce(uint64_t pn, uint8_t nonce[FERRY_SEAL_NONCE_LEN]);

/*
 * ferry__seal - seal a contiguous datagram in place.  @dg holds @len bytes:
 * the header (@hdr_len bytes) and then the frames.  The trailer is written
 * at @dg + @len, so @dg must have room for ferry__seal_trailer_len(@mode)
 * more bytes.  In `aead` mode the frames are encrypted in place and the
 * header is the associated data; in `mac` mode all @len bytes are the
 * associated data of an empty plaintext; in `none` mode the trailer is the
 * CRC32C of the @len bytes, big-endian.  @key (32 bytes) may be NULL in
 * `none` mode.  Each (key, pn) must seal one datagram only: the caller
 * never reuses a pn (section 5.1).
 *
 * Returns the sealed length (@len + trailer), or -EINVAL (no such mode,
 * @hdr_len > @len, pn > FERRY_SEAL_PN_MAX, no key, the AES suite on a CPU
 * without it) or -EMSGSIZE (the
 * sealed datagram would exceed FERRY_SEAL_DGRAM_MAX).
 */
int ferry__seal(enum ferry_seal_mode mode, const uint8_t *key, uint64_t pn,
		uint8_t *dg, size_t hdr_len, size_t len);

/*
 * ferry__seal_iov - the trailer of a datagram scattered over @iovcnt pieces
 * (a header area, then lent payload buffers: docs/wire.md, section 6),
 * written to @trailer.  It equals what ferry__seal() appends to the same
 * bytes joined.  `none` and `mac` only: `aead` must write ciphertext, which
 * a lent buffer cannot take, so it gets -EINVAL (tx.c copies an `aead`
 * datagram's payload into its own buffer first).  Under the AES suite the
 * pieces are joined in a per-thread buffer first (libsodium has no
 * incremental AES-GCM): a copy of the datagram, for the tag only.
 *
 * Returns 0, or -EINVAL / -EMSGSIZE as ferry__seal().
 */
int ferry__seal_iov(enum ferry_seal_mode mode, const uint8_t *key,
		    uint64_t pn, const struct iovec *iov, size_t iovcnt,
		    uint8_t *trailer);

/*
 * ferry__seal_open - check the trailer of a received datagram of @len bytes
 * (trailer included) whose header is @hdr_len bytes, and in `aead` mode
 * decrypt its frames in place.  Tags are compared in constant time
 * (libsodium's crypto_verify_16).  Nothing in @dg is written unless the
 * trailer verified: a forged `aead` datagram is left as it came.
 *
 * Returns the length before the trailer (where the frames end, >= @hdr_len),
 * -EMSGSIZE if @len < @hdr_len + trailer or @len > FERRY_SEAL_DGRAM_MAX
 * (drop_truncated / drop_oversized), -EBADMSG if the tag or CRC is wrong
 * (drop_auth / drop_bad_crc), -EINVAL as ferry__seal().
 */
int ferry__seal_open(enum ferry_seal_mode mode, const uint8_t *key,
		     uint64_t pn, uint8_t *dg, size_t hdr_len, size_t len);

/*
 * ferry__seal_verify_iov - ferry__seal_open() for a datagram received in
 * pieces (GRO or a chained mbuf), `none` and `mac` only: @trailer holds the
 * received trailer, @iov the bytes before it.  Returns 0, -EBADMSG, or
 * -EINVAL / -EMSGSIZE as ferry__seal().
 */
int ferry__seal_verify_iov(enum ferry_seal_mode mode, const uint8_t *key,
			   uint64_t pn, const struct iovec *iov, size_t iovcnt,
			   const uint8_t *trailer);

/* --- replay window (docs/wire.md, section 5.2) ------------------------
 *
 * The receiver remembers which of the 2^log2 pns below the largest
 * committed one it has seen, as a bitmap indexed by pn modulo the window
 * size.  Anything below the window is refused as old, so the state is
 * bounded whatever the peer sends.
 *
 * Check, then commit: ferry__replay_check() runs before the tag is
 * verified (rule 5 of section 2.4: a duplicate costs no ChaCha20 and is
 * counted as a duplicate, not as a forgery) and writes nothing;
 * ferry__replay_commit() runs only after the tag verified and the frames
 * parsed (rule 8).  A forged datagram therefore changes no state: if it
 * could commit, one forged pn far ahead would push the window past every
 * honest pn in flight (all refused as old from then on), and a forged pn
 * just ahead would mark the honest datagram of that pn as a duplicate
 * before it arrived.
 */
#define FERRY_REPLAY_LOG2_MIN 6
#define FERRY_REPLAY_LOG2_MAX 16
#define FERRY_REPLAY_LOG2_DEFAULT 11 /* 2048 pns, 256 bytes of bitmap */
/* 64-bit words of bitmap a window of 2^log2 pns needs. */
#define FERRY_REPLAY_WORDS(log2) ((size_t)1 << ((log2) - 6))

struct ferry__replay {
	/* Largest committed pn + 1; 0 before the first commit.  It is also
	 * the reference the codec reconstructs pns around (section 2.1). */
	uint64_t next;
	uint64_t *bits;  /* FERRY_REPLAY_WORDS(log2) words, caller-owned */
	uint64_t size;   /* 2^log2 */
};

/*
 * ferry__replay_init - an empty window of 2^@log2 pns over @bits, which
 * must hold FERRY_REPLAY_WORDS(@log2) words and outlive @w (a session keeps
 * it beside the window, so nothing is allocated here).  Returns 0, or
 * -EINVAL if @log2 is outside [FERRY_REPLAY_LOG2_MIN, FERRY_REPLAY_LOG2_MAX].
 */
int ferry__replay_init(struct ferry__replay *w, unsigned log2, uint64_t *bits);

/*
 * ferry__replay_check - may a datagram with pn @pn be accepted?  Writes
 * nothing.  Returns 0 (new: above the largest, or in the window and not
 * seen), -EALREADY (in the window and seen: drop_duplicate), -ESTALE
 * (below the window: drop_replay_old) or -ERANGE (pn > FERRY_SEAL_PN_MAX,
 * which no sender seals).
 */
int ferry__replay_check(const struct ferry__replay *w, uint64_t pn);

/*
 * ferry__replay_commit - mark @pn seen, after ferry__replay_check() said 0
 * and the datagram authenticated.  A pn above the largest slides the window
 * up, forgetting what falls out of it.  Committing a pn the check would
 * refuse changes nothing.
 */
void ferry__replay_commit(struct ferry__replay *w, uint64_t pn);

/*
 * ferry__replay_has - is @pn marked?  False for pns at or above w->next and
 * below the window.
 */
bool ferry__replay_has(const struct ferry__replay *w, uint64_t pn);

/* --- key schedule (docs/wire.md, section 4.4) ------------------------ */

struct ferry__seal_keys {
	uint8_t c2s[FERRY_SEAL_KEY_LEN]; /* client-to-server packet key */
	uint8_t s2c[FERRY_SEAL_KEY_LEN]; /* server-to-client packet key */
};

/* th = BLAKE2b-256 of the inner CONNECT that carried the valid cookie,
 * from its first byte up to its CRC32C trailer (section 4.4, step 3). */
void ferry__seal_transcript(const void *connect, size_t len, uint8_t th[32]);

/*
 * ferry__seal_derive - step 5: the two packet keys from crypto_kx's two
 * session keys (@kx_c2s: the client's tx, the server's rx), the transcript
 * @th and the token's holder key @hk (32 bytes; NULL for a session admitted
 * without a token, which uses 32 zero bytes).  Intermediate secrets are
 * wiped before returning.  Returns 0, or -EIO if libsodium fails.
 */
int ferry__seal_derive(const uint8_t kx_c2s[32], const uint8_t kx_s2c[32],
		       const uint8_t th[32], const uint8_t *hk,
		       struct ferry__seal_keys *out);

/*
 * ferry__seal_keys_client / ferry__seal_keys_server - steps 2 to 5 on one
 * side: X25519 and crypto_kx's split (crypto_kx_client_session_keys or
 * crypto_kx_server_session_keys) from the own ephemeral key pair and the
 * peer's public key, then ferry__seal_derive().  Both sides get the same
 * @out.  Returns 0, or -EINVAL when libsodium rejects the peer's public key
 * (a low-order point: the handshake fails, drop_malformed / REFUSE).
 */
int ferry__seal_keys_client(const uint8_t cpk[32], const uint8_t csk[32],
			    const uint8_t spk[32], const uint8_t th[32],
			    const uint8_t *hk, struct ferry__seal_keys *out);
int ferry__seal_keys_server(const uint8_t spk[32], const uint8_t ssk[32],
			    const uint8_t cpk[32], const uint8_t th[32],
			    const uint8_t *hk, struct ferry__seal_keys *out);

#endif /* FERRY_SEAL_H */
