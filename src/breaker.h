/*-------------------------------------------------------------------------
 *
 * breaker.h
 *	  A circuit breaker per provider and engine.
 *
 * When 8 of a provider's last 10 attempts failed with a transient error,
 * stop sending to it for ctr_dist.breaker_cooldown; then one probe
 * decides whether it closes again: whatever it comes back with, only a
 * transient failure keeps it open (settle.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_BREAKER_H
#define CTR_BREAKER_H

#include "postgres.h"
#include "utils/timestamp.h"

typedef struct Breaker
{
	uint32		history;		/* last BREAKER_WINDOW attempts, 1 = failed */
	int			recorded;
	TimestampTz open_until;		/* 0: closed */
	bool		probing;
} Breaker;

/* Record an attempt; true if this failure opened the breaker */
extern bool breaker_record(Breaker *b, bool failed, int cooldown_ms);

/* May a request go now?  Open: no.  Cooldown over: one probe at a time. */
extern bool breaker_allows(Breaker *b);

/* A probe that breaker_allows() let through did not go after all */
extern void breaker_unprobe(Breaker *b);

/* When a job that must wait for this breaker should look again */
extern TimestampTz breaker_next_chance(const Breaker *b);

static inline bool
breaker_is_open(const Breaker *b)
{
	return b->open_until != 0;
}

#endif							/* CTR_BREAKER_H */
