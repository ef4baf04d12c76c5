#!/usr/bin/python3
"""baseline.py -- a faithful re-implementation of the click predictor ctr_dist replaces.

The original is the Python tool in github.com/Ezrill-Lin/wisteria-ctr-studio at commit
30651dc (CTRPrediction/llm_click_model.py + base_client.py + openai_client.py +
deepseek_client.py + gemini_client.py).  This file re-implements its *algorithm* -- not its
code -- so that ctr_dist can be benchmarked against it on the same personas and the same
(fake or real) providers:

  * personas are cut into consecutive batches of --batch-size;
  * batch i goes to provider i mod P (P = providers that have an API key, in list order);
  * ALL batches are started at once with asyncio.gather (no concurrency cap, no rate limit);
  * each batch sends the old prompt, word for word (see prompt_format.md);
  * the answer goes through the old parser: the "truncation fix" that cuts the answer text
    to 2n+1 characters, json.loads, a regex fallback, then zero-padding / trimming to n;
  * any error (HTTP error after the SDK's own retries, transport error, unparseable answer)
    silently replaces the whole batch by the old mock heuristic (random.Random(1337)).

The SDKs the old tool went through (openai 2.8.1 for OpenAI and DeepSeek, google-generativeai
0.8.x for Gemini) are not installed here; their observable behaviour -- request body, retries,
backoff, timeouts, which failures raise -- is re-implemented on aiohttp.  See prompt_format.md
for every rule and its source line.

Only Debian packages are needed:  apt-get install -y python3-aiohttp ; run with /usr/bin/python3.
"""

import argparse
import asyncio
import csv
import email.utils
import json
import math
import os
import platform as _platform
import random
import re
import sys
import time

try:
    import aiohttp
except ImportError:  # pragma: no cover
    sys.stderr.write("baseline.py needs aiohttp: apt-get install -y python3-aiohttp, "
                     "and run it with /usr/bin/python3\n")
    sys.exit(2)

csv.field_size_limit(1 << 30)

# ---------------------------------------------------------------------------------------------
# What the old tool was configured with (llm_click_model.py:69-73, clients' __init__)
# ---------------------------------------------------------------------------------------------

PROVIDERS = ("openai", "deepseek", "gemini")
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "deepseek": "deepseek-chat",
                  "gemini": "gemini-1.5-flash"}
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1",
                     "deepseek": "https://api.deepseek.com",
                     "gemini": "https://generativelanguage.googleapis.com/v1beta"}
KEY_ENV = {"openai": "OPENAI_API_KEY", "deepseek": "DEEPSEEK_API_KEY",
           "gemini": "GEMINI_API_KEY"}
# Where the SDKs / clients read a base URL from the environment.
BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "deepseek": "DEEPSEEK_API_BASE",
                "gemini": None}

SYSTEM_TEXT = "You are a precise decision engine that outputs strict JSON."

# openai-python 2.8.1 (the release current on 2025-11-18, the date of commit 30651dc):
# _constants.py and _base_client.py.
OPENAI_SDK_VERSION = "2.8.1"
OPENAI_MAX_RETRIES = 2              # DEFAULT_MAX_RETRIES
OPENAI_INITIAL_RETRY_DELAY = 0.5
OPENAI_MAX_RETRY_DELAY = 8.0
OPENAI_CONNECT_TIMEOUT = 5.0        # DEFAULT_TIMEOUT = Timeout(600, connect=5)
OPENAI_READ_TIMEOUT = 600.0

# google-ai-generativelanguage v1beta, GenerativeService.GenerateContent defaults (used by
# google-generativeai's GenerativeModel.generate_content_async when no request_options):
# AsyncRetry(initial=1.0, maximum=10.0, multiplier=1.3, predicate=ServiceUnavailable,
# deadline=60.0), default_timeout=60.0.
GEMINI_RETRY_INITIAL = 1.0
GEMINI_RETRY_MAX = 10.0
GEMINI_RETRY_MULT = 1.3
GEMINI_DEADLINE = 60.0

# ---------------------------------------------------------------------------------------------
# Prompt (base_client.py:10-100)
# ---------------------------------------------------------------------------------------------

PLATFORM_CONTEXTS = {
    "facebook": "This ad appears in users' Facebook news feed while they browse social content.",
    "tiktok": "This ad appears between TikTok videos as users scroll through short-form content.",
    "amazon": "This ad appears on Amazon while users are shopping or browsing products.",
}

