/* SPDX-License-Identifier: MIT */
/*
 * fuzz_session.c - libFuzzer target for a live server endpoint's receive
 * path: sequences of short-header datagrams of one session (docs/wire-v2.md
 * sections 2.4 and 5; issue 14).
 *
 * One server endpoint lives for the whole run: the uring dataplane on
 * 127.0.0.1, listening with retry_never, three methods (1: echo by handing
 * the request back, 2: echo by a copy into a pool buffer, 3: an error),
 * and small pools and windows so that buffer exhaustion is reached.  Each
 * input opens a session through a real handshake, done in process with
 * the handshake unit's client side (transport/handshake.h), so that the
 * fuzzer holds the keys; then its operations (sess_fuzz.h) build, seal,
 * forge, cut and replay datagrams and feed them to ferry__rx_dgram(),
 * between polls and jumps of the clock.
 *
 * The dataplane stays the real one but for three ops, wrapped here:
 *   - rx_release: the fuzzer's datagrams have ids of their own (from
 *     FZ_ID_BASE), each in a heap buffer of exactly its length, freed
 *     when the transport releases it, so a view read after its release,
 *     a double release or a leak is caught.  At most half the receive
 *     buffers are lent at once, as the dataplane itself would bound them
 *     (nobody else sends to this endpoint).
 *   - tx_burst, flush: what the server sends is captured, not sent: the
 *     ACCEPT goes to the handshake client; every short-header datagram
 *     must open under the server-to-client key, parse, and carry a pn
 *     above the last one (a pn used twice would reuse a nonce); its
 *     pieces' tx_done run at the next flush, as a backend's do.
 * The clock: clock_gettime(CLOCK_MONOTONIC) is wrapped so that an input
 * can move it forward (timers, retransmissions, reassembly timeouts).
 *
 * Invariants checked (a trap besides the sanitizers' reports):
 *   - a request handed to a handler holds only bytes the input sent at
 *     those offsets of that req_id, and the very bytes when every copy
 *     agreed: pool buffers are filled with a poison pattern before each
 *     input, so stale or never-written bytes show;
 *   - at most one session is in use during an input; after it the session
 *     is closed (a CLOSE, or ferry_session_close) and, once polled, every
 *     session slot is free, every pool buffer, RX view and call is back,
 *     every datagram of the fuzzer has been released exactly once, and
 *     sessions_opened equals sessions_closed plus nothing in use.
 *
 * Build: meson setup -Dfuzz=true with CC=clang (see tests/fuzz/meson.build).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <ferry/ferry.h>

#include "sess_fuzz.h"
#include "transport/handshake.h"
#include "transport/internal.h"
#include "transport/session_internal.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- the clock ------------------------------------------------------------- */

static uint64_t g_skew_ns;

/* Every monotonic reading in the process is g_skew_ns ahead; it only
 * grows, so the endpoint never sees time go back. */
int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	uint64_t ns;
	int r;

	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(
			RTLD_NEXT, "clock_gettime");
	r = real(id, ts);
	if (r || id != CLOCK_MONOTONIC || !g_skew_ns)
		return r;
	ns = (uint64_t)ts->tv_nsec + g_skew_ns % 1000000000u;
	ts->tv_sec += (time_t)(g_skew_ns / 1000000000u + ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
	return 0;
}

/* --- the input ---------------------------------------------------------------- */

struct in {
	const uint8_t *p;
	size_t n, off;
};

static uint8_t in_u8(struct in *in)
{
	return in->off < in->n ? in->p[in->off++] : 0;
}

static uint16_t in_u16(struct in *in)
{
	uint16_t v = in_u8(in);

	return (uint16_t)(v << 8 | in_u8(in));
}

static uint32_t in_u32(struct in *in)
{
	uint32_t v = in_u16(in);

	return v << 16 | in_u16(in);
}

/* Up to @n bytes of the input, in place; *@got says how many. */
static const uint8_t *in_bytes(struct in *in, size_t n, size_t *got)
{
	const uint8_t *p = in->p + in->off;

	if (n > in->n - in->off)
		n = in->n - in->off;
	in->off += n;
	*got = n;
	return p;
}

