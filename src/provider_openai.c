/*-------------------------------------------------------------------------
 *
 * provider_openai.c
 *	  OpenAI Chat Completions, and the parser every OpenAI-compatible
 *	  provider shares.
 *
 * Request: system + user messages, max_completion_tokens sized to the
 * batch (and to reasoning), a strict json_schema whose object root holds an
 * integer array of exactly N items, and what the plan says: the reasoning
 * effort (the lowest the model takes, by default), temperature 0 where the
 * model takes one (not with reasoning above none), service_tier.
 *
 * Errors that name a parameter the model refuses become OUTCOME_PARAM, a
 * context or output limit exceeded OUTCOME_TOO_LARGE; both are the
 * engine's to handle (again without it, or in halves), never "a bug".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>
#include <cjson/cJSON.h>

#include "answer.h"
#include "keys.h"
#include "prompt.h"
#include "provider.h"
#include "provider_json.h"
#include "request_json.h"

static const char *const effort_names[] = {
	[EFFORT_NONE] = "none",
	[EFFORT_MINIMAL] = "minimal",
	[EFFORT_LOW] = "low",
	[EFFORT_MEDIUM] = "medium",
	[EFFORT_HIGH] = "high",
	[EFFORT_XHIGH] = "xhigh",
	[EFFORT_MAX] = "max",
};

/*
 * The lowest effort first: gpt-6-luna and later take "none" (and then a
 * temperature); the gpt-5 models start at "minimal".  A model that refuses
 * every one of them, or the parameter, gets none (quirks->dropped).
 */
static void
openai_plan(const ProviderConfig *cfg, const ModelQuirks *quirks, int n, AnswerKind kind,
			double now_epoch, RequestPlan *plan)
{
	static const int ladder[] = {EFFORT_NONE, EFFORT_MINIMAL, EFFORT_LOW};
	bool		effort_sent = false;

	memset(plan, 0, sizeof(*plan));
	plan->price_factor = 1.0;
	if (!(quirks->dropped & PARAM_BIT(PARAM_REASONING)) && cfg->effort != EFFORT_MODEL_DEFAULT)
	{
		if (cfg->effort == EFFORT_LOWEST)
		{
			int			step = quirks->reasoning_step < 2 ? quirks->reasoning_step : 2;

			plan->effort = ladder[step];
			plan->can_step = step < 2;
		}
		else
			plan->effort = cfg->effort;
		plan->sent |= PARAM_BIT(PARAM_REASONING);
		effort_sent = true;
	}
	/* above none it thinks; at the model's default (chosen) too */
	plan->reasoning = effort_sent ? plan->effort != EFFORT_NONE
		: cfg->effort == EFFORT_MODEL_DEFAULT;
	/* reasoning models take a temperature only at effort none */
	if (!(quirks->dropped & PARAM_BIT(PARAM_TEMPERATURE)) &&
		(!effort_sent || plan->effort == EFFORT_NONE))
		plan->sent |= PARAM_BIT(PARAM_TEMPERATURE);
	if (cfg->service_tier != TIER_AUTO && !(quirks->dropped & PARAM_BIT(PARAM_SERVICE_TIER)))
	{
		plan->sent |= PARAM_BIT(PARAM_SERVICE_TIER);
		if (cfg->service_tier == TIER_FLEX)
			plan->price_factor = 0.5;
	}
	if (!(quirks->dropped & PARAM_BIT(PARAM_CACHE_KEY)))
		plan->sent |= PARAM_BIT(PARAM_CACHE_KEY);
	plan->max_tokens_out = batch_tokens_out(n, kind) + (plan->reasoning ? cfg->reasoning_room : 0);
}