RULES = "\n".join([
    "",
    "",
    "Instructions:",
    "- For each persona below, decide if that person would click the ad based on their "
    "demographics, personality traits (Big Five), and persona description.",
    "- Consider how the ad content aligns with their interests, values, needs, and behavioral "
    "tendencies.",
    "- Output ONLY a simple JSON list of 0/1 integers, no commentary or explanation.",
    "- Format: [0,1,0,1] (compact, NO SPACES between elements)",
    "- NOT this: [0, 1, 0, 1] (no spaces after commas)",
    "- NOT objects: [{'0':0}] or nested structures",
    "- The array length must equal the number of personas.",
    "- 1 means 'would click', 0 means 'would not click'.",
    "- Stop after closing bracket ']'",
    "",
])

PERSONAS_HEADER = "\n\nPersonas to evaluate:\n" + "=" * 80 + "\n\n"


def persona_record(idx, p):
    """One persona as the old tool writes it: four lines, numbered from 0 within the batch.

    A missing key prints N/A; a key that is present with a null value prints None (Python's
    str(None)), exactly as the old f-strings do.
    """
    d = p.get("demographics", {})
    s = p.get("personality", {}).get("scores", {})

    def g(m, k):
        return m.get(k, "N/A")

    return ("[Persona %s]\n" % idx
            + "Demographics: Age=%s, Gender=%s, State=%s, Race=%s, Education=%s, Occupation=%s\n"
            % (g(d, "age"), g(d, "gender"), g(d, "state"), g(d, "race"),
               g(d, "educational_attainment"), g(d, "occupation"))
            + "Personality (Big Five): Openness=%s, Conscientiousness=%s, Extraversion=%s, "
              "Agreeableness=%s, Neuroticism=%s\n"
            % (g(s, "openness"), g(s, "conscientiousness"), g(s, "extraversion"),
               g(s, "agreeableness"), g(s, "neuroticism"))
            + "Description: %s\n" % (p.get("description", "N/A"),))


def build_prompt(ad_text, personas, ad_platform):
    ctx = PLATFORM_CONTEXTS.get(ad_platform.lower(), PLATFORM_CONTEXTS["facebook"])
    head = ("Task: You are evaluating whether people would click on an advertisement based on "
            "their detailed personas.\n"
            "Platform Context: " + ctx + "\n\n"
            "Advertisement:\n")
    records = [persona_record(i, p) for i, p in enumerate(personas)]
    return head + ad_text + RULES + PERSONAS_HEADER + "\n".join(records)


# ---------------------------------------------------------------------------------------------
# Answer parsing (base_client.py:103-177, 362-382)
# ---------------------------------------------------------------------------------------------

ARRAY_RE = re.compile(r"\[(?:\s*\d\s*,?\s*)+\]")   # the old fallback pattern, unchanged


def cut_to_expected(text, n):
    """The old "truncation fix": strip, then force the text to len('[0,1,...]') = 2n+1.

    Returns (text, changed).  Longer text is cut to 2n characters plus ']'; text of exactly
    2n characters not ending in ']' gets a ']'.  This runs on EVERY answer, not only on
    open-source models, so e.g. '{"clicks":[...]}' or '[0, 1, 0]' are cut mid-array.
    """
    s = text.strip()
    target = 2 * n + 1
    if len(s) > target:
        return s[:target - 1] + "]", True
    if len(s) == target - 1 and not s.endswith("]"):
        return s + "]", True
    return s, s != text


def parse_answer(text, n):
    """(values or None, text_was_cut).  None means "parse failed" -> mock for the batch."""
    s, cut = cut_to_expected(text, n)
    try:
        data = json.loads(s)
        if isinstance(data, list):
            if all(isinstance(x, int) for x in data):          # bools are ints here too
                return data, cut
            if all(isinstance(x, dict) and len(x) == 1 for x in data):
                out = []
                for item in data:
                    v = list(item.values())[0]
                    if not isinstance(v, int):
                        return None, cut
                    out.append(v)
                return out, cut
    except Exception:
        pass
    m = ARRAY_RE.search(s)
    if m:
        try:
            data = json.loads(m.group(0))
            if isinstance(data, list) and all(isinstance(x, int) for x in data):
                return data, cut
        except Exception:
            return None, cut
    return None, cut


