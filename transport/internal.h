/* SPDX-License-Identifier: MIT */
/*
 * Transport internals: msgbufs, the endpoint, and the functions the
 * transport's files share.  Calls and sessions are in session_internal.h,
 * IOUs in iou_internal.h; this header includes both.
 *
 * Who does what (wire v2, docs/wire.md):
 *   endpoint.c   the endpoint's life, the poll loop, cross-thread work
 *   rx.c         the receive path: first-byte demux of every datagram,
 *                rxopen.c's rules, then frame by frame to ACK, CREDIT,
 *                PING, CLOSE and the roles
 *   rxopen.c     a short-header datagram's rules 1 to 8: CID, address,
 *                mode, replay window, trailer, every frame parsed
 *   cidtab.c     the endpoint's own random 64-bit CIDs -> sessions
 *   connect.c    the handshake wired to sessions: a connecting client's
 *                state; on a server, admission (rate limits, hook, POP),
 *                the half-open session and its ACCEPT
 *   handshake.c, handshake_client.c, handshake_server.c   the handshake
 *                as a pure unit: CONNECT, RETRY cookies, keys, ACCEPT,
 *                REFUSE, the v1 refusal, the reply rate limits
 *   session.c    a session's life, shared by both roles: alloc, end,
 *                timers
 *   client.c     the client side: connect, calls, token tables, the
 *                client's receive path (responses)
 *   server.c     the server side: the admission hook's verdict, a new
 *                session's opening, requests' arrival, E-order dispatch,
 *                respond, response attributes
 *   listen.c     the CONNECT rate limits (connect_rate*), half-open
 *                server sessions by (client CID, address)
 *   reasm.c      reassembly of fragmented messages, both roles
 *   tx.c         the datagram builder: ACK, CREDIT, PING, lost frames,
 *                new data, PUSH, coalesced and sealed; the flush
 *   reliable.c   glue between a session and its replay window, ackrx.c
 *                and sentq.c; loss and ACK timers; the congestion
 *                control feed
 *   ackrx.c      which pns to acknowledge, and when; the ACK frame
 *   sentq.c      a record per datagram sent, loss detection, RTT, the
 *                lost-frame queue
 *   cc.c         congestion control (Swift-like window and pacer)
 *   seal.c       trailers (none, mac, aead), replay window, key schedule
 *   wire2.c, wire2_hs.c   the v2 codec; wire.c the v1 codec (the
 *                CONNECT envelope, the v1 ERROR, call message layouts)
 *   iou_client.c, iou_server.c   deferred tokens, by role
 *   msgbuf.c     buffer pools and RX views
 */
#ifndef FERRY_TRANSPORT_INTERNAL_H
#define FERRY_TRANSPORT_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <ferry/ferry.h>

#include "../dataplane/dp.h"
#include "admit_hook.h"
#include "cidtab.h"
#include "handshake.h"
#include "iou_internal.h"
#include "rxopen.h"
#include "stats.h"
#include "session_internal.h"
#include "trace_hook.h"
#include "wire.h"
#include "wire2.h"

#define FERRY_RX_BURST 32
/* Summary words of the free-slot map: each covers 4096 slots. */
/* The timer wheel (session.c): a slot per millisecond tick, 4.096 s round;
 * a deadline further off waits in the last slot and is looked at again. */
#define FERRY__WHEEL_LOG2 12
#define FERRY__TICK_NS 1000000ull
#define FERRY__FREE_SUM_WORDS 32
/* Per-source admission rate buckets (listen.c): sources share them by a
 * keyed hash of their IPv4 address (docs/wire.md, section 4.3, has the
 * same 4096). */
#define FERRY__RATE_SRC_BUCKETS 4096
/* The two classes of CONNECT the admission buckets keep apart (listen.c):
 * without a cookie (a RETRY's work) and with one (an admission's). */
#define FERRY__CLASS_RETRY 0
#define FERRY__CLASS_COOKIE 1
#define FERRY__CLASSES 2
/* A peer not yet validated gets at most this many times the bytes it sent
 * (docs/wire.md, section 4.3). */
