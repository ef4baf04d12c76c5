#!/usr/bin/env python3
"""
Self-test for provider_server.py: starts it on a free port and checks, for
each provider, correct answers, auth errors, request validation, every fault
kind, rpm/concurrency limiting, stats, the request log and process lifecycle.

    python3 test/provider_server_selftest.py [-v]

Standard library only (unittest + urllib; http.client where a test needs the
raw connection).  Exits non-zero on failure.
"""

import email.utils
import gzip
import http.client
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "provider_server.py")
KEYS = {"openai": "sk-test-openai", "deepseek": "sk-test-deepseek", "gemini": "gm-test-gemini"}
UA = "ctr-dist-selftest/1"
RECORDS = ["34|nurse|running CLICK", "61||gardening", "19|student|CLICK games",
           "45|teacher|reading", "22|CLICK|x"]
EXPECTED = [1, 0, 1, 0, 1]
SYSTEM = "You predict ad clicks. Reply with JSON only, shaped {\"clicks\":[0,1,...]}."
# No proxy, whatever the environment says: the server is on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_server(tmpdir, *extra):
    """Start provider_server.py; return (process, port) once its port file appears."""
    port_file = os.path.join(tmpdir, f"port.{len(os.listdir(tmpdir))}")
    proc = subprocess.Popen([sys.executable, SERVER, "--port", "0", "--port-file", port_file,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                return proc, int(f.read())
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + proc.stderr.read().decode())
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("server did not write its port file")


def prompt(records):
    lines = [f"[{i + 1}] {r}" for i, r in enumerate(records)]
    return "Ad: Spring sale\nPlatform: facebook\nPersonas: %d\n%s" % (len(records), "\n".join(lines))


def openai_body(records=RECORDS, n=None, **over):
    n = len(records) if n is None else n
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": prompt(records)}],
        "temperature": 0,
        "max_completion_tokens": 256,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "ctr_batch", "strict": True,
            "schema": {"type": "object",
                       "properties": {"clicks": {"type": "array", "minItems": n, "maxItems": n,
                                                 "items": {"type": "integer", "enum": [0, 1]}}},
                       "required": ["clicks"], "additionalProperties": False}}},
    }
    body.update(over)
    return body


def deepseek_body(records=RECORDS, **over):
    body = {
        "model": "deepseek-v4-flash",
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": prompt(records)}],
        "thinking": {"type": "disabled"},
        "temperature": 0,
        "max_tokens": 256,
        "response_format": {"type": "json_object"},
    }
    body.update(over)
    return body


def gemini_body(records=RECORDS, shape="ARRAY", n=None):
    n = len(records) if n is None else n
    arr = {"type": "ARRAY", "minItems": str(n), "maxItems": str(n), "items": {"type": "INTEGER"}}
    schema = arr if shape == "ARRAY" else {
        "type": "OBJECT", "properties": {"clicks": arr}, "required": ["clicks"]}
    return {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "user", "parts": [{"text": prompt(records)}]}],
        "generationConfig": {"temperature": 0, "maxOutputTokens": 256,
                             "responseMimeType": "application/json", "responseSchema": schema,
                             "thinkingConfig": {"thinkingBudget": 0}},
    }


BODIES = {"openai": openai_body, "deepseek": deepseek_body, "gemini": gemini_body}
PATHS = {"openai": "/openai/v1/chat/completions", "deepseek": "/deepseek/chat/completions",
         "gemini": "/gemini/v1beta/models/gemini-2.5-flash-lite:generateContent"}


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = raw
        self.body = gzip.decompress(raw) if self.headers.get("content-encoding") == "gzip" else raw

    def json(self):
        return json.loads(self.body)

    def content(self):
        """The model's text, from whichever envelope."""
        j = self.json()
        if "choices" in j:
            return j["choices"][0]["message"]["content"]
        return j["candidates"][0]["content"]["parts"][0]["text"]

    def answer(self):
        """The predictions list, whether the answer is an object or a bare array."""
        a = json.loads(self.content())
        return a if isinstance(a, list) else next(iter(a.values()))


