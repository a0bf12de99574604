/* SPDX-License-Identifier: MIT */
/*
 * The comparison peers' shared part (peer.h): command line, pinning,
 * clock, phases and report.
 */
#define _GNU_SOURCE
#include "peer.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t peer_stop;

static void on_stop(int sig)
{
	(void)sig;
	peer_stop = 1;
}

static void usage(const char *name, const char *why)
{
	if (why)
		fprintf(stderr, "%s: %s\n", name, why);
	fprintf(stderr,
		"usage: %s server|client [--addr A] [--port P] [--size B]\n"
		"       [--inflight N] [--conns N] [--duration S] [--warmup S]\n"
		"       [--busy-poll] [--cpu N] [--json FILE] [--eal ARGS]\n"
		"(see bench/peers/peer.h)\n",
		name);
	exit(2);
}

static double num(const char *name, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		usage(name, "a number is out of range");
	return v;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Not fatal: an unpinned run is still a run, and says so. */
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		perror("sched_setaffinity");
}

void peer_parse(struct peer_opts *o, const char *name, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "conns", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "busy-poll", no_argument, NULL, 'b' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'j' },
		{ "eal", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool cpu_given = false;
	struct sigaction sa;
	int c;

	memset(o, 0, sizeof(*o));
	o->name = name;
	o->addr = "127.0.0.1";
	o->port = 31900;
	o->size = 32;
	o->inflight = 1;
	o->conns = 1;
	o->duration = 5;
	o->warmup = 1;
	if (argc < 2 || (strcmp(argv[1], "server") != 0 &&
			 strcmp(argv[1], "client") != 0))
		usage(name, "first say server or client");
	o->server = strcmp(argv[1], "server") == 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'a': o->addr = optarg; break;
		case 'p': o->port = (int)num(name, optarg, 1, 65535); break;
		case 's': o->size = (uint32_t)num(name, optarg, 8, 65000); break;
		case 'i': o->inflight = (uint32_t)num(name, optarg, 1, 4096); break;
		case 'n': o->conns = (uint32_t)num(name, optarg, 1, 64); break;
		case 'd': o->duration = num(name, optarg, 0, 86400); break;
		case 'w': o->warmup = num(name, optarg, 0, 86400); break;
		case 'b': o->busy_poll = true; break;
		case 'c':
			o->cpu = (int)num(name, optarg, -1, 1023);
			cpu_given = true;
			break;
		case 'j': o->json = optarg; break;
		case 'e': o->eal = optarg; break;
		default: usage(name, NULL);
		}
	}
	if (optind != argc)
		usage(name, "unexpected argument");
	if (!cpu_given)
		o->cpu = o->server ? 0 : (int)(ncpu > 1 ? ncpu - 1 : 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pin(o->cpu);
}

uint64_t peer_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void peer_run_start(struct peer_run *r, const struct peer_opts *o)
{
	memset(r, 0, sizeof(*r));
	bench_hist_init(&r->hist);
	r->t_start = peer_now_ns();
	r->t_measure = r->t_start + (uint64_t)(o->warmup * 1e9);
	r->t_end = r->t_measure + (uint64_t)(o->duration * 1e9);
}

int peer_phase(const struct peer_run *r, uint64_t now)
{
	if (peer_stop || now >= r->t_end)
		return PEER_STOP;
	return now >= r->t_measure ? PEER_MEASURE : PEER_WARMUP;
}

void peer_fill(void *buf, const struct peer_opts *o, uint32_t slot,
	       uint32_t seq)
{
	struct peer_msg m = { slot, seq };

	memcpy(buf, &m, sizeof(m));
	memset((char *)buf + sizeof(m), 0, o->size - sizeof(m));
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

int peer_report(const struct peer_opts *o, struct peer_run *r)
{
	uint64_t now = peer_now_ns();
	uint64_t end = now < r->t_end ? now : r->t_end;
	double secs = end > r->t_measure ? (double)(end - r->t_measure) / 1e9
					 : 0;
	double rps = secs > 0 ? (double)r->completed / secs : 0;
	double gbps = secs > 0 ? (double)r->completed * 2 * o->size * 8 /
					 secs / 1e9
			       : 0;
	const struct bench_hist *h = &r->hist;
	FILE *f;

	printf("%s: %.0f calls/s, p50 %.1f us, p99 %.1f us, %llu errors\n",
	       o->name, rps, us(bench_hist_percentile(h, 50)),
	       us(bench_hist_percentile(h, 99)),
	       (unsigned long long)r->errors);
	if (r->completed == 0) {
		fprintf(stderr, "%s: no call completed\n", o->name);
		return 1;
	}
	if (!o->json)
		return 0;
	f = fopen(o->json, "w");
	if (!f) {
		perror(o->json);
		return 1;
	}
	fprintf(f,
		"{\"mode\":\"client\",\"peer\":\"%s\",\"size\":%u,"
		"\"resp_size\":%u,\"inflight\":%u,\"conns\":%u,"
		"\"sessions\":%u,\"busy_poll\":%s,\"duration_s\":%.3f,"
		"\"rps\":%.1f,\"gbps\":%.4f,\"p50_us\":%.3f,\"p99_us\":%.3f,"
		"\"p999_us\":%.3f,\"max_us\":%.3f,\"mean_us\":%.3f,"
		"\"completed\":%llu,\"errors\":%llu,\"tx_pkts\":%llu,"
		"\"rx_pkts\":%llu}\n",
		o->name, o->size, o->size, o->inflight, o->conns, o->conns,
		o->busy_poll ? "true" : "false", secs, rps, gbps,
		us(bench_hist_percentile(h, 50)),
		us(bench_hist_percentile(h, 99)),
		us(bench_hist_percentile(h, 99.9)), us(bench_hist_max(h)),
		bench_hist_mean(h) / 1000.0,
		(unsigned long long)r->completed,
		(unsigned long long)r->errors,
		(unsigned long long)r->tx_pkts,
		(unsigned long long)r->rx_pkts);
	if (fclose(f) != 0) {
		perror(o->json);
		return 1;
	}
	return 0;
}
