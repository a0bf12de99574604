/* SPDX-License-Identifier: MIT */
/*
 * What every fuzz target checks with: a broken property traps, which
 * libFuzzer reports as a crash with the input that caused it.
 */
#ifndef FERRY_FUZZ_CHECK_H
#define FERRY_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

/* [p, p + n) lies within [lo, lo + len). */
static inline int inside(const void *p, size_t n, const uint8_t *lo,
			 size_t len)
{
	const uint8_t *q = p;

	return q >= lo && q <= lo + len && n <= (size_t)(lo + len - q);
}

#endif
