/*-------------------------------------------------------------------------
 *
 * transfer.h
 *	  One HTTP attempt of one job: the request, the curl easy handle, the
 *	  response, and what the provider's parser makes of it.
 *
 * Resources (one owner each, one release path):
 *
 *	what				created by			freed by, on every path
 *	Transfer struct		transfer_create		transfer_release (pfree)
 *						(linked into the
 *						engine's list
 *						before anything
 *						else is acquired)
 *	limiter slot		transfer_acquire	transfer_release (slot_held)
 *	budget reservation	transfer_reserve	transfer_release: settled with what
 *						(budget.h)			the provider reported when the
 *											transfer finished; on abort the
 *											call's budget is gone with it
 *	CURL easy handle	transfer_build		transfer_release, which retires it
 *						(multi_easy: an		to the multi (multi.h): kept for
 *						idle one or new)	reuse when curl reported it done
 *											(any result), reset; torn down
 *											mid-flight: freed
 *	header list (key)	transfer_build		transfer_release (wiped first)
 *	request body		transfer_build:		transfer_release (pfree), after
 *						in the transfer's	the easy handle is retired: curl
 *						context (req.		reads it where it is
 *						body_cxt)			(CURLOPT_POSTFIELDS)
 *	response buffer		write callback		transfer_release (malloc: grown
 *						(malloc)			inside a curl callback)
 *
 * transfer_release never raises and is the only function that frees any
 * of these; the engine calls it when curl reports the transfer done and,
 * for transfers still in flight, from its own release path (engine.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_TRANSFER_H
#define CTR_TRANSFER_H

#include "postgres.h"

#include <curl/curl.h>

#include "lib/ilist.h"

#include "budget.h"
#include "engine.h"
#include "multi.h"
#include "provider.h"

typedef struct ResponseBuffer
{
	char	   *data;			/* malloc'd: grown from curl callbacks */
	size_t		len;
	size_t		cap;
	bool		overflow;
} ResponseBuffer;

typedef struct Transfer
{
	dlist_node	node;			/* in the engine's list of transfers */
	EngineJob  *job;
	const ProviderConfig *cfg;
	int			window_ms;		/* what the limiter counts in */
	bool		slot_held;		/* a limiter slot is ours to give back */
	CallBudget *budget;			/* where the reservation was made, or NULL */
	double		reserved_usd;	/* this request's upper bound */
	RequestPlan plan;			/* what it asks for (ops->plan) */
	char	   *body;			/* the request body, or NULL */
	size_t		body_len;		/* bytes of the request body */
	int64		used_in;		/* the response's usage, once known */
	int64		used_out;
	double		cost_usd;		/* and what that cost */
	CURL	   *easy;
	struct curl_slist *headers;
	ResponseBuffer response;
	HttpHints	hints;
	TimestampTz started;
	char		errbuf[CURL_ERROR_SIZE];
} Transfer;

/* A zeroed transfer linked into list: from here on the release path owns it */
extern Transfer *transfer_create(MemoryContext cxt, dlist_head *list, EngineJob *job,
								 const ProviderConfig *cfg, int window_ms);

/* Take a limiter slot for the job's estimate; false with *wait_ms if not now */
extern bool transfer_acquire(Transfer *t, long *wait_ms);

/*
 * Build the request as t->plan says (may raise: the release path cleans up);
 * resolve: the provider's addresses for CURLOPT_RESOLVE (resolve.h), or NULL
 */
extern void transfer_build(Transfer *t, CurlMulti *m, const EngineSettings *settings,
						   MemoryContext scratch, struct curl_slist *resolve);

/* Reserve the request's upper bound in the call's budget; false if refused */
extern bool transfer_reserve(Transfer *t, CallBudget *budget, double tokens_per_byte);

/* Hand the built request to curl */
extern void transfer_launch(Transfer *t, CurlMulti *m);

/* Classify a finished transfer: HTTP status and body through the parser */
extern void transfer_outcome(Transfer *t, CURLcode code, Outcome *out);

/*
 * Give back everything the transfer holds and unlink it; never raises.
 * finished: the transfer ran to its end, so its budget reservation is
 * settled with what it cost (not when the call is being torn down: the
 * budget may live in a DSM segment that is already detached).
 */
extern void transfer_release(Transfer *t, CurlMulti *m, bool finished);

#endif							/* CTR_TRANSFER_H */
