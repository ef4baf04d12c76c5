/*-------------------------------------------------------------------------
 *
 * compare.c
 *	  ctr_compare(): several ads on the same personas, with uncertainty.
 *
 * Every persona sees every ad (window.c sends each batch once per ad, the
 * persona block first so that providers' prompt caches discount it for
 * every ad after the first).  As batches finish, in ord order, each ad's
 * answers are summed, and so are the pairs of each ad with the first ad on
 * the same persona; nothing else is kept, so memory does not grow with
 * the table.  At the end the sums become, per ad: the CTR (or the mean
 * click probability) with its interval, and the paired difference from
 * the first ad with its interval and p-value (inference.c).
 *
 * ctr_dist.compare_answers() runs the same comparison and returns every
 * answer instead (ctr_dist.compare_run stores them); the summary of this
 * session's last comparison stays available to ctr_dist.last_comparison().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "encoding.h"
#include "inference.h"
#include "predict.h"
#include "window.h"

/* What prompt caches need the shared prefix to reach, in tokens (Gemini's) */
#define CACHE_PREFIX_TOKENS 2048

/* Running sums of one ad, and of its pairs with the first ad */
typedef struct AdSums
{
	int64		personas;
	int64		answered;
	double		sum;			/* of the answers: clicks, or probabilities 0..1 */
	double		sumsq;
	/* persona by persona, with the first ad, where both were answered */
	int64		pairs;
	int64		both;			/* clicks: 1 and 1 */
	int64		first_only;		/* 1 for the first ad, 0 for this one */
	int64		this_only;		/* 0 for the first ad, 1 for this one */
	double		dsum;			/* probabilities: sum of (this - first) */
	double		dsumsq;
	double		cost_usd;
} AdSums;

/* One ad's summary, as ctr_compare returns it */
typedef struct AdSummary
{
	int64		personas;
	int64		answered;
	bool		has_ctr;
	double		ctr;
	bool		has_interval;
	double		ctr_low;
	double		ctr_high;
	bool		has_diff;
	double		diff;
	bool		has_diff_interval;
	double		diff_low;
	double		diff_high;
	bool		has_p;
	double		p_value;
	bool		has_p_holm;
	double		p_holm;
	double		cost_usd;
} AdSummary;

/* The session's last comparison, for ctr_dist.last_comparison() */
typedef struct LastComparison
{
	int			nads;
	int			comparisons;	/* ads compared with the first, with a p-value */
	AdSummary	ads[CTR_MAX_ADS];
} LastComparison;

static LastComparison last_comparison;

typedef struct CompareState
{
	AdSums	   *sums;			/* nads */
	ReturnSetInfo *rsinfo;		/* compare_answers: every answer, else NULL */
	MemoryContext rowcxt;
} CompareState;

/* ---- arguments ---- */

static int
compare_ads(FunctionCallInfo fcinfo, int argno, const char ***ads)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ads must not be NULL")));
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ads must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n < 1 || n > CTR_MAX_ADS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a comparison needs 1 to %d ads, not %d", CTR_MAX_ADS, n),
				 errhint("The first ad is the baseline the others are compared with.")));
	*ads = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
	{
		char	   *ad = nulls[i] ? NULL : TextDatumGetCString(elems[i]);

		if (ad == NULL || ad[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ad %d is empty", i + 1),
					 errhint("Every ad of a comparison needs a text.")));
		(*ads)[i] = ad;
	}
	return n;
}

static AnswerKind
compare_answer_kind(FunctionCallInfo fcinfo, int argno)
{
	char	   *answer = PG_ARGISNULL(argno) ? "click" : text_to_cstring(PG_GETARG_TEXT_PP(argno));

	if (strcmp(answer, "click") == 0)
		return ANSWER_CLICK;
	if (strcmp(answer, "probability") == 0)
		return ANSWER_PROBABILITY;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown answer \"%s\"", answer),
			 errhint("Ask for 'click' (0 or 1 per persona) or 'probability' (0 to 100 per persona).")));
	return ANSWER_CLICK;		/* keep compiler quiet */
}

/* ---- the sums ---- */

