/* SPDX-License-Identifier: MIT */
/*
 * The tracer's lifetime and its drain: creating and destroying the tracer
 * and its rings, the thread that drains them every interval (or the
 * caller's ferry_tracer_drain()), and the counters.  The producer side of
 * a ring is control/trace.c, the consumer that turns its records into
 * spans control/trace_consumer.c, the exporter control/trace_export.c
 * (docs/tracing.md).  A tracer's state is under its mutex; each ring holds
 * a reference to the tracer, so the last of them to go frees it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <sodium.h>
#include <stdio.h>

#include "control/trace_internal.h"

#define RING_MIN (4u << 10)
#define RING_MAX (64u << 20)
#define SLOTS_MAX 65536u
#define EXPORT_MAX_DEFAULT ((uint64_t)256 << 20)
#define EXPORT_MAX_MIN 4096u
/* How often the drain queues an OTLP/HTTP request, at most. */
#define HTTP_BATCH_NS 100000000u

/* --- the drain ----------------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* With @all, the OTLP/HTTP batch is queued however young. */
static int drain_locked(struct ferry_tracer *t, bool all)
{
	int n = 0, rc;

	for (struct ferry_trace_ring *r = t->rings; r; r = r->next)
		n += ferry__ring_drain(t, r);
	rc = ferry__export_flush(&t->x);
	/* Into the OTLP/HTTP exporter's queue, which never waits (a full
	 * queue drops, counted in otlp_spans_dropped): every HTTP_BATCH_NS,
	 * or sooner when the batch grows large (ferry__export_span()), so
	 * that a drain every millisecond does not make a request each. */
	if (all || clock_ns(CLOCK_MONOTONIC) - t->hx_last >= HTTP_BATCH_NS) {
		ferry__export_flush(&t->hx);
		t->hx_last = clock_ns(CLOCK_MONOTONIC);
	}
	return rc < 0 ? rc : n;
}

int ferry_tracer_drain(struct ferry_tracer *t)
{
	int rc;

	if (!t)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	rc = t->stopping ? 0 : drain_locked(t, true);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int ferry_tracer_flush(struct ferry_tracer *t, uint32_t timeout_ms)
{
	int rc = ferry_tracer_drain(t);

	if (rc < 0)
		return rc;
	/* The exporter outlives every call but ferry_tracer_destroy(). */
	return t->otlp ? ferry__otlp_flush(t->otlp, timeout_ms) : 0;
}

/*
 * The CPU budget, before each pass of the drain thread: whether the
 * thread's CPU time in this window is past cpu_budget of the window.  Over
 * it, the pass sheds (the consumer drops new spans whole but still frees
 * the ring, which is cheap: no export, no callback), until the window ends
 * and the next one starts with its budget whole again.  Fixed windows, so
 * that one slow pass cannot keep the thread shedding for longer than one.
 */
static void budget_check(struct ferry_tracer *t)
{
	uint64_t wall = clock_ns(CLOCK_MONOTONIC);
	uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);

	if (t->cfg.cpu_budget <= 0.0 || t->cfg.cpu_budget >= 1.0) {
		t->shed = false;
		return;
	}
	if (wall - t->win_wall >= FERRY__BUDGET_WINDOW_NS) {
		t->win_wall = wall;
		t->win_cpu = cpu;
	}
	t->shed = (double)(cpu - t->win_cpu) >
		  t->cfg.cpu_budget * (double)FERRY__BUDGET_WINDOW_NS;
}

/* Tell every ring's producer whether the thread is shedding (trace.c
 * call_open(): call spans are then dropped as they start).  Stored only
 * where it changes, so that the line stays in the producers' caches. */
static void shed_publish(struct ferry_tracer *t, bool on)
{
	for (struct ferry_trace_ring *r = t->rings; r; r = r->next)
		if (atomic_load_explicit(&r->shed, memory_order_relaxed) != on)
			atomic_store_explicit(&r->shed, on,
					      memory_order_relaxed);
}

void ferry__tracer_budget(struct ferry_tracer *t)
{
	budget_check(t);
	shed_publish(t, t->shed);
}

