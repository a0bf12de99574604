/* SPDX-License-Identifier: MIT */
/*
 * forge_sweep - what forged datagrams do to a live session (issue 14), on
 * wire v2 (docs/wire.md): a benchmark that prints a table which
 * docs/security.md quotes, and exits 1 if a forgery changed anything it
 * must not.  It asserts nothing about time: the throughput ratios are
 * printed, with what the attacker's CPU took from the victim's.
 *
 * One process: a server endpoint and a client endpoint on the uring
 * dataplane on 127.0.0.1, each created on and polled by its own thread;
 * the client (the victim) keeps 64 calls of 32 bytes in flight on one
 * plain session (mac mode, retry always: the defaults), and the server
 * echoes them.  Each phase measures the victim's calls per second for T
 * seconds alone, then while an attacker thread sends forged datagrams
 * at the server's port with sendmmsg, 64 to a call:
 *
 *   (a) off-path injection: short headers with random DCIDs (what an
 *       attacker who cannot see the traffic can do: guess), from a plain
 *       UDP socket;
 *   (b) "CID known": the victim session's real server CID, read from the
 *       endpoint's internals, from the victim client's own address and
 *       port (a raw socket writes the IPv4 and UDP headers), random pn,
 *       random tags, and REQUEST (of the echo method), CLOSE, ACK and
 *       PUSH frames: the strongest off-path case, an attacker who somehow
 *       learnt the CID and the address; only the tag stands in the way;
 *   (c) spoofed CONNECTs: 512-byte v2 CONNECTs in v1 envelopes, without a
 *       cookie, from random 127.x.y.z sources and ports (a raw socket:
 *       loopback delivers them), paced at up to 10^5 a second.
 *
 * (a) and (b) go on until 2^24 datagrams have gone (or a time cap; the
 * count is printed), as fast as the attacker's thread can send them, or
 * paced at the rate the seventh argument gives.  Raw sockets need root
 * (CAP_NET_RAW): without them, (b) is sent from a plain socket (the
 * address check drops it before the tag, which is then never tried) and
 * (c) is skipped, and the output says so.
 *
 * After each phase the victim stops making calls, its calls in flight
 * end, and each endpoint's thread copies its counters; the deltas must
 * show: the server dispatched exactly the victim's calls, no session
 * closed or opened, no IOU counter moved, the victim saw no failed call.
 * The reflection ratio of (c) is what the server sent to others than the
 * victim over what it received from others than the victim (both from
 * the counters of the two endpoints): an upper bound, as a victim
 * datagram the kernel dropped counts as the attacker's.
 *
 * The victim is latency-bound: its 64 calls ride in one datagram each
 * way, so any delay on the server's thread is lost throughput.  On a
 * machine with fewer cores than the three busy threads, the attacker's
 * thread takes CPU from the victim's: the CPU share of each thread is
 * printed beside the throughput ratio, so that the two can be told apart.
 *
 * (c) has two controls at the same rate, so that what the server's own
 * work costs the victim can be told from what the attacker's CPU and the
 * kernel cost it:
 *
 *   (d) the same datagrams at a port nobody listens on: the attacker's
 *       thread and the kernel's receive path up to the socket lookup;
 *   (e) the same datagrams at the server's port, with the first byte 0:
 *       all that and the server's receive, up to ferry's first-byte check
 *       (drop_bad_magic): the floor of what any datagram costs.
 *
 *	forge_sweep [T_s [count_log2 [cap_s [busy|sleep [connects_per_s
 *		    [phases]]]]]]
 *	(default 5 24 240 sleep 100000 abcde; sleep: the endpoints' threads
 *	sleep in the kernel when idle, the library's default; busy needs a
 *	core for each of the two; phases: the letters of those to run)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>

#include "transport/handshake.h"
#include "transport/internal.h"

#define METHOD 1
#define INFLIGHT 64
#define CALL_LEN 32
#define BATCH 64

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "forge_sweep: %s: %s\n", what, ferry_strerror(err));
	exit(2);
}

/* xorshift64*: the attacker's randomness (fast; nothing here is secret,
 * and the server's keys are not guessable from any of it). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* --- the two endpoints, each on its own thread --------------------------- */

/* One endpoint's thread, and what the main thread asks of it. */
struct side {
	struct ferry_endpoint *ep;
	pthread_t thr;
	_Atomic int ready;     /* the endpoint exists (and, client: open) */
	_Atomic int stop;
	_Atomic int snap_req;  /* main sets 1; the thread copies, sets 0 */
	struct ferry_ep_stats snap;
};

