/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  Batches in, answers out: jobs, retries, failures, the wait loop.
 *
 * The owner submits jobs; dispatch() starts what the concurrency limit,
 * the circuit breaker and the rate limiter allow (transfer.c), curl runs
 * them (multi.c), and engine_settle_attempt() (settle.c) decides what each
 * finished attempt means: a retry, a wait, halves, another provider, or
 * the end.  What cannot be answered goes back to the owner as a failure:
 * the engine never invents an answer.  The struct is in engine_int.h.
 *
 * Ownership is in engine.h: one release path, engine_release(), run by the
 * engine's memory context when it goes away, on every path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <time.h>
#include <curl/curl.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "engine_int.h"
#include "halves.h"
#include "mock.h"
#include "ratelimit.h"
#include "stats.h"
#include "transfer.h"

static int	ctr_request_timeout = 120000;
static int	ctr_connect_timeout = 10000;
static int	ctr_max_retries = 4;
static int	ctr_max_retry_wait = 60000;
static int	ctr_breaker_cooldown = 30000;

static bool curl_initialized = false;
static dlist_head live_engines = DLIST_STATIC_INIT(live_engines);
static bool xact_callbacks_registered = false;

void
engine_define_settings(void)
{
	DefineCustomIntVariable("ctr_dist.request_timeout",
							"Time limit for one HTTP request to a provider.",
							NULL,
							&ctr_request_timeout,
							120000, 100, 3600000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ctr_dist.connect_timeout",
							"Time limit for connecting to a provider.",
							NULL,
							&ctr_connect_timeout,
							10000, 100, 600000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ctr_dist.max_retries",
							"Retries of a batch on one provider after a transient or bad answer.",
							"Rate-limit waits do not count.  After the retries the batch fails over to another provider.",
							&ctr_max_retries,
							4, 0, 100,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ctr_dist.breaker_cooldown",
							"How long a provider whose requests mostly fail is left alone before a probe.",
							NULL,
							&ctr_breaker_cooldown,
							30000, 0, 3600000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ctr_dist.max_retry_wait",
							"Longest wait a server may ask for before a retry; longer hints fail over at once.",
							NULL,
							&ctr_max_retry_wait,
							60000, 0, 3600000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

void
engine_current_settings(EngineSettings *settings)
{
	settings->request_timeout_ms = ctr_request_timeout;
	settings->connect_timeout_ms = ctr_connect_timeout;
	settings->max_retries = ctr_max_retries;
	settings->max_retry_wait_ms = ctr_max_retry_wait;
	settings->rate_window_ms = ratelimit_window_ms();
	settings->breaker_cooldown_ms = ctr_breaker_cooldown;
}

/* ---- lifetime ---- */

/*
 * The one release path: every transfer (curl handles, header lists, limiter
 * slots), the multi handle and its wait set, the keys.  It runs once,
 * whichever comes first:
 *	- the engine's memory goes away: a reset callback of engine->cxt, run by
 *	  engine_destroy() at a normal end, or by memory cleanup after an abort,
 *	  or at proc_exit() (a worker's exit callback destroys its engine);
 *	- the (sub)transaction that created it aborts: a transaction callback,
 *	  because inside BEGIN ... ROLLBACK an aborted transaction's memory is
 *	  only cleaned up at the ROLLBACK, and until then the slots and the
 *	  connections would be held (and other sessions starved).
 * Both run after the stack that used the engine is gone.  It touches only
 * memory of engine->cxt itself (which PostgreSQL frees after the reset
 * callbacks) or outside PostgreSQL's memory (curl, malloc, the shared
 * limiter), and never raises.
 */
static void
engine_release(void *arg)
{
	Engine	   *engine = (Engine *) arg;
	dlist_mutable_iter iter;

	if (engine->released)
		return;
	engine->released = true;
	dlist_delete(&engine->live_node);
	dlist_foreach_modify(iter, &engine->transfers)
		transfer_release(dlist_container(Transfer, node, iter.cur), &engine->multi, false);
	multi_release(&engine->multi);
	for (int i = 0; i < NUM_PROVIDERS; i++)
	{
		/* a lookup still running goes on alone, and frees itself */
		lookup_abandon(engine->lookup[i]);
		engine->lookup[i] = NULL;
		curl_slist_free_all(engine->resolve[i]);
		engine->resolve[i] = NULL;
	}
	for (int i = 0; i < NUM_PROVIDERS; i++)
		explicit_bzero(engine->configs[i].api_key, sizeof(engine->configs[i].api_key));
}

/* An abort releases the engines it orphans, at once (see engine_release) */
static void
engine_xact_callback(XactEvent event, void *arg)
{
	dlist_mutable_iter iter;

	if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	dlist_foreach_modify(iter, &live_engines)
		engine_release(dlist_container(Engine, live_node, iter.cur));
}

static void
engine_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	dlist_mutable_iter iter;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	/* engines made in this subtransaction or in one inside it */
	dlist_foreach_modify(iter, &live_engines)
	{
		Engine	   *engine = dlist_container(Engine, live_node, iter.cur);

		if (engine->subxact >= mySubid)
			engine_release(engine);
	}
}

/* Look a provider's host up, so that curl never has to (resolve.h) */
static void
start_lookup(Engine *engine, ProviderId p)
{
	if (p == PROVIDER_MOCK)
		return;
	lookup_abandon(engine->lookup[p]);
	engine->lookup[p] = lookup_start(engine->configs[p].base_url);
	engine->lookup_started[p] = GetCurrentTimestamp();
}

/*
 * May a request of this provider go now, as far as its host lookup goes?
 * Its addresses are known, or nothing is looked up: yes.  The lookup runs:
 * not yet.  It ran longer than the connect timeout: the attempt fails as a
 * connection that could not be made would (and the lookup starts over).
 */
static bool
lookup_ready(Engine *engine, ProviderId p, bool *timed_out)
{
	Lookup	   *l = engine->lookup[p];

	*timed_out = false;
	if (l == NULL || engine->resolve[p] != NULL)
		return true;
	switch (lookup_state(l))
	{
		case LOOKUP_DONE:
			{
				struct curl_slist *list = curl_slist_append(NULL, lookup_resolve_entry(l));

				if (list == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_OUT_OF_MEMORY),
							 errmsg("out of memory")));
				engine->resolve[p] = list;
				return true;
			}
		case LOOKUP_FAILED:
			/* curl looks it up and reports what it finds */
			lookup_abandon(l);
			engine->lookup[p] = NULL;
			return true;
		case LOOKUP_PENDING:
			break;
	}
	if (TimestampDifferenceExceeds(engine->lookup_started[p], GetCurrentTimestamp(),
								   engine->settings.connect_timeout_ms))
	{
		*timed_out = true;
		start_lookup(engine, p);
	}
	return false;
}

