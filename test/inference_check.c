/*-------------------------------------------------------------------------
 *
 * inference_check.c
 *	  Unit test of src/inference.c outside the server: identities and
 *	  second methods over whole grids, where sql/inference.sql checks
 *	  chosen cases.  Built and run by "make check-inference" (part of
 *	  "make test"); prints one line per group and exits non-zero on any
 *	  failure.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "inference.h"

static int	failures = 0;
static int	checks = 0;

#define CHECK(cond, ...) \
	do { \
		checks++; \
		if (!(cond)) \
		{ \
			failures++; \
			if (failures <= 2000) \
			{ \
				fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
				fprintf(stderr, __VA_ARGS__); \
				fputc('\n', stderr); \
			} \
		} \
	} while (0)

static double
relerr(double x, double ref)
{
	if (x == ref)
		return 0;
	return fabs(x - ref) / fmax(fabs(ref), 1e-300);
}

static void
report(const char *group, int before)
{
	printf("  %-34s %6d checks\n", group, checks - before);
}

/* Published quantiles; the round trip through the CDF over 300 decades */
static void
check_normal(void)
{
	int			before = checks;

	CHECK(relerr(normal_quantile(0.975), 1.9599639845400536) < 1e-15, "%.17g", normal_quantile(0.975));
	CHECK(relerr(normal_quantile(0.995), 2.5758293035489) < 1e-15, "%.17g", normal_quantile(0.995));
	CHECK(relerr(normal_quantile(1e-10), -6.361340902404056) < 1e-15, "%.17g", normal_quantile(1e-10));
	CHECK(normal_quantile(0.5) == 0, "%g", normal_quantile(0.5));
	for (double p = 1e-300; p < 0.5; p *= 1.7)
	{
		double		z = normal_quantile(p);

		/* Phi's relative slope is |z|, and z itself is rounded: (1 + z^2) ulps */
		CHECK(relerr(normal_cdf(z), p) < 1e-15 * (1 + z * z), "p %g: Phi(%.17g) = %.17g", p, z,
			  normal_cdf(z));
	}
	report("normal quantile", before);
}

/*
 * The incomplete beta function against closed forms and the binomial
 * identity P(X <= k) = I_{1/2}(n - k, k + 1), which checks the continued
 * fraction against the term sum of the exact McNemar test.
 */
static void
check_beta(void)
{
	int			before = checks;

	for (double x = 0.01; x < 1; x += 0.01)
	{
		CHECK(relerr(beta_regularized(1, 1, x), x) < 1e-14, "x %g", x);
		CHECK(relerr(beta_regularized(3.5, 1, x), pow(x, 3.5)) < 1e-13, "x %g", x);
		CHECK(relerr(beta_regularized(1, 2.5, x), 1 - pow(1 - x, 2.5)) < 1e-13, "x %g", x);
		CHECK(fabs(beta_regularized(7, 3, x) + beta_regularized(3, 7, 1 - x) - 1) < 1e-14, "x %g", x);
	}
	for (int n = 1; n <= 400; n += (n < 60 ? 1 : 17))
	{
		for (int k = 0; 2 * k < n; k++)
		{
			double		tail = beta_regularized(n - k, k + 1, 0.5);

			CHECK(relerr(mcnemar_exact_p(k, n - k), fmin(1, 2 * tail)) < 1e-11,
				  "n %d k %d: %.17g vs %.17g", n, k, mcnemar_exact_p(k, n - k), 2 * tail);
		}
	}
	report("incomplete beta, binomial identity", before);
}