static struct side srv, cli;
static uint16_t srv_port;
/* Both endpoints spin on completions (ferry_ep_config.busy_poll) instead
 * of sleeping in the kernel when idle. */
static bool busy;

/* The victim's server session, as the server's notifier saw it open. */
static uint64_t victim_cid;
/* The client's address as the server has it: ip in network order, port
 * in host order (dataplane/dp.h). */
static struct ferry_addr victim_addr;

/* The victim's own count of answered calls, and its calls in flight. */
static _Atomic uint64_t victim_done;
static _Atomic uint64_t victim_failed;
static _Atomic int inflight;
static _Atomic int paused;
static _Atomic int victim_ended; /* the error a call was refused with */
static struct ferry_session *victim;

static void side_service(struct side *sd)
{
	if (atomic_load(&sd->snap_req)) {
		ferry__endpoint_stats(sd->ep, &sd->snap);
		atomic_store(&sd->snap_req, 0);
	}
}

/* The server's handler answers with the request's own buffer. */
static void echo(struct ferry_call *call, void *ctx)
{
	(void)ctx;
	ferry_call_respond(call, ferry_call_take_req(call));
}

static void on_session(struct ferry_session *s, enum ferry_session_event ev,
		       int res, void *ctx)
{
	(void)res;
	(void)ctx;
	if (ev == FERRY_SESSION_OPENED && !victim_cid) {
		victim_cid = s->cid;
		victim_addr = s->peer;
	}
}

static void *server_main(void *arg)
{
	struct ferry_ep_config cfg;
	int ret;

	(void)arg;
	pthread_setname_np(pthread_self(), "fs-server");
	ferry_ep_config_init(&cfg);
	cfg.bind_addr = "127.0.0.1";
	cfg.session_slots = INFLIGHT;
	cfg.busy_poll = busy;
	ret = ferry_endpoint_create(&cfg, &srv.ep);
	if (ret < 0)
		die("server endpoint", ret);
	ret = ferry_endpoint_register(srv.ep, METHOD, echo, NULL);
	if (ret < 0)
		die("register", ret);
	ferry_endpoint_on_session(srv.ep, on_session, NULL);
	srv_port = ferry_endpoint_port(srv.ep);
	atomic_store(&srv.ready, 1);
	while (!atomic_load(&srv.stop)) {
		ferry_endpoint_poll(srv.ep, 1);
		side_service(&srv);
	}
	ferry_endpoint_destroy(srv.ep);
	return NULL;
}

static void issue(void);

static void on_reply(int res, const void *data, size_t len, void *ctx)
{
	(void)data;
	(void)len;
	(void)ctx;
	atomic_fetch_sub(&inflight, 1);
	if (res < 0)
		atomic_fetch_add(&victim_failed, 1);
	else
		atomic_fetch_add(&victim_done, 1);
	if (!atomic_load(&paused))
		issue();
}

static void issue(void)
{
	struct ferry_msgbuf *mb;
	int ret = ferry_msgbuf_alloc(cli.ep, CALL_LEN, &mb);

	if (ret < 0)
		die("msgbuf", ret);
	memset(ferry_msgbuf_data(mb), 0x5a, CALL_LEN);
	ret = ferry_call(victim, METHOD, mb, on_reply, NULL);
	if (ret < 0) {
		/* The session ended: the checks will say so. */
		ferry_msgbuf_free(mb);
		atomic_store(&victim_ended, ret);
		return;
	}
	atomic_fetch_add(&inflight, 1);
}

static void *client_main(void *arg)
{
	struct ferry_ep_config cfg;
	int ret;

	(void)arg;
	pthread_setname_np(pthread_self(), "fs-client");
	ferry_ep_config_init(&cfg);
	cfg.bind_addr = "127.0.0.1";
	cfg.session_slots = INFLIGHT;
	cfg.busy_poll = busy;
	ret = ferry_endpoint_create(&cfg, &cli.ep);
	if (ret < 0)
		die("client endpoint", ret);
	ret = ferry_session_connect(cli.ep, "127.0.0.1", srv_port, NULL, NULL,
				    NULL, &victim);
	if (ret < 0)
		die("connect", ret);
	for (int i = 0; i < 5000 && !ferry_session_is_open(victim); i++)
		ferry_endpoint_poll(cli.ep, 1);
	if (!ferry_session_is_open(victim))
		die("connect", -ETIMEDOUT);
	atomic_store(&cli.ready, 1);
	while (!atomic_load(&cli.stop)) {
		while (!atomic_load(&paused) && !atomic_load(&victim_ended) &&
		       atomic_load(&inflight) < INFLIGHT)
			issue();
		ferry_endpoint_poll(cli.ep, 1);
		side_service(&cli);
	}
	ferry_session_close(victim);
	ferry_endpoint_destroy(cli.ep);
	return NULL;
}

