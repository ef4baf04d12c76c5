/*-------------------------------------------------------------------------
 *
 * predict.c
 *	  ctr_predict(): read personas, plan, send, collect, emit in order.
 *
 * The calling backend streams personas through a cursor and keeps only a
 * sliding window of batches in flight; each batch goes to the provider the
 * plan names, results come back in any order, and rows leave strictly in
 * ord order.  A batch that a provider cannot answer fails over to the next
 * provider in play; only when every provider has failed it do its rows get
 * click = NULL.  Nothing is padded, trimmed or filled in by the mock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "channel.h"
#include "engine.h"
#include "personas.h"
#include "plan.h"
#include "predict.h"
#include "prompt.h"
#include "provider.h"
#include "stats.h"

static char *ctr_providers = NULL;
static double ctr_max_cost = 0;

/* Batches in flight per provider, as a multiple of its concurrency */
#define WINDOW_PER_SLOT 2

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_SENT,
	SLOT_DONE
} SlotState;

typedef struct BatchSlot
{
	SlotState	state;
	int64		batch_no;
	MemoryContext cxt;
	PersonaBatch batch;
	int			play;			/* index in the play list it was sent to */
	uint32		tried;			/* bitmask of play indexes tried */
	bool		answered;
	uint8	   *clicks;
	char	   *model;
} BatchSlot;

typedef struct ProviderTally
{
	int64		batches;		/* answered by this provider */
	int64		outstanding;
	int64		tokens_in;
	int64		tokens_out;
	int64		retries;
	int64		requests;
	int64		throttled;
	int64		transient;
	int64		soft;
	int64		breaker_trips;
	int64		paced_ms;
	int64		failovers;		/* batches it failed that went elsewhere */
	TimestampTz first_sent;
	TimestampTz last_answer;
	bool		out;			/* taken out for the rest of the call */
} ProviderTally;

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

typedef struct CallState
{
	int			nplay;
	ProviderConfig play[NUM_PROVIDERS];
	ProviderTally tally[NUM_PROVIDERS];
	BatchPlan	plan;
	int			next_pick;		/* plan's pick for the next batch, -1: none yet */
	int			window;
	BatchSlot  *slots;
	int64		next_read;
	int64		next_emit;
	int64		failovers;
	int64		null_rows;
	int64		personas;
	int64		emitted;		/* personas already emitted */
	char		over_budget[256];	/* set when the budget stopped the call */
	char		last_failure[CTR_REASON_MAX + 32];

	/* channels start with the first batch: no worker for an empty table */
	ChannelSet *channels;
	EngineSettings settings;
	const char *ad;
	const char *platform;
	MemoryContext rowcxt;		/* per emitted row */
} CallState;

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
	DefineCustomRealVariable("ctr_dist.max_cost_usd",
							 "Budget of one ctr_predict call in USD; 0 means no limit.",
							 "The call stops with an error before a batch whose estimated cost would go over it.",
							 &ctr_max_cost,
							 0, 0, 1e9,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
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
				 errhint("Set ctr_dist.openai_api_key, ctr_dist.deepseek_api_key or ctr_dist.gemini_api_key "
						 "(superuser, e.g. with ALTER SYSTEM), or the server environment variables "
						 "OPENAI_API_KEY, DEEPSEEK_API_KEY or GEMINI_API_KEY.")));
		provider_fill_config(PROVIDER_MOCK, &cs->play[0]);
		weights[0] = 1;
		cs->nplay = 1;
	}
	else if (nokey.len > 0)
		ereport(NOTICE,
				(errmsg("skipping providers without an API key: %s", nokey.data),
				 errhint("Set ctr_dist.<provider>_api_key or the server environment variable <PROVIDER>_API_KEY.")));

	plan_init(&cs->plan, weights, cs->nplay);
	cs->next_pick = -1;
}

/* ---- the window ---- */

static BatchSlot *
slot_for(CallState *cs, int64 batch_no)
{
	return &cs->slots[batch_no % cs->window];
}

