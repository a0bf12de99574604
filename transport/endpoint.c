/* SPDX-License-Identifier: MIT */
/*
 * Endpoints: their life (create, destroy), the poll loop, and work other
 * threads hand over.
 *
 * One poll does: receive a burst, hand each datagram to the receive path
 * (rx.c: ferry__rx_dgram) to handle its frames (dispatching handlers
 * and continuations as messages complete: server.c, client.c), take in
 * work other threads handed over, run timers, then turn every session's
 * transmit queue into datagrams and flush them to the dataplane in one
 * submission (tx.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "internal.h"
#include "rd.h"

#define TIMER_PERIOD_NS 1000000ull /* timers are checked once a millisecond */

/*
 * Transmits the dataplane holds at once: one per 32 sessions, 1,024 to
 * 4,096.  A flush that finds them all taken leaves the sessions it did not
 * reach on the transmit list, and their timers are worked out again every
 * tick while they wait there; with a call in flight on each of 100,000
 * sessions, 1,024 slots left most of them waiting, the timers' work
 * starved the receive path, and thousands of calls timed out
 * (docs/bench.md).
 * Each slot holds a datagram's copied bytes (up to a frame) in registered
 * memory: 8 MiB a thousand slots at the default frame.
 */
static uint32_t tx_slots_for(uint32_t max_sessions)
{
	uint32_t n = 1024;

	while (n < 4096 && (uint64_t)n * 32 < max_sessions)
		n <<= 1;
	return n;
}

#define RX_RING_BYTES (64ull << 20)

uint64_t ferry__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Unix time, for retry cookies (docs/wire.md, 4.3). */
uint64_t ferry__unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* An environment variable set to something other than "" or "0". */
static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

static uint32_t pow2_ceil(uint32_t v)
{
	uint32_t n = 1;

	while (n < v && n < (1u << 30))
		n <<= 1;
	return n;
}

void ferry_ep_config_init(struct ferry_ep_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->dataplane = "uring";
	cfg->max_sessions = 64;
	cfg->session_slots = 128;
	cfg->session_credits = 128;
	cfg->max_frame = 8192;
	cfg->max_msg = 8u << 20;
	cfg->rx_bufs = 0;
	cfg->zc_threshold = 0;
	cfg->connect_timeout_ms = 5000;
	cfg->keepalive_ms = 1000;
	cfg->peer_timeout_ms = 5000;
	cfg->dpdk = NULL;
	cfg->iou_max = 0;
	cfg->iou_timeout_ms = FERRY__IOU_TIMEOUT_MS;
	cfg->iou_early_max = FERRY__IOU_EARLY_MAX;
	cfg->iou_early_bytes = FERRY__IOU_EARLY_BYTES;
	cfg->iou_early_ms = FERRY__IOU_EARLY_MS;
	cfg->reasm_timeout_ms = FERRY__REASM_TIMEOUT_MS;
	cfg->reasm_quota = 0;
	cfg->pool[0] = (struct ferry_pool_class){ 512, 4096 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 128 };
	cfg->pool[2] = (struct ferry_pool_class){ 1u << 20, 16 };
	cfg->pool[3] = (struct ferry_pool_class){ 8u << 20, 2 };
	cfg->listen = false;
	cfg->connect_rate = 10000;
	cfg->connect_rate_per_source = 1000;
	cfg->wire_mode = FERRY_WIRE_MAC;
	cfg->retry_never = false;
	cfg->cc = "none";
	cfg->cc_target_us = 0;
}

/* --- sessions by id ------------------------------------------------------ */

struct ferry_session *ferry__sess_lookup(struct ferry_endpoint *ep, uint32_t id)
{
	uint32_t idx = id & ((1u << FERRY__SESS_IDX_BITS) - 1);
	struct ferry_session *s;

	if (idx >= ep->nsessions)
		return NULL;
	s = &ep->sessions[idx];
	if (s->id != id || s->state == SESS_FREE)
		return NULL;
	return s;
}

