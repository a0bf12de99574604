/* SPDX-License-Identifier: MIT */
/*
 * raw_peer.h - the raw peer of tests/harness.h: a client (or a bare
 * socket) that speaks wire v2 by hand through the dataplane's own ops
 * table, one level below the transport, so that it reaches an endpoint on
 * any backend (a UDP socket on uring, a lane of the loopback port on
 * DPDK).  The endpoint under test is polled while the peer waits, so one
 * thread drives both.
 *
 * It completes a real handshake (transport/handshake.c: the CONNECT in its
 * v1 envelope, the RETRY cookie, ACCEPT and its keys), then sends the
 * frames a test chooses, each in a datagram of its own sealed with the
 * session's key, and opens what the server sends.  It never acknowledges,
 * so the server sends again what it does not hear acknowledged; tests skip
 * those copies.  Tests describe frames as the v1 header they always did
 * (struct ferry_hdr: type, req_id, method, msg_len, frag_off, flags):
 * raw_send() makes the v2 frame of it (REQUEST or REQUEST_FRAG by offset
 * and length, PUSH with the next push_id, CREDIT, PING, CLOSE), and
 * raw_recv() hands each v2 frame back the same way, its bytes copied to
 * the caller's buffer.
 *
 * raw_open() aims it at an endpoint, as a client; raw_bind() opens it
 * aimed nowhere (raw_send_bytes() and raw_take() then move bytes as they
 * are, for attacks and for the v1 refusal).
 */
#ifndef FERRY_TESTS_RAW_PEER_H
#define FERRY_TESTS_RAW_PEER_H

#include <sodium.h>

#include "transport/handshake.h"
#include "transport/rd.h"
#include "transport/seal.h"
#include "transport/wire2.h"

/* Largest datagram the raw peer sends or receives. */
#define RAW_FRAME_MAX 9000u
/* The max_frame it announces. */
#define RAW_PATH_FRAME 8192u
/* The call slots the raw peer announces in its CONNECT: a test may raise
 * it before raw_connect() to have more calls outstanding. */
static uint16_t raw_slots __attribute__((unused)) = 16;

struct raw {
	const struct ferry_dp_ops *ops;
	struct ferry_dp *dp;
	struct ferry_addr to; /* where raw_send goes */
	uint32_t my_sess, srv_sess, seq, next_req;
	/* wire v2: the session the handshake made */
	uint64_t cid, srv_cid;
	uint8_t mode;
	uint8_t key_tx[FERRY_SEAL_KEY_LEN], key_rx[FERRY_SEAL_KEY_LEN];
	uint64_t pn;       /* the next datagram's */
	uint32_t push_id;  /* the last PUSH's */
	uint32_t frag_unit;
	const uint8_t *hk; /* a token's holder key for raw_connect, or NULL */
	struct ferry__replay seen;
	uint64_t seen_bits[FERRY_REPLAY_WORDS(FERRY_REPLAY_LOG2_DEFAULT)];
	/* A handshake in progress (raw_connect_send). */
	struct ferry_hs_client hs;
	/* The datagram being read, frame by frame. */
	uint8_t rbuf[RAW_FRAME_MAX];
	struct ferry_w2_dgram rd;
	struct ferry_w2_iter it;
	bool reading;
};

/* A datagram longer than the dataplane copies (FERRY_DP_HDR_MAX) lends it
 * the rest from a heap copy; this frees it once the dataplane is done. */
static inline void raw_tx_done(void *ctx, void *cookie)
{
	(void)ctx;
	free(cookie);
}

/* Open the raw peer's own dataplane instance, aimed nowhere yet. */
static inline void raw_bind(struct raw *r)
{
	struct ferry_dp_conf dc = { 0 };
	int ret;

	memset(r, 0, sizeof(*r));
	r->ops = ferry__dp_find(dp_name);
	cr_assert_not_null(r->ops, "no dataplane %s", dp_name);
	dc.bind_addr = "127.0.0.1";
	dc.max_frame = RAW_FRAME_MAX;
	dc.rx_bufs = 256;
	dc.tx_slots = 64;
	dc.dpdk_eal = dp_eal;
	dc.dpdk_port = -1;
	dc.no_gro = true;
	dc.tx_done = raw_tx_done;
	ret = r->ops->open(&dc, &r->dp);
	cr_assert_eq(ret, 0, "raw peer open: %s", strerror(-ret));
	r->next_req = 1;
	cr_assert_geq(sodium_init(), 0);
}

