/* SPDX-License-Identifier: MIT */
/*
 * ferryctl - keys and channel tokens from the command line.
 *
 * Every failure prints one line, "ferryctl: <what>: <why>", on stderr and
 * exits non-zero: 1 when the operation failed (a token did not verify, a
 * file could not be read), 2 for a usage error.  See usage() and
 * docs/tokens.md, section 7.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <ferry/token.h>

#include "control/internal.h"
#include "control/trace_internal.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* Longest encoded token we read: hex of the largest token, and slack. */
#define INPUT_MAX (2 * FERRY_TOKEN_MAX_LEN + 64)

static const char usage_text[] =
"usage: ferryctl [--keyring FILE] [--now SECS] COMMAND [OPTIONS]\n"
"\n"
"Keys and channel tokens (docs/tokens.md).\n"
"\n"
"Global options:\n"
"  --keyring FILE   keyring file (default: $FERRY_KEYRING); must be mode 0600\n"
"  --now SECS       use SECS (Unix time) as the current time, for testing\n"
"  -h, --help       this text\n"
"\n"
"Commands:\n"
"  key new [--max-ttl SECS] [--skew SECS] [--force]\n"
"      Create a keyring with one fresh key (id 1).  --max-ttl is the longest\n"
"      token lifetime it will issue (default 86400), --skew the clock skew\n"
"      allowed when verifying (default 300).  Refuses to overwrite an\n"
"      existing file unless --force.\n"
"  key rotate\n"
"      Add a fresh key and make it the one that issues; the old key keeps\n"
"      verifying until now + max-ttl + skew.  Drops retired keys.\n"
"  key list\n"
"      One line per key: id, state, created, retires.\n"
"  token issue --type TYPE --audience AUD --channel NAME [--entrypoint NAME]\n"
"              [--ttl SECS] [--not-before SECS] [--props TEXT | --props-hex HEX]\n"
"              [--encoding ENC]\n"
"      Print a new token (version 2) on stdout, and on a second line its\n"
"      holder key in hex: give both to the token's holder (a wire v2 client\n"
"      proves the key; it never travels).  TYPE is subrequest or actor-class; AUD\n"
"      names the server that will redeem it; NAME is the service or actor\n"
"      class (and its entrypoint).  --ttl defaults to 3600 (or max-ttl if\n"
"      smaller); --not-before is absolute Unix time (default: now).\n"
"  token verify --type TYPE --audience AUD [--encoding ENC] [TOKEN]\n"
"      Check TOKEN; print \"valid\" and a summary on stdout, or fail.\n"
"  token inspect --audience AUD [--type TYPE] [--encoding ENC] [TOKEN]\n"
"      Verify TOKEN and print its contents as one JSON object.  Without\n"
"      --type, either type is accepted.\n"
"  bench [--seconds N] [--cpu N]\n"
"      Issue and verify tokens on one thread (an in-memory keyring; no\n"
"      --keyring needed); print tokens/s per core.\n"
"  bench wire [--reps N] [--ms N] [--cpu N]\n"
"      The cost of wire v2 sealing (docs/wire.md): ns per 64 B and\n"
"      1400 B datagram for none, mac (one-shot and scattered) and aead,\n"
"      and X25519 handshakes/s; the median of N runs (default 5) of\n"
"      N ms (default 200) each.\n"
"  spans FILE...\n"
"      Print the session trees (client session -> server session -> calls)\n"
"      in OTLP/JSON lines span export files, with durations and status\n"
"      (docs/tracing.md): one tree per trace, joined across the files\n"
"      (from several hosts) by trace and parent ids; with several files,\n"
"      each span's file= names the one it came from.\n"
"\n"
"TOKEN is read from the argument, or from stdin if absent or \"-\"\n"
"(surrounding whitespace ignored).  ENC is base64url (the default: RFC 4648\n"
"URL-safe alphabet, no padding) or hex.\n"
"\n"
"Exit status: 0 success, 1 the operation failed, 2 usage error.\n";

