/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  Pace requests so that a well-configured run causes no 429 at all.
 *
 * Rates are kept with the generic cell rate algorithm: each provider has a
 * "next allowed" time for requests and one for tokens; a request may start
 * when both have passed, and pushes them forward by window/rpm and by
 * est_tokens * window/tpm (plus 5% headroom).  That spaces requests evenly and never puts
 * more than rpm requests in any window, so even a server that counts in a
 * sliding window never sees the limit crossed.  Token estimates are
 * corrected when the real usage comes back.  Requests in flight are
 * counted against max_concurrency.
 *
 * With the library preloaded the state is one small struct per provider
 * in shared memory behind a spinlock, so concurrent sessions together stay
 * under each provider's limits.  Otherwise the same struct lives in this
 * process, which makes the limits per call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"

#include "ratelimit.h"

typedef struct ProviderPace
{
	slock_t		mutex;
	TimestampTz next_request;	/* earliest start of the next request */
	TimestampTz next_token;		/* earliest start given the token budget */
	TimestampTz paused_until;	/* the server asked us to wait */
	int			in_flight;

	/*
	 * What was learnt of a request limit no setting gives (zero-configuration
	 * limits): a rate, requests per second, from the provider's
	 * x-ratelimit-limit-requests or from its 429s (0: nothing learnt), so
	 * that it holds whatever rate_limit_window a later call has.  Requests
	 * are then paced by it as by P_rpm.  Shared like the rest when preloaded,
	 * so what one session learnt holds for all.
	 */
	double		learnt_rate;
	double		announced_rate;	/* x-ratelimit-limit-requests; 0: none */
	double		first_learnt;	/* the first 429's estimate: a floor for later cuts */
	TimestampTz next_learnt;	/* the learnt schedule's next slot */
	TimestampTz seen_since;		/* answers counted since then ... */
	int64		seen_answered;	/* ... for the next 429 to measure the rate by */
	TimestampTz seen_last;		/* the latest request, answer or 429 */
	bool		learnt_bare;	/* learnt_rate read from 429s that said no wait */
	double		bare_rate;		/* a window read from them, not confirmed yet
								 * (0: none) ... */
	TimestampTz bare_at;		/* ... when: requests sent later confirm it */
	TimestampTz bare_wall_end;	/* ... and when the window would let us in */
	uint32		recent;			/* the latest outcomes, a bit each: 1 for a 429 */
	TimestampTz quiet_until;	/* 429s of requests sent before a cut say nothing */
} ProviderPace;

/* a learnt limit grows back by this much per answer, up to what was announced */
#define LEARN_GROWTH 1.0005
/*
 * A 429 teaches a rate only after this many answers since the last lesson:
 * one that comes first, or after a handful, says too little of the rate
 * (a burst, another client on the account, trouble) to pace every later
 * request by
 */
#define LEARN_MIN_ANSWERS 20
/*
 * ... and only when at least LEARN_RUN of the provider's last LEARN_SPAN
 * outcomes were 429s: a limit refuses requests in runs (whatever is sent
 * past it), while a 429 now and then among answers is the provider's own
 * trouble, which a pause and the halved concurrency answer (a 429 that
 * says no wait: the last LEARN_RUN outcomes, all 429s)
 */
#define LEARN_RUN 4
#define LEARN_SPAN 20
/*
 * ... or at once when the wait the 429 asks for is at least LEARN_WALL_S
 * and LEARN_WALL_FACTOR times as long as the answers took: they came far
 * faster than the provider lets them, and filled its window (a provider's
 * own trouble asks for a second or so)
 */
#define LEARN_WALL_S 2.0
#define LEARN_WALL_FACTOR 4.0
/* a window read from bare 429s is probed this long after: see below */
#define LEARN_PROBE_US (2 * USECS_PER_SEC)

typedef struct PaceState
{
	ProviderPace providers[NUM_PROVIDERS];
} PaceState;

static PaceState *shared_pace = NULL;
static PaceState local_pace;
static bool local_initialized = false;
static int	ctr_rate_window = 60000;

/*
 * The context of the settings that rate-limit providers: with the library
 * preloaded the limits are shared by every session, so a session must not
 * loosen them for all (superuser only); without, each call has its own.
 */
GucContext
ratelimit_settings_context(void)
{
	return process_shared_preload_libraries_in_progress ? PGC_SUSET : PGC_USERSET;
}

void
ratelimit_define_settings(void)
{
	DefineCustomIntVariable("ctr_dist.rate_limit_window",
							"The window that ctr_dist.*_rpm and ctr_dist.*_tpm count in.",
							"A minute, as providers count; shorter only to test against a time-scaled server.",
							&ctr_rate_window,
							60000, 100, 3600000,
							ratelimit_settings_context(), GUC_UNIT_MS,
							NULL, NULL, NULL);
}

