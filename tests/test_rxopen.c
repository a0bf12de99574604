/* SPDX-License-Identifier: MIT */
/*
 * Wire v2's receive pipeline, rules 1 to 8 (transport/rxopen.c;
 * docs/wire.md 2.4), in each mode: a sealed datagram opens and marks
 * its pn; then each attack or accident is dropped for its own reason and
 * leaves the replay window as it was: truncation, excess length, an
 * unknown or guessed CID, a spoofed source, the wrong mode, a replay, one
 * flipped bit, and an authenticated datagram with a broken frame (which
 * ends the session instead).
 */
#include <criterion/criterion.h>

#include <string.h>

#include <sodium.h>

#include "transport/rxopen.h"

#define CID 0x1122334455667788ull
#define LOG2 8

static uint8_t key[32], other_key[32];
static uint64_t bits[FERRY_REPLAY_WORDS(LOG2)];
static struct ferry__replay seen;
static struct ferry__cidtab cids;
static struct ferry__rx_sess sess;
static const struct ferry_addr peer = { .ip = 0x0100007f, .port = 4000 };
/* FERRY_SEAL_AES: the session's suite is AES-256-GCM (0: ChaCha20). */
static uint8_t g_suite;

static uint8_t seal_of(uint8_t mode)
{
	return mode == FERRY_W2_MODE_NONE ? mode : (uint8_t)(mode | g_suite);
}

static const struct ferry__rx_sess *sess_of(void *ctx, uint32_t val)
{
	(void)ctx;
	cr_assert_eq(val, 9);
	return &sess;
}

static void setup(uint8_t mode)
{
	cr_assert_geq(sodium_init(), 0);
	memset(key, 0x5a, sizeof(key));
	memset(other_key, 0xa5, sizeof(other_key));
	cr_assert_eq(ferry__replay_init(&seen, LOG2, bits), 0);
	cr_assert_eq(ferry__cidtab_init(&cids, 4), 0);
	cr_assert_eq(ferry__cidtab_add(&cids, CID, 9), 0);
	sess.peer = peer;
	sess.mode = mode;
	sess.seal = seal_of(mode);
	sess.key = key;
	sess.seen = &seen;
}

/*
 * A datagram of a PING and a REQUEST ("hello", req_id 1 or, with
 * @zero_id, 0: a protocol error), sealed in @mode under @k.  Returns its
 * length.
 */
static size_t mk(uint8_t *buf, uint8_t mode, uint64_t dcid, uint64_t pn,
		 const uint8_t *k, bool zero_id)
{
	struct ferry_w2_dgram d = { .mode = mode, .dcid = dcid,
				    .pn = (uint32_t)pn };
	struct ferry_w2_frame ping = { .type = FERRY_W2_PING };
	struct ferry_w2_frame req = { .type = FERRY_W2_REQUEST };
	struct ferry_w2_builder b;
	size_t tl = mode == FERRY_W2_MODE_NONE ? 4 : 16;
	int n;

	req.u.data.req_id = 1;
	req.u.data.method = 3;
	req.u.data.bytes = (const uint8_t *)"hello";
	req.u.data.bytes_len = 5;
	cr_assert_eq(ferry__w2_build_begin(&b, buf, 1500, &d), 0);
	cr_assert_eq(ferry__w2_build_frame(&b, &ping), 0);
	cr_assert_eq(ferry__w2_build_frame(&b, &req), 0);
	n = ferry__w2_build_end(&b);
	cr_assert_gt(n, 0);
	if (zero_id) /* REQUEST's req_id: after the header and two frame
		      * headers */
		memset(buf + FERRY_W2_SHORT_HDR_LEN + 8, 0, 4);
	cr_assert_eq(ferry__seal((enum ferry_seal_mode)seal_of(mode), k, pn, buf,
				 FERRY_W2_SHORT_HDR_LEN, (size_t)n - tl),
		     n);
	return (size_t)n;
}

/* Rule 7 keeps the first KEPT frames it decoded: the iterator's, in
 * order, and out->nframes counts them all. */
#define KEPT 2
static struct ferry_w2_frame g_kept[KEPT];