#define FERRY__UNVALIDATED_FACTOR 3
/* The default of reasm_timeout_ms (docs/api.md). */
#define FERRY__REASM_TIMEOUT_MS 3000
/* How long an ACK may wait for a datagram to ride in (docs/wire.md,
 * 5.2; PARAMS.max_ack_delay). */
#define FERRY__MAX_ACK_DELAY_NS 1000000ull
/* The replay window each end keeps (PARAMS.replay_log2). */
#define FERRY__REPLAY_LOG2 FERRY_REPLAY_LOG2_DEFAULT

/* Messages queued while one received datagram is read after which they
 * leave at once, before the rest of it: the peer starts on them while
 * this side works on the rest (a pipeline, not a ping-pong of batches).
 * A busy-polling endpoint sends twice as many per datagram: its peer is
 * awake anyway, and a datagram's own cost (seal, open, the driver) then
 * counts more than the overlap (docs/bench.md, "The memif
 * fast path"). */
#define FERRY__PIPE_CHUNK 16
#define FERRY__PIPE_CHUNK_BUSY 32

/* The receive window a session grants, in message bytes: session_credits
 * datagrams of max_frame (docs/wire.md, 5.5: 4096 .. 2^30). */
static inline uint32_t ferry__rx_window(const struct ferry_ep_config *cfg)
{
	uint64_t w = (uint64_t)cfg->session_credits * cfg->max_frame;

	if (w > (1u << 30))
		w = 1u << 30;
	return w < 4096 ? 4096 : (uint32_t)w;
}

/* --- msgbufs ------------------------------------------------------------ */

/* A msgbuf's kind: from a pool class, or a view of a received datagram. */
#define MB_KIND_POOL 0
#define MB_KIND_RX 1

/*
 * Ownership: see include/ferry/msgbuf.h.  Inside the transport, `refs`
 * counts holders: the owner (application or transport) plus one per
 * transmit the dataplane has not released yet.  refs is only touched on
 * the endpoint's thread, except for the owner's final free of a pool
 * buffer with refs == 1, which takes the class lock.
 */
struct ferry_msgbuf {
	uint8_t *data;
	uint32_t len;
	uint32_t cap;
	struct ferry_endpoint *ep;
	struct ferry_msgbuf *next; /* free stack / cross-thread queue */
	uint32_t refs;
	uint8_t kind;
	uint8_t cls;
	/* MB_KIND_RX: the dataplane buffer, the session to credit, and the
	 * message bytes to credit it with. */
	uint32_t rx_id;
	uint32_t rx_sess;
	uint32_t rx_credit;
	/* MB_KIND_POOL: which fragments of the message being reassembled
	 * into it have arrived (reasm.c), a bit per fragment.  Sized at pool
	 * creation for the smallest fragment, FERRY_REASM_UNIT_MIN bytes, so
	 * that any message the buffer can hold fits; it belongs to whoever
	 * holds the buffer. */
	uint64_t *rmap;
};

/* The smallest fragment payload a session can negotiate: the smallest
 * max_frame less the header. */
#define FERRY_REASM_UNIT_MIN (FERRY_WIRE_MIN_FRAME - FERRY_WIRE_HDR_LEN)
/* Words of reassembly map a pool buffer of @cap bytes needs. */
#define FERRY_REASM_MAP_WORDS(cap)                                             \
	(((cap) + FERRY_REASM_UNIT_MIN * 64 - 1) / (FERRY_REASM_UNIT_MIN * 64))

struct ferry_pool_cls {
	atomic_flag lock; /* guards free; buffers are freed from any thread */
	struct ferry_msgbuf *free;
	atomic_uint nfree; /* how many on the free stack */
	/* The endpoint thread's own stack (msgbuf.c): no lock, no atomic. */
	struct ferry_msgbuf *own;
	uint32_t nown, own_max;
	struct ferry_msgbuf *bufs;
	uint64_t *rmap_mem; /* the buffers' reassembly maps */
	uint8_t *mem;
	uint32_t size;
	uint32_t count;
};


/* --- endpoint ------------------------------------------------------------ */

