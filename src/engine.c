/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  Batches in, answers out: curl multi driven from a WaitEventSet.
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION)
 * and when it next needs a call (CURLMOPT_TIMERFUNCTION).  engine_wait()
 * puts those sockets and the process latch in one WaitEventSet, sleeps
 * until one fires or a timer is due, and hands the events back to curl.
 * Nothing here raises an error from inside a curl callback: callbacks only
 * record, and all decisions happen after curl returns.
 *
 * A finished transfer is classified by its provider's parser.  Throttles
 * wait (honouring the server's hint) without using up an attempt;
 * transient and soft failures retry with exponential backoff and jitter up
 * to ctr_dist.max_retries; fatal answers take the provider out of this
 * engine.  What cannot be answered goes back to the owner as a failure:
 * the engine never invents an answer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <curl/curl.h>

#include "common/pg_prng.h"
#include "port/pg_bitutils.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "compat.h"
#include "engine.h"
#include "mock.h"
#include "ratelimit.h"
#include "stats.h"

#define CTR_USER_AGENT "ctr_dist/0.1.0"
#define MAX_RESPONSE_BYTES (16 * 1024 * 1024)
#define MAX_THROTTLE_WAITS 20

static int	ctr_request_timeout = 120000;
static int	ctr_connect_timeout = 10000;
static int	ctr_max_retries = 4;
static int	ctr_max_retry_wait = 60000;
static int	ctr_breaker_cooldown = 30000;

/*
 * Circuit breaker: when 8 of a provider's last 10 attempts failed with a
 * transient error, stop sending to it for ctr_dist.breaker_cooldown; its
 * batches come back at once and fail over.  Then one probe decides.
 */
#define BREAKER_WINDOW 10
#define BREAKER_FAILURES 8

typedef struct Breaker
{
	uint32		history;		/* last BREAKER_WINDOW attempts, 1 = failed */
	int			recorded;
	TimestampTz open_until;		/* 0: closed */
	bool		probing;
} Breaker;

typedef struct ResponseBuffer
{
	char	   *data;			/* malloc'd: grown from curl callbacks */
	size_t		len;
	size_t		cap;
	bool		overflow;
} ResponseBuffer;

typedef struct Transfer
{
	dlist_node	node;
	Engine	   *engine;
	EngineJob  *job;
	CURL	   *easy;
	struct curl_slist *headers;
	MemoryContext cxt;			/* request body and strings */
	ResponseBuffer response;
	HttpHints	hints;
	int64		used_tokens;	/* from the response's usage, once known */
	TimestampTz started;
	char		errbuf[CURL_ERROR_SIZE];
} Transfer;

typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN/OUT/INOUT */
} WatchedSocket;

struct Engine
{
	MemoryContext cxt;
	ProviderConfig configs[NUM_PROVIDERS];
	bool		configured[NUM_PROVIDERS];
	bool		dead[NUM_PROVIDERS];
	EngineSettings settings;
	char	   *ad;
	char	   *platform;

	CURLM	   *multi;
	dlist_head	waiting;		/* jobs not started or waiting to retry */
	dlist_head	done;
	dlist_head	transfers;
	int			in_flight[NUM_PROVIDERS];
	int			concurrency[NUM_PROVIDERS];	/* adaptive: halved by 429s */
	int			successes[NUM_PROVIDERS];	/* since the last change of it */
	Breaker		breaker[NUM_PROVIDERS];

	WatchedSocket *sockets;
	int			nsockets;
	int			maxsockets;
	bool		sockets_changed;
	TimestampTz curl_deadline;	/* 0: no timer */
	WaitEventSet *wes;
};

static bool curl_initialized = false;

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