class ServerCase(unittest.TestCase):
    """Shared server for all tests; each test starts from a clean config and stats."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.log_path = os.path.join(cls.tmp.name, "requests.log")
        cls.proc, cls.port = start_server(cls.tmp.name, "--log", cls.log_path,
                                          "--parent-pid", str(os.getpid()))

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(5)
        cls.proc.stdout.close()
        cls.proc.stderr.close()
        cls.tmp.cleanup()

    def setUp(self):
        self.configure({})
        self.ctl("/_control/reset", {})

    # -- helpers ----------------------------------------------------------
    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def http(self, method, path, data=None, headers=None, timeout=10):
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers=headers or {})
        try:
            with OPENER.open(req, timeout=timeout) as r:
                return Resp(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, dict(e.headers), e.read())

    def ctl(self, path, obj=None):
        data = None if obj is None else json.dumps(obj).encode()
        r = self.http("POST" if data is not None else "GET", path, data)
        return r.status, r.json()

    def configure(self, knobs):
        status, body = self.ctl("/_control/config", knobs)
        self.assertEqual(status, 200, body)
        return body

    def stats(self):
        return self.ctl("/_control/stats")[1]

    def call(self, provider, body=None, key="default", raw=None, path=None, headers=None,
             timeout=10):
        if body is None and raw is None:
            body = BODIES[provider]()
        h = {"Content-Type": "application/json", "User-Agent": UA}
        key = KEYS[provider] if key == "default" else key
        if key is not None:
            if provider == "gemini":
                h["x-goog-api-key"] = key
            else:
                h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        data = raw if raw is not None else json.dumps(body).encode()
        return self.http("POST", path or PATHS[provider], data, h, timeout)

    def set_fault(self, provider, kind, params=None, **extra):
        fault = {"kind": kind, "provider": provider, "params": params or {}, **extra}
        self.configure({"faults": [fault]})

    def assertViolation(self, text, provider=""):
        v = self.stats()["violations"]
        self.assertTrue(any(x.startswith(provider) and text in x for x in v),
                        f"no {provider} violation containing {text!r} in {v}")


class AnswerTests(ServerCase):

    def test_openai_answer_and_envelope(self):
        r = self.call("openai")
        self.assertEqual(r.status, 200, r.body)
        j = r.json()
        self.assertEqual(json.loads(r.content()), {"clicks": EXPECTED})
        self.assertTrue(j["id"].startswith("chatcmpl-"))
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["model"], "gpt-4o-mini-2024-07-18")
        self.assertEqual(j["choices"][0]["finish_reason"], "stop")
        self.assertIsNone(j["choices"][0]["message"]["refusal"])
        for h in ("x-request-id", "openai-processing-ms", "x-ratelimit-limit-requests",
                  "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                  "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                  "x-ratelimit-reset-tokens"):
            self.assertIn(h, r.headers)
        self.assertRegex(r.headers["x-ratelimit-reset-requests"], r"^(\d+(\.\d+)?(h|m|s|ms))+$")
        body = openai_body()
        nbytes = sum(len(m["content"].encode()) for m in body["messages"])
        self.assertEqual(j["usage"]["prompt_tokens"], math.ceil(nbytes / 4))
        self.assertEqual(j["usage"]["completion_tokens"], math.ceil(len(r.content()) / 4))
        self.assertEqual(self.stats()["violations"], [])

    def test_openai_property_name_follows_schema(self):
        body = openai_body()
        schema = body["response_format"]["json_schema"]["schema"]
        schema["properties"] = {"preds": schema["properties"]["clicks"]}
        schema["required"] = ["preds"]
        r = self.call("openai", body)
        self.assertEqual(json.loads(r.content()), {"preds": EXPECTED})

    def test_deepseek_answer_gzip_and_v1_path(self):
        r = self.call("deepseek", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers.get("content-encoding"), "gzip")
        j = r.json()
        self.assertEqual(json.loads(r.content()), {"clicks": EXPECTED})
        self.assertRegex(j["id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        u = j["usage"]
        self.assertEqual(u["prompt_tokens"], u["prompt_cache_hit_tokens"] + u["prompt_cache_miss_tokens"])
        self.assertNotIn("x-ratelimit-limit-requests", r.headers)
        r2 = self.call("deepseek", path="/deepseek/v1/chat/completions")
        self.assertEqual(r2.status, 200)
        self.assertNotIn("content-encoding", r2.headers)     # client did not offer gzip
        self.assertEqual(r2.answer(), EXPECTED)

    def test_gemini_array_object_and_snake_case(self):
        r = self.call("gemini")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.content()), EXPECTED)
        j = r.json()
        self.assertEqual(j["candidates"][0]["finishReason"], "STOP")
        self.assertIn("responseId", j)
        self.assertEqual(j["modelVersion"], "gemini-2.5-flash-lite")
        self.assertNotIn("thoughtsTokenCount", j["usageMetadata"])
        r = self.call("gemini", gemini_body(shape="OBJECT"))
        self.assertEqual(json.loads(r.content()), {"clicks": EXPECTED})
        snake = {
            "system_instruction": {"parts": [{"text": SYSTEM}]},
            "contents": [{"role": "user", "parts": [{"text": prompt(RECORDS)}]}],
            "generation_config": {"max_output_tokens": 99, "response_mime_type": "application/json",
                                  "response_schema": {"type": "array", "items": {"type": "integer"}}},
        }
        r = self.call("gemini", snake, path="/gemini/v1beta/models/gemini-2.5-flash:generateContent")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.content()), EXPECTED)
        self.assertEqual(self.stats()["violations"], [])

    def test_gemini_thoughts_tokens(self):
        self.configure({"providers": {"gemini": {"thoughts_tokens": 7}}})
        u = self.call("gemini").json()["usageMetadata"]
        self.assertEqual(u["thoughtsTokenCount"], 7)
        self.assertEqual(u["totalTokenCount"],
                         u["promptTokenCount"] + u["candidatesTokenCount"] + 7)


class KnobTests(ServerCase):
    """persona_pattern and json_object_key: null, for the old tool's prompt (test/bench)."""

    OLD_PATTERN = r"(?ms)^\[Persona (\d+)\]\n(.*?)(?=^\[Persona \d+\]$|\Z)"

    @staticmethod
    def old_prompt(descriptions):
        """Records as the old tool writes them: numbered from 0, four lines each."""
        recs = ["[Persona %d]\nDemographics: Age=30, Occupation=nurse\n"
                "Personality (Big Five): Openness=3\nDescription: %s\n" % (i, d)
                for i, d in enumerate(descriptions)]
        return "Output ONLY a simple JSON list of 0/1 integers.\n\n" + "\n".join(recs)

    def test_persona_pattern(self):
        # CLICK on a continuation line of a description still belongs to its record
        descs = ["likes running CLICK", "quiet\nreader", "line one\nline two CLICK", "none"]
        text = self.old_prompt(descs)
        body = {"model": "gpt-4o-mini", "max_completion_tokens": 64,
                "messages": [{"role": "user", "content": text}]}
        r = self.call("openai", body)                 # default pattern: nothing to read
        self.assertEqual(r.answer(), [])
        self.assertViolation("no persona lines", "openai: ")
        self.ctl("/_control/reset", {})
        knobs = self.configure({"persona_pattern": self.OLD_PATTERN})
        self.assertEqual(knobs["effective"]["gemini"]["persona_pattern"], self.OLD_PATTERN)
        self.assertEqual(self.call("openai", body).answer(), [1, 0, 1, 0])
        self.assertEqual(self.stats()["violations"], [])     # numbering from 0 is accepted
        self.assertEqual(self.stats()["openai"]["answered_personas"], 4)
        # per provider, and the default still reads ctr_dist's [k] lines elsewhere
        self.configure({"providers": {"deepseek": {"persona_pattern": self.OLD_PATTERN}}})
        ds = deepseek_body()
        ds["messages"][1]["content"] = text
        self.assertEqual(self.call("deepseek", ds).answer(), [1, 0, 1, 0])
        self.assertEqual(self.call("openai").answer(), EXPECTED)
        for bad in ("([", r"^\[(\d+)\]", "", 5):
            self.assertEqual(self.ctl("/_control/config", {"persona_pattern": bad})[0], 400, bad)

    def test_json_object_key_null(self):
        self.configure({"json_object_key": None})
        plain = openai_body()
        del plain["response_format"]
        r = self.call("openai", plain)
        self.assertEqual(json.loads(r.content()), EXPECTED)           # bare array
        self.assertEqual(json.loads(self.call("openai").content()), {"clicks": EXPECTED})
        jo = openai_body(response_format={"type": "json_object"})
        jo["messages"][0]["content"] += " json"
        self.assertEqual(json.loads(self.call("openai", jo).content()), {"clicks": EXPECTED})
        ds = deepseek_body()
        del ds["response_format"]
        self.assertEqual(json.loads(self.call("deepseek", ds).content()), EXPECTED)
        self.assertEqual(json.loads(self.call("deepseek").content()), {"clicks": EXPECTED})
        gm = gemini_body()
        del gm["generationConfig"]["responseSchema"]
        self.assertEqual(json.loads(self.call("gemini", gm).content()), EXPECTED)
        del gm["generationConfig"]["responseMimeType"]
        self.assertEqual(json.loads(self.call("gemini", gm).content()), EXPECTED)
        r = self.call("gemini", gemini_body(shape="OBJECT"))
        self.assertEqual(json.loads(r.content()), {"clicks": EXPECTED})
        self.assertEqual(self.stats()["violations"], [])
        self.assertIsNone(self.configure({"json_object_key": None})["effective"]["openai"]["json_object_key"])


