#!/usr/bin/env python3
"""
provider_server.py -- a local fake of the three LLM APIs ctr_dist calls.

    OpenAI    POST /openai/v1/chat/completions
    DeepSeek  POST /deepseek/chat/completions   (and /deepseek/v1/chat/completions)
    Gemini    POST /gemini/v1beta/models/{model}:generateContent

Bodies, headers, error envelopes and rate-limit signals follow
/work/shared/reference/provider-wire-formats.md (cited below as "spec §N").
Answers are deterministic: every prompt line "[k] text" is a persona, and
the answer for it is 1 when the text contains "CLICK", else 0.  Faults,
limits and latency are knobs set with --config or POST /_control/config.
See PROVIDER_SERVER.md for the full list.

Standard library only, so it runs with any Python 3.11 on the test machine.
"""

import argparse
import base64
import email.utils
import gzip
import hashlib
import http.server
import json
import math
import os
import random
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from collections import deque
from urllib.parse import parse_qsl, unquote

PROVIDERS = ("openai", "deepseek", "gemini")
MAX_BODY = 64 * 1024 * 1024
VIOLATION_LIST_CAP = 1000          # the list keeps the first N; counts keep all

# ---------------------------------------------------------------------------
# Knobs
# ---------------------------------------------------------------------------

# Knobs allowed at top level and in providers.<name> (the latter wins).
PER_PROVIDER_DEFAULTS = {
    "latency_ms": 0,
    "gzip": False,
    "rpm": None,
    "tpm": None,
    "window_s": 60,
    "max_concurrency": None,
    "seed": 0,
    "faults": [],
    "thoughts_tokens": 0,
    "unknown_model_status": 404,
    "require_strict": True,
    "json_object_key": "clicks",
    "persona_pattern": r"^\[(\d+)\] (.*)$",
    "prompt_cache": True,
    "cache_ttl_s": 300,
    "reasoning_scale": 1.0,
    "models_page_size": 50,
    "token_unit": "bytes4",
    "answer_spacing": False,
}

# Provider-specific defaults, used only when neither the top level nor the
# provider block sets the knob (so a top-level "gzip": false turns it off
# everywhere).  Real DeepSeek gzips its answers (spec §3.1).
PROVIDER_DEFAULTS = {"deepseek": {"gzip": True}}

GLOBAL_DEFAULTS = {
    "keys": {"openai": "sk-test-openai", "deepseek": "sk-test-deepseek",
             "gemini": "gm-test-gemini"},
    "models": {"openai": ["gpt-6-luna", "gpt-5-mini", "gpt-4o-mini", "gpt-4.1-mini"],
               "deepseek": ["deepseek-flash", "deepseek-v4-flash", "deepseek-chat"],
               "gemini": ["gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-2.5-pro",
                          "gemini-3.1-flash-lite"]},
    # OpenAI answers an alias with the dated snapshot (spec §2.3).
    "model_snapshots": {"gpt-4o-mini": "gpt-4o-mini-2024-07-18",
                        "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14"},
    "model_info": {},
    "providers": {},
}

# What each model does, by name (knob model_info merges over it, per model).
# Sources: providers-2026-12.md; values marked [unverified] are knobs.
#   reasoning (OpenAI): efforts it takes, its default, the efforts at which it
#     takes a temperature; None: not a reasoning model (reasoning_effort is an
#     unsupported parameter)
#   thinking (Gemini): "budget" (2.x: thinkingBudget, min_budget the lowest it
#     takes, 0 = can turn it off) or "level" (3.x: thinkingLevel, levels);
#     default: what it does when not told
#   thinking_default (DeepSeek): V4 models think unless told not to
#   cache_min_tokens: the shortest prefix its prompt cache serves
#   context, max_output: tokens [unverified for DeepSeek]
OPENAI_REASONING_NEW = {"efforts": ["none", "minimal", "low", "medium", "high", "xhigh", "max"],
                        "default": "medium", "temperature_with": ["none"]}
OPENAI_REASONING_GPT5 = {"efforts": ["minimal", "low", "medium", "high"],
                         "default": "medium", "temperature_with": []}
MODEL_INFO_DEFAULTS = {
    "gpt-6-luna": {"reasoning": OPENAI_REASONING_NEW, "flex": True, "cache_writes": True,
                   "context": 400000, "max_output": 128000, "display_name": "GPT-6 Luna"},
    "gpt-5-mini": {"reasoning": OPENAI_REASONING_GPT5, "flex": True,
                   "context": 400000, "max_output": 128000, "shutdown_date": "2026-12-11"},
    "gpt-4o-mini": {"reasoning": None, "flex": False, "context": 128000, "max_output": 16384,
                    "shutdown_date": "2027-01-14"},
    "gpt-4.1-mini": {"reasoning": None, "flex": False, "context": 1047576, "max_output": 32768,
                     "shutdown_date": "2027-01-14"},
    "deepseek-flash": {"thinking_default": True, "context": 131072, "max_output": 8192},
    "deepseek-v4-flash": {"thinking_default": True, "context": 131072, "max_output": 8192},
    "deepseek-chat": {"thinking_default": False, "context": 131072, "max_output": 8192},
    "gemini-2.5-flash-lite": {"thinking": "budget", "min_budget": 0, "default": 0,
                              "cache_min_tokens": 2048, "context": 1048576, "max_output": 65536,
                              "display_name": "Gemini 2.5 Flash-Lite"},
    "gemini-2.5-flash": {"thinking": "budget", "min_budget": 0, "default": -1,
                         "cache_min_tokens": 2048, "context": 1048576, "max_output": 65536,
                         "display_name": "Gemini 2.5 Flash"},
    "gemini-2.5-pro": {"thinking": "budget", "min_budget": 128, "default": -1,
                       "cache_min_tokens": 2048, "context": 1048576, "max_output": 65536,
                       "display_name": "Gemini 2.5 Pro"},
    "gemini-3.1-flash-lite": {"thinking": "level", "levels": ["minimal", "low", "medium", "high"],
                              "default": "high", "cache_min_tokens": 4096, "context": 1048576,
                              "max_output": 65536, "display_name": "Gemini 3.1 Flash-Lite"},
}
# A model the table does not know takes (and ignores) every reasoning parameter, as
# many OpenAI-compatible servers do; knob model_info with "lenient": false makes it
# refuse them like a model without reasoning.
for _info in MODEL_INFO_DEFAULTS.values():
    _info["lenient"] = False
MODEL_INFO_BASE = {"lenient": True, "reasoning": None, "flex": True, "cache_writes": False, "thinking": None,
                   "thinking_default": False, "min_budget": 0, "default": None, "levels": [],
                   "cache_min_tokens": 1024, "context": None, "max_output": None,
                   "shutdown_date": None, "display_name": None}
# Reasoning tokens a model spends at an effort: a base plus some per persona
# (times knob reasoning_scale); "dynamic" is a thinking budget of -1.
THINK_TOKENS = {"none": (0, 0), "minimal": (24, 0), "low": (120, 2), "medium": (400, 6),
                "high": (1200, 16), "xhigh": (2400, 32), "max": (4000, 48),
                "dynamic": (300, 4)}