static const char *g_what; /* the command, for messages; NULL before one */
static const char *g_keyring;
static uint64_t g_now;
static int g_have_now;

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("ferryctl: ", stderr);
	if (g_what)
		fprintf(stderr, "%s: ", g_what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static uint64_t fixed_now(void *arg)
{
	(void)arg;
	return g_now;
}

/* Strict decimal, 0..max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_type(const char *s, int *type)
{
	if (strcmp(s, "subrequest") == 0)
		*type = FERRY_TOKEN_SUBREQUEST;
	else if (strcmp(s, "actor-class") == 0)
		*type = FERRY_TOKEN_ACTOR_CLASS;
	else
		return -1;
	return 0;
}

enum enc { ENC_B64, ENC_HEX };

static int parse_enc(const char *s, enum enc *e)
{
	if (strcmp(s, "base64url") == 0)
		*e = ENC_B64;
	else if (strcmp(s, "hex") == 0)
		*e = ENC_HEX;
	else
		return -1;
	return 0;
}

static int load_keyring(struct ferry_keyring **kr)
{
	int rc;

	if (!g_keyring)
		return fail(EXIT_USAGE,
			    "no keyring: pass --keyring FILE or set FERRY_KEYRING");
	rc = ferry_keyring_load(g_keyring, kr);
	if (rc < 0)
		return fail(EXIT_FAIL, "%s: %s", g_keyring,
			    ferry_token_strerror(rc));
	if (g_have_now)
		ferry_keyring_set_clock(*kr, fixed_now, NULL);
	return 0;
}

/* --- key ---------------------------------------------------------------- */

static int cmd_key_new(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "max-ttl", required_argument, NULL, 't' },
		{ "skew", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t ttl = 86400, skew = 300;
	int force = 0, c, rc;
	struct ferry_keyring *kr;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_u64(optarg, FERRY_KEYRING_MAX_TTL_LIMIT, &ttl) ||
			    ttl == 0)
				return fail(EXIT_USAGE,
					    "--max-ttl: want 1..%u seconds, got '%s'",
					    FERRY_KEYRING_MAX_TTL_LIMIT, optarg);
			break;
		case 's':
			if (parse_u64(optarg, FERRY_KEYRING_SKEW_LIMIT, &skew))
				return fail(EXIT_USAGE,
					    "--skew: want 0..%u seconds, got '%s'",
					    FERRY_KEYRING_SKEW_LIMIT, optarg);
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return fail(EXIT_USAGE, "bad option (see --help)");
		}
	}
	if (optind != argc)
		return fail(EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if (!g_keyring)
		return fail(EXIT_USAGE,
			    "no keyring: pass --keyring FILE or set FERRY_KEYRING");
	rc = ferry_keyring_create((uint32_t)ttl, (uint32_t)skew, &kr);
	if (rc < 0)
		return fail(EXIT_FAIL, "%s", ferry_token_strerror(rc));
	rc = ferry_keyring_save(kr, g_keyring, force ? 0 : FERRY_KEYRING_NOREPLACE);
	ferry_keyring_free(kr);
	if (rc == -EEXIST)
		return fail(EXIT_FAIL, "%s exists (use --force to replace it)",
			    g_keyring);
	if (rc < 0)
		return fail(EXIT_FAIL, "%s: %s", g_keyring, ferry_token_strerror(rc));
	printf("created %s: key 1 active, max-ttl %" PRIu64 " s, skew %" PRIu64
	       " s\n", g_keyring, ttl, skew);
	return 0;
}

static int cmd_key_rotate(int argc, char **argv)
{
	struct ferry_keyring *kr;
	int rc;

	if (argc > 1)
		return fail(EXIT_USAGE, "unexpected argument '%s'", argv[1]);
	rc = load_keyring(&kr);
	if (rc)
		return rc;
	rc = ferry_keyring_rotate(kr);
	if (rc == 0)
		rc = ferry_keyring_save(kr, g_keyring, 0);
	if (rc < 0) {
		ferry_keyring_free(kr);
		return fail(EXIT_FAIL, "%s: %s", g_keyring, ferry_token_strerror(rc));
	}
	printf("key %" PRIu32 " active\n", ferry_keyring_active_id(kr));
	ferry_keyring_free(kr);
	return 0;
}

static int cmd_key_list(int argc, char **argv)
{
	struct ferry_keyring *kr;
	struct ferry_keyring_keyinfo ki;
	int rc;

	if (argc > 1)
		return fail(EXIT_USAGE, "unexpected argument '%s'", argv[1]);
	rc = load_keyring(&kr);
	if (rc)
		return rc;
	printf("# max-ttl %" PRIu32 " s, skew %" PRIu32 " s\n",
	       ferry_keyring_max_ttl(kr), ferry_keyring_skew(kr));
	for (unsigned i = 0; ferry_keyring_key(kr, i, &ki) == 0; i++) {
		if (ki.active)
			printf("key %" PRIu32 " active created %" PRIu64 "\n",
			       ki.id, ki.created_at);
		else
			printf("key %" PRIu32 " verify-only created %" PRIu64
			       " retires %" PRIu64 "\n",
			       ki.id, ki.created_at, ki.retire_at);
	}
	ferry_keyring_free(kr);
	return 0;
}

