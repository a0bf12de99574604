/*
 * hist.h - log-linear latency histogram for the ferry load-testing tool.
 *
 * Values are uint64_t nanoseconds. Each power-of-two range is split into
 * 128 equal-width sub-buckets, so a bucket is never wider than 1/128 of its
 * lower edge: any value reported back lies within 0.4% of a value recorded
 * in the same bucket. Values 0..255 get one bucket each and are exact.
 *
 * The struct is fixed-size and the module never allocates, so histograms can
 * live on the stack, in per-thread arrays, or in shared memory, and be
 * combined with bench_hist_merge() after a run. A histogram is not
 * thread-safe; give each thread its own and merge them afterwards.
 */
#ifndef FERRY_BENCH_HIST_H
#define FERRY_BENCH_HIST_H

#include <stdint.h>

/* log2 of the number of linear sub-buckets per power of two. */
#define BENCH_HIST_SUB_BITS 7
/* Number of linear sub-buckets per power of two (128). */
#define BENCH_HIST_SUB_COUNT (1u << BENCH_HIST_SUB_BITS)
/*
 * Total bucket count. Values below 2 * SUB_COUNT take one bucket each; every
 * further power of two (exponents SUB_BITS + 1 .. 63) adds SUB_COUNT buckets.
 * With SUB_BITS == 7 this is 58 * 128 = 7424 counters (58 KiB).
 */
#define BENCH_HIST_BUCKETS \
	((64u - BENCH_HIST_SUB_BITS + 1u) * BENCH_HIST_SUB_COUNT)

/*
 * Treat the fields as private; use the functions below. The counters are
 * exposed only so the struct can be embedded by value without allocation.
 */
struct bench_hist {
	uint64_t counts[BENCH_HIST_BUCKETS];
	uint64_t count;  /* number of recorded values */
	uint64_t min;    /* UINT64_MAX while empty */
	uint64_t max;    /* 0 while empty */
	uint64_t sum_lo; /* low word of the 128-bit sum of recorded values */
	uint64_t sum_hi; /* high word, so the sum cannot overflow */
};

/*
 * Resets h to the empty state. Must be called before any other function is
 * used on h, and may be called again at any time to clear it.
 */
void bench_hist_init(struct bench_hist *h);

/*
 * Records one value v into h in constant time without allocating. Every
 * uint64_t value, including 0 and UINT64_MAX, is accepted.
 */
void bench_hist_record(struct bench_hist *h, uint64_t v);

/*
 * Adds every value recorded in src to dst, so that dst afterwards is
 * identical to a histogram that recorded both sets. src is not modified
 * and may be the same object as dst, which doubles every count.
 */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/*
 * Returns a value for the pct-th percentile of h, where pct is in [0, 100];
 * values below 0 (and NaN) are treated as 0 and values above 100 as 100.
 * The result is the midpoint of the bucket that holds the value of rank
 * ceil(pct / 100 * count), clamped to [min, max], so it is within 1% of a
 * value recorded in that bucket. The lowest rank returns min and the highest
 * rank returns max exactly, so p0 == min and p100 == max. Returns 0 if h is
 * empty.
 */
uint64_t bench_hist_percentile(const struct bench_hist *h, double pct);

/*
 * Walks the buckets of h that hold values, from the lowest up: *i is where to
 * start (0 the first time; the call leaves it past the bucket it returns).
 * Returns 1 and sets *low and *high (the bucket's first and last value,
 * inclusive) and *n (its count), or 0 when no bucket at or past *i holds
 * any.  With min, max, count and the sum this is the whole histogram, which
 * is how ferry-bench --json writes it for other tools to merge.
 */
int bench_hist_next_bucket(const struct bench_hist *h, unsigned *i,
			   uint64_t *low, uint64_t *high, uint64_t *n);

/* Returns the sum of the values recorded in h, as a double (rounded). */
double bench_hist_sum(const struct bench_hist *h);

/* Returns the number of values recorded in h. */
uint64_t bench_hist_count(const struct bench_hist *h);

/* Returns the largest value recorded in h exactly, or 0 if h is empty. */
uint64_t bench_hist_max(const struct bench_hist *h);

/* Returns the smallest value recorded in h exactly, or 0 if h is empty. */
uint64_t bench_hist_min(const struct bench_hist *h);

/*
 * Returns the arithmetic mean of the values recorded in h, or 0.0 if h is
 * empty. The sum behind it is kept in 128 bits, so it never overflows.
 */
double bench_hist_mean(const struct bench_hist *h);

#endif /* FERRY_BENCH_HIST_H */
