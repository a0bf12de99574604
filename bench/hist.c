/*
 * hist.c - log-linear latency histogram; see hist.h for the contract.
 *
 * Bucket layout (S = BENCH_HIST_SUB_BITS = 7):
 *   Let e be the index of the highest set bit of (v | 255), so e >= S + 1,
 *   and shift = e - (S + 1). Then top = v >> shift keeps the S + 1 most
 *   significant bits of v and the bucket index is shift * 128 + top.
 *   - For v < 256, shift is 0 and the index is v itself: exact buckets.
 *   - For v >= 256, top is in [128, 255], so each shift owns 128 buckets
 *     that continue the previous range without gaps or overlap.
 *   A bucket at a given shift is 2^shift wide and starts at or above
 *   128 * 2^shift, which gives the 1/128 relative width bound.
 */
#include "hist.h"

#include <string.h>

/* Values below this limit have one bucket each. */
#define BENCH_HIST_EXACT_LIMIT (2u * BENCH_HIST_SUB_COUNT)

/*
 * Maps a value to its bucket index. OR-ing in EXACT_LIMIT - 1 gives the
 * exponent a floor, which both makes small values exact and keeps the
 * argument of __builtin_clzll non-zero (clz of 0 is undefined). No branches.
 */
static inline unsigned bench_hist_index(uint64_t v)
{
	unsigned e = 63u - (unsigned)__builtin_clzll(
		v | (uint64_t)(BENCH_HIST_EXACT_LIMIT - 1u));
	unsigned shift = e - BENCH_HIST_SUB_BITS;

	return (shift << BENCH_HIST_SUB_BITS) + (unsigned)(v >> shift);
}

/*
 * Inverse of bench_hist_index: stores the lowest value of bucket i in *low
 * and its width minus one in *span. The span form avoids computing low +
 * width, which overflows for the last bucket (it ends at UINT64_MAX).
 */
static void bench_hist_bucket_range(unsigned i, uint64_t *low, uint64_t *span)
{
	if (i < BENCH_HIST_EXACT_LIMIT) {
		*low = i;
		*span = 0;
		return;
	}
	unsigned shift = (i >> BENCH_HIST_SUB_BITS) - 1u;
	uint64_t top = i - (shift << BENCH_HIST_SUB_BITS);

	*low = top << shift;
	*span = ((uint64_t)1 << shift) - 1u;
}

void bench_hist_init(struct bench_hist *h)
{
	memset(h->counts, 0, sizeof(h->counts));
	h->count = 0;
	/* Sentinels let record() update min/max without an "empty" branch. */
	h->min = UINT64_MAX;
	h->max = 0;
	h->sum_lo = 0;
	h->sum_hi = 0;
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
	h->counts[bench_hist_index(v)]++;
	h->count++;
	/* 128-bit add with carry: a few huge samples must not wrap the mean. */
	h->sum_lo += v;
	h->sum_hi += h->sum_lo < v;
	/* Written as selects so compilers emit conditional moves. */
	h->min = v < h->min ? v : h->min;
	h->max = v > h->max ? v : h->max;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	/* Snapshot the scalars first so that dst == src behaves like two sets. */
	uint64_t count = src->count;
	uint64_t min = src->min;
	uint64_t max = src->max;
	uint64_t lo = src->sum_lo;
	uint64_t hi = src->sum_hi;

	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += count;
	dst->sum_lo += lo;
	dst->sum_hi += hi + (dst->sum_lo < lo);
	/* The empty sentinels (min = UINT64_MAX, max = 0) merge as no-ops. */
	dst->min = min < dst->min ? min : dst->min;
	dst->max = max > dst->max ? max : dst->max;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double pct)
{
	uint64_t count = h->count;

	if (count == 0)
		return 0;
	/* Written as !(pct > 0) so that NaN also falls back to 0. */
	if (!(pct > 0.0))
		pct = 0.0;
	if (pct > 100.0)
		pct = 100.0;

	/*
	 * rank = ceil(pct / 100 * count), clamped to [1, count]. Done by hand to
	 * avoid a libm dependency; the clamp comes before the cast because
	 * (double)count may round up past UINT64_MAX.
	 */
	double r = pct / 100.0 * (double)count;
	uint64_t rank;

	if (r >= (double)count) {
		rank = count;
	} else {
		rank = (uint64_t)r;
		if ((double)rank < r)
			rank++;
		if (rank == 0)
			rank = 1;
	}

	/* The extreme ranks are known exactly, so never approximate them. */
	if (rank == 1)
		return h->min;
	if (rank == count)
		return h->max;

	/* No bucket below min's or above max's holds anything; skip them. */
	unsigned first = bench_hist_index(h->min);
	unsigned last = bench_hist_index(h->max);
	uint64_t seen = 0;
	unsigned i;

	for (i = first; i < last; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			break;
	}

	uint64_t low, span, mid;

	bench_hist_bucket_range(i, &low, &span);
	/* The midpoint halves the worst-case error compared with an edge. */
	mid = low + span / 2u;
	/* Clamping keeps answers inside the range of values actually seen. */
	if (mid < h->min)
		mid = h->min;
	if (mid > h->max)
		mid = h->max;
	return mid;
}

int bench_hist_next_bucket(const struct bench_hist *h, unsigned *i,
			   uint64_t *low, uint64_t *high, uint64_t *n)
{
	uint64_t span;

	for (; *i < BENCH_HIST_BUCKETS; (*i)++) {
		if (!h->counts[*i])
			continue;
		bench_hist_bucket_range(*i, low, &span);
		*high = *low + span;
		*n = h->counts[(*i)++];
		return 1;
	}
	return 0;
}

double bench_hist_sum(const struct bench_hist *h)
{
	/* 2^64 as a double; exact, since it is a power of two. */
	return (double)h->sum_hi * 18446744073709551616.0 + (double)h->sum_lo;
}

uint64_t bench_hist_count(const struct bench_hist *h)
{
	return h->count;
}

uint64_t bench_hist_max(const struct bench_hist *h)
{
	return h->max;
}

uint64_t bench_hist_min(const struct bench_hist *h)
{
	/* Hide the UINT64_MAX sentinel from callers. */
	return h->count ? h->min : 0;
}

double bench_hist_mean(const struct bench_hist *h)
{
	if (h->count == 0)
		return 0.0;
	return bench_hist_sum(h) / (double)h->count;
}
