/* SPDX-License-Identifier: MIT */
/*
 * Endpoints: their life (create, destroy), the poll loop, the receive
 * path's demultiplexing of frames to sessions and roles, and work other
 * threads hand over.
 *
 * One poll does: receive a burst, handle each frame (dispatching handlers
 * and continuations as messages complete: server.c, client.c), take in
 * work other threads handed over, run timers, then turn every session's
 * transmit queue into datagrams and flush them to the dataplane in one
 * submission (tx.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "rd.h"

#define TIMER_PERIOD_NS 1000000ull /* timers are checked once a millisecond */
#define RX_RING_BYTES (64ull << 20)

uint64_t ferry__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
	cfg->cc = "none";
	cfg->cc_target_us = 0;
}

/* --- sessions by id ------------------------------------------------------ */

struct ferry_session *ferry__sess_lookup(struct ferry_endpoint *ep, uint32_t id)
{
	uint32_t idx = id & 0xffff;
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
	s->active = true;
	s->next_active = NULL;
	if (ep->active_tail)
		ep->active_tail->next_active = s;
	else
		ep->active_head = s;
	ep->active_tail = s;
}

/*
 * A received data packet of session @sess_id was released: the peer may
 * send one more.  Tell it at the next flush once half a window is owed
 * (data frames sent meanwhile carry the credit for free).
 */