struct ferry_handler_ent {
	ferry_handler_fn fn;
	void *ctx;
	uint16_t method;
	bool used;
};

/* Peer endpoints' progress (reliable.c): a cache of this many slots, by a
 * hash of the address. */
#define FERRY__PEERS_LOG2 10

struct ferry__peer_progress {
	struct ferry_addr addr;
	uint64_t acked_sent_ns, progress_ns; /* struct ferry__sentq_peer's */
};

struct ferry_endpoint {
	struct ferry_ep_config cfg;
	const struct ferry_dp_ops *dp_ops;
	struct ferry_dp *dp;
	struct ferry_addr local;
	pthread_t owner;
	uint64_t now; /* monotonic ns, refreshed once per poll */
	uint64_t next_timer;
	/* The last poll that read its receive queue empty (reliable.c). */
	uint64_t read_up_ns;
	struct ferry__peer_progress peers[1u << FERRY__PEERS_LOG2];

	struct ferry_pool_cls cls[FERRY_POOL_CLASSES];
	unsigned ncls;
	uint8_t *pool_mem;
	size_t pool_bytes;
	bool pool_mmapped; /* from mmap, not the dataplane */
	/* RX views: one per dataplane receive buffer. */
	struct ferry_msgbuf *views;
	struct ferry_msgbuf *view_free;
	/* Views handed out, and how many a request may still be read in
	 * place beside (msgbuf.c): beyond, it is copied out. */
	uint32_t views_held, views_keep_max;

	struct ferry_session *sessions;
	struct ferry_call **slot_mem;
	/* Per session (tables_alloc): the replay and acknowledgement
	 * windows' bitmaps, and the packet keys (2 x 32 bytes each, in one
	 * locked sodium_malloc arena).  The sent queues' rings come from a
	 * pool shared by the sessions, taken while something is in flight
	 * and sized by how much (sentq.h): up to 2^sq_log2 datagrams and
	 * twice as many frames each. */
	uint64_t *seen_mem, *acked_mem;
	struct ferry__sentq_pool sq_pool;
	unsigned sq_log2;
	uint8_t *keys;
	size_t keys_len;
	/* Offer the AES-256-GCM suite (FERRY_W2_FEAT_AESGCM): where the
	 * CPU runs it, unless FERRY_NO_AESGCM is set in the environment or
	 * ferry__endpoint_offer_aes() said no. */
	bool offer_aes;
	uint32_t nsessions;
	uint16_t sess_gen; /* 32 - FERRY__SESS_IDX_BITS bits */
	/* Slots a new session may take (session.c): a bit per slot that is
	 * free and off the transmit list, and a bit per word of them that
	 * is not 0, so that the lowest is found without a scan (session.c:
	 * FERRY__SESS_MAX slots). */
	uint64_t *free_map;
	uint64_t free_sum[FERRY__FREE_SUM_WORDS];
	struct ferry_session *active_head, *active_tail;
	/* Timers (session.c): sessions whose next deadline must be worked
	 * out again (anything about them changed), and a wheel of those
	 * whose deadline is known, a slot per FERRY__TICK_NS; the last tick
	 * the wheel has run.  A poll looks at these, never at every
	 * session. */
	struct ferry__tlink tdirty;
	struct ferry__tlink *wheel;
	uint64_t wheel_tick;

	struct ferry_call *calls;
	struct ferry_call *call_free;
	uint32_t ncalls;

	struct ferry_handler_ent *handlers;
	uint32_t handler_mask;

	ferry_session_fn session_fn;
	void *session_ctx;

