/* SPDX-License-Identifier: MIT */
/*
 * test_reasm.c - reassembly that no peer can confuse (docs/wire.md,
 * section 6; issue 14): a raw peer sends crafted REQUEST fragments to a
 * server, or, as a raw server, crafted RESPONSE fragments to a client.
 * Each attack must fail with the call ended, the counters saying why, and
 * no byte of an earlier message (a poison pattern left in a pool buffer)
 * ever handed up:
 *  - two fragments at one offset (the leak: counted twice, the message
 *    completed with another session's bytes in its tail);
 *  - fragments off the grid, and overlaps that add up past msg_len (a
 *    stall); the session serves the next call;
 *  - fragments on the grid but short of their place: datagrams cut short
 *    in transit, dropped unacknowledged so that the retransmission is
 *    taken (a stall, too, when the short copy's seq was marked);
 *  - one-byte first fragments, and full-sized ones, to pin buffers: the
 *    first take nothing, the second at most the session's quota until
 *    their deadline, while another session's large calls complete;
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
 * unit (the grid): the smaller max_frame of both, less the header. */
static uint32_t raw_client(struct raw *r, struct ferry_endpoint *srv,
			   uint32_t my_sess)
{
	struct ferry_connect_body acc;
	struct ferry_frame f;
	uint8_t buf[RAW_FRAME_MAX];
	uint32_t mf;

	raw_open(r, srv, my_sess);
	raw_connect_send(r, 0, NULL, 0); /* it offers max_frame 8192 */
	cr_assert(raw_recv(r, srv, FERRY_FT_ACCEPT, 0, &f, buf, sizeof(buf)),
		  "no ACCEPT");
	r->srv_sess = f.h.src_sess;
	cr_assert_eq(ferry__wire_parse_connect(f.payload, f.pay_len, &acc), 0);
	mf = acc.params.max_frame < 8192 ? acc.params.max_frame : 8192;
	return mf - FERRY_WIRE_HDR_LEN;
}

/* One data frame of @type: fragment @off..@off+@len of a message of
 * @msg_len bytes of call @req_id, the bytes from @p, a new seq. */
