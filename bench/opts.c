/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench's command line: one table row per option, from which both
 * the parser and `--help` are made, so the help names every option the
 * parser takes, in the words of the row that parses it.  Then the checks
 * that span options (what a mode takes, what an option needs).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>

#include "../dataplane/dp.h"
#include "bench.h"

#define XSTR(x) STR(x)
#define STR(x) #x

enum opt_kind {
	OPT_FLAG,    /* bool: set to true */
	OPT_NOFLAG,  /* bool: set to false */
	OPT_STR,     /* const char *, as given */
	OPT_IPV4,    /* const char *, a dotted IPv4 address */
	OPT_SIZE,    /* uint32_t bytes, K/M/G suffixes */
	OPT_U16,     /* whole numbers from lo to hi */
	OPT_U32,
	OPT_INT,
	OPT_U64,     /* any whole number strtoull takes (0x: hex) */
	OPT_SECS,    /* double, 0 to 86400 */
	OPT_FRAC,    /* double, 0 to 1 */
	OPT_HELP,
};

/* The roles and the floor, for the modes an option is taken in. */
enum {
	IN_LOOP = 1,
	IN_SERVER = 2,
	IN_CLIENT = 4,
};

struct opt {
	const char *name;      /* without the leading "--" */
	enum opt_kind kind;
	size_t off;            /* where in struct bench_opts */
	uint32_t lo, hi;       /* whole numbers; sizes when hi is not 0 */
	const char *arg;       /* the argument's name in --help */
	/* --help: lines separated by '\n'; "{dataplanes}" names the built-in
	 * dataplanes.  NULL: the next row's text covers this option too. */
	const char *help;
	/* Where it may be given: why the floor refuses it (NULL: the floor
	 * takes it); the roles that take it (0: all) and why others do not. */
	const char *no_floor;
	unsigned roles;
	const char *roles_why;
	/* Another option it needs given with it, and why (may be NULL). */
	const char *needs;
	const char *needs_why;
	/* Given as 0, it counts as not given for the two checks above (a
	 * fault rate of 0 injects nothing, 0 tokens need no keyring). */
	bool zero_unset;
};

#define AT(field) offsetof(struct bench_opts, field)

static const char *const no_rpc_verify =
	"the floor has no RPC layer to verify or recover";