void ferry__sess_activate(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	if (s->active)
		return;
	/* The flush may put datagrams in flight: an RTO to arm. */
	ferry__sess_touch(s);
	s->active = true;
	s->next_active = NULL;
	if (ep->active_tail)
		ep->active_tail->next_active = s;
	else
		ep->active_head = s;
	ep->active_tail = s;
}

/*
 * Message bytes of session @sess_id stopped holding memory: the peer may
 * send as many more.  Told at the next flush once a quarter window is owed
 * (docs/wire.md, 5.5; data frames going anyway carry the CREDIT).
 */
void ferry__sess_credit_release(struct ferry_endpoint *ep, uint32_t sess_id,
				uint32_t bytes)
{
	struct ferry_session *s = ferry__sess_lookup(ep, sess_id);

	if (!s || s->state != SESS_OPEN)
		return;
	s->rx_released += bytes;
	if (credit_owed(s)) {
		s->pending |= SF_CREDIT;
		ferry__sess_activate(s);
	}
}

void ferry__hook_set(bool on, void (*release)(void *), void *ctx,
		     void (**cur_release)(void *), void **cur_ctx)
{
	/* Hooks run only on the endpoint's thread, which is this one: the
	 * old one is not running now, and its context may go at once. */
	if (*cur_release)
		(*cur_release)(*cur_ctx);
	*cur_release = on ? release : NULL;
	*cur_ctx = on ? ctx : NULL;
	if (!on && release)
		release(ctx);
}

/* --- cross-thread work --------------------------------------------------- */

static int drain_cross(struct ferry_endpoint *ep)
{
	struct ferry_call *calls;
	struct ferry_msgbuf *frees;
	struct ferry_iou *ious;
	int n = 0;

	if (!atomic_load_explicit(&ep->xpending, memory_order_acquire))
		return 0;
	ferry__xlock(ep);
	atomic_store_explicit(&ep->xpending, false, memory_order_relaxed);
	calls = ep->xcalls;
	frees = ep->xfrees;
	ious = ep->xious;
	ep->xcalls = NULL;
	ep->xfrees = NULL;
	ep->xious = NULL;
	atomic_flag_clear_explicit(&ep->xlock, memory_order_release);

	/* The queue is LIFO; answer in the order the threads answered. */
	{
		struct ferry_call *rev = NULL;

		while (calls) {
			struct ferry_call *c = calls;

			calls = c->xnext;
			c->xnext = rev;
			rev = c;
		}
		calls = rev;
	}
	while (calls) {
		struct ferry_call *c = calls;

		calls = c->xnext;
		ferry__server_respond_local(c);
		n++;
	}
	while (frees) {
		struct ferry_msgbuf *mb = frees;

		frees = mb->next;
		ferry__msgbuf_put(mb);
	}
	while (ious) {
		struct ferry_iou *iou = ious;

		ious = iou->next;
		ferry__iou_kept(iou);
		n++;
	}
	return n;
}

/* --- create / destroy / poll -------------------------------------------- */

/* The congestion controller @name names (NULL: the default), or -1. */
static int cc_algo(const char *name)
{
	if (!name || strcmp(name, "none") == 0)
		return FERRY__CC_NONE;
	if (strcmp(name, "swift") == 0)
		return FERRY__CC_SWIFT;
	return -1;
}

static bool config_ok(const struct ferry_ep_config *cfg)
{
	return !(cfg->max_sessions == 0 ||
		 cfg->max_sessions > FERRY__SESS_MAX ||
		 cfg->session_slots == 0 ||
		 cfg->session_slots > 4096 || cfg->session_credits == 0 ||
		 cfg->max_frame < FERRY_W2_MIN_FRAME ||
		 cfg->wire_mode < FERRY_WIRE_NONE ||
		 cfg->wire_mode > FERRY_WIRE_AEAD ||
		 cfg->max_frame > FERRY_WIRE_MAX_FRAME || cfg->max_msg == 0 ||
		 cfg->max_msg > FERRY_WIRE_MAX_MSG || cfg->keepalive_ms == 0 ||
		 cfg->peer_timeout_ms < cfg->keepalive_ms ||
		 cc_algo(cfg->cc) < 0);
}

