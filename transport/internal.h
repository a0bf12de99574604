/* SPDX-License-Identifier: MIT */
/*
 * Transport internals shared by msgbuf.c, endpoint.c and session.c.
 */
#ifndef FERRY_TRANSPORT_INTERNAL_H
#define FERRY_TRANSPORT_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/ferry.h>

#include "../dataplane/dp.h"
#include "trace_hook.h"
#include "wire.h"

#define FERRY_RX_BURST 32

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
	/* MB_KIND_RX: the dataplane buffer, and the session to credit. */
	uint32_t rx_id;
	uint32_t rx_sess;
};

struct ferry_pool_cls {
	atomic_flag lock; /* guards free; buffers are freed from any thread */
	struct ferry_msgbuf *free;
	atomic_uint nfree; /* how many on the free stack */
	struct ferry_msgbuf *bufs;
	uint8_t *mem;
	uint32_t size;
	uint32_t count;
};

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
	uint32_t tx_off;   /* payload bytes handed to the dataplane */
	uint32_t seq0;     /* sequence number of the message's first packet */
	uint32_t unacked;  /* its packets sent and not yet acknowledged */
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
			    * reference on (iou.c) */
	bool abandoned;    /* client: its deadline passed; cont already ran */
	uint64_t deadline; /* client: monotonic ns, 0 for none */
	ferry_cont_fn cont;
	void *ctx;
	struct ferry_call *next;  /* transmit queue / wait queue / free */
	struct ferry_call *xnext; /* cross-thread respond queue */
};

/* --- deferred tokens (iou.c) -------------------------------------------- */

enum iou_state {
	IOU_FREE = 0,
	IOU_PROMISED, /* made; resolve or fail not yet taken in */
	IOU_HELD,     /* kept, but not named yet, or the call naming it
		       * is not all sent yet, or the session connecting */
	IOU_PUSHING,  /* its PUSH is queued or sent, until acknowledged */
	IOU_DEAD,     /* the session ended first; waiting for the result
		       * to come in through the cross-thread queue */
};

/*
 * A client's promise.  The endpoint's thread owns every field but @kept,
 * which the thread that keeps the promise sets (any thread), and @res and
 * @tok, which that thread writes before it hands the IOU over through the
 * endpoint's cross-thread queue.  @vc is the call object its PUSH travels
 * in: retransmission records point at calls.
 */
struct ferry_iou {
	struct ferry_call vc;
	struct ferry_endpoint *ep;
	struct ferry_session *s;
	uint64_t id;
	uint8_t state;
	bool named;    /* a call's table names it */
	bool orphan;   /* the call naming it ended before it was sent */
	_Atomic(bool) kept;
	int res;       /* 0: @tok holds the token; else the error to push */
	struct ferry_msgbuf *tok;
	struct ferry_call *named_by; /* that call, until it is sent */
	const struct ferry_iou_hooks *hooks;
	void *arg;
	struct ferry_iou *snext, *sprev; /* the session's promises */
	struct ferry_iou *next;          /* free list, cross-thread queue */
	/* The PUSH frame this one's record rides in: @vc of the first
	 * promise in it is the frame's call, and the rest follow here. */
	struct ferry_iou *bnext;
};

enum iou_ent_state { ENT_PENDING = 0, ENT_RESOLVED, ENT_REJECTED };

/* A server's record of one IOU on a session.  Endpoint thread only. */
struct ferry_iou_ent {
	struct ferry_session *s;
	uint64_t id;
	uint8_t state;
	bool early;    /* pushed before any call named it */
	int err;       /* ENT_REJECTED: why */
	struct ferry_msgbuf *tok; /* ENT_RESOLVED: the token */
	uint64_t deadline;        /* pending: reject then; early: drop */
	uint32_t refs;            /* calls naming it, and waits */
	struct ferry_iou_wait *waits;
	struct ferry_iou_ent *hnext;         /* hash chain, free list */
	struct ferry_iou_ent *snext, *sprev; /* the session's entries */
};

