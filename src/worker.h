/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background workers that run one provider's requests each.
 *
 * Who owns what (one owner, one release path each):
 *
 *	what			created by			owner		freed by
 *	DSM segment		worker_pool_start	the leader	worker_pool_finish
 *	(settings,		(dsm_create under	(resource	(dsm_detach); on abort
 *	keys, queues)	CurrentResourceOwner) owner)	the resource owner's
 *													release detaches it
 *	the budget		worker_pool_start	leader		with the segment; workers and
 *	(in DSM)							the caller's engine touch it
 *										only while the call runs
 *	keys in DSM		worker_pool_start	leader		each worker wipes its own
 *													after copying it; the
 *													detach callback and
 *													worker_pool_finish wipe
 *													all of them
 *	WorkerPool,		worker_pool_start,	the (sub)-	worker_pool_finish (Memory-
 *	worker handles,	in CurTransaction-	transaction	ContextDelete); on abort the
 *	shm_mq handles	Context				context		context, which outlives the
 *													detach callback
 *	batches kept	worker_pool_send	the pool	flush_unsent (pfree, once
 *	back (unsent)	(in the pool's						the queue took it); else
 *					context)							with the pool's context
 *	workers			RegisterDynamic-	postmaster	exit when the leader detaches
 *	(processes)		BackgroundWorker	(BGW_NEVER_	(normal end: the leader waits
 *									RESTART)	for them) or when the detach
 *													callback terminates them
 *													(abort, FATAL, proc_exit)
 *	worker's engine	ctr_dist_worker_main  worker	before_shmem_exit callback
 *													(engine_destroy), on every
 *													exit: normal, ERROR, FATAL
 *													(SIGTERM), postmaster death
 *	batch texts		worker loop			worker		after the job's result
 *	(worker side)	(TopMemoryContext			is sent (or dropped)
 *					child)
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_WORKER_H
#define CTR_WORKER_H

#include "postgres.h"

#include "channel.h"
#include "engine.h"

typedef struct WorkerPool WorkerPool;

extern void worker_define_settings(void);

extern WorkerPool *worker_pool_start(const ProviderConfig *configs, int nconfigs,
									 const EngineSettings *settings, double max_cost_usd);
extern bool worker_pool_runs(WorkerPool *pool, ProviderId provider);
extern CallBudget *worker_pool_budget(WorkerPool *pool);
extern void worker_pool_send(WorkerPool *pool, const JobSpec *spec);
extern long worker_pool_flush(WorkerPool *pool, bool all);
extern bool worker_pool_receive(WorkerPool *pool, ChannelResult *result);
extern void worker_pool_finish(WorkerPool *pool);

extern PGDLLEXPORT void ctr_dist_worker_main(Datum main_arg);

#endif							/* CTR_WORKER_H */