Engine *
engine_create(const ProviderConfig *configs, int nconfigs,
			  const EngineSettings *settings, const char *platform, CallBudget *budget)
{
	MemoryContext cxt;
	MemoryContextCallback *cb;
	Engine	   *engine;
	long		max_connections = 8;

	if (!curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialize libcurl")));
		curl_initialized = true;
	}

	if (!xact_callbacks_registered)
	{
		RegisterXactCallback(engine_xact_callback, NULL);
		RegisterSubXactCallback(engine_subxact_callback, NULL);
		xact_callbacks_registered = true;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist engine",
								ALLOCSET_DEFAULT_SIZES);
	engine = MemoryContextAllocZero(cxt, sizeof(Engine));
	engine->cxt = cxt;
	engine->subxact = GetCurrentSubTransactionId();
	dlist_init(&engine->waiting);
	dlist_init(&engine->done);
	dlist_init(&engine->transfers);

	/* from here on, everything the engine acquires has its release path */
	cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	cb->func = engine_release;
	cb->arg = engine;
	MemoryContextRegisterResetCallback(cxt, cb);
	dlist_push_head(&live_engines, &engine->live_node);

	engine->scratch = AllocSetContextCreate(cxt, "ctr_dist request",
											ALLOCSET_DEFAULT_SIZES);
	engine->settings = *settings;
	engine->budget = budget;
	engine->platform = MemoryContextStrdup(cxt, platform);
	for (int i = 0; i < nconfigs; i++)
	{
		engine->configs[configs[i].id] = configs[i];
		engine->configured[configs[i].id] = true;
		engine->concurrency[configs[i].id] = configs[i].max_concurrency;
		quirks_recall(configs[i].id, configs[i].model, &engine->quirks[configs[i].id]);
		max_connections += configs[i].max_concurrency;
	}
	multi_init(&engine->multi, cxt, max_connections);
	for (int i = 0; i < nconfigs; i++)
		start_lookup(engine, configs[i].id);
	return engine;
}

