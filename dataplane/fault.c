/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: a dataplane that wraps any other and damages what it
 * receives, at given rates, reproducibly for a given seed.
 *
 * Faults are applied to received datagrams, which the wrapper owns while
 * they are lent to it: it can drop one (hand it back at once), cut it short
 * (truncate), flip a bit in it, hold it back behind later ones (reorder) or
 * for a fixed time (delay), or deliver it twice (the second time from a copy
 * in its own small pool).  Like a hostile middlebox it can also deliver what
 * nobody sent: a copy of the datagram again, after up to
 * FERRY_DP_REPLAY_DEPTH later ones (replay: across sessions, too, when one
 * ends and the next begins), and garbage, random bytes from the same
 * source, some behind a real header's first bytes so that they reach past
 * the first checks.  Transmit passes straight through.  Wrapping both ends
 * of a session damages both directions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp.h"

#define FAULT_COPY 0x80000000u   /* ids of the wrapper's own copies */
#define FAULT_COPIES 64
#define FAULT_HELD_MAX 256
#define FAULT_REORDER_NS 300000ull /* held back up to 0.3 ms */
#define FAULT_REPLAYS 16 /* replays waiting at once: a quarter of the copies */
/*
 * Garbage keeps up to a whole ferry header of the datagram it follows (and
 * then, half the time, its length), so that some of it passes the parser
 * and is taken for its session's, reaching the checks of sequence numbers,
 * acks and offsets.  Its sequence number (bytes 16..19) is always random:
 * with the real one, garbage would be the real datagram with its payload
 * corrupted, which only checksums can tell (that is the corrupt fault).
 */
#define FAULT_GARBAGE_HDR 44
#define FAULT_GARBAGE_SEQ 16

/* A copy waiting to be replayed after @left more received datagrams. */
struct fault_replay {
	struct ferry_dp_pkt pkt;
	uint32_t left;
};

struct fault_held {
	struct ferry_dp_pkt pkt;
	uint64_t due;
};

