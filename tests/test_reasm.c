/* SPDX-License-Identifier: MIT */
/*
 * test_reasm.c - reassembly that no peer can confuse (docs/wire.md,
 * 5.6; issue 14): a raw peer sends crafted REQUEST_FRAG frames to a
 * server, or, as a raw server, crafted RESPONSE_FRAG frames to a client.
 * Fragments lie on the session's grid (r->frag_unit): fragment k starts at
 * k * unit and carries min(unit, msg_len - k * unit) bytes.  No attack may
 * hand up a byte of an earlier message (a poison pattern left in a pool
 * buffer), and every call ends:
 *  - a fragment whose place is filled (v1's "two fragments at one offset",
 *    the leak) is a duplicate: dropped, the message unaffected, completed
 *    by its real second half;
 *  - fragments off the grid, or on it with the wrong length (v1's short
 *    fragments), end the call with FERRY_EPROTO, no buffer taken; the
 *    session serves the next call;
 *  - fragments of one message that disagree (msg_len, method, flags) are
 *    dropped as stale (v1's rule, kept);
 *  - a datagram cut short in transit fails its tag (drop_auth, its pn not
 *    marked), so the sender's copy under the same pn is taken: crafted by
 *    the raw peer, and by the fault injector between a real pair;
 *  - one-byte first fragments take no buffer; full-sized ones take at most
 *    the session's reasm_quota until reasm_timeout_ms, while another
 *    session's large calls complete;
 *  - a message abandoned half-way: its call ends at the deadline;
 *  - a message only the pool, never the quota, could hold.
 *
 * Every case runs on each dataplane built in (uring, and DPDK on a
 * net_ring loopback port): HARNESS_BATTERY at the end of the file.
 */
#include <criterion/criterion.h>

#include "harness.h"

#define M_SINK 1  /* answers an empty response */
#define M_CHECK 2 /* records what it got, answers an empty response */
#define M_ECHO 3

/* What an earlier message left in the pool: a byte no legitimate message
 * of these tests carries. */
#define POISON 0xee

/* What the M_CHECK handler saw. */
static struct {
	unsigned runs;
	size_t poison; /* poison bytes in delivered requests */
} g_seen;

/* The M_CHECK handler's last request: what a message was completed with. */
static uint8_t g_req[64u << 10];
static size_t g_req_len;

static size_t count_poison(const uint8_t *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == POISON;
	return n;
}

/* The server under test: handlers allocate their responses from it. */
static struct ferry_endpoint *g_srv;

static void respond_empty(struct ferry_call *c)
{
	struct ferry_msgbuf *mb;

	cr_assert_eq(ferry_msgbuf_alloc(g_srv, 0, &mb), 0);
	cr_assert_eq(ferry_call_respond(c, mb), 0);
}

static void sink_handler(struct ferry_call *c, void *ctx)
{
	(void)ctx;
	respond_empty(c);
}

static void check_handler(struct ferry_call *c, void *ctx)
{
	size_t len;
	const uint8_t *p = ferry_call_req(c, &len);

	(void)ctx;
	g_seen.runs++;
	g_seen.poison += count_poison(p, len);
	cr_assert_leq(len, sizeof(g_req));
	memcpy(g_req, p, len);
	g_req_len = len;
	respond_empty(c);
}

/* A server with one 64 KiB buffer (so that every reassembly of up to
 * 64 KiB reuses the buffer the poison was left in) and a short deadline. */
static void srv_small(struct ferry_ep_config *cfg)
{
	cfg->pool[0] = (struct ferry_pool_class){ 512, 256 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 1 };
	cfg->reasm_timeout_ms = 300;
}

static struct ferry_endpoint *server(void (*tweak)(struct ferry_ep_config *))
{
	struct ferry_endpoint *srv = ep_new(tweak);

	memset(&g_seen, 0, sizeof(g_seen));
	g_srv = srv;
	cr_assert_eq(ferry_endpoint_register(srv, M_SINK, sink_handler, NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_CHECK, check_handler,
					     NULL),
		     0);
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	return srv;
}

/* Leave @len bytes of poison in @srv's reassembly buffer: an earlier
 * session's call, reassembled, handled and gone. */
static void poison_server(struct ferry_endpoint *srv, size_t len)
{
	struct ferry_endpoint *cli = ep_new(NULL);
	struct ferry_session *s = open_session(cli, srv);
	struct reply r = { 0 };
	struct ferry_msgbuf *mb;

	cr_assert_eq(ferry_msgbuf_alloc(cli, len, &mb), 0);
	memset(ferry_msgbuf_data(mb), POISON, len);
	cr_assert_eq(ferry_call(s, M_SINK, mb, on_reply, &r), 0);
	cr_assert(pump(cli, srv, &r.done, WAIT_MS), "poison call never ended");
	cr_assert_eq(r.res, 0);
	cr_assert_gt(stats(srv).payload_copied, 0, "the poison was not "
		     "reassembled");
	ferry_session_close(s);
	pump_for(cli, srv, 20);
	ferry_endpoint_destroy(cli);
}

/* --- the raw client ------------------------------------------------------ */

