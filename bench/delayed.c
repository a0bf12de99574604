/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench --deferred: a token issuer that answers late.
 *
 * A real ferry_token_issuer_ops plug-in, standing in for a token authority
 * that takes a while: each issuance is queued with a due time drawn
 * uniformly in [0, --deferred-delay-us] and completed once that time has
 * come.  The queue is a binary heap ordered by due time.  Two modes:
 *
 * - Worker (the default): each client worker has a heap of its own, which
 *   only its thread touches (no lock).  The worker completes what is due
 *   after each ferry_endpoint_poll() (bench_issuer_run) and does not let
 *   the poll sleep past the earliest due time (bench_issuer_timeout).  This
 *   is how an issuer that asks a token authority over an RPC on the same
 *   endpoint behaves: the answer arrives in that endpoint's poll loop, and
 *   its continuation completes the pending handle on the endpoint's thread,
 *   so the IOU is kept with no cross-thread hand-off.
 * - Thread (--issuer-thread): one heap and one thread per process, for
 *   every client worker.  The thread sleeps on a condition variable
 *   (CLOCK_MONOTONIC) until the earliest due time, and completes every
 *   handle that is due in one pass, outside the lock.
 *
 * What a handle is completed with: with --verify, a token sealed there and
 * then whose props are the request's (the call's sequence number and the
 * cap index), so the server can tell it belongs to its call; without, the
 * --caps token issued at start for that cap index (the bench then measures
 * the deferred path, not sealing, which `ferryctl bench` measures).
 *
 * Ownership: a queued handle holds the plug-in's reference, given back by
 * ferry_token_pending_complete() exactly once -- at its due time, or by
 * bench_issuer_stop() (thread) or bench_issuer_free() (worker) for what is
 * left.  Cancelled handles (the session
 * ended first) stay queued and are completed like the others; the
 * completion then drops the result.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <ferry/token.h>

#include "bench.h"

#ifdef FERRY_BENCH_CONTROL

struct delayed_item {
	uint64_t due;                 /* CLOCK_MONOTONIC, ns */
	uint64_t seq;                 /* props: the call's --verify number */
	uint32_t cap;                 /* props: the cap index */
	struct ferry_token_pending *p;
};

struct bench_issuer {
	const struct bench_opts *o;
	bool thread;                  /* --issuer-thread: the fields below */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread_id;
	bool stop;
	/* When the thread sleeps: until when (UINT64_MAX: no deadline), so
	 * that an issue only signals it for an earlier due time. */
	bool sleeping;
	uint64_t sleep_until;
	struct delayed_item *heap;    /* min-heap on due */
	size_t n, cap;
	/* Counters (thread: under mu): completions, and how late they ran. */
	uint64_t issued, completed, cancelled, late_ns_sum, late_ns_max;
	uint64_t wakeups, signals;    /* thread */
	uint64_t passes, spin_polls;  /* worker */
	uint64_t work_ns;             /* worker: time spent completing */
	double cpu_s;                 /* thread: its CPU time, when it stopped */
};

/* Each issuing thread draws its delays from its own generator, seeded
 * from --seed (bench_issuer_seed_thread), so a run is reproducible
 * whatever the other threads do. */
static _Thread_local uint64_t tl_rng;

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void bench_issuer_seed_thread(uint64_t seed)
{
	tl_rng = seed;
}

static void heap_push(struct bench_issuer *is, const struct delayed_item *it)
{
	size_t i = is->n++;

	while (i > 0) {
		size_t up = (i - 1) / 2;

		if (is->heap[up].due <= it->due)
			break;
		is->heap[i] = is->heap[up];
		i = up;
	}
	is->heap[i] = *it;
}

static struct delayed_item heap_pop(struct bench_issuer *is)
{
	struct delayed_item top = is->heap[0], last = is->heap[--is->n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m = l;

		if (l >= is->n)
			break;
		if (l + 1 < is->n && is->heap[l + 1].due < is->heap[l].due)
			m = l + 1;
		if (is->heap[m].due >= last.due)
			break;
		is->heap[i] = is->heap[m];
		i = m;
	}
	if (is->n)
		is->heap[i] = last;
	return top;
}

/* Make room for one more item.  Rare: the heap was sized for every cap of
 * every call in flight; it only grows past that if pushes lag behind. */