/* The exact test against the sum of exact terms, C(n, i) exact for n <= 50 */
static void
check_mcnemar(void)
{
	int			before = checks;

	for (int n = 0; n <= 50; n++)
	{
		double		choose = 1;
		double		cum = 0;

		for (int k = 0; 2 * k <= n; k++)
		{
			double		p;

			cum += choose;
			p = fmin(1, 2 * cum / ldexp(1, n));
			if (2 * k == n)
				p = 1;
			CHECK(relerr(mcnemar_exact_p(k, n - k), p) < 1e-13, "b %d c %d", k, n - k);
			CHECK(mcnemar_exact_p(n - k, k) == mcnemar_exact_p(k, n - k), "b %d c %d", n - k, k);
			CHECK(mcnemar_p(k, n - k) == (n < MCNEMAR_EXACT_BELOW ? mcnemar_exact_p(k, n - k)
										  : chisq1_sf(mcnemar_chisq(k, n - k, true))), "n %d", n);
			choose = choose * (n - k) / (k + 1);
		}
	}
	/* many pairs: decreasing in the imbalance, and near the normal tail */
	for (int64_t b = 0; b < 5000; b += 50)
	{
		double		p = mcnemar_exact_p(b, 10000 - b);
		double		z = (10000 - 2.0 * b - 1) / 100;	/* corrected */

		CHECK(p >= 0 && p <= 1, "b %lld", (long long) b);
		CHECK(p <= mcnemar_exact_p(b + 50, 10000 - b - 50), "b %lld", (long long) b);
		if (p > 1e-6)
			CHECK(relerr(p, erfc(z / M_SQRT2)) < 0.05, "b %lld: %g vs %g",
				  (long long) b, p, erfc(z / M_SQRT2));
		if (p > 1e-300)
			CHECK(relerr(p, 2 * beta_regularized(10000 - b, b + 1, 0.5)) < 1e-10, "b %lld: %g vs %g",
				  (long long) b, p, 2 * beta_regularized(10000 - b, b + 1, 0.5));
	}
	CHECK(mcnemar_chisq(0, 0, true) == 0 && chisq1_sf(0) == 1, "no pairs");
	CHECK(mcnemar_chisq(5, 5, true) == 0 && mcnemar_chisq(5, 6, true) == 0, "corrected at a tie");
	CHECK(mcnemar_chisq(5, 8, true) == 4 / 13.0 && mcnemar_chisq(5, 8, false) == 9 / 13.0, "5, 8");
	report("McNemar", before);
}

/*
 * P(T > t) for even df from Abramowitz & Stegun 26.7.3's finite sum,
 * evaluated in 120-digit decimal arithmetic (Python's decimal module)
 */
static const double t_sf_table[][3] = {
		{0.5, 2.0, 3.33333333333333315e-01},
		{2.0, 2.0, 9.17517095361369828e-02},
		{5.0, 2.0, 1.88747756753118619e-02},
		{9.0, 2.0, 6.06083004639343392e-03},
		{0.5, 10.0, 3.13946802871486463e-01},
		{2.0, 10.0, 3.66940173853701826e-02},
		{5.0, 10.0, 2.68666801378226289e-04},
		{9.0, 10.0, 2.06902452484100592e-06},
		{0.5, 30.0, 3.10361502442563664e-01},
		{2.0, 30.0, 2.73125224814915503e-02},
		{5.0, 30.0, 1.16483427335038980e-05},
		{9.0, 30.0, 2.50741595807393911e-10},
		{0.5, 100.0, 3.09086782915443281e-01},
		{2.0, 100.0, 2.41060893655668414e-02},
		{5.0, 100.0, 1.22508670675190012e-06},
		{9.0, 100.0, 7.68038525737520754e-15},
		{0.5, 200.0, 3.08812376158230317e-01},
		{2.0, 200.0, 2.34265930935354874e-02},
		{5.0, 200.0, 6.25099063885769718e-07},
		{9.0, 200.0, 8.85469146163239451e-17},
		{0.5, 500.0, 3.08647525047332838e-01},
		{2.0, 500.0, 2.30203413845157211e-02},
		{5.0, 500.0, 3.97320752395477925e-07},
		{9.0, 500.0, 2.35686925260972534e-18},
		{0.5, 998.0, 3.08592650623651932e-01},
		{2.0, 998.0, 2.28854439982812061e-02},
		{5.0, 998.0, 3.38473489402685276e-07},
		{9.0, 998.0, 5.58145910721338546e-19},
		{0.5, 1000.0, 3.08592540416937400e-01},
		{2.0, 1000.0, 2.28851732466258187e-02},
		{5.0, 1000.0, 3.38362818232431530e-07},
		{9.0, 1000.0, 5.56453858593574967e-19},
		{0.5, 5000.0, 3.08548540427016904e-01},
		{2.0, 5000.0, 2.27771299941469871e-02},
		{5.0, 5000.0, 2.96447372956065973e-07},
		{9.0, 5000.0, 1.57382159863246387e-19},
		{0.5, 100000.0, 3.08538088827209012e-01},
		{2.0, 100000.0, 2.27514817287532319e-02},
		{5.0, 100000.0, 2.87135083932083651e-07},
		{9.0, 100000.0, 1.14770450251157850e-19},
};

