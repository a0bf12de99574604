/* SPDX-License-Identifier: MIT */
/*
 * Session and call spans: the producer side (the endpoint's thread), the
 * ring between it and the control plane, and the consumer side (the
 * tracer: open-span table, callback, OTLP/JSON export).  docs/tracing.md
 * describes the event flow, the ring and the export format.
 *
 * The producer never locks, allocates, waits or makes a system call (ids
 * come from a per-ring pool of ChaCha20 output, keyed from libsodium's
 * CSPRNG when the ring is made).  The consumer runs under the tracer's
 * mutex.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#ifdef __SSSE3__
#include <tmmintrin.h>
#endif

#include <ferry/error.h>

#include "control/trace_internal.h"

#define RING_MIN (4u << 10)
#define RING_MAX (64u << 20)
#define SLOTS_MAX 65536u
/* Flush the export buffer as one line when it grows past this. */
#define EXPORT_FLUSH (256u << 10)

struct ferry_tracer {
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* wakes the thread to stop */
	_Atomic int refs;          /* the creator's, plus one per ring */
	bool stopping;             /* destroy has begun (under lock) */
	bool has_thread;
	pthread_t thread;
	uint32_t interval_us;

	struct ferry_tracer_config cfg;
	char *service;
	int fd;              /* the export file, or -1 */
	char *xhead;         /* each line's text before its spans */
	struct ferry_trace_ring *rings;

	/* Closed spans waiting to be written, as the text of a "spans" array
	 * (without the brackets). */
	char *xbuf;
	size_t xlen, xcap;
	unsigned xspans;
	bool xoom;

	/* The address attributes of recent call spans, as JSON text: a call
	 * span's export copies them (export_call()). */
	struct addr_memo {
		uint32_t server_ip, peer_ip;
		uint16_t server_port, peer_port;
		uint16_t len;     /* 0: empty entry */
		char text[320];
	} memo[16];

	/* put_ns()'s seconds, as text. */
	uint64_t ns_sec;
	char ns_sec_text[20];
	uint8_t ns_sec_len;

	/* Counters kept by the consumer, and those of rings gone. */
	uint64_t events, exported, forced, export_errors, open;
	uint64_t gone[7];
};

/* --- clock and ids --------------------------------------------------------- */

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

/* --- the ring (producer side) ------------------------------------------ */

uint64_t ferry__ring_used(const struct ferry_trace_ring *r)
{
	return r->head - atomic_load_explicit(&r->tail, memory_order_acquire);
}

