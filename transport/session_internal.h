/* SPDX-License-Identifier: MIT */
/*
 * Transport internals: calls and sessions.  A session's state is split by
 * role: what both share (credit, transmit queues, reliability, liveness),
 * then struct ferry_sess_client (client.c) and struct ferry_sess_server
 * (server.c).  The functions of the files that work on them are declared
 * in internal.h.
 */
#ifndef FERRY_TRANSPORT_SESSION_INTERNAL_H
#define FERRY_TRANSPORT_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cc.h"

#include <ferry/ferry.h>

#include "../dataplane/dp.h"
#include "ackrx.h"
#include "handshake.h"
#include "seal.h"
#include "sentq.h"
#include "trace_hook.h"
#include "wire.h"
#include "wire2.h"

struct ferry_msgbuf;

/* --- calls -------------------------------------------------------------- */

enum call_state {
	CALL_FREE = 0,
	CALL_QUEUED,     /* client: waiting for a slot or the handshake */
	CALL_SENDING,    /* on the session's transmit queue */
	CALL_WAITING,    /* client: request sent, awaiting the response */
	CALL_RX,         /* server: request partly received */
	CALL_READY,      /* server: request complete, not yet dispatched */
	CALL_DISPATCHED, /* server: handler ran, response not yet given */
	CALL_RESPONDED,  /* server: response sent, kept until acknowledged */
};

struct ferry_call {
	struct ferry_session *s;
	ferry_span_t span; /* the call's span, or FERRY_SPAN_NONE */
	uint32_t req_id;
	uint16_t method;
	uint8_t state;
	bool is_server;
	/* Client: the request (owned by the transport until the call ends).
	 * Server: the request, in place (an RX view) or reassembled. */
	struct ferry_msgbuf *req;
	/* Client: the response being reassembled.  Server: the response. */
	struct ferry_msgbuf *resp;
	uint32_t rx_got;   /* payload bytes received so far */
	/* Reassembly (reasm.c): the buffer bytes charged to the session's
	 * quota while the message is incomplete (0: none), and when its
	 * last fragment arrived. */
	uint32_t rx_charge;
	uint64_t rx_last_ns;
	uint32_t tx_off;   /* message bytes handed to the dataplane once */
	/* Its frames sent and not yet acknowledged: live in the session's
	 * sent queue, or lost and waiting to go again (sentq.h), in
	 * datagrams numbered sq_lo .. sq_hi (valid while unacked > 0), so
	 * that forgetting them looks at those alone. */
	uint32_t unacked;
	uint64_t sq_lo, sq_hi;
	uint32_t sq_fr;    /* its last frame's record (sentq_forget_at) */
	uint32_t push_id;  /* client: the PUSH frame's number (is_push) */
	int err;           /* server: error response, as negative errno */
	/* What the message carries ahead of its payload, in the first
	 * fragment's copied header area (docs/wire.md, section 8), a pool
	 * msgbuf the call owns.  Client: the trace block (trace_len bytes,
	 * FF_TRACE), then the token table (caps_len bytes, FF_CAPS).
	 * Server: the response's attribute block (nattrs entries, FF_TRACE),
	 * built by ferry_call_resp_attr_*(). */
	struct ferry_msgbuf *pre_mb;
	uint16_t trace_len;
	uint8_t nattrs;
	/* Server: attributes the handler set that will not reach the client
	 * (counted into trace_attrs_unsent on the endpoint's thread, since
	 * a handler may set them from another). */
	uint32_t attrs_unsent;
	/* Token table (FF_CAPS).  Client: its length in pre_mb.  Server:
	 * where the table lies, in front of the request payload in the same
	 * buffer (so it lives as long as the request does). */
	const uint8_t *caps;
	uint32_t caps_len;
	uint16_t ncaps;
	bool has_caps;     /* server: the request's frames carry FF_CAPS */
	bool has_trace;    /* server: the request's frames carry FF_TRACE;
			    * client: the response's first fragment did */
	/* Server: the request's trace context (its trace block's text, in
	 * the request's buffer in front of the payload), until dispatch. */
	const char *tctx_tp;
	const char *tctx_ts;
	uint16_t tctx_ts_len;
	bool is_push;      /* client: the PUSH of a struct ferry_iou */
	uint8_t n_ious;    /* IOU entries in its table: client, promises
			    * it names; server, entries it holds a
			    * reference on (iou_client.c,
			    * iou_server.c) */
	bool abandoned;    /* client: its deadline passed; cont already ran */
	uint64_t deadline; /* client: monotonic ns, 0 for none */
	ferry_cont_fn cont;
	void *ctx;
	struct ferry_call *next;  /* transmit queue / wait queue / free */
	struct ferry_call *xnext; /* cross-thread respond queue */
};