/*
 * Student's t: the table above, closed forms for 1 and 2 degrees of
 * freedom, the quantile round trip, monotone and continuous where the
 * method changes.
 */
static void
check_t(void)
{
	static const double dfs[] = {1, 2, 3, 4, 5, 9, 10, 29, 30, 99, 100, 199.5, 200, 201,
	999, 1000, 3000, 1e4, 1e5, 1e6, 1e9, 1e12, 1e15};
	int			before = checks;

	for (size_t i = 0; i < sizeof(t_sf_table) / sizeof(t_sf_table[0]); i++)
	{
		double		t = t_sf_table[i][0];
		double		df = t_sf_table[i][1];

		CHECK(relerr(student_t_sf(t, df), t_sf_table[i][2]) < 5e-14, "t %g df %g: %.17g vs %.17g",
			  t, df, student_t_sf(t, df), t_sf_table[i][2]);
	}

	for (double t = -50; t <= 50; t += 0.37)
	{
		double		s = sqrt(2 + t * t);

		/* the lower tails without cancellation: atan(1/|t|)/pi, 1/(s (s + |t|)) */
		CHECK(relerr(student_t_cdf(t, 1), t < 0 ? atan(-1 / t) / M_PI : 0.5 + atan(t) / M_PI) < 1e-13,
			  "t %g", t);
		CHECK(relerr(student_t_cdf(t, 2), t < 0 ? 1 / (s * (s - t)) : 0.5 + t / (2 * s)) < 1e-13,
			  "t %g", t);
	}
	CHECK(relerr(student_t_quantile(0.975, 1), 12.706204736174707) < 1e-14, "%.17g",
		  student_t_quantile(0.975, 1));
	CHECK(relerr(student_t_quantile(0.975, 1e300), 1.9599639845400536) < 1e-15, "inf");
	for (size_t i = 0; i < sizeof(dfs) / sizeof(dfs[0]); i++)
	{
		double		df = dfs[i];
		double		prev = 1;

		for (double q = 0.4999; q > 1e-200; q *= 0.31)
		{
			double		t = student_t_quantile(q, df);
			double		upper = 1 - q;	/* rounded; 1 - upper is exact */

			CHECK(relerr(student_t_cdf(t, df), q) < 1e-12, "df %g q %g: t %.17g cdf %.17g",
				  df, q, t, student_t_cdf(t, df));
			CHECK(student_t_quantile(upper, df) == -student_t_quantile(1 - upper, df),
				  "df %g q %g", df, q);
		}
		for (double t = 0; t < 40; t += 0.05)
		{
			double		sf = student_t_sf(t, df);

			CHECK(sf <= prev && sf >= 0, "df %g t %g: %.17g after %.17g", df, t, sf, prev);
			CHECK(fabs(student_t_cdf(-t, df) - sf) == 0, "df %g t %g", df, t);
			prev = sf;
		}
		if (df >= 200)
		{
			/*
			 * The switch to Hill's expansion at t^2 = 0.03 df is seamless:
			 * across it sf changes as its slope on the near side says.
			 */
			double		edge = sqrt(0.03 * df);
			double		below = student_t_sf(edge * (1 - 1e-15), df);
			double		above = student_t_sf(edge * (1 + 1e-15), df);
			double		slope = (student_t_sf(edge * (1 - 1e-7), df) -
								 student_t_sf(edge * (1 - 2e-7), df)) / 1e-7;

			/* to within what rounding t alone does to sf: t^2 ulps */
			CHECK(relerr(above, below + slope * 2e-15) < 1e-15 * (1 + edge * edge),
				  "df %g: %.17g %.17g", df, below, above);
		}
	}
	/* more degrees of freedom: thinner tails, towards the normal */
	for (double t = 0.5; t < 8; t += 0.5)
		for (size_t i = 1; i < sizeof(dfs) / sizeof(dfs[0]); i++)
			CHECK(student_t_sf(t, dfs[i]) <= student_t_sf(t, dfs[i - 1]) * (1 + 1e-13)
				  && student_t_sf(t, dfs[i]) >= normal_cdf(-t) * (1 - 1e-13),
				  "t %g df %g", t, dfs[i]);
	report("Student t", before);
}