/* A raw client aimed at @srv; @my_sess, if not 0, is the low 32 bits of
 * its connection id (its v1 envelope id). */
static inline void raw_open(struct raw *r, struct ferry_endpoint *srv,
			    uint32_t my_sess)
{
	raw_bind(r);
	cr_assert_eq(ferry__addr_parse_ip("127.0.0.1", &r->to.ip), 0);
	r->to.port = ferry_endpoint_port(srv);
	r->my_sess = my_sess;
}

static inline void raw_close(struct raw *r)
{
	r->ops->close(r->dp);
	r->dp = NULL;
	sodium_memzero(r->key_tx, sizeof(r->key_tx));
	sodium_memzero(r->key_rx, sizeof(r->key_rx));
}

/* The raw peer's own UDP port. */
static inline uint16_t raw_port(struct raw *r)
{
	struct ferry_addr a;

	cr_assert_eq(r->ops->local_addr(r->dp, &a), 0);
	return a.port;
}

/* @len bytes of @buf as one datagram, as they are, to r->to. */
static inline void raw_send_bytes(struct raw *r, const void *buf, size_t len)
{
	struct ferry_dp_tx tx = { .dst = r->to, .hdr = buf };

	cr_assert_leq(len, RAW_FRAME_MAX);
	tx.hdr_len = (uint32_t)(len < FERRY_DP_HDR_MAX ? len
						       : FERRY_DP_HDR_MAX);
	if (len > tx.hdr_len) {
		void *rest = malloc(len - tx.hdr_len);

		cr_assert_not_null(rest);
		memcpy(rest, (const uint8_t *)buf + tx.hdr_len,
		       len - tx.hdr_len);
		tx.body = rest;
		tx.body_len = (uint32_t)(len - tx.hdr_len);
		tx.cookie = rest;
	}
	cr_assert_eq(r->ops->tx_burst(r->dp, &tx, 1), 1);
	cr_assert_eq(r->ops->flush(r->dp), 0);
}

/* One datagram, if one has arrived: copied into @buf (at most @cap bytes;
 * a longer one is dropped, as a kernel socket would truncate it) and its
 * source into *@src (if not NULL).  Returns its length, 0 if none. */
static inline size_t raw_take(struct raw *r, uint8_t *buf, size_t cap,
			      struct ferry_addr *src)
{
	struct ferry_dp_pkt pkt;
	size_t n = 0;

	r->ops->flush(r->dp);
	if (r->ops->rx_burst(r->dp, &pkt, 1) == 0)
		return 0;
	if (pkt.len <= cap) {
		memcpy(buf, pkt.data, pkt.len);
		n = pkt.len;
		if (src)
			*src = pkt.src;
	}
	r->ops->rx_release(r->dp, pkt.id);
	return n;
}

/* --- sending frames -------------------------------------------------------- */

/*
 * The frames @f[0..@n) in one datagram under pn @pn, sealed with @key (a
 * test may pass another key, another DCID or an old pn to forge one), sent
 * now.  Returns its length.
 */
static inline size_t raw_send_frames_as(struct raw *r, uint64_t dcid,
					uint64_t pn, const uint8_t *key,
					const struct ferry_w2_frame *f,
					unsigned n)
{
	struct ferry_w2_dgram d = { .mode = r->mode, .dcid = dcid,
				    .pn = (uint32_t)pn };
	struct ferry_w2_builder b;
	uint8_t buf[RAW_FRAME_MAX];
	size_t tl = ferry__seal_trailer_len((enum ferry_seal_mode)r->mode);
	int len;

	cr_assert_eq(ferry__w2_build_begin(&b, buf, sizeof(buf), &d), 0);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(ferry__w2_build_frame(&b, &f[i]), 0,
			     "frame %u does not fit", i);
	len = ferry__w2_build_end(&b);
	cr_assert_gt(len, 0);
	cr_assert_eq(ferry__seal((enum ferry_seal_mode)r->mode, key, pn, buf,
				 FERRY_W2_SHORT_HDR_LEN, (size_t)len - tl),
		     len);
	raw_send_bytes(r, buf, (size_t)len);
	return (size_t)len;
}

