/* SPDX-License-Identifier: MIT */
/*
 * Transport internals: deferred tokens (IOUs).  A client's promises and
 * their PUSH frames live in iou_client.c, a server's table of IOUs and the
 * waits on them in iou_server.c (include/ferry/iou.h; docs/wire.md,
 * section 8).
 */
#ifndef FERRY_TRANSPORT_IOU_INTERNAL_H
#define FERRY_TRANSPORT_IOU_INTERNAL_H

#include "session_internal.h"
#include "wire.h"

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

/* The defaults ferry_ep_config_init() gives (docs/api.md). */
#define FERRY__IOU_TIMEOUT_MS 10000 /* a slow authority, not a lost one */
#define FERRY__IOU_EARLY_MAX 64
#define FERRY__IOU_EARLY_BYTES (64u << 10)
#define FERRY__IOU_EARLY_MS 1000

/* iou_client.c: a call names the IOU entries of @caps; the call is all
 * sent; the call ends; a promise kept; the PUSH frames; the session
 * ended. */
void ferry__iou_name(struct ferry_call *c, const struct ferry_cap *caps,
		     unsigned ncaps);
void ferry__iou_call_sent(struct ferry_session *s, struct ferry_call *c);
void ferry__iou_call_end(struct ferry_session *s, struct ferry_call *c);
void ferry__iou_kept(struct ferry_iou *iou);
void ferry__iou_pack(struct ferry_session *s);
uint32_t ferry__iou_body(struct ferry_call *vc, uint8_t *out, size_t cap);
void ferry__iou_acked(struct ferry_call *vc);
void ferry__iou_client_sess_end(struct ferry_session *s);

/* iou_server.c: the endpoint's IOU pools (both roles'); a complete
 * request's IOU entries (0, or -FERRY_EIOU with no reference kept); the
 * call no longer needs them; a PUSH arrived; the session ended; a timer
 * tick. */
int ferry__iou_init(struct ferry_endpoint *ep);
void ferry__iou_fini(struct ferry_endpoint *ep);
int ferry__iou_claim(struct ferry_session *s, struct ferry_call *c);
void ferry__iou_unclaim(struct ferry_call *c);
void ferry__iou_rx_push(struct ferry_session *s, const struct ferry_frame *f);
void ferry__iou_server_sess_end(struct ferry_session *s);
void ferry__iou_timers(struct ferry_session *s);

#endif /* FERRY_TRANSPORT_IOU_INTERNAL_H */
