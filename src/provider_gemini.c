/*-------------------------------------------------------------------------
 *
 * provider_gemini.c
 *	  Google Gemini generateContent (v1beta).
 *
 * The key travels in the x-goog-api-key header, never in the URL.  The
 * answer schema is an ARRAY of INTEGER 0..1 with minItems = maxItems = N.
 * The answer text is every non-thought part, concatenated.  Gemini says
 * 400 API_KEY_INVALID (not 401) for a bad key, puts its retry hint in the
 * body (RetryInfo.retryDelay; retry headers, when a response has them, come
 * first), and tells a per-day quota from a per-minute one only by the
 * quotaId.
 *
 * Thinking: Gemini 2.x models take generationConfig.thinkingConfig.
 * thinkingBudget (0, the default here, turns it off where the model
 * allows), Gemini 3 and later thinkingLevel (the lowest the model takes,
 * by default); thought tokens count as output.  Implicit caching reports
 * cachedContentTokenCount, part of promptTokenCount.  Google's Flex tier is
 * not asked for: its documentation shows it on the Interactions API, not
 * on generateContent (see the README).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "lib/stringinfo.h"

#include "answer.h"
#include "keys.h"
#include "prompt.h"
#include "provider.h"
#include "provider_json.h"
#include "request_json.h"

static const char *const level_names[] = {
	[EFFORT_MINIMAL] = "minimal",
	[EFFORT_LOW] = "low",
	[EFFORT_MEDIUM] = "medium",
	[EFFORT_HIGH] = "high",
};

/* Gemini 1.x and 2.x take a thinking budget; 3 and later a thinking level */
static bool
gemini_budget_family(const char *model)
{
	return strncmp(model, "gemini-1", 8) == 0 || strncmp(model, "gemini-2", 8) == 0;
}

/*
 * plan->effort is the thinkingLevel sent, or EFFORT_NONE for a budget (the
 * setting's own value).  A budget above 0 is the room reasoning gets; a
 * dynamic one (-1), a level or the model's default get the setting's.
 */
static void
gemini_plan(const ProviderConfig *cfg, const ModelQuirks *quirks, int n, AnswerKind kind,
			double now_epoch, RequestPlan *plan)
{
	int64_t		room = cfg->reasoning_room;

	memset(plan, 0, sizeof(*plan));
	plan->price_factor = 1.0;
	if (!(quirks->dropped & PARAM_BIT(PARAM_TEMPERATURE)))
		plan->sent |= PARAM_BIT(PARAM_TEMPERATURE);
	plan->reasoning = true;		/* unless said otherwise below */
	if (quirks->dropped & PARAM_BIT(PARAM_REASONING))
		;						/* the model's default */
	else if (gemini_budget_family(cfg->model))
	{
		plan->sent |= PARAM_BIT(PARAM_REASONING);
		plan->effort = EFFORT_NONE;
		plan->reasoning = cfg->thinking_budget != 0;
		if (cfg->thinking_budget > 0)
			room = cfg->thinking_budget;
	}
	else if (cfg->effort != EFFORT_MODEL_DEFAULT)
	{
		plan->sent |= PARAM_BIT(PARAM_REASONING);
		if (cfg->effort == EFFORT_LOWEST)
		{
			plan->effort = quirks->reasoning_step == 0 ? EFFORT_MINIMAL : EFFORT_LOW;
			plan->can_step = quirks->reasoning_step == 0;
		}
		else
			plan->effort = cfg->effort;
	}
	plan->max_tokens_out = batch_tokens_out(n, kind) + (plan->reasoning ? room : 0);
}