/* The frames in one datagram of the session, under the next pn. */
static inline void raw_send_frames(struct raw *r,
				   const struct ferry_w2_frame *f, unsigned n)
{
	raw_send_frames_as(r, r->srv_cid, r->pn++, r->key_tx, f, n);
}

/* The v2 frame a test's v1 header @h and @body/@n describe. */
static inline void raw_frame_of(struct raw *r, const struct ferry_hdr *h,
				const void *body, size_t n,
				struct ferry_w2_frame *f)
{
	memset(f, 0, sizeof(*f));
	switch (h->type) {
	case FERRY_FT_REQUEST:
		if (h->frag_off == 0 && n == h->msg_len) {
			f->type = FERRY_W2_REQUEST;
		} else {
			f->type = FERRY_W2_REQUEST_FRAG;
			f->u.data.msg_len = h->msg_len;
			f->u.data.offset = h->frag_off;
		}
		if (h->flags & FERRY_FF_CAPS)
			f->flags |= FERRY_W2_F_CAPS;
		if (h->flags & FERRY_FF_TRACE)
			f->flags |= FERRY_W2_F_TRACE;
		f->u.data.req_id = h->req_id;
		f->u.data.method = h->method;
		f->u.data.bytes = body;
		f->u.data.bytes_len = (uint32_t)n;
		break;
	case FERRY_FT_PUSH:
		f->type = FERRY_W2_PUSH;
		f->u.push.push_id = ++r->push_id;
		f->u.push.recs = body;
		f->u.push.recs_len = (uint16_t)n;
		break;
	case FERRY_FT_CREDIT:
		f->type = FERRY_W2_CREDIT;
		f->u.credit_limit = h->credit;
		break;
	case FERRY_FT_PING:
		f->type = FERRY_W2_PING;
		break;
	case FERRY_FT_CLOSE:
		f->type = FERRY_W2_CLOSE;
		if (h->flags & FERRY_FF_REPLY)
			f->flags = FERRY_W2_F_REPLY;
		break;
	default:
		cr_assert_fail("raw peer: no v2 frame for v1 type %u", h->type);
	}
}

/* The frame header @h describes and @n bytes of @body, in a datagram of
 * its own on the raw session. */
static inline void raw_send(struct raw *r, const struct ferry_hdr *h,
			    const void *body, size_t n)
{
	struct ferry_w2_frame f;

	raw_frame_of(r, h, body, n, &f);
	raw_send_frames(r, &f, 1);
}

/* --- receiving frames ------------------------------------------------------ */

/* Open a short-header datagram of the raw session in r->rbuf (@n bytes):
 * true if it is ours and authentic. */
static inline bool raw_open_dgram(struct raw *r, size_t n)
{
	uint64_t pn;

	if (ferry__w2_parse_hdr(r->rbuf, n, &r->rd) != FERRY_W2_OK ||
	    r->rd.is_long || r->rd.dcid != r->cid)
		return false;
	pn = ferry__w2_pn_expand(r->seen.next, r->rd.pn);
	if (ferry__replay_check(&r->seen, pn) != 0)
		return false;
	if (ferry__seal_open((enum ferry_seal_mode)r->mode, r->key_rx, pn,
			     r->rbuf, r->rd.hdr_len, n) < 0)
		return false;
	ferry__replay_commit(&r->seen, pn);
	ferry__w2_iter_init(&r->it, &r->rd);
	return true;
}

/* The v1 view of v2 frame @w, its bytes copied to @buf (@cap bytes).
 * False for frames no test asks about (ACK, PADDING). */
static inline bool raw_v1_of(const struct ferry_w2_frame *w,
			     struct ferry_frame *f, uint8_t *buf, size_t cap)
{
	const struct ferry_w2_data *d = &w->u.data;

