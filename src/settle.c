/*-------------------------------------------------------------------------
 *
 * settle.c
 *	  What a finished attempt means for its job: answered, retried (after
 *	  how long), split in halves, sent elsewhere, or given up on.
 *
 * Throttles wait as the server says without using up an attempt, and halve
 * the provider's concurrency; transient failures and unusable answers go
 * to another provider first, and at the last one retry with exponential
 * backoff and jitter up to ctr_dist.max_retries (unusable answers in
 * halves); batches too large for the model
 * are split; a parameter the model refuses is learnt (quirks.c) and the
 * request sent again without it; fatal answers take the provider out of
 * the engine.  The circuit breaker hears of every answer and failure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"

#include "engine_int.h"
#include "halves.h"
#include "ratelimit.h"
#include "stats.h"

#define MAX_THROTTLE_WAITS 20

/* Backoff for the k-th retry: 0.5 s * 2^(k-1), at most 8 s, 75-100% jitter */
static long
backoff_ms(int k)
{
	double		base = 500.0 * pow(2.0, Max(k - 1, 0));

	base = Min(base, 8000.0);
	return (long) (base * (1.0 - 0.25 * pg_prng_double(&pg_global_prng_state)));
}

/*
 * Finish the waiting jobs of a provider with cls: they will not be sent.
 * A breaker that opens sends back only the jobs that have somewhere else
 * to go (everyone: when the provider is out).
 */
static void
bounce_waiting(Engine *engine, ProviderId provider, OutcomeClass cls, const char *reason,
			   bool provider_out)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &engine->waiting)
	{
		EngineJob  *other = dlist_container(EngineJob, node, iter.cur);

		if (other->provider == provider && (provider_out || !other->last_resort))
		{
			dlist_delete(&other->node);
			engine_finish_job(engine, other, cls, reason, provider_out);
		}
	}
}

/*
 * The breaker's probe failed: it spoke for every job waiting on it with
 * nowhere else to go, so each of them has used up one attempt.  A dead
 * provider fails them after their retries' worth of cooldowns, however
 * many there are; a provider that recovers lets them all through.
 */
static void
charge_waiting(Engine *engine, ProviderId provider, const char *reason)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &engine->waiting)
	{
		EngineJob  *other = dlist_container(EngineJob, node, iter.cur);

		if (other->provider != provider || !other->last_resort)
			continue;
		other->counters.transient++;
		other->retries++;
		if (++other->attempts > engine->settings.max_retries)
		{
			dlist_delete(&other->node);
			engine_finish_job(engine, other, OUTCOME_TRANSIENT, reason, true);
		}
	}
}

static void
take_out_provider(Engine *engine, ProviderId provider, const char *reason)
{
	engine->dead[provider] = true;
	bounce_waiting(engine, provider, OUTCOME_FATAL, reason, true);
}

/* Send the job's halves instead of it; false if it cannot be split */
static bool
split_job(Engine *engine, EngineJob *job)
{
	EngineJob  *first;
	EngineJob  *second;

	if (!halves_make(engine->cxt, job, &first, &second))
		return false;
	stats_count_split(job->provider);
	dlist_push_tail(&engine->waiting, &first->node);
	dlist_push_tail(&engine->waiting, &second->node);
	return true;
}

/*
 * A 400 naming a parameter the model refuses: learn it (quirks.c) and send
 * the request again at once without it, or with the next higher effort.
 * False when there was nothing left to change: a rejection after all.
 */
static bool
settle_param(Engine *engine, EngineJob *job, const Outcome *out, const RequestPlan *plan)
{
	ProviderId	p = job->provider;

	if (++job->param_retries > 2 * NUM_PARAMS ||
		!quirks_learn(&engine->quirks[p], plan, out->param))
		return false;
	quirks_remember(p, engine->configs[p].model, &engine->quirks[p]);
	job->counters.unsupported++;
	return true;
}

/*
 * Rate limits wait, as the server says, without using up an attempt, and
 * slow the provider down; flex out of capacity backs off, and after the
 * retries goes elsewhere.  Returns the wait, or -1 when the job is done.
 */
static long
settle_throttle(Engine *engine, EngineJob *job, const Outcome *out)
{
	ProviderId	p = job->provider;
	long		wait_ms;

	job->counters.throttled++;
	if (out->capacity)
	{
		if (++job->attempts > engine->settings.max_retries)
			return -1;
		wait_ms = backoff_ms(job->attempts);
		if (out->retry_after >= 0 && out->retry_after * 1000.0 <= engine->settings.max_retry_wait_ms)
			wait_ms = Max(wait_ms, (long) (out->retry_after * 1000.0));
		return wait_ms;
	}
	/* the server says we are too fast: halve our concurrency */
	engine->concurrency[p] = Max(1, engine->concurrency[p] / 2);
	engine->successes[p] = 0;
	/* and, with no P_rpm and a wait we honour, what rate it takes */
	if (engine->configs[p].rpm <= 0 &&
		out->retry_after * 1000.0 <= engine->settings.max_retry_wait_ms)
		ratelimit_learn_429(p, out->retry_after, engine->settings.rate_window_ms,
							engine->settings.max_retry_wait_ms, job->sent_at);
	if (out->retry_after * 1000.0 > engine->settings.max_retry_wait_ms ||
		++job->throttles > MAX_THROTTLE_WAITS)
		return -1;
	wait_ms = out->retry_after >= 0 ? (long) (out->retry_after * 1000.0)
		: backoff_ms(job->throttles);
	ratelimit_pause(p, wait_ms);
	return wait_ms;
}

