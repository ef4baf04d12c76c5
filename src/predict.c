/*-------------------------------------------------------------------------
 *
 * predict.c
 *	  ctr_predict() and ctr_dist.plan(): arguments, the providers in play.
 *
 * Checks what the caller asked for, picks the providers that can answer
 * (asked for, with a key and a weight; else the mock), and hands the call
 * to the window (window.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "encoding.h"
#include "keys.h"
#include "plan.h"
#include "predict.h"
#include "prompt.h"
#include "provider.h"
#include "window.h"

static char *ctr_providers = NULL;

static bool
check_providers(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *names;
	ListCell   *lc;
	bool		ok = true;

	if (!SplitIdentifierString(copy, ',', &names) || names == NIL)
	{
		GUC_check_errdetail("List one or more of openai, deepseek, gemini and mock, separated by commas.");
		ok = false;
	}
	foreach(lc, names)
	{
		ProviderId	id;

		if (ok && !provider_lookup((char *) lfirst(lc), &id))
		{
			GUC_check_errdetail("Unknown provider \"%s\"; valid providers are openai, deepseek, gemini and mock.",
								(char *) lfirst(lc));
			ok = false;
		}
		if (ok && id == PROVIDER_MOCK && list_length(names) > 1)
		{
			GUC_check_errdetail("The mock cannot be listed with other providers: list it alone to force it.");
			ok = false;
		}
	}
	list_free(names);
	pfree(copy);
	return ok;
}

void
predict_define_settings(void)
{
	DefineCustomStringVariable("ctr_dist.providers",
							   "Providers ctr_predict spreads batches over, in plan order.",
							   NULL,
							   &ctr_providers,
							   "openai,deepseek,gemini",
							   PGC_USERSET, GUC_LIST_INPUT,
							   check_providers, NULL, NULL);
}

/* ---- arguments ---- */

static void
add_requested(ProviderId *ids, int *n, const char *name)
{
	ProviderId	id;

	if (!provider_lookup(name, &id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown provider \"%s\"", name),
				 errhint("Valid providers are openai, deepseek, gemini and mock.")));
	for (int i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	ids[(*n)++] = id;
}

/* The providers asked for, from the argument or the setting, in order */
static int
requested_providers(ArrayType *arg, ProviderId *ids)
{
	int			n = 0;

	if (arg != NULL)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		deconstruct_array(arg, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
		for (int i = 0; i < nelems; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("provider names must not be NULL"),
						 errhint("Valid providers are openai, deepseek, gemini and mock.")));
			add_requested(ids, &n, TextDatumGetCString(elems[i]));
		}
	}
	else
	{
		char	   *copy = pstrdup(ctr_providers);
		List	   *names;
		ListCell   *lc;

		if (!SplitIdentifierString(copy, ',', &names))
			names = NIL;
		foreach(lc, names)
			add_requested(ids, &n, (char *) lfirst(lc));
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no providers given"),
				 errhint("Valid providers are openai, deepseek, gemini and mock.")));
	/* the mock never stands in for a provider: it answers alone or not at all */
	for (int i = 0; i < n && n > 1; i++)
		if (ids[i] == PROVIDER_MOCK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the mock cannot be listed with other providers"),
					 errhint("List mock alone to force the offline mock; with real providers it would answer for them when they fail.")));
	return n;
}

/* Providers in play: asked for, with a key and a weight; else the mock */
static void
choose_providers(CallState *cs, ArrayType *arg)
{
	ProviderId	ids[NUM_PROVIDERS];
	int			nreq = requested_providers(arg, ids);
	int			weights[NUM_PROVIDERS];
	StringInfoData nokey;

	initStringInfo(&nokey);
	cs->nplay = 0;
	for (int i = 0; i < nreq; i++)
	{
		ProviderConfig *cfg = &cs->play[cs->nplay];

		if (provider_weight(ids[i]) <= 0)
			continue;
		provider_fill_config(ids[i], cfg);
		if (ids[i] != PROVIDER_MOCK && cfg->api_key[0] == '\0')
		{
			appendStringInfo(&nokey, "%s%s", nokey.len ? ", " : "", provider_ops(ids[i])->name);
			continue;
		}
		weights[cs->nplay++] = provider_weight(ids[i]);
	}

	if (cs->nplay == 0)
	{
		ereport(NOTICE,
				(errmsg("no API key is set for %s: the offline mock predictor is answering",
						nokey.len ? nokey.data : "the providers asked for"),
				 errhint("Name a key file in ctr_dist.openai_api_key_file, ctr_dist.deepseek_api_key_file or "
						 "ctr_dist.gemini_api_key_file (superuser), or set the server environment variable "
						 "OPENAI_API_KEY, DEEPSEEK_API_KEY or GEMINI_API_KEY.")));
		provider_fill_config(PROVIDER_MOCK, &cs->play[0]);
		weights[0] = 1;
		cs->nplay = 1;
	}
	else if (nokey.len > 0)
		ereport(NOTICE,
				(errmsg("skipping providers without an API key: %s", nokey.data),
				 errhint("Name a key file in ctr_dist.<provider>_api_key_file, or set the server environment variable <PROVIDER>_API_KEY.")));

	plan_init(&cs->plan, weights, cs->nplay);
	cs->next_pick = -1;
}

/* ---- what every call checks, shared with the comparisons ---- */

int
call_batch_size(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno) || PG_GETARG_INT32(argno) < 1 || PG_GETARG_INT32(argno) > CTR_MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and %d", CTR_MAX_BATCH)));
	return PG_GETARG_INT32(argno);
}