/* --- sessions ------------------------------------------------------------ */

/* A session's id within its endpoint: the index of its slot in the low
 * FERRY__SESS_IDX_BITS, a generation above (which tells a reused slot's
 * new session from the old one a stale id names).  17 bits: up to
 * FERRY__SESS_MAX sessions per endpoint, 15 of generation. */
#define FERRY__SESS_IDX_BITS 17
#define FERRY__SESS_MAX 100000u

enum sess_state {
	SESS_FREE = 0,
	SESS_CONNECTING, /* client: CONNECT sent, no ACCEPT yet */
	SESS_OPEN,
	SESS_CLOSED,     /* ended; waiting for the last reference */
};

/* What a frame in the sent queue is (struct ferry__sent_frame's kind):
 * a piece of a call's message, a PUSH, or the session's CLOSE or PING,
 * whose object is the session. */
enum {
	FK_DATA = 1,
	FK_PUSH,
	FK_CLOSE,
	FK_PING,
};

/* Frames a session owes its peer, sent at the next flush. */
#define SF_CONNECT (1u << 0) /* client: (re)send CONNECT */
#define SF_ACCEPT (1u << 1)  /* server: (re)send the stored ACCEPT */
#define SF_CREDIT (1u << 2)  /* a CREDIT frame */
#define SF_CLOSE (1u << 3)   /* a CLOSE frame (srv/cli close_code) */
#define SF_CLOSE_REPLY (1u << 4) /* a CLOSE with REPLY */
#define SF_PONG (1u << 5)    /* a PING came: ACK and CREDIT now */
#define SF_PING (1u << 6)
/* Data waits for its pacing time (cc.h): stay on the transmit list. */
#define SF_PACE (1u << 7)

/*
 * A client session's own state: client.c and iou_client.c.  A session is a
 * client or a server for its whole life (is_server), and the other role's
 * part stays zero.  Not a union: the roles' parts are small, and a stray
 * read of the other one finds zeros, not the other role's pointers.
 */
struct ferry_sess_client {
	bool user_ref;    /* the application holds the handle */
	/* The next req_id, and calls waiting for a slot. */
	uint32_t next_req;
	struct ferry_call *wait_head, *wait_tail;
	uint64_t next_deadline; /* earliest call deadline, 0 for none */

	/* Connect. */
	ferry_connect_fn connect_cb;
	void *connect_ctx;
	uint64_t connect_deadline;
	uint64_t connect_retry;
	uint64_t connect_gap;
	/* When the CONNECT that an ACCEPT would answer went, and whether it
	 * went more than once (then the ACCEPT's round trip is ambiguous
	 * and not taken: Karn's rule). */
	uint64_t hs_sent_ns;
	bool hs_resent;
	/* The handshake while connecting (secrets: wiped and freed once the
	 * connect ends), and the channel token it carries, a pool msgbuf
	 * freed then too. */
	struct ferry_hs_client *hs;
	struct ferry_msgbuf *token;
	uint8_t holder_key[FERRY_HS_HK_LEN];
	bool have_hk;
	/* The next PUSH frame's number (1, 2, 3...). */
	uint32_t next_push_id;

