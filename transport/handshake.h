/* SPDX-License-Identifier: MIT */
/*
 * handshake.h - the wire v2 handshake as a pure unit (docs/wire.md,
 * section 4): CONNECT in its v1 envelope, the stateless RETRY cookie, the
 * key schedule, ACCEPT sealed under the new server-to-client key, REFUSE,
 * the v1 ERROR a v1 client gets, the holder-key proof (POP) of a channel
 * token v2, and the rate limits on replies to unvalidated addresses.
 *
 * It knows no endpoint, session or socket: it takes datagram bytes,
 * addresses, a clock value and configuration, and gives back datagram
 * bytes, keys and verdicts.  transport/connect.c wires it to sessions and
 * calls it:
 *
 *   client: ferry__hs_client_init, then ferry__hs_client_build to (re)send
 *           CONNECT on its schedule, ferry__hs_client_input for every long
 *           header or v1 datagram that arrives while connecting, and
 *           ferry__hs_client_wipe when done.
 *   server: ferry__hs_server_init once per endpoint, ferry__hs_server_input
 *           for every datagram whose first byte is 0x46 or a long header;
 *           for a CONNECT it admits: ferry__hs_server_check_pop (with a
 *           token), then ferry__hs_server_accept or ferry__hs_server_refuse.
 *
 * Verdicts name the counter they count in (a field of FERRY_EP_STATS or one
 * the v2 transport adds: `retry_sent`, `retry_ratelimited`, `v1_refused`,
 * `drop_bad_cookie`, `drop_bad_pop`, `drop_auth`, `drop_bad_crc`), as
 * ferry__w2_err_counter() does for the codec's rules.
 *
 * Files: handshake.c (what both sides share: cookie MAC, POP, names),
 * handshake_client.c, handshake_server.c.  Tests: tests/test_handshake.c
 * (exchanges), tests/test_handshake_rules.c (every negative rule),
 * tests/fuzz/fuzz_handshake.c.
 */
#ifndef FERRY_HANDSHAKE_H
#define FERRY_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/dp.h" /* struct ferry_addr: data only */
#include "seal.h"
#include "wire2.h"

#define FERRY_HS_HK_LEN 32 /* a channel token's holder key */
/* Room for any CONNECT this module builds: envelope, every frame at its
 * largest (a 4700-byte token, 512 bytes of tracestate) and the CRC. */
#define FERRY_HS_CONNECT_MAX 6144
/* Room for any reply: RETRY (46), ACCEPT (102), REFUSE (at most 32 + the
 * text), the v1 ERROR (75). */
#define FERRY_HS_REPLY_MAX (FERRY_W2_LONG_HDR_LEN + 4 + 6 +                    \
			    FERRY_ERROR_MSG_MAX + FERRY_W2_CRC_LEN)
#define FERRY_HS_RETRY_LEN 46
#define FERRY_HS_ACCEPT_LEN 102
/* Section 4.3: at most this many times the bytes received go back to an
 * address no cookie has validated. */
#define FERRY_HS_AMPLIFICATION 3
/* Cookies: valid for ts in [now - 10, now + 1]; keys replaced every 120 s
 * (section 4.3). */
#define FERRY_HS_COOKIE_LIFE_S 10
#define FERRY_HS_COOKIE_FUTURE_S 1
#define FERRY_HS_COOKIE_EPOCH_S 120
/* Reply rate limits (section 4.3): what ferry__hs_server_init sets, and
 * what an endpoint keeps where its connect_rate (or _per_source) is 0 (no
 * admission limit); otherwise it sets the rates to those
 * (ferry__hs_server_set_rates).  The global burst is not in the doc's
 * text: 0.01 s of the global rate (docs/wire.md, section 4.3 note). */
#define FERRY_HS_SRC_BUCKETS 4096
#define FERRY_HS_SRC_RATE 100 /* replies per second per source IPv4 */
#define FERRY_HS_SRC_BURST 10
#define FERRY_HS_GLOBAL_RATE 200000
#define FERRY_HS_GLOBAL_BURST 2000

/* What an input came to, on either side. */
enum ferry_hs_verdict {
	FERRY_HS_DROP = 0, /* nothing to do but count res->drop */
	/* client */
	FERRY_HS_RETRY,    /* cookie taken: send ferry__hs_client_build() again */
	FERRY_HS_ACCEPTED, /* res->accept holds the session's keys and terms */
	FERRY_HS_FAILED,   /* the connect fails with res->err */
	/* server */
	FERRY_HS_REPLY,    /* send res->reply_len bytes of the reply buffer */
	FERRY_HS_ADMIT,    /* res->conn is a CONNECT to admit or refuse */
};

