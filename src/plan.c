/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  Smooth weighted round-robin over the providers in play.
 *
 * Each pick adds every live slot's weight to its running credit, takes the
 * slot with the most credit (the first one listed on a tie, which makes
 * equal weights plain round-robin in list order), and charges it the total
 * weight.  Removing a slot (a provider taken out mid-call) just stops it
 * from earning credit; the others carry on from where they were.
 *
 *-------------------------------------------------------------------------
 */
#include "plan.h"

#include <string.h>

void
plan_init(BatchPlan *plan, const int *weights, int nslots)
{
	memset(plan, 0, sizeof(*plan));
	if (nslots > PLAN_MAX_SLOTS)
		nslots = PLAN_MAX_SLOTS;
	plan->nslots = nslots;
	for (int i = 0; i < nslots; i++)
	{
		plan->weight[i] = weights[i];
		plan->removed[i] = (weights[i] <= 0);
	}
}

int
plan_next(BatchPlan *plan)
{
	int64_t		total = 0;
	int			best = -1;

	for (int i = 0; i < plan->nslots; i++)
	{
		if (plan->removed[i])
			continue;
		plan->current[i] += plan->weight[i];
		total += plan->weight[i];
		if (best < 0 || plan->current[i] > plan->current[best])
			best = i;
	}
	if (best >= 0)
		plan->current[best] -= total;
	return best;
}

void
plan_remove(BatchPlan *plan, int slot)
{
	if (slot >= 0 && slot < plan->nslots)
	{
		plan->removed[slot] = true;
		plan->current[slot] = 0;
	}
}