static void
compare_batch_done(CallState *cs, const BatchSlot *slot, void *arg)
{
	CompareState *st = (CompareState *) arg;
	const AdAnswer *first = &slot->ads[0];
	double		scale = cs->kind == ANSWER_PROBABILITY ? 100.0 : 1.0;

	for (int a = 0; a < cs->nads; a++)
	{
		const AdAnswer *ad = &slot->ads[a];
		AdSums	   *s = &st->sums[a];

		s->personas += slot->batch.n;
		s->cost_usd += ad->cost_usd;
		if (!ad->answered)
			continue;
		s->answered += slot->batch.n;
		for (int i = 0; i < slot->batch.n; i++)
		{
			double		v = ad->values[i] / scale;

			s->sum += v;
			s->sumsq += v * v;
			if (a > 0 && first->answered)
			{
				double		f = first->values[i] / scale;

				s->pairs++;
				if (cs->kind == ANSWER_CLICK)
				{
					if (ad->values[i] && first->values[i])
						s->both++;
					else if (first->values[i])
						s->first_only++;
					else if (ad->values[i])
						s->this_only++;
				}
				s->dsum += v - f;
				s->dsumsq += (v - f) * (v - f);
			}
		}
	}

	/* compare_answers: every answer, persona by persona, ad by ad */
	if (st->rsinfo == NULL)
		return;
	for (int i = 0; i < slot->batch.n; i++)
	{
		for (int a = 0; a < cs->nads; a++)
		{
			const AdAnswer *ad = &slot->ads[a];
			MemoryContext old = MemoryContextSwitchTo(st->rowcxt);
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};

			values[0] = Int32GetDatum(a + 1);
			values[1] = Int64GetDatum(slot->batch.first_ord + i);
			if (slot->batch.keys[i])
				values[2] = CStringGetTextDatum(slot->batch.keys[i]);
			else
				nulls[2] = true;
			if (ad->answered)
			{
				values[3] = Int32GetDatum(ad->values[i]);
				values[4] = CStringGetTextDatum(provider_ops(cs->play[ad->play].id)->name);
				values[5] = CStringGetTextDatum(ad->model);
			}
			else
				nulls[3] = nulls[4] = nulls[5] = true;
			tuplestore_putvalues(st->rsinfo->setResult, st->rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(old);
			MemoryContextReset(st->rowcxt);
		}
	}
}

/* sample standard deviation from sums, or -1 with fewer than two */
static double
sample_sd(int64 n, double sum, double sumsq)
{
	double		var;

	if (n < 2)
		return -1;
	var = (sumsq - sum * sum / n) / (n - 1);
	return var > 0 ? sqrt(var) : 0;
}

static void
summarize(const CallState *cs, const AdSums *sums, LastComparison *out)
{
	HolmItem	items[CTR_MAX_ADS];
	double		adjusted[CTR_MAX_ADS];
	int			m = 0;

	memset(out, 0, sizeof(*out));
	out->nads = cs->nads;
	for (int a = 0; a < cs->nads; a++)
	{
		const AdSums *s = &sums[a];
		AdSummary  *r = &out->ads[a];

		r->personas = s->personas;
		r->answered = s->answered;
		r->cost_usd = s->cost_usd;
		if (s->answered > 0)
		{
			r->has_ctr = true;
			r->ctr = s->sum / s->answered;
		}
		if (cs->kind == ANSWER_CLICK)
			r->has_interval = wilson_interval((int64) llround(s->sum), s->answered, 0.95,
											  &r->ctr_low, &r->ctr_high);
		else
			r->has_interval = t_mean_interval(s->answered, r->ctr,
											  sample_sd(s->answered, s->sum, s->sumsq), 0.95,
											  &r->ctr_low, &r->ctr_high);
		if (a == 0 || s->pairs == 0)
			continue;

		if (cs->kind == ANSWER_CLICK)
		{
			int64		neither = s->pairs - s->both - s->first_only - s->this_only;

			r->has_diff = true;
			r->diff = (double) (s->this_only - s->first_only) / s->pairs;
			r->has_diff_interval = newcombe_paired_interval(s->both, s->this_only, s->first_only,
															neither, 0.95, &r->diff,
															&r->diff_low, &r->diff_high);
			r->p_value = mcnemar_p(s->first_only, s->this_only);
			r->has_p = true;
		}
		else
		{
			r->has_diff = true;
			r->diff = s->dsum / s->pairs;
			r->has_p = paired_t_test(s->pairs, r->diff, sample_sd(s->pairs, s->dsum, s->dsumsq),
									 0.95, &r->diff_low, &r->diff_high, &r->p_value);
			r->has_diff_interval = r->has_p;
		}
		if (r->has_p)
		{
			items[m].p = r->p_value;
			items[m].index = a;
			m++;
		}
	}

	/* Holm's adjustment over the comparisons made with the first ad */
	out->comparisons = m;
	if (m > 0)
	{
		holm_adjust(items, m, adjusted);
		for (int a = 0; a < cs->nads; a++)
		{
			AdSummary  *r = &out->ads[a];

			if (r->has_p)
			{
				r->has_p_holm = true;
				r->p_holm = adjusted[a];
			}
		}
	}
}