void
engine_destroy(Engine *engine)
{
	MemoryContextDelete(engine->cxt);
}


EngineJob *
engine_new_job(Engine *engine, const JobSpec *spec)
{
	EngineJob  *job = MemoryContextAllocZero(engine->cxt, sizeof(EngineJob));

	Assert(spec->tail_len == 0);	/* channels_send joined it */
	job->batch_no = spec->batch_no;
	job->ad_no = spec->ad_no;
	job->provider = spec->provider;
	job->n = spec->n;
	job->kind = spec->kind;
	job->text = spec->text;
	job->text_len = spec->text_len;
	job->ad = spec->ad;
	job->cache_key = spec->cache_key;
	job->last_resort = spec->last_resort;
	job->models = spec->models;
	job->clicks = MemoryContextAllocZero(engine->cxt, Max(spec->n, 1));
	return job;
}

void
engine_free_job(EngineJob *job)
{
	pfree(job->clicks);
	pfree(job);
}

/* exhausted: this provider did all it could for the job (see engine.h) */
void
engine_finish_job(Engine *engine, EngineJob *job, OutcomeClass cls, const char *reason,
		   bool exhausted)
{
	job->cls = cls;
	job->exhausted = exhausted;
	if (reason && job->reason != reason)
		strlcpy(job->reason, reason, sizeof(job->reason));
	if (job->parent)
	{
		/* a half: the job it belongs to is done when both halves are */
		EngineJob  *whole = halves_merge(job);

		if (whole)
			engine_finish_job(engine, whole, whole->cls, NULL, whole->exhausted);
		return;
	}
	dlist_push_tail(&engine->done, &job->node);
}

void
engine_submit(Engine *engine, EngineJob *job)
{
	Assert(engine->configured[job->provider]);
	job->not_before = 0;
	job->cls = OUTCOME_OK;
	job->attempts = job->throttles = job->retries = job->param_retries = 0;
	memset(&job->counters, 0, sizeof(job->counters));
	job->reason[0] = '\0';
	if (engine->dead[job->provider])
		engine_finish_job(engine, job, OUTCOME_FATAL, "provider was taken out of this call", true);
	else
		dlist_push_tail(&engine->waiting, &job->node);
}

EngineJob *
engine_next_done(Engine *engine)
{
	EngineJob  *job;

	if (dlist_is_empty(&engine->done))
		return NULL;
	job = dlist_container(EngineJob, node, dlist_pop_head_node(&engine->done));
	return job;
}

/* ---- starting and finishing attempts ---- */

static void
start_mock(Engine *engine, EngineJob *job)
{
	if (job->ad && mock_answer(job->ad, engine->platform, job->text, job->n, job->kind, job->clicks))
	{
		strlcpy(job->model, MOCK_MODEL, sizeof(job->model));
		engine_finish_job(engine, job, OUTCOME_OK, NULL, true);
	}
	else
		engine_finish_job(engine, job, OUTCOME_BUG, "mock could not read the batch", true);
}

/* A count header: digits only (at most 15), else -1 */
static long
header_count(const char *s)
{
	size_t		len = strspn(s, "0123456789");

	if (len == 0 || len > 15 || s[len] != '\0')
		return -1;
	return strtol(s, NULL, 10);
}

/*
 * OpenAI's x-ratelimit-* headers.  With no P_rpm, the announced limit is
 * learnt (ratelimit.c) once the call uses half of it: from then on requests
 * are paced to it, and a run that would outgrow it never meets a 429.
 * remaining-requests: 0 pauses until one request is free.
 */