/* --- client -------------------------------------------------------------- */

struct ferry_hs_client_cfg {
	uint8_t mode; /* enum ferry_w2_mode: the weakest this client accepts */
	struct ferry_w2_params params; /* what this client accepts (3.3) */
	uint32_t features;             /* FERRY_W2_FEAT_* */
	/* Optional, borrowed until ferry__hs_client_wipe(): the session's
	 * trace context (55 bytes exactly, and 0..512 bytes), and a channel
	 * token with its 32-byte holder key (copied; both or neither). */
	const char *traceparent;
	const char *tracestate;
	size_t tracestate_len;
	const uint8_t *token;
	size_t token_len;
	const uint8_t *hk;
	/* Tests and worked examples only: a fixed CID (0: random) and a seed
	 * for the ephemeral key pair (NULL: random). */
	uint64_t cid;
	const uint8_t *kx_seed; /* crypto_kx_SEEDBYTES */
};

/* A connecting client's handshake state.  Holds secrets: wipe it. */
struct ferry_hs_client {
	uint64_t cid; /* own CID: random, != 0, low 32 bits != 0 */
	uint8_t mode;
	struct ferry_w2_params params;
	uint32_t features;
	const char *traceparent;
	const char *tracestate;
	uint16_t tracestate_len;
	const uint8_t *token;
	uint16_t token_len;
	bool have_hk;
	bool have_cookie; /* one RETRY taken: later ones are stale */
	bool done;        /* ACCEPTED or FAILED: every later input is stale */
	uint8_t hk[FERRY_HS_HK_LEN];
	uint8_t pk[FERRY_W2_KEY_LEN];
	uint8_t sk[FERRY_W2_KEY_LEN];
	uint32_t cookie_ts;
	uint8_t cookie_mac[FERRY_W2_COOKIE_MAC_LEN];
	/* The transcript of the last CONNECT built: what an ACCEPT is
	 * checked against (section 4.4 step 3). */
	uint8_t th[32];
	bool have_th;
};

/* What the server's ACCEPT settled. */
struct ferry_hs_accept {
	uint64_t server_cid;   /* the DCID of every short header sent */
	uint8_t mode;          /* the session's mode, >= the client's */
	struct ferry_w2_params params; /* the server's */
	uint32_t features;             /* the server's; use own & these */
	struct ferry__seal_keys keys;  /* wipe when copied */
};

struct ferry_hs_client_result {
	const char *drop; /* FERRY_HS_DROP: the counter; else NULL */
	int err;          /* FERRY_HS_FAILED: a negative code */
	struct ferry_hs_accept accept; /* FERRY_HS_ACCEPTED */
};

/*
 * ferry__hs_client_init - a new connect attempt: draws the CID and the
 * ephemeral key pair and copies @cfg (its pointers are borrowed).
 * Returns 0, or -EINVAL (a mode above aead, PARAMS the codec would refuse,
 * a traceparent or tracestate of the wrong size, a token of 0 or over 65535
 * bytes, a token without hk or hk without a token, a fixed CID whose low 32
 * bits are 0), or -EIO (libsodium does not start).
 */
int ferry__hs_client_init(struct ferry_hs_client *c,
			  const struct ferry_hs_client_cfg *cfg);

/*
 * ferry__hs_client_build - the CONNECT datagram to send now, at @out (@cap
 * bytes; FERRY_HS_CONNECT_MAX always suffices): the v1 envelope (section
 * 4.2) around the inner CONNECT [HELLO, COOKIE once a RETRY came, PARAMS,
 * FEATURES, TRACEPARENT, TRACESTATE, TOKEN, POP, PADDING], padded to 512
 * bytes in all when shorter.  POP covers the inner CONNECT up to its own
 * frame (section 4.5), so it covers the cookie.  The same state builds the
 * same bytes: a retransmission is a rebuild.  Records the transcript.
 * Returns the length, -EMSGSIZE (@cap too small) or -EINVAL (after the
 * connect ended).
 */
int ferry__hs_client_build(struct ferry_hs_client *c, uint8_t *out,
			   size_t cap);

