/*-------------------------------------------------------------------------
 *
 * provider_deepseek.c
 *	  DeepSeek: OpenAI-shaped, with json_object output and thinking off.
 *
 * DeepSeek has no json_schema; json_object needs the word "json" in the
 * prompt (the system instruction says "JSON" and shows the shape).  Under
 * load it sends blank lines before the body, which the shared parser
 * skips; a body of only whitespace is a failed attempt.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <cjson/cJSON.h>

#include "prompt.h"
#include "provider.h"
#include "provider_json.h"

static void
deepseek_build(const ProviderConfig *cfg, const BuildSpec *spec, ProviderRequest *req)
{
	const char *user_text = spec->user_text;
	int			n = spec->n;
	AnswerKind	kind = spec->kind;
	cJSON	   *root = cJSON_CreateObject();

	json_add_chat_messages(root, cfg->model, prompt_system(true, kind), user_text);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "thinking"), "type", "disabled");
	cJSON_AddNumberToObject(root, "max_tokens", batch_tokens_out(n, kind));
	cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "response_format"), "type", "json_object");
	cJSON_AddBoolToObject(root, "stream", false);

	json_finish_request(root, req);
	req->url = psprintf("%s/chat/completions", cfg->base_url);
	req->headers[req->nheaders++] = psprintf("Authorization: Bearer %s", cfg->api_key);
	req->headers[req->nheaders++] = pstrdup("Content-Type: application/json");
}

static void
deepseek_parse(int status, const char *body, size_t len,
			   const HttpHints *hints, Outcome *out)
{
	openai_compat_parse(status, body, len, hints, true, out);
}

const ProviderOps deepseek_ops = {
	.name = "deepseek",
	.key_env = "DEEPSEEK_API_KEY",
	.default_url = "https://api.deepseek.com",
	.default_model = "deepseek-v4-flash",
	.default_price_input = 0.14,
	.default_price_output = 0.28,
	.build = deepseek_build,
	.parse = deepseek_parse,
};