/* Both endpoints' counters, copied on their own threads. */
struct snap {
	struct ferry_ep_stats s, c;
	uint64_t now, s_cpu, c_cpu; /* wall and the two threads' CPU, ns */
	uint64_t done, failed;
	uint64_t udp_rcvbuf_err; /* the kernel's, /proc/net/snmp */
};

static uint64_t kernel_udp_rcvbuf_errors(void)
{
	char hdr[1024], val[1024];
	FILE *f = fopen("/proc/net/snmp", "r");
	uint64_t v = 0;

	if (!f)
		return 0;
	while (fgets(hdr, sizeof(hdr), f) && fgets(val, sizeof(val), f)) {
		char *hs, *vs, *h, *x;

		if (strncmp(hdr, "Udp:", 4) != 0)
			continue;
		h = strtok_r(hdr, " \n", &hs);
		x = strtok_r(val, " \n", &vs);
		while (h && x) {
			if (strcmp(h, "RcvbufErrors") == 0)
				v = strtoull(x, NULL, 10);
			h = strtok_r(NULL, " \n", &hs);
			x = strtok_r(NULL, " \n", &vs);
		}
		break;
	}
	fclose(f);
	return v;
}

/* The CPU time an endpoint's thread has used. */
static uint64_t cpu_of(const struct side *sd)
{
	struct timespec ts;
	clockid_t id;

	if (pthread_getcpuclockid(sd->thr, &id) != 0 ||
	    clock_gettime(id, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void take_snap(struct snap *o)
{
	atomic_store(&srv.snap_req, 1);
	atomic_store(&cli.snap_req, 1);
	while (atomic_load(&srv.snap_req) || atomic_load(&cli.snap_req))
		sleep_ms(1);
	o->s = srv.snap;
	o->c = cli.snap;
	o->done = atomic_load(&victim_done);
	o->failed = atomic_load(&victim_failed);
	o->udp_rcvbuf_err = kernel_udp_rcvbuf_errors();
	o->now = now_ns();
	o->s_cpu = cpu_of(&srv);
	o->c_cpu = cpu_of(&cli);
}

/* Stop the victim's calls and let those in flight end; then the last
 * acknowledgements settle (a few ms on loopback). */
static void quiesce(void)
{
	atomic_store(&paused, 1);
	while (atomic_load(&inflight) > 0)
		sleep_ms(1);
	sleep_ms(100);
}

static void resume(void)
{
	atomic_store(&paused, 0);
}

/* The victim's calls per second over @sec seconds (or until *@until is
 * set, if not NULL). */
static double victim_rate(double sec, _Atomic int *until)
{
	uint64_t d0 = atomic_load(&victim_done), t0 = now_ns(), t;

	do {
		sleep_ms(10);
		t = now_ns();
	} while (until ? !atomic_load(until)
		       : (double)(t - t0) < sec * 1e9);
	return (double)(atomic_load(&victim_done) - d0) * 1e9 /
	       (double)(t - t0);
}

/* --- the forged datagrams ------------------------------------------------- */

/* Frame templates for short-header forgeries: a REQUEST of the echo
 * method, a CLOSE, an ACK, a PUSH settling an IOU, or an ACK with a
 * REQUEST, as a peer sends them. */
#define NTPL 1024
#define TPL_MAX 160
static uint8_t tpl[NTPL][TPL_MAX];
static uint16_t tpl_len[NTPL];
static int8_t tpl_req_at[NTPL]; /* where a REQUEST's req_id is, or -1 */

static void put(uint8_t *p, size_t *n, const struct ferry_w2_frame *f)
{
	int r = ferry__w2_put_frame(p + *n, TPL_MAX - *n, f);

	if (r < 0)
		die("template frame", r);
	*n += (size_t)r;
}

static void tpl_one(unsigned k)
{
	static uint8_t junk[64];
	uint8_t rec[64];
	struct ferry_w2_frame f;
	struct ferry_push push = { .iou = rnd(), .token = junk,
				   .token_len = 24 };
	size_t n = 0;
	int r;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rnd();
	tpl_req_at[k] = -1;
	memset(&f, 0, sizeof(f));
	switch (k % 5) {
	case 4: /* an ACK, then a REQUEST */
		f.type = FERRY_W2_ACK;
		f.u.ack.largest = (uint32_t)rnd();
		f.u.ack.first_range = (uint16_t)(rnd() % 64);
		put(tpl[k], &n, &f);
		memset(&f, 0, sizeof(f));
		/* fall through */
	case 0:
		f.type = FERRY_W2_REQUEST;
		f.u.data.req_id = (uint32_t)rnd() | 1;
		f.u.data.method = METHOD;
		f.u.data.bytes = junk;
		f.u.data.bytes_len = CALL_LEN;
		tpl_req_at[k] = (int8_t)(n + FERRY_W2_FRAME_HDR_LEN);
		break;
	case 1:
		f.type = FERRY_W2_CLOSE;
		f.u.err.code = k & 8 ? FERRY_EPROTO : 0;
		break;
	case 2:
		f.type = FERRY_W2_ACK;
		f.u.ack.largest = (uint32_t)rnd();
		f.u.ack.first_range = (uint16_t)(rnd() % 64);
		f.u.ack.nranges = (uint8_t)(rnd() % 4);
		for (unsigned i = 0; i < f.u.ack.nranges; i++)
			f.u.ack.ranges[i] = (struct ferry_w2_ack_range){
				(uint16_t)(1 + rnd() % 8),
				(uint16_t)(1 + rnd() % 8) };
		break;
	case 3:
		f.type = FERRY_W2_PUSH;
		f.u.push.push_id = (uint32_t)rnd() | 1;
		if (k & 8) {
			push.code = FERRY_EPROTO;
			push.token = NULL;
			push.token_len = 0;
		}
		r = ferry__wire_put_push(rec, sizeof(rec), &push);
		if (r < 0)
			die("template PUSH", -EINVAL);
		f.u.push.recs = rec;
		f.u.push.recs_len = (uint16_t)r;
		f.u.push.nrecs = 1;
		break;
	}
	put(tpl[k], &n, &f);
	tpl_len[k] = (uint16_t)n;
}

/* CONNECT templates: cookie-less v2 CONNECTs in their v1 envelopes, each
 * under its own random client CID, from one client state (the server's
 * work does not depend on whose public key it is). */
#define NCONN 1024
static uint8_t *conn_tpl[NCONN];
static uint16_t conn_len[NCONN];

static void conn_templates(void)
{
	struct ferry_hs_client_cfg cfg;
	struct ferry_hs_client c;
	uint8_t buf[FERRY_HS_CONNECT_MAX];

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = FERRY_W2_MODE_MAC;
	cfg.params = (struct ferry_w2_params){ 1u << 20, 1u << 20, 1472, 16,
					       1000, 10 };
	cfg.features = FERRY_W2_FEAT_TRACE;
	cfg.cid = rnd() | 1;
	if (ferry__hs_client_init(&c, &cfg) < 0)
		die("handshake client", -EINVAL);
	for (unsigned k = 0; k < NCONN; k++) {
		int n;

		c.cid = rnd() | 1;
		n = ferry__hs_client_build(&c, buf, sizeof(buf));
		if (n < 0)
			die("CONNECT template", n);
		conn_tpl[k] = malloc((size_t)n);
		if (!conn_tpl[k])
			die("CONNECT template", -ENOMEM);
		memcpy(conn_tpl[k], buf, (size_t)n);
		conn_len[k] = (uint16_t)n;
	}
	ferry__hs_client_wipe(&c);
}

/* --- the attacker thread --------------------------------------------------- */

enum kind { K_OFFPATH, K_CID_KNOWN, K_CONNECT };

struct attack {
	enum kind kind;
	bool raw;         /* write the IPv4 and UDP headers ourselves */
	/* The controls of (c): the same datagrams at the same rate, aimed at
	 * a port nobody listens on (dport), or at the server's port with
	 * their first byte made one that ferry drops before anything else
	 * (junk: drop_bad_magic). */
	uint16_t dport;   /* 0: the server's port */
	bool junk;
	uint64_t target;  /* datagrams to send */
	double cap_s;     /* or stop after this long */
	double rate;      /* per second; 0: as fast as the socket takes them */
	/* results */
	uint64_t sent, bytes, cpu_ns, wall_ns;
	_Atomic int done;
};

static int raw_fd = -1, udp_fd = -1;

#define SLOT_MAX (sizeof(struct iphdr) + sizeof(struct udphdr) + 1024)
static uint8_t slot[BATCH][SLOT_MAX];

/* Write the IPv4 and UDP headers of a datagram of @plen payload bytes
 * from @src (network order) to the server at @p; the kernel fills the IP
 * checksum and id (raw(7)), and a UDP checksum of 0 means none (IPv4). */
static size_t put_ipudp(uint8_t *p, uint32_t src, uint16_t sport,
			uint16_t dport, size_t plen)
{
	struct iphdr *ip = (struct iphdr *)p;
	struct udphdr *u = (struct udphdr *)(ip + 1);

	memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)(sizeof(*ip) + sizeof(*u) + plen));
	ip->saddr = src;
	ip->daddr = htonl(INADDR_LOOPBACK);
	u->source = sport;
	u->dest = htons(dport);
	u->len = htons((uint16_t)(sizeof(*u) + plen));
	u->check = 0;
	return sizeof(*ip) + sizeof(*u);
}

/* Datagram @i of the next batch into slot @i; returns its length with
 * the headers a raw socket needs, *@plen the UDP payload's. */
static size_t forge_one(const struct attack *a, unsigned i, size_t *plen)
{
	uint8_t *p = slot[i], *d;
	size_t hl = a->raw ? sizeof(struct iphdr) + sizeof(struct udphdr) : 0;
	uint64_t r = rnd();

	d = p + hl;
	if (a->kind == K_CONNECT) {
		unsigned k = (unsigned)(r % NCONN);
		/* 127.x.y.z with x, y, z random, never 127.0.0.1 itself. */
		uint32_t src = htonl(0x7f000000u | ((uint32_t)(r >> 16) &
						     0xffffffu) | 2u);

		memcpy(d, conn_tpl[k], conn_len[k]);
		if (a->junk)
			d[0] = 0; /* neither short nor long nor v1 */
		*plen = conn_len[k];
		if (a->raw)
			put_ipudp(p, src, htons((uint16_t)(1024 + (r >> 48) %
							     60000)),
				  a->dport ? a->dport : srv_port, *plen);
		return hl + *plen;
	}
	unsigned k = (unsigned)(r % NTPL);
	uint64_t dcid = a->kind == K_OFFPATH ? rnd() : victim_cid;
	size_t n = 0;

	d[n++] = FERRY_W2_FORM_SHORT | FERRY_W2_MODE_MAC;
	ferry_wr_u64(d + n, dcid);
	n += 8;
	ferry_wr_u32(d + n, (uint32_t)(r >> 32)); /* pn */
	n += 4;
	memcpy(d + n, tpl[k], tpl_len[k]);
	if (tpl_req_at[k] >= 0)
		ferry_wr_u32(d + n + tpl_req_at[k], (uint32_t)r | 1);
	n += tpl_len[k];
	for (unsigned j = 0; j < FERRY_W2_TAG_LEN; j += 8)
		ferry_wr_u64(d + n + j, rnd()); /* the tag: a guess */
	n += FERRY_W2_TAG_LEN;
	*plen = n;
	if (a->raw)
		put_ipudp(p, victim_addr.ip, htons(victim_addr.port), srv_port,
			  n);
	return hl + n;
}

static void *attacker_main(void *arg)
{
	struct attack *a = arg;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	size_t plen[BATCH];
	int fd = a->raw ? raw_fd : udp_fd;
	uint64_t t0 = now_ns(), c0 = thread_cpu_ns(), next_pct = 0;

	pthread_setname_np(pthread_self(), "fs-attacker");
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.sin_port = htons(a->dport ? a->dport : srv_port);
	while (a->sent < a->target) {
		uint64_t el = now_ns() - t0;
		unsigned n = 0;
		int r;

		if ((double)el > a->cap_s * 1e9)
			break;
		if (a->rate > 0) {
			/* Batch k leaves at t0 + k * BATCH / rate: evenly
			 * spaced batches of 64, not bursts that catch up. */
			uint64_t due = t0 + (uint64_t)((double)a->sent /
						       a->rate * 1e9);
			struct timespec ts = { (time_t)(due / 1000000000ull),
					       (long)(due % 1000000000ull) };

			if (due > now_ns())
				clock_nanosleep(CLOCK_MONOTONIC,
						TIMER_ABSTIME, &ts, NULL);
		}
		memset(mm, 0, sizeof(mm));
		for (; n < BATCH && a->sent + n < a->target; n++) {
			iov[n].iov_base = slot[n];
			iov[n].iov_len = forge_one(a, n, &plen[n]);
			mm[n].msg_hdr.msg_iov = &iov[n];
			mm[n].msg_hdr.msg_iovlen = 1;
			mm[n].msg_hdr.msg_name = &dst;
			mm[n].msg_hdr.msg_namelen = sizeof(dst);
		}
		r = sendmmsg(fd, mm, n, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN)
				continue;
			perror("sendmmsg");
			break;
		}
		for (int j = 0; j < r; j++)
			a->bytes += plen[j];
		a->sent += (unsigned)r;
		if (a->target >= (1u << 20) && a->sent >= next_pct) {
			printf("\r    sent %llu of %llu", (unsigned long long)a->sent,
			       (unsigned long long)a->target);
			fflush(stdout);
			next_pct += a->target / 16;
		}
	}
	if (a->target >= (1u << 20))
		printf("\n");
	a->wall_ns = now_ns() - t0;
	a->cpu_ns = thread_cpu_ns() - c0;
	atomic_store(&a->done, 1);
	return NULL;
}

