/* SPDX-License-Identifier: MIT */
/*
 * test_iou_rules.c - Criterion tests for the rules of one IOU
 * (ferry/iou.h, docs/wire.md section 8, docs/wire.md 3.3 and 5.4) on
 * real endpoints: its PUSH after the call, before it (buffered), or after
 * the answer; never resolved, resolved twice (and retransmitted: a
 * duplicate by its push_id), failed; malformed PUSHes; resolve-before-
 * forward; several waits on one IOU; untrusted PUSH codes; IOU ids per
 * session.  Where a case needs frames no ferry client sends -- a PUSH
 * ahead of its call, two PUSHes for one IOU -- a raw peer speaks the wire
 * by hand.
 *
 * Every case runs on each dataplane built in (uring, and DPDK on a
 * net_ring loopback port): HARNESS_BATTERY at the end of the file.
 */
#include <criterion/criterion.h>

#include "iou_util.h"

/* ===================================================================== */
/* 1. The PUSH follows the call                                            */
/* ===================================================================== */

static void t_push_after_call_completes_the_wait(void)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new(NULL);
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_ep_stats st, ct;
	struct promise p;
	struct ferry_cap cap;
	struct reply r;
	uint8_t tok[200];

	fill_tok(tok, sizeof(tok), 1);
	promise_new(s, &p, &counted_hooks);
	cap = iou_cap(p.iou);
	call(cli, s, M_WAIT, &cap, 1, &r);
	/* The handler runs at its turn without the token and waits. */
	PUMP(cli, srv, 3000, g.dispatched == 1);
	cr_assert_eq(g.dispatched, 1, "the handler never ran");
	cr_assert_eq(g.kind0, FERRY_CAP_IOU);
	cr_assert_eq(g.peek, -EINPROGRESS);
	PUMP(cli, srv, 50, false);
	cr_assert_not(r.done);
	cr_assert_eq(g.waits, 0);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 0);

	/* Kept now, after the call went out. */
	cr_assert_eq(ferry_iou_resolve(p.iou, tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done, "the call never ended");
	cr_assert_eq(r.res, 0, "call: %s", ferry_strerror(r.res));
	cr_assert_eq(g.waits, 1);
	cr_assert_eq(g.wait_res[0], 0);
	cr_assert_eq(g.wait_len, sizeof(tok));
	cr_assert_arr_eq(g.wait_tok, tok, sizeof(tok));
	cr_assert_eq(r.len, sizeof(tok));
	cr_assert_arr_eq(r.data, tok, sizeof(tok));

	/* The client lets go of the promise once its PUSH is acknowledged;
	 * no cancel, one release. */
	PUMP(cli, srv, 3000, p.releases == 1);
	cr_assert_eq(p.releases, 1);
	cr_assert_eq(p.cancels, 0);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 1);
	cr_assert_eq(st.iou_rejected, 0);
	cr_assert_eq(st.iou_push_early, 0);
	cr_assert_eq(st.iou_dup_push, 0);
	cr_assert_eq(st.iou_bad_token, 0);
	ct = stats(cli);
	cr_assert_eq(ct.ious_promised, 1);
	cr_assert_eq(ct.ious_pushed, 1);
	cr_assert_eq(ct.ious_dropped, 0);
	ferry_session_close(s);
	cr_assert_eq(p.releases, 1);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 2. The PUSH comes first                                                 */
/* ===================================================================== */

/* A ferry client sends a PUSH only behind its call (a promise may not be
 * named once kept), so a PUSH that overtakes its call -- reordered, or
 * behind a request fragment that was lost -- is played by a raw peer. */
/* Several records in one PUSH are taken in order: a frame of two
 * buffers both, and each meets its call. */