/* --- the endpoint and its wrapped dataplane --------------------------------- */

#define FZ_MAX_MSG 16384u
#define FZ_RX_BUFS 32u
#define FZ_ID_BASE 0x40000000u
#define FZ_PKTS (FZ_RX_BUFS / 2)
#define FZ_DGRAM_MAX 4200u
#define FZ_POISON 0xa5u

static struct ferry_endpoint *g_ep;
static const struct ferry_dp_ops *g_real;
static struct ferry_dp_ops g_ops;
static uint32_t g_port_ip;

/* The fuzzer's lent datagrams, by id - FZ_ID_BASE. */
static uint8_t *g_pkt[FZ_PKTS];
static unsigned g_out;

/* Pieces whose tx_done is owed, run at the next flush. */
static void *g_done[8192];
static unsigned g_ndone;

static void fz_rx_release(struct ferry_dp *dp, uint32_t id)
{
	if (id < FZ_ID_BASE) {
		g_real->rx_release(dp, id);
		return;
	}
	id -= FZ_ID_BASE;
	CHECK(id < FZ_PKTS && g_pkt[id]); /* released once */
	free(g_pkt[id]);
	g_pkt[id] = NULL;
	g_out--;
}

static void srv_dgram(const uint8_t *p, size_t len);

static unsigned fz_tx_burst(struct ferry_dp *dp, const struct ferry_dp_tx *tx,
			    unsigned n)
{
	static uint8_t buf[65536];

	(void)dp;
	for (unsigned i = 0; i < n; i++) {
		const struct ferry_dp_tx *t = &tx[i];
		size_t len = 0;

		CHECK(ferry_dp_tx_len(t) <= sizeof(buf));
		memcpy(buf, t->hdr, t->hdr_len);
		len = t->hdr_len;
		for (unsigned k = 0; k < ferry_dp_tx_npieces(t); k++) {
			if (t->piece[k].len)
				memcpy(buf + len, t->piece[k].ptr,
				       t->piece[k].len);
			len += t->piece[k].len;
			if (t->piece[k].cookie) {
				CHECK(g_ndone < sizeof(g_done) /
						       sizeof(g_done[0]));
				g_done[g_ndone++] = t->piece[k].cookie;
			}
		}
		memcpy(buf + len, t->trailer, t->trailer_len);
		len += t->trailer_len;
		srv_dgram(buf, len);
	}
	return n;
}

static int fz_flush(struct ferry_dp *dp)
{
	/* tx_done may send no more than it frees, but take a copy of the
	 * count: a callback could queue more. */
	while (g_ndone) {
		void *c = g_done[--g_ndone];

		ferry__tx_done(g_ep, c);
	}
	return g_real->flush(dp);
}

/* --- what the input sent: the reference the handler checks against ------- */

#define FZ_TRACK 16

struct track {
	uint32_t req_id;
	uint32_t msg_len;
	bool used, unsure, conflict;
	uint8_t ref[FZ_MAX_MSG];
	uint8_t have[FZ_MAX_MSG / 8];
};

static struct track g_tr[FZ_TRACK];
static bool g_tr_full;

static struct track *track_of(uint32_t req_id, bool add)
{
	for (unsigned i = 0; i < FZ_TRACK; i++)
		if (g_tr[i].used && g_tr[i].req_id == req_id)
			return &g_tr[i];
	if (!add)
		return NULL;
	for (unsigned i = 0; i < FZ_TRACK; i++) {
		if (!g_tr[i].used) {
			memset(g_tr[i].have, 0, sizeof(g_tr[i].have));
			g_tr[i].used = true;
			g_tr[i].req_id = req_id;
			g_tr[i].msg_len = 0;
			g_tr[i].unsure = g_tr[i].conflict = false;
			return &g_tr[i];
		}
	}
	g_tr_full = true;
	return NULL;
}

