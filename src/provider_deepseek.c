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
 * V4 models think unless told not to: thinking is off unless
 * ctr_dist.deepseek_thinking is on (then the output limit has room for
 * it).  Prices double in DeepSeek's peak hours (01:00-04:00 and
 * 06:00-10:00 UTC on weekdays; ctr_dist.deepseek_peak_factor).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>
#include <cjson/cJSON.h>

#include "keys.h"
#include "prompt.h"
#include "provider.h"
#include "provider_json.h"
#include "request_json.h"

/* DeepSeek's peak hours: 01:00-04:00 and 06:00-10:00 UTC, Monday to Friday */
static bool
deepseek_peak(double now_epoch)
{
	time_t		t = (time_t) now_epoch;
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_wday == 0 || tm.tm_wday == 6)
		return false;
	return (tm.tm_hour >= 1 && tm.tm_hour < 4) || (tm.tm_hour >= 6 && tm.tm_hour < 10);
}

static void
deepseek_plan(const ProviderConfig *cfg, const ModelQuirks *quirks, int n, AnswerKind kind,
			  double now_epoch, RequestPlan *plan)
{
	memset(plan, 0, sizeof(*plan));
	plan->price_factor = deepseek_peak(now_epoch) ? cfg->peak_factor : 1.0;
	if (!(quirks->dropped & PARAM_BIT(PARAM_TEMPERATURE)))
		plan->sent |= PARAM_BIT(PARAM_TEMPERATURE);
	if (!(quirks->dropped & PARAM_BIT(PARAM_REASONING)))
	{
		plan->sent |= PARAM_BIT(PARAM_REASONING);
		plan->reasoning = cfg->thinking;
	}
	else
		plan->reasoning = true; /* V4 thinks by default */
	plan->max_tokens_out = batch_tokens_out(n, kind) + (plan->reasoning ? cfg->reasoning_room : 0);
}

static void
deepseek_build(const ProviderConfig *cfg, const BuildSpec *spec, ProviderRequest *req)
{
	const RequestPlan *plan = spec->plan;
	StringInfoData out;

	json_body_begin(&out, req, spec->user_len);
	appendStringInfoChar(&out, '{');
	json_put_chat_messages(&out, cfg->model, prompt_system(true, spec->kind),
						   spec->user_text, spec->user_len,
						   (plan->sent & PARAM_BIT(PARAM_TEMPERATURE)) != 0);
	if (plan->sent & PARAM_BIT(PARAM_REASONING))
		appendStringInfoString(&out, cfg->thinking ? ",\"thinking\":{\"type\":\"enabled\"}"
							   : ",\"thinking\":{\"type\":\"disabled\"}");
	appendStringInfoString(&out, ",\"max_tokens\":");
	json_put_int(&out, plan->max_tokens_out);
	appendStringInfoString(&out, ",\"response_format\":{\"type\":\"json_object\"},\"stream\":false}");
	json_body_end(&out, req);
	req->url = psprintf("%s/chat/completions", cfg->base_url);
	req->headers[req->nheaders++] = keys_header("Authorization: Bearer ", cfg->api_key);
	req->headers[req->nheaders++] = pstrdup("Content-Type: application/json");
}

static void
deepseek_parse(int status, const char *body, size_t len,
			   const HttpHints *hints, Outcome *out)
{
	openai_compat_parse(status, body, len, hints, true, out);
}

static void
deepseek_build_models(const ProviderConfig *cfg, const char *page, ProviderRequest *req)
{
	openai_compat_build_models(cfg, req);
}

static void
deepseek_parse_models(int status, const char *body, size_t len, const HttpHints *hints,
					  ModelList *list, Outcome *out)
{
	openai_compat_parse_models(status, body, len, hints, true, list, out);
}

const ProviderOps deepseek_ops = {
	.name = "deepseek",
	.key_env = "DEEPSEEK_API_KEY",
	.default_url = "https://api.deepseek.com",
	.default_model = "deepseek-flash",
	.default_price_input = 0.15,
	.default_price_cached_input = 0.003,
	.default_price_output = 0.60,
	.plan = deepseek_plan,
	.build = deepseek_build,
	.parse = deepseek_parse,
	.build_models = deepseek_build_models,
	.parse_models = deepseek_parse_models,
};
