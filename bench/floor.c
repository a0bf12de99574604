/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench floor: a raw echo on the same dataplane, with the same bursts
 * (up to 4 x 32 datagrams received, then one flush) and the same polling as
 * the RPC path, but no RPC layer: no sessions, credits, ordering or
 * reassembly.  It is the floor the RPC figures are stated against.
 *
 * Floor datagrams carry a 20-byte header of their own (not a ferry frame):
 * magic, slot, sequence, response size, fragment index and count.  A message
 * larger than one datagram goes as several; the server answers when the last
 * one arrives.  There is no retransmission: a client slot whose answer does
 * not come within a second counts an error and starts over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "../dataplane/dp.h"
#include "bench.h"

#define FLOOR_MAGIC 0x464c5231u /* "FLR1" */
#define FLOOR_HDR 20
#define FLOOR_TIMEOUT_NS 1000000000ull

struct floor_hdr {
	uint32_t magic;
	uint32_t slot;
	uint32_t seq;
	uint32_t resp_size;
	uint16_t frag;
	uint16_t nfrags;
};

_Static_assert(sizeof(struct floor_hdr) == FLOOR_HDR, "floor header");

struct floor {
	struct bench_worker *w;
	const struct ferry_dp_ops *ops;
	struct ferry_dp *dp;
	struct ferry_addr peer;
	uint32_t payload; /* body bytes per datagram */
	uint8_t *zeros;   /* the static body every datagram is sent from */
};

static void floor_tx_done(void *ctx, void *cookie)
{
	struct floor *f = ctx;

	/* Cookies are receive buffer ids + 1: an in-place echo is done. */
	f->ops->rx_release(f->dp, (uint32_t)((uintptr_t)cookie - 1));
}

static uint32_t pow2_cap(uint64_t v)
{
	uint32_t n = 256;

	while (n < v && n < 32768)
		n <<= 1;
	return n;
}

static uint16_t nfrags_of(const struct floor *f, uint32_t size)
{
	return (uint16_t)(size == 0 ? 1 : (size + f->payload - 1) / f->payload);
}

static int floor_open(struct floor *f, struct bench_worker *w, bool server)
{
	const struct bench_opts *o = w->o;
	struct ferry_dp_conf dc;
	uint32_t big = o->size > o->resp_size ? o->size : o->resp_size;
	int ret;

	f->w = w;
	f->ops = ferry__dp_find(o->dataplane);
	if (!f->ops)
		return -ENODEV;
	memset(&dc, 0, sizeof(dc));
	dc.max_frame = o->max_frame ? o->max_frame : 8192;
	f->payload = dc.max_frame - FLOOR_HDR;
	dc.bind_addr = bench_bind_addr(o, server);
	dc.dpdk_eal = o->eal;
	dc.dpdk_port = o->dpdk_port;
	dc.dpdk_queues = (uint16_t)o->dpdk_queues;
	if (server) {
		dc.port = bench_server_port(o, w->idx);
		dc.reuseport = o->threads > 1;
	}
	dc.busy_poll = o->busy_poll;
	dc.rx_bufs = pow2_cap((uint64_t)o->sessions * o->inflight *
			      nfrags_of(f, big) * (server ? o->threads : 1) +
			      256);
	dc.tx_slots = 1024;
	dc.zc_threshold = o->zc_threshold;
	dc.no_gso = o->no_gso;
	dc.no_gro = o->no_gro;
	dc.tx_done = floor_tx_done;
	dc.tx_done_ctx = f;
	/* The body every datagram is sent from lives in the dataplane's
	 * payload memory, as the RPC path's msgbufs do, so zero-copy sends
	 * are treated alike. */
	dc.mem_bytes = f->payload;
	ret = f->ops->open(&dc, &f->dp);
	if (ret < 0) {
		f->dp = NULL;
		return ret;
	}
	/* A link with a smaller MTU (DPDK) carries smaller datagrams: the
	 * floor fragments to what it carries, as the RPC path does. */
	if (f->ops->max_frame && f->ops->max_frame(f->dp) < dc.max_frame)
		f->payload = f->ops->max_frame(f->dp) - FLOOR_HDR;
	f->zeros = f->ops->mem_alloc(f->dp, f->payload);
	if (!f->zeros)
		return -ENOMEM;
	memset(f->zeros, 0, f->payload);
	return 0;
}

static void floor_close(struct floor *f)
{
	/* f->zeros goes with the dataplane. */
	if (f->dp)
		f->ops->close(f->dp);
}