/* A request data frame the fuzzer put in a datagram it built. */
static void track_frame(const struct ferry_w2_frame *w)
{
	const struct ferry_w2_data *d = &w->u.data;
	bool frag = w->type == FERRY_W2_REQUEST_FRAG;
	uint32_t msg_len = frag ? d->msg_len : d->bytes_len;
	uint32_t off = frag ? d->offset : 0;
	struct track *t = track_of(d->req_id, true);

	if (!t)
		return;
	if (t->msg_len == 0)
		t->msg_len = msg_len;
	if (t->msg_len != msg_len || (uint64_t)off + d->bytes_len > FZ_MAX_MSG) {
		t->unsure = true;
		return;
	}
	for (uint32_t i = 0; i < d->bytes_len; i++) {
		uint32_t o = off + i;

		if (t->have[o / 8] >> (o % 8) & 1) {
			if (t->ref[o] != d->bytes[i])
				t->conflict = true;
			continue;
		}
		t->have[o / 8] |= (uint8_t)(1u << (o % 8));
		t->ref[o] = d->bytes[i];
	}
}

/* Every request frame of the plaintext datagram @buf (@len bytes, the
 * trailer room included) the fuzzer is about to seal. */
static void track_dgram(const uint8_t *buf, size_t len)
{
	struct ferry_w2_dgram d;
	struct ferry_w2_iter it;
	struct ferry_w2_frame w;

	if (ferry__w2_parse_hdr(buf, len, &d) != FERRY_W2_OK ||
	    ferry__w2_check_frames(&d) != FERRY_W2_OK)
		return; /* the server drops it whole (rule 7) */
	ferry__w2_iter_init(&it, &d);
	while (ferry__w2_iter_next(&it, &w) == 1)
		if (w.type == FERRY_W2_REQUEST ||
		    w.type == FERRY_W2_REQUEST_FRAG)
			track_frame(&w);
}

/* The request @req (@len bytes) of call @c, as a handler sees it. */
static void check_request(const struct ferry_call *c, const uint8_t *req,
			  size_t len)
{
	struct track *t = track_of(c->req_id, false);
	size_t base;

	CHECK(len <= FZ_MAX_MSG);
	if (!t) {
		/* Only a request the fuzzer never built can be unknown. */
		CHECK(g_tr_full);
		return;
	}
	if (t->unsure || len > t->msg_len)
		return;
	/* A token table or a trace block goes ahead of the payload: what
	 * the handler gets is the message's tail. */
	base = t->msg_len - len;
	for (size_t i = 0; i < len; i++) {
		size_t o = base + i;

		/* Never-written bytes: the pool's poison, or a stale
		 * message's. */
		CHECK(t->have[o / 8] >> (o % 8) & 1);
		CHECK(t->conflict || req[i] == t->ref[o]);
	}
}

static void h_echo_view(struct ferry_call *c, void *ctx)
{
	size_t len;
	const uint8_t *req = ferry_call_req(c, &len);
	struct ferry_msgbuf *mb;

	(void)ctx;
	check_request(c, req, len);
	mb = ferry_call_take_req(c);
	if (mb)
		ferry_call_respond(c, mb);
	else
		ferry_call_respond_error(c, -ENOBUFS);
}

static void h_echo_copy(struct ferry_call *c, void *ctx)
{
	size_t len;
	const uint8_t *req = ferry_call_req(c, &len);
	struct ferry_msgbuf *mb;

	(void)ctx;
	check_request(c, req, len);
	if (ferry_msgbuf_alloc(g_ep, len, &mb) != 0) {
		ferry_call_respond_error(c, -ENOBUFS);
		return;
	}
	if (len)
		memcpy(ferry_msgbuf_data(mb), req, len);
	ferry_call_respond(c, mb);
}

static void h_error(struct ferry_call *c, void *ctx)
{
	size_t len;
	const uint8_t *req = ferry_call_req(c, &len);

	(void)ctx;
	check_request(c, req, len);
	ferry_call_respond_error(c, -FERRY_EREJECTED);
}

static struct ferry_session *g_srv_s;

static void on_session(struct ferry_session *s, enum ferry_session_event ev,
		       int res, void *ctx)
{
	(void)res;
	(void)ctx;
	if (ev == FERRY_SESSION_OPENED) {
		CHECK(!g_srv_s);
		g_srv_s = s;
	} else if (s == g_srv_s) {
		g_srv_s = NULL;
	}
}

