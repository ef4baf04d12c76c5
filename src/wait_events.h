/*-------------------------------------------------------------------------
 *
 * wait_events.h
 *	  What ctr_dist processes wait on, as pg_stat_activity shows it.
 *
 * PostgreSQL 17 and later name extension wait events (wait_event_type
 * Extension, wait_event CtrDistProviderRequests and so on); 15 and 16
 * show every one as the generic Extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_WAIT_EVENTS_H
#define CTR_WAIT_EVENTS_H

#include "postgres.h"

typedef enum CtrWait
{
	CTR_WAIT_WORKER_REQUESTS,	/* a worker waits on its HTTP requests */
	CTR_WAIT_CALLER_REQUESTS,	/* the caller waits on requests it runs itself */
	CTR_WAIT_CALLER_RESULTS,	/* the caller waits for its workers' results */
	NUM_CTR_WAITS
} CtrWait;

extern uint32 ctr_wait_event(CtrWait which);

#endif							/* CTR_WAIT_EVENTS_H */
