/*-------------------------------------------------------------------------
 *
 * report.c
 *	  The end-of-call NOTICE and the totals of this session's last call.
 *
 * The window keeps one ProviderTally per provider in play; at the end the
 * NOTICE sums them up, and ctr_dist.last_call_stats() shows them per
 * provider (also after a call that failed part way: ctr_dist.run stores
 * them).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "report.h"

/* The totals of this session's last call, for ctr_dist.last_call_stats() */
typedef struct LastCall
{
	int			nplay;
	ProviderId	ids[NUM_PROVIDERS];
	char		models[NUM_PROVIDERS][CTR_MODEL_MAX];
	double		prices[NUM_PROVIDERS][2];
	ProviderTally tally[NUM_PROVIDERS];
} LastCall;

static LastCall last_call;

void
report_call_reset(void)
{
	memset(&last_call, 0, sizeof(last_call));
}

void
report_call_started(const ProviderConfig *play, int nplay)
{
	memset(&last_call, 0, sizeof(last_call));
	last_call.nplay = nplay;
	for (int i = 0; i < nplay; i++)
	{
		last_call.ids[i] = play[i].id;
		strlcpy(last_call.models[i], play[i].model, CTR_MODEL_MAX);
		last_call.prices[i][0] = play[i].price_input;
		last_call.prices[i][1] = play[i].price_output;
	}
}

void
report_call_tallies(const ProviderTally *tally)
{
	memcpy(last_call.tally, tally, sizeof(last_call.tally));
}

void
report_call_end(const char *what, const ProviderConfig *play,
				const ProviderTally *tally, int nplay,
				int64 personas, int nads, int64 batches, int64 failovers,
				int64 null_answers, const char *last_failure)
{
	StringInfoData per;
	StringInfoData detail;
	ProviderTally sum;
	double		cost = 0;

	memset(&sum, 0, sizeof(sum));
	initStringInfo(&per);
	for (int i = 0; i < nplay; i++)
	{
		const ProviderTally *t = &tally[i];

		appendStringInfo(&per, "%s%s=" INT64_FORMAT, i ? ", " : "",
						 provider_ops(play[i].id)->name, t->batches);
		sum.requests += t->requests;
		sum.answered += t->answered;
		sum.tokens_in += t->tokens_in;
		sum.tokens_out += t->tokens_out;
		sum.retries += t->retries;
		sum.throttled += t->throttled;
		sum.transient += t->transient;
		sum.soft += t->soft;
		sum.fatal += t->fatal;
		sum.rejected += t->rejected;
		sum.breaker_trips += t->breaker_trips;
		sum.paced_ms += t->paced_ms;
		sum.twins += t->twins;
		cost += cost_of(&play[i], t->tokens_in, t->tokens_out);

		/* one WARNING per provider for requests it rejected, with the count */
		if (t->rejected > 0)
			ereport(WARNING,
					(errmsg("provider \"%s\" rejected " INT64_FORMAT " %s: %s",
							provider_ops(play[i].id)->name, t->rejected,
							t->rejected == 1 ? "request" : "requests", t->rejected_reason),
					 errdetail("This is a bug in ctr_dist or an incompatible API change; please report it."),
					 errhint("The batches went to the other providers, if any were left.")));
	}
	if (null_answers > 0 && nads == 1)
		ereport(WARNING,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " personas got no prediction (click is NULL)",
						null_answers, personas),
				 errdetail("Every provider in play failed their batches; the last error was %s.",
						   last_failure)));
	else if (null_answers > 0)
		ereport(WARNING,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " answers (personas times ads) are missing",
						null_answers, personas * nads),
				 errdetail("Every provider in play failed their requests; the last error was %s.",
						   last_failure)));
	initStringInfo(&detail);
	appendStringInfo(&detail, "requests " INT64_FORMAT " (answered " INT64_FORMAT ", rate-limited " INT64_FORMAT
					 ", transient errors " INT64_FORMAT ", bad answers " INT64_FORMAT
					 ", fatal " INT64_FORMAT ", rejected " INT64_FORMAT "), retries " INT64_FORMAT
					 ", failovers " INT64_FORMAT ", breaker trips " INT64_FORMAT
					 ", rate-limit waits %.1f batch-s, tokens in " INT64_FORMAT ", out " INT64_FORMAT
					 ", estimated cost $%.4f",
					 sum.requests, sum.answered, sum.throttled, sum.transient, sum.soft,
					 sum.fatal, sum.rejected, sum.retries, failovers, sum.breaker_trips,
					 sum.paced_ms / 1000.0, sum.tokens_in, sum.tokens_out, cost);
	if (sum.twins > 0)
		appendStringInfo(&detail, "; " INT64_FORMAT " slow %s got a twin at another connection or provider",
						 sum.twins, sum.twins == 1 ? "request" : "requests");
	if (nads == 1)
		ereport(NOTICE,
				(errmsg("%s: " INT64_FORMAT " personas in " INT64_FORMAT " batches: %s",
						what, personas, batches, per.data),
				 errdetail_internal("%s", detail.data)));
	else
		ereport(NOTICE,
				(errmsg("%s: " INT64_FORMAT " personas x %d ads in " INT64_FORMAT " batches, requests answered: %s",
						what, personas, nads, batches, per.data),
				 errdetail_internal("%s", detail.data)));
}

PG_FUNCTION_INFO_V1(ctr_dist_last_call_stats);

/*
 * ctr_dist.last_call_stats(): per provider totals of this session's last
 * ctr_predict call, also when it failed part way (ctr_dist.run records them).
 */
Datum
ctr_dist_last_call_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < last_call.nplay; i++)
	{
		ProviderTally *t = &last_call.tally[i];
		Datum		values[10];
		bool		nulls[10] = {0};

		values[0] = CStringGetTextDatum(provider_ops(last_call.ids[i])->name);
		values[1] = CStringGetTextDatum(last_call.models[i]);
		values[2] = Int64GetDatum(t->batches);
		values[3] = Int64GetDatum(t->requests);
		values[4] = Int64GetDatum(t->retries);
		values[5] = Int64GetDatum(t->failovers);
		values[6] = Int64GetDatum(t->tokens_in);
		values[7] = Int64GetDatum(t->tokens_out);
		values[8] = Float8GetDatum((t->tokens_in * last_call.prices[i][0] +
									t->tokens_out * last_call.prices[i][1]) / 1e6);
		if (t->first_sent != 0 && t->last_answer >= t->first_sent)
			values[9] = Float8GetDatum((double) (t->last_answer - t->first_sent) / USECS_PER_SEC);
		else
			nulls[9] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