static int
play_index(CallState *cs, ProviderId id)
{
	for (int i = 0; i < cs->nplay; i++)
		if (cs->play[i].id == id)
			return i;
	elog(ERROR, "provider %d is not in play", (int) id);
	return -1;
}

/* cost in USD of so many tokens at a provider's prices */
static double
cost_of(const ProviderConfig *cfg, double tokens_in, double tokens_out)
{
	return (tokens_in * cfg->price_input + tokens_out * cfg->price_output) / 1e6;
}

/*
 * Stop before a batch whose estimated cost, with what was spent and what
 * is in flight, would take the call over ctr_dist.max_cost_usd.
 */
static bool
within_budget(CallState *cs, const PersonaBatch *batch, int play)
{
	double		spent = 0;
	double		next;
	double		tokens_in = batch_tokens_in(batch->text_len);
	double		tokens_out = batch_tokens_out(batch->n);

	if (ctr_max_cost <= 0 || cs->play[play].id == PROVIDER_MOCK)
		return true;
	for (int i = 0; i < cs->nplay; i++)
		spent += cost_of(&cs->play[i], cs->tally[i].tokens_in, cs->tally[i].tokens_out) +
			cs->tally[i].outstanding * cost_of(&cs->play[i], tokens_in, tokens_out);
	next = cost_of(&cs->play[play], tokens_in, tokens_out);
	if (spent + next <= ctr_max_cost)
		return true;
	snprintf(cs->over_budget, sizeof(cs->over_budget),
			 "About $%.4f is spent or in flight after " INT64_FORMAT " batches; the next batch would cost about $%.4f.",
			 spent, cs->next_read, next);
	return false;
}

/* Once over budget, nothing more is sent; the call fails when the rest is in */
static void
raise_over_budget(CallState *cs)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("ctr_predict stopped before going over its budget of $%.4f", ctr_max_cost),
			 errdetail_internal("%s", cs->over_budget),
			 errhint("Raise ctr_dist.max_cost_usd, or set it to 0 for no limit.")));
}

static void
send_slot(CallState *cs, BatchSlot *slot, int play)
{
	ProviderConfig *cfg = &cs->play[play];

	if (cs->channels == NULL)
		cs->channels = channels_start(cs->play, cs->nplay, &cs->settings,
									  cs->ad, cs->platform);

	slot->play = play;
	slot->tried |= (1u << play);
	slot->state = SLOT_SENT;
	if (cs->tally[play].first_sent == 0)
		cs->tally[play].first_sent = GetCurrentTimestamp();
	cs->tally[play].outstanding++;
	channels_send(cs->channels, slot->batch_no, cfg->id, slot->batch.text,
				  slot->batch.text_len, slot->batch.n);
}

/* Read and send batches while the window and the planned provider allow */
static void
fill_window(CallState *cs, PersonaReader *reader,
			int batch_size, const char *call_text)
{
	while (!reader->eof && cs->over_budget[0] == '\0' &&
		   cs->next_read - cs->next_emit < cs->window)
	{
		BatchSlot  *slot;
		MemoryContext old;

		if (cs->next_pick < 0 || cs->tally[cs->next_pick].out)
			cs->next_pick = plan_next(&cs->plan);
		if (cs->next_pick >= 0 &&
			cs->tally[cs->next_pick].outstanding >=
			(int64) WINDOW_PER_SLOT * cs->play[cs->next_pick].max_concurrency)
			break;

		slot = slot_for(cs, cs->next_read);
		Assert(slot->state == SLOT_FREE);
		old = MemoryContextSwitchTo(slot->cxt);
		if (!persona_reader_next(reader, batch_size, call_text, &slot->batch))
		{
			MemoryContextSwitchTo(old);
			break;
		}
		MemoryContextSwitchTo(old);
		slot->batch_no = cs->next_read++;
		slot->tried = 0;
		slot->answered = false;
		cs->personas += slot->batch.n;
		if (cs->next_pick < 0)
		{
			/* every provider is out: nobody can answer, the rows say NULL */
			slot->state = SLOT_DONE;
			cs->null_rows += slot->batch.n;
			continue;
		}
		if (!within_budget(cs, &slot->batch, cs->next_pick))
		{
			/* never sent: the call stops once what is in flight is back */
			slot->state = SLOT_DONE;
			return;
		}
		send_slot(cs, slot, cs->next_pick);
		cs->next_pick = -1;
	}
}

