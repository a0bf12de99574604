/* SPDX-License-Identifier: MIT */
/*
 * The transport battery, part three: the pipeline (docs/wire.md, section
 * 6).  What a received datagram makes ready leaves while the rest of it is
 * still being read, so that both ends work at once.  Every test is written
 * once and instantiated for each dataplane built in (tests/harness.h);
 * parts one and two are test_transport.c and test_reliability.c.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include <ferry/ferry.h>

#include "harness.h"
#include "transport/internal.h" /* FERRY__PIPE_CHUNK, _BUSY */

#define M_ECHO 1

/* @n echo calls of 8 bytes (call i: bytes i) in one datagram. */
static void send_calls(struct raw *rp, unsigned n)
{
	static struct ferry_w2_frame f[128];
	static uint8_t body[128][8];

	cr_assert_leq(n, 128);
	for (unsigned i = 0; i < n; i++) {
		memset(body[i], (int)i, sizeof(body[i]));
		memset(&f[i], 0, sizeof(f[i]));
		f[i].type = FERRY_W2_REQUEST;
		f[i].u.data.req_id = rp->next_req++;
		f[i].u.data.method = M_ECHO;
		f[i].u.data.bytes = body[i];
		f[i].u.data.bytes_len = sizeof(body[i]);
	}
	raw_send_frames(rp, f, n);
}

static void ep_big_busy(struct ferry_ep_config *cfg)
{
	ep_big(cfg);
	cfg->busy_poll = true;
}

/* A datagram of 64 calls is answered in pieces as its handlers run,
 * FERRY__PIPE_CHUNK answers a datagram (FERRY__PIPE_CHUNK_BUSY on a
 * busy-polling server), not in one batch after the last: the client
 * starts on the first answers meanwhile (docs/wire.md, section 6). */
static void answers_pipelined(bool busy)
{
	struct ferry_endpoint *srv = ep_new(busy ? ep_big_busy : ep_big);
	unsigned chunk = busy ? FERRY__PIPE_CHUNK_BUSY : FERRY__PIPE_CHUNK;
	unsigned dgrams = 0, resps = 0, most = 0;
	uint64_t end;
	struct raw rp;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	raw_slots = 64; /* all 64 calls outstanding at once */
	raw_connect(&rp, srv, 0x00070001, 0, NULL, 0);
	raw_slots = 16;
	send_calls(&rp, 64);
	/* Until the 64 answers are in (this peer never acknowledges, so
	 * copies sent again later are not waited for). */
	end = now_ms() + 3000;
	while (resps < 64 && now_ms() < end) {
		size_t n;

		ferry_endpoint_poll(srv, 0);
		while (resps < 64 &&
		       (n = raw_take(&rp, rp.rbuf, sizeof(rp.rbuf), NULL)) > 0) {
			struct ferry_w2_frame w;
			unsigned k = 0;

			if (!ferry__w2_is_short(rp.rbuf[0]) ||
			    !raw_open_dgram(&rp, n))
				continue;
			while (ferry__w2_iter_next(&rp.it, &w) == 1)
				k += w.type == FERRY_W2_RESPONSE;
			if (!k)
				continue;
			dgrams++;
			resps += k;
			most = k > most ? k : most;
		}
	}
	cr_assert_eq(resps, 64, "answers: %u of 64", resps);
	cr_assert_eq(most, chunk, "%u answers in one datagram", most);
	cr_assert_geq(dgrams, 64 / chunk, "%u datagrams", dgrams);
	raw_close(&rp);
	ferry_endpoint_destroy(srv);
}

static void t_answers_pipelined(void)
{
	answers_pipelined(false);
}

static void t_answers_pipelined_busy(void)
{
	answers_pipelined(true);
}

/* A datagram of more frames than the receiver keeps decoded from rule 7
 * (transport/rx.c, RX_FRAMES_KEPT): its frames are decoded again one by
 * one, and every call is answered once, with its own bytes, in order. */
static void t_more_frames_than_kept(void)
{
	enum { N = 100 };
	struct ferry_endpoint *srv = ep_new(ep_big);
	bool seen[N] = { false };
	unsigned resps = 0, next = 0;
	uint32_t first;
	uint64_t end;
	struct raw rp;

	cr_assert_eq(ferry_endpoint_register(srv, M_ECHO, echo_handler, NULL), 0);
	raw_slots = 128;
	raw_connect(&rp, srv, 0x00070002, 0, NULL, 0);
	raw_slots = 16;
	first = rp.next_req;
	send_calls(&rp, N);
	end = now_ms() + 3000;
	while (resps < N && now_ms() < end) {
		size_t n;

		ferry_endpoint_poll(srv, 0);
		while (resps < N &&
		       (n = raw_take(&rp, rp.rbuf, sizeof(rp.rbuf), NULL)) > 0) {
			struct ferry_w2_frame w;

			if (!ferry__w2_is_short(rp.rbuf[0]) ||
			    !raw_open_dgram(&rp, n))
				continue;
			while (ferry__w2_iter_next(&rp.it, &w) == 1) {
				uint32_t k = w.u.data.req_id - first;

				if (w.type != FERRY_W2_RESPONSE || k >= N ||
				    seen[k])
					continue;
				cr_assert_eq(k, next, "answer %u after %u", k,
					     next);
				cr_assert_eq(w.u.data.bytes_len, 8);
				cr_assert_eq(w.u.data.bytes[0], (uint8_t)k);
				seen[k] = true;
				next++;
				resps++;
			}
		}
	}
	cr_assert_eq(resps, N, "answers: %u of %u", resps, N);
	raw_close(&rp);
	ferry_endpoint_destroy(srv);
}

#define PIPELINE_CASES(CASE, s)                                                \
	CASE(s, answers_pipelined)                                             \
	CASE(s, answers_pipelined_busy)                                        \
	CASE(s, more_frames_than_kept)

HARNESS_BATTERY(pipeline, PIPELINE_CASES)
