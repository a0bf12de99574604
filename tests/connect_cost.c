/* SPDX-License-Identifier: MIT */
/*
 * connect_cost - what one CONNECT costs a server's poll thread, by how many
 * sessions the endpoint holds (issue 14), on wire v2 (docs/wire.md, section
 * 4).  Not a test: it asserts nothing about time, it prints a table that
 * docs/security.md quotes.
 *
 * The CONNECT datagrams are built beforehand, untimed, by the handshake
 * unit's client side (ferry__hs_client_build) under chosen client CIDs, all
 * from one client state: the client's ephemeral key pair is drawn once, as
 * an X25519 key generation is the client's cost, not the server's, and the
 * server's work does not depend on whose public key it is.  A cookie is
 * computed as the server's RETRY would carry it (ferry__hs_cookie_mac under
 * the server's current key), close to its use so that it stays within its
 * 10 seconds.  Each datagram goes straight to the server's handshake
 * receive path, ferry__rx_handshake(), which is what ferry__rx_dgram()
 * calls for a first byte of 0x46; not ferry__rx_dgram() itself, which hands
 * every datagram back to the dataplane, and a buffer it never lent would
 * corrupt the dataplane's counts.  Left out so: a length check and a test
 * of the first byte.
 *
 * Rate limits are off, so that what is timed is the work: the endpoint's
 * connect_rate and connect_rate_per_source are 0 (no limit), and the
 * handshake unit's reply buckets (with those 0: 100 per second per source,
 * 200000 per second in all, docs/wire.md section 4.3) are emptied before
 * every CONNECT (two stores; checking them is still timed).  The last two
 * rows turn connect_rate_per_source on to time the drops beyond it, with
 * a cookie and without: they happen before the CONNECT is read.  Replies go to a UDP
 * socket of this process that nobody reads; they are sent, and the
 * sessions' pending ACCEPTs flushed, every 32 CONNECTs, as a poll would.
 * Each figure is the median of 5 runs of about 100 ms; "admitted" is the
 * mean over the fill of the table, first touches of its memory included.
 *
 *	connect_cost [N ...]    (default: 1 1000 65535 sessions)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <ferry/token.h>

#include "transport/handshake.h"
#include "transport/internal.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A UDP port on 127.0.0.1 that takes the replies and is never read. */
static uint16_t sink_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
		perror("sink socket");
		exit(1);
	}
	return ntohs(a.sin_port);
}

/* Every client is at the sink's address; what tells them apart is the
 * CID, whose low 32 bits must not be 0. */
static struct ferry_addr client_addr;

static uint64_t client_cid(uint32_t i)
{
	return 0xc0de000000000000ull | ((uint64_t)i << 8) | 1;
}

/* A ring of RING precomputed datagrams, DG_MAX bytes each at most. */
#define RING 4096
#define DG_MAX 1024
static uint8_t ring[RING][DG_MAX];
static uint32_t ring_len[RING];

enum dg_kind {
	DG_NO_COOKIE, /* the first CONNECT of a client */
	DG_COOKIE,    /* the CONNECT after a RETRY */
	DG_BAD_COOKIE,/* a cookie with a wrong MAC */
	DG_V1,        /* a wire v1 CONNECT */
};

static struct ferry_hs_client client;

static void client_setup(void)
{
	struct ferry_hs_client_cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = FERRY_W2_MODE_MAC;
	cfg.params = (struct ferry_w2_params){ 1u << 20, 1u << 20, 1472, 16,
					       1000, 10 };
	cfg.features = FERRY_W2_FEAT_TRACE;
	cfg.cid = client_cid(0);
	if (ferry__hs_client_init(&client, &cfg) < 0) {
		fprintf(stderr, "handshake client\n");
		exit(1);
	}
}

/* A wire v1 CONNECT, as a v1 client would send it, at @out. */
static uint32_t v1_connect(uint8_t *out, size_t cap, uint32_t id)
{
	struct ferry_connect_body b = { .params = { 1u << 20, 64, 8192, 16 } };
	struct ferry_hdr h = { .type = FERRY_FT_CONNECT, .credit = 64 };
	int n;

	b.have_params = true;
	b.features = FERRY_FEAT_TRACE;
	n = ferry__wire_put_connect(out + FERRY_WIRE_HDR_LEN,
				   cap - FERRY_WIRE_HDR_LEN, &b);
	if (n < 0) {
		fprintf(stderr, "cannot build a v1 CONNECT\n");
		exit(1);
	}
	h.msg_len = (uint32_t)n;
	h.src_sess = id;
	ferry__wire_encode(&h, out);
	return FERRY_WIRE_HDR_LEN + (uint32_t)n;
}

/* Fill ring entries 0 .. @m-1 with datagrams of @kind from clients @first,
 * @first + 1, ..., cookies made for server @ep now. */