class AuthTests(ServerCase):

    def test_openai(self):
        r = self.call("openai", key="sk-wrong-key-WXYZ")
        self.assertEqual(r.status, 401)
        err = r.json()["error"]
        self.assertEqual(err["code"], "invalid_api_key")
        self.assertIn("****WXYZ", err["message"])
        self.assertNotIn("sk-wrong-key", err["message"])
        self.assertEqual(self.call("openai", key=None).status, 401)

    def test_deepseek(self):
        r = self.call("deepseek", key="sk-bad-1234")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["type"], "authentication_error")
        self.assertEqual(self.call("deepseek", key=None).status, 401)

    def test_gemini(self):
        r = self.call("gemini", key="nope-nope")
        self.assertEqual(r.status, 400)
        err = r.json()["error"]
        self.assertEqual(err["status"], "INVALID_ARGUMENT")
        self.assertEqual(err["details"][0]["reason"], "API_KEY_INVALID")
        r = self.call("gemini", key=None)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"]["status"], "PERMISSION_DENIED")
        r = self.call("gemini", key=None, path=PATHS["gemini"] + "?key=" + KEYS["gemini"])
        self.assertEqual(r.status, 200)
        self.assertViolation("gemini: key sent in URL")

    def test_keys_knob(self):
        self.configure({"keys": {"openai": "sk-other"}})
        self.assertEqual(self.call("openai").status, 401)
        self.assertEqual(self.call("openai", key="sk-other").status, 200)