static void
provider_out(CallState *cs, int play, const ChannelResult *res)
{
	const char *name = provider_ops(cs->play[play].id)->name;
	const char *setting;

	if (cs->tally[play].out)
		return;
	cs->tally[play].out = true;
	plan_remove(&cs->plan, play);

	if (strstr(res->reason, "key"))
		setting = "api_key";
	else if (strstr(res->reason, "404"))
		setting = "model";
	else if (strstr(res->reason, "quota") || strstr(res->reason, "balance"))
		setting = "weight";
	else
		setting = "base_url";
	ereport(WARNING,
			(errmsg("provider \"%s\" is taken out of this call: %s", name, res->reason),
			 errhint("Check ctr_dist.%s_%s; its batches go to the other providers.", name, setting)));
}

/* A result came back: keep it, or send the batch to the next provider */
static void
handle_result(CallState *cs, const ChannelResult *res)
{
	BatchSlot  *slot = slot_for(cs, res->batch_no);
	int			play = play_index(cs, res->provider);
	ProviderTally *t = &cs->tally[play];

	if (slot->state != SLOT_SENT || slot->batch_no != res->batch_no)
		elog(ERROR, "result for unknown batch " INT64_FORMAT, res->batch_no);

	t->outstanding--;
	t->tokens_in += res->tokens_in;
	t->tokens_out += res->tokens_out;
	t->retries += res->retries;
	t->requests += res->counters.requests;
	t->throttled += res->counters.throttled;
	t->transient += res->counters.transient;
	t->soft += res->counters.soft;
	t->breaker_trips += res->counters.breaker_trips;
	t->paced_ms += res->counters.paced_ms;
	t->last_answer = GetCurrentTimestamp();

	if (res->cls == OUTCOME_OK)
	{
		if (res->n != slot->batch.n)
			elog(ERROR, "result for batch " INT64_FORMAT " has %d answers, expected %d",
				 res->batch_no, res->n, slot->batch.n);
		slot->clicks = MemoryContextAlloc(slot->cxt, res->n);
		memcpy(slot->clicks, res->clicks, res->n);
		slot->model = MemoryContextStrdup(slot->cxt,
										  res->model && res->model[0] ? res->model : cs->play[play].model);
		slot->answered = true;
		slot->state = SLOT_DONE;
		t->batches++;
		return;
	}

	if (res->cls == OUTCOME_FATAL)
		provider_out(cs, play, res);
	else if (res->cls == OUTCOME_BUG)
		ereport(WARNING,
				(errmsg("provider \"%s\" rejected the request for batch " INT64_FORMAT ": %s",
						provider_ops(res->provider)->name, res->batch_no + 1, res->reason),
				 errdetail("This is a bug in ctr_dist or an incompatible API change; please report it.")));

	/* fail over to the next provider in play that has not tried it */
	for (int k = 1; k < cs->nplay; k++)
	{
		int			next = (play + k) % cs->nplay;

		if (!cs->tally[next].out && !(slot->tried & (1u << next)))
		{
			cs->failovers++;
			t->failovers++;
			stats_count_failover(res->provider);
			send_slot(cs, slot, next);
			return;
		}
	}
	slot->answered = false;
	slot->state = SLOT_DONE;
	cs->null_rows += slot->batch.n;
	/* a breaker bounce says less than the failure that opened the breaker */
	if (cs->last_failure[0] == '\0' || strncmp(res->reason, "circuit breaker", 15) != 0)
		snprintf(cs->last_failure, sizeof(cs->last_failure), "%s: %s",
				 provider_ops(res->provider)->name, res->reason);
	ereport(DEBUG1,
			(errmsg("batch " INT64_FORMAT " could not be answered: %s", res->batch_no + 1, res->reason)));
}

