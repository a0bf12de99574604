/* SPDX-License-Identifier: MIT */
/*
 * test_trace_export.c - the export file's safety and size (issue 14;
 * docs/tracing.md, section 6, "The file"): it is opened with O_NOFOLLOW
 * and O_CLOEXEC and created 0600 whatever the umask, a symbolic link, a
 * FIFO or anything but a regular file at its path is refused, and with
 * export_max_bytes it is rotated (path -> path.1 -> path.2 ...) before a
 * line would take it past the cap, never splitting a line, keeping
 * export_keep files and counting export_rotations.
 *
 * Each case works in a directory of its own under /tmp, removed at the
 * end.  Criterion runs each case in its own process.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "trace_util.h"

/* --- a directory, files in it, and what they hold ------------------------ */

static char g_dir[64];

static void dir_make(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/test_trace_export_XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir));
}

/* "<dir>/<name>" in @buf (static, one of four in turn). */
static const char *in_dir(const char *name)
{
	static char bufs[4][sizeof(g_dir) + 256 + 2];
	static unsigned next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", g_dir, name);
	return b;
}

static void dir_remove(void)
{
	DIR *d = opendir(g_dir);
	struct dirent *e;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlink(in_dir(e->d_name));
	closedir(d);
	rmdir(g_dir);
}

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* The whole of @path, NUL-terminated, or NULL if it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Check that every line of @path is a whole export line (TracesData);
 * returns the number of lines, adds the spans' methods (rpc.method) to
 * @seen (NULL: not wanted).  The file must exist and end with a line. */
static unsigned check_lines(const char *path, bool seen[], size_t nseen,
			    size_t *bytes)
{
	struct ferry__otlp_span *sp = NULL;
	size_t n = 0, cap = 0, len;
	char *text = slurp(path, &len), *line, *save = NULL, err[160];
	unsigned lines = 0;

	cr_assert_not_null(text, "%s missing", path);
	cr_assert_gt(len, 0, "%s empty", path);
	cr_assert_eq(text[len - 1], '\n', "%s: a line cut short", path);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		cr_assert_eq(ferry__otlp_parse_line(line, strlen(line), &sp, &n,
						    &cap, err, sizeof(err)),
			     0, "%s line %u: %s", path, lines + 1, err);
		lines++;
	}
	for (size_t i = 0; seen && i < n; i++) {
		unsigned m = (unsigned)atoi(sp[i].rpc_method);

		if (sp[i].rpc_method[0] && m < nseen) {
			cr_assert_not(seen[m], "method %u twice", m);
			seen[m] = true;
		}
	}
	if (bytes)
		*bytes = len;
	free(sp);
	free(text);
	return lines;
}

/* A tracer exporting to @path (no callback, so that call spans take the
 * exporter's template path too) with @max_bytes and @keep. */
static int tracer_at(const char *path, uint64_t max_bytes, uint32_t keep,
		     bool replace, struct ferry_tracer **t)
{
	struct ferry_tracer_config c;

	ferry_tracer_config_init(&c);
	c.export_path = path;
	c.export_replace = replace;
	c.export_max_bytes = max_bytes;
	c.export_keep = keep;
	return ferry_tracer_create(&c, t);
}

/* @n call spans of methods @first.. under one client session, each
 * drained on its own when @each (one line per span), else all in one. */
static void calls(struct ferry_tracer *t, struct ferry_trace_ring *r,
		  unsigned first, unsigned n, bool each)
{
	ferry_span_t s = client_open(r, NULL);

	for (unsigned i = first; i < first + n; i++) {
		ferry_span_t c = ferry_span_call_start(r, s, (uint16_t)i, NULL);

		cr_assert_neq(c, FERRY_SPAN_NONE);
		/* Every third one an error: the general path, not the
		 * template's. */
		ferry_span_call_end(r, c, i % 3 ? 0 : -ETIMEDOUT);
		if (each)
			cr_assert_geq(ferry_tracer_drain(t), 0);
	}
	/* The session span has no rpc.method: not counted in @seen. */
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	cr_assert_geq(ferry_tracer_drain(t), 0);
}