	/* Deferred tokens: the next IOU id, its promises, and how many wait
	 * for their call to be sent. */
	uint64_t next_iou_id;
	struct ferry_iou *ious;
	uint32_t ious_held;
};

/* A server session's own state: server.c and iou_server.c. */
struct ferry_sess_server {
	uint32_t next_dispatch; /* the next req_id to dispatch (E-order) */
	/* Deferred tokens: its IOU entries (named, and pushed early), and
	 * when the next one's deadline falls. */
	struct ferry_iou_ent *ents;
	uint32_t early_count, early_bytes;
	uint64_t iou_next_ns;
	/* Admission (admit_hook.h): when the admitting token expires (0:
	 * never), and the tag the hook counts the session under, given
	 * back when the session ends. */
	uint64_t expires_ns;
	uint64_t admit_tag;
	bool admit_tagged;
	/* The table of half-open sessions by (client CID, peer) (listen.c):
	 * the next in this one's chain (index + 1, 0 for none), and whether
	 * it is in. */
	uint32_t hnext;
	bool hashed;
	/* Half-open until the client's first authenticated short-header
	 * datagram (docs/wire.md, 4.1): the ACCEPT, kept to be sent again
	 * byte for byte for a retransmitted CONNECT, and, for a peer no
	 * cookie validated (retry never), the bytes it sent and was sent
	 * (at most FERRY__UNVALIDATED_FACTOR times). */
	bool confirmed;
	bool validated;
	bool accept_resent; /* sent more than once: no RTT sample */
	uint8_t accept_len;
	uint8_t accept[FERRY_HS_ACCEPT_LEN];
	uint32_t unval_rx, unval_tx;
	uint64_t accept_sent_ns; /* when the ACCEPT last went */
	uint64_t client_cid;
	uint64_t half_open_deadline;
	/* PUSH frames taken: every push_id up to push_hi, and those of the
	 * 64 above it whose bit is set (docs/wire.md, 5.4). */
	uint32_t push_hi;
	uint64_t push_map;
};

/* A link in one of the endpoint's timer lists (session.c): circular,
 * through a head that is itself a link. */
struct ferry__tlink {
	struct ferry__tlink *next, *prev;
};

/* Which timer list a session is on (its tq). */
enum {
	TQ_NONE = 0,
	TQ_DIRTY, /* its deadline must be worked out again */
	TQ_WHEEL, /* in the wheel slot of its earliest deadline */
};

/* A session: what both roles share, then each role's own part. */
struct ferry_session {
	struct ferry_endpoint *ep;
	uint32_t id;      /* internal: generation << FERRY__SESS_IDX_BITS |
			   * index */
	/* Connection ids (docs/wire.md, 2.1): ours, which the peer puts
	 * in every datagram it sends us (in the endpoint's CID table), and
	 * the peer's, which we put in ours (0 until known). */
	uint64_t cid;
	uint64_t peer_cid;
	uint8_t mode;     /* enum ferry_w2_mode */
	/* enum ferry_seal_mode: @mode, and FERRY_SEAL_AES when the
	 * handshake settled on that suite (docs/wire.md, 2.3). */
	uint8_t seal;
	/* Packet keys, each FERRY_SEAL_KEY_LEN bytes in the endpoint's
	 * locked key arena: what we seal with, what we open with. */
	uint8_t *key_tx;
	uint8_t *key_rx;
	struct ferry_addr peer;
	uint8_t state;
	bool is_server;
	bool active;      /* on the endpoint's transmit list */
	uint32_t refs;    /* user handle + server calls still unanswered */
	uint32_t pending; /* SF_* */
	int end_res;      /* why the session ended */
	ferry_span_t span; /* the session's span, or FERRY_SPAN_NONE */

	/* Negotiated: the largest datagram both ends take, the fragment
	 * grid's unit (docs/wire.md, 5.6), the peer's largest message
	 * and how long it may hold an ACK. */
	uint32_t path_frame;
	uint32_t frag_unit;
	uint32_t peer_max_msg;
	uint64_t peer_ack_delay_ns;