ERROR_FAULTS = {
    "http_500", "http_502", "http_503", "http_504", "http_408", "http_409",
    "rate_limit", "quota", "auth", "forbidden_403", "model_404",
    "bad_request_400", "unprocessable_422", "flex_unavailable",
}
TRANSPORT_FAULTS = {"reset", "hang", "slow_body", "keepalive_blank_lines"}
CONTENT_FAULTS = {
    "prose", "fence", "wrong_length", "non_binary", "truncated", "refusal",
    "content_filter", "blocked_prompt", "whitespace_content", "empty_body",
    "insufficient_system_resource",
}
FAULT_KINDS = ERROR_FAULTS | TRANSPORT_FAULTS | CONTENT_FAULTS
RATE_SIGNALS = {"retry_after", "retry_after_ms", "retry_after_date",
                "try_again_text", "retry_info", "none"}
BODY_SIGNALS = {"try_again_text", "retry_info"}     # told in the 429's JSON body
# Faults after which the body still carries the full, correct answer.
CLEAN_ANSWER_FAULTS = {None, "prose", "fence", "slow_body", "keepalive_blank_lines"}


class ConfigError(ValueError):
    pass


class Fault:
    """One entry of the faults list, validated."""

    def __init__(self, raw, where):
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: a fault must be an object")
        unknown = set(raw) - {"kind", "rate", "first", "after", "provider", "model", "params"}
        if unknown:
            raise ConfigError(f"{where}: unknown fault field(s) {sorted(unknown)}")
        self.kind = raw.get("kind")
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"{where}: unknown fault kind {self.kind!r}")
        self.rate = raw.get("rate", 1)
        if not isinstance(self.rate, (int, float)) or not 0 <= self.rate <= 1:
            raise ConfigError(f"{where}: rate must be a number in 0..1")
        self.first = raw.get("first")
        if self.first is not None and (not isinstance(self.first, int) or self.first < 0):
            raise ConfigError(f"{where}: first must be a non-negative integer")
        self.after = raw.get("after")
        if self.after is not None and (not isinstance(self.after, int) or self.after < 0):
            raise ConfigError(f"{where}: after must be a non-negative integer")
        self.provider = raw.get("provider")
        if self.provider is not None and self.provider not in PROVIDERS:
            raise ConfigError(f"{where}: unknown provider {self.provider!r}")
        self.model = raw.get("model")
        if self.model is not None and not isinstance(self.model, str):
            raise ConfigError(f"{where}: model must be a string")
        self.params = raw.get("params") or {}
        if not isinstance(self.params, dict):
            raise ConfigError(f"{where}: params must be an object")
        sig = self.params.get("signal")
        if sig is not None and sig not in RATE_SIGNALS:
            raise ConfigError(f"{where}: unknown rate_limit signal {sig!r}")
        if (sig in BODY_SIGNALS and self.kind in ERROR_FAULTS
                and self.kind != "rate_limit"):
            raise ConfigError(f"{where}: signal {sig!r} is told in a 429 body; "
                              f"{self.kind} takes only header signals")
        shaping = {"body", "headers"} & set(self.params)
        if shaping and self.kind not in ERROR_FAULTS:
            raise ConfigError(f"{where}: params {sorted(shaping)} apply to error kinds only")
        if "body" in self.params and not isinstance(self.params["body"], str):
            raise ConfigError(f"{where}: params.body must be a string")
        hdrs = self.params.get("headers", {})
        if not isinstance(hdrs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and k and "\n" not in k + v
                and "\r" not in k + v and ":" not in k for k, v in hdrs.items()):
            raise ConfigError(f"{where}: params.headers must map header names to strings")

    def param(self, name, default):
        return self.params.get(name, default)


class ProviderConfig:
    """Knobs resolved for one provider, precomputed so a request only reads attributes."""

    def __init__(self, name, raw, merged):
        self.name = name
        block = raw.get("providers", {}).get(name, {})
        value = {}
        for knob, default in PER_PROVIDER_DEFAULTS.items():
            if knob in block:
                value[knob] = block[knob]
            elif knob in raw:
                value[knob] = raw[knob]
            else:
                value[knob] = PROVIDER_DEFAULTS.get(name, {}).get(knob, default)
        self.knobs = value
        self.key = merged["keys"].get(name)
        self.model_list = list(merged["models"].get(name, []))
        self.models = set(self.model_list)
        self.snapshots = merged["model_snapshots"]
        self.model_info = merged["model_info"]
        self.prompt_cache = bool(value["prompt_cache"])
        self.cache_ttl_s = float(value["cache_ttl_s"])
        self.reasoning_scale = float(value["reasoning_scale"])
        self.models_page_size = max(1, int(value["models_page_size"]))
        if value["token_unit"] not in ("bytes4", "char"):
            raise ConfigError(f"providers.{name}: token_unit is bytes4 or char")
        self.char_tokens = value["token_unit"] == "char"
        self.answer_spacing = bool(value["answer_spacing"])
        self.latency_s = float(value["latency_ms"] or 0) / 1000.0
        self.gzip = bool(value["gzip"])
        self.rpm = value["rpm"]
        self.tpm = value["tpm"]
        self.window_s = float(value["window_s"] or 60)
        self.max_concurrency = value["max_concurrency"]
        self.seed = value["seed"]
        self.thoughts_tokens = int(value["thoughts_tokens"] or 0)
        self.unknown_model_status = int(value["unknown_model_status"])
        self.require_strict = bool(value["require_strict"])
        # null: no key of our own, i.e. a bare array when the request names none
        jk = value["json_object_key"]
        self.json_object_key = None if jk is None else str(jk)
        self.persona_re = compile_persona_pattern(value["persona_pattern"], name)
        self.custom_persona_pattern = value["persona_pattern"] != DEFAULT_PERSONA_PATTERN
        where = f"providers.{name}.faults" if "faults" in block else "faults"
        faults = [Fault(f, f"{where}[{i}]") for i, f in enumerate(value["faults"] or [])]
        # A fault with a "provider" field applies to that provider only.
        self.faults = [f for f in faults if f.provider in (None, name)]

    def tokens(self, text):
        """Completion tokens of text: ~4 bytes each, or one per character (token_unit
        char, like a character-level engine)."""
        return len(text) if self.char_tokens else ceil4(len(text))

    def info(self, model):
        """What the model does (MODEL_INFO_DEFAULTS and knob model_info)."""
        return self.model_info.get(model, MODEL_INFO_BASE)

    def think_tokens(self, effort, n):
        """Reasoning tokens a model spends at an effort on n personas."""
        base, per = THINK_TOKENS.get(effort, (0, 0))
        return int((base + per * n) * self.reasoning_scale)


