/*-------------------------------------------------------------------------
 *
 * quirks.c
 *	  What each model refuses, remembered.
 *
 * When a provider answers 400 naming a parameter (temperature on a
 * reasoning model, reasoning_effort "none" on an older one, flex on a model
 * without it), the engine sends the request again without it, or with the
 * next higher effort, and records that here, so that the model is not asked
 * again: for the rest of the call in the engine, and with the library
 * preloaded in shared memory, for every session and worker until the server
 * restarts.  Entries are keyed by provider and model name; when the table is
 * full the oldest entry goes (it is only relearnt, at the cost of one 400).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "quirks.h"

#define QUIRK_SLOTS 128

typedef struct QuirkSlot
{
	bool		used;
	ProviderId	provider;
	char		model[CTR_MODEL_MAX];
	ModelQuirks quirks;
} QuirkSlot;

typedef struct SharedQuirks
{
	slock_t		mutex;
	int			next;			/* the slot to reuse when all are taken */
	QuirkSlot	slots[QUIRK_SLOTS];
} SharedQuirks;

static SharedQuirks *shared = NULL;

void
quirks_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedQuirks)));
}

void
quirks_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("ctr_dist model quirks", sizeof(SharedQuirks), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(SharedQuirks));
		SpinLockInit(&shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* the slot of provider and model; caller holds the mutex */
static QuirkSlot *
find_slot(ProviderId provider, const char *model)
{
	for (int i = 0; i < QUIRK_SLOTS; i++)
	{
		QuirkSlot  *slot = &shared->slots[i];

		if (slot->used && slot->provider == provider && strcmp(slot->model, model) == 0)
			return slot;
	}
	return NULL;
}

/* Add what the shared table knows about the model to *quirks */
void
quirks_recall(ProviderId provider, const char *model, ModelQuirks *quirks)
{
	QuirkSlot  *slot;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	slot = find_slot(provider, model);
	if (slot)
	{
		quirks->dropped |= slot->quirks.dropped;
		quirks->reasoning_step = Max(quirks->reasoning_step, slot->quirks.reasoning_step);
	}
	SpinLockRelease(&shared->mutex);
}

/* Tell every session what was learnt about the model */
void
quirks_remember(ProviderId provider, const char *model, const ModelQuirks *quirks)
{
	QuirkSlot  *slot;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	slot = find_slot(provider, model);
	if (slot == NULL)
	{
		for (int i = 0; i < QUIRK_SLOTS && slot == NULL; i++)
			if (!shared->slots[i].used)
				slot = &shared->slots[i];
		if (slot == NULL)
		{
			slot = &shared->slots[shared->next];
			shared->next = (shared->next + 1) % QUIRK_SLOTS;
		}
		memset(slot, 0, sizeof(*slot));
		slot->used = true;
		slot->provider = provider;
		strlcpy(slot->model, model, sizeof(slot->model));
	}
	slot->quirks.dropped |= quirks->dropped;
	slot->quirks.reasoning_step = Max(slot->quirks.reasoning_step, quirks->reasoning_step);
	SpinLockRelease(&shared->mutex);
}

/*
 * Learn from a refusal of param in a request planned as plan: a refused
 * effort steps up when a higher one is left to try, anything else is left
 * out from now on.  Returns false when there is nothing left to change (the
 * request did not carry it, or it was already accounted for).
 */
bool
quirks_learn(ModelQuirks *quirks, const RequestPlan *plan, RequestParam param)
{
	if (param <= PARAM_NONE || param >= NUM_PARAMS)
		return false;
	if (!(plan->sent & PARAM_BIT(param)))
		return false;
	if (quirks->dropped & PARAM_BIT(param))
		return true;			/* learnt meanwhile, from a request in flight */
	if (param == PARAM_REASONING && plan->can_step)
	{
		/* another request in flight may have stepped up already */
		quirks->reasoning_step = Max(quirks->reasoning_step, plan->step + 1);
		return true;
	}
	quirks->dropped |= PARAM_BIT(param);
	return true;
}
