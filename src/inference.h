/*-------------------------------------------------------------------------
 *
 * inference.h
 *	  The statistics of an ad comparison: the normal and Student t
 *	  distributions, McNemar's test, the Wilson, Newcombe and t intervals,
 *	  the paired t test and Holm's adjustment.
 *
 * Pure C (libm only): no backend needed, so it can be tested and fuzzed
 * on its own.  Callers check the inputs (the SQL wrappers raise the
 * errors); a function that has no answer for valid inputs, such as an
 * interval for no personas, returns false and the SQL result is NULL.
 * Counts are int64_t like the bigints they come from.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_INFERENCE_H
#define CTR_INFERENCE_H

#include <stdbool.h>
#include <stdint.h>

/* mcnemar_p: the exact test below this many discordant pairs */
#define MCNEMAR_EXACT_BELOW 25

/* Distributions */
extern double normal_cdf(double z);
extern double normal_quantile(double p);
extern double beta_regularized(double a, double b, double x);
extern double student_t_cdf(double t, double df);
extern double student_t_sf(double t, double df);
extern double student_t_quantile(double p, double df);
extern double chisq1_sf(double x);

/* McNemar's test on the discordant pairs b and c of a paired 2x2 table */
extern double mcnemar_exact_p(int64_t b, int64_t c);
extern double mcnemar_chisq(int64_t b, int64_t c, bool continuity);
extern double mcnemar_p(int64_t b, int64_t c);

/* Intervals and tests; confidence in (0, 1) */
extern bool wilson_interval(int64_t k, int64_t n, double confidence,
							double *low, double *high);
extern bool newcombe_paired_interval(int64_t a, int64_t b, int64_t c, int64_t d,
									 double confidence,
									 double *diff, double *low, double *high);
extern bool t_mean_interval(int64_t n, double mean, double sd, double confidence,
							double *low, double *high);
extern bool paired_t_test(int64_t n, double mean_diff, double sd_diff,
						  double confidence,
						  double *low, double *high, double *p_value);

/* Holm's step-down adjustment of m p-values in [0, 1] */
typedef struct HolmItem
{
	double		p;
	int			index;			/* where its adjusted value goes */
} HolmItem;

extern void holm_adjust(HolmItem *items, int m, double *adjusted);

#endif							/* CTR_INFERENCE_H */
