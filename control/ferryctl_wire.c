/* SPDX-License-Identifier: MIT */
/*
 * ferryctl bench wire - the cost of sealing wire v2 datagrams
 * (transport/seal.c; docs/wire.md, sections 2.3 and 4.6): nanoseconds
 * per datagram of 64 and 1400 bytes (header and frames; the trailer comes
 * on top) for each mode, sealing and opening, in both suites (ChaCha20-
 * Poly1305, and AES-256-GCM where the CPU has it: "n/a" otherwise), and
 * X25519 handshakes per second.  docs/bench.md keeps the figures ("Sealing cost").
 *
 * Each case runs --reps times for --ms milliseconds; the reps are
 * interleaved across the cases, so a drift of the machine touches them all
 * alike, and the median is printed.
 *
 * Exit status: 0, 1 (libsodium failed), 2 (usage).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "control/internal.h"
#include "transport/seal.h"

#define REPS_MAX 99
#define HDR 13      /* the short header */
#define AREA 17     /* the header area a sender owns: header + frame header */
#define BIG 1400

enum wcase {
	W_NONE_SEAL,
	W_NONE_OPEN,
	W_MAC_SEAL,
	W_MAC_SEAL_IOV,
	W_MAC_OPEN,
	W_AEAD_SEAL,
	W_AEAD_BOTH, /* seal then open: an aead open needs a fresh datagram */
	/* The same five under the AES-256-GCM suite. */
	W_MAC_AES_SEAL,
	W_MAC_AES_SEAL_IOV,
	W_MAC_AES_OPEN,
	W_AEAD_AES_SEAL,
	W_AEAD_AES_BOTH,
	W_NCASES,
};

static const char *const case_names[W_NCASES] = {
	[W_NONE_SEAL] = "none  seal (CRC32C)",
	[W_NONE_OPEN] = "none  open",
	[W_MAC_SEAL] = "mac   seal, one-shot",
	[W_MAC_SEAL_IOV] = "mac   seal, scattered (3 pieces)",
	[W_MAC_OPEN] = "mac   open",
	[W_AEAD_SEAL] = "aead  seal",
	[W_AEAD_BOTH] = "aead  open (seal+open - seal)",
	[W_MAC_AES_SEAL] = "mac   seal, one-shot, AES-256-GCM",
	[W_MAC_AES_SEAL_IOV] = "mac   seal, scattered, AES-256-GCM",
	[W_MAC_AES_OPEN] = "mac   open, AES-256-GCM",
	[W_AEAD_AES_SEAL] = "aead  seal, AES-256-GCM",
	[W_AEAD_AES_BOTH] = "aead  open, AES-256-GCM",
};

/* The cases of the AES suite, which need AES-NI and PCLMULQDQ. */
static bool is_aes(int c)
{
	return c >= W_MAC_AES_SEAL;
}