/* ---- curl callbacks: record only, never ereport ---- */

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	ResponseBuffer *buf = (ResponseBuffer *) userdata;
	size_t		add = size * nmemb;

	if (buf->len + add + 1 > MAX_RESPONSE_BYTES)
	{
		buf->overflow = true;
		return 0;				/* makes curl fail the transfer */
	}
	if (buf->len + add + 1 > buf->cap)
	{
		size_t		newcap = Max(buf->cap * 2, buf->len + add + 1);
		char	   *p = realloc(buf->data, Max(newcap, 4096));

		if (p == NULL)
			return 0;
		buf->data = p;
		buf->cap = Max(newcap, 4096);
	}
	memcpy(buf->data + buf->len, ptr, add);
	buf->len += add;
	buf->data[buf->len] = '\0';
	return add;
}

static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	hints_from_header_line((HttpHints *) userdata, buffer, size * nitems);
	return size * nitems;
}

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	Engine	   *engine = (Engine *) userp;
	int			i;

	for (i = 0; i < engine->nsockets; i++)
		if (engine->sockets[i].fd == fd)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < engine->nsockets)
			engine->sockets[i] = engine->sockets[--engine->nsockets];
	}
	else if (i < engine->nsockets)
	{
		if (engine->sockets[i].what == what)
			return 0;
		engine->sockets[i].what = what;
	}
	else
	{
		if (engine->nsockets == engine->maxsockets)
			return -1;			/* curl fails the transfer; cannot happen */
		engine->sockets[engine->nsockets].fd = fd;
		engine->sockets[engine->nsockets].what = what;
		engine->nsockets++;
	}
	engine->sockets_changed = true;
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	Engine	   *engine = (Engine *) userp;

	if (timeout_ms < 0)
		engine->curl_deadline = 0;
	else
		engine->curl_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	return 0;
}

/* ---- lifetime ---- */

static void
transfer_release(Transfer *t)
{
	Engine	   *engine = t->engine;

	dlist_delete(&t->node);
	if (t->easy)
	{
		curl_multi_remove_handle(engine->multi, t->easy);
		curl_easy_cleanup(t->easy);
	}
	/* the headers carried the key: wipe curl's copies before freeing */
	for (struct curl_slist *h = t->headers; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(t->headers);
	free(t->response.data);
	MemoryContextDelete(t->cxt);
	engine->in_flight[t->job->provider]--;
	ratelimit_release(&engine->configs[t->job->provider], engine->settings.rate_window_ms,
					  t->job->est_tokens, t->used_tokens);
	pfree(t);
}

/* Runs when the engine's memory goes away, also on error: no leaked handles */
static void
engine_reset_callback(void *arg)
{
	Engine	   *engine = (Engine *) arg;
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &engine->transfers)
		transfer_release(dlist_container(Transfer, node, iter.cur));
	if (engine->multi)
		curl_multi_cleanup(engine->multi);
	engine->multi = NULL;
	if (engine->wes)
		FreeWaitEventSet(engine->wes);
	engine->wes = NULL;
	for (int i = 0; i < NUM_PROVIDERS; i++)
		explicit_bzero(engine->configs[i].api_key, sizeof(engine->configs[i].api_key));
}