/* Open the dataplane @ep->dp_ops names, wrapped in fault injection if
 * @cfg asks for faults, and learn its address and frame limit. */
static int dp_open(struct ferry_endpoint *ep, const struct ferry_ep_config *cfg)
{
	struct ferry_dp_conf dc;
	int ret;

	memset(&dc, 0, sizeof(dc));
	dc.bind_addr = cfg->bind_addr;
	dc.port = cfg->port;
	dc.reuseport = cfg->reuseport;
	dc.busy_poll = cfg->busy_poll;
	dc.max_frame = cfg->max_frame;
	dc.rx_bufs = ep->cfg.rx_bufs;
	dc.tx_slots = tx_slots_for(cfg->max_sessions);
	dc.zc_threshold = cfg->zc_threshold;
	dc.no_gso = cfg->no_gso;
	dc.no_gro = cfg->no_gro;
	dc.mem_bytes = ferry__pool_bytes(cfg);
	dc.dpdk_port = -1;
	if (cfg->dpdk) {
		dc.dpdk_eal = cfg->dpdk->eal;
		dc.dpdk_port = cfg->dpdk->port;
		dc.dpdk_queues = cfg->dpdk->queues;
	}
	if (cfg->faults.loss > 0 || cfg->faults.dup > 0 ||
	    cfg->faults.reorder > 0 || cfg->faults.corrupt > 0 ||
	    cfg->faults.delay > 0 || cfg->faults.truncate > 0 ||
	    cfg->faults.garbage > 0 || cfg->faults.replay > 0) {
		/* Fault injection wraps the chosen backend. */
		dc.inner = ep->dp_ops;
		dc.faults.loss = cfg->faults.loss;
		dc.faults.dup = cfg->faults.dup;
		dc.faults.reorder = cfg->faults.reorder;
		dc.faults.corrupt = cfg->faults.corrupt;
		dc.faults.delay = cfg->faults.delay;
		dc.faults.delay_us = cfg->faults.delay_us;
		dc.faults.seed = cfg->faults.seed;
		dc.faults.truncate = cfg->faults.truncate;
		dc.faults.garbage = cfg->faults.garbage;
		dc.faults.replay = cfg->faults.replay;
		ep->dp_ops = &ferry__dp_fault_ops;
	}
	dc.tx_done = ferry__tx_done;
	dc.tx_done_ctx = ep;
	ret = ep->dp_ops->open(&dc, &ep->dp);
	if (ret < 0) {
		ep->dp = NULL;
		return ret;
	}
	ret = ep->dp_ops->local_addr(ep->dp, &ep->local);
	if (ret < 0)
		return ret;
	/* A link with a smaller MTU (DPDK) lowers what we accept, and so what
	 * each session negotiates. */
	if (ep->dp_ops->max_frame) {
		uint32_t mf = ep->dp_ops->max_frame(ep->dp);

		if (mf < FERRY_W2_MIN_FRAME)
			return -EMSGSIZE;
		if (mf < ep->cfg.max_frame)
			ep->cfg.max_frame = mf;
	}
	return 0;
}

/* Per-session wire state, each kind in one allocation: windows, sent
 * queues, and the keys in one locked arena. */
