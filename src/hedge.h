/*-------------------------------------------------------------------------
 *
 * hedge.h
 *	  When a request has been out much longer than requests usually take,
 *	  a twin goes to another provider and the first answer wins.
 *
 * A request that hangs until ctr_dist.request_timeout, or sits in a
 * provider's backoff, would hold its batch -- and every row after it --
 * back; the twin answers in a usual round trip instead.  The clock keeps
 * the round trips of the call's answered requests; a request is slow past
 * max(HEDGE_FACTOR x their median, HEDGE_MIN_MS) since its latest send
 * (so a twin that is slow too gets a twin of its own, up to
 * HEDGE_MAX_INFLIGHT at once).  Twins are capped at a share of the
 * requests sent, and never go where a rate limit paces requests
 * (window.c), so a provider that is slow for everyone does not double the
 * bill.
 *
 * The clock is plain data in the call's memory: no resource to release.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_HEDGE_H
#define CTR_HEDGE_H

#include "postgres.h"

#include "datatype/timestamp.h"

#define HEDGE_SAMPLES 64		/* round trips kept (the latest) */
#define HEDGE_MIN_SAMPLES 8		/* before that, nothing is slow */
#define HEDGE_FACTOR 3.0
#define HEDGE_MIN_MS 250
#define HEDGE_SHARE 0.15		/* twins per request sent, at most ... */
#define HEDGE_SPARE 4			/* ... plus this many */
#define HEDGE_CHECK_MS 20		/* how often the window looks for slow ones */
#define HEDGE_MAX_INFLIGHT 3	/* a request and at most two twins at once */

typedef struct HedgeClock
{
	double		rtt_ms[HEDGE_SAMPLES];
	int			nsamples;		/* kept, up to HEDGE_SAMPLES */
	int			next;			/* where the next one goes */
	int64		sends;			/* requests sent, twins included */
	int64		twins;
	TimestampTz last_check;
} HedgeClock;

extern void hedge_define_settings(void);
extern bool hedge_enabled(void);

/* A request answered after rtt_ms */
extern void hedge_note_answer(HedgeClock *clock, double rtt_ms);

/* How long a request may be out before it is slow: -1 while unknown */
extern double hedge_slow_after_ms(const HedgeClock *clock);

/* May one more twin go out now? */
extern bool hedge_may_twin(const HedgeClock *clock);

#endif							/* CTR_HEDGE_H */
