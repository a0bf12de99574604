/* SPDX-License-Identifier: MIT */
/*
 * The OTLP/HTTP exporter (docs/tracing.md, "OTLP/HTTP"): a bounded queue of
 * request bodies, filled by the drain (never blocking it: a full queue
 * drops the newest body, counted), and a sender thread of its own that
 * POSTs them to the collector, retrying with exponential back-off on 429,
 * 502, 503, 504 and on no answer, honouring Retry-After.  The sender
 * thread is held to the tracer's CPU budget as the drain thread is; it
 * never touches an endpoint.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <zlib.h>

#include "control/otlp.h"
#include "control/trace_internal.h"

/* Back-off: the first wait, its cap, and how many tries a body gets. */
#define BACKOFF_FIRST_MS 100u
#define BACKOFF_MAX_MS 5000u
#define RETRY_AFTER_MAX_MS 30000u
#define ATTEMPTS_MAX 8u

struct batch {
	struct batch *next;
	uint64_t spans;
	size_t len;
	uint8_t data[];
};

struct ferry__otlp {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	struct batch *head, **tail;
	uint32_t n_queued, queue_max;
	bool stopping;
	uint64_t stop_deadline;   /* CLOCK_MONOTONIC ns, once stopping */
	struct ferry__otlp_stats st;

	/* The sender thread's own (no lock). */
	struct ferry__http http;
	const char *ctype;
	bool gzip;
	uint32_t timeout_ms;
	double cpu_budget;
	uint64_t win_wall, win_cpu;
	uint64_t jitter;
	/* The last body was given up after its retries: the collector is
	 * down.  Until one gets through, each body is tried once, so that a
	 * dead collector empties the queue (dropped, counted) at once
	 * instead of keeping every body for its whole back-off. */
	bool down;
};

static uint64_t now_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait on the condition until @deadline (CLOCK_MONOTONIC ns) or a signal.
 * Under the lock. */
static void wait_until(struct ferry__otlp *o, uint64_t deadline)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline / 1000000000u),
			       .tv_nsec = (long)(deadline % 1000000000u) };

	pthread_cond_timedwait(&o->cond, &o->lock, &ts);
}

/*
 * The CPU budget: the thread's CPU time in the current 100 ms window past
 * cpu_budget of it, it waits for the next window (its queue may fill
 * meanwhile, and then drops, counted).  Gzip is where it could spend.
 */
static void budget_wait(struct ferry__otlp *o)
{
	uint64_t wall = now_ns(CLOCK_MONOTONIC);
	uint64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID);

	if (o->cpu_budget <= 0.0 || o->cpu_budget >= 1.0)
		return;
	if (wall - o->win_wall >= FERRY__BUDGET_WINDOW_NS) {
		o->win_wall = wall;
		o->win_cpu = cpu;
		return;
	}
	if ((double)(cpu - o->win_cpu) >
	    o->cpu_budget * (double)FERRY__BUDGET_WINDOW_NS) {
		pthread_mutex_lock(&o->lock);
		if (!o->stopping)
			wait_until(o, o->win_wall + FERRY__BUDGET_WINDOW_NS);
		pthread_mutex_unlock(&o->lock);
	}
}

/* @b's body gzipped into a new buffer (*@out, *@outlen); -ENOMEM or
 * -EIO. */
static int gzip_body(const struct batch *b, uint8_t **out, size_t *outlen)
{
	z_stream z = { 0 };
	uLong cap;
	int rc;

	/* 15 + 16: a gzip wrapper, as Content-Encoding: gzip means.  Level
	 * 1: the thread is on a CPU budget, and spans compress well even
	 * so. */
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)b->len) + 32;
	*out = malloc(cap);
	if (!*out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)b->data;
	z.avail_in = (uInt)b->len;
	z.next_out = *out;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	*outlen = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(*out);
		*out = NULL;
		return -EIO;
	}
	return 0;
}

static bool retryable(const struct ferry__http_resp *r)
{
	/* The OTLP/HTTP specification's retryable answers; 0: none at all
	 * (refused, reset, timed out). */
	return r->status == 0 || r->status == 429 || r->status == 502 ||
	       r->status == 503 || r->status == 504;
}

/* How long to wait before try @attempt (1, 2, ...) after answer @r:
 * Retry-After if it said, else the back-off, doubled each time from
 * BACKOFF_FIRST_MS up to BACKOFF_MAX_MS, with jitter (0.5x..1.5x) so that
 * many exporters do not come back at once. */
static uint64_t retry_wait_ms(struct ferry__otlp *o, unsigned attempt,
			      const struct ferry__http_resp *r)
{
	uint64_t ms;

	if (r->retry_after_ms >= 0)
		return r->retry_after_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS
							      : (uint64_t)r->retry_after_ms;
	ms = (uint64_t)BACKOFF_FIRST_MS << (attempt > 6 ? 6 : attempt - 1);
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	o->jitter ^= o->jitter << 13;
	o->jitter ^= o->jitter >> 7;
	o->jitter ^= o->jitter << 17;
	return ms / 2 + o->jitter % (ms + 1);
}