/* --- token -------------------------------------------------------------- */

static int encode_print(const uint8_t *p, size_t n, enum enc e)
{
	size_t cap = e == ENC_HEX ? 2 * n + 1
		: sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *s = malloc(cap);

	if (!s)
		return fail(EXIT_FAIL, "out of memory");
	if (e == ENC_HEX)
		sodium_bin2hex(s, cap, p, n);
	else
		sodium_bin2base64(s, cap, p, n,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	puts(s);
	free(s);
	return 0;
}

/* Decode text (hex or base64url) into @out; -1 if not valid or too long. */
static int decode(const char *s, size_t n, enum enc e, uint8_t *out, size_t cap,
		  size_t *len)
{
	const char *end = NULL;
	int rc;

	if (e == ENC_HEX)
		rc = sodium_hex2bin(out, cap, s, n, NULL, len, &end);
	else
		rc = sodium_base642bin(out, cap, s, n, NULL, len, &end,
				       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return rc == 0 && end == s + n ? 0 : -1;
}

/* Read the token text from @arg or stdin into @buf, trimmed. */
static int read_token_text(const char *arg, char *buf, size_t cap, size_t *n)
{
	size_t len = 0;
	const char *s;

	if (arg && strcmp(arg, "-") != 0) {
		len = strlen(arg);
		if (len >= cap)
			return fail(EXIT_FAIL, "token too long");
		memcpy(buf, arg, len);
	} else {
		len = fread(buf, 1, cap, stdin);
		if (ferror(stdin))
			return fail(EXIT_FAIL, "stdin: read error");
		if (len == cap)
			return fail(EXIT_FAIL, "token on stdin too long");
	}
	buf[len] = '\0';
	s = buf;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++, len--;
	memmove(buf, s, len + 1);
	while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t' ||
		       buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len == 0)
		return fail(EXIT_FAIL, "no token given (argument or stdin)");
	*n = len;
	return 0;
}

static int get_token(const char *arg, enum enc e, uint8_t *tok, size_t *len)
{
	static char text[INPUT_MAX + 1];
	size_t n = 0;
	int rc = read_token_text(arg, text, sizeof(text), &n);

	if (rc)
		return rc;
	/* A token longer than any valid one is still handed to the verifier
	 * at FERRY_TOKEN_MAX_LEN + 1 bytes, so it reports "malformed". */
	if (decode(text, n, e, tok, FERRY_TOKEN_MAX_LEN + 1, len) != 0)
		return fail(EXIT_FAIL, "token is not valid %s%s",
			    e == ENC_HEX ? "hex" : "base64url",
			    n > 2 * (FERRY_TOKEN_MAX_LEN + 1) ? " (or too long)" : "");
	return 0;
}

struct token_opts {
	int type;
	const char *audience;
	const char *channel;
	const char *entrypoint;
	uint64_t ttl;
	int have_ttl;
	uint64_t not_before;
	uint8_t *props;
	size_t props_len;
	enum enc enc;
};

static int parse_token_opts(int argc, char **argv, struct token_opts *o,
			    int issuing)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 'T' },
		{ "audience", required_argument, NULL, 'a' },
		{ "channel", required_argument, NULL, 'c' },
		{ "entrypoint", required_argument, NULL, 'e' },
		{ "ttl", required_argument, NULL, 't' },
		{ "not-before", required_argument, NULL, 'n' },
		{ "props", required_argument, NULL, 'p' },
		{ "props-hex", required_argument, NULL, 'P' },
		{ "encoding", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static uint8_t props[FERRY_TOKEN_PROPS_MAX];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (!issuing && strchr("cetnpP", c))
			return fail(EXIT_USAGE, "option only for 'token issue'");
		switch (c) {
		case 'T':
			if (parse_type(optarg, &o->type))
				return fail(EXIT_USAGE,
					    "--type: want subrequest or actor-class, got '%s'",
					    optarg);
			break;
		case 'a':
			o->audience = optarg;
			break;
		case 'c':
			o->channel = optarg;
			break;
		case 'e':
			o->entrypoint = optarg;
			break;
		case 't':
			if (parse_u64(optarg, UINT32_MAX, &o->ttl) || o->ttl == 0)
				return fail(EXIT_USAGE,
					    "--ttl: want a positive number of seconds, got '%s'",
					    optarg);
			o->have_ttl = 1;
			break;
		case 'n':
			if (parse_u64(optarg, UINT64_MAX, &o->not_before))
				return fail(EXIT_USAGE,
					    "--not-before: want Unix seconds, got '%s'",
					    optarg);
			break;
		case 'p':
			o->props_len = strlen(optarg);
			if (o->props_len > sizeof(props))
				return fail(EXIT_USAGE, "--props: longer than %d bytes",
					    FERRY_TOKEN_PROPS_MAX);
			memcpy(props, optarg, o->props_len);
			o->props = props;
			break;
		case 'P':
			if (sodium_hex2bin(props, sizeof(props), optarg,
					   strlen(optarg), NULL, &o->props_len,
					   NULL) != 0)
				return fail(EXIT_USAGE,
					    "--props-hex: not hex, or longer than %d bytes",
					    FERRY_TOKEN_PROPS_MAX);
			o->props = props;
			break;
		case 'E':
			if (parse_enc(optarg, &o->enc))
				return fail(EXIT_USAGE,
					    "--encoding: want base64url or hex, got '%s'",
					    optarg);
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return fail(EXIT_USAGE, "bad option (see --help)");
		}
	}
	if (!o->audience)
		return fail(EXIT_USAGE, "--audience is required");
	return 0;
}

