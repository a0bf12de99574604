/* SPDX-License-Identifier: MIT */
/*
 * An LD_PRELOAD shim that counts heap allocations (malloc, calloc, realloc)
 * and prints the count when the process exits.  Used to check that ferry
 * allocates nothing in steady state: the count must not grow with the run's
 * length (docs/bench.md).  Not for sanitizer builds, which bring their own
 * allocator.
 *
 *   LD_PRELOAD=build/bench/libmalloc-count.so ferry-bench loop --duration 4
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

/* glibc's own entry points: no dlsym, which itself allocates. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static atomic_ulong allocations;

void *malloc(size_t n)
{
	atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
	return __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}

__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "malloc-count: %lu allocations\n",
		atomic_load(&allocations));
}