/* Queue one datagram of a message; false if the dataplane is full. */
static bool floor_send(struct floor *f, const struct floor_hdr *h,
		       const void *body, uint32_t len, void *cookie)
{
	struct ferry_dp_tx tx = { .dst = f->peer,
				  .hdr = h,
				  .hdr_len = FLOOR_HDR,
				  .body = body,
				  .body_len = len,
				  .cookie = cookie };

	return f->ops->tx_burst(f->dp, &tx, 1) == 1;
}

/* --- server --------------------------------------------------------------- */

void *bench_floor_server(void *arg)
{
	struct bench_worker *w = arg;
	struct ferry_dp_pkt pkts[32];
	struct floor f = { 0 };
	int ret;

	bench_pin(w->cpu);
	ret = floor_open(&f, w, true);
	if (ret < 0) {
		w->err = ret;
		snprintf(w->errmsg, sizeof(w->errmsg),
			 "floor server on %s:%u: %s", w->o->addr, w->o->port,
			 ferry_strerror(ret));
		atomic_store(&w->ready, true);
		floor_close(&f);
		return NULL;
	}
	atomic_store(&w->ready, true);
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		unsigned total = 0;

		for (int round = 0; round < 4; round++) {
			unsigned n = f.ops->rx_burst(f.dp, pkts, 32);

			for (unsigned i = 0; i < n; i++) {
				struct ferry_dp_pkt *p = &pkts[i];
				struct floor_hdr h;
				uint32_t len = p->len - FLOOR_HDR;
				uint64_t req_size;
				bool kept = false;

				if (p->len < FLOOR_HDR) {
					f.ops->rx_release(f.dp, p->id);
					continue;
				}
				memcpy(&h, p->data, FLOOR_HDR);
				if (h.magic != FLOOR_MAGIC ||
				    h.frag + 1u != h.nfrags) {
					f.ops->rx_release(f.dp, p->id);
					continue;
				}
				f.peer = p->src;
				/* Every fragment but the last is full. */
				req_size = (uint64_t)h.frag * f.payload + len;
				h.nfrags = nfrags_of(&f, h.resp_size);
				if (h.nfrags == 1 && h.resp_size == len) {
					/* Echo in place, as the RPC server
					 * does. */
					h.frag = 0;
					kept = floor_send(&f, &h,
							  p->data + FLOOR_HDR,
							  len,
							  (void *)(uintptr_t)(p->id + 1));
				} else {
					uint32_t left = h.resp_size;

					for (h.frag = 0; h.frag < h.nfrags;
					     h.frag++) {
						uint32_t n2 = left < f.payload
								      ? left
								      : f.payload;

						if (!floor_send(&f, &h, f.zeros,
								n2, NULL))
							break;
						left -= n2;
					}
				}
				if (!kept)
					f.ops->rx_release(f.dp, p->id);
				if (atomic_load_explicit(&bench_phase,
							 memory_order_relaxed) ==
				    PH_MEASURE) {
					bench_count(w, BC_COMPLETED, 1);
					bench_count(w, BC_BYTES,
						    req_size + h.resp_size);
				}
			}
			total += n;
			if (n < 32)
				break;
		}
		f.ops->flush(f.dp);
		if (total == 0)
			f.ops->wait(f.dp, 10000000);
	}
	floor_close(&f);
	return NULL;
}

/* --- client --------------------------------------------------------------- */

struct floor_slot {
	uint32_t seq;
	uint16_t got;      /* response datagrams received */
	uint16_t sent;     /* request datagrams queued */
	uint64_t t0;
};

struct floor_cli {
	struct floor f;
	struct floor_slot *slots;
	uint32_t nslots;
	/* Slots with a request to send, in order: a ring of nslots. */
	uint32_t *sendq, qhead, qlen;
	uint16_t req_frags, resp_frags;
};

/* Start slot @idx's next call: queue it to be sent. */
static void floor_cli_next(struct floor_cli *fc, uint32_t idx)
{
	struct floor_slot *sl = &fc->slots[idx];

	sl->seq++;
	sl->got = sl->sent = 0;
	fc->sendq[(fc->qhead + fc->qlen++) % fc->nslots] = idx;
}

/* Receive up to 4 bursts of responses, completing the calls they end.
 * Returns the datagrams received. */
