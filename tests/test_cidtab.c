/* SPDX-License-Identifier: MIT */
/*
 * The wire v2 connection-id table (transport/cidtab.c): add, find and
 * delete against a model, with CIDs made to share buckets and runs that
 * wrap the table's end, so that backward-shift deletion is exercised where
 * it can go wrong; its limits; and what a drawn CID looks like.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "transport/cidtab.h"

static uint64_t rng_state = 0x6a09e667f3bcc909ull;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

Test(cidtab, basics)
{
	struct ferry__cidtab t;

	cr_assert_eq(ferry__cidtab_init(&t, 10), 0);
	cr_assert_eq(t.mask + 1, 32);
	cr_assert_eq(ferry__cidtab_find(&t, 5), -ENOENT);
	cr_assert_eq(ferry__cidtab_add(&t, 0, 1), -EINVAL);
	cr_assert_eq(ferry__cidtab_find(&t, 0), -ENOENT);
	cr_assert_eq(ferry__cidtab_add(&t, 5, 7), 0);
	cr_assert_eq(ferry__cidtab_add(&t, 5, 8), -EEXIST);
	cr_assert_eq(ferry__cidtab_find(&t, 5), 7);
	cr_assert_eq(ferry__cidtab_del(&t, 5), 0);
	cr_assert_eq(ferry__cidtab_del(&t, 5), -ENOENT);
	cr_assert_eq(ferry__cidtab_find(&t, 5), -ENOENT);
	for (uint32_t i = 1; i <= 16; i++)
		cr_assert_eq(ferry__cidtab_add(&t, (uint64_t)i << 40 | i, i), 0);
	cr_assert_eq(ferry__cidtab_add(&t, 99, 1), -ENOSPC,
		     "never more than half the buckets");
	ferry__cidtab_fini(&t);
}

/* Random operations on CIDs drawn from few buckets near the table's end,
 * checked against a list after every step. */
Test(cidtab, model_with_collisions_and_wrap)
{
	enum { POOL = 48 };
	struct ferry__cidtab t;
	uint64_t pool[POOL];
	int64_t model[POOL];

	cr_assert_eq(ferry__cidtab_init(&t, 32), 0); /* 64 buckets */
	for (int i = 0; i < POOL; i++) {
		/* Home buckets 60..63 and 0..1: runs wrap. */
		uint64_t home = (60 + rng_next() % 6) & 63;

		pool[i] = (uint64_t)(i + 1) << 32 | (rng_next() << 6 & 0xffffffc0u) |
			  home;
		if ((uint32_t)pool[i] == 0)
			pool[i] |= 64;
		model[i] = -ENOENT;
	}
	for (int step = 0; step < 20000; step++) {
		int i = (int)(rng_next() % POOL);

		if (model[i] >= 0 && rng_next() % 2) {
			cr_assert_eq(ferry__cidtab_del(&t, pool[i]), 0);
			model[i] = -ENOENT;
		} else if (model[i] < 0) {
			int rc = ferry__cidtab_add(&t, pool[i], (uint32_t)step);

			if (rc == 0)
				model[i] = step;
			else
				cr_assert_eq(rc, -ENOSPC);
		}
		for (int k = 0; k < POOL; k++)
			cr_assert_eq(ferry__cidtab_find(&t, pool[k]), model[k],
				     "step %d cid %d", step, k);
	}
	ferry__cidtab_fini(&t);
}

Test(cidtab, draw)
{
	struct ferry__cidtab t;

	cr_assert_geq(sodium_init(), 0);
	cr_assert_eq(ferry__cidtab_init(&t, 1000), 0);
	for (uint32_t i = 0; i < 1000; i++) {
		uint64_t c = ferry__cidtab_draw(&t);

		cr_assert_neq(c, 0);
		cr_assert_neq((uint32_t)c, 0);
		cr_assert_eq(ferry__cidtab_add(&t, c, i), 0);
	}
	ferry__cidtab_fini(&t);
}
