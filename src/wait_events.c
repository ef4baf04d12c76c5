/*-------------------------------------------------------------------------
 *
 * wait_events.c
 *	  Named wait events (17+), looked up once per process.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/wait_event.h"

#include "wait_events.h"

uint32
ctr_wait_event(CtrWait which)
{
#if PG_VERSION_NUM >= 170000
	static const char *const names[NUM_CTR_WAITS] = {
		"CtrDistProviderRequests",
		"CtrDistCallerRequests",
		"CtrDistCallerResults",
	};
	static uint32 ids[NUM_CTR_WAITS];

	if (ids[which] == 0)
		ids[which] = WaitEventExtensionNew(names[which]);
	return ids[which];
#else
	(void) which;
	return PG_WAIT_EXTENSION;
#endif
}