def raw_answer_len(text):
    """Diagnostics only (never changes a result): how many values the answer held before the
    old text cut, read with the same json-then-regex logic.  None if unreadable."""
    s = text.strip()
    try:
        data = json.loads(s)
        if isinstance(data, list):
            return len(data)
        if isinstance(data, dict) and len(data) == 1 and isinstance(list(data.values())[0], list):
            return len(list(data.values())[0])
    except Exception:
        pass
    m = ARRAY_RE.search(s)
    if m:
        try:
            return len(json.loads(m.group(0)))
        except Exception:
            return None
    return None


# ---------------------------------------------------------------------------------------------
# Mock heuristic (base_client.py:192-328), used for no keys and for every failed batch
# ---------------------------------------------------------------------------------------------

MOCK_RULES = (
    # (keywords, function of persona fields -> z increment)
    (("credit", "loan", "debt", "card", "financial"),
     lambda f: 0.3 + (f["C"] - 5) * 0.1 - (f["N"] - 5) * 0.05),
    (("health", "medical", "insurance", "clinic", "wellness"),
     lambda f: 0.4 + (f["C"] - 5) * 0.1 + (f["N"] - 5) * 0.08),
    (("travel", "flight", "hotel", "vacation", "adventure"),
     lambda f: 0.5 + (f["O"] - 5) * 0.15 + (f["E"] - 5) * 0.1),
    (("education", "course", "degree", "learn", "study"),
     lambda f: 0.5 + (f["O"] - 5) * 0.15
     + (0.4 if ("student" in f["occ"] or "teacher" in f["occ"] or f["age"] < 30) else 0.0)),
    (("retire", "pension", "senior"),
     lambda f: 0.7 if f["age"] >= 60 else -0.3),
    (("tech", "gadget", "software", "app", "gaming", "ai"),
     lambda f: 0.4 + (f["O"] - 5) * 0.1
     + (0.3 if (f["age"] < 40 or "engineer" in f["occ"] or "tech" in f["occ"]) else 0.0)),
    (("home", "furniture", "kitchen", "decor"),
     lambda f: 0.3 + (f["C"] - 5) * 0.08),
    (("fashion", "beauty", "clothing", "style"),
     lambda f: 0.2 + (f["O"] - 5) * 0.08 + (f["E"] - 5) * 0.08
     + (0.2 if f["gender"] == "female" else 0.0)),
    (("sports", "fitness", "gym", "exercise"),
     lambda f: 0.2 + (f["E"] - 5) * 0.08 + (f["C"] - 5) * 0.06
     + (0.2 if f["age"] < 45 else 0.0)),
    (("social", "community", "event", "party"),
     lambda f: 0.3 + (f["E"] - 5) * 0.15 + (f["A"] - 5) * 0.08),
    (("art", "music", "creative", "design"),
     lambda f: 0.4 + (f["O"] - 5) * 0.15),
)


class MockCrash(Exception):
    """The old mock raised (int(None) etc.); in the old tool this escapes asyncio.gather."""


NULL_SAFE = False   # --mock-null-safe: read None as the mock's own default instead of crashing


def _mock_int(v, default):
    if v is None and NULL_SAFE:
        v = default
    return int(v)       # int(None) -> TypeError, int("N/A") -> ValueError: as in the old tool


def mock_click_prob(ad_text, p):
    text = (ad_text or "").lower()
    d = p.get("demographics", {})
    s = p.get("personality", {}).get("scores", {})
    f = {
        "age": _mock_int(d.get("age", 40), 40),
        "gender": (d.get("gender") or "").lower(),
        "occ": (d.get("occupation") or "").lower(),
        "edu": (d.get("educational_attainment") or "").lower(),
        "O": _mock_int(s.get("openness", 5), 5),
        "C": _mock_int(s.get("conscientiousness", 5), 5),
        "E": _mock_int(s.get("extraversion", 5), 5),
        "A": _mock_int(s.get("agreeableness", 5), 5),
        "N": _mock_int(s.get("neuroticism", 5), 5),
    }
    z = -0.5
    for words, inc in MOCK_RULES:
        if any(w in text for w in words):      # plain substring test: "ai" matches "retail"
            z += inc(f)
    if f["age"] < 25:
        z += 0.1
    elif f["age"] > 65:
        z -= 0.15
    if any(w in text for w in ("professional", "premium", "executive", "luxury")):
        if "bachelor" in f["edu"] or "master" in f["edu"] or "professional degree" in f["edu"]:
            z += 0.3
    try:
        prob = 1.0 / (1.0 + math.exp(-z))
    except Exception:
        prob = 0.5
    return max(0.0, min(1.0, prob))