class Config:
    """The whole knob set.  Immutable once built; replaced as a unit."""

    def __init__(self, raw=None):
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ConfigError("config must be a JSON object")
        allowed = set(PER_PROVIDER_DEFAULTS) | set(GLOBAL_DEFAULTS)
        unknown = set(raw) - allowed
        if unknown:
            raise ConfigError(f"unknown knob(s) {sorted(unknown)}")
        providers = raw.get("providers", {})
        if not isinstance(providers, dict) or set(providers) - set(PROVIDERS):
            raise ConfigError(f"providers must be an object keyed by {list(PROVIDERS)}")
        for p, block in providers.items():
            if not isinstance(block, dict):
                raise ConfigError(f"providers.{p} must be an object")
            bad = set(block) - set(PER_PROVIDER_DEFAULTS)
            if bad:
                raise ConfigError(f"providers.{p}: unknown knob(s) {sorted(bad)}")
        for knob in ("keys", "models", "model_snapshots", "model_info"):
            if knob in raw and not isinstance(raw[knob], dict):
                raise ConfigError(f"{knob} must be an object")
        for model, info in raw.get("model_info", {}).items():
            if not isinstance(info, dict) or set(info) - set(MODEL_INFO_BASE):
                raise ConfigError(f"model_info.{model}: an object with knobs of {sorted(MODEL_INFO_BASE)}")
        if not isinstance(raw.get("faults", []), list):
            raise ConfigError("faults must be a list")
        merged = {
            "keys": {**GLOBAL_DEFAULTS["keys"], **raw.get("keys", {})},
            "models": {**GLOBAL_DEFAULTS["models"], **raw.get("models", {})},
            "model_snapshots": {**GLOBAL_DEFAULTS["model_snapshots"],
                                **raw.get("model_snapshots", {})},
            "model_info": {m: {**MODEL_INFO_BASE, **MODEL_INFO_DEFAULTS.get(m, {}),
                               **raw.get("model_info", {}).get(m, {})}
                           for m in set(MODEL_INFO_DEFAULTS) | set(raw.get("model_info", {}))},
        }
        self.raw = raw
        self.providers = {p: ProviderConfig(p, raw, merged) for p in PROVIDERS}
        self.merged = merged

    def describe(self):
        """The knobs as JSON, with API keys masked (keys never leave the server)."""
        out = {k: v for k, v in self.raw.items() if k != "keys"}
        out["keys"] = {p: mask_key(k) for p, k in self.merged["keys"].items()}
        out["models"] = self.merged["models"]
        out["model_snapshots"] = self.merged["model_snapshots"]
        out["model_info"] = self.merged["model_info"]
        out["effective"] = {p: dict(pc.knobs) for p, pc in self.providers.items()}
        return out


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def mask_key(key):
    """Show at most the last four characters of a key, and none of a short one."""
    if not key:
        return ""
    return "****" + key[-4:] if len(key) >= 8 else "****"


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ceil4(n):
    return (n + 3) // 4