static void
openai_build(const ProviderConfig *cfg, const BuildSpec *spec, ProviderRequest *req)
{
	const RequestPlan *plan = spec->plan;
	StringInfoData out;

	json_body_begin(&out, req, spec->user_len);
	appendStringInfoChar(&out, '{');
	json_put_chat_messages(&out, cfg->model, prompt_system(true, spec->kind),
						   spec->user_text, spec->user_len,
						   (plan->sent & PARAM_BIT(PARAM_TEMPERATURE)) != 0);
	appendStringInfoString(&out, ",\"max_completion_tokens\":");
	json_put_int(&out, plan->max_tokens_out);
	if (plan->sent & PARAM_BIT(PARAM_REASONING))
	{
		appendStringInfoString(&out, ",\"reasoning_effort\":");
		json_put_cstring(&out, effort_names[plan->effort]);
	}
	if (plan->sent & PARAM_BIT(PARAM_SERVICE_TIER))
		appendStringInfoString(&out, cfg->service_tier == TIER_FLEX ? ",\"service_tier\":\"flex\""
							   : ",\"service_tier\":\"default\"");

	/* an object root holding exactly n answers */
	appendStringInfoString(&out, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
						   "{\"name\":\"ctr_clicks\",\"strict\":true,\"schema\":"
						   "{\"type\":\"object\",\"properties\":{\"clicks\":"
						   "{\"type\":\"array\",\"minItems\":");
	json_put_int(&out, spec->n);
	appendStringInfoString(&out, ",\"maxItems\":");
	json_put_int(&out, spec->n);
	appendStringInfoString(&out, spec->kind == ANSWER_PROBABILITY
						   ? ",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100}}}"
						   : ",\"items\":{\"type\":\"integer\",\"enum\":[0,1]}}}");
	appendStringInfoString(&out, ",\"required\":[\"clicks\"],\"additionalProperties\":false}}}");

	/* requests that share a prefix (one batch, several ads) share a cache */
	if (spec->cache_key != 0 && (plan->sent & PARAM_BIT(PARAM_CACHE_KEY)))
		appendStringInfo(&out, ",\"prompt_cache_key\":\"ctr-%016llx\"",
						 (unsigned long long) spec->cache_key);
	appendStringInfoChar(&out, '}');
	json_body_end(&out, req);
	req->url = psprintf("%s/chat/completions", cfg->base_url);
	req->headers[req->nheaders++] = keys_header("Authorization: Bearer ", cfg->api_key);
	req->headers[req->nheaders++] = pstrdup("Content-Type: application/json");
}

/*
 * A 400 that says the batch does not fit: the context (OpenAI's
 * context_length_exceeded, DeepSeek's "maximum context length"), or an
 * output limit above the model's ("max_tokens is too large", DeepSeek's
 * "Invalid max_tokens value").  Halves fit where the whole did not.
 */
static bool
too_large_error(const char *code, const char *param, const char *message)
{
	if (code && strcmp(code, "context_length_exceeded") == 0)
		return true;
	if (message && (strstr(message, "maximum context length") ||
					strstr(message, "context length exceeded") ||
					strstr(message, "Invalid max_tokens value") ||
					strstr(message, "max_tokens is too large") ||
					strstr(message, "max_completion_tokens is too large")))
		return true;
	return param && (strcmp(param, "max_tokens") == 0 ||
					 strcmp(param, "max_completion_tokens") == 0) &&
		code && strcmp(code, "invalid_value") == 0;
}

/* The parameter named right after prefix in message, up to one of stop */
static RequestParam
param_after(const char *message, const char *prefix, const char *stop)
{
	const char *p = message ? strstr(message, prefix) : NULL;
	char		name[64];
	size_t		len;

	if (p == NULL)
		return PARAM_NONE;
	p += strlen(prefix);
	len = strcspn(p, stop);
	if (len == 0 || len >= sizeof(name))
		return PARAM_NONE;
	memcpy(name, p, len);
	name[len] = '\0';
	return param_lookup(name);
}

/*
 * A 400 naming a parameter ctr_dist can leave out: error.param with code
 * unsupported_parameter or unsupported_value (OpenAI), else the message:
 * "Unsupported value: 'X' ..." or "Unsupported parameter: 'X' ..." (servers
 * that speak OpenAI's API without its param and code), "Unrecognized
 * request argument supplied: X" (OpenAI for unknown fields).
 */
static RequestParam
refused_param(const char *code, const char *param, const char *message)
{
	RequestParam found;

	if (param && code && (strcmp(code, "unsupported_parameter") == 0 ||
						  strcmp(code, "unsupported_value") == 0 ||
						  strcmp(code, "invalid_value") == 0))
		return param_lookup(param);
	if ((found = param_after(message, "Unsupported value: '", "'")) != PARAM_NONE ||
		(found = param_after(message, "Unsupported parameter: '", "'")) != PARAM_NONE)
		return found;
	return param_after(message, "Unrecognized request argument supplied: ", ", .");
}

/* Flex's "resource unavailable" 429: no capacity at that tier just now */
static bool
capacity_error(const char *code, const char *type, const char *message)
{
	return (code && strstr(code, "unavailable")) || (type && strstr(type, "unavailable")) ||
		(message && (strstr(message, "Resource unavailable") || strstr(message, "resource unavailable")));
}

/*
 * The error envelope {"error":{"message","type","param","code"}} is shared
 * by OpenAI and DeepSeek; only a few values differ.
 */