/* A UDP port on 127.0.0.1 that nobody listens on: one the kernel gave a
 * socket, which is then closed (another program could take it in the
 * meantime; the output would show it, as that program's replies). */
static uint16_t closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("closed port", -errno);
	close(fd);
	return ntohs(a.sin_port);
}

/* --- phases ----------------------------------------------------------------- */

static int failures;

#define D(side, f) ((b->side.f) - (a->side.f))

/* What must not move between snapshots @a and @b, whatever was forged. */
static void check(const char *phase, const struct snap *a,
		  const struct snap *b)
{
	const struct {
		const char *name;
		uint64_t got, want;
	} must[] = {
		{ "server reqs_dispatched = victim's calls",
		  D(s, reqs_dispatched), b->done - a->done },
		{ "client calls_completed = victim's calls",
		  D(c, calls_completed), b->done - a->done },
		{ "victim's failed calls", b->failed - a->failed, 0 },
		{ "server sessions_closed", D(s, sessions_closed), 0 },
		{ "client sessions_closed", D(c, sessions_closed), 0 },
		{ "server sessions_opened", D(s, sessions_opened), 0 },
		{ "server sessions_proto_error", D(s, sessions_proto_error), 0 },
		{ "server iou_created", D(s, iou_created), 0 },
		{ "server iou_resolved", D(s, iou_resolved), 0 },
		{ "server iou_rejected", D(s, iou_rejected), 0 },
		{ "server iou_bad_token", D(s, iou_bad_token), 0 },
		{ "server iou_dup_push", D(s, iou_dup_push), 0 },
		{ "server iou_push_early", D(s, iou_push_early), 0 },
		{ "server iou_push_dropped", D(s, iou_push_dropped), 0 },
		{ "server calls_iou_refused", D(s, calls_iou_refused), 0 },
		{ "server half_open_expired", D(s, half_open_expired), 0 },
	};

	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++) {
		if (must[i].got == must[i].want)
			continue;
		printf("  FAIL %s: %s is %llu, want %llu\n", phase, must[i].name,
		       (unsigned long long)must[i].got,
		       (unsigned long long)must[i].want);
		failures++;
	}
}

