/* SPDX-License-Identifier: MIT */
/*
 * ferryctl spans FILE... - print the session trees of OTLP/JSON lines
 * export files (docs/tracing.md, section 7): client session span -> server
 * session span -> call spans, with durations and status.  Both sides of a
 * session usually write separate files, often on different hosts; give
 * them all: spans join across files by their trace and parent ids, and
 * with several files each span says which file (host) it came from.
 *
 * Exit status: 0, 1 (a file cannot be read or is not a valid export: one
 * line on stderr, "ferryctl: spans: FILE:LINE: reason"), 2 (usage).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/trace_internal.h"

struct tree {
	struct ferry__otlp_span *s;
	size_t n, cap;
	size_t *order;      /* indices sorted by span id */
	size_t **kids;      /* children of each span, by start time */
	size_t *nkids;
	bool *seen;
	unsigned *src;      /* the file each span came from */
	const char **files; /* their base names, when more than one */
};

static int fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("ferryctl: spans: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static int load(struct tree *t, const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, err[160];
	size_t lcap = 0;
	ssize_t len;
	unsigned lineno = 0;
	int rc = 0;

	if (!f)
		return fail(1, "%s: %s", path, strerror(errno));
	while ((len = getline(&line, &lcap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0)
			continue;
		if (memchr(line, '\0', (size_t)len)) {
			rc = fail(1, "%s:%u: NUL byte in line", path, lineno);
			break;
		}
		if (ferry__otlp_parse_line(line, (size_t)len, &t->s, &t->n, &t->cap,
					   err, sizeof(err)) < 0) {
			rc = fail(1, "%s:%u: %s", path, lineno, err);
			break;
		}
	}
	if (!rc && ferror(f))
		rc = fail(1, "%s: read error", path);
	free(line);
	fclose(f);
	return rc;
}

static struct tree *g_t;

static int by_id(const void *a, const void *b)
{
	const struct ferry__otlp_span *x = &g_t->s[*(const size_t *)a];
	const struct ferry__otlp_span *y = &g_t->s[*(const size_t *)b];
	int c = strcmp(x->span_id, y->span_id);

	return c ? c : strcmp(x->trace_id, y->trace_id);
}

static int by_start(const void *a, const void *b)
{
	const struct ferry__otlp_span *x = &g_t->s[*(const size_t *)a];
	const struct ferry__otlp_span *y = &g_t->s[*(const size_t *)b];

	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return strcmp(x->span_id, y->span_id);
}

/* The span with @trace and @id, or SIZE_MAX. */
static size_t find(struct tree *t, const char *trace, const char *id)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ferry__otlp_span *m = &t->s[t->order[mid]];
		int c = strcmp(m->span_id, id);

		if (!c)
			c = strcmp(m->trace_id, trace);
		if (!c)
			return t->order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

static const char *kind_name(int k)
{
	static const char *const names[] = { "UNSPECIFIED", "INTERNAL", "SERVER",
					     "CLIENT", "PRODUCER", "CONSUMER" };

	return k >= 0 && k <= 5 ? names[k] : "?";
}

static const char *status_name(int s)
{
	return s == 1 ? "OK" : s == 2 ? "ERROR" : "UNSET";
}

static void print_span(struct tree *t, size_t i, unsigned depth)
{
	const struct ferry__otlp_span *s = &t->s[i];
	double ns = (double)(s->end_ns - s->start_ns);

	t->seen[i] = true;
	printf("%*s%s %s %s", (int)(2 * depth + 2), "- ", kind_name(s->kind),
	       s->name, s->service[0] ? s->service : "-");
	if (ns >= 1e9)
		printf(" %.3f s", ns / 1e9);
	else if (ns >= 1e6)
		printf(" %.3f ms", ns / 1e6);
	else
		printf(" %.1f us", ns / 1e3);
	printf(" %s", status_name(s->status));
	if (s->status_msg[0])
		printf(" \"%s\"", s->status_msg);
	if (s->error_type[0])
		printf(" error.type=%s", s->error_type);
	printf(" span=%s", s->span_id);
	if (t->files)
		printf(" file=%s", t->files[t->src[i]]);
	printf("\n");
	for (size_t k = 0; k < t->nkids[i]; k++)
		if (!t->seen[t->kids[i][k]])
			print_span(t, t->kids[i][k], depth + 1);
}

static int build_and_print(struct tree *t)
{
	size_t *roots, nroots = 0, dups = 0;
	const char *last_trace = "";

	t->order = calloc(t->n, sizeof(*t->order));
	t->kids = calloc(t->n, sizeof(*t->kids));
	t->nkids = calloc(t->n, sizeof(*t->nkids));
	t->seen = calloc(t->n, sizeof(*t->seen));
	roots = calloc(t->n, sizeof(*roots));
	if (!t->order || !t->kids || !t->nkids || !t->seen || !roots) {
		free(roots);
		return fail(1, "out of memory");
	}
	g_t = t;
	for (size_t i = 0; i < t->n; i++)
		t->order[i] = i;
	qsort(t->order, t->n, sizeof(*t->order), by_id);
	for (size_t i = 0; i < t->n; i++) {
		const struct ferry__otlp_span *s = &t->s[i];
		size_t p = s->parent_id[0] ? find(t, s->trace_id, s->parent_id)
					   : SIZE_MAX;
		size_t *k;

		/* A span exported twice (the same ids): show it once. */
		if (find(t, s->trace_id, s->span_id) != i) {
			dups++;
			t->seen[i] = true;
			continue;
		}
		if (p == SIZE_MAX || p == i) {
			roots[nroots++] = i;
			continue;
		}
		k = realloc(t->kids[p], (t->nkids[p] + 1) * sizeof(*k));
		if (!k) {
			free(roots);
			return fail(1, "out of memory");
		}
		t->kids[p] = k;
		k[t->nkids[p]++] = i;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->nkids[i] > 1)
			qsort(t->kids[i], t->nkids[i], sizeof(size_t), by_start);
	/* Roots grouped by trace, traces by their first start. */
	qsort(roots, nroots, sizeof(*roots), by_start);
	for (size_t pass = 0; pass < nroots; pass++) {
		size_t r = roots[pass];

		if (t->seen[r])
			continue;
		last_trace = t->s[r].trace_id;
		printf("trace %s\n", last_trace);
		for (size_t q = pass; q < nroots; q++) {
			const struct ferry__otlp_span *s = &t->s[roots[q]];

			if (t->seen[roots[q]] || strcmp(s->trace_id, last_trace) != 0)
				continue;
			if (s->parent_id[0])
				printf("  (parent %s not in these files)\n", s->parent_id);
			print_span(t, roots[q], 0);
		}
	}
	/* Whatever is left sits on a parent cycle (a hand-made file). */
	for (size_t i = 0; i < t->n; i++)
		if (!t->seen[i]) {
			printf("trace %s (parent cycle)\n", t->s[i].trace_id);
			print_span(t, i, 0);
		}
	printf("%zu spans%s\n", t->n - dups, dups ? " (duplicates skipped)" : "");
	free(roots);
	return 0;
}

int ferry__ctl_spans(int argc, char **argv)
{
	struct tree t = { 0 };
	int rc = 0;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
			  strcmp(argv[1], "--help") == 0)) {
		puts("usage: ferryctl spans FILE...\n"
		     "Print the session trees in OTLP/JSON lines export files,\n"
		     "one per trace, joined across files (hosts) by trace and\n"
		     "parent ids; with several files, each span's file= says\n"
		     "which it came from.");
		return 0;
	}
	if (argc < 2)
		return fail(2, "missing FILE (see --help)");
	for (int i = 1; i < argc && !rc; i++) {
		size_t before = t.n;
		unsigned *src;

		rc = load(&t, argv[i]);
		src = rc ? NULL : realloc(t.src, (t.n + 1) * sizeof(*src));
		if (!rc && !src)
			rc = fail(1, "out of memory");
		if (rc)
			break;
		t.src = src;
		for (size_t k = before; k < t.n; k++)
			t.src[k] = (unsigned)(i - 1);
	}
	if (!rc && argc > 2) {
		t.files = calloc((size_t)argc - 1, sizeof(*t.files));
		if (!t.files)
			rc = fail(1, "out of memory");
		for (int i = 1; !rc && i < argc; i++) {
			const char *b = strrchr(argv[i], '/');

			t.files[i - 1] = b ? b + 1 : argv[i];
		}
	}
	if (!rc)
		rc = build_and_print(&t);
	for (size_t i = 0; t.kids && i < t.n; i++)
		free(t.kids[i]);
	free(t.kids);
	free(t.nkids);
	free(t.seen);
	free(t.order);
	free(t.src);
	free(t.files);
	free(t.s);
	return rc;
}