static void kept_match(const struct ferry__rx_dgram *d)
{
	struct ferry_w2_iter it;
	struct ferry_w2_frame f;
	unsigned n = 0;

	ferry__w2_iter_init(&it, &d->d);
	while (ferry__w2_iter_next(&it, &f) == 1) {
		if (n < KEPT) {
			cr_assert_eq(g_kept[n].type, f.type, "frame %u", n);
			cr_assert_eq(g_kept[n].len, f.len, "frame %u", n);
			cr_assert_eq(g_kept[n].body, f.body, "frame %u", n);
		}
		n++;
	}
	cr_assert_eq(n, d->nframes);
}

static enum ferry__rx_res open1(uint8_t *buf, size_t len,
				const struct ferry_addr *src,
				struct ferry__rx_dgram *out)
{
	enum ferry__rx_res r = ferry__rx_open(buf, len, 1500, src, &cids,
					      sess_of, NULL, out, g_kept, KEPT);

	if (r == FERRY_RX_OK)
		kept_match(out);
	return r;
}

static void opens_and_marks(uint8_t mode)
{
	uint8_t buf[1600];
	struct ferry__rx_dgram out;
	struct ferry_w2_iter it;
	struct ferry_w2_frame f;
	size_t n;

	setup(mode);
	n = mk(buf, mode, CID, 5, key, false);
	cr_assert_eq(open1(buf, n, &peer, &out), FERRY_RX_OK);
	cr_assert_eq(out.sess, 9);
	cr_assert_eq(out.pn, 5);
	cr_assert(ferry__replay_has(&seen, 5));
	ferry__w2_iter_init(&it, &out.d);
	cr_assert_eq(ferry__w2_iter_next(&it, &f), 1);
	cr_assert_eq(f.type, FERRY_W2_PING);
	cr_assert_eq(ferry__w2_iter_next(&it, &f), 1);
	cr_assert_eq(f.type, FERRY_W2_REQUEST);
	cr_assert_eq(f.u.data.bytes_len, 5);
	cr_assert_arr_eq(f.u.data.bytes, "hello", 5, "plaintext in every mode");
	/* The same datagram again: a replay. */
	n = mk(buf, mode, CID, 5, key, false);
	cr_assert_eq(open1(buf, n, &peer, &out), FERRY_RX_DUPLICATE);
	ferry__cidtab_fini(&cids);
}

Test(rxopen, opens_none) { opens_and_marks(FERRY_W2_MODE_NONE); }
Test(rxopen, opens_mac) { opens_and_marks(FERRY_W2_MODE_MAC); }
Test(rxopen, opens_aead) { opens_and_marks(FERRY_W2_MODE_AEAD); }

/* The same datagrams under the AES-256-GCM suite, where the CPU has it
 * (every machine that runs these tests has AES-NI; one without skips). */
static void aes_suite(void)
{
	cr_assert_geq(sodium_init(), 0);
	if (!ferry__seal_aes_available())
		cr_skip_test("no AES-NI/PCLMULQDQ: the AES suite is never offered");
	g_suite = FERRY_SEAL_AES;
}

Test(rxopen, opens_mac_aes, .init = aes_suite)
{
	opens_and_marks(FERRY_W2_MODE_MAC);
}

Test(rxopen, opens_aead_aes, .init = aes_suite)
{
	opens_and_marks(FERRY_W2_MODE_AEAD);
}

/* @rc, and the window untouched. */
static void refused(uint8_t *buf, size_t len, const struct ferry_addr *src,
		    enum ferry__rx_res want)
{
	struct ferry__rx_dgram out;
	uint64_t next = seen.next;
	uint64_t before[FERRY_REPLAY_WORDS(LOG2)];

	memcpy(before, bits, sizeof(before));
	cr_assert_eq(open1(buf, len, src, &out), want, "got %s, want %s",
		     ferry__rx_res_counter(open1(buf, len, src, &out)),
		     ferry__rx_res_counter(want));
	cr_assert_eq(seen.next, next);
	cr_assert_arr_eq(bits, before, sizeof(before));
}