static void
openai_compat_error(int status, const cJSON *root, bool deepseek, Outcome *out)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
	const char *code = json_string(error, "code");
	const char *type = json_string(error, "type");
	const char *param = json_string(error, "param");
	const char *message = json_string(error, "message");
	OutcomeClass cls = classify_http_status(status);

	if (status == 429 && ((code && strcmp(code, "insufficient_quota") == 0) ||
						  (type && strcmp(type, "insufficient_quota") == 0)))
	{
		outcome_fail(out, OUTCOME_FATAL, "HTTP 429 insufficient_quota: the account has no quota left");
		return;
	}
	if (status == 401 || status == 403)
	{
		/* the message may quote part of the key: report the code only */
		outcome_fail(out, OUTCOME_FATAL, "HTTP %d %s: the API key was rejected",
					 status, code ? code : (type ? type : "authentication error"));
		return;
	}
	if (deepseek && status == 402)
	{
		outcome_fail(out, OUTCOME_FATAL, "HTTP 402: insufficient balance");
		return;
	}
	if (status == 404)
	{
		outcome_fail(out, OUTCOME_FATAL, "HTTP 404 %s: %.160s",
					 code ? code : "not found", message ? message : "model not found");
		return;
	}
	if (status == 400 && too_large_error(code, param, message))
	{
		outcome_fail(out, OUTCOME_TOO_LARGE, "HTTP 400%s%s: %.180s",
					 code ? " " : "", code ? code : "", message ? message : "request too large");
		return;
	}
	if (status == 400 && (out->param = refused_param(code, param, message)) != PARAM_NONE)
	{
		outcome_fail(out, OUTCOME_PARAM, "HTTP 400 %s: %.180s",
					 code ? code : "unsupported parameter", message ? message : param_name(out->param));
		return;
	}

	outcome_fail(out, cls, "HTTP %d%s%s: %.180s", status,
				 code ? " " : "", code ? code : "",
				 message && message[0] ? message : "no error message");
	/* the body's hint; the headers' comes first (outcome_header_hints) */
	if (cls == OUTCOME_THROTTLE || cls == OUTCOME_TRANSIENT)
	{
		out->capacity = status == 429 && capacity_error(code, type, message);
		out->retry_after = parse_try_again_text(message);
	}
}

/*
 * Usage, cached and reasoning tokens included.  DeepSeek says what its cache
 * served as prompt_cache_hit_tokens (also as cached_tokens); OpenAI in
 * prompt_tokens_details, with cache_write_tokens on newer models.
 */
static void
openai_compat_usage(const cJSON *root, Outcome *out)
{
	const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
	const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
	const cJSON *completion = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens_details");
	const char *tier = json_string(root, "service_tier");

	out->tokens_in = json_int(usage, "prompt_tokens");
	out->tokens_out = json_int(usage, "completion_tokens");
	if (cJSON_GetObjectItemCaseSensitive(usage, "prompt_cache_hit_tokens"))
		out->tokens_cached = json_int(usage, "prompt_cache_hit_tokens");
	else
		out->tokens_cached = json_int(prompt, "cached_tokens");
	out->tokens_cache_write = json_int(prompt, "cache_write_tokens");
	out->tokens_reasoning = json_int(completion, "reasoning_tokens");
	outcome_clamp_usage(out);
	/* what it was billed at: flex is half price */
	if (tier)
		out->price_factor = strcmp(tier, "flex") == 0 ? 0.5 : 1.0;
}

static void
openai_compat_classify(int status, const char *body, size_t len,
					   bool deepseek, Outcome *out)
{
	cJSON	   *root;
	const cJSON *choice;
	const cJSON *message;
	const char *finish;
	const char *content;
	char		why[CTR_REASON_MAX];

	out->cls = OUTCOME_OK;
	out->retry_after = -1;
	out->price_factor = -1;
	if (json_body_is_blank(body, len))
	{
		if (status >= 200 && status < 300)
			outcome_fail(out, OUTCOME_SOFT, "empty response body");
		else
			outcome_fail(out, classify_http_status(status), "HTTP %d with an empty body", status);
		return;
	}
	root = cJSON_ParseWithLength(body, len);
	if (root == NULL)
	{
		if (status >= 200 && status < 300)
			outcome_fail(out, OUTCOME_SOFT, "response body is not JSON");
		else
			outcome_fail(out, classify_http_status(status), "HTTP %d with a non-JSON body", status);
		return;
	}
	if (status < 200 || status >= 300)
	{
		openai_compat_error(status, root, deepseek, out);
		cJSON_Delete(root);
		return;
	}

	openai_compat_usage(root, out);
	json_copy_string(root, "model", out->model, sizeof(out->model));

	choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
	message = cJSON_GetObjectItemCaseSensitive(choice, "message");
	finish = json_string(choice, "finish_reason");
	content = json_string(message, "content");

	if (choice == NULL || message == NULL)
		outcome_fail(out, OUTCOME_SOFT, "response has no choices");
	else if (finish && strcmp(finish, "length") == 0)
	{
		outcome_fail(out, OUTCOME_SOFT, "answer truncated (finish_reason length)");
		out->truncated = true;
	}
	else if (finish && strcmp(finish, "content_filter") == 0)
		outcome_fail(out, OUTCOME_SOFT, "answer blocked by the content filter");
	else if (finish && strcmp(finish, "insufficient_system_resource") == 0)
		outcome_fail(out, OUTCOME_TRANSIENT, "provider ran out of capacity (insufficient_system_resource)");
	else if (json_string(message, "refusal") != NULL)
		outcome_fail(out, OUTCOME_SOFT, "model refused to answer");
	else if (content == NULL)
		outcome_fail(out, OUTCOME_SOFT, "answer has no content");
	else if (!answer_extract(content, strlen(content), out->n, out->kind, out->clicks, why, sizeof(why)))
		outcome_fail(out, OUTCOME_SOFT, "%s", why);
	cJSON_Delete(root);
}

