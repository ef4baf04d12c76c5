"""
The knobs: their defaults, the model table, the fault kinds, and their validation
into an immutable Config (one ProviderConfig per provider).  Set with --config or
POST /_control/config; every other module only reads what is built here.
"""

import json
import re

from .wire import ceil4, mask_key

PROVIDERS = ("openai", "deepseek", "gemini")
DEFAULT_PERSONA_PATTERN = r"^\[(\d+)\] (.*)$"

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
    "persona_pattern": DEFAULT_PERSONA_PATTERN,
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


def load_config_arg(value):
    if value is None:
        return {}
    text = value.strip()
    if not text.startswith("{"):
        with open(value.lstrip("@"), encoding="utf-8") as f:
            text = f.read()
    return json.loads(text)