def mock_predict(ad_text, personas):
    rnd = random.Random(1337)       # re-seeded for every batch: position j always draws the same
    out = []
    for p in personas:
        try:
            prob = mock_click_prob(ad_text, p)
        except (TypeError, ValueError) as e:
            raise MockCrash("%s: %s" % (type(e).__name__, e)) from e
        out.append(1 if rnd.random() < prob else 0)
    return out


# ---------------------------------------------------------------------------------------------
# Bookkeeping
# ---------------------------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.requests = 0           # HTTP attempts, retries included
        self.status = {}            # status code (or "conn"/"timeout") -> count
        self.http_429 = 0
        self.body_bytes = 0         # request bodies sent, retries included
        self.retries = 0            # SDK-level retries (openai-python / google api_core)
        self.prompt_bytes = 0       # prompt text per batch (system + user), first send only
        self.app_retries = 0        # the OpenAI client's own second create() call
        self.log = []               # the old tool's console lines ([Mock Fallback] ...)

    def saw(self, key):
        self.status[key] = self.status.get(key, 0) + 1
        if key == 429:
            self.http_429 += 1


class APIError(Exception):
    pass


def say(stats, quiet, line):
    stats.log.append(line)
    if not quiet:
        sys.stderr.write(line + "\n")


# ---------------------------------------------------------------------------------------------
# OpenAI / DeepSeek: openai-python AsyncOpenAI().chat.completions.create() on aiohttp
# ---------------------------------------------------------------------------------------------

def _retry_after_seconds(headers):
    """openai-python 2.8.1 _parse_retry_after_header: retry-after-ms, retry-after, HTTP date."""
    v = headers.get("retry-after-ms")
    if v is not None:
        try:
            return float(v) / 1000
        except ValueError:
            pass
    v = headers.get("retry-after")
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        pass
    t = email.utils.parsedate_tz(v)
    if t is None:
        return None
    return float(email.utils.mktime_tz(t) - time.time())


def _openai_backoff(retries_taken, headers):
    """openai-python 2.8.1 _calculate_retry_timeout (server delay honoured if 0 < d <= 60)."""
    if headers is not None:
        ra = _retry_after_seconds(headers)
        if ra is not None and 0 < ra <= 60:
            return ra
    sleep = min(OPENAI_INITIAL_RETRY_DELAY * pow(2.0, retries_taken), OPENAI_MAX_RETRY_DELAY)
    return max(sleep * (1 - 0.25 * random.random()), 0)


def _openai_should_retry(status, headers):
    h = headers.get("x-should-retry")
    if h == "true":
        return True
    if h == "false":
        return False
    return status in (408, 409, 429) or status >= 500


def _sdk_headers(key, retries_taken):
    return {
        "Authorization": "Bearer " + key,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "AsyncOpenAI/Python " + OPENAI_SDK_VERSION,
        "X-Stainless-Lang": "python",
        "X-Stainless-Package-Version": OPENAI_SDK_VERSION,
        "X-Stainless-OS": _platform.system() or "Unknown",
        "X-Stainless-Arch": _platform.machine() or "unknown",
        "X-Stainless-Runtime": _platform.python_implementation(),
        "X-Stainless-Runtime-Version": _platform.python_version(),
        "X-Stainless-Async": "async:asyncio",
        "X-Stainless-Retry-Count": str(retries_taken),
        "X-Stainless-Read-Timeout": str(OPENAI_READ_TIMEOUT),
    }


