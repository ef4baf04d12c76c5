/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  What differs between the PostgreSQL majors ctr_dist builds against
 *	  (15 to 19), written once.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_COMPAT_H
#define CTR_COMPAT_H

#include "postgres.h"
#include "storage/latch.h"
#include "utils/rel.h"
#include "utils/relcache.h"

/*
 * 17 made the first argument of CreateWaitEventSet a ResourceOwner.  The
 * engine frees its set itself, on every path, so it is owned by nobody
 * else: NULL on 17+ (the set then lives in TopMemoryContext until freed),
 * the engine's own context before.
 */
static inline WaitEventSet *
ctr_create_wait_event_set(MemoryContext cxt, int nevents)
{
#if PG_VERSION_NUM >= 170000
	(void) cxt;
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(cxt, nevents);
#endif
}

/* 18 added deferrable_ok; false gives the answer 15-17 give */
static inline Oid
ctr_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

#endif							/* CTR_COMPAT_H */