static void *tracer_thread(void *arg)
{
	struct ferry_tracer *t = arg;
	struct timespec ts;

	pthread_mutex_lock(&t->lock);
	t->win_wall = clock_ns(CLOCK_MONOTONIC);
	t->win_cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	while (!t->stopping) {
		ferry__tracer_budget(t);
		t->budgeted = true;
		drain_locked(t, false);
		/* Only this thread's passes are held to the budget. */
		t->budgeted = false;
		t->shed = false;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)t->interval_us * 1000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	/* Stopped: nothing sheds (the caller's drains never do). */
	shed_publish(t, false);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* --- lifetime ------------------------------------------------------------ */

void ferry_tracer_config_init(struct ferry_tracer_config *c)
{
	memset(c, 0, sizeof(*c));
	c->sample_rate = 1.0;
	c->record_unsampled_sessions = true;
	c->ring_bytes = 256u << 10;
	c->max_spans = 4096;
	c->drain_interval_us = 1000;
	c->ignore_remote_sampling = true;
	c->export_max_bytes = EXPORT_MAX_DEFAULT;
	c->export_keep = 2;
	c->cpu_budget = 0.05;
	c->use_env = true;
}

static void tracer_unref(struct ferry_tracer *t)
{
	if (atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	ferry__export_free(&t->x);
	ferry__export_free(&t->hx);
	ferry__otlp_settings_free(&t->set);
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

static bool config_ok(const struct ferry_tracer_config *c)
{
	return c->sample_rate >= 0.0 && c->sample_rate <= 1.0 &&
	       c->ring_bytes >= RING_MIN && c->ring_bytes <= RING_MAX &&
	       c->max_spans >= 1 && c->max_spans <= SLOTS_MAX &&
	       (!c->service_name || service_ok(c->service_name)) &&
	       (c->export_format == FERRY_TRACE_FORMAT_JSON ||
		c->export_format == FERRY_TRACE_FORMAT_PROTOBUF) &&
	       (c->export_max_bytes == 0 ||
		c->export_max_bytes >= EXPORT_MAX_MIN) &&
	       c->export_keep <= FERRY__EXPORT_KEEP_MAX &&
	       c->cpu_budget >= 0.0 && c->cpu_budget <= 1.0 &&
	       (!c->thread || (c->drain_interval_us >= 1 &&
			       c->drain_interval_us <= 10000000));
}

/* A tracer for @c with its lock and condition variable, no file and no
 * thread yet; NULL when out of memory. */
static struct ferry_tracer *tracer_new(const struct ferry_tracer_config *c)
{
	struct ferry_tracer *t;
	pthread_condattr_t ca;

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cfg = *c;
	t->cfg.export_path = NULL;
	t->cfg.service_name = NULL;
	t->refs = 1;
	t->interval_us = c->drain_interval_us;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	/* The drain thread's waits are intervals: immune to clock steps. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	t->x.fd = -1;
	t->hx.fd = -1;
	return t;
}

static const char *env_getenv(const char *name, void *arg)
{
	(void)arg;
	return getenv(name);
}

/* @c's settings with the environment's (ferry__otlp_resolve()), and the
 * whole configuration checked; a reason in @err for -EINVAL. */
static int settings_resolve(const struct ferry_tracer_config *c,
			    struct ferry__otlp_settings *s, char *err,
			    size_t errcap)
{
	int rc = ferry__otlp_resolve(c, env_getenv, NULL, s, err, errcap);

	if (rc < 0)
		return rc;
	if (!service_ok(s->service)) {
		snprintf(err, errcap, "service name \"%.63s\": 1 to 63 printable "
			 "ASCII characters, without '\"' or '\\'", s->service);
		return -EINVAL;
	}
	if (!config_ok(c)) {
		snprintf(err, errcap, "a setting of the tracer's configuration "
			 "is out of range (include/ferry/trace.h)");
		return -EINVAL;
	}
	return 0;
}

int ferry_tracer_config_check(const struct ferry_tracer_config *c, char *err,
			      size_t errcap)
{
	struct ferry__otlp_settings s;
	char buf[8];
	int rc;

	if (!c)
		return -EINVAL;
	if (!err || !errcap) {
		err = buf;
		errcap = sizeof(buf);
	}
	rc = settings_resolve(c, &s, err, errcap);
	ferry__otlp_settings_free(&s);
	return rc;
}

/* The file's and the OTLP/HTTP exporter's heads, and the exporter. */
static int exports_open(struct ferry_tracer *t,
			const struct ferry_tracer_config *c)
{
	int rc;

	if (c->export_path) {
		rc = ferry__export_open(&t->x, c->export_path,
					c->export_replace, c->export_max_bytes,
					c->export_keep);
		if (rc == 0)
			rc = ferry__export_head(&t->x, c->export_format, &t->set);
		if (rc < 0)
			return rc;
	}
	if (!t->set.endpoint)
		return 0;
	rc = ferry__export_head(&t->hx, t->set.protocol == FERRY_OTLP_HTTP_JSON
					? FERRY_TRACE_FORMAT_JSON
					: FERRY_TRACE_FORMAT_PROTOBUF,
				&t->set);
	if (rc == 0)
		rc = ferry__otlp_start(&t->set, c->cpu_budget, &t->otlp);
	if (rc == 0)
		t->hx.http = t->otlp;
	return rc;
}

int ferry_tracer_create(const struct ferry_tracer_config *c,
			struct ferry_tracer **out)
{
	struct ferry_tracer *t;
	int rc;

	char why[8];

	if (!c || !out || !config_ok(c))
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	t = tracer_new(c);
	if (!t)
		return -ENOMEM;
	rc = settings_resolve(c, &t->set, why, sizeof(why));
	if (rc == 0)
		rc = exports_open(t, c);
	if (rc < 0)
		goto err;
	if (c->thread) {
		rc = -pthread_create(&t->thread, NULL, tracer_thread, t);
		if (rc < 0)
			goto err;
		t->has_thread = true;
	}
	*out = t;
	return 0;
err:
	ferry__export_close(&t->x);
	ferry__otlp_stop(t->otlp, NULL);
	t->otlp = NULL;
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
	drain_locked(t, true);
	for (struct ferry_trace_ring *r = t->rings; r; r = r->next)
		ferry__ring_force_close(t, r, "tracer shut down",
				 t->cfg.clock ? t->cfg.clock(t->cfg.clock_arg) : now,
				 false);
	ferry__export_flush(&t->x);
	ferry__export_close(&t->x);
	ferry__export_flush(&t->hx);
	/* Under the lock, so that ferry_tracer_stats() never reads a stopped
	 * exporter: stopping sends what is queued, for at most the timeout. */
	if (t->otlp) {
		ferry__otlp_stop(t->otlp, &t->otlp_last);
		t->otlp = NULL;
		t->hx.http = NULL;
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
	if (t->cfg.max_spans_per_sec) {
		/* A tenth of a second's spans may come at once (at least 1). */
		uint64_t burst = t->cfg.max_spans_per_sec / 10;

		r->rl_interval = 1000000000u / t->cfg.max_spans_per_sec;
		if (r->rl_interval == 0)
			r->rl_interval = 1;
		r->rl_tau = (burst ? burst - 1 : 0) * r->rl_interval;
	}
	r->record_unsampled = t->cfg.record_unsampled_sessions;
	r->ignore_remote = t->cfg.ignore_remote_sampling;
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

static void ring_counts(const struct ferry_trace_ring *r,
			uint64_t v[FERRY__RING_COUNTS])
{
	v[0] = atomic_load_explicit(&r->ev_dropped, memory_order_relaxed);
	v[1] = atomic_load_explicit(&r->spans_dropped, memory_order_relaxed);
	v[2] = atomic_load_explicit(&r->stale, memory_order_relaxed);
	v[3] = atomic_load_explicit(&r->unsampled, memory_order_relaxed);
	v[4] = atomic_load_explicit(&r->tp_malformed, memory_order_relaxed);
	v[5] = atomic_load_explicit(&r->ts_malformed, memory_order_relaxed);
	v[6] = atomic_load_explicit(&r->ts_truncated, memory_order_relaxed);
	v[7] = atomic_load_explicit(&r->started, memory_order_relaxed);
	v[8] = atomic_load_explicit(&r->dropped_rate, memory_order_relaxed);
	v[9] = atomic_load_explicit(&r->dropped_shed, memory_order_relaxed);
}

void ferry_trace_ring_destroy(struct ferry_trace_ring *r)
{
	struct ferry_tracer *t;
	uint64_t v[FERRY__RING_COUNTS];

	if (!r)
		return;
	t = r->tracer;
	pthread_mutex_lock(&t->lock);
	if (!t->stopping) {
		ferry__ring_drain(t, r);
		ferry__ring_force_close(t, r, "endpoint shut down",
					ferry__ring_now(r), true);
		ferry__export_flush(&t->x);
	} else {
		/* The tracer closed these spans already; what came since is
		 * dropped.  Free the records of spans opened after that. */
		ferry__ring_drop_recs(t, r);
	}
	ring_counts(r, v);
	for (int i = 0; i < FERRY__RING_COUNTS; i++)
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
	uint64_t v[FERRY__RING_COUNTS], sum[FERRY__RING_COUNTS];

	memset(s, 0, sizeof(*s));
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	memcpy(sum, t->gone, sizeof(sum));
	for (struct ferry_trace_ring *r = t->rings; r; r = r->next) {
		ring_counts(r, v);
		for (int i = 0; i < FERRY__RING_COUNTS; i++)
			sum[i] += v[i];
	}
	s->events = t->events;
	s->events_dropped = sum[0];
	s->spans_dropped_full = sum[1];
	s->spans_started = sum[7];
	s->spans_dropped_rate = sum[8];
	s->spans_dropped_budget = t->dropped_budget + sum[9];
	s->spans_dropped = sum[1] + sum[8] + s->spans_dropped_budget;
	s->stale = sum[2];
	s->unsampled = sum[3];
	s->traceparent_malformed = sum[4];
	s->tracestate_malformed = sum[5];
	s->tracestate_truncated = sum[6];
	s->spans_exported = t->exported;
	s->forced_closes = t->forced;
	s->export_errors = t->x.errors;
	s->open_spans = t->open;
	s->export_rotations = t->x.rotations;
	if (t->otlp)
		ferry__otlp_stats(t->otlp, &t->otlp_last);
	s->otlp_spans_sent = t->otlp_last.spans_sent;
	s->otlp_spans_dropped = t->otlp_last.spans_dropped;
	s->otlp_spans_queued = t->otlp_last.queued_spans;
	s->otlp_requests = t->otlp_last.requests;
	s->otlp_retries = t->otlp_last.retries;
	s->otlp_failures = t->otlp_last.failures;
	/* Bodies the drain could not build (out of memory). */
	s->export_errors += t->hx.errors;
	pthread_mutex_unlock(&t->lock);
}