static int wire_alloc(struct ferry_endpoint *ep,
		      const struct ferry_ep_config *cfg)
{
	size_t n = ep->nsessions, words = FERRY_REPLAY_WORDS(FERRY__REPLAY_LOG2);
	uint32_t dgs = pow2_ceil(2 * cfg->session_credits);

	/* Datagrams in flight per session: twice the credit window (in
	 * datagrams of max_frame), within the peer's replay window, which
	 * is FERRY__REPLAY_LOG2 at every v2.0 peer. */
	if (dgs < 64)
		dgs = 64;
	if (dgs > (1u << (FERRY__REPLAY_LOG2 - 1)))
		dgs = 1u << (FERRY__REPLAY_LOG2 - 1);
	ep->sq_log2 = (unsigned)__builtin_ctz(dgs);
	if (ferry__seal_init() < 0)
		return -EIO;
	ep->offer_aes = ferry__seal_aes_available() && !env_set("FERRY_NO_AESGCM");
	ep->seen_mem = calloc(n * words, sizeof(uint64_t));
	ep->acked_mem = calloc(n * words, sizeof(uint64_t));
	if (ferry__sentq_pool_init(&ep->sq_pool, (uint32_t)n, ep->sq_log2) < 0)
		return -ENOMEM;
	ep->keys_len = n * 2 * FERRY_SEAL_KEY_LEN;
	ep->keys = sodium_malloc(ep->keys_len);
	ep->txbuf_len = cfg->max_frame > FERRY_HS_CONNECT_MAX
				? cfg->max_frame
				: FERRY_HS_CONNECT_MAX;
	ep->txbuf = malloc(ep->txbuf_len);
	if (!ep->seen_mem || !ep->acked_mem || !ep->keys || !ep->txbuf)
		return -ENOMEM;
	sodium_memzero(ep->keys, ep->keys_len);
	if (ferry__cidtab_init(&ep->cids, ep->nsessions) < 0)
		return -ENOMEM;
	return ferry__hs_server_init(&ep->hs, cfg->retry_never
						      ? FERRY_HS_RETRY_NEVER
						      : FERRY_HS_RETRY_ALWAYS,
				     ferry__unix_ns());
}

static void wire_free(struct ferry_endpoint *ep)
{
	free(ep->seen_mem);
	free(ep->acked_mem);
	ferry__sentq_pool_fini(&ep->sq_pool);
	if (ep->keys) {
		/* The key schedules this thread keeps for them go too. */
		for (size_t i = 0; i < ep->keys_len; i += FERRY_SEAL_KEY_LEN)
			ferry__seal_forget(ep->keys + i);
		sodium_free(ep->keys);
	}
	free(ep->txbuf);
	ferry__cidtab_fini(&ep->cids);
	sodium_memzero(&ep->hs, sizeof(ep->hs));
}

/* The sessions, their slots, the calls and the handler table, each in one
 * allocation. */
static int tables_alloc(struct ferry_endpoint *ep,
			const struct ferry_ep_config *cfg, uint32_t slots)
{
	uint32_t nslots_total;

	ep->nsessions = cfg->max_sessions;
	ep->sessions = calloc(ep->nsessions, sizeof(*ep->sessions));
	nslots_total = ep->nsessions * slots;
	ep->slot_mem = calloc(nslots_total, sizeof(*ep->slot_mem));
	/* Every slot of every session can hold a call, and as many again
	 * may wait for a slot on the client side. */
	ep->ncalls = nslots_total * 2;
	ep->calls = calloc(ep->ncalls, sizeof(*ep->calls));
	ep->handler_mask = 255;
	ep->handlers = calloc(ep->handler_mask + 1, sizeof(*ep->handlers));
	if (!ep->sessions || !ep->slot_mem || !ep->calls || !ep->handlers)
		return -ENOMEM;
	for (uint32_t i = 0; i < ep->nsessions; i++) {
		struct ferry_session *s = &ep->sessions[i];

		s->slots = ep->slot_mem + (size_t)i * slots;
		s->slot_mask = slots - 1;
	}
	for (uint32_t i = ep->ncalls; i-- > 0;)
		ferry__call_put(ep, &ep->calls[i]);
	return wire_alloc(ep, cfg);
}

int ferry_endpoint_create(const struct ferry_ep_config *cfg,
			  struct ferry_endpoint **out)
{
	struct ferry_endpoint *ep;
	uint32_t slots;
	int ret;

