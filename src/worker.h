/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background workers that run one provider's requests each.
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
									 const EngineSettings *settings,
									 const char *ad, const char *platform);
extern bool worker_pool_runs(WorkerPool *pool, ProviderId provider);
extern void worker_pool_send(WorkerPool *pool, int64 batch_no, ProviderId provider,
							 const char *text, int text_len, int n);
extern bool worker_pool_receive(WorkerPool *pool, ChannelResult *result);
extern void worker_pool_finish(WorkerPool *pool);

extern PGDLLEXPORT void ctr_dist_worker_main(Datum main_arg);

#endif							/* CTR_WORKER_H */