class ValidationTests(ServerCase):

    def expect(self, provider, body, status, violation, raw=None):
        r = self.call(provider, body, raw=raw)
        self.assertEqual(r.status, status, r.body)
        self.assertViolation(violation, provider + ": ")
        return r

    def test_openai_rejections(self):
        r = self.expect("openai", openai_body(thinking={"type": "disabled"}), 400, "unknown field")
        self.assertEqual(r.json()["error"]["message"],
                         "Unrecognized request argument supplied: thinking")
        r = self.expect("openai", openai_body(temperature=3), 400, "temperature")
        self.assertEqual(r.json()["error"]["param"], "temperature")

        def schema_case(mutate, violation):
            b = openai_body()
            mutate(b["response_format"]["json_schema"])
            r = self.expect("openai", b, 400, violation)
            self.assertEqual(r.json()["error"]["param"], "response_format")
            return r

        r = schema_case(lambda js: js.update(schema={"type": "array", "items": {"type": "integer"}}),
                        "root is not an object")
        self.assertIn("got 'type: \"array\"'", r.json()["error"]["message"])
        schema_case(lambda js: js["schema"].pop("additionalProperties"), "additionalProperties")
        schema_case(lambda js: js["schema"].update(required=[]), "not in required")
        schema_case(lambda js: js.pop("strict"), "strict")
        r = self.expect("openai", openai_body(model="gpt-9"), 404, "unknown model")
        self.assertEqual(r.json()["error"]["code"], "model_not_found")
        self.expect("openai", None, 400, "not a JSON object", raw=b"{not json")

    def test_openai_soft_violations(self):
        b = openai_body()
        del b["max_completion_tokens"]
        self.assertEqual(self.call("openai", b).status, 200)
        self.assertViolation("openai: max_completion_tokens/max_tokens missing")
        r = self.call("openai", openai_body(n=4))
        self.assertEqual(r.status, 200)
        self.assertViolation("minItems is 4")
        b = openai_body()
        b["messages"][1]["content"] = "[1] a CLICK\n[3] b\n"
        b["response_format"]["json_schema"]["schema"]["properties"]["clicks"].update(
            minItems=2, maxItems=2)
        r = self.call("openai", b)
        self.assertEqual(r.answer(), [1, 0])
        self.assertViolation("numbering")

    def test_deepseek(self):
        b = deepseek_body(response_format={"type": "json_schema", "json_schema": {"name": "x"}})
        r = self.expect("deepseek", b, 400, "json_schema")
        self.assertEqual(r.json()["error"]["message"], "This response_format type is unavailable now")
        b = deepseek_body()
        b["messages"][0]["content"] = "Answer with a list."
        self.expect("deepseek", b, 400, "without the word json")
        r = self.expect("deepseek", deepseek_body(model="deepseek-v9"), 404, "unknown model")
        self.assertEqual(r.json()["error"]["message"], "Model Not Exist")
        self.expect("deepseek", None, 400, "not JSON", raw=b"hello")
        b = deepseek_body(some_future_field=1)
        del b["max_tokens"]
        self.assertEqual(self.call("deepseek", b).status, 200)      # unknown fields ignored
        self.assertViolation("deepseek: max_tokens missing")

    def test_gemini(self):
        b = gemini_body()
        b["generationConfig"]["x"] = 1
        r = self.expect("gemini", b, 400, "Unknown name")
        err = r.json()["error"]
        self.assertEqual(err["message"], "Invalid JSON payload received. Unknown name \"x\" at "
                         "'generation_config': Cannot find field.")
        self.assertEqual(err["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest")
        self.assertEqual(err["details"][0]["fieldViolations"][0]["field"], "generation_config")
        b = gemini_body()
        b["generationConfig"]["responseSchema"]["additionalProperties"] = False
        r = self.expect("gemini", b, 400, "Unknown name")
        self.assertIn("at 'generation_config.response_schema'", r.json()["error"]["message"])
        b = gemini_body()
        b["bogus"] = True
        r = self.expect("gemini", b, 400, "Unknown name")
        self.assertIn('Unknown name "bogus": Cannot find field.', r.json()["error"]["message"])
        r = self.call("gemini", path="/gemini/v1beta/models/gemini-1.5-flash:generateContent")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["status"], "NOT_FOUND")
        self.expect("gemini", None, 400, "not JSON", raw=b"[1,")
        b = gemini_body()
        del b["generationConfig"]["maxOutputTokens"]
        self.assertEqual(self.call("gemini", b).status, 200)
        self.assertViolation("gemini: generationConfig.maxOutputTokens missing")
        self.call("gemini", gemini_body(n=3))
        self.assertViolation("maxItems is 3")


# Expected status per fault kind (a dict when it differs per provider).
ERROR_STATUS = {
    "http_500": 500, "http_502": 502, "http_503": 503, "http_504": 504, "http_408": 408,
    "http_409": 409, "rate_limit": 429, "forbidden_403": 403, "model_404": 404,
    "bad_request_400": 400,
    "quota": {"openai": 429, "deepseek": 402, "gemini": 429},
    "auth": {"openai": 401, "deepseek": 401, "gemini": 400},
    "unprocessable_422": {"openai": 422, "deepseek": 422, "gemini": 400},
    "insufficient_system_resource": {"openai": 503, "deepseek": 200, "gemini": 503},
}
GEMINI_STATUS = {"http_500": "INTERNAL", "http_503": "UNAVAILABLE", "http_504": "DEADLINE_EXCEEDED",
                 "http_409": "ABORTED", "rate_limit": "RESOURCE_EXHAUSTED",
                 "quota": "RESOURCE_EXHAUSTED", "auth": "INVALID_ARGUMENT",
                 "forbidden_403": "PERMISSION_DENIED", "model_404": "NOT_FOUND",
                 "bad_request_400": "INVALID_ARGUMENT", "unprocessable_422": "INVALID_ARGUMENT",
                 "insufficient_system_resource": "UNAVAILABLE"}


def finish_reason(j):
    if "choices" in j:
        return j["choices"][0]["finish_reason"]
    return j["candidates"][0].get("finishReason")