/* A raw client's handshake with @srv; returns the session's fragment
 * unit (the grid). */
static uint32_t raw_client(struct raw *r, struct ferry_endpoint *srv,
			   uint32_t my_sess)
{
	raw_connect(r, srv, my_sess, 0, NULL, 0);
	cr_assert_gt(r->frag_unit, 0);
	return r->frag_unit;
}

/* One REQUEST fragment: @off..@off+@len of a message of @msg_len bytes of
 * call @req_id, the bytes from @p, with v1 flags @flags, in a datagram of
 * its own under the next pn. */
static void frag_fl(struct raw *r, uint32_t req_id, uint16_t method,
		    uint16_t flags, uint32_t msg_len, uint32_t off,
		    const uint8_t *p, uint32_t len)
{
	struct ferry_hdr h;

	raw_data_hdr(r, &h, FERRY_FT_REQUEST);
	h.req_id = req_id;
	h.method = method;
	h.flags = flags;
	h.msg_len = msg_len;
	h.frag_off = off;
	raw_send(r, &h, p, len);
}

static void frag(struct raw *r, uint32_t req_id, uint16_t method,
		 uint32_t msg_len, uint32_t off, const uint8_t *p, uint32_t len)
{
	frag_fl(r, req_id, method, 0, msg_len, off, p, len);
}

/* The frames @f[0..@n) sealed in one datagram under pn @pn, sent with its
 * last @cut bytes cut off: what a middlebox that truncates delivers. */
static void send_cut(struct raw *r, uint64_t pn, const struct ferry_w2_frame *f,
		     unsigned n, size_t cut)
{
	struct ferry_w2_dgram d = { .mode = r->mode, .dcid = r->srv_cid,
				    .pn = (uint32_t)pn };
	struct ferry_w2_builder b;
	uint8_t buf[RAW_FRAME_MAX];
	size_t tl = ferry__seal_trailer_len((enum ferry_seal_mode)r->mode);
	int len;

	cr_assert_eq(ferry__w2_build_begin(&b, buf, sizeof(buf), &d), 0);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(ferry__w2_build_frame(&b, &f[i]), 0);
	len = ferry__w2_build_end(&b);
	cr_assert_gt(len, (int)cut);
	cr_assert_eq(ferry__seal((enum ferry_seal_mode)r->mode, r->key_tx, pn,
				 buf, FERRY_W2_SHORT_HDR_LEN, (size_t)len - tl),
		     len);
	raw_send_bytes(r, buf, (size_t)len - cut);
}

/* Let @r's dataplane take back its sent datagrams (its transmit slots
 * are few) and drop what arrived, while @ep runs. */
static void raw_pace(struct raw *r, struct ferry_endpoint *ep)
{
	uint8_t buf[RAW_FRAME_MAX];

	ferry_endpoint_poll(ep, 0);
	while (raw_take(r, buf, sizeof(buf), NULL) > 0)
		;
}

/* Bytes for fragments: a pattern, no poison in it. */
static uint8_t g_body[256u << 10];

static void body_init(void)
{
	for (size_t i = 0; i < sizeof(g_body); i++)
		g_body[i] = (uint8_t)(i * 7 + 1) == POISON ? 1
							   : (uint8_t)(i * 7 + 1);
}

/* ===================================================================== */
/* Server: requests                                                       */
/* ===================================================================== */

/*
 * The leak, on wire v2: a message of two fragments gets its first one
 * twice (each in a datagram of its own, a new pn each, so neither is a
 * replay).  In v1, counted twice, that completed the message with its
 * second half unwritten: the handler read the poison an earlier session
 * left in the buffer.  On the grid a filled place can only be a copy: it
 * is dropped as a duplicate and the message waits for its real second
 * half, then runs whole, with no poison.
 */