async def openai_create(base_url, key, body, stats):
    """One chat.completions.create(): up to 1 + 2 HTTP attempts, returns the message content.

    Raises on: a non-retryable or exhausted HTTP error, a transport error/timeout after the
    retries, or a 200 whose body does not yield choices[0].message.content.
    """
    url = base_url.rstrip("/") + "/chat/completions"
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=OPENAI_CONNECT_TIMEOUT,
                                    sock_read=OPENAI_READ_TIMEOUT)
    # A fresh AsyncOpenAI (own connection pool) per batch, as _get_async_client() does.
    async with aiohttp.ClientSession(timeout=timeout) as session:
        status = None
        for retries_taken in range(OPENAI_MAX_RETRIES + 1):
            remaining = OPENAI_MAX_RETRIES - retries_taken
            stats.requests += 1
            stats.body_bytes += len(data)
            try:
                async with session.post(url, data=data,
                                        headers=_sdk_headers(key, retries_taken)) as resp:
                    status = resp.status
                    headers = resp.headers
                    ctype = headers.get("content-type", "*").split(";")[0]
                    raw = await resp.read()
            except asyncio.TimeoutError:
                stats.saw("timeout")
                if remaining > 0:
                    stats.retries += 1
                    await asyncio.sleep(_openai_backoff(retries_taken, None))
                    continue
                raise APIError("APITimeoutError")
            except aiohttp.ClientError as e:
                stats.saw("conn")
                if remaining > 0:
                    stats.retries += 1
                    await asyncio.sleep(_openai_backoff(retries_taken, None))
                    continue
                raise APIError("APIConnectionError (%s)" % type(e).__name__)
            stats.saw(status)
            if status >= 400:
                if remaining > 0 and _openai_should_retry(status, headers):
                    stats.retries += 1
                    await asyncio.sleep(_openai_backoff(retries_taken, headers))
                    continue
                raise APIError("APIStatusError: Error code: %d" % status)
            break
    # _response.py: JSON content type -> response.json() (raises on a bad body); otherwise
    # try JSON and fall back to the raw text, on which .choices fails.
    text = raw.decode("utf-8", "replace")
    if ctype.endswith("json"):
        obj = json.loads(text)
    else:
        try:
            obj = json.loads(text)
        except ValueError:
            raise APIError("AttributeError: 'str' object has no attribute 'choices'")
    try:
        content = obj["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise APIError("%s reading choices[0].message.content" % type(e).__name__)
    return content


# ---------------------------------------------------------------------------------------------
# Gemini: google-generativeai GenerativeModel(model).generate_content_async(prompt, config)
# The SDK speaks gRPC; this sends the same GenerateContentRequest as REST JSON.
# ---------------------------------------------------------------------------------------------

class _Unavailable(Exception):
    pass


def _gemini_sleeps():
    """google.api_core exponential_sleep_generator: uniform(0, d), d *= 1.3 up to 10 s."""
    d = min(GEMINI_RETRY_INITIAL, GEMINI_RETRY_MAX)
    while True:
        yield random.uniform(0.0, d)
        d = min(d * GEMINI_RETRY_MULT, GEMINI_RETRY_MAX)


async def gemini_generate(base_url, key, model, prompt, stats):
    url = "%s/models/%s:generateContent" % (base_url.rstrip("/"), model)
    body = {"contents": [{"parts": [{"text": prompt}], "role": "user"}],
            "generationConfig": {"temperature": 0.1, "maxOutputTokens": 1000}}
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"x-goog-api-key": key, "Content-Type": "application/json",
               "User-Agent": "baseline-of-google-generativeai/0.8"}
    deadline = time.monotonic() + GEMINI_DEADLINE
    sleeps = _gemini_sleeps()
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                stats.requests += 1
                stats.body_bytes += len(data)
                left = max(deadline - time.monotonic(), 0.001)
                try:
                    async with session.post(url, data=data, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=left)) as resp:
                        status = resp.status
                        raw = await resp.read()
                except asyncio.TimeoutError:
                    stats.saw("timeout")
                    raise APIError("DeadlineExceeded")          # not retried by the default
                except aiohttp.ClientError as e:
                    stats.saw("conn")                          # gRPC: UNAVAILABLE -> retried
                    raise _Unavailable("ServiceUnavailable (%s)" % type(e).__name__)
                stats.saw(status)
                if status == 503:
                    raise _Unavailable("ServiceUnavailable: 503")
                if status >= 400:
                    raise APIError("google.api_core.exceptions: HTTP %d" % status)
                break
            except _Unavailable as e:
                pause = next(sleeps)
                if time.monotonic() + pause > deadline:
                    raise APIError("RetryError: deadline of 60.0s exceeded, last: %s" % e)
                stats.retries += 1
                await asyncio.sleep(pause)
    try:
        obj = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        raise APIError("response is not a GenerateContentResponse")
    # GenerateContentResponse.text (google/generativeai/types/generation_types.py)
    cands = obj.get("candidates") or [] if isinstance(obj, dict) else []
    if not cands:
        raise APIError("ValueError: The `response.parts` quick accessor requires a single "
                       "candidate, but `response.candidates` is empty.")
    if len(cands) > 1:
        raise APIError("ValueError: multiple candidates")
    parts = ((cands[0] or {}).get("content") or {}).get("parts") or []
    if not parts:
        raise APIError("ValueError: The `response.text` quick accessor requires the response to "
                       "contain a valid `Part`, but none were returned. finish_reason=%s"
                       % cands[0].get("finishReason"))
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