	memset(f, 0, sizeof(*f));
	f->payload = buf;
	switch (w->type) {
	case FERRY_W2_RESPONSE:
	case FERRY_W2_RESPONSE_FRAG:
		f->h.type = FERRY_FT_RESPONSE;
		f->h.req_id = d->req_id;
		f->h.msg_len = w->type == FERRY_W2_RESPONSE ? d->bytes_len
							    : d->msg_len;
		f->h.frag_off = w->type == FERRY_W2_RESPONSE ? 0 : d->offset;
		if (w->flags & FERRY_W2_F_TRACE)
			f->h.flags |= FERRY_FF_TRACE;
		if (w->type == FERRY_W2_RESPONSE &&
		    (w->flags & FERRY_W2_F_ERR))
			f->h.flags |= FERRY_FF_ERR;
		cr_assert_leq(d->bytes_len, cap);
		memcpy(buf, d->bytes, d->bytes_len);
		f->pay_len = d->bytes_len;
		return true;
	case FERRY_W2_CREDIT:
		f->h.type = FERRY_FT_CREDIT;
		f->h.credit = w->u.credit_limit;
		return true;
	case FERRY_W2_PING:
		f->h.type = FERRY_FT_PING;
		return true;
	case FERRY_W2_CLOSE:
		f->h.type = FERRY_FT_CLOSE;
		f->h.msg_len = w->u.err.code;
		if (w->flags & FERRY_W2_F_REPLY)
			f->h.flags |= FERRY_FF_REPLY;
		return true;
	default:
		return false;
	}
}

/* The next frame the server sent, if one has arrived: true with @f (its
 * bytes in @buf).  A v1 ERROR (the refusal of a v1 CONNECT) comes as a
 * v1 frame; handshake datagrams and forgeries are skipped. */
static inline bool raw_next(struct raw *r, struct ferry_frame *f,
			    uint8_t *buf, size_t cap)
{
	for (;;) {
		struct ferry_w2_frame w;
		size_t n;

		while (r->reading && ferry__w2_iter_next(&r->it, &w) == 1)
			if (raw_v1_of(&w, f, buf, cap))
				return true;
		r->reading = false;
		n = raw_take(r, r->rbuf, sizeof(r->rbuf), NULL);
		if (n == 0)
			return false;
		if (r->rbuf[0] == FERRY_W2_V1_FIRST) {
			if (ferry__wire_parse(r->rbuf, n, 1u << 30, f) !=
			    FERRY_PARSE_OK)
				continue;
			cr_assert_leq(f->pay_len, cap);
			memcpy(buf, f->payload, f->pay_len);
			f->payload = buf;
			return true;
		}
		r->reading = ferry__w2_is_short(r->rbuf[0]) &&
			     raw_open_dgram(r, n);
	}
}

/* Poll @srv until a frame of @type arrives (a RESPONSE: to @req_id, unless
 * @req_id is 0); false after 3 s.  Other frames (copies the server sends
 * again: this peer never acknowledges) are skipped.  @f's bytes are in
 * @buf. */
static inline bool raw_recv(struct raw *r, struct ferry_endpoint *srv,
			    uint8_t type, uint32_t req_id,
			    struct ferry_frame *f, uint8_t *buf, size_t cap)
{
	uint64_t end = now_ms() + 3000;

	while (now_ms() < end) {
		ferry_endpoint_poll(srv, 0);
		while (raw_next(r, f, buf, cap)) {
			if (f->h.type != type)
				continue;
			if (type == FERRY_FT_RESPONSE && req_id &&
			    f->h.req_id != req_id)
				continue;
			return true;
		}
	}
	return false;
}

/* How many frames of @type arrive within @ms, polling @srv. */
static inline unsigned raw_count(struct raw *r, struct ferry_endpoint *srv,
				 uint8_t type, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	uint8_t buf[RAW_FRAME_MAX];
	struct ferry_frame f;
	unsigned k = 0;

	while (now_ms() < end) {
		ferry_endpoint_poll(srv, 0);
		while (raw_next(r, &f, buf, sizeof(buf)))
			if (f.h.type == type)
				k++;
	}
	return k;
}

/* --- the handshake --------------------------------------------------------- */

/* @r becomes the raw session that @hs's ACCEPT (in @res) made: CIDs,
 * mode, keys, fragment size, a fresh replay window; @res and @hs are
 * wiped. */