static struct ferry_tracer_stats tstats(struct ferry_tracer *t)
{
	struct ferry_tracer_stats st;

	ferry_tracer_stats(t, &st);
	return st;
}

/* --- the file: safe to open ------------------------------------------------ */

/* A symbolic link at the path, to a file the tracer's user may write, is
 * refused (-ELOOP), with or without export_replace: nothing is written
 * or truncated through it. */
Test(export_file, symlink_refused)
{
	struct ferry_tracer *t = NULL;
	size_t len;
	char *text;

	dir_make();
	put_file(in_dir("victim"), "precious\n");
	cr_assert_eq(symlink(in_dir("victim"), in_dir("out")), 0);
	cr_assert_eq(tracer_at(in_dir("out"), 0, 2, false, &t), -ELOOP);
	cr_assert_eq(tracer_at(in_dir("out"), 0, 2, true, &t), -ELOOP);
	cr_assert_null(t);
	text = slurp(in_dir("victim"), &len);
	cr_assert_str_eq(text, "precious\n");
	free(text);
	/* A dangling one does not create its target. */
	cr_assert_eq(symlink(in_dir("nothing"), in_dir("out2")), 0);
	cr_assert_eq(tracer_at(in_dir("out2"), 0, 2, true, &t), -ELOOP);
	cr_assert_not(exists(in_dir("nothing")));
	dir_remove();
}

/* Created 0600 even under umask 0 (spans name peers, methods and errors),
 * close-on-exec; and a FIFO at the path is refused at once instead of
 * waiting for a reader. */
