/* SPDX-License-Identifier: MIT */
/*
 * The exporter's settings, the OpenTelemetry way (docs/tracing.md,
 * "Configuration"): the tracer's configuration first, then, for what it
 * leaves unset, the OTEL_* environment variables of the OTLP exporter
 * specification.  Every value is untrusted text: each is checked and a
 * bad one is an error with a reason, never a silent default.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/otlp.h"

#define TIMEOUT_DEFAULT_MS 10000u
#define QUEUE_DEFAULT 64u
#define QUEUE_MAX 4096u

static int fail(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (err && cap) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *env_get(ferry__env_fn env, void *arg, const char *name)
{
	const char *v = env ? env(name, arg) : NULL;

	/* An empty variable is an unset one, as the specification says. */
	return v && v[0] ? v : NULL;
}

/* --- URLs ---------------------------------------------------------------- */

static bool port_ok(const char *s, size_t n)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

static bool host_ok(const char *s, size_t n, bool v6)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '.' ||
			  (v6 && c == ':');

		if (!ok)
			return false;
	}
	return true;
}

/* The path and query: printable ASCII without blanks (it goes into the
 * request line as it is). */
static bool path_ok(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f || *s == '#')
			return false;
	return true;
}

int ferry__url_parse(const char *url, struct ferry__url *u, char *err,
		     size_t errcap)
{
	const char *a, *end, *hp, *colon = NULL;
	size_t alen;
	bool v6 = false;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "https://", 8) == 0)
		return fail(err, errcap, "%s: https is not supported (http:// only)", url);
	if (strncmp(url, "http://", 7) != 0)
		return fail(err, errcap, "%s: not an http:// URL", url);
	a = url + 7;
	end = a + strcspn(a, "/?");
	alen = (size_t)(end - a);
	if (alen == 0 || alen >= sizeof(u->authority))
		return fail(err, errcap, "%s: no host, or a host too long", url);
	if (memchr(a, '@', alen))
		return fail(err, errcap, "%s: user information is not supported", url);
	memcpy(u->authority, a, alen);
	if (a[0] == '[') {
		hp = memchr(a, ']', alen);
		if (!hp)
			return fail(err, errcap, "%s: unclosed '['", url);
		v6 = true;
		if (hp + 1 < end && hp[1] != ':')
			return fail(err, errcap, "%s: bad host", url);
		colon = hp + 1 < end ? hp + 1 : NULL;
		a++;
	} else {
		hp = memchr(a, ':', alen);
		colon = hp;
		if (!hp)
			hp = end;
	}
	if (!host_ok(a, (size_t)(hp - a), v6) ||
	    (size_t)(hp - a) >= sizeof(u->host))
		return fail(err, errcap, "%s: bad host", url);
	memcpy(u->host, a, (size_t)(hp - a));
	if (colon) {
		if (!port_ok(colon + 1, (size_t)(end - colon - 1)))
			return fail(err, errcap, "%s: bad port (1..65535)", url);
		memcpy(u->port, colon + 1, (size_t)(end - colon - 1));
	} else {
		strcpy(u->port, "80");
	}
	if (strchr(end, '#') || !path_ok(end))
		return fail(err, errcap, "%s: bad path", url);
	if (strlen(end) + 2 > sizeof(u->path))
		return fail(err, errcap, "%s: path too long", url);
	snprintf(u->path, sizeof(u->path), "%s%s", end[0] == '/' ? "" : "/", end);
	return 0;
}

/* --- resource attributes ------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* @s[0..n) percent-decoded and trimmed of blanks at both ends, into a new
 * string; NULL (*bad set) for a malformed escape, a NUL, or one too
 * long. */
static char *pct_decode(const char *s, size_t n, size_t max, bool *bad)
{
	char *out;
	size_t k = 0;

	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '%') {
			out[k++] = s[i];
			continue;
		}
		/* Two hex digits must follow, within the text. */
		hi = i + 2 < n ? hexval(s[i + 1]) : -1;
		lo = hi >= 0 ? hexval(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			*bad = true;
			return NULL;
		}
		out[k++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[k] = '\0';
	if (k > max) {
		free(out);
		*bad = true;
		return NULL;
	}
	return out;
}

