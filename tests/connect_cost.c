/* SPDX-License-Identifier: MIT */
/*
 * connect_cost - what one CONNECT costs a server's poll thread, by how many
 * sessions the endpoint holds (issue 14: a refused CONNECT cost 3.5-7.6 us
 * and the session scan grew linearly).  Not a test: it asserts nothing
 * about time, it prints a table that docs/bench.md quotes.
 *
 * Each case hands synthetic CONNECT frames (parsed once, their source
 * port and session id changed per frame) straight to the server's connect
 * path, without the dataplane's receive: what it times is the transport's
 * own work, and the reply it sends when it sends one.  Replies go to a
 * UDP socket of this process that nobody reads.  Each figure is the
 * median of 5 runs of 100 ms; "admitted" is the mean over the fill of the
 * table, first touches of its memory included.
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

/* One CONNECT as a client would send it, parsed into @f, its length in
 * *@len; its buffer is static, and so lives as long as the program. */
static void connect_frame(struct ferry_frame *f, uint32_t *len)
{
	static uint8_t buf[256];
	struct ferry_connect_body b = { .params = { 1u << 20, 64, 8192, 16 } };
	struct ferry_hdr h = { .type = FERRY_FT_CONNECT, .credit = 64 };
	int n;

	b.have_params = true;
	b.features = FERRY_FEAT_TRACE;
	n = ferry__wire_put_connect(buf + FERRY_WIRE_HDR_LEN,
				   sizeof(buf) - FERRY_WIRE_HDR_LEN, &b);
	h.msg_len = (uint32_t)n;
	h.src_sess = 1;
	ferry__wire_encode(&h, buf);
	if (n < 0 || ferry__wire_parse(buf, FERRY_WIRE_HDR_LEN + (size_t)n,
				       1u << 20, f) != FERRY_PARSE_OK) {
		fprintf(stderr, "cannot build a CONNECT\n");
		exit(1);
	}
	*len = FERRY_WIRE_HDR_LEN + (uint32_t)n;
}

static struct ferry_frame frame;
static struct ferry_dp_pkt pkt;
static uint16_t sink;

/* Client number @i: all at the sink's address, each its own session id. */
static void client(uint32_t i)
{
	pkt.src.ip = 0x7f000001u;
	pkt.src.port = sink;
	frame.h.src_sess = i + 1;
}

/* A server of @nsessions sessions that listens, without rate limits
 * unless @rate_per_source (the clock does not move between polls, and
 * there are none here: a limit would hold the fill back). */
static struct ferry_endpoint *server(uint32_t nsessions, bool listen,
				     uint32_t rate_per_source)
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
	cfg.connect_rate = 0;
	cfg.connect_rate_per_source = rate_per_source;
	ret = ferry_endpoint_create(&cfg, &ep);
	if (ret < 0) {
		fprintf(stderr, "endpoint: %s\n", ferry_strerror(ret));
		exit(1);
	}
	return ep;
}

/* Open @n sessions from clients 0 .. n-1; the mean ns per CONNECT. */
static double fill(struct ferry_endpoint *ep, uint32_t n)
{
	uint64_t t0 = now_ns();

	for (uint32_t i = 0; i < n; i++) {
		client(i);
		ferry__server_rx_connect(ep, &frame, &pkt);
	}
	if (ep->st.sessions_opened != n) {
		fprintf(stderr, "opened %llu sessions of %u\n",
			(unsigned long long)ep->st.sessions_opened, n);
		exit(1);
	}
	return (double)(now_ns() - t0) / n;
}

/*
 * The mean ns of one CONNECT from client @first + (k % @spread), k = 0, 1,
 * ...: as many as fit in about 100 ms.  Replies are flushed every 32, and
 * their completions reaped, as a poll would.  *@replies: datagrams sent
 * per CONNECT.
 */
static double timed_once(struct ferry_endpoint *ep, uint32_t first,
			 uint32_t spread, double *replies)
{
	uint64_t t0 = now_ns(), t, tx0 = ep->st.tx_pkts;
	struct ferry_dp_pkt rx[32];
	uint32_t k = 0;

	do {
		unsigned got;

		for (int j = 0; j < 32; j++, k++) {
			client(first + k % spread);
			ferry__server_rx_connect(ep, &frame, &pkt);
		}
		ep->dp_ops->flush(ep->dp);
		got = ep->dp_ops->rx_burst(ep->dp, rx, 32);
		for (unsigned j = 0; j < got; j++)
			ep->dp_ops->rx_release(ep->dp, rx[j].id);
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

/* The median of REPS runs of timed_once(): the machine is shared, and a
 * single run can land on a busy moment. */
#define REPS 5
static double timed(struct ferry_endpoint *ep, uint32_t first, uint32_t spread,
		    double *replies)
{
	double ns[REPS];

	for (int i = 0; i < REPS; i++)
		ns[i] = timed_once(ep, first, spread, replies);
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
	printf("%-36s %6u  %10.0f  %7.2f\n", what, n, ns, replies);
}

static void measure(uint32_t n)
{
	struct ferry_endpoint *ep = server(n, true, 0);
	double ns, r;

	ns = fill(ep, n);
	row("admitted (mean while filling)", n, ns, NAN);
	/* ACCEPT again goes at the next flush, which never comes here. */
	ns = timed(ep, 0, n, &r);
	row("retransmitted (ACCEPT again)", n, ns, r);
	/* New clients now: the table is full. */
	ns = timed(ep, 1u << 31, 1u << 30, &r);
	row("refused: table full (ERROR)", n, ns, r);
	ferry_endpoint_set_admission(ep, refuse_hook, NULL, NULL);
	ns = timed(ep, 1u << 31, 1u << 30, &r);
	row("refused: admission hook (ERROR)", n, ns, r);
	ferry_endpoint_destroy(ep);

	/* The silent drops: no listening, or over the rate (one token per
	 * second from this source, taken by the first). */
	ep = server(n, false, 0);
	ns = timed(ep, 1u << 31, 1u << 30, &r);
	row("dropped: not listening", n, ns, r);
	ferry_endpoint_destroy(ep);
	ep = server(n, true, 1);
	ns = timed(ep, 1u << 31, 1u << 30, &r);
	row("dropped: rate limited", n, ns, r);
	ferry_endpoint_destroy(ep);
}

int main(int argc, char **argv)
{
	static const uint32_t dflt[] = { 1, 1000, 65535 };

	sink = sink_port();
	connect_frame(&frame, &pkt.len);
	printf("%-36s %6s  %10s  %7s\n", "CONNECT", "sess", "ns each",
	       "replies");
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			measure((uint32_t)strtoul(argv[i], NULL, 0));
	} else {
		for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
			measure(dflt[i]);
	}
	return 0;
}
