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

#include "provider.h"

typedef struct ProviderTally
{
	int64		batches;		/* answered by this provider */
	int64		outstanding;
	int64		tokens_in;
	int64		tokens_out;
	int64		retries;
	int64		requests;
	int64		throttled;
	int64		transient;
	int64		soft;
	int64		breaker_trips;
	int64		paced_ms;
	int64		failovers;		/* batches it failed that went elsewhere */
	TimestampTz first_sent;
	TimestampTz last_answer;
	bool		out;			/* taken out for the rest of the call */
} ProviderTally;

/* cost in USD of so many tokens at a provider's prices */
static inline double
cost_of(const ProviderConfig *cfg, double tokens_in, double tokens_out)
{
	return (tokens_in * cfg->price_input + tokens_out * cfg->price_output) / 1e6;
}

/* this session's last call, for ctr_dist.last_call_stats() */
extern void report_call_started(const ProviderConfig *play, int nplay);
extern void report_call_tallies(const ProviderTally *tally);

/* the end-of-call WARNING (NULL rows) and NOTICE */
extern void report_call_end(const ProviderConfig *play, const ProviderTally *tally, int nplay,
							int64 personas, int64 batches, int64 failovers,
							int64 null_rows, const char *last_failure);

#endif							/* CTR_REPORT_H */
