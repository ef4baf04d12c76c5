/*-------------------------------------------------------------------------
 *
 * provider_openai.c
 *	  OpenAI Chat Completions, and the parser every OpenAI-compatible
 *	  provider shares.
 *
 * Request: system + user messages, temperature 0, max_completion_tokens
 * sized to the batch, and a strict json_schema whose object root holds an
 * integer array of exactly N items.
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
openai_build(const ProviderConfig *cfg, const BuildSpec *spec, ProviderRequest *req)
{
	const char *user_text = spec->user_text;
	int			n = spec->n;
	AnswerKind	kind = spec->kind;
	cJSON	   *root = cJSON_CreateObject();
	cJSON	   *format;
	cJSON	   *schema;
	cJSON	   *clicks;
	cJSON	   *items;

	json_add_chat_messages(root, cfg->model, prompt_system(true, kind), user_text);
	cJSON_AddNumberToObject(root, "max_completion_tokens", batch_tokens_out(n, kind));

	format = cJSON_AddObjectToObject(root, "response_format");
	cJSON_AddStringToObject(format, "type", "json_schema");
	format = cJSON_AddObjectToObject(format, "json_schema");
	cJSON_AddStringToObject(format, "name", "ctr_clicks");
	cJSON_AddBoolToObject(format, "strict", true);
	schema = cJSON_AddObjectToObject(format, "schema");
	cJSON_AddStringToObject(schema, "type", "object");
	clicks = cJSON_AddObjectToObject(cJSON_AddObjectToObject(schema, "properties"), "clicks");
	cJSON_AddStringToObject(clicks, "type", "array");
	cJSON_AddNumberToObject(clicks, "minItems", n);
	cJSON_AddNumberToObject(clicks, "maxItems", n);
	items = cJSON_AddObjectToObject(clicks, "items");
	cJSON_AddStringToObject(items, "type", "integer");
	if (kind == ANSWER_PROBABILITY)
	{
		cJSON_AddNumberToObject(items, "minimum", 0);
		cJSON_AddNumberToObject(items, "maximum", 100);
	}
	else
		cJSON_AddItemToObject(items, "enum", cJSON_CreateIntArray((const int[]) {0, 1}, 2));
	cJSON_AddItemToObject(schema, "required", cJSON_CreateStringArray((const char *[]) {"clicks"}, 1));
	cJSON_AddBoolToObject(schema, "additionalProperties", false);

	/* requests that share a prefix (one batch, several ads) share a cache */
	if (spec->cache_key != 0)
		cJSON_AddStringToObject(root, "prompt_cache_key",
								psprintf("ctr-%016" INT64_MODIFIER "x", spec->cache_key));

	json_finish_request(root, req);
	req->url = psprintf("%s/chat/completions", cfg->base_url);
	req->headers[req->nheaders++] = keys_header("Authorization: Bearer ", cfg->api_key);
	req->headers[req->nheaders++] = pstrdup("Content-Type: application/json");
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

	outcome_fail(out, cls, "HTTP %d%s%s: %.180s", status,
				 code ? " " : "", code ? code : "",
				 message && message[0] ? message : "no error message");
	/* the body's hint; the headers' comes first (outcome_header_hints) */
	if (cls == OUTCOME_THROTTLE || cls == OUTCOME_TRANSIENT)
		out->retry_after = parse_try_again_text(message);
}

static void
openai_compat_classify(int status, const char *body, size_t len,
					   bool deepseek, Outcome *out)
{
	cJSON	   *root;
	const cJSON *choice;
	const cJSON *message;
	const cJSON *usage;
	const char *finish;
	const char *content;
	char		why[CTR_REASON_MAX];

	out->cls = OUTCOME_OK;
	out->retry_after = -1;
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

	usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
	out->tokens_in = json_int(usage, "prompt_tokens");
	out->tokens_out = json_int(usage, "completion_tokens");
	json_copy_string(root, "model", out->model, sizeof(out->model));

	choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
	message = cJSON_GetObjectItemCaseSensitive(choice, "message");
	finish = json_string(choice, "finish_reason");
	content = json_string(message, "content");

	if (choice == NULL || message == NULL)
		outcome_fail(out, OUTCOME_SOFT, "response has no choices");
	else if (finish && strcmp(finish, "length") == 0)
		outcome_fail(out, OUTCOME_SOFT, "answer truncated (finish_reason length)");
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

const ProviderOps openai_ops = {
	.name = "openai",
	.key_env = "OPENAI_API_KEY",
	.default_url = "https://api.openai.com/v1",
	.default_model = "gpt-4o-mini",
	.default_price_input = 0.15,
	.default_price_output = 0.60,
	.build = openai_build,
	.parse = openai_parse,
};