	/* Tracing (NULL: off): the tracer's ops and this endpoint's ring;
	 * the span of the call whose continuation runs now
	 * (ferry_endpoint_call_span). */
	const struct ferry__trace_ops *tops;
	struct ferry_trace_ring *tring;
	ferry_span_t cur_call_span;
	/* Listening (listen.c): whether CONNECTs are taken (cfg.listen, or
	 * since a handler, hook or notifier was set); the admission rate
	 * buckets, one pair per class of CONNECT (FERRY__CLASS_*), each the
	 * time it would be full again (rate_src: FERRY__RATE_SRC_BUCKETS per
	 * class, NULL without a per-source limit), ns per token (0: no
	 * limit) and how far ahead of now a bucket's time may run (its
	 * burst); open server sessions by peer, a chain per bucket (session
	 * index + 1); the key of both tables' hash. */
	bool listening;
	uint64_t rate_tat[FERRY__CLASSES];
	uint64_t *rate_src;
	uint64_t rate_gap, rate_src_gap;
	uint64_t rate_tol[FERRY__CLASSES], rate_src_tol[FERRY__CLASSES];
	uint32_t *peer_hash;
	uint32_t peer_mask;
	uint8_t hash_key[16];
	/* Admission hook (NULL: admit all), run once per new CONNECT. */
	ferry_admit_fn admit_fn;
	ferry_admit_release_fn admit_release;
	void *admit_ctx;
	/* The control plane's side channel (admit_hook.h): who takes tags
	 * back, and what the hook granted the CONNECT it is judging. */
	ferry__admit_untag_fn admit_untag;
	bool grant_tagged;
	uint64_t grant_tag;
	uint64_t grant_expires_ns; /* 0: none */
	/* The holder key of the token the hook opened (wire v2: the POP
	 * and the key schedule), wiped once used. */
	bool grant_has_hk;
	uint8_t grant_hk[32];

	/* Deferred tokens (iou_client.c, iou_server.c): client promises,
	 * server entries and waits, each a pool of cfg.iou_max; entries
	 * hashed by session and id; per call, its table's entries
	 * (FERRY_CAPS_MAX a call, indexed by the call's place in @calls);
	 * the push check. */
	struct ferry_iou *ious;
	struct ferry_iou *iou_free;
	struct ferry_iou_ent *ents;
	struct ferry_iou_ent *ent_free;
	struct ferry_iou_ent **ent_hash;
	uint32_t ent_hash_mask;
	struct ferry_iou_wait *waits;
	struct ferry_iou_wait *wait_free;
	struct ferry_iou_ent **call_ents;
	ferry_push_check_fn push_check;
	void (*push_check_release)(void *ctx);
	void *push_check_ctx;

	/* Cross-thread work: deferred responses, frees of RX views, and
	 * promises kept on other threads. */
	atomic_flag xlock;
	_Atomic(bool) xpending;
	struct ferry_call *xcalls;
	struct ferry_msgbuf *xfrees;
	struct ferry_iou *xious;

	/* Wire v2: our connection ids (the sessions' indexes by CID), the
	 * handshake's server side (cookie keys, reply buckets), the buffer
	 * datagrams are built in, the session rules 1 to 8 look at
	 * (ferry__rx_sess_of), and whether the datagram being handled may
	 * be, or was, kept in place. */
	struct ferry__cidtab cids;
	struct ferry_hs_server hs;
	uint8_t *txbuf;
	uint32_t txbuf_len;
	struct ferry__rx_sess rx_scratch;
	bool rx_may_keep;
	bool rx_kept;
	/* While ferry__rx_dgram reads datagram rx_cur_id (rx_busy), a view
	 * of it freed (a request answered at once by its handler) does not
	 * hand the buffer back under the frame loop: the release waits for
	 * the end of the datagram (rx_deferred of them). */
	bool rx_busy;
	uint32_t rx_cur_id;
	uint32_t rx_deferred;

	bool destroying;
	bool rel_busy; /* some session awaits acks or owes one */
	/* Requests and responses queued since the last flush: the poll
	 * loop sends them before it handles the rest of a receive burst,
	 * and a datagram of many calls sends them every
	 * pipe_chunk (FERRY__PIPE_CHUNK, or FERRY__PIPE_CHUNK_BUSY when
	 * busy-polling; docs/wire.md, section 6). */
	uint32_t txq_new;
	uint32_t pipe_chunk;
	/* Congestion control of every session (ferry_ep_config.cc), and the
	 * earliest pacing time a session waits for (0: none), which bounds
	 * the poll loop's sleep. */
	uint8_t cc_algo;
	uint64_t cc_target_ns;
	uint64_t pace_ns;
	struct ferry_ep_stats st;
	/* ferry__stat_inc's last name (by address) and its counter. */
	const char *stat_last_name;
	uint64_t *stat_last;
	/* The counters as other threads see them (stats.h), and the name of
	 * the dataplane under any fault injection. */
	struct ferry__stats_pub pub;
	const char *dp_name;
};

