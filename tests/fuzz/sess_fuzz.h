/* SPDX-License-Identifier: MIT */
/*
 * sess_fuzz.h - the input layout of fuzz_session (a live server endpoint's
 * receive path, driven by sequences of datagrams of one session), shared
 * with its seed generator gen_sess_corpus.
 *
 * The session's keys are new in every run (the server draws its key pair),
 * so an input describes datagrams, not their bytes: the fuzzer builds and
 * seals each one itself.  All integers are big-endian; a field past the
 * end of the input reads as 0.
 *
 *   setup byte: bit 0 aead (else mac); bits 1-2 the client's max_frame
 *               (SF_FRAMES); bit 3 a small receive window (4096 bytes).
 *   then operations, each an op byte (its value modulo SF_OP_COUNT) and
 *   its arguments:
 *
 *   SF_OP_DGRAM   ctl, pn args, corruption args, frames.  ctl bits 0-1:
 *                 frames - 1; bits 2-4: the pn (SF_PN_*); bits 5-7: the
 *                 corruption (SF_BAD_*).  pn args: SF_PN_AHEAD u16 (next
 *                 + it), SF_PN_OLD u16 (next - 1 - it), SF_PN_EXACT u32
 *                 (the low 32 bits, expanded around next).  corruption
 *                 args: SF_BAD_FLIP u16 position, u8 xor; SF_BAD_TRUNC u16
 *                 length.  Each frame: a kind byte (SF_F_*, modulo
 *                 SF_F_COUNT) and its fields, below.
 *   SF_OP_RAWDG   u16 n, n bytes: the frames area as it is, under the next
 *                 pn.
 *   SF_OP_POLL    u8 n: ferry_endpoint_poll(ep, 0) n % 4 + 1 times.
 *   SF_OP_CLOCK   u8 v: the monotonic clock jumps v * 100 us (v < 128) or
 *                 (v - 128) * 100 ms.
 *   SF_OP_REPLAY  u8 i: a datagram sent before, again, byte for byte.
 *   SF_OP_CONNECT the CONNECT again (a retransmission).
 *   SF_OP_GARBAGE u8 n, n bytes: a datagram as it is, unsealed.
 *
 * Frames:
 *   SF_F_REQ     u8 flags, u16 req_id, u8 method, u16 len, u8 seed
 *   SF_F_FRAG    u8 flags, u16 req_id, u8 method, u8 units, u8 short,
 *                u8 index, u8 seed: a fragment on the session's grid of a
 *                message of units * unit - short bytes (units 0 reads 1);
 *                flags bit 7: off the grid: then u32 msg_len, u32 offset,
 *                u16 len follow instead of units, short and index.
 *   SF_F_PUSH    u16 push_id, u8 n, n bytes of records
 *   SF_F_ACK     u8 flags (bit 0: ECN, bit 1: a largest of its own), [u32
 *                largest], u16 first_range, u16 delay, u8 ranges (% 5),
 *                then u8 gap, u8 count each; largest is otherwise the
 *                server's last pn
 *   SF_F_CREDIT  u32 limit
 *   SF_F_PING
 *   SF_F_CLOSE   u8 flags, u32 code
 *   SF_F_PAD     u8 len
 *   SF_F_RAW     u8 type, u8 flags, u8 len, len bytes
 * Bytes of data frames are seed + 7 * (message offset) + req_id, so that
 * every fragment of one message agrees.
 */
#ifndef FERRY_SESS_FUZZ_H
#define FERRY_SESS_FUZZ_H

#include <stdint.h>

enum {
	SF_OP_DGRAM = 0,
	SF_OP_RAWDG,
	SF_OP_POLL,
	SF_OP_CLOCK,
	SF_OP_REPLAY,
	SF_OP_CONNECT,
	SF_OP_GARBAGE,
	SF_OP_COUNT
};

enum {
	SF_PN_NEXT = 0,
	SF_PN_SAME,  /* the last pn used again */
	SF_PN_AHEAD,
	SF_PN_OLD,
	SF_PN_EXACT,
};

enum {
	SF_BAD_NONE = 0,
	SF_BAD_FLIP,   /* a byte changed after sealing */
	SF_BAD_TRUNC,  /* cut after sealing */
	SF_BAD_KEY,    /* sealed with the server-to-client key */
	SF_BAD_DCID,   /* another connection id */
	SF_BAD_TAG,    /* not sealed: the tag left zero */
};

enum {
	SF_F_REQ = 0,
	SF_F_FRAG,
	SF_F_PUSH,
	SF_F_ACK,
	SF_F_CREDIT,
	SF_F_PING,
	SF_F_CLOSE,
	SF_F_PAD,
	SF_F_RAW,
	SF_F_COUNT
};

#define SF_FRAG_RAW 0x80u

static const uint16_t SF_FRAMES[4] = { 1200, 1500, 2048, 4096 };

#endif /* FERRY_SESS_FUZZ_H */
