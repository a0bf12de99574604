/* SPDX-License-Identifier: MIT */
/*
 * The send side of wire v2 reliability (docs/wire.md, 5.1 and 5.3): a
 * record of every datagram sent and not yet acknowledged or judged lost,
 * with the frames it carried; ACK processing; loss detection by packet
 * and time thresholds and by retransmission timeout; the RTT estimator;
 * and the queue of lost frames waiting to go out again.
 *
 * The datagram is the unit of acknowledgement, the frame the unit of
 * retransmission: a lost datagram's frames go back on the lost queue and
 * leave in new datagrams under new packet numbers, never the same pn
 * twice.  A lost datagram's record is retired at once, so a frame is in
 * at most one live record or on the lost queue, never both: its owner
 * can count a message's frames outstanding with one counter.  An ACK that
 * arrives for a datagram already judged lost finds nothing (a spurious
 * retransmission, which the receiver drops as a duplicate).
 *
 * What a frame is, beyond its place in a message, is the owner's: the
 * queue keeps an opaque object pointer, offset, length and kind, and
 * tells the owner through a callback when the peer has it.
 *
 * Nothing here allocates on the way: the rings (sizes powers of two) are
 * the caller's (ferry__sentq_init), or come from a pool of rings of every
 * size made once for many queues (ferry__sentq_init_pooled).  A pooled
 * queue holds rings only while it holds something (a datagram in flight,
 * a lost frame, a datagram being built), starting small and doubling as
 * what it holds outgrows them, up to the pool's largest: its memory is
 * what it has in flight, not the most it could.  Times are monotonic
 * nanoseconds.
 */
#ifndef FERRY_TRANSPORT_SENTQ_H
#define FERRY_TRANSPORT_SENTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "wire2.h"

#define FERRY_SENTQ_RTO_MIN_NS (4ull * 1000000)   /* above the VM's wake jitter */
#define FERRY_SENTQ_RTO_INIT_NS (20ull * 1000000) /* before an RTT sample */
#define FERRY_SENTQ_RTO_MAX_NS (1000ull * 1000000)
#define FERRY_SENTQ_PKT_THRESH 3 /* later datagrams acknowledged: lost */
#define FERRY_SENTQ_BACKOFF_MAX 6
/* The longest a retransmission timeout is held back for a peer that is
 * still working through what was sent before (ferry__sentq_timer). */
#define FERRY_SENTQ_HOLD_MAX_NS (4000ull * 1000000)

struct ferry__sent_frame {
	void *obj;      /* the owner's; NULL once forgotten */
	uint32_t off;
	uint32_t len;
	uint8_t kind;   /* the owner's */
};

struct ferry__sent_dg {
	uint64_t sent_ns;
	uint32_t frame0;  /* its first frame's index in the frame ring */
	uint16_t nframes;
	bool live;        /* ack-eliciting, not yet acknowledged or lost */
	uint32_t bytes;   /* the datagram's size, for a congestion window */
};

/* The smallest pooled rings: 8 datagrams, 16 frames. */
#define FERRY_SENTQ_POOL_MIN_LOG2 3
#define FERRY_SENTQ_POOL_MAX_LOG2 10
#define FERRY_SENTQ_POOL_CLASSES                                               \
	(FERRY_SENTQ_POOL_MAX_LOG2 - FERRY_SENTQ_POOL_MIN_LOG2 + 1)

/*
 * Rings for @nq queues, each of which holds at most one set at a time: a
 * class per size, each an address range for nq sets that the kernel backs
 * only as far as sets are handed out (so the range costs nothing until
 * used), and a stack of the sets given back, reused first.  A set of class
 * 2^k records: the datagram ring, then the frame and lost rings of twice
 * as many frames.  Only the owner's thread.
 */
struct ferry__sentq_pool {
	unsigned max_log2;
	uint32_t nq;
	struct ferry__sentq_cls {
		uint8_t *mem;
		size_t size, len; /* bytes per set; of the range */
		uint32_t used;    /* sets ever handed out */
		void *free;       /* sets given back, through their first bytes */
	} cls[FERRY_SENTQ_POOL_CLASSES];
	uint64_t held_bytes; /* in sets held by queues now */
};

/* A pool for @nq queues whose largest rings hold 2^@max_log2 datagrams
 * (FERRY_SENTQ_POOL_MIN_LOG2 .. MAX_LOG2).  Returns 0, -EINVAL or
 * -ENOMEM. */
int ferry__sentq_pool_init(struct ferry__sentq_pool *p, uint32_t nq,
			   unsigned max_log2);
void ferry__sentq_pool_fini(struct ferry__sentq_pool *p);

