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
};

ChannelSet *
channels_start(const ProviderConfig *configs, int nconfigs,
			   const EngineSettings *settings, const char *platform, double max_cost_usd)
{
	ChannelSet *set = palloc0(sizeof(ChannelSet));
	ProviderConfig local[NUM_PROVIDERS];
	int			nlocal = 0;

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

bool
channels_send(ChannelSet *set, const JobSpec *spec)
{
	if (set->is_local[spec->provider])
	{
		/* the job points at spec->text until it is done */
		engine_submit(set->local, engine_new_job(set->local, spec));
		return false;
	}
	worker_pool_send(set->workers, spec);
	return true;
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

	if (set->last)
	{
		engine_free_job(set->last);
		set->last = NULL;
	}
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

/* Sleep until a worker or a local transfer has news, or an interrupt */
void
channels_wait(ChannelSet *set)
{
	if (set->local)
		engine_wait(set->local, -1, ctr_wait_event(CTR_WAIT_CALLER_REQUESTS));
	else
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1,
						 ctr_wait_event(CTR_WAIT_CALLER_RESULTS));
		ResetLatch(MyLatch);
	}
}

void
channels_finish(ChannelSet *set)
{
	if (set->last)
		engine_free_job(set->last);
	set->last = NULL;
	worker_pool_finish(set->workers);
	if (set->local)
		engine_destroy(set->local);
	set->local = NULL;
}
