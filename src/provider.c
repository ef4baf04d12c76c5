/*-------------------------------------------------------------------------
 *
 * provider.c
 *	  The provider registry and its settings.
 *
 * Base URLs are superuser-only (a user who could change a base URL could
 * send the key to a host of their own) and hidden from other roles; keys
 * are keys.c's; everything else a user may tune per session: models,
 * prices, how much a reasoning model may think, OpenAI's service tier.
 * Invalid values are rejected when set, by check hooks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

#include "keys.h"
#include "mock.h"
#include "provider.h"
#include "provider_json.h"
#include "ratelimit.h"

typedef struct ProviderSettings
{
	char	   *base_url;
	char	   *model;
	int			weight;
	int			max_concurrency;
	int			rpm;
	int			tpm;
	double		price_input;
	double		price_cached_input;
	double		price_output;
} ProviderSettings;

static ProviderSettings settings[NUM_PROVIDERS];

/* reasoning and tiers: one provider each */
static int	openai_effort = EFFORT_LOWEST;
static int	openai_service_tier = TIER_AUTO;
static double openai_price_cache_write = 0.125;
static int	gemini_thinking_budget = 0;
static int	gemini_thinking_level = EFFORT_LOWEST;
static bool deepseek_thinking = false;
static double deepseek_peak_factor = 2.0;
static int	max_reasoning_tokens = 4096;

static const struct config_enum_entry openai_effort_options[] = {
	{"lowest", EFFORT_LOWEST, false},
	{"none", EFFORT_NONE, false},
	{"minimal", EFFORT_MINIMAL, false},
	{"low", EFFORT_LOW, false},
	{"medium", EFFORT_MEDIUM, false},
	{"high", EFFORT_HIGH, false},
	{"xhigh", EFFORT_XHIGH, false},
	{"max", EFFORT_MAX, false},
	{"model_default", EFFORT_MODEL_DEFAULT, false},
	{NULL, 0, false}
};

static const struct config_enum_entry gemini_level_options[] = {
	{"lowest", EFFORT_LOWEST, false},
	{"minimal", EFFORT_MINIMAL, false},
	{"low", EFFORT_LOW, false},
	{"medium", EFFORT_MEDIUM, false},
	{"high", EFFORT_HIGH, false},
	{"model_default", EFFORT_MODEL_DEFAULT, false},
	{NULL, 0, false}
};

static const struct config_enum_entry service_tier_options[] = {
	{"auto", TIER_AUTO, false},
	{"default", TIER_DEFAULT, false},
	{"flex", TIER_FLEX, false},
	{NULL, 0, false}
};

const ProviderOps mock_ops = {
	.name = "mock",
	.default_model = MOCK_MODEL,
};

const ProviderOps *
provider_ops(ProviderId id)
{
	switch (id)
	{
		case PROVIDER_OPENAI:
			return &openai_ops;
		case PROVIDER_DEEPSEEK:
			return &deepseek_ops;
		case PROVIDER_GEMINI:
			return &gemini_ops;
		case PROVIDER_MOCK:
		case NUM_PROVIDERS:
			break;
	}
	return &mock_ops;
}

bool
provider_lookup(const char *name, ProviderId *id)
{
	for (int i = 0; i < NUM_PROVIDERS; i++)
	{
		if (strcmp(name, provider_ops((ProviderId) i)->name) == 0)
		{
			*id = (ProviderId) i;
			return true;
		}
	}
	return false;
}

/* no control characters or spaces: a value goes into an HTTP header or URL */
bool
value_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p < 0x21 || *p == 0x7f)
			return false;
	return true;
}

static bool
check_base_url(char **newval, void **extra, GucSource source)
{
	const char *url = *newval;
	size_t		len = strlen(url);
	const char *host;

	if (len >= CTR_URL_MAX || !value_printable(url))
	{
		GUC_check_errdetail("A base URL is at most %d characters without spaces.", CTR_URL_MAX - 1);
		return false;
	}
	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
	{
		GUC_check_errdetail("A base URL must start with https:// or http://.");
		return false;
	}
	if (*host == '\0' || *host == '/' || strpbrk(url, "?#@") != NULL)
	{
		GUC_check_errdetail("A base URL needs a host and must not carry credentials, a query or a fragment.");
		return false;
	}
	if (url[len - 1] == '/')
	{
		GUC_check_errdetail("A base URL must not end with a slash.");
		return false;
	}
	return true;
}