static void frag(struct raw *r, uint8_t type, uint32_t req_id,
		 uint16_t method, uint32_t msg_len, uint32_t off,
		 const uint8_t *p, uint32_t len)
{
	struct ferry_hdr h;

	raw_data_hdr(r, &h, type);
	h.req_id = req_id;
	h.method = method;
	h.msg_len = msg_len;
	h.frag_off = off;
	raw_send(r, &h, p, len);
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
static uint8_t g_body[64u << 10];

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
 * The leak: a message of two fragments gets its first one twice (a new
 * seq each, so neither is a network duplicate).  Counted twice, that
 * completed the message with its second half unwritten: the handler read
 * the poison an earlier session left in the buffer.  Now the second copy
 * ends the call with FERRY_EPROTO at its turn; nothing is handed up.
 */
static void t_leak_same_offset(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	poison_server(srv, 60000);
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 2 * unit;
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, 0, g_body, unit);
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, 0, g_body, unit);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     FERRY_EPROTO, "the twice-counted message was served");
	/* Its real second half, late: the call is over. */
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, unit, g_body + unit,
	     unit);
	pump_for(srv, NULL, 30);
	st = stats(srv);
	cr_assert_eq(g_seen.runs, 0);
	cr_assert_eq(g_seen.poison, 0, "poison delivered");
	cr_assert_eq(st.reasm_overlap, 1);
	cr_assert_eq(st.reasm_off_grid, 0);
	cr_assert_eq(st.payload_copied_discarded, unit);
	cr_assert_geq(st.drop_stale, 1, "the late fragment");
	/* The session serves the next call, two fragments, whole. */
	frag(&r, FERRY_FT_REQUEST, 2, M_CHECK, msg_len, unit, g_body + unit,
	     unit);
	frag(&r, FERRY_FT_REQUEST, 2, M_CHECK, msg_len, 0, g_body, unit);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(g_seen.runs, 1);
	cr_assert_eq(g_seen.poison, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/*
 * Fragments that overlap and add up past msg_len (0..unit, then 100 on):
 * the count never met msg_len, and the call, and every call after it,
 * waited for good.  The second is off the grid: the call ends with
 * FERRY_EPROTO, and the next one runs.
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
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, 0, g_body, unit);
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, 100, g_body, 200);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     FERRY_EPROTO);
	raw_request(&r, 2, M_ECHO, 0, "next", 4);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	cr_assert_eq(len, 4);
	cr_assert_arr_eq(out, "next", 4);
	st = stats(srv);
	cr_assert_eq(g_seen.runs, 0);
	cr_assert_eq(st.reasm_off_grid, 1);
	cr_assert_eq(st.reasm_overlap, 0);
	cr_assert_eq(st.reqs_dispatched, 2);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/*
 * A fragment at an offset that is no multiple of the unit, as the first
 * of its message to arrive: no network damage makes one.  The call ends
 * with FERRY_EPROTO at its turn, and no buffer is taken for it.
 */
static void t_misaligned_refused(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 3 * unit;
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, unit / 2, g_body,
	     unit);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     FERRY_EPROTO);
	st = stats(srv);
	cr_assert_eq(st.reasm_off_grid, 1);
	cr_assert_eq(st.drop_short_frag, 0);
	cr_assert_eq(st.msgbuf_allocs, 0, "a buffer was taken");
	cr_assert_eq(g_seen.runs, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* Send fragment @off..@off+@len of call @req_id's @msg_len-byte request
 * cut to @cut bytes, then whole again under the same seq: a datagram a
 * middlebox truncated, and the client's retransmission of it. */
static void frag_cut_then_whole(struct raw *r, uint32_t req_id,
				uint32_t msg_len, uint32_t off, uint32_t len,
				uint32_t cut)
{
	uint32_t seq = r->seq;

	frag(r, FERRY_FT_REQUEST, req_id, M_CHECK, msg_len, off, g_body + off,
	     cut);
	raw_pace(r, g_srv);
	r->seq = seq;
	frag(r, FERRY_FT_REQUEST, req_id, M_CHECK, msg_len, off, g_body + off,
	     len);
}

/*
 * Fragments on the grid but shorter than their place -- a datagram cut
 * short in transit: a one-frame message, the first fragment of three and
 * the last -- are damage, not a protocol error.  Each is dropped without
 * being acknowledged, marked or credited (counted in drop_short_frag), so
 * that its retransmission under the same seq is taken; every call then
 * runs with its bytes intact.  (Were the short copy's seq marked, the
 * retransmission would be dropped as a duplicate and the call would
 * wait for good: the issue-14 stall.)
 */
static void t_short_fragment_dropped(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	frag_cut_then_whole(&r, 1, 300, 0, 300, 299);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len), 0);
	msg_len = 2 * unit + 10;
	frag_cut_then_whole(&r, 2, msg_len, 0, unit, unit - 1);
	frag(&r, FERRY_FT_REQUEST, 2, M_CHECK, msg_len, unit, g_body + unit,
	     unit);
	frag_cut_then_whole(&r, 2, msg_len, 2 * unit, 10, 1);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	st = stats(srv);
	cr_assert_eq(st.drop_short_frag, 3);
	cr_assert_eq(st.drop_duplicate, 0, "a short copy's seq was marked");
	cr_assert_eq(st.reasm_off_grid, 0);
	cr_assert_eq(st.reqs_dispatched, 2);
	cr_assert_eq(g_seen.runs, 2);
	cr_assert_eq(g_seen.poison, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* A pool to pin: 32 buffers of 64 KiB, 4 of 1 MiB; the quota is then the
 * largest class, 1 MiB: a session pins at most 16 of the 64 KiB ones.  The
 * deadline is the default, long enough for the legitimate calls. */
static void srv_pinnable(struct ferry_ep_config *cfg)
{
	cfg->max_sessions = 4;
	cfg->pool[0] = (struct ferry_pool_class){ 512, 512 };
	cfg->pool[1] = (struct ferry_pool_class){ 64u << 10, 32 };
	cfg->pool[2] = (struct ferry_pool_class){ 1u << 20, 4 };
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
 * Pinned buffers.  One-byte first fragments (45-byte datagrams) of 64 KiB
 * and 1 MiB messages used to take a buffer each until the session died.
 * Now they are short of their place on the grid, dropped as damage
 * unacknowledged, and take none.  Full-sized first fragments of
 * 20 messages of 60,000 bytes take at most the session's quota (16 of the
 * 32 buffers; the other 4 are not taken), so another session's large
 * calls still complete; at the deadline the 16 go, their calls answered
 * -ETIMEDOUT in order.
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
	/* One-byte first fragments: dropped, nothing taken. */
	raw_client(&a, srv, 0x00070001);
	for (uint32_t id = 1; id <= 100; id++) {
		frag(&a, FERRY_FT_REQUEST, id, M_CHECK,
		     id % 2 ? 60000 : 1u << 20, 0, g_body, 1);
		raw_pace(&a, srv);
	}
	PUMP(NULL, srv, WAIT_MS, stats(srv).drop_short_frag == 100);
	st = stats(srv);
	cr_assert_eq(st.drop_short_frag, 100);
	cr_assert_eq(st.reasm_off_grid, 0);
	all_64k_free(srv);

	/* Full-sized first fragments: the quota bounds them. */
	unit = raw_client(&b, srv, 0x00070002);
	for (uint32_t id = 1; id <= 20; id++) {
		frag(&b, FERRY_FT_REQUEST, id, M_CHECK, 60000, 0, g_body, unit);
		raw_pace(&b, srv);
	}
	PUMP(NULL, srv, WAIT_MS,
	     stats(srv).reasm_quota_refused == 4 &&
		     stats(srv).msgbuf_allocs - st.msgbuf_allocs >= 16);
	st = stats(srv);
	cr_assert_eq(st.reasm_quota_refused, 4, "over the quota");
	cr_assert_eq(st.reasm_timed_out, 0);
	/* Meanwhile another session's large calls complete. */
	legit_calls(cli, srv, s, 60000, 8);
	legit_calls(cli, srv, s, 1u << 19, 2);
	cr_assert_eq(stats(srv).reasm_timed_out, 0, "legit calls outlived "
		     "the deadline: the machine is too slow for this test");
	/* Its responses (64 KiB buffers) go with it. */
	ferry_session_close(s);
	PUMP(cli, srv, WAIT_MS, stats(srv).sessions_closed == 1);
	cr_assert_eq(stats(srv).sessions_closed, 1);
	/* The deadline (3 s after their one fragment) frees them; each call
	 * is answered, in order.  Wait for it here: the raw peer's own wait
	 * for a response is 3 s too, no margin on a loaded machine. */
	PUMP_UNTIL(NULL, srv, stats(srv).reasm_timed_out == 16,
		   "the deadline did not free the 16 buffers");
	for (uint32_t id = 1; id <= 16; id++)
		cr_assert_eq(raw_response(&b, srv, id, NULL, out, sizeof(out),
					  &len),
			     ETIMEDOUT, "call %u", id);
	st = stats(srv);
	cr_assert_eq(st.reasm_timed_out, 16);
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
 * its late fragments are stale, and the session serves the next call.
 */
static void t_deadline_expiry(void)
{
	struct ferry_endpoint *srv = server(srv_small);
	struct ferry_ep_stats st;
	struct raw r;
	uint32_t unit, msg_len;
	uint8_t out[64];
	size_t len;

	body_init();
	unit = raw_client(&r, srv, 0x00070001);
	msg_len = 2 * unit + 1;
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, unit, g_body, unit);
	PUMP(NULL, srv, WAIT_MS, stats(srv).msgbuf_allocs == 1);
	cr_assert_eq(stats(srv).reasm_timed_out, 0);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     ETIMEDOUT);
	st = stats(srv);
	cr_assert_eq(st.reasm_timed_out, 1);
	cr_assert_eq(st.payload_copied_discarded, unit);
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, 0, g_body, unit);
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, msg_len, 2 * unit, g_body, 1);
	raw_request(&r, 2, M_ECHO, 0, "next", 4);
	cr_assert_eq(raw_response(&r, srv, 2, NULL, out, sizeof(out), &len), 0);
	st = stats(srv);
	cr_assert_geq(st.drop_stale, 2);
	cr_assert_eq(g_seen.runs, 0);
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
	frag(&r, FERRY_FT_REQUEST, 1, M_CHECK, 100000, 0, g_body, unit);
	cr_assert_eq(raw_response(&r, srv, 1, NULL, out, sizeof(out), &len),
		     EMSGSIZE);
	cr_assert_eq(stats(srv).reasm_quota_refused, 1);
	/* Within the quota, the same session is served. */
	frag(&r, FERRY_FT_REQUEST, 2, M_CHECK, unit + 1, 0, g_body, unit);
	frag(&r, FERRY_FT_REQUEST, 2, M_CHECK, unit + 1, unit, g_body, 1);
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
	uint32_t unit;    /* the session's fragment unit */
	uint32_t req_id;  /* the last request's */
	uint16_t method;
};