/* msgbuf.c */
size_t ferry__pool_bytes(const struct ferry_ep_config *cfg);
int ferry__pool_init(struct ferry_endpoint *ep);
void ferry__pool_fini(struct ferry_endpoint *ep);
/* Free buffers of the classes that fit @len: the shared stacks and the
 * endpoint thread's own, so only that thread gets an exact answer. */
uint32_t ferry__pool_free(struct ferry_endpoint *ep, size_t len);
/* The size of the smallest class that holds @len bytes; 0 if none does. */
uint32_t ferry__pool_fit(const struct ferry_endpoint *ep, size_t len);
/* A view of @len bytes at @data, a request read in place inside received
 * datagram @pkt, crediting session @sess_id when it goes. */
struct ferry_msgbuf *ferry__view_get(struct ferry_endpoint *ep,
				     const struct ferry_dp_pkt *pkt,
				     uint32_t sess_id, const uint8_t *data,
				     uint32_t len);
void ferry__msgbuf_put(struct ferry_msgbuf *mb);
bool ferry__on_owner(const struct ferry_endpoint *ep);

/* endpoint.c */
/* Set a hook's context (@on: a hook is set), releasing the old one, and
 * @ctx at once when no hook takes it. */
void ferry__hook_set(bool on, void (*release)(void *), void *ctx,
		     void (**cur_release)(void *), void **cur_ctx);
struct ferry_session *ferry__sess_lookup(struct ferry_endpoint *ep, uint32_t id);
void ferry__sess_activate(struct ferry_session *s);
void ferry__sess_credit_release(struct ferry_endpoint *ep, uint32_t sess_id,
				uint32_t bytes);
uint64_t ferry__now_ns(void);
uint64_t ferry__unix_ns(void);

/* rx.c: every received datagram. */
void ferry__rx_dgram(struct ferry_endpoint *ep, const struct ferry_dp_pkt *pkt);

/* What a role's receive path did with a data frame. */
enum {
	RXD_TAKEN = 0,  /* new bytes, taken */
	RXD_DUP,        /* a copy of bytes taken before, or for a call
			 * that is over: acknowledged, not credited */
	RXD_NOT_TAKEN,  /* no buffer or call now: the datagram is not
			 * acknowledged, and the frame comes again */
};

/* connect.c: the handshake, both sides (docs/wire.md, section 4). */
void ferry__rx_handshake(struct ferry_endpoint *ep,
			 const struct ferry_dp_pkt *pkt);
int ferry__connect_start(struct ferry_session *s,
			 const struct ferry_connect_opts *opts);
void ferry__connect_end(struct ferry_session *s);
/* A half-open server session heard from its client: confirmed. */
void ferry__server_confirm(struct ferry_session *s);
/* Half-open server sessions by (client CID, address). */
int ferry__halfopen_init(struct ferry_endpoint *ep);
void ferry__halfopen_fini(struct ferry_endpoint *ep);
void ferry__halfopen_del(struct ferry_session *s);
void ferry__halfopen_timers(struct ferry_session *s);

/* session.c */
int ferry__sess_table_init(struct ferry_endpoint *ep);
/* The session rules 1 to 8 look at for CID table value @val. */
const struct ferry__rx_sess *ferry__rx_sess_of(void *ctx, uint32_t val);
struct ferry_session *ferry__sess_alloc(struct ferry_endpoint *ep, bool server);
/* @s may be free now (free and off the transmit list): make its slot one a
 * new session can take. */
void ferry__sess_freed(struct ferry_session *s);
void ferry__sess_end(struct ferry_session *s, int res, bool tell_peer);
void ferry__sess_unref(struct ferry_session *s);
void ferry__session_timers(struct ferry_session *s);
/* Run every session timer due by ep->now, and work out again the
 * deadlines of sessions that changed; ep->rel_busy says whether one falls
 * within 10 ms. */