# ---------------------------------------------------------------------------------------------
# One batch on one provider (openai_client.py:79-108, deepseek_client.py:86-111,
# gemini_client.py:75-102) followed by _parse_and_validate_response
# ---------------------------------------------------------------------------------------------

class Provider:
    def __init__(self, name, model, key, base_url):
        self.name, self.model, self.key, self.base_url = name, model, key, base_url


async def predict_batch(prov, ad_text, batch, ad_platform, stats, quiet):
    """Returns (clicks, info).  info: status ok|short|long|mock, answer_len, text_cut."""
    n = len(batch)
    prompt = build_prompt(ad_text, batch, ad_platform)
    label = {"openai": "AsyncOpenAI", "deepseek": "AsyncDeepSeek", "gemini": "Gemini"}[prov.name]
    info = {"status": "ok", "answer_len": None, "raw_len": None, "text_cut": False,
            "error": None, "prompt_bytes": 0}

    def fallback(reason):
        info["status"] = "mock"
        info["error"] = reason
        say(stats, quiet, "[Mock Fallback] %s; using mock for this chunk." % reason)
        return mock_predict(ad_text, batch), info

    try:
        if prov.name == "gemini":
            full = SYSTEM_TEXT + "\n\n" + prompt            # gemini_client.py:41-44
            info["prompt_bytes"] = len(full.encode("utf-8"))
            stats.prompt_bytes += info["prompt_bytes"]
            content = await gemini_generate(prov.base_url, prov.key, prov.model, full, stats)
        else:
            info["prompt_bytes"] = len((SYSTEM_TEXT + prompt).encode("utf-8"))
            stats.prompt_bytes += info["prompt_bytes"]
            body = {"messages": [{"role": "system", "content": SYSTEM_TEXT},
                                 {"role": "user", "content": prompt}],
                    "model": prov.model}
            if prov.name == "deepseek":
                body["temperature"] = 0.0                   # deepseek_client.py:104-105
                body["stream"] = False
            if prov.name == "openai":
                # openai_client.py:89-106: on any exception, the same call is made once more.
                try:
                    content = await openai_create(prov.base_url, prov.key, body, stats)
                except Exception as first:
                    stats.app_retries += 1
                    try:
                        content = await openai_create(prov.base_url, prov.key, body, stats)
                    except Exception:
                        return fallback("AsyncOpenAI API call failed (%s)" % first)
            else:
                content = await openai_create(prov.base_url, prov.key, body, stats)
    except MockCrash:
        raise
    except Exception as e:
        if prov.name == "deepseek":
            return fallback("AsyncDeepSeek API call failed")
        return fallback("Gemini async API call failed (%s)" % e)

    arr, info["text_cut"] = parse_answer(content or "", n)
    if arr is None:
        say(stats, quiet, "[DEBUG] Parse failed - Content length: %d"
            % (len(content) if content else 0))
        say(stats, quiet, "[DEBUG] Content preview: %r" % ((content if content else "None")[:300],))
        info["status"] = "mock"
        info["error"] = "parse failed"
        say(stats, quiet, "[Mock Fallback] %s output parse failed; using mock for this chunk."
            % label)
        return mock_predict(ad_text, batch), info
    info["answer_len"] = len(arr)
    info["raw_len"] = raw_answer_len(content or "")
    if len(arr) < n:
        info["status"] = "short"
        arr = arr + [0] * (n - len(arr))
    elif len(arr) > n or (info["raw_len"] or 0) > n:
        # Too many values: usually already dropped by the text cut (the old code never sees
        # them), otherwise by arr[:n].  Either way the tail of the answer is thrown away.
        info["status"] = "long"
        arr = arr[:n]
    return [1 if int(x) else 0 for x in arr], info