static void count(_Atomic uint64_t *c)
{
	/* One writer: a relaxed load and store, no locked instruction. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
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

	if (recording && !ring_fits(r, size + FERRY__END_MAX, r->reserved)) {
		count(&r->spans_dropped);
		count(&r->ev_dropped);
		return FERRY__NO_SLOT;
	}
	i = slot_alloc(r);
	if (i == FERRY__NO_SLOT) {
		count(&r->spans_dropped);
		return i;
	}
	if (recording) {
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
	bool have_parent = false, sampled, recording, trunc = false;
	char ts[FERRY_TRACESTATE_KEEP + 1];
	size_t ts_len = 0;
	uint32_t i;
	int rc;

	if (!r || !a || (a->kind != FERRY_SPAN_KIND_CLIENT &&
			 a->kind != FERRY_SPAN_KIND_SERVER))
		return FERRY_SPAN_NONE;
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
		sampled = parent.flags & FERRY_TRACE_FLAG_SAMPLED;
		ev->h.flags |= FERRY__OF_PARENT;
		/* tracestate belongs to the parent's trace: without a valid
		 * traceparent it is meaningless and is dropped. */
		if (a->tracestate && a->tracestate_len) {
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
	 * parent. */
	recording = sampled || r->record_unsampled ||
		    (!have_parent && !r->sample_none);
	i = span_open(r, ev, ts_len, recording);
	if (i == FERRY__NO_SLOT)
		return FERRY_SPAN_NONE;
	s = &r->slots[i];
	s->recording = recording;
	s->sampled = sampled;
	s->root = !have_parent;
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
	uint32_t i;

	if (!ss || !ss->is_session)
		return FERRY_SPAN_NONE;
	if (parent && (zero(parent->trace_id, sizeof(parent->trace_id)) ||
		       zero(parent->span_id, sizeof(parent->span_id))))
		parent = NULL;
	/* Parent-based: a call's own context if it has one; else its
	 * session's decision if the session has a parent; else (a session
	 * that started the trace) a draw per call at the tracer's rate. */
	if (parent) {
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
	if (ts_len) {
		/* Written at once, with its tracestate. */
		union {
			struct ferry__ev_open ev;
			uint8_t raw[FERRY__EV_MAX];
		} u;

		memset(&u.ev, 0, sizeof(u.ev));
		u.ev.h.ts = now_ns(r);
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
		s->start = now_ns(r);
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
	/* As for a session: a tracestate only with a valid traceparent. */
	if (ts && ts_len) {
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

static int set_attr(struct ferry_trace_ring *r, ferry_span_t span,
		    const char *key, int type, const void *val, const char *str)
{
	union {
		struct ferry__ev_attr ev;
		uint8_t raw[FERRY__EV_PAD(sizeof(struct ferry__ev_attr) +
					  FERRY_ATTR_KEY_MAX + FERRY_ATTR_STR_MAX)];
	} u;
	struct ferry__pslot *s;
	size_t klen, vlen = 0, size;

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
	size = FERRY__EV_PAD(sizeof(u.ev) + klen + vlen);
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
	u.ev.klen = (uint8_t)klen;
	u.ev.vlen = (uint16_t)vlen;
	if (val)
		memcpy(&u.ev.v, val, type == FERRY_ATTR_BOOL ? 1 : 8);
	memcpy(u.raw + sizeof(u.ev), key, klen);
	if (vlen)
		memcpy(u.raw + sizeof(u.ev) + klen, str, vlen);
	ring_put(r, &u.ev, size);
	return 0;
}

int ferry_span_set_str(struct ferry_trace_ring *r, ferry_span_t span,
		       const char *key, const char *value)
{
	return set_attr(r, span, key, FERRY_ATTR_STRING, NULL, value ? value : "");
}

int ferry_span_set_int(struct ferry_trace_ring *r, ferry_span_t span,
		       const char *key, int64_t value)
{
	return set_attr(r, span, key, FERRY_ATTR_INT, &value, NULL);
}

int ferry_span_set_bool(struct ferry_trace_ring *r, ferry_span_t span,
			const char *key, bool value)
{
	uint8_t b = value;

	return set_attr(r, span, key, FERRY_ATTR_BOOL, &b, NULL);
}

int ferry_span_set_double(struct ferry_trace_ring *r, ferry_span_t span,
			  const char *key, double value)
{
	return set_attr(r, span, key, FERRY_ATTR_DOUBLE, &value, NULL);
}

int ferry__span_set_attr(struct ferry_trace_ring *r, ferry_span_t span,
			 const struct ferry_trace_attr *a)
{
	if (!a)
		return -EINVAL;
	switch (a->type) {
	case FERRY_ATTR_STRING:
		return ferry_span_set_str(r, span, a->key, a->v.s);
	case FERRY_ATTR_INT:
		return ferry_span_set_int(r, span, a->key, a->v.i);
	case FERRY_ATTR_BOOL:
		return ferry_span_set_bool(r, span, a->key, a->v.b);
	case FERRY_ATTR_DOUBLE:
		return ferry_span_set_double(r, span, a->key, a->v.d);
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

/* --- error names --------------------------------------------------------- */

const char *ferry__trace_error_type(int res)
{
	const char *n;

	switch (-res) {
	case FERRY_EREJECTED:
		return "FERRY_EREJECTED";
	case FERRY_ENOMETHOD:
		return "FERRY_ENOMETHOD";
	case FERRY_EVERSION:
		return "FERRY_EVERSION";
	case FERRY_EPROTO:
		return "FERRY_EPROTO";
	default:
		break;
	}
	n = res < 0 && -res < FERRY_ERRNO_BASE ? strerrorname_np(-res) : NULL;
	/* Semantic conventions: "_OTHER" when no name fits. */
	return n ? n : "_OTHER";
}

/* --- export: JSON text --------------------------------------------------- */

static void xput(struct ferry_tracer *t, const char *s, size_t n)
{
	if (t->xoom)
		return;
	if (t->xlen + n + 1 > t->xcap) {
		size_t cap = t->xcap ? t->xcap : 4096;
		char *p;

		while (cap < t->xlen + n + 1)
			cap *= 2;
		p = realloc(t->xbuf, cap);
		if (!p) {
			t->xoom = true;
			return;
		}
		t->xbuf = p;
		t->xcap = cap;
	}
	memcpy(t->xbuf + t->xlen, s, n);
	t->xlen += n;
	t->xbuf[t->xlen] = '\0';
}

static void xputs(struct ferry_tracer *t, const char *s)
{
	xput(t, s, strlen(s));
}

/* A string literal, its length known at compile time. */
#define XLIT(t, lit) xput((t), "" lit, sizeof(lit) - 1)

/* Decimal integers by hand: the exporter writes several per span, and
 * printf's machinery was most of its time (perf, issue 7). */
static void xu64(struct ferry_tracer *t, uint64_t v)
{
	char buf[20];
	size_t i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	xput(t, buf + i, sizeof(buf) - i);
}

static void xi64(struct ferry_tracer *t, int64_t v)
{
	if (v < 0) {
		xput(t, "-", 1);
		xu64(t, (uint64_t)0 - (uint64_t)v);
	} else {
		xu64(t, (uint64_t)v);
	}
}

static void xprintf(struct ferry_tracer *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void xprintf(struct ferry_tracer *t, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		xput(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

bool ferry__utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1
			 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 4;

		if (k == 4 || k > n - i - 1)
			return false;
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		if ((k == 1 && c < 0xc2) || (c == 0xe0 && s[i + 1] < 0xa0) ||
		    (c == 0xed && s[i + 1] >= 0xa0) ||
		    (c == 0xf0 && s[i + 1] < 0x90) || c > 0xf4 ||
		    (c == 0xf4 && s[i + 1] >= 0x90))
			return false;
		i += k + 1;
	}
	return true;
}

/* A JSON string.  Text that is not valid UTF-8 has each byte >= 0x80
 * written as \u00XX, so the line is always valid JSON. */
static void xstr(struct ferry_tracer *t, const char *s)
{
	size_t n = 0, run = 0;
	bool raw, plain = true;
	char esc[8];

	/* Most strings (keys, method names, addresses) are plain ASCII with
	 * nothing to escape: one pass to see that, one copy. */
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f)
			plain = false;
	}
	if (plain) {
		xput(t, "\"", 1);
		xput(t, s, n);
		xput(t, "\"", 1);
		return;
	}
	raw = ferry__utf8_ok((const unsigned char *)s, n);

	xput(t, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\' || c < 0x20 || c == 0x7f ||
		    (c >= 0x80 && !raw)) {
			xput(t, s + i - run, run);
			run = 0;
			if (c == '"' || c == '\\') {
				esc[0] = '\\';
				esc[1] = (char)c;
				xput(t, esc, 2);
			} else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				xput(t, esc, 6);
			}
		} else {
			run++;
		}
	}
	xput(t, s + n - run, run);
	xput(t, "\"", 1);
}

static void xhex(struct ferry_tracer *t, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char buf[2 * FERRY_TRACE_ID_LEN + 2];

	buf[0] = '"';
	for (size_t i = 0; i < n; i++) {
		buf[1 + 2 * i] = digits[b[i] >> 4];
		buf[2 + 2 * i] = digits[b[i] & 15];
	}
	buf[1 + 2 * n] = '"';
	xput(t, buf, 2 * n + 2);
}

static void xattr(struct ferry_tracer *t, const struct ferry_trace_attr *a)
{
	xputs(t, "{\"key\":");
	xstr(t, a->key);
	xputs(t, ",\"value\":{");
	switch (a->type) {
	case FERRY_ATTR_STRING:
		xputs(t, "\"stringValue\":");
		xstr(t, a->v.s);
		break;
	case FERRY_ATTR_INT:
		/* int64 is a decimal string in the protobuf JSON mapping. */
		XLIT(t, "\"intValue\":\"");
		xi64(t, a->v.i);
		XLIT(t, "\"");
		break;
	case FERRY_ATTR_BOOL:
		xputs(t, a->v.b ? "\"boolValue\":true" : "\"boolValue\":false");
		break;
	default:
		/* JSON has no NaN or infinities; the mapping spells them. */
		if (isnan(a->v.d))
			xputs(t, "\"doubleValue\":\"NaN\"");
		else if (isinf(a->v.d))
			xputs(t, a->v.d > 0 ? "\"doubleValue\":\"Infinity\""
					    : "\"doubleValue\":\"-Infinity\"");
		else
			xprintf(t, "\"doubleValue\":%.17g", a->v.d);
		break;
	}
	xputs(t, "}}");
}

/* Append one closed span to the pending "spans" array. */
static void export_span(struct ferry_tracer *t, const struct ferry_span_info *s)
{
	if (t->xspans)
		xput(t, ",", 1);
	xputs(t, "{\"traceId\":");
	xhex(t, s->trace_id, FERRY_TRACE_ID_LEN);
	xputs(t, ",\"spanId\":");
	xhex(t, s->span_id, FERRY_SPAN_ID_LEN);
	if (s->has_parent) {
		xputs(t, ",\"parentSpanId\":");
		xhex(t, s->parent_span_id, FERRY_SPAN_ID_LEN);
	}
	if (s->tracestate[0]) {
		xputs(t, ",\"traceState\":");
		xstr(t, s->tracestate);
	}
	xputs(t, ",\"name\":");
	xstr(t, s->name);
	XLIT(t, ",\"kind\":");
	xi64(t, s->kind);
	XLIT(t, ",\"startTimeUnixNano\":\"");
	xu64(t, s->start_ns);
	XLIT(t, "\",\"endTimeUnixNano\":\"");
	xu64(t, s->end_ns);
	XLIT(t, "\"");
	xputs(t, ",\"attributes\":[");
	for (unsigned i = 0; i < s->n_attrs; i++) {
		if (i)
			xput(t, ",", 1);
		xattr(t, &s->attrs[i]);
	}
	xput(t, "]", 1);
	if (s->dropped_attrs)
		xprintf(t, ",\"droppedAttributesCount\":%u", s->dropped_attrs);
	XLIT(t, ",\"status\":{\"code\":");
	xi64(t, s->status);
	if (s->status_msg[0]) {
		xputs(t, ",\"message\":");
		xstr(t, s->status_msg);
	}
	xputs(t, "}}");
	t->xspans++;
}

/* All of @n bytes of @iov to @fd (a partial write is continued). */
static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Write the pending spans as one TracesData line: one writev of the line's
 * head, the spans as they are in the buffer, and its tail. */
static int export_flush(struct ferry_tracer *t)
{
	static const char tail[] = "]}]}]}\n";
	struct iovec iov[3];
	int rc = 0;

	if (!t->xspans)
		return 0;
	if (t->fd >= 0 && !t->xoom) {
		iov[0] = (struct iovec){ t->xhead, strlen(t->xhead) };
		iov[1] = (struct iovec){ t->xbuf, t->xlen };
		iov[2] = (struct iovec){ (void *)tail, sizeof(tail) - 1 };
		if (write_all(t->fd, iov, 3) < 0)
			rc = -EIO;
	} else if (t->fd >= 0) {
		rc = -ENOMEM;
	}
	if (rc < 0)
		t->export_errors += t->xspans;
	t->xlen = 0;
	t->xspans = 0;
	t->xoom = false;
	return rc;
}

/* --- consumer ------------------------------------------------------------ */

static void rec_free(struct ferry__crec *c)
{
	for (unsigned i = 0; i < c->info.n_attrs; i++) {
		if (c->own_key >> i & 1)
			free((char *)c->attrs[i].key);
		if (c->own_val >> i & 1)
			free((char *)c->attrs[i].v.s);
	}
	free(c->tracestate);
	free(c);
}

/* Set (or replace) an attribute; the strings are copied. */
static const struct ferry_trace_attr *rec_set(struct ferry__crec *c,
					      const char *key, size_t klen,
					      int type, const void *v,
					      const char *s, size_t slen)
{
	struct ferry_trace_attr *a = NULL;
	char *k = NULL, *str = NULL;

	for (unsigned i = 0; i < c->info.n_attrs; i++)
		if (strlen(c->attrs[i].key) == klen &&
		    memcmp(c->attrs[i].key, key, klen) == 0)
			a = &c->attrs[i];
	if (!a) {
		if (c->info.n_attrs == FERRY_SPAN_ATTRS_MAX) {
			c->info.dropped_attrs++;
			return NULL;
		}
		k = strndup(key, klen);
		if (!k) {
			c->info.dropped_attrs++;
			return NULL;
		}
	}
	if (type == FERRY_ATTR_STRING && !(str = strndup(s, slen))) {
		free(k);
		c->info.dropped_attrs++;
		return NULL;
	}
	if (a) {
		unsigned i = (unsigned)(a - c->attrs);

		if (c->own_val >> i & 1)
			free((char *)a->v.s);
		c->own_val &= ~(1u << i);
	} else {
		a = &c->attrs[c->info.n_attrs++];
		a->key = k;
		c->own_key |= 1u << (a - c->attrs);
	}
	if (str)
		c->own_val |= 1u << (a - c->attrs);
	a->type = type;
	switch (type) {
	case FERRY_ATTR_STRING:
		a->v.s = str;
		break;
	case FERRY_ATTR_INT:
		memcpy(&a->v.i, v, sizeof(a->v.i));
		break;
	case FERRY_ATTR_BOOL:
		a->v.b = *(const uint8_t *)v != 0;
		break;
	default:
		memcpy(&a->v.d, v, sizeof(a->v.d));
		break;
	}
	return a;
}

static void rec_set_str(struct ferry__crec *c, const char *key, const char *s)
{
	rec_set(c, key, strlen(key), FERRY_ATTR_STRING, NULL, s, strlen(s));
}

/* A built-in attribute of a fresh record: @key a literal, @s a literal or
 * one of the record's own buffers; nothing is copied. */
static void rec_put_str(struct ferry__crec *c, const char *key, const char *s)
{
	struct ferry_trace_attr *a = &c->attrs[c->info.n_attrs++];

	a->key = key;
	a->type = FERRY_ATTR_STRING;
	a->v.s = s;
}

static void rec_put_int(struct ferry__crec *c, const char *key, int64_t v)
{
	struct ferry_trace_attr *a = &c->attrs[c->info.n_attrs++];

	a->key = key;
	a->type = FERRY_ATTR_INT;
	a->v.i = v;
}

/* @v in decimal into @buf (at least 11 bytes). */
static void u32_text(uint32_t v, char *buf)
{
	char tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*buf++ = tmp[--n];
	*buf = 0;
}

static void emit(struct ferry_tracer *t, int type, const struct ferry__crec *c,
		 const struct ferry_trace_attr *a)
{
	if (t->cfg.on_event)
		t->cfg.on_event(t->cfg.on_event_arg, type, &c->info, a);
}

/* Close @c with @status/@msg at @ts, hand it over, export it, free it. */
static void rec_close(struct ferry_tracer *t, struct ferry_trace_ring *r,
		      uint32_t slot, uint64_t ts, int status, const char *msg)
{
	struct ferry__crec *c = r->recs[slot];

	c->info.end_ns = ts < c->info.start_ns ? c->info.start_ns : ts;
	c->info.status = status;
	snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : "");
	emit(t, FERRY_TRACE_EV_CLOSE, c, NULL);
	if (t->fd >= 0) {
		export_span(t, &c->info);
		if (t->xlen >= EXPORT_FLUSH)
			export_flush(t);
	}
	t->exported++;
	t->open--;
	r->recs[slot] = NULL;
	rec_free(c);
}

static void ip_text(uint32_t ip, char *buf, size_t cap)
{
	struct in_addr a = { .s_addr = ip };

	if (!inet_ntop(AF_INET, &a, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
}

/* Fill a fresh (zeroed) record from an OPEN: ids, times, built-in
 * attributes (pointing at literals and the record's own buffers). */
static bool rec_fill(struct ferry__crec *c, const struct ferry__ev_open *ev,
		     const char *tstate)
{
	c->gen = ev->h.gen;
	memcpy(c->info.trace_id, ev->trace_id, sizeof(ev->trace_id));
	memcpy(c->info.span_id, ev->span_id, sizeof(ev->span_id));
	memcpy(c->info.parent_span_id, ev->parent_id, sizeof(ev->parent_id));
	c->info.has_parent = ev->h.flags & FERRY__OF_PARENT;
	c->info.is_session = ev->h.flags & FERRY__OF_SESSION;
	c->info.sampled = ev->h.flags & FERRY__OF_SAMPLED;
	c->info.kind = ev->kind;
	c->info.start_ns = ev->h.ts;
	c->info.name = c->name;
	c->info.status_msg = c->msg;
	c->info.attrs = c->attrs;
	c->info.tracestate = "";
	if (ev->ts_len) {
		c->tracestate = strndup(tstate, ev->ts_len);
		if (!c->tracestate)
			return false;
		c->info.tracestate = c->tracestate;
	}
	rec_put_str(c, "rpc.system", "ferry");
	if (c->info.is_session) {
		memcpy(c->name, "ferry.session", sizeof("ferry.session"));
	} else {
		u32_text(ev->h.aux & 0xffff, c->method);
		memcpy(c->name, "ferry/", 6);
		memcpy(c->name + 6, c->method, strlen(c->method) + 1);
		rec_put_str(c, "rpc.method", c->method);
	}
	if (ev->server_ip) {
		ip_text(ev->server_ip, c->server_ip, sizeof(c->server_ip));
		rec_put_str(c, "server.address", c->server_ip);
	}
	if (ev->server_port)
		rec_put_int(c, "server.port", ev->server_port);
	if (ev->peer_ip) {
		ip_text(ev->peer_ip, c->peer_ip, sizeof(c->peer_ip));
		rec_put_str(c, "network.peer.address", c->peer_ip);
	}
	if (ev->peer_port)
		rec_put_int(c, "network.peer.port", ev->peer_port);
	return true;
}

/* An older span in @slot means its END never came; the ring's reservation
 * makes that impossible, but a record must not leak. */
static void slot_clear(struct ferry_tracer *t, struct ferry_trace_ring *r,
		       uint32_t slot, uint64_t ts)
{
	if (r->recs[slot]) {
		t->forced++;
		rec_close(t, r, slot, ts, FERRY_SPAN_STATUS_ERROR,
			  "span end lost");
	}
}

static void on_open(struct ferry_tracer *t, struct ferry_trace_ring *r,
		    const struct ferry__ev_open *ev, const char *tstate)
{
	struct ferry__crec *c;

	slot_clear(t, r, ev->h.slot, ev->h.ts);
	c = calloc(1, sizeof(*c));
	if (!c)
		return; /* its later events find no record and are ignored */
	if (!rec_fill(c, ev, tstate)) {
		free(c);
		return;
	}
	r->recs[ev->h.slot] = c;
	t->open++;
	emit(t, FERRY_TRACE_EV_OPEN, c, NULL);
}

static struct ferry__crec *rec_of(struct ferry_trace_ring *r,
				  const struct ferry__ev *h)
{
	struct ferry__crec *c = h->slot < r->nslots ? r->recs[h->slot] : NULL;

	return c && c->gen == h->gen ? c : NULL;
}

static void on_attr(struct ferry_tracer *t, struct ferry_trace_ring *r,
		    const struct ferry__ev_attr *ev, const char *key)
{
	struct ferry__crec *c = rec_of(r, &ev->h);
	const struct ferry_trace_attr *a;

	if (!c)
		return;
	a = rec_set(c, key, ev->klen, ev->h.flags, &ev->v, key + ev->klen,
		    ev->vlen);
	if (a)
		emit(t, FERRY_TRACE_EV_ATTR, c, a);
}

/* How a span ended (@how: enum ferry_span_end or FERRY__END_CALL, @res,
 * the reason given): its status, its message into @m, and error.type. */
static int rec_status(struct ferry__crec *c, uint8_t how, int res,
		      const char *msg, size_t mlen, char m[FERRY_SPAN_MSG_MAX + 1])
{
	int status = FERRY_SPAN_STATUS_ERROR;

	snprintf(m, FERRY_SPAN_MSG_MAX + 1, "%.*s", (int)mlen, msg);
	switch (how) {
	case FERRY__END_CALL:
	case FERRY_SPAN_END_CLOSE:
		if (res == 0 || how == FERRY_SPAN_END_CLOSE) {
			status = FERRY_SPAN_STATUS_UNSET;
			m[0] = '\0';
		} else if (!m[0]) {
			snprintf(m, FERRY_SPAN_MSG_MAX + 1, "%s",
				 ferry_strerror(res));
		}
		break;
	case FERRY_SPAN_END_PEER_DEAD:
		if (!m[0])
			snprintf(m, FERRY_SPAN_MSG_MAX + 1, "peer timed out");
		break;
	case FERRY_SPAN_END_SHUTDOWN:
		if (!m[0])
			snprintf(m, FERRY_SPAN_MSG_MAX + 1, "endpoint shut down");
		break;
	default:
		if (!m[0])
			snprintf(m, FERRY_SPAN_MSG_MAX + 1, "%s",
				 res ? ferry_strerror(res) : "session error");
		break;
	}
	if (status == FERRY_SPAN_STATUS_ERROR) {
		if (res < 0)
			rec_set_str(c, "error.type", ferry__trace_error_type(res));
		else if (how == FERRY_SPAN_END_PEER_DEAD)
			rec_set_str(c, "error.type", "ETIMEDOUT");
		else
			rec_set_str(c, "error.type", "_OTHER");
	}
	return status;
}

static void on_end(struct ferry_tracer *t, struct ferry_trace_ring *r,
		   const struct ferry__ev_end *ev, const char *msg)
{
	struct ferry__crec *c = rec_of(r, &ev->h);
	char m[FERRY_SPAN_MSG_MAX + 1];
	int status;

	if (!c)
		return;
	status = rec_status(c, ev->h.flags, ev->res, msg, ev->mlen, m);
	rec_close(t, r, ev->h.slot, ev->h.ts, status, m);
}

/* Two decimal digits at a time, for the exporter's timestamps. */
static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233"
	"34353637383940414243444546474849505152535455565758596061626364656667"
	"6869707172737475767778798081828384858687888990919293949596979899";

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;

		v /= 100;
		tmp[--i] = digit_pairs[d + 1];
		tmp[--i] = digit_pairs[d];
	}
	if (v >= 10) {
		tmp[--i] = digit_pairs[v * 2 + 1];
		tmp[--i] = digit_pairs[v * 2];
	} else {
		tmp[--i] = (char)('0' + v);
	}
	memcpy(p, tmp + i, sizeof(tmp) - i);
	return p + (sizeof(tmp) - i);
}

/* An id in lower-case hex: @n is 8 or 16 bytes. */
static char *put_hex(char *p, const uint8_t *b, size_t n)
{
#ifdef __SSSE3__
	/* Each nibble looked up in one shuffle (the exporter writes 32 bytes
	 * of ids per span). */
	const __m128i lut = _mm_setr_epi8('0', '1', '2', '3', '4', '5', '6',
					  '7', '8', '9', 'a', 'b', 'c', 'd',
					  'e', 'f');
	const __m128i mask = _mm_set1_epi8(0x0f);
	__m128i v = n == 16 ? _mm_loadu_si128((const __m128i *)(const void *)b)
			    : _mm_loadl_epi64((const __m128i *)(const void *)b);
	__m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(v, 4),
							 mask));
	__m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(v, mask));

	_mm_storeu_si128((__m128i *)(void *)p, _mm_unpacklo_epi8(hi, lo));
	if (n == 16)
		_mm_storeu_si128((__m128i *)(void *)(p + 16),
				 _mm_unpackhi_epi8(hi, lo));
	return p + 2 * n;
#else
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*p++ = digits[b[i] >> 4];
		*p++ = digits[b[i] & 15];
	}
	return p;
