/* SPDX-License-Identifier: MIT */
/*
 * Session and call spans, the producer side: the endpoint's thread opens,
 * enriches and ends spans as records in its ring, which the tracer drains
 * (control/trace_consumer.c; its lifetime in control/tracer.c, the export
 * in control/trace_export.c).  docs/tracing.md describes the event flow,
 * the ring and the export format.
 *
 * This is the fast path, whole in this file so that its functions inline
 * into each other: the producer never locks, allocates, waits or makes a
 * system call (ids come from a per-ring pool of ChaCha20 output, keyed
 * from libsodium's CSPRNG when the ring is made).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "control/trace_internal.h"

/* --- clock and ids ------------------------------------------------------- */

static uint64_t now_ns(const struct ferry_trace_ring *r)
{
	struct timespec ts;

	if (r->clock)
		return r->clock(r->clock_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Random bytes from the ring's pool; the pool refills from the CSPRNG. */
static void rng_take(struct ferry_trace_ring *r, uint8_t *out, size_t n)
{
	if (r->rng_off + n > sizeof(r->rng)) {
		/* ChaCha20 in this process, keyed from the OS's CSPRNG when the
		 * ring was made, a new nonce per refill: a system call per
		 * pool was a visible part of the producer's cost here. */
		uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];

		memcpy(nonce, &r->rng_nonce, sizeof(nonce));
		r->rng_nonce++;
		crypto_stream_chacha20(r->rng, sizeof(r->rng), nonce, r->rng_key);
		r->rng_off = 0;
	}
	/* Each byte is used once (they become public ids: nothing to wipe). */
	memcpy(out, r->rng + r->rng_off, n);
	r->rng_off += (uint32_t)n;
}

static bool zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* A random id that is not all zero (W3C: all-zero ids are invalid). */
static void new_id(struct ferry_trace_ring *r, uint8_t *id, size_t n)
{
	do
		rng_take(r, id, n);
	while (zero(id, n));
}

/* The per-call sampling draw of a session that starts its own trace: a
 * xorshift64* step (seeded from the CSPRNG) against rate * 2^64.  Ids need
 * the CSPRNG; a coin toss does not. */
static bool call_draw(struct ferry_trace_ring *r)
{
	uint64_t x;

	if (r->sample_all)
		return true;
	if (r->sample_none)
		return false;
	if (r->draw == 0) {
		do
			rng_take(r, (uint8_t *)&r->draw, sizeof(r->draw));
		while (r->draw == 0);
	}
	x = r->draw;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->draw = x;
	return x * 0x2545f4914f6cdd1dull < r->sample_threshold;
}

/* --- the ring (producer side) -------------------------------------------- */

uint64_t ferry__ring_used(const struct ferry_trace_ring *r)
{
	return r->head - atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* now_ns() stays static, so that the fast path inlines it. */
uint64_t ferry__ring_now(const struct ferry_trace_ring *r)
{
	return now_ns(r);
}

static void count(_Atomic uint64_t *c)
{
	/* One writer: a relaxed load and store, no locked instruction. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/*
 * max_spans_per_sec: whether a call span sampled at @now may record.  A
 * GCRA token bucket, one word of state and no lock: the producer is the
 * ring's only writer.  A clock that stepped back (CLOCK_REALTIME) leaves
 * the arrival time far ahead; it restarts from @now rather than refusing
 * spans until the clock catches up.
 */
static bool rate_take(struct ferry_trace_ring *r, uint64_t now)
{
	uint64_t tat = r->rl_tat;

	if (tat < now || tat - now > r->rl_tau + r->rl_interval)
		tat = now;
	if (tat - now > r->rl_tau)
		return false;
	r->rl_tat = tat + r->rl_interval;
	return true;
}

/*
 * Whether @n more bytes fit, leaving @keep bytes free.  The consumer's tail
 * is re-read (acquire: its reads of the bytes it freed are done) only when
 * the cached value says no.
 */
static bool ring_fits(struct ferry_trace_ring *r, uint64_t n, uint64_t keep)
{
	if (r->cap - (r->head - r->tail_cache) >= n + keep)
		return true;
	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->cap - (r->head - r->tail_cache) >= n + keep;
}

/* Copy a record in (the caller checked it fits) and publish it. */
static void ring_put(struct ferry_trace_ring *r, const void *ev, size_t n)
{
	uint64_t off = r->head & (r->cap - 1);
	size_t first = r->cap - off < n ? (size_t)(r->cap - off) : n;

	memcpy(r->buf + off, ev, first);
	memcpy(r->buf, (const uint8_t *)ev + first, n - first);
	r->head += n;
	/* Ask for the lines a few records on for writing now: the consumer
	 * read them last, on another core, or they left the cache. */
	__builtin_prefetch(r->buf + ((r->head + 512) & (r->cap - 1)), 1);
	/* Release: the record's bytes are visible before the new head. */
	atomic_store_explicit(&r->head_pub, r->head, memory_order_release);
}

static void ev_init(struct ferry__ev *h, size_t size, int type, uint32_t slot,
		    uint32_t gen, uint64_t ts)
{
	h->size = (uint16_t)size;
	h->type = (uint8_t)type;
	h->flags = 0;
	h->slot = slot;
	h->gen = gen;
	h->aux = 0;
	h->ts = ts;
}

static ferry_span_t handle(uint32_t slot, uint32_t gen)
{
	return (ferry_span_t)gen << 32 | slot;
}

/* The open slot @h names, or NULL (counted as stale). */
static struct ferry__pslot *lookup(struct ferry_trace_ring *r, ferry_span_t h)
{
	uint32_t slot = (uint32_t)h, gen = (uint32_t)(h >> 32);
	struct ferry__pslot *s;

	if (!r || h == FERRY_SPAN_NONE)
		return NULL;
	if (slot >= r->nslots || (s = &r->slots[slot])->gen != gen || !s->open) {
		count(&r->stale);
		return NULL;
	}
	return s;
}

static uint32_t slot_alloc(struct ferry_trace_ring *r)
{
	uint32_t i = r->free_head;
	struct ferry__pslot *s;

	if (i == FERRY__NO_SLOT)
		return i;
	s = &r->slots[i];
	r->free_head = s->next_free;
	/* A new generation: handles of the slot's earlier spans go stale.
	 * Generation 0 is skipped so that no handle is FERRY_SPAN_NONE. */
	if (++s->gen == 0)
		s->gen = 1;
	s->open = 1;
	return i;
}

static void slot_free(struct ferry_trace_ring *r, uint32_t i)
{
	r->slots[i].open = 0;
	r->slots[i].next_free = r->free_head;
	r->free_head = i;
}

/*
 * Open a span in a fresh slot: write its OPEN record (and keep room for
 * its END) if it records.  Returns the slot, or FERRY__NO_SLOT (counted).
 */
static uint32_t span_open(struct ferry_trace_ring *r, struct ferry__ev_open *ev,
			  size_t ts_len, bool recording)
{
	size_t size = FERRY__EV_PAD(sizeof(*ev) + ts_len);
	uint32_t i;

	/* spans_started counts spans to record, and any open refused, so that
	 * started = exported + dropped (+ open) holds. */
	if (recording && !ring_fits(r, size + FERRY__END_MAX, r->reserved)) {
		count(&r->started);
		count(&r->spans_dropped);
		count(&r->ev_dropped);
		return FERRY__NO_SLOT;
	}
	i = slot_alloc(r);
	if (i == FERRY__NO_SLOT) {
		count(&r->started);
		count(&r->spans_dropped);
		return i;
	}
	if (recording) {
		count(&r->started);
		ev->h.size = (uint16_t)size;
		ev->h.type = FERRY__EV_OPEN;
		ev->h.slot = i;
		ev->h.gen = r->slots[i].gen;
		ring_put(r, ev, size);
		/* Every open span has room kept for its END, so a close is
		 * never dropped and no span stays open for want of one. */
		r->reserved += FERRY__END_MAX;
	}
	return i;
}

ferry_span_t ferry_span_session_open(struct ferry_trace_ring *r,
				     const struct ferry_span_session_args *a)
{
	/* The OPEN record and its tracestate, aligned for the header. */
	union {
		struct ferry__ev_open ev;
		uint8_t raw[FERRY__EV_MAX];
	} u;
	struct ferry__ev_open *ev = &u.ev;
	struct ferry_trace_ctx parent;
	struct ferry__pslot *s;
	bool have_parent = false, sampled, recording, trunc = false, own;
	char ts[FERRY_TRACESTATE_KEEP + 1];
	size_t ts_len = 0;
	uint32_t i;
	int rc;

	if (!r || !a || (a->kind != FERRY_SPAN_KIND_CLIENT &&
			 a->kind != FERRY_SPAN_KIND_SERVER))
		return FERRY_SPAN_NONE;
	/* A server's parent came from the wire: unless told to trust it, the
	 * peer does not choose what this tracer records (issue 14). */
	own = a->kind == FERRY_SPAN_KIND_SERVER && r->ignore_remote;
	memset(ev, 0, sizeof(*ev));
	ev->h.ts = now_ns(r);
	if (a->traceparent && a->traceparent_len) {
		if (ferry_traceparent_parse(a->traceparent, a->traceparent_len,
					    &parent) == 0)
			have_parent = true;
		else
			count(&r->tp_malformed);
	}
	if (have_parent) {
		memcpy(ev->trace_id, parent.trace_id, sizeof(ev->trace_id));
		memcpy(ev->parent_id, parent.span_id, sizeof(ev->parent_id));
		/* Sampling our own: as for a new trace (below), with the
		 * remote span still the parent. */
		sampled = own ? r->sample_all
			      : parent.flags & FERRY_TRACE_FLAG_SAMPLED;
		ev->h.flags |= FERRY__OF_PARENT;
		/* tracestate belongs to the parent's trace: without a valid
		 * traceparent it is meaningless and is dropped; a remote one
		 * we do not trust is not even read. */
		if (a->tracestate && a->tracestate_len && !own) {
			rc = ferry_tracestate_parse(a->tracestate, a->tracestate_len,
						    ts, sizeof(ts), &ts_len, &trunc);
			if (rc < 0) {
				count(&r->ts_malformed);
				ts_len = 0;
			} else if (trunc) {
				count(&r->ts_truncated);
			}
		}
	} else {
		/* A new trace: the session propagates "sampled" only if every
		 * call will be; otherwise each call is drawn at the rate and a
		 * sampled one carries its own context (call_context()). */
		new_id(r, ev->trace_id, sizeof(ev->trace_id));
		sampled = r->sample_all;
	}
	new_id(r, ev->span_id, sizeof(ev->span_id));
	if (sampled)
		ev->h.flags |= FERRY__OF_SAMPLED;
	ev->h.flags |= FERRY__OF_SESSION;
	ev->kind = (uint8_t)a->kind;
	ev->peer_ip = a->peer_ip;
	ev->peer_port = a->peer_port;
	ev->server_ip = a->server_ip;
	ev->server_port = a->server_port;
	ev->ts_len = (uint16_t)ts_len;
	memcpy(u.raw + sizeof(*ev), ts, ts_len);
	/* A session whose calls may be sampled is recorded: it is their
	 * parent.  "root": its calls are drawn at the rate, call by call. */
	own = own || !have_parent;
	recording = sampled || r->record_unsampled || (own && !r->sample_none);
	i = span_open(r, ev, ts_len, recording);
	if (i == FERRY__NO_SLOT)
		return FERRY_SPAN_NONE;
	s = &r->slots[i];
	s->recording = recording;
	s->sampled = sampled;
	s->root = own;
	s->own_ctx = 0;
	s->lazy = 0;
	s->is_session = 1;
	s->kind = (uint8_t)a->kind;
	memcpy(s->trace_id, ev->trace_id, sizeof(s->trace_id));
	memcpy(s->span_id, ev->span_id, sizeof(s->span_id));
	s->peer_ip = a->peer_ip;
	s->peer_port = a->peer_port;
	s->server_ip = a->server_ip;
	s->server_port = a->server_port;
	return handle(i, s->gen);
}

/* Whether @session is an open server session span of @r that ignores its
 * peer's sampling (and so its tracestate).  Not counted as stale: the
 * call_open() that follows counts that. */
static bool server_ignores(const struct ferry_trace_ring *r,
			   ferry_span_t session)
{
	uint32_t slot = (uint32_t)session;

	return r->ignore_remote && slot < r->nslots &&
	       r->slots[slot].gen == (uint32_t)(session >> 32) &&
	       r->slots[slot].open && r->slots[slot].kind == FERRY_SPAN_KIND_SERVER;
}

/*
 * Open a call span under session span @session.  @parent: the call's own
 * context, if it has a valid one; @ts/@ts_len its tracestate (canonical).
 * A call span without a tracestate is "lazy": nothing is written until an
 * attribute needs its OPEN, or it ends as one CALL record.
 */
static ferry_span_t call_open(struct ferry_trace_ring *r, ferry_span_t session,
			      uint16_t method,
			      const struct ferry_trace_ctx *parent,
			      const char *ts, size_t ts_len)
{
	struct ferry__pslot *ss = lookup(r, session), *s;
	bool sampled, own = false;
	uint64_t now;
	uint32_t i;

	if (!ss || !ss->is_session)
		return FERRY_SPAN_NONE;
	if (parent && (zero(parent->trace_id, sizeof(parent->trace_id)) ||
		       zero(parent->span_id, sizeof(parent->span_id))))
		parent = NULL;
	/* Parent-based: a call's own context if it has one; else its
	 * session's decision if the session has a parent; else (a session
	 * that started the trace) a draw per call at the tracer's rate.  A
	 * server's call context from the wire, when remote sampling is
	 * ignored, is only a parent: the call is drawn as its session's
	 * calls are. */
	if (parent && !(r->ignore_remote && ss->kind == FERRY_SPAN_KIND_SERVER)) {
		sampled = parent->flags & FERRY_TRACE_FLAG_SAMPLED;
		own = true;
	} else if (ss->root) {
		sampled = ss->sampled || call_draw(r);
		own = sampled && !ss->sampled;
	} else {
		sampled = ss->sampled;
	}
	if (!sampled) {
		count(&r->unsampled);
		return FERRY_SPAN_NONE;
	}
	/* The drain is over its CPU budget and would drop the span whole:
	 * dropped here, before it costs a clock read, an id and a record. */
	if (atomic_load_explicit(&r->shed, memory_order_relaxed)) {
		count(&r->started);
		count(&r->dropped_shed);
		return FERRY_SPAN_NONE;
	}
	/* The rate limit is a head decision, on the clock read the span's
	 * start needs anyway. */
	now = now_ns(r);
	if (r->rl_interval && !rate_take(r, now)) {
		count(&r->started);
		count(&r->dropped_rate);
		return FERRY_SPAN_NONE;
	}
	if (ts_len) {
		/* Written at once, with its tracestate. */
		union {
			struct ferry__ev_open ev;
			uint8_t raw[FERRY__EV_MAX];
		} u;

		memset(&u.ev, 0, sizeof(u.ev));
		u.ev.h.ts = now;
		u.ev.h.aux = method;
		u.ev.h.flags = FERRY__OF_PARENT | FERRY__OF_SAMPLED;
		memcpy(u.ev.trace_id, parent ? parent->trace_id : ss->trace_id,
		       sizeof(u.ev.trace_id));
		memcpy(u.ev.parent_id, parent ? parent->span_id : ss->span_id,
		       sizeof(u.ev.parent_id));
		new_id(r, u.ev.span_id, sizeof(u.ev.span_id));
		u.ev.kind = ss->kind;
		u.ev.peer_ip = ss->peer_ip;
		u.ev.peer_port = ss->peer_port;
		u.ev.server_ip = ss->server_ip;
		u.ev.server_port = ss->server_port;
		u.ev.ts_len = (uint16_t)ts_len;
		memcpy(u.raw + sizeof(u.ev), ts, ts_len);
		i = span_open(r, &u.ev, ts_len, true);
		if (i == FERRY__NO_SLOT)
			return FERRY_SPAN_NONE;
		s = &r->slots[i];
		memcpy(s->span_id, u.ev.span_id, sizeof(s->span_id));
		s->lazy = 0;
	} else {
		/* Room for the CALL record (or an END, once an attribute has
		 * made it write its OPEN) is kept from now on. */
		count(&r->started);
		if (!ring_fits(r, FERRY__END_MAX, r->reserved)) {
			count(&r->spans_dropped);
			count(&r->ev_dropped);
			return FERRY_SPAN_NONE;
		}
		i = slot_alloc(r);
		if (i == FERRY__NO_SLOT) {
			count(&r->spans_dropped);
			return FERRY_SPAN_NONE;
		}
		r->reserved += FERRY__END_MAX;
		s = &r->slots[i];
		new_id(r, s->span_id, sizeof(s->span_id));
		s->start = now;
		s->lazy = 1;
	}
	memcpy(s->trace_id, parent ? parent->trace_id : ss->trace_id,
	       sizeof(s->trace_id));
	memcpy(s->parent_id, parent ? parent->span_id : ss->span_id,
	       sizeof(s->parent_id));
	s->recording = 1;
	s->sampled = 1;
	s->is_session = 0;
	s->root = 0;
	s->own_ctx = own;
	s->has_parent = 1;
	s->method = method;
	s->kind = ss->kind;
	s->peer_ip = ss->peer_ip;
	s->peer_port = ss->peer_port;
	s->server_ip = ss->server_ip;
	s->server_port = ss->server_port;
	return handle(i, s->gen);
}

ferry_span_t ferry_span_call_start(struct ferry_trace_ring *r,
				   ferry_span_t session, uint16_t method,
				   const struct ferry_trace_ctx *parent)
{
	return call_open(r, session, method, parent, NULL, 0);
}

ferry_span_t ferry__span_call_start_text(struct ferry_trace_ring *r,
					 ferry_span_t session, uint16_t method,
					 const char *tp, size_t tp_len,
					 const char *ts, size_t ts_len)
{
	struct ferry_trace_ctx parent;
	char state[FERRY_TRACESTATE_KEEP + 1];
	size_t slen = 0;
	bool trunc = false;

	if (!r || !tp || !tp_len)
		return call_open(r, session, method, NULL, NULL, 0);
	if (ferry_traceparent_parse(tp, tp_len, &parent) < 0) {
		count(&r->tp_malformed);
		return call_open(r, session, method, NULL, NULL, 0);
	}
	/* As for a session: a tracestate only with a valid traceparent, and
	 * a server's only when it trusts its peers' sampling. */
	if (ts && ts_len && !server_ignores(r, session)) {
		if (ferry_tracestate_parse(ts, ts_len, state, sizeof(state),
					   &slen, &trunc) < 0) {
			count(&r->ts_malformed);
			slen = 0;
		} else if (trunc) {
			count(&r->ts_truncated);
		}
	}
	return call_open(r, session, method, &parent, state, slen);
}

int ferry__span_call_context(struct ferry_trace_ring *r, ferry_span_t span,
			     char *buf, size_t cap)
{
	struct ferry__pslot *s = lookup(r, span);

	if (!s || s->is_session || !s->own_ctx)
		return 0;
	return ferry_span_traceparent(r, span, buf, cap);
}

/* The OPEN record of the lazy call span in slot @i of @r, from the slot. */
static void lazy_open_ev(const struct ferry_trace_ring *r, uint32_t i,
			 struct ferry__ev_open *ev)
{
	const struct ferry__pslot *s = &r->slots[i];

	memset(ev, 0, sizeof(*ev));
	ev_init(&ev->h, FERRY__EV_PAD(sizeof(*ev)), FERRY__EV_OPEN, i, s->gen,
		s->start);
	ev->h.aux = s->method;
	ev->h.flags = FERRY__OF_PARENT | FERRY__OF_SAMPLED;
	memcpy(ev->trace_id, s->trace_id, sizeof(ev->trace_id));
	memcpy(ev->span_id, s->span_id, sizeof(ev->span_id));
	memcpy(ev->parent_id, s->parent_id, sizeof(ev->parent_id));
	ev->kind = s->kind;
	ev->peer_ip = s->peer_ip;
	ev->peer_port = s->peer_port;
	ev->server_ip = s->server_ip;
	ev->server_port = s->server_port;
}

void ferry__span_lazy_open_ev(const struct ferry_trace_ring *r, uint32_t i,
			      struct ferry__ev_open *ev)
{
	lazy_open_ev(r, i, ev);
}

/* Write the OPEN record a lazy call span put off (an attribute needs the
 * consumer to hold the span).  Returns false if it does not fit. */
static bool call_materialize(struct ferry_trace_ring *r, struct ferry__pslot *s,
			     size_t then)
{
	struct ferry__ev_open ev;
	size_t size = FERRY__EV_PAD(sizeof(ev));

	/* The room kept for this span's end stays kept. */
	if (!ring_fits(r, size + then, r->reserved))
		return false;
	lazy_open_ev(r, (uint32_t)(s - r->slots), &ev);
	ring_put(r, &ev, size);
	s->lazy = 0;
	return true;
}

/* Close @s (slot @i): the END record goes into the room kept for it. */
static void span_end(struct ferry_trace_ring *r, struct ferry__pslot *s,
		     uint8_t how, int res, const char *msg)
{
	union {
		struct ferry__ev_end ev;
		uint8_t raw[FERRY__END_MAX];
	} u;
	uint32_t i = (uint32_t)(s - r->slots);
	size_t mlen = msg ? strnlen(msg, FERRY_SPAN_MSG_MAX) : 0, size;

	if (s->lazy) {
		struct ferry__ev_call ev;

		size = FERRY__EV_PAD(sizeof(ev));
		memset(&ev, 0, sizeof(ev));
		ev_init(&ev.h, size, FERRY__EV_CALL, i, s->gen, now_ns(r));
		ev.h.aux = s->method;
		ev.h.flags = FERRY__OF_PARENT | FERRY__OF_SAMPLED;
		ev.start = s->start;
		memcpy(ev.trace_id, s->trace_id, sizeof(ev.trace_id));
		memcpy(ev.span_id, s->span_id, sizeof(ev.span_id));
		memcpy(ev.parent_id, s->parent_id, sizeof(ev.parent_id));
		ev.peer_ip = s->peer_ip;
		ev.peer_port = s->peer_port;
		ev.server_ip = s->server_ip;
		ev.server_port = s->server_port;
		ev.res = res;
		ev.kind = s->kind;
		r->reserved -= FERRY__END_MAX;
		if (ring_fits(r, size, 0))
			ring_put(r, &ev, size);
		else
			count(&r->ev_dropped);
		s->lazy = 0;
	} else if (s->recording) {
		size = FERRY__EV_PAD(sizeof(u.ev) + mlen);
		memset(&u.ev, 0, sizeof(u.ev));
		ev_init(&u.ev.h, size, FERRY__EV_END, i, s->gen, now_ns(r));
		u.ev.h.flags = how;
		u.ev.res = res;
		u.ev.mlen = (uint8_t)mlen;
		if (mlen)
			memcpy(u.raw + sizeof(u.ev), msg, mlen);
		r->reserved -= FERRY__END_MAX;
		/* Fits: the reservation guarantees it (see span_open()). */
		if (ring_fits(r, size, 0))
			ring_put(r, &u.ev, size);
		else
			count(&r->ev_dropped);
	}
	slot_free(r, i);
}

void ferry_span_session_end(struct ferry_trace_ring *r, ferry_span_t span,
			    int how, int res, const char *reason)
{
	struct ferry__pslot *s = lookup(r, span);

	if (!s)
		return;
	if (!s->is_session) {
		count(&r->stale);
		return;
	}
	if (how < FERRY_SPAN_END_CLOSE || how > FERRY_SPAN_END_SHUTDOWN)
		how = FERRY_SPAN_END_ERROR;
	span_end(r, s, (uint8_t)how, res, reason);
}

void ferry_span_call_end(struct ferry_trace_ring *r, ferry_span_t span, int res)
{
	struct ferry__pslot *s = lookup(r, span);

	if (!s)
		return;
	if (s->is_session) {
		count(&r->stale);
		return;
	}
	span_end(r, s, FERRY__END_CALL, res > 0 ? -res : res, NULL);
}

/* Set an attribute: its key is @pfx (may be "") then @key. */
static int set_attr(struct ferry_trace_ring *r, ferry_span_t span,
		    const char *pfx, const char *key, int type,
		    const void *val, const char *str)
{
	union {
		struct ferry__ev_attr ev;
		uint8_t raw[FERRY__EV_PAD(sizeof(struct ferry__ev_attr) +
					  FERRY__ATTR_KEY_MAX + FERRY_ATTR_STR_MAX)];
	} u;
	struct ferry__pslot *s;
	size_t plen = strlen(pfx), klen, vlen = 0, size;

	if (!r || !key)
		return -EINVAL;
	klen = strnlen(key, FERRY_ATTR_KEY_MAX + 1);
	if (klen == 0 || klen > FERRY_ATTR_KEY_MAX)
		return -EINVAL;
	s = lookup(r, span);
	if (!s)
		return -ESTALE;
	if (!s->recording)
		return 0;
	if (str)
		vlen = strnlen(str, FERRY_ATTR_STR_MAX);
	size = FERRY__EV_PAD(sizeof(u.ev) + plen + klen + vlen);
	if (s->lazy && !call_materialize(r, s, size)) {
		count(&r->ev_dropped);
		return -ENOBUFS;
	}
	if (!ring_fits(r, size, r->reserved)) {
		count(&r->ev_dropped);
		return -ENOBUFS;
	}
	memset(&u.ev, 0, sizeof(u.ev));
	ev_init(&u.ev.h, size, FERRY__EV_ATTR, (uint32_t)(s - r->slots), s->gen,
		0);
	u.ev.h.flags = (uint8_t)type;
	u.ev.klen = (uint8_t)(plen + klen);
	u.ev.vlen = (uint16_t)vlen;
	if (val)
		memcpy(&u.ev.v, val, type == FERRY_ATTR_BOOL ? 1 : 8);
	memcpy(u.raw + sizeof(u.ev), pfx, plen);
	memcpy(u.raw + sizeof(u.ev) + plen, key, klen);
	if (vlen)
		memcpy(u.raw + sizeof(u.ev) + plen + klen, str, vlen);
	ring_put(r, &u.ev, size);
	return 0;
}

int ferry_span_set_str(struct ferry_trace_ring *r, ferry_span_t span,
		       const char *key, const char *value)
{
	return set_attr(r, span, "", key, FERRY_ATTR_STRING, NULL,
			value ? value : "");
}

int ferry_span_set_int(struct ferry_trace_ring *r, ferry_span_t span,
		       const char *key, int64_t value)
{
	return set_attr(r, span, "", key, FERRY_ATTR_INT, &value, NULL);
}

int ferry_span_set_bool(struct ferry_trace_ring *r, ferry_span_t span,
			const char *key, bool value)
{
	uint8_t b = value;

	return set_attr(r, span, "", key, FERRY_ATTR_BOOL, &b, NULL);
}

int ferry_span_set_double(struct ferry_trace_ring *r, ferry_span_t span,
			  const char *key, double value)
{
	return set_attr(r, span, "", key, FERRY_ATTR_DOUBLE, &value, NULL);
}

/* Every key a peer sends is written under FERRY__PEER_PREFIX: none of the
 * tracer's own attributes (rpc.system, rpc.method, server.*,
 * network.peer.*, error.type) starts with it, so a peer can add to a span
 * but never replace what the tracer wrote (issue 14). */
int ferry__span_set_peer_attr(struct ferry_trace_ring *r, ferry_span_t span,
			      const struct ferry_trace_attr *a)
{
	static const char pfx[] = FERRY__PEER_PREFIX;
	uint8_t b;

	if (!a)
		return -EINVAL;
	switch (a->type) {
	case FERRY_ATTR_STRING:
		return set_attr(r, span, pfx, a->key, a->type, NULL,
				a->v.s ? a->v.s : "");
	case FERRY_ATTR_INT:
	case FERRY_ATTR_DOUBLE:
		return set_attr(r, span, pfx, a->key, a->type, &a->v, NULL);
	case FERRY_ATTR_BOOL:
		b = a->v.b;
		return set_attr(r, span, pfx, a->key, a->type, &b, NULL);
	default:
		return -EINVAL;
	}
}

int ferry_span_context(struct ferry_trace_ring *r, ferry_span_t span,
		       struct ferry_trace_ctx *out)
{
	struct ferry__pslot *s = lookup(r, span);

	if (!s)
		return -ESTALE;
	memcpy(out->trace_id, s->trace_id, sizeof(out->trace_id));
	memcpy(out->span_id, s->span_id, sizeof(out->span_id));
	out->flags = s->sampled ? FERRY_TRACE_FLAG_SAMPLED : 0;
	out->version = 0;
	return 0;
}

int ferry_span_traceparent(struct ferry_trace_ring *r, ferry_span_t span,
			   char *buf, size_t cap)
{
	struct ferry_trace_ctx c;
	int rc = ferry_span_context(r, span, &c);

	return rc < 0 ? rc : ferry_traceparent_format(&c, buf, cap);
}

bool ferry_span_is_open(struct ferry_trace_ring *r, ferry_span_t span)
{
	uint32_t slot = (uint32_t)span, gen = (uint32_t)(span >> 32);

	return r && span != FERRY_SPAN_NONE && slot < r->nslots &&
	       r->slots[slot].gen == gen && r->slots[slot].open;
}
