/*-------------------------------------------------------------------------
 *
 * window.c
 *	  One call: read, send, collect, hand batches on in order.
 *
 * The calling backend streams personas through a cursor and keeps only a
 * sliding window of batches in flight.  Each batch goes to the provider the
 * plan names, once per ad of the call; answers come back in any order, and
 * batches leave strictly in ord order, each with every ad answered or given
 * up.  A request that a provider cannot answer fails over to the next
 * provider in play; only when every provider did all it could do its
 * answers stay NULL.  Nothing is padded, trimmed or filled in by the mock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "budget.h"
#include "prompt.h"
#include "stats.h"
#include "window.h"

static double ctr_max_cost = 0;

/* Batches in the window, as a multiple of those that can be in flight */
#define WINDOW_AHEAD 16
#define WINDOW_MAX_SLOTS 8192
/*
 * Prompt text the window may hold (the persona blocks of batches not done
 * yet; the copies the channels make are bounded by the requests outstanding
 * per provider): with long personas and big batches this binds before the
 * counts above do.  One batch is always allowed.
 */
#define WINDOW_MAX_TEXT_BYTES (64 * 1024 * 1024)

void
window_define_settings(void)
{
	DefineCustomRealVariable("ctr_dist.max_cost_usd",
							 "Budget of one call in USD; 0 means no limit.",
							 "No request leaves that could take the call over it; the call then fails.",
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
bool
window_over_budget(CallState *cs)
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
			 errmsg("%s stopped before going over its budget of $%.4f", cs->what, b.limit_usd),
			 errdetail("The providers report $%.4f spent; the next request could have cost up to $%.4f more, so it was not sent.",
					   b.spent_usd, b.refused_usd),
			 errhint("Raise ctr_dist.max_cost_usd, or set it to 0 for no limit.")));
}

/* Another provider that could still take this request, besides play? */
static bool
has_alternative(CallState *cs, const AdAnswer *ad, int play)
{
	for (int i = 0; i < cs->nplay; i++)
		if (i != play && !cs->tally[i].out && !(ad->tried & (1u << i)))
			return true;
	return false;
}

/*
 * The prompt cache key of a batch, the same for every ad and every retry.
 * It only steers requests with the same prefix to the same cache (OpenAI's
 * prompt_cache_key), so a long block is known by its length, its first and
 * its last 1 kB (a persona or two each): hashing every byte cost more than
 * escaping them.
 */
static uint64
block_cache_key(const PersonaBatch *batch)
{
	const unsigned char *text = (const unsigned char *) batch->text;
	int			len = batch->text_len;
	uint64		key;

	if (len <= 2048)
		return hash_bytes_extended(text, len, 0);
	key = hash_bytes_extended(text, 1024, (uint64) len);
	return hash_bytes_extended(text + len - 1024, 1024, key);
}

void
window_send_ad(CallState *cs, BatchSlot *slot, int a, int play)
{
	AdAnswer   *ad = &slot->ads[a];
	JobSpec		spec;

	if (cs->channels == NULL)
		cs->channels = channels_start(cs->play, cs->nplay, &cs->settings,
									  cs->platform, ctr_max_cost);
	memset(&spec, 0, sizeof(spec));
	spec.batch_no = slot->batch_no;
	spec.ad_no = a;
	spec.provider = cs->play[play].id;
	spec.n = slot->batch.n;
	spec.kind = cs->kind;
	/* the persona block (whose last line ends), then the ad: joined as sent */
	Assert(slot->batch.text_len > 0 && slot->batch.text[slot->batch.text_len - 1] == '\n');
	spec.text = slot->batch.text;
	spec.text_len = slot->batch.text_len;
	spec.tail = cs->ad_texts[a];
	spec.tail_len = cs->ad_text_lens[a];
	spec.ad = cs->ads[a];
	spec.cache_key = slot->cache_key;
	/* with nowhere else to go, it waits out this provider's trouble */
	spec.last_resort = !has_alternative(cs, ad, play);

	if (ad->tried != 0)
		cs->resent = true;		/* not its first request: no holding back */
	ad->play = play;
	ad->tried |= (1u << play);
	ad->state = SLOT_SENT;
	ad->inflight++;
	ad->sent_at = GetCurrentTimestamp();
	if (cs->tally[play].first_sent == 0)
		cs->tally[play].first_sent = ad->sent_at;
	cs->tally[play].outstanding++;
	cs->hedge.sends++;
	/* the channel keeps its own copy of the text */
	channels_send(cs->channels, &spec);
}

