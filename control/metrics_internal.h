/* SPDX-License-Identifier: MIT */
/*
 * What control/metrics.c (the set of sources and the text writer) and
 * control/metrics_http.c (the HTTP server) share.  Not installed.
 */
#ifndef FERRY_CONTROL_METRICS_INTERNAL_H
#define FERRY_CONTROL_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <ferry/metrics.h>

#define FERRY__METRICS_NAME_MAX 63

struct ferry__metrics_ep {
	struct ferry_endpoint *ep;
	char name[FERRY__METRICS_NAME_MAX + 1];
};

struct ferry__metrics_srv;

struct ferry_metrics {
	/* Guards the sources: held by a writer for one exposition, and by
	 * whoever adds or removes a source. */
	pthread_mutex_t lock;
	struct ferry__metrics_ep *eps;
	unsigned neps, cap;
	struct ferry_tracer *tracer;
	/* Guards srv: serve and stop, never held by the server's thread
	 * (stop joins it). */
	pthread_mutex_t srv_lock;
	struct ferry__metrics_srv *srv;
};

/* metrics_http.c: stop and free the server, if any (srv_lock held). */
void ferry__metrics_srv_stop(struct ferry_metrics *m);

#endif /* FERRY_CONTROL_METRICS_INTERNAL_H */
