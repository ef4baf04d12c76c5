/*-------------------------------------------------------------------------
 *
 * hedge.c
 *	  The round-trip clock that says when a request is slow (hedge.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "hedge.h"

static bool ctr_hedge = true;

void
hedge_define_settings(void)
{
	DefineCustomBoolVariable("ctr_dist.hedge",
							 "Send a twin of a slow request to another provider; the first answer wins.",
							 "A request is slow when it has been out three times as long as the call's median round trip, and at least 250 ms.",
							 &ctr_hedge,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

bool
hedge_enabled(void)
{
	return ctr_hedge;
}

void
hedge_note_answer(HedgeClock *clock, double rtt_ms)
{
	clock->rtt_ms[clock->next] = Max(rtt_ms, 0);
	clock->next = (clock->next + 1) % HEDGE_SAMPLES;
	clock->nsamples = Min(clock->nsamples + 1, HEDGE_SAMPLES);
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

double
hedge_slow_after_ms(const HedgeClock *clock)
{
	double		sorted[HEDGE_SAMPLES];
	int			n = clock->nsamples;
	double		median;

	if (n < HEDGE_MIN_SAMPLES)
		return -1;
	memcpy(sorted, clock->rtt_ms, sizeof(double) * n);
	qsort(sorted, n, sizeof(double), cmp_double);
	median = (n % 2) ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	return Max(HEDGE_FACTOR * median, HEDGE_MIN_MS);
}

bool
hedge_may_twin(const HedgeClock *clock)
{
	return ctr_hedge && clock->twins < HEDGE_SPARE + HEDGE_SHARE * clock->sends;
}