# ---------------------------------------------------------------------------------------------
# The distributed run (llm_click_model.py:63-169)
# ---------------------------------------------------------------------------------------------

async def run(personas, args, stats):
    clients = []
    for name in args.providers:
        if name == "vllm":
            say(stats, args.quiet, "[Distributed] Skipping vLLM provider (not suitable for "
                "distributed mode)")
            continue
        if name not in PROVIDERS:
            say(stats, args.quiet, "[Distributed] Unknown provider '%s', skipping" % name)
            continue
        key = getattr(args, "key_" + name) or os.environ.get(KEY_ENV[name])
        if not key:
            say(stats, args.quiet, "[Distributed] Skipping %s (no API key found)" % name)
            continue
        model = getattr(args, "model_" + name)
        clients.append(Provider(name, model, key, getattr(args, "base_url_" + name)))
        say(stats, args.quiet, "[Distributed] Initialized %s client with model %s"
            % (name, model))

    bs = args.batch_size
    batches = [personas[i:i + bs] for i in range(0, len(personas), bs)]
    if args.use_mock or not clients:
        if not args.use_mock:
            say(stats, args.quiet, "[Mock Fallback] No API clients available; using mock for "
                "all chunks.")
        return [(mock_predict(args.ad, b),
                 {"status": "mock", "answer_len": None, "raw_len": None, "text_cut": False,
                  "error": "no clients", "prompt_bytes": 0}, "none") for b in batches]

    say(stats, args.quiet, "[Distributed] Processing %d batches across %d providers: %s"
        % (len(batches), len(clients), ", ".join(c.name for c in clients)))

    async def one(i, batch):
        prov = clients[i % len(clients)]            # round-robin by batch index
        clicks, info = await predict_batch(prov, args.ad, batch, args.platform, stats,
                                           args.quiet)
        return clicks, info, prov.name

    # Every batch at once; no semaphore, no limiter.  The first exception (a mock crash)
    # propagates out of gather, losing every result, as in the old tool.
    results = await asyncio.gather(*(one(i, b) for i, b in enumerate(batches)))
    usage = {c.name: 0 for c in clients}
    for _, _, name in results:
        usage[name] += 1
    say(stats, args.quiet, "[Distributed] Provider usage: "
        + ", ".join("%s=%d" % kv for kv in usage.items()))
    return results


# ---------------------------------------------------------------------------------------------
# Input: the ctr_dist persona table exported as CSV (header) or JSONL (row_to_json)
# ---------------------------------------------------------------------------------------------

DEMO_FIELDS = ("age", "gender", "state", "race", "educational_attainment", "occupation")
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
NUMERIC = {"id", "age"} | set(TRAITS)