static void
gemini_build(const ProviderConfig *cfg, const BuildSpec *spec, ProviderRequest *req)
{
	const RequestPlan *plan = spec->plan;
	StringInfoData out;

	json_body_begin(&out, req, spec->user_len);
	appendStringInfoString(&out, "{\"systemInstruction\":{\"parts\":[{\"text\":");
	json_put_cstring(&out, prompt_system(false, spec->kind));
	appendStringInfoString(&out, "}]},\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":");
	json_put_string(&out, spec->user_text, spec->user_len);
	appendStringInfoString(&out, "}]}],\"generationConfig\":{");
	if (plan->sent & PARAM_BIT(PARAM_TEMPERATURE))
		appendStringInfoString(&out, "\"temperature\":0,");
	appendStringInfoString(&out, "\"maxOutputTokens\":");
	json_put_int(&out, plan->max_tokens_out);
	if (plan->sent & PARAM_BIT(PARAM_REASONING))
	{
		if (plan->effort == EFFORT_NONE)
		{
			appendStringInfoString(&out, ",\"thinkingConfig\":{\"thinkingBudget\":");
			json_put_int(&out, cfg->thinking_budget);
		}
		else
		{
			appendStringInfoString(&out, ",\"thinkingConfig\":{\"thinkingLevel\":");
			json_put_cstring(&out, level_names[plan->effort]);
		}
		appendStringInfoChar(&out, '}');
	}
	/* a bare array of exactly n answers */
	appendStringInfoString(&out, ",\"responseMimeType\":\"application/json\",\"responseSchema\":"
						   "{\"type\":\"ARRAY\",\"minItems\":");
	json_put_int(&out, spec->n);
	appendStringInfoString(&out, ",\"maxItems\":");
	json_put_int(&out, spec->n);
	appendStringInfoString(&out, ",\"items\":{\"type\":\"INTEGER\",\"minimum\":0,\"maximum\":");
	json_put_int(&out, answer_max(spec->kind));
	appendStringInfoString(&out, "}}}}");
	json_body_end(&out, req);
	req->url = psprintf("%s/models/%s:generateContent", cfg->base_url, cfg->model);
	req->headers[req->nheaders++] = keys_header("x-goog-api-key: ", cfg->api_key);
	req->headers[req->nheaders++] = pstrdup("Content-Type: application/json");
}

/* The first detail of the given google.rpc type, or NULL */
static const cJSON *
gemini_detail(const cJSON *error, const char *type)
{
	const cJSON *detail;

	cJSON_ArrayForEach(detail, cJSON_GetObjectItemCaseSensitive(error, "details"))
	{
		const char *t = json_string(detail, "@type");

		if (t && strstr(t, type))
			return detail;
	}
	return NULL;
}

static void
gemini_error(int status, const cJSON *root, Outcome *out)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
	const char *message;
	const char *rpc_status;
	const char *reason;

	if (error == NULL)
		error = root;			/* some proxies put the status at the top */
	message = json_string(error, "message");
	rpc_status = json_string(error, "status");
	reason = json_string(gemini_detail(error, "google.rpc.ErrorInfo"), "reason");

	if (status == 400 && reason && strcmp(reason, "API_KEY_INVALID") == 0)
	{
		outcome_fail(out, OUTCOME_FATAL, "HTTP 400 API_KEY_INVALID: the API key was rejected");
		return;
	}
	if (status == 401 || status == 403)
	{
		outcome_fail(out, OUTCOME_FATAL, "HTTP %d %s: the API key was rejected",
					 status, rpc_status ? rpc_status : "PERMISSION_DENIED");
		return;
	}
	if (status == 429)
	{
		const cJSON *quota = gemini_detail(error, "google.rpc.QuotaFailure");
		const cJSON *violation;

		cJSON_ArrayForEach(violation, cJSON_GetObjectItemCaseSensitive(quota, "violations"))
		{
			const char *quota_id = json_string(violation, "quotaId");

			if (quota_id && strstr(quota_id, "PerDay"))
			{
				outcome_fail(out, OUTCOME_FATAL, "HTTP 429 RESOURCE_EXHAUSTED: daily quota %.120s used up",
							 quota_id);
				return;
			}
		}
		outcome_fail(out, OUTCOME_THROTTLE, "HTTP 429 RESOURCE_EXHAUSTED: %.160s",
					 message ? message : "rate limited");
		out->retry_after = parse_duration_text(json_string(gemini_detail(error, "google.rpc.RetryInfo"),
														   "retryDelay"));
		return;
	}
	/* "The input token count (N) exceeds the maximum number of tokens allowed (M)." */
	if (status == 400 && message && strstr(message, "exceeds the maximum number of tokens"))
	{
		outcome_fail(out, OUTCOME_TOO_LARGE, "HTTP 400 INVALID_ARGUMENT: %.180s", message);
		return;
	}
	/* a thinking setting the model does not take (budget 0 on a Pro model, a level on 2.x) */
	if (status == 400 && message && (strstr(message, "thinking") || strstr(message, "Thinking") ||
									 strstr(message, "Budget 0 is invalid")))
	{
		out->param = PARAM_REASONING;
		outcome_fail(out, OUTCOME_PARAM, "HTTP 400 INVALID_ARGUMENT: %.180s", message);
		return;
	}
	outcome_fail(out, classify_http_status(status), "HTTP %d%s%s: %.180s", status,
				 rpc_status && rpc_status[0] ? " " : "", rpc_status ? rpc_status : "",
				 message && message[0] ? message : "no error message");
}

