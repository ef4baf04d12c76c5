/*-------------------------------------------------------------------------
 *
 * provider.h
 *	  The interface every LLM provider implements, and the per-provider
 *	  configuration that travels from the calling backend to the workers.
 *
 * A provider is a few things: plan a request (its output limit, what it
 * sends for reasoning, its price factor), build the HTTP request for one
 * batch, turn the HTTP response into exactly N answers or a classified
 * failure, report token usage (cached and reasoning tokens too), and list
 * the models the account offers.  The parse side is plain C (no palloc, no
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
 * Parameters of a request that a model may refuse with a 400 naming it.
 * The engine then sends the request again without it and remembers the
 * model's answer (quirks.c); for reasoning it first tries the next higher
 * effort, when the setting leaves that choice to ctr_dist.
 */
typedef enum RequestParam
{
	PARAM_NONE = 0,
	PARAM_TEMPERATURE,
	PARAM_REASONING,			/* reasoning_effort, thinkingConfig, thinking */
	PARAM_SERVICE_TIER,
	PARAM_CACHE_KEY,			/* prompt_cache_key */
	NUM_PARAMS
} RequestParam;

#define PARAM_BIT(p)	((uint32_t) 1 << (p))
/* with the dropped bits, in reports: the effort was raised above the lowest */
#define EFFORT_RAISED	PARAM_BIT(NUM_PARAMS)

/* What is known about one model: what it refuses */
typedef struct ModelQuirks
{
	uint32_t	dropped;		/* PARAM_BIT()s not to send */
	int			reasoning_step; /* steps above the lowest effort it needs */
} ModelQuirks;

/* Reasoning effort settings (OpenAI reasoning_effort, Gemini thinkingLevel) */
typedef enum ReasoningEffort
{
	EFFORT_LOWEST = 0,			/* the lowest the model accepts */
	EFFORT_NONE,
	EFFORT_MINIMAL,
	EFFORT_LOW,
	EFFORT_MEDIUM,
	EFFORT_HIGH,
	EFFORT_XHIGH,
	EFFORT_MAX,
	EFFORT_MODEL_DEFAULT		/* not sent: the model's own default */
} ReasoningEffort;

/* OpenAI service tiers ctr_dist can ask for */
typedef enum ServiceTier
{
	TIER_AUTO = 0,				/* not sent: the project's default */
	TIER_DEFAULT,
	TIER_FLEX					/* half price, slower, may be unavailable */
} ServiceTier;

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
	double		price_cached_input; /* read from the provider's prompt cache */
	double		price_cache_write;	/* written to it (OpenAI; 0: as input) */
	double		price_output;	/* reasoning tokens included */
	double		peak_factor;	/* DeepSeek: prices at peak hours, times */
	int			effort;			/* ReasoningEffort (OpenAI, Gemini 3) */
	int			thinking_budget;	/* Gemini 2.x thinkingBudget; -1: dynamic */
	bool		thinking;		/* DeepSeek thinking mode */
	int			reasoning_room; /* output tokens allowed for reasoning */
	int			service_tier;	/* ServiceTier (OpenAI) */
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
	OUTCOME_BUDGET,				/* not sent: it could take the call over budget */
	OUTCOME_PARAM,				/* 400 naming a parameter the model refuses:
								 * again without it (Outcome.param) */
	OUTCOME_TOO_LARGE			/* the batch exceeds the model's context or
								 * output limit: split it in halves */
} OutcomeClass;

