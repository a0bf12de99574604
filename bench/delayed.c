/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench --deferred: a token issuer that answers late.
 *
 * A real ferry_token_issuer_ops plug-in, standing in for a token authority
 * that takes a while: each issuance is queued with a due time drawn
 * uniformly in [0, --deferred-delay-us] and completed, on the issuer's own
 * thread, once that time has come.  The queue is a binary heap ordered by
 * due time; the thread sleeps on a condition variable (CLOCK_MONOTONIC)
 * until the earliest one, and completes every handle that is due in one
 * pass, outside the lock.
 *
 * What a handle is completed with: with --verify, a token sealed there and
 * then whose props are the request's (the call's sequence number and the
 * cap index), so the server can tell it belongs to its call; without, the
 * --caps token issued at start for that cap index (the bench then measures
 * the deferred path, not sealing, which `ferryctl bench` measures).
 *
 * Ownership: a queued handle holds the plug-in's reference, given back by
 * ferry_token_pending_complete() exactly once -- at its due time, or by
 * bench_issuer_stop() for what is left.  Cancelled handles (the session
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
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool stop;
	/* When the thread sleeps: until when (UINT64_MAX: no deadline), so
	 * that an issue only signals it for an earlier due time. */
	bool sleeping;
	uint64_t sleep_until;
	struct delayed_item *heap;    /* min-heap on due */
	size_t n, cap;
	/* Counters (under mu): completions, and how late they ran. */
	uint64_t issued, completed, cancelled, late_ns_sum, late_ns_max;
	uint64_t wakeups, signals;
	double cpu_s;                 /* the thread's, when it stopped */
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
	pthread_mutex_lock(&is->mu);
	if (is->stop) {
		pthread_mutex_unlock(&is->mu);
		return -ECANCELED;
	}
	if (is->n == is->cap) {
		/* Rare: the heap was sized for every cap of every call in
		 * flight; it only grows past that if pushes lag behind. */
		size_t nc = is->cap ? 2 * is->cap : 256;
		struct delayed_item *nh = realloc(is->heap, nc * sizeof(*nh));

		if (!nh) {
			pthread_mutex_unlock(&is->mu);
			return -ENOMEM;
		}
		is->heap = nh;
		is->cap = nc;
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
		struct ferry_token_req req = {
			.type = FERRY_TOKEN_SUBREQUEST,
			.audience = BENCH_AUDIENCE,
			.target = BENCH_CHANNEL,
			.entrypoint = BENCH_CAP_ENTRY,
			.props = props,
			.props_len = sizeof(props),
			.ttl = a->call_ttl,
		};

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
	ret = -pthread_create(&is->thread, NULL, issuer_main, is);
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

void bench_issuer_stats(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	pthread_mutex_lock(&is->mu);
	st->issued = is->issued;
	st->completed = is->completed;
	st->cancelled = is->cancelled;
	st->late_mean_us = is->completed ? (double)is->late_ns_sum /
						    (double)is->completed / 1000.0
					 : 0;
	st->late_max_us = (double)is->late_ns_max / 1000.0;
	st->wakeups = is->wakeups;
	st->signals = is->signals;
	st->cpu_s = is->cpu_s;
	pthread_mutex_unlock(&is->mu);
}

void bench_issuer_stop(struct bench_issuer *is, struct bench_issuer_stats *st)
{
	if (!is)
		return;
	pthread_mutex_lock(&is->mu);
	is->stop = true;
	pthread_mutex_unlock(&is->mu);
	pthread_cond_signal(&is->cv);
	pthread_join(is->thread, NULL);
	/* The thread completed what was due; the rest never will be.  By
	 * now every endpoint is gone and its sessions cancelled these
	 * handles, so the completions only give the references back. */
	while (is->n) {
		struct delayed_item it = heap_pop(is);
		bool c;

		complete(is, &it, -ECANCELED, &c);
		is->completed++;
		is->cancelled += c;
	}
	if (st)
		bench_issuer_stats(is, st);
	pthread_cond_destroy(&is->cv);
	pthread_mutex_destroy(&is->mu);
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

void bench_issuer_seed_thread(uint64_t seed)
{
	(void)seed;
}

const struct ferry_token_issuer_ops *bench_delayed_ops(void)
{
	return NULL;
}

#endif