def _number(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def load_rows(path):
    if path.endswith(".jsonl") or path.endswith(".ndjson") or path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            # PostgreSQL's CSV export writes NULL as an empty unquoted field; csv cannot tell it
            # from "" -- empty is read as NULL.  Use JSONL to keep the difference.
            rows.append({k: (None if v == "" else (_number(v) if k in NUMERIC else v))
                         for k, v in r.items()})
    return rows


def to_old_persona(row):
    """A flat table row -> the nested dict the old tool reads.  Columns it has no slot for
    (e.g. interests) are not sent, as the old prompt has no place for them.  A NULL column
    becomes a present-but-None key, which is what the old tool would get from JSON null."""
    if "demographics" in row or "personality" in row:
        return row                                   # already in the old tool's shape
    p = {"demographics": {k: row[k] for k in DEMO_FIELDS if k in row},
         "personality": {"scores": {k: row[k] for k in TRAITS if k in row}}}
    if "description" in row:
        p["description"] = row["description"]
    return p


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--personas", required=True, help="CSV with header, or JSONL (row_to_json)")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--providers", default="openai,deepseek,gemini")
    for p in PROVIDERS:
        env = BASE_URL_ENV[p]
        ap.add_argument("--base-url-" + p,
                        default=(os.environ.get(env) if env else None) or DEFAULT_BASE_URLS[p])
        ap.add_argument("--model-" + p, default=DEFAULT_MODELS[p])
        ap.add_argument("--key-" + p, default=None, help="default: $" + KEY_ENV[p])
    ap.add_argument("--ad", required=True)
    ap.add_argument("--platform", default="facebook")
    ap.add_argument("--out", required=True, help="results JSONL, one line per persona")
    ap.add_argument("--limit", type=int, default=0, help="only the first N personas")
    ap.add_argument("--use-mock", action="store_true", help="the old use_mock=True")
    ap.add_argument("--mock-null-safe", action="store_true",
                    help="NOT the old behaviour: let the mock read NULL as its default instead "
                         "of crashing the whole run with TypeError")
    ap.add_argument("--summary-json", help="also write the summary as JSON here")
    ap.add_argument("--quiet", action="store_true", help="hide the old tool's console lines")
    args = ap.parse_args(argv)
    args.providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    if args.batch_size < 1:
        ap.error("--batch-size must be >= 1")
    global NULL_SAFE
    NULL_SAFE = args.mock_null_safe

    rows = load_rows(args.personas)
    if args.limit:
        rows = rows[:args.limit]
    personas = [to_old_persona(r) for r in rows]
    stats = Stats()

    t0 = time.monotonic()
    crash = None
    try:
        results = asyncio.run(run(personas, args, stats)) if personas else []
    except MockCrash as e:
        crash = str(e)
        results = None
    wall = time.monotonic() - t0

    counts = {"llm": 0, "padded": 0, "trimmed": 0, "mock": 0}
    batch_status = {"ok": 0, "short": 0, "long": 0, "mock": 0}
    text_cut = 0
    wrong = 0
    clicks_total = 0
    if results is not None:
        with open(args.out, "w", encoding="utf-8") as out:
            idx = 0
            for b, (clicks, info, prov) in enumerate(results):
                batch_status[info["status"]] += 1
                text_cut += bool(info["text_cut"])
                have = info["answer_len"] or 0
                for j, c in enumerate(clicks):
                    if info["status"] == "mock":
                        src = "mock"
                    elif info["status"] == "long":
                        src = "trimmed"
                    elif info["status"] == "short" and j >= have:
                        src = "padded"
                    else:
                        src = "llm"
                    counts[src] += 1
                    row = rows[idx]
                    # The fake provider's intended answer: 1 iff CLICK is in the persona's text.
                    marker = int("CLICK" in persona_record(j, personas[idx]))
                    wrong += int(marker != c)
                    clicks_total += c
                    rec = {"index": idx, "key": row.get("id", idx), "click": c, "source": src,
                           "provider": prov, "batch": b, "batch_status": info["status"],
                           "answer_len": info["answer_len"], "raw_len": info["raw_len"],
                           "text_cut": info["text_cut"],
                           "click_marker": marker}
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    idx += 1
    n = len(personas)
    summary = {
        "personas": n, "batches": (n + args.batch_size - 1) // args.batch_size,
        "batch_size": args.batch_size, "wall_s": round(wall, 3),
        "requests": stats.requests, "http_429": stats.http_429,
        "sdk_retries": stats.retries, "openai_second_calls": stats.app_retries,
        "status": {str(k): v for k, v in sorted(stats.status.items(), key=lambda kv: str(kv[0]))},
        "llm": counts["llm"], "padded": counts["padded"], "trimmed": counts["trimmed"],
        "mock": counts["mock"],
        "batches_ok": batch_status["ok"], "batches_short": batch_status["short"],
        "batches_long": batch_status["long"], "batches_mock": batch_status["mock"],
        "batches_text_cut": text_cut,
        "prompt_bytes_per_persona": round(stats.prompt_bytes / n, 1) if n else 0,
        "request_body_bytes": stats.body_bytes,
        "ctr": round(clicks_total / n, 4) if (n and results is not None) else None,
        "wrong_vs_marker": wrong if results is not None else None,
        "crashed": crash,
    }
    line = "baseline summary: " + " ".join(
        "%s=%s" % (k, json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, str))
                   else v) for k, v in summary.items())
    sys.stderr.write(line + "\n")
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
    if crash:
        sys.stderr.write("baseline: the old tool's mock raised %s; asyncio.gather propagated it "
                         "and no result was produced (no --out written). --mock-null-safe "
                         "avoids this (not the old behaviour).\n" % crash)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