static const struct opt opts[] = {
	{ "dataplane", OPT_STR, AT(dataplane), .arg = "NAME",
	  .help = "dataplane backend (built in: {dataplanes}; default uring)" },
	{ "addr", OPT_IPV4, AT(addr), .arg = "IPV4",
	  .help = "server address: bound by server, called by client\n"
		  "(default 127.0.0.1)" },
	{ "port", OPT_U16, AT(port), 1, 65535, .arg = "N",
	  .help = "server UDP port (default 31850)" },
	{ "size", OPT_SIZE, AT(size), .arg = "BYTES",
	  .help = "request payload size, K/M suffixes allowed (default 32)" },
	{ "resp-size", OPT_SIZE, AT(resp_size), .arg = "BYTES",
	  .help = "response payload size (default: --size)" },
	{ "inflight", OPT_U32, AT(inflight), 1, 4096, .arg = "N",
	  .help = "calls outstanding per session (default 1)" },
	{ "sessions", OPT_U32, AT(sessions), 1, 100000, .arg = "N",
	  .help = "sessions per client thread (default 1)" },
	{ "threads", OPT_U32, AT(threads), 1, 64, .arg = "N",
	  .help = "client threads, and server threads (default 1)" },
	{ "duration", OPT_SECS, AT(duration), .arg = "SEC",
	  .help = "measured time (default 5; server: until interrupted)" },
	{ "warmup", OPT_SECS, AT(warmup), .arg = "SEC",
	  .help = "unmeasured time before it (default 1)" },
	{ "measure-at", OPT_STR, AT(measure_at_arg), .arg = "T",
	  .help = "start measuring at Unix time T (seconds, a fraction\n"
		  "allowed) instead of --warmup after start: the warm-up\n"
		  "lasts until then, so that processes that take\n"
		  "different times to start measure the same window\n"
		  "(bench/testbed does); a T already past measures at once",
	  .roles = IN_LOOP | IN_CLIENT,
	  .roles_why = "is for clients (loop, client): a server measures "
		       "nothing of its own" },
	{ "busy-poll", OPT_FLAG, AT(busy_poll),
	  .help = "spin on completions instead of sleeping in the kernel" },
	{ "no-pin", OPT_NOFLAG, AT(pin),
	  .help = "do not pin threads (default: server threads on the\n"
		  "first CPUs, client threads on the next ones; a\n"
		  "client-only process from the last CPU down)" },
	{ "max-frame", OPT_SIZE, AT(max_frame), 128, 65507, .arg = "BYTES",
	  .help = "largest datagram, header included (default 8192)" },
	{ "zc-threshold", OPT_SIZE, AT(zc_threshold), .arg = "B",
	  .help = "send payloads of at least B bytes with SEND_ZC\n"
		  "(default 0: off; see docs/bench.md)" },
	{ "no-gso", OPT_FLAG, AT(no_gso),
	  .help = "uring: send every datagram on its own, not trains of\n"
		  "them with UDP GSO (default: GSO where the kernel has it)" },
	{ "no-gro", OPT_FLAG, AT(no_gro),
	  .help = "uring: do not take coalesced receives (UDP GRO)\n"
		  "(default: GRO where the kernel has it)" },
	{ "verify", OPT_FLAG, AT(verify), .no_floor = no_rpc_verify,
	  .help = "number every call and fill it with a pattern; the server\n"
		  "checks order and payload, the client the response;\n"
		  "reports lost, duplicates, out_of_order, corrupt (all\n"
		  "must be 0) and exits 1 otherwise; needs sizes >= 16" },
	{ "loss", OPT_FRAC, AT(loss), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true },
	{ "dup", OPT_FRAC, AT(dup), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true },
	{ "reorder", OPT_FRAC, AT(reorder), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true },
	{ "corrupt", OPT_FRAC, AT(corrupt), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true },
	{ "delay", OPT_FRAC, AT(delay), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true },
	{ "truncate", OPT_FRAC, AT(truncate), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true },
	{ "garbage", OPT_FRAC, AT(garbage), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true },
	{ "replay", OPT_FRAC, AT(replay), .arg = "F",
	  .no_floor = no_rpc_verify, .zero_unset = true,
	  .help = "inject faults into every received datagram with these\n"
		  "probabilities (0..1), on both ends (RPC only): drop it,\n"
		  "deliver it twice, hold it behind later ones, flip a\n"
		  "bit, hold it --delay-us, cut it\n"
		  "to a random shorter length, deliver random bytes\n"
		  "besides it, deliver it again after up to 256 more" },
	{ "delay-us", OPT_U32, AT(delay_us), 0, 1000000, .arg = "US",
	  .help = "how long --delay holds a datagram (default 1000)" },
	{ "seed", OPT_U64, AT(seed), .arg = "N",
	  .help = "seed (default 1) of fault injection and of --deferred's\n"
		  "choices and delays: same seed, same faults" },
	{ "wire-mode", OPT_STR, AT(wire_mode), .arg = "MODE",
	  .no_floor = "the floor sends raw datagrams, no sessions",
	  .help = "how every datagram is protected: mac (default: a\n"
		  "Poly1305 tag under the session key), aead (and\n"
		  "encrypted), none (a CRC32C: trusted fabrics only)" },
	{ "retry-never", OPT_FLAG, AT(retry_never),
	  .no_floor = "the floor sends raw datagrams, no sessions",
	  .help = "server: admit a CONNECT without first proving its\n"
		  "address with a retry cookie (trusted fabrics)" },
	{ "peer-timeout", OPT_U32, AT(peer_timeout_ms), 10, 3600000,
	  .arg = "MS",
	  .help = "declare a silent peer dead after MS (default 5000);\n"
		  "its calls fail, and a client with no session left stops" },
	{ "cc", OPT_STR, AT(cc), .arg = "ALGO",
	  .no_floor = "the floor has no RPC layer to control congestion",
	  .help = "congestion control of every session: none (credits\n"
		  "alone) or swift (a delay-based window with pacing);\n"
		  "default: the library's (none)" },
	{ "cc-target-us", OPT_U32, AT(cc_target_us), 0, 1000000, .arg = "US",
	  .no_floor = "the floor has no RPC layer to control congestion",
	  .zero_unset = true,
	  .help = "the round trip swift holds, the same for every flow\n"
		  "(default 0: automatic, 1 ms, or twice the smallest\n"
		  "RTT seen on a longer path)" },
	{ "ip", OPT_IPV4, AT(ip), .arg = "IPV4",
	  .help = "this process's own address: a server binds it (instead\n"
		  "of --addr), a client binds it; needed on DPDK" },
	{ "connect", OPT_IPV4, AT(addr), .arg = "IPV4",
	  .help = "the server a client calls (same as --addr)" },
	{ "eal", OPT_STR, AT(eal), .arg = "\"ARGS\"",
	  .help = "DPDK: EAL arguments, e.g. \"--no-huge -m 512 --no-pci\n"
		  "--file-prefix a --vdev=net_memif0,role=server\" (see\n"
		  "docs/dpdk.md); server thread i listens on --port + i" },
	{ "dpdk-port", OPT_INT, AT(dpdk_port), 0, 1023, .arg = "N",
	  .help = "DPDK: the port to use (default: the least used)" },
	{ "dpdk-queues", OPT_U32, AT(dpdk_queues), 1, 16, .arg = "N",
	  .help = "DPDK: RX/TX queue pairs per port (default 1)" },
	{ "keyring", OPT_STR, AT(keyring), .arg = "FILE",
	  .no_floor = "the floor has no RPC layer to admit sessions",
	  .help = "admission with channel tokens (docs/tokens.md; make one\n"
		  "with `ferryctl key new`): a server admits only clients\n"
		  "with a valid token for channel \"" BENCH_CHANNEL "\",\n"
		  "audience \"" BENCH_AUDIENCE "\"; a client issues itself\n"
		  "one from FILE at start and presents it at connect" },
	{ "caps", OPT_U32, AT(caps), 0, BENCH_CAPS_MAX, .arg = "N",
	  .needs = "keyring", .needs_why = " to issue the tokens",
	  .zero_unset = true,
	  .help = "attach N tokens to every call (0.." XSTR(BENCH_CAPS_MAX)
		  "; needs --keyring):\n"
		  "issued once at start (subrequest, audience\n"
		  "\"" BENCH_AUDIENCE "\", target \"" BENCH_CHANNEL
		  "\", entrypoint\n"
		  "\"" BENCH_CAP_ENTRY "\"); the server redeems each and "
		  "refuses\n"
		  "(and counts as an error) a call whose token fails.\n"
		  "With --verify, sealed per call instead, with props\n"
		  "naming the call (its number and the token's index),\n"
		  "which the server checks (a mismatch counts corrupt);\n"
		  "longer tokens: at most " XSTR(BENCH_VCAPS_MAX)
		  " per call then" },
	{ "deferred", OPT_FRAC, AT(deferred), .arg = "F",
	  .no_floor = "the floor has no RPC layer to carry tokens",
	  .roles = IN_LOOP | IN_CLIENT,
	  .roles_why = "is for clients (loop, client): a server with "
		       "--keyring takes deferred tokens as they come",
	  .help = "a fraction F (0..1) of calls, chosen at random from\n"
		  "--seed, carry deferred tokens (IOUs): each of their\n"
		  "--caps tokens comes from a delayed issuer (by default\n"
		  "completed on the client thread, from its poll loop:\n"
		  "see --issuer-thread) and follows the call in a PUSH; the\n"
		  "server's handler runs in order and answers once they\n"
		  "are in.  With --verify the issuer seals each token as\n"
		  "it completes it; without, it hands over the token\n"
		  "issued at start (measuring the deferred path, not\n"
		  "sealing: `ferryctl bench` measures that).  A server\n"
		  "with --keyring takes IOUs whatever its options, and\n"
		  "verifies pushed tokens on arrival.  Reports the\n"
		  "server's IOU counters (created, resolved, rejected),\n"
		  "or in a client-only process the client's (promised,\n"
		  "pushed, dropped).  Needs --keyring and --caps >= 1;\n"
		  "for clients (loop, client)" },
	{ "deferred-delay-us", OPT_U32, AT(deferred_delay_us), 0, 1000000,
	  .arg = "D", .needs = "deferred",
	  .help = "each deferred token is issued after a delay drawn\n"
		  "uniformly in [0, D] microseconds (0..1000000,\n"
		  "default 200; needs --deferred)" },
	{ "issuer-thread", OPT_FLAG, AT(issuer_thread), .needs = "deferred",
	  .help = "the delayed issuer runs on a thread of its own, one per\n"
		  "process, that sleeps until the next due time and\n"
		  "completes the tokens from there (a cross-thread hand-off\n"
		  "to the client threads).  Default: each client thread\n"
		  "has its own and completes what is due after each poll,\n"
		  "as an issuer answered over RPC on the same endpoint\n"
		  "would (needs --deferred)" },
	{ "trace-out", OPT_STR, AT(trace_out), .arg = "FILE",
	  .no_floor = "the floor has no sessions to trace",
	  .help = "record a session span per session and a call span per\n"
		  "sampled call, written to FILE (replaced) as OTLP/JSON\n"
		  "lines (docs/tracing.md); ferryctl spans FILE shows the\n"
		  "tree.  Give each process its own FILE" },
	{ "trace-format", OPT_STR, AT(trace_format), .arg = "FMT",
	  .needs = "trace-out",
	  .help = "the --trace-out file's format: json (OTLP/JSON lines,\n"
		  "the default) or protobuf (length-delimited\n"
		  "ExportTraceServiceRequest messages, docs/tracing.md)" },
	{ "otlp", OPT_FLAG, AT(otlp), .no_floor = "the floor has no sessions to trace",
	  .help = "record spans as --trace-out does and send them to an\n"
		  "OpenTelemetry collector over OTLP/HTTP, configured by\n"
		  "the OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME /\n"
		  "OTEL_RESOURCE_ATTRIBUTES variables (docs/tracing.md,\n"
		  "\"Configuration\"); with or without --trace-out" },
	{ "otlp-endpoint", OPT_STR, AT(otlp_endpoint), .arg = "URL",
	  .no_floor = "the floor has no sessions to trace",
	  .help = "as --otlp, to the traces URL given (http:// only, used\n"
		  "as it is: http://HOST:4318/v1/traces)" },
	{ "otlp-protocol", OPT_STR, AT(otlp_protocol), .arg = "P",
	  .needs = "otlp|otlp-endpoint",
	  .help = "http/protobuf (the default) or http/json, over what\n"
		  "OTEL_EXPORTER_OTLP_PROTOCOL says" },
	{ "otlp-gzip", OPT_FLAG, AT(otlp_gzip), .needs = "otlp|otlp-endpoint",
	  .help = "gzip the request bodies (Content-Encoding: gzip)" },
	{ "trace-sample", OPT_FRAC, AT(trace_sample), .arg = "F",
	  .needs = "trace-out|otlp|otlp-endpoint",
	  .help = "fraction of calls that get call spans (0..1, default\n"
		  "1; needs --trace-out or --otlp): each client call is\n"
		  "drawn on its own, and a server follows its client's\n"
		  "decision (docs/tracing.md, section 4)" },
	{ "trace-max-bytes", OPT_U64, AT(trace_max_bytes), .arg = "N",
	  .needs = "trace-out",
	  .help = "rotate FILE before it would pass N bytes (FILE.1,\n"
		  "FILE.2 kept; 0: no cap, else at least 4096; default\n"
		  "268435456, 256 MiB; needs --trace-out)" },
	{ "trace-budget", OPT_FRAC, AT(trace_budget), .arg = "F",
	  .needs = "trace-out|otlp|otlp-endpoint",
	  .help = "most of its time the tracer's drain thread (and the\n"
		  "OTLP sender's) may spend on the CPU (0..1, default\n"
		  "0.05; 0: unlimited; needs --trace-out or --otlp): past\n"
		  "it, spans are dropped and counted (docs/tracing.md,\n"
		  "\"CPU budget\")" },
	{ "trace-max-sps", OPT_U32, AT(trace_max_sps), 0, 4000000000u,
	  .arg = "N", .needs = "trace-out|otlp|otlp-endpoint",
	  .help = "at most N call spans a second per endpoint (0: no\n"
		  "limit, the default; needs --trace-out or --otlp); the\n"
		  "calls past it get no span, counted" },
	{ "metrics", OPT_STR, AT(metrics_at), .arg = "ADDR:PORT",
	  .no_floor = "the floor has no endpoints to count",
	  .help = "serve every endpoint's counters (and the tracer's) in\n"
		  "Prometheus's text format at http://ADDR:PORT/metrics\n"
		  "while running (docs/api.md, \"Metrics\"); an IPv4\n"
		  "address or [IPv6]; PORT 0 picks a free port.  The URL\n"
		  "is printed at start" },
	{ "json", OPT_STR, AT(json), .arg = "FILE",
	  .help = "also write the summary as JSON to FILE, with the latency\n"
		  "curve and the throughput each 0.1 s (docs/bench.md,\n"
		  "\"Plots\")" },
	{ "label", OPT_STR, AT(label), .arg = "TEXT",
	  .help = "this run's name: \"label\" in --json, the legend in plots" },
	{ "plot", OPT_STR, AT(plot), .arg = "FILE.svg",
	  .help = "after a run that succeeded, draw its latency curve and\n"
		  "throughput over time to FILE.svg with ferry-bench-plot\n"
		  "(bench/plot, beside ferry-bench; needs python3)" },
	{ "quiet", OPT_FLAG, AT(quiet),
	  .help = "no progress line each second" },
	{ "help", OPT_HELP, .help = "this text" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const char usage_head[] =
"usage: ferry-bench [loop|server|client] [options]\n"
"       ferry-bench floor [loop|server|client] [options]\n"
"\n"
"Load-tests ferry RPCs and prints throughput and latency.\n"
"  loop     server and client threads in one process, over loopback (default)\n"
"  server   serve echo calls until interrupted (or for --duration seconds)\n"
"  client   call a server at --addr:--port (or --connect)\n"
"  floor    the same roles as a raw echo on the same dataplane, with the same\n"
"           batching and no RPC layer: the floor RPC figures are compared to\n"
"\n"
"options:\n";

/* Where an option's text starts in --help. */
#define HELP_COL 21

__attribute__((format(printf, 1, 2), noreturn))
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferry-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ferry-bench --help'.\n");
	exit(2);
}

/* One line of an option's help text, with the dataplanes filled in. */
static void help_line(const char *s, size_t len)
{
	static const char mark[] = "{dataplanes}";
	const char *m = memmem(s, len, mark, sizeof(mark) - 1);

	if (!m) {
		printf("%.*s\n", (int)len, s);
		return;
	}
	printf("%.*s%s", (int)(m - s), s, ferry__dp_names());
	help_line(m + sizeof(mark) - 1, len - (size_t)(m - s) -
						(sizeof(mark) - 1));
}

/* --help: the heading, then each row's names and text. */
static void print_help(void)
{
	char left[128];
	size_t n = 0;

	fputs(usage_head, stdout);
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *p = &opts[i];
		const char *s;

		n += (size_t)snprintf(left + n, sizeof(left) - n,
				      "%s%s--%s%s%s", n ? ", " : "  ",
				      p->kind == OPT_HELP ? "-h, " : "",
				      p->name, p->arg ? " " : "",
				      p->arg ? p->arg : "");
		if (!p->help)
			continue; /* described with the next row */
		if (n + 2 <= HELP_COL)
			printf("%-*s", HELP_COL, left);
		else
			printf("%s\n%*s", left, HELP_COL, "");
		for (s = p->help;;) {
			const char *nl = strchr(s, '\n');

			help_line(s, nl ? (size_t)(nl - s) : strlen(s));
			if (!nl)
				break;
			s = nl + 1;
			printf("%*s", HELP_COL, "");
		}
		n = 0;
	}
}