static void push_records_in_one_frame(struct raw *r, struct ferry_endpoint *srv,
				      const uint8_t *tok2)
{
	uint8_t body[2 * FERRY_PUSH_HDR_LEN + 8];
	struct ferry_push bp = { .iou = 20, .token = tok2,
				 .token_len = 4 };
	struct ferry_hdr h;
	uint8_t out[IOU_OUT_MAX];
	uint64_t ids[1];
	uint32_t req;
	size_t len;
	int n = ferry__wire_put_push(body, sizeof(body), &bp);

	bp.iou = 21;
	n += ferry__wire_put_push(body + n, sizeof(body) - (size_t)n,
				 &bp);
	cr_assert_eq(n, (int)sizeof(body));
	raw_data_hdr(r, &h, FERRY_FT_PUSH);
	h.msg_len = sizeof(body);
	raw_send(r, &h, body, sizeof(body));
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 3);
	cr_assert_eq(stats(srv).iou_push_early, 3);
	ids[0] = 21;
	req = raw_request_ious(r, M_PEEK, ids, 1);
	cr_assert_eq(raw_result(r, srv, req, out, &len), 0);
	cr_assert_eq(len, 4);
	cr_assert_arr_eq(out, tok2, 4);
	ids[0] = 20;
	req = raw_request_ious(r, M_PEEK, ids, 1);
	cr_assert_eq(raw_result(r, srv, req, out, &len), 0);
	cr_assert_eq(len, 4);
}

/*
 * A PUSH frame whose records break the rules ends the session: on wire v2
 * the datagram is authenticated, so a malformed frame is the peer's
 * protocol error (docs/wire.md 3.3: records that do not fill the body
 * exactly, a push_id of 0), where v1 dropped the frame (drop_malformed)
 * and went on.  It buffers nothing, not even the well-formed records
 * before the bad one (all or none); the peer hears CLOSE FERRY_EPROTO.
 * Each case on a raw session of its own: @body/@n as the PUSH's records
 * under push_id @push_id.  The early pushes of @srv stay at @early.
 */
static void push_malformed_ends_session(struct ferry_endpoint *srv,
					uint32_t push_id, const uint8_t *body,
					size_t n, uint64_t early)
{
	struct ferry_w2_frame f = { .type = FERRY_W2_PUSH };
	uint64_t proto0 = stats(srv).sessions_proto_error;
	uint64_t mal0 = stats(srv).drop_malformed;
	uint8_t buf[RAW_FRAME_MAX];
	struct ferry_frame fr;
	struct raw r;

	raw_connect_iou(&r, srv);
	f.u.push.push_id = push_id;
	f.u.push.recs = body;
	f.u.push.recs_len = (uint16_t)n;
	raw_send_frames(&r, &f, 1);
	cr_assert(raw_recv(&r, srv, FERRY_FT_CLOSE, 0, &fr, buf, sizeof(buf)),
		  "no CLOSE for a malformed PUSH");
	cr_assert_eq(fr.h.msg_len, FERRY_EPROTO);
	cr_assert_eq(stats(srv).sessions_proto_error, proto0 + 1);
	cr_assert_eq(stats(srv).drop_malformed, mal0 + 1);
	cr_assert_eq(stats(srv).iou_push_early, early, "a record was buffered");
	raw_close(&r);
}