static void report(const struct attack *at,
		   const struct snap *a, const struct snap *b, double alone,
		   double under)
{
	uint64_t reached = D(s, rx_pkts) - D(c, tx_pkts);
	double sec = (double)at->wall_ns / 1e9;

	printf("  sent %llu forged datagrams (%llu bytes) in %.1f s: %.0f/s; "
	       "attacker thread used %.0f %% of a core\n",
	       (unsigned long long)at->sent, (unsigned long long)at->bytes,
	       sec, (double)at->sent / sec,
	       100.0 * (double)at->cpu_ns / (double)at->wall_ns);
	printf("  reached ferry %llu (the kernel dropped %llu at full "
	       "socket buffers)\n", (unsigned long long)reached,
	       (unsigned long long)(b->udp_rcvbuf_err - a->udp_rcvbuf_err));
	printf("  server drops: unknown_session %llu  auth %llu  replay_old %llu"
	       "  duplicate %llu  malformed %llu  stale %llu\n",
	       (unsigned long long)D(s, drop_unknown_session),
	       (unsigned long long)D(s, drop_auth),
	       (unsigned long long)D(s, drop_replay_old),
	       (unsigned long long)D(s, drop_duplicate),
	       (unsigned long long)D(s, drop_malformed),
	       (unsigned long long)D(s, drop_stale));
	printf("  handshake: drop_bad_magic %llu  retry_sent %llu  "
	       "retry_ratelimited %llu  "
	       "drop_bad_cookie %llu  connects_rate_limited %llu  "
	       "sessions_opened %llu\n",
	       (unsigned long long)D(s, drop_bad_magic),
	       (unsigned long long)D(s, retry_sent),
	       (unsigned long long)D(s, retry_ratelimited),
	       (unsigned long long)D(s, drop_bad_cookie),
	       (unsigned long long)D(s, connects_rate_limited),
	       (unsigned long long)D(s, sessions_opened));
	printf("  dispatched %llu = the victim's %llu calls; sessions_closed "
	       "+%llu/+%llu; iou counters +%llu\n",
	       (unsigned long long)D(s, reqs_dispatched),
	       (unsigned long long)(b->done - a->done),
	       (unsigned long long)D(s, sessions_closed),
	       (unsigned long long)D(c, sessions_closed),
	       (unsigned long long)(D(s, iou_created) + D(s, iou_resolved) +
				    D(s, iou_rejected) + D(s, iou_push_early) +
				    D(s, iou_push_dropped) + D(s, iou_dup_push)));
	if (at->kind == K_CONNECT && !at->dport) {
		/* Bytes to and from others than the victim: an upper bound
		 * on the reflection, as any victim datagram the kernel
		 * dropped counts as the attacker's. */
		double out = (double)(D(s, tx_bytes) - D(c, rx_bytes));
		double in = (double)(D(s, rx_bytes) - D(c, tx_bytes));

		printf("  reflection: server sent %.0f bytes to the spoofed "
		       "sources for %.0f received: %.3f x (%.3f x of what the "
		       "attacker sent)\n", out, in, in > 0 ? out / in : 0,
		       out / (double)at->bytes);
	}
	printf("  server: %.2f kernel entries per datagram received\n",
	       (double)D(s, dp_syscalls) / (double)D(s, rx_pkts));
	printf("  victim's calls per datagram: client %.1f, server %.1f\n",
	       (double)(b->done - a->done) / (double)D(c, tx_pkts),
	       (double)(b->done - a->done) /
		       (double)(D(s, tx_pkts) - D(s, retry_sent)));
	printf("  CPU share of a core over the phase: server thread %.0f %%, "
	       "client thread %.0f %%, attacker %.0f %%\n",
	       100.0 * (double)(b->s_cpu - a->s_cpu) / (double)(b->now - a->now),
	       100.0 * (double)(b->c_cpu - a->c_cpu) / (double)(b->now - a->now),
	       100.0 * (double)at->cpu_ns / (double)(b->now - a->now));
	printf("  victim: %.0f calls/s alone, %.0f under attack: %.2f x\n",
	       alone, under, under / alone);
}

