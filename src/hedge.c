/*-------------------------------------------------------------------------
 *
 * hedge.c
 *	  Twins of slow requests: when a request is slow, and where its twin
 *	  goes (hedge.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/guc.h"

#include "budget.h"
#include "hedge.h"
#include "ratelimit.h"
#include "window.h"

static bool ctr_hedge = true;

void
hedge_define_settings(void)
{
	DefineCustomBoolVariable("ctr_dist.hedge",
							 "Send a twin of a slow request to another provider; the first answer wins.",
							 "A request is slow when it has been out three times as long as its provider's median round trip in the call, and at least 250 ms.",
							 &ctr_hedge,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

void
hedge_note_answer(HedgeClock *clock, int play, double rtt_ms)
{
	clock->rtt_ms[play][clock->next[play]] = Max(rtt_ms, 0);
	clock->next[play] = (clock->next[play] + 1) % HEDGE_SAMPLES;
	clock->nsamples[play] = Min(clock->nsamples[play] + 1, HEDGE_SAMPLES);
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* How long a request at play may be out before it is slow: -1 while unknown */
static double
slow_after_ms(const HedgeClock *clock, int play)
{
	double		sorted[HEDGE_SAMPLES];
	int			n = clock->nsamples[play];
	double		median;

	if (n < HEDGE_MIN_SAMPLES)
		return -1;
	memcpy(sorted, clock->rtt_ms[play], sizeof(double) * n);
	qsort(sorted, n, sizeof(double), cmp_double);
	median = (n % 2) ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	return Max(HEDGE_FACTOR * median, HEDGE_MIN_MS);
}

/*
 * Can provider i take a twin now: in play, with room, and not held back by
 * a rate limit?  Where requests are paced to a limit (P_rpm, P_tpm, or one
 * learnt from 429s), a 429's wait is not over, or a quarter of them waited
 * for one or were refused with 429, a slow request is waiting its turn,
 * and a twin there would only take the turn of the next batch.
 */
static bool
twin_fits(CallState *cs, int i)
{
	const ProviderTally *t = &cs->tally[i];

	return !t->out && cs->play[i].rpm <= 0 && cs->play[i].tpm <= 0 &&
		t->throttled * 4 <= t->requests && t->paced * 4 <= t->results &&
		!ratelimit_holds_back(cs->play[i].id) &&
		t->outstanding < WINDOW_PER_SLOT * cs->play[i].max_concurrency;
}

/*
 * Where a twin of a slow request can go: a provider that has not tried it,
 * the least busy first; with none, the provider it is at, on another
 * connection.  -1: nowhere now.
 */
static int
twin_target(CallState *cs, const AdAnswer *ad)
{
	int			best = -1;
	double		best_load = 0;

	for (int i = 0; i < cs->nplay; i++)
	{
		double		load = (double) cs->tally[i].outstanding / Max(cs->play[i].max_concurrency, 1);

		if ((ad->tried & (1u << i)) || !twin_fits(cs, i))
			continue;
		if (best < 0 || load < best_load)
		{
			best = i;
			best_load = load;
		}
	}
	if (best < 0 && twin_fits(cs, ad->play))
		best = ad->play;
	return best;
}

/*
 * Twins are for calls far from their budget: one that has spent and
 * reserved half of it sends none, so that a twin is never the request the
 * budget refuses (which would stop the call).
 */
static bool
budget_allows_twins(CallState *cs)
{
	CallBudget	b;

	budget_read(channels_budget(cs->channels), &b);
	return b.limit_usd <= 0 || b.spent_usd + b.reserved_usd <= b.limit_usd / 2;
}

long
hedge_send_twins(CallState *cs)
{
	HedgeClock *clock = &cs->hedge;
	double		slow_ms[NUM_PROVIDERS];
	bool		any = false;
	TimestampTz now;
	double		wait_ms = -1;
	int64		unseen = 0;		/* requests out, not looked at yet */

	if (!ctr_hedge || cs->channels == NULL || window_over_budget(cs))
		return -1;
	for (int i = 0; i < cs->nplay; i++)
		any |= clock->nsamples[i] >= HEDGE_MIN_SAMPLES;
	if (!any)
		return -1;
	/* this runs after every result: the medians only once per check */
	now = GetCurrentTimestamp();
	if (now - clock->last_check < HEDGE_CHECK_MS * 1000L)
		return HEDGE_CHECK_MS;
	clock->last_check = now;
	for (int i = 0; i < cs->nplay; i++)
		slow_ms[i] = slow_after_ms(clock, i);
	if (!budget_allows_twins(cs))
		return -1;
	for (int i = 0; i < cs->nplay; i++)
		unseen += cs->tally[i].outstanding;
	unseen -= cs->strays;

	/* the oldest batches first: they hold the rows after them */
	for (int64 b = cs->next_emit; b < cs->next_read && unseen > 0; b++)
	{
		BatchSlot  *slot = &cs->slots[b % cs->window];

		if (slot->state != SLOT_SENT)
			continue;
		for (int a = 0; a < cs->nads; a++)
		{
			AdAnswer   *ad = &slot->ads[a];
			double		out_ms = (now - ad->sent_at) / 1000.0;
			double		slow = slow_ms[ad->play];
			int			twin;

			if (ad->state != SLOT_SENT)
				continue;
			unseen -= ad->inflight;
			/* out_ms is since its latest request: a twin that is slow too gets one */
			if (ad->inflight >= HEDGE_MAX_INFLIGHT || slow < 0)
				continue;
			if (out_ms < slow)
			{
				if (wait_ms < 0 || slow - out_ms < wait_ms)
					wait_ms = slow - out_ms;
				continue;
			}
			if (clock->twins >= HEDGE_SPARE + HEDGE_SHARE * clock->sends)
				return -1;
			if ((twin = twin_target(cs, ad)) < 0)
			{
				if (wait_ms < 0 || wait_ms > HEDGE_IDLE_MS)
					wait_ms = HEDGE_IDLE_MS;
				continue;
			}
			clock->twins++;
			cs->tally[twin].twins++;
			ad->twinned = true;
			window_send_ad(cs, slot, a, twin);
		}
	}
	return wait_ms < 0 ? -1 : Max((long) ceil(wait_ms), HEDGE_CHECK_MS);
}