#endif
}

/* A Unix time in ns, in decimal: the seconds as text kept from the last
 * call (they seldom change), then nine digits of nanoseconds.  Writes up
 * to 29 bytes at @p, whatever the number's length. */
static char *put_ns(struct ferry_tracer *t, char *p, uint64_t v)
{
	uint64_t sec = v / 1000000000u;
	uint32_t ns = (uint32_t)(v % 1000000000u);

	if (sec == 0) {
		/* No leading zeros: the plain number. */
		return put_u64(p, v);
	}
	if (sec != t->ns_sec || !t->ns_sec_len) {
		t->ns_sec = sec;
		t->ns_sec_len = (uint8_t)(put_u64(t->ns_sec_text, sec) -
					  t->ns_sec_text);
	}
	/* A fixed-size copy (the caller has room past the number). */
	memcpy(p, t->ns_sec_text, sizeof(t->ns_sec_text));
	p += t->ns_sec_len;
	/* Nine digits, as four pairs and one, each quotient independent of
	 * the others' remainders. */
	memcpy(p, digit_pairs + 2 * (ns / 10000000), 2);
	memcpy(p + 2, digit_pairs + 2 * (ns / 100000 % 100), 2);
	memcpy(p + 4, digit_pairs + 2 * (ns / 1000 % 100), 2);
	memcpy(p + 6, digit_pairs + 2 * (ns / 10 % 100), 2);
	p[8] = (char)('0' + ns % 10);
	return p + 9;
}