void ferry__timers_run(struct ferry_endpoint *ep);
void ferry__timers_fini(struct ferry_endpoint *ep);

/* client.c */
void ferry__sess_start_waiting(struct ferry_session *s);
/* A RESPONSE frame on a client session: RXD_*. */
int ferry__client_rx_response(struct ferry_session *s,
			      const struct ferry_frame *f);
/* The connect succeeded: the session takes the terms of @a
 * (connect.c), then opens (client.c). */
void ferry__client_open(struct ferry_session *s,
			const struct ferry_hs_accept *a);
void ferry__client_opened(struct ferry_session *s);
/* The client's part of ferry__sess_end: every call ends with @res. */
void ferry__client_sess_end(struct ferry_session *s, int res,
			    bool was_connecting);
/* Timers of a connecting session (the connect's, and its calls'); the
 * deadlines of an open one's calls. */
void ferry__client_connecting_timers(struct ferry_session *s);
void ferry__client_call_timers(struct ferry_session *s);
/* A response being reassembled is dropped: the call fails with @err. */
void ferry__client_reasm_fail(struct ferry_call *c, int err);

/* server.c */
/* Run the admission hook on a new CONNECT's token: 0 (admitted, with what
 * the hook granted in ep->grant_*), or the hook's refusal, counted. */
int ferry__server_admit(struct ferry_endpoint *ep, const void *token,
			size_t token_len);
/* A new server session opens for @conn from @peer (keys set by the
 * caller). */
void ferry__server_sess_open(struct ferry_endpoint *ep,
			     struct ferry_session *s,
			     const struct ferry_hs_conn *conn,
			     const struct ferry_addr *peer);
/* An admitted CONNECT got no session: give the hook's grant back. */
void ferry__server_ungrant(struct ferry_endpoint *ep);
/* A REQUEST frame: RXD_*.  *@keep: the datagram is kept in place, as the
 * request. */
int ferry__server_rx_request(struct ferry_session *s,
			     const struct ferry_frame *f,
			     const struct ferry_dp_pkt *pkt, bool *keep);
/* A response (or error) given, on the endpoint's thread: queue it. */
void ferry__server_respond_local(struct ferry_call *c);
void ferry__server_call_acked(struct ferry_call *c);
/* A request being reassembled is dropped: it is answered with @err at
 * its turn. */
void ferry__server_reasm_fail(struct ferry_call *c, int err);
/* The server's part of ferry__sess_end: drop what no handler holds. */
void ferry__server_sess_end(struct ferry_session *s, int res);
/* Server timers: end the session if its token has expired. */
void ferry__server_timers(struct ferry_session *s);

/* listen.c */
int ferry__listen_init(struct ferry_endpoint *ep);
void ferry__listen_fini(struct ferry_endpoint *ep);
/* Whether the CONNECT datagram @pkt is within the admission rate limits of
 * its class (a token is taken from each bucket if so), judged before
 * anything is parsed; false is counted. */
bool ferry__listen_admit(struct ferry_endpoint *ep,
			 const struct ferry_dp_pkt *pkt);
/* The half-open server session of client CID @cid at @a, or NULL. */
struct ferry_session *ferry__peer_find(struct ferry_endpoint *ep,
				       const struct ferry_addr *a,
				       uint64_t cid);
/* A server session enters (peer and client_cid set) and leaves the
 * half-open table. */
void ferry__peer_add(struct ferry_session *s);
void ferry__peer_del(struct ferry_session *s);

/* reasm.c: reassembly of a message from fragments, both roles. */
/* Whether @f (one fragment, not a whole message) lies on the session's
 * fragment grid: 0, or -FERRY_EPROTO (counted in reasm_off_grid). */
int ferry__reasm_fits(struct ferry_session *s, const struct ferry_frame *f);
/* A buffer for @c's message of @msg_len bytes, charged to the session's
 * reassembly quota: 0; -EMSGSIZE if neither the pool nor the quota can
 * ever hold it; -ENOBUFS (pool) or -EAGAIN (quota) if not now. */