/* "64", "4K", "1M", "1.5M": bytes (binary multiples). */
static uint32_t parse_size(const char *s, const struct opt *p)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		die_usage("--%s wants a size such as 32, 4K or 1M", p->name);
	if (*end == 'K' || *end == 'k')
		v *= 1024, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		v *= 1024.0 * 1024 * 1024, end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (double)(1u << 30))
		die_usage("--%s wants a size from 0 to 1G", p->name);
	if (p->hi && (v < p->lo || v > p->hi))
		die_usage("--%s wants %u to %u bytes", p->name, p->lo, p->hi);
	return (uint32_t)v;
}

static uint32_t parse_count(const char *s, const struct opt *p)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (end == s || *end || errno || v < p->lo || v > p->hi)
		die_usage("--%s wants a whole number from %u to %u", p->name,
			  p->lo, p->hi);
	return (uint32_t)v;
}

static double parse_double(const char *s, const struct opt *p)
{
	double hi = p->kind == OPT_SECS ? 86400 : 1;
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= 0 && v <= hi))
		die_usage(p->kind == OPT_SECS
				  ? "--%s wants seconds, from 0 to 86400"
				  : "--%s wants a fraction from 0 to 1",
			  p->name);
	return v;
}

/* Store @arg (NULL for flags) as row @p says. */
static void store(const struct opt *p, char *arg, struct bench_opts *o)
{
	void *at = (char *)o + p->off;
	uint32_t ip;
	char *end;

	switch (p->kind) {
	case OPT_FLAG:
	case OPT_NOFLAG:
		*(bool *)at = p->kind == OPT_FLAG;
		break;
	case OPT_IPV4:
		if (ferry__addr_parse_ip(arg, &ip) < 0)
			die_usage("--%s wants an IPv4 address, not '%s'",
				  p->name, arg);
		/* fall through */
	case OPT_STR:
		*(const char **)at = arg;
		break;
	case OPT_SIZE:
		*(uint32_t *)at = parse_size(arg, p);
		break;
	case OPT_U16:
		*(uint16_t *)at = (uint16_t)parse_count(arg, p);
		break;
	case OPT_U32:
		*(uint32_t *)at = parse_count(arg, p);
		break;
	case OPT_INT:
		*(int *)at = (int)parse_count(arg, p);
		break;
	case OPT_U64:
		errno = 0;
		*(uint64_t *)at = strtoull(arg, &end, 0);
		if (end == arg || *end || errno)
			die_usage("--%s wants a whole number, not '%s'",
				  p->name, arg);
		break;
	case OPT_SECS:
	case OPT_FRAC:
		*(double *)at = parse_double(arg, p);
		break;
	case OPT_HELP:
		print_help();
		exit(0);
	}
}

