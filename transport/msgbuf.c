/* SPDX-License-Identifier: MIT */
/*
 * The msgbuf pool.
 *
 * Buffer classes are carved out of one region at endpoint creation (the
 * dataplane provides it, so a backend can map it for its device once); after
 * that, taking and returning a buffer is a push or pop on a per-class free
 * stack, never malloc.  Buffers may be taken and freed from any thread, so
 * each stack has a spinlock.  The endpoint's own thread, which takes and
 * frees nearly all of them, keeps a small stack of each class besides
 * (own_max buffers, at most OWN_MAX and a sixteenth of the class) that it
 * alone touches, filled from and spilled to the shared one OWN_BATCH at a
 * time: a lock and an atomic add are each a full barrier on x86, and after
 * a dataplane burst one waits for every store the driver made to reach
 * memory the peer's core is reading (docs/bench.md, "The memif fast path").
 *
 * RX views are msgbufs that point into a received datagram in place; freeing
 * one hands the datagram's buffer back to the dataplane and returns one
 * credit to the session it arrived on.  That must happen on the endpoint's
 * thread, so a view freed elsewhere is queued to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define POOL_ALIGN 64u
#define OWN_MAX 64u
#define OWN_BATCH 16u

static void cls_lock(struct ferry_pool_cls *c)
{
	ferry__spin_lock(&c->lock);
}

static void cls_unlock(struct ferry_pool_cls *c)
{
	atomic_flag_clear_explicit(&c->lock, memory_order_release);
}

bool ferry__on_owner(const struct ferry_endpoint *ep)
{
	return pthread_equal(ep->owner, pthread_self());
}

size_t ferry__pool_bytes(const struct ferry_ep_config *cfg)
{
	size_t total = 0;

	for (unsigned i = 0; i < FERRY_POOL_CLASSES; i++) {
		const struct ferry_pool_class *pc = &cfg->pool[i];

		if (pc->count && pc->size)
			total += (size_t)((pc->size + POOL_ALIGN - 1) &
					  ~(POOL_ALIGN - 1)) *
				 pc->count;
	}
	return total;
}

int ferry__pool_init(struct ferry_endpoint *ep)
{
	size_t total = ferry__pool_bytes(&ep->cfg), off = 0;
	uint32_t nviews = ep->cfg.rx_bufs;

	/* Requests held in place pin receive buffers (with UDP GRO a whole
	 * coalesced buffer each, of which the uring dataplane has at most
	 * 1024): past half of them, or of rx_bufs, a request is copied out
	 * instead, so that the buffers that bring the ACKs and new calls
	 * which free the held ones never run out (with 10,000 sessions and
	 * a request in flight on each, they did). */
	ep->views_keep_max = (nviews < 1024 ? nviews : 1024) / 2;

	for (unsigned i = 0; i < FERRY_POOL_CLASSES; i++) {
		const struct ferry_pool_class *pc = &ep->cfg.pool[i];
		struct ferry_pool_cls *c;

		if (pc->count == 0 || pc->size == 0)
			continue;
		c = &ep->cls[ep->ncls++];
		c->size = (pc->size + POOL_ALIGN - 1) & ~(POOL_ALIGN - 1);
		c->count = pc->count;
		atomic_flag_clear(&c->lock);
	}
	if (ep->ncls == 0)
		return -EINVAL;
	ep->pool_mem = ep->dp_ops->mem_alloc(ep->dp, total);
	if (!ep->pool_mem) {
		ep->pool_mem = mmap(NULL, total, PROT_READ | PROT_WRITE,
				    MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE,
				    -1, 0);
		if (ep->pool_mem == MAP_FAILED) {
			ep->pool_mem = NULL;
			return -ENOMEM;
		}
		ep->pool_mmapped = true;
	}
	ep->pool_bytes = total;
	for (unsigned i = 0; i < ep->ncls; i++) {
		struct ferry_pool_cls *c = &ep->cls[i];

		size_t words = FERRY_REASM_MAP_WORDS(c->size);

		c->bufs = calloc(c->count, sizeof(*c->bufs));
		/* Allocated here, with the pool, so that reassembly never
		 * allocates: about 1/512 of the buffers' bytes. */
		c->rmap_mem = calloc((size_t)c->count * words, sizeof(uint64_t));
		if (!c->bufs || !c->rmap_mem)
			return -ENOMEM;
		c->mem = ep->pool_mem + off;
		off += (size_t)c->size * c->count;
		for (uint32_t k = c->count; k-- > 0;) {
			struct ferry_msgbuf *mb = &c->bufs[k];

			mb->data = c->mem + (size_t)k * c->size;
			mb->cap = c->size;
			mb->rmap = c->rmap_mem + (size_t)k * words;
			mb->ep = ep;
			mb->kind = MB_KIND_POOL;
			mb->cls = (uint8_t)i;
			mb->next = c->free;
			c->free = mb;
		}
		atomic_store(&c->nfree, c->count);
		c->own_max = c->count / 16 < OWN_MAX ? c->count / 16 : OWN_MAX;
	}
	ep->views = calloc(nviews, sizeof(*ep->views));
	if (!ep->views)
		return -ENOMEM;
	for (uint32_t k = nviews; k-- > 0;) {
		ep->views[k].ep = ep;
		ep->views[k].kind = MB_KIND_RX;
		ep->views[k].next = ep->view_free;
		ep->view_free = &ep->views[k];
	}
	return 0;
}