char *
call_platform(FunctionCallInfo fcinfo, int argno)
{
	char	   *platform = PG_ARGISNULL(argno) ? ctr_platform : text_to_cstring(PG_GETARG_TEXT_PP(argno));

	if (platform == NULL || platform[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("platform must not be empty"),
				 errhint("Pass a platform such as 'facebook', or NULL to use ctr_dist.platform.")));
	return platform;
}

Oid
call_personas(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("personas must not be NULL")));
	return PG_GETARG_OID(argno);
}

/* A call's state, its providers chosen; their keys are wiped however it ends */
CallState *
call_start(FunctionCallInfo fcinfo, int providers_argno)
{
	CallState  *cs = palloc0(sizeof(CallState));

	keys_wipe_at_reset(CurrentMemoryContext, cs->play, NUM_PROVIDERS);
	choose_providers(cs, PG_ARGISNULL(providers_argno) ? NULL : PG_GETARG_ARRAYTYPE_P(providers_argno));
	return cs;
}

/*
 * Run a call.  Not inside another one: a call whose personas come from a
 * query that itself runs ctr_predict would wait for rate-limit slots that
 * the outer call holds in this very backend, which nobody can give back
 * while the inner call runs.
 */
static int	calls_running = 0;

void
call_run(CallState *cs, Oid relid, int batch_size)
{
	if (calls_running > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot run inside another ctr_dist call", cs->what),
				 errdetail("The personas of a call were read by a query that calls ctr_dist again."),
				 errhint("Store the inner call's results in a table first, and read the personas from there.")));
	calls_running++;
	PG_TRY();
	{
		window_run(cs, relid, batch_size);
	}
	PG_FINALLY();
	{
		calls_running--;
	}
	PG_END_TRY();
}

/* ---- ctr_predict ---- */

typedef struct PredictRows
{
	ReturnSetInfo *rsinfo;
	MemoryContext rowcxt;		/* a batch of emitted rows */
} PredictRows;

/* a finished batch: one row per persona, NULL answer, provider, model if none */
static void
predict_batch_done(CallState *cs, const BatchSlot *slot, void *arg)
{
	PredictRows *out = (PredictRows *) arg;
	const AdAnswer *ad = &slot->ads[0];
	text	   *provider = NULL;
	text	   *model = NULL;

	if (ad->answered)
	{
		provider = cstring_to_text(provider_ops(cs->play[ad->play].id)->name);
		model = cstring_to_text(ad->model);
	}
	for (int i = 0; i < slot->batch.n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(out->rowcxt);
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = Int64GetDatum(slot->batch.first_ord + i);
		if (slot->batch.keys[i])
			values[1] = CStringGetTextDatum(slot->batch.keys[i]);
		else
			nulls[1] = true;
		if (ad->answered)
		{
			values[2] = Int32GetDatum(ad->values[i]);
			values[3] = PointerGetDatum(provider);
			values[4] = PointerGetDatum(model);
		}
		else
			nulls[2] = nulls[3] = nulls[4] = true;
		tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	/* a batch's key texts at most: freed once, not row by row */
	MemoryContextReset(out->rowcxt);
	if (provider)
		pfree(provider);
	if (model)
		pfree(model);
}

PG_FUNCTION_INFO_V1(ctr_predict);

Datum
ctr_predict(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CallState  *cs;
	Oid			relid;
	int			batch_size;
	char	   *ad;
	char	   *platform;
	PredictRows rows;

	/* ctr_dist.last_call_stats() must not show a previous call's totals */
	report_call_reset();

	relid = call_personas(fcinfo, 0);
	batch_size = call_batch_size(fcinfo, 1);
	ad = PG_ARGISNULL(2) ? ctr_ad : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (ad == NULL || ad[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no ad to predict clicks for"),
				 errhint("Pass it as ctr_predict(..., ad => '...') or set it with SET ctr_dist.ad = '...'.")));
	platform = call_platform(fcinfo, 3);

	InitMaterializedSRF(fcinfo, 0);

	cs = call_start(fcinfo, 4);
	cs->what = "ctr_predict";
	cs->nads = 1;
	cs->ads = (const char *const *) palloc(sizeof(char *));
	((const char **) cs->ads)[0] = ctr_to_utf8(ad);	/* providers read UTF-8 */
	cs->platform = ctr_to_utf8(platform);
	cs->kind = ANSWER_CLICK;
	rows.rsinfo = rsinfo;
	rows.rowcxt = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist row",
										ALLOCSET_SMALL_SIZES);
	cs->sink.batch_done = predict_batch_done;
	cs->sink.arg = &rows;
	call_run(cs, relid, batch_size);

	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_plan);

/*
 * ctr_dist.plan(batches, providers): the plan for so many batches by the
 * current weights, without looking at keys.  Shows what ctr_predict would
 * do, and lets the plan be tested on its own.
 */
Datum
ctr_dist_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProviderId	ids[NUM_PROVIDERS];
	int			weights[NUM_PROVIDERS];
	int64		counts[NUM_PROVIDERS] = {0};
	int			n;
	int64		batches;
	BatchPlan	plan;

	if (PG_ARGISNULL(0) || PG_GETARG_INT64(0) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batches must be zero or more")));
	batches = PG_GETARG_INT64(0);
	n = requested_providers(PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), ids);
	for (int i = 0; i < n; i++)
		weights[i] = provider_weight(ids[i]);
	plan_init(&plan, weights, n);
	for (int64 b = 0; b < batches; b++)
	{
		int			slot = plan_next(&plan);

		if (slot < 0)
			break;
		counts[slot]++;
		CHECK_FOR_INTERRUPTS();
	}

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(provider_ops(ids[i])->name);
		values[1] = Int64GetDatum(counts[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