static inline void raw_take_accept(struct raw *r, struct ferry_hs_client *hs,
				   struct ferry_hs_client_result *res)
{
	struct ferry_hs_accept *a = &res->accept;
	uint32_t path = a->params.max_frame < RAW_PATH_FRAME
				? a->params.max_frame
				: RAW_PATH_FRAME;

	r->cid = hs->cid;
	r->srv_cid = a->server_cid;
	r->srv_sess = (uint32_t)a->server_cid;
	r->mode = a->mode;
	memcpy(r->key_tx, a->keys.c2s, sizeof(r->key_tx));
	memcpy(r->key_rx, a->keys.s2c, sizeof(r->key_rx));
	r->frag_unit = path - FERRY_W2_SHORT_HDR_LEN - (r->mode ? 16 : 4) -
		       18 - 24;
	ferry__replay_init(&r->seen, FERRY_REPLAY_LOG2_DEFAULT, r->seen_bits);
	sodium_memzero(res, sizeof(*res));
	ferry__hs_client_wipe(hs);
}

/*
 * A whole handshake: raw_open(), CONNECT (with FEATURES @features and
 * @tok as its TOKEN, with r->hk as the holder key if set), RETRY, CONNECT
 * with the cookie, ACCEPT.  Returns the FEATURES the ACCEPT announced, or
 * asserts; FERRY_HS_FAILED's error is in *@err when @err is not NULL
 * (then 0 is returned).
 */
