/*
 * test_hist.c - Criterion tests for the bench latency histogram.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

/* Tolerance promised by the header: results within 1% of a recorded value. */
#define REL_TOL 0.01

/* Deterministic xorshift64* so failures reproduce; rand() is too narrow. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Random value with a random magnitude, so every exponent range is hit. */
static uint64_t rng_value(void)
{
	return rng_next() >> (rng_next() % 64u);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double rel_err(uint64_t got, uint64_t want)
{
	double d = got > want ? (double)(got - want) : (double)(want - got);

	return want ? d / (double)want : d;
}

/*
 * Percentile that maps to exactly rank k of n: ceil((k - 0.5) / n * n) == k,
 * with half a rank of margin against floating-point rounding.
 */
static double pct_for_rank(uint64_t k, uint64_t n)
{
	return 100.0 * ((double)k - 0.5) / (double)n;
}

/* Histograms are 58 KiB; keep them off the stack, sanitizers included. */
static struct bench_hist ha, hb, hc;

Test(hist, empty)
{
	bench_hist_init(&ha);
	cr_assert_eq(bench_hist_count(&ha), 0);
	cr_assert_eq(bench_hist_min(&ha), 0);
	cr_assert_eq(bench_hist_max(&ha), 0);
	cr_assert_eq(bench_hist_mean(&ha), 0.0);
	cr_assert_eq(bench_hist_percentile(&ha, 0.0), 0);
	cr_assert_eq(bench_hist_percentile(&ha, 50.0), 0);
	cr_assert_eq(bench_hist_percentile(&ha, 100.0), 0);
}

Test(hist, single_value)
{
	bench_hist_init(&ha);
	bench_hist_record(&ha, 123456789);
	cr_assert_eq(bench_hist_count(&ha), 1);
	cr_assert_eq(bench_hist_min(&ha), 123456789);
	cr_assert_eq(bench_hist_max(&ha), 123456789);
	cr_assert_eq(bench_hist_mean(&ha), 123456789.0);
	cr_assert_eq(bench_hist_percentile(&ha, 0.0), 123456789);
	cr_assert_eq(bench_hist_percentile(&ha, 50.0), 123456789);
	cr_assert_eq(bench_hist_percentile(&ha, 100.0), 123456789);
}

Test(hist, exact_small_values)
{
	const uint64_t n = 256;

	bench_hist_init(&ha);
	/* Record in reverse so ordering is not what makes it pass. */
	for (uint64_t v = n; v-- > 0;)
		bench_hist_record(&ha, v);

	cr_assert_eq(bench_hist_count(&ha), n);
	cr_assert_eq(bench_hist_min(&ha), 0);
	cr_assert_eq(bench_hist_max(&ha), n - 1);
	cr_assert_eq(bench_hist_mean(&ha), (double)(n - 1) / 2.0);
	for (uint64_t k = 1; k <= n; k++)
		cr_assert_eq(bench_hist_percentile(&ha, pct_for_rank(k, n)), k - 1,
			     "rank %llu", (unsigned long long)k);
}

Test(hist, exact_small_values_repeated)
{
	/* Many copies of a few small values: each must come back exactly. */
	bench_hist_init(&ha);
	for (int i = 0; i < 1000; i++) {
		bench_hist_record(&ha, 7);
		bench_hist_record(&ha, 200);
		bench_hist_record(&ha, 255);
	}
	cr_assert_eq(bench_hist_percentile(&ha, 10.0), 7);
	cr_assert_eq(bench_hist_percentile(&ha, 50.0), 200);
	cr_assert_eq(bench_hist_percentile(&ha, 90.0), 255);
}

Test(hist, uniform_percentiles)
{
	const uint64_t n = 1000000;
	static const double pcts[] = {
		0.0001, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100,
	};

	bench_hist_init(&ha);
	for (uint64_t v = 1; v <= n; v++)
		bench_hist_record(&ha, v);

	cr_assert_eq(bench_hist_count(&ha), n);
	cr_assert_eq(bench_hist_min(&ha), 1);
	cr_assert_eq(bench_hist_max(&ha), n);
	cr_assert_float_eq(bench_hist_mean(&ha), 500000.5, 1e-9);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		/* In a 1..n set the value of rank ceil(p/100*n) is the rank. */
		uint64_t want = (uint64_t)(pcts[i] / 100.0 * (double)n + 0.999999);
		uint64_t got = bench_hist_percentile(&ha, pcts[i]);

		cr_assert_leq(rel_err(got, want), REL_TOL,
			      "p%g: got %llu want %llu", pcts[i],
			      (unsigned long long)got, (unsigned long long)want);
	}
	cr_assert_eq(bench_hist_percentile(&ha, 0.0), 1);
	cr_assert_eq(bench_hist_percentile(&ha, 100.0), n);
}