Engine *
engine_create(const ProviderConfig *configs, int nconfigs,
			  const EngineSettings *settings, const char *ad, const char *platform)
{
	MemoryContext cxt;
	MemoryContextCallback *cb;
	Engine	   *engine;

	if (!curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialize libcurl")));
		curl_initialized = true;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist engine",
								ALLOCSET_DEFAULT_SIZES);
	engine = MemoryContextAllocZero(cxt, sizeof(Engine));
	engine->cxt = cxt;
	engine->settings = *settings;
	engine->ad = MemoryContextStrdup(cxt, ad);
	engine->platform = MemoryContextStrdup(cxt, platform);
	dlist_init(&engine->waiting);
	dlist_init(&engine->done);
	dlist_init(&engine->transfers);
	for (int i = 0; i < nconfigs; i++)
	{
		engine->configs[configs[i].id] = configs[i];
		engine->configured[configs[i].id] = true;
		engine->concurrency[configs[i].id] = configs[i].max_concurrency;
		engine->maxsockets += configs[i].max_concurrency * 2;
	}
	engine->maxsockets += 8;
	engine->sockets = MemoryContextAlloc(cxt, sizeof(WatchedSocket) * engine->maxsockets);

	cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	cb->func = engine_reset_callback;
	cb->arg = engine;
	MemoryContextRegisterResetCallback(cxt, cb);

	engine->multi = curl_multi_init();
	if (engine->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(engine->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(engine->multi, CURLMOPT_SOCKETDATA, engine);
	curl_multi_setopt(engine->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(engine->multi, CURLMOPT_TIMERDATA, engine);
	curl_multi_setopt(engine->multi, CURLMOPT_MAXCONNECTS, (long) engine->maxsockets);
	return engine;
}

void
engine_destroy(Engine *engine)
{
	MemoryContextDelete(engine->cxt);
}

EngineJob *
engine_new_job(Engine *engine, int64 batch_no, ProviderId provider,
			   const char *text, int text_len, int n)
{
	EngineJob  *job = MemoryContextAllocZero(engine->cxt, sizeof(EngineJob));

	job->batch_no = batch_no;
	job->provider = provider;
	job->text = text;
	job->text_len = text_len;
	job->n = n;
	job->clicks = MemoryContextAllocZero(engine->cxt, Max(n, 1));
	return job;
}

void
engine_free_job(EngineJob *job)
{
	pfree(job->clicks);
	pfree(job);
}

static void
finish_job(Engine *engine, EngineJob *job, OutcomeClass cls, const char *reason)
{
	job->cls = cls;
	if (reason && job->reason != reason)
		strlcpy(job->reason, reason, sizeof(job->reason));
	dlist_push_tail(&engine->done, &job->node);
}

void
engine_submit(Engine *engine, EngineJob *job)
{
	Assert(engine->configured[job->provider]);
	job->not_before = 0;
	job->cls = OUTCOME_OK;
	job->attempts = job->throttles = job->retries = 0;
	memset(&job->counters, 0, sizeof(job->counters));
	job->reason[0] = '\0';
	if (engine->dead[job->provider])
		finish_job(engine, job, OUTCOME_FATAL, "provider was taken out of this call");
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
	if (mock_answer(engine->ad, engine->platform, job->text, job->n, job->clicks))
	{
		strlcpy(job->model, MOCK_MODEL, sizeof(job->model));
		finish_job(engine, job, OUTCOME_OK, NULL);
	}
	else
		finish_job(engine, job, OUTCOME_BUG, "mock could not read the batch");
}

static void
start_transfer(Engine *engine, EngineJob *job)
{
	const ProviderConfig *cfg = &engine->configs[job->provider];
	const ProviderOps *ops = provider_ops(job->provider);
	ProviderRequest req = {0};
	Transfer   *t;
	MemoryContext old;
	CURL	   *easy;

	t = MemoryContextAllocZero(engine->cxt, sizeof(Transfer));
	t->engine = engine;
	t->job = job;
	t->cxt = AllocSetContextCreate(engine->cxt, "ctr_dist transfer",
								   ALLOCSET_SMALL_SIZES);
	dlist_push_tail(&engine->transfers, &t->node);
	t->started = GetCurrentTimestamp();
	engine->in_flight[job->provider]++;

	old = MemoryContextSwitchTo(t->cxt);
	ops->build(cfg, job->text, job->n, &req);
	job->counters.requests++;
	for (int i = 0; i < req.nheaders; i++)
	{
		struct curl_slist *h = curl_slist_append(t->headers, req.headers[i]);

		explicit_bzero(req.headers[i], strlen(req.headers[i]));
		if (h == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		t->headers = h;
	}
	MemoryContextSwitchTo(old);

	t->easy = easy = curl_easy_init();
	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	curl_easy_setopt(easy, CURLOPT_URL, req.url);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req.body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req.body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, CTR_USER_AGENT);
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	/* a key goes only to its provider's base URL: no redirects, no other schemes */
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) engine->settings.request_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) engine->settings.connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t->response);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t->hints);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	if (curl_multi_add_handle(engine->multi, easy) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start an HTTP request to provider \"%s\"", ops->name)));
}