	/* Calls by req_id & slot_mask. */
	struct ferry_call **slots;
	uint32_t slot_mask;

	/* Transmit queue of calls with bytes left to send. */
	struct ferry_call *txq_head, *txq_tail;
	/* Credit, in message bytes (docs/wire.md, 5.5), 32-bit serial
	 * numbers: what we sent for the first time, and the peer's limit. */
	uint32_t tx_sent;
	uint32_t tx_limit;
	/* PUSHes to send (only a client has any; their own queue, ahead of
	 * nothing: they may exceed the credit by push_slack, half the
	 * server's window). */
	struct ferry_call *pushq_head, *pushq_tail;
	uint32_t push_slack;

	/* Receive credit we grant, in bytes: released + window. */
	uint32_t rx_released;
	uint32_t rx_window;
	uint32_t credit_adv; /* last limit sent */

	/* Reliability (docs/wire.md, 5.1 to 5.3): the pns seen (the
	 * replay window), what we acknowledge, and what we sent. */
	struct ferry__replay seen;
	struct ferry__ackrx ackrx;
	struct ferry__sentq sq;
	/* Congestion control: a second gate after credit (cc.h), fed by the
	 * sent queue's acknowledgements, RTT samples and losses. */
	struct ferry_cc cc;
	bool cc_held; /* the next frame is held back (counted once) */
	uint32_t close_code; /* SF_CLOSE's code */
	/* Reassembly (reasm.c): buffer bytes of incomplete messages charged
	 * to the quota, how many there are, and when to look for one past
	 * its deadline. */
	uint64_t reasm_bytes;
	uint32_t reasm_n;
	uint64_t reasm_next_ns;
	/* Liveness.  credit_pings: PINGs sent while credit held sending
	 * back and none came; each waits twice as long as the one before. */
	uint64_t last_rx_ns;
	uint64_t last_ping_ns;
	uint8_t credit_pings;
	bool credit_stalled; /* the next frame waits for the peer's CREDIT */

	/* The trace context of the CONNECT: a client's own (sent in it), a
	 * server's from the client's.  One byte more than the text, always
	 * NUL: the handshake client takes it as a C string (connect.c). */
	char traceparent[FERRY_TRACEPARENT_LEN + 1];
	bool have_traceparent;
	/* What the peer implements beyond the base (FERRY_W2_FEAT_*, the same
	 * bits as v1's FERRY_FEAT_*): the FEATURES frame of its ACCEPT, or of
	 * its CONNECT; 0 without one. */
	uint32_t peer_feat;
	void *user_data;

	struct ferry_session *next_active;
	/* Timers (session.c): on the dirty list or in a wheel slot. */
	struct ferry__tlink tl;
	uint8_t tq;

	struct ferry_sess_client cli;
	struct ferry_sess_server srv;
};

/* The next call number: req_id 0 is never used, so wrapping skips it. */
static inline uint32_t req_next(uint32_t r)
{
	return r + 1 ? r + 1 : 1;
}

static inline bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* The fragment grid's unit on a path of @path_frame bytes in @mode
 * (docs/wire.md, 5.6): room for the short header, the trailer, a
 * REQUEST_FRAG's head, and an ACK and a CREDIT beside it. */
static inline uint32_t ferry__frag_unit(uint32_t path_frame, uint8_t mode)
{
	uint32_t tl = mode == FERRY_W2_MODE_NONE ? FERRY_W2_CRC_LEN
						 : FERRY_W2_TAG_LEN;

	return path_frame - FERRY_W2_SHORT_HDR_LEN - tl -
	       (FERRY_W2_FRAME_HDR_LEN + FERRY_W2_REQUEST_FRAG_FIXED) - 24;
}

/* A quarter window of credit given back and not yet told to the peer
 * (docs/wire.md, 5.5). */
static inline bool credit_owed(const struct ferry_session *s)
{
	return s->rx_released + s->rx_window - s->credit_adv >=
	       s->rx_window / 4;
}

#endif /* FERRY_TRANSPORT_SESSION_INTERNAL_H */
