/* SPDX-License-Identifier: MIT */
/*
 * The send side of wire v2 reliability: see sentq.h.
 *
 * RTT estimation is RFC 6298's (v1's), with the peer's ack_delay taken
 * off a sample when that leaves it positive.  Loss detection is QUIC's
 * (RFC 9002): a live datagram below the largest acknowledged is lost when
 * FERRY_SENTQ_PKT_THRESH later ones are acknowledged, or when it was sent
 * more than 9/8 of max(srtt, latest RTT) ago; and on a retransmission
 * timeout without any acknowledgement, the oldest is lost with every live
 * one below the largest acknowledged (v1's rule: a run the receiver
 * dropped whole goes again at once).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "transport/sentq.h"

void ferry__sentq_init(struct ferry__sentq *q, struct ferry__sent_dg *dg,
		       unsigned dg_log2, struct ferry__sent_frame *fr,
		       struct ferry__sent_frame *lost, unsigned fr_log2,
		       uint64_t first_pn)
{
	memset(q, 0, sizeof(*q));
	q->dg = dg;
	q->dg_mask = (1u << dg_log2) - 1;
	q->fr = fr;
	q->lost = lost;
	q->fr_mask = q->lost_mask = (1u << fr_log2) - 1;
	q->next_pn = q->una = first_pn;
	q->rto_ns = FERRY_SENTQ_RTO_INIT_NS;
	memset(dg, 0, ((size_t)q->dg_mask + 1) * sizeof(*dg));
}

/* --- pooled rings -------------------------------------------------------- */

static size_t set_size(unsigned log2)
{
	return ((size_t)1 << log2) * sizeof(struct ferry__sent_dg) +
	       ((size_t)2 << log2) * 2 * sizeof(struct ferry__sent_frame);
}

int ferry__sentq_pool_init(struct ferry__sentq_pool *p, uint32_t nq,
			   unsigned max_log2)
{
	memset(p, 0, sizeof(*p));
	if (max_log2 < FERRY_SENTQ_POOL_MIN_LOG2 ||
	    max_log2 > FERRY_SENTQ_POOL_MAX_LOG2 || nq == 0)
		return -EINVAL;
	p->max_log2 = max_log2;
	p->nq = nq;
	for (unsigned k = FERRY_SENTQ_POOL_MIN_LOG2; k <= max_log2; k++) {
		struct ferry__sentq_cls *c =
			&p->cls[k - FERRY_SENTQ_POOL_MIN_LOG2];
		void *m;

		c->size = set_size(k);
		c->len = c->size * nq;
		/* Reserved, not committed: pages come as sets are used. */
		m = mmap(NULL, c->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED) {
			ferry__sentq_pool_fini(p);
			return -ENOMEM;
		}
		c->mem = m;
	}
	return 0;
}

void ferry__sentq_pool_fini(struct ferry__sentq_pool *p)
{
	for (unsigned i = 0; i < FERRY_SENTQ_POOL_CLASSES; i++)
		if (p->cls[i].mem)
			munmap(p->cls[i].mem, p->cls[i].len);
	memset(p, 0, sizeof(*p));
}

/* A set of class @log2: never none, as no queue holds two. */
static uint8_t *set_get(struct ferry__sentq_pool *p, unsigned log2)
{
	struct ferry__sentq_cls *c = &p->cls[log2 - FERRY_SENTQ_POOL_MIN_LOG2];
	uint8_t *m = c->free;

	if (m)
		memcpy(&c->free, m, sizeof(void *));
	else
		m = c->mem + c->size * c->used++;
	p->held_bytes += c->size;
	return m;
}

static void set_put(struct ferry__sentq_pool *p, unsigned log2, void *m)
{
	struct ferry__sentq_cls *c = &p->cls[log2 - FERRY_SENTQ_POOL_MIN_LOG2];

	memcpy(m, &c->free, sizeof(void *));
	c->free = m;
	p->held_bytes -= c->size;
}