static unsigned floor_cli_rx(struct floor_cli *fc, struct bench_worker *w)
{
	const struct bench_opts *o = w->o;
	struct floor *f = &fc->f;
	struct ferry_dp_pkt pkts[32];
	unsigned total = 0;

	for (int round = 0; round < 4; round++) {
		unsigned n = f->ops->rx_burst(f->dp, pkts, 32);
		int phase = atomic_load_explicit(&bench_phase,
						 memory_order_relaxed);

		for (unsigned i = 0; i < n; i++) {
			struct ferry_dp_pkt *p = &pkts[i];
			struct floor_slot *sl;
			struct floor_hdr h;

			if (p->len < FLOOR_HDR) {
				f->ops->rx_release(f->dp, p->id);
				continue;
			}
			memcpy(&h, p->data, FLOOR_HDR);
			f->ops->rx_release(f->dp, p->id);
			if (h.magic != FLOOR_MAGIC || h.slot >= fc->nslots)
				continue;
			sl = &fc->slots[h.slot];
			if (h.seq != sl->seq || sl->sent < fc->req_frags ||
			    ++sl->got < fc->resp_frags)
				continue;
			if (phase == PH_MEASURE) {
				bench_hist_record(&w->hist,
						  bench_now_ns() - sl->t0);
				bench_count(w, BC_COMPLETED, 1);
				bench_count(w, BC_BYTES, (uint64_t)o->size +
								 o->resp_size);
			}
			floor_cli_next(fc, h.slot);
		}
		total += n;
		if (n < 32)
			break;
	}
	return total;
}

/* Send what is queued, in order, while the dataplane has room. */
static void floor_cli_send(struct floor_cli *fc, const struct bench_opts *o)
{
	struct floor *f = &fc->f;

	while (fc->qlen) {
		uint32_t idx = fc->sendq[fc->qhead];
		struct floor_slot *sl = &fc->slots[idx];
		struct floor_hdr h = { FLOOR_MAGIC, idx, sl->seq,
				       o->resp_size, 0, fc->req_frags };

		if (sl->sent == 0)
			sl->t0 = bench_now_ns();
		while (sl->sent < fc->req_frags) {
			uint32_t off = (uint32_t)sl->sent * f->payload;
			uint32_t n2 = o->size - off < f->payload
					      ? o->size - off
					      : f->payload;

			h.frag = sl->sent;
			if (!floor_send(f, &h, f->zeros, n2, NULL))
				return; /* full */
			sl->sent++;
		}
		fc->qhead = (fc->qhead + 1) % fc->nslots;
		fc->qlen--;
	}
}

/* No reliability here: a lost datagram would stall a slot for good, so
 * count it and start the slot over. */
static void floor_cli_expire(struct floor_cli *fc, struct bench_worker *w,
			     uint64_t now)
{
	for (uint32_t i = 0; i < fc->nslots; i++) {
		struct floor_slot *sl = &fc->slots[i];

		if (sl->sent == fc->req_frags &&
		    now - sl->t0 > FLOOR_TIMEOUT_NS) {
			bench_count(w, BC_ERRORS, 1);
			floor_cli_next(fc, i);
		}
	}
}

void *bench_floor_client(void *arg)
{
	struct bench_worker *w = arg;
	const struct bench_opts *o = w->o;
	struct floor_cli fc = { .nslots = o->sessions * o->inflight };
	uint64_t next_check;
	int ret;

	bench_pin(w->cpu);
	ret = floor_open(&fc.f, w, false);
	if (ret == 0)
		ret = ferry__addr_parse_ip(o->addr, &fc.f.peer.ip);
	fc.f.peer.port = bench_server_port(o, w->idx);
	fc.slots = calloc(fc.nslots, sizeof(*fc.slots));
	fc.sendq = calloc(fc.nslots, sizeof(*fc.sendq));
	if (ret == 0 && (!fc.slots || !fc.sendq))
		ret = -ENOMEM;
	if (ret < 0) {
		w->err = ret;
		snprintf(w->errmsg, sizeof(w->errmsg), "floor client: %s",
			 ferry_strerror(ret));
		goto out;
	}
	fc.req_frags = nfrags_of(&fc.f, o->size);
	fc.resp_frags = nfrags_of(&fc.f, o->resp_size);
	for (uint32_t i = 0; i < fc.nslots; i++)
		fc.sendq[fc.qlen++] = i;
	atomic_store(&w->ready, true);
	next_check = bench_now_ns() + FLOOR_TIMEOUT_NS;

	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) !=
	       PH_STOP) {
		unsigned total = floor_cli_rx(&fc, w);

		floor_cli_send(&fc, o);
		fc.f.ops->flush(fc.f.dp);
		if (bench_now_ns() > next_check) {
			uint64_t now = bench_now_ns();

			floor_cli_expire(&fc, w, now);
			next_check = now + FLOOR_TIMEOUT_NS / 4;
		}
		if (total == 0 && fc.qlen == 0)
			fc.f.ops->wait(fc.f.dp, 10000000);
	}
out:
	atomic_store(&w->ready, true);
	floor_close(&fc.f);
	free(fc.slots);
	free(fc.sendq);
	return NULL;
}