static const struct opt *find(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	abort(); /* a name missing from the table is a bug here */
}

static bool given(const bool *seen, const char *name)
{
	return seen[find(name) - opts];
}

/* Whether any of the options @names ("a|b|c") was given. */
static bool given_any(const bool *seen, const char *names)
{
	char one[32];

	while (*names) {
		size_t n = strcspn(names, "|");

		snprintf(one, sizeof(one), "%.*s", (int)n, names);
		if (given(seen, one))
			return true;
		names += n + (names[n] == '|');
	}
	return false;
}

/* Whether row @i was given, for the checks of where it is taken and what
 * it needs. */
static bool active(const struct bench_opts *o, const bool *seen, size_t i)
{
	const void *at = (const char *)o + opts[i].off;

	if (!seen[i] || !opts[i].zero_unset)
		return seen[i];
	if (opts[i].kind == OPT_FRAC)
		return *(const double *)at != 0;
	return *(const uint32_t *)at != 0;
}

/* What each row says about where it is taken and what it needs.  Mode
 * rows are checked before the checks between values (check_values()),
 * needs after them, so the reason given is the most telling one. */
static void check_modes(const struct bench_opts *o, const bool *seen)
{
	unsigned role = strcmp(o->mode, "loop") == 0     ? IN_LOOP
			: strcmp(o->mode, "server") == 0 ? IN_SERVER
							 : IN_CLIENT;

	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *p = &opts[i];

		if (!active(o, seen, i))
			continue;
		if (o->floor && p->no_floor)
			die_usage("--%s: %s", p->name, p->no_floor);
		if (p->roles && !(p->roles & role))
			die_usage("--%s %s", p->name, p->roles_why);
	}
}

