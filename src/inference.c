/*-------------------------------------------------------------------------
 *
 * inference.c
 *	  Distributions, tests and intervals for comparing ads on the same
 *	  personas.
 *
 * Everything is in double precision and aims at full precision, not at a
 * table's four digits: the normal quantile is Acklam's rational
 * approximation polished by one Halley step on erfc; the Student t
 * distribution is the regularized incomplete beta function, evaluated by
 * its continued fraction (Abramowitz & Stegun 26.5.8) with the modified
 * Lentz method, and a log-beta that keeps its precision for large
 * arguments; binomial probabilities use Loader's saddle-point form, so
 * that many discordant pairs lose nothing to cancellation.
 *
 * The statistics follow their references: Wilson (1927); Newcombe (1998),
 * Statistics in Medicine 17:2635-2650, method 10; McNemar (1947) with
 * Edwards' (1948) continuity correction; Holm (1979).  README "Comparing
 * ads" says which is used when.
 *
 *-------------------------------------------------------------------------
 */
#include "inference.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#define LN_SQRT_2PI		0.918938533204672741780329736406	/* log(sqrt(2 pi)) */
#define SQRT_2PI		2.50662827463100050241576528481
#define LN_2			0.693147180559945309417232121458

/* the continued fraction: relative change that ends it, and a cap */
#define CF_EPSILON		(4 * DBL_EPSILON)
#define CF_MAX_TERMS	1000000
#define CF_TINY			1e-300

/* ----------------------------------------------------------------------
 * Log-gamma helpers
 * ----------------------------------------------------------------------
 */

/*
 * The remainder of Stirling's formula, lgamma(x) - ((x - 1/2) log x - x +
 * log sqrt(2 pi)): a short series for large x, where computing it from
 * lgamma would cancel.
 */
static double
stirling_remainder(double x)
{
	double		x2;

	if (x < 15.0)
		return lgamma(x) - ((x - 0.5) * log(x) - x + LN_SQRT_2PI);
	x2 = x * x;
	return (1.0 / 12 - (1.0 / 360 - (1.0 / 1260 - (1.0 / 1680 - (1.0 / 1188) / x2) / x2) / x2) / x2) / x;
}

/*
 * log B(a, b), also for large arguments: lgamma(a) + lgamma(b) -
 * lgamma(a + b) loses about log10(a) digits when a is large, so the
 * large parts are taken from Stirling's formula, where they cancel
 * analytically.
 */
static double
log_beta(double a, double b)
{
	double		big = fmax(a, b);
	double		small = fmin(a, b);

	if (small >= 15.0)
		return LN_SQRT_2PI - 0.5 * log(small)
			- (big - 0.5) * log1p(small / big)
			+ small * log(small / (big + small))
			+ stirling_remainder(big) + stirling_remainder(small)
			- stirling_remainder(big + small);
	if (big >= 15.0)
		return lgamma(small) + small - small * log(big + small)
			- (big - 0.5) * log1p(small / big)
			+ stirling_remainder(big) - stirling_remainder(big + small);
	return lgamma(a) + lgamma(b) - lgamma(a + b);
}

/*
 * x log(x / m) + m - x, the deviance part of a binomial term (Loader 2000),
 * by its series when x is near m, where the direct form cancels.
 */
static double
binomial_deviance(double x, double m)
{
	double		v;
	double		s;
	double		term;

	if (fabs(x - m) >= 0.1 * (x + m))
		return x * log(x / m) + m - x;
	v = (x - m) / (x + m);
	s = (x - m) * v;
	term = 2 * x * v;
	for (int j = 1; j < 1000; j++)
	{
		double		next;

		term *= v * v;
		next = s + term / (2 * j + 1);
		if (next == s)
			break;
		s = next;
	}
	return s;
}