#define PUT_LIT(p, lit) (memcpy((p), "" lit, sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/*
 * Export a call span that ended well and that nothing enriched, straight
 * from its CALL record: the same bytes export_span() writes for it, with
 * the connection's attributes copied from a memo instead of formatted.
 */
static void export_call(struct ferry_tracer *t, const struct ferry__ev_call *ev)
{
	/* Every part but the address attributes is bounded by this. */
	const size_t fixed = 512;
	unsigned h = (ev->peer_ip ^ ev->server_ip ^ ev->peer_port ^
		      (uint32_t)ev->server_port << 7) * 0x9e3779b1u >> 28;
	struct addr_memo *m = &t->memo[h];
	uint64_t start = ev->start, end = ev->h.ts < start ? start : ev->h.ts;
	char method[12], *p, *m0;
	size_t mlen, mark;

	if (t->xoom)
		return;
	if (t->xlen + fixed + sizeof(m->text) + 1 > t->xcap) {
		/* Grow through xput (which keeps its own bookkeeping). */
		xput(t, "", 0);
		if (t->xoom || t->xlen + fixed + sizeof(m->text) + 1 > t->xcap) {
			size_t cap = t->xcap ? t->xcap : 4096;
			char *nb;

			while (cap < t->xlen + fixed + sizeof(m->text) + 1)
				cap *= 2;
			nb = realloc(t->xbuf, cap);
			if (!nb) {
				t->xoom = true;
				return;
			}
			t->xbuf = nb;
			t->xcap = cap;
		}
	}
	m0 = put_u64(method, ev->h.aux & 0xffff);
	mlen = (size_t)(m0 - method);
	p = t->xbuf + t->xlen;
	if (t->xspans)
		*p++ = ',';
	p = PUT_LIT(p, "{\"traceId\":\"");
	p = put_hex(p, ev->trace_id, sizeof(ev->trace_id));
	p = PUT_LIT(p, "\",\"spanId\":\"");
	p = put_hex(p, ev->span_id, sizeof(ev->span_id));
	p = PUT_LIT(p, "\",\"parentSpanId\":\"");
	p = put_hex(p, ev->parent_id, sizeof(ev->parent_id));
	p = PUT_LIT(p, "\",\"name\":\"ferry/");
	memcpy(p, method, mlen);
	p += mlen;
	p = PUT_LIT(p, "\",\"kind\":");
	p = put_u64(p, ev->kind);
	p = PUT_LIT(p, ",\"startTimeUnixNano\":\"");
	p = put_ns(t, p, start);
	p = PUT_LIT(p, "\",\"endTimeUnixNano\":\"");
	p = put_ns(t, p, end);
	p = PUT_LIT(p, "\",\"attributes\":[{\"key\":\"rpc.system\",\"value\":"
		       "{\"stringValue\":\"ferry\"}},{\"key\":\"rpc.method\","
		       "\"value\":{\"stringValue\":\"");
	memcpy(p, method, mlen);
	p += mlen;
	p = PUT_LIT(p, "\"}}");
	t->xlen = (size_t)(p - t->xbuf);
	if (!m->len || m->server_ip != ev->server_ip ||
	    m->peer_ip != ev->peer_ip || m->server_port != ev->server_port ||
	    m->peer_port != ev->peer_port) {
		/* Format them the general way, then keep the text. */
		char sip[16], pip[16];
		const struct ferry_trace_attr as[] = {
			{ .key = "server.address", .type = FERRY_ATTR_STRING,
			  .v.s = sip },
			{ .key = "server.port", .type = FERRY_ATTR_INT,
			  .v.i = ev->server_port },
			{ .key = "network.peer.address",
			  .type = FERRY_ATTR_STRING, .v.s = pip },
			{ .key = "network.peer.port", .type = FERRY_ATTR_INT,
			  .v.i = ev->peer_port },
		};
		/* As rec_fill() leaves them out: a zero address or port. */
		const bool have[] = { ev->server_ip, ev->server_port,
				      ev->peer_ip, ev->peer_port };

		ip_text(ev->server_ip, sip, sizeof(sip));
		ip_text(ev->peer_ip, pip, sizeof(pip));
		mark = t->xlen;
		for (size_t i = 0; i < sizeof(as) / sizeof(as[0]); i++) {
			if (!have[i])
				continue;
			xput(t, ",", 1);
			xattr(t, &as[i]);
		}
		if (t->xoom)
			return;
		m->len = 0;
		if (t->xlen - mark < sizeof(m->text)) {
			memcpy(m->text, t->xbuf + mark, t->xlen - mark);
			m->len = (uint16_t)(t->xlen - mark);
			m->server_ip = ev->server_ip;
			m->peer_ip = ev->peer_ip;
			m->server_port = ev->server_port;
			m->peer_port = ev->peer_port;
		}
		p = t->xbuf + t->xlen;
	} else {
		memcpy(p, m->text, m->len);
		p += m->len;
	}
	p = PUT_LIT(p, "],\"status\":{\"code\":0}}");
	*p = '\0';
	t->xlen = (size_t)(p - t->xbuf);
	t->xspans++;
}