static void t_same_place_is_duplicate(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st0, st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	poison_server(srv, 60000);
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 2 * unit;
	st0 = stats(srv);
	frag(&r, 1, M_CHECK, msg_len, 0, g_body, unit);
	frag(&r, 1, M_CHECK, msg_len, 0, g_body + unit, unit);
	PUMP(NULL, srv, WAIT_MS,
	     stats(srv).drop_duplicate > st0.drop_duplicate);
	pump_for(srv, NULL, 20);
	st = stats(srv);
	cr_assert_eq(st.drop_duplicate - st0.drop_duplicate, 1);
	cr_assert_eq(g_seen.runs, 0, "a message of one fragment twice ran");
	cr_assert_eq(st.reasm_off_grid, 0);
	cr_assert_eq(st.payload_copied_discarded, 0);
	/* Its real second half completes it, with the first copy's bytes. */
	frag(&r, 1, M_CHECK, msg_len, unit, g_body + unit, unit);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(g_seen.runs, 1);
	cr_assert_eq(g_seen.poison, 0, "poison delivered");
	/* The session serves the next call, its fragments in any order. */
	frag(&r, 2, M_CHECK, msg_len, unit, g_body + unit, unit);
	frag(&r, 2, M_CHECK, msg_len, 0, g_body, unit);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(g_seen.runs, 2);
	cr_assert_eq(g_seen.poison, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/*
 * Fragments of one message must agree on msg_len, method and flags (5.6
 * rule 3): one that does not is dropped as stale (and, not taken, counts
 * as a duplicate), and the message completes from the fragments that
 * agree with its first.
 */
static void t_disagreeing_fragments_stale(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 2 * unit + 10;
	frag(&r, 1, M_CHECK, msg_len, 0, g_body, unit);
	/* The second fragment three ways wrong, with other bytes. */
	frag(&r, 1, M_CHECK, msg_len + unit, unit, g_body + 7, unit);
	frag(&r, 1, M_SINK, msg_len, unit, g_body + 7, unit);
	frag_fl(&r, 1, M_CHECK, FERRY_FF_TRACE, msg_len, unit, g_body + 7,
		unit);
	PUMP(NULL, srv, WAIT_MS, stats(srv).drop_stale >= 3);
	st = stats(srv);
	cr_assert_eq(st.drop_stale, 3);
	cr_assert_eq(st.reasm_off_grid, 0);
	cr_assert_eq(g_seen.runs, 0);
	/* The ones that agree complete it, with their own bytes. */
	frag(&r, 1, M_CHECK, msg_len, 2 * unit, g_body + 2 * unit, 10);
	frag(&r, 1, M_CHECK, msg_len, unit, g_body + unit, unit);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(g_seen.runs, 1);
	cr_assert_eq(g_req_len, msg_len);
	cr_assert_arr_eq(g_req, g_body, msg_len, "the message took a stale "
			 "fragment's bytes");
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/*
 * Fragments that overlap and add up past msg_len (0..unit, then 100 on):
 * in v1 the count never met msg_len, and the call, and every call after
 * it, waited for good.  The second is off the grid: the call ends with
 * FERRY_EPROTO, its partial message discarded, and the next one runs.
 */
static void t_overlap_past_msg_len(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = unit + 200;
	frag(&r, 1, M_CHECK, msg_len, 0, g_body, unit);
	frag(&r, 1, M_CHECK, msg_len, 100, g_body, 200);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     FERRY_EPROTO);
	raw_request(&r, 2, M_ECHO, 0, "next", 4);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(len, 4);
	cr_assert_arr_eq(out, "next", 4);
	st = stats(srv);
	cr_assert_eq(g_seen.runs, 0);
	cr_assert_eq(st.reasm_off_grid, 1);
	cr_assert_eq(st.payload_copied_discarded, unit);
	cr_assert_eq(st.reqs_dispatched, 2);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/*
 * A first fragment that does not fit the grid: at an offset that is no
 * multiple of the unit, or on the grid but shorter than its place (a
 * first fragment of unit - 1 bytes, a last one a byte short).  v1 took
 * the short ones for datagrams cut in transit; in v2 a cut datagram fails
 * its tag, so a frame of the wrong length was sent so.  Each call ends
 * with FERRY_EPROTO at its turn, no buffer taken for it, and the session
 * serves the next.
 */
static void t_off_grid_refused(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 2 * unit + 10;
	frag(&r, 1, M_CHECK, msg_len, unit / 2, g_body, unit);
	frag(&r, 2, M_CHECK, msg_len, 0, g_body, unit - 1);
	frag(&r, 3, M_CHECK, msg_len, 2 * unit, g_body, 9);
	frag(&r, 4, M_CHECK, msg_len, unit, g_body, unit + 1);
	for (uint32_t id = 1; id <= 4; id++)
		cr_assert_eq(raw_response(&r, srv, id, NULL, out, sizeof(out),
					  &len),
			     FERRY_EPROTO, "call %u", id);
	st = stats(srv);
	cr_assert_eq(st.reasm_off_grid, 4);
	cr_assert_eq(st.msgbuf_allocs, 0, "a buffer was taken");
	cr_assert_eq(st.sessions_proto_error, 0, "the session ended");
	cr_assert_eq(g_seen.runs, 0);
	raw_request(&r, 5, M_ECHO, 0, "next", 4);
	cr_assert_eq(raw_response(&r, srv, 5, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(len, 4);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* A REQUEST fragment as a v2 frame. */
static struct ferry_w2_frame req_frag(uint32_t req_id, uint32_t msg_len,
				      uint32_t off, uint32_t len)
{
	struct ferry_w2_frame f = { .type = FERRY_W2_REQUEST_FRAG };

	f.u.data.req_id = req_id;
	f.u.data.method = M_CHECK;
	f.u.data.msg_len = msg_len;
	f.u.data.offset = off;
	f.u.data.bytes = g_body + off;
	f.u.data.bytes_len = len;
	return f;
}

/*
 * Datagrams cut short in transit (v1's drop_short_frag): the first
 * fragment of three cut by a byte, the last by 12.  Each
 * fails its tag (drop_auth), is neither acknowledged nor marked seen, and
 * the client's copy under the same pn is taken: the call runs with its
 * bytes intact.  (Were a cut datagram's pn marked, the copy would be a
 * replay and the call would wait for good: the issue-14 stall.)
 */
static void t_truncated_datagram_resent(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct ferry_w2_frame f[3];
	uint64_t pn[3];
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 2 * unit + 10;
	f[0] = req_frag(1, msg_len, 0, unit);
	f[1] = req_frag(1, msg_len, unit, unit);
	f[2] = req_frag(1, msg_len, 2 * unit, 10);
	pn[0] = r.pn++;
	send_cut(&r, pn[0], &f[0], 1, 1);
	raw_pace(&r, srv);
	raw_send_frames(&r, &f[1], 1);
	pn[2] = r.pn++;
	send_cut(&r, pn[2], &f[2], 1, 12);
	PUMP(NULL, srv, WAIT_MS, stats(srv).drop_auth >= 2);
	cr_assert_eq(stats(srv).drop_auth, 2);
	cr_assert_eq(g_seen.runs, 0);
	send_cut(&r, pn[2], &f[2], 1, 0);
	send_cut(&r, pn[0], &f[0], 1, 0);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len), 0);
	st = stats(srv);
	cr_assert_eq(st.drop_auth, 2);
	cr_assert_eq(st.drop_replay_old + st.drop_duplicate, 0,
		     "a cut datagram's pn was marked");
	cr_assert_eq(st.reasm_off_grid, 0);
	cr_assert_eq(g_seen.runs, 1);
	cr_assert_eq(g_seen.poison, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* A middlebox that truncates, between a real client and server: both
 * ends get datagrams cut short (handshake and data), fail their tags, and
 * every call, of one datagram or many, still completes intact. */
static struct ferry_faults g_faults;

static void truncating(struct ferry_ep_config *c)
{
	ep_big(c);
	c->faults = g_faults;
	c->faults.seed = g_faults.seed++;
}

static void t_truncating_middlebox(void)
{
	static struct reply r[40];
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats a, b;

	g_faults = (struct ferry_faults){ .truncate = 0.1, .seed = 91 };
	srv = ep_new(truncating);
	cli = ep_new(truncating);
	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL),
		     0);
	s = open_session(cli, srv);
	for (uint32_t i = 0; i < 40; i++) {
		size_t n = i % 4 == 1 ? 30000 + i : 10 + i;

		r[i].seed = i;
		cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, n, i), on_reply,
					&r[i]),
			     0);
	}
	cr_assert(pump_replies(cli, srv, r, 40), "calls did not complete");
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(r[i].res, 0, "call %d: %s", i,
			     ferry_strerror(r[i].res));
		cr_assert(r[i].data_ok, "call %d came back altered", i);
		cr_assert_eq(r[i].calls, 1);
	}
	a = stats(cli);
	b = stats(srv);
	cr_assert_gt(a.fault_truncate + b.fault_truncate, 0);
	cr_assert_gt(a.drop_auth + b.drop_auth, 0,
		     "no truncated datagram reached a tag check");
	cr_assert_eq(a.reasm_off_grid + b.reasm_off_grid, 0);
	cr_assert_eq(a.sessions_proto_error + b.sessions_proto_error, 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* A pool to pin: 32 buffers of 64 KiB and 4 of 256 KiB; a session's
 * incomplete messages hold at most 512 KiB of them (8 of the 64 KiB
 * ones).  The deadline is the default, long enough for the legitimate
 * calls. */
static void srv_pinnable(struct ferry_ep_config *cfg)
{
	cfg->max_sessions = 4;
	cfg->pool[0] = (struct ferry_pool_class){ 512, 512 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 32 };
	cfg->pool[2] = (struct ferry_pool_class){ 256u << 10, 4 };
	cfg->reasm_quota = 512u << 10;
}

/* Calls of @n bytes from @cli on @s, all answered with their own bytes. */
static void legit_calls(struct ferry_endpoint *cli, struct ferry_endpoint *srv,
			struct ferry_session *s, size_t n, int count)
{
	static struct reply r[8];

	memset(r, 0, sizeof(r));
	for (int i = 0; i < count; i++) {
		r[i].seed = (uint32_t)(40 + i);
		cr_assert_eq(ferry_call(s, M_ECHO, msg(cli, n, r[i].seed),
					on_reply, &r[i]),
			     0);
	}
	cr_assert(pump_replies(cli, srv, r, count), "legit calls of %zu bytes "
		  "never ended", n);
	for (int i = 0; i < count; i++) {
		cr_assert_eq(r[i].res, 0, "legit call %d: %s", i,
			     ferry_strerror(r[i].res));
		cr_assert(r[i].data_ok);
	}
}

/* All 32 buffers of 64 KiB are free again. */
static void all_64k_free(struct ferry_endpoint *srv)
{
	struct ferry_msgbuf *mb[32];

	for (int i = 0; i < 32; i++)
		cr_assert_eq(ferry_msgbuf_alloc(srv, 60000, &mb[i]), 0,
			     "64 KiB buffer %d still pinned", i);
	for (int i = 0; i < 32; i++)
		ferry_msgbuf_free(mb[i]);
}

/*
 * Pinned buffers.  One-byte first fragments of 60,000-byte and 256 KiB
 * messages used to take a buffer each until the session died; on the
 * grid they are the wrong length, and each call is refused with
 * FERRY_EPROTO without taking one.  Full-sized first fragments of 16
 * messages of 60,000 bytes (as many calls as the raw peer's 16 slots let
 * it open) take at most the session's quota, 8 buffers, so another
 * session's large calls still complete; at the deadline the 8 go, their
 * calls answered -ETIMEDOUT in order.
 */
static void t_pinned_buffers(void)
{
	struct ferry_endpoint *srv = server(srv_pinnable);
	struct ferry_endpoint *cli = ep_new(ep_big);
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_ep_stats st;
	struct raw a, b;
	uint32_t unit;
	uint8_t out[64];
	size_t len;

	body_init();
	/* One-byte first fragments: refused, nothing taken. */
	raw_client(&a, srv, 0x00070001);
	for (uint32_t id = 1; id <= 100; id++) {
		frag(&a, id, M_CHECK, id % 2 ? 60000 : 256u << 10, 0, g_body,
		     1);
		raw_pace(&a, srv);
	}
	PUMP(NULL, srv, WAIT_MS, stats(srv).reasm_off_grid == 100);
	st = stats(srv);
	cr_assert_eq(st.reasm_off_grid, 100);
	cr_assert_eq(st.reasm_quota_refused, 0);
	all_64k_free(srv);

	/* Full-sized first fragments: the quota bounds them. */
	unit = raw_client(&b, srv, 0x00070002);
	for (uint32_t id = 1; id <= 16; id++) {
		frag(&b, id, M_CHECK, 60000, 0, g_body, unit);
		raw_pace(&b, srv);
	}
	PUMP(NULL, srv, WAIT_MS,
	     stats(srv).reasm_quota_refused >= 8 &&
		     stats(srv).msgbuf_allocs - st.msgbuf_allocs >= 8);
	st = stats(srv);
	cr_assert_eq(st.reasm_quota_refused, 8, "over the quota");
	cr_assert_eq(st.reasm_timed_out, 0);
	/* Meanwhile another session's large calls complete. */
	legit_calls(cli, srv, s, 60000, 8);
	legit_calls(cli, srv, s, 200000, 2);
	cr_assert_eq(stats(srv).reasm_timed_out, 0, "legit calls outlived "
		     "the deadline: the machine is too slow for this test");
	/* Its responses (64 KiB buffers) go with it. */
	ferry_session_close(s);
	PUMP(cli, srv, WAIT_MS, stats(srv).sessions_closed == 1);
	cr_assert_eq(stats(srv).sessions_closed, 1);
	/* The deadline (3 s after their one fragment) frees them; each call
	 * is answered, in order.  Wait for it here: the raw peer's own wait
	 * for a response is 3 s too, no margin on a loaded machine. */
	PUMP_UNTIL(NULL, srv, stats(srv).reasm_timed_out == 8,
		   "the deadline did not free the 8 buffers");
	for (uint32_t id = 1; id <= 8; id++)
		cr_assert_eq(raw_response(&b, srv, id, NULL, out, sizeof(out),
					  &len),
			     ETIMEDOUT, "call %u", id);
	st = stats(srv);
	cr_assert_eq(st.reasm_timed_out, 8);
	cr_assert_eq(g_seen.runs, 0);
	all_64k_free(srv);
	raw_close(&a);
	raw_close(&b);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/*
 * A message abandoned half-way: at the deadline (no new fragment for
 * reasm_timeout_ms) its buffer goes and its call is answered -ETIMEDOUT;
 * its late fragments are copies of a call that is over, and the session
 * serves the next call.
 */
static void t_deadline_expiry(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st, st0;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 2 * unit + 1;
	frag(&r, 1, M_CHECK, msg_len, unit, g_body, unit);
	PUMP(NULL, srv, WAIT_MS, stats(srv).msgbuf_allocs == 1);
	cr_assert_eq(stats(srv).reasm_timed_out, 0);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     ETIMEDOUT);
	st0 = stats(srv);
	cr_assert_eq(st0.reasm_timed_out, 1);
	cr_assert_eq(st0.payload_copied_discarded, unit);
	frag(&r, 1, M_CHECK, msg_len, 0, g_body, unit);
	frag(&r, 1, M_CHECK, msg_len, 2 * unit, g_body, 1);
	raw_request(&r, 2, M_ECHO, 0, "next", 4);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	st = stats(srv);
	cr_assert_eq(st.drop_duplicate - st0.drop_duplicate, 2,
		     "the late fragments");
	cr_assert_eq(g_seen.runs, 0);
	cr_assert_eq(st.msgbuf_allocs, 1, "a late fragment took a buffer");
	cr_assert_eq(st.reqs_dispatched, 2);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

static void srv_quota_64k(struct ferry_ep_config *cfg)
{
	srv_pinnable(cfg);
	cfg->reasm_quota = 64u << 10;
}

/* A message the pool could hold but the session's quota never could is
 * refused at its turn with EMSGSIZE, not left to wait for room that will
 * not come. */
static void t_quota_never_fits(void)
{
	struct ferry_endpoint *srv = server(srv_quota_64k);
	struct raw r;
	uint32_t unit;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	frag(&r, 1, M_CHECK, 100000, 0, g_body, unit);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     EMSGSIZE);
	cr_assert_eq(stats(srv).reasm_quota_refused, 1);
	/* Within the quota, the same session is served. */
	frag(&r, 2, M_CHECK, unit + 1, 0, g_body, unit);
	frag(&r, 2, M_CHECK, unit + 1, unit, g_body, 1);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(g_seen.runs, 1);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Client: responses from a raw server                                    */
/* ===================================================================== */

/* A raw server and the client endpoint it serves. */
struct rs {
	struct raw raw;
	struct ferry_endpoint *cli;
	struct ferry_session *s;
	uint32_t unit;   /* the session's fragment unit */
	uint32_t req_id; /* the last request's */
};

/* The client endpoint: one 64 KiB buffer (the poison's), a short
 * deadline. */
static void cli_small(struct ferry_ep_config *cfg)
{
	srv_small(cfg);
}

static uint64_t unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Open @x: a client endpoint connected to a raw server that answers its
 * CONNECT at once (retry never) with an ACCEPT of max_frame 8192, made by
 * the handshake unit's server half. */
static void rs_open(struct rs *x)
{
	struct ferry_hs_server_cfg scfg = { .mode = FERRY_W2_MODE_MAC };
	static struct ferry_hs_server hs;
	struct ferry_hs_server_result res;
	struct ferry__seal_keys keys;
	uint8_t dg[RAW_FRAME_MAX], out[FERRY_HS_REPLY_MAX];
	struct ferry_addr local;
	struct conn cn = { 0 };
	uint64_t end = now_ms() + 3000;
	uint32_t path;
	size_t n = 0;
	uint8_t mode;
	int len;

	memset(x, 0, sizeof(*x));
	raw_bind(&x->raw);
	x->cli = ep_new(cli_small);
	cr_assert_eq(ferry_session_connect(x->cli, "127.0.0.1",
					   raw_port(&x->raw), NULL, on_connect,
					   &cn, &x->s),
		     0);
	cr_assert_eq(ferry__addr_parse_ip("127.0.0.1", &x->raw.to.ip), 0);
	x->raw.to.port = ferry_endpoint_port(x->cli);
	cr_assert_eq(x->raw.ops->local_addr(x->raw.dp, &local), 0);
	cr_assert_eq(ferry__hs_server_init(&hs, FERRY_HS_RETRY_NEVER,
					   unix_ns()),
		     0);
	while (n == 0 && now_ms() < end) {
		ferry_endpoint_poll(x->cli, 0);
		n = raw_take(&x->raw, dg, sizeof(dg), NULL);
	}
	cr_assert_gt(n, 0, "no CONNECT");
	memset(&res, 0, sizeof(res));
	cr_assert_eq(ferry__hs_server_input(&hs, dg, n, &x->raw.to, &local,
					    unix_ns(), out, sizeof(out), &res),
		     FERRY_HS_ADMIT, "not a CONNECT: %s",
		     res.drop ? res.drop : "?");
	randombytes_buf(&scfg.cid, sizeof(scfg.cid));
	scfg.cid |= 1ull << 32 | 1;
	scfg.params = (struct ferry_w2_params){ 1u << 20, 1u << 20,
						RAW_PATH_FRAME, 16, 1000,
						FERRY_REPLAY_LOG2_DEFAULT };
	len = ferry__hs_server_accept(&res.conn, &scfg, NULL, &keys, &mode,
				      out, sizeof(out));
	cr_assert_gt(len, 0);
	x->raw.cid = scfg.cid;
	x->raw.srv_cid = res.conn.client_cid;
	x->raw.mode = mode;
	memcpy(x->raw.key_tx, keys.s2c, sizeof(x->raw.key_tx));
	memcpy(x->raw.key_rx, keys.c2s, sizeof(x->raw.key_rx));
	sodium_memzero(&keys, sizeof(keys));
	ferry__replay_init(&x->raw.seen, FERRY_REPLAY_LOG2_DEFAULT,
			   x->raw.seen_bits);
	x->raw.pn = 1; /* the ACCEPT was pn 0 */
	path = res.conn.params.max_frame < RAW_PATH_FRAME
		       ? res.conn.params.max_frame
		       : RAW_PATH_FRAME;
	x->unit = path - FERRY_W2_SHORT_HDR_LEN - (mode ? 16 : 4) - 18 - 24;
	raw_send_bytes(&x->raw, out, (size_t)len);
	PUMP_UNTIL(x->cli, NULL, cn.done, "connect never ended");
	cr_assert_eq(cn.res, 0, "connect: %s", ferry_strerror(cn.res));
}

static void rs_close(struct rs *x)
{
	ferry_session_close(x->s);
	ferry_endpoint_destroy(x->cli);
	raw_close(&x->raw);
}

/* What a continuation got: the result, the length, poison bytes. */
struct got {
	bool done;
	int res;
	size_t len;
	size_t poison;
	uint8_t data[64u << 10];
};

static void on_got(int res, const void *data, size_t len, void *ctx)
{
	struct got *g = ctx;

	g->done = true;
	g->res = res;
	g->len = len;
	g->poison = res == 0 ? count_poison(data, len) : 0;
	if (res == 0 && len <= sizeof(g->data))
		memcpy(g->data, data, len);
}

/* The next REQUEST (of a call newer than the last) the raw server hears;
 * the client's retransmissions (it never hears an ACK) are skipped. */
static bool rs_next_request(struct rs *x)
{
	uint64_t end = now_ms() + 3000;
	struct ferry_w2_frame w;

	while (now_ms() < end) {
		size_t n;

		ferry_endpoint_poll(x->cli, 0);
		n = raw_take(&x->raw, x->raw.rbuf, sizeof(x->raw.rbuf), NULL);
		if (!n || !ferry__w2_is_short(x->raw.rbuf[0]) ||
		    !raw_open_dgram(&x->raw, n))
			continue;
		while (ferry__w2_iter_next(&x->raw.it, &w) == 1) {
			if ((w.type == FERRY_W2_REQUEST ||
			     w.type == FERRY_W2_REQUEST_FRAG) &&
			    w.u.data.req_id != x->req_id) {
				x->req_id = w.u.data.req_id;
				return true;
			}
		}
	}
	return false;
}

/* Make a call on @x's session and wait for its REQUEST at the raw
 * server. */
static void rs_call(struct rs *x, struct got *g)
{
	memset(g, 0, sizeof(*g));
	cr_assert_eq(ferry_call(x->s, M_SINK, msg(x->cli, 8, 1), on_got, g),
		     0);
	cr_assert(rs_next_request(x), "no REQUEST");
}

/* A RESPONSE frame to the last request: a fragment @off..@off+@len of a
 * @msg_len message, the bytes from @p; whole (RESPONSE) if it is all of
 * it; @flags are v2 frame flags. */
static struct ferry_w2_frame rs_frame(struct rs *x, uint8_t flags,
				      uint32_t msg_len, uint32_t off,
				      const uint8_t *p, uint32_t len)
{
	struct ferry_w2_frame f = { .flags = flags };

	f.type = off == 0 && len == msg_len ? FERRY_W2_RESPONSE
					    : FERRY_W2_RESPONSE_FRAG;
	f.u.data.req_id = x->req_id;
	f.u.data.msg_len = msg_len;
	f.u.data.offset = off;
	f.u.data.bytes = p;
	f.u.data.bytes_len = len;
	return f;
}

static void rs_frag_fl(struct rs *x, uint8_t flags, uint32_t msg_len,
		       uint32_t off, const uint8_t *p, uint32_t len)
{
	struct ferry_w2_frame f = rs_frame(x, flags, msg_len, off, p, len);

	raw_send_frames(&x->raw, &f, 1);
}

static void rs_frag(struct rs *x, uint32_t msg_len, uint32_t off,
		    const uint8_t *p, uint32_t len)
{
	rs_frag_fl(x, 0, msg_len, off, p, len);
}

/* The client's response buffer gets poison: a whole response of @len
 * bytes of it, on the grid. */
static void rs_poison(struct rs *x, uint32_t len)
{
	static uint8_t p[64u << 10];
	static struct got g;

	memset(p, POISON, len);
	rs_call(x, &g);
	for (uint32_t off = 0; off < len; off += x->unit)
		rs_frag(x, len, off, p + off,
			len - off < x->unit ? len - off : x->unit);
	PUMP_UNTIL(x->cli, NULL, g.done, "poison response never arrived");
	cr_assert_eq(g.res, 0);
	cr_assert_eq(g.len, len);
}

/*
 * The leak, on a client: a raw server sends a response's first fragment
 * twice.  The copy is a duplicate; the continuation gets the response
 * only when its second half comes, with none of the poison an earlier
 * response left in the buffer.  Then a fragment off the grid, and one of
 * the wrong length, end their calls with FERRY_EPROTO; a response
 * abandoned half-way ends at the deadline; and the session still gets a
 * whole response whole.
 */
static void t_client_response_attacks(void)
{
	static struct got g;
	struct ferry_ep_stats st0, st;
	struct rs x;
	uint32_t msg_len;

	body_init();
	rs_open(&x);
	rs_poison(&x, 60000);
	msg_len = 2 * x.unit;

	rs_call(&x, &g);
	st0 = stats(x.cli);
	rs_frag(&x, msg_len, 0, g_body, x.unit);
	rs_frag(&x, msg_len, 0, g_body + x.unit, x.unit);
	PUMP(x.cli, NULL, WAIT_MS,
	     stats(x.cli).drop_duplicate > st0.drop_duplicate);
	pump_for(x.cli, NULL, 20);
	cr_assert_eq(stats(x.cli).drop_duplicate - st0.drop_duplicate, 1);
	cr_assert_not(g.done, "a response of one fragment twice ended its "
		      "call");
	rs_frag(&x, msg_len, x.unit, g_body + x.unit, x.unit);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, 0, "got %d", g.res);
	cr_assert_eq(g.len, msg_len);
	cr_assert_eq(g.poison, 0);
	cr_assert_arr_eq(g.data, g_body, msg_len);

	/* Off the grid, past msg_len with the first. */
	rs_call(&x, &g);
	rs_frag(&x, msg_len, 0, g_body, x.unit);
	rs_frag(&x, msg_len, x.unit - 8, g_body, x.unit);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, -FERRY_EPROTO);
	cr_assert_eq(stats(x.cli).reasm_off_grid, 1);

	/* On the grid, a byte short of its place, as the first to come. */
	rs_call(&x, &g);
	rs_frag(&x, msg_len, 0, g_body, x.unit - 1);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, -FERRY_EPROTO);
	cr_assert_eq(stats(x.cli).reasm_off_grid, 2);

	/* Abandoned: the deadline ends it. */
	rs_call(&x, &g);
	rs_frag(&x, msg_len, x.unit, g_body, x.unit);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, -ETIMEDOUT);
	st = stats(x.cli);
	cr_assert_eq(st.reasm_timed_out, 1);
	cr_assert(ferry_session_is_open(x.s));

	/* And a whole response, on the grid, still arrives whole. */
	rs_call(&x, &g);
	rs_frag(&x, msg_len, x.unit, g_body + x.unit, x.unit);
	rs_frag(&x, msg_len, 0, g_body, x.unit);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, 0);
	cr_assert_eq(g.len, msg_len);
	cr_assert_eq(g.poison, 0);
	rs_close(&x);
}