/* Wilson limits solve |k/n - p| = z sqrt(p (1 - p) / n) */
static void
check_wilson(void)
{
	static const double confs[] = {0.5, 0.8, 0.9, 0.95, 0.99, 0.999999};
	static const int64_t ns[] = {1, 2, 3, 7, 10, 29, 100, 1000, 123457, 1000000000000000LL};
	int			before = checks;
	double		low,
				high;

	CHECK(!wilson_interval(0, 0, 0.95, &low, &high), "n = 0");
	for (size_t c = 0; c < sizeof(confs) / sizeof(confs[0]); c++)
	{
		double		z = -normal_quantile((1 - confs[c]) / 2);

		for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		{
			int64_t		n = ns[i];
			int64_t		step = n > 40 ? n / 37 : 1;

			for (int64_t k = 0; k <= n; k += (k + step > n && k != n) ? n - k : step)
			{
				double		p = (double) k / n;
				double		l2,
							h2;

				CHECK(wilson_interval(k, n, confs[c], &low, &high), "k %lld", (long long) k);
				CHECK(0 <= low && low <= p && p <= high && high <= 1, "k %lld n %lld", (long long) k,
					  (long long) n);
				CHECK(k > 0 || low == 0, "k 0");
				CHECK(k < n || high == 1, "k n");
				/* up to the rounding of p - low itself */
				if (k > 0)
					CHECK(fabs((p - low) - z * sqrt(low * (1 - low) / n)) <= 1e-12 * (p - low) + 1e-15 * p,
						  "low k %lld n %lld", (long long) k, (long long) n);
				if (k < n)
					CHECK(fabs((high - p) - z * sqrt(high * (1 - high) / n)) <= 1e-12 * (high - p) + 1e-15 * high,
						  "high k %lld n %lld", (long long) k, (long long) n);
				wilson_interval(n - k, n, confs[c], &l2, &h2);
				CHECK(fabs(low - (1 - h2)) <= 2e-16 && fabs(high - (1 - l2)) <= 2e-16,
					  "mirror k %lld n %lld", (long long) k, (long long) n);
				if (k == n)
					break;
			}
		}
	}
	report("Wilson", before);
}

/* Newcombe's interval over every table of up to 14 units */
static void
check_newcombe(void)
{
	int			before = checks;
	double		diff,
				low,
				high,
				d2,
				l2,
				h2;

	CHECK(!newcombe_paired_interval(0, 0, 0, 0, 0.95, &diff, &low, &high), "n = 0");
	for (int a = 0; a <= 14; a++)
		for (int b = 0; a + b <= 14; b++)
			for (int c = 0; a + b + c <= 14; c++)
				for (int d = 0; a + b + c + d <= 14; d++)
				{
					if (a + b + c + d == 0)
						continue;
					CHECK(newcombe_paired_interval(a, b, c, d, 0.95, &diff, &low, &high), "table");
					CHECK(-1 <= low && low <= diff && diff <= high && high <= 1,
						  "%d %d %d %d: %g %g %g", a, b, c, d, diff, low, high);
					newcombe_paired_interval(a, c, b, d, 0.95, &d2, &l2, &h2);
					CHECK(d2 == -diff && fabs(l2 + high) < 1e-15 && fabs(h2 + low) < 1e-15,
						  "mirror %d %d %d %d", a, b, c, d);
				}
	/* Newcombe (1998) examples (a) and (b), phi corrected in (b): 0.0562 */
	newcombe_paired_interval(36, 12, 2, 0, 0.95, &diff, &low, &high);
	CHECK(fabs(low - 0.0569) < 5e-5 && fabs(high - 0.3404) < 5e-5, "%g %g", low, high);
	newcombe_paired_interval(20, 12, 2, 16, 0.95, &diff, &low, &high);
	CHECK(fabs(low - 0.0562) < 5e-5 && fabs(high - 0.3292) < 5e-5, "%g %g", low, high);
	report("Newcombe method 10", before);
}