static void check_needs(const struct bench_opts *o, const bool *seen)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *p = &opts[i];

		if (active(o, seen, i) && p->needs &&
		    !given_any(seen, p->needs)) {
			char alt[96];

			/* "a|b" reads "--a or --b". */
			snprintf(alt, sizeof(alt), "--%s", p->needs);
			for (char *c = strchr(alt, '|'); c; c = strchr(c, '|')) {
				memmove(c + 6, c + 1, strlen(c + 1) + 1);
				memcpy(c, " or --", 6);
			}
			die_usage("--%s needs %s%s", p->name, alt,
				  p->needs_why ? p->needs_why : "");
		}
	}
}

/* The positional words: [floor] [loop|server|client]. */
static void parse_mode(int argc, char **argv, struct bench_opts *o)
{
	if (optind < argc && strcmp(argv[optind], "floor") == 0) {
		o->floor = true;
		optind++;
	}
	if (optind < argc)
		o->mode = argv[optind++];
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (strcmp(o->mode, "loop") && strcmp(o->mode, "server") &&
	    strcmp(o->mode, "client"))
		die_usage("unknown mode '%s' (loop, server, client, floor)",
			  o->mode);
	if (!ferry__dp_find(o->dataplane)) {
		fprintf(stderr,
			"ferry-bench: dataplane '%s' is not built in "
			"(built in: %s)\n",
			o->dataplane, ferry__dp_names());
		exit(2);
	}
}