static void setup(void)
{
	struct ferry_ep_config cfg;
	struct ferry_addr a;

	CHECK(sodium_init() >= 0);
	ferry_ep_config_init(&cfg);
	cfg.dataplane = "uring";
	cfg.bind_addr = "127.0.0.1";
	cfg.max_sessions = 4;
	cfg.session_slots = 8;
	cfg.max_frame = 2048;
	cfg.max_msg = FZ_MAX_MSG;
	cfg.rx_bufs = FZ_RX_BUFS;
	cfg.retry_never = true;
	cfg.connect_rate = 0;
	cfg.connect_rate_per_source = 0;
	cfg.no_gso = cfg.no_gro = true;
	memset(cfg.pool, 0, sizeof(cfg.pool));
	cfg.pool[0] = (struct ferry_pool_class){ 2048, 8 };
	cfg.pool[1] = (struct ferry_pool_class){ FZ_MAX_MSG, 4 };
	CHECK(ferry_endpoint_create(&cfg, &g_ep) == 0);
	CHECK(ferry_endpoint_register(g_ep, 1, h_echo_view, NULL) == 0);
	CHECK(ferry_endpoint_register(g_ep, 2, h_echo_copy, NULL) == 0);
	CHECK(ferry_endpoint_register(g_ep, 3, h_error, NULL) == 0);
	ferry_endpoint_on_session(g_ep, on_session, NULL);
	g_real = g_ep->dp_ops;
	g_ops = *g_real;
	g_ops.rx_release = fz_rx_release;
	g_ops.tx_burst = fz_tx_burst;
	g_ops.flush = fz_flush;
	g_ep->dp_ops = &g_ops;
	CHECK(g_real->local_addr(g_ep->dp, &a) == 0);
	g_port_ip = a.ip;
}

/* --- the client side of the session ---------------------------------------- */

static struct ferry_hs_client g_hs;
static bool g_accepted;
static struct ferry_hs_accept g_acc;
/* The session's seal mode: g_acc.mode, and FERRY_SEAL_AES when the
 * fuzzer's client offered that suite (setup byte bit 4) and the server
 * took it; g_acc.keys are then the suite's (docs/wire.md, 2.3). */
static enum ferry_seal_mode g_seal;
static struct ferry_addr g_cli;
static uint8_t g_connect[FERRY_HS_CONNECT_MAX];
static size_t g_connect_len;
static uint64_t g_pn_next, g_pn_last;
static uint32_t g_unit;
/* The server's short-header datagrams: the last pn, and whether any. */
static uint64_t g_srv_pn;
static bool g_srv_any;
/* Datagrams sent, for SF_OP_REPLAY. */
#define FZ_HIST 8
static uint8_t g_hist[FZ_HIST][FZ_DGRAM_MAX];
static size_t g_hist_len[FZ_HIST];
static unsigned g_nhist;

/* A datagram the server sent to the fuzzer's client. */
static void srv_dgram(const uint8_t *p, size_t len)
{
	static uint8_t buf[65536];
	struct ferry_w2_dgram d;
	uint64_t pn;

	memcpy(buf, p, len);
	if (ferry__w2_parse_hdr(buf, len, &d) != FERRY_W2_OK)
		return; /* a v1 refusal */
	if (d.is_long) {
		struct ferry_hs_client_result res;

		memset(&res, 0, sizeof(res));
		if (ferry__hs_client_input(&g_hs, buf, len, &res) ==
		    FERRY_HS_ACCEPTED) {
			g_acc = res.accept;
			g_seal = (enum ferry_seal_mode)g_acc.mode;
			if (g_acc.mode != FERRY_W2_MODE_NONE &&
			    (g_acc.features & FERRY_W2_FEAT_AESGCM)) {
				ferry__seal_aes_key(g_acc.keys.c2s);
				ferry__seal_aes_key(g_acc.keys.s2c);
				g_seal |= FERRY_SEAL_AES;
			}
			g_accepted = true;
		}
		return;
	}
	CHECK(g_accepted && d.dcid == g_hs.cid);
	CHECK(d.mode == g_acc.mode);
	pn = ferry__w2_pn_expand(g_srv_any ? g_srv_pn + 1 : 1, d.pn);
	/* A pn sealed twice would reuse a nonce. */
	CHECK(!g_srv_any || pn > g_srv_pn);
	CHECK(ferry__seal_open(g_seal, g_acc.keys.s2c, pn, buf, d.hdr_len,
			       len) >= 0);
	CHECK(ferry__w2_check_frames(&d) == FERRY_W2_OK);
	g_srv_pn = pn;
	g_srv_any = true;
}