/* Point @q's rings at set @m of class @log2. */
static void rings_set(struct ferry__sentq *q, uint8_t *m, unsigned log2)
{
	q->log2 = (uint8_t)log2;
	q->dg = (struct ferry__sent_dg *)m;
	q->fr = (struct ferry__sent_frame *)(m + ((size_t)1 << log2) *
						     sizeof(*q->dg));
	q->lost = q->fr + ((size_t)2 << log2);
	q->dg_mask = (1u << log2) - 1;
	q->fr_mask = q->lost_mask = (2u << log2) - 1;
}

void ferry__sentq_init_pooled(struct ferry__sentq *q,
			      struct ferry__sentq_pool *p, uint64_t first_pn)
{
	memset(q, 0, sizeof(*q));
	q->pool = p;
	/* No rings yet, but the smallest's masks: ferry__sentq_room() says
	 * yes, and the first frame or datagram takes them. */
	q->dg_mask = (1u << FERRY_SENTQ_POOL_MIN_LOG2) - 1;
	q->fr_mask = q->lost_mask = (2u << FERRY_SENTQ_POOL_MIN_LOG2) - 1;
	q->next_pn = q->una = first_pn;
	q->rto_ns = FERRY_SENTQ_RTO_INIT_NS;
}

/* A pooled queue without rings takes the smallest. */
static void rings_ensure(struct ferry__sentq *q)
{
	uint8_t *m;

	if (q->dg || !q->pool)
		return;
	m = set_get(q->pool, FERRY_SENTQ_POOL_MIN_LOG2);
	rings_set(q, m, FERRY_SENTQ_POOL_MIN_LOG2);
	memset(q->dg, 0, ((size_t)q->dg_mask + 1) * sizeof(*q->dg));
}

/* Move a pooled queue to rings twice as large, every record and frame at
 * its place for the new masks (pns and frame indexes run freely; a ring
 * only masks them).  False at the pool's largest. */
static bool rings_grow(struct ferry__sentq *q)
{
	struct ferry__sent_dg *odg = q->dg;
	struct ferry__sent_frame *ofr = q->fr, *olost = q->lost;
	uint32_t odm = q->dg_mask, ofm = q->fr_mask;
	unsigned olog2 = q->log2;
	uint8_t *m;

	if (!q->pool || !q->dg || olog2 >= q->pool->max_log2)
		return false;
	m = set_get(q->pool, olog2 + 1);
	rings_set(q, m, olog2 + 1);
	memset(q->dg, 0, ((size_t)q->dg_mask + 1) * sizeof(*q->dg));
	for (uint64_t pn = q->una; pn != q->next_pn; pn++)
		q->dg[pn & q->dg_mask] = odg[pn & odm];
	for (uint32_t i = q->fr_tail; i != q->fr_head + q->building; i++)
		q->fr[i & q->fr_mask] = ofr[i & ofm];
	for (uint32_t i = q->lost_tail; i != q->lost_head; i++)
		q->lost[i & q->lost_mask] = olost[i & ofm];
	set_put(q->pool, olog2, odg);
	return true;
}

bool ferry__sentq_release(struct ferry__sentq *q)
{
	if (!q->pool || !q->dg || q->una != q->next_pn || q->building ||
	    q->lost_tail != q->lost_head || q->fr_tail != q->fr_head)
		return false;
	set_put(q->pool, q->log2, q->dg);
	q->dg = NULL;
	q->fr = q->lost = NULL;
	q->dg_mask = (1u << FERRY_SENTQ_POOL_MIN_LOG2) - 1;
	q->fr_mask = q->lost_mask = (2u << FERRY_SENTQ_POOL_MIN_LOG2) - 1;
	/* Free-running indexes start again at the smallest rings. */
	q->fr_head = q->fr_tail = q->lost_head = q->lost_tail = 0;
	return true;
}

void ferry__sentq_drop(struct ferry__sentq *q)
{
	if (q->pool && q->dg)
		set_put(q->pool, q->log2, q->dg);
	q->dg = NULL;
}