class FaultTests(ServerCase):

    def run_fault(self, provider, kind, params=None):
        self.set_fault(provider, kind, params)
        self.ctl("/_control/reset", {})
        r = self.call(provider)
        self.assertEqual(self.stats()[provider]["faults"], {kind: 1})
        return r

    def test_error_faults(self):
        for provider in ("openai", "deepseek", "gemini"):
            for kind, status in ERROR_STATUS.items():
                with self.subTest(provider=provider, kind=kind):
                    want = status[provider] if isinstance(status, dict) else status
                    r = self.run_fault(provider, kind)
                    self.assertEqual(r.status, want, r.body)
                    if want == 200:
                        continue
                    if kind in ("http_502", "http_504") and provider != "gemini" or \
                            kind in ("http_502", "http_408") and provider == "gemini":
                        self.assertTrue(r.headers["content-type"].startswith("text/html"))
                        continue
                    err = r.json()["error"]
                    if provider == "gemini":
                        self.assertEqual(err["status"], GEMINI_STATUS[kind])
                        self.assertEqual(err["code"], want)
                    else:
                        self.assertEqual(set(err), {"message", "type", "param", "code"})

    def test_error_fault_details(self):
        err = self.run_fault("openai", "quota").json()["error"]
        self.assertEqual(err["code"], "insufficient_quota")
        r = self.run_fault("openai", "quota")
        self.assertNotIn("retry-after", r.headers)
        self.assertEqual(self.run_fault("deepseek", "quota").json()["error"]["message"],
                         "Insufficient Balance")
        err = self.run_fault("gemini", "quota").json()["error"]
        self.assertIn("PerDay", err["details"][0]["violations"][0]["quotaId"])
        err = self.run_fault("gemini", "http_503").json()["error"]
        self.assertIn("overloaded", err["message"])
        self.assertEqual(self.run_fault("openai", "model_404").json()["error"]["code"],
                         "model_not_found")
        r = self.run_fault("openai", "http_500", {"x_should_retry": False})
        self.assertEqual(r.headers.get("x-should-retry"), "false")
        j = self.run_fault("deepseek", "insufficient_system_resource").json()
        self.assertEqual(finish_reason(j), "insufficient_system_resource")

    def test_rate_limit_signals(self):
        r = self.run_fault("openai", "rate_limit", {"signal": "retry_after", "seconds": 2})
        self.assertEqual(r.headers.get("retry-after"), "2")
        self.assertEqual(r.json()["error"]["code"], "rate_limit_exceeded")
        r = self.run_fault("openai", "rate_limit", {"signal": "retry_after_ms", "seconds": 1.5})
        self.assertEqual(r.headers.get("retry-after-ms"), "1500")
        self.assertNotIn("retry-after", r.headers)
        r = self.run_fault("openai", "rate_limit", {"signal": "retry_after_date", "seconds": 30})
        when = email.utils.parsedate_to_datetime(r.headers["retry-after"]).timestamp()
        self.assertAlmostEqual(when - time.time(), 30, delta=3)
        r = self.run_fault("openai", "rate_limit", {"signal": "try_again_text", "seconds": 1.574})
        self.assertIn("Please try again in 1.574s.", r.json()["error"]["message"])
        r = self.run_fault("openai", "rate_limit", {"signal": "none"})
        self.assertFalse({"retry-after", "retry-after-ms"} & set(r.headers))
        self.assertNotIn("try again", r.json()["error"]["message"])
        r = self.run_fault("gemini", "rate_limit", {"signal": "retry_info", "seconds": 3})
        details = r.json()["error"]["details"]
        retry = [d for d in details if d["@type"].endswith("RetryInfo")]
        self.assertEqual(retry[0]["retryDelay"], "3s")
        quota = [d for d in details if d["@type"].endswith("QuotaFailure")]
        self.assertIn("PerMinute", quota[0]["violations"][0]["quotaId"])
        r = self.run_fault("deepseek", "rate_limit")
        self.assertEqual(r.status, 429)
        self.assertFalse({"retry-after", "retry-after-ms"} & set(r.headers))

    def test_error_body_and_header_params(self):
        # any error, any body, any wait hint: empty and non-JSON bodies keep their headers
        r = self.run_fault("openai", "rate_limit",
                           {"signal": "retry_after_ms", "seconds": 1.5, "body": ""})
        self.assertEqual((r.status, r.body, r.headers.get("retry-after-ms")), (429, b"", "1500"))
        r = self.run_fault("deepseek", "http_503",
                           {"signal": "retry_after", "seconds": 2, "body": "upstream overloaded"})
        self.assertEqual((r.status, r.body, r.headers.get("retry-after")),
                         (503, b"upstream overloaded", "2"))
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        r = self.run_fault("gemini", "http_503", {"signal": "retry_after_date", "seconds": 30})
        when = email.utils.parsedate_to_datetime(r.headers["retry-after"]).timestamp()
        self.assertAlmostEqual(when - time.time(), 30, delta=3)
        self.assertEqual(r.json()["error"]["status"], "UNAVAILABLE")
        r = self.run_fault("gemini", "rate_limit", {"signal": "retry_info", "seconds": 0.2,
                                                    "headers": {"retry-after-ms": "2000"}})
        retry = [d for d in r.json()["error"]["details"] if d["@type"].endswith("RetryInfo")]
        self.assertEqual((retry[0]["retryDelay"], r.headers.get("retry-after-ms")), ("0.2s", "2000"))
        r = self.run_fault("gemini", "bad_request_400",
                           {"body": '{"error": {"code": 400, "message": "Bad."}}'})
        self.assertEqual(r.json(), {"error": {"code": 400, "message": "Bad."}})
        self.assertEqual(r.headers["content-type"], "application/json")
        for params, kind in (({"signal": "try_again_text"}, "http_503"),
                             ({"signal": "retry_info"}, "http_500"),
                             ({"body": ""}, "prose"),
                             ({"headers": {"x": "1"}}, "hang"),
                             ({"body": 3}, "http_500"),
                             ({"headers": {"x": 1}}, "http_500"),
                             ({"headers": {"a\nb": "1"}}, "http_500")):
            with self.subTest(kind=kind, params=params):
                status, _ = self.ctl("/_control/config", {"faults": [
                    {"kind": kind, "params": params}]})
                self.assertEqual(status, 400)

    def test_content_faults(self):
        n = len(EXPECTED)
        for provider in ("openai", "deepseek", "gemini"):
            with self.subTest(provider=provider):
                c = self.run_fault(provider, "prose").content()
                self.assertTrue(c.startswith("Sure! Here are the predictions:\n"))
                inner = c.split("\n")[1]
                self.assertEqual(json.loads(inner) if provider == "gemini"
                                 else json.loads(inner)["clicks"], EXPECTED)
                c = self.run_fault(provider, "fence").content()
                self.assertTrue(c.startswith("\n\n```json\n") and c.endswith("\n```"))
                self.assertEqual(len(self.run_fault(provider, "wrong_length").answer()), n - 1)
                self.assertEqual(len(self.run_fault(provider, "wrong_length", {"extra": 2}).answer()),
                                 n + 2)
                self.assertIn(2, self.run_fault(provider, "non_binary").answer())
                r = self.run_fault(provider, "truncated")
                self.assertEqual(finish_reason(r.json()),
                                 "MAX_TOKENS" if provider == "gemini" else "length")
                self.assertRaises(ValueError, json.loads, r.content())
                r = self.run_fault(provider, "whitespace_content")
                self.assertEqual(r.content().strip(), "")
                self.assertGreater(len(r.content()), 0)
                self.assertIn(finish_reason(r.json()), ("stop", "STOP"))
                r = self.run_fault(provider, "empty_body")
                self.assertEqual((r.status, r.body), (200, b""))

    def test_refusal_filter_blocked(self):
        m = self.run_fault("openai", "refusal").json()["choices"][0]["message"]
        self.assertIsNone(m["content"])
        self.assertIsInstance(m["refusal"], str)
        j = self.run_fault("openai", "content_filter").json()
        self.assertEqual(finish_reason(j), "content_filter")
        j = self.run_fault("deepseek", "content_filter").json()
        self.assertEqual(finish_reason(j), "content_filter")
        for kind in ("content_filter", "refusal"):
            j = self.run_fault("gemini", kind).json()
            self.assertEqual(j["candidates"][0]["finishReason"], "SAFETY")
            self.assertNotIn("content", j["candidates"][0])
        j = self.run_fault("gemini", "blocked_prompt").json()
        self.assertEqual(j["promptFeedback"]["blockReason"], "SAFETY")
        self.assertNotIn("candidates", j)
        self.assertNotIn("candidatesTokenCount", j["usageMetadata"])   # zero fields omitted
        j = self.run_fault("openai", "blocked_prompt").json()
        self.assertEqual(finish_reason(j), "content_filter")

    def raw_request(self, provider, timeout=5):
        """POST over http.client so transport faults surface as exceptions."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Content-Type": "application/json"}
        if provider == "gemini":
            h["x-goog-api-key"] = KEYS[provider]
        else:
            h["Authorization"] = f"Bearer {KEYS[provider]}"
        conn.request("POST", PATHS[provider], json.dumps(BODIES[provider]()), h)
        return conn

    def test_transport_faults(self):
        for provider in ("openai", "deepseek", "gemini"):
            with self.subTest(provider=provider, kind="reset"):
                self.set_fault(provider, "reset")
                conn = self.raw_request(provider)
                with self.assertRaises((ConnectionError, http.client.HTTPException)):
                    conn.getresponse().read()
                conn.close()
            with self.subTest(provider=provider, kind="hang"):
                self.set_fault(provider, "hang", {"seconds": 0.2})
                t0 = time.monotonic()
                conn = self.raw_request(provider)
                with self.assertRaises((ConnectionError, http.client.HTTPException)):
                    conn.getresponse().read()
                self.assertGreaterEqual(time.monotonic() - t0, 0.18)
                conn.close()
            with self.subTest(provider=provider, kind="slow_body"):
                self.set_fault(provider, "slow_body", {"seconds": 0.2})
                t0 = time.monotonic()
                r = self.call(provider)
                self.assertGreaterEqual(time.monotonic() - t0, 0.18)
                self.assertEqual(r.answer(), EXPECTED)
            with self.subTest(provider=provider, kind="keepalive_blank_lines"):
                self.set_fault(provider, "keepalive_blank_lines",
                               {"seconds": 0.2, "interval_ms": 40})
                conn = self.raw_request(provider)
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                self.assertIsNone(resp.getheader("Content-Length"))
                raw = resp.read()
                conn.close()
                self.assertTrue(raw.startswith(b"\n\n"))
                r = Resp(200, {}, raw.lstrip())
                self.assertEqual(r.answer(), EXPECTED)
        st = self.stats()
        self.assertEqual(st["openai"]["status"].get("closed"), 2)    # reset + hang

    def test_fault_rng_is_deterministic(self):
        def pattern(seed):
            self.configure({"seed": seed, "faults": [{"kind": "http_500", "rate": 0.5}]})
            return [self.call("openai").status for _ in range(24)]
        a, b, c = pattern(7), pattern(7), pattern(8)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        self.assertEqual(set(a), {200, 500})

    def test_first_and_provider_filter(self):
        self.configure({"faults": [{"kind": "http_503", "first": 2, "provider": "openai"}]})
        self.assertEqual([self.call("openai").status for _ in range(4)], [503, 503, 200, 200])
        self.assertEqual(self.call("gemini").status, 200)
        self.configure({"providers": {"deepseek": {"faults": [{"kind": "quota"}]}}})
        self.assertEqual(self.call("deepseek").status, 402)
        self.assertEqual(self.call("openai").status, 200)

    def test_after_and_model_filter(self):
        self.configure({"models": {"openai": ["gpt-4o-mini", "case-a", "case-b"]},
                        "faults": [{"kind": "http_503", "after": 2, "model": "case-a"},
                                   {"kind": "http_500", "after": 1}]})
        a = [self.call("openai", openai_body(model="case-a")).status for _ in range(4)]
        # the model's fault counts case-a's requests (503 from its third on); the
        # unfiltered one counts every openai request (500 from the second on)
        self.assertEqual(a, [200, 500, 503, 503])
        self.assertEqual(self.call("openai", openai_body(model="case-b")).status, 500)

    def test_percent_answers_and_ad_markers(self):
        self.configure({})
        records = ["34|nurse|A=80 B=10", "61||B", "19|student|CLICK"]
        body = openai_body(records)
        schema = body["response_format"]["json_schema"]["schema"]["properties"]["clicks"]
        schema["items"] = {"type": "integer", "minimum": 0, "maximum": 100}
        r = self.call("openai", body)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], '{"clicks":[0,0,100]}')
        body["messages"][1]["content"] = prompt(records).replace("Ad: Spring sale", "Ad: Spring sale want:A")
        r = self.call("openai", body)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], '{"clicks":[80,0,0]}')
        body["messages"][1]["content"] = prompt(records).replace("Ad: Spring sale", "Ad: Spring sale want:B")
        r = self.call("openai", body)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], '{"clicks":[10,100,0]}')
        # 0/1, with a marker: the line holds it or not
        r = self.call("openai", openai_body(records, messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt(records).replace("Ad: Spring sale", "Ad: x want:B")}]))
        self.assertEqual(r.json()["choices"][0]["message"]["content"], '{"clicks":[1,1,0]}')

    def test_outage(self):
        self.configure({})
        self.assertEqual(self.call("openai").status, 200)
        self.assertEqual(self.ctl("/_control/outage", {"seconds": 0.5})[0], 200)
        with self.assertRaises((ConnectionError, http.client.HTTPException, urllib.error.URLError, OSError)):
            self.call("openai")
        time.sleep(0.6)
        self.assertEqual(self.call("openai").status, 200)

    def test_in_flight_by_model(self):
        self.configure({"models": {"openai": ["gpt-4o-mini", "slow-a"]}, "latency_ms": 600})
        t = threading.Thread(target=lambda: self.call("openai", openai_body(model="slow-a")))
        t.start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not self.stats()["openai"]["in_flight_by_model"]:
            time.sleep(0.02)
        self.assertEqual(self.stats()["openai"]["in_flight_by_model"], {"slow-a": 1})
        t.join()
        self.assertEqual(self.stats()["openai"]["in_flight_by_model"], {})
        self.assertEqual(self.stats()["openai"]["max_in_flight_by_model"], {"slow-a": 1})


class LimitTests(ServerCase):

    def test_rpm(self):
        self.configure({"providers": {"openai": {"rpm": 3}, "gemini": {"rpm": 2},
                                      "deepseek": {"rpm": 1}}})
        self.assertEqual([self.call("openai").status for _ in range(3)], [200] * 3)
        r = self.call("openai")
        self.assertEqual(r.status, 429)
        self.assertEqual(r.json()["error"]["code"], "rate_limit_exceeded")
        self.assertRegex(r.json()["error"]["message"], r"Please try again in \d+\.\d{3}s\.")
        self.assertIn("retry-after", r.headers)
        self.assertIn("retry-after-ms", r.headers)
        self.assertEqual(r.headers["x-ratelimit-remaining-requests"], "0")
        self.assertEqual(r.headers["x-ratelimit-limit-requests"], "3")
        self.assertEqual([self.call("gemini").status for _ in range(3)], [200, 200, 429])
        err = self.call("gemini").json()["error"]
        self.assertEqual(err["status"], "RESOURCE_EXHAUSTED")
        self.assertTrue(any(d["@type"].endswith("RetryInfo") for d in err["details"]))
        self.assertEqual(self.call("deepseek").status, 200)
        r = self.call("deepseek")
        self.assertEqual(r.status, 429)
        self.assertFalse({"retry-after", "retry-after-ms"} & set(r.headers))
        st = self.stats()
        self.assertEqual((st["openai"]["rejections"], st["gemini"]["rejections"],
                          st["deepseek"]["rejections"]), (1, 2, 1))
        self.assertEqual(st["openai"]["max_rate_observed"], 4)

    def test_tpm(self):
        self.configure({"providers": {"openai": {"tpm": 400}, "gemini": {"tpm": 400}}})
        self.assertEqual([self.call("openai").status for _ in range(2)], [200, 429])
        err = self.call("openai").json()["error"]
        self.assertEqual((err["type"], err["code"]), ("tokens", "rate_limit_exceeded"))
        self.assertEqual([self.call("gemini").status for _ in range(2)], [200, 429])
        self.assertEqual(self.stats()["gemini"]["rejections"], 1)

    def test_rpm_window_slides(self):
        self.configure({"rpm": 2, "window_s": 0.3})
        self.assertEqual([self.call("openai").status for _ in range(3)], [200, 200, 429])
        time.sleep(0.35)
        self.assertEqual(self.call("openai").status, 200)

    def concurrent(self, provider, n):
        results = [None] * n

        def one(i):
            results[i] = self.call(provider, timeout=20).status
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_concurrency_and_latency(self):
        self.configure({"latency_ms": 400})
        statuses = self.concurrent("openai", 60)
        self.assertEqual(statuses, [200] * 60)
        st = self.stats()["openai"]
        self.assertGreaterEqual(st["max_in_flight"], 50)
        self.assertEqual(st["in_flight"], 0)
        self.assertEqual(st["max_rate_observed"], 60)

    def test_max_concurrency(self):
        self.configure({"providers": {"deepseek": {"max_concurrency": 2, "latency_ms": 300}}})
        statuses = self.concurrent("deepseek", 6)
        self.assertGreaterEqual(statuses.count(429), 1)
        self.assertGreaterEqual(statuses.count(200), 2)
        self.assertEqual(self.stats()["deepseek"]["rejections"], statuses.count(429))

    def test_throughput_keepalive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        body = json.dumps(openai_body())
        h = {"Content-Type": "application/json", "Authorization": f"Bearer {KEYS['openai']}"}
        t0 = time.monotonic()
        n = 1000
        for _ in range(n):
            conn.request("POST", PATHS["openai"], body, h)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
        elapsed = time.monotonic() - t0
        conn.close()
        self.assertLess(elapsed, 8.0, f"{n} requests took {elapsed:.2f}s")
        self.assertEqual(self.stats()["openai"]["requests"], n)


class StatsAndControlTests(ServerCase):

    def test_stats_fields(self):
        for _ in range(2):
            self.call("openai")
        self.call("deepseek", headers={"Accept-Encoding": "gzip, deflate"})
        self.call("gemini", key="bad-key-0000")
        st = self.stats()
        o = st["openai"]
        self.assertEqual(o["requests"], 2)
        self.assertEqual(o["status"], {"200": 2})
        self.assertEqual(o["answered_personas"], 2 * len(EXPECTED))
        body = openai_body()
        nbytes = sum(len(m["content"].encode()) for m in body["messages"])
        self.assertEqual(o["tokens_in"], 2 * math.ceil(nbytes / 4))
        self.assertEqual(o["tokens_out"], 2 * math.ceil(len('{"clicks":[1,0,1,0,1]}') / 4))
        self.assertEqual(o["models_seen"], ["gpt-4o-mini"])
        self.assertEqual(o["user_agents_seen"], [UA])
        self.assertLessEqual(o["first_request_at"], o["last_request_at"])
        self.assertEqual(st["deepseek"]["accept_encoding_seen"], ["gzip, deflate"])
        self.assertEqual(st["gemini"]["status"], {"400": 1})
        self.assertViolation("gemini: wrong API key")
        for field in ("faults", "max_in_flight", "in_flight", "rejections", "max_rate_observed"):
            self.assertIn(field, o)
        self.ctl("/_control/reset", {})
        self.assertEqual(self.stats()["openai"]["requests"], 0)

    def test_control_routes(self):
        status, body = self.ctl("/_control/health")
        self.assertEqual((status, body["ok"]), (200, True))
        knobs = self.configure({"latency_ms": 1, "providers": {"gemini": {"rpm": 5}}})
        self.assertEqual(knobs["effective"]["gemini"]["rpm"], 5)
        self.assertEqual(knobs["effective"]["deepseek"]["gzip"], True)
        self.assertEqual(knobs["effective"]["openai"]["latency_ms"], 1)
        self.assertNotIn("sk-test-openai", json.dumps(knobs))      # keys are masked
        self.assertEqual(self.ctl("/_control/config", {"bogus": 1})[0], 400)
        self.assertEqual(self.ctl("/_control/config", {"faults": [{"kind": "nope"}]})[0], 400)
        self.assertEqual(self.http("GET", "/_control/nope").status, 404)
        r = self.call("openai", path="/openai/v1/completions")
        self.assertEqual(r.status, 404)
        self.assertIn("Invalid URL", r.json()["error"]["message"])
        r = self.call("gemini", path="/gemini/v1beta/models/gemini-2.5-flash:countTokens")
        self.assertEqual(r.json()["error"]["status"], "NOT_FOUND")
        self.assertViolation("unknown route", "openai: ")

    def test_log_has_no_keys(self):
        self.call("openai")
        self.call("openai", key="sk-secret-zzzz")
        self.call("gemini", key=None, path=PATHS["gemini"] + "?key=" + KEYS["gemini"])
        with open(self.log_path) as f:
            text = f.read()
        self.assertIn("key=REDACTED", text)
        for secret in list(KEYS.values()) + ["sk-secret-zzzz"]:
            self.assertNotIn(secret, text)
        json.loads(text.splitlines()[-1])


class LifecycleTests(unittest.TestCase):

    def test_sigterm_and_parent_exit(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc, port = start_server(tmp)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(5), 0)
            proc.stdout.close()
            proc.stderr.close()

            parent = subprocess.Popen(["sleep", "30"])
            proc, port = start_server(tmp, "--parent-pid", str(parent.pid))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/_control/health")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            parent.kill()
            parent.wait()
            self.assertEqual(proc.wait(5), 0)
            proc.stdout.close()
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main(verbosity=1)