def go_duration(seconds):
    """Format like Go's time.Duration.String(), which OpenAI uses in x-ratelimit-reset-*."""
    ms = int(round(max(seconds, 0.0) * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s = (f"{rem / 1000:.3f}".rstrip("0").rstrip(".") or "0") + "s"
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + s


def proto_duration(seconds):
    """google.protobuf.Duration JSON form: "47s", "0.512s"."""
    return (f"{seconds:.3f}".rstrip("0").rstrip(".") or "0") + "s"


def accepts_gzip(header):
    if not header:
        return False
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip()
            try:
                return not (q.startswith("q=") and float(q[2:] or 0) == 0)
            except ValueError:
                return True
    return False


def random_id(nbytes):
    return base64.urlsafe_b64encode(os.urandom(nbytes)).decode().rstrip("=")


def pid_alive(pid):
    """True while pid exists and is not a zombie (a dead, unreaped parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True


# ---------------------------------------------------------------------------
# Request analysis shared by all providers
# ---------------------------------------------------------------------------

DEFAULT_PERSONA_PATTERN = r"^\[(\d+)\] (.*)$"


def compile_persona_pattern(pattern, where):
    """Knob persona_pattern: a regex (compiled with re.MULTILINE) whose group 1 is the
    persona's number and group 2 the text searched for CLICK."""
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}: persona_pattern must be a non-empty string")
    try:
        rx = re.compile(pattern, re.M)
    except re.error as e:
        raise ConfigError(f"{where}: persona_pattern is not a valid regex: {e}")
    if rx.groups < 2:
        raise ConfigError(f"{where}: persona_pattern needs two groups (number, text)")
    return rx


def english_list(items):
    """'a', 'b', and 'c' (as OpenAI lists supported values)."""
    q = [f"'{i}'" for i in items]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + (", and " if len(q) > 2 else " and ") + q[-1]


def limit_answer(cfg, text, reasoning, max_tokens):
    """Reasoning first, then the answer, within max_tokens: (text, reasoning, cut)."""
    if max_tokens is None or not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return text, reasoning, False
    if reasoning >= max_tokens:
        return "", max_tokens, True
    room = max_tokens - reasoning
    if cfg.tokens(text) > room:
        return text[: room if cfg.char_tokens else room * 4], reasoning, True
    return text, reasoning, False


def no_schema_shape(req, json_mode):
    """json_object_key null: a bare array, unless a JSON mode (which must return an object)
    or a schema without a usable property is in force; then the usual "clicks"."""
    if req.key is None:
        if json_mode:
            req.key = "clicks"
        else:
            req.shape = "array"


class Req:
    """What the server understood from one provider request."""

    def __init__(self, provider):
        self.provider = provider
        self.model = None
        self.prompt = ""            # the user turn the personas are read from
        self.prompt_bytes = 0       # bytes of all prompt text, for usage
        self.shape = "object"       # "object" -> {key: [...]}, "array" -> [...]
        self.key = "clicks"
        self.item_type = "integer"  # integer | string | boolean
        self.percent = False        # answers in percent (0..100), not 0/1
        self.min_items = None
        self.max_items = None
        self.max_tokens = None
        self.truth = []
        self.presented_key = None
        self.t0 = time.monotonic()
        self.cache_text = ""        # every prompt text, in order: what caches match
        self.reasoning = 0          # tokens the model will think before answering
        self.service_tier = None    # OpenAI: what was asked
        self.params = []            # optional parameters, for stats params_by_model

    @property
    def prompt_tokens(self):
        return ceil4(self.prompt_bytes)


def analyze_personas(req, cfg, violate):
    """Read persona lines, compute the intended answers, flag count/numbering mistakes."""
    found = [(m.group(1), m.group(2) or "") for m in cfg.persona_re.finditer(req.prompt)]
    n = len(found)
    numbers = [to_int(k) for k, _ in found]
    if n == 0:
        violate("no persona lines ([k] ...) in the prompt")
    elif numbers != list(range(1, n + 1)) and not (
            cfg.custom_persona_pattern and numbers == list(range(n))):
        # a custom pattern (e.g. the old tool's [Persona k]) may also number from 0
        violate("persona numbering is not exactly 1..N")
    if req.min_items is not None and req.min_items != n:
        violate(f"prompt has {n} personas but schema minItems is {req.min_items}")
    if req.max_items is not None and req.max_items != n:
        violate(f"prompt has {n} personas but schema maxItems is {req.max_items}")
    req.truth = [persona_truth(text, ad_key(req.prompt), req.percent) for _, text in found]


AD_WANT_RE = re.compile(r"want:([A-Za-z0-9_]+)")


def ad_key(prompt):
    """The marker a persona must carry to click: `want:KEY` in the ad line, else CLICK."""
    for line in prompt.split("\n"):
        if line.startswith("Ad: "):
            m = AD_WANT_RE.search(line)
            if m:
                return m.group(1)
    return "CLICK"


def persona_truth(text, key, percent):
    """0/1: the persona's line holds the key.  Percent: `KEY=NN` gives NN, else 100 or 0."""
    if not percent:
        return 1 if key in text else 0
    m = re.search(re.escape(key) + r"=(\d{1,3})\b", text)
    if m and int(m.group(1)) <= 100:
        return int(m.group(1))
    return 100 if key in text else 0


def to_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def read_array_schema(req, schema):
    """Take minItems/maxItems and the item type from an array schema (either dialect)."""
    if not isinstance(schema, dict):
        return
    req.min_items = to_int(schema.get("minItems", schema.get("min_items")))
    req.max_items = to_int(schema.get("maxItems", schema.get("max_items")))
    items = schema.get("items")
    if isinstance(items, dict):
        t = str(items.get("type", "integer")).lower()
        if t in ("string", "boolean"):
            req.item_type = t
        top = items.get("maximum")
        if isinstance(top, (int, float)) and top > 1:
            req.percent = True


def pick_property(props):
    """The property the answer goes in: the only one, else the first array-typed one."""
    if not isinstance(props, dict) or not props:
        return None, None
    for name, sub in props.items():
        if isinstance(sub, dict) and str(sub.get("type", "")).lower() == "array":
            return name, sub
    name = next(iter(props))
    return name, props[name]


def render_values(req, values):
    if req.item_type == "string":
        return [str(v) for v in values]
    if req.item_type == "boolean":
        return [bool(v) if v in (0, 1) else v for v in values]
    return values


def answer_text(req, fault, spacing=False):
    """The JSON text the fake model 'writes', with content faults applied; spacing:
    "[1, 0, ...]" as every schema allows (knob answer_spacing)."""
    values = list(req.truth)
    kind = fault.kind if fault else None
    if kind == "wrong_length":
        extra = to_int(fault.param("extra", 0)) or 0
        if extra > 0:
            values += [0] * extra
        elif values:
            values.pop()
    elif kind == "non_binary":
        bad = 101 if req.percent else 2     # out of range for what was asked
        if values:
            values[len(values) // 2] = bad
        else:
            values.append(bad)
    values = render_values(req, values)
    obj = values if req.shape == "array" else {req.key: values}
    text = json.dumps(obj, separators=(", ", ": ") if spacing else (",", ":"))
    if kind == "prose":
        text = "Sure! Here are the predictions:\n" + text + "\nHope this helps."
    elif kind == "fence":
        text = "\n\n```json\n" + text + "\n```"
    return text


# ---------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------

class Reply:
    """A response to send, plus what it means for the stats."""

    def __init__(self, status, body=b"", headers=None, content_type="application/json"):
        self.status = status
        self.body = body if isinstance(body, bytes) else jdump(body)
        self.headers = list(headers or [])
        self.content_type = content_type
        self.transport = "normal"      # normal | reset | hang | slow | keepalive
        self.tparams = {}
        self.answered = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_cached = 0
        self.tokens_cache_write = 0
        self.tokens_reasoning = 0
        self.rejection = False         # issued by the rpm/tpm/concurrency limiters
        self.server = "cloudflare"
        self.service_tier = None       # OpenAI: the tier a 200 says it used
        self.cut = False               # the answer did not fit its output limit


HTML_502_CLOUDFLARE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n")
HTML_504_CLOUDFLARE = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n")


def google_html_error(code, title, text):
    """The Google Front End error page (what a 502/408 from Google looks like: HTML, not JSON)."""
    return (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
        f"  <title>Error {code} ({title})!!1</title>\n"
        "  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n"
        f"  <p><b>{code}.</b> <ins>That\u2019s an error.</ins>\n"
        f"  <p>{text}  <ins>That\u2019s all we know.</ins>\n").encode("utf-8")


# ---------------------------------------------------------------------------
# Provider adapters: parse + validate a request, shape replies and errors
# ---------------------------------------------------------------------------

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


# -- Gemini's proto schema, used to reject unknown fields like the real API ------

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


def rate_signal_headers(signal_, seconds):
    """Headers for one rate-limit signal (the body-borne signals add none)."""
    if signal_ == "retry_after":
        return [("retry-after", str(max(1, math.ceil(seconds))))]
    if signal_ == "retry_after_ms":
        return [("retry-after-ms", str(int(round(seconds * 1000))))]
    if signal_ == "retry_after_date":
        return [("retry-after", email.utils.formatdate(time.time() + seconds, usegmt=True))]
    return []


def shape_error(reply, fault):
    """An error fault's params.signal (header signals, on kinds other than rate_limit,
    which tells its own), params.headers and params.body: any wait hint, on any error,
    with any body -- empty, not JSON, or JSON of another shape."""
    p = fault.params
    if fault.kind != "rate_limit" and p.get("signal"):
        reply.headers += rate_signal_headers(p["signal"], float(p.get("seconds", 1)))
    reply.headers += list(p.get("headers", {}).items())
    if "body" in p:
        reply.body = p["body"].encode()
        try:
            json.loads(reply.body)
            reply.content_type = "application/json"
        except ValueError:
            reply.content_type = "text/plain; charset=utf-8"
    return reply


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


def strict_schema_problem(schema):
    """First strict-mode rule the json_schema breaks: (short violation, real API message)."""
    if not isinstance(schema, dict):
        return "schema missing", "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"None\"'."
    rtype = schema.get("type")
    if rtype != "object":
        return ("root is not an object",
                f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{rtype}\"'.")
    return _strict_walk(schema, ())


def _strict_walk(schema, ctx):
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    is_object = t == "object" or (isinstance(t, list) and "object" in t)
    if is_object:
        if schema.get("additionalProperties") is not False:
            return ("additionalProperties:false missing",
                    f"In context={ctx!r}, 'additionalProperties' is required to be supplied "
                    "and to be false.")
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [k for k in props if k not in required]
        if missing:
            return (f"property {missing[0]!r} not in required",
                    f"In context={ctx!r}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'.")
        for name, sub in props.items():
            found = _strict_walk(sub, ctx + ("properties", name))
            if found:
                return found
    if isinstance(schema.get("items"), dict):
        found = _strict_walk(schema["items"], ctx + ("items",))
        if found:
            return found
    for key in ("anyOf", "$defs", "definitions"):
        sub = schema.get(key)
        entries = sub.items() if isinstance(sub, dict) else enumerate(sub or [])
        for name, s in entries:
            found = _strict_walk(s, ctx + (key, name))
            if found:
                return found
    return None


ADAPTERS = {"openai": OpenAIAdapter(), "deepseek": DeepSeekAdapter(), "gemini": GeminiAdapter()}

# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------

GEMINI_PATH_RE = re.compile(r"^/gemini/(v1beta|v1)/models/([^/:]+):generateContent$")


MODELS_ROUTES = {"/openai/v1/models": "openai", "/deepseek/models": "deepseek",
                 "/deepseek/v1/models": "deepseek", "/gemini/v1beta/models": "gemini"}


def route(path):
    """(provider, route params) for a provider path; params None means 'no such route';
    ("models", None) is the model list."""
    if path in MODELS_ROUTES:
        return MODELS_ROUTES[path], ("models", None)
    if path == "/openai/v1/chat/completions":
        return "openai", ()
    if path in ("/deepseek/chat/completions", "/deepseek/v1/chat/completions"):
        return "deepseek", ()
    m = GEMINI_PATH_RE.match(path)
    if m:
        return "gemini", (m.group(1), unquote(m.group(2)))
    for p in PROVIDERS:
        if path.startswith(f"/{p}/"):
            return p, None
    return None, None


def unknown_route(provider, method, path):
    if provider == "gemini":
        return ADAPTERS["gemini"].error(404, "NOT_FOUND", f"Method not found: {path}")
    a = ADAPTERS[provider]
    return a.error(404, f"Invalid URL ({method} {path})")


# ---------------------------------------------------------------------------
# State: stats, limiters, fault sequence
# ---------------------------------------------------------------------------

class ProviderState:
    """Counters and sliding windows of one provider.  Guarded by App.lock."""

    def __init__(self):
        self.in_flight = 0          # survives reset: requests are still running
        self.in_flight_by_model = {}
        # the prompt cache survives reset (a provider's does); a new config empties it
        self.cache = {}             # model -> {"seen": {hash: expiry}, "units": {...}}
        self.reset()

    def reset(self):
        self.requests = 0
        self.status = {}
        self.faults = {}
        self.max_in_flight = self.in_flight
        self.max_in_flight_by_model = {m: n for m, n in self.in_flight_by_model.items() if n}
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_cached = 0
        self.tokens_cache_write = 0
        self.tokens_reasoning = 0
        self.service_tiers = {}     # service_tier answered -> count
        self.params_by_model = {}   # model -> set of optional parameters seen
        self.models_requests = 0    # GET .../models
        self.bodies = set()         # digests of the request bodies seen
        self.identical_repeats = 0  # requests whose body was seen before
        self.answered_personas = 0
        self.rejections = 0
        self.max_rate_observed = 0
        self.first_request_at = None
        self.last_request_at = None
        self.models_seen = set()
        self.user_agents_seen = set()
        self.accept_encoding_seen = set()
        self.arrivals = deque()     # every request, for max_rate_observed
        self.admitted = deque()     # requests the rpm limiter let through
        self.token_log = deque()    # (time, tokens) for tpm and x-ratelimit-*-tokens
        self.token_sum = 0
        self.seq = 0                # per-provider order, drives fault picking
        self.seq_by_model = {}      # the same per model, for faults with "model"

    def snapshot(self):
        return {
            "requests": self.requests,
            "status": dict(self.status),
            "faults": dict(self.faults),
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
            "in_flight_by_model": {m: n for m, n in self.in_flight_by_model.items() if n},
            "max_in_flight_by_model": dict(self.max_in_flight_by_model),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cached": self.tokens_cached,
            "tokens_cache_write": self.tokens_cache_write,
            "tokens_reasoning": self.tokens_reasoning,
            "service_tiers": dict(self.service_tiers),
            "params_by_model": {m: sorted(p) for m, p in self.params_by_model.items()},
            "models_requests": self.models_requests,
            "identical_repeats": self.identical_repeats,
            "answered_personas": self.answered_personas,
            "rejections": self.rejections,
            "max_rate_observed": self.max_rate_observed,
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
            "models_seen": sorted(self.models_seen),
            "user_agents_seen": sorted(self.user_agents_seen),
            "accept_encoding_seen": sorted(self.accept_encoding_seen),
        }


def prune(window, horizon):
    """Drop timestamps at or before horizon from the left of a sorted deque."""
    while window and window[0] <= horizon:
        window.popleft()


class RequestLog:
    """Optional JSON-lines request log.  Never contains keys or Authorization values."""

    def __init__(self, path, prompts=False):
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1, encoding="utf-8") if path else None
        self.prompts = prompts      # --log-prompts: each request's whole user turn

    def write(self, entry):
        if self.f:
            line = json.dumps(entry, separators=(",", ":"))
            with self.lock:
                self.f.write(line + "\n")

    def close(self):
        if self.f:
            self.f.close()


def redact_query(path):
    """Drop the value of ?key= so a Gemini key sent in the URL never reaches the log."""
    if "?" not in path:
        return path
    base, _, q = path.partition("?")
    parts = [(k, "REDACTED" if k.lower() == "key" else v) for k, v in parse_qsl(q, True)]
    return base + "?" + "&".join(f"{k}={v}" for k, v in parts)


class App:
    """Everything behind the HTTP layer: config, state, the request pipeline."""

    def __init__(self, config, log):
        self.lock = threading.Lock()
        self.config = config
        self.log = log
        self.state = {p: ProviderState() for p in PROVIDERS}
        self.violations = []
        self.violation_counts = {}
        self.started = time.monotonic()
        self.outage_until = 0.0     # monotonic time; see /_control/outage

    def in_outage(self):
        return time.monotonic() < self.outage_until

    # -- control ----------------------------------------------------------
    def set_config(self, config):
        with self.lock:
            self.config = config
            for st in self.state.values():
                st.seq = 0          # "first: N" counts from the new config
                st.seq_by_model = {}
                st.cache = {}

    def reset(self):
        with self.lock:
            for st in self.state.values():
                st.reset()
            self.violations = []
            self.violation_counts = {}

    def stats(self):
        with self.lock:
            out = {p: st.snapshot() for p, st in self.state.items()}
            out["violations"] = list(self.violations)
            out["violation_counts"] = dict(self.violation_counts)
            out["now"] = time.monotonic()
            out["uptime_s"] = round(time.monotonic() - self.started, 3)
        return out

    def violate(self, provider, text):
        entry = f"{provider}: {text}"
        with self.lock:
            if len(self.violations) < VIOLATION_LIST_CAP:
                self.violations.append(entry)
            self.violation_counts[entry] = self.violation_counts.get(entry, 0) + 1
        return entry

    # -- limiter views ----------------------------------------------------
    def ratelimit_snapshot(self, provider, cfg):
        """Values for OpenAI's x-ratelimit-* headers, from the sliding windows."""
        now = time.monotonic()
        limit_r = cfg.rpm or 5000
        limit_t = cfg.tpm or 200000
        with self.lock:
            st = self.state[provider]
            prune(st.admitted, now - cfg.window_s)
            self._prune_tokens(st, now - cfg.window_s)
            used_r, used_t = len(st.admitted), st.token_sum
        # Token-bucket reading: time to refill what was used (5000 rpm, 1 used -> 12ms).
        return {"limit_requests": limit_r, "limit_tokens": limit_t,
                "remaining_requests": max(0, limit_r - used_r),
                "remaining_tokens": max(0, limit_t - used_t),
                "reset_requests": used_r * cfg.window_s / limit_r,
                "reset_tokens": used_t * cfg.window_s / limit_t}

    @staticmethod
    def _prune_tokens(st, horizon):
        while st.token_log and st.token_log[0][0] <= horizon:
            st.token_sum -= st.token_log.popleft()[1]

    # -- the pipeline -----------------------------------------------------
    def arrive(self, provider, cfg, headers, model=None):
        now = time.monotonic()
        ua = headers.get("User-Agent")
        ae = headers.get("Accept-Encoding")
        with self.lock:
            st = self.state[provider]
            st.requests += 1
            st.in_flight += 1
            st.in_flight_by_model[model] = st.in_flight_by_model.get(model, 0) + 1
            st.max_in_flight_by_model[model] = max(st.max_in_flight_by_model.get(model, 0),
                                                   st.in_flight_by_model[model])
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
            if st.first_request_at is None:
                st.first_request_at = now
            st.last_request_at = now
            st.arrivals.append(now)
            prune(st.arrivals, now - cfg.window_s)
            st.max_rate_observed = max(st.max_rate_observed, len(st.arrivals))
            if ua and len(st.user_agents_seen) < 50:
                st.user_agents_seen.add(ua)
            if ae and len(st.accept_encoding_seen) < 50:
                st.accept_encoding_seen.add(ae)
            seq = st.seq
            st.seq += 1
            model_seq = st.seq_by_model.get(model, 0)
            st.seq_by_model[model] = model_seq + 1
            return (seq, model_seq), st.in_flight

    def depart(self, provider, reply, fault_kind, model=None):
        with self.lock:
            st = self.state[provider]
            st.in_flight -= 1
            st.in_flight_by_model[model] = st.in_flight_by_model.get(model, 1) - 1
            key = str(reply.status) if reply and reply.transport not in ("reset", "hang") else "closed"
            st.status[key] = st.status.get(key, 0) + 1
            if fault_kind:
                st.faults[fault_kind] = st.faults.get(fault_kind, 0) + 1
            if reply:
                st.tokens_in += reply.tokens_in
                st.tokens_out += reply.tokens_out
                st.tokens_cached += reply.tokens_cached
                st.tokens_cache_write += reply.tokens_cache_write
                st.tokens_reasoning += reply.tokens_reasoning
                if reply.service_tier:
                    st.service_tiers[reply.service_tier] = st.service_tiers.get(reply.service_tier, 0) + 1
                st.answered_personas += reply.answered
                if reply.rejection:
                    st.rejections += 1

    def admit_rpm(self, provider, cfg):
        """Sliding-window request limit; returns seconds to wait, or None when admitted."""
        now = time.monotonic()
        with self.lock:
            st = self.state[provider]
            prune(st.admitted, now - cfg.window_s)
            if cfg.rpm is not None and len(st.admitted) >= cfg.rpm:
                return max(0.001, st.admitted[0] + cfg.window_s - now)
            st.admitted.append(now)
            return None

    def admit_tokens(self, provider, cfg, tokens):
        """Sliding-window token limit (prompt + max tokens, as OpenAI estimates it)."""
        now = time.monotonic()
        with self.lock:
            st = self.state[provider]
            self._prune_tokens(st, now - cfg.window_s)
            if cfg.tpm is not None and st.token_log and st.token_sum + tokens > cfg.tpm:
                return max(0.001, st.token_log[0][0] + cfg.window_s - now), st.token_sum
            st.token_log.append((now, tokens))
            st.token_sum += tokens
            return None, st.token_sum

    def prompt_cache(self, provider, cfg, req, min_tokens, writes, units=False):
        """Cached (and written) prompt tokens of req, by the provider's rule
        (providers-2026-12.md):
          OpenAI, Gemini: the longest prefix identical to a recent request's, in whole
            128-token chunks (512 bytes here), if at least min_tokens long; newer OpenAI
            models report what they wrote to the cache (the rest, from min_tokens on);
          DeepSeek (units): "prefix units" are kept at the end of each request and where
            a prefix common to two requests is found; a request hits only units it matches
            in full, in 64-token (256-byte) steps.
        Entries live cache_ttl_s from their last use.  Knob prompt_cache false: none."""
        if not cfg.prompt_cache or req.model is None:
            return 0, 0
        data = req.cache_text.encode("utf-8")
        chunk = 256 if units else 512
        chain, h = [], b""
        for k in range(len(data) // chunk):
            h = hashlib.blake2b(h + data[k * chunk:(k + 1) * chunk], digest_size=16).digest()
            chain.append(h)
        now = time.monotonic()
        until = now + cfg.cache_ttl_s
        with self.lock:
            store = self.state[provider].cache.setdefault(req.model, {"seen": {}, "units": {}})
            seen, unit_set = store["seen"], store["units"]
            if len(seen) > 200000:          # forget what expired, now and then
                for d in (seen, unit_set):
                    for key in [k for k, e in d.items() if e <= now]:
                        del d[key]

            def alive(d, key):
                return d.get(key, 0) > now

            if units:
                hit = max((k + 1 for k in range(len(chain)) if alive(unit_set, chain[k])), default=0)
                lcp = 0
                while lcp < len(chain) and alive(seen, chain[lcp]):
                    lcp += 1
                if lcp:
                    unit_set[chain[lcp - 1]] = until
                if chain:
                    unit_set[chain[-1]] = until
                for key in chain:
                    seen[key] = until
                return min(hit * 64, req.prompt_tokens), 0
            hit = 0
            while hit < len(chain) and alive(seen, chain[hit]):
                hit += 1
            for key in chain:
                seen[key] = until
        min_chunks = -(-min_tokens // 128)
        cached = hit * 128 if hit >= min_chunks else 0
        written = (len(chain) - hit) * 128 if writes and len(chain) >= min_chunks else 0
        cached = min(cached, req.prompt_tokens)
        return cached, min(written, req.prompt_tokens - cached)

    def pick_fault(self, cfg, seq, model=None):
        """At most one fault, chosen by an RNG seeded from (seed, provider, request number),
        so the outcome of request #n does not depend on thread timing.  A fault with a
        "model" applies only to that model's requests and counts "first"/"after" in them."""
        if not cfg.faults:
            return None
        seq, model_seq = seq
        rng = random.Random(f"{cfg.seed}|{cfg.name}|{seq}")
        for f in cfg.faults:
            n = seq
            if f.model is not None:
                if f.model != model:
                    continue
                n = model_seq
            if f.first is not None and n >= f.first:
                continue
            if f.after is not None and n < f.after:
                continue
            if rng.random() < f.rate:
                return f
        return None

    def authorize(self, provider, headers, query):
        """The key check every route starts with: (cfg, adapter, key, the violations list, a
        function that records one, and the provider's auth error or None)."""
        cfg = self.config.providers[provider]
        a = ADAPTERS[provider]
        violated = []

        def violate(text):
            violated.append(self.violate(provider, text))

        key, in_url, malformed = a.presented_key(headers, query)
        if in_url:
            violate("key sent in URL")
        if key != cfg.key:
            violate("missing API key" if key is None else "wrong API key")
            return cfg, a, key, violated, violate, a.auth_error(key, malformed)
        return cfg, a, key, violated, violate, None

    def process(self, provider, route_params, headers, query, raw, in_flight, seq):
        """Run one provider request through auth, limiters, validation and faults."""
        cfg, a, key, violated, violate, refused = self.authorize(provider, headers, query)
        if refused is not None:
            return refused, None, None, violated
        reply = self.request_limits(a, cfg, key, in_flight, raw, route_params)
        if reply is not None:
            return reply, None, None, violated
        if cfg.latency_s:
            time.sleep(cfg.latency_s)
        req, err = a.parse(raw, route_params, cfg, violate)
        if err:
            return err, None, None, violated
        req.presented_key = key
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        with self.lock:
            st = self.state[provider]
            if digest in st.bodies:
                st.identical_repeats += 1
            elif len(st.bodies) < 200000:
                st.bodies.add(digest)
        # Tokens are tracked for OpenAI's x-ratelimit-*-tokens headers even without tpm.
        if cfg.tpm is not None or provider == "openai":
            est = req.prompt_tokens + (to_int(req.max_tokens) or 0)
            wait, used = self.admit_tokens(provider, cfg, est)
            if wait is not None:
                reply = a.limiter_429(req, cfg, self, wait, "tokens", cfg.tpm, used)
                reply.rejection = True
                return reply, req, None, violated
        fault = self.pick_fault(cfg, seq, req.model)
        return self.answer(a, req, fault, cfg), req, fault, violated

    def list_models(self, provider, headers, query, in_flight, seq):
        """GET .../models: auth, limits, error faults and reset/hang as for any request, then the
        provider's list (OpenAI with shutdown_date where one is announced, Gemini in
        pages of models_page_size, with token limits and supported methods)."""
        cfg, a, key, violated, violate, refused = self.authorize(provider, headers, query)
        if refused is not None:
            return refused, None, violated
        reply = self.request_limits(a, cfg, key, in_flight, b"", ("models", None))
        if reply is not None:
            return reply, None, violated
        with self.lock:
            self.state[provider].models_requests += 1
        probe = Req(provider)
        probe.presented_key = key
        fault = self.pick_fault(cfg, seq, None)
        if fault and fault.kind in ERROR_FAULTS and fault.kind != "flex_unavailable":
            return a.fault_error(fault.kind, fault, probe, cfg, self), fault, violated
        if fault and fault.kind in ("reset", "hang"):
            return self.answer(a, probe, fault, cfg), fault, violated
        return a.model_list(cfg, query, violate), None, violated

    def request_limits(self, a, cfg, key, in_flight, raw, route_params):
        """The 429 from max_concurrency or rpm, in the provider's style; None if admitted."""
        probe = Req(cfg.name)
        probe.presented_key = key
        if cfg.max_concurrency is not None and in_flight > cfg.max_concurrency:
            # DeepSeek's concurrency 429 is immediate and says nothing about when to retry.
            reply = a.rate_limited(probe, cfg, self, 1.0, "none")
        else:
            wait = self.admit_rpm(cfg.name, cfg)
            if wait is None:
                return None
            probe.model = sniff_model(raw, route_params)
            reply = a.limiter_429(probe, cfg, self, wait, "requests", cfg.rpm, cfg.rpm)
        reply.rejection = True
        return reply

    def answer(self, a, req, fault, cfg):
        if fault and fault.kind == "flex_unavailable" and req.service_tier != "flex":
            fault = None            # only flex requests can find flex out of capacity
        kind = fault.kind if fault else None
        if kind in ERROR_FAULTS or (kind == "insufficient_system_resource" and a.name != "deepseek"):
            return shape_error(a.fault_error(kind, fault, req, cfg, self), fault)
        if kind in ("reset", "hang"):
            reply = Reply(0)
            reply.transport = kind
            reply.tparams = {"seconds": float(fault.param("seconds", 5))}
            return reply
        reply = a.completion(req, answer_text(req, fault, cfg.answer_spacing), fault, cfg, self)
        if kind == "empty_body":
            reply.body = b""
            reply.tokens_in = reply.tokens_out = 0
        if kind in CLEAN_ANSWER_FAULTS and not reply.cut:
            reply.answered = len(req.truth)
        if kind == "slow_body":
            reply.transport = "slow"
            reply.tparams = {"seconds": float(fault.param("seconds", 2))}
        elif kind == "keepalive_blank_lines":
            reply.transport = "keepalive"
            reply.tparams = {"seconds": float(fault.param("seconds", 2)),
                             "interval_ms": float(fault.param("interval_ms", 200)),
                             "then": fault.param("then", "body")}
        return reply


def sniff_model(raw, route_params):
    """Model name for a limiter message, without full validation."""
    if route_params:
        return route_params[1]      # Gemini's from the path; None for the model list
    try:
        m = json.loads(raw).get("model")
        return m if isinstance(m, str) else None
    except (ValueError, AttributeError):
        return None


# ---------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------

class BadRequestBody(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive + Content-Length
    server_header = "fake-provider"

    def setup(self):
        super().setup()
        # Headers and body go out in one write, but small control replies and the
        # slow/keep-alive modes write several times; no Nagle delay for them.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):   # quiet: the request log is --log
        pass

    def version_string(self):
        return self.server_header

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # -- request body -----------------------------------------------------
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise BadRequestBody("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0 or n > MAX_BODY:
            raise BadRequestBody("body too large")
        return self.rfile.read(n)

    # -- dispatch ---------------------------------------------------------
    def dispatch(self, method):
        app = self.server.app
        path, _, qs = self.path.partition("?")
        try:
            raw = self.read_body()
        except (BadRequestBody, ValueError):
            self.close_connection = True
            self.send_plain(413, {"error": "request body unreadable or too large"})
            return
        if path.startswith("/_control/"):
            self.control(app, method, path, raw)
            return
        provider, params = route(path)
        if provider is None:
            self.send_plain(404, {"error": f"no such route: {path}"})
            return
        cfg = app.config.providers[provider]
        arrived_model = sniff_model(raw, params) if params is not None else None
        seq, in_flight = app.arrive(provider, cfg, self.headers, arrived_model)
        reply, req, fault, violated = None, None, None, []
        t0 = time.monotonic()
        finished = False

        def done():
            # Book-keeping runs just before the last byte (or the close) goes out, so a
            # client that reads its response and then asks for stats sees it counted.
            nonlocal finished
            if finished:
                return
            finished = True
            app.depart(provider, reply, fault.kind if fault else None, arrived_model)
            app.log.write({
                "t": round(time.time(), 3), "provider": provider, "method": method,
                "path": redact_query(self.path), "status": reply.status if reply else None,
                "transport": reply.transport if reply else None,
                "fault": fault.kind if fault else None,
                "model": req.model if req else None,
                "personas": len(req.truth) if req else None,
                "prompt_head": req.prompt[:16] if req else None,
                **({"prompt": req.prompt} if req and app.log.prompts else {}),
                "ms": round((time.monotonic() - t0) * 1000, 2),
                "violations": violated,
            })

        try:
            listing = params is not None and params[:1] == ("models",)
            if params is None or method != ("GET" if listing else "POST"):
                violated.append(app.violate(provider, f"unknown route {method} {path}"))
                reply = unknown_route(provider, method, path)
            elif listing:
                query = dict(parse_qsl(qs, keep_blank_values=True))
                reply, fault, violated = app.list_models(provider, self.headers, query,
                                                         in_flight, seq)
            else:
                query = dict(parse_qsl(qs, keep_blank_values=True))
                reply, req, fault, violated = app.process(
                    provider, params, self.headers, query, raw, in_flight, seq)
            model = req.model if req is not None else None
            if model is None and params is not None and not listing:
                model = sniff_model(raw, params)
            if model:
                with app.lock:
                    app.state[provider].models_seen.add(model)
                    if req is not None and len(app.state[provider].params_by_model) < 50:
                        app.state[provider].params_by_model.setdefault(model, set()).update(req.params)
            if app.in_outage():
                # the server "went down" while this request was in flight
                reply = Reply(reply.status if reply else 500)
                reply.transport = "reset"
            self.transmit(reply, cfg, done)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        finally:
            done()

    def hold_until_closed(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    return          # the client closed its end
                time.sleep(min(left, 0.05))

    def control(self, app, method, path, raw):
        if path == "/_control/health" and method == "GET":
            return self.send_plain(200, {"ok": True, "pid": os.getpid(),
                                         "port": self.server.server_address[1]})
        if path == "/_control/stats" and method == "GET":
            return self.send_plain(200, app.stats())
        if path == "/_control/config" and method == "GET":
            return self.send_plain(200, app.config.describe())
        if path == "/_control/config" and method == "POST":
            try:
                cfg = Config(json.loads(raw or b"{}"))
            except (ValueError, ConfigError) as e:
                return self.send_plain(400, {"error": str(e)})
            app.set_config(cfg)
            return self.send_plain(200, cfg.describe())
        if path == "/_control/reset" and method == "POST":
            app.reset()
            return self.send_plain(200, {"ok": True})
        if path == "/_control/outage" and method == "POST":
            try:
                seconds = float(json.loads(raw or b"{}").get("seconds", 1))
            except (ValueError, AttributeError, TypeError):
                return self.send_plain(400, {"error": "seconds must be a number"})
            app.outage_until = time.monotonic() + max(0.0, seconds)
            return self.send_plain(200, {"ok": True, "seconds": seconds})
        return self.send_plain(404, {"error": f"no such control route: {method} {path}"})

    # -- response writing -------------------------------------------------
    def send_plain(self, status, obj):
        reply = Reply(status, obj)
        reply.server = "fake-provider"
        self.transmit(reply, None, lambda: None)

    def transmit(self, reply, cfg, done):
        """Send reply as its transport mode says; call done() right before the last write."""
        if reply.transport == "reset":
            done()
            return self.reset_socket()
        if reply.transport == "hang":
            # Hold the connection, then close it without a byte of response; a
            # client that gives up first closes it, and then the hang ends there
            self.hold_until_closed(reply.tparams["seconds"])
            done()
            self.close_connection = True
            return None
        body = reply.body
        extra = []
        keepalive = reply.transport == "keepalive"
        if (cfg is not None and cfg.gzip and body and not keepalive
                and accepts_gzip(self.headers.get("Accept-Encoding"))):
            body = gzip.compress(body, compresslevel=1, mtime=0)
            extra = [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        self.server_header = reply.server
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for k, v in reply.headers + extra:
            self.send_header(k, v)
        if keepalive:
            return self.send_keepalive(body, reply.tparams, done)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        if reply.transport == "slow":
            self.end_headers()
            return self.send_slowly(body, reply.tparams["seconds"], done)
        # One write for headers + body (BaseHTTPRequestHandler buffers headers).
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        done()
        self.flush_headers()
        return None

    def send_slowly(self, body, seconds, done):
        pieces = max(1, min(len(body), 10))
        step = math.ceil(len(body) / pieces) if body else 0
        pause = seconds / pieces
        for i in range(pieces):
            time.sleep(pause)
            if i == pieces - 1:
                done()
            self.wfile.write(body[i * step:(i + 1) * step])

    def send_keepalive(self, body, p, done):
        """DeepSeek under load: 200 + headers now, blank lines while 'queued', then the body.
        No Content-Length, so the connection closes to end the body."""
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        deadline = time.monotonic() + p["seconds"]
        interval = max(p["interval_ms"], 1) / 1000.0
        while time.monotonic() < deadline:
            self.wfile.write(b"\n")
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        done()
        if p.get("then", "body") == "body":
            self.wfile.write(body)

    def reset_socket(self):
        """Abort with a TCP RST instead of a FIN: SO_LINGER 0, then close.  The fd really
        closes when finish() drops rfile; the server's shutdown(SHUT_WR) then fails
        quietly on the closed socket, so no FIN is sent first."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True           # a hanging handler never blocks exit
    allow_reuse_address = True
    request_queue_size = 512        # many clients connect at once

    def server_bind(self):
        # Skip HTTPServer's getfqdn(): a reverse DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def verify_request(self, request, client_address):
        # during an outage every new connection is reset at once, as by a
        # server that is down (the requests never reach a handler)
        if self.app.in_outage():
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            return False
        return True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return                  # clients going away is normal in fault tests
        super().handle_error(request, client_address)


# ---------------------------------------------------------------------------
# Process lifecycle
# ---------------------------------------------------------------------------

def load_config_arg(value):
    if value is None:
        return {}
    text = value.strip()
    if not text.startswith("{"):
        with open(value.lstrip("@"), encoding="utf-8") as f:
            text = f.read()
    return json.loads(text)


def write_port_file(path, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)           # readers never see a partial file


def watch_parent(pid, stop):
    while True:
        time.sleep(1.0)
        if not pid_alive(pid):
            stop()
            return


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--log", help="JSON-lines request log (no keys are ever written)")
    ap.add_argument("--log-prompts", action="store_true",
                    help="the log gets each request's whole user turn, as the server decoded it")
    ap.add_argument("--config", help="initial knobs: JSON text, or a path to a JSON file")
    ap.add_argument("--parent-pid", type=int, help="exit when this process disappears")
    args = ap.parse_args(argv)

    try:
        config = Config(load_config_arg(args.config))
    except (ValueError, OSError, ConfigError) as e:
        print(f"provider_server: bad --config: {e}", file=sys.stderr)
        return 2
    log = RequestLog(args.log, args.log_prompts)
    server = FakeServer(("127.0.0.1", args.port), Handler)
    server.app = App(config, log)
    port = server.server_address[1]

    stopping = threading.Event()

    def stop(*_):
        # shutdown() waits for serve_forever(), so never call it on the serving thread.
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        threading.Thread(target=watch_parent, args=(args.parent_pid, stop), daemon=True).start()
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"provider_server listening on 127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