/* Emit every finished batch at the head of the window; true if any */
static bool
emit_ready(CallState *cs, ReturnSetInfo *rsinfo)
{
	bool		emitted = false;

	for (;;)
	{
		BatchSlot  *slot = slot_for(cs, cs->next_emit);

		if (cs->next_emit >= cs->next_read || slot->state != SLOT_DONE)
			return emitted;
		emitted = true;
		for (int i = 0; i < slot->batch.n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(cs->rowcxt);
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};

			values[0] = Int64GetDatum(slot->batch.first_ord + i);
			if (slot->batch.keys[i])
				values[1] = CStringGetTextDatum(slot->batch.keys[i]);
			else
				nulls[1] = true;
			if (slot->answered)
			{
				values[2] = Int32GetDatum(slot->clicks[i]);
				values[3] = CStringGetTextDatum(provider_ops(cs->play[slot->play].id)->name);
				values[4] = CStringGetTextDatum(slot->model);
			}
			else
				nulls[2] = nulls[3] = nulls[4] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(old);
			MemoryContextReset(cs->rowcxt);
		}
		cs->emitted += slot->batch.n;
		MemoryContextReset(slot->cxt);
		slot->state = SLOT_FREE;
		cs->next_emit++;
	}
}

static void
report(CallState *cs)
{
	StringInfoData per;
	ProviderTally sum;
	double		cost = 0;

	memset(&sum, 0, sizeof(sum));
	initStringInfo(&per);
	for (int i = 0; i < cs->nplay; i++)
	{
		ProviderTally *t = &cs->tally[i];

		appendStringInfo(&per, "%s%s=" INT64_FORMAT, i ? ", " : "",
						 provider_ops(cs->play[i].id)->name, t->batches);
		sum.requests += t->requests;
		sum.tokens_in += t->tokens_in;
		sum.tokens_out += t->tokens_out;
		sum.retries += t->retries;
		sum.throttled += t->throttled;
		sum.transient += t->transient;
		sum.soft += t->soft;
		sum.breaker_trips += t->breaker_trips;
		sum.paced_ms += t->paced_ms;
		cost += (t->tokens_in * cs->play[i].price_input +
				 t->tokens_out * cs->play[i].price_output) / 1e6;
	}
	if (cs->null_rows > 0)
		ereport(WARNING,
				(errmsg(INT64_FORMAT " of " INT64_FORMAT " personas got no prediction (click is NULL)",
						cs->null_rows, cs->personas),
				 errdetail("Every provider in play failed their batches; the last error was %s.",
						   cs->last_failure)));
	ereport(NOTICE,
			(errmsg("ctr_predict: " INT64_FORMAT " personas in " INT64_FORMAT " batches: %s",
					cs->personas, cs->next_read, per.data),
			 errdetail("requests " INT64_FORMAT ", retries " INT64_FORMAT
					   " (rate-limited " INT64_FORMAT ", transient " INT64_FORMAT
					   ", bad answers " INT64_FORMAT "), failovers " INT64_FORMAT
					   ", breaker trips " INT64_FORMAT ", rate-limit waits %.1f batch-s"
					   ", tokens in " INT64_FORMAT ", out " INT64_FORMAT ", estimated cost $%.4f",
					   sum.requests, sum.retries, sum.throttled, sum.transient, sum.soft,
					   cs->failovers, sum.breaker_trips, sum.paced_ms / 1000.0,
					   sum.tokens_in, sum.tokens_out, cost)));
}

/* Keep the last call's totals and the shared progress up to date */
static void
note_progress(CallState *cs)
{
	int64		done[NUM_PROVIDERS] = {0};
	int64		personas_done = 0;

	memcpy(last_call.tally, cs->tally, sizeof(last_call.tally));
	for (int i = 0; i < cs->nplay; i++)
		done[cs->play[i].id] = cs->tally[i].batches;
	for (int64 b = cs->next_emit; b < cs->next_read; b++)
		if (slot_for(cs, b)->state == SLOT_DONE)
			personas_done += slot_for(cs, b)->batch.n;
	progress_update(cs->emitted + personas_done, done);
}

