/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  Run batches against providers: HTTP over curl multi, retries, answers.
 *
 * The same engine runs in a background worker (one provider) and, when no
 * worker slot is free or only the mock is in play, in the calling backend
 * itself.  Its owner submits jobs, calls engine_wait() to make progress,
 * and collects finished jobs; engine_wait() sleeps on the process latch
 * and curl's sockets together, so interrupts are served mid-request.
 *
 * Who owns what (one owner, one release path each):
 *
 *	what				created by		owner		freed by
 *	Engine, its jobs	engine_create,	engine->cxt	the context (jobs: also
 *						engine_new_job				engine_free_job)
 *	curl multi, wait	engine_create,	Engine		engine_release
 *	set, sockets		multi.c						(multi.h)
 *	transfers: easy		dispatch,		Engine's	transfer_release, when
 *	handle, headers,	transfer.c		transfer	curl reports the transfer
 *	body (engine->cxt),					list		done, else engine_release
 *	response, limiter
 *	slot (transfer.h)
 *	idle easy handles	transfer_release Engine's	multi_release (multi.h)
 *	(reset)				(multi_retire)	multi
 *	keys (configs[])	engine_create	Engine		wiped by engine_release
 *	host lookups		engine_create	Engine and	engine_release abandons its
 *	(resolve.h)			(a thread each)	the thread	reference; the thread frees
 *										(refcount)	the lookup when it returns
 *	CURLOPT_RESOLVE		dispatch, once	Engine		engine_release, after every
 *	lists				a lookup is done			easy handle is gone
 *	job texts			the owner		the owner	the owner, after the job
 *
 * engine_release() runs exactly once whichever way the engine ends, from
 * the first of: the reset callback of engine->cxt, and the abort of the
 * (sub)transaction that created it (a transaction callback):
 *	normal end		engine_destroy() deletes the context (the caller's
 *					channels_finish(), or the worker's exit callback);
 *	ERROR, cancel,	the caller: the (sub)transaction's abort; its memory
 *	statement_timeout  (under SPI's, which lives until the transaction is
 *					cleaned up -- at ROLLBACK, in a transaction block) goes
 *					later;
 *	FATAL, terminate	the caller: proc_exit() aborts the transaction, as
 *					above; a worker: its before_shmem_exit callback calls
 *					engine_destroy();
 *	postmaster death	WL_EXIT_ON_PM_DEATH exits through proc_exit(), as above.
 * It never raises, and touches only memory of engine->cxt itself (which
 * PostgreSQL frees after the callback) or outside PostgreSQL (curl, malloc,
 * the shared limiter); engine->cxt has no child context that it uses.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_ENGINE_H
#define CTR_ENGINE_H

#include "postgres.h"
#include "lib/ilist.h"
#include "utils/timestamp.h"

#include "budget.h"
#include "provider.h"

/* Settings of one call, copied to the workers as they are */
typedef struct EngineSettings
{
	int			request_timeout_ms;
	int			connect_timeout_ms;
	int			max_retries;
	int			max_retry_wait_ms;	/* longer server hints fail over instead */
	int			rate_window_ms; /* what rpm and tpm count in */
	int			breaker_cooldown_ms;	/* an open circuit stays open this long */
} EngineSettings;

/*
 * What each of a job's requests came to, how long it was held back, and
 * what it cost.  Copied byte for byte from a worker to the caller.
 */
typedef struct JobCounters
{
	int32		requests;		/* HTTP requests sent */
	int32		answered;		/* usable answers */
	int32		throttled;		/* 429 rate limits, flex out of capacity */
	int32		transient;		/* 5xx, timeouts, resets */
	int32		soft;			/* unusable answers */
	int32		too_large;		/* over the model's context or output limit */
	int32		unsupported;	/* 400 naming a parameter the model refuses */
	int32		fatal;			/* bad key, quota, unknown model */
	int32		rejected;		/* 400/422 */
	int32		breaker_trips;	/* this job's failure opened the circuit */
	int32		paced_ms;		/* time held back by rpm/tpm/concurrency */
	int32		splits;			/* requests sent again in halves */
	uint32		dropped;		/* PARAM_BIT()s its requests went without */
	int64		tokens_cached;	/* of the job's tokens_in */
	int64		tokens_cache_write;
	int64		tokens_reasoning;	/* of its tokens_out */
	double		cost_usd;		/* at the prices, cached tokens, flex, peak hours */
} JobCounters;

/* What the owner asks for: one request's worth of personas and an ad */
typedef struct JobSpec
{
	int64		batch_no;
	int			ad_no;			/* which of the call's ads (0 for ctr_predict) */
	ProviderId	provider;
	int			n;				/* personas */
	AnswerKind	kind;			/* 0/1 or percent */
	const char *text;			/* the request text; the owner keeps it alive */
	int			text_len;
	const char *tail;			/* and after it this, or NULL: the persona block
								 * and the ad go out without being joined first
								 * (channels_send joins them; an engine's jobs
								 * have no tail) */
	int			tail_len;
	const char *ad;				/* the ad itself, for the mock; NULL in workers */
	uint64		cache_key;		/* the same for every ad of a batch (prompt caches) */
	bool		last_resort;	/* no other provider is left for it: wait out an
								 * open breaker, use every retry; else a
								 * failure sends it back at once */
	ModelList  *models;			/* not a batch: list the provider's models into
								 * it (its owner keeps it alive) */
} JobSpec;

typedef struct EngineJob
{
	dlist_node	node;
	int64		batch_no;
	int			ad_no;
	ProviderId	provider;
	int			n;
	AnswerKind	kind;
	const char *text;
	int			text_len;
	const char *ad;
	uint64		cache_key;
	bool		last_resort;
	ModelList  *models;			/* see JobSpec */

	/*
	 * A half of a job that was split: it answers personas offset ..
	 * offset + n - 1 of parent, which waits for its halves and is not on
	 * any list meanwhile.  Its text is the engine's (own_text).
	 */
	struct EngineJob *parent;
	int			offset;
	int			pending_halves;
	char	   *own_text;

	/* state */
	int			attempts;		/* attempts that counted against retries */
	int			throttles;		/* rate-limit waits (do not count) */
	int			param_retries;	/* sent again without a refused parameter */
	TimestampTz not_before;
	TimestampTz sent_at;		/* when its latest request left */

	/* result, once the job is on the done list */
	OutcomeClass cls;
	bool		exhausted;		/* this provider did all it could (false: it
								 * sent it back before its retries, for a
								 * provider that has not tried it) */
	uint8	   *clicks;			/* n answers when cls == OUTCOME_OK (0/1 or percent) */
	int64		tokens_in;
	int64		tokens_out;
	int			retries;
	JobCounters counters;
	int64		est_tokens;		/* estimate of the attempt in flight */
	char		model[CTR_MODEL_MAX];
	char		reason[CTR_REASON_MAX];
	int			http_status;
} EngineJob;

typedef struct Engine Engine;

extern void engine_define_settings(void);
extern void engine_current_settings(EngineSettings *settings);

extern Engine *engine_create(const ProviderConfig *configs, int nconfigs,
							 const EngineSettings *settings, const char *platform,
							 CallBudget *budget);
extern EngineJob *engine_new_job(Engine *engine, const JobSpec *spec);
extern void engine_submit(Engine *engine, EngineJob *job);
extern EngineJob *engine_next_done(Engine *engine);
extern void engine_free_job(EngineJob *job);
extern void engine_wait(Engine *engine, long timeout_ms, uint32 wait_event_info);
extern void engine_destroy(Engine *engine);

#endif							/* CTR_ENGINE_H */
