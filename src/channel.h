/*-------------------------------------------------------------------------
 *
 * channel.h
 *	  Where the calling backend sends batches: a background worker per
 *	  provider, or the engine running in the backend itself.
 *
 * Both look the same to the caller: send a batch, receive results in any
 * order, wait for something to happen.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_CHANNEL_H
#define CTR_CHANNEL_H

#include "postgres.h"

#include "engine.h"
#include "provider.h"

typedef struct ChannelResult
{
	int64		batch_no;
	int			ad_no;
	ProviderId	provider;
	OutcomeClass cls;
	bool		exhausted;		/* see EngineJob */
	int			n;
	const uint8 *clicks;		/* valid until the next receive */
	int64		tokens_in;
	int64		tokens_out;
	int			retries;
	JobCounters counters;
	const char *model;
	const char *reason;
} ChannelResult;

typedef struct ChannelSet ChannelSet;

/*
 * Start channels for the providers in play: a worker each, up to
 * ctr_dist.max_workers, the rest (and the mock) in this backend.
 */
extern ChannelSet *channels_start(const ProviderConfig *configs, int nconfigs,
								  const EngineSettings *settings, const char *platform,
								  double max_cost_usd);
/*
 * The channel keeps its own copy of spec->text: the caller may free it.  A
 * worker's batches leave in bursts: at once when a burst is ready, else at
 * a channels_flush or channels_wait that finds them due.
 */
extern void channels_send(ChannelSet *set, const JobSpec *spec);
extern long channels_flush(ChannelSet *set, bool all);
extern CallBudget *channels_budget(ChannelSet *set);
extern bool channels_receive(ChannelSet *set, ChannelResult *result);
extern void channels_wait(ChannelSet *set, long timeout_ms);
extern void channels_finish(ChannelSet *set);

extern void channel_define_settings(void);

#endif							/* CTR_CHANNEL_H */