/*
 * A comparison wants each batch's persona block long enough for providers'
 * prompt caches (they discount only a shared prefix above a threshold of
 * tokens).  After the first batch, whose block measures the personas, later
 * batches grow to pass it with a quarter to spare, up to the largest batch.
 */
static void
grow_batches(CallState *cs, const PersonaBatch *first)
{
	double		tokens = first->text_len / 4.0;	/* as the estimates count */
	int			want;

	if (cs->min_prefix_tokens <= 0 || first->n < cs->batch_size ||
		tokens >= cs->min_prefix_tokens)
		return;
	want = (int) ceil(cs->batch_size * 1.25 * cs->min_prefix_tokens / Max(tokens, 1.0));
	want = Min(want, CTR_MAX_BATCH);
	if (want <= cs->batch_size)
		return;
	ereport(NOTICE,
			(errmsg("%s uses batches of %d personas, not %d", cs->what, want, cs->batch_size),
			 errdetail("A batch of %d makes a persona block of about %.0f tokens; providers cache a shared prefix only from about %d.",
					   cs->batch_size, tokens, cs->min_prefix_tokens)));
	cs->batch_size = want;
}

/* Read and send batches while the window and the planned provider allow */
static void
fill_window(CallState *cs, PersonaReader *reader)
{
	while (!reader->eof && !window_over_budget(cs) &&
		   cs->next_read - cs->next_emit < cs->window &&
		   (cs->text_bytes < WINDOW_MAX_TEXT_BYTES || cs->next_read == cs->next_emit))
	{
		BatchSlot  *slot;
		MemoryContext old;

		if (cs->next_pick < 0 || cs->tally[cs->next_pick].out)
			cs->next_pick = plan_next(&cs->plan);
		/* room for every ad of the batch, or the batch waits */
		if (cs->next_pick >= 0 &&
			cs->tally[cs->next_pick].outstanding + cs->nads >
			Max((int64) WINDOW_PER_SLOT * cs->play[cs->next_pick].max_concurrency, cs->nads))
			break;

		slot = slot_for(cs, cs->next_read);
		Assert(slot->state == SLOT_FREE);
		old = MemoryContextSwitchTo(slot->cxt);
		if (!persona_reader_next(reader, cs->batch_size, "", &slot->batch))
		{
			MemoryContextSwitchTo(old);
			break;
		}
		slot->ads = palloc0(sizeof(AdAnswer) * cs->nads);
		MemoryContextSwitchTo(old);
		cs->text_bytes += slot->batch.text_len;
		if (cs->next_read == 0)
			grow_batches(cs, &slot->batch);
		slot->batch_no = cs->next_read++;
		slot->cache_key = block_cache_key(&slot->batch);
		slot->pending = cs->nads;
		slot->state = SLOT_SENT;
		cs->personas += slot->batch.n;
		if (cs->next_pick < 0)
		{
			/* every provider is out: nobody can answer, the rows say NULL */
			for (int a = 0; a < cs->nads; a++)
				slot->ads[a].state = SLOT_DONE;
			slot->pending = 0;
			slot->state = SLOT_DONE;
			cs->text_bytes -= slot->batch.text_len;
			pfree(slot->batch.text);
			slot->batch.text = NULL;
			cs->null_answers += (int64) slot->batch.n * cs->nads;
			continue;
		}
		/* every ad of a batch to the same provider, back to back */
		for (int a = 0; a < cs->nads; a++)
			window_send_ad(cs, slot, a, cs->next_pick);
		cs->next_pick = -1;
	}
	if (cs->channels)
		(void) channels_flush(cs->channels, false);
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
		setting = "api_key_file";
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

/*
 * An ad of a batch is done.  When the batch is, its texts are not needed
 * any more: a finished batch waiting for an earlier one keeps only its keys
 * and answers, so the window can hold many of them cheaply.
 */
static void
ad_done(CallState *cs, BatchSlot *slot, AdAnswer *ad)
{
	ad->state = SLOT_DONE;
	if (--slot->pending > 0)
		return;
	slot->state = SLOT_DONE;
	if (slot->batch.text)
	{
		cs->text_bytes -= slot->batch.text_len;
		pfree(slot->batch.text);
	}
	slot->batch.text = NULL;
}

/* What a provider did for one request, answered or not, counts */
static void
tally_result(ProviderTally *t, const ChannelResult *res)
{
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
	report_tally_usage(t, &res->counters);
	t->results++;
	if (res->counters.paced_ms > 0)
		t->paced++;
	t->last_answer = GetCurrentTimestamp();
}

/* The ad a result is for, or NULL for the loser of a twin (already done) */
static AdAnswer *
result_ad(CallState *cs, BatchSlot *slot, const ChannelResult *res)
{
	if (slot->state == SLOT_SENT && slot->batch_no == res->batch_no &&
		res->ad_no >= 0 && res->ad_no < cs->nads &&
		slot->ads[res->ad_no].state == SLOT_SENT)
		return &slot->ads[res->ad_no];
	if (cs->strays <= 0)
		elog(ERROR, "result for unknown batch " INT64_FORMAT " ad %d", res->batch_no, res->ad_no);
	cs->strays--;
	return NULL;
}

/* An answer came back: keep it, or send the request to the next provider */
static void
handle_result(CallState *cs, const ChannelResult *res)
{
	BatchSlot  *slot = slot_for(cs, res->batch_no);
	int			play = play_index(cs, res->provider);
	ProviderTally *t = &cs->tally[play];
	AdAnswer   *ad = result_ad(cs, slot, res);

	/* a loser is billed like any request; its answer is not needed */
	tally_result(t, res);
	if (res->cls == OUTCOME_FATAL)
		provider_out(cs, play, res);
	else if (res->cls == OUTCOME_BUG && t->rejected_reason[0] == '\0')
		strlcpy(t->rejected_reason, res->reason, sizeof(t->rejected_reason));
	if (ad == NULL)
		return;
	ad->cost_usd += res->counters.cost_usd;
	ad->inflight--;

	if (res->cls == OUTCOME_OK)
	{
		if (res->n != slot->batch.n)
			elog(ERROR, "result for batch " INT64_FORMAT " has %d answers, expected %d",
				 res->batch_no, res->n, slot->batch.n);
		if (!ad->twinned)
			hedge_note_answer(&cs->hedge, play, (t->last_answer - ad->sent_at) / 1000.0);
		ad->play = play;		/* the provider that answered, for the rows */
		ad->values = MemoryContextAlloc(slot->cxt, res->n);
		memcpy(ad->values, res->clicks, res->n);
		ad->model = MemoryContextStrdup(slot->cxt,
										res->model && res->model[0] ? res->model : cs->play[play].model);
		ad->answered = true;
		t->batches++;
		/* the first answer wins: a twin still out comes back as a stray */
		cs->strays += ad->inflight;
		ad->inflight = 0;
		ad_done(cs, slot, ad);
		return;
	}

	/* its twin is still out, and may yet answer */
	if (ad->inflight > 0)
		return;
	if (res->cls == OUTCOME_BUDGET)
	{
		/* never sent: its answers stay empty, and the call ends in an error */
		ad->answered = false;
		ad_done(cs, slot, ad);
		return;
	}

	/* fail over to the next provider in play that has not tried it */
	for (int k = 1; k < cs->nplay && !window_over_budget(cs); k++)
	{
		int			next = (play + k) % cs->nplay;

		if (!cs->tally[next].out && !(ad->tried & (1u << next)))
		{
			cs->failovers++;
			t->failovers++;
			stats_count_failover(res->provider);
			window_send_ad(cs, slot, res->ad_no, next);
			return;
		}
	}

	/*
	 * Nowhere else to go, but this provider sent it back before it had used
	 * its retries (its circuit breaker opened): it goes back, to wait for the
	 * provider's recovery.  A request is given up only when every provider
	 * in play did all it could.
	 */
	if (!res->exhausted && !t->out && !window_over_budget(cs))
	{
		window_send_ad(cs, slot, res->ad_no, play);
		return;
	}
	ad->answered = false;
	ad_done(cs, slot, ad);
	cs->null_answers += slot->batch.n;
	/* a breaker bounce says less than the failure that opened the breaker */
	if (cs->last_failure[0] == '\0' || strncmp(res->reason, "circuit breaker", 15) != 0)
		snprintf(cs->last_failure, sizeof(cs->last_failure), "%s: %s",
				 provider_ops(res->provider)->name, res->reason);
	ereport(DEBUG1,
			(errmsg("batch " INT64_FORMAT " (ad %d) could not be answered: %s",
					res->batch_no + 1, res->ad_no + 1, res->reason)));
}

/* Hand every finished batch at the head of the window on; true if any */
static bool
emit_ready(CallState *cs)
{
	bool		emitted = false;

	for (;;)
	{
		BatchSlot  *slot = slot_for(cs, cs->next_emit);

		if (cs->next_emit >= cs->next_read || slot->state != SLOT_DONE)
			return emitted;
		emitted = true;
		cs->sink.batch_done(cs, slot, cs->sink.arg);
		cs->emitted += slot->batch.n;
		MemoryContextReset(slot->cxt);
		slot->ads = NULL;
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
window_run(CallState *cs, Oid relid, int batch_size)
{
	PersonaReader reader;
	int			requests = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	persona_reader_open(&reader, relid);
	report_call_started(cs->play, cs->nplay);
	if (stats_shared())
		progress_begin(relid, persona_reader_count(&reader), batch_size, CurrentMemoryContext);

	/* each ad's part of the prompt, once */
	cs->ad_texts = palloc(sizeof(char *) * cs->nads);
	cs->ad_text_lens = palloc(sizeof(int) * cs->nads);
	for (int a = 0; a < cs->nads; a++)
	{
		cs->ad_texts[a] = prompt_call_text(cs->ads[a], cs->platform);
		cs->ad_text_lens[a] = strlen(cs->ad_texts[a]);
	}

	/*
	 * Requests in flight are bounded per provider (twice its concurrency);
	 * the window of batches is many times that, so that finished batches
	 * waiting behind a slow one (which keep only keys and answers) never
	 * stop the others from being read and sent.
	 */
	for (int i = 0; i < cs->nplay; i++)
		requests += WINDOW_PER_SLOT * cs->play[i].max_concurrency;
	cs->window = Min(WINDOW_AHEAD * Max(requests / cs->nads, 1) + cs->nplay, WINDOW_MAX_SLOTS);
	cs->slots = palloc0(sizeof(BatchSlot) * cs->window);
	for (int i = 0; i < cs->window; i++)
		cs->slots[i].cxt = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist batch",
												 ALLOCSET_SMALL_SIZES);

	engine_current_settings(&cs->settings);
	cs->batch_size = batch_size;
	for (;;)
	{
		ChannelResult res;
		bool		progress = false;
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		fill_window(cs, &reader);
		if (window_over_budget(cs))
		{
			int64		outstanding = 0;

			for (int i = 0; i < cs->nplay; i++)
				outstanding += cs->tally[i].outstanding;
			if (outstanding == 0)
				raise_over_budget(cs);
		}
		if (cs->channels == NULL && reader.eof && cs->next_emit == cs->next_read)
			break;				/* nothing to send at all */
		while (cs->channels && channels_receive(cs->channels, &res))
		{
			handle_result(cs, &res);
			progress = true;
		}
		if (progress)
			note_progress(cs);
		/* twins of slow requests take room before new batches do */
		sleep_ms = hedge_send_twins(cs);
		/* failovers and twins leave before rows are handed on, at once */
		if (cs->channels)
			(void) channels_flush(cs->channels, cs->resent);
		cs->resent = false;
		/* over budget, nothing is handed on: the call ends in an error */
		if (!window_over_budget(cs) && emit_ready(cs))
			progress = true;
		if (reader.eof && cs->next_emit == cs->next_read)
			break;
		/* sleep only when nothing moved: results free room in the window */
		if (!progress && cs->channels)
			channels_wait(cs->channels, sleep_ms);
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
		report_call_end(cs->what, cs->play, cs->tally, cs->nplay, cs->personas, cs->nads,
						cs->next_read, cs->failovers, cs->null_answers, cs->last_failure);
}
