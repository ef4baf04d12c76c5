/*-------------------------------------------------------------------------
 *
 * breaker.c
 *	  Circuit breaker: stop hammering a provider whose requests mostly fail.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bitutils.h"

#include "breaker.h"

#define BREAKER_WINDOW 10
#define BREAKER_FAILURES 8

bool
breaker_record(Breaker *b, bool failed, int cooldown_ms)
{
	TimestampTz now = GetCurrentTimestamp();

	if (b->probing)
	{
		b->probing = false;
		if (!failed)
		{
			memset(b, 0, sizeof(*b));
			return false;
		}
		b->open_until = TimestampTzPlusMilliseconds(now, cooldown_ms);
		return true;
	}
	b->history = ((b->history << 1) | (failed ? 1 : 0)) & ((1u << BREAKER_WINDOW) - 1);
	b->recorded = Min(b->recorded + 1, BREAKER_WINDOW);
	if (b->open_until == 0 && failed && b->recorded == BREAKER_WINDOW &&
		pg_popcount32(b->history) >= BREAKER_FAILURES)
	{
		b->open_until = TimestampTzPlusMilliseconds(now, cooldown_ms);
		return true;
	}
	return false;
}

bool
breaker_allows(Breaker *b)
{
	if (b->open_until == 0)
		return true;
	if (b->probing || GetCurrentTimestamp() < b->open_until)
		return false;
	b->probing = true;
	return true;
}

void
breaker_unprobe(Breaker *b)
{
	b->probing = false;
}

TimestampTz
breaker_next_chance(const Breaker *b)
{
	TimestampTz now = GetCurrentTimestamp();

	/* cooling down: until it ends; a probe is out: soon, it may be back */
	if (b->open_until > now)
		return b->open_until;
	return TimestampTzPlusMilliseconds(now, 50);
}