/* A wait on an entry (ferry_call_cap_wait), or the aggregate of a
 * ferry_call_caps_ready() and its members. */
struct ferry_iou_wait {
	struct ferry_iou_ent *ent;  /* member or single wait: its entry */
	struct ferry_iou_wait *next; /* entry's waits, free list */
	struct ferry_iou_wait *agg;  /* member: its aggregate */
	ferry_cap_fn fn;             /* single wait */
	ferry_caps_ready_fn rfn;     /* aggregate */
	void *ctx;
	uint32_t left;               /* aggregate: members not yet fired */
	bool done;                   /* aggregate: rfn has run */
};

/* --- sessions ------------------------------------------------------------ */

enum sess_state {
	SESS_FREE = 0,
	SESS_CONNECTING, /* client: CONNECT sent, no ACCEPT yet */
	SESS_OPEN,
	SESS_CLOSED,     /* ended; waiting for the last reference */
};

/* One data packet sent and not yet acknowledged: enough to send it again
 * (the message stays with its call until every packet is acknowledged). */
struct ferry_txpkt {
	struct ferry_call *c; /* NULL once acknowledged */
	uint32_t off;         /* payload offset in the message */
	uint32_t len;
	uint64_t sent_ns;     /* last (re)transmission */
	uint8_t retx;         /* times sent again */
	bool sacked;          /* the peer has it, beyond the cumulative ack */
};

/* Control frames a session owes its peer, sent at the next flush. */
#define SF_CONNECT (1u << 0)
#define SF_ACCEPT (1u << 1)
#define SF_CREDIT (1u << 2)
#define SF_PONG (1u << 5)
#define SF_PING (1u << 6)

/*
 * A client session's own state: client.c and iou_client.c.  A session is a
 * client or a server for its whole life (is_server); the other role's part
 * stays zero, which the shared code that glances at it relies on.
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
	/* The channel token for the CONNECT, a pool msgbuf lent to the
	 * dataplane as the frame's tail; freed once the connect ends. */
	struct ferry_msgbuf *token;

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
};

/* A session: what both roles share, then each role's own part. */
struct ferry_session {
	struct ferry_endpoint *ep;
	uint32_t id;      /* ours: generation << 16 | index */
	uint32_t peer_id; /* the peer's, 0 until known */
	struct ferry_addr peer;
	uint8_t state;
	bool is_server;
	bool active;      /* on the endpoint's transmit list */
	uint32_t refs;    /* user handle + server calls still unanswered */
	uint32_t pending; /* SF_* */
	int end_res;      /* why the session ended */
	ferry_span_t span; /* the session's span, or FERRY_SPAN_NONE */

	/* Negotiated: */
	uint32_t max_payload; /* per packet */
	uint32_t peer_max_msg;

	/* Calls by req_id & slot_mask. */
	struct ferry_call **slots;
	uint32_t slot_mask;

	/* Transmit queue of calls with bytes left to send. */
	struct ferry_call *txq_head, *txq_tail;
	uint32_t tx_seq;    /* next data packet's sequence number */
	uint32_t tx_credit; /* the peer lets us send seq < tx_credit */
	/* PUSHes to send (only a client has any; their own queue, ahead of
	 * nothing: they may exceed the credit by push_slack, half the
	 * server's window). */
	struct ferry_call *pushq_head, *pushq_tail;
	uint32_t push_slack;

	/* Receive credit we grant: released packets + window. */
	uint32_t rx_released;
	uint32_t rx_window;
	uint32_t credit_adv; /* last credit value sent */

	/* Reliability, sender side: packets in flight by seq & txr_mask. */
	struct ferry_txpkt *txr;
	uint32_t txr_mask;
	uint32_t snd_una;    /* oldest packet not acknowledged */
	uint32_t max_sacked; /* one past the highest SACKed seq */
	uint64_t srtt_ns, rttvar_ns, rto_ns;
	uint32_t rto_backoff;
	/* Receiver side: which seqs arrived, from rx_cum on. */
	uint64_t *rxmap;
	uint32_t rxmap_mask; /* bits - 1 */
	uint32_t rx_cum;     /* every seq below has arrived */
	uint32_t ack_adv;    /* last ack value sent */
	bool ack_now;        /* a gap or duplicate: acknowledge at once */
	uint64_t ack_due;    /* send an ack by then (0: nothing owed) */
	/* Liveness. */
	uint64_t last_rx_ns;
	uint64_t last_ping_ns;