/* A whole call span (a CALL record).  Without a callback, a call that
 * succeeded goes straight to the file (export_call()); otherwise it is a
 * record for a moment, with OPEN and CLOSE events, like any span. */
static void on_call(struct ferry_tracer *t, struct ferry_trace_ring *r,
		    const struct ferry__ev_call *ev)
{
	struct ferry__ev_open o;
	struct ferry__crec *c;
	char m[FERRY_SPAN_MSG_MAX + 1];
	int status;

	slot_clear(t, r, ev->h.slot, ev->h.ts);
	if (ev->res == 0 && !t->cfg.on_event) {
		if (t->fd >= 0) {
			export_call(t, ev);
			if (t->xlen >= EXPORT_FLUSH)
				export_flush(t);
		}
		t->exported++;
		return;
	}
	memset(&o, 0, sizeof(o));
	o.h = ev->h;
	o.h.ts = ev->start;
	memcpy(o.trace_id, ev->trace_id, sizeof(o.trace_id));
	memcpy(o.span_id, ev->span_id, sizeof(o.span_id));
	memcpy(o.parent_id, ev->parent_id, sizeof(o.parent_id));
	o.peer_ip = ev->peer_ip;
	o.peer_port = ev->peer_port;
	o.server_ip = ev->server_ip;
	o.server_port = ev->server_port;
	o.kind = ev->kind;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	rec_fill(c, &o, NULL);
	r->recs[ev->h.slot] = c;
	t->open++;
	emit(t, FERRY_TRACE_EV_OPEN, c, NULL);
	status = rec_status(c, FERRY__END_CALL, ev->res, "", 0, m);
	rec_close(t, r, ev->h.slot, ev->h.ts, status, m);
}

