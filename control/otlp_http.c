/* SPDX-License-Identifier: MIT */
/*
 * A minimal HTTP/1.1 client for the OTLP/HTTP exporter: POST one body,
 * read the status and the Retry-After header, keep the connection alive
 * when the response allows it.  Plain TCP, http:// only (no TLS).  Our
 * own rather than libcurl (docs/tracing.md, "OTLP/HTTP"): the exporter
 * needs one request shape, and this is ~270 lines with no new dependency
 * in the library, where libcurl brings TLS stacks, its own threads for
 * name resolution and many protocols the tracer never speaks.  Blocking
 * sockets with send and receive timeouts: it runs only on the exporter's
 * own thread, never on an endpoint's.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "control/otlp.h"

/* The status line and headers must fit in this. */
#define HEAD_MAX 8192
/* A response body longer than this is not read: the connection is
 * closed instead (collectors answer with a few bytes). */
#define BODY_SKIP_MAX (1u << 20)

void ferry__http_close(struct ferry__http *h)
{
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
}

static int http_connect(struct ferry__http *h)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_family = AF_UNSPEC };
	struct addrinfo *res, *ai;
	struct timeval tv = { .tv_sec = h->timeout_ms / 1000,
			      .tv_usec = (h->timeout_ms % 1000) * 1000 };
	int fd = -1, rc, one = 1;

	rc = getaddrinfo(h->url.host, h->url.port, &hints, &res);
	if (rc != 0)
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	rc = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		/* Linux bounds connect() by the send timeout too. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	h->fd = fd;
	return 0;
}

static int send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		/* MSG_NOSIGNAL: a collector that went away must not kill the
		 * process with SIGPIPE. */
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		ferry__iov_advance(&iov, &n, (size_t)w);
	}
	return 0;
}

/* Read more into @buf after @have bytes.  0 at EOF, -errno. */
static ssize_t recv_some(int fd, char *buf, size_t cap)
{
	for (;;) {
		ssize_t r = recv(fd, buf, cap, 0);

		if (r >= 0)
			return r;
		if (errno != EINTR)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
}

/* The value of header @name in the header block @h (NUL-terminated,
 * lines ending in CRLF), or NULL.  Names are matched without case. */
static const char *header(const char *h, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = strstr(h, "\r\n"); l; l = strstr(l, "\r\n")) {
		l += 2;
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			l += n + 1;
			while (*l == ' ' || *l == '\t')
				l++;
			return l;
		}
	}
	return NULL;
}

/* Parse the status line and the headers we use.  -EPROTO if malformed.
 * *@len: Content-Length, or -1 if none (then the body runs to the close). */
static int parse_head(const char *h, struct ferry__http_resp *r,
		      long long *len, bool *keep)
{
	const char *v;
	char *e;
	int minor;

	if (sscanf(h, "HTTP/1.%d %3d", &minor, &r->status) != 2 ||
	    r->status < 100 || r->status > 599)
		return -EPROTO;
	*keep = minor >= 1;
	v = header(h, "Connection");
	if (v && strncasecmp(v, "close", 5) == 0)
		*keep = false;
	*len = -1;
	v = header(h, "Content-Length");
	if (v) {
		*len = strtoll(v, &e, 10);
		if (e == v || *len < 0)
			return -EPROTO;
	}
	/* A chunked body is not parsed: the connection is closed after the
	 * headers instead (the status is all the exporter needs). */
	if (header(h, "Transfer-Encoding"))
		*len = -1;
	r->retry_after_ms = -1;
	v = header(h, "Retry-After");
	if (v && *v >= '0' && *v <= '9') {
		/* delta-seconds; an HTTP-date is left to the back-off. */
		long long s = strtoll(v, &e, 10);

		r->retry_after_ms = s > 3600 ? 3600000 : s * 1000;
	}
	return 0;
}

/* Read the response; on a connection we may keep, skip its body. */
static int read_resp(struct ferry__http *h, struct ferry__http_resp *r)
{
	char *buf = malloc(HEAD_MAX + 1), *end = NULL;
	size_t have = 0;
	long long len;
	bool keep;
	ssize_t n;
	int rc;

	if (!buf)
		return -ENOMEM;
	while (!end) {
		if (have == HEAD_MAX) {
			rc = -EPROTO;
			goto out;
		}
		n = recv_some(h->fd, buf + have, HEAD_MAX - have);
		if (n <= 0) {
			rc = n == 0 ? -ECONNRESET : (int)n;
			goto out;
		}
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	end[2] = '\0';
	rc = parse_head(buf, r, &len, &keep);
	if (rc < 0)
		goto out;
	if (len < 0 || len > BODY_SKIP_MAX || !keep) {
		ferry__http_close(h);
		goto out;
	}
	len -= (long long)(have - (size_t)(end + 4 - buf));
	while (len > 0) {
		n = recv_some(h->fd, buf, HEAD_MAX);
		if (n <= 0) {
			ferry__http_close(h);
			break;
		}
		len -= n;
	}
out:
	free(buf);
	return rc;
}

static int post_once(struct ferry__http *h, const char *ctype, bool gzip,
		     const void *body, size_t len, struct ferry__http_resp *r)
{
	char head[1536];
	struct iovec iov[2];
	int n, rc;

	n = snprintf(head, sizeof(head),
		     "POST %s HTTP/1.1\r\nHost: %s\r\n"
		     "User-Agent: ferry\r\nContent-Type: %s\r\n%s"
		     "Content-Length: %zu\r\n\r\n",
		     h->url.path, h->url.authority, ctype,
		     gzip ? "Content-Encoding: gzip\r\n" : "", len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	iov[0] = (struct iovec){ head, (size_t)n };
	iov[1] = (struct iovec){ (void *)body, len };
	rc = send_all(h->fd, iov, 2);
	if (rc == 0)
		rc = read_resp(h, r);
	return rc;
}

int ferry__http_post(struct ferry__http *h, const char *ctype, bool gzip,
		     const void *body, size_t len, struct ferry__http_resp *r)
{
	bool reused = h->fd >= 0;
	int rc;

	r->status = 0;
	r->retry_after_ms = -1;
	if (!reused) {
		rc = http_connect(h);
		if (rc < 0)
			return rc;
	}
	rc = post_once(h, ctype, gzip, body, len, r);
	if (rc < 0 && reused && r->status == 0) {
		/* A kept-alive connection the server had closed meanwhile:
		 * one more try on a new one, as any HTTP client does. */
		ferry__http_close(h);
		rc = http_connect(h);
		if (rc == 0)
			rc = post_once(h, ctype, gzip, body, len, r);
	}
	if (rc < 0) {
		ferry__http_close(h);
		r->status = 0;
	}
	return rc;
}
