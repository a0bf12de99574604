/* SPDX-License-Identifier: MIT */
/*
 * The dataplane's transmit descriptor and the uring dataplane's GSO and
 * GRO, tested below the transport: two instances of the dataplane under
 * test (uring on loopback, DPDK on the harness's net_ring port) send each
 * other datagrams made of a copied area, several lent pieces and a
 * trailer, and the receiver checks every byte, every datagram boundary
 * and the order; every piece's cookie must come back exactly once.
 */
#include <arpa/inet.h>

#include "harness.h"

#define NDG 64     /* datagrams per burst, at most */
#define SEG 1472   /* a full datagram of a train */

/* How often each cookie was given back; a cookie is a pointer into it. */
static int done_count[NDG * FERRY_DP_PIECES_MAX];

static void count_done(void *ctx, void *cookie)
{
	(void)ctx;
	(*(int *)cookie)++;
}

struct peer {
	const struct ferry_dp_ops *ops;
	struct ferry_dp *dp;
	struct ferry_addr addr;
	uint8_t *mem; /* its payload memory (->mem_alloc) */
};

static void peer_open(struct peer *p, uint32_t rx_bufs, bool no_gso,
		      bool no_gro, bool gso_fail)
{
	struct ferry_dp_conf dc = { 0 };
	int ret;

	memset(p, 0, sizeof(*p));
	p->ops = ferry__dp_find(dp_name);
	cr_assert_not_null(p->ops);
	dc.bind_addr = "127.0.0.1";
	dc.max_frame = 9000;
	dc.rx_bufs = rx_bufs;
	dc.tx_slots = 256;
	dc.zc_threshold = 4096;
	dc.mem_bytes = 1 << 20;
	dc.dpdk_eal = dp_eal;
	dc.dpdk_port = -1;
	dc.tx_done = count_done;
	dc.no_gso = no_gso;
	dc.no_gro = no_gro;
	dc.test_gso_fail = gso_fail;
	ret = p->ops->open(&dc, &p->dp);
	cr_assert_eq(ret, 0, "open: %s", strerror(-ret));
	cr_assert_eq(p->ops->local_addr(p->dp, &p->addr), 0);
	p->addr.ip = htonl(0x7f000001);
	p->mem = p->ops->mem_alloc(p->dp, 1 << 20);
	cr_assert_not_null(p->mem);
}

static struct ferry_dp_stats peer_stats(struct peer *p)
{
	struct ferry_dp_stats st;

	p->ops->stats(p->dp, &st);
	return st;
}

/* The byte at offset @i of datagram @d. */
static uint8_t pattern(unsigned d, unsigned i)
{
	return (uint8_t)(d * 131 + i * 7 + (i >> 8));
}

/*
 * Datagram @d of @len bytes as a descriptor: a copied area of @hdr bytes,
 * then @np pieces cut from the rest (big ones from the payload memory,
 * so that DPDK chains them; the rest from @heap), then @trl bytes of
 * trailer.  Every piece has a cookie in done_count.
 */
static void build(struct peer *p, struct ferry_dp_tx *t, const struct peer *to,
		  unsigned d, uint32_t len, uint32_t hdr, unsigned np,
		  uint32_t trl, uint8_t *heap, uint8_t *hdrbuf)
{
	uint32_t mid = len - hdr - trl, off = 0;
	uint8_t *mem = p->mem + (size_t)d * 9000;

	memset(t, 0, sizeof(*t));
	t->dst = to->addr;
	for (uint32_t i = 0; i < hdr; i++)
		hdrbuf[i] = pattern(d, i);
	t->hdr = hdrbuf;
	t->hdr_len = hdr;
	t->npieces = np;
	for (unsigned k = 0; k < np; k++) {
		/* Alternate small and large pieces; the last takes the rest. */
		uint32_t plen = k + 1 == np ? mid - off
					    : (k & 1 ? 40 : (mid / np) + 100);
		uint8_t *src = (k & 1) ? heap + off : mem + off;

		if (plen > mid - off)
			plen = mid - off;
		for (uint32_t i = 0; i < plen; i++)
			src[i] = pattern(d, hdr + off + i);
		t->piece[k].ptr = src;
		t->piece[k].len = plen;
		t->piece[k].cookie = &done_count[d * FERRY_DP_PIECES_MAX + k];
		off += plen;
	}
	t->trailer_len = (uint8_t)trl;
	for (uint32_t i = 0; i < trl; i++)
		t->trailer[i] = pattern(d, hdr + mid + i);
	cr_assert_eq(ferry_dp_tx_len(t), len);
}