/*
 * ferry__hs_client_input - a datagram from the server while connecting
 * (@dg, @len, untrusted: a long header or a v1 frame).  Returns:
 *   FERRY_HS_RETRY     a RETRY whose DCID is our CID, the first one: the
 *                      cookie is stored; send ferry__hs_client_build().
 *   FERRY_HS_ACCEPTED  an ACCEPT whose tag verified under the k_s2c we
 *                      derived (so neither CONNECT nor ACCEPT was altered):
 *                      res->accept holds it.  The ephemeral secret and hk
 *                      are wiped.
 *   FERRY_HS_FAILED    res->err: -FERRY_EVERSION (a v1 server's ERROR
 *                      FERRY_EVERSION naming our envelope id, or an ACCEPT
 *                      of another version), -code of a REFUSE, or
 *                      -FERRY_EPROTO (an authentic ACCEPT whose mode is
 *                      weaker than ours: no downgrade).
 *   FERRY_HS_DROP      res->drop: drop_stale (another CID or envelope id, a
 *                      second RETRY, anything after the end), drop_auth (a
 *                      bad ACCEPT tag), drop_bad_crc, drop_malformed (or the
 *                      codec's counter), drop_bad_type (a CONNECT),
 *                      drop_bad_version (another v1 frame).
 */
enum ferry_hs_verdict ferry__hs_client_input(struct ferry_hs_client *c,
					     const uint8_t *dg, size_t len,
					     struct ferry_hs_client_result *res);

/* Wipe every secret of @c (sodium_memzero); @c may be initialised again. */
void ferry__hs_client_wipe(struct ferry_hs_client *c);

/* --- server -------------------------------------------------------------- */

enum ferry_hs_retry {
	FERRY_HS_RETRY_ALWAYS = 0, /* the default: every CONNECT proves its
				    * address first */
	FERRY_HS_RETRY_NEVER,      /* trusted fabrics: admit the first one */
};

/* Why a cookie was not valid (for tests and logs; all count
 * drop_bad_cookie). */
enum ferry_hs_cookie {
	FERRY_HS_COOKIE_NONE = 0, /* no COOKIE frame */
	FERRY_HS_COOKIE_OK,
	FERRY_HS_COOKIE_STALE,    /* ts outside [now - 10, now + 1] */
	FERRY_HS_COOKIE_EPOCH,    /* ts of an epoch whose key is gone */
	FERRY_HS_COOKIE_MAC,      /* wrong MAC: forged, or another address,
				   * port or CID */
};

/* Token bucket state as a theoretical arrival time (GCRA): a reply is
 * allowed while tat - now <= (burst - 1) * interval. */
struct ferry_hs_server {
	enum ferry_hs_retry retry;
	uint8_t cookie_key[2][32]; /* [0]: epoch `epoch`, [1]: the one before */
	uint64_t epoch;            /* Unix seconds / 120 of cookie_key[0] */
	uint8_t bucket_key[16];    /* crypto_shorthash key: aims no
				    * collisions */
	/* The buckets' terms: ns per reply (src_interval 0: no per-source
	 * bucket, where the project's own bench and tests lift it through
	 * ferry__endpoint_hs_src_rate), and replies in a burst. */
	uint64_t src_interval, global_interval;
	uint32_t src_burst, global_burst;
	uint64_t global_tat;
	uint64_t src_tat[FERRY_HS_SRC_BUCKETS];
};

/*
 * A CONNECT that passed every check before admission.  Its pointers point
 * into the datagram given to ferry__hs_server_input(), which must stay
 * unchanged until ferry__hs_server_accept() or _refuse() returns.
 */
struct ferry_hs_conn {
	uint64_t client_cid;
	uint8_t client_pk[FERRY_W2_KEY_LEN];
	uint8_t client_mode;
	struct ferry_w2_params params;
	uint32_t features;
	const uint8_t *traceparent; /* NULL or 55 bytes */
	const uint8_t *tracestate;  /* NULL or tracestate_len bytes */
	uint16_t tracestate_len;
	const uint8_t *token;       /* NULL or token_len bytes: open it */
	uint16_t token_len;
	uint8_t th[32];             /* the transcript (4.4 step 3) */
	bool validated;             /* a valid cookie: the address is proven */
	bool pop_ok;                /* ferry__hs_server_check_pop() said so */
	size_t rx_len;              /* the datagram's size: 3x budget */
	/* what POP covers, and POP */
	const uint8_t *inner;
	size_t pop_covered;
	const uint8_t *pop;
};

