/*-------------------------------------------------------------------------
 *
 * ctr_dist.c
 *	  Simulate ad click-through rates with LLM personas, inside PostgreSQL.
 *
 * _PG_init is the table of contents: each subsystem defines its own
 * settings next to the code that uses them.
 *
 *	  personas.c	read personas in key order through an SPI cursor
 *	  prompt.c		the text a model reads
 *	  plan.c		which provider gets which batch
 *	  predict.c		ctr_predict(): arguments, the providers in play
 *	  window.c		one call: the window, failover, budget, ordered rows
 *	  report.c		the end-of-call NOTICE, last_call_stats()
 *	  channel.c		batches to workers or to an in-backend engine
 *	  worker.c		dynamic background workers, DSM and shm_mq
 *	  engine.c		curl multi + WaitEventSet, retries, circuit breaker
 *	  ratelimit.c	rpm, tpm and concurrency, shared when preloaded
 *	  stats.c		provider statistics and progress in shared memory
 *	  keys.c		where API keys come from, and what keeps them secret
 *	  provider_*.c	one file per provider's wire format
 *	  answer.c		strict extraction of the 0/1 answers
 *	  mock.c		the offline predictor
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "engine.h"
#include "hedge.h"
#include "keys.h"
#include "predict.h"
#include "prompt.h"
#include "provider.h"
#include "ratelimit.h"
#include "stats.h"
#include "window.h"
#include "worker.h"

#if PG_VERSION_NUM >= 180000
PG_MODULE_MAGIC_EXT(.name = "ctr_dist",.version = CTR_DIST_VERSION);
#else
PG_MODULE_MAGIC;
#endif

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
ctr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	ratelimit_shmem_request();
	stats_shmem_request();
}

static void
ctr_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	ratelimit_shmem_startup();
	stats_shmem_startup();
}

void
_PG_init(void)
{
	/* setting descriptions must outlive the query that loaded the library */
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	prompt_define_settings();
	provider_define_settings();
	keys_init();
	predict_define_settings();
	window_define_settings();
	hedge_define_settings();
	engine_define_settings();
	worker_define_settings();
	ratelimit_define_settings();

	MarkGUCPrefixReserved("ctr_dist");

	/* shared state only when preloaded; otherwise limits hold per call */
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = ctr_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = ctr_shmem_startup;
	}
	MemoryContextSwitchTo(old);
}