	if (!cfg || !out || !config_ok(cfg))
		return -EINVAL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	ep->cfg = *cfg;
	ep->owner = pthread_self();
	atomic_flag_clear(&ep->xlock);
	ep->dp_ops = ferry__dp_find(cfg->dataplane);
	if (!ep->dp_ops || !cfg->dataplane) {
		free(ep);
		return -ENODEV;
	}
	ep->dp_name = ep->dp_ops->name;
	ep->cc_algo = (uint8_t)cc_algo(cfg->cc);
	ep->cc_target_ns = (uint64_t)cfg->cc_target_us * 1000;
	slots = pow2_ceil(cfg->session_slots);
	ep->cfg.session_slots = slots;
	/* Enough receive buffers for every session's full window, so that
	 * credits, not the ring, hold a sender back; but at most about
	 * RX_RING_BYTES of memory: beyond that, datagrams wait in the
	 * socket's (deep) queue until the ring refills. */
	if (ep->cfg.rx_bufs == 0) {
		uint64_t want = (uint64_t)cfg->max_sessions *
				cfg->session_credits;
		uint64_t cap = RX_RING_BYTES / cfg->max_frame;

		if (want > cap)
			want = cap;
		ep->cfg.rx_bufs = (uint32_t)(want < 256 ? 256 : want);
	}
	ep->cfg.rx_bufs = pow2_ceil(ep->cfg.rx_bufs);
	if (ep->cfg.rx_bufs > 32768)
		ep->cfg.rx_bufs = 32768;

	ret = dp_open(ep, cfg);
	if (ret < 0)
		goto err;
	ret = ferry__pool_init(ep);
	if (ret < 0)
		goto err;
	/* By default one message of any size the pool can hold fits. */
	if (!ep->cfg.reasm_quota)
		ep->cfg.reasm_quota = ep->cls[ep->ncls - 1].size;
	if (!ep->cfg.reasm_timeout_ms)
		ep->cfg.reasm_timeout_ms = FERRY__REASM_TIMEOUT_MS;
	ret = tables_alloc(ep, cfg, slots);
	if (ret < 0)
		goto err;
	ret = ferry__sess_table_init(ep);
	if (ret < 0)
		goto err;
	ret = ferry__listen_init(ep);
	if (ret < 0)
		goto err;
	ret = ferry__iou_init(ep);
	if (ret < 0)
		goto err;
	ep->sess_gen = 1;
	ep->pipe_chunk = cfg->busy_poll ? FERRY__PIPE_CHUNK_BUSY
					: FERRY__PIPE_CHUNK;
	ep->now = ferry__now_ns();
	/* Readers on other threads see zeros, not garbage, until the first
	 * timer tick. */
	ferry__endpoint_stats_publish(ep);
	*out = ep;
	return 0;
err:
	ferry_endpoint_destroy(ep);
	return ret;
}

void ferry_endpoint_destroy(struct ferry_endpoint *ep)
{
	if (!ep)
		return;
	ep->destroying = true;
	if (ep->sessions) {
		drain_cross(ep);
		for (uint32_t i = 0; i < ep->nsessions; i++) {
			struct ferry_session *s = &ep->sessions[i];

			if (s->state == SESS_CONNECTING || s->state == SESS_OPEN)
				ferry__sess_end(s, -ECANCELED, true);
		}
		/* Say goodbye to the peers, then let the dataplane finish
		 * every transmit (its tx_done frees the buffers). */
		ferry__flush_sessions(ep);
		drain_cross(ep);
	}
	if (ep->tops)
		ep->tops->ring_destroy(ep->tring);
	if (ep->dp)
		ep->dp_ops->close(ep->dp);
	if (ep->admit_release)
		ep->admit_release(ep->admit_ctx);
	ferry__iou_fini(ep);
	ferry__pool_fini(ep);
	ferry__listen_fini(ep);
	free(ep->free_map);
	ferry__timers_fini(ep);
	free(ep->sessions);
	free(ep->slot_mem);
	wire_free(ep);
	free(ep->calls);
	free(ep->handlers);
	free(ep);
}