/* Receive @n datagrams at @r, at most @hold lent at once, checking each
 * against datagram first+i of length lens[i]; while waiting, turn @s so
 * its transmits complete. */
static void expect(struct peer *r, struct peer *s, unsigned first, unsigned n,
		   const uint32_t *lens, unsigned hold)
{
	struct ferry_dp_pkt pkts[NDG];
	unsigned got = 0, lent = 0, spins = 0;
	uint32_t ids[NDG];

	while (got < n) {
		unsigned k = r->ops->rx_burst(r->dp, pkts, NDG);

		s->ops->rx_burst(s->dp, NULL, 0);
		s->ops->flush(s->dp);
		for (unsigned i = 0; i < k; i++, got++) {
			unsigned d = first + got;

			cr_assert_lt(got, n, "more datagrams than sent");
			cr_assert_eq(pkts[i].len, lens[got],
				     "datagram %u: %u bytes, sent %u", got,
				     pkts[i].len, lens[got]);
			for (uint32_t b = 0; b < pkts[i].len; b++)
				cr_assert_eq(pkts[i].data[b], pattern(d, b),
					     "datagram %u byte %u", got, b);
			ids[lent++] = pkts[i].id;
		}
		cr_assert_leq(lent, hold, "%u lent at once, %u allowed", lent,
			      hold);
		for (unsigned i = 0; i < lent; i++)
			r->ops->rx_release(r->dp, ids[i]);
		lent = 0;
		if (k == 0) {
			r->ops->wait(r->dp, 1000000);
			cr_assert_lt(++spins, 5000, "got %u of %u", got, n);
		}
	}
}

/* Turn @s until every cookie of datagrams [0, n) has come back. */
static void expect_done(struct peer *s, unsigned n, unsigned np)
{
	for (unsigned spins = 0;; spins++) {
		unsigned left = 0;

		for (unsigned d = 0; d < n; d++)
			for (unsigned k = 0; k < np; k++)
				left += done_count[d * FERRY_DP_PIECES_MAX + k] == 0;
		if (!left)
			break;
		cr_assert_lt(spins, 5000, "%u cookies never given back", left);
		s->ops->rx_burst(s->dp, NULL, 0);
		s->ops->flush(s->dp);
		s->ops->wait(s->dp, 1000000);
	}
	for (unsigned d = 0; d < n; d++)
		for (unsigned k = 0; k < np; k++)
			cr_assert_eq(done_count[d * FERRY_DP_PIECES_MAX + k], 1,
				     "datagram %u piece %u: tx_done %d times", d,
				     k, done_count[d * FERRY_DP_PIECES_MAX + k]);
}

static uint8_t heap[NDG][9000], hdrs[NDG][9000];
static struct ferry_dp_tx txs[NDG];

/* Send @n datagrams of @len bytes each (the last @last) in one burst of
 * descriptors with @np pieces; check they arrive intact and in order,
 * and that every cookie comes back once. */