struct wbench {
	uint8_t key[32];
	uint8_t dg[BIG + FERRY_SEAL_TAG_LEN];
	uint8_t sealed[W_NCASES][BIG + FERRY_SEAL_TAG_LEN];
	size_t len;
	uint64_t pn;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One operation of case @c; nonzero if a seal or open failed. */
static int wire_op(struct wbench *b, enum wcase c)
{
	struct iovec iov[3] = {
		{ b->dg, AREA },
		{ b->dg + AREA, (b->len - AREA) / 2 },
		{ b->dg + AREA + (b->len - AREA) / 2,
		  b->len - AREA - (b->len - AREA) / 2 },
	};
	uint64_t pn = b->pn++;
	enum ferry_seal_mode mac = is_aes(c) ? FERRY_SEAL_MAC_AES
					     : FERRY_SEAL_MAC;
	enum ferry_seal_mode aead = is_aes(c) ? FERRY_SEAL_AEAD_AES
					      : FERRY_SEAL_AEAD;
	int rc;

	switch (c) {
	case W_NONE_SEAL:
		return ferry__seal(FERRY_SEAL_NONE, NULL, pn, b->dg, HDR,
				   b->len) < 0;
	case W_NONE_OPEN:
		return ferry__seal_open(FERRY_SEAL_NONE, NULL, 0, b->sealed[c],
					HDR, b->len + 4) < 0;
	case W_MAC_SEAL:
	case W_MAC_AES_SEAL:
		return ferry__seal(mac, b->key, pn, b->dg, HDR, b->len) < 0;
	case W_MAC_SEAL_IOV:
	case W_MAC_AES_SEAL_IOV:
		return ferry__seal_iov(mac, b->key, pn, iov, 3,
				       b->dg + b->len) < 0;
	case W_MAC_OPEN:
	case W_MAC_AES_OPEN:
		return ferry__seal_open(mac, b->key, 0, b->sealed[c], HDR,
					b->len + 16) < 0;
	case W_AEAD_SEAL:
	case W_AEAD_AES_SEAL:
		return ferry__seal(aead, b->key, pn, b->dg, HDR, b->len) < 0;
	case W_AEAD_BOTH:
	case W_AEAD_AES_BOTH:
		rc = ferry__seal(aead, b->key, pn, b->dg, HDR, b->len);
		return rc < 0 || ferry__seal_open(aead, b->key, pn, b->dg, HDR,
						  (size_t)rc) < 0;
	default:
		return 1;
	}
}

/* Nanoseconds per call of @op(@arg) over @secs; the clock is read every
 * 64 calls, so reading it costs nothing measurable. */
static int time_ns(int (*op)(void *, int), void *arg, int c, double secs,
		   double *ns)
{
	double t0 = mono(), dt;
	uint64_t n = 0;

	do {
		for (int i = 0; i < 64; i++)
			if (op(arg, c))
				return -1;
		n += 64;
		dt = mono() - t0;
	} while (dt < secs);
	*ns = dt * 1e9 / (double)n;
	return 0;
}

static int wire_thunk(void *arg, int c)
{
	return wire_op(arg, (enum wcase)c);
}

/* One side of a handshake: an ephemeral key pair, the transcript of a
 * 512-byte CONNECT, X25519 and the key schedule. */
static int hs_side(void *arg, int server)
{
	static uint8_t connect[512];
	const uint8_t *peer_pk = arg;
	uint8_t pk[32], sk[32], th[32];
	struct ferry__seal_keys k;
	int rc;

	crypto_kx_keypair(pk, sk);
	ferry__seal_transcript(connect, sizeof(connect), th);
	rc = server ? ferry__seal_keys_server(pk, sk, peer_pk, th, NULL, &k)
		    : ferry__seal_keys_client(pk, sk, peer_pk, th, NULL, &k);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(&k, sizeof(k));
	return rc != 0;
}

static void wire_setup(struct wbench *b, size_t len)
{
	randombytes_buf(b->key, sizeof(b->key));
	randombytes_buf(b->dg, sizeof(b->dg));
	b->len = len;
	/* The datagrams the open cases check, sealed under pn 0. */
	memcpy(b->sealed[W_NONE_OPEN], b->dg, len);
	ferry__seal(FERRY_SEAL_NONE, NULL, 0, b->sealed[W_NONE_OPEN], HDR, len);
	memcpy(b->sealed[W_MAC_OPEN], b->dg, len);
	ferry__seal(FERRY_SEAL_MAC, b->key, 0, b->sealed[W_MAC_OPEN], HDR, len);
	memcpy(b->sealed[W_MAC_AES_OPEN], b->dg, len);
	if (ferry__seal_aes_available())
		ferry__seal(FERRY_SEAL_MAC_AES, b->key, 0,
			    b->sealed[W_MAC_AES_OPEN], HDR, len);
	b->pn = 1;
}

static int parse_opt_u(const char *s, unsigned long lo, unsigned long hi,
		       unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || end == s || *end || *out < lo || *out > hi ? -1 : 0;
}

static int bench_usage(const char *why)
{
	fprintf(stderr, "ferryctl: bench wire: %s\n"
		"usage: ferryctl bench wire [--reps N] [--ms N] [--cpu N]\n",
		why);
	return 2;
}

static int run_cases(struct wbench *b, int reps, double secs,
		     double res[2][W_NCASES][REPS_MAX],
		     double hs[2][REPS_MAX])
{
	static const size_t sizes[2] = { 64, BIG };
	uint8_t peer_pk[32], peer_sk[32];

	crypto_kx_keypair(peer_pk, peer_sk);
	for (int r = 0; r < reps; r++) {
		for (int s = 0; s < 2; s++) {
			wire_setup(b, sizes[s]);
			for (int c = 0; c < W_NCASES; c++) {
				if (is_aes(c) && !ferry__seal_aes_available())
					continue;
				if (time_ns(wire_thunk, b, c, secs,
					    &res[s][c][r]) < 0)
					return -1;
			}
		}
		for (int side = 0; side < 2; side++)
			if (time_ns(hs_side, peer_pk, side, secs,
				    &hs[side][r]) < 0)
				return -1;
	}
	return 0;
}

int ferry__ctl_bench_wire(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reps", required_argument, NULL, 'r' },
		{ "ms", required_argument, NULL, 'm' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static double res[2][W_NCASES][REPS_MAX], hs[2][REPS_MAX];
	static struct wbench b;
	unsigned long reps = 5, ms = 200, cpu = 0;
	double med[2][W_NCASES], c_ns, s_ns;
	int have_cpu = 0, c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'r' && parse_opt_u(optarg, 1, REPS_MAX, &reps))
			return bench_usage("--reps: want 1..99");
		if (c == 'm' && parse_opt_u(optarg, 1, 60000, &ms))
			return bench_usage("--ms: want 1..60000");
		if (c == 'c') {
			if (parse_opt_u(optarg, 0, CPU_SETSIZE - 1, &cpu))
				return bench_usage("--cpu: not a CPU number");
			have_cpu = 1;
		}
		if (c == 'h') {
			printf("usage: ferryctl bench wire [--reps N] [--ms N] "
			       "[--cpu N]\n");
			return 0;
		}
		if (c == '?')
			return bench_usage("bad option");
	}
	if (optind != argc)
		return bench_usage("unexpected argument");
	if (have_cpu) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET((int)cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0) {
			fprintf(stderr, "ferryctl: bench wire: --cpu %lu: %s\n",
				cpu, strerror(errno));
			return 1;
		}
	}
	if (ferry__seal_init() < 0 ||
	    run_cases(&b, (int)reps, (double)ms / 1e3, res, hs) < 0) {
		fprintf(stderr, "ferryctl: bench wire: a seal or open failed\n");
		return 1;
	}
	for (int s = 0; s < 2; s++)
		for (int k = 0; k < W_NCASES; k++)
			med[s][k] = median(res[s][k], (int)reps);
	c_ns = median(hs[0], (int)reps);
	s_ns = median(hs[1], (int)reps);

	printf("wire v2 sealing, ns per datagram (median of %lu runs of %lu ms;\n"
	       "sizes are header + frames, the trailer comes on top)\n",
	       reps, ms);
	printf("%-34s %8s %8s\n", "", "64 B", "1400 B");
	for (int k = 0; k < W_NCASES; k++) {
		double v64 = med[0][k], v1400 = med[1][k];

		if (is_aes(k) && !ferry__seal_aes_available()) {
			printf("%-34s %8s %8s\n", case_names[k], "n/a", "n/a");
			continue;
		}
		if (k == W_AEAD_BOTH || k == W_AEAD_AES_BOTH) {
			/* Less the seal, the case just before it. */
			v64 -= med[0][k - 1];
			v1400 -= med[1][k - 1];
		}
		printf("%-34s %8.1f %8.1f\n", case_names[k], v64, v1400);
	}
	printf("X25519 handshake (crypto_kx key pair, BLAKE2b transcript of "
	       "512 B,\nX25519 and key schedule), per core:\n");
	printf("  client side %10.0f per s (%.1f us)\n", 1e9 / c_ns, c_ns / 1e3);
	printf("  server side %10.0f per s (%.1f us)\n", 1e9 / s_ns, s_ns / 1e3);
	printf("  both sides  %10.0f per s\n", 1e9 / (c_ns + s_ns));
	return 0;
}