uint32_t ferry__pool_free(struct ferry_endpoint *ep, size_t len)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < ep->ncls; i++) {
		struct ferry_pool_cls *c = &ep->cls[i];

		if (c->size >= len)
			n += atomic_load_explicit(&c->nfree,
						  memory_order_relaxed) +
			     c->nown;
	}
	return n;
}

uint32_t ferry__pool_fit(const struct ferry_endpoint *ep, size_t len)
{
	for (unsigned i = 0; i < ep->ncls; i++)
		if (ep->cls[i].size >= len)
			return ep->cls[i].size;
	return 0;
}

void ferry__pool_fini(struct ferry_endpoint *ep)
{
	for (unsigned i = 0; i < ep->ncls; i++) {
		free(ep->cls[i].bufs);
		free(ep->cls[i].rmap_mem);
	}
	free(ep->views);
	/* Memory from the dataplane goes with it, in ->close. */
	if (ep->pool_mmapped && ep->pool_mem)
		munmap(ep->pool_mem, ep->pool_bytes);
}

/* Up to @n buffers off the shared stack, as a list; *@got says how many. */
static struct ferry_msgbuf *shared_take(struct ferry_pool_cls *c, uint32_t n,
					uint32_t *got)
{
	struct ferry_msgbuf *first, *last = NULL, *mb;
	uint32_t k = 0;

	cls_lock(c);
	first = mb = c->free;
	while (mb && k < n) {
		last = mb;
		mb = mb->next;
		k++;
	}
	if (k) {
		c->free = mb;
		last->next = NULL;
		atomic_fetch_sub_explicit(&c->nfree, k, memory_order_relaxed);
	}
	cls_unlock(c);
	*got = k;
	return k ? first : NULL;
}

/* The list @first..@last (@n buffers) onto the shared stack. */
static void shared_give(struct ferry_pool_cls *c, struct ferry_msgbuf *first,
			struct ferry_msgbuf *last, uint32_t n)
{
	cls_lock(c);
	last->next = c->free;
	c->free = first;
	atomic_fetch_add_explicit(&c->nfree, n, memory_order_relaxed);
	cls_unlock(c);
}

/* A buffer of class @c, or NULL: the endpoint's thread (@own) from its
 * own stack, refilled a batch at a time; any other from the shared one. */
static struct ferry_msgbuf *cls_take(struct ferry_pool_cls *c, bool own)
{
	struct ferry_msgbuf *mb;
	uint32_t got;

	if (!own || c->own_max == 0)
		return shared_take(c, 1, &got);
	if (!c->own) {
		c->own = shared_take(c, OWN_BATCH < c->own_max ? OWN_BATCH
							    : c->own_max,
				     &got);
		c->nown = got;
		if (!c->own)
			return NULL;
	}
	mb = c->own;
	c->own = mb->next;
	c->nown--;
	return mb;
}

int ferry_msgbuf_alloc(struct ferry_endpoint *ep, size_t len,
		       struct ferry_msgbuf **out)
{
	bool own;