static void
pause_if_exhausted(Engine *engine, ProviderId provider, const HttpHints *hints)
{
	long		limit = header_count(hints->ratelimit_limit_requests);
	long		remaining = header_count(hints->ratelimit_remaining_requests);
	double		reset;
	double		pause;

	if (engine->configs[provider].rpm <= 0 &&
		limit > 0 && remaining >= 0 && remaining <= limit / 2)
		ratelimit_learn_announced(provider, (double) limit,
								  engine->settings.rate_window_ms);
	if (remaining != 0)
		return;
	/* the budget refills continuously: reset is the time to refill all of it */
	reset = parse_duration_text(hints->ratelimit_reset_requests);
	pause = reset / Max(limit, 1);
	if (pause > 0 && pause * 1000.0 <= engine->settings.max_retry_wait_ms)
		ratelimit_pause(provider, (long) ceil(pause * 1000.0));
}

/*
 * What the budget assumes a request's prompt costs: one token per byte of
 * its body (no tokenizer makes more) until the provider has reported its
 * usage once, then the most tokens per byte it has reported, with a quarter
 * more for prompts that tokenize worse than the ones seen so far.
 */
static void
learn_tokens_per_byte(Engine *engine, ProviderId provider, int64 tokens_in, size_t body_len)
{
	double		seen;

	if (tokens_in <= 0 || body_len == 0)
		return;
	seen = Min(1.0, 1.25 * (double) tokens_in / (double) body_len);
	engine->tokens_per_byte[provider] = Max(engine->tokens_per_byte[provider], seen);
}

static double
tokens_per_byte_bound(Engine *engine, ProviderId provider)
{
	return engine->tokens_per_byte[provider] > 0 ? engine->tokens_per_byte[provider] : 1.0;
}

static void
finish_transfer(Engine *engine, Transfer *t, CURLcode code)
{
	EngineJob  *job = t->job;
	ProviderConfig *cfg = &engine->configs[job->provider];
	Outcome		out;
	uint8		clicks[CTR_MAX_BATCH];
	int			retries_before = job->retries;
	double		latency_ms;
	RequestPlan plan = t->plan;

	memset(&out, 0, sizeof(out));
	out.n = job->n;
	out.kind = job->kind;
	out.clicks = clicks;
	out.retry_after = -1;
	out.price_factor = -1;

	transfer_outcome(t, code, &out);
	if (out.cls == OUTCOME_OK && job->models == NULL)
		memcpy(job->clicks, clicks, job->n);
	pause_if_exhausted(engine, job->provider, &t->hints);
	latency_ms = (double) (GetCurrentTimestamp() - t->started) / 1000.0;
	if (job->models == NULL)
		learn_tokens_per_byte(engine, job->provider, out.tokens_in, t->body_len);
	job->counters.cost_usd += t->cost_usd;

	engine->in_flight[job->provider]--;
	job->sent_at = t->started;
	transfer_release(t, &engine->multi, true);
	engine_settle_attempt(engine, job, &out, &plan);
	stats_count_attempt(cfg, &out, latency_ms, plan.price_factor, job->retries > retries_before);
}

/*
 * What the job's next request asks for: the provider's plan, given what
 * its model is known to refuse (here and, preloaded, in other sessions).
 */
static void
plan_attempt(Engine *engine, EngineJob *job, RequestPlan *plan)
{
	ProviderId	p = job->provider;
	ModelQuirks *quirks = &engine->quirks[p];

	memset(plan, 0, sizeof(*plan));
	plan->price_factor = 1.0;
	if (job->models)
		return;					/* a GET: nothing to plan */
	quirks_recall(p, engine->configs[p].model, quirks);
	provider_ops(p)->plan(&engine->configs[p], quirks, job->n, job->kind,
						  (double) time(NULL), plan);
	plan->step = quirks->reasoning_step;
	job->counters.dropped |= quirks->dropped;
	if (quirks->reasoning_step > 0)
		job->counters.dropped |= EFFORT_RAISED;
}

