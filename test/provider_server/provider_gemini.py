"""
Gemini generateContent: the proto field tables that reject unknown fields like
the real API (v1beta and v1), the camelCase/snake_case field lookups, and
GeminiAdapter (key in header or URL, google.rpc error details, usageMetadata,
thinking budgets and levels, model list pages).
"""

import json
import time

from .answers import (Req, analyze_personas, limit_answer, no_schema_shape, pick_property,
                      read_array_schema)
from .reply import Reply, google_html_error, rate_signal_headers
from .wire import proto_duration, random_id, to_int

ANY = "any"          # google.protobuf.Value / Struct or a message we do not check
SCALAR = None

GEMINI_MESSAGES = {
    "GenerateContentRequest": {
        "model": SCALAR, "contents": ("Content", "list"),
        "system_instruction": ("Content", "one"), "tools": ANY, "tool_config": ANY,
        "safety_settings": ("SafetySetting", "list"),
        "generation_config": ("GenerationConfig", "one"), "cached_content": SCALAR,
    },
    "Content": {"role": SCALAR, "parts": ("Part", "list")},
    "Part": {
        "text": SCALAR, "inline_data": ANY, "function_call": ANY, "function_response": ANY,
        "file_data": ANY, "executable_code": ANY, "code_execution_result": ANY,
        "video_metadata": ANY, "thought": SCALAR, "thought_signature": SCALAR,
        "part_metadata": ANY, "media_resolution": ANY,
    },
    "SafetySetting": {"category": SCALAR, "threshold": SCALAR},
    "GenerationConfig": {
        "candidate_count": SCALAR, "stop_sequences": SCALAR, "max_output_tokens": SCALAR,
        "temperature": SCALAR, "top_p": SCALAR, "top_k": SCALAR, "seed": SCALAR,
        "response_mime_type": SCALAR, "response_schema": ("Schema", "one"),
        "response_json_schema": ANY, "response_json_schema_ordered": ANY,
        "presence_penalty": SCALAR, "frequency_penalty": SCALAR,
        "response_logprobs": SCALAR, "logprobs": SCALAR,
        "enable_enhanced_civic_answers": SCALAR, "response_modalities": SCALAR,
        "speech_config": ANY, "thinking_config": ("ThinkingConfig", "one"),
        "image_config": ANY, "media_resolution": SCALAR,
    },
    "ThinkingConfig": {"include_thoughts": SCALAR, "thinking_budget": SCALAR,
                       "thinking_level": SCALAR},
    "Schema": {
        "type": SCALAR, "format": SCALAR, "title": SCALAR, "description": SCALAR,
        "nullable": SCALAR, "enum": SCALAR, "max_items": SCALAR, "min_items": SCALAR,
        "items": ("Schema", "one"), "properties": ("Schema", "map"), "required": SCALAR,
        "min_properties": SCALAR, "max_properties": SCALAR, "min_length": SCALAR,
        "max_length": SCALAR, "pattern": SCALAR, "example": ANY, "any_of": ("Schema", "list"),
        "property_ordering": SCALAR, "default": ANY, "minimum": SCALAR, "maximum": SCALAR,
    },
}
# Fields whose proto json_name is not the plain lowerCamel form (generative_service.proto).
GEMINI_JSON_NAMES = {"response_json_schema": "_responseJsonSchema",
                     "response_json_schema_ordered": "responseJsonSchema"}
# The v1 API lacks these (spec §4.1): a v1 request using them gets "Unknown name".
GEMINI_V1_MISSING = {"GenerateContentRequest": {"system_instruction"},
                     "GenerationConfig": {"response_mime_type", "response_schema",
                                          "response_json_schema",
                                          "response_json_schema_ordered", "thinking_config"}}


def lower_camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(w.capitalize() for w in rest)


