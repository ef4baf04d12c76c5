/*-------------------------------------------------------------------------
 *
 * engine_int.h
 *	  The engine's insides, shared by engine.c (jobs, dispatch, the wait
 *	  loop) and settle.c (what each finished attempt means for its job).
 *	  Nothing outside those two files includes it: the rest see engine.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_ENGINE_INT_H
#define CTR_ENGINE_INT_H

#include "breaker.h"
#include "engine.h"
#include "multi.h"
#include "quirks.h"
#include "resolve.h"

struct Engine
{
	MemoryContext cxt;			/* the engine, its jobs and transfers */
	MemoryContext scratch;		/* building one request; reset after each */
	ProviderConfig configs[NUM_PROVIDERS];
	bool		configured[NUM_PROVIDERS];
	bool		dead[NUM_PROVIDERS];
	EngineSettings settings;
	char	   *platform;		/* for the mock */

	CurlMulti	multi;
	dlist_head	waiting;		/* jobs not started or waiting to retry */
	dlist_head	done;
	dlist_head	transfers;		/* attempts in flight (transfer.h) */
	int			in_flight[NUM_PROVIDERS];
	int			concurrency[NUM_PROVIDERS];	/* adaptive: halved by 429s */
	int			successes[NUM_PROVIDERS];	/* since the last change of it */
	Breaker		breaker[NUM_PROVIDERS];
	CallBudget *budget;			/* the call's (budget.h) */
	double		tokens_per_byte[NUM_PROVIDERS];	/* learnt bound; 0: not yet */
	ModelQuirks quirks[NUM_PROVIDERS];	/* what each model refuses (quirks.c) */

	/* each provider's host, looked up by the engine (resolve.h) */
	Lookup	   *lookup[NUM_PROVIDERS];
	TimestampTz lookup_started[NUM_PROVIDERS];
	struct curl_slist *resolve[NUM_PROVIDERS];	/* once the lookup is done */

	/* engines of this process that hold resources (see engine_release) */
	dlist_node	live_node;
	SubTransactionId subxact;	/* where it was created */
	bool		released;
};

/* Hand a job back to its owner (engine.c); exhausted: see engine.h */
extern void engine_finish_job(Engine *engine, EngineJob *job, OutcomeClass cls,
							  const char *reason, bool exhausted);

/* Decide what an attempt's outcome means for its job (settle.c) */
extern void engine_settle_attempt(Engine *engine, EngineJob *job, Outcome *out,
								  const RequestPlan *plan);

#endif							/* CTR_ENGINE_INT_H */