/* Start whatever may start now; returns ms until the next job is due, or -1 */
static long
dispatch(Engine *engine)
{
	dlist_mutable_iter iter;
	TimestampTz now = GetCurrentTimestamp();
	long		next = -1;

	dlist_foreach_modify(iter, &engine->waiting)
	{
		EngineJob  *job = dlist_container(EngineJob, node, iter.cur);
		ProviderId	p = job->provider;
		Transfer   *t;
		RequestPlan plan;
		long		wait;
		bool		lookup_timed_out;

		if (job->not_before > now)
		{
			long		ms = (long) ((job->not_before - now + 999) / 1000);

			if (next < 0 || ms < next)
				next = ms;
			continue;
		}
		if (p == PROVIDER_MOCK)
		{
			dlist_delete(&job->node);
			start_mock(engine, job);
			continue;
		}
		if (engine->in_flight[p] >= engine->concurrency[p])
			continue;
		if (!lookup_ready(engine, p, &lookup_timed_out))
		{
			if (lookup_timed_out)
			{
				Outcome		out;

				/* as if the connection could not be made: retried, failed over */
				memset(&out, 0, sizeof(out));
				out.retry_after = -1;
				outcome_fail(&out, OUTCOME_TRANSIENT, "could not resolve the host of %s: no answer",
							 provider_ops(p)->name);
				dlist_delete(&job->node);
				engine_settle_attempt(engine, job, &out, NULL);
				continue;
			}
			if (next < 0 || next > 20)
				next = 20;		/* look again soon */
			continue;
		}
		if (!breaker_allows(&engine->breaker[p]))
		{
			if (job->last_resort)
			{
				/* nowhere else to go: wait for the breaker's probe */
				job->not_before = breaker_next_chance(&engine->breaker[p]);
				if (next < 0 || (job->not_before - now) / 1000 < next)
					next = Max(1, (long) ((job->not_before - now) / 1000));
				continue;
			}
			dlist_delete(&job->node);
			engine_finish_job(engine, job, OUTCOME_TRANSIENT,
					   "circuit breaker open: most recent requests failed", false);
			continue;
		}
		plan_attempt(engine, job, &plan);
		job->est_tokens = job->models ? 0 : batch_tokens_in(job->text_len) + plan.max_tokens_out;
		t = transfer_create(engine->cxt, &engine->transfers, job,
							&engine->configs[p], engine->settings.rate_window_ms);
		t->plan = plan;
		if (!transfer_acquire(t, &wait))
		{
			/* give back a probe the limiter did not let through */
			breaker_unprobe(&engine->breaker[p]);
			transfer_release(t, &engine->multi, false);
			job->counters.paced_ms += (int32) wait;
			job->not_before = TimestampTzPlusMilliseconds(now, wait);
			if (next < 0 || wait < next)
				next = wait;
			continue;
		}
		transfer_build(t, &engine->multi, &engine->settings, engine->scratch, engine->resolve[p]);
		if (!transfer_reserve(t, engine->budget, tokens_per_byte_bound(engine, p)))
		{
			/* it could take the call over its budget: nothing more goes out */
			breaker_unprobe(&engine->breaker[p]);
			transfer_release(t, &engine->multi, false);
			dlist_delete(&job->node);
			engine_finish_job(engine, job, OUTCOME_BUDGET,
					   "not sent: it could take the call over its budget", true);
			continue;
		}
		dlist_delete(&job->node);
		engine->in_flight[p]++;
		transfer_launch(t, &engine->multi);
	}
	return next;
}

static void
collect_finished(Engine *engine)
{
	CURL	   *easy;
	CURLcode	code;

	while ((easy = multi_next_done(&engine->multi, &code)) != NULL)
	{
		Transfer   *t;

		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
		finish_transfer(engine, t, code);
	}
}

/*
 * Make progress: start what may start, sleep until the latch is set, a
 * socket is ready, a timer is due or timeout_ms passes (-1: no limit), and
 * hand what happened to curl.  The owner checks interrupts and its own
 * queues after each call; the latch is reset here.
 */
void
engine_wait(Engine *engine, long timeout_ms, uint32 wait_event_info)
{
	long		timeout = timeout_ms;
	long		next_job = dispatch(engine);

	if (!dlist_is_empty(&engine->done))
		timeout = 0;			/* the owner has results to collect */
	if (next_job >= 0 && (timeout < 0 || next_job < timeout))
		timeout = next_job;
	multi_wait(&engine->multi, timeout, wait_event_info);
	collect_finished(engine);
	dispatch(engine);
}