/* --- the queue ------------------------------------------------------------- */

bool ferry__sentq_room(const struct ferry__sentq *q)
{
	return q->next_pn - q->una <= q->dg_mask &&
	       q->fr_head - q->fr_tail <= q->fr_mask;
}

bool ferry__sentq_add(struct ferry__sentq *q, void *obj, uint8_t kind,
		      uint32_t off, uint32_t len)
{
	struct ferry__sent_frame *f;

	/* Frames held in the ring and frames waiting on the lost queue
	 * together fit in the ring: the lost queue, as large, can then
	 * always take every live frame when their datagrams are lost. */
	rings_ensure(q);
	while (q->fr_head + q->building - q->fr_tail +
		       (q->lost_head - q->lost_tail) > q->fr_mask)
		if (!rings_grow(q))
			return false;
	if (q->building == UINT16_MAX)
		return false;
	f = &q->fr[(q->fr_head + q->building) & q->fr_mask];
	f->obj = obj;
	f->kind = kind;
	f->off = off;
	f->len = len;
	q->building++;
	return true;
}

bool ferry__sentq_add_lost(struct ferry__sentq *q)
{
	if (q->lost_tail != q->lost_head &&
	    q->fr_head + q->building - q->fr_tail > q->fr_mask)
		rings_grow(q);
	if (q->lost_tail == q->lost_head ||
	    q->fr_head + q->building - q->fr_tail > q->fr_mask ||
	    q->building == UINT16_MAX)
		return false;
	q->fr[(q->fr_head + q->building) & q->fr_mask] =
		q->lost[q->lost_tail++ & q->lost_mask];
	q->building++;
	return true;
}

/* Hand back the record slots and frame slots of retired datagrams at the
 * front. */
static void advance_una(struct ferry__sentq *q)
{
	while (q->una != q->next_pn && !q->dg[q->una & q->dg_mask].live)
		q->una++;
	q->fr_tail = q->una == q->next_pn ? q->fr_head
					  : q->dg[q->una & q->dg_mask].frame0;
}

void ferry__sentq_abort(struct ferry__sentq *q)
{
	q->building = 0;
}

static void retire(struct ferry__sentq *q, struct ferry__sent_dg *d)
{
	d->live = false;
	q->in_flight--;
	q->bytes_in_flight -= d->bytes;
}

/* Datagram @d is lost: its frames that still matter go on the lost queue
 * (which has room: it never holds more than the frame ring). */
static void declare_lost(struct ferry__sentq *q, struct ferry__sent_dg *d)
{
	for (uint32_t i = 0; i < d->nframes; i++) {
		const struct ferry__sent_frame *f =
			&q->fr[(d->frame0 + i) & q->fr_mask];

		if (!f->obj)
			continue;
		q->lost[q->lost_head++ & q->lost_mask] = *f;
		q->lost_frames++;
	}
	q->lost_bytes += d->bytes;
	retire(q, d);
	q->lost_dgrams++;
}

uint64_t ferry__sentq_commit(struct ferry__sentq *q, uint64_t now,
			     uint32_t bytes)
{
	uint64_t pn;
	struct ferry__sent_dg *d;

	/* A datagram with nothing ack-eliciting (an ACK, a CREDIT) goes
	 * even when every record slot is held, and its pn's slot is then
	 * the oldest record's.  That datagram has waited a whole ring of
	 * datagrams, far past the packet threshold: it is lost, and its
	 * frames go on the lost queue, to be sent again.  Overwriting its
	 * record instead would forget them, and a call would wait for a
	 * fragment nobody sends any more. */
	rings_ensure(q);
	if (q->next_pn - q->una > q->dg_mask) {
		d = &q->dg[q->una & q->dg_mask];
		if (d->live)
			declare_lost(q, d);
		advance_una(q);
	}
	pn = q->next_pn++;
	d = &q->dg[pn & q->dg_mask];
	d->sent_ns = now;
	d->frame0 = q->fr_head;
	d->nframes = (uint16_t)q->building;
	d->bytes = bytes;
	d->live = q->building != 0;
	q->fr_head += q->building;
	q->building = 0;
	if (d->live) {
		q->in_flight++;
		q->bytes_in_flight += bytes;
	}
	advance_una(q);
	/* Full: ferry__sentq_room() would say no to the next datagram;
	 * pooled rings grow instead while they can (at the largest, the
	 * check above makes room for a datagram that goes anyway). */
	if (q->next_pn - q->una > q->dg_mask ||
	    q->fr_head - q->fr_tail > q->fr_mask)
		rings_grow(q);
	return pn;
}