static void t_push_before_call_is_buffered(void)
{
	struct ferry_endpoint *srv = server_new();
	struct ferry_ep_stats st;
	struct raw r;
	uint8_t tok[77], tok2[33], out[IOU_OUT_MAX];
	uint64_t ids[2];
	uint32_t req;
	size_t len;

	fill_tok(tok, sizeof(tok), 2);
	fill_tok(tok2, sizeof(tok2), 3);
	raw_connect_iou(&r, srv);
	raw_push(&r, 7, 0, tok, sizeof(tok));
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 1);
	st = stats(srv);
	cr_assert_eq(st.iou_push_early, 1);
	/* Buffered, not yet an IOU of any call. */
	cr_assert_eq(st.iou_created, 0);
	cr_assert_eq(st.iou_resolved, 0);

	/* The call that names it finds the token there at once. */
	ids[0] = 7;
	req = raw_request_ious(&r, M_PEEK, ids, 1);
	cr_assert_eq(raw_result(&r, srv, req, out, &len), 0);
	cr_assert_eq(g.kind0, FERRY_CAP_IOU);
	cr_assert_eq(g.peek, 0);
	cr_assert_eq(len, sizeof(tok));
	cr_assert_arr_eq(out, tok, sizeof(tok));
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 1);
	cr_assert_eq(st.iou_push_dropped, 0);

	push_records_in_one_frame(&r, srv, tok2);

	/* Two more early: one token, one error.  Resolve-before-forward
	 * then completes before ferry_call_caps_ready returns, with the
	 * error. */
	raw_push(&r, 8, 0, tok2, sizeof(tok2));
	raw_push(&r, 9, EPERM, NULL, 0);
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 5);
	cr_assert_eq(stats(srv).iou_push_early, 5);
	ids[0] = 8;
	ids[1] = 9;
	req = raw_request_ious(&r, M_READY, ids, 2);
	cr_assert_eq(raw_result(&r, srv, req, out, &len), EPERM);
	cr_assert_eq(g.readies, 1);
	cr_assert_eq(g.ready_res[0], -EPERM);
	cr_assert(g.ready_in_handler[0], "it should complete at once");
	st = stats(srv);
	cr_assert_eq(st.iou_created, 5);
	cr_assert_eq(st.iou_resolved, 4);
	cr_assert_eq(st.iou_rejected, 1);
	cr_assert_eq(st.iou_push_dropped, 0);
	cr_assert_eq(ferry__ep_stats_drops(&st), 0);
	cr_assert_eq(st.sessions_proto_error, 0);

	/* Malformed PUSHes, each on a session of its own: a nonzero
	 * reserved field in the only record; in the second of two (the
	 * first, well-formed, is not taken either); push_id 0. */
	{
		uint8_t body[2 * FERRY_PUSH_HDR_LEN + 8];
		struct ferry_push bp = { .iou = 30, .token = tok2,
					 .token_len = 4 };
		int n = ferry__wire_put_push(body, sizeof(body), &bp);

		bp.iou = 31;
		n += ferry__wire_put_push(body + n, sizeof(body) - (size_t)n,
					 &bp);
		cr_assert_eq(n, (int)sizeof(body));
		body[15] = 1; /* the first record's reserved */
		push_malformed_ends_session(srv, 1, body, sizeof(body) / 2, 5);
		body[15] = 0;
		body[sizeof(body) - 5] = 1; /* the second record's */
		push_malformed_ends_session(srv, 1, body, sizeof(body), 5);
		body[sizeof(body) - 5] = 0;
		push_malformed_ends_session(srv, 0, body, sizeof(body), 5);
	}
	/* The first session never noticed: it still pushes and calls. */
	raw_push(&r, 10, 0, tok, sizeof(tok));
	ids[0] = 10;
	req = raw_request_ious(&r, M_PEEK, ids, 1);
	cr_assert_eq(raw_result(&r, srv, req, out, &len), 0);
	cr_assert_eq(len, sizeof(tok));
	cr_assert_arr_eq(out, tok, sizeof(tok));
	cr_assert_eq(stats(srv).sessions_proto_error, 3);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 3. The PUSH comes after the call was answered                           */
/* ===================================================================== */

/* The handler answers without waiting; the later PUSH still settles the
 * IOU.  Small IOU pools on both sides, used many times over, show that
 * promises and table entries are given back. */
static void t_push_after_answer_still_settles(void)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st, ct;
	enum { IOU_MAX = 4, ROUNDS = 3 * IOU_MAX };

	ep_config(&cfg);
	cfg.iou_max = IOU_MAX;
	srv = server_make(&cfg);
	cli = ep_make(&cfg);
	s = open_session(cli, srv);
	for (unsigned i = 0; i < ROUNDS; i++) {
		struct promise p;
		struct ferry_cap cap;
		struct reply r;
		uint8_t tok[40];

		fill_tok(tok, sizeof(tok), 100 + i);
		promise_new(s, &p, &release_only_hooks);
		cap = iou_cap(p.iou);
		call(cli, s, M_PEEK, &cap, 1, &r);
		PUMP(cli, srv, 3000, r.done);
		cr_assert(r.done);
		cr_assert_eq(r.res, -EINPROGRESS, "round %u: %s", i,
			     ferry_strerror(r.res));
		cr_assert_eq(stats(srv).iou_resolved, i);
		cr_assert_eq(ferry_iou_resolve(p.iou, tok, sizeof(tok)), 0);
		PUMP(cli, srv, 3000,
		     stats(srv).iou_resolved == i + 1 && p.releases == 1);
		cr_assert_eq(stats(srv).iou_resolved, i + 1, "round %u", i);
		cr_assert_eq(p.releases, 1, "round %u", i);
	}
	st = stats(srv);
	cr_assert_eq(st.iou_created, ROUNDS);
	cr_assert_eq(st.iou_resolved, ROUNDS);
	cr_assert_eq(st.iou_rejected, 0);
	cr_assert_eq(st.iou_push_early, 0);
	cr_assert_eq(st.iou_push_dropped, 0);
	cr_assert_eq(st.calls_iou_refused, 0);
	ct = stats(cli);
	cr_assert_eq(ct.ious_promised, ROUNDS);
	cr_assert_eq(ct.ious_pushed, ROUNDS);
	/* Every promise came back: the pool holds IOU_MAX again. */
	{
		struct ferry_iou *ious[IOU_MAX + 1];

		for (unsigned i = 0; i < IOU_MAX; i++)
			cr_assert_eq(ferry_iou_new(s, NULL, NULL, &ious[i]), 0);
		cr_assert_eq(ferry_iou_new(s, NULL, NULL, &ious[IOU_MAX]),
			     -ENOBUFS);
		for (unsigned i = 0; i < IOU_MAX; i++)
			cr_assert_eq(ferry_iou_cancel(ious[i]), 0);
	}
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 4. Never resolved                                                       */
/* ===================================================================== */

