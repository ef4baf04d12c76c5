/*-------------------------------------------------------------------------
 *
 * report.h
 *	  What a call tells its user: per provider tallies, the end-of-call
 *	  NOTICE, and ctr_dist.last_call_stats().
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_REPORT_H
#define CTR_REPORT_H

#include "postgres.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "provider.h"

typedef struct ProviderTally
{
	int64		batches;		/* answered by this provider */
	int64		outstanding;
	int64		tokens_in;		/* cached ones included */
	int64		tokens_out;		/* reasoning included */
	int64		retries;
	int64		requests;
	int64		answered;
	int64		throttled;
	int64		transient;
	int64		soft;
	int64		too_large;
	int64		unsupported;
	int64		fatal;
	int64		rejected;		/* 400/422: a bug or an API change */
	int64		breaker_trips;
	int64		paced_ms;
	int64		splits;
	int64		failovers;		/* batches it failed that went elsewhere */
	int64		tokens_cached;
	int64		tokens_cache_write;
	int64		tokens_reasoning;
	double		cost_usd;		/* what the requests cost, as billed */
	uint32		dropped;		/* PARAM_BIT()s its requests went without */
	int64		twins;			/* twins of slow requests it was sent (hedge.h) */
	int64		results;		/* requests it sent back, answered or not */
	int64		paced;			/* ... that waited for a rate limit first */
	TimestampTz first_sent;
	TimestampTz last_answer;
	bool		out;			/* taken out for the rest of the call */
	char		rejected_reason[CTR_REASON_MAX];	/* the first 400/422 */
} ProviderTally;

/* what a result adds beyond the counts the window keeps itself */
extern void report_tally_usage(ProviderTally *tally, const JobCounters *counters);

/* at the very start of a call, before anything can fail */
extern void report_call_reset(void);

/* this session's last call, for ctr_dist.last_call_stats() */
extern void report_call_started(const ProviderConfig *play, int nplay);
extern void report_call_tallies(const ProviderTally *tally);

/* the end-of-call WARNING (NULL answers) and NOTICE; what: ctr_predict, ... */
extern void report_call_end(const char *what, const ProviderConfig *play,
							const ProviderTally *tally, int nplay,
							int64 personas, int nads, int64 batches, int64 failovers,
							int64 null_answers, const char *last_failure);

#endif							/* CTR_REPORT_H */