void
openai_compat_parse(int status, const char *body, size_t len,
					const HttpHints *hints, bool deepseek, Outcome *out)
{
	openai_compat_classify(status, body, len, deepseek, out);
	outcome_header_hints(out, hints, (double) time(NULL));
}

static void
openai_parse(int status, const char *body, size_t len,
			 const HttpHints *hints, Outcome *out)
{
	openai_compat_parse(status, body, len, hints, false, out);
}

/* ---- the model list: GET {base_url}/models ---- */

void
openai_compat_build_models(const ProviderConfig *cfg, ProviderRequest *req)
{
	req->url = psprintf("%s/models", cfg->base_url);
	req->headers[req->nheaders++] = keys_header("Authorization: Bearer ", cfg->api_key);
	req->body = NULL;
	req->body_len = 0;
}

static void
openai_build_models(const ProviderConfig *cfg, const char *page, ProviderRequest *req)
{
	openai_compat_build_models(cfg, req);
}

/* shutdown_date as a date string, or as a Unix time */
static void
shutdown_date_of(const cJSON *model, char *buf, size_t buflen)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(model, "shutdown_date");

	buf[0] = '\0';
	if (cJSON_IsString(item))
		json_copy_string(model, "shutdown_date", buf, buflen);
	else if (cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble < 253402300800.0)
	{
		time_t		t = (time_t) item->valuedouble;
		struct tm	tm;

		if (gmtime_r(&t, &tm) != NULL)
			strftime(buf, buflen, "%Y-%m-%d", &tm);
	}
}

/* {"object":"list","data":[{"id":...,"shutdown_date":...}, ...]}: one page */
void
openai_compat_parse_models(int status, const char *body, size_t len,
						   const HttpHints *hints, bool deepseek,
						   ModelList *list, Outcome *out)
{
	cJSON	   *root;
	const cJSON *model;

	out->cls = OUTCOME_OK;
	out->retry_after = -1;
	out->price_factor = -1;
	list->next_page[0] = '\0';
	if (status < 200 || status >= 300)
	{
		openai_compat_parse(status, body, len, hints, deepseek, out);
		if (out->cls == OUTCOME_OK)
			outcome_fail(out, classify_http_status(status), "HTTP %d", status);
		return;
	}
	root = cJSON_ParseWithLength(body, len);
	if (root == NULL || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "data")))
	{
		outcome_fail(out, OUTCOME_SOFT, "the model list is not a JSON list");
		cJSON_Delete(root);
		return;
	}
	cJSON_ArrayForEach(model, cJSON_GetObjectItemCaseSensitive(root, "data"))
	{
		char		shutdown[32];

		shutdown_date_of(model, shutdown, sizeof(shutdown));
		if (!model_info_add(list, json_string(model, "id"), json_string(model, "display_name"),
							json_int(model, "context_window"), json_int(model, "max_output_tokens"),
							shutdown) && list->n >= list->max)
			break;
	}
	cJSON_Delete(root);
}

static void
openai_parse_models(int status, const char *body, size_t len, const HttpHints *hints,
					ModelList *list, Outcome *out)
{
	openai_compat_parse_models(status, body, len, hints, false, list, out);
}

const ProviderOps openai_ops = {
	.name = "openai",
	.key_env = "OPENAI_API_KEY",
	.default_url = "https://api.openai.com/v1",
	.default_model = "gpt-6-luna",
	.default_price_input = 0.10,
	.default_price_cached_input = 0.01,
	.default_price_output = 0.50,
	.plan = openai_plan,
	.build = openai_build,
	.parse = openai_parse,
	.build_models = openai_build_models,
	.parse_models = openai_parse_models,
};