static void send_check(struct peer *s, struct peer *r, unsigned n,
		       uint32_t len, uint32_t last, unsigned np, unsigned hold)
{
	uint32_t lens[NDG];

	memset(done_count, 0, sizeof(done_count));
	for (unsigned d = 0; d < n; d++) {
		lens[d] = d + 1 == n ? last : len;
		build(s, &txs[d], r, d, lens[d], 48 + d % 5, np,
		      d % 3 ? 16 : 0, heap[d], hdrs[d]);
	}
	cr_assert_eq(s->ops->tx_burst(s->dp, txs, n), n);
	cr_assert_eq(s->ops->flush(s->dp), 0);
	expect(r, s, 0, n, lens, hold);
	expect_done(s, n, np);
}

static void close_both(struct peer *a, struct peer *b)
{
	a->ops->close(a->dp);
	b->ops->close(b->dp);
}

/* Datagrams of 1 to 8 pieces, sizes from tiny to jumbo, arrive byte for
 * byte; each piece's tx_done runs exactly once. */
static void t_pieces_byte_exact(void)
{
	struct peer s, r;

	peer_open(&s, 256, true, true, false);
	peer_open(&r, 256, true, true, false);
	for (unsigned np = 1; np <= FERRY_DP_PIECES_MAX; np++) {
		send_check(&s, &r, 6, 1400, 1200, np, NDG);
		send_check(&s, &r, 3, 8000, 7000, np, NDG);
		send_check(&s, &r, 4, 200, 100, np, NDG);
	}
	/* DPDK chains the large pieces from its registered memory, within
	 * the port's segment limit, and copies the small ones. */
	if (strcmp(dp_name, "dpdk") == 0) {
		struct ferry_dp_stats st = peer_stats(&s);

		cr_expect_gt(st.tx_extbuf, 0);
		cr_expect_gt(st.tx_copied, 0);
		cr_expect_geq(s.ops->max_pieces(s.dp), 1);
	}
	close_both(&s, &r);
}

/* A descriptor filled the single-body way (body, body_len, cookie; no
 * npieces) still sends its body and gives its cookie back. */
static void t_single_body_compat(void)
{
	struct peer s, r;
	struct ferry_dp_tx t = { 0 };
	uint32_t len = 3000;

	peer_open(&s, 256, true, true, false);
	peer_open(&r, 256, true, true, false);
	memset(done_count, 0, sizeof(done_count));
	for (uint32_t i = 0; i < len; i++)
		(i < 100 ? hdrs[0] : s.mem)[i < 100 ? i : i - 100] = pattern(0, i);
	t.dst = r.addr;
	t.hdr = hdrs[0];
	t.hdr_len = 100;
	t.body = s.mem;
	t.body_len = len - 100;
	t.cookie = &done_count[0];
	cr_assert_eq(s.ops->tx_burst(s.dp, &t, 1), 1);
	s.ops->flush(s.dp);
	expect(&r, &s, 0, 1, &len, NDG);
	expect_done(&s, 1, 1);
	close_both(&s, &r);
}

/* A datagram may be all copied area, up to max_frame (wire v2 coalesces
 * a path frame of small frames there), with or without a trailer. */
static void t_all_copied(void)
{
	uint32_t lens[2] = { 9000, 8000 };
	struct peer s, r;

	peer_open(&s, 256, true, true, false);
	peer_open(&r, 256, true, true, false);
	/* The largest this instance carries (DPDK: its link's MTU). */
	if (s.ops->max_frame)
		lens[0] = s.ops->max_frame(s.dp);
	memset(done_count, 0, sizeof(done_count));
	build(&s, &txs[0], &r, 0, lens[0], lens[0], 1, 0, heap[0], hdrs[0]);
	build(&s, &txs[1], &r, 1, lens[1], lens[1] - 16, 1, 16, heap[1],
	      hdrs[1]);
	cr_assert_eq(s.ops->tx_burst(s.dp, txs, 2), 2);
	s.ops->flush(s.dp);
	expect(&r, &s, 0, 2, lens, NDG);
	expect_done(&s, 2, 1);
	close_both(&s, &r);
}