struct ferry_hs_server_result {
	const char *drop; /* why the CONNECT was not admitted, or NULL */
	const char *sent; /* FERRY_HS_REPLY: retry_sent or v1_refused */
	/* Set whenever a COOKIE frame was checked, so that a failed cookie
	 * still counts drop_bad_cookie when res->drop names the limit that
	 * held its RETRY back. */
	enum ferry_hs_cookie cookie;
	size_t reply_len; /* FERRY_HS_REPLY */
	struct ferry_hs_conn conn; /* FERRY_HS_ADMIT */
};

/*
 * ferry__hs_server_init - cookie keys for the epoch of @now_ns (Unix time
 * in nanoseconds, the same clock as every later call) and a random bucket
 * key.  Returns 0 or -EIO (libsodium does not start).
 */
int ferry__hs_server_init(struct ferry_hs_server *srv, enum ferry_hs_retry retry,
			  uint64_t now_ns);

/*
 * ferry__hs_server_set_rates - the reply buckets' rates: @src_rate replies
 * per second to one source IPv4 address, @global_rate to all together
 * (0: keep FERRY_HS_SRC_RATE or FERRY_HS_GLOBAL_RATE).  A burst is 0.1 s
 * of the per-source rate and 0.01 s of the global one, never fewer than
 * FERRY_HS_SRC_BURST.  An endpoint passes its connect_rate_per_source and
 * connect_rate, so that the replies are bounded as the CONNECTs are: one
 * address behind which many clients connect (a NAT) gets as many RETRYs
 * as connect_rate_per_source lets CONNECTs in.  Buckets already used keep
 * their state.
 */
void ferry__hs_server_set_rates(struct ferry_hs_server *srv, uint32_t src_rate,
				uint32_t global_rate);

/*
 * ferry__hs_server_has_cookie - whether the datagram @dg (@len bytes,
 * untrusted, given to ferry__hs_server_input next) is a v2 CONNECT, in
 * its envelope or bare, whose frame after HELLO is a COOKIE (section 4.1:
 * COOKIE right after HELLO), by reading 2 frame headers at fixed places:
 * no CRC, no parse, no cryptography.  Nothing is checked (the datagram
 * may still be malformed, the cookie forged): it says only which budget
 * a CONNECT is charged to before anything is done with it (transport/
 * listen.c), a RETRY's or an admission's.  PADDING between HELLO and
 * COOKIE, which the rules allow and no client of this release sends, is
 * not skipped: such a CONNECT is charged as one without a cookie, and is
 * otherwise handled as ever.
 */
bool ferry__hs_server_has_cookie(const uint8_t *dg, size_t len);

/*
 * ferry__hs_server_input - a datagram (@dg, @len, untrusted) whose first
 * byte is 0x46 (v1 or the envelope) or a long header, from @peer to
 * @local, at @now_ns.  Rotates the cookie keys when the clock enters a new
 * 120-second epoch; nothing else of @srv changes but the buckets.  Returns:
 *   FERRY_HS_REPLY  send @reply[0 .. res->reply_len) (@cap bytes;
 *                   FERRY_HS_REPLY_MAX suffices) to @peer: a RETRY
 *                   (res->sent retry_sent; also res->drop drop_bad_cookie
 *                   when a cookie failed) or, for a v1 CONNECT without TLV
 *                   0x86, a v1 ERROR FERRY_EVERSION "peer speaks ferry wire
 *                   v2" (v1_refused).  Each is at most 3x @len and passed
 *                   the buckets.
 *   FERRY_HS_ADMIT  res->conn: a well-formed CONNECT with a valid cookie,
 *                   or (retry never) without one, within the buckets.  The
 *                   caller checks it is listening (drop_not_listening), and
 *                   looks up (client CID, @peer) among its half-open
 *                   sessions: a retransmitted CONNECT gets the stored
 *                   ACCEPT again, byte for byte (it is sealed under pn 0,
 *                   and other bytes under that nonce would break the AEAD).
 *   FERRY_HS_DROP   res->drop: retry_ratelimited (a reply or, retry never,
 *                   an admission the buckets refused), unvalidated_suppressed
 *                   (a reply over 3x, or over @cap), the
 *                   codec's counters (drop_malformed, drop_truncated,
 *                   drop_bad_version, drop_bad_type...), drop_bad_crc.
 */