Test(export_file, mode_0600_cloexec_regular_only)
{
	struct ferry_tracer *t;
	mode_t old = umask(0);
	struct stat st;
	int fd;

	dir_make();
	cr_assert_eq(tracer_at(in_dir("out"), 0, 2, false, &t), 0);
	umask(old);
	cr_assert_eq(stat(in_dir("out"), &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	cr_assert(fcntl(t->x.fd, F_GETFD) & FD_CLOEXEC);
	cr_assert(fcntl(t->x.fd, F_GETFL) & O_APPEND);
	ferry_tracer_destroy(t);

	/* Without a reader the open fails (-ENXIO) rather than wait; with
	 * one, the FIFO is still not a file (-EINVAL). */
	cr_assert_eq(mkfifo(in_dir("fifo"), 0600), 0);
	cr_assert_eq(tracer_at(in_dir("fifo"), 0, 2, false, &t), -ENXIO);
	fd = open(in_dir("fifo"), O_RDONLY | O_NONBLOCK);
	cr_assert_geq(fd, 0);
	cr_assert_eq(tracer_at(in_dir("fifo"), 0, 2, false, &t), -EINVAL);
	close(fd);
	cr_assert_eq(tracer_at(g_dir, 0, 2, false, &t), -EISDIR);
	dir_remove();
}

Test(export_file, config_checked)
{
	struct ferry_tracer_config c;
	struct ferry_tracer *t;

	ferry_tracer_config_init(&c);
	cr_assert(c.ignore_remote_sampling);
	cr_assert_eq(c.export_max_bytes, 256u << 20);
	cr_assert_eq(c.export_keep, 2);
	c.export_max_bytes = 4095;
	cr_assert_eq(ferry_tracer_create(&c, &t), -EINVAL);
	c.export_max_bytes = 4096;
	c.export_keep = 65;
	cr_assert_eq(ferry_tracer_create(&c, &t), -EINVAL);
	c.export_keep = 64;
	cr_assert_eq(ferry_tracer_create(&c, &t), 0);
	ferry_tracer_destroy(t);
}

/* --- rotation --------------------------------------------------------------- */

/* A line per span, 4 KiB cap, two kept: out, out.1, out.2 and no more,
 * each within the cap and made of whole lines; together they hold the
 * latest spans with none missing; every file 0600; ferryctl spans reads
 * the set. */
Test(export_rotate, cap_keep_and_whole_lines)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t;
	struct ferry_tracer_stats st;
	bool seen[300] = { false };
	const char *names[] = { "out.2", "out.1", "out" };
	char *argv[4] = { "spans" };
	unsigned first = 300;
	struct stat sb;
	size_t bytes;

	dir_make();
	cr_assert_eq(tracer_at(in_dir("out"), 4096, 2, false, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	calls(t, r, 0, 300, true);
	st = tstats(t);
	cr_assert_geq(st.export_rotations, 3, "%llu",
		      (unsigned long long)st.export_rotations);
	cr_assert_eq(st.export_errors, 0);
	cr_assert_not(exists(in_dir("out.3")));
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_gt(check_lines(in_dir(names[i]), seen, 300, &bytes), 0);
		cr_assert_leq(bytes, 4096, "%s: %zu bytes", names[i], bytes);
		/* Full files: the next line would not have fit. */
		if (i < 2)
			cr_assert_gt(bytes, 4096 - 1200, "%s: %zu", names[i], bytes);
		cr_assert_eq(stat(in_dir(names[i]), &sb), 0);
		cr_assert_eq(sb.st_mode & 0777, 0600);
		argv[1 + i] = (char *)in_dir(names[i]);
	}
	/* The kept files hold methods first..299 without a gap: the oldest
	 * went with the file that was dropped, nothing else did. */
	while (first > 0 && seen[first - 1])
		first--;
	cr_assert_gt(first, 0, "older spans were dropped with their files");
	for (unsigned m = first; m < 300; m++)
		cr_assert(seen[m], "method %u missing", m);
	for (unsigned m = 0; m < first; m++)
		cr_assert_not(seen[m]);
	cr_assert(fcntl(t->x.fd, F_GETFD) & FD_CLOEXEC);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	cr_assert_eq(ferry__ctl_spans(4, argv), 0);
	dir_remove();
}

/* All spans drained at once make one batch far past the cap: it is
 * written as several lines, each file within the cap, none lost. */
Test(export_rotate, one_batch_split_by_the_cap)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t;
	bool seen[200] = { false };
	unsigned files = 0;
	size_t bytes;
	char name[16];

	dir_make();
	cr_assert_eq(tracer_at(in_dir("out"), 4096, 64, false, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	calls(t, r, 0, 200, false);
	ferry_trace_ring_destroy(r);
	cr_assert_gt(tstats(t).export_rotations, 5);
	files = (unsigned)tstats(t).export_rotations + 1;
	ferry_tracer_destroy(t);
	for (unsigned i = 0; i < files; i++) {
		snprintf(name, sizeof(name), i ? "out.%u" : "out", i);
		check_lines(in_dir(name), seen, 200, &bytes);
		cr_assert_leq(bytes, 4096, "%s: %zu bytes", name, bytes);
	}
	for (unsigned m = 0; m < 200; m++)
		cr_assert(seen[m], "method %u lost", m);
	dir_remove();
}

/* A span whose line is longer than the cap is not split: it goes alone
 * into a file of its own, and the next line starts another. */
Test(export_rotate, long_line_alone)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t;
	char val[FERRY_ATTR_STR_MAX + 1], key[16];
	ferry_span_t s;
	size_t bytes;

	dir_make();
	cr_assert_eq(tracer_at(in_dir("out"), 4096, 2, false, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	calls(t, r, 0, 1, true);
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	s = client_open(r, NULL);
	for (int i = 0; i < 24; i++) {
		snprintf(key, sizeof(key), "big.%d", i);
		cr_assert_eq(ferry_span_set_str(r, s, key, val), 0);
	}
	ferry_span_session_end(r, s, FERRY_SPAN_END_CLOSE, 0, NULL);
	cr_assert_geq(ferry_tracer_drain(t), 0);
	calls(t, r, 1, 1, true);
	cr_assert_eq(tstats(t).export_rotations, 2);
	cr_assert_eq(tstats(t).export_errors, 0);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	cr_assert_eq(check_lines(in_dir("out.1"), NULL, 0, &bytes), 1);
	cr_assert_gt(bytes, 4096);
	check_lines(in_dir("out.2"), NULL, 0, &bytes);
	cr_assert_leq(bytes, 4096);
	check_lines(in_dir("out"), NULL, 0, &bytes);
	cr_assert_leq(bytes, 4096);
	dir_remove();
}

/* export_keep 0: the full file is removed, no rotated file is made; no
 * cap (0): the file only grows. */
Test(export_rotate, keep_none_and_no_cap)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t;
	size_t bytes;

	dir_make();
	cr_assert_eq(tracer_at(in_dir("out"), 4096, 0, false, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	calls(t, r, 0, 100, true);
	cr_assert_gt(tstats(t).export_rotations, 3);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	cr_assert_not(exists(in_dir("out.1")));
	check_lines(in_dir("out"), NULL, 0, &bytes);
	cr_assert_leq(bytes, 4096);

	cr_assert_eq(tracer_at(in_dir("big"), 0, 2, false, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	calls(t, r, 0, 100, true);
	cr_assert_eq(tstats(t).export_rotations, 0);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	check_lines(in_dir("big"), NULL, 0, &bytes);
	cr_assert_gt(bytes, 3 * 4096);
	cr_assert_not(exists(in_dir("big.1")));
	dir_remove();
}

/* Appending, a file already past the cap is rotated at the first line;
 * export_replace (one run's spans) removes an earlier run's rotated
 * files. */
Test(export_rotate, append_and_replace)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t;
	char big[5000];
	size_t len;
	char *text;

	dir_make();
	memset(big, 'x', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	put_file(in_dir("out"), big);
	put_file(in_dir("out.1"), "run 1\n");
	put_file(in_dir("out.7"), "run 0\n");
	cr_assert_eq(tracer_at(in_dir("out"), 4096, 2, false, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	calls(t, r, 0, 1, true);
	cr_assert_eq(tstats(t).export_rotations, 1);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	text = slurp(in_dir("out.1"), &len);
	cr_assert_str_eq(text, big, "the old file, rotated whole");
	free(text);
	text = slurp(in_dir("out.2"), &len);
	cr_assert_str_eq(text, "run 1\n");
	free(text);
	check_lines(in_dir("out"), NULL, 0, NULL);

	cr_assert_eq(tracer_at(in_dir("out"), 4096, 2, true, &t), 0);
	cr_assert_not(exists(in_dir("out.1")));
	cr_assert_not(exists(in_dir("out.2")));
	cr_assert_not(exists(in_dir("out.7")));
	ferry_tracer_destroy(t);
	cr_assert(exists(in_dir("out")));
	dir_remove();
}

/* A symbolic link planted at the path after the tracer opened it is never
 * written through: rotation moves the link aside (rename does not follow
 * it) and creates a new file with O_EXCL. */
Test(export_rotate, planted_symlink_not_followed)
{
	struct ferry_trace_ring *r;
	struct ferry_tracer *t;
	struct stat sb;
	size_t len;
	char *text;

	dir_make();
	put_file(in_dir("victim"), "precious\n");
	cr_assert_eq(tracer_at(in_dir("out"), 4096, 2, false, &t), 0);
	cr_assert_eq(ferry_trace_ring_create(t, &r), 0);
	calls(t, r, 0, 5, true);
	cr_assert_eq(unlink(in_dir("out")), 0);
	cr_assert_eq(symlink(in_dir("victim"), in_dir("out")), 0);
	calls(t, r, 5, 100, true);
	cr_assert_gt(tstats(t).export_rotations, 0);
	cr_assert_eq(tstats(t).export_errors, 0);
	ferry_trace_ring_destroy(r);
	ferry_tracer_destroy(t);
	text = slurp(in_dir("victim"), &len);
	cr_assert_str_eq(text, "precious\n");
	free(text);
	cr_assert_eq(lstat(in_dir("out"), &sb), 0);
	cr_assert(S_ISREG(sb.st_mode));
	check_lines(in_dir("out"), NULL, 0, NULL);
	dir_remove();
}