/* The t interval excludes 0 exactly when the paired t test's p < alpha */
static void
check_paired_t(void)
{
	int			before = checks;
	unsigned int seed = 12345;

	for (int i = 0; i < 20000; i++)
	{
		int64_t		n = 2 + rand_r(&seed) % 200;
		double		mean = (rand_r(&seed) / (double) RAND_MAX - 0.5) * 0.4;
		double		sd = rand_r(&seed) / (double) RAND_MAX * 0.5;
		double		conf = (i % 3 == 0) ? 0.95 : (i % 3 == 1) ? 0.99 : 0.9;
		double		low,
					high,
					p;

		CHECK(paired_t_test(n, mean, sd, conf, &low, &high, &p), "n %lld", (long long) n);
		CHECK(0 <= p && p <= 1 && low <= mean && mean <= high, "n %lld", (long long) n);
		/* away from the boundary itself, where rounding decides */
		if (fabs(p - (1 - conf)) > 1e-9)
			CHECK((low > 0 || high < 0) == (p < 1 - conf),
				  "n %lld mean %g sd %g conf %g: [%g, %g] p %g", (long long) n, mean, sd, conf,
				  low, high, p);
	}
	CHECK(!t_mean_interval(1, 0.5, 0, 0.95, &(double) {0}, &(double) {0}), "n = 1");
	{
		double		low,
					high,
					p;

		CHECK(paired_t_test(9, 0, 0, 0.95, &low, &high, &p) && p == 1 && low == 0 && high == 0, "all 0");
		CHECK(paired_t_test(9, -0.1, 0, 0.95, &low, &high, &p) && p == 0 && low == -0.1, "all -0.1");
	}
	report("paired t, interval-test duality", before);
}

/* Holm against its definition, computed the slow way */
static void
check_holm(void)
{
	int			before = checks;
	unsigned int seed = 777;

	for (int round = 0; round < 2000; round++)
	{
		int			m = 1 + rand_r(&seed) % 12;
		double		p[12];
		double		adjusted[12];
		HolmItem	items[12];

		for (int i = 0; i < m; i++)
		{
			/* coarse values, so that ties happen */
			p[i] = (rand_r(&seed) % 41) / 40.0 * ((rand_r(&seed) % 2) ? 1 : 0.1);
			items[i].p = p[i];
			items[i].index = i;
		}
		holm_adjust(items, m, adjusted);
		for (int i = 0; i < m; i++)
		{
			/* adjusted p_i = max over p_j <= p_i of min(1, (number of p >= p_j) p_j) */
			double		expect = 0;

			for (int j = 0; j < m; j++)
			{
				int			rank_from_top = 0;

				if (p[j] > p[i])
					continue;
				for (int k = 0; k < m; k++)
					rank_from_top += p[k] >= p[j];
				expect = fmax(expect, fmin(1, rank_from_top * p[j]));
			}
			CHECK(adjusted[i] == expect, "m %d i %d: %g vs %g", m, i, adjusted[i], expect);
			CHECK(adjusted[i] >= p[i] && adjusted[i] <= 1, "bounds");
		}
	}
	report("Holm", before);
}

int
main(void)
{
	check_normal();
	check_beta();
	check_mcnemar();
	check_t();
	check_wilson();
	check_newcombe();
	check_paired_t();
	check_holm();
	printf("inference_check: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