Test(hist, pct_out_of_range_is_clamped)
{
	bench_hist_init(&ha);
	for (uint64_t v = 1000; v <= 2000; v++)
		bench_hist_record(&ha, v);
	cr_assert_eq(bench_hist_percentile(&ha, -5.0), 1000);
	cr_assert_eq(bench_hist_percentile(&ha, 0.0 / 0.0), 1000);
	cr_assert_eq(bench_hist_percentile(&ha, 150.0), 2000);
}

Test(hist, min_max_exact)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	bench_hist_init(&ha);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rng_value();

		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
		bench_hist_record(&ha, v);
	}
	cr_assert_eq(bench_hist_min(&ha), lo);
	cr_assert_eq(bench_hist_max(&ha), hi);
	cr_assert_eq(bench_hist_percentile(&ha, 0.0), lo);
	cr_assert_eq(bench_hist_percentile(&ha, 100.0), hi);
}

static void assert_hist_equal(const struct bench_hist *a,
			      const struct bench_hist *b)
{
	cr_assert_eq(memcmp(a->counts, b->counts, sizeof(a->counts)), 0);
	cr_assert_eq(bench_hist_count(a), bench_hist_count(b));
	cr_assert_eq(bench_hist_min(a), bench_hist_min(b));
	cr_assert_eq(bench_hist_max(a), bench_hist_max(b));
	cr_assert_eq(bench_hist_mean(a), bench_hist_mean(b));
	for (double p = 0.0; p <= 100.0; p += 0.5)
		cr_assert_eq(bench_hist_percentile(a, p),
			     bench_hist_percentile(b, p), "p%g", p);
}

Test(hist, merge_equals_recording_both)
{
	bench_hist_init(&ha);
	bench_hist_init(&hb);
	bench_hist_init(&hc);
	for (int i = 0; i < 50000; i++) {
		uint64_t v = rng_value();

		bench_hist_record(&ha, v);
		bench_hist_record(&hc, v);
	}
	/* A second, differently shaped set that overlaps the first. */
	for (int i = 0; i < 30000; i++) {
		uint64_t v = rng_next() % 5000000u;

		bench_hist_record(&hb, v);
		bench_hist_record(&hc, v);
	}
	bench_hist_merge(&ha, &hb);
	assert_hist_equal(&ha, &hc);
}

Test(hist, merge_with_empty)
{
	bench_hist_init(&ha);
	bench_hist_init(&hb);
	bench_hist_init(&hc);
	for (uint64_t v = 10; v < 10000; v += 7) {
		bench_hist_record(&ha, v);
		bench_hist_record(&hc, v);
	}
	/* Empty into non-empty leaves it unchanged. */
	bench_hist_merge(&ha, &hb);
	assert_hist_equal(&ha, &hc);
	/* Non-empty into empty yields a copy. */
	bench_hist_merge(&hb, &hc);
	assert_hist_equal(&hb, &hc);
	/* Empty into empty stays empty. */
	bench_hist_init(&ha);
	bench_hist_init(&hb);
	bench_hist_merge(&ha, &hb);
	cr_assert_eq(bench_hist_count(&ha), 0);
	cr_assert_eq(bench_hist_min(&ha), 0);
	cr_assert_eq(bench_hist_max(&ha), 0);
}

Test(hist, merge_into_self_doubles)
{
	bench_hist_init(&ha);
	bench_hist_init(&hc);
	for (uint64_t v = 1; v < 100000; v += 13) {
		bench_hist_record(&ha, v);
		bench_hist_record(&hc, v);
		bench_hist_record(&hc, v);
	}
	bench_hist_merge(&ha, &ha);
	assert_hist_equal(&ha, &hc);
}

Test(hist, merge_carries_huge_sum)
{
	/* Each sum fits in 64 bits but their total does not. */
	bench_hist_init(&ha);
	bench_hist_init(&hb);
	bench_hist_init(&hc);
	bench_hist_record(&ha, UINT64_MAX);
	bench_hist_record(&hb, UINT64_MAX);
	bench_hist_record(&hc, UINT64_MAX);
	bench_hist_record(&hc, UINT64_MAX);
	bench_hist_merge(&ha, &hb);
	assert_hist_equal(&ha, &hc);
	cr_assert_eq(bench_hist_mean(&ha), (double)UINT64_MAX);
}