/* The client endpoint: one 64 KiB buffer (the poison's), a short
 * deadline. */
static void cli_small(struct ferry_ep_config *cfg)
{
	srv_small(cfg);
}

/* Open @x: a client endpoint connected to a raw server that accepts
 * with max_frame 8192. */
static void rs_open(struct rs *x)
{
	struct ferry_connect_body cb;
	struct ferry_connect_body acc = {
		.have_params = true,
		.params = { 1u << 20, 64, 8192, 16 },
	};
	struct ferry_hdr h = { .type = FERRY_FT_ACCEPT };
	struct ferry_frame f;
	uint8_t buf[RAW_FRAME_MAX];
	struct conn cn = { 0 };
	int bn;

	memset(x, 0, sizeof(*x));
	raw_bind(&x->raw);
	x->raw.my_sess = 0x00050001;
	x->cli = ep_new(cli_small);
	cr_assert_eq(ferry_session_connect(x->cli, "127.0.0.1",
					   raw_port(&x->raw), NULL, on_connect,
					   &cn, &x->s),
		     0);
	cr_assert_eq(ferry__addr_parse_ip("127.0.0.1", &x->raw.to.ip), 0);
	x->raw.to.port = ferry_endpoint_port(x->cli);
	cr_assert(raw_recv(&x->raw, x->cli, FERRY_FT_CONNECT, 0, &f, buf,
			   sizeof(buf)),
		  "no CONNECT");
	cr_assert_eq(ferry__wire_parse_connect(f.payload, f.pay_len, &cb), 0);
	x->raw.srv_sess = f.h.src_sess; /* frames go to the client's id */
	x->unit = (cb.params.max_frame < 8192 ? cb.params.max_frame : 8192) -
		  FERRY_WIRE_HDR_LEN;
	bn = ferry__wire_put_connect(buf, sizeof(buf), &acc);
	cr_assert_gt(bn, 0);
	h.dst_sess = f.h.src_sess;
	h.src_sess = x->raw.my_sess;
	h.credit = 64;
	h.msg_len = (uint32_t)bn;
	raw_send(&x->raw, &h, buf, (size_t)bn);
	PUMP_UNTIL(x->cli, NULL, cn.done, "connect never ended");
	cr_assert_eq(cn.res, 0);
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
};

