/*-------------------------------------------------------------------------
 *
 * inference_sql.c
 *	  SQL wrappers for inference.c: ctr_dist.wilson, mcnemar_p,
 *	  mcnemar_chisq, paired_diff_interval, mean_interval, paired_t, holm.
 *
 * Each wrapper checks its arguments (22023 for what cannot be counts, a
 * standard deviation or a confidence) and calls one function of
 * inference.c.  The interval functions return exactly one row, a row of
 * NULLs when an argument is NULL or there is no interval (no personas,
 * fewer than two values): a set-returning function declared STRICT would
 * return no row instead, and a LATERAL join on it would drop the ad.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "inference.h"

/* the most columns an interval function returns */
#define MAX_COLUMNS 3

/*
 * The one row of an interval function: the ncolumns results, or NULLs
 * when there are none.
 */
static void
return_row(FunctionCallInfo fcinfo, bool found, const double *results, int ncolumns)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[MAX_COLUMNS] = {0};
	bool		nulls[MAX_COLUMNS];

	Assert(ncolumns <= MAX_COLUMNS);
	for (int i = 0; i < MAX_COLUMNS; i++)
	{
		nulls[i] = !found || i >= ncolumns;
		if (!nulls[i])
			values[i] = Float8GetDatum(results[i]);
	}
	InitMaterializedSRF(fcinfo, 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* the row of NULLs, if any of the first nargs arguments is NULL */
static bool
return_nulls_on_null(FunctionCallInfo fcinfo, int nargs)
{
	for (int i = 0; i < nargs; i++)
	{
		if (PG_ARGISNULL(i))
		{
			return_row(fcinfo, false, NULL, 0);
			return true;
		}
	}
	return false;
}

static void
check_count(int64 value, const char *name)
{
	if (value < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name),
				 errdetail("%s is " INT64_FORMAT ".", name, value)));
}

static void
check_confidence(double confidence)
{
	if (!(confidence > 0 && confidence < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("confidence must be between 0 and 1, exclusive"),
				 errdetail("confidence is %g.", confidence),
				 errhint("For a 95 %% interval, pass 0.95.")));
}

static void
check_finite(double value, const char *name)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", name),
				 errdetail("%s is %g.", name, value)));
}

static void
check_sd(double sd, const char *name)
{
	check_finite(sd, name);
	if (sd < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name),
				 errdetail("%s is %g.", name, sd)));
}

/* the total of a 2x2 table or of two counts, which must fit a bigint */
static int64
checked_sum(int64 x, int64 y)
{
	int64		sum;

	if (pg_add_s64_overflow(x, y, &sum))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the counts add up to more than a bigint holds")));
	return sum;
}

PG_FUNCTION_INFO_V1(ctr_dist_wilson);

/* ctr_dist.wilson(clicks, n, confidence) -> (low, high) */
Datum
ctr_dist_wilson(PG_FUNCTION_ARGS)
{
	int64		clicks;
	int64		n;
	double		confidence;
	double		r[2];

	if (return_nulls_on_null(fcinfo, 3))
		return (Datum) 0;
	clicks = PG_GETARG_INT64(0);
	n = PG_GETARG_INT64(1);
	confidence = PG_GETARG_FLOAT8(2);
	check_count(clicks, "clicks");
	check_count(n, "n");
	if (clicks > n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("clicks must not exceed n"),
				 errdetail("clicks is " INT64_FORMAT " and n is " INT64_FORMAT ".",
						   clicks, n)));
	check_confidence(confidence);

	return_row(fcinfo, wilson_interval(clicks, n, confidence, &r[0], &r[1]), r, 2);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_mcnemar_p);

/* ctr_dist.mcnemar_p(b, c): exact below MCNEMAR_EXACT_BELOW, else chi-square */
Datum
ctr_dist_mcnemar_p(PG_FUNCTION_ARGS)
{
	int64		b = PG_GETARG_INT64(0);
	int64		c = PG_GETARG_INT64(1);

	check_count(b, "b");
	check_count(c, "c");
	(void) checked_sum(b, c);
	PG_RETURN_FLOAT8(mcnemar_p(b, c));
}

PG_FUNCTION_INFO_V1(ctr_dist_mcnemar_chisq);

