"""
DeepSeek: the Chat Completions dialect with DeepSeek's differences (unknown
fields ignored, serde 422s, json_object only, thinking, prefix-unit cache, no
rate-limit headers, keep-alive blank lines under load).
"""

import json
import time
import uuid

from .answers import Req, analyze_personas, limit_answer, no_schema_shape
from .provider_openai import ChatAdapter
from .reply import HTML_502_CLOUDFLARE, HTML_504_CLOUDFLARE, Reply, rate_signal_headers
from .wire import mask_key, to_int


class DeepSeekAdapter(ChatAdapter):
    name = "deepseek"
    server = "elb"

    def model_list(self, cfg, query, violate):
        data = [{"id": m, "object": "model", "owned_by": "deepseek"} for m in cfg.model_list]
        return self.finish(Reply(200, {"object": "list", "data": data}, self.headers(None, None, cfg)))

    def auth_error(self, key, malformed):
        if key is None:
            msg = "Authentication Fails (auth header format should be Bearer sk-...)"
        else:
            msg = f"Authentication Fails, Your api key: {mask_key(key)} is invalid"
        return self.error(401, msg, etype="authentication_error", code="invalid_request_error")

    def error(self, status, message, etype="invalid_request_error", param=None,
              code="invalid_request_error", headers=None):
        # DeepSeek puts "invalid_request_error" in code for most errors (spec §3.4).
        return super().error(status, message, etype, param, code, headers)

    def deserialize_error(self, detail, raw):
        # axum/serde wording, as in the observed 422 (spec §3.4).
        return self.error(422, "Failed to deserialize the JSON body into the target type: "
                          f"{detail} at line 1 column {len(raw)}")

    def parse(self, raw, route, cfg, violate):
        req = Req(self.name)
        try:
            body = json.loads(raw)
        except ValueError as e:
            violate("body is not JSON")
            return None, self.error(400, "Failed to parse the request body as JSON: "
                                    f"expected value at line {e.lineno} column {e.colno}")
        if not isinstance(body, dict):
            violate("body is not a JSON object")
            return None, self.deserialize_error("invalid type: expected struct", raw)
        # Unknown top-level fields are ignored, as the real API does.
        for field in ("model", "messages"):
            if field not in body:
                violate(f"{field} missing")
                return None, self.deserialize_error(f"missing field `{field}`", raw)
        req.model = str(body["model"])
        if not isinstance(body["messages"], list) or not body["messages"]:
            violate("messages is not a non-empty array")
            return None, self.deserialize_error("messages: invalid length 0, expected at least 1",
                                                raw)
        joined = self.read_messages(req, body)
        rf = body.get("response_format")
        if rf is not None:
            rtype = rf.get("type") if isinstance(rf, dict) else None
            if rtype == "json_schema":
                violate("json_schema response_format (DeepSeek supports json_object only)")
                return None, self.error(400, "This response_format type is unavailable now")
            if rtype not in ("text", "json_object"):
                violate(f"response_format type {rtype!r} invalid")
                return None, self.deserialize_error(
                    f"response_format.type: unknown variant `{rtype}`, expected `text` or "
                    "`json_object`", raw)
            if rtype == "json_object" and "json" not in joined.lower():
                violate("json_object without the word json in messages")
                return None, self.error(400, "Prompt must contain the word 'json' in some form "
                                        "to use 'response_format' of type 'json_object'")
        if req.model not in cfg.models:
            violate(f"unknown model {req.model}")
            return None, self.model_not_found(req.model, cfg)
        req.key = cfg.json_object_key
        no_schema_shape(req, isinstance(rf, dict) and rf.get("type") == "json_object")
        req.max_tokens = body.get("max_tokens")
        if req.max_tokens is None:
            violate("max_tokens missing")
        thinking = body.get("thinking")
        ttype = thinking.get("type") if isinstance(thinking, dict) else None
        if thinking is not None and ttype not in ("enabled", "disabled"):
            violate(f"thinking {thinking!r} invalid")
            return None, self.deserialize_error(
                "thinking.type: unknown variant, expected `enabled` or `disabled`", raw)
        if ttype:
            req.params.append(f"thinking={ttype}")
        if body.get("temperature") is not None:
            req.params.append("temperature")
        # V4 thinks unless told not to (spec: thinking mode)
        thinks = ttype == "enabled" or (ttype is None and cfg.info(req.model)["thinking_default"])
        analyze_personas(req, cfg, violate)
        info = cfg.info(req.model)
        m = to_int(req.max_tokens) or 0
        if info["max_output"] and m > info["max_output"] and not thinks:
            violate(f"max_tokens {m} above {info['max_output']}")
            return None, self.error(400, "Invalid max_tokens value, the valid range of max_tokens "
                                    f"is [1, {info['max_output']}]")
        if info["context"] and req.prompt_tokens + m > info["context"]:
            violate(f"context of {req.model} exceeded")
            return None, self.error(400, f"This model's maximum context length is {info['context']} "
                                    f"tokens. However, you requested {req.prompt_tokens + m} tokens "
                                    f"({req.prompt_tokens} in the messages, {m} in the completion). "
                                    "Please reduce the length of the messages or completion.")
        req.reasoning = cfg.think_tokens("medium", len(req.truth)) if thinks else 0
        return req, None

    def model_not_found(self, model, cfg):
        # [unverified] sources say both 400 and 404 (spec §0); status is knob unknown_model_status.
        return self.error(cfg.unknown_model_status, "Model Not Exist")

    def headers(self, req, app, cfg):
        # No x-ratelimit-* headers on DeepSeek (spec §3.1).
        return [("x-ds-trace-id", uuid.uuid4().hex),
                ("vary", "origin, access-control-request-method, access-control-request-headers"),
                ("access-control-allow-credentials", "true")]

    def completion(self, req, text, fault, cfg, app):
        kind = fault.kind if fault else None
        content, finish = text, "stop"
        reasoning = req.reasoning
        if kind == "truncated":
            content, finish = text[: len(text) // 2], "length"
        elif kind in ("refusal", "content_filter", "blocked_prompt"):
            # DeepSeek has no refusal field or prompt block; content_filter is the closest.
            content, finish = "", "content_filter"
        elif kind == "whitespace_content":
            # "the API replaces the non-JSON content with spaces" (spec §3.2).
            content = " " * max(len(text), 1)
        elif kind == "insufficient_system_resource":
            content, finish = "", "insufficient_system_resource"
        if content:
            content, reasoning, cut = limit_answer(cfg, content, reasoning, to_int(req.max_tokens))
            if cut:
                finish = "length"
        completion_tokens = cfg.tokens(content) + reasoning
        # prefix units: a request hits only units it matches in full (providers-2026-12.md)
        hit, _ = app.prompt_cache(self.name, cfg, req, 0, False, units=True)
        message = {"role": "assistant", "content": content}
        if req.reasoning:
            message["reasoning_content"] = "Weighing each persona against the ad."
        body = {
            "id": str(uuid.uuid4()),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": 0, "message": message,
                         "logprobs": None, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": req.prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": req.prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": hit},
                "prompt_cache_hit_tokens": hit,
                "prompt_cache_miss_tokens": req.prompt_tokens - hit,
            },
            "system_fingerprint": "fp_feb633d1f5_prod0820_fp8_kvcache",
        }
        if req.reasoning:
            body["usage"]["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        reply = self.finish(Reply(200, body, self.headers(req, app, cfg)))
        reply.tokens_in, reply.tokens_out = req.prompt_tokens, completion_tokens
        reply.tokens_cached, reply.tokens_reasoning = hit, reasoning
        reply.cut = finish == "length"
        return reply

    def rate_limited(self, req, cfg, app, seconds, signal_, what="requests", limit=None, used=None):
        # DeepSeek's 429 is concurrency-based and carries no retry signal (spec §3.4);
        # a fault may still ask for one explicitly.  [unverified wording]
        msg = "Rate Limit Reached"
        if signal_ == "try_again_text":
            msg += f". Please try again in {seconds:.3f}s."
        return self.error(429, msg, etype="rate_limit_error",
                          headers=rate_signal_headers(signal_, seconds))

    def limiter_429(self, req, cfg, app, wait, what, limit, used):
        return self.rate_limited(req, cfg, app, wait, "none")

    def fault_error(self, kind, fault, req, cfg, app):
        p = fault.params
        if kind == "http_500":
            return self.error(500, "Server Error", etype="server_error")    # [unverified]
        if kind == "http_502":
            return self.finish(Reply(502, HTML_502_CLOUDFLARE, [], "text/html"))
        if kind == "http_503":
            return self.error(503, "Server Overloaded", etype="server_error")  # [unverified]
        if kind == "http_504":
            return self.finish(Reply(504, HTML_504_CLOUDFLARE, [], "text/html"))
        if kind == "http_408":
            return self.error(408, "Request Timeout")                        # [unverified]
        if kind == "http_409":
            return self.error(409, "Conflict")                               # [unverified]
        if kind == "rate_limit":
            return self.rate_limited(req, cfg, app, float(p.get("seconds", 1)),
                                     p.get("signal", "none"))
        if kind == "quota":
            return self.error(402, "Insufficient Balance", etype="unknown_error")
        if kind == "auth":
            return self.auth_error(req.presented_key or "sk-unknown", False)
        if kind == "forbidden_403":
            # DeepSeek documents no 403; this is a plain envelope so the status path is tested.
            return self.error(403, "Forbidden", etype="permission_error")     # [unverified]
        if kind == "model_404":
            return self.model_not_found(req.model, cfg)
        if kind == "bad_request_400":
            return self.error(400, "Invalid max_tokens value, the valid range of max_tokens "
                              "is [1, 8192]")
        if kind == "unprocessable_422":
            return self.deserialize_error(
                "messages[0].role: unknown variant `persona`, expected one of `system`, "
                "`user`, `assistant`, `tool`", b"x" * 42)
        raise AssertionError(kind)