/*
 * P(X = k) for X ~ Bin(n, 1/2), 0 <= k <= n, in Loader's form:
 * exp(s(n) - s(k) - s(n-k) - D(k, n/2) - D(n-k, n/2)) sqrt(n / (2 pi k (n-k)))
 * with s the Stirling remainder and D the deviance, none of them large.
 */
static double
binomial_half_pmf(double k, double n)
{
	double		m = n / 2;

	if (k == 0 || k == n)
		return n <= 1074 ? ldexp(1.0, -(int) n) : 0;
	return exp(stirling_remainder(n) - stirling_remainder(k) - stirling_remainder(n - k)
			   - binomial_deviance(k, m) - binomial_deviance(n - k, m))
		* sqrt(n / (k * (n - k))) / SQRT_2PI;
}

/* ----------------------------------------------------------------------
 * The normal distribution
 * ----------------------------------------------------------------------
 */

double
normal_cdf(double z)
{
	return 0.5 * erfc(-z / M_SQRT2);
}

/*
 * The standard normal quantile.  Acklam's approximation (relative error
 * below 1.2e-9) for the lower half, then one Halley step on erf or erfc,
 * which brings it to their precision; the upper half by symmetry (1 - p
 * is exact there).
 */
double
normal_quantile(double p)
{
	static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
		-2.759285104469687e+02, 1.383577518672690e+02,
	-3.066479806614716e+01, 2.506628277459239e+00};
	static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
		-1.556989798598866e+02, 6.680131188771972e+01,
	-1.328068155288572e+01};
	static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
		-2.400758277161838e+00, -2.549732539343734e+00,
	4.374664141464968e+00, 2.938163982698783e+00};
	static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
	2.445134137142996e+00, 3.754408661907416e+00};
	double		x;
	double		e;

	if (isnan(p) || p < 0 || p > 1)
		return NAN;
	if (p == 0)
		return -INFINITY;
	if (p == 1)
		return INFINITY;
	if (p > 0.5)
		return -normal_quantile(1 - p);

	if (p < 0.02425)
	{
		double		q = sqrt(-2 * log(p));

		x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
			((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
		e = normal_cdf(x) - p;
	}
	else
	{
		double		q = p - 0.5;
		double		r = q * q;

		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
			(((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
		/* Phi(x) - p as erf(x/sqrt 2)/2 - (p - 1/2): precise also near 0 */
		e = erf(x / M_SQRT2) / 2 - q;
	}

	/* exp(x^2 / 2) overflows below p = 1e-309; Acklam's alone is fine there */
	if (x * x / 2 < 700)
	{
		double		u = e * SQRT_2PI * exp(x * x / 2);

		x = x - u / (1 + x * u / 2);
	}
	return x;
}

/* ----------------------------------------------------------------------
 * The incomplete beta function and Student's t
 * ----------------------------------------------------------------------
 */

/*
 * I_x(a, b) = x^a y^b / (a B(a, b)) / (1 + d1 / (1 + d2 / (1 + ...))),
 * with y = 1 - x given separately (the caller often knows it more
 * precisely than 1 - x).  Converges quickly for x < (a + 1) / (a + b + 2).
 */
static double
beta_continued_fraction(double a, double b, double x, double y)
{
	double		f = 1.0;
	double		cc = 1.0;
	double		dd = 0.0;
	double		log_front;

	for (int j = 1; j <= CF_MAX_TERMS; j++)
	{
		int			m = j / 2;
		double		coef;
		double		delta;

		if (j % 2 == 0)
			coef = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
		else
			coef = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
		dd = 1 + coef * dd;
		if (fabs(dd) < CF_TINY)
			dd = CF_TINY;
		cc = 1 + coef / cc;
		if (fabs(cc) < CF_TINY)
			cc = CF_TINY;
		dd = 1 / dd;
		delta = cc * dd;
		f *= delta;
		if (fabs(delta - 1) < CF_EPSILON)
			break;
	}

	/* log x is taken as log1p(-y) when x is the one near 1 */
	log_front = a * (x > 0.5 ? log1p(-y) : log(x))
		+ b * (y > 0.5 ? log1p(-x) : log(y))
		- log_beta(a, b) - log(a);
	return exp(log_front) / f;
}

/* I_x(a, b) with y = 1 - x, choosing the side where the fraction converges */
static double
beta_regularized2(double a, double b, double x, double y)
{
	if (x <= 0)
		return 0;
	if (y <= 0)
		return 1;
	if (x < (a + 1) / (a + b + 2))
		return beta_continued_fraction(a, b, x, y);
	return 1 - beta_continued_fraction(b, a, y, x);
}

/* The regularized incomplete beta function I_x(a, b), a, b > 0 */
double
beta_regularized(double a, double b, double x)
{
	if (isnan(a) || isnan(b) || isnan(x) || a <= 0 || b <= 0)
		return NAN;
	return beta_regularized2(a, b, x, 1 - x);
}

/*
 * P(T > |t|) for many degrees of freedom, by Hill's (1970, ACM Algorithm
 * 395) asymptotic transformation of t to a normal deviate.  There the
 * incomplete beta function's argument is within t^2/df of 1 and its
 * continued fraction loses digits in proportion to df/t^2, while this
 * expansion is good to a few units in the last place.
 */
static double
student_t_sf_hill(double t, double df)
{
	double		a = df - 0.5;
	double		b = 48 * a * a;
	double		y = a * log1p(t * t / df);
	double		z;

	z = (((((-0.4 * y - 3.3) * y - 24) * y - 85.5) / (0.8 * y * y + 100 + b) + y + 3) / b + 1)
		* sqrt(y);
	return normal_cdf(-z);
}

/*
 * P(T > t) for Student's t with df > 0 degrees of freedom:
 * I_{df/(df+t^2)}(df/2, 1/2) / 2 for t > 0, or Hill's expansion where it
 * is the more precise (df >= 200 and t^2 < 0.03 df, as measured against
 * a 100-digit evaluation of the exact finite sum).  df = inf is the normal.
 */
double
student_t_sf(double t, double df)
{
	double		t2;
	double		x;
	double		y;
	double		tail;

	if (isnan(t) || isnan(df) || df <= 0)
		return NAN;
	if (isinf(df))
		return normal_cdf(-t);
	if (isinf(t))
		return t > 0 ? 0 : 1;
	t2 = t * t;
	if (df >= 200 && t2 < 0.03 * df)
		tail = student_t_sf_hill(fabs(t), df);
	else if (t2 > 1e300 * df)
	{
		/*
		 * x = df/t^2 would lose digits or vanish below DBL_MIN, and I_x is
		 * x^a / (a B(a, 1/2)) to well below the last place there
		 */
		double		a = df / 2;

		tail = exp(a * (log(df) - 2 * log(fabs(t))) - log_beta(a, 0.5) - log(a)) / 2;
	}
	else
	{
		x = df / (df + t2);
		y = t2 / (df + t2);
		tail = beta_regularized2(df / 2, 0.5, x, y) / 2;
	}
	return t > 0 ? tail : 1 - tail;
}

double
student_t_cdf(double t, double df)
{
	return student_t_sf(-t, df);
}

/* the density of Student's t */
static double
student_t_pdf(double t, double df)
{
	double		r = t * t / df;
	double		log1p_r = isinf(r) ? 2 * log(fabs(t)) - log(df) : log1p(r);

	return exp(-log_beta(df / 2, 0.5) - 0.5 * log(df) - (df + 1) / 2 * log1p_r);
}

/*
 * The t with P(T > t) = q, for 0 < q < 1/2: Newton's method on
 * log P(T > t), which is nearly linear in the tails, from the
 * Cornish-Fisher expansion, kept inside a bracket that bisection narrows
 * whenever a step would leave it.
 */
static double
student_t_upper_quantile(double q, double df)
{
	double		z = -normal_quantile(q);
	double		lo = 0;
	double		hi;
	double		t;

	if (df == 1)
		return 1 / tan(M_PI * q);
	if (df == 2)
		return (1 - 2 * q) / sqrt(2 * q * (1 - q));

	t = z + (z * z * z + z) / (4 * df)
		+ (5 * pow(z, 5) + 16 * pow(z, 3) + 3 * z) / (96 * df * df);
	if (!(t > 0) || isinf(t))
		t = fmax(z, 1);
	hi = fmax(2 * t, 1);
	for (int i = 0; i < 2100 && student_t_sf(hi, df) >= q; i++)
	{
		lo = hi;
		hi *= 2;
	}
	if (!(t > lo && t < hi))
		t = lo > 0 ? sqrt(lo * hi) : hi / 2;

	for (int i = 0; i < 200; i++)
	{
		double		sf = student_t_sf(t, df);
		double		next;

		if (sf == q)
			return t;
		if (sf > q)
			lo = t;
		else
			hi = t;
		next = t + (log(sf) - log(q)) * sf / student_t_pdf(t, df);
		if (!(next > lo && next < hi))
			next = (lo > 0 && hi > 4 * lo) ? sqrt(lo * hi) : (lo + hi) / 2;
		if (fabs(next - t) <= 2 * DBL_EPSILON * t)
			return next;
		t = next;
	}
	return t;
}

/* The p quantile of Student's t with df > 0 degrees of freedom */
double
student_t_quantile(double p, double df)
{
	if (isnan(p) || isnan(df) || p < 0 || p > 1 || df <= 0)
		return NAN;
	if (isinf(df))
		return normal_quantile(p);
	if (p == 0)
		return -INFINITY;
	if (p == 1)
		return INFINITY;
	if (p == 0.5)
		return 0;
	if (p < 0.5)
		return -student_t_upper_quantile(p, df);
	return student_t_upper_quantile(1 - p, df);
}

/* P(X >= x) for chi-square with one degree of freedom: P(|Z| >= sqrt x) */
double
chisq1_sf(double x)
{
	if (isnan(x))
		return NAN;
	if (x <= 0)
		return 1;
	return erfc(sqrt(x / 2));
}

/* ----------------------------------------------------------------------
 * McNemar's test
 * ----------------------------------------------------------------------
 */

/*
 * The exact (conditional) McNemar test: under the null hypothesis each of
 * the n = b + c discordant pairs goes either way with probability 1/2, so
 * the two-sided p-value is min(1, 2 P(X <= min(b, c))), X ~ Bin(n, 1/2).
 * The sum runs down from min(b, c) and stops when the terms no longer
 * count, after O(sqrt(n)) terms at most.
 */
double
mcnemar_exact_p(int64_t b, int64_t c)
{
	double		n = (double) b + (double) c;
	double		k = (double) (b < c ? b : c);
	double		term;
	double		sum;

	if (b < 0 || c < 0)
		return NAN;
	if (2 * k == n)
		return 1;				/* P(X <= n/2) >= 1/2 */
	term = binomial_half_pmf(k, n);
	sum = term;
	for (double i = k; i > 0 && term > sum * (DBL_EPSILON / 16); i--)
	{
		term *= i / (n - i + 1);
		sum += term;
	}
	return fmin(1, 2 * sum);
}

/*
 * McNemar's chi-square statistic (b - c)^2 / (b + c), or with Edwards'
 * continuity correction (|b - c| - 1)^2 / (b + c), where |b - c| - 1 is
 * taken as 0 when b = c (no evidence either way).  0 when b + c = 0.
 */
double
mcnemar_chisq(int64_t b, int64_t c, bool continuity)
{
	double		n = (double) b + (double) c;
	double		diff = fabs((double) b - (double) c);

	if (b < 0 || c < 0)
		return NAN;
	if (n == 0)
		return 0;
	if (continuity)
		diff = fmax(diff - 1, 0);
	return diff * diff / n;
}

/*
 * The p-value ctr_compare reports: the exact test below
 * MCNEMAR_EXACT_BELOW discordant pairs, the continuity-corrected
 * chi-square from there on.  The corrected statistic approximates the
 * exact test it takes over from, so p does not jump at the switch (the
 * uncorrected one would be smaller, and less conservative than the exact
 * test just below).
 */
double
mcnemar_p(int64_t b, int64_t c)
{
	if (b < 0 || c < 0)
		return NAN;
	if ((double) b + (double) c < MCNEMAR_EXACT_BELOW)
		return mcnemar_exact_p(b, c);
	return chisq1_sf(mcnemar_chisq(b, c, true));
}

/* ----------------------------------------------------------------------
 * Intervals
 * ----------------------------------------------------------------------
 */

/* the two-sided critical value of the standard normal */
static double
normal_critical(double confidence)
{
	return -normal_quantile((1 - confidence) / 2);
}

/* Wilson's upper limit for j of n, z^2 = z2: no cancellation */
static double
wilson_upper(double j, double n, double z, double z2)
{
	return (j + z2 / 2 + z * sqrt(j * (n - j) / n + z2 / 4)) / (n + z2);
}

/*
 * Wilson's lower limit, from the product of the two limits, (j/n)^2 /
 * (1 + z^2/n): the textbook form subtracts two nearly equal numbers when
 * j is small.
 */
static double
wilson_lower(double j, double n, double z, double z2)
{
	if (j == 0)
		return 0;
	return (j / n) * (j / (n + z2)) / wilson_upper(j, n, z, z2);
}

/*
 * The Wilson score interval for k successes of n: the proportions p with
 * |k/n - p| <= z sqrt(p (1 - p) / n).  Computed for the smaller of k and
 * n - k and mirrored, so that a limit near 0 or 1 keeps its relative
 * precision, and it is exactly 0 at k = 0 and 1 at k = n.  No interval
 * for n = 0.
 */
bool
wilson_interval(int64_t k, int64_t n, double confidence,
				double *low, double *high)
{
	double		z = normal_critical(confidence);
	double		z2 = z * z;
	double		dn = (double) n;
	double		dk = (double) k;

	if (n <= 0 || k < 0 || k > n)
		return false;
	if (k <= n - k)
	{
		*low = wilson_lower(dk, dn, z, z2);
		*high = wilson_upper(dk, dn, z, z2);
	}
	else
	{
		*low = 1 - wilson_upper(dn - dk, dn, z, z2);
		*high = 1 - wilson_lower(dn - dk, dn, z, z2);
	}
	return true;
}

/*
 * Newcombe's method 10 for the difference of paired proportions, from the
 * 2x2 table of the same n units: a both, b the first only, c the second
 * only, d neither.  The difference is (a+b)/n - (a+c)/n = (b - c)/n; its
 * limits combine the Wilson intervals (l1, u1) of (a+b)/n and (l2, u2) of
 * (a+c)/n with their correlation phi:
 *
 *	low  = diff - sqrt((p1-l1)^2 - 2 phi (p1-l1)(u2-p2) + (u2-p2)^2)
 *	high = diff + sqrt((u1-p1)^2 - 2 phi (u1-p1)(p2-l2) + (p2-l2)^2)
 *
 * phi = (ad - bc) / sqrt((a+b)(c+d)(a+c)(b+d)), with Newcombe's correction:
 * ad - bc is reduced by n/2 when it is larger than that, taken as 0
 * between 0 and n/2, and used as it is when negative; phi = 0 when a
 * margin is empty.
 */
bool
newcombe_paired_interval(int64_t a, int64_t b, int64_t c, int64_t d,
						 double confidence,
						 double *diff, double *low, double *high)
{
	double		da = (double) a,
				db = (double) b,
				dc = (double) c,
				dd = (double) d;
	double		n = da + db + dc + dd;
	double		p1,
				p2,
				l1,
				u1,
				l2,
				u2;
	double		margins = (da + db) * (dc + dd) * (da + dc) * (db + dd);
	double		cross = da * dd - db * dc;
	double		phi = 0;
	double		below,
				above;

	if (a < 0 || b < 0 || c < 0 || d < 0 || n == 0)
		return false;
	if (!wilson_interval(a + b, a + b + c + d, confidence, &l1, &u1) ||
		!wilson_interval(a + c, a + b + c + d, confidence, &l2, &u2))
		return false;
	p1 = (da + db) / n;
	p2 = (da + dc) / n;

	if (margins > 0)
	{
		if (cross > n / 2)
			cross -= n / 2;
		else if (cross > 0)
			cross = 0;
		phi = cross / sqrt(margins);
	}
	below = (p1 - l1) * (p1 - l1) - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) * (u2 - p2);
	above = (u1 - p1) * (u1 - p1) - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) * (p2 - l2);

	*diff = (db - dc) / n;
	*low = fmax(-1, *diff - sqrt(fmax(below, 0)));
	*high = fmin(1, *diff + sqrt(fmax(above, 0)));
	return true;
}

/*
 * The t interval for a mean of n values with standard deviation sd:
 * mean -/+ t(1 - alpha/2, n - 1) sd / sqrt(n).  None for n < 2.
 */
bool
t_mean_interval(int64_t n, double mean, double sd, double confidence,
				double *low, double *high)
{
	double		half;

	if (n < 2 || !(sd >= 0))
		return false;
	half = -student_t_quantile((1 - confidence) / 2, (double) (n - 1)) * sd / sqrt((double) n);
	*low = mean - half;
	*high = mean + half;
	return true;
}

/*
 * The paired t test on n per-unit differences with mean mean_diff and
 * standard deviation sd_diff: t = mean_diff / (sd_diff / sqrt(n)) with
 * n - 1 degrees of freedom, two-sided p = 2 P(T > |t|), and the t
 * interval for the mean difference.  When every difference is the same
 * (sd_diff = 0) p is its limit: 1 if they are all 0, else 0.
 */
bool
paired_t_test(int64_t n, double mean_diff, double sd_diff, double confidence,
			  double *low, double *high, double *p_value)
{
	double		se;

	if (!t_mean_interval(n, mean_diff, sd_diff, confidence, low, high))
		return false;
	se = sd_diff / sqrt((double) n);
	if (se == 0)
		*p_value = mean_diff == 0 ? 1 : 0;
	else
		*p_value = fmin(1, 2 * student_t_sf(fabs(mean_diff / se), (double) (n - 1)));
	return true;
}

/* ----------------------------------------------------------------------
 * Holm's step-down adjustment
 * ----------------------------------------------------------------------
 */

static int
holm_item_cmp(const void *x, const void *y)
{
	const HolmItem *a = x;
	const HolmItem *b = y;

	if (a->p != b->p)
		return a->p < b->p ? -1 : 1;
	return (a->index > b->index) - (a->index < b->index);
}

/*
 * Holm (1979): with the m p-values in ascending order p(1) <= ... <= p(m),
 * the adjusted p(i) is max over j <= i of min(1, (m - j + 1) p(j)).
 * Rejecting where the adjusted value is below alpha controls the
 * family-wise error rate at alpha.  Sorts items; writes adjusted[index].
 */
void
holm_adjust(HolmItem *items, int m, double *adjusted)
{
	double		running = 0;

	qsort(items, (size_t) m, sizeof(HolmItem), holm_item_cmp);
	for (int i = 0; i < m; i++)
	{
		running = fmax(running, fmin(1, (double) (m - i) * items[i].p));
		adjusted[items[i].index] = running;
	}
}
