/*-------------------------------------------------------------------------
 *
 * report.c
 *	  The end-of-call NOTICE and the totals of this session's last call.
 *
 * The window keeps one ProviderTally per provider in play; at the end the
 * NOTICE sums them up, and ctr_dist.last_call_stats() shows them per
 * provider (also after a call that failed part way: ctr_dist.run stores
 * them).  Costs are what each request cost as the provider billed it:
 * cached input at the cached price, flex at half, DeepSeek's peak hours at
 * its factor.
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
	}
}

void
report_tally_usage(ProviderTally *t, const JobCounters *c)
{
	t->too_large += c->too_large;
	t->unsupported += c->unsupported;
	t->splits += c->splits;
	t->tokens_cached += c->tokens_cached;
	t->tokens_cache_write += c->tokens_cache_write;
	t->tokens_reasoning += c->tokens_reasoning;
	t->cost_usd += c->cost_usd;
	t->dropped |= c->dropped;
}

/*
 * "openai (gpt-5-mini): sent without temperature, which the model refuses;
 * reasoning effort raised to the lowest the model takes", for each provider
 * whose model refused something, in this call or (preloaded) before it
 */
static void
append_dropped(StringInfo buf, const ProviderConfig *cfg, uint32 dropped)
{
	bool		first = true;

	if (dropped == 0)
		return;
	appendStringInfo(buf, "\n%s (%s): ", provider_ops(cfg->id)->name, cfg->model);
	for (int p = PARAM_NONE + 1; p < NUM_PARAMS; p++)
	{
		if (!(dropped & PARAM_BIT(p)))
			continue;
		appendStringInfo(buf, "%s%s", first ? "sent without " : ", ",
						 p == PARAM_REASONING && cfg->id == PROVIDER_GEMINI ? "thinkingConfig" :
						 p == PARAM_REASONING && cfg->id == PROVIDER_OPENAI ? "reasoning_effort" :
						 p == PARAM_REASONING ? "thinking" : param_name((RequestParam) p));
		first = false;
	}
	if (!first)
		appendStringInfoString(buf, ", which the model refuses");
	if (dropped & EFFORT_RAISED)
		appendStringInfo(buf, "%sreasoning effort raised to the lowest the model takes",
						 first ? "" : "; ");
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
	StringInfoData dropped;
	ProviderTally sum;

	memset(&sum, 0, sizeof(sum));
	initStringInfo(&per);
	initStringInfo(&dropped);
	for (int i = 0; i < nplay; i++)
	{
		const ProviderTally *t = &tally[i];

		appendStringInfo(&per, "%s%s=" INT64_FORMAT, i ? ", " : "",
						 provider_ops(play[i].id)->name, t->batches);
		sum.requests += t->requests;
		sum.answered += t->answered;
		sum.tokens_in += t->tokens_in;
		sum.tokens_cached += t->tokens_cached;
		sum.tokens_out += t->tokens_out;
		sum.tokens_reasoning += t->tokens_reasoning;
		sum.retries += t->retries;
		sum.splits += t->splits;
		sum.throttled += t->throttled;
		sum.transient += t->transient;
		sum.soft += t->soft;
		sum.too_large += t->too_large;
		sum.unsupported += t->unsupported;
		sum.fatal += t->fatal;
		sum.rejected += t->rejected;
		sum.breaker_trips += t->breaker_trips;
		sum.paced_ms += t->paced_ms;
		sum.cost_usd += t->cost_usd;
		sum.twins += t->twins;
		append_dropped(&dropped, &play[i], t->dropped);

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
					 ", too large " INT64_FORMAT ", unsupported parameters " INT64_FORMAT
					 ", fatal " INT64_FORMAT ", rejected " INT64_FORMAT "), retries " INT64_FORMAT
					 ", splits " INT64_FORMAT ", failovers " INT64_FORMAT ", breaker trips " INT64_FORMAT
					 ", rate-limit waits %.1f batch-s, tokens in " INT64_FORMAT " (cached " INT64_FORMAT
					 "), out " INT64_FORMAT " (reasoning " INT64_FORMAT "), estimated cost $%.4f%s",
					 sum.requests, sum.answered, sum.throttled, sum.transient, sum.soft,
					 sum.too_large, sum.unsupported, sum.fatal, sum.rejected, sum.retries,
					 sum.splits, failovers, sum.breaker_trips, sum.paced_ms / 1000.0,
					 sum.tokens_in, sum.tokens_cached, sum.tokens_out, sum.tokens_reasoning,
					 sum.cost_usd, dropped.data);
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
		Datum		values[13];
		bool		nulls[13] = {0};
		int			k = 0;

		values[k++] = CStringGetTextDatum(provider_ops(last_call.ids[i])->name);
		values[k++] = CStringGetTextDatum(last_call.models[i]);
		values[k++] = Int64GetDatum(t->batches);
		values[k++] = Int64GetDatum(t->requests);
		values[k++] = Int64GetDatum(t->retries);
		values[k++] = Int64GetDatum(t->failovers);
		values[k++] = Int64GetDatum(t->tokens_in);
		values[k++] = Int64GetDatum(t->tokens_out);
		values[k++] = Float8GetDatum(t->cost_usd);
		if (t->first_sent != 0 && t->last_answer >= t->first_sent)
			values[k++] = Float8GetDatum((double) (t->last_answer - t->first_sent) / USECS_PER_SEC);
		else
			nulls[k++] = true;
		/* 0.2.0: appended, so that 0.1.0's columns keep their places */
		values[k++] = Int64GetDatum(t->tokens_cached);
		values[k++] = Int64GetDatum(t->tokens_reasoning);
		values[k++] = Int64GetDatum(t->splits);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