static void attacks(void)
{
	uint8_t buf[1600];
	struct ferry_addr spoof = peer;
	size_t n;

	setup(FERRY_W2_MODE_MAC);
	/* Truncated anywhere: too short for a datagram, or a tag cut. */
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, key, false);
	refused(buf, 20, &peer, FERRY_RX_TRUNCATED);
	refused(buf, n - 1, &peer, FERRY_RX_AUTH);
	/* Larger than this endpoint takes. */
	cr_assert_eq(ferry__rx_open(buf, n, (uint32_t)n - 1, &peer, &cids,
				    sess_of, NULL,
				    &(struct ferry__rx_dgram){ 0 }, NULL, 0),
		     FERRY_RX_OVERSIZED);
	/* A guessed CID; a spoofed source with the right one. */
	n = mk(buf, FERRY_W2_MODE_MAC, CID ^ 1, 1, key, false);
	refused(buf, n, &peer, FERRY_RX_UNKNOWN);
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, key, false);
	spoof.port++;
	refused(buf, n, &spoof, FERRY_RX_UNKNOWN);
	spoof = peer;
	spoof.ip ^= 0x01000000;
	refused(buf, n, &spoof, FERRY_RX_UNKNOWN);
	/* A downgrade to mode none. */
	n = mk(buf, FERRY_W2_MODE_NONE, CID, 1, key, false);
	refused(buf, n, &peer, FERRY_RX_MALFORMED);
	/* Forged: another key, or one bit flipped anywhere. */
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, other_key, false);
	refused(buf, n, &peer, FERRY_RX_AUTH);
	for (size_t i = 9; i < 40; i++) {
		n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, key, false);
		buf[i] ^= 0x10;
		refused(buf, n, &peer, FERRY_RX_AUTH);
	}
	/* Sealed under the other suite with the same key: the suite is
	 * the session's, not the sender's to choose. */
	if (ferry__seal_aes_available()) {
		g_suite ^= FERRY_SEAL_AES;
		n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, key, false);
		g_suite ^= FERRY_SEAL_AES;
		refused(buf, n, &peer, FERRY_RX_AUTH);
	}
	/* Not a short header at all. */
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, key, false);
	buf[0] = 0xc0;
	refused(buf, n, &peer, FERRY_RX_MALFORMED);
	/* Still opens once intact. */
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, key, false);
	cr_assert_eq(open1(buf, n, &peer, &(struct ferry__rx_dgram){ 0 }),
		     FERRY_RX_OK);
	ferry__cidtab_fini(&cids);
}

Test(rxopen, attacks_change_nothing) { attacks(); }
Test(rxopen, attacks_change_nothing_aes, .init = aes_suite) { attacks(); }

Test(rxopen, replay_window)
{
	uint8_t buf[1600];
	size_t n;

	setup(FERRY_W2_MODE_MAC);
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1000, key, false);
	cr_assert_eq(open1(buf, n, &peer, &(struct ferry__rx_dgram){ 0 }),
		     FERRY_RX_OK);
	/* 256 pns below 1000 are remembered; older is refused unopened. */
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1000 - 256, key, false);
	refused(buf, n, &peer, FERRY_RX_REPLAY_OLD);
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1000 - 255, key, false);
	cr_assert_eq(open1(buf, n, &peer, &(struct ferry__rx_dgram){ 0 }),
		     FERRY_RX_OK);
	ferry__cidtab_fini(&cids);
}

Test(rxopen, bad_crc_in_none)
{
	uint8_t buf[1600];
	size_t n;

	setup(FERRY_W2_MODE_NONE);
	n = mk(buf, FERRY_W2_MODE_NONE, CID, 1, key, false);
	buf[20] ^= 1;
	refused(buf, n, &peer, FERRY_RX_BAD_CRC);
	ferry__cidtab_fini(&cids);
}

Test(rxopen, authenticated_broken_frame_is_protocol_error)
{
	uint8_t buf[1600];
	struct ferry__rx_dgram out;
	size_t n;

	setup(FERRY_W2_MODE_MAC);
	n = mk(buf, FERRY_W2_MODE_MAC, CID, 1, key, true);
	cr_assert_eq(open1(buf, n, &peer, &out), FERRY_RX_PROTO);
	cr_assert_eq(out.sess, 9);
	cr_assert_eq(out.err, FERRY_W2_E_ZERO_ID);
	cr_assert(!ferry__replay_has(&seen, 1), "not marked: rule 8 comes after");
	ferry__cidtab_fini(&cids);
}