int
ratelimit_window_ms(void)
{
	return ctr_rate_window;
}

void
ratelimit_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(PaceState)));
}

void
ratelimit_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared_pace = ShmemInitStruct("ctr_dist rate limits", sizeof(PaceState), &found);
	if (!found)
	{
		memset(shared_pace, 0, sizeof(PaceState));
		for (int i = 0; i < NUM_PROVIDERS; i++)
			SpinLockInit(&shared_pace->providers[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

bool
ratelimit_is_global(void)
{
	return shared_pace != NULL;
}

static ProviderPace *
pace_for(ProviderId provider)
{
	if (shared_pace)
		return &shared_pace->providers[provider];
	if (!local_initialized)
	{
		memset(&local_pace, 0, sizeof(local_pace));
		for (int i = 0; i < NUM_PROVIDERS; i++)
			SpinLockInit(&local_pace.providers[i].mutex);
		local_initialized = true;
	}
	return &local_pace.providers[provider];
}

/*
 * Pace at 95% of a limit: the server counts arrivals, and a request that
 * sat in a queue on the way makes the next look early.  5% of headroom
 * keeps a sliding window from ever seeing limit + 1.
 */
#define PACE_HEADROOM 1.05

/* microseconds one unit costs at limit per window */
static int64
interval_us(int window_ms, int64 units, int limit)
{
	return limit > 0 ? (int64) ((double) units * window_ms * 1000.0 * PACE_HEADROOM / limit) : 0;
}

bool
ratelimit_acquire(const ProviderConfig *cfg, int window_ms,
				  int64 est_tokens, long *wait_ms)
{
	ProviderPace *pace = pace_for(cfg->id);
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz ready;
	bool		ok;

	SpinLockAcquire(&pace->mutex);
	ready = Max(pace->paused_until, now);
	if (cfg->rpm > 0)
		ready = Max(ready, pace->next_request);
	else if (pace->learnt_rate > 0)
		ready = Max(ready, pace->next_learnt);
	if (cfg->tpm > 0)
		ready = Max(ready, pace->next_token);
	ok = ready <= now && pace->in_flight < cfg->max_concurrency;
	if (ok)
	{
		pace->in_flight++;
		pace->next_request = Max(pace->next_request, now) +
			interval_us(window_ms, 1, cfg->rpm);
		pace->next_token = Max(pace->next_token, now) +
			interval_us(window_ms, est_tokens, cfg->tpm);
		if (cfg->rpm <= 0 && pace->learnt_rate > 0)
			pace->next_learnt = Max(pace->next_learnt, now) +
				(int64) (USECS_PER_SEC * PACE_HEADROOM / pace->learnt_rate);
		/*
		 * Count answers from the first request on, and again after a
		 * window with nothing in flight: what the provider took before
		 * that is out of its window and says nothing of its rate
		 */
		if (pace->seen_since == 0 ||
			(pace->in_flight == 1 && pace->seen_last > 0 &&
			 now - pace->seen_last > (int64) window_ms * 1000))
		{
			pace->seen_since = now;
			pace->seen_answered = 0;
			pace->recent = 0;
			pace->bare_rate = 0;

			/*
			 * A rate read from 429s that said no wait is the slowest
			 * reading (a window's worth; it may have been a storm that a
			 * concurrency cap or trouble caused): it lasts until the
			 * provider has been idle a window, then is learnt again
			 */
			if (pace->learnt_bare)
			{
				pace->learnt_rate = pace->announced_rate;
				pace->first_learnt = 0;
				pace->learnt_bare = false;
			}
		}
		pace->seen_last = now;
	}
	SpinLockRelease(&pace->mutex);

	/* at the concurrency limit, poll again soon: another session may finish */
	*wait_ms = ok ? 0 : (ready > now ? (long) ((ready - now + 999) / 1000) : 20);
	return ok;
}

void
ratelimit_release(const ProviderConfig *cfg, int window_ms,
				  int64 est_tokens, int64 used_tokens)
{
	ProviderPace *pace = pace_for(cfg->id);

	SpinLockAcquire(&pace->mutex);
	/* every release pairs with an acquire (transfer.c) */
	Assert(pace->in_flight > 0);
	if (pace->in_flight > 0)
		pace->in_flight--;
	if (cfg->tpm > 0 && used_tokens > 0)
		pace->next_token += interval_us(window_ms, used_tokens - est_tokens, cfg->tpm);
	SpinLockRelease(&pace->mutex);
}

/*
 * Zero-configuration limits.  A provider that answers 429 while no P_rpm is
 * set has shown its limit: it took the answers counted since seen_since,
 * and asks for retry_after_s more before it takes another (the engine
 * passes no 429 whose wait it does not honour, past
 * ctr_dist.max_retry_wait), so its limit is about answers / (elapsed +
 * retry_after) per second -- exact for a sliding window that the burst
 * filled.  Requests are then paced at that rate (with the usual headroom),
 * once LEARN_MIN_ANSWERS answers make the rate worth believing and a run
 * of 429s or one long wait shows a limit (LEARN_RUN, LEARN_WALL_S).  429s
 * of requests that were already out when the rate was cut say nothing new
 * and are ignored.  Each answer lets the learnt limit grow back slowly,
 * never past what the provider announced.
 *
 * A 429 that says no wait (DeepSeek's) may be a filled window, window_ms
 * long (ctr_dist.rate_limit_window: a minute, as providers count) -- the
 * burst is let in again when its first request leaves it, so the wait is
 * what is left of the window -- or a storm that a concurrency cap or the
 * provider's trouble caused, which ends within seconds.  The window
 * reading is the slowest there is, so it is only a candidate after
 * LEARN_RUN 429s in a row, and the provider pauses LEARN_PROBE_US: a
 * request sent after the pause that is refused too confirms it, one sent
 * after the reading that is answered drops it (the halved concurrency and
 * the backoff were answer enough).  A window whose wait would pass
 * max_retry_wait teaches nothing, as such a hint would not.
 */
static void
learn(ProviderPace *pace, double rate, TimestampTz now, TimestampTz wall_end, bool bare)
{
	if (pace->learnt_rate <= 0)
	{
		pace->first_learnt = pace->learnt_rate = rate;
		pace->learnt_bare = bare;
	}
	else
	{
		/*
		 * Paced at what was learnt, and still refused: a little slower, but
		 * never below half the first estimate, so that 429s that are not
		 * about the rate (a provider's own trouble) cannot spiral the pace
		 * down to nothing
		 */
		pace->learnt_rate = Max(Min(rate, pace->learnt_rate * 0.9),
								pace->first_learnt / 2);
		pace->learnt_bare &= bare;
	}
	pace->seen_since = Max(wall_end, now);
	pace->seen_answered = 0;
	pace->quiet_until = pace->seen_since + USECS_PER_SEC / 2;
	pace->next_learnt = Max(pace->next_learnt, pace->seen_since);
	pace->bare_rate = 0;
}

void
ratelimit_learn_429(ProviderId provider, double retry_after_s, int window_ms,
					long max_wait_ms, TimestampTz sent_at)
{
	ProviderPace *pace = pace_for(provider);
	TimestampTz now = GetCurrentTimestamp();
	bool		said = retry_after_s >= 0;
	uint32		run = said ? (1u << LEARN_SPAN) - 1 : (1u << LEARN_RUN) - 1;
	double		elapsed_s;

	SpinLockAcquire(&pace->mutex);
	pace->recent = (pace->recent << 1) | 1;
	pace->seen_last = now;
	elapsed_s = Max(now - pace->seen_since, 0) / (double) USECS_PER_SEC;
	if (!said && pace->bare_rate > 0)
	{
		/* a window read from bare 429s: the probe after it refused, confirmed */
		if (sent_at >= pace->bare_at + LEARN_PROBE_US)
			learn(pace, pace->bare_rate, now, pace->bare_wall_end, true);
	}
	else if (now >= pace->quiet_until && pace->seen_since > 0 &&
			 pace->seen_answered >= LEARN_MIN_ANSWERS &&
			 (pg_popcount32(pace->recent & run) >= LEARN_RUN ||
			  (said && retry_after_s >= Max(LEARN_WALL_S, LEARN_WALL_FACTOR * elapsed_s))))
	{
		/* the caller passes no said wait past max_retry_wait (at most 1 h) */
		double		wait_s = said ? Min(retry_after_s, (double) SECS_PER_HOUR)
			: Max(window_ms / 1000.0 * PACE_HEADROOM - elapsed_s, 1.0);
		/* at least one request a minute */
		double		rate = Max(pace->seen_answered / Max(elapsed_s + wait_s, 1.0), 1.0 / 60);
		TimestampTz wall_end = now + (int64) (wait_s * USECS_PER_SEC);

		if (said)
			learn(pace, rate, now, wall_end, false);
		else if (wait_s * 1000.0 <= max_wait_ms)
		{
			pace->bare_rate = rate;
			pace->bare_at = now;
			pace->bare_wall_end = wall_end;
			/* one probe, when the pause is over, confirms or drops it */
			pace->paused_until = Max(pace->paused_until, now + LEARN_PROBE_US);
		}
	}
	SpinLockRelease(&pace->mutex);
}

/* OpenAI's x-ratelimit-limit-requests: the limit itself, per window_ms */
void
ratelimit_learn_announced(ProviderId provider, double limit, int window_ms)
{
	ProviderPace *pace = pace_for(provider);
	double		rate = limit * 1000.0 / Max(window_ms, 1);

	if (rate <= 0)
		return;
	SpinLockAcquire(&pace->mutex);
	pace->announced_rate = rate;
	if (pace->learnt_rate <= 0 || pace->learnt_rate > rate)
		pace->learnt_rate = rate;
	SpinLockRelease(&pace->mutex);
}

void
ratelimit_learn_answer(ProviderId provider, TimestampTz sent_at)
{
	ProviderPace *pace = pace_for(provider);
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&pace->mutex);
	pace->seen_answered++;
	pace->seen_last = now;
	/* answered after bare 429s: they were a storm, not a filled window */
	if (pace->bare_rate > 0 && sent_at > pace->bare_at)
		pace->bare_rate = 0;
	pace->recent <<= 1;
	if (pace->learnt_rate > 0)
	{
		pace->learnt_rate *= LEARN_GROWTH;
		if (pace->announced_rate > 0)
			pace->learnt_rate = Min(pace->learnt_rate, pace->announced_rate);
	}
	SpinLockRelease(&pace->mutex);
}

/* Forget every learnt limit (ctr_dist.forget_learnt_limits) */
static void
forget_learnt(ProviderPace *pace)
{
	SpinLockAcquire(&pace->mutex);
	pace->learnt_rate = pace->announced_rate = pace->first_learnt = 0;
	pace->next_learnt = pace->seen_since = pace->seen_last = pace->quiet_until = 0;
	pace->seen_answered = 0;
	pace->recent = 0;
	pace->learnt_bare = false;
	pace->bare_rate = 0;
	SpinLockRelease(&pace->mutex);
}

/*
 * For hedging: is the provider held back by a limit nobody configured --
 * paced to a learnt one, or waiting out a 429 now?  (Seen by the calling
 * backend when preloaded; otherwise only what it learnt itself.)
 */
bool
ratelimit_holds_back(ProviderId provider)
{
	ProviderPace *pace = pace_for(provider);
	TimestampTz now = GetCurrentTimestamp();
	bool		held;

	SpinLockAcquire(&pace->mutex);
	held = pace->learnt_rate > 0 || pace->paused_until > now;
	SpinLockRelease(&pace->mutex);
	return held;
}

void
ratelimit_pause(ProviderId provider, long ms)
{
	ProviderPace *pace = pace_for(provider);
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	SpinLockAcquire(&pace->mutex);
	pace->paused_until = Max(pace->paused_until, until);
	SpinLockRelease(&pace->mutex);
}

PG_FUNCTION_INFO_V1(ctr_dist_rate_limits);

/*
 * ctr_dist.rate_limits: the shared limiter's state per provider, so that an
 * operator (and the tests) can see that every slot taken was given back.
 * Without the library preloaded there is no shared limiter: no rows.
 */
Datum
ctr_dist_rate_limits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	if (shared_pace == NULL)
	{
		ereport(NOTICE,
				(errmsg("ctr_dist rate limits are shared only with shared_preload_libraries = 'ctr_dist'"),
				 errhint("Without it each call keeps its own limits.")));
		return (Datum) 0;
	}
	for (int i = 0; i < PROVIDER_MOCK; i++)
	{
		ProviderPace *pace = &shared_pace->providers[i];
		ProviderPace copy;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		SpinLockAcquire(&pace->mutex);
		copy = *pace;
		SpinLockRelease(&pace->mutex);

		values[0] = CStringGetTextDatum(provider_ops((ProviderId) i)->name);
		values[1] = Int32GetDatum(copy.in_flight);
		if (copy.paused_until > now)
			values[2] = TimestampTzGetDatum(copy.paused_until);
		else
			nulls[2] = true;
		if (copy.learnt_rate > 0)
			values[3] = Float8GetDatum(copy.learnt_rate * 60);	/* per minute */
		else
			nulls[3] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ctr_dist_forget_learnt_limits);

/*
 * ctr_dist.forget_learnt_limits(): the learnt limits of every provider are
 * forgotten, in shared memory (preloaded) and in this backend; the next
 * 429s teach them again.  Superuser only (EXECUTE revoked from PUBLIC).
 */
Datum
ctr_dist_forget_learnt_limits(PG_FUNCTION_ARGS)
{
	for (int i = 0; i < PROVIDER_MOCK; i++)
	{
		if (shared_pace)
			forget_learnt(&shared_pace->providers[i]);
		if (local_initialized)
			forget_learnt(&local_pace.providers[i]);
	}
	PG_RETURN_VOID();
}
