/*-------------------------------------------------------------------------
 *
 * provider.h
 *	  The interface every LLM provider implements, and the per-provider
 *	  configuration that travels from the calling backend to the workers.
 *
 * A provider is three things: build the HTTP request for one batch, turn
 * the HTTP response into exactly N 0/1 answers or a classified failure,
 * and report token usage.  The parse side is plain C (no palloc, no
 * ereport) so that it can be fuzzed outside the server.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_PROVIDER_H
#define CTR_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "answer.h"

#ifndef pg_attribute_printf
#define pg_attribute_printf(f,a) __attribute__((format(printf, f, a)))
#endif

typedef enum ProviderId
{
	PROVIDER_OPENAI = 0,
	PROVIDER_DEEPSEEK,
	PROVIDER_GEMINI,
	PROVIDER_MOCK,
	NUM_PROVIDERS
} ProviderId;

#define CTR_URL_MAX		1024
#define CTR_KEY_MAX		512
#define CTR_MODEL_MAX	128
#define CTR_REASON_MAX	256
#define CTR_MAX_BATCH	1000

/*
 * Everything a worker needs to call one provider.  Fixed-size so that it
 * can be copied into dynamic shared memory as is; the key is wiped from
 * there when the call ends.
 */
typedef struct ProviderConfig
{
	ProviderId	id;
	char		base_url[CTR_URL_MAX];
	char		model[CTR_MODEL_MAX];
	char		api_key[CTR_KEY_MAX];
	int			max_concurrency;
	int			rpm;
	int			tpm;
	double		price_input;	/* USD per 1M tokens */
	double		price_output;
} ProviderConfig;

/* What one attempt came to; the classes of the wire-format reference, §7 */
typedef enum OutcomeClass
{
	OUTCOME_OK = 0,
	OUTCOME_THROTTLE,			/* 429 rate limit: wait, retry, no attempt used */
	OUTCOME_TRANSIENT,			/* 408/409/5xx, network faults: retry */
	OUTCOME_SOFT,				/* 200 with an unusable answer: retry */
	OUTCOME_FATAL,				/* bad key, quota, unknown model: provider out */
	OUTCOME_BUG,				/* 400/422: our request is wrong; no retry */
	OUTCOME_BUDGET				/* not sent: it could take the call over budget */
} OutcomeClass;

typedef struct Outcome
{
	OutcomeClass cls;
	int			n;				/* answers wanted */
	AnswerKind	kind;			/* of what */
	uint8_t    *clicks;			/* caller's array of n answers */
	int64_t		tokens_in;
	int64_t		tokens_out;
	double		retry_after;	/* seconds the server asked us to wait; <0 none */
	int			http_status;
	char		model[CTR_MODEL_MAX];	/* model that answered */
	char		reason[CTR_REASON_MAX];
} Outcome;

/* Response headers the parsers care about (raw values, NUL-terminated) */
typedef struct HttpHints
{
	char		retry_after[64];
	char		retry_after_ms[64];
	char		ratelimit_limit_requests[32];
	char		ratelimit_remaining_requests[32];
	char		ratelimit_reset_requests[32];
} HttpHints;

/* What a request is built from */
typedef struct BuildSpec
{
	const char *user_text;		/* the personas, then the ad */
	int			n;				/* personas */
	AnswerKind	kind;			/* 0/1 or percent */
	uint64_t	cache_key;		/* equal for requests that share a prefix; 0: none */
} BuildSpec;

/* One HTTP request, built in the caller's memory context */
typedef struct ProviderRequest
{
	char	   *url;
	char	   *headers[6];		/* "Name: value" lines */
	int			nheaders;
	char	   *body;
	size_t		body_len;
} ProviderRequest;

/*
 * What a batch costs before the provider says: its text at ~4 bytes a
 * token plus ~600 bytes of instructions in (for pacing tokens per minute),
 * and the output tokens every request allows: 2N+16 for 0/1 answers (an
 * answer is about one token per persona), 4N+16 for percentages.  The
 * output limit goes into the request, the rate limits and the budget.
 */
static inline int64_t
batch_tokens_in(int64_t text_len)
{
	return (text_len + 600) / 4;
}

static inline int64_t
batch_tokens_out(int n, AnswerKind kind)
{
	return (kind == ANSWER_PROBABILITY ? 4 : 2) * (int64_t) n + 16;
}

/* cost in USD of so many tokens at a provider's prices */
static inline double
cost_of(const ProviderConfig *cfg, double tokens_in, double tokens_out)
{
	return (tokens_in * cfg->price_input + tokens_out * cfg->price_output) / 1e6;
}

typedef struct ProviderOps
{
	const char *name;
	const char *key_env;		/* server environment fallback for the key */
	const char *default_url;
	const char *default_model;
	double		default_price_input;
	double		default_price_output;

	/* build the request for a batch of n personas (may palloc, may ereport) */
	void		(*build) (const ProviderConfig *cfg, const BuildSpec *spec,
						  ProviderRequest *req);

	/* classify a response; pure C, never palloc or ereport */
	void		(*parse) (int http_status, const char *body, size_t len,
						  const HttpHints *hints, Outcome *out);
} ProviderOps;

extern const ProviderOps openai_ops;
extern const ProviderOps deepseek_ops;
extern const ProviderOps gemini_ops;
extern const ProviderOps mock_ops;

extern const ProviderOps *provider_ops(ProviderId id);
extern bool provider_lookup(const char *name, ProviderId *id);

/* provider.c: settings and the providers in play */
extern void provider_define_settings(void);
extern void provider_fill_config(ProviderId id, ProviderConfig *cfg);
extern int	provider_weight(ProviderId id);
extern bool value_printable(const char *s);

/* provider_openai.c: shared by OpenAI-compatible providers */
extern void openai_compat_parse(int http_status, const char *body, size_t len,
								const HttpHints *hints, bool deepseek,
								Outcome *out);

/* provider_util.c: pure helpers used by the parsers */
extern void outcome_fail(Outcome *out, OutcomeClass cls, const char *fmt,...)
			pg_attribute_printf(3, 4);
extern void outcome_header_hints(Outcome *out, const HttpHints *hints, double now_epoch);
extern void keep_printable_ascii(char *s);
extern double parse_retry_after(const char *value, double now_epoch);
extern double parse_duration_text(const char *s);
extern double parse_try_again_text(const char *message);
extern OutcomeClass classify_http_status(int status);
extern void hints_from_header_line(HttpHints *hints, const char *line, size_t len);

#endif							/* CTR_PROVIDER_H */