/*
 * Response fragments that disagree with the first: what the client does
 * today, kept (v1's rules): another trace flag is dropped as stale,
 * another msg_len as malformed; neither touches the message, which the
 * agreeing fragment completes.
 */
static void t_client_disagreeing_fragments(void)
{
	static struct got g;
	struct ferry_ep_stats st0, st;
	struct rs x;
	uint32_t msg_len;

	body_init();
	rs_open(&x);
	msg_len = 2 * x.unit;
	rs_call(&x, &g);
	st0 = stats(x.cli);
	rs_frag(&x, msg_len, 0, g_body, x.unit);
	rs_frag_fl(&x, FERRY_W2_F_TRACE, msg_len, x.unit, g_body + 3, x.unit);
	rs_frag(&x, msg_len + x.unit, x.unit, g_body + 3, x.unit);
	PUMP(x.cli, NULL, WAIT_MS,
	     stats(x.cli).drop_stale > st0.drop_stale &&
		     stats(x.cli).drop_malformed > st0.drop_malformed);
	st = stats(x.cli);
	cr_assert_eq(st.drop_stale - st0.drop_stale, 1);
	cr_assert_eq(st.drop_malformed - st0.drop_malformed, 1);
	cr_assert_not(g.done);
	rs_frag(&x, msg_len, x.unit, g_body + x.unit, x.unit);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, 0);
	cr_assert_eq(g.len, msg_len);
	cr_assert_arr_eq(g.data, g_body, msg_len);
	rs_close(&x);
}