	/* The trace context of the CONNECT: a client's own (sent in it), a
	 * server's from the client's. */
	char traceparent[FERRY_TRACEPARENT_LEN];
	bool have_traceparent;
	/* What the peer implements beyond the base of v1 (FERRY_FEAT_*: the
	 * FEATURES TLV of its ACCEPT, or of its CONNECT; 0 without one). */
	uint32_t peer_feat;
	void *user_data;

	struct ferry_session *next_active;

	struct ferry_sess_client cli;
	struct ferry_sess_server srv;
};

/* --- endpoint ------------------------------------------------------------ */

struct ferry_handler_ent {
	ferry_handler_fn fn;
	void *ctx;
	uint16_t method;
	bool used;
};

struct ferry_endpoint {
	struct ferry_ep_config cfg;
	const struct ferry_dp_ops *dp_ops;
	struct ferry_dp *dp;
	struct ferry_addr local;
	pthread_t owner;
	uint64_t now; /* monotonic ns, refreshed once per poll */
	uint64_t next_timer;

	struct ferry_pool_cls cls[FERRY_POOL_CLASSES];
	unsigned ncls;
	uint8_t *pool_mem;
	size_t pool_bytes;
	bool pool_mmapped; /* from mmap, not the dataplane */
	/* RX views: one per dataplane receive buffer. */
	struct ferry_msgbuf *views;
	struct ferry_msgbuf *view_free;

	struct ferry_session *sessions;
	struct ferry_call **slot_mem;
	struct ferry_txpkt *txr_mem;
	uint64_t *rxmap_mem;
	uint32_t nsessions;
	uint16_t sess_gen;
	struct ferry_session *active_head, *active_tail;

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
	/* Admission hook (NULL: admit all), run once per new CONNECT. */
	ferry_admit_fn admit_fn;
	ferry_admit_release_fn admit_release;
	void *admit_ctx;

	/* Deferred tokens (iou.c): client promises, server entries and
	 * waits, each a pool of cfg.iou_max; entries hashed by session and
	 * id; per call, its table's entries (FERRY_CAPS_MAX a call, indexed
	 * by the call's place in @calls); the push check. */
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

	bool destroying;
	bool rel_busy; /* some session awaits acks or owes one */
	struct ferry_ep_stats st;
};

/* msgbuf.c */
size_t ferry__pool_bytes(const struct ferry_ep_config *cfg);
int ferry__pool_init(struct ferry_endpoint *ep);
void ferry__pool_fini(struct ferry_endpoint *ep);
uint32_t ferry__pool_free(struct ferry_endpoint *ep, size_t len);
struct ferry_msgbuf *ferry__view_get(struct ferry_endpoint *ep,
				     const struct ferry_dp_pkt *pkt,
				     uint32_t sess_id);
void ferry__msgbuf_put(struct ferry_msgbuf *mb);
bool ferry__on_owner(const struct ferry_endpoint *ep);

/* endpoint.c */
/* Set a hook's context (@on: a hook is set), releasing the old one, and
 * @ctx at once when no hook takes it. */
void ferry__hook_set(bool on, void (*release)(void *), void *ctx,
		     void (**cur_release)(void *), void **cur_ctx);
struct ferry_session *ferry__sess_lookup(struct ferry_endpoint *ep, uint32_t id);
void ferry__sess_activate(struct ferry_session *s);
void ferry__sess_txq_push(struct ferry_session *s, struct ferry_call *c);
struct ferry_call *ferry__call_get(struct ferry_endpoint *ep);
void ferry__call_put(struct ferry_endpoint *ep, struct ferry_call *c);
void ferry__sess_credit_release(struct ferry_endpoint *ep, uint32_t sess_id,
				uint32_t npkts);