/* Send one body, retrying.  True if the collector took it. */
static bool send_batch(struct ferry__otlp *o, const struct batch *b,
		       const uint8_t *body, size_t len)
{
	struct ferry__http_resp r;
	/* Retries end when the next would start past the timeout, as the
	 * OpenTelemetry SDKs bound an export. */
	uint64_t wake, end = now_ns(CLOCK_MONOTONIC) +
			     (uint64_t)o->timeout_ms * 1000000u;

	for (unsigned attempt = 1;; attempt++) {
		budget_wait(o);
		(void)ferry__http_post(&o->http, o->ctype, o->gzip, body, len, &r);
		pthread_mutex_lock(&o->lock);
		o->st.requests++;
		o->st.retries += attempt > 1;
		if (r.status >= 200 && r.status < 300) {
			o->down = false;
			o->st.spans_sent += b->spans;
			pthread_mutex_unlock(&o->lock);
			return true;
		}
		o->st.failures++;
		if (!retryable(&r) || o->down || attempt == ATTEMPTS_MAX) {
			o->down = retryable(&r);
			pthread_mutex_unlock(&o->lock);
			return false;
		}
		wake = now_ns(CLOCK_MONOTONIC) +
		       retry_wait_ms(o, attempt, &r) * 1000000u;
		if (wake > end) {
			o->down = true;
			pthread_mutex_unlock(&o->lock);
			return false;
		}
		/* Stopping, the wait is cut short at the stop's deadline,
		 * and past it nothing more is tried. */
		for (;;) {
			uint64_t until = wake;

			if (o->stopping && o->stop_deadline < until)
				until = o->stop_deadline;
			if (now_ns(CLOCK_MONOTONIC) >= until)
				break;
			wait_until(o, until);
		}
		if (o->stopping && now_ns(CLOCK_MONOTONIC) >= o->stop_deadline) {
			o->down = true;
			pthread_mutex_unlock(&o->lock);
			return false;
		}
		pthread_mutex_unlock(&o->lock);
	}
}

static void *sender(void *arg)
{
	struct ferry__otlp *o = arg;

	o->win_wall = now_ns(CLOCK_MONOTONIC);
	o->win_cpu = now_ns(CLOCK_THREAD_CPUTIME_ID);
	pthread_mutex_lock(&o->lock);
	for (;;) {
		struct batch *b = o->head;
		uint8_t *z = NULL;
		size_t zlen = 0;
		bool ok = false;

		if (!b) {
			if (o->stopping)
				break;
			pthread_cond_wait(&o->cond, &o->lock);
			continue;
		}
		o->head = b->next;
		if (!o->head)
			o->tail = &o->head;
		o->n_queued--;
		if (o->stopping && now_ns(CLOCK_MONOTONIC) >= o->stop_deadline) {
			o->st.spans_dropped += b->spans;
			o->st.queued_spans -= b->spans;
			free(b);
			continue;
		}
		pthread_mutex_unlock(&o->lock);
		if (!o->gzip || gzip_body(b, &z, &zlen) == 0)
			ok = send_batch(o, b, z ? z : b->data, z ? zlen : b->len);
		free(z);
		pthread_mutex_lock(&o->lock);
		o->st.queued_spans -= b->spans;
		if (!ok)
			o->st.spans_dropped += b->spans;
		free(b);
		/* For ferry__otlp_flush(), which waits for the queue to empty. */
		pthread_cond_broadcast(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
	ferry__http_close(&o->http);
	return NULL;
}

int ferry__otlp_start(const struct ferry__otlp_settings *s, double cpu_budget,
		      struct ferry__otlp **out)
{
	struct ferry__otlp *o = calloc(1, sizeof(*o));
	pthread_condattr_t ca;
	int rc;

	if (!o)
		return -ENOMEM;
	rc = ferry__url_parse(s->endpoint, &o->http.url, NULL, 0);
	if (rc < 0) {
		free(o);
		return rc;
	}
	o->http.fd = -1;
	o->http.timeout_ms = s->timeout_ms;
	o->timeout_ms = s->timeout_ms;
	o->ctype = s->protocol == FERRY_OTLP_HTTP_JSON ? "application/json"
						       : "application/x-protobuf";
	o->gzip = s->gzip;
	o->queue_max = s->queue_max;
	o->cpu_budget = cpu_budget;
	o->jitter = now_ns(CLOCK_MONOTONIC) | 1;
	o->tail = &o->head;
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&o->thread, NULL, sender, o);
	if (rc < 0) {
		pthread_cond_destroy(&o->cond);
		pthread_mutex_destroy(&o->lock);
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void ferry__otlp_enqueue(struct ferry__otlp *o, const struct iovec *iov,
			 int n, uint64_t spans)
{
	struct batch *b = NULL;
	size_t len = 0, off = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;

	pthread_mutex_lock(&o->lock);
	if (o->n_queued < o->queue_max && !o->stopping)
		b = malloc(sizeof(*b) + len);
	if (!b) {
		/* Full (the collector is slow or down) or out of memory: the
		 * newest body goes, so the drain never waits. */
		o->st.spans_dropped += spans;
		pthread_mutex_unlock(&o->lock);
		return;
	}
	b->next = NULL;
	b->spans = spans;
	b->len = len;
	for (int i = 0; i < n; i++) {
		memcpy(b->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	*o->tail = b;
	o->tail = &b->next;
	o->n_queued++;
	o->st.queued_spans += spans;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

void ferry__otlp_stats(struct ferry__otlp *o, struct ferry__otlp_stats *st)
{
	pthread_mutex_lock(&o->lock);
	*st = o->st;
	pthread_mutex_unlock(&o->lock);
}

int ferry__otlp_flush(struct ferry__otlp *o, uint32_t timeout_ms)
{
	uint64_t deadline;
	int rc = 0;

	if (!timeout_ms)
		timeout_ms = o->timeout_ms;
	deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000u;

	pthread_mutex_lock(&o->lock);
	while (o->st.queued_spans || o->head) {
		if (now_ns(CLOCK_MONOTONIC) >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		wait_until(o, deadline);
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

void ferry__otlp_stop(struct ferry__otlp *o, struct ferry__otlp_stats *last)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->stopping = true;
	o->stop_deadline = now_ns(CLOCK_MONOTONIC) +
			   (uint64_t)o->timeout_ms * 1000000u;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->thread, NULL);
	if (last)
		*last = o->st;
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	free(o);
}