/* Backoff for the k-th retry: 0.5 s * 2^(k-1), at most 8 s, 75-100% jitter */
static long
backoff_ms(int k)
{
	double		base = 500.0 * pow(2.0, Max(k - 1, 0));

	base = Min(base, 8000.0);
	return (long) (base * (1.0 - 0.25 * pg_prng_double(&pg_global_prng_state)));
}

/* Finish every waiting job of a provider with cls: it will not be sent */
static void
bounce_waiting(Engine *engine, ProviderId provider, OutcomeClass cls, const char *reason)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &engine->waiting)
	{
		EngineJob  *other = dlist_container(EngineJob, node, iter.cur);

		if (other->provider == provider)
		{
			dlist_delete(&other->node);
			finish_job(engine, other, cls, reason);
		}
	}
}

static void
take_out_provider(Engine *engine, ProviderId provider, const char *reason)
{
	engine->dead[provider] = true;
	bounce_waiting(engine, provider, OUTCOME_FATAL, reason);
}

/* Record an attempt for the breaker; true if this failure opened it */
static bool
breaker_record(Engine *engine, ProviderId provider, bool failed)
{
	Breaker    *b = &engine->breaker[provider];
	TimestampTz now = GetCurrentTimestamp();

	if (b->probing)
	{
		b->probing = false;
		if (!failed)
		{
			memset(b, 0, sizeof(*b));
			return false;
		}
		b->open_until = TimestampTzPlusMilliseconds(now, engine->settings.breaker_cooldown_ms);
		return true;
	}
	b->history = ((b->history << 1) | (failed ? 1 : 0)) & ((1u << BREAKER_WINDOW) - 1);
	b->recorded = Min(b->recorded + 1, BREAKER_WINDOW);
	if (b->open_until == 0 && failed && b->recorded == BREAKER_WINDOW &&
		pg_popcount32(b->history) >= BREAKER_FAILURES)
	{
		b->open_until = TimestampTzPlusMilliseconds(now, engine->settings.breaker_cooldown_ms);
		return true;
	}
	return false;
}

/*
 * May a job of this provider be sent now, as far as the breaker goes?
 * Open: no.  Cooldown over: one probe at a time.
 */
static bool
breaker_allows(Engine *engine, ProviderId provider)
{
	Breaker    *b = &engine->breaker[provider];

	if (b->open_until == 0)
		return true;
	if (b->probing || GetCurrentTimestamp() < b->open_until)
		return false;
	b->probing = true;
	return true;
}