uint64_t ferry__now_ns(void);

/* reliable.c */
void ferry__rel_reset(struct ferry_session *s);
enum rel_rx { REL_NEW, REL_DUP, REL_WINDOW };
enum rel_rx ferry__rel_rx_check(struct ferry_session *s, uint32_t seq);
void ferry__rel_rx_commit(struct ferry_session *s, uint32_t seq);
void ferry__rel_sent(struct ferry_session *s, uint32_t seq,
		     struct ferry_call *c, uint32_t off, uint32_t len);
void ferry__rel_on_ack(struct ferry_session *s, uint32_t ack,
		       uint64_t sack);
void ferry__rel_forget_call(struct ferry_session *s, struct ferry_call *c);
uint64_t ferry__rel_sack(const struct ferry_session *s);
bool ferry__rel_can_send(const struct ferry_session *s);
void ferry__rel_timers(struct ferry_session *s);
bool ferry__rel_busy(const struct ferry_session *s);

/* endpoint.c, for reliable.c */
bool ferry__emit_data(struct ferry_session *s, struct ferry_call *c,
		      uint32_t seq, uint32_t off, uint32_t len);
void ferry__server_call_acked(struct ferry_call *c);

/* iou.c; the defaults ferry_ep_config_init() gives (docs/api.md). */
#define FERRY__IOU_TIMEOUT_MS 10000 /* a slow authority, not a lost one */
#define FERRY__IOU_EARLY_MAX 64
#define FERRY__IOU_EARLY_BYTES (64u << 10)
#define FERRY__IOU_EARLY_MS 1000
int ferry__iou_init(struct ferry_endpoint *ep);
void ferry__iou_fini(struct ferry_endpoint *ep);
/* Client: a call names the IOU entries of @caps; the call is all sent;
 * the call ends. */
void ferry__iou_name(struct ferry_call *c, const struct ferry_cap *caps,
		     unsigned ncaps);
void ferry__iou_call_sent(struct ferry_session *s, struct ferry_call *c);
void ferry__iou_call_end(struct ferry_session *s, struct ferry_call *c);
void ferry__iou_kept(struct ferry_iou *iou);
void ferry__iou_pack(struct ferry_session *s);
uint32_t ferry__iou_body(struct ferry_call *vc, uint8_t *out, size_t cap);
void ferry__iou_acked(struct ferry_call *vc);
/* Server: a complete request's IOU entries (0, or -FERRY_EIOU with no
 * reference kept); the call no longer needs them; a PUSH arrived. */
int ferry__iou_claim(struct ferry_session *s, struct ferry_call *c);
void ferry__iou_unclaim(struct ferry_call *c);
void ferry__iou_rx_push(struct ferry_session *s, const struct ferry_frame *f);
/* Both: the session ended; a timer tick. */
void ferry__iou_sess_end(struct ferry_session *s);
void ferry__iou_timers(struct ferry_session *s);

/* session.c */
struct ferry_session *ferry__sess_alloc(struct ferry_endpoint *ep, bool server);
void ferry__sess_end(struct ferry_session *s, int res, bool tell_peer);
void ferry__sess_unref(struct ferry_session *s);
void ferry__sess_send_close(struct ferry_session *s, uint16_t flags);
void ferry__sess_start_waiting(struct ferry_session *s);
/* ACCEPT, RESPONSE or ERROR on a client session; false if a response
 * packet could not be taken now (no buffer). */
bool ferry__client_rx(struct ferry_session *s, const struct ferry_frame *f);
void ferry__session_timers(struct ferry_session *s);

/* Bytes of the message ahead of the payload: a request's trace block and
 * token table, a response's attribute block. */
static inline uint32_t call_pre_len(const struct ferry_call *c)
{
	return c->pre_mb ? c->pre_mb->len : 0;
}

/* The next call number: req_id 0 is never used, so wrapping skips it. */
static inline uint32_t req_next(uint32_t r)
{
	return r + 1 ? r + 1 : 1;
}

static inline bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
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