/* Feed @len bytes at @p to the server as a datagram from the client. */
static void feed(const uint8_t *p, size_t len, bool must)
{
	struct ferry_dp_pkt pkt;
	unsigned i;

	if (g_out >= FZ_PKTS) {
		/* The dataplane lends no more than its buffers; only a
		 * datagram without data frames (never kept) goes past. */
		if (!must)
			return;
		ferry_endpoint_poll(g_ep, 0);
		CHECK(g_out < FZ_PKTS);
	}
	for (i = 0; g_pkt[i]; i++)
		;
	g_pkt[i] = malloc(len ? len : 1);
	CHECK(g_pkt[i]);
	if (len)
		memcpy(g_pkt[i], p, len);
	g_out++;
	pkt.data = g_pkt[i];
	pkt.len = (uint32_t)len;
	pkt.id = FZ_ID_BASE + i;
	pkt.src = g_cli;
	ferry__rx_dgram(g_ep, &pkt);
}

static bool handshake(struct in *in)
{
	uint8_t setup_b = in_u8(in);
	struct ferry_hs_client_cfg cfg = { 0 };
	static uint32_t src;
	int n;

	cfg.mode = setup_b & 1 ? FERRY_W2_MODE_AEAD : FERRY_W2_MODE_MAC;
	/* Either suite: AES-256-GCM where the CPU has it (the server under
	 * test offers it then). */
	if (setup_b & 0x10 && ferry__seal_aes_available())
		cfg.features = FERRY_W2_FEAT_AESGCM;
	cfg.params = (struct ferry_w2_params){
		1u << 20, setup_b & 8 ? 4096 : 1u << 20,
		SF_FRAMES[setup_b >> 1 & 3], 16, 1000,
		FERRY_REPLAY_LOG2_DEFAULT };
	CHECK(ferry__hs_client_init(&g_hs, &cfg) == 0);
	n = ferry__hs_client_build(&g_hs, g_connect, sizeof(g_connect));
	CHECK(n > 0);
	g_connect_len = (size_t)n;
	/* A new source address each time: the handshake's reply buckets
	 * hold 10 per second per address. */
	src++;
	g_cli.ip = htonl(0x0a000000u | (src & 0xffffffu));
	g_cli.port = (uint16_t)(1024 + (src >> 24));
	g_accepted = false;
	g_srv_any = false;
	feed(g_connect, g_connect_len, true);
	ferry_endpoint_poll(g_ep, 0);
	if (!g_accepted)
		return false;
	g_unit = ferry__frag_unit(
		g_acc.params.max_frame < cfg.params.max_frame
			? g_acc.params.max_frame
			: cfg.params.max_frame,
		g_acc.mode);
	g_pn_next = 1;
	g_pn_last = 0;
	return true;
}

/* --- building datagrams ------------------------------------------------------ */

static uint8_t g_bytes[FZ_DGRAM_MAX];

/* Bytes of message @req_id from @off, as every copy of it has them. */
static const uint8_t *msg_bytes(uint8_t seed, uint32_t req_id, uint32_t off,
				uint32_t n)
{
	for (uint32_t i = 0; i < n && i < sizeof(g_bytes); i++)
		g_bytes[i] = (uint8_t)(seed + 7 * (off + i) + req_id);
	return g_bytes;
}

/* One frame described by the input at the end of @buf (@len used of
 * @cap); false if it did not fit or the codec refused it. */