/* A burst of full datagrams to one peer with a shorter last one: on uring
 * one GSO send; the receiver, with GRO on, gets it in one buffer and
 * splits it back; with GRO off the kernel splits it.  Either way the
 * receiver sees the datagrams that were sent, in order. */
static void train_case(bool gro)
{
	struct peer s, r;
	struct ferry_dp_stats ss, rs;

	peer_open(&s, 256, false, true, false);
	peer_open(&r, 256, true, !gro, false);
	send_check(&s, &r, 44, SEG, 333, 2, NDG);
	send_check(&s, &r, 10, SEG, SEG, 3, NDG);
	ss = peer_stats(&s);
	rs = peer_stats(&r);
	if (strcmp(dp_name, "uring") == 0) {
		cr_expect_eq(ss.tx_gso_trains, 2);
		cr_expect_eq(ss.tx_gso_segments, 54);
		cr_expect_eq(ss.gso_fallbacks, 0);
		if (gro) {
			cr_expect_geq(rs.rx_gro_bufs, 2);
			cr_expect_eq(rs.rx_gro_segments, 54);
		} else {
			cr_expect_eq(rs.rx_gro_bufs, 0);
		}
	}
	close_both(&s, &r);
}

static void t_train_gro_on(void)
{
	train_case(true);
}

static void t_train_gro_off(void)
{
	train_case(false);
}

/* GSO off: the same burst goes one datagram per send. */
static void t_no_gso(void)
{
	struct peer s, r;

	peer_open(&s, 256, true, true, false);
	peer_open(&r, 256, true, false, false);
	send_check(&s, &r, 20, SEG, 100, 2, NDG);
	cr_expect_eq(peer_stats(&s).tx_gso_trains, 0);
	cr_expect_eq(peer_stats(&r).rx_gro_bufs, 0);
	close_both(&s, &r);
}

/* The kernel refuses the first train: its datagrams are sent again one
 * by one and none is lost, none sent twice; later datagrams of that size
 * go one by one, and trains of smaller ones still go. */
static void t_gso_fallback(void)
{
	struct peer s, r;
	struct ferry_dp_stats st;

	peer_open(&s, 256, false, true, true);
	peer_open(&r, 256, true, false, false);
	send_check(&s, &r, 30, SEG, 500, 2, NDG);
	send_check(&s, &r, 30, SEG, 500, 2, NDG);
	send_check(&s, &r, 30, 1000, 500, 2, NDG);
	st = peer_stats(&s);
	if (strcmp(dp_name, "uring") == 0) {
		cr_expect_eq(st.gso_fallbacks, 1);
		cr_expect_eq(st.tx_gso_trains, 2);
		cr_expect_eq(st.tx_gso_segments, 60);
		cr_expect_eq(st.tx_errors, 0);
	}
	close_both(&s, &r);
}

/* A uring receiver that holds few buffers gets a GRO train no faster
 * than it releases: never more datagrams lent at once than it asked
 * buffers for, none lost, in order.  (DPDK lends what its ring holds:
 * there the train only has to arrive.) */
static void t_gro_lend_limit(void)
{
	bool uring = strcmp(dp_name, "uring") == 0;
	struct peer s, r;

	peer_open(&s, 256, false, true, false);
	peer_open(&r, 8, true, false, false);
	send_check(&s, &r, 40, SEG, 900, 1, uring ? 8 : NDG);
	if (uring)
		cr_expect_eq(peer_stats(&r).rx_gro_segments, 40);
	close_both(&s, &r);
}

#define CASES(CASE, s)                                                       \
	CASE(s, pieces_byte_exact)                                           \
	CASE(s, single_body_compat)                                          \
	CASE(s, all_copied)                                                  \
	CASE(s, train_gro_on)                                                \
	CASE(s, train_gro_off)                                               \
	CASE(s, no_gso)                                                      \
	CASE(s, gso_fallback)                                                \
	CASE(s, gro_lend_limit)
HARNESS_BATTERY(dp_tx, CASES, .timeout = 60)