/* Decide what an attempt's outcome means for its job */
static void
settle_attempt(Engine *engine, EngineJob *job, Outcome *out)
{
	ProviderId	p = job->provider;
	long		wait_ms;

	job->tokens_in += out->tokens_in;
	job->tokens_out += out->tokens_out;
	job->http_status = out->http_status;
	if (out->model[0])
		strlcpy(job->model, out->model, sizeof(job->model));
	strlcpy(job->reason, out->reason, sizeof(job->reason));

	if (out->cls == OUTCOME_OK || out->cls == OUTCOME_TRANSIENT)
	{
		if (breaker_record(engine, p, out->cls == OUTCOME_TRANSIENT))
		{
			job->counters.breaker_trips++;
			bounce_waiting(engine, p, OUTCOME_TRANSIENT, "circuit breaker open: most recent requests failed");
		}
	}

	switch (out->cls)
	{
		case OUTCOME_OK:
			/* additive increase back towards the configured concurrency */
			if (engine->concurrency[p] < engine->configs[p].max_concurrency &&
				++engine->successes[p] >= 10)
			{
				engine->concurrency[p]++;
				engine->successes[p] = 0;
			}
			finish_job(engine, job, OUTCOME_OK, NULL);
			return;
		case OUTCOME_FATAL:
			finish_job(engine, job, OUTCOME_FATAL, NULL);
			take_out_provider(engine, p, out->reason);
			return;
		case OUTCOME_BUG:
			finish_job(engine, job, OUTCOME_BUG, NULL);
			return;
		case OUTCOME_THROTTLE:
			job->counters.throttled++;
			/* the server says we are too fast: halve our concurrency */
			engine->concurrency[p] = Max(1, engine->concurrency[p] / 2);
			engine->successes[p] = 0;
			if (out->retry_after * 1000.0 > engine->settings.max_retry_wait_ms ||
				++job->throttles > MAX_THROTTLE_WAITS)
			{
				finish_job(engine, job, OUTCOME_THROTTLE, NULL);
				return;
			}
			wait_ms = out->retry_after >= 0 ? (long) (out->retry_after * 1000.0)
				: backoff_ms(job->throttles);
			ratelimit_pause(p, wait_ms);
			break;
		case OUTCOME_TRANSIENT:
		case OUTCOME_SOFT:
			if (engine->breaker[p].open_until != 0 ||
				++job->attempts > engine->settings.max_retries)
			{
				finish_job(engine, job, out->cls, NULL);
				return;
			}
			if (out->cls == OUTCOME_SOFT)
				job->counters.soft++;
			else
				job->counters.transient++;
			wait_ms = backoff_ms(job->attempts);
			if (out->retry_after >= 0 &&
				out->retry_after * 1000.0 <= engine->settings.max_retry_wait_ms)
				wait_ms = Max(wait_ms, (long) (out->retry_after * 1000.0));
			break;
		default:
			elog(ERROR, "unexpected outcome class %d", (int) out->cls);
	}
	job->retries++;
	job->not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);
	dlist_push_tail(&engine->waiting, &job->node);
}

static void
network_outcome(CURLcode code, const char *errbuf, bool overflow, Outcome *out)
{
	const char *what = errbuf[0] ? errbuf : curl_easy_strerror(code);

	switch (code)
	{
		case CURLE_WRITE_ERROR:
			outcome_fail(out, OUTCOME_SOFT, "%s", overflow ? "response too large" : what);
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			outcome_fail(out, OUTCOME_FATAL, "%s", what);
			break;
		default:
			/* timeouts, resets, refused connections, DNS: worth retrying */
			outcome_fail(out, OUTCOME_TRANSIENT, "%s", what);
			break;
	}
}

static void
finish_transfer(Engine *engine, Transfer *t, CURLcode code)
{
	EngineJob  *job = t->job;
	Outcome		out;
	uint8		clicks[CTR_MAX_BATCH];

	memset(&out, 0, sizeof(out));
	out.n = job->n;
	out.clicks = clicks;
	out.retry_after = -1;

	if (code != CURLE_OK)
		network_outcome(code, t->errbuf, t->response.overflow, &out);
	else
	{
		long		status = 0;

		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		provider_ops(job->provider)->parse((int) status,
										   t->response.data ? t->response.data : "",
										   t->response.len, &t->hints, &out);
		out.http_status = (int) status;
	}
	if (out.cls == OUTCOME_OK)
		memcpy(job->clicks, clicks, job->n);
	t->used_tokens = out.tokens_in + out.tokens_out;
	if (strcmp(t->hints.ratelimit_remaining_requests, "0") == 0)
	{
		/*
		 * OpenAI's budget refills continuously: reset is the time to refill
		 * all of it, so one request frees up after reset / limit.
		 */
		double		reset = parse_duration_text(t->hints.ratelimit_reset_requests);
		long		limit = strtol(t->hints.ratelimit_limit_requests, NULL, 10);
		double		pause = reset / Max(limit, 1);

		if (pause > 0 && pause * 1000.0 <= engine->settings.max_retry_wait_ms)
			ratelimit_pause(job->provider, (long) ceil(pause * 1000.0));
	}
	{
		int			retries_before = job->retries;
		double		latency_ms = (double) (GetCurrentTimestamp() - t->started) / 1000.0;
		ProviderConfig *cfg = &engine->configs[job->provider];

		transfer_release(t);
		settle_attempt(engine, job, &out);
		stats_count_attempt(cfg, out.cls, out.http_status, latency_ms,
							out.tokens_in, out.tokens_out, job->retries > retries_before);
	}
}