static void build(struct ferry_endpoint *ep, enum dg_kind kind,
		  uint32_t first, uint32_t m)
{
	uint32_t ts = (uint32_t)(ferry__unix_ns() / 1000000000ull);
	uint8_t buf[FERRY_HS_CONNECT_MAX];

	for (uint32_t k = 0; k < m; k++) {
		int n;

		if (kind == DG_V1) {
			ring_len[k] = v1_connect(ring[k], DG_MAX, first + k + 1);
			continue;
		}
		client.cid = client_cid(first + k);
		client.have_cookie = kind != DG_NO_COOKIE;
		if (client.have_cookie) {
			client.cookie_ts = ts;
			ferry__hs_cookie_mac(ep->hs.cookie_key[0], &client_addr,
					     &ep->local, client.cid, ts,
					     client.cookie_mac);
			if (kind == DG_BAD_COOKIE)
				client.cookie_mac[0] ^= 1;
		}
		n = ferry__hs_client_build(&client, buf, sizeof(buf));
		if (n < 0 || n > DG_MAX) {
			fprintf(stderr, "cannot build a CONNECT: %d\n", n);
			exit(1);
		}
		memcpy(ring[k], buf, (size_t)n);
		ring_len[k] = (uint32_t)n;
	}
}

/* The handshake unit's per-source bucket this benchmark's one source
 * address falls in: found as the only one a first reply fills (to a v1
 * CONNECT, which opens no session, retry_never or not). */
static uint32_t src_bucket;

static void find_src_bucket(struct ferry_endpoint *ep)
{
	struct ferry_dp_pkt pkt = { .src = client_addr };

	memset(ep->hs.src_tat, 0, sizeof(ep->hs.src_tat));
	build(ep, DG_V1, 0, 1);
	pkt.data = ring[0];
	pkt.len = ring_len[0];
	ferry__rx_handshake(ep, &pkt);
	for (uint32_t i = 0; i < FERRY_HS_SRC_BUCKETS; i++) {
		if (ep->hs.src_tat[i]) {
			src_bucket = i;
			return;
		}
	}
	fprintf(stderr, "no reply: the probe CONNECT was dropped\n");
	exit(1);
}

/* Hand ring entry @k to the server, its rate buckets emptied first. */
static void feed(struct ferry_endpoint *ep, uint32_t k)
{
	struct ferry_dp_pkt pkt = {
		.data = ring[k], .len = ring_len[k], .src = client_addr,
	};

	ep->hs.global_tat = 0;
	ep->hs.src_tat[src_bucket] = 0;
	ferry__rx_handshake(ep, &pkt);
}

/* Send what the CONNECTs left to send, and reap the completions. */
static void poll_tx(struct ferry_endpoint *ep)
{
	struct ferry_dp_pkt rx[32];
	unsigned got;

	ferry__flush_sessions(ep);
	got = ep->dp_ops->rx_burst(ep->dp, rx, 32);
	for (unsigned j = 0; j < got; j++)
		ep->dp_ops->rx_release(ep->dp, rx[j].id);
}

/* A server of @nsessions sessions, without rate limits unless
 * @rate_per_source (the clock does not move between polls, and there are
 * none here: a limit would hold the fill back). */
static struct ferry_endpoint *server(uint32_t nsessions, bool listen,
				     bool retry_never, uint32_t rate_per_source)
{
	struct ferry_ep_config cfg;
	struct ferry_endpoint *ep;
	int ret;

	ferry_ep_config_init(&cfg);
	cfg.bind_addr = "127.0.0.1";
	cfg.max_sessions = nsessions;
	cfg.session_slots = 1;
	cfg.session_credits = 16;
	cfg.rx_bufs = 256;
	cfg.pool[0] = (struct ferry_pool_class){ 512, 64 };
	cfg.pool[1] = cfg.pool[2] = cfg.pool[3] =
		(struct ferry_pool_class){ 0, 0 };
	cfg.listen = listen;
	cfg.retry_never = retry_never;
	cfg.connect_rate = 0;
	cfg.connect_rate_per_source = rate_per_source;
	ret = ferry_endpoint_create(&cfg, &ep);
	if (ret < 0) {
		fprintf(stderr, "endpoint: %s\n", ferry_strerror(ret));
		exit(1);
	}
	if (listen)
		find_src_bucket(ep);
	return ep;
}

/* Open @n sessions from clients 0 .. n-1, with cookies or (retry_never)
 * without; the mean ns per CONNECT, building the datagrams left out. */
static double fill(struct ferry_endpoint *ep, uint32_t n, enum dg_kind kind)
{
	uint64_t ns = 0, opened = ep->st.sessions_opened;

	for (uint32_t first = 0; first < n; first += RING) {
		uint32_t m = n - first < RING ? n - first : RING;
		uint64_t t0;

		build(ep, kind, first, m);
		t0 = now_ns();
		for (uint32_t k = 0; k < m; k++) {
			feed(ep, k);
			if (k % 32 == 31)
				poll_tx(ep);
		}
		poll_tx(ep);
		ns += now_ns() - t0;
	}
	if (ep->st.sessions_opened - opened != n) {
		fprintf(stderr, "opened %llu sessions of %u\n",
			(unsigned long long)(ep->st.sessions_opened - opened),
			n);
		exit(1);
	}
	return (double)ns / n;
}