static void put_frame(struct in *in, uint8_t *buf, size_t *len, size_t cap)
{
	static uint8_t tmp[FZ_DGRAM_MAX];
	struct ferry_w2_frame f;
	size_t got;
	uint8_t kind = in_u8(in) % SF_F_COUNT;
	int n;

	if (cap < *len + 32)
		return;

	memset(&f, 0, sizeof(f));
	switch (kind) {
	case SF_F_REQ: {
		uint16_t l;
		uint8_t seed;

		f.type = FERRY_W2_REQUEST;
		f.flags = in_u8(in);
		f.u.data.req_id = in_u16(in);
		f.u.data.method = in_u8(in);
		l = in_u16(in);
		seed = in_u8(in);
		if (l > cap - *len - 16)
			l = (uint16_t)(cap - *len - 16);
		f.u.data.bytes = msg_bytes(seed, f.u.data.req_id, 0, l);
		f.u.data.bytes_len = l;
		break;
	}
	case SF_F_FRAG: {
		uint8_t fl = in_u8(in), seed;
		uint32_t units, shortb, idx, l;

		f.type = FERRY_W2_REQUEST_FRAG;
		f.flags = fl & 0x7f;
		f.u.data.req_id = in_u16(in);
		f.u.data.method = in_u8(in);
		if (fl & SF_FRAG_RAW) {
			f.u.data.msg_len = in_u32(in);
			f.u.data.offset = in_u32(in);
			l = in_u16(in);
		} else {
			units = in_u8(in);
			shortb = in_u8(in);
			idx = in_u8(in);
			if (!units)
				units = 1;
			f.u.data.msg_len = units * g_unit -
					   (shortb < g_unit ? shortb : 0);
			f.u.data.offset = idx % units * g_unit;
			l = f.u.data.msg_len - f.u.data.offset;
			if (l > g_unit)
				l = g_unit;
		}
		seed = in_u8(in);
		if (l > cap - *len - 24)
			l = (uint32_t)(cap - *len - 24);
		f.u.data.bytes = msg_bytes(seed, f.u.data.req_id,
					   f.u.data.offset, l);
		f.u.data.bytes_len = l;
		break;
	}
	case SF_F_PUSH:
		f.type = FERRY_W2_PUSH;
		f.u.push.push_id = in_u16(in);
		f.u.push.recs = in_bytes(in, in_u8(in), &got);
		f.u.push.recs_len = (uint16_t)got;
		break;
	case SF_F_ACK: {
		uint8_t fl = in_u8(in), nr;
		struct ferry_w2_ack *a = &f.u.ack;

		f.type = FERRY_W2_ACK;
		f.flags = fl & FERRY_W2_F_ECN;
		a->largest = fl & 2 ? in_u32(in) : (uint32_t)g_srv_pn;
		a->first_range = in_u16(in);
		a->ack_delay = in_u16(in);
		if (fl & FERRY_W2_F_ECN) {
			a->ect0 = in_u8(in);
			a->ce = in_u8(in);
		}
		nr = in_u8(in) % 5;
		for (unsigned i = 0; i < nr; i++) {
			a->ranges[i].gap = in_u8(in);
			a->ranges[i].count = in_u8(in);
		}
		a->nranges = nr;
		break;
	}
	case SF_F_CREDIT:
		f.type = FERRY_W2_CREDIT;
		f.u.credit_limit = in_u32(in);
		break;
	case SF_F_PING:
		f.type = FERRY_W2_PING;
		break;
	case SF_F_CLOSE:
		f.type = FERRY_W2_CLOSE;
		f.flags = in_u8(in);
		f.u.err.code = in_u32(in);
		break;
	case SF_F_PAD:
		f.type = FERRY_W2_PADDING;
		f.u.blob.len = in_u8(in);
		break;
	default: {
		/* Any type, any flags, any body: written as it is. */
		uint8_t t = in_u8(in), fl = in_u8(in);
		const uint8_t *b = in_bytes(in, in_u8(in), &got);

		if (*len + FERRY_W2_FRAME_HDR_LEN + got > cap)
			return;
		memcpy(tmp, b, got);
		*len += ferry__w2_put_frame_hdr(buf + *len, t, fl,
						(uint16_t)got);
		memcpy(buf + *len, tmp, got);
		*len += got;
		return;
	}
	}
	n = ferry__w2_put_frame(buf + *len, cap - *len, &f);
	if (n > 0)
		*len += (size_t)n;
}

