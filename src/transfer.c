/*-------------------------------------------------------------------------
 *
 * transfer.c
 *	  One HTTP attempt: build it, hand it to curl, classify what came back.
 *
 * A transfer is linked into its engine's list before it holds anything,
 * and each resource is recorded in it the moment it exists, so that an
 * error anywhere (out of memory while building the request, curl refusing
 * the handle) leaves nothing the release path does not know about.  The
 * ownership table is in transfer.h.
 *
 * The curl callbacks only record: they never ereport or palloc.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/memutils.h"

#include "ratelimit.h"
#include "transfer.h"

#define CTR_USER_AGENT "ctr_dist/" CTR_DIST_VERSION
#define MAX_RESPONSE_BYTES (16 * 1024 * 1024)

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
		size_t		newcap = Max(Max(buf->cap * 2, buf->len + add + 1), 4096);
		char	   *p = realloc(buf->data, newcap);

		if (p == NULL)
			return 0;
		buf->data = p;
		buf->cap = newcap;
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

/* ---- lifetime ---- */

Transfer *
transfer_create(MemoryContext cxt, dlist_head *list, EngineJob *job,
				const ProviderConfig *cfg, int window_ms)
{
	Transfer   *t = MemoryContextAllocZero(cxt, sizeof(Transfer));

	t->job = job;
	t->cfg = cfg;
	t->window_ms = window_ms;
	dlist_push_tail(list, &t->node);
	return t;
}

bool
transfer_acquire(Transfer *t, long *wait_ms)
{
	Assert(!t->slot_held);
	t->slot_held = ratelimit_acquire(t->cfg, t->window_ms, t->job->est_tokens, wait_ms);
	return t->slot_held;
}

void
transfer_release(Transfer *t, CurlMulti *m, bool finished)
{
	dlist_delete(&t->node);
	if (t->easy)
		multi_retire(m, t->easy, finished);
	/* the headers carried the key: wipe curl's copies before freeing */
	for (struct curl_slist *h = t->headers; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(t->headers);
	free(t->response.data);
	/* curl read the body where it is: only now that curl is done with it */
	if (t->body)
		pfree(t->body);
	if (t->slot_held)
		ratelimit_release(t->cfg, t->window_ms, t->job->est_tokens, t->used_in + t->used_out);
	if (t->budget && finished)
		budget_settle(t->budget, t->reserved_usd, t->cost_usd);
	pfree(t);
}

/* ---- starting ---- */

/* Said once per process: a cancel may then wait for a host name lookup */
static void
quick_exit_unsupported(void)
{
	static bool warned = false;

	if (warned)
		return;
	warned = true;
	ereport(WARNING,
			(errmsg("libcurl %s cannot abandon a host name lookup", curl_version_info(CURLVERSION_NOW)->version),
			 errdetail("A cancelled call may wait for a lookup in progress to end."),
			 errhint("libcurl 7.87 or later does not wait.")));
}

void
transfer_build(Transfer *t, CurlMulti *m, const EngineSettings *settings,
			   MemoryContext scratch, struct curl_slist *resolve)
{
	const ProviderOps *ops = provider_ops(t->job->provider);
	ProviderRequest req = {0};
	MemoryContext old;
	CURL	   *easy;

	t->started = GetCurrentTimestamp();

	/*
	 * The body goes where the transfer is, and is the transfer's once built;
	 * if building raises, it stays in engine->cxt until the engine ends
	 */
	req.body_cxt = GetMemoryChunkContext(t);
	old = MemoryContextSwitchTo(scratch);
	if (t->job->models)
		ops->build_models(t->cfg, t->job->models->next_page, &req);
	else
	{
		BuildSpec	spec = {
			.user_text = t->job->text,
			.user_len = t->job->text_len,
			.n = t->job->n,
			.kind = t->job->kind,
			.cache_key = t->job->cache_key,
			.plan = &t->plan,
		};

		ops->build(t->cfg, &spec, &req);
	}
	t->body = req.body;
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

	t->easy = easy = multi_easy(m);
	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	curl_easy_setopt(easy, CURLOPT_URL, req.url);
	if (req.body == NULL)
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	else
	{
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req.body_len);
		/* not copied: t->body lives until transfer_release has retired easy */
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body);
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, CTR_USER_AGENT);
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	/* removing a handle must not wait for a host name lookup to end (7.87+) */
	if (curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L) != CURLE_OK)
		quick_exit_unsupported();
	/* a key goes only to its provider's base URL: no redirects, no other schemes */
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) settings->request_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) settings->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t->response);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t->hints);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	/* the engine looked the host up (resolve.h): curl does not */
	if (resolve)
		curl_easy_setopt(easy, CURLOPT_RESOLVE, resolve);
	t->body_len = req.body_len;
	MemoryContextReset(scratch);
}

/*
 * The most this request can cost: its body at tokens_per_byte (1 until the
 * provider has told us its real rate: no tokenizer makes more tokens than
 * bytes), every one at the highest input price (a cache write may cost
 * more than input; a cache read only lowers what it really costs), and
 * every output token it allows, reasoning included, at the price settings
 * and the plan's factor (flex, peak hours).
 */
bool
transfer_reserve(Transfer *t, CallBudget *budget, double tokens_per_byte)
{
	double		bound = cost_bound(t->cfg, ceil(t->body_len * tokens_per_byte),
								   (double) t->plan.max_tokens_out, t->plan.price_factor);

	if (!budget_reserve(budget, bound))
		return false;
	t->budget = budget;
	t->reserved_usd = bound;
	return true;
}

void
transfer_launch(Transfer *t, CurlMulti *m)
{
	t->job->counters.requests++;
	multi_add(m, t->easy);
}

/* ---- finishing ---- */

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

void
transfer_outcome(Transfer *t, CURLcode code, Outcome *out)
{
	const ProviderOps *ops = provider_ops(t->job->provider);

	if (code != CURLE_OK)
		network_outcome(code, t->errbuf, t->response.overflow, out);
	else
	{
		long		status = 0;
		const char *body = t->response.data ? t->response.data : "";

		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		if (t->job->models)
			ops->parse_models((int) status, body, t->response.len, &t->hints, t->job->models, out);
		else
			ops->parse((int) status, body, t->response.len, &t->hints, out);
		out->http_status = (int) status;
	}
	t->used_in = out->tokens_in;
	t->used_out = out->tokens_out;
	/* billed as the provider says (flex), else as planned (peak hours) */
	t->cost_usd = usage_cost(t->cfg, out->tokens_in, out->tokens_cached, out->tokens_cache_write,
							 out->tokens_out, out->price_factor >= 0 ? out->price_factor
							 : t->plan.price_factor);
}