static int cmd_token_issue(int argc, char **argv)
{
	struct token_opts o = { .enc = ENC_B64 };
	struct ferry_token_req req;
	struct ferry_keyring *kr;
	uint8_t tok[FERRY_TOKEN_MAX_LEN], hk[FERRY_TOKEN_HK_LEN];
	char hkhex[2 * FERRY_TOKEN_HK_LEN + 1];
	size_t len;
	int rc;

	rc = parse_token_opts(argc, argv, &o, 1);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (optind != argc)
		return fail(EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if (!o.type)
		return fail(EXIT_USAGE, "--type is required (subrequest or actor-class)");
	if (!o.channel)
		return fail(EXIT_USAGE, "--channel is required");
	rc = load_keyring(&kr);
	if (rc)
		return rc;
	if (!o.have_ttl)
		o.ttl = ferry_keyring_max_ttl(kr) < 3600 ? ferry_keyring_max_ttl(kr)
							 : 3600;
	if (o.ttl > ferry_keyring_max_ttl(kr)) {
		rc = fail(EXIT_USAGE, "--ttl %" PRIu64 " exceeds the keyring's max-ttl %" PRIu32,
			  o.ttl, ferry_keyring_max_ttl(kr));
		ferry_keyring_free(kr);
		return rc;
	}
	req = (struct ferry_token_req){
		.type = o.type,
		.audience = o.audience,
		.target = o.channel,
		.entrypoint = o.entrypoint,
		.props = o.props,
		.props_len = o.props_len,
		.ttl = (uint32_t)o.ttl,
		.not_before = o.not_before,
	};
	rc = ferry_token_seal2(kr, &req, tok, sizeof(tok), &len, hk);
	ferry_keyring_free(kr);
	if (rc == -EINVAL)
		return fail(EXIT_USAGE,
			    "invalid request: names and audience must be 1..255 "
			    "bytes without control characters, and not-before "
			    "within [now, now + ttl), props at most 4064 bytes");
	if (rc < 0)
		return fail(EXIT_FAIL, "%s", ferry_token_strerror(rc));
	rc = encode_print(tok, len, o.enc);
	/* The holder key, on a line of its own: it goes to the token's
	 * holder with the token, never with it over the wire. */
	if (rc == 0) {
		sodium_bin2hex(hkhex, sizeof(hkhex), hk, sizeof(hk));
		printf("%s\n", hkhex);
	}
	sodium_memzero(hk, sizeof(hk));
	sodium_memzero(hkhex, sizeof(hkhex));
	return rc;
}

/* JSON string: escapes what JSON requires; bytes >= 0x80 are passed as they
 * are when the string is valid UTF-8, else each as \u00XX. */
static void json_str(const char *s)
{
	size_t n = strlen(s);
	int raw = ferry__utf8_ok((const unsigned char *)s, n);

	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !raw))
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int verify_common(int argc, char **argv, int inspect)
{
	struct token_opts o = { .enc = ENC_B64 };
	struct ferry_token_info *info;
	struct ferry_keyring *kr;
	uint8_t tok[FERRY_TOKEN_MAX_LEN + 1];
	size_t len;
	int rc;

	rc = parse_token_opts(argc, argv, &o, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!o.type && !inspect)
		return fail(EXIT_USAGE, "--type is required (subrequest or actor-class)");
	if (argc - optind > 1)
		return fail(EXIT_USAGE, "unexpected argument '%s'", argv[optind + 1]);
	rc = get_token(optind < argc ? argv[optind] : NULL, o.enc, tok, &len);
	if (rc)
		return rc;
	rc = load_keyring(&kr);
	if (rc)
		return rc;
	info = malloc(sizeof(*info));
	if (!info) {
		ferry_keyring_free(kr);
		return fail(EXIT_FAIL, "out of memory");
	}
	if (o.type) {
		rc = ferry_token_verify(kr, tok, len, o.type, o.audience, info);
	} else {
		/* inspect without --type: whichever type the token is. */
		rc = ferry_token_verify(kr, tok, len, FERRY_TOKEN_SUBREQUEST,
					o.audience, info);
		if (rc == -FERRY_TOKEN_EWRONGTYPE)
			rc = ferry_token_verify(kr, tok, len, FERRY_TOKEN_ACTOR_CLASS,
						o.audience, info);
	}
	ferry_keyring_free(kr);
	if (rc < 0) {
		free(info);
		return fail(EXIT_FAIL, "%s", ferry_token_strerror(rc));
	}
	if (!inspect) {
		printf("valid %s token for ", ferry_token_type_name(info->type));
		printf("%s%s%s, key %" PRIu32 ", expires %" PRIu64 "\n",
		       info->target, info->entrypoint[0] ? "/" : "",
		       info->entrypoint, info->key_id, info->expires_at);
	} else {
		char id[2 * FERRY_TOKEN_ID_LEN + 1];
		size_t cap = sodium_base64_ENCODED_LEN(
			FERRY_TOKEN_PROPS_MAX, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		char *props = malloc(cap);

		if (!props) {
			free(info);
			return fail(EXIT_FAIL, "out of memory");
		}
		sodium_bin2hex(id, sizeof(id), info->id, sizeof(info->id));
		sodium_bin2base64(props, cap, info->props, info->props_len,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		/* The version byte leads the token; it verified, so it is
		 * one this build reads. */
		printf("{\"version\":%u,\"key_id\":%" PRIu32 ",\"type\":\"%s\",",
		       (unsigned)tok[0], info->key_id,
		       ferry_token_type_name(info->type));
		printf("\"audience\":");
		json_str(o.audience);
		printf(",\"channel\":");
		json_str(info->target);
		printf(",\"entrypoint\":");
		json_str(info->entrypoint);
		printf(",\"props_base64url\":\"%s\",\"props_len\":%zu,", props,
		       info->props_len);
		printf("\"id\":\"%s\",\"issued_at\":%" PRIu64 ",\"not_before\":%" PRIu64
		       ",\"expires_at\":%" PRIu64 "}\n",
		       id, info->issued_at, info->not_before, info->expires_at);
		free(props);
	}
	free(info);
	return 0;
}

/* --- bench -------------------------------------------------------------- */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_cb(void *arg, int res, const uint8_t *t, size_t n)
{
	(void)arg, (void)res, (void)t, (void)n;
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const uint8_t props[32] = "props: thirty-two opaque bytes.";
	uint64_t secs = 2, cpu = 0;
	int have_cpu = 0, c, rc;
	struct ferry_keyring *kr;
	struct ferry_token_req req = {
		.type = FERRY_TOKEN_SUBREQUEST,
		.audience = "host-a.example:31850",
		.target = "kv.store",
		.entrypoint = "get",
		.props = props,
		.props_len = sizeof(props),
		.ttl = 3600,
	};
	uint8_t tok[FERRY_TOKEN_MAX_LEN];
	struct ferry_token_info info;
	struct ferry_token_pending *pend;
	size_t len = 0;
	double t0, dt, rate[3];
	uint64_t n;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_u64(optarg, 3600, &secs) || secs == 0)
				return fail(EXIT_USAGE, "--seconds: want 1..3600, got '%s'",
					    optarg);
			break;
		case 'c':
			if (parse_u64(optarg, CPU_SETSIZE - 1, &cpu))
				return fail(EXIT_USAGE, "--cpu: not a CPU number: '%s'",
					    optarg);
			have_cpu = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return fail(EXIT_USAGE, "bad option (see --help)");
		}
	}
	if (optind != argc)
		return fail(EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if (have_cpu) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET((int)cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			return fail(EXIT_FAIL, "--cpu %" PRIu64 ": %s", cpu,
				    strerror(errno));
	}
	rc = ferry_keyring_create(86400, 300, &kr);
	if (rc < 0)
		return fail(EXIT_FAIL, "%s", ferry_token_strerror(rc));

	/* Each loop checks the clock every 256 operations, so the clock read
	 * costs nothing measurable. */
	for (int phase = 0; phase < 3; phase++) {
		t0 = mono();
		n = 0;
		do {
			for (int i = 0; i < 256; i++) {
				if (phase == 0) {
					rc = ferry_token_seal(kr, &req, tok,
							      sizeof(tok), &len);
				} else if (phase == 1) {
					rc = ferry_token_issue(ferry_token_local_issuer(),
							       kr, &req, tok, sizeof(tok),
							       &len, bench_cb, NULL, &pend);
				} else {
					rc = ferry_token_verify(kr, tok, len, req.type,
								req.audience, &info);
				}
				if (rc < 0) {
					ferry_keyring_free(kr);
					return fail(EXIT_FAIL, "%s",
						    ferry_token_strerror(rc));
				}
			}
			n += 256;
			dt = mono() - t0;
		} while (dt < (double)secs);
		rate[phase] = (double)n / dt;
	}
	ferry_keyring_free(kr);
	printf("token: %zu bytes (subrequest, 8 B channel, 3 B entrypoint, "
	       "32 B props, 20 B audience)\n", len);
	printf("issue (ferry_token_seal):        %10.0f tokens/s per core\n",
	       rate[0]);
	printf("issue (ferry_token_issue, local): %9.0f tokens/s per core\n",
	       rate[1]);
	printf("verify (ferry_token_verify):     %10.0f tokens/s per core\n",
	       rate[2]);
	return 0;
}