typedef struct Outcome
{
	OutcomeClass cls;
	int			n;				/* answers wanted */
	AnswerKind	kind;			/* of what */
	uint8_t    *clicks;			/* caller's array of n answers */
	int64_t		tokens_in;		/* all prompt tokens, cached ones included */
	int64_t		tokens_cached;	/* of tokens_in: read from the prompt cache */
	int64_t		tokens_cache_write; /* of tokens_in: written to it */
	int64_t		tokens_out;		/* reasoning included */
	int64_t		tokens_reasoning;	/* of tokens_out */
	double		retry_after;	/* seconds the server asked us to wait; <0 none */
	double		price_factor;	/* what the provider says it billed (flex: 0.5);
								 * <0: as planned */
	RequestParam param;			/* OUTCOME_PARAM: the parameter refused */
	bool		capacity;		/* THROTTLE: out of capacity (flex), not a rate
								 * limit: backs off and counts as an attempt */
	bool		truncated;		/* SOFT: the answer hit the output limit */
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

/*
 * What one request asks for, decided before it is sent (ops->plan): the
 * output limit that the request, the rate limiter and the budget use, what
 * it sends for reasoning, and the price factor it is reserved at.
 */
typedef struct RequestPlan
{
	int64_t		max_tokens_out; /* the answer's room, plus reasoning's */
	int			effort;			/* provider-specific value sent, see the builder */
	bool		reasoning;		/* above the lowest effort: room for reasoning */
	bool		can_step;		/* a higher effort is left if this one is refused */
	int			step;			/* the ModelQuirks.reasoning_step planned with */
	uint32_t	sent;			/* PARAM_BIT()s of the optional parameters sent */
	double		price_factor;	/* of the list prices: flex 0.5, DeepSeek peak */
} RequestPlan;

/* What a request is built from */
typedef struct BuildSpec
{
	const char *user_text;		/* the personas, then the ad */
	size_t		user_len;		/* its strlen */
	int			n;				/* personas */
	AnswerKind	kind;			/* 0/1 or percent */
	uint64_t	cache_key;		/* equal for requests that share a prefix; 0: none */
	const RequestPlan *plan;
} BuildSpec;

/* One model a provider offers (ctr_dist.models()) */
typedef struct ModelInfo
{
	char		id[CTR_MODEL_MAX];
	char		display_name[CTR_MODEL_MAX];
	int64_t		input_limit;	/* tokens; 0: not said */
	int64_t		output_limit;
	char		shutdown_date[16];	/* YYYY-MM-DD, or "" */
} ModelInfo;

/* A page of the model list; the caller provides the room */
typedef struct ModelList
{
	ModelInfo  *items;
	int			n;
	int			max;
	char		next_page[512]; /* continuation token, or "" */
} ModelList;

/*
 * One HTTP request, built in the caller's memory context; the body in
 * body_cxt if set (the transfer's: curl reads it where it is)
 */
typedef struct ProviderRequest
{
	char	   *url;
	char	   *headers[6];		/* "Name: value" lines */
	int			nheaders;
	struct MemoryContextData *body_cxt;	/* a MemoryContext */
	char	   *body;				/* NULL: a GET */
	size_t		body_len;
} ProviderRequest;

/*
 * What a batch costs before the provider says: its text at ~4 bytes a
 * token plus ~600 bytes of instructions in (for pacing tokens per minute),
 * and the room the answer gets: 4N+32 tokens for 0/1 answers, 6N+32 for
 * percentages.  An answer is about one token per persona when written
 * tight, but every schema allows "[1, 0, ...]" with spaces (two tokens a
 * value on o200k, three characters on a character-level engine), and the
 * limit is not billed, so it has room to spare.  The plan adds room for
 * reasoning; that sum goes into the request, the rate limits and the
 * budget.
 */
static inline int64_t
batch_tokens_in(int64_t text_len)
{
	return (text_len + 600) / 4;
}

static inline int64_t
batch_tokens_out(int n, AnswerKind kind)
{
	return (kind == ANSWER_PROBABILITY ? 6 : 4) * (int64_t) n + 32;
}

/* the most an input token can cost: a cache write may cost more than input */
static inline double
price_input_bound(const ProviderConfig *cfg)
{
	return cfg->price_cache_write > cfg->price_input ? cfg->price_cache_write : cfg->price_input;
}

/*
 * The most so many tokens can cost: every input token at its highest price.
 * For the budget's reservations, which must be upper bounds.
 */
static inline double
cost_bound(const ProviderConfig *cfg, double tokens_in, double tokens_out, double factor)
{
	return factor * (tokens_in * price_input_bound(cfg) + tokens_out * cfg->price_output) / 1e6;
}

/*
 * What reported usage costs: cached tokens at the cached price, written
 * ones at the write price (input when there is none), the rest at input.
 */
static inline double
usage_cost(const ProviderConfig *cfg, int64_t in, int64_t cached, int64_t written,
		   int64_t out, double factor)
{
	int64_t		fresh = in - cached - written;
	double		write_price = cfg->price_cache_write > 0 ? cfg->price_cache_write : cfg->price_input;

	if (fresh < 0)
		fresh = 0;
	return factor * (fresh * cfg->price_input + cached * cfg->price_cached_input +
					 written * write_price + out * cfg->price_output) / 1e6;
}

typedef struct ProviderOps
{
	const char *name;
	const char *key_env;		/* server environment fallback for the key */
	const char *default_url;
	const char *default_model;
	double		default_price_input;
	double		default_price_cached_input;
	double		default_price_output;

	/*
	 * What a request of n answers sends, given what the model refuses;
	 * now_epoch for time-of-day prices.  Pure C.
	 */
	void		(*plan) (const ProviderConfig *cfg, const ModelQuirks *quirks,
						 int n, AnswerKind kind, double now_epoch, RequestPlan *plan);

	/* build the request for a batch of n personas (may palloc, may ereport) */
	void		(*build) (const ProviderConfig *cfg, const BuildSpec *spec,
						  ProviderRequest *req);

	/* classify a response; pure C, never palloc or ereport */
	void		(*parse) (int http_status, const char *body, size_t len,
						  const HttpHints *hints, Outcome *out);

	/* the GET of one page of the model list (page: "" for the first) */
	void		(*build_models) (const ProviderConfig *cfg, const char *page,
								 ProviderRequest *req);

	/* one page of the model list into list; errors as parse does.  Pure C. */
	void		(*parse_models) (int http_status, const char *body, size_t len,
								 const HttpHints *hints, ModelList *list, Outcome *out);
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
extern void openai_compat_parse_models(int http_status, const char *body, size_t len,
									   const HttpHints *hints, bool deepseek,
									   ModelList *list, Outcome *out);
extern void openai_compat_build_models(const ProviderConfig *cfg, ProviderRequest *req);

/* provider_util.c: pure helpers used by the parsers */
extern void outcome_fail(Outcome *out, OutcomeClass cls, const char *fmt,...)
			pg_attribute_printf(3, 4);
extern void outcome_header_hints(Outcome *out, const HttpHints *hints, double now_epoch);
extern void keep_printable_ascii(char *s);
extern double parse_retry_after(const char *value, double now_epoch);
extern double parse_duration_text(const char *s);
extern double parse_try_again_text(const char *message);
extern OutcomeClass classify_http_status(int status);
extern const char *param_name(RequestParam param);
extern RequestParam param_lookup(const char *name);
extern void outcome_clamp_usage(Outcome *out);
extern bool model_info_add(ModelList *list, const char *id, const char *display_name,
						   int64_t input_limit, int64_t output_limit,
						   const char *shutdown_date);
extern void hints_from_header_line(HttpHints *hints, const char *line, size_t len);

#endif							/* CTR_PROVIDER_H */