/*
 * Responses cut short in transit, on a client: a one-frame response and an
 * error response (v1 took a short error response for the server's word,
 * and ended its call with FERRY_EPROTO).  Each fails its tag (drop_auth),
 * its pn is not marked, and the server's copy under the same pn ends the
 * call as the server meant: with the whole response, with its error.
 */
static void t_client_truncated_response(void)
{
	static struct got g;
	struct ferry_w2_frame f;
	uint64_t pn;
	struct rs x;

	body_init();
	rs_open(&x);
	rs_call(&x, &g);
	f = rs_frame(&x, 0, 500, 0, g_body, 500);
	pn = x.raw.pn++;
	send_cut(&x.raw, pn, &f, 1, 300);
	pump_for(x.cli, NULL, 20);
	cr_assert_not(g.done, "a truncated response ended its call");
	cr_assert_eq(stats(x.cli).drop_auth, 1);
	send_cut(&x.raw, pn, &f, 1, 0);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, 0);
	cr_assert_eq(g.len, 500);

	rs_call(&x, &g);
	f = rs_frame(&x, FERRY_W2_F_ERR, 0, 0, NULL, 0);
	f.u.data.err = (struct ferry_w2_errbody){ ENOENT, "no such thing", 13 };
	pn = x.raw.pn++;
	send_cut(&x.raw, pn, &f, 1, 3);
	pump_for(x.cli, NULL, 20);
	cr_assert_not(g.done, "a truncated error response ended its call");
	send_cut(&x.raw, pn, &f, 1, 0);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, -ENOENT);
	cr_assert_eq(stats(x.cli).drop_auth, 2);
	cr_assert_eq(stats(x.cli).drop_replay_old, 0);
	cr_assert(ferry_session_is_open(x.s));
	rs_close(&x);
}

#define REASM_CASES(CASE, s)                                                   \
	CASE(s, same_place_is_duplicate)                                       \
	CASE(s, disagreeing_fragments_stale)                                   \
	CASE(s, overlap_past_msg_len)                                          \
	CASE(s, off_grid_refused)                                              \
	CASE(s, truncated_datagram_resent)                                     \
	CASE(s, truncating_middlebox)                                          \
	CASE(s, pinned_buffers)                                                \
	CASE(s, deadline_expiry)                                               \
	CASE(s, quota_never_fits)                                              \
	CASE(s, client_response_attacks)                                       \
	CASE(s, client_disagreeing_fragments)                                  \
	CASE(s, client_truncated_response)

HARNESS_BATTERY(reasm, REASM_CASES, .timeout = 120)
