"""
OpenAI Chat Completions: ChatAdapter (the dialect DeepSeek shares: bearer key,
error envelope, messages) and OpenAIAdapter (request checks with OpenAI's
messages, x-ratelimit-* headers, answers, 429s and error faults).
"""

import json
import re
import time
import uuid

from .answers import (Req, analyze_personas, limit_answer, no_schema_shape, pick_property,
                      read_array_schema)
from .reply import HTML_502_CLOUDFLARE, HTML_504_CLOUDFLARE, Reply, rate_signal_headers
from .strict import strict_schema_problem
from .wire import go_duration, mask_key, random_id, to_int


def english_list(items):
    """'a', 'b', and 'c' (as OpenAI lists supported values)."""
    q = [f"'{i}'" for i in items]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + (", and " if len(q) > 2 else " and ") + q[-1]


OPENAI_FIELDS = {
    "messages", "model", "modalities", "verbosity", "reasoning_effort",
    "max_completion_tokens", "frequency_penalty", "presence_penalty",
    "web_search_options", "top_logprobs", "response_format", "audio", "store",
    "stream", "stop", "logit_bias", "logprobs", "max_tokens", "n", "prediction",
    "seed", "service_tier", "stream_options", "tools", "tool_choice",
    "parallel_tool_calls", "function_call", "functions", "metadata",
    "temperature", "top_p", "user", "safety_identifier", "prompt_cache_key",
    "prompt_cache_retention",
}
SCHEMA_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def message_text(content):
    """Text of an OpenAI-style message content (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


class ChatAdapter:
    """Shared by OpenAI and DeepSeek: both speak the Chat Completions dialect."""

    name = None
    server = "cloudflare"

    # -- auth -------------------------------------------------------------
    def presented_key(self, headers, query):
        auth = headers.get("Authorization")
        if not auth:
            return None, False, False
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, False, True        # present but malformed
        return token.strip(), False, False

    # -- envelope ---------------------------------------------------------
    def error(self, status, message, etype="invalid_request_error", param=None,
              code=None, headers=None):
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return self.finish(Reply(status, body, headers))

    def finish(self, reply):
        reply.server = self.server
        return reply

    # -- shared request parsing ------------------------------------------
    def read_messages(self, req, body):
        msgs = body["messages"]
        all_text = []
        last_user = ""
        for m in msgs:
            if not isinstance(m, dict):
                continue
            t = message_text(m.get("content"))
            all_text.append(t)
            if m.get("role") == "user":
                last_user = t
        req.prompt = last_user
        req.prompt_bytes = sum(len(t.encode("utf-8")) for t in all_text)
        req.cache_text = "\n\x1e".join(all_text)
        # DeepSeek has no schema: the instructions say what is asked
        req.percent = req.percent or any("in percent" in t for t in all_text)
        return " ".join(all_text)

    # -- answers ----------------------------------------------------------
    def completion(self, req, text, fault, cfg, app):
        raise NotImplementedError


class OpenAIAdapter(ChatAdapter):
    name = "openai"
    server = "cloudflare"

    def model_list(self, cfg, query, violate):
        """GET /v1/models: shutdown_date where a shutdown is announced (providers-2026-12.md;
        the field's exact form is [unverified]: a date string here)."""
        data = []
        for m in cfg.model_list + ["text-embedding-3-small"]:
            item = {"id": m, "object": "model", "created": 1764000000, "owned_by": "system"}
            date = cfg.info(m)["shutdown_date"]
            if date:
                item["shutdown_date"] = date
            data.append(item)
        return self.finish(Reply(200, {"object": "list", "data": data},
                                 [("x-request-id", "req_" + uuid.uuid4().hex)]))

    def finish(self, reply):
        # Every OpenAI response carries a request id; the SDK reads it into errors too.
        if not any(k == "x-request-id" for k, _ in reply.headers):
            reply.headers.append(("x-request-id", "req_" + uuid.uuid4().hex))
        return super().finish(reply)

    def auth_error(self, key, malformed):
        if key is None:
            return self.error(401, (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys."))
        # Real body: spec §2.4 (the real one shows a prefix too; we show only the last 4).
        return self.error(401, (
            f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."), code="invalid_api_key")

    def parse(self, raw, route, cfg, violate):
        req = Req(self.name)
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            violate("body is not a JSON object")
            return None, self.error(400, (
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON. If you have trouble figuring "
                "out how to fix this, please contact us through our help center at "
                "help.openai.com.)"))
        unknown = sorted(k for k in body if k not in OPENAI_FIELDS)
        if unknown:
            violate(f"unknown field(s) {', '.join(unknown)}")
            plural = "s" if len(unknown) > 1 else ""
            return None, self.error(
                400, f"Unrecognized request argument{plural} supplied: {', '.join(unknown)}")
        if not body.get("model"):
            violate("model missing")
            return None, self.error(400, "you must provide a model parameter")
        req.model = str(body["model"])
        msgs = body.get("messages")
        if msgs is None:
            violate("messages missing")
            return None, self.error(400, "Missing required parameter: 'messages'.",
                                    param="messages", code="missing_required_parameter")
        if not isinstance(msgs, list):
            violate("messages is not an array")
            return None, self.error(
                400, f"Invalid type for 'messages': expected an array, but got "
                f"{json_type(msgs)} instead.", param="messages", code="invalid_type")
        if not msgs:
            violate("messages is empty")
            return None, self.error(
                400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.", param="messages", code="empty_array")
        err = self.check_temperature(body, violate)
        if err:
            return None, err
        joined = self.read_messages(req, body)
        req.key = cfg.json_object_key
        err = self.check_response_format(req, body, joined, cfg, violate)
        if err:
            return None, err
        rf = body.get("response_format")
        no_schema_shape(req, isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"))
        if req.model not in cfg.models:
            violate(f"unknown model {req.model}")
            return None, self.model_not_found(req.model, cfg)
        req.max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if req.max_tokens is None:
            violate("max_completion_tokens/max_tokens missing")
        err = self.check_reasoning(req, body, cfg, violate) or self.check_tier(req, body, cfg, violate)
        if err:
            return None, err
        analyze_personas(req, cfg, violate)
        err = self.check_limits(req, cfg, violate)
        if err:
            return None, err
        req.reasoning = cfg.think_tokens(req.effort, len(req.truth)) if req.effort else 0
        return req, None

    def check_reasoning(self, req, body, cfg, violate):
        """reasoning_effort and temperature as the model takes them (providers-2026-12.md):
        not a reasoning model: reasoning_effort is an unsupported parameter; an effort the
        model lacks is an unsupported value; a temperature other than 1 only at the efforts
        that allow one (gpt-6-luna: none; gpt-5: never).  The exact bodies OpenAI sends."""
        info = cfg.info(req.model)
        reasoning = info["reasoning"]
        effort = body.get("reasoning_effort")
        req.effort = None
        if effort is not None:
            req.params.append(f"reasoning_effort={effort}")
            if reasoning is None and info["lenient"]:
                pass                # taken and ignored
            elif reasoning is None:
                violate("reasoning_effort sent to a model without reasoning")
                return self.error(400, "Unsupported parameter: 'reasoning_effort' is not supported "
                                  "with this model.", param="reasoning_effort",
                                  code="unsupported_parameter")
            elif effort not in reasoning["efforts"]:
                violate(f"reasoning_effort {effort} not taken by {req.model}")
                return self.error(400, f"Unsupported value: 'reasoning_effort' does not support "
                                  f"'{effort}' with this model. Supported values "
                                  f"are: {english_list(reasoning['efforts'])}.",
                                  param="reasoning_effort", code="unsupported_value")
        if reasoning is not None:
            req.effort = effort or reasoning["default"]
        t = body.get("temperature")
        if t is not None:
            req.params.append("temperature")
            if reasoning is not None and req.effort not in reasoning["temperature_with"] and t != 1:
                violate(f"temperature sent to {req.model} at effort {req.effort}")
                return self.error(400, f"Unsupported value: 'temperature' does not support {t} with "
                                  "this model. Only the default (1) value is supported.",
                                  param="temperature", code="unsupported_value")
        return None

    def check_tier(self, req, body, cfg, violate):
        tier = body.get("service_tier")
        if tier is None:
            return None
        req.params.append(f"service_tier={tier}")
        if tier not in ("auto", "default", "flex", "scale", "priority", "fast"):
            violate(f"service_tier {tier!r} invalid")
            return self.error(400, f"Invalid value: {tier!r}. Supported values are: 'auto', "
                              "'default', 'flex', 'scale', 'priority', and 'fast'.",
                              param="service_tier", code="invalid_value")
        if tier == "flex" and not cfg.info(req.model)["flex"]:
            # [unverified wording]: flex is offered on some models only (spec: flex-processing)
            violate(f"service_tier flex on {req.model}")
            return self.error(400, f"Unsupported value: 'service_tier' does not support 'flex' "
                              "with this model.", param="service_tier", code="unsupported_value")
        req.service_tier = tier
        return None

    def check_limits(self, req, cfg, violate):
        """The model's context (prompt + completion limit) and completion limit."""
        info = cfg.info(req.model)
        m = to_int(req.max_tokens) or 0
        if info["max_output"] and m > info["max_output"]:
            violate(f"max tokens {m} above {req.model}'s {info['max_output']}")
            return self.error(400, f"max_tokens is too large: {m}. This model supports at most "
                              f"{info['max_output']} completion tokens, whereas you provided {m}.",
                              param="max_tokens", code="invalid_value")
        if info["context"] and req.prompt_tokens + m > info["context"]:
            violate(f"context of {req.model} exceeded")
            return self.error(400, f"This model's maximum context length is {info['context']} "
                              f"tokens. However, you requested {req.prompt_tokens + m} tokens "
                              f"({req.prompt_tokens} in the messages, {m} in the completion). "
                              "Please reduce the length of the messages or completion.",
                              param="messages", code="context_length_exceeded")
        return None

    def check_temperature(self, body, violate):
        if "temperature" not in body or body["temperature"] is None:
            return None
        t = body["temperature"]
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            violate("temperature is not a number")
            return self.error(400, f"Invalid type for 'temperature': expected a decimal, but got "
                              f"{json_type(t)} instead.", param="temperature", code="invalid_type")
        if t > 2:
            violate(f"temperature {t} above 2")
            return self.error(400, f"Invalid 'temperature': decimal above maximum value. Expected "
                              f"a value <= 2, but got {t} instead.", param="temperature",
                              code="decimal_above_max_value")
        if t < 0:
            violate(f"temperature {t} below 0")
            return self.error(400, f"Invalid 'temperature': decimal below minimum value. Expected "
                              f"a value >= 0, but got {t} instead.", param="temperature",
                              code="decimal_below_min_value")
        return None

    def check_response_format(self, req, body, joined, cfg, violate):
        rf = body.get("response_format")
        if rf is None:
            return None
        rtype = rf.get("type") if isinstance(rf, dict) else None
        if rtype not in ("text", "json_object", "json_schema"):
            violate(f"response_format type {rtype!r} invalid")
            return self.error(400, f"Invalid value: '{rtype}'. Supported values are: "
                              "'json_object', 'json_schema', and 'text'.",
                              param="response_format.type", code="invalid_value")
        if rtype == "json_object":
            if "json" not in joined.lower():
                violate("json_object without the word json in messages")
                return self.error(400, "'messages' must contain the word 'json' in some form, "
                                  "to use 'response_format' of type 'json_object'.",
                                  param="messages")
            return None
        if rtype == "text":
            return None
        js = rf.get("json_schema")
        if not isinstance(js, dict) or "name" not in js:
            violate("response_format.json_schema.name missing")
            return self.error(400, "Missing required parameter: 'response_format.json_schema.name'.",
                              param="response_format.json_schema.name",
                              code="missing_required_parameter")
        name = js["name"]
        if not isinstance(name, str) or not SCHEMA_NAME_RE.match(name):
            violate("response_format.json_schema.name invalid")
            return self.error(400, "Invalid 'response_format.json_schema.name': string does not "
                              "match pattern. Expected a string that matches the pattern "
                              "'^[a-zA-Z0-9_-]+$'.", param="response_format.json_schema.name",
                              code="invalid_value")
        schema = js.get("schema")
        if js.get("strict") is not True:
            if cfg.require_strict:
                # The real API accepts a non-strict schema (it is then only a hint).  We
                # reject it on purpose (knob require_strict) because ctr_dist must send
                # strict:true to get guaranteed-shaped answers.
                violate("json_schema without strict:true")
                return self.error(400, f"Invalid schema for response_format '{name}': 'strict' "
                                  "must be true for ctr_dist (fake-server rule, knob "
                                  "require_strict).", param="response_format")
            problem = None          # non-strict schemas are not checked by the real API
        else:
            problem = strict_schema_problem(schema)
        if problem:
            violate(f"json_schema: {problem[0]}")
            return self.error(400, f"Invalid schema for response_format '{name}': {problem[1]}",
                              param="response_format")
        key, sub = pick_property(schema.get("properties") if isinstance(schema, dict) else None)
        if key is None:
            violate("json_schema root has no properties")
        else:
            if len(schema["properties"]) != 1:
                violate("json_schema root has more than one property")
            req.key = key
            read_array_schema(req, sub)
        return None

    def model_not_found(self, model, cfg):
        return self.error(cfg.unknown_model_status,
                          f"The model `{model}` does not exist or you do not have access to it.",
                          code="model_not_found")

    # -- headers ----------------------------------------------------------
    def headers(self, req, app, cfg):
        snap = app.ratelimit_snapshot(self.name, cfg)
        return [
            ("x-request-id", "req_" + uuid.uuid4().hex),
            ("openai-organization", "user-ctrdist-test"),
            ("openai-processing-ms", str(int((time.monotonic() - req.t0) * 1000))),
            ("openai-version", "2020-10-01"),
            ("x-ratelimit-limit-requests", str(snap["limit_requests"])),
            ("x-ratelimit-limit-tokens", str(snap["limit_tokens"])),
            ("x-ratelimit-remaining-requests", str(snap["remaining_requests"])),
            ("x-ratelimit-remaining-tokens", str(snap["remaining_tokens"])),
            ("x-ratelimit-reset-requests", go_duration(snap["reset_requests"])),
            ("x-ratelimit-reset-tokens", go_duration(snap["reset_tokens"])),
        ]

    def error_headers(self, req):
        return [("x-request-id", "req_" + uuid.uuid4().hex),
                ("openai-processing-ms", str(int((time.monotonic() - req.t0) * 1000))),
                ("openai-version", "2020-10-01")]

    # -- 200 answers ------------------------------------------------------
    def completion(self, req, text, fault, cfg, app):
        kind = fault.kind if fault else None
        content, refusal, finish = text, None, "stop"
        reasoning = req.reasoning
        if kind == "truncated":
            content, finish = text[: len(text) // 2], "length"
        elif kind == "refusal":
            content, refusal = None, "I'm sorry, but I can't assist with that request."
        elif kind in ("content_filter", "blocked_prompt"):
            # OpenAI has no prompt-block 200; the closest real shape is content_filter.
            content, finish = None, "content_filter"
        elif kind == "whitespace_content":
            # Seen on DeepSeek, not OpenAI; kept so the client's check runs on every provider.
            content = " " * max(len(text), 1)
        if content:
            # reasoning comes out of the same limit: what does not fit is cut (length)
            content, reasoning, cut = limit_answer(cfg, content, reasoning, to_int(req.max_tokens))
            if cut:
                finish = "length"
        completion_tokens = cfg.tokens(content or refusal or "") + reasoning
        cached, written = app.prompt_cache(self.name, cfg, req, 1024, cfg.info(req.model)["cache_writes"])
        body = {
            "id": "chatcmpl-" + random_id(22)[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": cfg.snapshots.get(req.model, req.model),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal,
                            "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }],
            "usage": {
                "prompt_tokens": req.prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": req.prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0},
            },
            # what it was processed at: flex when asked (and offered), else default
            "service_tier": req.service_tier if req.service_tier in ("flex", "priority") else "default",
            "system_fingerprint": "fp_560af6e559",
        }
        if cfg.info(req.model)["cache_writes"]:
            body["usage"]["prompt_tokens_details"]["cache_write_tokens"] = written
        reply = self.finish(Reply(200, body, self.headers(req, app, cfg)))
        reply.tokens_in, reply.tokens_out = req.prompt_tokens, completion_tokens
        reply.tokens_cached, reply.tokens_cache_write, reply.tokens_reasoning = cached, written, reasoning
        reply.service_tier = body["service_tier"]
        reply.cut = finish == "length"
        return reply

    # -- error faults -----------------------------------------------------
    def rate_limited(self, req, cfg, app, seconds, signal_, what="requests", limit=None, used=None):
        """429 rate_limit_exceeded (spec §2.4); `signal_` picks how the wait is told."""
        limit = limit if limit is not None else (cfg.rpm or 500)
        used = used if used is not None else limit
        msg = (f"Rate limit reached for {req.model or 'gpt-4o-mini'} in organization "
               f"org-ctrdisttest on {what} per min ({'RPM' if what == 'requests' else 'TPM'}): "
               f"Limit {limit}, Used {used}, Requested 1.")
        if signal_ == "try_again_text":
            msg += f" Please try again in {seconds:.3f}s."
        msg += " Visit https://platform.openai.com/account/rate-limits to learn more."
        # Real 429s carry the x-ratelimit-* headers too (remaining 0 when the limiter fired).
        headers = self.headers(req, app, cfg) + rate_signal_headers(signal_, seconds)
        return self.error(429, msg, etype=what, code="rate_limit_exceeded", headers=headers)

    def limiter_429(self, req, cfg, app, wait, what, limit, used):
        """A limiter hit: OpenAI says when to retry three ways at once."""
        reply = self.rate_limited(req, cfg, app, wait, "try_again_text", what, limit, used)
        reply.headers += rate_signal_headers("retry_after", wait)
        reply.headers += rate_signal_headers("retry_after_ms", wait)
        return reply

    def fault_error(self, kind, fault, req, cfg, app):
        p = fault.params
        h = self.error_headers(req)
        if "x_should_retry" in p:
            # OpenAI sometimes tells its SDK not to retry a 5xx (spec §2.6).
            h.append(("x-should-retry", "true" if p["x_should_retry"] else "false"))
        if kind == "http_500":
            return self.error(500, "The server had an error while processing your request. "
                              "Sorry about that!", etype="server_error", headers=h)
        if kind == "http_502":
            # Gateway errors come from Cloudflare in front of the API: an HTML page.
            return self.finish(Reply(502, HTML_502_CLOUDFLARE, h, "text/html"))
        if kind == "http_503":
            return self.error(503, "That model is currently overloaded with other requests. "
                              "You can retry your request, or contact us through our help "
                              "center at help.openai.com if the error persists.",
                              etype="server_error", headers=h)
        if kind == "http_504":
            return self.finish(Reply(504, HTML_504_CLOUDFLARE, h, "text/html"))
        if kind == "http_408":
            # [unverified wording] OpenAI's SDK retries 408; the body is the usual envelope.
            return self.error(408, "Request timed out.", etype="timeout", headers=h)
        if kind == "http_409":
            # [unverified wording]
            return self.error(409, "The request could not be completed due to a conflict "
                              "with another request. Please retry.", headers=h)
        if kind == "rate_limit":
            seconds = float(p.get("seconds", 1))
            return self.rate_limited(req, cfg, app, seconds, p.get("signal", "retry_after"))
        if kind == "quota":
            # Quota 429s carry no retry-after (spec §2.4).
            return self.error(429, "You exceeded your current quota, please check your plan and "
                              "billing details. For more information on this error, read the docs: "
                              "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                              etype="insufficient_quota", code="insufficient_quota", headers=h)
        if kind == "auth":
            return self.auth_error(req.presented_key or "sk-unknown", False)
        if kind == "forbidden_403":
            return self.error(403, "Country, region, or territory not supported",
                              etype="request_forbidden",
                              code="unsupported_country_region_territory", headers=h)
        if kind == "model_404":
            return self.model_not_found(req.model, cfg)
        if kind == "bad_request_400":
            return self.error(400, "Invalid 'messages[0].content': string too long. Expected a "
                              "string with maximum length 10485760, but got a string with length "
                              "10485761 instead.", param="messages[0].content",
                              code="string_above_max_length", headers=h)
        if kind == "unprocessable_422":
            # [unverified wording] OpenAI rarely sends 422; the SDK maps it to UnprocessableEntityError.
            return self.error(422, "Unprocessable Entity: the request could not be processed.",
                              headers=h)
        if kind == "insufficient_system_resource":
            # DeepSeek-only finish_reason; the closest OpenAI signal is 503 overloaded.
            return self.fault_error("http_503", fault, req, cfg, app)
        if kind == "flex_unavailable":
            # Flex out of capacity: a 429 "resource unavailable" (spec: flex-processing);
            # [unverified wording and codes]
            h += rate_signal_headers(p.get("signal", "none"), float(p.get("seconds", 1)))
            return self.error(429, "Resource unavailable: the flex tier has no capacity for this "
                              "request right now. Please retry later or use the default service "
                              "tier.", etype="service_unavailable_error", code="resource_unavailable",
                              headers=h)
        raise AssertionError(kind)


def json_type(v):
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return "null"