	if (!ep || !out)
		return -EINVAL;
	if (len > ep->cfg.max_msg)
		return -EMSGSIZE;
	own = ferry__on_owner(ep);
	/* The smallest class that fits; a larger one if that is empty. */
	for (unsigned i = 0; i < ep->ncls; i++) {
		struct ferry_pool_cls *c = &ep->cls[i];
		struct ferry_msgbuf *mb;

		if (c->size < len)
			continue;
		mb = cls_take(c, own);
		if (!mb)
			continue;
		/* A server moves a request's data past its token table
		 * (server.c): give every new owner the whole buffer. */
		mb->data = c->mem + (size_t)(mb - c->bufs) * c->size;
		mb->cap = c->size;
		mb->next = NULL;
		mb->len = (uint32_t)len;
		mb->refs = 1;
		*out = mb;
		return 0;
	}
	if (ep->cls[ep->ncls - 1].size < len)
		return -EMSGSIZE;
	return -ENOBUFS;
}

static void view_release(struct ferry_msgbuf *mb)
{
	struct ferry_endpoint *ep = mb->ep;

	if (ep->rx_busy && mb->rx_id == ep->rx_cur_id)
		ep->rx_deferred++; /* the frame loop still reads it */
	else
		ep->dp_ops->rx_release(ep->dp, mb->rx_id);
	ferry__sess_credit_release(ep, mb->rx_sess, mb->rx_credit);
	mb->next = ep->view_free;
	ep->view_free = mb;
	ep->views_held--;
}

void ferry__msgbuf_put(struct ferry_msgbuf *mb)
{
	struct ferry_pool_cls *c;

	if (--mb->refs > 0)
		return;
	if (mb->kind == MB_KIND_RX) {
		view_release(mb);
		return;
	}
	c = &mb->ep->cls[mb->cls];
	if (c->own_max == 0 || !ferry__on_owner(mb->ep)) {
		shared_give(c, mb, mb, 1);
		return;
	}
	mb->next = c->own;
	c->own = mb;
	if (++c->nown > c->own_max) {
		/* Keep the newest half (warm in the cache); the rest go back
		 * to the shared stack for other threads. */
		uint32_t keep = c->own_max / 2, n = c->nown - keep;
		struct ferry_msgbuf *first = c->own, *last;

		if (keep) {
			struct ferry_msgbuf *k = c->own;

			for (uint32_t i = 1; i < keep; i++)
				k = k->next;
			first = k->next;
			k->next = NULL;
		} else {
			c->own = NULL;
		}
		for (last = first; last->next; last = last->next)
			;
		c->nown = keep;
		shared_give(c, first, last, n);
	}
}

void ferry_msgbuf_free(struct ferry_msgbuf *mb)
{
	struct ferry_endpoint *ep;

	if (!mb)
		return;
	ep = mb->ep;
	if (mb->kind == MB_KIND_RX && !ferry__on_owner(ep)) {
		/* The dataplane's buffers are the endpoint thread's. */
		ferry__xlock(ep);
		mb->next = ep->xfrees;
		ep->xfrees = mb;
		ferry__xunlock_signal(ep);
		return;
	}
	ferry__msgbuf_put(mb);
}

struct ferry_msgbuf *ferry__view_get(struct ferry_endpoint *ep,
				     const struct ferry_dp_pkt *pkt,
				     uint32_t sess_id, const uint8_t *data,
				     uint32_t len)
{
	struct ferry_msgbuf *mb = ep->view_free;

	/* There is one view per receive buffer (a datagram is read in
	 * place only when it holds one data frame), so this cannot run
	 * out. */
	ep->view_free = mb->next;
	ep->views_held++;
	mb->next = NULL;
	mb->data = (uint8_t *)(uintptr_t)data;
	mb->len = mb->cap = len;
	mb->refs = 1;
	mb->rx_id = pkt->id;
	mb->rx_sess = sess_id;
	mb->rx_credit = len;
	return mb;
}

void *ferry_msgbuf_data(struct ferry_msgbuf *mb)
{
	return mb->data;
}

size_t ferry_msgbuf_len(const struct ferry_msgbuf *mb)
{
	return mb->len;
}

size_t ferry_msgbuf_cap(const struct ferry_msgbuf *mb)
{
	return mb->cap;
}

int ferry_msgbuf_set_len(struct ferry_msgbuf *mb, size_t len)
{
	if (len > mb->cap)
		return -EMSGSIZE;
	mb->len = (uint32_t)len;
	return 0;
}
