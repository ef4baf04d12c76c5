/*-------------------------------------------------------------------------
 *
 * resolve.h
 *	  Host name lookups that a call can walk away from.
 *
 * curl resolves host names on threads of its own and, depending on its
 * version, waits for a lookup in progress when a transfer or the multi
 * handle is cleaned up: a DNS server that does not answer would then hold
 * a cancelled call, or a terminated worker, until the lookup times out
 * (libcurl 8.23 waits even with CURLOPT_QUICK_EXIT).  So the engine looks
 * each provider's host up itself, on a detached thread it can abandon, and
 * hands curl the addresses (CURLOPT_RESOLVE); curl never resolves.
 *
 * Ownership: a Lookup is shared by its thread and the engine (a reference
 * count under a mutex); whoever drops the last reference frees it.  The
 * engine drops its reference in lookup_abandon(), on every path (its
 * release path, engine.h); the thread drops its own when getaddrinfo
 * returns, however long that takes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_RESOLVE_H
#define CTR_RESOLVE_H

#include <stdbool.h>

typedef struct Lookup Lookup;

typedef enum LookupState
{
	LOOKUP_PENDING,
	LOOKUP_DONE,				/* lookup_resolve_entry() has curl's entry */
	LOOKUP_FAILED				/* let curl try, and report what it finds */
} LookupState;

/*
 * Start looking up the host of a URL; NULL when there is nothing to look
 * up (a numeric address) or no thread could be started (curl resolves it
 * then).  Never raises.
 */
extern Lookup *lookup_start(const char *url);

extern LookupState lookup_state(Lookup *lookup);

/* "host:port:addr1,addr2", for CURLOPT_RESOLVE; valid until abandoned */
extern const char *lookup_resolve_entry(Lookup *lookup);

/* The engine is done with it; the thread may still run.  Never raises. */
extern void lookup_abandon(Lookup *lookup);

#endif							/* CTR_RESOLVE_H */
