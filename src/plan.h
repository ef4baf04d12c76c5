/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  Which provider gets which batch: smooth weighted round-robin.
 *
 * With equal weights batch i goes to provider i mod P in list order; with
 * unequal weights every prefix of the plan stays within one batch of the
 * exact proportion.  Deterministic, pure, no backend needed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_PLAN_H
#define CTR_PLAN_H

#include <stdint.h>
#include <stdbool.h>

#define PLAN_MAX_SLOTS 8

typedef struct BatchPlan
{
	int			nslots;
	int			weight[PLAN_MAX_SLOTS];
	int64_t		current[PLAN_MAX_SLOTS];
	bool		removed[PLAN_MAX_SLOTS];
} BatchPlan;

extern void plan_init(BatchPlan *plan, const int *weights, int nslots);
extern int	plan_next(BatchPlan *plan);	/* -1 when no slot is left */
extern void plan_remove(BatchPlan *plan, int slot);

#endif							/* CTR_PLAN_H */