static void
start_last_call(CallState *cs)
{
	memset(&last_call, 0, sizeof(last_call));
	last_call.nplay = cs->nplay;
	for (int i = 0; i < cs->nplay; i++)
	{
		last_call.ids[i] = cs->play[i].id;
		strlcpy(last_call.models[i], cs->play[i].model, CTR_MODEL_MAX);
		last_call.prices[i][0] = cs->play[i].price_input;
		last_call.prices[i][1] = cs->play[i].price_output;
	}
}

static void
run_prediction(CallState *cs, Oid relid, int batch_size, const char *ad,
			   const char *platform, ReturnSetInfo *rsinfo)
{
	PersonaReader reader;
	char	   *call_text = prompt_call_text(ad, platform);
	int			concurrency = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	persona_reader_open(&reader, relid);
	start_last_call(cs);
	if (stats_shared())
		progress_begin(relid, persona_reader_count(&reader), batch_size, CurrentMemoryContext);

	for (int i = 0; i < cs->nplay; i++)
		concurrency += WINDOW_PER_SLOT * cs->play[i].max_concurrency;
	cs->window = concurrency + cs->nplay;
	cs->slots = palloc0(sizeof(BatchSlot) * cs->window);
	for (int i = 0; i < cs->window; i++)
		cs->slots[i].cxt = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist batch",
												 ALLOCSET_DEFAULT_SIZES);

	engine_current_settings(&cs->settings);
	cs->ad = ad;
	cs->platform = platform;
	cs->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist row",
									   ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		ChannelResult res;
		bool		progress = false;

		CHECK_FOR_INTERRUPTS();
		fill_window(cs, &reader, batch_size, call_text);
		if (cs->over_budget[0] != '\0')
		{
			int64		outstanding = 0;

			for (int i = 0; i < cs->nplay; i++)
				outstanding += cs->tally[i].outstanding;
			if (outstanding == 0)
				raise_over_budget(cs);
		}
		if (cs->channels == NULL)
			break;				/* nothing to read at all */
		while (channels_receive(cs->channels, &res))
		{
			handle_result(cs, &res);
			progress = true;
		}
		if (progress)
			note_progress(cs);
		/* over budget, no row is emitted: the call ends in an error */
		if (cs->over_budget[0] == '\0' && emit_ready(cs, rsinfo))
			progress = true;
		if (reader.eof && cs->next_emit == cs->next_read)
			break;
		/* sleep only when nothing moved: results free room in the window */
		if (!progress)
			channels_wait(cs->channels);
	}

	if (cs->channels)
		channels_finish(cs->channels);
	note_progress(cs);
	/* the keys are no longer needed in this backend */
	for (int i = 0; i < cs->nplay; i++)
		explicit_bzero(cs->play[i].api_key, sizeof(cs->play[i].api_key));
	persona_reader_close(&reader);
	SPI_finish();
	if (cs->next_read > 0)
		report(cs);
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

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("personas must not be NULL")));
	relid = PG_GETARG_OID(0);

	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 || PG_GETARG_INT32(1) > CTR_MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and %d", CTR_MAX_BATCH)));
	batch_size = PG_GETARG_INT32(1);

	ad = PG_ARGISNULL(2) ? ctr_ad : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (ad == NULL || ad[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no ad to predict clicks for"),
				 errhint("Pass it as ctr_predict(..., ad => '...') or set it with SET ctr_dist.ad = '...'.")));

	platform = PG_ARGISNULL(3) ? ctr_platform : text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (platform == NULL || platform[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("platform must not be empty"),
				 errhint("Pass a platform such as 'facebook', or NULL to use ctr_dist.platform.")));

	InitMaterializedSRF(fcinfo, 0);

	cs = palloc0(sizeof(CallState));
	choose_providers(cs, PG_ARGISNULL(4) ? NULL : PG_GETARG_ARRAYTYPE_P(4));
	run_prediction(cs, relid, batch_size, ad, platform, rsinfo);

	return (Datum) 0;
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