/* Seal @buf (@len bytes before the trailer) under @pn with @key and send
 * it, after @bad.  Kept for SF_OP_REPLAY. */
static void seal_send(uint8_t *buf, size_t len, uint64_t pn, int bad,
		      struct in *in)
{
	size_t tl = ferry__seal_trailer_len(g_seal);
	const uint8_t *key = bad == SF_BAD_KEY ? g_acc.keys.s2c
					       : g_acc.keys.c2s;
	int n;

	if (pn > FERRY_SEAL_PN_MAX)
		pn = FERRY_SEAL_PN_MAX;
	track_dgram(buf, len + tl);
	if (bad == SF_BAD_TAG) {
		memset(buf + len, 0, tl);
		n = (int)(len + tl);
	} else {
		n = ferry__seal(g_seal, key, pn, buf, FERRY_W2_SHORT_HDR_LEN,
				len);
		CHECK(n > 0);
	}
	if (bad == SF_BAD_FLIP) {
		uint16_t at = in_u16(in);
		uint8_t x = in_u8(in);

		buf[at % n] ^= x ? x : 1;
	} else if (bad == SF_BAD_TRUNC) {
		n = (int)(in_u16(in) % (unsigned)n);
	}
	g_pn_last = pn;
	if (pn >= g_pn_next && pn < FERRY_SEAL_PN_MAX)
		g_pn_next = pn + 1;
	memcpy(g_hist[g_nhist % FZ_HIST], buf, (size_t)n);
	g_hist_len[g_nhist % FZ_HIST] = (size_t)n;
	g_nhist++;
	feed(buf, (size_t)n, false);
}

/* The header of a datagram under @pn at @buf; its length. */
static size_t put_hdr(uint8_t *buf, uint64_t pn, bool bad_dcid)
{
	struct ferry_w2_dgram d = { .mode = g_acc.mode,
				    .dcid = g_acc.server_cid ^ bad_dcid,
				    .pn = (uint32_t)pn };
	int n = ferry__w2_put_hdr(buf, FZ_DGRAM_MAX, &d);

	CHECK(n == FERRY_W2_SHORT_HDR_LEN);
	return (size_t)n;
}

static void op_dgram(struct in *in)
{
	static uint8_t buf[FZ_DGRAM_MAX];
	uint8_t ctl = in_u8(in);
	unsigned nf = (ctl & 3) + 1, pnk = ctl >> 2 & 7, bad = ctl >> 5;
	size_t tl = ferry__seal_trailer_len(g_seal);
	size_t cap = g_acc.params.max_frame + 64u;
	uint64_t pn = g_pn_next;
	size_t len;

	if (cap > sizeof(buf))
		cap = sizeof(buf);
	switch (pnk) {
	case SF_PN_SAME:
		pn = g_pn_last;
		break;
	case SF_PN_AHEAD:
		pn = g_pn_next + in_u16(in);
		break;
	case SF_PN_OLD: {
		uint16_t back = in_u16(in);

		pn = g_pn_next > back + 1u ? g_pn_next - 1 - back : 0;
		break;
	}
	case SF_PN_EXACT:
		pn = ferry__w2_pn_expand(g_pn_next, in_u32(in));
		break;
	default:
		break;
	}
	len = put_hdr(buf, pn, bad == SF_BAD_DCID);
	for (unsigned i = 0; i < nf; i++)
		put_frame(in, buf, &len, cap - tl);
	if (len == FERRY_W2_SHORT_HDR_LEN)
		return; /* no frame fitted */
	seal_send(buf, len, pn, (int)bad, in);
}