static void rtt_sample(struct ferry__sentq *q, uint64_t r, uint64_t delay)
{
	/* The peer's hold time comes off only as far as the sample stays at
	 * or above the smallest round trip seen (RFC 9002, 5.3): each end
	 * reads its clock once per receive burst and once per poll, so a
	 * report can exceed the hold, and unchecked such samples fall to
	 * nothing, and a congestion controller's base RTT with them. */
	if (!q->min_rtt_ns || r < q->min_rtt_ns)
		q->min_rtt_ns = r;
	if (r >= q->min_rtt_ns + delay)
		r -= delay;
	q->latest_rtt_ns = r;
	if (q->srtt_ns == 0) {
		q->srtt_ns = r;
		q->rttvar_ns = r / 2;
	} else {
		uint64_t d = q->srtt_ns > r ? q->srtt_ns - r : r - q->srtt_ns;

		q->rttvar_ns = (3 * q->rttvar_ns + d) / 4;
		q->srtt_ns = (7 * q->srtt_ns + r) / 8;
	}
	q->rto_ns = q->srtt_ns + 4 * q->rttvar_ns;
	if (q->rto_ns < FERRY_SENTQ_RTO_MIN_NS)
		q->rto_ns = FERRY_SENTQ_RTO_MIN_NS;
	if (q->rto_ns > FERRY_SENTQ_RTO_MAX_NS)
		q->rto_ns = FERRY_SENTQ_RTO_MAX_NS;
}

/* How long after it was sent a datagram below the largest acknowledged
 * is given up on. */
static uint64_t loss_delay(const struct ferry__sentq *q)
{
	uint64_t r = q->srtt_ns > q->latest_rtt_ns ? q->srtt_ns
						   : q->latest_rtt_ns;

	if (r == 0)
		r = FERRY_SENTQ_RTO_INIT_NS;
	return r + r / 8;
}

/* The packet and time thresholds, over the live datagrams below the
 * largest acknowledged. */
static uint32_t detect_lost(struct ferry__sentq *q, uint64_t now)
{
	uint64_t delay = loss_delay(q), end;
	uint32_t n = 0;

	if (q->largest_acked == 0)
		return 0;
	end = q->largest_acked - 1;
	for (uint64_t pn = q->una; pn < end; pn++) {
		struct ferry__sent_dg *d = &q->dg[pn & q->dg_mask];

		if (!d->live)
			continue;
		if (end - pn >= FERRY_SENTQ_PKT_THRESH ||
		    now - d->sent_ns >= delay) {
			declare_lost(q, d);
			n++;
		}
	}
	return n;
}

static void ack_one(struct ferry__sentq *q, struct ferry__sent_dg *d,
		    ferry__sent_acked_fn acked, void *ctx)
{
	if (d->sent_ns > q->acked_sent_ns)
		q->acked_sent_ns = d->sent_ns;
	for (uint32_t i = 0; i < d->nframes; i++) {
		const struct ferry__sent_frame *f =
			&q->fr[(d->frame0 + i) & q->fr_mask];

		if (f->obj)
			acked(ctx, f);
	}
	q->acked_bytes += d->bytes;
	retire(q, d);
}