static int heap_reserve(struct bench_issuer *is)
{
	size_t nc;
	struct delayed_item *nh;

	if (is->n < is->cap)
		return 0;
	nc = is->cap ? 2 * is->cap : 256;
	nh = realloc(is->heap, nc * sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	is->heap = nh;
	is->cap = nc;
	return 0;
}

/* ->issue: queue @p with a random due time.  Runs on a client worker's
 * thread; copies what it needs from @req (the props). */
static int delayed_issue(void *arg, const struct ferry_token_req *req,
			 struct ferry_token_pending *p)
{
	struct bench_issuer *is = arg;
	struct delayed_item it = { .p = p };
	uint32_t d = is->o->deferred_delay_us;
	bool wake;

	if (req->props_len != BENCH_PROPS_LEN)
		return -EINVAL;
	memcpy(&it.seq, req->props, 8);
	memcpy(&it.cap, (const uint8_t *)req->props + 8, 4);
	if (it.cap >= BENCH_CAPS_MAX)
		return -EINVAL;
	it.due = bench_now_ns() +
		 (d ? splitmix(&tl_rng) % ((uint64_t)d * 1000 + 1) : 0);
	if (!is->thread) {
		/* Worker mode: only this thread touches the heap.  Even a
		 * handle due now is completed after the next poll, never
		 * before ferry_cap_issue() returns. */
		if (heap_reserve(is) < 0)
			return -ENOMEM;
		heap_push(is, &it);
		is->issued++;
		return 0;
	}
	pthread_mutex_lock(&is->mu);
	if (is->stop) {
		pthread_mutex_unlock(&is->mu);
		return -ECANCELED;
	}
	if (heap_reserve(is) < 0) {
		pthread_mutex_unlock(&is->mu);
		return -ENOMEM;
	}
	heap_push(is, &it);
	is->issued++;
	/* Signal only a thread that would otherwise sleep past this one. */
	wake = is->sleeping && it.due < is->sleep_until;
	if (wake) {
		is->sleeping = false;
		is->signals++;
	}
	pthread_mutex_unlock(&is->mu);
	if (wake)
		pthread_cond_signal(&is->cv);
	return 0;
}

static const struct ferry_token_issuer_ops delayed_ops = {
	.issue = delayed_issue,
	/* No cancel op: a cancelled handle is completed at its due time
	 * anyway (at most --deferred-delay-us later), and dropped. */
	.cancel = NULL,
};

const struct ferry_token_issuer_ops *bench_delayed_ops(void)
{
	return &delayed_ops;
}

void bench_call_req(const struct bench_auth *a, uint8_t *props,
		    struct ferry_token_req *req)
{
	*req = (struct ferry_token_req){
		.type = FERRY_TOKEN_SUBREQUEST,
		.audience = BENCH_AUDIENCE,
		.target = BENCH_CHANNEL,
		.entrypoint = BENCH_CAP_ENTRY,
		.props = props,
		.props_len = BENCH_PROPS_LEN,
		.ttl = a->call_ttl,
	};
}

/* Complete one handle with its token (or -ECANCELED when stopping). */
static void complete(struct bench_issuer *is, const struct delayed_item *it,
		     int res, bool *cancelled)
{
	const struct bench_auth *a = is->o->auth;
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	size_t len = 0;

	if (res == 0 && is->o->verify) {
		/* Sealed now, bound to its call, as an authority would. */
		uint8_t props[BENCH_PROPS_LEN];
		struct ferry_token_req req;

		bench_call_req(a, props, &req);
		bench_props(props, it->seq, it->cap);
		res = ferry_token_seal(a->kr, &req, tok, sizeof(tok), &len);
		if (res == 0)
			res = ferry_token_pending_complete(it->p, 0, tok, len);
		else
			res = ferry_token_pending_complete(it->p, res, NULL, 0);
	} else if (res == 0) {
		const struct ferry_cap *c = &a->caps[it->cap];

		res = ferry_token_pending_complete(it->p, 0, c->data, c->len);
	} else {
		res = ferry_token_pending_complete(it->p, res, NULL, 0);
	}
	*cancelled = res == -ECANCELED;
}

static void *issuer_main(void *arg)
{
	struct bench_issuer *is = arg;
	struct delayed_item batch[64];

	/* Timer slack: the kernel's default 50 us is a quarter of the
	 * default delay bound; with 1 us the thread slept and woke more
	 * often and spent 15-20% more CPU per token on the 2-core VM
	 * (docs/bench.md, issue 6).  20 us lets a wake-up take in the
	 * handles due just after it. */
	prctl(PR_SET_TIMERSLACK, 20000UL, 0, 0, 0);
	pthread_mutex_lock(&is->mu);
	for (;;) {
		uint64_t now = bench_now_ns();
		size_t nb = 0;

		while (is->n && is->heap[0].due <= now &&
		       nb < sizeof(batch) / sizeof(batch[0]))
			batch[nb++] = heap_pop(is);
		if (nb) {
			uint64_t late = 0, late_max = 0, cancelled = 0;

			pthread_mutex_unlock(&is->mu);
			for (size_t i = 0; i < nb; i++) {
				bool c;

				complete(is, &batch[i], 0, &c);
				cancelled += c;
				late += now - batch[i].due;
				if (now - batch[i].due > late_max)
					late_max = now - batch[i].due;
			}
			pthread_mutex_lock(&is->mu);
			is->completed += nb;
			is->cancelled += cancelled;
			is->late_ns_sum += late;
			if (late_max > is->late_ns_max)
				is->late_ns_max = late_max;
			continue;
		}
		if (is->stop)
			break;
		is->sleeping = true;
		is->wakeups++;
		if (!is->n) {
			is->sleep_until = UINT64_MAX;
			pthread_cond_wait(&is->cv, &is->mu);
		} else {
			struct timespec ts = {
				.tv_sec = (time_t)(is->heap[0].due / 1000000000ull),
				.tv_nsec = (long)(is->heap[0].due % 1000000000ull),
			};

			is->sleep_until = is->heap[0].due;
			pthread_cond_timedwait(&is->cv, &is->mu, &ts);
		}
		is->sleeping = false;
	}
	is->cpu_s = bench_thread_cpu_s();
	pthread_mutex_unlock(&is->mu);
	return NULL;
}

int bench_issuer_start(const struct bench_opts *o, size_t expect,
		       struct bench_issuer **out)
{
	struct bench_issuer *is = calloc(1, sizeof(*is));
	pthread_condattr_t ca;
	int ret;

	if (!is)
		return -ENOMEM;
	is->o = o;
	is->thread = true;
	is->cap = expect > 256 ? expect : 256;
	is->heap = malloc(is->cap * sizeof(*is->heap));
	if (!is->heap) {
		free(is);
		return -ENOMEM;
	}
	pthread_mutex_init(&is->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&is->cv, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&is->thread_id, NULL, issuer_main, is);
	if (ret < 0) {
		pthread_cond_destroy(&is->cv);
		pthread_mutex_destroy(&is->mu);
		free(is->heap);
		free(is);
		return ret;
	}
	*out = is;
	return 0;
}

/* The counters, unlocked (the caller holds mu, or is the only thread). */
static void stats_of(const struct bench_issuer *is,
		     struct bench_issuer_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->thread = is->thread;
	st->issued = is->issued;
	st->completed = is->completed;
	st->cancelled = is->cancelled;
	st->late_ns_sum = is->late_ns_sum;
	st->late_mean_us = is->completed ? (double)is->late_ns_sum /
						    (double)is->completed / 1000.0
					 : 0;
	st->late_max_us = (double)is->late_ns_max / 1000.0;
	st->wakeups = is->wakeups;
	st->signals = is->signals;
	st->passes = is->passes;
	st->spin_polls = is->spin_polls;
	st->cpu_s = is->thread ? is->cpu_s : (double)is->work_ns / 1e9;
}

void bench_issuer_stats(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	if (is->thread)
		pthread_mutex_lock(&is->mu);
	stats_of(is, st);
	if (is->thread)
		pthread_mutex_unlock(&is->mu);
}

void bench_issuer_stats_add(struct bench_issuer_stats *sum,
			    const struct bench_issuer_stats *st)
{
	double late_max = sum->late_max_us > st->late_max_us
				  ? sum->late_max_us
				  : st->late_max_us;

	sum->thread = st->thread;
	sum->issued += st->issued;
	sum->completed += st->completed;
	sum->cancelled += st->cancelled;
	sum->late_ns_sum += st->late_ns_sum;
	sum->late_mean_us = sum->completed ? (double)sum->late_ns_sum /
						     (double)sum->completed /
						     1000.0
					   : 0;
	sum->late_max_us = late_max;
	sum->wakeups += st->wakeups;
	sum->signals += st->signals;
	sum->passes += st->passes;
	sum->spin_polls += st->spin_polls;
	sum->cpu_s += st->cpu_s;
}

/* Complete every handle left with -ECANCELED, then report the counters. */
static void finish(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	while (is->n) {
		struct delayed_item it = heap_pop(is);
		bool c;

		complete(is, &it, -ECANCELED, &c);
		is->completed++;
		is->cancelled += c;
	}
	if (st)
		stats_of(is, st);
}

void bench_issuer_stop(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	if (!is)
		return;
	pthread_mutex_lock(&is->mu);
	is->stop = true;
	pthread_mutex_unlock(&is->mu);
	pthread_cond_signal(&is->cv);
	pthread_join(is->thread_id, NULL);
	/* The thread completed what was due; the rest never will be.  By
	 * now every endpoint is gone and its sessions cancelled these
	 * handles, so the completions only give the references back. */
	finish(is, st);
	pthread_cond_destroy(&is->cv);
	pthread_mutex_destroy(&is->mu);
	free(is->heap);
	free(is);
}

/* --- worker mode: the client worker's own heap ---------------------------- */

int bench_issuer_new(const struct bench_opts *o, size_t expect,
		     struct bench_issuer **out)
{
	struct bench_issuer *is = calloc(1, sizeof(*is));

	if (!is)
		return -ENOMEM;
	is->o = o;
	is->cap = expect > 256 ? expect : 256;
	is->heap = malloc(is->cap * sizeof(*is->heap));
	if (!is->heap) {
		free(is);
		return -ENOMEM;
	}
	*out = is;
	return 0;
}

unsigned bench_issuer_run(struct bench_issuer *is)
{
	uint64_t now, late = 0, late_max = 0;
	unsigned nb = 0;

	if (!is->n)
		return 0;
	now = bench_now_ns();
	if (is->heap[0].due > now)
		return 0;
	/* Only what was due when the pass began: a completion does not
	 * issue (it keeps a promise), so the heap only shrinks here. */
	while (is->n && is->heap[0].due <= now) {
		struct delayed_item it = heap_pop(is);
		bool c;

		complete(is, &it, 0, &c);
		is->cancelled += c;
		late += now - it.due;
		if (now - it.due > late_max)
			late_max = now - it.due;
		nb++;
	}
	is->completed += nb;
	is->late_ns_sum += late;
	if (late_max > is->late_ns_max)
		is->late_ns_max = late_max;
	is->passes++;
	is->work_ns += bench_now_ns() - now;
	return nb;
}

int bench_issuer_timeout(struct bench_issuer *is, int max_ms)
{
	uint64_t now, wait_ms;

	if (!is->n || max_ms == 0)
		return max_ms;
	now = bench_now_ns();
	/* Less than a millisecond to go (the poll's unit): spin. */
	if (is->heap[0].due < now + 1000000ull) {
		is->spin_polls++;
		return 0;
	}
	wait_ms = (is->heap[0].due - now) / 1000000ull; /* ends by it */
	return max_ms < 0 || wait_ms < (uint64_t)max_ms ? (int)wait_ms : max_ms;
}

void bench_issuer_free(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	if (!is) {
		if (st)
			memset(st, 0, sizeof(*st));
		return;
	}
	/* What is left will never come: its sessions have been closed (the
	 * completions then only give the references back), or are told the
	 * error. */
	finish(is, st);
	free(is->heap);
	free(is);
}

#else /* !FERRY_BENCH_CONTROL: --deferred needs --keyring, refused earlier */

int bench_issuer_start(const struct bench_opts *o, size_t expect,
		       struct bench_issuer **out)
{
	(void)o;
	(void)expect;
	*out = NULL;
	return -ENOTSUP;
}

void bench_issuer_stop(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	(void)is;
	if (st)
		memset(st, 0, sizeof(*st));
}

void bench_issuer_stats(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	(void)is;
	memset(st, 0, sizeof(*st));
}

void bench_issuer_stats_add(struct bench_issuer_stats *sum,
			    const struct bench_issuer_stats *st)
{
	(void)sum;
	(void)st;
}

int bench_issuer_new(const struct bench_opts *o, size_t expect,
		     struct bench_issuer **out)
{
	(void)o;
	(void)expect;
	*out = NULL;
	return -ENOTSUP;
}

unsigned bench_issuer_run(struct bench_issuer *is)
{
	(void)is;
	return 0;
}

int bench_issuer_timeout(struct bench_issuer *is, int max_ms)
{
	(void)is;
	return max_ms;
}

void bench_issuer_free(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	(void)is;
	if (st)
		memset(st, 0, sizeof(*st));
}

void bench_issuer_seed_thread(uint64_t seed)
{
	(void)seed;
}

const struct ferry_token_issuer_ops *bench_delayed_ops(void)
{
	return NULL;
}

#endif
