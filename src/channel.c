/*-------------------------------------------------------------------------
 *
 * channel.c
 *	  Route batches to the engine that runs each provider.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include "channel.h"
#include "wait_events.h"
#include "worker.h"

struct ChannelSet
{
	Engine	   *local;			/* providers run in this backend, or NULL */
	bool		is_local[NUM_PROVIDERS];
	WorkerPool *workers;		/* providers run by background workers */
	EngineJob  *last;			/* job whose result was handed out last */
	CallBudget *budget;			/* the call's ledger (budget.h) */
	MemoryContext cxt;			/* the call's: texts of local jobs */
};

/*
 * The text of a local job is its own copy, as a worker's is: made by
 * channels_send in set->cxt, freed with the job when its result has been
 * handed out (set->last), or with the call's memory for a job still in the
 * engine when the call ends.  So the caller may free its text as soon as a
 * request is sent, and a twin or a late loser never reads freed text.
 */
static void
free_local_job(ChannelSet *set)
{
	if (set->last == NULL)
		return;
	pfree((char *) set->last->text);
	engine_free_job(set->last);
	set->last = NULL;
}

ChannelSet *
channels_start(const ProviderConfig *configs, int nconfigs,
			   const EngineSettings *settings, const char *platform, double max_cost_usd)
{
	ChannelSet *set = palloc0(sizeof(ChannelSet));
	ProviderConfig local[NUM_PROVIDERS];
	int			nlocal = 0;

	set->cxt = CurrentMemoryContext;

	set->workers = worker_pool_start(configs, nconfigs, settings, max_cost_usd);
	/* with workers, the ledger is in their segment; else it is ours alone */
	set->budget = worker_pool_budget(set->workers);
	if (set->budget == NULL)
	{
		set->budget = palloc(sizeof(CallBudget));
		budget_init(set->budget, max_cost_usd);
	}
	for (int i = 0; i < nconfigs; i++)
	{
		if (worker_pool_runs(set->workers, configs[i].id))
			continue;
		local[nlocal++] = configs[i];
		set->is_local[configs[i].id] = true;
	}
	if (nlocal > 0)
	{
		PG_TRY();
		{
			set->local = engine_create(local, nlocal, settings, platform, set->budget);
		}
		PG_FINALLY();
		{
			/* the engine has its own copy of the keys, or failed */
			explicit_bzero(local, sizeof(local));
		}
		PG_END_TRY();
	}
	return set;
}

void
channels_send(ChannelSet *set, const JobSpec *spec)
{
	if (set->is_local[spec->provider])
	{
		JobSpec		copy = *spec;
		char	   *text = MemoryContextAlloc(set->cxt, spec->text_len + spec->tail_len + 1);

		memcpy(text, spec->text, spec->text_len);
		if (spec->tail_len > 0)
			memcpy(text + spec->text_len, spec->tail, spec->tail_len);
		text[spec->text_len + spec->tail_len] = '\0';
		copy.text = text;
		copy.text_len = spec->text_len + spec->tail_len;
		copy.tail = NULL;
		copy.tail_len = 0;
		engine_submit(set->local, engine_new_job(set->local, &copy));
		return;
	}
	worker_pool_send(set->workers, spec);
}

CallBudget *
channels_budget(ChannelSet *set)
{
	return set->budget;
}

bool
channels_receive(ChannelSet *set, ChannelResult *res)
{
	EngineJob  *job;

	free_local_job(set);
	if (worker_pool_receive(set->workers, res))
		return true;
	if (set->local == NULL || (job = engine_next_done(set->local)) == NULL)
		return false;

	set->last = job;
	res->batch_no = job->batch_no;
	res->ad_no = job->ad_no;
	res->provider = job->provider;
	res->cls = job->cls;
	res->exhausted = job->exhausted;
	res->n = job->n;
	res->clicks = job->clicks;
	res->tokens_in = job->tokens_in;
	res->tokens_out = job->tokens_out;
	res->retries = job->retries;
	res->counters = job->counters;
	res->model = job->model;
	res->reason = job->reason;
	return true;
}

/*
 * Batches sent since the last flush go to the workers they are due at (a
 * worker busy enough gets them in bursts: worker.c, flush_due), or all of
 * them; returns the ms until the next are due, or -1
 */
long
channels_flush(ChannelSet *set, bool all)
{
	return worker_pool_flush(set->workers, all);
}

/*
 * Sleep until a worker or a local transfer has news, an interrupt, or
 * timeout_ms have passed (-1: no timeout).  What is kept back for a busy
 * worker goes when its answers come, or when it has waited long enough.
 */
void
channels_wait(ChannelSet *set, long timeout_ms)
{
	long		due = channels_flush(set, false);

	if (due >= 0 && (timeout_ms < 0 || due < timeout_ms))
		timeout_ms = due;
	if (set->local)
		engine_wait(set->local, timeout_ms, ctr_wait_event(CTR_WAIT_CALLER_REQUESTS));
	else
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0),
						 timeout_ms, ctr_wait_event(CTR_WAIT_CALLER_RESULTS));
		ResetLatch(MyLatch);
	}
}

void
channels_finish(ChannelSet *set)
{
	free_local_job(set);
	worker_pool_finish(set->workers);
	if (set->local)
		engine_destroy(set->local);
	set->local = NULL;
}