/*
 * The mean ns of one CONNECT from ring entry k % @m, k = 0, 1, ...: as many
 * as fit in about 100 ms.  Replies are sent every 32, as a poll would.
 * *@replies: datagrams sent per CONNECT.
 */
static double timed_once(struct ferry_endpoint *ep, uint32_t m,
			 double *replies)
{
	uint64_t t0 = now_ns(), t, tx0 = ep->st.tx_pkts;
	uint32_t k = 0;

	do {
		for (int j = 0; j < 32; j++, k++)
			feed(ep, k % m);
		poll_tx(ep);
		t = now_ns();
	} while (t - t0 < 100000000ull);
	*replies = (double)(ep->st.tx_pkts - tx0) / k;
	return (double)(t - t0) / k;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of REPS runs of timed_once() over datagrams of @kind from
 * clients @first .. @first + @m - 1: the machine is shared, and a single
 * run can land on a busy moment. */
#define REPS 5
static double timed(struct ferry_endpoint *ep, enum dg_kind kind,
		    uint32_t first, uint32_t m, double *replies)
{
	double ns[REPS];

	m = m < RING ? m : RING;
	build(ep, kind, first, m);
	for (int i = 0; i < REPS; i++)
		ns[i] = timed_once(ep, m, replies);
	qsort(ns, REPS, sizeof(ns[0]), cmp_double);
	return ns[REPS / 2];
}

static int refuse_hook(void *ctx, const void *tok, size_t len)
{
	(void)ctx;
	(void)tok;
	(void)len;
	return -FERRY_TOKEN_EMISSING;
}

static void row(const char *what, uint32_t n, double ns, double replies)
{
	printf("%-40s %6u  %10.0f  %7.2f\n", what, n, ns, replies);
}

/* New clients: never seen by the server. */
#define NEW (1u << 30)

static void measure(uint32_t n)
{
	struct ferry_endpoint *ep = server(n, true, false, 0);
	double ns, r;

	ns = timed(ep, DG_NO_COOKIE, NEW, RING, &r);
	row("no cookie (RETRY)", n, ns, r);
	ns = timed(ep, DG_BAD_COOKIE, NEW, RING, &r);
	row("bad cookie (RETRY again)", n, ns, r);
	ns = timed(ep, DG_V1, NEW, RING, &r);
	row("wire v1 CONNECT (v1 ERROR)", n, ns, r);
	ns = fill(ep, n, DG_COOKIE);
	row("admitted: cookie (X25519 + ACCEPT)", n, ns, NAN);
	/* A half-open session's CONNECT again: the same ACCEPT. */
	ns = timed(ep, DG_COOKIE, 0, n, &r);
	row("retransmitted (ACCEPT again)", n, ns, r);
	/* New clients now: the table is full. */
	ns = timed(ep, DG_COOKIE, NEW, RING, &r);
	row("refused: table full (REFUSE)", n, ns, r);
	ferry_endpoint_set_admission(ep, refuse_hook, NULL, NULL);
	ns = timed(ep, DG_COOKIE, NEW, RING, &r);
	row("refused: admission hook (REFUSE)", n, ns, r);
	ferry_endpoint_destroy(ep);

	ep = server(n, true, true, 0);
	ns = fill(ep, n, DG_NO_COOKIE);
	row("admitted: retry_never (X25519 + ACCEPT)", n, ns, NAN);
	ferry_endpoint_destroy(ep);

	/* The silent drops: no listening, or over the endpoint's rate (one
	 * CONNECT per second from this source, taken by the first). */
	ep = server(n, false, false, 0);
	ns = timed(ep, DG_NO_COOKIE, NEW, RING, &r);
	row("dropped: not listening", n, ns, r);
	ferry_endpoint_destroy(ep);
	ep = server(n, true, false, 1);
	ns = timed(ep, DG_COOKIE, NEW, RING, &r);
	row("dropped: rate limited (per source)", n, ns, r);
	/* Without a cookie: beyond the RETRY budget (the probe of
	 * find_src_bucket and the first of these took the burst). */
	ns = timed(ep, DG_NO_COOKIE, NEW, RING, &r);
	row("dropped: over the RETRY budget", n, ns, r);
	ferry_endpoint_destroy(ep);
}

int main(int argc, char **argv)
{
	static const uint32_t dflt[] = { 1, 1000, 65535 };

	client_addr.ip = htonl(INADDR_LOOPBACK);
	client_addr.port = sink_port();
	client_setup();
	printf("%-40s %6s  %10s  %7s\n", "CONNECT", "sess", "ns each",
	       "replies");
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			measure((uint32_t)strtoul(argv[i], NULL, 0));
	} else {
		for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
			measure(dflt[i]);
	}
	ferry__hs_client_wipe(&client);
	return 0;
}
