/* SPDX-License-Identifier: MIT */
/*
 * metrics_http.c - a small HTTP/1.1 server for `GET /metrics`
 * (ferry_metrics_serve() in ferry/metrics.h) on plain sockets, with no
 * dependency: Prometheus scrapes a few times a minute, so one connection
 * at a time, each answered and closed, is enough, and it keeps the server
 * small enough to read in one sitting.  Its bounds: a request of at most
 * REQ_MAX bytes that must arrive within IO_TIMEOUT_MS, the same timeout for
 * sending the answer, and loopback unless the caller names an address.
 * Its thread sleeps in poll() on the listening socket and an eventfd that
 * ferry_metrics_stop() signals.  The text itself is metrics.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control/metrics_internal.h"

#define REQ_MAX 8192
#define IO_TIMEOUT_MS 2000
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct ferry__metrics_srv {
	struct ferry_metrics *m;
	int lfd;  /* listening socket */
	int efd;  /* eventfd: stop */
	pthread_t thread;
	char *body; /* the exposition, grown to fit, reused */
	size_t body_cap;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for @fd to be ready for @events, or the stop eventfd, until
 * @deadline.  Returns true if @fd is ready. */
static bool wait_fd(const struct ferry__metrics_srv *s, int fd, short events,
		    uint64_t deadline)
{
	struct pollfd p[2] = { { fd, events, 0 }, { s->efd, POLLIN, 0 } };
	uint64_t now = now_ms();

	if (now >= deadline)
		return false;
	if (poll(p, 2, (int)(deadline - now)) <= 0)
		return false;
	return !p[1].revents && p[0].revents;
}

/* Read the request head (up to the blank line) into @req.  Returns its
 * length, 0 for a client that went away or was too slow, or -1 for one
 * past REQ_MAX. */
static ssize_t read_head(const struct ferry__metrics_srv *s, int fd,
			 char *req)
{
	uint64_t deadline = now_ms() + IO_TIMEOUT_MS;
	size_t len = 0;

	while (len < REQ_MAX) {
		ssize_t n;

		if (!wait_fd(s, fd, POLLIN, deadline))
			return 0;
		n = recv(fd, req + len, REQ_MAX - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return 0;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			return (ssize_t)len;
	}
	return -1;
}

static bool send_all(const struct ferry__metrics_srv *s, int fd,
		     const char *p, size_t len)
{
	uint64_t deadline = now_ms() + IO_TIMEOUT_MS;

	while (len) {
		ssize_t n;

		if (!wait_fd(s, fd, POLLOUT, deadline))
			return false;
		n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void answer(const struct ferry__metrics_srv *s, int fd, int status,
		   const char *reason, const char *extra, const char *body,
		   size_t len, bool head_only)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
			 status, reason,
			 status == 200 ? CONTENT_TYPE : "text/plain", len,
			 extra ? extra : "");

	if (send_all(s, fd, hdr, (size_t)n) && !head_only)
		send_all(s, fd, body, len);
}

/* The exposition into s->body, grown until it fits.  Returns its length,
 * or -errno. */
static ssize_t render(struct ferry__metrics_srv *s)
{
	for (int tries = 0; tries < 8; tries++) {
		size_t len;
		int ret = ferry_metrics_write(s->m, s->body, s->body_cap, &len);
		char *n;

		if (ret == 0)
			return (ssize_t)len;
		if (ret != -ENOSPC)
			return ret;
		/* Room for an endpoint or two added meanwhile. */
		n = realloc(s->body, len + 4096);
		if (!n)
			return -ENOMEM;
		s->body = n;
		s->body_cap = len + 4096;
	}
	return -EAGAIN;
}

/* Does the request target name /metrics (a query string allowed)? */
static bool is_metrics_path(const char *target, size_t len)
{
	static const char path[] = "/metrics";
	const size_t plen = sizeof(path) - 1;

	return len >= plen && memcmp(target, path, plen) == 0 &&
	       (len == plen || target[plen] == '?');
}

/* One connection: read the request, answer it, close. */
static void serve_one(struct ferry__metrics_srv *s, int fd)
{
	char req[REQ_MAX + 1];
	ssize_t n = read_head(s, fd, req);
	char *sp1, *sp2;
	bool head;

	if (n == 0)
		return;
	if (n < 0) {
		answer(s, fd, 431, "Request Header Fields Too Large", NULL,
		       "request too large\n", 18, false);
		return;
	}
	/* The request line: METHOD SP TARGET SP HTTP/1.x */
	sp1 = strchr(req, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		answer(s, fd, 400, "Bad Request", NULL, "bad request\n", 12,
		       false);
		return;
	}
	head = sp1 - req == 4 && memcmp(req, "HEAD", 4) == 0;
	if (!head && !(sp1 - req == 3 && memcmp(req, "GET", 3) == 0)) {
		answer(s, fd, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
		       "method not allowed\n", 19, false);
		return;
	}
	if (!is_metrics_path(sp1 + 1, (size_t)(sp2 - sp1 - 1))) {
		answer(s, fd, 404, "Not Found", NULL, "not found\n", 10, head);
		return;
	}
	n = render(s);
	if (n < 0) {
		answer(s, fd, 500, "Internal Server Error", NULL,
		       "cannot read the counters\n", 25, head);
		return;
	}
	answer(s, fd, 200, "OK", NULL, s->body, (size_t)n, head);
}

static void *srv_main(void *arg)
{
	struct ferry__metrics_srv *s = arg;

	for (;;) {
		struct pollfd p[2] = { { s->lfd, POLLIN, 0 },
				       { s->efd, POLLIN, 0 } };
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(s, fd);
		close(fd);
	}
	return NULL;
}

/* A listening socket on @addr:@port.  Returns it or -errno. */
static int listen_on(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		sl = sizeof(*in4);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		sl = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 8) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int ferry_metrics_serve(struct ferry_metrics *m, const char *addr,
			uint16_t port, uint16_t *bound)
{
	struct ferry__metrics_srv *s;
	int ret;

	if (!m)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->m = m;
	s->efd = -1;
	s->lfd = listen_on(addr ? addr : "127.0.0.1", port);
	if (s->lfd < 0) {
		ret = s->lfd;
		goto err;
	}
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0) {
		ret = -errno;
		goto err;
	}
	pthread_mutex_lock(&m->srv_lock);
	if (m->srv) {
		ret = -EALREADY;
	} else {
		ret = -pthread_create(&s->thread, NULL, srv_main, s);
		if (ret == 0)
			m->srv = s;
	}
	pthread_mutex_unlock(&m->srv_lock);
	if (ret < 0)
		goto err;
	if (bound)
		*bound = bound_port(s->lfd);
	return 0;
err:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->efd >= 0)
		close(s->efd);
	free(s);
	return ret;
}

void ferry__metrics_srv_stop(struct ferry_metrics *m)
{
	struct ferry__metrics_srv *s = m->srv;
	uint64_t one = 1;

	if (!s)
		return;
	/* Wakes the thread's poll(), and ends an answer in progress at its
	 * next wait. */
	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* An eventfd write fails only on overflow: it is set. */
	}
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->efd);
	free(s->body);
	free(s);
	m->srv = NULL;
}