enum ferry_hs_verdict ferry__hs_server_input(struct ferry_hs_server *srv,
					     const uint8_t *dg, size_t len,
					     const struct ferry_addr *peer,
					     const struct ferry_addr *local,
					     uint64_t now_ns, uint8_t *reply,
					     size_t cap,
					     struct ferry_hs_server_result *res);

/*
 * ferry__hs_server_check_pop - with a token: check the CONNECT's POP with
 * the holder key @hk the opened token holds (section 4.5), and remember the
 * verdict in @conn (pop_ok: the peer may hear precise refusal reasons).
 * Returns 0, -EBADMSG (drop_bad_pop: refuse generically), or -EINVAL (no
 * token in @conn).
 */
int ferry__hs_server_check_pop(struct ferry_hs_conn *conn,
			       const uint8_t hk[FERRY_HS_HK_LEN]);

/* What the server answers with. */
struct ferry_hs_server_cfg {
	uint64_t cid;     /* own CID for the session: random, != 0, unique */
	uint8_t mode;     /* the weakest mode the server accepts */
	struct ferry_w2_params params;
	uint32_t features;
};

/*
 * ferry__hs_server_accept - draw the server's key pair, derive the keys
 * (section 4.4; the transcript is conn->th, bk is @hk or, NULL, zeros: a
 * token-admitted session must pass its hk, after ferry__hs_server_check_pop
 * said 0) and write ACCEPT [HELLO, PARAMS, FEATURES] sealed in `mac` form
 * under k_s2c, pn 0, at @out (@cap >= FERRY_HS_ACCEPT_LEN).  The session's
 * mode is the stronger of @cfg->mode and the client's, and goes to
 * *@mode.  Keep the bytes: a retransmitted CONNECT gets them again, byte
 * for byte, never a second sealing.  The ephemeral secret is wiped.
 * Returns the length (102), -EINVAL (a CID of 0, a mode above aead, or a
 * client public key libsodium rejects: refuse with FERRY_EREJECTED),
 * -EMSGSIZE (@cap, or more than 3x the CONNECT to an unvalidated address),
 * -EIO.
 */
int ferry__hs_server_accept(const struct ferry_hs_conn *conn,
			    const struct ferry_hs_server_cfg *cfg,
			    const uint8_t *hk, struct ferry__seal_keys *keys,
			    uint8_t *mode, uint8_t *out, size_t cap);

/*
 * ferry__hs_server_refuse - write REFUSE [ERROR] for @conn at @out (@cap
 * bytes; FERRY_HS_REPLY_MAX suffices).  A peer that has not proved a
 * holder key (conn->pop_ok false) gets the generic FERRY_EREJECTED with an
 * empty text, whatever @code and @text say (section 4.5); @text may be
 * NULL.  Returns the length, -EINVAL (@code 0 or above INT32_MAX) or
 * -EMSGSIZE (@cap, or more than 3x the CONNECT to an unvalidated address).
 */
int ferry__hs_server_refuse(const struct ferry_hs_conn *conn, uint32_t code,
			    const char *text, uint8_t *out, size_t cap);

/* --- shared (handshake.c) ------------------------------------------------- */

/*
 * ferry__hs_cookie_mac - the cookie MAC of section 4.3: keyed BLAKE2b-128
 * of client IPv4 || client port || server IPv4 || server port || client
 * CID || ts, all big-endian (ferry_addr's ip is already network order).
 */
void ferry__hs_cookie_mac(const uint8_t key[32], const struct ferry_addr *peer,
			  const struct ferry_addr *local, uint64_t cid,
			  uint32_t ts, uint8_t mac[FERRY_W2_COOKIE_MAC_LEN]);

/*
 * ferry__hs_pop - POP of section 4.5: BLAKE2b-128 of @covered (the inner
 * CONNECT up to the POP frame's header) keyed with k_pop =
 * crypto_kdf_derive_from_key(32, 1, "ferrypop", @hk).  Returns 0 or -EIO.
 */
int ferry__hs_pop(const uint8_t hk[FERRY_HS_HK_LEN], const uint8_t *covered,
		  size_t len, uint8_t pop[FERRY_W2_POP_LEN]);

/* The w2 codec's counter for @e, or drop_malformed where it names none. */
const char *ferry__hs_codec_drop(enum ferry_w2_err e);

#endif /* FERRY_HANDSHAKE_H */