/* The victim's throughput under attack over alone, per phase run. */
static double ratio_of[256], under_of[256];

static void phase(char id, const char *name, struct attack *at, double T)
{
	struct snap s0, s1, s2;
	double alone, under;
	pthread_t thr;

	printf("\n%s\n", name);
	quiesce();
	take_snap(&s0);
	resume();
	alone = victim_rate(T, NULL);
	quiesce();
	take_snap(&s1);
	check("alone", &s0, &s1);
	resume();
	if (pthread_create(&thr, NULL, attacker_main, at) != 0)
		die("attacker thread", -errno);
	under = victim_rate(0, &at->done);
	pthread_join(thr, NULL);
	quiesce();
	take_snap(&s2);
	check(name, &s1, &s2);
	report(at, &s1, &s2, alone, under);
	ratio_of[(unsigned char)id] = under / alone;
	under_of[(unsigned char)id] = under;
}

static void start(struct side *sd, void *(*fn)(void *))
{
	if (pthread_create(&sd->thr, NULL, fn, NULL) != 0)
		die("thread", -errno);
	while (!atomic_load(&sd->ready))
		sleep_ms(1);
}

static void stop(struct side *sd)
{
	atomic_store(&sd->stop, 1);
	pthread_join(sd->thr, NULL);
}