struct ferry_dp {
	const struct ferry_dp_ops *in;
	struct ferry_dp *inner;
	struct ferry_dp_faults f;
	uint64_t rng;
	struct fault_held held[FAULT_HELD_MAX];
	unsigned nheld;
	uint8_t *copies;
	uint32_t copy_size;
	uint32_t copy_free[FAULT_COPIES];
	unsigned ncopy_free;
	struct fault_replay replays[FAULT_REPLAYS];
	unsigned nreplays;
	struct ferry_dp_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast, and the same sequence for the same seed. */
static uint64_t rnd(struct ferry_dp *d)
{
	uint64_t z = (d->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* True with probability @p. */
static bool roll(struct ferry_dp *d, double p)
{
	return p > 0 && (double)(rnd(d) >> 11) * 0x1.0p-53 < p;
}

static bool valid_p(double p)
{
	return p >= 0 && p <= 1;
}

static void fault_close(struct ferry_dp *d);

static int fault_open(const struct ferry_dp_conf *conf, struct ferry_dp **out)
{
	struct ferry_dp_conf ic = *conf;
	const struct ferry_dp_faults *f = &conf->faults;
	struct ferry_dp *d;
	int ret;

	if (!conf->inner || conf->inner == &ferry__dp_fault_ops ||
	    !valid_p(f->loss) || !valid_p(f->dup) || !valid_p(f->reorder) ||
	    !valid_p(f->corrupt) || !valid_p(f->delay) ||
	    !valid_p(f->truncate) || !valid_p(f->garbage) ||
	    !valid_p(f->replay))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->in = conf->inner;
	d->f = *f;
	d->rng = f->seed ? f->seed : 0x5eed;
	d->copy_size = conf->max_frame;
	d->copies = malloc((size_t)FAULT_COPIES * d->copy_size);
	if (!d->copies) {
		free(d);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < FAULT_COPIES; i++)
		d->copy_free[d->ncopy_free++] = i;
	ic.inner = NULL;
	ret = d->in->open(&ic, &d->inner);
	if (ret < 0) {
		d->inner = NULL;
		fault_close(d);
		return ret;
	}
	*out = d;
	return 0;
}

static void fault_release(struct ferry_dp *d, uint32_t id)
{
	if (id & FAULT_COPY)
		d->copy_free[d->ncopy_free++] = id & ~FAULT_COPY;
	else
		d->in->rx_release(d->inner, id);
}

static void fault_close(struct ferry_dp *d)
{
	for (unsigned i = 0; i < d->nheld; i++)
		fault_release(d, d->held[i].pkt.id);
	d->nheld = 0;
	/* Waiting replays are copies: their memory goes with d->copies. */
	d->nreplays = 0;
	if (d->inner)
		d->in->close(d->inner);
	free(d->copies);
	free(d);
}

static void hold(struct ferry_dp *d, const struct ferry_dp_pkt *p,
		 uint64_t due)
{
	d->held[d->nheld].pkt = *p;
	d->held[d->nheld].due = due;
	d->nheld++;
}

/* A buffer of the wrapper's own pool, as a datagram from @src, or false
 * if none is free. */
static bool own_buf(struct ferry_dp *d, const struct ferry_dp_pkt *src,
		    struct ferry_dp_pkt *out)
{
	uint32_t c;

	if (!d->ncopy_free)
		return false;
	c = d->copy_free[--d->ncopy_free];
	*out = *src;
	out->data = d->copies + (size_t)c * d->copy_size;
	out->id = c | FAULT_COPY;
	return true;
}

/* A copy of @p in the wrapper's own pool, or false. */
static bool take_copy(struct ferry_dp *d, const struct ferry_dp_pkt *p,
		      struct ferry_dp_pkt *cp)
{
	if (p->len > d->copy_size || !own_buf(d, p, cp))
		return false;
	memcpy(cp->data, p->data, p->len);
	return true;
}

/* Garbage from @p's source, delivered after it: random bytes of random
 * length, half the time behind the first 1..FAULT_GARBAGE_HDR bytes of @p
 * (its seq always random). */
static void make_garbage(struct ferry_dp *d, const struct ferry_dp_pkt *p,
			 uint64_t now)
{
	struct ferry_dp_pkt g;
	uint32_t keep = 0;

	if (d->nheld >= FAULT_HELD_MAX || !own_buf(d, p, &g))
		return;
	if ((rnd(d) & 1) && p->len) {
		uint32_t most = p->len < FAULT_GARBAGE_HDR ? p->len
							    : FAULT_GARBAGE_HDR;

		keep = 1 + (uint32_t)(rnd(d) % most);
		memcpy(g.data, p->data, keep);
	}
	if (keep && p->len <= d->copy_size && (rnd(d) & 1))
		g.len = p->len; /* as long as the real one */
	else
		g.len = keep + (uint32_t)(rnd(d) % (d->copy_size - keep + 1));
	for (uint32_t i = keep; i < g.len; i += 8) {
		uint64_t r = rnd(d);

		memcpy(g.data + i, &r, g.len - i < 8 ? g.len - i : 8);
	}
	if (keep > FAULT_GARBAGE_SEQ) {
		uint32_t r = (uint32_t)rnd(d);
		uint32_t n = keep - FAULT_GARBAGE_SEQ < 4
				     ? keep - FAULT_GARBAGE_SEQ : 4;

		memcpy(g.data + FAULT_GARBAGE_SEQ, &r, n);
	}
	hold(d, &g, now);
	d->st.fault_garbage++;
}

/* One more datagram arrived: replays whose turn has come are delivered
 * (next burst), and @p may be kept to be replayed later. */
static void replay_tick(struct ferry_dp *d, const struct ferry_dp_pkt *p,
			uint64_t now)
{
	for (unsigned i = 0; i < d->nreplays;) {
		struct fault_replay *r = &d->replays[i];

		if (r->left > 1) {
			r->left--;
			i++;
			continue;
		}
		if (d->nheld >= FAULT_HELD_MAX)
			break; /* next time */
		hold(d, &r->pkt, now);
		d->st.fault_replay++;
		*r = d->replays[--d->nreplays];
	}
	if (d->nreplays < FAULT_REPLAYS && roll(d, d->f.replay) &&
	    take_copy(d, p, &d->replays[d->nreplays].pkt))
		d->replays[d->nreplays++].left =
			1 + (uint32_t)(rnd(d) % FERRY_DP_REPLAY_DEPTH);
}

/* Damage @p in place, or make copies of it; false if it is dropped. */
static bool damage(struct ferry_dp *d, struct ferry_dp_pkt *p, uint64_t now)
{
	struct ferry_dp_pkt cp;

	if (roll(d, d->f.loss)) {
		d->st.fault_loss++;
		d->in->rx_release(d->inner, p->id);
		return false;
	}
	if (p->len && roll(d, d->f.truncate)) {
		p->len = (uint32_t)(rnd(d) % p->len);
		d->st.fault_truncate++;
	}
	if (p->len && roll(d, d->f.corrupt)) {
		uint64_t r = rnd(d);

		p->data[r % p->len] ^= (uint8_t)(1u << (r >> 32) % 8);
		d->st.fault_corrupt++;
	}
	replay_tick(d, p, now);
	if (d->nheld < FAULT_HELD_MAX && roll(d, d->f.dup) &&
	    take_copy(d, p, &cp)) {
		hold(d, &cp, now);
		d->st.fault_dup++;
	}
	if (roll(d, d->f.garbage))
		make_garbage(d, p, now);
	return true;
}

static unsigned fault_rx_burst(struct ferry_dp *d, struct ferry_dp_pkt *pkts,
			       unsigned n)
{
	struct ferry_dp_pkt in[32];
	uint64_t now = now_ns();
	unsigned got = 0, m;

	/* Held datagrams whose time has come go first. */
	for (unsigned i = 0; i < d->nheld && got < n;) {
		if (d->held[i].due <= now) {
			pkts[got++] = d->held[i].pkt;
			d->held[i] = d->held[--d->nheld];
		} else {
			i++;
		}
	}
	if (got == n)
		return got;
	m = d->in->rx_burst(d->inner, in, n - got < 32 ? n - got : 32);
	for (unsigned i = 0; i < m; i++) {
		struct ferry_dp_pkt *p = &in[i];

		if (!damage(d, p, now))
			continue;
		if (d->nheld < FAULT_HELD_MAX && roll(d, d->f.reorder)) {
			hold(d, p, now + 20000 + rnd(d) % FAULT_REORDER_NS);
			d->st.fault_reorder++;
			continue;
		}
		if (d->nheld < FAULT_HELD_MAX && roll(d, d->f.delay)) {
			hold(d, p, now + (uint64_t)d->f.delay_us * 1000);
			d->st.fault_delay++;
			continue;
		}
		pkts[got++] = *p;
	}
	return got;
}

static int fault_wait(struct ferry_dp *d, int64_t timeout_ns)
{
	/* Wake in time for the first held datagram. */
	if (d->nheld) {
		uint64_t now = now_ns(), first = UINT64_MAX;

		for (unsigned i = 0; i < d->nheld; i++)
			if (d->held[i].due < first)
				first = d->held[i].due;
		if (first <= now)
			return 0;
		if (timeout_ns < 0 || (uint64_t)timeout_ns > first - now)
			timeout_ns = (int64_t)(first - now);
	}
	return d->in->wait(d->inner, timeout_ns);
}

static int fault_local_addr(struct ferry_dp *d, struct ferry_addr *out)
{
	return d->in->local_addr(d->inner, out);
}

static void *fault_mem_alloc(struct ferry_dp *d, size_t len)
{
	return d->in->mem_alloc(d->inner, len);
}

static unsigned fault_tx_burst(struct ferry_dp *d, const struct ferry_dp_tx *tx,
			       unsigned n)
{
	return d->in->tx_burst(d->inner, tx, n);
}

static unsigned fault_max_pieces(const struct ferry_dp *d)
{
	return d->in->max_pieces ? d->in->max_pieces(d->inner)
				 : FERRY_DP_PIECES_MAX;
}

static int fault_flush(struct ferry_dp *d)
{
	return d->in->flush(d->inner);
}

static int fault_wake(struct ferry_dp *d)
{
	return d->in->wake(d->inner);
}

static void fault_stats(const struct ferry_dp *d, struct ferry_dp_stats *out)
{
	d->in->stats(d->inner, out);
	out->fault_loss = d->st.fault_loss;
	out->fault_dup = d->st.fault_dup;
	out->fault_reorder = d->st.fault_reorder;
	out->fault_corrupt = d->st.fault_corrupt;
	out->fault_delay = d->st.fault_delay;
	out->fault_truncate = d->st.fault_truncate;
	out->fault_garbage = d->st.fault_garbage;
	out->fault_replay = d->st.fault_replay;
}

static uint32_t fault_max_frame(const struct ferry_dp *d)
{
	return d->in->max_frame ? d->in->max_frame(d->inner) : UINT32_MAX;
}

const struct ferry_dp_ops ferry__dp_fault_ops = {
	.name = "fault",
	.open = fault_open,
	.close = fault_close,
	.local_addr = fault_local_addr,
	.mem_alloc = fault_mem_alloc,
	.rx_burst = fault_rx_burst,
	.rx_release = fault_release,
	.tx_burst = fault_tx_burst,
	.flush = fault_flush,
	.wait = fault_wait,
	.wake = fault_wake,
	.stats = fault_stats,
	.max_frame = fault_max_frame,
	.max_pieces = fault_max_pieces,
};