static int poll_once(struct ferry_endpoint *ep)
{
	struct ferry_dp_pkt pkts[FERRY_RX_BURST];
	bool read_up = false;
	int events = 0;

	/* A few bursts, then send: keeps latency bounded under load. */
	for (int round = 0; round < 4; round++) {
		unsigned n = ep->dp_ops->rx_burst(ep->dp, pkts, FERRY_RX_BURST);

		/* What arrived is stamped with the time it was read, not the
		 * end of the last poll: between them this thread may have
		 * slept for milliseconds, which would read as the peer's
		 * ACKs coming that much sooner (RTT samples near 0) and as
		 * this end holding its own that much longer (ack_delay). */
		if (n)
			ep->now = ferry__now_ns();
		for (unsigned i = 0; i < n; i++) {
			ferry__rx_dgram(ep, &pkts[i]);
			/* Calls this datagram completed answered at once (or
			 * continuations made new ones): they leave before the
			 * rest of the burst is handled, so that the peer works
			 * on them meanwhile.  With many calls per datagram a
			 * burst would otherwise go as one batch each way, and
			 * each side would idle while the other works.  Only
			 * for new messages: a datagram that owes an ACK or a
			 * CREDIT alone (a fragment taken) waits for the
			 * burst's end, or every fragment would cost one. */
			if (ep->txq_new && i + 1 < n)
				ferry__flush_sessions(ep);
		}
		events += (int)n;
		if (n < FERRY_RX_BURST) {
			read_up = true;
			break;
		}
	}
	events += drain_cross(ep);
	ep->now = ferry__now_ns();
	if (read_up)
		ep->read_up_ns = ep->now;
	if (ep->now >= ep->next_timer) {
		ep->next_timer = ep->now + TIMER_PERIOD_NS;
		/* The sessions whose timers fall due, from the wheel
		 * (session.c): idle ones cost nothing. */
		ferry__timers_run(ep);
		/* Inside the timer tick, so the per-packet path never looks:
		 * about 50 ns of copying every 10 ms. */
		if (ep->now >= ep->pub.next_ns)
			ferry__endpoint_stats_publish(ep);
	}
	ferry__flush_sessions(ep);
	return events;
}

int ferry_endpoint_poll(struct ferry_endpoint *ep, int timeout_ms)
{
	uint64_t deadline;
	int events, ret;

	if (!ep)
		return -EINVAL;
	events = poll_once(ep);
	if (events || timeout_ms == 0)
		return events;
	deadline = timeout_ms < 0 ? UINT64_MAX
				  : ep->now + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		/* Wait in slices so that timers run on time: short ones
		 * while packets await acknowledgement. */
		int64_t slice = (int64_t)TIMER_PERIOD_NS * (ep->rel_busy ? 1 : 10);

		/* A session waits for its pacing time: no longer than that
		 * (the flush that follows sends it). */
		if (ep->pace_ns && (int64_t)(ep->pace_ns - ep->now) < slice)
			slice = ep->pace_ns > ep->now
					? (int64_t)(ep->pace_ns - ep->now)
					: 0;

		if (deadline - ep->now < (uint64_t)slice)
			slice = (int64_t)(deadline - ep->now);
		ret = ep->dp_ops->wait(ep->dp, slice);
		if (ret < 0)
			return ret;
		events = poll_once(ep);
		if (events || ep->now >= deadline)
			return events;
	}
}

int ferry__endpoint_set_trace(struct ferry_endpoint *ep,
			      const struct ferry__trace_ops *ops,
			      struct ferry_trace_ring *ring)
{
	/* Sessions opened untraced would end without spans: set it first. */
	for (uint32_t i = 0; i < ep->nsessions; i++)
		if (ep->sessions[i].state != SESS_FREE)
			return -EBUSY;
	if (ep->tops)
		ep->tops->ring_destroy(ep->tring);
	ep->tops = ops;
	ep->tring = ring;
	return 0;
}

struct ferry_trace_ring *ferry_endpoint_trace_ring(struct ferry_endpoint *ep)
{
	return ep ? ep->tring : NULL;
}

uint64_t ferry_session_span(const struct ferry_session *s)
{
	return s ? s->span : 0;
}

uint64_t ferry_call_span(const struct ferry_call *c)
{
	return c ? c->span : 0;
}

int ferry_endpoint_wake(struct ferry_endpoint *ep)
{
	return ep->dp_ops->wake(ep->dp);
}

void ferry_dpdk_config_init(struct ferry_dpdk_config *cfg)
{
	cfg->eal = NULL;
	cfg->port = -1;
	cfg->queues = 0;
}

uint16_t ferry_endpoint_port(const struct ferry_endpoint *ep)
{
	return ep->local.port;
}
