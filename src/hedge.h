/*-------------------------------------------------------------------------
 *
 * hedge.h
 *	  When a request has been out much longer than requests usually take,
 *	  a twin goes to another provider and the first answer wins.
 *
 * A request that hangs until ctr_dist.request_timeout, or sits in a
 * provider's backoff, would hold its batch -- and every row after it --
 * back; the twin answers in a usual round trip instead.  The clock keeps,
 * per provider, the round trips of the call's answered requests; a request
 * is slow past max(HEDGE_FACTOR x its provider's median, HEDGE_MIN_MS)
 * since its latest send (so a twin that is slow too gets a twin of its
 * own, up to HEDGE_MAX_INFLIGHT at once).  Twins are capped at a share of
 * the requests sent, go out only while the call is far from its budget,
 * and never where a rate limit paces requests, so that a provider that is
 * slow for everyone does not double the bill.
 *
 * The window (window.c) owns the requests; hedge_send_twins only decides
 * which get a twin and where, and sends it through window_send_ad.  The
 * clock is plain data in the call's state: nothing to release.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_HEDGE_H
#define CTR_HEDGE_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "provider.h"

#define HEDGE_SAMPLES 64		/* round trips kept per provider (the latest) */
#define HEDGE_MIN_SAMPLES 8		/* before that, nothing is slow there */
#define HEDGE_FACTOR 3.0
#define HEDGE_MIN_MS 250
#define HEDGE_SHARE 0.15		/* twins per request sent, at most ... */
#define HEDGE_SPARE 4			/* ... plus this many */
#define HEDGE_CHECK_MS 20		/* how often the window looks for slow ones */
#define HEDGE_IDLE_MS 100		/* ... when a slow one has nowhere to go */
#define HEDGE_MAX_INFLIGHT 3	/* a request and at most two twins at once */

typedef struct HedgeClock
{
	/* per index of the play list */
	double		rtt_ms[NUM_PROVIDERS][HEDGE_SAMPLES];
	int			nsamples[NUM_PROVIDERS];	/* kept, up to HEDGE_SAMPLES */
	int			next[NUM_PROVIDERS];	/* where the next one goes */
	int64		sends;			/* requests sent, twins included */
	int64		twins;
	TimestampTz last_check;
} HedgeClock;

struct CallState;

extern void hedge_define_settings(void);

/* A request at play index play answered after rtt_ms */
extern void hedge_note_answer(HedgeClock *clock, int play, double rtt_ms);

/*
 * Send a twin of each slow request that has somewhere to go.  Returns how
 * long the window may sleep before it should look again, in ms, or -1 for
 * as long as it likes.
 */
extern long hedge_send_twins(struct CallState *cs);

#endif							/* CTR_HEDGE_H */