/* Copy @n bytes at ring offset @pos out (they may wrap). */
static void ring_get(const struct ferry_trace_ring *r, uint64_t pos, void *out,
		     size_t n)
{
	uint64_t off = pos & (r->cap - 1);
	size_t first = r->cap - off < n ? (size_t)(r->cap - off) : n;

	memcpy(out, r->buf + off, first);
	memcpy((uint8_t *)out + first, r->buf, n - first);
}

/* Process every record @r holds now.  Under the tracer's lock. */
static int ring_drain(struct ferry_tracer *t, struct ferry_trace_ring *r)
{
	union {
		struct ferry__ev h;
		struct ferry__ev_open open;
		struct ferry__ev_attr attr;
		struct ferry__ev_end end;
		struct ferry__ev_call call;
		uint8_t raw[FERRY__EV_MAX];
	} u;
	/* Acquire: pairs with the producer's release in ring_put(). */
	uint64_t head = atomic_load_explicit(&r->head_pub, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	const void *ev;
	uint64_t off;
	int n = 0;

	while (tail != head) {
		ring_get(r, tail, &u.h, sizeof(u.h));
		if (u.h.size < sizeof(u.h) || u.h.size > sizeof(u) ||
		    u.h.size > head - tail || u.h.slot >= r->nslots) {
			/* Cannot happen: the producer is this library.  Skip
			 * what is there rather than read garbage. */
			tail = head;
			break;
		}
		/* Read in place unless it wraps: the producer leaves the bytes
		 * alone until the tail passes them. */
		off = tail & (r->cap - 1);
		if (off + u.h.size <= r->cap) {
			ev = r->buf + off;
		} else {
			ring_get(r, tail, u.raw, u.h.size);
			ev = u.raw;
		}
		switch (u.h.type) {
		case FERRY__EV_OPEN:
			on_open(t, r, ev, (const char *)ev +
				sizeof(struct ferry__ev_open));
			break;
		case FERRY__EV_ATTR:
			on_attr(t, r, ev, (const char *)ev +
				sizeof(struct ferry__ev_attr));
			break;
		case FERRY__EV_END:
			on_end(t, r, ev, (const char *)ev +
			       sizeof(struct ferry__ev_end));
			break;
		case FERRY__EV_CALL:
			on_call(t, r, ev);
			break;
		default:
			break;
		}
		tail += u.h.size;
		n++;
		/* Release: our reads of the record are done before the
		 * producer may reuse its bytes. */
		atomic_store_explicit(&r->tail, tail, memory_order_release);
	}
	atomic_store_explicit(&r->tail, tail, memory_order_release);
	t->events += (uint64_t)n;
	return n;
}

/* Close every span of @r still open with @why.  Under the lock.  With
 * @producer_done (the ring is being destroyed: its producer has stopped),
 * call spans the consumer never heard of (lazy: no OPEN yet) are read from
 * the producer's slots and closed too. */
static void ring_force_close(struct ferry_tracer *t, struct ferry_trace_ring *r,
			     const char *why, uint64_t ts, bool producer_done)
{
	for (uint32_t i = 0; i < r->nslots; i++) {
		struct ferry__pslot *p = &r->slots[i];
		struct ferry__crec *c = r->recs[i];

		if (!c && producer_done && p->open && p->lazy) {
			struct ferry__ev_open o;

			lazy_open_ev(r, i, &o);
			on_open(t, r, &o, NULL);
			c = r->recs[i];
		}
		if (!c)
			continue;
		rec_set_str(c, "error.type", "shutdown");
		t->forced++;
		rec_close(t, r, i, ts, FERRY_SPAN_STATUS_ERROR, why);
	}
}

static int drain_locked(struct ferry_tracer *t)
{
	int n = 0, rc;

	for (struct ferry_trace_ring *r = t->rings; r; r = r->next)
		n += ring_drain(t, r);
	rc = export_flush(t);
	return rc < 0 ? rc : n;
}

int ferry_tracer_drain(struct ferry_tracer *t)
{
	int rc;

	if (!t)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	rc = t->stopping ? 0 : drain_locked(t);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static void *tracer_thread(void *arg)
{
	struct ferry_tracer *t = arg;
	struct timespec ts;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		drain_locked(t);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)t->interval_us * 1000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* --- lifetime -------------------------------------------------------------- */

void ferry_tracer_config_init(struct ferry_tracer_config *c)
{
	memset(c, 0, sizeof(*c));
	c->sample_rate = 1.0;
	c->record_unsampled_sessions = true;
	c->ring_bytes = 256u << 10;
	c->max_spans = 4096;
	c->drain_interval_us = 1000;
}

static void tracer_unref(struct ferry_tracer *t)
{
	if (atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t->xbuf);
	free(t->xhead);
	free(t->service);
	free(t);
}

static bool service_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

int ferry_tracer_create(const struct ferry_tracer_config *c,
			struct ferry_tracer **out)
{
	struct ferry_tracer *t;
	pthread_condattr_t ca;
	int rc;

	if (!c || !out || !(c->sample_rate >= 0.0 && c->sample_rate <= 1.0) ||
	    c->ring_bytes < RING_MIN || c->ring_bytes > RING_MAX ||
	    c->max_spans < 1 || c->max_spans > SLOTS_MAX ||
	    (c->service_name && !service_ok(c->service_name)) ||
	    (c->thread && (c->drain_interval_us < 1 ||
			   c->drain_interval_us > 10000000)))
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cfg = *c;
	t->cfg.export_path = NULL;
	t->cfg.service_name = NULL;
	t->refs = 1;
	t->interval_us = c->drain_interval_us;
	t->service = strdup(c->service_name ? c->service_name : "ferry");
	if (!t->service) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	t->fd = -1;
	if (c->export_path) {
		t->fd = open(c->export_path,
			     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
				     (c->export_replace ? O_TRUNC : 0),
			     0644);
		if (t->fd < 0) {
			rc = -errno;
			goto err;
		}
		/* The service name was checked to need no escaping. */
		if (asprintf(&t->xhead,
			     "{\"resourceSpans\":[{\"resource\":{\"attributes\":"
			     "[{\"key\":\"service.name\",\"value\":"
			     "{\"stringValue\":\"%s\"}}]},\"scopeSpans\":"
			     "[{\"scope\":{\"name\":\"ferry\",\"version\":"
			     "\"0.1.0\"},\"spans\":[",
			     t->service) < 0) {
			t->xhead = NULL;
			rc = -ENOMEM;
			goto err;
		}
	}
	if (c->thread) {
		rc = -pthread_create(&t->thread, NULL, tracer_thread, t);
		if (rc < 0)
			goto err;
		t->has_thread = true;
	}
	*out = t;
	return 0;
err:
	if (t->fd >= 0)
		close(t->fd);
	tracer_unref(t);
	return rc;
}

void ferry_tracer_destroy(struct ferry_tracer *t)
{
	struct timespec ts;
	uint64_t now;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (t->has_thread)
		pthread_join(t->thread, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(&t->lock);
	drain_locked(t);
	for (struct ferry_trace_ring *r = t->rings; r; r = r->next)
		ring_force_close(t, r, "tracer shut down",
				 t->cfg.clock ? t->cfg.clock(t->cfg.clock_arg) : now,
				 false);
	export_flush(t);
	if (t->fd >= 0) {
		close(t->fd);
		t->fd = -1;
	}
	pthread_mutex_unlock(&t->lock);
	tracer_unref(t);
}

int ferry_trace_ring_create(struct ferry_tracer *t,
			    struct ferry_trace_ring **out)
{
	struct ferry_trace_ring *r;
	uint64_t cap = RING_MIN;
	int rc = 0;

	if (!t || !out)
		return -EINVAL;
	while (cap < t->cfg.ring_bytes)
		cap <<= 1;
	r = aligned_alloc(64, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->nslots = t->cfg.max_spans;
	/* Populated now, so the producer never takes a first-touch page
	 * fault on the fast path.  (A malloc() and memset() did not do it:
	 * the compiler may make them one calloc(), whose pages are touched
	 * only when written.) */
	r->buf = mmap(NULL, cap, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r->buf == MAP_FAILED)
		r->buf = NULL;
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	r->recs = calloc(r->nslots, sizeof(*r->recs));
	if (!r->buf || !r->slots || !r->recs) {
		rc = -ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < r->nslots; i++)
		r->slots[i].next_free = i + 1 < r->nslots ? i + 1 : FERRY__NO_SLOT;
	r->free_head = 0;
	r->rng_off = sizeof(r->rng); /* empty: filled at first use */
	randombytes_buf(r->rng_key, sizeof(r->rng_key));
	r->sample_all = t->cfg.sample_rate >= 1.0;
	r->sample_none = t->cfg.sample_rate <= 0.0;
	/* Below 1 (sample_all), rate * 2^64 fits in 64 bits. */
	if (!r->sample_all)
		r->sample_threshold =
			(uint64_t)(t->cfg.sample_rate * 18446744073709551616.0);
	r->record_unsampled = t->cfg.record_unsampled_sessions;
	r->clock = t->cfg.clock;
	r->clock_arg = t->cfg.clock_arg;
	r->tracer = t;
	pthread_mutex_lock(&t->lock);
	if (t->stopping) {
		pthread_mutex_unlock(&t->lock);
		rc = -ESHUTDOWN;
		goto err;
	}
	atomic_fetch_add(&t->refs, 1);
	r->next = t->rings;
	t->rings = r;
	pthread_mutex_unlock(&t->lock);
	*out = r;
	return 0;
err:
	if (r->buf)
		munmap(r->buf, cap);
	free(r->slots);
	free(r->recs);
	free(r);
	return rc;
}

static void ring_counts(const struct ferry_trace_ring *r, uint64_t v[7])
{
	v[0] = atomic_load_explicit(&r->ev_dropped, memory_order_relaxed);
	v[1] = atomic_load_explicit(&r->spans_dropped, memory_order_relaxed);
	v[2] = atomic_load_explicit(&r->stale, memory_order_relaxed);
	v[3] = atomic_load_explicit(&r->unsampled, memory_order_relaxed);
	v[4] = atomic_load_explicit(&r->tp_malformed, memory_order_relaxed);
	v[5] = atomic_load_explicit(&r->ts_malformed, memory_order_relaxed);
	v[6] = atomic_load_explicit(&r->ts_truncated, memory_order_relaxed);
}

void ferry_trace_ring_destroy(struct ferry_trace_ring *r)
{
	struct ferry_tracer *t;
	uint64_t v[7];

	if (!r)
		return;
	t = r->tracer;
	pthread_mutex_lock(&t->lock);
	if (!t->stopping) {
		ring_drain(t, r);
		ring_force_close(t, r, "endpoint shut down", now_ns(r), true);
		export_flush(t);
	} else {
		/* The tracer closed these spans already; what came since is
		 * dropped.  Free the records of spans opened after that. */
		for (uint32_t i = 0; i < r->nslots; i++)
			if (r->recs[i]) {
				rec_free(r->recs[i]);
				t->open--;
			}
	}
	ring_counts(r, v);
	for (int i = 0; i < 7; i++)
		t->gone[i] += v[i];
	for (struct ferry_trace_ring **p = &t->rings; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	pthread_mutex_unlock(&t->lock);
	munmap(r->buf, r->cap);
	free(r->slots);
	free(r->recs);
	sodium_memzero(r->rng_key, sizeof(r->rng_key));
	free(r);
	tracer_unref(t);
}

void ferry_tracer_stats(struct ferry_tracer *t, struct ferry_tracer_stats *s)
{
	uint64_t v[7], sum[7];

	memset(s, 0, sizeof(*s));
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	memcpy(sum, t->gone, sizeof(sum));
	for (struct ferry_trace_ring *r = t->rings; r; r = r->next) {
		ring_counts(r, v);
		for (int i = 0; i < 7; i++)
			sum[i] += v[i];
	}
	s->events = t->events;
	s->events_dropped = sum[0];
	s->spans_dropped = sum[1];
	s->stale = sum[2];
	s->unsampled = sum[3];
	s->traceparent_malformed = sum[4];
	s->tracestate_malformed = sum[5];
	s->tracestate_truncated = sum[6];
	s->spans_exported = t->exported;
	s->forced_closes = t->forced;
	s->export_errors = t->export_errors;
	s->open_spans = t->open;
	pthread_mutex_unlock(&t->lock);
}
