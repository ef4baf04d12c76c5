/*-------------------------------------------------------------------------
 *
 * quirks.h
 *	  What each model refuses (a parameter, an effort), remembered for the
 *	  call and, with the library preloaded, in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_QUIRKS_H
#define CTR_QUIRKS_H

#include "postgres.h"

#include "provider.h"

extern void quirks_shmem_request(void);
extern void quirks_shmem_startup(void);

extern void quirks_recall(ProviderId provider, const char *model, ModelQuirks *quirks);
extern void quirks_remember(ProviderId provider, const char *model, const ModelQuirks *quirks);
extern bool quirks_learn(ModelQuirks *quirks, const RequestPlan *plan, RequestParam param);

#endif							/* CTR_QUIRKS_H */