/* The ads as providers read them, in UTF-8; the rows show them as given */
static const char *const *
ads_in_utf8(const char **ads, int nads)
{
	const char **utf8 = palloc(sizeof(char *) * nads);

	for (int a = 0; a < nads; a++)
		utf8[a] = ctr_to_utf8(ads[a]);
	return utf8;
}

/* ---- running one ---- */

static void
run_comparison(FunctionCallInfo fcinfo, const char *what, bool answers)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CallState  *cs;
	CompareState st;
	Oid			relid;
	int			batch_size;
	const char **ads;
	int			nads;
	char	   *platform;
	AnswerKind	kind;

	/* ctr_dist.last_call_stats() and last_comparison() start afresh */
	report_call_reset();
	memset(&last_comparison, 0, sizeof(last_comparison));

	relid = call_personas(fcinfo, 0);
	nads = compare_ads(fcinfo, 1, &ads);
	batch_size = call_batch_size(fcinfo, 2);
	platform = call_platform(fcinfo, 3);
	kind = compare_answer_kind(fcinfo, 5);

	InitMaterializedSRF(fcinfo, 0);

	cs = call_start(fcinfo, 4);
	cs->what = what;
	cs->nads = nads;
	cs->ads = ads_in_utf8(ads, nads);
	cs->platform = ctr_to_utf8(platform);
	cs->kind = kind;
	cs->min_prefix_tokens = CACHE_PREFIX_TOKENS;

	memset(&st, 0, sizeof(st));
	st.sums = palloc0(sizeof(AdSums) * nads);
	st.rsinfo = answers ? rsinfo : NULL;
	st.rowcxt = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist row",
									  ALLOCSET_SMALL_SIZES);
	cs->sink.batch_done = compare_batch_done;
	cs->sink.arg = &st;
	call_run(cs, relid, batch_size);

	summarize(cs, st.sums, &last_comparison);
	if (last_comparison.comparisons > 1)
		ereport(NOTICE,
				(errmsg("%d ads were each compared with the first: %d comparisons",
						nads, last_comparison.comparisons),
				 errhint("With several comparisons some p-values are small by chance; ctr_dist.last_comparison() "
						 "and ctr_dist.compare_run() give Holm-adjusted ones.")));
}

/* Emit one summary row per ad; holm: with p_holm and comparisons */
static void
emit_summary(ReturnSetInfo *rsinfo, const char *const *ads, bool holm)
{
	for (int a = 0; a < last_comparison.nads; a++)
	{
		const AdSummary *r = &last_comparison.ads[a];
		Datum		values[14];
		bool		nulls[14] = {0};
		int			i = 0;

		values[i++] = Int32GetDatum(a + 1);
		if (ads)
			values[i++] = CStringGetTextDatum(ads[a]);
		values[i++] = Int64GetDatum(r->personas);
		values[i++] = Int64GetDatum(r->answered);
#define OPT(has, v) do { if (has) values[i] = Float8GetDatum(v); else nulls[i] = true; i++; } while (0)
		OPT(r->has_ctr, r->ctr);
		OPT(r->has_interval, r->ctr_low);
		OPT(r->has_interval, r->ctr_high);
		OPT(r->has_diff, r->diff);
		OPT(r->has_diff_interval, r->diff_low);
		OPT(r->has_diff_interval, r->diff_high);
		OPT(r->has_p, r->p_value);
		if (holm)
			OPT(r->has_p_holm, r->p_holm);
#undef OPT
		values[i++] = Float8GetDatum(r->cost_usd);
		if (holm)
			values[i++] = Int32GetDatum(last_comparison.comparisons);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

PG_FUNCTION_INFO_V1(ctr_compare);

Datum
ctr_compare(PG_FUNCTION_ARGS)
{
	const char **ads;

	run_comparison(fcinfo, "ctr_compare", false);
	(void) compare_ads(fcinfo, 1, &ads);
	emit_summary((ReturnSetInfo *) fcinfo->resultinfo, ads, false);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_compare_answers);

Datum
ctr_dist_compare_answers(PG_FUNCTION_ARGS)
{
	run_comparison(fcinfo, "ctr_dist.compare_answers", true);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_last_comparison);

/* The summary of this session's last comparison, with Holm's p-values */
Datum
ctr_dist_last_comparison(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	emit_summary((ReturnSetInfo *) fcinfo->resultinfo, NULL, true);
	return (Datum) 0;
}