/* ctr_dist.mcnemar_chisq(b, c, correct): the statistic */
Datum
ctr_dist_mcnemar_chisq(PG_FUNCTION_ARGS)
{
	int64		b = PG_GETARG_INT64(0);
	int64		c = PG_GETARG_INT64(1);
	bool		correct = PG_GETARG_BOOL(2);

	check_count(b, "b");
	check_count(c, "c");
	(void) checked_sum(b, c);
	PG_RETURN_FLOAT8(mcnemar_chisq(b, c, correct));
}

PG_FUNCTION_INFO_V1(ctr_dist_paired_diff_interval);

/* ctr_dist.paired_diff_interval(a, b, c, d, confidence) -> (diff, low, high) */
Datum
ctr_dist_paired_diff_interval(PG_FUNCTION_ARGS)
{
	static const char *const names[4] = {"a", "b", "c", "d"};
	int64		cell[4];
	int64		total = 0;
	double		confidence;
	double		r[3];
	bool		found;

	if (return_nulls_on_null(fcinfo, 5))
		return (Datum) 0;
	for (int i = 0; i < 4; i++)
	{
		cell[i] = PG_GETARG_INT64(i);
		check_count(cell[i], names[i]);
		total = checked_sum(total, cell[i]);
	}
	confidence = PG_GETARG_FLOAT8(4);
	check_confidence(confidence);

	found = newcombe_paired_interval(cell[0], cell[1], cell[2], cell[3], confidence,
									 &r[0], &r[1], &r[2]);
	return_row(fcinfo, found, r, 3);
	return (Datum) 0;
}

/* the arguments of mean_interval and paired_t, checked */
static void
get_mean_args(FunctionCallInfo fcinfo, const char *mean_name, const char *sd_name,
			  int64 *n, double *mean, double *sd, double *confidence)
{
	*n = PG_GETARG_INT64(0);
	*mean = PG_GETARG_FLOAT8(1);
	*sd = PG_GETARG_FLOAT8(2);
	*confidence = PG_GETARG_FLOAT8(3);
	check_count(*n, "n");
	check_finite(*mean, mean_name);
	check_sd(*sd, sd_name);
	check_confidence(*confidence);
}

PG_FUNCTION_INFO_V1(ctr_dist_mean_interval);

/* ctr_dist.mean_interval(n, mean, sd, confidence) -> (low, high) */
Datum
ctr_dist_mean_interval(PG_FUNCTION_ARGS)
{
	int64		n;
	double		mean,
				sd,
				confidence;
	double		r[2];

	if (return_nulls_on_null(fcinfo, 4))
		return (Datum) 0;
	get_mean_args(fcinfo, "mean", "sd", &n, &mean, &sd, &confidence);

	return_row(fcinfo, t_mean_interval(n, mean, sd, confidence, &r[0], &r[1]), r, 2);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_paired_t);

/* ctr_dist.paired_t(n, mean_diff, sd_diff, confidence) -> (low, high, p_value) */
Datum
ctr_dist_paired_t(PG_FUNCTION_ARGS)
{
	int64		n;
	double		mean,
				sd,
				confidence;
	double		r[3];

	if (return_nulls_on_null(fcinfo, 4))
		return (Datum) 0;
	get_mean_args(fcinfo, "mean_diff", "sd_diff", &n, &mean, &sd, &confidence);

	return_row(fcinfo, paired_t_test(n, mean, sd, confidence, &r[0], &r[1], &r[2]), r, 3);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_holm);

/*
 * ctr_dist.holm(p float8[]): Holm-adjusted p-values, same shape; NULL
 * elements stay NULL and do not count as comparisons.
 */
Datum
ctr_dist_holm(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *isnull;
	int			nelems;
	int			m = 0;
	HolmItem   *items;
	double	   *adjusted;

	deconstruct_array(array, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &isnull, &nelems);
	items = palloc(sizeof(HolmItem) * Max(nelems, 1));
	adjusted = palloc(sizeof(double) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
	{
		double		p;

		if (isnull[i])
			continue;
		p = DatumGetFloat8(elems[i]);
		if (!(p >= 0 && p <= 1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("p-values must be between 0 and 1"),
					 errdetail("Element %d is %g.", i + 1, p)));
		items[m].p = p;
		items[m].index = i;
		m++;
	}
	holm_adjust(items, m, adjusted);
	for (int i = 0; i < nelems; i++)
	{
		if (!isnull[i])
			elems[i] = Float8GetDatum(adjusted[i]);
	}

	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, isnull, ARR_NDIM(array),
											 ARR_DIMS(array), ARR_LBOUND(array),
											 FLOAT8OID, sizeof(float8),
											 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