static void
gemini_classify(int status, const char *body, size_t len, Outcome *out)
{
	cJSON	   *root;
	const cJSON *candidate;
	const cJSON *usage;
	const cJSON *part;
	const char *finish;
	const char *block;
	char		text[CTR_MAX_BATCH * 8 + 1024];
	size_t		tlen = 0;
	bool		too_long = false;
	char		why[CTR_REASON_MAX];

	out->cls = OUTCOME_OK;
	out->retry_after = -1;
	out->price_factor = -1;
	if (json_body_is_blank(body, len))
	{
		outcome_fail(out, status >= 200 && status < 300 ? OUTCOME_SOFT : classify_http_status(status),
					 "HTTP %d with an empty body", status);
		return;
	}
	root = cJSON_ParseWithLength(body, len);
	if (root == NULL)
	{
		outcome_fail(out, status >= 200 && status < 300 ? OUTCOME_SOFT : classify_http_status(status),
					 "HTTP %d with a non-JSON body", status);
		return;
	}
	if (status < 200 || status >= 300)
	{
		gemini_error(status, root, out);
		cJSON_Delete(root);
		return;
	}

	usage = cJSON_GetObjectItemCaseSensitive(root, "usageMetadata");
	out->tokens_in = json_int(usage, "promptTokenCount");
	out->tokens_cached = json_int(usage, "cachedContentTokenCount");
	out->tokens_reasoning = json_int(usage, "thoughtsTokenCount");
	out->tokens_out = json_int(usage, "candidatesTokenCount") + out->tokens_reasoning;
	outcome_clamp_usage(out);
	json_copy_string(root, "modelVersion", out->model, sizeof(out->model));

	candidate = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "candidates"), 0);
	block = json_string(cJSON_GetObjectItemCaseSensitive(root, "promptFeedback"), "blockReason");
	finish = json_string(candidate, "finishReason");

	if (candidate == NULL)
	{
		outcome_fail(out, OUTCOME_SOFT, "prompt blocked (%.64s)", block ? block : "no candidates");
		cJSON_Delete(root);
		return;
	}
	if (finish && strcmp(finish, "MAX_TOKENS") == 0)
	{
		outcome_fail(out, OUTCOME_SOFT, "answer truncated (MAX_TOKENS)");
		out->truncated = true;
		cJSON_Delete(root);
		return;
	}
	if (finish && strcmp(finish, "STOP") != 0)
	{
		outcome_fail(out, OUTCOME_SOFT, "answer stopped by %.64s", finish);
		cJSON_Delete(root);
		return;
	}

	cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(candidate, "content"), "parts"))
	{
		const cJSON *thought = cJSON_GetObjectItemCaseSensitive(part, "thought");
		const char *t = json_string(part, "text");
		size_t		l;

		if (t == NULL || cJSON_IsTrue(thought))
			continue;
		l = strlen(t);
		if (tlen + l >= sizeof(text))
		{
			too_long = true;
			break;
		}
		memcpy(text + tlen, t, l);
		tlen += l;
	}
	text[tlen] = '\0';

	if (too_long)
		outcome_fail(out, OUTCOME_SOFT, "answer is too long");
	else if (!answer_extract(text, tlen, out->n, out->kind, out->clicks, why, sizeof(why)))
		outcome_fail(out, OUTCOME_SOFT, "%s", why);
	cJSON_Delete(root);
}