void ferry__sess_credit_release(struct ferry_endpoint *ep, uint32_t sess_id,
				uint32_t npkts)
{
	struct ferry_session *s = ferry__sess_lookup(ep, sess_id);

	if (!s || s->state != SESS_OPEN)
		return;
	s->rx_released += npkts;
	if (credit_half_owed(s)) {
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

/* --- frame demultiplexing ------------------------------------------------ */

static void count_parse_drop(struct ferry_endpoint *ep, enum ferry_parse_err e)
{
	switch (e) {
	case FERRY_PARSE_TRUNCATED:
		ep->st.drop_truncated++;
		break;
	case FERRY_PARSE_BAD_MAGIC:
		ep->st.drop_bad_magic++;
		break;
	case FERRY_PARSE_BAD_VERSION:
		ep->st.drop_bad_version++;
		break;
	case FERRY_PARSE_BAD_TYPE:
		ep->st.drop_bad_type++;
		break;
	case FERRY_PARSE_OVERSIZED:
		ep->st.drop_oversized++;
		break;
	default:
		ep->st.drop_malformed++;
		break;
	}
}

/* Take the peer's credit, acknowledgements and liveness from any frame. */
static void sess_rx_common(struct ferry_session *s, const struct ferry_frame *f)
{
	const struct ferry_hdr *h = &f->h;
	uint64_t sack = 0;

	s->last_rx_ns = s->ep->now;
	if (seq_lt(s->tx_credit, h->credit)) {
		s->tx_credit = h->credit;
		s->credit_pings = 0;
	}
	if (h->type == FERRY_FT_CREDIT && f->pay_len >= 8) {
		struct ferry_rd r;

		ferry_rd_init(&r, f->payload, f->pay_len);
		sack = (uint64_t)ferry_rd_u32(&r) << 32;
		sack |= ferry_rd_u32(&r);
	}
	ferry__rel_on_ack(s, h->ack, sack);
	if (s->txq_head || s->pushq_head)
		ferry__sess_activate(s);
}

/* Parse @pkt into @f and check it is a frame this endpoint takes; count
 * it, and the drop if it is not. */
static bool rx_parse(struct ferry_endpoint *ep, const struct ferry_dp_pkt *pkt,
		     struct ferry_frame *f)
{
	enum ferry_parse_err e;

	ep->st.rx_pkts++;
	ep->st.rx_bytes += pkt->len;
	e = ferry__wire_parse(pkt->data, pkt->len, ep->cfg.max_msg, f);
	if (e == FERRY_PARSE_OK && pkt->len > ep->cfg.max_frame)
		e = FERRY_PARSE_OVERSIZED;
	/* An endpoint that checksums its frames takes only checksummed
	 * ones: a corrupted flags byte must not switch the check off. */
	if (e == FERRY_PARSE_OK && ep->cfg.wire_csum &&
	    !(f->h.flags & FERRY_FF_CSUM))
		e = FERRY_PARSE_MALFORMED;
	if (e != FERRY_PARSE_OK) {
		count_parse_drop(ep, e);
		return false;
	}
	return true;
}

/*
 * The session frame @f (not a CONNECT) is for, or NULL if it is dropped
 * (counted): no such session, not from its peer, not in a state to take
 * it, the wrong direction, a data packet seen already, or a fragment cut
 * short in transit.
 */
static struct ferry_session *rx_session(struct ferry_endpoint *ep,
					const struct ferry_frame *f,
					const struct ferry_dp_pkt *pkt)
{
	struct ferry_session *s = ferry__sess_lookup(ep, f->h.dst_sess);

	if (f->h.type == FERRY_FT_CLOSE &&
	    (!s || s->state == SESS_CLOSED || s->peer_id != f->h.src_sess))
		return NULL; /* the answer to our own CLOSE, or a repeat */
	if (!s || !ferry_addr_eq(&s->peer, &pkt->src) ||
	    (s->peer_id && f->h.src_sess && s->peer_id != f->h.src_sess)) {
		ep->st.drop_unknown_session++;
		return NULL;
	}
	if (s->state == SESS_CLOSED) {
		ep->st.drop_stale++;
		return NULL;
	}
	if (f->h.type != FERRY_FT_ERROR && f->h.type != FERRY_FT_ACCEPT &&
	    s->state != SESS_OPEN) {
		ep->st.drop_stale++;
		return NULL;
	}
	/* Requests and pushes go to servers, responses to clients. */
	if (ferry_ft_is_data(f->h.type) &&
	    (f->h.type != FERRY_FT_RESPONSE) != s->is_server) {
		ep->st.drop_malformed++;
		return NULL;
	}
	if (ferry_ft_is_data(f->h.type)) {
		enum rel_rx rr = ferry__rel_rx_check(s, f->h.seq);

		if (rr != REL_NEW) {
			/* Sent again, or beyond what we track: the credit
			 * was given (or will be) for the first copy. */
			if (rr == REL_DUP)
				ep->st.drop_duplicate++;
			else
				ep->st.drop_stale++;
			sess_rx_common(s, f);
			ferry__sess_activate(s); /* re-acknowledge */
			return NULL;
		}
		/* Cut short on the way: damage, not a protocol error (a
		 * PUSH is one frame whose msg_len is its length: the parser
		 * refused a short one already).  Nothing of it is taken,
		 * not even its ack or credit: neither acknowledged nor
		 * credited, it is sent again whole. */
		if (ferry__reasm_short(s, f)) {
			ep->st.drop_short_frag++;
			return NULL;
		}
	}
	return s;
}

/* Hand @f to its role: false if a data packet could not be taken now. */
static bool rx_dispatch(struct ferry_session *s, const struct ferry_frame *f,
			const struct ferry_dp_pkt *pkt, bool *keep)
{
	bool taken = true;

	switch (f->h.type) {
	case FERRY_FT_REQUEST:
		taken = ferry__server_rx_request(s, f, pkt, keep);
		break;
	case FERRY_FT_RESPONSE:
	case FERRY_FT_ACCEPT:
	case FERRY_FT_ERROR:
		taken = ferry__client_rx(s, f);
		break;
	case FERRY_FT_PUSH:
		ferry__iou_rx_push(s, f);
		break;
	case FERRY_FT_CREDIT:
		break; /* sess_rx_common took the credit */
	case FERRY_FT_CLOSE:
		if (f->h.flags & FERRY_FF_REPLY)
			break;
		ferry__sess_end(s, -ECONNRESET, false);
		ferry__sess_send_close(s, FERRY_FF_REPLY);
		break;
	case FERRY_FT_PING:
		if (!(f->h.flags & FERRY_FF_REPLY)) {
			s->pending |= SF_PONG;
			ferry__sess_activate(s);
		}
		break;
	default:
		s->ep->st.drop_unsupported++;
		break;
	}
	return taken;
}

/* A data packet of session @sid was handled (@taken) and maybe kept in
 * place (@keep): acknowledge it, release and credit it. */
static void rx_data_done(struct ferry_endpoint *ep, uint32_t sid,
			 const struct ferry_frame *f,
			 const struct ferry_dp_pkt *pkt, bool taken, bool keep)
{
	struct ferry_session *cur = ferry__sess_lookup(ep, sid);

	if (!taken) {
		/* Not taken for want of buffers: no ack, no credit;
		 * the peer backs off and sends it again. */
		ep->dp_ops->rx_release(ep->dp, pkt->id);
		return;
	}
	/* The handler or continuation may have ended the session:
	 * acknowledge only for the one still there. */
	if (cur && cur->state == SESS_OPEN)
		ferry__rel_rx_commit(cur, f->h.seq);
	/* A data packet not kept in place is consumed now: credit
	 * it. */
	if (!keep) {
		ep->dp_ops->rx_release(ep->dp, pkt->id);
		ferry__sess_credit_release(ep, sid, 1);
	}
}

static void rx_frame(struct ferry_endpoint *ep, const struct ferry_dp_pkt *pkt)
{
	struct ferry_frame f;
	struct ferry_session *s;
	bool keep = false, taken;
	uint32_t sid;

	if (!rx_parse(ep, pkt, &f))
		goto out;
	if (f.h.type == FERRY_FT_CONNECT) {
		ferry__server_rx_connect(ep, &f, pkt);
		goto out;
	}
	s = rx_session(ep, &f, pkt);
	if (!s)
		goto out;
	/* A frame beyond its CONNECT, naming both ends' ids: as much proof
	 * that the peer is at its address as wire v1 has. */
	if (s->is_server)
		s->srv.validated = true;
	/* Handlers and continuations below may close @s and even reuse its
	 * memory for a new session: credit by the id it had. */
	sid = s->id;
	if (s->state == SESS_OPEN)
		sess_rx_common(s, &f);
	taken = rx_dispatch(s, &f, pkt, &keep);
	if (ferry_ft_is_data(f.h.type)) {
		rx_data_done(ep, sid, &f, pkt, taken, keep);
		return;
	}
out:
	if (!keep)
		ep->dp_ops->rx_release(ep->dp, pkt->id);
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
		 cfg->max_sessions > 0xffff || cfg->session_slots == 0 ||
		 cfg->session_slots > 4096 || cfg->session_credits == 0 ||
		 cfg->max_frame < FERRY_WIRE_MIN_FRAME ||
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
	dc.tx_slots = 1024;
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

		if (mf < FERRY_WIRE_MIN_FRAME)
			return -EMSGSIZE;
		if (mf < ep->cfg.max_frame)
			ep->cfg.max_frame = mf;
	}
	return 0;
}

/* The sessions, their slots and reliability records, the calls and the
 * handler table, each in one allocation. */
static int tables_alloc(struct ferry_endpoint *ep,
			const struct ferry_ep_config *cfg, uint32_t slots)
{
	uint32_t nslots_total, rel;

	ep->nsessions = cfg->max_sessions;
	ep->sessions = calloc(ep->nsessions, sizeof(*ep->sessions));
	nslots_total = ep->nsessions * slots;
	ep->slot_mem = calloc(nslots_total, sizeof(*ep->slot_mem));
	/* Every slot of every session can hold a call, and as many again
	 * may wait for a slot on the client side. */
	ep->ncalls = nslots_total * 2;
	ep->calls = calloc(ep->ncalls, sizeof(*ep->calls));
	/* In flight per session: twice the credit window, so that packets
	 * released out of order do not stall the sender. */
	rel = pow2_ceil(2 * cfg->session_credits);
	if (rel < 64)
		rel = 64;
	ep->txr_mem = calloc((size_t)ep->nsessions * rel, sizeof(*ep->txr_mem));
	ep->rxmap_mem = calloc((size_t)ep->nsessions * rel / 64,
			       sizeof(*ep->rxmap_mem));
	ep->handler_mask = 255;
	ep->handlers = calloc(ep->handler_mask + 1, sizeof(*ep->handlers));
	if (!ep->sessions || !ep->slot_mem || !ep->calls || !ep->handlers ||
	    !ep->txr_mem || !ep->rxmap_mem)
		return -ENOMEM;
	for (uint32_t i = 0; i < ep->nsessions; i++) {
		struct ferry_session *s = &ep->sessions[i];

		s->slots = ep->slot_mem + (size_t)i * slots;
		s->slot_mask = slots - 1;
		s->txr = ep->txr_mem + (size_t)i * rel;
		s->txr_mask = rel - 1;
		s->rxmap = ep->rxmap_mem + (size_t)i * rel / 64;
		s->rxmap_mask = rel - 1;
	}
	for (uint32_t i = ep->ncalls; i-- > 0;)
		ferry__call_put(ep, &ep->calls[i]);
	return 0;
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
	ep->cc_headroom_ns = (uint64_t)cfg->cc_target_us * 1000;
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
	free(ep->sessions);
	free(ep->slot_mem);
	free(ep->txr_mem);
	free(ep->rxmap_mem);
	free(ep->calls);
	free(ep->handlers);
	free(ep);
}

static int poll_once(struct ferry_endpoint *ep)
{
	struct ferry_dp_pkt pkts[FERRY_RX_BURST];
	int events = 0;

	/* A few bursts, then send: keeps latency bounded under load. */
	for (int round = 0; round < 4; round++) {
		unsigned n = ep->dp_ops->rx_burst(ep->dp, pkts, FERRY_RX_BURST);

		for (unsigned i = 0; i < n; i++)
			rx_frame(ep, &pkts[i]);
		events += (int)n;
		if (n < FERRY_RX_BURST)
			break;
	}
	events += drain_cross(ep);
	ep->now = ferry__now_ns();
	if (ep->now >= ep->next_timer) {
		bool busy = false;

		ep->next_timer = ep->now + TIMER_PERIOD_NS;
		for (uint32_t i = 0; i < ep->nsessions; i++) {
			struct ferry_session *s = &ep->sessions[i];

			if (s->state == SESS_OPEN || s->state == SESS_CONNECTING) {
				ferry__session_timers(s);
				busy = busy || ferry__rel_busy(s);
			}
		}
		ep->rel_busy = busy;
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