/* Start whatever may start now; returns ms until the next job is due, or -1 */
static long
dispatch(Engine *engine)
{
	dlist_mutable_iter iter;
	TimestampTz now = GetCurrentTimestamp();
	long		next = -1;
	long		wait;

	dlist_foreach_modify(iter, &engine->waiting)
	{
		EngineJob  *job = dlist_container(EngineJob, node, iter.cur);
		ProviderId	p = job->provider;

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
		if (!breaker_allows(engine, p))
		{
			dlist_delete(&job->node);
			finish_job(engine, job, OUTCOME_TRANSIENT,
					   "circuit breaker open: most recent requests failed");
			continue;
		}
		job->est_tokens = batch_tokens_in(job->text_len) + batch_tokens_out(job->n);
		if (!ratelimit_acquire(&engine->configs[p], engine->settings.rate_window_ms,
							   job->est_tokens, &wait))
		{
			/* give back a probe the limiter did not let through */
			engine->breaker[p].probing = false;
			job->counters.paced_ms += (int32) wait;
			job->not_before = TimestampTzPlusMilliseconds(now, wait);
			if (next < 0 || wait < next)
				next = wait;
			continue;
		}
		dlist_delete(&job->node);
		start_transfer(engine, job);
		/* let curl start it: the timer callback asks for an immediate call */
	}
	return next;
}

static void
collect_finished(Engine *engine)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(engine->multi, &left)) != NULL)
	{
		Transfer   *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		finish_transfer(engine, t, msg->data.result);
	}
}

static void
rebuild_wait_set(Engine *engine)
{
	if (engine->wes)
		FreeWaitEventSet(engine->wes);
	engine->wes = ctr_create_wait_event_set(engine->cxt, engine->nsockets + 2);
	AddWaitEventToSet(engine->wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(engine->wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < engine->nsockets; i++)
	{
		uint32		events = 0;

		if (engine->sockets[i].what & CURL_POLL_IN)
			events |= WL_SOCKET_READABLE;
		if (engine->sockets[i].what & CURL_POLL_OUT)
			events |= WL_SOCKET_WRITEABLE;
		AddWaitEventToSet(engine->wes, events, engine->sockets[i].fd, NULL, NULL);
	}
	engine->sockets_changed = false;
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
	WaitEvent	events[16];
	int			nevents;
	int			running;
	long		next_job;
	long		timeout = timeout_ms;
	bool		curl_due = false;

	next_job = dispatch(engine);
	if (!dlist_is_empty(&engine->done))
		timeout = 0;			/* the owner has results to collect */

	if (next_job >= 0 && (timeout < 0 || next_job < timeout))
		timeout = next_job;
	if (engine->curl_deadline != 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		ms = engine->curl_deadline <= now ? 0 :
			(long) ((engine->curl_deadline - now + 999) / 1000);

		if (timeout < 0 || ms <= timeout)
		{
			timeout = ms;
			curl_due = true;
		}
	}

	if (engine->wes == NULL || engine->sockets_changed)
		rebuild_wait_set(engine);

	nevents = WaitEventSetWait(engine->wes, timeout, events, lengthof(events),
							   wait_event_info);
	for (int i = 0; i < nevents; i++)
	{
		if (events[i].events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		else if (events[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			int			flags = 0;

			if (events[i].events & WL_SOCKET_READABLE)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & WL_SOCKET_WRITEABLE)
				flags |= CURL_CSELECT_OUT;
			curl_multi_socket_action(engine->multi, events[i].fd, flags, &running);
		}
	}
	if (engine->curl_deadline != 0 &&
		(curl_due || engine->curl_deadline <= GetCurrentTimestamp()))
	{
		engine->curl_deadline = 0;
		curl_multi_socket_action(engine->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	collect_finished(engine);
	dispatch(engine);
}