def build_gemini_lookup(version):
    """message -> {accepted JSON name: (proto name, spec)}; proto3 JSON accepts both forms."""
    lookup = {}
    for msg, fields in GEMINI_MESSAGES.items():
        names = {}
        for snake, spec in fields.items():
            if snake in GEMINI_V1_MISSING.get(msg, ()) and version == "v1":
                continue
            names[snake] = (snake, spec)
            names[GEMINI_JSON_NAMES.get(snake, lower_camel(snake))] = (snake, spec)
        lookup[msg] = names
    return lookup


GEMINI_LOOKUP = {v: build_gemini_lookup(v) for v in ("v1beta", "v1")}


def gemini_unknown_fields(lookup, msg, obj, path, out):
    """Collect (path, name) for every field the proto does not have, like Google's JSON parser."""
    if not isinstance(obj, dict):
        out.append((path, None, obj, msg))
        return
    fields = lookup[msg]
    for name, value in obj.items():
        hit = fields.get(name)
        if hit is None:
            out.append((path, name, None, msg))
            continue
        proto, spec = hit
        if not isinstance(spec, tuple) or value is None:
            continue                # scalars, opaque values and null (= unset) pass
        sub = f"{path}.{proto}" if path else proto
        target, mode = spec
        if mode == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                gemini_unknown_fields(lookup, target, item, f"{sub}[{i}]", out)
        elif mode == "map" and isinstance(value, dict):
            for i, item in enumerate(value.values()):
                gemini_unknown_fields(lookup, target, item, f"{sub}[{i}].value", out)
        elif mode == "one":
            gemini_unknown_fields(lookup, target, value, sub, out)
        else:
            out.append((sub, None, value, target))


def gemini_field_violation(path, name, value, msg):
    if name is not None:
        where = f" at '{path}'" if path else ""
        return path, f"Invalid JSON payload received. Unknown name \"{name}\"{where}: Cannot find field."
    return path, (f"Invalid value at '{path}' (type.googleapis.com/google.ai.generativelanguage."
                  f"v1beta.{msg}), {json.dumps(value)[:80]}")


def gfirst(d, *names):
    """The first of several spellings (camelCase / snake_case) present in d."""
    if not isinstance(d, dict):
        return None
    for n in names:
        if n in d:
            return d[n]
    return None


def parts_text(content):
    parts = gfirst(content, "parts") or []
    return "".join(p.get("text", "") for p in parts
                   if isinstance(p, dict) and isinstance(p.get("text"), str))