struct ferry__sentq {
	struct ferry__sent_dg *dg;  /* by pn & dg_mask; NULL: none held */
	uint32_t dg_mask;
	struct ferry__sent_frame *fr; /* frames of records, in send order */
	uint32_t fr_mask;
	uint32_t fr_head, fr_tail;  /* next to write; oldest held */
	struct ferry__sent_frame *lost; /* lost frames, FIFO */
	uint32_t lost_mask;
	uint32_t lost_head, lost_tail;
	uint64_t next_pn;  /* the pn of the datagram being built */
	uint64_t una;      /* the oldest pn whose record is held */
	uint64_t largest_acked; /* + 1; 0 before any ACK */
	uint32_t building; /* frames added to the datagram being built */
	uint32_t in_flight; /* live datagrams */
	uint64_t bytes_in_flight;
	uint64_t srtt_ns, rttvar_ns, rto_ns, latest_rtt_ns;
	uint64_t min_rtt_ns; /* the smallest sample, before ack delay */
	uint32_t backoff;  /* timeouts without progress */
	uint64_t hold_ns;  /* the RTO is held back until then (0: not) */
	/* The latest send time among the datagrams the last ACK newly
	 * acknowledged (0: none). */
	uint64_t acked_sent_ns;
	/* Counters for the endpoint's statistics and for congestion
	 * control: datagram bytes acknowledged and judged lost so far, and
	 * the RTT sample the last ACK gave (0: none). */
	uint64_t lost_dgrams, lost_frames, rto_fired, rto_held;
	uint64_t acked_bytes, lost_bytes;
	uint64_t last_sample_ns;
	/* Pooled: where the rings come from, and the class held (log2 of
	 * the datagram ring). */
	struct ferry__sentq_pool *pool;
	uint8_t log2;
};

/*
 * ferry__sentq_init - an empty queue over @dg (2^@dg_log2 records), @fr and
 * @lost (2^@fr_log2 frames each).  A datagram may be built only while fewer
 * than 2^@dg_log2 pns are held, which the caller sets at or below the
 * peer's replay window.  The first pn is @first_pn (the server's first
 * short-header pn is 1: its ACCEPT was 0).
 */
void ferry__sentq_init(struct ferry__sentq *q, struct ferry__sent_dg *dg,
		       unsigned dg_log2, struct ferry__sent_frame *fr,
		       struct ferry__sent_frame *lost, unsigned fr_log2,
		       uint64_t first_pn);

/* An empty queue whose rings come from @p when it needs them (and go back
 * by ferry__sentq_release), first pn @first_pn.  Its first rings are the
 * smallest; ferry__sentq_room() says yes until they are the pool's largest
 * and full. */
void ferry__sentq_init_pooled(struct ferry__sentq *q,
			      struct ferry__sentq_pool *p, uint64_t first_pn);

/* A pooled queue that holds nothing gives its rings back (true); else
 * nothing happens (false). */
bool ferry__sentq_release(struct ferry__sentq *q);

/* A pooled queue's rings go back whatever they hold (the queue is being
 * dropped: its session is being made anew). */
void ferry__sentq_drop(struct ferry__sentq *q);

/* May a datagram be started (a record slot free, and room for at least
 * one frame)? */
bool ferry__sentq_room(const struct ferry__sentq *q);

/*
 * ferry__sentq_add - record that the datagram being built carries an
 * ack-eliciting frame.  Returns false, recording nothing, when the frame
 * ring is full: the datagram must close without it.
 */
bool ferry__sentq_add(struct ferry__sentq *q, void *obj, uint8_t kind,
		      uint32_t off, uint32_t len);

/*
 * ferry__sentq_commit - the datagram being built went out at @now, @bytes
 * long: record it (live when it carried a frame from ferry__sentq_add())
 * and return its pn.  Every datagram sent takes a pn through here, ACK-only
 * ones too, even with every record slot held (ferry__sentq_room() false):
 * then the oldest datagram is declared lost to free its slot.
 */
uint64_t ferry__sentq_commit(struct ferry__sentq *q, uint64_t now,
			     uint32_t bytes);

/* The datagram being built was not sent: forget the frames added. */
void ferry__sentq_abort(struct ferry__sentq *q);

/* The datagram just committed never left (the dataplane refused it): its
 * frames go on the lost queue at once, to leave in the next datagram. */
void ferry__sentq_unsent(struct ferry__sentq *q);

typedef void (*ferry__sent_acked_fn)(void *ctx,
				     const struct ferry__sent_frame *f);

/*
 * ferry__sentq_on_ack - the peer acknowledges @a (already decoded from an
 * authenticated datagram) at @now.  Calls @acked for every frame of every
 * live datagram it covers (frames whose object was forgotten excepted),
 * takes an RTT sample from its largest when that is newly acknowledged,
 * then judges lost what the packet and time thresholds say: their frames
 * go on the lost queue.  Returns the number of datagrams newly
 * acknowledged, or -FERRY_W2_E_ACK_BELOW_ZERO / -EPROTO for an ACK of a pn
 * never sent (a protocol error: the session must end).
 */