/* The checks between option values, and the values one sets for another. */
static void check_values(struct bench_opts *o, const bool *seen)
{
	if (strcmp(o->dataplane, "dpdk") == 0) {
		if (!o->eal)
			die_usage("--eal: --dataplane dpdk needs --eal \"<EAL "
				  "arguments>\" (see docs/dpdk.md)");
		/* Every DPDK endpoint has an address of its own to answer ARP
		 * for: the server's is --ip (or --addr), a client's --ip. */
		if (!o->ip && strcmp(o->mode, "server") != 0 &&
		    strcmp(o->mode, "loop") != 0)
			die_usage("--ip: a DPDK client needs its own "
				  "address, --ip");
		if (!o->ip)
			o->ip = o->addr;
	}
	/* In one process the client calls the server where it listens. */
	if (strcmp(o->mode, "loop") == 0 && o->ip)
		o->addr = o->ip;
	if (!given(seen, "resp-size"))
		o->resp_size = o->size;
	/* The server sizes its pool for 8 MiB messages at most. */
	if (o->size > (8u << 20) || o->resp_size > (8u << 20))
		die_usage("--size/--resp-size: messages up to 8M");
	check_modes(o, seen);
	if (strcmp(o->mode, "loop") == 0 &&
	    (uint64_t)o->sessions * o->threads > 100000)
		die_usage("--sessions x --threads: at most 100000 in a loop "
			  "(its server endpoint holds every session, and an "
			  "endpoint holds at most 100000)");
	if ((uint64_t)o->sessions * o->inflight > (1u << 20))
		die_usage("--sessions x --inflight: at most %u calls in flight "
			  "per thread", 1u << 20);
	if (o->cc && strcmp(o->cc, "none") != 0 && strcmp(o->cc, "swift") != 0)
		die_usage("--cc: none or swift, not '%s'", o->cc);
	if (o->verify && (o->size < BENCH_VHDR_LEN ||
			  o->resp_size < BENCH_VHDR_LEN))
		die_usage("--verify needs --size and --resp-size of at "
			  "least 16");
	if (o->deferred > 0 && (!o->keyring || o->caps < 1))
		die_usage("--deferred needs --keyring and --caps >= 1: the "
			  "deferred tokens are the calls' --caps tokens");
	if (o->verify && o->caps > BENCH_VCAPS_MAX)
		die_usage("--caps: with --verify, at most %u tokens per call "
			  "(each names its call, and %u fill a token table)",
			  BENCH_VCAPS_MAX, BENCH_VCAPS_MAX);
	check_needs(o, seen);
	if (o->wire_mode && strcmp(o->wire_mode, "none") != 0 &&
	    strcmp(o->wire_mode, "mac") != 0 &&
	    strcmp(o->wire_mode, "aead") != 0)
		die_usage("--wire-mode: none, mac or aead, not '%s'",
			  o->wire_mode);
	if (strcmp(o->mode, "server") == 0 && !given(seen, "duration"))
		o->duration = 0; /* a server runs until interrupted */
	if (o->duration == 0 && strcmp(o->mode, "server") != 0)
		die_usage("--duration must be above 0 for a client");
	if (o->measure_at_arg) {
		char *end;

		o->measure_at = strtod(o->measure_at_arg, &end);
		if (end == o->measure_at_arg || *end || !(o->measure_at > 0) ||
		    o->measure_at > 1e11)
			die_usage("--measure-at: a Unix time in seconds, "
				  "not \"%s\"", o->measure_at_arg);
	}
}