class GeminiAdapter:
    name = "gemini"
    server = "scaffolding on HTTPServer2"
    CT = "application/json; charset=UTF-8"

    def model_list(self, cfg, query, violate):
        """GET /v1beta/models?pageSize=&pageToken=: pages of at most models_page_size
        (and pageSize, up to 1000); the token is the index of the next model."""
        items = []
        for m in cfg.model_list:
            info = cfg.info(m)
            items.append({"name": f"models/{m}", "version": "001",
                          "displayName": info["display_name"] or m,
                          "description": f"{m}, a test model",
                          "inputTokenLimit": info["context"] or 1048576,
                          "outputTokenLimit": info["max_output"] or 65536,
                          "supportedGenerationMethods": ["generateContent", "countTokens",
                                                         "createCachedContent", "batchGenerateContent"],
                          "temperature": 1, "maxTemperature": 2, "topP": 0.95, "topK": 64,
                          "thinking": info["thinking"] is not None})
        items.append({"name": "models/gemini-embedding-001", "version": "001",
                      "displayName": "Gemini Embedding 001", "inputTokenLimit": 2048,
                      "outputTokenLimit": 1, "supportedGenerationMethods": ["embedContent"]})
        size = min(to_int(query.get("pageSize")) or 50, 1000, cfg.models_page_size)
        start = to_int(query.get("pageToken") or "0")
        if start is None or start < 0 or start > len(items):
            violate("bad pageToken")
            return self.error(400, "INVALID_ARGUMENT", "Invalid page token.")
        body = {"models": items[start:start + size]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return self.finish(Reply(200, body, [], self.CT))

    def presented_key(self, headers, query):
        key = headers.get("x-goog-api-key")
        if key:
            return key, False, False
        if query.get("key"):
            return query["key"], True, False
        return None, False, False

    def error(self, code, status, message, details=None, headers=None):
        err = {"code": code, "message": message, "status": status}
        if details:
            err["details"] = details
        return self.finish(Reply(code, {"error": err}, headers, self.CT))

    def finish(self, reply):
        reply.server = self.server
        return reply

    def auth_error(self, key, malformed):
        if key is None:
            return self.error(403, "PERMISSION_DENIED", (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."))
        # A bad key is 400, not 401 (spec §4.4).
        msg = "API key not valid. Please pass a valid API key."
        return self.error(400, "INVALID_ARGUMENT", msg, [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": msg}])

    def bad_request(self, violations):
        """400 INVALID_ARGUMENT with google.rpc.BadRequest, one fieldViolation per problem."""
        fv = []
        for path, desc in violations:
            item = {"field": path, "description": desc} if path else {"description": desc}
            fv.append(item)
        return self.error(400, "INVALID_ARGUMENT", "\n".join(d for _, d in violations),
                          [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": fv}])

    def parse(self, raw, route, cfg, violate):
        version, model = route
        req = Req(self.name)
        req.model = model
        if version == "v1":
            violate("v1 endpoint used (structured output needs v1beta)")
        try:
            body = json.loads(raw)
        except ValueError:
            violate("body is not JSON")
            snippet = raw[:40].decode("utf-8", "replace")
            return None, self.bad_request(
                [("", f"Invalid JSON payload received. Unexpected token.\n{snippet}\n^")])
        found = []
        gemini_unknown_fields(GEMINI_LOOKUP[version], "GenerateContentRequest", body, "", found)
        if found:
            problems = [gemini_field_violation(*f) for f in found]
            for path, desc in problems:
                violate(desc)
            return None, self.bad_request(problems)
        contents = gfirst(body, "contents")
        if not contents:
            violate("contents missing or empty")
            return None, self.error(400, "INVALID_ARGUMENT",
                                    "* GenerateContentRequest.contents: contents is not specified\n")
        gc = gfirst(body, "generationConfig", "generation_config") or {}
        rs = gfirst(gc, "responseSchema", "response_schema")
        rjs = gfirst(gc, "responseJsonSchema", "_responseJsonSchema", "response_json_schema",
                     "response_json_schema_ordered")
        mime = gfirst(gc, "responseMimeType", "response_mime_type")
        if rs is not None and rjs is not None:
            violate("both responseSchema and responseJsonSchema set")
            return None, self.error(400, "INVALID_ARGUMENT",    # [unverified wording]
                                    "* GenerateContentRequest.generation_config.response_schema: "
                                    "response_schema and response_json_schema are mutually "
                                    "exclusive.\n")
        if (rs is not None or rjs is not None) and mime not in ("application/json", "text/x.enum"):
            violate("response schema without responseMimeType application/json")
            return None, self.error(400, "INVALID_ARGUMENT",    # [unverified wording]
                                    "* GenerateContentRequest.generation_config.response_mime_type: "
                                    "response_mime_type must be application/json or text/x.enum "
                                    "when response_schema is set.\n")
        if model not in cfg.models:
            violate(f"unknown model {model}")
            return None, self.model_not_found(model, cfg)
        texts = [parts_text(gfirst(body, "systemInstruction", "system_instruction"))]
        texts += [parts_text(c) for c in contents if isinstance(c, dict)]
        req.prompt = parts_text(contents[-1]) if isinstance(contents[-1], dict) else ""
        req.prompt_bytes = sum(len(t.encode("utf-8")) for t in texts)
        req.cache_text = "\n\x1e".join(texts)
        req.percent = any("in percent" in t for t in texts)
        self.read_schema(req, rs if rs is not None else rjs, cfg)
        req.max_tokens = gfirst(gc, "maxOutputTokens", "max_output_tokens")
        if req.max_tokens is None:
            violate("generationConfig.maxOutputTokens missing")
        if gfirst(gc, "temperature") is not None:
            req.params.append("temperature")
        analyze_personas(req, cfg, violate)
        err = self.check_thinking(req, gfirst(gc, "thinkingConfig", "thinking_config"), cfg, violate)
        if err:
            return None, err
        info = cfg.info(model)
        if info["context"] and req.prompt_tokens > info["context"]:
            violate(f"input of {model} over its limit")
            return None, self.error(400, "INVALID_ARGUMENT", f"The input token count "
                                    f"({req.prompt_tokens}) exceeds the maximum number of tokens "
                                    f"allowed ({info['context']}).")
        # [unverified] a larger maxOutputTokens is capped at the model's limit
        if info["max_output"] and (to_int(req.max_tokens) or 0) > info["max_output"]:
            req.max_tokens = info["max_output"]
        return req, None

    def check_thinking(self, req, tc, cfg, violate):
        """thinkingBudget on 2.x models (0 turns thinking off where the model allows),
        thinkingLevel on 3.x; thought tokens come out of maxOutputTokens.  [unverified
        wording of the refusals]"""
        info = cfg.info(req.model)
        family = info["thinking"]
        budget = gfirst(tc, "thinkingBudget", "thinking_budget")
        level = gfirst(tc, "thinkingLevel", "thinking_level")
        if budget is not None:
            req.params.append(f"thinkingBudget={budget}")
        if level is not None:
            req.params.append(f"thinkingLevel={level}")
        n = len(req.truth)
        if family is None and info["lenient"]:
            return None             # taken and ignored
        if tc is not None and family is None:
            violate(f"thinkingConfig sent to {req.model}")
            return self.error(400, "INVALID_ARGUMENT", "Thinking is not supported for this model.")
        if budget is not None and level is not None:
            violate("both thinkingBudget and thinkingLevel")
            return self.error(400, "INVALID_ARGUMENT",
                              "You can only set either thinking_budget or thinking_level.")
        if level is not None:
            if family != "level" or str(level).lower() not in info["levels"]:
                violate(f"thinkingLevel {level} not taken by {req.model}")
                return self.error(400, "INVALID_ARGUMENT",
                                  f"Thinking level {level} is not supported for this model.")
            req.reasoning = cfg.think_tokens(str(level).lower(), n)
            return None
        if budget is not None:
            if not isinstance(budget, int) or budget < -1 or budget > 32768:
                violate(f"thinkingBudget {budget} invalid")
                return self.error(400, "INVALID_ARGUMENT",
                                  "thinking_budget must be -1 or between 0 and 32768.")
            if budget == 0 and info["min_budget"] > 0:
                violate(f"thinkingBudget 0 on {req.model}")
                return self.error(400, "INVALID_ARGUMENT",
                                  "Budget 0 is invalid. This model only works in thinking mode.")
            dynamic = cfg.think_tokens("dynamic", n)
            req.reasoning = 0 if budget == 0 else dynamic if budget == -1 else min(budget, dynamic)
            return None
        # not told: the model's default
        if family == "budget":
            req.reasoning = cfg.think_tokens("dynamic", n) if info["default"] != 0 else 0
        elif family == "level":
            req.reasoning = cfg.think_tokens(info["default"] or "high", n)
        return None

    def read_schema(self, req, schema, cfg):
        req.key = cfg.json_object_key
        if not isinstance(schema, dict):
            no_schema_shape(req, False)
            return
        t = str(schema.get("type", "")).lower()
        if t == "array":
            req.shape = "array"
            read_array_schema(req, schema)
        elif t == "object":
            key, sub = pick_property(schema.get("properties"))
            if key is not None:
                req.key = key
                read_array_schema(req, sub)
        no_schema_shape(req, True)

    def model_not_found(self, model, cfg):
        return self.error(cfg.unknown_model_status, "NOT_FOUND",
                          f"models/{model} is not found for API version v1beta, or is not "
                          "supported for generateContent. Call ListModels to see the list of "
                          "available models and their supported methods.")

    def headers(self, req, app, cfg):
        ms = int((time.monotonic() - req.t0) * 1000)
        return [("vary", "Origin, X-Origin, Referer"), ("x-xss-protection", "0"),
                ("x-frame-options", "SAMEORIGIN"), ("x-content-type-options", "nosniff"),
                ("server-timing", f"gfet4t7; dur={ms}")]

    def usage(self, req, completion_tokens, cfg, thoughts=0, cached=0):
        # proto3 JSON omits zero fields (spec §4.3).
        thoughts += cfg.thoughts_tokens
        u = {"promptTokenCount": req.prompt_tokens}
        if cached:
            u["cachedContentTokenCount"] = cached
        if completion_tokens:
            u["candidatesTokenCount"] = completion_tokens
        if thoughts:
            u["thoughtsTokenCount"] = thoughts
        u["totalTokenCount"] = req.prompt_tokens + completion_tokens + thoughts
        if req.prompt_tokens:
            u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": req.prompt_tokens}]
        u = {k: v for k, v in u.items() if v}
        return u

    def completion(self, req, text, fault, cfg, app):
        kind = fault.kind if fault else None
        base = {"modelVersion": cfg.snapshots.get(req.model, req.model),
                "responseId": random_id(17)[:23]}
        if kind == "blocked_prompt":
            body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": SAFETY_RATINGS},
                    "usageMetadata": self.usage(req, 0, cfg), **base}
            return self.ok(req, body, 0, app, cfg)
        if kind in ("content_filter", "refusal"):
            # Gemini has no refusal field; a SAFETY stop without content is its refusal.
            cand = {"finishReason": "SAFETY", "index": 0, "safetyRatings": SAFETY_RATINGS}
            body = {"candidates": [cand], "usageMetadata": self.usage(req, 0, cfg), **base}
            return self.ok(req, body, 0, app, cfg)
        finish = "STOP"
        thoughts = req.reasoning
        if kind == "truncated":
            text, finish = text[: len(text) // 2], "MAX_TOKENS"
        elif kind == "whitespace_content":
            # A DeepSeek behaviour, mirrored here so the client check runs everywhere.
            text = " " * max(len(text), 1)
        # thoughts come out of maxOutputTokens: what does not fit is cut (MAX_TOKENS)
        text, thoughts, cut = limit_answer(cfg, text, thoughts, to_int(req.max_tokens))
        if cut:
            finish = "MAX_TOKENS"
        info = cfg.info(req.model)
        cached, _ = app.prompt_cache(self.name, cfg, req, info["cache_min_tokens"], False)
        completion_tokens = cfg.tokens(text)
        content = {"parts": [{"text": text}], "role": "model"} if text else {"role": "model"}
        body = {"candidates": [{"content": content, "finishReason": finish, "index": 0}],
                "usageMetadata": self.usage(req, completion_tokens, cfg, thoughts, cached), **base}
        reply = self.ok(req, body, completion_tokens, app, cfg, thoughts)
        reply.tokens_cached = cached
        reply.cut = finish == "MAX_TOKENS"
        return reply

    def ok(self, req, body, completion_tokens, app, cfg, thoughts=0):
        reply = self.finish(Reply(200, body, self.headers(req, app, cfg), self.CT))
        reply.tokens_in = req.prompt_tokens
        reply.tokens_out = completion_tokens + cfg.thoughts_tokens + thoughts
        reply.tokens_reasoning = cfg.thoughts_tokens + thoughts
        return reply

    def quota_429(self, req, per_day, seconds=None, limit=None, tokens=False, text=None):
        """429 RESOURCE_EXHAUSTED with QuotaFailure (+ Help, + RetryInfo when seconds given)."""
        model = req.model or "gemini-2.5-flash-lite"
        if tokens:
            metric = "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
            qid = "GenerateContentInputTokensPerModelPerMinute-FreeTier"
        elif per_day:
            metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
            qid = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        else:
            metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
            qid = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        violation = {"quotaMetric": metric, "quotaId": qid,
                     "quotaDimensions": {"location": "global", "model": model}}
        if limit is not None:
            violation["quotaValue"] = str(limit)
        details = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
            {"@type": "type.googleapis.com/google.rpc.Help",
             "links": [{"description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        ]
        if seconds is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": proto_duration(seconds)})
        msg = ("You exceeded your current quota, please check your plan and billing details. "
               "For more information on this error, head to: "
               "https://ai.google.dev/gemini-api/docs/rate-limits.")
        if text:
            msg += " " + text
        return self.error(429, "RESOURCE_EXHAUSTED", msg, details)

    def rate_limited(self, req, cfg, app, seconds, signal_, what="requests", limit=None, used=None):
        if signal_ == "retry_info":
            reply = self.quota_429(req, False, seconds, limit, what == "tokens")
        elif signal_ == "try_again_text":
            reply = self.quota_429(req, False, None, limit, what == "tokens",
                                   f"Please retry in {proto_duration(seconds)}.")
        else:
            # Gemini documents no retry headers (spec §4.4); they are sent only when a
            # fault asks for that signal explicitly.
            reply = self.quota_429(req, False, None, limit, what == "tokens")
            reply.headers += rate_signal_headers(signal_, seconds)
        return reply

    def limiter_429(self, req, cfg, app, wait, what, limit, used):
        return self.rate_limited(req, cfg, app, wait, "retry_info", what, limit, used)

    def fault_error(self, kind, fault, req, cfg, app):
        p = fault.params
        if kind == "http_500":
            return self.error(500, "INTERNAL", "An internal error has occurred. Please retry or "
                              "report in https://developers.generativeai.google/guide/troubleshooting")
        if kind == "http_502":
            return self.finish(Reply(502, google_html_error(
                502, "Server Error", "The server encountered a temporary error and could not "
                "complete your request.<p>Please try again in 30 seconds."), [],
                "text/html; charset=UTF-8"))
        if kind in ("http_503", "insufficient_system_resource"):
            # insufficient_system_resource is DeepSeek-only; overloaded 503 is the equivalent.
            return self.error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        if kind == "http_504":
            return self.error(504, "DEADLINE_EXCEEDED",
                              "Deadline expired before operation could complete.")
        if kind == "http_408":
            # Google's canonical codes have no 408; the front end answers with an HTML page.
            return self.finish(Reply(408, google_html_error(
                408, "Request Timeout", "Your client has taken too long to issue its request."),
                [], "text/html; charset=UTF-8"))
        if kind == "http_409":
            return self.error(409, "ABORTED", "The operation was aborted.")
        if kind == "rate_limit":
            return self.rate_limited(req, cfg, app, float(p.get("seconds", 1)),
                                     p.get("signal", "retry_info"))
        if kind == "quota":
            # A daily quota 429 may still carry a RetryInfo (spec §4.4); retrying is wrong.
            secs = p.get("seconds", 37) if p.get("retry_info", True) else None
            return self.quota_429(req, True, secs, p.get("limit", 20))
        if kind == "auth":
            return self.auth_error(req.presented_key or "unknown-key", False)
        if kind == "forbidden_403":
            return self.error(403, "PERMISSION_DENIED",
                              "Your API key was reported as leaked. Please use another API key.")
        if kind == "model_404":
            return self.model_not_found(req.model, cfg)
        if kind in ("bad_request_400", "unprocessable_422"):
            # Google's canonical codes have no 422; INVALID_ARGUMENT (400) is the equivalent.
            return self.error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        raise AssertionError(kind)     # flex_unavailable: no service_tier here, so no fault


SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]