static void on_got(int res, const void *data, size_t len, void *ctx)
{
	struct got *g = ctx;

	g->done = true;
	g->res = res;
	g->len = len;
	g->poison = res == 0 ? count_poison(data, len) : 0;
}

/* Make a call on @x's session and wait for its REQUEST at the raw
 * server. */
static void rs_call(struct rs *x, struct got *g)
{
	uint8_t buf[RAW_FRAME_MAX];
	struct ferry_frame f;

	memset(g, 0, sizeof(*g));
	cr_assert_eq(ferry_call(x->s, M_SINK, msg(x->cli, 8, 1), on_got, g),
		     0);
	do {
		/* Our frames never acknowledge it: skip its resends. */
		cr_assert(raw_recv(&x->raw, x->cli, FERRY_FT_REQUEST, 0, &f,
				   buf, sizeof(buf)),
			  "no REQUEST");
	} while (f.h.req_id == x->req_id);
	x->req_id = f.h.req_id;
	x->method = f.h.method;
}

/* A RESPONSE fragment to the last request. */
static void rs_frag(struct rs *x, uint32_t msg_len, uint32_t off,
		    const uint8_t *p, uint32_t len)
{
	frag(&x->raw, FERRY_FT_RESPONSE, x->req_id, x->method, msg_len, off, p,
	     len);
}

/* The client's response buffer gets poison: a whole response of @len
 * bytes of it, on the grid. */