int ferry__sentq_on_ack(struct ferry__sentq *q, const struct ferry_w2_ack *a,
			uint64_t now, ferry__sent_acked_fn acked, void *ctx);

/*
 * What a session's peer endpoint showed on all the sessions to it: the
 * latest send time among the datagrams it acknowledged, and when it last
 * acknowledged anything new.  A peer reads its datagrams from one receive
 * queue, in order; while it acknowledges datagrams but none sent after
 * the one waiting here, that one is most likely still in its queue, not
 * lost (docs/wire.md, 5.3).
 */
struct ferry__sentq_peer {
	uint64_t acked_sent_ns;
	uint64_t progress_ns;
	/* When this end last had read everything it had received: acks of
	 * the datagram may wait in its own receive queue until then. */
	uint64_t read_up_ns;
};

/*
 * ferry__sentq_timer - judge lost what has waited too long at @now: on a
 * retransmission timeout, the oldest live datagram and every live one
 * below the largest acknowledged; and whatever the time threshold now
 * condemns.  A timeout is held back for another RTO instead (counted in
 * rto_held, no back-off) while @peer (may be NULL: nothing known) is
 * still working through datagrams sent before the oldest, for at most
 * FERRY_SENTQ_HOLD_MAX_NS after it was sent.  Returns the number of
 * datagrams judged lost.
 */
uint32_t ferry__sentq_timer(struct ferry__sentq *q, uint64_t now,
			    const struct ferry__sentq_peer *peer);

/* When ferry__sentq_timer() next has something to do (0: nothing live). */
uint64_t ferry__sentq_deadline(const struct ferry__sentq *q);

/* The retransmission timeout now in force, back-off included. */
uint64_t ferry__sentq_rto(const struct ferry__sentq *q);

/* The handshake's round trip, @rtt_ns, as the first RTT sample, when no
 * sample was taken yet (RFC 9002, section 5.2: a session's first RTO
 * comes from its own path, not from FERRY_SENTQ_RTO_INIT_NS). */
void ferry__sentq_seed_rtt(struct ferry__sentq *q, uint64_t rtt_ns);

/*
 * The oldest lost frame waiting to go out again (NULL: none).  Once the
 * owner has put it in the datagram being built, ferry__sentq_add_lost()
 * moves it into that datagram's record (false, moving nothing, when the
 * frame ring is full: the datagram must close); if its object no longer
 * needs it, ferry__sentq_lost_pop() drops it.  Lost frames go out before
 * new ones: ferry__sentq_add() keeps room for every frame on the lost
 * queue, so a new frame may be refused while lost ones wait.
 */
const struct ferry__sent_frame *
ferry__sentq_lost_peek(const struct ferry__sentq *q);
bool ferry__sentq_add_lost(struct ferry__sentq *q);
void ferry__sentq_lost_pop(struct ferry__sentq *q);

/*
 * ferry__sentq_forget - @obj is going away: no callback or lost frame will
 * name it again.  Returns how many of its frames were outstanding (live
 * or lost), which the owner's counter should drop by.
 */
uint32_t ferry__sentq_forget(struct ferry__sentq *q, const void *obj);

/* The free-running index of the frame added last (ferry__sentq_add or
 * ferry__sentq_add_lost): stable while that frame is held, rings grown or
 * not, for ferry__sentq_forget_at(). */
static inline uint32_t ferry__sentq_last_frame(const struct ferry__sentq *q)
{
	return q->fr_head + q->building - 1;
}

/*
 * ferry__sentq_forget_at - forget @obj's one outstanding frame, which the
 * owner saw added at index @fr (ferry__sentq_last_frame) into datagram
 * @pn: true if that record is still @obj's, in @pn's live datagram, and is
 * now forgotten.  False (nothing changed) if it has moved (lost, sent
 * again, the datagram acknowledged): then ferry__sentq_forget_range().
 * Only for an owner with exactly one frame outstanding.
 */
bool ferry__sentq_forget_at(struct ferry__sentq *q, const void *obj,
			    uint64_t pn, uint32_t fr);

/*
 * ferry__sentq_forget_range - ferry__sentq_forget() for an owner that knows
 * every live frame of @obj lies in a datagram numbered @lo .. @hi: only
 * those are looked at (and the lost queue), not every datagram in flight.
 */
uint32_t ferry__sentq_forget_range(struct ferry__sentq *q, const void *obj,
				   uint64_t lo, uint64_t hi);

#endif /* FERRY_TRANSPORT_SENTQ_H */
