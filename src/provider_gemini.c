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

static void
gemini_build(const ProviderConfig *cfg, const BuildSpec *spec, ProviderRequest *req)
{
	const char *user_text = spec->user_text;
	int			n = spec->n;
	AnswerKind	kind = spec->kind;
	cJSON	   *root = cJSON_CreateObject();
	cJSON	   *part;
	cJSON	   *content;
	cJSON	   *config;
	cJSON	   *schema;
	cJSON	   *items;

	part = cJSON_CreateObject();
	cJSON_AddStringToObject(part, "text", prompt_system(false, kind));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(root, "systemInstruction"), "parts"), part);

	content = cJSON_CreateObject();
	cJSON_AddStringToObject(content, "role", "user");
	part = cJSON_CreateObject();
	json_add_text(part, "text", user_text);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(content, "parts"), part);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "contents"), content);

	config = cJSON_AddObjectToObject(root, "generationConfig");
	cJSON_AddNumberToObject(config, "temperature", 0);
	cJSON_AddNumberToObject(config, "maxOutputTokens", batch_tokens_out(n, kind));
	cJSON_AddStringToObject(config, "responseMimeType", "application/json");
	schema = cJSON_AddObjectToObject(config, "responseSchema");
	cJSON_AddStringToObject(schema, "type", "ARRAY");
	cJSON_AddNumberToObject(schema, "minItems", n);
	cJSON_AddNumberToObject(schema, "maxItems", n);
	items = cJSON_AddObjectToObject(schema, "items");
	cJSON_AddStringToObject(items, "type", "INTEGER");
	cJSON_AddNumberToObject(items, "minimum", 0);
	cJSON_AddNumberToObject(items, "maximum", answer_max(kind));

	json_finish_request(root, req);
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
	out->tokens_out = json_int(usage, "candidatesTokenCount") + json_int(usage, "thoughtsTokenCount");
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

const ProviderOps gemini_ops = {
	.name = "gemini",
	.key_env = "GEMINI_API_KEY",
	.default_url = "https://generativelanguage.googleapis.com/v1beta",
	.default_model = "gemini-2.5-flash-lite",
	.default_price_input = 0.10,
	.default_price_output = 0.40,
	.build = gemini_build,
	.parse = gemini_parse,
};
