/*-------------------------------------------------------------------------
 *
 * halves.h
 *	  A job in halves (halves.c), and adding up what jobs did.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_HALVES_H
#define CTR_HALVES_H

#include "postgres.h"

#include "engine.h"

extern void job_counters_add(JobCounters *to, const JobCounters *from);

/*
 * Make the two halves of job in cxt (they point to it as their parent);
 * false when it cannot be split (one persona, the mock, a model list, a
 * text not shaped as a request).
 */
extern bool halves_make(MemoryContext cxt, EngineJob *job, EngineJob **first,
						EngineJob **second);

/*
 * A finished half into its parent (answers, counters, the first failure);
 * frees the half.  Returns the parent once both halves are in, else NULL.
 */
extern EngineJob *halves_merge(EngineJob *half);

#endif							/* CTR_HALVES_H */