static bool
check_model(char **newval, void **extra, GucSource source)
{
	const char *m = *newval;

	if (*m == '\0' || strlen(m) >= CTR_MODEL_MAX)
	{
		GUC_check_errdetail("A model name is 1 to %d characters.", CTR_MODEL_MAX - 1);
		return false;
	}
	/* it goes into a URL path (Gemini): allow only what model names use */
	for (; *m; m++)
	{
		if (!((*m >= 'a' && *m <= 'z') || (*m >= 'A' && *m <= 'Z') ||
			  (*m >= '0' && *m <= '9') || strchr("._-:", *m)))
		{
			GUC_check_errdetail("A model name may contain only letters, digits and . _ - :");
			return false;
		}
	}
	return true;
}

/* How much reasoning models may think, and what OpenAI's tiers cost */
static void
define_reasoning_settings(void)
{
	DefineCustomEnumVariable("ctr_dist.openai_reasoning_effort",
							 "reasoning_effort sent to OpenAI.",
							 "lowest: none, else minimal, else low, whichever the model accepts first; model_default: not sent.",
							 &openai_effort, EFFORT_LOWEST, openai_effort_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("ctr_dist.openai_service_tier",
							 "service_tier sent to OpenAI.",
							 "flex is billed at half price but answers more slowly and may be unavailable; auto: not sent.",
							 &openai_service_tier, TIER_AUTO, service_tier_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("ctr_dist.openai_price_cache_write",
							 "Price of OpenAI input tokens written to its prompt cache, USD per million.",
							 "0: at the input price (models that do not report cache writes).",
							 &openai_price_cache_write, 0.125, 0, 1e6,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ctr_dist.gemini_thinking_budget",
							"thinkingBudget sent to Gemini 2.x models; 0 turns thinking off, -1 lets the model decide.",
							NULL, &gemini_thinking_budget, 0, -1, 32768,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("ctr_dist.gemini_thinking_level",
							 "thinkingLevel sent to Gemini 3 and later models.",
							 "lowest: minimal, else low, whichever the model accepts first; model_default: not sent.",
							 &gemini_thinking_level, EFFORT_LOWEST, gemini_level_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("ctr_dist.deepseek_thinking",
							 "Lets DeepSeek think before it answers (its thinking mode).",
							 NULL, &deepseek_thinking, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("ctr_dist.deepseek_peak_factor",
							 "DeepSeek's prices in its peak hours, as a multiple of the price settings.",
							 "Peak hours are 01:00-04:00 and 06:00-10:00 UTC, Monday to Friday; 1 prices them as the rest.",
							 &deepseek_peak_factor, 2.0, 1.0, 10.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ctr_dist.max_reasoning_tokens",
							"Output tokens a request allows for reasoning, on top of the answer, when the effort is above the lowest.",
							"Reasoning tokens are billed as output; the limit is not, but the budget reserves it.",
							&max_reasoning_tokens, 4096, 0, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
}

void
provider_define_settings(void)
{
	/*
	 * Preloaded, the rate limits are shared: they bind every session, so
	 * only a superuser may change them (one role's SET must not outrun the
	 * schedule of all).  Without preload each call keeps its own.
	 */
	GucContext	limits = ratelimit_settings_context();

	for (int i = 0; i < PROVIDER_MOCK; i++)
	{
		const ProviderOps *ops = provider_ops((ProviderId) i);
		ProviderSettings *s = &settings[i];

#define NAME(suffix) psprintf("ctr_dist.%s_" suffix, ops->name)
		DefineCustomStringVariable(NAME("base_url"),
								   psprintf("Base URL of the %s API.", ops->name),
								   "The API key is sent only to this URL.",
								   &s->base_url, ops->default_url,
								   PGC_SUSET, GUC_SUPERUSER_ONLY,
								   check_base_url, NULL, NULL);
		DefineCustomStringVariable(NAME("model"),
								   psprintf("Model asked at %s.", ops->name),
								   NULL, &s->model, ops->default_model,
								   PGC_USERSET, 0,
								   check_model, NULL, NULL);
		DefineCustomIntVariable(NAME("weight"),
								psprintf("Share of the batches sent to %s; 0 disables it.", ops->name),
								NULL, &s->weight, 1, 0, 1000,
								PGC_USERSET, 0, NULL, NULL, NULL);
		DefineCustomIntVariable(NAME("max_concurrency"),
								psprintf("Requests in flight at once to %s.", ops->name),
								NULL, &s->max_concurrency, 8, 1, 256,
								limits, 0, NULL, NULL, NULL);
		DefineCustomIntVariable(NAME("rpm"),
								psprintf("Requests per minute allowed to %s; 0 means no client-side limit.", ops->name),
								NULL, &s->rpm, 0, 0, INT_MAX,
								limits, 0, NULL, NULL, NULL);
		DefineCustomIntVariable(NAME("tpm"),
								psprintf("Tokens per minute allowed to %s; 0 means no client-side limit.", ops->name),
								NULL, &s->tpm, 0, 0, INT_MAX,
								limits, 0, NULL, NULL, NULL);
		DefineCustomRealVariable(NAME("price_input"),
								 psprintf("Price of %s input tokens, USD per million.", ops->name),
								 NULL, &s->price_input, ops->default_price_input, 0, 1e6,
								 PGC_USERSET, 0, NULL, NULL, NULL);
		DefineCustomRealVariable(NAME("price_cached_input"),
								 psprintf("Price of %s input tokens read from its prompt cache, USD per million.", ops->name),
								 NULL, &s->price_cached_input, ops->default_price_cached_input, 0, 1e6,
								 PGC_USERSET, 0, NULL, NULL, NULL);
		DefineCustomRealVariable(NAME("price_output"),
								 psprintf("Price of %s output tokens, reasoning included, USD per million.", ops->name),
								 NULL, &s->price_output, ops->default_price_output, 0, 1e6,
								 PGC_USERSET, 0, NULL, NULL, NULL);
#undef NAME
	}
	define_reasoning_settings();
}

/* The effective configuration of one provider, key included (keys.c; may ereport) */
void
provider_fill_config(ProviderId id, ProviderConfig *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
	if (id == PROVIDER_MOCK)
	{
		strlcpy(cfg->model, MOCK_MODEL, sizeof(cfg->model));
		cfg->max_concurrency = 1;
		return;
	}
	else
	{
		const ProviderSettings *s = &settings[id];

		keys_get(id, cfg->api_key);
		strlcpy(cfg->base_url, s->base_url, sizeof(cfg->base_url));
		strlcpy(cfg->model, s->model, sizeof(cfg->model));
		cfg->max_concurrency = s->max_concurrency;
		cfg->rpm = s->rpm;
		cfg->tpm = s->tpm;
		cfg->price_input = s->price_input;
		cfg->price_cached_input = s->price_cached_input;
		cfg->price_output = s->price_output;
		cfg->peak_factor = 1.0;
		cfg->reasoning_room = max_reasoning_tokens;
		switch (id)
		{
			case PROVIDER_OPENAI:
				cfg->effort = openai_effort;
				cfg->service_tier = openai_service_tier;
				cfg->price_cache_write = openai_price_cache_write;
				break;
			case PROVIDER_GEMINI:
				cfg->effort = gemini_thinking_level;
				cfg->thinking_budget = gemini_thinking_budget;
				break;
			case PROVIDER_DEEPSEEK:
				cfg->thinking = deepseek_thinking;
				cfg->peak_factor = deepseek_peak_factor;
				break;
			case PROVIDER_MOCK:
			case NUM_PROVIDERS:
				break;
		}
	}
}

int
provider_weight(ProviderId id)
{
	return id == PROVIDER_MOCK ? 1 : settings[id].weight;
}
