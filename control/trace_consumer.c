/* SPDX-License-Identifier: MIT */
/*
 * The tracer's consumer: it drains a ring's records (docs/tracing.md,
 * section 5) into span records, one per open span, hands each event to the
 * callback, and gives each closed span to the exporter
 * (control/trace_export.c): to the file's batch and to the OTLP/HTTP
 * one.  Everything here runs under the tracer's lock; what it shares
 * with the producer (control/trace.c) is the ring's bytes and its
 * published head and tail, and, once the producer has stopped, its slot
 * table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "control/trace_internal.h"

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

/* --- span records -------------------------------------------------------- */

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

	if (c->dropped) {
		t->dropped_budget++;
		t->open--;
		r->recs[slot] = NULL;
		rec_free(c);
		return;
	}
	c->info.end_ns = ts < c->info.start_ns ? c->info.start_ns : ts;
	c->info.status = status;
	snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : "");
	emit(t, FERRY_TRACE_EV_CLOSE, c, NULL);
	ferry__export_span(&t->x, &c->info);
	ferry__export_span(&t->hx, &c->info);
	t->exported++;
	t->open--;
	r->recs[slot] = NULL;
	rec_free(c);
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
		ferry__trace_ip_text(ev->server_ip, c->server_ip, sizeof(c->server_ip));
		rec_put_str(c, "server.address", c->server_ip);
	}
	if (ev->server_port)
		rec_put_int(c, "server.port", ev->server_port);
	if (ev->peer_ip) {
		ferry__trace_ip_text(ev->peer_ip, c->peer_ip, sizeof(c->peer_ip));
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
	if (t->shed) {
		/* Over the CPU budget: the span is dropped whole, but its
		 * close must still find it to be counted once. */
		c->gen = ev->h.gen;
		c->dropped = true;
		r->recs[ev->h.slot] = c;
		t->open++;
		return;
	}
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

	if (!c || c->dropped)
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
	if (c->dropped) {
		/* No status to work out: it is only counted. */
		rec_close(t, r, ev->h.slot, ev->h.ts, FERRY_SPAN_STATUS_UNSET, "");
		return;
	}
	status = rec_status(c, ev->h.flags, ev->res, msg, ev->mlen, m);
	rec_close(t, r, ev->h.slot, ev->h.ts, status, m);
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
	if (t->shed) {
		t->dropped_budget++;
		return;
	}
	if (ev->res == 0 && !t->cfg.on_event) {
		ferry__export_call(&t->x, ev);
		ferry__export_call(&t->hx, ev);
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

/* --- the ring (consumer side) -------------------------------------------- */

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
int ferry__ring_drain(struct ferry_tracer *t, struct ferry_trace_ring *r)
{
	union {
		struct ferry__ev h;
		struct ferry__ev_open open;
		struct ferry__ev_attr attr;
		struct ferry__ev_end end;
		struct ferry__ev_call call;
		uint8_t raw[FERRY__EV_MAX];
	} u;
	/* Acquire: pairs with the producer's release in ring_put()
	 * (control/trace.c). */
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
		/* A long pass of the drain thread must not run past its
		 * budget by more than a few records' worth. */
		if (++n % FERRY__BUDGET_RECHECK == 0 && t->budgeted && !t->shed)
			ferry__tracer_budget(t);
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
void ferry__ring_force_close(struct ferry_tracer *t, struct ferry_trace_ring *r,
			     const char *why, uint64_t ts, bool producer_done)
{
	for (uint32_t i = 0; i < r->nslots; i++) {
		struct ferry__pslot *p = &r->slots[i];
		struct ferry__crec *c = r->recs[i];

		if (!c && producer_done && p->open && p->lazy) {
			struct ferry__ev_open o;

			ferry__span_lazy_open_ev(r, i, &o);
			on_open(t, r, &o, NULL);
			c = r->recs[i];
		}
		if (!c)
			continue;
		if (c->dropped) {
			rec_close(t, r, i, ts, FERRY_SPAN_STATUS_ERROR, why);
			continue;
		}
		rec_set_str(c, "error.type", "shutdown");
		t->forced++;
		rec_close(t, r, i, ts, FERRY_SPAN_STATUS_ERROR, why);
	}
}

void ferry__ring_drop_recs(struct ferry_tracer *t, struct ferry_trace_ring *r)
{
	for (uint32_t i = 0; i < r->nslots; i++)
		if (r->recs[i]) {
			rec_free(r->recs[i]);
			t->open--;
		}
}