/*
 * "k=v,k=v" (OTEL_RESOURCE_ATTRIBUTES: W3C Baggage-style, values
 * percent-encoded) into @s's resource attributes; a key given again
 * replaces its value; service.name goes to *@svc (freed and replaced).
 */
static int res_parse(const char *text, struct ferry__otlp_settings *s,
		     char **svc, const char *what, char *err, size_t errcap)
{
	const char *p = text;

	while (*p) {
		size_t n = strcspn(p, ","), klen;
		const char *eq = memchr(p, '=', n);
		bool bad = false;
		char *k, *v;
		unsigned i;

		if (!eq)
			return fail(err, errcap, "%s: \"%.*s\" is not key=value",
				    what, (int)(n > 40 ? 40 : n), p);
		klen = (size_t)(eq - p);
		k = pct_decode(p, klen, FERRY_ATTR_KEY_MAX, &bad);
		v = k ? pct_decode(eq + 1, n - klen - 1, FERRY_ATTR_STR_MAX,
				   &bad) : NULL;
		if (!k || !v || !k[0]) {
			bool empty = k && !k[0];

			free(k);
			free(v);
			if (!bad && !empty)
				return -ENOMEM;
			return fail(err, errcap, "%s: bad attribute \"%.*s\" "
				    "(empty key, bad %%-escape, or too long)",
				    what, (int)(n > 40 ? 40 : n), p);
		}
		if (strcmp(k, "service.name") == 0) {
			free(k);
			free(*svc);
			*svc = v;
		} else {
			for (i = 0; i < s->n_res; i++)
				if (strcmp(s->res[i].key, k) == 0)
					break;
			if (i == FERRY__RES_ATTRS_MAX) {
				free(k);
				free(v);
				return fail(err, errcap, "%s: more than %u attributes",
					    what, FERRY__RES_ATTRS_MAX);
			}
			if (i < s->n_res) {
				free(k);
				free(s->res[i].val);
			} else {
				s->res[s->n_res++].key = k;
			}
			s->res[i].val = v;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* --- the whole ----------------------------------------------------------- */

static int endpoint_resolve(const struct ferry_tracer_config *c,
			    ferry__env_fn env, void *arg,
			    struct ferry__otlp_settings *s, char *err,
			    size_t errcap)
{
	const char *ep = c->otlp_endpoint, *what = "otlp_endpoint";
	struct ferry__url u;
	size_t n;
	int rc;

	if (!ep && c->use_env) {
		what = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
		ep = env_get(env, arg, what);
	}
	if (ep) {
		s->endpoint = strdup(ep);
	} else if (c->use_env &&
		   (ep = env_get(env, arg, "OTEL_EXPORTER_OTLP_ENDPOINT"))) {
		/* The base URL: the signal's path is appended to it. */
		what = "OTEL_EXPORTER_OTLP_ENDPOINT";
		n = strlen(ep);
		while (n && ep[n - 1] == '/')
			n--;
		if (asprintf(&s->endpoint, "%.*s/v1/traces", (int)n, ep) < 0)
			s->endpoint = NULL;
	} else {
		return 0;
	}
	if (!s->endpoint)
		return -ENOMEM;
	rc = ferry__url_parse(s->endpoint, &u, NULL, 0);
	if (rc < 0) {
		char why[160];

		ferry__url_parse(s->endpoint, &u, why, sizeof(why));
		return fail(err, errcap, "%s: %s", what, why);
	}
	return 0;
}

static int protocol_resolve(const struct ferry_tracer_config *c,
			    ferry__env_fn env, void *arg,
			    struct ferry__otlp_settings *s, char *err,
			    size_t errcap)
{
	const char *names[] = { "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
				"OTEL_EXPORTER_OTLP_PROTOCOL" };
	const char *v = NULL, *what = NULL;

	if (c->otlp_protocol == FERRY_OTLP_HTTP_PROTOBUF ||
	    c->otlp_protocol == FERRY_OTLP_HTTP_JSON) {
		s->protocol = c->otlp_protocol;
		return 0;
	}
	if (c->otlp_protocol != 0)
		return fail(err, errcap, "otlp_protocol: %d is not a protocol",
			    c->otlp_protocol);
	for (int i = 0; i < 2 && c->use_env && !v; i++)
		v = env_get(env, arg, what = names[i]);
	s->protocol = FERRY_OTLP_HTTP_PROTOBUF;
	if (!v || strcmp(v, "http/protobuf") == 0)
		return 0;
	if (strcmp(v, "http/json") == 0) {
		s->protocol = FERRY_OTLP_HTTP_JSON;
		return 0;
	}
	return fail(err, errcap, "%s: \"%.40s\" is not supported "
		    "(http/protobuf or http/json%s)", what, v,
		    strcmp(v, "grpc") == 0 ? "; no gRPC" : "");
}

static int timeout_resolve(const struct ferry_tracer_config *c,
			   ferry__env_fn env, void *arg,
			   struct ferry__otlp_settings *s, char *err,
			   size_t errcap)
{
	const char *names[] = { "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
				"OTEL_EXPORTER_OTLP_TIMEOUT" };
	const char *v = NULL, *what = NULL;
	char *e;
	unsigned long ms;

	s->timeout_ms = c->otlp_timeout_ms ? c->otlp_timeout_ms
					   : TIMEOUT_DEFAULT_MS;
	for (int i = 0; i < 2 && c->use_env && !c->otlp_timeout_ms && !v; i++)
		v = env_get(env, arg, what = names[i]);
	if (!v)
		return 0;
	errno = 0;
	ms = strtoul(v, &e, 10);
	if (errno || *e || v[0] < '0' || v[0] > '9' || ms == 0 ||
	    ms > 3600000)
		return fail(err, errcap, "%s: \"%.40s\" is not a timeout in ms "
			    "(1..3600000)", what, v);
	s->timeout_ms = (uint32_t)ms;
	return 0;
}

int ferry__otlp_resolve(const struct ferry_tracer_config *c, ferry__env_fn env,
			void *arg, struct ferry__otlp_settings *s, char *err,
			size_t errcap)
{
	const char *ra, *what = "resource_attributes", *sv;
	char *svc = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (err && errcap)
		err[0] = '\0';
	s->gzip = c->otlp_gzip;
	s->queue_max = c->otlp_queue_max ? c->otlp_queue_max : QUEUE_DEFAULT;
	if (s->queue_max > QUEUE_MAX)
		return fail(err, errcap, "otlp_queue_max: at most %u", QUEUE_MAX);
	rc = endpoint_resolve(c, env, arg, s, err, errcap);
	if (rc == 0)
		rc = protocol_resolve(c, env, arg, s, err, errcap);
	if (rc == 0)
		rc = timeout_resolve(c, env, arg, s, err, errcap);
	if (rc < 0)
		return rc;
	ra = c->resource_attributes;
	if (!ra && c->use_env) {
		what = "OTEL_RESOURCE_ATTRIBUTES";
		ra = env_get(env, arg, what);
	}
	if (ra) {
		rc = res_parse(ra, s, &svc, what, err, errcap);
		if (rc < 0) {
			free(svc);
			return rc;
		}
	}
	/* service.name: the configuration's, else OTEL_SERVICE_NAME, else the
	 * resource attributes', else "ferry" (the specification puts
	 * OTEL_SERVICE_NAME before OTEL_RESOURCE_ATTRIBUTES). */
	sv = c->service_name;
	if (!sv && c->use_env)
		sv = env_get(env, arg, "OTEL_SERVICE_NAME");
	if (!sv)
		sv = svc ? svc : "ferry";
	s->service = strdup(sv);
	free(svc);
	return s->service ? 0 : -ENOMEM;
}

void ferry__otlp_settings_free(struct ferry__otlp_settings *s)
{
	for (unsigned i = 0; i < s->n_res; i++) {
		free(s->res[i].key);
		free(s->res[i].val);
	}
	free(s->service);
	free(s->endpoint);
	memset(s, 0, sizeof(*s));
}
