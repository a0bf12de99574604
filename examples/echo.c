/* SPDX-License-Identifier: MIT */
/*
 * The smallest ferry program: one thread runs a server endpoint with an echo
 * handler and a client endpoint that calls it, both on loopback.
 *
 *   ferry-echo-example [message]
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <ferry/ferry.h>

#define METHOD_ECHO 1

/* The handler answers with the request's own buffer: no copy at all. */
static void echo(struct ferry_call *call, void *ctx)
{
	(void)ctx;
	ferry_call_respond(call, ferry_call_take_req(call));
}

static void on_reply(int res, const void *data, size_t len, void *ctx)
{
	bool *done = ctx;

	if (res < 0)
		fprintf(stderr, "call failed: %s\n", ferry_strerror(res));
	else
		printf("reply: %.*s\n", (int)len, (const char *)data);
	*done = true;
}

int main(int argc, char **argv)
{
	const char *text = argc > 1 ? argv[1] : "hello, ferry";
	struct ferry_endpoint *srv = NULL, *cli = NULL;
	struct ferry_session *sess = NULL;
	struct ferry_msgbuf *req;
	struct ferry_ep_config cfg;
	bool done = false;
	int ret;

	ferry_ep_config_init(&cfg);
	cfg.bind_addr = "127.0.0.1";
	ret = ferry_endpoint_create(&cfg, &srv);
	if (ret == 0)
		ret = ferry_endpoint_register(srv, METHOD_ECHO, echo, NULL);
	if (ret == 0)
		ret = ferry_endpoint_create(&cfg, &cli);
	if (ret == 0)
		ret = ferry_session_connect(cli, "127.0.0.1",
					    ferry_endpoint_port(srv), NULL,
					    NULL, NULL, &sess);
	if (ret == 0)
		ret = ferry_msgbuf_alloc(cli, strlen(text), &req);
	if (ret < 0) {
		fprintf(stderr, "setup failed: %s\n", ferry_strerror(ret));
		goto out;
	}
	memcpy(ferry_msgbuf_data(req), text, strlen(text));
	/* The call may be made before the handshake ends; it goes out as
	 * soon as the session is open. */
	ret = ferry_call(sess, METHOD_ECHO, req, on_reply, &done);
	if (ret < 0) {
		ferry_msgbuf_free(req);
		fprintf(stderr, "call: %s\n", ferry_strerror(ret));
		goto out;
	}
	for (int i = 0; i < 5000 && !done; i++) {
		ferry_endpoint_poll(cli, 0);
		ferry_endpoint_poll(srv, 1);
	}
	if (!done) {
		fprintf(stderr, "no reply\n");
		ret = -1;
	}
out:
	ferry_session_close(sess);
	ferry_endpoint_destroy(cli);
	ferry_endpoint_destroy(srv);
	return ret < 0 ? 1 : 0;
}