/*
 * Transient errors and unusable answers go to another provider first (an
 * unusable answer at temperature 0 tends to come back the same); with none
 * left they retry with backoff, an unusable answer in halves; an answer
 * cut off at the output limit is sent in halves at once.  Returns
 * the wait, -1 when the job is done (with *exhausted), -2 when it was split.
 */
static long
settle_failure(Engine *engine, EngineJob *job, const Outcome *out, bool *exhausted)
{
	ProviderId	p = job->provider;
	long		wait_ms;

	if (out->cls == OUTCOME_SOFT)
		job->counters.soft++;
	else
		job->counters.transient++;
	*exhausted = true;
	/* an open breaker sends a job elsewhere, if it has an elsewhere */
	if (breaker_is_open(&engine->breaker[p]) && !job->last_resort)
	{
		*exhausted = false;
		return -1;
	}
	/*
	 * A job with an elsewhere goes there at once, not after a backoff here:
	 * another provider answers sooner than this one recovers, and nothing
	 * is sent twice; an unusable answer at temperature 0 would likely come
	 * back the same.  It comes back here when no one else can answer (the
	 * last provider retries with backoff).  An answer cut off at the output
	 * limit is sent in halves instead.
	 */
	if (!job->last_resort && !(out->cls == OUTCOME_SOFT && out->truncated))
	{
		*exhausted = false;
		return -1;
	}
	if (++job->attempts > engine->settings.max_retries)
		return -1;
	if (out->cls == OUTCOME_SOFT && split_job(engine, job))
		return -2;
	wait_ms = backoff_ms(job->attempts);
	if (out->retry_after >= 0 &&
		out->retry_after * 1000.0 <= engine->settings.max_retry_wait_ms)
		wait_ms = Max(wait_ms, (long) (out->retry_after * 1000.0));
	return wait_ms;
}

/* Decide what an attempt's outcome means for its job */
void
engine_settle_attempt(Engine *engine, EngineJob *job, Outcome *out, const RequestPlan *plan)
{
	ProviderId	p = job->provider;
	long		wait_ms = 0;
	bool		exhausted = true;

	job->tokens_in += out->tokens_in;
	job->tokens_out += out->tokens_out;
	job->counters.tokens_cached += out->tokens_cached;
	job->counters.tokens_cache_write += out->tokens_cache_write;
	job->counters.tokens_reasoning += out->tokens_reasoning;
	job->http_status = out->http_status;
	if (out->model[0])
		strlcpy(job->model, out->model, sizeof(job->model));
	strlcpy(job->reason, out->reason, sizeof(job->reason));

	/*
	 * The breaker hears of every answer and transient failure; its probe
	 * decides it whatever came back.  A 429, an unusable answer or a
	 * rejection is no transient failure -- the provider is up -- and closes
	 * it: left undecided, the breaker would stay half-open for good, and
	 * every job with nowhere else to go would wait for it, the call with
	 * them.
	 */
	if (out->cls == OUTCOME_OK || out->cls == OUTCOME_TRANSIENT || engine->breaker[p].probing)
	{
		bool		probe = engine->breaker[p].probing;

		if (breaker_record(&engine->breaker[p], out->cls == OUTCOME_TRANSIENT,
						   engine->settings.breaker_cooldown_ms))
		{
			job->counters.breaker_trips++;
			bounce_waiting(engine, p, OUTCOME_TRANSIENT, "circuit breaker open: most recent requests failed",
						   false);
			if (probe)
				charge_waiting(engine, p, out->reason);
		}
	}

	switch (out->cls)
	{
		case OUTCOME_OK:
			job->counters.answered++;
			if (engine->configs[p].rpm <= 0)
				ratelimit_learn_answer(p, job->sent_at);
			/* additive increase back towards the configured concurrency */
			if (engine->concurrency[p] < engine->configs[p].max_concurrency &&
				++engine->successes[p] >= 10)
			{
				engine->concurrency[p]++;
				engine->successes[p] = 0;
			}
			/* a model list comes in pages */
			if (job->models && job->models->next_page[0] && job->models->n < job->models->max)
				break;
			engine_finish_job(engine, job, OUTCOME_OK, NULL, true);
			return;
		case OUTCOME_FATAL:
			job->counters.fatal++;
			engine_finish_job(engine, job, OUTCOME_FATAL, NULL, true);
			take_out_provider(engine, p, out->reason);
			return;
		case OUTCOME_PARAM:
		case OUTCOME_BUG:
			/* a parameter the model refuses is sent again without it, once */
			if (out->cls == OUTCOME_PARAM && settle_param(engine, job, out, plan))
				break;
			job->counters.rejected++;
			engine_finish_job(engine, job, OUTCOME_BUG, NULL, true);
			return;
		case OUTCOME_TOO_LARGE:
			/* the halves fit where the whole did not; one persona is as small as it gets */
			job->counters.too_large++;
			if (!split_job(engine, job))
				engine_finish_job(engine, job, OUTCOME_TOO_LARGE, NULL, true);
			return;
		case OUTCOME_THROTTLE:
			if ((wait_ms = settle_throttle(engine, job, out)) < 0)
			{
				engine_finish_job(engine, job, OUTCOME_THROTTLE, NULL, true);
				return;
			}
			break;
		case OUTCOME_TRANSIENT:
		case OUTCOME_SOFT:
			wait_ms = settle_failure(engine, job, out, &exhausted);
			if (wait_ms == -1)
				engine_finish_job(engine, job, out->cls, NULL, exhausted);
			if (wait_ms < 0)
				return;
			break;
		default:
			elog(ERROR, "unexpected outcome class %d", (int) out->cls);
	}
	if (out->cls != OUTCOME_OK)
		job->retries++;
	job->not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);
	dlist_push_tail(&engine->waiting, &job->node);
}
