/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  ctr_dist.provider_stats and ctr_dist.progress, from shared memory.
 *
 * Counters per provider since the last reset, like pg_stat_statements:
 * requests, answers, each failure class, 429s, retries, failovers, tokens,
 * cost, and latency as a mean and a histogram (the 95th percentile is the
 * upper edge of its bucket).  Engines in workers and in backends add to
 * them under a spinlock as each attempt ends.
 *
 * Progress has one slot per running call, claimed by the calling backend
 * and released when the call ends, also on error (a callback on the call's
 * memory context).  A session sees only its own database's calls: their
 * relation OIDs mean something only in that database's catalog.  Without
 * the library preloaded there is no shared memory: the views are empty and
 * say so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "stats.h"

static const double latency_edges_ms[] = {
	10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};
#define NBUCKETS (lengthof(latency_edges_ms) + 1)
#define PROGRESS_SLOTS 64

typedef struct ProviderCounters
{
	int64		requests;
	int64		answered;
	int64		throttled;
	int64		http_429;
	int64		transient;
	int64		soft;
	int64		fatal;
	int64		rejected;		/* 400/422: our bug */
	int64		retries;
	int64		failovers;
	int64		tokens_in;
	int64		tokens_out;
	double		cost_usd;
	double		latency_sum_ms;
	int64		latency[NBUCKETS];
} ProviderCounters;

typedef struct ProgressSlot
{
	slock_t		mutex;
	int			pid;			/* 0: free */
	Oid			dbid;			/* the database relid belongs to */
	Oid			relid;
	TimestampTz started;
	int64		personas_total;
	int64		personas_done;
	int			batch_size;
	int64		batches_done[NUM_PROVIDERS];
} ProgressSlot;

typedef struct SharedStats
{
	slock_t		mutex;
	TimestampTz reset_at;
	ProviderCounters providers[NUM_PROVIDERS];
	ProgressSlot progress[PROGRESS_SLOTS];
} SharedStats;

static SharedStats *shared = NULL;
static ProgressSlot *my_progress = NULL;

void
stats_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedStats)));
}

