/*-------------------------------------------------------------------------
 *
 * budget.c
 *	  The call's ledger: reserve before a request leaves, settle after.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "budget.h"

void
budget_init(CallBudget *budget, double limit_usd)
{
	memset(budget, 0, sizeof(*budget));
	SpinLockInit(&budget->mutex);
	budget->limit_usd = limit_usd;
}

bool
budget_reserve(CallBudget *budget, double cost_usd)
{
	bool		ok;

	SpinLockAcquire(&budget->mutex);
	ok = !budget->stopped &&
		(budget->limit_usd <= 0 ||
		 budget->spent_usd + budget->reserved_usd + cost_usd <= budget->limit_usd);
	if (ok)
		budget->reserved_usd += cost_usd;
	else if (!budget->stopped)
	{
		budget->stopped = true;
		budget->refused_usd = cost_usd;
	}
	SpinLockRelease(&budget->mutex);
	return ok;
}

void
budget_settle(CallBudget *budget, double reserved_usd, double spent_usd)
{
	SpinLockAcquire(&budget->mutex);
	budget->reserved_usd -= reserved_usd;
	if (budget->reserved_usd < 1e-12)
		budget->reserved_usd = 0;	/* rounding, after the last one */
	budget->spent_usd += spent_usd;
	SpinLockRelease(&budget->mutex);
}

bool
budget_stopped(CallBudget *budget)
{
	bool		stopped;

	SpinLockAcquire(&budget->mutex);
	stopped = budget->stopped;
	SpinLockRelease(&budget->mutex);
	return stopped;
}

void
budget_read(CallBudget *budget, CallBudget *copy)
{
	SpinLockAcquire(&budget->mutex);
	*copy = *budget;
	SpinLockRelease(&budget->mutex);
}