static void t_never_resolved_times_out(void)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *srv, *cli;
	struct ferry_session *s;
	struct ferry_ep_stats st;
	struct ferry_call *c;
	struct promise p;
	struct ferry_cap cap;
	struct reply r;
	uint64_t t0, waited;

	ep_config(&cfg);
	cfg.iou_timeout_ms = 200;
	srv = server_make(&cfg);
	cli = ep_new(NULL);
	s = open_session(cli, srv);
	promise_new(s, &p, &counted_hooks);
	cap = iou_cap(p.iou);
	call(cli, s, M_HOLDWAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.nheld == 1);
	cr_assert_eq(g.nheld, 1);
	t0 = now_ms();
	PUMP(cli, srv, 3000, g.waits == 1);
	waited = now_ms() - t0;
	cr_assert_eq(g.waits, 1, "the wait never ended");
	cr_assert_eq(g.wait_res[0], -ETIMEDOUT, "wait: %s",
		     ferry_strerror(g.wait_res[0]));
	/* Not before its time (the deadline counts from the call's
	 * arrival, a little before t0), nor much after. */
	cr_assert_geq(waited, 150, "timed out after %llu ms",
		      (unsigned long long)waited);
	cr_assert_leq(waited, 1000, "timed out after %llu ms",
		      (unsigned long long)waited);
	st = stats(srv);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_rejected, 1);
	cr_assert_eq(st.iou_timed_out, 1);
	cr_assert_eq(st.iou_resolved, 0);

	/* Later uses report it, at once. */
	c = g.held[0];
	cr_assert_eq(ferry_call_cap(c, 0, NULL, NULL), -ETIMEDOUT);
	g_late_calls = 0;
	cr_assert_eq(ferry_call_cap_wait(c, 0, late_wait, NULL), 0);
	cr_assert_eq(g_late_calls, 1, "a wait on a rejected IOU ends at once");
	cr_assert_eq(g_late_res, -ETIMEDOUT);
	cr_assert_eq(ferry_call_caps_ready(c, late_ready, NULL), 0);
	cr_assert_eq(g_late_calls, 2);
	cr_assert_eq(g_late_res, -ETIMEDOUT);
	cr_assert_eq(ferry_call_respond_error(c, -ETIMEDOUT), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(r.res, -ETIMEDOUT);

	/* The promise is named: it cannot be taken back, only kept.  Kept
	 * late, it changes nothing on the server. */
	cr_assert_eq(ferry_iou_cancel(p.iou), -EBUSY);
	cr_assert_eq(ferry_iou_resolve(p.iou, "late", 4), 0);
	PUMP(cli, srv, 3000, p.releases == 1);
	cr_assert_eq(p.releases, 1);
	cr_assert_eq(p.cancels, 0);
	st = stats(srv);
	cr_assert_eq(st.iou_resolved, 0);
	cr_assert_eq(st.iou_rejected, 1);
	cr_assert_eq(st.iou_timed_out, 1);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 5. Resolved twice                                                       */
/* ===================================================================== */

/* Two PUSHes (two push_ids: not a network duplicate) for one IOU, with
 * different tokens, while the call that names it is still unanswered:
 * the first stands, the second is counted (iou_dup_push) and ignored.
 * Wire v2 tells them from a retransmission: a PUSH frame sent again keeps
 * its push_id (docs/wire.md 3.3 and 5.4), and a copy of one already
 * taken is a duplicate (drop_duplicate), never a second push. */
static void t_second_push_is_counted_and_ignored(void)
{
	struct ferry_endpoint *srv = server_new();
	struct ferry_ep_stats st;
	struct raw r;
	uint8_t first[50], second[50], out[IOU_OUT_MAX];
	const void *tok;
	size_t len;
	uint64_t id = 0x0102030405060708ull, dup0;
	uint32_t req;

	fill_tok(first, sizeof(first), 10);
	fill_tok(second, sizeof(second), 11);
	raw_connect_iou(&r, srv);
	req = raw_request_ious(&r, M_HOLDWAIT, &id, 1);
	PUMP(NULL, srv, 2000, g.nheld == 1);
	cr_assert_eq(g.nheld, 1);
	dup0 = stats(srv).drop_duplicate;
	raw_push(&r, id, 0, first, sizeof(first));
	cr_assert_eq(r.push_id, 1);
	PUMP(NULL, srv, 2000, stats(srv).iou_resolved == 1);
	/* The first PUSH again, as a retransmission: a duplicate. */
	raw_push_as(&r, 1, id, 0, first, sizeof(first));
	PUMP(NULL, srv, 2000, stats(srv).drop_duplicate == dup0 + 1);
	st = stats(srv);
	cr_assert_eq(st.drop_duplicate, dup0 + 1);
	cr_assert_eq(st.iou_dup_push, 0, "a retransmission is no second push");
	/* A second PUSH (push_id 2) for the same IOU: counted. */
	raw_push(&r, id, 0, second, sizeof(second));
	PUMP(NULL, srv, 2000, stats(srv).iou_dup_push == 1);
	/* ...and its retransmission, a duplicate again. */
	raw_push_as(&r, 2, id, 0, second, sizeof(second));
	PUMP(NULL, srv, 2000, stats(srv).drop_duplicate == dup0 + 2);
	st = stats(srv);
	cr_assert_eq(st.iou_dup_push, 1);
	cr_assert_eq(st.drop_duplicate, dup0 + 2);
	cr_assert_eq(st.iou_created, 1);
	cr_assert_eq(st.iou_resolved, 1);
	cr_assert_eq(st.iou_rejected, 0);
	cr_assert_eq(st.iou_push_early, 0);
	/* The wait got the first; so does every later use. */
	cr_assert_eq(g.waits, 1);
	cr_assert_eq(g.wait_res[0], 0);
	cr_assert_eq(g.wait_len, sizeof(first));
	cr_assert_arr_eq(g.wait_tok, first, sizeof(first));
	cr_assert_eq(ferry_call_cap(g.held[0], 0, &tok, &len), 0);
	cr_assert_eq(len, sizeof(first));
	cr_assert_arr_eq(tok, first, sizeof(first));
	respond_bytes(g.held[0], tok, len);
	cr_assert_eq(raw_result(&r, srv, req, out, &len), 0);
	cr_assert_eq(len, sizeof(first));
	cr_assert_arr_eq(out, first, sizeof(first));

	/* Reordered PUSHes are new, each once: push_id 4 before 3 (early
	 * pushes for IOUs 40 and 41), then 3 again. */
	raw_push_as(&r, 4, 40, 0, first, sizeof(first));
	raw_push_as(&r, 3, 41, 0, second, sizeof(second));
	PUMP(NULL, srv, 2000, stats(srv).iou_push_early == 2);
	cr_assert_eq(stats(srv).iou_push_early, 2);
	raw_push_as(&r, 3, 41, 0, second, sizeof(second));
	PUMP(NULL, srv, 2000, stats(srv).drop_duplicate == dup0 + 3);
	st = stats(srv);
	cr_assert_eq(st.drop_duplicate, dup0 + 3);
	cr_assert_eq(st.iou_push_early, 2);
	cr_assert_eq(st.iou_dup_push, 1);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 9. A broken promise                                                     */
/* ===================================================================== */

static void t_fail_reaches_the_wait(void)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new(NULL);
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_iou *iou;
	struct ferry_cap cap;
	struct reply r;

	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	cap = iou_cap(iou);
	call(cli, s, M_WAIT, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.dispatched == 1);
	cr_assert_eq(ferry_iou_fail(iou, -EACCES), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.waits, 1);
	cr_assert_eq(g.wait_res[0], -EACCES);
	cr_assert_eq(r.res, -EACCES);

	/* Not a negative code: -EIO. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &iou), 0);
	cap = iou_cap(iou);
	call(cli, s, M_WAIT, &cap, 1, &r);
	cr_assert_eq(ferry_iou_fail(iou, 5), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.wait_res[1], -EIO);
	cr_assert_eq(r.res, -EIO);
	cr_assert_eq(stats(srv).iou_rejected, 2);
	cr_assert_eq(stats(srv).iou_resolved, 0);
	cr_assert_eq(stats(srv).iou_bad_token, 0);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* 10. Resolve before forward                                              */
/* ===================================================================== */

static void t_caps_ready_resolves_before_forward(void)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new(NULL);
	struct ferry_session *s = open_session(cli, srv);
	struct ferry_iou *a, *b, *c, *d;
	struct ferry_cap caps[3];
	struct reply r;
	uint8_t t0[30], ta[31], tb[32], tc[33];
	const uint8_t *want[3] = { t0, ta, tb };
	const size_t wlen[3] = { sizeof(t0), sizeof(ta), sizeof(tb) };

	fill_tok(t0, sizeof(t0), 20);
	fill_tok(ta, sizeof(ta), 21);
	fill_tok(tb, sizeof(tb), 22);
	fill_tok(tc, sizeof(tc), 23);

	/* A ready token and two IOUs: complete only once both resolve. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &a), 0);
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &b), 0);
	caps[0] = tok_cap(t0, sizeof(t0));
	caps[1] = iou_cap(a);
	caps[2] = iou_cap(b);
	call(cli, s, M_READY, caps, 3, &r);
	PUMP(cli, srv, 3000, g.dispatched == 1);
	cr_assert_eq(g.dispatched, 1);
	cr_assert_eq(g.readies, 0);
	cr_assert_eq(ferry_iou_resolve(b, tb, sizeof(tb)), 0);
	PUMP(cli, srv, 3000, stats(srv).iou_resolved == 1);
	cr_assert_eq(stats(srv).iou_resolved, 1);
	PUMP(cli, srv, 50, false);
	cr_assert_eq(g.readies, 0, "completed with an IOU still pending");
	cr_assert_eq(ferry_iou_resolve(a, ta, sizeof(ta)), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.readies, 1);
	cr_assert_eq(g.ready_res[0], 0);
	cr_assert_not(g.ready_in_handler[0]);
	cr_assert_eq(r.res, 0);
	check_ready_reply(&r, want, wlen, 3);

	/* The first rejection completes it at once, the other IOU still
	 * pending; that one settling later changes nothing. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &c), 0);
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &d), 0);
	caps[0] = iou_cap(c);
	caps[1] = iou_cap(d);
	call(cli, s, M_READY, caps, 2, &r);
	PUMP(cli, srv, 3000, g.dispatched == 2);
	cr_assert_eq(ferry_iou_fail(d, -EPERM), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert(r.done);
	cr_assert_eq(g.readies, 2);
	cr_assert_eq(g.ready_res[1], -EPERM);
	cr_assert_eq(r.res, -EPERM);
	cr_assert_eq(stats(srv).iou_resolved, 2);
	cr_assert_eq(ferry_iou_resolve(c, tc, sizeof(tc)), 0);
	PUMP(cli, srv, 3000, stats(srv).iou_resolved == 3);
	cr_assert_eq(stats(srv).iou_resolved, 3);
	PUMP(cli, srv, 50, false);
	cr_assert_eq(g.readies, 2, "completed twice");

	/* No IOU in the table, or no table: complete before returning. */
	caps[0] = tok_cap(t0, sizeof(t0));
	call(cli, s, M_READY, caps, 1, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(g.readies, 3);
	cr_assert_eq(g.ready_res[2], 0);
	cr_assert(g.ready_in_handler[2]);
	check_ready_reply(&r, want, wlen, 1);
	call(cli, s, M_READY, NULL, 0, &r);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(g.readies, 4);
	cr_assert_eq(g.ready_res[3], 0);
	cr_assert(g.ready_in_handler[3]);
	ferry_session_close(s);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Waits: several on one IOU, and outliving their call                     */
/* ===================================================================== */

struct wrec {
	unsigned n;
	int res;
	uint8_t tok[64];
	size_t len;
};

static void wrec_fn(int res, const void *tok, size_t len, void *ctx)
{
	struct wrec *w = ctx;

	w->n++;
	w->res = res;
	w->len = len;
	if (res == 0 && tok) {
		cr_assert_leq(len, sizeof(w->tok));
		memcpy(w->tok, tok, len);
	}
}

static void wrec_ready(int res, void *ctx)
{
	wrec_fn(res, NULL, 0, ctx);
}

static void t_waits_share_an_iou_and_outlive_the_call(void)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new(NULL);
	struct ferry_session *s = open_session(cli, srv);
	struct wrec w1 = { 0 }, w2 = { 0 }, w3 = { 0 }, w4 = { 0 };
	struct ferry_iou *a, *b;
	struct ferry_cap cap;
	struct reply r;
	uint8_t tok[20];

	fill_tok(tok, sizeof(tok), 70);
	/* Three waits on one pending IOU, the call answered at once: every
	 * wait still completes, once, with the token. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &a), 0);
	cap = iou_cap(a);
	call(cli, s, M_HOLD, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.nheld == 1);
	cr_assert_eq(g.nheld, 1);
	cr_assert_eq(ferry_call_cap_wait(g.held[0], 0, wrec_fn, &w1), 0);
	cr_assert_eq(ferry_call_cap_wait(g.held[0], 0, wrec_fn, &w2), 0);
	cr_assert_eq(ferry_call_caps_ready(g.held[0], wrec_ready, &w3), 0);
	cr_assert_eq(ferry_call_respond_error(g.held[0], -EIO), 0);
	PUMP(cli, srv, 3000, r.done);
	cr_assert_eq(r.res, -EIO);
	cr_assert_eq(w1.n + w2.n + w3.n, 0);
	cr_assert_eq(ferry_iou_resolve(a, tok, sizeof(tok)), 0);
	PUMP(cli, srv, 3000, w1.n && w2.n && w3.n);
	PUMP(cli, srv, 20, false);
	cr_assert_eq(w1.n, 1);
	cr_assert_eq(w2.n, 1);
	cr_assert_eq(w3.n, 1);
	cr_assert_eq(w1.res, 0);
	cr_assert_eq(w2.res, 0);
	cr_assert_eq(w3.res, 0);
	cr_assert_eq(w1.len, sizeof(tok));
	cr_assert_arr_eq(w1.tok, tok, sizeof(tok));
	cr_assert_arr_eq(w2.tok, tok, sizeof(tok));
	cr_assert_eq(stats(srv).iou_resolved, 1);

	/* A wait that outlives its call, and then its session. */
	cr_assert_eq(ferry_iou_new(s, NULL, NULL, &b), 0);
	cap = iou_cap(b);
	call(cli, s, M_HOLD, &cap, 1, &r);
	PUMP(cli, srv, 3000, g.nheld == 2);
	cr_assert_eq(ferry_call_cap_wait(g.held[1], 0, wrec_fn, &w4), 0);
	cr_assert_eq(ferry_call_respond_error(g.held[1], -EIO), 0);
	PUMP(cli, srv, 3000, r.done);
	ferry_session_close(s);
	PUMP(cli, srv, 3000, w4.n == 1);
	cr_assert_eq(w4.n, 1);
	cr_assert_eq(w4.res, -ECONNRESET);
	cr_assert_eq(stats(srv).iou_rejected, 1);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* Untrusted PUSH codes                                                    */
/* ===================================================================== */

/* The code is a peer's 32-bit value: one that is no positive int (bit 31
 * set) must still reject the IOU with a negative error, never pass for a
 * resolution, and never overflow. */
static void t_push_code_out_of_range_still_rejects(void)
{
	struct ferry_endpoint *srv = server_new();
	static const uint32_t codes[] = { 0xffffffffu, 0x80000000u,
					  0x80000001u };
	struct ferry_ep_stats st;
	struct raw r;
	uint8_t out[IOU_OUT_MAX];
	size_t len;

	raw_connect_iou(&r, srv);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t id = 500 + i;
		uint32_t req = raw_request_ious(&r, M_READY, &id, 1);
		uint32_t code;

		PUMP(NULL, srv, 2000, g.dispatched == i + 1);
		cr_assert_eq(g.dispatched, i + 1);
		raw_push(&r, id, codes[i], NULL, 0);
		code = raw_result(&r, srv, req, out, &len);
		cr_assert_eq(g.readies, i + 1);
		cr_assert_lt(g.ready_res[i], 0, "code 0x%x: ready with %d",
			     codes[i], g.ready_res[i]);
		cr_assert_neq(code, 0, "code 0x%x: answered as resolved",
			      codes[i]);
	}
	st = stats(srv);
	cr_assert_eq(st.iou_rejected, 3);
	cr_assert_eq(st.iou_resolved, 0);
	raw_close(&r);
	ferry_endpoint_destroy(srv);
}

/* ===================================================================== */
/* IOU ids are per session                                                 */
/* ===================================================================== */

/* Two sessions of one client number their IOUs alike; the server keeps
 * each session's apart. */
static void t_ious_are_per_session(void)
{
	struct ferry_endpoint *srv = server_new(), *cli = ep_new(NULL);
	struct ferry_session *s1 = open_session(cli, srv);
	struct ferry_session *s2 = open_session(cli, srv);
	struct ferry_iou *a, *b;
	struct ferry_cap cap;
	struct reply ra, rb;
	uint8_t ta[24], tb[24];

	fill_tok(ta, sizeof(ta), 80);
	fill_tok(tb, sizeof(tb), 81);
	cr_assert_eq(ferry_iou_new(s1, NULL, NULL, &a), 0);
	cr_assert_eq(ferry_iou_new(s2, NULL, NULL, &b), 0);
	cr_assert_eq(ferry_iou_id(a), ferry_iou_id(b));
	cap = iou_cap(a);
	call(cli, s1, M_WAIT, &cap, 1, &ra);
	cap = iou_cap(b);
	call(cli, s2, M_WAIT, &cap, 1, &rb);
	PUMP(cli, srv, 3000, g.dispatched == 2);
	cr_assert_eq(g.dispatched, 2);
	cr_assert_eq(ferry_iou_resolve(b, tb, sizeof(tb)), 0);
	PUMP(cli, srv, 3000, rb.done);
	cr_assert(rb.done);
	cr_assert_not(ra.done, "s2's PUSH resolved s1's IOU");
	cr_assert_eq(ferry_iou_resolve(a, ta, sizeof(ta)), 0);
	PUMP(cli, srv, 3000, ra.done);
	cr_assert_eq(ra.res, 0);
	cr_assert_eq(rb.res, 0);
	cr_assert_arr_eq(ra.data, ta, sizeof(ta));
	cr_assert_arr_eq(rb.data, tb, sizeof(tb));
	cr_assert_eq(stats(srv).iou_resolved, 2);
	cr_assert_eq(stats(srv).iou_push_early, 0);
	ferry_session_close(s1);
	ferry_session_close(s2);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
}

/* --- the battery, per dataplane ------------------------------------------ */

#define IOU_RULES_CASES(CASE, s)                                               \
	CASE(s, push_after_call_completes_the_wait)                            \
	CASE(s, push_before_call_is_buffered)                                  \
	CASE(s, push_after_answer_still_settles)                               \
	CASE(s, never_resolved_times_out)                                      \
	CASE(s, second_push_is_counted_and_ignored)                            \
	CASE(s, fail_reaches_the_wait)                                         \
	CASE(s, caps_ready_resolves_before_forward)                            \
	CASE(s, waits_share_an_iou_and_outlive_the_call)                       \
	CASE(s, push_code_out_of_range_still_rejects)                          \
	CASE(s, ious_are_per_session)

HARNESS_BATTERY(iou_rules, IOU_RULES_CASES, .timeout = 60)