/* --- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keyring", required_argument, NULL, 'k' },
		{ "now", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cmd, *sub;
	int c;

	g_keyring = getenv("FERRY_KEYRING");
	/* "+": stop at the command; its options are parsed below. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			g_keyring = optarg;
			break;
		case 'N':
			if (parse_u64(optarg, UINT64_MAX / 2, &g_now))
				return fail(EXIT_USAGE, "--now: want Unix seconds, got '%s'",
					    optarg);
			g_have_now = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return fail(EXIT_USAGE, "bad option (see --help)");
		}
	}
	if (optind >= argc)
		return fail(EXIT_USAGE, "missing command (see --help)");
	if (sodium_init() < 0)
		return fail(EXIT_FAIL, "libsodium failed to initialise");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0; /* GNU getopt: 0 re-initialises for the command's options */

	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "bench") == 0) {
		if (argc > 1 && strcmp(argv[1], "wire") == 0)
			return g_what = "bench wire",
			       ferry__ctl_bench_wire(argc - 1, argv + 1);
		g_what = "bench";
		return cmd_bench(argc, argv);
	}
	if (strcmp(cmd, "spans") == 0) {
		g_what = "spans";
		return ferry__ctl_spans(argc, argv);
	}
	if (strcmp(cmd, "key") != 0 && strcmp(cmd, "token") != 0)
		return fail(EXIT_USAGE, "unknown command '%s' (see --help)", cmd);
	if (argc < 2)
		return fail(EXIT_USAGE, "%s: missing subcommand (see --help)", cmd);
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(cmd, "key") == 0) {
		if (strcmp(sub, "new") == 0)
			return g_what = "key new", cmd_key_new(argc, argv);
		if (strcmp(sub, "rotate") == 0)
			return g_what = "key rotate", cmd_key_rotate(argc, argv);
		if (strcmp(sub, "list") == 0)
			return g_what = "key list", cmd_key_list(argc, argv);
	} else {
		if (strcmp(sub, "issue") == 0)
			return g_what = "token issue", cmd_token_issue(argc, argv);
		if (strcmp(sub, "verify") == 0)
			return g_what = "token verify", verify_common(argc, argv, 0);
		if (strcmp(sub, "inspect") == 0)
			return g_what = "token inspect", verify_common(argc, argv, 1);
	}
	return fail(EXIT_USAGE, "unknown command '%s %s' (see --help)", cmd, sub);
}
