/*-------------------------------------------------------------------------
 *
 * models.c
 *	  ctr_dist.models(provider): the models each provider with a key
 *	  offers, as its API lists them.
 *
 * One GET {base_url}/models per provider (Gemini's in pages), through the
 * same engine as the predictions -- its timeouts, retries, rate limits,
 * breaker and key rules -- run in the calling backend, without workers.
 * Where the URL is and what the list looks like is each provider's
 * (ProviderOps build_models, parse_models).  A provider whose list cannot be
 * had gets a WARNING; the others are still listed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/tuplestore.h"

#include "budget.h"
#include "engine.h"
#include "keys.h"
#include "provider.h"
#include "wait_events.h"

#define MAX_MODELS 4096

/* The providers asked for that have a key; the others are named in *nokey */
static int
models_providers(FunctionCallInfo fcinfo, ProviderConfig *configs, StringInfo nokey)
{
	ProviderId	ids[NUM_PROVIDERS];
	int			nids = 0;
	int			n = 0;

	if (PG_ARGISNULL(0))
	{
		for (int i = 0; i < PROVIDER_MOCK; i++)
			ids[nids++] = (ProviderId) i;
	}
	else
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

		if (!provider_lookup(name, &ids[0]) || ids[0] == PROVIDER_MOCK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown provider \"%s\"", name),
					 errhint("Valid providers are openai, deepseek and gemini, or NULL for all of them.")));
		nids = 1;
	}
	for (int i = 0; i < nids; i++)
	{
		provider_fill_config(ids[i], &configs[n]);
		if (configs[n].api_key[0] == '\0')
			appendStringInfo(nokey, "%s%s", nokey->len ? ", " : "", provider_ops(ids[i])->name);
		else
			n++;
	}
	return n;
}

static void
emit_models(ReturnSetInfo *rsinfo, const ProviderConfig *cfg, const ModelList *list)
{
	for (int i = 0; i < list->n; i++)
	{
		const ModelInfo *m = &list->items[i];
		Datum		values[7];
		bool		nulls[7] = {0};

		values[0] = CStringGetTextDatum(provider_ops(cfg->id)->name);
		values[1] = CStringGetTextDatum(m->id);
		if (m->display_name[0])
			values[2] = CStringGetTextDatum(m->display_name);
		else
			nulls[2] = true;
		values[3] = Int64GetDatum(m->input_limit);
		nulls[3] = m->input_limit == 0;
		values[4] = Int64GetDatum(m->output_limit);
		nulls[4] = m->output_limit == 0;
		/* a valid YYYY-MM-DD or nothing (model_info_add) */
		if (m->shutdown_date[0])
			values[5] = DirectFunctionCall1(date_in, CStringGetDatum(m->shutdown_date));
		else
			nulls[5] = true;
		values[6] = BoolGetDatum(strcmp(m->id, cfg->model) == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

PG_FUNCTION_INFO_V1(ctr_dist_models);

Datum
ctr_dist_models(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProviderConfig *configs;
	ModelList	lists[NUM_PROVIDERS];
	EngineSettings settings;
	CallBudget	budget;
	StringInfoData nokey;
	Engine	   *engine;
	int			n;
	int			pending;

	InitMaterializedSRF(fcinfo, 0);
	initStringInfo(&nokey);
	/* the keys are wiped when this call's memory goes, on error too */
	configs = palloc0(sizeof(ProviderConfig) * NUM_PROVIDERS);
	keys_wipe_at_reset(CurrentMemoryContext, configs, NUM_PROVIDERS);
	n = models_providers(fcinfo, configs, &nokey);
	if (nokey.len > 0)
		ereport(NOTICE,
				(errmsg("skipping providers without an API key: %s", nokey.data),
				 errhint("Name a key file in ctr_dist.<provider>_api_key_file, or set the server environment variable <PROVIDER>_API_KEY.")));
	if (n == 0)
		return (Datum) 0;

	engine_current_settings(&settings);
	budget_init(&budget, 0);
	engine = engine_create(configs, n, &settings, "", &budget);
	for (int i = 0; i < n; i++)
	{
		JobSpec		spec;

		memset(&spec, 0, sizeof(spec));
		memset(&lists[i], 0, sizeof(ModelList));
		lists[i].items = palloc0(sizeof(ModelInfo) * MAX_MODELS);
		lists[i].max = MAX_MODELS;
		spec.batch_no = i;
		spec.provider = configs[i].id;
		spec.models = &lists[i];
		spec.last_resort = true;	/* no failover: use every retry */
		engine_submit(engine, engine_new_job(engine, &spec));
	}

	for (pending = n; pending > 0;)
	{
		EngineJob  *job;

		CHECK_FOR_INTERRUPTS();
		while ((job = engine_next_done(engine)) != NULL)
		{
			const ProviderConfig *cfg = &configs[job->batch_no];

			if (job->cls == OUTCOME_OK)
				emit_models(rsinfo, cfg, &lists[job->batch_no]);
			else
				ereport(WARNING,
						(errmsg("could not list the models of provider \"%s\": %s",
								provider_ops(cfg->id)->name, job->reason),
						 errhint("Check ctr_dist.%s_base_url and the API key.", provider_ops(cfg->id)->name)));
			engine_free_job(job);
			pending--;
		}
		if (pending > 0)
			engine_wait(engine, -1, ctr_wait_event(CTR_WAIT_CALLER_REQUESTS));
	}
	engine_destroy(engine);
	explicit_bzero(configs, sizeof(ProviderConfig) * NUM_PROVIDERS);
	return (Datum) 0;
}