static inline uint32_t raw_connect_res(struct raw *r,
				       struct ferry_endpoint *srv,
				       uint32_t my_sess, uint32_t features,
				       const void *tok, size_t tok_len,
				       int *err)
{
	const uint8_t *hk = r->hk;
	struct ferry_hs_client_cfg cfg = { .mode = FERRY_W2_MODE_MAC };
	struct ferry_hs_client hs;
	uint8_t buf[FERRY_HS_CONNECT_MAX];
	uint64_t end;
	int n;

	raw_open(r, srv, my_sess);
	r->hk = hk;
	cfg.params = (struct ferry_w2_params){ 1u << 20, 1u << 20,
					       RAW_PATH_FRAME, raw_slots, 1000,
					       FERRY_REPLAY_LOG2_DEFAULT };
	cfg.features = features;
	if (my_sess) {
		uint32_t hi;

		randombytes_buf(&hi, sizeof(hi));
		cfg.cid = (uint64_t)(hi | 1) << 32 | my_sess;
	}
	cfg.token = tok;
	cfg.token_len = tok_len;
	cfg.hk = tok ? r->hk : NULL;
	cr_assert_eq(ferry__hs_client_init(&hs, &cfg), 0);
	r->cid = hs.cid;
	end = now_ms() + 3000;
	n = ferry__hs_client_build(&hs, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	raw_send_bytes(r, buf, (size_t)n);
	while (now_ms() < end) {
		struct ferry_hs_client_result res;
		enum ferry_hs_verdict v;
		size_t got;

		ferry_endpoint_poll(srv, 0);
		got = raw_take(r, buf, sizeof(buf), NULL);
		if (!got)
			continue;
		memset(&res, 0, sizeof(res));
		v = ferry__hs_client_input(&hs, buf, got, &res);
		if (v == FERRY_HS_RETRY) {
			n = ferry__hs_client_build(&hs, buf, sizeof(buf));
			cr_assert_gt(n, 0);
			raw_send_bytes(r, buf, (size_t)n);
		} else if (v == FERRY_HS_FAILED) {
			ferry__hs_client_wipe(&hs);
			cr_assert_not_null(err, "connect refused: %s",
					   ferry_strerror(res.err));
			*err = res.err;
			return 0;
		} else if (v == FERRY_HS_ACCEPTED) {
			uint32_t features = res.accept.features;

			raw_take_accept(r, &hs, &res);
			if (err)
				*err = 0;
			return features;
		}
	}
	ferry__hs_client_wipe(&hs);
	cr_assert_fail("no ACCEPT");
	return 0;
}

/*
 * Only the first CONNECT (features @features, token @tok, r->hk as its
 * holder key if set), sent now; the handshake stays in r->hs, for a test
 * that looks at the server's answer itself (a RETRY: feed it to
 * ferry__hs_client_input(&r->hs, ...) and send ferry__hs_client_build()
 * again).
 */
static inline void raw_connect_send(struct raw *r, uint32_t features,
				    const void *tok, size_t tok_len)
{
	struct ferry_hs_client_cfg cfg = { .mode = FERRY_W2_MODE_MAC };
	uint8_t buf[FERRY_HS_CONNECT_MAX];
	int n;

	cfg.params = (struct ferry_w2_params){ 1u << 20, 1u << 20,
					       RAW_PATH_FRAME, 16, 1000,
					       FERRY_REPLAY_LOG2_DEFAULT };
	cfg.features = features;
	if (r->my_sess) {
		uint32_t hi;

		randombytes_buf(&hi, sizeof(hi));
		cfg.cid = (uint64_t)(hi | 1) << 32 | r->my_sess;
	}
	cfg.token = tok;
	cfg.token_len = tok_len;
	cfg.hk = tok ? r->hk : NULL;
	cr_assert_eq(ferry__hs_client_init(&r->hs, &cfg), 0);
	r->cid = r->hs.cid;
	n = ferry__hs_client_build(&r->hs, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	raw_send_bytes(r, buf, (size_t)n);
}

static inline uint32_t raw_connect(struct raw *r, struct ferry_endpoint *srv,
				   uint32_t my_sess, uint32_t features,
				   const void *tok, size_t tok_len)
{
	return raw_connect_res(r, srv, my_sess, features, tok, tok_len, NULL);
}

/* --- calls ---------------------------------------------------------------- */

/* A data frame's header on the raw session: @type, ids for the record. */
static inline void raw_data_hdr(struct raw *r, struct ferry_hdr *h,
				uint8_t type)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->dst_sess = r->srv_sess;
	h->src_sess = r->my_sess;
	h->seq = r->seq++;
	h->credit = 1u << 20;
}

/* A one-frame REQUEST of @method whose whole message is @body/@n, with
 * @flags; @req_id 0 takes the next one.  Returns the req_id. */
static inline uint32_t raw_request(struct raw *r, uint32_t req_id,
				   uint16_t method, uint16_t flags,
				   const void *body, size_t n)
{
	struct ferry_hdr h;

	raw_data_hdr(r, &h, FERRY_FT_REQUEST);
	h.flags = flags;
	h.method = method;
	h.req_id = req_id ? req_id : r->next_req++;
	h.msg_len = (uint32_t)n;
	raw_send(r, &h, body, n);
	return h.req_id;
}

/* The error code of an error RESPONSE (0 for a normal one). */
static inline uint32_t resp_code(const struct ferry_frame *f)
{
	uint32_t code;
	const char *m;
	uint16_t mlen;

	if (!(f->h.flags & FERRY_FF_ERR))
		return 0;
	cr_assert_eq(ferry__wire_parse_error(f->payload, f->pay_len, &code, &m,
					    &mlen),
		     0);
	return code;
}

/* The response to @req_id: its error code (0 for a normal one), its flags
 * in *@flags (if not NULL), and a normal one's message in @out (room for
 * @cap bytes) and *@len. */
static inline uint32_t raw_response(struct raw *r, struct ferry_endpoint *srv,
				    uint32_t req_id, uint16_t *flags,
				    uint8_t *out, size_t cap, size_t *len)
{
	uint8_t buf[RAW_FRAME_MAX];
	struct ferry_frame f;

	cr_assert(raw_recv(r, srv, FERRY_FT_RESPONSE, req_id, &f, buf,
			   sizeof(buf)),
		  "no response to request %u", req_id);
	if (flags)
		*flags = f.h.flags;
	*len = 0;
	if (f.h.flags & FERRY_FF_ERR)
		return resp_code(&f);
	cr_assert_leq(f.pay_len, cap, "response to %u: %u bytes", req_id,
		      f.pay_len);
	memcpy(out, f.payload, f.pay_len);
	*len = f.pay_len;
	return 0;
}

#endif /* FERRY_TESTS_RAW_PEER_H */