static void
gemini_parse(int status, const char *body, size_t len,
			 const HttpHints *hints, Outcome *out)
{
	gemini_classify(status, body, len, out);
	outcome_header_hints(out, hints, (double) time(NULL));
}

/* ---- the model list: GET {base_url}/models, in pages ---- */

static void
gemini_build_models(const ProviderConfig *cfg, const char *page, ProviderRequest *req)
{
	StringInfoData url;

	initStringInfo(&url);
	appendStringInfo(&url, "%s/models?pageSize=1000", cfg->base_url);
	if (page && *page)
	{
		appendStringInfoString(&url, "&pageToken=");
		for (const unsigned char *p = (const unsigned char *) page; *p; p++)
		{
			if (isalnum(*p) || strchr("-._~", *p))
				appendStringInfoChar(&url, (char) *p);
			else
				appendStringInfo(&url, "%%%02X", *p);
		}
	}
	req->url = url.data;
	req->headers[req->nheaders++] = keys_header("x-goog-api-key: ", cfg->api_key);
	req->body = NULL;
	req->body_len = 0;
}

/* supportedGenerationMethods holds generateContent */
static bool
gemini_generates(const cJSON *model)
{
	const cJSON *method;

	cJSON_ArrayForEach(method, cJSON_GetObjectItemCaseSensitive(model, "supportedGenerationMethods"))
		if (cJSON_IsString(method) && strcmp(method->valuestring, "generateContent") == 0)
			return true;
	return false;
}

/* {"models":[{"name":"models/...","displayName",...}],"nextPageToken":...} */
static void
gemini_parse_models(int status, const char *body, size_t len, const HttpHints *hints,
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
		gemini_parse(status, body, len, hints, out);
		if (out->cls == OUTCOME_OK)
			outcome_fail(out, classify_http_status(status), "HTTP %d", status);
		return;
	}
	root = cJSON_ParseWithLength(body, len);
	if (root == NULL || !cJSON_IsObject(root))
	{
		outcome_fail(out, OUTCOME_SOFT, "the model list is not a JSON object");
		cJSON_Delete(root);
		return;
	}
	cJSON_ArrayForEach(model, cJSON_GetObjectItemCaseSensitive(root, "models"))
	{
		const char *name = json_string(model, "name");

		if (name == NULL || !gemini_generates(model))
			continue;
		if (strncmp(name, "models/", 7) == 0)
			name += 7;
		if (!model_info_add(list, name, json_string(model, "displayName"),
							json_int(model, "inputTokenLimit"), json_int(model, "outputTokenLimit"),
							NULL) && list->n >= list->max)
			break;
	}
	json_copy_string(root, "nextPageToken", list->next_page, sizeof(list->next_page));
	cJSON_Delete(root);
}

const ProviderOps gemini_ops = {
	.name = "gemini",
	.key_env = "GEMINI_API_KEY",
	.default_url = "https://generativelanguage.googleapis.com/v1beta",
	.default_model = "gemini-2.5-flash-lite",
	.default_price_input = 0.10,
	.default_price_cached_input = 0.01,
	.default_price_output = 0.40,
	.plan = gemini_plan,
	.build = gemini_build,
	.parse = gemini_parse,
	.build_models = gemini_build_models,
	.parse_models = gemini_parse_models,
};