int ferry__reasm_start(struct ferry_session *s, struct ferry_call *c,
		       uint32_t msg_len, struct ferry_msgbuf **out);
/* A message whole in frame @f that is not read in place (it shares its
 * datagram): one buffer, one copy, complete at once (c->rx_got set); no
 * grid map, no timer, nothing left charged.  The answers of reasm_fits and
 * reasm_start: -FERRY_EPROTO, -EMSGSIZE, -ENOBUFS or -EAGAIN. */
int ferry__reasm_whole(struct ferry_session *s, struct ferry_call *c,
		       const struct ferry_frame *f, struct ferry_msgbuf **out);
/* Copy fragment @f into @mb, @c's reassembly buffer: 1 if the message is
 * now complete, 0 if not, 2 if @f repeats a fragment that arrived (a
 * retransmitted copy: nothing is written), -FERRY_EPROTO if @f is off the
 * grid (the message must then be dropped). */
int ferry__reasm_put(struct ferry_session *s, struct ferry_call *c,
		     struct ferry_msgbuf *mb, const struct ferry_frame *f);
/* @c's reassembly is over (complete, or dropped): release its charge. */
void ferry__reasm_end(struct ferry_session *s, struct ferry_call *c);
/* Drop reassemblies that made no progress for reasm_timeout_ms. */
void ferry__reasm_timers(struct ferry_session *s);

/* tx.c */
/* The dataplane is done with a transmit: drop its msgbuf reference. */
void ferry__tx_done(void *ctx, void *cookie);
/* Send what every active session owes, then flush the dataplane. */
void ferry__flush_sessions(struct ferry_endpoint *ep);
/* A CLOSE (@flags 0 or FERRY_W2_F_REPLY) with @code, sent now. */
void ferry__sess_send_close(struct ferry_session *s, uint8_t flags,
			    uint32_t code);
/* A handshake datagram, as it is, to @to; false if the dataplane is
 * full. */
bool ferry__send_raw(struct ferry_endpoint *ep, const struct ferry_addr *to,
		     const void *buf, uint32_t len);

/* reliable.c: the session's acknowledgement state and sent queue. */
/* Fresh windows and an empty sent queue (first pn @first_pn). */
void ferry__rel_reset(struct ferry_session *s, uint64_t first_pn);
/* @c is going away: forget its frames in flight. */
void ferry__rel_forget_call(struct ferry_session *s, struct ferry_call *c);
void ferry__rel_timers(struct ferry_session *s);
/* An ACK on @s newly acknowledged datagrams: its peer made progress. */
void ferry__rel_peer_progress(struct ferry_session *s);
bool ferry__rel_busy(const struct ferry_session *s);
/* The RTO now in force (for the credit PING's back-off). */
uint64_t ferry__rel_rto(const struct ferry_session *s);
/* Start the session's congestion control afresh (for its path frame). */
void ferry__rel_cc_reset(struct ferry_session *s);
/* Tell congestion control what the sent queue learnt since it held
 * @acked0 acknowledged and @lost0 lost bytes (@timeout: by an RTO). */
void ferry__rel_cc_feed(struct ferry_session *s, uint64_t acked0,
			uint64_t lost0, bool timeout);

/* Bytes of the message ahead of the payload: a request's trace block and
 * token table, a response's attribute block. */
static inline uint32_t call_pre_len(const struct ferry_call *c)
{
	return c->pre_mb ? c->pre_mb->len : 0;
}

/* Something about @s changed that may bring a timer of it nearer: its
 * deadline is worked out again at the next timer tick (session.c).  Cheap
 * enough for the fast path: once per session and tick it moves it to the
 * dirty list; after that it only tests. */
static inline void ferry__sess_touch(struct ferry_session *s)
{
	struct ferry__tlink *h = &s->ep->tdirty;

	if (s->tq == TQ_DIRTY)
		return;
	if (s->tq) {
		s->tl.prev->next = s->tl.next;
		s->tl.next->prev = s->tl.prev;
	}
	s->tl.next = h;
	s->tl.prev = h->prev;
	h->prev->next = &s->tl;
	h->prev = &s->tl;
	s->tq = TQ_DIRTY;
}

