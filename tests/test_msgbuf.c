/* SPDX-License-Identifier: MIT */
/*
 * The msgbuf pool (transport/msgbuf.c) across threads: the endpoint's
 * thread keeps a small stack of each class of its own besides the shared
 * one, and neither may lose, duplicate or hide a buffer.
 *  - every buffer of a class can be taken, by the endpoint's thread and
 *    another one together, whoever freed them last and where;
 *  - another thread is refused (-ENOBUFS) only while at most own_max
 *    buffers sit on the endpoint thread's stack, and the endpoint's thread
 *    then gets exactly those;
 *  - buffers freed by another thread come back to the endpoint's thread;
 *  - ferry__pool_free() counts both stacks.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <ferry/endpoint.h>
#include <ferry/error.h>
#include <ferry/msgbuf.h>

#include "transport/internal.h"

#define NBUF 256u /* class 0: own_max is NBUF / 16 = 16 */

static struct ferry_endpoint *pool_ep(void)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *ep = NULL;
	int ret;

	ferry_ep_config_init(&cfg);
	cfg.dataplane = "uring";
	cfg.bind_addr = "127.0.0.1";
	cfg.port = 0;
	cfg.max_sessions = 2;
	cfg.pool[0] = (struct ferry_pool_class){ 512, NBUF };
	cfg.pool[1] = (struct ferry_pool_class){ 0, 0 };
	cfg.pool[2] = (struct ferry_pool_class){ 0, 0 };
	cfg.pool[3] = (struct ferry_pool_class){ 0, 0 };
	ret = ferry_endpoint_create(&cfg, &ep);
	cr_assert_eq(ret, 0, "ferry_endpoint_create: %s", ferry_strerror(ret));
	return ep;
}

/* Take every buffer there is into @held from @off; returns how many. */
static uint32_t take_all(struct ferry_endpoint *ep, struct ferry_msgbuf **held,
			 uint32_t off)
{
	uint32_t n = 0;

	while (off + n < 2 * NBUF &&
	       ferry_msgbuf_alloc(ep, 100, &held[off + n]) == 0)
		n++;
	return n;
}

struct other {
	struct ferry_endpoint *ep;
	struct ferry_msgbuf **held;
	uint32_t off, n;
	bool do_free; /* free held[off..off+n) instead of taking */
};

static void *other_main(void *arg)
{
	struct other *o = arg;

	if (o->do_free) {
		for (uint32_t i = 0; i < o->n; i++)
			ferry_msgbuf_free(o->held[o->off + i]);
	} else {
		o->n = take_all(o->ep, o->held, o->off);
	}
	return NULL;
}

static void on_other(struct other *o)
{
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, other_main, o), 0);
	pthread_join(th, NULL);
}

/* Each of @held[0..n) is a distinct buffer of the pool. */
static void assert_distinct(struct ferry_msgbuf **held, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = i + 1; k < n; k++)
			cr_assert_neq(ferry_msgbuf_data(held[i]),
				      ferry_msgbuf_data(held[k]),
				      "buffers %u and %u are one", i, k);
}

Test(msgbuf, nothing_lost_between_threads)
{
	static struct ferry_msgbuf *held[2 * NBUF];
	struct ferry_endpoint *ep = pool_ep();
	struct other o = { .ep = ep, .held = held };
	uint32_t mine, theirs, again;

	/* The endpoint's thread takes and frees some: they stay on its own
	 * stack, up to own_max, the rest back on the shared one. */
	mine = take_all(ep, held, 0);
	cr_assert_eq(mine, NBUF);
	for (uint32_t i = 0; i < mine; i++)
		ferry_msgbuf_free(held[i]);
	cr_assert_eq(ferry__pool_free(ep, 100), NBUF);
	cr_assert_leq(ep->cls[0].nown, ep->cls[0].own_max);
	cr_assert_eq(ep->cls[0].own_max, NBUF / 16);

	/* Another thread gets all but what the endpoint's thread keeps... */
	o.off = 0;
	on_other(&o);
	theirs = o.n;
	cr_assert_geq(theirs, NBUF - ep->cls[0].own_max);
	cr_assert_eq(theirs + ep->cls[0].nown, NBUF);
	/* ...which the endpoint's thread then gets: together, every one. */
	mine = take_all(ep, held, theirs);
	cr_assert_eq(theirs + mine, NBUF);
	assert_distinct(held, NBUF);
	cr_assert_eq(ferry__pool_free(ep, 100), 0);

	/* Freed on the other thread, all back to the endpoint's. */
	o = (struct other){ .ep = ep, .held = held, .off = 0, .n = NBUF,
			    .do_free = true };
	on_other(&o);
	cr_assert_eq(ferry__pool_free(ep, 100), NBUF);
	again = take_all(ep, held, 0);
	cr_assert_eq(again, NBUF);
	assert_distinct(held, NBUF);
	for (uint32_t i = 0; i < again; i++)
		ferry_msgbuf_free(held[i]);
	cr_assert_eq(ferry__pool_free(ep, 100), NBUF);
	ferry_endpoint_destroy(ep);
}

/* Many frees in a row on the endpoint's thread spill back to the shared
 * stack: another thread never finds more than own_max buffers hidden. */
Test(msgbuf, own_stack_spills)
{
	static struct ferry_msgbuf *held[2 * NBUF];
	struct ferry_endpoint *ep = pool_ep();
	struct other o = { .ep = ep, .held = held, .off = 0 };

	cr_assert_eq(take_all(ep, held, 0), NBUF);
	for (uint32_t i = 0; i < NBUF; i++) {
		ferry_msgbuf_free(held[i]);
		cr_assert_leq(ep->cls[0].nown, ep->cls[0].own_max,
			      "after %u frees", i + 1);
	}
	on_other(&o);
	cr_assert_geq(o.n, NBUF - ep->cls[0].own_max);
	o.do_free = true;
	on_other(&o);
	cr_assert_eq(ferry__pool_free(ep, 100), NBUF);
	ferry_endpoint_destroy(ep);
}