static void rs_poison(struct rs *x, uint32_t len)
{
	static uint8_t p[64u << 10];
	struct got g;

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
 * twice.  The call fails with FERRY_EPROTO; the continuation sees none of
 * the poison an earlier response left in the buffer.  Then a fragment off
 * the grid, and a response abandoned half-way, each end their call.
 */
static void t_client_response_attacks(void)
{
	struct ferry_ep_stats st;
	struct rs x;
	struct got g;
	uint32_t msg_len;

	body_init();
	rs_open(&x);
	rs_poison(&x, 60000);
	msg_len = 2 * x.unit;

	rs_call(&x, &g);
	rs_frag(&x, msg_len, 0, g_body, x.unit);
	rs_frag(&x, msg_len, 0, g_body, x.unit);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, -FERRY_EPROTO, "got %d (%zu bytes, %zu poison)",
		     g.res, g.len, g.poison);
	cr_assert_eq(g.poison, 0);
	st = stats(x.cli);
	cr_assert_eq(st.reasm_overlap, 1);

	/* Off the grid, past msg_len with the first. */
	rs_call(&x, &g);
	rs_frag(&x, msg_len, 0, g_body, x.unit);
	rs_frag(&x, msg_len, x.unit - 8, g_body, x.unit);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, -FERRY_EPROTO);
	cr_assert_eq(stats(x.cli).reasm_off_grid, 1);

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

/* A RESPONSE to the last request, @flags, bytes @p/@len of a @msg_len
 * message at offset 0, under seq @seq. */
static void rs_send_at(struct rs *x, uint32_t seq, uint16_t flags,
		       uint32_t msg_len, const uint8_t *p, uint32_t len)
{
	struct ferry_hdr h;

	raw_data_hdr(&x->raw, &h, FERRY_FT_RESPONSE);
	h.seq = seq;
	h.flags = flags;
	h.req_id = x->req_id;
	h.method = x->method;
	h.msg_len = msg_len;
	raw_send(&x->raw, &h, p, len);
}

/*
 * Responses cut short in transit, on a client: a one-frame response and an
 * error response (which used to end its call with FERRY_EPROTO, though
 * only the network was at fault).  Each is dropped unacknowledged and
 * counted in drop_short_frag; its retransmission under the same seq ends
 * the call as the server meant: with the whole response, with its error.
 */
static void t_client_short_response(void)
{
	uint8_t err[64];
	uint32_t seq, elen;
	struct rs x;
	struct got g;

	body_init();
	rs_open(&x);
	rs_call(&x, &g);
	seq = x.raw.seq++;
	rs_send_at(&x, seq, 0, 500, g_body, 200);
	pump_for(x.cli, NULL, 20);
	cr_assert_not(g.done, "a truncated response ended its call");
	rs_send_at(&x, seq, 0, 500, g_body, 500);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, 0);
	cr_assert_eq(g.len, 500);

	rs_call(&x, &g);
	elen = (uint32_t)ferry__wire_put_error(err, sizeof(err), ENOENT,
					       "no such thing");
	seq = x.raw.seq++;
	rs_send_at(&x, seq, FERRY_FF_ERR, elen, err, elen - 3);
	pump_for(x.cli, NULL, 20);
	cr_assert_not(g.done, "a truncated error response ended its call");
	rs_send_at(&x, seq, FERRY_FF_ERR, elen, err, elen);
	PUMP_UNTIL(x.cli, NULL, g.done, "the call never ended");
	cr_assert_eq(g.res, -ENOENT);
	cr_assert_eq(stats(x.cli).drop_short_frag, 2);
	cr_assert_eq(stats(x.cli).drop_duplicate, 0);
	cr_assert(ferry_session_is_open(x.s));
	rs_close(&x);
}

#define REASM_CASES(CASE, s)                                                   \
	CASE(s, leak_same_offset)                                              \
	CASE(s, overlap_past_msg_len)                                          \
	CASE(s, misaligned_refused)                                            \
	CASE(s, short_fragment_dropped)                                        \
	CASE(s, pinned_buffers)                                                \
	CASE(s, deadline_expiry)                                               \
	CASE(s, quota_never_fits)                                              \
	CASE(s, client_response_attacks)                                       \
	CASE(s, client_short_response)

HARNESS_BATTERY(reasm, REASM_CASES, .timeout = 120)