Test(hist, huge_values)
{
	const uint64_t half = UINT64_MAX / 2;

	bench_hist_init(&ha);
	bench_hist_record(&ha, half);
	bench_hist_record(&ha, UINT64_MAX);
	bench_hist_record(&ha, UINT64_MAX);
	bench_hist_record(&ha, 1);
	cr_assert_eq(bench_hist_count(&ha), 4);
	cr_assert_eq(bench_hist_min(&ha), 1);
	cr_assert_eq(bench_hist_max(&ha), UINT64_MAX);
	cr_assert_eq(bench_hist_percentile(&ha, 100.0), UINT64_MAX);
	/* Rank 2 of 4 is UINT64_MAX / 2, from an interior bucket. */
	cr_assert_leq(rel_err(bench_hist_percentile(&ha, 50.0), half), REL_TOL);
	/* Rank 3 of 4 sits in the very last bucket, whose end is UINT64_MAX. */
	cr_assert_leq(rel_err(bench_hist_percentile(&ha, 70.0), UINT64_MAX),
		      REL_TOL);
	/* The sum overflows 64 bits; the mean must not wrap. */
	double want = ((double)half + 2.0 * (double)UINT64_MAX + 1.0) / 4.0;
	cr_assert_float_eq(bench_hist_mean(&ha), want, want * 1e-12);

	bench_hist_init(&hb);
	bench_hist_record(&hb, half);
	cr_assert_eq(bench_hist_max(&hb), half);
	cr_assert_eq(bench_hist_percentile(&hb, 100.0), half);
}

Test(hist, power_of_two_edges)
{
	/* Values straddling each range boundary, where the layout switches. */
	for (unsigned e = 8; e < 64; e++) {
		uint64_t edge = (uint64_t)1 << e;
		uint64_t vals[] = { edge - 1, edge, edge + 1 };

		bench_hist_init(&ha);
		for (int i = 0; i < 3; i++)
			bench_hist_record(&ha, vals[i]);
		/* Rank 2 is the only interior rank; it must land near edge. */
		cr_assert_leq(rel_err(bench_hist_percentile(&ha, 50.0), edge),
			      REL_TOL, "edge 2^%u", e);
		cr_assert_eq(bench_hist_percentile(&ha, 0.0), edge - 1);
		cr_assert_eq(bench_hist_percentile(&ha, 100.0), edge + 1);
	}
}

Test(hist, relative_error_bound_random)
{
	enum { N = 200000 };
	uint64_t *vals = malloc(N * sizeof(*vals));

	cr_assert_not_null(vals);
	bench_hist_init(&ha);
	for (size_t i = 0; i < N; i++) {
		vals[i] = rng_value();
		bench_hist_record(&ha, vals[i]);
	}
	qsort(vals, N, sizeof(*vals), cmp_u64);

	/*
	 * Every rank's answer must be within 1% of the value recorded at that
	 * rank, which is a value in the reported bucket; the rank is that of
	 * each recorded value, so every recorded value is checked.
	 */
	double worst = 0.0;

	for (uint64_t k = 1; k <= N; k++) {
		uint64_t got = bench_hist_percentile(&ha, pct_for_rank(k, N));
		double err = rel_err(got, vals[k - 1]);

		worst = err > worst ? err : worst;
		cr_assert_leq(err, REL_TOL, "rank %llu: got %llu want %llu",
			      (unsigned long long)k, (unsigned long long)got,
			      (unsigned long long)vals[k - 1]);
	}
	/* The midpoint representative should do far better than 1%. */
	cr_assert_leq(worst, 1.0 / 256.0 + 1e-12, "worst %g", worst);
	free(vals);
}

/* The bucket walk (what ferry-bench --json writes) covers every recorded
 * value once: each value lies in a bucket walked, buckets come in order
 * without overlap, and their counts add up to the histogram's count. */
Test(hist, bucket_walk)
{
	static uint64_t vals[4000];
	uint64_t low, high, n, total = 0, prev_high = 0;
	unsigned i = 0, nb = 0;
	size_t v = 0;

	bench_hist_init(&ha);
	cr_assert_eq(bench_hist_next_bucket(&ha, &i, &low, &high, &n), 0);
	for (size_t k = 0; k < 4000; k++) {
		vals[k] = k % 3 ? rng_value() : k;
		bench_hist_record(&ha, vals[k]);
	}
	qsort(vals, 4000, sizeof(vals[0]), cmp_u64);
	i = 0;
	while (bench_hist_next_bucket(&ha, &i, &low, &high, &n)) {
		cr_assert(low <= high);
		cr_assert(nb == 0 || low > prev_high, "buckets overlap");
		cr_assert(n > 0);
		/* The sorted values in [low, high] are exactly n of them. */
		for (uint64_t k = 0; k < n; k++, v++) {
			cr_assert(v < 4000);
			cr_assert(vals[v] >= low && vals[v] <= high,
				  "value %llu outside [%llu, %llu]",
				  (unsigned long long)vals[v],
				  (unsigned long long)low,
				  (unsigned long long)high);
		}
		prev_high = high;
		total += n;
		nb++;
	}
	cr_assert_eq(total, bench_hist_count(&ha));
	cr_assert_eq(v, 4000);
	cr_assert(nb > 100, "only %u buckets", nb);
	cr_assert_eq(bench_hist_next_bucket(&ha, &i, &low, &high, &n), 0);
}
