"""
What a request asks and what the fake model answers, for every provider: Req,
the persona lines and their truth (CLICK / want:KEY), the answer shape read
from a schema, the output-token limit, and the answer text with content faults.
"""

import json
import re
import time

from .wire import ceil4, to_int


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
