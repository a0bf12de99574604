/* SPDX-License-Identifier: MIT */
/* What the corpus generators share: writing one seed file. */
#ifndef FERRY_FUZZ_SEED_H
#define FERRY_FUZZ_SEED_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Write @n bytes at @p to @dir/@name; on failure say why (as @prog) and
 * exit 1. */
static inline void seed_write(const char *prog, const char *dir,
			      const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp || (n && fwrite(p, 1, n, fp) != n) || fclose(fp) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		exit(1);
	}
}

#endif /* FERRY_FUZZ_SEED_H */