static void op_rawdg(struct in *in)
{
	static uint8_t buf[FZ_DGRAM_MAX];
	size_t tl = ferry__seal_trailer_len(g_seal);
	size_t len = put_hdr(buf, g_pn_next, false), got;
	const uint8_t *b = in_bytes(in, in_u16(in), &got);

	if (got > sizeof(buf) - len - tl)
		got = sizeof(buf) - len - tl;
	memcpy(buf + len, b, got);
	seal_send(buf, len + got, g_pn_next, SF_BAD_NONE, in);
}

/* --- one input ------------------------------------------------------------- */

static unsigned sessions_in_use(void)
{
	unsigned k = 0;

	for (uint32_t i = 0; i < g_ep->cfg.max_sessions; i++)
		if (g_ep->sessions[i].state != SESS_FREE)
			k++;
	return k;
}

static bool all_back(void)
{
	unsigned views = 0, calls = 0;

	if (sessions_in_use() || g_out || g_ndone)
		return false;
	for (unsigned i = 0; i < g_ep->ncls; i++)
		if (atomic_load(&g_ep->cls[i].nfree) != g_ep->cls[i].count)
			return false;
	for (struct ferry_msgbuf *m = g_ep->view_free; m; m = m->next)
		views++;
	for (struct ferry_call *c = g_ep->call_free; c; c = c->next)
		calls++;
	return views == g_ep->cfg.rx_bufs && calls == g_ep->ncalls;
}

/* End the input's session and check that everything came back. */
static void teardown(void)
{
	static uint8_t buf[64];
	struct ferry_w2_frame f = { .type = FERRY_W2_CLOSE };
	size_t len;
	int n;

	if (g_accepted && sessions_in_use()) {
		len = put_hdr(buf, g_pn_next, false);
		n = ferry__w2_put_frame(buf + len, sizeof(buf) - len, &f);
		CHECK(n > 0);
		len += (size_t)n;
		n = ferry__seal(g_seal, g_acc.keys.c2s, g_pn_next, buf,
				FERRY_W2_SHORT_HDR_LEN, len);
		CHECK(n > 0);
		feed(buf, (size_t)n, true);
	}
	if (g_srv_s)
		ferry_session_close(g_srv_s);
	for (unsigned i = 0; i < 200 && !all_back(); i++) {
		ferry_endpoint_poll(g_ep, 0);
		if (i >= 4)
			g_skew_ns += 1000000000ull; /* timers, timeouts */
	}
	CHECK(all_back());
	CHECK(!g_srv_s);
	CHECK(g_ep->st.sessions_opened <= g_ep->st.sessions_closed);
	ferry__hs_client_wipe(&g_hs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0 };
	size_t got;
	const uint8_t *b;

	if (!g_ep)
		setup();
	/* Every pool buffer is free here: poison them all. */
	memset(g_ep->pool_mem, FZ_POISON, g_ep->pool_bytes);
	for (unsigned i = 0; i < FZ_TRACK; i++)
		g_tr[i].used = false;
	g_tr_full = false;
	g_nhist = 0;
	if (!handshake(&in)) {
		teardown();
		return 0;
	}
	while (in.off < in.n) {
		uint8_t op = in_u8(&in) % SF_OP_COUNT;

		switch (op) {
		case SF_OP_DGRAM:
			op_dgram(&in);
			break;
		case SF_OP_RAWDG:
			op_rawdg(&in);
			break;
		case SF_OP_POLL:
			for (unsigned i = in_u8(&in) % 4 + 1; i; i--)
				ferry_endpoint_poll(g_ep, 0);
			break;
		case SF_OP_CLOCK: {
			uint8_t v = in_u8(&in);

			g_skew_ns += v < 128 ? v * 100000ull
					     : (v - 128) * 100000000ull;
			break;
		}
		case SF_OP_REPLAY:
			if (g_nhist) {
				unsigned i = in_u8(&in) %
					     (g_nhist < FZ_HIST ? g_nhist
								: FZ_HIST);

				feed(g_hist[i], g_hist_len[i], false);
			}
			break;
		case SF_OP_CONNECT:
			feed(g_connect, g_connect_len, false);
			break;
		default:
			b = in_bytes(&in, in_u8(&in), &got);
			feed(b, got, false);
			break;
		}
		CHECK(sessions_in_use() <= 1);
	}
	teardown();
	return 0;
}
