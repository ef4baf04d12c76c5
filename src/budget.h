/*-------------------------------------------------------------------------
 *
 * budget.h
 *	  The budget of one call (ctr_dist.max_cost_usd): a hard cap.
 *
 * Every request that leaves -- first send, retry or failover, from a worker
 * or the calling backend -- first reserves an upper bound of what it can
 * cost: its prompt at the most tokens per byte it may have and the full
 * output limit it asks for, at the price settings.  A request is refused
 * when what was spent, plus what is reserved in flight, plus its own bound
 * would pass the budget; from then on the call stops: nothing more goes
 * out, and it fails once what is in flight is back.  When a request ends,
 * its reservation becomes what the provider reported it cost.  So the
 * spend the providers report never passes the budget.
 *
 * One ledger per call, shared by the call's workers and its own engine: in
 * the call's DSM segment when it has workers, else in the caller's memory.
 * A spinlock protects it; nothing is called while it is held.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_BUDGET_H
#define CTR_BUDGET_H

#include "postgres.h"
#include "storage/spin.h"

typedef struct CallBudget
{
	slock_t		mutex;
	double		limit_usd;		/* 0: no limit */
	double		reserved_usd;	/* upper bounds of the requests in flight */
	double		spent_usd;		/* reported usage of the requests that ended */
	double		refused_usd;	/* the bound of the first request refused */
	bool		stopped;		/* a request was refused: none goes out now */
} CallBudget;

extern void budget_init(CallBudget *budget, double limit_usd);

/* Reserve cost_usd for a request about to leave; false: refused, stopped */
extern bool budget_reserve(CallBudget *budget, double cost_usd);

/* A request ended: its reservation becomes what it really cost */
extern void budget_settle(CallBudget *budget, double reserved_usd, double spent_usd);

/* Has a request been refused (so the call stops)? */
extern bool budget_stopped(CallBudget *budget);

/* A consistent copy, for messages */
extern void budget_read(CallBudget *budget, CallBudget *copy);

#endif							/* CTR_BUDGET_H */
