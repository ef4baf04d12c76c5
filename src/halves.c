/*-------------------------------------------------------------------------
 *
 * halves.c
 *	  A job in halves: two jobs of its own, one answer for the owner.
 *
 * A batch too large for the model (its context, or an output limit above
 * the model's), an answer cut off at the output limit, or an unusable
 * answer with no other provider left to try, is sent again as two requests
 * of half the personas each (split.c renders them), on the same provider.
 * The halves run as ordinary jobs -- retries, throttles, the breaker, the
 * budget -- and may be halved again; the job itself waits, on no list,
 * until both are back, and then finishes with both answers in place, or
 * with the first failure, and with what every request cost.  The owner
 * never sees a half.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "halves.h"
#include "split.h"

void
job_counters_add(JobCounters *to, const JobCounters *from)
{
	to->requests += from->requests;
	to->answered += from->answered;
	to->throttled += from->throttled;
	to->transient += from->transient;
	to->soft += from->soft;
	to->too_large += from->too_large;
	to->unsupported += from->unsupported;
	to->fatal += from->fatal;
	to->rejected += from->rejected;
	to->breaker_trips += from->breaker_trips;
	to->paced_ms += from->paced_ms;
	to->splits += from->splits;
	to->dropped |= from->dropped;
	to->tokens_cached += from->tokens_cached;
	to->tokens_cache_write += from->tokens_cache_write;
	to->tokens_reasoning += from->tokens_reasoning;
	to->cost_usd += from->cost_usd;
}

static EngineJob *
new_half(MemoryContext cxt, EngineJob *job, int offset, int n, char *text, int text_len)
{
	EngineJob  *half = MemoryContextAllocZero(cxt, sizeof(EngineJob));

	half->batch_no = job->batch_no;
	half->ad_no = job->ad_no;
	half->provider = job->provider;
	half->n = n;
	half->kind = job->kind;
	half->text = half->own_text = text;
	half->text_len = text_len;
	half->ad = job->ad;
	half->cache_key = job->cache_key;
	half->last_resort = job->last_resort;
	half->parent = job;
	half->offset = offset;
	/* what the job used up, its halves have used up too: splitting is bounded */
	half->attempts = job->attempts;
	half->cls = OUTCOME_OK;
	half->clicks = MemoryContextAllocZero(cxt, n);
	return half;
}

bool
halves_make(MemoryContext cxt, EngineJob *job, EngineJob **first, EngineJob **second)
{
	RequestHalves h;
	int			n1 = job->n / 2;
	MemoryContext old;
	bool		ok;

	if (job->n < 2 || job->models != NULL || job->provider == PROVIDER_MOCK)
		return false;
	old = MemoryContextSwitchTo(cxt);
	ok = request_split(job->text, job->text_len, job->n, n1, &h);
	MemoryContextSwitchTo(old);
	if (!ok)
		return false;
	*first = new_half(cxt, job, 0, n1, h.first, h.first_len);
	*second = new_half(cxt, job, n1, job->n - n1, h.second, h.second_len);
	job->pending_halves = 2;
	job->counters.splits++;
	/* the job's answer is the halves' now: OK until one of them fails */
	job->cls = OUTCOME_OK;
	job->exhausted = true;
	job->reason[0] = '\0';
	return true;
}

EngineJob *
halves_merge(EngineJob *half)
{
	EngineJob  *job = half->parent;

	Assert(job != NULL && job->pending_halves > 0);
	job->tokens_in += half->tokens_in;
	job->tokens_out += half->tokens_out;
	job->retries += half->retries;
	job_counters_add(&job->counters, &half->counters);
	if (half->model[0] && job->model[0] == '\0')
		strlcpy(job->model, half->model, sizeof(job->model));
	if (half->cls == OUTCOME_OK)
		memcpy(job->clicks + half->offset, half->clicks, half->n);
	else if (job->cls == OUTCOME_OK)
	{
		/* the first failure is the job's */
		job->cls = half->cls;
		job->exhausted = half->exhausted;
		job->http_status = half->http_status;
		strlcpy(job->reason, half->reason, sizeof(job->reason));
	}
	else
		job->exhausted = job->exhausted && half->exhausted;
	pfree(half->own_text);
	pfree(half->clicks);
	pfree(half);
	return --job->pending_halves == 0 ? job : NULL;
}