int ferry__sentq_on_ack(struct ferry__sentq *q, const struct ferry_w2_ack *a,
			uint64_t now, ferry__sent_acked_fn acked, void *ctx)
{
	struct ferry_w2_pn_range r[FERRY_W2_ACK_RANGES_MAX + 1];
	uint64_t largest;
	int nr, newly = 0;

	if (q->next_pn == 0)
		return -EPROTO;
	largest = ferry__w2_pn_expand(q->next_pn - 1, a->largest);
	if (largest >= q->next_pn)
		return -EPROTO; /* acknowledges what was never sent */
	nr = ferry__w2_ack_ranges(a, largest, r);
	if (nr < 0)
		return nr;
	q->last_sample_ns = 0;
	q->acked_sent_ns = 0;
	for (int i = 0; i < nr; i++) {
		uint64_t lo = r[i].lo < q->una ? q->una : r[i].lo;

		for (uint64_t pn = r[i].hi + 1; pn-- > lo;) {
			struct ferry__sent_dg *d = &q->dg[pn & q->dg_mask];

			if (!d->live)
				continue;
			if (pn == largest) {
				rtt_sample(q, now - d->sent_ns,
					   (uint64_t)a->ack_delay * 1000);
				q->last_sample_ns = q->latest_rtt_ns;
			}
			ack_one(q, d, acked, ctx);
			newly++;
		}
	}
	if (largest + 1 > q->largest_acked)
		q->largest_acked = largest + 1;
	if (newly) {
		q->backoff = 0; /* progress */
		q->hold_ns = 0;
	}
	detect_lost(q, now);
	advance_una(q);
	return newly;
}

void ferry__sentq_seed_rtt(struct ferry__sentq *q, uint64_t rtt_ns)
{
	/* 0: quicker than the clock the caller read (once per poll). */
	if (q->srtt_ns == 0)
		rtt_sample(q, rtt_ns ? rtt_ns : 1, 0);
}

uint64_t ferry__sentq_rto(const struct ferry__sentq *q)
{
	uint64_t rto = q->rto_ns << (q->backoff < FERRY_SENTQ_BACKOFF_MAX
					     ? q->backoff
					     : FERRY_SENTQ_BACKOFF_MAX);

	return rto > FERRY_SENTQ_RTO_MAX_NS ? FERRY_SENTQ_RTO_MAX_NS : rto;
}

uint64_t ferry__sentq_deadline(const struct ferry__sentq *q)
{
	uint64_t pn, t = 0;

	if (q->in_flight == 0)
		return 0;
	for (pn = q->una; pn != q->next_pn; pn++)
		if (q->dg[pn & q->dg_mask].live)
			break;
	t = q->dg[pn & q->dg_mask].sent_ns + ferry__sentq_rto(q);
	if (q->hold_ns > t)
		t = q->hold_ns;
	/* The time threshold may fire sooner for one below the largest
	 * acknowledged. */
	if (q->largest_acked && pn < q->largest_acked - 1) {
		uint64_t l = q->dg[pn & q->dg_mask].sent_ns + loss_delay(q);

		if (l < t)
			t = l;
	}
	return t;
}

/*
 * Whether the RTO of @d, the oldest live datagram, waits:
 *  - the peer is acknowledging now: within a quarter RTO of when this end
 *    last read its receive queue empty (what it has not read yet may
 *    acknowledge @d; a peer that went quiet after answering everything
 *    before @d has most likely lost @d);
 *  - but nothing sent in @d's flush or later (the datagrams of one flush
 *    share a send time: one of them acknowledged says the peer reached
 *    @d's train);
 *  - and @d went less than FERRY_SENTQ_HOLD_MAX_NS ago.
 */
static bool rto_holds(const struct ferry__sent_dg *d,
		      const struct ferry__sentq_peer *peer, uint64_t now,
		      uint64_t rto)
{
	uint64_t seen;

	if (!peer)
		return false;
	seen = peer->read_up_ns < now ? peer->read_up_ns : now;
	return peer->progress_ns + rto / 4 > seen &&
	       peer->acked_sent_ns < d->sent_ns &&
	       now - d->sent_ns < FERRY_SENTQ_HOLD_MAX_NS;
}