static void sockets(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	udp_fd = socket(AF_INET, SOCK_DGRAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (udp_fd < 0 || bind(udp_fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("UDP socket", -errno);
	/* IPPROTO_RAW implies IP_HDRINCL: we write the IPv4 header, source
	 * address included.  It needs CAP_NET_RAW. */
	raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (raw_fd < 0)
		printf("note: no raw socket (%s): (b) goes from a plain socket "
		       "(its address check drops it before the tag), (c) is "
		       "skipped\n", strerror(errno));
}

int main(int argc, char **argv)
{
	double T = argc > 1 ? atof(argv[1]) : 5;
	unsigned lg = argc > 2 ? (unsigned)atoi(argv[2]) : 24;
	double cap = argc > 3 ? atof(argv[3]) : 240;

	struct attack a = { .kind = K_OFFPATH, .target = 1ull << lg,
			    .cap_s = cap };
	struct attack b = { .kind = K_CID_KNOWN, .target = 1ull << lg,
			    .cap_s = cap };
	struct attack c = { .kind = K_CONNECT, .cap_s = 2 * T };
	struct attack d = { .kind = K_CONNECT, .cap_s = 2 * T };
	struct attack e = { .kind = K_CONNECT, .cap_s = 2 * T, .junk = true };
	const char *only = argc > 6 ? argv[6] : "abcde";
	char title[160];

	busy = argc > 4 && strcmp(argv[4], "busy") == 0;
	c.rate = argc > 5 ? atof(argv[5]) : 1e5;
	d.rate = e.rate = c.rate;
	/* The sweeps' pace: 0, as fast as they go (the default). */
	a.rate = b.rate = argc > 7 ? atof(argv[7]) : 0;
	rng_state ^= now_ns();
	sockets();
	start(&srv, server_main);
	start(&cli, client_main);
	while (!victim_cid)
		sleep_ms(1);
	for (unsigned k = 0; k < NTPL; k++)
		tpl_one(k);
	conn_templates();
	printf("forge_sweep: victim = 1 plain session (mac, retry always), "
	       "%d calls of %d B in flight; %s poll; T = %.0f s; 2^%u "
	       "forgeries per injection sweep (cap %.0f s); %ld CPUs\n",
	       INFLIGHT, CALL_LEN, busy ? "busy" : "sleeping", T, lg, cap,
	       sysconf(_SC_NPROCESSORS_ONLN));
	resume();
	sleep_ms(500); /* warm up */
	if (strchr(only, 'a'))
		phase('a', "(a) off-path: random DCIDs, plain UDP socket", &a,
		      T);
	b.raw = raw_fd >= 0;
	if (strchr(only, 'b'))
		phase('b', b.raw ? "(b) CID known: the session's CID from the "
				   "victim's address (raw socket), random pn "
				   "and tags"
				 : "(b) CID known: the session's CID, random pn "
				   "and tags, from another port (no raw socket)",
		      &b, T);
	if (raw_fd >= 0) {
		c.raw = d.raw = e.raw = true;
		c.target = d.target = e.target = (uint64_t)(c.rate * T);
		d.dport = closed_port();
		snprintf(title, sizeof(title), "(c) spoofed CONNECTs at %.0f/s "
			 "from random 127.x.y.z (raw socket)", c.rate);
		if (strchr(only, 'c'))
			phase('c', title, &c, T);
		/* The controls: what the flood costs the victim when the
		 * server does nothing with it (d), or only receives it and
		 * looks at its first byte (e). */
		snprintf(title, sizeof(title), "(d) control: the same flood "
			 "at a port nobody listens on (%u)", d.dport);
		if (strchr(only, 'd'))
			phase('d', title, &d, T);
		if (strchr(only, 'e'))
			phase('e', "(e) control: the same flood at the server, "
				   "first byte 0 (drop_bad_magic)", &e, T);
		if (strchr(only, 'c') && (strchr(only, 'd') ||
					   strchr(only, 'e')))
			printf("\nvictim under the flood, over alone: (c) "
			       "CONNECTs %.2f x, (d) closed port %.2f x, (e) "
			       "junk dropped at the first byte %.2f x; "
			       "under (c) over under (d): %.2f x, (e) over "
			       "(d): %.2f x\n", ratio_of['c'], ratio_of['d'],
			       ratio_of['e'], under_of['c'] / under_of['d'],
			       under_of['e'] / under_of['d']);
	}
	stop(&cli);
	stop(&srv);
	if (atomic_load(&victim_ended)) {
		printf("FAIL: the victim's session ended: %s\n",
		       ferry_strerror(atomic_load(&victim_ended)));
		failures++;
	}
	printf("\n%s: %d check%s failed\n", failures ? "FAIL" : "ok", failures,
	       failures == 1 ? "" : "s");
	return failures ? 1 : 0;
}
