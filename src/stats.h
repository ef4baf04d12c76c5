/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  What happened: live per-provider statistics and the progress of
 *	  running calls (shared memory, with the library preloaded), and the
 *	  totals of this session's last call.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_STATS_H
#define CTR_STATS_H

#include "postgres.h"

#include "provider.h"

extern void stats_shmem_request(void);
extern void stats_shmem_startup(void);

/* one finished HTTP attempt (engine); planned_factor: the plan's price factor */
extern void stats_count_attempt(const ProviderConfig *cfg, const Outcome *out,
								double latency_ms, double planned_factor, bool will_retry);
/* one request sent again in halves (engine) */
extern void stats_count_split(ProviderId provider);
/* one batch moved to another provider (caller) */
extern void stats_count_failover(ProviderId provider);

extern bool stats_shared(void);

/* progress of this backend's call; ends by itself if the call errors out */
extern void progress_begin(Oid relid, int64 personas_total, int batch_size,
						   MemoryContext call_context);
extern void progress_update(int64 personas_done, const int64 *batches_done);

#endif							/* CTR_STATS_H */
