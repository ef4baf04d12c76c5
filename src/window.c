/*-------------------------------------------------------------------------
 *
 * window.c
 *	  One ctr_predict call: read, send, collect, emit in order.
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

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "prompt.h"
#include "stats.h"
#include "window.h"

static double ctr_max_cost = 0;

/* Batches in flight per provider, as a multiple of its concurrency */
#define WINDOW_PER_SLOT 2

void
window_define_settings(void)
{
	DefineCustomRealVariable("ctr_dist.max_cost_usd",
							 "Budget of one ctr_predict call in USD; 0 means no limit.",
							 "The call stops with an error before a batch whose estimated cost would go over it.",
							 &ctr_max_cost,
							 0, 0, 1e9,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

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

/* The budget refused a request (budget.h): nothing more is read or sent */
static bool
over_budget(CallState *cs)
{
	return cs->channels != NULL && budget_stopped(channels_budget(cs->channels));
}

/* Once over budget the call fails, when what is in flight is back */
static void
raise_over_budget(CallState *cs)
{
	CallBudget	b;

	budget_read(channels_budget(cs->channels), &b);
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("ctr_predict stopped before going over its budget of $%.4f", b.limit_usd),
			 errdetail("The providers report $%.4f spent; the next request could have cost up to $%.4f more, so it was not sent.",
					   b.spent_usd, b.refused_usd),
			 errhint("Raise ctr_dist.max_cost_usd, or set it to 0 for no limit.")));
}

/* Another provider that could still take this batch, besides play? */
static bool
has_alternative(CallState *cs, const BatchSlot *slot, int play)
{
	for (int i = 0; i < cs->nplay; i++)
		if (i != play && !cs->tally[i].out && !(slot->tried & (1u << i)))
			return true;
	return false;
}

static void
send_slot(CallState *cs, BatchSlot *slot, int play)
{
	ProviderConfig *cfg = &cs->play[play];

	bool		last_resort;

	if (cs->channels == NULL)
		cs->channels = channels_start(cs->play, cs->nplay, &cs->settings,
									  cs->ad, cs->platform, ctr_max_cost);

	/* with nowhere else to go, it waits out this provider's trouble */
	last_resort = !has_alternative(cs, slot, play);
	slot->play = play;
	slot->tried |= (1u << play);
	slot->state = SLOT_SENT;
	if (cs->tally[play].first_sent == 0)
		cs->tally[play].first_sent = GetCurrentTimestamp();
	cs->tally[play].outstanding++;
	channels_send(cs->channels, slot->batch_no, cfg->id, slot->batch.text,
				  slot->batch.text_len, slot->batch.n, last_resort);
}

/* Read and send batches while the window and the planned provider allow */
static void
fill_window(CallState *cs, PersonaReader *reader,
			int batch_size, const char *call_text)
{
	while (!reader->eof && !over_budget(cs) &&
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
	t->answered += res->counters.answered;
	t->throttled += res->counters.throttled;
	t->transient += res->counters.transient;
	t->soft += res->counters.soft;
	t->fatal += res->counters.fatal;
	t->rejected += res->counters.rejected;
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

	if (res->cls == OUTCOME_BUDGET)
	{
		/* never sent: its rows stay empty, and the call ends in an error */
		slot->answered = false;
		slot->state = SLOT_DONE;
		return;
	}
	if (res->cls == OUTCOME_FATAL)
		provider_out(cs, play, res);
	else if (res->cls == OUTCOME_BUG && t->rejected_reason[0] == '\0')
		strlcpy(t->rejected_reason, res->reason, sizeof(t->rejected_reason));

	/* fail over to the next provider in play that has not tried it */
	for (int k = 1; k < cs->nplay && !over_budget(cs); k++)
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
	/*
	 * Nowhere else to go, but this provider sent it back before it had used
	 * its retries (its circuit breaker opened): it goes back, to wait for the
	 * provider's recovery.  A batch is given up only when every provider in
	 * play did all it could.
	 */
	if (!res->exhausted && !t->out && !over_budget(cs))
	{
		send_slot(cs, slot, play);
		return;
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

/* Keep the last call's totals and the shared progress up to date */
static void
note_progress(CallState *cs)
{
	int64		done[NUM_PROVIDERS] = {0};
	int64		personas_done = 0;

	report_call_tallies(cs->tally);
	for (int i = 0; i < cs->nplay; i++)
		done[cs->play[i].id] = cs->tally[i].batches;
	for (int64 b = cs->next_emit; b < cs->next_read; b++)
		if (slot_for(cs, b)->state == SLOT_DONE)
			personas_done += slot_for(cs, b)->batch.n;
	progress_update(cs->emitted + personas_done, done);
}

void
window_run(CallState *cs, Oid relid, int batch_size, const char *ad,
		   const char *platform, ReturnSetInfo *rsinfo)
{
	PersonaReader reader;
	char	   *call_text = prompt_call_text(ad, platform);
	int			concurrency = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	persona_reader_open(&reader, relid);
	report_call_started(cs->play, cs->nplay);
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
		if (over_budget(cs))
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
		if (!over_budget(cs) && emit_ready(cs, rsinfo))
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
		report_call_end(cs->play, cs->tally, cs->nplay, cs->personas, cs->next_read,
						cs->failovers, cs->null_rows, cs->last_failure);
}
