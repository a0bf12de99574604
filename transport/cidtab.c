/* SPDX-License-Identifier: MIT */
/*
 * The connection-id table of wire v2: see cidtab.h.
 */
#include <errno.h>
#include <stdlib.h>

#include <sodium.h>

#include "transport/cidtab.h"

int ferry__cidtab_init(struct ferry__cidtab *t, uint32_t max)
{
	uint64_t n = 16;

	while (n < 2ull * max)
		n <<= 1;
	if (n > (1ull << 31))
		return -ENOMEM;
	t->ents = calloc((size_t)n, sizeof(*t->ents));
	if (!t->ents)
		return -ENOMEM;
	t->mask = (uint32_t)n - 1;
	t->count = 0;
	t->max = (uint32_t)(n / 2);
	return 0;
}

void ferry__cidtab_fini(struct ferry__cidtab *t)
{
	free(t->ents);
	t->ents = NULL;
	t->count = t->max = 0;
}

/* The bucket holding @cid, or the empty one where it would go. */
static uint32_t slot_of(const struct ferry__cidtab *t, uint64_t cid)
{
	uint32_t i = (uint32_t)cid & t->mask;

	/* Terminates: at most half the buckets are full. */
	while (t->ents[i].cid != 0 && t->ents[i].cid != cid)
		i = (i + 1) & t->mask;
	return i;
}

int64_t ferry__cidtab_find(const struct ferry__cidtab *t, uint64_t cid)
{
	uint32_t i;

	if (cid == 0)
		return -ENOENT;
	i = slot_of(t, cid);
	return t->ents[i].cid == cid ? (int64_t)t->ents[i].val : -ENOENT;
}

int ferry__cidtab_add(struct ferry__cidtab *t, uint64_t cid, uint32_t val)
{
	uint32_t i;

	if (cid == 0)
		return -EINVAL;
	i = slot_of(t, cid);
	if (t->ents[i].cid == cid)
		return -EEXIST;
	if (t->count >= t->max)
		return -ENOSPC;
	t->ents[i].cid = cid;
	t->ents[i].val = val;
	t->count++;
	return 0;
}

int ferry__cidtab_del(struct ferry__cidtab *t, uint64_t cid)
{
	uint32_t i, j;

	if (cid == 0)
		return -ENOENT;
	i = slot_of(t, cid);
	if (t->ents[i].cid != cid)
		return -ENOENT;
	/* Backward shift: pull later members of the run into the hole
	 * when their home bucket is at or before it, so every entry stays
	 * reachable from its home without tombstones. */
	for (j = (i + 1) & t->mask; t->ents[j].cid != 0; j = (j + 1) & t->mask) {
		uint32_t home = (uint32_t)t->ents[j].cid & t->mask;

		/* Is home cyclically outside (i, j]?  Then j may move to i. */
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->ents[i] = t->ents[j];
			i = j;
		}
	}
	t->ents[i].cid = 0;
	t->ents[i].val = 0;
	t->count--;
	return 0;
}

uint64_t ferry__cidtab_draw(const struct ferry__cidtab *t)
{
	/* With the table at most half full a draw collides with
	 * probability below 2^-32; a few tries are plenty. */
	for (int tries = 0; tries < 8; tries++) {
		uint64_t cid;

		randombytes_buf(&cid, sizeof(cid));
		if ((uint32_t)cid == 0 || ferry__cidtab_find(t, cid) >= 0)
			continue;
		return cid;
	}
	return 0;
}