/* Calls come from the endpoint's free list, on its thread.  Inline: both
 * roles take and give one per call, on the fast path. */
static inline struct ferry_call *ferry__call_get(struct ferry_endpoint *ep)
{
	struct ferry_call *c = ep->call_free;

	if (!c)
		return NULL;
	ep->call_free = c->next;
	memset(c, 0, sizeof(*c));
	return c;
}

/* Give back the msgbufs a call still holds: its request, its response and
 * the prefix (token table, trace block) copied ahead of its request. */
static inline void ferry__call_put_bufs(struct ferry_call *c)
{
	if (c->req)
		ferry__msgbuf_put(c->req);
	if (c->resp)
		ferry__msgbuf_put(c->resp);
	if (c->pre_mb)
		ferry__msgbuf_put(c->pre_mb);
}

static inline void ferry__call_put(struct ferry_endpoint *ep,
				   struct ferry_call *c)
{
	c->state = CALL_FREE;
	c->next = ep->call_free;
	ep->call_free = c;
}

/* Queue @c's message for sending (a request, or a response). */
static inline void ferry__sess_txq_push(struct ferry_session *s,
					struct ferry_call *c)
{
	struct ferry_msgbuf *mb = c->is_server ? c->resp : c->req;

	c->next = NULL;
	c->tx_off = 0;
	if (s->txq_tail)
		s->txq_tail->next = c;
	else
		s->txq_head = c;
	s->txq_tail = c;
	/* Only messages of one datagram go before the rest of a receive
	 * burst: a large one (a train of datagrams) waits for the burst's
	 * end, as it did (1 MiB calls were 0.86 x sent mid-burst). */
	if (!mb || mb->len < s->path_frame)
		s->ep->txq_new++;
	ferry__sess_activate(s);
}

/* A spinlock whose waiter yields the CPU after a short spin: with more
 * threads than cores the holder may have been preempted, and spinning
 * through the rest of a time slice only delays it further. */
static inline void ferry__spin_lock(atomic_flag *f)
{
	unsigned n = 0;

	while (atomic_flag_test_and_set_explicit(f, memory_order_acquire)) {
		if (++n < 64)
			__builtin_ia32_pause();
		else
			sched_yield();
	}
}

/*
 * The cross-thread queues (xcalls, xfrees, xious): push under the lock,
 * then signal.  Only the first signal after a drain wakes the endpoint:
 * a producer that finds xpending already set knows the drain to come has
 * not yet taken the lists (it clears xpending under the lock, before it
 * takes them), so its entry will be seen.
 */
static inline void ferry__xlock(struct ferry_endpoint *ep)
{
	ferry__spin_lock(&ep->xlock);
}

static inline void ferry__xunlock_signal(struct ferry_endpoint *ep)
{
	atomic_flag_clear_explicit(&ep->xlock, memory_order_release);
	if (!atomic_exchange_explicit(&ep->xpending, true,
				      memory_order_acq_rel))
		ferry_endpoint_wake(ep);
}

/* End @c's span (once), if tracing. */
static inline void ferry__span_call_end(struct ferry_endpoint *ep,
					struct ferry_call *c, int res)
{
	if (ep->tops && c->span) {
		ep->tops->call_end(ep->tring, c->span, res);
		c->span = FERRY_SPAN_NONE;
	}
}

/* Start @c's span, if tracing: a child of its own context when it has one
 * (@tp/@ts, the text of a REQUEST's trace block or of the application's
 * ferry_call_opts; NULL/0 for none), else of its session's span. */
static inline void ferry__span_call_start(struct ferry_endpoint *ep,
					  struct ferry_call *c, const char *tp,
					  size_t tp_len, const char *ts,
					  size_t ts_len)
{
	if (ep->tops && c->s->span)
		c->span = ep->tops->call_start(ep->tring, c->s->span,
					       c->method, tp, tp_len, ts,
					       ts_len);
}

#endif /* FERRY_TRANSPORT_INTERNAL_H */