uint32_t ferry__sentq_timer(struct ferry__sentq *q, uint64_t now,
			    const struct ferry__sentq_peer *peer)
{
	struct ferry__sent_dg *oldest = NULL;
	uint32_t n = detect_lost(q, now);
	uint64_t rto = ferry__sentq_rto(q), pn;
	bool due;

	for (pn = q->una; pn != q->next_pn; pn++) {
		if (q->dg[pn & q->dg_mask].live) {
			oldest = &q->dg[pn & q->dg_mask];
			break;
		}
	}
	due = oldest && now - oldest->sent_ns >= rto && now >= q->hold_ns;
	if (due && rto_holds(oldest, peer, now, rto)) {
		q->hold_ns = now + rto;
		q->rto_held++;
	} else if (due) {
		uint64_t end = q->largest_acked ? q->largest_acked - 1 : 0;

		q->hold_ns = 0;
		q->rto_fired++;
		q->backoff++;
		declare_lost(q, oldest);
		n++;
		for (pn++; pn < end; pn++) {
			struct ferry__sent_dg *d = &q->dg[pn & q->dg_mask];

			if (d->live) {
				declare_lost(q, d);
				n++;
			}
		}
	}
	advance_una(q);
	return n;
}

const struct ferry__sent_frame *
ferry__sentq_lost_peek(const struct ferry__sentq *q)
{
	return q->lost_tail == q->lost_head
		       ? NULL
		       : &q->lost[q->lost_tail & q->lost_mask];
}

void ferry__sentq_lost_pop(struct ferry__sentq *q)
{
	if (q->lost_tail != q->lost_head)
		q->lost_tail++;
}

uint32_t ferry__sentq_forget(struct ferry__sentq *q, const void *obj)
{
	return ferry__sentq_forget_range(q, obj, 0, UINT64_MAX);
}

bool ferry__sentq_forget_at(struct ferry__sentq *q, const void *obj,
			    uint64_t pn, uint32_t fr)
{
	struct ferry__sent_dg *d;
	struct ferry__sent_frame *f;

	if (!q->dg || pn < q->una || pn >= q->next_pn)
		return false;
	d = &q->dg[pn & q->dg_mask];
	if (!d->live || fr - d->frame0 >= d->nframes)
		return false;
	f = &q->fr[fr & q->fr_mask];
	if (f->obj != obj)
		return false;
	f->obj = NULL;
	return true;
}

uint32_t ferry__sentq_forget_range(struct ferry__sentq *q, const void *obj,
				   uint64_t lo, uint64_t hi)
{
	uint64_t end = hi < q->next_pn ? hi + 1 : q->next_pn;
	uint32_t n = 0;

	for (uint64_t pn = lo > q->una ? lo : q->una; pn < end; pn++) {
		struct ferry__sent_dg *d = &q->dg[pn & q->dg_mask];

		if (!d->live)
			continue;
		for (uint32_t i = 0; i < d->nframes; i++) {
			struct ferry__sent_frame *f =
				&q->fr[(d->frame0 + i) & q->fr_mask];

			if (f->obj == obj) {
				f->obj = NULL;
				n++;
			}
		}
	}
	for (uint32_t i = q->lost_tail; i != q->lost_head; i++) {
		struct ferry__sent_frame *f = &q->lost[i & q->lost_mask];

		if (f->obj == obj) {
			f->obj = NULL;
			n++;
		}
	}
	return n;
}

void ferry__sentq_unsent(struct ferry__sentq *q)
{
	struct ferry__sent_dg *d;

	if (q->next_pn == q->una)
		return;
	d = &q->dg[(q->next_pn - 1) & q->dg_mask];
	if (d->live) {
		declare_lost(q, d);
		/* Not the network's doing. */
		q->lost_dgrams--;
		q->lost_bytes -= d->bytes;
	}
	advance_una(q);
}