void
stats_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("ctr_dist statistics", sizeof(SharedStats), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(SharedStats));
		SpinLockInit(&shared->mutex);
		shared->reset_at = GetCurrentTimestamp();
		for (int i = 0; i < PROGRESS_SLOTS; i++)
			SpinLockInit(&shared->progress[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

bool
stats_shared(void)
{
	return shared != NULL;
}

void
stats_count_attempt(const ProviderConfig *cfg, OutcomeClass cls, int http_status,
					double latency_ms, int64 tokens_in, int64 tokens_out, bool will_retry)
{
	ProviderCounters *c;
	int			bucket = 0;

	if (shared == NULL)
		return;
	while (bucket < NBUCKETS - 1 && latency_ms > latency_edges_ms[bucket])
		bucket++;

	SpinLockAcquire(&shared->mutex);
	c = &shared->providers[cfg->id];
	if (cfg->id != PROVIDER_MOCK)
		c->requests++;
	switch (cls)
	{
		case OUTCOME_OK:
			c->answered++;
			break;
		case OUTCOME_THROTTLE:
			c->throttled++;
			break;
		case OUTCOME_TRANSIENT:
			c->transient++;
			break;
		case OUTCOME_SOFT:
			c->soft++;
			break;
		case OUTCOME_FATAL:
			c->fatal++;
			break;
		case OUTCOME_BUG:
			c->rejected++;
			break;
		case OUTCOME_BUDGET:
			break;				/* never sent: not an attempt */
	}
	if (http_status == 429)
		c->http_429++;
	if (will_retry)
		c->retries++;
	c->tokens_in += tokens_in;
	c->tokens_out += tokens_out;
	c->cost_usd += (tokens_in * cfg->price_input + tokens_out * cfg->price_output) / 1e6;
	c->latency_sum_ms += latency_ms;
	c->latency[bucket]++;
	SpinLockRelease(&shared->mutex);
}

void
stats_count_failover(ProviderId provider)
{
	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->providers[provider].failovers++;
	SpinLockRelease(&shared->mutex);
}

static void
progress_release(void *arg)
{
	ProgressSlot *slot = (ProgressSlot *) arg;

	SpinLockAcquire(&slot->mutex);
	if (slot->pid == MyProcPid)
		slot->pid = 0;
	SpinLockRelease(&slot->mutex);
	if (my_progress == slot)
		my_progress = NULL;
}

void
progress_begin(Oid relid, int64 personas_total, int batch_size, MemoryContext call_context)
{
	MemoryContextCallback *cb;

	my_progress = NULL;
	if (shared == NULL)
		return;
	for (int i = 0; i < PROGRESS_SLOTS && my_progress == NULL; i++)
	{
		ProgressSlot *slot = &shared->progress[i];

		SpinLockAcquire(&slot->mutex);
		if (slot->pid == 0)
		{
			slot->pid = MyProcPid;
			slot->dbid = MyDatabaseId;
			slot->relid = relid;
			slot->started = GetCurrentTimestamp();
			slot->personas_total = personas_total;
			slot->personas_done = 0;
			slot->batch_size = batch_size;
			memset(slot->batches_done, 0, sizeof(slot->batches_done));
			my_progress = slot;
		}
		SpinLockRelease(&slot->mutex);
	}
	if (my_progress == NULL)
		return;					/* more than PROGRESS_SLOTS calls at once: not shown */
	cb = MemoryContextAlloc(call_context, sizeof(MemoryContextCallback));
	cb->func = progress_release;
	cb->arg = my_progress;
	MemoryContextRegisterResetCallback(call_context, cb);
}

void
progress_update(int64 personas_done, const int64 *batches_done)
{
	if (my_progress == NULL)
		return;
	SpinLockAcquire(&my_progress->mutex);
	my_progress->personas_done = personas_done;
	memcpy(my_progress->batches_done, batches_done, sizeof(my_progress->batches_done));
	SpinLockRelease(&my_progress->mutex);
}

static void
require_shared(void)
{
	if (shared == NULL)
		ereport(NOTICE,
				(errmsg("ctr_dist statistics need shared_preload_libraries = 'ctr_dist'"),
				 errhint("Add ctr_dist to shared_preload_libraries in postgresql.conf and restart.")));
}

PG_FUNCTION_INFO_V1(ctr_dist_provider_stats);

Datum
ctr_dist_provider_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SharedStats copy;

	InitMaterializedSRF(fcinfo, 0);
	require_shared();
	if (shared == NULL)
		return (Datum) 0;
	SpinLockAcquire(&shared->mutex);
	memcpy(&copy.providers, &shared->providers, sizeof(copy.providers));
	copy.reset_at = shared->reset_at;
	SpinLockRelease(&shared->mutex);

	for (int p = 0; p < NUM_PROVIDERS; p++)
	{
		ProviderCounters *c = &copy.providers[p];
		Datum		values[18];
		bool		nulls[18] = {0};
		int64		total = 0;
		int64		seen = 0;
		int			i = 0;

		for (int b = 0; b < NBUCKETS; b++)
			total += c->latency[b];
		values[i++] = CStringGetTextDatum(provider_ops((ProviderId) p)->name);
		values[i++] = Int64GetDatum(c->requests);
		values[i++] = Int64GetDatum(c->answered);
		values[i++] = Int64GetDatum(c->throttled);
		values[i++] = Int64GetDatum(c->http_429);
		values[i++] = Int64GetDatum(c->transient);
		values[i++] = Int64GetDatum(c->soft);
		values[i++] = Int64GetDatum(c->fatal);
		values[i++] = Int64GetDatum(c->rejected);
		values[i++] = Int64GetDatum(c->retries);
		values[i++] = Int64GetDatum(c->failovers);
		values[i++] = Int64GetDatum(c->tokens_in);
		values[i++] = Int64GetDatum(c->tokens_out);
		values[i++] = Float8GetDatum(c->cost_usd);
		if (total > 0)
		{
			int			b;

			values[i++] = Float8GetDatum(c->latency_sum_ms / total);
			for (b = 0; b < NBUCKETS - 1; b++)
			{
				seen += c->latency[b];
				if (seen * 100 >= total * 95)
					break;
			}
			if (b < NBUCKETS - 1)
				values[i++] = Float8GetDatum(latency_edges_ms[b]);
			else
				nulls[i++] = true;	/* beyond the last edge */
		}
		else
		{
			nulls[i++] = true;
			nulls[i++] = true;
		}
		values[i++] = TimestampTzGetDatum(copy.reset_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_provider_stats_reset);

Datum
ctr_dist_provider_stats_reset(PG_FUNCTION_ARGS)
{
	require_shared();
	if (shared == NULL)
		PG_RETURN_VOID();
	SpinLockAcquire(&shared->mutex);
	memset(shared->providers, 0, sizeof(shared->providers));
	shared->reset_at = GetCurrentTimestamp();
	SpinLockRelease(&shared->mutex);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ctr_dist_progress);

Datum
ctr_dist_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	require_shared();
	if (shared == NULL)
		return (Datum) 0;
	for (int i = 0; i < PROGRESS_SLOTS; i++)
	{
		ProgressSlot copy;
		Datum		values[10];
		bool		nulls[10] = {0};
		StringInfoData per;
		int64		done = 0;
		int64		total;
		double		elapsed;

		SpinLockAcquire(&shared->progress[i].mutex);
		memcpy(&copy, &shared->progress[i], sizeof(copy));
		SpinLockRelease(&shared->progress[i].mutex);
		if (copy.pid == 0 || copy.dbid != MyDatabaseId)
			continue;

		initStringInfo(&per);
		for (int p = 0; p < NUM_PROVIDERS; p++)
		{
			done += copy.batches_done[p];
			if (copy.batches_done[p] > 0)
				appendStringInfo(&per, "%s%s=" INT64_FORMAT, per.len ? ", " : "",
								 provider_ops((ProviderId) p)->name, copy.batches_done[p]);
		}
		total = (copy.personas_total + copy.batch_size - 1) / copy.batch_size;
		elapsed = (double) (now - copy.started) / USECS_PER_SEC;

		values[0] = Int32GetDatum(copy.pid);
		values[1] = ObjectIdGetDatum(copy.relid);
		values[2] = TimestampTzGetDatum(copy.started);
		values[3] = Float8GetDatum(elapsed);
		values[4] = Int64GetDatum(copy.personas_done);
		values[5] = Int64GetDatum(copy.personas_total);
		values[6] = Int64GetDatum(done);
		values[7] = Int64GetDatum(total);
		values[8] = CStringGetTextDatum(per.data);
		if (copy.personas_done > 0 && copy.personas_total >= copy.personas_done)
			values[9] = Float8GetDatum(elapsed * (copy.personas_total - copy.personas_done) /
									   copy.personas_done);
		else
			nulls[9] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