void bench_opts_parse(int argc, char **argv, struct bench_opts *o)
{
	struct option lopts[NOPTS + 1];
	bool seen[NOPTS] = { false };
	int c;

	*o = (struct bench_opts){
		.mode = "loop",
		.dataplane = "uring",
		.addr = "127.0.0.1",
		.port = 31850,
		.size = 32,
		.inflight = 1,
		.sessions = 1,
		.threads = 1,
		.duration = 5,
		.warmup = 1,
		.pin = true,
		.seed = 1,
		.trace_sample = 1,
		.trace_max_bytes = 256u << 20,
		.trace_budget = 0.05,
		.dpdk_port = -1,
		.deferred_delay_us = 200,
		.delay_us = 1000,
	};
	/* getopt_long does the scanning (abbreviations, "--opt=value",
	 * options after the mode); each option's value is its row. */
	for (size_t i = 0; i < NOPTS; i++) {
		bool flag = opts[i].kind == OPT_FLAG ||
			    opts[i].kind == OPT_NOFLAG ||
			    opts[i].kind == OPT_HELP;

		lopts[i] = (struct option){ opts[i].name,
					    flag ? no_argument
						 : required_argument,
					    NULL, 256 + (int)i };
	}
	lopts[NOPTS] = (struct option){ NULL, 0, NULL, 0 };
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		if (c == 'h')
			c = 256 + (int)(find("help") - opts);
		if (c < 256) {
			/* getopt_long said what was wrong. */
			fprintf(stderr, "Try 'ferry-bench --help'.\n");
			exit(2);
		}
		seen[c - 256] = true;
		store(&opts[c - 256], optarg, o);
	}
	parse_mode(argc, argv, o);
	check_values(o, seen);
	/* The endpoints' DPDK options, in the struct the library reads. */
	ferry_dpdk_config_init(&o->dpdk);
	o->dpdk.eal = o->eal;
	o->dpdk.port = o->dpdk_port;
	o->dpdk.queues = (uint16_t)o->dpdk_queues;
}
